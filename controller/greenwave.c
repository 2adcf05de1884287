/* controller/greenwave.c — green-wave offsets, bandwidth and its optimisation. */
#include "greenwave.h"

#include "webster.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9

void sf_gw_opts_default(sf_gw_opts_t *o)
{
    o->weight_out = 1.0;
    o->weight_in = 1.0;
    o->step_s = 0.1;
    o->restarts = 16;
    o->exhaustive_limit = 200000;
    o->seed = 1;
    o->two_way = false;
}

double sf_gw_objective(const sf_gw_opts_t *o, const sf_gw_band_t *b)
{
    double bo = b->b_out_s, bi = b->b_in_s, w = o->weight_out, k = o->weight_in;
    if (o->two_way && w > 0 && k > 0) {
        /* each band counts only up to the target ratio b' / b = k / w of the other */
        bo = fmin(b->b_out_s, b->b_in_s * w / k);
        bi = fmin(b->b_in_s, b->b_out_s * k / w);
    }
    return w * bo + k * bi;
}

static bool finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

int sf_gw_check(const sf_gw_corridor_t *c)
{
    if (!c || c->n < 1 || c->n > SF_GW_MAX_NODES || !isfinite(c->cycle_s) || c->cycle_s <= 0 ||
        c->cycle_s > 1000)
        goto bad;
    for (uint32_t i = 0; i < c->n; i++) {
        if (!finite_nonneg(c->out_start_s[i]) || c->out_start_s[i] >= c->cycle_s ||
            !finite_nonneg(c->in_start_s[i]) || c->in_start_s[i] >= c->cycle_s ||
            !finite_nonneg(c->green_out_s[i]) || !finite_nonneg(c->green_in_s[i]) ||
            !finite_nonneg(c->tau_out_s[i]) || !finite_nonneg(c->tau_in_s[i]))
            goto bad;
        if (i + 1 < c->n &&
            (!finite_nonneg(c->dist_out_m[i]) || !finite_nonneg(c->dist_in_m[i]) ||
             !isfinite(c->speed_out_mps[i]) || c->speed_out_mps[i] <= 0 ||
             !isfinite(c->speed_in_mps[i]) || c->speed_in_mps[i] <= 0 ||
             !finite_nonneg(c->extra_out_s[i]) || !finite_nonneg(c->extra_in_s[i]) ||
             !finite_nonneg(c->t_out_s[i]) || !finite_nonneg(c->t_in_s[i])))
            goto bad;
    }
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

int sf_gw_update_times(sf_gw_corridor_t *c)
{
    if (!c || c->n < 1 || c->n > SF_GW_MAX_NODES) {
        errno = EINVAL;
        return -1;
    }
    for (uint32_t i = 0; i + 1 < c->n; i++) {
        if (!(c->speed_out_mps[i] > 0) || !(c->speed_in_mps[i] > 0)) {
            errno = EINVAL;
            return -1;
        }
        c->t_out_s[i] = c->dist_out_m[i] / c->speed_out_mps[i] + c->extra_out_s[i];
        c->t_in_s[i] = c->dist_in_m[i] / c->speed_in_mps[i] + c->extra_in_s[i];
    }
    return sf_gw_check(c);
}

int sf_gw_set_speed(sf_gw_corridor_t *c, double speed_mps)
{
    if (!c || c->n < 1 || c->n > SF_GW_MAX_NODES || !isfinite(speed_mps) || speed_mps <= 0) {
        errno = EINVAL;
        return -1;
    }
    for (uint32_t i = 0; i + 1 < c->n; i++)
        c->speed_out_mps[i] = c->speed_in_mps[i] = speed_mps;
    return sf_gw_update_times(c);
}

static double wrap(double t, double cycle)
{
    double r = fmod(t, cycle);
    if (r < 0)
        r += cycle;
    return r >= cycle ? 0 : r;
}

/* Longest interval of departure times (mod C) lying in every arc [a_i, a_i + g_i) mod C.
 * The intersection lives inside the first arc that is not the whole cycle; every further
 * arc removes one gap from it, so at most n intervals remain. *t0 receives the start. */
static double arcs_band(uint32_t n, double cycle, const double *a, const double *g, double *t0)
{
    int r = -1;
    for (uint32_t i = 0; i < n; i++)
        if (g[i] < cycle) {
            r = (int)i;
            break;
        }
    if (r < 0) {
        *t0 = 0;
        return cycle;
    }
    double lo[SF_GW_MAX_NODES + 2], hi[SF_GW_MAX_NODES + 2];
    int m = 1;
    lo[0] = 0;
    hi[0] = g[r];
    for (uint32_t j = 0; j < n && m > 0; j++) {
        if ((int)j == r || g[j] >= cycle)
            continue;
        double s = wrap(a[j] - a[r], cycle);
        double cl[2] = {s - cycle, s}, ch[2] = {s - cycle + g[j], s + g[j]};
        double nlo[SF_GW_MAX_NODES + 2], nhi[SF_GW_MAX_NODES + 2];
        int nm = 0;
        for (int k = 0; k < m; k++)
            for (int q = 0; q < 2; q++) {
                double l = fmax(lo[k], cl[q]), h = fmin(hi[k], ch[q]);
                if (h - l > EPS && nm < SF_GW_MAX_NODES + 2) {
                    nlo[nm] = l;
                    nhi[nm] = h;
                    nm++;
                }
            }
        memcpy(lo, nlo, sizeof(double) * (size_t)nm);
        memcpy(hi, nhi, sizeof(double) * (size_t)nm);
        m = nm;
    }
    double best = 0;
    *t0 = 0;
    for (int k = 0; k < m; k++)
        if (hi[k] - lo[k] > best) {
            best = hi[k] - lo[k];
            *t0 = wrap(a[r] + lo[k], cycle);
        }
    return best;
}

/* Usable window of a green of length g with queue clearance tau: it starts tau later and
 * is tau shorter; an always-green node has no red, so no queue and no shift. */
static double usable_shift(double g, double tau, double cycle)
{
    return g >= cycle ? 0 : fmin(tau, g);
}

/* Bandwidths without argument checks (the corridor is checked by the callers). */
static void band_raw(const sf_gw_corridor_t *c, const double *th, sf_gw_band_t *out)
{
    double a[SF_GW_MAX_NODES] = {0}, g[SF_GW_MAX_NODES] = {0};
    double t = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        double sh = usable_shift(c->green_out_s[i], c->tau_out_s[i], c->cycle_s);
        a[i] = th[i] + c->out_start_s[i] + sh - t;
        g[i] = c->green_out_s[i] - sh;
        if (i + 1 < c->n)
            t += c->t_out_s[i];
    }
    out->b_out_s = arcs_band(c->n, c->cycle_s, a, g, &out->t_out_s);
    t = 0;
    for (uint32_t i = c->n; i-- > 0;) {
        double sh = usable_shift(c->green_in_s[i], c->tau_in_s[i], c->cycle_s);
        a[i] = th[i] + c->in_start_s[i] + sh - t;
        g[i] = c->green_in_s[i] - sh;
        if (i > 0)
            t += c->t_in_s[i - 1];
    }
    out->b_in_s = arcs_band(c->n, c->cycle_s, a, g, &out->t_in_s);
    out->efficiency = (out->b_out_s + out->b_in_s) / (2 * c->cycle_s);
}

int sf_gw_bandwidth(const sf_gw_corridor_t *c, const double *offset_s, sf_gw_band_t *out)
{
    if (sf_gw_check(c) < 0 || !offset_s || !out) {
        errno = EINVAL;
        return -1;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (!isfinite(offset_s[i])) {
            errno = EINVAL;
            return -1;
        }
    band_raw(c, offset_s, out);
    return 0;
}

int sf_gw_one_way(const sf_gw_corridor_t *c, sf_gw_dir_t dir, double *offset_s)
{
    if (sf_gw_check(c) < 0 || !offset_s || (dir != SF_GW_OUTBOUND && dir != SF_GW_INBOUND)) {
        errno = EINVAL;
        return -1;
    }
    /* node i's usable window (green + tau) opens when the vehicle that left the first
     * node at its usable window's opening arrives; node 0 keeps offset 0 */
    if (dir == SF_GW_OUTBOUND) {
        double t = 0, w[SF_GW_MAX_NODES];
        for (uint32_t i = 0; i < c->n; i++) {
            w[i] = c->out_start_s[i] + usable_shift(c->green_out_s[i], c->tau_out_s[i], c->cycle_s);
            offset_s[i] = wrap(w[0] + t - w[i], c->cycle_s);
            if (i + 1 < c->n)
                t += c->t_out_s[i];
        }
    } else {
        double u[SF_GW_MAX_NODES], w[SF_GW_MAX_NODES];
        u[c->n - 1] = 0;
        for (uint32_t i = c->n - 1; i-- > 0;)
            u[i] = u[i + 1] + c->t_in_s[i];
        for (uint32_t i = 0; i < c->n; i++)
            w[i] = c->in_start_s[i] + usable_shift(c->green_in_s[i], c->tau_in_s[i], c->cycle_s);
        for (uint32_t i = 0; i < c->n; i++)
            offset_s[i] = wrap(w[0] - u[0] + u[i] - w[i], c->cycle_s);
    }
    return 0;
}

/* ---- optimisation on an integer grid of offsets (units of step) ---------------------- */

typedef struct {
    const sf_gw_corridor_t *c; /* corridor */
    const sf_gw_opts_t *o;     /* weights and objective form */
    double step;               /* s per unit */
    int64_t m;                 /* units per cycle */
    uint64_t evals;            /* objective evaluations so far */
} search_t;

static double objective(search_t *s, const int64_t *u)
{
    double th[SF_GW_MAX_NODES];
    for (uint32_t i = 0; i < s->c->n; i++)
        th[i] = (double)u[i] * s->step;
    sf_gw_band_t b;
    band_raw(s->c, th, &b);
    s->evals++;
    return sf_gw_objective(s->o, &b);
}

static int64_t umod(int64_t v, int64_t m)
{
    v %= m;
    return v < 0 ? v + m : v;
}

/* Best improving move among single-offset and suffix shifts by d = d_lo, d_lo + stride,
 * ... <= d_hi units; applies it. Returns true when one improved the objective. */
static bool best_move(search_t *s, int64_t *u, double *f, int64_t d_lo, int64_t d_hi,
                      int64_t stride)
{
    uint32_t n = s->c->n;
    double best = *f;
    int64_t best_d = 0;
    uint32_t best_i = 0;
    int best_kind = -1;
    int64_t trial[SF_GW_MAX_NODES];
    for (uint32_t i = 1; i < n; i++)
        for (int kind = 0; kind < 2; kind++) {
            if (kind == 1 && i + 1 == n)
                continue; /* a suffix of one node is the single move */
            uint32_t end = kind ? n : i + 1;
            for (int64_t d = d_lo; d <= d_hi; d += stride) {
                if (d == 0)
                    continue;
                memcpy(trial, u, sizeof(int64_t) * n);
                for (uint32_t j = i; j < end; j++)
                    trial[j] = umod(trial[j] + d, s->m);
                double v = objective(s, trial);
                if (v > best + EPS) {
                    best = v;
                    best_d = d;
                    best_i = i;
                    best_kind = kind;
                }
            }
        }
    if (best_kind < 0)
        return false;
    for (uint32_t j = best_i; j < (best_kind ? n : best_i + 1); j++)
        u[j] = umod(u[j] + best_d, s->m);
    *f = best;
    return true;
}

/* Steepest ascent from u: moves by multiples of cu units over the whole cycle, then fine
 * moves within one coarse unit either way, until neither improves. Every accepted move
 * raises the objective by more than EPS, so this ends. */
static double ascend(search_t *s, int64_t *u, int64_t cu)
{
    double f = objective(s, u);
    for (;;) {
        bool moved = false;
        while (best_move(s, u, &f, cu, s->m - 1, cu))
            moved = true;
        if (cu > 1)
            while (best_move(s, u, &f, -(cu - 1), cu - 1, 1))
                moved = true;
        if (!moved || cu == 1)
            break;
    }
    return f;
}

/* Equal objectives leave a band free to sit anywhere in a first node's longer window. At
 * the first node of a direction the band should start at the window's start: the queue
 * that formed there during the red leaves first and is most of the platoon, so a band
 * starting later leaves it outside. Moving the first node's offset by the band's lead
 * keeps that direction's band (every other window stays where it was); the move is kept
 * only when the weighted objective does not drop (the other band may change). Outbound
 * first, then inbound; node 0 back at offset 0 afterwards. */
static void anchor(search_t *s, int64_t *u)
{
    const sf_gw_corridor_t *c = s->c;
    uint32_t n = c->n;
    for (int d = 0; d < 2; d++) {
        double th[SF_GW_MAX_NODES];
        for (uint32_t i = 0; i < n; i++)
            th[i] = (double)u[i] * s->step;
        sf_gw_band_t b;
        band_raw(c, th, &b);
        uint32_t first = d == 0 ? 0 : n - 1;
        double g = d == 0 ? c->green_out_s[first] : c->green_in_s[first];
        double band = d == 0 ? b.b_out_s : b.b_in_s;
        if (band <= 0 || g >= c->cycle_s)
            continue;
        double st = d == 0 ? c->out_start_s[first] : c->in_start_s[first];
        double tau = d == 0 ? c->tau_out_s[first] : c->tau_in_s[first];
        /* departure of the band at the first node vs the opening of its usable window */
        double open = th[first] + st + usable_shift(g, tau, c->cycle_s);
        double lead = wrap((d == 0 ? b.t_out_s : b.t_in_s) - open, c->cycle_s);
        int64_t du = (int64_t)floor(lead / s->step + 1e-9);
        if (du <= 0 || lead > g - band + s->step) /* rounding noise near a full cycle */
            continue;
        int64_t trial[SF_GW_MAX_NODES];
        memcpy(trial, u, sizeof(int64_t) * n);
        trial[first] = umod(trial[first] + du, s->m);
        int64_t base = trial[0];
        for (uint32_t i = 0; i < n; i++)
            trial[i] = umod(trial[i] - base, s->m);
        if (objective(s, trial) >= objective(s, u) - EPS)
            memcpy(u, trial, sizeof(int64_t) * n);
    }
}

static void to_units(const search_t *s, const double *th, int64_t *u)
{
    for (uint32_t i = 0; i < s->c->n; i++)
        u[i] = umod((int64_t)llround(th[i] / s->step), s->m);
    /* only relative offsets matter: node 0 keeps 0 */
    int64_t base = u[0];
    for (uint32_t i = 0; i < s->c->n; i++)
        u[i] = umod(u[i] - base, s->m);
}

int sf_gw_optimise(const sf_gw_corridor_t *c, const sf_gw_opts_t *o, double *offset_s,
                   sf_gw_band_t *out)
{
    if (sf_gw_check(c) < 0 || !o || !offset_s || !out || !isfinite(o->weight_in) ||
        o->weight_in < 0 || !isfinite(o->weight_out) || o->weight_out < 0 || !isfinite(o->step_s) ||
        o->step_s < 0.01 || o->step_s > c->cycle_s) {
        errno = EINVAL;
        return -1;
    }
    double units = c->cycle_s / o->step_s;
    if (fabs(units - round(units)) > 1e-6) { /* the grid must close on itself modulo C */
        errno = EINVAL;
        return -1;
    }
    search_t s = {.c = c, .o = o, .step = o->step_s, .m = (int64_t)llround(units)};
    uint32_t n = c->n;
    int64_t best_u[SF_GW_MAX_NODES] = {0}, u[SF_GW_MAX_NODES] = {0};
    double best_f = objective(&s, best_u); /* all-zero offsets: the baseline */

    /* exhaustive when the grid is small: exact on the grid */
    double points = pow((double)s.m, (double)(n - 1));
    if (points <= (double)o->exhaustive_limit) {
        for (;;) {
            uint32_t i = 1;
            while (i < n && ++u[i] == s.m)
                u[i++] = 0;
            if (i >= n)
                break;
            double f = objective(&s, u);
            if (f > best_f + EPS) {
                best_f = f;
                memcpy(best_u, u, sizeof u);
            }
        }
    } else {
        int64_t cu = o->step_s < 1.0 ? (int64_t)llround(1.0 / o->step_s) : 1;
        if (cu < 1 || s.m / cu < 10)
            cu = 1;
        double th[SF_GW_MAX_NODES];
        uint64_t lcg = o->seed * 6364136223846793005ull + 1442695040888963407ull;
        /* the two-way objective is flat (0) around one-way waves: more random starts */
        uint32_t n_starts = 4 + (o->two_way ? 4 * o->restarts : o->restarts);
        for (uint32_t st = 0; st < n_starts; st++) {
            switch (st) {
            case 0: /* all-zero: simultaneous system */
                memset(th, 0, sizeof th);
                break;
            case 1:
                sf_gw_one_way(c, SF_GW_OUTBOUND, th);
                break;
            case 2:
                sf_gw_one_way(c, SF_GW_INBOUND, th);
                break;
            case 3: /* alternating system */
                for (uint32_t i = 0; i < n; i++)
                    th[i] = (i % 2) * c->cycle_s / 2;
                break;
            default:
                for (uint32_t i = 0; i < n; i++) {
                    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
                    th[i] = (double)((lcg >> 33) % (uint64_t)s.m) * o->step_s;
                }
            }
            to_units(&s, th, u);
            double f = ascend(&s, u, cu);
            if (f > best_f + EPS) {
                best_f = f;
                memcpy(best_u, u, sizeof u);
            }
        }
    }
    anchor(&s, best_u);
    for (uint32_t i = 0; i < n; i++)
        offset_s[i] = (double)best_u[i] * o->step_s;
    band_raw(c, offset_s, out); /* the reported band is the bandwidth function's */
    return 0;
}

int sf_gw_optimise_speed(sf_gw_corridor_t *c, const sf_gw_opts_t *o, double v_min_mps,
                         double v_max_mps, double *speed_mps, double *offset_s, sf_gw_band_t *out)
{
    if (sf_gw_check(c) < 0 || !o || !speed_mps || !offset_s || !out || !isfinite(v_min_mps) ||
        !isfinite(v_max_mps) || v_min_mps <= 0 || v_max_mps < v_min_mps || v_max_mps > 60) {
        errno = EINVAL;
        return -1;
    }
    const double dv = 1.0 / 3.6;
    double best_f = -1, best_v = v_min_mps;
    double th[SF_GW_MAX_NODES];
    sf_gw_band_t b;
    for (int i = 0;; i++) {
        double v = v_min_mps + i * dv;
        if (v > v_max_mps + 1e-9)
            break;
        if (sf_gw_set_speed(c, v) < 0 || sf_gw_optimise(c, o, th, &b) < 0)
            return -1;
        double f = sf_gw_objective(o, &b);
        if (f > best_f + EPS) {
            best_f = f;
            best_v = v;
            memcpy(offset_s, th, sizeof(double) * c->n);
            *out = b;
        }
    }
    *speed_mps = best_v;
    return sf_gw_set_speed(c, best_v);
}

/* ---- corridor from a scenario ---------------------------------------------------------- */

double sf_gw_clearance_s(double queue_veh_per_lane)
{
    if (!finite_nonneg(queue_veh_per_lane)) {
        errno = EINVAL;
        return -1;
    }
    if (queue_veh_per_lane <= 0)
        return 0;
    return SF_GW_STARTUP_LOST_S + queue_veh_per_lane * 3600.0 / SF_GW_SAT_FLOW_VEH_H;
}

/* Flow (veh/h) turning into link l at its upstream intersection: every movement into l that
 * is not a through movement (the cross streets' left and right turns), its approach's flow
 * shared by the turning ratio among the movements of that turn (as sf_link_flows does). */
static double turn_in_flow(const sf_scenario_t *sc, uint32_t l, const double *flow)
{
    const sf_link_t *lk = &sc->links[l];
    if (lk->from_kind != SF_NODE_INTERSECTION || lk->from_idx >= sc->n_intersections)
        return 0;
    const sf_intersection_t *ix = &sc->intersections[lk->from_idx];
    double q = 0;
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const sf_movement_t *mv = &ix->movements[m];
        if (mv->to_link_idx != l || mv->turn == SF_TURN_THROUGH ||
            mv->from_link_idx >= sc->n_links || mv->turn >= SF_TURN_N)
            continue;
        unsigned same = 0;
        for (uint8_t j = 0; j < ix->n_movements; j++)
            same += ix->movements[j].from_link_idx == mv->from_link_idx &&
                    ix->movements[j].turn == mv->turn;
        q += flow[mv->from_link_idx] * (double)sc->links[mv->from_link_idx].turn_ratio[mv->turn] /
             (double)(same ? same : 1);
    }
    return q;
}

/* Turned-in queue per through lane at link l's stop line after one cycle of cycle_s: the
 * turn-in flow of one cycle, less the share that turns left downstream (its own lane or
 * bay), over the lanes that carry through traffic (all lanes when none is marked). */
static double turn_in_queue(const sf_scenario_t *sc, uint32_t l, const double *flow, double cycle_s)
{
    const sf_link_t *lk = &sc->links[l];
    unsigned lanes = 0;
    for (uint8_t k = 0; k < lk->n_lanes && k < SF_MAX_LANES; k++)
        lanes += (lk->lanes[k].use_mask & SF_LANE_USE_THROUGH) != 0;
    if (lanes == 0)
        lanes = lk->n_lanes ? lk->n_lanes : 1;
    double not_left = 1.0 - (double)lk->turn_ratio[SF_TURN_LEFT];
    return turn_in_flow(sc, l, flow) * cycle_s / 3600.0 * fmax(0, not_left) / lanes;
}

static void set_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static bool node_pos(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx, double *x,
                     double *y)
{
    if (kind == SF_NODE_INTERSECTION && idx < sc->n_intersections) {
        *x = sc->intersections[idx].x_m;
        *y = sc->intersections[idx].y_m;
        return true;
    }
    if (kind == SF_NODE_BOUNDARY && idx < sc->n_boundaries) {
        *x = sc->boundaries[idx].x_m;
        *y = sc->boundaries[idx].y_m;
        return true;
    }
    return false;
}

static int find_plan(const sf_intersection_t *ix, int plan_id)
{
    for (uint8_t p = 0; p < ix->n_plans && p < SF_MAX_PLANS; p++)
        if (ix->plans[p].id == plan_id)
            return p;
    return -1;
}

static int find_link(const sf_scenario_t *sc, uint32_t from_ix, uint32_t to_ix)
{
    for (uint32_t l = 0; l < sc->n_links; l++) {
        const sf_link_t *lk = &sc->links[l];
        if (lk->from_kind == SF_NODE_INTERSECTION && lk->from_idx == from_ix &&
            lk->to_kind == SF_NODE_INTERSECTION && lk->to_idx == to_ix)
            return (int)l;
    }
    return -1;
}

/* Coordinated phase serving the through movement of an approach heading `sign` (+1: the
 * approach comes from the lower side) along axis (0 = x, 1 = y); -1 when none. */
static int coord_phase_for(const sf_scenario_t *sc, uint32_t ix_idx, const sf_plan_t *plan,
                           int axis, int sign)
{
    const sf_intersection_t *ix = &sc->intersections[ix_idx];
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const sf_movement_t *mv = &ix->movements[m];
        if (mv->turn != SF_TURN_THROUGH || mv->from_link_idx >= sc->n_links ||
            mv->sg_idx >= ix->n_sg)
            continue;
        const sf_link_t *lk = &sc->links[mv->from_link_idx];
        double fx, fy, tx, ty;
        if (!node_pos(sc, lk->from_kind, lk->from_idx, &fx, &fy) ||
            !node_pos(sc, lk->to_kind, lk->to_idx, &tx, &ty))
            continue;
        double along = axis == 0 ? tx - fx : ty - fy, across = axis == 0 ? ty - fy : tx - fx;
        if (along * sign <= 0 || fabs(along) < fabs(across))
            continue;
        uint8_t p = ix->sg[mv->sg_idx].phase_idx;
        if (p < ix->n_phases && (plan->coord_phase_mask >> p & 1u))
            return p;
    }
    return -1;
}

/* Start of every phase's green in the plan's cycle, with each ring starting its
 * sequence at 0; false when a phase is not in any sequence. */
static bool phase_starts(const sf_intersection_t *ix, const sf_plan_t *plan, double *start_s)
{
    bool seen[SF_MAX_PHASES] = {false};
    for (uint8_t r = 0; r < ix->n_rings && r < SF_MAX_RINGS; r++) {
        double t = 0;
        for (uint8_t k = 0; k < ix->ring_seq_len[r] && k < SF_MAX_PHASES; k++) {
            uint8_t p = ix->ring_seq[r][k];
            if (p >= ix->n_phases)
                return false;
            start_s[p] = t;
            seen[p] = true;
            t += plan->split_ds[p] / 10.0;
        }
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if ((plan->coord_phase_mask >> p & 1u) && !seen[p])
            return false;
    return true;
}

int sf_gw_green_windows(const sf_intersection_t *ix, const sf_plan_t *plan, double *start_s,
                        double *green_s)
{
    double start[SF_MAX_PHASES] = {0};
    if (!ix || !plan || !start_s || !green_s || ix->n_phases > SF_MAX_PHASES ||
        plan->cycle_ds == 0 || !phase_starts(ix, plan, start)) {
        errno = EINVAL;
        return -1;
    }
    /* the unit's reference: the green start of the first coordinated phase found scanning
     * the rings in order, each in its service order */
    double ref = -1;
    for (uint8_t r = 0; r < ix->n_rings && r < SF_MAX_RINGS && ref < 0; r++)
        for (uint8_t q = 0; q < ix->ring_seq_len[r] && q < SF_MAX_PHASES && ref < 0; q++)
            if (plan->coord_phase_mask >> ix->ring_seq[r][q] & 1u)
                ref = start[ix->ring_seq[r][q]];
    if (ref < 0) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        const sf_phase_t *ph = &ix->phases[p];
        int clr = ph->yellow_ds + ph->red_clear_ds;
        start_s[p] = wrap(start[p] - ref, plan->cycle_ds / 10.0);
        green_s[p] = plan->split_ds[p] > clr && plan->split_mode[p] != SF_SPLIT_OMIT
                         ? (plan->split_ds[p] - clr) / 10.0
                         : 0.0;
    }
    return 0;
}

/* Phases the plan omits (split mode `omit`): they take no time. */
static uint16_t plan_omit(const sf_intersection_t *ix, const sf_plan_t *pl)
{
    uint16_t m = 0;
    for (uint8_t p = 0; p < ix->n_phases && p < SF_MAX_PHASES; p++)
        if (pl->split_mode[p] == SF_SPLIT_OMIT)
            m |= (uint16_t)(1u << p);
    return m;
}

int sf_gw_volume_weights(const sf_gw_corridor_t *c, double *w_out, double *w_in)
{
    if (!c || !w_out || !w_in || !finite_nonneg(c->volume_out_veh_h) ||
        !finite_nonneg(c->volume_in_veh_h)) {
        errno = EINVAL;
        return -1;
    }
    double vo = c->volume_out_veh_h, vi = c->volume_in_veh_h;
    *w_out = vo >= vi ? 1.0 : vo / vi;
    *w_in = vo >= vi ? (vo > 0 ? vi / vo : 1.0) : 1.0;
    return 0;
}

int sf_gw_weights(const sf_scenario_t *sc, const sf_gw_corridor_t *c, double *w_out, double *w_in)
{
    if (!sc || !c || !w_out || !w_in) {
        errno = EINVAL;
        return -1;
    }
    const sf_greenwave_t *g = &sc->control.greenwave;
    if (!(g->weight_out > 0) && !(g->weight_in > 0))
        return sf_gw_volume_weights(c, w_out, w_in);
    if (!finite_nonneg(g->weight_out) || !finite_nonneg(g->weight_in)) {
        errno = EINVAL;
        return -1;
    }
    *w_out = g->weight_out;
    *w_in = g->weight_in;
    return 0;
}

int sf_gw_stretch_plan(const sf_intersection_t *ix, const sf_plan_t *pl, uint32_t cycle_ds,
                       sf_plan_t *out)
{
    if (!ix || !pl || !out || cycle_ds == 0 || cycle_ds > UINT16_MAX ||
        ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    double fixed[SF_MAX_PHASES], green[SF_MAX_PHASES];
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        const sf_phase_t *ph = &ix->phases[p];
        fixed[p] = (ph->yellow_ds + ph->red_clear_ds) / 10.0;
        green[p] = fmax(0, pl->split_ds[p] / 10.0 - fixed[p]);
    }
    uint16_t split[SF_MAX_PHASES] = {0};
    if (sf_split_allocate(ix, cycle_ds, fixed, green, plan_omit(ix, pl), split, NULL) < 0)
        return -1;
    *out = *pl;
    out->cycle_ds = (uint16_t)cycle_ds;
    memcpy(out->split_ds, split, sizeof(uint16_t) * ix->n_phases);
    out->offset_ds = (uint16_t)(out->offset_ds % cycle_ds);
    return 0;
}

/* The axis (0 = x, 1 = y) the nodes spread along most. */
static int corridor_axis(const sf_scenario_t *sc, const uint32_t *node_ix, uint32_t n)
{
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (uint32_t k = 0; k < n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node_ix[k]];
        xmin = fmin(xmin, ix->x_m);
        xmax = fmax(xmax, ix->x_m);
        ymin = fmin(ymin, ix->y_m);
        ymax = fmax(ymax, ix->y_m);
    }
    return xmax - xmin >= ymax - ymin ? 0 : 1;
}

int sf_gw_from_scenario(const sf_scenario_t *sc, const sf_gw_source_t *src, sf_gw_corridor_t *c,
                        uint32_t *node_ix, uint8_t *plan_idx_out, char *err, size_t err_len)
{
    if (!sc || !src || !c || !node_ix || src->cycle_ds > 6000 ||
        (sc->n_intersections > 0 && !sc->intersections) || (sc->n_links > 0 && !sc->links) ||
        !isfinite(src->speed_mps) || src->speed_mps < 0 || src->plan_id < 0 ||
        src->plan_id > SF_MAX_PLANS ||
        (src->line_idx >= 0 && (uint32_t)src->line_idx >= sc->n_lines)) {
        set_err(err, err_len, "invalid arguments");
        errno = EINVAL;
        return -1;
    }
    memset(c, 0, sizeof *c);
    int plan_id = src->plan_id;
    if (plan_id == 0)
        for (uint32_t i = 0; i < sc->n_intersections && plan_id == 0; i++) {
            const sf_intersection_t *ix = &sc->intersections[i];
            if (ix->n_plans == 0)
                continue;
            uint8_t pi = sf_intersection_plan_at(ix, sc->run.start_tod_s);
            if (pi < ix->n_plans && ix->plans[pi].coord_phase_mask)
                plan_id = ix->plans[pi].id;
        }
    if (plan_id == 0) {
        set_err(err, err_len, "no intersection runs a coordinated plan at the start time");
        goto fail;
    }
    uint32_t n = 0;
    uint8_t pidx[SF_GW_MAX_NODES];
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        int p = find_plan(&sc->intersections[i], plan_id);
        if (p < 0 || !sc->intersections[i].plans[p].coord_phase_mask)
            continue;
        if (n == SF_GW_MAX_NODES) {
            set_err(err, err_len, "more than %d coordinated intersections", SF_GW_MAX_NODES);
            goto fail;
        }
        node_ix[n] = i;
        pidx[n++] = (uint8_t)p;
    }
    if (n == 0) {
        set_err(err, err_len, "no intersection has a coordinated plan %d", plan_id);
        goto fail;
    }
    /* the axis the intersections spread along; then order them on it */
    int axis = corridor_axis(sc, node_ix, n);
    for (uint32_t k = 1; k < n; k++)
        for (uint32_t j = k; j > 0; j--) {
            const sf_intersection_t *a = &sc->intersections[node_ix[j - 1]];
            const sf_intersection_t *b = &sc->intersections[node_ix[j]];
            if ((axis == 0 ? a->x_m : a->y_m) <= (axis == 0 ? b->x_m : b->y_m))
                break;
            uint32_t t = node_ix[j];
            node_ix[j] = node_ix[j - 1];
            node_ix[j - 1] = t;
            uint8_t tp = pidx[j];
            pidx[j] = pidx[j - 1];
            pidx[j - 1] = tp;
        }
    const char *out_name = axis == 0 ? "eastbound" : "northbound";
    const char *in_name = axis == 0 ? "westbound" : "southbound";
    c->n = n;
    const sf_plan_t *p0 = &sc->intersections[node_ix[0]].plans[pidx[0]];
    c->cycle_s = (src->cycle_ds ? src->cycle_ds : p0->cycle_ds) / 10.0;
    if (p0->cycle_ds == 0) {
        set_err(err, err_len, "intersection %s: plan %d has no cycle",
                sc->intersections[node_ix[0]].id, plan_id);
        goto fail;
    }
    const sf_veh_params_t *bus = &sc->demand.vtype[SF_VEH_BUS];
    double bus_factor = src->line_idx >= 0 && bus->v0_factor > 0 ? bus->v0_factor : 1.0;
    for (uint32_t k = 0; k < n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node_ix[k]];
        const sf_plan_t *pl = &ix->plans[pidx[k]];
        sf_plan_t stretched;
        if (src->cycle_ds) {
            if (sf_gw_stretch_plan(ix, pl, src->cycle_ds, &stretched) < 0) {
                set_err(err, err_len,
                        "intersection %s: plan %d cannot be stretched to a %.1f s cycle (its "
                        "minimum splits need %.1f s)",
                        ix->id, plan_id, src->cycle_ds / 10.0,
                        sf_min_cycle_ds(ix, plan_omit(ix, pl)) / 10.0);
                goto fail;
            }
            pl = &stretched;
        } else if (pl->cycle_ds != p0->cycle_ds) {
            set_err(err, err_len,
                    "intersection %s: plan %d has a %.1f s cycle but %s has %.1f s: "
                    "coordination needs a common cycle",
                    ix->id, plan_id, pl->cycle_ds / 10.0, sc->intersections[node_ix[0]].id,
                    c->cycle_s);
            goto fail;
        }
        int po = coord_phase_for(sc, node_ix[k], pl, axis, +1);
        int pn = coord_phase_for(sc, node_ix[k], pl, axis, -1);
        if (po < 0 || pn < 0) {
            set_err(err, err_len,
                    "intersection %s: no coordinated phase of plan %d serves the %s through "
                    "movement",
                    ix->id, plan_id, po < 0 ? out_name : in_name);
            goto fail;
        }
        double start[SF_MAX_PHASES] = {0}, green[SF_MAX_PHASES] = {0};
        if (sf_gw_green_windows(ix, pl, start, green) < 0) {
            set_err(err, err_len, "intersection %s: a coordinated phase is in no ring sequence",
                    ix->id);
            goto fail;
        }
        c->out_start_s[k] = start[po];
        c->in_start_s[k] = start[pn];
        c->green_out_s[k] = green[po];
        c->green_in_s[k] = green[pn];
        if (plan_idx_out)
            plan_idx_out[k] = pidx[k];
        if (k + 1 == n)
            break;
        int lo = find_link(sc, node_ix[k], node_ix[k + 1]);
        int li = find_link(sc, node_ix[k + 1], node_ix[k]);
        if (lo < 0 || li < 0) {
            set_err(err, err_len,
                    "no link from %s to %s: the coordinated intersections must follow each "
                    "other along one two-way arterial",
                    lo < 0 ? ix->id : sc->intersections[node_ix[k + 1]].id,
                    lo < 0 ? sc->intersections[node_ix[k + 1]].id : ix->id);
            goto fail;
        }
        const sf_link_t *L[2] = {&sc->links[lo], &sc->links[li]};
        for (int d = 0; d < 2; d++) {
            double len = L[d]->length_m;
            if (!(len > 0)) {
                const sf_intersection_t *b = &sc->intersections[node_ix[k + 1]];
                len = hypot(b->x_m - ix->x_m, b->y_m - ix->y_m);
            }
            double v = src->speed_mps > 0 ? src->speed_mps : L[d]->speed_mps * bus_factor;
            if (!(v > 0)) {
                set_err(err, err_len, "link %s has no speed", L[d]->id);
                goto fail;
            }
            double extra = 0;
            if (src->line_idx >= 0) {
                const sf_line_t *line = &sc->lines[src->line_idx];
                for (uint8_t r = 0; r < line->n_route && r < SF_MAX_ROUTE; r++)
                    if (line->route[r] == (uint32_t)(d == 0 ? lo : li))
                        c->line_dirs |= (uint8_t)(1u << d);
                for (uint8_t s = 0; s < line->n_stops && s < SF_MAX_LINE_STOPS; s++) {
                    const sf_stop_t *st = &line->stops[s];
                    if (st->link_idx != (uint32_t)(d == 0 ? lo : li))
                        continue;
                    extra += (double)st->dwell_s + (double)st->per_pax_s * (double)st->pax_mean;
                    if (bus->a_mps2 > 0 && bus->b_mps2 > 0)
                        extra += v / (2 * (double)bus->a_mps2) + v / (2 * (double)bus->b_mps2);
                }
            }
            if (d == 0) {
                c->dist_out_m[k] = len;
                c->speed_out_mps[k] = v;
                c->extra_out_s[k] = extra;
            } else {
                c->dist_in_m[k] = len;
                c->speed_in_mps[k] = v;
                c->extra_in_s[k] = extra;
            }
        }
    }
    if (n > 1) {
        double *flow = malloc(sizeof(double) * (sc->n_links ? sc->n_links : 1));
        if (!flow) {
            set_err(err, err_len, "out of memory");
            errno = ENOMEM;
            return -1;
        }
        if (sf_link_flows(sc, 1.0, flow) < 0) {
            free(flow);
            if (src->queue_clearance) {
                set_err(err, err_len, "queue clearance: the entry flows cannot be propagated (%s)",
                        errno == ELOOP ? "a loop in the network" : "bad flows or movements");
                goto fail;
            }
            flow = NULL; /* volumes unknown: 0 */
        }
        for (uint32_t k = 0; flow && k + 1 < n; k++) {
            /* both links exist: checked above */
            int lo = find_link(sc, node_ix[k], node_ix[k + 1]);
            int li = find_link(sc, node_ix[k + 1], node_ix[k]);
            c->volume_out_veh_h += flow[lo] / (n - 1);
            c->volume_in_veh_h += flow[li] / (n - 1);
            if (!src->queue_clearance)
                continue;
            c->queue_out_veh[k + 1] = turn_in_queue(sc, (uint32_t)lo, flow, c->cycle_s);
            c->queue_in_veh[k] = turn_in_queue(sc, (uint32_t)li, flow, c->cycle_s);
            c->tau_out_s[k + 1] = sf_gw_clearance_s(c->queue_out_veh[k + 1]);
            c->tau_in_s[k] = sf_gw_clearance_s(c->queue_in_veh[k]);
        }
        free(flow);
    }
    if (sf_gw_update_times(c) < 0) {
        set_err(err, err_len, "the corridor's timings, distances or volumes are out of range");
        goto fail;
    }
    return 0;
fail:
    errno = EINVAL;
    return -1;
}

int sf_gw_relay(const sf_scenario_t *sc, const uint32_t *node_ix, const sf_plan_t *plans,
                sf_gw_corridor_t *c)
{
    if (!sc || !node_ix || !plans || !c || c->n == 0 || c->n > SF_GW_MAX_NODES ||
        !(c->cycle_s > 0) || plans[0].cycle_ds == 0) {
        errno = EINVAL;
        return -1;
    }
    for (uint32_t k = 0; k < c->n; k++)
        if (node_ix[k] >= sc->n_intersections || plans[k].cycle_ds != plans[0].cycle_ds) {
            errno = EINVAL;
            return -1;
        }
    sf_gw_corridor_t r = *c;
    int axis = corridor_axis(sc, node_ix, c->n);
    r.cycle_s = plans[0].cycle_ds / 10.0;
    double scale = r.cycle_s / c->cycle_s;
    for (uint32_t k = 0; k < c->n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node_ix[k]];
        int po = coord_phase_for(sc, node_ix[k], &plans[k], axis, +1);
        int pn = coord_phase_for(sc, node_ix[k], &plans[k], axis, -1);
        double start[SF_MAX_PHASES] = {0}, green[SF_MAX_PHASES] = {0};
        if (po < 0 || pn < 0 || sf_gw_green_windows(ix, &plans[k], start, green) < 0) {
            errno = EINVAL;
            return -1;
        }
        r.out_start_s[k] = start[po];
        r.in_start_s[k] = start[pn];
        r.green_out_s[k] = green[po];
        r.green_in_s[k] = green[pn];
        /* tau is 0 where no queue was computed (first node of a direction, no clearance) */
        r.queue_out_veh[k] = c->queue_out_veh[k] * scale;
        r.queue_in_veh[k] = c->queue_in_veh[k] * scale;
        if (c->tau_out_s[k] > 0)
            r.tau_out_s[k] = sf_gw_clearance_s(r.queue_out_veh[k]);
        if (c->tau_in_s[k] > 0)
            r.tau_in_s[k] = sf_gw_clearance_s(r.queue_in_veh[k]);
    }
    if (sf_gw_check(&r) < 0)
        return -1;
    *c = r;
    return 0;
}

int sf_gw_reoptimise(const sf_gw_corridor_t *c, const sf_gw_opts_t *o, const double *kept_s,
                     double *offset_s, sf_gw_band_t *kept, sf_gw_band_t *out, double *moved_s)
{
    sf_gw_band_t bk, bn;
    if (!c || !o || !kept_s || !offset_s || sf_gw_bandwidth(c, kept_s, &bk) < 0 ||
        sf_gw_optimise(c, o, offset_s, &bn) < 0) {
        errno = EINVAL;
        return -1;
    }
    bool dir_out = bk.b_out_s >= bk.b_in_s;
    if (!o->two_way && (bn.b_out_s >= bn.b_in_s) != dir_out) {
        sf_gw_opts_t one = *o;
        if (dir_out)
            one.weight_in = 0;
        else
            one.weight_out = 0;
        if (sf_gw_optimise(c, &one, offset_s, &bn) < 0)
            return -1;
    }
    /* the common shift, on the 0.1 s grid of the cycle, that moves the nodes least */
    long cyc = lround(c->cycle_s * 10.0);
    if (cyc < 1)
        cyc = 1;
    long off[SF_GW_MAX_NODES], kp[SF_GW_MAX_NODES];
    for (uint32_t k = 0; k < c->n; k++) {
        off[k] = lround(offset_s[k] * 10.0);
        kp[k] = lround(fmod(kept_s[k], c->cycle_s) * 10.0);
    }
    long best_sh = 0, best_d = LONG_MAX;
    for (long sh = 0; sh < cyc; sh++) {
        long d = 0;
        for (uint32_t k = 0; k < c->n; k++) {
            long m = (off[k] + sh - kp[k]) % cyc;
            m = m < 0 ? m + cyc : m;
            d += m < cyc - m ? m : cyc - m;
        }
        if (d < best_d) {
            best_d = d;
            best_sh = sh;
        }
    }
    for (uint32_t k = 0; k < c->n; k++) {
        long m = (off[k] + best_sh) % cyc;
        offset_s[k] = (double)(m < 0 ? m + cyc : m) / 10.0;
    }
    if (sf_gw_bandwidth(c, offset_s, &bn) < 0)
        return -1;
    if (kept)
        *kept = bk;
    if (out)
        *out = bn;
    if (moved_s)
        *moved_s = (double)best_d / 10.0;
    return sf_gw_objective(o, &bn) > sf_gw_objective(o, &bk) ? 1 : 0;
}
