/* tests/test_unit_property.c — randomized property test of the signal unit.
 *
 * More than 1,000,000 engine ticks per run (plain build; SIGFLOW_SANITIZED=1 runs a
 * fraction) over the intersections of the two scenario assets and a NEMA 8-phase one
 * built in code, with random detector inputs, calls, holds, force-offs, omits, plan and
 * mode changes, offset changes, priority requests, timing and plan writes (unsafe ones
 * included, which must be refused and change nothing) and heartbeat losses.
 *
 * After every tick an observer written here, independently of the engine and of
 * unit/monitor.c, checks the raw lamp outputs against the conflict matrix and the
 * phase timings it keeps itself (updated only by writes the unit accepted):
 *  - no two conflicting groups green together; never red and green on one group;
 *  - every vehicle green lasts at least its min green and ends in a steady yellow of at
 *    least its yellow time;
 *  - a group turns green only when every conflicting group has shown red for its red
 *    clearance since its yellow (pedestrian: steady don't walk for 3 s, the shortest
 *    yellow, since its clearance);
 * each minimum being the timing in force when the interval began (writes apply to the
 * next interval);
 *  - every walk is followed by a complete pedestrian clearance (flashing don't walk);
 *  - while the unit reports coordinated operation in sync, consecutive yields of the
 *    first coordinated phase are a whole number of plan cycles apart (exactly one when
 *    the phase has demand every cycle), and such cycles are observed;
 *  - the monitor never trips.
 * Seeds are fixed and printed; SIGFLOW_SEED=N reruns one seed.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <stdlib.h>

#include "unit_fixtures.h"

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static uint32_t rnd_n(rng_t *r, uint32_t n)
{
    return (uint32_t)(rnd(r) % n);
}

static bool chance(rng_t *r, uint32_t one_in)
{
    return rnd_n(r, one_in) == 0;
}

/* Observer colours. */
enum { O_DARK, O_RED, O_RED_FL, O_YEL, O_YEL_FL, O_GRN, O_OTHER };

static int colour(uint8_t o)
{
    bool f = o & SF_OUT_FLASH;
    uint8_t c = o & (SF_OUT_RED | SF_OUT_YELLOW | SF_OUT_GREEN);
    if (c == SF_OUT_GREEN)
        return O_GRN;
    if (c == SF_OUT_YELLOW)
        return f ? O_YEL_FL : O_YEL;
    if (c == SF_OUT_RED)
        return f ? O_RED_FL : O_RED;
    if (c == 0)
        return O_DARK;
    return O_OTHER;
}

typedef struct {
    sf_intersection_t ref;     /* our own copy: timings as accepted */
    int col[SF_MAX_SG];        /* colour shown at the last tick */
    long dur[SF_MAX_SG];       /* ticks shown; -1 unknown */
    long red_since[SF_MAX_SG]; /* ticks red since a clearance ended; -1 none */
    long need[SF_MAX_SG];      /* minimum of the current colour, timing at its start */
    long need_red[SF_MAX_SG];  /* red owed before a conflicting green, set at clearance end */
    /* coordination */
    long last_yield;    /* tick of the last yield of the watched group, -1 */
    bool sync_run;      /* in sync continuously since last_yield */
    uint8_t watch_sg;   /* watched vehicle group (first coordinated phase), 0xFF */
    uint8_t watch_plan; /* plan the watch was set for */
    long cycles_checked;
    long cycles_exact;
    long coord_ticks;
} obs_t;

static void obs_reset(obs_t *o)
{
    for (int i = 0; i < SF_MAX_SG; i++) {
        o->col[i] = -1;
        o->dur[i] = -1;
        o->red_since[i] = -1;
        o->need[i] = 0;
        o->need_red[i] = 0;
    }
    o->last_yield = -1;
    o->sync_run = false;
    o->watch_sg = 0xFF;
    o->watch_plan = 0;
}

/* First coordinated phase of plan p (lowest ring, ring order), then its first vehicle
 * or arrow group. */
static uint8_t watch_group(const sf_intersection_t *ix, const sf_plan_t *p)
{
    for (uint8_t r = 0; r < ix->n_rings; r++)
        for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++) {
            uint8_t ph = ix->ring_seq[r][k];
            if (!(p->coord_phase_mask >> ph & 1u))
                continue;
            for (uint8_t g = 0; g < ix->n_sg; g++)
                if (ix->sg[g].phase_idx == ph && ix->sg[g].kind != SF_SG_PEDESTRIAN)
                    return g;
            return 0xFF;
        }
    return 0xFF;
}

/* What colour c on group i must last, by the timings now (when it begins). */
static long colour_need(const sf_intersection_t *ix, uint8_t i, int c)
{
    const sf_phase_t *ph = &ix->phases[ix->sg[i].phase_idx];
    if (ix->sg[i].kind == SF_SG_PEDESTRIAN)
        return c == O_RED_FL ? ph->ped_clear_ds : 0;
    return c == O_GRN ? ph->min_green_ds : c == O_YEL ? ph->yellow_ds : 0;
}

/* Red group i owes before a conflicting green once its clearance ends: its red
 * clearance; a pedestrian group the minimum 3 s yellow of its vehicle phase. */
static long red_owed(const sf_intersection_t *ix, uint8_t i)
{
    if (ix->sg[i].kind == SF_SG_PEDESTRIAN)
        return 30;
    return ix->phases[ix->sg[i].phase_idx].red_clear_ds;
}

static const char *where_unit;
static uint64_t where_seed;

#define OBS_ASSERT(cond, fmt, ...)                                                                 \
    cr_assert(cond, "seed %llu unit %s tick %ld: " fmt, (unsigned long long)where_seed,            \
              where_unit, tick, ##__VA_ARGS__)

static void observe(obs_t *o, const sf_unit_t *u, long tick)
{
    const sf_unit_status_t *st = sf_unit_status(u);
    const sf_intersection_t *ix = &o->ref;
    uint8_t n = ix->n_sg;
    int c[SF_MAX_SG];
    OBS_ASSERT(!st->fault_latched, "monitor tripped: fault 0x%02x groups %u/%u", st->fault_code,
               st->fault_sg[0], st->fault_sg[1]);
    for (uint8_t i = 0; i < n; i++) {
        c[i] = colour(st->sg_out[i]);
        OBS_ASSERT(c[i] != O_OTHER, "group %s shows mixed lamps 0x%x", ix->sg[i].id, st->sg_out[i]);
    }
    for (uint8_t i = 0; i < n; i++)
        for (uint8_t j = (uint8_t)(i + 1); j < n; j++)
            OBS_ASSERT(!(c[i] == O_GRN && c[j] == O_GRN && ix->sg_conflict[i][j]),
                       "conflicting greens %s and %s", ix->sg[i].id, ix->sg[j].id);
    for (uint8_t i = 0; i < n; i++) {
        int prev = o->col[i];
        if (prev < 0 || prev == c[i])
            continue;
        bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
        long d = o->dur[i];
        long need = o->need[i];
        if (!ped) {
            if (prev == O_GRN) {
                OBS_ASSERT(c[i] == O_YEL, "%s green ended without yellow", ix->sg[i].id);
                OBS_ASSERT(d < 0 || d >= need, "%s green %ld < min %ld", ix->sg[i].id, d, need);
            }
            if (prev == O_YEL) {
                OBS_ASSERT(c[i] == O_RED, "%s yellow not followed by red", ix->sg[i].id);
                OBS_ASSERT(d >= need, "%s yellow %ld < %ld", ix->sg[i].id, d, need);
            }
        } else {
            if (prev == O_GRN && ix->phases[ix->sg[i].phase_idx].ped_clear_ds)
                OBS_ASSERT(c[i] == O_RED_FL, "%s walk not followed by clearance", ix->sg[i].id);
            if (prev == O_RED_FL) {
                OBS_ASSERT(c[i] == O_RED, "%s clearance not followed by don't walk", ix->sg[i].id);
                OBS_ASSERT(d >= need, "%s ped clear %ld < %ld", ix->sg[i].id, d, need);
            }
        }
        if (c[i] != O_GRN)
            continue;
        for (uint8_t j = 0; j < n; j++) {
            if (j == i || !ix->sg_conflict[i][j])
                continue;
            bool pedj = ix->sg[j].kind == SF_SG_PEDESTRIAN;
            OBS_ASSERT(c[j] == O_RED || c[j] == O_DARK, "%s green while %s not red", ix->sg[i].id,
                       ix->sg[j].id);
            /* j just cleared this tick: it owes its full red; else what it owed then */
            bool just = o->col[j] == O_YEL || o->col[j] == O_RED_FL || (pedj && o->col[j] == O_GRN);
            long rs = o->col[j] == O_RED ? o->red_since[j] : (just ? 0 : -1);
            long owed = o->col[j] == O_RED ? o->need_red[j] : red_owed(ix, j);
            OBS_ASSERT(rs < 0 || rs >= owed, "%s green %ld ticks after %s cleared (need %ld)",
                       ix->sg[i].id, rs, ix->sg[j].id, owed);
        }
    }
    for (uint8_t i = 0; i < n; i++) {
        int prev = o->col[i];
        bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
        if (prev != c[i]) {
            bool cleared = ped ? (prev == O_RED_FL || prev == O_GRN) : prev == O_YEL;
            o->dur[i] = prev < 0 ? -1 : 1;
            o->red_since[i] = c[i] == O_RED && cleared ? 1 : -1;
            o->need[i] = colour_need(ix, i, c[i]);
            if (c[i] == O_RED && cleared)
                o->need_red[i] = red_owed(ix, i);
        } else {
            if (o->dur[i] >= 0)
                o->dur[i]++;
            if (c[i] == O_RED && o->red_since[i] >= 0)
                o->red_since[i]++;
        }
    }

    /* coordination: yields of the first coordinated phase */
    bool coord =
        st->mode == SF_UMODE_COORDINATED && (st->control_mode == SF_CM_CENTRE_COORDINATED ||
                                             st->control_mode == SF_CM_LOCAL_COORDINATED);
    if (coord) {
        o->coord_ticks++;
        sf_plan_t p;
        cr_assert_eq(sf_unit_get_plan(u, st->active_plan, &p), 0);
        if (o->watch_plan != st->active_plan) {
            o->watch_plan = st->active_plan;
            o->watch_sg = watch_group(ix, &p);
            o->last_yield = -1;
        }
        if (!st->coord_in_sync)
            o->sync_run = false;
        uint8_t w = o->watch_sg;
        if (w != 0xFF && c[w] == O_YEL && o->dur[w] == 1) {
            if (o->last_yield >= 0 && o->sync_run) {
                long dt = tick - o->last_yield;
                OBS_ASSERT(dt % st->cycle_ds == 0, "coordinated yields %ld ticks apart, cycle %u",
                           dt, st->cycle_ds);
                o->cycles_checked++;
                if (dt == st->cycle_ds)
                    o->cycles_exact++;
            }
            o->last_yield = tick;
            o->sync_run = st->coord_in_sync;
        }
    } else {
        o->last_yield = -1;
        o->watch_plan = 0;
    }
    for (uint8_t i = 0; i < n; i++)
        o->col[i] = c[i];
}

/* ---- random stimulus ---------------------------------------------------------------- */

static uint16_t phase_no_mask(const sf_intersection_t *ix, rng_t *r)
{
    uint16_t m = 0;
    uint32_t k = 1 + rnd_n(r, 2);
    for (uint32_t i = 0; i < k; i++)
        m |= (uint16_t)(1u << (ix->phases[rnd_n(r, ix->n_phases)].id - 1));
    return m;
}

static void random_timing_write(sf_unit_t *u, obs_t *o, rng_t *r, long tick)
{
    const sf_intersection_t *ix = &o->ref;
    uint8_t pi = (uint8_t)rnd_n(r, ix->n_phases);
    uint8_t no = ix->phases[pi].id;
    sf_timing_field_t f = (sf_timing_field_t)rnd_n(r, SF_T_N);
    int before = sf_unit_get_timing(u, no, f);
    OBS_ASSERT(before >= 0, "timing read failed");
    uint16_t v =
        chance(r, 3)
            ? (uint16_t)rnd_n(r, 700)
            : (uint16_t)(before + (int)rnd_n(r, 41) - 20 < 0 ? 0 : before + (int)rnd_n(r, 41) - 20);
    int rc = sf_unit_set_timing(u, no, f, v);
    bool unsafe = (f == SF_T_MIN_GREEN && v < 50) || (f == SF_T_YELLOW && (v < 30 || v > 60)) ||
                  (f == SF_T_RED_CLEAR && v > 60) ||
                  ((f == SF_T_MAX1 || f == SF_T_MAX2) && v < ix->phases[pi].min_green_ds);
    if (unsafe)
        OBS_ASSERT(rc == -1, "unsafe timing %d=%u on phase %u accepted", f, v, no);
    if (rc == 0) {
        sf_phase_t *ph = &o->ref.phases[pi];
        uint16_t *fld[SF_T_N] = {&ph->min_green_ds, &ph->passage_ds,  &ph->max1_ds,
                                 &ph->max2_ds,      &ph->yellow_ds,   &ph->red_clear_ds,
                                 &ph->walk_ds,      &ph->ped_clear_ds};
        *fld[f] = v;
        OBS_ASSERT(sf_unit_get_timing(u, no, f) == v, "accepted write not stored");
    } else {
        OBS_ASSERT(sf_unit_get_timing(u, no, f) == before, "refused write changed timing");
    }
    /* wild phase numbers are refused */
    errno = 0;
    OBS_ASSERT(sf_unit_set_timing(u, 17, f, v) == -1 && errno == EINVAL, "phase 17 accepted");
}

static bool same_barrier(const sf_intersection_t *ix, uint8_t a, uint8_t b)
{
    for (uint8_t k = 0; k < ix->n_barriers; k++)
        if ((ix->barrier_mask[k] >> a & 1u) && (ix->barrier_mask[k] >> b & 1u))
            return true;
    return false;
}

static void random_plan_write(sf_unit_t *u, obs_t *o, rng_t *r, long tick)
{
    const sf_intersection_t *ix = sf_unit_intersection(u);
    uint8_t id = ix->plans[rnd_n(r, ix->n_plans)].id;
    sf_plan_t p, before, after;
    OBS_ASSERT(sf_unit_get_plan(u, id, &p) == 0, "stored plan %u unreadable", id);
    before = p;
    const sf_intersection_t *rf = &o->ref;
    bool must_refuse = false;
    switch (rnd_n(r, 5)) {
    case 0:
    case 1: { /* move time between neighbours of one ring in one barrier */
        uint8_t ring = (uint8_t)rnd_n(r, rf->n_rings);
        if (rf->ring_seq_len[ring] < 2)
            return;
        uint8_t k = (uint8_t)rnd_n(r, (uint32_t)rf->ring_seq_len[ring] - 1);
        uint8_t a = rf->ring_seq[ring][k], b = rf->ring_seq[ring][k + 1];
        if (!same_barrier(rf, a, b) || !p.split_ds[a] || !p.split_ds[b])
            return;
        int d = (int)rnd_n(r, 201) - 100;
        if ((int)p.split_ds[a] + d <= 0 || (int)p.split_ds[b] - d <= 0)
            return;
        p.split_ds[a] = (uint16_t)(p.split_ds[a] + d);
        p.split_ds[b] = (uint16_t)(p.split_ds[b] - d);
        for (uint8_t q = 0; q < rf->n_phases; q++) {
            const sf_phase_t *ph = &rf->phases[q];
            if (p.split_ds[q] &&
                p.split_ds[q] < ph->min_green_ds + ph->yellow_ds + ph->red_clear_ds)
                must_refuse = true;
        }
        break;
    }
    case 2: /* new offset */
        p.offset_ds = (uint16_t)rnd_n(r, p.cycle_ds);
        break;
    case 3: /* cycle that no longer matches the splits */
        p.cycle_ds = (uint16_t)(p.cycle_ds + 10 + rnd_n(r, 100));
        must_refuse = true;
        break;
    default: { /* a coordinated phase that conflicts with the existing ones */
        if (!p.coord_phase_mask)
            return;
        for (uint8_t q = 0; q < rf->n_phases; q++)
            for (uint8_t c = 0; c < rf->n_phases; c++)
                if ((p.coord_phase_mask >> c & 1u) && q != c && !rf->concurrent[q][c] &&
                    p.split_ds[q]) {
                    p.coord_phase_mask |= (uint16_t)(1u << q);
                    must_refuse = true;
                    goto done;
                }
        return;
    }
    }
done:;
    int rc = sf_unit_write_plan(u, &p);
    if (must_refuse)
        OBS_ASSERT(rc == -1, "invalid plan %u accepted", id);
    OBS_ASSERT(sf_unit_get_plan(u, id, &after) == 0, "plan %u lost", id);
    if (rc == 0)
        OBS_ASSERT(memcmp(&after, &p, sizeof p) == 0, "accepted plan not stored");
    else
        OBS_ASSERT(memcmp(&after, &before, sizeof p) == 0, "refused plan changed plan %u", id);
}

typedef struct {
    long ticks;
    long checked;
    long exact;
    long coord_ticks;
    long prio_served;
    long prio_inserted; /* ticks with a request served by phase insertion */
    long prio_skipped;  /* ticks with a request whose early green skipped a phase */
    long fallbacks;
} run_stats_t;

static void run_unit(const sf_intersection_t *ix0, const char *name, uint64_t seed, long n_ticks,
                     run_stats_t *rs)
{
    rng_t r = {seed * 0x9E3779B97F4A7C15ull + 1};
    sf_unit_config_t cfg;
    sf_unit_config_default(&cfg, ix0);
    cfg.heartbeat_timeout_ds = 50;
    sf_unit_t *u = sf_unit_new(ix0, &cfg);
    cr_assert_not_null(u, "unit %s: %s", name, sf_unit_strerror(errno));
    obs_t o;
    memset(&o, 0, sizeof o);
    o.ref = *ix0;
    obs_reset(&o);
    where_unit = name;
    where_seed = seed;
    uint32_t tod = rnd_n(&r, 864000);
    uint64_t det = 0;
    long silence_until = -1;
    uint16_t prio_id = 1;
    sf_prio_request_t bus = {0};
    long bus_at = -1;
    bool was_fallback = false;
    /* phases of the plans get demand most of the time */
    uint32_t call_rate = 20 + rnd_n(&r, 200);
    for (long tick = 0; tick < n_ticks; tick++) {
        /* host: clock and heartbeat */
        tod = (tod + 1) % 864000u;
        sf_unit_set_clock(u, tod);
        if (tick == silence_until)
            silence_until = -1;
        if (silence_until < 0 && tick % 10 == 0)
            sf_unit_heartbeat(u, (uint16_t)tick);
        if (silence_until < 0 && chance(&r, 40000))
            silence_until = tick + 100 + rnd_n(&r, 2000);
        /* detectors: vehicles arrive and leave */
        for (uint8_t d = 0; d < ix0->n_det; d++) {
            bool on = det >> d & 1u;
            if ((!on && chance(&r, call_rate)) || (on && chance(&r, 15)))
                det ^= 1ull << d;
        }
        sf_unit_set_detectors(u, det);
        /* commands */
        if (chance(&r, 300))
            sf_unit_phase_control(u, SF_CTL_VEH_CALL, phase_no_mask(&o.ref, &r));
        if (chance(&r, 500))
            sf_unit_phase_control(u, SF_CTL_PED_CALL, phase_no_mask(&o.ref, &r));
        if (chance(&r, 4000))
            sf_unit_phase_control(u, SF_CTL_HOLD, chance(&r, 2) ? 0 : phase_no_mask(&o.ref, &r));
        if (chance(&r, 3000))
            sf_unit_phase_control(u, SF_CTL_HOLD, 0);
        if (chance(&r, 4000))
            sf_unit_phase_control(u, SF_CTL_FORCE_OFF,
                                  chance(&r, 2) ? 0 : phase_no_mask(&o.ref, &r));
        if (chance(&r, 6000))
            sf_unit_phase_control(u, SF_CTL_OMIT, chance(&r, 3) ? phase_no_mask(&o.ref, &r) : 0);
        if (chance(&r, 20000)) {
            static const int modes[] = {1, 2, 3, 3, 3, 3, 4, 5, 6, 0, 7};
            int m = modes[rnd_n(&r, sizeof modes / sizeof modes[0])];
            int rc = sf_unit_command_mode(u, (sf_unit_mode_t)m);
            if (m < 1 || m > 6)
                OBS_ASSERT(rc == -1 && errno == EINVAL, "mode %d accepted", m);
        }
        if (chance(&r, 15000)) {
            int rc = sf_unit_select_plan(u, (uint8_t)rnd_n(&r, 18));
            (void)rc;
        }
        if (chance(&r, 8000))
            random_plan_write(u, &o, &r, tick);
        if (chance(&r, 3000))
            random_timing_write(u, &o, &r, tick);
        /* buses: check in with an ETA, check out around it (or never) */
        if (bus_at < 0 && chance(&r, 1500)) {
            bus = (sf_prio_request_t){.id = prio_id++,
                                      .level = (uint8_t)(1 + rnd_n(&r, 7)),
                                      .phase_no = o.ref.phases[rnd_n(&r, o.ref.n_phases)].id,
                                      .eta_ds = (uint16_t)rnd_n(&r, 600),
                                      .action = SF_PRIO_CHECK_IN};
            if (prio_id == 0)
                prio_id = 1;
            /* around its ETA, or (1 in 3) queued at the line up to 60 s longer: what
             * a missed green, early green and phase skip serve */
            if (sf_unit_priority(u, &bus) == 0 && !chance(&r, 10))
                bus_at = tick + bus.eta_ds + (long)rnd_n(&r, 100) +
                         (chance(&r, 3) ? (long)rnd_n(&r, 600) : 0);
        }
        if (tick == bus_at) {
            bus_at = -1;
            const sf_unit_status_t *st = sf_unit_status(u);
            for (int k = 0; k < SF_UNIT_MAX_PRIO; k++) {
                const sf_prio_status_t *q = &st->prio[k];
                if (q->id != bus.id ||
                    (q->state != SF_PRIO_ST_QUEUED && q->state != SF_PRIO_ST_ACTIVE))
                    continue;
                bus.action = SF_PRIO_CHECK_OUT;
                OBS_ASSERT(sf_unit_priority(u, &bus) == 0, "check-out refused");
                if (q->state == SF_PRIO_ST_SERVED)
                    rs->prio_served++;
            }
        }
        if (chance(&r, 50000))
            OBS_ASSERT(sf_unit_fault_reset(u) == 0, "fault reset failed");

        sf_unit_tick(u);
        observe(&o, u, tick);
        for (int k = 0; k < SF_UNIT_MAX_PRIO; k++) {
            const sf_prio_status_t *q = &sf_unit_status(u)->prio[k];
            rs->prio_inserted += q->state == SF_PRIO_ST_ACTIVE && q->strategy == 3;
            rs->prio_skipped += q->state == SF_PRIO_ST_ACTIVE && q->strategy == 4;
        }
        bool fb = sf_unit_status(u)->fallback;
        if (fb && !was_fallback)
            rs->fallbacks++;
        was_fallback = fb;
    }
    /* the unit's timings are exactly the ones we saw accepted */
    const sf_intersection_t *ix = sf_unit_intersection(u);
    for (uint8_t p = 0; p < ix->n_phases; p++)
        cr_expect_eq(memcmp(&ix->phases[p], &o.ref.phases[p], sizeof ix->phases[p]), 0,
                     "unit %s phase %u timings differ from the accepted writes", name, p);
    rs->ticks += n_ticks;
    rs->checked += o.cycles_checked;
    rs->exact += o.cycles_exact;
    rs->coord_ticks += o.coord_ticks;
    sf_unit_destroy(&u);
}

Test(unit_property, random_million_ticks, .timeout = 600)
{
    bool sanitized = getenv("SIGFLOW_SANITIZED") != NULL;
    long budget = sanitized ? 200000 : 1100000;
    static sf_intersection_t pool[32];
    static char names[32][48];
    int n = 0;
    const char *files[] = {SIGFLOW_ASSETS "/scenarios/single.json",
                           SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"};
    for (size_t f = 0; f < 2; f++) {
        sf_errors_t errs = {0};
        sf_scenario_t *sc = sf_scenario_load(files[f], NULL, 0, &errs);
        cr_assert_not_null(sc, "%s: %s", files[f], errs.n ? errs.msg[0] : "?");
        for (uint32_t i = 0; i < sc->n_intersections && n < 31; i++) {
            pool[n] = sc->intersections[i];
            snprintf(names[n], sizeof names[n], "%s:%s", f ? "corridor" : "single",
                     sc->intersections[i].id);
            n++;
        }
        sf_scenario_destroy(&sc);
    }
    fx_nema(&pool[n]);
    snprintf(names[n], sizeof names[n], "code:N8");
    n++;
    uint64_t seeds[] = {20261130, 7, 424242};
    size_t n_seeds = 3;
    const char *env = getenv("SIGFLOW_SEED");
    if (env) {
        seeds[0] = strtoull(env, NULL, 10);
        n_seeds = 1;
    }
    run_stats_t rs = {0};
    long per = budget / (long)(n * (int)n_seeds) + 1;
    for (size_t s = 0; s < n_seeds; s++) {
        cr_log_info("property: seed %llu, %d intersections, %ld ticks each (SIGFLOW_SEED=%llu "
                    "reruns it)",
                    (unsigned long long)seeds[s], n, per, (unsigned long long)seeds[s]);
        for (int i = 0; i < n; i++)
            run_unit(&pool[i], names[i], seeds[s] + (uint64_t)i, per, &rs);
    }
    cr_log_info("property: %ld ticks, %ld coordinated ticks, %ld in-sync cycles checked (%ld "
                "exactly one cycle), %ld priority requests served, %ld ticks of phase insertion, "
                "%ld ticks of phase skip, %ld fallbacks",
                rs.ticks, rs.coord_ticks, rs.checked, rs.exact, rs.prio_served, rs.prio_inserted,
                rs.prio_skipped, rs.fallbacks);
    cr_expect_geq(rs.ticks, sanitized ? 200000 : 1000000);
    /* the coordination property must really have been exercised */
    cr_expect_gt(rs.checked, rs.coord_ticks / 20000, "only %ld cycles checked", rs.checked);
    cr_expect_gt(rs.exact, rs.checked / 2);
    cr_expect_gt(rs.fallbacks, 0);
    cr_expect_gt(rs.prio_served, 0);
    /* phase insertion (a ring going back in its group) ran under the safety checks too */
    cr_expect_gt(rs.prio_inserted, 0);
    /* and phase skip (a called phase passed over for a late bus) */
    cr_expect_gt(rs.prio_skipped, 0);
}
