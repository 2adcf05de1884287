/* tests/test_run_hil.c — `sigflow run` with a real unit in the loop (HIL), all by
 * configuration: a separate `sigflow unit` child process is the "real" device (ready by
 * its handshake line), and --set intersections[0].unit_host/unit_port bridges the
 * scenario's one intersection to it. While the run goes the test listens on the run's
 * bus (lamps and detector inputs) and reads the device's lamps over its own Modbus
 * connection: every lamp picture the simulator was given must be one the device showed,
 * the detector presence must reach the device's det_input (map v2), the controller must
 * control the device at the same time (two Modbus clients on one device), and the report
 * must carry a `hil` section. Without the option nothing is bridged. */
#include "run_child.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <modbus.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include "bus.h"
#include "regmap.h"
#include "scenario.h"

#define SINGLE     SIGFLOW_ASSETS "/scenarios/single.json"
#define DURATION_S 10 /* real time: the run goes at factor 1 */
#define MAX_PICS   64 /* distinct lamp pictures remembered */

static void tmp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/sf_hil_%s_%d.json", tag, (int)getpid());
    unlink(buf);
}

static const json_t *jget(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return cur;
}

static double jnum(const json_t *o, const char *path)
{
    const json_t *v = jget(o, path);
    cr_assert(json_is_number(v), "%s is a number", path);
    return json_number_value(v);
}

/* Start the device: `sigflow unit single.json --base-port 0`; its port from the ready
 * line on stdout ("ready I1 127.0.0.1:PORT"). */
static uint16_t start_device(child_t *dev)
{
    uint16_t port = child_start_unit(dev, SINGLE, 0, 30);
    cr_assert_neq(port, 0, "no ready line: %s %s", dev->out, dev->err);
    return port;
}

static void stop_device(child_t *dev)
{
    int st = child_stop(dev, SIGTERM, 20);
    cr_assert_eq(st, 0, "sigflow unit exit %d: %s", st, dev->err);
}

/* Distinct lamp pictures (the first n_sg codes). */
typedef struct {
    size_t n;
    uint8_t pic[MAX_PICS][SF_MAX_SG];
} pics_t;

static bool pics_has(const pics_t *p, const uint8_t *v, size_t n_sg)
{
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->pic[i], v, n_sg) == 0)
            return true;
    return false;
}

static void pics_add(pics_t *p, const uint8_t *v, size_t n_sg)
{
    if (p->n < MAX_PICS && !pics_has(p, v, n_sg)) {
        memset(p->pic[p->n], 0, SF_MAX_SG);
        memcpy(p->pic[p->n++], v, n_sg);
    }
}

CHILD_SUITE(run_hil);

Test(run_hil, a_sigflow_unit_process_bridged_by_set, .timeout = 120)
{
    sf_scenario_t *sc = sf_scenario_load(SINGLE, NULL, 0, NULL);
    cr_assert_not_null(sc);
    const size_t n_sg = sc->intersections[0].n_sg;
    const unsigned n_det = sc->intersections[0].n_det;
    sf_scenario_destroy(&sc);

    child_t *dev = child_new();
    uint16_t port = start_device(dev);

    char path[256], set_port[64], dur[16];
    tmp_path(path, sizeof path, "bridged");
    snprintf(set_port, sizeof set_port, "intersections[0].unit_port=%u", port);
    snprintf(dur, sizeof dur, "%d", DURATION_S);
    char *argv[] = {
        "sigflow", "run",    SINGLE,           "--headless", "--duration",
        dur,       "--set",  "run.warmup_s=0", "--set",      "intersections[0].unit_host=127.0.0.1",
        "--set",   set_port, "--report",       path,         NULL};
    child_t *run = child_new();
    cr_assert_eq(child_start(run, argv), 0);
    cr_assert(child_wait_err(run, "sigflow run: bus ", 30), "%s", run->err);
    char pub[256], sub[256];
    cr_assert_eq(
        sscanf(strstr(run->err, "sigflow run: bus "), "sigflow run: bus %255s %255s", pub, sub), 2);

    /* Listen to the run's bus; read the device over a third Modbus connection. */
    void *zctx = zmq_ctx_new();
    const char *topics[] = {"lamps", "det"};
    void *s = sf_bus_sub_new(zctx, sub, topics, 2, 0);
    cr_assert_not_null(s);
    modbus_t *mb = modbus_new_tcp("127.0.0.1", port);
    cr_assert_not_null(mb);
    /* libmodbus waits 0.5 s for a reply by default: on a loaded machine a read in the loop
     * below timed out, its reply came later and was taken as the reply to the next request
     * (a transaction id mismatch), failing the reads after the run. Wait longer; this is
     * no bound on the device's timing, which the test does not assert. */
    cr_assert_eq(modbus_set_response_timeout(mb, 5, 0), 0);
    cr_assert_eq(modbus_connect(mb), 0);
    pics_t on_bus = {0}, on_device = {0};
    uint64_t lamp_msgs = 0, det_msgs = 0, last_presence = 0;
    bool saw_det = false;
    uint16_t a_lamp = sf_regmap_get(SF_R_SG_LAMP)->address;
    while (child_pump(run, 0)) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        int pr = zmq_poll(&it, 1, 20);
        cr_assert_geq(pr, 0);
        sf_bus_rx_t rx = {0};
        while (sf_bus_recv(s, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
            if (rx.type == SF_BUS_LAMPS) {
                const Sfbus__LampStates *m = (const Sfbus__LampStates *)(const void *)rx.msg;
                cr_assert_eq(m->ix, 0);
                cr_assert_eq(m->lamps.len, n_sg);
                pics_add(&on_bus, m->lamps.data, n_sg);
                lamp_msgs++;
            } else if (rx.type == SF_BUS_DET) {
                const Sfbus__DetectorInputs *m =
                    (const Sfbus__DetectorInputs *)(const void *)rx.msg;
                if (m->ix == 0) {
                    last_presence = m->presence;
                    saw_det = true;
                    det_msgs++;
                }
            }
            sf_bus_rx_clear(&rx);
        }
        uint16_t lamps[SF_MAX_SG];
        if (modbus_read_input_registers(mb, a_lamp, (int)n_sg, lamps) == (int)n_sg) {
            uint8_t v[SF_MAX_SG];
            for (size_t g = 0; g < n_sg; g++)
                v[g] = (uint8_t)lamps[g];
            pics_add(&on_device, v, n_sg);
        }
    }
    int st = child_finish(run, 60);
    cr_assert_eq(st, 0, "exit %d: %s", st, run->err);
    cr_assert(strstr(run->out, "hil: 1 real unit(s)") != NULL, "%s", run->out);

    /* The simulator was given the device's lamps: every picture on the bus is one the
     * device showed (its lamps change at most every few seconds; we read it at ~20 Hz). */
    cr_assert_gt(lamp_msgs, 0);
    for (size_t i = 0; i < on_bus.n; i++) {
        char desc[3 * SF_MAX_SG + 1] = "";
        for (size_t g = 0; g < n_sg; g++)
            snprintf(desc + 3 * g, sizeof desc - 3 * g, "%02x ", on_bus.pic[i][g]);
        cr_assert(pics_has(&on_device, on_bus.pic[i], n_sg),
                  "lamps [%s] on the bus were never shown by the device (%zu pictures read)", desc,
                  on_device.n);
    }

    /* Detector presence reached the device: det_input holds the last presence the
     * simulator published; the bridge handed detection back when it left. */
    uint8_t din[SF_MAX_DET] = {0};
    uint16_t en = 0xffff;
    (void)modbus_flush(mb); /* a reply the loop's last read gave up on is not taken for these */
    cr_assert_eq(modbus_read_bits(mb, sf_regmap_get(SF_R_DET_INPUT)->address, (int)n_det, din),
                 (int)n_det);
    cr_assert_eq(modbus_read_registers(mb, sf_regmap_get(SF_R_DET_INPUT_ENABLE)->address, 1, &en),
                 1);
    cr_assert_eq(en, 0, "det_input_enable %u after the run", en);
    for (unsigned d = 0; d < n_det; d++)
        cr_assert_eq(din[d], saw_det ? (last_presence >> d) & 1u : 0, "det_input[%u]", d);
    modbus_close(mb);
    modbus_free(mb);
    sf_bus_close(&s);
    (void)sf_bus_ctx_term(zctx, SF_BUS_CTX_TERM_MS);

    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    const json_t *hil = json_object_get(r, "hil");
    cr_assert(json_is_object(hil), "no hil section");
    const json_t *u0 = json_array_get(json_object_get(hil, "units"), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    cr_assert_str_eq(json_string_value(json_object_get(u0, "endpoint")), ep);
    cr_assert_str_eq(json_string_value(json_object_get(u0, "ix")), "I1");
    cr_assert_eq(jnum(u0, "map_version"), SF_REGMAP_VERSION);
    cr_assert_str_eq(json_string_value(json_object_get(u0, "detectors")), "det_input");
    /* Real time at factor 1, forced by the bridge; one lamp read attempt per 0.1 s step,
     * i.e. 10 Hz; the run cannot end before the wall clock has run its duration. */
    cr_assert(json_is_true(jget(r, "perf.realtime")));
    cr_assert_eq(jnum(r, "perf.speed_factor"), 1.0);
    double steps = jnum(r, "perf.steps");
    cr_assert_eq(steps, DURATION_S * 10);
    cr_assert_eq(jnum(hil, "steps"), steps);
    cr_assert_gt(jnum(hil, "lamp_reads"), 0);
    cr_assert_eq(jnum(hil, "lamp_reads") + jnum(hil, "read_failures"), steps);
    cr_assert_geq(jnum(r, "perf.wall_s"), DURATION_S - 0.2);
    cr_assert_eq(jnum(hil, "step_jitter_us.n"), steps);
    cr_assert_geq(jnum(hil, "read_latency_ms.max"), jnum(hil, "read_latency_ms.mean"));
    /* Every lamp the simulator applied came from the device, none from an emulated unit. */
    cr_assert_eq(jnum(r, "perf.lamp_msgs"), 0);
    cr_assert_eq(jnum(r, "perf.lamp_msgs_applied"), jnum(hil, "lamp_msgs"));
    cr_assert_eq(jnum(hil, "lamp_msgs"), jnum(hil, "lamp_reads"));
    /* Presence changes went over det_input (at least the first state), no phase calls. */
    cr_assert_geq(jnum(hil, "det_writes"), 1);
    cr_assert_eq(jnum(hil, "call_writes"), 0);
    /* The controller controlled the device meanwhile, over its own connection. */
    cr_assert_eq(jnum(r, "controller.comms.units"), 1);
    cr_assert_eq(jnum(r, "controller.comms.online"), 1);
    cr_assert_gt(jnum(r, "controller.comms.replies"), 0);
    json_decref(r);
    unlink(path);
    stop_device(dev);
    free(run);
    free(dev);
}

Test(run_hil, nothing_bridged_without_the_option, .timeout = 60)
{
    char path[256];
    tmp_path(path, sizeof path, "plain");
    char *argv[] = {"sigflow",        "run",      SINGLE, "--headless", "--duration", "5", "--set",
                    "run.warmup_s=0", "--report", path,   NULL};
    child_t *c = child_new();
    int st = child_run(c, argv, 50);
    cr_assert_eq(st, 0, "exit %d: %s", st, c->err);
    cr_assert_null(strstr(c->out, "hil:"), "%s", c->out);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    cr_assert_null(json_object_get(r, "hil"));
    cr_assert(json_is_false(jget(r, "perf.realtime")), "lockstep stays lockstep");
    cr_assert_gt(jnum(r, "perf.lamp_msgs"), 0, "the emulated unit published the lamps");
    json_decref(r);
    unlink(path);
    free(c);
}

Test(run_hil, a_device_that_does_not_answer_is_counted_and_the_run_ends, .timeout = 60)
{
    /* A port nobody listens on: take an ephemeral one and close it. */
    modbus_t *l = modbus_new_tcp("127.0.0.1", 0);
    cr_assert_not_null(l);
    int fd = modbus_tcp_listen(l, 1);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    unsigned port = ntohs(sa.sin_port);
    close(fd);
    modbus_free(l);

    char path[256], set_port[64];
    tmp_path(path, sizeof path, "dead");
    snprintf(set_port, sizeof set_port, "intersections[0].unit_port=%u", port);
    char *argv[] = {
        "sigflow", "run",    SINGLE,           "--headless", "--duration",
        "3",       "--set",  "run.warmup_s=0", "--set",      "intersections[0].unit_host=127.0.0.1",
        "--set",   set_port, "--report",       path,         NULL};
    child_t *c = child_new();
    int st = child_run(c, argv, 50);
    cr_assert_eq(st, 0, "exit %d: %s", st, c->err);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s", je.text);
    cr_assert_eq(jnum(r, "hil.lamp_reads"), 0);
    cr_assert_eq(jnum(r, "hil.read_failures"), jnum(r, "hil.steps"));
    cr_assert_eq(jnum(r, "perf.lamp_msgs_applied"), 0);
    cr_assert_eq(jnum(r, "controller.comms.online"), 0);
    json_decref(r);
    unlink(path);
    free(c);
}
