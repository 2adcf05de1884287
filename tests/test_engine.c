/* tests/test_engine.c — the phase engine: intervals, fixed / actuated / coordinated,
 * priority, commands and their refusals. Every duration is measured on the lamp
 * outputs (ticks of 0.1 s), never read back from the engine's own timers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "unit_fixtures.h"

enum { A2 = 0, A4 = 1, P2 = 2, P4 = 3 };

static sf_unit_t *single_unit(sf_unit_mode_t mode)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, mode);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    return u;
}

Test(engine, new_refuses_bad_intersections)
{
    errno = 0;
    cr_expect_null(sf_unit_new(NULL, NULL));
    cr_expect_eq(errno, EINVAL);
    sf_intersection_t ix;
    fx_single(&ix);
    ix.phases[0].min_green_ds = 20; /* below 5 s */
    errno = 0;
    cr_expect_null(sf_unit_new(&ix, NULL));
    cr_expect_eq(errno, EINVAL);
    fx_single(&ix);
    ix.ring_seq[0][1] = 7; /* unknown phase in the ring */
    cr_expect_null(sf_unit_new(&ix, NULL));
    fx_single(&ix);
    ix.plans[0].split_ds[0] = 150; /* ring sum no longer the cycle, split below ped timing */
    cr_expect_null(sf_unit_new(&ix, NULL));
    fx_single(&ix);
    ix.sg_conflict[0][1] = ix.sg_conflict[1][0] = false; /* matrix says A2/A4 may run together */
    cr_expect_null(sf_unit_new(&ix, NULL));
    fx_nema(&ix);
    sf_unit_t *u = sf_unit_new(&ix, NULL);
    cr_expect_not_null(u);
    sf_unit_destroy(&u);
    cr_expect_null(u);
    sf_unit_destroy(&u); /* safe twice */
    sf_unit_destroy(NULL);
}

Test(engine, startup_sequence_timings)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_expect(st->startup);
    sf_unit_tick(u);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_YELLOW_FLASH);
    cr_expect_eq(st->sg_lamp[P2], SF_LAMP_OFF);
    cr_expect_eq(st->control_mode, SF_CM_FLASH);
    int flash = fx_while(u, A2, SF_LAMP_YELLOW_FLASH, 1000);
    cr_expect_eq(flash, 100, "start-up flash lasted %d ticks", flash);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[A4], SF_LAMP_RED);
    cr_expect_eq(st->control_mode, SF_CM_ALL_RED);
    int red = fx_while(u, A2, SF_LAMP_RED, 1000);
    cr_expect_eq(red, 50, "start-up all-red lasted %d ticks", red);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_GREEN);
    cr_expect_eq(st->control_mode, SF_CM_CENTRE_FIXED);
    cr_expect(!st->startup);
    sf_unit_destroy(&u);
}

Test(engine, fixed_time_intervals_and_cycle_exact)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    for (int cycle = 0; cycle < 3; cycle++) {
        int g2 = fx_while(u, A2, SF_LAMP_GREEN, 2000);
        int y2 = fx_while(u, A2, SF_LAMP_YELLOW, 2000);
        cr_expect_eq(st->sg_lamp[A4], SF_LAMP_RED);
        int rc2 = fx_while(u, A4, SF_LAMP_RED, 2000); /* A4 red from A2's end to its green */
        cr_expect_eq(g2, 250, "green 2 = %d", g2);    /* split 30 - 3 - 2 */
        cr_expect_eq(y2, 30, "yellow 2 = %d", y2);
        cr_expect_eq(rc2, 20, "red clear 2 = %d", rc2);
        int g4 = fx_while(u, A4, SF_LAMP_GREEN, 2000);
        int y4 = fx_while(u, A4, SF_LAMP_YELLOW, 2000);
        int rc4 = fx_while(u, A2, SF_LAMP_RED, 2000);
        cr_expect_eq(g2 + y2 + rc2 + g4 + y4 + rc4, 600, "cycle %d", g2 + y2 + rc2 + g4 + y4 + rc4);
    }
    sf_unit_destroy(&u);
}

Test(engine, pedestrian_walk_clear_dont_walk)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, P2, SF_LAMP_GREEN, 2000), 0);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_GREEN);
    cr_expect(st->walks & (1u << 1)); /* phase 2 */
    int walk = fx_while(u, P2, SF_LAMP_GREEN, 1000);
    cr_expect_eq(walk, 70);
    cr_expect(st->ped_clears & (1u << 1));
    int clear = fx_while(u, P2, SF_LAMP_RED_FLASH, 1000);
    cr_expect_eq(clear, 150);
    cr_expect_eq(st->sg_lamp[P2], SF_LAMP_RED);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_GREEN); /* vehicle green continues */
    sf_unit_destroy(&u);
}

/* Actuated: put the unit at phase 2's green with a waiting call on 4. */
static sf_unit_t *actuated_at_green2(void)
{
    sf_intersection_t ix;
    fx_single(&ix);
    ix.phases[0].walk_ds = 0;
    ix.phases[0].ped_clear_ds = 0;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_ACTUATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 1), 0); /* phase 2 */
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    return u;
}

Test(engine, actuated_gap_out_exact)
{
    sf_unit_t *u = actuated_at_green2();
    /* a car on detector 0 for the first 12 s of green, and a call waiting on 4 */
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 3), 0);
    int g = 1;
    sf_unit_set_detectors(u, 1u);
    while (sf_unit_status(u)->sg_lamp[A2] == SF_LAMP_GREEN && g < 1000) {
        if (g == 120)
            sf_unit_set_detectors(u, 0);
        sf_unit_tick(u);
        g++;
    }
    g--;
    /* presence seen on green ticks 1..119: the passage timer of 3 s runs out 30 ticks
     * after the last actuation, so yellow shows on green tick 149 */
    cr_expect_eq(g, 119 + 30, "gap-out green lasted %d ticks", g);
    cr_expect_eq(sf_unit_status(u)->sg_lamp[A2], SF_LAMP_YELLOW);
    sf_unit_destroy(&u);
}

Test(engine, actuated_max_out_and_rest_in_green)
{
    sf_unit_t *u = actuated_at_green2();
    sf_unit_set_detectors(u, 1u); /* continuous presence */
    /* no conflicting call: rests in green far beyond max */
    int g = fx_while(u, A2, SF_LAMP_GREEN, 800);
    cr_expect_eq(g, 800);
    /* a call on 4: the max timer starts now and ends the green after max1 = 35 s */
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 3), 0);
    g = fx_while(u, A2, SF_LAMP_GREEN, 2000);
    cr_expect_eq(g, 350, "max-out after %d ticks", g);
    cr_expect_eq(sf_unit_status(u)->sg_lamp[A4], SF_LAMP_RED);
    int y = fx_while(u, A2, SF_LAMP_YELLOW, 100);
    cr_expect_eq(y, 30);
    int rc = fx_while(u, A4, SF_LAMP_RED, 100);
    cr_expect_eq(rc, 20);
    cr_expect_eq(sf_unit_status(u)->sg_lamp[A4], SF_LAMP_GREEN);
    sf_unit_destroy(&u);
}

Test(engine, force_off_never_cuts_min_green)
{
    sf_unit_t *u = actuated_at_green2();
    sf_unit_set_detectors(u, 1u);
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 3), 0);
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_FORCE_OFF, 1u << 1), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 2000);
    cr_expect_eq(g, 100, "forced off after %d ticks", g);
    sf_unit_destroy(&u);
}

Test(engine, hold_keeps_green_and_skip_without_call)
{
    sf_unit_t *u = actuated_at_green2();
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 3), 0);
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_HOLD, 1u << 1), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 1000);
    cr_expect_eq(g, 1000);
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_HOLD, 0), 0);
    cr_assert_gt(fx_until(u, A4, SF_LAMP_GREEN, 1000), 0);
    /* phase 4 had a single call; with no call on 2 it rests in 4 */
    int g4 = fx_while(u, A4, SF_LAMP_GREEN, 1500);
    cr_expect_eq(g4, 1500);
    sf_unit_destroy(&u);
}

Test(engine, min_green_never_shortened_by_early_green)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    /* bus for phase 4 checks in at the start of 2's green */
    sf_prio_request_t rq = {
        .id = 7, .level = 1, .phase_no = 4, .eta_ds = 200, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 2000);
    /* normal green 250; early green may take 150 but walk + ped clear (7 + 15 s) and
     * min green (10 s) must finish: it ends at 220 */
    cr_expect_eq(g, 220, "green 2 lasted %d", g);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].strategy, 2);
    cr_expect_eq(fx_while(u, A2, SF_LAMP_YELLOW, 100), 30);
    cr_expect_eq(fx_while(u, A4, SF_LAMP_RED, 100), 20);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

Test(engine, green_extension_lockout_and_expiry)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    sf_prio_request_t rq = {
        .id = 9, .level = 2, .phase_no = 2, .eta_ds = 300, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 2000);
    /* never checked out: held for the full max extension (15 s) beyond 25 s */
    cr_expect_eq(g, 250 + 150, "extended green lasted %d", g);
    cr_expect_eq(st->prio[0].strategy, 1);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_EXPIRED);
    /* within the lockout a new request is refused */
    sf_prio_request_t r2 = {
        .id = 10, .level = 1, .phase_no = 4, .eta_ds = 100, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &r2), 0);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[1].id, 10);
    cr_expect_eq(st->prio[1].state, SF_PRIO_ST_REFUSED);
    cr_expect_eq(st->prio[1].reason, SF_PRIO_R_LOCKOUT);
    /* bad requests */
    sf_prio_request_t bad = r2;
    bad.phase_no = 3;
    errno = 0;
    cr_expect_eq(sf_unit_priority(u, &bad), -1);
    cr_expect_eq(errno, EINVAL);
    bad = r2;
    bad.id = 0;
    cr_expect_eq(sf_unit_priority(u, &bad), -1);
    bad = r2;
    bad.id = 99;
    bad.action = SF_PRIO_CHECK_OUT;
    cr_expect_eq(sf_unit_priority(u, &bad), -1);
    sf_unit_destroy(&u);
}

Test(engine, extension_ends_at_check_out)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    sf_prio_request_t rq = {
        .id = 3, .level = 2, .phase_no = 2, .eta_ds = 50, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g = 1;
    while (st->sg_lamp[A2] == SF_LAMP_GREEN && g < 2000) {
        if (g == 300) { /* 5 s into the extension the bus passes the stop line */
            rq.action = SF_PRIO_CHECK_OUT;
            cr_assert_eq(sf_unit_priority(u, &rq), 0);
        }
        sf_unit_tick(u);
        g++;
    }
    cr_expect_eq(g - 1, 300, "green lasted %d", g - 1);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

Test(engine, timing_writes_checked)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    errno = 0;
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_MIN_GREEN, 40), -1);
    cr_expect_eq(errno, SF_EUNSAFE);
    cr_expect_eq(sf_unit_get_timing(u, 2, SF_T_MIN_GREEN), 100);
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_YELLOW, 25), -1);
    cr_expect_eq(errno, SF_EUNSAFE);
    cr_expect_eq(sf_unit_get_timing(u, 2, SF_T_YELLOW), 30);
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_YELLOW, 61), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(sf_unit_set_timing(u, 3, SF_T_YELLOW, 40), -1);
    cr_expect_eq(errno, EINVAL);
    /* min green 26 s no longer fits the 30 s split with 3 + 2 s clearance */
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_MIN_GREEN, 260), -1);
    cr_expect_eq(errno, SF_ESPLIT);
    cr_expect_eq(sf_unit_get_timing(u, 2, SF_T_MIN_GREEN), 100);
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_MAX1, 90), -1); /* below min green */
    cr_expect_eq(errno, SF_EUNSAFE);
    cr_expect_eq(sf_unit_set_timing(u, 2, SF_T_YELLOW, 40), 0);
    cr_expect_eq(sf_unit_get_timing(u, 2, SF_T_YELLOW), 40);
    cr_expect_eq(sf_unit_intersection(u)->phases[0].yellow_ds, 40);
    sf_unit_destroy(&u);
}

Test(engine, plan_writes_checked)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_t *u = sf_unit_new(&ix, NULL);
    cr_assert_not_null(u);
    sf_plan_t p;
    cr_assert_eq(sf_unit_get_plan(u, 1, &p), 0);
    sf_plan_t bad = p;
    bad.coord_phase_mask = (1u << 1) | (1u << 3); /* 2 and 4: not concurrent */
    errno = 0;
    cr_expect_eq(sf_unit_write_plan(u, &bad), -1);
    cr_expect_eq(errno, SF_ECONFLICT);
    bad = p;
    bad.split_ds[0] = 90; /* left: 5 + 4 + 1 s = 10 s needed */
    bad.split_ds[1] = 410;
    cr_expect_eq(sf_unit_write_plan(u, &bad), -1);
    cr_expect_eq(errno, SF_ESPLIT);
    bad = p;
    bad.split_ds[1] = 400; /* ring 1 no longer lines up with ring 2 */
    bad.split_ds[3] = 300;
    cr_expect_eq(sf_unit_write_plan(u, &bad), -1);
    cr_expect_eq(errno, SF_ECYCLE);
    bad = p;
    bad.cycle_ds = 1100;
    cr_expect_eq(sf_unit_write_plan(u, &bad), -1);
    cr_expect_eq(errno, SF_ECYCLE);
    bad = p;
    bad.id = 17;
    cr_expect_eq(sf_unit_write_plan(u, &bad), -1);
    cr_expect_eq(errno, EINVAL);
    sf_plan_t got;
    cr_assert_eq(sf_unit_get_plan(u, 1, &got), 0);
    cr_expect_eq(memcmp(&got, &p, sizeof p), 0, "refused writes changed plan 1");
    cr_expect_eq(sf_unit_get_plan(u, 5, &got), -1);
    cr_expect_eq(errno, SF_ENOPLAN);
    sf_plan_t ok = p;
    ok.id = 5;
    ok.offset_ds = 250;
    cr_expect_eq(sf_unit_write_plan(u, &ok), 0);
    cr_assert_eq(sf_unit_get_plan(u, 5, &got), 0);
    cr_expect_eq(got.offset_ds, 250);
    cr_expect_eq(sf_unit_select_plan(u, 5), 0);
    cr_expect_eq(sf_unit_select_plan(u, 9), -1);
    cr_expect_eq(errno, SF_ENOPLAN);
    sf_unit_destroy(&u);
}

Test(engine, phase_control_checked)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    errno = 0;
    cr_expect_eq(sf_unit_phase_control(u, SF_CTL_VEH_CALL, 1u << 0), -1); /* phase 1 absent */
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(sf_unit_phase_control(u, SF_CTL_N, 0), -1);
    cr_expect_eq(sf_unit_phase_control(u, SF_CTL_OMIT, 1u << 3), 0);
    cr_expect_eq(sf_unit_status(u)->omit, 1u << 3);
    sf_unit_destroy(&u);

    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    cr_expect_eq(sf_unit_phase_control(u, SF_CTL_HOLD, 1u << 1), -1);
    cr_expect_eq(errno, SF_EMODE);
    cr_expect_eq(sf_unit_status(u)->hold, 0);
    sf_unit_destroy(&u);
}

Test(engine, detector_counts_volume_and_occupancy)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    c.det_interval_ds = 100;
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* detector 0: 4 vehicles of 5 ticks each in 100 ticks; detector 1 always on */
    for (int t = 0; t < 100; t++) {
        uint64_t d = 2u | ((t % 25) < 5 ? 1u : 0u);
        sf_unit_set_detectors(u, d);
        sf_unit_tick(u);
    }
    cr_expect_eq(st->det_seq, 1);
    cr_expect_eq(st->det_volume[0], 4);
    cr_expect_eq(st->det_occupancy[0], 200);
    cr_expect_eq(st->det_volume[1], 1);
    cr_expect_eq(st->det_occupancy[1], 1000);
    sf_unit_destroy(&u);
}

Test(engine, status_groups_and_remaining_time)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    /* bit i = phase number i + 1: phase 2 = 0x2, phase 4 = 0x8 */
    cr_expect_eq(st->greens, 0x2);
    cr_expect_eq(st->reds, 0x8);
    cr_expect_eq(st->yellows, 0);
    cr_expect_eq(st->phase_on, 0x2);
    cr_expect_eq(st->phase_next, 0x8);
    cr_expect_eq(st->walks, 0x2);
    cr_expect_eq(st->dont_walks, 0x8);
    cr_expect_eq(st->active_plan, 1);
    cr_expect_eq(st->cycle_ds, 600);
    /* countdowns: green 25 s, walk 7 s, then each tick one less */
    cr_expect_eq(st->sg_remaining_ds[A2], 250);
    cr_expect_eq(st->sg_remaining_ds[P2], 70);
    for (int i = 0; i < 100; i++)
        sf_unit_tick(u);
    cr_expect_eq(st->sg_remaining_ds[A2], 150);
    cr_expect_eq(st->sg_lamp[P2], SF_LAMP_RED_FLASH);
    cr_expect_eq(st->sg_remaining_ds[P2], 150 - 30);
    cr_expect_eq(st->ped_clears, 0x2);
    while (st->sg_lamp[A2] == SF_LAMP_GREEN)
        sf_unit_tick(u);
    cr_expect_eq(st->yellows, 0x2);
    cr_expect_eq(st->sg_remaining_ds[A2], 30);
    /* a detector on phase 4 while it is red places a locked vehicle call */
    sf_unit_set_detectors(u, 2u);
    sf_unit_tick(u);
    sf_unit_set_detectors(u, 0);
    sf_unit_tick(u);
    cr_expect_eq(st->veh_calls & 0x8, 0x8);
    cr_expect_eq(st->det_presence, 0);
    sf_unit_destroy(&u);
}

Test(engine, check_out_before_service_cancels)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    sf_prio_request_t rq = {
        .id = 11, .level = 3, .phase_no = 4, .eta_ds = 400, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_QUEUED);
    for (int i = 0; i < 50; i++)
        sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].eta_ds, 350);
    /* the bus turns away: the early green is cancelled and 2 keeps its full split */
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_CANCELLED);
    cr_expect_eq(50 + fx_while(u, A2, SF_LAMP_GREEN, 1000), 250);
    /* a second check-out of the same id is an error */
    errno = 0;
    cr_expect_eq(sf_unit_priority(u, &rq), -1);
    cr_expect_eq(errno, EINVAL);
    sf_unit_destroy(&u);
}

Test(engine, timing_write_applies_from_next_interval)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_YELLOW, 3000), 0);
    for (int i = 0; i < 10; i++)
        sf_unit_tick(u);
    /* mid-yellow: longer yellow and red clearance for phase 2 */
    cr_assert_eq(sf_unit_set_timing(u, 2, SF_T_YELLOW, 40), 0);
    cr_assert_eq(sf_unit_set_timing(u, 2, SF_T_RED_CLEAR, 40), 0);
    /* the yellow under way keeps 3 s; the red clearance that starts after the write
     * is the new 4 s */
    cr_expect_eq(10 + fx_while(u, A2, SF_LAMP_YELLOW, 100), 30);
    cr_expect_eq(fx_while(u, A4, SF_LAMP_RED, 100), 40);
    cr_expect(!st->fault_latched, "a timing write tripped the monitor (0x%02x)", st->fault_code);
    /* next time phase 2 ends, the new values */
    cr_assert_gt(fx_until(u, A2, SF_LAMP_YELLOW, 3000), 0);
    cr_expect_eq(fx_while(u, A2, SF_LAMP_YELLOW, 100), 40);
    cr_expect_eq(fx_while(u, A4, SF_LAMP_RED, 100), 40);
    /* and shorter again, written while phase 4 is green: no effect on the monitor */
    cr_assert_eq(sf_unit_set_timing(u, 2, SF_T_RED_CLEAR, 0), 0);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_YELLOW, 3000), 0);
    cr_expect_eq(fx_while(u, A2, SF_LAMP_YELLOW, 100), 40);
    cr_expect_eq(st->sg_lamp[A4], SF_LAMP_GREEN); /* no red clearance any more */
    cr_expect(!st->fault_latched);
    sf_unit_destroy(&u);
}

Test(engine, red_revert_before_serving_a_phase_again)
{
    sf_unit_t *u = single_unit(SF_UMODE_FIXED);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* only phase 2 in service, no red clearance: it must still show red 2 s between its
     * yellow and its next green (never yellow straight to green) */
    cr_assert_eq(sf_unit_phase_control(u, SF_CTL_OMIT, 1u << 3), 0);
    cr_assert_eq(sf_unit_set_timing(u, 2, SF_T_RED_CLEAR, 0), 0);
    for (int k = 0; k < 3; k++) {
        cr_assert_gt(fx_until(u, A2, SF_LAMP_YELLOW, 3000), 0);
        cr_expect_eq(fx_while(u, A2, SF_LAMP_YELLOW, 100), 30);
        cr_expect_eq(fx_while(u, A2, SF_LAMP_RED, 100), 20);
        cr_expect_eq(st->sg_lamp[A2], SF_LAMP_GREEN);
        cr_expect_eq(st->sg_lamp[A4], SF_LAMP_RED);
    }
    cr_expect(!st->fault_latched);
    sf_unit_destroy(&u);
}
