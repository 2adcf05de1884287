/* cli/run_ctl.c — the controller thread of `sigflow run` (cli/run_parts.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "lockstep.h"
#include "run.h"
#include "run_parts.h"

#define REGISTER_TIMEOUT_S 10.0 /* every participant joins well within this */

struct run_ctl {
    sf_controller_t *ctl;     /* owned by the thread while it runs */
    run_bus_t bus;            /* where the bus is */
    uint64_t transit_msgs;    /* check-in/out messages taken */
    uint64_t transit_refused; /* of which the controller refused */
    pthread_t thr;
    bool started;
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

run_ctl_t *run_ctl_new(const sf_scenario_t *sc, const char *host, const uint16_t *ports,
                       int round_timeout_ms, char *err, size_t cap)
{
    run_ctl_t *c = calloc(1, sizeof *c);
    sf_endpoint_t *eps = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *eps);
    if (!c || !eps) {
        free(c);
        free(eps);
        set_err(err, cap, "out of memory");
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
    char why[256] = "";
    c->ctl = sf_controller_new(sc, eps, &co, why, sizeof why);
    free(eps);
    if (!c->ctl) {
        set_err(err, cap, "controller: %s", why[0] ? why : strerror(errno));
        free(c);
        return NULL;
    }
    return c;
}

static int on_msg(void *arg, const sf_bus_rx_t *rx)
{
    run_ctl_t *c = arg;
    if (rx->type == SF_BUS_CMD) { /* the viewer's operator commands; refusals change nothing */
        (void)sf_controller_operator(c->ctl, rx->msg);
        return 0;
    }
    if (rx->type != SF_BUS_TRANSIT_IN && rx->type != SF_BUS_TRANSIT_OUT)
        return 0;
    c->transit_msgs++;
    if (sf_controller_transit_msg(c->ctl, rx->msg) != 0)
        c->transit_refused++; /* counted; the run goes on */
    return 0;
}

static int on_step(void *arg, const Sfbus__Step *st, void *pub)
{
    (void)pub;
    run_ctl_t *c = arg;
    return sf_controller_step(c->ctl, st->k, st->tod_ds);
}

static void *thread_main(void *arg)
{
    run_ctl_t *c = arg;
    const char *topics[] = {"transit.in", "transit.out", "cmd"};
    sf_participant_config_t pc = {.name = "controller",
                                  .role = SFBUS__ROLE__ROLE_CONTROLLER,
                                  .lockstep = 1,
                                  .topics = topics,
                                  .n_topics = 3,
                                  .stage = 1,
                                  .security = c->bus.security};
    sf_participant_t *p = sf_participant_new(c->bus.zctx, c->bus.pub_ep, c->bus.sub_ep, &pc);
    if (!p) {
        set_err(c->err, sizeof c->err, "controller: cannot join the bus: %s",
                sf_bus_strerror(errno));
        c->rc = -1;
        return NULL;
    }
    if (sf_participant_register(p, REGISTER_TIMEOUT_S, on_msg, c) != 0) {
        set_err(c->err, sizeof c->err, "controller: %s", sf_participant_error(p));
        c->rc = -1;
        goto out;
    }
    if (run_part_loop(p, c->bus.stop, on_msg, on_step, c) != 0) {
        set_err(c->err, sizeof c->err, "controller: %s", sf_participant_error(p));
        c->rc = -1;
    }
out:
    sf_participant_destroy(&p);
    return NULL;
}

int run_ctl_start(run_ctl_t *c, const run_bus_t *bus)
{
    if (!c || !bus || c->started) {
        errno = EINVAL;
        return -1;
    }
    c->bus = *bus;
    int e = pthread_create(&c->thr, NULL, thread_main, c);
    if (e) {
        errno = e;
        return -1;
    }
    c->started = true;
    return 0;
}

int run_ctl_join(run_ctl_t *c, char *err, size_t cap)
{
    if (!c)
        return 0;
    if (c->started) {
        pthread_join(c->thr, NULL);
        c->started = false;
    }
    if (c->rc && err)
        set_err(err, cap, "%s", c->err);
    return c->rc;
}

const char *run_ctl_error(const run_ctl_t *c)
{
    return c ? c->err : "";
}

json_t *run_ctl_report(const run_ctl_t *c)
{
    if (!c)
        return NULL;
    json_t *r = sf_controller_report(c->ctl);
    if (r)
        json_object_set_new(r, "transit_messages",
                            json_pack("{s:I, s:I}", "taken", (json_int_t)c->transit_msgs, "refused",
                                      (json_int_t)c->transit_refused));
    return r;
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
