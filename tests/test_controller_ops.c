/* tests/test_controller_ops.c — what the controller sees and does around a unit's
 * troubles, against real units (unit/host in a thread on 127.0.0.1, ticked in lockstep
 * with the controller's steps):
 *  - a partition long enough for the unit's heartbeat watchdog: the unit runs local, and
 *    the controller logs the fallback and its end once the link is back;
 *  - a priority request the unit ended by itself (its green ran out): the bus's
 *    check-out is not a failure;
 *  - the operator's commands from the bus (ViewCommand on topic "cmd" through a real
 *    forwarder): toggle priority stops and restarts granting; fault reset clears a
 *    latched conflict-monitor fault on the unit, and both are logged. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus.h"
#include "bus.pb-c.h"
#include "bus_codec.h"
#include "ctl_rig.h"
#include "controller.h"
#include "host.h"
#include "scenario.h"

/* Every event line, in order, for the assertions. */
typedef struct {
    char *text; /* lines joined by '\n' */
    size_t len; /* used */
    size_t cap; /* allocated */
} lines_t;

static void keep_line(void *ctx, const char *line)
{
    lines_t *l = ctx;
    size_t n = strlen(line);
    if (l->len + n + 2 > l->cap) {
        size_t cap = (l->cap + n + 2) * 2;
        char *p = realloc(l->text, cap);
        cr_assert_not_null(p);
        l->text = p;
        l->cap = cap;
    }
    memcpy(l->text + l->len, line, n);
    l->len += n;
    l->text[l->len++] = '\n';
    l->text[l->len] = 0;
}

/* Where the first line holding `what` after offset `from` starts, or -1. */
static long find_after(const lines_t *l, long from, const char *what)
{
    if (!l->text || from < 0)
        return -1;
    const char *p = strstr(l->text + from, what);
    return p ? (long)(p - l->text) : -1;
}

static int count(const lines_t *l, const char *what)
{
    int n = 0;
    for (const char *p = l->text; p && (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static sf_controller_t *new_controller(const sf_scenario_t *sc, const sf_endpoint_t *eps,
                                       lines_t *lines)
{
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 200;
    o.sink = keep_line;
    o.sink_ctx = lines;
    char err[256] = "";
    sf_controller_t *c = sf_controller_new(sc, eps, &o, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

/* One test's world: a scenario's units in the rig and a controller keeping every event
 * line, started at 07:00. */
typedef struct {
    sf_scenario_t *sc;         /* single.json with the test's sets */
    sf_endpoint_t eps[1];      /* its unit */
    ctl_rig_t r;               /* serving it */
    uint32_t tod0;             /* time of day at k = 0, 0.1 s */
    lines_t lines;             /* every event line */
    sf_controller_t *c;        /* the controller */
    const sf_unit_state_t *st; /* what it knows of unit 0 */
} ops_t;

static void ops_start(ops_t *f, const char *const *sets, size_t n)
{
    memset(f, 0, sizeof *f);
    f->sc = ctl_rig_load("single.json", sets, n);
    f->tod0 = 7 * 36000;
    ctl_rig_start(&f->r, f->sc, f->eps, f->tod0, NULL);
    f->c = new_controller(f->sc, f->eps, &f->lines);
    f->st = sf_master_state(sf_controller_master(f->c), 0);
}

static void ops_stop(ops_t *f)
{
    sf_controller_destroy(&f->c);
    ctl_rig_stop(&f->r);
    sf_scenario_destroy(&f->sc);
    free(f->lines.text);
}

Test(controller_ops, fallback_during_a_partition_is_logged_at_reconnect)
{
    ops_t f;
    ops_start(&f, NULL, 0);
    uint64_t k = ctl_rig_until_centre(&f.r, f.c, 0, f.tod0);
    cr_assert_eq(count(&f.lines, "\"local_fallback\""), 0, "%s", f.lines.text);

    /* The partition: the unit keeps running but hears nothing, past its heartbeat
     * timeout (sf_unit_config_from_control: the scenario's, else the default). */
    sf_unit_config_t uc;
    sf_unit_config_default(&uc, &f.sc->intersections[0]);
    sf_unit_config_from_control(&uc, &f.sc->control);
    cr_assert_gt(uc.heartbeat_timeout_ds, 0);
    atomic_store(&f.r.deaf, true);
    uint64_t end = k + uc.heartbeat_timeout_ds + 50;
    for (; k < end; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->health.state, SF_LINK_OFFLINE);
    /* the precondition, on the unit itself: it went local on its own */
    cr_assert(sf_unit_status(sf_host_unit(f.r.h, 0))->fallback, "the unit never fell back");

    atomic_store(&f.r.deaf, false);
    for (uint64_t k0 = k; f.st->health.state != SF_LINK_ONLINE && k < k0 + 400; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->health.state, SF_LINK_ONLINE, "not back online");
    for (uint64_t k0 = k; k < k0 + 50; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);

    long off = find_after(&f.lines, 0, "\"event\":\"offline\"");
    long fb = find_after(&f.lines, off, "\"event\":\"local_fallback\"");
    long on = find_after(&f.lines, off, "\"event\":\"online\"");
    long end_fb = find_after(&f.lines, fb, "\"event\":\"fallback_ended\"");
    cr_assert_geq(off, 0, "no offline event:\n%s", f.lines.text);
    cr_assert_geq(on, 0, "no online event:\n%s", f.lines.text);
    cr_assert_geq(fb, 0, "the fallback was never logged:\n%s", f.lines.text);
    cr_assert_geq(end_fb, 0, "the fallback's end was never logged:\n%s", f.lines.text);
    cr_assert_eq(count(&f.lines, "\"local_fallback\""), 1, "%s", f.lines.text);
    cr_assert_eq(count(&f.lines, "\"fallback_ended\""), 1, "%s", f.lines.text);
    cr_assert_eq(f.st->local_fallback, 0);
    cr_assert(f.st->mode >= 0x10 && f.st->mode <= 0x12, "back under centre control: mode %#x",
              f.st->mode);

    ops_stop(&f);
}

/* The controller stalls (no step, the connection stays) past the unit's heartbeat
 * timeout: the unit runs local, and the first poll after the stall, one FC 23 on the open
 * connection (map version 4), both ends the fallback and shows it, so the controller logs
 * local_fallback, then fallback_ended at the next poll, as it does with the version 3
 * image read then heartbeat write. */
Test(controller_ops, fallback_after_a_stall_is_logged_by_the_fc23_poll)
{
    ops_t f;
    ops_start(&f, NULL, 0);
    uint64_t k = ctl_rig_until_centre(&f.r, f.c, 0, f.tod0);
    cr_assert_eq(count(&f.lines, "\"local_fallback\""), 0, "%s", f.lines.text);
    cr_assert_eq(f.st->protocol_version, 4);
    uint64_t connects = f.st->n_connects;
    sf_unit_config_t uc;
    sf_unit_config_default(&uc, &f.sc->intersections[0]);
    sf_unit_config_from_control(&uc, &f.sc->control);
    cr_assert_gt(uc.heartbeat_timeout_ds, 0);
    /* The stall: the units tick on, the controller does not step. */
    uint64_t resume = k + uc.heartbeat_timeout_ds + 20;
    atomic_store(&f.r.target, resume);
    pthread_mutex_lock(&f.r.mu);
    while (f.r.done < resume)
        pthread_cond_wait(&f.r.cv, &f.r.mu);
    pthread_mutex_unlock(&f.r.mu);
    cr_assert(sf_unit_status(sf_host_unit(f.r.h, 0))->fallback, "the unit never fell back");
    sf_server_stats_t s0, s1;
    sf_server_stats(sf_host_server(f.r.h, 0), &s0);
    long from = (long)f.lines.len;
    /* Step until a poll has run (the controller polls once a second). */
    uint64_t polled = f.st->n_status;
    for (k = resume; f.st->n_status == polled && k < resume + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    sf_server_stats(sf_host_server(f.r.h, 0), &s1);
    cr_assert_gt(f.st->n_status, polled, "no poll after the stall");
    cr_assert_eq(f.st->local_fallback, 1, "the poll ending the fallback shows it");
    cr_assert_eq(f.st->n_connects, connects, "the same connection: the poll was an FC 23");
    cr_assert_eq(s1.requests - s0.requests, 1, "the whole poll in one request");
    cr_assert_not(sf_unit_status(sf_host_unit(f.r.h, 0))->fallback, "the heartbeat ended it");
    cr_assert_geq(find_after(&f.lines, from, "\"event\":\"local_fallback\""), 0, "%s",
                  f.lines.text);
    polled = f.st->n_status;
    for (uint64_t k0 = k; f.st->n_status == polled && k < k0 + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->local_fallback, 0, "back under the centre at the next poll");
    long fb = find_after(&f.lines, from, "\"event\":\"local_fallback\"");
    cr_assert_geq(find_after(&f.lines, fb, "\"event\":\"fallback_ended\""), 0, "%s", f.lines.text);
    cr_assert_eq(count(&f.lines, "\"local_fallback\""), 1, "%s", f.lines.text);
    cr_assert_eq(count(&f.lines, "\"fallback_ended\""), 1, "%s", f.lines.text);
    ops_stop(&f);
}

/* A bus whose request the unit ended by itself (the ETA ran out and its green ended:
 * state expired) then checks out: the controller counts the request served, sends no
 * check-out the unit would refuse, and logs no failure. */
Test(controller_ops, check_out_after_the_unit_ended_the_request_is_no_failure)
{
    const char *sets[] = {"control.priority.lateness_threshold_s=30",
                          "control.priority.enabled=true"};
    ops_t f;
    ops_start(&f, sets, 2);
    uint64_t k = ctl_rig_until_centre(&f.r, f.c, 0, f.tod0);
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 2, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(f.c, &e), 0);
    /* Until the unit reports the request expired (served its green, then the green ran
     * out with the ETA at zero and no check-out). */
    int slot = -1;
    for (uint64_t k0 = k; slot < 0 && k < k0 + 3000; k++) {
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
        for (int i = 0; i < 8; i++)
            if (f.st->prio_id[i] != 0 && f.st->prio_state[i] == 5)
                slot = i;
    }
    cr_assert_geq(slot, 0, "the unit never ended the request:\n%s", f.lines.text);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(f.c), &cnt);
    cr_assert_eq(cnt.granted, 1);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(f.c), 0), 1, "held until the bus checks out");
    e.check_in = false;
    cr_assert_eq(sf_controller_transit(f.c, &e), 0);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    sf_tsp_counts(sf_controller_tsp(f.c), &cnt);
    cr_assert_eq(cnt.served, 1, "the unit had it active: served");
    cr_assert_eq(cnt.refused, 0);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(f.c), 0), 0);
    cr_assert_eq(count(&f.lines, "checkout_not_taken"), 0, "%s", f.lines.text);
    cr_assert_eq(count(&f.lines, "unit_refused"), 0, "%s", f.lines.text);

    ops_stop(&f);
}

/* ---- operator commands over the bus ------------------------------------------------ */

typedef struct {
    void *zctx;             /* context of the sockets below */
    sf_bus_forwarder_t *fw; /* XSUB/XPUB forwarder on ephemeral ports */
    void *pub, *sub;        /* the viewer's side, the controller's side ("cmd") */
} bus_t;

static void bus_open(bus_t *b)
{
    b->zctx = zmq_ctx_new();
    cr_assert_not_null(b->zctx);
    b->fw = sf_bus_forwarder_new(b->zctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
    cr_assert_not_null(b->fw, "%s", strerror(errno));
    const char *topics[] = {"cmd"};
    b->sub = sf_bus_sub_new(b->zctx, sf_bus_forwarder_sub_endpoint(b->fw), topics, 1, 0);
    b->pub = sf_bus_pub_new(b->zctx, sf_bus_forwarder_pub_endpoint(b->fw));
    cr_assert(b->sub && b->pub);
}

static void bus_close(bus_t *b)
{
    sf_bus_close(&b->sub);
    sf_bus_close(&b->pub);
    sf_bus_forwarder_destroy(&b->fw);
    (void)sf_bus_ctx_term(b->zctx, SF_BUS_CTX_TERM_MS); /* bounded (bus.h) */
}

/* Publish the command until it comes back on the controller's SUB socket (a PUB's first
 * messages may leave before the subscription reached the forwarder), and hand what
 * arrived to the controller as `sigflow run` does. Returns sf_controller_operator's
 * result. */
static int operate(bus_t *b, sf_controller_t *c, Sfbus__Command cmd, uint32_t ix)
{
    Sfbus__ViewCommand m = SFBUS__VIEW_COMMAND__INIT;
    m.cmd = cmd;
    m.ix = ix;
    for (int tries = 0; tries < 100; tries++) {
        cr_assert_eq(sf_bus_send(b->pub, &m.base), 0, "send: %s", zmq_strerror(errno));
        zmq_pollitem_t it = {b->sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        sf_bus_rx_t rx;
        cr_assert_eq(sf_bus_recv(b->sub, &rx, 0, NULL, 0), 0);
        cr_assert_eq(rx.type, SF_BUS_CMD);
        int rc = sf_controller_operator(c, rx.msg);
        int err = errno;
        sf_bus_rx_clear(&rx);
        /* copies sent before the subscription was up never arrive; any later copy
         * would be a second command: drain none, sent one at a time */
        errno = err;
        return rc;
    }
    cr_assert_fail("the command never came through the forwarder");
    return -1;
}

Test(controller_ops, operator_toggle_priority_stops_and_restarts_granting)
{
    const char *sets[] = {"control.priority.lateness_threshold_s=30",
                          "control.priority.enabled=true"};
    ops_t f;
    ops_start(&f, sets, 2);
    bus_t b;
    bus_open(&b);
    uint64_t k = ctl_rig_until_centre(&f.r, f.c, 0, f.tod0);

    cr_assert_eq(operate(&b, f.c, SFBUS__COMMAND__CMD_TOGGLE_PRIORITY, 0), 1);
    ctl_rig_step_ok(&f.r, f.c, k++, f.tod0);
    cr_assert_geq(find_after(&f.lines, 0, "\"operator\":\"priority\",\"enabled\":false"), 0, "%s",
                  f.lines.text);
    /* Off: a late bus checks in, nothing is decided, nothing reaches the unit. */
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 20, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(f.c, &e), 0);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(f.c), &cnt);
    cr_assert_eq(cnt.requests, 0, "a request was made with priority off");
    cr_assert_eq(cnt.granted, 0);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(f.c), 0), 0);
    const sf_unit_status_t *ust = sf_unit_status(sf_host_unit(f.r.h, 0));
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ust->prio[i].id, 0, "the unit got request %u", ust->prio[i].id);

    /* On again: the next late bus is granted and taken by the unit. */
    cr_assert_eq(operate(&b, f.c, SFBUS__COMMAND__CMD_TOGGLE_PRIORITY, 0), 1);
    snprintf(e.bus_id, sizeof e.bus_id, "B1-002");
    cr_assert_eq(sf_controller_transit(f.c, &e), 0);
    ctl_rig_step_ok(&f.r, f.c, k++, f.tod0);
    cr_assert_geq(find_after(&f.lines, 0, "\"operator\":\"priority\",\"enabled\":true"), 0, "%s",
                  f.lines.text);
    sf_tsp_counts(sf_controller_tsp(f.c), &cnt);
    cr_assert_eq(cnt.requests, 1);
    cr_assert_eq(cnt.granted, 1, "granted and taken by the unit");
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(f.c), 0), 1);
    for (uint64_t k0 = k; k < k0 + 10; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    int held = 0;
    for (int i = 0; i < 8; i++)
        held += ust->prio[i].id != 0 && ust->prio[i].state >= SF_PRIO_ST_QUEUED &&
                ust->prio[i].state <= SF_PRIO_ST_SERVED;
    cr_assert_eq(held, 1, "the unit holds the request");

    bus_close(&b);
    ops_stop(&f);
}

Test(controller_ops, operator_fault_reset_clears_a_latched_fault)
{
    ops_t f;
    ops_start(&f, NULL, 0);
    bus_t b;
    bus_open(&b);
    uint64_t k = ctl_rig_until_centre(&f.r, f.c, 0, f.tod0);

    /* Group 0 shows green and red together for one tick: the monitor latches flash. */
    atomic_store(&f.r.break_ticks, 1);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->fault_latched, 1, "fault %#x mode %#x", f.st->fault_code, f.st->mode);
    cr_assert_eq(f.st->mode, 0x31, "latched flash");
    cr_assert_geq(find_after(&f.lines, 0, "\"event\":\"fault\""), 0, "%s", f.lines.text);
    cr_assert_geq(find_after(&f.lines, 0, "\"event\":\"flash\""), 0, "%s", f.lines.text);
    /* It stays latched: only a reset clears it. */
    for (uint64_t k0 = k; k < k0 + 50; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->fault_latched, 1);

    /* A reset for an intersection that does not exist is refused and changes nothing. */
    cr_assert_eq(operate(&b, f.c, SFBUS__COMMAND__CMD_FAULT_RESET, 7), -1);
    cr_assert_eq(errno, EINVAL);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->fault_latched, 1);

    long before = (long)f.lines.len;
    cr_assert_eq(operate(&b, f.c, SFBUS__COMMAND__CMD_FAULT_RESET, 0), 1);
    for (uint64_t k0 = k; f.st->fault_latched && k < k0 + 30; k++)
        ctl_rig_step_ok(&f.r, f.c, k, f.tod0);
    cr_assert_eq(f.st->fault_latched, 0, "the reset did not reach the unit");
    cr_assert_eq(f.st->fault_code, 0);
    long op = find_after(&f.lines, before, "\"operator\":\"fault reset\"");
    cr_assert_geq(op, 0, "%s", f.lines.text);
    cr_assert_geq(find_after(&f.lines, op, "\"event\":\"fault_cleared\""), 0, "%s", f.lines.text);
    /* and the unit comes back through its start-up to centre control */
    ctl_rig_until_centre(&f.r, f.c, k, f.tod0);

    bus_close(&b);
    ops_stop(&f);
}

/* An operator's plan chosen while the unit is still in its start-up, after the controller
 * selected the scheduled plan there: the unit must run the operator's plan. A unit in
 * start-up shows no pending plan, and the controller once took its start-up plan (here
 * the operator's) as in force and never wrote the selection: the unit then ran the
 * schedule's plan. The command is handed over directly (the bus path is tested above and
 * in test_multihost_split). */
Test(controller_ops, operator_plan_chosen_during_the_start_up_is_run)
{
    sf_scenario_t *sc = ctl_rig_load("xiantao-corridor.json", NULL, 0);
    sf_endpoint_t eps[8];
    cr_assert_eq(sc->n_intersections, 8);
    ctl_rig_t r;
    const uint32_t tod0 = sc->run.start_tod_s * 10; /* 07:30: the schedule wants plan 1 */
    const ctl_rig_opts_t ro = {.startup_ds = 100};  /* 10 s flash, then 10 s all-red */
    ctl_rig_start(&r, sc, eps, tod0, &ro);
    lines_t lines = {0};
    sf_controller_t *c = new_controller(sc, eps, &lines);
    const sf_unit_status_t *i3 = sf_unit_status(sf_host_unit(r.h, 2));
    const sf_unit_status_t *i2 = sf_unit_status(sf_host_unit(r.h, 1));

    const char *sel1 = "\"ix\":\"I3\",\"kind\":\"plan\",\"event\":\"plan_selected\",\"plan\":1";
    uint64_t k = 0;
    for (; k < 150 && find_after(&lines, 0, sel1) < 0; k++)
        ctl_rig_step_ok(&r, c, k, tod0);
    cr_assert_geq(find_after(&lines, 0, sel1), 0, "plan 1 never selected at I3:\n%s", lines.text);
    /* the case: still in start-up, on the plan the operator is about to choose */
    cr_assert(i3->startup, "I3's start-up is over at %.1f s", (double)k / 10);
    cr_assert_eq(i3->active_plan, 2, "I3 starts on plan %u", i3->active_plan);

    Sfbus__ViewCommand m = SFBUS__VIEW_COMMAND__INIT;
    m.cmd = SFBUS__COMMAND__CMD_SELECT_PLAN;
    m.ix = 2;
    m.plan = 2;
    cr_assert_eq(sf_controller_operator(c, &m.base), 1);
    /* past the start-up and a full cycle of either plan */
    for (uint64_t k0 = k; k < k0 + 200 + 1500; k++)
        ctl_rig_step_ok(&r, c, k, tod0);
    cr_assert(!i3->startup && !i2->startup);
    cr_assert_eq(i3->active_plan, 2, "I3 runs plan %u (pending %u), not the operator's",
                 i3->active_plan, i3->pending_plan);
    cr_assert_eq(i3->pending_plan, 0);
    cr_assert_eq(i2->active_plan, 1, "I2 keeps the schedule's plan");
    cr_assert_geq(
        find_after(&lines, 0,
                   "\"ix\":\"I3\",\"kind\":\"plan\",\"event\":\"plan_selected\",\"plan\":2"),
        0, "%s", lines.text);

    sf_controller_destroy(&c);
    ctl_rig_stop(&r);
    sf_scenario_destroy(&sc);
    free(lines.text);
}
