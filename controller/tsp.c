/* controller/tsp.c — centre transit signal priority (see tsp.h). */
#include "tsp.h"

#include "greenwave.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char bus_id[32];   /* holder, "" = free */
    uint16_t id;       /* request id at the unit */
    uint8_t level;     /* 1..7 */
    uint8_t phase_no;  /* phase number */
    uint8_t phase_idx; /* phase index in the intersection */
    double t_in_s;     /* check-in time */
    double expire_s;   /* ends as expired after this without a check-out */
    bool seen_active;  /* the unit reported it active or served */
    bool unit_done;    /* the unit reported it ended (expired, served, cancelled): a
                          check-out would only be refused */
} active_t;

typedef struct {
    sf_tsp_event_t ev; /* the check-in */
    double t_s;        /* when it came */
    uint8_t phase_idx; /* resolved from the movement */
    bool redo;         /* a re-decision of a waiting refusal, not a check-in of the bus */
    float wait_s;      /* predicted red wait at the line (sf_tsp_wait) at its check-in */
} pending_t;

typedef struct {
    char bus_id[32];        /* "" = free */
    sf_tsp_reason_t reason; /* why it was refused */
    pending_t last;         /* its latest check-in: what a re-decision decides again */
} refused_t;

typedef struct {
    double lockout_until_s;               /* no grant before this */
    bool sig_known;                       /* a coordinated plan and cycle timer were read */
    double sig_t_s;                       /* when */
    uint16_t sig_ct_ds;                   /* the cycle timer then */
    uint16_t sig_cycle_ds;                /* the plan's cycle */
    uint16_t sig_start_ds[SF_MAX_PHASES]; /* each phase's green start, cycle-timer time */
    uint16_t sig_green_ds[SF_MAX_PHASES]; /* and its length (0 = not in the plan) */
    active_t act[SF_TSP_MAX_ACTIVE];      /* granted requests held */
    refused_t ref[SF_TSP_MAX_ACTIVE];     /* buses refused here since their check-in */
    uint8_t ref_next;                     /* slot the next refusal takes when none is free */
} ix_state_t;

struct sf_tsp_s {
    const sf_scenario_t *sc;               /* borrowed */
    sf_eventlog_t *log;                    /* borrowed, may be NULL */
    sf_priority_t cfg;                     /* control.priority */
    ix_state_t *ix;                        /* per intersection */
    pending_t pending[SF_TSP_MAX_PENDING]; /* check-ins to decide */
    size_t n_pending;
    sf_tsp_action_t out[SF_TSP_MAX_PENDING]; /* check-outs (and updates) to hand out */
    size_t n_out;
    uint16_t next_id;       /* next request id (never 0) */
    sf_tsp_counts_t counts; /* report counts */
};

static const char *const REASON[SF_TSP_R_N] = {"none",     "disabled", "not_late",    "offline",
                                               "conflict", "lockout",  "unit_refused"};

const char *sf_tsp_reason_name(sf_tsp_reason_t r)
{
    return (unsigned)r < SF_TSP_R_N ? REASON[r] : "?";
}

uint8_t sf_tsp_level(float lateness_s, float threshold_s)
{
    if (!(lateness_s > threshold_s))
        return 4;
    float th = threshold_s > 1.0f ? threshold_s : 1.0f;
    if (lateness_s > 4 * th)
        return 1;
    if (lateness_s > 2 * th)
        return 2;
    return 3;
}

sf_tsp_t *sf_tsp_new(const sf_scenario_t *sc, sf_eventlog_t *log)
{
    if (!sc || sc->n_intersections == 0) {
        errno = EINVAL;
        return NULL;
    }
    sf_tsp_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ix = calloc(sc->n_intersections, sizeof *t->ix);
    if (!t->ix) {
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        t->ix[i].lockout_until_s = -INFINITY;
    t->sc = sc;
    t->log = log;
    t->cfg = sc->control.priority;
    t->next_id = 1;
    return t;
}

void sf_tsp_destroy(sf_tsp_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->ix);
    free(*self_p);
    *self_p = NULL;
}

static void log_req(sf_tsp_t *t, double t_s, uint32_t ix, const char *bus, const char *event,
                    uint16_t id, uint8_t level, uint8_t phase_no, double eta_s, double late_s,
                    double wait_s, const char *outcome, sf_tsp_reason_t reason)
{
    if (!t->log)
        return;
    json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:s, s:s}", "event", event,
                          "bus", bus, "request", (int)id, "level", (int)level, "phase",
                          (int)phase_no, "eta_s", eta_s, "lateness_s", late_s, "wait_s", wait_s,
                          "outcome", outcome, "reason", sf_tsp_reason_name(reason));
    sf_eventlog_add(t->log, t_s, t->sc->intersections[ix].id, SF_EV_PRIORITY, d);
}

static int phase_of_movement(const sf_intersection_t *ix, uint32_t movement)
{
    if (movement >= ix->n_movements)
        return -1;
    uint8_t sg = ix->movements[movement].sg_idx;
    if (sg >= ix->n_sg)
        return -1;
    uint8_t p = ix->sg[sg].phase_idx;
    return p < ix->n_phases ? p : -1;
}

static active_t *find_bus(ix_state_t *s, const char *bus)
{
    for (int i = 0; i < SF_TSP_MAX_ACTIVE; i++)
        if (s->act[i].bus_id[0] && strcmp(s->act[i].bus_id, bus) == 0)
            return &s->act[i];
    return NULL;
}

static refused_t *find_refused(ix_state_t *s, const char *bus)
{
    for (int i = 0; i < SF_TSP_MAX_ACTIVE; i++)
        if (s->ref[i].bus_id[0] && strcmp(s->ref[i].bus_id, bus) == 0)
            return &s->ref[i];
    return NULL;
}

static uint16_t eta_ds_of(double eta_s)
{
    double d = eta_s * 10.0 + 0.5;
    return (uint16_t)(d < 0 ? 0 : d > 6000 ? 6000 : d);
}

static void push_out(sf_tsp_t *t, uint32_t ix, const active_t *a, uint8_t type, uint16_t eta_ds)
{
    if (t->n_out >= SF_TSP_MAX_PENDING)
        return; /* cannot happen: at most one per held slot and pending check-in */
    t->out[t->n_out++] = (sf_tsp_action_t){.ix = ix,
                                           .id = a->id,
                                           .level = a->level,
                                           .phase_no = a->phase_no,
                                           .eta_ds = eta_ds,
                                           .type = type};
}

int sf_tsp_event(sf_tsp_t *t, double t_s, const sf_tsp_event_t *ev)
{
    if (!t || !ev || ev->ix >= t->sc->n_intersections || ev->bus_id[0] == 0 ||
        memchr(ev->bus_id, 0, sizeof ev->bus_id) == NULL || ev->level > 7 ||
        (ev->check_in && !(isfinite(ev->eta_s) && ev->eta_s >= 0)) || !isfinite(ev->lateness_s)) {
        errno = EINVAL;
        return -1;
    }
    const sf_intersection_t *ix = &t->sc->intersections[ev->ix];
    int p = phase_of_movement(ix, ev->movement);
    if (p < 0) {
        errno = EINVAL;
        return -1;
    }
    ix_state_t *s = &t->ix[ev->ix];
    if (ev->check_in) {
        if (t->n_pending >= SF_TSP_MAX_PENDING) {
            errno = ENOSPC;
            return -1;
        }
        t->pending[t->n_pending++] = (pending_t){.ev = *ev, .t_s = t_s, .phase_idx = (uint8_t)p};
        return 0;
    }
    refused_t *f = find_refused(s, ev->bus_id);
    if (f) /* past the stop line: its refusal here is over */
        memset(f, 0, sizeof *f);
    active_t *a = find_bus(s, ev->bus_id);
    if (!a) {
        errno = ENOENT;
        return -1;
    }
    bool served = a->seen_active;
    if (served)
        t->counts.served++;
    else
        t->counts.cancelled++;
    log_req(t, t_s, ev->ix, a->bus_id, "check_out", a->id, a->level, a->phase_no, 0, ev->lateness_s,
            0, served ? "served" : "cancelled", SF_TSP_R_NONE);
    if (!a->unit_done) /* the unit ended it itself (e.g. its green ran out): nothing to end */
        push_out(t, ev->ix, a, 2, 0);
    memset(a, 0, sizeof *a);
    return 0;
}

/* Refusals that a later check-in of the same bus (an ETA update) may overturn: the state
 * of the intersection, not the request itself, stood in the way. */
static bool transient(sf_tsp_reason_t r)
{
    return r == SF_TSP_R_OFFLINE || r == SF_TSP_R_CONFLICT || r == SF_TSP_R_LOCKOUT;
}

void sf_tsp_signal(sf_tsp_t *t, double t_s, uint32_t ix, const sf_plan_t *plan,
                   uint16_t cycle_timer_ds)
{
    if (!t || ix >= t->sc->n_intersections)
        return;
    ix_state_t *s = &t->ix[ix];
    double start_s[SF_MAX_PHASES], green_s[SF_MAX_PHASES];
    s->sig_known =
        plan && sf_gw_green_windows(&t->sc->intersections[ix], plan, start_s, green_s) == 0;
    if (!s->sig_known)
        return;
    for (uint8_t p = 0; p < t->sc->intersections[ix].n_phases; p++) {
        s->sig_start_ds[p] = (uint16_t)lround(start_s[p] * 10.0);
        s->sig_green_ds[p] = (uint16_t)lround(green_s[p] * 10.0);
    }
    s->sig_t_s = t_s;
    s->sig_cycle_ds = plan->cycle_ds;
    s->sig_ct_ds = (uint16_t)(cycle_timer_ds % plan->cycle_ds);
}

double sf_tsp_wait(const sf_tsp_t *t, uint32_t ix, uint8_t phase_idx, double arrive_s)
{
    if (!t || ix >= t->sc->n_intersections || phase_idx >= SF_MAX_PHASES || !isfinite(arrive_s))
        return 0.0;
    const ix_state_t *s = &t->ix[ix];
    if (!s->sig_known || s->sig_green_ds[phase_idx] == 0)
        return 0.0;
    double c = s->sig_cycle_ds;
    /* the cycle timer at the arrival, then how far into the phase's window that is */
    double ct = fmod((double)s->sig_ct_ds + (arrive_s - s->sig_t_s) * 10.0, c);
    double into = fmod(ct - (double)s->sig_start_ds[phase_idx], c);
    if (into < 0)
        into += c;
    return into < (double)s->sig_green_ds[phase_idx] ? 0.0 : (c - into) / 10.0;
}

static int cmp_pending(const void *x, const void *y)
{
    const pending_t *a = x, *b = y;
    uint8_t la = a->ev.level, lb = b->ev.level;
    if (la != lb)
        return la < lb ? -1 : 1;
    if (a->ev.eta_s != b->ev.eta_s)
        return a->ev.eta_s < b->ev.eta_s ? -1 : 1;
    return strcmp(a->ev.bus_id, b->ev.bus_id); /* deterministic order of equal requests */
}

/* Does a phase held at s (or the same phase) stop phase p from being served now? */
static const active_t *conflicting(const sf_intersection_t *ix, const ix_state_t *s, uint8_t p)
{
    for (int i = 0; i < SF_TSP_MAX_ACTIVE; i++) {
        const active_t *a = &s->act[i];
        if (!a->bus_id[0])
            continue;
        if (a->phase_idx == p || !ix->concurrent[a->phase_idx][p])
            return a;
    }
    return NULL;
}

/* A refusal of pd at s. A bus refused here before (re-decided after a check-in update)
 * keeps its one request in the counts: only its reason moves. */
static void refuse(sf_tsp_t *t, ix_state_t *s, const pending_t *pd, uint8_t phase_no,
                   sf_tsp_reason_t r, double t_s)
{
    refused_t *f = find_refused(s, pd->ev.bus_id);
    bool again = f != NULL, same = f && f->reason == r;
    if (f) {
        t->counts.by_reason[f->reason]--;
    } else {
        t->counts.requests++;
        t->counts.refused++;
        for (int i = 0; i < SF_TSP_MAX_ACTIVE && !f; i++)
            if (!s->ref[i].bus_id[0])
                f = &s->ref[i];
        if (!f) { /* all taken: the oldest entry goes */
            f = &s->ref[s->ref_next];
            s->ref_next = (uint8_t)((s->ref_next + 1) % SF_TSP_MAX_ACTIVE);
        }
        memcpy(f->bus_id, pd->ev.bus_id, sizeof f->bus_id);
    }
    if (!pd->redo) /* the bus's own check-in: what later re-decisions start from */
        f->last = *pd;
    f->reason = r;
    t->counts.by_reason[r]++;
    /* One "check_in" decision per bus and intersection; a re-decision is logged as
     * "recheck", and only when its reason changed. */
    if (!same)
        log_req(t, t_s, pd->ev.ix, pd->ev.bus_id, again ? "recheck" : "check_in", 0, pd->ev.level,
                phase_no, pd->ev.eta_s, pd->ev.lateness_s, pd->wait_s, "refused", r);
}

/* Requests that wait. A bus refused for the intersection's state (a conflicting grant,
 * the lockout, the unit offline) still wants its phase until it checks out at the stop
 * line, so it is decided again at every decision, its ETA counted down from its latest
 * check-in, and not only when the bus happens to send an update (a bus queued at a red
 * sends none): ranked second, it waits for the first request to end instead of being
 * dropped. A bus long past its ETA + max extension + expiry margin without a check-out is
 * not coming and is no longer decided. */
static void requeue_waiting(sf_tsp_t *t, double t_s)
{
    for (uint32_t i = 0; i < t->sc->n_intersections; i++) {
        for (int k = 0; k < SF_TSP_MAX_ACTIVE; k++) {
            const refused_t *f = &t->ix[i].ref[k];
            if (!f->bus_id[0] || !transient(f->reason))
                continue;
            const pending_t *l = &f->last;
            double el = t_s - l->t_s;
            if (el > (double)l->ev.eta_s + t->cfg.max_extension_s + SF_TSP_EXPIRY_S)
                continue;
            bool queued = false; /* the bus's own update is decided instead */
            for (size_t n = 0; n < t->n_pending && !queued; n++)
                queued =
                    t->pending[n].ev.ix == i && strcmp(t->pending[n].ev.bus_id, f->bus_id) == 0;
            if (queued)
                continue;
            if (t->n_pending >= SF_TSP_MAX_PENDING)
                return; /* the rest wait for the next decision */
            pending_t pd = *l;
            pd.redo = true;
            pd.t_s = t_s;
            pd.ev.eta_s = el < (double)l->ev.eta_s ? (float)((double)l->ev.eta_s - el) : 0.0f;
            t->pending[t->n_pending++] = pd;
        }
    }
}

size_t sf_tsp_decide(sf_tsp_t *t, double t_s, const bool *online, sf_tsp_action_t *out, size_t cap)
{
    if (!t)
        return 0;
    requeue_waiting(t, t_s);
    /* The lateness at the stop line first (a re-decision keeps its first one), then the
     * level: an unset level comes from that lateness. */
    for (size_t i = 0; i < t->n_pending; i++) {
        pending_t *pd = &t->pending[i];
        if (!pd->redo)
            pd->wait_s =
                (float)sf_tsp_wait(t, pd->ev.ix, pd->phase_idx, pd->t_s + (double)pd->ev.eta_s);
        if (pd->ev.level == 0)
            pd->ev.level =
                sf_tsp_level(pd->ev.lateness_s + pd->wait_s, t->cfg.lateness_threshold_s);
    }
    qsort(t->pending, t->n_pending, sizeof *t->pending, cmp_pending);
    for (size_t i = 0; i < t->n_pending; i++) {
        const pending_t *pd = &t->pending[i];
        const sf_intersection_t *ix = &t->sc->intersections[pd->ev.ix];
        ix_state_t *s = &t->ix[pd->ev.ix];
        uint8_t phase_no = ix->phases[pd->phase_idx].id;
        active_t *mine = find_bus(s, pd->ev.bus_id);
        if (mine) { /* a new ETA for a request already held */
            mine->expire_s = t_s + pd->ev.eta_s + t->cfg.max_extension_s + SF_TSP_EXPIRY_S;
            mine->unit_done = false; /* a unit that had ended it takes it as new */
            push_out(t, pd->ev.ix, mine, 1, eta_ds_of(pd->ev.eta_s));
            continue;
        }
        refused_t *was = find_refused(s, pd->ev.bus_id);
        /* An ETA update of a request refused for good has nothing to decide, but one
         * refused not late does: the bus's own update (held up longer than announced)
         * moves its arrival, and with it the red it will wait and its lateness at the
         * line. */
        if (was && !transient(was->reason) && (was->reason != SF_TSP_R_NOT_LATE || pd->redo))
            continue;
        if (!t->cfg.enabled) {
            refuse(t, s, pd, phase_no, SF_TSP_R_DISABLED, t_s);
            continue;
        }
        if (t->cfg.lateness_threshold_s > 0 &&
            !(pd->ev.lateness_s + pd->wait_s > t->cfg.lateness_threshold_s)) {
            refuse(t, s, pd, phase_no, SF_TSP_R_NOT_LATE, t_s);
            continue;
        }
        if (online && !online[pd->ev.ix]) {
            refuse(t, s, pd, phase_no, SF_TSP_R_OFFLINE, t_s);
            continue;
        }
        if (conflicting(ix, s, pd->phase_idx)) {
            refuse(t, s, pd, phase_no, SF_TSP_R_CONFLICT, t_s);
            continue;
        }
        if (t_s < s->lockout_until_s) {
            refuse(t, s, pd, phase_no, SF_TSP_R_LOCKOUT, t_s);
            continue;
        }
        active_t *a = NULL;
        for (int k = 0; k < SF_TSP_MAX_ACTIVE && !a; k++)
            if (!s->act[k].bus_id[0])
                a = &s->act[k];
        if (!a) { /* every slot held: as good as a conflict */
            refuse(t, s, pd, phase_no, SF_TSP_R_CONFLICT, t_s);
            continue;
        }
        memcpy(a->bus_id, pd->ev.bus_id, sizeof a->bus_id);
        a->id = t->next_id;
        t->next_id = t->next_id == UINT16_MAX ? 1 : (uint16_t)(t->next_id + 1);
        a->level = pd->ev.level;
        a->phase_no = phase_no;
        a->phase_idx = pd->phase_idx;
        a->t_in_s = t_s;
        a->expire_s = t_s + pd->ev.eta_s + t->cfg.max_extension_s + SF_TSP_EXPIRY_S;
        a->seen_active = false;
        s->lockout_until_s = t_s + t->cfg.lockout_s;
        bool was_refused = was != NULL;
        if (was) { /* refused before, granted on an update: still one request */
            t->counts.refused--;
            t->counts.by_reason[was->reason]--;
            memset(was, 0, sizeof *was);
        } else {
            t->counts.requests++;
        }
        t->counts.granted++;
        log_req(t, t_s, pd->ev.ix, a->bus_id, was_refused ? "recheck" : "check_in", a->id, a->level,
                phase_no, pd->ev.eta_s, pd->ev.lateness_s, pd->wait_s, "granted", SF_TSP_R_NONE);
        push_out(t, pd->ev.ix, a, 1, eta_ds_of(pd->ev.eta_s));
    }
    t->n_pending = 0;
    /* Grants nobody checked out. */
    for (uint32_t i = 0; i < t->sc->n_intersections; i++) {
        for (int k = 0; k < SF_TSP_MAX_ACTIVE; k++) {
            active_t *a = &t->ix[i].act[k];
            if (a->bus_id[0] && t_s > a->expire_s) {
                t->counts.expired++;
                log_req(t, t_s, i, a->bus_id, "expired", a->id, a->level, a->phase_no, 0, 0, 0,
                        "expired", SF_TSP_R_NONE);
                if (!a->unit_done)
                    push_out(t, i, a, 2, 0);
                memset(a, 0, sizeof *a);
            }
        }
    }
    size_t n = t->n_out < cap ? t->n_out : cap;
    if (out && n)
        memcpy(out, t->out, n * sizeof *out);
    else if (!out)
        n = 0;
    memmove(t->out, t->out + n, (t->n_out - n) * sizeof *t->out);
    t->n_out -= n;
    return n;
}

static active_t *find_id(ix_state_t *s, uint16_t id)
{
    for (int i = 0; i < SF_TSP_MAX_ACTIVE; i++)
        if (s->act[i].bus_id[0] && s->act[i].id == id)
            return &s->act[i];
    return NULL;
}

static void unit_refused(sf_tsp_t *t, double t_s, uint32_t ix, active_t *a, const char *why)
{
    if (t->counts.granted)
        t->counts.granted--;
    t->counts.refused++;
    t->counts.by_reason[SF_TSP_R_UNIT_REFUSED]++;
    if (t->log) {
        json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s}", "event", "unit_refused", "bus",
                              a->bus_id, "request", (int)a->id, "phase", (int)a->phase_no,
                              "outcome", "refused", "reason", "unit_refused", "detail", why);
        sf_eventlog_add(t->log, t_s, t->sc->intersections[ix].id, SF_EV_PRIORITY, d);
    }
    memset(a, 0, sizeof *a);
}

void sf_tsp_unit_refused(sf_tsp_t *t, double t_s, const sf_tsp_action_t *act, int exception)
{
    if (!t || !act || act->ix >= t->sc->n_intersections || act->type != 1)
        return;
    active_t *a = find_id(&t->ix[act->ix], act->id);
    if (!a)
        return;
    char why[48];
    snprintf(why, sizeof why, "mailbox write exception %d", exception);
    unit_refused(t, t_s, act->ix, a, why);
}

void sf_tsp_unit_status(sf_tsp_t *t, double t_s, uint32_t ix, const uint16_t id[8],
                        const uint16_t state[8], const uint16_t reason[8])
{
    if (!t || ix >= t->sc->n_intersections || !id || !state || !reason)
        return;
    static const char *const UNIT_REASON[] = {"none", "unit lockout", "unit mode",
                                              "phase omitted or not in plan",
                                              "pre-empted by a higher level"};
    for (int k = 0; k < 8; k++) {
        if (id[k] == 0)
            continue;
        active_t *a = find_id(&t->ix[ix], id[k]);
        if (!a)
            continue;
        if ((state[k] == 2 || state[k] == 3) && !a->seen_active) { /* active, served */
            a->seen_active = true;
            /* The unit's own lockout starts when it begins the service, which may be
             * later than the grant (a request queued behind another one): the centre's
             * runs at least as long, so a waiting request decided again at its end is not
             * refused by the unit's. */
            double until = t_s + t->cfg.lockout_s;
            if (until > t->ix[ix].lockout_until_s)
                t->ix[ix].lockout_until_s = until;
        }
        if (state[k] == 3 || state[k] == 5 || state[k] == 6) /* served, expired, cancelled */
            a->unit_done = true;
        else if (state[k] == 4)
            unit_refused(t, t_s, ix, a, reason[k] < 5 ? UNIT_REASON[reason[k]] : "unit");
    }
}

size_t sf_tsp_active(const sf_tsp_t *t, uint32_t ix)
{
    if (!t || ix >= t->sc->n_intersections)
        return 0;
    size_t n = 0;
    for (int k = 0; k < SF_TSP_MAX_ACTIVE; k++)
        n += t->ix[ix].act[k].bus_id[0] != 0;
    return n;
}

void sf_tsp_counts(const sf_tsp_t *t, sf_tsp_counts_t *out)
{
    if (t && out)
        *out = t->counts;
}

json_t *sf_tsp_counts_json(const sf_tsp_t *t)
{
    if (!t)
        return NULL;
    json_t *by = json_object();
    for (int r = 1; r < SF_TSP_R_N; r++)
        json_object_set_new(by, REASON[r], json_integer((json_int_t)t->counts.by_reason[r]));
    return json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:I}", "requests",
                     (json_int_t)t->counts.requests, "granted", (json_int_t)t->counts.granted,
                     "refused", (json_int_t)t->counts.refused, "refused_by_reason", by, "served",
                     (json_int_t)t->counts.served, "cancelled", (json_int_t)t->counts.cancelled,
                     "expired", (json_int_t)t->counts.expired);
}
