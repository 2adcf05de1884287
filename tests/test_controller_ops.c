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
#include "controller.h"
#include "host.h"
#include "scenario.h"

/* Units served by their own thread and ticked up to the step the test has reached. */
typedef struct {
    sf_host_t *h;                /* served by the thread */
    pthread_t th;                /* the thread */
    atomic_bool stop;            /* end it */
    atomic_bool deaf;            /* partition: the units tick but answer nobody */
    atomic_int break_ticks;      /* unit 0's outputs broken (green + red) for this many ticks */
    atomic_uint_fast64_t target; /* ticks the units should have made */
    pthread_mutex_t mu;          /* guards done */
    pthread_cond_t cv;           /* signalled when done changes */
    uint64_t done;               /* ticks made */
} rig_t;

/* The unit's test seam: group 0 shows green and red together while break_ticks lasts
 * (a green/red conflict the monitor must latch). */
static void seam(void *ctx, uint8_t *out, uint8_t n_sg)
{
    rig_t *r = ctx;
    if (n_sg > 0 && atomic_load(&r->break_ticks) > 0) {
        atomic_fetch_sub(&r->break_ticks, 1);
        out[0] = SF_OUT_GREEN | SF_OUT_RED;
    }
}

static void *serve(void *arg)
{
    rig_t *r = arg;
    uint64_t done = 0;
    while (!atomic_load(&r->stop)) {
        if (!atomic_load(&r->deaf))
            sf_host_poll(r->h, 1);
        uint64_t want = atomic_load(&r->target);
        if (done == want)
            continue;
        for (; done < want; done++)
            sf_host_tick(r->h);
        pthread_mutex_lock(&r->mu);
        r->done = done;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* One controller step k, then the units tick to k + 1 before the next step. */
static void step(rig_t *r, sf_controller_t *c, uint64_t k, uint32_t tod0)
{
    cr_assert_eq(sf_controller_step(c, k, tod0 + (uint32_t)k), 0, "step %llu: %s",
                 (unsigned long long)k, strerror(errno));
    atomic_store(&r->target, k + 1);
    pthread_mutex_lock(&r->mu);
    while (r->done < k + 1)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static sf_scenario_t *load(const char *name, const char *const *sets, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/scenarios/%s", SIGFLOW_ASSETS, name);
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(path, sets, n, &errs);
    cr_assert_not_null(sc, "%s: %s", name, errs.n ? errs.msg[0] : "?");
    return sc;
}

static void rig_start(rig_t *r, const sf_scenario_t *sc, sf_endpoint_t *eps, uint32_t tod0)
{
    memset(r, 0, sizeof *r);
    r->h = sf_host_new(NULL);
    cr_assert_not_null(r->h);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        sf_unit_config_t uc;
        sf_unit_config_default(&uc, &sc->intersections[i]);
        sf_unit_config_from_control(&uc, &sc->control);
        uc.startup_flash_ds = 10; /* 1 s flash and 1 s all-red: short tests */
        uc.startup_all_red_ds = 10;
        cr_assert_eq(sf_host_add_unit(r->h, &sc->intersections[i], &uc), (int)i, "%s",
                     strerror(errno));
        snprintf(eps[i].host, sizeof eps[i].host, "127.0.0.1");
        eps[i].port = sf_host_port(r->h, i);
    }
    sf_unit_hooks_t hk = {.ctx = r, .outputs = seam};
    sf_unit_set_hooks(sf_host_unit(r->h, 0), &hk);
    cr_assert_eq(sf_host_set_clock(r->h, tod0), 0);
    atomic_store(&r->stop, false);
    atomic_store(&r->deaf, false);
    atomic_store(&r->break_ticks, 0);
    atomic_store(&r->target, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    cr_assert_eq(pthread_create(&r->th, NULL, serve, r), 0);
}

static void rig_stop(rig_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    sf_host_destroy(&r->h);
}

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

/* Step until unit 0 runs under centre control (past its start-up, plans verified). */
static uint64_t until_centre(rig_t *r, sf_controller_t *c, uint64_t k, uint32_t tod0)
{
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    for (uint64_t k0 = k; k < k0 + 30 || (k < k0 + 300 && !(st->mode >= 0x10 && st->mode <= 0x12));
         k++)
        step(r, c, k, tod0);
    cr_assert(st->mode >= 0x10 && st->mode <= 0x12, "mode %#x", st->mode);
    return k;
}

Test(controller_ops, fallback_during_a_partition_is_logged_at_reconnect)
{
    sf_scenario_t *sc = load("single.json", NULL, 0);
    sf_endpoint_t eps[1];
    rig_t r;
    const uint32_t tod0 = 7 * 36000;
    rig_start(&r, sc, eps, tod0);
    lines_t lines = {0};
    sf_controller_t *c = new_controller(sc, eps, &lines);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    uint64_t k = until_centre(&r, c, 0, tod0);
    cr_assert_eq(count(&lines, "\"local_fallback\""), 0, "%s", lines.text);

    /* The partition: the unit keeps running but hears nothing, past its heartbeat
     * timeout (sf_unit_config_from_control: the scenario's, else the default). */
    sf_unit_config_t uc;
    sf_unit_config_default(&uc, &sc->intersections[0]);
    sf_unit_config_from_control(&uc, &sc->control);
    cr_assert_gt(uc.heartbeat_timeout_ds, 0);
    atomic_store(&r.deaf, true);
    uint64_t end = k + uc.heartbeat_timeout_ds + 50;
    for (; k < end; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->health.state, SF_LINK_OFFLINE);
    /* the precondition, on the unit itself: it went local on its own */
    cr_assert(sf_unit_status(sf_host_unit(r.h, 0))->fallback, "the unit never fell back");

    atomic_store(&r.deaf, false);
    for (uint64_t k0 = k; st->health.state != SF_LINK_ONLINE && k < k0 + 400; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->health.state, SF_LINK_ONLINE, "not back online");
    for (uint64_t k0 = k; k < k0 + 50; k++)
        step(&r, c, k, tod0);

    long off = find_after(&lines, 0, "\"event\":\"offline\"");
    long fb = find_after(&lines, off, "\"event\":\"local_fallback\"");
    long on = find_after(&lines, off, "\"event\":\"online\"");
    long end_fb = find_after(&lines, fb, "\"event\":\"fallback_ended\"");
    cr_assert_geq(off, 0, "no offline event:\n%s", lines.text);
    cr_assert_geq(on, 0, "no online event:\n%s", lines.text);
    cr_assert_geq(fb, 0, "the fallback was never logged:\n%s", lines.text);
    cr_assert_geq(end_fb, 0, "the fallback's end was never logged:\n%s", lines.text);
    cr_assert_eq(count(&lines, "\"local_fallback\""), 1, "%s", lines.text);
    cr_assert_eq(count(&lines, "\"fallback_ended\""), 1, "%s", lines.text);
    cr_assert_eq(st->local_fallback, 0);
    cr_assert(st->mode >= 0x10 && st->mode <= 0x12, "back under centre control: mode %#x",
              st->mode);

    sf_controller_destroy(&c);
    rig_stop(&r);
    sf_scenario_destroy(&sc);
    free(lines.text);
}

/* A bus whose request the unit ended by itself (the ETA ran out and its green ended:
 * state expired) then checks out: the controller counts the request served, sends no
 * check-out the unit would refuse, and logs no failure. */
Test(controller_ops, check_out_after_the_unit_ended_the_request_is_no_failure)
{
    const char *sets[] = {"control.priority.lateness_threshold_s=30",
                          "control.priority.enabled=true"};
    sf_scenario_t *sc = load("single.json", sets, 2);
    sf_endpoint_t eps[1];
    rig_t r;
    const uint32_t tod0 = 7 * 36000;
    rig_start(&r, sc, eps, tod0);
    lines_t lines = {0};
    sf_controller_t *c = new_controller(sc, eps, &lines);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    uint64_t k = until_centre(&r, c, 0, tod0);
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 2, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    /* Until the unit reports the request expired (served its green, then the green ran
     * out with the ETA at zero and no check-out). */
    int slot = -1;
    for (uint64_t k0 = k; slot < 0 && k < k0 + 3000; k++) {
        step(&r, c, k, tod0);
        for (int i = 0; i < 8; i++)
            if (st->prio_id[i] != 0 && st->prio_state[i] == 5)
                slot = i;
    }
    cr_assert_geq(slot, 0, "the unit never ended the request:\n%s", lines.text);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.granted, 1);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(c), 0), 1, "held until the bus checks out");
    e.check_in = false;
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        step(&r, c, k, tod0);
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.served, 1, "the unit had it active: served");
    cr_assert_eq(cnt.refused, 0);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(c), 0), 0);
    cr_assert_eq(count(&lines, "checkout_not_taken"), 0, "%s", lines.text);
    cr_assert_eq(count(&lines, "unit_refused"), 0, "%s", lines.text);

    sf_controller_destroy(&c);
    rig_stop(&r);
    sf_scenario_destroy(&sc);
    free(lines.text);
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
    sf_scenario_t *sc = load("single.json", sets, 2);
    sf_endpoint_t eps[1];
    rig_t r;
    const uint32_t tod0 = 7 * 36000;
    rig_start(&r, sc, eps, tod0);
    lines_t lines = {0};
    sf_controller_t *c = new_controller(sc, eps, &lines);
    bus_t b;
    bus_open(&b);
    uint64_t k = until_centre(&r, c, 0, tod0);

    cr_assert_eq(operate(&b, c, SFBUS__COMMAND__CMD_TOGGLE_PRIORITY, 0), 1);
    step(&r, c, k++, tod0);
    cr_assert_geq(find_after(&lines, 0, "\"operator\":\"priority\",\"enabled\":false"), 0, "%s",
                  lines.text);
    /* Off: a late bus checks in, nothing is decided, nothing reaches the unit. */
    sf_tsp_event_t e = {.check_in = true, .ix = 0, .movement = 0, .eta_s = 20, .lateness_s = 90};
    snprintf(e.bus_id, sizeof e.bus_id, "B1-001");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        step(&r, c, k, tod0);
    sf_tsp_counts_t cnt;
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.requests, 0, "a request was made with priority off");
    cr_assert_eq(cnt.granted, 0);
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(c), 0), 0);
    const sf_unit_status_t *ust = sf_unit_status(sf_host_unit(r.h, 0));
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ust->prio[i].id, 0, "the unit got request %u", ust->prio[i].id);

    /* On again: the next late bus is granted and taken by the unit. */
    cr_assert_eq(operate(&b, c, SFBUS__COMMAND__CMD_TOGGLE_PRIORITY, 0), 1);
    snprintf(e.bus_id, sizeof e.bus_id, "B1-002");
    cr_assert_eq(sf_controller_transit(c, &e), 0);
    step(&r, c, k++, tod0);
    cr_assert_geq(find_after(&lines, 0, "\"operator\":\"priority\",\"enabled\":true"), 0, "%s",
                  lines.text);
    sf_tsp_counts(sf_controller_tsp(c), &cnt);
    cr_assert_eq(cnt.requests, 1);
    cr_assert_eq(cnt.granted, 1, "granted and taken by the unit");
    cr_assert_eq(sf_tsp_active(sf_controller_tsp(c), 0), 1);
    for (uint64_t k0 = k; k < k0 + 10; k++)
        step(&r, c, k, tod0);
    int held = 0;
    for (int i = 0; i < 8; i++)
        held += ust->prio[i].id != 0 && ust->prio[i].state >= SF_PRIO_ST_QUEUED &&
                ust->prio[i].state <= SF_PRIO_ST_SERVED;
    cr_assert_eq(held, 1, "the unit holds the request");

    bus_close(&b);
    sf_controller_destroy(&c);
    rig_stop(&r);
    sf_scenario_destroy(&sc);
    free(lines.text);
}

Test(controller_ops, operator_fault_reset_clears_a_latched_fault)
{
    sf_scenario_t *sc = load("single.json", NULL, 0);
    sf_endpoint_t eps[1];
    rig_t r;
    const uint32_t tod0 = 7 * 36000;
    rig_start(&r, sc, eps, tod0);
    lines_t lines = {0};
    sf_controller_t *c = new_controller(sc, eps, &lines);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    bus_t b;
    bus_open(&b);
    uint64_t k = until_centre(&r, c, 0, tod0);

    /* Group 0 shows green and red together for one tick: the monitor latches flash. */
    atomic_store(&r.break_ticks, 1);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->fault_latched, 1, "fault %#x mode %#x", st->fault_code, st->mode);
    cr_assert_eq(st->mode, 0x31, "latched flash");
    cr_assert_geq(find_after(&lines, 0, "\"event\":\"fault\""), 0, "%s", lines.text);
    cr_assert_geq(find_after(&lines, 0, "\"event\":\"flash\""), 0, "%s", lines.text);
    /* It stays latched: only a reset clears it. */
    for (uint64_t k0 = k; k < k0 + 50; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->fault_latched, 1);

    /* A reset for an intersection that does not exist is refused and changes nothing. */
    cr_assert_eq(operate(&b, c, SFBUS__COMMAND__CMD_FAULT_RESET, 7), -1);
    cr_assert_eq(errno, EINVAL);
    for (uint64_t k0 = k; k < k0 + 20; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->fault_latched, 1);

    long before = (long)lines.len;
    cr_assert_eq(operate(&b, c, SFBUS__COMMAND__CMD_FAULT_RESET, 0), 1);
    for (uint64_t k0 = k; st->fault_latched && k < k0 + 30; k++)
        step(&r, c, k, tod0);
    cr_assert_eq(st->fault_latched, 0, "the reset did not reach the unit");
    cr_assert_eq(st->fault_code, 0);
    long op = find_after(&lines, before, "\"operator\":\"fault reset\"");
    cr_assert_geq(op, 0, "%s", lines.text);
    cr_assert_geq(find_after(&lines, op, "\"event\":\"fault_cleared\""), 0, "%s", lines.text);
    /* and the unit comes back through its start-up to centre control */
    until_centre(&r, c, k, tod0);

    bus_close(&b);
    sf_controller_destroy(&c);
    rig_stop(&r);
    sf_scenario_destroy(&sc);
    free(lines.text);
}
