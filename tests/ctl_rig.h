/* tests/ctl_rig.h — the controller tests' units: a units host (unit/host.h) with one
 * real unit per intersection on 127.0.0.1, served by its own thread and ticked in
 * lockstep with the controller's steps (the units' time follows the test's steps, not
 * the wall clock), as tests/test_controller.c and tests/test_controller_ops.c use it.
 *
 * Knobs a test turns while the rig runs (all atomics, read by the thread):
 *  - presence / pulses: detector bits of unit 0, set before each tick (pulses: occupied
 *    1 s of every 2 s, a vehicle each);
 *  - deaf: a partition, the units tick but answer nobody;
 *  - break_ticks: unit 0's group 0 shows green and red together for this many ticks (the
 *    unit's output seam), a conflict its monitor must latch.
 * Header-only (static functions): each test program includes it once. */
#ifndef SIGFLOW_TEST_CTL_RIG_H
#define SIGFLOW_TEST_CTL_RIG_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "controller.h"
#include "host.h"
#include "scenario.h"

typedef struct {
    sf_host_t *h;                  /* served by the thread */
    pthread_t th;                  /* the thread */
    atomic_bool stop;              /* end it */
    atomic_bool deaf;              /* partition: the units tick but answer nobody */
    atomic_int break_ticks;        /* unit 0's outputs broken (green + red) this many ticks */
    atomic_uint_fast64_t presence; /* detector presence applied to unit 0 before each tick */
    atomic_uint_fast64_t pulses;   /* detectors occupied 1 s of every 2 s (a vehicle each) */
    atomic_uint_fast64_t target;   /* ticks the units should have made */
    pthread_mutex_t mu;            /* guards done */
    pthread_cond_t cv;             /* signalled when done changes */
    uint64_t done;                 /* ticks made */
} ctl_rig_t;

/* Unit settings a test may change; 0 = the rig's default. */
typedef struct {
    uint16_t startup_ds;      /* flash, then as long all-red, 0.1 s each (default 10: short
                                 tests; the units' own default is 100 + 50) */
    uint16_t det_interval_ds; /* detector data interval (default: the unit's) */
} ctl_rig_opts_t;

/* Scenario assets/scenarios/NAME with the sets applied; fails the test when it does not
 * load. */
static inline sf_scenario_t *ctl_rig_load(const char *name, const char *const *sets, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/scenarios/%s", SIGFLOW_ASSETS, name);
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(path, sets, n, &errs);
    cr_assert_not_null(sc, "%s: %s", name, errs.n ? errs.msg[0] : "?");
    return sc;
}

/* The unit's test seam: group 0 shows green and red together while break_ticks lasts. */
static inline void ctl_rig_seam(void *ctx, uint8_t *out, uint8_t n_sg)
{
    ctl_rig_t *r = ctx;
    if (n_sg > 0 && atomic_load(&r->break_ticks) > 0) {
        atomic_fetch_sub(&r->break_ticks, 1);
        out[0] = SF_OUT_GREEN | SF_OUT_RED;
    }
}

static inline void *ctl_rig_serve(void *arg)
{
    ctl_rig_t *r = arg;
    uint64_t done = 0;
    while (!atomic_load(&r->stop)) {
        if (!atomic_load(&r->deaf))
            sf_host_poll(r->h, 1);
        uint64_t want = atomic_load(&r->target);
        if (done == want)
            continue;
        for (; done < want; done++) {
            uint64_t pulse = done % 20 < 10 ? atomic_load(&r->pulses) : 0;
            sf_unit_set_detectors(sf_host_unit(r->h, 0), atomic_load(&r->presence) | pulse);
            sf_host_tick(r->h);
        }
        pthread_mutex_lock(&r->mu);
        r->done = done;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* A unit per intersection of sc behind eps[i] (filled: 127.0.0.1 and its ephemeral port),
 * clocks at time of day tod0 (0.1 s), served by the rig's thread. o NULL: defaults. */
static inline void ctl_rig_start(ctl_rig_t *r, const sf_scenario_t *sc, sf_endpoint_t *eps,
                                 uint32_t tod0, const ctl_rig_opts_t *o)
{
    memset(r, 0, sizeof *r);
    uint16_t startup = o && o->startup_ds ? o->startup_ds : 10;
    r->h = sf_host_new(NULL);
    cr_assert_not_null(r->h);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        sf_unit_config_t uc;
        sf_unit_config_default(&uc, &sc->intersections[i]);
        sf_unit_config_from_control(&uc, &sc->control);
        uc.startup_flash_ds = startup;
        uc.startup_all_red_ds = startup;
        if (o && o->det_interval_ds)
            uc.det_interval_ds = o->det_interval_ds;
        cr_assert_eq(sf_host_add_unit(r->h, &sc->intersections[i], &uc), (int)i, "%s",
                     strerror(errno));
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = sf_host_port(r->h, i);
    }
    sf_unit_hooks_t hk = {.ctx = r, .outputs = ctl_rig_seam};
    sf_unit_set_hooks(sf_host_unit(r->h, 0), &hk);
    cr_assert_eq(sf_host_set_clock(r->h, tod0), 0);
    atomic_store(&r->stop, false);
    atomic_store(&r->deaf, false);
    atomic_store(&r->break_ticks, 0);
    atomic_store(&r->presence, 0);
    atomic_store(&r->pulses, 0);
    atomic_store(&r->target, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    cr_assert_eq(pthread_create(&r->th, NULL, ctl_rig_serve, r), 0);
}

/* Stop the thread and the units. */
static inline void ctl_rig_stop(ctl_rig_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    sf_host_destroy(&r->h);
}

/* One controller step k (time of day tod0 + k), then the units tick to k + 1 before the
 * next step (lockstep). sf_controller_step's result. */
static inline int ctl_rig_step(ctl_rig_t *r, sf_controller_t *c, uint64_t k, uint32_t tod0)
{
    int rc = sf_controller_step(c, k, tod0 + (uint32_t)k);
    atomic_store(&r->target, k + 1);
    pthread_mutex_lock(&r->mu);
    while (r->done < k + 1)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ctl_rig_step that fails the test when the controller's step fails. */
static inline void ctl_rig_step_ok(ctl_rig_t *r, sf_controller_t *c, uint64_t k, uint32_t tod0)
{
    cr_assert_eq(ctl_rig_step(r, c, k, tod0), 0, "step %llu: %s", (unsigned long long)k,
                 strerror(errno));
}

/* Step from k until unit 0 runs under centre control (past its start-up, plans verified;
 * at least 30 steps, at most 300); fails the test otherwise. The next step's k. */
static inline uint64_t ctl_rig_until_centre(ctl_rig_t *r, sf_controller_t *c, uint64_t k,
                                            uint32_t tod0)
{
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    for (uint64_t k0 = k; k < k0 + 30 || (k < k0 + 300 && !(st->mode >= 0x10 && st->mode <= 0x12));
         k++)
        ctl_rig_step_ok(r, c, k, tod0);
    cr_assert(st->mode >= 0x10 && st->mode <= 0x12, "mode %#x", st->mode);
    return k;
}

#endif
