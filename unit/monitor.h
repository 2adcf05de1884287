/* unit/monitor.h — the conflict monitor (MMU): an independent check of lamp outputs.
 *
 * The monitor shares nothing with the phase engine but the physical lamp outputs
 * (SF_OUT_* bits per signal group, unit/unit.h) and the intersection's configuration
 * (the conflict matrix sg_conflict and the phase timings, read live). It keeps its own
 * history of what each group showed and for how long, and checks every tick:
 *  - conflicting groups green together                      -> SF_FAULT_GREEN_CONFLICT
 *  - green lit together with red or yellow on one group      -> SF_FAULT_GREEN_RED
 *  - a vehicle or arrow group dark; a pedestrian group dark
 *    while the vehicle groups are not all flashing yellow    -> SF_FAULT_LAMP_DARK
 *  - a steady yellow shorter than its phase's yellow or not
 *    followed by red, or a green ending without a steady
 *    yellow                                                  -> SF_FAULT_YELLOW_SHORT
 *  - a green shorter than its phase's min green; a group
 *    turning green while a conflicting group is yellow,
 *    flashing, in ped clearance, or red for less than its
 *    phase's red clearance since its yellow ended; a
 *    pedestrian clearance (flashing don't walk) shorter than
 *    ped clear or skipped; a pedestrian group at steady
 *    don't walk for less than 3 s (the shortest yellow) after
 *    its clearance when a conflicting group turns green      -> SF_FAULT_TIMING_SHORT
 * Each minimum is the phase's timing when the interval began (a green's min green at
 * its start, a red clearance at the end of the yellow): a timing write applies to the
 * next interval, as in the engine, so a write never makes a correct interval look short.
 * The first violation latches; sf_monitor_check then keeps returning it until
 * sf_monitor_reset. Durations are counted in checks (one check per 0.1 s tick).
 */
#ifndef SIGFLOW_MONITOR_H
#define SIGFLOW_MONITOR_H

#include <stdint.h>

#include "scenario.h"

typedef struct sf_monitor_s sf_monitor_t;

/* New monitor for ix. ix is NOT copied: it must outlive the monitor (the unit passes its
 * own live copy so timing writes are seen). NULL with errno EINVAL or ENOMEM. */
sf_monitor_t *sf_monitor_new(const sf_intersection_t *ix);

/* Free a monitor; takes NULL, sets *self_p to NULL. */
void sf_monitor_destroy(sf_monitor_t **self_p);

/* Check one tick of outputs out[0..ix->n_sg). Returns the latched fault code
 * (SF_FAULT_NONE when all is well). */
uint8_t sf_monitor_check(sf_monitor_t *m, const uint8_t *out);

/* The latched fault code, and in sg[0..1] the signal groups involved (0xFF = none). */
uint8_t sf_monitor_fault(const sf_monitor_t *m, uint8_t sg[2]);

/* Clear the latch and forget the history (the unit restarts through start-up). */
void sf_monitor_reset(sf_monitor_t *m);

#endif
