/* view/viewmodel.c — bus messages into the viewer's model (viewmodel.h). */
#include "viewmodel.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bus.pb-c.h"
#include "shot.h"

struct sf_viewmodel {
    const sf_scenario_t *sc;             /* not owned */
    uint8_t *lamps;                      /* n_intersections * SF_MAX_SG codes */
    uint64_t *det;                       /* presence bits per intersection */
    sf_ix_status_t *ix;                  /* per intersection */
    sf_vehicle_snap_t *veh;              /* latest snapshot */
    size_t n_veh, cap_veh;               /* vehicles in it, capacity */
    bool snap_drawn;                     /* the latest snapshot has been handed to a frame */
    bool have_lamps;                     /* any LampStates arrived (else heads show "unknown") */
    double t_s;                          /* latest sim time, s; < 0 before any */
    uint32_t tod_start_s;                /* time of day at sim time 0 */
    sf_moe_view_t moe;                   /* from the latest summary */
    char message[160];                   /* latest event text */
    bool ended;                          /* the clock's bye or the summary received */
    bool finished;                       /* the summary received: final holds the final MOEs */
    char final[SF_VIEW_FINAL_LINES][96]; /* "run finished" overlay lines */
    int n_final;
    double speed;     /* Step.speed_factor of the latest step; -1 before any */
    sf_runrec_t *rec; /* recorder, not owned, may be NULL */
    sf_viewmodel_stats_t stats;
};

static int refuse(sf_viewmodel_t *vm, char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    vm->stats.refused++;
    errno = EINVAL;
    return -1;
}

sf_viewmodel_t *sf_viewmodel_new(const sf_scenario_t *sc)
{
    if (!sc) {
        errno = EINVAL;
        return NULL;
    }
    sf_viewmodel_t *vm = calloc(1, sizeof *vm);
    if (!vm)
        return NULL;
    vm->sc = sc;
    size_t n = sc->n_intersections ? sc->n_intersections : 1;
    vm->lamps = calloc(n * SF_MAX_SG, 1);
    vm->det = calloc(n, sizeof *vm->det);
    vm->ix = calloc(n, sizeof *vm->ix);
    if (!vm->lamps || !vm->det || !vm->ix) {
        sf_viewmodel_destroy(&vm);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        sf_ix_status_init(&vm->ix[i]);
    vm->t_s = -1;
    vm->speed = -1;
    vm->tod_start_s = sc->run.start_tod_s;
    return vm;
}

void sf_viewmodel_destroy(sf_viewmodel_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_viewmodel_t *vm = *self_p;
    free(vm->lamps);
    free(vm->det);
    free(vm->ix);
    free(vm->veh);
    free(vm);
    *self_p = NULL;
}

void sf_viewmodel_record_into(sf_viewmodel_t *vm, sf_runrec_t *rec)
{
    if (vm)
        vm->rec = rec;
}

static int apply_snap(sf_viewmodel_t *vm, const Sfbus__VehicleSnapshot *m, char *why, size_t len)
{
    size_t n = m->n_id;
    if (m->n_link != n || m->n_lane != n || m->n_pos_m != n || m->n_speed_mps != n ||
        m->n_type != n || m->n_line != n)
        return refuse(vm, why, len, "snap k=%llu: arrays of unequal length",
                      (unsigned long long)m->k);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(m->pos_m[i]) || !isfinite(m->speed_mps[i]))
            return refuse(vm, why, len, "snap k=%llu: vehicle %u: non-finite position or speed",
                          (unsigned long long)m->k, m->id[i]);
        if (m->link[i] >= vm->sc->n_links || m->lane[i] >= vm->sc->links[m->link[i]].n_lanes)
            return refuse(vm, why, len,
                          "snap k=%llu: vehicle %u on link %u lane %u: not in the "
                          "scenario",
                          (unsigned long long)m->k, m->id[i], m->link[i], m->lane[i]);
    }
    if (n > vm->cap_veh) {
        sf_vehicle_snap_t *v = realloc(vm->veh, n * sizeof *v);
        if (!v)
            return refuse(vm, why, len, "snap: out of memory for %zu vehicles", n);
        vm->veh = v;
        vm->cap_veh = n;
    }
    for (size_t i = 0; i < n; i++) {
        sf_vehicle_snap_t *v = &vm->veh[i];
        v->id = m->id[i];
        v->link_idx = m->link[i];
        v->lane = (uint8_t)m->lane[i];
        v->type = m->type[i] < SF_VEH_N ? (uint8_t)m->type[i] : SF_VEH_CAR;
        v->line = m->line[i] >= 0 && (uint32_t)m->line[i] < vm->sc->n_lines ? (uint16_t)m->line[i]
                                                                            : SF_SIM_NO_LINE;
        v->pos_m = m->pos_m[i];
        v->speed_mps = m->speed_mps[i];
    }
    if (!vm->snap_drawn && vm->stats.snaps > 0)
        vm->stats.snaps_replaced++;
    vm->n_veh = n;
    vm->snap_drawn = false;
    vm->stats.snaps++;
    vm->t_s = (double)m->t_ds / 10.0;
    if (vm->rec)
        sf_runrec_add_snapshot(vm->rec, vm->t_s, vm->veh, n);
    return 1;
}

static int apply_lamps(sf_viewmodel_t *vm, const Sfbus__LampStates *m, char *why, size_t len)
{
    if (m->ix >= vm->sc->n_intersections)
        return refuse(vm, why, len, "lamps k=%llu: intersection %u out of range (%u)",
                      (unsigned long long)m->k, m->ix, (unsigned)vm->sc->n_intersections);
    if (m->lamps.len > SF_MAX_SG || m->n_remaining_ds > SF_MAX_SG)
        return refuse(vm, why, len, "lamps k=%llu: %zu groups, at most %d",
                      (unsigned long long)m->k, m->lamps.len, SF_MAX_SG);
    sf_ix_status_t *s = &vm->ix[m->ix];
    uint8_t *dst = vm->lamps + (size_t)m->ix * SF_MAX_SG;
    memcpy(dst, m->lamps.data, m->lamps.len);
    memcpy(s->lamps, m->lamps.data, m->lamps.len);
    for (size_t g = 0; g < m->n_remaining_ds; g++)
        s->remaining_ds[g] =
            m->remaining_ds[g] > UINT16_MAX ? UINT16_MAX : (uint16_t)m->remaining_ds[g];
    s->known = true;
    s->greens = m->greens;
    s->yellows = m->yellows;
    s->reds = m->reds;
    s->plan = m->plan <= 16 ? (uint8_t)m->plan : 0;
    s->cycle_timer_ds = m->cycle_timer_ds;
    s->control_mode = m->control_mode;
    s->fault_code = m->fault_code;
    vm->have_lamps = true;
    double t = (double)m->k * vm->sc->run.step_s;
    if (vm->rec)
        sf_runrec_add_lamps(vm->rec, t, m->ix, m->lamps.data, m->lamps.len);
    return 1;
}

static int apply_event(sf_viewmodel_t *vm, const Sfbus__ControllerEvent *m, char *why, size_t len)
{
    if (m->ix >= vm->sc->n_intersections)
        return refuse(vm, why, len, "event k=%llu: intersection %u out of range",
                      (unsigned long long)m->k, m->ix);
    sf_ix_status_t *s = &vm->ix[m->ix];
    double t = (double)m->t_ds / 10.0;
    const char *d = m->detail ? m->detail : "";
    const char *what = "event";
    switch (m->kind) {
    case SFBUS__EVENT_KIND__EVENT_PRIORITY_REQUEST:
        sf_ix_status_note_request(s, m->request_id, SF_REQ_PENDING, t, d);
        what = "priority request";
        break;
    case SFBUS__EVENT_KIND__EVENT_PRIORITY_DECISION:
        /* the detail says which ("granted ..." / "refused ..."), see bus.proto */
        sf_ix_status_note_request(s, m->request_id,
                                  strstr(d, "refus")   ? SF_REQ_REFUSED
                                  : strstr(d, "grant") ? SF_REQ_GRANTED
                                                       : SF_REQ_PENDING,
                                  t, d);
        what = "priority decision";
        break;
    case SFBUS__EVENT_KIND__EVENT_PRIORITY_OUTCOME:
        sf_ix_status_note_request(s, m->request_id, SF_REQ_SERVED, t, d);
        what = "priority outcome";
        break;
    case SFBUS__EVENT_KIND__EVENT_COMMS_OFFLINE:
        s->comms = 0;
        what = "comms offline";
        break;
    case SFBUS__EVENT_KIND__EVENT_COMMS_ONLINE:
        s->comms = 1;
        what = "comms online";
        break;
    case SFBUS__EVENT_KIND__EVENT_PLAN_CHANGE:
        what = "plan change";
        break;
    case SFBUS__EVENT_KIND__EVENT_MODE_CHANGE:
        what = "mode change";
        break;
    case SFBUS__EVENT_KIND__EVENT_FAULT:
        what = "FAULT";
        break;
    case SFBUS__EVENT_KIND__EVENT_FAULT_CLEARED:
        what = "fault cleared";
        break;
    default:
        break;
    }
    snprintf(vm->message, sizeof vm->message, "t=%.1f %s %s: %.100s", t,
             vm->sc->intersections[m->ix].id, what, d);
    return 1;
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* The final MOEs as overlay lines: the network, each intersection (as many as fit), the
 * priority counts. Fields a report lacks show as "nan" / "-", never invented. */
static void fill_final(sf_viewmodel_t *vm, const json_t *rep, const Sfbus__RunSummary *m)
{
    const json_t *net = json_object_get(rep, "network");
    int n = 0;
    snprintf(vm->final[n++], sizeof vm->final[0], "%.0f s simulated%s", m->sim_s,
             json_is_true(json_object_get(rep, "partial")) ? " (interrupted: partial)" : "");
    snprintf(vm->final[n++], sizeof vm->final[0],
             "network: delay %.1f s/veh (LOS %s), %.2f stops/veh, %.0f vehicles",
             jnum(net, "mean_delay_s"), jstr(net, "los"), jnum(net, "mean_stops"),
             jnum(net, "vehicles_completed"));
    const json_t *ixs = json_object_get(rep, "intersections");
    size_t i;
    const json_t *ix;
    json_array_foreach(ixs, i, ix)
    {
        if (n >= SF_VIEW_FINAL_LINES - 1)
            break;
        snprintf(vm->final[n++], sizeof vm->final[0], "%s: delay %.1f s/veh (LOS %s), %.0f veh/h",
                 jstr(ix, "id"), jnum(ix, "mean_delay_s"), jstr(ix, "los"),
                 jnum(ix, "volume_veh_h"));
    }
    const json_t *pr = json_object_get(rep, "priority");
    if (pr && n < SF_VIEW_FINAL_LINES)
        snprintf(vm->final[n++], sizeof vm->final[0],
                 "priority: %.0f requests, %.0f granted, %.0f refused", jnum(pr, "requests"),
                 jnum(pr, "granted"), jnum(pr, "refused"));
    vm->n_final = n;
}

static int apply_summary(sf_viewmodel_t *vm, const Sfbus__RunSummary *m, char *why, size_t len)
{
    json_error_t jerr;
    json_t *rep = json_loads(m->report_json ? m->report_json : "", 0, &jerr);
    if (!rep)
        return refuse(vm, why, len, "summary k=%llu: report is not JSON: %s (line %d)",
                      (unsigned long long)m->k, jerr.text, jerr.line);
    sf_moe_view_t moe;
    int rc = sf_moe_from_report(rep, &moe);
    if (rc != 0)
        json_decref(rep);
    if (rc != 0)
        return refuse(vm, why, len,
                      "summary k=%llu: report has no network.mean_delay_s, "
                      "mean_stops, vehicles_completed",
                      (unsigned long long)m->k);
    vm->moe = moe;
    fill_final(vm, rep, m);
    json_decref(rep);
    vm->finished = true;
    vm->ended = true;
    return 1;
}

int sf_viewmodel_apply(sf_viewmodel_t *vm, const sf_bus_rx_t *rx, char *why, size_t why_len)
{
    if (!vm || !rx || !rx->msg) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    switch (rx->type) {
    case SF_BUS_STEP: {
        const Sfbus__Step *m = (const Sfbus__Step *)rx->msg;
        vm->t_s = (double)m->t_ds / 10.0;
        vm->stats.last_k = m->k;
        vm->speed = m->speed_factor;
        rc = 1;
        break;
    }
    case SF_BUS_SNAP:
        rc = apply_snap(vm, (const Sfbus__VehicleSnapshot *)rx->msg, why, why_len);
        break;
    case SF_BUS_LAMPS:
        rc = apply_lamps(vm, (const Sfbus__LampStates *)rx->msg, why, why_len);
        break;
    case SF_BUS_DET: {
        const Sfbus__DetectorInputs *m = (const Sfbus__DetectorInputs *)rx->msg;
        if (m->ix >= vm->sc->n_intersections)
            return refuse(vm, why, why_len, "det k=%llu: intersection %u out of range",
                          (unsigned long long)m->k, m->ix);
        vm->det[m->ix] = m->presence;
        rc = 1;
        break;
    }
    case SF_BUS_EVENT:
        rc = apply_event(vm, (const Sfbus__ControllerEvent *)rx->msg, why, why_len);
        break;
    case SF_BUS_SUMMARY:
        rc = apply_summary(vm, (const Sfbus__RunSummary *)rx->msg, why, why_len);
        break;
    case SF_BUS_BYE: {
        const Sfbus__Bye *m = (const Sfbus__Bye *)rx->msg;
        snprintf(vm->message, sizeof vm->message, "%s left: %.120s", m->name ? m->name : "?",
                 m->reason ? m->reason : "");
        /* A participant leaving says "participant closed" (lockstep.c); any other Bye is
         * the clock ending the run ("end of run", "interrupted", "error"). */
        if (!m->reason || strcmp(m->reason, "participant closed") != 0)
            vm->ended = true;
        rc = 1;
        break;
    }
    default:
        return 0;
    }
    if (rc == 1)
        vm->stats.applied++;
    return rc;
}

void sf_viewmodel_state(sf_viewmodel_t *vm, sf_view_state_t *st)
{
    if (!vm || !st)
        return;
    st->lamps = vm->have_lamps ? vm->lamps : NULL;
    st->det_presence = vm->det;
    st->veh = vm->veh;
    st->n_veh = vm->n_veh;
    st->sim_time_s = vm->t_s > 0 ? vm->t_s : 0;
    st->start_tod_s = vm->tod_start_s;
    st->moe = vm->moe;
    vm->snap_drawn = true;
}

const sf_ix_status_t *sf_viewmodel_ix(const sf_viewmodel_t *vm, uint32_t ix)
{
    return vm && ix < vm->sc->n_intersections ? &vm->ix[ix] : NULL;
}

double sf_viewmodel_time(const sf_viewmodel_t *vm)
{
    return vm ? vm->t_s : -1;
}

const char *sf_viewmodel_message(const sf_viewmodel_t *vm)
{
    return vm ? vm->message : "";
}

bool sf_viewmodel_ended(const sf_viewmodel_t *vm)
{
    return vm && vm->ended;
}

void sf_viewmodel_stats(const sf_viewmodel_t *vm, sf_viewmodel_stats_t *out)
{
    if (vm && out)
        *out = vm->stats;
}

bool sf_viewmodel_finished(const sf_viewmodel_t *vm)
{
    return vm && vm->finished;
}

int sf_viewmodel_final(const sf_viewmodel_t *vm, const char *lines[], int cap)
{
    if (!vm || !lines)
        return 0;
    int n = vm->n_final < cap ? vm->n_final : cap;
    for (int i = 0; i < n; i++)
        lines[i] = vm->final[i];
    return n;
}

double sf_viewmodel_speed(const sf_viewmodel_t *vm)
{
    return vm ? vm->speed : -1;
}
