/* tests/test_modbus.c — the unit's Modbus TCP server, over real loopback sockets:
 * a libmodbus client against a host running in a thread of the test, raw sockets for
 * malformed and partial frames, and `sigflow unit` as a child process. */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_data_segs_in (glibc's is older) */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "regmap.h"
#include "scenario.h"

#define SINGLE   SIGFLOW_ASSETS "/scenarios/single.json"
#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"

/* ---- fixtures -------------------------------------------------------------------------- */

typedef struct {
    sf_host_t *h;
    pthread_t th;
    atomic_int stop;
    int tick; /* tick the units at ~10 Hz inside the thread */
} hostrun_t;

static sf_scenario_t *load(const char *path)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(path, NULL, 0, &errs);
    cr_assert_not_null(sc, "cannot load %s: %s", path, errs.n ? errs.msg[0] : "?");
    return sc;
}

static void *host_main(void *arg)
{
    hostrun_t *r = arg;
    int n = 0;
    while (!atomic_load(&r->stop)) {
        sf_host_poll(r->h, 10);
        if (r->tick && ++n % 10 == 0)
            sf_host_tick(r->h);
    }
    return NULL;
}

/* A host with `copies` units of intersection 0 of path, run past start-up (flash +
 * all-red) before the serving thread starts, so commands are accepted. */
static hostrun_t *start_host(const char *path, int copies, const sf_host_config_t *cfg)
{
    hostrun_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    sf_scenario_t *sc = load(path);
    r->h = sf_host_new(cfg);
    cr_assert_not_null(r->h, "sf_host_new: %s", strerror(errno));
    for (int i = 0; i < copies; i++) {
        const sf_intersection_t *ix = &sc->intersections[i % sc->n_intersections];
        int idx = sf_host_add_unit(r->h, ix, NULL);
        cr_assert_eq(idx, i, "add unit %d: %s", i, strerror(errno));
        cr_assert_gt(sf_host_port(r->h, (size_t)i), 0);
    }
    sf_scenario_destroy(&sc);
    for (int k = 0; k < 200; k++) /* 20 s: start-up is 10 s flash + 5 s all-red */
        sf_host_tick(r->h);
    cr_assert_eq(pthread_create(&r->th, NULL, host_main, r), 0);
    return r;
}

static void stop_host(hostrun_t *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->th, NULL);
    sf_host_destroy(&r->h);
    cr_assert_null(r->h);
    free(r);
}

static modbus_t *client(uint16_t port)
{
    modbus_t *c = modbus_new_tcp("127.0.0.1", port);
    cr_assert_not_null(c);
    modbus_set_response_timeout(c, 5, 0);
    cr_assert_eq(modbus_connect(c), 0, "connect to %u: %s", port, modbus_strerror(errno));
    return c;
}

static void drop(modbus_t *c)
{
    modbus_close(c);
    modbus_free(c);
}

static uint16_t A(const char *name)
{
    const sf_reg_t *r = sf_regmap_by_name(name);
    cr_assert_not_null(r, "no register %s", name);
    return r->address;
}

static uint16_t read_in(modbus_t *c, const char *name, int elem)
{
    uint16_t v = 0;
    cr_assert_eq(modbus_read_input_registers(c, A(name) + elem, 1, &v), 1, "read %s: %s", name,
                 modbus_strerror(errno));
    return v;
}

static uint16_t read_hold(modbus_t *c, const char *name, int elem)
{
    uint16_t v = 0;
    cr_assert_eq(modbus_read_registers(c, A(name) + elem, 1, &v), 1, "read %s: %s", name,
                 modbus_strerror(errno));
    return v;
}

/* Write one holding register; returns 0 or the Modbus exception code. */
static int write_hold(modbus_t *c, const char *name, int elem, uint16_t v)
{
    if (modbus_write_register(c, A(name) + elem, v) == 1)
        return 0;
    return errno > MODBUS_ENOBASE && errno < MODBUS_ENOBASE + 20 ? errno - MODBUS_ENOBASE : -1;
}

static int write_holds(modbus_t *c, int addr, int n, const uint16_t *v)
{
    if (modbus_write_registers(c, addr, n, v) == n)
        return 0;
    return errno > MODBUS_ENOBASE && errno < MODBUS_ENOBASE + 20 ? errno - MODBUS_ENOBASE : -1;
}

/* Raw TCP client (optionally from source address src) for frames libmodbus will not send. */
static int raw_connect(uint16_t port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (src) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &s.sin_addr);
        cr_assert_eq(bind(fd, (struct sockaddr *)&s, sizeof s), 0, "bind %s", src);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read until the peer closes (0: FIN, or RST because it closed with our bytes unread)
 * or a reply arrives (>0); -1 on timeout. */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap)
{
    ssize_t r = recv(fd, buf, cap, 0);
    if (r < 0 && errno == ECONNRESET)
        return 0;
    return r < 0 ? -1 : r;
}

static size_t frame_fc6(uint8_t *f, uint16_t tid, uint16_t addr, uint16_t val)
{
    const uint8_t b[] = {
        (uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, 1, 0x06, (uint8_t)(addr >> 8), (uint8_t)addr,
        (uint8_t)(val >> 8), (uint8_t)val};
    memcpy(f, b, sizeof b);
    return sizeof b;
}

/* FC 23 frame: write n_wr values at wr (byte count `bytes`, normally 2 n_wr), read n_rd
 * registers at rd. */
static size_t frame_fc23(uint8_t *f, uint16_t tid, uint16_t rd, uint16_t n_rd, uint16_t wr,
                         uint16_t n_wr, uint8_t bytes, const uint16_t *vals)
{
    size_t len = 0;
    const uint8_t h[] = {(uint8_t)(tid >> 8),
                         (uint8_t)tid,
                         0,
                         0,
                         0,
                         (uint8_t)(11 + bytes),
                         1,
                         0x17,
                         (uint8_t)(rd >> 8),
                         (uint8_t)rd,
                         (uint8_t)(n_rd >> 8),
                         (uint8_t)n_rd,
                         (uint8_t)(wr >> 8),
                         (uint8_t)wr,
                         (uint8_t)(n_wr >> 8),
                         (uint8_t)n_wr,
                         bytes};
    memcpy(f, h, sizeof h);
    len = sizeof h;
    for (unsigned i = 0; i < bytes / 2u; i++) {
        f[len++] = (uint8_t)(vals[i] >> 8);
        f[len++] = (uint8_t)vals[i];
    }
    return len;
}

/* ---- identity and status ----------------------------------------------------------------- */

CHILD_SUITE(modbus);

Test(modbus, identity_and_status)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c = client(sf_host_port(r->h, 0));
    sf_scenario_t *sc = load(SINGLE);
    const sf_intersection_t *ix = &sc->intersections[0];

    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    cr_expect_eq(read_in(c, "unit_index", 0), 0);
    cr_expect_eq(read_in(c, "n_phases", 0), ix->n_phases);
    cr_expect_eq(read_in(c, "n_sg", 0), ix->n_sg);
    cr_expect_eq(read_in(c, "n_det", 0), ix->n_det);
    uint16_t id[16];
    cr_assert_eq(modbus_read_input_registers(c, A("unit_id"), 16, id), 16);
    char got[33] = {0};
    for (int i = 0; i < 16; i++) {
        got[2 * i] = (char)(id[i] >> 8);
        got[2 * i + 1] = (char)(id[i] & 0xFF);
    }
    cr_expect_str_eq(got, ix->id);
    uint16_t up[2];
    cr_assert_eq(modbus_read_input_registers(c, A("uptime"), 2, up), 2);
    cr_expect_eq((uint32_t)up[0] << 16 | up[1], 200u, "uptime counts the 200 ticks run");

    /* After start-up the unit runs a plan: a centre mode code, lamps on every group. */
    uint16_t mode = read_in(c, "control_mode", 0);
    cr_expect((mode >= 0x10 && mode <= 0x12) || (mode >= 0x20 && mode <= 0x22), "control mode 0x%x",
              mode);
    cr_expect_geq(read_in(c, "active_plan", 0), 1);
    uint16_t lamps[32];
    cr_assert_eq(modbus_read_input_registers(c, A("sg_lamp"), 32, lamps), 32);
    for (int i = 0; i < 32; i++) {
        if (i >= ix->n_sg) {
            cr_expect_eq(lamps[i], 0, "unconfigured group %d reads 0", i);
            continue;
        }
        cr_expect(lamps[i] == 0x10 || lamps[i] == 0x11 || lamps[i] == 0x20 || lamps[i] == 0x21 ||
                      lamps[i] == 0x30 || lamps[i] == 0x31,
                  "group %d lamp 0x%x", i, lamps[i]);
    }
    /* The status groups agree with the lamps' phase view: some phase is on. */
    cr_expect_neq(read_in(c, "phase_status_on", 0) | read_in(c, "phase_status_reds", 0), 0);

    /* Timing in NTCIP units, by phase number (element = number - 1). */
    for (int p = 0; p < ix->n_phases; p++) {
        int e = ix->phases[p].id - 1;
        cr_expect_eq(read_hold(c, "phase_yellow", e), ix->phases[p].yellow_ds);
        cr_expect_eq(read_hold(c, "phase_min_green", e), ix->phases[p].min_green_ds / 10);
        cr_expect_eq(read_hold(c, "phase_red_clear", e), ix->phases[p].red_clear_ds);
    }
    cr_expect_eq(read_hold(c, "phase_yellow", 0), 0, "phase 1 is not configured in single");
    /* Plan read-back of plan 1 (plan_rd_select defaults to 1). */
    cr_expect_eq(read_in(c, "plan_rd_number", 0), ix->plans[0].id);
    cr_expect_eq(read_in(c, "plan_rd_cycle", 0), ix->plans[0].cycle_ds);
    cr_expect_eq(read_in(c, "plan_rd_split", ix->phases[0].id - 1), ix->plans[0].split_ds[0]);
    cr_expect_eq(read_hold(c, "coord_cycle", 0), ix->plans[0].cycle_ds);
    /* Coils and discrete inputs read; reads beyond the map are exception 02. */
    uint8_t bits[80];
    cr_expect_eq(modbus_read_bits(c, 0, 80, bits), 80);
    cr_expect_eq(modbus_read_input_bits(c, 0, 64, bits), 64);
    uint16_t big[10];
    cr_expect_eq(modbus_read_input_registers(c, 9000, 10, big), -1);
    cr_expect_eq(errno, EMBXILADD);
    /* Reads may span gaps: 0..120 covers identity, a gap and status. */
    uint16_t span[120];
    cr_expect_eq(modbus_read_input_registers(c, 0, 120, span), 120);
    cr_expect_eq(span[0], SF_REGMAP_VERSION);
    sf_scenario_destroy(&sc);
    drop(c);
    stop_host(r);
}

/* ---- writes --------------------------------------------------------------------------- */

Test(modbus, valid_writes_take_effect)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c = client(sf_host_port(r->h, 0));
    /* Phase 2 yellow 3.0 -> 4.5 s, phase 4 red clear 2.0 -> 2.5 s. */
    cr_expect_eq(write_hold(c, "phase_yellow", 1, 45), 0);
    cr_expect_eq(read_hold(c, "phase_yellow", 1), 45);
    cr_expect_eq(write_hold(c, "phase_red_clear", 3, 25), 0);
    cr_expect_eq(read_hold(c, "phase_red_clear", 3), 25);
    /* A block write over phases 1-4: unconfigured phases 1 and 3 written as the 0 they
     * read, phase 2 min green 10 -> 12 s (still fits its 30 s split). */
    uint16_t min_green[4] = {0, 12, 0, 10};
    cr_expect_eq(write_holds(c, A("phase_min_green"), 4, min_green), 0);
    cr_expect_eq(read_hold(c, "phase_min_green", 1), 12);
    /* 40 s would not fit the stored plan's 30 s split: the unit refuses it. */
    cr_expect_eq(write_hold(c, "phase_min_green", 1, 40), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_min_green", 1), 12);
    /* Coordination of the running plan: cycle, offset and splits change together in one
     * request (holding 10-27); the cycle alone would break the ring sum and is refused. */
    uint16_t co[18] = {0};
    co[0] = 800;     /* cycle 80 s */
    co[1] = 0;       /* offset */
    co[2 + 1] = 400; /* phase 2 */
    co[2 + 3] = 400; /* phase 4 */
    cr_assert_eq(A("coord_split") - A("coord_cycle"), 2);
    cr_expect_eq(write_holds(c, A("coord_cycle"), 18, co), 0);
    cr_expect_eq(read_hold(c, "coord_cycle", 0), 800);
    cr_expect_eq(read_hold(c, "coord_split", 1), 400);
    cr_expect_eq(write_hold(c, "coord_cycle", 0, 700), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "coord_cycle", 0), 800);
    /* Fields that depend on each other, in one request: phase 2 max1 35 -> 20 s first,
     * then min green 22 s with max1 24 s. In address order min green comes first and
     * alone would exceed max1 (20); the request is valid as a whole and is applied. */
    cr_expect_eq(write_hold(c, "phase_max1", 1, 20), 0);
    int from = A("phase_min_green") + 1, to = A("phase_max1") + 1, cnt = to - from + 1;
    uint16_t blk[64];
    cr_assert_leq(cnt, 64);
    cr_assert_eq(modbus_read_registers(c, from, cnt, blk), cnt);
    blk[0] = 22;
    blk[cnt - 1] = 24;
    cr_expect_eq(write_holds(c, from, cnt, blk), 0);
    cr_expect_eq(read_hold(c, "phase_min_green", 1), 22);
    cr_expect_eq(read_hold(c, "phase_max1", 1), 24);
    /* Heartbeat is echoed. */
    cr_expect_eq(write_hold(c, "heartbeat", 0, 1234), 0);
    cr_expect_eq(read_in(c, "heartbeat_echo", 0), 1234);
    /* Mode command: actuated, read back. */
    cr_expect_eq(write_hold(c, "mode_command", 0, 2), 0);
    cr_expect_eq(read_hold(c, "mode_command", 0), 2);
    /* A vehicle call on phase 4 shows in the call status (or the phase is already next). */
    cr_expect_eq(modbus_write_bit(c, A("phase_call") + 3, 1), 1);
    uint16_t calls = read_in(c, "phase_status_veh_calls", 0);
    uint8_t coil = 0;
    cr_expect_eq(modbus_read_bits(c, A("phase_call") + 3, 1, &coil), 1);
    cr_expect_eq(coil, (calls >> 3) & 1u, "phase_call coil reads the pending call");
    /* Omit phase 4 (persistent) and clear it again. */
    cr_expect_eq(modbus_write_bit(c, A("phase_omit") + 3, 1), 1);
    cr_expect_eq(modbus_read_bits(c, A("phase_omit") + 3, 1, &coil), 1);
    cr_expect_eq(coil, 1);
    cr_expect_eq(modbus_write_bit(c, A("phase_omit") + 3, 0), 1);
    cr_expect_eq(modbus_read_bits(c, A("phase_omit") + 3, 1, &coil), 1);
    cr_expect_eq(coil, 0);

    /* A whole plan downloaded in one Write Multiple Registers (400..437): plan 2, 80 s,
     * phase 2 50 s and phase 4 30 s. */
    uint16_t dl[38] = {0};
    dl[0] = 2;   /* number */
    dl[1] = 800; /* cycle 0.1 s */
    dl[2] = 0;   /* offset */
    dl[3] = 0;   /* coordinated phases */
    dl[4] = 0;   /* force mode */
    dl[5 + 1] = 500;
    dl[5 + 3] = 300;
    dl[37] = 1; /* commit */
    cr_assert_eq(A("plan_dl_commit") - A("plan_dl_number"), 37);
    cr_expect_eq(write_holds(c, A("plan_dl_number"), 38, dl), 0);
    cr_expect_eq(read_in(c, "plan_dl_status", 0), SF_PLAN_DL_ACCEPTED);
    cr_expect_eq(read_in(c, "n_plans", 0), 2);
    cr_expect_eq(write_hold(c, "plan_rd_select", 0, 2), 0);
    cr_expect_eq(read_in(c, "plan_rd_number", 0), 2);
    cr_expect_eq(read_in(c, "plan_rd_cycle", 0), 800);
    cr_expect_eq(read_in(c, "plan_rd_split", 1), 500);
    cr_expect_eq(read_in(c, "plan_rd_split", 3), 300);
    /* ... and selected. */
    cr_expect_eq(write_hold(c, "plan_select", 0, 2), 0);
    uint16_t sel = read_in(c, "pending_plan", 0), act = read_in(c, "active_plan", 0);
    cr_expect(sel == 2 || act == 2, "plan 2 pending (%u) or active (%u)", sel, act);

    /* A priority request through the mailbox, taken whole with its commit. */
    uint16_t pr[6] = {77, 1, 2, 150, 1, 1}; /* id, level, phase, ETA 15 s, check-in, commit */
    cr_expect_eq(write_holds(c, A("prio_req_id"), 6, pr), 0);
    uint16_t ids[8];
    cr_assert_eq(modbus_read_input_registers(c, A("prio_status_id"), 8, ids), 8);
    int found = 0;
    for (int i = 0; i < 8; i++)
        found += ids[i] == 77;
    cr_expect_eq(found, 1, "request 77 is in the status table");
    drop(c);
    stop_host(r);
}

Test(modbus, refused_writes_change_nothing)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c = client(sf_host_port(r->h, 0));
    /* Unsafe values: exception 03, value unchanged. */
    cr_expect_eq(write_hold(c, "phase_yellow", 1, 25), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_yellow", 1), 30);
    cr_expect_eq(write_hold(c, "phase_min_green", 1, 4), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_min_green", 1), 10);
    cr_expect_eq(write_hold(c, "phase_red_clear", 3, 70), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    /* Max below min green: within the map's range, refused by the unit. */
    cr_expect_eq(write_hold(c, "phase_max1", 1, 8), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_max1", 1), 35);
    /* A timing for a phase the unit does not have. */
    cr_expect_eq(write_hold(c, "phase_yellow", 0, 40), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    /* Multi-register write, all or nothing: phase 2 valid (4.0 s), phase 4 unsafe. */
    uint16_t y[4] = {0, 40, 0, 20};
    cr_expect_eq(write_holds(c, A("phase_yellow"), 4, y), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_yellow", 1), 30, "phase 2 unchanged");
    cr_expect_eq(read_hold(c, "phase_yellow", 3), 30, "phase 4 unchanged");
    /* ... also when the refusal comes from the unit, after a part was applied: phase 2's
     * max1 is fine, phase 4's is below its min green. */
    uint16_t m[4] = {0, 40, 0, 8};
    cr_expect_eq(write_holds(c, A("phase_max1"), 4, m), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_max1", 1), 35, "phase 2 max1 rolled back");
    /* Addresses: not writable (02). */
    cr_expect_eq(write_hold(c, "fault_reset", 0, 0), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(modbus_write_register(c, 5, 1), -1); /* gap in the holding table */
    cr_expect_eq(errno, EMBXILADD);
    cr_expect_eq(modbus_write_register(c, 9000, 1), -1); /* beyond the map */
    cr_expect_eq(errno, EMBXILADD);
    uint16_t two[2] = {40, 40}; /* runs from phase_ped_clear[15] into the gap after it */
    cr_expect_eq(write_holds(c, A("phase_ped_clear") + 15, 2, two),
                 MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
    /* Half of a u32 is an address error. */
    cr_expect_eq(modbus_write_register(c, A("coord_sync"), 0), -1);
    cr_expect_eq(errno, EMBXILADD);
    /* Discrete inputs and input registers cannot be written at all; a coil for a phase
     * the unit does not have is refused. */
    cr_expect_eq(modbus_write_bit(c, A("phase_call") + 8, 1), -1);
    cr_expect_eq(errno, EMBXILVAL);
    /* Mode and plan commands the unit refuses. */
    cr_expect_eq(write_hold(c, "mode_command", 0, 9), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(write_hold(c, "plan_select", 0, 5), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE,
                 "plan 5 is not stored");
    /* single.json's plan has no coordinated phase: coordinated mode is refused (wrong
     * mode for the plan) and the mode stays. */
    uint16_t before = read_hold(c, "mode_command", 0);
    cr_expect_eq(write_hold(c, "mode_command", 0, 3), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "mode_command", 0), before);
    /* Two commands in one request. */
    uint16_t cmds[2] = {2, 1};
    cr_expect_eq(write_holds(c, A("mode_command"), 2, cmds), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    /* A plan whose split is below min green + yellow + red clear: refused whole, the
     * reason readable, nothing stored; the staging buffer keeps its old contents. */
    uint16_t dl[38] = {0};
    dl[0] = 3;
    dl[1] = 600;
    dl[5 + 1] = 100; /* 10 s < 10 + 3 + 2 */
    dl[5 + 3] = 500;
    dl[37] = 1;
    cr_expect_eq(write_holds(c, A("plan_dl_number"), 38, dl), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_in(c, "plan_dl_status", 0), SF_PLAN_DL_REFUSED);
    cr_expect_neq(read_in(c, "plan_dl_error", 0), 0);
    cr_expect_eq(read_in(c, "n_plans", 0), 1);
    cr_expect_eq(read_hold(c, "plan_dl_number", 0), 0, "buffer untouched by a refused write");
    cr_expect_eq(write_hold(c, "plan_rd_select", 0, 3), 0);
    cr_expect_eq(read_in(c, "plan_rd_number", 0), 0, "plan 3 not stored");
    /* Splits not summing to the cycle. */
    dl[5 + 1] = 300;
    dl[5 + 3] = 200;
    cr_expect_eq(write_holds(c, A("plan_dl_number"), 38, dl), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_in(c, "n_plans", 0), 1);
    /* A priority request for a phase out of range is refused by the map (03). */
    uint16_t pr[6] = {5, 1, 17, 100, 1, 1};
    cr_expect_eq(write_holds(c, A("prio_req_id"), 6, pr), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    /* FC 22 is not offered (FC 23 is, through the write checks: fc23_* below). */
    cr_expect_eq(modbus_mask_write_register(c, A("heartbeat"), 0xFF, 0), -1);
    cr_expect_eq(errno, EMBXILFUN);
    /* After all that, the connection still works. */
    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    drop(c);
    stop_host(r);
}

/* ---- many units, many clients --------------------------------------------------------------- */

Test(modbus, fifty_units_in_one_host)
{
    enum { N = 50 };
    hostrun_t *r = start_host(CORRIDOR, N, NULL);
    r->tick = 0;
    cr_assert_eq(sf_host_n_units(r->h), (size_t)N);
    modbus_t *c[N];
    for (int i = 0; i < N; i++)
        c[i] = client(sf_host_port(r->h, (size_t)i));
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            cr_expect_eq(read_in(c[i], "protocol_version", 0), SF_REGMAP_VERSION);
            cr_expect_eq(read_in(c[i], "unit_index", 0), i);
        }
    /* A write to one unit does not show on another. */
    cr_expect_eq(write_hold(c[7], "heartbeat", 0, 4242), 0);
    cr_expect_eq(read_in(c[7], "heartbeat_echo", 0), 4242);
    cr_expect_neq(read_in(c[8], "heartbeat_echo", 0), 4242);
    for (int i = 0; i < N; i++)
        drop(c[i]);
    stop_host(r);
}

/* Read exactly n bytes (replies may come in any number of segments); false on timeout or
 * close. */
static bool recv_n(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* A pipelining client sends many requests in one segment, the last one cut short: every
 * complete one is answered, in order, each with its own transaction id; the cut one once
 * its rest arrives; a frame sent one byte at a time is answered like any other. */
Test(modbus, pipelined_requests_in_one_segment_answered_in_order)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    uint16_t port = sf_host_port(r->h, 0);
    int fd = raw_connect(port, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    enum { N = 40 }; /* 40 reads of 12 bytes: 480 bytes in one send */
    uint8_t out[N * 12 + 12];
    size_t len = 0;
    for (uint16_t k = 0; k < N; k++) {
        /* FC 4, one register: protocol_version or unit_index alternately */
        uint16_t tid = (uint16_t)(1000 + k), addr = k % 2 ? A("unit_index") : A("protocol_version");
        const uint8_t f[] = {(uint8_t)(tid >> 8),  (uint8_t)tid,  0, 0, 0, 6, 1, 0x04,
                             (uint8_t)(addr >> 8), (uint8_t)addr, 0, 1};
        memcpy(out + len, f, sizeof f);
        len += sizeof f;
    }
    uint8_t hb[12];
    frame_fc6(hb, 2000, A("heartbeat"), 4321);
    memcpy(out + len, hb, 5); /* the write, cut after 5 bytes */
    cr_assert_eq(send(fd, out, len + 5, 0), (ssize_t)(len + 5));
    uint8_t in[N * 11];
    cr_assert(recv_n(fd, in, sizeof in), "all %d replies", N);
    for (int k = 0; k < N; k++) {
        const uint8_t *p = in + 11 * k;
        cr_expect_eq(p[0] << 8 | p[1], 1000 + k, "reply %d in order", k);
        cr_expect_eq(p[7], 0x04);
        cr_expect_eq(p[8], 2);
        cr_expect_eq(p[9] << 8 | p[10], k % 2 ? 0 : SF_REGMAP_VERSION);
    }
    cr_assert_eq(send(fd, hb + 5, 7, 0), 7);
    uint8_t echo[12];
    cr_assert(recv_n(fd, echo, sizeof echo));
    cr_expect_eq(memcmp(echo, hb, sizeof hb), 0, "FC 6 echo of the completed write");
    /* One byte per segment. */
    uint16_t ea = A("heartbeat_echo");
    const uint8_t rd[] = {0x12, 0x34, 0, 0, 0, 6, 1, 0x04, (uint8_t)(ea >> 8), (uint8_t)ea, 0, 1};
    for (size_t i = 0; i < sizeof rd; i++)
        cr_assert_eq(send(fd, rd + i, 1, 0), 1);
    uint8_t rep[11];
    cr_assert(recv_n(fd, rep, sizeof rep));
    cr_expect_eq(rep[0] << 8 | rep[1], 0x1234);
    cr_expect_eq(rep[9] << 8 | rep[10], 4321, "the write took effect");
    close(fd);
    stop_host(r);
}

/* Data segments fd has received so far (TCP_INFO tcpi_data_segs_in). */
static uint32_t data_segs_in(int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    memset(&ti, 0, sizeof ti);
    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    return ti.tcpi_data_segs_in;
}

/* The host corks a connection from its first batch of several requests on and pushes each
 * batch's replies with one call: every batch, the first and the ones after it on the same
 * (still corked) connection, comes back as one segment, and a lone request in between is
 * answered too (each reply its own segment, nothing held back for the next batch). */
Test(modbus, each_pipelined_batch_answered_in_one_segment)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    int fd = raw_connect(sf_host_port(r->h, 0), NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    enum { N = 10 };
    uint16_t tid = 1;
    for (int batch = 0; batch < 4; batch++) {
        int n = batch == 2 ? 1 : N; /* batch 2: one request alone */
        uint8_t out[N * 12];
        for (int k = 0; k < n; k++) {
            uint16_t a = A("unit_index");
            const uint8_t f[] = {(uint8_t)(tid >> 8), (uint8_t)tid, 0, 0, 0, 6, 1, 0x04,
                                 (uint8_t)(a >> 8),   (uint8_t)a,   0, 1};
            memcpy(out + 12 * k, f, sizeof f);
            tid++;
        }
        uint32_t before = data_segs_in(fd);
        cr_assert_eq(send(fd, out, (size_t)(12 * n), 0), (ssize_t)(12 * n));
        uint8_t in[N * 11];
        cr_assert(recv_n(fd, in, (size_t)(11 * n)), "batch %d: %d replies", batch, n);
        for (int k = 0; k < n; k++)
            cr_expect_eq(in[11 * k] << 8 | in[11 * k + 1], tid - n + k, "batch %d reply %d", batch,
                         k);
        cr_expect_eq(data_segs_in(fd) - before, 1u, "batch %d of %d requests: %u segments", batch,
                     n, data_segs_in(fd) - before);
    }
    close(fd);
    stop_host(r);
}

Test(modbus, several_clients_on_one_unit)
{
    enum { N = 6 };
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c[N];
    for (int i = 0; i < N; i++)
        c[i] = client(sf_host_port(r->h, 0));
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < N; i++) {
            cr_expect_eq(write_hold(c[i], "heartbeat", 0, (uint16_t)(round * 100 + i)), 0);
            for (int j = 0; j < N; j++)
                cr_expect_eq(read_in(c[j], "heartbeat_echo", 0), round * 100 + i,
                             "client %d sees client %d's write", j, i);
        }
    for (int i = 0; i < N; i++)
        drop(c[i]);
    stop_host(r);
}

/* The bit tables (det_input coils, det_presence discrete inputs) are rebuilt from the
 * unit's 64-bit masks eight bits at a time: every bit must land on its own address, for
 * patterns that differ in every byte and at both ends. */
Test(modbus, bit_tables_follow_the_unit_bit_for_bit)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c = client(sf_host_port(r->h, 0));
    int n_det = read_in(c, "n_det", 0);
    cr_assert_gt(n_det, 1);
    cr_assert_leq(n_det, 64);
    uint64_t all = n_det == 64 ? ~0ull : (1ull << n_det) - 1;
    const uint64_t patterns[] = {
        all, 1, 1ull << (n_det - 1), 0x5555555555555555ull & all, 0xA5C3A5C3A5C3A5C3ull & all, 0};
    cr_expect_eq(write_hold(c, "det_input_enable", 0, 1), 0);
    for (size_t k = 0; k < sizeof patterns / sizeof patterns[0]; k++) {
        uint8_t want[64] = {0}, coils[64], pres[64];
        for (int d = 0; d < n_det; d++)
            want[d] = (uint8_t)((patterns[k] >> d) & 1u);
        cr_assert_eq(modbus_write_bits(c, A("det_input"), n_det, want), n_det, "write: %s",
                     modbus_strerror(errno));
        memset(coils, 0xEE, sizeof coils);
        memset(pres, 0xEE, sizeof pres);
        cr_assert_eq(modbus_read_bits(c, A("det_input"), 64, coils), 64);
        cr_assert_eq(modbus_read_input_bits(c, A("det_presence"), 64, pres), 64);
        for (int d = 0; d < 64; d++) {
            cr_expect_eq(coils[d], want[d], "pattern %zu det_input[%d]", k, d);
            cr_expect_eq(pres[d], want[d], "pattern %zu det_presence[%d]", k, d);
        }
    }
    drop(c);
    stop_host(r);
}

/* ---- bad peers ---------------------------------------------------------------------------- */

Test(modbus, malformed_frame_closes_only_that_connection)
{
    sf_host_config_t cfg = {.frame_timeout_ms = 300};
    hostrun_t *r = start_host(SINGLE, 1, &cfg);
    r->tick = 1;
    uint16_t port = sf_host_port(r->h, 0);
    modbus_t *good = client(port);
    cr_expect_eq(read_in(good, "protocol_version", 0), SF_REGMAP_VERSION);
    static const uint8_t bad[][16] = {
        /* protocol id 7 */
        {0, 1, 0, 7, 0, 6, 1, 0x03, 0, 0, 0, 1},
        /* MBAP length 3 for a 6-byte read PDU: trailing bytes */
        {0, 1, 0, 0, 0, 3, 1, 0x03, 0, 0, 0, 1},
        /* FC16 whose byte count (9) disagrees with its length */
        {0, 1, 0, 0, 0, 9, 1, 0x10, 0, 0, 0, 1, 9, 0, 1},
        /* unknown function code carrying data */
        {0, 1, 0, 0, 0, 4, 1, 0x41, 0xAA, 0xBB},
    };
    static const size_t bad_len[] = {12, 12, 15, 10};
    for (size_t k = 0; k < sizeof bad_len / sizeof bad_len[0]; k++) {
        int fd = raw_connect(port, NULL);
        cr_assert_eq(send(fd, bad[k], bad_len[k], 0), (ssize_t)bad_len[k]);
        uint8_t buf[300];
        cr_expect_eq(raw_recv(fd, buf, sizeof buf), 0, "frame %zu: connection closed, no reply", k);
        close(fd);
        cr_expect_eq(read_in(good, "protocol_version", 0), SF_REGMAP_VERSION,
                     "the other client is still served after frame %zu", k);
    }
    /* A well-formed request for a function the server does not offer gets exception 01
     * and the connection stays. */
    int fd = raw_connect(port, NULL);
    const uint8_t fc7[] = {0, 9, 0, 0, 0, 2, 1, 0x07};
    cr_assert_eq(send(fd, fc7, sizeof fc7, 0), (ssize_t)sizeof fc7);
    uint8_t buf[300];
    cr_assert_eq(raw_recv(fd, buf, sizeof buf), 9);
    cr_expect_eq(buf[7], 0x87);
    cr_expect_eq(buf[8], MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
    uint8_t f[12];
    size_t n = frame_fc6(f, 10, A("heartbeat"), 99);
    cr_assert_eq(send(fd, f, n, 0), (ssize_t)n);
    cr_assert_eq(raw_recv(fd, buf, sizeof buf), 12, "normal FC 6 echo");
    cr_expect_eq(memcmp(buf, f, 12), 0);
    close(fd);
    drop(good);
    stop_host(r);
}

Test(modbus, client_vanishing_mid_request)
{
    sf_host_config_t cfg = {.frame_timeout_ms = 300};
    hostrun_t *r = start_host(SINGLE, 1, &cfg);
    uint16_t port = sf_host_port(r->h, 0);
    modbus_t *good = client(port);
    uint8_t f[12], buf[64];
    size_t n = frame_fc6(f, 1, A("heartbeat"), 7);
    /* 1: half a frame, then gone. */
    int fd = raw_connect(port, NULL);
    cr_assert_eq(send(fd, f, 5, 0), 5);
    close(fd);
    cr_expect_eq(read_in(good, "protocol_version", 0), SF_REGMAP_VERSION);
    /* 2: half a frame, then silent but connected: the others are served meanwhile, the
     * stalled one is closed once its frame is overdue, and its half write did nothing. */
    fd = raw_connect(port, NULL);
    cr_assert_eq(send(fd, f, 9, 0), 9);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(read_in(good, "protocol_version", 0), SF_REGMAP_VERSION);
    cr_expect_eq(raw_recv(fd, buf, sizeof buf), 0, "stalled client closed by the server");
    close(fd);
    cr_expect_neq(read_in(good, "heartbeat_echo", 0), 7);
    /* 3: a full request whose sender resets before reading the reply. */
    fd = raw_connect(port, NULL);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cr_assert_eq(send(fd, f, n, 0), (ssize_t)n);
    close(fd);
    cr_expect_eq(read_in(good, "protocol_version", 0), SF_REGMAP_VERSION);
    drop(good);
    sf_host_stats_t st;
    hostrun_t *keep = r;
    atomic_store(&keep->stop, 1);
    pthread_join(keep->th, NULL);
    sf_host_stats(keep->h, &st);
    cr_expect_geq(st.closed_timeout, 1, "the stalled client was closed for its overdue frame");
    sf_host_destroy(&keep->h);
    free(keep);
}

Test(modbus, allow_list_limits_writers)
{
    const char *allow[] = {"127.0.0.2"};
    sf_host_config_t cfg = {.allow = allow, .n_allow = 1};
    hostrun_t *r = start_host(SINGLE, 1, &cfg);
    uint16_t port = sf_host_port(r->h, 0);
    modbus_t *c = client(port); /* from 127.0.0.1: reads only */
    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    cr_expect_eq(write_hold(c, "heartbeat", 0, 555), MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
    cr_expect_eq(modbus_write_bit(c, A("phase_call") + 1, 1), -1);
    cr_expect_eq(errno, EMBXILFUN);
    cr_expect_neq(read_in(c, "heartbeat_echo", 0), 555);
    /* FC 23 writes too: refused whole (01), its read part not served. */
    uint16_t hb = 555, rd[4];
    cr_expect_eq(
        modbus_write_and_read_registers(c, A("heartbeat"), 1, &hb, A("poll_image_rw"), 4, rd), -1);
    cr_expect_eq(errno, EMBXILFUN);
    cr_expect_neq(read_in(c, "heartbeat_echo", 0), 555);
    /* From 127.0.0.2 (on the list) the same write is applied. */
    int fd = raw_connect(port, "127.0.0.2");
    uint8_t f[12], buf[64];
    size_t n = frame_fc6(f, 3, A("heartbeat"), 555);
    cr_assert_eq(send(fd, f, n, 0), (ssize_t)n);
    cr_assert_eq(raw_recv(fd, buf, sizeof buf), 12);
    cr_expect_eq(memcmp(buf, f, 12), 0, "FC 6 echo, no exception");
    close(fd);
    cr_expect_eq(read_in(c, "heartbeat_echo", 0), 555);
    drop(c);
    stop_host(r);
    /* A bad allow entry is refused when the host is made. */
    const char *bad[] = {"not-an-ip"};
    sf_host_config_t bc = {.allow = bad, .n_allow = 1};
    cr_expect_null(sf_host_new(&bc));
    cr_expect_eq(errno, EINVAL);
}

Test(modbus, fixed_base_port_and_busy_port)
{
    /* Find a free port pair by asking for an ephemeral one, then reuse its number. */
    sf_host_t *probe = sf_host_new(NULL);
    sf_scenario_t *sc = load(SINGLE);
    cr_assert_eq(sf_host_add_unit(probe, &sc->intersections[0], NULL), 0);
    uint16_t busy = sf_host_port(probe, 0);
    sf_host_config_t cfg = {.base_port = busy};
    sf_host_t *h = sf_host_new(&cfg);
    cr_assert_not_null(h);
    cr_expect_eq(sf_host_add_unit(h, &sc->intersections[0], NULL), -1, "port %u is taken", busy);
    cr_expect_eq(errno, EADDRINUSE);
    cr_expect_eq(sf_host_n_units(h), 0);
    sf_host_destroy(&h);
    sf_host_destroy(&probe);
    sf_host_destroy(&probe); /* safe twice */
    sf_scenario_destroy(&sc);
}

/* xorshift64*: a reproducible stream for the fuzz test. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

Test(modbus, random_requests_never_break_the_unit)
{
    /* Random frames, from well-formed writes over the whole holding and coil tables to
     * garbage: the server must answer or close, never crash, keep serving a good client,
     * and the unit's timings must stay within the safety limits whatever was accepted. */
    sf_host_config_t cfg = {.frame_timeout_ms = 100};
    hostrun_t *r = start_host(SINGLE, 1, &cfg);
    r->tick = 1;
    uint16_t port = sf_host_port(r->h, 0);
    const char *env = getenv("SIGFLOW_FUZZ_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5157u;
    uint64_t s = seed;
    int n = getenv("SIGFLOW_SANITIZED") ? 1500 : 6000;
    int fd = raw_connect(port, NULL);
    int closed = 0, answered = 0, writes_ok = 0;
    for (int i = 0; i < n; i++) {
        uint8_t f[300];
        size_t len;
        uint64_t kind = rnd(&s) % 8;
        uint16_t tid = (uint16_t)i;
        uint8_t fc_pool[] = {1, 2, 3, 4, 5, 6, 15, 16, 16, 16, 6, 6, 23, 22, 17, 8};
        uint8_t fc = fc_pool[rnd(&s) % sizeof fc_pool];
        uint16_t addr = (uint16_t)(rnd(&s) % 520);
        if (kind == 0) { /* pure garbage */
            len = 1 + rnd(&s) % 40;
            for (size_t k = 0; k < len; k++)
                f[k] = (uint8_t)rnd(&s);
        } else if (fc == 16 || fc == 15) {
            uint16_t nb = (uint16_t)(1 + rnd(&s) % (fc == 16 ? 40 : 100));
            uint8_t bc = (uint8_t)(fc == 16 ? 2 * nb : (nb + 7) / 8);
            if (kind == 1)
                bc = (uint8_t)(bc + 1 + rnd(&s) % 3); /* inconsistent byte count */
            size_t pdu = 6 + (size_t)bc;
            f[0] = (uint8_t)(tid >> 8), f[1] = (uint8_t)tid, f[2] = 0, f[3] = 0;
            f[4] = (uint8_t)((pdu + 1) >> 8), f[5] = (uint8_t)(pdu + 1), f[6] = 1;
            f[7] = fc, f[8] = (uint8_t)(addr >> 8), f[9] = (uint8_t)addr;
            f[10] = (uint8_t)(nb >> 8), f[11] = (uint8_t)nb, f[12] = bc;
            for (size_t k = 0; k < bc; k++) /* values near the limits are the interesting ones */
                f[13 + k] = (uint8_t)(k % 2 ? rnd(&s) % 80 : (rnd(&s) % 4 ? 0 : rnd(&s)));
            len = 13 + bc;
        } else {
            f[0] = (uint8_t)(tid >> 8), f[1] = (uint8_t)tid, f[2] = 0, f[3] = 0, f[4] = 0;
            f[5] = fc == 17 ? 2 : 6, f[6] = 1, f[7] = fc;
            uint16_t v = (uint16_t)(rnd(&s) % 3 ? rnd(&s) % 80 : rnd(&s));
            if (fc == 5)
                v = rnd(&s) % 4 ? (rnd(&s) % 2 ? 0xFF00 : 0) : v;
            if (fc <= 4)
                v = (uint16_t)(1 + rnd(&s) % 125);
            f[8] = (uint8_t)(addr >> 8), f[9] = (uint8_t)addr, f[10] = (uint8_t)(v >> 8);
            f[11] = (uint8_t)v;
            len = fc == 17 ? 8 : 12;
            if (kind == 2)
                f[5] = (uint8_t)(f[5] + 1 + rnd(&s) % 4); /* MBAP length lies */
        }
        if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len) {
            close(fd);
            fd = raw_connect(port, NULL);
            closed++;
            continue;
        }
        /* A well-formed frame gets an answer, a bad one a close. After garbage or a frame
         * whose MBAP length promises more, we hang up our side: the server must then
         * drop the partial frame at once rather than wait for the rest. */
        if (kind == 0 || kind == 2)
            shutdown(fd, SHUT_WR);
        uint8_t buf[300];
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t got = raw_recv(fd, buf, sizeof buf);
        if (got > 0 && kind != 0 && kind != 2) {
            answered++;
            writes_ok += (fc == 5 || fc == 6 || fc == 15 || fc == 16) && buf[7] == fc;
            cr_expect_eq(buf[0], f[0]);
            cr_expect_eq(buf[1], f[1]);
        } else if (got > 0) {
            close(fd); /* garbage that happened to be a whole frame: answered, fine */
            fd = raw_connect(port, NULL);
        } else {
            cr_expect_eq(got, 0, "frame %d (kind %llu, fc %u) neither answered nor closed", i,
                         (unsigned long long)kind, fc);
            close(fd);
            fd = raw_connect(port, NULL);
            closed++;
        }
    }
    close(fd);
    cr_log_info("fuzz (seed %llu, SIGFLOW_FUZZ_SEED to change): %d answered, %d writes "
                "accepted, %d connections closed",
                (unsigned long long)seed, answered, writes_ok, closed);
    cr_expect_gt(writes_ok, 0, "some random writes were valid and applied");
    cr_expect_gt(answered, n / 4);
    cr_expect_gt(closed, 10);
    /* The unit still serves, and its timings are safe. */
    modbus_t *c = client(port);
    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    for (int no = 2; no <= 4; no += 2) {
        uint16_t y = read_hold(c, "phase_yellow", no - 1);
        uint16_t g = read_hold(c, "phase_min_green", no - 1);
        uint16_t rc = read_hold(c, "phase_red_clear", no - 1);
        uint16_t m1 = read_hold(c, "phase_max1", no - 1);
        cr_expect(y >= 30 && y <= 60, "phase %d yellow %u", no, y);
        cr_expect(g >= 5, "phase %d min green %u", no, g);
        cr_expect_leq(rc, 60, "phase %d red clear %u", no, rc);
        cr_expect_geq(m1, g, "phase %d max1 %u below min green %u", no, m1, g);
    }
    drop(c);
    stop_host(r);
}

Test(modbus, client_sockets_above_fd_setsize)
{
    /* A 1,000-unit host has descriptors far above FD_SETSIZE, where libmodbus' select()
     * cannot go: the server must serve them all the same. Pad the table so the server's
     * accepted socket lands above 1024 while the test's client stays low. */
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    enum { PAD = 1100 };
    int *pad = malloc(PAD * sizeof *pad);
    cr_assert_not_null(pad);
    int n = 0;
    for (; n < PAD; n++) {
        pad[n] = dup(0);
        if (pad[n] < 0)
            break;
    }
    cr_assert_gt(n, 1030, "could not open enough descriptors");
    close(pad[0]); /* the client's socket takes this low number */
    modbus_t *c = client(sf_host_port(r->h, 0));
    cr_expect_lt(modbus_get_socket(c), FD_SETSIZE);
    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    cr_expect_eq(write_hold(c, "phase_yellow", 1, 25), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(write_hold(c, "phase_yellow", 1, 40), 0);
    cr_expect_eq(read_hold(c, "phase_yellow", 1), 40);
    drop(c);
    for (int i = 1; i < n; i++)
        close(pad[i]);
    free(pad);
    stop_host(r);
}

/* ---- sigflow unit as a child process -------------------------------------------------------- */

static child_pipe_t spawn_unit(char *const argv[])
{
    child_pipe_t c;
    cr_assert_eq(child_popen(&c, argv), 0);
    return c;
}

Test(modbus, sigflow_unit_child_process)
{
    char *argv[] = {"sigflow", "unit", SINGLE, "--base-port", "0", NULL};
    child_pipe_t ch = spawn_unit(argv);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, ch.out), "no ready line");
    char id[64], addr[64];
    unsigned port = 0;
    cr_assert_eq(sscanf(line, "ready %63s %63[^:]:%u", id, addr, &port), 3, "line: %s", line);
    cr_expect_str_eq(id, "I1");
    cr_expect_str_eq(addr, "127.0.0.1");
    modbus_t *c = client((uint16_t)port);
    cr_expect_eq(read_in(c, "protocol_version", 0), SF_REGMAP_VERSION);
    /* The unit runs on the wall clock: its uptime advances (bounded wait, no sleep). */
    uint16_t up[2];
    cr_assert_eq(modbus_read_input_registers(c, A("uptime"), 2, up), 2);
    uint32_t t0 = (uint32_t)up[0] << 16 | up[1], t1 = t0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        struct pollfd none = {.fd = -1};
        poll(&none, 1, 20);
        cr_assert_eq(modbus_read_input_registers(c, A("uptime"), 2, up), 2);
        t1 = (uint32_t)up[0] << 16 | up[1];
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (t1 == t0 && now.tv_sec - start.tv_sec < 10);
    cr_expect_gt(t1, t0, "uptime advances");
    /* During start-up the unit flashes. */
    cr_expect_eq(read_in(c, "control_mode", 0), 0x31);
    /* The refused yellow over the wire. */
    cr_expect_eq(write_hold(c, "phase_yellow", 1, 20), MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    cr_expect_eq(read_hold(c, "phase_yellow", 1), 30);
    drop(c);
    cr_expect_eq(child_pclose(&ch, SIGTERM), 0, "clean exit on SIGTERM");
}

Test(modbus, sigflow_unit_selects_intersections_and_rejects_bad_usage)
{
    char *argv[] = {"sigflow", "unit",           CORRIDOR, "--intersection",
                    "I3",      "--intersection", "I5",     NULL};
    child_pipe_t ch = spawn_unit(argv);
    char line[256];
    int n = 0;
    unsigned ports[2] = {0, 0};
    char ids[2][64];
    while (n < 2 && fgets(line, sizeof line, ch.out)) {
        cr_assert_eq(sscanf(line, "ready %63s 127.0.0.1:%u", ids[n], &ports[n]), 2, "%s", line);
        n++;
    }
    cr_assert_eq(n, 2);
    cr_expect_str_eq(ids[0], "I3");
    cr_expect_str_eq(ids[1], "I5");
    modbus_t *c = client((uint16_t)ports[1]);
    cr_expect_eq(read_in(c, "unit_index", 0), 1);
    drop(c);
    cr_expect_eq(child_pclose(&ch, SIGINT), 0, "clean exit on SIGINT");

    char *bad1[] = {"sigflow", "unit", NULL};
    char *bad2[] = {"sigflow", "unit", SINGLE, "--base-port", "70000", NULL};
    char *bad3[] = {"sigflow", "unit", SINGLE, "--frobnicate", NULL};
    char *bad4[] = {"sigflow", "unit", SINGLE, "--intersection", "NOPE", NULL};
    char **bad[] = {bad1, bad2, bad3, bad4};
    int want[] = {2, 2, 2, 2};
    for (int k = 0; k < 4; k++) {
        child_pipe_t b = spawn_unit(bad[k]);
        cr_expect_null(fgets(line, sizeof line, b.out), "no ready line for bad usage %d", k);
        cr_expect_eq(child_pclose(&b, 0), want[k], "bad usage %d", k);
    }
}

/* FC 23 (map version 4): one request writes the heartbeat and reads the holding copy of
 * the poll image, which is the input-register image, value for value. */
Test(modbus, fc23_writes_the_heartbeat_and_reads_the_image)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    modbus_t *c = client(sf_host_port(r->h, 0));
    cr_assert_eq(read_in(c, "protocol_version", 0), 4);
    uint16_t len = read_in(c, "poll_image_len", 0);
    cr_assert(len > 56 && len <= 125, "single.json's image: %u registers", len);
    uint16_t hb = 4711, rw[125], in[125];
    cr_assert_eq(
        modbus_write_and_read_registers(c, A("heartbeat"), 1, &hb, A("poll_image_rw"), len, rw),
        len, "%s", modbus_strerror(errno));
    cr_assert_eq(modbus_read_input_registers(c, A("poll_image"), len, in), len);
    /* The unit has run 20 s without a heartbeat (start_host): it is in local fallback.
     * The FC 23 returns the image from when it arrived, before its heartbeat: fallback
     * (and its comms fault code) shown; the read after it shows the heartbeat's effect.
     * The unit does not tick in between (the host thread serves only), so every other
     * register of the two images is equal. */
    sf_poll_image_layout_t l;
    cr_assert_eq(sf_regmap_image_layout(read_in(c, "n_sg", 0), read_in(c, "n_det", 0), &l), 0);
    cr_assert_eq(l.len, len);
#define IMG_AT(name) (uint16_t)(l.status + A(name) - A("control_mode"))
    uint16_t echo = IMG_AT("heartbeat_echo"), age = IMG_AT("heartbeat_age");
    uint16_t fb = IMG_AT("local_fallback"), fault = IMG_AT("fault_code");
#undef IMG_AT
    cr_expect_eq(rw[fb], 1, "FC 23 shows the fallback its heartbeat ends");
    cr_expect_eq(in[fb], 0, "the next request shows it ended");
    cr_expect_neq(rw[fault], 0, "the fallback's fault code, from before the heartbeat");
    for (uint16_t k = 0; k < len; k++)
        if (k != echo && k != age && k != fb && k != fault)
            cr_expect_eq(rw[k], in[k], "image register %u", k);
    cr_expect_neq(rw[echo], 4711, "FC 23 returns the image from before its write");
    cr_expect_eq(in[echo], 4711, "the write went in");
    cr_expect_eq(read_hold(c, "heartbeat", 0), 4711);
    cr_expect_neq(in[l.status], 0, "control_mode is in the image");
    drop(c);
    stop_host(r);
}

/* A bad FC 23 gets the precise exception and changes nothing: a write to the read-only
 * image (02), a value the map or the unit refuses (03), a read outside the table (02), a
 * byte count that does not match the write quantity (03), quantities out of range (03). */
Test(modbus, fc23_refused_changes_nothing)
{
    hostrun_t *r = start_host(SINGLE, 1, NULL);
    uint16_t port = sf_host_port(r->h, 0);
    modbus_t *c = client(port);
    uint16_t hb0 = 321, rd[8];
    cr_assert_eq(write_hold(c, "heartbeat", 0, hb0), 0);
    uint16_t img0[8];
    cr_assert_eq(modbus_read_registers(c, A("poll_image_rw"), 8, img0), 8);
    uint16_t yellow0 = read_hold(c, "phase_yellow", 1), mode0 = read_hold(c, "mode_command", 0);
    struct {
        uint16_t rd, n_rd, wr, n_wr;
        uint16_t vals[2];
        int exc;
        const char *what;
    } bad[] = {
        {A("poll_image_rw"), 8, A("poll_image_rw"), 1, {7, 0}, 2, "write to the read-only image"},
        {A("poll_image_rw"), 8, A("heartbeat"), 2, {999, 9}, 3, "heartbeat + mode 9 (no such)"},
        {A("poll_image_rw"),
         8,
         (uint16_t)(A("phase_yellow") + 1),
         1,
         {25},
         3,
         "yellow 2.5 s: below the safety minimum"},
        {A("poll_image_rw"), 8, A("heartbeat"), 1, {999}, 2, ""}, /* read: below */
        {A("poll_image_rw"), 8, A("heartbeat"), 1, {999}, 3, ""}, /* read: below */
    };
    bad[3].rd = (uint16_t)(sf_regmap_table_size(SF_TBL_HOLDING) - 4); /* 8 past the end */
    bad[3].what = "read past the holding table";
    bad[4].n_rd = 126;
    bad[4].what = "read of 126 registers";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint16_t got[126];
        int rc = modbus_write_and_read_registers(c, bad[i].wr, bad[i].n_wr, bad[i].vals, bad[i].rd,
                                                 bad[i].n_rd, got);
        if (bad[i].n_rd > 125) {
            /* libmodbus will not send it: a raw frame */
            int fd = raw_connect(port, NULL);
            uint8_t f[64], buf[64];
            size_t n = frame_fc23(f, 9, bad[i].rd, bad[i].n_rd, bad[i].wr, 1, 2, bad[i].vals);
            cr_assert_eq(send(fd, f, n, 0), (ssize_t)n);
            cr_assert_eq(raw_recv(fd, buf, sizeof buf), 9, "%s", bad[i].what);
            cr_expect_eq(buf[7], 0x97, "%s", bad[i].what);
            cr_expect_eq(buf[8], bad[i].exc, "%s", bad[i].what);
            close(fd);
        } else {
            cr_expect_eq(rc, -1, "%s", bad[i].what);
            cr_expect_eq(errno, MODBUS_ENOBASE + bad[i].exc, "%s: %s", bad[i].what,
                         modbus_strerror(errno));
        }
        cr_expect_eq(read_hold(c, "heartbeat", 0), hb0, "%s: heartbeat unchanged", bad[i].what);
        cr_expect_eq(read_in(c, "heartbeat_echo", 0), hb0, "%s", bad[i].what);
        cr_expect_eq(read_hold(c, "phase_yellow", 1), yellow0, "%s", bad[i].what);
        cr_expect_eq(read_hold(c, "mode_command", 0), mode0, "%s", bad[i].what);
        cr_assert_eq(modbus_read_registers(c, A("poll_image_rw"), 8, rd), 8);
        cr_expect_eq(rd[0], img0[0], "%s: image unchanged", bad[i].what);
    }
    /* A byte count that does not match the write quantity (the frame's length matches the
     * byte count, so it is a well-formed frame): 03, nothing written. */
    int fd = raw_connect(port, NULL);
    uint8_t f[64], buf[64];
    uint16_t two[2] = {999, 998};
    size_t n = frame_fc23(f, 5, A("poll_image_rw"), 8, A("heartbeat"), 1, 4, two);
    cr_assert_eq(send(fd, f, n, 0), (ssize_t)n);
    cr_assert_eq(raw_recv(fd, buf, sizeof buf), 9);
    cr_expect_eq(buf[7], 0x97);
    cr_expect_eq(buf[8], MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
    close(fd);
    cr_expect_eq(read_hold(c, "heartbeat", 0), hb0);
    /* FC 16 to the image is refused as well (02). */
    uint16_t z[2] = {1, 2};
    cr_expect_eq(write_holds(c, A("poll_image_rw"), 2, z), MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
    cr_assert_eq(modbus_read_registers(c, A("poll_image_rw"), 8, rd), 8);
    cr_expect_eq(memcmp(rd, img0, sizeof rd), 0);
    /* And after all that a good FC 23 goes through on the same connection. */
    uint16_t hb = 322;
    cr_expect_eq(
        modbus_write_and_read_registers(c, A("heartbeat"), 1, &hb, A("poll_image_rw"), 8, rd), 8);
    cr_expect_eq(read_in(c, "heartbeat_echo", 0), 322);
    drop(c);
    stop_host(r);
}
