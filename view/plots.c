/* view/plots.c — time-space, coordination and queue plots from a run record (plots.h). */
#include "plots.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palette.h"

static const SDL_Color col_white = {255, 255, 255, 255};
static const SDL_Color col_axis = {40, 40, 40, 255};
static const SDL_Color col_grid = {225, 225, 225, 255};
static const SDL_Color col_ixline = {170, 170, 170, 255};
static const SDL_Color col_dot = {20, 20, 20, 255};
static const SDL_Color col_none = {200, 200, 200, 255};

void sf_plot_map(const sf_plot_frame_t *f, double t, double v, float *sx, float *sy)
{
    double dt = f->t1 - f->t0, dv = f->v1 - f->v0;
    *sx = (float)(f->x + (dt > 0 ? (t - f->t0) / dt : 0) * f->w);
    *sy = (float)(f->y + f->h - (dv > 0 ? (v - f->v0) / dv : 0) * f->h);
}

static double nice_step(double range, int ticks)
{
    if (!(range > 0))
        return 1;
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Frame, grid, ticks, labels and title. */
static void axes(sf_canvas_t *c, const sf_plot_frame_t *f, const char *title, const char *xl,
                 const char *yl)
{
    double sx = nice_step(f->t1 - f->t0, 10), sy = nice_step(f->v1 - f->v0, 8);
    char buf[32];
    for (double t = ceil(f->t0 / sx) * sx; t <= f->t1 + 1e-9; t += sx) {
        float px, py;
        sf_plot_map(f, t, f->v0, &px, &py);
        sf_canvas_rect(c, px, f->y, 1, f->h, col_grid);
        sf_canvas_rect(c, px, f->y + f->h, 1, 5, col_axis);
        snprintf(buf, sizeof buf, "%g", fabs(t) < sx * 1e-6 ? 0.0 : t); /* no "-0" */
        sf_canvas_text(c, px, f->y + f->h + 6, SF_TEXT_SMALL, col_axis, SF_ALIGN_CENTER, buf);
    }
    for (double v = ceil(f->v0 / sy) * sy; v <= f->v1 + 1e-9; v += sy) {
        float px, py;
        sf_plot_map(f, f->t0, v, &px, &py);
        sf_canvas_rect(c, f->x, py, f->w, 1, col_grid);
        sf_canvas_rect(c, f->x - 5, py, 5, 1, col_axis);
        snprintf(buf, sizeof buf, "%g", fabs(v) < sy * 1e-6 ? 0.0 : v);
        sf_canvas_text(c, f->x - 7, py - 7, SF_TEXT_SMALL, col_axis, SF_ALIGN_RIGHT, buf);
    }
    sf_canvas_rect_outline(c, f->x - 1, f->y - 1, f->w + 2, f->h + 2, 1, col_axis);
    sf_canvas_text(c, f->x + f->w / 2, f->y + f->h + 22, SF_TEXT_NORMAL, col_axis, SF_ALIGN_CENTER,
                   xl);
    sf_canvas_text(c, f->x, f->y - 20, SF_TEXT_SMALL, col_axis, SF_ALIGN_LEFT, yl);
    sf_canvas_text(c, f->x + f->w / 2, f->y - 38, SF_TEXT_LARGE, col_axis, SF_ALIGN_CENTER, title);
}

static const char *ix_label(sf_canvas_t *c, const sf_intersection_t *ix)
{
    bool ok = ix->name[0] && (sf_canvas_cjk_font(c) || !sf_text_needs_cjk(ix->name));
    return ok ? ix->name : ix->id;
}

/* ---- trajectories sorted by vehicle then time ---------------------------------- */

typedef struct {
    uint32_t veh; /* vehicle id */
    float t;      /* sample time */
    uint32_t idx; /* point index in the record */
} ptkey_t;

static int cmp_key(const void *a, const void *b)
{
    const ptkey_t *x = a, *y = b;
    if (x->veh != y->veh)
        return x->veh < y->veh ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static ptkey_t *sorted_points(const sf_runrec_t *rec, size_t *n)
{
    *n = sf_runrec_n_points(rec);
    ptkey_t *k = malloc((*n ? *n : 1) * sizeof *k);
    if (!k)
        return NULL;
    for (size_t i = 0; i < *n; i++) {
        sf_runrec_point(rec, i, &k[i].t, &k[i].veh, NULL, NULL, NULL, NULL);
        k[i].idx = (uint32_t)i;
    }
    qsort(k, *n, sizeof *k, cmp_key);
    return k;
}

/* ---- lamp timeline of one group ------------------------------------------------ */

typedef struct {
    float *t;      /* change times, ascending */
    uint8_t *code; /* code from t[i] on */
    size_t n;
} timeline_t;

static int timeline_build(const sf_runrec_t *rec, uint32_t ix, uint8_t sg, timeline_t *tl)
{
    size_t nlc = sf_runrec_n_lamp_changes(rec), n = 0;
    tl->t = malloc((nlc ? nlc : 1) * sizeof *tl->t);
    tl->code = malloc(nlc ? nlc : 1);
    if (!tl->t || !tl->code) {
        free(tl->t);
        free(tl->code);
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < nlc; i++) {
        const sf_lamp_change_t *c = sf_runrec_lamp_change(rec, i);
        if (c->ix == ix && c->sg == sg) {
            tl->t[n] = c->t_s;
            tl->code[n++] = c->code;
        }
    }
    tl->n = n;
    return 0;
}

static void timeline_free(timeline_t *tl)
{
    free(tl->t);
    free(tl->code);
    tl->t = NULL;
    tl->code = NULL;
}

static uint8_t timeline_at(const timeline_t *tl, double t)
{
    /* last change at or before t */
    size_t lo = 0, hi = tl->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tl->t[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? SF_LAMP_NONE : tl->code[lo - 1];
}

static SDL_Color lamp_fill(uint8_t code)
{
    return code == SF_LAMP_NONE ? col_none : sf_lamp_color(code);
}

/* ---- time-space diagram -------------------------------------------------------- */

int sf_plot_time_space(sf_canvas_t *c, const sf_runrec_t *rec, double t0, double t1,
                       sf_plot_frame_t *frame)
{
    if (!c || !rec) {
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = sf_runrec_scenario(rec);
    double d0 = INFINITY, d1 = -INFINITY;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        if (sf_runrec_link_dir(rec, li) == 0)
            continue;
        double a = sf_runrec_distance(rec, li, 0),
               b = sf_runrec_distance(rec, li, sc->links[li].length_m);
        d0 = fmin(d0, fmin(a, b));
        d1 = fmax(d1, fmax(a, b));
    }
    if (!(d1 > d0)) {
        errno = ENOENT;
        return -1;
    }
    if (!(t1 > t0))
        sf_runrec_span(rec, &t0, &t1);
    if (!(t1 > t0))
        t1 = t0 + 1;
    int w, h;
    sf_canvas_size(c, &w, &h);
    /* The intersection names are drawn right-aligned LABEL_GAP px left of the frame: the
     * left margin grows to fit the widest one as the font renders it (a CJK name is wider
     * than its id), so no name is clipped at the image's left edge; at most a third of
     * the width is given to them. */
    enum { LABEL_GAP = 40, EDGE_PAD = 8 };
    float left = 120;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        int lw = 0, lh = 0;
        if (sf_runrec_ix_on_arterial(rec, i) &&
            sf_canvas_text_size(c, SF_TEXT_SMALL, ix_label(c, &sc->intersections[i]), &lw, &lh) ==
                0 &&
            (float)(lw + LABEL_GAP + EDGE_PAD) > left)
            left = (float)(lw + LABEL_GAP + EDGE_PAD);
    }
    if (left > (float)w / 3)
        left = (float)w / 3;
    sf_plot_frame_t f = {left, 60, (float)w - left - 30, (float)h - 130, t0, t1, d0, d1};
    sf_canvas_clear(c, col_white);
    char title[160];
    snprintf(title, sizeof title, "Time-space diagram: %s", sc->name);
    axes(c, &f, title, "sim time (s)", "distance along the arterial (m)");

    /* intersections: a line and the two through lamps as bars over time */
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        if (!sf_runrec_ix_on_arterial(rec, i))
            continue;
        float px, py;
        sf_plot_map(&f, t0, sf_runrec_ix_distance(rec, i), &px, &py);
        sf_canvas_rect(c, f.x, py, f.w, 1, col_ixline);
        sf_canvas_text(c, f.x - LABEL_GAP, py - 7, SF_TEXT_SMALL, col_axis, SF_ALIGN_RIGHT,
                       ix_label(c, &sc->intersections[i]));
        for (int dir = 1; dir >= -1; dir -= 2) {
            uint32_t link;
            uint8_t sg;
            if (sf_runrec_approach(rec, i, dir, &link, &sg) != 0)
                continue;
            timeline_t tl;
            if (timeline_build(rec, i, sg, &tl) != 0)
                return -1;
            float yc = py + (dir > 0 ? 1.0f : -1.0f) * (SF_TSD_BAR_PX / 2.0f + 1);
            double ts = t0;
            uint8_t code = timeline_at(&tl, t0);
            for (size_t k = 0; k <= tl.n; k++) {
                double te = k < tl.n ? tl.t[k] : t1;
                if (te <= t0)
                    continue;
                te = fmin(te, t1);
                if (te > ts) {
                    float xa, xb, dummy;
                    sf_plot_map(&f, ts, 0, &xa, &dummy);
                    sf_plot_map(&f, te, 0, &xb, &dummy);
                    sf_canvas_rect(c, xa, yc - SF_TSD_BAR_PX / 2.0f, xb - xa, SF_TSD_BAR_PX,
                                   lamp_fill(code));
                }
                if (k < tl.n) {
                    code = tl.code[k];
                    ts = fmax(tl.t[k], t0);
                }
                if (te >= t1)
                    break;
            }
            timeline_free(&tl);
        }
    }

    /* trajectories: consecutive samples of one vehicle in one direction */
    size_t n;
    ptkey_t *k = sorted_points(rec, &n);
    if (!k) {
        errno = ENOMEM;
        return -1;
    }
    double gap = 2.5 * sf_runrec_every_s(rec);
    for (size_t i = 1; i < n; i++) {
        if (k[i].veh != k[i - 1].veh)
            continue;
        float ta, tb, pa, pb;
        uint32_t la, lb;
        uint8_t type;
        sf_runrec_point(rec, k[i - 1].idx, &ta, NULL, &la, &pa, NULL, NULL);
        sf_runrec_point(rec, k[i].idx, &tb, NULL, &lb, &pb, NULL, &type);
        int dir = sf_runrec_link_dir(rec, lb);
        if (tb - ta > gap || dir == 0 || sf_runrec_link_dir(rec, la) != dir || tb < t0 || ta > t1)
            continue;
        float xa, ya, xb, yb;
        sf_plot_map(&f, ta, sf_runrec_distance(rec, la, pa), &xa, &ya);
        sf_plot_map(&f, tb, sf_runrec_distance(rec, lb, pb), &xb, &yb);
        bool bus = type == SF_VEH_BUS;
        SDL_Color col = bus ? (dir > 0 ? SF_COL_TRAJ_BUS_POS : SF_COL_TRAJ_BUS_NEG)
                            : (dir > 0 ? SF_COL_TRAJ_POS : SF_COL_TRAJ_NEG);
        sf_canvas_line(c, xa, ya, xb, yb, bus ? 2.6f : 1.2f, col);
    }
    free(k);

    /* legend */
    float lx = f.x, ly = (float)h - 26;
    struct {
        SDL_Color col;
        float wpx;
        char text[48];
    } items[4] = {{SF_COL_TRAJ_POS, 2, ""},
                  {SF_COL_TRAJ_NEG, 2, ""},
                  {SF_COL_TRAJ_BUS_POS, 4, ""},
                  {SF_COL_TRAJ_BUS_NEG, 4, ""}};
    snprintf(items[0].text, sizeof items[0].text, "car %s", sf_runrec_dir_name(rec, 1));
    snprintf(items[1].text, sizeof items[1].text, "car %s", sf_runrec_dir_name(rec, -1));
    snprintf(items[2].text, sizeof items[2].text, "bus %s", sf_runrec_dir_name(rec, 1));
    snprintf(items[3].text, sizeof items[3].text, "bus %s", sf_runrec_dir_name(rec, -1));
    for (int i = 0; i < 4; i++) {
        sf_canvas_rect(c, lx, ly + 7, 24, items[i].wpx, items[i].col);
        int tw =
            sf_canvas_text(c, lx + 30, ly, SF_TEXT_SMALL, col_axis, SF_ALIGN_LEFT, items[i].text);
        lx += 30 + (float)(tw > 0 ? tw : 60) + 20;
    }
    char bars[128];
    snprintf(bars, sizeof bars, "bars: through lamps, %s below each line, %s above",
             sf_runrec_dir_name(rec, 1), sf_runrec_dir_name(rec, -1));
    sf_canvas_text(c, lx, ly, SF_TEXT_SMALL, col_axis, SF_ALIGN_LEFT, bars);
    sf_canvas_flush(c);
    if (frame)
        *frame = f;
    return 0;
}

/* ---- arrivals and the coordination diagram ------------------------------------- */

typedef struct {
    double *t; /* arrival times at the stop line */
    size_t n;
} arrivals_t;

static int collect_arrivals(const sf_runrec_t *rec, uint32_t link, arrivals_t *out)
{
    const sf_link_t *l = &sf_runrec_scenario(rec)->links[link];
    double d = fmin(100.0, 0.6 * l->length_m), p = l->length_m - d;
    double v = l->speed_mps > 0 ? l->speed_mps : 13.9;
    size_t n;
    ptkey_t *k = sorted_points(rec, &n);
    out->t = malloc((n ? n : 1) * sizeof *out->t);
    out->n = 0;
    if (!k || !out->t) {
        free(k);
        free(out->t);
        out->t = NULL;
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 1; i < n; i++) {
        if (k[i].veh != k[i - 1].veh)
            continue;
        float ta, tb, pa, pb, vb;
        uint32_t la, lb;
        sf_runrec_point(rec, k[i - 1].idx, &ta, NULL, &la, &pa, NULL, NULL);
        sf_runrec_point(rec, k[i].idx, &tb, NULL, &lb, &pb, &vb, NULL);
        if (lb != link || pb < p)
            continue;
        double tc;
        if (la == link && pa < p && pb > pa)
            tc = ta + (p - pa) / (pb - pa) * (tb - ta);
        else if (la != link) /* entered the link already past the point */
            tc = tb - (pb - p) / fmax(vb, 1.0);
        else
            continue;
        out->t[out->n++] = tc + d / v;
    }
    free(k);
    return 0;
}

int sf_plot_arrivals(const sf_runrec_t *rec, uint32_t ix, int dir, int *on_green)
{
    uint32_t link;
    uint8_t sg;
    if (!rec || sf_runrec_approach(rec, ix, dir, &link, &sg) != 0) {
        errno = ENOENT;
        return -1;
    }
    arrivals_t a;
    timeline_t tl;
    if (collect_arrivals(rec, link, &a) != 0)
        return -1;
    if (timeline_build(rec, ix, sg, &tl) != 0) {
        free(a.t);
        return -1;
    }
    int g = 0;
    for (size_t i = 0; i < a.n; i++)
        g += sf_lamp_is_green(timeline_at(&tl, a.t[i]));
    timeline_free(&tl);
    free(a.t);
    if (on_green)
        *on_green = g;
    return (int)a.n;
}

/* One cycle: red start r, green start g, yellow start y (NAN when absent), end. */
typedef struct {
    double r, g, y, end;
} cycle_t;

static size_t build_cycles(const timeline_t *tl, double t_end, cycle_t *cy)
{
    size_t n = 0;
    for (size_t i = 0; i < tl->n; i++) {
        uint8_t code = tl->code[i], prev = i ? tl->code[i - 1] : SF_LAMP_NONE;
        if (sf_lamp_is_red(code) && !sf_lamp_is_red(prev)) {
            if (n)
                cy[n - 1].end = tl->t[i];
            cy[n++] = (cycle_t){tl->t[i], NAN, NAN, t_end};
        } else if (n && sf_lamp_is_green(code) && isnan(cy[n - 1].g)) {
            cy[n - 1].g = tl->t[i];
        } else if (n && sf_lamp_is_yellow(code) && isnan(cy[n - 1].y)) {
            cy[n - 1].y = tl->t[i];
        }
    }
    return n;
}

static int draw_pcd(sf_canvas_t *c, const sf_runrec_t *rec, uint32_t ix, int dir,
                    sf_plot_frame_t *f)
{
    uint32_t link;
    uint8_t sg;
    if (sf_runrec_approach(rec, ix, dir, &link, &sg) != 0) {
        f->w = 0;
        return 0;
    }
    const sf_scenario_t *sc = sf_runrec_scenario(rec);
    timeline_t tl;
    if (timeline_build(rec, ix, sg, &tl) != 0)
        return -1;
    arrivals_t a;
    if (collect_arrivals(rec, link, &a) != 0) {
        timeline_free(&tl);
        return -1;
    }
    cycle_t *cy = malloc((tl.n + 1) * sizeof *cy);
    if (!cy) {
        timeline_free(&tl);
        free(a.t);
        errno = ENOMEM;
        return -1;
    }
    size_t nc = build_cycles(&tl, f->t1, cy);
    double vmax = 60;
    for (size_t i = 0; i < nc; i++)
        if (i + 1 < nc)
            vmax = fmax(vmax, cy[i].end - cy[i].r);
    f->v0 = 0;
    f->v1 = vmax * 1.05;
    int g = 0;
    for (size_t i = 0; i < a.n; i++)
        g += sf_lamp_is_green(timeline_at(&tl, a.t[i]));
    char title[200];
    snprintf(title, sizeof title, "%s %s (group %s): %zu arrivals, %.1f %% on green",
             ix_label(c, &sc->intersections[ix]), sf_runrec_dir_name(rec, dir),
             sc->intersections[ix].sg[sg].id, a.n, a.n ? 100.0 * g / (double)a.n : 0.0);
    /* interval shading per cycle, then the axes over it, then arrivals */
    static const SDL_Color sh_red = {250, 215, 215, 255}, sh_green = {200, 238, 200, 255},
                           sh_yellow = {250, 240, 180, 255};
    for (size_t i = 0; i < nc; i++) {
        double r = cy[i].r, e = fmin(cy[i].end, f->t1);
        if (e <= f->t0 || r >= f->t1)
            continue;
        double gs = isnan(cy[i].g) ? e : cy[i].g, ys = isnan(cy[i].y) ? e : cy[i].y;
        float xa, xb, y0, y1, y2, y3, dummy;
        sf_plot_map(f, fmax(r, f->t0), 0, &xa, &y0);
        sf_plot_map(f, e, 0, &xb, &dummy);
        sf_plot_map(f, f->t0, fmin(gs - r, f->v1), &dummy, &y1);
        sf_plot_map(f, f->t0, fmin(ys - r, f->v1), &dummy, &y2);
        sf_plot_map(f, f->t0, fmin(e - r, f->v1), &dummy, &y3);
        sf_canvas_rect(c, xa, y1, xb - xa, y0 - y1, sh_red);
        sf_canvas_rect(c, xa, y2, xb - xa, y1 - y2, sh_green);
        sf_canvas_rect(c, xa, y3, xb - xa, y2 - y3, sh_yellow);
    }
    axes(c, f, title, "sim time (s)", "time in cycle (s), cycle starts at the beginning of red");
    for (size_t i = 0; i < nc; i++) { /* green and yellow start lines */
        double e = fmin(cy[i].end, f->t1);
        if (e <= f->t0 || cy[i].r >= f->t1)
            continue;
        float xa, xb, yy, dummy;
        sf_plot_map(f, fmax(cy[i].r, f->t0), 0, &xa, &dummy);
        sf_plot_map(f, e, 0, &xb, &dummy);
        if (!isnan(cy[i].g)) {
            sf_plot_map(f, f->t0, cy[i].g - cy[i].r, &dummy, &yy);
            sf_canvas_rect(c, xa, yy - 1, xb - xa, 2, (SDL_Color){0, 150, 40, 255});
        }
        if (!isnan(cy[i].y)) {
            sf_plot_map(f, f->t0, cy[i].y - cy[i].r, &dummy, &yy);
            sf_canvas_rect(c, xa, yy - 1, xb - xa, 2, (SDL_Color){200, 150, 0, 255});
        }
    }
    for (size_t i = 0; i < a.n; i++) {
        double t = a.t[i];
        if (t < f->t0 || t > f->t1 || nc == 0 || t < cy[0].r)
            continue;
        size_t lo = 0, hi = nc; /* last cycle starting at or before t */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cy[mid].r <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
        float px, py;
        sf_plot_map(f, t, fmin(t - cy[lo - 1].r, f->v1), &px, &py);
        sf_canvas_rect(c, px - 1.5f, py - 1.5f, 3, 3, col_dot);
    }
    free(cy);
    free(a.t);
    timeline_free(&tl);
    return 0;
}

int sf_plot_coordination(sf_canvas_t *c, const sf_runrec_t *rec, uint32_t ix,
                         sf_plot_frame_t frames[2])
{
    if (!c || !rec || ix >= sf_runrec_scenario(rec)->n_intersections) {
        errno = EINVAL;
        return -1;
    }
    if (!sf_runrec_ix_on_arterial(rec, ix)) {
        errno = ENOENT;
        return -1;
    }
    int w, h;
    sf_canvas_size(c, &w, &h);
    double t0, t1;
    sf_runrec_span(rec, &t0, &t1);
    if (!(t1 > t0))
        t1 = t0 + 1;
    sf_canvas_clear(c, col_white);
    float ph = ((float)h - 20) / 2;
    sf_plot_frame_t f[2];
    for (int k = 0; k < 2; k++) {
        f[k] =
            (sf_plot_frame_t){90, 20 + (float)k * ph + 50, (float)w - 120, ph - 100, t0, t1, 0, 1};
        if (draw_pcd(c, rec, ix, k == 0 ? 1 : -1, &f[k]) != 0)
            return -1;
    }
    sf_canvas_flush(c);
    if (frames) {
        frames[0] = f[0];
        frames[1] = f[1];
    }
    return 0;
}

/* ---- queues -------------------------------------------------------------------- */

int sf_plot_queues(sf_canvas_t *c, const sf_runrec_t *rec, uint32_t ix, sf_plot_frame_t *frame)
{
    if (!c || !rec || ix >= sf_runrec_scenario(rec)->n_intersections) {
        errno = EINVAL;
        return -1;
    }
    size_t nq = sf_runrec_n_queue_samples(rec);
    if (nq == 0) {
        errno = ENOENT;
        return -1;
    }
    const sf_scenario_t *sc = sf_runrec_scenario(rec);
    static const SDL_Color pal[] = {{31, 119, 180, 255},  {255, 127, 14, 255},  {44, 160, 44, 255},
                                    {214, 39, 40, 255},   {148, 103, 189, 255}, {140, 86, 75, 255},
                                    {227, 119, 194, 255}, {127, 127, 127, 255}};
    double t0, t1, qmax = 10;
    sf_runrec_queue(rec, 0, 0, &t0, NULL);
    sf_runrec_queue(rec, nq - 1, 0, &t1, NULL);
    if (!(t1 > t0))
        t1 = t0 + 1;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        if (sc->links[li].to_kind != SF_NODE_INTERSECTION || sc->links[li].to_idx != ix)
            continue;
        for (size_t i = 0; i < nq; i++) {
            float q;
            sf_runrec_queue(rec, i, li, NULL, &q);
            qmax = fmax(qmax, q);
        }
    }
    int w, h;
    sf_canvas_size(c, &w, &h);
    sf_plot_frame_t f = {90, 60, (float)w - 120, (float)h - 140, t0, t1, 0, qmax * 1.1};
    sf_canvas_clear(c, col_white);
    char title[160];
    snprintf(title, sizeof title, "Queues at %s (longest lane per approach)",
             ix_label(c, &sc->intersections[ix]));
    axes(c, &f, title, "sim time (s)", "queue (m)");
    int k = 0;
    float lx = f.x;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        if (sc->links[li].to_kind != SF_NODE_INTERSECTION || sc->links[li].to_idx != ix)
            continue;
        SDL_Color col = pal[k++ % 8];
        for (size_t i = 1; i < nq; i++) {
            double ta, tb;
            float qa, qb, xa, ya, xb, yb;
            sf_runrec_queue(rec, i - 1, li, &ta, &qa);
            sf_runrec_queue(rec, i, li, &tb, &qb);
            sf_plot_map(&f, ta, qa, &xa, &ya);
            sf_plot_map(&f, tb, qb, &xb, &yb);
            sf_canvas_line(c, xa, ya, xb, yb, 1.6f, col);
        }
        sf_canvas_rect(c, lx, (float)h - 30 + 7, 24, 3, col);
        int tw = sf_canvas_text(c, lx + 30, (float)h - 30, SF_TEXT_SMALL, col_axis, SF_ALIGN_LEFT,
                                sc->links[li].id);
        lx += 30 + (float)(tw > 0 ? tw : 40) + 20;
    }
    sf_canvas_flush(c);
    if (frame)
        *frame = f;
    return 0;
}
