/* controller/linkq.h — vehicles on each link and each movement's lane group, estimated
 * by the centre from what the units report (no simulator truth): the stop-bar
 * detectors' counts per detector interval, the detectors' presence at the poll period and
 * the phases' greens. Max-pressure (and spill-back checks) need these counts: a stop-bar
 * presence detector alone says 0 or 1 a lane, it cannot tell a 60-vehicle queue from a
 * 2-vehicle one, nor a full exit link.
 *
 * Model, per movement m (approach link L, turn t, at L's downstream intersection):
 *  - n_m = vehicles on L bound for m (moving or queued: a point queue, as in Varaiya 2013).
 *  - Outflow: the stop-bar counts of L's lanes, each lane's count shared among the turns
 *    the lane allows in proportion to w(l, t) = ratio[t] / (lanes allowing t) (each turn's
 *    traffic spread evenly over its lanes; an exclusive lane counts its turn exactly).
 *  - Inflow, internal link L: the counted outflow of the upstream intersection's movements
 *    whose exit is L, shared among L's movements by L's turning ratios (scenario).
 *  - Counts arrive once per detector interval (det_seq, typically 60 s). Between them the
 *    estimate is predicted: arrivals at the last interval's inflow rate, departures at
 *    saturation flow x the movement's lanes while its phase is green and one of its lanes'
 *    stop-bar detectors is occupied (a queue discharging). When the interval's counts come,
 *    the predicted part is replaced by the counted one (n += counted - predicted).
 *  - Occupancy corrections: every stop-bar detector of the movement's lanes idle for
 *    idle_clear_s while its phase is green means no queue is left: n_m is cut to the
 *    vehicles still moving along the link (inflow rate x free-flow travel time). A
 *    detector (advance count or stop-bar presence) occupied continuously for
 *    advance_hold_s means a standing queue reaches it: n_m >= its lane's share of
 *    (distance + zone length) / jam spacing, until the detector is free for idle_clear_s
 *    (while the queue moves up, its vehicles cross the detector in shorter gaps).
 *  - Clamped to [0, the link's storage] (lane lengths, a bay lane its bay, over the jam
 *    spacing of a car: length + jam gap), scaling the movements of the link down together.
 *
 * What is and is not known:
 *  - Entry links (from a boundary) have no upstream unit. Where the intersection's advance
 *    count detectors on the entry cover every full-length lane, upstream of every turn
 *    bay, their counts are the approach's arrivals, shared by the turning ratios; they are
 *    taken only from an interval in which every one of them was free (occupancy below
 *    free_occ_pct): once the queue stands over them they count its discharge, not the
 *    arrivals, and the rate (a moving average over the free intervals, entry_rate_keep) is
 *    kept. Elsewhere (no such detectors)
 *    the arrival rate is a moving average of the entry's own counted departures, which
 *    equals demand while the approach is under-saturated and reads low when it is not; in
 *    an interval in which the movement's queue was not seen to clear (idle on green) its
 *    departures are only a lower bound of its arrivals, and the rate is not lowered. The
 *    queue then grows only through the occupancy corrections.
 *  - Links to a boundary are assumed to discharge freely: their count is 0 (no detector
 *    sees them).
 *  - A lane without a stop-bar detector is not counted: its movements' outflow reads low
 *    and their estimate drifts up until the idle correction or the storage cap.
 *  - Turn shares within a shared lane come from the scenario's turning ratios, not
 *    measurement: the split among a shared lane's movements carries that error.
 *  - Until a unit's first complete detector interval is seen there are no rates: the
 *    estimate starts at 0 and grows from counts and corrections only.
 *
 * Failed detectors (sf_linkq_set_failed, from the centre's diagnosis, detdiag.h): a stuck-on
 * detector would hold its lane's queue at the link's storage (no counts, presence always:
 * the held lower bound, no idle on green), a dead one would read its lane empty. A failed
 * detector is ignored entirely, and its link falls back to what is left:
 *  - Outflow: the working stop-bar lanes of the movement count for the failed ones (its
 *    counted departures scaled by its detected lanes / its working ones: each turn's
 *    traffic is spread evenly over the lanes allowing it, as the shares assume). A
 *    movement whose detected lanes all failed has no counted departures: its predicted
 *    departures stand (saturation flow over its lanes whenever its phase is green, the
 *    queue as the model alone says it) and feed the next link.
 *  - Presence: neither discharge nor the idle clearing nor the held lower bound use it.
 *  - Entry arrivals: an entry whose advance detectors include a failed one falls back to
 *    the departures' moving average; a movement without counted departures keeps its rate.
 */
#ifndef SIGFLOW_LINKQ_H
#define SIGFLOW_LINKQ_H

#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"

typedef struct {
    double jam_spacing_m;   /* space per queued car; 0 = the scenario's car length + s0 */
    double idle_clear_s;    /* stop-bar lanes idle this long on green: queue gone, def. 3 */
    double advance_hold_s;  /* a detector held this long: the queue reaches it, default 4 */
    double sat_veh_h_lane;  /* discharge between counts, veh/h per lane, default 1800 */
    double entry_rate_keep; /* entry links: weight of the old rate in the moving average of
                               departures per interval, 0..1, default 0.5 */
    double free_occ_pct;    /* an advance detector below this occupancy in an interval
                               counts arrivals, %, default 30 */
} sf_linkq_opts_t;

/* What the centre read from one unit at one poll. */
typedef struct {
    uint16_t det_seq;              /* last completed detector interval */
    uint16_t det_interval_s;       /* its length, s (0 = counts not available) */
    const uint16_t *det_volume;    /* vehicles per detector in that interval, [ix.n_det] */
    const uint16_t *det_occupancy; /* its occupancy per detector, 0.1 %, [ix.n_det]; NULL =
                                      not read (advance counts are then not used) */
    uint64_t det_presence;         /* bit d = detector d occupied now */
    uint16_t greens;               /* phase_status greens: bit i = phase number i + 1 */
} sf_linkq_obs_t;

typedef struct sf_linkq_s sf_linkq_t;

/* Fill o with the documented defaults. */
void sf_linkq_opts_default(sf_linkq_opts_t *o);

/* New estimator for every link and movement of sc (borrowed: must outlive it); o may be
 * NULL (defaults). NULL with errno EINVAL (bad options, a movement whose link does not end
 * at its intersection) or ENOMEM. */
sf_linkq_t *sf_linkq_new(const sf_scenario_t *sc, const sf_linkq_opts_t *o);

/* Free; takes NULL, sets *self_p to NULL. */
void sf_linkq_destroy(sf_linkq_t **self_p);

/* One poll of intersection ix's unit at time t_s (non-decreasing per intersection): predict
 * since its last poll, take a newly completed detector interval's counts (det_seq changed
 * since the last observation; the first observation only sets the reference), then apply
 * the occupancy corrections and the storage cap. Returns 0, or -1 with EINVAL (ix out of
 * range, t_s going back or not finite, det_volume NULL with an interval) changing nothing. */
int sf_linkq_observe(sf_linkq_t *q, uint32_t ix, double t_s, const sf_linkq_obs_t *obs);

/* Detectors of intersection ix to ignore from the next observation on (bit k = detector
 * k; bits above its n_det are dropped; 0 = trust every detector). 0, or -1 with EINVAL. */
int sf_linkq_set_failed(sf_linkq_t *q, uint32_t ix, uint64_t failed);

/* Vehicles estimated for movement mv of intersection ix (on its approach); -1 with EINVAL
 * when out of range. */
double sf_linkq_movement(const sf_linkq_t *q, uint32_t ix, uint8_t mv);

/* Vehicles estimated on link l (the sum over its movements; 0 for a link to a boundary);
 * -1 with EINVAL when out of range. */
double sf_linkq_link(const sf_linkq_t *q, uint32_t l);

/* Vehicles link l can hold standing (its storage); -1 with EINVAL. */
double sf_linkq_storage(const sf_linkq_t *q, uint32_t l);

/* Share of lane `lane` of link ln that is turn t: w(lane, t) over the sum of w over the
 * turns the lane allows, w(l, t) = ratio[t] / (number of lanes allowing t); all ratios 0:
 * the turns count equally. 0 when the lane does not allow t; -1 with EINVAL on bad input. */
double sf_linkq_lane_share(const sf_link_t *ln, uint8_t lane, sf_turn_t t);

/* Vehicles link ln holds standing at jam spacing jam_m > 0: the sum over its lanes of the
 * lane's length (its bay for a bay lane) / jam_m. -1 with EINVAL. */
double sf_linkq_storage_veh(const sf_link_t *ln, double jam_m);

#endif
