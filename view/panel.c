/* view/panel.c — intersection panel: ring-and-barrier diagram, plan, mode, faults, TSP. */
#include "panel.h"

#include <stdio.h>
#include <string.h>

#include "palette.h"

static const SDL_Color col_bg = {24, 27, 32, 235};
static const SDL_Color col_edge = {90, 100, 115, 255};
static const SDL_Color col_text = {235, 235, 235, 255};
static const SDL_Color col_dim = {160, 165, 175, 255};
static const SDL_Color col_idle = {70, 40, 40, 255};
static const SDL_Color col_barrier = {240, 240, 240, 255};
static const SDL_Color col_warn = {255, 120, 90, 255};

void sf_ix_status_init(sf_ix_status_t *s)
{
    if (!s)
        return;
    memset(s, 0, sizeof *s);
    s->comms = -1;
}

void sf_ix_status_note_request(sf_ix_status_t *s, uint32_t id, sf_req_state_t state, double t_s,
                               const char *text)
{
    if (!s)
        return;
    int at = -1;
    for (int i = 0; i < s->n_req; i++)
        if (s->req[i].id == id)
            at = i;
    sf_req_view_t r = {id, state, t_s, ""};
    snprintf(r.text, sizeof r.text, "%s", text ? text : "");
    if (at < 0) { /* new: shift the others down, dropping the oldest when full */
        int n = s->n_req < SF_PANEL_MAX_REQ ? s->n_req : SF_PANEL_MAX_REQ - 1;
        memmove(&s->req[1], &s->req[0], (size_t)n * sizeof s->req[0]);
        s->req[0] = r;
        s->n_req = (uint8_t)(n + 1);
    } else {
        s->req[at] = r;
    }
}

const char *sf_control_mode_name(uint32_t code, char *buf, size_t len)
{
    static const char *const centre[] = {"fixed",    "actuated",     "coordinated",
                                         "adaptive", "max-pressure", "manual"};
    if (code >= 0x10 && code <= 0x15)
        snprintf(buf, len, "centre %s", centre[code - 0x10]);
    else if (code >= 0x20 && code <= 0x25)
        snprintf(buf, len, "local %s", centre[code - 0x20]);
    else if (code == 0x31)
        snprintf(buf, len, "flash");
    else if (code == 0x32)
        snprintf(buf, len, "all-red");
    else if (code == 0x33)
        snprintf(buf, len, "all-off");
    else
        snprintf(buf, len, "mode 0x%02X", (unsigned)code);
    return buf;
}

const char *sf_fault_name(uint32_t code, char *buf, size_t len)
{
    switch (code) {
    case 0x00:
        snprintf(buf, len, "none");
        break;
    case 0x10:
        snprintf(buf, len, "green conflict (0x10)");
        break;
    case 0x11:
        snprintf(buf, len, "green/red conflict (0x11)");
        break;
    case 0x20:
    case 0x21:
    case 0x22:
        snprintf(buf, len, "lamp/timing fault (0x%02X)", (unsigned)code);
        break;
    case 0x30:
        snprintf(buf, len, "comms lost, local fallback (0x30)");
        break;
    default:
        snprintf(buf, len, "fault 0x%02X", (unsigned)code);
    }
    return buf;
}

/* Active plan of ix: by number when known, else the first. NULL without plans. */
static const sf_plan_t *active_plan(const sf_intersection_t *ix, uint8_t number)
{
    for (uint8_t p = 0; p < ix->n_plans; p++)
        if (ix->plans[p].id == number)
            return &ix->plans[p];
    return ix->n_plans ? &ix->plans[0] : NULL;
}

static double phase_width_ds(const sf_intersection_t *ix, const sf_plan_t *pl, uint8_t p)
{
    if (pl && pl->split_ds[p] > 0)
        return pl->split_ds[p];
    const sf_phase_t *ph = &ix->phases[p];
    return ph->max1_ds + ph->yellow_ds + ph->red_clear_ds;
}

/* Time left in phase p's interval: the largest remaining time of its groups. */
static uint16_t phase_remaining(const sf_intersection_t *ix, const sf_ix_status_t *st, uint8_t p)
{
    uint16_t best = 0;
    for (uint8_t g = 0; g < ix->n_sg; g++)
        if (ix->sg[g].phase_idx == p && ix->sg[g].kind != SF_SG_PEDESTRIAN &&
            st->remaining_ds[g] > best)
            best = st->remaining_ds[g];
    return best;
}

static int barrier_of(const sf_intersection_t *ix, uint8_t p)
{
    for (uint8_t b = 0; b < ix->n_barriers; b++)
        if (ix->barrier_mask[b] >> p & 1u)
            return b;
    return -1;
}

static void draw_rings(sf_canvas_t *c, const sf_intersection_t *ix, const sf_plan_t *pl,
                       const sf_ix_status_t *st, float x, float y, float w)
{
    const float row_h = 34;
    for (uint8_t r = 0; r < ix->n_rings && r < SF_MAX_RINGS; r++) {
        double total = 0;
        for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++)
            total += phase_width_ds(ix, pl, ix->ring_seq[r][k]);
        if (total <= 0)
            continue;
        float ry = y + r * (row_h + 6), px = x;
        int prev_barrier = -2;
        for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++) {
            uint8_t p = ix->ring_seq[r][k];
            if (p >= ix->n_phases)
                continue;
            float pw = (float)(phase_width_ds(ix, pl, p) / total * w);
            SDL_Color fill = col_idle;
            bool active = false;
            if (st->known && (st->greens >> p & 1u)) {
                fill = SF_COL_LAMP_GREEN;
                active = true;
            } else if (st->known && (st->yellows >> p & 1u)) {
                fill = SF_COL_LAMP_YELLOW;
                active = true;
            }
            sf_canvas_rect(c, px + 1, ry, pw - 2, row_h, fill);
            sf_canvas_rect_outline(c, px + 1, ry, pw - 2, row_h, 1, col_edge);
            int b = barrier_of(ix, p);
            if (k > 0 && b != prev_barrier) /* barrier crossing: heavy line */
                sf_canvas_rect(c, px - 2, ry - 3, 4, row_h + 6, col_barrier);
            prev_barrier = b;
            char lab[48];
            SDL_Color tc = active ? (SDL_Color){10, 10, 10, 255} : col_text;
            if (active)
                snprintf(lab, sizeof lab, "%u  %.1fs", (unsigned)ix->phases[p].id,
                         phase_remaining(ix, st, p) / 10.0);
            else
                snprintf(lab, sizeof lab, "%u", (unsigned)ix->phases[p].id);
            sf_canvas_text(c, px + pw / 2, ry + 3, SF_TEXT_NORMAL, tc, SF_ALIGN_CENTER, lab);
            snprintf(lab, sizeof lab, "%.0f s", phase_width_ds(ix, pl, p) / 10.0);
            sf_canvas_text(c, px + pw / 2, ry + 19, SF_TEXT_SMALL, active ? tc : col_dim,
                           SF_ALIGN_CENTER, lab);
            px += pw;
        }
        char rl[16];
        snprintf(rl, sizeof rl, "R%u", (unsigned)(r + 1));
        sf_canvas_text(c, x - 6, ry + 9, SF_TEXT_SMALL, col_dim, SF_ALIGN_RIGHT, rl);
    }
}

void sf_panel_draw(sf_canvas_t *c, const sf_scenario_t *sc, uint32_t ixi, const sf_ix_status_t *st,
                   float x, float y)
{
    if (!c || !sc || !st || ixi >= sc->n_intersections)
        return;
    const sf_intersection_t *ix = &sc->intersections[ixi];
    const float w = SF_PANEL_W, h = SF_PANEL_H;
    sf_canvas_rect(c, x, y, w, h, col_bg);
    sf_canvas_rect_outline(c, x, y, w, h, 1, col_edge);
    char buf[200], tmp[64];
    bool cjk_ok = sf_canvas_cjk_font(c) || !sf_text_needs_cjk(ix->name);
    snprintf(buf, sizeof buf, "%s  %s", ix->id, cjk_ok ? ix->name : "");
    sf_canvas_text(c, x + 10, y + 8, SF_TEXT_LARGE, col_text, SF_ALIGN_LEFT, buf);

    const sf_plan_t *pl = active_plan(ix, st->plan);
    draw_rings(c, ix, pl, st, x + 34, y + 40, w - 48);
    float ty = y + 40 + (float)(ix->n_rings ? ix->n_rings : 1) * 40 + 6;
    if (!st->known) {
        sf_canvas_text(c, x + 10, ty, SF_TEXT_NORMAL, col_dim, SF_ALIGN_LEFT,
                       "no lamp states received yet");
        ty += 18;
    } else {
        if (st->plan && pl && pl->id == st->plan)
            snprintf(buf, sizeof buf, "plan %u \"%s\"  cycle %.0f s  offset %.0f s  timer %.1f s",
                     (unsigned)st->plan, pl->name, pl->cycle_ds / 10.0, pl->offset_ds / 10.0,
                     st->cycle_timer_ds / 10.0);
        else
            snprintf(buf, sizeof buf, "plan %s  timer %.1f s", st->plan ? "?" : "none",
                     st->cycle_timer_ds / 10.0);
        sf_canvas_text(c, x + 10, ty, SF_TEXT_NORMAL, col_text, SF_ALIGN_LEFT, buf);
        ty += 18;
        snprintf(buf, sizeof buf, "mode: %s",
                 sf_control_mode_name(st->control_mode, tmp, sizeof tmp));
        sf_canvas_text(c, x + 10, ty, SF_TEXT_NORMAL, col_text, SF_ALIGN_LEFT, buf);
        ty += 18;
    }
    snprintf(buf, sizeof buf, "comms: %s",
             st->comms < 0 ? "unknown"
             : st->comms   ? "online"
                           : "OFFLINE");
    sf_canvas_text(c, x + 10, ty, SF_TEXT_NORMAL, st->comms == 0 ? col_warn : col_text,
                   SF_ALIGN_LEFT, buf);
    snprintf(buf, sizeof buf, "fault: %s", sf_fault_name(st->fault_code, tmp, sizeof tmp));
    sf_canvas_text(c, x + 200, ty, SF_TEXT_NORMAL, st->fault_code ? col_warn : col_text,
                   SF_ALIGN_LEFT, buf);
    ty += 22;
    sf_canvas_text(c, x + 10, ty, SF_TEXT_NORMAL, col_dim, SF_ALIGN_LEFT,
                   st->n_req ? "priority requests (latest first):" : "priority requests: none");
    ty += 18;
    static const char *const names[] = {"pending", "granted", "refused", "done"};
    static const SDL_Color cols[] = {
        {250, 200, 0, 255}, {20, 210, 70, 255}, {230, 80, 80, 255}, {160, 165, 175, 255}};
    for (int i = 0; i < st->n_req && ty < y + h - 16; i++) {
        const sf_req_view_t *r = &st->req[i];
        unsigned s = r->state <= SF_REQ_SERVED ? (unsigned)r->state : 0;
        snprintf(buf, sizeof buf, "#%u %-8s t=%.0f s  %s", (unsigned)r->id, names[s], r->t_s,
                 r->text);
        sf_canvas_text(c, x + 14, ty, SF_TEXT_SMALL, cols[s], SF_ALIGN_LEFT, buf);
        ty += 16;
    }
    sf_canvas_flush(c);
}
