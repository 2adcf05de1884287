/* tests/test_detdiag.c — the centre's detector diagnosis (max presence, no activity, erratic) on
 * hand cases: what fails a detector, what does not, recovery, gaps and bad input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "detdiag.h"

/* One intersection: link 0 (two through lanes) with stop-bar detectors d0 (lane 0) and d1
 * (lane 1) of phase 2 (phase index 0), neighbours of each other; link 1 with d2 of phase 4
 * alone on its approach. */
typedef struct {
    sf_scenario_t sc;
    sf_intersection_t ix;
    sf_link_t links[2];
} fixture_t;

static void build(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    for (int l = 0; l < 2; l++) {
        f->links[l].n_lanes = 2;
        f->links[l].length_m = 200;
        f->links[l].to_kind = SF_NODE_INTERSECTION;
        f->links[l].from_kind = SF_NODE_BOUNDARY;
        for (int k = 0; k < 2; k++)
            f->links[l].lanes[k].use_mask = SF_LANE_USE_THROUGH;
    }
    f->ix.n_phases = 2;
    f->ix.phases[0].id = 2;
    f->ix.phases[1].id = 4;
    f->ix.n_det = 3;
    const uint32_t link[3] = {0, 0, 1};
    const uint8_t lane[3] = {0, 1, 0};
    const uint16_t pm[3] = {1, 1, 2};
    for (int d = 0; d < 3; d++) {
        snprintf(f->ix.det[d].id, sizeof f->ix.det[d].id, "D%d", d);
        f->ix.det[d].kind = SF_DET_PRESENCE;
        f->ix.det[d].link_idx = link[d];
        f->ix.det[d].lane = lane[d];
        f->ix.det[d].phase_mask = pm[d];
    }
    f->sc.n_intersections = 1;
    f->sc.intersections = &f->ix;
    f->sc.n_links = 2;
    f->sc.links = f->links;
}

#define GREEN2 0x2u
#define GREEN4 0x8u

/* What the unit shows at second s: 60 s detector intervals (seq = s / 60), phase 2 green
 * the first 30 s of every minute; vol / occ the last interval's counts and occupancy. */
typedef struct {
    uint16_t vol[3], occ[3];
    uint64_t presence;
    bool never_green2; /* phase 4 green all the time */
} unit_t;

static sf_linkq_obs_t at(unit_t *u, int s)
{
    sf_linkq_obs_t o = {(uint16_t)(s / 60),
                        60,
                        u->vol,
                        u->occ,
                        u->presence,
                        u->never_green2 || s % 60 >= 30 ? GREEN4 : GREEN2};
    return o;
}

/* Run seconds [from, to] polled every second; the changes seen go to ch (up to 8), their
 * number is returned, first_t the time of the first. */
static int run(sf_detdiag_t *d, unit_t *u, int from, int to, sf_detdiag_change_t *ch,
               double *first_t)
{
    int n = 0;
    for (int s = from; s <= to; s++) {
        sf_linkq_obs_t o = at(u, s);
        sf_detdiag_change_t c[3];
        int k = sf_detdiag_observe(d, 0, s, &o, c, 3);
        cr_assert_geq(k, 0);
        for (int j = 0; j < k && n < 8; j++) {
            if (n == 0 && first_t)
                *first_t = s;
            ch[n++] = c[j];
        }
    }
    return n;
}

/* d0 occupied at every poll, no counts, full occupancy, while phase 2 turns green every
 * minute: failed after max_presence_s (300 s) by max presence, once; free again: recovered. */
Test(detdiag, stuck_on_detector_fails_by_max_presence_and_recovers)
{
    fixture_t f;
    build(&f);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    cr_assert_not_null(d);
    unit_t u = {.vol = {0, 20, 0}, .occ = {1000, 300, 0}, .presence = 1};
    sf_detdiag_change_t ch[8];
    double t = -1;
    cr_assert_eq(run(d, &u, 0, 299, ch, &t), 0, "failed early at %.0f s", t);
    cr_assert_eq(run(d, &u, 300, 900, ch, &t), 1);
    cr_assert_float_eq(t, 300, 1e-9);
    cr_assert_eq(ch[0].det, 0);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_MAX_PRESENCE);
    cr_assert(ch[0].failed);
    cr_assert_float_eq(ch[0].for_s, 300, 1e-9);
    cr_assert_eq(sf_detdiag_failed(d, 0), 1u);
    cr_assert_str_eq(sf_detdiag_rule_name(ch[0].rule), "max_presence");
    u.presence = 0;
    cr_assert_eq(run(d, &u, 901, 905, ch, &t), 1);
    cr_assert_float_eq(t, 901, 1e-9);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_MAX_PRESENCE);
    cr_assert_not(ch[0].failed);
    cr_assert_float_eq(ch[0].for_s, 601, 1e-9);
    cr_assert_eq(sf_detdiag_failed(d, 0), 0u);
    sf_detdiag_destroy(&d);
    cr_assert_null(d);
}

/* What a working detector shows is not a failure: a queue moving over it (occupied at every
 * poll, but counting, below 100 % occupancy), and a queue waiting on a phase that never
 * turns green (nothing would have moved it). */
Test(detdiag, moving_or_unserved_queues_are_not_stuck)
{
    fixture_t f;
    build(&f);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    cr_assert_not_null(d);
    sf_detdiag_change_t ch[8];
    unit_t moving = {.vol = {25, 25, 0}, .occ = {950, 300, 0}, .presence = 1};
    cr_assert_eq(run(d, &moving, 0, 1800, ch, NULL), 0);
    sf_detdiag_destroy(&d);
    d = sf_detdiag_new(&f.sc, NULL);
    unit_t unserved = {
        .vol = {0, 0, 0}, .occ = {1000, 1000, 0}, .presence = 3, .never_green2 = true};
    cr_assert_eq(run(d, &unserved, 0, 1800, ch, NULL), 0);
    sf_detdiag_destroy(&d);
}

/* Session 7's false positives (the corridor's saturated phase-7 left bays I2-SB2 and
 * I4-SB2 failed as stuck): a queue that does not move through its phase's greens (a left
 * bay blocked by opposing flow or a full exit) holds its detector occupied with no count,
 * as a stuck one would. Alone on its movement (d2) or with every lane of the approach
 * standing (d0, d1) nothing shows the movement discharged: not failed at max_presence_s,
 * only past max_presence_alone_s (the unit-style timer). */
Test(detdiag, standing_queues_through_greens_are_not_stuck_before_the_unit_timer)
{
    fixture_t f;
    build(&f);
    sf_detdiag_opts_t o;
    sf_detdiag_opts_default(&o);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    cr_assert_not_null(d);
    sf_detdiag_change_t ch[8];
    double t = -1;
    /* d2 held through phase 4's green every minute, no count, full occupancy */
    unit_t left = {.vol = {20, 20, 0}, .occ = {300, 300, 1000}, .presence = 4};
    cr_assert_eq(run(d, &left, 0, (int)o.max_presence_alone_s - 1, ch, &t), 0,
                 "a standing queue alone on its movement failed at %.0f s", t);
    cr_assert_eq(run(d, &left, (int)o.max_presence_alone_s, 1800, ch, &t), 1);
    cr_assert_float_eq(t, o.max_presence_alone_s, 1e-9);
    cr_assert_eq(ch[0].det, 2);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_MAX_PRESENCE);
    cr_assert(ch[0].failed);
    sf_detdiag_destroy(&d);
    /* both lanes of phase 2's approach standing through its greens */
    d = sf_detdiag_new(&f.sc, NULL);
    unit_t blocked = {.vol = {0, 0, 5}, .occ = {1000, 1000, 100}, .presence = 3};
    cr_assert_eq(run(d, &blocked, 0, (int)o.max_presence_alone_s - 1, ch, &t), 0,
                 "a blocked approach failed at %.0f s", t);
    sf_detdiag_destroy(&d);
    /* a neighbour that counted fewer than max_presence_veh (2 a minute): no evidence at
     * max_presence_s, failed once it has counted them */
    d = sf_detdiag_new(&f.sc, NULL);
    unit_t slow = {.vol = {0, 2, 0}, .occ = {1000, 300, 0}, .presence = 1};
    cr_assert_eq(run(d, &slow, 0, 1800, ch, &t), 1);
    cr_assert_eq(ch[0].det, 0);
    cr_assert_float_eq(t, 60.0 * o.max_presence_veh / 2.0, 1e-9);
    sf_detdiag_destroy(&d);
}

/* Chatter (NTCIP 1202 erratic counts): d0 counting 60 a minute (a pulse a second, twice a
 * saturated lane's 30) is failed at the first interval showing it and recovers at the
 * first at or below erratic_cpm; a saturated lane (30 a minute) and exactly erratic_cpm
 * are not erratic. */
Test(detdiag, erratic_counts_fail_and_recover)
{
    fixture_t f;
    build(&f);
    sf_detdiag_opts_t o;
    sf_detdiag_opts_default(&o);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    cr_assert_not_null(d);
    sf_detdiag_change_t ch[8];
    double t = -1;
    unit_t u = {.vol = {60, 20, 0}, .occ = {500, 300, 0}};
    cr_assert_eq(run(d, &u, 0, 59, ch, &t), 0, "no interval yet, failed at %.0f s", t);
    cr_assert_eq(run(d, &u, 60, 600, ch, &t), 1);
    cr_assert_float_eq(t, 60, 1e-9);
    cr_assert_eq(ch[0].det, 0);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_ERRATIC);
    cr_assert(ch[0].failed);
    cr_assert_str_eq(sf_detdiag_rule_name(ch[0].rule), "erratic");
    cr_assert_eq(sf_detdiag_failed(d, 0), 1u);
    u.vol[0] = 25; /* the interval ending at 660 s */
    cr_assert_eq(run(d, &u, 601, 700, ch, &t), 1);
    cr_assert_float_eq(t, 660, 1e-9);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_ERRATIC);
    cr_assert_not(ch[0].failed);
    cr_assert_float_eq(ch[0].for_s, 600, 1e-9);
    cr_assert_eq(sf_detdiag_failed(d, 0), 0u);
    sf_detdiag_destroy(&d);
    d = sf_detdiag_new(&f.sc, NULL);
    unit_t sat = {.vol = {30, (uint16_t)o.erratic_cpm, 0}, .occ = {900, 900, 0}};
    cr_assert_eq(run(d, &sat, 0, 1800, ch, &t), 0, "failed at %.0f s", t);
    sf_detdiag_destroy(&d);
}

/* Vehicles crossing a detector at a constant headway h_s from t0_s on: how many in [a, b). */
static uint16_t crossings(double t0_s, double h_s, double a, double b)
{
    double first = ceil((a - t0_s) / h_s), end = ceil((b - t0_s) / h_s);
    if (first < 0)
        first = 0;
    return end > first ? (uint16_t)(end - first) : 0;
}

/* Short detector intervals (NTCIP's erratic rule is per minute, the unit's interval may be
 * anything): d0's lane discharges at saturation flow without a break (1900 veh/h, the top
 * of REFERENCE.md's 1800-1900; no lane gets more, none has green all the time), so one
 * short interval can hold a vehicle more than its share (3 in 4 s = 45 a minute); d1
 * chatters at a pulse a second (60 a minute). At every interval length d0 is never failed
 * and d1 is failed as erratic within its first minute of intervals. (Before the rule judged
 * a minute of intervals, d0 was failed at 2 and 4 s.) */
Test(detdiag, saturation_in_short_intervals_is_not_erratic_chatter_is)
{
    fixture_t f;
    build(&f);
    sf_detdiag_opts_t o;
    sf_detdiag_opts_default(&o);
    const uint16_t len_s[] = {2, 4, 5, 10, 15, 20, 30};
    const double h_s = 3600.0 / 1900.0;
    for (size_t n = 0; n < sizeof len_s / sizeof len_s[0]; n++) {
        const uint16_t I = len_s[n];
        sf_detdiag_t *d = sf_detdiag_new(&f.sc, &o);
        cr_assert_not_null(d);
        uint16_t vol[3] = {0}, peak = 0;
        int d0_changes = 0, d1_failed = 0;
        double d1_t = -1;
        for (int s = 0; s <= 1800; s++) {
            uint16_t seq = (uint16_t)(s / I);
            if (s > 0 && s % I == 0) { /* the interval [s - I, s) just completed */
                vol[0] = crossings(0.3, h_s, s - I, s);
                vol[1] = I; /* a pulse a second */
                if (vol[0] > peak)
                    peak = vol[0];
            }
            sf_linkq_obs_t ob = {seq, I, vol, NULL, 0, s % 60 < 30 ? GREEN2 : GREEN4};
            sf_detdiag_change_t ch[3];
            int k = sf_detdiag_observe(d, 0, s, &ob, ch, 3);
            cr_assert_geq(k, 0);
            for (int j = 0; j < k; j++) {
                d0_changes += ch[j].det == 0;
                if (ch[j].det == 1 && ch[j].failed && ch[j].rule == SF_DETDIAG_ERRATIC &&
                    d1_failed++ == 0)
                    d1_t = s;
            }
        }
        cr_assert_eq(d0_changes, 0, "%u s intervals: a lane at saturation flow was diagnosed", I);
        cr_assert_eq(d1_failed, 1, "%u s intervals: chatter failed %d times", I, d1_failed);
        cr_assert_leq(d1_t, 60 + I, "%u s intervals: chatter failed at %.0f s", I, d1_t);
        cr_assert_eq(sf_detdiag_failed(d, 0), 2u);
        if (I == 4) /* the case is real: one interval alone read above the threshold */
            cr_assert_gt(peak * 60.0 / I, o.erratic_cpm, "%u in %u s", peak, I);
        else if (I >= 10) /* and at 10 s and longer no interval alone did */
            cr_assert_leq(peak * 60.0 / I, o.erratic_cpm, "%u in %u s", peak, I);
        sf_detdiag_destroy(&d);
    }
}

/* d1 never occupied and never counting while its neighbour d0 counts: failed by no activity
 * after no_activity_s (600 s); d2, silent too but alone on its approach, is not. With the
 * neighbour counting 2 a minute the 30 vehicles take 15 intervals. A count recovers it. */
Test(detdiag, dead_detector_fails_by_no_activity_next_to_counting_neighbours)
{
    fixture_t f;
    build(&f);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    cr_assert_not_null(d);
    unit_t u = {.vol = {20, 0, 0}, .occ = {200, 0, 0}};
    sf_detdiag_change_t ch[8];
    double t = -1;
    cr_assert_eq(run(d, &u, 0, 3600, ch, &t), 1);
    cr_assert_float_eq(t, 600, 1e-9);
    cr_assert_eq(ch[0].det, 1);
    cr_assert_eq(ch[0].rule, SF_DETDIAG_NO_ACTIVITY);
    cr_assert(ch[0].failed);
    cr_assert_eq(sf_detdiag_failed(d, 0), 2u);
    u.vol[1] = 3; /* the interval ending at 3660 s counts on d1 */
    cr_assert_eq(run(d, &u, 3601, 3660, ch, &t), 1);
    cr_assert_float_eq(t, 3660, 1e-9);
    cr_assert_not(ch[0].failed);
    cr_assert_eq(sf_detdiag_failed(d, 0), 0u);
    sf_detdiag_destroy(&d);
    /* a quiet neighbour: 2 a minute */
    d = sf_detdiag_new(&f.sc, NULL);
    unit_t q = {.vol = {2, 0, 0}, .occ = {20, 0, 0}};
    cr_assert_eq(run(d, &q, 0, 3600, ch, &t), 1);
    cr_assert_float_eq(t, 900, 1e-9);
    cr_assert_eq(ch[0].det, 1);
    sf_detdiag_destroy(&d);
}

/* A gap in the observations (the unit offline) restarts the timers: nothing is known about
 * it. */
Test(detdiag, a_gap_restarts_the_timers)
{
    fixture_t f;
    build(&f);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    unit_t u = {.vol = {0, 20, 0}, .occ = {1000, 300, 0}, .presence = 1};
    sf_detdiag_change_t ch[8];
    double t = -1;
    cr_assert_eq(run(d, &u, 0, 200, ch, &t), 0);
    cr_assert_eq(run(d, &u, 230, 529, ch, &t), 0, "failed at %.0f s across the gap", t);
    cr_assert_eq(run(d, &u, 530, 600, ch, &t), 1);
    cr_assert_float_eq(t, 530, 1e-9);
    sf_detdiag_destroy(&d);
}

Test(detdiag, bad_input_is_refused_and_changes_nothing)
{
    fixture_t f;
    build(&f);
    sf_detdiag_opts_t o;
    sf_detdiag_opts_default(&o);
    o.max_presence_s = 0;
    errno = 0;
    cr_assert_null(sf_detdiag_new(&f.sc, &o));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(sf_detdiag_new(NULL, NULL));
    sf_detdiag_opts_default(&o);
    o.erratic_cpm = 0;
    cr_assert_null(sf_detdiag_new(&f.sc, &o));
    sf_detdiag_opts_default(&o);
    o.max_presence_veh = NAN;
    cr_assert_null(sf_detdiag_new(&f.sc, &o));
    sf_detdiag_opts_default(&o);
    o.max_presence_alone_s = o.max_presence_s - 1;
    cr_assert_null(sf_detdiag_new(&f.sc, &o));
    cr_assert_eq(errno, EINVAL);
    sf_detdiag_t *d = sf_detdiag_new(&f.sc, NULL);
    unit_t u = {.vol = {0, 20, 0}, .occ = {1000, 300, 0}, .presence = 1};
    sf_linkq_obs_t ok = at(&u, 10), novol = ok;
    novol.det_volume = NULL;
    sf_detdiag_change_t ch[1];
    cr_assert_eq(sf_detdiag_observe(d, 0, 10, &ok, ch, 1), 0);
    cr_assert_eq(sf_detdiag_observe(d, 1, 11, &ok, ch, 1), -1);
    cr_assert_eq(sf_detdiag_observe(d, 0, 9, &ok, ch, 1), -1);
    cr_assert_eq(sf_detdiag_observe(d, 0, 11, &novol, ch, 1), -1);
    cr_assert_eq(sf_detdiag_observe(d, 0, 11, NULL, ch, 1), -1);
    cr_assert_eq(sf_detdiag_observe(d, 0, 11, &ok, NULL, 1), -1);
    cr_assert_eq(errno, EINVAL);
    /* refused observations changed nothing: held from t = 10 on, failed at 310 */
    sf_detdiag_change_t c8[8];
    double t = -1;
    cr_assert_eq(run(d, &u, 11, 400, c8, &t), 1);
    cr_assert_float_eq(t, 310, 1e-9);
    cr_assert_eq(sf_detdiag_failed(d, 1), 0u);
    sf_detdiag_destroy(&d);
    sf_detdiag_destroy(NULL);
}
