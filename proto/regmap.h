/* proto/regmap.h — the Modbus register map of a sigflow signal unit, version
 * SF_REGMAP_VERSION (proto/versions.h).
 *
 * One C table (proto/regmap.c) is the single source: the unit's server validates every
 * request against it, the controller finds its registers in it, and proto/REGISTERS.md
 * and proto/registers.csv are generated from it (`sigflow regmap --md` / `--csv`;
 * tests/test_regmap.c fails when the committed files are stale).
 *
 * Conventions (Modbus Application Protocol V1.1b3, section 4.3 data model):
 *  - addresses are 0-based PDU addresses; the "4xxxx" style 1-based reference used by
 *    mbpoll and most HMIs is address + 1 in the same table;
 *  - `count` is the number of values; a u32 value takes two consecutive registers,
 *    high word first (big-endian word order, "ABCD"); an ascii value packs two
 *    characters per register, first character in the high byte;
 *  - per-phase entries are indexed by phase number - 1 (element 0 = phase 1), per-group
 *    entries by signal-group index, per-detector entries by detector index, all in the
 *    order of the scenario;
 *  - reads may span gaps between entries (gaps read 0); writes must fall wholly on
 *    writable entries, or the request is refused with exception 02.
 */
#ifndef SIGFLOW_REGMAP_H
#define SIGFLOW_REGMAP_H

#include <stdint.h>
#include <stdio.h>

#include "versions.h"

/* The four Modbus data tables (section 4.3). */
typedef enum {
    SF_TBL_COIL = 0,     /* single bits, read-write (FC 1, 5, 15) */
    SF_TBL_DISCRETE = 1, /* single bits, read-only (FC 2) */
    SF_TBL_INPUT = 2,    /* 16-bit registers, read-only (FC 4) */
    SF_TBL_HOLDING = 3,  /* 16-bit registers, read-write (FC 3, 6, 16) */
    SF_TBL_N = 4,
} sf_reg_table_t;

/* How a value is encoded. */
typedef enum {
    SF_RT_BOOL = 0,      /* one bit (coils and discrete inputs) */
    SF_RT_U16 = 1,       /* unsigned 16-bit */
    SF_RT_S16 = 2,       /* two's complement 16-bit */
    SF_RT_U32 = 3,       /* unsigned 32-bit over two registers, high word first */
    SF_RT_BITMASK16 = 4, /* bit i = phase i + 1 (or element i) */
    SF_RT_ENUM = 5,      /* one of the values listed in the description */
    SF_RT_LAMP = 6,      /* GB/T 20999-2017 lamp code (0x01 off, 0x10 red, 0x20 green ...) */
    SF_RT_ASCII = 7,     /* characters, two per register, high byte first, NUL padded */
} sf_reg_type_t;

/* Who may do what. A coil or holding register may be r, rw or w; discrete inputs and
 * input registers are r only. A w-only entry reads as 0. */
typedef enum {
    SF_ACC_R = 1,
    SF_ACC_W = 2,
    SF_ACC_RW = 3,
} sf_reg_access_t;

/* Entry identifiers; sf_regmap_get(id) is O(1). The table in regmap.c lists them in
 * this order (checked by sf_regmap_check). */
typedef enum {
    /* input registers: identity */
    SF_R_PROTOCOL_VERSION,
    SF_R_UNIT_INDEX,
    SF_R_N_PHASES,
    SF_R_N_RINGS,
    SF_R_N_SG,
    SF_R_N_DET,
    SF_R_N_PLANS,
    SF_R_UPTIME,
    SF_R_UNIT_ID,
    /* input registers: status */
    SF_R_CONTROL_MODE,
    SF_R_ACTIVE_PLAN,
    SF_R_PENDING_PLAN,
    SF_R_CYCLE_TIMER,
    SF_R_COORD_IN_SYNC,
    SF_R_HEARTBEAT_ECHO,
    SF_R_LOCAL_FALLBACK,
    SF_R_FAULT_CODE,
    SF_R_FAULT_LATCHED,
    SF_R_HEARTBEAT_AGE,
    SF_R_TOD,
    SF_R_PHASE_STATUS_REDS,
    SF_R_PHASE_STATUS_YELLOWS,
    SF_R_PHASE_STATUS_GREENS,
    SF_R_PHASE_STATUS_DONT_WALKS,
    SF_R_PHASE_STATUS_PED_CLEARS,
    SF_R_PHASE_STATUS_WALKS,
    SF_R_PHASE_STATUS_VEH_CALLS,
    SF_R_PHASE_STATUS_PED_CALLS,
    SF_R_PHASE_STATUS_ON,
    SF_R_PHASE_STATUS_NEXT,
    SF_R_SG_LAMP,
    SF_R_SG_TIME_REMAINING,
    SF_R_DET_SEQ,
    SF_R_DET_INTERVAL,
    SF_R_DET_VOLUME,
    SF_R_DET_OCCUPANCY,
    SF_R_PRIO_STATUS_ID,
    SF_R_PRIO_STATUS_STATE,
    SF_R_PRIO_STATUS_REASON,
    SF_R_PRIO_STATUS_PHASE,
    SF_R_PLAN_RD_NUMBER,
    SF_R_PLAN_RD_CYCLE,
    SF_R_PLAN_RD_OFFSET,
    SF_R_PLAN_RD_COORD_PHASES,
    SF_R_PLAN_RD_FORCE_MODE,
    SF_R_PLAN_RD_SPLIT,
    SF_R_PLAN_RD_SPLIT_MODE,
    SF_R_PLAN_DL_STATUS,
    SF_R_PLAN_DL_ERROR,
    /* holding registers */
    SF_R_HEARTBEAT,
    SF_R_MODE_COMMAND,
    SF_R_PLAN_SELECT,
    SF_R_FAULT_RESET,
    SF_R_COORD_CYCLE,
    SF_R_COORD_OFFSET,
    SF_R_COORD_SPLIT,
    SF_R_COORD_SYNC,
    SF_R_PHASE_MIN_GREEN,
    SF_R_PHASE_PASSAGE,
    SF_R_PHASE_MAX1,
    SF_R_PHASE_MAX2,
    SF_R_PHASE_YELLOW,
    SF_R_PHASE_RED_CLEAR,
    SF_R_PHASE_WALK,
    SF_R_PHASE_PED_CLEAR,
    SF_R_PRIO_REQ_ID,
    SF_R_PRIO_REQ_LEVEL,
    SF_R_PRIO_REQ_PHASE,
    SF_R_PRIO_REQ_ETA,
    SF_R_PRIO_REQ_TYPE,
    SF_R_PRIO_REQ_COMMIT,
    SF_R_PLAN_DL_NUMBER,
    SF_R_PLAN_DL_CYCLE,
    SF_R_PLAN_DL_OFFSET,
    SF_R_PLAN_DL_COORD_PHASES,
    SF_R_PLAN_DL_FORCE_MODE,
    SF_R_PLAN_DL_SPLIT,
    SF_R_PLAN_DL_SPLIT_MODE,
    SF_R_PLAN_DL_COMMIT,
    SF_R_PLAN_RD_SELECT,
    /* coils */
    SF_R_PHASE_CALL,
    SF_R_PHASE_PED_CALL,
    SF_R_PHASE_HOLD,
    SF_R_PHASE_FORCE_OFF,
    SF_R_PHASE_OMIT,
    /* discrete inputs */
    SF_R_DET_PRESENCE,
    /* map version 2 (appended: every version 1 entry keeps its id and address) */
    SF_R_DET_INPUT_ENABLE,
    SF_R_DET_INPUT,
    /* map version 3: the poll image (appended likewise) */
    SF_R_POLL_IMAGE_LEN,
    SF_R_POLL_IMAGE,
    /* map version 4: the poll image as holding registers, for FC 23 (appended likewise) */
    SF_R_POLL_IMAGE_RW,
    SF_R_COUNT
} sf_reg_id_t;

/* One entry of the map. */
typedef struct {
    sf_reg_id_t id;         /* equals its index in the table */
    const char *name;       /* unique snake_case name */
    sf_reg_table_t table;   /* data table */
    uint16_t address;       /* first 0-based PDU address */
    uint16_t count;         /* number of values */
    sf_reg_type_t type;     /* encoding of each value */
    const char *unit;       /* physical unit of one value ("" none, "0.1 s", "s", ...) */
    sf_reg_access_t access; /* r, w or rw */
    int64_t min;            /* smallest valid value (writes outside are refused: exc. 03) */
    int64_t max;            /* largest valid value */
    const char *desc;       /* meaning, for REGISTERS.md */
} sf_reg_t;

/* The values of mode_command and prio_req_type are those of sf_unit_mode_t and
 * sf_prio_action_t in unit/unit.h (listed in each entry's description). */

/* Plan download status (input `plan_dl_status`). */
typedef enum {
    SF_PLAN_DL_IDLE = 0,     /* nothing committed since start */
    SF_PLAN_DL_ACCEPTED = 1, /* the last commit was validated and stored */
    SF_PLAN_DL_REFUSED = 2,  /* the last commit was refused; plan_dl_error says why */
} sf_plan_dl_status_t;

/* The poll image (map version 3): input registers poll_image.. holding, as copies, every
 * value a full poll reads, so that a centre reads a unit's whole state in one request
 * (two for a unit with many groups and detectors) instead of five. Its layout follows
 * from the unit's identity counts n_sg and n_det, so that it packs tight: offsets from
 * the entry's address, in this order (section lengths in registers):
 *   status        12  copies of control_mode .. tod (100..111)
 *   phase_status  10  copies of phase_status_reds .. phase_status_next (140..149)
 *   lamp        n_sg  copies of sg_lamp[0..n_sg)
 *   remaining   n_sg  copies of sg_time_remaining[0..n_sg)
 *   prio          32  copies of prio_status_id, _state, _reason, _phase (8 each)
 *   det            2  copies of det_seq, det_interval
 *   presence   ceil(n_det / 16)  det_presence as bitmask16 words: bit i of word k is
 *                                detector 16 k + i (1 = occupied)
 *   volume     n_det  copies of det_volume[0..n_det)
 *   occupancy  n_det  copies of det_occupancy[0..n_det)
 * len = 56 + 2 n_sg + 2 n_det + ceil(n_det / 16) (113 for 12 groups and 16 detectors, at
 * most 252); the unit reports it in poll_image_len. Registers past len read 0. The unit
 * fills the image from the same register image it serves the other entries from, so a
 * read of the image and the reads of the entries it copies give the same values.
 *
 * Map version 4 adds poll_image_rw: the same image (same layout, same values, one fill) as
 * read-only holding registers, so that one FC 23 (read/write multiple registers) writes
 * the heartbeat and reads the image. The unit refreshes its register image when a request
 * arrives, before the request's write: the image an FC 23 returns is the state from before
 * its own write (a heartbeat that ends a local fallback returns an image still showing the
 * fallback; the next request sees the unit back in central control), which is what the
 * version 3 poll's image read followed by the heartbeat write returns. */
#define SF_POLL_IMAGE_MAX 252 /* len at 32 groups and 64 detectors */
typedef struct {
    uint16_t status, phase_status, lamp, remaining, prio, det, presence, volume, occupancy;
    uint16_t n_presence; /* words of presence */
    uint16_t len;        /* registers in the image */
} sf_poll_image_layout_t;

/* The poll image layout of a unit with n_sg signal groups and n_det detectors (offsets
 * from poll_image's address). 0, or -1 with errno EINVAL (NULL, n_sg > 32, n_det > 64). */
int sf_regmap_image_layout(uint16_t n_sg, uint16_t n_det, sf_poll_image_layout_t *out);

/* The whole table, n entries (n == SF_R_COUNT), in id order; static storage. */
const sf_reg_t *sf_regmap_table(size_t *n);

/* The entry with this id, or NULL (errno EINVAL) if id is out of range. */
const sf_reg_t *sf_regmap_get(sf_reg_id_t id);

/* The entry called name, or NULL (errno ENOENT). */
const sf_reg_t *sf_regmap_by_name(const char *name);

/* The entry of table t covering address, or NULL (errno ENOENT) if no entry covers it
 * (a gap or beyond the map). *elem receives the value index within the entry and
 * *word the register within that value (0, or 1 for a u32 low word); both may be NULL. */
const sf_reg_t *sf_regmap_at(sf_reg_table_t t, uint16_t address, uint16_t *elem, uint16_t *word);

/* The map version that introduced an entry (1; 2 for the appended external detection
 * block; 3 for the poll image; 4 for its holding copy): a client skips entries newer than the
 * unit's protocol_version. 0 for NULL. */
uint16_t sf_regmap_since(const sf_reg_t *r);

/* Number of addresses an entry spans: count, times 2 for u32. */
uint16_t sf_regmap_span(const sf_reg_t *r);

/* Registers per value: 2 for u32, 1 otherwise (an ascii entry's count is in registers). */
uint16_t sf_regmap_width(const sf_reg_t *r);

/* Number of addresses table t needs: highest address covered + 1. */
uint16_t sf_regmap_table_size(sf_reg_table_t t);

/* Short names used in the generated files: "coil", "discrete", "input", "holding";
 * "bool", "u16", ...; "r", "w", "rw". NULL for a bad value. */
const char *sf_regmap_table_name(sf_reg_table_t t);
const char *sf_regmap_type_name(sf_reg_type_t t);
const char *sf_regmap_access_name(sf_reg_access_t a);

/* Check the table itself: ids in order, names unique and non-empty, no two entries of a
 * table overlapping, min <= max and within what the type can hold, access consistent
 * with the table, spans inside 0..65535. Returns 0, or -1 (errno EINVAL) with the first
 * problem in err (len bytes, NUL-terminated; err may be NULL). */
int sf_regmap_check(char *err, size_t len);

/* Write the map as CSV (header `name,table,address,count,type,unit,access,min,max,
 * description`, one row per entry, RFC 4180 quoting) or as Markdown. 0, or -1 with errno
 * on a write error. */
int sf_regmap_write_csv(FILE *out);
int sf_regmap_write_md(FILE *out);

#endif
