/* cli/cmd_plot.c — `sigflow plot time-space|coordination|queues RUN --out FILE.png`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "scenario.h"
#include "shot.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow plot time-space|coordination|queues RUN --out FILE.png\n"
            "                    [--scenario FILE] [--ix ID] [--size WxH]\n\n"
            "Draw a plot of a recorded run as a PNG, offscreen (no display needed). RUN is a\n"
            "run record written by `sigflow run ... --runrec FILE` or `sigflow view --record\n"
            "FILE`, or the report of `sigflow run ... --report R.json --runrec FILE`, whose\n"
            "\"run_record\" field names the record (relative to the report's directory). The\n"
            "record names its scenario, which is loaded again.\n\n"
            "  time-space    trajectories along the arterial with each intersection's\n"
            "                through lamps as bars over time (both directions)\n"
            "  coordination  Purdue coordination diagram of one intersection: arrivals\n"
            "                against time in cycle, green/yellow/red bands, %% on green\n"
            "  queues        queue length of each approach of one intersection over time\n\n"
            "  --out FILE       PNG to write (required)\n"
            "  --scenario FILE  scenario to use instead of the one the record names\n"
            "  --ix ID          intersection (coordination, queues); default: the first\n"
            "                   along the arterial\n"
            "  --size WxH       picture size in pixels (default %dx%d)\n"
            "  -h, --help       this text\n",
            SF_SHOT_W, SF_SHOT_H);
}

/* True when the file starts (after blanks) with '{': a JSON report, not a run record. */
static int looks_like_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ch;
    do
        ch = fgetc(f);
    while (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t');
    fclose(f);
    return ch == '{';
}

/* The run record a report names ("run_record", relative to the report's directory
 * unless absolute) into buf. Returns 0, or -1 after saying why on stderr. */
static int record_of_report(const char *report, char *buf, size_t len)
{
    json_error_t jerr;
    json_t *rep = json_load_file(report, 0, &jerr);
    if (!rep) {
        fprintf(stderr, "sigflow plot: %s:%d: not a JSON report: %s\n", report, jerr.line,
                jerr.text);
        return -1;
    }
    const json_t *rr = json_is_object(rep) ? json_object_get(rep, "run_record") : NULL;
    int rc = -1;
    if (!rr) {
        fprintf(stderr,
                "sigflow plot: %s: a JSON report without a run record (\"run_record\"): it holds "
                "totals, not the time series a plot needs (trajectories, lamp changes, queues); "
                "run again "
                "with `sigflow run SCENARIO --report %s --runrec FILE` and plot that report "
                "(or FILE)\n",
                report, report);
    } else if (!json_is_string(rr) || json_string_length(rr) == 0) {
        fprintf(stderr, "sigflow plot: %s: \"run_record\" is not a file name\n", report);
    } else {
        const char *p = json_string_value(rr);
        const char *slash = strrchr(report, '/');
        int dir = p[0] == '/' || !slash ? 0 : (int)(slash - report + 1);
        if ((size_t)snprintf(buf, len, "%.*s%s", dir, report, p) >= len)
            fprintf(stderr, "sigflow plot: %s: \"run_record\" is too long\n", report);
        else
            rc = 0;
    }
    json_decref(rep);
    return rc;
}

int sf_cmd_plot(int argc, char **argv)
{
    const char *kind_s = NULL, *run = NULL, *out = NULL, *scen = NULL, *ix_id = NULL;
    int w = 0, h = 0;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        const char **opt = strcmp(a, "--out") == 0        ? &out
                           : strcmp(a, "--scenario") == 0 ? &scen
                           : strcmp(a, "--ix") == 0       ? &ix_id
                                                          : NULL;
        if (opt || strcmp(a, "--size") == 0) {
            if (k + 1 >= argc) {
                fprintf(stderr, "sigflow plot: %s needs a value\n", a);
                usage(stderr);
                return 2;
            }
            const char *v = argv[++k];
            if (opt) {
                *opt = v;
                continue;
            }
            char tail;
            if (sscanf(v, "%dx%d%c", &w, &h, &tail) != 2 || w < 200 || h < 150 || w > 8192 ||
                h > 8192) {
                fprintf(stderr, "sigflow plot: --size '%s': expected WxH, 200x150 to 8192x8192\n",
                        v);
                return 2;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sigflow plot: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!kind_s) {
            kind_s = a;
        } else if (!run) {
            run = a;
        } else {
            fprintf(stderr, "sigflow plot: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!kind_s || !run || !out) {
        fprintf(stderr, "sigflow plot: %s\n",
                !kind_s ? "missing KIND"
                : !run  ? "missing RUN"
                        : "missing --out FILE.png");
        usage(stderr);
        return 2;
    }
    int kind = sf_plot_kind_parse(kind_s);
    if (kind < 0) {
        fprintf(stderr, "sigflow plot: unknown plot '%s' (time-space, coordination or queues)\n",
                kind_s);
        return 2;
    }
    char recpath[4096];
    if (looks_like_json(run)) {
        if (record_of_report(run, recpath, sizeof recpath) != 0)
            return 1;
        run = recpath;
    }
    char err[512], spath[256];
    if (!scen) {
        if (sf_runrec_peek_scenario(run, spath, sizeof spath, err, sizeof err) != 0) {
            fprintf(stderr, "sigflow plot: %s\n", err);
            return 1;
        }
        if (!spath[0]) {
            fprintf(stderr, "sigflow plot: %s names no scenario file: give --scenario FILE\n", run);
            return 1;
        }
        scen = spath;
    }
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(scen, NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow plot", scen);
        return 1;
    }
    int rc = 1, ix = -1;
    sf_runrec_t *rec = NULL;
    if (ix_id) {
        ix = sf_scenario_find_intersection(sc, ix_id);
        if (ix < 0) {
            fprintf(stderr, "sigflow plot: --ix '%s': no such intersection in %s\n", ix_id, scen);
            rc = 2;
            goto out;
        }
    }
    rec = sf_runrec_load(sc, run, err, sizeof err);
    if (!rec) {
        fprintf(stderr, "sigflow plot: %s\n", err);
        goto out;
    }
    if (sf_view_plot(rec, (sf_plot_kind_t)kind, ix, w, h, out, err, sizeof err) != 0) {
        fprintf(stderr, "sigflow plot: %s\n", err);
        goto out;
    }
    printf("wrote %s (%s, %zu trajectory points, %zu lamp changes, %zu queue samples)\n", out,
           kind_s, sf_runrec_n_points(rec), sf_runrec_n_lamp_changes(rec),
           sf_runrec_n_queue_samples(rec));
    rc = 0;
out:
    sf_runrec_destroy(&rec);
    sf_scenario_destroy(&sc);
    return rc;
}
