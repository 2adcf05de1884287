/* tests/test_linkq.c — link / movement vehicle estimates from detector data, on hand cases. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linkq.h"

/* Two intersections A (0) and B (1) on an arterial W -> A -> B -> E.
 *  link 0 W-A: entry, 300 m, lane 0 through, lane 1 left (bay 30 m); ratios T .9 L .1
 *  link 1 A-B: 200 m at 10 m/s (free flow 20 s), lane 0 through+right, lane 1 through;
 *              ratios T .8 R .2
 *  link 2 B-E and link 3 A-S, link 4 B-S: exits to boundaries.
 * A: movement 0 W-A through (phase 2), movement 1 W-A left (phase 4); stop-bar presence
 *    detectors d0 lane 0 (phase 2) and d1 lane 1 (phase 4), advance count detector d2 on
 *    lane 0, 50 m upstream, 2 m long.
 * B: movement 0 A-B through and movement 1 A-B right (phase 2); stop-bar detectors d0
 *    (lane 0) and d1 (lane 1).
 * Cars: length 5 m + jam gap 2.5 m = jam spacing 7.5 m. */
typedef struct {
    sf_scenario_t sc;
    sf_intersection_t ix[2];
    sf_link_t links[5];
    sf_boundary_t bnd[4];
} fixture_t;

static void link_(sf_link_t *l, const char *id, sf_node_kind_t fk, uint32_t fi, sf_node_kind_t tk,
                  uint32_t ti, float len, uint8_t n_lanes)
{
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    l->from_kind = fk;
    l->from_idx = fi;
    l->to_kind = tk;
    l->to_idx = ti;
    l->length_m = len;
    l->speed_mps = 10;
    l->n_lanes = n_lanes;
    for (uint8_t k = 0; k < n_lanes; k++)
        l->lanes[k].use_mask = SF_LANE_USE_THROUGH;
}

static void det(sf_intersection_t *ix, sf_det_kind_t kind, uint32_t link, uint8_t lane, float dist,
                float len)
{
    sf_detector_t *d = &ix->det[ix->n_det++];
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "D%u", (unsigned)ix->n_det);
    d->kind = kind;
    d->link_idx = link;
    d->lane = lane;
    d->distance_m = dist;
    d->length_m = len;
}

static void mv(sf_intersection_t *ix, uint32_t from, uint32_t to, sf_turn_t t, uint8_t sg)
{
    sf_movement_t *m = &ix->movements[ix->n_movements++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "M%u", (unsigned)ix->n_movements);
    m->from_link_idx = from;
    m->to_link_idx = to;
    m->turn = t;
    m->sg_idx = sg;
}

static void two_phases(sf_intersection_t *ix, const char *id)
{
    memset(ix, 0, sizeof *ix);
    snprintf(ix->id, sizeof ix->id, "%s", id);
    ix->n_phases = 2;
    ix->phases[0].id = 2;
    ix->phases[1].id = 4;
    ix->n_sg = 2;
    ix->sg[0].phase_idx = 0;
    ix->sg[1].phase_idx = 1;
}

static void build(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    link_(&f->links[0], "W-A", SF_NODE_BOUNDARY, 0, SF_NODE_INTERSECTION, 0, 300, 2);
    f->links[0].lanes[1].use_mask = SF_LANE_USE_LEFT;
    f->links[0].lanes[1].bay_m = 30;
    f->links[0].turn_ratio[SF_TURN_THROUGH] = 0.9f;
    f->links[0].turn_ratio[SF_TURN_LEFT] = 0.1f;
    link_(&f->links[1], "A-B", SF_NODE_INTERSECTION, 0, SF_NODE_INTERSECTION, 1, 200, 2);
    f->links[1].lanes[0].use_mask = SF_LANE_USE_THROUGH | SF_LANE_USE_RIGHT;
    f->links[1].turn_ratio[SF_TURN_THROUGH] = 0.8f;
    f->links[1].turn_ratio[SF_TURN_RIGHT] = 0.2f;
    link_(&f->links[2], "B-E", SF_NODE_INTERSECTION, 1, SF_NODE_BOUNDARY, 1, 300, 2);
    link_(&f->links[3], "A-S", SF_NODE_INTERSECTION, 0, SF_NODE_BOUNDARY, 2, 300, 1);
    link_(&f->links[4], "B-S", SF_NODE_INTERSECTION, 1, SF_NODE_BOUNDARY, 3, 300, 1);
    two_phases(&f->ix[0], "A");
    mv(&f->ix[0], 0, 1, SF_TURN_THROUGH, 0);
    mv(&f->ix[0], 0, 3, SF_TURN_LEFT, 1);
    det(&f->ix[0], SF_DET_PRESENCE, 0, 0, 6, 6);
    det(&f->ix[0], SF_DET_PRESENCE, 0, 1, 6, 6);
    det(&f->ix[0], SF_DET_COUNT, 0, 0, 50, 2);
    two_phases(&f->ix[1], "B");
    mv(&f->ix[1], 1, 2, SF_TURN_THROUGH, 0);
    mv(&f->ix[1], 1, 4, SF_TURN_RIGHT, 0);
    det(&f->ix[1], SF_DET_PRESENCE, 1, 0, 6, 6);
    det(&f->ix[1], SF_DET_PRESENCE, 1, 1, 6, 6);
    f->sc.n_intersections = 2;
    f->sc.intersections = f->ix;
    f->sc.n_links = 5;
    f->sc.links = f->links;
    f->sc.n_boundaries = 4;
    f->sc.boundaries = f->bnd;
    f->sc.demand.vtype[SF_VEH_CAR].length_m = 5;
    f->sc.demand.vtype[SF_VEH_CAR].s0_m = 2.5f;
}

/* An observation: interval seq of 60 s with volumes vol (may be NULL: no counts). */
static sf_linkq_obs_t obs(uint16_t seq, const uint16_t *vol, uint64_t presence, uint16_t greens)
{
    sf_linkq_obs_t o = {seq, vol ? 60 : 0, vol, NULL, presence, greens};
    return o;
}

#define GREEN2 0x2u /* phase number 2 */
#define GREEN4 0x8u /* phase number 4 */

/* A and B start empty at t = 0; B's first interval (60 s, nothing counted) comes first, so
 * its 60 s are predicted at no rate yet; then A's counts a_through through vehicles, which
 * the lane shares send into A-B (80 % to B's through movement, 20 % to its right). */
static sf_linkq_t *after_first_interval(const fixture_t *f, uint16_t a_through)
{
    sf_linkq_t *q = sf_linkq_new(&f->sc, NULL);
    cr_assert_not_null(q);
    uint16_t zero[3] = {0}, va[3] = {a_through, 0, 0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0), oa = obs(1, va, 0, 0);
    cr_assert_eq(sf_linkq_observe(q, 0, 0, &oz), 0);
    cr_assert_eq(sf_linkq_observe(q, 1, 0, &oz), 0);
    cr_assert_eq(sf_linkq_observe(q, 1, 60, &oz), 0);
    cr_assert_eq(sf_linkq_observe(q, 0, 60, &oa), 0);
    return q;
}

Test(linkq, lane_share_spreads_each_turn_over_its_lanes)
{
    fixture_t f;
    build(&f);
    /* A-B lane 0: w(T) = .8 / 2 lanes = .4, w(R) = .2 / 1 lane = .2 -> T 2/3, R 1/3 */
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[1], 0, SF_TURN_THROUGH), 2.0 / 3, 1e-6);
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[1], 0, SF_TURN_RIGHT), 1.0 / 3, 1e-6);
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[1], 1, SF_TURN_THROUGH), 1.0, 1e-9);
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[1], 1, SF_TURN_RIGHT), 0.0, 1e-9);
    /* an exclusive lane counts its turn exactly */
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[0], 1, SF_TURN_LEFT), 1.0, 1e-9);
    /* no ratios: the turns a lane allows count equally */
    f.links[1].turn_ratio[SF_TURN_THROUGH] = 0;
    f.links[1].turn_ratio[SF_TURN_RIGHT] = 0;
    /* w(T) = 1/2, w(R) = 1/1 */
    cr_assert_float_eq(sf_linkq_lane_share(&f.links[1], 0, SF_TURN_RIGHT), 2.0 / 3, 1e-6);
    errno = 0;
    cr_assert_eq(sf_linkq_lane_share(&f.links[1], 2, SF_TURN_RIGHT), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_linkq_lane_share(NULL, 0, SF_TURN_RIGHT), -1);
    cr_assert_eq(sf_linkq_lane_share(&f.links[1], 0, SF_TURN_N), -1);
}

Test(linkq, storage_counts_bays_and_the_scenario_jam_spacing)
{
    fixture_t f;
    build(&f);
    /* 300 m + the 30 m bay at 7.5 m = 44 veh; 2 x 200 m = 53.33 */
    cr_assert_float_eq(sf_linkq_storage_veh(&f.links[0], 7.5), 44.0, 1e-9);
    cr_assert_eq(sf_linkq_storage_veh(&f.links[0], 0), -1);
    cr_assert_eq(sf_linkq_storage_veh(&f.links[0], NAN), -1);
    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    cr_assert_not_null(q);
    cr_assert_float_eq(sf_linkq_storage(q, 0), 44.0, 1e-6);
    cr_assert_float_eq(sf_linkq_storage(q, 1), 400.0 / 7.5, 1e-6);
    cr_assert_eq(sf_linkq_storage(q, 5), -1);
    sf_linkq_destroy(&q);
    cr_assert_null(q);
    sf_linkq_destroy(&q); /* safe twice */
}

Test(linkq, counts_move_vehicles_from_link_to_link)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    cr_assert_not_null(q);
    uint16_t zero[3] = {0};
    cr_assert_eq(sf_linkq_observe(q, 1, 0, &(sf_linkq_obs_t){0, 60, zero, NULL, 0, 0}), 0);
    cr_assert_eq(sf_linkq_observe(q, 0, 0, &(sf_linkq_obs_t){0, 60, zero, NULL, 0, 0}), 0);
    /* interval 1 at A: 30 through (lane 0) and 6 left (lane 1) crossed A's stop line */
    uint16_t va[3] = {30, 6, 0};
    sf_linkq_obs_t oa = obs(1, va, 0, 0);
    cr_assert_eq(sf_linkq_observe(q, 1, 60, &(sf_linkq_obs_t){0, 60, zero, NULL, 0, 0}), 0);
    cr_assert_eq(sf_linkq_observe(q, 0, 60, &oa), 0);
    /* the 30 through vehicles are now on A-B, shared by its ratios: 24 through, 6 right */
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 6.0, 1e-9);
    cr_assert_float_eq(sf_linkq_link(q, 1), 30.0, 1e-9);
    cr_assert_float_eq(sf_linkq_link(q, 2), 0.0, 1e-9); /* to a boundary: not seen */
    /* the entry link has no upstream count and nothing was predicted: 0, not negative */
    cr_assert_float_eq(sf_linkq_link(q, 0), 0.0, 1e-9);
    /* interval 1 at B: 12 on lane 0 and 9 on lane 1 left: through 12 x 2/3 + 9 = 17,
     * right 12 x 1/3 = 4 */
    uint16_t vb[2] = {12, 9};
    sf_linkq_obs_t ob = obs(1, vb, 0, 0);
    cr_assert_eq(sf_linkq_observe(q, 1, 60, &ob), 0);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0 - 17.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 6.0 - 4.0, 1e-9);
    /* the same interval seen again adds nothing */
    cr_assert_eq(sf_linkq_observe(q, 1, 60, &ob), 0);
    cr_assert_float_eq(sf_linkq_link(q, 1), 9.0, 1e-9);
    sf_linkq_destroy(&q);
}

Test(linkq, counted_arrivals_replace_predicted_ones)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = after_first_interval(&f, 30); /* into A-B: through 24 / 60 s = 0.4 veh/s */
    uint16_t zero[3] = {0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0, 1e-9);
    /* 30 s at B with B red: 0.4 x 30 = 12 more predicted */
    sf_linkq_observe(q, 1, 90, &oz);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 36.0, 1e-9);
    /* A's next interval counts 15 through (12 to B's through movement): the 12 predicted
     * are replaced by the 12 counted */
    uint16_t va2[3] = {15, 0, 0};
    sf_linkq_obs_t oa2 = obs(2, va2, 0, 0);
    sf_linkq_observe(q, 0, 120, &oa2);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0 + 12.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 6.0 + 3.0, 1e-9);
    sf_linkq_destroy(&q);
}

Test(linkq, discharge_is_predicted_while_green_and_occupied)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = after_first_interval(&f, 30);
    uint16_t zero[3] = {0};
    /* stop rates of arrival for this case: A counts nothing more from now on */
    sf_linkq_obs_t oa0 = obs(2, zero, 0, 0);
    sf_linkq_observe(q, 0, 60, &oa0);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0, 1e-9);
    /* B green for phase 2, lane 0 occupied, 2 s: through discharges over 2/3 + 1 lanes at
     * 1800 veh/h = 0.8333 veh/s, right over 1/3 lane = 0.1667 veh/s */
    sf_linkq_obs_t og = obs(0, zero, 1u << 0, GREEN2);
    sf_linkq_observe(q, 1, 62, &og);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0 - 2 * 0.5 * 5.0 / 3, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 6.0 - 2 * 0.5 / 3, 1e-9);
    /* red: nothing leaves */
    sf_linkq_obs_t or_ = obs(0, zero, 1u << 0, GREEN4);
    sf_linkq_observe(q, 1, 70, &or_);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0 - 2 * 0.5 * 5.0 / 3, 1e-9);
    /* B's interval then counts 20 on lane 1 only: through 20 counted replace 3.33 predicted,
     * right 0 counted replace 0.33 predicted */
    uint16_t vb[2] = {0, 20};
    sf_linkq_obs_t ob = obs(1, vb, 0, GREEN4);
    sf_linkq_observe(q, 1, 70, &ob);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 4.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 6.0, 1e-9);
    sf_linkq_destroy(&q);
}

Test(linkq, idle_stop_bar_on_green_leaves_only_moving_vehicles)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = after_first_interval(&f, 30); /* through 0.4 veh/s, right 0.1 veh/s */
    uint16_t zero[3] = {0};
    double before = sf_linkq_movement(q, 1, 0); /* 24 */
    /* green, both lanes idle: 2 s is not yet enough (idle_clear_s 3 s) */
    sf_linkq_obs_t og = obs(0, zero, 0, GREEN2);
    sf_linkq_observe(q, 1, 61, &og);
    sf_linkq_observe(q, 1, 62, &og);
    cr_assert_gt(sf_linkq_movement(q, 1, 0), before);
    /* a vehicle on lane 1 breaks the idle time */
    sf_linkq_obs_t oo = obs(0, zero, 1u << 1, GREEN2);
    sf_linkq_observe(q, 1, 63, &oo);
    sf_linkq_observe(q, 1, 64, &og);
    sf_linkq_observe(q, 1, 65, &og);
    cr_assert_gt(sf_linkq_movement(q, 1, 0), 10.0);
    /* 3 s idle on green: only the vehicles moving along the link are left, at most the
     * arrival rate x free-flow time: 0.4 x 20 = 8 through, 0.1 x 20 = 2 right */
    sf_linkq_observe(q, 1, 67, &og);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 8.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 1), 2.0, 1e-9);
    /* idle on red says nothing: the estimate grows with arrivals */
    sf_linkq_obs_t or_ = obs(0, zero, 0, GREEN4);
    sf_linkq_observe(q, 1, 77, &or_);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 12.0, 1e-9);
    sf_linkq_destroy(&q);
}

Test(linkq, held_advance_detector_means_the_queue_reaches_it)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    uint16_t zero[3] = {0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0);
    sf_linkq_observe(q, 0, 0, &oz);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 0.0, 1e-9);
    /* d2 (advance, lane 0, 50 m + 2 m) occupied 3 s: could be a slow vehicle */
    sf_linkq_obs_t oh = obs(0, zero, 1u << 2, GREEN4);
    for (int s = 1; s <= 3; s++)
        sf_linkq_observe(q, 0, s, &oh);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 0.0, 1e-9);
    /* 4 s: a standing queue reaches it: lane 0 (through only) holds 52 / 7.5 vehicles */
    sf_linkq_observe(q, 0, 4, &oh);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 52.0 / 7.5, 1e-6);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 1), 0.0, 1e-9); /* not on the left lane */
    /* the stop-bar detector of the left lane (6 m + 6 m) held 4 s on red: 12 / 7.5 */
    sf_linkq_obs_t ol = obs(0, zero, 1u << 1 | 1u << 2, GREEN2);
    for (int s = 5; s <= 8; s++) {
        cr_assert_float_eq(sf_linkq_movement(q, 0, 1), 0.0, 1e-9);
        sf_linkq_observe(q, 0, s, &ol);
    }
    cr_assert_float_eq(sf_linkq_movement(q, 0, 1), 12.0 / 7.5, 1e-6);
    /* the through queue moves up over d2 in short gaps: it still reaches d2, counted
     * departures (30) do not take the estimate below 52 / 7.5 */
    uint16_t v1[3] = {30, 0, 0};
    sf_linkq_obs_t og = obs(1, v1, 1u << 2, GREEN2);
    sf_linkq_obs_t ogap = obs(1, v1, 1u << 0, GREEN2);
    sf_linkq_observe(q, 0, 9, &ogap);
    sf_linkq_observe(q, 0, 11, &og);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 52.0 / 7.5, 1e-6);
    sf_linkq_observe(q, 0, 12, &ogap);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 52.0 / 7.5, 1e-6);
    /* d2 free for 3 s: the queue's tail has passed it, the bound is gone: 2 s of
     * discharge over lane 0 at 0.5 veh/s */
    sf_linkq_observe(q, 0, 14, &ogap);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 52.0 / 7.5 - 1, 1e-6);
    sf_linkq_destroy(&q);
}

Test(linkq, a_link_holds_at_most_its_storage)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = after_first_interval(&f, 90); /* 90 vehicles into a 53.3-vehicle link */
    uint16_t zero[3] = {0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0);
    sf_linkq_observe(q, 1, 61, &oz); /* B applies its storage */
    cr_assert_float_eq(sf_linkq_link(q, 1), 400.0 / 7.5, 1e-6);
    /* scaled together: the 80/20 split is kept */
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0) / sf_linkq_link(q, 1), 0.8, 1e-6);
    sf_linkq_destroy(&q);
}

Test(linkq, entry_arrivals_follow_the_departures_measured)
{
    fixture_t f;
    build(&f);
    f.ix[0].n_det = 2; /* no advance detector on W-A */
    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    uint16_t zero[3] = {0}, va[3] = {30, 6, 0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0);
    sf_linkq_observe(q, 0, 0, &oz);
    sf_linkq_obs_t oa = obs(1, va, 0, 0);
    sf_linkq_observe(q, 0, 60, &oa); /* through 0.5 veh/s, left 0.1 veh/s */
    sf_linkq_obs_t o1 = obs(1, zero, 0, 0);
    sf_linkq_observe(q, 0, 70, &o1);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 5.0, 1e-9);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 1), 1.0, 1e-9);
    /* next interval: 10 through (0.1667 veh/s) while the queue never cleared: departures
     * are a lower bound of arrivals, the rate stays 0.5; the predicted arrivals stay
     * (nothing counted replaces them), the departures are counted */
    uint16_t va2[3] = {10, 6, 0};
    sf_linkq_obs_t oa2 = obs(2, va2, 0, 0);
    sf_linkq_observe(q, 0, 120, &oa2); /* 5 + 0.5 x 50 = 30 predicted in, 10 out */
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 20.0, 1e-9);
    sf_linkq_obs_t o2 = obs(2, zero, 0, 0);
    sf_linkq_observe(q, 0, 126, &o2);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 20.0 + 0.5 * 6, 1e-9);
    /* the through queue clears on green (lane 0 idle 3 s): cut to 0.5 x 30 s (300 m at
     * 10 m/s) = 15 moving; the next interval's 10 departures then lower the rate to the
     * average 0.3333 */
    sf_linkq_obs_t og = obs(2, zero, 0, GREEN2);
    sf_linkq_observe(q, 0, 127, &og);
    sf_linkq_observe(q, 0, 130, &og);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 15.0, 1e-9);
    uint16_t va3[3] = {10, 0, 0};
    sf_linkq_obs_t oa3 = obs(3, va3, 0, 0);
    sf_linkq_observe(q, 0, 180, &oa3); /* 15 + 0.5 x 50 - 10 */
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 30.0, 1e-9);
    sf_linkq_obs_t o3 = obs(3, zero, 0, 0);
    sf_linkq_observe(q, 0, 186, &o3);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 30.0 + 6.0 / 3, 1e-9);
    sf_linkq_destroy(&q);
}

Test(linkq, bad_input_is_refused_and_changes_nothing)
{
    fixture_t f;
    build(&f);
    sf_linkq_opts_t o;
    sf_linkq_opts_default(&o);
    o.idle_clear_s = 0;
    errno = 0;
    cr_assert_null(sf_linkq_new(&f.sc, &o));
    cr_assert_eq(errno, EINVAL);
    sf_linkq_opts_default(&o);
    o.entry_rate_keep = 1.5;
    cr_assert_null(sf_linkq_new(&f.sc, &o));
    cr_assert_null(sf_linkq_new(NULL, NULL));
    fixture_t g;
    build(&g);
    g.ix[1].movements[0].from_link_idx = 0; /* W-A does not end at B */
    errno = 0;
    cr_assert_null(sf_linkq_new(&g.sc, NULL));
    cr_assert_eq(errno, EINVAL);

    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    uint16_t zero[3] = {0}, va[3] = {30, 0, 0};
    sf_linkq_obs_t oz = obs(0, zero, 0, 0);
    sf_linkq_observe(q, 0, 0, &oz);
    sf_linkq_observe(q, 1, 0, &oz);
    sf_linkq_obs_t oa = obs(1, va, 0, 0);
    sf_linkq_observe(q, 0, 60, &oa);
    double n = sf_linkq_movement(q, 1, 0);
    errno = 0;
    cr_assert_eq(sf_linkq_observe(q, 2, 60, &oz), -1); /* no intersection 2 */
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_linkq_observe(q, 0, 30, &oz), -1); /* time going back */
    cr_assert_eq(sf_linkq_observe(q, 0, NAN, &oz), -1);
    sf_linkq_obs_t onull = {2, 60, NULL, NULL, 0, 0};
    cr_assert_eq(sf_linkq_observe(q, 0, 61, &onull), -1);
    cr_assert_eq(sf_linkq_observe(q, 0, 61, NULL), -1);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), n, 1e-12);
    cr_assert_eq(sf_linkq_movement(q, 1, 2), -1);
    cr_assert_eq(sf_linkq_movement(q, 2, 0), -1);
    cr_assert_eq(sf_linkq_link(q, 5), -1);
    sf_linkq_destroy(&q);
}

/* (the ratios are floats: shares of them hold to about 1e-7) */
Test(linkq, entry_arrivals_counted_upstream_of_the_queue)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = sf_linkq_new(&f.sc, NULL);
    uint16_t zero[3] = {0}, occ_free[3] = {0, 0, 100}, occ_held[3] = {0, 0, 500};
    sf_linkq_obs_t oz = {0, 60, zero, occ_free, 0, 0};
    sf_linkq_observe(q, 0, 0, &oz);
    /* interval 1: the advance detector on lane 0 (upstream of the 30 m bay, the only
     * full-length lane) counts 40 arrivals at 10 % occupancy: through 0.9 x 40 = 36 came,
     * 30 left; left 4 came, 6 left (clamped at 0) */
    uint16_t v1[3] = {30, 6, 40};
    sf_linkq_obs_t o1 = {1, 60, v1, occ_free, 0, 0};
    sf_linkq_observe(q, 0, 60, &o1);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 6.0, 1e-5);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 1), 0.0, 1e-5);
    sf_linkq_obs_t o1b = {1, 60, v1, occ_free, 0, 0};
    sf_linkq_observe(q, 0, 70, &o1b); /* 0.6 veh/s through */
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 12.0, 1e-5);
    /* interval 2: the queue stands over the detector (50 %): its 25 are the queue's
     * discharge, not arrivals: the predicted arrivals (0.6 veh/s) are kept */
    uint16_t v2[3] = {20, 0, 25};
    sf_linkq_obs_t o2 = {2, 60, v2, occ_held, 0, 0};
    sf_linkq_observe(q, 0, 120, &o2); /* 12 + 30 in - 20 out */
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 22.0, 1e-5);
    sf_linkq_obs_t o2b = {2, 60, v2, occ_held, 0, 0};
    sf_linkq_observe(q, 0, 130, &o2b);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 28.0, 1e-5);
    /* interval 3 free again: 10 counted (9 through) replace the 36 predicted */
    uint16_t v3[3] = {0, 0, 10};
    sf_linkq_obs_t o3 = {3, 60, v3, occ_free, 0, 0};
    sf_linkq_observe(q, 0, 180, &o3);
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 31.0, 1e-5);
    /* a bay reaching past the detector: vehicles may change into it before it, the
     * counts no longer see every arrival (departures are used instead) */
    sf_linkq_destroy(&q);
    f.links[0].lanes[1].bay_m = 60;
    q = sf_linkq_new(&f.sc, NULL);
    sf_linkq_observe(q, 0, 0, &oz);
    sf_linkq_observe(q, 0, 60, &o1);
    sf_linkq_observe(q, 0, 70, &o1b); /* departures 30 / 60 s = 0.5 veh/s */
    cr_assert_float_eq(sf_linkq_movement(q, 0, 0), 5.0, 1e-5);
    sf_linkq_destroy(&q);
}

/* Ten minutes at B with A sending 30 vehicles a minute into A-B (24 through, 6 right) and B
 * clearing them: phase 2 green 30 s, red 30 s; lane 0 (through + right) counts 18 a minute,
 * occupied while red and every other second on green (vehicles passing); lane 1's detector
 * d1 is stuck on (always occupied, counting nothing) while lane 1 really carries 12. Polled
 * every second; failed = the mask B's detectors get from the diagnosis. Returns link A-B. */
static double ten_minutes_stuck_lane(const fixture_t *f, uint64_t failed)
{
    sf_linkq_t *q = sf_linkq_new(&f->sc, NULL);
    cr_assert_not_null(q);
    cr_assert_eq(sf_linkq_set_failed(q, 1, failed), 0);
    uint16_t va[3] = {30, 0, 0}, vb[2] = {18, 0};
    for (int s = 0; s <= 600; s++) {
        uint16_t seq = (uint16_t)(s / 60);
        bool green = s % 60 < 30;
        uint64_t pres = (uint64_t)1 << 1 | (!green || s % 2 ? 1u : 0u);
        sf_linkq_obs_t oa = obs(seq, va, 0, 0);
        sf_linkq_obs_t ob = obs(seq, vb, pres, green ? GREEN2 : GREEN4);
        cr_assert_eq(sf_linkq_observe(q, 0, s, &oa), 0);
        cr_assert_eq(sf_linkq_observe(q, 1, s, &ob), 0);
    }
    double n = sf_linkq_link(q, 1);
    sf_linkq_destroy(&q);
    return n;
}

/* A stuck-on stop-bar detector counts none of its lane's departures and never lets the
 * approach idle on green: A-B's estimate climbs to its storage although B clears every
 * vehicle. Once the detector is failed, lane 0's count speaks for both through lanes
 * (12 x 2 = 24 through, 6 right: the arrivals) and the estimate stays at what a cycle's
 * arrivals leave. */
Test(linkq, a_failed_stuck_detector_is_ignored)
{
    fixture_t f;
    build(&f);
    double storage = 400.0 / 7.5; /* A-B: 2 lanes x 200 m / 7.5 m */
    double trusted = ten_minutes_stuck_lane(&f, 0);
    double ignored = ten_minutes_stuck_lane(&f, 1u << 1);
    cr_assert_float_eq(trusted, storage, 1e-6, "trusted: %.2f of %.2f", trusted, storage);
    cr_assert_lt(ignored, 30.0, "ignored: %.2f vehicles", ignored);
    cr_assert_lt(ignored, storage / 2);
}

/* Every stop-bar detector of B failed: no counts replace the predicted departures, which
 * run at saturation flow whenever phase 2 is green (the model alone), and the idle
 * clearing, which would empty the link on every green, does not apply. */
Test(linkq, movements_without_working_detectors_follow_the_model)
{
    fixture_t f;
    build(&f);
    sf_linkq_t *q = after_first_interval(&f, 30); /* through 24, right 6; 0.4 + 0.1 veh/s */
    cr_assert_eq(sf_linkq_set_failed(q, 1, 0x3), 0);
    uint16_t zero[2] = {0};
    /* red 20 s: arrivals only */
    sf_linkq_obs_t or_ = obs(0, zero, 0, GREEN4);
    sf_linkq_observe(q, 1, 80, &or_);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), 24.0 + 8.0, 1e-9);
    /* green 4 s, detectors idle: through discharges 5/3 lanes x 0.5 veh/s, not cleared */
    sf_linkq_obs_t og = obs(0, zero, 0, GREEN2);
    for (int s = 81; s <= 84; s++)
        sf_linkq_observe(q, 1, s, &og);
    double th = 32.0 + 4 * 0.4 - 4 * 0.5 * 5.0 / 3;
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), th, 1e-9);
    /* an interval counting nothing (the failed detectors) changes nothing */
    sf_linkq_obs_t oc = obs(1, zero, 0, GREEN2);
    sf_linkq_observe(q, 1, 84, &oc);
    cr_assert_float_eq(sf_linkq_movement(q, 1, 0), th, 1e-9);
    /* bad input */
    cr_assert_eq(sf_linkq_set_failed(q, 2, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_linkq_set_failed(NULL, 0, 1), -1);
    sf_linkq_destroy(&q);
}
