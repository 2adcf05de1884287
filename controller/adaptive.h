/* controller/adaptive.h — smart control decisions as pure functions of measured inputs:
 * a SCATS-like degree-of-saturation split and cycle adaptation, and max-pressure stage
 * selection. No I/O, no clock: the caller (the controller's poll loop) measures, calls,
 * and writes the result to the unit, which enforces its safety limits again.
 *
 * SCATS-like adaptation (Sims and Dobinson 1980, in spirit):
 *  - degree of saturation of a phase in the last cycle, from its stop-bar detector:
 *    DS = (g - (T - t h)) / g, g the green available, T the time the detector was
 *    unoccupied during that green, t the vehicles counted, h the unoccupied time one
 *    vehicle leaves at saturation flow (so t h is the gap time a saturated stream would
 *    have had; T - t h is green that was wasted). DS = 1: the green was fully used. With
 *    several lanes, a phase's DS is its largest lane DS. Values are clipped to [0, 2].
 *  - the green a phase asks for: DS x (its effective green) / target DS;
 *  - the cycle it asks for: every phase its lost time plus that green (at least its
 *    minimum split), barrier by barrier the most demanding ring; bounded to
 *    [min cycle, max cycle] and, for coordinated intersections, replaced by the group's
 *    common cycle (the largest wanted cycle of the group: sf_adapt_cycle_wanted);
 *  - the cycle moves towards it by at most max_cycle_step per cycle;
 *  - the splits are the allocation of that cycle in proportion to the asked-for greens
 *    (sf_split_allocate), which equalises DS across the critical phases; or, with
 *    spare = SF_ADAPT_SPARE_COORD at a member whose phases ask for less than the group's
 *    cycle, every non-coordinated phase gets the green it asks for and the coordinated
 *    phases take the rest (SCATS's link phase: a non-critical intersection's spare time
 *    goes to the arterial, not to its side streets; sf_adapt_opts_t.spare), except that a
 *    non-coordinated phase asks at least for its share of the scheduled plan's cycle
 *    (sf_adapt_ds_floor: side-street DS from stop-bar counts under-reads); each split moves
 *    by at most max_split_step plus the cycle change per cycle (a partial step towards the
 *    target when the full one would move more);
 *  - a phase whose greens end with its stop-bar queue still standing (split failures,
 *    sf_split_fail_sample) reads a DS above what its counts can show, up to fail_ds when
 *    every green failed (sf_adapt_ds_failures): more green for it; such failures also keep
 *    the cycle from shrinking (sf_adapt_cycle_hold), but never lengthen it by themselves;
 *  - a turn fed by a bay on an approach that carries a coordinated phase asks at least for
 *    the green that discharges a full bay (sf_adapt_ds_bay): its turners that do not fit
 *    the bay hold the through lane beside it, which its own counts cannot see;
 *  - every split stays >= min green (or walk + ped clear) + yellow + red clear, rings sum
 *    to the cycle, barriers line up, no phase is newly omitted (a phase the plan omits
 *    keeps split 0), and the offset and the coordinated phases are kept, so coordination
 *    survives the change.
 *
 * Max-pressure (Varaiya 2013): a stage is a maximal set of mutually concurrent phases, at
 * most one per ring. The pressure of a phase is the sum over its movements of
 * (upstream queue - downstream queue) x saturation flow; of a stage, the sum over its
 * phases. At each decision point: keep the current stage until every one of its phases
 * has had its minimum green; at max green, switch to the best other stage that has a
 * positive pressure; otherwise switch only to a stage whose pressure exceeds the current
 * one's by more than a hysteresis. A switch costs the clearance (yellow + red clear) of
 * the phases that end.
 */
#ifndef SIGFLOW_ADAPTIVE_H
#define SIGFLOW_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linkq.h"
#include "scenario.h"

#define SF_DS_MAX     2.0 /* measured DS is clipped to [0, SF_DS_MAX] */
#define SF_MAX_STAGES 64  /* stages of one intersection */

typedef struct {
    uint16_t phase_mask; /* bit i = phases[i] is green in this stage */
} sf_stage_t;

/* Degree of saturation DS = (g - (T - t h)) / g from one lane's stop-bar data in one
 * cycle: green_s g > 0, unoccupied_s T in [0, g], n_veh t, h_s h >= 0. Returns DS clipped
 * to [0, SF_DS_MAX], or -1 with EINVAL. */
double sf_scats_ds(double green_s, double unoccupied_s, uint32_t n_veh, double h_s);

/* Flow-based degree of saturation n / (s g) (the equivalent measure for counting
 * detectors): n_veh vehicles in green_s seconds of green at saturation flow s (veh/h).
 * Clipped to [0, SF_DS_MAX]; -1 with EINVAL on bad inputs. */
double sf_flow_ds(uint32_t n_veh, double green_s, double sat_veh_h);

/* DS by phase index from DS by detector index (det_ds[n_det], negative = no data): the
 * largest DS among the stop-bar presence detectors that call the phase (SCATS takes the
 * busiest lane); -1 for a phase without such a detector with data. Returns the number of
 * phases that got a DS, or -1 with EINVAL.
 *
 * Inputs from the unit's register map: det_volume (vehicles per detector interval) with the
 * phase's green time in that interval gives the flow-based DS (sf_flow_ds). det_occupancy
 * covers the whole interval, including red time while a queue stands on a stop-bar
 * detector, so it does not give SCATS's unoccupied green time T by itself; sampling
 * det_presence during the phase's green (at the poll period) does, at that resolution. */
int sf_adapt_phase_ds(const sf_intersection_t *ix, const double *det_ds, double *phase_ds);

/* Green each phase had, sampled: add dt_s to green_s[p] (by phase index) for every phase
 * of ix whose bit is set in greens, a bitmask by phase NUMBER (bit i = phase i + 1, the
 * register map's phase_status_greens). Sampling the unit's status at the poll period
 * integrates the green the phases really had to that resolution. Returns 0, or -1 with
 * EINVAL (NULL, dt_s negative or not finite), green_s untouched. */
int sf_adapt_green_sample(const sf_intersection_t *ix, uint16_t greens, double dt_s,
                          double *green_s);

/* Green (s) a phase had available over a measurement, for its DS: the larger of its
 * plan's green (split less yellow and red clear, times the cycles) and the green it was
 * seen to have. Reason: in actuated-coordinated operation a side phase that gaps out or
 * is skipped leaves part of its split unused (that part is spare capacity: over the plan's
 * green its DS reads below 1, as SCATS's counts the unused green as wasted) and the
 * coordinated phases receive it (early return): over the plan's green their DS would
 * count the vehicles of that extra green against too little green and read above the
 * truth, pulling the cycle up and the splits to the arterial. Negative inputs count as 0. */
double sf_adapt_green_avail(double plan_green_s, double seen_green_s);

/* Sum of the phase pressures of every stage: stage_pressure[n_stages]. 0 or -1 (EINVAL). */
int sf_mp_stage_pressure(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                         const double *phase_pressure, double *stage_pressure);

/* Where the spare time of a cycle longer than the phases ask for goes (sf_adapt_step). */
typedef enum {
    SF_ADAPT_SPARE_PROPORTIONAL = 0, /* every phase in proportion to the green it asks for */
    SF_ADAPT_SPARE_COORD = 1,        /* the coordinated phases only (SCATS's link phase) */
} sf_adapt_spare_t;

/* The saturation flow a stop-bar lane's flow DS is counted against (sf_adapt_opts_t.sat). */
typedef enum {
    SF_ADAPT_SAT_FIXED = 0,   /* SF_ADAPT_SAT_VEH_H for every lane (the planner's figure) */
    SF_ADAPT_SAT_LEARNED = 1, /* each phase's maximum flow learned at saturation (SCATS's
                                 MF calibration, sf_adapt_sat_learn) */
} sf_adapt_sat_t;

#define SF_ADAPT_SAT_VEH_H     1800.0 /* veh/h of green a lane discharges at saturation */
#define SF_ADAPT_SAT_MIN_VEH_H 1200.0 /* lowest maximum flow a phase may learn */

typedef struct {
    double target_ds;        /* DS the cycle is sized for, default 0.9 */
    double min_cycle_s;      /* default 40 (scenario: control.adaptive_min_cycle_s) */
    double max_cycle_s;      /* default 150 (scenario: control.adaptive_max_cycle_s) */
    double max_cycle_step_s; /* largest cycle change per cycle, default 6 s */
    double max_split_step_s; /* largest split change per cycle beyond the cycle change, 4 s */
    double startup_lost_s;   /* l1 for the lost time per phase, default 2 s */
    double end_gain_s;       /* e for the lost time per phase, default 2 s */
    /* hysteresis (SCATS changes a plan only when the measured need differs enough) */
    double min_cycle_change_s; /* wanted cycle within this of the running one: kept, def. 4 */
    double min_split_change_s; /* a new plan whose splits all move less than this (with the
                                  cycle kept) is not sent, default 3 s */
    double decide_every_s;     /* measure at least this long between two decisions, def. 240 */
    double fail_ds;            /* DS of a phase whose every green failed (sf_adapt_ds_failures),
                                  default 1.05 (a saturated green's counts read ~1.0: it asks
                                  1.05 / 0.9 = 1.17 times its green); <= target_ds: off */
    sf_adapt_spare_t spare;    /* where a member's spare time goes when its phases ask for
                                  less than the cycle it runs (scenario:
                                  control.adaptive_spare), default proportional */
    sf_adapt_sat_t sat;        /* saturation flow of the flow DS (scenario:
                                  control.adaptive_sat_flow), default fixed */
} sf_adapt_opts_t;

typedef struct {
    double ds[SF_MAX_PHASES];           /* DS used per phase (measured, clipped, or target) */
    double want_green_s[SF_MAX_PHASES]; /* green asked for at the target DS */
    double cycle_wanted_s;              /* before the step bound (after the bounds/group cycle) */
    double step_fraction;               /* share of the way to the target splits taken, 0..1 */
} sf_adapt_info_t;

/* Fill o with the documented defaults. */
void sf_adapt_opts_default(sf_adapt_opts_t *o);

/* Cycle (s) intersection ix asks for with plan cur and per-phase DS ds[n_phases] (a
 * negative DS = no measurement: the phase keeps its green), bounded to [min, max] and to
 * the cycle its minimum splits need. Returns 0 or -1 with EINVAL (bad options, NaN DS,
 * a plan whose splits are below their minimums or do not sum to its cycle). */
int sf_adapt_cycle_wanted(const sf_intersection_t *ix, const sf_plan_t *cur, const double *ds,
                          const sf_adapt_opts_t *o, double *cycle_s);

/* One adaptation step at a cycle boundary: next = cur with a new cycle and splits (see
 * the header comment); group_cycle_s > 0 is the coordinated group's common wanted cycle
 * (from sf_adapt_cycle_wanted over the group), 0 = the intersection's own. With o->spare
 * SF_ADAPT_SPARE_COORD and a cycle longer than every phase asks for (the cycle at which
 * each gets its asked-for green, sf_split_cycle_at), each non-coordinated phase gets its
 * lost time plus the green it asks for (at least its minimum split; in a barrier without
 * a coordinated phase a ring shorter than the barrier shares its slack equally) and the
 * coordinated phases share the rest in proportion to what they ask; a cycle shorter than
 * that is allocated in proportion, as with SF_ADAPT_SPARE_PROPORTIONAL. info may be
 * NULL. Returns 0, or -1 with EINVAL (as sf_adapt_cycle_wanted) leaving *next untouched. */
int sf_adapt_step(const sf_intersection_t *ix, const sf_plan_t *cur, const double *ds,
                  const sf_adapt_opts_t *o, double group_cycle_s, sf_plan_t *next,
                  sf_adapt_info_t *info);

/* Side streets keep the scheduled plan's share of the cycle: the DS of every
 * non-coordinated phase of cur (ds[], by phase index, as sf_adapt_step takes it) is raised
 * to the DS at which it asks for its share of the cycle in base (the time-of-day plan the
 * engineer set for the period), so adaptation gives such a phase more green when it
 * measures saturated, and takes green from it only as far as the allocation of a cycle
 * shorter than what all phases ask for scales every phase down. Reason: the flow-based DS of a
 * stop-bar lane reads a fully used green as ~1 and a lane whose discharge is slower than
 * the assumed saturation flow (permissive lefts in a shared lane, a blocked lane) as
 * spare, so equalising DS took green from side streets that needed it (measured on the
 * corridor under the surge). The coordinated phases take what is left. Phases without a
 * measurement (ds < 0) and omitted ones are left as they are. Returns 0 or -1 (EINVAL). */
int sf_adapt_ds_floor(const sf_intersection_t *ix, const sf_plan_t *cur, const sf_plan_t *base,
                      const sf_adapt_opts_t *o, double *ds);

/* ---- turn bays beside the coordinated movement -------------------------------------------
 *
 * A protected turn fed by a bay reads its DS from the bay lane's stop-bar counts, which see
 * only the turners that reached the bay. Those that did not fit stand in the through lane
 * beside it and hold that lane (bench_blocking: on the corridor's surge the 60 m arterial
 * bays are full 15-38 % of the time where they overflow, and the lane beside them discharges
 * 1343-1450 veh/h of green against 1536-1677 for the kerb lane), while the bay's own counts
 * read spare green (arterial lefts' flow DS 0.26-0.87 during the surge). On an approach that
 * also carries a coordinated phase that costs the arterial far more than the turn's few
 * seconds, so such a phase asks at least for the green that discharges a full bay and the
 * vehicle standing at its mouth: (floor(bay / SF_ADAPT_BAY_VEH_M) + 1) x 3600 /
 * SF_ADAPT_SAT_VEH_H s of effective green (the practice of sizing a protected turn's green to
 * its bay's storage). A phase that then gaps out (actuated-coordinated) gives the unused part
 * back to the coordinated phases, so light traffic pays little. Measured on the surge
 * (README, seeds 1-16): total delay -5.9 % against the fixed plan, -4.2 % without it
 * (control.adaptive_bay_guard=false). */
#define SF_ADAPT_BAY_VEH_M 7.5 /* bay length one queued vehicle takes, m */

/* Raise ds[] (by phase index, as sf_adapt_step takes it) of every phase of ix that a
 * stop-bar presence detector in a turn bay calls, where a presence detector on the same link
 * calls a coordinated phase of cur, to at least the DS at which it asks for a full bay's
 * green (see above); coordinated, omitted and unmeasured (ds < 0) phases are left as they are.
 * Returns the number of phases raised, or -1 with EINVAL (NULL, NaN DS, bad options, a
 * detector on a link sc does not have). */
int sf_adapt_ds_bay(const sf_scenario_t *sc, const sf_intersection_t *ix, const sf_plan_t *cur,
                    const sf_adapt_opts_t *o, double *ds);

/* ---- split failures (oversaturation the flow DS cannot see) ------------------------------
 *
 * A flow-based DS (vehicles over the green) cannot read above what the green discharged, so
 * a phase whose demand exceeds its capacity reads ~1 however long its queue, and a phase
 * whose lanes are blocked (a turn bay overflowing into the through lane, a queue that
 * cannot leave) reads low. Traffic signal performance measures (Purdue / ATSPM "split
 * failure", Smaglik et al. 2011) see it at the stop bar: a green during which the stop-bar
 * detectors stayed occupied (green occupancy ratio, GOR) followed by a red whose first
 * seconds find them occupied again (red occupancy ratio, ROR5) did not clear its queue.
 * GOR >= SF_SPLIT_FAIL_GOR and ROR5 >= SF_SPLIT_FAIL_ROR = a split failure. ATSPM takes
 * 0.8 for both with long (12 m) stop-bar zones; GOR depends on the zone and the discharge
 * speed: a queue discharging at saturation over the 6 m zones of the model gives GOR
 * 0.4-0.6 (measured on the corridor: greens whose red then found a vehicle standing,
 * median 0.55), so its threshold is 0.5 here (a green at most half used is not counted).
 * Tracked per phase from samples at the poll period (the unit's phase status and its
 * detectors' presence); yellow samples count in neither. */
#define SF_SPLIT_FAIL_GOR   0.5 /* GOR at or above this ... */
#define SF_SPLIT_FAIL_ROR   0.8 /* ... and ROR5 at or above this: the green failed */
#define SF_SPLIT_FAIL_ROR_S 5.0 /* the red window of ROR5, s */

typedef enum { SF_SIG_RED = 0, SF_SIG_GREEN = 1, SF_SIG_YELLOW = 2 } sf_sig_t;

typedef struct {
    double g_s, g_occ_s; /* green sampled in the current cycle, and of it occupied */
    double r_s, r_occ_s; /* red sampled since that green ended (up to the ROR window) */
    uint8_t state;       /* 0 waiting for a green, 1 in green, 2 in the red window */
    uint32_t cycles;     /* greens judged */
    uint32_t failures;   /* of them, split failures */
} sf_split_fail_t;

/* One sample of a phase: sig its signal now, occupied = any stop-bar presence detector of
 * the phase occupied now, dt_s the time since the previous sample (the sample stands for
 * it). A green followed by ROR window seconds of red is judged: cycles + 1, failures + 1
 * when GOR and ROR5 reach their thresholds. A new green before the window is full
 * judges with the red seen (a red of at least one sample), or drops a green without any.
 * Returns 1 when a green was judged, 0 when not, -1 with EINVAL (NULL, bad sig, dt_s
 * negative or not finite) leaving *t untouched. */
int sf_split_fail_sample(sf_split_fail_t *t, sf_sig_t sig, bool occupied, double dt_s);

/* Drop the green being judged (and the red seen after it): the next green starts afresh.
 * The counts of greens judged so far stay. NULL: nothing. */
void sf_split_fail_restart(sf_split_fail_t *t);

/* DS raised by split failures: a phase with failures[i] split failures in cycles[i] > 0
 * judged greens (share f) reads at least target_ds + f (fail_ds - target_ds), so a phase
 * failing every cycle asks for fail_ds / target_ds of its green, more than a flow DS can
 * ask. Phases without judged greens, omitted ones and ds < 0 (no data) are left as they
 * are; fail_ds <= target_ds turns the rule off. Returns the number of phases raised, or -1
 * with EINVAL (NULL, failures > cycles, NaN DS, bad options). */
int sf_adapt_ds_failures(const sf_intersection_t *ix, const sf_plan_t *cur, const uint32_t *cycles,
                         const uint32_t *failures, const sf_adapt_opts_t *o, double *ds);

/* ---- maximum flow learned at saturation (SCATS's MF calibration) ------------------------
 *
 * A flow DS n / (s g) with s = SF_ADAPT_SAT_VEH_H reads a fully used green as its lanes'
 * real discharge over s. Measured on the corridor under the surge (bench_blocking, the
 * units on plan 1, seeds 1-3, 900-2700 s): the arterial stop lines of the 8-phase members
 * discharge 1340-1680 veh per hour of green a lane (start-up loss, the simulator's
 * headways, and left-turners that do not fit their bay standing in the lane beside it), so
 * a saturated arterial phase reads DS 0.83-0.94 (seed 1, I2's ds_flow), at or below the 0.9
 * target: it asks for no more green and no member asks for a longer cycle while the entries queue
 * to the link's length. SCATS calibrates each lane's maximum flow (MF) from what it
 * discharges when saturated. Here a phase learns its MF from a measurement in which every
 * judged green (at least two) was a split failure (sf_split_fail_sample: the queue stood
 * through the green and after it), so its busiest lane's flow over the green was its
 * capacity: MF moves half-way to that flow, bounded to [SF_ADAPT_SAT_MIN_VEH_H,
 * SF_ADAPT_SAT_VEH_H] (a blocked lane cannot teach a flow below the bound, and nothing is
 * learned above the planner's figure). Its lanes' DS is then counted against MF, so a
 * saturated phase reads ~1 and asks 1 / target_ds of its green. */

/* Maximum flow (veh/h of green) phase learns from one measurement: mf_veh_h the phase's
 * MF so far (<= 0: SF_ADAPT_SAT_VEH_H), n_veh the vehicles its busiest lane counted over
 * green_s of green, judged / failed its greens judged and split failures in the
 * measurement. Unchanged unless o->sat is SF_ADAPT_SAT_LEARNED, judged >= 2, failed ==
 * judged and green_s > 0; else half-way to n_veh / green_s, bounded (see above). Returns
 * the MF, or -1 with EINVAL (NULL o, NaN or negative inputs, failed > judged). */
double sf_adapt_sat_learn(double mf_veh_h, uint32_t n_veh, double green_s, uint32_t judged,
                          uint32_t failed, const sf_adapt_opts_t *o);

/* Cycle (s) an intersection asks for, from the cycle it runs (cur_s), the one its flow DS
 * asks for (flow_s) and the one its DS raised by split failures asks for (fail_s, from
 * sf_adapt_ds_failures): failures only keep the cycle from shrinking while greens fail to
 * clear their queues (fail_s >= cur_s: at least cur_s), they never lengthen it by
 * themselves (a phase's extra need is met by its split); without failures (fail_s = flow_s)
 * the flow DS decides. A value that is not finite or not positive is taken as cur_s. */
double sf_adapt_cycle_hold(double cur_s, double flow_s, double fail_s);

/* ---- hysteresis and the coordination reference ------------------------------------------
 *
 * A coordinated group shares one cycle. Its reference is a common cycle start: with cycle C
 * and epoch e (0.1 s, 0 <= e < C), the common cycles start at the times t (0.1 s after the
 * units' sync reference) with t = e mod C, and the plan of a member whose own offset is
 * base runs with offset (base + e) mod C. A cycle change from C to C' takes as the new
 * epoch a common cycle start E of the old reference (e' = E mod C'): every member keeps its
 * offset relative to the others exactly, and a member that switches in the lap anchored at
 * E finds the new reference where it already is (only the move of its coordinated green's
 * start within the cycle is left to correct), so the unit does not go through an offset
 * transition. Without the rebase, (t - sync) mod C' is unrelated to (t - sync) mod C and
 * every cycle change puts the unit up to half a cycle off its reference. */

/* Cycle (s) the group moves to from cur_s when the group wants wanted_s: cur_s itself
 * while |wanted - cur| < min_cycle_change_s, else a step towards wanted of at most
 * max_cycle_step_s, rounded to 0.1 s. Returns -1 with EINVAL on bad inputs. */
double sf_adapt_group_cycle(double cur_s, double wanted_s, const sf_adapt_opts_t *o);

/* Whether next differs enough from cur to be sent: a cycle change, or a split of some
 * phase moved by at least min_split_change_s. False on bad inputs (errno EINVAL). */
bool sf_adapt_significant(const sf_intersection_t *ix, const sf_plan_t *cur, const sf_plan_t *next,
                          const sf_adapt_opts_t *o);

/* Group time (0.1 s) of the first coordinated phase's green start in plan p: the splits
 * before it in its ring within its barrier group (the unit's s_c, unit/engine.c). 0 when
 * the plan has no coordinated phase or the input is bad. */
uint16_t sf_adapt_coord_start_ds(const sf_intersection_t *ix, const sf_plan_t *p);

/* Offset (0.1 s) of a member with scheduled offset base_ds under epoch epoch_ds and
 * cycle cycle_ds > 0: (base + epoch) mod cycle. */
uint16_t sf_adapt_offset_ds(uint16_t base_ds, uint32_t epoch_ds, uint16_t cycle_ds);

/* New epoch for a group cycle change from c_old_ds to c_new_ds (both > 0) under epoch
 * epoch_ds < c_old_ds, the members expected to receive the change at ts_ds (0.1 s after
 * the sync reference). Member i has base offset base_ds[i] and its coordinated green
 * starts cs_ds[i] into its lap under the old plan (sf_adapt_coord_start_ds). A member
 * switches at its first lap start at or after ts; the common cycle start E before the
 * coordinated green of that lap is where its new reference keeps it in place. The E most
 * members share is taken. Returns 0 with *epoch_new = E mod c_new, or -1 with EINVAL. */
int sf_adapt_rebase(int64_t ts_ds, uint32_t epoch_ds, uint16_t c_old_ds, uint16_t c_new_ds,
                    const uint16_t *base_ds, const uint16_t *cs_ds, size_t n, uint32_t *epoch_new);

/* ---- max-pressure ---------------------------------------------------------------------- */

/* Enumerate the stages of ix (maximal sets of mutually concurrent phases, one per ring at
 * most), in a deterministic order, into stages[max]. Returns the count or -1 (EINVAL;
 * ENOSPC when there are more than max). */
int sf_mp_stages(const sf_intersection_t *ix, sf_stage_t *stages, int max);

/* Pressure by phase index: sum over ix's movements of (q_up - q_down) x s, with q_up the
 * queue (veh) of the movement on its approach, q_down the queue on its exit link, s its
 * saturation flow (veh/h; sat_veh_h may be NULL: 1800 for every movement). Arrays are by
 * movement index. Returns 0 or -1 with EINVAL. */
int sf_mp_phase_pressure(const sf_intersection_t *ix, const double *q_up, const double *q_down,
                         const double *sat_veh_h, double *pressure);

typedef enum {
    SF_MP_START = 0,     /* no stage was green: the best one starts */
    SF_MP_MIN_GREEN = 1, /* held: a phase of the stage has not had its minimum green */
    SF_MP_PRESSURE = 2,  /* switched to (or kept) the stage with the highest pressure */
    SF_MP_MAX_GREEN = 3, /* switched: the stage reached its maximum green */
    SF_MP_NO_DEMAND = 4, /* held at max green: no other stage has a positive pressure */
} sf_mp_reason_t;

typedef struct {
    int stage;             /* stage to run next (== current: hold) */
    bool switch_stage;     /* true when stage differs from the current one */
    sf_mp_reason_t reason; /* why */
    double clearance_s;    /* yellow + red clear of the phases that end (0 when holding) */
    double min_green_s;    /* minimum green of the stage to run next */
} sf_mp_decision_t;

/* Decide the next stage. current = index of the stage now green (-1 = none), elapsed_s =
 * its green time so far, stage_pressure[n_stages] (sum of its phases' pressures),
 * hysteresis >= 0 in pressure units. Max green of a stage = the smallest maximum of its
 * phases, a phase's maximum being the larger of its max1 and max2 (phases with both 0 do
 * not limit it): max 2 is the longer maximum an engineer sets for heavy demand (NTCIP
 * 1202), and max-pressure already ends a stage when another has more pressure; the
 * maximum only bounds how long a stage with the most pressure keeps the others waiting
 * (max1 bound the arterial's green below the fixed plan's on the corridor's surge).
 * Returns 0 or -1 with EINVAL. */
int sf_mp_decide(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                 const double *stage_pressure, int current, double elapsed_s, double hysteresis,
                 sf_mp_decision_t *out);

/* sf_mp_decide with the next stage chosen only among the stages whose bit (by stage
 * index) is set in allowed (the current one is always kept when holding). waiting (bit s
 * = a vehicle is known to wait for stages[s], e.g. a vehicle call on one of its phases):
 * at max green such a stage is switched to even without a positive pressure (the best of
 * them), so no approach with a vehicle waiting starves behind a stage that keeps a higher
 * pressure; sf_mp_decide passes every stage allowed and none waiting. */
int sf_mp_decide_among(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                       const double *stage_pressure, int current, double elapsed_s,
                       double hysteresis, uint64_t allowed, uint64_t waiting,
                       sf_mp_decision_t *out);

/* Stages a unit running stage `current` can go to next by ending some of its phases
 * (bit s = stages[s]): within the barrier group each ring keeps its phase or moves forward
 * in its ring sequence; across the barrier, every ring moves into the next group of the
 * sequence together. The unit serves its rings in sequence order (NEMA): a stage behind in
 * the sequence comes only after the others, so choosing it now would end the current
 * stage for one that is not next. 0 with EINVAL on bad input (or nothing reachable). */
uint64_t sf_mp_reachable(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                         int current);

#define SF_MP_STARTUP_LOST_S 2.0 /* start-up lost time of a stage (REFERENCE.md) */

/* Hysteresis of a switch from stage `current` (pressure p_current) to stage `next`: a
 * switch costs lost time L (the longest yellow + red clear of the phases that end, plus
 * SF_MP_STARTUP_LOST_S), so over the next stage's longest run G (its maximum, as in
 * sf_mp_decide) it serves for G - L only; it pays when next's pressure exceeds
 * p_current x G / (G - L), i.e. p_current by p_current x L / (G - L). Returns base plus
 * that (base alone when p_current <= 0, next == current or G <= L), or -1 with EINVAL. */
double sf_mp_switch_hysteresis(const sf_intersection_t *ix, const sf_stage_t *stages, int n_stages,
                               int current, int next, double p_current, double base);

/* Max-pressure from linkq's estimates, as the centre runs it (controller.c) and
 * bench_linkq replays it: saturation flow per lane's worth of stop line (REFERENCE.md),
 * and the least hysteresis (pressure is in veh/s, queue x saturation flow / 3600: half a
 * queued vehicle at 1800 veh/h). */
#define SF_MP_SAT_VEH_H_LANE 1800.0
#define SF_MP_HYSTERESIS     0.25

/* One max-pressure decision at intersection ix_idx of sc while stages[current] is green
 * (for elapsed_s): queue per movement = linkq's estimate for it on its approach,
 * downstream queue = linkq's estimate of its exit link, saturation flow =
 * SF_MP_SAT_VEH_H_LANE per lane's worth of stop line it discharges over (Varaiya 2013:
 * (x_up - x_down) s); the next stage only among those the ring sequence reaches
 * (sf_mp_reachable), a stage with a vehicle call (veh_calls, bit n-1 = phase n) waiting,
 * and a switch only when it pays its lost time (sf_mp_switch_hysteresis towards the best
 * reachable stage). stage_pressure[n_stages] gets each stage's pressure. Returns 0, or -1
 * with EINVAL (bad input, current out of range). */
int sf_mp_decide_linkq(const sf_scenario_t *sc, const sf_linkq_t *lq, uint32_t ix_idx,
                       const sf_stage_t *stages, int n_stages, int current, double elapsed_s,
                       uint16_t veh_calls, double *stage_pressure, sf_mp_decision_t *out);

#endif
