/* tests/test_multihost_split.c — the system split into separate processes on loopback,
 * as tests/test_multihost.c splits it across namespaces, but needing no privilege: a
 * forwarder (`sigflow bus`), the simulator (`sigflow sim --expect`), the units
 * (`sigflow unit --bus`) and the controller (`sigflow controller --bus`). The split run
 * must give the simulator the same network, intersection and transit results as
 * `sigflow run` of the same scenario and seed in one process, and the controller the same
 * priority decisions; an operator's command on the bus reaches the separate controller
 * (applied and logged); bad --bus / --name options are refused with a precise error.
 */
#include "run_child.h" /* first: it asks for _GNU_SOURCE (pipe2) */

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <zmq.h>

#include "bus.h"
#include "bus.pb-c.h"
#include "lockstep.h"

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

/* The split system as separate processes: a forwarder, the simulator expecting the units,
 * the controller and optionally one more participant (extra, NULL none), the units host
 * and the controller, each reached at the address the other printed. */
typedef struct {
    child_t *bus, *sim, *units, *ctl; /* on the heap: 128 KiB each */
    char pub[128], sub[128];          /* the forwarder's endpoints */
    char eps[260];                    /* "pub,sub" for --bus */
    char unit_arg[8][64];             /* --unit ID=HOST:PORT of each unit */
} split_t;

static void split_start(split_t *s, const char *dur, const char *report, const char *extra)
{
    memset(s, 0, sizeof *s);
    s->bus = child_new();
    s->sim = child_new();
    s->units = child_new();
    s->ctl = child_new();
    char *bus_argv[] = {(char *)SIGFLOW_BIN, "bus", "--pub", "tcp://127.0.0.1:*", "--sub",
                        "tcp://127.0.0.1:*", NULL};
    cr_assert_eq(child_start(s->bus, bus_argv), 0);
    cr_assert(wait_out(s->bus, "\n", 1), "bus not ready: %s", s->bus->err);
    cr_assert_eq(sscanf(s->bus->out, "ready pub=%127s sub=%127s", s->pub, s->sub), 2,
                 "bus said: %s", s->bus->out);
    snprintf(s->eps, sizeof s->eps, "%s,%s", s->pub, s->sub);

    char *sim_argv[24];
    int n = 0;
    sim_argv[n++] = (char *)SIGFLOW_BIN;
    sim_argv[n++] = "sim";
    sim_argv[n++] = CORRIDOR;
    sim_argv[n++] = "--bus";
    sim_argv[n++] = s->eps;
    sim_argv[n++] = "--expect";
    sim_argv[n++] = "units";
    sim_argv[n++] = "--expect";
    sim_argv[n++] = "controller";
    if (extra) {
        sim_argv[n++] = "--expect";
        sim_argv[n++] = (char *)extra;
    }
    sim_argv[n++] = "--duration";
    sim_argv[n++] = (char *)dur;
    sim_argv[n++] = "--report";
    sim_argv[n++] = (char *)report;
    sim_argv[n++] = "--set";
    sim_argv[n++] = "run.warmup_s=0";
    /* a hang guard only (test_determinism says why): no step of a live run reaches it */
    sim_argv[n++] = "--set";
    sim_argv[n++] = "run.step_timeout_s=120";
    sim_argv[n] = NULL;
    cr_assert_eq(child_start(s->sim, sim_argv), 0);
    cr_assert(child_wait_err(s->sim, "waiting for the participants", WAIT_S), "sim: %s",
              s->sim->err);
    char *unit_argv[] = {
        (char *)SIGFLOW_BIN, "unit", CORRIDOR, "--base-port", "0", "--bus", s->eps, NULL};
    cr_assert_eq(child_start(s->units, unit_argv), 0);
    cr_assert(wait_out(s->units, "ready ", 8), "units: %s", s->units->err);

    /* The controller reaches every unit at the port the units host printed, with the round
     * bound `sigflow run` uses in lockstep (no miss on a loaded machine). */
    char *ctl_argv[40];
    n = 0;
    ctl_argv[n++] = (char *)SIGFLOW_BIN;
    ctl_argv[n++] = "controller";
    ctl_argv[n++] = CORRIDOR;
    ctl_argv[n++] = "--bus";
    ctl_argv[n++] = s->eps;
    ctl_argv[n++] = "--round-timeout-ms";
    ctl_argv[n++] = "5000";
    const char *line = s->units->out;
    for (int i = 0; i < 8; i++) {
        char id[16], addr[48];
        line = strstr(line, "ready ");
        cr_assert_not_null(line);
        cr_assert_eq(sscanf(line, "ready %15s %47s", id, addr), 2);
        snprintf(s->unit_arg[i], sizeof s->unit_arg[i], "%s=%s", id, addr);
        ctl_argv[n++] = "--unit";
        ctl_argv[n++] = s->unit_arg[i];
        line++;
    }
    ctl_argv[n] = NULL;
    cr_assert_eq(child_start(s->ctl, ctl_argv), 0);
}

/* Wait for the run to end (the simulator first, then its participants), stop the
 * forwarder; every process must have exited 0. */
static void split_finish(split_t *s)
{
    int sim_rc = child_finish(s->sim, 240);
    cr_assert_eq(sim_rc, 0, "sim exit %d: %s", sim_rc, s->sim->err);
    cr_assert_eq(child_finish(s->units, WAIT_S), 0, "units: %s", s->units->err);
    cr_assert_eq(child_finish(s->ctl, WAIT_S), 0, "controller: %s", s->ctl->err);
    cr_assert_not_null(strstr(s->units->err, "the simulator ended the run"), "units: %s",
                       s->units->err);
    kill(s->bus->pid, SIGTERM);
    cr_assert_eq(child_finish(s->bus, WAIT_S), 0, "bus: %s", s->bus->err);
}

static void split_free(split_t *s)
{
    free(s->bus);
    free(s->sim);
    free(s->units);
    free(s->ctl);
}

Test(multihost_split, split_run_matches_one_process, .timeout = 300)
{
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "120" : "240";
    char dir[] = "/tmp/sf-split-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char split_rep[64], one_rep[64];
    snprintf(split_rep, sizeof split_rep, "%s/split.json", dir);
    snprintf(one_rep, sizeof one_rep, "%s/one.json", dir);

    split_t sp;
    split_start(&sp, dur, split_rep, NULL);
    split_finish(&sp);

    static child_t one; /* 128 KiB: not on the stack */
    char *one_argv[] = {
        (char *)SIGFLOW_BIN, "run",   CORRIDOR, "--headless",     "--duration", (char *)dur,
        "--report",          one_rep, "--set",  "run.warmup_s=0", NULL};
    int one_rc = child_run(&one, one_argv, 240);
    cr_assert_eq(one_rc, 0, "sigflow run exit %d: %s", one_rc, one.err);

    json_t *split = load(split_rep), *whole = load(one_rep), *crep = stderr_report(sp.ctl);
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
    split_free(&sp);
    char rm[96];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_expect_eq(system(rm), 0);
}

/* ---- an operator's command in a split run ------------------------------------------- */

/* The operator's side: a lockstep participant of its own (stage 0, as the units) that
 * publishes one ViewCommand while it handles step at_k, before its Done(at_k) on the same
 * socket. The forwarder passes the command on before that Done, so the clock cannot
 * start the controller's stage of step at_k before the command is in the controller's
 * queue: the command arrives during the run whatever the machine's load, with no sleep
 * and no wall-clock race against the end of the run. */
typedef struct {
    const char *pub, *sub;  /* the forwarder's endpoints */
    uint64_t at_k;          /* step at which to send */
    Sfbus__ViewCommand cmd; /* what to send */
    uint64_t sent_k;        /* step it was sent at, UINT64_MAX before */
    uint64_t steps;         /* steps handled */
    int rc;                 /* 0 when the run ended with the clock's Bye */
    char err[SF_LOCKSTEP_ERR_MAX + 64];
} operator_t;

static int operator_step(void *arg, const Sfbus__Step *st, void *pub)
{
    operator_t *o = arg;
    o->steps++;
    if (o->sent_k == UINT64_MAX && st->k >= o->at_k) {
        if (sf_bus_send(pub, &o->cmd.base) != 0)
            return -1;
        o->sent_k = st->k;
    }
    return 0;
}

static void *operator_run(void *arg)
{
    operator_t *o = arg;
    o->rc = -1;
    void *zctx = zmq_ctx_new();
    if (!zctx) {
        snprintf(o->err, sizeof o->err, "zmq_ctx_new: %s", zmq_strerror(errno));
        return NULL;
    }
    sf_participant_config_t pc = {
        .name = "operator", .role = SFBUS__ROLE__ROLE_VIEW, .lockstep = 1, .stage = 0};
    sf_participant_t *p = sf_participant_new(zctx, o->pub, o->sub, &pc);
    if (!p) {
        snprintf(o->err, sizeof o->err, "participant: %s", sf_bus_strerror(errno));
    } else if (sf_participant_register(p, WAIT_S, NULL, NULL) != 0) {
        snprintf(o->err, sizeof o->err, "register: %s", sf_participant_error(p));
    } else {
        for (;;) {
            int r = sf_participant_step(p, WAIT_S, NULL, operator_step, o);
            if (r == 1)
                continue;
            if (r == 0)
                o->rc = 0;
            else
                snprintf(o->err, sizeof o->err, "step: %s", sf_participant_error(p));
            break;
        }
    }
    sf_participant_destroy(&p);
    (void)sf_bus_ctx_term(zctx, SF_BUS_CTX_TERM_MS);
    return NULL;
}

/* The lines of text holding every one of the needles, counted; the first in *first. */
static int count_lines(const char *text, const char *const *needles, const char **first)
{
    int n = 0;
    if (first)
        *first = NULL;
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        bool all = true;
        for (size_t i = 0; needles[i] && all; i++) {
            const char *at = strstr(l, needles[i]);
            all = at && at < l + len;
        }
        if (all) {
            if (first && !*first)
                *first = l;
            n++;
        }
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

/* A plan selection sent on the bus by an operator (as the viewer's `p` key sends it) is
 * taken by the separate `sigflow controller --bus` process: logged as the operator's,
 * written to that intersection's unit (plan_selected) and to no other, the unit then
 * switching to it. Before the controller subscribed to "cmd", none of it happened. */
Test(multihost_split, operator_command_reaches_the_split_controller, .timeout = 300)
{
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "150" : "240";
    char dir[] = "/tmp/sf-split-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char rep[64];
    snprintf(rep, sizeof rep, "%s/split.json", dir);

    split_t sp;
    split_start(&sp, dur, rep, "operator");
    /* I3 (index 2) runs plan 1 at the scenario's 07:30 start; the operator wants plan 2
     * from sim second 30 on (the units' start-up is over at 15 s). */
    operator_t op = {.pub = sp.pub, .sub = sp.sub, .at_k = 300, .sent_k = UINT64_MAX};
    Sfbus__ViewCommand init = SFBUS__VIEW_COMMAND__INIT;
    op.cmd = init;
    op.cmd.cmd = SFBUS__COMMAND__CMD_SELECT_PLAN;
    op.cmd.ix = 2;
    op.cmd.plan = 2;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, operator_run, &op), 0);
    split_finish(&sp);
    pthread_join(th, NULL);
    cr_assert_eq(op.rc, 0, "operator: %s", op.err);
    cr_assert_eq(op.sent_k, op.at_k, "sent at step %llu", (unsigned long long)op.sent_k);

    const char *ev = sp.ctl->out, *first = NULL;
    const char *oper[] = {"\"ix\":\"I3\"", "\"operator\":\"plan\"", "\"plan\":2", NULL};
    cr_assert_eq(count_lines(ev, oper, &first), 1,
                 "the controller did not log the operator's command once:\n%s", ev);
    const char *sel[] = {"\"event\":\"plan_selected\"", "\"plan\":2", NULL};
    const char *sel_at = NULL;
    cr_assert_eq(count_lines(ev, sel, &sel_at), 1, "plan 2 selected other than once:\n%s", ev);
    const char *sel_i3[] = {"\"ix\":\"I3\"", "\"event\":\"plan_selected\"", "\"plan\":2", NULL};
    cr_assert_eq(count_lines(ev, sel_i3, NULL), 1, "plan 2 selected elsewhere than I3:\n%s", ev);
    cr_assert_gt(sel_at, first, "selected before the command was logged:\n%s", ev);
    const char *sw[] = {"\"ix\":\"I3\"", "\"event\":\"plan_switched\"", "\"to\":2", NULL};
    cr_assert_eq(count_lines(ev, sw, NULL), 1, "I3's unit never switched to plan 2:\n%s", ev);

    /* The report counts the command and what followed with the other plan events. */
    json_t *crep = stderr_report(sp.ctl);
    const char *plan_kind[] = {"\"kind\":\"plan\"", NULL};
    json_int_t plan_events =
        json_integer_value(json_object_get(json_object_get(crep, "events"), "plan"));
    cr_expect_eq(plan_events, count_lines(ev, plan_kind, NULL), "events.plan %lld:\n%s",
                 (long long)plan_events, ev);
    json_decref(crep);
    split_free(&sp);
    char rm[96];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_expect_eq(system(rm), 0);
}
