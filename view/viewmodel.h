/* view/viewmodel.h — what the live viewer knows, built from bus messages.
 *
 * The viewer subscribes to "step", "snap", "lamps", "det", "event", "summary" and "bye"
 * and applies each message here; drawing reads the model with sf_viewmodel_state. A
 * message that does not fit the scenario (an intersection or link index out of range, too
 * many signal groups, a lane the link does not have) is refused whole with a reason and
 * changes nothing. Only the latest snapshot is kept: snapshots that arrive faster than
 * frames are drawn are replaced (counted in `snaps_replaced`), never queued.
 */
#ifndef SIGFLOW_VIEWMODEL_H
#define SIGFLOW_VIEWMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "bus_codec.h"
#include "netview.h"
#include "panel.h"
#include "runrec.h"
#include "scenario.h"

typedef struct sf_viewmodel sf_viewmodel_t;

/* Counters, for the status bar and tests. */
typedef struct {
    uint64_t applied;        /* messages that changed the model */
    uint64_t refused;        /* messages refused (bad index, too big) */
    uint64_t snaps;          /* snapshots applied */
    uint64_t snaps_replaced; /* snapshots replaced before a frame used them */
    uint64_t last_k;         /* latest step index seen */
} sf_viewmodel_stats_t;

/* New model of sc (kept by pointer). NULL with errno ENOMEM / EINVAL. */
sf_viewmodel_t *sf_viewmodel_new(const sf_scenario_t *sc);

/* Free; takes NULL, sets *self_p NULL. */
void sf_viewmodel_destroy(sf_viewmodel_t **self_p);

/* Record what arrives (snapshots, lamps) into rec as well (NULL stops); not owned. */
void sf_viewmodel_record_into(sf_viewmodel_t *vm, sf_runrec_t *rec);

/* Apply one received message. Returns 1 applied, 0 ignored (a topic the model does not
 * use), -1 refused with errno EINVAL and the reason in why (may be NULL). */
int sf_viewmodel_apply(sf_viewmodel_t *vm, const sf_bus_rx_t *rx, char *why, size_t why_len);

/* Fill st for drawing (pointers into the model, valid until the next apply) and mark the
 * current snapshot as drawn. Keeps st's view fields (live, wall time, selection,
 * speed factor, paused). */
void sf_viewmodel_state(sf_viewmodel_t *vm, sf_view_state_t *st);

/* Status of intersection ix, or NULL. */
const sf_ix_status_t *sf_viewmodel_ix(const sf_viewmodel_t *vm, uint32_t ix);

/* Sim time of the latest step or snapshot, s (negative before any). */
double sf_viewmodel_time(const sf_viewmodel_t *vm);

/* Latest event or end-of-run text ("" none). */
const char *sf_viewmodel_message(const sf_viewmodel_t *vm);

/* True once the run ended: the run's summary or a Bye from the clock arrived (a
 * participant's Bye, reason "participant closed", does not end it). */
bool sf_viewmodel_ended(const sf_viewmodel_t *vm);

#define SF_VIEW_FINAL_LINES 12 /* lines of the "run finished" overlay */

/* True once the run's summary (topic "summary") arrived. */
bool sf_viewmodel_finished(const sf_viewmodel_t *vm);

/* The final MOEs from the summary as text lines (sim time, network delay/LOS/stops,
 * each intersection, priority); up to cap pointers into the model. Returns how many (0
 * before the summary). */
int sf_viewmodel_final(const sf_viewmodel_t *vm, const char *lines[], int cap);

/* Real-time factor the clock announced with its latest Step (0: as fast as possible),
 * or -1 before any Step. */
double sf_viewmodel_speed(const sf_viewmodel_t *vm);

void sf_viewmodel_stats(const sf_viewmodel_t *vm, sf_viewmodel_stats_t *out);

#endif
