/* unit/unit.h — one intersection signal unit: phase engine, conflict monitor, priority.
 *
 * A unit is made from one intersection of the scenario model (copied: the unit owns its
 * timings and plans from then on) and a small config. The host advances it with
 * sf_unit_tick() every 0.1 s after setting the time of day (sf_unit_set_clock) and the
 * detector inputs (sf_unit_set_detectors); between ticks it applies commands. The host
 * reads everything through one status snapshot (sf_unit_status) that the unit refreshes
 * after every tick and every accepted command, so a Modbus server can copy it into
 * registers without calling into the engine per register.
 *
 * Safety contract (the unit's invariants, whatever it is sent):
 *  - two conflicting signal groups are never green together;
 *  - a started min green, yellow change, red clearance or pedestrian clearance always runs
 *    to its full length: no command, plan change, mode change or priority cuts it;
 *  - the conflict monitor (unit/monitor.h) checks the lamp outputs every tick without
 *    trusting the engine; a violation latches flashing yellow and a GB/T 20999 fault code
 *    until sf_unit_fault_reset();
 *  - a refused command returns -1 with errno set and changes nothing.
 *
 * Units: times in tenths of a second (`_ds`) as in proto/scenario.h; phase and plan
 * numbers are the NTCIP numbers 1..16 at this API (the scenario's `id` fields), bit i of a
 * phase mask is phase number i+1 (phases[] index order == number order is NOT assumed:
 * bit i means the phase whose id is i+1).
 */
#ifndef SIGFLOW_UNIT_H
#define SIGFLOW_UNIT_H

#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"

/* ---- errors ------------------------------------------------------------------------ */

/* Project error codes (errno values) start at this base, far above system errnos, in the
 * manner of libmodbus' MODBUS_ENOBASE. EINVAL is used for out-of-range arguments. */
#define SF_UNIT_ENOBASE 112346000
#define SF_EUNSAFE                                                                                 \
    (SF_UNIT_ENOBASE + 1) /* timing below a safety minimum (min green < 5 s, yellow < 3 s ...) */
#define SF_EMODE     (SF_UNIT_ENOBASE + 2) /* command not allowed in the current control mode */
#define SF_ECONFLICT (SF_UNIT_ENOBASE + 3) /* plan would run conflicting phases green together */
#define SF_ESPLIT    (SF_UNIT_ENOBASE + 4) /* split below min green + yellow + red clear */
#define SF_ECYCLE                                                                                  \
    (SF_UNIT_ENOBASE + 5) /* ring split sums differ from the cycle, or barriers misaligned */
#define SF_ENOPLAN  (SF_UNIT_ENOBASE + 6) /* plan number not stored in the unit */
#define SF_EFULL    (SF_UNIT_ENOBASE + 7) /* priority request table full */
#define SF_EFAULTED (SF_UNIT_ENOBASE + 8) /* refused while a monitor fault is latched */

/* Text for errnum: the unit's codes, or strerror() for system codes. Never NULL. */
const char *sf_unit_strerror(int errnum);

/* ---- codes read by the centre (GB/T 20999-2017) ------------------------------------ */

/* Lamp codes, per signal group. Pedestrian groups: red = don't walk, green = walk,
 * flashing red (0x11) = pedestrian clearance (flashing don't walk). */
#define SF_LAMP_OFF          0x01
#define SF_LAMP_RED          0x10
#define SF_LAMP_RED_FLASH    0x11
#define SF_LAMP_GREEN        0x20
#define SF_LAMP_GREEN_FLASH  0x21
#define SF_LAMP_YELLOW       0x30
#define SF_LAMP_YELLOW_FLASH 0x31
#define SF_LAMP_RED_YELLOW   0x40 /* defined by the standard; never shown by sigflow */

/* Control mode codes (status `control_mode`). Centre modes 0x10 + k, local modes 0x20 + k
 * with k = 0 fixed time, 1 actuated, 2 coordinated (3..5 reserved for the centre's
 * adaptive strategies, never shown by the unit itself). */
#define SF_CM_CENTRE_FIXED       0x10
#define SF_CM_CENTRE_ACTUATED    0x11
#define SF_CM_CENTRE_COORDINATED 0x12
#define SF_CM_LOCAL_FIXED        0x20
#define SF_CM_LOCAL_ACTUATED     0x21
#define SF_CM_LOCAL_COORDINATED  0x22
#define SF_CM_FLASH              0x31 /* also during the start-up flash and a latched fault */
#define SF_CM_ALL_RED            0x32 /* also during the start-up all-red */
#define SF_CM_ALL_OFF            0x33

/* Fault codes (status `fault_code`). 0 = none. The monitor's codes latch; SF_FAULT_COMMS
 * is shown (not latched) while the unit runs in fallback and no monitor fault is latched. */
#define SF_FAULT_NONE           0x00
#define SF_FAULT_GREEN_CONFLICT 0x10 /* two conflicting groups green together */
#define SF_FAULT_GREEN_RED      0x11 /* red and green lit together on one group */
#define SF_FAULT_LAMP_DARK      0x20 /* a group shows no lamp (not in flash/off mode) */
#define SF_FAULT_YELLOW_SHORT   0x21 /* yellow change shorter than the phase's yellow */
#define SF_FAULT_TIMING_SHORT   0x22 /* red clearance, min green or ped clearance cut short */
#define SF_FAULT_COMMS          0x30 /* centre heartbeat lost (fallback), not latched */

/* ---- the lamp outputs and the test seam -------------------------------------------- */

/* Physical lamp outputs of one signal group, as the load switches drive them: the
 * monitor reads these, not the engine's state. Pedestrian groups use RED for don't walk
 * and GREEN for walk. FLASH makes every lit lamp of the group flash. */
#define SF_OUT_RED    0x01u
#define SF_OUT_YELLOW 0x02u
#define SF_OUT_GREEN  0x04u
#define SF_OUT_FLASH  0x08u

/* Test seam: called every tick after the engine has set its outputs and before the
 * conflict monitor checks them; it may change out[0..n_sg) in place to simulate a broken
 * engine or load switch. ctx is the caller's. Production units have none. */
typedef struct {
    void *ctx;
    void (*outputs)(void *ctx, uint8_t *out, uint8_t n_sg);
} sf_unit_hooks_t;

/* ---- construction ------------------------------------------------------------------ */

/* Operating mode commanded by the centre (register `mode_command` holds these values). */
typedef enum {
    SF_UMODE_FIXED = 1,       /* plan splits as fixed durations, every phase served */
    SF_UMODE_ACTUATED = 2,    /* free: gap-out / max-out, skip phases with no call */
    SF_UMODE_COORDINATED = 3, /* cycle, offset, force-offs of the active plan */
    SF_UMODE_FLASH = 4,       /* flashing yellow (vehicles), peds dark */
    SF_UMODE_ALL_RED = 5,     /* every group red / don't walk */
    SF_UMODE_LOCAL = 6,       /* run the local plan / schedule as if the centre were gone */
} sf_unit_mode_t;

typedef enum {
    SF_CORRECT_SHORTWAY = 0, /* reach a new offset by lengthening or shortening cycles */
    SF_CORRECT_DWELL = 1,    /* only lengthen: dwell in the coordinated phase */
} sf_correction_t;

typedef struct {
    uint16_t heartbeat_timeout_ds; /* 0.1 s without a heartbeat before local fallback; 0 = never */
    uint16_t startup_flash_ds;     /* 0.1 s flashing yellow at start-up, default 100 */
    uint16_t startup_all_red_ds;   /* 0.1 s all-red after it (and leaving flash), default 50 */
    sf_unit_mode_t initial_mode;   /* centre mode after start-up, default from ix->strategy */
    uint8_t initial_plan;          /* plan number 1..16 at start, 0 = the schedule's plan at
                                      the first sf_unit_set_clock (midnight's until then) */
    sf_correction_t correction;    /* offset transition method, default short-way */
    uint8_t
        correction_pct; /* max change of one cycle during a transition, % of cycle (default 20) */
    bool priority_enabled;       /* serve priority requests at all, default true */
    uint16_t max_extension_ds;   /* green extension limit, default 150 */
    uint16_t max_early_green_ds; /* red truncation: a conflicting green is cut only by at most this,
                                    default 150 */
    uint16_t lockout_ds;         /* no new grant for this long after one, default 600 */
    uint16_t det_interval_ds;    /* detector data aggregation interval, default 600 */
} sf_unit_config_t;

/* Fill cfg with the defaults above for intersection ix (initial mode from its strategy). */
void sf_unit_config_default(sf_unit_config_t *cfg, const sf_intersection_t *ix);

/* Override cfg's heartbeat timeout and priority settings from a scenario's control block. */
void sf_unit_config_from_control(sf_unit_config_t *cfg, const sf_control_t *ctl);

typedef struct sf_unit_s sf_unit_t;

/* New unit for intersection ix (copied) with config cfg (copied; NULL = defaults). It
 * starts in the start-up sequence. Returns NULL with errno EINVAL (ix or cfg unusable:
 * no phase, bad ring sequence, no plan, invalid plan) or ENOMEM. Caller destroys it. */
sf_unit_t *sf_unit_new(const sf_intersection_t *ix, const sf_unit_config_t *cfg);

/* Free a unit; takes NULL, sets *self_p to NULL. */
void sf_unit_destroy(sf_unit_t **self_p);

/* Install (or with NULL remove) the test seam. */
void sf_unit_set_hooks(sf_unit_t *u, const sf_unit_hooks_t *hooks);

/* The unit's current signal configuration: phase timings and stored plans as written so
 * far (plans[] in storage order, find one by its id). Owned by the unit; valid until the
 * next command or destroy. */
const sf_intersection_t *sf_unit_intersection(const sf_unit_t *u);

/* Index into sf_unit_intersection(u)->phases[] of phase number phase_no (1..16), or -1
 * with EINVAL. Note: sf_plan_t (scenario model) holds splits, split modes and the
 * coordinated mask by phase INDEX; every other mask and number at this API is by phase
 * NUMBER. */
int sf_unit_phase_index(const sf_unit_t *u, uint8_t phase_no);

/* Copy stored plan number plan_no (1..16) into *out. 0, or -1 with SF_ENOPLAN / EINVAL. */
int sf_unit_get_plan(const sf_unit_t *u, uint8_t plan_no, sf_plan_t *out);

/* ---- inputs and time ---------------------------------------------------------------- */

/* Set the time of day, 0.1 s after midnight (0..863999), the coordination clock and the
 * schedule clock. The host sets it before each tick (lockstep or wall clock); when never
 * set, the unit counts it from 0 by itself. Out of range: -1 EINVAL. */
int sf_unit_set_clock(sf_unit_t *u, uint32_t tod_ds);

/* Detector presence inputs: bit i = detector i of the intersection is occupied now.
 * Bits above n_det are ignored. Presence on a presence detector calls its phases (locked
 * while they are not green) and extends them while green; every detector counts volume
 * and occupancy. */
void sf_unit_set_detectors(sf_unit_t *u, uint64_t presence);

/* External detection (register map v2: det_input_enable, det_input): while enable is set
 * the unit takes its detector presence from presence (a HIL simulator, a remote detector
 * rack) instead of its own inputs, which it keeps (sf_unit_set_detectors) and uses again
 * once external detection is off. Bits above n_det are ignored. */
void sf_unit_set_external_detectors(sf_unit_t *u, bool enable, uint64_t presence);

/* Advance the unit by 0.1 s: engine, lamp outputs, seam, monitor, detector data,
 * priority, heartbeat watchdog; then refresh the status snapshot. */
void sf_unit_tick(sf_unit_t *u);

/* ---- commands (each returns 0, or -1 with errno and changes nothing) ------------------ */

/* Centre heartbeat: any value; echoed in the status; restarts the fallback watchdog and,
 * if the unit was in fallback, returns it to centre control at the next safe point. */
int sf_unit_heartbeat(sf_unit_t *u, uint16_t value);

/* Mode command. Takes effect at the next safe point (never mid-clearance, never cutting
 * a min green). EINVAL for an unknown mode; SF_EMODE for coordinated when the plan
 * that would run has no coordinated phase; SF_EFAULTED while a fault is latched. */
int sf_unit_command_mode(sf_unit_t *u, sf_unit_mode_t mode);

/* Select stored plan plan_no (1..16) for centre control; takes effect at the next safe
 * point (end of the cycle in coordinated mode, the next barrier otherwise). SF_ENOPLAN
 * when not stored; SF_EMODE when coordinated and the plan has no coordinated phase. */
int sf_unit_select_plan(sf_unit_t *u, uint8_t plan_no);

/* Store a whole plan under plan->id (1..16), adding it or replacing the stored one; if it
 * is the running plan the new timing applies at the next safe point. Validated against
 * the unit's phase timings: EINVAL (id, cycle or split mode out of range, split for an
 * unknown phase), SF_ECONFLICT (coordinated phases not concurrent), SF_ESPLIT (a served
 * split below min green + yellow + red clear, or walk + ped clear + yellow + red clear),
 * SF_ECYCLE (a ring's splits do not sum to the cycle or barriers do not line up). */
int sf_unit_write_plan(sf_unit_t *u, const sf_plan_t *plan);

/* Per-phase timing fields, NTCIP 1202 units of 0.1 s (register names phase_*). */
typedef enum {
    SF_T_MIN_GREEN = 0, /* >= 50 (5 s), <= max1 and max2 */
    SF_T_PASSAGE = 1,   /* 0..255 */
    SF_T_MAX1 = 2,      /* >= min green, <= 2550 */
    SF_T_MAX2 = 3,      /* >= min green, <= 2550; max 1 runs under centre control, max 2
                           while the unit runs local (fallback or local command) */
    SF_T_YELLOW = 4,    /* 30..60 */
    SF_T_RED_CLEAR = 5, /* 0..60 */
    SF_T_WALK = 6,      /* 0..600 (0 = no pedestrian movement) */
    SF_T_PED_CLEAR = 7, /* 0..600 */
    SF_T_N = 8
} sf_timing_field_t;

/* Write one timing field of phase number phase_no (1..16). EINVAL (unknown phase or
 * field, value above its maximum), SF_EUNSAFE (min green < 5 s, yellow < 3 s, red clear
 * > 6 s, max below min green), SF_ESPLIT (a stored plan would no longer fit the phase).
 * A phase that is timing now uses the new value from its next interval on. */
int sf_unit_set_timing(sf_unit_t *u, uint8_t phase_no, sf_timing_field_t field, uint16_t value);

/* Read one timing field (0.1 s), or -1 with EINVAL. */
int sf_unit_get_timing(const sf_unit_t *u, uint8_t phase_no, sf_timing_field_t field);

/* Coordination of the active plan in one write (registers coord_cycle, coord_offset and
 * the splits; the server merges a partial register write with the current values):
 * validated as sf_unit_write_plan of the active plan with these values. */
typedef struct {
    uint16_t cycle_ds;                /* 0.1 s */
    uint16_t offset_ds;               /* 0.1 s, < cycle */
    uint16_t split_ds[SF_MAX_PHASES]; /* 0.1 s, by phase number - 1 (0 = phase not used) */
} sf_coord_t;
int sf_unit_set_coord(sf_unit_t *u, const sf_coord_t *coord);

/* Current coordination values of the active plan (by phase number - 1). */
void sf_unit_get_coord(const sf_unit_t *u, sf_coord_t *out);

/* Sync reference: time of day (0.1 s after midnight, 0..863999) at which cycle time 0
 * falls; the offset counts from it. Default 0 (midnight). EINVAL out of range. */
int sf_unit_set_sync(sf_unit_t *u, uint32_t sync_ref_ds);

/* Phase control groups (NTCIP 1202 phaseControlGroup*), bit i = phase number i+1. */
typedef enum {
    SF_CTL_VEH_CALL = 0,  /* momentary: places vehicle calls (kept until served) */
    SF_CTL_PED_CALL = 1,  /* momentary: places pedestrian calls (kept until served; ignored
                             for phases without a walk) */
    SF_CTL_HOLD = 2,      /* persistent: keep these phases green once green */
    SF_CTL_FORCE_OFF = 3, /* persistent: end these greens (after min green / walk + ped clear) */
    SF_CTL_OMIT = 4,      /* persistent: do not serve these phases (a timing one finishes;
                             coordinated phases are still served while coordinated) */
    SF_CTL_N = 5
} sf_phase_ctl_t;

/* Set phase control group `which` to mask (calls are OR-ed into the pending calls;
 * persistent groups are replaced). EINVAL for bits of phases the unit does not have or
 * an unknown group; SF_EMODE for hold or force-off in coordinated mode (the coordinator
 * owns them there). */
int sf_unit_phase_control(sf_unit_t *u, sf_phase_ctl_t which, uint16_t mask);

/* Priority requests (register mailbox: id, level, phase, ETA, check-in / check-out). */
typedef enum { SF_PRIO_CHECK_IN = 1, SF_PRIO_CHECK_OUT = 2 } sf_prio_action_t;

typedef struct {
    uint16_t id;             /* request id chosen by the centre (vehicle/trip), != 0 */
    uint8_t level;           /* 1 (highest) .. 7 (lowest) */
    uint8_t phase_no;        /* phase number 1..16 that serves the bus */
    uint16_t eta_ds;         /* expected arrival at the stop line, 0.1 s from now */
    sf_prio_action_t action; /* check-in (new or update) or check-out (done / cancel) */
} sf_prio_request_t;

/* Submit a request. Check-in queues it (or updates id's ETA); check-out of id completes
 * or cancels it (of an id the unit ended on its own, expired or refused: a no-op, 0).
 * EINVAL (id 0, level or phase out of range, unknown action, check-out of an id the unit
 * does not hold or that was already checked out), SF_EFULL (table full). Refusals decided
 * later (lockout, mode) are reported in the request's status, not here. */
int sf_unit_priority(sf_unit_t *u, const sf_prio_request_t *req);

/* Clear a latched monitor fault; the unit restarts through the start-up sequence.
 * Always succeeds (0) when nothing is latched. */
int sf_unit_fault_reset(sf_unit_t *u);

/* ---- status snapshot ----------------------------------------------------------------- */

#define SF_UNIT_MAX_PRIO 8 /* priority request table size */

typedef enum {
    SF_PRIO_ST_FREE = 0,      /* slot unused */
    SF_PRIO_ST_QUEUED = 1,    /* checked in, waiting to be served */
    SF_PRIO_ST_ACTIVE = 2,    /* being served: green held (extension) or others cut (early green) */
    SF_PRIO_ST_SERVED = 3,    /* the bus had its green and checked out */
    SF_PRIO_ST_REFUSED = 4,   /* see reason */
    SF_PRIO_ST_EXPIRED = 5,   /* no check-out before ETA + max extension, or extension ran out */
    SF_PRIO_ST_CANCELLED = 6, /* checked out before it was served */
} sf_prio_state_t;

typedef enum {
    SF_PRIO_R_NONE = 0,
    SF_PRIO_R_LOCKOUT = 1,   /* a grant was made less than lockout ago */
    SF_PRIO_R_MODE = 2,      /* unit in flash, all-red, start-up, fault or priority disabled */
    SF_PRIO_R_PHASE = 3,     /* phase omitted or not in the running plan */
    SF_PRIO_R_PREEMPTED = 4, /* a higher-level request took the slot it needed */
} sf_prio_reason_t;

typedef struct {
    uint16_t id;      /* request id, 0 = free slot */
    uint8_t level;    /* 1..7 */
    uint8_t phase_no; /* 1..16 */
    uint8_t state;    /* sf_prio_state_t */
    uint8_t reason;   /* sf_prio_reason_t when REFUSED */
    uint8_t strategy; /* 0 none yet, 1 green extension, 2 early green, 3 phase insertion,
                       * 4 early green that skipped a phase (phase skip) */
    uint16_t eta_ds;  /* remaining ETA, 0.1 s (counts down) */
    uint16_t age_ds;  /* time since check-in, 0.1 s (saturates) */
} sf_prio_status_t;

typedef struct {
    /* mode and plan */
    uint8_t control_mode;    /* SF_CM_* (GB/T 20999) */
    uint8_t mode;            /* sf_unit_mode_t in effect (centre command or local) */
    uint8_t mode_command;    /* last accepted sf_unit_mode_t command */
    bool startup;            /* start-up sequence running */
    bool fallback;           /* running local because the centre heartbeat was lost */
    bool coord_in_sync;      /* coordinated and the cycle timer matches the offset */
    uint8_t active_plan;     /* plan number 1..16 running (or that will run) */
    uint8_t pending_plan;    /* plan number waiting for a safe point, 0 none */
    uint16_t cycle_ds;       /* cycle of the active plan, 0.1 s */
    uint16_t cycle_timer_ds; /* 0.1 s into the current cycle (local cycle timer) */
    uint16_t offset_ds;      /* offset of the active plan, 0.1 s */
    uint32_t tod_ds;         /* the unit's clock, 0.1 s after midnight */
    uint32_t sync_ref_ds;    /* sync reference, 0.1 s after midnight */
    uint32_t ticks;          /* ticks since creation */
    /* NTCIP 1202 status groups, bit i = phase number i+1 */
    uint16_t reds;
    uint16_t yellows;
    uint16_t greens;
    uint16_t dont_walks;
    uint16_t ped_clears;
    uint16_t walks;
    uint16_t veh_calls;
    uint16_t ped_calls;
    uint16_t phase_on;   /* phases timing (green, yellow or red clear) */
    uint16_t phase_next; /* phases selected to start next */
    uint16_t hold;       /* phase control groups as set */
    uint16_t force_off;
    uint16_t omit;
    /* signal groups, by index into the intersection's sg[] */
    uint8_t n_sg;
    uint8_t sg_lamp[SF_MAX_SG];          /* SF_LAMP_* */
    uint16_t sg_remaining_ds[SF_MAX_SG]; /* time left in this colour, 0.1 s (an upper bound for an
                                            actuated green; 0 = indefinite) */
    uint8_t sg_out[SF_MAX_SG];           /* raw SF_OUT_* bits after the monitor */
    /* faults and centre link */
    uint8_t fault_code;        /* SF_FAULT_* */
    bool fault_latched;        /* a monitor fault holds the unit in flash until reset */
    uint8_t fault_sg[2];       /* signal groups involved (index; 0xFF none) */
    uint16_t heartbeat_echo;   /* last heartbeat value received */
    uint32_t heartbeat_age_ds; /* 0.1 s since the last heartbeat (saturates) */
    /* detectors */
    uint8_t n_det;
    uint64_t det_presence;           /* inputs in use (own, or external when det_external) */
    bool det_external;               /* external detection on (map v2 det_input_enable) */
    uint64_t det_input;              /* external presence as last written (map v2 det_input) */
    uint16_t det_seq;                /* increments when an interval completes */
    uint16_t det_volume[SF_MAX_DET]; /* vehicles (rising edges) in the last complete interval */
    uint16_t
        det_occupancy[SF_MAX_DET]; /* occupancy in the last complete interval, 0.1 % (0..1000) */
    /* priority */
    uint16_t prio_lockout_ds; /* lockout remaining, 0.1 s */
    sf_prio_status_t prio[SF_UNIT_MAX_PRIO];
} sf_unit_status_t;

/* The status snapshot, refreshed after every tick and every accepted command. Owned by
 * the unit; the pointer stays valid until destroy. */
const sf_unit_status_t *sf_unit_status(const sf_unit_t *u);

#endif
