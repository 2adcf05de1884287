/* sim/sim.c — the microscopic traffic model: building the network from a scenario,
 * validation, inputs and simple outputs. The step itself is sim_step.c.
 *
 * Vehicle model (parameters per type from sc->demand.vtype; a field <= 0 takes the
 * calibrated default, sf_vtype_default() in proto/scenario_model.c):
 *   IDM (Treiber 2000): acc = a [1 - (v/v0)^4 - (s_star / s)^2],
 *   s_star = s0 + max(0, v T + v dv / (2 sqrt(a b))), v0 = link speed x v0_factor,
 *   ballistic position update (Treiber & Kanagaraj 2015), emergency braking capped at
 *   MAX_DECEL. Vehicles of one lane are updated front to back in place, so a follower
 *   reads its leader's new state (a sequential update, deterministic).
 *   Car defaults: see sf_vtype_default() and proto/REPORT.md for the saturation flow and
 *   start-up lost time they produce (measured by tests/test_sim.c).
 * Signals: a stop line is a stationary virtual leader, placed so that a stopped front
 *   bumper rests STOP_MARGIN_M before the line. Yellow: at its first yellow a vehicle
 *   stops if v^2 / (2 d) <= b (comfortable) else commits to go, and a committed vehicle
 *   also passes a following red. Flashing yellow: no stop, speed capped to
 *   SF_SIM_CAUTION_MPS within CAUTION_ZONE_M of the line.
 * Intersections have no internal length: links run stop line to stop line, and a
 *   vehicle over its stop line continues on the exit link at the overshoot.
 * Lanes: a vehicle picks its movement at the end of a link (turning ratios; buses follow
 *   their route) when it nears the previous stop line, and the least occupied
 *   full-length lane that allows it; a movement served only by a bay makes it take the
 *   nearest full lane and change into the bay once beside it (mandatory change, gap
 *   acceptance with MAND_BSAFE); discretionary changes (MOBIL-lite, no politeness) go to
 *   a lane that also allows its movement when the advantage exceeds DISC_GAIN and the
 *   new follower brakes less than DISC_BSAFE. A vehicle still in a wrong lane waits at
 *   the stop line for a gap; from the lane next to an allowed one it turns at the line
 *   when its movement has green (so an overflowing bay blocks the through lane only
 *   while the turn is red, as it does in the field).
 * Cooperative merge: a mandatory changer that finds no gap (in the last metres before
 *   where it must be in the lane, MERGE_ZONE_M per lane still to cross) asks the lane it
 *   must enter; the driver there just behind its tail then also follows it, as a real
 *   driver lets a signalling bus or turner in, but only with braking up to COOP_BSAFE
 *   (one too close drives on, and the next one behind yields). In a dense moving queue
 *   the gap then opens within seconds instead of never.
 */
#include "sim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- PRNG seeding (splitmix64, as the xoshiro authors recommend) ------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A xoshiro256** state from seed: four splitmix64 outputs. */
static void seed_stream(uint64_t rng[4], uint64_t seed)
{
    for (int k = 0; k < 4; k++)
        rng[k] = splitmix64(&seed);
}

/* ---- small helpers -------------------------------------------------------------- */

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    errno = EINVAL;
    return -1;
}

static uint8_t lamp_class(uint8_t code)
{
    switch (code) {
    case SF_LAMP_GREEN:
    case SF_LAMP_GREEN_FLASH:
    case SF_LAMP_GREEN_FAST:
        return LAMP_GO;
    case SF_LAMP_YELLOW:
        return LAMP_YELLOW;
    case SF_LAMP_YELLOW_FLASH:
        return LAMP_CAUTION;
    default:
        return LAMP_STOP;
    }
}

static bool finite_pos(double x)
{
    return isfinite(x) && x > 0.0;
}

/* ---- validation ----------------------------------------------------------------- */

static int validate(const sf_scenario_t *sc, char *err, size_t len)
{
    if (!finite_pos(sc->run.step_s) || sc->run.step_s > 1.0)
        return fail(err, len, "run.step_s: %g is not in (0, 1] s", sc->run.step_s);
    if (!isfinite(sc->run.duration_s) || sc->run.duration_s < 0)
        return fail(err, len, "run.duration_s: %g is not a duration", sc->run.duration_s);
    if (!isfinite(sc->run.warmup_s) || sc->run.warmup_s < 0)
        return fail(err, len, "run.warmup_s: %g is not a duration", sc->run.warmup_s);
    if (sc->n_links == 0 || !sc->links)
        return fail(err, len, "links: the network has no links");
    if (sc->n_intersections && !sc->intersections)
        return fail(err, len, "intersections: missing array");
    for (uint32_t i = 0; i < sc->n_links; i++) {
        const sf_link_t *l = &sc->links[i];
        if (!(l->length_m >= 1.0f) || !isfinite(l->length_m) || l->length_m > 100000.0f)
            return fail(err, len, "links[%u] (%s).length_m: %g is not in [1, 100000] m", i, l->id,
                        (double)l->length_m);
        if (!(l->speed_mps > 0.5f) || !isfinite(l->speed_mps) || l->speed_mps > 70.0f)
            return fail(err, len, "links[%u] (%s).speed: %g m/s is not in (0.5, 70]", i, l->id,
                        (double)l->speed_mps);
        if (l->n_lanes < 1 || l->n_lanes > SF_MAX_LANES)
            return fail(err, len, "links[%u] (%s).lanes: %u lanes (1..%d)", i, l->id, l->n_lanes,
                        SF_MAX_LANES);
        bool any_full = false;
        for (uint8_t k = 0; k < l->n_lanes; k++) {
            float bay = l->lanes[k].bay_m;
            if (!isfinite(bay) || bay < 0 || bay >= l->length_m)
                return fail(err, len, "links[%u] (%s).lanes[%u].bay_m: %g is not in [0, length)", i,
                            l->id, k, (double)bay);
            if (bay == 0)
                any_full = true;
        }
        if (!any_full)
            return fail(err, len, "links[%u] (%s).lanes: no lane runs the full length", i, l->id);
        uint32_t nf = l->from_kind == SF_NODE_INTERSECTION ? sc->n_intersections : sc->n_boundaries;
        uint32_t nt = l->to_kind == SF_NODE_INTERSECTION ? sc->n_intersections : sc->n_boundaries;
        if (l->from_idx >= nf || l->to_idx >= nt)
            return fail(err, len, "links[%u] (%s): from/to node index out of range", i, l->id);
    }
    for (uint32_t x = 0; x < sc->n_intersections; x++) {
        const sf_intersection_t *ix = &sc->intersections[x];
        if (ix->n_sg > SF_MAX_SG || ix->n_det > SF_MAX_DET || ix->n_movements > SF_MAX_MOVEMENTS)
            return fail(err, len, "intersections[%u] (%s): too many groups/detectors/movements", x,
                        ix->id);
        for (uint8_t m = 0; m < ix->n_movements; m++) {
            const sf_movement_t *mv = &ix->movements[m];
            if (mv->from_link_idx >= sc->n_links || mv->to_link_idx >= sc->n_links)
                return fail(err, len,
                            "intersections[%u] (%s).movements[%u] (%s): link out of range", x,
                            ix->id, m, mv->id);
            const sf_link_t *fl = &sc->links[mv->from_link_idx], *tl = &sc->links[mv->to_link_idx];
            if (fl->to_kind != SF_NODE_INTERSECTION || fl->to_idx != x)
                return fail(err, len,
                            "intersections[%u] (%s).movements[%u] (%s): link %s does not end here",
                            x, ix->id, m, mv->id, fl->id);
            if (tl->from_kind != SF_NODE_INTERSECTION || tl->from_idx != x)
                return fail(
                    err, len,
                    "intersections[%u] (%s).movements[%u] (%s): link %s does not start here", x,
                    ix->id, m, mv->id, tl->id);
            if (mv->sg_idx >= ix->n_sg)
                return fail(
                    err, len,
                    "intersections[%u] (%s).movements[%u] (%s): signal group %u out of range", x,
                    ix->id, m, mv->id, mv->sg_idx);
            if ((unsigned)mv->turn >= SF_TURN_N)
                return fail(err, len, "intersections[%u] (%s).movements[%u] (%s): bad turn", x,
                            ix->id, m, mv->id);
            bool lane = false;
            for (uint8_t k = 0; k < fl->n_lanes; k++)
                if (fl->lanes[k].use_mask & (1u << mv->turn))
                    lane = true;
            if (!lane)
                return fail(
                    err, len,
                    "intersections[%u] (%s).movements[%u] (%s): no lane of %s allows this turn", x,
                    ix->id, m, mv->id, fl->id);
        }
        for (uint8_t d = 0; d < ix->n_det; d++) {
            const sf_detector_t *dt = &ix->det[d];
            if (dt->link_idx >= sc->n_links || dt->lane >= sc->links[dt->link_idx].n_lanes)
                return fail(err, len, "intersections[%u] (%s).det[%u] (%s): link/lane out of range",
                            x, ix->id, d, dt->id);
            if (!isfinite(dt->distance_m) || !isfinite(dt->length_m) || dt->length_m < 0 ||
                dt->distance_m < 0)
                return fail(err, len, "intersections[%u] (%s).det[%u] (%s): bad zone", x, ix->id, d,
                            dt->id);
        }
    }
    /* Every link that ends at an intersection needs a way out. */
    for (uint32_t i = 0; i < sc->n_links; i++) {
        const sf_link_t *l = &sc->links[i];
        if (l->to_kind != SF_NODE_INTERSECTION)
            continue;
        const sf_intersection_t *ix = &sc->intersections[l->to_idx];
        bool any = false;
        for (uint8_t m = 0; m < ix->n_movements; m++)
            if (ix->movements[m].from_link_idx == i)
                any = true;
        if (!any)
            return fail(err, len, "links[%u] (%s): ends at intersection %s with no movement out", i,
                        l->id, ix->id);
    }
    if (sc->faults.n_det > SF_MAX_DET_FAULTS)
        return fail(err, len, "faults.detectors: more than %d", SF_MAX_DET_FAULTS);
    for (uint8_t k = 0; k < sc->faults.n_det; k++) {
        const sf_det_fault_t *f = &sc->faults.det[k];
        if (f->ix_idx >= sc->n_intersections || f->det_idx >= sc->intersections[f->ix_idx].n_det)
            return fail(err, len, "faults.detectors[%u]: intersection/detector out of range", k);
        if ((unsigned)f->kind > SF_DET_FAULT_CHATTER)
            return fail(err, len, "faults.detectors[%u].kind: unknown (%d)", k, (int)f->kind);
        if (!isfinite(f->from_s) || f->from_s < 0 || isnan(f->to_s) || f->to_s <= f->from_s)
            return fail(err, len, "faults.detectors[%u]: bad window %g..%g s", k, f->from_s,
                        f->to_s);
    }
    if (sc->demand.n_entries && !sc->demand.entries)
        return fail(err, len, "demand.entries: missing array");
    for (uint32_t e = 0; e < sc->demand.n_entries; e++) {
        const sf_entry_t *en = &sc->demand.entries[e];
        if (en->link_idx >= sc->n_links || sc->links[en->link_idx].from_kind != SF_NODE_BOUNDARY)
            return fail(err, len, "demand.entries[%u]: link is not an entry link (from a boundary)",
                        e);
        if (!isfinite(en->flow_veh_h) || en->flow_veh_h < 0 || en->flow_veh_h > 20000)
            return fail(err, len, "demand.entries[%u].flow_veh_h: %g is not in [0, 20000]", e,
                        (double)en->flow_veh_h);
        if (en->n_profile > SF_MAX_PROFILE)
            return fail(err, len, "demand.entries[%u].profile: too many slices", e);
        for (uint8_t k = 0; k < en->n_profile; k++)
            if (!isfinite(en->profile[k]) || en->profile[k] < 0 || en->profile[k] > 10)
                return fail(err, len, "demand.entries[%u].profile[%u]: %g is not in [0, 10]", e, k,
                            (double)en->profile[k]);
        if (!isfinite(en->truck_share) || en->truck_share < 0 || en->truck_share > 1)
            return fail(err, len, "demand.entries[%u].truck_share: %g is not in [0, 1]", e,
                        (double)en->truck_share);
    }
    if (sc->n_lines && !sc->lines)
        return fail(err, len, "transit.lines: missing array");
    for (uint32_t n = 0; n < sc->n_lines; n++) {
        const sf_line_t *ln = &sc->lines[n];
        if (ln->n_route < 1 || ln->n_route > SF_MAX_ROUTE)
            return fail(err, len, "transit.lines[%u] (%s).route: %u links (1..%d)", n, ln->id,
                        ln->n_route, SF_MAX_ROUTE);
        if (!finite_pos(ln->headway_s) || ln->headway_s < 10.0f)
            return fail(err, len, "transit.lines[%u] (%s).headway_s: %g is not >= 10 s", n, ln->id,
                        (double)ln->headway_s);
        if (!isfinite(ln->first_departure_s) || ln->first_departure_s < 0)
            return fail(err, len, "transit.lines[%u] (%s).first_departure_s: %g", n, ln->id,
                        (double)ln->first_departure_s);
        for (uint8_t k = 0; k < ln->n_route; k++)
            if (ln->route[k] >= sc->n_links)
                return fail(err, len, "transit.lines[%u] (%s).route[%u]: link out of range", n,
                            ln->id, k);
        if (sc->links[ln->route[0]].from_kind != SF_NODE_BOUNDARY)
            return fail(err, len,
                        "transit.lines[%u] (%s).route[0]: %s does not start at a boundary", n,
                        ln->id, sc->links[ln->route[0]].id);
        for (uint8_t k = 0; k + 1 < ln->n_route; k++) {
            const sf_link_t *a = &sc->links[ln->route[k]];
            bool ok = false;
            if (a->to_kind == SF_NODE_INTERSECTION) {
                const sf_intersection_t *ix = &sc->intersections[a->to_idx];
                for (uint8_t m = 0; m < ix->n_movements; m++)
                    if (ix->movements[m].from_link_idx == ln->route[k] &&
                        ix->movements[m].to_link_idx == ln->route[k + 1])
                        ok = true;
            }
            if (!ok)
                return fail(err, len,
                            "transit.lines[%u] (%s).route[%u..%u]: no movement from %s to %s", n,
                            ln->id, k, k + 1, a->id, sc->links[ln->route[k + 1]].id);
        }
        if (ln->n_stops > SF_MAX_LINE_STOPS)
            return fail(err, len, "transit.lines[%u] (%s).stops: too many", n, ln->id);
        uint8_t rk = 0;
        float last = -1.0f;
        for (uint8_t s = 0; s < ln->n_stops; s++) {
            const sf_stop_t *st = &ln->stops[s];
            while (rk < ln->n_route && ln->route[rk] != st->link_idx) {
                rk++;
                last = -1.0f;
            }
            if (rk == ln->n_route)
                return fail(err, len,
                            "transit.lines[%u] (%s).stops[%u] (%s): link not on the route after "
                            "the previous stop",
                            n, ln->id, s, st->id);
            float L = sc->links[st->link_idx].length_m;
            if (!isfinite(st->distance_m) || st->distance_m < 0 || st->distance_m > L ||
                st->distance_m < last)
                return fail(err, len,
                            "transit.lines[%u] (%s).stops[%u] (%s).distance_m: %g is not on the "
                            "link after the previous stop",
                            n, ln->id, s, st->id, (double)st->distance_m);
            if (!isfinite(st->dwell_s) || st->dwell_s < 0 || st->dwell_s > 600 ||
                !isfinite(st->per_pax_s) || st->per_pax_s < 0 || st->per_pax_s > 60 ||
                !isfinite(st->pax_mean) || st->pax_mean < 0 || st->pax_mean > 200 ||
                !isfinite(st->scheduled_s))
                return fail(err, len, "transit.lines[%u] (%s).stops[%u] (%s): bad dwell values", n,
                            ln->id, s, st->id);
            last = st->distance_m;
        }
    }
    return 0;
}

/* ---- construction ---------------------------------------------------------------- */

static void set_vtypes(sf_sim_t *sim, const sf_scenario_t *sc)
{
    for (int k = 0; k < SF_VEH_N; k++) {
        sf_veh_params_t p = sc->demand.vtype[k], d = *sf_vtype_default((sf_veh_type_t)k);
        /* A field left at 0 (or nonsense) takes the calibrated default. */
        vtype_t *v = &sim->vt[k];
        v->len = finite_pos(p.length_m) && p.length_m <= 30 ? p.length_m : d.length_m;
        v->a = finite_pos(p.a_mps2) && p.a_mps2 <= 10 ? p.a_mps2 : d.a_mps2;
        v->b = finite_pos(p.b_mps2) && p.b_mps2 <= 10 ? p.b_mps2 : d.b_mps2;
        v->s0 = finite_pos(p.s0_m) && p.s0_m <= 20 ? p.s0_m : d.s0_m;
        v->t = finite_pos(p.t_s) && p.t_s <= 5 ? p.t_s : d.t_s;
        v->v0f = finite_pos(p.v0_factor) && p.v0_factor <= 2 ? p.v0_factor : d.v0_factor;
        v->inv2sab = 1.0f / (2.0f * sqrtf(v->a * v->b));
    }
}

#define ALLOC(ptr, n)                                                                              \
    do {                                                                                           \
        size_t n_ = (size_t)(n);                                                                   \
        (ptr) = calloc(n_ ? n_ : 1u, sizeof *(ptr));                                               \
        sim->mem_bytes += (n_ ? n_ : 1u) * sizeof *(ptr);                                          \
        if (!(ptr))                                                                                \
            goto nomem;                                                                            \
    } while (0)

sf_sim_t *sf_sim_new_checked(const sf_scenario_t *sc, char *err, size_t err_len)
{
    if (err && err_len)
        err[0] = '\0';
    if (!sc) {
        fail(err, err_len, "no scenario");
        return NULL;
    }
    if (validate(sc, err, err_len) < 0)
        return NULL;
    sf_sim_t *sim = calloc(1, sizeof *sim);
    if (!sim)
        goto nomem;
    sim->mem_bytes = sizeof *sim;
    snprintf(sim->name, sizeof sim->name, "%s", sc->name);
    sim->seed = sc->run.seed;
    sim->dt = sc->run.step_s;
    sim->duration_s = sc->run.duration_s;
    sim->warmup_s = sc->run.warmup_s;
    sim->checkin_m = isfinite(sc->control.priority.checkin_distance_m) &&
                             sc->control.priority.checkin_distance_m > 0
                         ? sc->control.priority.checkin_distance_m
                         : 150.0f;
    sim->slice_s = sc->demand.slice_s ? sc->demand.slice_s : 900u;
    set_vtypes(sim, sc);
    seed_stream(sim->rng, sc->run.seed);

    /* intersections */
    sim->n_ix = sc->n_intersections;
    ALLOC(sim->ix_id, sim->n_ix);
    ALLOC(sim->ix_n_sg, sim->n_ix);
    ALLOC(sim->ix_n_det, sim->n_ix);
    ALLOC(sim->ix_n_mov, sim->n_ix);
    ALLOC(sim->mov, (size_t)sim->n_ix * SF_MAX_MOVEMENTS);
    ALLOC(sim->lamp, sim->n_ix);
    ALLOC(sim->lamp_code, sim->n_ix);
    ALLOC(sim->presence, sim->n_ix);
    ALLOC(sim->det_step, (size_t)sim->n_ix * SF_MAX_DET);
    ALLOC(sim->det_total, (size_t)sim->n_ix * SF_MAX_DET);
    sim->n_dfault = sc->faults.n_det;
    memcpy(sim->dfault, sc->faults.det, sim->n_dfault * sizeof *sim->dfault);
    for (uint32_t x = 0; x < sim->n_ix; x++) {
        const sf_intersection_t *ix = &sc->intersections[x];
        memcpy(sim->ix_id[x], ix->id, SF_ID_LEN);
        sim->ix_id[x][SF_ID_LEN - 1] = '\0';
        sim->ix_n_sg[x] = ix->n_sg;
        sim->ix_n_det[x] = ix->n_det;
        sim->ix_n_mov[x] = ix->n_movements;
        for (int g = 0; g < SF_MAX_SG; g++) {
            sim->lamp_code[x][g] = SF_LAMP_RED;
            sim->lamp[x][g] = LAMP_STOP;
        }
        for (uint8_t m = 0; m < ix->n_movements; m++) {
            const sf_movement_t *mv = &ix->movements[m];
            const sf_link_t *fl = &sc->links[mv->from_link_idx];
            mov_t *o = &sim->mov[(size_t)x * SF_MAX_MOVEMENTS + m];
            o->to_link = mv->to_link_idx;
            o->sg = mv->sg_idx;
            o->turn = (uint8_t)mv->turn;
            for (uint8_t k = 0; k < fl->n_lanes; k++)
                if (fl->lanes[k].use_mask & (1u << mv->turn))
                    o->lanes |= (uint8_t)(1u << k);
        }
    }

    /* links and lanes */
    sim->n_links = sc->n_links;
    ALLOC(sim->links, sim->n_links);
    ALLOC(sim->link_id, sim->n_links);
    ALLOC(sim->app, sim->n_links);
    float min_len = sim->vt[0].len;
    for (int k = 1; k < SF_VEH_N; k++)
        if (sim->vt[k].len < min_len)
            min_len = sim->vt[k].len;
    uint32_t n_lanes = 0, n_src = 0;
    for (uint32_t i = 0; i < sc->n_links; i++) {
        n_lanes += sc->links[i].n_lanes;
        if (sc->links[i].from_kind == SF_NODE_BOUNDARY)
            n_src++;
    }
    sim->n_lanes = n_lanes;
    ALLOC(sim->lanes, n_lanes);
    ALLOC(sim->src, n_src);
    uint32_t li = 0;
    for (uint32_t i = 0; i < sc->n_links; i++) {
        const sf_link_t *l = &sc->links[i];
        link_t *k = &sim->links[i];
        memcpy(sim->link_id[i], l->id, SF_ID_LEN);
        sim->link_id[i][SF_ID_LEN - 1] = '\0';
        k->len = l->length_m;
        for (int t = 0; t < SF_VEH_N; t++) {
            k->v0[t] = l->speed_mps * sim->vt[t].v0f;
            k->inv_v0[t] = 1.0f / k->v0[t];
        }
        k->lane0 = li;
        k->n_lanes = l->n_lanes;
        k->to_ix = l->to_kind == SF_NODE_INTERSECTION ? (int32_t)l->to_idx : -1;
        k->source = -1;
        k->kerb_lane = SF_NONE8;
        for (uint8_t j = 0; j < l->n_lanes; j++) {
            lane_t *ln = &sim->lanes[li++];
            ln->link = i;
            ln->idx = j;
            ln->use = l->lanes[j].use_mask;
            ln->coop_w = SF_NONE32;
            ln->start_m = l->lanes[j].bay_m > 0 ? l->length_m - l->lanes[j].bay_m : 0.0f;
            if (ln->start_m == 0.0f) {
                k->full_mask |= (uint8_t)(1u << j);
                if (k->kerb_lane == SF_NONE8)
                    k->kerb_lane = j;
            }
            ln->jam = (uint32_t)((l->length_m - ln->start_m) / (min_len + 0.5f)) + 4u;
            ln->cap = ln->jam < 4u ? ln->jam : 4u;
            ln->pos = malloc((size_t)ln->cap * (2 * sizeof(float) + sizeof(uint32_t)));
            if (!ln->pos)
                goto nomem;
            sim->mem_bytes += (size_t)ln->cap * (2 * sizeof(float) + sizeof(uint32_t));
            ln->v = ln->pos + ln->cap;
            ln->veh = (uint32_t *)(ln->pos + 2 * (size_t)ln->cap);
        }
        /* movements leaving this link and their choice probabilities */
        if (k->to_ix >= 0) {
            const sf_intersection_t *ix = &sc->intersections[k->to_ix];
            unsigned per_turn[SF_TURN_N] = {0};
            for (uint8_t m = 0; m < ix->n_movements; m++)
                if (ix->movements[m].from_link_idx == i)
                    per_turn[ix->movements[m].turn]++;
            double w[SF_MAX_MOVEMENTS], sum = 0;
            for (uint8_t m = 0; m < ix->n_movements; m++) {
                if (ix->movements[m].from_link_idx != i)
                    continue;
                sf_turn_t tt = ix->movements[m].turn;
                double r =
                    isfinite(l->turn_ratio[tt]) && l->turn_ratio[tt] > 0 ? l->turn_ratio[tt] : 0.0;
                w[k->n_mov] = r / per_turn[tt];
                sum += w[k->n_mov];
                k->mov[k->n_mov++] = m;
            }
            double acc = 0;
            for (uint8_t m = 0; m < k->n_mov; m++) {
                /* no usable ratios: split evenly */
                acc += sum > 0 ? w[m] / sum : 1.0 / k->n_mov;
                k->mov_cum[m] = (float)acc;
            }
            k->mov_cum[k->n_mov - 1] = 1.0f;
            uint8_t first = sim->mov[(size_t)k->to_ix * SF_MAX_MOVEMENTS + k->mov[0]].lanes;
            for (uint8_t m = 0; m < k->n_mov; m++)
                if (sim->mov[(size_t)k->to_ix * SF_MAX_MOVEMENTS + k->mov[m]].lanes != first)
                    k->lc = 1;
        }
        if (k->full_mask != (uint8_t)((1u << l->n_lanes) - 1u))
            k->lc = 1;
        if (l->from_kind == SF_NODE_BOUNDARY) {
            source_t *s = &sim->src[sim->n_src];
            s->link = i;
            s->cap = 64;
            ALLOC(s->t, s->cap);
            ALLOC(s->type, s->cap);
            ALLOC(s->bus, s->cap);
            s->pend_mov = SF_NONE8;
            s->pend_lane = SF_NONE8;
            k->source = (int32_t)sim->n_src++;
        }
    }

    /* detectors, grouped by lane */
    uint32_t n_det = 0;
    for (uint32_t x = 0; x < sim->n_ix; x++)
        n_det += sc->intersections[x].n_det;
    ALLOC(sim->ldet, n_det);
    for (uint32_t l = 0; l < sim->n_lanes; l++) {
        lane_t *ln = &sim->lanes[l];
        ln->det0 = sim->n_ldet;
        for (uint32_t x = 0; x < sim->n_ix; x++) {
            const sf_intersection_t *ix = &sc->intersections[x];
            for (uint8_t d = 0; d < ix->n_det; d++) {
                const sf_detector_t *dt = &ix->det[d];
                if (dt->link_idx != ln->link || dt->lane != ln->idx)
                    continue;
                ldet_t *o = &sim->ldet[sim->n_ldet++];
                float L = sim->links[ln->link].len;
                o->zs = L - dt->distance_m;
                o->ze = o->zs + dt->length_m;
                o->ix = x;
                o->det = d;
                ln->n_det++;
            }
        }
    }

    /* demand */
    sim->n_gen = sc->demand.n_entries;
    ALLOC(sim->gen, sim->n_gen);
    for (uint32_t e = 0; e < sim->n_gen; e++) {
        gen_t *g = &sim->gen[e];
        g->e = sc->demand.entries[e];
        g->src = (uint32_t)sim->links[g->e.link_idx].source;
        /* the entry's own stream, from the seed and the entry's index */
        seed_stream(g->rng, sc->run.seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(e + 1u)));
        g->next_t = sf_sim_next_arrival(sim, g->rng, &g->e, 0.0);
    }

    /* transit */
    sim->n_lines = sc->n_lines;
    ALLOC(sim->lines, sim->n_lines);
    uint64_t n_bus = 0;
    for (uint32_t n = 0; n < sim->n_lines; n++) {
        line_t *ln = &sim->lines[n];
        ln->l = sc->lines[n];
        ln->source = sim->links[ln->l.route[0]].source;
        for (uint8_t k = 0; k < ln->l.n_route; k++) {
            ln->route_mov[k] = SF_NONE8;
            const link_t *a = &sim->links[ln->l.route[k]];
            if (k + 1 < ln->l.n_route && a->to_ix >= 0)
                for (uint8_t m = 0; m < a->n_mov; m++)
                    if (sim->mov[(size_t)a->to_ix * SF_MAX_MOVEMENTS + a->mov[m]].to_link ==
                        ln->l.route[k + 1])
                        ln->route_mov[k] = a->mov[m];
        }
        uint8_t rk = 0;
        for (uint8_t s = 0; s < ln->l.n_stops; s++) {
            while (ln->l.route[rk] != ln->l.stops[s].link_idx)
                rk++;
            ln->stop_rk[s] = rk;
        }
        for (uint8_t s = 0; s < ln->l.n_stops; s++)
            if (sim->links[ln->l.stops[s].link_idx].n_lanes > 1)
                sim->links[ln->l.stops[s].link_idx].lc = 1; /* buses to pass, buses to rejoin */
        double span = sim->duration_s - ln->l.first_departure_s;
        if (span >= 0)
            n_bus += (uint64_t)(span / ln->l.headway_s) + 1u;
    }
    if (n_bus > 1000000u) {
        fail(err, err_len, "transit: %llu bus departures in the run (limit 1000000)",
             (unsigned long long)n_bus);
        sf_sim_destroy(&sim);
        return NULL;
    }
    sim->bus_cap = (uint32_t)n_bus;
    ALLOC(sim->bus, sim->bus_cap);
    ALLOC(sim->bay, sim->bus_cap);

    /* vehicle pool */
    /* the pool starts small and doubles when an entry needs a slot */
    sim->pool_cap = 1024u;
    ALLOC(sim->free_stack, sim->pool_cap);
    ALLOC(sim->v_id, sim->pool_cap);
    ALLOC(sim->v_type, sim->pool_cap);
    ALLOC(sim->v_flags, sim->pool_cap);
    ALLOC(sim->v_mov, sim->pool_cap);
    ALLOC(sim->v_nmov, sim->pool_cap);
    ALLOC(sim->v_nlane, sim->pool_cap);
    ALLOC(sim->v_bus, sim->pool_cap);
    ALLOC(sim->v_tsys, sim->pool_cap);
    ALLOC(sim->v_tarr, sim->pool_cap);
    ALLOC(sim->v_delay, sim->pool_cap);
    ALLOC(sim->v_delay_open, sim->pool_cap);
    ALLOC(sim->v_stops, sim->pool_cap);
    ALLOC(sim->v_stops_open, sim->pool_cap);
    ALLOC(sim->v_acc, sim->pool_cap);
    ALLOC(sim->v_tcross, sim->pool_cap);
    ALLOC(sim->v_tlc, sim->pool_cap);
    /* lowest index on top: vehicles fill the pool from 0 */
    for (uint32_t i = 0; i < sim->pool_cap; i++)
        sim->free_stack[i] = sim->pool_cap - 1u - i;
    sim->n_free = sim->pool_cap;
    sim->next_id = 1;
    return sim;

nomem:
    sf_sim_destroy(&sim);
    if (err && err_len)
        snprintf(err, err_len, "out of memory");
    errno = ENOMEM;
    return NULL;
}

int sf_sim_pool_grow(sf_sim_t *sim)
{
    uint32_t oc = sim->pool_cap, nc = oc * 2u;
    if (nc <= oc) {
        errno = ENOMEM;
        return -1;
    }
#define GROW(a)                                                                                    \
    do {                                                                                           \
        void *p_ = realloc((a), (size_t)nc * sizeof *(a));                                         \
        if (!p_) {                                                                                 \
            errno = ENOMEM;                                                                        \
            return -1;                                                                             \
        }                                                                                          \
        (a) = p_;                                                                                  \
        sim->mem_bytes += (size_t)(nc - oc) * sizeof *(a);                                         \
    } while (0)
    /* a failure part-way leaves some arrays larger, which is harmless: pool_cap only
     * moves when all of them have grown */
    GROW(sim->free_stack);
    GROW(sim->v_id);
    GROW(sim->v_type);
    GROW(sim->v_flags);
    GROW(sim->v_mov);
    GROW(sim->v_nmov);
    GROW(sim->v_nlane);
    GROW(sim->v_bus);
    GROW(sim->v_tsys);
    GROW(sim->v_tarr);
    GROW(sim->v_delay);
    GROW(sim->v_delay_open);
    GROW(sim->v_stops);
    GROW(sim->v_stops_open);
    GROW(sim->v_acc);
    GROW(sim->v_tcross);
    GROW(sim->v_tlc);
#undef GROW
    /* new indices go on the free stack lowest on top, as at creation */
    for (uint32_t i = nc; i-- > oc;)
        sim->free_stack[sim->n_free++] = i;
    sim->pool_cap = nc;
    return 0;
}

sf_sim_t *sf_sim_new(const sf_scenario_t *sc)
{
    return sf_sim_new_checked(sc, NULL, 0);
}

void sf_sim_destroy(sf_sim_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_sim_t *s = *self_p;
    free(s->ix_id);
    free(s->ix_n_sg);
    free(s->ix_n_det);
    free(s->ix_n_mov);
    free(s->mov);
    free(s->lamp);
    free(s->lamp_code);
    free(s->presence);
    free(s->det_step);
    free(s->det_total);
    free(s->links);
    free(s->link_id);
    free(s->app);
    if (s->lanes)
        for (uint32_t i = 0; i < s->n_lanes; i++)
            free(s->lanes[i].pos);
    free(s->lanes);
    free(s->ldet);
    free(s->free_stack);
    free(s->v_id);
    free(s->v_type);
    free(s->v_flags);
    free(s->v_mov);
    free(s->v_nmov);
    free(s->v_nlane);
    free(s->v_bus);
    free(s->v_tsys);
    free(s->v_tarr);
    free(s->v_delay);
    free(s->v_delay_open);
    free(s->v_stops);
    free(s->v_stops_open);
    free(s->v_acc);
    free(s->v_tcross);
    free(s->v_tlc);
    if (s->src)
        for (uint32_t i = 0; i < s->n_src; i++) {
            free(s->src[i].t);
            free(s->src[i].type);
            free(s->src[i].bus);
        }
    free(s->src);
    free(s->gen);
    free(s->lines);
    free(s->bus);
    free(s->bay);
    free(s->rec);
    free(s);
    *self_p = NULL;
}

/* ---- inputs and simple outputs ---------------------------------------------------- */

int sf_sim_set_lamps(sf_sim_t *sim, uint32_t ix_idx, const uint8_t *codes, size_t n)
{
    if (!sim || ix_idx >= sim->n_ix || n > SF_MAX_SG || (n && !codes)) {
        errno = EINVAL;
        return -1;
    }
    for (size_t g = 0; g < n; g++) {
        sim->lamp_code[ix_idx][g] = codes[g];
        sim->lamp[ix_idx][g] = lamp_class(codes[g]);
    }
    return 0;
}

double sf_sim_time(const sf_sim_t *sim)
{
    return sim ? sim->t : 0.0;
}

uint64_t sf_sim_steps(const sf_sim_t *sim)
{
    return sim ? sim->step : 0;
}

bool sf_sim_finished(const sf_sim_t *sim)
{
    return !sim || sim->t >= sim->duration_s - 1e-9;
}

size_t sf_sim_memory(const sf_sim_t *sim)
{
    return sim ? sim->mem_bytes : 0;
}

size_t sf_sim_vehicle_count(const sf_sim_t *sim)
{
    return sim ? sim->n_on : 0;
}

int sf_sim_detectors(const sf_sim_t *sim, uint32_t ix_idx, uint64_t *presence, uint16_t *counts,
                     uint32_t *totals, size_t n)
{
    if (!sim || ix_idx >= sim->n_ix) {
        errno = EINVAL;
        return -1;
    }
    size_t nd = sim->ix_n_det[ix_idx];
    if (presence)
        *presence = sim->presence[ix_idx];
    size_t m = n < nd ? n : nd;
    for (size_t d = 0; d < m; d++) {
        if (counts)
            counts[d] = sim->det_step[(size_t)ix_idx * SF_MAX_DET + d];
        if (totals)
            totals[d] = sim->det_total[(size_t)ix_idx * SF_MAX_DET + d];
    }
    return (int)nd;
}

bool sf_sim_next_event(sf_sim_t *sim, sf_transit_event_t *ev)
{
    if (!sim || !ev || sim->ev_n == 0)
        return false;
    *ev = sim->ev[sim->ev_head];
    sim->ev_head = (sim->ev_head + 1u) % SF_SIM_EVENT_QUEUE;
    sim->ev_n--;
    return true;
}

int sf_sim_note_priority(sf_sim_t *sim, sf_prio_event_t event)
{
    if (!sim || (unsigned)event > SF_PRIO_REFUSED) {
        errno = EINVAL;
        return -1;
    }
    sim->prio[event]++;
    return 0;
}

size_t sf_sim_snapshot(const sf_sim_t *sim, sf_vehicle_snap_t *out, size_t cap)
{
    if (!sim)
        return 0;
    size_t k = 0;
    for (uint32_t l = 0; l < sim->n_lanes; l++) {
        const lane_t *ln = &sim->lanes[l];
        for (uint32_t i = 0; i < ln->n; i++, k++) {
            if (!out || k >= cap)
                continue;
            uint32_t w = ln->veh[i];
            sf_vehicle_snap_t *o = &out[k];
            o->id = sim->v_id[w];
            o->link_idx = ln->link;
            o->lane = ln->idx;
            o->type = sim->v_type[w];
            o->line = sim->v_bus[w] == SF_NONE32 ? SF_SIM_NO_LINE : sim->bus[sim->v_bus[w]].line;
            o->pos_m = ln->pos[i];
            o->speed_mps = ln->v[i];
        }
    }
    for (uint32_t i = 0; i < sim->n_bay; i++, k++) {
        if (!out || k >= cap)
            continue;
        const bus_t *b = &sim->bus[sim->bay[i]];
        sf_vehicle_snap_t *o = &out[k];
        o->id = sim->v_id[b->veh];
        o->link_idx = b->bay_link;
        o->lane = 0;
        o->type = SF_VEH_BUS;
        o->line = b->line;
        o->pos_m = b->bay_pos;
        o->speed_mps = 0;
    }
    return k;
}

int sf_sim_record(sf_sim_t *sim, const uint32_t *links, size_t n_links, double every_s)
{
    if (!sim || (n_links && !links) ||
        (n_links && (!isfinite(every_s) || every_s < sim->dt - 1e-9))) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n_links; i++)
        if (links[i] >= sim->n_links) {
            errno = EINVAL;
            return -1;
        }
    for (uint32_t i = 0; i < sim->n_links; i++)
        sim->links[i].recorded = 0;
    sim->rec_n = 0;
    sim->rec_every = 0;
    if (!n_links)
        return 0;
    for (size_t i = 0; i < n_links; i++)
        sim->links[links[i]].recorded = 1;
    sim->rec_every = every_s;
    sim->rec_next_step = sim->step;
    return 0;
}

const sf_traj_point_t *sf_sim_trajectory(const sf_sim_t *sim, size_t *n)
{
    if (n)
        *n = sim ? sim->rec_n : 0;
    return sim ? sim->rec : NULL;
}
