/* unit/server.c — one unit's Modbus TCP server: register image, validated writes. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "regmap.h"

/* Function codes (Modbus Application Protocol V1.1b3, section 6). */
#define FC_WRITE_SINGLE_COIL     0x05
#define FC_WRITE_SINGLE_REGISTER 0x06
#define FC_WRITE_MULTIPLE_COILS  0x0F
#define FC_WRITE_MULTIPLE_REGS   0x10
#define FC_REPORT_SLAVE_ID       0x11
#define FC_MASK_WRITE_REGISTER   0x16
#define FC_WRITE_AND_READ_REGS   0x17
#define MBAP_LEN                 7 /* transaction id, protocol id, length, unit id */

#define N_COMMANDS 5 /* mode_command, plan_select, fault_reset, prio_req_commit, plan_dl_commit */
#define HR_CAP     1024 /* holding registers a write's scratch image holds */
#define COIL_CAP   256  /* coils a write's scratch image holds */

struct sf_server_s {
    sf_unit_t *unit;          /* borrowed */
    modbus_t *ctx;            /* libmodbus TCP context: listening, then replies per client */
    modbus_mapping_t *map;    /* register image served to reads */
    int listen_fd;            /* listening socket */
    uint16_t port;            /* bound port */
    uint16_t unit_index;      /* identity register unit_index */
    uint16_t det_interval_s;  /* identity of the detector interval, s */
    uint32_t refreshed_ticks; /* unit ticks at the last refresh of the image */
    bool stale;               /* image must be refreshed before the next request */
    bool timing_stale;        /* phase timing registers must be re-read from the unit */
    uint16_t dl_status;       /* sf_plan_dl_status_t of the last plan_dl_commit */
    uint16_t dl_error;        /* its reason code, 0 when accepted */
    sf_server_stats_t stats;  /* counters */
};

/* Register address of an entry (all entries exist; ids are checked by the regmap test). */
static uint16_t A(sf_reg_id_t id)
{
    return sf_regmap_get(id)->address;
}

static void put_u32(uint16_t *tab, uint16_t at, uint32_t v)
{
    tab[at] = (uint16_t)(v >> 16);
    tab[at + 1] = (uint16_t)(v & 0xFFFFu);
}

static uint16_t sat16(uint32_t v)
{
    return v > 65535u ? 65535u : (uint16_t)v;
}

/* Timing field of a phase_* holding entry, and its register scale in 0.1 s. */
static const struct {
    sf_reg_id_t id;
    sf_timing_field_t field;
    uint16_t scale;
} timing_regs[SF_T_N] = {
    {SF_R_PHASE_MIN_GREEN, SF_T_MIN_GREEN, 10}, {SF_R_PHASE_PASSAGE, SF_T_PASSAGE, 1},
    {SF_R_PHASE_MAX1, SF_T_MAX1, 10},           {SF_R_PHASE_MAX2, SF_T_MAX2, 10},
    {SF_R_PHASE_YELLOW, SF_T_YELLOW, 1},        {SF_R_PHASE_RED_CLEAR, SF_T_RED_CLEAR, 1},
    {SF_R_PHASE_WALK, SF_T_WALK, 10},           {SF_R_PHASE_PED_CLEAR, SF_T_PED_CLEAR, 10},
};

static int timing_slot(sf_reg_id_t id)
{
    for (int i = 0; i < SF_T_N; i++)
        if (timing_regs[i].id == id)
            return i;
    return -1;
}

/* Coil entries and the phase control group each drives. */
static const struct {
    sf_reg_id_t id;
    sf_phase_ctl_t ctl;
} coil_regs[] = {
    {SF_R_PHASE_CALL, SF_CTL_VEH_CALL}, {SF_R_PHASE_PED_CALL, SF_CTL_PED_CALL},
    {SF_R_PHASE_HOLD, SF_CTL_HOLD},     {SF_R_PHASE_FORCE_OFF, SF_CTL_FORCE_OFF},
    {SF_R_PHASE_OMIT, SF_CTL_OMIT},
};
#define N_COIL_REGS (sizeof coil_regs / sizeof coil_regs[0])

/* Bit i set = phase number i+1 is configured in the unit. */
static uint16_t configured_phases(const sf_unit_t *u)
{
    const sf_intersection_t *ix = sf_unit_intersection(u);
    uint16_t m = 0;
    for (int i = 0; i < ix->n_phases; i++)
        if (ix->phases[i].id >= 1 && ix->phases[i].id <= SF_MAX_PHASES)
            m = (uint16_t)(m | (1u << (ix->phases[i].id - 1)));
    return m;
}

static uint16_t bits_to_mask(const uint8_t *bits, uint16_t at)
{
    uint16_t m = 0;
    for (int i = 0; i < 16; i++)
        if (bits[at + i])
            m = (uint16_t)(m | (1u << i));
    return m;
}

/* out[i] = bit i of v, for i < n (n <= 64). Everything in locals: a store through a
 * uint8_t pointer may alias anything, so a loop reading its bounds through pointers
 * would reload them after every byte (refreshing the bit tables was half the cost of a
 * refresh). */
static void spread_bits(uint8_t *out, uint64_t v, int n)
{
    for (int i = 0; i < n && i < 64; i += 8) {
        /* Eight bits at once: the byte copied into every byte of a word, byte j keeps
         * bit j, and adding 0x7F carries it into that byte's top bit. */
        uint64_t b = (v >> i) & 0xFFu;
        uint64_t x =
            ((((b * 0x0101010101010101u) & 0x8040201008040201u) + 0x7F7F7F7F7F7F7F7Fu) >> 7) &
            0x0101010101010101u;
        if (n - i >= 8) { /* eight constant-shift stores: the compiler makes them one */
            uint8_t *o = out + i;
            o[0] = (uint8_t)x;
            o[1] = (uint8_t)(x >> 8);
            o[2] = (uint8_t)(x >> 16);
            o[3] = (uint8_t)(x >> 24);
            o[4] = (uint8_t)(x >> 32);
            o[5] = (uint8_t)(x >> 40);
            o[6] = (uint8_t)(x >> 48);
            o[7] = (uint8_t)(x >> 56);
        } else {
            for (int j = 0; j < n - i; j++)
                out[i + j] = (uint8_t)(x >> (8 * j));
        }
    }
}

static void mask_to_bits(uint8_t *bits, uint16_t at, uint16_t mask)
{
    spread_bits(bits + at, mask, 16);
}

static void refresh_plan_rd(sf_server_t *s)
{
    uint16_t *ir = s->map->tab_input_registers;
    const sf_intersection_t *ix = sf_unit_intersection(s->unit);
    uint16_t want = s->map->tab_registers[A(SF_R_PLAN_RD_SELECT)];
    sf_plan_t p;
    if (want < 1 || want > SF_MAX_PLANS || sf_unit_get_plan(s->unit, (uint8_t)want, &p) != 0)
        return; /* registers stay 0: plan_rd_number 0 = not stored */
    ir[A(SF_R_PLAN_RD_NUMBER)] = p.id;
    ir[A(SF_R_PLAN_RD_CYCLE)] = p.cycle_ds;
    ir[A(SF_R_PLAN_RD_OFFSET)] = p.offset_ds;
    ir[A(SF_R_PLAN_RD_FORCE_MODE)] = (uint16_t)p.force_mode;
    uint16_t coord = 0;
    uint16_t *split = ir + A(SF_R_PLAN_RD_SPLIT), *mode = ir + A(SF_R_PLAN_RD_SPLIT_MODE);
    /* The scenario model holds splits by phase index; the registers by phase number. */
    for (int i = 0; i < ix->n_phases; i++) {
        int no = ix->phases[i].id;
        if (no < 1 || no > SF_MAX_PHASES)
            continue;
        split[no - 1] = p.split_ds[i];
        mode[no - 1] = (uint16_t)p.split_mode[i];
        if (p.coord_phase_mask & (1u << i))
            coord = (uint16_t)(coord | (1u << (no - 1)));
    }
    ir[A(SF_R_PLAN_RD_COORD_PHASES)] = coord;
}

/* Fill the poll image (regmap.h, map version 3) from the registers just refreshed: only
 * copies, so a read of the image and the reads of the entries it copies give the same
 * values (the presence words from the same status bits as the det_presence inputs). */
static void refresh_image(sf_server_t *s, uint64_t presence)
{
    const sf_intersection_t *ix = sf_unit_intersection(s->unit);
    uint16_t *ir = s->map->tab_input_registers;
    sf_poll_image_layout_t l;
    if (sf_regmap_image_layout(ix->n_sg, ix->n_det, &l) != 0)
        return; /* counts beyond the map (the scenario loader refuses them): no image */
    uint16_t *img = ir + A(SF_R_POLL_IMAGE);
    ir[A(SF_R_POLL_IMAGE_LEN)] = l.len;
    memcpy(img + l.status, ir + A(SF_R_CONTROL_MODE), 12 * sizeof *img);
    memcpy(img + l.phase_status, ir + A(SF_R_PHASE_STATUS_REDS), 10 * sizeof *img);
    memcpy(img + l.lamp, ir + A(SF_R_SG_LAMP), ix->n_sg * sizeof *img);
    memcpy(img + l.remaining, ir + A(SF_R_SG_TIME_REMAINING), ix->n_sg * sizeof *img);
    static const sf_reg_id_t prio[4] = {SF_R_PRIO_STATUS_ID, SF_R_PRIO_STATUS_STATE,
                                        SF_R_PRIO_STATUS_REASON, SF_R_PRIO_STATUS_PHASE};
    for (int k = 0; k < 4; k++)
        memcpy(img + l.prio + 8 * k, ir + A(prio[k]), 8 * sizeof *img);
    img[l.det] = ir[A(SF_R_DET_SEQ)];
    img[l.det + 1] = ir[A(SF_R_DET_INTERVAL)];
    if (ix->n_det < 64)
        presence &= ((uint64_t)1 << ix->n_det) - 1;
    for (uint16_t k = 0; k < l.n_presence; k++)
        img[l.presence + k] = (uint16_t)(presence >> (16 * k));
    memcpy(img + l.volume, ir + A(SF_R_DET_VOLUME), ix->n_det * sizeof *img);
    memcpy(img + l.occupancy, ir + A(SF_R_DET_OCCUPANCY), ix->n_det * sizeof *img);
    /* Map version 4: the same image as holding registers, for FC 23. A copy of the one
     * just built, so the two can never differ. */
    memcpy(s->map->tab_registers + A(SF_R_POLL_IMAGE_RW), img, l.len * sizeof *img);
}

/* Copy the unit's status into the register image. Staging registers (priority mailbox,
 * plan download buffer, plan_rd_select) live only in the image and are left alone. A host
 * refreshes every unit's image once a poll (the heartbeat write makes it stale), so the
 * loops look each entry's address up once, not once per element. */
static void refresh(sf_server_t *s)
{
    const sf_unit_status_t *st = sf_unit_status(s->unit);
    if (!s->stale && st->ticks == s->refreshed_ticks)
        return;
    const sf_intersection_t *ix = sf_unit_intersection(s->unit);
    uint16_t *ir = s->map->tab_input_registers;
    uint16_t *hr = s->map->tab_registers;
    memset(ir, 0, (size_t)s->map->nb_input_registers * sizeof *ir);

    ir[A(SF_R_PROTOCOL_VERSION)] = SF_REGMAP_VERSION;
    ir[A(SF_R_UNIT_INDEX)] = s->unit_index;
    ir[A(SF_R_N_PHASES)] = ix->n_phases;
    ir[A(SF_R_N_RINGS)] = ix->n_rings;
    ir[A(SF_R_N_SG)] = ix->n_sg;
    ir[A(SF_R_N_DET)] = ix->n_det;
    ir[A(SF_R_N_PLANS)] = ix->n_plans;
    put_u32(ir, A(SF_R_UPTIME), st->ticks);
    const sf_reg_t *idr = sf_regmap_get(SF_R_UNIT_ID);
    uint16_t *id = ir + idr->address;
    for (size_t i = 0; i < (size_t)idr->count * 2 && i < sizeof ix->id && ix->id[i]; i++)
        id[i / 2] |= (uint16_t)((uint8_t)ix->id[i] << (i % 2 ? 0 : 8));

    ir[A(SF_R_CONTROL_MODE)] = st->control_mode;
    ir[A(SF_R_ACTIVE_PLAN)] = st->active_plan;
    ir[A(SF_R_PENDING_PLAN)] = st->pending_plan;
    ir[A(SF_R_CYCLE_TIMER)] = st->cycle_timer_ds;
    ir[A(SF_R_COORD_IN_SYNC)] = st->coord_in_sync;
    ir[A(SF_R_HEARTBEAT_ECHO)] = st->heartbeat_echo;
    ir[A(SF_R_LOCAL_FALLBACK)] = st->fallback;
    ir[A(SF_R_FAULT_CODE)] = st->fault_code;
    ir[A(SF_R_FAULT_LATCHED)] = st->fault_latched;
    ir[A(SF_R_HEARTBEAT_AGE)] = sat16(st->heartbeat_age_ds);
    put_u32(ir, A(SF_R_TOD), st->tod_ds);

    ir[A(SF_R_PHASE_STATUS_REDS)] = st->reds;
    ir[A(SF_R_PHASE_STATUS_YELLOWS)] = st->yellows;
    ir[A(SF_R_PHASE_STATUS_GREENS)] = st->greens;
    ir[A(SF_R_PHASE_STATUS_DONT_WALKS)] = st->dont_walks;
    ir[A(SF_R_PHASE_STATUS_PED_CLEARS)] = st->ped_clears;
    ir[A(SF_R_PHASE_STATUS_WALKS)] = st->walks;
    ir[A(SF_R_PHASE_STATUS_VEH_CALLS)] = st->veh_calls;
    ir[A(SF_R_PHASE_STATUS_PED_CALLS)] = st->ped_calls;
    ir[A(SF_R_PHASE_STATUS_ON)] = st->phase_on;
    ir[A(SF_R_PHASE_STATUS_NEXT)] = st->phase_next;

    uint16_t *lamp = ir + A(SF_R_SG_LAMP), *left = ir + A(SF_R_SG_TIME_REMAINING);
    for (int i = 0; i < st->n_sg && i < SF_MAX_SG; i++) {
        lamp[i] = st->sg_lamp[i];
        left[i] = st->sg_remaining_ds[i];
    }
    ir[A(SF_R_DET_SEQ)] = st->det_seq;
    ir[A(SF_R_DET_INTERVAL)] = s->det_interval_s;
    uint16_t *vol = ir + A(SF_R_DET_VOLUME), *occ = ir + A(SF_R_DET_OCCUPANCY);
    for (int i = 0; i < st->n_det && i < SF_MAX_DET; i++) {
        vol[i] = st->det_volume[i];
        occ[i] = st->det_occupancy[i];
    }
    uint16_t *p_id = ir + A(SF_R_PRIO_STATUS_ID), *p_state = ir + A(SF_R_PRIO_STATUS_STATE);
    uint16_t *p_reason = ir + A(SF_R_PRIO_STATUS_REASON), *p_phase = ir + A(SF_R_PRIO_STATUS_PHASE);
    for (int i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        p_id[i] = st->prio[i].id;
        p_state[i] = st->prio[i].state;
        p_reason[i] = st->prio[i].reason;
        p_phase[i] = st->prio[i].phase_no;
    }
    refresh_plan_rd(s);
    ir[A(SF_R_PLAN_DL_STATUS)] = s->dl_status;
    ir[A(SF_R_PLAN_DL_ERROR)] = s->dl_error;

    hr[A(SF_R_HEARTBEAT)] = st->heartbeat_echo;
    hr[A(SF_R_MODE_COMMAND)] = st->mode_command;
    hr[A(SF_R_PLAN_SELECT)] = st->pending_plan ? st->pending_plan : st->active_plan;
    hr[A(SF_R_FAULT_RESET)] = 0;
    hr[A(SF_R_PRIO_REQ_COMMIT)] = 0;
    hr[A(SF_R_PLAN_DL_COMMIT)] = 0;
    sf_coord_t co;
    sf_unit_get_coord(s->unit, &co);
    hr[A(SF_R_COORD_CYCLE)] = co.cycle_ds;
    hr[A(SF_R_COORD_OFFSET)] = co.offset_ds;
    put_u32(hr, A(SF_R_COORD_SYNC), st->sync_ref_ds);
    memcpy(hr + A(SF_R_COORD_SPLIT), co.split_ds, sizeof co.split_ds);
    if (s->timing_stale) {
        for (int f = 0; f < SF_T_N; f++) {
            uint16_t at = A(timing_regs[f].id);
            for (int no = 1; no <= SF_MAX_PHASES; no++) {
                int v = sf_unit_get_timing(s->unit, (uint8_t)no, timing_regs[f].field);
                hr[at + no - 1] = (uint16_t)(v < 0 ? 0 : v / timing_regs[f].scale);
            }
        }
        s->timing_stale = false;
    }

    uint8_t *coils = s->map->tab_bits;
    mask_to_bits(coils, A(SF_R_PHASE_CALL), st->veh_calls);
    mask_to_bits(coils, A(SF_R_PHASE_PED_CALL), st->ped_calls);
    mask_to_bits(coils, A(SF_R_PHASE_HOLD), st->hold);
    mask_to_bits(coils, A(SF_R_PHASE_FORCE_OFF), st->force_off);
    mask_to_bits(coils, A(SF_R_PHASE_OMIT), st->omit);
    const sf_reg_t *dp = sf_regmap_get(SF_R_DET_PRESENCE);
    spread_bits(s->map->tab_input_bits + dp->address, st->det_presence, dp->count);
    hr[A(SF_R_DET_INPUT_ENABLE)] = st->det_external;
    const sf_reg_t *di = sf_regmap_get(SF_R_DET_INPUT);
    spread_bits(coils + di->address, st->det_input, di->count);

    refresh_image(s, st->det_presence);

    s->refreshed_ticks = st->ticks;
    s->stale = false;
}

sf_server_t *sf_server_new(sf_unit_t *u, const sf_unit_config_t *cfg, uint16_t unit_index,
                           const char *addr, uint16_t port)
{
    if (!u) {
        errno = EINVAL;
        return NULL;
    }
    struct in_addr probe;
    if (!addr)
        addr = "127.0.0.1";
    if (inet_pton(AF_INET, addr, &probe) != 1) {
        errno = EINVAL;
        return NULL;
    }
    sf_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->unit = u;
    s->listen_fd = -1;
    s->unit_index = unit_index;
    sf_unit_config_t def;
    if (!cfg) {
        sf_unit_config_default(&def, sf_unit_intersection(u));
        cfg = &def;
    }
    s->det_interval_s = (uint16_t)(cfg->det_interval_ds / 10);
    s->stale = true;
    s->timing_stale = true;
    int saved;
    s->ctx = modbus_new_tcp(addr, port);
    if (!s->ctx)
        goto fail;
    /* A complete frame is buffered before we call modbus_receive (the host checks), so
     * these only bound a misbehaving peer; they never pace a healthy one. */
    modbus_set_byte_timeout(s->ctx, 0, 20000);
    modbus_set_indication_timeout(s->ctx, 0, 20000);
    s->map = modbus_mapping_new_start_address(
        0, sf_regmap_table_size(SF_TBL_COIL), 0, sf_regmap_table_size(SF_TBL_DISCRETE), 0,
        sf_regmap_table_size(SF_TBL_HOLDING), 0, sf_regmap_table_size(SF_TBL_INPUT));
    if (!s->map)
        goto fail;
    if (s->map->nb_registers > HR_CAP || s->map->nb_bits > COIL_CAP) {
        errno = ENOMEM;
        goto fail;
    }
    /* Staging defaults: the mailbox and plan buffer start empty, read-back shows plan 1. */
    s->map->tab_registers[A(SF_R_PLAN_RD_SELECT)] = 1;
    s->listen_fd = modbus_tcp_listen(s->ctx, 64);
    if (s->listen_fd < 0)
        goto fail;
    int fl = fcntl(s->listen_fd, F_GETFL);
    if (fl < 0 || fcntl(s->listen_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(s->listen_fd, F_SETFD, FD_CLOEXEC) < 0)
        goto fail;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl) != 0)
        goto fail;
    s->port = ntohs(sa.sin_port);
    refresh(s);
    return s;
fail:
    saved = errno;
    sf_server_destroy(&s);
    errno = saved;
    return NULL;
}

void sf_server_destroy(sf_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_server_t *s = *self_p;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->map)
        modbus_mapping_free(s->map);
    if (s->ctx) {
        /* The context's socket is a client's (closed by the host) or the listener (closed
         * above): detach it so modbus_free does not close an fd number reused since. */
        modbus_set_socket(s->ctx, -1);
        modbus_free(s->ctx);
    }
    free(s);
    *self_p = NULL;
}

int sf_server_listen_fd(const sf_server_t *s)
{
    return s ? s->listen_fd : -1;
}

uint16_t sf_server_port(const sf_server_t *s)
{
    return s ? s->port : 0;
}

sf_unit_t *sf_server_unit(const sf_server_t *s)
{
    return s ? s->unit : NULL;
}

void sf_server_touch(sf_server_t *s)
{
    if (s) {
        s->stale = true;
        s->timing_stale = true; /* the caller may have changed timings directly */
    }
}

void sf_server_stats(const sf_server_t *s, sf_server_stats_t *out)
{
    if (s && out)
        *out = s->stats;
}

int sf_server_frame_ok(const uint8_t *adu, int len)
{
    if (!adu || len < MBAP_LEN + 1 || len > MODBUS_TCP_MAX_ADU_LENGTH)
        goto bad;
    int proto = adu[2] << 8 | adu[3];
    int mbap_len = adu[4] << 8 | adu[5]; /* unit id + PDU */
    if (proto != 0 || mbap_len != len - 6)
        goto bad;
    int fc = adu[MBAP_LEN];
    int data = len - MBAP_LEN - 1; /* PDU bytes after the function code */
    int need;
    /* What libmodbus reads for an indication (modbus.c compute_meta_length_after_function
     * and compute_data_length_after_meta): the frame must be exactly that long, or the
     * stream would lose its framing. */
    if (fc <= FC_WRITE_SINGLE_REGISTER)
        need = 4;
    else if (fc == FC_WRITE_MULTIPLE_COILS || fc == FC_WRITE_MULTIPLE_REGS)
        need = data >= 5 ? 5 + adu[MBAP_LEN + 5] : 5;
    else if (fc == FC_MASK_WRITE_REGISTER)
        need = 6;
    else if (fc == FC_WRITE_AND_READ_REGS)
        need = data >= 9 ? 9 + adu[MBAP_LEN + 9] : 9;
    else
        need = 0;
    if (data != need)
        goto bad;
    return 0;
bad:
    errno = EPROTO;
    return -1;
}

/* ---- writes ------------------------------------------------------------------------ */

typedef enum { OP_TIMING, OP_COORD, OP_SYNC, OP_CTL } op_kind_t;

/* One reversible change: apply new, or restore old. */
typedef struct {
    op_kind_t kind;
    uint8_t phase_no;        /* OP_TIMING */
    sf_timing_field_t field; /* OP_TIMING */
    sf_phase_ctl_t ctl;      /* OP_CTL */
    uint32_t new_v, old_v;   /* timing 0.1 s, sync 0.1 s, control mask */
    bool done;               /* applied */
} op_t;

#define MAX_OPS (SF_T_N * SF_MAX_PHASES + 8)

static int op_apply(sf_server_t *s, const op_t *op, const sf_coord_t *coord, bool undo)
{
    uint32_t v = undo ? op->old_v : op->new_v;
    switch (op->kind) {
    case OP_TIMING:
        return sf_unit_set_timing(s->unit, op->phase_no, op->field, (uint16_t)v);
    case OP_COORD:
        return sf_unit_set_coord(s->unit, &coord[undo ? 1 : 0]);
    case OP_SYNC:
        return sf_unit_set_sync(s->unit, v);
    case OP_CTL:
        return sf_unit_phase_control(s->unit, op->ctl, (uint16_t)v);
    }
    errno = EINVAL;
    return -1;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void record_dl(sf_server_t *s, int rc)
{
    s->dl_status = rc == 0 ? SF_PLAN_DL_ACCEPTED : SF_PLAN_DL_REFUSED;
    int e = errno;
    s->dl_error = rc == 0 ? 0
                  : e > SF_UNIT_ENOBASE && e < SF_UNIT_ENOBASE + 100
                      ? (uint16_t)(e - SF_UNIT_ENOBASE)
                      : (uint16_t)(e > 0 && e < 65536 ? e : 0xFFFF);
}

/* Build the plan in the download buffer (registers by phase number) as the unit's model
 * (by phase index). -1 EINVAL when it names a phase the unit does not have. */
static int plan_from_buffer(const sf_server_t *s, const uint16_t *hr, sf_plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->id = (uint8_t)hr[A(SF_R_PLAN_DL_NUMBER)];
    snprintf(p->name, sizeof p->name, "modbus plan %u", (unsigned)p->id);
    p->cycle_ds = hr[A(SF_R_PLAN_DL_CYCLE)];
    p->offset_ds = hr[A(SF_R_PLAN_DL_OFFSET)];
    p->force_mode = hr[A(SF_R_PLAN_DL_FORCE_MODE)] ? SF_FORCE_FLOATING : SF_FORCE_FIXED;
    uint16_t coord = hr[A(SF_R_PLAN_DL_COORD_PHASES)];
    for (int no = 1; no <= SF_MAX_PHASES; no++) {
        uint16_t split = hr[A(SF_R_PLAN_DL_SPLIT) + no - 1];
        uint16_t mode = hr[A(SF_R_PLAN_DL_SPLIT_MODE) + no - 1];
        bool co = (coord >> (no - 1)) & 1u;
        int idx = sf_unit_phase_index(s->unit, (uint8_t)no);
        if (idx < 0) {
            if (split || mode || co) {
                errno = EINVAL;
                return -1;
            }
            continue;
        }
        p->split_ds[idx] = split;
        p->split_mode[idx] = (sf_split_mode_t)mode;
        if (co)
            p->coord_phase_mask = (uint16_t)(p->coord_phase_mask | (1u << idx));
    }
    return 0;
}

/* The entry of table holding address, its element and word (as sf_regmap_at). A write
 * runs through consecutive addresses, mostly within one entry: when address is still in
 * prev's span it is found without searching the map. */
static const sf_reg_t *entry_at(sf_reg_table_t table, uint16_t address, const sf_reg_t *prev,
                                uint16_t *elem, uint16_t *word)
{
    if (prev && prev->table == table && address >= prev->address &&
        (uint32_t)address < (uint32_t)prev->address + sf_regmap_span(prev)) {
        uint16_t off = (uint16_t)(address - prev->address), w = sf_regmap_width(prev);
        *elem = (uint16_t)(off / w);
        *word = (uint16_t)(off % w);
        return prev;
    }
    return sf_regmap_at(table, address, elem, word);
}

/* Validate and apply one write request (the write part of an FC 23). Returns 0 (applied)
 * or the exception code. */
static int apply_write(sf_server_t *s, const uint8_t *req, int fc)
{
    const uint8_t *pdu = req + MBAP_LEN;
    uint16_t addr = be16(pdu + 1);
    uint16_t nb = 1;
    const uint8_t *vals = pdu + 6; /* first register value written (FC 16, FC 23 below) */
    sf_reg_table_t table = (fc == FC_WRITE_SINGLE_COIL || fc == FC_WRITE_MULTIPLE_COILS)
                               ? SF_TBL_COIL
                               : SF_TBL_HOLDING;
    /* Decode quantities first (section 6.5, 6.6, 6.11, 6.12, 6.17): a bad quantity is 03. */
    if (fc == FC_WRITE_AND_READ_REGS) {
        /* read address, read quantity, write address, write quantity, byte count, values.
         * The read part is checked here too, before the unit is changed: libmodbus checks
         * it only when it answers, after apply_write has applied the write to the unit. */
        uint16_t rd_addr = be16(pdu + 1), rd_nb = be16(pdu + 3);
        addr = be16(pdu + 5);
        nb = be16(pdu + 7);
        vals = pdu + 10;
        if (rd_nb < 1 || rd_nb > MODBUS_MAX_WR_READ_REGISTERS || nb < 1 ||
            nb > MODBUS_MAX_WR_WRITE_REGISTERS || pdu[9] != nb * 2)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
        if ((uint32_t)rd_addr + rd_nb > (uint32_t)s->map->nb_registers)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
    } else if (fc == FC_WRITE_SINGLE_REGISTER) {
        vals = pdu + 3;
    } else if (fc == FC_WRITE_SINGLE_COIL) {
        uint16_t v = be16(pdu + 3);
        if (v != 0xFF00 && v != 0x0000)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    } else if (fc == FC_WRITE_MULTIPLE_COILS) {
        nb = be16(pdu + 3);
        if (nb < 1 || nb > MODBUS_MAX_WRITE_BITS || pdu[5] != (nb + 7) / 8)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    } else if (fc == FC_WRITE_MULTIPLE_REGS) {
        nb = be16(pdu + 3);
        if (nb < 1 || nb > MODBUS_MAX_WRITE_REGISTERS || pdu[5] != nb * 2)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    }
    if ((uint32_t)addr + nb > 65536u)
        return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;

    /* The new images: current values with the request overlaid. On the stack, not in the
     * server: a host of a thousand units writes every unit's heartbeat each poll, and one
     * hot scratch image costs no cache misses where a thousand cold ones (2.3 kB each) do. */
    uint16_t hr[HR_CAP];
    uint8_t coils[COIL_CAP];
    memcpy(hr, s->map->tab_registers, (size_t)s->map->nb_registers * sizeof *hr);
    memcpy(coils, s->map->tab_bits, (size_t)s->map->nb_bits);
    bool touched[SF_R_COUNT] = {false};
    uint16_t call_mask[2] = {0, 0}; /* calls placed by this request: vehicle, pedestrian */
    uint16_t have = configured_phases(s->unit);

    /* Pass 1: addresses and access (02), whole u32 values. */
    const sf_reg_t *first = NULL; /* entry of addr: where pass 2 starts looking */
    const sf_reg_t *r = NULL;
    for (uint16_t k = 0; k < nb; k++) {
        uint16_t elem, word;
        r = entry_at(table, (uint16_t)(addr + k), r, &elem, &word);
        if (k == 0)
            first = r;
        if (!r || !(r->access & SF_ACC_W))
            return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
        if (r->type == SF_RT_U32 && ((word == 1 && k == 0) || (word == 0 && k + 1 == nb)))
            return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
        touched[r->id] = true;
    }
    /* Pass 2: values (03), overlaid on the new image. */
    r = first;
    for (uint16_t k = 0; k < nb; k++) {
        uint16_t at = (uint16_t)(addr + k), elem, word;
        r = entry_at(table, at, r, &elem, &word);
        if (table == SF_TBL_COIL) {
            uint8_t bit = fc == FC_WRITE_SINGLE_COIL ? (pdu[3] == 0xFF)
                                                     : (uint8_t)((pdu[6 + k / 8] >> (k % 8)) & 1u);
            bool exists = r->id == SF_R_DET_INPUT ? elem < sf_unit_intersection(s->unit)->n_det
                                                  : ((have >> elem) & 1u) != 0;
            if (bit && !exists)
                return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE; /* no such phase or detector */
            coils[at] = bit;
            if (bit && r->id == SF_R_PHASE_CALL)
                call_mask[0] = (uint16_t)(call_mask[0] | (1u << elem));
            if (bit && r->id == SF_R_PHASE_PED_CALL)
                call_mask[1] = (uint16_t)(call_mask[1] | (1u << elem));
            continue;
        }
        uint16_t v = be16(vals + 2 * k);
        hr[at] = v;
        if (r->type == SF_RT_U32) {
            if (word == 1)
                continue; /* checked with its high word */
            uint32_t v32 = (uint32_t)v << 16 | be16(vals + 2 * (k + 1));
            if (v32 < r->min || v32 > r->max)
                return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
            continue;
        }
        /* A timing register of a phase the unit does not have reads 0; writing 0 back
         * (a client writing a whole block) is a no-op, anything else is refused. */
        if (timing_slot(r->id) >= 0 && !((have >> elem) & 1u)) {
            if (v != 0)
                return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
            continue;
        }
        int64_t sv = r->type == SF_RT_S16 ? (int64_t)(int16_t)v : (int64_t)v;
        if (sv < r->min || sv > r->max)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    }

    /* At most one command per request: commands cannot be undone. */
    static const sf_reg_id_t commands[N_COMMANDS] = {SF_R_MODE_COMMAND, SF_R_PLAN_SELECT,
                                                     SF_R_FAULT_RESET, SF_R_PRIO_REQ_COMMIT,
                                                     SF_R_PLAN_DL_COMMIT};
    int n_cmd = 0;
    sf_reg_id_t cmd = SF_R_COUNT;
    for (int i = 0; i < N_COMMANDS; i++)
        if (touched[commands[i]]) {
            n_cmd++;
            cmd = commands[i];
        }
    if (n_cmd > 1)
        return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;

    /* The reversible changes. */
    op_t ops[MAX_OPS];
    int n_ops = 0;
    const sf_unit_status_t *st = sf_unit_status(s->unit);
    for (int f = 0; f < SF_T_N; f++) {
        if (!touched[timing_regs[f].id])
            continue;
        uint16_t base = A(timing_regs[f].id);
        for (int no = 1; no <= SF_MAX_PHASES; no++) {
            if (!((have >> (no - 1)) & 1u) ||
                hr[base + no - 1] == s->map->tab_registers[base + no - 1])
                continue;
            int old = sf_unit_get_timing(s->unit, (uint8_t)no, timing_regs[f].field);
            if (old < 0)
                return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
            ops[n_ops++] = (op_t){.kind = OP_TIMING,
                                  .phase_no = (uint8_t)no,
                                  .field = timing_regs[f].field,
                                  .new_v = (uint32_t)hr[base + no - 1] * timing_regs[f].scale,
                                  .old_v = (uint32_t)old};
        }
    }
    sf_coord_t coord[2]; /* new, old */
    if (touched[SF_R_COORD_CYCLE] || touched[SF_R_COORD_OFFSET] || touched[SF_R_COORD_SPLIT]) {
        sf_unit_get_coord(s->unit, &coord[1]);
        coord[0] = coord[1];
        coord[0].cycle_ds = hr[A(SF_R_COORD_CYCLE)];
        coord[0].offset_ds = hr[A(SF_R_COORD_OFFSET)];
        for (int i = 0; i < SF_MAX_PHASES; i++)
            coord[0].split_ds[i] = hr[A(SF_R_COORD_SPLIT) + i];
        if (memcmp(&coord[0], &coord[1], sizeof coord[0]) != 0)
            ops[n_ops++] = (op_t){.kind = OP_COORD};
    }
    if (touched[SF_R_COORD_SYNC]) {
        uint16_t at = A(SF_R_COORD_SYNC);
        uint32_t v = (uint32_t)hr[at] << 16 | hr[at + 1];
        if (v != st->sync_ref_ds)
            ops[n_ops++] = (op_t){.kind = OP_SYNC, .new_v = v, .old_v = st->sync_ref_ds};
    }
    for (size_t i = 0; i < N_COIL_REGS; i++) {
        sf_phase_ctl_t c = coil_regs[i].ctl;
        if (!touched[coil_regs[i].id] || c == SF_CTL_VEH_CALL || c == SF_CTL_PED_CALL)
            continue;
        uint16_t m = bits_to_mask(coils, A(coil_regs[i].id));
        uint16_t old = c == SF_CTL_HOLD        ? st->hold
                       : c == SF_CTL_FORCE_OFF ? st->force_off
                                               : st->omit;
        if (m != old)
            ops[n_ops++] = (op_t){.kind = OP_CTL, .ctl = c, .new_v = m, .old_v = old};
    }

    /* Apply until every change is in: one change may need another first (a longer min
     * green needs the longer max written in the same request). No progress in a whole
     * pass means the request as a whole is refused: undo what went in, newest first. */
    int order[MAX_OPS], n_done = 0;
    while (n_done < n_ops) {
        int progress = 0;
        for (int i = 0; i < n_ops; i++) {
            if (ops[i].done || op_apply(s, &ops[i], coord, false) != 0)
                continue;
            ops[i].done = true;
            order[n_done++] = i;
            progress = 1;
        }
        if (!progress)
            goto undo;
    }

    int rc = 0;
    switch (cmd) {
    case SF_R_MODE_COMMAND:
        rc = sf_unit_command_mode(s->unit, (sf_unit_mode_t)hr[A(SF_R_MODE_COMMAND)]);
        break;
    case SF_R_PLAN_SELECT:
        rc = sf_unit_select_plan(s->unit, (uint8_t)hr[A(SF_R_PLAN_SELECT)]);
        break;
    case SF_R_FAULT_RESET:
        rc = sf_unit_fault_reset(s->unit);
        break;
    case SF_R_PRIO_REQ_COMMIT: {
        sf_prio_request_t pr = {
            .id = hr[A(SF_R_PRIO_REQ_ID)],
            .level = (uint8_t)(hr[A(SF_R_PRIO_REQ_LEVEL)] > 255 ? 255 : hr[A(SF_R_PRIO_REQ_LEVEL)]),
            .phase_no =
                (uint8_t)(hr[A(SF_R_PRIO_REQ_PHASE)] > 255 ? 255 : hr[A(SF_R_PRIO_REQ_PHASE)]),
            .eta_ds = hr[A(SF_R_PRIO_REQ_ETA)],
            .action = (sf_prio_action_t)hr[A(SF_R_PRIO_REQ_TYPE)],
        };
        rc = sf_unit_priority(s->unit, &pr);
        break;
    }
    case SF_R_PLAN_DL_COMMIT: {
        sf_plan_t p;
        rc = plan_from_buffer(s, hr, &p);
        if (rc == 0)
            rc = sf_unit_write_plan(s->unit, &p);
        record_dl(s, rc); /* a report, kept also when the request is refused */
        s->stale = true;
        break;
    }
    default:
        break;
    }
    if (rc != 0)
        goto undo;

    /* One-way effects last: calls (checked against the configured phases above) and the
     * heartbeat cannot be taken back, and cannot fail for a checked request. */
    if (call_mask[0])
        (void)sf_unit_phase_control(s->unit, SF_CTL_VEH_CALL, call_mask[0]);
    if (call_mask[1])
        (void)sf_unit_phase_control(s->unit, SF_CTL_PED_CALL, call_mask[1]);
    if (touched[SF_R_HEARTBEAT])
        (void)sf_unit_heartbeat(s->unit, hr[A(SF_R_HEARTBEAT)]);
    if (touched[SF_R_DET_INPUT] || touched[SF_R_DET_INPUT_ENABLE]) {
        const sf_reg_t *di = sf_regmap_get(SF_R_DET_INPUT);
        uint64_t ext = 0;
        for (uint16_t i = 0; i < di->count; i++)
            if (coils[di->address + i])
                ext |= 1ull << i;
        sf_unit_set_external_detectors(s->unit, hr[A(SF_R_DET_INPUT_ENABLE)] != 0, ext);
    }
    return 0;

undo:
    for (int i = n_done - 1; i >= 0; i--)
        (void)op_apply(s, &ops[order[i]], coord, true);
    return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
}

static int reply_exception(sf_server_t *s, const uint8_t *req, int code)
{
    s->stats.exceptions++;
    if (code == MODBUS_EXCEPTION_ILLEGAL_FUNCTION)
        s->stats.refused_01++;
    else if (code == MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS)
        s->stats.refused_02++;
    else if (code == MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE)
        s->stats.refused_03++;
    return modbus_reply_exception(s->ctx, req, (unsigned)code) < 0 ? -1 : 0;
}

int sf_server_handle(sf_server_t *s, int fd, bool may_write, int frame_len)
{
    if (!s || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
    if (frame_len < MBAP_LEN + 1 || frame_len > MODBUS_TCP_MAX_ADU_LENGTH ||
        modbus_set_socket(s->ctx, fd) != 0) {
        errno = EINVAL;
        return -1;
    }
    int len;
    if (fd < FD_SETSIZE) {
        /* libmodbus frames the request (it reads exactly what the function needs). */
        len = modbus_receive(s->ctx, req);
        if (len < 0)
            return -1;
        if (len == 0)
            return 0; /* nothing for us (libmodbus filtered it) */
    } else {
        /* modbus_receive waits with select(), which cannot take a descriptor at or above
         * FD_SETSIZE (a 1,000-unit host has thousands). The caller has already checked that
         * this whole frame is buffered and that its length is exactly what libmodbus would
         * read for its function (sf_server_frame_ok), so one recv takes the same bytes. */
        ssize_t r = recv(fd, req, (size_t)frame_len, MSG_DONTWAIT);
        if (r < 0)
            return -1;
        len = (int)r;
    }
    if (len != frame_len) {
        errno = EPROTO;
        return -1;
    }
    return sf_server_handle_frame(s, fd, may_write, req, len);
}

int sf_server_handle_frame(sf_server_t *s, int fd, bool may_write, const uint8_t *adu, int len)
{
    if (!s || fd < 0 || !adu) {
        errno = EINVAL;
        return -1;
    }
    if (sf_server_frame_ok(adu, len) != 0) {
        errno = EPROTO;
        return -1;
    }
    if (modbus_set_socket(s->ctx, fd) != 0) {
        errno = EINVAL;
        return -1;
    }
    /* libmodbus parses and answers from this copy (its API takes a mutable buffer). */
    uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
    memcpy(req, adu, (size_t)len);
    s->stats.requests++;
    refresh(s);
    int fc = req[MBAP_LEN];
    switch (fc) {
    case FC_WRITE_SINGLE_COIL:
    case FC_WRITE_SINGLE_REGISTER:
    case FC_WRITE_MULTIPLE_COILS:
    case FC_WRITE_MULTIPLE_REGS:
    case FC_WRITE_AND_READ_REGS: {
        if (!may_write)
            return reply_exception(s, req, MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
        int code = apply_write(s, req, fc);
        if (code != 0)
            return reply_exception(s, req, code);
        s->stats.writes_ok++;
        /* libmodbus writes the values into the image and sends the normal reply (FC 23:
         * then reads its read part from the image refreshed when this request arrived,
         * so what it returns is the state from before this write); the image is
         * refreshed from the unit before the next request. */
        int rc = modbus_reply(s->ctx, req, len, s->map);
        s->stale = true;
        /* The phase timing table changes only through its own registers: re-reading it
         * (8 fields x 16 phases from the unit) after every heartbeat write cost more than
         * the rest of the refresh. */
        if (fc == FC_WRITE_SINGLE_REGISTER || fc == FC_WRITE_MULTIPLE_REGS ||
            fc == FC_WRITE_AND_READ_REGS) {
            const uint8_t *w = req + MBAP_LEN + (fc == FC_WRITE_AND_READ_REGS ? 5 : 1);
            uint32_t first = be16(w);
            uint32_t last = first + (fc == FC_WRITE_SINGLE_REGISTER ? 1u : be16(w + 2));
            const sf_reg_t *lo = sf_regmap_get(SF_R_PHASE_MIN_GREEN);
            const sf_reg_t *hi = sf_regmap_get(SF_R_PHASE_PED_CLEAR);
            if (first < (uint32_t)hi->address + sf_regmap_span(hi) && last > lo->address)
                s->timing_stale = true;
        }
        return rc < 0 ? -1 : 0;
    }
    case MODBUS_FC_READ_COILS:
    case MODBUS_FC_READ_DISCRETE_INPUTS:
    case MODBUS_FC_READ_HOLDING_REGISTERS:
    case MODBUS_FC_READ_INPUT_REGISTERS:
    case FC_REPORT_SLAVE_ID:
        return modbus_reply(s->ctx, req, len, s->map) < 0 ? -1 : 0;
    default:
        /* Mask write would bypass the write checks (read/write multiple goes through
         * them above); the rest (diagnostics, exception status ...) are not offered by a
         * signal unit. */
        return reply_exception(s, req, MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
    }
}
