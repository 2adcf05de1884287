/* cli/cmd_view.c — `sigflow view SCENARIO [--bus ENDPOINT] [--pub ENDPOINT] ...`: the live
 * window attached to a running simulation bus (this host or another). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL2/SDL.h>

#include "bus.h"
#include "commands.h"
#include "curve_opts.h"
#include "live.h"
#include "scenario.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow view SCENARIO [--bus ENDPOINT] [--pub ENDPOINT | --no-commands]\n"
            "                    [--software] [--size WxH] [--record FILE]\n"
            "                    [--screenshot FILE.png --at SECONDS [--exit]] [--wall SECONDS]\n"
            "                    [--select ID] [--keys K1,K2...]\n"
            "                    [--curve-key FILE --curve-server-key FILE]\n\n"
            "Open the live window on a running simulation bus: the network of SCENARIO to\n"
            "scale with lamps, detectors, vehicles and queues; click an intersection for its\n"
            "panel; h shows the keys. The viewer never slows the simulation: it drops\n"
            "snapshots it cannot draw.\n\n"
            "  --bus ENDPOINT   the bus's subscriber endpoint (default %s)\n"
            "  --pub ENDPOINT   the bus's publisher endpoint, for the controls (default %s)\n"
            "  --no-commands    watch only: send no ViewCommand\n"
            "  --software       use the software renderer even when a GPU one exists\n"
            "  --size WxH       window size (default 1280x800)\n"
            "  --record FILE    write a run record for `sigflow plot` when the window closes\n"
            "  --screenshot FILE.png --at SECONDS  save the window once sim time reaches\n"
            "                   SECONDS (--at end: once the run has ended, with its final\n"
            "                   MOEs shown); with --exit, then close\n"
            "  --wall SECONDS   close after this much wall time\n"
            "  --select ID      open the panel of intersection ID at start\n"
            "  --keys K1,K2..   press these keys once bus data arrived (scripted sessions),\n"
            "                   e.g. --keys space,+,p\n"
            "  -h, --help       this text\n",
            SF_BUS_DEFAULT_SUB, SF_BUS_DEFAULT_PUB);
    fputs(SF_CURVE_HELP_CLIENT, out);
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "sigflow view: %s '%s': expected a number in %g..%g\n", opt, v, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

int sf_cmd_view(int argc, char **argv)
{
    sf_live_opts_t o = {
        .sub_endpoint = SF_BUS_DEFAULT_SUB, .pub_endpoint = SF_BUS_DEFAULT_PUB, .shot_at_s = -1};
    const char *file = NULL;
    sf_curve_opts_t curve = {0};
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        bool takes = strcmp(a, "--bus") == 0 || strcmp(a, "--pub") == 0 ||
                     strcmp(a, "--size") == 0 || strcmp(a, "--record") == 0 ||
                     strcmp(a, "--screenshot") == 0 || strcmp(a, "--at") == 0 ||
                     strcmp(a, "--wall") == 0 || strcmp(a, "--keys") == 0 ||
                     strcmp(a, "--select") == 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (takes && !v) {
            fprintf(stderr, "sigflow view: %s needs a value\n", a);
            return 2;
        }
        int cr = sf_curve_opt("view", &curve, a, v);
        if (cr < 0)
            return 2;
        if (cr > 0) {
            /* taken, with its value */
        } else if (strcmp(a, "--bus") == 0) {
            o.sub_endpoint = v;
        } else if (strcmp(a, "--pub") == 0) {
            o.pub_endpoint = v;
        } else if (strcmp(a, "--no-commands") == 0) {
            o.pub_endpoint = NULL;
            continue;
        } else if (strcmp(a, "--software") == 0) {
            o.software = true;
            continue;
        } else if (strcmp(a, "--exit") == 0) {
            o.exit_after_shot = true;
            continue;
        } else if (strcmp(a, "--size") == 0) {
            char tail;
            if (sscanf(v, "%dx%d%c", &o.w, &o.h, &tail) != 2 || o.w < 320 || o.h < 240 ||
                o.w > 8192 || o.h > 8192) {
                fprintf(stderr, "sigflow view: --size '%s': expected WxH, 320x240 to 8192x8192\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "--record") == 0) {
            o.record_path = v;
        } else if (strcmp(a, "--screenshot") == 0) {
            o.shot_path = v;
        } else if (strcmp(a, "--at") == 0) {
            if (strcmp(v, "end") == 0)
                o.shot_at_s = INFINITY; /* once the run has ended (live.h) */
            else if (parse_num(a, v, 0, 1e9, &o.shot_at_s) != 0)
                return 2;
        } else if (strcmp(a, "--select") == 0) {
            o.select_id = v;
        } else if (strcmp(a, "--keys") == 0) {
            o.keys = v;
        } else if (strcmp(a, "--wall") == 0) {
            if (parse_num(a, v, 0.01, 1e9, &o.max_wall_s) != 0)
                return 2;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sigflow view: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (file) {
            fprintf(stderr, "sigflow view: one SCENARIO only (got '%s' and '%s')\n", file, a);
            return 2;
        } else {
            file = a;
            continue;
        }
        k++; /* the option's value */
    }
    if (!file) {
        fprintf(stderr, "sigflow view: missing SCENARIO (the file the running simulation uses)\n");
        usage(stderr);
        return 2;
    }
    if ((o.shot_path != NULL) != (o.shot_at_s >= 0)) {
        fprintf(stderr, "sigflow view: --screenshot and --at go together\n");
        return 2;
    }
    if (o.exit_after_shot && !o.shot_path) {
        fprintf(stderr, "sigflow view: --exit needs --screenshot\n");
        return 2;
    }
    sf_bus_security_t keys;
    bool secure = false;
    int crc = sf_curve_opts_client("view", &curve, &keys, &secure);
    if (crc != 0)
        return crc;
    o.security = secure ? &keys : NULL;
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(file, NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow view", file);
        return 1;
    }
    fprintf(stderr, "sigflow view: %s on bus %s\n", sc->name, o.sub_endpoint);
    char err[512];
    sf_live_stats_t st;
    int rc = sf_live_run(sc, &o, &st, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "sigflow view: %s\n", err);
    else
        printf("view: %lu frames (%s renderer), %lu messages (%lu refused), %lu snapshots "
               "(%lu dropped undrawn), %lu commands sent%s%s%s\n",
               st.frames, st.backend, st.messages, st.refused, st.snaps, st.snaps_dropped,
               st.commands, st.shot_written ? ", screenshot " : "",
               st.shot_written ? o.shot_path : "", st.run_finished ? ", run finished" : "");
    sf_scenario_destroy(&sc);
    SDL_Quit(); /* the process is done with SDL: release what its video backends hold */
    return rc == 0 ? 0 : 1;
}
