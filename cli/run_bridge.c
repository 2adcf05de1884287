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

struct run_bridge {
    sf_bridge_t *b;  /* owned by the thread while it runs */
    run_part_t part; /* its thread */
};

run_bridge_t *run_bridge_new(const sf_scenario_t *sc, bool *none, char *err, size_t cap)
{
    *none = false;
    run_bridge_t *r = calloc(1, sizeof *r);
    if (!r) {
        run_part_set_err(err, cap, "out of memory");
        return NULL;
    }
    r->b = sf_bridge_new(sc, NULL);
    if (!r->b) {
        run_part_set_err(err, cap, "HIL bridge: %s", strerror(errno));
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

int run_bridge_start(run_bridge_t *b, const run_bus_t *bus)
{
    if (!b) {
        errno = EINVAL;
        return -1;
    }
    run_part_t *rp = &b->part;
    rp->name = "bridge";
    rp->role = SFBUS__ROLE__ROLE_BRIDGE;
    rp->stage = 0; /* never skipped: the lamps are read every step */
    rp->topics[0] = sf_bus_topic(SF_BUS_DET);
    rp->n_topics = 1;
    rp->on_msg = sf_bridge_on_msg;
    rp->on_step = sf_bridge_step;
    rp->arg = b->b;
    return run_part_start(&b->part, bus);
}

int run_bridge_join(run_bridge_t *b, char *err, size_t cap)
{
    return b ? run_part_join(&b->part, err, cap) : 0;
}

const char *run_bridge_error(const run_bridge_t *b)
{
    return b ? b->part.err : "";
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
