/* controller/webster.c — Webster cycle and splits, delay formulas, split allocation. */
#include "webster.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Barrier groups of an intersection: the scenario's, or one group of every phase when it
 * declares none. Each phase belongs to the first group that holds it. */
typedef struct {
    uint8_t n;                      /* number of groups */
    uint16_t mask[SF_MAX_BARRIERS]; /* bit i = phases[i] in the group */
} barriers_t;

static int get_barriers(const sf_intersection_t *ix, barriers_t *b)
{
    if (ix->n_phases == 0 || ix->n_phases > SF_MAX_PHASES || ix->n_barriers > SF_MAX_BARRIERS)
        return -1;
    uint16_t all = (uint16_t)((1u << ix->n_phases) - 1u);
    uint16_t seen = 0;
    if (ix->n_barriers == 0) {
        b->n = 1;
        b->mask[0] = all;
        return 0;
    }
    b->n = ix->n_barriers;
    for (uint8_t k = 0; k < ix->n_barriers; k++) {
        b->mask[k] = (uint16_t)(ix->barrier_mask[k] & all & ~seen);
        seen |= b->mask[k];
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].ring < 1 || ix->phases[p].ring > SF_MAX_RINGS)
            return -1;
    return seen == all ? 0 : -1;
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

void sf_webster_opts_default(sf_webster_opts_t *o)
{
    o->sat_through_veh_h = 1800.0;
    o->sat_left_veh_h = 1700.0;
    o->sat_right_veh_h = 1600.0;
    o->startup_lost_s = 2.0;
    o->end_gain_s = 2.0;
    o->min_cycle_s = 40.0;
    o->max_cycle_s = 180.0;
    o->demand_factor = 1.0;
}

double sf_webster_cycle(double lost_s, double y_total)
{
    if (!isfinite(lost_s) || !isfinite(y_total) || lost_s < 0 || y_total < 0) {
        errno = EINVAL;
        return -1;
    }
    if (y_total >= 1.0) {
        errno = EDOM;
        return -1;
    }
    return (1.5 * lost_s + 5.0) / (1.0 - y_total);
}

double sf_webster_green(double y_i, double y_total, double cycle_s, double lost_s)
{
    if (!isfinite(y_i) || !isfinite(y_total) || !isfinite(cycle_s) || !isfinite(lost_s) ||
        y_i < 0 || y_total <= 0 || y_i > y_total || lost_s < 0 || cycle_s < lost_s) {
        errno = EINVAL;
        return -1;
    }
    return y_i / y_total * (cycle_s - lost_s);
}

double sf_webster_delay(double cycle_s, double green_s, double q_veh_h, double s_veh_h)
{
    if (!isfinite(cycle_s) || !isfinite(green_s) || !isfinite(q_veh_h) || !isfinite(s_veh_h) ||
        cycle_s <= 0 || green_s <= 0 || green_s > cycle_s || q_veh_h < 0 || s_veh_h <= 0) {
        errno = EINVAL;
        return -1;
    }
    double l = green_s / cycle_s;
    double q = q_veh_h / 3600.0, s = s_veh_h / 3600.0;
    double x = q / (l * s);
    if (x >= 1.0) {
        errno = EDOM;
        return -1;
    }
    double d = cycle_s * (1 - l) * (1 - l) / (2 * (1 - l * x));
    if (q > 0) /* the random and correction terms vanish with the flow */
        d += x * x / (2 * q * (1 - x)) - 0.65 * cbrt(cycle_s / (q * q)) * pow(x, 2 + 5 * l);
    return d;
}

double sf_hcm_d1(double cycle_s, double g_over_c, double x)
{
    if (!isfinite(cycle_s) || !isfinite(g_over_c) || !isfinite(x) || cycle_s <= 0 ||
        g_over_c <= 0 || g_over_c > 1 || x < 0) {
        errno = EINVAL;
        return -1;
    }
    double den = 1 - fmin(1.0, x) * g_over_c;
    if (den <= 0) /* g/C = 1 and X >= 1: no red, no uniform delay */
        return 0;
    return 0.5 * cycle_s * (1 - g_over_c) * (1 - g_over_c) / den;
}

double sf_hcm_d2(double x, double capacity_veh_h, double period_h, double k, double i)
{
    if (!isfinite(x) || !isfinite(capacity_veh_h) || !isfinite(period_h) || !isfinite(k) ||
        !isfinite(i) || x < 0 || capacity_veh_h <= 0 || period_h <= 0 || k <= 0 || i <= 0) {
        errno = EINVAL;
        return -1;
    }
    double a = x - 1;
    return 900 * period_h * (a + sqrt(a * a + 8 * k * i * x / (capacity_veh_h * period_h)));
}

/* Number of movements of intersection ix leaving link l with turn t. */
static unsigned same_turn_count(const sf_intersection_t *ix, uint32_t l, sf_turn_t t)
{
    unsigned n = 0;
    for (uint8_t m = 0; m < ix->n_movements; m++)
        if (ix->movements[m].from_link_idx == l && ix->movements[m].turn == t)
            n++;
    return n;
}

/* Flow of movement m of intersection ix from the flow of its approach link. */
static double movement_flow(const sf_scenario_t *sc, const sf_intersection_t *ix, uint8_t m,
                            const double *link_flow)
{
    const sf_movement_t *mv = &ix->movements[m];
    const sf_link_t *lk = &sc->links[mv->from_link_idx];
    unsigned n = same_turn_count(ix, mv->from_link_idx, mv->turn);
    return link_flow[mv->from_link_idx] * (double)lk->turn_ratio[mv->turn] / (double)n;
}

static bool movements_valid(const sf_scenario_t *sc, const sf_intersection_t *ix)
{
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const sf_movement_t *mv = &ix->movements[m];
        if (mv->from_link_idx >= sc->n_links || mv->to_link_idx >= sc->n_links ||
            mv->turn >= SF_TURN_N || mv->sg_idx >= ix->n_sg ||
            ix->sg[mv->sg_idx].phase_idx >= ix->n_phases)
            return false;
    }
    return true;
}

int sf_link_flows(const sf_scenario_t *sc, double demand_factor, double *flow_veh_h)
{
    if (!sc || !flow_veh_h || !isfinite(demand_factor) || demand_factor < 0 ||
        (sc->n_links > 0 && !sc->links) || (sc->n_intersections > 0 && !sc->intersections) ||
        (sc->demand.n_entries > 0 && !sc->demand.entries)) {
        errno = EINVAL;
        return -1;
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        if (!movements_valid(sc, &sc->intersections[i])) {
            errno = EINVAL;
            return -1;
        }
    double inflow_max = 0;
    for (uint32_t l = 0; l < sc->n_links; l++)
        flow_veh_h[l] = 0;
    for (uint32_t e = 0; e < sc->demand.n_entries; e++) {
        const sf_entry_t *en = &sc->demand.entries[e];
        if (en->link_idx >= sc->n_links || !isfinite(en->flow_veh_h) || en->flow_veh_h < 0) {
            errno = EINVAL;
            return -1;
        }
        flow_veh_h[en->link_idx] += (double)en->flow_veh_h * demand_factor;
        inflow_max = fmax(inflow_max, flow_veh_h[en->link_idx]);
    }
    /* Gauss-Seidel sweeps: a link's flow is its entry flow plus what the movements feeding
     * it carry. On an acyclic network this settles after (longest path) sweeps. */
    double *entry = malloc(sizeof(double) * (sc->n_links > 0 ? sc->n_links : 1));
    if (!entry)
        return -1;
    memcpy(entry, flow_veh_h, sizeof(double) * sc->n_links);
    for (int sweep = 0; sweep < 1000; sweep++) {
        double change = 0;
        for (uint32_t l = 0; l < sc->n_links; l++) {
            double f = entry[l];
            const sf_link_t *lk = &sc->links[l];
            if (lk->from_kind == SF_NODE_INTERSECTION && lk->from_idx < sc->n_intersections) {
                const sf_intersection_t *ix = &sc->intersections[lk->from_idx];
                for (uint8_t m = 0; m < ix->n_movements; m++)
                    if (ix->movements[m].to_link_idx == l)
                        f += movement_flow(sc, ix, m, flow_veh_h);
            }
            change = fmax(change, fabs(f - flow_veh_h[l]));
            flow_veh_h[l] = f;
        }
        if (change <= 1e-9 * (1 + inflow_max)) {
            free(entry);
            return 0;
        }
    }
    free(entry);
    errno = ELOOP;
    return -1;
}

uint16_t sf_phase_min_split_ds(const sf_intersection_t *ix, uint8_t p)
{
    const sf_phase_t *ph = &ix->phases[p];
    unsigned serve = ph->min_green_ds;
    unsigned ped = (unsigned)ph->walk_ds + ph->ped_clear_ds;
    if (ph->walk_ds > 0 && ped > serve)
        serve = ped;
    unsigned m = serve + ph->yellow_ds + ph->red_clear_ds;
    return (uint16_t)(m > UINT16_MAX ? UINT16_MAX : m);
}

/* Minimum split of phase p unless the plan omits it (then 0: it takes no time). */
static uint16_t min_ds(const sf_intersection_t *ix, uint8_t p, uint16_t omit)
{
    return (omit >> p & 1u) ? 0 : sf_phase_min_split_ds(ix, p);
}

uint32_t sf_min_cycle_ds(const sf_intersection_t *ix, uint16_t omit_mask)
{
    barriers_t b;
    if (!ix || get_barriers(ix, &b) < 0)
        return 0;
    uint32_t total = 0;
    for (uint8_t k = 0; k < b.n; k++) {
        uint32_t ring_sum[SF_MAX_RINGS] = {0}, need = 0;
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (b.mask[k] >> p & 1u)
                ring_sum[ix->phases[p].ring - 1] += min_ds(ix, p, omit_mask);
        for (int r = 0; r < SF_MAX_RINGS; r++)
            if (ring_sum[r] > need)
                need = ring_sum[r];
        total += need;
    }
    return total;
}

/* Integers out[i] >= lo[i] near x[i] that sum to total: floors, then the missing units to
 * the largest fractional parts (or the excess taken from the most rounded-up). */
static int apportion(const double *x, const uint32_t *lo, int n, uint32_t total, uint32_t *out)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        double f = floor(x[i] + 1e-7);
        out[i] = f < (double)lo[i] ? lo[i] : (uint32_t)f;
        sum += out[i];
    }
    while (sum != (int64_t)total) {
        int best = -1;
        double best_key = 0;
        for (int i = 0; i < n; i++) {
            double rem = x[i] - (double)out[i]; /* what rounding took away */
            if (sum < (int64_t)total) {
                if (x[i] <= 0 && lo[i] == 0)
                    continue; /* a phase that takes no time (omitted) stays at 0 */
                if (best < 0 || rem > best_key) {
                    best = i;
                    best_key = rem;
                }
            } else if (out[i] > lo[i] && (best < 0 || rem < best_key)) {
                best = i;
                best_key = rem;
            }
        }
        if (best < 0)
            return -1;
        if (sum < (int64_t)total) {
            out[best]++;
            sum++;
        } else {
            out[best]--;
            sum--;
        }
    }
    return 0;
}

int sf_splits_round(const sf_intersection_t *ix, const double *split_s, uint32_t cycle_ds,
                    uint16_t omit_mask, uint16_t *split_ds)
{
    barriers_t b;
    if (!ix || !split_s || !split_ds || cycle_ds == 0 || cycle_ds > UINT16_MAX ||
        get_barriers(ix, &b) < 0) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (!isfinite(split_s[p]) || split_s[p] < 0) {
            errno = EINVAL;
            return -1;
        }
    /* Barrier lengths first, so that every ring switches barrier at the same instant. */
    double bx[SF_MAX_BARRIERS] = {0};
    uint32_t blo[SF_MAX_BARRIERS] = {0}, bint[SF_MAX_BARRIERS] = {0};
    for (uint8_t k = 0; k < b.n; k++) {
        double ring_x[SF_MAX_RINGS] = {0};
        uint32_t ring_lo[SF_MAX_RINGS] = {0};
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (b.mask[k] >> p & 1u) {
                ring_x[ix->phases[p].ring - 1] += split_s[p] * 10.0;
                ring_lo[ix->phases[p].ring - 1] += min_ds(ix, p, omit_mask);
            }
        bx[k] = 0;
        blo[k] = 0;
        for (int r = 0; r < SF_MAX_RINGS; r++) {
            bx[k] = fmax(bx[k], ring_x[r]);
            blo[k] = ring_lo[r] > blo[k] ? ring_lo[r] : blo[k];
        }
    }
    if (apportion(bx, blo, b.n, cycle_ds, bint) < 0) {
        errno = ERANGE;
        return -1;
    }
    for (uint8_t k = 0; k < b.n; k++) {
        for (uint8_t r = 1; r <= SF_MAX_RINGS; r++) {
            double x[SF_MAX_PHASES];
            uint32_t lo[SF_MAX_PHASES], out[SF_MAX_PHASES];
            uint8_t idx[SF_MAX_PHASES];
            int n = 0;
            for (uint8_t p = 0; p < ix->n_phases; p++)
                if ((b.mask[k] >> p & 1u) && ix->phases[p].ring == r) {
                    idx[n] = p;
                    x[n] = split_s[p] * 10.0;
                    lo[n] = min_ds(ix, p, omit_mask);
                    n++;
                }
            if (n == 0)
                continue;
            if (apportion(x, lo, n, bint[k], out) < 0) {
                errno = ERANGE;
                return -1;
            }
            for (int i = 0; i < n; i++)
                split_ds[idx[i]] = (uint16_t)out[i];
        }
    }
    return 0;
}

/* What phase p wants at level lambda. */
static double want(const sf_intersection_t *ix, uint16_t omit, uint8_t p, const double *fixed_s,
                   const double *w, double lambda)
{
    double m = min_ds(ix, p, omit) / 10.0;
    return w[p] > 0 ? fmax(m, fixed_s[p] + lambda * w[p]) : fmax(m, fixed_s[p]);
}

/* Length of barrier k at level lambda: its most demanding ring. ring_crit (may be NULL)
 * receives that ring (1-based). */
static double barrier_len(const sf_intersection_t *ix, uint16_t omit, uint16_t mask,
                          const double *fixed_s, const double *w, double lambda, uint8_t *ring_crit)
{
    double ring_sum[SF_MAX_RINGS] = {0};
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (mask >> p & 1u)
            ring_sum[ix->phases[p].ring - 1] += want(ix, omit, p, fixed_s, w, lambda);
    double best = 0;
    uint8_t best_r = 1;
    for (uint8_t r = 0; r < SF_MAX_RINGS; r++)
        if (ring_sum[r] > best + 1e-12) {
            best = ring_sum[r];
            best_r = (uint8_t)(r + 1);
        }
    if (ring_crit)
        *ring_crit = best_r;
    return best;
}

static double cycle_len(const sf_intersection_t *ix, uint16_t omit, const barriers_t *b,
                        const double *fixed_s, const double *w, double lambda)
{
    double c = 0;
    for (uint8_t k = 0; k < b->n; k++)
        c += barrier_len(ix, omit, b->mask[k], fixed_s, w, lambda, NULL);
    return c;
}

/* Level at which the phases selected by mask with weights w want `total` seconds in
 * sum(len) (len is monotone in lambda). The lowest level is where every weighted phase
 * sits at its minimum. */
static double solve_level(const sf_intersection_t *ix, uint16_t omit, const barriers_t *b,
                          uint16_t ring_mask, const double *fixed_s, const double *w, double total)
{
    double lo = 0;
    bool any = false;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (w[p] > 0) {
            double l = (min_ds(ix, p, omit) / 10.0 - fixed_s[p]) / w[p];
            lo = any ? fmin(lo, l) : l;
            any = true;
        }
    lo -= 1.0;
    double hi = lo + 1.0;
    for (int i = 0; i < 200; i++) {
        double len = b ? cycle_len(ix, omit, b, fixed_s, w, hi)
                       : barrier_len(ix, omit, ring_mask, fixed_s, w, hi, NULL);
        if (len >= total)
            break;
        hi = lo + (hi - lo) * 2.0;
    }
    for (int i = 0; i < 200 && hi - lo > 1e-12 * (1 + fabs(hi)); i++) {
        double mid = 0.5 * (lo + hi);
        double len = b ? cycle_len(ix, omit, b, fixed_s, w, mid)
                       : barrier_len(ix, omit, ring_mask, fixed_s, w, mid, NULL);
        if (len < total)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double sf_split_cycle_at(const sf_intersection_t *ix, const double *fixed_s, const double *weight,
                         uint16_t omit_mask, double lambda)
{
    barriers_t b;
    if (!ix || !fixed_s || !weight || !isfinite(lambda) || get_barriers(ix, &b) < 0) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (!isfinite(weight[p]) || weight[p] < 0 || !isfinite(fixed_s[p]) || fixed_s[p] < 0) {
            errno = EINVAL;
            return -1;
        }
    double f[SF_MAX_PHASES], w[SF_MAX_PHASES];
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        bool om = omit_mask >> p & 1u;
        f[p] = om ? 0 : fixed_s[p];
        w[p] = om ? 0 : weight[p];
    }
    return cycle_len(ix, omit_mask, &b, f, w, lambda);
}

int sf_split_allocate(const sf_intersection_t *ix, uint32_t cycle_ds, const double *fixed_s,
                      const double *weight, uint16_t omit_mask, uint16_t *split_ds, bool *critical)
{
    barriers_t b;
    if (!ix || !fixed_s || !weight || !split_ds || cycle_ds == 0 || cycle_ds > UINT16_MAX ||
        get_barriers(ix, &b) < 0) {
        errno = EINVAL;
        return -1;
    }
    /* an omitted phase takes no time: no minimum, no fixed part, no weight */
    double w[SF_MAX_PHASES], f[SF_MAX_PHASES];
    bool any = false;
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        if (!isfinite(weight[p]) || weight[p] < 0 || !isfinite(fixed_s[p]) || fixed_s[p] < 0) {
            errno = EINVAL;
            return -1;
        }
        bool om = omit_mask >> p & 1u;
        w[p] = om ? 0 : weight[p];
        f[p] = om ? 0 : fixed_s[p];
        any = any || w[p] > 0;
    }
    if (!any) /* no demand information: share the time above the minimums equally */
        for (uint8_t p = 0; p < ix->n_phases; p++)
            w[p] = (omit_mask >> p & 1u) ? 0 : 1.0;
    if (sf_min_cycle_ds(ix, omit_mask) > cycle_ds) {
        errno = ERANGE;
        return -1;
    }
    double cycle_s = cycle_ds / 10.0;
    double lambda = solve_level(ix, omit_mask, &b, 0, f, w, cycle_s);
    double split_s[SF_MAX_PHASES] = {0};
    if (critical)
        for (uint8_t p = 0; p < SF_MAX_PHASES; p++)
            critical[p] = false;
    for (uint8_t k = 0; k < b.n; k++) {
        uint8_t crit = 1;
        double blen = barrier_len(ix, omit_mask, b.mask[k], f, w, lambda, &crit);
        for (uint8_t r = 1; r <= SF_MAX_RINGS; r++) {
            uint16_t rmask = 0;
            bool weighted = false;
            for (uint8_t p = 0; p < ix->n_phases; p++)
                if ((b.mask[k] >> p & 1u) && ix->phases[p].ring == r) {
                    rmask |= (uint16_t)(1u << p);
                    weighted = weighted || w[p] > 0;
                }
            if (!(rmask & ~omit_mask))
                continue; /* nothing served in this ring and barrier */
            /* A ring that wants less than the barrier lasts spreads its slack by its own
             * weights (or equally over the phases it serves when it has none). */
            double rw[SF_MAX_PHASES];
            for (uint8_t p = 0; p < ix->n_phases; p++)
                rw[p] = (rmask >> p & 1u) && !(omit_mask >> p & 1u) ? (weighted ? w[p] : 1.0) : 0.0;
            double rl = r == crit ? lambda : solve_level(ix, omit_mask, NULL, rmask, f, rw, blen);
            for (uint8_t p = 0; p < ix->n_phases; p++)
                if (rmask >> p & 1u) {
                    split_s[p] = (omit_mask >> p & 1u)
                                     ? 0
                                     : want(ix, omit_mask, p, f, r == crit ? w : rw, rl);
                    if (critical)
                        critical[p] = r == crit && !(omit_mask >> p & 1u);
                }
        }
    }
    return sf_splits_round(ix, split_s, cycle_ds, omit_mask, split_ds);
}

int sf_webster_intersection(const sf_scenario_t *sc, uint32_t ix_idx, const double *link_flow,
                            const sf_webster_opts_t *o, sf_webster_t *out, char *err,
                            size_t err_len)
{
    barriers_t b;
    if (!sc || !link_flow || !o || !out || ix_idx >= sc->n_intersections || !(o->min_cycle_s > 0) ||
        !(o->max_cycle_s >= o->min_cycle_s) || o->max_cycle_s > 6000 ||
        !(o->sat_through_veh_h > 0) || !(o->sat_left_veh_h > 0) || !(o->sat_right_veh_h > 0) ||
        !(o->startup_lost_s >= 0) || !(o->end_gain_s >= 0) || !isfinite(o->startup_lost_s) ||
        !isfinite(o->end_gain_s)) {
        set_err(err, err_len, "invalid arguments");
        errno = EINVAL;
        return -1;
    }
    const sf_intersection_t *ix = &sc->intersections[ix_idx];
    if (get_barriers(ix, &b) < 0 || !movements_valid(sc, ix)) {
        set_err(err, err_len, "intersection %s: phases, barriers or movements are inconsistent",
                ix->id);
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    const double sat[SF_TURN_N] = {o->sat_left_veh_h, o->sat_through_veh_h, o->sat_right_veh_h};

    /* Lane groups: movements of one approach link served by one phase. */
    struct {
        uint32_t link;
        uint8_t phase;
        double flow[SF_TURN_N];
    } grp[SF_MAX_MOVEMENTS];
    int n_grp = 0;
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const sf_movement_t *mv = &ix->movements[m];
        uint8_t p = ix->sg[mv->sg_idx].phase_idx;
        int g = 0;
        while (g < n_grp && !(grp[g].link == mv->from_link_idx && grp[g].phase == p))
            g++;
        if (g == n_grp) {
            grp[g].link = mv->from_link_idx;
            grp[g].phase = p;
            memset(grp[g].flow, 0, sizeof grp[g].flow);
            n_grp++;
        }
        grp[g].flow[mv->turn] += movement_flow(sc, ix, m, link_flow);
    }
    for (int g = 0; g < n_grp; g++) {
        const sf_link_t *lk = &sc->links[grp[g].link];
        unsigned turns = 0;
        double f = 0, f_over_s = 0;
        for (int t = 0; t < SF_TURN_N; t++) {
            if (grp[g].flow[t] > 0)
                turns |= 1u << t;
            f += grp[g].flow[t];
            f_over_s += grp[g].flow[t] / sat[t];
        }
        if (f <= 0)
            continue;
        /* sf_turn_t and sf_lane_use_t bits line up: left 1, through 2, right 4. */
        unsigned lanes = 0;
        for (uint8_t ln = 0; ln < lk->n_lanes && ln < SF_MAX_LANES; ln++)
            if (lk->lanes[ln].use_mask & turns)
                lanes++;
        if (lanes == 0) {
            set_err(err, err_len, "intersection %s: link %s has no lane for the turns of phase %u",
                    ix->id, lk->id, ix->phases[grp[g].phase].id);
            errno = EINVAL;
            return -1;
        }
        double y = f / lanes / (f / f_over_s);
        if (y > out->y[grp[g].phase])
            out->y[grp[g].phase] = y;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        const sf_phase_t *ph = &ix->phases[p];
        double l = o->startup_lost_s + (ph->yellow_ds + ph->red_clear_ds) / 10.0 - o->end_gain_s;
        out->lost_s[p] = l > 0 ? l : 0;
    }
    /* Webster's critical path: per barrier the ring with the larger sum of y. */
    for (uint8_t k = 0; k < b.n; k++) {
        double ys[SF_MAX_RINGS] = {0}, ls[SF_MAX_RINGS] = {0};
        bool has[SF_MAX_RINGS] = {false};
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (b.mask[k] >> p & 1u) {
                int r = ix->phases[p].ring - 1;
                ys[r] += out->y[p];
                ls[r] += out->lost_s[p];
                has[r] = true;
            }
        int crit = -1;
        for (int r = 0; r < SF_MAX_RINGS; r++)
            if (has[r] && (crit < 0 || ys[r] > ys[crit] + 1e-12 ||
                           (fabs(ys[r] - ys[crit]) <= 1e-12 && ls[r] > ls[crit])))
                crit = r;
        out->y_total += ys[crit];
        out->lost_total_s += ls[crit];
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if ((b.mask[k] >> p & 1u) && ix->phases[p].ring == crit + 1)
                out->critical[p] = true;
    }
    double cycle_s;
    if (out->y_total >= 1.0) {
        out->oversaturated = true;
        out->c0_s = INFINITY;
        cycle_s = o->max_cycle_s;
    } else {
        out->c0_s = sf_webster_cycle(out->lost_total_s, out->y_total);
        cycle_s = fmin(fmax(ceil(out->c0_s - 1e-9), o->min_cycle_s), o->max_cycle_s);
    }
    uint32_t cycle_ds = (uint32_t)lround(cycle_s * 10.0);
    uint32_t need = sf_min_cycle_ds(ix, 0);
    if (need > cycle_ds) {
        cycle_ds = (need + 9) / 10 * 10; /* whole seconds */
        out->raised_for_minimums = true;
        if (cycle_ds > (uint32_t)lround(o->max_cycle_s * 10.0)) {
            set_err(err, err_len,
                    "intersection %s: the minimum splits need a %.1f s cycle, above the "
                    "maximum %.1f s",
                    ix->id, need / 10.0, o->max_cycle_s);
            errno = ERANGE;
            return -1;
        }
    }
    out->cycle_ds = (uint16_t)cycle_ds;
    if (sf_split_allocate(ix, cycle_ds, out->lost_s, out->y, 0, out->split_ds, NULL) < 0) {
        set_err(err, err_len, "intersection %s: cannot allocate a %.1f s cycle (%s)", ix->id,
                cycle_ds / 10.0, strerror(errno));
        return -1;
    }
    return 0;
}
