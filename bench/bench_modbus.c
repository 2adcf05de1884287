/* bench/bench_modbus.c — Modbus transactions per second that one unit host serves to a
 * pipelined client across many units.
 *
 * One host (unit/host.h) runs in a thread with N units (the corridor's intersections
 * replicated), each on its own ephemeral port. The client (main thread) holds one TCP
 * connection per unit; a round sends a read of the status block (control mode ..
 * phase status, input registers 100-149) to every unit, then collects every reply. The
 * figure is transactions / wall time, and the host thread's CPU time per transaction.
 * The client writes MBAP frames itself: libmodbus' client waits with select(), which
 * aborts on descriptors >= FD_SETSIZE (1024), and 1,000 connections go past that.
 *
 * usage: bench_modbus [UNITS [ROUNDS]] ... (default: 100 units x 200 rounds, then 1000
 * units x 20 rounds)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <modbus/modbus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "regmap.h"
#include "scenario.h"

typedef struct {
    sf_host_t *h;     /* the host under test */
    atomic_int stop;  /* set by main to end the thread */
    clockid_t cpu;    /* the host thread's CPU clock */
    atomic_int ready; /* cpu is valid */
} run_t;

static void *host_main(void *arg)
{
    run_t *r = arg;
    pthread_getcpuclockid(pthread_self(), &r->cpu);
    atomic_store(&r->ready, 1);
    while (!atomic_load(&r->stop))
        sf_host_poll(r->h, 10);
    return NULL;
}

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench(const sf_scenario_t *sc, int n_units, int rounds)
{
    run_t r = {0};
    r.h = sf_host_new(NULL);
    if (!r.h)
        return -1;
    for (int i = 0; i < n_units; i++)
        if (sf_host_add_unit(r.h, &sc->intersections[i % (int)sc->n_intersections], NULL) < 0) {
            fprintf(stderr, "bench_modbus: unit %d: %s\n", i, strerror(errno));
            sf_host_destroy(&r.h);
            return -1;
        }
    for (int k = 0; k < 200; k++) /* past start-up, so the status is a running plan's */
        sf_host_tick(r.h);
    pthread_t th;
    if (pthread_create(&th, NULL, host_main, &r) != 0) {
        sf_host_destroy(&r.h);
        return -1;
    }
    int *fd = malloc((size_t)n_units * sizeof *fd);
    int rc = -1;
    if (!fd)
        goto out;
    for (int i = 0; i < n_units; i++)
        fd[i] = -1;
    for (int i = 0; i < n_units; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(sf_host_port(r.h, (size_t)i))};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int one = 1;
        if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
            fprintf(stderr, "bench_modbus: connect unit %d: %s\n", i, strerror(errno));
            goto out;
        }
    }
    const uint16_t addr = sf_regmap_by_name("control_mode")->address;
    const uint16_t nb = 50;
    /* Read Input Registers (FC 4) in an MBAP frame; the transaction id is the round. */
    uint8_t req[12] = {0,
                       0,
                       0,
                       0,
                       0,
                       6,
                       0xFF,
                       MODBUS_FC_READ_INPUT_REGISTERS,
                       (uint8_t)(addr >> 8),
                       (uint8_t)addr,
                       0,
                       (uint8_t)nb};
    const size_t rsp_len = 7 + 2 + 2 * (size_t)nb;
    uint8_t rsp[MODBUS_TCP_MAX_ADU_LENGTH];
    /* One warm-up round (connections accepted, pages touched), then the timed ones. */
    double t0 = 0, cpu0 = 0;
    long errors = 0;
    while (!atomic_load(&r.ready))
        ;
    for (int round = -1; round < rounds; round++) {
        if (round == 0) {
            t0 = now_s(CLOCK_MONOTONIC);
            cpu0 = now_s(r.cpu);
        }
        req[0] = (uint8_t)((unsigned)round >> 8);
        req[1] = (uint8_t)round;
        for (int i = 0; i < n_units; i++)
            if (send(fd[i], req, sizeof req, 0) != (ssize_t)sizeof req)
                errors++;
        for (int i = 0; i < n_units; i++) {
            size_t got = 0;
            while (got < rsp_len) {
                ssize_t k = recv(fd[i], rsp + got, rsp_len - got, 0);
                if (k <= 0)
                    break;
                got += (size_t)k;
            }
            if (got != rsp_len || rsp[1] != req[1] || rsp[7] != MODBUS_FC_READ_INPUT_REGISTERS)
                errors++;
        }
    }
    double wall = now_s(CLOCK_MONOTONIC) - t0;
    double cpu = now_s(r.cpu) - cpu0;
    double n = (double)n_units * rounds;
    printf("%5d units x %4d rounds: %8.0f transactions/s (pipelined, %u registers each), "
           "round %.2f ms, host CPU %.1f us/transaction (%.0f%% of one core), errors %ld\n",
           n_units, rounds, n / wall, (unsigned)nb, 1e3 * wall / rounds, 1e6 * cpu / n,
           100.0 * cpu / wall, errors);
    rc = errors ? -1 : 0;
out:
    if (fd)
        for (int i = 0; i < n_units; i++)
            if (fd[i] >= 0)
                close(fd[i]);
    free(fd);
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    sf_host_destroy(&r.h);
    return rc;
}

int main(int argc, char **argv)
{
    /* Each unit needs three descriptors here (listener, server side, client side). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sf_errors_t errs = {0};
    sf_scenario_t *sc =
        sf_scenario_load(SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json", NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_modbus",
                         SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json");
        return 1;
    }
    int status = 0;
    if (argc >= 2) {
        for (int i = 1; i < argc; i += 2) {
            int units = atoi(argv[i]);
            int rounds = i + 1 < argc ? atoi(argv[i + 1]) : 20;
            if (units < 1 || rounds < 1) {
                fprintf(stderr, "usage: bench_modbus [UNITS [ROUNDS]]...\n");
                status = 2;
                break;
            }
            if (bench(sc, units, rounds) != 0)
                status = 1;
        }
    } else {
        if (bench(sc, 100, 200) != 0 || bench(sc, 1000, 20) != 0)
            status = 1;
    }
    sf_scenario_destroy(&sc);
    return status;
}
