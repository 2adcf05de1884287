/* tests/test_monitor.c — the conflict monitor, with the engine broken on purpose through
 * the unit's test seam (sf_unit_hooks_t), and the monitor alone on crafted outputs. */
#include <criterion/criterion.h>
#include <errno.h>

#include "monitor.h"
#include "unit_fixtures.h"

enum { A2 = 0, A4 = 1, P2 = 2, P4 = 3 };

/* What the seam does to the outputs. */
typedef enum {
    BREAK_NONE,
    BREAK_CONFLICT,  /* A4 green whenever A2 is green */
    BREAK_SHORT_Y,   /* A2's yellow replaced by red after 1 s */
    BREAK_RED_GREEN, /* A2 shows red and green */
    BREAK_DARK,      /* A4 dark */
    BREAK_RED_CLEAR, /* A4 green as soon as A2's yellow ends */
    BREAK_MIN_GREEN, /* A2's green replaced by yellow after 4 s */
    BREAK_PED_CLEAR, /* P2's flashing don't walk cut to 2 s */
} brk_t;

typedef struct {
    brk_t mode;    /* what to break */
    bool armed;    /* break only once armed (after the start-up) */
    int count;     /* ticks of the state being watched */
    uint8_t prev2; /* A2 outputs at the previous call */
} seam_t;

static void seam(void *ctx, uint8_t *out, uint8_t n_sg)
{
    seam_t *s = ctx;
    cr_assert_eq(n_sg, 4);
    uint8_t a2 = out[A2];
    if (s->armed) {
        switch (s->mode) {
        case BREAK_CONFLICT:
            if (a2 == SF_OUT_GREEN)
                out[A4] = SF_OUT_GREEN;
            break;
        case BREAK_SHORT_Y:
            s->count = a2 == SF_OUT_YELLOW ? s->count + 1 : 0;
            if (s->count > 10)
                out[A2] = SF_OUT_RED;
            break;
        case BREAK_RED_GREEN:
            if (a2 == SF_OUT_GREEN)
                out[A2] = SF_OUT_GREEN | SF_OUT_RED;
            break;
        case BREAK_DARK:
            out[A4] = 0;
            break;
        case BREAK_RED_CLEAR:
            if (s->prev2 == SF_OUT_YELLOW && a2 == SF_OUT_RED)
                out[A4] = SF_OUT_GREEN;
            break;
        case BREAK_MIN_GREEN:
            s->count = a2 == SF_OUT_GREEN ? s->count + 1 : 0;
            if (s->count > 40)
                out[A2] = SF_OUT_YELLOW;
            break;
        case BREAK_PED_CLEAR:
            s->count = out[P2] == (SF_OUT_RED | SF_OUT_FLASH) ? s->count + 1 : 0;
            if (s->count > 20)
                out[P2] = SF_OUT_RED;
            break;
        default:
            break;
        }
    }
    s->prev2 = a2;
}

/* Run a fixed single unit into its first green with the seam installed, arm it, and
 * tick until the monitor trips; check the latched flash and the code. */
static void broken(brk_t mode, uint8_t want_code)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_unit_config_t c = fx_cfg(&ix, SF_UMODE_FIXED);
    sf_unit_t *u = sf_unit_new(&ix, &c);
    cr_assert_not_null(u);
    seam_t s = {.mode = mode};
    sf_unit_hooks_t h = {.ctx = &s, .outputs = seam};
    sf_unit_set_hooks(u, &h);
    const sf_unit_status_t *st = sf_unit_status(u);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    cr_assert(!st->fault_latched);
    s.armed = true;
    int n = 0;
    while (!st->fault_latched && n < 3000) {
        sf_unit_tick(u);
        n++;
    }
    cr_assert(st->fault_latched, "monitor never tripped");
    cr_expect_eq(st->fault_code, want_code, "fault 0x%02x, want 0x%02x", st->fault_code, want_code);
    /* latched flash: vehicles flashing yellow, pedestrians dark, on the very tick */
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_YELLOW_FLASH);
    cr_expect_eq(st->sg_lamp[A4], SF_LAMP_YELLOW_FLASH);
    cr_expect_eq(st->sg_lamp[P2], SF_LAMP_OFF);
    cr_expect_eq(st->control_mode, SF_CM_FLASH);
    /* stays latched; commands are refused and change nothing */
    s.armed = false;
    for (int i = 0; i < 500; i++)
        sf_unit_tick(u);
    cr_expect(st->fault_latched);
    cr_expect_eq(st->sg_lamp[A2], SF_LAMP_YELLOW_FLASH);
    errno = 0;
    cr_expect_eq(sf_unit_command_mode(u, SF_UMODE_ACTUATED), -1);
    cr_expect_eq(errno, SF_EFAULTED);
    cr_expect_eq(st->mode_command, SF_UMODE_FIXED);
    /* reset: start-up again, then normal operation without a fault */
    cr_assert_eq(sf_unit_fault_reset(u), 0);
    cr_expect(!st->fault_latched);
    cr_expect_eq(st->fault_code, SF_FAULT_NONE);
    cr_expect(st->startup);
    cr_assert_gt(fx_until(u, A2, SF_LAMP_GREEN, 2000), 0);
    for (int i = 0; i < 2000; i++)
        sf_unit_tick(u);
    cr_expect(!st->fault_latched);
    cr_expect_eq(sf_unit_fault_reset(u), 0); /* nothing latched: a no-op */
    sf_unit_destroy(&u);
}

Test(monitor, conflicting_green)
{
    broken(BREAK_CONFLICT, SF_FAULT_GREEN_CONFLICT);
}

Test(monitor, short_yellow)
{
    broken(BREAK_SHORT_Y, SF_FAULT_YELLOW_SHORT);
}

Test(monitor, red_and_green_together)
{
    broken(BREAK_RED_GREEN, SF_FAULT_GREEN_RED);
}

Test(monitor, dark_group)
{
    broken(BREAK_DARK, SF_FAULT_LAMP_DARK);
}

Test(monitor, red_clearance_cut_short)
{
    broken(BREAK_RED_CLEAR, SF_FAULT_TIMING_SHORT);
}

Test(monitor, min_green_cut_short)
{
    broken(BREAK_MIN_GREEN, SF_FAULT_TIMING_SHORT);
}

Test(monitor, ped_clearance_cut_short)
{
    broken(BREAK_PED_CLEAR, SF_FAULT_TIMING_SHORT);
}

Test(monitor, correct_engine_never_trips)
{
    sf_intersection_t ix;
    fx_nema(&ix);
    sf_unit_t *u = sf_unit_new(&ix, NULL);
    cr_assert_not_null(u);
    for (int i = 0; i < 20000; i++) {
        sf_unit_set_detectors(u, (uint64_t)((i / 37) % 256) & 0x5Au);
        sf_unit_tick(u);
    }
    cr_expect(!sf_unit_status(u)->fault_latched);
    sf_unit_destroy(&u);
}

/* The monitor alone: crafted pictures, one check per tick. */
Test(monitor, standalone_rules)
{
    sf_intersection_t ix;
    fx_single(&ix);
    sf_monitor_t *m = sf_monitor_new(&ix);
    cr_assert_not_null(m);
    uint8_t out[4] = {SF_OUT_RED, SF_OUT_RED, SF_OUT_RED, SF_OUT_RED};
    for (int i = 0; i < 50; i++)
        cr_assert_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    out[A2] = SF_OUT_GREEN;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    out[A2] = SF_OUT_YELLOW;
    for (int i = 0; i < 30; i++)
        cr_assert_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    out[A2] = SF_OUT_RED;
    for (int i = 0; i < 19; i++)
        cr_assert_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    /* 19 ticks of red clear out of 20: A4 may not start */
    out[A4] = SF_OUT_GREEN;
    cr_expect_eq(sf_monitor_check(m, out), SF_FAULT_TIMING_SHORT);
    uint8_t sg[2];
    cr_expect_eq(sf_monitor_fault(m, sg), SF_FAULT_TIMING_SHORT);
    cr_expect_eq(sg[0], A4);
    cr_expect_eq(sg[1], A2);
    /* latched until reset, whatever comes next */
    out[A4] = SF_OUT_RED;
    cr_expect_eq(sf_monitor_check(m, out), SF_FAULT_TIMING_SHORT);
    sf_monitor_reset(m);
    cr_expect_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    /* exactly 20 ticks of red clear is enough */
    out[A2] = SF_OUT_GREEN;
    for (int i = 0; i < 100; i++)
        sf_monitor_check(m, out);
    out[A2] = SF_OUT_YELLOW;
    for (int i = 0; i < 30; i++)
        sf_monitor_check(m, out);
    out[A2] = SF_OUT_RED;
    for (int i = 0; i < 20; i++)
        sf_monitor_check(m, out);
    out[A4] = SF_OUT_GREEN;
    cr_expect_eq(sf_monitor_check(m, out), SF_FAULT_NONE);
    /* flash: vehicles flashing yellow, pedestrians dark is legal */
    sf_monitor_reset(m);
    uint8_t fl[4] = {SF_OUT_YELLOW | SF_OUT_FLASH, SF_OUT_YELLOW | SF_OUT_FLASH, 0, 0};
    cr_expect_eq(sf_monitor_check(m, fl), SF_FAULT_NONE);
    fl[1] = SF_OUT_RED;
    cr_expect_eq(sf_monitor_check(m, fl), SF_FAULT_LAMP_DARK);
    sf_monitor_destroy(&m);
    cr_expect_null(m);
    sf_monitor_destroy(&m);
    errno = 0;
    cr_expect_null(sf_monitor_new(NULL));
    cr_expect_eq(errno, EINVAL);
}
