/* cli/run_parts.h — the threads of `sigflow run` (cli/run.h), each in its own file:
 * sim/sim.h, unit/unit.h and controller/tsp.h each define names of their own for
 * transit events and priority outcomes, so no file includes two of them.
 *
 * A part is created on the caller's thread, started (its thread joins the bus as a
 * lockstep participant and runs until the clock's Bye, or until stop is set and it
 * waits in vain), joined, then read and destroyed on the caller's thread.
 */
#ifndef SIGFLOW_RUN_PARTS_H
#define SIGFLOW_RUN_PARTS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep.h"
#include "scenario.h"

/* Where the threads find the bus. */
typedef struct {
    void *zctx;              /* shared ZeroMQ context */
    const char *pub_ep;      /* forwarder endpoint publishers connect to */
    const char *sub_ep;      /* forwarder endpoint subscribers connect to */
    const atomic_bool *stop; /* set once the run is over: a thread that times out leaves */
    const sf_bus_security_t *security; /* NULL, or CurveZMQ credentials to join with */
} run_bus_t;

/* A participant's step loop, shared by every part: steps until the clock's Bye (returns
 * 0), waits again after a timeout while stop is unset (a paused or slow clock; the
 * units go on serving Modbus meanwhile), leaves quietly after a timeout once stop is set
 * (0), or returns -1 on any other failure (sf_participant_error(p) says what). */
int run_part_loop(sf_participant_t *p, const atomic_bool *stop, sf_lockstep_msg_fn on_msg,
                  sf_participant_step_fn on_step, void *arg);

#include <pthread.h>

#define RUN_PART_ERR_MAX 1024 /* bytes of a part's error message (= SF_RUNNER_ERR_MAX) */

/* The thread of one part: what it joins the bus as and how it steps. The part fills the
 * first fields when it is made; run_part_start joins, registers, sets io (when it has a
 * fill or serve) and runs run_part_loop on its own thread; run_part_join waits for it. */
typedef struct {
    const char *name;               /* participant name, also the errors' prefix */
    Sfbus__Role role;               /* announced role */
    uint8_t stage;                  /* lockstep stage */
    const char *topics[4];          /* data topics to receive */
    size_t n_topics;                /* of topics */
    sf_lockstep_msg_fn on_msg;      /* every data message (registration included) */
    sf_participant_step_fn on_step; /* every step */
    void *arg;                      /* of on_msg / on_step */
    sf_participant_io_t io;         /* extra sockets served while waiting; no fill/serve: none */
    run_bus_t bus;                  /* set by run_part_start */
    pthread_t thr;                  /* the thread */
    bool started;                   /* thr is running or not yet joined */
    int rc;                         /* 0 ok, -1 failed (err) */
    char err[RUN_PART_ERR_MAX];     /* why */
} run_part_t;

/* snprintf into err (cap bytes); for the parts' error messages. */
void run_part_set_err(char *err, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Start rp's thread on bus (copied); 0, or -1 with errno (EINVAL: already started). */
int run_part_start(run_part_t *rp, const run_bus_t *bus);

/* Wait for rp's thread (none started: returns at once); 0, or -1 with its error in err. */
int run_part_join(run_part_t *rp, char *err, size_t cap);

/* ---- units (cli/run_units.c): participant "units", stage 0 ---- */
typedef struct run_units run_units_t;

/* Every emulated intersection's unit behind its own Modbus TCP port on listen (ephemeral
 * ports when base_port is 0); an intersection with unit_host set is bridged to a real unit
 * (run_bridge below) and not hosted. NULL with the reason in err. */
run_units_t *run_units_new(const sf_scenario_t *sc, const char *listen, uint16_t base_port,
                           char *err, size_t cap);
/* Modbus TCP port of intersection i's unit (0: not hosted, bridged). */
uint16_t run_units_port(const run_units_t *u, uint32_t i);
/* Start the thread; 0 or -1 (errno). */
int run_units_start(run_units_t *u, const run_bus_t *bus);
/* Wait for the thread; returns 0, or -1 with its error in err. */
int run_units_join(run_units_t *u, char *err, size_t cap);
/* LampStates published. */
uint64_t run_units_lamp_msgs(const run_units_t *u);
/* The thread's error so far ("" none); read only after join, or as a hint. */
const char *run_units_error(const run_units_t *u);
void run_units_destroy(run_units_t **self_p);

/* ---- controller (cli/run_ctl.c): participant "controller", stage 1 ---- */
typedef struct run_ctl run_ctl_t;

/* The controller for sc talking to intersection i's unit at host:ports[i], or at its
 * unit_host:unit_port (0 = 502) when the intersection is bridged to a real unit.
 * round_timeout_ms 0 = the controller's default; events_path NULL, or its event log
 * file (JSON lines). NULL with the reason in err. */
run_ctl_t *run_ctl_new(const sf_scenario_t *sc, const char *host, const uint16_t *ports,
                       int round_timeout_ms, const char *events_path, char *err, size_t cap);
int run_ctl_start(run_ctl_t *c, const run_bus_t *bus);
int run_ctl_join(run_ctl_t *c, char *err, size_t cap);
const char *run_ctl_error(const run_ctl_t *c);
/* The controller's report section (caller owns it), NULL on ENOMEM. After join. */
json_t *run_ctl_report(const run_ctl_t *c);

/* The controller's network-dependent comms figures (sf_controller_comms_perf), for the
 * run's perf section; NULL when c is NULL. */
json_t *run_ctl_comms_perf(const run_ctl_t *c);
void run_ctl_destroy(run_ctl_t **self_p);

/* ---- HIL bridge (cli/run_bridge.c): participant "bridge", stage 0 ---- */
typedef struct run_bridge run_bridge_t;

/* The bridge for every intersection of sc with unit_host set (controller/bridge.h).
 * NULL with the reason in err; *none set (and NULL returned, err "") when nothing is
 * bridged. */
run_bridge_t *run_bridge_new(const sf_scenario_t *sc, bool *none, char *err, size_t cap);
/* Bridged intersections. */
size_t run_bridge_count(const run_bridge_t *b);
int run_bridge_start(run_bridge_t *b, const run_bus_t *bus);
int run_bridge_join(run_bridge_t *b, char *err, size_t cap);
const char *run_bridge_error(const run_bridge_t *b);
/* The report's `hil` section (caller owns it) with the clock's step jitter and the lamp
 * read rate over wall_s; NULL on ENOMEM. After join. */
json_t *run_bridge_report(const run_bridge_t *b, const sf_clock_jitter_t *jitter, double wall_s);
void run_bridge_destroy(run_bridge_t **self_p);

#endif
