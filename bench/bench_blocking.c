/* bench/bench_blocking.c — what limits an approach's discharge while its through movement
 * is green? The corridor's simulator and emulated units on their own plans (the fixed
 * arm), in one process and in lockstep order as bench_linkq steps them. At every step
 * inside the window (default the surge, 900-2700 s) and for every lane of every approach
 * link that carries a through movement, while that movement's signal group shows green:
 * the green time, and how the lane's front vehicle used it:
 *   - empty:     no vehicle within 30 m of the stop line (starved: nothing to discharge);
 *   - moving:    a front vehicle near the line moving (discharging);
 *   - wrong:     stopped at the line, a turner in a lane that does not serve its turn
 *                (a full bay's overflow) whose own signal is not green: it holds the lane;
 *   - turn red:  stopped at the line, its movement (another signal group) not green;
 *   - exit full: stopped at the line, its lane downstream without room (exit blocking:
 *                the through green runs with no discharge);
 *   - other:     stopped at the line otherwise (e.g. waiting for a merge, a start-up).
 * Also per link the share of the window its left bay was full (every bay slot taken).
 * Reads the simulator's internals (sim_internal.h): a diagnostic, not an API user.
 * Prints, asserts nothing.
 *
 * usage: bench_blocking [--seed N] [--from S] [--to S] [--surge] [--set PATH=VALUE]...
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "sim.h"
#include "sim_internal.h"
#include "unit.h"

#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"
#define MAX_SETS 64
#define NEAR_M   12.0f /* the front vehicle is "at the line" within this */
#define STOP_MPS 0.5f  /* and stopped below this speed */
#define EMPTY_M  30.0f /* no vehicle within this of the line: starved */

enum { C_EMPTY, C_MOVING, C_WRONG, C_TURNRED, C_EXITFULL, C_OTHER, C_N };
static const char *const cname[C_N] = {"empty",    "moving",    "wrong",
                                       "turn red", "exit full", "other"};

static sf_scenario_t *load(const char *file, const char *const *sets, size_t n)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_blocking", file);
    }
    return sc;
}

static const mov_t *movp(const sf_sim_t *sim, int32_t ix, uint8_t m)
{
    return &sim->mov[(size_t)ix * SF_MAX_MOVEMENTS + m];
}

/* The through movement of link li's downstream intersection, NULL when none. */
static const mov_t *through_of(const sf_sim_t *sim, uint32_t li)
{
    const link_t *lk = &sim->links[li];
    if (lk->to_ix < 0)
        return NULL;
    for (uint8_t k = 0; k < lk->n_mov; k++) {
        const mov_t *m = movp(sim, lk->to_ix, lk->mov[k]);
        if (m->turn == SF_TURN_THROUGH)
            return m;
    }
    return NULL;
}

/* Room (m) at the upstream end of lane tl: the last vehicle's rear, or the length. */
static float room_of(const sf_sim_t *sim, const lane_t *tl)
{
    if (tl->n == 0)
        return sim->links[tl->link].len;
    uint32_t j = tl->n - 1u;
    return tl->pos[j] - sim->vt[sim->v_type[tl->veh[j]]].len;
}

static int classify(const sf_sim_t *sim, const lane_t *ln, const link_t *lk)
{
    if (ln->n == 0 || ln->pos[0] < lk->len - EMPTY_M)
        return C_EMPTY;
    if (ln->pos[0] < lk->len - NEAR_M || ln->v[0] >= STOP_MPS)
        return C_MOVING;
    uint32_t w = ln->veh[0];
    uint8_t m = sim->v_mov[w];
    if (m == SF_NONE8)
        return C_OTHER;
    const mov_t *mv = movp(sim, lk->to_ix, m);
    uint8_t cls = sim->lamp[lk->to_ix][mv->sg];
    bool green = cls == LAMP_GO || cls == LAMP_CAUTION;
    if (!(mv->lanes >> ln->idx & 1u) && !green)
        return C_WRONG;
    if (!green)
        return C_TURNRED;
    const link_t *to = &sim->links[mv->to_link];
    if (sim->v_nlane[w] != SF_NONE8) {
        const lane_t *tl = &sim->lanes[to->lane0 + sim->v_nlane[w]];
        if (tl->n >= tl->jam || room_of(sim, tl) < sim->vt[sim->v_type[w]].s0 + 1.0f)
            return C_EXITFULL;
    } else {
        /* not chosen yet: every lane of the exit link without room */
        bool any = false;
        for (uint8_t j = 0; j < to->n_lanes; j++) {
            const lane_t *tl = &sim->lanes[to->lane0 + j];
            if (tl->n < tl->jam && room_of(sim, tl) >= 3.0f)
                any = true;
        }
        if (!any)
            return C_EXITFULL;
    }
    return C_OTHER;
}

int main(int argc, char **argv)
{
    const char *sets[MAX_SETS] = {0};
    char owned[MAX_SETS][96];
    size_t n_sets = 0, n_owned = 0;
    double from = 900, to = 2700;
    bool surge = false;
    for (int a = 1; a < argc; a++) {
        bool more = a + 1 < argc;
        if (!strcmp(argv[a], "--surge")) {
            surge = true;
        } else if ((!strcmp(argv[a], "--from") || !strcmp(argv[a], "--to")) && more) {
            char *end;
            double v = strtod(argv[a + 1], &end);
            if (end == argv[a + 1] || *end || !(v >= 0 && v <= 86400)) {
                fprintf(stderr, "bench_blocking: %s: not a time in [0, 86400] s: %s\n", argv[a],
                        argv[a + 1]);
                return 2;
            }
            *(argv[a][2] == 'f' ? &from : &to) = v;
            a++;
        } else if (!strcmp(argv[a], "--seed") && more && n_sets < MAX_SETS - 20) {
            snprintf(owned[n_owned], sizeof owned[0], "run.seed=%s", argv[++a]);
            sets[n_sets++] = owned[n_owned++];
        } else if (!strcmp(argv[a], "--set") && more && n_sets < MAX_SETS - 20) {
            sets[n_sets++] = argv[++a];
        } else {
            fprintf(stderr, "usage: bench_blocking [--seed N] [--from S] [--to S] [--surge] "
                            "[--set PATH=VALUE]...\n");
            return 2;
        }
    }
    if (!(to > from)) {
        fprintf(stderr, "bench_blocking: --to (%.0f s) must be after --from (%.0f s)\n", to, from);
        return 2;
    }
    if (surge)
        for (uint32_t e = 0; e < 18 && n_owned < MAX_SETS; e++) {
            snprintf(owned[n_owned], sizeof owned[0],
                     "demand.entries[%u].profile=[0.9,1.4,1.54,1.0]", e);
            sets[n_sets++] = owned[n_owned++];
        }
    snprintf(owned[n_owned], sizeof owned[0], "run.duration_s=%.0f", to);
    sets[n_sets++] = owned[n_owned++];
    sf_scenario_t *sc = load(CORRIDOR, sets, n_sets);
    if (!sc)
        return 1;
    char err[256];
    sf_sim_t *sim = sf_sim_new_checked(sc, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "bench_blocking: %s\n", err);
        return 1;
    }
    uint32_t n_ix = sc->n_intersections, n_ln = sim->n_lanes, n_l = sim->n_links;
    sf_unit_t **units = calloc(n_ix, sizeof *units);
    uint64_t *pres = calloc(n_ix, sizeof *pres);
    double(*acc)[C_N] = calloc(n_ln, sizeof *acc);
    double *green = calloc(n_ln, sizeof *green);
    double *bayfull = calloc(n_l, sizeof *bayfull);
    double *wrongq = calloc(n_l, sizeof *wrongq); /* left-turners queued outside the bay */
    double *dep = calloc(n_ln, sizeof *dep);      /* departures over the line in the window */
    uint32_t *front = calloc(n_ln, sizeof *front);
    float *front_p = calloc(n_ln, sizeof *front_p);
    if (!units || !pres || !acc || !green || !bayfull || !wrongq || !dep || !front || !front_p)
        return 1;
    for (uint32_t i = 0; i < n_ix; i++) {
        sf_unit_config_t cfg;
        sf_unit_config_default(&cfg, &sc->intersections[i]);
        sf_unit_config_from_control(&cfg, &sc->control);
        units[i] = sf_unit_new(&sc->intersections[i], &cfg);
        if (!units[i])
            return 1;
    }
    uint32_t step_ds = (uint32_t)lround(sc->run.step_s * 10);
    uint32_t tod0 = (sc->run.start_tod_s % 86400u) * 10u;
    uint64_t n_steps = (uint64_t)llround(to / sc->run.step_s);
    double dt = sc->run.step_s, win = 0;
    for (uint64_t k = 0; k < n_steps; k++) {
        uint32_t tod = (uint32_t)((tod0 + k * step_ds) % 864000u);
        for (uint32_t i = 0; i < n_ix; i++) {
            (void)sf_unit_set_clock(units[i], tod);
            sf_unit_set_detectors(units[i], pres[i]);
            sf_unit_tick(units[i]);
            const sf_unit_status_t *s = sf_unit_status(units[i]);
            (void)sf_sim_set_lamps(sim, i, s->sg_lamp, s->n_sg);
            sf_unit_heartbeat(units[i], (uint16_t)(k / 10));
        }
        if (sf_sim_step(sim) != 0)
            return 1;
        sf_transit_event_t ev;
        while (sf_sim_next_event(sim, &ev)) {
        }
        for (uint32_t i = 0; i < n_ix; i++)
            (void)sf_sim_detectors(sim, i, &pres[i], NULL, NULL, 0);
        double t = sf_sim_time(sim);
        for (uint32_t l = 0; l < n_ln; l++) { /* the front vehicle left over the line */
            const lane_t *ln = &sim->lanes[l];
            uint32_t f = ln->n ? ln->veh[0] : SF_NONE32;
            if (t >= from && front[l] != SF_NONE32 && f != front[l] &&
                front_p[l] > sim->links[ln->link].len - 5.0f)
                dep[l]++;
            front[l] = f;
            front_p[l] = ln->n ? ln->pos[0] : 0.0f;
        }
        if (t < from)
            continue;
        win += dt;
        for (uint32_t l = 0; l < n_ln; l++) {
            const lane_t *ln = &sim->lanes[l];
            const link_t *lk = &sim->links[ln->link];
            if (ln->start_m > 0) {
                /* bay full: its last vehicle's rear within a car of the bay start */
                if (ln->n > 0 && room_of(sim, ln) < ln->start_m + 8.0f)
                    bayfull[ln->link] += dt;
                continue;
            }
            const mov_t *th = through_of(sim, ln->link);
            if (!th || !(th->lanes >> ln->idx & 1u))
                continue;
            uint8_t cls = sim->lamp[lk->to_ix][th->sg];
            if (cls != LAMP_GO)
                continue;
            green[l] += dt;
            acc[l][classify(sim, ln, lk)] += dt;
        }
        for (uint32_t l = 0; l < n_ln; l++) { /* wrong-lane left turners, vehicle-seconds */
            const lane_t *ln = &sim->lanes[l];
            const link_t *lk = &sim->links[ln->link];
            if (lk->to_ix < 0 || ln->start_m > 0)
                continue;
            for (uint32_t j = 0; j < ln->n; j++) {
                uint8_t m = sim->v_mov[ln->veh[j]];
                if (m != SF_NONE8 && movp(sim, lk->to_ix, m)->turn == SF_TURN_LEFT &&
                    !(movp(sim, lk->to_ix, m)->lanes >> ln->idx & 1u) && ln->v[j] < STOP_MPS)
                    wrongq[ln->link] += dt;
            }
        }
    }
    printf("blocking: seed %llu, %.0f-%.0f s%s, units on their own plans\n",
           (unsigned long long)sc->run.seed, from, to, surge ? ", surge" : "");
    printf("%-8s %4s %7s", "link", "lane", "green_s");
    for (int c = 0; c < C_N; c++)
        printf(" %9s", cname[c]);
    printf("  veh/h_green   bay full %%  wrong-lane lefts (veh avg)\n");
    for (uint32_t l = 0; l < n_ln; l++) {
        if (green[l] <= 0)
            continue;
        const lane_t *ln = &sim->lanes[l];
        printf("%-8s %4u %7.0f", sc->links[ln->link].id, ln->idx, green[l]);
        for (int c = 0; c < C_N; c++)
            printf(" %9.1f", 100.0 * acc[l][c] / green[l]);
        printf(" %8.0f", 3600.0 * dep[l] / green[l]);
        if (ln->idx == 0)
            printf("   %5.1f %6.2f", 100.0 * bayfull[ln->link] / win, wrongq[ln->link] / win);
        printf("\n");
    }
    for (uint32_t i = 0; i < n_ix; i++)
        sf_unit_destroy(&units[i]);
    free(units);
    free(pres);
    free(acc);
    free(green);
    free(bayfull);
    free(wrongq);
    free(dep);
    free(front);
    free(front_p);
    sf_sim_destroy(&sim);
    sf_scenario_destroy(&sc);
    return 0;
}
