/* view/shot.h — one-call offscreen pictures for the run loop and the command line.
 *
 * `sigflow run --screenshot FILE.png --at SECONDS` calls sf_view_screenshot with the
 * scenario, the snapshot, the lamps and the MOEs of that moment; `sigflow plot` and
 * `sigflow run --record` use sf_view_plot on a run record. Both draw with the same code
 * as the live window, on an offscreen software canvas (no display needed).
 */
#ifndef SIGFLOW_SHOT_H
#define SIGFLOW_SHOT_H

#include <jansson.h>

#include "netview.h"
#include "runrec.h"

#define SF_SHOT_W 1600 /* default picture size, pixels */
#define SF_SHOT_H 900

typedef enum {
    SF_PLOT_TIME_SPACE = 0,
    SF_PLOT_COORDINATION = 1,
    SF_PLOT_QUEUES = 2,
} sf_plot_kind_t;

/* Render the network of sc in state st (see netview.h; st->live is ignored) to a PNG of
 * w x h pixels (0: SF_SHOT_W x SF_SHOT_H), whole network in view. Returns 0, or -1 with
 * errno and the reason in err (err may be NULL). */
int sf_view_screenshot(const sf_scenario_t *sc, const sf_view_state_t *st, int w, int h,
                       const char *path, char *err, size_t err_len);

/* Headline MOEs from a simulator report (proto/REPORT.md: network.mean_delay_s,
 * network.mean_stops, network.vehicles_completed). Returns 0, or -1 (EINVAL: fields
 * missing; *moe then has have_moe false). */
int sf_moe_from_report(const json_t *report, sf_moe_view_t *moe);

/* Parse "time-space" / "coordination" / "queues". Returns the kind or -1. */
int sf_plot_kind_parse(const char *s);

/* Render a plot of rec to a PNG of w x h (0: default). ix is the intersection for the
 * coordination and queue plots (-1: the first arterial intersection in distance
 * order). Returns 0, or -1 with errno and the reason in err. */
int sf_view_plot(const sf_runrec_t *rec, sf_plot_kind_t kind, int ix, int w, int h,
                 const char *path, char *err, size_t err_len);

#endif
