/* unit/unit_impl.h — the signal unit's internal state, shared by unit/unit.c (commands,
 * validation), unit/engine.c (the tick) and unit/priority.c. Not a public header.
 *
 * Invariants the engine keeps (and the monitor checks independently):
 *  - a phase starts green only when every phase that is not red (green, yellow or red
 *    clearance in any ring) is concurrent with it (check_concurrent), on top of the
 *    structural rule that rings only cross a barrier together when all are in red;
 *  - a green ends only when it has timed its min green and, if a walk was served, its
 *    walk and ped clearance (can_end); yellow and red clearance always time in full;
 *  - plan and run-mode changes are applied only when every ring is in red with its
 *    clearance done (a barrier crossing); flash and all-red are entered only from there.
 * All arrays are fixed size: a tick allocates nothing.
 */
#ifndef SIGFLOW_UNIT_IMPL_H
#define SIGFLOW_UNIT_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "monitor.h"
#include "unit.h"

#define SF_NO_PHASE (-1)

/* Red revert (NTCIP 1202 unitRedRevert): a phase is served again only after showing red
 * this long since its yellow ended, even with no red clearance (never yellow to green). */
#define SF_RED_REVERT_DS 20

enum { IV_GREEN = 1, IV_YELLOW = 2, IV_RED_CLEAR = 3 };
enum { PED_NONE = 0, PED_WALK = 1, PED_CLEAR = 2, PED_DONE = 3 };

/* Unit states (the state machine above the rings). */
enum {
    ST_START_FLASH = 0, /* start-up flashing yellow */
    ST_START_RED = 1,   /* start-up (or leaving flash) all-red */
    ST_RUN = 2,         /* rings running: fixed, actuated or coordinated */
    ST_FLASH = 3,       /* commanded flash */
    ST_ALL_RED = 4,     /* commanded all-red */
    ST_FAULT = 5,       /* monitor fault latched: flashing yellow until reset */
};

typedef struct {
    int8_t ph;       /* phase index timing now, SF_NO_PHASE = ring in red */
    uint8_t iv;      /* IV_* while ph >= 0 */
    int8_t k;        /* position of the last phase started in rg_ph[r][group], -1 none */
    bool done;       /* nothing more to serve in the current barrier group */
    bool ready;      /* green wants to end and may: waits only for the barrier */
    bool yield_seen; /* coordinated phase: its yield point of this lap was evaluated */
    bool yield_go;   /* coordinated phase: yield committed at this lap's yield point */
    uint8_t ped;     /* PED_* */
    uint16_t t;      /* 0.1 s in the interval */
    uint16_t ped_t;  /* 0.1 s in the walk / ped clear interval */
    uint16_t gap;    /* passage timer remaining, 0.1 s */
    uint16_t max_t;  /* max timer, 0.1 s (runs while conflicting demand exists) */
    uint16_t ext;    /* priority extension used in this green, 0.1 s */
    /* Interval lengths taken from the phase table when the interval began: a timing
     * write applies from the next interval on, which is also what the monitor expects */
    uint16_t min_g; /* min green of this green */
    uint16_t walk;  /* walk of this green (0 = no walk served) */
    uint16_t pclr;  /* ped clearance of this green */
    uint16_t len;   /* yellow or red clearance in progress */
} sf_ring_t;

typedef struct {
    uint16_t id;      /* 0 = free */
    uint8_t level;    /* 1..7 */
    uint8_t ph;       /* phase index */
    uint8_t state;    /* sf_prio_state_t */
    uint8_t reason;   /* sf_prio_reason_t */
    uint8_t strategy; /* 0 none, 1 extension, 2 early green, 3 phase insertion */
    bool skipped;     /* a phase was skipped for it (reported as strategy 4 while early green) */
    bool had_green;   /* its phase was green in the current service */
    bool was_green;   /* its phase was green at some point after check-in (outcome) */
    uint8_t services; /* services started: the first, plus re-services after a missed green */
    uint16_t eta;     /* 0.1 s, counts down */
    uint16_t age;     /* 0.1 s since check-in (saturates) */
    uint16_t heard;   /* 0.1 s since the bus's last word: check-in or ETA update (saturates) */
    uint32_t seq;     /* check-in order */
} sf_prio_t;

struct sf_unit_s {
    sf_intersection_t ix;  /* own copy: live phase timings and stored plans */
    sf_unit_config_t cfg;  /* as given (or defaults) */
    sf_unit_hooks_t hooks; /* test seam; outputs == NULL when none */
    sf_monitor_t *mon;     /* conflict monitor over ix and the outputs */
    sf_unit_status_t st;   /* snapshot handed to the host */

    /* layout derived from rings and barriers (fixed for the unit's life) */
    uint8_t n_groups;                            /* barrier groups in service order */
    uint8_t group_of[SF_MAX_PHASES];             /* phase index -> group position, 0xFF none */
    uint8_t rg_n[SF_MAX_RINGS][SF_MAX_BARRIERS]; /* phases of ring r in group g */
    uint8_t rg_ph[SF_MAX_RINGS][SF_MAX_BARRIERS][SF_MAX_PHASES]; /* in ring order */
    int8_t idx_of_no[SF_MAX_PHASES + 1]; /* phase number -> index, -1 none */

    /* time and inputs */
    uint32_t tod_ds;      /* time of day, 0.1 s */
    bool clock_set;       /* the host set the clock since the last tick */
    uint32_t sync_ref_ds; /* coordination sync reference, 0.1 s after midnight */
    uint64_t det;         /* detector presence inputs in use (own or external) */
    uint64_t det_own;     /* the unit's own inputs, as last set (sf_unit_set_detectors) */
    uint64_t det_ext;     /* external presence (map v2 det_input) */
    bool det_ext_on;      /* external detection enabled (map v2 det_input_enable) */
    uint64_t det_prev;    /* inputs at the previous tick (for volume edges) */
    uint32_t hb_age;      /* 0.1 s since the last heartbeat */
    uint16_t hb_value;    /* last heartbeat */

    /* phase masks by phase index */
    uint16_t veh_call, ped_call, hold, force_off, omit;

    /* state machine */
    uint8_t state;    /* ST_* */
    uint32_t st_t;    /* 0.1 s in the state */
    uint8_t mode_cmd; /* last accepted centre mode command (sf_unit_mode_t) */
    uint8_t plan_sel; /* plan index selected by the centre */
    bool start_known; /* plan_sel and mode_cmd are no longer the start-up defaults: set by
                         initial_plan, a centre command, or the schedule at the first clock */
    uint8_t run_mode; /* SF_UMODE_FIXED/ACTUATED/COORDINATED while ST_RUN */
    bool run_local;   /* the running control is local (fallback or local command) */
    uint8_t plan;     /* plan index running */
    bool fallback;    /* centre heartbeat lost */
    bool stopping;    /* ST_RUN ending all greens to enter flash / all-red */
    bool startup_seq; /* the flash / all-red under way is the start-up sequence */
    uint8_t group;    /* barrier group position being served */
    sf_plan_t rp;     /* copy of the running plan, refreshed only at safe points */

    sf_ring_t ring[SF_MAX_RINGS];
    uint32_t
        yellow_end[SF_MAX_PHASES]; /* 1 + tick count when each phase's yellow last ended, 0 never */

    /* coordination of the running plan (by phase index; by group position) */
    uint16_t cyc;                        /* cycle, 0.1 s */
    uint8_t g_c;                         /* group position of the coordinated phases */
    uint16_t pos_f[SF_MAX_PHASES];       /* force-off (end of green) in group time */
    uint16_t grp_start[SF_MAX_BARRIERS]; /* group start in group time */
    uint16_t s_c;                        /* group time of the first coordinated green */
    uint16_t gt;                         /* group time, 0 .. cyc-1 */
    uint64_t gabs;                       /* monotonic group time (stalls and skips with gt) */
    uint64_t lap_zero;                   /* gabs of group time 0 of the running lap */
    int32_t corr;                        /* correction left this cycle: > 0 lengthen, < 0 shorten */
    bool in_sync;                        /* this cycle began in sync and was not perturbed */

    /* detector data */
    uint32_t int_t; /* 0.1 s into the aggregation interval */
    uint16_t vol_acc[SF_MAX_DET];
    uint16_t occ_acc[SF_MAX_DET]; /* ticks occupied */

    /* priority */
    sf_prio_t prio[SF_UNIT_MAX_PRIO];
    uint32_t prio_seq;     /* check-in counter */
    int8_t prio_active;    /* slot being served, -1 none */
    uint16_t lockout;      /* 0.1 s */
    uint16_t trunc_budget; /* early green: 0.1 s of truncation still allowed */
    uint32_t grp_visit;    /* barrier groups entered so far (enter_group) */
    uint32_t ins_visit;    /* grp_visit of the last phase insertion: one per group visit */
    uint32_t skip_visit[SF_MAX_PHASES]; /* grp_visit when each phase was last skipped, 0 never */

    /* outputs */
    uint8_t out[SF_MAX_SG]; /* SF_OUT_* bits per signal group */
};

/* unit.c */
int sf_unit_validate_plan(const sf_unit_t *u, const sf_intersection_t *ix, const sf_plan_t *p);
uint16_t sf_unit_mask_to_no(const sf_unit_t *u, uint16_t idx_mask);
int sf_unit_mask_from_no(const sf_unit_t *u, uint16_t no_mask, uint16_t *idx_mask);
uint16_t sf_unit_min_service(const sf_phase_t *ph);

/* engine.c */
void sf_engine_reset(sf_unit_t *u);
void sf_engine_tick(sf_unit_t *u);
void sf_engine_refresh_status(sf_unit_t *u);
uint8_t sf_engine_local_plan(const sf_unit_t *u);
uint8_t sf_engine_local_mode(const sf_unit_t *u, uint8_t plan);
bool sf_engine_phase_green(const sf_unit_t *u, uint8_t ph);

/* priority.c */
void sf_prio_tick(sf_unit_t *u);
bool sf_prio_holds(const sf_unit_t *u, uint8_t ph);
void sf_prio_held(sf_unit_t *u, uint8_t ph);
bool sf_prio_truncates(const sf_unit_t *u, uint8_t ph);
int sf_prio_submit(sf_unit_t *u, const sf_prio_request_t *req);
void sf_prio_clear(sf_unit_t *u);
/* Coordinated: how long a green extension of phase ph may last so that every force-off
 * still fits: in its ring (and, when ph ends its barrier group, in every ring) the slack
 * above min service of the phases served after it, up to and including the next
 * coordinated phase, 0.1 s. */
uint16_t sf_prio_coord_slack(const sf_unit_t *u, uint8_t ph);
/* Phase insertion: the position in ring r's current group of the active request's
 * phase when the ring has passed it (last phase started at position k) and it may be
 * served again before the barrier, else -1. */
int sf_prio_insertion(const sf_unit_t *u, uint8_t r, int k);
/* The engine started the inserted phase: the request is served by insertion. */
void sf_prio_inserted(sf_unit_t *u);
/* Phase skip: whether phase p, called and due next in its ring, is passed over this
 * group visit for the active request (rules in priority.c). */
bool sf_prio_skips(const sf_unit_t *u, uint8_t p);
/* The engine passed over phase p for the active request (sf_prio_skips was true). */
void sf_prio_skipped(sf_unit_t *u, uint8_t p);

#endif
