/* view/netview.h — the network view: a scenario drawn to scale with its live state.
 *
 * Geometry (computed once from the scenario): each link runs from its upstream node to
 * its downstream node; its lanes sit to the right of the line joining the nodes
 * (right-hand traffic), lane 0 at the kerb, lane n-1 next to the centre line, each
 * SF_LANE_WIDTH_M wide. At an intersection the link is cut back by the intersection's
 * radius (wide enough for every lane that meets there); the stop line is the cut at the
 * downstream end. A vehicle at position pos_m (front bumper, metres from the link's
 * upstream end, 0..length_m) is placed at pos_m / length_m of the drawn segment, so a
 * link whose length_m differs from the distance of its nodes is still drawn end to end.
 *
 * Pedestrian heads: each pedestrian group's crosswalk (zebra across a leg, just upstream
 * of its stop line) with an upright head on each kerb in the group's lamp (walk green,
 * ped clearance flashing red, don't walk red); see sf_netview_ped_head_point.
 *
 * Signal heads: one head per (approach link, signal group) pair of the movements leaving
 * that link, in a row just past its stop line (left turn at the median side, right turn
 * at the kerb), coloured by the group's lamp code; each lane's stop line segment takes
 * the colour of the group of its main movement (through, else left, else right).
 *
 * The view transform maps metres (x east, y north) to pixels (y down) with a centre and
 * a scale; the map occupies the canvas above a status bar of SF_STATUS_BAR_PX.
 */
#ifndef SIGFLOW_NETVIEW_H
#define SIGFLOW_NETVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "canvas.h"
#include "scenario.h"
#include "sim.h"

#define SF_LANE_WIDTH_M  3.5f
#define SF_STATUS_BAR_PX 26

typedef struct sf_netview sf_netview_t;

/* Headline measures for the status bar (have_moe false: not shown). */
typedef struct {
    bool have_moe;
    double mean_delay_s; /* network mean control delay */
    double mean_stops;   /* stops per vehicle */
    uint32_t vehicles_completed;
} sf_moe_view_t;

/* Everything that changes between frames. Pointers may be NULL (nothing of that kind
 * known yet). lamps is n_intersections * SF_MAX_SG codes (lamps[ix * SF_MAX_SG + sg]);
 * det_presence one word per intersection (bit i = detector i occupied). */
typedef struct {
    const uint8_t *lamps;
    const uint64_t *det_presence;
    const sf_vehicle_snap_t *veh; /* vehicles of the latest snapshot (sim/sim.h) */
    size_t n_veh;
    double sim_time_s;    /* seconds since start */
    uint32_t start_tod_s; /* time of day at sim time 0 */
    double speed_factor;  /* real-time factor, 0 = as fast as possible (lockstep) */
    bool paused;
    sf_moe_view_t moe;
    bool live;           /* live window: flashing lamps blink at wall_time_s */
    double wall_time_s;  /* blink clock (live only) */
    int selected_ix;     /* highlighted intersection, -1 none */
    const char *message; /* extra text at the right of the status bar, or NULL */
} sf_view_state_t;

/* New view of sc (kept by pointer: sc must outlive the view), fitted to w x h pixels.
 * Returns NULL with errno (EINVAL: NULL scenario, or an index out of range; ENOMEM). */
sf_netview_t *sf_netview_new(const sf_scenario_t *sc, int w, int h);

/* Free the view; takes NULL, sets *self_p NULL. */
void sf_netview_destroy(sf_netview_t **self_p);

/* Fit the whole network into a w x h canvas (status bar excluded). */
void sf_netview_fit(sf_netview_t *nv, int w, int h);

/* Move the picture by (dx, dy) pixels; zoom by factor keeping screen point (sx, sy)
 * fixed. The scale stays within 0.01..200 px/m. */
void sf_netview_pan(sf_netview_t *nv, float dx, float dy);
void sf_netview_zoom(sf_netview_t *nv, double factor, float sx, float sy);

/* Centre the map on world point (x_m, y_m) at scale px/m (clamped to 0.01..200). */
void sf_netview_center_on(sf_netview_t *nv, double x_m, double y_m, double scale);

/* Current scale, pixels per metre. */
double sf_netview_scale(const sf_netview_t *nv);

/* World metres -> screen pixels and back. */
void sf_netview_to_screen(const sf_netview_t *nv, double x_m, double y_m, float *sx, float *sy);
void sf_netview_to_world(const sf_netview_t *nv, float sx, float sy, double *x_m, double *y_m);

/* World point of the centre of a lane at pos_m along a link. Returns 0, or -1 (EINVAL)
 * for a link or lane out of range. */
int sf_netview_lane_point(const sf_netview_t *nv, uint32_t link, uint8_t lane, float pos_m,
                          double *x_m, double *y_m);

/* Screen centre of the head of signal group sg on approach link of intersection ix, as
 * drawn with the current transform. Returns 0, or -1 (ENOENT: no movement from that link
 * uses that group; EINVAL: out of range). */
int sf_netview_head_point(const sf_netview_t *nv, uint32_t ix, uint32_t link, uint8_t sg, float *sx,
                          float *sy);

/* Screen centre of the n-th pedestrian head (0, 1, ...) of pedestrian group sg of
 * intersection ix: two per crosswalk, one on each kerb. The crosswalk of a pedestrian
 * group is across the leg to the right of its phase's through traffic (the leg its
 * right turners cross), drawn just upstream of that leg's stop line. Returns 0, or -1
 * (ENOENT: no such head; EINVAL: out of range). */
int sf_netview_ped_head_point(const sf_netview_t *nv, uint32_t ix, uint8_t sg, int n, float *sx,
                              float *sy);

/* Intersection under screen point (sx, sy), or -1. */
int sf_netview_hit(const sf_netview_t *nv, float sx, float sy);

/* Draw the network, state and status bar on c (clears it first). */
void sf_netview_draw(sf_netview_t *nv, sf_canvas_t *c, const sf_view_state_t *st);

#endif
