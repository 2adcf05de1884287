/* tests/test_sim_fixture.h — scenarios built in code for the simulator tests, and a
 * fixed-time lamp driver (the tests' input, not a model of a signal unit). */
#ifndef SIGFLOW_TEST_SIM_FIXTURE_H
#define SIGFLOW_TEST_SIM_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "sim.h"

/* A straight arterial: boundary -> I0 -> I1 ... -> I(n-1) -> boundary, eastbound only,
 * one through movement per intersection on signal group 0 (phase 0). Link k runs from
 * node k-1 to node k; link 0 is the entry, link n the exit. All links len_m long. */
static inline sf_scenario_t *fx_arterial(unsigned n_ix, float len_m, float speed_mps,
                                         uint8_t n_lanes, float flow_veh_h, sf_arrivals_t arrivals,
                                         uint64_t seed)
{
    sf_scenario_t *sc = calloc(1, sizeof *sc);
    sc->version = 1;
    strcpy(sc->name, "fixture-arterial");
    sc->n_intersections = n_ix;
    sc->intersections = calloc(n_ix ? n_ix : 1, sizeof *sc->intersections);
    sc->n_boundaries = 2;
    sc->boundaries = calloc(2, sizeof *sc->boundaries);
    strcpy(sc->boundaries[0].id, "BW");
    strcpy(sc->boundaries[1].id, "BE");
    sc->n_links = n_ix + 1;
    sc->links = calloc(sc->n_links, sizeof *sc->links);
    for (unsigned k = 0; k <= n_ix; k++) {
        sf_link_t *l = &sc->links[k];
        snprintf(l->id, sizeof l->id, "L%u", k);
        l->from_kind = k == 0 ? SF_NODE_BOUNDARY : SF_NODE_INTERSECTION;
        l->from_idx = k == 0 ? 0 : k - 1;
        l->to_kind = k == n_ix ? SF_NODE_BOUNDARY : SF_NODE_INTERSECTION;
        l->to_idx = k == n_ix ? 1 : k;
        l->length_m = len_m;
        l->speed_mps = speed_mps;
        l->n_lanes = n_lanes;
        for (uint8_t j = 0; j < n_lanes; j++)
            l->lanes[j].use_mask = SF_LANE_USE_THROUGH;
        l->turn_ratio[SF_TURN_THROUGH] = 1.0f;
    }
    for (unsigned x = 0; x < n_ix; x++) {
        sf_intersection_t *ix = &sc->intersections[x];
        snprintf(ix->id, sizeof ix->id, "I%u", x);
        ix->n_phases = 1;
        ix->phases[0].id = 2;
        ix->phases[0].ring = 1;
        ix->n_sg = 1;
        strcpy(ix->sg[0].id, "SG1");
        ix->n_movements = 1;
        strcpy(ix->movements[0].id, "T");
        ix->movements[0].from_link_idx = x;
        ix->movements[0].to_link_idx = x + 1;
        ix->movements[0].turn = SF_TURN_THROUGH;
        ix->movements[0].sg_idx = 0;
        /* a stop-bar presence zone on lane 0 and a counting loop at the line */
        ix->n_det = 2;
        strcpy(ix->det[0].id, "D1");
        ix->det[0].kind = SF_DET_PRESENCE;
        ix->det[0].link_idx = x;
        ix->det[0].distance_m = 20.0f;
        ix->det[0].length_m = 20.0f;
        strcpy(ix->det[1].id, "C1");
        ix->det[1].kind = SF_DET_COUNT;
        ix->det[1].link_idx = x;
        ix->det[1].distance_m = 0.0f;
        ix->det[1].length_m = 0.0f;
    }
    sc->demand.slice_s = 900;
    sc->demand.n_entries = flow_veh_h > 0 ? 1 : 0;
    sc->demand.entries = calloc(1, sizeof *sc->demand.entries);
    sc->demand.entries[0].link_idx = 0;
    sc->demand.entries[0].flow_veh_h = flow_veh_h;
    sc->demand.entries[0].arrivals = arrivals;
    sc->control.priority.checkin_distance_m = 150.0f;
    sc->run.duration_s = 3600;
    sc->run.warmup_s = 0;
    sc->run.step_s = 0.1;
    sc->run.seed = seed;
    return sc;
}

static inline void fx_free(sf_scenario_t **sc_p)
{
    sf_scenario_t *sc = *sc_p;
    if (!sc)
        return;
    free(sc->intersections);
    free(sc->boundaries);
    free(sc->links);
    free(sc->demand.entries);
    free(sc->lines);
    free(sc);
    *sc_p = NULL;
}

/* Fixed-time lamps for every group of every intersection: green [0, green_s), yellow
 * [green_s, green_s + yellow_s), red for the rest of the cycle, shifted by offset_s per
 * intersection index. */
static inline void fx_lamps(sf_sim_t *sim, unsigned n_ix, double t, double cycle_s, double green_s,
                            double yellow_s, double offset_s)
{
    for (unsigned x = 0; x < n_ix; x++) {
        double c = fmod(t - offset_s * x + 1000.0 * cycle_s, cycle_s);
        uint8_t code = c < green_s              ? SF_LAMP_GREEN
                       : c < green_s + yellow_s ? SF_LAMP_YELLOW
                                                : SF_LAMP_RED;
        uint8_t codes[SF_MAX_SG];
        memset(codes, code, sizeof codes);
        sf_sim_set_lamps(sim, x, codes, SF_MAX_SG);
    }
}

/* Every group of intersection x on one code. */
static inline void fx_all(sf_sim_t *sim, unsigned x, uint8_t code)
{
    uint8_t codes[SF_MAX_SG];
    memset(codes, code, sizeof codes);
    sf_sim_set_lamps(sim, x, codes, SF_MAX_SG);
}

/* Discharge of a standing queue on one lane at 50 km/h: red for 150 s with a uniform
 * 1600 veh/h arrival stream (a long queue), then green for 80 s. Stop-line crossing
 * times are interpolated from snapshots (a vehicle that appears on the exit link at x
 * with speed v crossed x / v ago). Gives the saturation flow from the mean headway of
 * vehicles 5..25, the start-up lost time t_25 - 25 h (green used minus 25 saturation
 * headways) and the first vehicle's crossing time. Returns 0, -1 if the run was odd. */
static inline int fx_discharge(double *sat_veh_h, double *lost_s, double *first_s)
{
    const double red_s = 150.0, green_s = 80.0;
    enum { N = 40 };
    sf_scenario_t *sc = fx_arterial(1, 800.0f, 50.0f / 3.6f, 1, 1600.0f, SF_ARRIVALS_UNIFORM, 7);
    sf_sim_t *sim = sf_sim_new(sc);
    if (!sim) {
        fx_free(&sc);
        return -1;
    }
    double tc[N];
    uint32_t id0 = 0;
    int got = 0, bad = 0;
    static sf_vehicle_snap_t snap[512];
    static bool seen[4096];
    memset(seen, 0, sizeof seen);
    fx_all(sim, 0, SF_LAMP_RED);
    while (sf_sim_time(sim) < red_s + green_s - 1e-9) {
        if (sf_sim_time(sim) >= red_s - 1e-9)
            fx_all(sim, 0, SF_LAMP_GREEN);
        sf_sim_step(sim);
        size_t n = sf_sim_snapshot(sim, snap, 512);
        if (n >= 512)
            bad = 1;
        for (size_t i = 0; i < n && i < 512; i++) {
            if (snap[i].link_idx != 1 || snap[i].id >= 4096 || seen[snap[i].id])
                continue;
            seen[snap[i].id] = true;
            if (id0 == 0)
                id0 = snap[i].id;
            if (got == N)
                continue;
            if (snap[i].id - id0 != (uint32_t)got)
                bad = 1; /* left out of order */
            double v = snap[i].speed_mps > 0.1f ? snap[i].speed_mps : 0.1;
            tc[got++] = sf_sim_time(sim) - snap[i].pos_m / v - red_s;
        }
    }
    sf_sim_destroy(&sim);
    fx_free(&sc);
    if (bad || got < 30)
        return -1;
    double h = (tc[24] - tc[4]) / 20.0;
    *sat_veh_h = 3600.0 / h;
    *lost_s = tc[24] - 25.0 * h;
    *first_s = tc[0];
    return 0;
}

/* Fixed-time lamps from each intersection's first scheduled plan at the run's start:
 * every ring runs its sequence with the plan's splits (green, then the phase's yellow and
 * red clearance at the end of its split), from the plan offset. A test input, not a
 * model of the unit (no actuation, no transitions). */
static inline void fx_plan_lamps(sf_sim_t *sim, const sf_scenario_t *sc, double t)
{
    for (uint32_t x = 0; x < sc->n_intersections; x++) {
        const sf_intersection_t *ix = &sc->intersections[x];
        if (!ix->n_plans)
            continue;
        const sf_plan_t *pl = &ix->plans[sf_intersection_plan_at(ix, sc->run.start_tod_s)];
        double cyc = pl->cycle_ds / 10.0;
        if (cyc <= 0)
            continue;
        double c = fmod(t - pl->offset_ds / 10.0 + 1000.0 * cyc, cyc);
        uint8_t ph[SF_MAX_PHASES];
        memset(ph, SF_LAMP_RED, sizeof ph);
        for (uint8_t r = 0; r < ix->n_rings; r++) {
            double start = 0;
            for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++) {
                uint8_t pi = ix->ring_seq[r][k];
                double split = pl->split_ds[pi] / 10.0;
                double y = ix->phases[pi].yellow_ds / 10.0, rc = ix->phases[pi].red_clear_ds / 10.0;
                if (c >= start && c < start + split) {
                    double in = c - start;
                    ph[pi] = in < split - y - rc ? SF_LAMP_GREEN
                             : in < split - rc   ? SF_LAMP_YELLOW
                                                 : SF_LAMP_RED;
                }
                start += split;
            }
        }
        uint8_t codes[SF_MAX_SG];
        for (uint8_t g = 0; g < ix->n_sg; g++)
            codes[g] = ph[ix->sg[g].phase_idx];
        sf_sim_set_lamps(sim, x, codes, ix->n_sg);
    }
}

/* Sanitizer builds run shorter. */
static inline int fx_sanitized(void)
{
    const char *s = getenv("SIGFLOW_SANITIZED");
    return s && *s && strcmp(s, "0") != 0;
}

#endif
