/* tests/test_webster.c — Webster cycle and splits, delay formulas, split allocation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webster.h"

/* One intersection "I" with two one-lane approaches (west: link 0, north: link 1) and
 * their exits (links 2 and 3), one phase each, in one ring. */
typedef struct {
    sf_scenario_t sc;
    sf_intersection_t ix[1];
    sf_link_t links[4];
    sf_boundary_t bnd[4];
    sf_entry_t entries[2];
} fixture_t;

static void phase(sf_phase_t *ph, uint8_t id, uint8_t ring, uint16_t min_green_ds,
                  uint16_t yellow_ds, uint16_t red_clear_ds)
{
    memset(ph, 0, sizeof *ph);
    ph->id = id;
    ph->ring = ring;
    ph->min_green_ds = min_green_ds;
    ph->yellow_ds = yellow_ds;
    ph->red_clear_ds = red_clear_ds;
    ph->max1_ds = 600;
}

static void link_(sf_link_t *l, const char *id, sf_node_kind_t fk, uint32_t fi, sf_node_kind_t tk,
                  uint32_t ti, uint8_t n_lanes, uint8_t use)
{
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    l->from_kind = fk;
    l->from_idx = fi;
    l->to_kind = tk;
    l->to_idx = ti;
    l->length_m = 300;
    l->speed_mps = 50 / 3.6f;
    l->n_lanes = n_lanes;
    for (uint8_t i = 0; i < n_lanes; i++)
        l->lanes[i].use_mask = use;
    l->turn_ratio[SF_TURN_THROUGH] = 1;
}

static void two_phase(fixture_t *f, float q_west, float q_north, bool barriers)
{
    memset(f, 0, sizeof *f);
    sf_intersection_t *ix = &f->ix[0];
    snprintf(ix->id, sizeof ix->id, "I");
    ix->n_phases = 2;
    phase(&ix->phases[0], 2, 1, 100, 40, 40);
    phase(&ix->phases[1], 4, 1, 100, 40, 40);
    ix->n_rings = 1;
    ix->ring_seq_len[0] = 2;
    ix->ring_seq[0][0] = 0;
    ix->ring_seq[0][1] = 1;
    if (barriers) {
        ix->n_barriers = 2;
        ix->barrier_mask[0] = 1;
        ix->barrier_mask[1] = 2;
    }
    ix->n_sg = 2;
    ix->sg[0].phase_idx = 0;
    ix->sg[1].phase_idx = 1;
    ix->n_movements = 2;
    ix->movements[0] = (sf_movement_t){"W_T", 0, 2, SF_TURN_THROUGH, 0};
    ix->movements[1] = (sf_movement_t){"N_T", 1, 3, SF_TURN_THROUGH, 1};
    ix->n_plans = 1;
    ix->plans[0].id = 1;
    ix->plans[0].cycle_ds = 600;
    sf_intersection_derive_conflicts(ix);
    link_(&f->links[0], "W_in", SF_NODE_BOUNDARY, 0, SF_NODE_INTERSECTION, 0, 1,
          SF_LANE_USE_THROUGH);
    link_(&f->links[1], "N_in", SF_NODE_BOUNDARY, 1, SF_NODE_INTERSECTION, 0, 1,
          SF_LANE_USE_THROUGH);
    link_(&f->links[2], "E_out", SF_NODE_INTERSECTION, 0, SF_NODE_BOUNDARY, 2, 1,
          SF_LANE_USE_THROUGH);
    link_(&f->links[3], "S_out", SF_NODE_INTERSECTION, 0, SF_NODE_BOUNDARY, 3, 1,
          SF_LANE_USE_THROUGH);
    f->entries[0] = (sf_entry_t){.link_idx = 0, .flow_veh_h = q_west};
    f->entries[1] = (sf_entry_t){.link_idx = 1, .flow_veh_h = q_north};
    f->sc.n_intersections = 1;
    f->sc.intersections = f->ix;
    f->sc.n_links = 4;
    f->sc.links = f->links;
    f->sc.n_boundaries = 4;
    f->sc.boundaries = f->bnd;
    f->sc.demand.n_entries = 2;
    f->sc.demand.entries = f->entries;
}

/* NEMA dual ring, 8 phases: ring 1 = 1..4, ring 2 = 5..8, barriers {1,2,5,6} {3,4,7,8};
 * min green 5 s, yellow 3 s, red clear 1 s: minimum split 9 s. */
static void nema8(sf_intersection_t *ix)
{
    memset(ix, 0, sizeof *ix);
    snprintf(ix->id, sizeof ix->id, "N8");
    ix->n_phases = 8;
    for (uint8_t p = 0; p < 8; p++)
        phase(&ix->phases[p], (uint8_t)(p + 1), p < 4 ? 1 : 2, 50, 30, 10);
    ix->n_rings = 2;
    ix->n_barriers = 2;
    ix->barrier_mask[0] = 0x33; /* phases 1 2 5 6 */
    ix->barrier_mask[1] = 0xcc; /* phases 3 4 7 8 */
    sf_intersection_derive_conflicts(ix);
}

static void check_nema8_plan(const sf_intersection_t *ix, const uint16_t *s, uint32_t cycle_ds)
{
    uint32_t r1 = 0, r2 = 0;
    for (int p = 0; p < 4; p++) {
        r1 += s[p];
        r2 += s[p + 4];
    }
    cr_assert_eq(r1, cycle_ds);
    cr_assert_eq(r2, cycle_ds);
    /* barrier boundary at the same instant in both rings */
    cr_assert_eq(s[0] + s[1], s[4] + s[5]);
    for (uint8_t p = 0; p < 8; p++)
        cr_assert_geq(s[p], sf_phase_min_split_ds(ix, p), "phase %d split %d", p + 1, s[p]);
}

Test(webster, reference_cycle_check)
{
    /* REFERENCE.md: q = 500 and 300 veh/h, s = 1600, L = 16 s: Y = 0.5, C0 = 58 s. */
    double y = 500.0 / 1600 + 300.0 / 1600;
    cr_assert_float_eq(y, 0.5, 1e-12);
    cr_assert_float_eq(sf_webster_cycle(16, y), 58.0, 1e-9);
    cr_assert_float_eq(sf_webster_green(500.0 / 1600, 0.5, 58, 16), 26.25, 1e-9);
}

Test(webster, reference_check_from_a_scenario)
{
    fixture_t f;
    two_phase(&f, 500, 300, false);
    double flow[4];
    cr_assert_eq(sf_link_flows(&f.sc, 1.0, flow), 0);
    cr_assert_float_eq(flow[0], 500, 1e-9);
    cr_assert_float_eq(flow[2], 500, 1e-9);
    cr_assert_float_eq(flow[3], 300, 1e-9);
    sf_webster_opts_t o;
    sf_webster_opts_default(&o);
    o.sat_through_veh_h = 1600;
    sf_webster_t w;
    char err[128];
    /* lost time per phase: 2 + (4 + 4) - 2 = 8 s; L = 16 s */
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(w.y[0], 0.3125, 1e-12);
    cr_assert_float_eq(w.y[1], 0.1875, 1e-12);
    cr_assert_float_eq(w.y_total, 0.5, 1e-12);
    cr_assert_float_eq(w.lost_total_s, 16, 1e-12);
    cr_assert_float_eq(w.c0_s, 58, 1e-9);
    cr_assert_eq(w.cycle_ds, 580);
    cr_assert(w.critical[0] && w.critical[1]);
    /* g = 26.25 and 15.75 s effective; splits add the 8 s lost time: 34.25 and 23.75 s */
    cr_assert_eq(w.split_ds[0] + w.split_ds[1], 580);
    cr_assert(abs((int)w.split_ds[0] - 342) <= 1, "split %d", w.split_ds[0]);
    cr_assert(!w.oversaturated && !w.raised_for_minimums);

    /* the same with one barrier per phase gives the same plan */
    two_phase(&f, 500, 300, true);
    sf_webster_t w2;
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w2.cycle_ds, 580);
    cr_assert_eq(w2.split_ds[0], w.split_ds[0]);
}

Test(webster, bounds_minimums_and_oversaturation)
{
    fixture_t f;
    double flow[4];
    sf_webster_opts_t o;
    sf_webster_opts_default(&o);
    sf_webster_t w;
    char err[160];

    /* light traffic: C0 = (1.5*16 + 5) / (1 - Y) is below 40 s: bounded up to 40 */
    two_phase(&f, 50, 50, false);
    cr_assert_eq(sf_link_flows(&f.sc, 1.0, flow), 0);
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), 0);
    cr_assert_lt(w.c0_s, 40);
    cr_assert_eq(w.cycle_ds, 400);

    /* demand factor doubles every flow */
    cr_assert_eq(sf_link_flows(&f.sc, 2.0, flow), 0);
    cr_assert_float_eq(flow[0], 100, 1e-9);

    /* Y >= 1: no finite cycle, the maximum is used and the flag says so */
    two_phase(&f, 1200, 900, false);
    cr_assert_eq(sf_link_flows(&f.sc, 1.0, flow), 0);
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), 0);
    cr_assert(w.oversaturated);
    cr_assert(isinf(w.c0_s));
    cr_assert_eq(w.cycle_ds, 1800);
    cr_assert_eq(w.split_ds[0] + w.split_ds[1], 1800);

    /* minimum splits of 10 + 8 = 18 s each plus a 30 s walk interval on one phase need
     * 18 + 38 = 56 s: the cycle grows to fit them */
    two_phase(&f, 50, 50, false);
    f.ix[0].phases[1].walk_ds = 200;
    f.ix[0].phases[1].ped_clear_ds = 100;
    cr_assert_eq(sf_link_flows(&f.sc, 1.0, flow), 0);
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), 0);
    cr_assert(w.raised_for_minimums);
    cr_assert_eq(w.cycle_ds, 560);
    cr_assert_eq(w.split_ds[1], 380);

    /* the same minimums cannot fit a 50 s maximum cycle: ERANGE and a reason */
    o.max_cycle_s = 50;
    errno = 0;
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), -1);
    cr_assert_eq(errno, ERANGE);
    cr_assert(strstr(err, "56.0 s cycle"), "%s", err);
}

Test(webster, bad_inputs)
{
    errno = 0;
    cr_assert_eq(sf_webster_cycle(16, 1.0), -1);
    cr_assert_eq(errno, EDOM);
    errno = 0;
    cr_assert_eq(sf_webster_cycle(-1, 0.5), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_webster_cycle(NAN, 0.5), -1);
    cr_assert_eq(sf_webster_green(0.6, 0.5, 58, 16), -1);
    cr_assert_eq(sf_webster_delay(60, 27, 1000, 1800), -1); /* x = 1.23 */
    cr_assert_eq(errno, EDOM);
    cr_assert_eq(sf_webster_delay(60, 70, 100, 1800), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_hcm_d1(0, 0.5, 0.5), -1);
    cr_assert_eq(sf_hcm_d1(100, 1.5, 0.5), -1);
    cr_assert_eq(sf_hcm_d2(1.0, 0, 0.25, 0.5, 1), -1);

    fixture_t f;
    two_phase(&f, 500, 300, false);
    double flow[4];
    sf_webster_opts_t o;
    sf_webster_opts_default(&o);
    sf_webster_t w;
    char err[160];
    cr_assert_eq(sf_link_flows(NULL, 1, flow), -1);
    cr_assert_eq(sf_link_flows(&f.sc, -1, flow), -1);
    cr_assert_eq(sf_link_flows(&f.sc, 1, flow), 0);
    cr_assert_eq(sf_webster_intersection(&f.sc, 1, flow, &o, &w, err, sizeof err), -1);
    cr_assert_eq(errno, EINVAL);
    o.min_cycle_s = 200; /* above the maximum */
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), -1);
    sf_webster_opts_default(&o);
    /* a lane group whose link has no lane for its turn */
    f.links[0].lanes[0].use_mask = SF_LANE_USE_LEFT;
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert(strstr(err, "link W_in has no lane"), "%s", err);
    /* a movement pointing at a signal group that does not exist */
    f.links[0].lanes[0].use_mask = SF_LANE_USE_THROUGH;
    f.ix[0].movements[1].sg_idx = 9;
    cr_assert_eq(sf_link_flows(&f.sc, 1, flow), -1);
    cr_assert_eq(sf_webster_intersection(&f.sc, 0, flow, &o, &w, err, sizeof err), -1);
}

Test(webster, delay_formulas)
{
    /* REFERENCE.md: C = 102, g/C = 0.55, X = 1.16 gives d1 = 22.95 s */
    cr_assert_float_eq(sf_hcm_d1(102, 0.55, 1.16), 22.95, 1e-9);
    /* below saturation X enters the denominator: 0.5*100*0.25/(1 - 0.8*0.5) */
    cr_assert_float_eq(sf_hcm_d1(100, 0.5, 0.8), 12.5 / 0.6, 1e-9);
    /* d2 = 900*0.25*[(0.16) + sqrt(0.0256 + 8*0.5*1*1.16/(1000*0.25))] */
    cr_assert_float_eq(sf_hcm_d2(1.16, 1000, 0.25, 0.5, 1), 83.28213193, 1e-6);
    /* Webster, C = 60, g = 27, q = 600, s = 1800 (x = 0.7407): computed by hand */
    cr_assert_float_eq(sf_webster_delay(60, 27, 600, 1800), 17.6148882753, 1e-6);
    /* no flow: only the uniform term C (1 - l)^2 / 2 remains */
    cr_assert_float_eq(sf_webster_delay(60, 30, 0, 1800), 7.5, 1e-12);
}

Test(webster, split_allocation_dual_ring)
{
    sf_intersection_t ix;
    nema8(&ix);
    cr_assert_eq(sf_min_cycle_ds(&ix, 0), 4 * 90);
    double fixed[8], wt[8];
    for (int p = 0; p < 8; p++)
        fixed[p] = 4.0; /* lost time = yellow + red clear */
    /* ring 1 heavier in barrier 1 (phase 2), ring 2 heavier in barrier 2 (phase 8) */
    double y[8] = {0.05, 0.30, 0.05, 0.10, 0.10, 0.20, 0.05, 0.15};
    memcpy(wt, y, sizeof y);
    uint16_t s[SF_MAX_PHASES] = {0};
    bool crit[SF_MAX_PHASES];
    cr_assert_eq(sf_split_allocate(&ix, 1000, fixed, wt, 0, s, crit), 0);
    check_nema8_plan(&ix, s, 1000);
    cr_assert(crit[0] && crit[1] && !crit[4] && !crit[5], "barrier 1: ring 1 critical");
    cr_assert(crit[6] && crit[7] && !crit[2] && !crit[3], "barrier 2: ring 2 critical");
    /* critical path Y = 0.35 + 0.20 = 0.55, L = 16: with no minimum binding the critical
     * phases get fixed + (y/Y)(C - L); phase 2: 4 + 0.30/0.55 * 84 = 49.82 s. Phase 1
     * would get 4 + 7.6 = 11.6 s, above its 9 s minimum. */
    cr_assert(abs((int)s[1] - 498) <= 1, "phase 2 split %d", s[1]);
    cr_assert(abs((int)s[0] - 116) <= 1, "phase 1 split %d", s[0]);

    /* a short cycle pushes the small phases to their minimum, never below */
    cr_assert_eq(sf_split_allocate(&ix, 400, fixed, wt, 0, s, NULL), 0);
    check_nema8_plan(&ix, s, 400);
    /* exactly the minimum cycle: every split at its minimum */
    cr_assert_eq(sf_split_allocate(&ix, 360, fixed, wt, 0, s, NULL), 0);
    for (int p = 0; p < 8; p++)
        cr_assert_eq(s[p], 90);
    /* below it: refused, nothing written */
    uint16_t before[SF_MAX_PHASES];
    memcpy(before, s, sizeof s);
    errno = 0;
    cr_assert_eq(sf_split_allocate(&ix, 359, fixed, wt, 0, s, NULL), -1);
    cr_assert_eq(errno, ERANGE);
    cr_assert_arr_eq(before, s, sizeof s);

    /* no demand information: the time above the minimums is shared equally */
    double zero[8] = {0};
    cr_assert_eq(sf_split_allocate(&ix, 1000, zero, zero, 0, s, NULL), 0);
    for (int p = 0; p < 8; p++)
        cr_assert_eq(s[p], 250);

    /* an omitted phase (phase 3) takes no time: 0 split, phase 4 absorbs its barrier share;
     * the minimum cycle stays 36 s because ring 2 still needs 18 s in barrier 2 */
    cr_assert_eq(sf_min_cycle_ds(&ix, 1u << 2), 360);
    cr_assert_eq(sf_split_allocate(&ix, 1000, fixed, wt, 1u << 2, s, NULL), 0);
    cr_assert_eq(s[2], 0);
    cr_assert_eq(s[0] + s[1] + s[2] + s[3], 1000);
    cr_assert_eq(s[4] + s[5] + s[6] + s[7], 1000);
    cr_assert_eq(s[0] + s[1], s[4] + s[5]);
    cr_assert_geq(s[3], 90);

    /* bad weights are refused */
    wt[3] = -1;
    cr_assert_eq(sf_split_allocate(&ix, 1000, fixed, wt, 0, s, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    wt[3] = NAN;
    cr_assert_eq(sf_split_allocate(&ix, 1000, fixed, wt, 0, s, NULL), -1);
}

Test(webster, split_allocation_many_cycles_keep_invariants)
{
    sf_intersection_t ix;
    nema8(&ix);
    ix.phases[3].walk_ds = 150; /* a pedestrian phase: 15 + 10 s */
    ix.phases[3].ped_clear_ds = 100;
    double fixed[8] = {4, 4, 4, 4, 4, 4, 4, 4};
    double wt[8];
    uint32_t lcg = 12345;
    for (int trial = 0; trial < 400; trial++) {
        for (int p = 0; p < 8; p++) {
            lcg = lcg * 1103515245u + 12345u;
            wt[p] = (lcg >> 16 & 0x3ff) / 2048.0;
        }
        uint32_t cycle = sf_min_cycle_ds(&ix, 0) + (uint32_t)(trial * 3);
        uint16_t s[SF_MAX_PHASES];
        cr_assert_eq(sf_split_allocate(&ix, cycle, fixed, wt, 0, s, NULL), 0);
        check_nema8_plan(&ix, s, cycle);
    }
}

Test(webster, link_flows_through_turning_ratios)
{
    /* W -> I1 -> I2 -> E along one line: the I1->I2 link carries the through share of the
     * west entry plus the right turn of a north entry at I1. */
    sf_intersection_t ix[2];
    sf_link_t links[4];
    sf_entry_t e[2];
    memset(ix, 0, sizeof ix);
    link_(&links[0], "W", SF_NODE_BOUNDARY, 0, SF_NODE_INTERSECTION, 0, 2, 7);
    link_(&links[1], "N", SF_NODE_BOUNDARY, 1, SF_NODE_INTERSECTION, 0, 1, 7);
    link_(&links[2], "M", SF_NODE_INTERSECTION, 0, SF_NODE_INTERSECTION, 1, 2, 7);
    link_(&links[3], "E", SF_NODE_INTERSECTION, 1, SF_NODE_BOUNDARY, 2, 2, 7);
    links[0].turn_ratio[SF_TURN_THROUGH] = 0.8f;
    links[0].turn_ratio[SF_TURN_LEFT] = 0.2f; /* leaves the network: no movement modelled */
    links[1].turn_ratio[SF_TURN_THROUGH] = 0;
    links[1].turn_ratio[SF_TURN_LEFT] = 1.0f;
    links[2].turn_ratio[SF_TURN_THROUGH] = 1.0f;
    for (int i = 0; i < 2; i++) {
        ix[i].n_phases = 1;
        phase(&ix[i].phases[0], 2, 1, 100, 30, 10);
        ix[i].n_sg = 1;
    }
    ix[0].n_movements = 2;
    ix[0].movements[0] = (sf_movement_t){"WT", 0, 2, SF_TURN_THROUGH, 0};
    ix[0].movements[1] = (sf_movement_t){"NL", 1, 2, SF_TURN_LEFT, 0};
    ix[1].n_movements = 1;
    ix[1].movements[0] = (sf_movement_t){"MT", 2, 3, SF_TURN_THROUGH, 0};
    e[0] = (sf_entry_t){.link_idx = 0, .flow_veh_h = 1000};
    e[1] = (sf_entry_t){.link_idx = 1, .flow_veh_h = 150};
    sf_scenario_t sc = {.n_intersections = 2, .intersections = ix, .n_links = 4, .links = links};
    sc.demand.n_entries = 2;
    sc.demand.entries = e;
    double flow[4];
    cr_assert_eq(sf_link_flows(&sc, 1.0, flow), 0);
    cr_assert_float_eq(flow[2], 950, 1e-3); /* ratios are floats */
    cr_assert_float_eq(flow[3], 950, 1e-3);
    /* an entry on a link that does not exist is refused */
    e[1].link_idx = 7;
    cr_assert_eq(sf_link_flows(&sc, 1.0, flow), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(webster, default_corridor_asset)
{
    /* the real corridor: every intersection gets a plan the unit would accept */
    char path[512];
    snprintf(path, sizeof path, "%s/scenarios/xiantao-corridor.json", SIGFLOW_ASSETS);
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(path, NULL, 0, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "");
    double *flow = calloc(sc->n_links, sizeof *flow);
    cr_assert_not_null(flow);
    cr_assert_eq(sf_link_flows(sc, 1.0, flow), 0);
    /* the asset has demand to plan for */
    double entry = 0;
    for (uint32_t e = 0; e < sc->demand.n_entries; e++)
        entry += sc->demand.entries[e].flow_veh_h;
    cr_assert_gt(entry, 0);
    sf_webster_opts_t o;
    sf_webster_opts_default(&o);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        sf_webster_t w;
        char err[256];
        cr_assert_eq(sf_webster_intersection(sc, i, flow, &o, &w, err, sizeof err), 0, "%s", err);
        cr_assert(w.y_total > 0 && w.y_total < 1, "%s: Y = %f", ix->id, w.y_total);
        cr_assert_geq(w.cycle_ds, 400);
        cr_assert_leq(w.cycle_ds, 1800);
        double ysum = 0, lsum = 0;
        uint32_t ring_sum[SF_MAX_RINGS] = {0};
        for (uint8_t p = 0; p < ix->n_phases; p++) {
            cr_assert_geq(w.split_ds[p], sf_phase_min_split_ds(ix, p), "%s phase %u", ix->id,
                          ix->phases[p].id);
            ring_sum[ix->phases[p].ring - 1] += w.split_ds[p];
            if (w.critical[p]) {
                ysum += w.y[p];
                lsum += w.lost_s[p];
            }
        }
        cr_assert_float_eq(ysum, w.y_total, 1e-12);
        cr_assert_float_eq(lsum, w.lost_total_s, 1e-12);
        for (uint8_t r = 0; r < ix->n_rings; r++)
            cr_assert_eq(ring_sum[r], w.cycle_ds, "%s ring %u", ix->id, r + 1);
        if (!w.raised_for_minimums)
            cr_assert_eq(w.cycle_ds, (uint16_t)(10 * fmax(40, ceil(w.c0_s - 1e-9))));
    }
    free(flow);
    sf_scenario_destroy(&sc);
}
