/* controller/bridge.c — the HIL bridge (see bridge.h). */
#include "bridge.h"

#include <errno.h>
#include <modbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.pb-c.h"
#include "regmap.h"

#define HIST_BINS 10000 /* read-latency histogram: 0.1 ms bins up to 1 s (last bin: more) */
#define HIST_RES  0.1   /* ms per bin */

/* One bridged unit. */
typedef struct {
    uint32_t ix;                /* intersection index in the scenario */
    const sf_intersection_t *x; /* borrowed */
    char host[SF_NAME_LEN];     /* unit address */
    uint16_t port;              /* unit port */
    modbus_t *mb;               /* connection, NULL until made */
    double retry_at;            /* monotonic s: no connection attempt before this */
    uint64_t presence;          /* latest detector presence from the simulator */
    uint64_t prev_presence;     /* presence at the previous step (rising edges) */
    uint16_t map_version;       /* the unit's protocol_version, read at connection */
    bool ext_det;               /* v2: presence goes to det_input (external detection on) */
    bool det_synced;            /* det_sent is what the unit holds in det_input */
    uint64_t det_sent;          /* presence last written to det_input */
} bunit_t;

struct sf_bridge_s {
    sf_bridge_opts_t o;   /* options */
    size_t n;             /* bridged units */
    bunit_t *u;           /* n units */
    sf_bridge_stats_t st; /* counters (latency fields filled on demand) */
    double read_sum_ms;   /* sum of read latencies */
    uint32_t *hist;       /* HIST_BINS counts of read latency */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sf_bridge_opts_default(sf_bridge_opts_t *o)
{
    if (!o)
        return;
    o->timeout_s = 0.05;
    o->reconnect_s = 1.0;
}

sf_bridge_t *sf_bridge_new(const sf_scenario_t *sc, const sf_bridge_opts_t *opts)
{
    sf_bridge_opts_t o;
    sf_bridge_opts_default(&o);
    if (opts)
        o = *opts;
    if (!sc || !(o.timeout_s > 0 && o.timeout_s <= 60) || !(o.reconnect_s >= 0)) {
        errno = EINVAL;
        return NULL;
    }
    sf_bridge_t *b = calloc(1, sizeof *b);
    if (!b)
        goto nomem;
    b->o = o;
    b->hist = calloc(HIST_BINS, sizeof *b->hist);
    b->u = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *b->u);
    if (!b->hist || !b->u)
        goto nomem;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *x = &sc->intersections[i];
        if (!x->unit_host[0])
            continue;
        bunit_t *u = &b->u[b->n++];
        u->ix = i;
        u->x = x;
        snprintf(u->host, sizeof u->host, "%s", x->unit_host);
        u->port = x->unit_port ? x->unit_port : 502;
    }
    return b;
nomem:
    sf_bridge_destroy(&b);
    errno = ENOMEM;
    return NULL;
}

void sf_bridge_destroy(sf_bridge_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_bridge_t *b = *self_p;
    for (size_t i = 0; b->u && i < b->n; i++)
        if (b->u[i].mb) {
            /* Hand detection back to the unit's own inputs: left on, the last simulated
             * presence would stay on its detectors (a stuck call). Best effort. */
            if (b->u[i].ext_det)
                (void)modbus_write_register(b->u[i].mb,
                                            sf_regmap_get(SF_R_DET_INPUT_ENABLE)->address, 0);
            modbus_close(b->u[i].mb);
            modbus_free(b->u[i].mb);
        }
    free(b->u);
    free(b->hist);
    free(b);
    *self_p = NULL;
}

size_t sf_bridge_count(const sf_bridge_t *b)
{
    return b ? b->n : 0;
}

int sf_bridge_on_msg(void *bridge, const sf_bus_rx_t *rx)
{
    sf_bridge_t *b = bridge;
    if (!b || !rx || rx->type != SF_BUS_DET)
        return 0;
    const Sfbus__DetectorInputs *m = (const Sfbus__DetectorInputs *)(const void *)rx->msg;
    for (size_t i = 0; i < b->n; i++)
        if (b->u[i].ix == m->ix)
            b->u[i].presence = m->presence;
    return 0;
}

/* Drop a failed connection; the next attempt waits reconnect_s. */
static void drop(sf_bridge_t *b, bunit_t *u)
{
    if (u->mb) {
        modbus_close(u->mb);
        modbus_free(u->mb);
        u->mb = NULL;
    }
    u->retry_at = now_s() + b->o.reconnect_s;
}

static bool ensure(sf_bridge_t *b, bunit_t *u)
{
    if (u->mb)
        return true;
    if (now_s() < u->retry_at)
        return false;
    char port[8];
    snprintf(port, sizeof port, "%u", u->port);
    u->mb = modbus_new_tcp_pi(u->host, port);
    if (!u->mb) {
        u->retry_at = now_s() + b->o.reconnect_s;
        return false;
    }
    uint32_t sec = (uint32_t)b->o.timeout_s;
    modbus_set_response_timeout(u->mb, sec, (uint32_t)((b->o.timeout_s - sec) * 1e6));
    if (modbus_connect(u->mb) != 0) {
        drop(b, u);
        return false;
    }
    /* Map version 2 has writable detector inputs: turn external detection on, so the
     * simulated presence replaces the unit's own inputs (extension by presence works).
     * A version 1 unit, or one that refuses the switch, gets phase calls instead. */
    uint16_t ver = 0;
    if (modbus_read_input_registers(u->mb, sf_regmap_get(SF_R_PROTOCOL_VERSION)->address, 1,
                                    &ver) != 1) {
        drop(b, u);
        return false;
    }
    u->map_version = ver;
    u->ext_det = false;
    u->det_synced = false;
    if (ver >= 2) {
        if (modbus_write_register(u->mb, sf_regmap_get(SF_R_DET_INPUT_ENABLE)->address, 1) == 1) {
            u->ext_det = true;
        } else if (errno <= MODBUS_ENOBASE) { /* transport error, not an exception */
            drop(b, u);
            return false;
        }
    }
    return true;
}

/* Write the presence bits of every detector to det_input (FC 15) when they changed since
 * the last write the unit acknowledged. Returns 0, or -1 on a transport error (the
 * caller drops the connection); an exception is counted and retried next step. */
static int write_det_input(sf_bridge_t *b, bunit_t *u)
{
    if (u->det_synced && u->presence == u->det_sent)
        return 0;
    unsigned n = u->x->n_det;
    if (n == 0)
        return 0; /* nothing to drive */
    uint8_t bits[SF_MAX_DET];
    for (unsigned d = 0; d < n; d++)
        bits[d] = (uint8_t)((u->presence >> d) & 1u);
    if (modbus_write_bits(u->mb, sf_regmap_get(SF_R_DET_INPUT)->address, (int)n, bits) == (int)n) {
        b->st.det_writes++;
        u->det_sent = u->presence;
        u->det_synced = true;
        return 0;
    }
    b->st.write_failures++;
    return errno <= MODBUS_ENOBASE ? -1 : 0;
}

/* Phase-number mask called by the detectors whose presence bits are in mask. */
static uint16_t called_phases(const sf_intersection_t *x, uint64_t mask)
{
    uint16_t ph = 0;
    for (unsigned d = 0; d < x->n_det && d < 64; d++) {
        if (!((mask >> d) & 1u))
            continue;
        for (unsigned p = 0; p < x->n_phases; p++)
            if ((x->det[d].phase_mask >> p) & 1u)
                ph = (uint16_t)(ph | (1u << (x->phases[p].id - 1)));
    }
    return ph;
}

static void record_latency(sf_bridge_t *b, double ms)
{
    size_t bin = (size_t)(ms / HIST_RES);
    if (bin >= HIST_BINS)
        bin = HIST_BINS - 1;
    b->hist[bin]++;
    b->read_sum_ms += ms;
    if (ms > b->st.read_max_ms)
        b->st.read_max_ms = ms;
}

int sf_bridge_step(void *bridge, const Sfbus__Step *step, void *pub)
{
    sf_bridge_t *b = bridge;
    if (!b || !step || !pub) {
        errno = EINVAL;
        return -1;
    }
    b->st.steps++;
    uint16_t a_mode = sf_regmap_get(SF_R_CONTROL_MODE)->address;
    uint16_t a_lamp = sf_regmap_get(SF_R_SG_LAMP)->address;
    uint16_t a_call = sf_regmap_get(SF_R_PHASE_CALL)->address;
    for (size_t i = 0; i < b->n; i++) {
        bunit_t *u = &b->u[i];
        uint64_t rising = u->presence & ~u->prev_presence;
        if (!ensure(b, u)) {
            b->st.read_failures++;
            continue; /* rising edges stay pending: prev_presence not advanced */
        }
        if (u->ext_det) {
            if (write_det_input(b, u) != 0) {
                drop(b, u);
                b->st.read_failures++;
                continue;
            }
        }
        uint16_t calls = u->ext_det ? 0 : called_phases(u->x, rising);
        if (calls) {
            uint8_t bits[SF_MAX_PHASES];
            for (int p = 0; p < SF_MAX_PHASES; p++)
                bits[p] = (uint8_t)((calls >> p) & 1u);
            if (modbus_write_bits(u->mb, a_call, SF_MAX_PHASES, bits) == SF_MAX_PHASES) {
                b->st.call_writes++;
            } else {
                b->st.write_failures++;
                if (errno <= MODBUS_ENOBASE) { /* transport error, not an exception */
                    drop(b, u);
                    b->st.read_failures++;
                    continue;
                }
            }
        }
        u->prev_presence = u->presence;
        /* status 100..149 and lamps + remaining 200..271: two reads, timed together */
        uint16_t st[50], lamps[72];
        double t0 = now_s();
        int r1 = modbus_read_input_registers(u->mb, a_mode, 50, st);
        int r2 = r1 == 50 ? modbus_read_input_registers(u->mb, a_lamp, 72, lamps) : -1;
        double ms = (now_s() - t0) * 1e3;
        if (r1 != 50 || r2 != 72) {
            b->st.read_failures++;
            drop(b, u);
            continue;
        }
        b->st.reads++;
        record_latency(b, ms);
        uint8_t n_sg = u->x->n_sg;
        uint8_t lamp8[SF_MAX_SG];
        uint32_t rem[SF_MAX_SG];
        for (uint8_t g = 0; g < n_sg; g++) {
            lamp8[g] = (uint8_t)lamps[g];
            rem[g] = lamps[40 + g]; /* sg_time_remaining at 240 */
        }
        Sfbus__LampStates m = SFBUS__LAMP_STATES__INIT;
        m.k = step->k;
        m.ix = u->ix;
        m.lamps.data = lamp8;
        m.lamps.len = n_sg;
        m.n_remaining_ds = n_sg;
        m.remaining_ds = rem;
        m.control_mode = st[0];
        m.fault_code = st[sf_regmap_get(SF_R_FAULT_CODE)->address - a_mode];
        m.greens = st[sf_regmap_get(SF_R_PHASE_STATUS_GREENS)->address - a_mode];
        m.yellows = st[sf_regmap_get(SF_R_PHASE_STATUS_YELLOWS)->address - a_mode];
        m.reds = st[sf_regmap_get(SF_R_PHASE_STATUS_REDS)->address - a_mode];
        m.plan = st[sf_regmap_get(SF_R_ACTIVE_PLAN)->address - a_mode];
        m.cycle_timer_ds = st[sf_regmap_get(SF_R_CYCLE_TIMER)->address - a_mode];
        if (sf_bus_send(pub, &m.base) != 0)
            return -1;
        b->st.lamp_msgs++;
    }
    return 0;
}

void sf_bridge_stats(const sf_bridge_t *b, sf_bridge_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!b)
        return;
    *out = b->st;
    if (b->st.reads) {
        out->read_mean_ms = b->read_sum_ms / (double)b->st.reads;
        uint64_t want = (uint64_t)((double)b->st.reads * 0.95 + 0.5), acc = 0;
        for (size_t i = 0; i < HIST_BINS; i++) {
            acc += b->hist[i];
            if (acc >= want) {
                out->read_p95_ms = (double)(i + 1) * HIST_RES; /* upper edge of the bin */
                break;
            }
        }
        if (out->read_p95_ms > out->read_max_ms)
            out->read_p95_ms = out->read_max_ms;
    }
}

json_t *sf_bridge_report(const sf_bridge_t *b, uint64_t jitter_n, double jitter_mean_us,
                         double jitter_p95_us, double jitter_max_us)
{
    sf_bridge_stats_t s;
    sf_bridge_stats(b, &s);
    json_t *units = json_array();
    for (size_t i = 0; b && units && i < b->n; i++) {
        char ep[SF_NAME_LEN + 8];
        snprintf(ep, sizeof ep, "%s:%u", b->u[i].host, b->u[i].port);
        json_array_append_new(units,
                              json_pack("{s:s, s:s, s:i, s:s}", "ix", b->u[i].x->id, "endpoint", ep,
                                        "map_version", (int)b->u[i].map_version, "detectors",
                                        b->u[i].ext_det ? "det_input" : "phase_call"));
    }
    if (!units)
        return NULL;
    return json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:f, s:f, s:f}, s:{s:I, s:f, "
        "s:f, s:f}}",
        "units", units, "steps", (json_int_t)s.steps, "lamp_reads", (json_int_t)s.reads,
        "read_failures", (json_int_t)s.read_failures, "det_writes", (json_int_t)s.det_writes,
        "call_writes", (json_int_t)s.call_writes, "write_failures", (json_int_t)s.write_failures,
        "lamp_msgs", (json_int_t)s.lamp_msgs, "read_latency_ms", "mean", s.read_mean_ms, "p95",
        s.read_p95_ms, "max", s.read_max_ms, "step_jitter_us", "n", (json_int_t)jitter_n, "mean",
        jitter_mean_us, "p95", jitter_p95_us, "max", jitter_max_us);
}
