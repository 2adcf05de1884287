/* controller/controller.h — the central signal controller core: one object that, step by
 * step, polls every unit (controller/master.h), keeps the plans (download, read-back,
 * time-of-day selection), coordinates (common cycle, offsets from the scenario or from
 * the green-wave optimiser), runs transit priority (controller/tsp.h), watches health
 * and logs every event (controller/eventlog.h).
 *
 * Time: sf_controller_step(ctl, k, tod_ds) is called once per simulation step k (sim time
 * k x run.step_s); it does what is due at that step synchronously and returns only when
 * every Modbus transaction of the step is finished (at most two pipelined rounds, each
 * bounded by round_timeout_ms), so the caller can then answer Done(k). Polls happen every
 * control.poll_period_s of sim time; a step with transit events pending also decides and
 * writes them at once. Every back-off and offline count is in sim time, so a lockstep run
 * is deterministic given the units' answers.
 *
 * What a poll step does, in order:
 *  1. round 1: per unit the status/lamp reads (plus priority slots while a request is
 *     held there, plus detector data every adaptive cycle), then the heartbeat write (after
 *     the reads, so a local fallback is seen before the heartbeat ends it), and one
 *     pending plan download with its read-back;
 *  2. comms, identity, mode, fallback, flash and fault changes -> events; a plan that the
 *     unit refused (exception) -> event, not retried until it changes; a read-back that
 *     differs -> event and retry (at most 3 times);
 *  3. decisions: plan for the time of day (plan_select, applied by the unit at its safe
 *     point, i.e. a cycle boundary), adaptive split/cycle once per cycle, priority
 *     decisions -> round 2 writes (plan_select, plan downloads, mailbox);
 *  4. a refused write is logged, never retried blindly.
 */
#ifndef SIGFLOW_CONTROLLER_H
#define SIGFLOW_CONTROLLER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "eventlog.h"
#include "health.h"
#include "master.h"
#include "scenario.h"
#include "tsp.h"

typedef struct {
    const char *log_path;     /* event log file (JSON lines), NULL = none */
    sf_eventlog_sink_fn sink; /* also receives every event line, NULL = none */
    void *sink_ctx;           /* for sink */
    int round_timeout_ms;     /* bound of one Modbus round, default 100 */
    uint16_t offline_after;   /* missed polls before offline, default 3 */
    double backoff_min_s;     /* first reconnect delay once offline, default 1 s */
    double backoff_max_s;     /* cap of the doubling delay, default 30 s */
    bool greenwave;           /* replace the coordinated plans' offsets by the green-wave
                                 optimiser's (planner's sf_gw_optimise), default false */
} sf_controller_opts_t;

typedef struct sf_controller_s sf_controller_t;

/* Fill o with the defaults above. */
void sf_controller_opts_default(sf_controller_opts_t *o);

/* New controller for scenario sc (borrowed: must outlive the controller) talking to
 * intersection i's unit at eps[i] (eps NULL: ix.unit_host:unit_port when set, else
 * run.modbus_listen : run.modbus_base_port + i, which then must not be 0). NULL with errno
 * EINVAL (and a one-line reason in err, may be NULL) or ENOMEM. Connects nothing yet. */
sf_controller_t *sf_controller_new(const sf_scenario_t *sc, const sf_endpoint_t *eps,
                                   const sf_controller_opts_t *opts, char *err, size_t err_len);

/* Close every connection, flush the log, free; takes NULL, sets *self_p to NULL. */
void sf_controller_destroy(sf_controller_t **self_p);

/* Do everything due at step k (sim time k x run.step_s, time of day tod_ds in 0.1 s
 * after midnight); returns when all its Modbus transactions are finished. 0, or -1 with
 * errno (EINVAL: k went backwards or tod_ds out of range; a system error). */
int sf_controller_step(sf_controller_t *ctl, uint64_t k, uint32_t tod_ds);

/* A transit check-in / check-out (from the bus's TransitCheckIn/Out, or a test): taken
 * at the next step. 0, or -1 with errno as sf_tsp_event (EINVAL, ENOSPC, ENOENT). */
int sf_controller_transit(sf_controller_t *ctl, const sf_tsp_event_t *ev);

/* An operator's command from the viewer (ViewCommand on topic "cmd"): CMD_TOGGLE_PRIORITY
 * turns transit priority off / on (off: new check-ins are ignored, check-outs still end
 * requests already made); CMD_SELECT_PLAN makes plan m->plan the selected plan of
 * intersection m->ix from the next poll on, over the time-of-day schedule, until the run
 * ends; CMD_FAULT_RESET writes the unit's fault reset at the next poll. Each is logged.
 * Returns 1 taken, 0 not the controller's (pause, step, speed), -1 with errno EINVAL (not
 * a ViewCommand, intersection out of range) or ENOENT (no such plan there). */
struct ProtobufCMessage;
int sf_controller_operator(sf_controller_t *ctl, const struct ProtobufCMessage *msg);

/* The same from a decoded, checked bus message (proto/bus_codec.h): a TransitCheckIn or
 * TransitCheckOut (any other type: EINVAL). The level comes from lateness
 * (sf_tsp_level). 0, or -1 with errno as sf_controller_transit. */
struct ProtobufCMessage;
int sf_controller_transit_msg(sf_controller_t *ctl, const struct ProtobufCMessage *msg);

/* The report section (caller owns it): {"priority": {requests, granted, refused, ...,
 * mailbox_refused}, "events": {kind: count}, "comms": {...}, "plans": {...}}
 * (proto/REPORT.md, `controller`). NULL on ENOMEM. */
json_t *sf_controller_report(const sf_controller_t *ctl);

/* The comms figures that depend on the network and the machine, kept apart from the
 * report so that a lockstep report stays byte-identical (caller owns it):
 * {"poll_rtt_ms": {rounds, mean, min, p50, p95, max}, "tcp_retransmits": n,
 *  "units": {id: {poll_rtt_ms: {...}, srtt_ms, tcp_retransmits, missed_polls}}}, round
 * trips from sf_unit_state_t.rtt, the kernel's TCP figures from sf_master_tcp_link.
 * NULL on ENOMEM (or a NULL ctl). */
json_t *sf_controller_comms_perf(const sf_controller_t *ctl);

/* The master (for unit states and comms statistics), the TSP, the event log. */
const sf_master_t *sf_controller_master(const sf_controller_t *ctl);
const sf_tsp_t *sf_controller_tsp(const sf_controller_t *ctl);
sf_eventlog_t *sf_controller_log(sf_controller_t *ctl);

/* Offsets (0.1 s) the controller runs for intersection i's plan number plan_no (after
 * green-wave optimisation when asked), -1 when out of range. */
int sf_controller_offset(const sf_controller_t *ctl, uint32_t i, uint8_t plan_no);

#endif
