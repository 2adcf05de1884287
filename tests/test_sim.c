/* tests/test_sim.c — the traffic model: calibration bands (saturation flow, start-up lost
 * time), free-flow travel time, detectors, determinism, bad input. Webster validation
 * is tests/test_sim_webster.c, buses tests/test_sim_transit.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "test_sim_fixture.h"

Test(sim, saturation_flow_and_lost_time_in_band)
{
    double s = 0, l = 0, f = 0;
    cr_assert_eq(fx_discharge(&s, &l, &f), 0, "discharge run failed");
    printf("calibration: saturation flow %.0f veh/h/lane, start-up lost time %.2f s, "
           "first vehicle over the line %.2f s after green\n",
           s, l, f);
    cr_expect_geq(s, 1800.0, "saturation flow %.0f below 1800", s);
    cr_expect_leq(s, 1950.0, "saturation flow %.0f above 1950", s);
    cr_expect_geq(l, 1.5, "lost time %.2f below 1.5 s", l);
    cr_expect_leq(l, 2.5, "lost time %.2f above 2.5 s", l);
}
