/* view/plots.h — time-space diagram, Purdue coordination diagram, queue plot.
 *
 * All three are drawn from a run record (runrec.h) on any canvas (window or offscreen)
 * on a white background, with axes, ticks and a legend. Each returns the frame(s) it drew
 * so a caller (or a test) can map data coordinates to pixels with sf_plot_map.
 *
 * Time-space diagram: x = sim time, y = distance along the arterial. Trajectories of
 * vehicles on arterial links, + direction in blue, - direction in orange, buses darker
 * and thicker. At each arterial intersection's distance, two bars show the lamp of the
 * through movement of each direction over time (+ direction just below the line,
 * - direction just above): a green wave shows as trajectories threading the green bars.
 *
 * Coordination diagram (Purdue): per direction, x = sim time, y = time in cycle, where
 * each cycle starts at the beginning of red of the through group (after its yellow);
 * columns are shaded red / green / yellow by the intervals of that cycle; dots are
 * arrivals: the time a vehicle passes a point D upstream of the stop line (D = 100 m, or
 * 60 % of a shorter link) plus D at the speed limit. The share of arrivals on green is
 * measured and printed in the title.
 *
 * Queue plot: queue length (m, longest lane) of each approach of an intersection over time.
 */
#ifndef SIGFLOW_PLOTS_H
#define SIGFLOW_PLOTS_H

#include <stdint.h>

#include "canvas.h"
#include "runrec.h"

/* A plot area: pixel rectangle and the data ranges it shows. */
typedef struct {
    float x, y, w, h; /* pixels */
    double t0, t1;    /* horizontal data range */
    double v0, v1;    /* vertical data range (v0 at the bottom) */
} sf_plot_frame_t;

/* Data (t, v) -> pixel centre. */
void sf_plot_map(const sf_plot_frame_t *f, double t, double v, float *sx, float *sy);

/* Colours of the time-space diagram's trajectories (tests look for them). */
#define SF_COL_TRAJ_POS     ((SDL_Color){60, 120, 220, 255})
#define SF_COL_TRAJ_NEG     ((SDL_Color){235, 130, 40, 255})
#define SF_COL_TRAJ_BUS_POS ((SDL_Color){10, 30, 120, 255})
#define SF_COL_TRAJ_BUS_NEG ((SDL_Color){130, 40, 0, 255})

/* Lamp bar geometry of the time-space diagram: a bar BAR_PX high, + direction centred
 * BAR_PX/2 + 1 px below the intersection's line, - direction as far above. */
#define SF_TSD_BAR_PX 6

/* Time-space diagram over [t0, t1] (t1 <= t0: the whole record). Returns 0, or -1 with
 * errno ENOENT (no arterial in the scenario) / ENOMEM. *frame (may be NULL) gets the
 * plot area. */
int sf_plot_time_space(sf_canvas_t *c, const sf_runrec_t *rec, double t0, double t1,
                       sf_plot_frame_t *frame);

/* Measured arrivals on green for approach dir (+1/-1) of intersection ix. Returns the
 * number of arrivals (and *on_green), or -1 with errno ENOENT (no such approach). */
int sf_plot_arrivals(const sf_runrec_t *rec, uint32_t ix, int dir, int *on_green);

/* Purdue coordination diagram of intersection ix, both directions stacked (+ on top).
 * frames[0] / frames[1] (may be NULL) get the + and - direction panels (w = 0 when that
 * direction has no approach). Returns 0, or -1 (ENOENT: ix not on the arterial). */
int sf_plot_coordination(sf_canvas_t *c, const sf_runrec_t *rec, uint32_t ix,
                         sf_plot_frame_t frames[2]);

/* Queue plot of the approaches of ix. Returns 0, or -1 (EINVAL / ENOENT no queue samples). */
int sf_plot_queues(sf_canvas_t *c, const sf_runrec_t *rec, uint32_t ix, sf_plot_frame_t *frame);

#endif
