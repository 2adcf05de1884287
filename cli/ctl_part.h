/* cli/ctl_part.h — the central controller as a lockstep participant's work (stage 1,
 * after the units): the buses' check-ins and check-outs and the viewer's operator
 * commands in, one controller step per lockstep step. The one body behind the
 * controller thread of `sigflow run` (run_ctl.c) and `sigflow controller --bus`
 * (cmd_controller.c); which messages reach it is the subscription's choice.
 *
 * A plain struct (like run_part_t): each caller embeds it next to the controller it
 * owns; used from the participant's thread only, read after it ended.
 */
#ifndef SIGFLOW_CTL_PART_H
#define SIGFLOW_CTL_PART_H

#include <jansson.h>
#include <stdint.h>

#include "controller.h"
#include "lockstep.h"

typedef struct {
    sf_controller_t *ctl;     /* borrowed: the caller's */
    uint64_t transit_msgs;    /* check-in/out messages taken from the bus */
    uint64_t transit_refused; /* of which the controller refused (e.g. a check-out of a
                                 request it refused): counted, the run goes on */
} sf_ctl_part_t;

/* sf_lockstep_msg_fn (arg: the part): an operator command goes to the controller (a
 * refusal changes nothing), a check-in or check-out is counted and handed over; other
 * messages are ignored. Returns 0. */
int sf_ctl_part_on_msg(void *arg, const sf_bus_rx_t *rx);

/* sf_participant_step_fn (arg: the part): the controller's step k at the step's time of
 * day; its result. */
int sf_ctl_part_on_step(void *arg, const Sfbus__Step *st, void *pub);

/* The controller's report with "transit_messages" {taken, refused} added; the caller owns
 * it. NULL on ENOMEM. */
json_t *sf_ctl_part_report(const sf_ctl_part_t *c);

#endif
