/* unit/monitor.c — the conflict monitor; see monitor.h for the rules it enforces. */
#include "monitor.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* What a group shows, reduced to the states the rules talk about. */
enum {
    C_DARK = 0,
    C_RED,
    C_RED_FLASH,
    C_YELLOW,
    C_YELLOW_FLASH,
    C_GREEN,
    C_GREEN_FLASH,
    C_BAD,  /* green together with red or yellow */
    C_OTHER /* red + yellow: a legal GB/T state sigflow never drives; no timing rule */
};

#define NEVER UINT32_MAX /* "no steady yellow / clearance seen since the history began" */

struct sf_monitor_s {
    const sf_intersection_t *ix;   /* live configuration (not owned) */
    uint8_t colour[SF_MAX_SG];     /* C_* shown at the last check */
    uint32_t dur[SF_MAX_SG];       /* checks the current colour has been shown (NEVER = unknown) */
    uint32_t red_since[SF_MAX_SG]; /* checks of red since a steady yellow / ped clear ended */
    uint16_t need[SF_MAX_SG];      /* minimum of the colour shown, from the timings at its start */
    uint16_t need_rc[SF_MAX_SG];   /* red clearance owed since the last clearance ended */
    bool started;                  /* at least one check done */
    uint8_t fault;                 /* latched SF_FAULT_*, 0 none */
    uint8_t fault_sg[2];           /* groups involved, 0xFF none */
};

static uint8_t classify(uint8_t out)
{
    bool r = out & SF_OUT_RED, y = out & SF_OUT_YELLOW, g = out & SF_OUT_GREEN;
    bool f = out & SF_OUT_FLASH;
    if (g && (r || y))
        return C_BAD;
    if (r && y)
        return C_OTHER;
    if (g)
        return f ? C_GREEN_FLASH : C_GREEN;
    if (y)
        return f ? C_YELLOW_FLASH : C_YELLOW;
    if (r)
        return f ? C_RED_FLASH : C_RED;
    return C_DARK;
}

static bool is_green(uint8_t c)
{
    return c == C_GREEN || c == C_GREEN_FLASH || c == C_BAD;
}

/* Whether leaving colour prev for red ends a clearance: a steady yellow for vehicle and
 * arrow groups, a ped clearance (or a walk without one) for pedestrian groups. */
static bool ends_clearance(sf_sg_kind_t kind, uint8_t prev)
{
    if (kind == SF_SG_PEDESTRIAN)
        return prev == C_RED_FLASH || prev == C_GREEN;
    return prev == C_YELLOW;
}

/* Minimum duration of colour c on group i, from the timings now (its start). */
static uint16_t colour_min(const sf_intersection_t *ix, uint8_t i, uint8_t c)
{
    const sf_phase_t *ph = &ix->phases[ix->sg[i].phase_idx];
    bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
    if (!ped && c == C_GREEN)
        return ph->min_green_ds;
    if (!ped && c == C_YELLOW)
        return ph->yellow_ds;
    if (ped && c == C_RED_FLASH)
        return ph->ped_clear_ds;
    return 0;
}

/* Red owed by group i before a conflicting green once it leaves colour prev (a
 * clearance): its phase's red clearance now, or for pedestrians the 3 s minimum yellow
 * that follows every pedestrian clearance (REFERENCE.md). */
static uint16_t red_clear_owed(const sf_intersection_t *ix, uint8_t i, uint8_t prev)
{
    (void)prev;
    if (ix->sg[i].kind == SF_SG_PEDESTRIAN)
        return 30;
    return ix->phases[ix->sg[i].phase_idx].red_clear_ds;
}

sf_monitor_t *sf_monitor_new(const sf_intersection_t *ix)
{
    if (!ix || ix->n_sg > SF_MAX_SG) {
        errno = EINVAL;
        return NULL;
    }
    sf_monitor_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->ix = ix;
    sf_monitor_reset(m);
    return m;
}

void sf_monitor_destroy(sf_monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void sf_monitor_reset(sf_monitor_t *m)
{
    if (!m)
        return;
    m->started = false;
    m->fault = SF_FAULT_NONE;
    m->fault_sg[0] = m->fault_sg[1] = 0xFF;
    for (int i = 0; i < SF_MAX_SG; i++) {
        m->colour[i] = C_DARK;
        m->dur[i] = NEVER;
        m->red_since[i] = NEVER;
        m->need[i] = 0;
        m->need_rc[i] = 0;
    }
}

uint8_t sf_monitor_fault(const sf_monitor_t *m, uint8_t sg[2])
{
    if (sg) {
        sg[0] = m ? m->fault_sg[0] : 0xFF;
        sg[1] = m ? m->fault_sg[1] : 0xFF;
    }
    return m ? m->fault : SF_FAULT_NONE;
}

static void trip(sf_monitor_t *m, uint8_t code, uint8_t a, uint8_t b)
{
    if (m->fault)
        return;
    m->fault = code;
    m->fault_sg[0] = a;
    m->fault_sg[1] = b;
}

static uint32_t inc(uint32_t v)
{
    return v == NEVER ? NEVER : v + 1;
}

uint8_t sf_monitor_check(sf_monitor_t *m, const uint8_t *out)
{
    if (!m || !out)
        return SF_FAULT_NONE;
    if (m->fault)
        return m->fault;
    const sf_intersection_t *ix = m->ix;
    uint8_t n = ix->n_sg;
    uint8_t c[SF_MAX_SG];
    bool all_vehicle_flash = true;
    for (uint8_t i = 0; i < n; i++) {
        c[i] = classify(out[i]);
        if (ix->sg[i].kind != SF_SG_PEDESTRIAN && c[i] != C_YELLOW_FLASH)
            all_vehicle_flash = false;
    }

    /* Rules on this tick's picture alone. */
    for (uint8_t i = 0; i < n; i++) {
        if (c[i] == C_BAD)
            trip(m, SF_FAULT_GREEN_RED, i, 0xFF);
        if (c[i] == C_DARK && (ix->sg[i].kind != SF_SG_PEDESTRIAN || !all_vehicle_flash))
            trip(m, SF_FAULT_LAMP_DARK, i, 0xFF);
    }
    for (uint8_t i = 0; i < n; i++) {
        if (!is_green(c[i]))
            continue;
        for (uint8_t j = (uint8_t)(i + 1); j < n; j++)
            if (is_green(c[j]) && ix->sg_conflict[i][j])
                trip(m, SF_FAULT_GREEN_CONFLICT, i, j);
    }

    /* Rules on transitions: what ended, and what may start. */
    if (m->started) {
        for (uint8_t i = 0; i < n; i++) {
            uint8_t prev = m->colour[i];
            if (prev == c[i])
                continue;
            uint32_t d = m->dur[i];
            uint16_t need = m->need[i]; /* the timing in force when prev began */
            bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
            if (!ped) {
                if (prev == C_GREEN) {
                    if (c[i] != C_YELLOW)
                        trip(m, SF_FAULT_YELLOW_SHORT, i, 0xFF);
                    else if (d != NEVER && d < need)
                        trip(m, SF_FAULT_TIMING_SHORT, i, 0xFF);
                }
                if (prev == C_YELLOW && (d < need || c[i] != C_RED))
                    trip(m, SF_FAULT_YELLOW_SHORT, i, 0xFF);
            } else {
                if (prev == C_GREEN && c[i] != C_RED_FLASH &&
                    ix->phases[ix->sg[i].phase_idx].ped_clear_ds > 0)
                    trip(m, SF_FAULT_TIMING_SHORT, i, 0xFF);
                if (prev == C_RED_FLASH && c[i] == C_RED && d != NEVER && d < need)
                    trip(m, SF_FAULT_TIMING_SHORT, i, 0xFF);
                if (prev == C_RED_FLASH && is_green(c[i]))
                    trip(m, SF_FAULT_TIMING_SHORT, i, 0xFF);
            }
            if (!is_green(c[i]) || is_green(prev))
                continue;
            /* Group i turns green: every conflicting group must have cleared. */
            for (uint8_t j = 0; j < n; j++) {
                if (j == i || !ix->sg_conflict[i][j])
                    continue;
                uint8_t cj = c[j];
                if (cj == C_YELLOW || cj == C_RED_FLASH || cj == C_YELLOW_FLASH) {
                    trip(m, SF_FAULT_TIMING_SHORT, i, j);
                } else if (cj == C_RED) {
                    /* red shown before this check since j's clearance ended (0 when it
                     * turned red just now) */
                    uint32_t rs = m->colour[j] == C_RED
                                      ? m->red_since[j]
                                      : (ends_clearance(ix->sg[j].kind, m->colour[j]) ? 0 : NEVER);
                    /* vehicles: the red clearance in force when j's yellow ended;
                     * pedestrians: steady don't walk for at least the shortest legal
                     * yellow, which every clearance is followed by */
                    uint32_t owed =
                        m->colour[j] == C_RED ? m->need_rc[j] : red_clear_owed(ix, j, m->colour[j]);
                    if (rs != NEVER && rs < owed)
                        trip(m, SF_FAULT_TIMING_SHORT, i, j);
                }
            }
        }
    }

    /* Update the history. red_since[i] counts the checks a group has shown red since a
     * steady yellow (vehicles) or a walk / ped clearance (pedestrians) ended, this one
     * included; NEVER when its red did not follow a clearance (start-up, flash). */
    for (uint8_t i = 0; i < n; i++) {
        uint8_t prev = m->colour[i];
        if (!m->started) {
            m->dur[i] = NEVER;
            m->red_since[i] = NEVER;
        } else if (prev != c[i]) {
            bool cleared = ends_clearance(ix->sg[i].kind, prev);
            m->dur[i] = 1;
            m->red_since[i] = (c[i] == C_RED && cleared) ? 1 : NEVER;
            m->need[i] = colour_min(ix, i, c[i]);
            if (c[i] == C_RED && cleared)
                m->need_rc[i] = red_clear_owed(ix, i, prev);
        } else {
            m->dur[i] = inc(m->dur[i]);
            if (c[i] == C_RED)
                m->red_since[i] = inc(m->red_since[i]);
        }
        m->colour[i] = c[i];
    }
    m->started = true;
    return m->fault;
}
