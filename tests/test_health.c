/* tests/test_health.c — comms health: the state machine, and a unit process killed and
 * restarted under a running controller (offline after N misses, back-off, online again,
 * no crash, every step bounded). */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controller.h"
#include "health.h"
#include "scenario.h"

CHILD_SUITE(health);

Test(health, offline_after_n_misses_backoff_doubles_to_cap)
{
    sf_health_t h;
    sf_health_cfg_t cfg = {.offline_after = 3, .backoff_min_ds = 10, .backoff_max_ds = 40};
    cr_assert_eq(sf_health_init(&h, &cfg), 0);
    cr_assert_eq(h.state, SF_LINK_UNKNOWN);
    cr_assert_eq(sf_health_reply(&h, 0), SF_LINK_WENT_ONLINE);
    cr_assert_eq(sf_health_reply(&h, 10), SF_LINK_NO_CHANGE);
    cr_assert_eq(sf_health_miss(&h, 20), SF_LINK_NO_CHANGE);
    cr_assert_eq(sf_health_miss(&h, 30), SF_LINK_NO_CHANGE);
    cr_assert(sf_health_due(&h, 31), "not offline yet: every poll is tried");
    cr_assert_eq(sf_health_miss(&h, 40), SF_LINK_WENT_OFFLINE);
    cr_assert_eq(h.state, SF_LINK_OFFLINE);
    /* Retries at +1 s, then +2 s, +4 s, then capped at 4 s. */
    int64_t t = 40;
    const int64_t gaps[] = {10, 20, 40, 40, 40};
    for (int i = 0; i < 5; i++) {
        cr_assert_not(sf_health_due(&h, t + gaps[i] - 1), "attempt %d too early", i);
        cr_assert(sf_health_due(&h, t + gaps[i]), "attempt %d due", i);
        t += gaps[i];
        cr_assert_eq(sf_health_miss(&h, t), SF_LINK_NO_CHANGE);
    }
    cr_assert_eq(h.n_missed, 8);
    cr_assert_eq(sf_health_reply(&h, t + 40), SF_LINK_WENT_ONLINE);
    cr_assert_eq(h.n_reconnects, 1);
    cr_assert_eq(h.missed_run, 0);
    /* A new outage starts the back-off from the minimum again. */
    for (int i = 0; i < 3; i++)
        sf_health_miss(&h, t + 50 + i);
    cr_assert_eq(h.state, SF_LINK_OFFLINE);
    cr_assert_eq(h.next_try_ds, t + 52 + 10);
}

Test(health, bad_config_is_refused)
{
    sf_health_t h = {0};
    sf_health_cfg_t cfg = {.offline_after = 0, .backoff_min_ds = 10, .backoff_max_ds = 40};
    cr_assert_eq(sf_health_init(&h, &cfg), -1);
    cr_assert_eq(errno, EINVAL);
    cfg.offline_after = 1;
    cfg.backoff_min_ds = 50;
    cr_assert_eq(sf_health_init(&h, &cfg), -1);
    cr_assert_eq(sf_health_init(NULL, NULL), -1);
    cr_assert_eq(sf_health_init(&h, NULL), 0);
    cr_assert_eq(h.cfg.offline_after, 3);
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_line(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

Test(health, unit_killed_and_restarted_mid_run)
{
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, &errs);
    cr_assert_not_null(sc);
    child_t *unit = child_new();
    uint16_t port = child_start_unit(unit, SIGFLOW_ASSETS "/scenarios/single.json", 0, 30);
    cr_assert_neq(port, 0, "no ready line from sigflow unit: %s", unit->err);
    sf_endpoint_t ep = {.host = "127.0.0.1", .port = port};
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.round_timeout_ms = 200;
    o.sink = on_line;
    char err[200] = "";
    sf_controller_t *c = sf_controller_new(sc, &ep, &o, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const sf_unit_state_t *st = sf_master_state(sf_controller_master(c), 0);
    uint32_t tod = 7 * 36000;
    uint64_t k = 0;
    double worst_ms = 0;
    uint64_t worst_rounds = 0;
    /* Steps at 0.1 s; the controller polls every 10 steps (control.poll_period_s = 1).
     * Each master round ends at round_timeout_ms by construction, so the lockstep bound
     * is a bound on rounds per step: count them (the wall time is only printed: tests
     * assert behaviour, never timings). */
#define STEP()                                                                                     \
    do {                                                                                           \
        sf_master_stats_t ms0, ms1;                                                                \
        sf_master_stats(sf_controller_master(c), &ms0);                                            \
        double t0 = wall_ms();                                                                     \
        cr_assert_eq(sf_controller_step(c, k, tod + (uint32_t)k), 0);                              \
        double d = wall_ms() - t0;                                                                 \
        sf_master_stats(sf_controller_master(c), &ms1);                                            \
        worst_ms = d > worst_ms ? d : worst_ms;                                                    \
        if (ms1.rounds - ms0.rounds > worst_rounds)                                                \
            worst_rounds = ms1.rounds - ms0.rounds;                                                \
        k++;                                                                                       \
    } while (0)
    for (int s = 0; s < 50; s++)
        STEP();
    cr_assert_eq(st->health.state, SF_LINK_ONLINE);
    cr_assert(st->identity_ok);
    uint64_t read_before = st->n_status;
    cr_assert_geq(read_before, 4);

    child_stop(unit, SIGKILL, 20);
    /* Three polls missed -> offline. */
    for (int s = 0; s < 30; s++)
        STEP();
    cr_assert_eq(st->health.state, SF_LINK_OFFLINE, "state %s after 3 polls",
                 sf_link_state_name(st->health.state));
    cr_assert_eq(st->health.n_offline, 1);
    /* Backing off: attempts spread out (1, 2, 4 s...), so over the next 8 s of polls
     * (8 polls) at most 3 attempts are made, each a miss. */
    uint64_t missed_at_offline = st->health.n_missed;
    for (int s = 0; s < 80; s++)
        STEP();
    uint64_t attempts = st->health.n_missed - missed_at_offline;
    cr_assert(attempts >= 2 && attempts <= 3, "attempts while backing off: %llu",
              (unsigned long long)attempts);
    cr_assert_eq(st->n_status, read_before, "nothing read while the unit is down");

    /* Restart on the same port: back online within the back-off (at most 16 s here). */
    uint16_t again = child_start_unit(unit, SIGFLOW_ASSETS "/scenarios/single.json", port, 30);
    cr_assert_eq(again, port, "sigflow unit again on %u: %s", port, unit->err);
    int s = 0;
    while (st->health.state != SF_LINK_ONLINE && s < 200) {
        STEP();
        s++;
    }
    cr_assert_eq(st->health.state, SF_LINK_ONLINE, "not back online after %d steps", s);
    cr_assert_eq(st->health.n_reconnects, 1);
    for (int j = 0; j < 20; j++)
        STEP();
    cr_assert_gt(st->n_status, read_before);
    /* Every step stayed within its bound: at most two rounds of round_timeout_ms each
     * (never one timeout per retry or per unit), whatever the unit did. */
    cr_log_info("worst step %.1f ms, %llu rounds (round timeout %d ms)", worst_ms,
                (unsigned long long)worst_rounds, o.round_timeout_ms);
    cr_assert_leq(worst_rounds, 2, "a step ran %llu master rounds",
                  (unsigned long long)worst_rounds);
    cr_assert_geq(worst_rounds, 1, "no step polled at all");
    json_t *rep = sf_controller_report(c);
    json_t *comms = json_object_get(rep, "comms");
    cr_assert_eq(json_integer_value(json_object_get(comms, "reconnects")), 1);
    cr_assert_geq(json_integer_value(json_object_get(json_object_get(rep, "events"), "comms")), 3,
                  "online, offline, online");
    json_decref(rep);
    sf_controller_destroy(&c);
    int ust = child_stop(unit, SIGTERM, 20);
    cr_assert_eq(ust, 0, "sigflow unit exit %d: %s", ust, unit->err);
    free(unit);
    sf_scenario_destroy(&sc);
}
