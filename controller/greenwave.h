/* controller/greenwave.h — green waves: offsets, bandwidth, MAXBAND-style optimisation.
 *
 * A corridor is a line of n signalised intersections (nodes) numbered in the outbound
 * direction (increasing position). Every node runs the common cycle C and has two
 * coordinated green windows in its local cycle time (0 = the instant its offset refers
 * to): outbound [out_start, out_start + g_out) and inbound [in_start, in_start + g_in).
 * With offset theta_i (s after the system sync reference, in [0, C)) the outbound green of
 * node i occupies theta_i + out_start_i + [0, g_out_i) modulo C, likewise inbound.
 *
 * Bandwidth (Little, Kelson, Gartner 1981): the widest band of parallel trajectories that
 * pass every green of one direction without stopping. A vehicle leaving node 0 at time t
 * reaches node i at t + T_i (T_i = sum of the outbound travel times before i); it passes
 * if (t + T_i) mod C falls in node i's outbound green. The outbound bandwidth b is the
 * length of the longest interval of t (mod C) that passes at every node; b' inbound the
 * same from node n-1 with the inbound travel times. Efficiency = (b + b') / (2C).
 * Windows are the displayed greens (split - yellow - red clear): a band that uses yellow
 * would be optimistic.
 *
 * Queue clearance (MAXBAND's tau, Little, Kelson, Gartner 1981): vehicles that turn into a
 * link from the cross streets at its upstream node enter outside the band (during the
 * cross street's green, which the progression puts in the downstream red) and queue at the
 * downstream stop line; the band must reach that stop line only after the queue has left,
 * or its front stops behind it. So node i's usable window in a direction is
 * [start + tau_i, start + g_i): the band starts tau_i after the green (tau_i = 0 at the
 * first node of each direction, whose queue is the platoon itself, and at an always-green
 * node). sf_gw_from_scenario computes tau from the scenario's volumes (see there).
 *
 * Travel times are distance / speed plus an extra time per segment (bus progression:
 * dwell at the stops on the segment plus the time lost braking for and leaving them).
 *
 * Optimisation maximises b + k b' (more generally w b + k b', w = weight_out) over the offsets
 * (node 0 keeps offset 0: only relative offsets matter), on a grid of `step_s`:
 *  - exhaustively when the grid has at most `exhaustive_limit` points (exact on the grid);
 *  - otherwise by a deterministic local search: starts at all-zero offsets, the one-way
 *    offsets of each direction, the simultaneous and alternating patterns, and `restarts`
 *    pseudo-random points (fixed seed), then coordinate ascent on two kinds of moves (one
 *    offset, or every offset from node i onwards shifted together, which keeps the bands
 *    already formed downstream), first on a coarse 1 s grid, then polished on step_s.
 * The reported bandwidths are always recomputed by sf_gw_bandwidth on the offsets
 * returned, and all-zero offsets are always among the candidates, so the result is never
 * worse than all-zero and never claims a band the bandwidth function does not confirm.
 * Optionally the common progression speed is searched too (speed bounds, 1 km/h steps),
 * and, with plans from a scenario, the common cycle: each plan is stretched to the
 * candidate cycle (sf_gw_stretch_plan) and `sigflow plan greenwave --cycle-min/--cycle-max`
 * keeps the cycle with the largest (w b + k b') / C, bands as shares of the cycle as in
 * MAXBAND (whose optimum then tends to the longest cycle allowed: green shares grow with
 * the cycle because the lost times stay fixed).
 *
 * Measured (gcc -O2, this machine): on 100 random 3- and 4-node corridors (C = 60 s, 1 s
 * grid) the local search found the exhaustive optimum every time; 8 to 64 nodes take
 * 0.1-0.9 s at a 0.1 s step.
 */
#ifndef SIGFLOW_GREENWAVE_H
#define SIGFLOW_GREENWAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

#define SF_GW_MAX_NODES 64 /* intersections in one corridor */

typedef struct {
    uint32_t n;                            /* nodes, outbound order */
    double cycle_s;                        /* common cycle C, s */
    double out_start_s[SF_GW_MAX_NODES];   /* outbound green start in local cycle time, s */
    double green_out_s[SF_GW_MAX_NODES];   /* outbound green length, s (>= C: always green) */
    double in_start_s[SF_GW_MAX_NODES];    /* inbound green start in local cycle time, s */
    double green_in_s[SF_GW_MAX_NODES];    /* inbound green length, s */
    double dist_out_m[SF_GW_MAX_NODES];    /* node i to i+1, stop line to stop line, m */
    double dist_in_m[SF_GW_MAX_NODES];     /* node i+1 to i, m */
    double speed_out_mps[SF_GW_MAX_NODES]; /* progression speed on segment i outbound, m/s */
    double speed_in_mps[SF_GW_MAX_NODES];  /* inbound, m/s */
    double extra_out_s[SF_GW_MAX_NODES];   /* added travel time on segment i outbound, s */
    double extra_in_s[SF_GW_MAX_NODES];    /* inbound, s */
    double t_out_s[SF_GW_MAX_NODES];       /* travel time node i -> i+1 (sf_gw_update_times) */
    double t_in_s[SF_GW_MAX_NODES];        /* travel time node i+1 -> i */
    double tau_out_s[SF_GW_MAX_NODES];     /* queue clearance at node i, outbound, s (0: none) */
    double tau_in_s[SF_GW_MAX_NODES];      /* queue clearance at node i, inbound, s */
    double queue_out_veh[SF_GW_MAX_NODES]; /* turned-in queue per through lane behind tau_out */
    double queue_in_veh[SF_GW_MAX_NODES];  /* the same inbound (sf_gw_from_scenario) */
    double volume_out_veh_h; /* mean flow of the outbound links between the nodes, veh/h */
    double volume_in_veh_h;  /* the same inbound (sf_gw_from_scenario; 0 when unknown) */
    uint8_t line_dirs;       /* from a scenario with a bus line: bit 0 = the line runs outbound on
                                some segment, bit 1 = inbound; 0 otherwise */
} sf_gw_corridor_t;

typedef struct {
    double b_out_s;    /* outbound bandwidth, s */
    double b_in_s;     /* inbound bandwidth, s */
    double t_out_s;    /* first departure of the outbound band at node 0, s mod C */
    double t_in_s;     /* first departure of the inbound band at node n-1, s mod C */
    double efficiency; /* (b + b') / (2C) */
} sf_gw_band_t;

typedef struct {
    double weight_out;         /* w, weight of b (>= 0), default 1 */
    double weight_in;          /* k in b + k b' (>= 0), default 1 */
    double step_s;             /* offset resolution, default 0.1 s */
    uint32_t restarts;         /* pseudo-random starting points, default 16 */
    uint64_t exhaustive_limit; /* grid points searched exhaustively, default 200000 */
    uint64_t seed;             /* for the restarts, default 1 */
    bool two_way;              /* target band ratio b' / b = k / w (MAXBAND's k): each band
                                  counts only up to that ratio of the other (default false) */
} sf_gw_opts_t;

typedef enum { SF_GW_OUTBOUND = 0, SF_GW_INBOUND = 1 } sf_gw_dir_t;

/* Fill o with the documented defaults. */
void sf_gw_opts_default(sf_gw_opts_t *o);

/* The optimised objective for bands b: w b_out + k b_in, or with o->two_way the target
 * ratio form (after MAXBAND's b' >= k b, Little, Kelson, Gartner 1981, applied both ways):
 * w min(b, b' w / k) + k min(b', b k / w), so that a one-way wave scores 0 and the bands
 * grow together in the ratio of the weights. */
double sf_gw_objective(const sf_gw_opts_t *o, const sf_gw_band_t *b);

/* Check a corridor (n in 1..SF_GW_MAX_NODES, C > 0, windows and times finite, starts in
 * [0, C), greens >= 0, queue clearances >= 0, distances >= 0, speeds > 0). Returns 0 or -1
 * with EINVAL. */
int sf_gw_check(const sf_gw_corridor_t *c);

/* t_out_s/t_in_s = distance / speed + extra for every segment. Returns 0 or -1 (EINVAL). */
int sf_gw_update_times(sf_gw_corridor_t *c);

/* Set every segment's progression speed (both directions) and update the travel times. */
int sf_gw_set_speed(sf_gw_corridor_t *c, double speed_mps);

/* Bandwidths of the corridor for offsets offset_s[n] (s, any real; taken mod C).
 * Returns 0 or -1 with EINVAL. */
int sf_gw_bandwidth(const sf_gw_corridor_t *c, const double *offset_s, sf_gw_band_t *out);

/* One-way progression offsets theta_i = (x_i / v) mod C in direction dir: each node's green
 * of that direction starts when a vehicle that left at the first node's green start
 * arrives (travel times as in c; node 0 keeps offset 0), or tau_i earlier with a queue
 * clearance, so that the queue has left when that vehicle arrives. Returns 0 or -1. */
int sf_gw_one_way(const sf_gw_corridor_t *c, sf_gw_dir_t dir, double *offset_s);

/* Offsets maximising b + k b' (see the header comment); offset_s[n] receives them in
 * [0, C), rounded to the step; *out their bandwidths. Returns 0 or -1 (EINVAL). */
int sf_gw_optimise(const sf_gw_corridor_t *c, const sf_gw_opts_t *o, double *offset_s,
                   sf_gw_band_t *out);

/* sf_gw_optimise at every common speed from v_min to v_max (m/s) in steps of 1 km/h (both
 * ends included); keeps the best b + k b' (ties: the first, i.e. the lowest speed). Leaves
 * c with the chosen speed and travel times; *speed_mps receives it. Returns 0 or -1. */
int sf_gw_optimise_speed(sf_gw_corridor_t *c, const sf_gw_opts_t *o, double v_min_mps,
                         double v_max_mps, double *speed_mps, double *offset_s, sf_gw_band_t *out);

/* Where plan runs each phase's green as the unit lays it out: start_s[p] in s after the
 * unit's reference (the green start of the first coordinated phase, scanning the rings in
 * order, each in its service order), mod the plan's cycle, and green_s[p] its split less
 * yellow and red clear (0 when omitted or not longer than its clearance); both
 * [SF_MAX_PHASES]. The barriers of a loaded plan line up (the scenario checks it), so each
 * ring's phases one after the other is the unit's layout. 0, or -1 (EINVAL: a phase of a
 * ring sequence out of range, a coordinated phase in no sequence, no coordinated phase, no
 * cycle). */
int sf_gw_green_windows(const sf_intersection_t *ix, const sf_plan_t *plan, double *start_s,
                        double *green_s);

/* The plan pl of ix stretched (or shrunk) to cycle_ds: every phase keeps its yellow and
 * red clear and the greens scale together (sf_split_allocate with the current greens as
 * weights), so rings, barriers and minimum splits stay valid; the offset is taken modulo
 * the new cycle. Returns 0, or -1 with ERANGE (the minimums do not fit) or EINVAL. */
int sf_gw_stretch_plan(const sf_intersection_t *ix, const sf_plan_t *pl, uint32_t cycle_ds,
                       sf_plan_t *out);

/* MAXBAND's direction weights from the volumes (its target ratio k = V_in / V_out): 1 for
 * the heavier direction, V_light / V_heavy for the other (1 and 1 with no volumes).
 * Returns 0 or -1 with EINVAL. */
int sf_gw_volume_weights(const sf_gw_corridor_t *c, double *w_out, double *w_in);

/* The band weights the scenario asks for (control.greenwave.weight_out, weight_in), or
 * sf_gw_volume_weights of c when both are 0 (the default). Returns 0 or -1 with EINVAL. */
int sf_gw_weights(const sf_scenario_t *sc, const sf_gw_corridor_t *c, double *w_out, double *w_in);

/* How a corridor is taken from a scenario. */
typedef struct {
    int plan_id;          /* plan number 1..16 at every node; 0 = the plan in force at
                             run.start_tod_s at the first coordinated intersection */
    double speed_mps;     /* > 0: one progression speed everywhere; 0 = each link's limit
                             (times the bus desired-speed factor with a bus line) */
    int line_idx;         /* >= 0: bus progression for this line; -1 = cars */
    uint32_t cycle_ds;    /* > 0: every node's plan stretched to this cycle (sf_gw_stretch_plan)
                             for a cycle search; 0 = the plans as they are (common cycle) */
    bool queue_clearance; /* compute tau from the volumes (else every tau is 0) */
} sf_gw_source_t;

#define SF_GW_SAT_FLOW_VEH_H 1800.0 /* per lane, for queue discharge (REFERENCE.md) */
#define SF_GW_STARTUP_LOST_S 2.0    /* start-up lost time of a standing queue (REFERENCE.md) */

/* Queue clearance time of a queue of q vehicles per lane: SF_GW_STARTUP_LOST_S + q x 3600 /
 * SF_GW_SAT_FLOW_VEH_H when q > 0 (the last queued vehicle crosses the stop line then), 0
 * when there is no queue; -1 with EINVAL when q is negative or not finite. */
double sf_gw_clearance_s(double queue_veh_per_lane);

/* Build the corridor of a scenario: the intersections whose selected plan has
 * coordinated phases, ordered along the axis (x or y) on which they spread most,
 * outbound = increasing coordinate. Each node's outbound (inbound) window is the
 * coordinated phase serving the through movement of its approach from the lower (higher)
 * side; local cycle time 0 is the green start of the first coordinated phase found
 * scanning the rings in order, each in its service order (ring_seq) — the phase the
 * unit's offset refers to (unit/engine.c) — with every ring starting its sequence at
 * cycle time 0 (a valid plan's barriers line up, so this is the unit's layout). Distances and
 * speeds come from the links between consecutive nodes. With a bus line, the dwell of its stops on
 * a segment (dwell_s + per_pax_s * pax_mean) and the time lost stopping there (v/(2a) + v/(2b) with
 * the bus's a and b) are added to that segment. With src->queue_clearance, the queue at each
 * node's stop line is the flow turning into its approach link at the upstream node (every
 * movement into the link that is not a through movement: the cross streets' turns; link flows
 * from the entry flows and turning ratios, sf_link_flows, base profile) times C / 3600, times
 * the share of it not turning left downstream, spread over the link's lanes that serve through
 * traffic; tau = sf_gw_clearance_s of it. node_ix[n] receives the intersection index of every
 * node, *plan_idx_out (may be NULL) the plan index used at each node. Returns 0, or -1 with EINVAL
 * and a one-line reason in err. */
int sf_gw_from_scenario(const sf_scenario_t *sc, const sf_gw_source_t *src, sf_gw_corridor_t *c,
                        uint32_t *node_ix, uint8_t *plan_idx_out, char *err, size_t err_len);

/* The corridor c, built by sf_gw_from_scenario (node_ix as it returned), re-laid for other
 * plans of its nodes: plans[k] is node k's plan, every one with the same cycle (an adaptive
 * group's). The cycle, each node's windows (the coordinated phases serving the through
 * movements, laid out as sf_gw_from_scenario does) and the queue clearances (the turned-in
 * queue arrives per cycle: queue_*_veh scaled by the new cycle over the old, tau again
 * sf_gw_clearance_s of it) follow the plans; distances, speeds, travel times and volumes
 * are kept. Changes nothing and returns -1 with EINVAL on bad input (a plan without a
 * coordinated phase for a direction, cycles that differ, a node index out of range). */
int sf_gw_relay(const sf_scenario_t *sc, const uint32_t *node_ix, const sf_plan_t *plans,
                sf_gw_corridor_t *c);

/* Offsets for corridor c while the nodes run offsets kept_s[n] (s; an adaptive group whose
 * cycle or splits changed, c re-laid by sf_gw_relay): sf_gw_optimise's under o, except that
 *  - without o->two_way the wave keeps the direction of the kept offsets' wider band: when
 *    the optimum is a wave the other way (weights this close tip either way) the optimum of
 *    the kept direction alone (the other weight 0) is taken, since turning the wave round
 *    moves every node by up to half a cycle;
 *  - the offsets are shifted together (bands depend on relative offsets only) by the 0.1 s
 *    multiple that moves the nodes least from kept_s (sum of circular distances), so the
 *    units' offset transitions stay short.
 * offset_s[n] receives them in [0, C), *kept and *out (may be NULL) the bands of kept_s and
 * of offset_s, *moved_s (may be NULL) the summed circular distance from kept_s, s. Returns 1
 * when offset_s beat kept_s on sf_gw_objective, 0 when they do not (offset_s still filled),
 * -1 with EINVAL. */
int sf_gw_reoptimise(const sf_gw_corridor_t *c, const sf_gw_opts_t *o, const double *kept_s,
                     double *offset_s, sf_gw_band_t *kept, sf_gw_band_t *out, double *moved_s);

#endif
