/* tests/test_unit_modes.c — the unit's modes: coordinated (offset, cycle, transition),
 * flash / all-red commands, plan change at a safe point, local fallback and return,
 * actuated dual-ring operation. Measured on the lamp outputs. */
#include <criterion/criterion.h>
#include <errno.h>

#include "unit_fixtures.h"

/* N8 signal groups: V1..V8 = 0..7, P2 = 8, P4 = 9, P6 = 10, P8 = 11 */
enum { V1 = 0, V2 = 1, V3 = 2, V4 = 3, V5 = 4, V6 = 5, V7 = 6, V8 = 7 };

/* A coordinated N8 unit with min recall on every phase so every phase is served. */
static sf_unit_t *coord_unit(sf_correction_t corr, uint32_t tod0)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    for (int i = 0; i < 8; i++)
        ix.phases[i].recall = SF_RECALL_MIN;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    c.correction = corr;
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    cr_assert_eq(sf_unit_set_clock(u, tod0), 0);
    return u;
}

/* Tick with the clock running (host-set each tick) until the coordinated phase 2 shows
 * yellow; returns the tick count or -1. */
static int until_yield(sf_unit_t *u, uint32_t *tod, int max)
{
    for (int i = 1; i <= max; i++) {
        uint8_t before = sf_unit_status(u)->sg_lamp[V2];
        *tod = (*tod + 1) % 864000u;
        sf_unit_set_clock(u, *tod);
        sf_unit_tick(u);
        if (before == SF_LAMP_GREEN && sf_unit_status(u)->sg_lamp[V2] == SF_LAMP_YELLOW)
            return i;
    }
    return -1;
}

static void coord_converges(sf_correction_t corr, uint32_t tod0)
{
    sf_unit_t *u = coord_unit(corr, tod0);
    uint32_t tod = tod0;
    /* plan 1: cycle 100 s, offset 0, lead lefts 15 s: coordinated green of 2 starts at
     * cycle time 0 and yields 35 - 4 - 2 = 29 s later. */
    int n = 0, in_sync_at = -1;
    for (int k = 0; k < 40; k++) {
        cr_assert_gt(until_yield(u, &tod, 5000), 0, "no yield in cycle %d", k);
        const sf_unit_status_t *st = sf_unit_status(u);
        if (st->coord_in_sync) {
            if (in_sync_at < 0)
                in_sync_at = k;
            cr_expect_eq(tod % 1000, 290, "yield at tod %u", tod);
            n++;
        }
    }
    cr_expect_geq(in_sync_at, 0, "never in sync");
    cr_expect_leq(in_sync_at, 12, "took %d cycles to reach sync", in_sync_at);
    cr_expect_eq(n, 40 - in_sync_at);
    /* once in sync every cycle is exactly 100 s */
    uint32_t last = tod;
    for (int k = 0; k < 5; k++) {
        int dt = until_yield(u, &tod, 5000);
        cr_expect_eq(dt, 1000, "cycle %d lasted %d", k, dt);
        cr_expect(sf_unit_status(u)->coord_in_sync);
    }
    (void)last;
    sf_unit_destroy(&u);
}

Test(modes, coordinated_shortway_reaches_offset)
{
    coord_converges(SF_CORRECT_SHORTWAY, 123);
}

Test(modes, coordinated_dwell_reaches_offset)
{
    coord_converges(SF_CORRECT_DWELL, 4567);
}

Test(modes, coordinated_offset_change_bounded_steps)
{
    sf_unit_t *u = coord_unit(SF_CORRECT_SHORTWAY, 0);
    uint32_t tod = 0;
    for (int k = 0; k < 20; k++)
        cr_assert_gt(until_yield(u, &tod, 5000), 0);
    cr_assert(sf_unit_status(u)->coord_in_sync);
    sf_coord_t co;
    sf_unit_get_coord(u, &co);
    cr_expect_eq(co.cycle_ds, 1000);
    cr_expect_eq(co.split_ds[1], 350);
    co.offset_ds = 400; /* 40 s later */
    cr_assert_eq(sf_unit_set_coord(u, &co), 0);
    /* each cycle changes by at most 20 % (20 s): two or more cycles to get there, and
     * no cycle shorter than 80 s or longer than 120 s */
    int cycles = 0;
    while (!(sf_unit_status(u)->coord_in_sync && tod % 1000 == 690) && cycles < 20) {
        int dt = until_yield(u, &tod, 5000);
        cr_expect_geq(dt, 800, "cycle of %d", dt);
        cr_expect_leq(dt, 1200, "cycle of %d", dt);
        cycles++;
    }
    cr_expect_geq(cycles, 2);
    cr_expect_lt(cycles, 20, "new offset not reached");
    sf_unit_destroy(&u);
}

Test(modes, coordinated_refusals)
{
    sf_intersection_t ix;
    fx_single(&ix); /* plans without coordinated phases */
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    errno = 0;
    cr_expect_eq(sf_unit_command_mode(u, SF_UMODE_COORDINATED), -1);
    cr_expect_eq(errno, SF_EMODE);
    cr_expect_eq(sf_unit_status(u)->mode_command, SF_UMODE_FIXED);
    cr_expect_eq(sf_unit_command_mode(u, (sf_unit_mode_t)9), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(sf_unit_set_clock(u, 864000), -1);
    cr_expect_eq(sf_unit_set_sync(u, 900000), -1);
    sf_unit_destroy(&u);
}

Test(modes, flash_and_all_red_at_safe_points)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, 0, SF_LAMP_GREEN, 2000), 0);
    for (int i = 0; i < 10; i++)
        sf_unit_tick(u);
    cr_assert_eq(sf_unit_command_mode(u, SF_UMODE_FLASH), 0);
    /* the green ends only after min green and the walk + ped clear (22 s), then full
     * yellow and red clear, then flash */
    int g = 10 + fx_while(u, 0, SF_LAMP_GREEN, 1000);
    cr_expect_eq(g, 220);
    cr_expect_eq(fx_while(u, 0, SF_LAMP_YELLOW, 100), 30);
    cr_expect_eq(fx_while(u, 0, SF_LAMP_RED, 100), 20);
    cr_expect_eq(st->sg_lamp[0], SF_LAMP_YELLOW_FLASH);
    cr_expect_eq(st->sg_lamp[2], SF_LAMP_OFF);
    cr_expect_eq(st->control_mode, SF_CM_FLASH);
    for (int i = 0; i < 100; i++)
        sf_unit_tick(u);
    cr_assert_eq(sf_unit_command_mode(u, SF_UMODE_ALL_RED), 0);
    sf_unit_tick(u);
    cr_expect_eq(st->sg_lamp[0], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[1], SF_LAMP_RED);
    cr_expect_eq(st->control_mode, SF_CM_ALL_RED);
    for (int i = 0; i < 200; i++)
        sf_unit_tick(u);
    cr_expect_eq(st->sg_lamp[0], SF_LAMP_RED);
    cr_assert_eq(sf_unit_command_mode(u, SF_UMODE_FIXED), 0);
    cr_expect_gt(fx_until(u, 0, SF_LAMP_GREEN, 100), 0);
    cr_expect_eq(st->control_mode, SF_CM_CENTRE_FIXED);
    sf_unit_destroy(&u);
}

Test(modes, plan_change_waits_for_safe_point)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, 0, SF_LAMP_GREEN, 2000), 0);
    for (int i = 0; i < 50; i++)
        sf_unit_tick(u);
    cr_assert_eq(sf_unit_select_plan(u, 2), 0);
    cr_expect_eq(st->active_plan, 1);
    cr_expect_eq(st->pending_plan, 2);
    /* the running green keeps plan 1's 25 s */
    int g = 50 + fx_while(u, 0, SF_LAMP_GREEN, 1000);
    cr_expect_eq(g, 250);
    /* through the clearance the plan has not changed */
    while (st->sg_lamp[0] != SF_LAMP_RED)
        sf_unit_tick(u);
    cr_expect_eq(st->active_plan, 1);
    /* it changes at the barrier: phase 4 then runs plan 2's split 30 - 5 = 25 s,
     * and phase 2 plan 2's 50 - 5 = 45 s */
    cr_assert_gt(fx_until(u, 1, SF_LAMP_GREEN, 100), 0);
    cr_expect_eq(st->active_plan, 2);
    cr_expect_eq(st->pending_plan, 0);
    cr_expect_eq(fx_while(u, 1, SF_LAMP_GREEN, 1000), 250);
    cr_assert_gt(fx_until(u, 0, SF_LAMP_GREEN, 100), 0);
    cr_expect_eq(fx_while(u, 0, SF_LAMP_GREEN, 1000), 450);
    sf_unit_destroy(&u);
}

Test(modes, fallback_after_heartbeat_loss_and_return)
{
    sf_intersection_t ix;
    fx_single(&ix);
    ix.local_plan_idx = 1; /* plan 2 */
    ix.n_schedule = 0;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    c.heartbeat_timeout_ds = 300;
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* the centre sends a heartbeat every second for 60 s */
    for (int i = 0; i < 600; i++) {
        if (i % 10 == 0)
            cr_assert_eq(sf_unit_heartbeat(u, (uint16_t)i), 0);
        sf_unit_tick(u);
    }
    cr_expect_eq(st->heartbeat_echo, 590);
    cr_expect(!st->fallback);
    cr_expect_eq(st->control_mode, SF_CM_CENTRE_FIXED);
    cr_expect_eq(st->active_plan, 1);
    /* then silence: fallback exactly 30 s after the last heartbeat */
    int n = 0;
    while (!st->fallback && n < 1000) {
        sf_unit_tick(u);
        n++;
    }
    cr_expect_eq(10 + n, 300, "fallback after %d ticks", 10 + n);
    cr_expect_eq(st->fault_code, SF_FAULT_COMMS);
    /* local control (plan 2) from the next safe point, within one cycle */
    for (int i = 0; i < 800 && st->control_mode != SF_CM_LOCAL_FIXED; i++)
        sf_unit_tick(u);
    cr_expect_eq(st->control_mode, SF_CM_LOCAL_FIXED);
    cr_expect_eq(st->active_plan, 2);
    /* the centre is back */
    cr_assert_eq(sf_unit_heartbeat(u, 1), 0);
    cr_expect(!st->fallback);
    cr_expect_eq(st->fault_code, SF_FAULT_NONE);
    for (int i = 0; i < 900 && st->control_mode != SF_CM_CENTRE_FIXED; i++) {
        if (i % 10 == 0)
            sf_unit_heartbeat(u, 2);
        sf_unit_tick(u);
    }
    cr_expect_eq(st->control_mode, SF_CM_CENTRE_FIXED);
    cr_expect_eq(st->active_plan, 1);
    sf_unit_destroy(&u);
}

/* The single intersection with a day of two plans: plan 1 from midnight, plan 2 from 07:00. */
static void fx_two_plan_day(sf_intersection_t *ix)
{
    fx_single(ix);
    ix->n_schedule = 2;
    ix->schedule[0].at_s = 0;
    ix->schedule[0].plan_idx = 0;
    ix->schedule[1].at_s = 7 * 3600;
    ix->schedule[1].plan_idx = 1;
}

Test(modes, local_command_uses_schedule)
{
    sf_intersection_t ix;
    fx_two_plan_day(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_eq(sf_unit_set_clock(u, 8u * 36000u), 0);
    cr_assert_eq(sf_unit_command_mode(u, SF_UMODE_LOCAL), 0);
    for (int i = 0; i < 400; i++)
        sf_unit_tick(u);
    cr_expect_eq(st->control_mode, SF_CM_LOCAL_FIXED);
    cr_expect_eq(st->active_plan, 2); /* 07:00 entry */
    sf_unit_destroy(&u);
}

Test(modes, actuated_dual_ring_concurrency_and_dual_entry)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_ACTUATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* only phase 2 and phase 4 are called: dual entry brings 6 with 2 and 8 with 4 */
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, (1u << 1) | (1u << 3)), 0);
    cr_assert_gt(fx_until(u, V2, SF_LAMP_GREEN, 2000), 0);
    cr_expect_eq(st->sg_lamp[V6], SF_LAMP_GREEN);
    cr_expect_eq(st->sg_lamp[V1], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[V5], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[V4], SF_LAMP_RED);
    /* gap-out of both at min green (no detectors), then 4 and 8 together */
    cr_expect_eq(fx_while(u, V2, SF_LAMP_GREEN, 1000), 100);
    cr_assert_gt(fx_until(u, V4, SF_LAMP_GREEN, 200), 0);
    cr_expect_eq(st->sg_lamp[V8], SF_LAMP_GREEN);
    cr_expect_eq(st->sg_lamp[V2], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[V3], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[V7], SF_LAMP_RED);
    /* left 5 and through 6 called: 4 and 8 end, then 5 runs with dual entry 2 in
     * ring 1, gaps out at its 5 s min, and 6 follows while 2 stays green */
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, (1u << 4) | (1u << 5)), 0);
    cr_assert_gt(fx_until(u, V5, SF_LAMP_GREEN, 600), 0);
    cr_expect_eq(st->sg_lamp[V2], SF_LAMP_GREEN);
    cr_expect_eq(st->sg_lamp[V6], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[V1], SF_LAMP_RED);
    cr_expect_eq(fx_while(u, V5, SF_LAMP_GREEN, 1000), 50);
    cr_expect_eq(fx_while(u, V5, SF_LAMP_YELLOW, 1000), 40);
    cr_expect_eq(fx_while(u, V6, SF_LAMP_RED, 1000), 10);
    cr_expect_eq(st->sg_lamp[V6], SF_LAMP_GREEN);
    cr_expect_eq(st->sg_lamp[V2], SF_LAMP_GREEN);
    sf_unit_destroy(&u);
}

/* Fixed force-offs give a phase that starts early (its predecessor skipped) the time up
 * to its fixed force-off point; floating ones never more than its split. */
static int side_green(sf_force_mode_t fm)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    ix.plans[0].force_mode = fm;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    cr_assert_eq(sf_unit_set_clock(u, 0), 0);
    uint32_t tod = 0;
    int g = -1;
    for (int cyc = 0; cyc < 12; cyc++) {
        /* cars always waiting on 4 and 8 (detectors 3 and 7), nothing on 1, 3, 5, 7 */
        sf_unit_set_detectors(u, (1u << 3) | (1u << 7));
        int n = 0;
        while (sf_unit_status(u)->sg_lamp[V4] != SF_LAMP_GREEN && n++ < 3000) {
            fx_ctick(u, &tod);
        }
        cr_expect_eq(sf_unit_status(u)->sg_lamp[V3], SF_LAMP_RED);
        g = 0;
        while (sf_unit_status(u)->sg_lamp[V4] == SF_LAMP_GREEN && g < 3000) {
            fx_ctick(u, &tod);
            g++;
        }
    }
    sf_unit_destroy(&u);
    return g;
}

Test(modes, fixed_and_floating_force_offs)
{
    /* group 2 starts at 50 s of the 100 s lap; 4's force-off is at 50 + 15 + 35 - 6 =
     * 94 s; skipping 3 it starts right at the barrier: fixed -> 44 s, floating -> its
     * own split less clearance, 29 s */
    cr_expect_eq(side_green(SF_FORCE_FIXED), 440);
    cr_expect_eq(side_green(SF_FORCE_FLOATING), 290);
}

/* Under the centre, initial_plan 0 starts a unit on the schedule's plan at the first time of
 * day it is given (not midnight's, which is all it knows when made), unless a plan was
 * chosen before: by the centre or by initial_plan. */
Test(modes, centre_start_plan_follows_the_schedule_at_the_first_clock)
{
    sf_intersection_t ix;
    fx_two_plan_day(&ix);
    for (int how = 0; how < 3; how++) {
        sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
        if (how == 2)
            c.initial_plan = 1;
        sf_unit_t *u = sf_unit_new(&ix, &c);
        cr_assert_not_null(u);
        if (how == 1)
            cr_assert_eq(sf_unit_select_plan(u, 1), 0);
        const sf_unit_status_t *st = sf_unit_status(u);
        for (uint32_t i = 0; i < 400; i++) {
            cr_assert_eq(sf_unit_set_clock(u, 8u * 36000u + i), 0);
            sf_unit_heartbeat(u, (uint16_t)i);
            sf_unit_tick(u);
        }
        cr_expect_eq(st->control_mode, SF_CM_CENTRE_FIXED, "case %d", how);
        cr_expect_eq(st->active_plan, how == 0 ? 2 : 1, "case %d: plan %u", how, st->active_plan);
        sf_unit_destroy(&u);
    }
}

Test(modes, corridor_asset_coordinates)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc =
        sf_scenario_load(SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json", NULL, 0, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "?");
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        sf_unit_config_t c = fx_cfg(ix, SF_UMODE_COORDINATED);
        sf_unit_t *u = sf_unit_new(ix, &c);
        cr_assert_not_null(u, "%s", ix->id);
        const sf_unit_status_t *st = sf_unit_status(u);
        for (int t = 0; t < 12000; t++) {
            sf_unit_set_clock(u, 252000u + (uint32_t)t);
            sf_unit_tick(u);
        }
        cr_expect_eq(st->control_mode, SF_CM_CENTRE_COORDINATED, "%s", ix->id);
        cr_expect(st->coord_in_sync, "%s not in sync after 20 min", ix->id);
        cr_expect(!st->fault_latched);
        /* cycle timer = time of day - offset (sync at midnight) */
        uint32_t want = (252000u + 11999u + st->cycle_ds * 100u - st->offset_ds) % st->cycle_ds;
        cr_expect_eq(st->cycle_timer_ds, want, "%s cycle timer %u, want %u", ix->id,
                     st->cycle_timer_ds, want);
        sf_unit_destroy(&u);
    }
    sf_scenario_destroy(&sc);
}

/* A coordinated unit with no call anywhere rests in its coordinated phases and never crosses
 * a barrier; a new plan (same coordinated phases) still takes effect, at a lap restart,
 * with the coordinated phases kept green throughout. */
Test(modes, resting_coordinated_unit_takes_a_new_plan)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    uint32_t tod = 270000;
    cr_assert_eq(sf_unit_set_clock(u, tod), 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* up and resting in 2 + 6 */
    int i = 0;
    for (; i < 3000 && !(st->sg_lamp[V2] == SF_LAMP_GREEN && st->sg_lamp[V6] == SF_LAMP_GREEN);
         i++) {
        fx_ctick(u, &tod);
    }
    cr_assert_lt(i, 3000);
    cr_assert_eq(st->active_plan, 1);
    cr_assert_eq(sf_unit_select_plan(u, 2), 0);
    cr_expect_eq(st->pending_plan, 2);
    bool switched = false;
    for (i = 0; i < 1200 && !switched; i++) { /* within a lap of plan 1 (100 s) + slack */
        fx_ctick(u, &tod);
        cr_assert_eq(st->sg_lamp[V2], SF_LAMP_GREEN, "tick %d", i);
        cr_assert_eq(st->sg_lamp[V6], SF_LAMP_GREEN, "tick %d", i);
        switched = st->active_plan == 2;
    }
    cr_assert(switched, "plan 2 never took effect while resting");
    cr_expect_eq(st->pending_plan, 0);
    cr_expect_eq(st->cycle_ds, 1200);
    /* and it stays coordinated, resting, with no fault */
    for (i = 0; i < 3000; i++) {
        fx_ctick(u, &tod);
        cr_assert_eq(st->sg_lamp[V2], SF_LAMP_GREEN);
    }
    cr_expect_eq(st->fault_code, 0);
    cr_expect_eq(st->control_mode, SF_CM_CENTRE_COORDINATED);
    sf_unit_destroy(&u);
}

/* Actuated-coordinated operation (what SCATS's local tactical control does under the
 * strategic plan): a non-coordinated phase whose stop-bar detector shows no more queue gaps
 * out at its min green instead of running to its force-off, a phase without a call is
 * skipped, and the time goes back to the coordinated phases, whose yield point (and so
 * the cycle length and the offset) does not move. One car a cycle on 4 only, placed 10 s
 * into the coordinated green. */
Test(modes, coordinated_side_phase_gaps_out_and_skips_keeping_the_yield)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    uint32_t tod = 1234;
    cr_assert_eq(sf_unit_set_clock(u, tod), 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    int g4 = 0, red2 = 0, cycles = 0, yields_in_sync = 0;
    uint16_t ever_green = 0;
    uint8_t prev2 = st->sg_lamp[V2];
    for (int i = 0; i < 60000; i++) { /* 100 min of 100 s cycles */
        tod++;
        sf_unit_set_clock(u, tod);
        /* a car on 4's detector for 1 s, 10 s after the coordinated green's start */
        sf_unit_set_detectors(u, (tod % 1000) >= 100 && (tod % 1000) < 110 ? 1u << 3 : 0);
        sf_unit_tick(u);
        for (int p = 0; p < 8; p++)
            if (st->sg_lamp[p] == SF_LAMP_GREEN)
                ever_green |= (uint16_t)(1u << p);
        if (i < 30000)
            continue; /* the first 50 min: reaching the offset */
        if (st->sg_lamp[V4] == SF_LAMP_GREEN)
            g4++;
        if (st->sg_lamp[V2] != SF_LAMP_GREEN)
            red2++;
        if (prev2 == SF_LAMP_GREEN && st->sg_lamp[V2] == SF_LAMP_YELLOW) {
            cycles++;
            /* the yield stays where the plan puts it: 15 + 35 - 6 s after the lap start,
             * 29 s after the coordinated green's scheduled start at offset 0 */
            cr_expect_eq(tod % 1000, 290, "yield at tod %u", tod);
            yields_in_sync += st->coord_in_sync;
        }
        prev2 = st->sg_lamp[V2];
    }
    cr_expect_eq(cycles, 30);
    cr_expect_eq(yields_in_sync, cycles);
    /* 4 gapped out at its 10 s min green each cycle (its split would give it 29 s) */
    cr_expect_eq(g4, 30 * 100, "4 was green %d ticks in 30 cycles", g4);
    /* 2 was red only for 2's clearance, 4's green and 4's clearance: 6 + 10 + 6 s */
    cr_expect_eq(red2, 30 * 220, "2 was not green %d ticks in 30 cycles", red2);
    /* no call, no service: the lefts and 3, 7, 8 were skipped */
    cr_expect_eq(ever_green & ~((1u << V2) | (1u << V4) | (1u << V6)), 0, "greens 0x%x",
                 (unsigned)ever_green);
    cr_expect_eq(st->fault_code, 0);
    sf_unit_destroy(&u);
}
