/* controller/bridge.h — the HIL bridge: real signal units (any device implementing the
 * register map, proto/regmap.h) in place of emulated ones, in a simulation run.
 *
 * Every intersection whose scenario entry has unit_host set (intersections[i].unit_host /
 * unit_port, or --set) is bridged. The bridge is a lockstep participant (`sigflow run`
 * puts it in stage 0, beside the units host: cli/run_bridge.c): sf_bridge_on_msg takes the
 * simulator's DetectorInputs, sf_bridge_step (an sf_participant_step_fn) at every step k writes the
 * detector state to each bridged unit and reads its lamps (sg_lamp, time remaining, control mode,
 * status groups), publishing them as LampStates(k, ix) for the simulator. With the run's 0.1 s step
 * in real time the lamps are read at 10 Hz. The run must go in real time at factor 1 when a bridge
 * has any unit (sf_bridge_count > 0): a real unit keeps its own time.
 *
 * Detector inputs: at connection the bridge reads the unit's protocol_version. A map
 * version 2 unit has writable detector inputs: the bridge sets det_input_enable = 1
 * (external detection) and writes the presence of every detector to the det_input coils
 * (FC 15) whenever it changed, so calls and extension by presence work as with wired
 * detectors; at destroy it sets det_input_enable back to 0 (the unit's own inputs). A
 * version 1 unit (or one refusing the switch) has no writable detector input: for each
 * detector that becomes occupied the bridge writes phase_call = 1 (FC 15) for the phases
 * that detector calls (kept by the unit until served, so a rising edge is enough;
 * extension by presence cannot travel that way).
 *
 * The bridge is one Modbus client of the unit; the central controller is another. A real
 * unit must accept at least two simultaneous Modbus TCP connections and writes from both
 * (its allow-list, if any, must hold both addresses).
 *
 * Not thread-safe: one thread (the participant's) uses a bridge.
 */
#ifndef SIGFLOW_BRIDGE_H
#define SIGFLOW_BRIDGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "scenario.h"

typedef struct {
    double timeout_s;   /* Modbus response timeout per request, default 0.05 s (half a step) */
    double reconnect_s; /* wait before reconnecting a unit that failed, default 1 s */
} sf_bridge_opts_t;

/* Latency and counters of one bridge, for the report's `hil` section. */
typedef struct {
    uint64_t steps;          /* steps handled */
    uint64_t reads;          /* lamp reads that succeeded */
    uint64_t read_failures;  /* lamp reads that failed (timeout, exception, no connection) */
    uint64_t det_writes;     /* det_input writes acknowledged (map v2 units) */
    uint64_t call_writes;    /* phase_call writes acknowledged (map v1 units) */
    uint64_t write_failures; /* det_input or phase_call writes that failed */
    uint64_t lamp_msgs;      /* LampStates published */
    double read_mean_ms;     /* lamp-read latency (request to reply), ms */
    double read_p95_ms;
    double read_max_ms;
} sf_bridge_stats_t;

typedef struct sf_bridge_s sf_bridge_t;

/* Fill o with the defaults above. */
void sf_bridge_opts_default(sf_bridge_opts_t *o);

/* A bridge for every intersection of sc (borrowed: must outlive the bridge) with
 * unit_host set; unit_port 0 means 502. NULL with errno EINVAL (a bad option or port) or
 * ENOMEM. Connects nothing yet (each unit at its first step). */
sf_bridge_t *sf_bridge_new(const sf_scenario_t *sc, const sf_bridge_opts_t *opts);

/* Close every connection and free; takes NULL, sets *self_p to NULL. */
void sf_bridge_destroy(sf_bridge_t **self_p);

/* Number of bridged intersections (0: nothing to do, the run need not go real time). */
size_t sf_bridge_count(const sf_bridge_t *b);

/* Bus messages (sf_lockstep_msg_fn): keeps the latest DetectorInputs of each bridged
 * intersection; everything else is ignored. Always 0. */
int sf_bridge_on_msg(void *bridge, const sf_bus_rx_t *rx);

/* Step (sf_participant_step_fn): for each bridged unit, the detector presence (v2) or the
 * phase calls of newly occupied detectors (v1), then the lamp read and a LampStates(k) on pub. A
 * unit that does not answer is counted and retried after reconnect_s; the step still succeeds (the
 * simulator keeps that intersection's last lamps). Returns 0, or -1 with errno when publishing
 * fails. */
int sf_bridge_step(void *bridge, const Sfbus__Step *step, void *pub);

/* Counters and read latency so far. */
void sf_bridge_stats(const sf_bridge_t *b, sf_bridge_stats_t *out);

/* The `hil` report section (caller owns it): {"units": [{"ix", "endpoint",
 * "map_version", "detectors": "det_input" | "phase_call"}], "steps", "lamp_reads",
 * "read_failures", "det_writes", "call_writes", "write_failures", "lamp_msgs",
 * "read_latency_ms": {"mean", "p95", "max"}, "step_jitter_us": {"n", "mean", "p95",
 * "max"}}, the jitter being the clock's (sf_clock_jitter) passed by the caller. NULL on
 * ENOMEM. */
json_t *sf_bridge_report(const sf_bridge_t *b, uint64_t jitter_n, double jitter_mean_us,
                         double jitter_p95_us, double jitter_max_us);

#endif
