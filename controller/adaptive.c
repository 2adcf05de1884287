/* controller/adaptive.c — SCATS-like DS adaptation and max-pressure stage selection. */
#include "adaptive.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "webster.h"

double sf_scats_ds(double green_s, double unoccupied_s, uint32_t n_veh, double h_s)
{
    if (!isfinite(green_s) || !isfinite(unoccupied_s) || !isfinite(h_s) || green_s <= 0 ||
        unoccupied_s < 0 || unoccupied_s > green_s + 1e-9 || h_s < 0) {
        errno = EINVAL;
        return -1;
    }
    double ds = (green_s - (unoccupied_s - (double)n_veh * h_s)) / green_s;
    return fmin(fmax(ds, 0.0), SF_DS_MAX);
}

double sf_flow_ds(uint32_t n_veh, double green_s, double sat_veh_h)
{
    if (!isfinite(green_s) || !isfinite(sat_veh_h) || green_s <= 0 || sat_veh_h <= 0) {
        errno = EINVAL;
        return -1;
    }
    double ds = (double)n_veh / (sat_veh_h / 3600.0 * green_s);
    return fmin(ds, SF_DS_MAX);
}

int sf_adapt_green_sample(const sf_intersection_t *ix, uint16_t greens, double dt_s,
                          double *green_s)
{
    if (!ix || !green_s || !isfinite(dt_s) || dt_s < 0 || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        uint8_t no = ix->phases[p].id;
        if (no >= 1 && no <= 16 && (greens >> (no - 1) & 1u))
            green_s[p] += dt_s;
    }
    return 0;
}

double sf_adapt_green_avail(double plan_green_s, double seen_green_s)
{
    double a = isfinite(plan_green_s) && plan_green_s > 0 ? plan_green_s : 0;
    double b = isfinite(seen_green_s) && seen_green_s > 0 ? seen_green_s : 0;
    return a > b ? a : b;
}

/* Whether any of v[n] is NaN: every entry point refuses such input (EINVAL) before it
 * changes anything. */
static bool any_nan(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            return true;
    return false;
}

/* Lost time (s) of phase i: start-up lost time plus yellow and red clear, less the end
 * gain (REFERENCE.md); a split less it is the phase's effective green, from which the
 * adaptation converts a DS into the green the phase asks for. */
static double phase_lost(const sf_intersection_t *ix, uint8_t i, const sf_adapt_opts_t *o)
{
    const sf_phase_t *ph = &ix->phases[i];
    return fmax(0, o->startup_lost_s + (ph->yellow_ds + ph->red_clear_ds) / 10.0 - o->end_gain_s);
}

int sf_adapt_phase_ds(const sf_intersection_t *ix, const double *det_ds, double *phase_ds)
{
    if (!ix || !det_ds || !phase_ds || ix->n_phases > SF_MAX_PHASES || ix->n_det > SF_MAX_DET ||
        any_nan(det_ds, ix->n_det)) {
        errno = EINVAL;
        return -1;
    }
    int n = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        double best = -1;
        for (uint8_t d = 0; d < ix->n_det; d++)
            if (ix->det[d].kind == SF_DET_PRESENCE && (ix->det[d].phase_mask >> p & 1u) &&
                det_ds[d] >= 0)
                best = fmax(best, fmin(det_ds[d], SF_DS_MAX));
        phase_ds[p] = best;
        n += best >= 0;
    }
    return n;
}

void sf_adapt_opts_default(sf_adapt_opts_t *o)
{
    o->target_ds = 0.9;
    o->min_cycle_s = 40;
    o->max_cycle_s = 150;
    o->max_cycle_step_s = 6;
    o->max_split_step_s = 4;
    o->startup_lost_s = 2;
    o->end_gain_s = 2;
    o->min_cycle_change_s = 4;
    o->min_split_change_s = 3;
    o->decide_every_s = 240;
    o->fail_ds = 1.05;
    o->spare = SF_ADAPT_SPARE_PROPORTIONAL;
    o->sat = SF_ADAPT_SAT_FIXED;
}

static bool opts_ok(const sf_adapt_opts_t *o)
{
    return o && isfinite(o->target_ds) && o->target_ds >= 0.3 && o->target_ds <= 1.2 &&
           isfinite(o->min_cycle_s) && isfinite(o->max_cycle_s) && o->min_cycle_s > 0 &&
           o->max_cycle_s >= o->min_cycle_s && o->max_cycle_s <= 600 &&
           isfinite(o->max_cycle_step_s) && o->max_cycle_step_s >= 0 &&
           isfinite(o->max_split_step_s) && o->max_split_step_s >= 0 &&
           isfinite(o->startup_lost_s) && o->startup_lost_s >= 0 && o->startup_lost_s <= 10 &&
           isfinite(o->end_gain_s) && o->end_gain_s >= 0 && o->end_gain_s <= 10 &&
           isfinite(o->min_cycle_change_s) && o->min_cycle_change_s >= 0 &&
           isfinite(o->min_split_change_s) && o->min_split_change_s >= 0 &&
           isfinite(o->decide_every_s) && o->decide_every_s >= 0 && isfinite(o->fail_ds) &&
           o->fail_ds >= 0 && o->fail_ds <= SF_DS_MAX &&
           (o->spare == SF_ADAPT_SPARE_PROPORTIONAL || o->spare == SF_ADAPT_SPARE_COORD) &&
           (o->sat == SF_ADAPT_SAT_FIXED || o->sat == SF_ADAPT_SAT_LEARNED);
}

/* The current plan must be one the unit would accept: every split at least its minimum,
 * every ring summing to the cycle. */
static uint16_t omit_of(const sf_intersection_t *ix, const sf_plan_t *p)
{
    uint16_t m = 0;
    for (uint8_t i = 0; i < ix->n_phases && i < SF_MAX_PHASES; i++)
        if (p->split_mode[i] == SF_SPLIT_OMIT)
            m |= (uint16_t)(1u << i);
    return m;
}

static bool plan_ok(const sf_intersection_t *ix, const sf_plan_t *p)
{
    uint16_t omit = omit_of(ix, p);
    if (ix->n_phases == 0 || ix->n_phases > SF_MAX_PHASES || p->cycle_ds == 0)
        return false;
    uint32_t ring_sum[SF_MAX_RINGS] = {0};
    bool has[SF_MAX_RINGS] = {false};
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        uint8_t r = ix->phases[i].ring;
        if (r < 1 || r > SF_MAX_RINGS ||
            (!(omit >> i & 1u) && p->split_ds[i] < sf_phase_min_split_ds(ix, i)))
            return false;
        ring_sum[r - 1] += p->split_ds[i];
        has[r - 1] = true;
    }
    for (int r = 0; r < SF_MAX_RINGS; r++)
        if (has[r] && ring_sum[r] != p->cycle_ds)
            return false;
    return true;
}

/* Lost time, asked-for green and DS used, per phase; the cycle asked for (bounded). */
static int wanted(const sf_intersection_t *ix, const sf_plan_t *cur, const double *ds,
                  const sf_adapt_opts_t *o, double *lost, double *green, double *want,
                  sf_adapt_info_t *info, double *cycle_s)
{
    if (!ix || !cur || !ds || !opts_ok(o) || !plan_ok(ix, cur)) {
        errno = EINVAL;
        return -1;
    }
    uint16_t omit = omit_of(ix, cur);
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if (isnan(ds[i])) {
            errno = EINVAL;
            return -1;
        }
        if (omit >> i & 1u) { /* an omitted phase stays omitted and takes no time */
            lost[i] = green[i] = want[i] = 0;
            if (info)
                info->ds[i] = info->want_green_s[i] = 0;
            continue;
        }
        lost[i] = phase_lost(ix, i, o);
        green[i] = fmax(0, cur->split_ds[i] / 10.0 - lost[i]);
        /* no measurement: the phase asks for the green it has */
        double d = ds[i] < 0 ? o->target_ds : fmin(ds[i], SF_DS_MAX);
        want[i] = d * green[i] / o->target_ds;
        if (info) {
            info->ds[i] = d;
            info->want_green_s[i] = want[i];
        }
    }
    double c = sf_split_cycle_at(ix, lost, want, omit, 1.0);
    if (c < 0)
        return -1;
    double lo = fmax(o->min_cycle_s, sf_min_cycle_ds(ix, omit) / 10.0);
    double hi = fmax(o->max_cycle_s, lo);
    *cycle_s = fmin(fmax(c, lo), hi);
    return 0;
}

int sf_adapt_cycle_wanted(const sf_intersection_t *ix, const sf_plan_t *cur, const double *ds,
                          const sf_adapt_opts_t *o, double *cycle_s)
{
    double lost[SF_MAX_PHASES], green[SF_MAX_PHASES], want[SF_MAX_PHASES];
    if (!cycle_s) {
        errno = EINVAL;
        return -1;
    }
    return wanted(ix, cur, ds, o, lost, green, want, NULL, cycle_s);
}

/* Largest split change between two plans, 0.1 s. */
static int max_change(const sf_intersection_t *ix, const uint16_t *a, const uint16_t *b)
{
    int m = 0;
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* Splits of cycle c_ds from the greens the phases ask for (ask[], s, by phase index) and
 * their lost times: in proportion to ask, or (o->spare = SF_ADAPT_SPARE_COORD, a cycle
 * longer than every phase asks for, a coordinated phase served) each non-coordinated phase
 * fixed at lost + ask and the coordinated phases weighted by ask (equally when none asks
 * for any green) taking what is left. At the cycle every phase asks for, both give every
 * phase its ask: the rule is continuous where it switches. */
static int allocate(const sf_intersection_t *ix, uint32_t c_ds, const double *lost,
                    const double *ask, uint16_t omit, uint16_t coord, const sf_adapt_opts_t *o,
                    uint16_t *split_ds)
{
    coord &= (uint16_t)~omit;
    if (o->spare == SF_ADAPT_SPARE_COORD && coord) {
        double c_ask = sf_split_cycle_at(ix, lost, ask, omit, 1.0);
        if (c_ask < 0)
            return -1;
        if (c_ask < c_ds / 10.0) {
            double f[SF_MAX_PHASES], w[SF_MAX_PHASES];
            bool any = false;
            for (uint8_t i = 0; i < ix->n_phases; i++) {
                bool co = coord >> i & 1u;
                f[i] = co ? lost[i] : lost[i] + ask[i];
                w[i] = co ? ask[i] : 0;
                any = any || w[i] > 0;
            }
            if (!any)
                for (uint8_t i = 0; i < ix->n_phases; i++)
                    w[i] = coord >> i & 1u ? 1.0 : 0;
            return sf_split_allocate(ix, c_ds, f, w, omit, split_ds, NULL);
        }
    }
    return sf_split_allocate(ix, c_ds, lost, ask, omit, split_ds, NULL);
}

int sf_adapt_step(const sf_intersection_t *ix, const sf_plan_t *cur, const double *ds,
                  const sf_adapt_opts_t *o, double group_cycle_s, sf_plan_t *next,
                  sf_adapt_info_t *info)
{
    double lost[SF_MAX_PHASES], green[SF_MAX_PHASES], want[SF_MAX_PHASES], c_want;
    sf_adapt_info_t tmp;
    if (!info)
        info = &tmp;
    if (!next || !isfinite(group_cycle_s) || group_cycle_s < 0 ||
        wanted(ix, cur, ds, o, lost, green, want, info, &c_want) < 0) {
        errno = EINVAL;
        return -1;
    }
    uint16_t omit = omit_of(ix, cur);
    if (group_cycle_s > 0) /* the group's common cycle, but never below our own minimums */
        c_want = fmin(fmax(group_cycle_s, sf_min_cycle_ds(ix, omit) / 10.0), 600.0);
    info->cycle_wanted_s = c_want;

    /* the cycle: a bounded step towards the wanted one */
    double dc = c_want - cur->cycle_ds / 10.0;
    dc = fmin(fmax(dc, -o->max_cycle_step_s), o->max_cycle_step_s);
    long c_new = (long)cur->cycle_ds + lround(dc * 10.0);
    long c_min = (long)sf_min_cycle_ds(ix, omit);
    if (c_new < c_min)
        c_new = c_min;
    if (c_new > UINT16_MAX) {
        errno = EINVAL;
        return -1;
    }

    /* the splits: allocation of the new cycle (allocate: by o->spare) from asks blended
     * between the current greens (alpha = 0: the current plan stretched to the new cycle,
     * or with the spare to the coordinated phases, the cycle's growth to them) and the
     * asked-for greens (alpha = 1); the largest alpha whose splits stay within the
     * per-cycle bound is taken. */
    uint16_t best[SF_MAX_PHASES] = {0}, trial[SF_MAX_PHASES] = {0};
    double w[SF_MAX_PHASES];
    int allowed = (int)lround(o->max_split_step_s * 10.0) + abs((int)(c_new - cur->cycle_ds)) + 1;
    for (uint8_t i = 0; i < ix->n_phases; i++)
        w[i] = want[i];
    uint16_t coord = cur->coord_phase_mask;
    if (allocate(ix, (uint32_t)c_new, lost, w, omit, coord, o, best) < 0)
        return -1;
    double alpha = 1.0;
    if (max_change(ix, best, cur->split_ds) > allowed) {
        for (uint8_t i = 0; i < ix->n_phases; i++)
            w[i] = green[i];
        if (allocate(ix, (uint32_t)c_new, lost, w, omit, coord, o, best) < 0)
            return -1;
        double lo = 0, hi = 1;
        for (int it = 0; it < 24; it++) {
            double mid = 0.5 * (lo + hi);
            for (uint8_t i = 0; i < ix->n_phases; i++)
                w[i] = (1 - mid) * green[i] + mid * want[i];
            if (allocate(ix, (uint32_t)c_new, lost, w, omit, coord, o, trial) < 0)
                return -1;
            if (max_change(ix, trial, cur->split_ds) <= allowed) {
                lo = mid;
                memcpy(best, trial, sizeof best);
            } else {
                hi = mid;
            }
        }
        alpha = lo;
    }
    info->step_fraction = alpha;
    *next = *cur; /* offset, coordinated phases, split modes, force mode kept */
    next->cycle_ds = (uint16_t)c_new;
    for (uint8_t i = 0; i < SF_MAX_PHASES; i++)
        next->split_ds[i] = i < ix->n_phases ? best[i] : cur->split_ds[i];
    if (next->offset_ds >= next->cycle_ds) /* an offset is a time within the cycle */
        next->offset_ds = (uint16_t)(next->offset_ds % next->cycle_ds);
    return 0;
}

int sf_adapt_ds_floor(const sf_intersection_t *ix, const sf_plan_t *cur, const sf_plan_t *base,
                      const sf_adapt_opts_t *o, double *ds)
{
    if (!ix || !cur || !base || !ds || !opts_ok(o) || ix->n_phases > SF_MAX_PHASES ||
        cur->cycle_ds == 0 || base->cycle_ds == 0 || any_nan(ds, ix->n_phases)) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if ((cur->coord_phase_mask >> i & 1u) || cur->split_mode[i] == SF_SPLIT_OMIT ||
            base->split_mode[i] == SF_SPLIT_OMIT || ds[i] < 0)
            continue;
        double lost = phase_lost(ix, i, o);
        double g_cur = cur->split_ds[i] / 10.0 - lost;
        double g_floor = (double)base->split_ds[i] / base->cycle_ds * (cur->cycle_ds / 10.0) - lost;
        if (g_cur <= 0 || g_floor <= 0)
            continue;
        ds[i] = fmin(fmax(ds[i], o->target_ds * g_floor / g_cur), SF_DS_MAX);
    }
    return 0;
}

int sf_adapt_ds_bay(const sf_scenario_t *sc, const sf_intersection_t *ix, const sf_plan_t *cur,
                    const sf_adapt_opts_t *o, double *ds)
{
    if (!sc || !ix || !cur || !ds || !opts_ok(o) || ix->n_phases > SF_MAX_PHASES ||
        ix->n_det > SF_MAX_DET || any_nan(ds, ix->n_phases)) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t d = 0; d < ix->n_det; d++)
        if (ix->det[d].link_idx >= sc->n_links) {
            errno = EINVAL;
            return -1;
        }
    int raised = 0;
    double need[SF_MAX_PHASES] = {0}; /* effective green a full bay asks, by phase */
    for (uint8_t d = 0; d < ix->n_det; d++) {
        const sf_detector_t *bay = &ix->det[d];
        const sf_link_t *l = &sc->links[bay->link_idx];
        if (bay->kind != SF_DET_PRESENCE || bay->lane >= l->n_lanes ||
            l->lanes[bay->lane].bay_m <= 0)
            continue;
        bool coord = false; /* the same approach carries a coordinated phase */
        for (uint8_t k = 0; k < ix->n_det && !coord; k++)
            coord = k != d && ix->det[k].kind == SF_DET_PRESENCE &&
                    ix->det[k].link_idx == bay->link_idx &&
                    (ix->det[k].phase_mask & cur->coord_phase_mask);
        if (!coord)
            continue;
        double g = (floor(l->lanes[bay->lane].bay_m / SF_ADAPT_BAY_VEH_M) + 1) * 3600.0 /
                   SF_ADAPT_SAT_VEH_H;
        for (uint8_t i = 0; i < ix->n_phases; i++)
            if ((bay->phase_mask >> i & 1u) && g > need[i])
                need[i] = g;
    }
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if (need[i] <= 0 || (cur->coord_phase_mask >> i & 1u) ||
            cur->split_mode[i] == SF_SPLIT_OMIT || ds[i] < 0)
            continue;
        double g_cur = cur->split_ds[i] / 10.0 - phase_lost(ix, i, o);
        if (g_cur <= 0)
            continue;
        double want = fmin(o->target_ds * need[i] / g_cur, SF_DS_MAX);
        if (want > ds[i]) {
            ds[i] = want;
            raised++;
        }
    }
    return raised;
}

/* ---- split failures ------------------------------------------------------------------ */

/* Judge the green of t against the red seen after it. */
static int split_fail_judge(sf_split_fail_t *t)
{
    int judged = 0;
    if (t->g_s > 0 && t->r_s > 0) {
        bool fail = t->g_occ_s >= SF_SPLIT_FAIL_GOR * t->g_s - 1e-9 &&
                    t->r_occ_s >= SF_SPLIT_FAIL_ROR * t->r_s - 1e-9;
        t->cycles++;
        t->failures += fail;
        judged = 1;
    }
    sf_split_fail_restart(t);
    return judged;
}

void sf_split_fail_restart(sf_split_fail_t *t)
{
    if (!t)
        return;
    t->g_s = t->g_occ_s = t->r_s = t->r_occ_s = 0;
    t->state = 0;
}

int sf_split_fail_sample(sf_split_fail_t *t, sf_sig_t sig, bool occupied, double dt_s)
{
    if (!t || !isfinite(dt_s) || dt_s < 0 ||
        (sig != SF_SIG_RED && sig != SF_SIG_GREEN && sig != SF_SIG_YELLOW)) {
        errno = EINVAL;
        return -1;
    }
    int judged = 0;
    if (sig == SF_SIG_GREEN) {
        if (t->state == 2) /* a new green before the red window was full */
            judged = split_fail_judge(t);
        t->state = 1;
        t->g_s += dt_s;
        t->g_occ_s += occupied ? dt_s : 0;
    } else if (sig == SF_SIG_RED && t->state >= 1) {
        t->state = 2;
        double dt = fmin(dt_s, SF_SPLIT_FAIL_ROR_S - t->r_s);
        t->r_s += dt;
        t->r_occ_s += occupied ? dt : 0;
        if (t->r_s >= SF_SPLIT_FAIL_ROR_S - 1e-9)
            judged = split_fail_judge(t);
    }
    /* yellow: between the green and its red, counted in neither */
    return judged;
}

int sf_adapt_ds_failures(const sf_intersection_t *ix, const sf_plan_t *cur, const uint32_t *cycles,
                         const uint32_t *failures, const sf_adapt_opts_t *o, double *ds)
{
    if (!ix || !cur || !cycles || !failures || !ds || !opts_ok(o) || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t i = 0; i < ix->n_phases; i++)
        if (isnan(ds[i]) || failures[i] > cycles[i]) {
            errno = EINVAL;
            return -1;
        }
    if (o->fail_ds <= o->target_ds)
        return 0;
    int n = 0;
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if (cycles[i] == 0 || failures[i] == 0 || ds[i] < 0 || cur->split_mode[i] == SF_SPLIT_OMIT)
            continue;
        double f = (double)failures[i] / cycles[i];
        double lo = o->target_ds + f * (o->fail_ds - o->target_ds);
        if (ds[i] < lo) {
            ds[i] = lo;
            n++;
        }
    }
    return n;
}

double sf_adapt_sat_learn(double mf_veh_h, uint32_t n_veh, double green_s, uint32_t judged,
                          uint32_t failed, const sf_adapt_opts_t *o)
{
    if (!o || isnan(mf_veh_h) || !isfinite(green_s) || green_s < 0 || failed > judged ||
        (o->sat != SF_ADAPT_SAT_FIXED && o->sat != SF_ADAPT_SAT_LEARNED)) {
        errno = EINVAL;
        return -1;
    }
    double mf = mf_veh_h > 0 ? fmin(mf_veh_h, SF_ADAPT_SAT_VEH_H) : SF_ADAPT_SAT_VEH_H;
    if (o->sat != SF_ADAPT_SAT_LEARNED || judged < 2 || failed < judged || green_s <= 0)
        return mf;
    double flow = n_veh * 3600.0 / green_s;
    flow = fmin(fmax(flow, SF_ADAPT_SAT_MIN_VEH_H), SF_ADAPT_SAT_VEH_H);
    return 0.5 * (mf + flow);
}

double sf_adapt_cycle_hold(double cur_s, double flow_s, double fail_s)
{
    if (!isfinite(cur_s) || cur_s <= 0)
        return isfinite(flow_s) && flow_s > 0 ? flow_s : 0;
    if (!isfinite(flow_s) || flow_s <= 0)
        flow_s = cur_s;
    if (!isfinite(fail_s) || fail_s <= 0)
        fail_s = cur_s;
    if (fail_s < cur_s) /* even with the failures it would shrink */
        return fmax(fail_s, flow_s);
    return fmax(flow_s, cur_s);
}

/* ---- hysteresis and the coordination reference ----------------------------------------- */

double sf_adapt_group_cycle(double cur_s, double wanted_s, const sf_adapt_opts_t *o)
{
    if (!opts_ok(o) || !isfinite(cur_s) || !isfinite(wanted_s) || cur_s <= 0 || wanted_s <= 0) {
        errno = EINVAL;
        return -1;
    }
    double d = wanted_s - cur_s;
    if (fabs(d) < o->min_cycle_change_s)
        return cur_s;
    d = fmin(fmax(d, -o->max_cycle_step_s), o->max_cycle_step_s);
    return round((cur_s + d) * 10.0) / 10.0;
}

bool sf_adapt_significant(const sf_intersection_t *ix, const sf_plan_t *cur, const sf_plan_t *next,
                          const sf_adapt_opts_t *o)
{
    if (!ix || !cur || !next || !opts_ok(o) || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return false;
    }
    if (next->cycle_ds != cur->cycle_ds)
        return true;
    return max_change(ix, cur->split_ds, next->split_ds) >= lround(o->min_split_change_s * 10.0);
}

uint16_t sf_adapt_coord_start_ds(const sf_intersection_t *ix, const sf_plan_t *p)
{
    if (!ix || !p || ix->n_rings > SF_MAX_RINGS || ix->n_phases > SF_MAX_PHASES)
        return 0;
    for (uint8_t r = 0; r < ix->n_rings; r++) { /* first coordinated phase: ring, then order */
        for (uint8_t k = 0; k < ix->ring_seq_len[r] && k < SF_MAX_PHASES; k++) {
            uint8_t cp = ix->ring_seq[r][k];
            if (cp >= ix->n_phases || !(p->coord_phase_mask >> cp & 1u))
                continue;
            uint16_t grp = 0;
            for (uint8_t b = 0; b < ix->n_barriers && b < SF_MAX_BARRIERS; b++)
                if (ix->barrier_mask[b] >> cp & 1u)
                    grp = ix->barrier_mask[b];
            uint32_t s = 0;
            for (uint8_t j = 0; j < k; j++) {
                uint8_t q = ix->ring_seq[r][j];
                if (q < ix->n_phases && (grp >> q & 1u))
                    s += p->split_ds[q];
            }
            return s <= UINT16_MAX ? (uint16_t)s : 0;
        }
    }
    return 0;
}

uint16_t sf_adapt_offset_ds(uint16_t base_ds, uint32_t epoch_ds, uint16_t cycle_ds)
{
    if (cycle_ds == 0)
        return 0;
    return (uint16_t)(((uint64_t)base_ds + epoch_ds) % cycle_ds);
}

/* a mod b for b > 0, in [0, b) */
static int64_t mod64(int64_t a, int64_t b)
{
    int64_t m = a % b;
    return m < 0 ? m + b : m;
}

int sf_adapt_rebase(int64_t ts_ds, uint32_t epoch_ds, uint16_t c_old_ds, uint16_t c_new_ds,
                    const uint16_t *base_ds, const uint16_t *cs_ds, size_t n, uint32_t *epoch_new)
{
    if (c_old_ds == 0 || c_new_ds == 0 || epoch_ds >= c_old_ds || (n && (!base_ds || !cs_ds)) ||
        !epoch_new) {
        errno = EINVAL;
        return -1;
    }
    int64_t c = c_old_ds;
    int64_t since = mod64(ts_ds - (int64_t)epoch_ds, c);
    int64_t e_a = ts_ds - since; /* last common start at or before ts */
    /* each member: the common start of the cycle whose coordinated green it switches in.
     * It switches at its first lap start at or after ts (a lap starts cs before its
     * coordinated green, which starts base after a common start). k is in -1..2. */
    int votes[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        int64_t base = base_ds[i] % c, cs = cs_ds[i] % c;
        int64_t lap = mod64(base - cs, c);
        int64_t l = lap >= since ? e_a + lap : e_a + c + lap;
        int64_t k = (l + cs - base - e_a) / c;
        if (k >= -1 && k <= 2)
            votes[k + 1]++;
    }
    int best = 2; /* no member: the next common start */
    for (int k = 0; k < 4; k++)
        if (votes[k] > votes[best])
            best = k;
    *epoch_new = (uint32_t)mod64(e_a + (best - 1) * c, c_new_ds);
    return 0;
}

/* ---- max-pressure ---------------------------------------------------------------------- */

static bool can_join(const sf_intersection_t *ix, uint16_t mask, uint8_t p)
{
    for (uint8_t q = 0; q < ix->n_phases; q++)
        if ((mask >> q & 1u) && (q == p || !ix->concurrent[p][q]))
            return false;
    return true;
}

typedef struct {
    sf_stage_t *out; /* destination */
    int max;         /* capacity */
    int n;           /* stages found */
    bool overflow;   /* more than max */
} stage_acc_t;

static void stage_dfs(const sf_intersection_t *ix, uint8_t ring, uint16_t mask, stage_acc_t *acc)
{
    if (ring > SF_MAX_RINGS) {
        if (!mask)
            return;
        for (uint8_t p = 0; p < ix->n_phases; p++) /* keep maximal sets only */
            if (!(mask >> p & 1u) && can_join(ix, mask, p))
                return;
        for (int k = 0; k < acc->n; k++)
            if (acc->out[k].phase_mask == mask)
                return;
        if (acc->n == acc->max) {
            acc->overflow = true;
            return;
        }
        acc->out[acc->n++].phase_mask = mask;
        return;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].ring == ring && can_join(ix, mask, p))
            stage_dfs(ix, (uint8_t)(ring + 1), (uint16_t)(mask | 1u << p), acc);
    stage_dfs(ix, (uint8_t)(ring + 1), mask, acc);
}

int sf_mp_stages(const sf_intersection_t *ix, sf_stage_t *stages, int max)
{
    if (!ix || !stages || max <= 0 || ix->n_phases == 0 || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    stage_acc_t acc = {stages, max, 0, false};
    stage_dfs(ix, 1, 0, &acc);
    if (acc.overflow) {
        errno = ENOSPC;
        return -1;
    }
    return acc.n;
}

int sf_mp_phase_pressure(const sf_intersection_t *ix, const double *q_up, const double *q_down,
                         const double *sat_veh_h, double *pressure)
{
    if (!ix || !q_up || !q_down || !pressure || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    double acc[SF_MAX_PHASES] = {0};
    for (uint8_t m = 0; m < ix->n_movements; m++) {
        const sf_movement_t *mv = &ix->movements[m];
        double s = sat_veh_h ? sat_veh_h[m] : 1800.0;
        if (!isfinite(q_up[m]) || !isfinite(q_down[m]) || q_up[m] < 0 || q_down[m] < 0 ||
            !isfinite(s) || s < 0 || mv->sg_idx >= ix->n_sg ||
            ix->sg[mv->sg_idx].phase_idx >= ix->n_phases) {
            errno = EINVAL;
            return -1;
        }
        acc[ix->sg[mv->sg_idx].phase_idx] += (q_up[m] - q_down[m]) * s / 3600.0;
    }
    memcpy(pressure, acc, sizeof(double) * ix->n_phases);
    return 0;
}

int sf_mp_stage_pressure(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                         const double *phase_pressure, double *stage_pressure)
{
    if (!ix || !stages || !phase_pressure || !stage_pressure || n_stages < 0 ||
        ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (!isfinite(phase_pressure[p])) {
            errno = EINVAL;
            return -1;
        }
    for (int s = 0; s < n_stages; s++) {
        double sum = 0;
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (stages[s].phase_mask >> p & 1u)
                sum += phase_pressure[p];
        stage_pressure[s] = sum;
    }
    return 0;
}

static double stage_min_green_s(const sf_intersection_t *ix, uint16_t mask)
{
    double g = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (mask >> p & 1u) {
            const sf_phase_t *ph = &ix->phases[p];
            unsigned m = ph->min_green_ds;
            if (ph->walk_ds > 0 && (unsigned)ph->walk_ds + ph->ped_clear_ds > m)
                m = (unsigned)ph->walk_ds + ph->ped_clear_ds;
            g = fmax(g, m / 10.0);
        }
    return g;
}

static double stage_max_green_s(const sf_intersection_t *ix, uint16_t mask)
{
    double g = INFINITY;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (mask >> p & 1u) {
            const sf_phase_t *ph = &ix->phases[p];
            unsigned m = ph->max2_ds > ph->max1_ds ? ph->max2_ds : ph->max1_ds;
            if (m > 0)
                g = fmin(g, m / 10.0);
        }
    return fmax(g, stage_min_green_s(ix, mask)); /* a max below the min cannot cut it */
}

static int group_of(const sf_intersection_t *ix, uint8_t p)
{
    for (uint8_t b = 0; b < ix->n_barriers && b < SF_MAX_BARRIERS; b++)
        if (ix->barrier_mask[b] >> p & 1u)
            return b;
    return -1;
}

static int ring_pos(const sf_intersection_t *ix, uint8_t r, uint8_t p)
{
    for (uint8_t k = 0; k < ix->ring_seq_len[r] && k < SF_MAX_PHASES; k++)
        if (ix->ring_seq[r][k] == p)
            return k;
    return -1;
}

/* Phase of ring r (0-based) in mask, -1 none. */
static int ring_phase(const sf_intersection_t *ix, uint16_t mask, uint8_t r)
{
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if ((mask >> p & 1u) && ix->phases[p].ring == r + 1)
            return p;
    return -1;
}

uint64_t sf_mp_reachable(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                         int current)
{
    if (!ix || !stages || n_stages <= 0 || n_stages > SF_MAX_STAGES || current < 0 ||
        current >= n_stages || ix->n_rings > SF_MAX_RINGS || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return 0;
    }
    uint16_t cm = stages[current].phase_mask;
    int g0 = -1, gnext = -1;
    for (uint8_t r = 0; r < ix->n_rings && gnext < 0; r++) {
        int p = ring_phase(ix, cm, r), k = p >= 0 ? ring_pos(ix, r, (uint8_t)p) : -1;
        if (k < 0)
            continue;
        g0 = group_of(ix, (uint8_t)p);
        for (uint8_t j = 1; j <= ix->ring_seq_len[r]; j++) { /* the ring's next group */
            int g = group_of(ix, ix->ring_seq[r][(k + j) % ix->ring_seq_len[r]]);
            if (g != g0) {
                gnext = g;
                break;
            }
        }
    }
    uint64_t out = 0;
    for (int s = 0; s < n_stages; s++) {
        if (s == current)
            continue;
        bool ok = true;
        for (uint8_t r = 0; r < ix->n_rings && ok; r++) {
            int p = ring_phase(ix, cm, r), q = ring_phase(ix, stages[s].phase_mask, r);
            if (q < 0)
                continue;
            int gq = group_of(ix, (uint8_t)q);
            if (gq != g0) {
                ok = gq == gnext; /* across the barrier: its next group only */
            } else if (p >= 0 && q != p) {
                /* within the group: only forward in the ring sequence */
                ok = ring_pos(ix, r, (uint8_t)q) > ring_pos(ix, r, (uint8_t)p);
            }
        }
        if (ok)
            out |= (uint64_t)1 << s;
    }
    return out;
}

int sf_mp_decide(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                 const double *stage_pressure, int current, double elapsed_s, double hysteresis,
                 sf_mp_decision_t *out)
{
    return sf_mp_decide_among(ix, stages, n_stages, stage_pressure, current, elapsed_s, hysteresis,
                              UINT64_MAX, 0, out);
}

int sf_mp_decide_among(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                       const double *stage_pressure, int current, double elapsed_s,
                       double hysteresis, uint64_t allowed, uint64_t waiting, sf_mp_decision_t *out)
{
    if (!ix || !stages || !stage_pressure || !out || n_stages <= 0 || n_stages > SF_MAX_STAGES ||
        current < -1 || current >= n_stages || !isfinite(elapsed_s) || elapsed_s < 0 ||
        !isfinite(hysteresis) || hysteresis < 0) {
        errno = EINVAL;
        return -1;
    }
    uint16_t all = (uint16_t)((1u << ix->n_phases) - 1u);
    for (int s = 0; s < n_stages; s++)
        if (!isfinite(stage_pressure[s]) || !stages[s].phase_mask ||
            (stages[s].phase_mask & ~all)) {
            errno = EINVAL;
            return -1;
        }
    int best = -1, best_other = -1;
    for (int s = 0; s < n_stages; s++) {
        if (best < 0 || stage_pressure[s] > stage_pressure[best])
            best = s;
        if (s != current && (allowed >> s & 1u) &&
            (best_other < 0 || stage_pressure[s] > stage_pressure[best_other]))
            best_other = s;
    }
    int next;
    sf_mp_reason_t why;
    if (current < 0) {
        next = best;
        why = SF_MP_START;
    } else if (elapsed_s < stage_min_green_s(ix, stages[current].phase_mask)) {
        next = current;
        why = SF_MP_MIN_GREEN;
    } else if (elapsed_s >= stage_max_green_s(ix, stages[current].phase_mask)) {
        /* at max green a stage with a vehicle waiting is served even when its pressure is
         * not positive (its exit holds more than its approach is known to): the best such
         * one unless another has a positive pressure */
        int wait_best = -1;
        for (int s = 0; s < n_stages; s++)
            if (s != current && (allowed >> s & 1u) && (waiting >> s & 1u) &&
                (wait_best < 0 || stage_pressure[s] > stage_pressure[wait_best]))
                wait_best = s;
        bool demand = best_other >= 0 && stage_pressure[best_other] > 0;
        next = demand ? best_other : wait_best >= 0 ? wait_best : current;
        why = next != current ? SF_MP_MAX_GREEN : SF_MP_NO_DEMAND;
    } else {
        bool better =
            best_other >= 0 && stage_pressure[best_other] > stage_pressure[current] + hysteresis;
        next = better ? best_other : current;
        why = SF_MP_PRESSURE;
    }
    out->stage = next;
    out->switch_stage = current >= 0 && next != current;
    out->reason = why;
    out->clearance_s = 0;
    if (out->switch_stage) {
        uint16_t ending = (uint16_t)(stages[current].phase_mask & ~stages[next].phase_mask);
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (ending >> p & 1u)
                out->clearance_s =
                    fmax(out->clearance_s,
                         (ix->phases[p].yellow_ds + ix->phases[p].red_clear_ds) / 10.0);
    }
    out->min_green_s = stage_min_green_s(ix, stages[next].phase_mask);
    return 0;
}

double sf_mp_switch_hysteresis(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                               int current, int next, double p_current, double base)
{
    if (!ix || !stages || n_stages <= 0 || n_stages > SF_MAX_STAGES || current < 0 ||
        current >= n_stages || next < 0 || next >= n_stages || !isfinite(p_current) ||
        !isfinite(base) || base < 0 || ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    if (p_current <= 0 || next == current)
        return base;
    double lost = 0;
    uint16_t ending = (uint16_t)(stages[current].phase_mask & ~stages[next].phase_mask);
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ending >> p & 1u)
            lost = fmax(lost, (ix->phases[p].yellow_ds + ix->phases[p].red_clear_ds) / 10.0);
    lost += SF_MP_STARTUP_LOST_S;
    double g = stage_max_green_s(ix, stages[next].phase_mask);
    if (!isfinite(g) || g <= lost)
        return base;
    return base + p_current * lost / (g - lost);
}

/* Phase-number mask (bit n-1 = phase n) of the phase-index mask m. */
static uint16_t phase_no_mask(const sf_intersection_t *ix, uint16_t m)
{
    uint16_t out = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (m & (1u << p))
            out = (uint16_t)(out | (1u << (ix->phases[p].id - 1)));
    return out;
}

int sf_mp_decide_linkq(const sf_scenario_t *sc, const sf_linkq_t *lq, uint32_t ix_idx,
                       const sf_stage_t *stages, int n_stages, int current, double elapsed_s,
                       uint16_t veh_calls, double *stage_pressure, sf_mp_decision_t *out)
{
    if (!sc || !lq || !stages || !stage_pressure || !out || ix_idx >= sc->n_intersections ||
        n_stages <= 0 || n_stages > SF_MAX_STAGES || current < 0 || current >= n_stages) {
        errno = EINVAL;
        return -1;
    }
    const sf_intersection_t *ix = &sc->intersections[ix_idx];
    double q_up[SF_MAX_MOVEMENTS] = {0}, q_down[SF_MAX_MOVEMENTS] = {0};
    double sat[SF_MAX_MOVEMENTS] = {0};
    for (uint8_t mv = 0; mv < ix->n_movements; mv++) {
        const sf_movement_t *m = &ix->movements[mv];
        const sf_link_t *ln = &sc->links[m->from_link_idx];
        q_up[mv] = sf_linkq_movement(lq, ix_idx, mv);
        q_down[mv] = sf_linkq_link(lq, m->to_link_idx);
        double lanes = 0;
        for (uint8_t l = 0; l < ln->n_lanes; l++)
            lanes += sf_linkq_lane_share(ln, l, m->turn);
        sat[mv] = SF_MP_SAT_VEH_H_LANE * lanes;
    }
    double pp[SF_MAX_PHASES];
    if (sf_mp_phase_pressure(ix, q_up, q_down, sat, pp) < 0)
        return -1;
    for (int k = 0; k < n_stages; k++) {
        stage_pressure[k] = 0;
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (stages[k].phase_mask & (1u << p))
                stage_pressure[k] += pp[p];
    }
    /* the unit's ring sequence decides which stages can come next; a stage with a vehicle
     * call on one of its phases has a vehicle waiting */
    uint64_t next_ok = sf_mp_reachable(ix, stages, n_stages, current), waiting = 0;
    for (int k = 0; k < n_stages; k++)
        if (phase_no_mask(ix, stages[k].phase_mask) & veh_calls)
            waiting |= (uint64_t)1 << k;
    /* a switch costs lost time: the stage it goes to must bring enough more pressure
     * (sf_mp_switch_hysteresis, towards the best reachable stage) */
    int kb = -1;
    for (int k = 0; k < n_stages; k++)
        if ((next_ok >> k & 1u) && (kb < 0 || stage_pressure[k] > stage_pressure[kb]))
            kb = k;
    double hyst = kb >= 0 ? sf_mp_switch_hysteresis(ix, stages, n_stages, current, kb,
                                                    stage_pressure[current], SF_MP_HYSTERESIS)
                          : SF_MP_HYSTERESIS;
    if (hyst < 0)
        return -1;
    return sf_mp_decide_among(ix, stages, n_stages, stage_pressure, current, elapsed_s, hyst,
                              next_ok, waiting, out);
}
