/* tests/test_multihost.c — the system split across hosts: the simulator (with the bus
 * forwarder and a recorder), the central controller and two units hosts each in a
 * network namespace of their own, made by this test, joined by veth pairs to bridges in
 * a hub namespace, on addresses of the project's own range:
 *
 *   field network 10.77.0.0/24 (bridge fld, Modbus TCP): controller .1, units-a .10,
 *                                                         units-b .11
 *   sim network   10.77.1.0/24 (bridge sim, ZeroMQ bus):  simulator .1, controller .2,
 *                                                         units-a .10, units-b .11
 *
 * The sim network stands for the cabinet wiring the simulator emulates (detectors in,
 * lamps out, the clock): it is never cut. The field network is the centre's
 * communication link; cutting units-b's port on it (link down on the hub's side, for
 * longer than the unit's centre-loss time) is the partition. units-b runs one unit
 * (VICTIM), units-a the others: they are the control group and must see nothing.
 *
 * What the test asserts, from the programs' real outputs (the controller's event log and
 * report, the simulator's report, the bus recording of every LampStates and transit
 * event):
 *  - the partitioned unit went to its local plan (control mode local, fault "comms" on
 *    its lamp messages) and came back to centre coordination, in step with its neighbour
 *    as the offsets say; no unit ever showed conflicting greens (lamp pairs against the
 *    scenario's conflict matrix, and the units' own monitor codes);
 *  - the controller logged VICTIM offline, then failed reconnects with a growing
 *    back-off, then online, the unit's local_fallback and then its fallback_ended,
 *    plans verified again, the unit back under centre coordination; no other unit
 *    ever went offline;
 *  - every bus's check-in at an intersection (first or ETA update) has exactly one
 *    decision in the log, every granted request exactly one outcome (none when the run
 *    ended while it was held), and the log holds exactly the events the controller
 *    counted;
 *  - both reports are complete.
 * A second case runs the same system, uncut, under latency on VICTIM's field link and
 * loss into every host from the field network: with `tc netem` where the kernel has it,
 * else with netfilter (iptables' random statistic match drops; an NFQUEUE on VICTIM's
 * field port where tests/nfq_delay.c holds each packet DELAY_MS), saying which. It
 * asserts every unit keeps the centre's plan and never shows conflicting greens, the
 * controller's round trips to VICTIM all took at least the latency added both ways and
 * TCP retransmitted, packets really were dropped and held, and the checks above on the
 * logs and reports. It is skipped, saying why, where neither way can be made.
 * The whole test is skipped, saying why, where namespaces cannot be made (not root, no
 * CAP_NET_ADMIN, no `ip`). Namespaces are named after the pid, and deleted at the end,
 * also after a failure.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus_codec.h"
#include "record.h"
#include "scenario.h"

extern char **environ;

#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"
#define VICTIM   "I3" /* the unit behind the partition (units-b) */
#define BUS_PUB  "tcp://10.77.1.1:5570"
#define BUS_SUB  "tcp://10.77.1.1:5571"
#define N_PROCS  7
#define OUT_CAP  (1u << 20)
#define WAIT_S   90.0 /* bound of any one wait: a hang fails, it never blocks ctest */

/* One program started in a namespace (`ip netns exec NS sigflow ...`, which execs, so the
 * pid is the program's own). */
typedef struct {
    const char *tag;    /* for messages */
    pid_t pid;          /* 0 = not started or reaped */
    int out_fd, err_fd; /* read ends, -1 at EOF */
    char *out, *err;    /* everything so far, NUL-terminated (OUT_CAP) */
    size_t n_out, n_err;
    int status; /* exit status once reaped, -1 killed */
} proc_t;

/* The namespaces and programs of one case; the suite's fini tears down what is set. */
typedef struct {
    char ns[5][32]; /* hub, sim, ctl, ua, ub; "" = not made */
    proc_t procs[N_PROCS];
    char dir[128]; /* temporary directory for logs and reports */
} world_t;

static world_t W;

enum { NS_HUB, NS_SIM, NS_CTL, NS_UA, NS_UB };
enum { P_BUS, P_REC, P_SIM, P_UA, P_UB, P_CTL, P_DLY };

static bool sanitized(void)
{
    const char *s = getenv("SIGFLOW_SANITIZED");
    return s && s[0] && strcmp(s, "0") != 0;
}

/* Run a shell command line, its output into out (may be NULL). Returns its exit status,
 * -1 when it could not run. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[1100];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char buf[512];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && n + 1 < cap) {
            size_t take = r < cap - 1 - n ? r : cap - 1 - n;
            memcpy(out + n, buf, take);
            n += take;
        }
    }
    if (out && cap)
        out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* sh() that must succeed: the namespaces exist, so a failing step is a failure. */
#define SH_OK(...)                                                                                 \
    do {                                                                                           \
        char o_[512];                                                                              \
        int rc_ = sh(o_, sizeof o_, __VA_ARGS__);                                                  \
        cr_assert_eq(rc_, 0, "network setup failed (%d): %s", rc_, o_);                            \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- programs ----------------------------------------------------------------------- */

/* Start `ip netns exec ns bin args...` (NULL-terminated). */
static void proc_start_bin(proc_t *p, const char *tag, const char *ns, const char *bin,
                           const char *const *args)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)"ip";
    argv[n++] = (char *)"netns";
    argv[n++] = (char *)"exec";
    argv[n++] = (char *)ns;
    argv[n++] = (char *)bin;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    p->tag = tag;
    p->out = calloc(OUT_CAP, 1);
    p->err = calloc(OUT_CAP, 1);
    cr_assert(p->out && p->err);
    int po[2], pe[2];
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    int rc = posix_spawnp(&p->pid, "ip", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    p->out_fd = po[0];
    p->err_fd = pe[0];
    cr_assert_eq(rc, 0, "cannot start %s: %s", tag, strerror(rc));
}

/* Start `ip netns exec ns sigflow args...`. */
static void proc_start(proc_t *p, const char *tag, const char *ns, const char *const *args)
{
    proc_start_bin(p, tag, ns, SIGFLOW_BIN, args);
}

/* Read what every started program has written, waiting at most timeout_ms. All of them
 * are drained together, so none blocks on a full pipe while the test waits on another. */
static void pump_all(int timeout_ms)
{
    struct pollfd pfd[2 * N_PROCS];
    char **buf[2 * N_PROCS];
    size_t *len[2 * N_PROCS];
    int *fdp[2 * N_PROCS];
    nfds_t n = 0;
    for (int i = 0; i < N_PROCS; i++) {
        proc_t *p = &W.procs[i];
        if (!p->out)
            continue;
        if (p->out_fd >= 0) {
            pfd[n] = (struct pollfd){p->out_fd, POLLIN, 0};
            buf[n] = &p->out;
            len[n] = &p->n_out;
            fdp[n++] = &p->out_fd;
        }
        if (p->err_fd >= 0) {
            pfd[n] = (struct pollfd){p->err_fd, POLLIN, 0};
            buf[n] = &p->err;
            len[n] = &p->n_err;
            fdp[n++] = &p->err_fd;
        }
    }
    if (n == 0 || poll(pfd, n, timeout_ms) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++) {
        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char tmp[8192];
        ssize_t r = read(pfd[i].fd, tmp, sizeof tmp);
        if (r <= 0) {
            close(pfd[i].fd);
            *fdp[i] = -1;
            continue;
        }
        size_t room = OUT_CAP - 1 - *len[i];
        size_t take = (size_t)r < room ? (size_t)r : room;
        memcpy(*buf[i] + *len[i], tmp, take);
        *len[i] += take;
        (*buf[i])[*len[i]] = 0;
    }
}

/* Has p exited? Reaps it (status set) without blocking. */
static bool proc_exited(proc_t *p)
{
    if (p->pid <= 0)
        return true;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        p->pid = 0;
        return true;
    }
    return false;
}

/* Wait until the text of p (stdout when on_out, else stderr) contains needle n times.
 * Fails the test, with what p said, when p exits first or after WAIT_S. */
static const char *wait_text(proc_t *p, bool on_out, const char *needle, int times)
{
    double end = now_s() + WAIT_S;
    for (;;) {
        const char *text = on_out ? p->out : p->err;
        const char *at = text;
        int found = 0;
        const char *last = NULL;
        while ((at = strstr(at, needle)) != NULL) {
            found++;
            last = at;
            at += strlen(needle);
        }
        if (found >= times)
            return last;
        for (int i = 0; i < N_PROCS; i++) {
            proc_t *o = &W.procs[i];
            if (o != p && o->out && proc_exited(o))
                cr_assert_fail("%s exited (status %d) while waiting for '%s' from %s\nstderr: "
                               "%.2000s",
                               o->tag, o->status, needle, p->tag, o->err);
        }
        if (now_s() > end || (proc_exited(p) && p->out_fd < 0 && p->err_fd < 0))
            cr_assert_fail("%s: no '%s' (x%d) after %.0f s or it exited (status %d)\nstdout: "
                           "%.2000s\nstderr: %.2000s",
                           p->tag, needle, times, WAIT_S, p->status, p->out, p->err);
        pump_all(100);
    }
}

/* Wait for p to exit (after WAIT_S: SIGKILL and fail); returns its status. */
static int proc_wait(proc_t *p)
{
    double end = now_s() + WAIT_S;
    while (!proc_exited(p)) {
        if (now_s() > end) {
            kill(p->pid, SIGKILL);
            cr_assert_fail("%s did not end within %.0f s\nstderr: %.2000s", p->tag, WAIT_S, p->err);
        }
        pump_all(100);
    }
    while (p->out_fd >= 0 || p->err_fd >= 0)
        pump_all(100);
    return p->status;
}

/* Stop p by its pid (SIGTERM) and wait for it. */
static int proc_stop(proc_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGTERM);
    return proc_wait(p);
}

/* ---- namespaces --------------------------------------------------------------------- */

static void teardown(void)
{
    for (int i = 0; i < N_PROCS; i++) {
        proc_t *p = &W.procs[i];
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
        if (p->out_fd >= 0 && p->out)
            close(p->out_fd);
        if (p->err_fd >= 0 && p->err)
            close(p->err_fd);
        free(p->out);
        free(p->err);
        memset(p, 0, sizeof *p);
    }
    for (int i = 0; i < 5; i++)
        if (W.ns[i][0]) {
            sh(NULL, 0, "ip netns delete %s", W.ns[i]);
            W.ns[i][0] = 0;
        }
    if (W.dir[0] && !getenv("SIGFLOW_KEEP"))
        sh(NULL, 0, "rm -rf '%s'", W.dir);
    W.dir[0] = 0;
}

/* Delete the namespaces an earlier run of this test left behind when it was killed before
 * its teardown ("sf<case><pid>-<role>" with no process <pid> any more). */
static void delete_stale_namespaces(void)
{
    FILE *p = popen("ip netns list 2>/dev/null", "r");
    if (!p)
        return;
    char line[256];
    while (fgets(line, sizeof line, p)) {
        char tag, role[16];
        int pid;
        if (sscanf(line, "sf%c%d-%15[a-z]", &tag, &pid, role) != 3 || (tag != 'p' && tag != 'n') ||
            pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue; /* that run is still going (or not ours to judge) */
        char name[64];
        snprintf(name, sizeof name, "sf%c%d-%s", tag, pid, role);
        sh(NULL, 0, "ip netns delete %s", name);
    }
    pclose(p);
}

/* Make the namespaces, or skip the test saying why they cannot be made here. */
static void make_namespaces(const char *tag)
{
    if (geteuid() != 0)
        cr_skip_test("multi-host test skipped: network namespaces need root (CAP_NET_ADMIN); "
                     "run the tests as root to include it");
    delete_stale_namespaces();
    char out[512];
    static const char *role[5] = {"hub", "sim", "ctl", "ua", "ub"};
    for (int i = 0; i < 5; i++) {
        if (W.ns[i][0])
            continue; /* made already (the netem probe's hub) */
        char name[32];
        snprintf(name, sizeof name, "sf%s%d-%s", tag, (int)getpid(), role[i]);
        int rc = sh(out, sizeof out, "ip netns add %s", name);
        if (rc != 0) {
            if (i == 0)
                cr_skip_test("multi-host test skipped: cannot make a network namespace here "
                             "(`ip netns add` exit %d: %s)",
                             rc, out);
            cr_assert_fail("ip netns add %s: %s", name, out);
        }
        snprintf(W.ns[i], sizeof W.ns[i], "%s", name);
        SH_OK("ip -n %s link set lo up", name);
    }
    const char *hub = W.ns[NS_HUB];
    SH_OK("ip -n %s link add fld type bridge && ip -n %s link set fld up", hub, hub);
    SH_OK("ip -n %s link add sim type bridge && ip -n %s link set sim up", hub, hub);
    /* Each host's ports: (namespace, bridge, hub-side name, address). */
    static const struct {
        int ns;
        const char *br, *hub_if, *if_name, *addr;
    } ports[] = {
        {NS_SIM, "sim", "s-sim", "bus0", "10.77.1.1"},
        {NS_CTL, "sim", "s-ctl", "bus0", "10.77.1.2"},
        {NS_UA, "sim", "s-ua", "bus0", "10.77.1.10"},
        {NS_UB, "sim", "s-ub", "bus0", "10.77.1.11"},
        {NS_CTL, "fld", "f-ctl", "field0", "10.77.0.1"},
        {NS_UA, "fld", "f-ua", "field0", "10.77.0.10"},
        {NS_UB, "fld", "f-ub", "field0", "10.77.0.11"},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        const char *ns = W.ns[ports[i].ns];
        SH_OK("ip -n %s link add %s type veth peer name %s netns %s", hub, ports[i].hub_if,
              ports[i].if_name, ns);
        SH_OK("ip -n %s link set %s master %s up", hub, ports[i].hub_if, ports[i].br);
        SH_OK("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up", ns, ports[i].addr,
              ports[i].if_name, ns, ports[i].if_name);
    }
    snprintf(W.dir, sizeof W.dir, "/tmp/sf-multihost-%s%d-XXXXXX", tag, (int)getpid());
    cr_assert_not_null(mkdtemp(W.dir));
}

TestSuite(multihost, .fini = teardown, .timeout = 300);

/* ---- reading the outputs ------------------------------------------------------------- */

/* Every JSON line of the controller's event log. */
static json_t *load_events(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "event log %s: %s", path, strerror(errno));
    json_t *arr = json_array();
    char line[4096];
    int no = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        json_error_t e;
        json_t *ev = json_loads(line, 0, &e);
        cr_assert_not_null(ev, "%s:%d: not JSON: %s", path, no, e.text);
        json_array_append_new(arr, ev);
    }
    fclose(f);
    return arr;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

static double jnum(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static bool is_ev(const json_t *ev, const char *ix, const char *event)
{
    return (!ix || strcmp(jstr(ev, "ix"), ix) == 0) && strcmp(jstr(ev, "event"), event) == 0;
}

/* The report the controller prints on stderr at the end (the last top-level object). */
static json_t *controller_report(const proc_t *p)
{
    const char *at = NULL, *s = p->err;
    while ((s = strstr(s, "\n{\n")) != NULL)
        at = ++s;
    if (!at && strncmp(p->err, "{\n", 2) == 0)
        at = p->err;
    cr_assert_not_null(at, "controller: no report on stderr: %.2000s", p->err);
    json_error_t e;
    json_t *r = json_loadb(at, strlen(at), JSON_DISABLE_EOF_CHECK, &e);
    cr_assert_not_null(r, "controller report: %s", e.text);
    return r;
}

static bool lamp_green(uint8_t code)
{
    return code >= 0x20 && code <= 0x22; /* REFERENCE.md: green 0x20/0x21/0x22 */
}

/* What the bus recording says, per intersection. */
typedef struct {
    uint64_t msgs;           /* LampStates of it */
    uint64_t conflicts;      /* messages with two conflicting groups green */
    uint64_t monitor_faults; /* messages with a green conflict fault code (0x10, 0x11) */
    uint64_t local_msgs;     /* messages in a local control mode (0x20..0x25) */
    uint64_t comms_fault;    /* messages with fault code comms (0x30) */
    uint64_t first_local_k;  /* first step seen local */
    uint8_t last_mode, last_fault, last_plan;
    uint64_t last_k;
} ix_rec_t;

typedef struct {
    char bus[32];
    uint32_t ix;
    bool in; /* check-in, else check-out */
} transit_rec_t;

typedef struct {
    ix_rec_t ix[32];
    transit_rec_t tr[512];
    size_t n_tr;
    /* cycle timers at the 1 s refresh steps, per step k / 10 (first 2000 s) */
    int32_t ct[32][2000];
    uint8_t plan_at[32][2000];
    uint8_t mode_at[32][2000];
} rec_t;

static void read_recording(const char *path, const sf_scenario_t *sc, rec_t *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 2000; j++)
            r->ct[i][j] = -1;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "recording %s: %s", path, strerror(errno));
    sf_rec_reader_t *rd = sf_rec_reader_new(f);
    cr_assert_not_null(rd, "recording %s: %s", path, sf_rec_strerror(errno));
    sf_rec_t rec;
    int rc;
    while ((rc = sf_rec_next(rd, &rec)) == 1) {
        int t = sf_bus_type_of_topic(rec.topic, rec.topic_len);
        if (t != SF_BUS_LAMPS && t != SF_BUS_TRANSIT_IN && t != SF_BUS_TRANSIT_OUT)
            continue;
        char why[128];
        ProtobufCMessage *m =
            sf_bus_decode((sf_bus_type_t)t, rec.payload, rec.len, why, sizeof why);
        cr_assert_not_null(m, "recording: a message does not decode: %s", why);
        if (t == SF_BUS_LAMPS) {
            const Sfbus__LampStates *l = (const Sfbus__LampStates *)(const void *)m;
            cr_assert_lt(l->ix, sc->n_intersections);
            const sf_intersection_t *ix = &sc->intersections[l->ix];
            ix_rec_t *x = &r->ix[l->ix];
            x->msgs++;
            bool conflict = false;
            for (size_t a = 0; a < l->lamps.len && a < ix->n_sg; a++)
                for (size_t b = a + 1; b < l->lamps.len && b < ix->n_sg; b++)
                    if (lamp_green(l->lamps.data[a]) && lamp_green(l->lamps.data[b]) &&
                        ix->sg_conflict[a][b])
                        conflict = true;
            x->conflicts += conflict;
            x->monitor_faults += l->fault_code == 0x10 || l->fault_code == 0x11;
            if (l->control_mode >= 0x20 && l->control_mode <= 0x25) {
                if (!x->local_msgs)
                    x->first_local_k = l->k;
                x->local_msgs++;
            }
            x->comms_fault += l->fault_code == 0x30;
            x->last_mode = (uint8_t)l->control_mode;
            x->last_fault = (uint8_t)l->fault_code;
            x->last_plan = (uint8_t)l->plan;
            x->last_k = l->k;
            if (l->k % 10 == 0 && l->k / 10 < 2000) {
                r->ct[l->ix][l->k / 10] = (int32_t)l->cycle_timer_ds;
                r->plan_at[l->ix][l->k / 10] = (uint8_t)l->plan;
                r->mode_at[l->ix][l->k / 10] = (uint8_t)l->control_mode;
            }
        } else if (r->n_tr < sizeof r->tr / sizeof r->tr[0]) {
            transit_rec_t *x = &r->tr[r->n_tr++];
            if (t == SF_BUS_TRANSIT_IN) {
                const Sfbus__TransitCheckIn *c = (const Sfbus__TransitCheckIn *)(const void *)m;
                snprintf(x->bus, sizeof x->bus, "%s", c->bus_id);
                x->ix = c->ix;
                x->in = true;
            } else {
                const Sfbus__TransitCheckOut *c = (const Sfbus__TransitCheckOut *)(const void *)m;
                snprintf(x->bus, sizeof x->bus, "%s", c->bus_id);
                x->ix = c->ix;
                x->in = false;
            }
        }
        sf_bus_msg_destroy(&m);
    }
    cr_assert_eq(rc, 0, "recording: %s", sf_rec_strerror(errno));
    sf_rec_reader_destroy(&rd);
    fclose(f);
}

/* Wait until the recording being written at path holds a LampStates of intersection ix in
 * a local control mode (the unit runs its own plan); returns its step. The file is read
 * again from the start every 200 ms: a torn last record is where the writer is, not an
 * error. Fails when the simulator ends first or after WAIT_S. */
static uint64_t wait_local_lamps(const char *path, uint32_t ix)
{
    double end = now_s() + WAIT_S;
    for (;;) {
        FILE *f = fopen(path, "rb");
        sf_rec_reader_t *rd = f ? sf_rec_reader_new(f) : NULL;
        sf_rec_t rec;
        uint64_t found = UINT64_MAX;
        while (rd && found == UINT64_MAX && sf_rec_next(rd, &rec) == 1) {
            if (sf_bus_type_of_topic(rec.topic, rec.topic_len) != SF_BUS_LAMPS)
                continue;
            ProtobufCMessage *m = sf_bus_decode(SF_BUS_LAMPS, rec.payload, rec.len, NULL, 0);
            const Sfbus__LampStates *l = (const Sfbus__LampStates *)(const void *)m;
            if (l && l->ix == ix && l->control_mode >= 0x20 && l->control_mode <= 0x25)
                found = l->k;
            sf_bus_msg_destroy(&m);
        }
        sf_rec_reader_destroy(&rd);
        if (f)
            fclose(f);
        if (found != UINT64_MAX)
            return found;
        proc_t *sim = &W.procs[P_SIM];
        if (now_s() > end || proc_exited(sim))
            cr_assert_fail("the cut-off unit never ran its local plan on the bus (sim status %d)"
                           "\nsim: %.2000s",
                           sim->status, sim->err);
        pump_all(200);
    }
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct {
    bool partition; /* cut VICTIM's field link and heal it */
    double duration_s;
    const char *impair; /* latency and loss on the field network by "netem" or "netfilter";
                           NULL none */
    int delay_ms;       /* the latency added each way on VICTIM's field link */
} case_t;

static const char *const SETS[] = {
    "--set", "run.warmup_s=0",
    /* Every bus late enough for priority: requests are granted and flow to the units. */
    "--set", "control.priority.lateness_threshold_s=0", NULL};

static void add_args(const char **argv, int *n, const char *const *more)
{
    for (size_t i = 0; more[i]; i++)
        argv[(*n)++] = more[i];
}

/* Round trips of a group of units from the controller's perf section: rounds, weighted
 * mean, min, worst p95, max, TCP retransmits, missed polls. */
typedef struct {
    double rounds, sum, min, p95, max, retrans, missed, srtt;
} rtt_group_t;

static void rtt_group_add(rtt_group_t *g, const json_t *unit)
{
    const json_t *r = json_object_get(unit, "poll_rtt_ms");
    double n = jnum(r, "rounds");
    cr_assert(n == n && jnum(r, "mean") == jnum(r, "mean"), "no poll_rtt_ms figures: %s",
              json_dumps(unit, JSON_COMPACT));
    if (n > 0 && (g->rounds == 0 || jnum(r, "min") < g->min))
        g->min = jnum(r, "min");
    g->rounds += n;
    g->sum += jnum(r, "mean") * n;
    g->p95 = fmax(g->p95, jnum(r, "p95"));
    g->max = fmax(g->max, jnum(r, "max"));
    g->retrans += jnum(unit, "tcp_retransmits");
    g->missed += jnum(unit, "missed_polls");
    g->srtt = fmax(g->srtt, jnum(unit, "srtt_ms"));
}

/* What the controller saw of the field links (its report's perf section): printed for
 * every case, so the latency added is seen next to the clean round trip; under latency
 * and loss the degradation must show: every round trip to VICTIM took at least the
 * latency added both ways (the packets really waited), and TCP retransmitted. */
static void check_link_figures(const case_t *cs, const sf_scenario_t *sc, int victim,
                               const json_t *crep)
{
    const json_t *perf = json_object_get(crep, "perf");
    const json_t *units = json_object_get(perf, "units");
    cr_assert(json_is_object(units), "controller report: no perf.units");
    rtt_group_t ga = {0}, gb = {0};
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const json_t *u = json_object_get(units, sc->intersections[i].id);
        cr_assert_not_null(u, "controller perf: no unit %s", sc->intersections[i].id);
        rtt_group_add((int)i == victim ? &gb : &ga, u);
    }
    char a_what[64], b_what[64];
    if (cs->impair) {
        snprintf(a_what, sizeof a_what, "loss only");
        snprintf(b_what, sizeof b_what, "+%d ms each way, loss", cs->delay_ms);
    } else {
        snprintf(a_what, sizeof a_what, "clean link");
        snprintf(b_what, sizeof b_what, cs->partition ? "cut, then healed" : "clean link");
    }
    printf("multihost (%s): poll round trip the controller saw (ms):\n"
           "  units-a (%s): mean %.2f min %.2f p95 %.2f max %.2f over %.0f rounds; %.0f TCP "
           "retransmits, %.0f missed polls\n"
           "  %s (%s): mean %.2f min %.2f p95 %.2f max %.2f over %.0f rounds, kernel srtt "
           "%.2f; %.0f TCP retransmits, %.0f missed polls\n",
           cs->partition ? "partition" : cs->impair, a_what,
           ga.rounds > 0 ? ga.sum / ga.rounds : 0.0, ga.min, ga.p95, ga.max, ga.rounds, ga.retrans,
           ga.missed, VICTIM, b_what, gb.rounds > 0 ? gb.sum / gb.rounds : 0.0, gb.min, gb.p95,
           gb.max, gb.rounds, gb.srtt, gb.retrans, gb.missed);
    cr_expect_gt(ga.rounds, 0, "no round fully answered by units-a");
    cr_expect_gt(gb.rounds, 0, "no round fully answered by %s", VICTIM);
    if (!cs->impair)
        return;
    /* Each request crossed VICTIM's link in, its reply out: each held delay_ms at least.
     * (The figure is a lower bound whatever the machine's load; it is not a timing.) */
    cr_expect_geq(gb.min, 2.0 * cs->delay_ms,
                  "a round trip to %s took %.2f ms, less than the %d ms added both ways: the "
                  "latency was not real",
                  VICTIM, gb.min, 2 * cs->delay_ms);
    cr_expect_gt(ga.retrans + gb.retrans, 0, "loss on the field network, but no TCP retransmit");
}

static void run_case(const case_t *cs, sf_scenario_t *sc)
{
    char dur[32], rec_path[256], rep_path[256], log_path[256];
    snprintf(dur, sizeof dur, "%g", cs->duration_s);
    snprintf(rec_path, sizeof rec_path, "%s/bus.sfrec", W.dir);
    snprintf(rep_path, sizeof rep_path, "%s/report.json", W.dir);
    snprintf(log_path, sizeof log_path, "%s/events.jsonl", W.dir);
    int victim = sf_scenario_find_intersection(sc, VICTIM);
    cr_assert_geq(victim, 0);

    /* Simulator host: the forwarder, a recorder, the simulator (clock master). */
    const char *bus_args[] = {"bus", "--pub", BUS_PUB, "--sub", BUS_SUB, "--hwm", "1000000", NULL};
    proc_start(&W.procs[P_BUS], "bus", W.ns[NS_SIM], bus_args);
    wait_text(&W.procs[P_BUS], true, "ready pub=", 1);
    const char *rec_args[] = {"record", "--bus",    BUS_SUB,         "--out",
                              rec_path, "--topics", "lamps,transit", NULL};
    proc_start(&W.procs[P_REC], "record", W.ns[NS_SIM], rec_args);
    wait_text(&W.procs[P_REC], false, "ready record", 1);
    const char *sim_args[32];
    int n = 0;
    const char *sim_head[] = {"sim",      CORRIDOR,     "--bus",      BUS_PUB "," BUS_SUB,
                              "--expect", "units-a",    "--expect",   "units-b",
                              "--expect", "controller", "--duration", dur,
                              "--report", rep_path,     NULL};
    add_args(sim_args, &n, sim_head);
    add_args(sim_args, &n, SETS);
    sim_args[n] = NULL;
    proc_start(&W.procs[P_SIM], "sim", W.ns[NS_SIM], sim_args);
    wait_text(&W.procs[P_SIM], false, "waiting for the participants", 1);

    /* Units: units-b runs VICTIM alone, units-a every other intersection. */
    const char *ua_args[64];
    n = 0;
    const char *ua_head[] = {"unit",        CORRIDOR,  "--listen", "10.77.0.10",
                             "--base-port", "0",       "--bus",    BUS_PUB "," BUS_SUB,
                             "--name",      "units-a", NULL};
    add_args(ua_args, &n, ua_head);
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        if ((int)i != victim) {
            ua_args[n++] = "--intersection";
            ua_args[n++] = sc->intersections[i].id;
        }
    add_args(ua_args, &n, SETS);
    ua_args[n] = NULL;
    proc_start(&W.procs[P_UA], "units-a", W.ns[NS_UA], ua_args);
    const char *ub_args[32];
    n = 0;
    const char *ub_head[] = {
        "unit", CORRIDOR, "--listen",          "10.77.0.11", "--base-port", "0", "--intersection",
        VICTIM, "--bus",  BUS_PUB "," BUS_SUB, "--name",     "units-b",     NULL};
    add_args(ub_args, &n, ub_head);
    add_args(ub_args, &n, SETS);
    ub_args[n] = NULL;
    proc_start(&W.procs[P_UB], "units-b", W.ns[NS_UB], ub_args);
    wait_text(&W.procs[P_UA], true, "ready ", (int)sc->n_intersections - 1);
    wait_text(&W.procs[P_UB], true, "ready ", 1);

    /* The controller reaches each unit at the address and port its host printed. */
    static char unit_arg[32][96];
    const char *ctl_args[96];
    n = 0;
    /* A round bound a loaded machine (or a sanitizer build) keeps within, so only the cut
     * unit misses polls; each of its misses costs this much wall time. */
    const char *ctl_head[] = {"controller",         CORRIDOR, "--bus",
                              BUS_PUB "," BUS_SUB,  "--log",  log_path,
                              "--round-timeout-ms", "500",    NULL};
    add_args(ctl_args, &n, ctl_head);
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const proc_t *host = (int)i == victim ? &W.procs[P_UB] : &W.procs[P_UA];
        char needle[64];
        snprintf(needle, sizeof needle, "ready %s ", sc->intersections[i].id);
        const char *at = strstr(host->out, needle);
        cr_assert_not_null(at, "%s: no ready line for %s", host->tag, sc->intersections[i].id);
        char addr[64];
        cr_assert_eq(sscanf(at + strlen(needle), "%63s", addr), 1);
        snprintf(unit_arg[i], sizeof unit_arg[i], "%s=%s", sc->intersections[i].id, addr);
        ctl_args[n++] = "--unit";
        ctl_args[n++] = unit_arg[i];
    }
    add_args(ctl_args, &n, SETS);
    ctl_args[n] = NULL;
    proc_start(&W.procs[P_CTL], "controller", W.ns[NS_CTL], ctl_args);
    wait_text(&W.procs[P_SIM], false, "sigflow sim: ready", 1);

    proc_t *ctl = &W.procs[P_CTL];
    if (cs->partition) {
        /* Cut once VICTIM runs coordinated under the centre. Heal once the unit runs its
         * local plan (it drops to it at its next safe point after the centre-loss time,
         * up to a cycle later) and the controller has failed at least three reconnects. */
        wait_text(ctl, true,
                  "\"ix\":\"" VICTIM "\",\"kind\":\"mode\",\"event\":\"mode_change\",\"from\":"
                  "\"all_red\",\"to\":\"centre_coordinated\"",
                  1);
        SH_OK("ip -n %s link set f-ub down", W.ns[NS_HUB]);
        wait_text(ctl, true, "\"ix\":\"" VICTIM "\",\"kind\":\"comms\",\"event\":\"offline\"", 1);
        wait_text(ctl, true,
                  "\"ix\":\"" VICTIM "\",\"kind\":\"comms\",\"event\":\"reconnect_failed\"", 3);
        uint64_t k_local = wait_local_lamps(rec_path, (uint32_t)victim);
        SH_OK("ip -n %s link set f-ub up", W.ns[NS_HUB]);
        printf("multihost: %s cut off, local from step %lu, link restored\n", VICTIM,
               (unsigned long)k_local);
    }

    /* The simulator ends the run; every participant leaves at its Bye. */
    int sim_rc = proc_wait(&W.procs[P_SIM]);
    cr_assert_eq(sim_rc, 0, "sim exit %d: %.3000s", sim_rc, W.procs[P_SIM].err);
    cr_assert_eq(proc_wait(&W.procs[P_UA]), 0, "units-a: %.2000s", W.procs[P_UA].err);
    cr_assert_eq(proc_wait(&W.procs[P_UB]), 0, "units-b: %.2000s", W.procs[P_UB].err);
    cr_assert_eq(proc_wait(ctl), 0, "controller: %.2000s", ctl->err);
    cr_assert_eq(proc_stop(&W.procs[P_REC]), 0, "record: %.2000s", W.procs[P_REC].err);
    cr_assert_eq(proc_stop(&W.procs[P_BUS]), 0, "bus: %.2000s", W.procs[P_BUS].err);

    /* ---- reports complete ---- */
    json_error_t je;
    json_t *rep = json_load_file(rep_path, 0, &je);
    cr_assert_not_null(rep, "sim report: %s", je.text);
    static const char *keys[] = {"scenario", "seed",    "sim_seconds",   "warmup_s",
                                 "step_s",   "network", "intersections", "transit",
                                 "priority", "partial", "perf"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(json_object_get(rep, keys[i]), "sim report: no '%s'", keys[i]);
    cr_expect(json_is_false(json_object_get(rep, "partial")), "the run was cut short");
    cr_expect_float_eq(jnum(rep, "sim_seconds"), cs->duration_s, 1e-6);
    cr_expect_eq(json_array_size(json_object_get(rep, "intersections")), sc->n_intersections);
    cr_expect_eq(jnum(json_object_get(rep, "transit"), "events_dropped"), 0);
    json_t *crep = controller_report(ctl);
    static const char *ckeys[] = {"priority", "events", "comms", "plans", "transit_messages"};
    for (size_t i = 0; i < sizeof ckeys / sizeof ckeys[0]; i++)
        cr_expect_not_null(json_object_get(crep, ckeys[i]), "controller report: no '%s'", ckeys[i]);
    json_t *comms = json_object_get(crep, "comms");
    cr_expect_eq(jnum(comms, "online"), sc->n_intersections, "every unit online at the end");
    check_link_figures(cs, sc, victim, crep);

    /* ---- the event log: exactly what the controller counted ---- */
    json_t *evs = load_events(log_path);
    json_t *counted = json_object_get(crep, "events");
    const char *kind;
    json_t *cnt;
    json_object_foreach(counted, kind, cnt)
    {
        size_t lines = 0, i;
        json_t *ev;
        json_array_foreach(evs, i, ev) lines += strcmp(jstr(ev, "kind"), kind) == 0;
        cr_expect_eq((double)lines, json_number_value(cnt), "kind %s: %zu lines, %g counted", kind,
                     lines, json_number_value(cnt));
    }

    /* ---- comms: offline, growing back-off, online; the others never offline ---- */
    size_t i;
    json_t *ev;
    int offline = 0, online_after = 0, found_local = 0, ended_local = 0, recoordinated = 0;
    int verified_after = 0, failed = 0, grew = 0;
    double t_off = -1, t_on = -1, last_gap = 0;
    json_array_foreach(evs, i, ev)
    {
        bool mine = strcmp(jstr(ev, "ix"), VICTIM) == 0;
        double t = jnum(ev, "t");
        if (is_ev(ev, NULL, "offline")) {
            cr_expect(mine || !cs->partition, "%s went offline at %.1f s: only %s was cut",
                      jstr(ev, "ix"), t, VICTIM);
            if (mine) {
                offline++;
                t_off = t;
                last_gap = jnum(ev, "next_try_s") - t;
            }
        }
        if (mine && is_ev(ev, NULL, "reconnect_failed")) {
            cr_expect(t_off >= 0 && t_on < 0, "reconnect_failed outside the offline period");
            /* Doubling up to the cap (health.h), never shrinking. */
            double gap = jnum(ev, "next_try_s") - t;
            cr_expect_geq(gap, last_gap, "back-off shrank: %.1f s after %.1f s at %.1f s", gap,
                          last_gap, t);
            grew += gap > last_gap;
            last_gap = gap;
            failed++;
        }
        if (mine && t_off >= 0 && is_ev(ev, NULL, "online")) {
            online_after++;
            t_on = t;
            cr_expect_eq(jnum(ev, "reconnects"), 1);
        }
        if (mine && t_on >= 0) {
            verified_after += is_ev(ev, NULL, "plan_verified");
            /* The reconnect's first poll reads the unit's status before its heartbeat
             * (611e208), so the controller logs the fallback itself, then its end, then
             * sees the unit back under the centre. */
            found_local += is_ev(ev, NULL, "local_fallback");
            ended_local += found_local && is_ev(ev, NULL, "fallback_ended");
            recoordinated += ended_local && is_ev(ev, NULL, "mode_change") &&
                             strcmp(jstr(ev, "to"), "centre_coordinated") == 0;
        }
        /* The comms fault (0x30) is expected on a unit cut off; a conflict never. */
        if (is_ev(ev, NULL, "fault"))
            cr_expect(jnum(ev, "code") != 0x10 && jnum(ev, "code") != 0x11,
                      "%s: fault code %g at %.1f s", jstr(ev, "ix"), jnum(ev, "code"), t);
        cr_expect(!is_ev(ev, NULL, "flash"), "%s: flash at %.1f s", jstr(ev, "ix"), t);
        cr_expect(cs->partition || !is_ev(ev, NULL, "local_fallback"),
                  "%s fell back to its local plan at %.1f s with no partition", jstr(ev, "ix"), t);
    }
    if (cs->partition) {
        cr_expect_eq(offline, 1, "%s offline %d times", VICTIM, offline);
        cr_expect_geq(failed, 3, "failed reconnects logged: %d", failed);
        cr_expect_geq(grew, 2, "the back-off grew %d times", grew);
        cr_expect_eq(online_after, 1, "%s back online %d times", VICTIM, online_after);
        cr_expect_eq(found_local, 1, "local_fallback of %s logged %d times after the reconnect",
                     VICTIM, found_local);
        cr_expect_eq(ended_local, 1, "fallback_ended of %s logged %d times after its fallback",
                     VICTIM, ended_local);
        cr_expect_geq(recoordinated, 1, "%s not back to centre coordination", VICTIM);
        cr_expect_gt(verified_after, 0, "no plan verified again after the reconnect");
    }

    /* ---- the recording: lamps and transit events as they were on the bus ---- */
    rec_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    read_recording(rec_path, sc, r);
    for (uint32_t x = 0; x < sc->n_intersections; x++) {
        const ix_rec_t *xr = &r->ix[x];
        const char *id = sc->intersections[x].id;
        cr_expect_gt(xr->msgs, 0, "%s: no lamps recorded", id);
        cr_expect_eq(xr->conflicts, 0, "%s: %lu lamp messages with conflicting greens", id,
                     (unsigned long)xr->conflicts);
        cr_expect_eq(xr->monitor_faults, 0, "%s: %lu messages with a conflict fault", id,
                     (unsigned long)xr->monitor_faults);
        cr_expect_eq(xr->last_mode, 0x12, "%s ends in control mode 0x%02x, not centre coordinated",
                     id, xr->last_mode);
        cr_expect_eq(xr->last_fault, 0, "%s ends with fault 0x%02x", id, xr->last_fault);
        if ((int)x == victim && cs->partition) {
            cr_expect_gt(xr->local_msgs, 0, "%s never ran its local plan while cut off", id);
            cr_expect_gt(xr->comms_fault, 0, "%s never showed the comms fault", id);
        } else {
            /* Cut or not, the others keep the centre's plan; under latency and loss every
             * unit does (the link degrades, it never fails for the centre-loss time). */
            cr_expect_eq(xr->local_msgs, 0, "%s ran local (first at step %lu)", id,
                         (unsigned long)xr->first_local_k);
        }
    }
    /* Coordination restored: at the last second both run the same coordinated plan under
     * the centre, VICTIM's cycle timer stands to its neighbour's as their offsets say
     * (in sync, each timer is tod - sync - offset mod cycle; unit/engine.c), within the
     * 0.1 s of a tick. */
    if (cs->partition) {
        int nb = victim > 0 ? victim - 1 : victim + 1;
        long s_end = -1;
        for (long s2 = 1999; s2 >= 0 && s_end < 0; s2--)
            if (r->ct[victim][s2] >= 0 && r->ct[nb][s2] >= 0 && r->mode_at[victim][s2] == 0x12 &&
                r->mode_at[nb][s2] == 0x12 && r->plan_at[victim][s2] == r->plan_at[nb][s2])
                s_end = s2;
        cr_assert_geq(s_end, 0, "%s and %s never ran the same coordinated plan after the cut",
                      VICTIM, sc->intersections[nb].id);
        cr_expect_gt((uint64_t)s_end * 10, r->ix[victim].first_local_k,
                     "no common coordinated second after %s ran local", VICTIM);
        /* Cycle and offsets as the controller last downloaded and verified them (its
         * green-wave offsets when control.greenwave is on, else the scenario's). */
        uint8_t plan = r->plan_at[victim][s_end];
        long cycle = 0, off_v = -1, off_nb = -1;
        json_array_foreach(evs, i, ev)
        {
            if (jnum(ev, "t") > (double)s_end || !is_ev(ev, NULL, "plan_verified") ||
                jnum(ev, "plan") != plan)
                continue;
            if (strcmp(jstr(ev, "ix"), VICTIM) == 0) {
                cycle = (long)jnum(ev, "cycle_ds");
                off_v = (long)jnum(ev, "offset_ds");
            } else if (strcmp(jstr(ev, "ix"), sc->intersections[nb].id) == 0) {
                off_nb = (long)jnum(ev, "offset_ds");
            }
        }
        cr_assert(cycle > 0 && off_v >= 0 && off_nb >= 0,
                  "plan %u never verified at both intersections", plan);
        long rel = (((long)r->ct[victim][s_end] - r->ct[nb][s_end]) % cycle + cycle) % cycle;
        long want = ((off_nb - off_v) % cycle + cycle) % cycle;
        long err = labs(rel - want);
        if (err > cycle / 2)
            err = cycle - err;
        cr_expect_leq(err, 1,
                      "%s not in step with %s at %ld s: cycle timers %d and %d ds, %ld ds apart, "
                      "offsets say %ld",
                      VICTIM, sc->intersections[nb].id, s_end, r->ct[victim][s_end],
                      r->ct[nb][s_end], rel, want);
    }

    /* ---- priority: nothing lost, nothing twice ---- */
    size_t n_in = 0;
    for (size_t t = 0; t < r->n_tr; t++) {
        const transit_rec_t *tr = &r->tr[t];
        const char *ixid = sc->intersections[tr->ix].id;
        if (!tr->in)
            continue;
        /* A bus checks in again with a new ETA (transit.in, proto/BUS.md): one request. */
        bool again = false;
        for (size_t u = 0; u < t; u++)
            again |= r->tr[u].in && r->tr[u].ix == tr->ix && strcmp(r->tr[u].bus, tr->bus) == 0;
        if (again)
            continue;
        n_in++;
        int decided = 0;
        long id = -1;
        json_array_foreach(evs, i, ev)
        {
            if (!is_ev(ev, ixid, "check_in") || strcmp(jstr(ev, "bus"), tr->bus) != 0)
                continue;
            decided++;
            if (strcmp(jstr(ev, "outcome"), "granted") == 0)
                id = (long)jnum(ev, "request");
        }
        cr_expect_eq(decided, 1, "bus %s at %s: %d decisions for one check-in", tr->bus, ixid,
                     decided);
        if (id < 0)
            continue;
        bool checked_out = false;
        for (size_t u = t + 1; u < r->n_tr; u++)
            checked_out |=
                !r->tr[u].in && r->tr[u].ix == tr->ix && strcmp(r->tr[u].bus, tr->bus) == 0;
        int outcomes = 0;
        json_array_foreach(evs, i, ev)
        {
            const char *e = jstr(ev, "event");
            if (strcmp(jstr(ev, "kind"), "priority") == 0 && jnum(ev, "request") == (double)id &&
                (strcmp(e, "check_out") == 0 || strcmp(e, "expired") == 0 ||
                 strcmp(e, "unit_refused") == 0))
                outcomes++;
        }
        /* None only while still held at the end of the run. */
        cr_expect_leq(outcomes, 1, "request %ld (bus %s at %s): %d outcomes", id, tr->bus, ixid,
                      outcomes);
        if (checked_out)
            cr_expect_eq(outcomes, 1, "request %ld: checked out on the bus, %d outcomes", id,
                         outcomes);
    }
    cr_expect_gt(n_in, 0, "no bus checked in: priority was not exercised");
    cr_expect_eq(jnum(json_object_get(crep, "priority"), "requests"), (double)n_in,
                 "the controller decided %g requests for %zu check-ins",
                 jnum(json_object_get(crep, "priority"), "requests"), n_in);
    printf("multihost (%s): %zu check-ins, %g granted; %s: %d failed reconnects, lamps local in "
           "%lu messages\n",
           cs->partition ? "partition" : cs->impair, n_in,
           jnum(json_object_get(crep, "priority"), "granted"), VICTIM, failed,
           (unsigned long)r->ix[victim].local_msgs);
    free(r);
    json_decref(evs);
    json_decref(crep);
    json_decref(rep);
}

static sf_scenario_t *load_corridor(void)
{
    const char *sets[] = {"run.warmup_s=0", "control.priority.lateness_threshold_s=0"};
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(CORRIDOR, sets, 2, &errs);
    cr_assert_not_null(sc, "%s: %s", CORRIDOR, errs.n ? errs.msg[0] : "cannot load");
    return sc;
}

Test(multihost, partition_falls_back_and_recovers)
{
    make_namespaces("p");
    sf_scenario_t *sc = load_corridor();
    case_t cs = {.partition = true, .duration_s = 300};
    run_case(&cs, sc);
    sf_scenario_destroy(&sc);
}

/* Latency and loss for the second case. VICTIM's field link gets DELAY_MS each way (so
 * the controller's round trips to it can be told from the others'); every host loses
 * packets that come in from the field network, at its own rate. The sim network (the
 * cabinet wiring) is left alone. */
#define DELAY_MS 20
static const struct {
    int ns;             /* host whose incoming field packets are lost */
    const char *hub_if; /* its port on the hub (netem: the qdisc sending to it) */
    const char *rate;   /* loss, percent */
} LOSS[] = {{NS_CTL, "f-ctl", "1"}, {NS_UA, "f-ua", "2"}, {NS_UB, "f-ub", "2"}};

/* Make the hub namespace alone and try a netem qdisc on its loopback: the rest of the
 * network is made only when the case can run. Returns tc's exit status, its words in
 * out. */
static int probe_netem(char *out, size_t cap)
{
    if (geteuid() != 0)
        cr_skip_test("multi-host test skipped: network namespaces need root (CAP_NET_ADMIN); "
                     "run the tests as root to include it");
    delete_stale_namespaces();
    char name[32];
    snprintf(name, sizeof name, "sfn%d-hub", (int)getpid());
    int rc = sh(out, cap, "ip netns add %s", name);
    if (rc != 0)
        cr_skip_test("multi-host test skipped: cannot make a network namespace here "
                     "(`ip netns add` exit %d: %s)",
                     rc, out);
    snprintf(W.ns[NS_HUB], sizeof W.ns[NS_HUB], "%s", name);
    SH_OK("ip -n %s link set lo up", name);
    rc = sh(out, cap, "tc -n %s qdisc add dev lo root netem delay 1ms", name);
    out[strcspn(out, "\n")] = 0;
    return rc;
}

/* Can latency and loss be made with netfilter instead: the delay helper built, and
 * iptables taking a random statistic match and an NFQUEUE target (in the hub namespace,
 * removed again)? NULL when they can, else why not (in why). */
static const char *probe_netfilter(char *why, size_t cap)
{
#ifndef SIGFLOW_NFQ_DELAY
    snprintf(why, cap,
             "the delay helper tests/nfq_delay.c was not built (libnetfilter-queue-dev "
             "missing: scripts/install-deps.sh installs it)");
    return why;
#else
    char out[512];
    const char *hub = W.ns[NS_HUB];
    int rc = sh(out, sizeof out,
                "(ip netns exec %s iptables -w -A OUTPUT -o lo -m statistic --mode random "
                "--probability 0.5 -j DROP && ip netns exec %s iptables -w -A OUTPUT -o lo -j "
                "NFQUEUE --queue-num 0 && ip netns exec %s iptables -w -F OUTPUT)",
                hub, hub, hub);
    if (rc != 0) {
        out[strcspn(out, "\n")] = 0;
        snprintf(why, cap,
                 "iptables with `-m statistic` and `-j NFQUEUE` failed (exit %d: %s; the "
                 "Debian package iptables, kernel xt_statistic and nfnetlink_queue)",
                 rc, out);
        return why;
    }
    return NULL;
#endif
}

/* netem: VICTIM's delay on both ends of its field link, loss on the hub's port to each
 * host. */
static void impair_netem(void)
{
    const char *hub = W.ns[NS_HUB];
    SH_OK("tc -n %s qdisc add dev field0 root netem delay %dms", W.ns[NS_UB], DELAY_MS);
    for (size_t i = 0; i < sizeof LOSS / sizeof LOSS[0]; i++) {
        if (LOSS[i].ns == NS_UB)
            SH_OK("tc -n %s qdisc add dev %s root netem delay %dms loss %s%%", hub, LOSS[i].hub_if,
                  DELAY_MS, LOSS[i].rate);
        else
            SH_OK("tc -n %s qdisc add dev %s root netem loss %s%%", hub, LOSS[i].hub_if,
                  LOSS[i].rate);
    }
}

#ifdef SIGFLOW_NFQ_DELAY
/* netfilter: in each host, a random drop of what comes in from the field network
 * (xt_statistic); in VICTIM's host, every field packet in and out goes through queue 0,
 * where nfq_delay holds it DELAY_MS. The helper is bound before the rules exist, so no
 * packet meets a queue with no reader (which would drop it). */
static void impair_netfilter(void)
{
    char d[16];
    snprintf(d, sizeof d, "%d", DELAY_MS);
    const char *args[] = {"--queue", "0", "--delay-ms", d, NULL};
    proc_start_bin(&W.procs[P_DLY], "nfq_delay", W.ns[NS_UB], SIGFLOW_NFQ_DELAY, args);
    wait_text(&W.procs[P_DLY], true, "nfq_delay: ready", 1);
    for (size_t i = 0; i < sizeof LOSS / sizeof LOSS[0]; i++)
        SH_OK("ip netns exec %s iptables -w -A INPUT -i field0 -m statistic --mode random "
              "--probability 0.0%s -j DROP",
              W.ns[LOSS[i].ns], LOSS[i].rate);
    const char *ub = W.ns[NS_UB];
    SH_OK("(ip netns exec %s iptables -w -A INPUT -i field0 -j NFQUEUE --queue-num 0 && ip "
          "netns exec %s iptables -w -A OUTPUT -o field0 -j NFQUEUE --queue-num 0)",
          ub, ub);
}
#endif

/* Packets the loss dropped in host ns (iptables counter, or the netem qdisc's). */
static long dropped(const char *how, size_t i)
{
    char out[4096];
    long n = -1;
    if (strcmp(how, "netem") == 0) {
        sh(out, sizeof out, "tc -n %s -s qdisc show dev %s", W.ns[NS_HUB], LOSS[i].hub_if);
        const char *at = strstr(out, "dropped ");
        cr_assert(at && sscanf(at, "dropped %ld", &n) == 1, "tc -s: %s", out);
    } else {
        int rc =
            sh(out, sizeof out, "ip netns exec %s iptables -w -L INPUT -v -x -n", W.ns[LOSS[i].ns]);
        cr_assert_eq(rc, 0, "iptables -L: %s", out);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            long pk;
            char target[32];
            if (sscanf(line, "%ld %*d %31s", &pk, target) == 2 && strcmp(target, "DROP") == 0)
                n = pk;
        }
        cr_assert_geq(n, 0, "no DROP rule counter in %s", W.ns[LOSS[i].ns]);
    }
    return n;
}

Test(multihost, netem_latency_and_loss)
{
    char out[512], why[768];
    const char *how = NULL;
    if (probe_netem(out, sizeof out) == 0)
        how = "netem";
    else if (!probe_netfilter(why, sizeof why))
        how = "netfilter";
    else
        cr_skip_test("multi-host latency/loss case skipped: the kernel has no sch_netem (`tc "
                     "qdisc add ... netem`: %s) and the netfilter path cannot run: %s; the "
                     "partition case still runs",
                     out, why);
    printf("multihost (%s): the kernel %s sch_netem: latency and loss made with %s\n", how,
           strcmp(how, "netem") == 0 ? "has" : "has no",
           strcmp(how, "netem") == 0
               ? "tc qdisc netem"
               : "iptables -m statistic (loss) and -j NFQUEUE with tests/nfq_delay (latency)");
    make_namespaces("n");
#ifdef SIGFLOW_NFQ_DELAY
    if (strcmp(how, "netfilter") == 0)
        impair_netfilter();
    else
#endif
        impair_netem();
    printf("multihost (%s): %s's field link +%d ms each way; loss into the controller %s %%, "
           "units-a %s %%, units-b %s %%\n",
           how, VICTIM, DELAY_MS, LOSS[0].rate, LOSS[1].rate, LOSS[2].rate);
    sf_scenario_t *sc = load_corridor();
    case_t cs = {.partition = false,
                 .duration_s = sanitized() ? 200 : 300,
                 .impair = how,
                 .delay_ms = DELAY_MS};
    run_case(&cs, sc);
    sf_scenario_destroy(&sc);

    /* The loss was real: packets were dropped on the way into every host. */
    for (size_t i = 0; i < sizeof LOSS / sizeof LOSS[0]; i++) {
        long n = dropped(how, i);
        static const char *host[] = {"controller", "units-a", "units-b"};
        printf("multihost (%s): %ld packets dropped into %s\n", how, n, host[i]);
        cr_expect_gt(n, 0, "no packet was dropped into %s", host[i]);
    }
    /* The latency was real: the helper held every packet of VICTIM's link. */
    proc_t *dly = &W.procs[P_DLY];
    if (dly->out) {
        cr_expect_eq(proc_stop(dly), 0, "nfq_delay: %.2000s", dly->err);
        const char *line = strstr(dly->out, "nfq_delay: queue ");
        cr_assert_not_null(line, "nfq_delay said no figures: %.2000s", dly->out);
        printf("multihost (%s): %.*s\n", how, (int)strcspn(line, "\n"), line);
        unsigned long long pkts = 0;
        double held_min = 0;
        cr_assert(sscanf(line, "nfq_delay: queue %*d: %llu packets", &pkts) == 1, "%s", line);
        const char *p = strstr(line, "held min ");
        cr_assert(p && sscanf(p, "held min %lf", &held_min) == 1, "%s", line);
        cr_expect_gt(pkts, 0, "nfq_delay held no packet");
        cr_expect_geq(held_min, DELAY_MS, "a packet was held %.2f ms, not %d", held_min, DELAY_MS);
    }
}
