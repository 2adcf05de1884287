/* view/live.h — the live window attached to a running simulation bus.
 *
 * sf_live_run opens a window (hardware renderer when the video driver has one, software
 * otherwise), subscribes to the bus (snap, lamps, det, step, event, summary, bye) and
 * draws the network with the panel of the selected intersection and a help overlay,
 * until the window is closed, `q` is pressed or (with exit_after_shot) the screenshot
 * is taken. One thread, one loop: zmq_poll waits for bus messages up to the next frame
 * time; each frame drains what has arrived without blocking and keeps only the latest
 * snapshot, so a slow viewer drops snapshots (and the bus's high-water mark drops more
 * for it) but never slows the simulation.
 *
 * Controls travel as ViewCommand messages on topic "cmd" (proto/bus.proto): space pause /
 * resume, n single step, + / - speed factor x2 / /2, p toggle priority, 1-9 select that
 * plan at the selected intersection, r reset its fault. Mouse drag pans, the wheel zooms
 * at the cursor, a click selects an intersection (its panel opens); arrows pan, z / x
 * zoom, f fits, h (or F1) toggles the help overlay, Esc closes the panel, q quits.
 * `sigflow run`'s clock acts on pause, step and speed (cli/run.c), its controller on
 * priority, plan and fault reset (sf_controller_operator). The status bar shows the speed
 * factor the clock announces in each Step ("lockstep": as fast as possible).
 *
 * End of the run: when the run's summary (topic "summary") or the clock's Bye arrives, a
 * box over the map says "run finished" with the final MOEs of the summary (network delay,
 * LOS, stops, vehicles; each intersection; priority counts), or "run ended" and the
 * clock's reason; the window stays until q, Esc or the window's close button.
 */
#ifndef SIGFLOW_LIVE_H
#define SIGFLOW_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "scenario.h"

typedef struct {
    const char *sub_endpoint; /* forwarder's subscriber side, e.g. tcp://127.0.0.1:5571 */
    const char *pub_endpoint; /* forwarder's publisher side for commands; NULL: no commands */
    bool software;            /* force the software renderer */
    int w, h;                 /* window size, pixels (0: 1280 x 800) */
    const char *record_path;  /* save a run record here at the end (NULL: none) */
    const char *shot_path;    /* save the window's picture once sim time >= shot_at_s */
    double shot_at_s;         /* INFINITY: once the run has ended (its summary arrived, or
                               * SHOT_END_WAIT_S after the clock's Bye without one) */
    bool exit_after_shot;     /* stop once the screenshot is written */
    double max_wall_s;        /* stop after this many wall seconds (0: never) */
    const char *keys;         /* comma-separated SDL key names ("space,+,p") pressed once through
                               * the normal event path after the first frame with bus data
                               * (scripted sessions and tests); NULL: none */
    const char *select_id;    /* intersection whose panel is open at start (NULL: none) */
    void *zctx; /* ZeroMQ context to use (not terminated here), e.g. `sigflow run`'s, so
                 * the forwarder's inproc:// endpoints work; NULL: a context of its own */
    const sf_bus_security_t *security; /* NULL, or CurveZMQ credentials to join a secured bus */
} sf_live_opts_t;

/* Counters of a finished session. */
typedef struct {
    unsigned long frames;        /* frames drawn */
    unsigned long messages;      /* bus messages received */
    unsigned long refused;       /* of which refused (bad for this scenario) */
    unsigned long snaps;         /* snapshots received */
    unsigned long snaps_dropped; /* snapshots replaced before being drawn */
    unsigned long commands;      /* ViewCommands sent */
    unsigned long keys_pressed;  /* scripted keys pushed */
    bool shot_written;           /* the screenshot was saved */
    bool run_finished;           /* the run's summary arrived (final MOEs shown) */
    char backend[32];            /* renderer used */
} sf_live_stats_t;

/* Run the live window for sc until closed. Call it from the main thread (SDL's event
 * handling and some video drivers require it); `sigflow run` runs its components in
 * other threads and this on the main one. Returns 0, or -1 with errno and the reason in
 * err (no display, bad endpoint, cannot write the screenshot or record...). stats may be
 * NULL. */
int sf_live_run(const sf_scenario_t *sc, const sf_live_opts_t *opts, sf_live_stats_t *stats,
                char *err, size_t err_len);

#endif
