/* tests/test_bridge.c — the HIL bridge (controller/bridge.h) end to end: a `sigflow unit`
 * child process is the "real" unit, configured into the scenario by --set alone; the
 * bridge is a lockstep participant (stage 1) on a real ZeroMQ forwarder, driven by a small
 * real-time clock in the test that publishes detector inputs; lamps must flow back as
 * LampStates and the detector presence must arrive at the unit (map v2 det_input, read
 * back over Modbus). */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge.h"
#include "bus.h"
#include "bus_codec.h"
#include "lockstep.h"
#include "regmap.h"
#include "scenario.h"

#define SINGLE SIGFLOW_ASSETS "/scenarios/single.json"
#define EPH    "tcp://127.0.0.1:*"
#define STEPS  40 /* 4 s of real time at 0.1 s steps */

typedef struct {
    void *ctx;
    const char *pe, *se;
    sf_bridge_t *bridge;
    int reg_rc;
    int end_rc;
    char err[SF_LOCKSTEP_ERR_MAX];
} bridge_thread_t;

static void *bridge_main(void *arg)
{
    bridge_thread_t *t = arg;
    const char *topics[] = {sf_bus_topic(SF_BUS_DET)};
    sf_participant_config_t cfg = {.name = "bridge",
                                   .role = SFBUS__ROLE__ROLE_BRIDGE,
                                   .lockstep = 1,
                                   .topics = topics,
                                   .n_topics = 1,
                                   .stage = 1};
    sf_participant_t *p = sf_participant_new(t->ctx, t->pe, t->se, &cfg);
    if (!p) {
        t->reg_rc = -1;
        return NULL;
    }
    t->reg_rc = sf_participant_register(p, 10.0, sf_bridge_on_msg, t->bridge);
    if (t->reg_rc == 0) {
        for (;;) {
            int rc = sf_participant_step(p, 10.0, sf_bridge_on_msg, sf_bridge_step, t->bridge);
            if (rc <= 0) {
                t->end_rc = rc;
                break;
            }
        }
    }
    snprintf(t->err, sizeof t->err, "%s", sf_participant_error(p));
    sf_participant_destroy(&p);
    return NULL;
}

/* What the clock saw of the lamps. */
typedef struct {
    uint64_t k;         /* step running */
    uint64_t lamps;     /* LampStates for ix 0 at the step running */
    uint64_t other;     /* LampStates for another step or intersection */
    uint64_t bad_len;   /* lamps of the wrong length */
    uint64_t bad_code;  /* lamp codes outside the map's codes */
    uint32_t last_mode; /* control_mode of the last one */
} seen_t;

static int clock_msg(void *arg, const sf_bus_rx_t *rx)
{
    seen_t *s = arg;
    if (rx->type != SF_BUS_LAMPS)
        return 0;
    const Sfbus__LampStates *m = (const Sfbus__LampStates *)(const void *)rx->msg;
    if (m->k != s->k || m->ix != 0) {
        s->other++;
        return 0;
    }
    s->lamps++;
    if (m->lamps.len != 4)
        s->bad_len++;
    for (size_t g = 0; g < m->lamps.len; g++) {
        uint8_t c = m->lamps.data[g];
        if (c != 0x01 && c != 0x10 && c != 0x11 && c != 0x20 && c != 0x21 && c != 0x30 && c != 0x31)
            s->bad_code++;
    }
    s->last_mode = m->control_mode;
    return 0;
}

CHILD_SUITE(bridge);

Test(bridge, sigflow_unit_in_the_loop_lamps_flow_and_calls_arrive)
{
    child_t *unit = child_new();
    uint16_t port = child_start_unit(unit, SINGLE, 0, 30);
    cr_assert_neq(port, 0, "no ready line from sigflow unit: %s", unit->err);

    /* Configuration alone: --set on the scenario. */
    char set_host[] = "intersections[0].unit_host=127.0.0.1";
    char set_port[64];
    snprintf(set_port, sizeof set_port, "intersections[0].unit_port=%u", port);
    const char *sets[] = {set_host, set_port};
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(SINGLE, sets, 2, &errs);
    cr_assert_not_null(sc, "%s", errs.n ? errs.msg[0] : "load failed");
    cr_assert_str_eq(sc->intersections[0].unit_host, "127.0.0.1");
    cr_assert_eq(sc->intersections[0].unit_port, port);
    sf_bridge_t *b = sf_bridge_new(sc, NULL);
    cr_assert_not_null(b);
    cr_assert_eq(sf_bridge_count(b), 1);

    /* A detector calling the second phase (number p). */
    const sf_intersection_t *ix = &sc->intersections[0];
    int det = -1;
    for (unsigned d = 0; d < ix->n_det && det < 0; d++)
        if (ix->det[d].phase_mask & 2u)
            det = (int)d;
    cr_assert_geq(det, 0, "no detector for the second phase");
    uint8_t phase_no = ix->phases[1].id;

    /* Before the bridge: no call held on that phase (so the one read later is the
     * bridge's). */
    {
        modbus_t *m0 = modbus_new_tcp("127.0.0.1", port);
        cr_assert_not_null(m0);
        cr_assert_eq(modbus_connect(m0), 0);
        uint8_t c0[16];
        uint16_t v0 = 0xffff;
        cr_assert_eq(modbus_read_bits(m0, sf_regmap_get(SF_R_PHASE_CALL)->address, 16, c0), 16);
        cr_assert_eq(modbus_read_input_registers(
                         m0, sf_regmap_get(SF_R_PHASE_STATUS_VEH_CALLS)->address, 1, &v0),
                     1);
        modbus_close(m0);
        modbus_free(m0);
        cr_assert(c0[phase_no - 1] == 0 && !((v0 >> (phase_no - 1)) & 1u),
                  "phase %u already called before the bridge", phase_no);
    }

    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, EPH, EPH, 0);
    cr_assert_not_null(fw);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    const char *names[] = {"bridge"};
    const char *topics[] = {"lamps"};
    sf_clock_config_t cc = {.name = "sim",
                            .scenario = "single",
                            .seed = 1,
                            .step_ds = 1,
                            .start_tod_ds = 7 * 36000,
                            .n_expected = 1,
                            .expected = names,
                            .register_timeout_s = 20,
                            .step_timeout_s = 10,
                            .realtime = 1, /* a real unit in the loop: wall clock, factor 1 */
                            .speed_factor = 1,
                            .topics = topics,
                            .n_topics = 1};
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cc);
    cr_assert_not_null(clk);
    bridge_thread_t bt = {.ctx = ctx, .pe = pe, .se = se, .bridge = b};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bridge_main, &bt), 0);
    cr_assert_eq(sf_clock_register(clk, NULL, NULL), 0, "%s", sf_clock_error(clk));

    seen_t seen = {0};
    for (int s = 0; s < STEPS; s++) {
        uint64_t k = sf_clock_k(clk);
        Sfbus__DetectorInputs d = SFBUS__DETECTOR_INPUTS__INIT;
        d.k = k;
        d.ix = 0;
        d.ix_id = (char *)ix->id;
        /* occupied from step 5 to 15, again from 25: two rising edges */
        d.presence = (s >= 5 && s < 15) || s >= 25 ? 1ull << det : 0;
        cr_assert_eq(sf_clock_publish(clk, &d.base), 0);
        seen.k = k;
        cr_assert_eq(sf_clock_step(clk, clock_msg, &seen), 0, "%s", sf_clock_error(clk));
    }
    sf_clock_jitter_t j = sf_clock_jitter(clk);
    sf_clock_bye(clk, "end of test");
    pthread_join(th, NULL);
    cr_assert_eq(bt.reg_rc, 0, "%s", bt.err);
    cr_assert_eq(bt.end_rc, 0, "bridge loop: %s", bt.err);

    /* Lamps flowed: one LampStates per step, of the unit's groups, with valid codes. */
    cr_assert_eq(seen.lamps, STEPS, "lamps %llu other %llu", (unsigned long long)seen.lamps,
                 (unsigned long long)seen.other);
    cr_assert_eq(seen.bad_len, 0);
    cr_assert_eq(seen.bad_code, 0);
    cr_assert(seen.last_mode >= 0x10 && seen.last_mode <= 0x33, "mode 0x%x", seen.last_mode);
    sf_bridge_stats_t st;
    sf_bridge_stats(b, &st);
    cr_assert_eq(st.steps, STEPS);
    cr_assert_eq(st.reads, STEPS);
    cr_assert_eq(st.read_failures, 0);
    /* A map v2 unit: presence goes to det_input, one write per change (the first step's
     * 0, then 1, 0, 1), no phase calls. */
    cr_assert_eq(st.det_writes, 4, "presence 0,1,0,1 -> four det_input writes, got %llu",
                 (unsigned long long)st.det_writes);
    cr_assert_eq(st.call_writes, 0);
    cr_assert_eq(st.write_failures, 0);
    cr_assert_gt(st.read_max_ms, 0.0);
    cr_assert_leq(st.read_mean_ms, st.read_max_ms);
    cr_assert_leq(st.read_p95_ms, st.read_max_ms);

    /* The presence arrived: external detection is on, det_input holds the last presence
     * and the unit sees it as its detector presence (in its start-up sequence, 15 s, it
     * takes no calls from presence: what it does with them is the engine's business). */
    modbus_t *mb = modbus_new_tcp("127.0.0.1", port);
    cr_assert_not_null(mb);
    cr_assert_eq(modbus_connect(mb), 0);
    uint8_t din[SF_MAX_DET], pres[SF_MAX_DET];
    uint16_t en = 0;
    cr_assert_eq(modbus_read_registers(mb, sf_regmap_get(SF_R_DET_INPUT_ENABLE)->address, 1, &en),
                 1);
    cr_assert_eq(modbus_read_bits(mb, sf_regmap_get(SF_R_DET_INPUT)->address, ix->n_det, din),
                 ix->n_det);
    cr_assert_eq(
        modbus_read_input_bits(mb, sf_regmap_get(SF_R_DET_PRESENCE)->address, ix->n_det, pres),
        ix->n_det);
    cr_assert_eq(en, 1, "det_input_enable %u while bridged", en);
    for (unsigned d = 0; d < ix->n_det; d++) {
        cr_assert_eq(din[d], d == (unsigned)det, "det_input[%u] = %u", d, din[d]);
        cr_assert_eq(pres[d], d == (unsigned)det, "det_presence[%u] = %u", d, pres[d]);
    }

    /* The hil report section. */
    json_t *rep = sf_bridge_report(b, j.n, j.mean_us, j.p95_us, j.max_us);
    cr_assert_not_null(rep);
    cr_assert_eq(json_integer_value(json_object_get(rep, "lamp_reads")), STEPS);
    cr_assert_not_null(json_object_get(json_object_get(rep, "read_latency_ms"), "p95"));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rep, "step_jitter_us"), "n")),
                 (json_int_t)j.n);
    cr_assert_gt(j.n, 0);
    json_decref(rep);

    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    sf_bridge_destroy(&b);
    sf_bridge_destroy(&b);
    /* The bridge handed detection back to the unit's own inputs. */
    cr_assert_eq(modbus_read_registers(mb, sf_regmap_get(SF_R_DET_INPUT_ENABLE)->address, 1, &en),
                 1);
    cr_assert_eq(en, 0, "det_input_enable %u after the bridge left", en);
    modbus_close(mb);
    modbus_free(mb);
    sf_scenario_destroy(&sc);
    int wst = child_stop(unit, SIGTERM, 20);
    cr_assert_eq(wst, 0, "sigflow unit exit %d: %s", wst, unit->err);
    free(unit);
}

Test(bridge, no_unit_host_means_nothing_bridged_and_bad_input_refused)
{
    sf_scenario_t *sc = sf_scenario_load(SINGLE, NULL, 0, NULL);
    cr_assert_not_null(sc);
    sf_bridge_t *b = sf_bridge_new(sc, NULL);
    cr_assert_not_null(b);
    cr_assert_eq(sf_bridge_count(b), 0);
    sf_bridge_destroy(&b);
    cr_assert_null(b);
    sf_bridge_opts_t o;
    sf_bridge_opts_default(&o);
    o.timeout_s = 0;
    errno = 0;
    cr_assert_null(sf_bridge_new(sc, &o));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(sf_bridge_new(NULL, NULL));
    errno = 0;
    cr_assert_eq(sf_bridge_step(NULL, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    sf_scenario_destroy(&sc);
}

/* A register map version 1 device: a plain libmodbus server whose tables end where
 * version 1 ended (no det_input coils, no det_input_enable), protocol_version 1. */
typedef struct {
    modbus_t *ctx;
    modbus_mapping_t *map;
    int listen_fd;
} v1_server_t;

static void *v1_main(void *arg)
{
    v1_server_t *v = arg;
    int fd = modbus_tcp_accept(v->ctx, &v->listen_fd);
    if (fd < 0)
        return NULL;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        int n = modbus_receive(v->ctx, q);
        if (n == 0)
            continue;
        if (n < 0)
            break; /* the bridge closed */
        modbus_reply(v->ctx, q, n, v->map);
    }
    close(fd);
    return NULL;
}

Test(bridge, a_map_v1_device_gets_phase_calls)
{
    v1_server_t v = {0};
    v.ctx = modbus_new_tcp("127.0.0.1", 0);
    cr_assert_not_null(v.ctx);
    const sf_reg_t *omit = sf_regmap_get(SF_R_PHASE_OMIT);
    v.map = modbus_mapping_new(omit->address + omit->count, 64,
                               sf_regmap_get(SF_R_PLAN_RD_SELECT)->address + 1,
                               sf_regmap_table_size(SF_TBL_INPUT));
    cr_assert_not_null(v.map);
    v.map->tab_input_registers[sf_regmap_get(SF_R_PROTOCOL_VERSION)->address] = 1;
    v.listen_fd = modbus_tcp_listen(v.ctx, 1);
    cr_assert_geq(v.listen_fd, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    cr_assert_eq(getsockname(v.listen_fd, (struct sockaddr *)&a, &al), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, v1_main, &v), 0);

    char set_host[] = "intersections[0].unit_host=127.0.0.1";
    char set_port[64];
    snprintf(set_port, sizeof set_port, "intersections[0].unit_port=%u", ntohs(a.sin_port));
    const char *sets[] = {set_host, set_port};
    sf_scenario_t *sc = sf_scenario_load(SINGLE, sets, 2, NULL);
    cr_assert_not_null(sc);
    const sf_intersection_t *ix = &sc->intersections[0];
    int det = -1;
    for (unsigned d = 0; d < ix->n_det && det < 0; d++)
        if (ix->det[d].phase_mask & 2u)
            det = (int)d;
    cr_assert_geq(det, 0);
    uint8_t phase_no = ix->phases[1].id;
    /* A plausible status: centre fixed time, every group red. */
    uint16_t *ir = v.map->tab_input_registers;
    ir[sf_regmap_get(SF_R_CONTROL_MODE)->address] = 0x10;
    for (unsigned g = 0; g < ix->n_sg; g++)
        ir[sf_regmap_get(SF_R_SG_LAMP)->address + g] = 0x10;
    sf_bridge_t *b = sf_bridge_new(sc, NULL);
    cr_assert_not_null(b);

    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    cr_assert_eq(zmq_bind(pub, "inproc://bridge-v1"), 0);
    for (uint64_t k = 0; k < 12; k++) {
        /* occupied at steps 2-4 and 8-9: two rising edges */
        Sfbus__DetectorInputs d = SFBUS__DETECTOR_INPUTS__INIT;
        d.k = k;
        d.ix = 0;
        d.presence = (k >= 2 && k < 5) || (k >= 8 && k < 10) ? 1ull << det : 0;
        sf_bus_rx_t rx = {.type = SF_BUS_DET, .msg = &d.base};
        cr_assert_eq(sf_bridge_on_msg(b, &rx), 0);
        Sfbus__Step st = SFBUS__STEP__INIT;
        st.k = k;
        cr_assert_eq(sf_bridge_step(b, &st, pub), 0, "step %llu: %s", (unsigned long long)k,
                     sf_bus_strerror(errno));
    }
    sf_bridge_stats_t s;
    sf_bridge_stats(b, &s);
    cr_assert_eq(s.reads, 12, "reads %llu failures %llu", (unsigned long long)s.reads,
                 (unsigned long long)s.read_failures);
    cr_assert_eq(s.det_writes, 0);
    cr_assert_eq(s.call_writes, 2, "two rising edges -> two phase_call writes, got %llu",
                 (unsigned long long)s.call_writes);
    cr_assert_eq(s.write_failures, 0);
    json_t *rep = sf_bridge_report(b, 0, 0, 0, 0);
    const json_t *u0 = json_array_get(json_object_get(rep, "units"), 0);
    cr_assert_eq(json_integer_value(json_object_get(u0, "map_version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(u0, "detectors")), "phase_call");
    json_decref(rep);
    sf_bridge_destroy(&b); /* closes the connection: the server thread ends */
    pthread_join(th, NULL);
    /* The calls reached the device: the phase_call coils of the detector's phases, and
     * only those. */
    uint16_t want = 0;
    for (unsigned p = 0; p < ix->n_phases; p++)
        if ((ix->det[det].phase_mask >> p) & 1u)
            want = (uint16_t)(want | (1u << (ix->phases[p].id - 1)));
    cr_assert(want & (1u << (phase_no - 1)));
    for (unsigned p = 0; p < SF_MAX_PHASES; p++)
        cr_assert_eq(v.map->tab_bits[sf_regmap_get(SF_R_PHASE_CALL)->address + p], (want >> p) & 1u,
                     "phase_call[%u]", p);
    zmq_close(pub);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    close(v.listen_fd);
    modbus_mapping_free(v.map);
    modbus_free(v.ctx);
    sf_scenario_destroy(&sc);
}
