/* controller/tsp.h — transit signal priority at the centre: the request lifecycle from a
 * bus check-in to its outcome.
 *
 * Lifecycle of one request (one bus at one intersection):
 *   check-in (sf_tsp_checkin) -> queued until the next decision (sf_tsp_decide, once per
 *   controller step) -> refused (reason) or granted -> the grant goes to the unit's
 *   mailbox as a check-in (the caller writes the action) -> the unit may still refuse it
 *   (sf_tsp_unit_refused, or its status slot says refused) -> check-out (sf_tsp_checkout)
 *   ends it: served when the unit reported it active or served, else cancelled; a grant
 *   with no check-out by ETA + max extension + expiry margin expires.
 *
 * Decision rules, applied in this order to the check-ins of one step sorted by level
 * (1 first) then ETA (soonest first):
 *   1. priority disabled                          -> refused "disabled"
 *   2. lateness at the stop line not above lateness_threshold_s (when > 0)
 *                                                 -> refused "not_late"
 *   3. the unit is offline (or not identified)    -> refused "offline"
 *   4. a request holds the same phase, or a phase that may not be green with it
 *      (including one granted earlier in this same decision) -> refused "conflict"
 *   5. a grant at this intersection less than lockout_s ago  -> refused "lockout"
 *   6. otherwise granted; the intersection's lockout starts now (and, when the unit
 *      reports the service begun later, e.g. queued behind another request, runs
 *      lockout_s from then: the unit's own lockout starts there).
 * A check-in of a bus that already holds a granted request updates its ETA (a new
 * mailbox check-in with the same id), and is not a new request. A check-in of a bus
 * refused at this intersection since its last check-out there is not a new request
 * either: refused "offline", "conflict" or "lockout" (the intersection's state, which may
 * have changed), or "not_late" (its new arrival may meet a red: its lateness at the line
 * moves with it), it is decided again (a grant then moves its one request from refused to
 * granted); refused for any other reason it is ignored. A request refused for the
 * intersection's state also waits without any update: it is decided again at every sf_tsp_decide,
 * its ETA counted down from its latest check-in, until it is granted, the bus checks out, or its
 * ETA + max extension + SF_TSP_EXPIRY_S has passed (the bus is not coming). So the lower-ranked of
 * two conflicting requests is granted when the first one ends and the lockout allows,
 * not dropped. A re-decision is logged as event "recheck" (when its outcome or reason
 * changed), so each bus has one "check_in" decision per intersection.
 *
 * Lateness at the stop line (rule 2, and the level from it when the check-in leaves the
 * level to the centre): the bus's lateness now plus the red it is about to wait at this
 * signal without priority (sf_tsp_wait): a bus 25 s late that will wait 40 s at a red
 * crosses the line 65 s late, and the conditional test is about that lateness, the
 * predicted schedule deviation, as predictive conditional priority judges it. The wait
 * is predicted from what the centre reads from the unit (sf_tsp_signal): the plan it
 * runs and its cycle timer, in coordinated control only; elsewhere, or before the first
 * status, the wait is 0 and the test is on the lateness now. A bus whose phase will be
 * green when it arrives waits nothing: "only late buses" is unchanged, the lateness is
 * taken where priority acts.
 *
 * Every request is logged (controller/eventlog.h, kind "priority") at its decision and at
 * its outcome, with its reason.
 */
#ifndef SIGFLOW_TSP_H
#define SIGFLOW_TSP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"
#include "scenario.h"

#define SF_TSP_MAX_ACTIVE  8    /* granted requests held per intersection (unit status slots) */
#define SF_TSP_MAX_PENDING 64   /* check-ins waiting for the next decision, all intersections */
#define SF_TSP_EXPIRY_S    60.0 /* margin after ETA + max extension before a grant expires */

/* A transit event from the simulator's bus (TransitCheckIn / TransitCheckOut) or a test. */
typedef struct {
    bool check_in;     /* true check-in, false check-out */
    char bus_id[32];   /* vehicle id, NUL-terminated */
    uint32_t ix;       /* intersection index */
    uint32_t movement; /* movement index within the intersection (gives the phase) */
    float eta_s;       /* time to the stop line, s (check-in) */
    float lateness_s;  /* against the timetable, s; positive = late */
    uint8_t level;     /* 1 (highest) .. 7; 0 = from lateness (sf_tsp_level) */
} sf_tsp_event_t;

/* Why a request was refused, or how it ended. */
typedef enum {
    SF_TSP_R_NONE = 0,
    SF_TSP_R_DISABLED,     /* control.priority.enabled is false */
    SF_TSP_R_NOT_LATE,     /* lateness below the threshold */
    SF_TSP_R_OFFLINE,      /* the unit is offline */
    SF_TSP_R_CONFLICT,     /* the phase or a conflicting phase is held by another request */
    SF_TSP_R_LOCKOUT,      /* a grant at this intersection less than lockout_s ago */
    SF_TSP_R_UNIT_REFUSED, /* the unit refused the mailbox write or the request */
    SF_TSP_R_N,
} sf_tsp_reason_t;

/* What the caller must write to a unit's mailbox (prio_req_* 300..305). */
typedef struct {
    uint32_t ix;      /* intersection index */
    uint16_t id;      /* request id, != 0 */
    uint8_t level;    /* 1..7 */
    uint8_t phase_no; /* phase number 1..16 */
    uint16_t eta_ds;  /* 0.1 s, at most 6000 */
    uint8_t type;     /* 1 check-in, 2 check-out (prio_req_type) */
} sf_tsp_action_t;

/* Counts for the report (monotonic). */
typedef struct {
    uint64_t requests;                   /* check-ins decided (ETA updates excluded) */
    uint64_t granted;                    /* granted by the centre and accepted by the unit */
    uint64_t refused;                    /* refused for any reason (centre or unit) */
    uint64_t by_reason[SF_TSP_R_N];      /* refusals by reason */
    uint64_t served, cancelled, expired; /* outcomes of grants */
} sf_tsp_counts_t;

typedef struct sf_tsp_s sf_tsp_t;

/* New TSP for scenario sc (borrowed, must outlive it; its control.priority settings),
 * logging to log (borrowed, may be NULL). NULL with errno EINVAL / ENOMEM. */
sf_tsp_t *sf_tsp_new(const sf_scenario_t *sc, sf_eventlog_t *log);

/* Free; takes NULL, sets *self_p to NULL. */
void sf_tsp_destroy(sf_tsp_t **self_p);

/* Level from lateness: 3 when late beyond the threshold, 2 beyond twice it, 1 beyond four
 * times it; 4 when not late. */
uint8_t sf_tsp_level(float lateness_s, float threshold_s);

/* Take a transit event at t_s. Check-ins wait for the next sf_tsp_decide; a check-out
 * ends the bus's request at once (and queues the mailbox check-out for the unit, unless
 * the unit's status already showed it ended: expired, served or cancelled there).
 * 0, or -1 with errno: EINVAL (ix or movement out of range, empty bus id, bad level or
 * ETA not finite and >= 0), ENOSPC (too many pending check-ins), ENOENT (check-out of a
 * bus with no request here: logged by the caller if it cares, nothing changes). */
int sf_tsp_event(sf_tsp_t *t, double t_s, const sf_tsp_event_t *ev);

/* What the centre read from ix's unit at t_s: plan = the plan it runs when it is in
 * coordinated control (borrowed, copied), NULL otherwise (the wait is then unknown: 0);
 * cycle_timer_ds = its cycle timer (0.1 s; 0 = start of the coordinated phase's split). */
void sf_tsp_signal(sf_tsp_t *t, double t_s, uint32_t ix, const sf_plan_t *plan,
                   uint16_t cycle_timer_ds);

/* Predicted wait, s, at ix's stop line for a bus arriving at arrive_s on phase index
 * phase_idx, without priority: 0 when the phase's green in the plan's cycle (laid out as
 * the unit does: groups from the coordinated one, each ring's phases in service order,
 * each green its split less yellow and red clearance) covers the arrival, else the time
 * from the arrival to that green's next start. 0 when unknown (no coordinated plan read,
 * a phase with no split). */
double sf_tsp_wait(const sf_tsp_t *t, uint32_t ix, uint8_t phase_idx, double arrive_s);

/* Decide the pending check-ins at t_s (rules above), expire old grants, and fill
 * out[0..cap) with the mailbox writes to make (check-ins of grants and ETA updates, and
 * the check-outs queued since the last call). online[ix] says whether each unit can be
 * written (NULL = all). Returns the number of actions (never more than cap: the rest wait
 * for the next call). */
size_t sf_tsp_decide(sf_tsp_t *t, double t_s, const bool *online, sf_tsp_action_t *out, size_t cap);

/* The unit refused action a's write (exception) at t_s: a check-in's request is refused
 * "unit_refused", never retried. */
void sf_tsp_unit_refused(sf_tsp_t *t, double t_s, const sf_tsp_action_t *a, int exception);

/* The unit's priority status slots (prio_status_* registers) read at t_s for ix: marks
 * requests seen active (for "served"), and refusals or expiry decided by the unit. */
void sf_tsp_unit_status(sf_tsp_t *t, double t_s, uint32_t ix, const uint16_t id[8],
                        const uint16_t state[8], const uint16_t reason[8]);

/* Requests currently held (granted, not ended) at ix. */
size_t sf_tsp_active(const sf_tsp_t *t, uint32_t ix);

/* Counts so far; and as JSON {requests, granted, refused, refused_by_reason{...}, served,
 * cancelled, expired} (caller owns it). */
void sf_tsp_counts(const sf_tsp_t *t, sf_tsp_counts_t *out);
json_t *sf_tsp_counts_json(const sf_tsp_t *t);

/* "none", "disabled", "not_late", "offline", "conflict", "lockout", "unit_refused". */
const char *sf_tsp_reason_name(sf_tsp_reason_t r);

#endif
