/* cli/unit_part.h — emulated signal units as a lockstep participant's work: detectors in
 * from the bus, the step's time of day, one tick, then LampStates out for the units whose
 * output changed. The one body behind the units thread of `sigflow run` (run_units.c) and
 * `sigflow unit --bus` (cmd_unit.c), so a split run (units on another host) publishes
 * exactly what the one-process run does and the reports stay equal.
 *
 * The host and its units stay the caller's; the part only keeps, per hosted unit, the
 * detector bits last received and what it published last. Used from one thread (the
 * participant's).
 */
#ifndef SIGFLOW_UNIT_PART_H
#define SIGFLOW_UNIT_PART_H

#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "lockstep.h"

typedef struct sf_unit_part sf_unit_part_t;

/* The part for host h (borrowed, outlives the part), whose unit j drives scenario
 * intersection ix_of[j] (< n_ix, each at most once; ix_of copied), stepping every step_s.
 * Returns NULL with errno EINVAL (bad arguments) or ENOMEM. */
sf_unit_part_t *sf_unit_part_new(sf_host_t *h, uint32_t n_ix, const uint32_t *ix_of, size_t n_units,
                                 double step_s);

/* Host index of intersection ix's unit, or -1 when it is not hosted here. */
int sf_unit_part_local(const sf_unit_part_t *u, uint32_t ix);

/* sf_lockstep_msg_fn (arg: the part): keeps the presence of DetectorInputs for units
 * hosted here; other intersections and bad indices change nothing. Returns 0. */
int sf_unit_part_on_msg(void *arg, const sf_bus_rx_t *rx);

/* sf_participant_step_fn (arg: the part): step k as above; every unit's lamps are
 * republished once a simulated second, so a viewer that joins late has them all. 0, or -1
 * when the clock or a send failed. */
int sf_unit_part_on_step(void *arg, const Sfbus__Step *st, void *pub);

/* The host's Modbus sockets for the participant's waits (arg: the part): the controller
 * polls the units between their steps. */
sf_participant_io_t sf_unit_part_io(sf_unit_part_t *u);

/* LampStates published so far. */
uint64_t sf_unit_part_lamp_msgs(const sf_unit_part_t *u);

/* Free the part (not the host); takes NULL, sets *self_p NULL. */
void sf_unit_part_destroy(sf_unit_part_t **self_p);

#endif
