/* controller/eventlog.c — JSON-lines event log (see eventlog.h). */
#include "eventlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct sf_eventlog_s {
    FILE *out;                    /* the file, NULL = counts only */
    sf_eventlog_sink_fn sink;     /* optional copy of each line */
    void *sink_ctx;               /* its context */
    uint64_t count[SF_EV_KIND_N]; /* events per kind */
};

static const char *const KIND_NAME[SF_EV_KIND_N] = {"plan",  "priority", "fault",
                                                    "comms", "mode",     "adaptive"};

sf_eventlog_t *sf_eventlog_new(const char *path)
{
    sf_eventlog_t *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    if (path) {
        log->out = fopen(path, "w");
        if (!log->out) {
            int e = errno;
            free(log);
            errno = e;
            return NULL;
        }
    }
    return log;
}

void sf_eventlog_destroy(sf_eventlog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->out)
        fclose((*self_p)->out);
    free(*self_p);
    *self_p = NULL;
}

void sf_eventlog_set_sink(sf_eventlog_t *log, sf_eventlog_sink_fn sink, void *ctx)
{
    if (!log)
        return;
    log->sink = sink;
    log->sink_ctx = ctx;
}

int sf_eventlog_add(sf_eventlog_t *log, double t_s, const char *ix, sf_event_kind_t kind,
                    json_t *details)
{
    if (!log || (unsigned)kind >= SF_EV_KIND_N || (details && !json_is_object(details))) {
        json_decref(details);
        errno = EINVAL;
        return -1;
    }
    log->count[kind]++;
    json_t *o = json_object();
    if (!o) {
        json_decref(details);
        errno = ENOMEM;
        return -1;
    }
    /* Fixed members first so every line starts the same way. */
    json_object_set_new(o, "t", json_real(t_s));
    json_object_set_new(o, "ix", ix ? json_string(ix) : json_null());
    json_object_set_new(o, "kind", json_string(KIND_NAME[kind]));
    if (details)
        json_object_update_missing(o, details);
    json_decref(details);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!line) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    if (log->out && fprintf(log->out, "%s\n", line) < 0) {
        errno = EIO;
        rc = -1;
    }
    if (log->sink)
        log->sink(log->sink_ctx, line);
    free(line);
    return rc;
}

void sf_eventlog_flush(sf_eventlog_t *log)
{
    if (log && log->out)
        fflush(log->out);
}

uint64_t sf_eventlog_count(const sf_eventlog_t *log, sf_event_kind_t kind)
{
    if (!log || (unsigned)kind >= SF_EV_KIND_N)
        return 0;
    return log->count[kind];
}

const char *sf_event_kind_name(sf_event_kind_t kind)
{
    return (unsigned)kind < SF_EV_KIND_N ? KIND_NAME[kind] : NULL;
}

json_t *sf_eventlog_counts(const sf_eventlog_t *log)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int k = 0; k < SF_EV_KIND_N; k++)
        json_object_set_new(o, KIND_NAME[k], json_integer(log ? (json_int_t)log->count[k] : 0));
    return o;
}
