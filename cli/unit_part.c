/* cli/unit_part.c — emulated units as a lockstep participant (cli/unit_part.h). */
#include "unit_part.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LAMP_REFRESH_S 1.0 /* every unit's lamps are republished this often */

struct sf_unit_part {
    sf_host_t *h;           /* the units, host index j; borrowed */
    uint32_t n_ix;          /* intersections in the scenario */
    size_t n_units;         /* units hosted */
    int32_t *local_of;      /* per intersection: host index, -1 = not hosted here */
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
};

sf_unit_part_t *sf_unit_part_new(sf_host_t *h, uint32_t n_ix, const uint32_t *ix_of, size_t n_units,
                                 double step_s)
{
    if (!h || (n_units && !ix_of) || n_units > n_ix) {
        errno = EINVAL;
        return NULL;
    }
    sf_unit_part_t *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->h = h;
    u->n_ix = n_ix;
    u->n_units = n_units;
    size_t n = n_units ? n_units : 1;
    u->local_of = malloc((n_ix ? n_ix : 1) * sizeof *u->local_of);
    u->ix_of = calloc(n, sizeof *u->ix_of);
    u->presence = calloc(n, sizeof *u->presence);
    u->sent_lamps = calloc(n * SF_MAX_SG, 1);
    u->sent_mode = calloc(n, 1);
    u->sent_fault = calloc(n, 1);
    u->sent_any = calloc(n, sizeof *u->sent_any);
    if (!u->local_of || !u->ix_of || !u->presence || !u->sent_lamps || !u->sent_mode ||
        !u->sent_fault || !u->sent_any) {
        errno = ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < n_ix; i++)
        u->local_of[i] = -1;
    for (size_t j = 0; j < n_units; j++) {
        if (ix_of[j] >= n_ix || u->local_of[ix_of[j]] >= 0) {
            errno = EINVAL;
            goto fail;
        }
        u->local_of[ix_of[j]] = (int32_t)j;
        u->ix_of[j] = ix_of[j];
    }
    uint32_t step_ds = (uint32_t)(step_s * 10.0 + 0.5);
    u->refresh_steps = (uint32_t)(LAMP_REFRESH_S * 10.0 / (double)(step_ds ? step_ds : 1) + 0.5);
    return u;
fail:
    sf_unit_part_destroy(&u);
    return NULL;
}

int sf_unit_part_local(const sf_unit_part_t *u, uint32_t ix)
{
    return u && ix < u->n_ix ? u->local_of[ix] : -1;
}

int sf_unit_part_on_msg(void *arg, const sf_bus_rx_t *rx)
{
    sf_unit_part_t *u = arg;
    if (rx->type != SF_BUS_DET)
        return 0;
    const Sfbus__DetectorInputs *m = (const Sfbus__DetectorInputs *)(const void *)rx->msg;
    if (m->ix < u->n_ix && u->local_of[m->ix] >= 0)
        u->presence[u->local_of[m->ix]] = m->presence;
    return 0;
}

int sf_unit_part_on_step(void *arg, const Sfbus__Step *st, void *pub)
{
    sf_unit_part_t *u = arg;
    if (sf_host_set_clock(u->h, st->tod_ds) != 0)
        return -1;
    for (size_t i = 0; i < u->n_units; i++)
        sf_unit_set_detectors(sf_host_unit(u->h, i), u->presence[i]);
    sf_host_tick(u->h);
    bool refresh = u->refresh_steps && st->k % u->refresh_steps == 0;
    for (size_t i = 0; i < u->n_units; i++) {
        const sf_unit_status_t *s = sf_unit_status(sf_host_unit(u->h, i));
        uint8_t *last = &u->sent_lamps[i * SF_MAX_SG];
        bool changed = !u->sent_any[i] || s->control_mode != u->sent_mode[i] ||
                       s->fault_code != u->sent_fault[i] || memcmp(last, s->sg_lamp, s->n_sg) != 0;
        if (!changed && !refresh)
            continue;
        uint32_t remaining[SF_MAX_SG];
        for (uint8_t g = 0; g < s->n_sg; g++)
            remaining[g] = s->sg_remaining_ds[g];
        Sfbus__LampStates m = SFBUS__LAMP_STATES__INIT;
        m.k = st->k;
        m.ix = u->ix_of[i]; /* the scenario's index: the simulator's, on every host */
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

/* The host's sockets into the participant's poll set. The pollfd buffer grows to the
 * largest count seen and is reused. */
static size_t io_fill(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms)
{
    sf_unit_part_t *u = arg;
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
    sf_unit_part_t *u = arg;
    (void)items;
    (void)n;
    /* Also when nothing was readable: a partial frame may have timed out (wait hint). */
    if (sf_host_poll(u->h, 0) < 0 && errno != EINTR)
        return -1;
    return 0;
}

sf_participant_io_t sf_unit_part_io(sf_unit_part_t *u)
{
    return (sf_participant_io_t){.fill = io_fill, .serve = io_serve, .arg = u};
}

uint64_t sf_unit_part_lamp_msgs(const sf_unit_part_t *u)
{
    return u ? u->lamp_msgs : 0;
}

void sf_unit_part_destroy(sf_unit_part_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_unit_part_t *u = *self_p;
    free(u->local_of);
    free(u->ix_of);
    free(u->presence);
    free(u->sent_lamps);
    free(u->sent_mode);
    free(u->sent_fault);
    free(u->sent_any);
    free(u->pfd);
    free(u);
    *self_p = NULL;
}
