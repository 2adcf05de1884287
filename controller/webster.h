/* controller/webster.h — Webster's optimal cycle and splits, the classic delay formulas,
 * and the split allocator that the adaptive logic shares.
 *
 * Definitions (REFERENCE.md "Validation formulas"):
 *  - flow ratio of a lane group y = (flow per lane) / (saturation flow per lane);
 *    a phase's y is the max over the lane groups it serves (the critical lane group);
 *  - lost time of a phase l = l1 + (yellow + red clear) - e, with start-up lost time l1
 *    (default 2 s) and end gain e (default 2 s: the part of yellow that traffic uses);
 *  - critical phases: in each barrier group, the ring whose phases have the larger sum of
 *    y (ties: larger lost time); Y and L sum over the critical phases of every barrier
 *    (a single-ring plan without barriers is one barrier: all its phases are critical);
 *  - C0 = (1.5 L + 5) / (1 - Y); effective green g_i = (y_i / Y)(C - L); a phase's split
 *    (what a plan stores, NTCIP meaning: green + yellow + red clear) is g_i + l_i.
 *
 * Lane groups from a scenario: the flow of a movement is the flow of its approach link
 * times the link's turning ratio for its turn (shared equally when several movements of
 * one link make the same turn). Movements of one approach link served by one phase form a
 * lane group; its lanes are the lanes of the link whose lane use allows one of its turns
 * (a lane shared with another phase's group counts in both: an approximation that
 * overstates capacity slightly); its saturation flow per lane is the flow-weighted harmonic
 * mean of the per-turn saturation flows (options).
 *
 * Link flows: entry flows (demand.entries, base flow_veh_h times a demand factor) are
 * propagated downstream through the movements' turning ratios until they stop changing.
 *
 * Minimum split of a phase (every allocation respects it): max(min green, walk + ped
 * clear) + yellow + red clear. Pedestrian timing is included because a fixed-time plan
 * must serve the walk interval whenever the phase has one.
 */
#ifndef SIGFLOW_WEBSTER_H
#define SIGFLOW_WEBSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

typedef struct {
    double sat_through_veh_h; /* saturation flow per lane, through movements; default 1800 */
    double sat_left_veh_h;    /* per lane, left turns; default 1700 */
    double sat_right_veh_h;   /* per lane, right turns; default 1600 */
    double startup_lost_s;    /* l1, default 2 s */
    double end_gain_s;        /* e, default 2 s */
    double min_cycle_s;       /* lower bound on the cycle, default 40 s */
    double max_cycle_s;       /* upper bound on the cycle, default 180 s */
    double demand_factor;     /* multiplies every entry's base flow, default 1 */
} sf_webster_opts_t;

typedef struct {
    double y[SF_MAX_PHASES];          /* flow ratio by phase index */
    double lost_s[SF_MAX_PHASES];     /* lost time by phase index, s */
    bool critical[SF_MAX_PHASES];     /* on the critical path */
    double y_total;                   /* Y: sum of y over critical phases */
    double lost_total_s;              /* L: sum of lost time over critical phases, s */
    double c0_s;                      /* Webster's cycle, unbounded; INFINITY when Y >= 1 */
    uint16_t cycle_ds;                /* cycle used: C0 rounded up to 1 s, bounded, fits mins */
    uint16_t split_ds[SF_MAX_PHASES]; /* splits by phase index, 0.1 s, sum per ring = cycle */
    bool oversaturated;               /* Y >= 1: the cycle is the upper bound */
    bool raised_for_minimums;         /* the cycle had to grow to fit every minimum split */
} sf_webster_t;

/* Fill o with the documented defaults. */
void sf_webster_opts_default(sf_webster_opts_t *o);

/* Webster's optimal cycle C0 = (1.5 L + 5) / (1 - Y) in s. Returns -1 with errno EDOM
 * when Y >= 1 (no finite cycle), EINVAL for negative or non-finite inputs. */
double sf_webster_cycle(double lost_s, double y_total);

/* Effective green of a phase (y_i / Y)(C - L) in s; -1 and EINVAL on bad inputs. */
double sf_webster_green(double y_i, double y_total, double cycle_s, double lost_s);

/* Webster's uniform + random delay (s/veh) of a lane group with flow q and saturation
 * flow s (veh/h) and effective green g in a cycle C (s). Returns -1 with errno EDOM when
 * the degree of saturation x = q / (s g / C) is >= 1, EINVAL on bad inputs. */
double sf_webster_delay(double cycle_s, double green_s, double q_veh_h, double s_veh_h);

/* HCM 2000 uniform delay d1 = 0.5 C (1 - g/C)^2 / (1 - min(1, X) g/C) in s/veh.
 * Returns -1 and EINVAL on bad inputs (C <= 0, g/C outside (0,1], X < 0). */
double sf_hcm_d1(double cycle_s, double g_over_c, double x);

/* HCM 2000 incremental delay d2 = 900 T [(X-1) + sqrt((X-1)^2 + 8 k I X / (c T))] in
 * s/veh, analysis period T (h), capacity c (veh/h), k (0.5 fixed time), I (1 isolated).
 * Returns -1 and EINVAL on bad inputs. */
double sf_hcm_d2(double x, double capacity_veh_h, double period_h, double k, double i);

/* Propagate entry flows through turning ratios: flow_veh_h[n_links] receives each link's
 * flow (veh/h). Returns 0, or -1 with EINVAL (bad arguments) or ELOOP (flows do not
 * settle: a loop in the network with a gain of 1). */
int sf_link_flows(const sf_scenario_t *sc, double demand_factor, double *flow_veh_h);

/* Webster plan for intersection ix_idx from the link flows of sf_link_flows. Fills *out.
 * Returns 0, or -1 with errno set and a one-line reason in err (may be NULL): EINVAL for
 * bad arguments or a lane group without lanes for its turns, ERANGE when the minimum
 * splits do not fit even the maximum cycle. */
int sf_webster_intersection(const sf_scenario_t *sc, uint32_t ix_idx, const double *link_flow,
                            const sf_webster_opts_t *o, sf_webster_t *out, char *err,
                            size_t err_len);

/* Minimum split of phase index p (see the header comment), 0.1 s. */
uint16_t sf_phase_min_split_ds(const sf_intersection_t *ix, uint8_t p);

/* Shortest cycle that fits every minimum split (sum over barriers of the largest ring
 * sum of minimum splits), 0.1 s, the phases in omit_mask (bit i = phases[i], a plan's
 * `omit` split mode) taking no time; 0 for a bad intersection. */
uint32_t sf_min_cycle_ds(const sf_intersection_t *ix, uint16_t omit_mask);

/* Allocate a cycle to the phases of ix so that the splits of every ring sum to cycle_ds,
 * barrier boundaries line up across rings, every split is >= its minimum split, and the
 * time goes to the phases in proportion to weight: each phase wants
 * max(min split, fixed_i + lambda * weight_i) with one lambda for the whole cycle, each
 * barrier lasts as long as its most demanding ring wants (that ring is critical), and
 * lambda is the one that fills the cycle; the other rings share their slack in a barrier
 * the same way. With no minimum binding this is exactly Webster's g_i = (y_i/Y)(C - L)
 * for fixed = lost time, weight = y. fixed_s and weight are by phase index (weight >= 0;
 * all-zero weights share the time equally); phases in omit_mask get a split of 0. Splits are
 * rounded to 0.1 s without breaking any of the above. critical (may be NULL) receives the critical
 * flags by phase index. Returns 0, or -1 with ERANGE when the minimums do not fit the cycle, EINVAL
 * for bad arguments or phases outside every barrier. */
int sf_split_allocate(const sf_intersection_t *ix, uint32_t cycle_ds, const double *fixed_s,
                      const double *weight, uint16_t omit_mask, uint16_t *split_ds, bool *critical);

/* Cycle length (s) when every phase gets max(min split, fixed_i + lambda * weight_i) and
 * each barrier lasts as long as its most demanding ring: the cycle that serves exactly
 * the green each phase asks for at lambda = 1 (phases in omit_mask take no time). -1 with EINVAL on
 * bad arguments. */
double sf_split_cycle_at(const sf_intersection_t *ix, const double *fixed_s, const double *weight,
                         uint16_t omit_mask, double lambda);

/* Round real splits (s, by phase index) that already satisfy the ring and barrier sums
 * (to within rounding) into 0.1 s splits whose rings sum exactly to cycle_ds, never below
 * the minimum splits (0 for the phases in omit_mask). Returns 0, or -1 with EINVAL/ERANGE. */
int sf_splits_round(const sf_intersection_t *ix, const double *split_s, uint32_t cycle_ds,
                    uint16_t omit_mask, uint16_t *split_ds);

#endif
