/* tests/test_adaptive.c — SCATS-like DS adaptation and max-pressure decisions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "adaptive.h"
#include "webster.h"

/* NEMA dual ring, 8 phases (index = phase - 1): ring 1 = 1..4, ring 2 = 5..8, barriers
 * {1,2,5,6} {3,4,7,8}; min green 5 s, yellow 3 s, red clear 1 s (minimum split 9 s),
 * max1 40 s. Plan: cycle 100 s, lefts 15 s, throughs 35 s, coordinated 2 and 6. */
static void nema8(sf_intersection_t *ix, sf_plan_t *pl)
{
    memset(ix, 0, sizeof *ix);
    snprintf(ix->id, sizeof ix->id, "N8");
    ix->n_phases = 8;
    for (uint8_t p = 0; p < 8; p++) {
        ix->phases[p].id = (uint8_t)(p + 1);
        ix->phases[p].ring = p < 4 ? 1 : 2;
        ix->phases[p].min_green_ds = 50;
        ix->phases[p].yellow_ds = 30;
        ix->phases[p].red_clear_ds = 10;
        ix->phases[p].max1_ds = 400;
    }
    ix->n_rings = 2;
    ix->n_barriers = 2;
    ix->barrier_mask[0] = 0x33;
    ix->barrier_mask[1] = 0xcc;
    sf_intersection_derive_conflicts(ix);
    memset(pl, 0, sizeof *pl);
    pl->id = 1;
    pl->cycle_ds = 1000;
    pl->offset_ds = 370;
    pl->coord_phase_mask = 0x22; /* phases 2 and 6 */
    const uint16_t s[8] = {150, 350, 150, 350, 150, 350, 150, 350};
    memcpy(pl->split_ds, s, sizeof s);
}

/* The invariants every plan the adaptation produces must keep. */
static void check_plan(const sf_intersection_t *ix, const sf_plan_t *p)
{
    uint32_t r1 = 0, r2 = 0;
    for (int i = 0; i < 4; i++) {
        r1 += p->split_ds[i];
        r2 += p->split_ds[i + 4];
    }
    cr_assert_eq(r1, p->cycle_ds);
    cr_assert_eq(r2, p->cycle_ds);
    cr_assert_eq(p->split_ds[0] + p->split_ds[1], p->split_ds[4] + p->split_ds[5]);
    for (uint8_t i = 0; i < 8; i++)
        cr_assert_geq(p->split_ds[i], sf_phase_min_split_ds(ix, i), "phase %d: %d", i + 1,
                      p->split_ds[i]);
}

Test(adaptive, scats_degree_of_saturation)
{
    /* g = 30 s; 10 vehicles each leaving h = 1 s of gap at saturation: a saturated lane
     * shows T = 10 s unoccupied: DS = (30 - (10 - 10)) / 30 = 1 */
    cr_assert_float_eq(sf_scats_ds(30, 10, 10, 1.0), 1.0, 1e-12);
    /* 6 s more gap than saturation: DS = (30 - 6) / 30 = 0.8 */
    cr_assert_float_eq(sf_scats_ds(30, 16, 10, 1.0), 0.8, 1e-12);
    /* an empty lane: all 30 s unoccupied, no vehicle: DS 0 */
    cr_assert_float_eq(sf_scats_ds(30, 30, 0, 1.0), 0.0, 1e-12);
    /* clipped at SF_DS_MAX */
    cr_assert_float_eq(sf_scats_ds(10, 0, 30, 1.0), SF_DS_MAX, 1e-12);
    /* flow-based: 15 vehicles in 30 s of green at 1800 veh/h (15 possible): DS 1 */
    cr_assert_float_eq(sf_flow_ds(15, 30, 1800), 1.0, 1e-12);
    cr_assert_float_eq(sf_flow_ds(9, 30, 1800), 0.6, 1e-12);
    /* bad inputs */
    errno = 0;
    cr_assert_eq(sf_scats_ds(0, 0, 1, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_scats_ds(30, 31, 1, 1), -1); /* more unoccupied time than green */
    cr_assert_eq(sf_scats_ds(30, -1, 1, 1), -1);
    cr_assert_eq(sf_scats_ds(30, 10, 1, -1), -1);
    cr_assert_eq(sf_scats_ds(NAN, 10, 1, 1), -1);
    cr_assert_eq(sf_flow_ds(5, 30, 0), -1);
}

Test(adaptive, equal_ds_keeps_the_plan)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    /* every phase exactly at the target DS: the wanted cycle is the current one and the
     * plan does not move (to within rounding) */
    double ds[8];
    for (int i = 0; i < 8; i++)
        ds[i] = o.target_ds;
    double cw;
    cr_assert_eq(sf_adapt_cycle_wanted(&ix, &cur, ds, &o, &cw), 0);
    cr_assert_float_eq(cw, 100, 1e-6);
    sf_adapt_info_t info;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, &info), 0);
    cr_assert_eq(next.cycle_ds, 1000);
    for (int i = 0; i < 8; i++)
        cr_assert(abs((int)next.split_ds[i] - (int)cur.split_ds[i]) <= 1);
    /* no measurement at all (negative DS) behaves the same */
    for (int i = 0; i < 8; i++)
        ds[i] = -1;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
    cr_assert_eq(next.cycle_ds, 1000);
}

Test(adaptive, saturated_phase_gets_more_green_within_bounds)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    /* the main throughs are saturated (DS 1.1), the rest half used */
    double ds[8] = {0.45, 1.1, 0.45, 0.45, 0.45, 1.1, 0.45, 0.45};
    sf_adapt_info_t info;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, &info), 0);
    check_plan(&ix, &next);
    /* phase 2: effective green 35 - 4 = 31 s, asks 1.1 x 31 / 0.9 = 37.9 s */
    cr_assert_float_eq(info.want_green_s[1], 1.1 * 31 / 0.9, 1e-9);
    /* wanted cycle: barrier 1 = 2*4 + 11*0.45/0.9 + 37.89 = 51.39 (lefts at 5.5 + 4 =
     * 9.5 s), barrier 2 = 4 + 5.5 + 4 + 15.5 = 29 s: 80.4 s. Shorter than 100 s, so the
     * cycle steps down by the 6 s bound. */
    cr_assert_float_eq(info.cycle_wanted_s, 8 + 5.5 + 1.1 * 31 / 0.9 + 29, 1e-6);
    cr_assert_eq(next.cycle_ds, 940);
    /* the saturated throughs gain, the others lose; no split moves more than 4 s plus
     * the 6 s cycle change (plus 0.1 s of rounding) */
    cr_assert_gt(next.split_ds[1], cur.split_ds[1]);
    cr_assert_lt(next.split_ds[3], cur.split_ds[3]);
    for (int i = 0; i < 8; i++)
        cr_assert_leq(abs((int)next.split_ds[i] - (int)cur.split_ds[i]), 40 + 60 + 1);
    /* coordination kept */
    cr_assert_eq(next.offset_ds, cur.offset_ds);
    cr_assert_eq(next.coord_phase_mask, cur.coord_phase_mask);
    cr_assert_eq(next.id, cur.id);
}

Test(adaptive, converges_to_equal_ds_and_respects_cycle_bounds)
{
    /* a simple demand model: each phase needs a fixed green per cycle at saturation
     * (proportional to the cycle); DS = need / effective green. Repeating the step must
     * equalise DS on the critical phases, keep every invariant each cycle, and keep the
     * cycle within [min, max] with steps of at most 6 s. */
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    const double flow_ratio[8] = {0.05, 0.35, 0.04, 0.12, 0.06, 0.30, 0.05, 0.15};
    double ds[8];
    for (int cyc = 0; cyc < 60; cyc++) {
        double c = cur.cycle_ds / 10.0;
        for (int i = 0; i < 8; i++) {
            double g = cur.split_ds[i] / 10.0 - 4.0;
            ds[i] = flow_ratio[i] * c / g;
        }
        cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
        check_plan(&ix, &next);
        cr_assert_leq(abs((int)next.cycle_ds - (int)cur.cycle_ds), 60);
        cr_assert_geq(next.cycle_ds, 400);
        cr_assert_leq(next.cycle_ds, 1500);
        cur = next;
    }
    /* at the fixed point the critical phases (2 and 8 for the largest ratios: ring 1 in
     * barrier 1 with 0.40, ring 2 in barrier 2 with 0.20) sit at the target DS */
    double c = cur.cycle_ds / 10.0;
    double ds2 = flow_ratio[1] * c / (cur.split_ds[1] / 10.0 - 4.0);
    double ds8 = flow_ratio[7] * c / (cur.split_ds[7] / 10.0 - 4.0);
    cr_assert(fabs(ds2 - o.target_ds) < 0.03, "DS phase 2 = %.3f", ds2);
    cr_assert(fabs(ds8 - o.target_ds) < 0.03, "DS phase 8 = %.3f", ds8);

    /* heavy demand: the cycle climbs to the maximum and stops there */
    const double heavy[8] = {0.10, 0.45, 0.08, 0.20, 0.10, 0.45, 0.08, 0.20};
    for (int cyc = 0; cyc < 40; cyc++) {
        double cc = cur.cycle_ds / 10.0;
        for (int i = 0; i < 8; i++)
            ds[i] = fmin(heavy[i] * cc / (cur.split_ds[i] / 10.0 - 4.0), SF_DS_MAX);
        cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
        check_plan(&ix, &next);
        cur = next;
    }
    cr_assert_eq(cur.cycle_ds, 1500);
    /* no demand: down to the minimum cycle, every split at least its minimum */
    for (int i = 0; i < 8; i++)
        ds[i] = 0;
    for (int cyc = 0; cyc < 40; cyc++) {
        cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
        check_plan(&ix, &next);
        cur = next;
    }
    cr_assert_eq(cur.cycle_ds, 400);
}

Test(adaptive, group_cycle_and_minimums)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    double ds[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    /* alone it would shorten the cycle; in a group that wants 110 s it lengthens (by the
     * bounded 6 s step) */
    sf_adapt_info_t info;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &next, &info), 0);
    cr_assert_float_eq(info.cycle_wanted_s, 110, 1e-9);
    cr_assert_eq(next.cycle_ds, 1060);
    check_plan(&ix, &next);
    /* a group cycle below the intersection's minimum cycle (36 s) is raised to it */
    cur.cycle_ds = 400;
    const uint16_t s[8] = {90, 110, 90, 110, 90, 110, 90, 110};
    memcpy(cur.split_ds, s, sizeof s);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 20, &next, &info), 0);
    cr_assert_float_eq(info.cycle_wanted_s, 36, 1e-9);
    cr_assert_eq(next.cycle_ds, 360);
    check_plan(&ix, &next);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(next.split_ds[i], 90);
}

/* control.adaptive_spare: a member whose phases ask for less than the group's cycle. With
 * the spare shared in proportion, the side streets take part of it and the coordinated
 * phases lose green although the cycle grows; with it to the coordinated phases, every
 * side phase gets exactly its lost time plus the green it asks for and the arterial takes
 * the rest (SCATS's link phase). Where the phases ask for the whole cycle or more (the
 * critical intersection) and where no phase is coordinated, both rules give the same plan. */
Test(adaptive, spare_time_to_the_coordinated_phases)
{
    sf_intersection_t ix;
    sf_plan_t cur, prop, coord;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    cr_assert_eq(o.spare, SF_ADAPT_SPARE_PROPORTIONAL);
    /* the sides at the target DS ask for the green they have (lefts 11 s, throughs 31 s of
     * 15 / 35 s splits, lost time 4 s each); the arterial reads 0.6: 0.6 x 31 / 0.9 =
     * 20.7 s. Every phase served as asked takes 39.7 + 50 = 89.7 s; the group runs 106 s
     * (the bounded 6 s step towards its 110 s). */
    double ds[8] = {0.9, 0.6, 0.9, 0.9, 0.9, 0.6, 0.9, 0.9};
    double c_ask;
    cr_assert_eq(sf_adapt_cycle_wanted(&ix, &cur, ds, &o, &c_ask), 0);
    cr_assert_float_eq(c_ask, 8 + 11 + 0.6 * 31 / 0.9 + 50, 1e-6);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &prop, NULL), 0);
    o.spare = SF_ADAPT_SPARE_COORD;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &coord, NULL), 0);
    check_plan(&ix, &prop);
    check_plan(&ix, &coord);
    cr_assert_eq(prop.cycle_ds, 1060);
    cr_assert_eq(coord.cycle_ds, 1060);
    /* in proportion: the 16.3 s of spare go 14.5 % to each left, 29.5 % to each side
     * through and 13.3 % to each through of the arterial, which keeps only 29.3 s of its 35 */
    cr_assert_lt(prop.split_ds[1], cur.split_ds[1]);
    cr_assert_gt(prop.split_ds[3], cur.split_ds[3]);
    cr_assert_gt(prop.split_ds[0], cur.split_ds[0]);
    /* to the coordinated phases: the sides keep exactly what they ask, 2 and 6 take the
     * cycle's 6 s more */
    const uint16_t want[8] = {150, 410, 150, 350, 150, 410, 150, 350};
    cr_assert_arr_eq(coord.split_ds, want, sizeof want, "split 2 %d, 4 %d", coord.split_ds[1],
                     coord.split_ds[3]);
    cr_assert_eq(coord.offset_ds, cur.offset_ds);

    /* side lefts asking for less than their minimum split (0.35 x 11 / 0.9 + 4 = 8.3 s)
     * get the minimum, 9 s; the arterial takes the 12 s they free and the cycle's 6 s
     * (the split step bound widened so the whole step is taken) */
    double low[8] = {0.9, 0.6, 0.35, 0.9, 0.9, 0.6, 0.35, 0.9};
    o.max_split_step_s = 20;
    cr_assert_eq(sf_adapt_step(&ix, &cur, low, &o, 110, &coord, NULL), 0);
    check_plan(&ix, &coord);
    cr_assert_eq(sf_phase_min_split_ds(&ix, 2), 90);
    const uint16_t want_low[8] = {150, 470, 90, 350, 150, 470, 90, 350};
    cr_assert_arr_eq(coord.split_ds, want_low, sizeof want_low);
    o.max_split_step_s = 4;

    /* the critical intersection: every phase at DS 1 asks for 109.3 s, more than the 100 s
     * the group runs: the allocation in proportion either way */
    double sat[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    o.spare = SF_ADAPT_SPARE_PROPORTIONAL;
    cr_assert_eq(sf_adapt_step(&ix, &cur, sat, &o, 100, &prop, NULL), 0);
    o.spare = SF_ADAPT_SPARE_COORD;
    cr_assert_eq(sf_adapt_step(&ix, &cur, sat, &o, 100, &coord, NULL), 0);
    cr_assert_arr_eq(coord.split_ds, prop.split_ds, sizeof prop.split_ds);

    /* no coordinated phase (an isolated intersection): in proportion either way */
    cur.coord_phase_mask = 0;
    o.spare = SF_ADAPT_SPARE_PROPORTIONAL;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &prop, NULL), 0);
    o.spare = SF_ADAPT_SPARE_COORD;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &coord, NULL), 0);
    cr_assert_arr_eq(coord.split_ds, prop.split_ds, sizeof prop.split_ds);

    /* an unknown rule is refused and changes nothing */
    sf_plan_t keep = coord;
    o.spare = (sf_adapt_spare_t)2;
    errno = 0;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 110, &coord, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_arr_eq(&coord, &keep, sizeof keep);
}

Test(adaptive, bad_inputs_change_nothing)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    double ds[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    memset(&next, 0xab, sizeof next);
    sf_plan_t before = next;
    ds[3] = NAN;
    errno = 0;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    ds[3] = 0.5;
    /* a plan with a split below its minimum */
    sf_plan_t bad = cur;
    bad.split_ds[0] = 80;
    bad.split_ds[1] = 420;
    cr_assert_eq(sf_adapt_step(&ix, &bad, ds, &o, 0, &next, NULL), -1);
    /* a plan whose ring does not sum to the cycle */
    bad = cur;
    bad.split_ds[3] = 340;
    cr_assert_eq(sf_adapt_step(&ix, &bad, ds, &o, 0, &next, NULL), -1);
    /* bad options */
    o.target_ds = 0;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), -1);
    sf_adapt_opts_default(&o);
    o.max_cycle_s = 30;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), -1);
    sf_adapt_opts_default(&o);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, -5, &next, NULL), -1);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, NAN, &next, NULL), -1);
    cr_assert_eq(sf_adapt_step(NULL, &cur, ds, &o, 0, &next, NULL), -1);
    cr_assert_arr_eq(&before, &next, sizeof next);
    double cw;
    cr_assert_eq(sf_adapt_cycle_wanted(&ix, &cur, NULL, &o, &cw), -1);
}

/* ---- max-pressure ---------------------------------------------------------------------- */

Test(max_pressure, stages_of_a_dual_ring)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    sf_stage_t st[SF_MAX_STAGES];
    int n = sf_mp_stages(&ix, st, SF_MAX_STAGES);
    /* barrier 1: {1,2} x {5,6}; barrier 2: {3,4} x {7,8}: 8 stages of two phases */
    cr_assert_eq(n, 8);
    bool seen_2_6 = false, seen_4_8 = false;
    for (int s = 0; s < n; s++) {
        cr_assert_eq(__builtin_popcount(st[s].phase_mask), 2);
        seen_2_6 = seen_2_6 || st[s].phase_mask == 0x22;
        seen_4_8 = seen_4_8 || st[s].phase_mask == 0x88;
        cr_assert_neq(st[s].phase_mask, 0x03, "phases 1 and 2 are one ring");
    }
    cr_assert(seen_2_6 && seen_4_8);
    cr_assert_eq(sf_mp_stages(&ix, st, 4), -1);
    cr_assert_eq(errno, ENOSPC);
}

Test(max_pressure, phase_pressure_from_queues)
{
    /* two movements on phase 2 and one on phase 4 (single ring, 2 phases) */
    sf_intersection_t ix;
    memset(&ix, 0, sizeof ix);
    ix.n_phases = 2;
    ix.phases[0] = (sf_phase_t){.id = 2, .ring = 1, .min_green_ds = 50, .yellow_ds = 30};
    ix.phases[1] = (sf_phase_t){.id = 4, .ring = 1, .min_green_ds = 50, .yellow_ds = 30};
    ix.n_sg = 2;
    ix.sg[1].phase_idx = 1;
    ix.n_movements = 3;
    ix.movements[0].sg_idx = 0;
    ix.movements[1].sg_idx = 0;
    ix.movements[2].sg_idx = 1;
    double up[3] = {10, 4, 6}, down[3] = {2, 6, 0}, sat[3] = {1800, 1800, 3600};
    double p[2];
    cr_assert_eq(sf_mp_phase_pressure(&ix, up, down, sat, p), 0);
    /* phase 2: (8 x 0.5) + (-2 x 0.5) = 3 veh^2/s; phase 4: 6 x 1 = 6 */
    cr_assert_float_eq(p[0], 3, 1e-12);
    cr_assert_float_eq(p[1], 6, 1e-12);
    cr_assert_eq(sf_mp_phase_pressure(&ix, up, down, NULL, p), 0);
    cr_assert_float_eq(p[1], 3, 1e-12);
    up[1] = -1;
    cr_assert_eq(sf_mp_phase_pressure(&ix, up, down, sat, p), -1);
}

Test(max_pressure, decisions_respect_min_max_green_and_clearance)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    ix.phases[3].walk_ds = 100; /* phase 4 has a 10 s walk + 12 s ped clear */
    ix.phases[3].ped_clear_ds = 120;
    sf_stage_t st[SF_MAX_STAGES];
    int n = sf_mp_stages(&ix, st, SF_MAX_STAGES);
    int s26 = -1, s48 = -1, s25 = -1;
    for (int s = 0; s < n; s++) {
        if (st[s].phase_mask == 0x22)
            s26 = s;
        if (st[s].phase_mask == 0x88)
            s48 = s;
        if (st[s].phase_mask == 0x12)
            s25 = s;
    }
    cr_assert(s26 >= 0 && s48 >= 0 && s25 >= 0);
    double pr[SF_MAX_STAGES] = {0};
    pr[s26] = 5;
    pr[s48] = 9;
    pr[s25] = 1;
    sf_mp_decision_t d;
    /* start: the highest pressure */
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, -1, 0, 0, &d), 0);
    cr_assert_eq(d.stage, s48);
    cr_assert_eq(d.reason, SF_MP_START);
    cr_assert(!d.switch_stage);
    cr_assert_float_eq(d.min_green_s, 22, 1e-12); /* walk + ped clear of phase 4 */
    /* 2+6 green for 3 s (< 5 s min green): held even though 4+8 is higher */
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 3, 0, &d), 0);
    cr_assert_eq(d.stage, s26);
    cr_assert_eq(d.reason, SF_MP_MIN_GREEN);
    /* after min green: switch to the higher pressure, paying 4 s of clearance */
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 6, 0, &d), 0);
    cr_assert_eq(d.stage, s48);
    cr_assert(d.switch_stage);
    cr_assert_eq(d.reason, SF_MP_PRESSURE);
    cr_assert_float_eq(d.clearance_s, 4, 1e-12);
    /* hysteresis larger than the difference: hold */
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 6, 5, &d), 0);
    cr_assert_eq(d.stage, s26);
    /* 4+8 needs its 22 s pedestrian minimum before anything else */
    pr[s26] = 100;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s48, 21, 0, &d), 0);
    cr_assert_eq(d.reason, SF_MP_MIN_GREEN);
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s48, 22, 0, &d), 0);
    cr_assert_eq(d.stage, s26);
    /* max green (40 s): 2+6 must yield to the best other stage even with the highest
     * pressure; 2+5 keeps phase 2 green, so only phase 6 clears */
    for (int s = 0; s < n; s++)
        pr[s] = s == s26 ? 100 : 0;
    pr[s25] = 2;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 40, 0, &d), 0);
    cr_assert_eq(d.stage, s25);
    cr_assert_eq(d.reason, SF_MP_MAX_GREEN);
    cr_assert_float_eq(d.clearance_s, 4, 1e-12);
    /* a longer max 2 (60 s on phase 2 and 6) is the stage's maximum: held at 40 s */
    ix.phases[1].max2_ds = ix.phases[5].max2_ds = 600;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 40, 0, &d), 0);
    cr_assert_eq(d.stage, s26);
    cr_assert_eq(d.reason, SF_MP_PRESSURE);
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 60, 0, &d), 0);
    cr_assert_eq(d.stage, s25);
    cr_assert_eq(d.reason, SF_MP_MAX_GREEN);
    /* a shorter max 2 does not cut max 1 */
    ix.phases[1].max2_ds = ix.phases[5].max2_ds = 200;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 39, 0, &d), 0);
    cr_assert_eq(d.stage, s26);
    /* at max green with no demand elsewhere: rest in green */
    pr[s25] = 0;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, s26, 55, 0, &d), 0);
    cr_assert_eq(d.stage, s26);
    cr_assert_eq(d.reason, SF_MP_NO_DEMAND);
    /* bad inputs */
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, n, 0, 0, &d), -1);
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, 0, -1, 0, &d), -1);
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, 0, 1, -1, &d), -1);
    pr[0] = NAN;
    cr_assert_eq(sf_mp_decide(&ix, st, n, pr, 0, 1, 0, &d), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(adaptive, phase_ds_from_detectors)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    /* two stop-bar lanes on phase 2, one on phase 4, one advance counter on phase 2 */
    ix.n_det = 4;
    ix.det[0] = (sf_detector_t){.kind = SF_DET_PRESENCE, .phase_mask = 1u << 1};
    ix.det[1] = (sf_detector_t){.kind = SF_DET_PRESENCE, .phase_mask = 1u << 1};
    ix.det[2] = (sf_detector_t){.kind = SF_DET_PRESENCE, .phase_mask = 1u << 3};
    ix.det[3] = (sf_detector_t){.kind = SF_DET_COUNT, .phase_mask = 1u << 1};
    double det[4] = {0.7, 0.95, -1, 1.9};
    double ph[SF_MAX_PHASES];
    cr_assert_eq(sf_adapt_phase_ds(&ix, det, ph), 1);
    cr_assert_float_eq(ph[1], 0.95, 1e-12); /* the busiest stop-bar lane, not the counter */
    cr_assert_float_eq(ph[3], -1, 1e-12);   /* its detector had no data */
    cr_assert_float_eq(ph[0], -1, 1e-12);   /* no detector */
    det[2] = 5;                             /* clipped */
    cr_assert_eq(sf_adapt_phase_ds(&ix, det, ph), 2);
    cr_assert_float_eq(ph[3], SF_DS_MAX, 1e-12);
    det[0] = NAN;
    cr_assert_eq(sf_adapt_phase_ds(&ix, det, ph), -1);
    /* and the result feeds a step directly */
    det[0] = 0.7;
    cr_assert_eq(sf_adapt_phase_ds(&ix, det, ph), 2);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    sf_plan_t next;
    cr_assert_eq(sf_adapt_step(&ix, &pl, ph, &o, 0, &next, NULL), 0);
    check_plan(&ix, &next);
}

Test(max_pressure, stage_pressure_sums_phases)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    sf_stage_t st[SF_MAX_STAGES];
    int n = sf_mp_stages(&ix, st, SF_MAX_STAGES);
    double pp[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sp[SF_MAX_STAGES];
    cr_assert_eq(sf_mp_stage_pressure(&ix, st, n, pp, sp), 0);
    for (int s = 0; s < n; s++) {
        double want = 0;
        for (int p = 0; p < 8; p++)
            if (st[s].phase_mask >> p & 1u)
                want += pp[p];
        cr_assert_float_eq(sp[s], want, 1e-12);
    }
    pp[2] = INFINITY;
    cr_assert_eq(sf_mp_stage_pressure(&ix, st, n, pp, sp), -1);
}

Test(adaptive, omitted_phase_stays_omitted)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    /* phase 3 omitted: its 15 s go to phase 4 in the plan */
    cur.split_mode[2] = SF_SPLIT_OMIT;
    cur.split_ds[2] = 0;
    cur.split_ds[3] = 500;
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    double ds[8] = {0.5, 1.0, 0.9, 0.6, 0.5, 0.95, 0.4, 0.6};
    for (int cyc = 0; cyc < 10; cyc++) {
        cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
        cr_assert_eq(next.split_ds[2], 0);
        cr_assert_eq(next.split_mode[2], SF_SPLIT_OMIT);
        uint32_t r1 = 0, r2 = 0;
        for (int i = 0; i < 4; i++) {
            r1 += next.split_ds[i];
            r2 += next.split_ds[i + 4];
        }
        cr_assert_eq(r1, next.cycle_ds);
        cr_assert_eq(r2, next.cycle_ds);
        for (uint8_t i = 0; i < 8; i++)
            if (i != 2)
                cr_assert_geq(next.split_ds[i], sf_phase_min_split_ds(&ix, i));
        cur = next;
    }
}

/* ---- hysteresis, step limits and the coordination reference ---------------------------- */

Test(adaptive, group_cycle_dead_band_and_step)
{
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o); /* dead band 4 s, step 6 s */
    cr_assert_float_eq(sf_adapt_group_cycle(120, 120, &o), 120, 1e-9);
    /* inside the dead band: kept, however often it is asked */
    cr_assert_float_eq(sf_adapt_group_cycle(120, 123.9, &o), 120, 1e-9);
    cr_assert_float_eq(sf_adapt_group_cycle(120, 116.1, &o), 120, 1e-9);
    /* outside: the whole way when within a step, else one step */
    cr_assert_float_eq(sf_adapt_group_cycle(120, 124, &o), 124, 1e-9);
    cr_assert_float_eq(sf_adapt_group_cycle(120, 150, &o), 126, 1e-9);
    cr_assert_float_eq(sf_adapt_group_cycle(120, 60, &o), 114, 1e-9);
    cr_assert_float_eq(sf_adapt_group_cycle(120, 115.04, &o), 115, 1e-9); /* 0.1 s units */
    o.min_cycle_change_s = 0;
    cr_assert_float_eq(sf_adapt_group_cycle(120, 121, &o), 121, 1e-9);
    errno = 0;
    cr_assert_eq(sf_adapt_group_cycle(0, 100, &o), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_adapt_group_cycle(120, NAN, &o), -1);
    cr_assert_eq(sf_adapt_group_cycle(120, 100, NULL), -1);
    o.min_cycle_change_s = -1;
    cr_assert_eq(sf_adapt_group_cycle(120, 100, &o), -1);
}

Test(adaptive, small_split_changes_are_not_sent)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o); /* 3 s */
    next = cur;
    cr_assert(!sf_adapt_significant(&ix, &cur, &next, &o));
    /* 2.9 s moved from phase 4 to phase 3 (and 8 to 7): not worth a download */
    next.split_ds[2] += 29;
    next.split_ds[3] -= 29;
    next.split_ds[6] += 29;
    next.split_ds[7] -= 29;
    cr_assert(!sf_adapt_significant(&ix, &cur, &next, &o));
    next.split_ds[2] += 1;
    next.split_ds[3] -= 1;
    cr_assert(sf_adapt_significant(&ix, &cur, &next, &o));
    /* any cycle change is sent (the group decided it) */
    next = cur;
    next.cycle_ds = 1010;
    next.split_ds[1] += 10;
    next.split_ds[5] += 10;
    cr_assert(sf_adapt_significant(&ix, &cur, &next, &o));
    errno = 0;
    cr_assert(!sf_adapt_significant(&ix, &cur, NULL, &o));
    cr_assert_eq(errno, EINVAL);
}

/* The step limit holds when a measurement asks for far more: 6 s of cycle, 4 s + the cycle
 * change of split per step, whatever the DS. */
Test(adaptive, step_limits_hold_under_extreme_ds)
{
    sf_intersection_t ix;
    sf_plan_t cur, next;
    nema8(&ix, &cur);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    o.max_cycle_s = 600;
    double ds[8] = {2, 0, 2, 0, 2, 0, 2, 0};
    for (int k = 0; k < 20; k++) {
        cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next, NULL), 0);
        int dc = abs((int)next.cycle_ds - (int)cur.cycle_ds);
        cr_assert_leq(dc, 60);
        for (int i = 0; i < 8; i++)
            cr_assert_leq(abs((int)next.split_ds[i] - (int)cur.split_ds[i]), 40 + dc + 1,
                          "step %d phase %d: %d -> %d", k, i + 1, cur.split_ds[i],
                          next.split_ds[i]);
        check_plan(&ix, &next);
        cur = next;
    }
}

static void ring_order(sf_intersection_t *ix, const uint8_t *r1, const uint8_t *r2)
{
    ix->ring_seq_len[0] = ix->ring_seq_len[1] = 4;
    memcpy(ix->ring_seq[0], r1, 4);
    memcpy(ix->ring_seq[1], r2, 4);
}

Test(adaptive, coordinated_green_start)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    /* leading lefts: phase 1 (15 s) before coordinated 2 */
    ring_order(&ix, (const uint8_t[]){0, 1, 2, 3}, (const uint8_t[]){4, 5, 6, 7});
    cr_assert_eq(sf_adapt_coord_start_ds(&ix, &pl), 150);
    pl.split_ds[0] = 200;
    pl.split_ds[1] = 300;
    cr_assert_eq(sf_adapt_coord_start_ds(&ix, &pl), 200);
    /* lagging left: the coordinated phase starts the group */
    ring_order(&ix, (const uint8_t[]){1, 0, 2, 3}, (const uint8_t[]){5, 4, 6, 7});
    cr_assert_eq(sf_adapt_coord_start_ds(&ix, &pl), 0);
    /* coordinated phase in the second barrier group, after phase 3 there */
    ring_order(&ix, (const uint8_t[]){0, 1, 2, 3}, (const uint8_t[]){4, 5, 6, 7});
    pl.coord_phase_mask = 0x08; /* phase 4 */
    cr_assert_eq(sf_adapt_coord_start_ds(&ix, &pl), 150);
    pl.coord_phase_mask = 0;
    cr_assert_eq(sf_adapt_coord_start_ds(&ix, &pl), 0);
    cr_assert_eq(sf_adapt_coord_start_ds(NULL, &pl), 0);
}

/* Where unit i's reference (unit/engine.c ref_gt) puts group time 0 at time t: the lap start
 * is due when (t - sync - offset + cs) mod cycle == 0; returns that remainder. */
static int64_t ref_err(int64_t t, uint16_t offset, uint16_t cs, uint16_t cycle)
{
    int64_t v = (t - offset + cs) % cycle;
    return v < 0 ? v + cycle : v;
}

/* The reference is kept across a cycle change: every member that switches (at its first lap
 * start after ts) finds its new reference where it already stands, apart from the move of
 * its coordinated green's start, and relative offsets stay as scheduled. */
Test(adaptive, cycle_change_keeps_the_reference)
{
    /* set 0: scattered offsets; set 1: a corridor with zero offsets and leading lefts of
     * different lengths (every member's lap starts in the cycle before its green) */
    const uint16_t bases[2][5] = {{0, 0, 370, 900, 1190}, {0, 0, 0, 0, 0}};
    const uint16_t css[2][5] = {{160, 140, 150, 0, 200}, {160, 140, 100, 200, 120}};
    const uint16_t olds[] = {1200, 1140, 900};
    for (int set = 0; set < 2; set++) {
        const uint16_t *base = bases[set], *cs_old = css[set];
        const int deltas[] = {60, -60, 35, -41};
        uint32_t seed = 7;
        for (size_t a = 0; a < sizeof olds / sizeof olds[0]; a++)
            for (size_t b = 0; b < sizeof deltas / sizeof deltas[0]; b++)
                for (int trial = 0; trial < 40; trial++) {
                    uint16_t c_old = olds[a];
                    uint16_t c_new = (uint16_t)(c_old + deltas[b]);
                    seed = seed * 1103515245u + 12345u;
                    uint32_t epoch = (seed >> 8) % c_old;
                    int64_t ts = 270000 + (int64_t)((seed >> 4) % 5000);
                    uint16_t b_mod[5];
                    for (int i = 0; i < 5; i++)
                        b_mod[i] = (uint16_t)(base[i] % c_old);
                    uint32_t e2;
                    cr_assert_eq(sf_adapt_rebase(ts, epoch, c_old, c_new, b_mod, cs_old, 5, &e2),
                                 0);
                    cr_assert_lt(e2, c_new);
                    int kept = 0;
                    for (int i = 0; i < 5; i++) {
                        uint16_t off_old = sf_adapt_offset_ds(b_mod[i], epoch, c_old);
                        /* first lap start at or after ts under the old reference */
                        int64_t t = ts;
                        while (ref_err(t, off_old, cs_old[i], c_old) != 0)
                            t++;
                        uint16_t off_new = sf_adapt_offset_ds(b_mod[i], e2, c_new);
                        /* the new lap keeps the coordinated green start where it was */
                        int64_t err = ref_err(t + cs_old[i], off_new, 0, c_new);
                        if (err > c_new / 2)
                            err -= c_new;
                        if (err == 0)
                            kept++;
                        /* one that switches a cycle earlier or later is off by whole cycle
                         * changes only, which the unit corrects within a cycle */
                        cr_assert_leq(llabs(err), 2 * abs(deltas[b]), "member %d err %lld", i,
                                      (long long)err);
                    }
                    /* the members switching in the chosen cycle need no transition: the
                     * largest share (of three possible cycles; of two for the corridor, whose
                     * lap starts lie within 10 s) */
                    cr_assert_geq(kept, set == 0 ? 2 : 3, "c %d -> %d epoch %u ts %lld: %d kept",
                                  c_old, c_new, epoch, (long long)ts, kept);
                    /* relative offsets: the scheduled ones, modulo the new cycle */
                    for (int i = 1; i < 5; i++) {
                        int d_new = (sf_adapt_offset_ds(b_mod[i], e2, c_new) -
                                     sf_adapt_offset_ds(b_mod[0], e2, c_new) + 2 * c_new) %
                                    c_new;
                        cr_assert_eq(d_new, (b_mod[i] - b_mod[0] + 2 * c_new) % c_new);
                    }
                }
    }
}

Test(adaptive, rebase_hand_checked)
{
    /* cycle 120 s, epoch 0, change heard at t = 123 s: the last common start is 120 s, 3 s
     * ago. Zero offsets, coordinated green 16 s into the lap: the next lap starts at
     * 224 s, its coordinated green at 240 s, so the new reference is anchored at 240 s:
     * 240 mod 114 = 12 s. */
    const uint16_t base[2] = {0, 0}, cs[2] = {160, 160};
    uint32_t e;
    cr_assert_eq(sf_adapt_rebase(1230, 0, 1200, 1140, base, cs, 2, &e), 0);
    cr_assert_eq(e, 120);
    /* the same at t = 110 s: lap start at 104 s is already past, so 224 s again */
    cr_assert_eq(sf_adapt_rebase(1100, 0, 1200, 1140, base, cs, 2, &e), 0);
    cr_assert_eq(e, 120);
    /* at 100 s the lap starting at 104 s is still to come: its green at 120 s */
    cr_assert_eq(sf_adapt_rebase(1000, 0, 1200, 1140, base, cs, 2, &e), 0);
    cr_assert_eq(e, 1200 % 1140);
    /* same cycle: the epoch is the same common start */
    cr_assert_eq(sf_adapt_rebase(1000, 0, 1200, 1200, base, cs, 2, &e), 0);
    cr_assert_eq(e, 0);
    /* offsets under an epoch */
    cr_assert_eq(sf_adapt_offset_ds(370, 50, 1000), 420);
    cr_assert_eq(sf_adapt_offset_ds(370, 700, 1000), 70);
    cr_assert_eq(sf_adapt_offset_ds(370, 700, 0), 0);
    /* bad inputs */
    errno = 0;
    cr_assert_eq(sf_adapt_rebase(1000, 1200, 1200, 1140, base, cs, 2, &e), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_adapt_rebase(1000, 0, 0, 1140, base, cs, 2, &e), -1);
    cr_assert_eq(sf_adapt_rebase(1000, 0, 1200, 1140, NULL, cs, 2, &e), -1);
    cr_assert_eq(sf_adapt_rebase(1000, 0, 1200, 1140, base, cs, 2, NULL), -1);
}

/* Side streets keep the scheduled share: a non-coordinated phase measured under its share
 * is raised to the DS that asks for it (hand-checked: lost 2 + 4 - 2 = 4 s, green 31 s);
 * coordinated phases, saturated ones and unmeasured ones are left alone; the step then
 * keeps the side street's split where the bare DS would have cut it. */
Test(adaptive, ds_floor_keeps_the_side_street_share)
{
    sf_intersection_t ix;
    sf_plan_t cur, base, next_bare, next_floor;
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    nema8(&ix, &cur);
    base = cur;
    double ds[8] = {0.5, 0.3, 0.9, 0.3, -1, 1.0, 1.2, 0.3};
    double bare[8];
    memcpy(bare, ds, sizeof ds);
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, &base, &o, ds), 0);
    cr_assert_float_eq(ds[0], 0.9 * 11.0 / 11.0, 1e-9); /* left, 15 s split: raised */
    cr_assert_float_eq(ds[1], 0.3, 1e-9);               /* coordinated 2: left alone */
    cr_assert_float_eq(ds[3], 0.9, 1e-9);               /* side through: raised */
    cr_assert_float_eq(ds[4], -1, 1e-9);                /* no measurement */
    cr_assert_float_eq(ds[5], 1.0, 1e-9);               /* coordinated 6 */
    cr_assert_float_eq(ds[6], 1.2, 1e-9);               /* saturated: kept */
    /* a base plan with a larger share (48 of 120 s): green 0.4 x 100 - 4 = 36 s of 31 */
    base.cycle_ds = 1200;
    base.split_ds[3] = 480;
    double ds2[8] = {0.5, 0.3, 0.9, 0.3, -1, 1.0, 1.2, 0.3};
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, &base, &o, ds2), 0);
    cr_assert_float_eq(ds2[3], 0.9 * 36.0 / 31.0, 1e-9);
    /* the step: without the floor the side streets (4, 8) lose green to the arterial */
    base = cur;
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, &base, &o, ds), 0);
    cr_assert_eq(sf_adapt_step(&ix, &cur, bare, &o, 0, &next_bare, NULL), 0);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds, &o, 0, &next_floor, NULL), 0);
    cr_assert_lt(next_bare.split_ds[3], cur.split_ds[3]);
    cr_assert_gt(next_floor.split_ds[3], next_bare.split_ds[3]);
    cr_assert_geq(next_floor.split_ds[7] * 1000 / next_floor.cycle_ds,
                  next_bare.split_ds[7] * 1000 / next_bare.cycle_ds);
    /* bad inputs change nothing */
    double keep[8];
    memcpy(keep, ds, sizeof ds);
    errno = 0;
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, NULL, &o, ds), -1);
    cr_assert_eq(errno, EINVAL);
    base.cycle_ds = 0;
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, &base, &o, ds), -1);
    base.cycle_ds = cur.cycle_ds;
    ds[2] = NAN;
    cr_assert_eq(sf_adapt_ds_floor(&ix, &cur, &base, &o, ds), -1);
    ds[2] = keep[2];
    cr_assert_eq(memcmp(ds, keep, sizeof ds), 0);
}

/* The green a phase had is integrated from status samples by phase NUMBER (the register
 * map's bitmask), and a phase's DS is taken over the larger of its plan's green and the
 * green it had: a side phase that gapped out keeps its plan's green (the unused part is
 * spare), a coordinated phase that received the time (early return) is measured over what
 * it really had. */
Test(adaptive, green_seen_and_available)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    /* number phase 5 as 9 to see the number, not the index, select the bit */
    ix.phases[4].id = 9;
    double g[SF_MAX_PHASES] = {0};
    /* 2 and 6 green for 10 samples of 1 s, then 4 and 8 for 3 */
    for (int k = 0; k < 10; k++)
        cr_assert_eq(sf_adapt_green_sample(&ix, (1u << 1) | (1u << 5), 1.0, g), 0);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(sf_adapt_green_sample(&ix, (1u << 3) | (1u << 7), 1.0, g), 0);
    cr_expect_float_eq(g[1], 10.0, 1e-9);
    cr_expect_float_eq(g[5], 10.0, 1e-9);
    cr_expect_float_eq(g[3], 3.0, 1e-9);
    cr_expect_float_eq(g[7], 3.0, 1e-9);
    cr_expect_float_eq(g[0] + g[2] + g[4] + g[6], 0.0, 1e-12);
    /* bit 4 is phase number 5, which no phase has now; bit 8 is phase 9 = index 4 */
    cr_assert_eq(sf_adapt_green_sample(&ix, 1u << 4, 2.0, g), 0);
    cr_expect_float_eq(g[4], 0.0, 1e-12);
    cr_assert_eq(sf_adapt_green_sample(&ix, 1u << 8, 2.0, g), 0);
    cr_expect_float_eq(g[4], 2.0, 1e-12);
    /* bad input: refused, nothing added */
    errno = 0;
    cr_expect_eq(sf_adapt_green_sample(&ix, 0xffff, -1.0, g), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(sf_adapt_green_sample(&ix, 0xffff, NAN, g), -1);
    cr_expect_eq(sf_adapt_green_sample(NULL, 0xffff, 1.0, g), -1);
    cr_expect_eq(sf_adapt_green_sample(&ix, 0xffff, 1.0, NULL), -1);
    cr_expect_float_eq(g[1], 10.0, 1e-9);

    /* available green: the larger of plan and seen */
    cr_expect_float_eq(sf_adapt_green_avail(29.0, 12.0), 29.0, 1e-12); /* gapped out */
    cr_expect_float_eq(sf_adapt_green_avail(29.0, 45.0), 45.0, 1e-12); /* early return */
    cr_expect_float_eq(sf_adapt_green_avail(29.0, -3.0), 29.0, 1e-12);
    cr_expect_float_eq(sf_adapt_green_avail(NAN, 7.0), 7.0, 1e-12);
    cr_expect_float_eq(sf_adapt_green_avail(-1.0, NAN), 0.0, 1e-12);

    /* what it changes: 30 vehicles through a coordinated phase planned 29 s a cycle that
     * had 45 s; over the plan's green DS reads 30 / (0.5 x 29) = 2.07 -> clipped to 2,
     * over the green it had 30 / (0.5 x 45) = 1.33 */
    double over_plan = sf_flow_ds(30, 29.0, 1800.0);
    double over_avail = sf_flow_ds(30, sf_adapt_green_avail(29.0, 45.0), 1800.0);
    cr_expect_float_eq(over_plan, SF_DS_MAX, 1e-9);
    cr_expect_float_eq(over_avail, 30.0 / (0.5 * 45.0), 1e-9);
}

/* Feed n samples of 1 s of one signal state to t. Returns the greens judged meanwhile. */
static int feed(sf_split_fail_t *t, sf_sig_t sig, int n_occ, int n_free)
{
    int judged = 0;
    for (int k = 0; k < n_occ + n_free; k++) {
        int r = sf_split_fail_sample(t, sig, k < n_occ, 1.0);
        cr_assert_geq(r, 0);
        judged += r;
    }
    return judged;
}

/* A green is judged once the first 5 s of its red have been seen: a failure when its stop
 * bar was occupied for at least half the green (GOR) and for at least 80 % of those 5 s
 * (ROR5); yellow counts in neither; a green before a red is ignored; a short red judges
 * with what it saw. */
Test(adaptive, split_failure_from_green_and_red_occupancy)
{
    sf_split_fail_t t;
    memset(&t, 0, sizeof t);
    /* a red before any green: nothing to judge */
    cr_assert_eq(feed(&t, SF_SIG_RED, 10, 0), 0);
    /* green 20 s occupied 12 (GOR 0.6), yellow 3 s, red occupied 5 of 5: failure */
    cr_assert_eq(feed(&t, SF_SIG_GREEN, 12, 8), 0);
    cr_assert_eq(feed(&t, SF_SIG_YELLOW, 0, 3), 0);
    cr_assert_eq(feed(&t, SF_SIG_RED, 4, 0), 0); /* 4 s: not yet */
    cr_assert_eq(feed(&t, SF_SIG_RED, 1, 0), 1);
    cr_assert_eq(t.cycles, 1);
    cr_assert_eq(t.failures, 1);
    /* the rest of the red is not counted: the next green starts a new account */
    cr_assert_eq(feed(&t, SF_SIG_RED, 0, 30), 0);
    /* green occupied 12 of 20, red occupied 3 of 5 (ROR5 0.6): the queue cleared */
    cr_assert_eq(feed(&t, SF_SIG_GREEN, 12, 8), 0);
    cr_assert_eq(feed(&t, SF_SIG_RED, 3, 2), 1);
    cr_assert_eq(t.cycles, 2);
    cr_assert_eq(t.failures, 1);
    /* green occupied 9 of 20 (GOR 0.45, a vehicle that came at the end of a spare green),
     * red fully occupied: no failure */
    cr_assert_eq(feed(&t, SF_SIG_GREEN, 9, 11), 0);
    cr_assert_eq(feed(&t, SF_SIG_RED, 5, 0), 1);
    cr_assert_eq(t.failures, 1);
    /* a red of 2 s, then green again: judged with those 2 s (both occupied: failure) */
    cr_assert_eq(feed(&t, SF_SIG_GREEN, 10, 0), 0);
    cr_assert_eq(feed(&t, SF_SIG_RED, 2, 0), 0);
    cr_assert_eq(feed(&t, SF_SIG_GREEN, 1, 0), 1);
    cr_assert_eq(t.cycles, 4);
    cr_assert_eq(t.failures, 2);
    /* a sample longer than the window counts only up to it: 3 s then 10 s occupied-free */
    memset(&t, 0, sizeof t);
    cr_assert_eq(sf_split_fail_sample(&t, SF_SIG_GREEN, true, 10.0), 0);
    cr_assert_eq(sf_split_fail_sample(&t, SF_SIG_RED, true, 3.0), 0);
    cr_assert_eq(sf_split_fail_sample(&t, SF_SIG_RED, false, 10.0), 1);
    cr_assert_eq(t.failures, 0); /* ROR5 = 3 / 5 */
    /* bad input: refused, nothing changed */
    sf_split_fail_t keep = t;
    errno = 0;
    cr_assert_eq(sf_split_fail_sample(&t, SF_SIG_GREEN, true, -1.0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_split_fail_sample(&t, SF_SIG_GREEN, true, NAN), -1);
    cr_assert_eq(sf_split_fail_sample(&t, (sf_sig_t)7, true, 1.0), -1);
    cr_assert_eq(sf_split_fail_sample(NULL, SF_SIG_GREEN, true, 1.0), -1);
    cr_assert_eq(memcmp(&t, &keep, sizeof t), 0);
}

/* Split failures raise a phase's DS in proportion to the share of its greens that failed,
 * to fail_ds when all did; the raised DS makes the step give that phase more green than the
 * flow DS alone would. */
Test(adaptive, split_failures_raise_ds)
{
    sf_intersection_t ix;
    sf_plan_t cur, next_bare, next_fail;
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);
    nema8(&ix, &cur);
    cr_assert_gt(o.fail_ds, o.target_ds);
    double ds[8] = {0.95, 0.9, 0.9, 0.6, 0.95, 0.9, -1, 0.6};
    uint32_t cyc[8] = {4, 4, 4, 4, 0, 4, 4, 4};
    uint32_t fail[8] = {4, 0, 2, 0, 0, 0, 3, 4};
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, ds), 3);
    cr_assert_float_eq(ds[0], o.fail_ds, 1e-9); /* every green */
    cr_assert_float_eq(ds[1], 0.9, 1e-9);       /* none */
    cr_assert_float_eq(ds[2], o.target_ds + 0.5 * (o.fail_ds - o.target_ds), 1e-9);
    cr_assert_float_eq(ds[4], 0.95, 1e-9); /* none judged */
    cr_assert_float_eq(ds[6], -1, 1e-9);   /* no data */
    cr_assert_float_eq(ds[7], o.fail_ds, 1e-9);
    /* a DS already above the raise is kept */
    double hi[8] = {1.6, 0.9, 0.9, 0.6, 0.95, 0.9, -1, 0.6};
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, hi), 2);
    cr_assert_float_eq(hi[0], 1.6, 1e-9);
    /* every phase at the target but left 1, which failed in every green: it gets more
     * green than without the failures (the flow DS of a saturated phase reads ~ target) */
    double flat[8] = {0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9}, raised[8];
    uint32_t only1[8] = {4, 0, 0, 0, 0, 0, 0, 0};
    memcpy(raised, flat, sizeof flat);
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, only1, &o, raised), 1);
    cr_assert_eq(sf_adapt_step(&ix, &cur, flat, &o, 0, &next_bare, NULL), 0);
    cr_assert_eq(sf_adapt_step(&ix, &cur, raised, &o, 0, &next_fail, NULL), 0);
    check_plan(&ix, &next_fail);
    cr_assert_eq(next_bare.split_ds[0], cur.split_ds[0]);
    cr_assert_gt(next_fail.split_ds[0], next_bare.split_ds[0]);
    /* an omitted phase is not raised; off when fail_ds <= target */
    double d2[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    cur.split_mode[0] = SF_SPLIT_OMIT;
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, d2), 3); /* 3, 7, 8 */
    cr_assert_float_eq(d2[0], 0.5, 1e-9);
    cur.split_mode[0] = SF_SPLIT_NONE;
    o.fail_ds = 0;
    for (int i = 0; i < 8; i++)
        d2[i] = 0.5;
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, d2), 0);
    cr_assert_float_eq(d2[7], 0.5, 1e-9);
    sf_adapt_opts_default(&o);
    /* bad inputs change nothing */
    double keep[8];
    memcpy(keep, d2, sizeof d2);
    errno = 0;
    fail[1] = 5; /* more failures than greens */
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, d2), -1);
    cr_assert_eq(errno, EINVAL);
    fail[1] = 0;
    d2[3] = NAN;
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, d2), -1);
    d2[3] = keep[3];
    o.fail_ds = 3.0; /* above SF_DS_MAX */
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, cyc, fail, &o, d2), -1);
    cr_assert_eq(sf_adapt_ds_failures(&ix, &cur, NULL, fail, &o, d2), -1);
    cr_assert_eq(memcmp(d2, keep, sizeof d2), 0);
}

/* Failures keep the cycle from shrinking but do not lengthen it by themselves. */
Test(adaptive, failures_hold_the_cycle)
{
    /* no failures: the flow DS decides, both ways */
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 100, 100), 100, 1e-9);
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 130, 130), 130, 1e-9);
    /* failures would ask for more than it runs: held, not lengthened */
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 100, 140), 120, 1e-9);
    /* ... unless the flow DS asks for more */
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 126, 140), 126, 1e-9);
    /* failures not enough to hold: shrinks to what they ask */
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 100, 110), 110, 1e-9);
    /* bad values taken as the running cycle */
    cr_expect_float_eq(sf_adapt_cycle_hold(120, NAN, 90), 120, 1e-9);
    cr_expect_float_eq(sf_adapt_cycle_hold(120, 100, -1), 120, 1e-9);
    cr_expect_float_eq(sf_adapt_cycle_hold(0, 100, 110), 100, 1e-9);
}

/* control.adaptive_sat_flow=learned: a phase whose every judged green failed teaches its
 * maximum flow (half-way to its busiest lane's flow over the green, bounded), and its DS
 * counted against it reads a saturated phase as saturated, so it asks for more green and a
 * longer cycle where the planner's 1800 veh/h reads it below the target (the corridor's
 * arterial stop lines discharge ~1550 veh per hour of green a lane, bench_blocking). */
Test(adaptive, max_flow_learned_at_saturation)
{
    sf_intersection_t ix;
    sf_plan_t cur;
    nema8(&ix, &cur);
    sf_adapt_opts_t fixed, learned;
    sf_adapt_opts_default(&fixed);
    learned = fixed;
    learned.sat = SF_ADAPT_SAT_LEARNED;
    /* phase 2: 31 s of green a cycle, 3 cycles, its busiest lane 40 vehicles (1548 veh/h) */
    const double g = 93;
    const uint32_t n = 40;
    cr_expect_float_eq(sf_adapt_sat_learn(0, n, g, 3, 3, &fixed), 1800, 1e-9);   /* off */
    cr_expect_float_eq(sf_adapt_sat_learn(0, n, g, 3, 2, &learned), 1800, 1e-9); /* one cleared */
    cr_expect_float_eq(sf_adapt_sat_learn(0, n, g, 1, 1, &learned), 1800, 1e-9); /* one judged */
    double mf = sf_adapt_sat_learn(0, n, g, 3, 3, &learned);
    cr_expect_float_eq(mf, 0.5 * (1800 + n * 3600.0 / g), 1e-9);
    mf = sf_adapt_sat_learn(mf, n, g, 3, 3, &learned); /* a second saturated measurement */
    cr_expect_float_eq(mf, 0.25 * 1800 + 0.75 * n * 3600.0 / g, 1e-9);
    /* bounded: a blocked lane's trickle teaches no less than the minimum */
    cr_expect_float_eq(sf_adapt_sat_learn(0, 10, g, 3, 3, &learned),
                       0.5 * (1800 + SF_ADAPT_SAT_MIN_VEH_H), 1e-9);
    cr_expect_float_eq(sf_adapt_sat_learn(0, 200, g, 3, 3, &learned), 1800, 1e-9);
    /* bad input */
    errno = 0;
    cr_expect_eq(sf_adapt_sat_learn(NAN, n, g, 3, 3, &learned), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(sf_adapt_sat_learn(0, n, -1, 3, 3, &learned), -1);
    cr_expect_eq(sf_adapt_sat_learn(0, n, g, 2, 3, &learned), -1);
    cr_expect_eq(sf_adapt_sat_learn(0, n, g, 3, 3, NULL), -1);
    /* the DS of the saturated arterial phases 2 and 6 against 1800 and against what they
     * taught; the other phases at the target (they ask for the green they have) */
    double ds_fixed[8], ds_learned[8];
    for (int p = 0; p < 8; p++)
        ds_fixed[p] = ds_learned[p] = fixed.target_ds;
    ds_fixed[1] = ds_fixed[5] = sf_flow_ds(n, g, 1800);
    ds_learned[1] = ds_learned[5] = sf_flow_ds(n, g, mf);
    cr_assert_lt(ds_fixed[1], fixed.target_ds); /* saturated, read below the target */
    cr_assert_gt(ds_learned[1], 0.95);
    double c_fixed, c_learned;
    cr_assert_eq(sf_adapt_cycle_wanted(&ix, &cur, ds_fixed, &fixed, &c_fixed), 0);
    cr_assert_eq(sf_adapt_cycle_wanted(&ix, &cur, ds_learned, &learned, &c_learned), 0);
    cr_expect_leq(c_fixed, cur.cycle_ds / 10.0); /* asks for no longer cycle */
    cr_expect_gt(c_learned, cur.cycle_ds / 10.0);
    sf_plan_t nf, nl;
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds_fixed, &fixed, 0, &nf, NULL), 0);
    cr_assert_eq(sf_adapt_step(&ix, &cur, ds_learned, &learned, 0, &nl, NULL), 0);
    cr_expect_gt(nl.split_ds[1], nf.split_ds[1]); /* more arterial green */
    /* a bad sat mode is refused */
    learned.sat = (sf_adapt_sat_t)7;
    cr_expect_eq(sf_adapt_cycle_wanted(&ix, &cur, ds_learned, &learned, &c_learned), -1);
}

/* Index of the stage with this phase mask, -1 none. */
static int stage_of(const sf_stage_t *st, int n, uint16_t mask)
{
    for (int s = 0; s < n; s++)
        if (st[s].phase_mask == mask)
            return s;
    return -1;
}

/* The unit serves its rings in sequence order (1 2 | 3 4 and 5 6 | 7 8): the next stage
 * can only be forward within the barrier group, or the next group across the barrier. */
Test(max_pressure, reachable_stages_follow_the_ring_sequence)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    ix.ring_seq_len[0] = ix.ring_seq_len[1] = 4;
    for (uint8_t k = 0; k < 4; k++) {
        ix.ring_seq[0][k] = k;
        ix.ring_seq[1][k] = (uint8_t)(4 + k);
    }
    sf_stage_t st[SF_MAX_STAGES];
    int n = sf_mp_stages(&ix, st, SF_MAX_STAGES);
    cr_assert_eq(n, 8);
    int s15 = stage_of(st, n, 0x11), s16 = stage_of(st, n, 0x21), s25 = stage_of(st, n, 0x12);
    int s26 = stage_of(st, n, 0x22), s37 = stage_of(st, n, 0x44), s38 = stage_of(st, n, 0x84);
    int s47 = stage_of(st, n, 0x48), s48 = stage_of(st, n, 0x88);
    uint64_t b1 = 1ull << s15 | 1ull << s16 | 1ull << s25 | 1ull << s26;
    uint64_t b2 = 1ull << s37 | 1ull << s38 | 1ull << s47 | 1ull << s48;
    /* from 2+6 (both at the end of their group): only across the barrier */
    cr_assert_eq(sf_mp_reachable(&ix, st, n, s26), b2);
    /* from 4+8: back to the first group only (3 and 7 are behind them) */
    cr_assert_eq(sf_mp_reachable(&ix, st, n, s48), b1);
    /* from 1+5: forward within the group, or the next group (2 and 6 skipped) */
    cr_assert_eq(sf_mp_reachable(&ix, st, n, s15), (b1 & ~(1ull << s15)) | b2);
    /* from 2+5: 6 next in ring 2, never 1 again before the barrier */
    cr_assert_eq(sf_mp_reachable(&ix, st, n, s25), 1ull << s26 | b2);
    errno = 0;
    cr_assert_eq(sf_mp_reachable(&ix, st, n, -1), 0);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_mp_reachable(NULL, st, n, 0), 0);

    /* deciding among the reachable ones: 1+5 has the most pressure, but from 2+6 it is
     * behind the barrier; 4+8 is next and has more than 2+6: switch there */
    double sp[8] = {0};
    sp[s15] = 30;
    sp[s26] = 5;
    sp[s48] = 8;
    sf_mp_decision_t d;
    uint64_t ok = sf_mp_reachable(&ix, st, n, s26);
    cr_assert_eq(sf_mp_decide_among(&ix, st, n, sp, s26, 20, 1, ok, 0, &d), 0);
    cr_assert(d.switch_stage);
    cr_assert_eq(d.stage, s48);
    /* 4+8 not above 2+6 + hysteresis: hold, whatever 1+5 has */
    sp[s48] = 5.5;
    cr_assert_eq(sf_mp_decide_among(&ix, st, n, sp, s26, 20, 1, ok, 0, &d), 0);
    cr_assert_not(d.switch_stage);
    cr_assert_eq(d.stage, s26);
    /* sf_mp_decide considers every stage */
    cr_assert_eq(sf_mp_decide(&ix, st, n, sp, s26, 20, 1, &d), 0);
    cr_assert_eq(d.stage, s15);
    /* at max green (40 s) nothing reachable has a positive pressure: held, unless a vehicle
     * waits for a reachable stage: then the best of those */
    sp[s48] = -3;
    sp[s47] = -1;
    cr_assert_eq(sf_mp_decide_among(&ix, st, n, sp, s26, 40, 1, ok, 0, &d), 0);
    cr_assert_not(d.switch_stage);
    cr_assert_eq(d.reason, SF_MP_NO_DEMAND);
    uint64_t waiting = 1ull << s48 | 1ull << s47 | 1ull << s15;
    cr_assert_eq(sf_mp_decide_among(&ix, st, n, sp, s26, 40, 1, ok, waiting, &d), 0);
    cr_assert(d.switch_stage);
    cr_assert_eq(d.stage, s47);
    cr_assert_eq(d.reason, SF_MP_MAX_GREEN);
    /* before max green a waiting vehicle does not override pressure */
    cr_assert_eq(sf_mp_decide_among(&ix, st, n, sp, s26, 39, 1, ok, waiting, &d), 0);
    cr_assert_not(d.switch_stage);
}

/* A switch costs lost time L (clearance of the phases that end + 2 s start-up) out of the
 * next stage's longest run G: it must bring p x L / (G - L) more than the current p. */
Test(max_pressure, switch_hysteresis_pays_for_the_lost_time)
{
    sf_intersection_t ix;
    sf_plan_t pl;
    nema8(&ix, &pl);
    sf_stage_t st[SF_MAX_STAGES];
    int n = sf_mp_stages(&ix, st, SF_MAX_STAGES);
    int s15 = stage_of(st, n, 0x11), s25 = stage_of(st, n, 0x12);
    int s26 = stage_of(st, n, 0x22), s48 = stage_of(st, n, 0x88);
    /* 2+6 -> 4+8: L = 3 + 1 + 2 = 6 s, G = 40 s (max1): 34 x 6 / 34 = 6 over the base */
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, 34, 0.25), 6.25, 1e-9);
    /* no positive pressure to keep, or no switch: the base */
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, -3, 0.25), 0.25, 1e-12);
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s26, 34, 0.25), 0.25, 1e-12);
    /* 1+5 -> 2+5: only phase 1 ends; its 5 s yellow: L = 5 + 1 + 2 = 8, G = 40: 8 / 32 */
    ix.phases[0].yellow_ds = 50;
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s15, s25, 10, 0), 2.5, 1e-9);
    /* a longer max 2 on 4 and 8 (70 s): G = 70, L = 6: 32 x 6 / 64 = 3 */
    ix.phases[3].max2_ds = ix.phases[7].max2_ds = 700;
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, 32, 0), 3.0, 1e-9);
    /* a next stage that cannot outlast the lost time (max 5 s = its min green): the base */
    ix.phases[3].max2_ds = ix.phases[7].max2_ds = 0;
    ix.phases[3].max1_ds = ix.phases[7].max1_ds = 50;
    cr_assert_float_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, 32, 0.5), 0.5, 1e-12);
    /* bad input */
    errno = 0;
    cr_assert_eq(sf_mp_switch_hysteresis(&ix, st, n, -1, s48, 1, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, n, 1, 0), -1);
    cr_assert_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, NAN, 0), -1);
    cr_assert_eq(sf_mp_switch_hysteresis(&ix, st, n, s26, s48, 1, -1), -1);
    cr_assert_eq(sf_mp_switch_hysteresis(NULL, st, n, s26, s48, 1, 0), -1);
}

/* The full-bay green of a turn fed by a bay beside the coordinated movement
 * (sf_adapt_ds_bay), on the corridor's I2 under plan 1 (hand-checked): the arterial lefts
 * 1 and 5 are fed by 60 m bays on I1-I2 and I3-I2, whose other lanes call the coordinated
 * phases 2 and 6: a full bay holds floor(60 / 7.5) = 8 vehicles, + 1 at its mouth = 9 x 2 s =
 * 18 s of effective green. Their 14 s splits less the lost time (2 s start-up + 3 s yellow +
 * 2 s red clear - 2 s end gain = 5 s) give 9 s, so they read at least 0.9 x 18 / 9 = 1.8 and
 * ask for 18 s. The side streets' lefts 3 and 7 (35 m bays on N2-I2 and S2-I2, no
 * coordinated phase there) and every other phase are left as they are. */
Test(adaptive, bay_beside_the_coordinated_movement_asks_for_a_full_bay)
{
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc =
        sf_scenario_load(SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json", NULL, 0, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "cannot load");
    int k = sf_scenario_find_intersection(sc, "I2");
    cr_assert_geq(k, 0);
    const sf_intersection_t *ix = &sc->intersections[k];
    const sf_plan_t *p1 = NULL;
    for (uint8_t i = 0; i < ix->n_plans; i++)
        if (ix->plans[i].id == 1)
            p1 = &ix->plans[i];
    cr_assert_not_null(p1);
    cr_assert_eq(p1->split_ds[0], 140, "phase 1's split is the scenario's 14 s");
    cr_assert_eq(p1->coord_phase_mask, 0x22);
    sf_adapt_opts_t o;
    sf_adapt_opts_default(&o);

    double ds[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -1};
    cr_assert_eq(sf_adapt_ds_bay(sc, ix, p1, &o, ds), 2);
    const double want[8] = {1.8, 0.5, 0.5, 0.5, 1.8, 0.5, 0.5, -1};
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(ds[i], want[i], 1e-9, "phase %d: %f", i + 1, ds[i]);
    /* with that DS the step asks exactly a full bay's green for the lefts */
    sf_plan_t next;
    sf_adapt_info_t info;
    cr_assert_eq(sf_adapt_step(ix, p1, ds, &o, 0, &next, &info), 0);
    cr_assert_float_eq(info.want_green_s[0], 18.0, 1e-9);
    cr_assert_float_eq(info.want_green_s[4], 18.0, 1e-9);

    /* a left that already reads more keeps it; so does one without a measurement */
    double hi[8] = {1.9, 0.5, 0.5, 0.5, -1, 0.5, 0.5, 0.5};
    cr_assert_eq(sf_adapt_ds_bay(sc, ix, p1, &o, hi), 0);
    cr_assert_float_eq(hi[0], 1.9, 1e-9);
    cr_assert_float_eq(hi[4], -1, 1e-9);

    /* nothing coordinated (an isolated plan): no bay is beside a coordinated movement */
    sf_plan_t iso = *p1;
    iso.coord_phase_mask = 0;
    double d2[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    cr_assert_eq(sf_adapt_ds_bay(sc, ix, &iso, &o, d2), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(d2[i], 0.5, 1e-9);

    /* bad input: nothing changes */
    double d3[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, NAN, 0.5};
    errno = 0;
    cr_assert_eq(sf_adapt_ds_bay(sc, ix, p1, &o, d3), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_float_eq(d3[0], 0.5, 1e-9);
    cr_assert_eq(sf_adapt_ds_bay(NULL, ix, p1, &o, ds), -1);
    cr_assert_eq(sf_adapt_ds_bay(sc, ix, p1, &o, NULL), -1);
    sf_scenario_destroy(&sc);
}
