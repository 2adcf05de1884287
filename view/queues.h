/* view/queues.h — queue lengths per lane measured from a vehicle snapshot.
 *
 * A lane's queue is the chain of stopped vehicles (slower than SF_QUEUE_STOP_MPS) that
 * starts within SF_QUEUE_FRONT_M of the stop line, each vehicle's front within
 * SF_QUEUE_GAP_M of the rear of the one ahead; its length runs from the stop line to the
 * rear of the last vehicle of the chain. Only links ending at an intersection have one.
 * The snapshot is bucketed by lane with a counting sort into arrays kept between calls
 * (they grow with the largest snapshot seen, never per call).
 */
#ifndef SIGFLOW_QUEUES_H
#define SIGFLOW_QUEUES_H

#include <stddef.h>
#include <stdint.h>

#include "scenario.h"
#include "sim.h"

#define SF_QUEUE_STOP_MPS 1.0f
#define SF_QUEUE_GAP_M    12.0f
#define SF_QUEUE_FRONT_M  15.0f

typedef struct sf_queues sf_queues_t;

/* New measurer for sc (kept by pointer). NULL with errno EINVAL / ENOMEM. */
sf_queues_t *sf_queues_new(const sf_scenario_t *sc);

/* Free; takes NULL, sets *self_p NULL. */
void sf_queues_destroy(sf_queues_t **self_p);

/* Measure every lane's queue from n vehicles (entries with a bad link or lane are
 * skipped). Returns 0, or -1 with errno ENOMEM (queues then read 0). */
int sf_queues_update(sf_queues_t *q, const sf_vehicle_snap_t *veh, size_t n);

/* Queue of a lane / the longest of a link's lanes after the last update, metres
 * (0 for a bad index). */
float sf_queues_lane(const sf_queues_t *q, uint32_t link, uint8_t lane);
float sf_queues_link(const sf_queues_t *q, uint32_t link);

#endif
