/* tests/test_probe.c — `sigflow probe` and controller/probe.h against sigflow's own unit
 * (a `sigflow unit` child process, and a unit host in a thread), against a deliberately
 * non-conforming libmodbus server, and its usage errors. */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "probe.h"
#include "regmap.h"
#include "scenario.h"

#define SINGLE SIGFLOW_ASSETS "/scenarios/single.json"
/* the probe check whose result is this machine's sampling rate, not the unit's behaviour */
#define LAMP_ROW "lamp watch >= 10 Hz"

/* ---- helpers: child processes ----------------------------------------------------- */

/* Run `sigflow probe` with args (NULL-terminated); stdout+stderr into out (cap bytes).
 * Returns the exit status. */
static int run_probe(char *out, size_t cap, const char *const *args)
{
    const char *argv[24] = {"sigflow", "probe"};
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    child_t *c = child_new();
    int st = child_run(c, (char *const *)argv, 120);
    /* stdout then stderr, each cut to what fits (a probe prints a few KiB) */
    size_t n_out = c->n_out < cap - 1 ? c->n_out : cap - 1;
    memcpy(out, c->out, n_out);
    size_t n_err = c->n_err < cap - 1 - n_out ? c->n_err : cap - 1 - n_out;
    memcpy(out + n_out, c->err, n_err);
    out[n_out + n_err] = 0;
    free(c);
    cr_assert_geq(st, 0, "probe did not exit normally:\n%s", out);
    return st;
}

/* Row named name in rep, or NULL. */
static const sf_probe_row_t *row(const sf_probe_report_t *rep, const char *name)
{
    for (size_t i = 0; i < rep->n_rows; i++)
        if (strcmp(rep->rows[i].name, name) == 0)
            return &rep->rows[i];
    return NULL;
}

/* ---- sigflow unit as a child, the probe as a child ------------------------------------ */

CHILD_SUITE(probe);

Test(probe, cli_passes_sigflow_unit)
{
    child_t *unit = child_new();
    uint16_t port = child_start_unit(unit, SINGLE, 0, 30);
    cr_assert_neq(port, 0, "no ready line from sigflow unit: %s", unit->err);
    char target[32], out[16384];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    /* The fallback check waits for a safe point of the 60 s cycle (up to a minute of wall
     * time): the in-thread test below covers it on a faster clock. */
    const char *args[] = {target, "--no-fallback",  "--sequence", "4",          "--scenario",
                          SINGLE, "--intersection", "I1",         "--max-wait", "40",
                          NULL};
    int rc = run_probe(out, sizeof out, args);
    char js[16384];
    /* Again on the same unit (now past its start-up), as JSON. */
    const char *jargs[] = {target, "--no-fallback", "--sequence", "2", "--json", NULL};
    int jrc = run_probe(js, sizeof js, jargs);
    int ust = child_stop(unit, SIGTERM, 20);
    free(unit);
    cr_assert_eq(ust, 0, "sigflow unit exit %d", ust);
    /* Every check passes (or is skipped) but the lamp watch's rate, which is a timing of
     * this machine (a loaded host samples the lamps slower), not a behaviour of the unit, as
     * in library_passes_host_in_thread_with_fallback: that row alone may fail, and then the
     * probe says so and exits 1. */
    json_error_t jerr;
    json_t *jr = json_loads(js, 0, &jerr);
    cr_assert_not_null(jr, "probe --json: %s\n%s", jerr.text, js);
    json_t *checks = json_object_get(jr, "checks");
    cr_assert(json_is_array(checks), "%s", js);
    size_t i_chk, n_jfail = 0;
    json_t *chk;
    bool conflicting_plan_checked = false;
    json_array_foreach(checks, i_chk, chk)
    {
        const char *name = json_string_value(json_object_get(chk, "check"));
        const char *res = json_string_value(json_object_get(chk, "result"));
        cr_assert(name && res, "%s", js);
        conflicting_plan_checked |= strcmp(name, "refuse conflicting plan") == 0;
        if (strcmp(res, "PASS") != 0 && strcmp(res, "SKIP") != 0) {
            cr_assert_str_eq(name, LAMP_ROW, "%s", js);
            n_jfail++;
        }
    }
    cr_assert(conflicting_plan_checked, "%s", js);
    cr_assert_eq(json_integer_value(json_object_get(jr, "failed")), (json_int_t)n_jfail, "%s", js);
    cr_assert_eq(json_is_true(json_object_get(jr, "conforming")), n_jfail == 0, "%s", js);
    cr_assert_eq(jrc, n_jfail ? 1 : 0, "%s", js);
    json_decref(jr);
    size_t n_fail = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        if (strstr(line, " FAIL")) {
            cr_assert(strncmp(line, LAMP_ROW, strlen(LAMP_ROW)) == 0, "failed: %s\n%s", line, out);
            n_fail++;
        }
    }
    char summary[64];
    snprintf(summary, sizeof summary, "%zu failed: %s", n_fail,
             n_fail ? "NOT CONFORMING" : "conforming");
    cr_assert(strstr(out, summary) != NULL, "no '%s' in:\n%s", summary, out);
    cr_assert_eq(rc, n_fail ? 1 : 0, "probe exit %d:\n%s", rc, out);
    cr_assert(strstr(out, "refuse yellow < 3 s          PASS") != NULL, "%s", out);
    cr_assert(strstr(out, "heartbeat loss -> fallback   SKIP") != NULL, "%s", out);
}

Test(probe, cli_usage_and_connect_errors)
{
    char out[8192];
    const char *none[] = {NULL};
    cr_assert_eq(run_probe(out, sizeof out, none), 2, "%s", out);
    const char *noport[] = {"127.0.0.1", NULL};
    cr_assert_eq(run_probe(out, sizeof out, noport), 2, "%s", out);
    const char *badport[] = {"127.0.0.1:70000", NULL};
    cr_assert_eq(run_probe(out, sizeof out, badport), 2, "%s", out);
    const char *badto[] = {"127.0.0.1:502", "--timeout", "x", NULL};
    cr_assert_eq(run_probe(out, sizeof out, badto), 2, "%s", out);
    cr_assert(strstr(out, "--timeout") != NULL, "%s", out);
    const char *alone[] = {"127.0.0.1:502", "--scenario", SINGLE, NULL};
    cr_assert_eq(run_probe(out, sizeof out, alone), 2, "%s", out);
    const char *unknown[] = {"127.0.0.1:502", "--bogus", NULL};
    cr_assert_eq(run_probe(out, sizeof out, unknown), 2, "%s", out);
    const char *badix[] = {"127.0.0.1:502", "--scenario", SINGLE, "--intersection", "NOPE", NULL};
    cr_assert_eq(run_probe(out, sizeof out, badix), 2, "%s", out);

    /* A port nobody listens on: bind one, read it back, close it. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(a.sin_port));
    const char *closed[] = {target, NULL};
    cr_assert_eq(run_probe(out, sizeof out, closed), 1, "%s", out);
    cr_assert(strstr(out, "connect") != NULL && strstr(out, "FAIL") != NULL, "%s", out);
}

/* ---- a unit host in a thread, on an 8x clock ------------------------------------------ */

typedef struct {
    sf_host_t *host;
    atomic_bool stop;
} host_thread_t;

/* Ticks the host every 12.5 ms (eight times real time, so the start-up, fallback and the
 * wait for a safe point take an eighth of the wall time) and serves Modbus between. */
static void *host_main(void *arg)
{
    host_thread_t *ht = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ticks = 0;
    while (!atomic_load(&ht->stop)) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 + (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
        while ((double)ticks * 12.5 <= ms) {
            sf_host_tick(ht->host);
            ticks++;
        }
        double wait = (double)ticks * 12.5 - ms;
        sf_host_poll(ht->host, wait > 0 ? (int)wait + 1 : 0);
    }
    return NULL;
}

Test(probe, library_passes_host_in_thread_with_fallback)
{
    sf_scenario_t *sc = sf_scenario_load(SINGLE, NULL, 0, NULL);
    cr_assert_not_null(sc);
    const sf_intersection_t *ix = &sc->intersections[0];
    sf_unit_config_t ucfg;
    sf_unit_config_default(&ucfg, ix);
    ucfg.heartbeat_timeout_ds =
        80; /* 10 s unit time = 1.25 s wall, over the 0.5 s heartbeat period */
    host_thread_t ht = {.host = sf_host_new(NULL)};
    cr_assert_not_null(ht.host);
    cr_assert_eq(sf_host_add_unit(ht.host, ix, &ucfg), 0);
    uint16_t port = sf_host_port(ht.host, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, host_main, &ht), 0);

    sf_probe_config_t cfg;
    sf_probe_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = port;
    cfg.sequence_s = 4;
    cfg.max_wait_s = 40;
    cfg.ix = ix;
    sf_probe_report_t *rep = calloc(1, sizeof *rep);
    int rc = sf_probe_run(&cfg, rep);
    atomic_store(&ht.stop, true);
    pthread_join(th, NULL);
    sf_host_destroy(&ht.host);

    cr_assert_eq(rc, 0);
    for (size_t i = 0; i < rep->n_rows; i++) {
        const sf_probe_row_t *r = &rep->rows[i];
        /* The sampling rate is a timing of this machine, not a behaviour of the unit. */
        if (strcmp(r->name, LAMP_ROW) == 0)
            continue;
        cr_expect_eq(r->result, SF_PROBE_PASS, "%s: %s (expected %s)", r->name, r->seen,
                     r->expected);
    }
    cr_assert_not_null(row(rep, "heartbeat loss -> fallback"));
    cr_assert_not_null(row(rep, "heartbeat -> centre control"));
    cr_assert_not_null(row(rep, "external detection (v2)"));  /* a v2 unit: checked, passed */
    cr_assert_not_null(row(rep, "poll image (v3)"));          /* a v3 unit: checked, passed */
    cr_assert_not_null(row(rep, "poll image by FC 23 (v4)")); /* a v4 unit: checked, passed */
    cr_assert_gt(rep->lamp_samples, 0);
    cr_assert_eq(rep->conflicts_seen, 0);
    free(rep);
    sf_scenario_destroy(&sc);
}

Test(probe, library_rejects_bad_config)
{
    sf_probe_report_t *rep = calloc(1, sizeof *rep);
    sf_probe_config_t cfg;
    sf_probe_config_default(&cfg);
    errno = 0;
    cr_assert_eq(sf_probe_run(&cfg, rep), -1); /* no host */
    cr_assert_eq(errno, EINVAL);
    cfg.host = "127.0.0.1";
    cfg.port = 502;
    cfg.unit_id = 300;
    cr_assert_eq(sf_probe_run(&cfg, rep), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_probe_run(NULL, rep), -1);
    cr_assert_eq(sf_probe_write_table(NULL, rep), -1);
    cr_assert_str_eq(sf_probe_result_name(SF_PROBE_SKIP), "SKIP");
    free(rep);
}

/* ---- a non-conforming server: accepts every write, shows conflicting greens ---------- */

typedef struct {
    int listen_fd;         /* libmodbus listening socket */
    modbus_t *ctx;         /* server context */
    modbus_mapping_t *map; /* registers, written by every request */
} bad_server_t;

static void *bad_main(void *arg)
{
    bad_server_t *b = arg;
    int fd = modbus_tcp_accept(b->ctx, &b->listen_fd);
    if (fd < 0)
        return NULL;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        int n = modbus_receive(b->ctx, q);
        if (n == 0)
            continue;
        if (n < 0)
            break;
        modbus_reply(b->ctx, q, n, b->map);
    }
    close(fd);
    return NULL;
}

Test(probe, fails_a_nonconforming_server)
{
    bad_server_t b = {0};
    b.ctx = modbus_new_tcp("127.0.0.1", 0);
    cr_assert_not_null(b.ctx);
    b.map = modbus_mapping_new(
        sf_regmap_table_size(SF_TBL_COIL), sf_regmap_table_size(SF_TBL_DISCRETE),
        sf_regmap_table_size(SF_TBL_HOLDING), sf_regmap_table_size(SF_TBL_INPUT));
    cr_assert_not_null(b.map);
    uint16_t *ir = b.map->tab_input_registers, *hr = b.map->tab_registers;
    ir[0] = SF_REGMAP_VERSION;
    ir[2] = 2;                 /* phases 1 and 2 */
    ir[3] = 1;                 /* one ring: they conflict */
    ir[4] = 2;                 /* two groups */
    ir[6] = 1;                 /* one plan */
    ir[7] = 60;                /* poll_image_len right for 2 groups, 0 detectors; image all 0 */
    ir[16] = ('B' << 8) | 'A'; /* unit_id "BAD" */
    ir[17] = ('D' << 8);
    ir[100] = 0x10; /* centre fixed */
    ir[101] = 1;    /* plan 1 */
    ir[142] = 0x3;  /* both phases green */
    ir[200] = 0x20; /* both groups green */
    ir[201] = 0x20;
    hr[100] = 10; /* min green, phases 1 and 2 */
    hr[101] = 10;
    hr[164] = 30; /* yellow */
    hr[165] = 30;
    hr[1] = 1; /* mode_command fixed */
    b.listen_fd = modbus_tcp_listen(b.ctx, 1);
    cr_assert_geq(b.listen_fd, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    cr_assert_eq(getsockname(b.listen_fd, (struct sockaddr *)&a, &al), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bad_main, &b), 0);

    sf_probe_config_t cfg;
    sf_probe_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = ntohs(a.sin_port);
    cfg.sequence_s = 2;
    cfg.max_wait_s = 2;
    cfg.no_fallback = true;
    sf_probe_report_t *rep = calloc(1, sizeof *rep);
    int rc = sf_probe_run(&cfg, rep);
    pthread_join(th, NULL);
    close(b.listen_fd);
    modbus_mapping_free(b.map);
    modbus_free(b.ctx);

    cr_assert_eq(rc, 0);
    cr_assert_gt(rep->n_failed, 0);
    const sf_probe_row_t *y = row(rep, "refuse yellow < 3 s");
    cr_assert_not_null(y);
    cr_assert_eq(y->result, SF_PROBE_FAIL, "%s", y->seen);
    cr_assert(strstr(y->seen, ": ok;") != NULL && strstr(y->seen, "CHANGED") != NULL, "%s",
              y->seen);
    const sf_probe_row_t *ad = row(rep, "refuse bad address");
    cr_assert_not_null(ad);
    cr_assert_eq(ad->result, SF_PROBE_FAIL, "%s", ad->seen);
    const sf_probe_row_t *g = row(rep, "no conflicting greens");
    cr_assert_not_null(g);
    cr_assert_eq(g->result, SF_PROBE_FAIL, "%s", g->seen);
    cr_assert_gt(rep->conflicts_seen, 0);
    const sf_probe_row_t *img = row(rep, "poll image (v3)"); /* copies that are not copies */
    cr_assert_not_null(img);
    cr_assert_eq(img->result, SF_PROBE_FAIL, "%s", img->seen);
    cr_assert(strstr(img->seen, "differ from the entries") != NULL, "%s", img->seen);
    /* It takes a write to its read-only poll_image_rw (libmodbus accepts any write). */
    const sf_probe_row_t *rw = row(rep, "poll image by FC 23 (v4)");
    cr_assert_not_null(rw);
    cr_assert_eq(rw->result, SF_PROBE_FAIL, "%s", rw->seen);
    cr_assert(strstr(rw->seen, "poll_image_rw[251]: ok, CHANGED") != NULL, "%s", rw->seen);
    const sf_probe_row_t *pv = row(rep, "protocol version");
    cr_assert_eq(pv->result, SF_PROBE_PASS, "%s", pv->seen);
    free(rep);
}
