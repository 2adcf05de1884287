/* bench/bench_sweep.c — time of one full poll sweep (what the controller polls: status,
 * lamps, detector data, occupancies and presence, priority slots, then the heartbeat write,
 * SF_POLL_ALL | SF_POLL_STATUS_FIRST; pipelined over every unit) at 10, 100 and 1,000
 * units on 127.0.0.1, the units served by a unit host (unit/host.h) in another thread.
 * Each poll is measured three ways: as the master makes it against these map version 4
 * units (one FC 23 that writes the heartbeat and reads the poll image: 1 request a unit),
 * with FC 23 turned off (opts.no_fc23: the version 3 image read and the heartbeat write, 2
 * requests a unit), and with the image turned off (opts.no_image: the separate reads of
 * version 1, 6 requests a unit for a full poll), so each step's gain is measured on the
 * same code and machine.
 *
 * Usage: bench_sweep [SWEEPS [UNITS]]   (default 50 measured sweeps per size, after 3
 * warm-up; UNITS measures that one size instead of 10, 100 and 1,000)
 * Prints one line per size, poll kind and read path: units, sweeps, wall-clock median, p90
 * and p99 in ms, CPU time per sweep of the master thread, of the host thread and of the
 * whole process (on a loaded machine the wall figures include waiting for a core), requests
 * per sweep and per unit, and
 * the context switches a sweep of each thread: voluntary ones are the waits (a thread that
 * waits for its peer is woken by it, and both pay for that on every wake-up), involuntary
 * ones a busy machine taking the core away. The host thread is named "sf-host" (perf
 * record --sort comm tells the two sides apart).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np, RUSAGE_THREAD */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "host.h"
#include "master.h"
#include "scenario.h"

typedef struct {
    sf_host_t *h;       /* served by the thread */
    pthread_t th;       /* the thread */
    atomic_bool stop;   /* end the thread */
    atomic_int measure; /* 1: the thread samples its switches (start), 2: (end), 0 done */
    long csw[2][4];     /* [start, end][voluntary, involuntary, user us, system us] of the
                           host thread */
} host_thread_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The calling thread's context switches so far (voluntary, involuntary) and its CPU time
 * in user space and in the kernel, us. */
static void switches(long out[4])
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    out[0] = ru.ru_nvcsw;
    out[1] = ru.ru_nivcsw;
    out[2] = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
    out[3] = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
}

static void *serve(void *arg)
{
    host_thread_t *t = arg;
    while (!atomic_load(&t->stop)) {
        /* Sampled between two waits, when asked: the measured sweeps lie between them. */
        int k = atomic_load(&t->measure);
        if (k > 0) {
            switches(t->csw[k - 1]);
            atomic_store(&t->measure, 0);
        }
        sf_host_poll(t->h, 5);
    }
    return NULL;
}

/* Ask the host thread for a sample (k 1 start, 2 end) and wait until it has taken it. */
static void host_sample(host_thread_t *t, int k)
{
    atomic_store(&t->measure, k);
    while (atomic_load(&t->measure) != 0) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

static double cpu_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* How the master reads: the one-request FC 23 poll (map v4), the image read and the
 * heartbeat (v3), the separate reads (v1). */
typedef enum { PATH_FC23 = 0, PATH_IMAGE = 1, PATH_CLASSIC = 2 } path_t;
static const char *const path_name[3] = {"fc23", "image", "classic"};

static int run_size(const sf_intersection_t *ix, size_t n, int sweeps, unsigned what, path_t path)
{
    host_thread_t t = {0};
    sf_endpoint_t *eps = calloc(n, sizeof *eps);
    double *ms = calloc((size_t)sweeps, sizeof *ms);
    sf_master_t *m = NULL;
    int rc = -1;
    t.h = sf_host_new(NULL);
    if (!eps || !ms || !t.h)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (sf_host_add_unit(t.h, ix, NULL) < 0) {
            fprintf(stderr, "bench_sweep: unit %zu: %s\n", i, strerror(errno));
            goto done;
        }
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = sf_host_port(t.h, i);
    }
    if (pthread_create(&t.th, NULL, serve, &t) != 0)
        goto done;
    pthread_setname_np(t.th, "sf-host");
    sf_master_opts_t o;
    sf_master_opts_default(&o);
    o.round_timeout_ms = 5000;
    o.no_image = path == PATH_CLASSIC;
    o.no_fc23 = path != PATH_FC23;
    m = sf_master_new(n, eps, NULL, &o);
    if (!m) {
        fprintf(stderr, "bench_sweep: master: %s\n", strerror(errno));
    } else {
        int64_t k = 0;
        int bad = 0;
        for (int w = 0; w < 3; w++) /* connects and the identity reads happen here */
            bad += sf_master_sweep(m, k++, 1, what) != (int)n;
        sf_master_stats_t s0, s1;
        long mc[2][4];
        host_sample(&t, 1);
        switches(mc[0]);
        sf_master_stats(m, &s0);
        /* The process is the master thread and the host thread: host = process - master. */
        double c0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID), p0 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID);
        for (int s = 0; s < sweeps; s++) {
            double t0 = now_ms();
            int ok = sf_master_sweep(m, k++, (uint16_t)(s + 2), what);
            ms[s] = now_ms() - t0;
            bad += ok != (int)n;
        }
        sf_master_stats(m, &s1);
        double master_cpu = (cpu_ms(CLOCK_THREAD_CPUTIME_ID) - c0) / sweeps;
        double all_cpu = (cpu_ms(CLOCK_PROCESS_CPUTIME_ID) - p0) / sweeps;
        switches(mc[1]);
        host_sample(&t, 2);
        qsort(ms, (size_t)sweeps, sizeof *ms, cmp_double);
        double med = ms[sweeps / 2];
        double p90 = ms[(int)((sweeps - 1) * 0.90 + 0.5)];
        double p99 = ms[(int)((sweeps - 1) * 0.99 + 0.5)];
        uint64_t req = (s1.requests - s0.requests) / (uint64_t)sweeps;
        printf("%-6s %-7s units %5zu  sweeps %3d  wall ms: median %7.2f p90 %7.2f p99 %7.2f  "
               "cpu ms/sweep: master %6.2f host %6.2f process %6.2f  requests/sweep %llu "
               "(%.2f a unit)  incomplete %d  switches/sweep: master %.0f+%.0f host %.0f+%.0f "
               "(voluntary+involuntary)  user+system ms/sweep: master %.2f+%.2f host %.2f+%.2f\n",
               (what & SF_POLL_ALL) == SF_POLL_ALL ? "full" : "status", path_name[path], n, sweeps,
               med, p90, p99, master_cpu, all_cpu - master_cpu, all_cpu, (unsigned long long)req,
               (double)req / (double)n, bad, (double)(mc[1][0] - mc[0][0]) / sweeps,
               (double)(mc[1][1] - mc[0][1]) / sweeps, (double)(t.csw[1][0] - t.csw[0][0]) / sweeps,
               (double)(t.csw[1][1] - t.csw[0][1]) / sweeps,
               (double)(mc[1][2] - mc[0][2]) / 1e3 / sweeps,
               (double)(mc[1][3] - mc[0][3]) / 1e3 / sweeps,
               (double)(t.csw[1][2] - t.csw[0][2]) / 1e3 / sweeps,
               (double)(t.csw[1][3] - t.csw[0][3]) / 1e3 / sweeps);
        rc = bad ? -1 : 0;
    }
    atomic_store(&t.stop, true);
    pthread_join(t.th, NULL);
done:
    sf_master_destroy(&m);
    sf_host_destroy(&t.h);
    free(eps);
    free(ms);
    return rc;
}

int main(int argc, char **argv)
{
    int sweeps = argc > 1 ? atoi(argv[1]) : 50;
    long one = argc > 2 ? atol(argv[2]) : 0;
    if (sweeps < 1 || sweeps > 100000 || argc > 3 || (argc > 2 && (one < 1 || one > 5000))) {
        fprintf(stderr, "usage: bench_sweep [SWEEPS 1..100000 [UNITS 1..5000]]\n");
        return 2;
    }
    /* 1,000 units take ~3,000 descriptors: listening, accepted and client sockets. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 16384) {
        rl.rlim_cur = rl.rlim_max < 16384 ? rl.rlim_max : 16384;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_sweep", SIGFLOW_ASSETS "/scenarios/single.json");
        return 1;
    }
    printf("bench_sweep: one poll sweep, pipelined over every unit, as the controller polls"
           " (reads, then the heartbeat write). status = status and lamps; full = also detector"
           " data, occupancies and presence and the priority slots. fc23 = one FC 23 that"
           " writes the heartbeat and reads the poll image (map v4, 1 request a unit);"
           " image = the poll image read + the heartbeat write (map v3, 2 requests a unit);"
           " classic = the separate reads (status 3 requests a unit, full 6)\n");
    double la[3];
    if (getloadavg(la, 3) == 3)
        printf("load average %.2f %.2f %.2f (wall figures include waiting for a core)\n", la[0],
               la[1], la[2]);
    int rc = 0;
    size_t sizes[] = {10, 100, 1000}, n_sizes = 3;
    if (one) {
        sizes[0] = (size_t)one;
        n_sizes = 1;
    }
    for (size_t i = 0; i < n_sizes; i++) {
        for (int full = 0; full <= 1; full++) {
            unsigned what = SF_POLL_STATUS_FIRST | (full ? SF_POLL_ALL : 0u);
            for (int p = PATH_FC23; p <= PATH_CLASSIC; p++)
                rc |= run_size(&sc->intersections[0], sizes[i], sweeps, what, (path_t)p) < 0;
        }
    }
    sf_scenario_destroy(&sc);
    return rc;
}
