/* sim/sim_report.c — the measures of effectiveness as JSON (schema: proto/REPORT.md).
 *
 * Determinism: every value outside "perf" is computed from counters the model updates
 * in a fixed order; objects keep insertion (schema) order and arrays follow scenario
 * order, so the same scenario, seed and lamp inputs serialise to the same bytes.
 */
#include "sim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

const char *sf_sim_los(double delay_s)
{
    /* HCM signalised intersections, control delay per vehicle */
    if (delay_s <= 10.0)
        return "A";
    if (delay_s <= 20.0)
        return "B";
    if (delay_s <= 35.0)
        return "C";
    if (delay_s <= 55.0)
        return "D";
    if (delay_s <= 80.0)
        return "E";
    return "F";
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* Rounded to a millionth so the text is short and stable. */
static json_t *num(double x)
{
    if (!isfinite(x))
        return json_null();
    return json_real(round(x * 1e6) / 1e6);
}

static int set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v);
}

static json_t *approach_json(const sf_sim_t *sim, uint32_t li, double span)
{
    const app_moe_t *m = &sim->app[li];
    json_t *o = json_object();
    if (!o)
        return NULL;
    double d = ratio(m->sum_delay, (double)m->n_acc);
    int rc = 0;
    rc |= set(o, "id", json_string(sim->link_id[li]));
    rc |= set(o, "volume_veh_h", num(ratio((double)m->crossed * 3600.0, span)));
    rc |= set(o, "throughput_veh", json_integer((json_int_t)m->crossed));
    rc |= set(o, "vehicles_measured", json_integer((json_int_t)m->n_acc));
    rc |= set(o, "mean_delay_s", num(d));
    rc |= set(o, "los", json_string(sf_sim_los(d)));
    rc |= set(o, "mean_stopline_delay_s", num(ratio(m->sum_sl_delay, (double)m->crossed)));
    rc |= set(o, "mean_stops", num(ratio(m->sum_stops, (double)m->n_acc)));
    rc |= set(o, "through_vehicles_measured", json_integer((json_int_t)m->n_thru));
    rc |= set(o, "through_mean_stops", num(ratio(m->sum_thru_stops, (double)m->n_thru)));
    rc |= set(o, "mean_queue_m", num(ratio(m->q_sum, (double)m->q_n)));
    rc |= set(o, "max_queue_m", num((double)m->q_max));
    rc |= set(o, "arrivals_on_green_pct",
              num(100.0 * ratio((double)m->arr_green, (double)m->arrivals)));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Delay so far (s) of the vehicles that have not left: on lanes and in bays (*in_net), and
 * waiting at the entries from their arrival there (*waiting). With the completed vehicles'
 * delay this is the network's total delay, which no control can lower by keeping vehicles
 * out. */
static void unfinished_delay_s(const sf_sim_t *sim, double *in_net, double *waiting)
{
    double d = 0, q = 0;
    for (uint32_t l = 0; l < sim->n_lanes; l++) {
        const lane_t *ln = &sim->lanes[l];
        for (uint32_t k = 0; k < ln->n; k++)
            d += (double)sim->v_delay[ln->veh[k]];
    }
    for (uint32_t b = 0; b < sim->n_bay; b++) {
        uint32_t w = sim->bus[sim->bay[b]].veh;
        if (w != SF_NONE32)
            d += (double)sim->v_delay[w];
    }
    for (uint32_t s = 0; s < sim->n_src; s++) {
        const source_t *src = &sim->src[s];
        for (uint32_t j = 0; j < src->n; j++)
            q += sim->t - src->t[(src->head + j) % src->cap];
    }
    *in_net = d;
    *waiting = q;
}

json_t *sf_sim_report(const sf_sim_t *sim, bool with_perf)
{
    if (!sim) {
        errno = EINVAL;
        return NULL;
    }
    json_t *r = json_object();
    json_t *net = json_object(), *ixs = json_array(), *tr = json_object(), *lines = json_array();
    json_t *prio = json_object();
    if (!r || !net || !ixs || !tr || !lines || !prio)
        goto nomem;
    double span = sim->t - sim->warmup_s;
    if (span < 0)
        span = 0;
    int rc = 0;
    rc |= set(r, "scenario", json_string(sim->name));
    rc |= set(r, "seed", json_integer((json_int_t)sim->seed));
    rc |= set(r, "sim_seconds", num(sim->t));
    rc |= set(r, "warmup_s", num(sim->warmup_s));
    rc |= set(r, "step_s", num(sim->dt));

    size_t waiting = 0;
    for (uint32_t s = 0; s < sim->n_src; s++)
        waiting += sim->src[s].n;
    double nd = ratio(sim->sum_delay, (double)sim->completed);
    rc |= set(net, "mean_delay_s", num(nd));
    rc |= set(net, "los", json_string(sf_sim_los(nd)));
    rc |= set(net, "mean_stops", num(ratio(sim->sum_stops, (double)sim->completed)));
    rc |= set(net, "mean_travel_time_s", num(ratio(sim->sum_tt, (double)sim->completed)));
    rc |= set(net, "vehicles_completed", json_integer((json_int_t)sim->completed));
    rc |= set(net, "vehicles_entered", json_integer((json_int_t)sim->inserted));
    rc |= set(net, "vehicles_in_network", json_integer((json_int_t)sim->n_on));
    rc |= set(net, "vehicles_waiting_to_enter", json_integer((json_int_t)waiting));
    rc |= set(net, "blocked_merges", json_integer((json_int_t)sim->blocked_transfers));
    double d_net = 0, d_wait = 0;
    if (sim->t >= sim->warmup_s)
        unfinished_delay_s(sim, &d_net, &d_wait);
    rc |= set(net, "total_delay_veh_h", num((sim->sum_delay + d_net + d_wait) / 3600.0));
    rc |= set(net, "unfinished_delay_veh_h", num(d_net / 3600.0));
    rc |= set(net, "waiting_delay_veh_h", num(d_wait / 3600.0));
    rc |= set(r, "network", net);
    net = NULL;

    for (uint32_t x = 0; x < sim->n_ix; x++) {
        json_t *ix = json_object(), *apps = json_array();
        if (!ix || !apps) {
            json_decref(ix);
            json_decref(apps);
            goto nomem;
        }
        double sd = 0, sn = 0, cr = 0;
        for (uint32_t li = 0; li < sim->n_links; li++) {
            if (sim->links[li].to_ix != (int32_t)x)
                continue;
            json_t *a = approach_json(sim, li, span);
            if (!a || json_array_append_new(apps, a)) {
                json_decref(ix);
                json_decref(apps);
                goto nomem;
            }
            sd += sim->app[li].sum_delay;
            sn += (double)sim->app[li].n_acc;
            cr += (double)sim->app[li].crossed;
        }
        double d = ratio(sd, sn);
        rc |= set(ix, "id", json_string(sim->ix_id[x]));
        rc |= set(ix, "volume_veh_h", num(ratio(cr * 3600.0, span)));
        rc |= set(ix, "mean_delay_s", num(d));
        rc |= set(ix, "los", json_string(sf_sim_los(d)));
        rc |= set(ix, "approaches", apps);
        rc |= json_array_append_new(ixs, ix);
    }
    rc |= set(r, "intersections", ixs);
    ixs = NULL;

    for (uint32_t n = 0; n < sim->n_lines; n++) {
        const line_t *ln = &sim->lines[n];
        json_t *o = json_object();
        if (!o)
            goto nomem;
        double nb = (double)ln->n_done;
        rc |= set(o, "id", json_string(ln->l.id));
        rc |= set(o, "buses_dispatched", json_integer((json_int_t)ln->dispatched));
        rc |= set(o, "buses_completed", json_integer((json_int_t)ln->n_done));
        rc |= set(o, "mean_travel_time_s", num(ratio(ln->sum_tt, nb)));
        rc |= set(o, "mean_signal_delay_s", num(ratio(ln->sum_sig_delay, nb)));
        rc |= set(o, "mean_stops_at_signals", num(ratio(ln->sum_sig_stops, nb)));
        rc |= set(o, "mean_lateness_s", num(ratio(ln->sum_late, (double)ln->n_late)));
        rc |= set(o, "mean_dwell_s", num(ratio(ln->sum_dwell, (double)ln->n_dwell)));
        rc |= json_array_append_new(lines, o);
    }
    rc |= set(tr, "lines", lines);
    lines = NULL;
    rc |= set(tr, "events_dropped", json_integer((json_int_t)sim->ev_dropped));
    rc |= set(r, "transit", tr);
    tr = NULL;

    rc |= set(prio, "requests", json_integer((json_int_t)sim->prio[SF_PRIO_REQUEST]));
    rc |= set(prio, "granted", json_integer((json_int_t)sim->prio[SF_PRIO_GRANTED]));
    rc |= set(prio, "refused", json_integer((json_int_t)sim->prio[SF_PRIO_REFUSED]));
    rc |= set(r, "priority", prio);
    prio = NULL;

    if (with_perf) {
        json_t *pf = json_object();
        if (!pf)
            goto nomem;
        rc |= set(pf, "wall_s", json_real(sim->wall_s));
        rc |= set(pf, "steps", json_integer((json_int_t)sim->step));
        rc |= set(pf, "vehicle_updates", json_integer((json_int_t)sim->veh_updates));
        rc |= set(pf, "vehicle_updates_per_s",
                  json_real(ratio((double)sim->veh_updates, sim->wall_s)));
        rc |= set(r, "perf", pf);
    }
    if (rc)
        goto nomem;
    return r;

nomem:
    json_decref(r);
    json_decref(net);
    json_decref(ixs);
    json_decref(tr);
    json_decref(lines);
    json_decref(prio);
    errno = ENOMEM;
    return NULL;
}

char *sf_sim_report_string(const sf_sim_t *sim, bool with_perf)
{
    json_t *r = sf_sim_report(sim, with_perf);
    if (!r)
        return NULL;
    char *s = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(r);
    if (!s)
        errno = ENOMEM;
    return s;
}
