/* tests/test_unit_priority.c — the unit's priority service driven by the ETA: no hold for
 * a bus that cannot reach the green, a missed green served again as early green, and
 * early green in coordinated mode reaching the requested phase (the lead phase after an
 * early return keeps only what its split gives it). Measured on the lamp outputs (ticks
 * of 0.1 s); the normal lengths are measured on the same unit without a request. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "unit_fixtures.h"

enum { A2 = 0, A4 = 1 };                         /* fx_single groups */
enum { V1 = 0, V2 = 1, V3 = 2, V4 = 3, V5 = 4 }; /* fx_nema groups */

static sf_unit_t *single_fixed(void)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    return u;
}

Test(unit_priority, no_hold_for_a_bus_beyond_the_extension_then_early_green)
{
    sf_unit_t *u = single_fixed();
    const sf_unit_status_t *st = sf_unit_status(u);
    /* normal lengths of one cycle, no request */
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    int g2 = fx_while(u, A2, SF_LAMP_GREEN, 3000);
    cr_assert_gt(fx_until(u, A4, SF_LAMP_GREEN, 3000), 0);
    int g4 = fx_while(u, A4, SF_LAMP_GREEN, 3000);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    /* A bus for phase 2 checks in at the start of 2's green, but queued: it needs longer
     * than the green plus the whole extension (15 s). */
    sf_prio_request_t rq = {.id = 21,
                            .level = 2,
                            .phase_no = 2,
                            .eta_ds = (uint16_t)(g2 + 150 + 100),
                            .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 3000);
    cr_expect_eq(g, g2, "green 2 lasted %d, normal %d: held for a bus that cannot reach it", g, g2);
    /* the request lives on as early green for the next green of 2 */
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].strategy, 2);
    cr_assert_gt(fx_until(u, A4, SF_LAMP_GREEN, 3000), 0);
    int t4 = fx_while(u, A4, SF_LAMP_GREEN, 3000);
    /* phase 4 keeps min green and walk + ped clearance (7 + 15 s), nothing more */
    cr_expect_eq(t4, 220, "green 4 lasted %d (normal %d)", t4, g4);
    cr_expect_lt(t4, g4);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

Test(unit_priority, missed_green_with_the_eta_run_out_expires)
{
    sf_unit_t *u = single_fixed();
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    int g2 = fx_while(u, A2, SF_LAMP_GREEN, 3000);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    /* due within the green; never comes and sends no update */
    sf_prio_request_t rq = {
        .id = 22, .level = 2, .phase_no = 2, .eta_ds = 50, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g = fx_while(u, A2, SF_LAMP_GREEN, 3000);
    cr_expect_eq(g, g2 + 150, "held for the whole extension: %d", g);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_EXPIRED, "not served again");
    sf_unit_destroy(&u);
}

Test(unit_priority, eta_update_keeps_a_queued_bus_for_the_next_green)
{
    sf_unit_t *u = single_fixed();
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = 23, .level = 2, .phase_no = 2, .eta_ds = 50, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    for (int i = 0; i < 100; i++)
        sf_unit_tick(u);
    /* the bus reports it is queued: 60 s more */
    rq.eta_ds = 600;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_YELLOW, 3000), 0);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].strategy, 2);
    /* served by the next green of 2 */
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

/* Tick until the lamp of sg turns code (from another); ticks taken or -1. */
static int c_until(sf_unit_t *u, uint32_t *tod, uint8_t sg, uint8_t code, int max)
{
    for (int i = 1; i <= max; i++) {
        uint8_t before = sf_unit_status(u)->sg_lamp[sg];
        fx_ctick(u, tod);
        if (before != code && sf_unit_status(u)->sg_lamp[sg] == code)
            return i;
    }
    return -1;
}

static int c_while(sf_unit_t *u, uint32_t *tod, uint8_t sg, uint8_t code, int max)
{
    int n = 0;
    while (n < max && sf_unit_status(u)->sg_lamp[sg] == code) {
        fx_ctick(u, tod);
        n++;
    }
    return n;
}

Test(unit_priority, coordinated_early_green_not_absorbed_by_the_lead_left)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    for (int i = 0; i < 8; i++) /* every phase runs to its force-off */
        ix.phases[i].recall = SF_RECALL_MAX;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    uint32_t tod = 0;
    cr_assert_eq(sf_unit_set_clock(u, tod), 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* settle into coordination (plan 1: 100 s; lefts 15 s split, 10 s green) */
    int k = 0;
    do
        cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_YELLOW, 3000), 0);
    while (!st->coord_in_sync && ++k < 40);
    cr_assert(st->coord_in_sync, "not in sync after %d cycles", k);
    /* normal: the lead left's green and the red of the coordinated phase 2 */
    cr_assert_gt(c_until(u, &tod, V1, SF_LAMP_GREEN, 3000), 0);
    int g1 = c_while(u, &tod, V1, SF_LAMP_GREEN, 3000);
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_YELLOW, 3000), 0);
    int r2 = c_until(u, &tod, V2, SF_LAMP_GREEN, 3000);
    cr_assert_gt(r2, 0);
    /* a bus for phase 2 checks in as the side street's through phase 4 turns green */
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_YELLOW, 3000), 0);
    uint32_t tod_y = tod;
    cr_assert_gt(c_until(u, &tod, V4, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = 31, .level = 2, .phase_no = 2, .eta_ds = 300, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int g4 = c_while(u, &tod, V4, SF_LAMP_GREEN, 3000);
    /* 4 loses the max early green (15 s) of its 29 s, keeping more than its min green */
    cr_expect_eq(g4, 140, "green 4 lasted %d", g4);
    cr_assert_gt(c_until(u, &tod, V1, SF_LAMP_GREEN, 3000), 0);
    int e1 = c_while(u, &tod, V1, SF_LAMP_GREEN, 3000);
    /* entered early, the lead left is cut back to its min green, not run to its force-off */
    cr_expect_eq(e1, 50, "lead left lasted %d (normal %d)", e1, g1);
    cr_expect_lt(e1, g1);
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    int r2p = (int)(tod - tod_y);
    /* 2 comes back 15 s (4 and 8) + 5 s (the lead lefts 1 and 5) sooner */
    cr_expect_eq(r2p, r2 - 200, "red of 2 %d with the request, %d without", r2p, r2);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].strategy, 2);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

Test(unit_priority, coordinated_extension_takes_the_slack_of_the_phases_after_it)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    for (int i = 0; i < 8; i++)
        ix.phases[i].recall = SF_RECALL_MAX;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    uint32_t tod = 0;
    cr_assert_eq(sf_unit_set_clock(u, tod), 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    int k = 0;
    do
        cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_YELLOW, 3000), 0);
    while (!st->coord_in_sync && ++k < 40);
    cr_assert(st->coord_in_sync);
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    int g2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    /* The lead lefts have 5 s above their min green, the side throughs 14 s, so the whole
     * max extension (15 s) fits before the next coordinated green: 3 + 4 give up 19 s.
     * (The smallest slack of any phase, 5 s, is not the limit: phases 1 and 5 run
     * before 2 and 6, not after them.) */
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = 41, .level = 2, .phase_no = 2, .eta_ds = 50, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int e2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    cr_expect_eq(e2, g2 + 150, "extended green 2 lasted %d, normal %d", e2, g2);
    /* 3 and 4 (and 7, 8) keep their min service */
    cr_assert_gt(c_until(u, &tod, V3, SF_LAMP_GREEN, 3000), 0);
    cr_expect_geq(c_while(u, &tod, V3, SF_LAMP_GREEN, 3000), 50);
    cr_assert_gt(c_until(u, &tod, V4, SF_LAMP_GREEN, 3000), 0);
    cr_expect_geq(c_while(u, &tod, V4, SF_LAMP_GREEN, 3000), 150);
    sf_unit_destroy(&u);
}

/* Settled coordinated NEMA unit (plan 1: 100 s, lefts 15 s split, throughs 35 s,
 * coordinated 2 and 6), every phase on max recall so the cycle is the same each time. */
/* The NEMA unit, max recall on every phase, coordinated and in sync; max_early_ds < 0
 * keeps the default max early green. */
static sf_unit_t *coord_settled_early(uint32_t *tod, int max_early_ds)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    for (int i = 0; i < 8; i++)
        ix.phases[i].recall = SF_RECALL_MAX;
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    if (max_early_ds >= 0)
        c.max_early_green_ds = (uint16_t)max_early_ds;
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    *tod = 0;
    cr_assert_eq(sf_unit_set_clock(u, *tod), 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    int k = 0;
    do
        cr_assert_gt(c_until(u, tod, V2, SF_LAMP_YELLOW, 3000), 0);
    while (!st->coord_in_sync && ++k < 40);
    cr_assert(st->coord_in_sync, "not in sync after %d cycles", k);
    return u;
}

static sf_unit_t *coord_settled(uint32_t *tod)
{
    return coord_settled_early(tod, -1);
}

Test(unit_priority, coordinated_phase_insertion_serves_a_passed_lead_left_before_the_barrier)
{
    uint32_t tod;
    sf_unit_t *u = coord_settled(&tod);
    const sf_unit_status_t *st = sf_unit_status(u);
    /* normal: green of 2 after the lead left, and the wait from 2's green to the next
     * green of 1 (a whole side-street group in between) */
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    int g2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    int w1 = g2 + c_until(u, &tod, V1, SF_LAMP_GREEN, 3000);
    /* A bus for the lead left 1 reaches the line just after its green: 2 has just
     * turned green. It is due within the inserted green (ETA 3 s). */
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = 51, .level = 2, .phase_no = 1, .eta_ds = 30, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int e2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    /* 2 ends early by the max early green (15 s), no more (its min green, walk and ped
     * clearance are long done by then) */
    cr_expect_eq(e2, g2 - 150, "green 2 lasted %d, normal %d", e2, g2);
    /* 1 comes back before the barrier: 6 (concurrent with 1) is still green, the side
     * street (3) has not been served */
    int to1 = c_until(u, &tod, V1, SF_LAMP_GREEN, 3000);
    cr_assert_gt(to1, 0);
    cr_expect_eq(st->sg_lamp[V3], SF_LAMP_RED, "the side street ran before the insertion");
    cr_expect_eq(st->sg_lamp[5], SF_LAMP_GREEN, "6 not green beside the inserted 1");
    cr_expect_eq(st->sg_lamp[V2], SF_LAMP_RED);
    cr_expect_lt(e2 + to1, w1 - 300, "1 after %d ticks with insertion, %d without", e2 + to1, w1);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_expect_eq(st->prio[0].strategy, 3);
    /* the bus crosses 2 s into the green and checks out: served */
    for (int i = 0; i < 20; i++)
        fx_ctick(u, &tod);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    /* the inserted 1 keeps its min green (5 s), and 2 is not served again after it:
     * the barrier (the side street) comes next */
    int i1 = 22 + c_while(u, &tod, V1, SF_LAMP_GREEN, 3000);
    cr_expect_geq(i1, 50, "inserted green 1 lasted %d", i1);
    int to3 = c_until(u, &tod, V3, SF_LAMP_GREEN, 3000);
    cr_assert_gt(to3, 0);
    cr_expect_eq(st->sg_lamp[V2], SF_LAMP_RED, "2 served again after the inserted 1");
    sf_unit_destroy(&u);
}

Test(unit_priority, no_phase_insertion_for_a_bus_not_due_within_the_inserted_green)
{
    uint32_t tod;
    sf_unit_t *u = coord_settled(&tod);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    int g2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    cr_assert_gt(c_until(u, &tod, V2, SF_LAMP_GREEN, 3000), 0);
    /* due in 90 s: far beyond min green + max extension; early green for the next 1 */
    sf_prio_request_t rq = {
        .id = 52, .level = 2, .phase_no = 1, .eta_ds = 900, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int e2 = c_while(u, &tod, V2, SF_LAMP_GREEN, 3000);
    cr_expect_eq(e2, g2, "green 2 lasted %d, normal %d", e2, g2);
    /* the side street comes before 1 again */
    cr_assert_gt(c_until(u, &tod, V3, SF_LAMP_GREEN, 3000), 0);
    cr_expect_eq(st->sg_lamp[V1], SF_LAMP_RED);
    sf_unit_tick(u);
    cr_expect_eq(st->prio[0].strategy, 2);
    sf_unit_destroy(&u);
}

/* A check-out of a request the unit already ended (its green ran out with the ETA at zero:
 * expired) is taken as a no-op: the bus leaving is no error for the centre, and the slot
 * keeps its outcome. An id the unit never had is still refused. */
Test(unit_priority, check_out_after_expiry_is_taken)
{
    sf_unit_t *u = single_fixed();
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = 31, .level = 2, .phase_no = 2, .eta_ds = 20, .action = SF_PRIO_CHECK_IN};
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    int n = 0;
    while (st->prio[0].state != SF_PRIO_ST_EXPIRED && n < 6000) {
        sf_unit_tick(u);
        n++;
    }
    cr_assert_eq(st->prio[0].state, SF_PRIO_ST_EXPIRED, "state %u after %d ticks",
                 st->prio[0].state, n);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_expect_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_EXPIRED, "the outcome is kept");
    rq.id = 32;
    errno = 0;
    cr_expect_eq(sf_unit_priority(u, &rq), -1);
    cr_expect_eq(errno, EINVAL);
    sf_unit_destroy(&u);
}

/* A bus for the lead left 1 checks in at the start of 1's green but is held upstream
 * (ETA 40 s: beyond min green and extension), so the green ends without it and the request
 * waits, as early green, for the next green of 1. At that end the bus updates its ETA to
 * 70 s (still held), so no insertion is due when 2 ends: the next green of 1 is a cycle
 * later (max early green 0 here, as when the phases before it have nothing to give).
 * Returns the ticks since the check-in. */
/* Ticks after which a request whose ETA ran out and whose bus is silent expires: the
 * fixture's max extension (the config default) + 60 s. */
static uint32_t expiry_ds(void)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_COORDINATED);
    return (uint32_t)c.max_extension_ds + 600u;
}

static int lead_left_missed(sf_unit_t *u, uint32_t *tod, sf_prio_request_t *rq)
{
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(c_until(u, tod, V1, SF_LAMP_GREEN, 3000), 0);
    rq->eta_ds = 400;
    cr_assert_eq(sf_unit_priority(u, rq), 0);
    int t = c_while(u, tod, V1, SF_LAMP_GREEN, 3000);
    rq->eta_ds = 700;
    cr_assert_eq(sf_unit_priority(u, rq), 0);
    fx_ctick(u, tod);
    t++;
    cr_assert_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE);
    cr_assert_eq(st->prio[0].strategy, 2, "not waiting for the next green of 1");
    return t;
}

/* The bus then reaches the line after the barrier (the side street is green) and waits
 * there, updating its ETA (0.1 s) every 5 s (its earlier ETA would run out first). From its first
 * check-in to the next green of 1 is more than max extension + 60 s: the request must not expire as
 * "not coming" meanwhile (a rule that counted from the first check-in dropped such buses, and their
 * new check-in then met the lockout: a whole cycle more). */
Test(unit_priority, a_bus_waiting_at_the_line_keeps_its_request_past_the_expiry)
{
    uint32_t tod;
    sf_unit_t *u = coord_settled_early(&tod, 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    sf_prio_request_t rq = {
        .id = 61, .level = 2, .phase_no = 1, .eta_ds = 400, .action = SF_PRIO_CHECK_IN};
    int t = lead_left_missed(u, &tod, &rq);
    t += c_until(u, &tod, V4, SF_LAMP_GREEN, 3000);
    cr_assert_eq(st->sg_lamp[V1], SF_LAMP_RED, "1 inserted before the barrier");
    rq.eta_ds = 1;
    int g = 0;
    while (g < 3000 && st->sg_lamp[V1] != SF_LAMP_GREEN) {
        if (g % 50 == 0)
            cr_assert_eq(sf_unit_priority(u, &rq), 0, "update refused at %d", t + g);
        fx_ctick(u, &tod);
        g++;
        cr_assert_eq(st->prio[0].state, SF_PRIO_ST_ACTIVE, "request ended %d ticks after check-in",
                     t + g);
    }
    cr_assert_eq(st->sg_lamp[V1], SF_LAMP_GREEN);
    uint32_t lim = expiry_ds();
    cr_assert_gt((uint32_t)(t + g), lim, "1 green again %d ticks after check-in: no wait past %u",
                 t + g, lim);
    rq.action = SF_PRIO_CHECK_OUT;
    cr_assert_eq(sf_unit_priority(u, &rq), 0);
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_SERVED);
    sf_unit_destroy(&u);
}

/* The same bus silent after its update (no more updates, no check-out): once its ETA has
 * run out and it has sent nothing for max extension + 60 s the request expires (the bus
 * is not coming) before the next green of 1. */
Test(unit_priority, a_silent_bus_expires_after_its_eta)
{
    uint32_t tod;
    sf_unit_t *u = coord_settled_early(&tod, 0);
    const sf_unit_status_t *st = sf_unit_status(u);
    sf_prio_request_t rq = {
        .id = 62, .level = 2, .phase_no = 1, .eta_ds = 400, .action = SF_PRIO_CHECK_IN};
    lead_left_missed(u, &tod, &rq);
    uint32_t lim = expiry_ds();
    int t = 1; /* ticks since the update */
    while (st->prio[0].state == SF_PRIO_ST_ACTIVE && t < 3000) {
        cr_assert_neq(st->sg_lamp[V1], SF_LAMP_GREEN, "1 green again before the expiry");
        fx_ctick(u, &tod);
        t++;
    }
    cr_expect_eq(st->prio[0].state, SF_PRIO_ST_EXPIRED);
    cr_expect(t > (int)lim && t <= (int)lim + 2, "expired %d ticks after the last update, limit %u",
              t, lim);
    sf_unit_destroy(&u);
}

/* From the start of the side street's through (4) to the next green of 2, with a bus for
 * 2 (level lv, at the line: ETA 0.1 s) checked in at that start; whether the lead left 1
 * was green in between. The bus checks out at 2's green. */
static int side_to_2(sf_unit_t *u, uint32_t *tod, uint16_t id, uint8_t lv, bool *saw1)
{
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(c_until(u, tod, V4, SF_LAMP_GREEN, 3000), 0);
    sf_prio_request_t rq = {
        .id = id, .level = lv, .phase_no = 2, .eta_ds = 1, .action = SF_PRIO_CHECK_IN};
    if (id)
        cr_assert_eq(sf_unit_priority(u, &rq), 0);
    *saw1 = false;
    int n = 0;
    while (n < 3000 && st->sg_lamp[V2] != SF_LAMP_GREEN) {
        fx_ctick(u, tod);
        n++;
        *saw1 = *saw1 || st->sg_lamp[V1] == SF_LAMP_GREEN;
    }
    cr_assert_eq(st->sg_lamp[V2], SF_LAMP_GREEN);
    if (id) {
        rq.action = SF_PRIO_CHECK_OUT;
        cr_assert_eq(sf_unit_priority(u, &rq), 0);
    }
    return n;
}

/* Phase skip: a late bus (level 2) for the coordinated 2 waiting at the line while the
 * side street runs: the called lead left 1 (no walk) is passed over this cycle, 2 comes
 * straight after the barrier, sooner than with 1 served (as it is for a bus only level 3
 * late, and as it is the next cycle: never skipped twice running). */
Test(unit_priority, phase_skip_passes_the_lead_left_for_a_late_bus_once)
{
    uint32_t tod;
    sf_unit_t *u = coord_settled(&tod);
    const sf_unit_status_t *st = sf_unit_status(u);
    bool saw1;
    int normal = side_to_2(u, &tod, 0, 0, &saw1);
    cr_assert(saw1, "the lead left is not served normally (max recall)");
    /* level 3 (late, not twice the threshold): early green only, 1 still served */
    int l3 = side_to_2(u, &tod, 71, 3, &saw1);
    cr_expect(saw1, "1 skipped for a level-3 bus");
    cr_expect_eq(st->prio[0].strategy, 2);
    /* past the lockout, then level 2: 1 passed over, 2 sooner than the level-3 bus had it */
    for (int i = 0; i < 700; i++)
        fx_ctick(u, &tod);
    int l2 = side_to_2(u, &tod, 72, 2, &saw1);
    cr_expect(!saw1, "1 served for a level-2 bus");
    cr_expect_lt(l2, l3, "2 after %d ticks with the skip, %d without (normal %d)", l2, l3, normal);
    bool seen4 = false;
    for (int k = 0; k < SF_UNIT_MAX_PRIO; k++)
        seen4 = seen4 || (st->prio[k].id == 72 && st->prio[k].state == SF_PRIO_ST_SERVED);
    cr_expect(seen4, "the skipped-for request not served");
    /* the next cycle, past the lockout again, another level-2 bus: 1 was skipped at its
     * previous visit, so it is served this time */
    while (st->prio_lockout_ds > 0)
        fx_ctick(u, &tod);
    side_to_2(u, &tod, 73, 2, &saw1);
    cr_expect(saw1, "1 skipped twice running");
    sf_unit_destroy(&u);
}
