/* tests/test_scenario.c — the scenario loader and checker, the assets, `sigflow check`. */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "scenario.h"
#include "slurp.h"

#define SINGLE   SIGFLOW_ASSETS "/scenarios/single.json"
#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"
#define BAD_DIR  SIGFLOW_TESTDATA "/bad"

static int phase_idx(const sf_intersection_t *ix, int id)
{
    for (int k = 0; k < ix->n_phases; k++)
        if (ix->phases[k].id == id)
            return k;
    return -1;
}

static int sg_idx(const sf_intersection_t *ix, const char *id)
{
    for (int k = 0; k < ix->n_sg; k++)
        if (strcmp(ix->sg[k].id, id) == 0)
            return k;
    return -1;
}

static int link_idx(const sf_scenario_t *sc, const char *id)
{
    for (uint32_t k = 0; k < sc->n_links; k++)
        if (strcmp(sc->links[k].id, id) == 0)
            return (int)k;
    return -1;
}

static sf_scenario_t *load_ok(const char *file, const char *const *sets, size_t n)
{
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n, &errs);
    for (size_t k = 0; k < errs.n; k++)
        cr_log_error("%s", errs.msg[k]);
    cr_assert_not_null(sc, "%s should load", file);
    cr_assert_eq(errs.n, 0);
    sf_errors_clear(&errs);
    return sc;
}

/* Load expecting failure; returns the errors (caller clears). */
static sf_errors_t load_bad(const char *file, const char *const *sets, size_t n)
{
    sf_errors_t errs = {0, NULL};
    errno = 0;
    sf_scenario_t *sc = sf_scenario_load(file, sets, n, &errs);
    bool loaded = sc != NULL;
    sf_scenario_destroy(&sc); /* a failing assertion below must not leak it */
    cr_assert_not(loaded, "%s should be rejected", file);
    cr_assert_neq(errno, 0);
    cr_assert_gt(errs.n, 0);
    return errs;
}

Test(scenario, single_loads_with_its_facts)
{
    sf_scenario_t *sc = load_ok(SINGLE, NULL, 0);
    cr_assert_eq(sc->version, 1);
    cr_assert_eq(sc->n_intersections, 1);
    cr_assert_eq(sc->n_boundaries, 4);
    cr_assert_eq(sc->n_links, 8);
    cr_assert_eq(sc->n_lines, 0);
    cr_assert_eq(sc->demand.n_entries, 4);
    const sf_intersection_t *ix = &sc->intersections[0];
    cr_assert_str_eq(ix->id, "I1");
    cr_assert_eq(ix->n_phases, 2);
    cr_assert_eq(ix->n_movements, 12);
    cr_assert_eq(ix->n_det, 12);
    cr_assert_eq(ix->n_plans, 1);
    cr_assert_eq(ix->plans[0].cycle_ds, 600);
    int p2 = phase_idx(ix, 2), p4 = phase_idx(ix, 4);
    cr_assert(p2 >= 0 && p4 >= 0);
    cr_assert_eq(ix->plans[0].split_ds[p2], 300);
    cr_assert_eq(ix->phases[p2].min_green_ds, 100);
    cr_assert_eq(ix->phases[p2].yellow_ds, 30);
    /* one ring: 2 and 4 never together, so their vehicle groups conflict */
    cr_assert_not(ix->concurrent[p2][p4]);
    int a2 = sg_idx(ix, "A2"), a4 = sg_idx(ix, "A4"), ped2 = sg_idx(ix, "P2");
    cr_assert(ix->sg_conflict[a2][a4]);
    cr_assert_not(ix->sg_conflict[a2][ped2]);
    cr_assert_eq(ix->strategy, SF_STRAT_FIXED);
    /* every arm: an inbound link from its boundary, default length = node distance */
    int w = link_idx(sc, "W_in");
    cr_assert_geq(w, 0);
    cr_assert_eq(sc->links[w].from_kind, SF_NODE_BOUNDARY);
    cr_assert_eq(sc->links[w].to_kind, SF_NODE_INTERSECTION);
    cr_assert_float_eq(sc->links[w].length_m, 300.0f, 1e-3f);
    cr_assert_float_eq(sc->links[w].speed_mps, 50.0f / 3.6f, 1e-4f);
    cr_assert_eq(sc->links[w].n_lanes, 3);
    cr_assert_float_eq(sc->links[w].lanes[2].bay_m, 40.0f, 1e-6f);
    cr_assert_eq(sc->links[w].lanes[2].use_mask, SF_LANE_USE_LEFT);
    cr_assert_float_eq(sc->run.step_s, 0.1, 1e-12);
    cr_assert_eq(sc->run.start_tod_s, 7 * 3600 + 30 * 60);
    cr_assert_eq(sc->run.seed, 1);
    /* defaults of fields the file leaves out */
    cr_assert_str_eq(sc->run.modbus_listen, "127.0.0.1");
    cr_assert_float_eq(sc->control.heartbeat_timeout_s, 5.0f, 1e-6f);
    cr_assert_float_eq(sc->demand.vtype[SF_VEH_CAR].length_m, 4.5f, 1e-6f);
    char buf[256];
    sf_scenario_summary(sc, buf, sizeof buf);
    cr_assert_str_eq(buf, "single isolated intersection: 1 intersections, 8 links, 12 detectors, "
                          "0 lines, 0 stops, 1 plans, 1600 veh/h entry flow");
    sf_scenario_destroy(&sc);
    cr_assert_null(sc);
    sf_scenario_destroy(&sc); /* safe twice */
}

/* A file with only the required fields gets every documented default (SCENARIO.md). */
Test(scenario, documented_defaults)
{
    sf_scenario_t *sc = load_ok(SIGFLOW_TESTDATA "/minimal.json", NULL, 0);
    const sf_intersection_t *ix = &sc->intersections[0];
    const sf_phase_t *ph = &ix->phases[0];
    cr_assert_eq(ph->ring, 1);
    cr_assert_eq(ph->passage_ds, 30);
    cr_assert_eq(ph->max1_ds, 400);
    cr_assert_eq(ph->max2_ds, 600);
    cr_assert_eq(ph->yellow_ds, 30);
    cr_assert_eq(ph->red_clear_ds, 20);
    cr_assert_eq(ph->walk_ds, 0);
    cr_assert_eq(ph->ped_clear_ds, 0);
    cr_assert_eq(ph->recall, SF_RECALL_NONE);
    cr_assert_str_eq(ix->name, "");
    cr_assert_eq(ix->n_schedule, 0);
    cr_assert_eq(ix->local_plan_idx, 0);
    cr_assert_eq(ix->n_det, 0);
    cr_assert_eq(ix->strategy, SF_STRAT_FIXED);
    cr_assert_str_eq(ix->unit_host, "");
    cr_assert_eq(ix->unit_port, 0);
    cr_assert_eq(ix->plans[0].offset_ds, 0);
    cr_assert_eq(ix->plans[0].force_mode, SF_FORCE_FIXED);
    cr_assert_eq(ix->plans[0].coord_phase_mask, 0);
    cr_assert_eq(ix->plans[0].split_mode[0], SF_SPLIT_NONE);
    const sf_link_t *in = &sc->links[0], *out = &sc->links[1];
    cr_assert_float_eq(in->length_m, 250.0f, 1e-3f);
    cr_assert_float_eq(out->length_m, 250.0f, 1e-3f); /* 3-4-5: 200 east, 150 north */
    cr_assert_float_eq(in->speed_mps, 50.0f / 3.6f, 1e-4f);
    cr_assert_float_eq(in->lanes[0].bay_m, 0.0f, 0.0f);
    cr_assert_float_eq(in->turn_ratio[SF_TURN_THROUGH], 1.0f, 0.0f);
    cr_assert_float_eq(in->turn_ratio[SF_TURN_LEFT], 0.0f, 0.0f);
    cr_assert_float_eq(out->turn_ratio[SF_TURN_THROUGH], 1.0f, 0.0f);
    cr_assert_eq(sc->demand.n_entries, 0);
    cr_assert_eq(sc->demand.slice_s, 900);
    cr_assert_float_eq(sc->demand.vtype[SF_VEH_TRUCK].length_m, 12.0f, 0.0f);
    cr_assert_float_eq(sc->demand.vtype[SF_VEH_BUS].t_s, 1.5f, 1e-6f);
    cr_assert_eq(sc->n_lines, 0);
    const sf_control_t *ct = &sc->control;
    cr_assert_eq(ct->strategy, SF_STRAT_FIXED);
    cr_assert_not(ct->priority.enabled);
    cr_assert_float_eq(ct->priority.lateness_threshold_s, 60.0f, 0.0f);
    cr_assert_float_eq(ct->priority.checkin_distance_m, 150.0f, 0.0f);
    cr_assert_float_eq(ct->priority.max_extension_s, 15.0f, 0.0f);
    cr_assert_float_eq(ct->priority.max_early_green_s, 15.0f, 0.0f);
    cr_assert_float_eq(ct->priority.lockout_s, 120.0f, 0.0f);
    cr_assert_float_eq(ct->poll_period_s, 1.0f, 0.0f);
    cr_assert_float_eq(ct->heartbeat_timeout_s, 5.0f, 0.0f);
    cr_assert_float_eq(ct->adaptive_min_cycle_s, 60.0f, 0.0f);
    cr_assert_float_eq(ct->adaptive_max_cycle_s, 150.0f, 0.0f);
    const sf_run_t *run = &sc->run;
    cr_assert_float_eq(run->duration_s, 3600.0, 0.0);
    cr_assert_float_eq(run->warmup_s, 0.0, 0.0);
    cr_assert_float_eq(run->step_s, 0.1, 1e-15);
    cr_assert_eq(run->seed, 1);
    cr_assert_eq(run->mode, SF_MODE_LOCKSTEP);
    cr_assert_float_eq(run->speed_factor, 1.0, 0.0);
    cr_assert_eq(run->start_tod_s, 7 * 3600);
    cr_assert_float_eq(run->snapshot_hz, 10.0, 0.0);
    cr_assert_float_eq(run->step_timeout_s, 10.0, 0.0);
    cr_assert_str_eq(run->bus_endpoint, "");
    cr_assert_str_eq(run->modbus_listen, "127.0.0.1");
    cr_assert_eq(run->modbus_base_port, 0);
    sf_scenario_destroy(&sc);
}

/* Arterial through v/c of one approach under plan 1, as SCENARIO.md computes it. */
static double vc(const sf_scenario_t *sc, const char *ix_id, const char *link_id)
{
    const sf_intersection_t *ix = &sc->intersections[sf_scenario_find_intersection(sc, ix_id)];
    int li = link_idx(sc, link_id);
    const sf_link_t *ln = &sc->links[li];
    double flow = -1;
    for (uint32_t k = 0; k < sc->demand.n_entries; k++)
        if ((int)sc->demand.entries[k].link_idx == li)
            flow = sc->demand.entries[k].flow_veh_h;
    cr_assert_geq(flow, 0);
    int thr_lanes = 0;
    for (int k = 0; k < ln->n_lanes; k++)
        thr_lanes += (ln->lanes[k].use_mask & SF_LANE_USE_THROUGH) != 0;
    /* the coordinated through phase serving the approach */
    int sg = -1;
    for (int m = 0; m < ix->n_movements; m++)
        if ((int)ix->movements[m].from_link_idx == li && ix->movements[m].turn == SF_TURN_THROUGH)
            sg = ix->movements[m].sg_idx;
    cr_assert_geq(sg, 0);
    const sf_phase_t *ph = &ix->phases[ix->sg[sg].phase_idx];
    const sf_plan_t *pl = &ix->plans[0];
    double g = (pl->split_ds[ix->sg[sg].phase_idx] - ph->yellow_ds - ph->red_clear_ds) / 10.0;
    double q = flow * (ln->turn_ratio[SF_TURN_THROUGH] + ln->turn_ratio[SF_TURN_RIGHT]);
    return q / (thr_lanes * 1800.0 * g / (pl->cycle_ds / 10.0));
}

Test(scenario, corridor_loads_with_its_facts)
{
    sf_scenario_t *sc = load_ok(CORRIDOR, NULL, 0);
    cr_assert_eq(sc->n_intersections, 8);
    cr_assert_eq(sc->n_lines, 2);
    cr_assert(strstr(sc->name, "仙桃大道") != NULL);
    cr_assert(strstr(sc->intersections[0].name, "仙桃大道 / ") != NULL);
    unsigned stops = 0, det = 0;
    for (uint32_t k = 0; k < sc->n_lines; k++) {
        cr_assert(sc->lines[k].n_stops >= 4 && sc->lines[k].n_stops <= 8);
        cr_assert(sc->lines[k].headway_s >= 300 && sc->lines[k].headway_s <= 600);
        stops += sc->lines[k].n_stops;
    }
    cr_assert_eq(stops, 12);
    /* spacing 250..600 m along the arterial, all different */
    for (uint32_t k = 1; k < sc->n_intersections; k++) {
        double d = sc->intersections[k].x_m - sc->intersections[k - 1].x_m;
        cr_assert(d >= 250 && d <= 600, "spacing %u: %g m", k, d);
        det += sc->intersections[k].n_det;
    }
    det += sc->intersections[0].n_det;
    cr_assert_eq(det, 120);
    /* I2: full NEMA dual ring */
    const sf_intersection_t *ix = &sc->intersections[sf_scenario_find_intersection(sc, "I2")];
    cr_assert_eq(ix->n_phases, 8);
    int p1 = phase_idx(ix, 1), p2 = phase_idx(ix, 2), p4 = phase_idx(ix, 4), p5 = phase_idx(ix, 5),
        p6 = phase_idx(ix, 6);
    cr_assert(ix->concurrent[p2][p6] && ix->concurrent[p6][p2]); /* concurrency pair */
    cr_assert(ix->concurrent[p1][p5]);
    cr_assert_not(ix->concurrent[p1][p2]);                          /* same ring */
    cr_assert_not(ix->concurrent[p2][p4]);                          /* other barrier */
    cr_assert(ix->sg_conflict[sg_idx(ix, "A2")][sg_idx(ix, "A4")]); /* conflict pair */
    cr_assert_not(ix->sg_conflict[sg_idx(ix, "A2")][sg_idx(ix, "L5")]);
    cr_assert_eq(ix->sg[sg_idx(ix, "L1")].kind, SF_SG_ARROW);
    cr_assert_eq(ix->sg[sg_idx(ix, "P4")].kind, SF_SG_PEDESTRIAN);
    /* coordinated 120 s plan with phases 2 and 6; plan by time of day */
    const sf_plan_t *am = &ix->plans[sf_intersection_plan_at(ix, 7 * 3600 + 1800)];
    cr_assert_eq(am->id, 1);
    cr_assert_eq(am->cycle_ds, 1200);
    cr_assert_eq(am->coord_phase_mask, (1u << p2) | (1u << p6));
    cr_assert_eq(ix->plans[sf_intersection_plan_at(ix, 10 * 3600)].id, 2);
    cr_assert_eq(ix->plans[sf_intersection_plan_at(ix, 3 * 3600)].id, 2);
    cr_assert_eq(ix->plans[sf_intersection_plan_at(ix, 17 * 3600)].id, 1);
    cr_assert_eq(ix->plans[sf_intersection_plan_at(ix, 86399)].id, 2);
    cr_assert_eq(ix->plans[ix->local_plan_idx].id, 2);
    cr_assert_eq(ix->strategy, SF_STRAT_COORDINATED);
    /* I1 has no protected side-street lefts: 6 phases */
    cr_assert_eq(sc->intersections[0].n_phases, 6);
    /* the model's invariants, everywhere */
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *x = &sc->intersections[i];
        for (int a = 0; a < x->n_phases; a++) {
            cr_assert_not(x->concurrent[a][a]);
            for (int b = 0; b < x->n_phases; b++)
                cr_assert_eq(x->concurrent[a][b], x->concurrent[b][a]);
        }
        for (int p = 0; p < x->n_plans; p++)
            for (int r = 0; r < x->n_rings; r++) {
                int sum = 0;
                for (int k = 0; k < x->ring_seq_len[r]; k++)
                    sum += x->plans[p].split_ds[x->ring_seq[r][k]];
                cr_assert_eq(sum, x->plans[p].cycle_ds);
            }
    }
    /* arterial entries load their first signal to 0.7..0.9 v/c */
    double v1 = vc(sc, "I1", "BW-I1"), v8 = vc(sc, "I8", "BE-I8");
    cr_assert(v1 >= 0.7 && v1 <= 0.9, "I1 eastbound v/c %.3f", v1);
    cr_assert(v8 >= 0.7 && v8 <= 0.9, "I8 westbound v/c %.3f", v8);
    cr_assert(sc->control.priority.enabled);
    cr_assert_eq(sc->run.mode, SF_MODE_LOCKSTEP);
    cr_assert_float_eq(sc->run.duration_s, 3600.0, 1e-9);
    sf_scenario_destroy(&sc);
}

Test(scenario, set_required_paths)
{
    const char *sets[] = {"run.seed=7",
                          "run.duration_s=1800",
                          "run.step_s=0.05",
                          "control.priority.enabled=false",
                          "intersections[0].phases[1].min_green_s=12",
                          "control.strategy=actuated"};
    sf_scenario_t *sc = load_ok(CORRIDOR, sets, 6);
    cr_assert_eq(sc->run.seed, 7);
    cr_assert_float_eq(sc->run.duration_s, 1800.0, 1e-9);
    cr_assert_float_eq(sc->run.step_s, 0.05, 1e-12);
    cr_assert_not(sc->control.priority.enabled);
    cr_assert_eq(sc->intersections[0].phases[1].min_green_ds, 120);
    cr_assert_eq(sc->control.strategy, SF_STRAT_ACTUATED);
    cr_assert_eq(sc->intersections[3].strategy, SF_STRAT_ACTUATED);
    sf_scenario_destroy(&sc);
    /* a later --set wins; a quoted JSON string works as well as a bare word */
    const char *sets2[] = {"control.priority.enabled=true", "run.seed=3", "run.seed=4",
                           "control.strategy=\"adaptive\""};
    sc = load_ok(SINGLE, sets2, 4);
    cr_assert(sc->control.priority.enabled);
    cr_assert_eq(sc->run.seed, 4);
    cr_assert_eq(sc->control.strategy, SF_STRAT_ADAPTIVE);
    sf_scenario_destroy(&sc);
}

static void expect_set_error(const char *set, const char *want)
{
    const char *sets[] = {set};
    sf_errors_t errs = load_bad(SINGLE, sets, 1);
    cr_expect_eq(errs.n, 1, "--set %s: %zu errors", set, errs.n);
    cr_expect_str_eq(errs.msg[0], want);
    sf_errors_clear(&errs);
}

Test(scenario, set_is_checked_like_the_file)
{
    expect_set_error("run.seed=-1", "--set run.seed=-1: run.seed: must be >= 0, got -1");
    expect_set_error("run.seed=1.5", "--set run.seed=1.5: run.seed: must be an integer, got 1.5");
    expect_set_error("run.duration_s=0",
                     "--set run.duration_s=0: run.duration_s: must be >= 1 s, got 0");
    expect_set_error("run.step_s=2", "--set run.step_s=2: run.step_s: must be <= 1 s, got 2");
    expect_set_error("run.step_s=0.03",
                     "--set run.step_s=0.03: run.step_s: must divide 0.1 s or be "
                     "a multiple of it (signal timing is in 0.1 s), got 0.03");
    expect_set_error("control.priority.enabled=maybe",
                     "--set control.priority.enabled=maybe: control.priority.enabled: must be true "
                     "or false, got \"maybe\"");
    expect_set_error("intersections[0].phases[0].min_green_s=2",
                     "--set intersections[0].phases[0].min_green_s=2: "
                     "intersections[0].phases[0].min_green_s: must be >= 5 s, got 2");
    expect_set_error("run.sed=1",
                     "--set run.sed=1: run.sed: unknown field (did you mean \"seed\"?)");
    expect_set_error("nothing.here=1", "--set nothing.here=1: nothing: unknown field");
    expect_set_error(
        "run..seed=1",
        "--set run..seed=1: run..seed: malformed path (expected name(.name|[index])*)");
    expect_set_error("run.seed", "--set run.seed: missing '=' (expected PATH=VALUE)");
    expect_set_error("=3", "--set =3: empty path (expected PATH=VALUE)");
    expect_set_error("intersections[4].x_m=1",
                     "--set intersections[4].x_m=1: intersections[4].x_m: "
                     "index out of range (intersections has 1 entries)");
    expect_set_error("run.seed.x=1", "--set run.seed.x=1: run.seed.x: run.seed is not an object");
    /* a --set of a whole object: errors inside it are located at the --set */
    expect_set_error("run={\"seed\": \"x\"}",
                     "--set run={\"seed\": \"x\"}: run.seed: must be an integer, got \"x\"");
}

/* Every tests/data/bad/NAME.json has one fault; NAME.expect holds the one error. */
Test(scenario, bad_files_report_path_and_position)
{
    DIR *d = opendir(BAD_DIR);
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char file[1024], exp_file[1024], want[2048], expect[1024];
        snprintf(file, sizeof file, "%s/%s", BAD_DIR, e->d_name);
        snprintf(exp_file, sizeof exp_file, "%s/%.*s.expect", BAD_DIR, (int)(len - 5), e->d_name);
        FILE *f = fopen(exp_file, "r");
        cr_assert_not_null(f, "%s", exp_file);
        cr_assert_not_null(fgets(expect, sizeof expect, f));
        fclose(f);
        expect[strcspn(expect, "\n")] = '\0';
        snprintf(want, sizeof want, "%s:%s", file, expect);
        sf_errors_t errs = load_bad(file, NULL, 0);
        cr_expect_eq(errs.n, 1, "%s: %zu errors, first: %s", e->d_name, errs.n, errs.msg[0]);
        cr_expect_str_eq(errs.msg[0], want, "%s", e->d_name);
        sf_errors_clear(&errs);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 25, "only %d bad files", n);
}

Test(scenario, every_error_not_just_the_first)
{
    const char *sets[] = {"run.seed=-1", "run.duration_s=x",
                          "intersections[0].phases[0].yellow_s=9"};
    sf_errors_t errs = load_bad(SINGLE, sets, 3);
    cr_assert_eq(errs.n, 3);
    sf_errors_clear(&errs);
    cr_assert_eq(errs.n, 0);
    cr_assert_null(errs.msg);
    /* errs may be NULL: still nothing loaded, nothing leaked */
    cr_assert_null(sf_scenario_load(SINGLE, sets, 3, NULL));
}

/* Every command reports a failed load the same way (sf_errors_report): each message on a
 * line of its own, then the count; a failure without messages names the file and errno. */
static char *report_of(sf_errors_t *errs, int err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    errno = err;
    sf_errors_report(f, errs, "sigflow test", "x.json");
    fclose(f);
    return buf;
}

Test(scenario, load_errors_are_reported_whole_then_cleared)
{
    const char *sets[] = {"run.seed=-1", "run.duration_s=x"};
    sf_errors_t errs = load_bad(SINGLE, sets, 2);
    cr_assert_eq(errs.n, 2);
    char want[2048];
    snprintf(want, sizeof want, "%s\n%s\n2 errors\n", errs.msg[0], errs.msg[1]);
    char *got = report_of(&errs, EINVAL);
    cr_assert_str_eq(got, want);
    free(got);
    cr_assert_eq(errs.n, 0, "cleared");
    cr_assert_null(errs.msg);

    const char *one[] = {"run.seed=-1"};
    errs = load_bad(SINGLE, one, 1);
    snprintf(want, sizeof want, "%s\n1 error\n", errs.msg[0]);
    got = report_of(&errs, EINVAL);
    cr_assert_str_eq(got, want);
    free(got);

    /* no message (a load that ran out of memory): the file and errno's text */
    snprintf(want, sizeof want, "sigflow test: x.json: cannot load: %s\n", strerror(ENOMEM));
    got = report_of(&errs, ENOMEM);
    cr_assert_str_eq(got, want);
    free(got);
    got = report_of(NULL, ENOMEM); /* errs may be NULL */
    cr_assert_str_eq(got, want);
    free(got);
}

/* Errors come in file order, whatever order the checks ran in. */
Test(scenario, errors_in_file_order)
{
    const char *file = SIGFLOW_TESTDATA "/multi/two_faults.json";
    FILE *f = fopen(SIGFLOW_TESTDATA "/multi/two_faults.expect", "r");
    cr_assert_not_null(f);
    char want[2][1024], line[512];
    for (int k = 0; k < 2; k++) {
        cr_assert_not_null(fgets(line, sizeof line, f));
        line[strcspn(line, "\n")] = '\0';
        snprintf(want[k], sizeof want[k], "%s:%s", file, line);
    }
    fclose(f);
    sf_errors_t errs = load_bad(file, NULL, 0);
    cr_assert_eq(errs.n, 2);
    cr_assert_str_eq(errs.msg[0], want[0]);
    cr_assert_str_eq(errs.msg[1], want[1]);
    sf_errors_clear(&errs);
}

Test(scenario, unreadable_file)
{
    sf_errors_t errs = load_bad(SIGFLOW_TESTDATA "/no-such-file.json", NULL, 0);
    cr_assert_eq(errs.n, 1);
    cr_assert_str_eq(errs.msg[0], SIGFLOW_TESTDATA "/no-such-file.json: cannot read: No such "
                                                   "file or directory");
    sf_errors_clear(&errs);
    errno = 0;
    cr_assert_null(sf_scenario_load(NULL, NULL, 0, NULL));
    cr_assert_eq(errno, EINVAL);
}

static void spit(const char *file, const char *buf, size_t len)
{
    FILE *f = fopen(file, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Truncated and byte-mutated files: never a crash, never a half-loaded result, and
 * every message is located in the file. */
Test(scenario, damaged_files_never_crash)
{
    size_t len;
    char *orig = slurp(SINGLE, &len);
    char *buf = malloc(len + 1);
    cr_assert_not_null(buf);
    char tmp[] = "/tmp/sf-scenario-XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert_geq(fd, 0);
    close(fd);
    bool sanitized = getenv("SIGFLOW_SANITIZED") != NULL;
    size_t step = sanitized ? 97 : 13;
    int rejected = 0, runs = 0;
    for (size_t cut = 0; cut < len; cut += step, runs++) {
        spit(tmp, orig, cut);
        sf_errors_t errs = {0, NULL};
        sf_scenario_t *sc = sf_scenario_load(tmp, NULL, 0, &errs);
        /* no prefix of the file but the whole is complete JSON */
        cr_assert_null(sc, "cut at %zu loaded", cut);
        cr_assert_geq(errs.n, 1);
        cr_assert(strncmp(errs.msg[0], tmp, strlen(tmp)) == 0);
        sf_errors_clear(&errs);
        rejected++;
    }
    static const char junk[] = "\"{}[],:0-9.eE \\\n\xe4";
    unsigned seed = 12345;
    int mutations = sanitized ? 60 : 400;
    for (int m = 0; m < mutations; m++, runs++) {
        memcpy(buf, orig, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            buf[at] = junk[(seed >> 8) % (sizeof junk - 1)];
        }
        spit(tmp, buf, len);
        sf_errors_t errs = {0, NULL};
        sf_scenario_t *sc = sf_scenario_load(tmp, NULL, 0, &errs);
        if (sc) {
            cr_assert_eq(errs.n, 0);
            sf_scenario_destroy(&sc);
        } else {
            cr_assert_geq(errs.n, 1);
            for (size_t k = 0; k < errs.n; k++)
                cr_assert(strncmp(errs.msg[k], tmp, strlen(tmp)) == 0, "%s", errs.msg[k]);
            rejected++;
        }
        sf_errors_clear(&errs);
    }
    cr_assert_gt(rejected, runs / 2);
    unlink(tmp);
    free(buf);
    free(orig);
}

/* Collect the path of every value in a JSON tree, in the checker's notation. */
static void collect_paths(const json_t *v, const char *path, char ***out, size_t *n)
{
    *out = realloc(*out, (*n + 1) * sizeof **out);
    cr_assert_not_null(*out);
    (*out)[(*n)++] = strdup(path);
    char child[1024];
    if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e)
        {
            snprintf(child, sizeof child, "%s%s%s", path, *path ? "." : "", key);
            collect_paths(e, child, out, n);
        }
    } else if (json_is_array(v)) {
        for (size_t k = 0; k < json_array_size(v); k++) {
            snprintf(child, sizeof child, "%s[%zu]", path, k);
            collect_paths(json_array_get(v, k), child, out, n);
        }
    }
}

/* Replace values of an asset (every stride-th path and value pair), one at a time, by values of the
 * wrong kind or range: each load either succeeds or fails with located errors, and never crashes.
 */
static void replace_everything(const char *file, size_t stride)
{
    json_error_t je;
    json_t *root = json_load_file(file, 0, &je);
    cr_assert_not_null(root);
    char **paths = NULL;
    size_t n = 0;
    collect_paths(root, "", &paths, &n);
    json_decref(root);
    static const char *const weird[] = {"null", "[]", "{}", "\"x\"", "-1", "0", "1e9", "true"};
    const size_t n_weird = sizeof weird / sizeof weird[0];
    if (getenv("SIGFLOW_SANITIZED"))
        stride *= 10;
    size_t loads = 0, rejected = 0;
    for (size_t k = 1; k < n; k++) { /* skip the root itself */
        for (size_t w = 0; w < n_weird; w++) {
            if ((k * n_weird + w) % stride)
                continue;
            char set[1200];
            snprintf(set, sizeof set, "%s=%s", paths[k], weird[w]);
            const char *sets[] = {set};
            sf_errors_t errs = {0, NULL};
            sf_scenario_t *sc = sf_scenario_load(file, sets, 1, &errs);
            loads++;
            if (sc) {
                cr_assert_eq(errs.n, 0);
                sf_scenario_destroy(&sc);
            } else {
                cr_assert_geq(errs.n, 1, "--set %s", set);
                rejected++;
            }
            sf_errors_clear(&errs);
        }
        free(paths[k]);
    }
    free(paths[0]);
    free(paths);
    cr_log_info("%s: %zu loads, %zu rejected", file, loads, rejected);
    cr_assert_gt(rejected, loads / 2);
}

Test(scenario, any_value_replaced_never_crashes)
{
    /* every value of the small file (half of the wrong kinds each); a spread sample of the
     * corridor's ~30000 */
    replace_everything(SINGLE, 2);
    replace_everything(CORRIDOR, 61);
}

Test(scenario, no_intersections_at_all)
{
    const char *sets[] = {"intersections=[]"};
    sf_errors_t errs = load_bad(CORRIDOR, sets, 1);
    cr_assert_str_eq(errs.msg[0],
                     "--set intersections=[]: intersections: must have at least 1 entry, got 0");
    sf_errors_clear(&errs);
}

/* Run the built `sigflow` with args; capture exit status, stdout and stderr. */
static int run_sigflow(const char *const *args, char *out, size_t out_len, char *err,
                       size_t err_len)
{
    child_t *c = child_new();
    int st = child_run_args(c, args, 60);
    snprintf(out, out_len, "%.*s", (int)(out_len - 1), c->out);
    snprintf(err, err_len, "%.*s", (int)(err_len - 1), c->err);
    free(c);
    cr_assert_geq(st, 0, "sigflow did not exit normally");
    return st;
}

Test(scenario, sigflow_check_end_to_end)
{
    char out[4096], err[8192];
    const char *good[] = {"check", CORRIDOR, "--set", "run.seed=7", NULL};
    cr_assert_eq(run_sigflow(good, out, sizeof out, err, sizeof err), 0, "stderr: %s", err);
    cr_assert(strncmp(out, "ok: Xiantao corridor", 20) == 0, "stdout: %s", out);
    cr_assert(strstr(out, "8 intersections") && strstr(out, "2 lines"), "stdout: %s", out);

    const char *bad[] = {"check", BAD_DIR "/min_green_low.json", NULL};
    cr_assert_eq(run_sigflow(bad, out, sizeof out, err, sizeof err), 1);
    cr_assert_str_eq(out, "");
    char want[1024];
    snprintf(want, sizeof want,
             "%s/min_green_low.json:25:26: intersections[0].phases[1].min_green_s: must be >= 5 "
             "s, got 2\n",
             BAD_DIR);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "stderr: %s", err);

    const char *badset[] = {"check", SINGLE, "--set", "run.seed=-2", "--set", "run.step_s=5", NULL};
    cr_assert_eq(run_sigflow(badset, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "--set run.seed=-2: run.seed: must be >= 0, got -2\n"), "%s", err);
    cr_assert(strstr(err, "--set run.step_s=5: run.step_s: must be <= 1 s, got 5\n"), "%s", err);

    const char *none[] = {"check", NULL};
    cr_assert_eq(run_sigflow(none, out, sizeof out, err, sizeof err), 2);
    const char *opt[] = {"check", SINGLE, "--bogus", NULL};
    cr_assert_eq(run_sigflow(opt, out, sizeof out, err, sizeof err), 2);
    const char *help[] = {"check", "--help", NULL};
    cr_assert_eq(run_sigflow(help, out, sizeof out, err, sizeof err), 0);
    cr_assert(strstr(out, "--set PATH=VALUE"));
    const char *top[] = {"--help", NULL};
    cr_assert_eq(run_sigflow(top, out, sizeof out, err, sizeof err), 0);
    cr_assert(strstr(out, "check"), "sigflow --help lists check: %s", out);
}
