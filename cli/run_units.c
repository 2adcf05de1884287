/* cli/run_units.c — the units thread of `sigflow run` (cli/run_parts.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lockstep.h"
#include "run.h"
#include "run_parts.h"
#include "unit_part.h"

struct run_units {
    sf_host_t *h;         /* the units; owned by the thread while it runs */
    sf_unit_part_t *work; /* what a step does with them (cli/unit_part.h) */
    uint32_t n_units;     /* units hosted: the intersections not bridged */
    run_part_t part;      /* its thread */
};

run_units_t *run_units_new(const sf_scenario_t *sc, const char *listen, uint16_t base_port,
                           char *err, size_t cap)
{
    run_units_t *u = calloc(1, sizeof *u);
    uint32_t *ix_of = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *ix_of);
    if (!u || !ix_of) {
        run_part_set_err(err, cap, "out of memory");
        goto fail;
    }
    sf_host_config_t hc = {.listen_addr = listen, .base_port = base_port};
    u->h = sf_host_new(&hc);
    if (!u->h) {
        run_part_set_err(err, cap, "units host on %s: %s", listen, strerror(errno));
        goto fail;
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        if (ix->unit_host[0])
            continue; /* a real unit takes its place (the bridge, run_bridge.c) */
        sf_unit_config_t ucfg;
        sf_unit_config_default(&ucfg, ix);
        sf_unit_config_from_control(&ucfg, &sc->control);
        int j = sf_host_add_unit(u->h, ix, &ucfg);
        if (j < 0) {
            run_part_set_err(err, cap, "unit %s: %s", ix->id, sf_unit_strerror(errno));
            goto fail;
        }
        ix_of[j] = i;
        u->n_units++;
    }
    u->work = sf_unit_part_new(u->h, sc->n_intersections, ix_of, u->n_units, sc->run.step_s);
    if (!u->work) {
        run_part_set_err(err, cap, "units: %s", strerror(errno));
        goto fail;
    }
    free(ix_of);
    return u;
fail:
    free(ix_of);
    run_units_destroy(&u);
    return NULL;
}

uint16_t run_units_port(const run_units_t *u, uint32_t i)
{
    int j = u ? sf_unit_part_local(u->work, i) : -1;
    return j >= 0 ? sf_host_port(u->h, (size_t)j) : 0;
}

int run_units_start(run_units_t *u, const run_bus_t *bus)
{
    if (!u) {
        errno = EINVAL;
        return -1;
    }
    run_part_t *rp = &u->part;
    rp->name = "units";
    rp->role = SFBUS__ROLE__ROLE_UNITS;
    rp->stage = 0;
    rp->topics[0] = "det";
    rp->n_topics = 1;
    rp->on_msg = sf_unit_part_on_msg;
    rp->on_step = sf_unit_part_on_step;
    rp->arg = u->work;
    rp->io = sf_unit_part_io(u->work);
    return run_part_start(&u->part, bus);
}

int run_units_join(run_units_t *u, char *err, size_t cap)
{
    return u ? run_part_join(&u->part, err, cap) : 0;
}

uint64_t run_units_lamp_msgs(const run_units_t *u)
{
    return u ? sf_unit_part_lamp_msgs(u->work) : 0;
}

const char *run_units_error(const run_units_t *u)
{
    return u ? u->part.err : "";
}

void run_units_destroy(run_units_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    run_units_t *u = *self_p;
    run_units_join(u, NULL, 0);
    sf_unit_part_destroy(&u->work);
    sf_host_destroy(&u->h);
    free(u);
    *self_p = NULL;
}
