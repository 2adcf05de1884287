/* cli/run.c — a whole scenario in one process (see run.h). */
#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "curve.h"
#include "lockstep.h"
#include "run_parts.h"
#include "sim.h"
#ifdef HAVE_SF_VIEW
#include "runrec.h"
#include "shot.h"
#endif

#define REGISTER_TIMEOUT_S 10.0 /* every participant joins well within this */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ---- simulator (caller's thread) ------------------------------------------------- */

typedef struct {
    sf_sim_t *sim;
    uint32_t n_ix;
    uint8_t *lamps;     /* n_ix * SF_MAX_SG, as last received (for the screenshot) */
    uint64_t lamp_msgs; /* LampStates applied */
    uint64_t bad_lamps; /* refused (bad index or length) */
    /* The viewers' clock commands (topic "cmd"), noted while the clock waits and applied
     * between steps (hold_for_commands), never in the middle of one. */
    bool paused;        /* CMD_PAUSE seen, no CMD_RESUME since */
    uint32_t steps_due; /* CMD_STEP while paused: steps to run before holding again */
    bool speed_due;     /* CMD_SPEED seen: apply speed */
    double speed;       /* its factor, 0 = as fast as possible */
    uint64_t cmds;      /* clock commands taken */
    bool summary_back;  /* our own RunSummary came back through the forwarder */
    bool fixed_pace;    /* real units in the loop (HIL): they keep wall time, so CMD_SPEED
                           is ignored (pause and step still work) */
} sim_ctx_t;

static void note_command(sim_ctx_t *s, const Sfbus__ViewCommand *m)
{
    switch (m->cmd) {
    case SFBUS__COMMAND__CMD_PAUSE:
        s->paused = true;
        s->steps_due = 0;
        break;
    case SFBUS__COMMAND__CMD_RESUME:
        s->paused = false;
        break;
    case SFBUS__COMMAND__CMD_STEP:
        if (s->paused && s->steps_due < 1000)
            s->steps_due++;
        break;
    case SFBUS__COMMAND__CMD_SPEED:
        if (s->fixed_pace)
            return;
        s->speed_due = true;
        s->speed = m->speed_factor; /* the codec checked 0..1000 */
        break;
    default:
        return; /* priority, plan, fault: the controller's (run_ctl.c) */
    }
    s->cmds++;
}

static int sim_on_msg(void *arg, const sf_bus_rx_t *rx)
{
    sim_ctx_t *s = arg;
    if (rx->type == SF_BUS_CMD) {
        note_command(s, (const Sfbus__ViewCommand *)(const void *)rx->msg);
        return 0;
    }
    if (rx->type == SF_BUS_SUMMARY) {
        s->summary_back = true;
        return 0;
    }
    if (rx->type != SF_BUS_LAMPS)
        return 0;
    const Sfbus__LampStates *m = (const Sfbus__LampStates *)(const void *)rx->msg;
    if (m->ix >= s->n_ix || m->lamps.len > SF_MAX_SG ||
        sf_sim_set_lamps(s->sim, m->ix, m->lamps.data, m->lamps.len) != 0) {
        s->bad_lamps++;
        return 0;
    }
    memcpy(&s->lamps[(size_t)m->ix * SF_MAX_SG], m->lamps.data, m->lamps.len);
    s->lamp_msgs++;
    return 0;
}

/* Growable snapshot buffers: the arrays grow to the largest count seen, never shrink,
 * so a steady run allocates nothing per snapshot. */
typedef struct {
    size_t cap;
    sf_vehicle_snap_t *veh;
    uint32_t *id, *link, *lane, *type;
    int32_t *line;
    float *pos, *speed;
} snapbuf_t;

static void snapbuf_free(snapbuf_t *b)
{
    free(b->veh);
    free(b->id);
    free(b->link);
    free(b->lane);
    free(b->type);
    free(b->line);
    free(b->pos);
    free(b->speed);
    memset(b, 0, sizeof *b);
}

static int snapbuf_reserve(snapbuf_t *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
#define GROW(f)                                                                                    \
    do {                                                                                           \
        void *p_ = realloc(b->f, cap * sizeof *b->f);                                              \
        if (!p_)                                                                                   \
            return -1;                                                                             \
        b->f = p_;                                                                                 \
    } while (0)
    GROW(veh);
    GROW(id);
    GROW(link);
    GROW(lane);
    GROW(type);
    GROW(line);
    GROW(pos);
    GROW(speed);
#undef GROW
    b->cap = cap;
    return 0;
}

/* Take the current vehicles into b; returns their number or -1 (ENOMEM). */
static long snap_take(const sf_sim_t *sim, snapbuf_t *b)
{
    size_t n = sf_sim_snapshot(sim, b->veh, b->cap);
    if (n > b->cap) {
        if (snapbuf_reserve(b, n) != 0)
            return -1;
        n = sf_sim_snapshot(sim, b->veh, b->cap);
    }
    return (long)n;
}

static int publish_snapshot(sf_clock_t *clk, const sf_sim_t *sim, snapbuf_t *b, uint64_t k)
{
    long n = snap_take(sim, b);
    if (n < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        const sf_vehicle_snap_t *v = &b->veh[i];
        b->id[i] = v->id;
        b->link[i] = v->link_idx;
        b->lane[i] = v->lane;
        b->type[i] = v->type;
        b->line[i] = v->line == SF_SIM_NO_LINE ? -1 : (int32_t)v->line;
        b->pos[i] = v->pos_m;
        b->speed[i] = v->speed_mps;
    }
    Sfbus__VehicleSnapshot m = SFBUS__VEHICLE_SNAPSHOT__INIT;
    m.k = k;
    m.t_ds = (uint64_t)llround(sf_sim_time(sim) * 10.0);
    m.n_id = m.n_link = m.n_lane = m.n_pos_m = m.n_speed_mps = m.n_type = m.n_line = (size_t)n;
    m.id = b->id;
    m.link = b->link;
    m.lane = b->lane;
    m.type = b->type;
    m.line = b->line;
    m.pos_m = b->pos;
    m.speed_mps = b->speed;
    return sf_clock_publish(clk, &m.base);
}

static int publish_transit(sf_clock_t *clk, const sf_scenario_t *sc, const sf_transit_event_t *ev,
                           uint64_t k)
{
    char bus_id[32];
    snprintf(bus_id, sizeof bus_id, "%u", ev->bus_id);
    char *line = (char *)(ev->line_idx < sc->n_lines ? sc->lines[ev->line_idx].id : "");
    if (ev->kind == SF_TRANSIT_CHECKIN) {
        Sfbus__TransitCheckIn m = SFBUS__TRANSIT_CHECK_IN__INIT;
        m.k = k;
        m.bus_id = bus_id;
        m.line = line;
        m.ix = ev->ix_idx;
        m.approach = ev->link_idx;
        m.movement = ev->movement_idx;
        m.eta_s = ev->eta_s;
        m.lateness_s = ev->lateness_s;
        return sf_clock_publish(clk, &m.base);
    }
    Sfbus__TransitCheckOut m = SFBUS__TRANSIT_CHECK_OUT__INIT;
    m.k = k;
    m.bus_id = bus_id;
    m.line = line;
    m.ix = ev->ix_idx;
    m.approach = ev->link_idx;
    m.movement = ev->movement_idx;
    m.eta_s = 0;
    m.lateness_s = ev->lateness_s;
    return sf_clock_publish(clk, &m.base);
}

#ifdef HAVE_SF_VIEW
/* --runrec: after step k, the lamps the simulator drove step k with (in force from the
 * step's start, as a viewer dates them) and, every SF_RUN_RECORD_EVERY_S, its own vehicle
 * snapshot, straight into the record: no bus in between, so nothing is dropped. */
#define SF_RUN_RECORD_EVERY_S 1.0
static int record_step(sf_runrec_t *rec, const sf_sim_t *sim, const sim_ctx_t *sx, snapbuf_t *b,
                       uint64_t k, double step_s, double *next_snap)
{
    const sf_scenario_t *sc = sf_runrec_scenario(rec);
    /* the record keeps times as float and refuses one earlier than its latest: rounding
     * here first keeps a time that rounds up from looking later than the next one */
    double t_lamps = (double)(float)((double)k * step_s);
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        if (sf_runrec_add_lamps(rec, t_lamps, i, &sx->lamps[(size_t)i * SF_MAX_SG],
                                sc->intersections[i].n_sg) < 0)
            return -1;
    double t = sf_sim_time(sim);
    if (t + 1e-6 < *next_snap)
        return 0;
    long n = snap_take(sim, b);
    if (n < 0 || sf_runrec_add_snapshot(rec, t, b->veh, (size_t)n) < 0)
        return -1;
    *next_snap = t + SF_RUN_RECORD_EVERY_S;
    return 0;
}
#endif

#ifdef HAVE_SF_VIEW
static int take_screenshot(const sf_runner_opts_t *o, const sf_sim_t *sim, const sim_ctx_t *sc,
                           snapbuf_t *b, const uint64_t *presence, char *err, size_t cap)
{
    long n = snap_take(sim, b);
    if (n < 0) {
        set_err(err, cap, "screenshot: out of memory");
        return -1;
    }
    sf_view_state_t st;
    memset(&st, 0, sizeof st);
    st.lamps = sc->lamps;
    st.det_presence = presence;
    st.veh = b->veh;
    st.n_veh = (size_t)n;
    st.sim_time_s = sf_sim_time(sim);
    st.start_tod_s = o->sc->run.start_tod_s;
    st.speed_factor = o->realtime ? o->speed : 0;
    st.selected_ix = -1;
    json_t *rep = sf_sim_report(sim, false);
    if (rep) {
        sf_moe_from_report(rep, &st.moe);
        json_decref(rep);
    }
    char why[256] = "";
    if (sf_view_screenshot(o->sc, &st, 0, 0, o->shot_path, why, sizeof why) != 0) {
        set_err(err, cap, "screenshot %s: %s", o->shot_path, why[0] ? why : strerror(errno));
        return -1;
    }
    return 0;
}
#endif

/* Is the stop descriptor readable (a signal arrived)? Consumes it. */
static bool stop_requested(int fd)
{
    if (fd < 0)
        return false;
    struct signalfd_siginfo si;
    ssize_t r = read(fd, &si, sizeof si);
    return r > 0;
}

#define HOLD_POLL_MS 100 /* while paused: how often the stop request is looked at */

/* Before each step: apply a new pacing, then hold while paused, serving the bus (commands,
 * late Hellos) until resumed, a single step is asked for, or the run is stopped. The
 * participants simply see no Step meanwhile (they wait in slices and never time out, see
 * run_part_loop). Resuming restarts the real-time deadlines from now, so no burst of late
 * steps follows a pause. Returns 1 to run the step, 0 to stop, -1 on a bus error. */
static int hold_for_commands(sf_clock_t *clk, sim_ctx_t *sx, const sf_runner_opts_t *o)
{
    bool held = false;
    for (;;) {
        if (sx->speed_due) {
            sx->speed_due = false;
            if (sf_clock_set_pacing(clk, sx->speed) != 0)
                return -1;
        }
        if (!sx->paused || sx->steps_due > 0) {
            if (sx->paused)
                sx->steps_due--;
            else if (held && sf_clock_speed(clk) > 0 &&
                     sf_clock_set_pacing(clk, sf_clock_speed(clk)) != 0)
                return -1;
            return 1;
        }
        held = true;
        if (stop_requested(o->stop_fd) || (o->stop_flag && atomic_load(o->stop_flag)))
            return 0;
        if (sf_clock_poll(clk, HOLD_POLL_MS, sim_on_msg, sx) != 0)
            return -1;
    }
}

#define SUMMARY_ECHO_MS 2000 /* at most this long for the summary's round trip */

/* RunSummary on topic "summary": the report, for the viewers still on the bus (their
 * "run finished" overlay). The clock subscribes to "summary" too and serves the bus until
 * its own copy comes back: the forwarder has then handed it to every subscriber, before
 * the run tears the forwarder down. Best effort: a viewer that misses it still has the
 * Bye. */
static void publish_summary(sf_clock_t *clk, sim_ctx_t *sx, const json_t *report, uint64_t k,
                            double sim_s)
{
    char *text = json_dumps(report, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text)
        return;
    Sfbus__RunSummary m = SFBUS__RUN_SUMMARY__INIT;
    m.k = k;
    m.sim_s = sim_s;
    m.report_json = text;
    int rc = sf_clock_publish(clk, &m.base);
    free(text);
    for (int waited = 0; rc == 0 && !sx->summary_back && waited < SUMMARY_ECHO_MS; waited += 50)
        rc = sf_clock_poll(clk, 50, sim_on_msg, sx);
}

/* Add controller section, merged priority counts and perf to the sim report. */
static json_t *build_report(const sf_runner_opts_t *o, sf_sim_t *sim, const run_ctl_t *ctl,
                            sf_clock_t *clk, double wall_s, uint64_t steps, bool partial,
                            const run_units_t *units, const sim_ctx_t *sx,
                            const run_bridge_t *bridge, bool realtime, double speed)
{
    json_t *rep = sf_sim_report(sim, true);
    if (!rep)
        return NULL;
    json_t *sim_perf = json_object_get(rep, "perf");
    json_incref(sim_perf);
    json_object_del(rep, "perf");
    if (ctl) {
        json_t *cr = run_ctl_report(ctl);
        json_t *prio = cr ? json_object_get(cr, "priority") : NULL;
        json_t *rp = json_object_get(rep, "priority");
        if (prio && json_is_object(rp)) {
            /* The controller decided every request: its counts are the run's. */
            const char *keys[] = {"requests", "granted", "refused"};
            for (size_t i = 0; i < 3; i++) {
                json_t *v = json_object_get(prio, keys[i]);
                if (v)
                    json_object_set(rp, keys[i], v);
            }
        }
        if (cr)
            json_object_set_new(rep, "controller", cr);
    }
    json_object_set_new(rep, "partial", json_boolean(partial));
    json_t *perf = json_object();
    uint64_t vu = 0;
    json_t *v = sim_perf ? json_object_get(sim_perf, "vehicle_updates") : NULL;
    if (json_is_integer(v))
        vu = (uint64_t)json_integer_value(v);
    json_object_set_new(perf, "wall_s", json_real(wall_s));
    json_object_set_new(perf, "steps", json_integer((json_int_t)steps));
    json_object_set_new(perf, "vehicle_updates", json_integer((json_int_t)vu));
    json_object_set_new(perf, "vehicle_updates_per_s",
                        json_real(wall_s > 0 ? (double)vu / wall_s : 0.0));
    json_object_set_new(perf, "steps_per_s", json_real(wall_s > 0 ? (double)steps / wall_s : 0.0));
    json_t *w = sim_perf ? json_object_get(sim_perf, "wall_s") : NULL;
    json_object_set_new(perf, "sim_model_wall_s",
                        json_real(json_is_number(w) ? json_number_value(w) : 0));
    json_object_set_new(perf, "transport", json_string(o->inproc ? "inproc" : "tcp"));
    json_object_set_new(perf, "bus_security", json_string(o->security ? "curve" : "none"));
    json_object_set_new(perf, "controller", json_boolean(ctl != NULL));
    if (ctl) /* poll round trips and TCP retransmits: machine and network, not results */
        json_object_set_new(perf, "controller_comms", run_ctl_comms_perf(ctl));
    sf_clock_jitter_t j = sf_clock_jitter(clk);
    json_object_set_new(perf, "realtime", json_boolean(realtime));
    json_object_set_new(perf, "speed_factor", json_real(realtime ? speed : 0));
    json_object_set_new(perf, "step_jitter",
                        json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)j.n, "mean_us",
                                  j.mean_us, "p95_us", j.p95_us, "max_us", j.max_us));
    json_object_set_new(perf, "lamp_msgs", json_integer((json_int_t)run_units_lamp_msgs(units)));
    json_object_set_new(perf, "lamp_msgs_applied", json_integer((json_int_t)sx->lamp_msgs));
    json_object_set_new(rep, "perf", perf);
    json_decref(sim_perf);
    if (bridge) {
        json_t *hil = run_bridge_report(bridge, &j, wall_s);
        if (!hil) {
            json_decref(rep);
            return NULL;
        }
        json_object_set_new(rep, "hil", hil);
    }
    return rep;
}

int sf_runner_run(const sf_runner_opts_t *o, sf_runner_result_t *res)
{
    if (!res)
        return -1;
    memset(res, 0, sizeof *res);
    if (!o || !o->sc || (o->realtime && !(o->speed > 0)) || (o->n_extra && !o->extra) ||
        o->n_extra > 8 || (o->curve_secret && (!o->curve_allow || !o->security))) {
        set_err(res->err, sizeof res->err, "run: bad options");
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = o->sc;
    int status = -1;
    void *zctx = o->zctx;
    bool own_ctx = false;
    sf_bus_forwarder_t *fwd = NULL;
    sf_curve_auth_t *auth = NULL;
    run_units_t *units = NULL;
    run_ctl_t *ctl = NULL;
    run_bridge_t *bridge = NULL;
    sf_sim_t *sim = NULL;
    sf_clock_t *clk = NULL;
    uint16_t *ports = NULL;
    snapbuf_t snap = {0};
#ifdef HAVE_SF_VIEW
    sf_runrec_t *rec = NULL;
    double rec_next = 0;
#endif
    atomic_bool stop;
    atomic_init(&stop, false);
    sim_ctx_t sx = {0};
    uint64_t *det_sent = NULL, *det_now = NULL;
    uint32_t n_ix = sc->n_intersections;
    size_t n_alloc = n_ix ? n_ix : 1;
    char why[SF_RUNNER_ERR_MAX] = "";

    if (!zctx) {
        zctx = zmq_ctx_new();
        own_ctx = true;
        if (!zctx) {
            set_err(res->err, sizeof res->err, "run: zmq_ctx_new: %s", zmq_strerror(errno));
            return -1;
        }
    }
    sim = sf_sim_new_checked(sc, why, sizeof why);
    if (!sim) {
        set_err(res->err, sizeof res->err, "run: the simulator refused %s: %s", sc->path,
                why[0] ? why : strerror(errno));
        goto done;
    }
#ifdef HAVE_SF_VIEW
    if (o->runrec_path && !(rec = sf_runrec_new(sc, SF_RUN_RECORD_EVERY_S))) {
        set_err(res->err, sizeof res->err, "run: run record: %s", strerror(errno));
        goto done;
    }
#else
    if (o->runrec_path) {
        set_err(res->err, sizeof res->err, "run: run record: this build has no viewer (SDL2)");
        goto done;
    }
#endif
    const char *pub_ep, *sub_ep;
    if (o->bus_pub && o->bus_sub) {
        snprintf(res->pub_ep, sizeof res->pub_ep, "%s", o->bus_pub);
        snprintf(res->sub_ep, sizeof res->sub_ep, "%s", o->bus_sub);
        pub_ep = res->pub_ep;
        sub_ep = res->sub_ep;
    } else {
        /* Secured: the ZAP handler first (it answers the forwarder's handshakes), admitting
         * the allow-list and this run's own participants. */
        if (o->curve_secret) {
            auth = sf_curve_auth_new(zctx, o->curve_allow);
            if (!auth || sf_curve_auth_allow(auth, o->security->public_key) != 0) {
                set_err(res->err, sizeof res->err, "run: curve: authorised keys %s: %s",
                        o->curve_allow, strerror(errno));
                goto done;
            }
        }
        fwd = sf_bus_forwarder_new_curve(zctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0,
                                         o->curve_secret);
        if (!fwd) {
            set_err(res->err, sizeof res->err, "run: cannot start the bus forwarder: %s",
                    sf_bus_strerror(errno));
            goto done;
        }
        snprintf(res->pub_ep, sizeof res->pub_ep, "%s", sf_bus_forwarder_pub_endpoint(fwd));
        snprintf(res->sub_ep, sizeof res->sub_ep, "%s", sf_bus_forwarder_sub_endpoint(fwd));
        pub_ep = o->inproc ? sf_bus_forwarder_inproc_pub_endpoint(fwd) : res->pub_ep;
        sub_ep = o->inproc ? sf_bus_forwarder_inproc_sub_endpoint(fwd) : res->sub_ep;
    }

    /* Units listen before anyone connects; their ports go to the controller. */
    const char *listen = sc->run.modbus_listen[0] ? sc->run.modbus_listen : "127.0.0.1";
    if (!o->no_units)
        units = run_units_new(sc, listen, sc->run.modbus_base_port, why, sizeof why);
    if (!units && !o->no_units) {
        set_err(res->err, sizeof res->err, "run: %s", why);
        goto done;
    }
    /* Intersections with unit_host set are real units (HIL): the bridge writes their
     * detectors and reads their lamps, and a real unit keeps its own time, so the run
     * goes in real time at factor 1. `sigflow sim` (no_units) leaves unit_host to the
     * processes that join it. */
    bool realtime = o->realtime;
    double speed = o->speed;
    if (!o->no_units) {
        bool none = false;
        bridge = run_bridge_new(sc, &none, why, sizeof why);
        if (!bridge && !none) {
            set_err(res->err, sizeof res->err, "run: %s", why);
            goto done;
        }
        if (bridge) {
            realtime = true;
            speed = 1.0;
            sx.fixed_pace = true;
        }
    }
    ports = calloc(n_alloc, sizeof *ports);
    sx.lamps = calloc(n_alloc * SF_MAX_SG, 1);
    det_sent = calloc(n_alloc, sizeof *det_sent);
    det_now = calloc(n_alloc, sizeof *det_now);
    if (!ports || !sx.lamps || !det_sent || !det_now) {
        set_err(res->err, sizeof res->err, "run: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_alloc * SF_MAX_SG; i++)
        sx.lamps[i] = SF_LAMP_RED; /* the sim's own assumption until lamps arrive */
    for (uint32_t i = 0; i < n_ix; i++)
        ports[i] = run_units_port(units, i);
    if (o->with_controller && units) {
        /* In lockstep nothing answers late but a starved thread: a generous round bound
         * keeps a loaded machine from producing a different report. Half the step timeout
         * (5 s at the default 10 s): a run given a longer step timeout for a loaded machine
         * gets a poll round that long too, and one round never holds a step past it. */
        double step_to = sc->run.step_timeout_s > 0 ? sc->run.step_timeout_s : 10.0;
        int round_ms = (int)(step_to * 500.0);
        ctl = run_ctl_new(sc, listen, ports, realtime ? 0 : round_ms, o->events_path, why,
                          sizeof why);
        if (!ctl) {
            set_err(res->err, sizeof res->err, "run: %s", why);
            goto done;
        }
    }

    const char *names[3 + 8];
    size_t n_names = 0;
    if (units)
        names[n_names++] = "units";
    if (ctl)
        names[n_names++] = "controller";
    if (bridge)
        names[n_names++] = "bridge";
    for (size_t i = 0; i < o->n_extra; i++)
        names[n_names++] = o->extra[i];
    const char *clk_topics[] = {"lamps", "cmd", "summary"};
    uint32_t step_ds = (uint32_t)llround(sc->run.step_s * 10.0);
    sf_clock_config_t cfg = {.name = "sim",
                             .scenario = sc->name,
                             .seed = sc->run.seed,
                             .step_ds = step_ds ? step_ds : 1,
                             .start_k = 0,
                             .start_tod_ds = (sc->run.start_tod_s % 86400u) * 10u,
                             .n_expected = n_names,
                             .expected = names,
                             .register_timeout_s = REGISTER_TIMEOUT_S,
                             .step_timeout_s =
                                 sc->run.step_timeout_s > 0 ? sc->run.step_timeout_s : 10.0,
                             .realtime = realtime,
                             .speed_factor = realtime ? speed : 1.0,
                             .topics = clk_topics,
                             .n_topics = 3,
                             .security = o->security};
    clk = sf_clock_new(zctx, pub_ep, sub_ep, &cfg);
    if (!clk) {
        set_err(res->err, sizeof res->err, "run: clock: %s", sf_bus_strerror(errno));
        goto done;
    }
    run_bus_t bus = {
        .zctx = zctx, .pub_ep = pub_ep, .sub_ep = sub_ep, .stop = &stop, .security = o->security};
    if (o->ready)
        o->ready(o->ready_arg, 0, res->pub_ep, res->sub_ep);
    if ((units && run_units_start(units, &bus) != 0) || (ctl && run_ctl_start(ctl, &bus) != 0) ||
        (bridge && run_bridge_start(bridge, &bus) != 0)) {
        set_err(res->err, sizeof res->err, "run: cannot start a thread: %s", strerror(errno));
        goto stop_threads;
    }
    sx.sim = sim;
    sx.n_ix = n_ix;
    if (sf_clock_register(clk, sim_on_msg, &sx) != 0) {
        set_err(res->err, sizeof res->err, "run: %s", sf_clock_error(clk));
        goto stop_threads;
    }
    if (o->ready)
        o->ready(o->ready_arg, 1, res->pub_ep, res->sub_ep);

    double duration = sc->run.duration_s;
    double step_s = (double)cfg.step_ds / 10.0;
    uint64_t n_steps = (uint64_t)ceil(duration / step_s - 1e-9);
    uint64_t snap_every = 0;
    if (sc->run.snapshot_hz > 0) {
        snap_every = (uint64_t)llround(1.0 / (sc->run.snapshot_hz * step_s));
        if (snap_every == 0)
            snap_every = 1;
    }
    bool shot_due = o->shot_path != NULL;
    /* The controller does nothing on a step without a due poll or a transit event
     * (controller.h), so its stage runs only on those: the same report, half the round
     * trips. */
    uint64_t poll_every = 1;
    if (ctl) {
        double period = sc->control.poll_period_s > 0 ? sc->control.poll_period_s : 1.0;
        poll_every = (uint64_t)llround(period / step_s);
        if (poll_every < 1)
            poll_every = 1;
    }
    bool transit_since_ctl = false; /* transit events published since the last stage 1 */
    uint64_t ctl_stages = 0;
    double t0 = wall_now();
    uint64_t k = 0;
    bool partial = false;
    for (k = 0; k < n_steps; k++) {
        if ((k & 15) == 0 &&
            (stop_requested(o->stop_fd) || (o->stop_flag && atomic_load(o->stop_flag)))) {
            partial = true;
            break;
        }
        int hold = hold_for_commands(clk, &sx, o);
        if (hold < 0) {
            set_err(res->err, sizeof res->err, "run: while paused: %s",
                    sf_clock_error(clk)[0] ? sf_clock_error(clk) : strerror(errno));
            goto stop_threads;
        }
        if (hold == 0) {
            partial = true;
            break;
        }
        /* Detector inputs of step k: only the intersections whose presence changed
         * (the units keep the last value), before Step(k) on the same socket. */
        for (uint32_t i = 0; i < n_ix; i++) {
            if (det_now[i] == det_sent[i])
                continue;
            Sfbus__DetectorInputs d = SFBUS__DETECTOR_INPUTS__INIT;
            d.k = k;
            d.ix = i;
            d.ix_id = (char *)sc->intersections[i].id;
            d.presence = det_now[i];
            if (sf_clock_publish(clk, &d.base) != 0) {
                set_err(res->err, sizeof res->err, "run: cannot publish detectors: %s",
                        sf_bus_strerror(errno));
                goto stop_threads;
            }
            det_sent[i] = det_now[i];
        }
        if (ctl) {
            if (k % poll_every == 0 || transit_since_ctl) {
                transit_since_ctl = false;
                ctl_stages++;
            } else {
                sf_clock_skip_stages(clk, 1u << 1);
            }
        }
        if (sf_clock_step(clk, sim_on_msg, &sx) != 0) {
            /* A thread that failed says why; the clock names who went silent or left. */
            const char *te = run_units_error(units)[0] ? run_units_error(units)
                             : run_ctl_error(ctl)[0]   ? run_ctl_error(ctl)
                                                       : run_bridge_error(bridge);
            set_err(res->err, sizeof res->err, "%s%s%s", sf_clock_error(clk), te[0] ? "; " : "",
                    te);
            goto stop_threads;
        }
        sf_sim_step(sim);
        for (uint32_t i = 0; i < n_ix; i++)
            sf_sim_detectors(sim, i, &det_now[i], NULL, NULL, 0);
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev)) {
            transit_since_ctl = true;
            if (publish_transit(clk, sc, &ev, k) != 0) {
                set_err(res->err, sizeof res->err, "run: cannot publish a transit event: %s",
                        sf_bus_strerror(errno));
                goto stop_threads;
            }
        }
        if (snap_every && k % snap_every == 0 && publish_snapshot(clk, sim, &snap, k) != 0) {
            set_err(res->err, sizeof res->err, "run: cannot publish a snapshot: %s",
                    sf_bus_strerror(errno));
            goto stop_threads;
        }
#ifdef HAVE_SF_VIEW
        if (rec && record_step(rec, sim, &sx, &snap, k, step_s, &rec_next) != 0) {
            set_err(res->err, sizeof res->err, "run: run record: %s", strerror(errno));
            goto stop_threads;
        }
        if (shot_due && sf_sim_time(sim) + 1e-9 >= o->shot_at_s) {
            shot_due = false;
            if (take_screenshot(o, sim, &sx, &snap, det_now, res->err, sizeof res->err) != 0)
                goto stop_threads;
            res->shot_written = true;
        }
#endif
        if (o->tick && o->tick(o->tick_arg, sf_sim_time(sim), duration) != 0) {
            partial = true;
            k++;
            break;
        }
    }
    double wall_s = wall_now() - t0;
    if (shot_due && !partial) {
        set_err(res->err, sizeof res->err,
                "screenshot: --at %.1f s is after the end of the run (%.1f s)", o->shot_at_s,
                sf_sim_time(sim));
        goto stop_threads;
    }
    sf_clock_bye(clk, partial ? "interrupted" : "end of run");
    atomic_store(&stop, true);
    int urc = run_units_join(units, why, sizeof why);
    if (urc == 0 && run_ctl_join(ctl, why, sizeof why) != 0)
        urc = -1;
    if (urc == 0 && run_bridge_join(bridge, why, sizeof why) != 0)
        urc = -1;
    if (urc != 0) {
        set_err(res->err, sizeof res->err, "%s", why);
        goto done;
    }
    res->partial = partial;
    res->report =
        build_report(o, sim, ctl, clk, wall_s, k, partial, units, &sx, bridge, realtime, speed);
    if (!res->report) {
        set_err(res->err, sizeof res->err, "run: out of memory building the report");
        goto done;
    }
    if (auth) { /* handshakes the forwarder's ZAP handler answered (perf: not results) */
        unsigned long admitted = 0, refused = 0;
        sf_curve_auth_counts(auth, &admitted, &refused);
        json_object_set_new(json_object_get(res->report, "perf"), "curve_clients",
                            json_pack("{s:I, s:I}", "admitted", (json_int_t)admitted, "refused",
                                      (json_int_t)refused));
    }
#ifdef HAVE_SF_VIEW
    if (rec && sf_runrec_save(rec, o->runrec_path, why, sizeof why) != 0) {
        set_err(res->err, sizeof res->err, "run: run record %s", why);
        json_decref(res->report);
        res->report = NULL;
        goto done;
    }
#endif
    publish_summary(clk, &sx, res->report, k, sf_sim_time(sim));
    status = 0;
    goto done;

stop_threads:
    sf_clock_bye(clk, "error");
    atomic_store(&stop, true);
done:
    run_units_join(units, NULL, 0);
    run_ctl_join(ctl, NULL, 0);
    run_bridge_join(bridge, NULL, 0);
    sf_clock_destroy(&clk);
    run_ctl_destroy(&ctl);
    run_bridge_destroy(&bridge);
    run_units_destroy(&units);
    sf_bus_forwarder_destroy(&fwd);
    sf_curve_auth_destroy(&auth);
#ifdef HAVE_SF_VIEW
    sf_runrec_destroy(&rec);
#endif
    sf_sim_destroy(&sim);
    snapbuf_free(&snap);
    free(ports);
    free(sx.lamps);
    free(det_sent);
    free(det_now);
    if (own_ctx) /* bounded: a lost libzmq termination ack must not hang the run (bus.h) */
        (void)sf_bus_ctx_term(zctx, SF_BUS_CTX_TERM_MS);
    return status;
}

/* ---- report output --------------------------------------------------------------- */

int sf_runner_write_report(const json_t *report, const char *path)
{
    if (!report || !path) {
        errno = EINVAL;
        return -1;
    }
    char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(text);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        free(text);
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(text);
        return -1;
    }
    int err = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        off += (size_t)w;
    }
    if (!err && write(fd, "\n", 1) != 1)
        err = errno ? errno : EIO;
    if (!err && fsync(fd) != 0)
        err = errno;
    if (!err && fchmod(fd, 0644) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    free(text);
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        errno = err;
        return -1;
    }
    return 0;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "-";
}

void sf_runner_print_summary(const json_t *rep, FILE *out)
{
    const json_t *net = json_object_get(rep, "network");
    fprintf(out, "%s%s, seed %.0f, %.0f s simulated (warm-up %.0f s)\n", str(rep, "scenario"),
            json_is_true(json_object_get(rep, "partial")) ? " (PARTIAL: interrupted)" : "",
            num(rep, "seed"), num(rep, "sim_seconds"), num(rep, "warmup_s"));
    fprintf(out,
            "network: mean delay %.1f s/veh (LOS %s), %.2f stops/veh, %.0f vehicles completed\n",
            num(net, "mean_delay_s"), str(net, "los"), num(net, "mean_stops"),
            num(net, "vehicles_completed"));
    const json_t *ixs = json_object_get(rep, "intersections");
    if (json_array_size(ixs)) {
        fprintf(out, "\n%-16s %10s %5s %13s %12s\n", "intersection", "delay s", "LOS",
                "volume veh/h", "max queue m");
        size_t i;
        const json_t *ix;
        json_array_foreach(ixs, i, ix)
        {
            double maxq = 0;
            size_t a;
            const json_t *ap;
            json_array_foreach(json_object_get(ix, "approaches"), a, ap)
            {
                double q = num(ap, "max_queue_m");
                if (q > maxq)
                    maxq = q;
            }
            fprintf(out, "%-16s %10.1f %5s %13.0f %12.1f\n", str(ix, "id"), num(ix, "mean_delay_s"),
                    str(ix, "los"), num(ix, "volume_veh_h"), maxq);
        }
    }
    const json_t *lines = json_object_get(json_object_get(rep, "transit"), "lines");
    if (json_array_size(lines)) {
        fprintf(out, "\n%-10s %14s %16s %14s %12s\n", "bus line", "travel time s", "signal delay s",
                "signal stops", "lateness s");
        size_t i;
        const json_t *l;
        json_array_foreach(lines, i, l)
        {
            fprintf(out, "%-10s %14.1f %16.1f %14.2f %12.1f\n", str(l, "id"),
                    num(l, "mean_travel_time_s"), num(l, "mean_signal_delay_s"),
                    num(l, "mean_stops_at_signals"), num(l, "mean_lateness_s"));
        }
    }
    const json_t *pr = json_object_get(rep, "priority");
    fprintf(out, "\npriority: %.0f requests, %.0f granted, %.0f refused\n", num(pr, "requests"),
            num(pr, "granted"), num(pr, "refused"));
    const json_t *perf = json_object_get(rep, "perf");
    if (perf) {
        const json_t *j = json_object_get(perf, "step_jitter");
        fprintf(out,
                "perf: %.2f s wall, %.0f steps (%.0f steps/s), %.0f vehicle updates "
                "(%.0f /s), transport %s%s\n",
                num(perf, "wall_s"), num(perf, "steps"), num(perf, "steps_per_s"),
                num(perf, "vehicle_updates"), num(perf, "vehicle_updates_per_s"),
                str(perf, "transport"),
                json_is_true(json_object_get(perf, "controller")) ? ", controller in the loop"
                                                                  : ", no controller");
        if (json_is_true(json_object_get(perf, "realtime")))
            fprintf(out, "real time x%g: step jitter mean %.0f us, p95 %.0f us, max %.0f us\n",
                    num(perf, "speed_factor"), num(j, "mean_us"), num(j, "p95_us"),
                    num(j, "max_us"));
    }
    const json_t *hil = json_object_get(rep, "hil");
    if (hil) {
        const json_t *lat = json_object_get(hil, "read_latency_ms");
        fprintf(out,
                "hil: %zu real unit(s), %.0f lamp reads (%.1f Hz per unit), %.0f failed; "
                "read latency mean %.2f ms, p95 %.2f ms, max %.2f ms; %.0f detector writes\n",
                json_array_size(json_object_get(hil, "units")), num(hil, "lamp_reads"),
                num(hil, "lamp_read_hz"), num(hil, "read_failures"), num(lat, "mean"),
                num(lat, "p95"), num(lat, "max"), num(hil, "det_writes"));
    }
}
