/* tests/test_tsp.c — every transit-priority decision rule, outcomes and the event log. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventlog.h"
#include "scenario.h"
#include "tsp.h"

typedef struct {
    sf_scenario_t *sc;  /* single.json with overrides */
    sf_eventlog_t *log; /* to path */
    sf_tsp_t *t;        /* under test */
    uint32_t mv2, mv4;  /* a movement served by phase 2 and one by phase 4 */
    char path[64];      /* event log file */
} fx_t;

static void setup(fx_t *f, const char *lockout, const char *enabled)
{
    char s1[64], s2[64];
    snprintf(s1, sizeof s1, "control.priority.lockout_s=%s", lockout);
    snprintf(s2, sizeof s2, "control.priority.enabled=%s", enabled);
    const char *sets[] = {s1, s2, "control.priority.lateness_threshold_s=30",
                          "control.priority.max_extension_s=10"};
    sf_errors_t errs = {0};
    f->sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", sets, 4, &errs);
    cr_assert_not_null(f->sc, "%s", errs.n ? errs.msg[0] : "?");
    const sf_intersection_t *ix = &f->sc->intersections[0];
    f->mv2 = f->mv4 = UINT32_MAX;
    for (uint32_t m = 0; m < ix->n_movements; m++) {
        uint8_t no = ix->phases[ix->sg[ix->movements[m].sg_idx].phase_idx].id;
        if (no == 2 && f->mv2 == UINT32_MAX)
            f->mv2 = m;
        if (no == 4 && f->mv4 == UINT32_MAX)
            f->mv4 = m;
    }
    cr_assert(f->mv2 != UINT32_MAX && f->mv4 != UINT32_MAX);
    snprintf(f->path, sizeof f->path, "/tmp/test_tsp_%d.jsonl", (int)getpid());
    f->log = sf_eventlog_new(f->path);
    cr_assert_not_null(f->log);
    f->t = sf_tsp_new(f->sc, f->log);
    cr_assert_not_null(f->t);
}

static void teardown(fx_t *f)
{
    sf_tsp_destroy(&f->t);
    sf_eventlog_destroy(&f->log);
    unlink(f->path);
    sf_scenario_destroy(&f->sc);
}

static sf_tsp_event_t ci(const char *bus, uint32_t mv, float eta, float late, uint8_t level)
{
    sf_tsp_event_t e = {
        .check_in = true, .movement = mv, .eta_s = eta, .lateness_s = late, .level = level};
    snprintf(e.bus_id, sizeof e.bus_id, "%s", bus);
    return e;
}

static sf_tsp_event_t co(const char *bus, uint32_t mv)
{
    sf_tsp_event_t e = {.check_in = false, .movement = mv};
    snprintf(e.bus_id, sizeof e.bus_id, "%s", bus);
    return e;
}

static void event(fx_t *f, double t, sf_tsp_event_t e)
{
    cr_assert_eq(sf_tsp_event(f->t, t, &e), 0, "event %s: %s", e.bus_id, strerror(errno));
}

Test(tsp, conditional_on_lateness)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    event(&f, 0, ci("early", f.mv2, 20, 10, 0)); /* 10 s late < 30 s threshold */
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 0);
    event(&f, 1, ci("late", f.mv2, 20, 45, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 1, NULL, a, 8), 1);
    cr_assert_eq(a[0].type, 1);
    cr_assert_eq(a[0].phase_no, 2);
    cr_assert_eq(a[0].eta_ds, 200);
    cr_assert_eq(a[0].level, sf_tsp_level(45, 30));
    cr_assert_neq(a[0].id, 0);
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 2);
    cr_assert_eq(c.granted, 1);
    cr_assert_eq(c.refused, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 1);
    teardown(&f);
}

Test(tsp, lockout_after_a_grant)
{
    fx_t f;
    setup(&f, "120", "true");
    sf_tsp_action_t a[8];
    event(&f, 0, ci("A", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 1);
    event(&f, 15, co("A", f.mv2));
    cr_assert_eq(sf_tsp_decide(f.t, 15, NULL, a, 8), 1);
    cr_assert_eq(a[0].type, 2, "check-out written");
    event(&f, 60, ci("B", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 60, NULL, a, 8), 0, "B inside the lockout");
    /* B passes the stop line while still locked out: it no longer waits */
    cr_assert_eq(sf_tsp_event(f.t, 80, &(sf_tsp_event_t){.movement = f.mv2, .bus_id = "B"}), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(sf_tsp_decide(f.t, 80, NULL, a, 8), 0);
    event(&f, 121, ci("C", f.mv4, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 121, NULL, a, 8), 1, "C after the lockout");
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.by_reason[SF_TSP_R_LOCKOUT], 1);
    cr_assert_eq(c.granted, 2);
    teardown(&f);
}

Test(tsp, a_locked_out_request_waits_for_the_lockout_end)
{
    fx_t f;
    setup(&f, "120", "true");
    sf_tsp_action_t a[8];
    uint16_t id[8] = {0}, st[8] = {0}, rs[8] = {0};
    event(&f, 0, ci("A", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 1);
    /* the unit begins A's service at 5: its lockout, and so the centre's, runs from there */
    id[0] = a[0].id;
    st[0] = 2;
    sf_tsp_unit_status(f.t, 5, 0, id, st, rs);
    event(&f, 20, co("A", f.mv2));
    cr_assert_eq(sf_tsp_decide(f.t, 20, NULL, a, 8), 1);
    /* B is refused "lockout" and sends no update (queued at a red): it waits */
    event(&f, 30, ci("B", f.mv4, 100, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 30, NULL, a, 8), 0);
    cr_assert_eq(sf_tsp_decide(f.t, 121, NULL, a, 8), 0,
                 "120 s after the grant, 116 after the start");
    cr_assert_eq(sf_tsp_decide(f.t, 126, NULL, a, 8), 1, "granted at the lockout's end");
    cr_assert_eq(a[0].type, 1);
    cr_assert_eq(a[0].phase_no, 4);
    cr_assert_eq(a[0].eta_ds, 40, "ETA 100 s at 30, counted down");
    event(&f, 130, co("B", f.mv4));
    cr_assert_eq(sf_tsp_decide(f.t, 130, NULL, a, 8), 1);
    /* C, locked out by B's grant (to 246), never checks out: past its ETA + max extension +
     * expiry margin (140 + 5 + 10 + 60) it is not coming and is no longer decided */
    event(&f, 140, ci("C", f.mv2, 5, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 140, NULL, a, 8), 0);
    cr_assert_eq(sf_tsp_decide(f.t, 250, NULL, a, 8), 0, "not granted after the lockout");
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 3);
    cr_assert_eq(c.granted, 2);
    cr_assert_eq(c.refused, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_LOCKOUT], 1, "C; B's refusal became its grant");
    teardown(&f);
}

Test(tsp, conflicting_requests_by_level_then_eta)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    /* Same step, conflicting phases (2 and 4 are in different barriers): level wins over
     * an earlier ETA. */
    event(&f, 0, ci("lvl3", f.mv2, 10, 60, 3));
    event(&f, 0, ci("lvl2", f.mv4, 30, 60, 2));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 1);
    cr_assert_eq(a[0].phase_no, 4, "the level-2 request on phase 4 wins");
    cr_assert_eq(a[0].level, 2);
    /* The lower-ranked request waits (it is not thrown away): decided again at every
     * decision, it is granted as soon as the first one has checked out. */
    cr_assert_eq(sf_tsp_decide(f.t, 3, NULL, a, 8), 0, "still held by lvl2");
    event(&f, 5, co("lvl2", f.mv4));
    cr_assert_eq(sf_tsp_decide(f.t, 5, NULL, a, 8), 2);
    cr_assert_eq(a[0].type, 2, "lvl2's check-out");
    cr_assert_eq(a[1].type, 1, "then lvl3's grant, with no check-in update of its own");
    cr_assert_eq(a[1].phase_no, 2);
    cr_assert_eq(a[1].eta_ds, 50, "its ETA counted down from its check-in (10 s at 0)");
    event(&f, 8, co("lvl3", f.mv2));
    cr_assert_eq(sf_tsp_decide(f.t, 8, NULL, a, 8), 1);
    /* Equal levels: the sooner ETA wins. */
    event(&f, 10, ci("slow", f.mv2, 40, 60, 3));
    event(&f, 10, ci("soon", f.mv4, 15, 60, 3));
    cr_assert_eq(sf_tsp_decide(f.t, 10, NULL, a, 8), 1);
    cr_assert_eq(a[0].phase_no, 4);
    cr_assert_eq(a[0].eta_ds, 150);
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 4);
    cr_assert_eq(c.granted, 3, "lvl2, lvl3 after it, soon");
    cr_assert_eq(c.by_reason[SF_TSP_R_CONFLICT], 1, "slow, still waiting");
    teardown(&f);
}

Test(tsp, one_request_per_phase_and_check_out_frees_it)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    event(&f, 0, ci("A", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 1);
    uint16_t id_a = a[0].id;
    event(&f, 3, ci("B", f.mv2, 25, 90, 1)); /* even a higher level: the phase is held */
    cr_assert_eq(sf_tsp_decide(f.t, 3, NULL, a, 8), 0);
    cr_assert_eq(sf_tsp_active(f.t, 0), 1);
    /* An ETA update of A is a mailbox check-in with the same id, not a new request. */
    event(&f, 4, ci("A", f.mv2, 12, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 4, NULL, a, 8), 1);
    cr_assert_eq(a[0].id, id_a);
    cr_assert_eq(a[0].eta_ds, 120);
    event(&f, 10, co("A", f.mv2));
    cr_assert_eq(sf_tsp_decide(f.t, 10, NULL, a, 8), 2, "A's check-out, B granted after it");
    cr_assert_eq(a[0].type, 2);
    cr_assert_eq(a[0].id, id_a);
    cr_assert_eq(a[1].type, 1);
    cr_assert_neq(a[1].id, id_a);
    uint16_t id_b = a[1].id;
    cr_assert_eq(sf_tsp_active(f.t, 0), 1);
    event(&f, 11, ci("B", f.mv2, 14, 90, 1));
    cr_assert_eq(sf_tsp_decide(f.t, 11, NULL, a, 8), 1, "B's update of its grant");
    cr_assert_eq(a[0].id, id_b);
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    /* B's second check-in decided its one request again: refused "conflict", then granted */
    cr_assert_eq(c.requests, 2);
    cr_assert_eq(c.granted, 2);
    cr_assert_eq(c.refused, 0);
    cr_assert_eq(c.by_reason[SF_TSP_R_CONFLICT], 0);
    cr_assert_eq(c.cancelled, 1, "A never reported active by the unit: cancelled");
    teardown(&f);
}

Test(tsp, check_in_updates_of_a_refused_bus)
{
    fx_t f;
    setup(&f, "120", "true");
    sf_tsp_action_t a[8];
    sf_tsp_counts_t c;
    /* not late (no red ahead known): its ETA updates change nothing and are not new
     * requests */
    event(&f, 0, ci("early", f.mv4, 20, 10, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 0);
    event(&f, 8, ci("early", f.mv4, 30, 10, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 8, NULL, a, 8), 0);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 1);
    /* A takes the lockout; B, refused "lockout", is granted on an update after it ends */
    event(&f, 10, ci("A", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 10, NULL, a, 8), 1);
    event(&f, 20, co("A", f.mv2));
    cr_assert_eq(sf_tsp_decide(f.t, 20, NULL, a, 8), 1);
    event(&f, 100, ci("B", f.mv4, 40, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 100, NULL, a, 8), 0, "inside the lockout");
    event(&f, 120, ci("B", f.mv4, 25, 60, 0)); /* queued: an update, still locked out */
    cr_assert_eq(sf_tsp_decide(f.t, 120, NULL, a, 8), 0);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 3);
    cr_assert_eq(c.by_reason[SF_TSP_R_LOCKOUT], 1);
    event(&f, 131, ci("B", f.mv4, 12, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 131, NULL, a, 8), 1, "granted once the lockout ended");
    cr_assert_eq(a[0].type, 1);
    cr_assert_eq(a[0].phase_no, 4);
    cr_assert_eq(a[0].eta_ds, 120);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 3);
    cr_assert_eq(c.granted, 2);
    cr_assert_eq(c.refused, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_LOCKOUT], 0);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 1);
    event(&f, 140, co("B", f.mv4));
    cr_assert_eq(sf_tsp_decide(f.t, 140, NULL, a, 8), 1);
    /* the refused bus's check-out ends its refusal: its next check-in is a new request */
    cr_assert_eq(sf_tsp_event(f.t, 140, &(sf_tsp_event_t){.movement = f.mv4, .bus_id = "early"}),
                 -1);
    cr_assert_eq(errno, ENOENT);
    event(&f, 300, ci("early", f.mv4, 20, 10, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 300, NULL, a, 8), 0);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 4);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 2);
    /* the log: one "check_in" decision per bus and passage; B's re-decision that changed
     * the outcome is a "recheck", its unchanged one is not logged */
    sf_eventlog_destroy(&f.log);
    FILE *in = fopen(f.path, "r");
    cr_assert_not_null(in);
    char line[1024];
    int b_in = 0, b_re = 0, early_in = 0, early_re = 0;
    while (fgets(line, sizeof line, in)) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o);
        const char *ev = json_string_value(json_object_get(o, "event"));
        const char *bus = json_string_value(json_object_get(o, "bus"));
        cr_assert(ev && bus);
        bool is_b = strcmp(bus, "B") == 0, is_early = strcmp(bus, "early") == 0;
        b_in += is_b && strcmp(ev, "check_in") == 0;
        early_in += is_early && strcmp(ev, "check_in") == 0;
        if (strcmp(ev, "recheck") == 0) {
            b_re += is_b;
            early_re += is_early;
            cr_assert_str_eq(json_string_value(json_object_get(o, "outcome")), "granted");
        }
        json_decref(o);
    }
    fclose(in);
    cr_assert_eq(b_in, 1);
    cr_assert_eq(b_re, 1);
    cr_assert_eq(early_in, 2, "two passages, one decision each");
    cr_assert_eq(early_re, 0);
    teardown(&f);
}

Test(tsp, outcomes_served_unit_refused_offline_expired_disabled)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    uint16_t id[8] = {0}, st[8] = {0}, rs[8] = {0};
    /* served: the unit reported the request active before the check-out */
    event(&f, 0, ci("S", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 1);
    id[0] = a[0].id;
    st[0] = 2;
    sf_tsp_unit_status(f.t, 1, 0, id, st, rs);
    event(&f, 20, co("S", f.mv2));
    sf_tsp_decide(f.t, 20, NULL, a, 8);
    /* unit refused: the mailbox write got exception 03 */
    event(&f, 30, ci("U", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 30, NULL, a, 8), 1);
    sf_tsp_unit_refused(f.t, 30, &a[0], 3);
    cr_assert_eq(sf_tsp_active(f.t, 0), 0);
    /* offline */
    bool online[1] = {false};
    event(&f, 40, ci("O", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 40, online, a, 8), 0);
    cr_assert_eq(sf_tsp_event(f.t, 45, &(sf_tsp_event_t){.movement = f.mv2, .bus_id = "O"}), -1,
                 "O passed the line, never granted");
    /* expired: granted at 50 with ETA 20 and max extension 10: gone after 50+20+10+60 */
    event(&f, 50, ci("E", f.mv4, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 50, NULL, a, 8), 1);
    cr_assert_eq(sf_tsp_decide(f.t, 139, NULL, a, 8), 0);
    cr_assert_eq(sf_tsp_decide(f.t, 141, NULL, a, 8), 1);
    cr_assert_eq(a[0].type, 2, "expired grant is checked out at the unit");
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.served, 1);
    cr_assert_eq(c.expired, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_UNIT_REFUSED], 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_OFFLINE], 1);
    cr_assert_eq(c.requests, 4);
    cr_assert_eq(c.granted, 2, "S and E; U was refused by the unit");
    cr_assert_eq(c.refused, 2);
    teardown(&f);

    setup(&f, "0", "false");
    event(&f, 0, ci("D", f.mv2, 20, 60, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 8), 0);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.by_reason[SF_TSP_R_DISABLED], 1);
    teardown(&f);
}

Test(tsp, bad_input_changes_nothing)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_event_t e = ci("X", f.mv2, 20, 60, 0);
    e.ix = 7;
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    cr_assert_eq(errno, EINVAL);
    e = ci("X", 999, 20, 60, 0);
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    e = ci("", f.mv2, 20, 60, 0);
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    e = ci("X", f.mv2, -1, 60, 0);
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    e = ci("X", f.mv2, 20, 60, 9);
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    e = co("nobody", f.mv2);
    cr_assert_eq(sf_tsp_event(f.t, 0, &e), -1);
    cr_assert_eq(errno, ENOENT);
    sf_tsp_action_t a[4];
    cr_assert_eq(sf_tsp_decide(f.t, 0, NULL, a, 4), 0);
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 0);
    teardown(&f);
}

Test(tsp, every_request_is_logged_with_outcome_and_reason)
{
    fx_t f;
    setup(&f, "120", "true");
    sf_tsp_action_t a[8];
    event(&f, 0, ci("A", f.mv2, 20, 60, 0));
    event(&f, 0, ci("B", f.mv2, 20, 5, 0));
    sf_tsp_decide(f.t, 0, NULL, a, 8);
    event(&f, 9, co("A", f.mv2));
    sf_tsp_decide(f.t, 9, NULL, a, 8);
    sf_eventlog_destroy(&f.log); /* flush and close */
    FILE *in = fopen(f.path, "r");
    cr_assert_not_null(in);
    char line[1024];
    int n = 0, granted = 0, not_late = 0, cancelled = 0;
    while (fgets(line, sizeof line, in)) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        cr_assert_not_null(o, "line %d not JSON: %s", n + 1, err.text);
        cr_assert_str_eq(json_string_value(json_object_get(o, "kind")), "priority");
        cr_assert_str_eq(json_string_value(json_object_get(o, "ix")), "I1");
        cr_assert(json_is_number(json_object_get(o, "t")));
        const char *out = json_string_value(json_object_get(o, "outcome"));
        const char *why = json_string_value(json_object_get(o, "reason"));
        cr_assert(out && why);
        granted += strcmp(out, "granted") == 0;
        not_late += strcmp(out, "refused") == 0 && strcmp(why, "not_late") == 0;
        cancelled += strcmp(out, "cancelled") == 0;
        json_decref(o);
        n++;
    }
    fclose(in);
    cr_assert_eq(n, 3);
    cr_assert_eq(granted, 1);
    cr_assert_eq(not_late, 1);
    cr_assert_eq(cancelled, 1);
    json_t *cj = sf_tsp_counts_json(f.t);
    cr_assert_eq(json_integer_value(json_object_get(cj, "requests")), 2);
    cr_assert_eq(json_integer_value(json_object_get(cj, "granted")), 1);
    cr_assert_eq(json_integer_value(json_object_get(cj, "refused")), 1);
    json_decref(cj);
    teardown(&f);
}

/* single.json's plan made coordinated on phase 2: ring 2 | 4, 30 s splits, 5 s clearance
 * each, so phase 2 is green at cycle time 0..25 s and phase 4 at 30..55 s of 60 s. */
static sf_plan_t coord_plan(const fx_t *f)
{
    const sf_intersection_t *ix = &f->sc->intersections[0];
    sf_plan_t pl = ix->plans[0];
    int p2 = -1;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].id == 2)
            p2 = p;
    cr_assert_geq(p2, 0);
    pl.coord_phase_mask = (uint16_t)(1u << p2);
    return pl;
}

Test(tsp, red_wait_predicted_from_the_plan_and_cycle_timer)
{
    fx_t f;
    setup(&f, "0", "true");
    const sf_intersection_t *ix = &f.sc->intersections[0];
    uint8_t p2 = ix->sg[ix->movements[f.mv2].sg_idx].phase_idx;
    uint8_t p4 = ix->sg[ix->movements[f.mv4].sg_idx].phase_idx;
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 100), 0, 1e-9, "nothing read yet: unknown");
    sf_plan_t pl = coord_plan(&f);
    sf_tsp_signal(f.t, 10, 0, &pl, 50); /* cycle time 5 s at t = 10 s */
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 10), 0, 1e-6, "green now");
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 29.9), 0, 1e-6, "green to cycle time 25");
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 31), 34, 1e-6, "cycle time 26: red to 60");
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 65), 0, 1e-6, "the next cycle's green");
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p4, 10), 25, 1e-6, "phase 4 from cycle time 30");
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p4, 40), 0, 1e-6);
    /* not coordinated (or the plan unknown): the wait is unknown again */
    sf_tsp_signal(f.t, 11, 0, NULL, 0);
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 31), 0, 1e-9);
    pl.coord_phase_mask = 0;
    sf_tsp_signal(f.t, 11, 0, &pl, 60);
    cr_assert_float_eq(sf_tsp_wait(f.t, 0, p2, 31), 0, 1e-9, "a plan with no coordination");
    /* bad input is no wait */
    cr_assert_float_eq(sf_tsp_wait(f.t, 3, p2, 31), 0, 1e-9);
    cr_assert_float_eq(sf_tsp_wait(NULL, 0, p2, 31), 0, 1e-9);
    teardown(&f);
}

/* Conditional priority judges the lateness the bus will have at the stop line: a bus 10 s
 * late (under the 30 s threshold) that will wait 34 s at a red is granted, at the level of
 * 44 s; the same bus arriving in its green, or where the wait is unknown, is not late. */
Test(tsp, lateness_at_the_stop_line_counts_the_red_ahead)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    sf_plan_t pl = coord_plan(&f);
    sf_tsp_signal(f.t, 0, 0, &pl, 0);            /* cycle time 0 at t = 0 */
    event(&f, 5, ci("green", f.mv2, 10, 10, 0)); /* arrives at cycle time 15: green */
    cr_assert_eq(sf_tsp_decide(f.t, 5, NULL, a, 8), 0);
    event(&f, 6, ci("red", f.mv2, 20, 10, 0)); /* arrives at 26: waits 34 s */
    cr_assert_eq(sf_tsp_decide(f.t, 6, NULL, a, 8), 1);
    cr_assert_eq(a[0].type, 1);
    cr_assert_eq(a[0].level, sf_tsp_level(44, 30));
    cr_assert_eq(a[0].level, 3);
    event(&f, 7, ci("early", f.mv4, 5, -10, 0)); /* 10 s early, waits 18 s: 8 s late */
    cr_assert_eq(sf_tsp_decide(f.t, 7, NULL, a, 8), 0);
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.granted, 1);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 2);
    /* the unit leaves coordination: the wait is unknown, the lateness now decides */
    sf_tsp_signal(f.t, 8, 0, NULL, 0);
    event(&f, 8, ci("red2", f.mv4, 1, 10, 0));
    cr_assert_eq(sf_tsp_decide(f.t, 8, NULL, a, 8), 0);
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 3);
    /* the log carries the predicted wait */
    sf_eventlog_destroy(&f.log);
    FILE *in = fopen(f.path, "r");
    cr_assert_not_null(in);
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, in)) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o);
        if (strcmp(json_string_value(json_object_get(o, "bus")), "red") == 0) {
            cr_assert_float_eq(json_real_value(json_object_get(o, "wait_s")), 34, 1e-3);
            cr_assert_str_eq(json_string_value(json_object_get(o, "outcome")), "granted");
            seen++;
        }
        json_decref(o);
    }
    fclose(in);
    cr_assert_eq(seen, 1);
    sf_tsp_destroy(&f.t);
    unlink(f.path);
    sf_scenario_destroy(&f.sc);
}

/* A bus refused not late is decided again on its own update: held up longer than it
 * announced, it now arrives after its green ends, will wait the red and be late at the
 * line. Still one request; without an update nothing is decided again. */
Test(tsp, a_not_late_bus_held_up_is_decided_again_on_its_update)
{
    fx_t f;
    setup(&f, "0", "true");
    sf_tsp_action_t a[8];
    sf_plan_t pl = coord_plan(&f);
    sf_tsp_signal(f.t, 0, 0, &pl, 0);
    event(&f, 1, ci("held", f.mv2, 10, 10, 0)); /* due at cycle time 11: green */
    cr_assert_eq(sf_tsp_decide(f.t, 1, NULL, a, 8), 0);
    for (int s = 2; s < 15; s++)
        cr_assert_eq(sf_tsp_decide(f.t, s, NULL, a, 8), 0, "no update, no new decision");
    event(&f, 15, ci("held", f.mv2, 12, 10, 0)); /* now due at 27: waits 33 s */
    cr_assert_eq(sf_tsp_decide(f.t, 15, NULL, a, 8), 1);
    cr_assert_eq(a[0].type, 1);
    cr_assert_eq(a[0].eta_ds, 120);
    cr_assert_eq(a[0].level, sf_tsp_level(43, 30));
    sf_tsp_counts_t c;
    sf_tsp_counts(f.t, &c);
    cr_assert_eq(c.requests, 1);
    cr_assert_eq(c.granted, 1);
    cr_assert_eq(c.refused, 0);
    cr_assert_eq(c.by_reason[SF_TSP_R_NOT_LATE], 0);
    teardown(&f);
}
