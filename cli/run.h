/* cli/run.h — a whole scenario in one process: bus forwarder, simulator (clock master),
 * units host and controller as threads speaking real ZeroMQ and real Modbus TCP.
 *
 * Threads and what they own:
 *   caller    the simulator and the clock (sf_clock_t): publishes DetectorInputs(k) for the
 *             intersections whose presence changed, then runs step k (stage 0: units,
 *             stage 1: controller), applies the LampStates it received, advances the
 *             model, publishes transit events and snapshots;
 *   "units"   every emulated signal unit behind its own Modbus TCP port on 127.0.0.1
 *             (ephemeral), lockstep stage 0: applies detectors, sets the clock, ticks,
 *             publishes LampStates for the units whose output changed (and every unit
 *             once a simulated second, for late subscribers); between its steps it
 *             serves the Modbus sockets from the same zmq_poll (sf_participant_set_io);
 *   "controller" (optional) lockstep stage 1: sf_controller_step over Modbus TCP to the
 *             units, transit check-in/out from the bus.
 * Units tick step k before the controller polls them at step k, and every Modbus
 * exchange of step k ends before its Done(k): the report is a function of the scenario
 * and the seed only (outside `perf`).
 *
 * A thread that fails leaves the bus with Bye, so the clock fails the step at once
 * naming it; a thread that hangs is named by the clock after run.step_timeout_s. The
 * caller's stop descriptor (a signalfd) ends the run after the current step with a
 * partial report.
 */
#ifndef SIGFLOW_RUN_H
#define SIGFLOW_RUN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bus.h"
#include "scenario.h"

#define SF_RUNNER_ERR_MAX 1024 /* bytes of an error message */

/* Called on the simulator's thread once per step after the model moved; return 0 to go
 * on, -1 to stop the run as if interrupted. */
typedef int (*sf_runner_tick_fn)(void *arg, double sim_s, double duration_s);

typedef struct {
    const sf_scenario_t *sc;  /* borrowed; run.* decides duration, seed, step, timeouts */
    bool with_controller;     /* run the central controller (stage 1) */
    bool inproc;              /* same-process participants use the forwarder's inproc://
                                 endpoints (external processes still join over TCP) */
    bool realtime;            /* pace steps to the wall clock */
    double speed;             /* real-time factor (> 0) */
    int stop_fd;              /* readable = stop after this step (signalfd), -1 none */
    sf_runner_tick_fn tick;   /* NULL or a per-step callback (progress bar) */
    void *tick_arg;           /* for tick */
    void *zctx;               /* ZeroMQ context to use, NULL = one of its own */
    const char *shot_path;    /* PNG of the network at sim time shot_at_s, NULL none */
    double shot_at_s;         /* s */
    const char *runrec_path;  /* NULL, or a run record (view/runrec.h) to fill from the
                                 simulator every step and save at the end (needs SDL2) */
    const char *events_path;  /* NULL, or the controller's event log (JSON lines, as
                                 `sigflow controller --log`), created or truncated */
    const char *const *extra; /* more lockstep participants (stage 0) to wait for, e.g. a
                                 HIL bridge joining over TCP; n_extra names */
    size_t n_extra;
    bool no_units;       /* no units host (`sigflow sim`: units join from outside) */
    const char *bus_pub; /* an existing forwarder's endpoints (`sigflow sim --bus`); */
    const char *bus_sub; /* NULL: start a forwarder on 127.0.0.1 ephemeral ports */
    /* CurveZMQ (cli/curve_opts.h). security: NULL, or the credentials every participant of
     * this run (clock, units, controller) joins the bus with: the keys of `sigflow sim
     * --bus` joining a secured forwarder, or with curve_secret an in-memory pair the own
     * forwarder admits. curve_secret (Z85, NULL = plain): serve the own forwarder as a
     * CURVE server admitting the keys of curve_allow (a DIR of *.pub or one FILE) and
     * security->public_key; external participants (--expect, viewers, recorders) then
     * need an authorised key. Results do not depend on it. */
    const sf_bus_security_t *security;
    const char *curve_secret;
    const char *curve_allow;
    /* NULL or called on the caller's thread: phase 0 once the bus is up (endpoints, before
     * registration: external participants may join now), phase 1 once every participant
     * is registered (the first step follows). */
    void (*ready)(void *arg, int phase, const char *pub_ep, const char *sub_ep);
    void *ready_arg;
    const atomic_bool *stop_flag; /* NULL, or set by another thread to stop (e.g. the window
                                     closed): like the stop descriptor */
} sf_runner_opts_t;

typedef struct {
    json_t *report;                /* sim report + "controller" + "perf"; caller decrefs */
    bool partial;                  /* stopped before run.duration_s */
    bool shot_written;             /* the screenshot was written */
    char pub_ep[256], sub_ep[256]; /* the forwarder's TCP endpoints of this run */
    char err[SF_RUNNER_ERR_MAX];   /* why it failed ("" when not) */
} sf_runner_result_t;

/* Run the scenario to run.duration_s (or the stop). Returns 0 with res->report set (also
 * when stopped: res->partial), or -1 with res->err (a thread's or the clock's message:
 * "lockstep: no done(1234) from 'controller' after 10.0 s"), res->report then NULL. */
int sf_runner_run(const sf_runner_opts_t *o, sf_runner_result_t *res);

/* Serialise a report the way every tool does (indent 2, keys in order, 10 significant
 * digits) and write it to path atomically (temp file in the same directory, fsync,
 * rename). Returns 0 or -1 with errno. */
int sf_runner_write_report(const json_t *report, const char *path);

/* Print the human summary of a report to out (network, intersections, lines, priority,
 * perf). */
void sf_runner_print_summary(const json_t *report, FILE *out);

#endif
