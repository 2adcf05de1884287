/* tests/test_record.c — recordings: format round trip, torn tails, damage detection, and
 * `sigflow record` / `sigflow replay` against a real forwarder over TCP. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_child.h"

#include <sys/stat.h>
#include <zmq.h>

#include "bus.h"
#include "record.h"

#define N_MSGS 300

static char *tmp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/sf_test_record_%d_%s.rec", (int)getpid(), tag);
    return buf;
}

/* Encode Step k into buf; returns the length. */
static size_t encode_step(uint64_t k, uint8_t *buf, size_t cap)
{
    Sfbus__Step st = SFBUS__STEP__INIT;
    st.k = k;
    st.step_ds = 1;
    st.t_ds = k;
    st.tod_ds = (uint32_t)(k % 864000u);
    long n = sf_bus_encode(&st.base, buf, cap);
    cr_assert_gt(n, 0, "encode step %llu: %s", (unsigned long long)k, sf_bus_strerror(errno));
    return (size_t)n;
}

/* Write n step records into path; returns the file offsets of each record's start in
 * offs (n + 1 entries: the last one is the file size). */
static void write_steps(const char *path, int n, long *offs)
{
    sf_rec_writer_t *w = sf_rec_writer_new(path);
    cr_assert_not_null(w, "writer: %s", strerror(errno));
    uint8_t buf[256];
    long off = SF_REC_HEADER;
    for (int i = 0; i < n; i++) {
        size_t len = encode_step((uint64_t)i, buf, sizeof buf);
        offs[i] = off;
        cr_assert_eq(sf_rec_write(w, (uint64_t)i * 1000000u, "step", 4, buf, len), 0);
        off += SF_REC_FRAME_HEAD + SF_REC_BODY_HEAD + 4 + (long)len;
    }
    offs[n] = off;
    cr_assert_eq(sf_rec_writer_count(w), (uint64_t)n);
    cr_assert_eq(sf_rec_writer_destroy(&w), 0);
    cr_assert_null(w);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, off);
}

/* Read path; counts good records whose content matches step i, returns the final status
 * (0 clean end, or the errno of the failure) with index/offset of the failure. */
static int read_steps(const char *path, int *good, uint64_t *idx, uint64_t *off, bool synth)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    sf_rec_reader_t *r = sf_rec_reader_new(f);
    if (!r) {
        int e = errno;
        fclose(f);
        return e;
    }
    cr_assert_eq(sf_rec_reader_bus_version(r), SF_BUS_VERSION);
    sf_rec_t rec;
    int rc, status = 0;
    uint8_t buf[256];
    *good = 0;
    while ((rc = sf_rec_next(r, &rec)) == 1) {
        size_t len = encode_step((uint64_t)*good, buf, sizeof buf);
        cr_assert_eq(rec.len, len);
        cr_assert_eq(memcmp(rec.payload, buf, len), 0, "record %d payload", *good);
        cr_assert_eq(rec.topic_len, 4);
        cr_assert_eq(memcmp(rec.topic, "step", 4), 0);
        if (synth)
            cr_assert_eq(rec.t_ns, (uint64_t)*good * 1000000u);
        (*good)++;
    }
    if (rc < 0) {
        status = errno;
        cr_assert_neq(status, 0);
        /* the reader stays at its error */
        cr_assert_eq(sf_rec_next(r, &rec), -1);
        cr_assert_eq(errno, status);
    }
    *idx = sf_rec_reader_index(r);
    *off = sf_rec_reader_offset(r);
    sf_rec_reader_destroy(&r);
    cr_assert_null(r);
    fclose(f);
    return status;
}

CHILD_SUITE(record);

Test(record, round_trip)
{
    char path[128];
    tmp_path(path, sizeof path, "rt");
    long offs[51];
    write_steps(path, 50, offs);
    int good;
    uint64_t idx, off;
    cr_assert_eq(read_steps(path, &good, &idx, &off, true), 0);
    cr_assert_eq(good, 50);
    unlink(path);
}

Test(record, bad_arguments_refused)
{
    char path[128];
    tmp_path(path, sizeof path, "args");
    sf_rec_writer_t *w = sf_rec_writer_new(path);
    cr_assert_not_null(w);
    char topic[SF_BUS_TOPIC_MAX + 2];
    memset(topic, 'a', sizeof topic);
    cr_assert_eq(sf_rec_write(w, 0, topic, 0, "x", 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_rec_write(w, 0, topic, SF_BUS_TOPIC_MAX + 1, "x", 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_rec_writer_count(w), 0);
    cr_assert_eq(sf_rec_writer_destroy(&w), 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, SF_REC_HEADER, "refused writes change nothing");
    cr_assert_null(sf_rec_writer_new("/nonexistent-dir/x.rec"));
    cr_assert_eq(errno, ENOENT);
    unlink(path);
}

Test(record, header_checked)
{
    char path[128];
    tmp_path(path, sizeof path, "hdr");
    long offs[3];
    int good;
    uint64_t idx, off;
    write_steps(path, 2, offs);
    cr_assert_eq(truncate(path, 10), 0);
    cr_assert_eq(read_steps(path, &good, &idx, &off, true), SF_REC_EMAGIC);
    FILE *f = fopen(path, "wb");
    fputs("{\"version\": 1}\n", f);
    fclose(f);
    cr_assert_eq(read_steps(path, &good, &idx, &off, true), SF_REC_EMAGIC);
    write_steps(path, 2, offs);
    f = fopen(path, "r+b");
    fseek(f, 8, SEEK_SET);
    fputc(99, f); /* format version 99 */
    fclose(f);
    cr_assert_eq(read_steps(path, &good, &idx, &off, true), SF_REC_EFORMAT);
    unlink(path);
}

/* Truncating at every offset inside the last record yields every earlier record and flags
 * the tail; truncating exactly at a boundary is a clean end. */
Test(record, truncated_tail_at_every_offset)
{
    char path[128];
    tmp_path(path, sizeof path, "trunc");
    enum { N = 20 };
    long offs[N + 1];
    for (long cut = 0;; cut++) {
        write_steps(path, N, offs);
        long at = offs[N - 1] + cut;
        if (at > offs[N])
            break;
        cr_assert_eq(truncate(path, at), 0);
        int good;
        uint64_t idx, off;
        int st = read_steps(path, &good, &idx, &off, true);
        if (at == offs[N - 1] || at == offs[N]) {
            cr_assert_eq(st, 0, "cut at %ld: clean end expected, got %s", at, sf_rec_strerror(st));
            cr_assert_eq(good, at == offs[N] ? N : N - 1);
        } else {
            cr_assert_eq(st, SF_REC_ETAIL, "cut at %ld: got %s", at, sf_rec_strerror(st));
            cr_assert_eq(good, N - 1, "cut at %ld: %d records", at, good);
            cr_assert_eq(idx, (uint64_t)(N - 1));
            cr_assert_eq(off, (uint64_t)offs[N - 1]);
        }
    }
    unlink(path);
}

/* Flipping any byte of a record is detected: in the middle as damage at that record's index
 * and offset, in the last record as a torn tail; earlier records are all returned. */
Test(record, flipped_bytes_detected)
{
    char path[128];
    tmp_path(path, sizeof path, "flip");
    enum { N = 6 };
    long offs[N + 1];
    write_steps(path, N, offs);
    for (int k = 2; k < N; k += N - 3) { /* record 2 (middle) and N-1 (last) */
        for (long at = offs[k]; at < offs[k + 1]; at++) {
            for (int bit = 0; bit < 8; bit += 7) {
                write_steps(path, N, offs);
                FILE *f = fopen(path, "r+b");
                fseek(f, at, SEEK_SET);
                int c = fgetc(f);
                fseek(f, at, SEEK_SET);
                fputc(c ^ (1 << bit), f);
                fclose(f);
                int good;
                uint64_t idx, off;
                int st = read_steps(path, &good, &idx, &off, true);
                /* The last record's body is a torn tail; a damaged length guard cannot be
                 * told from damage in the middle, so it is reported as damage. */
                if (k == N - 1)
                    cr_assert(st == SF_REC_ETAIL || st == SF_REC_ECORRUPT, "flip at %ld bit %d: %s",
                              at, bit, sf_rec_strerror(st));
                else
                    cr_assert_eq(st, SF_REC_ECORRUPT, "flip at %ld bit %d: %s", at, bit,
                                 sf_rec_strerror(st));
                cr_assert_eq(good, k);
                cr_assert_eq(idx, (uint64_t)k);
                cr_assert_eq(off, (uint64_t)offs[k]);
            }
        }
    }
    unlink(path);
}

/* ---- end to end over a real forwarder ---- */

typedef struct {
    sf_bus_forwarder_t *fw;
    void *ctx;
    void *xpub; /* the test's publisher: an XPUB connected to the forwarder's XSUB, so the
                 * recorder's subscription arriving upstream is the readiness handshake */
} bus_t;

static void bus_start(bus_t *b)
{
    b->ctx = zmq_ctx_new();
    b->fw = sf_bus_forwarder_new(b->ctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
    cr_assert_not_null(b->fw, "forwarder: %s", sf_bus_strerror(errno));
    b->xpub = zmq_socket(b->ctx, ZMQ_XPUB);
    int hwm = 100000;
    zmq_setsockopt(b->xpub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    cr_assert_eq(zmq_connect(b->xpub, sf_bus_forwarder_pub_endpoint(b->fw)), 0);
}

/* Wait for a subscription message on the test's XPUB. */
static void bus_wait_subscriber(bus_t *b)
{
    zmq_pollitem_t it = {b->xpub, 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&it, 1, 20000), 1, "no subscription reached the publisher");
    uint8_t buf[128];
    cr_assert_geq(zmq_recv(b->xpub, buf, sizeof buf, 0), 1);
    cr_assert_eq(buf[0], 1);
}

static void bus_stop(bus_t *b)
{
    int linger = 0;
    zmq_setsockopt(b->xpub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(b->xpub);
    sf_bus_forwarder_destroy(&b->fw);
    (void)sf_bus_ctx_term(b->ctx, SF_BUS_CTX_TERM_MS);
}

static void send_step(void *sock, uint64_t k)
{
    uint8_t buf[256];
    size_t len = encode_step(k, buf, sizeof buf);
    cr_assert_eq(zmq_send(sock, "step", 4, ZMQ_SNDMORE), 4);
    cr_assert_eq(zmq_send(sock, buf, len, 0), (int)len);
}

/* Value of "key=" in text up to the next blank. */
static void field_of(const char *text, const char *key, char *out, size_t cap)
{
    const char *p = strstr(text, key);
    cr_assert_not_null(p, "'%s' not in: %s", key, text);
    p += strlen(key);
    size_t n = strcspn(p, " \n");
    cr_assert_lt(n, cap);
    memcpy(out, p, n);
    out[n] = 0;
}

Test(record, record_then_replay_same_bytes_in_order, .timeout = 90)
{
    char path[128];
    tmp_path(path, sizeof path, "e2e");
    bus_t b;
    bus_start(&b);
    child_t rec;
    char *rargv[] = {"sigflow", "record", "--bus", (char *)sf_bus_forwarder_sub_endpoint(b.fw),
                     "--out",   path,     NULL};
    cr_assert_eq(child_start(&rec, rargv), 0);
    cr_assert(child_wait_err(&rec, "ready record", 20), "recorder: %s", rec.err);
    bus_wait_subscriber(&b);
    for (int i = 0; i < N_MSGS; i++)
        send_step(b.xpub, (uint64_t)i);
    /* The recorder is done once the file holds every record: watch its size. */
    long want = SF_REC_HEADER;
    uint8_t tmp[256];
    for (int i = 0; i < N_MSGS; i++)
        want += SF_REC_FRAME_HEAD + SF_REC_BODY_HEAD + 4 +
                (long)encode_step((uint64_t)i, tmp, sizeof tmp);
    double end = child_now() + 30;
    struct stat sb = {0};
    while (child_now() < end && (stat(path, &sb) != 0 || sb.st_size < want))
        child_pump(&rec, 20);
    cr_assert_eq(sb.st_size, want, "recording is %ld bytes, expected %ld", (long)sb.st_size, want);
    kill(rec.pid, SIGINT);
    cr_assert_eq(child_finish(&rec, 20), 0, "recorder: %s", rec.err);
    cr_assert(strstr(rec.err, "300 messages recorded"), "%s", rec.err);

    int good;
    FILE *f = fopen(path, "rb");
    sf_rec_reader_t *r = sf_rec_reader_new(f);
    cr_assert_not_null(r);
    sf_rec_t rr;
    uint64_t prev_t = 0;
    int rc;
    for (good = 0; (rc = sf_rec_next(r, &rr)) == 1; good++) {
        size_t len = encode_step((uint64_t)good, tmp, sizeof tmp);
        cr_assert_eq(rr.len, len);
        cr_assert_eq(memcmp(rr.payload, tmp, len), 0, "message %d differs", good);
        cr_assert_geq(rr.t_ns, prev_t, "receive times are monotonic");
        prev_t = rr.t_ns;
    }
    cr_assert_eq(rc, 0, "recording ends cleanly after SIGINT: %s", sf_rec_strerror(errno));
    cr_assert_eq(good, N_MSGS);
    sf_rec_reader_destroy(&r);
    fclose(f);

    /* Replay, at full speed and at 20x, to a subscriber: the same bytes in the same order. */
    const char *speeds[2][2] = {{"--max", NULL}, {"--speed", "20"}};
    for (int s = 0; s < 2; s++) {
        child_t rp;
        char *pargv[] = {"sigflow",
                         "replay",
                         path,
                         "--pub",
                         "tcp://127.0.0.1:*",
                         "--wait",
                         "1",
                         (char *)speeds[s][0],
                         (char *)speeds[s][1],
                         NULL};
        cr_assert_eq(child_start(&rp, pargv), 0);
        cr_assert(child_wait_err(&rp, "ready replay", 20), "replay: %s", rp.err);
        char ep[SF_BUS_ENDPOINT_MAX];
        field_of(rp.err, "pub=", ep, sizeof ep);
        const char *all[] = {""};
        void *sub = sf_bus_sub_new(b.ctx, ep, all, 1, 10000);
        cr_assert_not_null(sub);
        int to = 20000;
        zmq_setsockopt(sub, ZMQ_RCVTIMEO, &to, sizeof to);
        for (int i = 0; i < N_MSGS; i++) {
            sf_bus_rx_t rx = {0};
            char why[128] = "";
            cr_assert_eq(sf_bus_recv(sub, &rx, 0, why, sizeof why), 0, "replay msg %d: %s %s", i,
                         sf_bus_strerror(errno), why);
            cr_assert_eq(rx.type, SF_BUS_STEP);
            uint8_t got[256];
            long gl = sf_bus_encode(rx.msg, got, sizeof got);
            size_t len = encode_step((uint64_t)i, tmp, sizeof tmp);
            cr_assert_eq((size_t)gl, len);
            cr_assert_eq(memcmp(got, tmp, len), 0, "replayed message %d differs", i);
            sf_bus_rx_clear(&rx);
        }
        cr_assert_eq(child_finish(&rp, 30), 0, "replay: %s", rp.err);
        cr_assert(strstr(rp.err, "300 messages played"), "%s", rp.err);
        sf_bus_close(&sub);
    }
    bus_stop(&b);
    unlink(path);
}

Test(record, sigkill_leaves_readable_file, .timeout = 90)
{
    char path[128];
    tmp_path(path, sizeof path, "kill");
    bus_t b;
    bus_start(&b);
    child_t rec;
    char *rargv[] = {"sigflow", "record", "--bus", (char *)sf_bus_forwarder_sub_endpoint(b.fw),
                     "--out",   path,     NULL};
    cr_assert_eq(child_start(&rec, rargv), 0);
    cr_assert(child_wait_err(&rec, "ready record", 20), "recorder: %s", rec.err);
    bus_wait_subscriber(&b);
    /* Keep publishing while the recorder writes; kill it once it has written some. */
    uint64_t k = 0;
    struct stat sb = {0};
    double end = child_now() + 30;
    while (child_now() < end && (stat(path, &sb) != 0 || sb.st_size < 20000)) {
        for (int i = 0; i < 50; i++)
            send_step(b.xpub, k++);
        child_pump(&rec, 1);
    }
    cr_assert_geq(sb.st_size, 20000);
    kill(rec.pid, SIGKILL);
    cr_assert_eq(child_finish(&rec, 20), -1);
    int good = 0; /* read_steps leaves it unset on some errors (gcc -O3 maybe-uninitialized) */
    uint64_t idx, off;
    int st = read_steps(path, &good, &idx, &off, false);
    cr_assert(st == 0 || st == SF_REC_ETAIL, "after SIGKILL: %s", sf_rec_strerror(st));
    cr_assert_gt(good, 100);
    cr_assert_leq((uint64_t)good, k);
    bus_stop(&b);
    unlink(path);
}

Test(record, cli_errors)
{
    child_t c;
    char *a1[] = {"sigflow", "record", "--out", "/tmp/x.rec", NULL};
    cr_assert_eq(child_run(&c, a1, 20), 2);
    char *a2[] = {"sigflow", "replay", "/nonexistent.rec", NULL};
    cr_assert_eq(child_run(&c, a2, 20), 1);
    cr_assert(strstr(c.err, "/nonexistent.rec"), "%s", c.err);
    char *a3[] = {"sigflow", "replay", "x.rec", "--speed", "0", NULL};
    cr_assert_eq(child_run(&c, a3, 20), 2);
    char *a4[] = {"sigflow", "replay", SIGFLOW_TESTDATA "/minimal.json", "--max", NULL};
    cr_assert_eq(child_run(&c, a4, 20), 1);
    cr_assert(strstr(c.err, "not a sigflow recording"), "%s", c.err);
}
