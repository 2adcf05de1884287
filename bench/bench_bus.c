/* bench/bench_bus.c — figures for the bus: codec throughput, lockstep step rate over
 * loopback TCP, real-time step jitter. Prints measured numbers only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bus.h"
#include "lockstep.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (every thread: clock, participants, forwarder, libzmq). */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void bench_codec(size_t nv)
{
    uint32_t *u = calloc(nv * 4, sizeof *u);
    float *f = calloc(nv * 2, sizeof *f);
    int32_t *line = calloc(nv, sizeof *line);
    for (size_t i = 0; i < nv; i++) {
        u[i] = (uint32_t)i;
        u[nv + i] = (uint32_t)(i % 200);
        u[2 * nv + i] = (uint32_t)(i % 3);
        f[i] = (float)(i % 500) * 0.7f;
        f[nv + i] = 13.9f;
        line[i] = i % 50 == 0 ? 1 : -1;
    }
    Sfbus__VehicleSnapshot s = SFBUS__VEHICLE_SNAPSHOT__INIT;
    s.n_id = s.n_link = s.n_lane = s.n_pos_m = s.n_speed_mps = s.n_type = s.n_line = nv;
    s.id = u;
    s.link = u + nv;
    s.lane = u + 2 * nv;
    s.type = u + 3 * nv;
    s.pos_m = f;
    s.speed_mps = f + nv;
    s.line = line;
    size_t cap = sf_bus_encoded_size(&s.base);
    uint8_t *buf = malloc(cap);
    int reps = nv >= 100000 ? 20 : 200;
    long len = 0;
    double t0 = now_s();
    for (int r = 0; r < reps; r++)
        len = sf_bus_encode(&s.base, buf, cap);
    double t1 = now_s();
    for (int r = 0; r < reps; r++) {
        ProtobufCMessage *m = sf_bus_decode(SF_BUS_SNAP, buf, (size_t)len, NULL, 0);
        if (!m) {
            fprintf(stderr, "decode failed\n");
            exit(1);
        }
        sf_bus_msg_destroy(&m);
    }
    double t2 = now_s();
    printf("codec: snapshot of %zu vehicles = %ld bytes (%.1f B/vehicle); encode %.2f ms, "
           "decode %.2f ms\n",
           nv, len, (double)len / (double)nv, (t1 - t0) / reps * 1e3, (t2 - t1) / reps * 1e3);
    free(buf);
    free(u);
    free(f);
    free(line);
}

typedef struct {
    void *ctx;
    const char *pe, *se;
    char name[16];
} part_arg_t;

static void *part_main(void *arg)
{
    part_arg_t *a = arg;
    sf_participant_config_t cfg = {.name = a->name, .role = SFBUS__ROLE__ROLE_UNITS, .lockstep = 1};
    sf_participant_t *p = sf_participant_new(a->ctx, a->pe, a->se, &cfg);
    if (p && sf_participant_register(p, 10.0, NULL, NULL) == 0)
        while (sf_participant_step(p, 10.0, NULL, NULL, NULL) == 1)
            ;
    sf_participant_destroy(&p);
    return NULL;
}

static void bench_lockstep(int n_part, int steps, int realtime, double speed, int inproc)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    if (inproc) {
        pe = sf_bus_forwarder_inproc_pub_endpoint(fw);
        se = sf_bus_forwarder_inproc_sub_endpoint(fw);
    }
    sf_clock_config_t cfg = {.name = "sim",
                             .scenario = "bench",
                             .step_ds = 1,
                             .n_expected = (size_t)n_part,
                             .register_timeout_s = 10,
                             .step_timeout_s = 10,
                             .realtime = realtime,
                             .speed_factor = speed};
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_arg_t args[8];
    pthread_t th[8];
    for (int i = 0; i < n_part; i++) {
        args[i] = (part_arg_t){ctx, pe, se, ""};
        snprintf(args[i].name, sizeof args[i].name, "p%d", i);
        pthread_create(&th[i], NULL, part_main, &args[i]);
    }
    if (sf_clock_register(clk, NULL, NULL) != 0) {
        fprintf(stderr, "%s\n", sf_clock_error(clk));
        exit(1);
    }
    double t0 = now_s(), c0 = cpu_s();
    for (int k = 0; k < steps; k++)
        if (sf_clock_step(clk, NULL, NULL) != 0) {
            fprintf(stderr, "%s\n", sf_clock_error(clk));
            exit(1);
        }
    double t1 = now_s(), c1 = cpu_s();
    sf_clock_bye(clk, "end");
    for (int i = 0; i < n_part; i++)
        pthread_join(th[i], NULL);
    if (realtime) {
        sf_clock_jitter_t j = sf_clock_jitter(clk);
        printf("real time x%.0f, 0.1 s steps, %d participant(s), %d steps: jitter mean %.0f us, "
               "p95 %.0f us, max %.0f us\n",
               speed, n_part, steps, j.mean_us, j.p95_us, j.max_us);
    } else {
        printf("lockstep over %s, %d participant(s): %d steps in %.3f s = %.0f steps/s "
               "(%.0f us/step wall, %.0f us/step CPU all threads)\n",
               inproc ? "inproc" : "loopback TCP", n_part, steps, t1 - t0, steps / (t1 - t0),
               (t1 - t0) / steps * 1e6, (c1 - c0) / steps * 1e6);
    }
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
}

int main(void)
{
    double load[1] = {0};
    if (getloadavg(load, 1) == 1)
        printf("load average at start: %.2f (wall figures suffer on a busy machine)\n", load[0]);
    bench_codec(1000);
    bench_codec(10000);
    bench_codec(100000);
    bench_lockstep(1, 5000, 0, 1, 0);
    bench_lockstep(3, 5000, 0, 1, 0);
    bench_lockstep(1, 5000, 0, 1, 1);
    bench_lockstep(3, 5000, 0, 1, 1);
    bench_lockstep(3, 200, 1, 10, 0);
    return 0;
}
