/* tests/test_multihost_split.c — the system split into separate processes on loopback,
 * as tests/test_multihost.c splits it across namespaces, but needing no privilege: a
 * forwarder (`sigflow bus`), the simulator (`sigflow sim --expect`), the units
 * (`sigflow unit --bus`) and the controller (`sigflow controller --bus`). The split run
 * must give the simulator the same network, intersection and transit results as
 * `sigflow run` of the same scenario and seed in one process, and the controller the same
 * priority decisions; bad --bus / --name options are refused with a precise error.
 */
#include "run_child.h" /* first: it asks for _GNU_SOURCE (pipe2) */

#include <criterion/criterion.h>
#include <jansson.h>

#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"
#define WAIT_S   90.0

/* Wait until c's stdout holds needle n times (pumping c only: the others print little). */
static bool wait_out(child_t *c, const char *needle, int n)
{
    return child_wait_out(c, needle, n, WAIT_S);
}

static void expect_refused(const char *cmd, const char *const *args, const char *why)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)SIGFLOW_BIN;
    argv[n++] = (char *)cmd;
    argv[n++] = (char *)CORRIDOR;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    child_t c;
    int rc = child_run(&c, argv, 30);
    cr_expect_eq(rc, 2, "%s %s: exit %d", cmd, args[0], rc);
    cr_expect_not_null(strstr(c.err, why), "%s %s: said '%s', not '%s'", cmd, args[0], c.err, why);
}

CHILD_SUITE(multihost_split);

Test(multihost_split, bad_bus_options_are_refused)
{
    const char *a1[] = {"--bus", "tcp://127.0.0.1:1", NULL};
    expect_refused("unit", a1, "--bus: expected PUB_EP,SUB_EP, got 'tcp://127.0.0.1:1'");
    expect_refused("controller", a1, "--bus: expected PUB_EP,SUB_EP, got 'tcp://127.0.0.1:1'");
    const char *a2[] = {"--bus", "a,b,c", NULL};
    expect_refused("unit", a2, "--bus: expected PUB_EP,SUB_EP, got 'a,b,c'");
    expect_refused("controller", a2, "--bus: expected PUB_EP,SUB_EP, got 'a,b,c'");
    const char *a3[] = {"--name", "units-a", NULL};
    expect_refused("unit", a3, "--name needs --bus");
    expect_refused("controller", a3, "--name needs --bus");
    const char *a4[] = {"--bus", "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "--name", "a b", NULL};
    expect_refused("unit", a4, "--name 'a b': expected 1..63 characters of [A-Za-z0-9_.-]");
    expect_refused("controller", a4, "--name 'a b': expected 1..63 characters of [A-Za-z0-9_.-]");
    const char *a5[] = {"--bus", NULL};
    expect_refused("unit", a5, "missing value after '--bus'");
}

static json_t *load(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "%s: %s", path, e.text);
    return j;
}

/* The report JSON the controller prints last on stderr. */
static json_t *stderr_report(const child_t *c)
{
    const char *at = NULL;
    for (const char *s = c->err; (s = strstr(s, "\n{\n")) != NULL;)
        at = ++s;
    cr_assert_not_null(at, "no report on the controller's stderr: %.2000s", c->err);
    json_error_t e;
    json_t *r = json_loadb(at, strlen(at), JSON_DISABLE_EOF_CHECK, &e);
    cr_assert_not_null(r, "controller report: %s", e.text);
    return r;
}

Test(multihost_split, split_run_matches_one_process, .timeout = 300)
{
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "120" : "240";
    char dir[] = "/tmp/sf-split-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char split_rep[64], one_rep[64];
    snprintf(split_rep, sizeof split_rep, "%s/split.json", dir);
    snprintf(one_rep, sizeof one_rep, "%s/one.json", dir);

    static child_t bus, sim, units, ctl, one; /* 128 KiB each: not on the stack */
    char *bus_argv[] = {(char *)SIGFLOW_BIN, "bus", "--pub", "tcp://127.0.0.1:*", "--sub",
                        "tcp://127.0.0.1:*", NULL};
    cr_assert_eq(child_start(&bus, bus_argv), 0);
    cr_assert(wait_out(&bus, "\n", 1), "bus not ready: %s", bus.err);
    char pub[128], sub[128], eps[260];
    cr_assert_eq(sscanf(bus.out, "ready pub=%127s sub=%127s", pub, sub), 2, "bus said: %s",
                 bus.out);
    snprintf(eps, sizeof eps, "%s,%s", pub, sub);

    char *sim_argv[] = {(char *)SIGFLOW_BIN,
                        "sim",
                        CORRIDOR,
                        "--bus",
                        eps,
                        "--expect",
                        "units",
                        "--expect",
                        "controller",
                        "--duration",
                        (char *)dur,
                        "--report",
                        split_rep,
                        "--set",
                        "run.warmup_s=0",
                        NULL};
    cr_assert_eq(child_start(&sim, sim_argv), 0);
    cr_assert(child_wait_err(&sim, "waiting for the participants", WAIT_S), "sim: %s", sim.err);
    char *unit_argv[] = {
        (char *)SIGFLOW_BIN, "unit", CORRIDOR, "--base-port", "0", "--bus", eps, NULL};
    cr_assert_eq(child_start(&units, unit_argv), 0);
    cr_assert(wait_out(&units, "ready ", 8), "units: %s", units.err);

    /* The controller reaches every unit at the port the units host printed, with the round
     * bound `sigflow run` uses in lockstep (no miss on a loaded machine). */
    static char unit_arg[8][64];
    char *ctl_argv[40];
    int n = 0;
    ctl_argv[n++] = (char *)SIGFLOW_BIN;
    ctl_argv[n++] = "controller";
    ctl_argv[n++] = CORRIDOR;
    ctl_argv[n++] = "--bus";
    ctl_argv[n++] = eps;
    ctl_argv[n++] = "--round-timeout-ms";
    ctl_argv[n++] = "5000";
    const char *line = units.out;
    for (int i = 0; i < 8; i++) {
        char id[16], addr[48];
        line = strstr(line, "ready ");
        cr_assert_not_null(line);
        cr_assert_eq(sscanf(line, "ready %15s %47s", id, addr), 2);
        snprintf(unit_arg[i], sizeof unit_arg[i], "%s=%s", id, addr);
        ctl_argv[n++] = "--unit";
        ctl_argv[n++] = unit_arg[i];
        line++;
    }
    ctl_argv[n] = NULL;
    cr_assert_eq(child_start(&ctl, ctl_argv), 0);

    int sim_rc = child_finish(&sim, 240);
    cr_assert_eq(sim_rc, 0, "sim exit %d: %s", sim_rc, sim.err);
    cr_assert_eq(child_finish(&units, WAIT_S), 0, "units: %s", units.err);
    cr_assert_eq(child_finish(&ctl, WAIT_S), 0, "controller: %s", ctl.err);
    cr_assert_not_null(strstr(units.err, "the simulator ended the run"), "units: %s", units.err);
    kill(bus.pid, SIGTERM);
    cr_assert_eq(child_finish(&bus, WAIT_S), 0, "bus: %s", bus.err);

    char *one_argv[] = {
        (char *)SIGFLOW_BIN, "run",   CORRIDOR, "--headless",     "--duration", (char *)dur,
        "--report",          one_rep, "--set",  "run.warmup_s=0", NULL};
    int one_rc = child_run(&one, one_argv, 240);
    cr_assert_eq(one_rc, 0, "sigflow run exit %d: %s", one_rc, one.err);

    json_t *split = load(split_rep), *whole = load(one_rep), *crep = stderr_report(&ctl);
    const char *same[] = {"scenario", "seed",    "sim_seconds",   "warmup_s",
                          "step_s",   "network", "intersections", "transit"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        json_t *a = json_object_get(split, same[i]), *b = json_object_get(whole, same[i]);
        cr_assert_not_null(a, "split report: no %s", same[i]);
        char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
        cr_expect(json_equal(a, b), "%s differs:\nsplit %.600s\none   %.600s", same[i], sa, sb);
        free(sa);
        free(sb);
    }
    /* One process merges the controller's counts into its report; split, they are in the
     * controller's own report. */
    json_t *p_split = json_object_get(crep, "priority");
    json_t *p_whole = json_object_get(whole, "priority");
    const char *counts[] = {"requests", "granted", "refused"};
    for (size_t i = 0; i < 3; i++)
        cr_expect(
            json_equal(json_object_get(p_split, counts[i]), json_object_get(p_whole, counts[i])),
            "priority %s: split %lld, one process %lld", counts[i],
            json_integer_value(json_object_get(p_split, counts[i])),
            json_integer_value(json_object_get(p_whole, counts[i])));
    cr_expect_gt(json_integer_value(json_object_get(p_split, "requests")), 0,
                 "no priority request in %s s: the comparison says nothing about transit", dur);
    json_decref(split);
    json_decref(whole);
    json_decref(crep);
    char rm[96];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_expect_eq(system(rm), 0);
}
