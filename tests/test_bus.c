/* tests/test_bus.c — the forwarder and pub/sub helpers over real TCP, and `sigflow bus`
 * as a child process. */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"

#define EPH "tcp://127.0.0.1:*"

/* Receive one message within timeout_ms (poll, never sleep). Returns 0 or -1. */
static int recv_within(void *sub, sf_bus_rx_t *rx, int timeout_ms)
{
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    return sf_bus_recv(sub, rx, ZMQ_DONTWAIT, NULL, 0);
}

/* Publish probe Steps until the subscriber sees one: the subscription has then travelled
 * through the forwarder (the readiness handshake of a PUB/SUB path). Returns the number
 * of probes sent, or -1. */
static int handshake(void *pub, void *sub)
{
    Sfbus__Step st = SFBUS__STEP__INIT;
    st.step_ds = 1;
    for (int i = 0; i < 100; i++) {
        st.k = (uint64_t)i;
        if (sf_bus_send(pub, &st.base) != 0)
            return -1;
        sf_bus_rx_t rx;
        if (recv_within(sub, &rx, 50) == 0) {
            sf_bus_rx_clear(&rx);
            /* drain the other probes already in flight */
            while (recv_within(sub, &rx, 20) == 0)
                sf_bus_rx_clear(&rx);
            return i + 1;
        }
    }
    return -1;
}

/* Next message that is not a handshake probe (probes are Steps; both subscribers see the
 * probes of both handshakes). */
static int recv_data(void *sub, sf_bus_rx_t *rx)
{
    for (;;) {
        if (recv_within(sub, rx, 5000) != 0)
            return -1;
        if (rx->type != SF_BUS_STEP)
            return 0;
        sf_bus_rx_clear(rx);
    }
}

CHILD_SUITE(bus);

Test(bus, forwarder_carries_messages_by_topic_over_tcp)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fw, "%s", sf_bus_strerror(errno));
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    cr_assert(strncmp(pe, "tcp://127.0.0.1:", 16) == 0 && !strchr(pe, '*'), "%s", pe);
    cr_assert(strncmp(se, "tcp://127.0.0.1:", 16) == 0 && !strchr(se, '*'), "%s", se);
    cr_assert_str_neq(pe, se);

    void *pub = sf_bus_pub_new(ctx, pe);
    const char *lamps_only[] = {"lamps", "step"};
    void *sub = sf_bus_sub_new(ctx, se, lamps_only, 2, 0);
    const char *all[] = {""};
    void *sub_all = sf_bus_sub_new(ctx, se, all, 1, 0);
    cr_assert(pub && sub && sub_all);
    cr_assert_gt(handshake(pub, sub), 0);
    cr_assert_gt(handshake(pub, sub_all), 0);

    /* 50 detector messages and 50 lamp messages interleaved: sub gets only the lamps, in
     * order; sub_all gets all 100 in order. */
    uint8_t codes[2] = {0x20, 0x10};
    uint32_t rem[2] = {50, 80};
    for (uint32_t i = 0; i < 50; i++) {
        Sfbus__DetectorInputs d = SFBUS__DETECTOR_INPUTS__INIT;
        d.k = i;
        d.ix_id = "I1";
        d.presence = 1u << (i % 8);
        cr_assert_eq(sf_bus_send(pub, &d.base), 0);
        Sfbus__LampStates l = SFBUS__LAMP_STATES__INIT;
        l.k = i;
        l.lamps.data = codes;
        l.lamps.len = 2;
        l.remaining_ds = rem;
        l.n_remaining_ds = 2;
        cr_assert_eq(sf_bus_send(pub, &l.base), 0);
    }
    for (uint32_t i = 0; i < 50; i++) {
        sf_bus_rx_t rx;
        cr_assert_eq(recv_data(sub, &rx), 0, "lamps %u: %s", i, sf_bus_strerror(errno));
        cr_assert_eq(rx.type, SF_BUS_LAMPS);
        cr_assert_str_eq(rx.topic, "lamps");
        const Sfbus__LampStates *l = (const Sfbus__LampStates *)(void *)rx.msg;
        cr_assert_eq(l->k, i);
        cr_assert_eq(l->lamps.data[1], 0x10);
        sf_bus_rx_clear(&rx);
    }
    for (uint32_t i = 0; i < 100; i++) {
        sf_bus_rx_t rx;
        cr_assert_eq(recv_data(sub_all, &rx), 0);
        cr_assert_eq(rx.type, i % 2 ? SF_BUS_LAMPS : SF_BUS_DET);
        sf_bus_rx_clear(&rx);
    }
    /* Nothing else for sub: a detector message would come before this marker. */
    Sfbus__Bye marker = SFBUS__BYE__INIT;
    marker.name = "marker";
    cr_assert_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "bye", 3), 0);
    sf_bus_rx_t rx;
    do {
        cr_assert_eq(sf_bus_send(pub, &marker.base), 0);
    } while (recv_within(sub, &rx, 50) != 0);
    cr_assert_eq(rx.type, SF_BUS_BYE, "unexpected %s", rx.topic);
    sf_bus_rx_clear(&rx);

    sf_bus_stats_t st;
    cr_assert_eq(sf_bus_forwarder_stats(fw, &st), 0);
    /* 100 messages plus the probes and markers, each counted once */
    cr_assert_geq(st.in_msgs, 100, "in %lu", (unsigned long)st.in_msgs);
    cr_assert_geq(st.out_msgs, 100);
    cr_assert_gt(st.in_bytes, 0);

    sf_bus_close(&pub);
    sf_bus_close(&sub);
    sf_bus_close(&sub_all);
    cr_assert_null(pub);
    sf_bus_forwarder_destroy(&fw);
    cr_assert_null(fw);
    sf_bus_forwarder_destroy(&fw); /* safe twice */
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
}

Test(bus, bad_frames_are_dropped_with_a_reason)
{
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fw);
    void *pub = sf_bus_pub_new(ctx, sf_bus_forwarder_pub_endpoint(fw));
    const char *all[] = {""};
    void *sub = sf_bus_sub_new(ctx, sf_bus_forwarder_sub_endpoint(fw), all, 1, 0);
    cr_assert_gt(handshake(pub, sub), 0);

    /* unknown topic; one frame only; three frames; garbage body; welcome for another name */
    zmq_send(pub, "nonsense", 8, ZMQ_SNDMORE);
    zmq_send(pub, "x", 1, 0);
    zmq_send(pub, "step", 4, 0);
    zmq_send(pub, "step", 4, ZMQ_SNDMORE);
    zmq_send(pub, "a", 1, ZMQ_SNDMORE);
    zmq_send(pub, "b", 1, 0);
    zmq_send(pub, "lamps", 5, ZMQ_SNDMORE);
    zmq_send(pub, "\xff\xff\xff", 3, 0);
    Sfbus__Welcome w = SFBUS__WELCOME__INIT;
    w.name = "units";
    w.step_ds = 1;
    uint8_t buf[256];
    long n = sf_bus_encode(&w.base, buf, sizeof buf);
    zmq_send(pub, "welcome.controller", 18, ZMQ_SNDMORE);
    zmq_send(pub, buf, (size_t)n, 0);
    /* then a good one, which must still arrive */
    Sfbus__Done d = SFBUS__DONE__INIT;
    d.name = "units";
    d.k = 7;
    cr_assert_eq(sf_bus_send(pub, &d.base), 0);

    int expect[] = {SF_BUS_ETOPIC, SF_BUS_EFRAMES, SF_BUS_EFRAMES, SF_BUS_EMALFORMED,
                    SF_BUS_ETOPIC};
    char why[128];
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        cr_assert_eq(zmq_poll(&item, 1, 5000), 1);
        sf_bus_rx_t rx;
        cr_assert_eq(sf_bus_recv(sub, &rx, ZMQ_DONTWAIT, why, sizeof why), -1, "bad %zu", i);
        cr_assert_eq(errno, expect[i], "bad %zu: %s", i, sf_bus_strerror(errno));
        cr_assert_null(rx.msg);
    }
    sf_bus_rx_t rx;
    cr_assert_eq(recv_within(sub, &rx, 5000), 0);
    cr_assert_eq(rx.type, SF_BUS_DONE);
    cr_assert_eq(((Sfbus__Done *)(void *)rx.msg)->k, 7);
    sf_bus_rx_clear(&rx);
    sf_bus_close(&pub);
    sf_bus_close(&sub);
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
}

Test(bus, slow_subscriber_never_blocks_the_publisher)
{
    void *ctx = zmq_ctx_new();
    /* A small per-subscriber queue so that the test needs few messages. */
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 10);
    cr_assert_not_null(fw);
    void *pub = sf_bus_pub_new(ctx, sf_bus_forwarder_pub_endpoint(fw));
    const char *snap[] = {"snap", "step"};
    /* The slow one is a plain SUB with a small kernel buffer too, so that what the kernel
     * may hold for it (TCP autotuning reaches megabytes) stays well below what is sent. */
    void *slow = zmq_socket(ctx, ZMQ_SUB);
    int small = 65536, hwm = 2;
    cr_assert_eq(zmq_setsockopt(slow, ZMQ_RCVBUF, &small, sizeof small), 0);
    cr_assert_eq(zmq_setsockopt(slow, ZMQ_RCVHWM, &hwm, sizeof hwm), 0);
    cr_assert_eq(zmq_setsockopt(slow, ZMQ_SUBSCRIBE, "snap", 4), 0);
    cr_assert_eq(zmq_setsockopt(slow, ZMQ_SUBSCRIBE, "step", 4), 0);
    cr_assert_eq(zmq_connect(slow, sf_bus_forwarder_sub_endpoint(fw)), 0);
    void *fast = sf_bus_sub_new(ctx, sf_bus_forwarder_sub_endpoint(fw), snap, 2, 0);
    cr_assert_gt(handshake(pub, slow), 0);
    cr_assert_gt(handshake(pub, fast), 0);

    /* 115 kB snapshots (8192 vehicles), 17 to 34 MB in all: the slow subscriber reads
     * nothing while they are sent. */
    enum { NV = 8192 };
    int n_msgs = getenv("SIGFLOW_SANITIZED") ? 150 : 300;
    static uint32_t ids[NV], links[NV], lanes[NV], types[NV];
    static float pos[NV], spd[NV];
    static int32_t line[NV];
    for (int i = 0; i < NV; i++) {
        ids[i] = (uint32_t)i;
        pos[i] = (float)i;
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
    /* Each message is sent once the fast subscriber has the previous one (the pace of a
     * lockstep run), so the fast one must get every message while the slow one reads
     * nothing. */
    int fast_got = 0;
    for (int i = 0; i < n_msgs; i++) {
        s.k = (uint64_t)i;
        /* Every send returns at once (never EAGAIN, never blocks). */
        cr_assert_eq(sf_bus_send(pub, &s.base), 0, "send %d: %s", i, sf_bus_strerror(errno));
        sf_bus_rx_t rx;
        cr_assert_eq(recv_within(fast, &rx, 5000), 0, "fast subscriber stuck at %d", i);
        cr_assert_eq(((Sfbus__VehicleSnapshot *)(void *)rx.msg)->k, (uint64_t)i);
        fast_got++;
        sf_bus_rx_clear(&rx);
    }
    /* The slow one now reads what it was left: a bounded queue, the rest dropped. */
    int slow_got = 0;
    sf_bus_rx_t rx;
    while (recv_within(slow, &rx, 200) == 0) {
        slow_got++;
        sf_bus_rx_clear(&rx);
    }
    cr_assert_eq(fast_got, n_msgs);
    cr_assert_gt(slow_got, 0);
    cr_assert_lt(slow_got, n_msgs, "slow subscriber got all %d: nothing was dropped", slow_got);
    sf_bus_close(&pub);
    sf_bus_close(&slow);
    sf_bus_close(&fast);
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
}

Test(bus, bad_endpoints_are_refused)
{
    void *ctx = zmq_ctx_new();
    cr_assert_null(sf_bus_forwarder_new(ctx, "nonsense", EPH, 0));
    cr_assert_null(sf_bus_forwarder_new(ctx, NULL, EPH, 0));
    cr_assert_eq(errno, EINVAL);
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fw);
    /* the same port twice: EADDRINUSE, nothing left half-open */
    cr_assert_null(sf_bus_forwarder_new(ctx, sf_bus_forwarder_pub_endpoint(fw), EPH, 0));
    cr_assert_eq(errno, EADDRINUSE);
    cr_assert_null(sf_bus_pub_new(ctx, "tcp://"));
    cr_assert_null(sf_bus_sub_new(ctx, NULL, NULL, 0, 0));
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
}

/* ---- `sigflow bus` as a child process ---------------------------------------------- */

/* `sigflow bus ARGS...` with its stdout readable line by line. */
static child_pipe_t spawn_bus(const char *const *args)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)"sigflow";
    argv[n++] = (char *)"bus";
    for (; args && *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    child_pipe_t c;
    cr_assert_eq(child_popen(&c, argv), 0);
    return c;
}

Test(bus, sigflow_bus_forwards_and_stops_cleanly_on_sigterm)
{
    const char *args[] = {"--pub", EPH, "--sub", EPH, NULL};
    child_pipe_t c = spawn_bus(args);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, c.out), "no ready line");
    char pe[256], se[256];
    cr_assert_eq(sscanf(line, "ready pub=%255s sub=%255s", pe, se), 2, "line: %s", line);
    cr_assert(strncmp(pe, "tcp://127.0.0.1:", 16) == 0 && !strchr(pe, '*'), "%s", pe);

    void *ctx = zmq_ctx_new();
    void *pub = sf_bus_pub_new(ctx, pe);
    const char *topics[] = {"step"};
    void *sub = sf_bus_sub_new(ctx, se, topics, 1, 0);
    cr_assert_gt(handshake(pub, sub), 0, "no message through the child forwarder");
    sf_bus_close(&pub);
    sf_bus_close(&sub);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);

    cr_assert_eq(child_pclose(&c, SIGTERM), 0);
}

Test(bus, sigflow_bus_stops_on_sigint_and_rejects_bad_options)
{
    const char *args[] = {"--pub", EPH, "--sub", EPH, NULL};
    child_pipe_t c = spawn_bus(args);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, c.out));
    cr_assert_eq(strncmp(line, "ready pub=tcp://127.0.0.1:", 26), 0, "%s", line);
    cr_assert_eq(child_pclose(&c, SIGINT), 0);

    const char *bad1[] = {"--frobnicate", "1", NULL};
    c = spawn_bus(bad1);
    cr_assert_eq(child_pclose(&c, 0), 2);
    const char *bad2[] = {"--pub", "nonsense://x", "--sub", EPH, NULL};
    c = spawn_bus(bad2);
    cr_assert_eq(child_pclose(&c, 0), 1);
    const char *bad3[] = {"--hwm", "-5", NULL};
    c = spawn_bus(bad3);
    cr_assert_eq(child_pclose(&c, 0), 2);
}
