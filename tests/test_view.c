/* tests/test_view.c — the viewer's drawing, checked on the pixels it produces.
 *
 * Everything renders offscreen (SDL_VIDEODRIVER=dummy, software renderer): the canvas
 * primitives, the default scenario's network with lamps set to known codes (each head's
 * pixel must show its code's colour), vehicles and detectors where they are, the
 * time-space diagram of a synthetic run (a trajectory crossing a green band), the
 * coordination diagram's measured arrivals on green, the run-record file (round trip and
 * corrupted files) and `sigflow plot` as a child process.
 */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SDL2/SDL_image.h>

#include <signal.h>
#include <zmq.h>

#include "bus.h"
#include "bus.pb-c.h"
#include "canvas.h"
#include "netview.h"
#include "viewmodel.h"
#include "palette.h"
#include "panel.h"
#include "plots.h"
#include "runrec.h"
#include "scenario.h"
#include "shot.h"
#include "sim.h"

#define DEFAULT_SCENARIO SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"

static void setup(void)
{
    setenv("SDL_VIDEODRIVER", "dummy", 1);
}

TestSuite(view, .init = setup);

static bool same(SDL_Color a, SDL_Color b)
{
    return a.r == b.r && a.g == b.g && a.b == b.b;
}

static SDL_Color px(sf_canvas_t *c, float x, float y)
{
    SDL_Color col = {0, 0, 0, 0};
    cr_assert_eq(sf_canvas_read_pixel(c, (int)floorf(x), (int)floorf(y), &col), 0,
                 "pixel %.1f,%.1f outside the canvas", (double)x, (double)y);
    return col;
}

/* Whether colour want appears within r pixels of (x, y). */
static bool near_has(sf_canvas_t *c, float x, float y, int r, SDL_Color want)
{
    int w, h;
    sf_canvas_size(c, &w, &h);
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            int xx = (int)floorf(x) + dx, yy = (int)floorf(y) + dy;
            SDL_Color col;
            if (xx >= 0 && yy >= 0 && xx < w && yy < h &&
                sf_canvas_read_pixel(c, xx, yy, &col) == 0 && same(col, want))
                return true;
        }
    return false;
}

static sf_scenario_t *load_default(void)
{
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(DEFAULT_SCENARIO, NULL, 0, &errs);
    cr_assert_not_null(sc, "cannot load %s: %s", DEFAULT_SCENARIO, errs.n ? errs.msg[0] : "?");
    return sc;
}

/* Centre the view on world point (x, y) at scale px/m. */
static void look_at(sf_netview_t *nv, int w, int h, double x, double y, double scale)
{
    sf_netview_zoom(nv, scale / sf_netview_scale(nv), (float)w / 2, (float)h / 2);
    float sx, sy;
    sf_netview_to_screen(nv, x, y, &sx, &sy);
    sf_netview_pan(nv, (float)w / 2 - sx, (float)(h - SF_STATUS_BAR_PX) / 2 - sy);
    sf_netview_to_screen(nv, x, y, &sx, &sy);
    cr_assert(fabsf(sx - (float)w / 2) < 0.5f &&
              fabsf(sy - (float)(h - SF_STATUS_BAR_PX) / 2) < 0.5f);
    cr_assert(fabs(sf_netview_scale(nv) - scale) < 1e-9);
}

/* ---- canvas -------------------------------------------------------------------- */

Test(view, canvas_draws_reads_and_saves_png)
{
    sf_canvas_t *c = sf_canvas_new_offscreen(320, 200);
    cr_assert_not_null(c, "offscreen canvas: %s", sf_canvas_last_error());
    cr_assert_str_eq(sf_canvas_backend(c), "software");
    int w, h;
    sf_canvas_size(c, &w, &h);
    cr_assert_eq(w, 320);
    cr_assert_eq(h, 200);
    SDL_Color bg = {10, 20, 30, 255}, red = {200, 10, 20, 255}, white = {255, 255, 255, 255};
    sf_canvas_clear(c, bg);
    sf_canvas_rect(c, 10, 10, 50, 30, red);
    sf_canvas_line(c, 100, 150, 300, 150, 3, white);
    cr_assert(same(px(c, 30, 20), red));
    cr_assert(same(px(c, 5, 5), bg));
    cr_assert(same(px(c, 200, 150), white));
    cr_assert(same(px(c, 200, 160), bg));
    /* text: DejaVu draws something light in its box, nothing outside */
    int tw = sf_canvas_text(c, 100, 60, SF_TEXT_LARGE, white, SF_ALIGN_LEFT, "Signal 42");
    cr_assert_gt(tw, 40);
    int lit = 0;
    for (int y = 60; y < 85; y++)
        for (int x = 100; x < 100 + tw; x++)
            lit += px(c, (float)x, (float)y).r > 128;
    cr_assert_gt(lit, 30, "text left %d light pixels", lit);
    cr_assert(same(px(c, 100 + (float)tw + 5, 70), bg));
    /* CJK text never fails: drawn with a CJK font when installed, else left out */
    char stripped[64];
    sf_text_strip_cjk("Xiantao corridor 仙桃大道 (8 signals)", stripped, sizeof stripped);
    cr_assert_str_eq(stripped, "Xiantao corridor (8 signals)");
    sf_text_strip_cjk("仙桃大道", stripped, sizeof stripped);
    cr_assert_str_eq(stripped, "");
    sf_text_strip_cjk("abc\xe4", stripped, sizeof stripped); /* truncated sequence */
    cr_assert_str_eq(stripped, "abc");
    int cw = sf_canvas_text(c, 10, 170, SF_TEXT_NORMAL, white, SF_ALIGN_LEFT, "仙桃大道");
    if (sf_canvas_cjk_font(c)) { /* e.g. fonts-wqy-microhei: four glyphs drawn */
        cr_assert_gt(cw, 30, "CJK text %d px wide with %s", cw, sf_canvas_cjk_font(c));
        int cjk_lit = 0;
        for (int y = 170; y < 190; y++)
            for (int x = 10; x < 10 + cw; x++)
                cjk_lit += px(c, (float)x, (float)y).r > 128;
        cr_assert_gt(cjk_lit, 30);
    } else { /* no CJK font: nothing drawn rather than boxes */
        cr_assert_eq(cw, 0);
    }
    cr_assert(sf_text_needs_cjk("仙桃大道 / 钱沟路"));
    cr_assert(!sf_text_needs_cjk("Avenue Émile Zola"));

    char path[] = "/tmp/sf_view_canvas_XXXXXX.png";
    int fd = mkstemps(path, 4);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(sf_canvas_save_png(c, path), 0, "%s", sf_canvas_last_error());
    SDL_Surface *s = IMG_Load(path);
    cr_assert_not_null(s, "%s", IMG_GetError());
    SDL_Surface *s2 = SDL_ConvertSurfaceFormat(s, SDL_PIXELFORMAT_ARGB8888, 0);
    cr_assert_eq(s2->w, 320);
    cr_assert_eq(s2->h, 200);
    uint32_t p = ((uint32_t *)((uint8_t *)s2->pixels + 20 * s2->pitch))[30];
    cr_assert_eq((p >> 16) & 0xFF, red.r);
    cr_assert_eq((p >> 8) & 0xFF, red.g);
    cr_assert_eq(p & 0xFF, red.b);
    SDL_FreeSurface(s2);
    SDL_FreeSurface(s);
    unlink(path);
    sf_canvas_destroy(&c);
    cr_assert_null(c);
    sf_canvas_destroy(&c); /* twice is fine */
}

Test(view, canvas_rejects_bad_arguments)
{
    errno = 0;
    cr_assert_null(sf_canvas_new_offscreen(0, 100));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(sf_canvas_new_offscreen(100, 100000));
    sf_canvas_t *c = sf_canvas_new_offscreen(50, 50);
    cr_assert_not_null(c);
    SDL_Color col;
    errno = 0;
    cr_assert_eq(sf_canvas_read_pixel(c, 50, 0, &col), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sf_canvas_read_pixel(c, -1, 0, &col), -1);
    cr_assert_eq(sf_canvas_text(c, 0, 0, (sf_text_size_t)7, col, SF_ALIGN_LEFT, "x"), -1);
    cr_assert_eq(sf_canvas_save_png(c, "/nonexistent-dir/x.png"), -1);
    cr_assert_eq(sf_canvas_save_png(c, ""), -1);
    sf_canvas_destroy(&c);
}

/* ---- network view -------------------------------------------------------------- */

Test(view, heads_show_their_lamp_codes)
{
    sf_scenario_t *sc = load_default();
    const int W = 1600, H = 900;
    sf_canvas_t *c = sf_canvas_new_offscreen(W, H);
    sf_netview_t *nv = sf_netview_new(sc, W, H);
    cr_assert_not_null(c);
    cr_assert_not_null(nv);
    uint8_t *lamps = calloc((size_t)sc->n_intersections * SF_MAX_SG, 1);
    static const uint8_t codes[] = {SF_LAMP_RED, SF_LAMP_GREEN, SF_LAMP_YELLOW,
                                    SF_LAMP_YELLOW_FLASH};
    for (uint32_t ix = 0; ix < sc->n_intersections; ix++)
        for (uint8_t g = 0; g < sc->intersections[ix].n_sg; g++)
            lamps[ix * SF_MAX_SG + g] = codes[(g + ix) % 4];
    sf_view_state_t st = {.lamps = lamps, .sim_time_s = 100, .selected_ix = -1};
    int checked = 0, flashing = 0;
    for (uint32_t ix = 0; ix < 3; ix++) {
        look_at(nv, W, H, sc->intersections[ix].x_m, sc->intersections[ix].y_m, 5.0);
        sf_netview_draw(nv, c, &st);
        for (uint32_t li = 0; li < sc->n_links; li++) {
            if (sc->links[li].to_kind != SF_NODE_INTERSECTION || sc->links[li].to_idx != ix)
                continue;
            for (uint8_t g = 0; g < sc->intersections[ix].n_sg; g++) {
                float x, y;
                if (sf_netview_head_point(nv, ix, li, g, &x, &y) != 0)
                    continue;
                uint8_t code = lamps[ix * SF_MAX_SG + g];
                SDL_Color got = px(c, x, y), want = sf_lamp_color(code);
                cr_assert(same(got, want),
                          "I%u link %s group %s code 0x%02X: pixel (%d,%d,%d), want (%d,%d,%d)",
                          ix + 1, sc->links[li].id, sc->intersections[ix].sg[g].id, code, got.r,
                          got.g, got.b, want.r, want.g, want.b);
                if (sf_lamp_flash_kind(code)) { /* still picture: dark corner mark */
                    SDL_Color corner = px(c, x - 5, y - 5);
                    cr_assert(!same(corner, want), "flashing head has no mark");
                    flashing++;
                }
                checked++;
            }
        }
    }
    cr_assert_geq(checked, 12, "only %d heads found", checked);
    cr_assert_gt(flashing, 0);
    /* a lamp change shows on the next frame; unknown heads are grey */
    memset(lamps, SF_LAMP_GREEN, (size_t)sc->n_intersections * SF_MAX_SG);
    sf_netview_draw(nv, c, &st);
    float x, y;
    for (uint32_t li = 0; li < sc->n_links; li++)
        for (uint8_t g = 0; g < SF_MAX_SG; g++)
            if (sf_netview_head_point(nv, 2, li, g, &x, &y) == 0)
                cr_assert(same(px(c, x, y), SF_COL_LAMP_GREEN));
    st.lamps = NULL;
    sf_netview_draw(nv, c, &st);
    for (uint32_t li = 0; li < sc->n_links; li++)
        for (uint8_t g = 0; g < SF_MAX_SG; g++)
            if (sf_netview_head_point(nv, 2, li, g, &x, &y) == 0)
                cr_assert(same(px(c, x, y), SF_COL_LAMP_NONE));
    /* head lookups refuse what does not exist */
    cr_assert_eq(sf_netview_head_point(nv, 999, 0, 0, &x, &y), -1);
    cr_assert_eq(sf_netview_head_point(nv, 0, 999, 0, &x, &y), -1);
    free(lamps);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    sf_scenario_destroy(&sc);
}

Test(view, pedestrian_heads_show_walk_clearance_and_dont_walk)
{
    sf_scenario_t *sc = load_default();
    const int W = 1600, H = 900;
    sf_canvas_t *c = sf_canvas_new_offscreen(W, H);
    sf_netview_t *nv = sf_netview_new(sc, W, H);
    cr_assert(c && nv);
    uint8_t *lamps = calloc((size_t)sc->n_intersections * SF_MAX_SG, 1);
    /* walk, pedestrian clearance (flashing don't walk), don't walk, by group */
    static const uint8_t codes[] = {SF_LAMP_GREEN, SF_LAMP_RED_FLASH, SF_LAMP_RED};
    for (uint32_t ix = 0; ix < sc->n_intersections; ix++)
        for (uint8_t g = 0; g < sc->intersections[ix].n_sg; g++)
            lamps[ix * SF_MAX_SG + g] = codes[(g + ix) % 3];
    sf_view_state_t st = {.lamps = lamps, .sim_time_s = 100, .selected_ix = -1};
    int checked = 0, walk = 0, clear = 0, dont = 0, groups = 0;
    for (uint32_t ix = 0; ix < sc->n_intersections; ix++) {
        const sf_intersection_t *in = &sc->intersections[ix];
        look_at(nv, W, H, in->x_m, in->y_m, 5.0);
        sf_netview_draw(nv, c, &st);
        for (uint8_t g = 0; g < in->n_sg; g++) {
            float x, y;
            if (in->sg[g].kind != SF_SG_PEDESTRIAN) {
                cr_assert_eq(sf_netview_ped_head_point(nv, ix, g, 0, &x, &y), -1);
                continue;
            }
            groups++;
            int n = 0;
            for (; sf_netview_ped_head_point(nv, ix, g, n, &x, &y) == 0; n++) {
                uint8_t code = lamps[ix * SF_MAX_SG + g];
                SDL_Color got = px(c, x, y), want = sf_lamp_color(code);
                cr_assert(same(got, want),
                          "%s %s head %d code 0x%02X: pixel (%d,%d,%d), want (%d,%d,%d)", in->id,
                          in->sg[g].id, n, code, got.r, got.g, got.b, want.r, want.g, want.b);
                walk += code == SF_LAMP_GREEN;
                clear += code == SF_LAMP_RED_FLASH;
                dont += code == SF_LAMP_RED;
                checked++;
            }
            cr_assert_eq(n % 2, 0, "%s %s: heads come in pairs (both kerbs)", in->id, in->sg[g].id);
            cr_assert_gt(n, 0, "%s %s: a pedestrian group without a crosswalk", in->id,
                         in->sg[g].id);
        }
    }
    cr_assert_geq(groups, 4);
    cr_assert(walk && clear && dont, "walk %d, clearance %d, don't walk %d", walk, clear, dont);
    /* a change of lamp shows on the next frame: all don't walk */
    memset(lamps, SF_LAMP_RED, (size_t)sc->n_intersections * SF_MAX_SG);
    const sf_intersection_t *i0 = &sc->intersections[0];
    look_at(nv, W, H, i0->x_m, i0->y_m, 5.0);
    sf_netview_draw(nv, c, &st);
    for (uint8_t g = 0; g < i0->n_sg; g++) {
        float x, y;
        for (int n = 0; sf_netview_ped_head_point(nv, 0, g, n, &x, &y) == 0; n++)
            cr_assert(same(px(c, x, y), SF_COL_LAMP_RED));
    }
    cr_assert_eq(sf_canvas_save_png(c, "/tmp/sf_test_ped_heads.png"), 0);
    float x, y;
    cr_assert_eq(sf_netview_ped_head_point(nv, 999, 0, 0, &x, &y), -1);
    cr_assert_eq(errno, EINVAL);
    free(lamps);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    sf_scenario_destroy(&sc);
}

/* Screen point of a lane at pos_m. */
static void lane_px(sf_netview_t *nv, uint32_t link, uint8_t lane, float pos, float *x, float *y)
{
    double wx, wy;
    cr_assert_eq(sf_netview_lane_point(nv, link, lane, pos, &wx, &wy), 0);
    sf_netview_to_screen(nv, wx, wy, x, y);
}

Test(view, vehicles_and_detectors_are_drawn_where_they_are)
{
    sf_scenario_t *sc = load_default();
    const int W = 1200, H = 800;
    sf_canvas_t *c = sf_canvas_new_offscreen(W, H);
    sf_netview_t *nv = sf_netview_new(sc, W, H);
    /* link I1-I2 (eastbound between the first two signals) */
    uint32_t link = UINT32_MAX;
    for (uint32_t li = 0; li < sc->n_links; li++)
        if (strcmp(sc->links[li].id, "I1-I2") == 0)
            link = li;
    cr_assert_neq(link, UINT32_MAX);
    const sf_link_t *l = &sc->links[link];
    double wx, wy;
    sf_netview_lane_point(nv, link, 0, l->length_m - 60, &wx, &wy);
    look_at(nv, W, H, wx, wy, 5.0);
    sf_vehicle_snap_t veh[3] = {
        {1, link, 0, SF_VEH_CAR, SF_SIM_NO_LINE, l->length_m - 40, 0.0f},
        {2, link, 1, SF_VEH_CAR, SF_SIM_NO_LINE, l->length_m - 120, l->speed_mps},
        {3, link, 2, SF_VEH_BUS, 0, l->length_m - 70, 5.0f},
    };
    uint64_t *det = calloc(sc->n_intersections, sizeof *det);
    /* occupy every detector of I2 on this link, lane 1 only */
    int det_idx = -1;
    const sf_intersection_t *i2 = &sc->intersections[1];
    for (uint8_t d = 0; d < i2->n_det; d++)
        if (i2->det[d].link_idx == link && i2->det[d].lane == 1) {
            det[1] |= 1ull << d;
            det_idx = d;
        }
    cr_assert_geq(det_idx, 0, "no detector on lane 1 of I1-I2");
    sf_view_state_t st = {.veh = veh, .n_veh = 3, .det_presence = det, .selected_ix = -1};
    sf_netview_draw(nv, c, &st);
    float x, y;
    lane_px(nv, link, 0, veh[0].pos_m - 2.25f, &x, &y);
    cr_assert(same(px(c, x, y), sf_speed_color(0)), "stopped car not red at its place");
    lane_px(nv, link, 1, veh[1].pos_m - 2.25f, &x, &y);
    cr_assert(same(px(c, x, y), sf_speed_color(1)), "free-flowing car not green at its place");
    lane_px(nv, link, 2, veh[2].pos_m - 0.5f, &x, &y);
    cr_assert(same(px(c, x, y), SF_COL_BUS), "bus not drawn in bus colour");
    /* nothing where no vehicle is */
    lane_px(nv, link, 0, veh[0].pos_m - 20, &x, &y);
    cr_assert(!same(px(c, x, y), sf_speed_color(0)));
    /* the occupied detector is highlighted (mid-zone: the zone lies distance_m - length_m ..
     * distance_m before the stop line), its idle neighbour on lane 0 is not */
    const sf_detector_t *dd = &i2->det[det_idx];
    lane_px(nv, link, 1, l->length_m - dd->distance_m + dd->length_m / 2, &x, &y);
    cr_assert(same(px(c, x, y), SF_COL_DET_ON));
    lane_px(nv, link, 0, l->length_m - dd->distance_m + dd->length_m / 2, &x, &y);
    cr_assert(!same(px(c, x, y), SF_COL_DET_ON));
    /* the gap between two stopped cars is road while they stand 40 m from the line, and
     * queue (reddish) once they stand at the line */
    SDL_Color road = px(c, x, y);
    veh[1] = veh[0];
    veh[1].pos_m = veh[0].pos_m - 8;
    sf_netview_draw(nv, c, &st);
    lane_px(nv, link, 0, veh[0].pos_m - 6.75f, &x, &y);
    SDL_Color gap = px(c, x, y);
    cr_assert(gap.r <= gap.g + 10, "queue drawn 40 m from the stop line");
    veh[0].pos_m = l->length_m - 13; /* behind the lane arrows, within 15 m of the line */
    veh[1].pos_m = l->length_m - 21;
    sf_netview_draw(nv, c, &st);
    lane_px(nv, link, 0, veh[0].pos_m - 6.75f, &x, &y);
    gap = px(c, x, y);
    cr_assert(gap.r > gap.g + 30 && !same(gap, road), "no queue band: (%d,%d,%d)", gap.r, gap.g,
              gap.b);
    free(det);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    sf_scenario_destroy(&sc);
}

Test(view, simulated_vehicles_are_drawn_at_their_positions)
{
    sf_scenario_t *sc = load_default();
    sf_sim_t *sim = sf_sim_new(sc);
    cr_assert_not_null(sim);
    uint8_t green[SF_MAX_SG];
    memset(green, SF_LAMP_GREEN, sizeof green);
    for (uint32_t ix = 0; ix < sc->n_intersections; ix++)
        sf_sim_set_lamps(sim, ix, green, sc->intersections[ix].n_sg);
    int steps = getenv("SIGFLOW_SANITIZED") ? 400 : 900;
    for (int k = 0; k < steps; k++)
        sf_sim_step(sim);
    static sf_vehicle_snap_t veh[20000];
    size_t n = sf_sim_snapshot(sim, veh, 20000);
    cr_assert_gt(n, 10, "the sim has only %zu vehicles after %d steps", n, steps);
    const int W = 1000, H = 700;
    sf_canvas_t *c = sf_canvas_new_offscreen(W, H);
    sf_netview_t *nv = sf_netview_new(sc, W, H);
    int checked = 0;
    for (size_t i = 0; i < n && checked < 5; i++) {
        const sf_vehicle_snap_t *v = &veh[i];
        const sf_link_t *l = &sc->links[v->link_idx];
        if (v->type != SF_VEH_CAR || v->pos_m < 30 || v->pos_m > l->length_m - 40)
            continue;
        double wx, wy;
        sf_netview_lane_point(nv, v->link_idx, v->lane, v->pos_m - 2.25f, &wx, &wy);
        look_at(nv, W, H, wx, wy, 6.0);
        sf_view_state_t st = {.veh = veh, .n_veh = n, .selected_ix = -1};
        sf_netview_draw(nv, c, &st);
        SDL_Color want = sf_speed_color(l->speed_mps > 0 ? v->speed_mps / l->speed_mps : 0);
        SDL_Color got = px(c, (float)W / 2, (float)(H - SF_STATUS_BAR_PX) / 2);
        cr_assert(same(got, want), "vehicle %u on %s lane %u at %.1f m: pixel (%d,%d,%d)", v->id,
                  l->id, v->lane, (double)v->pos_m, got.r, got.g, got.b);
        checked++;
    }
    cr_assert_gt(checked, 0);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    sf_sim_destroy(&sim);
    sf_scenario_destroy(&sc);
}

Test(view, panel_shows_active_phase_and_requests)
{
    sf_scenario_t *sc = load_default();
    sf_canvas_t *c = sf_canvas_new_offscreen(SF_PANEL_W + 20, SF_PANEL_H + 20);
    sf_ix_status_t st;
    sf_ix_status_init(&st);
    cr_assert_eq(st.comms, -1);
    sf_panel_draw(c, sc, 0, &st, 10, 10);
    int greens = 0;
    for (int y = 10; y < 10 + SF_PANEL_H; y += 2)
        for (int x = 10; x < 10 + SF_PANEL_W; x += 2)
            greens += same(px(c, (float)x, (float)y), SF_COL_LAMP_GREEN);
    cr_assert_eq(greens, 0, "nothing is green before any lamp state");
    st.known = true;
    st.greens = 1u << 1; /* phases[1] */
    st.plan = sc->intersections[0].plans[0].id;
    st.control_mode = 0x12;
    for (int k = 0; k < 8; k++)
        sf_ix_status_note_request(&st, (uint32_t)k + 1, SF_REQ_PENDING, k, "bus");
    cr_assert_eq(st.n_req, SF_PANEL_MAX_REQ);
    cr_assert_eq(st.req[0].id, 8u); /* latest first, oldest dropped */
    sf_ix_status_note_request(&st, 8, SF_REQ_GRANTED, 9, "extension 5 s");
    cr_assert_eq(st.req[0].state, SF_REQ_GRANTED);
    cr_assert_eq(st.n_req, SF_PANEL_MAX_REQ);
    sf_panel_draw(c, sc, 0, &st, 10, 10);
    for (int y = 10; y < 10 + SF_PANEL_H; y += 2)
        for (int x = 10; x < 10 + SF_PANEL_W; x += 2)
            greens += same(px(c, (float)x, (float)y), SF_COL_LAMP_GREEN);
    cr_assert_gt(greens, 50, "the green phase box is missing");
    char buf[64];
    cr_assert_str_eq(sf_control_mode_name(0x12, buf, sizeof buf), "centre coordinated");
    cr_assert_str_eq(sf_control_mode_name(0x31, buf, sizeof buf), "flash");
    cr_assert_str_eq(sf_fault_name(0x10, buf, sizeof buf), "green conflict (0x10)");
    sf_canvas_destroy(&c);
    sf_scenario_destroy(&sc);
}

/* ---- run record and plots ------------------------------------------------------ */

/* A synthetic record on the default corridor: lamps of I2's eastbound through group red
 * 0-20 s, green 20-50 s, yellow 50-53 s, red after; vehicle 1 drives I1 -> I2 at 14 m/s
 * reaching I2's stop line at 35 s (on green), vehicle 2 at 10 s (on red); a westbound bus. */
typedef struct {
    sf_runrec_t *rec;
    uint32_t eb_link;  /* I1 -> I2 */
    uint8_t eb_sg;     /* its through group */
    double t_start[2]; /* when each eastbound vehicle enters the link */
} synth_t;

static synth_t synth_new(const sf_scenario_t *sc)
{
    synth_t s;
    s.rec = sf_runrec_new(sc, 1.0);
    cr_assert_not_null(s.rec);
    cr_assert_eq(sf_runrec_approach(s.rec, 1, +1, &s.eb_link, &s.eb_sg), 0);
    cr_assert_str_eq(sc->links[s.eb_link].id, "I1-I2");
    cr_assert_eq(sf_runrec_link_dir(s.rec, s.eb_link), 1);
    float L = sc->links[s.eb_link].length_m;
    s.t_start[0] = 35 - L / 14.0;
    s.t_start[1] = 10 - L / 14.0;
    uint32_t wb = UINT32_MAX;
    for (uint32_t li = 0; li < sc->n_links; li++)
        if (strcmp(sc->links[li].id, "I2-I1") == 0)
            wb = li;
    cr_assert_neq(wb, UINT32_MAX);
    cr_assert_eq(sf_runrec_link_dir(s.rec, wb), -1);
    uint8_t codes[SF_MAX_SG];
    for (int t = -40; t <= 80; t++) {
        memset(codes, SF_LAMP_RED, sizeof codes);
        codes[s.eb_sg] = t < 20   ? SF_LAMP_RED
                         : t < 50 ? SF_LAMP_GREEN
                         : t < 53 ? SF_LAMP_YELLOW
                                  : SF_LAMP_RED;
        cr_assert_geq(sf_runrec_add_lamps(s.rec, t, 1, codes, sc->intersections[1].n_sg), 0);
        sf_vehicle_snap_t v[3];
        size_t n = 0;
        for (int k = 0; k < 2; k++) {
            double pos = 14.0 * (t - s.t_start[k]);
            if (pos >= 0 && pos < L)
                v[n++] = (sf_vehicle_snap_t){(uint32_t)k + 1, s.eb_link,  0,    SF_VEH_CAR,
                                             SF_SIM_NO_LINE,  (float)pos, 14.0f};
        }
        double bpos = 10.0 * t;
        if (bpos >= 0 && bpos < sc->links[wb].length_m)
            v[n++] = (sf_vehicle_snap_t){100, wb, 0, SF_VEH_BUS, 0, (float)bpos, 10.0f};
        cr_assert_eq(sf_runrec_add_snapshot(s.rec, t, v, n), 1);
    }
    return s;
}

Test(view, time_space_diagram_shows_green_band_and_trajectory)
{
    sf_scenario_t *sc = load_default();
    synth_t s = synth_new(sc);
    sf_canvas_t *c = sf_canvas_new_offscreen(1400, 800);
    sf_plot_frame_t f;
    cr_assert_eq(sf_plot_time_space(c, s.rec, 0, 80, &f), 0);
    double d2 = sf_runrec_ix_distance(s.rec, 1), d1 = sf_runrec_ix_distance(s.rec, 0);
    cr_assert_gt(d2, d1);
    float x, y;
    float below = SF_TSD_BAR_PX / 2.0f + 1; /* eastbound bar */
    sf_plot_map(&f, 35, d2, &x, &y);
    cr_assert(same(px(c, x, y + below), SF_COL_LAMP_GREEN), "no green bar at I2, t = 35 s");
    sf_plot_map(&f, 10, d2, &x, &y);
    cr_assert(same(px(c, x, y + below), SF_COL_LAMP_RED), "no red bar at I2, t = 10 s");
    sf_plot_map(&f, 51.5, d2, &x, &y);
    cr_assert(same(px(c, x, y + below), SF_COL_LAMP_YELLOW), "no yellow bar at I2, t = 51.5 s");
    /* the trajectory of vehicle 1 passes mid-link at its time, and reaches the green band */
    double tmid = s.t_start[0] + sc->links[s.eb_link].length_m / 2 / 14.0;
    double dmid = sf_runrec_distance(s.rec, s.eb_link, sc->links[s.eb_link].length_m / 2);
    sf_plot_map(&f, tmid, dmid, &x, &y);
    cr_assert(near_has(c, x, y, 1, SF_COL_TRAJ_POS), "no eastbound trajectory at (%.1f s, %.0f m)",
              tmid, dmid);
    sf_plot_map(&f, 34, sf_runrec_distance(s.rec, s.eb_link, (float)(14.0 * (34 - s.t_start[0]))),
                &x, &y);
    cr_assert(near_has(c, x, y, 1, SF_COL_TRAJ_POS));
    /* nowhere near: empty */
    sf_plot_map(&f, tmid, d1 - 150, &x, &y);
    cr_assert(!near_has(c, x, y, 1, SF_COL_TRAJ_POS));
    /* the westbound bus, distinct colour */
    sf_plot_map(&f, 20, sf_runrec_distance(s.rec, 3, 200), &x, &y); /* link 3 = I2-I1 */
    cr_assert_str_eq(sc->links[3].id, "I2-I1");
    cr_assert(near_has(c, x, y, 2, SF_COL_TRAJ_BUS_NEG), "no westbound bus trajectory");
    sf_canvas_destroy(&c);
    sf_runrec_destroy(&s.rec);
    sf_scenario_destroy(&sc);
}

Test(view, coordination_diagram_counts_arrivals_on_green)
{
    sf_scenario_t *sc = load_default();
    synth_t s = synth_new(sc);
    int g = -1;
    int n = sf_plot_arrivals(s.rec, 1, +1, &g);
    cr_assert_eq(n, 2, "arrivals %d", n);
    cr_assert_eq(g, 1, "arrivals on green %d", g);
    cr_assert_eq(sf_plot_arrivals(s.rec, 1, -1, &g), 0); /* the bus does not reach I1's line... */
    sf_canvas_t *c = sf_canvas_new_offscreen(1200, 900);
    sf_plot_frame_t fr[2];
    cr_assert_eq(sf_plot_coordination(c, s.rec, 1, fr), 0);
    cr_assert_gt(fr[0].w, 0);
    /* the cycle starting at red (t = -40): green from 60 s into it (t = 20) */
    float x, y;
    sf_plot_map(&fr[0], 5, 72, &x, &y); /* off the grid lines (every 10) */
    cr_assert(same(px(c, x, y), ((SDL_Color){200, 238, 200, 255})), "no green band");
    sf_plot_map(&fr[0], 5, 33, &x, &y);
    cr_assert(same(px(c, x, y), ((SDL_Color){250, 215, 215, 255})), "no red band");
    errno = 0;
    cr_assert_eq(sf_plot_coordination(c, s.rec, 999, fr), -1);
    sf_canvas_destroy(&c);
    sf_runrec_destroy(&s.rec);
    sf_scenario_destroy(&sc);
}

Test(view, queue_plot_and_queue_measure)
{
    sf_scenario_t *sc = load_default();
    sf_runrec_t *rec = sf_runrec_new(sc, 1.0);
    uint32_t link;
    uint8_t sg;
    cr_assert_eq(sf_runrec_approach(rec, 1, +1, &link, &sg), 0);
    float L = sc->links[link].length_m;
    /* three stopped cars from the stop line, 7 m apart: queue to the last one's rear */
    sf_vehicle_snap_t v[4] = {
        {1, link, 0, SF_VEH_CAR, SF_SIM_NO_LINE, L - 1, 0},
        {2, link, 0, SF_VEH_CAR, SF_SIM_NO_LINE, L - 8, 0.2f},
        {3, link, 0, SF_VEH_CAR, SF_SIM_NO_LINE, L - 15, 0},
        {4, link, 0, SF_VEH_CAR, SF_SIM_NO_LINE, L - 100, 0}, /* far behind: not queued */
    };
    cr_assert_eq(sf_runrec_add_snapshot(rec, 0, v, 4), 1);
    cr_assert_eq(sf_runrec_add_snapshot(rec, 0.5, v, 4), 0); /* < every_s: skipped */
    cr_assert_eq(sf_runrec_add_snapshot(rec, 1, v, 1), 1);
    errno = 0;
    cr_assert_eq(sf_runrec_add_snapshot(rec, 0.2, v, 1), -1); /* backwards */
    cr_assert_eq(errno, EINVAL);
    uint8_t codes[2] = {SF_LAMP_RED, SF_LAMP_GREEN};
    cr_assert_eq(sf_runrec_add_lamps(rec, 5, 1, codes, 2), 2);
    cr_assert_eq(sf_runrec_add_lamps(rec, 6, 1, codes, 2), 0);  /* no change */
    cr_assert_eq(sf_runrec_add_lamps(rec, 4, 1, codes, 2), -1); /* before the last change */
    cr_assert_eq(sf_runrec_add_lamps(rec, 7, 999, codes, 2), -1);
    cr_assert_eq(sf_runrec_add_lamps(rec, 7, 1, codes, SF_MAX_SG + 1), -1);
    /* two intersections change at one step whose time rounds up when stored as a float
     * (3 x 0.1 s + 10 s): the second is recorded, not refused as earlier */
    double tk = 10.0 + 3 * 0.1;
    cr_assert_gt((double)(float)tk, tk);
    uint8_t codes2[2] = {SF_LAMP_GREEN, SF_LAMP_RED};
    cr_assert_eq(sf_runrec_add_lamps(rec, tk, 1, codes2, 2), 2);
    cr_assert_eq(sf_runrec_add_lamps(rec, tk, 2, codes2, 2), 2);
    double t;
    float q;
    cr_assert_eq(sf_runrec_queue(rec, 0, link, &t, &q), 0);
    float len = sc->demand.vtype[SF_VEH_CAR].length_m;
    cr_assert_float_eq(q, 15 + len, 1e-3, "queue %f", (double)q);
    cr_assert_eq(sf_runrec_queue(rec, 1, link, &t, &q), 0);
    cr_assert_float_eq(q, 1 + len, 1e-3);
    cr_assert_eq(t, 1.0);
    sf_canvas_t *c = sf_canvas_new_offscreen(900, 600);
    sf_plot_frame_t f;
    cr_assert_eq(sf_plot_queues(c, rec, 1, &f), 0);
    cr_assert_gt(f.v1, 15 + len);
    sf_canvas_destroy(&c);
    sf_runrec_destroy(&rec);
    sf_scenario_destroy(&sc);
}

/* A new empty temporary file named /tmp/sf_view_XXXXXX<suffix>, its name in buf. */
#define TMP_LEN 64
static char *tmpfile_path(char *buf, const char *suffix)
{
    snprintf(buf, TMP_LEN, "/tmp/sf_view_XXXXXX%s", suffix);
    int fd = mkstemps(buf, (int)strlen(suffix));
    cr_assert_geq(fd, 0);
    close(fd);
    return buf;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void truncate_copy(const char *from, const char *to, long keep, long flip_at)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b);
    for (long i = 0; i < keep; i++) {
        int ch = fgetc(a);
        if (ch == EOF)
            break;
        if (i >= flip_at && i < flip_at + 4)
            ch = 0xFF;
        fputc(ch, b);
    }
    fclose(a);
    fclose(b);
}

Test(view, run_record_file_round_trip_and_corruption)
{
    sf_scenario_t *sc = load_default();
    synth_t s = synth_new(sc);
    char err[512];
    char pbuf[TMP_LEN], *path = tmpfile_path(pbuf, ".sfrun");
    cr_assert_eq(sf_runrec_save(s.rec, path, err, sizeof err), 0, "%s", err);
    char spath[256];
    cr_assert_eq(sf_runrec_peek_scenario(path, spath, sizeof spath, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(spath, sc->path);
    sf_runrec_t *r2 = sf_runrec_load(sc, path, err, sizeof err);
    cr_assert_not_null(r2, "%s", err);
    cr_assert_eq(sf_runrec_n_points(r2), sf_runrec_n_points(s.rec));
    cr_assert_eq(sf_runrec_n_lamp_changes(r2), sf_runrec_n_lamp_changes(s.rec));
    cr_assert_eq(sf_runrec_n_queue_samples(r2), sf_runrec_n_queue_samples(s.rec));
    for (size_t i = 0; i < sf_runrec_n_points(r2); i++) {
        float t1, t2, p1, p2;
        uint32_t l1, l2;
        sf_runrec_point(s.rec, i, &t1, NULL, &l1, &p1, NULL, NULL);
        sf_runrec_point(r2, i, &t2, NULL, &l2, &p2, NULL, NULL);
        cr_assert(t1 == t2 && l1 == l2 && p1 == p2);
    }
    cr_assert_eq(sf_runrec_lamp_at(r2, 1, s.eb_sg, 35), SF_LAMP_GREEN);
    cr_assert_eq(sf_runrec_lamp_at(r2, 1, s.eb_sg, 10), SF_LAMP_RED);
    sf_runrec_destroy(&r2);

    long size = file_size(path);
    char bbuf[TMP_LEN], *bad = tmpfile_path(bbuf, ".sfrun");
    truncate_copy(path, bad, size - 3, -10);
    cr_assert_null(sf_runrec_load(sc, bad, err, sizeof err));
    cr_assert(strstr(err, "truncated"), "%s", err);
    truncate_copy(path, bad, size, 0); /* magic overwritten */
    cr_assert_null(sf_runrec_load(sc, bad, err, sizeof err));
    cr_assert(strstr(err, "not a sigflow run record"), "%s", err);
    /* the first point's link index sits after the header and the t and veh arrays */
    size_t np = sf_runrec_n_points(s.rec);
    long hdr = 8 + 4 + 4 + 4 + 8 + 4 + (long)strlen(sc->path) + 8 + 8 + 8 + 4;
    truncate_copy(path, bad, size, hdr + (long)np * 8);
    cr_assert_null(sf_runrec_load(sc, bad, err, sizeof err));
    cr_assert(strstr(err, "point 0: bad link"), "%s", err);
    cr_assert_null(sf_runrec_load(sc, "/nonexistent/x.sfrun", err, sizeof err));
    cr_assert(strstr(err, "No such file"), "%s", err);
    /* a record of another scenario */
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *single =
        sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, &errs);
    cr_assert_not_null(single);
    cr_assert_null(sf_runrec_load(single, path, err, sizeof err));
    cr_assert(strstr(err, "recorded for a scenario with"), "%s", err);
    sf_scenario_destroy(&single);
    unlink(bad);
    unlink(path);
    sf_runrec_destroy(&s.rec);
    sf_scenario_destroy(&sc);
}

/* Run `sigflow ARGS...`; returns the exit status, stderr into errbuf. */
static int run_sigflow(char *errbuf, size_t len, const char *const *args)
{
    child_t *c = child_new();
    int st = child_run_args(c, args, 120);
    snprintf(errbuf, len, "%.*s", (int)(len - 1), c->err);
    free(c);
    return st;
}

Test(view, sigflow_plot_writes_pngs_and_refuses_bad_input)
{
    sf_scenario_t *sc = load_default();
    synth_t s = synth_new(sc);
    char err[1024];
    char rbuf[TMP_LEN], pngbuf[TMP_LEN];
    char *run = tmpfile_path(rbuf, ".sfrun"), *png = tmpfile_path(pngbuf, ".png");
    cr_assert_eq(sf_runrec_save(s.rec, run, err, sizeof err), 0);
    const char *a1[] = {"plot", "time-space", run, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, a1), 0, "%s", err);
    SDL_Surface *img = IMG_Load(png);
    cr_assert_not_null(img);
    cr_assert_eq(img->w, SF_SHOT_W);
    cr_assert_eq(img->h, SF_SHOT_H);
    SDL_Surface *argb = SDL_ConvertSurfaceFormat(img, SDL_PIXELFORMAT_ARGB8888, 0);
    long green = 0;
    for (int y = 0; y < argb->h; y++)
        for (int x = 0; x < argb->w; x++) {
            uint32_t p = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x];
            SDL_Color col = {(uint8_t)(p >> 16), (uint8_t)(p >> 8), (uint8_t)p, 255};
            green += same(col, SF_COL_LAMP_GREEN);
        }
    cr_assert_gt(green, 100, "the time-space PNG has no green band");
    SDL_FreeSurface(argb);
    SDL_FreeSurface(img);
    const char *a2[] = {"plot", "coordination", run,      "--out",   png,
                        "--ix", "I2",           "--size", "800x600", NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, a2), 0, "%s", err);
    img = IMG_Load(png);
    cr_assert(img && img->w == 800 && img->h == 600);
    SDL_FreeSurface(img);
    const char *a3[] = {"plot", "queues", run, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, a3), 0, "%s", err);
    /* usage errors: 2, with the reason */
    const char *b1[] = {"plot", "histogram", run, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, b1), 2);
    cr_assert(strstr(err, "unknown plot 'histogram'"), "%s", err);
    const char *b2[] = {"plot", "time-space", run, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, b2), 2);
    cr_assert(strstr(err, "--out"), "%s", err);
    const char *b3[] = {"plot", "queues", run, "--out", png, "--ix", "NOPE", NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, b3), 2);
    cr_assert(strstr(err, "NOPE"), "%s", err);
    /* bad input files: 1 */
    const char *b4[] = {"plot", "time-space", DEFAULT_SCENARIO, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, b4), 1);
    cr_assert(strstr(err, "JSON report"), "%s", err);
    const char *b5[] = {"plot", "time-space", "/nonexistent.sfrun", "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, b5), 1);
    cr_assert(strstr(err, "/nonexistent.sfrun"), "%s", err);
    unlink(run);
    unlink(png);
    sf_runrec_destroy(&s.rec);
    sf_scenario_destroy(&sc);
}

/* Pixels of exactly colour col in a PNG (ARGB8888 after conversion); -1 when unreadable. */
static long png_count(const char *png, SDL_Color col, int *w, int *h)
{
    SDL_Surface *img = IMG_Load(png);
    if (!img)
        return -1;
    SDL_Surface *argb = SDL_ConvertSurfaceFormat(img, SDL_PIXELFORMAT_ARGB8888, 0);
    *w = img->w;
    *h = img->h;
    SDL_FreeSurface(img);
    if (!argb)
        return -1;
    long n = 0;
    for (int y = 0; y < argb->h; y++)
        for (int x = 0; x < argb->w; x++) {
            uint32_t p = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x];
            SDL_Color c = {(uint8_t)(p >> 16), (uint8_t)(p >> 8), (uint8_t)p, 255};
            n += same(c, col);
        }
    SDL_FreeSurface(argb);
    return n;
}

/* `sigflow run --report R --runrec X` then `sigflow plot KIND R`: the plot is drawn from
 * the run record the report names, filled by the simulator of that very run. */
Test(view, sigflow_plot_from_a_run_report, .timeout = 120)
{
    char dir[] = "/tmp/sf_plotrep_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char rep[96], rec[96], png[96], bare[96], err[2048];
    snprintf(rep, sizeof rep, "%s/R.json", dir);
    snprintf(rec, sizeof rec, "%s/X.sfrun", dir);
    snprintf(png, sizeof png, "%s/P.png", dir);
    snprintf(bare, sizeof bare, "%s/bare.json", dir);
    /* 400 s: past the scenario's 300 s warm-up, several cycles of every signal */
    const char *r1[] = {"run", DEFAULT_SCENARIO, "--headless", "--duration", "400", "--report",
                        rep,   "--runrec",       rec,          NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, r1), 0, "%s", err);
    json_error_t je;
    json_t *j = json_load_file(rep, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "run_record")), rec);
    json_decref(j);
    /* the record covers the whole run: a queue sample a second, lamps, trajectories */
    sf_scenario_t *sc = load_default();
    sf_runrec_t *r = sf_runrec_load(sc, rec, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    double t0, t1;
    sf_runrec_span(r, &t0, &t1);
    cr_assert(t0 < 1.0 && t1 > 399.0, "span %g..%g", t0, t1);
    cr_assert_geq(sf_runrec_n_queue_samples(r), 399);
    cr_assert_gt(sf_runrec_n_points(r), 10000);
    /* every signal on the arterial changed its through lamp: not a constant record */
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        uint32_t link;
        uint8_t sg;
        if (!sf_runrec_ix_on_arterial(r, i) || sf_runrec_approach(r, i, +1, &link, &sg) != 0)
            continue;
        int changes = 0;
        for (size_t c = 0; c < sf_runrec_n_lamp_changes(r); c++) {
            const sf_lamp_change_t *lc = sf_runrec_lamp_change(r, c);
            changes += lc->ix == i && lc->sg == sg;
        }
        cr_assert_geq(changes, 4, "intersection %u: %d through lamp changes", i, changes);
    }
    sf_runrec_destroy(&r);
    sf_scenario_destroy(&sc);
    /* the time-space picture from the report: green bands, red, both directions drawn */
    const char *p1[] = {"plot", "time-space", rep, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, p1), 0, "%s", err);
    int w = 0, h = 0;
    long green = png_count(png, SF_COL_LAMP_GREEN, &w, &h);
    cr_assert_eq(w, SF_SHOT_W);
    cr_assert_eq(h, SF_SHOT_H);
    cr_assert_gt(green, 100, "the time-space PNG has no green band");
    cr_assert_gt(png_count(png, SF_COL_LAMP_RED, &w, &h), 100, "no red");
    /* trajectories, well beyond the legend's short swatch */
    cr_assert_gt(png_count(png, SF_COL_TRAJ_POS, &w, &h), 2000);
    cr_assert_gt(png_count(png, SF_COL_TRAJ_NEG, &w, &h), 2000);
    const char *p2[] = {"plot", "coordination", rep, "--out", png, "--size", "800x600", NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, p2), 0, "%s", err);
    /* the Purdue diagram's pale green and red bands (as coordination_plot checks) */
    cr_assert_gt(png_count(png, ((SDL_Color){200, 238, 200, 255}), &w, &h), 1000);
    cr_assert(w == 800 && h == 600);
    cr_assert_gt(png_count(png, ((SDL_Color){250, 215, 215, 255}), &w, &h), 1000);
    /* a record that could not be saved is refused before the run starts */
    const char *r3[] = {"run",      DEFAULT_SCENARIO,       "--headless",
                        "--runrec", "/nonexistent/x.sfrun", NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, r3), 2);
    cr_assert(strstr(err, "/nonexistent"), "%s", err);
    cr_assert_null(strstr(err, "ready"), "the run started: %s", err);
    /* a report without a run record: refused, saying how to get one */
    unlink(png);
    const char *r2[] = {"run",   DEFAULT_SCENARIO, "--headless", "--duration", "30",
                        "--set", "run.warmup_s=0", "--report",   bare,         NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, r2), 0, "%s", err);
    j = json_load_file(bare, 0, &je);
    cr_assert_not_null(j);
    cr_assert_null(json_object_get(j, "run_record"), "run_record without --runrec");
    json_decref(j);
    const char *p3[] = {"plot", "time-space", bare, "--out", png, NULL};
    cr_assert_eq(run_sigflow(err, sizeof err, p3), 1);
    cr_assert(strstr(err, "without a run record") && strstr(err, "--runrec FILE"), "%s", err);
    cr_assert_eq(file_size(png), -1, "a refused plot wrote %s", png);
    /* a report naming a record that is gone: the record's path in the error */
    unlink(rec);
    cr_assert_eq(run_sigflow(err, sizeof err, p1), 1);
    cr_assert(strstr(err, rec), "%s", err);
    unlink(rep);
    unlink(bare);
    cr_assert_eq(rmdir(dir), 0, "%s", strerror(errno));
}

Test(view, screenshot_of_the_default_scenario)
{
    sf_scenario_t *sc = load_default();
    uint8_t *lamps = calloc((size_t)sc->n_intersections * SF_MAX_SG, 1);
    memset(lamps, SF_LAMP_RED, (size_t)sc->n_intersections * SF_MAX_SG);
    json_t *rep = json_pack("{s:{s:f,s:f,s:i}}", "network", "mean_delay_s", 23.5, "mean_stops", 0.8,
                            "vehicles_completed", 321);
    sf_view_state_t st = {
        .lamps = lamps, .sim_time_s = 600, .start_tod_s = sc->run.start_tod_s, .selected_ix = -1};
    cr_assert_eq(sf_moe_from_report(rep, &st.moe), 0);
    cr_assert(st.moe.have_moe && st.moe.vehicles_completed == 321);
    json_t *bad = json_pack("{s:{}}", "network");
    sf_moe_view_t m;
    cr_assert_eq(sf_moe_from_report(bad, &m), -1);
    cr_assert(!m.have_moe);
    char err[256], pngbuf[TMP_LEN], *png = tmpfile_path(pngbuf, ".png");
    cr_assert_eq(sf_view_screenshot(sc, &st, 0, 0, png, err, sizeof err), 0, "%s", err);
    SDL_Surface *img = IMG_Load(png);
    cr_assert(img && img->w == SF_SHOT_W && img->h == SF_SHOT_H);
    SDL_Surface *argb = SDL_ConvertSurfaceFormat(img, SDL_PIXELFORMAT_ARGB8888, 0);
    long red = 0;
    for (int y = 0; y < argb->h; y++)
        for (int x = 0; x < argb->w; x++) {
            uint32_t p = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x];
            red += same((SDL_Color){(uint8_t)(p >> 16), (uint8_t)(p >> 8), (uint8_t)p, 255},
                        SF_COL_LAMP_RED);
        }
    cr_assert_gt(red, 8 * 20, "red heads of 8 intersections expected, %ld red pixels", red);
    SDL_FreeSurface(argb);
    SDL_FreeSurface(img);
    cr_assert_eq(sf_view_screenshot(sc, &st, 0, 0, "/nonexistent/x.png", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/x.png"), "%s", err);
    unlink(png);
    json_decref(rep);
    json_decref(bad);
    free(lamps);
    sf_scenario_destroy(&sc);
}

Test(view, time_space_from_the_simulators_trajectory_recorder)
{
    sf_scenario_t *sc = load_default();
    sf_sim_t *sim = sf_sim_new(sc);
    sf_runrec_t *rec = sf_runrec_new(sc, 1.0);
    cr_assert(sim && rec);
    uint32_t links[64], n_links = 0;
    for (uint32_t li = 0; li < sc->n_links && n_links < 64; li++)
        if (sf_runrec_link_dir(rec, li) != 0)
            links[n_links++] = li;
    cr_assert_geq(n_links, 2 * (sc->n_intersections + 1) - 2, "arterial links: %u", n_links);
    cr_assert_eq(sf_sim_record(sim, links, n_links, 1.0), 0);
    uint8_t green[SF_MAX_SG];
    memset(green, SF_LAMP_GREEN, sizeof green);
    for (uint32_t ix = 0; ix < sc->n_intersections; ix++)
        sf_sim_set_lamps(sim, ix, green, sc->intersections[ix].n_sg);
    int steps = getenv("SIGFLOW_SANITIZED") ? 600 : 1200;
    for (int k = 0; k < steps; k++)
        sf_sim_step(sim);
    size_t n = 0;
    const sf_traj_point_t *pts = sf_sim_trajectory(sim, &n);
    cr_assert_gt(n, 50, "the sim recorded %zu points", n);
    cr_assert_eq(sf_runrec_add_points(rec, pts, n, SF_VEH_CAR), (int)n);
    /* a point off the arterial is not kept */
    sf_traj_point_t side = pts[0];
    for (uint32_t li = 0; li < sc->n_links; li++)
        if (sf_runrec_link_dir(rec, li) == 0)
            side.link_idx = li;
    cr_assert_eq(sf_runrec_add_points(rec, &side, 1, SF_VEH_CAR), 0);
    sf_canvas_t *c = sf_canvas_new_offscreen(1200, 700);
    sf_plot_frame_t f;
    cr_assert_eq(sf_plot_time_space(c, rec, 0, 0, &f), 0);
    /* every recorded point shows a trajectory of its direction within a pixel or two */
    int shown = 0, tried = 0;
    for (size_t i = 0; i < n; i += n / 40 + 1) {
        float x, y;
        int dir = sf_runrec_link_dir(rec, pts[i].link_idx);
        sf_plot_map(&f, pts[i].t_s, sf_runrec_distance(rec, pts[i].link_idx, pts[i].pos_m), &x, &y);
        tried++;
        shown += near_has(c, x, y, 2, dir > 0 ? SF_COL_TRAJ_POS : SF_COL_TRAJ_NEG);
    }
    /* lamp bars and other vehicles may cover a few */
    cr_assert_geq(shown * 10, tried * 8, "%d of %d recorded points drawn", shown, tried);
    sf_canvas_destroy(&c);
    sf_runrec_destroy(&rec);
    sf_sim_destroy(&sim);
    sf_scenario_destroy(&sc);
}

static int apply(sf_viewmodel_t *vm, sf_bus_type_t type, ProtobufCMessage *m, char *why)
{
    sf_bus_rx_t rx = {.type = type, .msg = m};
    return sf_viewmodel_apply(vm, &rx, why, 160);
}

Test(view, viewmodel_applies_bus_messages_and_refuses_bad_ones)
{
    sf_scenario_t *sc = load_default();
    sf_viewmodel_t *vm = sf_viewmodel_new(sc);
    char why[160];
    sf_view_state_t st = {.selected_ix = -1};
    sf_viewmodel_state(vm, &st);
    cr_assert_null(st.lamps, "no lamps before any LampStates");
    cr_assert_lt(sf_viewmodel_time(vm), 0);
    /* lamps and phase status of I3 */
    uint8_t codes[4] = {SF_LAMP_GREEN, SF_LAMP_RED, SF_LAMP_YELLOW, SF_LAMP_RED};
    uint32_t rem[4] = {123, 0, 30, 0};
    Sfbus__LampStates ls = SFBUS__LAMP_STATES__INIT;
    ls.k = 50;
    ls.ix = 2;
    ls.lamps.data = codes;
    ls.lamps.len = 4;
    ls.n_remaining_ds = 4;
    ls.remaining_ds = rem;
    ls.greens = 2;
    ls.plan = 2;
    ls.control_mode = 0x12;
    ls.fault_code = 0x10;
    cr_assert_eq(apply(vm, SF_BUS_LAMPS, &ls.base, why), 1, "%s", why);
    sf_viewmodel_state(vm, &st);
    cr_assert_not_null(st.lamps);
    cr_assert_eq(st.lamps[2 * SF_MAX_SG + 0], SF_LAMP_GREEN);
    cr_assert_eq(st.lamps[2 * SF_MAX_SG + 2], SF_LAMP_YELLOW);
    const sf_ix_status_t *is = sf_viewmodel_ix(vm, 2);
    cr_assert(is->known && is->greens == 2 && is->plan == 2 && is->fault_code == 0x10);
    cr_assert_eq(is->remaining_ds[0], 123);
    /* out of range: refused, nothing changes */
    ls.ix = 8;
    codes[0] = SF_LAMP_RED;
    cr_assert_eq(apply(vm, SF_BUS_LAMPS, &ls.base, why), -1);
    cr_assert(strstr(why, "intersection 8 out of range"), "%s", why);
    sf_viewmodel_state(vm, &st);
    cr_assert_eq(st.lamps[2 * SF_MAX_SG + 0], SF_LAMP_GREEN);
    /* snapshot: a vehicle on a lane its link does not have is refused whole */
    uint32_t id[2] = {1, 2}, link[2] = {2, 2}, lane[2] = {0, 9}, type[2] = {0, 2};
    float pos[2] = {10, 20}, speed[2] = {5, 6};
    int32_t line[2] = {-1, 0};
    Sfbus__VehicleSnapshot vs = SFBUS__VEHICLE_SNAPSHOT__INIT;
    vs.k = 60;
    vs.t_ds = 60;
    vs.n_id = vs.n_link = vs.n_lane = vs.n_pos_m = vs.n_speed_mps = vs.n_type = vs.n_line = 2;
    vs.id = id;
    vs.link = link;
    vs.lane = lane;
    vs.pos_m = pos;
    vs.speed_mps = speed;
    vs.type = type;
    vs.line = line;
    cr_assert_eq(apply(vm, SF_BUS_SNAP, &vs.base, why), -1);
    cr_assert(strstr(why, "lane 9"), "%s", why);
    sf_viewmodel_state(vm, &st);
    cr_assert_eq(st.n_veh, 0);
    lane[1] = 1;
    pos[0] = NAN;
    cr_assert_eq(apply(vm, SF_BUS_SNAP, &vs.base, why), -1);
    pos[0] = 10;
    cr_assert_eq(apply(vm, SF_BUS_SNAP, &vs.base, why), 1, "%s", why);
    cr_assert_eq(apply(vm, SF_BUS_SNAP, &vs.base, why), 1); /* replaces the undrawn one */
    sf_viewmodel_state(vm, &st);
    cr_assert_eq(st.n_veh, 2);
    cr_assert_eq(st.veh[1].type, SF_VEH_BUS);
    cr_assert_eq(st.veh[1].line, 0);
    cr_assert_eq(st.veh[0].line, SF_SIM_NO_LINE);
    cr_assert_float_eq(sf_viewmodel_time(vm), 6.0, 1e-9);
    sf_viewmodel_stats_t stats;
    sf_viewmodel_stats(vm, &stats);
    cr_assert_eq(stats.snaps, 2);
    cr_assert_eq(stats.snaps_replaced, 1);
    cr_assert_eq(stats.refused, 3);
    /* priority request lifecycle and comms from controller events */
    Sfbus__ControllerEvent ev = SFBUS__CONTROLLER_EVENT__INIT;
    ev.ix = 1;
    ev.request_id = 42;
    ev.t_ds = 700;
    ev.kind = SFBUS__EVENT_KIND__EVENT_PRIORITY_REQUEST;
    ev.detail = "bus B1-003 late 40 s";
    cr_assert_eq(apply(vm, SF_BUS_EVENT, &ev.base, why), 1);
    cr_assert_eq(sf_viewmodel_ix(vm, 1)->req[0].state, SF_REQ_PENDING);
    ev.kind = SFBUS__EVENT_KIND__EVENT_PRIORITY_DECISION;
    ev.detail = "granted: green extension 6 s";
    cr_assert_eq(apply(vm, SF_BUS_EVENT, &ev.base, why), 1);
    cr_assert_eq(sf_viewmodel_ix(vm, 1)->req[0].state, SF_REQ_GRANTED);
    cr_assert_eq(sf_viewmodel_ix(vm, 1)->n_req, 1);
    cr_assert(strstr(sf_viewmodel_message(vm), "I2 priority decision"), "%s",
              sf_viewmodel_message(vm));
    ev.kind = SFBUS__EVENT_KIND__EVENT_COMMS_OFFLINE;
    cr_assert_eq(apply(vm, SF_BUS_EVENT, &ev.base, why), 1);
    cr_assert_eq(sf_viewmodel_ix(vm, 1)->comms, 0);
    /* a participant leaving does not end the run */
    Sfbus__Bye pbye = SFBUS__BYE__INIT;
    pbye.name = "bridge";
    pbye.reason = "participant closed";
    cr_assert_eq(apply(vm, SF_BUS_BYE, &pbye.base, why), 1);
    cr_assert(!sf_viewmodel_ended(vm));
    /* the summary's MOEs; a summary that is not JSON is refused */
    Sfbus__RunSummary rs = SFBUS__RUN_SUMMARY__INIT;
    rs.report_json = "{\"network\": {\"mean_delay_s\": 31.5, \"mean_stops\": 0.9, "
                     "\"vehicles_completed\": 77}}";
    cr_assert_eq(apply(vm, SF_BUS_SUMMARY, &rs.base, why), 1, "%s", why);
    sf_viewmodel_state(vm, &st);
    cr_assert(st.moe.have_moe && st.moe.vehicles_completed == 77);
    rs.report_json = "{not json";
    cr_assert_eq(apply(vm, SF_BUS_SUMMARY, &rs.base, why), -1);
    sf_viewmodel_state(vm, &st);
    cr_assert_float_eq(st.moe.mean_delay_s, 31.5, 1e-9);
    /* the summary ends the run: the "run finished" overlay's lines carry its MOEs */
    cr_assert(sf_viewmodel_ended(vm) && sf_viewmodel_finished(vm));
    const char *fin[SF_VIEW_FINAL_LINES];
    int nfin = sf_viewmodel_final(vm, fin, SF_VIEW_FINAL_LINES);
    cr_assert_geq(nfin, 2);
    cr_assert(strstr(fin[1], "delay 31.5 s/veh") && strstr(fin[1], "77 vehicles"), "%s", fin[1]);
    Sfbus__Bye bye = SFBUS__BYE__INIT;
    bye.name = "sim";
    bye.reason = "end of run";
    cr_assert_eq(apply(vm, SF_BUS_BYE, &bye.base, why), 1);
    cr_assert(sf_viewmodel_ended(vm));
    sf_viewmodel_destroy(&vm);
    cr_assert_null(vm);
    sf_scenario_destroy(&sc);
}

/* ---- the live window on a real bus --------------------------------------------- */

/* Green near intersection ix of the screenshot? Counts lamp-green pixels within r px of
 * its centre under the fitted transform of a w x h window. */
static long green_near(SDL_Surface *argb, sf_netview_t *nv, const sf_scenario_t *sc, uint32_t ix,
                       int r, SDL_Color want)
{
    float cx, cy;
    sf_netview_to_screen(nv, sc->intersections[ix].x_m, sc->intersections[ix].y_m, &cx, &cy);
    long n = 0;
    for (int y = (int)cy - r; y <= (int)cy + r; y++)
        for (int x = (int)cx - r; x <= (int)cx + r; x++) {
            if (x < 0 || y < 0 || x >= argb->w || y >= argb->h)
                continue;
            uint32_t p = ((uint32_t *)((uint8_t *)argb->pixels + y * argb->pitch))[x];
            n += same((SDL_Color){(uint8_t)(p >> 16), (uint8_t)(p >> 8), (uint8_t)p, 255}, want);
        }
    return n;
}

Test(view, live_window_follows_the_bus_and_sends_commands, .timeout = 120)
{
    sf_scenario_t *sc = load_default();
    void *ctx = zmq_ctx_new();
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new(ctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
    cr_assert_not_null(fw, "forwarder: %s", zmq_strerror(errno));
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    void *pub = sf_bus_pub_new(ctx, pe);
    const char *cmd_topic[] = {"cmd"};
    void *cmds = sf_bus_sub_new(ctx, se, cmd_topic, 1, 0);
    cr_assert(pub && cmds);
    char b1[TMP_LEN], b2[TMP_LEN], b3[TMP_LEN];
    char *png = tmpfile_path(b1, ".png"), *rec = tmpfile_path(b2, ".sfrun"),
         *out = tmpfile_path(b3, ".out");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* --wall bounds the child even if this test fails before stopping it */
        int fd = open(out, O_WRONLY | O_TRUNC);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SIGFLOW_BIN, SIGFLOW_BIN, "view", DEFAULT_SCENARIO, "--bus", se, "--pub", pe,
              "--size", "1000x700", "--screenshot", png, "--at", "3", "--exit", "--keys",
              "space,+,p", "--record", rec, "--wall", "90", (char *)NULL);
        _exit(127);
    }
    uint32_t i1i2 = 2; /* link I1-I2 */
    cr_assert_str_eq(sc->links[i1i2].id, "I1-I2");
    bool seen[8] = {false};
    int status = -1;
    bool exited = false;
    for (uint64_t k = 0; k < 6000 && !exited; k++) {
        /* the bus the viewer joins at some point: publish step k every round */
        Sfbus__Step step = SFBUS__STEP__INIT;
        step.k = k;
        step.t_ds = k;
        step.step_ds = 1;
        step.speed_factor = 1.0; /* real time x1: the viewer's + asks for x2 */
        cr_assert_eq(sf_bus_send(pub, &step.base), 0);
        for (uint32_t ix = 0; ix < sc->n_intersections; ix++) {
            uint8_t codes[SF_MAX_SG];
            memset(codes, ix == 0 ? SF_LAMP_GREEN : SF_LAMP_RED, sizeof codes);
            Sfbus__LampStates ls = SFBUS__LAMP_STATES__INIT;
            ls.k = k;
            ls.ix = ix;
            ls.lamps.data = codes;
            ls.lamps.len = sc->intersections[ix].n_sg;
            uint32_t rem[SF_MAX_SG] = {0};
            ls.n_remaining_ds = ls.lamps.len;
            ls.remaining_ds = rem;
            ls.plan = 1;
            ls.control_mode = 0x12;
            cr_assert_eq(sf_bus_send(pub, &ls.base), 0);
        }
        /* a message this scenario cannot have: refused, nothing changes */
        uint8_t bad_codes[2] = {SF_LAMP_RED, SF_LAMP_RED};
        Sfbus__LampStates bad = SFBUS__LAMP_STATES__INIT;
        bad.k = k;
        bad.ix = 99;
        bad.lamps.data = bad_codes;
        bad.lamps.len = 2;
        uint32_t bad_rem[2] = {10, 10};
        bad.n_remaining_ds = 2;
        bad.remaining_ds = bad_rem;
        cr_assert_eq(sf_bus_send(pub, &bad.base), 0);
        uint32_t id = 7, link = i1i2, lane = 0, type = SF_VEH_CAR;
        float pos = (float)(k % 3000) * 0.1f, speed = 10;
        int32_t line = -1;
        Sfbus__VehicleSnapshot snap = SFBUS__VEHICLE_SNAPSHOT__INIT;
        snap.k = k;
        snap.t_ds = k;
        snap.n_id = snap.n_link = snap.n_lane = snap.n_pos_m = snap.n_speed_mps = snap.n_type =
            snap.n_line = 1;
        snap.id = &id;
        snap.link = &link;
        snap.lane = &lane;
        snap.pos_m = &pos;
        snap.speed_mps = &speed;
        snap.type = &type;
        snap.line = &line;
        cr_assert_eq(sf_bus_send(pub, &snap.base), 0);
        /* pace the publisher at about 100 steps/s while collecting commands */
        zmq_pollitem_t it = {cmds, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) > 0) {
            sf_bus_rx_t rx;
            while (sf_bus_recv(cmds, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
                const Sfbus__ViewCommand *vc = (const Sfbus__ViewCommand *)rx.msg;
                if (rx.type == SF_BUS_CMD && vc->cmd < 8)
                    seen[vc->cmd] = true;
                if (rx.type == SF_BUS_CMD && vc->cmd == SFBUS__COMMAND__CMD_SPEED)
                    cr_assert_float_eq(vc->speed_factor, 2.0, 1e-9);
                sf_bus_rx_clear(&rx);
            }
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        exited = w == pid;
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char text[2048] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = '\0';
        fclose(f);
    }
    cr_assert(exited, "sigflow view did not finish: %s", text);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d: %s", status, text);
    cr_assert(seen[SFBUS__COMMAND__CMD_PAUSE], "no pause command on the bus: %s", text);
    cr_assert(seen[SFBUS__COMMAND__CMD_SPEED], "no speed command on the bus");
    cr_assert(seen[SFBUS__COMMAND__CMD_TOGGLE_PRIORITY], "no priority command on the bus");
    unsigned long refused = 0;
    const char *p = strstr(text, "messages (");
    cr_assert(p && sscanf(p, "messages (%lu refused)", &refused) == 1, "%s", text);
    cr_assert_gt(refused, 0, "the bad LampStates was not refused: %s", text);
    /* the picture: I1's heads green, I2's red (lamps from the bus) */
    SDL_Surface *img = IMG_Load(png);
    cr_assert_not_null(img, "%s", text);
    cr_assert(img->w == 1000 && img->h == 700);
    SDL_Surface *argb = SDL_ConvertSurfaceFormat(img, SDL_PIXELFORMAT_ARGB8888, 0);
    sf_netview_t *nv = sf_netview_new(sc, 1000, 700);
    cr_assert_gt(green_near(argb, nv, sc, 0, 25, SF_COL_LAMP_GREEN), 20);
    cr_assert_eq(green_near(argb, nv, sc, 1, 25, SF_COL_LAMP_GREEN), 0);
    cr_assert_gt(green_near(argb, nv, sc, 1, 25, SF_COL_LAMP_RED), 20);
    sf_netview_destroy(&nv);
    SDL_FreeSurface(argb);
    SDL_FreeSurface(img);
    /* the record it wrote has the lamps and the vehicle */
    char err[256];
    sf_runrec_t *r = sf_runrec_load(sc, rec, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_gt(sf_runrec_n_points(r), 0);
    cr_assert_geq(sf_runrec_n_lamp_changes(r), sc->intersections[0].n_sg);
    sf_runrec_destroy(&r);
    unlink(png);
    unlink(rec);
    unlink(out);
    sf_bus_close(&pub);
    sf_bus_close(&cmds);
    sf_bus_forwarder_destroy(&fw);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    sf_scenario_destroy(&sc);
}
