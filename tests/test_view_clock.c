/* tests/test_view_clock.c — the viewer's clock commands reach `sigflow run`'s clock over
 * the real bus: a test participant publishes ViewCommand pause / step / speed / resume on
 * topic "cmd" and watches the Steps the clock publishes. Paused, no Step is published
 * (longer than the run's step timeout, and nobody times out); a single step publishes
 * exactly the next k; a speed command switches between as fast as possible and real-time
 * pacing, announced in Step.speed_factor; resume goes on. The run then ends normally on
 * SIGINT with a valid partial report. */
#include "run_child.h"

#include <SDL2/SDL.h>
#include <SDL2/SDL_image.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <zmq.h>

#include "bus.h"
#include "bus.pb-c.h"

#define SINGLE SIGFLOW_ASSETS "/scenarios/single.json"

/* The run's step timeout: every pause below holds the clock for longer than this. */
#define STEP_TIMEOUT_S "2"
#define HOLD_S         2.5

typedef struct {
    child_t c;
    void *zctx, *sub, *pub;
    uint64_t max_k;    /* highest step index seen */
    bool any;          /* a Step seen at all */
    double last_speed; /* Step.speed_factor of the latest Step */
    uint32_t plan[2];  /* LampStates.plan last seen of intersections 0 and 1 */
} rig_t;

/* Take every Step that arrives within timeout_ms; returns how many distinct new k (above
 * the previous max) arrived. */
static uint64_t take_steps(rig_t *r, int timeout_ms)
{
    uint64_t before = r->max_k;
    bool any_before = r->any;
    double end = child_now() + timeout_ms / 1000.0;
    for (;;) {
        double left = end - child_now();
        if (left <= 0)
            break;
        zmq_pollitem_t it = {r->sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, (long)(left * 1000) + 1);
        cr_assert_geq(rc, 0, "zmq_poll: %s", zmq_strerror(errno));
        sf_bus_rx_t rx;
        while (sf_bus_recv(r->sub, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
            if (rx.type == SF_BUS_STEP) {
                const Sfbus__Step *s = (const Sfbus__Step *)rx.msg;
                if (!r->any || s->k > r->max_k)
                    r->max_k = s->k;
                r->any = true;
                r->last_speed = s->speed_factor;
            } else if (rx.type == SF_BUS_LAMPS) {
                const Sfbus__LampStates *ls = (const Sfbus__LampStates *)rx.msg;
                if (ls->ix < 2)
                    r->plan[ls->ix] = ls->plan;
            }
            sf_bus_rx_clear(&rx);
        }
        child_pump(&r->c, 0); /* keep the child's stderr pipe from filling */
    }
    if (!any_before)
        return r->any ? r->max_k + 1 : 0;
    return r->max_k - before;
}

/* Take Steps until at least n new k have arrived, then settle_ms more so that any that
 * should not come is seen too; returns the new k seen. GUARD_MS only ends a wait that would
 * otherwise never end: under load (ASan, a busy machine) a step may take well over a second,
 * and a fixed window read "exactly one step" as none (seen in CI with 2 cores busy). */
#define GUARD_MS  30000
#define SETTLE_MS 500
static uint64_t take_at_least(rig_t *r, uint64_t n, int settle_ms)
{
    uint64_t got = 0;
    double end = child_now() + GUARD_MS / 1000.0;
    while (got < n && child_now() < end)
        got += take_steps(r, 100);
    return got + take_steps(r, settle_ms);
}

static void send_cmd_to(rig_t *r, Sfbus__Command cmd, double speed, uint32_t ix, uint32_t plan)
{
    Sfbus__ViewCommand m = SFBUS__VIEW_COMMAND__INIT;
    m.cmd = cmd;
    m.speed_factor = speed;
    m.ix = ix;
    m.plan = plan;
    cr_assert_eq(sf_bus_send(r->pub, &m.base), 0, "send: %s", zmq_strerror(errno));
}

static void send_cmd(rig_t *r, Sfbus__Command cmd, double speed)
{
    Sfbus__ViewCommand m = SFBUS__VIEW_COMMAND__INIT;
    m.cmd = cmd;
    m.speed_factor = speed;
    cr_assert_eq(sf_bus_send(r->pub, &m.base), 0, "send: %s", zmq_strerror(errno));
}

/* Pause, and prove it: pause is sent (again, as a PUB socket's first messages may go
 * before its connection is up) until a whole HOLD_S passes without a new Step. */
static void pause_and_hold(rig_t *r)
{
    for (int tries = 0; tries < 20; tries++) {
        send_cmd(r, SFBUS__COMMAND__CMD_PAUSE, 0);
        take_steps(r, 300); /* steps of the moment the command travels */
        if (take_steps(r, (int)(HOLD_S * 1000)) == 0)
            return;
    }
    cr_assert_fail("the clock never paused: %s", r->c.err);
}

static void rig_start(rig_t *r, char **argv)
{
    memset(r, 0, sizeof *r);
    cr_assert_eq(child_start(&r->c, argv), 0);
    cr_assert(child_wait_err(&r->c, "sigflow run: bus ", 30), "%s", r->c.err);
    char pub[256], sub[256];
    const char *l = strstr(r->c.err, "sigflow run: bus ");
    cr_assert_eq(sscanf(l + strlen("sigflow run: bus "), "%255s %255[^,\n]", pub, sub), 2);
    r->zctx = zmq_ctx_new();
    const char *topics[] = {"step", "lamps"};
    r->sub = sf_bus_sub_new(r->zctx, sub, topics, 2, 0);
    r->pub = sf_bus_pub_new(r->zctx, pub);
    cr_assert(r->sub && r->pub);
    cr_assert(child_wait_err(&r->c, "sigflow run: ready", 30), "%s", r->c.err);
}

/* SIGINT while paused: the run ends with a partial report of exactly the steps the clock
 * published. */
static void rig_stop(rig_t *r, const char *report)
{
    kill(r->c.pid, SIGINT);
    int st = child_finish(&r->c, 60);
    cr_assert_eq(st, 130, "exit %d (expected 130, interrupted): %s", st, r->c.err);
    cr_assert(strstr(r->c.err, "lockstep:") == NULL, "a participant timed out: %s", r->c.err);
    json_error_t je;
    json_t *rep = json_load_file(report, 0, &je);
    cr_assert_not_null(rep, "%s", je.text);
    cr_assert(json_is_true(json_object_get(rep, "partial")));
    json_t *steps = json_object_get(json_object_get(rep, "perf"), "steps");
    cr_assert(json_is_integer(steps));
    /* the report counts exactly the steps the clock published */
    cr_assert_eq((uint64_t)json_integer_value(steps), r->max_k + 1, "report %lld, bus %llu",
                 (long long)json_integer_value(steps), (unsigned long long)r->max_k + 1);
    json_decref(rep);
    unlink(report);
    sf_bus_close(&r->sub);
    sf_bus_close(&r->pub);
    (void)sf_bus_ctx_term(r->zctx, SF_BUS_CTX_TERM_MS);
}

CHILD_SUITE(view_clock);

Test(view_clock, pause_step_speed_resume_as_fast_as_possible, .timeout = 120)
{
    char report[128];
    snprintf(report, sizeof report, "/tmp/sf_viewclock_afap_%d.json", (int)getpid());
    char *argv[] = {"sigflow",    "run",   SINGLE,  "--headless",
                    "--duration", "86400", "--set", "run.step_timeout_s=" STEP_TIMEOUT_S,
                    "--report",   report,  NULL};
    rig_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    rig_start(r, argv);
    cr_assert_gt(take_steps(r, 2000), 0, "no steps at all: %s", r->c.err);
    cr_assert_eq(r->last_speed, 0.0, "as fast as possible announces factor 0");

    pause_and_hold(r);
    uint64_t held = r->max_k;
    /* one step: exactly k + 1, then nothing more */
    send_cmd(r, SFBUS__COMMAND__CMD_STEP, 0);
    take_at_least(r, 1, SETTLE_MS);
    cr_assert_eq(r->max_k, held + 1, "single step: k %llu after %llu", (unsigned long long)r->max_k,
                 (unsigned long long)held);
    /* three single steps: exactly three more */
    for (int i = 0; i < 3; i++)
        send_cmd(r, SFBUS__COMMAND__CMD_STEP, 0);
    take_at_least(r, 3, SETTLE_MS);
    cr_assert_eq(r->max_k, held + 4);

    /* real-time pacing x20 while paused: the next single step announces it */
    send_cmd(r, SFBUS__COMMAND__CMD_SPEED, 20.0);
    send_cmd(r, SFBUS__COMMAND__CMD_STEP, 0);
    take_at_least(r, 1, SETTLE_MS);
    cr_assert_eq(r->max_k, held + 5);
    cr_assert_float_eq(r->last_speed, 20.0, 1e-9);

    /* resume: the clock goes on in real time x20 */
    send_cmd(r, SFBUS__COMMAND__CMD_RESUME, 0);
    cr_assert_gt(take_at_least(r, 3, 0), 2, "no steps after resume");
    cr_assert_float_eq(r->last_speed, 20.0, 1e-9);

    /* paused again in real-time mode: held, nobody times out */
    pause_and_hold(r);
    held = r->max_k;
    send_cmd(r, SFBUS__COMMAND__CMD_STEP, 0);
    take_at_least(r, 1, SETTLE_MS);
    cr_assert_eq(r->max_k, held + 1);

    /* back to as fast as possible, resumed */
    send_cmd(r, SFBUS__COMMAND__CMD_SPEED, 0.0);
    send_cmd(r, SFBUS__COMMAND__CMD_RESUME, 0);
    cr_assert_gt(take_at_least(r, 3, 0), 2);
    cr_assert_eq(r->last_speed, 0.0);
    pause_and_hold(r); /* so the report's step count can be compared exactly */
    rig_stop(r, report);
    free(r);
}

Test(view_clock, pause_and_stop_in_real_time, .timeout = 120)
{
    char report[128];
    snprintf(report, sizeof report, "/tmp/sf_viewclock_rt_%d.json", (int)getpid());
    char *argv[] = {
        "sigflow",  "run",        SINGLE, "--headless", "--duration",
        "3600",     "--realtime", "10",   "--set",      "run.step_timeout_s=" STEP_TIMEOUT_S,
        "--report", report,       NULL};
    rig_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    rig_start(r, argv);
    cr_assert_gt(take_at_least(r, 1, 0), 0, "no steps at all: %s", r->c.err);
    cr_assert_float_eq(r->last_speed, 10.0, 1e-9);
    pause_and_hold(r);
    uint64_t held = r->max_k;
    send_cmd(r, SFBUS__COMMAND__CMD_STEP, 0);
    take_at_least(r, 1, SETTLE_MS);
    cr_assert_eq(r->max_k, held + 1);
    /* a slower factor from the window, then resume */
    send_cmd(r, SFBUS__COMMAND__CMD_SPEED, 5.0);
    send_cmd(r, SFBUS__COMMAND__CMD_RESUME, 0);
    cr_assert_gt(take_at_least(r, 3, 0), 2);
    cr_assert_float_eq(r->last_speed, 5.0, 1e-9);
    /* a stop while paused ends the run (partial report), it does not hang */
    pause_and_hold(r);
    rig_stop(r, report);
    free(r);
}

/* The end of a run in a viewer attached from another process (`sigflow view`): the run's
 * summary arrives, the window shows the "run finished" box with the final MOEs and stays
 * until closed (here: --at end --exit saves the picture and closes). */
Test(view_clock, viewer_shows_run_finished, .timeout = 120)
{
    setenv("SDL_VIDEODRIVER", "dummy", 1);
    char png[128];
    snprintf(png, sizeof png, "/tmp/sf_viewclock_end_%d.png", (int)getpid());
    unlink(png);
    char *run_argv[] = {"sigflow",    "run", SINGLE,  "--headless",
                        "--duration", "120", "--set", "run.warmup_s=30",
                        "--realtime", "20",  NULL};
    child_t *run = calloc(1, sizeof *run), *view = calloc(1, sizeof *view);
    cr_assert(run && view);
    cr_assert_eq(child_start(run, run_argv), 0);
    cr_assert(child_wait_err(run, "sigflow run: bus ", 30), "%s", run->err);
    char pub[256], sub[256];
    const char *l = strstr(run->err, "sigflow run: bus ");
    cr_assert_eq(sscanf(l + strlen("sigflow run: bus "), "%255s %255[^,\n]", pub, sub), 2);
    char *view_argv[] = {"sigflow",      "view", SINGLE,   "--bus",    sub,
                         "--pub",        pub,    "--size", "1000x700", "--software",
                         "--screenshot", png,    "--at",   "end",      "--exit",
                         "--wall",       "90",   NULL};
    cr_assert_eq(child_start(view, view_argv), 0);
    int vst = child_finish(view, 100);
    int rst = child_finish(run, 60);
    cr_assert_eq(rst, 0, "run: exit %d: %s", rst, run->err);
    cr_assert_eq(vst, 0, "view: exit %d: %s %s", vst, view->out, view->err);
    cr_assert(strstr(view->out, "run finished") != NULL, "no summary reached the viewer: %s",
              view->out);
    cr_assert(strstr(view->out, "screenshot") != NULL, "%s", view->out);
    /* the box: its 2-pixel light outline at its left edge, mid-height of the map */
    SDL_Surface *img = IMG_Load(png);
    cr_assert_not_null(img, "%s", IMG_GetError());
    SDL_Surface *argb = SDL_ConvertSurfaceFormat(img, SDL_PIXELFORMAT_ARGB8888, 0);
    cr_assert_not_null(argb);
    int x = (1000 - 560) / 2, y = (700 - 26) / 2;
    uint32_t p = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x + 1];
    cr_assert_eq(p & 0xFFFFFFu, 0xEBEBEBu, "no finished box outline at (%d,%d): %06x", x + 1, y,
                 p & 0xFFFFFFu);
    /* and the map around it is still drawn (not the box colour) outside the box */
    uint32_t q = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x - 20];
    cr_assert_neq(q & 0xFFFFFFu, 0xEBEBEBu);
    SDL_FreeSurface(argb);
    SDL_FreeSurface(img);
    unlink(png);
    free(run);
    free(view);
}

/* The operator's plan switch reaches the controller: the corridor runs its scheduled plan 1
 * at 07:30 everywhere; "plan 2 at I1" from the viewer makes unit I1 run plan 2 (its
 * LampStates say so) while I2 keeps plan 1. */
Test(view_clock, operator_plan_switch_reaches_the_unit, .timeout = 150)
{
    char report[128];
    snprintf(report, sizeof report, "/tmp/sf_viewclock_plan_%d.json", (int)getpid());
    char *argv[] = {"sigflow",    "run",        SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json",
                    "--headless", "--duration", "3600",
                    "--report",   report,       NULL};
    rig_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    rig_start(r, argv);
    while (r->plan[0] == 0 || r->plan[1] == 0) /* the units report their plans */
        cr_assert_gt(take_steps(r, 5000), 0, "no steps: %s", r->c.err);
    /* wait for the scheduled plan 1 to be in force at both */
    for (int i = 0; i < 60 && (r->plan[0] != 1 || r->plan[1] != 1); i++)
        take_steps(r, 500);
    cr_assert(r->plan[0] == 1 && r->plan[1] == 1, "plans %u %u", r->plan[0], r->plan[1]);
    pause_and_hold(r); /* proves our commands reach the bus */
    send_cmd_to(r, SFBUS__COMMAND__CMD_SELECT_PLAN, 0, 0, 2);
    send_cmd(r, SFBUS__COMMAND__CMD_RESUME, 0);
    for (int i = 0; i < 120 && r->plan[0] != 2; i++)
        take_steps(r, 500);
    cr_assert_eq(r->plan[0], 2, "I1 still runs plan %u: %s", r->plan[0], r->c.err);
    cr_assert_eq(r->plan[1], 1, "I2 was not commanded, it runs plan %u", r->plan[1]);
    pause_and_hold(r);
    rig_stop(r, report);
    free(r);
}
