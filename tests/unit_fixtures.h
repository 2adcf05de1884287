/* tests/unit_fixtures.h — intersections built in code for the unit's tests, and a few
 * helpers to drive a unit and watch its lamps. Header-only (static functions): each
 * test program includes it once. */
#ifndef SIGFLOW_UNIT_FIXTURES_H
#define SIGFLOW_UNIT_FIXTURES_H

#include <stdio.h>
#include <string.h>

#include "scenario.h"
#include "unit.h"

/* Phase with the given timings in seconds*10. */
static inline sf_phase_t fx_phase(uint8_t id, uint8_t ring, uint16_t min_g, uint16_t passage,
                                  uint16_t max1, uint16_t yellow, uint16_t red_clear, uint16_t walk,
                                  uint16_t ped_clear)
{
    sf_phase_t p;
    memset(&p, 0, sizeof p);
    p.id = id;
    p.ring = ring;
    p.min_green_ds = min_g;
    p.passage_ds = passage;
    p.max1_ds = max1;
    p.max2_ds = (uint16_t)(max1 + 100);
    p.yellow_ds = yellow;
    p.red_clear_ds = red_clear;
    p.walk_ds = walk;
    p.ped_clear_ds = ped_clear;
    p.recall = SF_RECALL_NONE;
    return p;
}

static inline void fx_sg(sf_intersection_t *ix, const char *id, sf_sg_kind_t kind,
                         uint8_t phase_idx)
{
    sf_signal_group_t *g = &ix->sg[ix->n_sg++];
    snprintf(g->id, sizeof g->id, "%s", id);
    g->kind = kind;
    g->phase_idx = phase_idx;
}

/* One isolated 2-phase intersection like assets/scenarios/single.json: phases 2 and 4
 * in one ring, two barriers; vehicle groups A2 (sg 0), A4 (sg 1), pedestrian P2 (sg 2),
 * P4 (sg 3); detectors 0 -> phase 2, 1 -> phase 4; plan 1 = 60 s fixed 30/30, plan 2 =
 * 80 s 50/30. Min green 10 s, passage 3 s, max1 35 s, yellow 3 s, red clear 2 s, walk
 * 7 s, ped clear 15 s. */
static inline void fx_single(sf_intersection_t *ix)
{
    memset(ix, 0, sizeof *ix);
    snprintf(ix->id, sizeof ix->id, "I1");
    ix->n_phases = 2;
    ix->phases[0] = fx_phase(2, 1, 100, 30, 350, 30, 20, 70, 150);
    ix->phases[1] = fx_phase(4, 1, 100, 30, 350, 30, 20, 70, 150);
    ix->n_rings = 1;
    ix->ring_seq_len[0] = 2;
    ix->ring_seq[0][0] = 0;
    ix->ring_seq[0][1] = 1;
    ix->n_barriers = 2;
    ix->barrier_mask[0] = 1u << 0;
    ix->barrier_mask[1] = 1u << 1;
    fx_sg(ix, "A2", SF_SG_VEHICLE, 0);
    fx_sg(ix, "A4", SF_SG_VEHICLE, 1);
    fx_sg(ix, "P2", SF_SG_PEDESTRIAN, 0);
    fx_sg(ix, "P4", SF_SG_PEDESTRIAN, 1);
    ix->n_plans = 2;
    sf_plan_t *p = &ix->plans[0];
    p->id = 1;
    p->cycle_ds = 600;
    p->split_ds[0] = 300;
    p->split_ds[1] = 300;
    p = &ix->plans[1];
    p->id = 2;
    p->cycle_ds = 800;
    p->split_ds[0] = 500;
    p->split_ds[1] = 300;
    ix->n_det = 2;
    ix->det[0].kind = SF_DET_PRESENCE;
    ix->det[0].phase_mask = 1u << 0;
    ix->det[1].kind = SF_DET_PRESENCE;
    ix->det[1].phase_mask = 1u << 1;
    ix->local_plan_idx = 1;
    ix->strategy = SF_STRAT_FIXED;
    sf_intersection_derive_conflicts(ix);
}

/* NEMA dual ring, 8 phases: ring 1 = 1,2 | 3,4, ring 2 = 5,6 | 7,8; barrier 1 =
 * {1,2,5,6}, barrier 2 = {3,4,7,8}. Phase index = number - 1. Vehicle groups V1..V8
 * (sg 0..7), pedestrian groups P2, P4, P6, P8 (sg 8..11). Lefts: min 5 s, no peds;
 * throughs: min 10 s, walk 5 s, ped clear 10 s. Yellow 4 s, red clear 1 s (throughs 2
 * s). Plan 1: 100 s, splits 15/35/15/35 in both rings, coordinated 2 and 6, offset 0.
 * Plan 2: 120 s, 20/40/20/40, coordinated 2 and 6, offset 30 s. Detector d = phase d+1. */
static inline void fx_nema(sf_intersection_t *ix)
{
    memset(ix, 0, sizeof *ix);
    snprintf(ix->id, sizeof ix->id, "N8");
    ix->n_phases = 8;
    for (uint8_t i = 0; i < 8; i++) {
        bool left = (i % 2) == 0;
        uint8_t ring = i < 4 ? 1 : 2;
        ix->phases[i] = left ? fx_phase((uint8_t)(i + 1), ring, 50, 20, 200, 40, 10, 0, 0)
                             : fx_phase((uint8_t)(i + 1), ring, 100, 30, 400, 40, 20, 50, 100);
    }
    ix->n_rings = 2;
    for (uint8_t r = 0; r < 2; r++) {
        ix->ring_seq_len[r] = 4;
        for (uint8_t k = 0; k < 4; k++)
            ix->ring_seq[r][k] = (uint8_t)(r * 4 + k);
    }
    ix->n_barriers = 2;
    ix->barrier_mask[0] = (1u << 0) | (1u << 1) | (1u << 4) | (1u << 5);
    ix->barrier_mask[1] = (1u << 2) | (1u << 3) | (1u << 6) | (1u << 7);
    char name[8];
    for (uint8_t i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "V%u", (unsigned)(i + 1));
        fx_sg(ix, name, i % 2 ? SF_SG_VEHICLE : SF_SG_ARROW, i);
    }
    for (uint8_t i = 1; i < 8; i += 2) {
        snprintf(name, sizeof name, "P%u", (unsigned)(i + 1));
        fx_sg(ix, name, SF_SG_PEDESTRIAN, i);
    }
    ix->n_plans = 2;
    const uint16_t s1[4] = {150, 350, 150, 350}, s2[4] = {200, 400, 200, 400};
    for (uint8_t k = 0; k < 2; k++) {
        sf_plan_t *p = &ix->plans[k];
        p->id = (uint8_t)(k + 1);
        p->cycle_ds = k ? 1200 : 1000;
        p->offset_ds = k ? 300 : 0;
        for (uint8_t i = 0; i < 8; i++)
            p->split_ds[i] = k ? s2[i % 4] : s1[i % 4];
        p->coord_phase_mask = (1u << 1) | (1u << 5);
        p->force_mode = SF_FORCE_FIXED;
    }
    ix->n_det = 8;
    for (uint8_t d = 0; d < 8; d++) {
        ix->det[d].kind = SF_DET_PRESENCE;
        ix->det[d].phase_mask = (uint16_t)(1u << d);
    }
    ix->local_plan_idx = 0;
    ix->strategy = SF_STRAT_COORDINATED;
    sf_intersection_derive_conflicts(ix);
}

/* Config without the start-up sequence's wait where a test does not care. */
static inline sf_unit_config_t fx_cfg(const sf_intersection_t *ix, sf_unit_mode_t mode)
{
    sf_unit_config_t c;
    sf_unit_config_default(&c, ix);
    c.initial_mode = mode;
    c.heartbeat_timeout_ds = 0;
    return c;
}

/* One tick with the unit's clock running: tod (0.1 s of the day) advances first, wrapping
 * at midnight. */
static inline void fx_ctick(sf_unit_t *u, uint32_t *tod)
{
    *tod = (*tod + 1) % 864000u;
    sf_unit_set_clock(u, *tod);
    sf_unit_tick(u);
}

/* Tick until lamp of sg becomes code (at most max ticks). Returns the ticks taken, or
 * -1 when it did not happen. */
static inline int fx_until(sf_unit_t *u, uint8_t sg, uint8_t code, int max)
{
    for (int i = 1; i <= max; i++) {
        sf_unit_tick(u);
        if (sf_unit_status(u)->sg_lamp[sg] == code)
            return i;
    }
    return -1;
}

/* Ticks while the lamp of sg stays code (returns the count; stops after max). */
static inline int fx_while(sf_unit_t *u, uint8_t sg, uint8_t code, int max)
{
    int n = 0;
    while (n < max && sf_unit_status(u)->sg_lamp[sg] == code) {
        sf_unit_tick(u);
        n++;
    }
    return n;
}

#endif
