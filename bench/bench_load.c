/* bench/bench_load.c — 1,000 emulated units held under control by the controller core for
 * 10 simulated minutes at a 1 s poll period, lockstep style: the unit host (another thread,
 * unit/host.h, every unit on its own Modbus TCP port on 127.0.0.1) ticks every unit 10
 * times (1 s), then the controller runs one step (sf_controller_step: heartbeat, status
 * and lamp reads of every unit, plan decisions), repeated. No simulator.
 *
 * Usage: bench_load [UNITS [SIM_SECONDS [ROUND_TIMEOUT_MS]]]   (default 1000 600 100)
 * Prints missed polls (unit-polls with no reply by the round deadline), how the units came
 * online (the first step at which every unit was online, and the units online at the
 * end), the wall time of each controller step (the sweep) as p50 / p95 / p99 / max, and
 * CPU use per simulated second from getrusage: the controller thread, the unit-host
 * thread, and the process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "controller.h"
#include "host.h"
#include "master.h"
#include "scenario.h"

/* The unit host's thread: serves Modbus all the time, ticks when asked. */
typedef struct {
    sf_host_t *h;       /* owned by the thread while it runs */
    pthread_t th;       /* the thread */
    int efd;            /* eventfd: main adds ticks wanted */
    atomic_bool stop;   /* end the thread */
    pthread_mutex_t mu; /* guards done */
    pthread_cond_t cv;  /* signalled when done changes */
    uint64_t done;      /* ticks made */
    struct rusage ru;   /* the thread's own usage, filled at exit */
} host_thread_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double ru_ms(const struct rusage *r)
{
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e3 +
           (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e3;
}

static void *serve(void *arg)
{
    host_thread_t *t = arg;
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    while (!atomic_load(&t->stop)) {
        size_t n = sf_host_pollfds(t->h, NULL, 0) + 1;
        if (n > cap) {
            free(pfd);
            cap = n * 2;
            pfd = calloc(cap, sizeof *pfd);
            if (!pfd)
                break;
        }
        pfd[0] = (struct pollfd){.fd = t->efd, .events = POLLIN};
        size_t m = sf_host_pollfds(t->h, pfd + 1, cap - 1) + 1;
        int hint = sf_host_wait_hint_ms(t->h);
        int rc = poll(pfd, (nfds_t)m, hint < 0 || hint > 20 ? 20 : hint);
        if (rc < 0 && errno != EINTR)
            break;
        sf_host_poll(t->h, 0);
        uint64_t add;
        if (pfd[0].revents & POLLIN && read(t->efd, &add, sizeof add) == sizeof add) {
            for (uint64_t i = 0; i < add; i++) {
                sf_host_tick(t->h);
                sf_host_poll(t->h, 0); /* keep answering while ticking 1,000 units */
            }
            pthread_mutex_lock(&t->mu);
            t->done += add;
            pthread_cond_signal(&t->cv);
            pthread_mutex_unlock(&t->mu);
        }
    }
    free(pfd);
    getrusage(RUSAGE_THREAD, &t->ru);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, size_t n, double p)
{
    return sorted[(size_t)((double)(n - 1) * p + 0.5)];
}

int main(int argc, char **argv)
{
    long n_units = argc > 1 ? atol(argv[1]) : 1000;
    long sim_s = argc > 2 ? atol(argv[2]) : 600;
    long round_ms = argc > 3 ? atol(argv[3]) : 100;
    if (n_units < 1 || n_units > 5000 || sim_s < 1 || sim_s > 86400 || round_ms < 1 ||
        round_ms > 60000) {
        fprintf(stderr, "usage: bench_load [UNITS 1..5000 [SIM_SECONDS [ROUND_TIMEOUT_MS]]]\n");
        return 2;
    }
    /* Each unit takes a listening socket, an accepted socket and the controller's client
     * socket: ~3 descriptors per unit. */
    struct rlimit rl;
    rlim_t want = (rlim_t)(n_units * 3 + 256);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
            fprintf(stderr, "bench_load: RLIMIT_NOFILE %llu < %llu needed\n",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)want);
            return 1;
        }
    }
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_load", SIGFLOW_ASSETS "/scenarios/single.json");
        return 1;
    }
    /* n copies of the single intersection, each with its own id (the controller checks the
     * identity each unit reports). The loader's array is put back before destroy. */
    size_t n = (size_t)n_units;
    sf_intersection_t *orig = sc->intersections;
    uint32_t orig_n = sc->n_intersections;
    sf_intersection_t *ixs = calloc(n, sizeof *ixs);
    sf_endpoint_t *eps = calloc(n, sizeof *eps);
    double *sweep = calloc((size_t)sim_s, sizeof *sweep);
    host_thread_t t = {.efd = -1};
    sf_controller_t *ctl = NULL;
    int rc = 1;
    if (!ixs || !eps || !sweep) {
        fprintf(stderr, "bench_load: out of memory\n");
        goto done;
    }
    t.h = sf_host_new(NULL);
    t.efd = eventfd(0, EFD_CLOEXEC);
    if (!t.h || t.efd < 0) {
        fprintf(stderr, "bench_load: host: %s\n", strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ixs[i] = orig[0];
        snprintf(ixs[i].id, sizeof ixs[i].id, "L%04zu", i);
        if (sf_host_add_unit(t.h, &ixs[i], NULL) < 0) {
            fprintf(stderr, "bench_load: unit %zu: %s\n", i, strerror(errno));
            goto done;
        }
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = sf_host_port(t.h, i);
    }
    sc->intersections = ixs;
    sc->n_intersections = (uint32_t)n;
    sc->control.poll_period_s = 1.0f;
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    if (pthread_create(&t.th, NULL, serve, &t) != 0) {
        fprintf(stderr, "bench_load: thread: %s\n", strerror(errno));
        goto done;
    }
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = (int)round_ms;
    char err[256] = "";
    ctl = sf_controller_new(sc, eps, &o, err, sizeof err);
    if (!ctl) {
        fprintf(stderr, "bench_load: controller: %s (%s)\n", err, strerror(errno));
    } else {
        struct rusage r0, r1, p0, p1;
        getrusage(RUSAGE_THREAD, &r0);
        getrusage(RUSAGE_SELF, &p0);
        sf_master_stats_t s0, s1;
        sf_master_stats(sf_controller_master(ctl), &s0);
        uint32_t tod0 = sc->run.start_tod_s * 10u;
        uint64_t k = 0, want_ticks = 0;
        double w0 = now_ms();
        int step_errors = 0;
        long all_online_at = -1; /* first step after which every unit was online */
        size_t online = 0;
        const sf_master_t *mst = sf_controller_master(ctl);
        for (long s = 0; s < sim_s; s++) {
            /* the units' second: 10 ticks, made by the host thread */
            uint64_t add = 10;
            want_ticks += add;
            if (write(t.efd, &add, sizeof add) != sizeof add) {
                fprintf(stderr, "bench_load: eventfd: %s\n", strerror(errno));
                break;
            }
            pthread_mutex_lock(&t.mu);
            while (t.done < want_ticks)
                pthread_cond_wait(&t.cv, &t.mu);
            pthread_mutex_unlock(&t.mu);
            k += 10;
            /* then one controller step: the poll that is due */
            double a = now_ms();
            if (sf_controller_step(ctl, k, (uint32_t)((tod0 + k) % 864000u)) != 0)
                step_errors++;
            sweep[s] = now_ms() - a;
            online = 0;
            for (size_t i = 0; i < n; i++)
                online += sf_master_state(mst, i)->health.state == SF_LINK_ONLINE;
            if (online == n && all_online_at < 0)
                all_online_at = s;
        }
        double wall = now_ms() - w0;
        getrusage(RUSAGE_THREAD, &r1);
        getrusage(RUSAGE_SELF, &p1);
        sf_master_stats(sf_controller_master(ctl), &s1);
        atomic_store(&t.stop, true);
        pthread_join(t.th, NULL);
        t.th = 0;
        qsort(sweep, (size_t)sim_s, sizeof *sweep, cmp_double);
        double ctl_ms = ru_ms(&r1) - ru_ms(&r0), all_ms = ru_ms(&p1) - ru_ms(&p0);
        printf("bench_load: %zu units, %ld simulated s at a 1 s poll period (10 unit ticks, then "
               "one controller step), round timeout %ld ms, wall %.1f s\n",
               n, sim_s, round_ms, wall / 1e3);
        printf("  polls: %llu unit-polls expected, %llu missed, %llu requests, %llu exceptions, "
               "%llu connects, %llu connect failures, %llu polls waiting for a connect, %d step "
               "errors\n",
               (unsigned long long)((uint64_t)n * (uint64_t)sim_s),
               (unsigned long long)(s1.missed - s0.missed),
               (unsigned long long)(s1.requests - s0.requests),
               (unsigned long long)(s1.exceptions - s0.exceptions),
               (unsigned long long)(s1.connects - s0.connects),
               (unsigned long long)(s1.connect_failures - s0.connect_failures),
               (unsigned long long)(s1.connect_waits - s0.connect_waits), step_errors);
        if (all_online_at >= 0)
            printf("  online: every unit online from step %ld (simulated s %ld); %zu of %zu "
                   "online at the end\n",
                   all_online_at, all_online_at + 1, online, n);
        else
            printf("  online: never every unit at once; %zu of %zu online at the end\n", online, n);
        printf("  sweep (controller step) ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n",
               pct(sweep, (size_t)sim_s, 0.50), pct(sweep, (size_t)sim_s, 0.95),
               pct(sweep, (size_t)sim_s, 0.99), sweep[sim_s - 1]);
        printf("  cpu ms per simulated s (getrusage user+sys): controller thread %.2f, unit host "
               "thread %.2f (whole life, incl. start), process %.2f\n",
               ctl_ms / (double)sim_s, ru_ms(&t.ru) / (double)sim_s, all_ms / (double)sim_s);
        rc = s1.missed - s0.missed || step_errors ? 1 : 0;
    }
done:
    if (t.th) {
        atomic_store(&t.stop, true);
        pthread_join(t.th, NULL);
    }
    sf_controller_destroy(&ctl);
    sf_host_destroy(&t.h);
    if (t.efd >= 0)
        close(t.efd);
    if (sc) {
        sc->intersections = orig;
        sc->n_intersections = orig_n;
    }
    sf_scenario_destroy(&sc);
    free(ixs);
    free(eps);
    free(sweep);
    return rc;
}
