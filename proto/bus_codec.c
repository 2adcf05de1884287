/* proto/bus_codec.c — checked encoding and decoding of bus messages (see bus_codec.h).
 *
 * Wire form of one message: the protobuf encoding of the struct with its crc32 field left
 * out, followed by the trailer: the tag of field 1000 as wire type 5 (fixed32), varint
 * 0xC5 0x3E, and the CRC-32 of every byte before the trailer, little-endian. The trailer
 * is an ordinary protobuf field, so foreign decoders read it as `crc32`.
 */
#include "bus_codec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TRAILER_LEN   6    /* 2-byte tag + fixed32 */
#define TRAILER_TAG0  0xC5 /* varint of (1000 << 3) | 5 = 8005, low 7 bits + continuation */
#define TRAILER_TAG1  0x3E /* 8005 >> 7 */
#define FIELD_VERSION 1
#define FIELD_CRC     1000
#define MSG_COPY_MAX  512 /* bytes: larger than every generated bus message struct */

/* Reflected CRC-32, polynomial 0xEDB88320 (IEEE 802.3, as zlib's crc32). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

/* One row per sf_bus_type_t, in enum order. */
typedef struct {
    const ProtobufCMessageDescriptor *desc; /* generated descriptor */
    const char *topic;                      /* first frame ("welcome" is a prefix) */
} type_row_t;

static const type_row_t types[SF_BUS_N_TYPES] = {
    [SF_BUS_HELLO] = {&sfbus__hello__descriptor, "hello"},
    [SF_BUS_WELCOME] = {&sfbus__welcome__descriptor, "welcome"},
    [SF_BUS_STEP] = {&sfbus__step__descriptor, "step"},
    [SF_BUS_DET] = {&sfbus__detector_inputs__descriptor, "det"},
    [SF_BUS_LAMPS] = {&sfbus__lamp_states__descriptor, "lamps"},
    [SF_BUS_DONE] = {&sfbus__done__descriptor, "done"},
    [SF_BUS_TRANSIT_IN] = {&sfbus__transit_check_in__descriptor, "transit.in"},
    [SF_BUS_TRANSIT_OUT] = {&sfbus__transit_check_out__descriptor, "transit.out"},
    [SF_BUS_SNAP] = {&sfbus__vehicle_snapshot__descriptor, "snap"},
    [SF_BUS_EVENT] = {&sfbus__controller_event__descriptor, "event"},
    [SF_BUS_SUMMARY] = {&sfbus__run_summary__descriptor, "summary"},
    [SF_BUS_CMD] = {&sfbus__view_command__descriptor, "cmd"},
    [SF_BUS_BYE] = {&sfbus__bye__descriptor, "bye"},
};

static const char *const err_text[] = {
    [SF_BUS_EMALFORMED - SF_BUS_EBASE] = "bus: malformed message (not a protobuf of the "
                                         "expected type)",
    [SF_BUS_ETRAILER - SF_BUS_EBASE] = "bus: integrity trailer missing or wrong (truncated or "
                                       "corrupted message)",
    [SF_BUS_EVERSION - SF_BUS_EBASE] = "bus: wrong contract version (expected "
                                       "SF_BUS_VERSION)",
    [SF_BUS_ETOOBIG - SF_BUS_EBASE] = "bus: message larger than SF_BUS_MAX_MSG",
    [SF_BUS_EFIELD - SF_BUS_EBASE] = "bus: field out of range or inconsistent",
    [SF_BUS_ETOPIC - SF_BUS_EBASE] = "bus: unknown topic or topic/message mismatch",
    [SF_BUS_EFRAMES - SF_BUS_EBASE] = "bus: expected exactly two frames (topic, message)",
    [SF_BUS_ESPACE - SF_BUS_EBASE] = "bus: buffer too small",
    [SF_BUS_ETIMEOUT - SF_BUS_EBASE] = "lockstep: peer did not answer in time",
    [SF_BUS_EREFUSED - SF_BUS_EBASE] = "lockstep: registration refused",
    [SF_BUS_EPROTO - SF_BUS_EBASE] = "lockstep: message out of sequence",
    [SF_BUS_ECLOSED - SF_BUS_EBASE] = "lockstep: the clock ended the run",
};

const char *sf_bus_strerror(int errnum)
{
    if (errnum > SF_BUS_EBASE && errnum < SF_BUS_ELAST && err_text[errnum - SF_BUS_EBASE])
        return err_text[errnum - SF_BUS_EBASE];
    return zmq_strerror(errnum);
}

uint32_t sf_bus_crc32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

const char *sf_bus_topic(sf_bus_type_t t)
{
    if ((int)t < 0 || t >= SF_BUS_N_TYPES)
        return NULL;
    return types[t].topic;
}

const ProtobufCMessageDescriptor *sf_bus_descriptor(sf_bus_type_t t)
{
    if ((int)t < 0 || t >= SF_BUS_N_TYPES)
        return NULL;
    return types[t].desc;
}

int sf_bus_type_of_topic(const void *topic, size_t len)
{
    static const char welcome[] = "welcome.";
    if (!topic) {
        errno = SF_BUS_ETOPIC;
        return -1;
    }
    if (len > sizeof welcome - 1 && memcmp(topic, welcome, sizeof welcome - 1) == 0)
        return SF_BUS_WELCOME;
    for (int t = 0; t < SF_BUS_N_TYPES; t++) {
        if (t == SF_BUS_WELCOME)
            continue;
        if (strlen(types[t].topic) == len && memcmp(types[t].topic, topic, len) == 0)
            return t;
    }
    errno = SF_BUS_ETOPIC;
    return -1;
}

int sf_bus_type_of(const ProtobufCMessage *msg)
{
    if (msg && msg->descriptor)
        for (int t = 0; t < SF_BUS_N_TYPES; t++)
            if (types[t].desc == msg->descriptor)
                return t;
    errno = EINVAL;
    return -1;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

int sf_bus_topic_of(const ProtobufCMessage *msg, char *buf, size_t cap)
{
    int t = sf_bus_type_of(msg);
    if (t < 0 || !buf) {
        errno = EINVAL;
        return -1;
    }
    int n;
    if (t == SF_BUS_WELCOME)
        n = snprintf(buf, cap, "welcome.%s", str_or_empty(((const Sfbus__Welcome *)msg)->name));
    else
        n = snprintf(buf, cap, "%s", types[t].topic);
    if (n < 0 || (size_t)n >= cap) {
        errno = SF_BUS_ESPACE;
        return -1;
    }
    return n;
}

/* ---- field checks ---------------------------------------------------------------- */

/* Record why a check failed; always returns -1 with errno SF_BUS_EFIELD. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    errno = SF_BUS_EFIELD;
    return -1;
}

/* A participant name: 1..SF_BUS_NAME_MAX bytes of [A-Za-z0-9_.-]; it becomes part of a
 * topic, so nothing that could confuse a prefix filter or a log line. */
static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SF_BUS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* A scenario id: 1..31 bytes (SF_ID_LEN - 1 in scenario.h). */
static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < 32;
}

/* GB/T 20999-2017 lamp codes (REFERENCE.md). */
static bool lamp_code_ok(uint8_t c)
{
    return c == 0x01 || (c >= 0x10 && c <= 0x12) || (c >= 0x20 && c <= 0x22) ||
           (c >= 0x30 && c <= 0x32) || c == 0x40;
}

#define TOD_DS_MAX 864000u /* 24 h in 0.1 s */
#define MAX_SG     32      /* SF_MAX_SG */
#define MAX_DET    64      /* SF_MAX_DET */
#define MAX_PLAN   16      /* SF_MAX_PLANS */
#define PHASE_MASK 0xFFFFu /* 16 phases */
#define DETAIL_MAX 4096    /* bytes of free text in an event */
#define SPEED_MAX  1000.0  /* real-time factor */

static int check_transit(const char *bus_id, const char *line, float eta_s, float lateness_s,
                         char *why, size_t cap)
{
    if (!id_ok(bus_id))
        return fail(why, cap, "bus_id: must be 1..31 bytes");
    if (!id_ok(line))
        return fail(why, cap, "line: must be 1..31 bytes");
    if (!isfinite(eta_s) || eta_s < 0)
        return fail(why, cap, "eta_s: must be finite and >= 0, got %g", (double)eta_s);
    if (!isfinite(lateness_s))
        return fail(why, cap, "lateness_s: must be finite");
    return 0;
}

int sf_bus_check(const ProtobufCMessage *msg, char *why, size_t cap)
{
    int t = sf_bus_type_of(msg);
    if (t < 0)
        return fail(why, cap, "not a bus message");
    const ProtobufCFieldDescriptor *fv =
        protobuf_c_message_descriptor_get_field(msg->descriptor, FIELD_VERSION);
    uint32_t version = *(const uint32_t *)(const void *)((const char *)msg + fv->offset);
    if (version != SF_BUS_VERSION) {
        if (why && cap)
            snprintf(why, cap, "version: expected %d, got %u", SF_BUS_VERSION, version);
        errno = SF_BUS_EVERSION;
        return -1;
    }
    switch ((sf_bus_type_t)t) {
    case SF_BUS_HELLO: {
        const Sfbus__Hello *m = (const Sfbus__Hello *)msg;
        if (!name_ok(m->name))
            return fail(why, cap, "name: must be 1..%d bytes of [A-Za-z0-9_.-]", SF_BUS_NAME_MAX);
        if (m->role <= SFBUS__ROLE__ROLE_UNSPECIFIED || m->role > SFBUS__ROLE__ROLE_RECORDER)
            return fail(why, cap, "role: unknown value %d", (int)m->role);
        return 0;
    }
    case SF_BUS_WELCOME: {
        const Sfbus__Welcome *m = (const Sfbus__Welcome *)msg;
        if (!name_ok(m->name))
            return fail(why, cap, "name: must be 1..%d bytes of [A-Za-z0-9_.-]", SF_BUS_NAME_MAX);
        if (str_or_empty(m->refused)[0] == '\0' && m->step_ds == 0)
            return fail(why, cap, "step_ds: must be > 0");
        return 0;
    }
    case SF_BUS_STEP: {
        const Sfbus__Step *m = (const Sfbus__Step *)msg;
        if (m->step_ds == 0)
            return fail(why, cap, "step_ds: must be > 0");
        if (m->tod_ds >= TOD_DS_MAX)
            return fail(why, cap, "tod_ds: must be < %u, got %u", TOD_DS_MAX, m->tod_ds);
        if (!isfinite(m->speed_factor) || m->speed_factor < 0)
            return fail(why, cap, "speed_factor: must be finite and >= 0, got %g", m->speed_factor);
        return 0;
    }
    case SF_BUS_DET: {
        const Sfbus__DetectorInputs *m = (const Sfbus__DetectorInputs *)msg;
        if (!id_ok(m->ix_id))
            return fail(why, cap, "ix_id: must be 1..31 bytes");
        if (m->n_counts > MAX_DET)
            return fail(why, cap, "counts: at most %d detectors, got %zu", MAX_DET, m->n_counts);
        return 0;
    }
    case SF_BUS_LAMPS: {
        const Sfbus__LampStates *m = (const Sfbus__LampStates *)msg;
        if (m->lamps.len > MAX_SG)
            return fail(why, cap, "lamps: at most %d signal groups, got %zu", MAX_SG, m->lamps.len);
        if (m->n_remaining_ds != m->lamps.len)
            return fail(why, cap, "remaining_ds: %zu entries for %zu lamps", m->n_remaining_ds,
                        m->lamps.len);
        for (size_t i = 0; i < m->lamps.len; i++)
            if (!lamp_code_ok(m->lamps.data[i]))
                return fail(why, cap, "lamps[%zu]: 0x%02x is not a GB/T 20999 lamp code", i,
                            m->lamps.data[i]);
        if (m->plan > MAX_PLAN)
            return fail(why, cap, "plan: must be 0..%d, got %u", MAX_PLAN, m->plan);
        if ((m->greens | m->yellows | m->reds) & ~PHASE_MASK)
            return fail(why, cap, "greens/yellows/reds: bits above phase 16 set");
        return 0;
    }
    case SF_BUS_DONE: {
        const Sfbus__Done *m = (const Sfbus__Done *)msg;
        if (!name_ok(m->name))
            return fail(why, cap, "name: must be 1..%d bytes of [A-Za-z0-9_.-]", SF_BUS_NAME_MAX);
        return 0;
    }
    case SF_BUS_TRANSIT_IN: {
        const Sfbus__TransitCheckIn *m = (const Sfbus__TransitCheckIn *)msg;
        return check_transit(m->bus_id, m->line, m->eta_s, m->lateness_s, why, cap);
    }
    case SF_BUS_TRANSIT_OUT: {
        const Sfbus__TransitCheckOut *m = (const Sfbus__TransitCheckOut *)msg;
        return check_transit(m->bus_id, m->line, m->eta_s, m->lateness_s, why, cap);
    }
    case SF_BUS_SNAP: {
        const Sfbus__VehicleSnapshot *m = (const Sfbus__VehicleSnapshot *)msg;
        size_t n = m->n_id;
        if (m->n_link != n || m->n_lane != n || m->n_pos_m != n || m->n_speed_mps != n ||
            m->n_type != n || m->n_line != n)
            return fail(why, cap,
                        "arrays of unequal length (id %zu, link %zu, lane %zu, pos_m %zu, "
                        "speed_mps %zu, type %zu, line %zu)",
                        n, m->n_link, m->n_lane, m->n_pos_m, m->n_speed_mps, m->n_type, m->n_line);
        for (size_t i = 0; i < n; i++) {
            if (m->type[i] > 2)
                return fail(why, cap, "type[%zu]: must be 0..2, got %u", i, m->type[i]);
            if (m->line[i] < -1)
                return fail(why, cap, "line[%zu]: must be >= -1, got %d", i, m->line[i]);
            if (!isfinite(m->pos_m[i]) || !isfinite(m->speed_mps[i]))
                return fail(why, cap, "pos_m/speed_mps[%zu]: must be finite", i);
        }
        return 0;
    }
    case SF_BUS_EVENT: {
        const Sfbus__ControllerEvent *m = (const Sfbus__ControllerEvent *)msg;
        if (m->kind <= SFBUS__EVENT_KIND__EVENT_UNSPECIFIED ||
            m->kind > SFBUS__EVENT_KIND__EVENT_INFO)
            return fail(why, cap, "kind: unknown value %d", (int)m->kind);
        if (strlen(str_or_empty(m->detail)) > DETAIL_MAX)
            return fail(why, cap, "detail: longer than %d bytes", DETAIL_MAX);
        return 0;
    }
    case SF_BUS_SUMMARY: {
        const Sfbus__RunSummary *m = (const Sfbus__RunSummary *)msg;
        if (!isfinite(m->sim_s) || m->sim_s < 0)
            return fail(why, cap, "sim_s: must be finite and >= 0");
        return 0;
    }
    case SF_BUS_CMD: {
        const Sfbus__ViewCommand *m = (const Sfbus__ViewCommand *)msg;
        if (m->cmd <= SFBUS__COMMAND__CMD_UNSPECIFIED || m->cmd > SFBUS__COMMAND__CMD_FAULT_RESET)
            return fail(why, cap, "cmd: unknown value %d", (int)m->cmd);
        if (m->cmd == SFBUS__COMMAND__CMD_SPEED &&
            (!isfinite(m->speed_factor) || m->speed_factor < 0 || m->speed_factor > SPEED_MAX))
            return fail(why, cap,
                        "speed_factor: must be in [0, %g] (0: as fast as possible), got %g",
                        SPEED_MAX, m->speed_factor);
        if (m->cmd == SFBUS__COMMAND__CMD_SELECT_PLAN && (m->plan < 1 || m->plan > MAX_PLAN))
            return fail(why, cap, "plan: must be 1..%d, got %u", MAX_PLAN, m->plan);
        return 0;
    }
    case SF_BUS_BYE: {
        const Sfbus__Bye *m = (const Sfbus__Bye *)msg;
        if (!name_ok(m->name))
            return fail(why, cap, "name: must be 1..%d bytes of [A-Za-z0-9_.-]", SF_BUS_NAME_MAX);
        return 0;
    }
    case SF_BUS_N_TYPES:
        break;
    }
    return fail(why, cap, "not a bus message");
}

/* ---- encoding -------------------------------------------------------------------- */

/* Storage for a shallow copy of a message, aligned for any member. */
typedef union {
    max_align_t align;
    unsigned char bytes[MSG_COPY_MAX];
} msg_copy_t;

static uint32_t *u32_field(ProtobufCMessage *m, unsigned id)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, id);
    return (uint32_t *)(void *)((char *)m + f->offset);
}

/* Shallow copy of msg with the version stamped and crc32 cleared (so protobuf-c leaves it
 * out: proto3 omits zero scalars), after checking it. Pointers still refer to msg's data,
 * which packing only reads. */
static ProtobufCMessage *prepare(const ProtobufCMessage *msg, msg_copy_t *copy)
{
    if (sf_bus_type_of(msg) < 0 || msg->descriptor->sizeof_message > sizeof copy->bytes) {
        errno = EINVAL;
        return NULL;
    }
    memcpy(copy->bytes, msg, msg->descriptor->sizeof_message);
    ProtobufCMessage *m = (ProtobufCMessage *)(void *)copy->bytes;
    uint32_t *version = u32_field(m, FIELD_VERSION);
    if (*version == 0)
        *version = SF_BUS_VERSION;
    *u32_field(m, FIELD_CRC) = 0;
    if (sf_bus_check(m, NULL, 0) < 0)
        return NULL;
    return m;
}

static void put_trailer(uint8_t *buf, size_t body_len)
{
    uint32_t crc = sf_bus_crc32(buf, body_len);
    uint8_t *p = buf + body_len;
    p[0] = TRAILER_TAG0;
    p[1] = TRAILER_TAG1;
    for (int i = 0; i < 4; i++)
        p[2 + i] = (uint8_t)(crc >> (8 * i));
}

size_t sf_bus_encoded_size(const ProtobufCMessage *msg)
{
    msg_copy_t copy;
    int saved = errno;
    if (sf_bus_type_of(msg) < 0 || msg->descriptor->sizeof_message > sizeof copy.bytes) {
        errno = saved;
        return 0;
    }
    memcpy(copy.bytes, msg, msg->descriptor->sizeof_message);
    ProtobufCMessage *m = (ProtobufCMessage *)(void *)copy.bytes;
    uint32_t *version = u32_field(m, FIELD_VERSION);
    if (*version == 0)
        *version = SF_BUS_VERSION;
    *u32_field(m, FIELD_CRC) = 0;
    return protobuf_c_message_get_packed_size(m) + TRAILER_LEN;
}

long sf_bus_encode(const ProtobufCMessage *msg, uint8_t *buf, size_t cap)
{
    msg_copy_t copy;
    ProtobufCMessage *m = prepare(msg, &copy);
    if (!m)
        return -1;
    if (!buf) {
        errno = EINVAL;
        return -1;
    }
    size_t body = protobuf_c_message_get_packed_size(m);
    if (body + TRAILER_LEN > SF_BUS_MAX_MSG) {
        errno = SF_BUS_ETOOBIG;
        return -1;
    }
    if (body + TRAILER_LEN > cap) {
        errno = SF_BUS_ESPACE;
        return -1;
    }
    size_t n = protobuf_c_message_pack(m, buf);
    if (n != body) { /* cannot happen with a consistent message; never trust it */
        errno = SF_BUS_EMALFORMED;
        return -1;
    }
    put_trailer(buf, body);
    return (long)(body + TRAILER_LEN);
}

int sf_bus_encode_zmq(const ProtobufCMessage *msg, zmq_msg_t *out)
{
    msg_copy_t copy;
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    ProtobufCMessage *m = prepare(msg, &copy);
    if (!m)
        return -1;
    size_t body = protobuf_c_message_get_packed_size(m);
    if (body + TRAILER_LEN > SF_BUS_MAX_MSG) {
        errno = SF_BUS_ETOOBIG;
        return -1;
    }
    if (zmq_msg_init_size(out, body + TRAILER_LEN) != 0)
        return -1;
    uint8_t *buf = zmq_msg_data(out);
    if (protobuf_c_message_pack(m, buf) != body) {
        zmq_msg_close(out);
        errno = SF_BUS_EMALFORMED;
        return -1;
    }
    put_trailer(buf, body);
    return 0;
}

/* ---- decoding -------------------------------------------------------------------- */

ProtobufCMessage *sf_bus_decode(sf_bus_type_t t, const uint8_t *buf, size_t len, char *why,
                                size_t why_cap)
{
    if ((int)t < 0 || t >= SF_BUS_N_TYPES || (!buf && len)) {
        errno = EINVAL;
        return NULL;
    }
    if (why && why_cap)
        why[0] = '\0';
    if (len > SF_BUS_MAX_MSG) {
        errno = SF_BUS_ETOOBIG;
        return NULL;
    }
    static const uint8_t empty[1] = {0};
    ProtobufCMessage *m = protobuf_c_message_unpack(types[t].desc, NULL, len, buf ? buf : empty);
    if (!m) {
        errno = SF_BUS_EMALFORMED;
        return NULL;
    }
    /* The version is checked before the trailer: a peer of another contract version may
     * frame differently, and "wrong version" is the useful thing to tell its operator. */
    uint32_t version = *u32_field(m, FIELD_VERSION);
    if (version != SF_BUS_VERSION) {
        if (why && why_cap)
            snprintf(why, why_cap, "version: expected %d, got %u", SF_BUS_VERSION, version);
        protobuf_c_message_free_unpacked(m, NULL);
        errno = SF_BUS_EVERSION;
        return NULL;
    }
    /* The trailer must be the last 6 bytes and hold the CRC of everything before it; a
     * buffer cut anywhere (even at a field boundary) or with bytes added fails here. */
    bool trailer_ok =
        len >= TRAILER_LEN && buf[len - 6] == TRAILER_TAG0 && buf[len - 5] == TRAILER_TAG1;
    if (trailer_ok) {
        uint32_t stored = 0;
        for (int i = 0; i < 4; i++)
            stored |= (uint32_t)buf[len - 4 + i] << (8 * i);
        trailer_ok =
            stored == sf_bus_crc32(buf, len - TRAILER_LEN) && stored == *u32_field(m, FIELD_CRC);
    }
    if (!trailer_ok) {
        if (why && why_cap)
            snprintf(why, why_cap, "crc32 trailer: missing or wrong (%zu bytes received)", len);
        protobuf_c_message_free_unpacked(m, NULL);
        errno = SF_BUS_ETRAILER;
        return NULL;
    }
    if (sf_bus_check(m, why, why_cap) < 0) {
        int e = errno;
        protobuf_c_message_free_unpacked(m, NULL);
        errno = e;
        return NULL;
    }
    return m;
}

void sf_bus_msg_destroy(ProtobufCMessage **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    protobuf_c_message_free_unpacked(*msg_p, NULL);
    *msg_p = NULL;
}
