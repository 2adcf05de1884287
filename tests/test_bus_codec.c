/* tests/test_bus_codec.c — every bus message round-trips; anything else is refused. */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bus_codec.h"

/* Under ASan+UBSan the random-input loops run fewer seeds (still hundreds per type). */
static int scale(int n)
{
    return getenv("SIGFLOW_SANITIZED") ? n / 4 : n;
}

/* xorshift64*: deterministic bytes for the garbage tests. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* One populated message of each type, every field non-default where possible. The arrays
 * live in this struct so the messages can point at them. */
typedef struct {
    Sfbus__Hello hello;
    Sfbus__Welcome welcome;
    Sfbus__Step step;
    Sfbus__DetectorInputs det;
    uint32_t det_counts[5];
    Sfbus__LampStates lamps;
    uint8_t lamp_codes[4];
    uint32_t remaining[4];
    Sfbus__Done done;
    Sfbus__TransitCheckIn tin;
    Sfbus__TransitCheckOut tout;
    Sfbus__VehicleSnapshot snap;
    uint32_t v_id[3], v_link[3], v_lane[3], v_type[3];
    float v_pos[3], v_speed[3];
    int32_t v_line[3];
    Sfbus__ControllerEvent event;
    Sfbus__RunSummary summary;
    Sfbus__ViewCommand cmd;
    Sfbus__Bye bye;
} samples_t;

static void samples_init(samples_t *s)
{
    memset(s, 0, sizeof *s);
    s->hello = (Sfbus__Hello)SFBUS__HELLO__INIT;
    s->hello.name = "controller";
    s->hello.role = SFBUS__ROLE__ROLE_CONTROLLER;
    s->hello.lockstep = true;
    s->hello.instance = 0x1234567890abcdefull;
    s->hello.welcomed = true;
    s->hello.pid = 4242;

    s->welcome = (Sfbus__Welcome)SFBUS__WELCOME__INIT;
    s->welcome.name = "units";
    s->welcome.instance = 77;
    s->welcome.step_ds = 1;
    s->welcome.start_k = 5;
    s->welcome.scenario = "xiantao-corridor";
    s->welcome.seed = 99;

    s->step = (Sfbus__Step)SFBUS__STEP__INIT;
    s->step.k = 36000;
    s->step.t_ds = 36000;
    s->step.tod_ds = 252000 + 36000;
    s->step.step_ds = 1;

    s->det = (Sfbus__DetectorInputs)SFBUS__DETECTOR_INPUTS__INIT;
    s->det.k = 12;
    s->det.ix = 3;
    s->det.ix_id = "I4";
    s->det.presence = 0x8000000000000005ull;
    for (int i = 0; i < 5; i++)
        s->det_counts[i] = (uint32_t)i * 2u;
    s->det.counts = s->det_counts;
    s->det.n_counts = 5;

    s->lamps = (Sfbus__LampStates)SFBUS__LAMP_STATES__INIT;
    s->lamps.k = 12;
    s->lamps.ix = 3;
    s->lamp_codes[0] = 0x20;
    s->lamp_codes[1] = 0x10;
    s->lamp_codes[2] = 0x30;
    s->lamp_codes[3] = 0x40;
    s->lamps.lamps.data = s->lamp_codes;
    s->lamps.lamps.len = 4;
    for (int i = 0; i < 4; i++)
        s->remaining[i] = 100u + (uint32_t)i;
    s->lamps.remaining_ds = s->remaining;
    s->lamps.n_remaining_ds = 4;
    s->lamps.control_mode = 0x12;
    s->lamps.fault_code = 0x10;
    s->lamps.greens = 0x22;
    s->lamps.yellows = 0x0;
    s->lamps.reds = 0xDD;
    s->lamps.plan = 2;
    s->lamps.cycle_timer_ds = 345;

    s->done = (Sfbus__Done)SFBUS__DONE__INIT;
    s->done.k = 12;
    s->done.name = "units";

    s->tin = (Sfbus__TransitCheckIn)SFBUS__TRANSIT_CHECK_IN__INIT;
    s->tin.k = 100;
    s->tin.bus_id = "B1-004";
    s->tin.line = "B1";
    s->tin.ix = 2;
    s->tin.approach = 7;
    s->tin.movement = 1;
    s->tin.eta_s = 12.5f;
    s->tin.lateness_s = -30.25f;

    s->tout = (Sfbus__TransitCheckOut)SFBUS__TRANSIT_CHECK_OUT__INIT;
    s->tout.k = 150;
    s->tout.bus_id = "B2-001";
    s->tout.line = "B2";
    s->tout.ix = 5;
    s->tout.approach = 9;
    s->tout.movement = 2;
    s->tout.lateness_s = 45.0f;

    s->snap = (Sfbus__VehicleSnapshot)SFBUS__VEHICLE_SNAPSHOT__INIT;
    s->snap.k = 10;
    s->snap.t_ds = 10;
    for (int i = 0; i < 3; i++) {
        s->v_id[i] = 1000u + (uint32_t)i;
        s->v_link[i] = (uint32_t)i;
        s->v_lane[i] = (uint32_t)i % 2u;
        s->v_pos[i] = 10.5f * (float)i;
        s->v_speed[i] = 13.9f - (float)i;
        s->v_type[i] = (uint32_t)i;
        s->v_line[i] = i == 2 ? 1 : -1;
    }
    s->snap.n_id = s->snap.n_link = s->snap.n_lane = s->snap.n_pos_m = 3;
    s->snap.n_speed_mps = s->snap.n_type = s->snap.n_line = 3;
    s->snap.id = s->v_id;
    s->snap.link = s->v_link;
    s->snap.lane = s->v_lane;
    s->snap.pos_m = s->v_pos;
    s->snap.speed_mps = s->v_speed;
    s->snap.type = s->v_type;
    s->snap.line = s->v_line;

    s->event = (Sfbus__ControllerEvent)SFBUS__CONTROLLER_EVENT__INIT;
    s->event.k = 3;
    s->event.t_ds = 3;
    s->event.kind = SFBUS__EVENT_KIND__EVENT_PRIORITY_DECISION;
    s->event.ix = 1;
    s->event.request_id = 17;
    s->event.detail = "granted: green extension 6.0 s";

    s->summary = (Sfbus__RunSummary)SFBUS__RUN_SUMMARY__INIT;
    s->summary.k = 36000;
    s->summary.sim_s = 3600.0;
    s->summary.report_json = "{\"scenario\":\"single\"}";

    s->cmd = (Sfbus__ViewCommand)SFBUS__VIEW_COMMAND__INIT;
    s->cmd.cmd = SFBUS__COMMAND__CMD_SPEED;
    s->cmd.speed_factor = 10.0;

    s->bye = (Sfbus__Bye)SFBUS__BYE__INIT;
    s->bye.name = "sim";
    s->bye.reason = "end of run";
    s->bye.k = 36000;
}

static ProtobufCMessage *sample(samples_t *s, sf_bus_type_t t)
{
    switch (t) {
    case SF_BUS_HELLO:
        return &s->hello.base;
    case SF_BUS_WELCOME:
        return &s->welcome.base;
    case SF_BUS_STEP:
        return &s->step.base;
    case SF_BUS_DET:
        return &s->det.base;
    case SF_BUS_LAMPS:
        return &s->lamps.base;
    case SF_BUS_DONE:
        return &s->done.base;
    case SF_BUS_TRANSIT_IN:
        return &s->tin.base;
    case SF_BUS_TRANSIT_OUT:
        return &s->tout.base;
    case SF_BUS_SNAP:
        return &s->snap.base;
    case SF_BUS_EVENT:
        return &s->event.base;
    case SF_BUS_SUMMARY:
        return &s->summary.base;
    case SF_BUS_CMD:
        return &s->cmd.base;
    case SF_BUS_BYE:
        return &s->bye.base;
    case SF_BUS_N_TYPES:
        break;
    }
    return NULL;
}

/* Encode a message of every type; buffers owned by the caller (free each). */
static long encode_alloc(const ProtobufCMessage *m, uint8_t **out)
{
    size_t n = sf_bus_encoded_size(m);
    cr_assert_gt(n, 0);
    *out = malloc(n);
    cr_assert_not_null(*out);
    long len = sf_bus_encode(m, *out, n);
    cr_assert_eq(len, (long)n, "encode %s: %s", sf_bus_descriptor(sf_bus_type_of(m))->name,
                 sf_bus_strerror(errno));
    return len;
}

Test(bus_codec, every_type_round_trips_byte_identical)
{
    samples_t s;
    samples_init(&s);
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        ProtobufCMessage *m = sample(&s, (sf_bus_type_t)t);
        uint8_t *buf;
        long len = encode_alloc(m, &buf);
        char why[128];
        ProtobufCMessage *d = sf_bus_decode((sf_bus_type_t)t, buf, (size_t)len, why, sizeof why);
        cr_assert_not_null(d, "decode type %d: %s %s", t, sf_bus_strerror(errno), why);
        cr_assert_eq(sf_bus_type_of(d), t);
        /* Re-encoding the decoded message gives the same bytes: every field survived. */
        uint8_t *buf2;
        long len2 = encode_alloc(d, &buf2);
        cr_assert_eq(len2, len);
        cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0, "type %d differs after round trip", t);
        sf_bus_msg_destroy(&d);
        cr_assert_null(d);
        sf_bus_msg_destroy(&d); /* safe twice */
        free(buf);
        free(buf2);
    }
}

Test(bus_codec, decoded_fields_match)
{
    samples_t s;
    samples_init(&s);
    uint8_t buf[1024];
    long len = sf_bus_encode(&s.lamps.base, buf, sizeof buf);
    cr_assert_gt(len, 0);
    Sfbus__LampStates *l =
        (Sfbus__LampStates *)sf_bus_decode(SF_BUS_LAMPS, buf, (size_t)len, NULL, 0);
    cr_assert_not_null(l);
    cr_assert_eq(l->version, SF_BUS_VERSION); /* stamped by the encoder */
    cr_assert_eq(l->lamps.len, 4);
    cr_assert_eq(memcmp(l->lamps.data, s.lamp_codes, 4), 0);
    cr_assert_eq(l->remaining_ds[3], 103);
    cr_assert_eq(l->greens, 0x22);
    cr_assert_eq(l->cycle_timer_ds, 345);
    sf_bus_msg_destroy((ProtobufCMessage **)&l);

    len = sf_bus_encode(&s.snap.base, buf, sizeof buf);
    Sfbus__VehicleSnapshot *v =
        (Sfbus__VehicleSnapshot *)sf_bus_decode(SF_BUS_SNAP, buf, (size_t)len, NULL, 0);
    cr_assert_not_null(v);
    cr_assert_eq(v->n_id, 3);
    cr_assert_eq(v->id[2], 1002);
    cr_assert_float_eq(v->pos_m[2], 21.0f, 1e-6);
    cr_assert_eq(v->line[0], -1);
    cr_assert_eq(v->line[2], 1);
    sf_bus_msg_destroy((ProtobufCMessage **)&v);

    len = sf_bus_encode(&s.tin.base, buf, sizeof buf);
    Sfbus__TransitCheckIn *ti =
        (Sfbus__TransitCheckIn *)sf_bus_decode(SF_BUS_TRANSIT_IN, buf, (size_t)len, NULL, 0);
    cr_assert_not_null(ti);
    cr_assert_str_eq(ti->bus_id, "B1-004");
    cr_assert_float_eq(ti->lateness_s, -30.25f, 1e-6);
    sf_bus_msg_destroy((ProtobufCMessage **)&ti);
}

Test(bus_codec, zmq_msg_encoding_matches_buffer)
{
    samples_t s;
    samples_init(&s);
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        ProtobufCMessage *m = sample(&s, (sf_bus_type_t)t);
        uint8_t buf[1024];
        long len = sf_bus_encode(m, buf, sizeof buf);
        zmq_msg_t zm;
        cr_assert_eq(sf_bus_encode_zmq(m, &zm), 0);
        cr_assert_eq(zmq_msg_size(&zm), (size_t)len);
        cr_assert_eq(memcmp(zmq_msg_data(&zm), buf, (size_t)len), 0);
        zmq_msg_close(&zm);
    }
}

Test(bus_codec, topics)
{
    samples_t s;
    samples_init(&s);
    char topic[SF_BUS_TOPIC_MAX + 1];
    cr_assert_eq(sf_bus_topic_of(&s.welcome.base, topic, sizeof topic), 13);
    cr_assert_str_eq(topic, "welcome.units");
    cr_assert_eq(sf_bus_type_of_topic(topic, strlen(topic)), SF_BUS_WELCOME);
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        cr_assert_gt(sf_bus_topic_of(sample(&s, (sf_bus_type_t)t), topic, sizeof topic), 0);
        cr_assert_eq(sf_bus_type_of_topic(topic, strlen(topic)), t, "topic %s", topic);
    }
    cr_assert_str_eq(sf_bus_topic(SF_BUS_TRANSIT_OUT), "transit.out");
    /* Exact match only: a prefix or an extension of a topic is not that topic. */
    const char *bad[] = {"", "ste", "steps", "welcome", "welcome.", "lamp", "transit", "xyz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(sf_bus_type_of_topic(bad[i], strlen(bad[i])), -1, "'%s'", bad[i]);
        cr_assert_eq(errno, SF_BUS_ETOPIC);
    }
    cr_assert_eq(sf_bus_topic_of(&s.welcome.base, topic, 5), -1);
    cr_assert_eq(errno, SF_BUS_ESPACE);
    cr_assert_null(sf_bus_topic(SF_BUS_N_TYPES));
}

static bool is_decode_error(int e)
{
    return e == SF_BUS_EMALFORMED || e == SF_BUS_ETRAILER || e == SF_BUS_EVERSION ||
           e == SF_BUS_EFIELD;
}

Test(bus_codec, garbage_is_refused_for_every_type)
{
    uint8_t buf[512];
    int seeds = scale(2000);
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        for (int seed = 1; seed <= seeds; seed++) {
            uint64_t st = (uint64_t)seed * 0x9E3779B97F4A7C15ull + (uint64_t)t;
            size_t len = (size_t)(rnd(&st) % sizeof buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd(&st);
            errno = 0;
            ProtobufCMessage *m = sf_bus_decode((sf_bus_type_t)t, buf, len, NULL, 0);
            cr_assert_null(m, "type %d seed %d: garbage decoded", t, seed);
            cr_assert(is_decode_error(errno), "type %d seed %d: errno %d", t, seed, errno);
        }
        cr_assert_null(sf_bus_decode((sf_bus_type_t)t, buf, 0, NULL, 0));
        cr_assert_eq(errno, SF_BUS_EVERSION); /* empty = all defaults = version 0 */
    }
}

Test(bus_codec, every_truncation_and_every_bit_flip_is_refused)
{
    samples_t s;
    samples_init(&s);
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        uint8_t *buf;
        long len = encode_alloc(sample(&s, (sf_bus_type_t)t), &buf);
        for (long cut = 0; cut < len; cut++) {
            errno = 0;
            cr_assert_null(sf_bus_decode((sf_bus_type_t)t, buf, (size_t)cut, NULL, 0),
                           "type %d cut at %ld of %ld decoded", t, cut, len);
            cr_assert(is_decode_error(errno), "type %d cut %ld: errno %d", t, cut, errno);
        }
        for (long bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ProtobufCMessage *m = sf_bus_decode((sf_bus_type_t)t, buf, (size_t)len, NULL, 0);
            cr_assert_null(m, "type %d bit %ld flipped decoded", t, bit);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Bytes appended after the trailer are refused too. */
        uint8_t *longer = malloc((size_t)len + 2);
        memcpy(longer, buf, (size_t)len);
        longer[len] = 0x08; /* field 1 varint */
        longer[len + 1] = 0x01;
        cr_assert_null(sf_bus_decode((sf_bus_type_t)t, longer, (size_t)len + 2, NULL, 0));
        cr_assert_eq(errno, SF_BUS_ETRAILER);
        free(longer);
        free(buf);
    }
}

/* Pack m as is (no stamping, no checks) and add a correct trailer, as a peer built
 * against another contract would. */
static size_t raw_encode(const ProtobufCMessage *m, uint8_t *buf)
{
    size_t n = protobuf_c_message_pack(m, buf);
    uint32_t crc = sf_bus_crc32(buf, n);
    buf[n] = 0xC5;
    buf[n + 1] = 0x3E;
    for (int i = 0; i < 4; i++)
        buf[n + 2 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    return n + 6;
}

Test(bus_codec, wrong_version_is_refused_with_reason)
{
    samples_t s;
    samples_init(&s);
    uint8_t buf[1024];
    char why[128];
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        ProtobufCMessage *m = sample(&s, (sf_bus_type_t)t);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(m->descriptor, 1);
        uint32_t *version = (uint32_t *)(void *)((char *)m + f->offset);
        *version = SF_BUS_VERSION + 1;
        size_t n = raw_encode(m, buf);
        cr_assert_null(sf_bus_decode((sf_bus_type_t)t, buf, n, why, sizeof why));
        cr_assert_eq(errno, SF_BUS_EVERSION);
        cr_assert_str_eq(why, "version: expected 1, got 2");
        /* The encoder refuses to send another version, and leaves the message alone. */
        cr_assert_eq(sf_bus_encode(m, buf, sizeof buf), -1);
        cr_assert_eq(errno, SF_BUS_EVERSION);
        cr_assert_eq(*version, SF_BUS_VERSION + 1);
        *version = 0; /* absent: stamped on encode, refused on decode */
        n = raw_encode(m, buf);
        cr_assert_null(sf_bus_decode((sf_bus_type_t)t, buf, n, why, sizeof why));
        cr_assert_eq(errno, SF_BUS_EVERSION);
        cr_assert_gt(sf_bus_encode(m, buf, sizeof buf), 0);
        cr_assert_eq(*version, 0);
    }
    cr_assert_str_eq(sf_bus_strerror(SF_BUS_EVERSION),
                     "bus: wrong contract version (expected SF_BUS_VERSION)");
}

Test(bus_codec, message_of_another_type_is_refused)
{
    samples_t s;
    samples_init(&s);
    uint8_t buf[1024];
    long len = sf_bus_encode(&s.snap.base, buf, sizeof buf);
    /* A snapshot read as lamp states: field numbers mean other things; either the wire
     * types clash or the checks catch the values. */
    errno = 0;
    cr_assert_null(sf_bus_decode(SF_BUS_LAMPS, buf, (size_t)len, NULL, 0));
    cr_assert(is_decode_error(errno));
}

Test(bus_codec, oversize_is_refused)
{
    size_t n = SF_BUS_MAX_MSG + 1;
    uint8_t *big = calloc(1, n);
    cr_assert_not_null(big);
    cr_assert_null(sf_bus_decode(SF_BUS_SNAP, big, n, NULL, 0));
    cr_assert_eq(errno, SF_BUS_ETOOBIG);
    free(big);

    samples_t s;
    samples_init(&s);
    uint8_t small[8];
    cr_assert_eq(sf_bus_encode(&s.summary.base, small, sizeof small), -1);
    cr_assert_eq(errno, SF_BUS_ESPACE);

    /* A report string beyond the limit cannot be encoded. */
    char *json = malloc(SF_BUS_MAX_MSG + 16);
    cr_assert_not_null(json);
    memset(json, 'x', SF_BUS_MAX_MSG + 15);
    json[SF_BUS_MAX_MSG + 15] = '\0';
    s.summary.report_json = json;
    zmq_msg_t zm;
    cr_assert_eq(sf_bus_encode_zmq(&s.summary.base, &zm), -1);
    cr_assert_eq(errno, SF_BUS_ETOOBIG);
    free(json);
}

Test(bus_codec, inconsistent_fields_are_refused_both_ways)
{
    samples_t s;
    samples_init(&s);
    uint8_t buf[1024];
    char why[160];

    s.snap.n_speed_mps = 2; /* parallel arrays of unequal length */
    cr_assert_eq(sf_bus_encode(&s.snap.base, buf, sizeof buf), -1);
    cr_assert_eq(errno, SF_BUS_EFIELD);
    size_t n = raw_encode(&s.snap.base, buf);
    s.snap.version = SF_BUS_VERSION;
    n = raw_encode(&s.snap.base, buf);
    cr_assert_null(sf_bus_decode(SF_BUS_SNAP, buf, n, why, sizeof why));
    cr_assert_eq(errno, SF_BUS_EFIELD);
    cr_assert(strstr(why, "unequal length") != NULL, "%s", why);

    s.lamps.version = SF_BUS_VERSION;
    s.lamp_codes[2] = 0x99; /* not a GB/T 20999 lamp code */
    n = raw_encode(&s.lamps.base, buf);
    cr_assert_null(sf_bus_decode(SF_BUS_LAMPS, buf, n, why, sizeof why));
    cr_assert_eq(errno, SF_BUS_EFIELD);
    cr_assert_str_eq(why, "lamps[2]: 0x99 is not a GB/T 20999 lamp code");

    s.hello.version = SF_BUS_VERSION;
    s.hello.name = "bad name"; /* space: would break topic "welcome.<name>" */
    n = raw_encode(&s.hello.base, buf);
    cr_assert_null(sf_bus_decode(SF_BUS_HELLO, buf, n, why, sizeof why));
    cr_assert_eq(errno, SF_BUS_EFIELD);
    s.hello.name = "";
    cr_assert_eq(sf_bus_encode(&s.hello.base, buf, sizeof buf), -1);

    s.cmd.speed_factor = NAN;
    cr_assert_eq(sf_bus_encode(&s.cmd.base, buf, sizeof buf), -1);
    cr_assert_eq(errno, SF_BUS_EFIELD);
    s.cmd.version = SF_BUS_VERSION;
    s.cmd.cmd = 99;
    cr_assert_eq(sf_bus_check(&s.cmd.base, why, sizeof why), -1);
    cr_assert_str_eq(why, "cmd: unknown value 99");

    s.step.step_ds = 0;
    cr_assert_eq(sf_bus_encode(&s.step.base, buf, sizeof buf), -1);
    cr_assert_eq(errno, SF_BUS_EFIELD);
}

Test(bus_codec, bad_arguments)
{
    uint8_t buf[16] = {0};
    cr_assert_null(sf_bus_decode(SF_BUS_N_TYPES, buf, 0, NULL, 0));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(sf_bus_decode(SF_BUS_STEP, NULL, 5, NULL, 0));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_bus_encode(NULL, buf, sizeof buf), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_bus_type_of(NULL), -1);
    cr_assert_eq(sf_bus_crc32("123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    cr_assert_str_eq(sf_bus_strerror(EINVAL), zmq_strerror(EINVAL));
}
