/* tests/test_lockstep.c — the clock and its participants over real sockets: threads of
 * this process, and a forwarder in another process (`sigflow bus`). */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lockstep.h"

#define EPH "tcp://127.0.0.1:*"

/* ---- a participant in a thread ------------------------------------------------------ */

typedef struct {
    void *ctx;
    const char *pub_ep, *sub_ep;
    const char *name;
    Sfbus__Role role;
    int lockstep;
    int publish_lamps; /* publish LampStates(k) in each step */
    int extra_done;    /* publish Done(k) itself as well: the clock must count it once */
    int silent_after;  /* >= 0: stop answering after this many steps (stay connected) */
    int leave_after;   /* >= 0: close (saying bye) after this many steps */
    double step_timeout_s;
    /* results */
    int reg_rc;
    int reg_errno;
    char reg_err[SF_LOCKSTEP_ERR_MAX];
    uint64_t steps;   /* steps handled */
    int out_of_order; /* a step that was not previous + 1 */
    uint64_t first_k;
    int end_rc; /* 0 = bye from the clock */
    /* the silent one waits on this pipe until the test releases it */
    int hold_fd;
    atomic_int finished; /* set when the thread is about to return */
} part_t;

static int on_step(void *arg, const Sfbus__Step *st, void *pub)
{
    part_t *p = arg;
    if (p->steps == 0)
        p->first_k = st->k;
    else if (st->k != p->first_k + p->steps)
        p->out_of_order++;
    if (p->publish_lamps) {
        uint8_t codes[2] = {0x20, 0x10};
        uint32_t rem[2] = {(uint32_t)(st->k % 300), 0};
        Sfbus__LampStates l = SFBUS__LAMP_STATES__INIT;
        l.k = st->k;
        l.ix = 0;
        l.lamps.data = codes;
        l.lamps.len = 2;
        l.remaining_ds = rem;
        l.n_remaining_ds = 2;
        if (sf_bus_send(pub, &l.base) != 0)
            return -1;
    }
    if (p->extra_done) {
        Sfbus__Done d = SFBUS__DONE__INIT;
        d.k = st->k;
        d.name = (char *)p->name;
        if (sf_bus_send(pub, &d.base) != 0)
            return -1;
    }
    p->steps++;
    return 0;
}

static void *participant_main(void *arg)
{
    part_t *p = arg;
    sf_participant_config_t cfg = {.name = p->name, .role = p->role, .lockstep = p->lockstep};
    sf_participant_t *self = sf_participant_new(p->ctx, p->pub_ep, p->sub_ep, &cfg);
    if (!self) {
        p->reg_rc = -1;
        p->reg_errno = errno;
        return NULL;
    }
    p->reg_rc = sf_participant_register(self, 10.0, NULL, NULL);
    p->reg_errno = errno;
    snprintf(p->reg_err, sizeof p->reg_err, "%s", sf_participant_error(self));
    if (p->reg_rc == 0) {
        for (;;) {
            if (p->silent_after >= 0 && p->steps >= (uint64_t)p->silent_after) {
                char c;
                /* Silent but alive: wait for the test to release us. */
                if (read(p->hold_fd, &c, 1) < 0)
                    break;
                p->end_rc = 1;
                break;
            }
            if (p->leave_after >= 0 && p->steps >= (uint64_t)p->leave_after)
                break;
            int rc = sf_participant_step(self, p->step_timeout_s, NULL, on_step, p);
            if (rc <= 0) {
                p->end_rc = rc;
                break;
            }
        }
    }
    sf_participant_destroy(&self);
    atomic_store(&p->finished, 1);
    return NULL;
}

static void part_init(part_t *p, void *ctx, const char *pe, const char *se, const char *name)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->finished, 0);
    p->ctx = ctx;
    p->pub_ep = pe;
    p->sub_ep = se;
    p->name = name;
    p->role = SFBUS__ROLE__ROLE_UNITS;
    p->lockstep = 1;
    p->silent_after = -1;
    p->leave_after = -1;
    p->step_timeout_s = 20.0;
    p->hold_fd = -1;
}

static sf_clock_config_t clock_cfg(size_t n_expected, const char *const *expected)
{
    sf_clock_config_t c = {
        .name = "sim",
        .scenario = "test",
        .seed = 42,
        .step_ds = 1,
        .start_k = 0,
        .start_tod_ds = 7 * 36000,
        .n_expected = n_expected,
        .expected = expected,
        .register_timeout_s = 20.0,
        .step_timeout_s = 20.0,
    };
    return c;
}

/* The clock's view of the lamps: which step each LampStates was for. */
typedef struct {
    uint64_t lamps_for_current; /* LampStates(k) received during step k */
    uint64_t lamps_other;       /* LampStates for any other step */
    uint64_t current_k;
    uint64_t other_msgs;
} clock_rx_t;

static int clock_on_msg(void *arg, const sf_bus_rx_t *rx)
{
    clock_rx_t *c = arg;
    if (rx->type == SF_BUS_LAMPS) {
        if (((const Sfbus__LampStates *)(void *)rx->msg)->k == c->current_k)
            c->lamps_for_current++;
        else
            c->lamps_other++;
    } else {
        c->other_msgs++;
    }
    return 0;
}

static int steps_n(void)
{
    return 1000; /* the same under sanitizers: one step is a few hundred microseconds */
}

/* The test's context, terminated with a bound: libzmq 4.3.4 now and then never finishes
 * zmq_ctx_term with every socket closed (proto/bus.h, sf_bus_ctx_term; seen here in 3 of
 * 80 runs of silent_participant_is_named_within_the_timeout under load). What a test
 * checks is done by then; a lost libzmq acknowledgement must not hang the suite. */
static void term_ctx(void *ctx)
{
    if (sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS) != 0)
        cr_log_warn("zmq_ctx_term unfinished after %d ms (%s): context left to the process end",
                    SF_BUS_CTX_TERM_MS, strerror(errno));
}

CHILD_SUITE(lockstep);

Test(lockstep, thousand_steps_three_participants_each_done_counted_once)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fw);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units", "controller", "bridge"};
    const char *lamps_topic[] = {"lamps"};
    sf_clock_config_t cfg = clock_cfg(3, names);
    cfg.topics = lamps_topic;
    cfg.n_topics = 1;
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    cr_assert_not_null(clk);

    part_t parts[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        part_init(&parts[i], ctx, pe, se, names[i]);
        parts[i].role = i == 0   ? SFBUS__ROLE__ROLE_UNITS
                        : i == 1 ? SFBUS__ROLE__ROLE_CONTROLLER
                                 : SFBUS__ROLE__ROLE_BRIDGE;
    }
    parts[0].publish_lamps = 1;
    parts[2].extra_done = 1;
    /* The controller reaches the same forwarder in-process, the others over TCP. */
    parts[1].pub_ep = sf_bus_forwarder_inproc_pub_endpoint(fw);
    parts[1].sub_ep = sf_bus_forwarder_inproc_sub_endpoint(fw);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, participant_main, &parts[i]), 0);

    clock_rx_t rx = {0};
    cr_assert_eq(sf_clock_register(clk, clock_on_msg, &rx), 0, "%s", sf_clock_error(clk));
    int n = steps_n();
    for (int k = 0; k < n; k++) {
        rx.current_k = (uint64_t)k;
        uint64_t before = rx.lamps_for_current;
        cr_assert_eq(sf_clock_step(clk, clock_on_msg, &rx), 0, "step %d: %s", k,
                     sf_clock_error(clk));
        /* The units' lamps for step k arrived before the step ended (same PUB as done). */
        cr_assert_eq(rx.lamps_for_current, before + 1, "step %d: lamps not in the step", k);
        cr_assert_eq(sf_clock_k(clk), (uint64_t)k + 1);
    }
    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);

    sf_clock_stats_t st = sf_clock_stats(clk);
    cr_assert_eq(st.steps, (uint64_t)n);
    cr_assert_eq(st.dones, 3u * (uint64_t)n, "dones %lu", (unsigned long)st.dones);
    /* The bridge's second done of each step is counted apart (duplicates), never as a done;
     * the last one may still be in flight when the run ends. */
    cr_assert(st.duplicates + st.stale == (uint64_t)n ||
                  st.duplicates + st.stale == (uint64_t)n - 1,
              "duplicates %lu stale %lu", (unsigned long)st.duplicates, (unsigned long)st.stale);
    cr_assert_eq(st.stale, 0);
    cr_assert_eq(st.bad, 0);
    cr_assert_eq(rx.lamps_other, 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(parts[i].reg_rc, 0, "%s: %s", names[i], parts[i].reg_err);
        cr_assert_eq(sf_clock_done_count(clk, names[i]), n);
        cr_assert_eq(parts[i].steps, (uint64_t)n, "%s handled %lu", names[i],
                     (unsigned long)parts[i].steps);
        cr_assert_eq(parts[i].first_k, 0);
        cr_assert_eq(parts[i].out_of_order, 0);
        cr_assert_eq(parts[i].end_rc, 0, "%s did not end on bye", names[i]);
    }
    cr_assert_eq(sf_clock_done_count(clk, "nobody"), -1);
    sf_clock_jitter_t j = sf_clock_jitter(clk);
    cr_assert_eq(j.n, 0, "no jitter in lockstep mode");
    sf_clock_destroy(&clk);
    cr_assert_null(clk);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, late_joiners_register_and_late_lockstep_is_refused)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    /* The clock waits for a count (2), no names. */
    sf_clock_config_t cfg = clock_cfg(2, NULL);
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    cr_assert_not_null(clk);

    /* First participant: registers while the clock is not yet listening. */
    part_t a, b, late, viewer;
    pthread_t ta, tb, tl, tv;
    part_init(&a, ctx, pe, se, "units");
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    /* Nobody may start before both are in: a poll serves hellos but registers nothing. */
    cr_assert_eq(sf_clock_poll(clk, 300, NULL, NULL), 0);
    part_init(&b, ctx, pe, se, "controller");
    cr_assert_eq(pthread_create(&tb, NULL, participant_main, &b), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));

    for (int k = 0; k < 20; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));

    /* A lockstep participant arriving after the start is refused with the reason... */
    part_init(&late, ctx, pe, se, "bridge");
    cr_assert_eq(pthread_create(&tl, NULL, participant_main, &late), 0);
    /* ...and a viewer (not lockstep) is welcomed mid-run and then sees steps. */
    part_init(&viewer, ctx, pe, se, "view");
    viewer.role = SFBUS__ROLE__ROLE_VIEW;
    viewer.lockstep = 0;
    cr_assert_eq(pthread_create(&tv, NULL, participant_main, &viewer), 0);
    /* The clock serves the bus (as while paused) until the late one has its answer. */
    while (!atomic_load(&late.finished))
        cr_assert_eq(sf_clock_poll(clk, 20, NULL, NULL), 0);
    pthread_join(tl, NULL);
    cr_assert_eq(late.reg_rc, -1);
    cr_assert_eq(late.reg_errno, SF_BUS_EREFUSED);
    cr_assert(strstr(late.reg_err, "the run has started") != NULL, "%s", late.reg_err);
    /* Steps go on until the viewer has seen some (it is never waited for). */
    int guard = 0;
    while (viewer.steps < 5 && guard++ < 20000)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    cr_assert_geq(viewer.steps, 5);
    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tv, NULL);
    cr_assert_eq(a.reg_rc, 0, "%s", a.reg_err);
    cr_assert_eq(b.reg_rc, 0, "%s", b.reg_err);
    cr_assert_eq(viewer.reg_rc, 0, "%s", viewer.reg_err);
    cr_assert_eq(viewer.end_rc, 0);
    cr_assert_eq(a.steps, sf_clock_k(clk));
    cr_assert_eq(b.steps, sf_clock_k(clk));
    cr_assert_eq(sf_clock_done_count(clk, "view"), -1, "a viewer sends no done");
    cr_assert_geq(sf_clock_stats(clk).refused, 1);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, registration_timeout_names_who_is_missing)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    cfg.register_timeout_s = 1.0;
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_t a, intruder;
    pthread_t ta, ti;
    part_init(&a, ctx, pe, se, "units");
    part_init(&intruder, ctx, pe, se, "hil7");
    a.step_timeout_s = 1.0;
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    cr_assert_eq(pthread_create(&ti, NULL, participant_main, &intruder), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), -1);
    cr_assert_eq(errno, SF_BUS_ETIMEOUT);
    cr_assert_str_eq(sf_clock_error(clk),
                     "lockstep: registration timed out after 1.0 s: missing 'controller'");
    pthread_join(ti, NULL);
    cr_assert_eq(intruder.reg_errno, SF_BUS_EREFUSED);
    cr_assert_str_eq(intruder.reg_err,
                     "lockstep: clock refused 'hil7': 'hil7' is not an expected lockstep "
                     "participant");
    sf_clock_destroy(&clk);
    pthread_join(ta, NULL); /* its step wait times out: the clock never started */
    cr_assert_eq(a.end_rc, -1);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, silent_participant_is_named_within_the_timeout)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    cfg.step_timeout_s = 0.5;
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_t a, c;
    pthread_t ta, tc;
    int hold[2];
    cr_assert_eq(pipe(hold), 0);
    part_init(&a, ctx, pe, se, "units");
    part_init(&c, ctx, pe, se, "controller");
    c.silent_after = 7; /* answers steps 0..6, then says nothing */
    c.hold_fd = hold[0];
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    cr_assert_eq(pthread_create(&tc, NULL, participant_main, &c), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    for (int k = 0; k < 7; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(sf_clock_step(clk, NULL, NULL), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(errno, SF_BUS_ETIMEOUT);
    cr_assert_str_eq(sf_clock_error(clk), "lockstep: no done(7) from 'controller' after 0.5 s");
    /* It failed and did not hang: it returned (long before the test's own timeout). */
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_geq(waited, 0.5, "gave up before the timeout: %.3f s", waited);
    cr_assert_eq(sf_clock_done_count(clk, "units"), 8);
    cr_assert_eq(sf_clock_done_count(clk, "controller"), 7);

    cr_assert_eq(sf_clock_bye(clk, "error"), 0);
    cr_assert_eq(write(hold[1], "x", 1), 1);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    close(hold[0]);
    close(hold[1]);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, participant_that_leaves_is_named_at_once)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    cfg.step_timeout_s = 60.0; /* longer than the test may take: the bye must end the wait */
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_t a, c;
    pthread_t ta, tc;
    part_init(&a, ctx, pe, se, "units");
    part_init(&c, ctx, pe, se, "controller");
    c.leave_after = 3; /* handles steps 0..2, then closes (saying bye) */
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    cr_assert_eq(pthread_create(&tc, NULL, participant_main, &c), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    int k = 0, rc;
    while ((rc = sf_clock_step(clk, NULL, NULL)) == 0)
        k++;
    cr_assert_eq(errno, SF_BUS_ECLOSED, "%s", sf_bus_strerror(errno));
    cr_assert_eq(k, 3);
    cr_assert_str_eq(sf_clock_error(clk),
                     "lockstep: 'controller' left during step 3 (participant closed)");
    cr_assert_eq(sf_clock_bye(clk, "error"), 0);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, runs_through_a_forwarder_in_another_process)
{
    char *argv[] = {"sigflow", "bus", "--pub", EPH, "--sub", EPH, NULL};
    child_pipe_t bus;
    cr_assert_eq(child_popen(&bus, argv), 0);
    char line[512], pe[256], se[256];
    cr_assert_not_null(fgets(line, sizeof line, bus.out), "no ready line from sigflow bus");
    cr_assert_eq(sscanf(line, "ready pub=%255s sub=%255s", pe, se), 2, "%s", line);

    void *ctx = zmq_ctx_new();
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_t a, c;
    pthread_t ta, tc;
    part_init(&a, ctx, pe, se, "units");
    part_init(&c, ctx, pe, se, "controller");
    a.publish_lamps = 1;
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    cr_assert_eq(pthread_create(&tc, NULL, participant_main, &c), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    for (int k = 0; k < 200; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    cr_assert_eq(a.steps, 200);
    cr_assert_eq(c.steps, 200);
    cr_assert_eq(sf_clock_stats(clk).dones, 400);
    sf_clock_destroy(&clk);
    term_ctx(ctx);

    cr_assert_eq(child_pclose(&bus, SIGTERM), 0);
}

static int count_snap(void *arg, const sf_bus_rx_t *rx)
{
    if (rx->type == SF_BUS_SNAP)
        (*(int *)arg)++;
    return 0;
}

/* Big snapshots each step, a subscriber that never reads them: the clock still completes
 * every step (counted), and the subscriber is left with a bounded queue. */
Test(lockstep, slow_snapshot_subscriber_does_not_slow_the_clock)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 20);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units"};
    sf_clock_config_t cfg = clock_cfg(1, names);
    cfg.step_timeout_s = 10.0;
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    /* The slow viewer: registers like a viewer would, then stops reading. */
    sf_participant_config_t vc = {.name = "view",
                                  .role = SFBUS__ROLE__ROLE_VIEW,
                                  .lockstep = 0,
                                  .topics = (const char *const[]){"snap"},
                                  .n_topics = 1,
                                  .rcvhwm = 2};
    sf_participant_t *view = sf_participant_new(ctx, pe, se, &vc);
    cr_assert_not_null(view);
    part_t a;
    pthread_t ta;
    part_init(&a, ctx, pe, se, "units");
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    /* The viewer registers in this thread, so the clock must serve it meanwhile: poll the
     * clock between the viewer's retries (both are non-blocking for a moment). */
    int vreg = -1;
    for (int i = 0; i < 200 && vreg != 0; i++) {
        cr_assert_eq(sf_clock_poll(clk, 10, NULL, NULL), 0);
        vreg = sf_participant_register(view, 0.05, NULL, NULL);
    }
    cr_assert_eq(vreg, 0, "%s", sf_participant_error(view));
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));

    /* 230 kB snapshots (16384 vehicles), 57 to 69 MB in all: more than TCP buffers can
     * hold for the viewer (autotuning reaches tens of MB), so some must be dropped. */
    enum { NV = 16384 };
    static uint32_t ids[NV], links[NV], lanes[NV], types[NV];
    static float pos[NV], spd[NV];
    static int32_t line[NV];
    for (int i = 0; i < NV; i++) {
        ids[i] = (uint32_t)i;
        line[i] = -1;
    }
    Sfbus__VehicleSnapshot s = SFBUS__VEHICLE_SNAPSHOT__INIT;
    s.n_id = s.n_link = s.n_lane = s.n_pos_m = s.n_speed_mps = s.n_type = s.n_line = NV;
    s.id = ids;
    s.link = links;
    s.lane = lanes;
    s.pos_m = pos;
    s.speed_mps = spd;
    s.type = types;
    s.line = line;
    int n = getenv("SIGFLOW_SANITIZED") ? 250 : 300;
    int completed = 0;
    for (int k = 0; k < n; k++) {
        s.k = (uint64_t)k;
        cr_assert_eq(sf_clock_publish(clk, &s.base), 0);
        if (sf_clock_step(clk, NULL, NULL) != 0)
            break;
        completed++;
    }
    cr_assert_eq(completed, n, "clock stopped at %d: %s", completed, sf_clock_error(clk));
    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    pthread_join(ta, NULL);
    cr_assert_eq(a.steps, (uint64_t)n);

    /* Now the viewer reads what it holds: far fewer snapshots than were published. */
    int snaps = 0;
    while (sf_participant_step(view, 0.3, count_snap, NULL, &snaps) == 1)
        ;
    cr_assert_gt(snaps, 0);
    cr_assert_lt(snaps, n, "the slow viewer received every snapshot: nothing was dropped");
    sf_participant_destroy(&view);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, real_time_paces_steps_and_measures_jitter)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units"};
    sf_clock_config_t cfg = clock_cfg(1, names);
    cfg.realtime = 1;
    cfg.speed_factor = 20.0; /* 0.1 s steps at 20x: one step every 5 ms */
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    cr_assert_not_null(clk);
    part_t a;
    pthread_t ta;
    part_init(&a, ctx, pe, se, "units");
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 40; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Deadlines are absolute from registration: step 39 is never published before
     * 39 x 5 ms (a step may be late, never early). */
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_geq(elapsed, 39 * 0.005 - 0.001, "steps ran ahead of the wall clock: %.3f s",
                  elapsed);
    sf_clock_jitter_t j = sf_clock_jitter(clk);
    cr_assert_eq(j.n, 40);
    cr_assert_geq(j.mean_us, 0.0, "a step was published before its deadline");
    cr_assert_geq(j.p95_us, 0.0);
    cr_assert_geq(j.max_us, j.p95_us);
    cr_assert_geq(j.max_us, j.mean_us);

    /* A new speed restarts the deadlines from now: no burst of "late" steps. */
    cr_assert_eq(sf_clock_set_speed(clk, 50.0), 0);
    for (int k = 0; k < 10; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    cr_assert_eq(sf_clock_jitter(clk).n, 50);
    cr_assert_eq(sf_clock_set_speed(clk, 0.0), -1);
    cr_assert_eq(errno, EINVAL);

    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    pthread_join(ta, NULL);
    cr_assert_eq(a.steps, 50);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

Test(lockstep, bad_configurations_are_refused)
{
    void *ctx = zmq_ctx_new();
    sf_clock_config_t cfg = clock_cfg(1, NULL);
    cfg.step_ds = 0;
    cr_assert_null(sf_clock_new(ctx, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", &cfg));
    cr_assert_eq(errno, EINVAL);
    cfg = clock_cfg(1, NULL);
    cfg.step_timeout_s = 0;
    cr_assert_null(sf_clock_new(ctx, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", &cfg));
    cfg = clock_cfg(1, NULL);
    cfg.realtime = 1;
    cfg.speed_factor = -1;
    cr_assert_null(sf_clock_new(ctx, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", &cfg));
    sf_participant_config_t pc = {.name = "bad name", .role = SFBUS__ROLE__ROLE_UNITS};
    cr_assert_null(sf_participant_new(ctx, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", &pc));
    cr_assert_eq(errno, EINVAL);
    pc.name = "ok";
    pc.role = (Sfbus__Role)99;
    cr_assert_null(sf_participant_new(ctx, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", &pc));
    cr_assert_eq(sf_clock_step(NULL, NULL, NULL), -1);
    cr_assert_eq(sf_participant_step(NULL, 1.0, NULL, NULL, NULL), -1);
    term_ctx(ctx);
}

Test(lockstep, name_clash_is_refused_without_disturbing_the_first)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    part_t a, twin, c;
    pthread_t ta, tt, tc;
    part_init(&a, ctx, pe, se, "units");
    part_init(&twin, ctx, pe, se, "units"); /* same name, another object */
    part_init(&c, ctx, pe, se, "controller");
    cr_assert_eq(pthread_create(&ta, NULL, participant_main, &a), 0);
    /* Registration of "units" first, then its twin, then the controller. */
    for (int i = 0; sf_clock_done_count(clk, "units") < 0; i++) {
        cr_assert_lt(i, 1000, "'units' never registered");
        cr_assert_eq(sf_clock_poll(clk, 20, NULL, NULL), 0);
    }
    cr_assert_eq(pthread_create(&tt, NULL, participant_main, &twin), 0);
    while (!atomic_load(&twin.finished))
        cr_assert_eq(sf_clock_poll(clk, 20, NULL, NULL), 0);
    pthread_join(tt, NULL);
    cr_assert_eq(twin.reg_errno, SF_BUS_EREFUSED);
    cr_assert(strstr(twin.reg_err, "name 'units' is already registered (pid ") != NULL, "%s",
              twin.reg_err);
    cr_assert_eq(pthread_create(&tc, NULL, participant_main, &c), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    for (int k = 0; k < 10; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    cr_assert_eq(sf_clock_bye(clk, "end of run"), 0);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    /* The first "units" saw the refusal addressed to its name and ignored it. */
    cr_assert_eq(a.reg_rc, 0, "%s", a.reg_err);
    cr_assert_eq(a.steps, 10);
    cr_assert_eq(a.end_rc, 0);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    term_ctx(ctx);
}

/* ---- stages and served descriptors (added for `sigflow run`) ------------------------- */

/* A staged participant in a thread. Stage 0 ("units") serves a pipe while it waits,
 * echoing every byte (a stand-in for a Modbus request); stage 1 ("controller") writes a
 * request in each of its steps and blocks until the echo comes back: without the served
 * descriptor the run would stall, since "units" only waits for its next Step then. */
typedef struct {
    void *ctx;
    const char *pub_ep, *sub_ep;
    const char *name;
    uint8_t stage;
    atomic_ulong *seq;  /* shared order counter */
    uint64_t order[64]; /* seq value at step k (k < 64) */
    uint64_t steps;
    int req_w, echo_r;  /* stage 1: request pipe write end, echo pipe read end */
    int req_r, echo_w;  /* stage 0: request read end (served), echo write end */
    uint64_t served;    /* stage 0: requests echoed */
    uint64_t echoes;    /* stage 1: echoes received */
    uint64_t bad_stage; /* steps whose stage was not ours */
    int rc;
    char err[SF_LOCKSTEP_ERR_MAX];
} staged_t;

static int staged_step(void *arg, const Sfbus__Step *st, void *pub)
{
    (void)pub;
    staged_t *s = arg;
    if (st->stage != s->stage)
        s->bad_stage++;
    if (st->k < 64)
        s->order[st->k] = atomic_fetch_add(s->seq, 1);
    s->steps++;
    if (s->stage == 1) {
        char b = 'r';
        if (write(s->req_w, &b, 1) != 1)
            return -1;
        struct pollfd p = {s->echo_r, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1 || read(s->echo_r, &b, 1) != 1)
            return -1; /* nobody served the request */
        s->echoes++;
    }
    return 0;
}

static size_t staged_fill(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms)
{
    staged_t *s = arg;
    if (cap >= 1)
        items[0] = (zmq_pollitem_t){NULL, s->req_r, ZMQ_POLLIN, 0};
    *max_wait_ms = -1;
    return 1;
}

static int staged_serve(void *arg, const zmq_pollitem_t *items, size_t n)
{
    staged_t *s = arg;
    if (n != 1 || !(items[0].revents & ZMQ_POLLIN))
        return 0;
    char b;
    while (read(s->req_r, &b, 1) == 1) {
        if (write(s->echo_w, &b, 1) != 1)
            return -1;
        s->served++;
    }
    return 0;
}

static void *staged_main(void *arg)
{
    staged_t *s = arg;
    sf_participant_config_t cfg = {.name = s->name,
                                   .role = s->stage ? SFBUS__ROLE__ROLE_CONTROLLER
                                                    : SFBUS__ROLE__ROLE_UNITS,
                                   .lockstep = 1,
                                   .stage = s->stage};
    sf_participant_t *p = sf_participant_new(s->ctx, s->pub_ep, s->sub_ep, &cfg);
    if (!p) {
        s->rc = -1;
        return NULL;
    }
    if (s->stage == 0) {
        sf_participant_io_t io = {.fill = staged_fill, .serve = staged_serve, .arg = s};
        sf_participant_set_io(p, &io);
    }
    s->rc = sf_participant_register(p, 20, NULL, NULL);
    while (s->rc == 0) {
        int rc = sf_participant_step(p, 20, NULL, staged_step, s);
        if (rc == 1)
            continue;
        s->rc = rc;
        if (rc < 0)
            snprintf(s->err, sizeof s->err, "%s", sf_participant_error(p));
        break;
    }
    sf_participant_destroy(&p);
    return NULL;
}

Test(lockstep, stages_run_in_order_and_served_fds_answer_between_steps)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fwd = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fwd);
    const char *pe = sf_bus_forwarder_pub_endpoint(fwd), *se = sf_bus_forwarder_sub_endpoint(fwd);
    int req[2], echo[2];
    cr_assert_eq(pipe(req), 0);
    cr_assert_eq(pipe(echo), 0);
    cr_assert_eq(fcntl(req[0], F_SETFL, O_NONBLOCK), 0);
    atomic_ulong seq;
    atomic_init(&seq, 0);
    /* stage 1 registers first: the order of registration must not matter */
    staged_t *s0 = calloc(1, sizeof *s0), *s1 = calloc(1, sizeof *s1);
    *s1 = (staged_t){.ctx = ctx,
                     .pub_ep = pe,
                     .sub_ep = se,
                     .name = "controller",
                     .stage = 1,
                     .seq = &seq,
                     .req_w = req[1],
                     .echo_r = echo[0]};
    *s0 = (staged_t){.ctx = ctx,
                     .pub_ep = pe,
                     .sub_ep = se,
                     .name = "units",
                     .stage = 0,
                     .seq = &seq,
                     .req_r = req[0],
                     .echo_w = echo[1]};
    pthread_t t0, t1;
    cr_assert_eq(pthread_create(&t1, NULL, staged_main, s1), 0);
    cr_assert_eq(pthread_create(&t0, NULL, staged_main, s0), 0);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    cr_assert_not_null(clk);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    const uint64_t n = 300;
    for (uint64_t k = 0; k < n; k++)
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "step %llu: %s", (unsigned long long)k,
                     sf_clock_error(clk));
    sf_clock_stats_t st = sf_clock_stats(clk);
    cr_assert_eq(st.dones, 2 * n, "one Done per participant and step, stages included");
    cr_assert_eq(st.stale + st.duplicates + st.unknown, 0);
    sf_clock_bye(clk, "end");
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    cr_assert_eq(s0->rc, 0, "%s", s0->err);
    cr_assert_eq(s1->rc, 0, "%s", s1->err);
    cr_assert_eq(s0->steps, n);
    cr_assert_eq(s1->steps, n);
    cr_assert_eq(s0->bad_stage + s1->bad_stage, 0, "each handles only its own stage's Step");
    cr_assert_eq(s1->echoes, n, "every request answered from the waiting participant's loop");
    cr_assert_eq(s0->served, n);
    /* stage 0 of step k, then stage 1 of step k, then stage 0 of step k + 1 */
    for (uint64_t k = 0; k < 64 && k < n; k++) {
        cr_assert_lt(s0->order[k], s1->order[k], "k=%llu", (unsigned long long)k);
        if (k + 1 < 64)
            cr_assert_lt(s1->order[k], s0->order[k + 1], "k=%llu", (unsigned long long)k);
    }
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fwd);
    term_ctx(ctx);
    close(req[0]);
    close(req[1]);
    close(echo[0]);
    close(echo[1]);
    free(s0);
    free(s1);
}

Test(lockstep, a_stage_out_of_range_is_refused)
{
    void *ctx = zmq_ctx_new();
    sf_participant_config_t cfg = {
        .name = "x", .role = SFBUS__ROLE__ROLE_UNITS, .lockstep = 1, .stage = SF_LOCKSTEP_STAGES};
    errno = 0;
    cr_assert_null(sf_participant_new(ctx, "inproc://a", "inproc://b", &cfg));
    cr_assert_eq(errno, EINVAL);
    cfg.stage = 0;
    sf_participant_t *p = sf_participant_new(ctx, "inproc://a", "inproc://b", &cfg);
    cr_assert_not_null(p);
    sf_participant_io_t half = {.fill = staged_fill, .serve = NULL, .arg = NULL};
    cr_assert_eq(sf_participant_set_io(p, &half), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_participant_set_io(p, NULL), 0);
    sf_participant_destroy(&p);
    term_ctx(ctx);
}

Test(lockstep, a_skipped_stage_is_not_published_and_its_participant_accepts_the_gap)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fwd = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fwd);
    const char *pe = sf_bus_forwarder_pub_endpoint(fwd), *se = sf_bus_forwarder_sub_endpoint(fwd);
    int req[2], echo[2];
    cr_assert_eq(pipe(req), 0);
    cr_assert_eq(pipe(echo), 0);
    cr_assert_eq(fcntl(req[0], F_SETFL, O_NONBLOCK), 0);
    atomic_ulong seq;
    atomic_init(&seq, 0);
    staged_t *s0 = calloc(1, sizeof *s0), *s1 = calloc(1, sizeof *s1);
    *s1 = (staged_t){.ctx = ctx,
                     .pub_ep = pe,
                     .sub_ep = se,
                     .name = "controller",
                     .stage = 1,
                     .seq = &seq,
                     .req_w = req[1],
                     .echo_r = echo[0]};
    *s0 = (staged_t){.ctx = ctx,
                     .pub_ep = pe,
                     .sub_ep = se,
                     .name = "units",
                     .stage = 0,
                     .seq = &seq,
                     .req_r = req[0],
                     .echo_w = echo[1]};
    pthread_t t0, t1;
    cr_assert_eq(pthread_create(&t1, NULL, staged_main, s1), 0);
    cr_assert_eq(pthread_create(&t0, NULL, staged_main, s0), 0);
    const char *names[] = {"units", "controller"};
    sf_clock_config_t cfg = clock_cfg(2, names);
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cfg);
    cr_assert_not_null(clk);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));
    cr_assert_eq(sf_clock_skip_stages(clk, 1u), -1, "stage 0 is never skipped");
    cr_assert_eq(sf_clock_skip_stages(clk, 1u << 4), -1);
    const uint64_t n = 200;
    for (uint64_t k = 0; k < n; k++) {
        if (k % 10 != 0)
            cr_assert_eq(sf_clock_skip_stages(clk, 1u << 1), 0);
        cr_assert_eq(sf_clock_step(clk, NULL, NULL), 0, "step %llu: %s", (unsigned long long)k,
                     sf_clock_error(clk));
    }
    sf_clock_stats_t st = sf_clock_stats(clk);
    cr_assert_eq(st.dones, n + n / 10);
    cr_assert_eq(sf_clock_done_count(clk, "controller"), (int64_t)(n / 10));
    sf_clock_bye(clk, "end");
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    cr_assert_eq(s0->rc, 0, "%s", s0->err);
    cr_assert_eq(s1->rc, 0, "the gaps are accepted: %s", s1->err);
    cr_assert_eq(s0->steps, n);
    cr_assert_eq(s1->steps, n / 10, "stage 1 ran only where not skipped");
    cr_assert_eq(s1->echoes, n / 10);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fwd);
    term_ctx(ctx);
    close(req[0]);
    close(req[1]);
    close(echo[0]);
    close(echo[1]);
    free(s0);
    free(s1);
}
