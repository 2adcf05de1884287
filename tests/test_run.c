/* tests/test_run.c — `sigflow run` and `sigflow sim` as child processes: the report and
 * its fields, usage and scenario errors, SIGINT, and lockstep participants that go
 * silent or leave (named, never a hang). */
#include "run_child.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <sys/stat.h>
#include <zmq.h>

#include "bus.h"
#include "lockstep.h"

#define SINGLE SIGFLOW_ASSETS "/scenarios/single.json"

static void tmp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/sf_run_%s_%d.json", tag, (int)getpid());
    unlink(buf);
}

static double jnum(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    cr_assert(json_is_number(cur), "%s is a number", path);
    return json_number_value(cur);
}

CHILD_SUITE(run);

Test(run, report_has_every_field, .timeout = 180)
{
    char path[256];
    tmp_path(path, sizeof path, "fields");
    char *argv[] = {"sigflow",  "run",    SINGLE, "--headless", "--duration",
                    "600",      "--seed", "3",    "--set",      "run.warmup_s=120",
                    "--report", path,     NULL};
    child_t *c = child_new();
    int st = child_run(c, argv, 150);
    cr_assert_eq(st, 0, "exit %d: %s", st, c->err);
    /* the summary table on stdout */
    cr_assert(strstr(c->out, "network: mean delay") != NULL, "%s", c->out);
    cr_assert(strstr(c->out, "I1") != NULL);
    cr_assert(strstr(c->out, "perf:") != NULL);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(r, "scenario")),
                     "single isolated intersection");
    cr_assert_eq(jnum(r, "seed"), 3);
    cr_assert_float_eq(jnum(r, "sim_seconds"), 600.0, 1e-6);
    cr_assert(json_is_false(json_object_get(r, "partial")));
    cr_assert_geq(jnum(r, "network.mean_delay_s"), 0);
    cr_assert_lt(jnum(r, "network.mean_delay_s"), 300);
    cr_assert_geq(jnum(r, "network.mean_stops"), 0);
    cr_assert_gt(jnum(r, "network.vehicles_completed"), 50);
    json_t *ixs = json_object_get(r, "intersections");
    cr_assert_eq(json_array_size(ixs), 1);
    json_t *ix = json_array_get(ixs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(ix, "id")), "I1");
    const char *los = json_string_value(json_object_get(ix, "los"));
    cr_assert(los && strlen(los) == 1 && los[0] >= 'A' && los[0] <= 'F');
    json_t *aps = json_object_get(ix, "approaches");
    cr_assert_gt(json_array_size(aps), 1);
    size_t i;
    json_t *ap;
    json_array_foreach(aps, i, ap)
    {
        cr_assert(json_is_string(json_object_get(ap, "id")));
        cr_assert_gt(jnum(ap, "volume_veh_h"), 0);
        cr_assert_geq(jnum(ap, "mean_delay_s"), 0);
        cr_assert_geq(jnum(ap, "max_queue_m"), 0);
        double aog = jnum(ap, "arrivals_on_green_pct");
        cr_assert(aog >= 0 && aog <= 100);
    }
    cr_assert(json_is_array(json_object_get(json_object_get(r, "transit"), "lines")));
    cr_assert_geq(jnum(r, "priority.requests"), 0);
    cr_assert_geq(jnum(r, "priority.granted"), 0);
    cr_assert_geq(jnum(r, "priority.refused"), 0);
    /* the controller polled the unit over Modbus every poll period, none missed */
    cr_assert_geq(jnum(r, "controller.comms.polls"), 500);
    cr_assert_eq(jnum(r, "controller.comms.missed_polls"), 0);
    cr_assert_eq(jnum(r, "controller.plans.verified"), 1);
    cr_assert_eq(jnum(r, "perf.steps"), 6000);
    cr_assert_gt(jnum(r, "perf.wall_s"), 0);
    cr_assert_gt(jnum(r, "perf.vehicle_updates"), 6000);
    cr_assert_float_eq(jnum(r, "perf.vehicle_updates_per_s"),
                       jnum(r, "perf.vehicle_updates") / jnum(r, "perf.wall_s"),
                       1e-3 * jnum(r, "perf.vehicle_updates_per_s"));
    cr_assert_gt(jnum(r, "perf.lamp_msgs_applied"), 0, "the units' lamps drove the sim");
    json_decref(r);
    unlink(path);
    free(c);
}

/* Usage errors: exit 2, a message that names the problem, no report written. */
static void expect_usage(char *const argv[], const char *msg)
{
    child_t *c = child_new();
    int st = child_run(c, argv, 30);
    cr_expect_eq(st, 2, "%s %s: exit %d", argv[1], argv[2], st);
    cr_expect(strstr(c->err, msg) != NULL, "stderr '%s' lacks '%s'", c->err, msg);
    free(c);
}

Test(run, bad_arguments_exit_2, .timeout = 120)
{
    char path[256];
    tmp_path(path, sizeof path, "usage");
    char *a1[] = {"sigflow", "run", SINGLE, "--duration", "abc", "--report", path, NULL};
    expect_usage(a1, "--duration: expected seconds > 0, got 'abc'");
    char *a2[] = {"sigflow", "run", SINGLE, "--bogus", NULL};
    expect_usage(a2, "unknown option '--bogus'");
    char *a3[] = {"sigflow", "run", SINGLE, "--screenshot", "/tmp/x.png", NULL};
    expect_usage(a3, "--screenshot needs --at");
    char *a4[] = {"sigflow", "run", SINGLE, SINGLE, NULL};
    expect_usage(a4, "one scenario only");
    char *a5[] = {"sigflow", "run", SINGLE, "--seed", "-4", NULL};
    expect_usage(a5, "--seed: expected an integer >= 0, got '-4'");
    char *a6[] = {"sigflow", "run", SINGLE, "--realtime", "0", NULL};
    expect_usage(a6, "--realtime: factor must be > 0");
    char *a7[] = {"sigflow", "run", SINGLE, "--report", NULL};
    expect_usage(a7, "missing value after '--report'");
    char *a8[] = {"sigflow", "sim", SINGLE, "--bus", "tcp://127.0.0.1:1", NULL};
    expect_usage(a8, "--bus: expected PUB_EP,SUB_EP");
    char *a9[] = {"sigflow", "sim", NULL};
    expect_usage(a9, "missing SCENARIO");
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "no report from a usage error");
}

/* --events FILE: the controller's event log of the run, one JSON object per line with t,
 * ix and kind; its lines by kind are exactly the report's controller.events counts. The
 * corridor with priority on for every late bus, so the log holds more than plan and mode
 * lines. */
Test(run, events_file_holds_what_the_report_counts, .timeout = 180)
{
    char rep[256], ev[256];
    tmp_path(rep, sizeof rep, "ev_report");
    snprintf(ev, sizeof ev, "/tmp/sf_run_ev_%d.jsonl", (int)getpid());
    unlink(ev);
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "300" : "600";
    char *argv[] = {"sigflow",
                    "run",
                    SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json",
                    "--headless",
                    "--duration",
                    (char *)dur,
                    "--set",
                    "run.warmup_s=0",
                    "--set",
                    "control.priority.lateness_threshold_s=0",
                    "--events",
                    ev,
                    "--report",
                    rep,
                    NULL};
    child_t *c = child_new();
    int st = child_run(c, argv, 170);
    cr_assert_eq(st, 0, "exit %d: %s", st, c->err);
    json_error_t je;
    json_t *r = json_load_file(rep, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    json_t *counted = json_object_get(json_object_get(r, "controller"), "events");
    cr_assert(json_is_object(counted), "no controller.events in the report");

    FILE *in = fopen(ev, "r");
    cr_assert_not_null(in, "%s: %s", ev, strerror(errno));
    json_t *seen = json_object();
    char line[4096];
    int n = 0;
    double last_t = 0;
    while (fgets(line, sizeof line, in)) {
        n++;
        cr_assert_not_null(strchr(line, '\n'), "line %d cut or too long", n);
        json_t *j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "line %d: %s: %s", n, je.text, line);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        cr_assert_not_null(kind, "line %d has no kind: %s", n, line);
        cr_assert(json_is_string(json_object_get(j, "ix")), "line %d: %s", n, line);
        double t = json_number_value(json_object_get(j, "t"));
        cr_assert_geq(t, last_t, "line %d goes back in time: %s", n, line);
        last_t = t;
        json_object_set_new(seen, kind,
                            json_integer(json_integer_value(json_object_get(seen, kind)) + 1));
        json_decref(j);
    }
    fclose(in);
    const char *kind;
    json_t *cnt;
    json_int_t total = 0;
    json_object_foreach(counted, kind, cnt)
    {
        cr_expect_eq(json_integer_value(json_object_get(seen, kind)), json_integer_value(cnt),
                     "kind %s: %lld lines, %lld counted", kind,
                     (long long)json_integer_value(json_object_get(seen, kind)),
                     (long long)json_integer_value(cnt));
        total += json_integer_value(cnt);
    }
    /* and no line of a kind the report does not count */
    cr_expect_eq(total, n, "%d lines, %lld counted", n, (long long)total);
    cr_expect_gt(json_integer_value(json_object_get(counted, "priority")), 0,
                 "no priority event: the comparison says little");
    cr_expect_gt(json_integer_value(json_object_get(counted, "plan")), 0);
    json_decref(seen);
    json_decref(r);
    unlink(rep);
    unlink(ev);
    free(c);
}

/* --events with a file that cannot be written, or without the controller: exit 2 with
 * the reason, before anything runs (no report, no file). */
Test(run, events_file_refused_before_the_run, .timeout = 60)
{
    char rep[256];
    tmp_path(rep, sizeof rep, "ev_bad");
    char *a1[] = {"sigflow",  "run", SINGLE, "--headless", "--events", "/nonexistent-dir/ev.jsonl",
                  "--report", rep,   NULL};
    expect_usage(a1, "sigflow run: --events /nonexistent-dir/ev.jsonl: No such file or directory");
    char *a2[] = {"sigflow", "run",      SINGLE, "--headless", "--events",
                  "/tmp",    "--report", rep,    NULL};
    expect_usage(a2, "sigflow run: --events /tmp: Is a directory");
    char ev[256];
    snprintf(ev, sizeof ev, "/tmp/sf_run_ev_nc_%d.jsonl", (int)getpid());
    unlink(ev);
    char *a3[] = {"sigflow",  "run", SINGLE,     "--headless", "--no-controller",
                  "--events", ev,    "--report", rep,          NULL};
    expect_usage(a3, "--events logs the controller's events: not with --no-controller");
    char *a4[] = {"sigflow", "run", SINGLE, "--events", NULL};
    expect_usage(a4, "missing value after '--events'");
    struct stat sb;
    cr_assert_neq(stat(rep, &sb), 0, "no report from a refused --events");
    cr_assert_neq(stat(ev, &sb), 0, "no event file from a refused --events");
}

/* `sigflow run` and `sigflow sim` share one parser for their common options
 * (cli/run_opts.h): the same bad input is refused by both with the same words, only the
 * command's name differs, and nothing starts. */
Test(run, shared_options_refused_alike_by_run_and_sim, .timeout = 120)
{
    static const char *const cases[][4] = {
        {"--duration", "-1", NULL, "--duration: expected seconds > 0, got '-1'"},
        {"--seed", "1.5", NULL, "--seed: expected an integer >= 0, got '1.5'"},
        {"--realtime", "2e6", NULL, "--realtime: factor must be > 0 and <= 1e6, got '2e6'"},
        {"--realtime", "nan", NULL, "--realtime: factor must be > 0 and <= 1e6, got 'nan'"},
        {"--expect", "x", "--expect", "--expect x given twice"},
        {"--set", NULL, NULL, "missing value after '--set'"},
        {"--frobnicate", NULL, NULL, "unknown option '--frobnicate'"},
    };
    static const char *const cmds[] = {"run", "sim"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (size_t j = 0; j < 2; j++) {
            char *argv[8] = {"sigflow", (char *)cmds[j], SINGLE};
            int n = 3;
            for (int a = 0; a < 3 && cases[k][a]; a++)
                argv[n++] = (char *)cases[k][a];
            if (strcmp(cases[k][0], "--expect") == 0)
                argv[n++] = (char *)cases[k][1]; /* the same name again */
            argv[n] = NULL;
            char msg[160];
            snprintf(msg, sizeof msg, "sigflow %s: %s", cmds[j], cases[k][3]);
            expect_usage(argv, msg);
        }
}

Test(run, scenario_errors_exit_1_with_the_checks_messages, .timeout = 60)
{
    /* a file with an error: the check's own message, file:line:column and field path */
    char *a1[] = {"sigflow", "run", SIGFLOW_TESTDATA "/bad/bad_enum.json", "--headless", NULL};
    child_t *c = child_new();
    int st = child_run(c, a1, 30);
    cr_assert_eq(st, 1, "exit %d", st);
    cr_assert(strstr(c->err, "bad_enum.json:352:55: demand.entries[0].arrivals: must be one of") !=
                  NULL,
              "%s", c->err);
    /* an override that breaks a rule */
    char *a0[] = {"sigflow",           "run", SINGLE, "--headless", "--duration", "900", "--set",
                  "run.warmup_s=5000", NULL};
    st = child_run(c, a0, 30);
    cr_assert_eq(st, 1, "exit %d", st);
    cr_assert(strstr(c->err, "run.warmup_s: must be < duration_s") != NULL, "%s", c->err);
    char *a2[] = {"sigflow", "run", "/nonexistent/scenario.json", "--headless", NULL};
    st = child_run(c, a2, 30);
    cr_assert_eq(st, 1);
    cr_assert(strstr(c->err, "/nonexistent/scenario.json") != NULL, "%s", c->err);
    free(c);
}

Test(run, sigint_gives_a_partial_report, .timeout = 120)
{
    char path[256];
    tmp_path(path, sizeof path, "sigint");
    /* real time x5: long enough that the signal surely lands mid-run */
    char *argv[] = {"sigflow",    "run", SINGLE,     "--headless", "--duration", "3600",
                    "--realtime", "5",   "--report", path,         NULL};
    child_t *c = child_new();
    cr_assert_eq(child_start(c, argv), 0);
    cr_assert(child_wait_err(c, "sigflow run: ready", 60), "no ready line: %s", c->err);
    kill(c->pid, SIGINT);
    int st = child_finish(c, 60);
    cr_assert_eq(st, 130, "exit %d: %s", st, c->err);
    cr_assert(strstr(c->err, "partial") != NULL, "%s", c->err);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    cr_assert(json_is_true(json_object_get(r, "partial")));
    cr_assert_lt(jnum(r, "sim_seconds"), 3600);
    cr_assert(json_is_true(json_object_get(json_object_get(r, "perf"), "realtime")));
    /* every real-time step's lateness is measured (the signal may land before step 0) */
    cr_assert_eq(jnum(r, "perf.step_jitter.n"), jnum(r, "perf.steps"));
    json_decref(r);
    unlink(path);
    free(c);
}

/* A test-side lockstep participant named "ghost" joining a child's bus over TCP. */
typedef struct {
    void *zctx;
    sf_participant_t *p;
} ghost_t;

static void ghost_join(ghost_t *g, const char *pub, const char *sub)
{
    g->zctx = zmq_ctx_new();
    cr_assert_not_null(g->zctx);
    sf_participant_config_t pc = {
        .name = "ghost", .role = SFBUS__ROLE__ROLE_BRIDGE, .lockstep = 1, .stage = 0};
    g->p = sf_participant_new(g->zctx, pub, sub, &pc);
    cr_assert_not_null(g->p);
    cr_assert_eq(sf_participant_register(g->p, 20, NULL, NULL), 0, "%s",
                 sf_participant_error(g->p));
}

static void ghost_leave(ghost_t *g)
{
    sf_participant_destroy(&g->p);
    (void)sf_bus_ctx_term(g->zctx, SF_BUS_CTX_TERM_MS);
}

/* "sigflow run: bus PUB SUB" -> pub, sub */
static void parse_bus(const char *err, const char *prefix, char *pub, char *sub)
{
    const char *l = strstr(err, prefix);
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(sscanf(l + strlen(prefix), "%255s %255[^,\n]", pub, sub), 2, "%s", l);
}

/* A 600 s `sigflow run` with the step timeout of timeout_set that expects "ghost", and g
 * joined to it as that participant (registered: the run is at its first step). */
static child_t *run_with_ghost(const char *timeout_set, ghost_t *g)
{
    char *argv[] = {"sigflow",    "run",   SINGLE,  "--headless",
                    "--duration", "600",   "--set", (char *)timeout_set,
                    "--expect",   "ghost", NULL};
    child_t *c = child_new();
    cr_assert_eq(child_start(c, argv), 0);
    cr_assert(child_wait_err(c, "sigflow run: bus ", 30), "%s", c->err);
    char pub[256], sub[256];
    parse_bus(c->err, "sigflow run: bus ", pub, sub);
    ghost_join(g, pub, sub);
    return c;
}

Test(run, silent_participant_is_named, .timeout = 120)
{
    ghost_t g;
    child_t *c = run_with_ghost("run.step_timeout_s=1", &g);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(sf_participant_step(g.p, 20, NULL, NULL, NULL), 1, "%s",
                     sf_participant_error(g.p));
    /* now silent, but still on the bus: the clock's step timeout must name us */
    int st = child_finish(c, 60);
    cr_assert_eq(st, 1, "exit %d: %s", st, c->err);
    cr_assert(strstr(c->err, "no done(20) from 'ghost' after 1.0 s") != NULL, "%s", c->err);
    ghost_leave(&g);
    free(c);
}

Test(run, participant_that_leaves_is_named_at_once, .timeout = 120)
{
    ghost_t g;
    child_t *c = run_with_ghost("run.step_timeout_s=30", &g);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sf_participant_step(g.p, 20, NULL, NULL, NULL), 1);
    ghost_leave(&g); /* says Bye */
    int st = child_finish(c, 60);
    cr_assert_eq(st, 1, "exit %d: %s", st, c->err);
    /* Named from its Bye: the 30 s step timeout would say "no done(...) from ghost after
     * 30.0 s" instead (proto/lockstep.c), so the message tells the two apart without
     * timing the run (tests never assert timings). */
    cr_assert(strstr(c->err, "'ghost' left during step 10") != NULL, "%s", c->err);
    cr_assert(strstr(c->err, "no done(") == NULL, "%s", c->err);
    free(c);
}

Test(run, sim_alone_on_an_existing_bus, .timeout = 120)
{
    void *zctx = zmq_ctx_new();
    sf_bus_forwarder_t *fwd =
        sf_bus_forwarder_new(zctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
    cr_assert_not_null(fwd);
    char bus[600];
    snprintf(bus, sizeof bus, "%s,%s", sf_bus_forwarder_pub_endpoint(fwd),
             sf_bus_forwarder_sub_endpoint(fwd));
    char path[256];
    tmp_path(path, sizeof path, "sim");
    char *argv[] = {"sigflow",         "sim",      SINGLE,       "--bus", bus,
                    "--expect",        "ghost",    "--duration", "300",   "--set",
                    "run.warmup_s=60", "--report", path,         NULL};
    child_t *c = child_new();
    cr_assert_eq(child_start(c, argv), 0);
    ghost_t g;
    ghost_join(&g, sf_bus_forwarder_pub_endpoint(fwd), sf_bus_forwarder_sub_endpoint(fwd));
    int rc, steps = 0;
    while ((rc = sf_participant_step(g.p, 20, NULL, NULL, NULL)) == 1)
        steps++;
    cr_assert_eq(rc, 0, "ended by the clock's bye: %s", sf_participant_error(g.p));
    cr_assert_eq(steps, 3000, "every step of 300 s at 0.1 s");
    int st = child_finish(c, 60);
    cr_assert_eq(st, 0, "exit %d: %s", st, c->err);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    cr_assert_eq(jnum(r, "perf.steps"), 3000);
    cr_assert_float_eq(jnum(r, "sim_seconds"), 300.0, 1e-6);
    json_decref(r);
    unlink(path);
    ghost_leave(&g);
    sf_bus_forwarder_destroy(&fwd);
    (void)sf_bus_ctx_term(zctx, SF_BUS_CTX_TERM_MS);
    free(c);
}
