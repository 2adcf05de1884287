/* bench/bench_linkq.c — how right is linkq? The corridor's simulator and emulated units in
 * one process, stepped in lockstep order as `sigflow run` steps them (units tick on the
 * detectors of the previous step, the model steps on the units' lamps), and linkq fed
 * at every control.poll_period_s exactly what the centre reads from each unit (the last
 * completed detector interval, presence, phase greens). Every --every seconds each
 * approach link's estimate (sf_linkq_link) is compared with the simulator's truth on that
 * link: every vehicle on it, and the queued ones (speed below 2 m/s).
 *
 * Control: the units' own plans (the scenario's time-of-day plans; the centre's heartbeat
 * only, no plan downloads or green-wave re-plans), or with --mp max-pressure decided by
 * the centre's own function (sf_mp_decide_linkq, as controller.c calls it), applied here
 * on the units directly (phase hold / force-off / call at each poll, the unit in centre
 * actuated mode) from this linkq's estimates: the Modbus round trip of `sigflow run` is
 * not in the loop, so the decisions come up to a poll sooner than there and the run is
 * not the evidence run.
 *
 * Prints per link: mean error (estimate - truth), mean absolute error, share of samples
 * off by more than 5 vehicles, against all vehicles and against the queued ones; then
 * the same over entry links and over interior links (stor: the link's storage as linkq
 * caps it; --trace LINK also prints that link's every sample). Asserts nothing about the
 * figures. --idle-clear and --free-occ set linkq's idle_clear_s and free_occ_pct (linkq.h)
 * for this estimator: what a bias comes from.
 *
 * usage: bench_linkq [--scenario FILE] [--seed N] [--duration S] [--every S] [--surge]
 *                    [--mp] [--trace LINK]
 *                    [--idle-clear S] [--free-occ PCT] [--set PATH=VALUE]...
 * (--surge: every entry's demand profile [0.9,1.4,1.54,1.0], as bench/evidence.sh). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptive.h"
#include "linkq.h"
#include "scenario.h"
#include "sim.h"
#include "unit.h"

#define CORRIDOR   SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"
#define MAX_SETS   64
#define QUEUED_MPS 2.0 /* a vehicle slower than this is queued */
#define OFF_VEH    5.0 /* "off by more than" this many vehicles */

/* Max-pressure as controller.c max_pressure() runs it over Modbus, here on the units
 * directly: the same linkq inputs, stage enumeration, reachability, hysteresis and
 * decision, applied with the same hold / force-off / call phase controls. */
typedef struct {
    sf_stage_t stages[SF_MAX_STAGES];
    int n_stages, stage;
    double since_s;
    unsigned switches; /* stage switches commanded */
} mp_t;

static uint16_t phase_nos(const sf_intersection_t *ix, uint16_t m)
{
    uint16_t out = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++)
        if (m & (1u << p))
            out = (uint16_t)(out | (1u << (ix->phases[p].id - 1)));
    return out;
}

static void mp_step(const sf_scenario_t *sc, const sf_linkq_t *lq, uint32_t i, sf_unit_t *unit,
                    mp_t *u, double t)
{
    const sf_intersection_t *ix = &sc->intersections[i];
    const sf_unit_status_t *st = sf_unit_status(unit);
    if (u->n_stages <= 0)
        return;
    if (st->control_mode != SF_CM_CENTRE_ACTUATED) {
        if (st->control_mode == SF_CM_CENTRE_FIXED || st->control_mode == SF_CM_CENTRE_COORDINATED)
            sf_unit_command_mode(unit, SF_UMODE_ACTUATED);
        return;
    }
    int cur = -1;
    for (int k = 0; k < u->n_stages; k++)
        if (st->greens && phase_nos(ix, u->stages[k].phase_mask) == st->greens)
            cur = k;
    if (cur < 0)
        return;
    if (cur != u->stage) {
        u->stage = cur;
        u->since_s = t;
    }
    double sp[SF_MAX_STAGES];
    sf_mp_decision_t d;
    if (sf_mp_decide_linkq(sc, lq, i, u->stages, u->n_stages, cur, t - u->since_s, st->veh_calls,
                           sp, &d) < 0)
        return;
    uint16_t cur_no = phase_nos(ix, u->stages[cur].phase_mask);
    if (d.switch_stage) {
        uint16_t next_no = phase_nos(ix, u->stages[d.stage].phase_mask);
        u->switches++;
        sf_unit_phase_control(unit, SF_CTL_HOLD, 0);
        sf_unit_phase_control(unit, SF_CTL_FORCE_OFF, (uint16_t)(cur_no & ~next_no));
        sf_unit_phase_control(unit, SF_CTL_VEH_CALL, next_no);
    } else {
        sf_unit_phase_control(unit, SF_CTL_FORCE_OFF, 0);
        sf_unit_phase_control(unit, SF_CTL_HOLD, cur_no);
    }
}

typedef struct {
    double n, err_all, abs_all, off_all, err_q, abs_q, off_q, truth_all, truth_q, est;
} acc_t;

static void acc_add(acc_t *a, double est, double all, double queued)
{
    a->n++;
    a->est += est;
    a->truth_all += all;
    a->truth_q += queued;
    a->err_all += est - all;
    a->abs_all += fabs(est - all);
    a->off_all += fabs(est - all) > OFF_VEH;
    a->err_q += est - queued;
    a->abs_q += fabs(est - queued);
    a->off_q += fabs(est - queued) > OFF_VEH;
}

static void acc_print(const char *name, double storage, const acc_t *a)
{
    if (a->n <= 0)
        return;
    double n = a->n;
    printf("%-22s %5.0f %6.0f %7.1f %7.1f %7.1f | %+7.1f %6.1f %5.1f%% | %+7.1f %6.1f %5.1f%%\n",
           name, storage, n, a->est / n, a->truth_all / n, a->truth_q / n, a->err_all / n,
           a->abs_all / n, 100 * a->off_all / n, a->err_q / n, a->abs_q / n, 100 * a->off_q / n);
}

static void acc_merge(acc_t *into, const acc_t *a)
{
    into->n += a->n;
    into->est += a->est;
    into->truth_all += a->truth_all;
    into->truth_q += a->truth_q;
    into->err_all += a->err_all;
    into->abs_all += a->abs_all;
    into->off_all += a->off_all;
    into->err_q += a->err_q;
    into->abs_q += a->abs_q;
    into->off_q += a->off_q;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_linkq [--scenario FILE] [--seed N] [--duration S] [--every S] "
                    "[--surge] [--mp] [--trace LINK] [--idle-clear S] [--free-occ PCT] "
                    "[--set PATH=VALUE]...\n");
    return 2;
}

/* A number option's value: a finite number in (lo, hi] (lo excluded), or a precise error
 * naming the option and what it takes; *out untouched then. */
static bool number_arg(const char *opt, const char *text, double lo, double hi, const char *unit,
                       double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v) || !(v > lo) || v > hi) {
        fprintf(stderr, "bench_linkq: %s must be a number above %g and at most %g %s, got \"%s\"\n",
                opt, lo, hi, unit, text);
        return false;
    }
    *out = v;
    return true;
}

static sf_scenario_t *load(const char *file, const char *const *sets, size_t n)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_linkq", file);
    }
    return sc;
}

int main(int argc, char **argv)
{
    const char *file = CORRIDOR;
    const char *sets[MAX_SETS] = {0};
    char owned[MAX_SETS][96];
    size_t n_sets = 0, n_owned = 0;
    double every = 5;
    bool surge = false, mp_on = false;
    const char *trace = NULL; /* link id whose samples are printed */
    sf_linkq_opts_t lqo;
    sf_linkq_opts_default(&lqo);
    for (int a = 1; a < argc; a++) {
        bool more = a + 1 < argc;
        if (!strcmp(argv[a], "--scenario") && more) {
            file = argv[++a];
        } else if (!strcmp(argv[a], "--every") && more) {
            if (!number_arg("--every", argv[++a], 0, 3600, "s", &every))
                return 2;
        } else if (!strcmp(argv[a], "--idle-clear") && more) {
            if (!number_arg("--idle-clear", argv[++a], 0, 3600, "s", &lqo.idle_clear_s))
                return 2;
        } else if (!strcmp(argv[a], "--free-occ") && more) {
            if (!number_arg("--free-occ", argv[++a], 0, 100, "%", &lqo.free_occ_pct))
                return 2;
        } else if (!strcmp(argv[a], "--trace") && more) {
            trace = argv[++a];
        } else if (!strcmp(argv[a], "--surge")) {
            surge = true;
        } else if (!strcmp(argv[a], "--mp") && n_sets < MAX_SETS) {
            mp_on = true;
            sets[n_sets++] = "control.strategy=max_pressure";
        } else if ((!strcmp(argv[a], "--seed") || !strcmp(argv[a], "--duration")) && more &&
                   n_owned < MAX_SETS && n_sets < MAX_SETS) {
            snprintf(owned[n_owned], sizeof owned[0], "run.%s=%s",
                     argv[a][2] == 's' ? "seed" : "duration_s", argv[a + 1]);
            sets[n_sets++] = owned[n_owned++];
            a++;
        } else if (!strcmp(argv[a], "--set") && more && n_sets < MAX_SETS) {
            sets[n_sets++] = argv[++a];
        } else {
            return usage();
        }
    }
    sf_scenario_t *sc = load(file, sets, n_sets);
    if (!sc)
        return 1;
    if (surge) {
        for (uint32_t e = 0; e < sc->demand.n_entries && n_owned < MAX_SETS && n_sets < MAX_SETS;
             e++) {
            snprintf(owned[n_owned], sizeof owned[0],
                     "demand.entries[%u].profile=[0.9,1.4,1.54,1.0]", e);
            sets[n_sets++] = owned[n_owned++];
        }
        sf_scenario_destroy(&sc);
        sc = load(file, sets, n_sets);
        if (!sc)
            return 1;
    }
    char err[256];
    sf_sim_t *sim = sf_sim_new_checked(sc, err, sizeof err);
    sf_linkq_t *lq = sf_linkq_new(sc, &lqo);
    uint32_t n_ix = sc->n_intersections, n_l = sc->n_links;
    sf_unit_t **units = calloc(n_ix ? n_ix : 1, sizeof *units);
    uint64_t *pres = calloc(n_ix ? n_ix : 1, sizeof *pres);
    uint16_t *det_s = calloc(n_ix ? n_ix : 1, sizeof *det_s);
    mp_t *mp = calloc(n_ix ? n_ix : 1, sizeof *mp);
    acc_t *acc = calloc(n_l ? n_l : 1, sizeof *acc);
    double *cnt_all = calloc(n_l ? n_l : 1, sizeof *cnt_all);
    double *cnt_q = calloc(n_l ? n_l : 1, sizeof *cnt_q);
    /* per lane of each link: vehicles, queued ones */
    double *lane_all = calloc((n_l ? n_l : 1) * SF_MAX_LANES, sizeof *lane_all);
    double *lane_q = calloc((n_l ? n_l : 1) * SF_MAX_LANES, sizeof *lane_q);
    uint32_t n_mv = 0;
    for (uint32_t i = 0; i < n_ix; i++)
        n_mv += sc->intersections[i].n_movements;
    /* movements whose lanes are theirs alone (every lane allowing the turn allows only
     * it): the simulator says how many of their vehicles are in those lanes */
    uint32_t *own = calloc(n_mv ? n_mv : 1, sizeof *own); /* lane mask, 0 = shared */
    acc_t *acc_mv = calloc(n_mv ? n_mv : 1, sizeof *acc_mv);
    int rc = 1;
    bool said = false; /* the failure is already reported precisely */
    if (!lq)
        snprintf(err, sizeof err, "the link queue estimator: %s", strerror(errno));
    if (!sim || !lq || !units || !pres || !det_s || !mp || !acc || !cnt_all || !cnt_q ||
        !lane_all || !lane_q || !own || !acc_mv) {
        fprintf(stderr, "bench_linkq: %s\n", sim && lq ? strerror(errno) : err);
        said = true;
        goto out;
    }
    for (uint32_t i = 0; i < n_ix; i++) {
        sf_unit_config_t cfg;
        sf_unit_config_default(&cfg, &sc->intersections[i]);
        sf_unit_config_from_control(&cfg, &sc->control);
        det_s[i] = (uint16_t)(cfg.det_interval_ds / 10); /* as the master reads it */
        units[i] = sf_unit_new(&sc->intersections[i], &cfg);
        mp[i].stage = -1;
        if (mp_on && (mp[i].n_stages =
                          sf_mp_stages(&sc->intersections[i], mp[i].stages, SF_MAX_STAGES)) <= 0) {
            fprintf(stderr, "bench_linkq: no stages at intersection %u\n", i);
            said = true;
            goto out;
        }
        if (!units[i]) {
            fprintf(stderr, "bench_linkq: unit %u: %s\n", i, sf_unit_strerror(errno));
            said = true;
            goto out;
        }
    }
    for (uint32_t i = 0, g = 0; i < n_ix; i++)
        for (uint8_t m = 0; m < sc->intersections[i].n_movements; m++, g++) {
            const sf_movement_t *mv = &sc->intersections[i].movements[m];
            const sf_link_t *ln = &sc->links[mv->from_link_idx];
            uint32_t mask = 0;
            bool alone = true;
            for (uint8_t j = 0; j < ln->n_lanes && j < SF_MAX_LANES; j++)
                if (ln->lanes[j].use_mask >> mv->turn & 1u) {
                    mask |= 1u << j;
                    alone = alone && ln->lanes[j].use_mask == (1u << mv->turn);
                }
            own[g] = alone ? mask : 0;
        }
    uint32_t step_ds = (uint32_t)lround(sc->run.step_s * 10);
    uint32_t tod0 = (sc->run.start_tod_s % 86400u) * 10u;
    uint64_t n_steps = (uint64_t)llround(sc->run.duration_s / sc->run.step_s);
    uint64_t poll_steps = (uint64_t)fmax(1, round(sc->control.poll_period_s / sc->run.step_s));
    uint64_t every_steps = (uint64_t)fmax(1, round(every / sc->run.step_s));
    size_t cap = 0;
    sf_vehicle_snap_t *snap = NULL;
    for (uint64_t k = 0; k < n_steps; k++) {
        uint32_t tod = (uint32_t)((tod0 + k * step_ds) % 864000u);
        for (uint32_t i = 0; i < n_ix; i++) {
            if (sf_unit_set_clock(units[i], tod) != 0)
                goto out;
            sf_unit_set_detectors(units[i], pres[i]);
            sf_unit_tick(units[i]);
            const sf_unit_status_t *s = sf_unit_status(units[i]);
            if (sf_sim_set_lamps(sim, i, s->sg_lamp, s->n_sg) != 0)
                goto out;
        }
        if (sf_sim_step(sim) != 0)
            goto out;
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev)) {
        }
        for (uint32_t i = 0; i < n_ix; i++)
            if (sf_sim_detectors(sim, i, &pres[i], NULL, NULL, 0) < 0)
                goto out;
        double t = sf_sim_time(sim);
        if (k % poll_steps == 0) /* the centre's poll: what the unit says after its tick */
            for (uint32_t i = 0; i < n_ix; i++) {
                const sf_unit_status_t *s = sf_unit_status(units[i]);
                sf_linkq_obs_t o = {.det_seq = s->det_seq,
                                    .det_interval_s = det_s[i],
                                    .det_volume = s->det_volume,
                                    .det_occupancy = s->det_occupancy,
                                    .det_presence = s->det_presence,
                                    .greens = s->greens};
                if (sf_linkq_observe(lq, i, t, &o) != 0)
                    goto out;
                sf_unit_heartbeat(units[i], (uint16_t)(k / poll_steps));
                if (mp_on)
                    mp_step(sc, lq, i, units[i], &mp[i], t);
            }
        if ((k + 1) % every_steps != 0)
            continue;
        size_t nv = sf_sim_vehicle_count(sim);
        if (nv > cap) {
            cap = nv * 2 + 64;
            free(snap);
            snap = calloc(cap, sizeof *snap);
            if (!snap)
                goto out;
        }
        size_t got = sf_sim_snapshot(sim, snap, cap);
        memset(cnt_all, 0, n_l * sizeof *cnt_all);
        memset(cnt_q, 0, n_l * sizeof *cnt_q);
        memset(lane_all, 0, n_l * SF_MAX_LANES * sizeof *lane_all);
        memset(lane_q, 0, n_l * SF_MAX_LANES * sizeof *lane_q);
        for (size_t v = 0; v < got; v++)
            if (snap[v].link_idx < n_l) {
                bool slow = snap[v].speed_mps < QUEUED_MPS;
                cnt_all[snap[v].link_idx]++;
                cnt_q[snap[v].link_idx] += slow;
                if (snap[v].lane < SF_MAX_LANES) {
                    lane_all[snap[v].link_idx * SF_MAX_LANES + snap[v].lane]++;
                    lane_q[snap[v].link_idx * SF_MAX_LANES + snap[v].lane] += slow;
                }
            }
        for (uint32_t i = 0, g = 0; i < n_ix; i++)
            for (uint8_t m = 0; m < sc->intersections[i].n_movements; m++, g++) {
                if (!own[g])
                    continue;
                uint32_t l = sc->intersections[i].movements[m].from_link_idx;
                double all = 0, queued = 0;
                for (uint32_t j = 0; j < SF_MAX_LANES; j++)
                    if (own[g] >> j & 1u) {
                        all += lane_all[l * SF_MAX_LANES + j];
                        queued += lane_q[l * SF_MAX_LANES + j];
                    }
                acc_add(&acc_mv[g], sf_linkq_movement(lq, i, m), all, queued);
            }
        for (uint32_t l = 0; l < n_l; l++) {
            if (sc->links[l].to_kind != SF_NODE_INTERSECTION)
                continue;
            acc_add(&acc[l], sf_linkq_link(lq, l), cnt_all[l], cnt_q[l]);
            if (trace && !strcmp(trace, sc->links[l].id))
                printf("trace %s t %.0f est %.1f all %.0f queued %.0f\n", trace, t,
                       sf_linkq_link(lq, l), cnt_all[l], cnt_q[l]);
        }
    }
    printf("linkq vs simulator: %s seed %llu, %.0f s%s, every %.0f s, %s\n", file,
           (unsigned long long)sc->run.seed, sc->run.duration_s, surge ? ", surge" : "", every,
           mp_on ? "max-pressure" : "units on their own plans");
    printf("%-22s %5s %6s %7s %7s %7s | %-23s | %-23s\n", "link", "stor", "n", "est", "all",
           "queued", "vs all: err  MAE  >5", "vs queued: err  MAE  >5");
    if (mp_on) {
        unsigned sw = 0;
        for (uint32_t i = 0; i < n_ix; i++)
            sw += mp[i].switches;
        printf("max-pressure: %u stage switches commanded over %u intersections\n", sw, n_ix);
    }
    acc_t ent = {0}, inr = {0};
    for (uint32_t l = 0; l < n_l; l++) {
        const sf_link_t *ln = &sc->links[l];
        if (ln->to_kind != SF_NODE_INTERSECTION)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s%s", ln->id,
                 ln->from_kind == SF_NODE_BOUNDARY ? " (entry)" : "");
        acc_print(name, sf_linkq_storage(lq, l), &acc[l]);
        acc_merge(ln->from_kind == SF_NODE_BOUNDARY ? &ent : &inr, &acc[l]);
    }
    acc_print("ENTRY links", 0, &ent);
    acc_print("INTERIOR links", 0, &inr);
    printf("movements in lanes of their own (truth: the vehicles in those lanes; those "
           "still in the shared lanes upstream are not in it):\n");
    acc_t own_all = {0};
    static const char *const turn_name[] = {"left", "through", "right", "u-turn"};
    for (uint32_t i = 0, g = 0; i < n_ix; i++)
        for (uint8_t m = 0; m < sc->intersections[i].n_movements; m++, g++) {
            if (!own[g])
                continue;
            const sf_movement_t *mv = &sc->intersections[i].movements[m];
            char name[64];
            snprintf(name, sizeof name, "%s %s", sc->links[mv->from_link_idx].id,
                     mv->turn < 4 ? turn_name[mv->turn] : "?");
            acc_print(name, 0, &acc_mv[g]);
            acc_merge(&own_all, &acc_mv[g]);
        }
    acc_print("OWN-LANE movements", 0, &own_all);
    rc = 0;
    free(snap);
out:
    if (rc && !said)
        fprintf(stderr, "bench_linkq: the run failed (%s)\n", strerror(errno));
    if (units)
        for (uint32_t i = 0; i < n_ix; i++)
            sf_unit_destroy(&units[i]);
    free(units);
    free(pres);
    free(det_s);
    free(mp);
    free(acc);
    free(cnt_all);
    free(cnt_q);
    free(lane_all);
    free(lane_q);
    free(own);
    free(acc_mv);
    sf_linkq_destroy(&lq);
    sf_sim_destroy(&sim);
    sf_scenario_destroy(&sc);
    return rc;
}
