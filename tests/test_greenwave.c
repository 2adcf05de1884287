/* tests/test_greenwave.c — offsets, bandwidth and its optimisation on hand-checked
 * corridors, and the corridor taken from a scenario. */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "controller.h"
#include "greenwave.h"
#include "scenario.h"

/* n nodes, common cycle, both directions' greens starting at local 0 with length g,
 * segment travel times given (distance = t * 10 m/s). */
static void corridor(sf_gw_corridor_t *c, uint32_t n, double cycle, double g, const double *t)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->cycle_s = cycle;
    for (uint32_t i = 0; i < n; i++) {
        c->green_out_s[i] = c->green_in_s[i] = g;
        if (i + 1 < n) {
            c->dist_out_m[i] = c->dist_in_m[i] = t[i] * 10.0;
            c->speed_out_mps[i] = c->speed_in_mps[i] = 10.0;
        }
    }
    cr_assert_eq(sf_gw_update_times(c), 0);
}

/* Brute force over every offset vector on a grid of `step` (node 0 at 0). */
static double brute_force(const sf_gw_corridor_t *c, double k, double step)
{
    int m = (int)lround(c->cycle_s / step);
    double th[SF_GW_MAX_NODES] = {0}, best = -1;
    int u[SF_GW_MAX_NODES] = {0};
    for (;;) {
        for (uint32_t i = 0; i < c->n; i++)
            th[i] = u[i] * step;
        sf_gw_band_t b;
        cr_assert_eq(sf_gw_bandwidth(c, th, &b), 0);
        best = fmax(best, b.b_out_s + k * b.b_in_s);
        uint32_t i = 1;
        while (i < c->n && ++u[i] == m)
            u[i++] = 0;
        if (i >= c->n)
            break;
    }
    return best;
}

Test(greenwave, two_nodes_by_hand)
{
    /* C = 100, outbound greens 40 (node 0) and 50 (node 1), inbound the same, travel 25 s
     * each way, theta_1 = 10. Outbound: departures [0,40) and [10-25, 35) meet in [0,35):
     * b = 35. Inbound from node 1: [10,60) and [0-25, 15) mod 100 meet in [10,15): b' = 5. */
    sf_gw_corridor_t c;
    const double t[] = {25};
    corridor(&c, 2, 100, 0, t);
    c.green_out_s[0] = c.green_in_s[0] = 40;
    c.green_out_s[1] = c.green_in_s[1] = 50;
    double th[2] = {0, 10};
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 35, 1e-9);
    cr_assert_float_eq(b.b_in_s, 5, 1e-9);
    cr_assert_float_eq(b.t_out_s, 0, 1e-9);
    cr_assert_float_eq(b.t_in_s, 10, 1e-9);
    cr_assert_float_eq(b.efficiency, 40.0 / 200, 1e-12);
    /* offsets are taken modulo C */
    th[1] = 110;
    sf_gw_band_t b2;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b2), 0);
    cr_assert_float_eq(b2.b_out_s, 35, 1e-9);
    cr_assert_float_eq(b2.b_in_s, 5, 1e-9);
    /* an inbound green that starts 20 s after the outbound one moves the inbound band */
    th[1] = 10;
    c.in_start_s[1] = 20; /* node 1 inbound green [30, 80) */
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b2), 0);
    cr_assert_float_eq(b2.b_in_s, 5, 1e-9); /* [30,80) vs [75,115): [75,80) */
    c.in_start_s[1] = 0;
    /* the optimiser's b + b' equals the brute-force maximum on the same 1 s grid */
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.step_s = 1;
    double best[2];
    cr_assert_eq(sf_gw_optimise(&c, &o, best, &b), 0);
    cr_assert_float_eq(b.b_out_s + b.b_in_s, brute_force(&c, 1, 1), 1e-9);
}

Test(greenwave, alternating_system)
{
    /* REFERENCE.md: alternating when L/v = C/2. C = 60, greens 30, 300 m at 10 m/s = 30 s.
     * All-zero offsets give no band at all; alternating offsets 0, 30, 0 give full bands
     * both ways: b = b' = 30, efficiency 0.5. */
    sf_gw_corridor_t c;
    const double t[] = {30, 30};
    corridor(&c, 3, 60, 30, t);
    double zero[3] = {0, 0, 0};
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&c, zero, &b), 0);
    cr_assert_float_eq(b.b_out_s, 0, 1e-9);
    cr_assert_float_eq(b.b_in_s, 0, 1e-9);
    double alt[3] = {0, 30, 0};
    cr_assert_eq(sf_gw_bandwidth(&c, alt, &b), 0);
    cr_assert_float_eq(b.b_out_s, 30, 1e-9);
    cr_assert_float_eq(b.b_in_s, 30, 1e-9);
    cr_assert_float_eq(b.efficiency, 0.5, 1e-12);
    /* the one-way offsets are exactly the alternating ones here */
    double ow[3];
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, ow), 0);
    cr_assert_float_eq(ow[1], 30, 1e-9);
    cr_assert_float_eq(ow[2], 0, 1e-9);
    /* both search methods find the known optimum */
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    double th[3];
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0); /* 600^2 points: local search */
    cr_assert_float_eq(b.b_out_s + b.b_in_s, 60, 1e-9);
    cr_assert_float_eq(th[0], 0, 1e-12);
    cr_assert_float_eq(th[1], 30, 1e-9);
    o.step_s = 1;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0); /* 3600 points: exhaustive */
    cr_assert_float_eq(b.b_out_s + b.b_in_s, 60, 1e-9);
}

Test(greenwave, simultaneous_system)
{
    /* REFERENCE.md: simultaneous when L/v = kC. C = 60, 600 m at 10 m/s = 60 s: zero
     * offsets give full bands; the optimiser keeps them (ties keep all-zero). */
    sf_gw_corridor_t c;
    const double t[] = {60, 120, 60};
    corridor(&c, 4, 60, 25, t);
    double zero[4] = {0};
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&c, zero, &b), 0);
    cr_assert_float_eq(b.b_out_s, 25, 1e-9);
    cr_assert_float_eq(b.b_in_s, 25, 1e-9);
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    double th[4];
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_float_eq(b.b_out_s + b.b_in_s, 50, 1e-9);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(th[i], 0, 1e-12);
}

Test(greenwave, one_way_offsets_x_over_v)
{
    /* theta_i = (x_i / v) mod C: x = 0, 400, 900, 1500 m, v = 12.5 m/s, C = 90 s:
     * 0, 32, 72, 120 mod 90 = 30. The outbound band is then the smallest green. */
    sf_gw_corridor_t c;
    memset(&c, 0, sizeof c);
    c.n = 4;
    c.cycle_s = 90;
    const double x[] = {0, 400, 900, 1500};
    const double g[] = {40, 35, 45, 50};
    for (int i = 0; i < 4; i++) {
        c.green_out_s[i] = c.green_in_s[i] = g[i];
        if (i < 3) {
            c.dist_out_m[i] = c.dist_in_m[i] = x[i + 1] - x[i];
            c.speed_out_mps[i] = c.speed_in_mps[i] = 12.5;
        }
    }
    cr_assert_eq(sf_gw_update_times(&c), 0);
    double th[4];
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, th), 0);
    const double want[] = {0, 32, 72, 30};
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(th[i], want[i], 1e-9, "node %d: %f", i, th[i]);
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 35, 1e-9);
    /* inbound one-way: the green at node i starts (x_3 - x_i)/v after node 3's */
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_INBOUND, th), 0);
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_in_s, 35, 1e-9);
    cr_assert_float_eq(th[0], 0, 1e-12);
    /* node 3's green starts 120 s before node 0's, i.e. 30 s mod 90: theta_3 = 60 */
    cr_assert_float_eq(th[3], 60, 1e-9);
}

Test(greenwave, always_green_node_and_weights)
{
    /* a node with green >= C never limits a band */
    sf_gw_corridor_t c;
    const double t[] = {17, 23};
    corridor(&c, 3, 80, 30, t);
    c.green_out_s[1] = c.green_in_s[1] = 80;
    double th[3];
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, th), 0);
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 30, 1e-9);
    /* an all-green corridor has the whole cycle as band */
    c.green_out_s[0] = c.green_out_s[2] = 80;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 80, 1e-9);

    /* weight k = 0 favours outbound only: full outbound band */
    corridor(&c, 3, 80, 30, t);
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.weight_in = 0;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 30, 1e-9);
    /* a large k favours inbound */
    o.weight_in = 10;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_float_eq(b.b_in_s, 30, 1e-9);
}

/* Re-optimised offsets for running ones: the wave keeps its direction when the weights
 * would tip it round, and the offsets shift together to where the nodes already are. */
Test(greenwave, reoptimise_keeps_the_direction_and_the_nodes_in_place)
{
    sf_gw_corridor_t c;
    const double t[] = {17, 23};
    corridor(&c, 3, 60, 20, t);
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.step_s = 1;
    o.weight_out = 0.98; /* MAXBAND's volume ratio: nearly a tie */
    double th[3], kept[3], off[3], moved;
    sf_gw_band_t b, bk;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_gt(b.b_in_s, b.b_out_s, "precondition: the plain optimum is an inbound wave");
    /* running: the outbound wave, shifted by 7 s, node 2 late by 3 s (band 17 of 20 s) */
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, kept), 0);
    for (int k = 0; k < 3; k++)
        kept[k] = fmod(kept[k] + 7 + (k == 2 ? 3 : 0), 60);
    cr_assert_eq(sf_gw_bandwidth(&c, kept, &bk), 0);
    cr_assert_float_eq(bk.b_out_s, 17, 1e-9);
    cr_assert_eq(sf_gw_reoptimise(&c, &o, kept, off, &bk, &b, &moved), 1);
    cr_assert_float_eq(bk.b_out_s, 17, 1e-9);
    cr_assert_float_eq(b.b_out_s, 20, 1e-9, "the outbound wave again, whole: %f", b.b_out_s);
    cr_assert_float_eq(b.b_in_s, 0, 1e-9);
    /* only node 2 moves back (3 s), or the others forward; nothing moves further */
    cr_assert_leq(moved, 6 + 1e-9, "%f", moved);
    double d = 0;
    for (int k = 0; k < 3; k++) {
        double m = fmod(fabs(off[k] - kept[k]), 60);
        d += fmin(m, 60 - m);
        cr_assert(off[k] >= 0 && off[k] < 60, "%f", off[k]);
    }
    cr_assert_float_eq(d, moved, 1e-9);
    /* the same band in the other position is not taken (no gain), and stays in place */
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, kept), 0);
    for (int k = 0; k < 3; k++)
        kept[k] = fmod(kept[k] + 31, 60);
    cr_assert_eq(sf_gw_reoptimise(&c, &o, kept, off, NULL, &b, &moved), 0);
    cr_assert_float_eq(moved, 0, 1e-9);
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(off[k], kept[k], 1e-9, "node %d", k);
    /* a running inbound wave keeps its direction too (weights still favour it) */
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_INBOUND, kept), 0);
    kept[1] = fmod(kept[1] + 4, 60);
    cr_assert_eq(sf_gw_reoptimise(&c, &o, kept, off, NULL, &b, NULL), 1);
    cr_assert_float_eq(b.b_in_s, 20, 1e-9);
    /* with two_way the target ratio decides, as in sf_gw_optimise: never worse than it */
    o.two_way = true;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    double best = sf_gw_objective(&o, &b);
    cr_assert_geq(sf_gw_reoptimise(&c, &o, kept, off, NULL, &b, NULL), 0);
    cr_assert_float_eq(sf_gw_objective(&o, &b), best, 1e-9);
    errno = 0;
    cr_assert_eq(sf_gw_reoptimise(&c, &o, NULL, off, NULL, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    c.cycle_s = 0;
    cr_assert_eq(sf_gw_reoptimise(&c, &o, kept, off, NULL, NULL, NULL), -1);
}

Test(greenwave, queue_clearance_by_hand)
{
    /* tau = 2 s start-up + 2 s per queued vehicle per lane (1800 veh/h/lane) */
    cr_assert_float_eq(sf_gw_clearance_s(0), 0, 1e-12);
    cr_assert_float_eq(sf_gw_clearance_s(3), 8, 1e-12);
    cr_assert_float_eq(sf_gw_clearance_s(0.5), 3, 1e-12);
    errno = 0;
    cr_assert_eq(sf_gw_clearance_s(-1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_gw_clearance_s(NAN), -1);

    /* C = 100, greens 50 at both nodes, 25 s of travel, a queue clearing in 10 s at node 1
     * outbound. The usable window of node 1 is [10, 50) of its green, so one-way offsets
     * open node 1's green 10 s before the first vehicle from node 0 arrives:
     * theta_1 = 25 - 10 = 15. Band: departures [0, 50) at node 0 meet [15 + 10 - 25,
     * 15 + 50 - 25) = [0, 40): b = 40, leaving node 0 at its green start. */
    sf_gw_corridor_t c;
    const double t[] = {25};
    corridor(&c, 2, 100, 50, t);
    c.tau_out_s[1] = 10;
    double th[2];
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_OUTBOUND, th), 0);
    cr_assert_float_eq(th[1], 15, 1e-9);
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 40, 1e-9);
    cr_assert_float_eq(b.t_out_s, 0, 1e-9);
    /* the no-queue one-way offset (25) puts the platoon on the queue: 10 s of it lost */
    th[1] = 25;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 40, 1e-9);
    cr_assert_float_eq(b.t_out_s, 10, 1e-9); /* the band would start 10 s into node 0's green */
    /* the optimiser (outbound only) finds 40 s and anchors it at node 0's green start:
     * the queue of node 0 (the platoon) leaves first, so theta_1 = 15, not 25 */
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.weight_in = 0;
    o.step_s = 0.5;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, 40, 1e-9);
    cr_assert_float_eq(b.t_out_s, 0, 1e-9);
    cr_assert_float_eq(th[1], 15, 1e-9);
    /* inbound: a queue at node 0 (the last node of the inbound band) works the same way */
    c.tau_out_s[1] = 0;
    c.tau_in_s[0] = 10;
    cr_assert_eq(sf_gw_one_way(&c, SF_GW_INBOUND, th), 0);
    /* a vehicle leaving node 1 at its green start (theta_1) reaches node 0 at theta_1 + 25,
     * which must be node 0's green start + 10: theta_1 = 100 - 15 = 85 */
    cr_assert_float_eq(th[0], 0, 1e-9);
    cr_assert_float_eq(th[1], 85, 1e-9);
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_in_s, 40, 1e-9);
    /* a queue longer than the green leaves no band; an always-green node has no queue */
    c.tau_in_s[0] = 60;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_in_s, 0, 1e-9);
    c.green_in_s[0] = 100;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_in_s, 50, 1e-9);
    /* a negative or non-finite tau is refused */
    c.tau_in_s[0] = -1;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), -1);
    c.tau_in_s[0] = INFINITY;
    cr_assert_eq(sf_gw_check(&c), -1);
}

Test(greenwave, two_way_target_ratio)
{
    /* w = 1, k = 0.5, bands 30 and 10: the weighted sum is 30 + 5 = 35; with the target
     * ratio b' / b = 0.5 the outbound band counts up to 10 / 0.5 = 20, the inbound up to
     * 30 x 0.5 = 15 (all 10 of it): 20 + 0.5 x 10 = 25. A one-way wave scores 0. */
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.weight_in = 0.5;
    sf_gw_band_t b = {.b_out_s = 30, .b_in_s = 10};
    cr_assert_float_eq(sf_gw_objective(&o, &b), 35, 1e-12);
    o.two_way = true;
    cr_assert_float_eq(sf_gw_objective(&o, &b), 25, 1e-12);
    b.b_in_s = 0;
    cr_assert_float_eq(sf_gw_objective(&o, &b), 0, 1e-12);
    /* a zero weight leaves that direction out: plain sum */
    o.weight_in = 0;
    cr_assert_float_eq(sf_gw_objective(&o, &b), 30, 1e-12);

    /* 3 nodes, C = 80, greens 30, travel 17 and 23 s: the weighted sum (w = k = 1) gives a
     * one-way wave (30 + 0); two-way gives equal bands in both directions */
    sf_gw_corridor_t c;
    const double t[] = {17, 23};
    corridor(&c, 3, 80, 30, t);
    sf_gw_opts_default(&o);
    o.step_s = 1;
    double th[3];
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_float_eq(b.b_out_s + b.b_in_s, 30, 1e-9);
    cr_assert(b.b_out_s == 0 || b.b_in_s == 0, "one-way: %.1f / %.1f", b.b_out_s, b.b_in_s);
    o.two_way = true;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_gt(b.b_out_s, 0);
    cr_assert_float_eq(b.b_out_s, b.b_in_s, 1e-9);
    /* exact on the grid: no offsets do better (brute force over all 80 x 80) */
    double best = 0;
    for (int u1 = 0; u1 < 80; u1++)
        for (int u2 = 0; u2 < 80; u2++) {
            double x[3] = {0, u1, u2};
            sf_gw_band_t e;
            cr_assert_eq(sf_gw_bandwidth(&c, x, &e), 0);
            best = fmax(best, sf_gw_objective(&o, &e));
        }
    cr_assert_float_eq(sf_gw_objective(&o, &b), best, 1e-9);
}

Test(greenwave, optimiser_never_worse_and_matches_brute_force)
{
    /* pseudo-random small corridors: the local search (exhaustive search disabled) is never
     * worse than all-zero or either one-way plan, its reported band is the bandwidth
     * function's, and on 3 nodes it is compared with brute force on the same grid. */
    uint32_t lcg = 7;
#define RND(lo, hi)                                                                                \
    (lcg = lcg * 1103515245u + 12345u, (lo) + (double)((lcg >> 16) % 1000) / 1000.0 * ((hi) - (lo)))
    int matched = 0, cases = 0;
    for (int trial = 0; trial < 12; trial++) {
        sf_gw_corridor_t c;
        uint32_t n = trial < 8 ? 3 : 6;
        double t[SF_GW_MAX_NODES];
        for (uint32_t i = 0; i + 1 < n; i++)
            t[i] = round(RND(15, 70));
        corridor(&c, n, 60, 0, t);
        for (uint32_t i = 0; i < n; i++) {
            c.green_out_s[i] = round(RND(15, 40));
            c.green_in_s[i] = c.green_out_s[i];
            c.in_start_s[i] = round(RND(0, 10));
        }
        sf_gw_opts_t o;
        sf_gw_opts_default(&o);
        o.step_s = 1;
        o.exhaustive_limit = 0;
        double th[SF_GW_MAX_NODES], zero[SF_GW_MAX_NODES] = {0}, ow[SF_GW_MAX_NODES];
        sf_gw_band_t b, b0, bc;
        cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
        cr_assert_eq(sf_gw_bandwidth(&c, th, &bc), 0);
        cr_assert_float_eq(b.b_out_s, bc.b_out_s, 1e-12);
        cr_assert_float_eq(b.b_in_s, bc.b_in_s, 1e-12);
        double f = b.b_out_s + b.b_in_s;
        cr_assert_eq(sf_gw_bandwidth(&c, zero, &b0), 0);
        cr_assert_geq(f, b0.b_out_s + b0.b_in_s - 1e-9);
        for (int d = 0; d < 2; d++) {
            cr_assert_eq(sf_gw_one_way(&c, (sf_gw_dir_t)d, ow), 0);
            for (uint32_t i = 0; i < n; i++)
                ow[i] = round(ow[i]); /* travel times are whole seconds here */
            cr_assert_eq(sf_gw_bandwidth(&c, ow, &b0), 0);
            cr_assert_geq(f, b0.b_out_s + b0.b_in_s - 1e-9);
        }
        for (uint32_t i = 0; i < n; i++)
            cr_assert(th[i] >= 0 && th[i] < 60 && th[i] == round(th[i]));
        if (n == 3) {
            double bf = brute_force(&c, 1, 1);
            cr_assert_leq(f, bf + 1e-9);
            cases++;
            matched += fabs(f - bf) < 1e-9;
            /* the exhaustive mode is exact on the grid */
            o.exhaustive_limit = 200000;
            cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
            cr_assert_float_eq(b.b_out_s + b.b_in_s, bf, 1e-9);
        }
    }
    cr_log_info("local search matched brute force on %d of %d 3-node corridors", matched, cases);
    cr_assert_eq(matched, cases, "local search found the optimum on %d of %d", matched, cases);
#undef RND
}

Test(greenwave, speed_search)
{
    /* 2 nodes 300 m apart, C = 60, greens 30: b + b' = 60 needs a 30 s travel time, i.e.
     * 36 km/h; searching 34..40 km/h finds it. */
    sf_gw_corridor_t c;
    const double t[] = {20};
    corridor(&c, 2, 60, 30, t);
    c.dist_out_m[0] = c.dist_in_m[0] = 300;
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    double th[2], v;
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_optimise_speed(&c, &o, 34 / 3.6, 40 / 3.6, &v, th, &b), 0);
    cr_assert_float_eq(v, 10.0, 1e-6);
    cr_assert_float_eq(b.b_out_s + b.b_in_s, 60, 1e-3);
    cr_assert_float_eq(c.t_out_s[0], 30, 1e-6);
    cr_assert_eq(sf_gw_optimise_speed(&c, &o, 0, 10, &v, th, &b), -1);
    cr_assert_eq(sf_gw_optimise_speed(&c, &o, 12, 10, &v, th, &b), -1);
}

Test(greenwave, bad_inputs)
{
    sf_gw_corridor_t c;
    const double t[] = {30};
    corridor(&c, 2, 60, 30, t);
    double th[2] = {0, 0};
    sf_gw_band_t b;
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    cr_assert_eq(sf_gw_bandwidth(NULL, th, &b), -1);
    cr_assert_eq(errno, EINVAL);
    th[1] = NAN;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), -1);
    th[1] = 0;
    o.step_s = 0.7; /* 60 / 0.7 is not whole: the grid would not close */
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), -1);
    o.step_s = 1;
    o.weight_in = -1;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), -1);
    o.weight_in = 1;
    sf_gw_corridor_t bad = c;
    bad.n = 0;
    cr_assert_eq(sf_gw_optimise(&bad, &o, th, &b), -1);
    bad = c;
    bad.cycle_s = -5;
    cr_assert_eq(sf_gw_bandwidth(&bad, th, &b), -1);
    bad = c;
    bad.out_start_s[1] = 60; /* not inside the cycle */
    cr_assert_eq(sf_gw_bandwidth(&bad, th, &b), -1);
    bad = c;
    bad.green_in_s[0] = -1;
    cr_assert_eq(sf_gw_one_way(&bad, SF_GW_OUTBOUND, th), -1);
    bad = c;
    bad.speed_out_mps[0] = 0;
    cr_assert_eq(sf_gw_update_times(&bad), -1);
    cr_assert_eq(sf_gw_set_speed(&c, -3), -1);
    cr_assert_eq(sf_gw_one_way(&c, (sf_gw_dir_t)5, th), -1);
}

/* ---- corridor from a scenario -------------------------------------------------------- */

/* Three intersections on an east-west street at x = 0, 400, 900 (declared out of order),
 * boundaries W (x = -300) and E (x = 1200). Phases: index 0 = phase 2 (ring 1, eastbound
 * through), 1 = phase 4, 2 = phase 6 (ring 2, westbound through), 3 = phase 8; barriers
 * {2,6} {4,8}. Plan 1: cycle 60 s, splits 2/6 = 36 s, 4/8 = 24 s, coordinated 2 and 6;
 * yellow 3 s + red clear 1 s: coordinated green 32 s. Speed limit 50 km/h. */
typedef struct {
    sf_scenario_t sc;
    sf_intersection_t ix[3];
    sf_boundary_t bnd[2];
    sf_link_t links[8];
    sf_line_t line[1];
} scen_t;

static void add_link(scen_t *s, uint32_t l, const char *id, sf_node_kind_t fk, uint32_t fi,
                     sf_node_kind_t tk, uint32_t ti, float len)
{
    sf_link_t *lk = &s->links[l];
    memset(lk, 0, sizeof *lk);
    snprintf(lk->id, sizeof lk->id, "%s", id);
    lk->from_kind = fk;
    lk->from_idx = fi;
    lk->to_kind = tk;
    lk->to_idx = ti;
    lk->length_m = len;
    lk->speed_mps = 50 / 3.6f;
    lk->n_lanes = 2;
    lk->lanes[0].use_mask = lk->lanes[1].use_mask = 7;
    lk->turn_ratio[SF_TURN_THROUGH] = 1;
}

static void scen(scen_t *s)
{
    memset(s, 0, sizeof *s);
    const double xs[3] = {900, 0, 400}; /* declared out of order on purpose */
    const char *ids[3] = {"C", "A", "B"};
    for (int i = 0; i < 3; i++) {
        sf_intersection_t *ix = &s->ix[i];
        snprintf(ix->id, sizeof ix->id, "%s", ids[i]);
        ix->x_m = xs[i];
        ix->n_phases = 4;
        const uint8_t num[4] = {2, 4, 6, 8}, ring[4] = {1, 1, 2, 2};
        for (int p = 0; p < 4; p++) {
            ix->phases[p].id = num[p];
            ix->phases[p].ring = ring[p];
            ix->phases[p].min_green_ds = 50;
            ix->phases[p].yellow_ds = 30;
            ix->phases[p].red_clear_ds = 10;
        }
        ix->n_rings = 2;
        ix->ring_seq_len[0] = ix->ring_seq_len[1] = 2;
        ix->ring_seq[0][0] = 0;
        ix->ring_seq[0][1] = 1;
        ix->ring_seq[1][0] = 2;
        ix->ring_seq[1][1] = 3;
        ix->n_barriers = 2;
        ix->barrier_mask[0] = 0x5;
        ix->barrier_mask[1] = 0xa;
        ix->n_sg = 4;
        for (int g = 0; g < 4; g++)
            ix->sg[g].phase_idx = (uint8_t)g;
        sf_intersection_derive_conflicts(ix);
        ix->n_plans = 1;
        sf_plan_t *pl = &ix->plans[0];
        pl->id = 1;
        pl->cycle_ds = 600;
        pl->split_ds[0] = pl->split_ds[2] = 360;
        pl->split_ds[1] = pl->split_ds[3] = 240;
        pl->coord_phase_mask = 0x5;
    }
    s->bnd[0] = (sf_boundary_t){"W", -300, 0};
    s->bnd[1] = (sf_boundary_t){"E", 1200, 0};
    /* eastbound: W->A, A->B, B->C, C->E; westbound: E->C, C->B, B->A, A->W */
    const sf_node_kind_t I = SF_NODE_INTERSECTION, Bn = SF_NODE_BOUNDARY;
    add_link(s, 0, "WA", Bn, 0, I, 1, 300);
    add_link(s, 1, "AB", I, 1, I, 2, 400);
    add_link(s, 2, "BC", I, 2, I, 0, 500);
    add_link(s, 3, "CE", I, 0, Bn, 1, 300);
    add_link(s, 4, "EC", Bn, 1, I, 0, 300);
    add_link(s, 5, "CB", I, 0, I, 2, 500);
    add_link(s, 6, "BA", I, 2, I, 1, 400);
    add_link(s, 7, "AW", I, 1, Bn, 0, 300);
    /* through movements: eastbound on phase 2 (sg 0), westbound on phase 6 (sg 2) */
    const uint32_t eb_in[3] = {2, 0, 1}, eb_out[3] = {3, 1, 2};
    const uint32_t wb_in[3] = {4, 6, 5}, wb_out[3] = {5, 7, 6};
    for (int i = 0; i < 3; i++) {
        s->ix[i].n_movements = 2;
        s->ix[i].movements[0] = (sf_movement_t){"EB", eb_in[i], eb_out[i], SF_TURN_THROUGH, 0};
        s->ix[i].movements[1] = (sf_movement_t){"WB", wb_in[i], wb_out[i], SF_TURN_THROUGH, 2};
    }
    s->sc.n_intersections = 3;
    s->sc.intersections = s->ix;
    s->sc.n_boundaries = 2;
    s->sc.boundaries = s->bnd;
    s->sc.n_links = 8;
    s->sc.links = s->links;
    s->sc.demand.vtype[SF_VEH_BUS] = (sf_veh_params_t){12, 0.8f, 1.0f, 2.0f, 2, 1.5f};
    /* bus line eastbound with one stop on A->B: dwell 20 s + 2 s x 5 pax */
    sf_line_t *ln = &s->line[0];
    snprintf(ln->id, sizeof ln->id, "B1");
    ln->n_route = 4;
    for (uint32_t r = 0; r < 4; r++)
        ln->route[r] = r;
    ln->n_stops = 1;
    ln->stops[0] =
        (sf_stop_t){.link_idx = 1, .distance_m = 200, .dwell_s = 20, .per_pax_s = 2, .pax_mean = 5};
    s->sc.n_lines = 1;
    s->sc.lines = s->line;
}

Test(greenwave, corridor_from_scenario)
{
    scen_t s;
    scen(&s);
    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 0, .line_idx = -1};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    uint8_t plan[SF_GW_MAX_NODES];
    char err[200] = "";
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, plan, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n, 3);
    cr_assert_eq(node[0], 1); /* A, B, C from west to east */
    cr_assert_eq(node[1], 2);
    cr_assert_eq(node[2], 0);
    cr_assert_eq(plan[0], 0);
    cr_assert_float_eq(c.cycle_s, 60, 1e-12);
    for (int i = 0; i < 3; i++) {
        cr_assert_float_eq(c.green_out_s[i], 32, 1e-9);
        cr_assert_float_eq(c.green_in_s[i], 32, 1e-9);
        cr_assert_float_eq(c.out_start_s[i], 0, 1e-9);
        cr_assert_float_eq(c.in_start_s[i], 0, 1e-9);
    }
    cr_assert_float_eq(c.dist_out_m[0], 400, 1e-9);
    cr_assert_float_eq(c.dist_in_m[1], 500, 1e-9);
    cr_assert_float_eq(c.t_out_s[0], 400 / (50 / 3.6), 1e-3);

    /* window arithmetic only (not a valid NEMA sequence): ring 2 serving 8 before 6 at A
     * puts phase 6's green 24 s after phase 2's, the earliest coordinated green (local 0) */
    s.ix[1].ring_seq[1][0] = 3;
    s.ix[1].ring_seq[1][1] = 2;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, plan, err, sizeof err), 0);
    cr_assert_float_eq(c.in_start_s[0], 24, 1e-9);
    s.ix[1].ring_seq[1][0] = 2;
    s.ix[1].ring_seq[1][1] = 3;
    /* the offset refers to phase 2 (first coordinated phase of ring 1, as in the unit) even
     * when phase 6 starts first: ring 1 serving 4 then 2 puts phase 2 at 24 s, phase 6 at 0,
     * so the westbound window starts 36 s after the offset reference */
    s.ix[1].ring_seq[0][0] = 1;
    s.ix[1].ring_seq[0][1] = 0;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, plan, err, sizeof err), 0);
    cr_assert_float_eq(c.out_start_s[0], 0, 1e-9);
    cr_assert_float_eq(c.in_start_s[0], 36, 1e-9);
    s.ix[1].ring_seq[0][0] = 0;
    s.ix[1].ring_seq[0][1] = 1;

    /* bus progression: desired speed 0.8 x 50 km/h, stop on A->B: 30 s dwell plus
     * v/(2a) + v/(2b) = 11.11/2 + 11.11/4 = 8.33 s lost braking and accelerating */
    src.line_idx = 0;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, plan, err, sizeof err), 0);
    double v = 0.8 * (double)(50 / 3.6f);
    cr_assert_float_eq(c.speed_out_mps[0], v, 1e-5);
    cr_assert_float_eq(c.extra_out_s[0], 30 + v / 2 + v / 4, 1e-5);
    cr_assert_float_eq(c.extra_out_s[1], 0, 1e-12);
    cr_assert_float_eq(c.extra_in_s[0], 0, 1e-12);
    cr_assert_float_eq(c.t_out_s[0], 400 / v + 30 + v / 2 + v / 4, 1e-4);
    /* an explicit speed overrides the links' */
    src.speed_mps = 10;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, plan, err, sizeof err), 0);
    cr_assert_float_eq(c.t_in_s[1], 50, 1e-9);
}

/* Queue clearance from the scenario's volumes. Side street N (north of B) enters B with
 * 360 veh/h: 2/3 turn left into B->C (eastbound), 1/3 right into B->A (westbound); entries
 * W->A 1000 veh/h, E->C 800 veh/h, all through at A and C. Cycle 60 s:
 *  - C outbound: 240 veh/h x 60/3600 = 4 veh per cycle, B->C turns 25 % left at C (its own
 *    lane), so 3 veh over 2 through lanes = 1.5 per lane: tau = 2 + 1.5 x 2 = 5 s;
 *  - A inbound: 120 veh/h = 2 veh per cycle over 2 lanes = 1 per lane: tau = 4 s;
 *  - B (either way) and the first node of each direction: no turn-in, tau = 0.
 * Volumes: outbound A->B 1000, B->C 1240 (mean 1120); inbound C->B 800, B->A 920 (860). */
Test(greenwave, queue_clearance_from_volumes)
{
    scen_t s;
    scen(&s);
    sf_boundary_t bnd[3] = {s.bnd[0], s.bnd[1], {"N", 400, 300}};
    s.sc.boundaries = bnd;
    s.sc.n_boundaries = 3;
    sf_link_t links[9];
    memcpy(links, s.links, sizeof s.links);
    s.sc.links = links;
    s.sc.n_links = 9;
    links[8] = links[0];
    snprintf(links[8].id, sizeof links[8].id, "NB");
    links[8].from_idx = 2; /* boundary N */
    links[8].to_idx = 2;   /* intersection B */
    links[8].length_m = 300;
    memset(links[8].turn_ratio, 0, sizeof links[8].turn_ratio);
    links[8].turn_ratio[SF_TURN_LEFT] = 2.0f / 3.0f;
    links[8].turn_ratio[SF_TURN_RIGHT] = 1.0f / 3.0f;
    links[2].turn_ratio[SF_TURN_THROUGH] = 0.75f; /* B->C: 25 % left at C */
    links[2].turn_ratio[SF_TURN_LEFT] = 0.25f;
    sf_intersection_t *b = &s.ix[2];
    b->movements[2] = (sf_movement_t){"SL", 8, 2, SF_TURN_LEFT, 3};
    b->movements[3] = (sf_movement_t){"SR", 8, 6, SF_TURN_RIGHT, 3};
    b->n_movements = 4;
    sf_entry_t ent[3] = {{.link_idx = 0, .flow_veh_h = 1000},
                         {.link_idx = 4, .flow_veh_h = 800},
                         {.link_idx = 8, .flow_veh_h = 360}};
    s.sc.demand.entries = ent;
    s.sc.demand.n_entries = 3;

    /* 10 m/s: whole-second travel times (40 s, 50 s), so the 1 s grid is exact */
    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 10, .line_idx = -1, .queue_clearance = true};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    char err[200] = "";
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n, 3);
    const double tau_out[3] = {0, 0, 5}, tau_in[3] = {4, 0, 0};
    const double q_out[3] = {0, 0, 1.5}, q_in[3] = {1, 0, 0};
    for (int k = 0; k < 3; k++) {
        cr_assert_float_eq(c.tau_out_s[k], tau_out[k], 1e-5, "node %d", k);
        cr_assert_float_eq(c.tau_in_s[k], tau_in[k], 1e-5, "node %d", k);
        cr_assert_float_eq(c.queue_out_veh[k], q_out[k], 1e-6, "node %d", k);
        cr_assert_float_eq(c.queue_in_veh[k], q_in[k], 1e-6, "node %d", k);
    }
    cr_assert_float_eq(c.volume_out_veh_h, 1120, 1e-3);
    cr_assert_float_eq(c.volume_in_veh_h, 860, 1e-3);
    /* weights from the volumes (no control.greenwave weights): k = 860 / 1120 */
    double w, k;
    cr_assert_eq(sf_gw_weights(&s.sc, &c, &w, &k), 0);
    cr_assert_float_eq(w, 1, 1e-12);
    cr_assert_float_eq(k, 860.0 / 1120.0, 1e-9);
    /* the scenario's weights win when given */
    s.sc.control.greenwave.weight_out = 0.5f;
    s.sc.control.greenwave.weight_in = 2;
    cr_assert_eq(sf_gw_weights(&s.sc, &c, &w, &k), 0);
    cr_assert_float_eq(w, 0.5, 1e-9);
    cr_assert_float_eq(k, 2, 1e-9);
    /* the optimised band with these windows: outbound limited by C's 32 - 5 = 27 s */
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    o.weight_in = 0;
    o.step_s = 1;
    double th[3];
    sf_gw_band_t band;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &band), 0);
    cr_assert_float_eq(band.b_out_s, 27, 1e-4); /* tau from float turning ratios */
    /* without queue clearance every tau is 0 and the band is the whole 32 s green */
    src.queue_clearance = false;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), 0, "%s", err);
    for (int q = 0; q < 3; q++)
        cr_assert(c.tau_out_s[q] == 0 && c.tau_in_s[q] == 0);
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &band), 0);
    cr_assert_float_eq(band.b_out_s, 32, 1e-9);
    /* re-laid for other plans (an adaptive group's): the same corridor as taken from the
     * scenario with its plans stretched to that cycle, turned-in queues scaled with it
     * (C's 1.5 veh per lane at 60 s become 2.25 at 90 s: tau = 2 + 2.25 x 2 = 6.5 s) */
    src.queue_clearance = true;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), 0, "%s", err);
    sf_plan_t pl[3];
    for (int q = 0; q < 3; q++)
        cr_assert_eq(sf_gw_stretch_plan(&s.sc.intersections[node[q]],
                                        &s.sc.intersections[node[q]].plans[0], 900, &pl[q]),
                     0);
    sf_gw_corridor_t re = c, want;
    cr_assert_eq(sf_gw_relay(&s.sc, node, pl, &re), 0);
    src.cycle_ds = 900;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &want, node, NULL, err, sizeof err), 0, "%s",
                 err);
    src.cycle_ds = 0;
    cr_assert_float_eq(re.cycle_s, 90, 1e-12);
    cr_assert_float_eq(re.tau_out_s[2], 6.5, 1e-4);
    for (int q = 0; q < 3; q++) {
        cr_assert_float_eq(re.out_start_s[q], want.out_start_s[q], 1e-9, "node %d", q);
        cr_assert_float_eq(re.in_start_s[q], want.in_start_s[q], 1e-9, "node %d", q);
        cr_assert_float_eq(re.green_out_s[q], want.green_out_s[q], 1e-9, "node %d", q);
        cr_assert_float_eq(re.green_in_s[q], want.green_in_s[q], 1e-9, "node %d", q);
        cr_assert_float_eq(re.tau_out_s[q], want.tau_out_s[q], 1e-6, "node %d", q);
        cr_assert_float_eq(re.tau_in_s[q], want.tau_in_s[q], 1e-6, "node %d", q);
        cr_assert_float_eq(re.t_out_s[q], c.t_out_s[q], 1e-12, "node %d", q);
    }
    /* a split moved at one node moves its windows only */
    pl[1].split_ds[0] = (uint16_t)(pl[1].split_ds[0] - 50);
    pl[1].split_ds[1] = (uint16_t)(pl[1].split_ds[1] + 50);
    re = c;
    cr_assert_eq(sf_gw_relay(&s.sc, node, pl, &re), 0);
    cr_assert_float_eq(re.green_out_s[1], want.green_out_s[1] - 5, 1e-9);
    cr_assert_float_eq(re.green_out_s[0], want.green_out_s[0], 1e-9);
    /* plans of different cycles, or without the coordinated phase: refused, c unchanged */
    pl[2].cycle_ds = 800;
    re = c;
    errno = 0;
    cr_assert_eq(sf_gw_relay(&s.sc, node, pl, &re), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert(memcmp(&re, &c, sizeof c) == 0);
    pl[2].cycle_ds = 900;
    pl[2].coord_phase_mask = 0;
    cr_assert_eq(sf_gw_relay(&s.sc, node, pl, &re), -1);
    cr_assert(memcmp(&re, &c, sizeof c) == 0);
    cr_assert_eq(sf_gw_relay(NULL, node, pl, &re), -1);

    /* a bad entry flow: the queue cannot be computed, a precise error */
    ent[0].flow_veh_h = NAN;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "queue clearance"), "%s", err);
}

Test(greenwave, cycle_stretch_for_a_cycle_search)
{
    scen_t s;
    scen(&s);
    /* 60 -> 90 s: yellow + red clear stay 4 s, greens 32 and 20 s scale by 82/52 */
    sf_plan_t st;
    s.ix[0].plans[0].offset_ds = 550;
    cr_assert_eq(sf_gw_stretch_plan(&s.ix[0], &s.ix[0].plans[0], 900, &st), 0);
    cr_assert_eq(st.cycle_ds, 900);
    cr_assert_eq(st.split_ds[0] + st.split_ds[1], 900);
    cr_assert_eq(st.split_ds[2] + st.split_ds[3], 900);
    cr_assert(abs((int)st.split_ds[0] - (int)lround(10 * (4 + 32 * 82.0 / 52))) <= 1, "%d",
              st.split_ds[0]);
    cr_assert_eq(st.offset_ds, 550);
    cr_assert_eq(st.coord_phase_mask, s.ix[0].plans[0].coord_phase_mask);
    /* shrinking keeps every minimum split (9 s) and wraps the offset */
    cr_assert_eq(sf_gw_stretch_plan(&s.ix[0], &s.ix[0].plans[0], 200, &st), 0);
    cr_assert_eq(st.split_ds[1], 90);
    cr_assert_eq(st.split_ds[0], 110);
    cr_assert_eq(st.offset_ds, 550 % 200);
    errno = 0;
    cr_assert_eq(sf_gw_stretch_plan(&s.ix[0], &s.ix[0].plans[0], 170, &st), -1);
    cr_assert_eq(errno, ERANGE);

    /* the corridor at a searched cycle: windows from the stretched plans */
    sf_gw_source_t src = {.plan_id = 1, .speed_mps = 0, .line_idx = -1, .cycle_ds = 900};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    char err[200];
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(c.cycle_s, 90, 1e-12);
    cr_assert(fabs(c.green_out_s[0] - 32 * 82.0 / 52) <= 0.1, "%f", c.green_out_s[0]);
    /* different cycles at the nodes are fine when they are all stretched to one */
    s.ix[2].plans[0].cycle_ds = 900;
    s.ix[2].plans[0].split_ds[0] = s.ix[2].plans[0].split_ds[2] = 660;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), 0, "%s", err);
    src.cycle_ds = 150;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot be stretched"), "%s", err);
}

Test(greenwave, corridor_from_scenario_errors)
{
    scen_t s;
    scen(&s);
    sf_gw_source_t src = {.plan_id = 1, .speed_mps = 0, .line_idx = -1};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    char err[200] = "";

    s.ix[2].plans[0].cycle_ds = 900;
    s.ix[2].plans[0].split_ds[0] = s.ix[2].plans[0].split_ds[2] = 660;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert(strstr(err, "common cycle"), "%s", err);
    scen(&s);

    src.plan_id = 2;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "no intersection has a coordinated plan 2"), "%s", err);
    src.plan_id = 1;

    s.links[2].from_idx = 1; /* B->C becomes A->C: B and C are no longer linked eastbound */
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "no link from B to C"), "%s", err);
    scen(&s);

    s.ix[0].plans[0].coord_phase_mask = 0x1; /* C: phase 6 not coordinated */
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "intersection C") && strstr(err, "westbound"), "%s", err);
    scen(&s);

    src.line_idx = 3;
    cr_assert_eq(sf_gw_from_scenario(&s.sc, &src, &c, node, NULL, err, sizeof err), -1);
    cr_assert_eq(sf_gw_from_scenario(NULL, &src, &c, node, NULL, err, sizeof err), -1);
}

/* ---- `sigflow plan` end to end (the built program on the default corridor) --------------- */

/* Run SIGFLOW_BIN with args (NULL-terminated); returns the exit status and the two
 * outputs (caller frees). */
static int run_sigflow(const char *const *args, char **out, char **err)
{
    child_t *c = child_new();
    int st = child_run_args(c, args, 120);
    *out = strdup(c->out);
    *err = strdup(c->err);
    free(c);
    cr_assert(*out && *err);
    cr_assert_geq(st, 0, "sigflow did not exit normally");
    return st;
}

/* The two numbers after `label` on its line of the bandwidth table. */
static void table_row(const char *out, const char *label, double *b_out, double *b_in)
{
    const char *p = strstr(out, label);
    cr_assert_not_null(p, "no '%s' row in:\n%s", label, out);
    cr_assert_eq(sscanf(p + strlen(label), "%lf %lf", b_out, b_in), 2, "row: %.80s", p);
}

Test(greenwave_cli, optimise_and_write_the_default_corridor, .timeout = 120)
{
    char dir[] = "/tmp/sigflow-gw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char scen[512], written[600];
    snprintf(scen, sizeof scen, "%s/scenarios/xiantao-corridor.json", SIGFLOW_ASSETS);
    snprintf(written, sizeof written, "%s/offsets.json", dir);
    char *out, *err;
    const char *args[] = {"plan", "greenwave", scen, "--write", written, NULL};
    int rc = run_sigflow(args, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    double zo, zi, oo, oi;
    table_row(out, "all zero", &zo, &zi);
    table_row(out, "optimised", &oo, &oi);
    cr_assert_geq(oo + oi, zo + zi);
    cr_assert_gt(oo + oi, 0, "a corridor with greens of half the cycle has some band");
    cr_assert(strstr(out, "passes sigflow check"), "%s", out);

    /* the written file loads, has the offsets, and they give the printed bandwidths */
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *orig = sf_scenario_load(scen, NULL, 0, &errs);
    cr_assert_not_null(orig);
    sf_scenario_t *sc = sf_scenario_load(written, NULL, 0, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "");
    /* the planner uses the scenario's control.greenwave.queue_clearance (on by default) */
    cr_assert(sc->control.greenwave.queue_clearance);
    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 0, .line_idx = -1, .queue_clearance = true};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    uint8_t plan[SF_GW_MAX_NODES];
    char why[256];
    cr_assert_eq(sf_gw_from_scenario(sc, &src, &c, node, plan, why, sizeof why), 0, "%s", why);
    double th[SF_GW_MAX_NODES];
    for (uint32_t k = 0; k < c.n; k++)
        th[k] = sc->intersections[node[k]].plans[plan[k]].offset_ds / 10.0;
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_bandwidth(&c, th, &b), 0);
    cr_assert_float_eq(b.b_out_s, oo, 0.051);
    cr_assert_float_eq(b.b_in_s, oi, 0.051);
    /* nothing else changed: every plan's cycle and splits are the original's */
    cr_assert_eq(sc->n_intersections, orig->n_intersections);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *a = &sc->intersections[i], *o = &orig->intersections[i];
        cr_assert_eq(a->n_plans, o->n_plans);
        for (uint8_t p = 0; p < a->n_plans; p++) {
            cr_assert_eq(a->plans[p].cycle_ds, o->plans[p].cycle_ds);
            cr_assert_arr_eq(a->plans[p].split_ds, o->plans[p].split_ds,
                             sizeof a->plans[p].split_ds);
        }
    }
    cr_assert_eq(sc->n_links, orig->n_links);
    cr_assert_eq(sc->n_lines, orig->n_lines);
    sf_scenario_destroy(&sc);
    sf_scenario_destroy(&orig);
    free(out);
    free(err);

    /* and `sigflow check` accepts it */
    const char *chk[] = {"check", written, NULL};
    rc = run_sigflow(chk, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strncmp(out, "ok: ", 4) == 0, "%s", out);
    free(out);
    free(err);

    /* a cycle search writes cycle, splits and offsets; the file still checks */
    const char *cyc[] = {"plan",        "greenwave", scen,      "--cycle-min", "100",
                         "--cycle-max", "104",       "--write", written,       NULL};
    rc = run_sigflow(cyc, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "cycle, splits and offsets"), "%s", out);
    free(out);
    free(err);
    sc = sf_scenario_load(written, NULL, 0, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "");
    uint16_t cyc_ds = sc->intersections[node[0]].plans[plan[0]].cycle_ds;
    cr_assert(cyc_ds >= 1000 && cyc_ds <= 1040 && cyc_ds % 10 == 0, "cycle %d", cyc_ds);
    for (uint32_t k = 0; k < c.n; k++)
        cr_assert_eq(sc->intersections[node[k]].plans[plan[k]].cycle_ds, cyc_ds);
    sf_scenario_destroy(&sc);

    /* webster on the same corridor: one block per intersection */
    const char *wb[] = {"plan", "webster", scen, NULL};
    rc = run_sigflow(wb, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    int blocks = 0;
    for (const char *p = out; (p = strstr(p, "  Y = ")); p++)
        blocks++;
    sf_scenario_t *s2 = sf_scenario_load(scen, NULL, 0, &errs);
    cr_assert_not_null(s2);
    cr_assert_eq(blocks, (int)s2->n_intersections, "%s", out);
    free(out);
    free(err);
    /* --common: every intersection on the longest Webster cycle */
    const char *wbc[] = {"plan", "webster", scen, "--common", NULL};
    rc = run_sigflow(wbc, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    int common = 0;
    for (const char *p = out; (p = strstr(p, " (common)")); p++)
        common++;
    cr_assert_eq(common, (int)s2->n_intersections, "%s", out);
    sf_scenario_destroy(&s2);
    free(out);
    free(err);
    unlink(written);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/stdout", dir);
    snprintf(p2, sizeof p2, "%s/stderr", dir);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* Direction weights and the queue-clearance switch on the command line; by default the
 * planner uses the scenario's settings (weights from the volumes on the corridor). */
Test(greenwave_cli, weights_and_queue_clearance, .timeout = 120)
{
    char dir[] = "/tmp/sigflow-gw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char scen[512];
    snprintf(scen, sizeof scen, "%s/scenarios/xiantao-corridor.json", SIGFLOW_ASSETS);
    char *out, *err;
    double bo, bi, qo, qi, oo, oi, wo, wi;

    const char *dflt[] = {"plan", "greenwave", scen, NULL};
    cr_assert_eq(run_sigflow(dflt, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "weights from the volumes"), "%s", out);
    cr_assert(strstr(out, "queue clearance: tau = 2 s"), "%s", out);
    table_row(out, "optimised", &qo, &qi);
    table_row(out, "one-way eastbound (x/v mod C)", &oo, &oi);
    table_row(out, "one-way westbound (x/v mod C)", &wo, &wi);
    /* eastbound is the heavier direction (weight 1, westbound a little less): its band */
    cr_assert_float_eq(qo, oo, 0.051, "%s", out);
    free(out);
    free(err);

    /* only the westbound band counts: it gets the whole westbound one-way band */
    const char *west[] = {"plan", "greenwave", scen, "--weights", "0,1", NULL};
    cr_assert_eq(run_sigflow(west, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "maximising 0.00 b + 1.00 b'"), "%s", out);
    cr_assert(strstr(out, "weights from --weights"), "%s", out);
    table_row(out, "optimised", &bo, &bi);
    cr_assert_float_eq(bi, wi, 0.051, "%s", out);
    cr_assert_gt(bi, 0);
    free(out);
    free(err);
    const char *east[] = {"plan", "greenwave", scen, "--weights", "1,0", NULL};
    cr_assert_eq(run_sigflow(east, &out, &err), 0, "%s", err);
    table_row(out, "optimised", &bo, &bi);
    cr_assert_float_eq(bo, oo, 0.051, "%s", out);
    free(out);
    free(err);

    /* without queue clearance the windows are the whole greens: bands at least as wide,
     * every tau printed as 0 */
    const char *noqc[] = {"plan", "greenwave", scen, "--no-queue-clearance", NULL};
    cr_assert_eq(run_sigflow(noqc, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "queue clearance: off"), "%s", out);
    table_row(out, "optimised", &bo, &bi);
    cr_assert_gt(bo + bi, qo + qi, "%s", out);
    const char *row = strstr(out, "  1    I2 ");
    cr_assert_not_null(row, "%s", out);
    double x, g, tau;
    cr_assert_eq(sscanf(row + 10, "%lf %lf %lf", &x, &g, &tau), 3);
    cr_assert_float_eq(tau, 0, 1e-12);
    free(out);
    free(err);
    /* two-way: both bands in the ratio of the weights (equal here), honestly small on
     * this corridor's irregular spacing */
    const char *two[] = {"plan", "greenwave", scen, "--two-way", "--weights", "1,1", NULL};
    cr_assert_eq(run_sigflow(two, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "(two-way)"), "%s", out);
    table_row(out, "optimised", &bo, &bi);
    cr_assert_gt(bo, 0, "%s", out);
    cr_assert_float_eq(bo, bi, 0.051, "%s", out);
    free(out);
    free(err);
    /* the same through the scenario switch */
    const char *noqc2[] = {
        "plan", "greenwave", scen, "--set", "control.greenwave.queue_clearance=false", NULL};
    cr_assert_eq(run_sigflow(noqc2, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "queue clearance: off"), "%s", out);
    free(out);
    free(err);

    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/stdout", dir);
    snprintf(p2, sizeof p2, "%s/stderr", dir);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* control.greenwave.enabled: the controller runs the offsets the planner computes (same
 * corridor, queue clearance, weights and optimiser), to the 0.1 s of the plans. */
Test(greenwave, controller_runs_the_planners_offsets)
{
    char path[512];
    snprintf(path, sizeof path, "%s/scenarios/xiantao-corridor.json", SIGFLOW_ASSETS);
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(path, NULL, 0, &errs);
    cr_assert_not_null(sc);
    cr_assert(sc->control.greenwave.enabled, "the default corridor runs a green wave");
    sf_endpoint_t eps[SF_GW_MAX_NODES];
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = (uint16_t)(1 + i); /* never contacted: no step is made */
    }
    sf_controller_opts_t co;
    sf_controller_opts_default(&co);
    co.greenwave = sc->control.greenwave.enabled; /* what sigflow run does */
    char err[200] = "";
    sf_controller_t *ctl = sf_controller_new(sc, eps, &co, err, sizeof err);
    cr_assert_not_null(ctl, "%s", err);

    sf_gw_source_t src = {.plan_id = 0, .speed_mps = 0, .line_idx = -1, .queue_clearance = true};
    sf_gw_corridor_t c;
    uint32_t node[SF_GW_MAX_NODES];
    uint8_t plan[SF_GW_MAX_NODES];
    cr_assert_eq(sf_gw_from_scenario(sc, &src, &c, node, plan, err, sizeof err), 0, "%s", err);
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    cr_assert_eq(sf_gw_weights(sc, &c, &o.weight_out, &o.weight_in), 0);
    double th[SF_GW_MAX_NODES];
    sf_gw_band_t b;
    cr_assert_eq(sf_gw_optimise(&c, &o, th, &b), 0);
    cr_assert_gt(b.b_out_s + b.b_in_s, 0);
    for (uint32_t k = 0; k < c.n; k++) {
        const sf_plan_t *p = &sc->intersections[node[k]].plans[plan[k]];
        int off = sf_controller_offset(ctl, node[k], p->id);
        cr_assert_eq(off, (int)(lround(th[k] * 10) % p->cycle_ds), "node %u: %d vs %.1f", k, off,
                     th[k]);
    }
    sf_controller_destroy(&ctl);
    /* switched off, the file's offsets (all zero) stay */
    co.greenwave = false;
    ctl = sf_controller_new(sc, eps, &co, err, sizeof err);
    cr_assert_not_null(ctl, "%s", err);
    for (uint32_t k = 0; k < c.n; k++)
        cr_assert_eq(
            sf_controller_offset(ctl, node[k], sc->intersections[node[k]].plans[plan[k]].id),
            sc->intersections[node[k]].plans[plan[k]].offset_ds);
    sf_controller_destroy(&ctl);
    sf_scenario_destroy(&sc);
}

Test(greenwave_cli, bad_arguments_are_refused)
{
    char dir[] = "/tmp/sigflow-gw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char scen[512];
    snprintf(scen, sizeof scen, "%s/scenarios/xiantao-corridor.json", SIGFLOW_ASSETS);
    struct {
        const char *args[8];
        int rc;
        const char *msg;
    } cases[] = {
        {{"plan", "greenwave", scen, "--weight", "-1", NULL}, 2, "--weight must be in"},
        {{"plan", "greenwave", scen, "--weight", "abc", NULL}, 2, "--weight needs a number"},
        {{"plan", "greenwave", scen, "--weights", "1", NULL}, 2, "needs 2 comma-separated"},
        {{"plan", "greenwave", scen, "--weights", "0,0", NULL}, 2, "nothing to optimise"},
        {{"plan", "greenwave", scen, "--weights", "1,-2", NULL}, 2, "--weights must be in"},
        {{"plan", "greenwave", scen, "--weights", "1,1", "--weight", "2", NULL},
         2,
         "exclude each other"},
        {{"plan", "webster", scen, "--no-queue-clearance", NULL}, 2, "is a greenwave option"},
        {{"plan", "webster", scen, "--two-way", NULL}, 2, "is a greenwave option"},
        {{"plan", "greenwave", scen, "--set", "control.greenwave.weight_in=-1", NULL},
         1,
         "control.greenwave.weight_in"},
        {{"plan", "greenwave", scen, "--set", "control.greenwave.enabled=3", NULL},
         1,
         "control.greenwave.enabled"},
        {{"plan", "greenwave", scen, "--speed", NULL}, 2, "--speed needs a value"},
        {{"plan", "greenwave", scen, "--bus", "NOPE", NULL}, 2, "no bus line 'NOPE'"},
        {{"plan", "greenwave", scen, "--plan", "7", NULL}, 1, "no intersection has a coordinated"},
        {{"plan", "greenwave", scen, "--speed-min", "30", NULL}, 2, "go together"},
        {{"plan", "greenwave", scen, "--cycle-min", "90", NULL}, 2, "go together"},
        {{"plan", "greenwave", scen, "--cycle-min", "90.5", "--cycle-max", "100", NULL},
         2,
         "whole seconds"},
        {{"plan", "greenwave", scen, "--cycle-min", "100", "--cycle-max", "90", NULL},
         2,
         "is above --cycle-max"},
        {{"plan", "webster", scen, "--speed", "40", NULL}, 2, "is a greenwave option"},
        {{"plan", "greenwave", scen, "--factor", "2", NULL}, 2, "is a webster option"},
        {{"plan", "greenwave", scen, "--common", NULL}, 2, "is a webster option"},
        {{"plan", "bogus", scen, NULL}, 2, "unknown plan kind 'bogus'"},
        {{"plan", "greenwave", NULL}, 2, "missing SCENARIO"},
        {{"plan", "webster", "/nonexistent.json", NULL}, 1, "/nonexistent.json"},
        {{"plan", "webster", scen, "--set", "run.seed=-4", NULL}, 1, "run.seed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = run_sigflow(cases[i].args, &out, &err);
        cr_assert_eq(rc, cases[i].rc, "case %zu: exit %d, stderr: %s", i, rc, err);
        cr_assert(strstr(err, cases[i].msg), "case %zu: stderr: %s", i, err);
        free(out);
        free(err);
    }
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/stdout", dir);
    snprintf(p2, sizeof p2, "%s/stderr", dir);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}
