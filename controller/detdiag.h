/* controller/detdiag.h — the centre's diagnosis of each detector from what it already polls
 * (presence at the poll period, counts and occupancy per detector interval, the phases'
 * greens), so that the smart modes stop trusting a failed one.
 *
 * Field practice: NTCIP 1202 (vehicle detector objects 2.3.2.8-2.3.2.10, from NEMA TS2
 * 3.9.3.1.4 "detector diagnostics") has each unit fail a detector on "no activity" (no
 * actuation for N minutes), "maximum presence" (a constant actuation for N minutes) and
 * "erratic counts"; typical unit settings are minutes (e.g. 15 min no activity, 10 min max
 * presence). Those timers alone must be long because a quiet lane or a standing queue looks
 * the same. The centre sees more than the unit's timer and so confirms each rule with
 * evidence that a working detector would have shown, which lets it act sooner:
 *
 *  - max presence (stuck on): occupied at every poll, every detector interval completed
 *    meanwhile (at least one) counted no vehicle and, where occupancy was read, 100 %
 *    occupancy, and meanwhile the detector's phases became green at least
 *    max_presence_greens times, for
 *      max_presence_s when its working neighbours (below) counted at least
 *      max_presence_veh vehicles together meanwhile: the movement discharged over the
 *      neighbouring stop bars through those greens, so a working detector in this lane
 *      would have counted its queue's gaps too (the central-system practice of comparing
 *      a detector with the other detectors of its movement);
 *      max_presence_alone_s otherwise (the unit's own NTCIP max-presence timer, judged per
 *      detector): a queue that does not move through greens (a left bay blocked by
 *      opposing flow or a full exit, or every lane of a blocked approach) holds every
 *      detector of it occupied with no count, exactly as a stuck one would, and only a
 *      hold longer than such a queue plausibly lasts tells them apart.
 *    The phases are the detector's phase_mask, or for a detector without one (advance
 *    counts) the phases of the movements its lane serves.
 *  - no activity (dead): not occupied at any poll and no count in any interval for
 *    no_activity_s, while its neighbours (working detectors of the same kind on the same
 *    link sharing a phase; the same link when it has no phases) counted at least
 *    no_activity_veh vehicles together. A detector without neighbours is never failed by
 *    this rule: its silence cannot be told from no demand (the unit's own NTCIP timer is
 *    what covers it).
 *  - erratic counts (chattering, NTCIP 1202 vehicleDetectorErraticCounts, counts per
 *    minute): the counts per minute of the completed intervals since the last judgement,
 *    judged once they add up to at least 60 s (one interval of 60 s or more alone; six of
 *    10 s), exceed erratic_cpm. A minute, not one short interval: at saturation headways
 *    a 4 s interval can hold 3 vehicles (45 a minute). A lane
 *    discharges at most its saturation flow, 1800-1900 veh/h = 30-32 a minute
 *    (REFERENCE.md); the default 40 a minute leaves a third above that for long vehicles
 *    counted twice, so only a detector pulsing without vehicles (a loose loop, crosstalk)
 *    exceeds it.
 *
 * A failed detector recovers when it shows what the rule said it could not: a stuck one
 * free at a poll, or an interval with counts or with occupancy below 100 %; a dead one
 * occupied at a poll or counting; an erratic one a judged minute at or below erratic_cpm. A gap of
 * more than max_gap_s between a unit's observations (offline) restarts every timer of that unit:
 * nothing is known about it. Detectors beyond SF_MAX_DET and non-finite times are refused.
 */
#ifndef SIGFLOW_DETDIAG_H
#define SIGFLOW_DETDIAG_H

#include <stddef.h>
#include <stdint.h>

#include "linkq.h"
#include "scenario.h"

typedef struct {
    double max_presence_s;        /* stuck on after this long held, s, default 300 */
    unsigned max_presence_greens; /* ... with this many green starts of its phases, def. 2 */
    double max_presence_veh;      /* ... while its neighbours counted this many, default 10 */
    double max_presence_alone_s;  /* ... or held this long without that, s, default 900
                                     (>= max_presence_s) */
    double erratic_cpm;           /* erratic above this many counts a minute, default 40 */
    double no_activity_s;         /* dead after this long silent, s, default 600 */
    double no_activity_veh;       /* ... while its neighbours counted this many, default 30 */
    double max_gap_s;             /* observations further apart restart the timers, def. 10 */
} sf_detdiag_opts_t;

typedef enum {
    SF_DETDIAG_OK = 0,
    SF_DETDIAG_MAX_PRESENCE = 1, /* stuck on */
    SF_DETDIAG_NO_ACTIVITY = 2,  /* dead */
    SF_DETDIAG_ERRATIC = 3,      /* chattering: more counts than a lane can carry */
} sf_detdiag_rule_t;

/* A detector's diagnosis changed at this observation. */
typedef struct {
    uint8_t det;            /* detector index in the intersection */
    sf_detdiag_rule_t rule; /* the rule that failed it (also on recovery) */
    bool failed;            /* true: failed now; false: recovered */
    double for_s;           /* how long the rule's condition held (failed) or the failure
                               lasted (recovered), s */
} sf_detdiag_change_t;

typedef struct sf_detdiag_s sf_detdiag_t;

/* Fill o with the documented defaults. */
void sf_detdiag_opts_default(sf_detdiag_opts_t *o);

/* New diagnosis for every detector of sc (borrowed: must outlive it); o NULL = defaults.
 * NULL with errno EINVAL (bad options or scenario) or ENOMEM. */
sf_detdiag_t *sf_detdiag_new(const sf_scenario_t *sc, const sf_detdiag_opts_t *o);

/* Free; takes NULL, sets *self_p to NULL. */
void sf_detdiag_destroy(sf_detdiag_t **self_p);

/* One poll of intersection ix's unit at t_s (non-decreasing per intersection), with its
 * detector data as linkq takes it (a new det_seq = a completed interval; the first
 * observation only sets the reference). Writes the changes (at most cap) to out and
 * returns their number (changes beyond cap are applied but not reported), or -1 with
 * EINVAL (ix out of range, t_s going back or not finite, obs NULL, det_volume NULL with
 * an interval, out NULL with cap > 0) changing nothing. */
int sf_detdiag_observe(sf_detdiag_t *d, uint32_t ix, double t_s, const sf_linkq_obs_t *obs,
                       sf_detdiag_change_t *out, size_t cap);

/* Bit k = detector k of intersection ix is failed now (0 when ix is out of range). */
uint64_t sf_detdiag_failed(const sf_detdiag_t *d, uint32_t ix);

/* "max_presence", "no_activity", "erratic" or "ok". */
const char *sf_detdiag_rule_name(sf_detdiag_rule_t r);

#endif
