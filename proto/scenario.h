/* proto/scenario.h — the scenario model: what a scenario file says, in memory.
 *
 * This is the contract every component reads: the loader (scenario.c) fills it from a
 * JSON file and checks it; the unit takes an intersection's signal configuration from
 * it, the simulator its network, demand and transit, the controller its control
 * settings. The field-by-field documentation (units, defaults, ranges) is
 * proto/SCENARIO.md; the JSON names are the C names below unless noted.
 *
 * Units: signal timing is held in tenths of a second (`_ds`, NTCIP 1202 resolution),
 * distances in metres (`_m`), speeds in m/s (`_mps`; the file says km/h), flows in
 * vehicles per hour (`_veh_h`). Ids are short strings; everything that refers to
 * another object refers to it by index once loaded (the loader resolves ids), so
 * components never search by name on a hot path.
 *
 * Invariants after a successful sf_scenario_load():
 *  - every index field is in range; every id is unique within its kind;
 *  - phases within an intersection are numbered 1..16, unique, ring 1..4;
 *  - a plan's splits are >= min green + yellow + red clear of their phase, and the splits
 *    of each ring sum to the cycle;
 *  - `concurrent[a][b]` is symmetric and false on the diagonal; two signal groups whose
 *    phases are not concurrent (and differ) conflict (`sg_conflict`).
 */
#ifndef SIGFLOW_SCENARIO_H
#define SIGFLOW_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "versions.h"

#define SF_ID_LEN         32 /* ids, including the terminating NUL */
#define SF_NAME_LEN       64 /* display names (UTF-8), including NUL */
#define SF_MAX_PHASES     16 /* NTCIP 1202 maxPhases used by sigflow */
#define SF_MAX_RINGS      4
#define SF_MAX_BARRIERS   4
#define SF_MAX_SG         32 /* signal groups per intersection (sg_lamp registers) */
#define SF_MAX_DET        64 /* detectors per intersection (det_presence inputs) */
#define SF_MAX_PLANS      16 /* timing plans per intersection, numbered 1..16 */
#define SF_MAX_SCHEDULE   48 /* time-of-day entries per intersection */
#define SF_MAX_MOVEMENTS  32 /* movements per intersection */
#define SF_MAX_LANES      6  /* lanes per link */
#define SF_MAX_PROFILE    96 /* 15-minute demand slices: 24 h */
#define SF_MAX_LINE_STOPS 64 /* stops per bus line */
#define SF_MAX_ROUTE      64 /* links per bus line route */
#define SF_MAX_DET_FAULTS 64 /* faults.detectors entries */

/* ---- signals ------------------------------------------------------------------ */

typedef enum {
    SF_RECALL_NONE = 0,
    SF_RECALL_MIN = 1, /* place a vehicle call every cycle; serve at least min green */
    SF_RECALL_MAX = 2, /* place a vehicle call and extend to max */
    SF_RECALL_PED = 3, /* place a pedestrian call every cycle */
} sf_recall_t;

typedef struct {
    uint8_t id;            /* phase number 1..16 */
    uint8_t ring;          /* 1..4 */
    uint16_t min_green_ds; /* 0.1 s; >= 50 (5 s) */
    uint16_t passage_ds;   /* 0.1 s; gap/extension time */
    uint16_t max1_ds;      /* 0.1 s */
    uint16_t max2_ds;      /* 0.1 s */
    uint16_t yellow_ds;    /* 0.1 s; 30..60 */
    uint16_t red_clear_ds; /* 0.1 s; 0..60 */
    uint16_t walk_ds;      /* 0.1 s; 0 = no pedestrian movement */
    uint16_t ped_clear_ds; /* 0.1 s; flashing don't walk */
    sf_recall_t recall;
    float ped_crossing_m; /* added: crossing length for the walking-speed check; 0 = not given */
} sf_phase_t;

typedef enum {
    SF_SG_VEHICLE = 0,    /* round ball heads */
    SF_SG_ARROW = 1,      /* protected turn arrow */
    SF_SG_PEDESTRIAN = 2, /* walk / flashing don't walk / don't walk */
} sf_sg_kind_t;

typedef struct {
    char id[SF_ID_LEN];
    sf_sg_kind_t kind;
    uint8_t phase_idx; /* index into sf_intersection_t.phases */
} sf_signal_group_t;

typedef enum {
    SF_SPLIT_NONE = 0,
    SF_SPLIT_MIN_RECALL = 1,
    SF_SPLIT_MAX_RECALL = 2,
    SF_SPLIT_PED_RECALL = 3,
    SF_SPLIT_OMIT = 4,
} sf_split_mode_t;

typedef enum { SF_FORCE_FIXED = 0, SF_FORCE_FLOATING = 1 } sf_force_mode_t;

typedef struct {
    uint8_t id; /* plan number 1..16 */
    char name[SF_NAME_LEN];
    uint16_t cycle_ds;                /* 0.1 s */
    uint16_t offset_ds;               /* 0.1 s; start of coordinated green(s) after sync */
    uint16_t split_ds[SF_MAX_PHASES]; /* 0.1 s, by phase index; includes Y + RC */
    sf_split_mode_t split_mode[SF_MAX_PHASES];
    uint16_t coord_phase_mask; /* bit i = phases[i] is coordinated */
    sf_force_mode_t force_mode;
} sf_plan_t;

typedef struct {
    uint32_t at_s;    /* time of day, seconds after midnight */
    uint8_t plan_idx; /* index into plans */
} sf_schedule_entry_t;

typedef enum {
    SF_DET_PRESENCE = 0, /* stop-bar presence: calls and extends its phases */
    SF_DET_COUNT = 1,    /* advance counting: volume and occupancy */
} sf_det_kind_t;

typedef struct {
    char id[SF_ID_LEN];
    sf_det_kind_t kind;
    uint32_t link_idx;   /* link the detector sits on (an approach of this intersection) */
    uint8_t lane;        /* lane index on that link, 0 = kerbside */
    float distance_m;    /* upstream end of the zone, from the stop line */
    float length_m;      /* zone length */
    uint16_t phase_mask; /* bit i = calls/extends phases[i] */
} sf_detector_t;

typedef enum { SF_TURN_LEFT = 0, SF_TURN_THROUGH = 1, SF_TURN_RIGHT = 2, SF_TURN_N = 3 } sf_turn_t;

typedef struct {
    char id[SF_ID_LEN];
    uint32_t from_link_idx; /* approach */
    uint32_t to_link_idx;   /* exit */
    sf_turn_t turn;
    uint8_t sg_idx; /* signal group that controls it */
} sf_movement_t;

typedef enum {
    SF_STRAT_FIXED = 0,
    SF_STRAT_ACTUATED = 1,
    SF_STRAT_COORDINATED = 2,
    SF_STRAT_ADAPTIVE = 3, /* SCATS-like degree-of-saturation split/cycle adaptation */
    SF_STRAT_MAX_PRESSURE = 4,
} sf_strategy_t;

typedef struct {
    char id[SF_ID_LEN];
    char name[SF_NAME_LEN];
    double x_m, y_m; /* position, metres east/north */
    uint8_t n_phases;
    sf_phase_t phases[SF_MAX_PHASES];
    uint8_t n_rings;
    uint8_t ring_seq_len[SF_MAX_RINGS];
    uint8_t ring_seq[SF_MAX_RINGS][SF_MAX_PHASES]; /* phase indices in service order */
    uint8_t n_barriers;
    uint16_t barrier_mask[SF_MAX_BARRIERS];        /* bit i = phases[i] in this barrier group */
    bool concurrent[SF_MAX_PHASES][SF_MAX_PHASES]; /* may be green together */
    uint8_t n_sg;
    sf_signal_group_t sg[SF_MAX_SG];
    bool sg_conflict[SF_MAX_SG][SF_MAX_SG];
    uint8_t n_plans;
    sf_plan_t plans[SF_MAX_PLANS];
    uint8_t n_schedule;
    sf_schedule_entry_t schedule[SF_MAX_SCHEDULE];
    uint8_t local_plan_idx; /* the unit's own plan on loss of the centre */
    uint8_t n_det;
    sf_detector_t det[SF_MAX_DET];
    uint8_t n_movements;
    sf_movement_t movements[SF_MAX_MOVEMENTS];
    sf_strategy_t strategy;      /* control.strategy, or its per-intersection override */
    char unit_host[SF_NAME_LEN]; /* "" = emulated; else a real unit (HIL) */
    uint16_t unit_port;          /* 0 = base port + index */
} sf_intersection_t;

/* ---- network ------------------------------------------------------------------ */

typedef enum { SF_LANE_USE_LEFT = 1, SF_LANE_USE_THROUGH = 2, SF_LANE_USE_RIGHT = 4 } sf_lane_use_t;

typedef struct {
    uint8_t use_mask; /* sf_lane_use_t bits */
    float bay_m;      /* 0 = full length; else a turn bay this long before the stop line */
} sf_lane_t;

typedef enum { SF_NODE_INTERSECTION = 0, SF_NODE_BOUNDARY = 1 } sf_node_kind_t;

typedef struct {
    char id[SF_ID_LEN];
    double x_m, y_m;
} sf_boundary_t;

typedef struct {
    char id[SF_ID_LEN];
    sf_node_kind_t from_kind, to_kind;
    uint32_t from_idx, to_idx; /* into intersections[] or boundaries[] by kind */
    float length_m;            /* stop line to stop line; default: distance of the nodes */
    float speed_mps;           /* speed limit (file: speed_kmh) */
    uint8_t n_lanes;
    sf_lane_t lanes[SF_MAX_LANES]; /* 0 = kerbside (right), n_lanes-1 = median side */
    float turn_ratio[SF_TURN_N];   /* at the downstream intersection; sums to 1 */
} sf_link_t;

/* ---- demand ------------------------------------------------------------------- */

typedef enum { SF_ARRIVALS_POISSON = 0, SF_ARRIVALS_UNIFORM = 1 } sf_arrivals_t;
typedef enum { SF_VEH_CAR = 0, SF_VEH_TRUCK = 1, SF_VEH_BUS = 2, SF_VEH_N = 3 } sf_veh_type_t;

typedef struct {
    uint32_t link_idx; /* entry link (from a boundary) */
    float flow_veh_h;  /* base flow */
    sf_arrivals_t arrivals;
    uint8_t n_profile;             /* 0 = constant */
    float profile[SF_MAX_PROFILE]; /* factor on flow_veh_h per slice */
    float truck_share;             /* 0..1 */
} sf_entry_t;

typedef struct {
    float length_m;  /* vehicle length */
    float v0_factor; /* desired speed / speed limit */
    float a_mps2;    /* IDM max acceleration */
    float b_mps2;    /* IDM comfortable deceleration */
    float s0_m;      /* IDM jam gap */
    float t_s;       /* IDM time headway */
} sf_veh_params_t;

typedef struct {
    uint32_t slice_s; /* profile slice length, default 900 */
    uint32_t n_entries;
    sf_entry_t *entries;
    sf_veh_params_t vtype[SF_VEH_N]; /* defaults documented in SCENARIO.md */
} sf_demand_t;

/* ---- transit ------------------------------------------------------------------ */

typedef enum { SF_STOP_KERB = 0, SF_STOP_BAY = 1 } sf_stop_kind_t;

typedef struct {
    char id[SF_ID_LEN];
    uint32_t link_idx;
    float distance_m;    /* from the link's start (upstream end) */
    sf_stop_kind_t kind; /* kerbside blocks the lane while dwelling; a bay does not */
    float dwell_s;       /* fixed part */
    float per_pax_s;     /* per boarding passenger */
    float pax_mean;      /* mean boardings per bus (Poisson) */
    float scheduled_s;   /* timetable: departure from this stop, seconds after line departure */
} sf_stop_t;

typedef struct {
    char id[SF_ID_LEN];
    char name[SF_NAME_LEN];
    uint8_t n_route;
    uint32_t route[SF_MAX_ROUTE]; /* link indices, first is an entry link */
    uint8_t n_stops;
    sf_stop_t stops[SF_MAX_LINE_STOPS]; /* in route order */
    float headway_s;
    float first_departure_s; /* sim time of the first departure */
} sf_line_t;

/* ---- control and run ---------------------------------------------------------- */

typedef struct {
    bool enabled;               /* control.priority.enabled */
    float lateness_threshold_s; /* only buses later than this ask; 0 = all */
    float checkin_distance_m;   /* check-in this far before the stop line */
    float max_extension_s;      /* green extension limit */
    float max_early_green_s;    /* red truncation limit */
    float lockout_s;            /* no new grant at an intersection for this long after one */
} sf_priority_t;

typedef struct {
    bool enabled;         /* control.greenwave.enabled: the controller computes the coordinated
                             plans' offsets (controller/greenwave.h) instead of the file's */
    float weight_out;     /* weight of the outbound (eastbound/northbound) band; both weights
                             0 (the default) = from the directions' volumes */
    float weight_in;      /* weight of the inbound band */
    bool queue_clearance; /* band starts after the turned-in queue clears, default true */
    bool two_way;         /* MAXBAND's target band ratio between the directions (default
                             false: the weighted sum, often a one-way wave) */
    bool adaptive_replan; /* adaptive: offsets optimised again for each group decision's cycle
                             and splits (default false: the start's offsets kept) */
} sf_greenwave_t;

typedef struct {
    sf_strategy_t strategy; /* default for every intersection */
    sf_priority_t priority;
    sf_greenwave_t greenwave;
    float poll_period_s;       /* controller poll period, default 1 */
    float heartbeat_timeout_s; /* unit falls back to local after this, default 5 */
    float adaptive_min_cycle_s, adaptive_max_cycle_s;
    bool adaptive_split_failure; /* adaptive DS raised by stop-bar split failures, default true */
    bool adaptive_bay_guard;     /* adaptive: a left fed by a turn bay beside the coordinated
                                    movement asks at least for a full bay's green, def. true */
    bool detector_diagnostics;   /* the centre fails stuck/dead detectors (controller/detdiag.h)
                                    and its smart modes ignore them, default true */
    uint8_t adaptive_spare;      /* adaptive member's spare time: 0 "proportional" to every phase
                                    (default), 1 "coordinated" phases only (sf_adapt_spare_t) */
    uint8_t adaptive_sat_flow;   /* saturation flow of the adaptive flow DS: 0 "fixed" 1800 veh/h
                                    (default), 1 "learned" at saturation (sf_adapt_sat_t) */
} sf_control_t;

/* ---- faults ------------------------------------------------------------------- */

typedef enum {
    SF_DET_FAULT_STUCK_ON = 0, /* reads occupied, counts nothing (a shorted loop) */
    SF_DET_FAULT_DEAD = 1,     /* reads free, counts nothing (a cut feeder, a dead amplifier) */
    SF_DET_FAULT_CHATTER = 2,  /* occupied for 0.5 s of every second whatever is there: one
                                  count a second (a loose splice) */
} sf_det_fault_kind_t;

/* A detector fault the simulator injects where the detector's signal is produced, so the
 * unit, its registers and the centre see it as a field fault. Active for sim times t with
 * from_s <= t < to_s; faults of one detector do not overlap. */
typedef struct {
    uint32_t ix_idx; /* intersection */
    uint8_t det_idx; /* detector index in that intersection */
    sf_det_fault_kind_t kind;
    double from_s; /* sim time the fault starts, s */
    double to_s;   /* sim time it ends (the detector works again), s; INFINITY = never */
} sf_det_fault_t;

typedef struct {
    uint8_t n_det;                         /* faults.detectors entries */
    sf_det_fault_t det[SF_MAX_DET_FAULTS]; /* in file order */
} sf_faults_t;

typedef enum { SF_MODE_LOCKSTEP = 0, SF_MODE_REALTIME = 1 } sf_run_mode_t;

typedef struct {
    double duration_s; /* run.duration_s */
    double warmup_s;   /* MOEs count from here */
    double step_s;     /* run.step_s, default 0.1 */
    uint64_t seed;     /* run.seed */
    sf_run_mode_t mode;
    double speed_factor;       /* real time only: 1 = wall clock, 10 = ten times faster */
    uint32_t start_tod_s;      /* time of day at sim time 0 ("07:00" in the file) */
    double snapshot_hz;        /* vehicle snapshots on the bus, per sim second */
    double step_timeout_s;     /* lockstep: a silent participant is named after this */
    char bus_endpoint[128];    /* "" = choose a free loopback port */
    char modbus_listen[64];    /* address the units listen on, default 127.0.0.1 */
    uint16_t modbus_base_port; /* 0 = ephemeral */
} sf_run_t;

typedef struct {
    int version;
    char name[SF_NAME_LEN];
    char path[256]; /* file it was loaded from */
    uint32_t n_intersections;
    sf_intersection_t *intersections;
    uint32_t n_boundaries;
    sf_boundary_t *boundaries;
    uint32_t n_links;
    sf_link_t *links;
    sf_demand_t demand;
    uint32_t n_lines;
    sf_line_t *lines;
    sf_control_t control;
    sf_faults_t faults; /* injected faults (none by default) */
    sf_run_t run;
} sf_scenario_t;

/* Errors found while loading: each is "file:line:column: field.path: what is wrong". */
typedef struct {
    size_t n;   /* number of errors */
    char **msg; /* n messages, owned */
} sf_errors_t;

/* Load and check FILE, applying the --set overrides (n_sets strings "PATH=VALUE", may be
 * 0) before checking. Returns a new scenario (caller frees with sf_scenario_destroy), or
 * NULL with every error in *errs (caller frees with sf_errors_clear); errs may be NULL. */
sf_scenario_t *sf_scenario_load(const char *file, const char *const *sets, size_t n_sets,
                                sf_errors_t *errs);

/* Free a scenario; takes NULL, sets *self_p to NULL. */
void sf_scenario_destroy(sf_scenario_t **self_p);

/* Free the messages in errs and zero it. */
void sf_errors_clear(sf_errors_t *errs);

/* Report a failed sf_scenario_load to f, the same way for every command: each message of
 * errs on a line of its own, then "N error(s)"; a load that failed without a message (out
 * of memory) prints "WHO: FILE: cannot load: " and errno's text instead (read on entry, as
 * sf_scenario_load left it). Then clears errs. errs may be NULL. */
void sf_errors_report(FILE *f, sf_errors_t *errs, const char *who, const char *file);

/* One-line summary for `sigflow check`: counts of intersections, links, lines, etc.
 * Writes at most len bytes (NUL-terminated) into buf; returns buf. */
char *sf_scenario_summary(const sf_scenario_t *sc, char *buf, size_t len);

/* The default driver/vehicle parameters of a vehicle type: the values the traffic model is
 * calibrated with (cars: saturation flow ~1890 veh/h/lane, start-up lost time ~2 s, see
 * tests/test_sim.c). The one source for the loader's defaults and the simulator's. */
const sf_veh_params_t *sf_vtype_default(sf_veh_type_t type);

/* Index of the intersection with this id, or -1. */
int sf_scenario_find_intersection(const sf_scenario_t *sc, const char *id);

/* Plan index an intersection's schedule selects at time of day tod_s (seconds after
 * midnight, wraps at 24 h); the first plan when there is no schedule. */
uint8_t sf_intersection_plan_at(const sf_intersection_t *ix, uint32_t tod_s);

/* "stuck_on", "dead" or "chatter". */
const char *sf_det_fault_kind_name(sf_det_fault_kind_t k);

/* Derive concurrency from rings and barriers and the signal-group conflict matrix from
 * it. Called by the loader; exposed for tests and for plans built in code. */
void sf_intersection_derive_conflicts(sf_intersection_t *ix);

#endif
