/* view/shot.c — offscreen screenshot and plot files (shot.h). */
#include "shot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plots.h"

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static sf_canvas_t *open_canvas(int *w, int *h, char *err, size_t err_len)
{
    if (*w <= 0 || *h <= 0) {
        *w = SF_SHOT_W;
        *h = SF_SHOT_H;
    }
    sf_canvas_t *c = sf_canvas_new_offscreen(*w, *h);
    if (!c) {
        int e = errno;
        seterr(err, err_len, "offscreen canvas %dx%d: %s", *w, *h,
               e == EINVAL ? "bad size" : sf_canvas_last_error());
        errno = e;
    }
    return c;
}

static int save(sf_canvas_t *c, const char *path, char *err, size_t err_len)
{
    if (sf_canvas_save_png(c, path) != 0) {
        int e = errno;
        seterr(err, err_len, "%s: cannot write PNG: %s", path, sf_canvas_last_error());
        errno = e;
        return -1;
    }
    return 0;
}

int sf_view_screenshot(const sf_scenario_t *sc, const sf_view_state_t *st, int w, int h,
                       const char *path, char *err, size_t err_len)
{
    if (!sc || !st || !path || !*path) {
        seterr(err, err_len, "screenshot: no scenario, state or path");
        errno = EINVAL;
        return -1;
    }
    sf_canvas_t *c = open_canvas(&w, &h, err, err_len);
    if (!c)
        return -1;
    sf_netview_t *nv = sf_netview_new(sc, w, h);
    if (!nv) {
        int e = errno;
        seterr(err, err_len, "screenshot: scenario geometry: %s", strerror(e));
        sf_canvas_destroy(&c);
        errno = e;
        return -1;
    }
    sf_view_state_t still = *st;
    still.live = false; /* flashing lamps steady with a mark */
    sf_netview_draw(nv, c, &still);
    int rc = save(c, path, err, err_len);
    sf_netview_destroy(&nv);
    sf_canvas_destroy(&c);
    return rc;
}

int sf_moe_from_report(const json_t *report, sf_moe_view_t *moe)
{
    if (!moe) {
        errno = EINVAL;
        return -1;
    }
    memset(moe, 0, sizeof *moe);
    json_t *net = json_object_get(report, "network");
    json_t *d = json_object_get(net, "mean_delay_s"), *s = json_object_get(net, "mean_stops"),
           *n = json_object_get(net, "vehicles_completed");
    if (!json_is_number(d) || !json_is_number(s) || !json_is_integer(n)) {
        errno = EINVAL;
        return -1;
    }
    moe->mean_delay_s = json_number_value(d);
    moe->mean_stops = json_number_value(s);
    json_int_t done = json_integer_value(n);
    moe->vehicles_completed = done < 0 ? 0 : done > UINT32_MAX ? UINT32_MAX : (uint32_t)done;
    moe->have_moe = true;
    return 0;
}

int sf_plot_kind_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "time-space") == 0)
        return SF_PLOT_TIME_SPACE;
    if (strcmp(s, "coordination") == 0)
        return SF_PLOT_COORDINATION;
    if (strcmp(s, "queues") == 0)
        return SF_PLOT_QUEUES;
    return -1;
}

int sf_view_plot(const sf_runrec_t *rec, sf_plot_kind_t kind, int ix, int w, int h,
                 const char *path, char *err, size_t err_len)
{
    if (!rec || !path || !*path) {
        seterr(err, err_len, "plot: no record or path");
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = sf_runrec_scenario(rec);
    if (ix >= (int)sc->n_intersections) {
        seterr(err, err_len, "plot: intersection index %d out of range (%u intersections)", ix,
               (unsigned)sc->n_intersections);
        errno = EINVAL;
        return -1;
    }
    if (ix < 0) { /* the first arterial intersection along the axis */
        double best = INFINITY;
        for (uint32_t i = 0; i < sc->n_intersections; i++) {
            double d = sf_runrec_ix_distance(rec, i);
            if (sf_runrec_ix_on_arterial(rec, i) && d < best) {
                best = d;
                ix = (int)i;
            }
        }
        if (ix < 0 && kind == SF_PLOT_QUEUES && sc->n_intersections)
            ix = 0;
    }
    sf_canvas_t *c = open_canvas(&w, &h, err, err_len);
    if (!c)
        return -1;
    int rc = -1;
    switch (kind) {
    case SF_PLOT_TIME_SPACE:
        rc = sf_plot_time_space(c, rec, 0, 0, NULL);
        if (rc != 0)
            seterr(err, err_len, "time-space: %s",
                   errno == ENOENT ? "the scenario has no arterial (links along the "
                                     "intersections' axis)"
                                   : strerror(errno));
        break;
    case SF_PLOT_COORDINATION:
        rc = ix < 0 ? -1 : sf_plot_coordination(c, rec, (uint32_t)ix, NULL);
        if (rc != 0)
            seterr(err, err_len, "coordination: %s",
                   ix < 0 || errno == ENOENT ? "no intersection with an arterial approach"
                                             : strerror(errno));
        break;
    case SF_PLOT_QUEUES:
        rc = ix < 0 ? -1 : sf_plot_queues(c, rec, (uint32_t)ix, NULL);
        if (rc != 0)
            seterr(err, err_len, "queues: %s",
                   ix < 0 || errno == ENOENT ? "no queue samples in the record" : strerror(errno));
        break;
    default:
        seterr(err, err_len, "plot: unknown kind %d", (int)kind);
        errno = EINVAL;
    }
    if (rc == 0)
        rc = save(c, path, err, err_len);
    int e = errno;
    sf_canvas_destroy(&c);
    errno = e;
    return rc;
}
