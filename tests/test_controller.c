/* tests/test_controller.c — the controller core against real units (unit/host in a thread
 * on 127.0.0.1, tests/ctl_rig.h): plans downloaded and verified at start, a refused plan is an
 * event, a priority request reaches the unit's mailbox and is checked out, the event log and the
 * report. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adaptive.h"
#include "bus_codec.h"
#include "ctl_rig.h"
#include "controller.h"
#include "detdiag.h"
#include "greenwave.h"
#include "host.h"
#include "regmap.h"
#include "scenario.h"

/* The units' detector data every 20 s (the adaptive tests wait for it). */
static const ctl_rig_opts_t RIG = {.det_interval_ds = 200};

typedef struct {
    int n;        /* lines seen */
    int verified; /* plan_verified lines */
    int refused;  /* plan_refused lines */
} lines_t;

static void count_line(void *ctx, const char *line)
{
    lines_t *l = ctx;
    l->n++;
    l->verified += strstr(line, "\"plan_verified\"") != NULL;
    l->refused += strstr(line, "\"plan_refused\"") != NULL;
}

Test(controller, corridor_plans_verified_then_polled)
{
    sf_scenario_t *sc = ctl_rig_load("xiantao-corridor.json", NULL, 0);
    sf_endpoint_t eps[64];
    cr_assert_leq(sc->n_intersections, 64);
    ctl_rig_t t;
    uint32_t tod0 = sc->run.start_tod_s * 10;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_controller_%d.jsonl", (int)getpid());
    lines_t lines = {0};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.log_path = path;
    o.round_timeout_ms = 1000;
    o.sink = count_line;
    o.sink_ctx = &lines;
    char err[200];
    sf_controller_t *c = sf_controller_new(sc, eps, &o, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    unsigned total_plans = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        total_plans += sc->intersections[i].n_plans;
    /* One plan per unit per poll: enough polls for every plan, plus a few. */
    uint64_t steps = (uint64_t)(SF_MAX_PLANS + 3) * 10;
    for (uint64_t k = 0; k < steps; k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    const sf_master_t *m = sf_controller_master(c);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_unit_state_t *st = sf_master_state(m, i);
        cr_assert_eq(st->health.state, SF_LINK_ONLINE, "%s", sc->intersections[i].id);
        cr_assert(st->identity_ok);
        cr_assert_str_eq(st->unit_id, sc->intersections[i].id);
        cr_assert_geq(st->n_status, SF_MAX_PLANS, "polled once per second");
        /* The plan the schedule wants is running or waiting for its safe point. */
        uint8_t want = sc->intersections[i]
                           .plans[sf_intersection_plan_at(&sc->intersections[i], tod0 / 10)]
                           .id;
        cr_assert(st->active_plan == want || st->pending_plan == want, "%s: plan %u/%u want %u",
                  sc->intersections[i].id, st->active_plan, st->pending_plan, want);
    }
    json_t *rep = sf_controller_report(c);
    json_t *plans = json_object_get(rep, "plans");
    cr_assert_eq(json_integer_value(json_object_get(plans, "verified")), total_plans);
    cr_assert_eq(json_integer_value(json_object_get(plans, "refused")), 0);
    cr_assert_eq(json_integer_value(json_object_get(plans, "readback_mismatches")), 0);
    cr_assert_eq(lines.verified, (int)total_plans);
    json_t *comms = json_object_get(rep, "comms");
    cr_assert_eq(json_integer_value(json_object_get(comms, "missed_polls")), 0);
    cr_assert_eq(json_integer_value(json_object_get(comms, "online")), sc->n_intersections);
    json_decref(rep);
    sf_controller_destroy(&c);
    /* Every line of the file is a JSON object with t, ix and kind. */
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        cr_assert_not_null(j, "line %d: %s", n + 1, e.text);
        cr_assert(json_is_number(json_object_get(j, "t")));
        cr_assert(json_is_string(json_object_get(j, "kind")));
        cr_assert_not_null(json_object_get(j, "ix"));
        json_decref(j);
        n++;
    }
    fclose(in);
    unlink(path);
    cr_assert_eq(n, lines.n);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

Test(controller, refused_plan_is_an_event_and_not_retried)
{
    sf_scenario_t *sc = ctl_rig_load("single.json", NULL, 0);
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    ctl_rig_start(&t, sc, eps, 7 * 36000, &RIG);
    /* The controller's copy of the scenario has an unsafe plan 1: phase 2's split below
     * min green + yellow + red clear (the ring still sums to the cycle). */
    sf_scenario_t *bad = ctl_rig_load("single.json", NULL, 0);
    bad->intersections[0].plans[0].split_ds[0] = 100;
    bad->intersections[0].plans[0].split_ds[1] =
        (uint16_t)(bad->intersections[0].plans[0].cycle_ds - 100);
    lines_t lines = {0};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = count_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(bad, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    for (uint64_t k = 0; k < 60; k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, 7 * 36000), 0);
    cr_assert_eq(lines.refused, 1, "one refusal, no blind retry (%d)", lines.refused);
    json_t *rep = sf_controller_report(c);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rep, "plans"), "refused")), 1);
    json_decref(rep);
    sf_controller_destroy(&c);
    sf_scenario_destroy(&bad);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

/* The priority tests' intersection: single.json with priority for buses 30 s late. */
static const char *const PRIO_SETS[] = {"control.priority.lateness_threshold_s=30",
                                        "control.priority.enabled=true"};

/* That scenario (the caller destroys it) with its unit in the rig t behind eps[0]. */
static sf_scenario_t *prio_units(ctl_rig_t *t, sf_endpoint_t *eps, uint32_t tod0)
{
    sf_scenario_t *sc = ctl_rig_load("single.json", PRIO_SETS, 2);
    ctl_rig_start(t, sc, eps, tod0, &RIG);
    return sc;
}

/* A controller for sc's units at eps with a 1 s round bound (a loaded machine misses no
 * poll), for the priority tests. */
static sf_controller_t *prio_controller(const sf_scenario_t *sc, const sf_endpoint_t *eps)
{
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    return c;
}

Test(controller, priority_request_reaches_the_unit_and_is_checked_out)
{
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    sf_scenario_t *sc = prio_units(&t, eps, tod0);
    sf_controller_t *c = prio_controller(sc, eps);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    /* Past the 2 s start-up: running under centre control (the host thread may lag). */
    uint64_t k = ctl_rig_until_centre(&t, c, 0, tod0);
    const sf_intersection_t *ix = &sc->intersections[0];
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 25, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0); /* decided and written at once */
    k++;
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.requests, 1);
    cr_assert_eq(cnt.granted, 1, "granted and taken by the unit");
    /* The next poll reads the unit's priority slots: the request is there. */
    for (int j = 0; j < 10; j++, k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    uint8_t phase = ix->phases[ix->sg[ix->movements[0].sg_idx].phase_idx].id;
    int slot = -1;
    for (int i = 0; i < 8; i++)
        if (st->prio_id[i] != 0 && st->prio_phase[i] == phase)
            slot = i;
    cr_assert_geq(slot, 0, "request not in the unit's status slots");
    cr_assert(st->prio_state[slot] >= 1 && st->prio_state[slot] <= 3, "state %u reason %u mode %#x",
              st->prio_state[slot], st->prio_reason[slot], st->mode);
    e.check_in = false;
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(c), 0), 0);
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.served + cnt.cancelled, 1);
    /* A bus that is not late is refused and nothing is written. */
    e.check_in = true;
    e.lateness_s = 5;
    snprintf(e.bus_id, sizeof e.bus_id, "B1-002");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    k++;
    cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.by_reason[SF_TSP_R_NOT_LATE], 1);
    json_t *rep = sf_controller_report(c);
    json_t *pr = json_object_get(rep, "priority");
    cr_assert_eq(json_integer_value(json_object_get(pr, "requests")), 2);
    cr_assert_eq(json_integer_value(json_object_get(pr, "granted")), 1);
    cr_assert_eq(json_integer_value(json_object_get(pr, "refused")), 1);
    cr_assert_geq(json_integer_value(json_object_get(json_object_get(rep, "events"), "priority")),
                  3);
    cr_assert_eq(json_integer_value(json_object_get(pr, "mailbox_refused")), 0,
                 "the unit took the check-in and the check-out");
    json_decref(rep);
    /* Bad input changes nothing. */
    e.ix = 5;
    cr_assert_eq(sf_controller_transit(c, &e), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_controller_step(c, 0, 0), -1, "steps never go backwards");
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

/* The red wait a check-in's lateness is judged with comes from the running unit: the
 * centre lays the plan it reads out as the unit does, and at every poll of the
 * coordinated unit (phase 4 called all the time, so every phase runs its split) the
 * predicted wait for a bus at the line now is 0 exactly when phase 2 is green (away from
 * the changes). A bus 10 s late due in that red is granted; one due in the green is not
 * late. */
Test(controller, priority_lateness_at_the_line_from_the_units_cycle)
{
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    const char *sets[] = {PRIO_SETS[0], PRIO_SETS[1], "control.strategy=coordinated",
                          "intersections[0].plans[0].coord_phases=[2]"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 4);
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    sf_controller_t *c = prio_controller(sc, eps);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    const sf_tsp_t *tsp = sf_controller_tsp(c);
    atomic_store(&t.pulses, (1ull << sc->intersections[0].n_det) - 1);
    uint64_t k = ctl_rig_until_centre(&t, c, 0, tod0);
    for (int j = 0; j < 3000 && st->mode != 0x12; j++, k++)
        ctl_rig_step_ok(&t, c, k, tod0);
    cr_assert_eq(st->mode, 0x12, "coordinated under the centre");
    const sf_intersection_t *ix = &sc->intersections[0];
    uint8_t p2 = ix->sg[ix->movements[0].sg_idx].phase_idx;
    cr_assert_eq(ix->phases[p2].id, 2, "movement 0 is phase 2's");
    double step = sc->run.step_s > 0 ? sc->run.step_s : 0.1;
    int green_polls = 0, red_polls = 0;
    uint64_t seen = st->n_status;
    for (uint64_t end = k + (uint64_t)llround(130 / step); k < end; k++) {
        ctl_rig_step_ok(&t, c, k, tod0);
        if (st->n_status == seen)
            continue;
        seen = st->n_status; /* a poll at step k: the wait of a bus at the line now */
        double ct = st->cycle_timer_ds / 10.0;
        if (ct < 1 || (ct > 24 && ct < 31) || ct > 59)
            continue; /* around a change the poll and the lamps may be a tick apart */
        bool green = st->phase_status[2] >> 1 & 1u; /* bit i = phase i + 1 */
        double w = sf_tsp_wait(tsp, 0, p2, (double)k * step);
        cr_assert_eq(w == 0, green, "cycle time %.1f s: wait %.1f s, phase 2 %s", ct, w,
                     green ? "green" : "red");
        green_polls += green;
        red_polls += !green;
    }
    cr_assert(green_polls > 5 && red_polls > 5, "%d green, %d red polls", green_polls, red_polls);
    /* a check-in just after a poll: due 8 s into the red (27 s to wait: 37 s late at the
     * line), then one due in the green */
    while (st->n_status == seen)
        ctl_rig_step_ok(&t, c, k++, tod0);
    double ct = st->cycle_timer_ds / 10.0;
    double eta_red = fmod(33 - ct + 120, 60), eta_green = fmod(12 - ct + 120, 60);
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .lateness_s = 10};
    e.eta_s = (float)(eta_red < 2 ? eta_red + 60 : eta_red);
    snprintf(e.bus_id, sizeof e.bus_id, "red");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    e.eta_s = (float)(eta_green < 2 ? eta_green + 60 : eta_green);
    snprintf(e.bus_id, sizeof e.bus_id, "green");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    ctl_rig_step_ok(&t, c, k++, tod0);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(tsp, &cnt);
    cr_assert_eq(cnt.requests, 2);
    cr_assert_eq(cnt.granted, 1, "the bus due in the red (cycle time %.1f s, ETA %.1f s)", ct,
                 eta_red);
    cr_assert_eq(cnt.by_reason[SF_TSP_R_NOT_LATE], 1, "the bus due in the green");
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

/* The controller's configuration disagrees with the unit's (a stale central database):
 * its copy numbers the unit's phase 2 as 6, a phase the unit does not have, so the unit
 * refuses the check-in's mailbox write (exception 03). The report counts it in
 * priority.mailbox_refused, next to the request refused as unit_refused. */
Test(controller, a_mailbox_write_the_unit_refuses_is_counted)
{
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    sf_scenario_t *sc = prio_units(&t, eps, tod0);
    sf_scenario_t *csc = ctl_rig_load("single.json", PRIO_SETS, 2);
    sf_intersection_t *cix = &csc->intersections[0];
    uint8_t pidx = cix->sg[cix->movements[0].sg_idx].phase_idx;
    cr_assert_eq(cix->phases[pidx].id, 2, "single.json: movement 0 runs in phase 2");
    sf_controller_t *c = prio_controller(csc, eps);
    uint64_t k = ctl_rig_until_centre(&t, c, 0, tod0);
    /* Plans are verified by now: only the priority request uses the phase number. */
    cix->phases[pidx].id = 6;

    json_t *rep = sf_controller_report(c);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(rep, "priority"), "mailbox_refused")), 0,
        "nothing written yet");
    json_decref(rep);
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 25, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    const sf_unit_status_t *ust = sf_unit_status(sf_host_unit(t.h, 0));
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ust->prio[i].id, 0, "the unit queued request %u", ust->prio[i].id);

    rep = sf_controller_report(c);
    json_t *pr = json_object_get(rep, "priority");
    cr_assert_eq(json_integer_value(json_object_get(pr, "requests")), 1);
    cr_assert_eq(json_integer_value(json_object_get(pr, "mailbox_refused")), 1,
                 "one mailbox write refused, not retried");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(pr, "refused_by_reason"), "unit_refused")),
                 1);
    cr_assert_eq(json_integer_value(json_object_get(pr, "granted")), 0);
    json_decref(rep);
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&csc);
    sf_scenario_destroy(&sc);
}

typedef struct {
    int switches_to; /* mp_switch lines towards the watched phases */
    int refused;     /* mp_write_refused lines */
    char to[32];     /* "\"to_phases\":N" to look for */
} mp_lines_t;

static void mp_line(void *ctx, const char *line)
{
    mp_lines_t *l = ctx;
    if (strstr(line, "\"mp_switch\"") && strstr(line, l->to))
        l->switches_to++;
    l->refused += strstr(line, "\"mp_write_refused\"") != NULL;
}

/* Max-pressure: demand only on phase 2's detectors, then only on phase 4's: the
 * controller switches the unit to the stage with the pressure through the coils. */
Test(controller, max_pressure_follows_the_demand)
{
    const char *sets[] = {"control.strategy=max_pressure"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 1);
    const sf_intersection_t *ix = &sc->intersections[0];
    uint64_t det2 = 0, det4 = 0;
    int p4 = -1;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].id == 4)
            p4 = p;
    cr_assert_geq(p4, 0);
    for (uint8_t d = 0; d < ix->n_det; d++) {
        if (ix->det[d].phase_mask & (1u << p4))
            det4 |= (uint64_t)1 << d;
        else if (ix->det[d].phase_mask)
            det2 |= (uint64_t)1 << d;
    }
    cr_assert(det2 && det4, "single.json needs detectors on both phases");
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.presence, det2);
    mp_lines_t lines = {0};
    snprintf(lines.to, sizeof lines.to, "\"to_phases\":%d", 1 << 3);
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = mp_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    uint64_t k = 0;
    /* The actuated mode command takes effect at the unit's next safe point. */
    for (; k < 300 || (k < 1500 && st->mode != 0x11); k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    cr_assert_eq(st->mode, 0x11, "max-pressure runs the unit centre actuated: %#x", st->mode);
    atomic_store(&t.presence, det4);
    int green4 = 0;
    for (uint64_t end = k + 600; k < end; k++) {
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
        if (k % 10 == 0 && (st->phase_status[2] & (1u << 3)))
            green4++;
    }
    cr_assert_eq(lines.refused, 0);
    cr_assert_geq(lines.switches_to, 1, "no switch towards phase 4");
    cr_assert_geq(green4, 30, "phase 4 green in only %d of 60 polls", green4);
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

typedef struct {
    int to_loaded;     /* mp_switch lines towards the loaded stage */
    int to_loaded_prs; /* of them, for its pressure (SF_MP_PRESSURE) */
    int to_loaded_low; /* of them, with pressure_to <= pressure_from */
    int from_loaded;   /* mp_switch lines away from the loaded stage */
    int from_max;      /* of them, at the loaded stage's maximum green */
    int refused;       /* mp_write_refused lines */
    int loaded;        /* the loaded stage's phase numbers (phase_status bits) */
} mpq_lines_t;

static void mpq_line(void *ctx, const char *line)
{
    mpq_lines_t *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "event line not JSON: %s", line);
    const char *e = json_string_value(json_object_get(j, "event"));
    if (e && strcmp(e, "mp_write_refused") == 0)
        l->refused++;
    if (e && strcmp(e, "mp_switch") == 0) {
        json_int_t to = json_integer_value(json_object_get(j, "to_phases"));
        json_int_t from = json_integer_value(json_object_get(j, "from_phases"));
        json_int_t why = json_integer_value(json_object_get(j, "reason"));
        double p_from = json_number_value(json_object_get(j, "pressure_from"));
        double p_to = json_number_value(json_object_get(j, "pressure_to"));
        if (to == l->loaded) {
            l->to_loaded++;
            l->to_loaded_prs += why == SF_MP_PRESSURE;
            l->to_loaded_low += !(p_to > p_from);
        } else if (from == l->loaded) {
            l->from_loaded++;
            l->from_max += why == SF_MP_MAX_GREEN;
        }
    }
    json_decref(j);
}

/* single.json under max-pressure with a real unit in the lockstepped rig, its stop-bar
 * detectors split by phase: det4 call phase 4, det2 the other phase (2). */
typedef struct {
    sf_scenario_t *sc;
    ctl_rig_t t;
    sf_endpoint_t eps[1];
    sf_controller_t *c;
    const sf_unit_state_t *st;
    uint64_t det2, det4;
    bool pulse2;    /* phase 2's detectors also count a vehicle every 2 s on its green */
    bool light4;    /* phase 4's detectors do not: its waiting vehicles leave at once */
    uint64_t stuck; /* detectors held occupied whatever the signal (stuck on) */
    uint64_t dead;  /* detectors never occupied whatever the traffic (dead) */
    uint64_t k;
} mp_rig_t;

static const uint32_t MP_TOD0 = 7 * 36000;

static void mp_rig_start(mp_rig_t *m, void (*sink)(void *, const char *), void *ctx)
{
    const char *sets[] = {"control.strategy=max_pressure"};
    m->sc = ctl_rig_load("single.json", sets, 1);
    const sf_intersection_t *ix = &m->sc->intersections[0];
    int p4 = -1;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].id == 4)
            p4 = p;
    cr_assert_geq(p4, 0);
    m->det2 = m->det4 = 0;
    for (uint8_t d = 0; d < ix->n_det; d++) {
        if (ix->det[d].kind != SF_DET_PRESENCE)
            continue;
        if (ix->det[d].phase_mask & (1u << p4))
            m->det4 |= (uint64_t)1 << d;
        else if (ix->det[d].phase_mask)
            m->det2 |= (uint64_t)1 << d;
    }
    cr_assert(m->det2 && m->det4, "single.json needs stop-bar detectors on both phases");
    ctl_rig_start(&m->t, m->sc, m->eps, MP_TOD0, &RIG);
    atomic_store(&m->t.presence, m->det2 | m->det4);
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = sink;
    o.sink_ctx = ctx;
    m->c = sf_controller_new(m->sc, m->eps, &o, NULL, 0);
    cr_assert_not_null(m->c);
    m->st = sf_master_state(sf_controller_master(m->c), 0);
    m->k = 0;
}

/* One lockstep step with the detectors as the polled greens leave them: a red phase's
 * stop-bar detectors occupied (its vehicles wait), on green det4's discharge a vehicle
 * every 2 s each (pulses) unless light4, det2's too when pulse2, else they are free
 * (vehicles gone); the stuck ones occupied always, the dead ones never. */
static void mp_rig_step(mp_rig_t *m)
{
    bool g2 = m->st->phase_status[2] & (1u << 1), g4 = m->st->phase_status[2] & (1u << 3);
    atomic_store(&m->t.presence, ((g2 ? 0 : m->det2) | (g4 ? 0 : m->det4) | m->stuck) & ~m->dead);
    atomic_store(&m->t.pulses,
                 ((g2 && m->pulse2 ? m->det2 : 0) | (g4 && !m->light4 ? m->det4 : 0)) & ~m->dead);
    ctl_rig_step_ok(&m->t, m->c, m->k++, MP_TOD0);
}

/* Step until the unit runs centre actuated (max-pressure's mode), at least 300 steps. */
static void mp_rig_actuated(mp_rig_t *m)
{
    while (m->k < 300 || (m->k < 1500 && m->st->mode != 0x11))
        mp_rig_step(m);
    cr_assert_eq(m->st->mode, 0x11, "max-pressure runs the unit centre actuated: %#x", m->st->mode);
}

static void mp_rig_stop(mp_rig_t *m)
{
    sf_controller_destroy(&m->c);
    ctl_rig_stop(&m->t);
    sf_scenario_destroy(&m->sc);
}

/* Max-pressure takes its queues from the counts (linkq), not from stop-bar presence. Both
 * approaches' stop-bar detectors are occupied while their phase is red (vehicles wait on
 * both: presence and a call on both). On green, phase 4's queue discharges without end (a
 * vehicle every 2 s on each of its six lanes, counted), phase 2's waiting vehicles leave at
 * once (its detectors free: one vehicle a lane counted a cycle). Presence alone cannot tell
 * them apart; the counts can. So the controller switches to phase 4 for its pressure with
 * the higher pressure logged, and phase 4 is green far longer than phase 2 (without queue
 * estimates every stage would run to its maximum green in turn). */
Test(controller, max_pressure_serves_the_counted_queue)
{
    mpq_lines_t lines = {.loaded = 1 << 3};
    mp_rig_t m = {.pulse2 = false};
    mp_rig_start(&m, mpq_line, &lines);
    mp_rig_actuated(&m);
    /* two detector intervals (20 s each): the counts have a rate */
    for (uint64_t end = m.k + 400; m.k < end;)
        mp_rig_step(&m);
    mpq_lines_t before = lines;
    /* cycles of about 80 s (phase 4's 45 s maximum, phase 2's green, 2 x 5 s clearance):
     * six, three under the sanitizers */
    const uint64_t span = getenv("SIGFLOW_SANITIZED") ? 2400 : 4800;
    int green2 = 0, green4 = 0;
    for (uint64_t end = m.k + span; m.k < end;) {
        bool poll = m.k % 10 == 0;
        mp_rig_step(&m);
        if (poll) {
            green2 += (m.st->phase_status[2] & (1u << 1)) != 0;
            green4 += (m.st->phase_status[2] & (1u << 3)) != 0;
        }
    }
    cr_assert_eq(lines.refused, 0);
    cr_assert_geq(lines.to_loaded_prs - before.to_loaded_prs, 2,
                  "phase 4 not switched to for its pressure (%d switches to it)",
                  lines.to_loaded - before.to_loaded);
    cr_assert_eq(lines.to_loaded_low - before.to_loaded_low, 0,
                 "%d switches to phase 4 without its pressure higher",
                 lines.to_loaded_low - before.to_loaded_low);
    cr_assert_geq(lines.from_loaded - before.from_loaded, 1, "phase 2's call never served");
    /* phase 2's few vehicles never outweigh phase 4's queue: phase 4 ends at its maximum */
    cr_assert_eq(lines.from_max - before.from_max, lines.from_loaded - before.from_loaded,
                 "phase 4 left before its maximum green %d of %d times",
                 (lines.from_loaded - before.from_loaded) - (lines.from_max - before.from_max),
                 lines.from_loaded - before.from_loaded);
    cr_assert_geq(2 * green4, 3 * green2, "phase 4 green in %d polls, phase 2 in %d", green4,
                  green2);
    mp_rig_stop(&m);
}

typedef struct {
    double pay;        /* factor G / (G - L) a switch's lead must pay (sf_mp_switch_hysteresis) */
    double base;       /* plus this */
    int pressure;      /* mp_switch lines for pressure */
    int unpaid;        /* of them, with a lead below pressure_from x pay + base */
    int held;          /* mp_switch lines at maximum green with the other stage leading by more
                          than base but not enough to pay: held through that lead */
    double min_margin; /* smallest pressure_to - (pressure_from x pay + base) of a pressure
                          switch */
} mph_lines_t;

static void mph_line(void *ctx, const char *line)
{
    mph_lines_t *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "event line not JSON: %s", line);
    const char *e = json_string_value(json_object_get(j, "event"));
    if (e && strcmp(e, "mp_switch") == 0) {
        double p_from = json_number_value(json_object_get(j, "pressure_from"));
        double p_to = json_number_value(json_object_get(j, "pressure_to"));
        json_int_t why = json_integer_value(json_object_get(j, "reason"));
        double m = p_to - (p_from * l->pay + l->base);
        if (why == SF_MP_PRESSURE) {
            l->pressure++;
            l->unpaid += m <= 0;
            if (l->pressure == 1 || m < l->min_margin)
                l->min_margin = m;
        } else if (why == SF_MP_MAX_GREEN && p_to > p_from + l->base && m <= 0) {
            l->held++;
        }
    }
    json_decref(j);
}

/* Max-pressure's switch must pay its lost time. Both approaches loaded alike (counted
 * discharge on green, presence on red): their estimates climb to the links' storage and
 * the stage on red soon leads the green one by a little. A switch ends the green and costs
 * L = the clearance + SF_MP_STARTUP_LOST_S, so it pays only when the other stage's
 * pressure exceeds the current one's x G / (G - L) (G: the next stage's 45 s maximum;
 * sf_mp_switch_hysteresis) plus the base. Every pressure switch logged must show that
 * lead, and the green must be held to its maximum through a smaller lead (which a switch
 * on the base alone would have taken: it then switches for pressure at once). */
Test(controller, max_pressure_switches_only_when_the_lead_pays_the_lost_time)
{
    mph_lines_t lines = {.base = 0.25}; /* base: SF_MP_HYSTERESIS */
    mp_rig_t m = {.pulse2 = true};      /* both approaches loaded alike */
    mp_rig_start(&m, mph_line, &lines);
    const sf_intersection_t *ix = &m.sc->intersections[0];
    double lost_s = 0, max_s = 1e9;
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        const sf_phase_t *ph = &ix->phases[p];
        lost_s = fmax(lost_s, (ph->yellow_ds + ph->red_clear_ds) / 10.0 + SF_MP_STARTUP_LOST_S);
        max_s = fmin(max_s, fmax(ph->max1_ds, ph->max2_ds) / 10.0);
    }
    cr_assert_eq(ix->n_phases, 2, "one phase a stage: each switch costs the same");
    cr_assert_gt(max_s, lost_s);
    lines.pay = max_s / (max_s - lost_s); /* read by mph_line from the first step on */
    mp_rig_actuated(&m);
    /* about 80 s a cycle: six, five under the sanitizers */
    const uint64_t span = getenv("SIGFLOW_SANITIZED") ? 4000 : 4800;
    for (uint64_t end = m.k + span; m.k < end;)
        mp_rig_step(&m);
    cr_assert_geq(lines.pressure, 1, "no switch for pressure at all");
    cr_assert_eq(lines.unpaid, 0,
                 "%d of %d pressure switches on a lead that does not pay the lost time "
                 "(margin %.2f)",
                 lines.unpaid, lines.pressure, lines.min_margin);
    cr_assert_geq(lines.held, 2, "held through an unpaid lead to maximum green only %d times",
                  lines.held);
    mp_rig_stop(&m);
}

typedef struct {
    int failed;  /* detector_failed lines */
    int to4_max; /* mp_switch lines away from phase 4 at its maximum green */
    int from4;   /* mp_switch lines away from phase 4 */
} mps_lines_t;

static void mps_line(void *ctx, const char *line)
{
    mps_lines_t *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "event line not JSON: %s", line);
    const char *e = json_string_value(json_object_get(j, "event"));
    if (e && strcmp(e, "detector_failed") == 0)
        l->failed++;
    if (e && strcmp(e, "mp_switch") == 0 &&
        json_integer_value(json_object_get(j, "from_phases")) == 1 << 3) {
        l->from4++;
        l->to4_max += json_integer_value(json_object_get(j, "reason")) == SF_MP_MAX_GREEN;
    }
    json_decref(j);
}

/* Max-pressure with a stuck-on detector: both approaches light (their waiting vehicles
 * leave at once when green), one of phase 4's stop-bar detectors stuck on. Trusted, that
 * lane's queue reads the link's storage and phase 4 runs to its maximum green every cycle
 * (measured without the diagnosis: 6 of 6 times, phase 4 green in 282 polls, phase 2 in
 * 138); once the controller has failed it (a fault event) linkq ignores it, and phase 4,
 * as light as phase 2, ends before its maximum and has no more green than phase 2 (207 /
 * 186 polls measured). */
Test(controller, max_pressure_ignores_a_stuck_detector)
{
    mps_lines_t lines = {0};
    mp_rig_t m = {.pulse2 = false, .light4 = true}; /* both light */
    mp_rig_start(&m, mps_line, &lines);
    m.stuck = m.det4 & -m.det4; /* phase 4's first stop-bar detector */
    mp_rig_actuated(&m);
    while (lines.failed == 0 && m.k < 6000)
        mp_rig_step(&m);
    cr_assert_eq(lines.failed, 1, "stuck detector not failed (%d)", lines.failed);
    mps_lines_t before = lines;
    const uint64_t span = getenv("SIGFLOW_SANITIZED") ? 2400 : 4800;
    int green2 = 0, green4 = 0;
    for (uint64_t end = m.k + span; m.k < end;) {
        bool poll = m.k % 10 == 0;
        mp_rig_step(&m);
        if (poll) {
            green2 += (m.st->phase_status[2] & (1u << 1)) != 0;
            green4 += (m.st->phase_status[2] & (1u << 3)) != 0;
        }
    }
    int from4 = lines.from4 - before.from4, at_max = lines.to4_max - before.to4_max;
    cr_assert_geq(from4, 2, "phase 4 ended %d times", from4);
    cr_assert_eq(at_max, 0, "phase 4 ran to its maximum %d of %d times", at_max, from4);
    cr_assert_leq(4 * green4, 5 * green2, "phase 4 green in %d polls, phase 2 in %d", green4,
                  green2);
    mp_rig_stop(&m);
}

typedef struct {
    int failed, recovered; /* detector_failed / detector_recovered lines */
    int dead_rule;         /* detector_failed lines of the dead detector by no activity */
    char dead_id[SF_ID_LEN];
} mpd_lines_t;

static void mpd_line(void *ctx, const char *line)
{
    mpd_lines_t *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "event line not JSON: %s", line);
    const char *e = json_string_value(json_object_get(j, "event"));
    const char *id = json_string_value(json_object_get(j, "detector"));
    const char *rule = json_string_value(json_object_get(j, "rule"));
    if (e && strcmp(e, "detector_failed") == 0) {
        l->failed++;
        l->dead_rule +=
            id && rule && strcmp(id, l->dead_id) == 0 && strcmp(rule, "no_activity") == 0;
    }
    if (e && strcmp(e, "detector_recovered") == 0 && id && strcmp(id, l->dead_id) == 0)
        l->recovered++;
    json_decref(j);
}

/* A dead stop-bar detector (never occupied, never counting) on the loaded phase 4's
 * approach while the detectors next to it count: the controller fails it by no activity,
 * once, and logs its recovery when it counts again; the others, phase 2's quiet ones
 * included, are not failed. */
Test(controller, dead_detector_is_failed_by_no_activity)
{
    mpd_lines_t lines = {0};
    mp_rig_t m = {.pulse2 = false};
    mp_rig_start(&m, mpd_line, &lines);
    const sf_intersection_t *ix = &m.sc->intersections[0];
    m.dead = m.det4 & -m.det4; /* phase 4's first stop-bar detector */
    for (uint8_t d = 0; d < ix->n_det; d++)
        if (m.dead >> d & 1u)
            snprintf(lines.dead_id, sizeof lines.dead_id, "%s", ix->det[d].id);
    mp_rig_actuated(&m);
    /* 600 s of silence after the first interval, and a few intervals' margin */
    while (lines.failed == 0 && m.k < 9000)
        mp_rig_step(&m);
    cr_assert_eq(lines.dead_rule, 1, "dead detector %s not failed by no activity", lines.dead_id);
    cr_assert_eq(lines.failed, 1);
    m.dead = 0;
    for (uint64_t end = m.k + 900; m.k < end && lines.recovered == 0;)
        mp_rig_step(&m);
    cr_assert_eq(lines.recovered, 1);
    cr_assert_eq(lines.failed, 1);
    mp_rig_stop(&m);
}

typedef struct {
    int steps;    /* scats_step lines */
    int verified; /* plan_verified lines of an adaptive plan */
} ad_lines_t;

static void ad_line(void *ctx, const char *line)
{
    ad_lines_t *l = ctx;
    l->steps += strstr(line, "\"scats_step\"") != NULL;
    l->verified += strstr(line, "\"plan_verified\"") && strstr(line, "\"adaptive\":true");
}

/* SCATS-like: heavy counts on phase 2's detectors only: the controller downloads an
 * adapted plan (spare plan number), verifies it, selects it, and phase 2 gets more green. */
Test(controller, adaptive_gives_green_to_the_loaded_phase)
{
    const char *sets[] = {"control.strategy=adaptive"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 1);
    const sf_intersection_t *ix = &sc->intersections[0];
    int p2 = -1;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (ix->phases[p].id == 2)
            p2 = p;
    uint64_t det2 = 0;
    for (uint8_t d = 0; d < ix->n_det; d++)
        if (ix->det[d].phase_mask & (1u << p2))
            det2 |= (uint64_t)1 << d;
    cr_assert(det2);
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.pulses, det2);
    ad_lines_t lines = {0};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = ad_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    uint64_t k = 0;
    for (; k < 6000 && !(st->active_plan >= 15); k++)
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
    cr_assert_geq(lines.steps, 1, "no adaptation step");
    cr_assert_geq(lines.verified, 1, "adapted plan not verified");
    cr_assert_geq(st->active_plan, 15, "adapted plan not running (plan %u)", st->active_plan);
    uint8_t adapted = (uint8_t)st->active_plan;
    sf_controller_destroy(&c);
    /* Read both plans back from the unit: phase 2 got a larger share of the cycle. */
    sf_master_t *m = sf_master_new(1, eps, NULL, NULL);
    cr_assert_not_null(m);
    double share[2];
    const uint8_t plans[2] = {1, adapted};
    for (int j = 0; j < 2; j++) {
        int h = sf_master_queue_plan_read(m, 0, plans[j]);
        cr_assert_geq(h, 0);
        cr_assert_eq(sf_master_run(m, j), 1);
        const sf_plan_t *rd = &sf_master_state(m, 0)->plan_rd;
        cr_assert_eq(rd->id, plans[j]);
        share[j] = (double)rd->split_ds[2 - 1] / rd->cycle_ds;
    }
    cr_assert_gt(share[1], share[0], "phase 2 share %.3f -> %.3f", share[0], share[1]);
    sf_master_destroy(&m);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

/* The first scats_step line, parsed (split failures end to end). */
typedef struct {
    int steps;
    json_t *first;
} sf_lines_t;

static void sf_line(void *ctx, const char *line)
{
    sf_lines_t *l = ctx;
    if (!strstr(line, "\"scats_step\""))
        return;
    l->steps++;
    if (!l->first)
        l->first = json_loads(line, 0, NULL);
}

/* Run single.json adaptive (rule on or off) with phase 4's detectors held occupied and
 * phase 2's pulsed until the first adaptation step; its event line (caller decrefs). */
static json_t *first_scats_step(bool rule)
{
    const char *sets[] = {"control.strategy=adaptive",
                          rule ? "control.adaptive_split_failure=true"
                               : "control.adaptive_split_failure=false"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 2);
    const sf_intersection_t *ix = &sc->intersections[0];
    uint64_t held = 0, pulsed = 0;
    for (uint8_t d = 0; d < ix->n_det; d++)
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (ix->det[d].phase_mask >> p & 1u) {
                if (ix->phases[p].id == 4)
                    held |= (uint64_t)1 << d;
                else
                    pulsed |= (uint64_t)1 << d;
            }
    cr_assert(held && pulsed);
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.presence, held);
    atomic_store(&t.pulses, pulsed);
    sf_lines_t lines = {0};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = sf_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    for (uint64_t k = 0; k < 6000 && lines.steps == 0; k++)
        ctl_rig_step_ok(&t, c, k, tod0);
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
    cr_assert_not_null(lines.first, "no adaptation step (rule %d)", rule);
    return lines.first;
}

/* Split failures from the unit's status and presence: phase 4's detectors held occupied
 * (a queue that never clears) fail every green it had; phase 2's, a vehicle every 2 s,
 * leave the start of its red half free and never fail. With the rule, phase 4 reads the
 * failure DS (fail_ds 1.05, above what its counts give); without, its DS comes from the
 * counts (a held detector counts no vehicles) and the side-street floor only. */
Test(controller, adaptive_split_failures_from_unit_status)
{
    sf_adapt_opts_t ao;
    sf_adapt_opts_default(&ao);
    json_t *on = first_scats_step(true);
    json_t *off = first_scats_step(false);
    /* phase index 0 = phase 2, 1 = phase 4 (single.json) */
    /* The held detectors look stuck on to the detector diagnosis once held max_presence_s
     * (stuck_detectors_are_failed_and_ignored_by_adaptive): this step must be measured
     * before that, or it would see them failed and skipped, not failing every green. */
    sf_detdiag_opts_t dd;
    sf_detdiag_opts_default(&dd);
    for (int k = 0; k < 2; k++) {
        double t_step = json_real_value(json_object_get(k ? off : on, "t"));
        cr_assert(t_step > 0 && t_step < dd.max_presence_s,
                  "the first adaptation step at %.1f s, the diagnosis fails held detectors at "
                  "%.0f s: this test needs a step before it (decide_every_s %.0f)",
                  t_step, dd.max_presence_s, ao.decide_every_s);
    }
    json_t *sf = json_object_get(on, "split_failures");
    cr_assert(json_is_array(sf) && json_array_size(sf) == 2);
    json_int_t f2 = json_integer_value(json_array_get(json_array_get(sf, 0), 0));
    json_int_t n2 = json_integer_value(json_array_get(json_array_get(sf, 0), 1));
    json_int_t f4 = json_integer_value(json_array_get(json_array_get(sf, 1), 0));
    json_int_t n4 = json_integer_value(json_array_get(json_array_get(sf, 1), 1));
    cr_assert_geq(n4, 2, "phase 4 greens judged: %lld", (long long)n4);
    cr_assert_eq(f4, n4, "phase 4 failed %lld of %lld", (long long)f4, (long long)n4);
    cr_assert_geq(n2, 2, "phase 2 greens judged: %lld", (long long)n2);
    cr_assert_eq(f2, 0, "phase 2 failed %lld of %lld", (long long)f2, (long long)n2);
    double ds4_on = json_real_value(json_array_get(json_object_get(on, "ds"), 1));
    double ds4_off = json_real_value(json_array_get(json_object_get(off, "ds"), 1));
    cr_assert_float_eq(ds4_on, ao.fail_ds, 1e-3);
    cr_assert_lt(ds4_off, ao.fail_ds - 0.1, "without the rule: %.3f", ds4_off);
    /* ds_flow is what the counts alone read, before failures and the floor raise it: a held
     * detector counts only its first arrival (phase 4 reads ~0 whatever the rule, while the DS
     * it is given is raised); phase 2's pulses are counted, and its DS is never below them */
    for (int k = 0; k < 2; k++) {
        json_t *ev = k ? off : on;
        json_t *df = json_object_get(ev, "ds_flow"), *du = json_object_get(ev, "ds");
        cr_assert(json_is_array(df) && json_array_size(df) == 2, "ds_flow (rule %d)", !k);
        double f4_flow = json_real_value(json_array_get(df, 1));
        cr_assert_lt(f4_flow, 0.1, "phase 4 flow DS %.3f (rule %d)", f4_flow, !k);
        cr_assert_gt(json_real_value(json_array_get(du, 1)), f4_flow + 0.5);
        double f2_flow = json_real_value(json_array_get(df, 0));
        cr_assert_gt(f2_flow, 0.0);
        cr_assert_leq(f2_flow, json_real_value(json_array_get(du, 0)) + 1e-9);
    }
    /* the same failures were measured without the rule: only their use differs */
    json_t *sf_off = json_object_get(off, "split_failures");
    cr_assert_eq(json_integer_value(json_array_get(json_array_get(sf_off, 1), 0)),
                 json_integer_value(json_array_get(json_array_get(sf_off, 1), 1)));
    json_decref(on);
    json_decref(off);
}

/* Detector diagnostics end to end: what the event sink saw. */
typedef struct {
    int failed;         /* detector_failed lines */
    int failed_rule;    /* of them, by max presence on a held detector */
    int recovered;      /* detector_recovered lines */
    int steps_after;    /* scats_step lines after the last failure */
    json_t *step_after; /* the first of them */
    char held_ids[8][SF_ID_LEN];
    int n_held;
} dd_lines_t;

static void dd_line(void *ctx, const char *line)
{
    dd_lines_t *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "event line not JSON: %s", line);
    const char *e = json_string_value(json_object_get(j, "event"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (e && (strcmp(e, "detector_failed") == 0 || strcmp(e, "detector_recovered") == 0)) {
        cr_assert_str_eq(kind, "fault");
        const char *id = json_string_value(json_object_get(j, "detector"));
        const char *rule = json_string_value(json_object_get(j, "rule"));
        cr_assert(id && rule, "%s", line);
        bool held = false;
        for (int k = 0; k < l->n_held; k++)
            held = held || strcmp(id, l->held_ids[k]) == 0;
        if (e[9] == 'f') {
            l->failed++;
            l->failed_rule += held && strcmp(rule, "max_presence") == 0;
            l->steps_after = 0;
        } else {
            l->recovered += held;
        }
    } else if (e && strcmp(e, "scats_step") == 0 && l->failed > 0) {
        if (l->steps_after++ == 0) {
            json_decref(l->step_after);
            l->step_after = json_incref(j);
        }
    }
    json_decref(j);
}

/* Phase 4's lane-0 stop-bar detectors stuck on at the unit's inputs (held from the start:
 * no count, presence at every poll, through every green of phase 4) while the other lanes
 * of their approaches and phase 2's count: the movement discharges past the stuck ones.
 * The controller fails each stuck detector once by max presence (a fault event with its
 * id), the adaptive step after it still measures phase 4 (from its working detectors) and
 * phase 2, and freeing them logs their recovery. (Every lane held is a standing queue to the
 * diagnosis until max_presence_alone_s: detdiag.h.) */
Test(controller, stuck_detectors_are_failed_and_ignored_by_adaptive)
{
    const char *sets[] = {"control.strategy=adaptive"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 1);
    const sf_intersection_t *ix = &sc->intersections[0];
    dd_lines_t lines = {0};
    uint64_t held = 0, pulsed = 0;
    for (uint8_t d = 0; d < ix->n_det; d++)
        for (uint8_t p = 0; p < ix->n_phases; p++)
            if (ix->det[d].phase_mask >> p & 1u) {
                if (ix->phases[p].id == 4 && ix->det[d].lane == 0) {
                    held |= (uint64_t)1 << d;
                    cr_assert_lt(lines.n_held, 8);
                    snprintf(lines.held_ids[lines.n_held++], SF_ID_LEN, "%s", ix->det[d].id);
                } else
                    pulsed |= (uint64_t)1 << d;
            }
    cr_assert(held && pulsed);
    sf_endpoint_t eps[1];
    ctl_rig_t t;
    const uint32_t tod0 = 7 * 36000;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.presence, held);
    atomic_store(&t.pulses, pulsed);
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = dd_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    uint64_t k = 0;
    for (; k < 9000 && lines.steps_after == 0; k++)
        ctl_rig_step_ok(&t, c, k, tod0);
    cr_assert_eq(lines.failed, lines.n_held, "%d detectors failed, %d held", lines.failed,
                 lines.n_held);
    cr_assert_eq(lines.failed_rule, lines.n_held);
    cr_assert_not_null(lines.step_after, "no adaptation step after the diagnosis");
    json_t *ds = json_object_get(lines.step_after, "ds");
    cr_assert(json_is_array(ds) && json_array_size(ds) == 2);
    /* phase index 1 = phase 4 (single.json): still measured, from its counting lanes */
    cr_assert_geq(json_number_value(json_array_get(ds, 1)), 0.0);
    cr_assert_gt(json_number_value(json_array_get(ds, 0)), 0.0, "phase 2 still measured");
    /* Split failures [failed, judged] per phase. Before the diagnosis the held detectors made
     * every phase-4 green a failure (occupied through green and red); those judgments rest on
     * detectors now known to be stuck, so the diagnosis drops them from the measurement, as
     * adapt_ds drops the failed detectors' counts. The greens judged after it read only the
     * pulsed lanes (occupied 1 s of every 2 s: ROR5 below 0.8), so none fails. Measured
     * before the fix: [2, 4], the 2 failures from greens ended before the diagnosis. */
    json_t *sfl = json_object_get(lines.step_after, "split_failures");
    cr_assert(json_is_array(sfl) && json_array_size(sfl) == 2);
    json_t *p4 = json_array_get(sfl, 1), *p2 = json_array_get(sfl, 0);
    cr_assert_eq(json_integer_value(json_array_get(p4, 0)), 0,
                 "phase 4: %lld of %lld greens failed after its stuck detectors were failed",
                 (long long)json_integer_value(json_array_get(p4, 0)),
                 (long long)json_integer_value(json_array_get(p4, 1)));
    cr_assert_geq(json_integer_value(json_array_get(p4, 1)), 1, "phase 4's greens still judged");
    cr_assert_eq(json_integer_value(json_array_get(p2, 0)), 0);
    cr_assert_geq(json_integer_value(json_array_get(p2, 1)), 1);
    json_t *rep = sf_controller_report(c);
    json_int_t faults =
        json_integer_value(json_object_get(json_object_get(rep, "events"), "fault"));
    cr_assert_geq(faults, lines.n_held);
    json_decref(rep);
    /* freed: recovered at the next poll, once each */
    atomic_store(&t.presence, 0);
    for (uint64_t end = k + 20; k < end; k++)
        ctl_rig_step_ok(&t, c, k, tod0);
    cr_assert_eq(lines.recovered, lines.n_held);
    json_decref(lines.step_after);
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

/* --greenwave: the coordinated plans run the optimiser's offsets, whose bandwidth is at
 * least that of the scenario's own offsets. */
Test(controller, greenwave_offsets_from_the_optimiser)
{
    sf_scenario_t *sc = ctl_rig_load("xiantao-corridor.json", NULL, 0);
    sf_endpoint_t eps[64];
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = (uint16_t)(1 + i); /* never contacted: the test makes no step */
    }
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.greenwave = true;
    char err[200] = "";
    sf_controller_t *c = sf_controller_new(sc, eps, &o, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 0, .line_idx = -1};
    sf_gw_corridor_t cor;
    uint32_t node_ix[SF_GW_MAX_NODES];
    uint8_t plan_idx[SF_GW_MAX_NODES];
    cr_assert_eq(sf_gw_from_scenario(sc, &src, &cor, node_ix, plan_idx, err, sizeof err), 0, "%s",
                 err);
    double applied[SF_GW_MAX_NODES], scen[SF_GW_MAX_NODES];
    for (uint32_t j = 0; j < cor.n; j++) {
        const sf_plan_t *p = &sc->intersections[node_ix[j]].plans[plan_idx[j]];
        int off = sf_controller_offset(c, node_ix[j], p->id);
        cr_assert_geq(off, 0);
        cr_assert_lt(off, p->cycle_ds);
        applied[j] = off / 10.0;
        scen[j] = p->offset_ds / 10.0;
    }
    /* Only relative offsets matter: shift both so node 0 is at 0. */
    for (uint32_t j = cor.n; j-- > 0;) {
        applied[j] = fmod(applied[j] - applied[0] + 10 * cor.cycle_s, cor.cycle_s);
        scen[j] = fmod(scen[j] - scen[0] + 10 * cor.cycle_s, cor.cycle_s);
    }
    sf_gw_band_t b_applied, b_scen;
    cr_assert_eq(sf_gw_bandwidth(&cor, applied, &b_applied), 0);
    cr_assert_eq(sf_gw_bandwidth(&cor, scen, &b_scen), 0);
    cr_assert_geq(b_applied.b_out_s + b_applied.b_in_s + 0.2, b_scen.b_out_s + b_scen.b_in_s,
                  "optimised %.1f + %.1f s vs scenario %.1f + %.1f s", b_applied.b_out_s,
                  b_applied.b_in_s, b_scen.b_out_s, b_scen.b_in_s);
    cr_assert_gt(b_applied.b_out_s + b_applied.b_in_s, 0);
    sf_controller_destroy(&c);
    sf_scenario_destroy(&sc);
}

/* Bus messages feed the TSP: a TransitCheckIn for a unit that cannot be reached is
 * decided "offline"; other message types are refused. */
Test(controller, transit_from_bus_messages)
{
    const char *sets[] = {"control.priority.enabled=true"};
    sf_scenario_t *sc = ctl_rig_load("single.json", sets, 1);
    sf_endpoint_t ep = {.host = "127.0.0.1", .port = 1}; /* nothing listens on port 1 */
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    sf_controller_t *c = sf_controller_new(sc, &ep, &o, NULL, 0);
    cr_assert_not_null(c);
    Sfbus__TransitCheckIn in;
    sfbus__transit_check_in__init(&in);
    in.version = SF_BUS_VERSION;
    in.bus_id = "B9-001";
    in.line = "B9";
    in.ix = 0;
    in.movement = 0;
    in.eta_s = 20;
    in.lateness_s = sc->control.priority.lateness_threshold_s + 60;
    cr_assert_eq(sf_controller_transit_msg(c, &in.base), 0);
    cr_assert_eq(sf_controller_step(c, 0, 7 * 36000), 0);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.requests, 1);
    cr_assert_eq(cnt.by_reason[SF_TSP_R_OFFLINE], 1);
    Sfbus__Done done;
    sfbus__done__init(&done);
    errno = 0;
    cr_assert_eq(sf_controller_transit_msg(c, &done.base), -1);
    cr_assert_eq(errno, EINVAL);
    in.ix = 99;
    cr_assert_eq(sf_controller_transit_msg(c, &in.base), -1);
    sf_controller_destroy(&c);
    sf_scenario_destroy(&sc);
}

/* A master that has read back plan plan_no[i] of every unit i (into sf_master_state(m,
 * i)->plan_rd) after a test's controller is gone; the caller destroys it. Rounds of up to
 * 5 s each (the default 200 ms is a control loop's budget) repeat for the units whose read
 * did not come back, until every unit has answered: a loaded machine (ASan, load ~10) can
 * miss one round's wall-clock bound, and a single round failed this test once. The round
 * clock moves 60 s a round, past any back-off (health: at most 30 s), so a missed unit is
 * asked again at once. 20 rounds without an answer is a hang, not a slow machine. */
static sf_master_t *readback_plans(size_t n, const sf_endpoint_t *eps, const uint8_t *plan_no)
{
    sf_master_opts_t mo;
    sf_master_opts_default(&mo);
    mo.round_timeout_ms = 5000;
    sf_master_t *m = sf_master_new(n, eps, NULL, &mo);
    cr_assert_not_null(m);
    cr_assert_leq(n, 64);
    bool done[64] = {false};
    int h[64];
    size_t left = n;
    int rounds = 0;
    for (int64_t now_ds = 1; left > 0 && rounds < 20; rounds++, now_ds += 600) {
        for (size_t i = 0; i < n; i++)
            if (!done[i]) {
                h[i] = sf_master_queue_plan_read(m, i, plan_no[i]);
                cr_assert_geq(h[i], 0);
            }
        cr_assert_geq(sf_master_run(m, now_ds), 0, "%s", strerror(errno));
        for (size_t i = 0; i < n; i++)
            if (!done[i] && sf_master_outcome(m, i, h[i]) == SF_MREQ_OK) {
                done[i] = true;
                left--;
            }
    }
    cr_assert_eq(left, 0, "%zu of %zu units never answered the plan read-back in %d rounds", left,
                 n, rounds);
    return m;
}

/* Coordinated adaptive corridor: counts on one intersection only, yet every adapted plan
 * runs the same (group) cycle, so coordination holds. */
Test(controller, adaptive_corridor_keeps_a_common_cycle)
{
    const char *sets[] = {"control.strategy=adaptive"};
    sf_scenario_t *sc = ctl_rig_load("xiantao-corridor.json", sets, 1);
    const sf_intersection_t *ix0 = &sc->intersections[0];
    uint64_t det = 0;
    for (uint8_t d = 0; d < ix0->n_det; d++)
        det |= (uint64_t)1 << d;
    sf_endpoint_t eps[64];
    ctl_rig_t t;
    const uint32_t tod0 = sc->run.start_tod_s * 10;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.pulses, det);
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    const sf_master_t *cm = sf_controller_master(c);
    uint64_t k = 0;
    bool all = false;
    /* Every unit runs an adapted plan after 3471 steps here (no poll missed, plain and
     * ASan); the bound only ends a hang: a loaded machine that misses polls (1 s rounds)
     * delays the adaptation in steps too. */
    for (; k < 20000 && !all; k++) {
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
        all = true;
        for (uint32_t i = 0; i < sc->n_intersections; i++)
            all = all && sf_master_state(cm, i)->active_plan >= 15;
    }
    cr_assert(all, "not every intersection runs an adapted plan after %llu steps",
              (unsigned long long)k);
    uint8_t plan_no[64];
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        plan_no[i] = (uint8_t)sf_master_state(cm, i)->active_plan;
    sf_controller_destroy(&c);
    sf_master_t *m = readback_plans(sc->n_intersections, eps, plan_no);
    uint16_t cyc0 = sf_master_state(m, 0)->plan_rd.cycle_ds;
    cr_assert_gt(cyc0, 0);
    for (uint32_t i = 1; i < sc->n_intersections; i++)
        cr_assert_eq(sf_master_state(m, i)->plan_rd.cycle_ds, cyc0, "%s runs %u, %s %u",
                     sc->intersections[i].id, sf_master_state(m, i)->plan_rd.cycle_ds, ix0->id,
                     cyc0);
    sf_master_destroy(&m);
    ctl_rig_stop(&t);
    sf_scenario_destroy(&sc);
}

typedef struct {
    json_t *replan;  /* the first greenwave_replan event */
    json_t *step[8]; /* the scats_step events of the same decision, by intersection index */
    int n_replan;    /* greenwave_replan events */
    const sf_scenario_t *sc;
} gw_lines_t;

static void gw_line(void *ctx, const char *line)
{
    gw_lines_t *l = ctx;
    if (strstr(line, "\"greenwave_replan\"")) {
        if (l->n_replan++ == 0)
            l->replan = json_loads(line, 0, NULL);
        return;
    }
    if (l->n_replan != 1 || !strstr(line, "\"scats_step\""))
        return;
    json_t *j = json_loads(line, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "ix"));
    for (uint32_t i = 0; id && i < l->sc->n_intersections && i < 8; i++)
        if (strcmp(l->sc->intersections[i].id, id) == 0 && !l->step[i]) {
            l->step[i] = j;
            return;
        }
    json_decref(j);
}

/* control.greenwave.adaptive_replan: at the group's first decision the controller runs the
 * corridor's optimiser again for the members' next plans; the offsets it sends (and the
 * units then run) are the ones whose band it reports, in the kept wave's direction. */
Test(controller, adaptive_corridor_replans_the_green_wave, .timeout = 120)
{
    const char *sets[] = {"control.strategy=adaptive", "control.greenwave.adaptive_replan=true"};
    sf_scenario_t *sc = ctl_rig_load("xiantao-corridor.json", sets, 2);
    cr_assert_eq(sc->n_intersections, 8);
    const sf_intersection_t *ix0 = &sc->intersections[0];
    uint64_t det = 0;
    for (uint8_t d = 0; d < ix0->n_det; d++)
        det |= (uint64_t)1 << d;
    sf_endpoint_t eps[64];
    ctl_rig_t t;
    const uint32_t tod0 = sc->run.start_tod_s * 10;
    ctl_rig_start(&t, sc, eps, tod0, &RIG);
    atomic_store(&t.pulses, det);
    gw_lines_t lines = {.sc = sc};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.greenwave = sc->control.greenwave.enabled; /* what sigflow run does */
    o.sink = gw_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, eps, &o, NULL, 0);
    cr_assert_not_null(c);
    const sf_master_t *cm = sf_controller_master(c);
    bool all = false;
    uint64_t k = 0;
    for (; k < 8000 && !all; k++) {
        cr_assert_eq(ctl_rig_step(&t, c, k, tod0), 0);
        all = lines.n_replan == 1;
        for (uint32_t i = 0; i < 8 && all; i++)
            all = lines.step[i] && sf_master_state(cm, i)->active_plan ==
                                       json_integer_value(json_object_get(lines.step[i], "plan"));
    }
    cr_assert(all, "no replanned decision running everywhere after %llu steps (%d replans)",
              (unsigned long long)k, lines.n_replan);
    /* what the units run: the offsets the decision sent */
    uint16_t running_off[8];
    uint8_t plan_no[8];
    for (uint32_t i = 0; i < 8; i++)
        plan_no[i] = (uint8_t)json_integer_value(json_object_get(lines.step[i], "plan"));
    sf_master_t *m = readback_plans(8, eps, plan_no);
    for (uint32_t i = 0; i < 8; i++)
        running_off[i] = sf_master_state(m, i)->plan_rd.offset_ds;
    sf_master_destroy(&m);
    sf_controller_destroy(&c);
    ctl_rig_stop(&t);

    /* the corridor with the sent plans: the band of the sent offsets is the one reported */
    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 0, .line_idx = -1, .queue_clearance = true};
    sf_gw_corridor_t cor;
    uint32_t node[SF_GW_MAX_NODES];
    char err[200] = "";
    cr_assert_eq(sf_gw_from_scenario(sc, &src, &cor, node, NULL, err, sizeof err), 0, "%s", err);
    sf_plan_t pl[8];
    double off[8];
    for (uint32_t q = 0; q < cor.n; q++) {
        const sf_intersection_t *ix = &sc->intersections[node[q]];
        json_t *st = lines.step[node[q]];
        pl[q] = ix->plans[0];
        pl[q].cycle_ds = (uint16_t)json_integer_value(json_object_get(st, "to_cycle_ds"));
        json_t *spl = json_object_get(st, "split_ds");
        cr_assert_eq(json_array_size(spl), ix->n_phases);
        for (uint8_t p = 0; p < ix->n_phases; p++)
            pl[q].split_ds[p] = (uint16_t)json_integer_value(json_array_get(spl, p));
        pl[q].offset_ds = (uint16_t)json_integer_value(json_object_get(st, "offset_ds"));
        cr_assert_eq(running_off[node[q]], pl[q].offset_ds, "%s", ix->id);
        off[q] = pl[q].offset_ds / 10.0;
    }
    cr_assert_eq(json_integer_value(json_object_get(lines.replan, "cycle_ds")), pl[0].cycle_ds);
    cr_assert_eq(sf_gw_relay(sc, node, pl, &cor), 0);
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&cor, off, &b), 0);
    bool taken = json_is_true(json_object_get(lines.replan, "taken"));
    const char *kout = taken ? "new_out_s" : "kept_out_s", *kin = taken ? "new_in_s" : "kept_in_s";
    cr_assert_float_eq(b.b_out_s, json_real_value(json_object_get(lines.replan, kout)), 0.15, "%f",
                       b.b_out_s);
    cr_assert_float_eq(b.b_in_s, json_real_value(json_object_get(lines.replan, kin)), 0.15, "%f",
                       b.b_in_s);
    /* the scenario's wave is eastbound (sigflow plan greenwave): it stays so */
    cr_assert_gt(b.b_out_s, 0);
    cr_assert_geq(b.b_out_s, b.b_in_s);
    if (taken) {
        double kept = json_real_value(json_object_get(lines.replan, "kept_out_s"));
        cr_assert_gt(b.b_out_s, kept, "taken only when it beats the kept offsets");
    }
    json_decref(lines.replan);
    for (uint32_t i = 0; i < 8; i++)
        json_decref(lines.step[i]);
    sf_scenario_destroy(&sc);
}

/* ---- a device that implements the map's registers as plain memory (libmodbus's own
 * server and mapping): it takes every write but stores no plan, so the read-back of a
 * downloaded plan never matches. ---- */
typedef struct {
    modbus_t *ctx;        /* server context */
    modbus_mapping_t *mb; /* registers */
    int listen_fd;        /* listening socket */
    uint16_t port;        /* its port */
    pthread_t th;         /* serving thread */
    atomic_bool stop;     /* end it */
} plain_dev_t;

static void *plain_serve(void *arg)
{
    plain_dev_t *d = arg;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!atomic_load(&d->stop)) {
        struct pollfd p = {.fd = d->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = d->listen_fd;
        if (modbus_tcp_accept(d->ctx, &fd) < 0)
            continue;
        while (!atomic_load(&d->stop)) {
            int n = modbus_receive(d->ctx, q);
            if (n == 0 || (n < 0 && errno == ETIMEDOUT))
                continue;
            if (n < 0 || modbus_reply(d->ctx, q, n, d->mb) < 0)
                break;
        }
        modbus_close(d->ctx);
    }
    return NULL;
}

static void plain_start(plain_dev_t *d, const sf_intersection_t *ix)
{
    d->ctx = modbus_new_tcp("127.0.0.1", 0);
    cr_assert_not_null(d->ctx);
    modbus_set_indication_timeout(d->ctx, 0, 100000);
    d->mb = modbus_mapping_new(80, 64, 500, 700);
    cr_assert_not_null(d->mb);
    uint16_t *ir = d->mb->tab_input_registers;
    ir[sf_regmap_get(SF_R_PROTOCOL_VERSION)->address] = SF_REGMAP_VERSION;
    ir[sf_regmap_get(SF_R_N_PHASES)->address] = ix->n_phases;
    ir[sf_regmap_get(SF_R_N_PLANS)->address] = ix->n_plans;
    uint16_t id_at = sf_regmap_get(SF_R_UNIT_ID)->address;
    for (size_t i = 0; ix->id[i]; i += 2)
        ir[id_at + i / 2] =
            (uint16_t)(((uint8_t)ix->id[i] << 8) | (ix->id[i + 1] ? (uint8_t)ix->id[i + 1] : 0));
    ir[sf_regmap_get(SF_R_CONTROL_MODE)->address] = 0x10;
    d->listen_fd = modbus_tcp_listen(d->ctx, 1);
    cr_assert_geq(d->listen_fd, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(d->listen_fd, (struct sockaddr *)&sa, &len);
    d->port = ntohs(sa.sin_port);
    atomic_store(&d->stop, false);
    cr_assert_eq(pthread_create(&d->th, NULL, plain_serve, d), 0);
}

static void plain_stop(plain_dev_t *d)
{
    atomic_store(&d->stop, true);
    pthread_join(d->th, NULL);
    close(d->listen_fd);
    modbus_mapping_free(d->mb);
    modbus_free(d->ctx);
}

typedef struct {
    int mismatch_retry; /* plan_readback_mismatch lines with retry true */
    int mismatch_final; /* ... with retry false */
} rb_lines_t;

static void rb_line(void *ctx, const char *line)
{
    rb_lines_t *l = ctx;
    if (!strstr(line, "\"plan_readback_mismatch\""))
        return;
    if (strstr(line, "\"retry\":true"))
        l->mismatch_retry++;
    else
        l->mismatch_final++;
}

Test(controller, plan_read_back_mismatch_is_retried_then_given_up)
{
    sf_scenario_t *sc = ctl_rig_load("single.json", NULL, 0);
    plain_dev_t d;
    plain_start(&d, &sc->intersections[0]);
    sf_endpoint_t ep = {.host = "127.0.0.1", .port = d.port};
    rb_lines_t lines = {0};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 1000;
    o.sink = rb_line;
    o.sink_ctx = &lines;
    sf_controller_t *c = sf_controller_new(sc, &ep, &o, NULL, 0);
    cr_assert_not_null(c);
    for (uint64_t k = 0; k < 80; k++)
        cr_assert_eq(sf_controller_step(c, k, 7 * 36000 + (uint32_t)k), 0);
    cr_assert_eq(lines.mismatch_retry, 2, "two retries (%d)", lines.mismatch_retry);
    cr_assert_eq(lines.mismatch_final, 1, "then given up (%d)", lines.mismatch_final);
    json_t *rep = sf_controller_report(c);
    json_t *plans = json_object_get(rep, "plans");
    cr_assert_eq(json_integer_value(json_object_get(plans, "readback_mismatches")), 3);
    cr_assert_eq(json_integer_value(json_object_get(plans, "given_up")), 1);
    cr_assert_eq(json_integer_value(json_object_get(plans, "verified")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rep, "comms"), "missed_polls")),
                 0, "a device that implements the map is polled like a unit");
    json_decref(rep);
    sf_controller_destroy(&c);
    plain_stop(&d);
    sf_scenario_destroy(&sc);
}
