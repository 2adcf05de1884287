/* cli/run_ctl.c — the controller thread of `sigflow run` (cli/run_parts.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "ctl_part.h"
#include "lockstep.h"
#include "run.h"
#include "run_parts.h"

struct run_ctl {
    sf_controller_t *ctl; /* owned by the thread while it runs */
    sf_ctl_part_t work;   /* what a step does with it (cli/ctl_part.h) */
    run_part_t part;      /* its thread */
};

run_ctl_t *run_ctl_new(const sf_scenario_t *sc, const char *host, const uint16_t *ports,
                       int round_timeout_ms, const char *events_path, char *err, size_t cap)
{
    run_ctl_t *c = calloc(1, sizeof *c);
    sf_endpoint_t *eps = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *eps);
    if (!c || !eps) {
        free(c);
        free(eps);
        run_part_set_err(err, cap, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        /* A bridged intersection (HIL) is controlled at its real unit, like any other:
         * the unit then has two Modbus clients, this controller and the bridge. */
        const sf_intersection_t *ix = &sc->intersections[i];
        bool real = ix->unit_host[0] != 0;
        snprintf(eps[i].host, sizeof eps[i].host, "%s", real ? ix->unit_host : host);
        eps[i].port = real ? (ix->unit_port ? ix->unit_port : 502) : ports[i];
    }
    sf_controller_opts_t co;
    sf_controller_opts_default(&co);
    co.greenwave = sc->control.greenwave.enabled; /* offsets from the optimiser, as planned */
    if (round_timeout_ms > 0)
        co.round_timeout_ms = round_timeout_ms;
    co.log_path = events_path;
    char why[256] = "";
    c->ctl = sf_controller_new(sc, eps, &co, why, sizeof why);
    free(eps);
    if (!c->ctl) {
        run_part_set_err(err, cap, "controller: %s", why[0] ? why : strerror(errno));
        free(c);
        return NULL;
    }
    c->work.ctl = c->ctl;
    return c;
}

int run_ctl_start(run_ctl_t *c, const run_bus_t *bus)
{
    if (!c) {
        errno = EINVAL;
        return -1;
    }
    run_part_t *rp = &c->part;
    rp->name = "controller";
    rp->role = SFBUS__ROLE__ROLE_CONTROLLER;
    rp->stage = 1;
    rp->topics[0] = "transit.in";
    rp->topics[1] = "transit.out";
    rp->topics[2] = "cmd";
    rp->n_topics = 3;
    rp->on_msg = sf_ctl_part_on_msg;
    rp->on_step = sf_ctl_part_on_step;
    rp->arg = &c->work;
    return run_part_start(&c->part, bus);
}

int run_ctl_join(run_ctl_t *c, char *err, size_t cap)
{
    return c ? run_part_join(&c->part, err, cap) : 0;
}

const char *run_ctl_error(const run_ctl_t *c)
{
    return c ? c->part.err : "";
}

json_t *run_ctl_report(const run_ctl_t *c)
{
    return c ? sf_ctl_part_report(&c->work) : NULL;
}

json_t *run_ctl_comms_perf(const run_ctl_t *c)
{
    return c ? sf_controller_comms_perf(c->ctl) : NULL;
}

void run_ctl_destroy(run_ctl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    run_ctl_t *c = *self_p;
    run_ctl_join(c, NULL, 0);
    sf_controller_destroy(&c->ctl);
    free(c);
    *self_p = NULL;
}
