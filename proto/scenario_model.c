/* proto/scenario_model.c — derived facts of a loaded scenario (no file I/O here). */
#include "scenario.h"

#include <string.h>

void sf_intersection_derive_conflicts(sf_intersection_t *ix)
{
    /* NEMA rule: two phases may be green together only when they sit in the same
     * barrier group and in different rings. */
    memset(ix->concurrent, 0, sizeof ix->concurrent);
    for (uint8_t a = 0; a < ix->n_phases; a++) {
        for (uint8_t b = 0; b < ix->n_phases; b++) {
            if (a == b || ix->phases[a].ring == ix->phases[b].ring)
                continue;
            for (uint8_t k = 0; k < ix->n_barriers; k++) {
                uint16_t m = ix->barrier_mask[k];
                if ((m >> a & 1u) && (m >> b & 1u)) {
                    ix->concurrent[a][b] = true;
                    break;
                }
            }
        }
    }
    /* Signal groups of one phase never conflict; groups of two phases conflict unless
     * the phases are concurrent. */
    memset(ix->sg_conflict, 0, sizeof ix->sg_conflict);
    for (uint8_t i = 0; i < ix->n_sg; i++) {
        for (uint8_t j = 0; j < ix->n_sg; j++) {
            uint8_t pa = ix->sg[i].phase_idx, pb = ix->sg[j].phase_idx;
            ix->sg_conflict[i][j] = pa != pb && !ix->concurrent[pa][pb];
        }
    }
}

uint8_t sf_intersection_plan_at(const sf_intersection_t *ix, uint32_t tod_s)
{
    tod_s %= 86400u;
    if (ix->n_schedule == 0)
        return 0;
    /* The entry in force is the latest one at or before tod_s; before the first entry of
     * the day, the last entry of the previous day is still in force. */
    uint8_t best = ix->n_schedule;
    uint32_t best_at = 0;
    uint8_t latest = 0;
    for (uint8_t i = 0; i < ix->n_schedule; i++) {
        uint32_t at = ix->schedule[i].at_s;
        if (at <= tod_s && (best == ix->n_schedule || at >= best_at)) {
            best = i;
            best_at = at;
        }
        if (at >= ix->schedule[latest].at_s)
            latest = i;
    }
    return ix->schedule[best == ix->n_schedule ? latest : best].plan_idx;
}

int sf_scenario_find_intersection(const sf_scenario_t *sc, const char *id)
{
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        if (strcmp(sc->intersections[i].id, id) == 0)
            return (int)i;
    return -1;
}

const sf_veh_params_t *sf_vtype_default(sf_veh_type_t type)
{
    /* Cars calibrated in tests/test_sim.c (IDM a 1.7, b 2.5, T 1.1 s, s0 2 m give
     * 1886 veh/h/lane and 1.96 s start-up lost time); trucks and buses are heavier and
     * slower to accelerate, keeping a longer headway. */
    static const sf_veh_params_t defaults[SF_VEH_N] = {
        [SF_VEH_CAR] = {.length_m = 4.5f,
                        .v0_factor = 1.0f,
                        .a_mps2 = 1.7f,
                        .b_mps2 = 2.5f,
                        .s0_m = 2.0f,
                        .t_s = 1.1f},
        [SF_VEH_TRUCK] = {.length_m = 12.0f,
                          .v0_factor = 0.9f,
                          .a_mps2 = 1.0f,
                          .b_mps2 = 2.0f,
                          .s0_m = 3.0f,
                          .t_s = 1.5f},
        [SF_VEH_BUS] = {.length_m = 12.0f,
                        .v0_factor = 0.9f,
                        .a_mps2 = 1.2f,
                        .b_mps2 = 2.0f,
                        .s0_m = 3.0f,
                        .t_s = 1.5f},
    };
    return &defaults[type < SF_VEH_N ? type : SF_VEH_CAR];
}

const char *sf_det_fault_kind_name(sf_det_fault_kind_t k)
{
    switch (k) {
    case SF_DET_FAULT_STUCK_ON:
        return "stuck_on";
    case SF_DET_FAULT_DEAD:
        return "dead";
    case SF_DET_FAULT_CHATTER:
        return "chatter";
    }
    return "unknown";
}
