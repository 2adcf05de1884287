/* bench/bench_view.c — frames per second drawing the default network with 10,000
 * vehicles offscreen (software renderer, 1600 x 900), whole network in view and zoomed.
 *
 * The vehicles are placed on every lane of every link at even spacing with a spread of
 * speeds (the picture's cost depends on how many are drawn, not on how they got there);
 * lamps cycle through their codes so heads change every frame. Prints the figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canvas.h"
#include "netview.h"
#include "palette.h"
#include "scenario.h"
#include "shot.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double fps(sf_netview_t *nv, sf_canvas_t *c, sf_view_state_t *st, uint8_t *lamps,
                  size_t n_lamps, int frames)
{
    static const uint8_t codes[] = {SF_LAMP_RED, SF_LAMP_GREEN, SF_LAMP_YELLOW};
    double t0 = now_s();
    for (int f = 0; f < frames; f++) {
        for (size_t i = 0; i < n_lamps; i++)
            lamps[i] = codes[(i + (size_t)f / 10) % 3];
        sf_netview_draw(nv, c, st);
        sf_canvas_present(c);
    }
    return frames / (now_s() - t0);
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json";
    size_t n_veh = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 10000;
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(file, NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_view", file);
        return 1;
    }
    const int W = 1600, H = 900;
    sf_canvas_t *c = sf_canvas_new_offscreen(W, H);
    sf_netview_t *nv = sf_netview_new(sc, W, H);
    if (!c || !nv) {
        fprintf(stderr, "bench_view: canvas: %s\n", sf_canvas_last_error());
        return 1;
    }
    /* even spread over all lanes */
    size_t lanes = 0;
    for (uint32_t li = 0; li < sc->n_links; li++)
        lanes += sc->links[li].n_lanes;
    sf_vehicle_snap_t *veh = calloc(n_veh ? n_veh : 1, sizeof *veh);
    size_t per_lane = lanes ? (n_veh + lanes - 1) / lanes : 0, k = 0;
    for (uint32_t li = 0; li < sc->n_links && k < n_veh; li++)
        for (uint8_t ln = 0; ln < sc->links[li].n_lanes && k < n_veh; ln++)
            for (size_t j = 0; j < per_lane && k < n_veh; j++, k++) {
                float len = sc->links[li].length_m;
                veh[k] = (sf_vehicle_snap_t){(uint32_t)k,
                                             li,
                                             ln,
                                             (uint8_t)(k % 40 == 0  ? 2
                                                       : k % 9 == 0 ? 1
                                                                    : 0),
                                             (uint16_t)(k % 40 == 0 ? 0 : 0xFFFF),
                                             len * (float)(j + 1) / (float)(per_lane + 1),
                                             sc->links[li].speed_mps * (float)(k % 11) / 10.0f};
            }
    size_t n_lamps = (size_t)sc->n_intersections * SF_MAX_SG;
    uint8_t *lamps = calloc(n_lamps, 1);
    uint64_t *det = calloc(sc->n_intersections, sizeof *det);
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        det[i] = 0x5555555555555555ull;
    sf_view_state_t st = {.lamps = lamps,
                          .det_presence = det,
                          .veh = veh,
                          .n_veh = k,
                          .sim_time_s = 1234.5,
                          .start_tod_s = sc->run.start_tod_s,
                          .selected_ix = -1};
    st.moe.have_moe = true;
    int frames = getenv("SIGFLOW_SANITIZED") ? 20 : 240;
    fps(nv, c, &st, lamps, n_lamps, 10); /* warm the text cache */
    double whole = fps(nv, c, &st, lamps, n_lamps, frames);
    sf_netview_zoom(nv, 8, (float)W / 2, (float)(H - SF_STATUS_BAR_PX) / 2);
    double zoomed = fps(nv, c, &st, lamps, n_lamps, frames);
    sf_netview_fit(nv, W, H);
    st.n_veh = 0;
    double empty = fps(nv, c, &st, lamps, n_lamps, frames);
    printf("bench_view: %s, %ux%u %s renderer, %zu vehicles, %d frames each\n", sc->name, W, H,
           sf_canvas_backend(c), k, frames);
    printf("  whole network, %zu vehicles:  %.1f frames/s (%.2f ms/frame)\n", k, whole,
           1000 / whole);
    printf("  zoomed x8 (culled vehicles):   %.1f frames/s (%.2f ms/frame)\n", zoomed,
           1000 / zoomed);
    printf("  whole network, no vehicles:     %.1f frames/s (%.2f ms/frame)\n", empty,
           1000 / empty);
    printf("  target 60 frames/s with 10,000 vehicles: %s\n", whole >= 60 ? "met" : "NOT met");
    free(veh);
    free(lamps);
    free(det);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    sf_scenario_destroy(&sc);
    return 0;
}
