/* tests/test_sim.c — the traffic model: calibration bands (saturation flow, start-up lost
 * time), free-flow travel time, detectors, determinism, bad input. Webster validation
 * is tests/test_sim_webster.c, buses tests/test_sim_transit.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "test_sim_fixture.h"

#define RED_S   150.0
#define GREEN_S 80.0

/* Discharge of a standing queue: red for RED_S with a uniform 1600 veh/h arrival stream
 * (a long queue), then green. Crossing times at the stop line are interpolated from
 * snapshots (a vehicle that appears on the exit link at pos x with speed v crossed
 * x / v ago). Gives the saturation headway (mean of headways of vehicles 5..25) and the
 * start-up lost time t_n - n h at n = 25 (green used minus n saturation headways). */
static void discharge(double *sat_veh_h, double *lost_s, double *first_s)
{
    sf_scenario_t *sc = fx_arterial(1, 800.0f, 50.0f / 3.6f, 1, 1600.0f, SF_ARRIVALS_UNIFORM, 7);
    sf_sim_t *sim = sf_sim_new(sc);
    cr_assert_not_null(sim);
    enum { N = 40 };
    double tc[N];
    uint32_t id0 = 0;
    int got = 0;
    sf_vehicle_snap_t snap[512];
    bool seen[4096] = {false};
    fx_all(sim, 0, SF_LAMP_RED);
    while (sf_sim_time(sim) < RED_S + GREEN_S - 1e-9) {
        if (sf_sim_time(sim) >= RED_S - 1e-9)
            fx_all(sim, 0, SF_LAMP_GREEN);
        sf_sim_step(sim);
        size_t n = sf_sim_snapshot(sim, snap, 512);
        cr_assert_lt(n, 512);
        for (size_t i = 0; i < n; i++) {
            if (snap[i].link_idx != 1 || snap[i].id >= 4096 || seen[snap[i].id])
                continue;
            seen[snap[i].id] = true;
            if (id0 == 0)
                id0 = snap[i].id;
            if (got == N)
                continue;
            cr_assert_eq(snap[i].id - id0, (uint32_t)got, "vehicle %u left out of order",
                         snap[i].id);
            double v = snap[i].speed_mps > 0.1f ? snap[i].speed_mps : 0.1;
            tc[got++] = sf_sim_time(sim) - snap[i].pos_m / v - RED_S;
        }
    }
    cr_assert_geq(got, 30, "only %d vehicles discharged", got);
    double h = (tc[24] - tc[4]) / 20.0;
    *sat_veh_h = 3600.0 / h;
    *lost_s = tc[24] - 25.0 * h;
    *first_s = tc[0];
    sf_sim_destroy(&sim);
    fx_free(&sc);
}

Test(sim, saturation_flow_and_lost_time_in_band)
{
    double s, l, f;
    discharge(&s, &l, &f);
    printf("calibration: saturation flow %.0f veh/h/lane, start-up lost time %.2f s, "
           "first vehicle over the line %.2f s after green\n",
           s, l, f);
    cr_expect_geq(s, 1800.0, "saturation flow %.0f below 1800", s);
    cr_expect_leq(s, 1950.0, "saturation flow %.0f above 1950", s);
    cr_expect_geq(l, 1.5, "lost time %.2f below 1.5 s", l);
    cr_expect_leq(l, 2.5, "lost time %.2f above 2.5 s", l);
}
