/* proto/lockstep.h — the simulation clock over the bus: a master and its participants.
 *
 * The simulator owns the clock (sf_clock_t); the units host, the controller and a HIL
 * bridge are lockstep participants (sf_participant_t); a viewer or recorder registers
 * without lockstep and is never waited for.
 *
 * Registration. A participant subscribes (data topics, "step", "bye", then last
 * "welcome.<name>"), and publishes Hello every SF_LOCKSTEP_RETRY_MS until its Welcome
 * arrives, then a final Hello with welcomed = true. Because its subscriptions travel in
 * order through the forwarder, receiving the Welcome proves its "step" subscription has
 * reached the clock's PUB socket; the clock counts a lockstep participant as registered
 * only on that acknowledgement, so step start_k can never be lost to a slow joiner.
 * The clock starts when the expected participants (a count, or a list of names) are all
 * registered; otherwise sf_clock_register() fails naming who is missing.
 *
 * Lockstep. sf_clock_step() publishes Step(k) and returns when every registered lockstep
 * participant has answered Done(k), each counted once (duplicates and stale answers are
 * counted apart and ignored). A participant publishes its outputs for step k (lamps,
 * events) before Done(k) on the same PUB socket, so the clock has them when the step
 * ends: they are handed to the caller's callback while it waits. Messages the clock
 * publishes for step k (detector inputs) must be published before sf_clock_step(), so
 * participants hold them when Step(k) arrives. After step_timeout_s without every
 * answer, the call fails naming the silent participants:
 *   lockstep: no done(1234) from 'controller' after 5.0 s
 *
 * Stages. A lockstep participant registers with a stage 0..3 (Hello.stage, default 0).
 * sf_clock_step() runs the stages of step k in order: Step(k, stage 0), every stage-0
 * Done(k), then Step(k, stage 1), every stage-1 Done(k), and so on; a stage nobody
 * registered for is skipped (stage 0 is always published, so non-lockstep listeners see
 * every step once). A participant handles only the Step of its own stage. `sigflow run`
 * puts the units host in stage 0 and the controller in stage 1, so the units have ticked
 * step k before the controller polls them at step k, deterministically.
 *
 * Real time. With realtime set, Step(k) is published at the absolute deadline
 * t0 + (k - k0) * step / speed_factor on CLOCK_MONOTONIC (a timerfd in the zmq_poll set:
 * no sleep, no drift: a late step does not delay the next deadline); the lateness of each
 * publication (step jitter) is recorded.
 *
 * Everything waits in zmq_poll on sockets and timers; nothing sleeps or spins. Objects
 * are used from one thread each; participants and clock may be threads of one process or
 * separate processes.
 */
#ifndef SIGFLOW_LOCKSTEP_H
#define SIGFLOW_LOCKSTEP_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"

#define SF_LOCKSTEP_RETRY_MS  100 /* Hello is repeated this often until welcomed */
#define SF_LOCKSTEP_MAX_PEERS 64  /* participants (lockstep or not) per clock */
#define SF_LOCKSTEP_ERR_MAX   512 /* bytes of an error message */
#define SF_LOCKSTEP_STAGES    4   /* stages per step, 0..3 */

/* Called for every message received while waiting that the lockstep does not consume
 * itself (everything but hello, done, welcome and the clock's bye). rx and its message
 * are valid during the call only. Return 0 to go on, -1 to abort the wait (the call then
 * fails with errno ECANCELED). */
typedef int (*sf_lockstep_msg_fn)(void *arg, const sf_bus_rx_t *rx);

/* ---- clock master ---------------------------------------------------------------- */

typedef struct {
    const char *name;            /* the clock's name in Welcome and Bye, e.g. "sim" */
    const char *scenario;        /* scenario name, sent in Welcome */
    uint64_t seed;               /* run seed, sent in Welcome */
    uint32_t step_ds;            /* step length, 0.1 s, > 0 */
    uint64_t start_k;            /* first step index */
    uint32_t start_tod_ds;       /* time of day at k = 0, 0.1 s after midnight */
    size_t n_expected;           /* lockstep participants to wait for */
    const char *const *expected; /* NULL, or the n_expected names that must register */
    double register_timeout_s;   /* > 0 */
    double step_timeout_s;       /* > 0: run.step_timeout_s */
    int realtime;                /* 1 = pace steps to the wall clock */
    double speed_factor;         /* real time: 1 = wall clock, 10 = ten times faster */
    const char *const *topics;   /* extra topics to receive ("lamps", "transit.", ...) */
    size_t n_topics;
    const sf_bus_security_t *security; /* NULL, or CurveZMQ credentials for a secured
                                          forwarder (read by sf_clock_new only) */
} sf_clock_config_t;

/* Step jitter in real-time mode: lateness of each Step publication against its deadline. */
typedef struct {
    uint64_t n;     /* steps measured */
    double mean_us; /* microseconds */
    double p95_us;
    double max_us;
} sf_clock_jitter_t;

/* Counters for the report and the tests. */
typedef struct {
    uint64_t steps;      /* steps completed */
    uint64_t dones;      /* Done(k) counted (exactly one per participant and step) */
    uint64_t duplicates; /* Done(k) received again for a step already counted */
    uint64_t stale;      /* Done for another step than the one waited for */
    uint64_t unknown;    /* Done or Bye from a name not registered for lockstep */
    uint64_t bad;        /* messages that failed to decode (dropped) */
    uint64_t refused;    /* Hellos refused (unexpected name, clash, too late) */
} sf_clock_stats_t;

typedef struct sf_clock_t sf_clock_t;

/* A clock master on the bus whose forwarder endpoints are pub_ep (publishers) and sub_ep
 * (subscribers). cfg is copied. Returns NULL with errno (EINVAL for a bad config). */
sf_clock_t *sf_clock_new(void *zctx, const char *pub_ep, const char *sub_ep,
                         const sf_clock_config_t *cfg);

/* Wait until every expected lockstep participant is registered, answering Hellos; other
 * messages go to on_msg (may be NULL). Returns 0, or -1 with errno SF_BUS_ETIMEOUT and
 * sf_clock_error() naming who is missing. */
int sf_clock_register(sf_clock_t *self, sf_lockstep_msg_fn on_msg, void *arg);

/* Publish a message on the clock's socket (detector inputs, snapshots, summary...).
 * Returns 0 or -1 with errno (see sf_bus_send). */
int sf_clock_publish(sf_clock_t *self, const ProtobufCMessage *msg);

/* Run step k = sf_clock_k(): in real time wait for its deadline, publish Step(k), hand
 * every other message to on_msg until all Done(k) arrived, then advance k. Late Hellos
 * from non-lockstep participants are answered meanwhile. Returns 0, or -1 with errno
 * SF_BUS_ETIMEOUT (silent participants named by sf_clock_error()), SF_BUS_ECLOSED (a
 * lockstep participant said bye), ECANCELED (on_msg asked) or a libzmq errno. */
int sf_clock_step(sf_clock_t *self, sf_lockstep_msg_fn on_msg, void *arg);

/* Serve the bus for up to timeout_ms (e.g. while paused): answer Hellos, hand other
 * messages to on_msg. Returns 0, or -1 with errno. */
int sf_clock_poll(sf_clock_t *self, int timeout_ms, sf_lockstep_msg_fn on_msg, void *arg);

/* Change the real-time speed factor (> 0) and restart the deadlines from now (also the
 * way to resume after a pause without a burst of late steps). Returns 0 or -1 (EINVAL). */
int sf_clock_set_speed(sf_clock_t *self, double speed_factor);

/* Switch the pacing while the run goes on: speed_factor > 0 paces steps to the wall clock
 * at that factor (also on a clock created without realtime), 0 runs as fast as the
 * participants answer (lockstep). Deadlines restart from now. Every Step carries the
 * factor in force (Step.speed_factor, 0 = as fast as possible). Returns 0, or -1 with
 * errno (EINVAL: negative or not finite; timerfd_create's errno). */
int sf_clock_set_pacing(sf_clock_t *self, double speed_factor);

/* The real-time factor in force, 0 when running as fast as possible (or NULL). */
double sf_clock_speed(const sf_clock_t *self);

/* Skip the stages in mask (bit s = stage s, 1..3; stage 0 is never skipped) in the next
 * sf_clock_step only: e.g. `sigflow run` skips the controller's stage on steps where it
 * has nothing due (no poll, no transit event), which saves a round trip per step. A
 * participant of a skipped stage sees a gap in k, which a stage > 0 participant accepts.
 * Returns 0 or -1 (EINVAL). */
int sf_clock_skip_stages(sf_clock_t *self, unsigned mask);

/* Publish Bye (reason, e.g. "end of run") so participants leave their step loop.
 * Returns 0 or -1 with errno. */
int sf_clock_bye(sf_clock_t *self, const char *reason);

/* Index of the next step to run. */
uint64_t sf_clock_k(const sf_clock_t *self);

/* Counters; zeroed struct for NULL. */
sf_clock_stats_t sf_clock_stats(const sf_clock_t *self);

/* Done(k) counted for a participant, or -1 if it is not registered for lockstep. */
int64_t sf_clock_done_count(const sf_clock_t *self, const char *name);

/* Step jitter of the real-time steps so far (all zero in lockstep mode). */
sf_clock_jitter_t sf_clock_jitter(const sf_clock_t *self);

/* Last error message ("" when none); owned by the clock. */
const char *sf_clock_error(const sf_clock_t *self);

/* Close the clock's sockets and free it; takes NULL, sets *self_p to NULL. Does not send
 * Bye (call sf_clock_bye first). */
void sf_clock_destroy(sf_clock_t **self_p);

/* ---- participant ----------------------------------------------------------------- */

typedef struct {
    const char *name; /* unique on the bus, [A-Za-z0-9_.-], <= 63 bytes */
    Sfbus__Role role;
    int lockstep;              /* 1 = the clock waits for our Done every step */
    const char *const *topics; /* data topics to receive besides step/bye/welcome */
    size_t n_topics;
    int rcvhwm;    /* 0 = SF_BUS_SUB_RCVHWM; a viewer may want a few */
    uint8_t stage; /* lockstep stage 0..SF_LOCKSTEP_STAGES-1 (added for sigflow run) */
    const sf_bus_security_t *security; /* NULL, or CurveZMQ credentials for a secured
                                          forwarder (read by sf_participant_new only) */
} sf_participant_config_t;

/* Other descriptors a participant serves while it waits for its Step (the units host's
 * Modbus sockets: the controller polls them between the units' steps). fill puts up to
 * cap items (fd set, socket NULL, events) into items and returns how many it has (when
 * more than cap, it is called again with room for them); *max_wait_ms is -1 or a bound
 * on the wait. serve is called after every wait with the items as polled (revents set);
 * it returns 0, or -1 to abort the wait (sf_participant_step fails with ECANCELED). */
typedef struct {
    size_t (*fill)(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms);
    int (*serve)(void *arg, const zmq_pollitem_t *items, size_t n);
    void *arg;
} sf_participant_io_t;

/* Called with each Step: do the work of step->k, publish its outputs (sf_bus_send on
 * pub), return 0; -1 aborts (sf_participant_step fails with ECANCELED, no Done sent). */
typedef int (*sf_participant_step_fn)(void *arg, const Sfbus__Step *step, void *pub);

typedef struct sf_participant_t sf_participant_t;

/* A participant on the bus (pub_ep, sub_ep as for the clock). cfg is copied. Returns NULL
 * with errno (EINVAL for a bad name or config). */
sf_participant_t *sf_participant_new(void *zctx, const char *pub_ep, const char *sub_ep,
                                     const sf_participant_config_t *cfg);

/* Publish Hello until Welcome (at most timeout_s), then acknowledge. Returns 0, or -1
 * with errno SF_BUS_ETIMEOUT ("no welcome from the clock after ...") or SF_BUS_EREFUSED
 * (the clock's reason in sf_participant_error()). Data messages received meanwhile are
 * handed to on_msg (may be NULL). */
int sf_participant_register(sf_participant_t *self, double timeout_s, sf_lockstep_msg_fn on_msg,
                            void *arg);

/* The Welcome received (NULL before registration); owned by the participant. */
const Sfbus__Welcome *sf_participant_welcome(const sf_participant_t *self);

/* Wait up to timeout_s for the next Step, handing data messages to on_msg; then call
 * on_step and (lockstep) publish Done(k). A paused clock publishes nothing, so a
 * participant that must outlive a pause calls again after SF_BUS_ETIMEOUT (nothing is
 * lost by a timeout). Returns 1 after a step, 0 when the clock said
 * bye, -1 with errno SF_BUS_ETIMEOUT, SF_BUS_EPROTO (a lockstep step was skipped),
 * ECANCELED or a libzmq errno; sf_participant_error() says what. */
int sf_participant_step(sf_participant_t *self, double timeout_s, sf_lockstep_msg_fn on_msg,
                        sf_participant_step_fn on_step, void *arg);

/* Serve io's descriptors in every later wait of sf_participant_step (io copied; NULL
 * stops). Returns 0, or -1 with errno EINVAL (fill or serve missing). */
int sf_participant_set_io(sf_participant_t *self, const sf_participant_io_t *io);

/* Publish a message on the participant's socket. Returns 0 or -1 with errno. */
int sf_participant_publish(sf_participant_t *self, const ProtobufCMessage *msg);

/* Steps handled so far. */
uint64_t sf_participant_steps(const sf_participant_t *self);

/* Last error message ("" when none); owned by the participant. */
const char *sf_participant_error(const sf_participant_t *self);

/* Say Bye if registered (so a waiting clock fails at once rather than at its timeout,
 * when the run has not ended), close the sockets and free; takes NULL, sets NULL. */
void sf_participant_destroy(sf_participant_t **self_p);

#endif
