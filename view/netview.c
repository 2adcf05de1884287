/* view/netview.c — the network drawn to scale with lamps, detectors, vehicles, queues. */
#include "netview.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palette.h"
#include "queues.h"

#define MAX_HEADS 8     /* signal heads per approach link */
#define MIN_SCALE 0.01  /* px/m */
#define MAX_SCALE 200.0 /* px/m */

typedef struct {
    double ax, ay;                /* drawn start (upstream end), m */
    double dx, dy;                /* unit direction of travel */
    double rx, ry;                /* unit right normal */
    double draw_len;              /* drawn length, m */
    double k;                     /* drawn metres per link metre */
    int to_ix;                    /* downstream intersection, -1 = boundary */
    uint8_t n_lanes;              /* from the scenario */
    int8_t lane_sg[SF_MAX_LANES]; /* group of each lane's main movement, -1 none */
    uint8_t n_heads;              /* signal heads at the stop line */
    uint8_t head_sg[MAX_HEADS];   /* their groups, median side first */
} link_geo_t;

/* A crosswalk across one leg of an intersection, under a pedestrian signal group. */
typedef struct {
    uint32_t ix;   /* intersection */
    uint32_t link; /* the leg's approach link (the crosswalk is drawn in its basis) */
    uint8_t sg;    /* pedestrian signal group */
    double left_m; /* width of the leg's other carriageway (the exit link), m */
} xwalk_t;

#define MAX_XWALKS_PER_IX 8

struct sf_netview {
    const sf_scenario_t *sc; /* not owned */
    xwalk_t *xw;             /* crosswalks of every intersection */
    size_t n_xw;
    link_geo_t *links;   /* one per scenario link */
    double *ix_radius;   /* half-size of each intersection box, m */
    double cx, cy;       /* world point at the map centre, m */
    double scale;        /* px per m */
    int w, h;            /* canvas size the transform was last set for, px */
    sf_queues_t *queues; /* queue lengths of the frame being drawn */
    /* vehicles on screen-aligned links as rectangles, bucketed by colour (car speed
     * levels, then truck speed levels); grown with the largest frame, never freed per frame */
    SDL_FRect *bucket[2 * (SF_SPEED_LEVELS + 1)];
    int n_bucket[2 * (SF_SPEED_LEVELS + 1)];
    int cap_bucket[2 * (SF_SPEED_LEVELS + 1)];
};

/* ---- geometry ------------------------------------------------------------------ */

static void node_xy(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx, double *x,
                    double *y)
{
    if (kind == SF_NODE_INTERSECTION) {
        *x = sc->intersections[idx].x_m;
        *y = sc->intersections[idx].y_m;
    } else {
        *x = sc->boundaries[idx].x_m;
        *y = sc->boundaries[idx].y_m;
    }
}

static bool node_ok(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx)
{
    return kind == SF_NODE_INTERSECTION ? idx < sc->n_intersections : idx < sc->n_boundaries;
}

/* Group of the movement from link li turning t at its downstream intersection, or -1. */
static int movement_sg(const sf_scenario_t *sc, const sf_link_t *l, uint32_t li, int turn)
{
    if (l->to_kind != SF_NODE_INTERSECTION)
        return -1;
    const sf_intersection_t *ix = &sc->intersections[l->to_idx];
    for (uint8_t m = 0; m < ix->n_movements; m++)
        if (ix->movements[m].from_link_idx == li && (int)ix->movements[m].turn == turn &&
            ix->movements[m].sg_idx < ix->n_sg)
            return ix->movements[m].sg_idx;
    return -1;
}

static int build_geometry(sf_netview_t *nv)
{
    const sf_scenario_t *sc = nv->sc;
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        nv->ix_radius[i] = 8.0;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *l = &sc->links[li];
        if (!node_ok(sc, l->from_kind, l->from_idx) || !node_ok(sc, l->to_kind, l->to_idx) ||
            l->n_lanes > SF_MAX_LANES)
            return -1;
        /* The box must hold the lanes of every link that meets there, plus a margin. */
        double r = l->n_lanes * SF_LANE_WIDTH_M + 3.0;
        if (l->from_kind == SF_NODE_INTERSECTION && nv->ix_radius[l->from_idx] < r)
            nv->ix_radius[l->from_idx] = r;
        if (l->to_kind == SF_NODE_INTERSECTION && nv->ix_radius[l->to_idx] < r)
            nv->ix_radius[l->to_idx] = r;
    }
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *l = &sc->links[li];
        link_geo_t *g = &nv->links[li];
        double x0, y0, x1, y1;
        node_xy(sc, l->from_kind, l->from_idx, &x0, &y0);
        node_xy(sc, l->to_kind, l->to_idx, &x1, &y1);
        double len = hypot(x1 - x0, y1 - y0);
        if (len < 1e-6) {
            g->dx = 1;
            g->dy = 0;
        } else {
            g->dx = (x1 - x0) / len;
            g->dy = (y1 - y0) / len;
        }
        g->rx = g->dy; /* right of (dx, dy) with y north */
        g->ry = -g->dx;
        double t0 = l->from_kind == SF_NODE_INTERSECTION ? nv->ix_radius[l->from_idx] : 0;
        double t1 = l->to_kind == SF_NODE_INTERSECTION ? nv->ix_radius[l->to_idx] : 0;
        if (t0 + t1 > len * 0.8) { /* very short link: keep something visible */
            double f = len * 0.8 / (t0 + t1 > 0 ? t0 + t1 : 1);
            t0 *= f;
            t1 *= f;
        }
        g->ax = x0 + g->dx * t0;
        g->ay = y0 + g->dy * t0;
        g->draw_len = len - t0 - t1;
        g->k = l->length_m > 0 ? g->draw_len / l->length_m : 0;
        g->to_ix = l->to_kind == SF_NODE_INTERSECTION ? (int)l->to_idx : -1;
        g->n_lanes = l->n_lanes;
        for (uint8_t ln = 0; ln < l->n_lanes; ln++) {
            uint8_t use = l->lanes[ln].use_mask;
            int sg = -1;
            if (use & SF_LANE_USE_THROUGH)
                sg = movement_sg(sc, l, li, SF_TURN_THROUGH);
            if (sg < 0 && (use & SF_LANE_USE_LEFT))
                sg = movement_sg(sc, l, li, SF_TURN_LEFT);
            if (sg < 0 && (use & SF_LANE_USE_RIGHT))
                sg = movement_sg(sc, l, li, SF_TURN_RIGHT);
            g->lane_sg[ln] = (int8_t)sg;
        }
        g->n_heads = 0;
        for (int turn = SF_TURN_LEFT; turn <= SF_TURN_RIGHT; turn++) {
            int sg = movement_sg(sc, l, li, turn);
            if (sg < 0)
                continue;
            bool dup = false;
            for (uint8_t h = 0; h < g->n_heads; h++)
                dup |= g->head_sg[h] == (uint8_t)sg;
            if (!dup && g->n_heads < MAX_HEADS)
                g->head_sg[g->n_heads++] = (uint8_t)sg;
        }
    }
    return 0;
}

/* Crosswalks. A pedestrian group walks beside the through traffic of its phase (the
 * vehicle or arrow group of the same phase with a through movement from approach L) and
 * crosses the leg to the right of that traffic, the leg its right turners cross: the
 * approach M whose outward direction is closest to L's right (and within 45 degrees of
 * it). A pedestrian group of a phase without through traffic gets no crosswalk. */
static int build_crosswalks(sf_netview_t *nv)
{
    const sf_scenario_t *sc = nv->sc;
    nv->xw = calloc((size_t)sc->n_intersections * MAX_XWALKS_PER_IX + 1, sizeof *nv->xw);
    if (!nv->xw)
        return -1;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        size_t first = nv->n_xw;
        for (uint8_t g = 0; g < ix->n_sg; g++) {
            if (ix->sg[g].kind != SF_SG_PEDESTRIAN)
                continue;
            for (uint8_t m = 0; m < ix->n_movements; m++) {
                const sf_movement_t *mv = &ix->movements[m];
                if (mv->turn != SF_TURN_THROUGH || mv->sg_idx >= ix->n_sg ||
                    ix->sg[mv->sg_idx].kind == SF_SG_PEDESTRIAN ||
                    ix->sg[mv->sg_idx].phase_idx != ix->sg[g].phase_idx ||
                    mv->from_link_idx >= sc->n_links)
                    continue;
                const link_geo_t *L = &nv->links[mv->from_link_idx];
                int best = -1;
                double best_dot = 0.7; /* cos 45 degrees */
                for (uint32_t li = 0; li < sc->n_links; li++) {
                    const link_geo_t *M = &nv->links[li];
                    if (M->to_ix != (int)i)
                        continue;
                    double dot = -M->dx * L->rx - M->dy * L->ry; /* outward . right of L */
                    if (dot > best_dot) {
                        best_dot = dot;
                        best = (int)li;
                    }
                }
                if (best < 0)
                    continue;
                bool dup = false;
                for (size_t k = first; k < nv->n_xw; k++)
                    dup |= nv->xw[k].link == (uint32_t)best && nv->xw[k].sg == g;
                if (dup || nv->n_xw - first >= MAX_XWALKS_PER_IX)
                    continue;
                /* the leg's other carriageway: the link leaving i towards M's upstream node */
                const sf_link_t *ml = &sc->links[best];
                double left = 0;
                for (uint32_t li = 0; li < sc->n_links; li++) {
                    const sf_link_t *o = &sc->links[li];
                    if (o->from_kind == SF_NODE_INTERSECTION && o->from_idx == i &&
                        o->to_kind == ml->from_kind && o->to_idx == ml->from_idx)
                        left = o->n_lanes * SF_LANE_WIDTH_M;
                }
                nv->xw[nv->n_xw++] =
                    (xwalk_t){.ix = i, .link = (uint32_t)best, .sg = g, .left_m = left};
            }
        }
    }
    return 0;
}

sf_netview_t *sf_netview_new(const sf_scenario_t *sc, int w, int h)
{
    if (!sc || (sc->n_links && !sc->links) || (sc->n_intersections && !sc->intersections)) {
        errno = EINVAL;
        return NULL;
    }
    sf_netview_t *nv = calloc(1, sizeof *nv);
    if (!nv)
        return NULL;
    nv->sc = sc;
    nv->links = calloc(sc->n_links + 1, sizeof *nv->links);
    nv->ix_radius = calloc(sc->n_intersections + 1, sizeof *nv->ix_radius);
    if (!nv->links || !nv->ix_radius)
        goto fail;
    if (build_geometry(nv) != 0) {
        errno = EINVAL;
        goto fail;
    }
    if (build_crosswalks(nv) != 0)
        goto fail;
    nv->queues = sf_queues_new(sc);
    if (!nv->queues)
        goto fail;
    sf_netview_fit(nv, w, h);
    return nv;
fail:;
    int saved = errno ? errno : ENOMEM;
    sf_netview_destroy(&nv);
    errno = saved;
    return NULL;
}

void sf_netview_destroy(sf_netview_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_netview_t *nv = *self_p;
    free(nv->xw);
    free(nv->links);
    free(nv->ix_radius);
    sf_queues_destroy(&nv->queues);
    for (int k = 0; k < 2 * (SF_SPEED_LEVELS + 1); k++)
        free(nv->bucket[k]);
    free(nv);
    *self_p = NULL;
}

void sf_netview_fit(sf_netview_t *nv, int w, int h)
{
    if (!nv)
        return;
    const sf_scenario_t *sc = nv->sc;
    nv->w = w > 1 ? w : 1;
    nv->h = h > SF_STATUS_BAR_PX + 1 ? h : SF_STATUS_BAR_PX + 2;
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        double r = nv->ix_radius[i];
        x0 = fmin(x0, sc->intersections[i].x_m - r);
        x1 = fmax(x1, sc->intersections[i].x_m + r);
        y0 = fmin(y0, sc->intersections[i].y_m - r);
        y1 = fmax(y1, sc->intersections[i].y_m + r);
    }
    for (uint32_t i = 0; i < sc->n_boundaries; i++) {
        x0 = fmin(x0, sc->boundaries[i].x_m);
        x1 = fmax(x1, sc->boundaries[i].x_m);
        y0 = fmin(y0, sc->boundaries[i].y_m);
        y1 = fmax(y1, sc->boundaries[i].y_m);
    }
    if (!(x1 >= x0)) { /* empty network */
        x0 = y0 = -50;
        x1 = y1 = 50;
    }
    nv->cx = (x0 + x1) / 2;
    nv->cy = (y0 + y1) / 2;
    double map_h = nv->h - SF_STATUS_BAR_PX;
    double sx = (nv->w - 20) / fmax(x1 - x0, 1.0), sy = (map_h - 20) / fmax(y1 - y0, 1.0);
    nv->scale = fmin(fmax(fmin(sx, sy), MIN_SCALE), MAX_SCALE);
}

void sf_netview_pan(sf_netview_t *nv, float dx, float dy)
{
    if (!nv)
        return;
    nv->cx -= dx / nv->scale;
    nv->cy += dy / nv->scale;
}

void sf_netview_zoom(sf_netview_t *nv, double factor, float sx, float sy)
{
    if (!nv || !(factor > 0))
        return;
    double wx, wy;
    sf_netview_to_world(nv, sx, sy, &wx, &wy);
    nv->scale = fmin(fmax(nv->scale * factor, MIN_SCALE), MAX_SCALE);
    /* keep (wx, wy) under (sx, sy) */
    float nx, ny;
    sf_netview_to_screen(nv, wx, wy, &nx, &ny);
    sf_netview_pan(nv, sx - nx, sy - ny);
}

void sf_netview_center_on(sf_netview_t *nv, double x_m, double y_m, double scale)
{
    if (!nv || !(scale > 0))
        return;
    nv->cx = x_m;
    nv->cy = y_m;
    nv->scale = fmin(fmax(scale, MIN_SCALE), MAX_SCALE);
}

double sf_netview_scale(const sf_netview_t *nv)
{
    return nv ? nv->scale : 0;
}

void sf_netview_to_screen(const sf_netview_t *nv, double x_m, double y_m, float *sx, float *sy)
{
    double map_h = nv->h - SF_STATUS_BAR_PX;
    *sx = (float)(nv->w / 2.0 + (x_m - nv->cx) * nv->scale);
    *sy = (float)(map_h / 2.0 - (y_m - nv->cy) * nv->scale);
}

void sf_netview_to_world(const sf_netview_t *nv, float sx, float sy, double *x_m, double *y_m)
{
    double map_h = nv->h - SF_STATUS_BAR_PX;
    *x_m = nv->cx + (sx - nv->w / 2.0) / nv->scale;
    *y_m = nv->cy - (sy - map_h / 2.0) / nv->scale;
}

/* Lateral offset (m, to the right of the centre line) of the middle of a lane. */
static double lane_offset(const link_geo_t *g, int lane)
{
    return ((double)(g->n_lanes - 1 - lane) + 0.5) * SF_LANE_WIDTH_M;
}

int sf_netview_lane_point(const sf_netview_t *nv, uint32_t link, uint8_t lane, float pos_m,
                          double *x_m, double *y_m)
{
    if (!nv || link >= nv->sc->n_links || lane >= nv->links[link].n_lanes) {
        errno = EINVAL;
        return -1;
    }
    const link_geo_t *g = &nv->links[link];
    double along = pos_m * g->k, off = lane_offset(g, lane);
    *x_m = g->ax + g->dx * along + g->rx * off;
    *y_m = g->ay + g->dy * along + g->ry * off;
    return 0;
}

/* Screen-space basis of a link for the current transform: origin, pixels per metre
 * along the drawn link and per metre to the right. */
typedef struct {
    float ox, oy; /* screen point of the drawn start on the centre line */
    float ux, uy; /* pixels per drawn metre along */
    float vx, vy; /* pixels per metre to the right */
} basis_t;

static basis_t link_basis(const sf_netview_t *nv, const link_geo_t *g)
{
    basis_t b;
    sf_netview_to_screen(nv, g->ax, g->ay, &b.ox, &b.oy);
    b.ux = (float)(g->dx * nv->scale);
    b.uy = (float)(-g->dy * nv->scale);
    b.vx = (float)(g->rx * nv->scale);
    b.vy = (float)(-g->ry * nv->scale);
    return b;
}

static SDL_FPoint at(const basis_t *b, double along, double right)
{
    SDL_FPoint p = {b->ox + b->ux * (float)along + b->vx * (float)right,
                    b->oy + b->uy * (float)along + b->vy * (float)right};
    return p;
}

/* Quad covering [a0, a1] along and [r0, r1] to the right, in a link's basis. */
static void band(sf_canvas_t *c, const basis_t *b, double a0, double a1, double r0, double r1,
                 SDL_Color col)
{
    SDL_FPoint p[4] = {at(b, a0, r0), at(b, a1, r0), at(b, a1, r1), at(b, a0, r1)};
    sf_canvas_quad(c, p, col);
}

/* Head size in pixels and the screen centre of head h of a link. */
static float head_px(const sf_netview_t *nv)
{
    return fmaxf((float)(2.4 * nv->scale), 8.0f);
}

static SDL_FPoint head_center(const sf_netview_t *nv, const link_geo_t *g, int h)
{
    basis_t b = link_basis(nv, g);
    float size = head_px(nv);
    double width = g->n_lanes * SF_LANE_WIDTH_M;
    /* World spacing across the lanes, widened in pixels when zoomed out so heads never
     * overlap; the row is centred on the approach's lanes, 1.5 m (at least half a head)
     * past the stop line. */
    double spacing_m = width / (g->n_heads ? g->n_heads : 1);
    double min_m = (size + 2) / nv->scale;
    if (spacing_m < min_m)
        spacing_m = min_m;
    double past = fmax(1.5, 0.5 * (size + 2) / nv->scale);
    double right = width / 2 + (h - (g->n_heads - 1) / 2.0) * spacing_m;
    return at(&b, g->draw_len + past, right);
}

int sf_netview_head_point(const sf_netview_t *nv, uint32_t ix, uint32_t link, uint8_t sg, float *sx,
                          float *sy)
{
    if (!nv || ix >= nv->sc->n_intersections || link >= nv->sc->n_links) {
        errno = EINVAL;
        return -1;
    }
    const link_geo_t *g = &nv->links[link];
    if (g->to_ix != (int)ix) {
        errno = ENOENT;
        return -1;
    }
    for (int h = 0; h < g->n_heads; h++) {
        if (g->head_sg[h] == sg) {
            SDL_FPoint p = head_center(nv, g, h);
            *sx = p.x;
            *sy = p.y;
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

/* Crosswalk geometry in its approach's basis: the band [a0, a1] along, just upstream of
 * the stop line, across both carriageways; the pedestrian heads stand on the kerbs at its
 * ends, one on each side. */
#define XW_A0 4.5 /* m before the stop line */
#define XW_A1 1.0

static SDL_FPoint ped_head_center(const sf_netview_t *nv, const xwalk_t *x, int side)
{
    const link_geo_t *g = &nv->links[x->link];
    basis_t b = link_basis(nv, g);
    double w = g->n_lanes * SF_LANE_WIDTH_M;
    double out = fmax(1.6, 0.6 * head_px(nv) / nv->scale + 0.4); /* clear of the kerb */
    double along = g->draw_len - (XW_A0 + XW_A1) / 2;
    return at(&b, along, side == 0 ? w + out : -x->left_m - out);
}

int sf_netview_ped_head_point(const sf_netview_t *nv, uint32_t ix, uint8_t sg, int n, float *sx,
                              float *sy)
{
    if (!nv || ix >= nv->sc->n_intersections || sg >= SF_MAX_SG || n < 0) {
        errno = EINVAL;
        return -1;
    }
    int k = 0;
    for (size_t i = 0; i < nv->n_xw; i++) {
        const xwalk_t *x = &nv->xw[i];
        if (x->ix != ix || x->sg != sg)
            continue;
        for (int side = 0; side < 2; side++, k++) {
            if (k == n) {
                SDL_FPoint p = ped_head_center(nv, x, side);
                *sx = p.x;
                *sy = p.y;
                return 0;
            }
        }
    }
    errno = ENOENT;
    return -1;
}

int sf_netview_hit(const sf_netview_t *nv, float sx, float sy)
{
    if (!nv)
        return -1;
    double wx, wy;
    sf_netview_to_world(nv, sx, sy, &wx, &wy);
    int best = -1;
    double best_d = INFINITY;
    for (uint32_t i = 0; i < nv->sc->n_intersections; i++) {
        const sf_intersection_t *ix = &nv->sc->intersections[i];
        double d = hypot(wx - ix->x_m, wy - ix->y_m);
        /* at least 10 px around the centre, so a zoomed-out intersection is clickable */
        double reach = fmax(nv->ix_radius[i], 10.0 / nv->scale);
        if (d <= reach && d < best_d) {
            best = (int)i;
            best_d = d;
        }
    }
    return best;
}

/* ---- drawing ------------------------------------------------------------------- */

static const SDL_Color col_road = {68, 72, 78, 255};
static const SDL_Color col_box = {60, 64, 70, 255};
static const SDL_Color col_mark = {225, 225, 225, 255};
static const SDL_Color col_centre = {230, 190, 40, 255};
static const SDL_Color col_queue = {230, 40, 40, 90};
static const SDL_Color col_det_off = {80, 170, 200, 255};
static const SDL_Color col_text = {235, 235, 235, 255};
static const SDL_Color col_bar = {18, 20, 24, 255};
static const SDL_Color col_select = {90, 170, 255, 255};

static void draw_roads(sf_netview_t *nv, sf_canvas_t *c, int selected)
{
    const sf_scenario_t *sc = nv->sc;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        float x, y;
        sf_netview_to_screen(nv, sc->intersections[i].x_m, sc->intersections[i].y_m, &x, &y);
        float r = (float)(nv->ix_radius[i] * nv->scale);
        if ((int)i == selected)
            sf_canvas_rect(c, x - r - 3, y - r - 3, 2 * r + 6, 2 * r + 6, col_select);
        sf_canvas_rect(c, x - r, y - r, 2 * r, 2 * r, col_box);
    }
    float line_m = (float)fmax(0.15, 1.0 / nv->scale); /* at least one pixel */
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const link_geo_t *g = &nv->links[li];
        basis_t b = link_basis(nv, g);
        double width = g->n_lanes * SF_LANE_WIDTH_M;
        band(c, &b, 0, g->draw_len, 0, width, col_road);
        band(c, &b, 0, g->draw_len, -line_m / 2, line_m / 2, col_centre);
        if (nv->scale < 2.0)
            continue; /* lane lines would merge into the road */
        for (uint8_t ln = 1; ln < g->n_lanes; ln++) {
            double off = ln * SF_LANE_WIDTH_M;
            /* dashed lines between lanes: 3 m dash, 6 m gap; solid near the stop line */
            double solid_from = fmax(0, g->draw_len - 30);
            for (double a = 0; a < solid_from; a += 9)
                band(c, &b, a, fmin(a + 3, solid_from), off - line_m / 2, off + line_m / 2,
                     col_mark);
            band(c, &b, solid_from, g->draw_len, off - line_m / 2, off + line_m / 2, col_mark);
        }
    }
}

static void draw_queues(sf_netview_t *nv, sf_canvas_t *c)
{
    const sf_scenario_t *sc = nv->sc;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const link_geo_t *g = &nv->links[li];
        basis_t b = link_basis(nv, g);
        for (uint8_t ln = 0; ln < g->n_lanes; ln++) {
            float q = sf_queues_lane(nv->queues, li, ln);
            if (q <= 0)
                continue;
            double off = lane_offset(g, ln);
            double a1 = g->draw_len, a0 = fmax(0, a1 - q * g->k);
            band(c, &b, a0, a1, off - SF_LANE_WIDTH_M / 2, off + SF_LANE_WIDTH_M / 2, col_queue);
        }
    }
}

static void draw_detectors(sf_netview_t *nv, sf_canvas_t *c, const uint64_t *presence)
{
    const sf_scenario_t *sc = nv->sc;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        uint64_t bits = presence ? presence[i] : 0;
        for (uint8_t d = 0; d < ix->n_det && d < 64; d++) {
            const sf_detector_t *det = &ix->det[d];
            if (det->link_idx >= sc->n_links || det->lane >= nv->links[det->link_idx].n_lanes)
                continue;
            const link_geo_t *g = &nv->links[det->link_idx];
            basis_t b = link_basis(nv, g);
            float len = sc->links[det->link_idx].length_m;
            /* The zone runs from distance_m (upstream end) to distance_m - length_m before
             * the stop line (proto/SCENARIO.md), i.e. from len - distance_m downstream. */
            double a0 = (len - det->distance_m) * g->k, a1 = a0 + det->length_m * g->k;
            double off = lane_offset(g, det->lane), hw = SF_LANE_WIDTH_M * 0.35;
            if (bits >> d & 1u) {
                band(c, &b, a0, a1, off - hw, off + hw, SF_COL_DET_ON);
            } else {
                double t = fmax(0.3, 1.0 / nv->scale);
                band(c, &b, a0, a1, off - hw, off - hw + t, col_det_off);
                band(c, &b, a0, a1, off + hw - t, off + hw, col_det_off);
                band(c, &b, a0, a0 + t, off - hw, off + hw, col_det_off);
                band(c, &b, a1 - t, a1, off - hw, off + hw, col_det_off);
            }
        }
    }
}

static uint8_t lamp_of(const sf_view_state_t *st, int ix, int sg)
{
    if (!st->lamps || sg < 0 || sg >= SF_MAX_SG)
        return SF_LAMP_NONE;
    return st->lamps[(size_t)ix * SF_MAX_SG + (size_t)sg];
}

/* Colour a lamp shows now: flashing lamps blink live and are steady (marked) offscreen. */
static SDL_Color shown_color(const sf_view_state_t *st, uint8_t code)
{
    if (st->live && !sf_lamp_lit_at(code, st->wall_time_s))
        return SF_COL_LAMP_OFF;
    return sf_lamp_color(code);
}

static void draw_stop_lines(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    const sf_scenario_t *sc = nv->sc;
    double depth = fmax(0.8, 2.0 / nv->scale);
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const link_geo_t *g = &nv->links[li];
        if (g->to_ix < 0)
            continue;
        basis_t b = link_basis(nv, g);
        for (uint8_t ln = 0; ln < g->n_lanes; ln++) {
            double off = lane_offset(g, ln);
            SDL_Color col = g->lane_sg[ln] < 0
                                ? col_mark
                                : shown_color(st, lamp_of(st, g->to_ix, g->lane_sg[ln]));
            band(c, &b, g->draw_len - depth, g->draw_len, off - SF_LANE_WIDTH_M / 2,
                 off + SF_LANE_WIDTH_M / 2, col);
        }
    }
}

/* White lane-use arrows 6..12 m before the stop line, when lanes are wide enough. */
static void draw_arrows(sf_netview_t *nv, sf_canvas_t *c)
{
    if (nv->scale < 3.0)
        return;
    const sf_scenario_t *sc = nv->sc;
    float lw = (float)fmax(0.25, 1.2 / nv->scale);
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const link_geo_t *g = &nv->links[li];
        if (g->to_ix < 0 || g->draw_len < 20)
            continue;
        basis_t b = link_basis(nv, g);
        double base = g->draw_len - 12, tip = g->draw_len - 6;
        for (uint8_t ln = 0; ln < g->n_lanes; ln++) {
            uint8_t use = sc->links[li].lanes[ln].use_mask;
            double off = lane_offset(g, ln);
            SDL_FPoint p0 = at(&b, base, off), pm = at(&b, tip - 2, off);
            sf_canvas_line(c, p0.x, p0.y, pm.x, pm.y, lw * (float)nv->scale, col_mark);
            if (use & SF_LANE_USE_THROUGH) {
                sf_canvas_line(c, pm.x, pm.y, at(&b, tip - 1.4, off).x, at(&b, tip - 1.4, off).y,
                               lw * (float)nv->scale, col_mark);
                sf_canvas_tri(c, at(&b, tip - 1.6, off - 0.7), at(&b, tip, off),
                              at(&b, tip - 1.6, off + 0.7), col_mark);
            }
            for (int side = -1; side <= 1; side += 2) { /* -1 left (toward the median) */
                if (!(use & (side < 0 ? SF_LANE_USE_LEFT : SF_LANE_USE_RIGHT)))
                    continue;
                SDL_FPoint q = at(&b, tip - 2, off + side * 0.9);
                sf_canvas_line(c, pm.x, pm.y, q.x, q.y, lw * (float)nv->scale, col_mark);
                sf_canvas_tri(c, at(&b, tip - 2.7, off + side * 0.9),
                              at(&b, tip - 2, off + side * 1.6),
                              at(&b, tip - 1.3, off + side * 0.9), col_mark);
            }
        }
    }
}

/* Car colour by speed level; trucks a shade darker. */
static SDL_Color vehicle_color(uint8_t type, int level)
{
    SDL_Color col = sf_speed_level_color(level);
    if (type == SF_VEH_TRUCK) {
        col.r = (uint8_t)(col.r * 3 / 4);
        col.g = (uint8_t)(col.g * 3 / 4);
        col.b = (uint8_t)(col.b * 3 / 4);
    }
    return col;
}

static void draw_vehicles(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    memset(nv->n_bucket, 0, sizeof nv->n_bucket);
    const sf_scenario_t *sc = nv->sc;
    int cw, ch;
    sf_canvas_size(c, &cw, &ch);
    float margin = 40;
    for (size_t i = 0; i < st->n_veh; i++) {
        const sf_vehicle_snap_t *v = &st->veh[i];
        if (v->link_idx >= sc->n_links)
            continue;
        const link_geo_t *g = &nv->links[v->link_idx];
        if (v->lane >= g->n_lanes)
            continue;
        basis_t b = link_basis(nv, g);
        uint8_t t = v->type < SF_VEH_N ? v->type : 0;
        float vl = sc->demand.vtype[t].length_m > 0 ? sc->demand.vtype[t].length_m : 4.5f;
        double front = v->pos_m * g->k, off = lane_offset(g, v->lane);
        /* keep at least 3 x 2 pixels so a zoomed-out network still shows its traffic */
        double len = fmax(vl * g->k, 3.0 / nv->scale);
        double hw = fmax(t == SF_VEH_CAR ? 0.9 : 1.25, 1.0 / nv->scale);
        SDL_FPoint mid = at(&b, front - len / 2, off);
        if (mid.x < -margin || mid.y < -margin || mid.x > (float)cw + margin ||
            mid.y > (float)ch + margin)
            continue;
        SDL_FPoint p[4] = {at(&b, front - len, off - hw), at(&b, front, off - hw),
                           at(&b, front, off + hw), at(&b, front - len, off + hw)};
        float lim = sc->links[v->link_idx].speed_mps;
        int level = sf_speed_level(lim > 0 ? v->speed_mps / lim : 0);
        bool aligned = (fabsf(b.uy) < 1e-6f && fabsf(b.vx) < 1e-6f) ||
                       (fabsf(b.ux) < 1e-6f && fabsf(b.vy) < 1e-6f);
        if (t != SF_VEH_BUS && aligned) { /* the common case: one rectangle in a bucket */
            int k = (t == SF_VEH_TRUCK ? SF_SPEED_LEVELS + 1 : 0) + level;
            if (nv->n_bucket[k] == nv->cap_bucket[k]) {
                int cap = nv->cap_bucket[k] ? 2 * nv->cap_bucket[k] : 256;
                SDL_FRect *r = realloc(nv->bucket[k], (size_t)cap * sizeof *r);
                if (!r)
                    continue; /* out of memory: this vehicle is not drawn this frame */
                nv->bucket[k] = r;
                nv->cap_bucket[k] = cap;
            }
            float x0 = fminf(p[0].x, p[2].x), x1 = fmaxf(p[0].x, p[2].x);
            float y0 = fminf(p[0].y, p[2].y), y1 = fmaxf(p[0].y, p[2].y);
            nv->bucket[k][nv->n_bucket[k]++] = (SDL_FRect){x0, y0, x1 - x0, y1 - y0};
            continue;
        }
        SDL_Color col = t == SF_VEH_BUS ? SF_COL_BUS : vehicle_color(t, level);
        sf_canvas_quad(c, p, col);
        if (t == SF_VEH_BUS && nv->scale >= 1.5) { /* white roof stripe: distinct from cars */
            SDL_FPoint s[4] = {at(&b, front - len * 0.9, off - hw * 0.25),
                               at(&b, front - len * 0.1, off - hw * 0.25),
                               at(&b, front - len * 0.1, off + hw * 0.25),
                               at(&b, front - len * 0.9, off + hw * 0.25)};
            sf_canvas_quad(c, s, col_mark);
        }
    }
    for (int k = 0; k < 2 * (SF_SPEED_LEVELS + 1); k++)
        sf_canvas_rects(c, nv->bucket[k], nv->n_bucket[k],
                        vehicle_color(k > SF_SPEED_LEVELS ? SF_VEH_TRUCK : SF_VEH_CAR,
                                      k % (SF_SPEED_LEVELS + 1)));
}

static void draw_heads(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    const sf_scenario_t *sc = nv->sc;
    float size = head_px(nv), half = size / 2;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const link_geo_t *g = &nv->links[li];
        if (g->to_ix < 0)
            continue;
        for (int h = 0; h < g->n_heads; h++) {
            SDL_FPoint p = head_center(nv, g, h);
            uint8_t code = lamp_of(st, g->to_ix, g->head_sg[h]);
            sf_canvas_rect(c, p.x - half - 1, p.y - half - 1, size + 2, size + 2, col_bar);
            SDL_Color col = shown_color(st, code);
            sf_canvas_rect(c, p.x - half, p.y - half, size, size, col);
            if (code == SF_LAMP_RED_YELLOW) /* lower half yellow */
                sf_canvas_rect(c, p.x - half, p.y, size, half, SF_COL_LAMP_YELLOW);
            if (!st->live && sf_lamp_flash_kind(code)) {
                /* still picture: a dark corner marks a flashing lamp (two for fast) */
                float m = size / 4;
                sf_canvas_rect(c, p.x - half, p.y - half, m, m, col_bar);
                if (sf_lamp_flash_kind(code) == 2)
                    sf_canvas_rect(c, p.x + half - m, p.y - half, m, m, col_bar);
            }
        }
    }
}

/* Crosswalks (zebra stripes along the traffic, 0.5 m wide every metre) and their
 * pedestrian heads: upright (taller than wide, unlike the square vehicle heads), in the
 * group's lamp: green = walk, flashing red = pedestrian clearance (flashing don't walk),
 * red = don't walk, dark when off; a walk head carries a white walking figure's body bar,
 * a don't-walk head a white hand bar across. Flashing blinks live; offscreen it is marked
 * with the dark corner like the vehicle heads. */
static void draw_crosswalks(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    if (nv->scale < 0.6)
        return; /* zoomed out: stripes and heads would be a smear on the box */
    float size = head_px(nv);
    for (size_t i = 0; i < nv->n_xw; i++) {
        const xwalk_t *x = &nv->xw[i];
        const link_geo_t *g = &nv->links[x->link];
        basis_t b = link_basis(nv, g);
        double w = g->n_lanes * SF_LANE_WIDTH_M;
        for (double r = -x->left_m + 0.25; r + 0.5 <= w; r += 1.0)
            band(c, &b, g->draw_len - XW_A0, g->draw_len - XW_A1, r, r + 0.5,
                 (SDL_Color){200, 200, 200, 255});
        uint8_t code = lamp_of(st, (int)x->ix, x->sg);
        SDL_Color col = shown_color(st, code);
        float hw = size * 0.35f, hh = size * 0.6f;
        for (int side = 0; side < 2; side++) {
            SDL_FPoint p = ped_head_center(nv, x, side);
            sf_canvas_rect(c, p.x - hw - 1, p.y - hh - 1, 2 * hw + 2, 2 * hh + 2, col_bar);
            sf_canvas_rect(c, p.x - hw, p.y - hh, 2 * hw, 2 * hh, col);
            if (code == SF_LAMP_GREEN) /* walking figure: a body bar, upper part */
                sf_canvas_rect(c, p.x - hw * 0.2f, p.y - hh * 0.8f, hw * 0.4f, hh * 0.5f, col_mark);
            else if (code == SF_LAMP_RED) /* raised hand: a bar across, upper part */
                sf_canvas_rect(c, p.x - hw * 0.6f, p.y - hh * 0.7f, hw * 1.2f, hh * 0.25f,
                               col_mark);
            if (!st->live && sf_lamp_flash_kind(code)) {
                float m = hw / 2;
                sf_canvas_rect(c, p.x - hw, p.y - hh, m, m, col_bar);
            }
        }
    }
}

static void draw_labels(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    const sf_scenario_t *sc = nv->sc;
    bool cjk = sf_canvas_cjk_font(c) != NULL;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        float x, y;
        sf_netview_to_screen(nv, ix->x_m, ix->y_m, &x, &y);
        float r = (float)(nv->ix_radius[i] * nv->scale);
        /* the display name, unless it needs a CJK font that is not installed */
        const char *label =
            ix->name[0] && (cjk || !sf_text_needs_cjk(ix->name)) ? ix->name : ix->id;
        /* above the box, left of the approach from the north, clear of the roads */
        sf_canvas_text(c, x - r - 4, y - r - 20, SF_TEXT_NORMAL, col_text, SF_ALIGN_RIGHT, label);
    }
    if (nv->scale < 0.8)
        return;
    for (size_t i = 0; i < st->n_veh; i++) {
        const sf_vehicle_snap_t *v = &st->veh[i];
        if (v->type != SF_VEH_BUS || v->line >= sc->n_lines || v->link_idx >= sc->n_links ||
            v->lane >= nv->links[v->link_idx].n_lanes)
            continue;
        double x, y;
        if (sf_netview_lane_point(nv, v->link_idx, v->lane, v->pos_m, &x, &y) != 0)
            continue; /* x, y unset (gcc -O3 -Werror=maybe-uninitialized saw it) */
        float sx, sy;
        sf_netview_to_screen(nv, x, y, &sx, &sy);
        sf_canvas_text(c, sx + 4, sy - 16, SF_TEXT_SMALL, (SDL_Color){150, 190, 255, 255},
                       SF_ALIGN_LEFT, sc->lines[v->line].id);
    }
}

static void draw_status(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    int w, h;
    sf_canvas_size(c, &w, &h);
    float y = (float)(h - SF_STATUS_BAR_PX);
    sf_canvas_rect(c, 0, y, (float)w, SF_STATUS_BAR_PX, col_bar);
    double tod = fmod(st->start_tod_s + st->sim_time_s, 86400.0);
    if (tod < 0)
        tod = 0;
    unsigned hh = (unsigned)(tod / 3600), mm = (unsigned)(fmod(tod, 3600) / 60),
             ss = (unsigned)fmod(tod, 60);
    char buf[256], speed[32];
    if (st->speed_factor > 0)
        snprintf(speed, sizeof speed, "x%.3g", st->speed_factor);
    else
        snprintf(speed, sizeof speed, "lockstep");
    int n = snprintf(buf, sizeof buf, "%02u:%02u:%02u  t=%.1f s  %s%s  veh %zu", hh, mm, ss,
                     st->sim_time_s, speed, st->paused ? "  PAUSED" : "", st->n_veh);
    if (st->moe.have_moe && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, "  |  delay %.1f s/veh  stops %.2f  done %u",
                 st->moe.mean_delay_s, st->moe.mean_stops, st->moe.vehicles_completed);
    sf_canvas_text(c, 8, y + 5, SF_TEXT_NORMAL, col_text, SF_ALIGN_LEFT, buf);
    char right[160];
    snprintf(right, sizeof right, "%s%s%s", nv->sc->name, st->message ? "  |  " : "",
             st->message ? st->message : "");
    sf_canvas_text(c, (float)w - 8, y + 5, SF_TEXT_NORMAL, (SDL_Color){170, 175, 185, 255},
                   SF_ALIGN_RIGHT, right);
}

void sf_netview_draw(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st)
{
    if (!nv || !c || !st)
        return;
    int w, h;
    sf_canvas_size(c, &w, &h);
    if (w != nv->w || h != nv->h) { /* window resized: keep the centre and the scale */
        nv->w = w;
        nv->h = h;
    }
    sf_canvas_clear(c, SF_COL_BACKGROUND);
    draw_roads(nv, c, st->selected_ix);
    sf_queues_update(nv->queues, st->veh, st->veh ? st->n_veh : 0);
    draw_queues(nv, c);
    draw_detectors(nv, c, st->det_presence);
    draw_stop_lines(nv, c, st);
    draw_crosswalks(nv, c, st);
    draw_arrows(nv, c);
    if (st->veh)
        draw_vehicles(nv, c, st);
    draw_heads(nv, c, st);
    if (st->veh)
        draw_labels(nv, c, st);
    else {
        sf_view_state_t none = *st;
        none.n_veh = 0;
        draw_labels(nv, c, &none);
    }
    draw_status(nv, c, st);
    sf_canvas_flush(c);
}
