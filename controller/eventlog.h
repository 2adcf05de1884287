/* controller/eventlog.h — the controller's event log: one JSON object per line (jansson),
 * each with the sim time, the intersection, the kind and the details, plus a count per
 * kind for the run report.
 *
 * A line reads {"t": 12.3, "ix": "I1", "kind": "priority", ...details}; `t` is sim seconds
 * (wall seconds since start when the controller runs alone). Lines are written in the
 * order events happen and flushed per step, so a log of a cut-off run is still valid
 * JSON lines. A sink callback receives each line too (the CLI prints them); the library
 * itself prints nothing.
 */
#ifndef SIGFLOW_EVENTLOG_H
#define SIGFLOW_EVENTLOG_H

#include <jansson.h>
#include <stdint.h>

typedef enum {
    SF_EV_PLAN = 0,     /* plan downloaded, verified, refused, selected, switched */
    SF_EV_PRIORITY = 1, /* a priority request: decision and outcome */
    SF_EV_FAULT = 2,    /* fault code, latched fault, flash, fallback to local, a detector
                           failed or recovered (detdiag.h) */
    SF_EV_COMMS = 3,    /* online, offline, reconnect failed, identity mismatch, refused write */
    SF_EV_MODE = 4,     /* control mode changes seen or commanded */
    SF_EV_ADAPTIVE = 5, /* adaptive split/cycle changes, max-pressure stage calls */
    SF_EV_KIND_N = 6,
} sf_event_kind_t;

typedef struct sf_eventlog_s sf_eventlog_t;

/* Called with every line (without the newline); ctx is the caller's. */
typedef void (*sf_eventlog_sink_fn)(void *ctx, const char *line);

/* New log writing to path (created or truncated; NULL = keep counts only). NULL with
 * errno from fopen, or ENOMEM. */
sf_eventlog_t *sf_eventlog_new(const char *path);

/* Flush, close and free; takes NULL, sets *self_p to NULL. */
void sf_eventlog_destroy(sf_eventlog_t **self_p);

/* Also send every line to sink(ctx, line); sink NULL removes it. */
void sf_eventlog_set_sink(sf_eventlog_t *log, sf_eventlog_sink_fn sink, void *ctx);

/* Log one event at t_s for intersection ix (NULL = the whole system): details is an
 * object whose members are added to the line (stolen reference; NULL = none). 0, or -1
 * with errno (EINVAL: bad kind or details not an object; EIO: write error, the count is
 * still kept). */
int sf_eventlog_add(sf_eventlog_t *log, double t_s, const char *ix, sf_event_kind_t kind,
                    json_t *details);

/* Flush the file (the controller calls it once per step). */
void sf_eventlog_flush(sf_eventlog_t *log);

/* Events logged of one kind; and the name of a kind ("plan", "priority", ...). */
uint64_t sf_eventlog_count(const sf_eventlog_t *log, sf_event_kind_t kind);
const char *sf_event_kind_name(sf_event_kind_t kind);

/* New object {kind: count, ...} over every kind (caller owns it), NULL on ENOMEM. */
json_t *sf_eventlog_counts(const sf_eventlog_t *log);

#endif
