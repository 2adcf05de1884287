/* tests/test_sim_transit.c — buses: route, dwell, lateness, check-in / check-out events,
 * signal delay and stops at signals. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "test_sim_fixture.h"

#define HEADWAY_S 120.0
#define FIRST_S   30.0

/* Two signals on a 3 x 400 m arterial with 2 lanes; line "B" along it with a kerbside
 * stop at 200 m on L0 (10 s fixed dwell, due 20 s after departure) and a bay stop at
 * 150 m on L1 (5 s + 2 s per boarding, 3 boardings on average, due 100 s after). */
static sf_scenario_t *transit_scenario(float car_flow)
{
    sf_scenario_t *sc = fx_arterial(2, 400.0f, 50.0f / 3.6f, 2, car_flow, SF_ARRIVALS_POISSON, 5);
    sc->n_lines = 1;
    sc->lines = calloc(1, sizeof *sc->lines);
    sf_line_t *l = &sc->lines[0];
    strcpy(l->id, "B");
    l->n_route = 3;
    l->route[0] = 0;
    l->route[1] = 1;
    l->route[2] = 2;
    l->headway_s = (float)HEADWAY_S;
    l->first_departure_s = (float)FIRST_S;
    l->n_stops = 2;
    sf_stop_t *s = l->stops;
    strcpy(s[0].id, "S1");
    s[0].link_idx = 0;
    s[0].distance_m = 200;
    s[0].kind = SF_STOP_KERB;
    s[0].dwell_s = 10;
    s[0].scheduled_s = 20;
    strcpy(s[1].id, "S2");
    s[1].link_idx = 1;
    s[1].distance_m = 150;
    s[1].kind = SF_STOP_BAY;
    s[1].dwell_s = 5;
    s[1].per_pax_s = 2;
    s[1].pax_mean = 3;
    s[1].scheduled_s = 100;
    sc->run.duration_s = fx_sanitized() ? 1800 : 3600;
    return sc;
}

Test(sim_transit, events_dwell_and_lateness)
{
    sf_scenario_t *sc = transit_scenario(0.0f);
    sf_sim_t *sim = sf_sim_new(sc);
    cr_assert_not_null(sim);
    /* per bus id: state of the last event per intersection, the time it left S1 */
    enum { MAXB = 64 };
    double checkin_t[MAXB][2] = {{0}}, eta[MAXB][2] = {{0}}, dep_s1[MAXB] = {0};
    int n_in = 0, n_out = 0;
    uint32_t bus_ids[MAXB];
    int n_bus = 0;
    float last_v[MAXB] = {0};
    sf_vehicle_snap_t snap[256];
    while (!sf_sim_finished(sim)) {
        fx_all(sim, 0, SF_LAMP_GREEN);
        fx_all(sim, 1, SF_LAMP_GREEN);
        sf_sim_step(sim);
        double t = sf_sim_time(sim);
        size_t n = sf_sim_snapshot(sim, snap, 256);
        for (size_t i = 0; i < n && i < 256; i++) {
            if (snap[i].line == SF_SIM_NO_LINE)
                continue;
            cr_assert_eq(snap[i].type, SF_VEH_BUS);
            int k = 0;
            while (k < n_bus && bus_ids[k] != snap[i].id)
                k++;
            if (k == n_bus) {
                cr_assert_lt(n_bus, MAXB);
                bus_ids[n_bus++] = snap[i].id;
                dep_s1[k] = -1;
            }
            /* left S1: was standing near 200 m on L0, now moving */
            if (snap[i].link_idx == 0 && fabsf(snap[i].pos_m - 200.0f) < 3.0f &&
                last_v[k] == 0.0f && snap[i].speed_mps > 0.0f && dep_s1[k] < 0)
                dep_s1[k] = t - 0.1; /* it left at the end of the step before */
            last_v[k] = snap[i].speed_mps;
        }
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev)) {
            int k = 0;
            while (k < n_bus && bus_ids[k] != ev.bus_id)
                k++;
            cr_assert_lt(k, n_bus, "event for an unknown bus %u", ev.bus_id);
            cr_assert_eq(ev.line_idx, 0u);
            cr_assert_lt(ev.ix_idx, 2u);
            cr_expect_eq(ev.link_idx, ev.ix_idx, "approach of I%u is L%u", ev.ix_idx, ev.ix_idx);
            cr_expect_eq(ev.movement_idx, 0);
            cr_expect_eq(ev.sg_idx, 0);
            cr_expect_float_eq(ev.t_s, t, 1e-9);
            if (ev.kind == SF_TRANSIT_CHECKIN) {
                n_in++;
                cr_expect_eq(checkin_t[k][ev.ix_idx], 0.0, "checked in twice");
                checkin_t[k][ev.ix_idx] = t;
                eta[k][ev.ix_idx] = ev.eta_s;
                cr_expect_gt(ev.eta_s, 0.0f);
                if (ev.ix_idx == 0 && dep_s1[k] > 0) {
                    /* lateness at check-in is the one at S1's departure */
                    double want = dep_s1[k] - (FIRST_S + HEADWAY_S * k) - 20.0;
                    cr_expect(fabs(ev.lateness_s - want) < 0.15, "lateness %.2f, expected %.2f",
                              (double)ev.lateness_s, want);
                }
            } else {
                n_out++;
                cr_assert_gt(checkin_t[k][ev.ix_idx], 0.0, "check-out without check-in");
                double took = t - checkin_t[k][ev.ix_idx];
                cr_expect(took > 0.5 * eta[k][ev.ix_idx] && took < 2.0 * eta[k][ev.ix_idx] + 1,
                          "ETA %.1f s, took %.1f s", eta[k][ev.ix_idx], took);
            }
        }
    }
    cr_expect_gt(n_bus, 10);
    cr_expect_gt(n_in, 2 * (n_bus - 2));
    cr_expect(n_out >= n_in - 2 && n_out <= n_in);
    json_t *r = sf_sim_report(sim, false);
    json_t *ln = json_array_get(json_object_get(json_object_get(r, "transit"), "lines"), 0);
    double dwell = json_number_value(json_object_get(ln, "mean_dwell_s"));
    double tt = json_number_value(json_object_get(ln, "mean_travel_time_s"));
    double sd = json_number_value(json_object_get(ln, "mean_signal_delay_s"));
    printf("transit, all green, no cars: %d buses, mean dwell %.2f s (expected 10.5), travel time "
           "%.1f s, signal delay %.2f s, lateness %.2f s\n",
           n_bus, dwell, tt, sd, json_number_value(json_object_get(ln, "mean_lateness_s")));
    /* S1: 10 s; S2: 5 + 2 x Poisson(3) = 11 s on average */
    cr_expect(fabs(dwell - 10.5) < 0.8, "mean dwell %.2f", dwell);
    /* free flow at 0.9 x 50 km/h over 1200 m is 96 s, plus dwells, plus stopping */
    cr_expect(tt > 96.0 + 20.0 && tt < 96.0 + 20.0 + 30.0, "travel time %.1f", tt);
    cr_expect(fabs(sd) < 1.0, "signal delay %.2f with every signal green", sd);
    cr_expect_eq(json_integer_value(json_object_get(ln, "buses_completed")),
                 json_integer_value(json_object_get(ln, "buses_dispatched")) - 1, "buses got lost");
    json_decref(r);
    sf_sim_destroy(&sim);
    fx_free(&sc);
}

Test(sim_transit, red_signal_costs_delay_and_a_stop_and_cars_pass_bay)
{
    sf_scenario_t *sc = transit_scenario(600.0f);
    sf_sim_t *sim = sf_sim_new(sc);
    cr_assert_not_null(sim);
    while (!sf_sim_finished(sim)) {
        fx_lamps(sim, 2, sf_sim_time(sim), 70.0, 32.0, 3.0,
                 11.0); /* 70 s: not a divisor of the headway */
        sf_sim_step(sim);
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev))
            ;
    }
    json_t *r = sf_sim_report(sim, false);
    json_t *ln = json_array_get(json_object_get(json_object_get(r, "transit"), "lines"), 0);
    double sd = json_number_value(json_object_get(ln, "mean_signal_delay_s"));
    double st = json_number_value(json_object_get(ln, "mean_stops_at_signals"));
    printf("transit, fixed time 70 s, 600 cars/h: signal delay %.1f s, stops at signals %.2f, "
           "travel time %.1f s, lateness %.1f s\n",
           sd, st, json_number_value(json_object_get(ln, "mean_travel_time_s")),
           json_number_value(json_object_get(ln, "mean_lateness_s")));
    cr_expect_gt(sd, 5.0, "signals with 35 s red each cost a bus nothing?");
    cr_expect_gt(st, 0.3);
    cr_expect_lt(st, 4.0);
    json_t *net = json_object_get(r, "network");
    /* 600 veh/h arrive; most of them get through in the run */
    cr_expect_gt((double)json_integer_value(json_object_get(net, "vehicles_completed")),
                 0.8 * 600.0 * sc->run.duration_s / 3600.0);
    json_decref(r);
    sf_sim_destroy(&sim);
    fx_free(&sc);
}

/* A near-side stop 70 m before I0's line, inside the 150 m check-in distance: the bus
 * checks in at door close, not on the way into the stop. Held at red, its ETA drifts
 * from the one it sent and it sends it again (an update) every ETA_UPDATE_S or so; one
 * check-out when it crosses. */
Test(sim_transit, near_side_check_in_at_door_close_and_eta_updates_at_red)
{
    sf_scenario_t *sc = transit_scenario(0.0f);
    sc->lines[0].stops[0].distance_m = 330;
    sc->run.duration_s = 200;
    sf_sim_t *sim = sf_sim_new(sc);
    cr_assert_not_null(sim);
    sf_vehicle_snap_t snap[64];
    double dep = -1, last_in = -1, first_in = -1;
    float last_v = 0, pos_in = -1;
    int n_in = 0, n_out = 0;
    double max_gap = 0;
    while (!sf_sim_finished(sim) && n_out == 0) {
        double t = sf_sim_time(sim);
        fx_all(sim, 0, t < 150.0 ? SF_LAMP_RED : SF_LAMP_GREEN);
        fx_all(sim, 1, SF_LAMP_GREEN);
        sf_sim_step(sim);
        t = sf_sim_time(sim);
        size_t n = sf_sim_snapshot(sim, snap, 64);
        float pos = -1;
        for (size_t i = 0; i < n && i < 64; i++) {
            if (snap[i].line == SF_SIM_NO_LINE || snap[i].link_idx != 0)
                continue;
            pos = snap[i].pos_m;
            if (fabsf(pos - 330.0f) < 3.0f && last_v == 0.0f && snap[i].speed_mps > 0.0f && dep < 0)
                dep = t - 0.1;
            last_v = snap[i].speed_mps;
        }
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev)) {
            if (ev.ix_idx != 0)
                continue;
            if (ev.kind == SF_TRANSIT_CHECKIN) {
                cr_expect(isfinite(ev.eta_s) && ev.eta_s >= 0.0f);
                if (n_in == 0) {
                    first_in = t;
                    pos_in = pos;
                } else if (n_in >= 2 && t - last_in > max_gap) {
                    max_gap = t - last_in; /* the first ETA held until it was due */
                }
                last_in = t;
                n_in++;
            } else {
                n_out++;
                cr_expect_geq(t, 150.0, "crossed at red");
            }
        }
    }
    cr_assert_gt(dep, 0, "the bus never left the near-side stop");
    cr_expect_geq(first_in, dep, "checked in at %.1f s, before leaving the stop at %.1f s",
                  first_in, dep);
    cr_expect(pos_in > 330.0f - 3.0f, "checked in at %.1f m, before the stop", (double)pos_in);
    /* at the line from ~15 s after door close to 150 s: an update at least every ~5 s */
    cr_expect_geq(n_in, 1 + (int)((150.0 - first_in - 20.0) / 6.0), "%d check-ins", n_in);
    cr_expect_leq(max_gap, 6.0, "%.1f s between two updates while held", max_gap);
    cr_expect_eq(n_out, 1);
    sf_sim_destroy(&sim);
    fx_free(&sc);
}
