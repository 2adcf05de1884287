/* controller/controller.c — the central controller core (see controller.h). */
#define _POSIX_C_SOURCE 200809L
#include "controller.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptive.h"
#include "bus_codec.h"
#include "greenwave.h"
#include "detdiag.h"
#include "linkq.h"

#define DL_RETRIES   3  /* read-back mismatches before a plan download is given up */
#define MAX_MB       8  /* mailbox writes per unit per step */
#define ADAPT_PLAN_A 15 /* plan numbers the adaptive mode alternates between (when unused) */
#define ADAPT_PLAN_B 16

/* What the centre keeps per unit besides what it reads (sf_unit_state_t). */
/* Adaptive: split failures per phase (sf_split_fail_sample), tracked continuously; the
 * greens judged and failed since the last detector interval, and in the measurement. */
typedef struct {
    sf_split_fail_t t[SF_MAX_PHASES];
    uint32_t pend[SF_MAX_PHASES][2]; /* [judged, failed] */
    uint32_t meas[SF_MAX_PHASES][2];
} adapt_fail_t;

typedef struct {
    sf_plan_t plans[SF_MAX_PLANS];    /* the plans to download (scenario, offsets adjusted) */
    uint8_t n_plans;                  /* in plans */
    uint8_t dl_next;                  /* next plan index to download, n_plans = none */
    uint8_t dl_retries[SF_MAX_PLANS]; /* read-back mismatches so far */
    bool dl_done[SF_MAX_PLANS];       /* verified, refused or given up */
    int dl_handle;                    /* download in this round, -1 none */
    int dl_idx;                       /* its plan index */
    int dl_adapt;                     /* 1 when the download is an adaptive plan */
    sf_plan_t adapt_plan;             /* last adaptive plan sent */
    int sel_handle;                   /* plan_select in round 2, -1 none */
    uint8_t adapt_select;             /* adaptive plan verified, to select next, 0 none */
    uint8_t sel_plan;                 /* its plan number */
    uint8_t selected;                 /* plan number last selected and accepted, 0 none */
    uint8_t manual_plan;              /* operator's plan (viewer CMD_SELECT_PLAN), 0 none */
    bool reset_due;                   /* operator's fault reset, written at the next poll */
    bool seen;                        /* status read at least once */
    uint64_t missed_seen;             /* health.n_missed at the last watch_unit */
    uint16_t mode, fault, fallback, latched, active_plan; /* last seen, for changes */
    bool identity_logged;             /* an identity mismatch was logged for this link */
    sf_tsp_action_t mb[MAX_MB];       /* mailbox writes in round 2 */
    int mb_handle[MAX_MB];            /* their handles */
    uint8_t n_mb;                     /* in mb */
    uint64_t ad_vol[SF_MAX_DET];      /* adaptive: vehicles counted per detector ... */
    double ad_green_s[SF_MAX_PHASES]; /* ... and green per phase meanwhile, s (plan) */
    double ad_seen_s[SF_MAX_PHASES];  /* ... and the green seen in the unit's status */
    double ad_pend_s[SF_MAX_PHASES];  /* green seen since the last detector interval */
    adapt_fail_t ad_fail;             /* adaptive: split failures */
    double ad_mf[SF_MAX_PHASES];      /* adaptive: max flow learned per phase, veh/h (0 none) */
    bool ad_learned;                  /* the measurement has taught ad_mf already */
    uint64_t ad_n_status;             /* status sweeps sampled so far (st->n_status) */
    int64_t ad_status_ds;             /* status_ds of the last sample, -1 none */
    double ad_meas_s;                 /* ... over this long, s (0 = nothing measured) */
    sf_plan_t ad_cur;                 /* adaptive: the running plan they were measured under */
    uint16_t ad_base_off;             /* adaptive: offset of the scheduled plan, 0.1 s */
    sf_plan_t ad_sched;               /* adaptive: the scheduled plan (its split shares) */
    sf_stage_t stages[SF_MAX_STAGES]; /* max-pressure stages of the intersection */
    int n_stages;                     /* in stages, 0 = not max-pressure */
    int mp_stage;                     /* stage green at the last poll, -1 none */
    double mp_since_s;                /* when it became green */
    bool mp_blocked;                  /* a coil write was refused: off until the mode changes */
    bool mp_mode_sent;                /* actuated mode commanded */
    int mp_handle[4];                 /* coil / mode writes of this step */
    uint8_t n_mp;                     /* in mp_handle */
    uint16_t det_seq;                 /* last detector interval used by adaptive */
    bool det_seen;                    /* det_seq valid */
    uint64_t det_failed;              /* detectors diagnosed failed (detdiag): ignored */
} cunit_t;

struct sf_controller_s {
    const sf_scenario_t *sc;                 /* borrowed */
    sf_controller_opts_t opts;               /* copied (log_path not kept) */
    sf_master_t *m;                          /* Modbus master, one unit per intersection */
    sf_eventlog_t *log;                      /* event log */
    sf_tsp_t *tsp;                           /* transit priority */
    cunit_t *cu;                             /* per intersection */
    bool *online;                            /* per intersection, for the TSP */
    sf_link_state_t *prev;                   /* per intersection: link state before the round */
    uint32_t n;                              /* intersections */
    double step_s;                           /* run.step_s */
    uint64_t poll_every;                     /* steps between polls (>= 1) */
    bool started;                            /* a step was done */
    uint64_t last_k;                         /* last step */
    uint64_t next_poll_k;                    /* first step of the next poll */
    uint16_t hb;                             /* heartbeat counter */
    bool transit_pending;                    /* events came since the last decision */
    sf_tsp_action_t act[SF_TSP_MAX_PENDING]; /* scratch for decisions */
    uint64_t plans_sent, plans_verified, plans_refused, plans_mismatch, plans_given_up;
    uint64_t selects, selects_refused, adapt_changes, mailbox_refused;
    uint16_t ad_cycle_ds; /* adaptive group's cycle, 0.1 s (0 = scheduled plans still run) */
    uint32_t ad_epoch_ds; /* its reference: common cycles start at t = epoch mod cycle */
    double ad_decided_s;  /* time of the group's last decision, s */
    uint16_t *ad_base;    /* per intersection: scratch, the members' base offsets ... */
    uint16_t *ad_cs;      /* ... and coordinated green starts, 0.1 s */
    bool prio_off;        /* operator turned transit priority off */
    sf_linkq_t *lq;       /* link vehicle estimates for max-pressure, NULL when none uses it */
    sf_detdiag_t *dd;     /* detector diagnostics of the units whose detectors are polled */
    sf_gw_corridor_t *gw; /* the green wave's corridor as optimised at start, NULL without */
    uint32_t gw_node[SF_GW_MAX_NODES]; /* ... its nodes' intersection indices */
    sf_gw_opts_t gw_opts;              /* ... and the optimiser's options and weights */
};

void sf_controller_opts_default(sf_controller_opts_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->round_timeout_ms = 100;
    o->offline_after = 3;
    o->backoff_min_s = 1;
    o->backoff_max_s = 30;
}

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void ev(sf_controller_t *c, double t, uint32_t i, sf_event_kind_t kind, json_t *d)
{
    sf_eventlog_add(c->log, t, i < c->n ? c->sc->intersections[i].id : NULL, kind, d);
}

/* Offsets of the coordinated plans from the green-wave optimiser (planner's functions). */
static int apply_greenwave(sf_controller_t *c, char *err, size_t len)
{
    sf_gw_source_t src = {.plan_id = 0,
                          .speed_mps = 0,
                          .line_idx = -1,
                          .queue_clearance = c->sc->control.greenwave.queue_clearance};
    sf_gw_corridor_t cor;
    uint32_t node_ix[SF_GW_MAX_NODES];
    uint8_t plan_idx[SF_GW_MAX_NODES];
    double off[SF_GW_MAX_NODES];
    sf_gw_opts_t go;
    sf_gw_band_t band;
    char why[160] = "";
    if (sf_gw_from_scenario(c->sc, &src, &cor, node_ix, plan_idx, why, sizeof why) < 0) {
        seterr(err, len, "green wave: %s", why);
        return -1;
    }
    sf_gw_opts_default(&go);
    go.two_way = c->sc->control.greenwave.two_way;
    /* the scenario's band weights, else MAXBAND's from the volumes (as sigflow plan) */
    if (sf_gw_weights(c->sc, &cor, &go.weight_out, &go.weight_in) < 0 ||
        sf_gw_optimise(&cor, &go, off, &band) < 0) {
        seterr(err, len, "green wave: optimisation failed");
        return -1;
    }
    /* kept for the adaptive mode, which optimises again for its cycles and splits */
    c->gw = malloc(sizeof *c->gw);
    if (!c->gw) {
        seterr(err, len, "green wave: out of memory");
        return -1;
    }
    *c->gw = cor;
    memcpy(c->gw_node, node_ix, sizeof c->gw_node);
    c->gw_opts = go;
    for (uint32_t j = 0; j < cor.n; j++) {
        cunit_t *u = &c->cu[node_ix[j]];
        sf_plan_t *p = &u->plans[plan_idx[j]];
        long ds = lround(off[j] * 10.0) % (long)p->cycle_ds;
        p->offset_ds = (uint16_t)(ds < 0 ? ds + p->cycle_ds : ds);
    }
    ev(c, 0, UINT32_MAX, SF_EV_PLAN,
       json_pack("{s:s, s:i, s:f, s:f, s:f}", "event", "greenwave_offsets", "nodes", (int)cor.n,
                 "band_out_s", band.b_out_s, "band_in_s", band.b_in_s, "efficiency",
                 band.efficiency));
    return 0;
}

sf_controller_t *sf_controller_new(const sf_scenario_t *sc, const sf_endpoint_t *eps,
                                   const sf_controller_opts_t *opts, char *err, size_t err_len)
{
    sf_controller_t *c = NULL;
    sf_endpoint_t *own = NULL;
    const char **ids = NULL;
    if (!sc || sc->n_intersections == 0) {
        seterr(err, err_len, "no intersections");
        errno = EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    if (opts)
        c->opts = *opts;
    else
        sf_controller_opts_default(&c->opts);
    c->sc = sc;
    c->n = sc->n_intersections;
    c->step_s = sc->run.step_s > 0 ? sc->run.step_s : 0.1;
    double period = sc->control.poll_period_s > 0 ? sc->control.poll_period_s : 1.0;
    c->poll_every = (uint64_t)llround(period / c->step_s);
    if (c->poll_every < 1)
        c->poll_every = 1;
    if (c->opts.round_timeout_ms <= 0 || c->opts.offline_after == 0 ||
        !(c->opts.backoff_min_s > 0) || c->opts.backoff_max_s < c->opts.backoff_min_s) {
        seterr(err, err_len, "bad options (round timeout, offline_after, back-off)");
        errno = EINVAL;
        goto fail;
    }
    own = calloc(c->n, sizeof *own);
    ids = calloc(c->n, sizeof *ids);
    c->cu = calloc(c->n, sizeof *c->cu);
    c->online = calloc(c->n, sizeof *c->online);
    c->prev = calloc(c->n, sizeof *c->prev);
    c->ad_base = calloc(c->n, sizeof *c->ad_base);
    c->ad_cs = calloc(c->n, sizeof *c->ad_cs);
    if (!own || !ids || !c->cu || !c->online || !c->prev || !c->ad_base || !c->ad_cs)
        goto fail;
    for (uint32_t i = 0; i < c->n; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        ids[i] = ix->id;
        if (eps) {
            own[i] = eps[i];
        } else if (ix->unit_host[0]) {
            snprintf(own[i].host, sizeof own[i].host, "%s", ix->unit_host);
            own[i].port = ix->unit_port;
        } else {
            snprintf(own[i].host, sizeof own[i].host, "%s",
                     sc->run.modbus_listen[0] ? sc->run.modbus_listen : "127.0.0.1");
            own[i].port = sc->run.modbus_base_port ? (uint16_t)(sc->run.modbus_base_port + i) : 0;
        }
        if (own[i].port == 0) {
            seterr(err, err_len, "intersection %s: no unit port (give --unit or a base port)",
                   ix->id);
            errno = EINVAL;
            goto fail;
        }
        cunit_t *u = &c->cu[i];
        u->n_plans = ix->n_plans;
        memcpy(u->plans, ix->plans, sizeof u->plans);
        u->dl_handle = u->sel_handle = -1;
        u->mp_stage = -1;
        u->ad_status_ds = -1;
        if (ix->strategy == SF_STRAT_MAX_PRESSURE) {
            u->n_stages = sf_mp_stages(ix, u->stages, SF_MAX_STAGES);
            if (u->n_stages <= 0) {
                seterr(err, err_len, "intersection %s: no max-pressure stages", ix->id);
                errno = EINVAL;
                goto fail;
            }
        }
    }
    for (uint32_t i = 0; i < c->n && !c->lq; i++)
        if (sc->intersections[i].strategy == SF_STRAT_MAX_PRESSURE) {
            c->lq = sf_linkq_new(sc, NULL);
            if (!c->lq) {
                seterr(err, err_len, "max-pressure link estimates: %s", strerror(errno));
                goto fail;
            }
        }
    c->dd = sf_detdiag_new(sc, NULL);
    if (!c->dd) {
        seterr(err, err_len, "detector diagnostics: %s", strerror(errno));
        goto fail;
    }
    if (c->opts.greenwave && apply_greenwave(c, err, err_len) < 0) {
        errno = EINVAL;
        goto fail;
    }
    sf_master_opts_t mo;
    sf_master_opts_default(&mo);
    mo.round_timeout_ms = c->opts.round_timeout_ms;
    mo.health.offline_after = c->opts.offline_after;
    mo.health.backoff_min_ds = (uint32_t)llround(c->opts.backoff_min_s * 10);
    mo.health.backoff_max_ds = (uint32_t)llround(c->opts.backoff_max_s * 10);
    c->m = sf_master_new(c->n, own, ids, &mo);
    if (!c->m) {
        seterr(err, err_len, "Modbus master: %s (a unit host that does not resolve?)",
               strerror(errno));
        goto fail;
    }
    c->log = sf_eventlog_new(c->opts.log_path);
    if (!c->log) {
        seterr(err, err_len, "event log %s: %s", c->opts.log_path, strerror(errno));
        goto fail;
    }
    sf_eventlog_set_sink(c->log, c->opts.sink, c->opts.sink_ctx);
    c->tsp = sf_tsp_new(sc, c->log);
    if (!c->tsp)
        goto fail;
    free(own);
    free(ids);
    return c;
fail : {
    int e = errno ? errno : ENOMEM;
    free(own);
    free(ids);
    sf_controller_destroy(&c);
    errno = e;
    return NULL;
}
}

void sf_controller_destroy(sf_controller_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_controller_t *c = *self_p;
    sf_master_destroy(&c->m);
    sf_tsp_destroy(&c->tsp);
    sf_eventlog_destroy(&c->log);
    sf_linkq_destroy(&c->lq);
    sf_detdiag_destroy(&c->dd);
    free(c->cu);
    free(c->online);
    free(c->prev);
    free(c->ad_base);
    free(c->ad_cs);
    free(c->gw);
    free(c);
    *self_p = NULL;
}

int sf_controller_operator(sf_controller_t *ctl, const ProtobufCMessage *msg)
{
    if (!ctl || !msg || sf_bus_type_of(msg) != SF_BUS_CMD) {
        errno = EINVAL;
        return -1;
    }
    const Sfbus__ViewCommand *m = (const Sfbus__ViewCommand *)msg;
    double t = ctl->started ? (double)ctl->last_k * ctl->step_s : 0;
    switch (m->cmd) {
    case SFBUS__COMMAND__CMD_TOGGLE_PRIORITY:
        ctl->prio_off = !ctl->prio_off;
        ev(ctl, t, UINT32_MAX, SF_EV_MODE,
           json_pack("{s:s, s:b}", "operator", "priority", "enabled", !ctl->prio_off));
        return 1;
    case SFBUS__COMMAND__CMD_SELECT_PLAN: {
        if (m->ix >= ctl->n) {
            errno = EINVAL;
            return -1;
        }
        const sf_intersection_t *ix = &ctl->sc->intersections[m->ix];
        bool exists = false;
        for (uint8_t p = 0; p < ix->n_plans; p++)
            exists |= ix->plans[p].id == m->plan;
        if (!exists) {
            errno = ENOENT;
            return -1;
        }
        ctl->cu[m->ix].manual_plan = (uint8_t)m->plan;
        ev(ctl, t, m->ix, SF_EV_PLAN,
           json_pack("{s:s, s:i}", "operator", "plan", "plan", (int)m->plan));
        return 1;
    }
    case SFBUS__COMMAND__CMD_FAULT_RESET:
        if (m->ix >= ctl->n) {
            errno = EINVAL;
            return -1;
        }
        ctl->cu[m->ix].reset_due = true;
        ev(ctl, t, m->ix, SF_EV_FAULT, json_pack("{s:s}", "operator", "fault reset"));
        return 1;
    default:
        return 0; /* the clock's commands (pause, step, speed) */
    }
}

int sf_controller_transit(sf_controller_t *ctl, const sf_tsp_event_t *e)
{
    if (!ctl || !e) {
        errno = EINVAL;
        return -1;
    }
    if (ctl->prio_off && e->check_in)
        return 0; /* priority off: no new requests; check-outs still end the old ones */
    double t = ctl->started ? (double)ctl->last_k * ctl->step_s : 0;
    if (sf_tsp_event(ctl->tsp, t, e) < 0)
        return -1;
    ctl->transit_pending = true;
    return 0;
}

int sf_controller_transit_msg(sf_controller_t *ctl, const ProtobufCMessage *msg)
{
    if (!ctl || !msg) {
        errno = EINVAL;
        return -1;
    }
    sf_tsp_event_t e = {0};
    const char *bus;
    int type = sf_bus_type_of(msg);
    if (type == SF_BUS_TRANSIT_IN) {
        const Sfbus__TransitCheckIn *m = (const Sfbus__TransitCheckIn *)msg;
        e.check_in = true;
        bus = m->bus_id;
        e.ix = m->ix;
        e.movement = m->movement;
        e.eta_s = m->eta_s;
        e.lateness_s = m->lateness_s;
    } else if (type == SF_BUS_TRANSIT_OUT) {
        const Sfbus__TransitCheckOut *m = (const Sfbus__TransitCheckOut *)msg;
        bus = m->bus_id;
        e.ix = m->ix;
        e.movement = m->movement;
        e.eta_s = 0;
        e.lateness_s = m->lateness_s;
    } else {
        errno = EINVAL;
        return -1;
    }
    if (!bus || strlen(bus) >= sizeof e.bus_id) {
        errno = EINVAL;
        return -1;
    }
    snprintf(e.bus_id, sizeof e.bus_id, "%s", bus);
    return sf_controller_transit(ctl, &e);
}

/* ---- one step ---------------------------------------------------------------------- */

static const char *mode_name(uint16_t code)
{
    switch (code) {
    case 0x10:
        return "centre_fixed";
    case 0x11:
        return "centre_actuated";
    case 0x12:
        return "centre_coordinated";
    case 0x20:
        return "local_fixed";
    case 0x21:
        return "local_actuated";
    case 0x22:
        return "local_coordinated";
    case 0x31:
        return "flash";
    case 0x32:
        return "all_red";
    case 0x33:
        return "all_off";
    }
    return "unknown";
}

/* Queue the next plan still to download (one per unit per round). */
static void queue_download(sf_controller_t *c, uint32_t i)
{
    cunit_t *u = &c->cu[i];
    u->dl_handle = -1;
    while (u->dl_next < u->n_plans && u->dl_done[u->dl_next])
        u->dl_next++;
    if (u->dl_next >= u->n_plans)
        return;
    u->dl_idx = u->dl_next;
    u->dl_adapt = 0;
    u->dl_handle = sf_master_queue_plan(c->m, i, &c->sc->intersections[i], &u->plans[u->dl_next]);
    if (u->dl_handle >= 0)
        c->plans_sent++;
}

static bool plans_ready(const cunit_t *u)
{
    for (uint8_t p = 0; p < u->n_plans; p++)
        if (!u->dl_done[p])
            return false;
    return true;
}

/* Outcome of a plan download and its read-back. */
static void check_download(sf_controller_t *c, uint32_t i, double t)
{
    cunit_t *u = &c->cu[i];
    if (u->dl_handle < 0)
        return;
    const sf_intersection_t *ix = &c->sc->intersections[i];
    const sf_plan_t *sent = u->dl_adapt ? &u->adapt_plan : &u->plans[u->dl_idx];
    sf_mreq_outcome_t o = sf_master_outcome(c->m, i, u->dl_handle);
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    int h = u->dl_handle;
    u->dl_handle = -1;
    if (o == SF_MREQ_EXCEPTION) {
        c->plans_refused++;
        if (!u->dl_adapt)
            u->dl_done[u->dl_idx] = true; /* refused: not retried until it changes */
        ev(c, t, i, SF_EV_PLAN,
           json_pack("{s:s, s:i, s:i, s:i, s:b}", "event", "plan_refused", "plan", (int)sent->id,
                     "exception", sf_master_exception(c->m, i, h), "unit_error",
                     (int)st->plan_dl_error, "adaptive", u->dl_adapt));
        return;
    }
    if (o != SF_MREQ_OK)
        return; /* missed: tried again at the next poll */
    if (sf_master_plan_equal(ix, sent, &st->plan_rd)) {
        c->plans_verified++;
        if (!u->dl_adapt)
            u->dl_done[u->dl_idx] = true;
        ev(c, t, i, SF_EV_PLAN,
           json_pack("{s:s, s:i, s:i, s:i, s:b}", "event", "plan_verified", "plan", (int)sent->id,
                     "cycle_ds", (int)sent->cycle_ds, "offset_ds", (int)sent->offset_ds, "adaptive",
                     u->dl_adapt));
        if (u->dl_adapt) /* switch to it at the unit's next safe point (cycle boundary) */
            u->adapt_select = sent->id;
        return;
    }
    c->plans_mismatch++;
    bool give_up = u->dl_adapt || ++u->dl_retries[u->dl_idx] >= DL_RETRIES;
    if (give_up && !u->dl_adapt) {
        u->dl_done[u->dl_idx] = true;
        c->plans_given_up++;
    }
    ev(c, t, i, SF_EV_PLAN,
       json_pack("{s:s, s:i, s:i, s:i, s:i, s:b}", "event", "plan_readback_mismatch", "plan",
                 (int)sent->id, "read_plan", (int)st->plan_rd.id, "read_cycle_ds",
                 (int)st->plan_rd.cycle_ds, "read_offset_ds", (int)st->plan_rd.offset_ds, "retry",
                 !give_up));
}

/* Changes in what the unit reports: comms, identity, mode, fallback, fault. */
static void watch_unit(sf_controller_t *c, uint32_t i, double t, sf_link_state_t was)
{
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    cunit_t *u = &c->cu[i];
    if (st->health.state != was) {
        if (st->health.state == SF_LINK_ONLINE) {
            ev(c, t, i, SF_EV_COMMS,
               json_pack("{s:s, s:I, s:I}", "event", "online", "reconnects",
                         (json_int_t)st->health.n_reconnects, "missed_total",
                         (json_int_t)st->health.n_missed));
            /* A unit that comes (back) may have restarted: download and verify again. */
            memset(u->dl_done, 0, sizeof u->dl_done);
            memset(u->dl_retries, 0, sizeof u->dl_retries);
            u->dl_next = 0;
            u->selected = 0;
            u->identity_logged = false;
        } else if (st->health.state == SF_LINK_OFFLINE) {
            ev(c, t, i, SF_EV_COMMS,
               json_pack("{s:s, s:i, s:f}", "event", "offline", "missed",
                         (int)st->health.missed_run, "next_try_s",
                         (double)st->health.next_try_ds / 10.0));
            u->seen = false;
        }
    } else if (was == SF_LINK_OFFLINE && st->health.n_missed > u->missed_seen) {
        /* A reconnect attempt failed: logged with the back-off to the next one, so the
         * log shows the spacing growing (health.h) and every attempt made. */
        ev(c, t, i, SF_EV_COMMS,
           json_pack("{s:s, s:i, s:f}", "event", "reconnect_failed", "missed",
                     (int)st->health.missed_run, "next_try_s",
                     (double)st->health.next_try_ds / 10.0));
    }
    u->missed_seen = st->health.n_missed;
    if (st->health.state != SF_LINK_ONLINE || st->status_ds < 0)
        return;
    if (!st->identity_ok && !u->identity_logged) {
        u->identity_logged = true;
        ev(c, t, i, SF_EV_COMMS,
           json_pack("{s:s, s:i, s:s}", "event", "identity_mismatch", "protocol_version",
                     (int)st->protocol_version, "unit_id", st->unit_id));
    }
    if (u->seen && st->mode != u->mode) {
        u->mp_blocked = false;
        u->mp_mode_sent = false;
    }
    if (u->seen && st->mode != u->mode)
        ev(c, t, i, SF_EV_MODE,
           json_pack("{s:s, s:s, s:s}", "event", "mode_change", "from", mode_name(u->mode), "to",
                     mode_name(st->mode)));
    if ((!u->seen || st->local_fallback != u->fallback) && st->local_fallback)
        ev(c, t, i, SF_EV_FAULT, json_pack("{s:s}", "event", "local_fallback"));
    if (u->seen && !st->local_fallback && u->fallback)
        ev(c, t, i, SF_EV_FAULT, json_pack("{s:s}", "event", "fallback_ended"));
    if ((!u->seen && st->fault_code) || (u->seen && st->fault_code != u->fault))
        ev(c, t, i, SF_EV_FAULT,
           json_pack("{s:s, s:i, s:b}", "event", st->fault_code ? "fault" : "fault_cleared", "code",
                     (int)st->fault_code, "latched", st->fault_latched != 0));
    if (u->seen && st->mode == 0x31 && u->mode != 0x31)
        ev(c, t, i, SF_EV_FAULT,
           json_pack("{s:s, s:b}", "event", "flash", "latched", st->fault_latched != 0));
    if (u->seen && st->active_plan != u->active_plan)
        ev(c, t, i, SF_EV_PLAN,
           json_pack("{s:s, s:i, s:i}", "event", "plan_switched", "from", (int)u->active_plan, "to",
                     (int)st->active_plan));
    u->mode = st->mode;
    u->fault = st->fault_code;
    u->fallback = st->local_fallback;
    u->latched = st->fault_latched;
    u->active_plan = st->active_plan;
    u->seen = true;
}

/* Phase-number mask (bit n-1 = phase n) of the phase-index mask m. */
static uint16_t to_phase_no_mask(const sf_intersection_t *ix, uint16_t m)
{
    uint16_t out = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (m & (1u << p))
            out = (uint16_t)(out | (1u << (ix->phases[p].id - 1)));
    return out;
}

static void mp_coils(sf_controller_t *c, uint32_t i, sf_reg_id_t id, uint16_t phase_no_mask)
{
    cunit_t *u = &c->cu[i];
    uint8_t bits[SF_MAX_PHASES];
    for (int b = 0; b < SF_MAX_PHASES; b++)
        bits[b] = (uint8_t)((phase_no_mask >> b) & 1u);
    int h = sf_master_queue_coils(c->m, i, id, 0, bits, SF_MAX_PHASES);
    if (h >= 0 && u->n_mp < 4)
        u->mp_handle[u->n_mp++] = h;
}

/* Max-pressure stage selection (sf_mp_decide_linkq: linkq's estimates, the ring sequence,
 * the switch's lost time), through the phase control coils in centre actuated mode: hold
 * the stage while it should stay, force it off and call the next one when it should
 * switch. */
static void max_pressure(sf_controller_t *c, uint32_t i, double t)
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    cunit_t *u = &c->cu[i];
    u->n_mp = 0;
    if (u->n_stages <= 0 || u->mp_blocked || !c->lq)
        return;
    if (st->mode != 0x11) { /* centre actuated: the mode where holds and force-offs apply */
        if (!u->mp_mode_sent && (st->mode == 0x10 || st->mode == 0x12)) {
            uint16_t v = 2; /* mode_command: actuated */
            int h = sf_master_queue_write(c->m, i, SF_R_MODE_COMMAND, 0, &v, 1);
            if (h >= 0) {
                u->mp_handle[u->n_mp++] = h;
                u->mp_mode_sent = true;
                ev(c, t, i, SF_EV_MODE,
                   json_pack("{s:s, s:s}", "event", "mode_command", "mode", "actuated"));
            }
        }
        return;
    }
    uint16_t greens = st->phase_status[2];
    int cur = -1;
    for (int k = 0; k < u->n_stages; k++)
        if (greens && to_phase_no_mask(ix, u->stages[k].phase_mask) == greens)
            cur = k;
    if (cur < 0)
        return; /* between stages (clearance): nothing to decide */
    if (cur != u->mp_stage) {
        u->mp_stage = cur;
        u->mp_since_s = t;
    }
    double sp[SF_MAX_STAGES];
    sf_mp_decision_t d;
    if (sf_mp_decide_linkq(c->sc, c->lq, i, u->stages, u->n_stages, cur, t - u->mp_since_s,
                           st->phase_status[6], sp, &d) < 0)
        return;
    uint16_t cur_no = to_phase_no_mask(ix, u->stages[cur].phase_mask);
    if (d.switch_stage) {
        uint16_t next_no = to_phase_no_mask(ix, u->stages[d.stage].phase_mask);
        mp_coils(c, i, SF_R_PHASE_HOLD, 0);
        mp_coils(c, i, SF_R_PHASE_FORCE_OFF, (uint16_t)(cur_no & ~next_no));
        mp_coils(c, i, SF_R_PHASE_CALL, next_no);
        ev(c, t, i, SF_EV_ADAPTIVE,
           json_pack("{s:s, s:i, s:i, s:i, s:f, s:f}", "event", "mp_switch", "from_phases",
                     (int)cur_no, "to_phases", (int)next_no, "reason", (int)d.reason,
                     "pressure_from", sp[cur], "pressure_to", sp[d.stage]));
    } else {
        mp_coils(c, i, SF_R_PHASE_FORCE_OFF, 0);
        mp_coils(c, i, SF_R_PHASE_HOLD, cur_no);
    }
}

/* SCATS-like mode keeps coordination: the unit must run its plans in centre coordinated
 * mode (its start-up mode for an adaptive intersection is centre fixed, which times the
 * splits as fixed durations with no offset and no common cycle). Commanded once per mode
 * change, when the running plan has coordinated phases; a refusal is logged (check_mp)
 * and not retried until the mode changes. */
static void adapt_mode(sf_controller_t *c, uint32_t i, double t)
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    cunit_t *u = &c->cu[i];
    if (ix->strategy != SF_STRAT_ADAPTIVE || u->mp_mode_sent || u->mp_blocked || st->mode != 0x10 ||
        u->n_mp >= 4)
        return;
    bool coord = false;
    for (uint8_t p = 0; p < u->n_plans; p++)
        if (u->plans[p].id == st->active_plan && u->plans[p].coord_phase_mask)
            coord = true;
    if (u->adapt_plan.id && u->adapt_plan.id == st->active_plan && u->adapt_plan.coord_phase_mask)
        coord = true;
    if (!coord)
        return;
    uint16_t v = 3; /* mode_command: coordinated */
    int h = sf_master_queue_write(c->m, i, SF_R_MODE_COMMAND, 0, &v, 1);
    if (h < 0)
        return;
    u->mp_handle[u->n_mp++] = h;
    u->mp_mode_sent = true;
    ev(c, t, i, SF_EV_MODE,
       json_pack("{s:s, s:s}", "event", "mode_command", "mode", "coordinated"));
}

/* Outcome of the max-pressure writes: a refusal is logged and stops max-pressure at this
 * unit until its mode changes (never retried blindly). */
static void check_mp(sf_controller_t *c, uint32_t i, double t)
{
    cunit_t *u = &c->cu[i];
    for (uint8_t b = 0; b < u->n_mp; b++) {
        if (sf_master_outcome(c->m, i, u->mp_handle[b]) != SF_MREQ_EXCEPTION)
            continue;
        u->mp_blocked = true;
        ev(c, t, i, SF_EV_ADAPTIVE,
           json_pack("{s:s, s:i}", "event", "mp_write_refused", "exception",
                     sf_master_exception(c->m, i, u->mp_handle[b])));
        break;
    }
    u->n_mp = 0;
}

/* ---- SCATS-like adaptation --------------------------------------------------------
 *
 * Measure: every detector interval the unit completes (det_seq), its counts are added up
 * per detector with the green each phase had meanwhile (the running plan's green times
 * the cycles in the interval), as long as the plan the centre last chose is running and
 * nothing is pending. Decide: once every adaptive intersection of the coordinated group
 * has measured decide_every_s, the group's cycle follows its critical intersection (the
 * largest cycle any member wants) with a dead band and a step limit
 * (sf_adapt_group_cycle); each member's splits move towards equal DS
 * (sf_adapt_step) and its new plan is sent only if it differs enough
 * (sf_adapt_significant). A cycle change moves the group's reference to a common cycle
 * start (sf_adapt_rebase), so relative offsets hold and no unit has to go through an offset
 * transition because of it. An isolated adaptive intersection (its plan has no coordinated
 * phase) decides alone with its own cycle. Units are assumed to share the default sync
 * reference (midnight: coord_sync 0, as sigflow run and the unit's defaults set it). */

/* The plan the unit runs, as the centre knows it; NULL when unknown. */
static const sf_plan_t *running_plan(const cunit_t *u, const sf_unit_state_t *st)
{
    if (u->adapt_plan.id && u->adapt_plan.id == st->active_plan)
        return &u->adapt_plan;
    for (uint8_t p = 0; p < u->n_plans; p++)
        if (u->plans[p].id == st->active_plan)
            return &u->plans[p];
    return NULL;
}

static void adapt_reset(cunit_t *u)
{
    memset(u->ad_vol, 0, sizeof u->ad_vol);
    memset(u->ad_green_s, 0, sizeof u->ad_green_s);
    memset(u->ad_seen_s, 0, sizeof u->ad_seen_s);
    memset(u->ad_fail.meas, 0, sizeof u->ad_fail.meas);
    u->ad_meas_s = 0;
    u->ad_learned = false;
}

/* Split failures of every phase from one status sample: its signal from the phase status
 * (reds, yellows, greens by phase number) and whether any of its stop-bar presence
 * detectors is occupied (det_presence, polled for adaptive units); greens judged are kept
 * apart, like the green seen, until their detector interval completes. */
static void adapt_sample_failures(const sf_intersection_t *ix, const sf_unit_state_t *st,
                                  cunit_t *u, double dt_s)
{
    for (uint8_t p = 0; p < ix->n_phases && p < SF_MAX_PHASES; p++) {
        uint8_t no = ix->phases[p].id;
        if (no < 1 || no > 16)
            continue;
        sf_sig_t sig = (st->phase_status[2] >> (no - 1) & 1u)   ? SF_SIG_GREEN
                       : (st->phase_status[1] >> (no - 1) & 1u) ? SF_SIG_YELLOW
                                                                : SF_SIG_RED;
        bool occ = false;
        for (uint8_t d = 0; d < ix->n_det && d < 64; d++)
            if (ix->det[d].kind == SF_DET_PRESENCE && (ix->det[d].phase_mask >> p & 1u) &&
                (st->det_presence >> d & 1u) && !(u->det_failed >> d & 1u)) /* failed: ignored */
                occ = true;
        uint32_t before = u->ad_fail.t[p].failures;
        if (sf_split_fail_sample(&u->ad_fail.t[p], sig, occ, dt_s) == 1) {
            u->ad_fail.pend[p][0]++;
            u->ad_fail.pend[p][1] += u->ad_fail.t[p].failures - before;
        }
    }
}

/* The green each phase has, from every new status sweep (phase_status greens at the poll
 * period): time since the previous sample to the phases green now. Kept apart until the
 * detector interval it belongs to completes. */
static void adapt_sample_greens(const sf_intersection_t *ix, const sf_unit_state_t *st, cunit_t *u)
{
    if (st->n_status == u->ad_n_status)
        return;
    u->ad_n_status = st->n_status;
    if (u->ad_status_ds >= 0 && st->status_ds > u->ad_status_ds) {
        double dt = (double)(st->status_ds - u->ad_status_ds) / 10.0;
        (void)sf_adapt_green_sample(ix, st->phase_status[2], dt, u->ad_pend_s);
        adapt_sample_failures(ix, st, u, dt);
    }
    u->ad_status_ds = st->status_ds;
}

/* Part 1: add the unit's newest detector interval to the measurement. */
static void adapt_collect(sf_controller_t *c, uint32_t i)
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    cunit_t *u = &c->cu[i];
    if (ix->strategy != SF_STRAT_ADAPTIVE || !c->online[i] || !plans_ready(u)) {
        u->ad_status_ds = -1; /* a gap in the samples: none spans it */
        return;
    }
    adapt_sample_greens(ix, st, u);
    if (!u->det_seen || st->det_seq == u->det_seq) {
        if (!u->det_seen) {
            memset(u->ad_pend_s, 0, sizeof u->ad_pend_s);
            memset(u->ad_fail.pend, 0, sizeof u->ad_fail.pend);
        }
        u->det_seen = true;
        u->det_seq = st->det_seq;
        return;
    }
    u->det_seq = st->det_seq;
    double seen[SF_MAX_PHASES];
    uint32_t judged[SF_MAX_PHASES][2];
    memcpy(seen, u->ad_pend_s, sizeof seen);
    memset(u->ad_pend_s, 0, sizeof u->ad_pend_s);
    memcpy(judged, u->ad_fail.pend, sizeof judged);
    memset(u->ad_fail.pend, 0, sizeof u->ad_fail.pend);
    const sf_plan_t *cur = running_plan(u, st);
    /* an interval while a change is on its way belongs to no single plan: dropped */
    if (!cur || st->det_interval_s == 0 || cur->cycle_ds == 0 || st->pending_plan ||
        u->dl_handle >= 0 || u->adapt_select || (u->selected && u->selected != st->active_plan)) {
        adapt_reset(u);
        return;
    }
    if (cur != &u->adapt_plan) { /* a scheduled plan: its offset is the member's base */
        u->ad_base_off = cur->offset_ds;
        u->ad_sched = *cur;
    }
    if (u->ad_meas_s > 0 && memcmp(cur, &u->ad_cur, sizeof *cur) != 0)
        adapt_reset(u);
    u->ad_cur = *cur;
    double cycles = st->det_interval_s / (cur->cycle_ds / 10.0);
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        double g = (cur->split_ds[p] - ix->phases[p].yellow_ds - ix->phases[p].red_clear_ds) / 10.0;
        u->ad_green_s[p] += (g > 0 ? g : 0) * cycles;
        u->ad_seen_s[p] += seen[p];
        u->ad_fail.meas[p][0] += judged[p][0];
        u->ad_fail.meas[p][1] += judged[p][1];
    }
    for (uint8_t d = 0; d < ix->n_det; d++)
        u->ad_vol[d] += st->det_volume[d];
    u->ad_meas_s += st->det_interval_s;
}

/* The most vehicles one working detector of phase p counted in the measurement, or -1 when
 * the phase had no green in it or all its detectors failed. The flow DS and the maximum
 * flow both read the busiest lane (SCATS takes the busiest lane). */
static int64_t busiest_count(const sf_intersection_t *ix, const cunit_t *u, uint8_t p)
{
    int64_t n = -1;
    for (uint8_t d = 0; d < ix->n_det && u->ad_green_s[p] > 0; d++) {
        if (!(ix->det[d].phase_mask & (1u << p)) || (u->det_failed >> d & 1u))
            continue;
        int64_t v = u->ad_vol[d] > UINT32_MAX ? UINT32_MAX : (int64_t)u->ad_vol[d];
        if (v > n)
            n = v;
    }
    return n;
}

/* DS per phase from the measurement (flow-based: planner's sf_flow_ds, busiest lane), over
 * the green the phase had available (sf_adapt_green_avail: the plan's, or more when the
 * unit gave it more). */
static void adapt_ds(const sf_intersection_t *ix, const cunit_t *u, double *ds)
{
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        int64_t n = busiest_count(ix, u, p);
        /* a phase whose detectors all failed: no DS, keeps its green */
        ds[p] =
            n < 0 ? -1
                  : sf_flow_ds((uint32_t)n, sf_adapt_green_avail(u->ad_green_s[p], u->ad_seen_s[p]),
                               u->ad_mf[p] > 0 ? u->ad_mf[p] : SF_ADAPT_SAT_VEH_H);
    }
}

/* Max flow per phase learned from the measurement, once (sf_adapt_sat_learn): the busiest
 * lane's count over the same green as adapt_ds, when every judged green failed. Before any
 * DS of a decision is taken. */
static void adapt_learn(const sf_intersection_t *ix, cunit_t *u, const sf_adapt_opts_t *ao)
{
    if (u->ad_learned || ao->sat != SF_ADAPT_SAT_LEARNED)
        return;
    u->ad_learned = true;
    for (uint8_t p = 0; p < ix->n_phases && p < SF_MAX_PHASES; p++) {
        int64_t n = busiest_count(ix, u, p);
        if (n < 0)
            continue;
        double mf = sf_adapt_sat_learn(u->ad_mf[p], (uint32_t)n,
                                       sf_adapt_green_avail(u->ad_green_s[p], u->ad_seen_s[p]),
                                       u->ad_fail.meas[p][0], u->ad_fail.meas[p][1], ao);
        if (mf > 0)
            u->ad_mf[p] = mf;
    }
}

static void adapt_opts(const sf_controller_t *c, sf_adapt_opts_t *ao)
{
    sf_adapt_opts_default(ao);
    if (!c->sc->control.adaptive_split_failure)
        ao->fail_ds = 0; /* off: the flow DS alone */
    ao->spare =
        c->sc->control.adaptive_spare == 1 ? SF_ADAPT_SPARE_COORD : SF_ADAPT_SPARE_PROPORTIONAL;
    ao->sat = c->sc->control.adaptive_sat_flow == 1 ? SF_ADAPT_SAT_LEARNED : SF_ADAPT_SAT_FIXED;
    if (c->sc->control.adaptive_min_cycle_s > 0)
        ao->min_cycle_s = c->sc->control.adaptive_min_cycle_s;
    if (c->sc->control.adaptive_max_cycle_s > 0)
        ao->max_cycle_s = c->sc->control.adaptive_max_cycle_s;
}

/* The DS a decision uses: the flow DS (adapt_ds), raised where greens failed to clear their
 * queue (sf_adapt_ds_failures), the side streets' floor of the scheduled plan's share
 * (sf_adapt_ds_floor), and the full-bay green of turns fed by a bay beside the coordinated
 * movement (sf_adapt_ds_bay; bay_sc NULL: control.adaptive_bay_guard off). */
static void adapt_ds_all(const sf_scenario_t *bay_sc, const sf_intersection_t *ix, const cunit_t *u,
                         const sf_adapt_opts_t *ao, bool failures, double *ds)
{
    uint32_t cyc[SF_MAX_PHASES] = {0}, fail[SF_MAX_PHASES] = {0};
    adapt_ds(ix, u, ds);
    for (uint8_t p = 0; p < ix->n_phases && p < SF_MAX_PHASES; p++) {
        cyc[p] = u->ad_fail.meas[p][0];
        fail[p] = u->ad_fail.meas[p][1];
    }
    if (failures)
        (void)sf_adapt_ds_failures(ix, &u->ad_cur, cyc, fail, ao, ds);
    if (u->ad_sched.cycle_ds)
        (void)sf_adapt_ds_floor(ix, &u->ad_cur, &u->ad_sched, ao, ds);
    if (bay_sc)
        (void)sf_adapt_ds_bay(bay_sc, ix, &u->ad_cur, ao, ds);
}

/* The scenario sf_adapt_ds_bay reads, or NULL when the bay guard is off. */
static const sf_scenario_t *bay_guard(const sf_controller_t *c)
{
    return c->sc->control.adaptive_bay_guard ? c->sc : NULL;
}

/* Part 2: send plan next to unit i (into the spare plan number), selected once verified
 * (the unit switches at its next safe point, the lap boundary in coordinated mode). */
static void adapt_send(sf_controller_t *c, uint32_t i, double t, const sf_adapt_opts_t *ao,
                       const sf_plan_t *next, double group_cycle_s, const double *ds,
                       const double *ds_flow, const uint32_t (*judged)[2])
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    const sf_unit_state_t *st = sf_master_state(c->m, i);
    cunit_t *u = &c->cu[i];
    uint8_t no = st->active_plan == ADAPT_PLAN_A ? ADAPT_PLAN_B : ADAPT_PLAN_A;
    for (uint8_t p = 0; p < u->n_plans; p++)
        if (u->plans[p].id == no)
            return; /* the scenario uses the spare numbers: adaptation off here */
    sf_plan_t from = u->ad_cur;
    u->adapt_plan = *next;
    u->adapt_plan.id = no;
    u->dl_adapt = 1;
    u->dl_handle = sf_master_queue_plan(c->m, i, ix, &u->adapt_plan);
    if (u->dl_handle >= 0) {
        c->plans_sent++;
        c->adapt_changes++;
        adapt_reset(u);
        json_t *dsa = json_array(), *dfa = json_array(), *spl = json_array(), *sfa = json_array();
        for (uint8_t p = 0; p < ix->n_phases; p++) {
            json_array_append_new(dsa, json_real(round(ds[p] * 1000.0) / 1000.0));
            json_array_append_new(dfa, json_real(round(ds_flow[p] * 1000.0) / 1000.0));
            json_array_append_new(spl, json_integer(next->split_ds[p]));
            json_array_append_new(sfa, json_pack("[i, i]", (int)judged[p][1], (int)judged[p][0]));
        }
        ev(c, t, i, SF_EV_ADAPTIVE,
           json_pack("{s:s, s:i, s:i, s:i, s:i, s:f, s:o, s:o, s:o, s:o}", "event", "scats_step",
                     "plan", (int)no, "from_cycle_ds", (int)from.cycle_ds, "to_cycle_ds",
                     (int)next->cycle_ds, "offset_ds", (int)next->offset_ds, "group_cycle_s",
                     group_cycle_s, "ds", dsa, "ds_flow", dfa, "split_ds", spl, "split_failures",
                     sfa));
        if (ao->sat == SF_ADAPT_SAT_LEARNED) { /* the max flows the DS was counted with */
            json_t *mfa = json_array();
            for (uint8_t p = 0; p < ix->n_phases; p++)
                json_array_append_new(
                    mfa, json_integer(lround(u->ad_mf[p] > 0 ? u->ad_mf[p] : SF_ADAPT_SAT_VEH_H)));
            ev(c, t, i, SF_EV_ADAPTIVE,
               json_pack("{s:s, s:o}", "event", "max_flow", "sat_veh_h", mfa));
        }
    }
}

/* One member's step with the group's new cycle (0 = its own) and offset rule. */
static void adapt_member(sf_controller_t *c, uint32_t i, double t, const sf_adapt_opts_t *ao,
                         double group_cycle_s, bool rebase, uint32_t epoch_ds)
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    cunit_t *u = &c->cu[i];
    double ds[SF_MAX_PHASES], ds_flow[SF_MAX_PHASES];
    sf_plan_t next;
    uint32_t judged[SF_MAX_PHASES][2];
    memcpy(judged, u->ad_fail.meas, sizeof judged);
    adapt_learn(ix, u, ao);
    adapt_ds(ix, u, ds_flow); /* logged beside the DS used: what the counts alone read */
    adapt_ds_all(bay_guard(c), ix, u, ao, true, ds);
    if (sf_adapt_step(ix, &u->ad_cur, ds, ao, group_cycle_s, &next, NULL) < 0)
        return;
    if (rebase)
        next.offset_ds = sf_adapt_offset_ds(u->ad_base_off, epoch_ds, next.cycle_ds);
    bool send =
        sf_adapt_significant(ix, &u->ad_cur, &next, ao) || next.offset_ds != u->ad_cur.offset_ds;
    adapt_reset(u); /* a new measurement either way */
    if (send)
        adapt_send(c, i, t, ao, &next, group_cycle_s, ds, ds_flow, (const uint32_t(*)[2])judged);
}

static bool adapt_member_ok(const sf_controller_t *c, uint32_t i)
{
    const cunit_t *u = &c->cu[i];
    return c->sc->intersections[i].strategy == SF_STRAT_ADAPTIVE && c->online[i] &&
           plans_ready(u) && u->dl_handle < 0 && !u->adapt_select;
}

/* The group's offsets for its cycle and the members' next splits: the corridor's own
 * green-wave optimiser again (the corridor and weights apply_greenwave used at start, re-laid
 * for the members' next plans, sf_gw_relay), as SCATS links an offset plan to each cycle.
 * Kept offsets are (base + epoch) mod cycle, the scheduled plan's offsets of another cycle
 * and other greens; the optimised ones are shifted together (only relative offsets matter)
 * to the shift that moves the members least from the kept ones, so the offset transitions
 * stay short, and taken only when their band objective beats the kept offsets'. Every
 * corridor node must be deciding now (its next plan known); else nothing changes. Only with
 * control.greenwave.adaptive_replan (off by default: on the corridor's surge it measured
 * worse than keeping the start's offsets, README). */
static void adapt_greenwave(sf_controller_t *c, double t, const sf_adapt_opts_t *ao)
{
    if (!c->gw || !c->ad_cycle_ds || !c->sc->control.greenwave.adaptive_replan)
        return;
    const sf_gw_corridor_t *g = c->gw;
    uint16_t cyc = c->ad_cycle_ds;
    sf_plan_t next[SF_GW_MAX_NODES];
    double kept[SF_GW_MAX_NODES], off[SF_GW_MAX_NODES], moved;
    for (uint32_t k = 0; k < g->n; k++) {
        uint32_t i = c->gw_node[k];
        const sf_intersection_t *ix = &c->sc->intersections[i];
        cunit_t *u = &c->cu[i];
        double ds[SF_MAX_PHASES];
        if (!adapt_member_ok(c, i) || !u->ad_cur.coord_phase_mask ||
            u->ad_meas_s < ao->decide_every_s || u->ad_meas_s <= 0)
            return;
        adapt_ds_all(bay_guard(c), ix, u, ao, true, ds); /* as adapt_member will */
        if (sf_adapt_step(ix, &u->ad_cur, ds, ao, cyc / 10.0, &next[k], NULL) < 0 ||
            next[k].cycle_ds != cyc)
            return;
        kept[k] = sf_adapt_offset_ds(u->ad_base_off, c->ad_epoch_ds, cyc) / 10.0;
    }
    sf_gw_corridor_t cor = *g;
    sf_gw_band_t b_kept, b_new;
    int take;
    if (sf_gw_relay(c->sc, c->gw_node, next, &cor) < 0 ||
        (take = sf_gw_reoptimise(&cor, &c->gw_opts, kept, off, &b_kept, &b_new, &moved)) < 0)
        return;
    ev(c, t, UINT32_MAX, SF_EV_ADAPTIVE,
       json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:b}", "event", "greenwave_replan",
                 "cycle_ds", (int)cyc, "kept_out_s", b_kept.b_out_s, "kept_in_s", b_kept.b_in_s,
                 "new_out_s", b_new.b_out_s, "new_in_s", b_new.b_in_s, "moved_s", moved, "taken",
                 take == 1));
    if (take != 1)
        return;
    for (uint32_t k = 0; k < g->n; k++) { /* the members' bases under the group's epoch */
        long o = (lround(off[k] * 10.0) - (long)(c->ad_epoch_ds % cyc)) % cyc;
        c->cu[c->gw_node[k]].ad_base_off = (uint16_t)(o < 0 ? o + cyc : o);
    }
}

/* Every adaptive intersection: measurement, then the decisions that are due. */
static void adapt_all(sf_controller_t *c, double t, uint32_t tod_ds)
{
    sf_adapt_opts_t ao;
    adapt_opts(c, &ao);
    for (uint32_t i = 0; i < c->n; i++)
        adapt_collect(c, i);
    /* isolated intersections: alone */
    for (uint32_t i = 0; i < c->n; i++) {
        cunit_t *u = &c->cu[i];
        if (adapt_member_ok(c, i) && u->ad_meas_s >= ao.decide_every_s && u->ad_meas_s > 0 &&
            !u->ad_cur.coord_phase_mask)
            adapt_member(c, i, t, &ao, 0, false, 0);
    }
    /* the coordinated group: every member has measured long enough */
    uint32_t n = 0;
    double want_max = 0;
    uint16_t c_old = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        cunit_t *u = &c->cu[i];
        if (c->sc->intersections[i].strategy != SF_STRAT_ADAPTIVE || !c->online[i] ||
            !u->ad_cur.coord_phase_mask)
            continue;
        if (!adapt_member_ok(c, i) || u->ad_meas_s < ao.decide_every_s || u->ad_meas_s <= 0) {
            /* the group waits for every member, but not for ever: one that has not
             * measured for four decision periods (its plan never took effect, ...) is
             * left out, as an offline one is */
            if (t - c->ad_decided_s < 4 * fmax(ao.decide_every_s, 60.0))
                return;
            continue;
        }
        const sf_intersection_t *ix = &c->sc->intersections[i];
        double ds[SF_MAX_PHASES], dsf[SF_MAX_PHASES], want, want_f;
        adapt_learn(ix, u, &ao);
        adapt_ds_all(bay_guard(c), ix, u, &ao, false, ds);
        adapt_ds_all(bay_guard(c), ix, u, &ao, true, dsf);
        if (sf_adapt_cycle_wanted(ix, &u->ad_cur, ds, &ao, &want) == 0 &&
            sf_adapt_cycle_wanted(ix, &u->ad_cur, dsf, &ao, &want_f) == 0) {
            want = sf_adapt_cycle_hold(u->ad_cur.cycle_ds / 10.0, want, want_f);
            if (want > want_max)
                want_max = want;
        }
        if (!c_old) /* the group's cycle; the first member's plan before any decision */
            c_old = c->ad_cycle_ds && c->ad_epoch_ds < c->ad_cycle_ds ? c->ad_cycle_ds
                                                                      : u->ad_cur.cycle_ds;
        c->ad_base[n] = u->ad_base_off;
        c->ad_cs[n++] = sf_adapt_coord_start_ds(ix, &u->ad_cur);
    }
    if (n == 0 || want_max <= 0)
        return;
    c->ad_decided_s = t;
    if (!c->ad_cycle_ds || c->ad_epoch_ds >= c->ad_cycle_ds) { /* the scheduled plans' reference */
        c->ad_cycle_ds = c_old;
        c->ad_epoch_ds = 0;
    }
    double gc = sf_adapt_group_cycle(c->ad_cycle_ds / 10.0, want_max, &ao);
    if (gc <= 0)
        return;
    uint16_t c_new = (uint16_t)lround(gc * 10.0);
    if (c_new != c->ad_cycle_ds) {
        /* the members get the select at the next poll */
        int64_t ts = (int64_t)tod_ds + (int64_t)c->poll_every * llround(c->step_s * 10.0);
        uint32_t e;
        if (sf_adapt_rebase(ts, c->ad_epoch_ds, c->ad_cycle_ds, c_new, c->ad_base, c->ad_cs, n,
                            &e) < 0)
            return;
        ev(c, t, UINT32_MAX, SF_EV_ADAPTIVE,
           json_pack("{s:s, s:i, s:i, s:i, s:f}", "event", "group_cycle", "from_cycle_ds",
                     (int)c->ad_cycle_ds, "to_cycle_ds", (int)c_new, "epoch_ds", (int)e, "wanted_s",
                     want_max));
        c->ad_cycle_ds = c_new;
        c->ad_epoch_ds = e;
    }
    adapt_greenwave(c, t, &ao);
    for (uint32_t i = 0; i < c->n; i++)
        if (adapt_member_ok(c, i) && c->cu[i].ad_cur.coord_phase_mask &&
            c->cu[i].ad_meas_s >= ao.decide_every_s && c->cu[i].ad_meas_s > 0)
            adapt_member(c, i, t, &ao, c->ad_cycle_ds / 10.0, true, c->ad_epoch_ds);
}

/* Whether unit i's detector data and presence are polled: the SCATS-like mode's DS and
 * split failures need them, and max-pressure's link estimates take every unit's (a link's
 * inflow is its upstream unit's), so all units' once any intersection runs max-pressure
 * (c->lq). The detector diagnosis judges exactly these. */
static bool detectors_polled(const sf_controller_t *c, uint32_t i)
{
    sf_strategy_t sg = c->sc->intersections[i].strategy;
    return sg == SF_STRAT_ADAPTIVE || sg == SF_STRAT_MAX_PRESSURE || c->lq;
}

/* The detectors of unit i judged from this poll (detdiag.h): a detector that fails or
 * recovers is a fault event (its id, the rule, how long its condition held or the failure
 * lasted), and the failed ones are ignored by linkq and the adaptive measurement until they
 * recover. control.detector_diagnostics false turns the diagnosis off. */
static void diagnose_detectors(sf_controller_t *c, uint32_t i, double t, const sf_linkq_obs_t *o)
{
    const sf_intersection_t *ix = &c->sc->intersections[i];
    if (!c->sc->control.detector_diagnostics)
        return; /* off: every detector is trusted (det_failed stays 0) */
    sf_detdiag_change_t ch[SF_MAX_DET];
    int n = sf_detdiag_observe(c->dd, i, t, o, ch, SF_MAX_DET);
    for (int k = 0; k < n; k++)
        ev(c, t, i, SF_EV_FAULT,
           json_pack("{s:s, s:s, s:s, s:f}", "event",
                     ch[k].failed ? "detector_failed" : "detector_recovered", "detector",
                     ix->det[ch[k].det].id, "rule", sf_detdiag_rule_name(ch[k].rule),
                     ch[k].failed ? "held_s" : "failed_s", round(ch[k].for_s * 10.0) / 10.0));
    cunit_t *u = &c->cu[i];
    uint64_t now = sf_detdiag_failed(c->dd, i), fresh = now & ~u->det_failed;
    u->det_failed = now;
    /* The split failures judged so far for a newly failed presence detector's phases rest on
     * what it showed while it was already failing (held: every green a failure; dead: none),
     * which the diagnosis only confirms afterwards. They are dropped from the measurement,
     * with the green being judged now, as adapt_ds drops its counts; the phase is judged
     * again from its working detectors. */
    for (uint8_t d = 0; fresh && d < ix->n_det && d < 64; d++) {
        if (!(fresh >> d & 1u) || ix->det[d].kind != SF_DET_PRESENCE)
            continue;
        for (uint8_t p = 0; p < ix->n_phases && p < SF_MAX_PHASES; p++) {
            if (!(ix->det[d].phase_mask >> p & 1u))
                continue;
            sf_split_fail_restart(&u->ad_fail.t[p]); /* waits for the next green */
            memset(u->ad_fail.pend[p], 0, sizeof u->ad_fail.pend[p]);
            memset(u->ad_fail.meas[p], 0, sizeof u->ad_fail.meas[p]);
        }
    }
}

int sf_controller_step(sf_controller_t *c, uint64_t k, uint32_t tod_ds)
{
    if (!c || tod_ds > 863999 || (c->started && k < c->last_k)) {
        errno = EINVAL;
        return -1;
    }
    /* Due at the first step and at every multiple of the poll period; a caller that skips
     * steps (wall clock overrun) polls at the first step past the due one. */
    bool poll = !c->started || k >= c->next_poll_k;
    if (poll)
        c->next_poll_k = (k / c->poll_every + 1) * c->poll_every;
    c->started = true;
    c->last_k = k;
    double t = (double)k * c->step_s;
    int64_t now_ds = (int64_t)llround(t * 10.0);
    if (!poll && !c->transit_pending)
        return 0;
    int rc = 0;
    if (poll) {
        /* Round 1: heartbeat, status, and one pending plan download per unit. */
        c->hb = c->hb == UINT16_MAX ? 1 : (uint16_t)(c->hb + 1);
        for (uint32_t i = 0; i < c->n; i++) {
            /* Status before heartbeat: the heartbeat ends a unit's local fallback at once,
             * so a status read after it could never show the fallback the unit went into
             * while it heard nothing (a partition, or this controller stalled). */
            unsigned what = SF_POLL_STATUS_FIRST;
            if (sf_tsp_active(c->tsp, i))
                what |= SF_POLL_PRIORITY;
            if (detectors_polled(c, i))
                what |= SF_POLL_DETECTORS | SF_POLL_PRESENCE;
            sf_master_queue_poll(c->m, i, c->hb, what);
            if (sf_master_state(c->m, i)->health.state == SF_LINK_ONLINE &&
                sf_master_state(c->m, i)->identity_ok)
                queue_download(c, i);
            else
                c->cu[i].dl_handle = -1;
        }
        sf_link_state_t *prev = c->prev;
        for (uint32_t i = 0; i < c->n; i++)
            prev[i] = sf_master_state(c->m, i)->health.state;
        if (sf_master_run(c->m, now_ds) < 0)
            rc = -1;
        for (uint32_t i = 0; i < c->n; i++) {
            watch_unit(c, i, t, prev[i]);
            check_download(c, i, t);
            const sf_unit_state_t *st = sf_master_state(c->m, i);
            c->online[i] = st->health.state == SF_LINK_ONLINE && st->identity_ok;
            if (c->online[i] && sf_tsp_active(c->tsp, i))
                sf_tsp_unit_status(c->tsp, t, i, st->prio_id, st->prio_state, st->prio_reason);
            /* the plan and cycle timer a check-in's red wait is predicted from (coordinated
             * control only: the cycle timer means nothing in the others) */
            bool coord = c->online[i] && (st->mode == 0x12 || st->mode == 0x22) &&
                         st->n_status > 0 && !st->pending_plan;
            sf_tsp_signal(c->tsp, t, i, coord ? running_plan(&c->cu[i], st) : NULL,
                          st->cycle_timer_ds);
            if (detectors_polled(c, i) && c->online[i] && st->status_ds == now_ds) { /* fresh */
                sf_linkq_obs_t o = {.det_seq = st->det_seq,
                                    .det_interval_s = st->det_interval_s,
                                    .det_volume = st->det_volume,
                                    .det_occupancy = st->det_occupancy,
                                    .det_presence = st->det_presence,
                                    .greens = st->phase_status[2]};
                diagnose_detectors(c, i, t, &o);
                if (c->lq) {
                    sf_linkq_set_failed(c->lq, i, c->cu[i].det_failed);
                    sf_linkq_observe(c->lq, i, t, &o); /* only refuses bad input: none here */
                }
            }
        }
    }
    /* Decisions -> round 2 writes. */
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++) {
        cunit_t *u = &c->cu[i];
        u->n_mb = 0;
        if (!poll)
            continue;
        const sf_unit_state_t *st = sf_master_state(c->m, i);
        if (!c->online[i] || !plans_ready(u)) {
            u->sel_handle = -1;
            continue;
        }
        const sf_intersection_t *ix = &c->sc->intersections[i];
        uint8_t want = 0;
        if (u->reset_due) { /* operator's fault reset (write-only register, value 1) */
            uint16_t one = 1;
            if (sf_master_queue_write(c->m, i, SF_R_FAULT_RESET, 0, &one, 1) >= 0)
                any = true;
            u->reset_due = false;
        }
        if (u->manual_plan) {
            want = u->manual_plan; /* the operator's choice holds over the schedule */
        } else if (u->adapt_select) {
            want = u->adapt_select;
            u->adapt_select = 0;
        } else {
            uint8_t pi = sf_intersection_plan_at(ix, tod_ds / 10);
            want = pi < u->n_plans ? u->plans[pi].id : 0;
            /* An adaptive intersection keeps its adapted plan within the scheduled one,
             * also while the unit waits for its safe point to switch to it (the plan is
             * then pending, not yet active: selecting the scheduled plan here would
             * undo every change before it took effect). */
            if (ix->strategy == SF_STRAT_ADAPTIVE && u->adapt_plan.id &&
                u->selected == u->adapt_plan.id)
                want = 0;
        }
        u->sel_handle = -1;
        /* The plan the unit will run: its pending plan, else the one it last accepted
         * from us, else its active plan. A unit in start-up shows no pending plan (its
         * selection waits for the run), so its active plan alone would hide a selection
         * made meanwhile: an operator's plan equal to the start-up plan was then taken
         * as in force, never written, and the unit ran the earlier selection. A plan
         * the unit refused stays u->selected: not retried blindly. */
        uint16_t in_force = st->pending_plan ? st->pending_plan
                            : u->selected    ? u->selected
                                             : st->active_plan;
        if (want && want != in_force && want != u->selected) {
            uint16_t v = want;
            u->sel_handle = sf_master_queue_write(c->m, i, SF_R_PLAN_SELECT, 0, &v, 1);
            u->sel_plan = want;
            any = any || u->sel_handle >= 0;
        } else if (want && want == st->active_plan) {
            u->selected = want;
        }
        if (c->online[i] && st->health.state == SF_LINK_ONLINE) {
            max_pressure(c, i, t);
            adapt_mode(c, i, t);
        }
        any = any || u->n_mp > 0;
    }
    if (poll) {
        adapt_all(c, t, tod_ds);
        for (uint32_t i = 0; i < c->n; i++)
            any = any || c->cu[i].dl_handle >= 0;
    }
    size_t na = sf_tsp_decide(c->tsp, t, c->online, c->act, SF_TSP_MAX_PENDING);
    c->transit_pending = false;
    for (size_t a = 0; a < na; a++) {
        const sf_tsp_action_t *x = &c->act[a];
        cunit_t *u = &c->cu[x->ix];
        if (u->n_mb >= MAX_MB || !c->online[x->ix])
            continue; /* an offline unit's check-out is dropped: the unit expires it */
        uint16_t v[6] = {x->id, x->level, x->phase_no, x->eta_ds, x->type, 1};
        int h = sf_master_queue_write(c->m, x->ix, SF_R_PRIO_REQ_ID, 0, v, 6);
        if (h < 0) { /* queue full: the request cannot reach the unit this step */
            if (x->type == 1)
                sf_tsp_unit_refused(c->tsp, t, x, 0);
            continue;
        }
        u->mb[u->n_mb] = *x;
        u->mb_handle[u->n_mb++] = h;
        any = true;
    }
    if (any) {
        if (sf_master_run(c->m, now_ds) < 0)
            rc = -1;
        for (uint32_t i = 0; i < c->n; i++) {
            cunit_t *u = &c->cu[i];
            if (u->sel_handle >= 0) {
                sf_mreq_outcome_t o = sf_master_outcome(c->m, i, u->sel_handle);
                if (o == SF_MREQ_OK) {
                    c->selects++;
                    u->selected = u->sel_plan;
                    ev(c, t, i, SF_EV_PLAN,
                       json_pack("{s:s, s:i, s:i}", "event", "plan_selected", "plan",
                                 (int)u->sel_plan, "tod_s", (int)(tod_ds / 10)));
                } else if (o == SF_MREQ_EXCEPTION) {
                    c->selects_refused++;
                    u->selected = u->sel_plan; /* logged, not retried blindly */
                    ev(c, t, i, SF_EV_PLAN,
                       json_pack("{s:s, s:i, s:i}", "event", "plan_select_refused", "plan",
                                 (int)u->sel_plan, "exception",
                                 sf_master_exception(c->m, i, u->sel_handle)));
                }
                u->sel_handle = -1;
            }
            check_download(c, i, t);
            check_mp(c, i, t);
            for (uint8_t b = 0; b < u->n_mb; b++) {
                sf_mreq_outcome_t o = sf_master_outcome(c->m, i, u->mb_handle[b]);
                if (o == SF_MREQ_OK)
                    continue;
                c->mailbox_refused++;
                int exc = sf_master_exception(c->m, i, u->mb_handle[b]);
                if (u->mb[b].type == 1)
                    sf_tsp_unit_refused(c->tsp, t, &u->mb[b], exc);
                else
                    ev(c, t, i, SF_EV_COMMS,
                       json_pack("{s:s, s:i, s:i}", "event", "checkout_not_taken", "request",
                                 (int)u->mb[b].id, "exception", exc));
            }
        }
    }
    sf_eventlog_flush(c->log);
    return rc;
}

/* ---- report ------------------------------------------------------------------------ */

json_t *sf_controller_report(const sf_controller_t *c)
{
    if (!c)
        return NULL;
    sf_master_stats_t ms;
    sf_master_stats(c->m, &ms);
    uint64_t online = 0, offline = 0, reconnects = 0, polls = 0, missed = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const sf_health_t *h = &sf_master_state(c->m, i)->health;
        online += h->state == SF_LINK_ONLINE;
        offline += h->state == SF_LINK_OFFLINE;
        reconnects += h->n_reconnects;
        polls += h->n_polls;
        missed += h->n_missed;
    }
    json_t *comms = json_pack(
        "{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "units", (int)c->n,
        "online", (json_int_t)online, "offline", (json_int_t)offline, "polls", (json_int_t)polls,
        "missed_polls", (json_int_t)missed, "reconnects", (json_int_t)reconnects, "rounds",
        (json_int_t)ms.rounds, "requests", (json_int_t)ms.requests, "replies",
        (json_int_t)ms.replies, "exceptions", (json_int_t)ms.exceptions, "connects",
        (json_int_t)ms.connects, "connect_failures", (json_int_t)ms.connect_failures,
        "protocol_errors", (json_int_t)ms.protocol_errors);
    json_t *plans = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "downloads", (json_int_t)c->plans_sent,
        "verified", (json_int_t)c->plans_verified, "refused", (json_int_t)c->plans_refused,
        "readback_mismatches", (json_int_t)c->plans_mismatch, "given_up",
        (json_int_t)c->plans_given_up, "selects", (json_int_t)c->selects, "selects_refused",
        (json_int_t)c->selects_refused, "adaptive_changes", (json_int_t)c->adapt_changes);
    /* Next to the TSP's own counts: mailbox writes (check-ins and check-outs) that did not
     * reach the unit's priority queue, as the unit answered them (exception) or not at
     * all (missed, skipped). A check-in among them is also unit_refused in
     * refused_by_reason; a check-out is a checkout_not_taken event. */
    json_t *prio = sf_tsp_counts_json(c->tsp);
    if (prio)
        json_object_set_new(prio, "mailbox_refused", json_integer((json_int_t)c->mailbox_refused));
    return json_pack("{s:o, s:o, s:o, s:o}", "priority", prio, "events", sf_eventlog_counts(c->log),
                     "comms", comms, "plans", plans);
}

/* {rounds, mean, min, p50, p95, max} of r, in ms. */
static json_t *rtt_json(const sf_rtt_stats_t *r)
{
    double n = (double)r->n;
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "rounds", (json_int_t)r->n, "mean",
                     r->n ? (double)r->sum_us / n / 1000.0 : 0.0, "min", (double)r->min_us / 1000.0,
                     "p50", sf_rtt_quantile_ms(r, 0.5), "p95", sf_rtt_quantile_ms(r, 0.95), "max",
                     (double)r->max_us / 1000.0);
}

json_t *sf_controller_comms_perf(const sf_controller_t *c)
{
    if (!c)
        return NULL;
    sf_rtt_stats_t all = {0};
    uint64_t retrans = 0;
    json_t *units = json_object();
    for (uint32_t i = 0; units && i < c->n; i++) {
        const sf_unit_state_t *st = sf_master_state(c->m, i);
        sf_tcp_link_t tl = {0};
        sf_master_tcp_link(c->m, i, &tl);
        sf_rtt_merge(&all, &st->rtt);
        retrans += tl.retransmits;
        json_t *u =
            json_pack("{s:o, s:f, s:I, s:I}", "poll_rtt_ms", rtt_json(&st->rtt), "srtt_ms",
                      (double)tl.srtt_us / 1000.0, "tcp_retransmits", (json_int_t)tl.retransmits,
                      "missed_polls", (json_int_t)st->health.n_missed);
        json_object_set_new(units, c->sc->intersections[i].id, u);
    }
    if (!units)
        return NULL;
    return json_pack("{s:o, s:I, s:o}", "poll_rtt_ms", rtt_json(&all), "tcp_retransmits",
                     (json_int_t)retrans, "units", units);
}

const sf_master_t *sf_controller_master(const sf_controller_t *ctl)
{
    return ctl ? ctl->m : NULL;
}

const sf_tsp_t *sf_controller_tsp(const sf_controller_t *ctl)
{
    return ctl ? ctl->tsp : NULL;
}

sf_eventlog_t *sf_controller_log(sf_controller_t *ctl)
{
    return ctl ? ctl->log : NULL;
}

int sf_controller_offset(const sf_controller_t *ctl, uint32_t i, uint8_t plan_no)
{
    if (!ctl || i >= ctl->n)
        return -1;
    const cunit_t *u = &ctl->cu[i];
    for (uint8_t p = 0; p < u->n_plans; p++)
        if (u->plans[p].id == plan_no)
            return u->plans[p].offset_ds;
    return -1;
}
