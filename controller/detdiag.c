/* controller/detdiag.c — detector diagnostics at the centre (detdiag.h). */
#include "detdiag.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint16_t phases;    /* phase numbers it serves: bit n - 1 = phase n */
    uint64_t nb;        /* its neighbours (no-activity rule) */
    bool hold;          /* occupied at the last poll */
    double held_s;      /* occupied at every poll and no interval against it, s */
    unsigned greens;    /* green starts of its phases meanwhile */
    unsigned intervals; /* intervals completed meanwhile (no count, full occupancy) */
    double held_nb_veh; /* vehicles its working neighbours counted meanwhile */
    double silent_s;    /* neither occupied at a poll nor counting, s */
    double nb_veh;      /* vehicles its neighbours counted meanwhile */
    double win_veh;     /* erratic: counts of the intervals of the window so far */
    double win_s;       /* ... and their length, s (judged at ERRATIC_WINDOW_S) */
    uint8_t rule;       /* sf_detdiag_rule_t, SF_DETDIAG_OK = working */
    double failed_t;    /* when it failed, s */
} dd_det_t;

typedef struct {
    dd_det_t *det;   /* [n_det] of the intersection (into the shared array) */
    bool seen;       /* observed at least once */
    double last_t;   /* time of the last observation, s */
    uint16_t seq;    /* det_seq then */
    uint16_t greens; /* greens then */
    uint64_t failed; /* bit k = detector k failed */
} dd_ix_t;

/* The erratic rule's counts per minute are judged over whole intervals adding up to at
 * least a minute (detdiag.h). */
#define ERRATIC_WINDOW_S 60.0

struct sf_detdiag_s {
    const sf_scenario_t *sc; /* borrowed */
    sf_detdiag_opts_t o;
    dd_ix_t *ix; /* per intersection */
    dd_det_t *all;
};

void sf_detdiag_opts_default(sf_detdiag_opts_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->max_presence_s = 300;
    o->max_presence_greens = 2;
    o->max_presence_veh = 10;
    o->max_presence_alone_s = 900;
    o->erratic_cpm = 40;
    o->no_activity_s = 600;
    o->no_activity_veh = 30;
    o->max_gap_s = 10;
}

static bool opts_ok(const sf_detdiag_opts_t *o)
{
    return isfinite(o->max_presence_s) && o->max_presence_s > 0 && isfinite(o->max_presence_veh) &&
           o->max_presence_veh > 0 && isfinite(o->max_presence_alone_s) &&
           o->max_presence_alone_s >= o->max_presence_s && isfinite(o->erratic_cpm) &&
           o->erratic_cpm > 0 && isfinite(o->no_activity_s) && o->no_activity_s > 0 &&
           isfinite(o->no_activity_veh) && o->no_activity_veh >= 0 && isfinite(o->max_gap_s) &&
           o->max_gap_s > 0;
}

const char *sf_detdiag_rule_name(sf_detdiag_rule_t r)
{
    switch (r) {
    case SF_DETDIAG_MAX_PRESENCE:
        return "max_presence";
    case SF_DETDIAG_NO_ACTIVITY:
        return "no_activity";
    case SF_DETDIAG_ERRATIC:
        return "erratic";
    default:
        return "ok";
    }
}

/* Phase numbers detector d of ix serves: its phase_mask, else the phases of the movements
 * its lane allows. */
static uint16_t det_phases(const sf_scenario_t *sc, const sf_intersection_t *ix, uint8_t d)
{
    const sf_detector_t *dt = &ix->det[d];
    uint16_t m = 0;
    for (uint8_t p = 0; p < ix->n_phases && p < 16; p++)
        if ((dt->phase_mask >> p & 1u) && ix->phases[p].id >= 1 && ix->phases[p].id <= 16)
            m |= (uint16_t)(1u << (ix->phases[p].id - 1));
    if (m || dt->link_idx >= sc->n_links)
        return m;
    const sf_link_t *ln = &sc->links[dt->link_idx];
    if (dt->lane >= ln->n_lanes)
        return 0;
    for (uint8_t k = 0; k < ix->n_movements; k++) {
        const sf_movement_t *mv = &ix->movements[k];
        if (mv->from_link_idx != dt->link_idx || (unsigned)mv->turn >= SF_TURN_N ||
            !(ln->lanes[dt->lane].use_mask >> mv->turn & 1u) || mv->sg_idx >= ix->n_sg)
            continue;
        uint8_t p = ix->sg[mv->sg_idx].phase_idx;
        if (p < ix->n_phases && ix->phases[p].id >= 1 && ix->phases[p].id <= 16)
            m |= (uint16_t)(1u << (ix->phases[p].id - 1));
    }
    return m;
}

sf_detdiag_t *sf_detdiag_new(const sf_scenario_t *sc, const sf_detdiag_opts_t *o)
{
    sf_detdiag_opts_t def;
    sf_detdiag_opts_default(&def);
    if (!o)
        o = &def;
    if (!sc || !opts_ok(o) || (sc->n_intersections && !sc->intersections)) {
        errno = EINVAL;
        return NULL;
    }
    size_t n_det = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        if (sc->intersections[i].n_det > SF_MAX_DET) {
            errno = EINVAL;
            return NULL;
        }
        n_det += sc->intersections[i].n_det;
    }
    sf_detdiag_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->sc = sc;
    d->o = *o;
    d->ix = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *d->ix);
    d->all = calloc(n_det ? n_det : 1, sizeof *d->all);
    if (!d->ix || !d->all) {
        sf_detdiag_destroy(&d);
        errno = ENOMEM;
        return NULL;
    }
    size_t at = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        dd_ix_t *x = &d->ix[i];
        x->det = &d->all[at];
        at += ix->n_det;
        for (uint8_t k = 0; k < ix->n_det; k++)
            x->det[k].phases = det_phases(sc, ix, k);
        for (uint8_t k = 0; k < ix->n_det; k++)
            for (uint8_t e = 0; e < ix->n_det; e++) {
                const sf_detector_t *a = &ix->det[k], *b = &ix->det[e];
                uint16_t pa = x->det[k].phases, pb = x->det[e].phases;
                if (e != k && a->kind == b->kind && a->link_idx == b->link_idx &&
                    ((pa & pb) || (!pa && !pb)))
                    x->det[k].nb |= (uint64_t)1 << e;
            }
    }
    return d;
}

void sf_detdiag_destroy(sf_detdiag_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_detdiag_t *d = *self_p;
    free(d->ix);
    free(d->all);
    free(d);
    *self_p = NULL;
}

static void restart(dd_det_t *t)
{
    t->held_s = 0;
    t->greens = 0;
    t->intervals = 0;
    t->held_nb_veh = 0;
    t->silent_s = 0;
    t->nb_veh = 0;
    t->win_veh = 0;
    t->win_s = 0;
}

int sf_detdiag_observe(sf_detdiag_t *d, uint32_t i, double t_s, const sf_linkq_obs_t *obs,
                       sf_detdiag_change_t *out, size_t cap)
{
    if (!d || !obs || i >= d->sc->n_intersections || !isfinite(t_s) ||
        (d->ix[i].seen && t_s < d->ix[i].last_t) || (obs->det_interval_s && !obs->det_volume) ||
        (cap && !out)) {
        errno = EINVAL;
        return -1;
    }
    const sf_intersection_t *ix = &d->sc->intersections[i];
    dd_ix_t *x = &d->ix[i];
    double dt = x->seen ? t_s - x->last_t : 0;
    if (dt > d->o.max_gap_s) { /* nothing known about the gap: every timer restarts */
        for (uint8_t k = 0; k < ix->n_det; k++) {
            restart(&x->det[k]);
            x->det[k].hold = false;
        }
        dt = 0;
    }
    bool interval = x->seen && obs->det_seq != x->seq && obs->det_interval_s > 0;
    int n = 0;
    for (uint8_t k = 0; k < ix->n_det; k++) {
        dd_det_t *t = &x->det[k];
        bool on = obs->det_presence >> k & 1u;
        bool counted = interval && obs->det_volume[k] > 0;
        bool part = interval && obs->det_occupancy && obs->det_occupancy[k] < 1000;
        /* counts per minute over the intervals completed since the last judgement, once
         * they cover a minute: one short interval holding one vehicle more than its share
         * (3 at saturation headways in 4 s = 45 a minute) says nothing about a minute */
        bool judged = false, erratic = false;
        double win_s = 0;
        if (interval) {
            t->win_veh += obs->det_volume[k];
            t->win_s += obs->det_interval_s;
            if (t->win_s >= ERRATIC_WINDOW_S) {
                judged = true;
                win_s = t->win_s;
                erratic = t->win_veh * 60.0 / t->win_s > d->o.erratic_cpm;
                t->win_veh = 0;
                t->win_s = 0;
            }
        }
        /* vehicles its working neighbours counted in that interval (both rules use it) */
        double nb_count = 0;
        for (uint8_t e = 0; interval && e < ix->n_det; e++)
            if ((t->nb >> e & 1u) && x->det[e].rule == SF_DETDIAG_OK)
                nb_count += obs->det_volume[e];
        /* max presence: held at every poll, no interval against it */
        if (!on || !t->hold || counted || part) {
            t->held_s = 0;
            t->greens = 0;
            t->intervals = 0;
            t->held_nb_veh = 0;
        } else {
            t->held_s += dt;
            t->intervals += interval;
            t->held_nb_veh += nb_count;
        }
        if (on && (obs->greens & t->phases) && !(x->greens & t->phases) && x->seen)
            t->greens++;
        t->hold = on;
        /* no activity: silent, while the neighbours count */
        if (on || counted) {
            t->silent_s = 0;
            t->nb_veh = 0;
        } else {
            t->silent_s += dt;
            t->nb_veh += nb_count;
        }
        /* max presence needs the movement to have discharged past its neighbours (a
         * standing queue holds them all), or, with no such evidence, the unit-style timer */
        bool discharged = t->held_nb_veh >= d->o.max_presence_veh;
        double need_s = discharged ? d->o.max_presence_s : d->o.max_presence_alone_s;
        sf_detdiag_change_t ch = {.det = k};
        if (t->rule == SF_DETDIAG_OK) {
            if (erratic) {
                ch.rule = SF_DETDIAG_ERRATIC;
                ch.for_s = win_s;
            } else if (on && t->held_s >= need_s && t->intervals >= 1 &&
                       t->greens >= d->o.max_presence_greens) {
                ch.rule = SF_DETDIAG_MAX_PRESENCE;
                ch.for_s = t->held_s;
            } else if (!on && t->nb && t->silent_s >= d->o.no_activity_s &&
                       t->nb_veh >= d->o.no_activity_veh) {
                ch.rule = SF_DETDIAG_NO_ACTIVITY;
                ch.for_s = t->silent_s;
            } else {
                continue;
            }
            ch.failed = true;
            t->rule = (uint8_t)ch.rule;
            t->failed_t = t_s;
            x->failed |= (uint64_t)1 << k;
        } else {
            bool back = t->rule == SF_DETDIAG_MAX_PRESENCE ? !on || counted || part
                        : t->rule == SF_DETDIAG_ERRATIC    ? judged && !erratic
                                                           : on || counted;
            if (!back)
                continue;
            ch.rule = (sf_detdiag_rule_t)t->rule;
            ch.failed = false;
            ch.for_s = t_s - t->failed_t;
            t->rule = SF_DETDIAG_OK;
            restart(t);
            x->failed &= ~((uint64_t)1 << k);
        }
        if ((size_t)n < cap)
            out[n++] = ch;
    }
    x->greens = obs->greens;
    x->seq = obs->det_seq;
    x->last_t = t_s;
    x->seen = true;
    return n;
}

uint64_t sf_detdiag_failed(const sf_detdiag_t *d, uint32_t i)
{
    return d && i < d->sc->n_intersections ? d->ix[i].failed : 0;
}
