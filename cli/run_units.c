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

#define LAMP_REFRESH_S 1.0 /* every unit's lamps are republished this often */

struct run_units {
    sf_host_t *h;           /* the units; owned by the thread while it runs */
    uint32_t n_ix;          /* intersections in the scenario */
    uint32_t n_units;       /* units hosted: the intersections not bridged */
    int32_t *unit_of;       /* per intersection: host index, -1 bridged (HIL) */
    uint32_t *ix_of;        /* per hosted unit: its intersection index */
    uint64_t *presence;     /* per unit: detector bits as last received */
    uint8_t *sent_lamps;    /* per unit SF_MAX_SG codes last published */
    uint8_t *sent_mode;     /* per unit control mode last published */
    uint8_t *sent_fault;    /* per unit fault code last published */
    bool *sent_any;         /* per unit: published at least once */
    uint32_t refresh_steps; /* republish everything every this many steps */
    struct pollfd *pfd;     /* the host's descriptors, reused across waits */
    size_t cap_pfd;         /* entries allocated in pfd */
    uint64_t lamp_msgs;     /* LampStates published */
    run_part_t part;        /* its thread */
};

run_units_t *run_units_new(const sf_scenario_t *sc, const char *listen, uint16_t base_port,
                           char *err, size_t cap)
{
    run_units_t *u = calloc(1, sizeof *u);
    if (!u) {
        run_part_set_err(err, cap, "out of memory");
        return NULL;
    }
    u->n_ix = sc->n_intersections;
    size_t n = u->n_ix ? u->n_ix : 1;
    u->presence = calloc(n, sizeof *u->presence);
    u->unit_of = calloc(n, sizeof *u->unit_of);
    u->ix_of = calloc(n, sizeof *u->ix_of);
    u->sent_lamps = calloc(n * SF_MAX_SG, 1);
    u->sent_mode = calloc(n, 1);
    u->sent_fault = calloc(n, 1);
    u->sent_any = calloc(n, sizeof *u->sent_any);
    if (!u->presence || !u->unit_of || !u->ix_of || !u->sent_lamps || !u->sent_mode ||
        !u->sent_fault || !u->sent_any) {
        run_part_set_err(err, cap, "out of memory");
        goto fail;
    }
    uint32_t step_ds = (uint32_t)(sc->run.step_s * 10.0 + 0.5);
    u->refresh_steps = (uint32_t)(LAMP_REFRESH_S * 10.0 / (double)(step_ds ? step_ds : 1) + 0.5);
    sf_host_config_t hc = {.listen_addr = listen, .base_port = base_port};
    u->h = sf_host_new(&hc);
    if (!u->h) {
        run_part_set_err(err, cap, "units host on %s: %s", listen, strerror(errno));
        goto fail;
    }
    for (uint32_t i = 0; i < u->n_ix; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        if (ix->unit_host[0]) {
            u->unit_of[i] = -1; /* a real unit takes its place (the bridge, run_bridge.c) */
            continue;
        }
        sf_unit_config_t ucfg;
        sf_unit_config_default(&ucfg, ix);
        sf_unit_config_from_control(&ucfg, &sc->control);
        int j = sf_host_add_unit(u->h, ix, &ucfg);
        if (j < 0) {
            run_part_set_err(err, cap, "unit %s: %s", ix->id, sf_unit_strerror(errno));
            goto fail;
        }
        u->unit_of[i] = j;
        u->ix_of[j] = i;
        u->n_units++;
    }
    return u;
fail:
    run_units_destroy(&u);
    return NULL;
}

uint16_t run_units_port(const run_units_t *u, uint32_t i)
{
    return u && i < u->n_ix && u->unit_of[i] >= 0 ? sf_host_port(u->h, (size_t)u->unit_of[i]) : 0;
}

static int on_msg(void *arg, const sf_bus_rx_t *rx)
{
    run_units_t *u = arg;
    if (rx->type != SF_BUS_DET)
        return 0;
    const Sfbus__DetectorInputs *m = (const Sfbus__DetectorInputs *)(const void *)rx->msg;
    if (m->ix < u->n_ix && u->unit_of[m->ix] >= 0) /* a bad or bridged index changes nothing */
        u->presence[u->unit_of[m->ix]] = m->presence;
    return 0;
}

/* Step k: detectors in, clock, tick, then the lamps that changed (all of them once per
 * LAMP_REFRESH_S, so a viewer that joins late has every intersection within a second). */
static int on_step(void *arg, const Sfbus__Step *st, void *pub)
{
    run_units_t *u = arg;
    if (sf_host_set_clock(u->h, st->tod_ds) != 0)
        return -1;
    for (uint32_t i = 0; i < u->n_units; i++)
        sf_unit_set_detectors(sf_host_unit(u->h, i), u->presence[i]);
    sf_host_tick(u->h);
    bool refresh = u->refresh_steps && st->k % u->refresh_steps == 0;
    for (uint32_t i = 0; i < u->n_units; i++) {
        const sf_unit_status_t *s = sf_unit_status(sf_host_unit(u->h, i));
        uint8_t *last = &u->sent_lamps[(size_t)i * SF_MAX_SG];
        bool changed = !u->sent_any[i] || s->control_mode != u->sent_mode[i] ||
                       s->fault_code != u->sent_fault[i] || memcmp(last, s->sg_lamp, s->n_sg) != 0;
        if (!changed && !refresh)
            continue;
        uint32_t remaining[SF_MAX_SG];
        for (uint8_t g = 0; g < s->n_sg; g++)
            remaining[g] = s->sg_remaining_ds[g];
        Sfbus__LampStates m = SFBUS__LAMP_STATES__INIT;
        m.k = st->k;
        m.ix = u->ix_of[i];
        m.lamps.data = (uint8_t *)s->sg_lamp;
        m.lamps.len = s->n_sg;
        m.n_remaining_ds = s->n_sg;
        m.remaining_ds = remaining;
        m.control_mode = s->control_mode;
        m.fault_code = s->fault_code;
        m.greens = s->greens;
        m.yellows = s->yellows;
        m.reds = s->reds;
        m.plan = s->active_plan;
        m.cycle_timer_ds = s->cycle_timer_ds;
        if (sf_bus_send(pub, &m.base) != 0)
            return -1;
        u->lamp_msgs++;
        memcpy(last, s->sg_lamp, s->n_sg);
        u->sent_mode[i] = s->control_mode;
        u->sent_fault[i] = s->fault_code;
        u->sent_any[i] = true;
    }
    return 0;
}

/* The host's sockets into the participant's poll set (sf_participant_io_t.fill). The
 * pollfd buffer grows to the largest count seen and is reused. */
static size_t io_fill(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms)
{
    run_units_t *u = arg;
    size_t n = sf_host_pollfds(u->h, u->pfd, u->cap_pfd);
    if (n > u->cap_pfd) {
        struct pollfd *p = realloc(u->pfd, n * 2 * sizeof *p);
        if (!p)
            return 0; /* serve nothing this round; the next wait tries again */
        u->pfd = p;
        u->cap_pfd = n * 2;
        n = sf_host_pollfds(u->h, u->pfd, u->cap_pfd);
    }
    if (n > cap)
        return n;
    for (size_t i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){NULL, u->pfd[i].fd, u->pfd[i].fd < 0 ? 0 : ZMQ_POLLIN, 0};
    *max_wait_ms = sf_host_wait_hint_ms(u->h);
    return n;
}

static int io_serve(void *arg, const zmq_pollitem_t *items, size_t n)
{
    run_units_t *u = arg;
    (void)items;
    (void)n;
    /* Also when nothing was readable: a partial frame may have timed out (wait hint). */
    if (sf_host_poll(u->h, 0) < 0 && errno != EINTR)
        return -1;
    return 0;
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
    rp->on_msg = on_msg;
    rp->on_step = on_step;
    rp->arg = u;
    rp->io = (sf_participant_io_t){.fill = io_fill, .serve = io_serve, .arg = u};
    return run_part_start(&u->part, bus);
}

int run_units_join(run_units_t *u, char *err, size_t cap)
{
    return u ? run_part_join(&u->part, err, cap) : 0;
}

uint64_t run_units_lamp_msgs(const run_units_t *u)
{
    return u ? u->lamp_msgs : 0;
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
    sf_host_destroy(&u->h);
    free(u->presence);
    free(u->unit_of);
    free(u->ix_of);
    free(u->sent_lamps);
    free(u->sent_mode);
    free(u->sent_fault);
    free(u->sent_any);
    free(u->pfd);
    free(u);
    *self_p = NULL;
}
