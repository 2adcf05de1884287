/* cli/run_bridge.c — the HIL bridge thread of `sigflow run` (cli/run_parts.h).
 *
 * Stage 0, beside the units host: the bridge needs nothing from another participant of
 * step k (the detector inputs of k are published before Step(k)), and stage 0 is never
 * skipped, while `sigflow run` skips the controller's stage 1 on steps without a poll:
 * in stage 1 the lamps would be read once a poll period instead of every step. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "lockstep.h"
#include "run.h"
#include "run_parts.h"

#define REGISTER_TIMEOUT_S 10.0 /* every participant joins well within this */

struct run_bridge {
    sf_bridge_t *b;              /* owned by the thread while it runs */
    run_bus_t bus;               /* where the bus is */
    pthread_t thr;               /* the thread */
    bool started;                /* thr is running or not yet joined */
    int rc;                      /* 0 ok, -1 failed (err) */
    char err[SF_RUNNER_ERR_MAX]; /* why */
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

run_bridge_t *run_bridge_new(const sf_scenario_t *sc, bool *none, char *err, size_t cap)
{
    *none = false;
    run_bridge_t *r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, cap, "out of memory");
        return NULL;
    }
    r->b = sf_bridge_new(sc, NULL);
    if (!r->b) {
        set_err(err, cap, "HIL bridge: %s", strerror(errno));
        free(r);
        return NULL;
    }
    if (sf_bridge_count(r->b) == 0) {
        run_bridge_destroy(&r);
        *none = true;
        if (cap)
            err[0] = 0;
        return NULL;
    }
    return r;
}

size_t run_bridge_count(const run_bridge_t *b)
{
    return b ? sf_bridge_count(b->b) : 0;
}

static void *thread_main(void *arg)
{
    run_bridge_t *r = arg;
    const char *topics[] = {sf_bus_topic(SF_BUS_DET)};
    sf_participant_config_t pc = {.name = "bridge",
                                  .role = SFBUS__ROLE__ROLE_BRIDGE,
                                  .lockstep = 1,
                                  .topics = topics,
                                  .n_topics = 1,
                                  .stage = 0,
                                  .security = r->bus.security};
    sf_participant_t *p = sf_participant_new(r->bus.zctx, r->bus.pub_ep, r->bus.sub_ep, &pc);
    if (!p) {
        set_err(r->err, sizeof r->err, "bridge: cannot join the bus: %s", sf_bus_strerror(errno));
        r->rc = -1;
        return NULL;
    }
    if (sf_participant_register(p, REGISTER_TIMEOUT_S, sf_bridge_on_msg, r->b) != 0) {
        set_err(r->err, sizeof r->err, "bridge: %s", sf_participant_error(p));
        r->rc = -1;
        goto out;
    }
    if (run_part_loop(p, r->bus.stop, sf_bridge_on_msg, sf_bridge_step, r->b) != 0) {
        set_err(r->err, sizeof r->err, "bridge: %s", sf_participant_error(p));
        r->rc = -1;
    }
out:
    sf_participant_destroy(&p);
    return NULL;
}

int run_bridge_start(run_bridge_t *b, const run_bus_t *bus)
{
    if (!b || !bus || b->started) {
        errno = EINVAL;
        return -1;
    }
    b->bus = *bus;
    int e = pthread_create(&b->thr, NULL, thread_main, b);
    if (e) {
        errno = e;
        return -1;
    }
    b->started = true;
    return 0;
}

int run_bridge_join(run_bridge_t *b, char *err, size_t cap)
{
    if (!b)
        return 0;
    if (b->started) {
        pthread_join(b->thr, NULL);
        b->started = false;
    }
    if (b->rc && err)
        set_err(err, cap, "%s", b->err);
    return b->rc;
}

const char *run_bridge_error(const run_bridge_t *b)
{
    return b ? b->err : "";
}

json_t *run_bridge_report(const run_bridge_t *b, const sf_clock_jitter_t *j, double wall_s)
{
    if (!b || !j)
        return NULL;
    json_t *r = sf_bridge_report(b->b, j->n, j->mean_us, j->p95_us, j->max_us);
    if (!r)
        return NULL;
    /* Reads per wall second and per unit: the "10 Hz or faster". */
    json_t *reads = json_object_get(r, "lamp_reads");
    double n = json_is_integer(reads) ? (double)json_integer_value(reads) : 0;
    double per_unit = n / (double)sf_bridge_count(b->b);
    json_object_set_new(r, "wall_s", json_real(wall_s));
    json_object_set_new(r, "lamp_read_hz", json_real(wall_s > 0 ? per_unit / wall_s : 0));
    return r;
}

void run_bridge_destroy(run_bridge_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    run_bridge_t *b = *self_p;
    run_bridge_join(b, NULL, 0);
    sf_bridge_destroy(&b->b);
    free(b);
    *self_p = NULL;
}
