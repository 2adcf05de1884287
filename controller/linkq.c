/* controller/linkq.c — link and movement vehicle estimates from detector data (linkq.h). */
#include "linkq.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t from, to; /* approach and exit link */
    uint8_t turn;      /* sf_turn_t */
    uint8_t phase_no;  /* phase number of its signal group */
    double in_share;   /* share of the approach's inflow that is this movement */
    double lanes;      /* lanes' worth of stop line it discharges over (sum of lane shares) */
    bool has_det;      /* some lane allowing it has a stop-bar detector */
    double n;          /* estimate, veh */
    double pred_in;    /* predicted arrivals since the last counted inflow */
    double pred_out;   /* predicted departures since the last counted outflow */
    double rate_in;    /* arrival rate, veh/s */
    bool rate_known;   /* rate_in measured at least once */
    double idle_s;     /* its stop-bar lanes idle on green so far, s */
    bool cleared;      /* its queue was seen to clear since the last counts */
} lq_mv_t;

typedef struct {
    uint32_t first;            /* global index of its first movement */
    double last_t;             /* time of the last observation, s */
    bool seen;                 /* observed at least once */
    uint16_t seq;              /* det_seq at the last observation */
    double held_s[SF_MAX_DET]; /* detector occupied without a break, s */
    double free_s[SF_MAX_DET]; /* detector unoccupied without a break, s */
    bool held[SF_MAX_DET];     /* a standing queue reaches it (until it is free long enough) */
    uint64_t failed;           /* detectors diagnosed failed: ignored (sf_linkq_set_failed) */
} lq_ix_t;

struct sf_linkq_s {
    const sf_scenario_t *sc; /* borrowed */
    sf_linkq_opts_t o;       /* jam_spacing_m resolved */
    lq_mv_t *mv;             /* every movement, by intersection then movement index */
    lq_ix_t *ix;             /* per intersection */
    double *storage;         /* per link, veh */
    double *tff_s;           /* per link, free-flow travel time, s */
    bool *entry_counted;     /* per link: an entry whose advance detectors count every arrival */
};

void sf_linkq_opts_default(sf_linkq_opts_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->idle_clear_s = 3;
    o->advance_hold_s = 4;
    o->sat_veh_h_lane = 1800;
    o->entry_rate_keep = 0.5;
    o->free_occ_pct = 30;
}

static bool lane_allows(const sf_lane_t *l, unsigned t)
{
    return (l->use_mask >> t & 1u) != 0; /* a loaded lane always names its turns */
}

double sf_linkq_lane_share(const sf_link_t *ln, uint8_t lane, sf_turn_t t)
{
    if (!ln || lane >= ln->n_lanes || ln->n_lanes > SF_MAX_LANES || (unsigned)t >= SF_TURN_N) {
        errno = EINVAL;
        return -1;
    }
    double rsum = 0;
    for (unsigned k = 0; k < SF_TURN_N; k++)
        rsum += ln->turn_ratio[k] > 0 ? ln->turn_ratio[k] : 0;
    double w[SF_TURN_N] = {0}, wsum = 0;
    for (unsigned k = 0; k < SF_TURN_N; k++) {
        if (!lane_allows(&ln->lanes[lane], k))
            continue;
        unsigned nl = 0;
        for (uint8_t j = 0; j < ln->n_lanes; j++)
            nl += lane_allows(&ln->lanes[j], k);
        double r = rsum > 0 ? fmax(ln->turn_ratio[k], 0.0) : 1.0;
        w[k] = r / nl;
        wsum += w[k];
    }
    return wsum > 0 ? w[t] / wsum : 0;
}

double sf_linkq_storage_veh(const sf_link_t *ln, double jam_m)
{
    if (!ln || !isfinite(jam_m) || jam_m <= 0 || ln->n_lanes > SF_MAX_LANES) {
        errno = EINVAL;
        return -1;
    }
    double m = 0;
    for (uint8_t j = 0; j < ln->n_lanes; j++)
        m += ln->lanes[j].bay_m > 0 ? ln->lanes[j].bay_m : ln->length_m;
    return m / jam_m;
}

static bool opts_ok(const sf_linkq_opts_t *o)
{
    return isfinite(o->jam_spacing_m) && o->jam_spacing_m >= 0 && isfinite(o->idle_clear_s) &&
           o->idle_clear_s > 0 && isfinite(o->advance_hold_s) && o->advance_hold_s > 0 &&
           isfinite(o->sat_veh_h_lane) && o->sat_veh_h_lane > 0 && isfinite(o->entry_rate_keep) &&
           o->entry_rate_keep >= 0 && o->entry_rate_keep <= 1 && isfinite(o->free_occ_pct) &&
           o->free_occ_pct > 0 && o->free_occ_pct <= 100;
}

static uint32_t n_mv_total(const sf_scenario_t *sc)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        n += sc->intersections[i].n_movements;
    return n;
}

/* Whether link l is an entry whose advance count detectors see every arrival: one on each
 * full-length lane, each upstream of every turn bay (vehicles bound for a bay pass them
 * before they change into it). */
static bool entry_counted(const sf_scenario_t *sc, uint32_t l)
{
    const sf_link_t *ln = &sc->links[l];
    if (ln->from_kind != SF_NODE_BOUNDARY || ln->to_kind != SF_NODE_INTERSECTION ||
        ln->to_idx >= sc->n_intersections)
        return false;
    const sf_intersection_t *ix = &sc->intersections[ln->to_idx];
    bool any = false;
    for (uint8_t j = 0; j < ln->n_lanes; j++) {
        if (ln->lanes[j].bay_m > 0)
            continue;
        bool has = false;
        for (uint8_t d = 0; d < ix->n_det; d++) {
            const sf_detector_t *dt = &ix->det[d];
            if (dt->kind != SF_DET_COUNT || dt->link_idx != l)
                continue;
            for (uint8_t k = 0; k < ln->n_lanes; k++)
                if (ln->lanes[k].bay_m >= dt->distance_m)
                    return false;
            has = has || dt->lane == j;
        }
        if (!has)
            return false;
        any = true;
    }
    return any;
}

sf_linkq_t *sf_linkq_new(const sf_scenario_t *sc, const sf_linkq_opts_t *o)
{
    sf_linkq_opts_t def;
    sf_linkq_opts_default(&def);
    if (!o)
        o = &def;
    if (!sc || !opts_ok(o) || (sc->n_intersections && !sc->intersections) ||
        (sc->n_links && !sc->links)) {
        errno = EINVAL;
        return NULL;
    }
    sf_linkq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->sc = sc;
    q->o = *o;
    if (q->o.jam_spacing_m == 0) {
        const sf_veh_params_t *car = &sc->demand.vtype[SF_VEH_CAR];
        if (car->length_m <= 0)
            car = sf_vtype_default(SF_VEH_CAR);
        q->o.jam_spacing_m = (double)car->length_m + car->s0_m;
    }
    uint32_t nm = n_mv_total(sc);
    q->mv = calloc(nm ? nm : 1, sizeof *q->mv);
    q->ix = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *q->ix);
    q->storage = calloc(sc->n_links ? sc->n_links : 1, sizeof *q->storage);
    q->tff_s = calloc(sc->n_links ? sc->n_links : 1, sizeof *q->tff_s);
    q->entry_counted = calloc(sc->n_links ? sc->n_links : 1, sizeof *q->entry_counted);
    if (!q->mv || !q->ix || !q->storage || !q->tff_s || !q->entry_counted)
        goto fail;
    for (uint32_t l = 0; l < sc->n_links; l++) {
        const sf_link_t *ln = &sc->links[l];
        q->storage[l] = sf_linkq_storage_veh(ln, q->o.jam_spacing_m);
        q->tff_s[l] = ln->speed_mps > 0 ? ln->length_m / ln->speed_mps : 0;
        if (q->storage[l] < 0)
            goto bad;
    }
    for (uint32_t l = 0; l < sc->n_links; l++)
        q->entry_counted[l] = entry_counted(sc, l);
    uint32_t g = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        q->ix[i].first = g;
        for (uint8_t m = 0; m < ix->n_movements; m++, g++) {
            const sf_movement_t *sm = &ix->movements[m];
            lq_mv_t *v = &q->mv[g];
            if (sm->from_link_idx >= sc->n_links || sm->to_link_idx >= sc->n_links ||
                sm->sg_idx >= ix->n_sg || ix->sg[sm->sg_idx].phase_idx >= ix->n_phases ||
                (unsigned)sm->turn >= SF_TURN_N)
                goto bad;
            const sf_link_t *ln = &sc->links[sm->from_link_idx];
            if (ln->to_kind != SF_NODE_INTERSECTION || ln->to_idx != i)
                goto bad;
            v->from = sm->from_link_idx;
            v->to = sm->to_link_idx;
            v->turn = (uint8_t)sm->turn;
            v->phase_no = ix->phases[ix->sg[sm->sg_idx].phase_idx].id;
            for (uint8_t j = 0; j < ln->n_lanes; j++)
                v->lanes += sf_linkq_lane_share(ln, j, sm->turn);
            for (uint8_t d = 0; d < ix->n_det; d++)
                if (ix->det[d].kind == SF_DET_PRESENCE && ix->det[d].link_idx == v->from &&
                    ix->det[d].lane < ln->n_lanes &&
                    lane_allows(&ln->lanes[ix->det[d].lane], v->turn))
                    v->has_det = true;
        }
        /* inflow shares: the link's turning ratios over the movements it has here */
        for (uint8_t m = 0; m < ix->n_movements; m++) {
            lq_mv_t *v = &q->mv[q->ix[i].first + m];
            const sf_link_t *ln = &sc->links[v->from];
            double sum = 0, same = 0;
            for (uint8_t k = 0; k < ix->n_movements; k++) {
                const lq_mv_t *w = &q->mv[q->ix[i].first + k];
                if (w->from != v->from)
                    continue;
                sum += fmax(ln->turn_ratio[w->turn], 0.0);
                same += w->turn == v->turn;
            }
            double r = fmax(ln->turn_ratio[v->turn], 0.0);
            if (sum <= 0) { /* no ratios: equal shares */
                unsigned cnt = 0;
                for (uint8_t k = 0; k < ix->n_movements; k++)
                    cnt += q->mv[q->ix[i].first + k].from == v->from;
                v->in_share = 1.0 / cnt;
            } else {
                v->in_share = r / sum / same;
            }
        }
    }
    return q;
bad:
    errno = EINVAL;
fail:
    sf_linkq_destroy(&q);
    return NULL;
}

void sf_linkq_destroy(sf_linkq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_linkq_t *q = *self_p;
    free(q->mv);
    free(q->ix);
    free(q->storage);
    free(q->tff_s);
    free(q->entry_counted);
    free(q);
    *self_p = NULL;
}

static bool is_green(uint16_t greens, uint8_t phase_no)
{
    return phase_no >= 1 && phase_no <= 16 && (greens >> (phase_no - 1) & 1u);
}

/* Whether a stop-bar detector on a lane of v's approach that allows v's turn is occupied. */
static bool lanes_occupied(const sf_intersection_t *ix, const sf_link_t *ln, const lq_mv_t *v,
                           uint64_t presence)
{
    for (uint8_t d = 0; d < ix->n_det; d++) {
        const sf_detector_t *dt = &ix->det[d];
        if (dt->kind == SF_DET_PRESENCE && dt->link_idx == v->from && dt->lane < ln->n_lanes &&
            lane_allows(&ln->lanes[dt->lane], v->turn) && (presence >> d & 1u))
            return true;
    }
    return false;
}

/* Whether v has a stop-bar detector not in failed on a lane allowing its turn. */
static bool has_working(const sf_intersection_t *ix, const sf_link_t *ln, const lq_mv_t *v,
                        uint64_t failed)
{
    if (!failed)
        return v->has_det;
    for (uint8_t d = 0; d < ix->n_det; d++) {
        const sf_detector_t *dt = &ix->det[d];
        if (dt->kind == SF_DET_PRESENCE && dt->link_idx == v->from && dt->lane < ln->n_lanes &&
            lane_allows(&ln->lanes[dt->lane], v->turn) && !(failed >> d & 1u))
            return true;
    }
    return false;
}

/* Counted departures of movement v in the interval: each stop-bar lane's count times the
 * lane's share of v's turn. A failed detector's lane is not counted: v's counted
 * departures are scaled by its detected lanes over its working ones (each turn's traffic
 * is spread evenly over the lanes allowing it, as the shares assume, so the working lanes
 * speak for the failed ones); -1 when v's detected lanes all failed (nothing counted). */
static double counted_out(const sf_intersection_t *ix, const sf_link_t *ln, const lq_mv_t *v,
                          const uint16_t *vol, uint64_t failed)
{
    double out = 0, all = 0, ok = 0;
    for (uint8_t d = 0; d < ix->n_det; d++) {
        const sf_detector_t *dt = &ix->det[d];
        if (dt->kind != SF_DET_PRESENCE || dt->link_idx != v->from || dt->lane >= ln->n_lanes)
            continue;
        double w = sf_linkq_lane_share(ln, dt->lane, (sf_turn_t)v->turn);
        bool allows = lane_allows(&ln->lanes[dt->lane], v->turn);
        all += allows;
        if (failed >> d & 1u)
            continue;
        ok += allows;
        out += vol[d] * w;
    }
    if (all == ok)
        return out; /* nothing failed here (also no detector at all): as counted */
    return ok > 0 ? out * (all / ok) : -1;
}

/* Whether entry link l's arrivals are counted by its advance detectors, none failed. */
static bool entry_ok(const sf_linkq_t *q, const sf_intersection_t *ix, uint32_t l, uint64_t failed)
{
    if (!q->entry_counted[l])
        return false;
    for (uint8_t d = 0; failed && d < ix->n_det; d++)
        if (ix->det[d].kind == SF_DET_COUNT && ix->det[d].link_idx == l && (failed >> d & 1u))
            return false;
    return true;
}

/* A new interval of intersection i: its movements' counted departures replace the
 * predicted ones, and the movements of the links they enter get their counted arrivals. */
static void take_counts(sf_linkq_t *q, uint32_t i, const sf_linkq_obs_t *obs)
{
    const sf_scenario_t *sc = q->sc;
    const sf_intersection_t *ix = &sc->intersections[i];
    uint64_t failed = q->ix[i].failed;
    double dur = obs->det_interval_s;
    double into[SF_MAX_MOVEMENTS] = {0}; /* counted departures by movement */
    /* entries with advance counts: arrivals of each such link in the interval, or -1 when
     * one of its detectors was not free (the queue stood over it) */
    double arr[SF_MAX_DET] = {0};
    for (uint8_t d = 0; d < ix->n_det; d++) {
        const sf_detector_t *dt = &ix->det[d];
        if (dt->kind != SF_DET_COUNT || !entry_ok(q, ix, dt->link_idx, failed))
            continue;
        bool free_ = obs->det_occupancy && obs->det_occupancy[d] < q->o.free_occ_pct * 10;
        for (uint8_t e = 0; e < ix->n_det; e++) /* accumulated on the link's first detector */
            if (ix->det[e].kind == SF_DET_COUNT && ix->det[e].link_idx == dt->link_idx) {
                if (arr[e] >= 0)
                    arr[e] = free_ ? arr[e] + obs->det_volume[d] : -1;
                break;
            }
    }
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        lq_mv_t *v = &q->mv[q->ix[i].first + m];
        const sf_link_t *ln = &sc->links[v->from];
        double out = counted_out(ix, ln, v, obs->det_volume, failed);
        bool counted = out >= 0;
        if (!counted) /* every detector of its lanes failed: the predicted departures stand */
            out = v->pred_out;
        into[m] = out;
        v->n -= out - v->pred_out;
        v->pred_out = 0;
        if (entry_ok(q, ix, v->from, failed)) {
            /* arrivals counted upstream of the queue: kept from the last free interval */
            for (uint8_t e = 0; e < ix->n_det; e++)
                if (ix->det[e].kind == SF_DET_COUNT && ix->det[e].link_idx == v->from) {
                    if (arr[e] >= 0) { /* counted arrivals replace the predicted ones */
                        v->n += arr[e] * v->in_share - v->pred_in;
                        double r = arr[e] * v->in_share / dur;
                        v->rate_in = v->rate_known ? q->o.entry_rate_keep * v->rate_in +
                                                         (1 - q->o.entry_rate_keep) * r
                                                   : r;
                        v->rate_known = true;
                    }
                    break;
                }
            v->pred_in = 0;
        } else if (ln->from_kind == SF_NODE_BOUNDARY && !counted) {
            v->pred_in = 0; /* no counts: the rate stands */
        } else if (ln->from_kind == SF_NODE_BOUNDARY) {
            /* no upstream counts: arrivals ~ departures (moving average); while the queue
             * does not clear, departures are only a lower bound of the arrivals: the rate
             * does not fall */
            double r = out / dur;
            if (v->rate_known && !v->cleared && r < v->rate_in)
                r = v->rate_in;
            v->rate_in = v->rate_known
                             ? q->o.entry_rate_keep * v->rate_in + (1 - q->o.entry_rate_keep) * r
                             : r;
            v->rate_known = true;
            v->pred_in = 0;
        }
        v->cleared = false;
        if (v->n < 0)
            v->n = 0;
    }
    /* arrivals on the links leaving i, shared among each link's movements downstream by
     * its turning ratios: the counted arrivals replace the predicted ones, and set the rate */
    for (uint32_t l = 0; l < sc->n_links; l++) {
        const sf_link_t *ln = &sc->links[l];
        if (ln->from_kind != SF_NODE_INTERSECTION || ln->from_idx != i ||
            ln->to_kind != SF_NODE_INTERSECTION || ln->to_idx >= sc->n_intersections)
            continue;
        uint32_t j = ln->to_idx;
        const sf_intersection_t *jx = &sc->intersections[j];
        double in_l = 0;
        for (uint8_t m = 0; m < ix->n_movements; m++)
            if (q->mv[q->ix[i].first + m].to == l)
                in_l += into[m];
        for (uint8_t k = 0; k < jx->n_movements; k++) {
            lq_mv_t *w = &q->mv[q->ix[j].first + k];
            if (w->from != l)
                continue;
            w->n += in_l * w->in_share - w->pred_in;
            w->pred_in = 0;
            w->rate_in = in_l * w->in_share / dur;
            w->rate_known = true;
            if (w->n < 0)
                w->n = 0;
        }
    }
}

int sf_linkq_observe(sf_linkq_t *q, uint32_t i, double t_s, const sf_linkq_obs_t *obs)
{
    if (!q || !obs || i >= q->sc->n_intersections || !isfinite(t_s) ||
        (q->ix[i].seen && t_s < q->ix[i].last_t) || (obs->det_interval_s && !obs->det_volume)) {
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = q->sc;
    const sf_intersection_t *ix = &sc->intersections[i];
    lq_ix_t *x = &q->ix[i];
    double dt = x->seen ? t_s - x->last_t : 0;
    uint64_t pres = obs->det_presence & ~x->failed; /* a failed detector's presence means nothing */
    /* 1. prediction since the last poll; a movement whose detectors all failed is taken to
     * discharge whenever it is green (its queue as the model alone says it) */
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        lq_mv_t *v = &q->mv[x->first + m];
        const sf_link_t *ln = &sc->links[v->from];
        double a = v->rate_in * dt;
        v->n += a;
        v->pred_in += a;
        bool blind = x->failed && v->has_det && !has_working(ix, ln, v, x->failed);
        if (is_green(obs->greens, v->phase_no) && (blind || lanes_occupied(ix, ln, v, pres))) {
            double d = fmin(v->n, q->o.sat_veh_h_lane / 3600.0 * v->lanes * dt);
            v->n -= d;
            v->pred_out += d;
        }
    }
    /* 2. a completed detector interval */
    if (x->seen && obs->det_seq != x->seq && obs->det_interval_s > 0)
        take_counts(q, i, obs);
    /* 3. occupancy corrections */
    double lb[SF_MAX_MOVEMENTS] = {0};
    for (uint8_t d = 0; d < ix->n_det && d < SF_MAX_DET; d++) {
        const sf_detector_t *dt_ = &ix->det[d];
        if (x->failed >> d & 1u) { /* ignored: no lower bound from it */
            x->held_s[d] = x->free_s[d] = 0;
            x->held[d] = false;
            continue;
        }
        bool on = obs->det_presence >> d & 1u;
        x->held_s[d] = on ? x->held_s[d] + dt : 0;
        x->free_s[d] = on ? 0 : x->free_s[d] + dt;
        /* the queue's tail stays over the detector while it moves up in gaps shorter
         * than idle_clear_s (the discharge of a standing queue) */
        if (x->held_s[d] >= q->o.advance_hold_s)
            x->held[d] = true;
        else if (x->free_s[d] >= q->o.idle_clear_s)
            x->held[d] = false;
        if (!x->held[d] || dt_->link_idx >= sc->n_links)
            continue;
        const sf_link_t *ln = &sc->links[dt_->link_idx];
        if (dt_->lane >= ln->n_lanes)
            continue;
        double veh = ((double)dt_->distance_m + dt_->length_m) / q->o.jam_spacing_m;
        for (uint8_t m = 0; m < ix->n_movements; m++) {
            const lq_mv_t *v = &q->mv[x->first + m];
            if (v->from == dt_->link_idx)
                lb[m] += veh * sf_linkq_lane_share(ln, dt_->lane, (sf_turn_t)v->turn);
        }
    }
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        lq_mv_t *v = &q->mv[x->first + m];
        const sf_link_t *ln = &sc->links[v->from];
        bool idle = has_working(ix, ln, v, x->failed) && is_green(obs->greens, v->phase_no) &&
                    !lanes_occupied(ix, ln, v, pres);
        v->idle_s = idle ? v->idle_s + dt : 0;
        if (v->idle_s >= q->o.idle_clear_s) {
            v->n = fmin(v->n, v->rate_in * q->tff_s[v->from]);
            v->cleared = true;
        }
        if (v->n < lb[m])
            v->n = lb[m];
    }
    /* 4. storage: the movements of an approach together hold at most the link's storage */
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const lq_mv_t *v = &q->mv[x->first + m];
        double sum = 0;
        bool first = true;
        for (uint8_t k = 0; k < ix->n_movements; k++) {
            const lq_mv_t *w = &q->mv[x->first + k];
            if (w->from != v->from)
                continue;
            if (k < m)
                first = false;
            sum += w->n;
        }
        if (!first || sum <= q->storage[v->from])
            continue;
        double f = q->storage[v->from] / sum;
        for (uint8_t k = 0; k < ix->n_movements; k++)
            if (q->mv[x->first + k].from == v->from)
                q->mv[x->first + k].n *= f;
    }
    x->seq = obs->det_seq;
    x->last_t = t_s;
    x->seen = true;
    return 0;
}

double sf_linkq_movement(const sf_linkq_t *q, uint32_t i, uint8_t mv)
{
    if (!q || i >= q->sc->n_intersections || mv >= q->sc->intersections[i].n_movements) {
        errno = EINVAL;
        return -1;
    }
    return q->mv[q->ix[i].first + mv].n;
}

double sf_linkq_link(const sf_linkq_t *q, uint32_t l)
{
    if (!q || l >= q->sc->n_links) {
        errno = EINVAL;
        return -1;
    }
    const sf_link_t *ln = &q->sc->links[l];
    if (ln->to_kind != SF_NODE_INTERSECTION || ln->to_idx >= q->sc->n_intersections)
        return 0;
    uint32_t i = ln->to_idx;
    double sum = 0;
    for (uint8_t m = 0; m < q->sc->intersections[i].n_movements; m++)
        if (q->mv[q->ix[i].first + m].from == l)
            sum += q->mv[q->ix[i].first + m].n;
    return sum;
}

double sf_linkq_storage(const sf_linkq_t *q, uint32_t l)
{
    if (!q || l >= q->sc->n_links) {
        errno = EINVAL;
        return -1;
    }
    return q->storage[l];
}

int sf_linkq_set_failed(sf_linkq_t *q, uint32_t i, uint64_t failed)
{
    if (!q || i >= q->sc->n_intersections) {
        errno = EINVAL;
        return -1;
    }
    uint8_t n = q->sc->intersections[i].n_det;
    q->ix[i].failed = n >= 64 ? failed : failed & (((uint64_t)1 << n) - 1);
    return 0;
}
