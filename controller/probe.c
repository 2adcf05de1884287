/* controller/probe.c — conformance test of a Modbus signal unit (see probe.h). */
#include "probe.h"

#include <errno.h>
#include <modbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "regmap.h"

#define SAMPLE_S    0.05 /* lamp sampling period: 20 Hz, twice the required 10 Hz */
#define HEARTBEAT_S 0.5  /* heartbeat period while the probe keeps centre control */
#define MIN_HZ      10.0 /* the lamp-watch rate */
#define PRIO_ID     4242 /* request id of the probe's priority check-in */

/* Probe state: one connection, the unit's shape as read, and the lamp watch. */
typedef struct {
    const sf_probe_config_t *cfg; /* borrowed */
    sf_probe_report_t *rep;       /* output */
    modbus_t *mb;                 /* libmodbus TCP context, connected */
    uint16_t n_phases;            /* identity n_phases */
    uint16_t n_rings;             /* identity n_rings */
    uint16_t n_sg;                /* identity n_sg */
    uint16_t n_det;               /* identity n_det */
    uint16_t map_version;         /* identity protocol_version (1..SF_REGMAP_VERSION) */
    uint16_t phase_mask;          /* configured phases (bit i = phase i+1, min green != 0) */
    uint8_t p1, p2;               /* first and second configured phase numbers (p2 may = p1) */
    uint16_t hb;                  /* next heartbeat value */
    double last_hb;               /* time of the last heartbeat write, s (monotonic) */
    bool heartbeat;               /* keep writing heartbeats while waiting */
    double last_sample;           /* time of the last lamp sample, s */
    uint32_t samples;             /* lamp samples taken (whole probe) */
    uint32_t conflicts;           /* samples with conflicting greens (whole probe) */
    uint32_t monitor_faults;      /* samples with fault_code 0x10 */
    uint32_t sample_errors;       /* lamp reads that failed */
    char first_conflict[160];     /* description of the first conflict seen */
    uint16_t control_mode;        /* control_mode at the last sample */
    uint16_t local_fallback;      /* local_fallback at the last sample */
    uint16_t heartbeat_age;       /* heartbeat_age at the last sample, 0.1 s */
    uint16_t fault_code;          /* fault_code at the last sample */
} probe_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint16_t addr_of(sf_reg_id_t id)
{
    return sf_regmap_get(id)->address;
}

/* Modbus exception code carried by errno after a failed request, 0 for other errors. */
static int exc_of(int err)
{
    if (err > MODBUS_ENOBASE && err <= MODBUS_ENOBASE + MODBUS_EXCEPTION_GATEWAY_TARGET)
        return err - MODBUS_ENOBASE;
    return 0;
}

/* Describe the outcome of a request: "ok", "exception 03", or the error text. */
static const char *outcome(int rc, int err, char *buf, size_t len)
{
    if (rc >= 0)
        snprintf(buf, len, "ok");
    else if (exc_of(err))
        snprintf(buf, len, "exception %02d", exc_of(err));
    else
        snprintf(buf, len, "error: %s", modbus_strerror(err));
    return buf;
}

static void add_row(probe_t *p, const char *name, sf_probe_result_t r, const char *expected,
                    const char *fmt, ...)
{
    sf_probe_report_t *rep = p->rep;
    if (rep->n_rows >= SF_PROBE_MAX_ROWS)
        return;
    sf_probe_row_t *row = &rep->rows[rep->n_rows++];
    snprintf(row->name, sizeof row->name, "%s", name);
    row->result = r;
    snprintf(row->expected, sizeof row->expected, "%s", expected);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->seen, sizeof row->seen, fmt, ap);
    va_end(ap);
    if (r == SF_PROBE_FAIL)
        rep->n_failed++;
}

/* After a transport error (not an exception reply) the stream may hold a late reply or
 * be closed: flush it, and reconnect when the socket is gone. */
static void recover(probe_t *p, int err)
{
    if (exc_of(err))
        return;
    if (err == ETIMEDOUT || err == EMBBADDATA || err == EMBBADEXC || err == EMBUNKEXC ||
        err == EMBMDATA || err == EMBBADCRC || err == EMBBADSLAVE) {
        modbus_flush(p->mb);
        return;
    }
    modbus_close(p->mb);
    modbus_connect(p->mb);
}

static int rd_input(probe_t *p, uint16_t addr, int n, uint16_t *dst)
{
    int rc = modbus_read_input_registers(p->mb, addr, n, dst);
    if (rc != n) {
        int err = rc < 0 ? errno : EMBBADDATA;
        recover(p, err);
        errno = err;
        return -1;
    }
    return 0;
}

static int rd_holding(probe_t *p, uint16_t addr, int n, uint16_t *dst)
{
    int rc = modbus_read_registers(p->mb, addr, n, dst);
    if (rc != n) {
        int err = rc < 0 ? errno : EMBBADDATA;
        recover(p, err);
        errno = err;
        return -1;
    }
    return 0;
}

static int wr_reg(probe_t *p, uint16_t addr, uint16_t v)
{
    int rc = modbus_write_register(p->mb, addr, v);
    if (rc < 0) {
        int err = errno;
        recover(p, err);
        errno = err;
    }
    return rc < 0 ? -1 : 0;
}

static int wr_regs(probe_t *p, uint16_t addr, int n, const uint16_t *v)
{
    int rc = modbus_write_registers(p->mb, addr, n, v);
    if (rc < 0) {
        int err = errno;
        recover(p, err);
        errno = err;
    }
    return rc < 0 ? -1 : 0;
}

static int wr_bits(probe_t *p, uint16_t addr, int n, const uint8_t *v)
{
    int rc = modbus_write_bits(p->mb, addr, n, v);
    if (rc < 0) {
        int err = errno;
        recover(p, err);
        errno = err;
    }
    return rc < 0 ? -1 : 0;
}

static bool lamp_green(uint16_t code)
{
    return code == 0x20 || code == 0x21;
}

/* One lamp sample: status block (control mode .. phase status) and sg_lamp; counts
 * conflicting greens. */
static void sample(probe_t *p)
{
    uint16_t st[50], lamp[SF_MAX_SG];
    uint16_t a0 = addr_of(SF_R_CONTROL_MODE);
    p->last_sample = now_s();
    if (rd_input(p, a0, 50, st) != 0 || rd_input(p, addr_of(SF_R_SG_LAMP), SF_MAX_SG, lamp) != 0) {
        p->sample_errors++;
        return;
    }
    p->samples++;
    p->control_mode = st[0];
    p->local_fallback = st[addr_of(SF_R_LOCAL_FALLBACK) - a0];
    p->fault_code = st[addr_of(SF_R_FAULT_CODE) - a0];
    p->heartbeat_age = st[addr_of(SF_R_HEARTBEAT_AGE) - a0];
    uint16_t greens = st[addr_of(SF_R_PHASE_STATUS_GREENS) - a0];
    if (p->fault_code == 0x10)
        p->monitor_faults++;
    char what[160] = "";
    const sf_intersection_t *ix = p->cfg->ix;
    if (ix) {
        for (unsigned i = 0; i < ix->n_sg && !what[0]; i++)
            for (unsigned j = i + 1; j < ix->n_sg && !what[0]; j++)
                if (ix->sg_conflict[i][j] && lamp_green(lamp[i]) && lamp_green(lamp[j]))
                    snprintf(what, sizeof what, "groups %s and %s green together", ix->sg[i].id,
                             ix->sg[j].id);
    }
    if (!what[0] && __builtin_popcount(greens) > p->n_rings)
        snprintf(what, sizeof what, "%d phases green (greens 0x%04x) with %u ring(s)",
                 __builtin_popcount(greens), greens, p->n_rings);
    if (what[0]) {
        if (!p->conflicts)
            snprintf(p->first_conflict, sizeof p->first_conflict, "%s", what);
        p->conflicts++;
    }
}

/* Keep the unit watched (and heartbeated when asked) until `until` (monotonic s). */
static void watch_until(probe_t *p, double until)
{
    for (;;) {
        double t = now_s();
        if (p->heartbeat && t - p->last_hb >= HEARTBEAT_S) {
            if (wr_reg(p, addr_of(SF_R_HEARTBEAT), p->hb++) == 0)
                p->last_hb = t;
        }
        if (t - p->last_sample >= SAMPLE_S)
            sample(p);
        t = now_s();
        if (t >= until)
            return;
        double next = p->last_sample + SAMPLE_S;
        sleep_s((next < until ? next : until) - t);
    }
}

/* Watch until control_mode's high nibble is `nibble` (and local_fallback equals fb when
 * fb >= 0), or max_wait passes. Returns the time waited, or -1 on timeout. */
static double wait_mode(probe_t *p, unsigned nibble, int fb)
{
    double t0 = now_s(), end = t0 + p->cfg->max_wait_s;
    for (;;) {
        watch_until(p, now_s() + SAMPLE_S);
        if ((p->control_mode >> 4) == nibble && (fb < 0 || p->local_fallback == fb))
            return now_s() - t0;
        if (now_s() >= end)
            return -1;
    }
}

/* ---- checks ------------------------------------------------------------------------ */

static int check_identity(probe_t *p)
{
    uint16_t id[32], mg[SF_MAX_PHASES];
    char buf[64];
    if (rd_input(p, 0, 32, id) != 0) {
        add_row(p, "identity", SF_PROBE_FAIL, "input registers 0-31 readable", "read: %s",
                outcome(-1, errno, buf, sizeof buf));
        return -1;
    }
    char uid[33] = "";
    bool ascii_ok = true, ended = false;
    for (int i = 0; i < 16; i++) {
        char c[2] = {(char)(id[16 + i] >> 8), (char)(id[16 + i] & 0xff)};
        for (int k = 0; k < 2; k++) {
            if (c[k] == 0)
                ended = true;
            else if (ended || c[k] < 0x20 || c[k] > 0x7e)
                ascii_ok = false;
            else
                uid[2 * i + k] = c[k];
        }
    }
    uid[32] = 0;
    p->n_phases = id[2];
    p->n_rings = id[3];
    p->n_sg = id[4];
    p->n_det = id[5];
    p->map_version = id[0];
    /* The map is append-only: a version 1 unit is checked against the version 1 entries. */
    bool ok = id[0] >= 1 && id[0] <= SF_REGMAP_VERSION;
    char exp_ver[48];
    snprintf(exp_ver, sizeof exp_ver, "protocol_version 1..%d", SF_REGMAP_VERSION);
    add_row(p, "protocol version", ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp_ver,
            "protocol_version = %u", id[0]);
    if (!ok)
        return -1;
    if (rd_holding(p, addr_of(SF_R_PHASE_MIN_GREEN), SF_MAX_PHASES, mg) != 0) {
        add_row(p, "identity", SF_PROBE_FAIL, "phase_min_green readable", "read: %s",
                outcome(-1, errno, buf, sizeof buf));
        return -1;
    }
    p->phase_mask = 0;
    p->p1 = p->p2 = 0;
    for (unsigned i = 0; i < SF_MAX_PHASES; i++)
        if (mg[i]) {
            p->phase_mask = (uint16_t)(p->phase_mask | (1u << i));
            if (!p->p1)
                p->p1 = (uint8_t)(i + 1);
            else if (!p->p2)
                p->p2 = (uint8_t)(i + 1);
        }
    if (!p->p2)
        p->p2 = p->p1;
    bool shape = id[2] >= 1 && id[2] <= 16 && id[3] >= 1 && id[3] <= 4 && id[4] >= 1 &&
                 id[4] <= 32 && id[5] <= 64 && id[6] >= 1 && id[6] <= 16 &&
                 __builtin_popcount(p->phase_mask) == id[2] && ascii_ok && uid[0];
    if (p->cfg->ix && (p->cfg->ix->n_sg != id[4] || p->cfg->ix->n_phases != id[2]))
        shape = false;
    add_row(p, "identity", shape ? SF_PROBE_PASS : SF_PROBE_FAIL,
            "counts in range, one min green per phase, unit_id ASCII"
            "; matches --scenario when given",
            "unit_id '%s' phases %u (mask 0x%04x) rings %u groups %u detectors %u plans %u%s", uid,
            id[2], p->phase_mask, id[3], id[4], id[5], id[6], ascii_ok ? "" : " (bad ASCII)");
    return shape && p->p1 ? 0 : -1;
}

/* Every readable entry of every table, one request per entry; read-only values checked
 * against the map's ranges. One row per table. */
static void check_readable(probe_t *p)
{
    size_t n;
    const sf_reg_t *t = sf_regmap_table(&n);
    for (int tbl = 0; tbl < SF_TBL_N; tbl++) {
        unsigned entries = 0, excs = 0, range = 0, errs = 0;
        char detail[200] = "";
        size_t dl = 0;
        for (size_t i = 0; i < n; i++) {
            const sf_reg_t *r = &t[i];
            if ((int)r->table != tbl || !(r->access & SF_ACC_R) ||
                sf_regmap_since(r) > p->map_version)
                continue;
            entries++;
            uint16_t span = sf_regmap_span(r);
            uint16_t w[SF_POLL_IMAGE_MAX];
            uint8_t b[128];
            int rc;
            switch (r->table) {
            case SF_TBL_COIL:
                rc = modbus_read_bits(p->mb, r->address, span, b);
                break;
            case SF_TBL_DISCRETE:
                rc = modbus_read_input_bits(p->mb, r->address, span, b);
                break;
            default: /* registers: reads of at most 125 (the poll image spans 252) */
                rc = span;
                for (uint16_t o = 0; o < span; o = (uint16_t)(o + 125)) {
                    int k = span - o < 125 ? span - o : 125;
                    int got = r->table == SF_TBL_INPUT
                                  ? modbus_read_input_registers(p->mb, r->address + o, k, w + o)
                                  : modbus_read_registers(p->mb, r->address + o, k, w + o);
                    if (got != k) { /* short (rc below span) or failed (-1, errno) */
                        rc = got < 0 ? -1 : o + got;
                        break;
                    }
                }
                break;
            }
            if (rc != span) {
                int err = rc < 0 ? errno : EMBBADDATA;
                if (exc_of(err))
                    excs++;
                else
                    errs++;
                recover(p, err);
                char ob[64];
                if (dl < sizeof detail - 1)
                    dl += (size_t)snprintf(detail + dl, sizeof detail - dl, " %s:%s", r->name,
                                           outcome(-1, err, ob, sizeof ob));
                continue;
            }
            /* Only read-only tables have ranges every value must satisfy (staging
             * buffers of the holding table legitimately read 0 before first use). */
            if (r->table != SF_TBL_INPUT && r->table != SF_TBL_DISCRETE)
                continue;
            if (r->type == SF_RT_ASCII)
                continue;
            for (uint16_t e = 0; e < r->count; e++) {
                int64_t v;
                if (r->table == SF_TBL_DISCRETE)
                    v = b[e];
                else if (r->type == SF_RT_U32)
                    v = ((int64_t)w[2 * e] << 16) | w[2 * e + 1];
                else if (r->type == SF_RT_S16)
                    v = (int16_t)w[e];
                else
                    v = w[e];
                if (v < r->min || v > r->max) {
                    range++;
                    if (dl < sizeof detail - 1)
                        dl += (size_t)snprintf(detail + dl, sizeof detail - dl, " %s[%u]=%lld",
                                               r->name, e, (long long)v);
                    break;
                }
            }
        }
        char name[40], exp[160];
        snprintf(name, sizeof name, "read %s table", sf_regmap_table_name((sf_reg_table_t)tbl));
        snprintf(exp, sizeof exp, "%u readable entries answered%s", entries,
                 tbl == SF_TBL_INPUT || tbl == SF_TBL_DISCRETE ? ", values in the map's ranges"
                                                               : "");
        add_row(p, name, excs || range || errs ? SF_PROBE_FAIL : SF_PROBE_PASS, exp,
                "%u entries: %u exceptions, %u errors, %u out of range%s", entries, excs, errs,
                range, detail);
    }
}

/* The poll image (map version 3), read in parts of at most 125 registers into img. */
static int read_image(probe_t *p, uint16_t len, uint16_t *img)
{
    uint16_t a = addr_of(SF_R_POLL_IMAGE);
    for (uint16_t o = 0; o < len; o = (uint16_t)(o + 125))
        if (rd_input(p, (uint16_t)(a + o), len - o < 125 ? len - o : 125, img + o) != 0)
            return -1;
    return 0;
}

/* The poll image's length follows from the identity counts, and it holds copies: built
 * again from the separate entries, read between two reads of the image, it agrees with
 * the image wherever the two image reads agree (a value that changed between them is
 * not judged). */
static void check_poll_image(probe_t *p)
{
    const char *name = "poll image (v3)";
    const char *exp = "poll_image_len = 56 + 2 n_sg + 2 n_det + ceil(n_det / 16); the image "
                      "equals the entries it copies";
    sf_poll_image_layout_t l;
    uint16_t len = 0, a[SF_POLL_IMAGE_MAX], b[SF_POLL_IMAGE_MAX], c[SF_POLL_IMAGE_MAX] = {0};
    uint16_t st[50], sg[72], det[2], vol[64], occ[64], prio[38];
    uint8_t pres[64];
    char ob[64];
    if (p->map_version < 3) {
        add_row(p, name, SF_PROBE_SKIP, exp, "protocol_version %u has no poll image",
                p->map_version);
        return;
    }
    if (sf_regmap_image_layout(p->n_sg, p->n_det, &l) != 0 ||
        rd_input(p, addr_of(SF_R_POLL_IMAGE_LEN), 1, &len) != 0 || len != l.len) {
        add_row(p, name, SF_PROBE_FAIL, exp, "poll_image_len %u, the counts give %u", len, l.len);
        return;
    }
    int rc = read_image(p, len, a);
    if (rc == 0)
        rc = rd_input(p, addr_of(SF_R_CONTROL_MODE), 50, st) | rd_input(p, 200, 72, sg) |
             rd_input(p, addr_of(SF_R_DET_SEQ), 2, det) |
             rd_input(p, addr_of(SF_R_PRIO_STATUS_ID), 38, prio);
    if (rc == 0 && p->n_det > 0)
        rc = rd_input(p, addr_of(SF_R_DET_VOLUME), p->n_det, vol) |
             rd_input(p, addr_of(SF_R_DET_OCCUPANCY), p->n_det, occ) |
             (modbus_read_input_bits(p->mb, addr_of(SF_R_DET_PRESENCE), p->n_det, pres) == p->n_det
                  ? 0
                  : -1);
    if (rc == 0)
        rc = read_image(p, len, b);
    if (rc != 0) {
        add_row(p, name, SF_PROBE_FAIL, exp, "read: %s", outcome(-1, errno, ob, sizeof ob));
        return;
    }
    memcpy(c + l.status, st, 12 * sizeof *c);
    memcpy(c + l.phase_status, st + 40, 10 * sizeof *c);
    for (unsigned i = 0; i < p->n_sg; i++) {
        c[l.lamp + i] = sg[i];
        c[l.remaining + i] = sg[40 + i];
    }
    for (unsigned k = 0; k < 4; k++)
        memcpy(c + l.prio + 8 * k, prio + 10 * k, 8 * sizeof *c);
    memcpy(c + l.det, det, sizeof det);
    for (unsigned d = 0; d < p->n_det; d++) {
        c[l.volume + d] = vol[d];
        c[l.occupancy + d] = occ[d];
        if (pres[d])
            c[l.presence + d / 16] = (uint16_t)(c[l.presence + d / 16] | (1u << (d % 16)));
    }
    unsigned judged = 0, differ = 0, first = len;
    for (unsigned i = 0; i < len; i++)
        if (a[i] == b[i]) {
            judged++;
            if (c[i] != a[i] && differ++ == 0)
                first = i;
        }
    if (differ)
        add_row(p, name, SF_PROBE_FAIL, exp,
                "%u of %u registers differ from the entries they copy (first: offset %u, image "
                "%u, entry %u)",
                differ, judged, first, a[first], c[first]);
    else
        add_row(p, name, SF_PROBE_PASS, exp,
                "poll_image_len %u; %u of %u registers steady and equal to their entries", len,
                judged, len);
}

/* The poll image by FC 23 (map version 4): one FC 23 writes the heartbeat and reads
 * poll_image_rw, which agrees with the input-register image read just before and just
 * after it wherever those two agree (the heartbeat echo and age aside: the write changes
 * them); the heartbeat went in; and a write to the read-only copy is refused (02) and
 * changes nothing. Run while the probe holds centre control (heartbeats flowing). */
static void check_poll_image_rw(probe_t *p)
{
    const char *name = "poll image by FC 23 (v4)";
    const char *exp = "FC 23: heartbeat written, poll_image_rw = poll_image; a write to "
                      "poll_image_rw refused (02), nothing changed";
    char ob[64];
    if (p->map_version < 4) {
        add_row(p, name, SF_PROBE_SKIP, exp, "protocol_version %u has no poll_image_rw",
                p->map_version);
        return;
    }
    sf_poll_image_layout_t l;
    uint16_t len = 0, a[125], b[125], c[125];
    if (sf_regmap_image_layout(p->n_sg, p->n_det, &l) != 0 ||
        rd_input(p, addr_of(SF_R_POLL_IMAGE_LEN), 1, &len) != 0 || len != l.len) {
        add_row(p, name, SF_PROBE_FAIL, exp, "poll_image_len %u, the counts give %u", len, l.len);
        return;
    }
    int n = len < 125 ? len : 125;
    uint16_t hb = p->hb++;
    uint16_t rw = addr_of(SF_R_POLL_IMAGE_RW);
    if (rd_input(p, addr_of(SF_R_POLL_IMAGE), n, a) != 0) {
        add_row(p, name, SF_PROBE_FAIL, exp, "poll_image read: %s",
                outcome(-1, errno, ob, sizeof ob));
        return;
    }
    int rc = modbus_write_and_read_registers(p->mb, addr_of(SF_R_HEARTBEAT), 1, &hb, rw, n, b);
    if (rc != n) {
        int err = rc < 0 ? errno : EMBBADDATA;
        recover(p, err);
        add_row(p, name, SF_PROBE_FAIL, exp, "FC 23: %s", outcome(-1, err, ob, sizeof ob));
        return;
    }
    p->last_hb = now_s();
    uint16_t echo = 0;
    if (rd_input(p, addr_of(SF_R_POLL_IMAGE), n, c) != 0 ||
        rd_input(p, addr_of(SF_R_HEARTBEAT_ECHO), 1, &echo) != 0) {
        add_row(p, name, SF_PROBE_FAIL, exp, "read after FC 23: %s",
                outcome(-1, errno, ob, sizeof ob));
        return;
    }
    uint16_t at_echo =
        (uint16_t)(l.status + addr_of(SF_R_HEARTBEAT_ECHO) - addr_of(SF_R_CONTROL_MODE));
    uint16_t at_age =
        (uint16_t)(l.status + addr_of(SF_R_HEARTBEAT_AGE) - addr_of(SF_R_CONTROL_MODE));
    unsigned judged = 0, differ = 0, first = 0;
    for (int i = 0; i < n; i++) {
        if (i == at_echo || i == at_age || a[i] != c[i])
            continue;
        judged++;
        if (b[i] != a[i] && differ++ == 0)
            first = (unsigned)i;
    }
    /* A write to the copy: past the image's length (reads 0) when there is room, else its
     * first register; refused, and the register unchanged. */
    uint16_t off = len < SF_POLL_IMAGE_MAX ? (uint16_t)(SF_POLL_IMAGE_MAX - 1) : 0;
    uint16_t before = 0, after = 0;
    int rd0 = rd_holding(p, (uint16_t)(rw + off), 1, &before);
    int wrc = modbus_write_register(p->mb, (uint16_t)(rw + off), (uint16_t)(before ^ 0x5A5A));
    int werr = wrc < 0 ? errno : 0;
    if (wrc < 0)
        recover(p, werr);
    int rd1 = rd_holding(p, (uint16_t)(rw + off), 1, &after);
    bool refused = wrc < 0 && werr == EMBXILADD;
    bool unchanged = rd0 == 0 && rd1 == 0 && after == before;
    bool ok = differ == 0 && echo == hb && refused && unchanged;
    char wo[64];
    outcome(wrc, werr, wo, sizeof wo);
    if (differ)
        add_row(p, name, SF_PROBE_FAIL, exp,
                "%u of %u registers of the FC 23 image differ from poll_image (first: offset "
                "%u, FC 23 %u, poll_image %u); write to poll_image_rw: %s",
                differ, judged, first, b[first], a[first], wo);
    else
        add_row(p, name, ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp,
                "%d registers, %u steady and equal; heartbeat_echo %u after writing %u; write "
                "to poll_image_rw[%u]: %s, %s",
                n, judged, echo, hb, off, wo, unchanged ? "unchanged" : "CHANGED");
}

/* Read the phase timing block (100-227) into out[128]. */
static int read_timings(probe_t *p, uint16_t *out)
{
    uint16_t a = addr_of(SF_R_PHASE_MIN_GREEN);
    return rd_holding(p, a, 64, out) == 0 && rd_holding(p, (uint16_t)(a + 64), 64, out + 64) == 0
               ? 0
               : -1;
}

/* One refused single-register write of a phase timing field, read back. */
static void check_unsafe_timing(probe_t *p, const char *name, sf_reg_id_t id, uint16_t bad,
                                const char *expected)
{
    uint16_t before[128], after[128];
    char ob[64];
    if (read_timings(p, before) != 0) {
        add_row(p, name, SF_PROBE_FAIL, expected, "timings not readable: %s",
                outcome(-1, errno, ob, sizeof ob));
        return;
    }
    uint16_t a = (uint16_t)(addr_of(id) + p->p1 - 1);
    int rc = wr_reg(p, a, bad);
    int err = errno;
    int rb = read_timings(p, after);
    bool same = rb == 0 && memcmp(before, after, sizeof before) == 0;
    bool ok = rc < 0 && exc_of(err) == 3 && same;
    add_row(p, name, ok ? SF_PROBE_PASS : SF_PROBE_FAIL, expected,
            "write %u to phase %u (holding %u): %s; timings read back %s", bad, p->p1, a,
            outcome(rc, err, ob, sizeof ob), rb ? "failed" : (same ? "unchanged" : "CHANGED"));
}

/* A plan download whose coordinated phases are every configured phase: with more phases
 * than rings two of them share a ring and cannot be green together. */
static void check_conflict_plan(probe_t *p)
{
    const char *exp = "plan download refused (exception 03, plan_dl_error 3), stored plan same";
    char ob[64];
    if (p->n_phases <= p->n_rings) {
        add_row(p, "refuse conflicting plan", SF_PROBE_SKIP, exp,
                "every phase may be concurrent (%u phases, %u rings)", p->n_phases, p->n_rings);
        return;
    }
    uint16_t st[3], before[46], after[46], sel_old;
    if (rd_input(p, addr_of(SF_R_CONTROL_MODE), 3, st) != 0 ||
        rd_holding(p, addr_of(SF_R_PLAN_RD_SELECT), 1, &sel_old) != 0) {
        add_row(p, "refuse conflicting plan", SF_PROBE_FAIL, exp, "status not readable: %s",
                outcome(-1, errno, ob, sizeof ob));
        return;
    }
    uint16_t plan = st[1];
    uint16_t rd0 = addr_of(SF_R_PLAN_RD_NUMBER);
    if (wr_reg(p, addr_of(SF_R_PLAN_RD_SELECT), plan) != 0 || rd_input(p, rd0, 46, before) != 0) {
        add_row(p, "refuse conflicting plan", SF_PROBE_FAIL, exp,
                "plan %u not readable through plan_rd_select: %s", plan,
                outcome(-1, errno, ob, sizeof ob));
        return;
    }
    uint16_t dl[38];
    memset(dl, 0, sizeof dl);
    dl[0] = plan;
    dl[1] = before[1];     /* cycle */
    dl[2] = before[2];     /* offset */
    dl[3] = p->phase_mask; /* coordinated: every phase, so two of one ring */
    dl[4] = before[4];     /* force mode */
    for (int i = 0; i < 16; i++) {
        dl[5 + i] = before[10 + i];  /* splits (610-625) */
        dl[21 + i] = before[30 + i]; /* split modes (630-645) */
    }
    dl[37] = 1; /* commit */
    int rc = wr_regs(p, addr_of(SF_R_PLAN_DL_NUMBER), 38, dl);
    int err = errno;
    uint16_t dlerr = 0xffff;
    int rb = rd_input(p, rd0, 46, after);
    rd_input(p, addr_of(SF_R_PLAN_DL_ERROR), 1, &dlerr);
    bool same = rb == 0 && memcmp(before, after, sizeof before) == 0;
    bool ok = rc < 0 && exc_of(err) == 3 && dlerr == 3 && same;
    add_row(p, "refuse conflicting plan", ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp,
            "plan %u with coordinated phases 0x%04x: %s, plan_dl_error %u; plan read back %s", plan,
            p->phase_mask, outcome(rc, err, ob, sizeof ob), dlerr,
            rb ? "failed" : (same ? "unchanged" : "CHANGED"));
    wr_reg(p, addr_of(SF_R_PLAN_RD_SELECT), sel_old ? sel_old : 1);
}

static void check_bad_mode(probe_t *p)
{
    const char *exp = "mode_command 0 and 9 refused (exception 03), mode_command unchanged";
    uint16_t before, after;
    char o1[64], o2[64];
    if (rd_holding(p, addr_of(SF_R_MODE_COMMAND), 1, &before) != 0) {
        add_row(p, "refuse bad mode command", SF_PROBE_FAIL, exp, "not readable: %s",
                outcome(-1, errno, o1, sizeof o1));
        return;
    }
    int rc1 = wr_reg(p, addr_of(SF_R_MODE_COMMAND), 9);
    int e1 = errno;
    int rc0 = wr_reg(p, addr_of(SF_R_MODE_COMMAND), 0);
    int e0 = errno;
    int rb = rd_holding(p, addr_of(SF_R_MODE_COMMAND), 1, &after);
    bool ok =
        rc1 < 0 && exc_of(e1) == 3 && rc0 < 0 && exc_of(e0) == 3 && rb == 0 && before == after;
    add_row(p, "refuse bad mode command", ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp,
            "9: %s, 0: %s; mode_command %u -> %u", outcome(rc1, e1, o1, sizeof o1),
            outcome(rc0, e0, o2, sizeof o2), before, rb ? 0xffffu : after);
}

/* Writes at addresses with no writable entry: a holding gap and a coil beyond the map. */
static void check_bad_address(probe_t *p)
{
    const char *exp = "writes to a holding gap and past the coils refused (exception 02)";
    char o1[64], o2[64];
    uint16_t gap = (uint16_t)(addr_of(SF_R_FAULT_RESET) + 1); /* 4: between 3 and 10 */
    uint16_t beyond = sf_regmap_table_size(SF_TBL_COIL);
    uint16_t before = 0xffff, after = 0xfffe;
    rd_holding(p, gap, 1, &before);
    int rc1 = wr_reg(p, gap, 1);
    int e1 = errno;
    rd_holding(p, gap, 1, &after);
    int rc2 = modbus_write_bit(p->mb, beyond, 1);
    int e2 = errno;
    if (rc2 < 0)
        recover(p, e2);
    bool ok = rc1 < 0 && exc_of(e1) == 2 && rc2 < 0 && exc_of(e2) == 2 && before == after;
    add_row(p, "refuse bad address", ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp,
            "holding %u: %s (reads %u -> %u); coil %u: %s", gap, outcome(rc1, e1, o1, sizeof o1),
            before, after, beyond, outcome(rc2, e2, o2, sizeof o2));
}

/* Map v2 external detection: a bad enable value and a detector the unit does not have are
 * refused (03) and change nothing; det_input with det_input_enable = 1 becomes the
 * unit's det_presence within a tick or two, 0 again when cleared; the enable is put back
 * as found (so a unit with wired detectors uses them again). */
static void check_ext_detection(probe_t *p)
{
    const char *name = "external detection (v2)";
    const char *exp = "enable 2 and det_input beyond n_det refused (03, unchanged); det_input "
                      "shows in det_presence while enabled";
    if (p->map_version < 2) {
        add_row(p, name, SF_PROBE_SKIP, exp, "protocol_version %u has no det_input",
                p->map_version);
        return;
    }
    if (p->n_det == 0) {
        add_row(p, name, SF_PROBE_SKIP, exp, "the unit has no detectors");
        return;
    }
    char o1[64], o2[64], buf[64];
    uint16_t a_en = addr_of(SF_R_DET_INPUT_ENABLE), a_in = addr_of(SF_R_DET_INPUT);
    uint16_t en0 = 0xffff, en1 = 0xffff;
    uint8_t in0[SF_MAX_DET] = {0}, in1[SF_MAX_DET] = {0};
    int nd = p->n_det > SF_MAX_DET ? SF_MAX_DET : p->n_det;
    if (rd_holding(p, a_en, 1, &en0) != 0 || modbus_read_bits(p->mb, a_in, nd, in0) != nd) {
        add_row(p, name, SF_PROBE_FAIL, exp, "det_input_enable / det_input not readable: %s",
                outcome(-1, errno, buf, sizeof buf));
        return;
    }
    int rc1 = wr_reg(p, a_en, 2);
    int e1 = errno;
    int rc2 = 0, e2 = 0;
    if (nd < SF_MAX_DET) {
        rc2 = modbus_write_bit(p->mb, (uint16_t)(a_in + nd), 1);
        e2 = errno;
        if (rc2 < 0)
            recover(p, e2);
    }
    bool same = rd_holding(p, a_en, 1, &en1) == 0 && modbus_read_bits(p->mb, a_in, nd, in1) == nd &&
                en1 == en0 && memcmp(in0, in1, (size_t)nd) == 0;
    bool refused = rc1 < 0 && exc_of(e1) == 3 && (nd == SF_MAX_DET || (rc2 < 0 && exc_of(e2) == 3));
    /* Drive detector 0 and watch det_presence follow, both ways. */
    uint8_t seen_on = 0xff, seen_off = 0xff;
    bool drove = wr_reg(p, a_en, 1) == 0 && wr_bits(p, a_in, 1, (const uint8_t[]){1}) == 0;
    double until = now_s() + 1.0;
    while (drove && now_s() < until) {
        if (modbus_read_input_bits(p->mb, addr_of(SF_R_DET_PRESENCE), 1, &seen_on) == 1 &&
            seen_on == 1)
            break;
        sleep_s(0.05);
    }
    drove = drove && wr_bits(p, a_in, 1, (const uint8_t[]){0}) == 0;
    until = now_s() + 1.0;
    while (drove && now_s() < until) {
        if (modbus_read_input_bits(p->mb, addr_of(SF_R_DET_PRESENCE), 1, &seen_off) == 1 &&
            seen_off == 0)
            break;
        sleep_s(0.05);
    }
    int rs = wr_reg(p, a_en, en0 <= 1 ? en0 : 0); /* as found */
    bool ok = refused && same && drove && seen_on == 1 && seen_off == 0 && rs == 0;
    add_row(p, name, ok ? SF_PROBE_PASS : SF_PROBE_FAIL, exp,
            "enable=2: %s; det_input[%d]=1: %s; %s; det_presence[0] %u after det_input 1, %u "
            "after 0; enable restored to %u%s",
            outcome(rc1, e1, o1, sizeof o1), nd,
            nd < SF_MAX_DET ? outcome(rc2, e2, o2, sizeof o2) : "n/a",
            same ? "unchanged" : "CHANGED", seen_on, seen_off, en0, rs == 0 ? "" : " (failed)");
}

static void check_fallback(probe_t *p)
{
    const char *exp1 = "without heartbeat: control_mode 0x2x, local_fallback 1";
    const char *exp2 = "heartbeat: local_fallback 0, control_mode back to 0x1x";
    if (p->cfg->no_fallback) {
        add_row(p, "heartbeat loss -> fallback", SF_PROBE_SKIP, exp1, "--no-fallback");
        add_row(p, "heartbeat -> centre control", SF_PROBE_SKIP, exp2, "--no-fallback");
        return;
    }
    p->heartbeat = false;
    double t = wait_mode(p, 2, 1);
    if (t < 0) {
        add_row(p, "heartbeat loss -> fallback", SF_PROBE_FAIL, exp1,
                "after %.0f s: control_mode 0x%02x local_fallback %u heartbeat_age %.1f s",
                p->cfg->max_wait_s, p->control_mode, p->local_fallback, p->heartbeat_age / 10.0);
        p->heartbeat = true;
        return;
    }
    add_row(p, "heartbeat loss -> fallback", p->fault_code == 0x30 ? SF_PROBE_PASS : SF_PROBE_FAIL,
            "without heartbeat: control_mode 0x2x, local_fallback 1, fault_code 0x30",
            "after %.1f s: control_mode 0x%02x, heartbeat_age %.1f s, fault_code 0x%02x", t,
            p->control_mode, p->heartbeat_age / 10.0, p->fault_code);
    p->heartbeat = true;
    p->last_hb = 0;
    t = wait_mode(p, 1, 0);
    add_row(p, "heartbeat -> centre control", t >= 0 ? SF_PROBE_PASS : SF_PROBE_FAIL, exp2,
            t >= 0 ? "after %.1f s: control_mode 0x%02x, local_fallback %u"
                   : "after %.0f s: control_mode 0x%02x, local_fallback %u",
            t >= 0 ? t : p->cfg->max_wait_s, p->control_mode, p->local_fallback);
}

/* One step of the command sequence. */
typedef enum { W_REG, W_REGS, W_BITS } wkind_t;
typedef struct {
    const char *what; /* label */
    wkind_t kind;     /* request type */
    uint16_t addr;    /* first address */
    int n;            /* values */
    uint16_t v[8];    /* register values */
    uint8_t bits[16]; /* coil values */
    bool may_refuse;  /* a conforming unit may answer 03 here */
} step_t;

static int do_step(probe_t *p, const step_t *s)
{
    switch (s->kind) {
    case W_REG:
        return wr_reg(p, s->addr, s->v[0]);
    case W_REGS:
        return wr_regs(p, s->addr, s->n, s->v);
    default:
        return wr_bits(p, s->addr, s->n, s->bits);
    }
}

static step_t mode_step(const char *what, uint16_t m, bool may)
{
    step_t s = {.what = what, .kind = W_REG, .addr = addr_of(SF_R_MODE_COMMAND), .n = 1};
    s.v[0] = m;
    s.may_refuse = may;
    return s;
}

static step_t coils_step(const char *what, sf_reg_id_t id, uint16_t mask, bool may)
{
    step_t s = {.what = what, .kind = W_BITS, .addr = addr_of(id), .n = 16, .may_refuse = may};
    for (int i = 0; i < 16; i++)
        s.bits[i] = (uint8_t)((mask >> i) & 1u);
    return s;
}

static step_t prio_step(const char *what, uint8_t phase, uint16_t type)
{
    step_t s = {.what = what, .kind = W_REGS, .addr = addr_of(SF_R_PRIO_REQ_ID), .n = 6};
    uint16_t v[6] = {PRIO_ID, 1, phase, 50, type, 1};
    memcpy(s.v, v, sizeof v);
    s.may_refuse = true; /* priority may be disabled, or the request refused */
    return s;
}

static void check_sequence(probe_t *p, uint16_t mode0)
{
    uint16_t st[3] = {0};
    rd_input(p, addr_of(SF_R_CONTROL_MODE), 3, st);
    uint16_t plan = st[1] ? st[1] : 1;
    uint16_t m1 = (uint16_t)(1u << (p->p1 - 1)), m2 = (uint16_t)(1u << (p->p2 - 1));
    step_t steps[20];
    int n = 0;
    steps[n++] = mode_step("mode actuated", 2, false);
    steps[n++] = coils_step("vehicle calls", SF_R_PHASE_CALL, p->phase_mask, false);
    steps[n++] = coils_step("ped calls", SF_R_PHASE_PED_CALL, p->phase_mask, false);
    steps[n++] = coils_step("hold", SF_R_PHASE_HOLD, m1, true);
    steps[n++] = coils_step("hold off", SF_R_PHASE_HOLD, 0, true);
    steps[n++] = coils_step("force-off", SF_R_PHASE_FORCE_OFF, m2, true);
    steps[n++] = coils_step("force-off clear", SF_R_PHASE_FORCE_OFF, 0, true);
    step_t ps = {.what = "plan select", .kind = W_REG, .addr = addr_of(SF_R_PLAN_SELECT), .n = 1};
    ps.v[0] = plan;
    steps[n++] = ps;
    steps[n++] = prio_step("priority check-in", p->p1, 1);
    steps[n++] = coils_step("vehicle calls", SF_R_PHASE_CALL, p->phase_mask, false);
    steps[n++] = prio_step("priority check-out", p->p1, 2);
    steps[n++] = mode_step("mode fixed", 1, false);
    steps[n++] = coils_step("force-off", SF_R_PHASE_FORCE_OFF, m1, true);
    steps[n++] = coils_step("force-off clear", SF_R_PHASE_FORCE_OFF, 0, true);
    steps[n++] = mode_step("mode coordinated", 3, true);
    steps[n++] = coils_step("vehicle calls", SF_R_PHASE_CALL, p->phase_mask, false);
    steps[n++] = mode_step("mode all-red", 5, false);
    steps[n++] = mode_step("mode restored", mode0 >= 1 && mode0 <= 6 ? mode0 : 1, false);

    uint32_t s0 = p->samples, c0 = p->conflicts, f0 = p->monitor_faults;
    double t0 = now_s(), gap_max = 0, dt = p->cfg->sequence_s / n;
    unsigned accepted = 0, refused = 0, bad = 0;
    char detail[200] = "";
    size_t dl = 0;
    p->heartbeat = true;
    for (int i = 0; i < n; i++) {
        int rc = do_step(p, &steps[i]);
        int err = errno;
        if (rc == 0) {
            accepted++;
        } else if (exc_of(err) == 3 && steps[i].may_refuse) {
            refused++;
        } else {
            bad++;
            char ob[64];
            if (dl < sizeof detail - 1)
                dl += (size_t)snprintf(detail + dl, sizeof detail - dl, " %s: %s;", steps[i].what,
                                       outcome(rc, err, ob, sizeof ob));
        }
        double end = t0 + dt * (i + 1);
        while (now_s() < end) {
            double before = p->last_sample;
            watch_until(p, now_s() + SAMPLE_S);
            if (p->last_sample - before > gap_max && before >= t0)
                gap_max = p->last_sample - before;
        }
    }
    double span = now_s() - t0;
    uint32_t ns = p->samples - s0;
    p->rep->lamp_samples = ns;
    p->rep->lamp_hz = span > 0 ? ns / span : 0;
    p->rep->lamp_max_gap_s = gap_max;
    add_row(p, "command sequence", bad ? SF_PROBE_FAIL : SF_PROBE_PASS,
            "each command accepted (hold, force-off, coordinated, priority may get 03)",
            "%d commands: %u accepted, %u refused with 03, %u wrong%s", n, accepted, refused, bad,
            detail);
    uint32_t nc = p->conflicts - c0, nf = p->monitor_faults - f0;
    add_row(p, "no conflicting greens", nc || nf || ns == 0 ? SF_PROBE_FAIL : SF_PROBE_PASS,
            p->cfg->ix ? "no sample with two conflicting groups green (scenario conflicts)"
                       : "no sample with more green phases than rings, no fault 0x10",
            "%u samples over %.1f s: %u with conflicting greens%s%s, %u with fault 0x10", ns, span,
            nc, nc ? ": " : "", nc ? p->first_conflict : "", nf);
    add_row(p, "lamp watch >= 10 Hz", p->rep->lamp_hz >= MIN_HZ ? SF_PROBE_PASS : SF_PROBE_FAIL,
            "lamps sampled at 10 Hz or faster during the sequence",
            "%.1f Hz mean, longest gap %.3f s, %u failed reads", p->rep->lamp_hz, gap_max,
            p->sample_errors);
}

/* ---- public ------------------------------------------------------------------------- */

void sf_probe_config_default(sf_probe_config_t *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->unit_id = 1;
    cfg->timeout_s = 1.0;
    cfg->max_wait_s = 120.0;
    cfg->sequence_s = 10.0;
}

const char *sf_probe_result_name(sf_probe_result_t r)
{
    switch (r) {
    case SF_PROBE_PASS:
        return "PASS";
    case SF_PROBE_FAIL:
        return "FAIL";
    case SF_PROBE_SKIP:
        return "SKIP";
    }
    return "?";
}

int sf_probe_run(const sf_probe_config_t *cfg_in, sf_probe_report_t *out)
{
    if (!cfg_in || !out || !cfg_in->host || !cfg_in->port || cfg_in->unit_id < 0 ||
        cfg_in->unit_id > 247 || cfg_in->timeout_s < 0 || cfg_in->max_wait_s < 0 ||
        cfg_in->sequence_s < 0) {
        errno = EINVAL;
        return -1;
    }
    sf_probe_config_t cfg = *cfg_in;
    if (cfg.timeout_s == 0)
        cfg.timeout_s = 1.0;
    if (cfg.max_wait_s == 0)
        cfg.max_wait_s = 120.0;
    if (cfg.sequence_s == 0)
        cfg.sequence_s = 10.0;
    memset(out, 0, sizeof *out);
    probe_t p = {.cfg = &cfg, .rep = out};
    char port[8];
    snprintf(port, sizeof port, "%u", cfg.port);
    p.mb = modbus_new_tcp_pi(cfg.host, port);
    if (!p.mb) {
        int err = errno;
        add_row(&p, "connect", SF_PROBE_FAIL, "Modbus TCP connection", "%s:%u: %s", cfg.host,
                cfg.port, modbus_strerror(err));
        errno = err;
        return -1;
    }
    modbus_set_slave(p.mb, cfg.unit_id);
    uint32_t sec = (uint32_t)cfg.timeout_s;
    modbus_set_response_timeout(p.mb, sec, (uint32_t)((cfg.timeout_s - sec) * 1e6));
    if (modbus_connect(p.mb) != 0) {
        int err = errno;
        add_row(&p, "connect", SF_PROBE_FAIL, "Modbus TCP connection", "%s:%u: %s", cfg.host,
                cfg.port, modbus_strerror(err));
        modbus_free(p.mb);
        errno = err;
        return -1;
    }
    if (check_identity(&p) == 0) {
        uint16_t mode0 = 1;
        rd_holding(&p, addr_of(SF_R_MODE_COMMAND), 1, &mode0);
        check_readable(&p);
        check_unsafe_timing(&p, "refuse yellow < 3 s", SF_R_PHASE_YELLOW, 20,
                            "yellow 2.0 s refused (exception 03), timings unchanged");
        check_unsafe_timing(&p, "refuse min green < 5 s", SF_R_PHASE_MIN_GREEN, 4,
                            "min green 4 s refused (exception 03), timings unchanged");
        check_conflict_plan(&p);
        check_bad_mode(&p);
        check_bad_address(&p);
        check_ext_detection(&p);
        check_poll_image(&p);
        /* Centre control first: a unit may still be in its start-up sequence. */
        p.heartbeat = true;
        double t = wait_mode(&p, 1, 0);
        add_row(&p, "centre control", t >= 0 ? SF_PROBE_PASS : SF_PROBE_FAIL,
                "with heartbeats: control_mode 0x1x (after any start-up sequence)",
                t >= 0 ? "control_mode 0x%02x after %.1f s" : "control_mode 0x%02x after %.0f s",
                p.control_mode, t >= 0 ? t : cfg.max_wait_s);
        check_poll_image_rw(&p);
        check_fallback(&p);
        check_sequence(&p, mode0);
    }
    out->conflicts_seen = p.conflicts;
    modbus_close(p.mb);
    modbus_free(p.mb);
    return 0;
}

int sf_probe_write_table(FILE *out, const sf_probe_report_t *rep)
{
    if (!out || !rep) {
        errno = EINVAL;
        return -1;
    }
    fprintf(out, "%-28s %-4s  %s\n", "check", "", "expected / seen");
    for (size_t i = 0; i < rep->n_rows; i++) {
        const sf_probe_row_t *r = &rep->rows[i];
        fprintf(out, "%-28s %-4s  expected: %s\n%-34s seen: %s\n", r->name,
                sf_probe_result_name(r->result), r->expected, "", r->seen);
    }
    fprintf(out, "%zu checks, %zu failed: %s\n", rep->n_rows, rep->n_failed,
            rep->n_failed ? "NOT CONFORMING" : "conforming");
    return ferror(out) ? (errno = EIO, -1) : 0;
}
