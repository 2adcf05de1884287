/* tests/test_master.c — the pipelined Modbus master against real unit hosts on 127.0.0.1. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "master.h"
#include "regmap.h"
#include "scenario.h"

/* A unit host served by its own thread: polls, and ticks every 0.1 s of wall time. */
typedef struct {
    sf_host_t *h;     /* the host, used only by the thread once started */
    pthread_t th;     /* serving thread */
    atomic_bool stop; /* ask the thread to end */
} host_thread_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *serve(void *arg)
{
    host_thread_t *t = arg;
    int64_t next_tick = now_ms() + 100;
    while (!atomic_load(&t->stop)) {
        sf_host_poll(t->h, 5);
        if (now_ms() >= next_tick) {
            sf_host_tick(t->h);
            next_tick += 100;
        }
    }
    return NULL;
}

static sf_scenario_t *load_single(void)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, &errs);
    cr_assert_not_null(sc, "single.json: %s", errs.n ? errs.msg[0] : "?");
    return sc;
}

/* n units of intersection ix on ephemeral ports, serving; eps filled. */
static void start_hosts(host_thread_t *t, const sf_intersection_t *ix, size_t n, sf_endpoint_t *eps)
{
    t->h = sf_host_new(NULL);
    cr_assert_not_null(t->h);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sf_host_add_unit(t->h, ix, NULL), (int)i, "add unit %zu: %s", i,
                     strerror(errno));
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = sf_host_port(t->h, i);
        cr_assert_neq(eps[i].port, 0);
    }
    atomic_store(&t->stop, false);
    cr_assert_eq(pthread_create(&t->th, NULL, serve, t), 0);
}

static void stop_hosts(host_thread_t *t)
{
    atomic_store(&t->stop, true);
    pthread_join(t->th, NULL);
    sf_host_destroy(&t->h);
}

Test(master, pipelined_sweeps_read_every_unit)
{
    enum { N = 100, SWEEPS = 5 };
    sf_scenario_t *sc = load_single();
    const sf_intersection_t *ix = &sc->intersections[0];
    static sf_endpoint_t eps[N];
    const char *ids[N];
    for (size_t i = 0; i < N; i++)
        ids[i] = ix->id;
    host_thread_t t;
    start_hosts(&t, ix, N, eps);
    sf_master_opts_t o;
    sf_master_opts_default(&o);
    o.round_timeout_ms = 2000; /* generous: a loaded CI machine under ASan */
    sf_master_t *m = sf_master_new(N, eps, ids, &o);
    cr_assert_not_null(m);
    for (int s = 1; s <= SWEEPS; s++) {
        uint16_t hb = (uint16_t)(1000 + s);
        int ok = sf_master_sweep(m, s * 10, hb, SF_POLL_ALL);
        cr_assert_eq(ok, N, "sweep %d: %d of %d units answered", s, ok, N);
        for (size_t i = 0; i < N; i++) {
            const sf_unit_state_t *st = sf_master_state(m, i);
            cr_assert_eq(st->n_status, (uint64_t)s, "unit %zu read %llu times after sweep %d", i,
                         (unsigned long long)st->n_status, s);
            cr_assert_eq(st->status_ds, s * 10);
            cr_assert(st->identity_ok, "unit %zu identity", i);
            cr_assert_str_eq(st->unit_id, ix->id);
            cr_assert_eq(st->protocol_version, SF_REGMAP_VERSION);
            cr_assert_eq(st->n_phases, ix->n_phases);
            cr_assert_eq(st->n_sg, ix->n_sg);
            /* The heartbeat write precedes the status read on the same connection. */
            cr_assert_eq(st->heartbeat_echo, hb, "unit %zu echo %u want %u", i, st->heartbeat_echo,
                         hb);
            cr_assert(st->mode >= 0x10 && st->mode <= 0x33, "mode %#x", st->mode);
            for (uint8_t g = 0; g < ix->n_sg; g++)
                cr_assert_neq(st->lamp[g], 0, "unit %zu group %u has no lamp code", i, g);
            cr_assert_eq(st->lamp[ix->n_sg], 0, "unconfigured group reads 0");
            cr_assert_eq(st->health.state, SF_LINK_ONLINE);
        }
    }
    sf_master_stats_t ms;
    sf_master_stats(m, &ms);
    cr_assert_eq(ms.connects, N, "one connection per unit, kept: %llu",
                 (unsigned long long)ms.connects);
    cr_assert_eq(ms.missed, 0);
    cr_assert_eq(ms.protocol_errors, 0);
    sf_master_destroy(&m);
    cr_assert_null(m);
    sf_master_destroy(&m);
    stop_hosts(&t);
    sf_scenario_destroy(&sc);
}

Test(master, plan_download_read_back_and_refusal)
{
    sf_scenario_t *sc = load_single();
    const sf_intersection_t *ix = &sc->intersections[0];
    sf_endpoint_t eps[1];
    host_thread_t t;
    start_hosts(&t, ix, 1, eps);
    sf_master_t *m = sf_master_new(1, eps, NULL, NULL);
    cr_assert_not_null(m);

    /* A valid new plan 2: plan 1 with another offset and a 70 s cycle. */
    sf_plan_t p = ix->plans[0];
    p.id = 2;
    p.cycle_ds = 700;
    p.offset_ds = 123;
    p.split_ds[0] = 400;
    p.split_ds[1] = 300;
    int h = sf_master_queue_plan(m, 0, ix, &p);
    cr_assert_geq(h, 0);
    cr_assert_eq(sf_master_run(m, 1), 1);
    cr_assert_eq(sf_master_outcome(m, 0, h), SF_MREQ_OK, "exception %d",
                 sf_master_exception(m, 0, h));
    const sf_unit_state_t *st = sf_master_state(m, 0);
    cr_assert_eq(st->plan_dl_status, SF_PLAN_DL_ACCEPTED);
    cr_assert_eq(st->plan_rd.id, 2);
    cr_assert_eq(st->plan_rd.cycle_ds, 700);
    cr_assert_eq(st->plan_rd.offset_ds, 123);
    cr_assert(sf_master_plan_equal(ix, &p, &st->plan_rd), "read back differs");
    sf_plan_t other = p;
    other.offset_ds = 124;
    cr_assert_not(sf_master_plan_equal(ix, &other, &st->plan_rd));

    /* Refused: phase 2's split below min green + yellow + red clear (rings still sum). */
    sf_plan_t bad = p;
    bad.id = 3;
    bad.split_ds[0] = 100;
    bad.split_ds[1] = 600;
    h = sf_master_queue_plan(m, 0, ix, &bad);
    cr_assert_eq(sf_master_run(m, 2), 1);
    cr_assert_eq(sf_master_outcome(m, 0, h), SF_MREQ_EXCEPTION);
    cr_assert_eq(sf_master_exception(m, 0, h), 3);
    st = sf_master_state(m, 0);
    cr_assert_eq(st->plan_dl_status, SF_PLAN_DL_REFUSED);
    cr_assert_neq(st->plan_dl_error, 0);
    cr_assert_eq(st->plan_rd.id, 0, "plan 3 must not be stored");

    /* A value outside the map's range is refused with 03 and the link stays up. */
    uint16_t mode = 9;
    h = sf_master_queue_write(m, 0, SF_R_MODE_COMMAND, 0, &mode, 1);
    cr_assert_geq(h, 0);
    cr_assert_eq(sf_master_run(m, 3), 1);
    cr_assert_eq(sf_master_outcome(m, 0, h), SF_MREQ_EXCEPTION);
    cr_assert_eq(sf_master_exception(m, 0, h), 3);
    cr_assert_eq(sf_master_state(m, 0)->health.state, SF_LINK_ONLINE);

    /* Bad arguments change nothing. */
    errno = 0;
    cr_assert_eq(sf_master_queue_write(m, 0, SF_R_CONTROL_MODE, 0, &mode, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_master_queue_write(m, 1, SF_R_HEARTBEAT, 0, &mode, 1), -1);
    uint16_t two[2] = {1, 1};
    cr_assert_eq(sf_master_queue_write(m, 0, SF_R_FAULT_RESET, 0, two, 2), -1, "4 is a gap");
    cr_assert_eq(sf_master_queue_write(m, 0, SF_R_HEARTBEAT, 0, two, 0), -1);
    sf_master_destroy(&m);
    stop_hosts(&t);
    sf_scenario_destroy(&sc);
}

/* A port with nothing listening: missed polls, offline after 3, then back-off skips. */
Test(master, dead_unit_goes_offline_and_backs_off)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &len);
    close(s); /* the port is now (almost certainly) closed: connections are refused */
    sf_endpoint_t ep = {.host = "127.0.0.1", .port = ntohs(sa.sin_port)};
    sf_master_t *m = sf_master_new(1, &ep, NULL, NULL);
    cr_assert_not_null(m);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(sf_master_sweep(m, k * 10, 1, SF_POLL_ALL), 0);
    const sf_unit_state_t *st = sf_master_state(m, 0);
    cr_assert_eq(st->health.state, SF_LINK_OFFLINE);
    cr_assert_eq(st->health.n_missed, 3);
    /* Backing off: the next attempt is not before 20 + 10; the sweep at 25 skips it. */
    int h = sf_master_sweep(m, 25, 1, SF_POLL_ALL);
    cr_assert_eq(h, 0);
    cr_assert_eq(sf_master_outcome(m, 0, 0), SF_MREQ_SKIPPED);
    cr_assert_eq(st->health.n_missed, 3);
    sf_master_sweep(m, 30, 1, SF_POLL_ALL);
    cr_assert_eq(st->health.n_missed, 4, "retried at 30");
    sf_master_destroy(&m);
}

/* A unit that accepts but never answers costs one round timeout, not more, and does not
 * stop the others from being read. */
Test(master, silent_unit_does_not_stall_the_others)
{
    enum { N = 10 };
    sf_scenario_t *sc = load_single();
    const sf_intersection_t *ix = &sc->intersections[0];
    sf_endpoint_t eps[N + 1];
    host_thread_t t;
    start_hosts(&t, ix, N, eps);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(ls, 4), 0);
    socklen_t len = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &len);
    snprintf(eps[N].host, sizeof eps[N].host, "localhost");
    eps[N].port = ntohs(sa.sin_port);
    sf_master_opts_t o;
    sf_master_opts_default(&o);
    o.round_timeout_ms = 300;
    sf_master_t *m = sf_master_new(N + 1, eps, NULL, &o);
    cr_assert_not_null(m);
    for (int k = 1; k <= 2; k++) {
        int64_t t0 = now_ms();
        cr_assert_eq(sf_master_sweep(m, k, 7, SF_POLL_ALL), N);
        int64_t took = now_ms() - t0;
        /* Bounded by the round timeout (plus scheduling slack), never N x timeout. */
        cr_assert_lt(took, 3 * o.round_timeout_ms, "sweep took %lld ms", (long long)took);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(sf_master_state(m, i)->n_status, (uint64_t)k);
        cr_assert_eq(sf_master_state(m, N)->n_status, 0);
        cr_assert_eq(sf_master_outcome(m, N, 0), SF_MREQ_MISSED);
    }
    cr_assert_eq(sf_master_state(m, N)->health.missed_run, 2);
    sf_master_destroy(&m);
    close(ls);
    stop_hosts(&t);
    sf_scenario_destroy(&sc);
}

/* A device that is not the expected unit (wrong id) is read but never written again. */
Test(master, foreign_device_is_only_read)
{
    sf_scenario_t *sc = load_single();
    sf_endpoint_t eps[1];
    host_thread_t t;
    start_hosts(&t, &sc->intersections[0], 1, eps);
    const char *ids[1] = {"NOT-THIS-ONE"};
    sf_master_t *m = sf_master_new(1, eps, ids, NULL);
    cr_assert_not_null(m);
    cr_assert_eq(sf_master_sweep(m, 1, 11, 0), 1);
    const sf_unit_state_t *st = sf_master_state(m, 0);
    cr_assert_not(st->identity_ok);
    cr_assert_str_eq(st->unit_id, sc->intersections[0].id);
    /* The first heartbeat went out with the identity read (nothing known yet). */
    cr_assert_eq(st->heartbeat_echo, 11);
    cr_assert_eq(sf_master_sweep(m, 2, 22, 0), 1);
    cr_assert_eq(st->heartbeat_echo, 11, "no write to a foreign device");
    cr_assert_eq(st->n_status, 2, "still read");
    sf_master_destroy(&m);
    stop_hosts(&t);
    sf_scenario_destroy(&sc);
}
