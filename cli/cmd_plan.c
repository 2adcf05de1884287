/* cli/cmd_plan.c — `sigflow plan webster|greenwave SCENARIO ...`: timing-plan mathematics
 * on a scenario: Webster cycle and splits from its volumes, green-wave offsets and
 * bandwidth for its coordinated corridor (optionally written into a copy of the file). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "greenwave.h"
#include "scenario.h"
#include "webster.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow plan webster SCENARIO [OPTIONS] [--set PATH=VALUE]...\n"
            "       sigflow plan greenwave SCENARIO [OPTIONS] [--set PATH=VALUE]...\n\n"
            "webster: per intersection, the critical flow ratios y, Y, lost time L, Webster's\n"
            "cycle C0 = (1.5 L + 5) / (1 - Y) (bounded, rounded up to 1 s), the splits and each\n"
            "phase's degree of saturation x = y C / g at that plan.\n"
            "  --factor F        multiply every entry flow by F (default 1)\n"
            "  --common          put every intersection on the longest cycle (coordination)\n"
            "  --min-cycle S     lower cycle bound, s (default 40)\n"
            "  --max-cycle S     upper cycle bound, s (default 180)\n"
            "  --sat T,L,R       saturation flow per lane for through, left, right movements,\n"
            "                    veh/h (default 1800,1700,1600)\n"
            "  --lost L1,E       start-up lost time and end gain, s (default 2,2)\n\n"
            "greenwave: offsets maximising w b + k b' for the coordinated corridor, bandwidth\n"
            "each way and efficiency (b + b')/(2C), compared with all-zero and current offsets.\n"
            "Each band starts after the queue of vehicles turned in from the cross streets has\n"
            "cleared (MAXBAND's queue-clearance time, from the volumes; column tau).\n"
            "  --speed KMH       progression speed (default: each link's speed limit)\n"
            "  --speed-min KMH --speed-max KMH\n"
            "                    search the speed in 1 km/h steps within these bounds\n"
            "  --cycle-min S --cycle-max S\n"
            "                    also search the common cycle (whole seconds) within these\n"
            "                    bounds, greens stretched with it, maximising (b + k b')/C;\n"
            "                    --write then also writes the cycle and splits\n"
            "  --weights W,K     weights of the outbound (eastbound/northbound) band b and the\n"
            "                    inbound band b' (default: control.greenwave.weight_out and\n"
            "                    weight_in of the scenario, 1 and 1 unless set)\n"
            "  --weight K        the inbound weight k alone (the outbound one as above)\n"
            "  --two-way         MAXBAND's target ratio: the lighter-weighted band must reach\n"
            "                    (its weight / the other's) times the heavier one (default:\n"
            "                    control.greenwave.two_way, false: the weighted sum)\n"
            "  --no-queue-clearance\n"
            "                    bands from the green starts (tau = 0 everywhere; default: the\n"
            "                    scenario's control.greenwave.queue_clearance, true unless set)\n"
            "  --bus LINE        bus progression: bus desired speed, dwell at LINE's stops;\n"
            "                    a line that runs one way has its direction favoured (the\n"
            "                    other band weighted 0.1) unless --weight is given\n"
            "  --plan N          coordinated plan number (default: the plan in force at the\n"
            "                    scenario's start time)\n"
            "  --step S          offset resolution, s (default 0.1)\n"
            "  --write FILE      save a copy of SCENARIO with the optimised offsets in that\n"
            "                    plan of every corridor intersection (checked after writing)\n\n"
            "  --set PATH=VALUE  override a scenario field before checking (repeatable)\n"
            "  -h, --help        this text\n"
            "Exit status: 0 ok, 1 a bad scenario or no feasible plan, 2 a usage error.\n");
}

/* Parse a finite number in [lo, hi]; false with a message otherwise. */
static bool parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || end == s || *end != '\0' || errno != 0 || !isfinite(v)) {
        fprintf(stderr, "sigflow plan: %s needs a number, got '%s'\n", opt, s ? s : "");
        return false;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "sigflow plan: %s must be in [%g, %g], got %g\n", opt, lo, hi, v);
        return false;
    }
    *out = v;
    return true;
}

/* Parse "a,b" or "a,b,c" (n numbers) in [lo, hi]. */
static bool parse_list(const char *opt, const char *s, int n, double lo, double hi, double *out)
{
    char buf[128];
    if (!s || strlen(s) >= sizeof buf) {
        fprintf(stderr, "sigflow plan: %s needs %d comma-separated numbers\n", opt, n);
        return false;
    }
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int i = 0; i < n; i++, tok = strtok_r(NULL, ",", &save))
        if (!tok || !parse_num(opt, tok, lo, hi, &out[i])) {
            if (!tok)
                fprintf(stderr, "sigflow plan: %s needs %d comma-separated numbers, got '%s'\n",
                        opt, n, s);
            return false;
        }
    if (tok) {
        fprintf(stderr, "sigflow plan: %s needs %d comma-separated numbers, got '%s'\n", opt, n, s);
        return false;
    }
    return true;
}

typedef struct {
    const char *mode;      /* "webster" or "greenwave" */
    const char *file;      /* scenario */
    const char **sets;     /* --set strings */
    size_t n_sets;         /* count of sets */
    sf_webster_opts_t wo;  /* webster options */
    double speed_kmh;      /* 0 = link limits */
    double speed_min_kmh;  /* 0 = no speed search */
    double speed_max_kmh;  /* 0 = no speed search */
    double cycle_min_s;    /* 0 = no cycle search */
    double cycle_max_s;    /* upper bound of the cycle search */
    double weight;         /* k */
    double weight_out;     /* w (with weight_out_given) */
    bool weight_out_given; /* --weights was on the command line */
    bool no_qc;            /* --no-queue-clearance */
    bool two_way;          /* --two-way */
    bool common;           /* webster --common */
    bool weight_given;     /* --weight was on the command line */
    const char *bus;       /* line id or NULL */
    int plan_id;           /* 0 = in force at start */
    double step_s;         /* offset resolution */
    const char *write;     /* output file or NULL */
} args_t;

static int run_webster(const args_t *a, const sf_scenario_t *sc)
{
    double *flow = calloc(sc->n_links ? sc->n_links : 1, sizeof *flow);
    if (!flow) {
        fprintf(stderr, "sigflow plan: out of memory\n");
        return 1;
    }
    if (sf_link_flows(sc, a->wo.demand_factor, flow) < 0) {
        fprintf(stderr, "sigflow plan: %s: cannot propagate the entry flows (%s)\n", a->file,
                errno == ELOOP ? "the flows do not settle: a loop in the network"
                               : strerror(errno));
        free(flow);
        return 1;
    }
    printf("Webster plans for %s (%s)\n", sc->name, a->file);
    printf("demand factor %.2f; saturation flow %.0f/%.0f/%.0f veh/h/lane (through/left/right);"
           " lost time per phase = %.1f s + yellow + red clear - %.1f s; cycle bounds %.0f-%.0f "
           "s\n",
           a->wo.demand_factor, a->wo.sat_through_veh_h, a->wo.sat_left_veh_h,
           a->wo.sat_right_veh_h, a->wo.startup_lost_s, a->wo.end_gain_s, a->wo.min_cycle_s,
           a->wo.max_cycle_s);
    int rc = 0;
    double common = 0;
    sf_webster_t *res = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *res);
    bool *ok = calloc(sc->n_intersections ? sc->n_intersections : 1, sizeof *ok);
    if (!res || !ok) {
        fprintf(stderr, "sigflow plan: out of memory\n");
        free(res);
        free(ok);
        free(flow);
        return 1;
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        char err[256];
        if (sf_webster_intersection(sc, i, flow, &a->wo, &res[i], err, sizeof err) < 0) {
            fprintf(stderr, "sigflow plan: %s: %s\n", a->file, err);
            rc = 1;
            continue;
        }
        ok[i] = true;
        common = fmax(common, res[i].cycle_ds / 10.0);
    }
    if (a->common && rc == 0) {
        /* coordination: every intersection at the longest cycle, its time shared by y */
        printf("every intersection at the common cycle %.0f s (the longest Webster cycle)\n",
               common);
        for (uint32_t i = 0; i < sc->n_intersections; i++) {
            uint16_t split[SF_MAX_PHASES] = {0};
            if (sf_split_allocate(&sc->intersections[i], (uint32_t)lround(common * 10),
                                  res[i].lost_s, res[i].y, 0, split, NULL) < 0) {
                fprintf(stderr, "sigflow plan: %s: intersection %s: cannot allocate %.0f s\n",
                        a->file, sc->intersections[i].id, common);
                rc = 1;
                ok[i] = false;
                continue;
            }
            memcpy(res[i].split_ds, split, sizeof split);
            res[i].cycle_ds = (uint16_t)lround(common * 10);
        }
    }
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        if (!ok[i])
            continue;
        const sf_intersection_t *ix = &sc->intersections[i];
        const sf_webster_t w = res[i];
        printf("\n%s  %s\n", ix->id, ix->name);
        if (w.oversaturated)
            printf("  Y = %.3f  L = %.1f s  C0 = none (Y >= 1: oversaturated)  cycle = %.1f s%s\n",
                   w.y_total, w.lost_total_s, w.cycle_ds / 10.0, a->common ? "" : " (the maximum)");
        else
            printf("  Y = %.3f  L = %.1f s  C0 = %.1f s  cycle = %.1f s%s\n", w.y_total,
                   w.lost_total_s, w.c0_s, w.cycle_ds / 10.0,
                   a->common               ? " (common)"
                   : w.raised_for_minimums ? "  (raised to fit the minimum splits)"
                                           : "");
        printf("  %-6s %-5s %-8s %-7s %-8s %-8s %-8s %-6s\n", "phase", "ring", "y", "crit",
               "lost_s", "split_s", "green_s", "x");
        for (uint8_t p = 0; p < ix->n_phases; p++) {
            const sf_phase_t *ph = &ix->phases[p];
            double green = (w.split_ds[p] - ph->yellow_ds - ph->red_clear_ds) / 10.0;
            /* degree of saturation at this plan: y C / g with the effective green */
            double g_eff = w.split_ds[p] / 10.0 - w.lost_s[p];
            char x[16] = "-";
            if (g_eff > 0)
                snprintf(x, sizeof x, "%.2f", w.y[p] * (w.cycle_ds / 10.0) / g_eff);
            printf("  %-6u %-5u %-8.3f %-7s %-8.1f %-8.1f %-8.1f %-6s\n", ph->id, ph->ring, w.y[p],
                   w.critical[p] ? "yes" : "", w.lost_s[p], w.split_ds[p] / 10.0, green, x);
        }
    }
    if (sc->n_intersections > 1 && rc == 0 && !a->common)
        printf("\ncommon cycle for coordination (the longest): %.1f s (--common shows the "
               "splits at it)\n",
               common);
    free(res);
    free(ok);
    free(flow);
    return rc;
}

static json_t *seconds(uint32_t ds)
{
    return ds % 10 == 0 ? json_integer(ds / 10) : json_real((double)ds / 10.0);
}

/* Write plan p's offset (and, with timing, its cycle and splits) into the plan with the
 * same id of intersection ix in the JSON tree. False when the file has no such plan or a
 * split entry is missing. */
static bool set_plan(json_t *root, const sf_intersection_t *ix, const sf_plan_t *p, bool timing)
{
    json_t *ixs = json_object_get(root, "intersections");
    size_t i, j, k;
    json_t *jx, *pl, *sp;
    json_array_foreach(ixs, i, jx)
    {
        const char *id = json_string_value(json_object_get(jx, "id"));
        if (!id || strcmp(id, ix->id) != 0)
            continue;
        json_array_foreach(json_object_get(jx, "plans"), j, pl)
        {
            json_t *pid = json_object_get(pl, "id");
            if (!json_is_integer(pid) || json_integer_value(pid) != p->id)
                continue;
            if (json_object_set_new(pl, "offset_s", seconds(p->offset_ds)) != 0)
                return false;
            if (!timing)
                return true;
            if (json_object_set_new(pl, "cycle_s", seconds(p->cycle_ds)) != 0)
                return false;
            uint16_t done = 0;
            json_array_foreach(json_object_get(pl, "splits"), k, sp)
            {
                json_t *ph = json_object_get(sp, "phase");
                for (uint8_t q = 0; q < ix->n_phases; q++)
                    if (json_is_integer(ph) && json_integer_value(ph) == ix->phases[q].id) {
                        if (json_object_set_new(sp, "split_s", seconds(p->split_ds[q])) != 0)
                            return false;
                        done |= (uint16_t)(1u << q);
                    }
            }
            for (uint8_t q = 0; q < ix->n_phases; q++)
                if (p->split_ds[q] && !(done >> q & 1u))
                    return false;
            return true;
        }
    }
    return false;
}

static int write_plans(const args_t *a, const sf_scenario_t *sc, const uint32_t *node,
                       const sf_plan_t *plans, uint32_t n, bool timing)
{
    json_error_t jerr;
    json_t *root = json_load_file(a->file, 0, &jerr);
    if (!root) {
        fprintf(stderr, "sigflow plan: %s:%d:%d: %s\n", a->file, jerr.line, jerr.column, jerr.text);
        return 1;
    }
    for (uint32_t k = 0; k < n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node[k]];
        if (!set_plan(root, ix, &plans[k], timing)) {
            fprintf(stderr,
                    "sigflow plan: %s: intersections[id=%s].plans[id=%d] (or one of its splits) "
                    "not found in the file (added by --set?); nothing written\n",
                    a->file, ix->id, plans[k].id);
            json_decref(root);
            return 1;
        }
    }
    int rc = json_dump_file(root, a->write, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (rc != 0) {
        fprintf(stderr, "sigflow plan: cannot write %s: %s\n", a->write, strerror(errno));
        return 1;
    }
    /* what was written must load and check like any scenario */
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *back = sf_scenario_load(a->write, NULL, 0, &errs);
    if (!back) {
        fprintf(stderr, "sigflow plan: the written %s does not pass the checks:\n", a->write);
        sf_errors_report(stderr, &errs, "sigflow plan", a->write);
        return 1;
    }
    sf_scenario_destroy(&back);
    printf("\nwrote %s (%s of plan %d at %u intersections; it passes sigflow check)\n", a->write,
           timing ? "cycle, splits and offsets" : "offsets", plans[0].id, n);
    if (a->n_sets > 0)
        printf("note: the --set overrides are not written into %s, only the plans\n", a->write);
    return 0;
}

static void print_band(const char *what, const sf_gw_band_t *b)
{
    printf("  %-32s %10.1f %10.1f %11.3f\n", what, b->b_out_s, b->b_in_s, b->efficiency);
}

/* Offsets (and the speed, with a speed search) for corridor c; *speed receives the speed. */
static int optimise(sf_gw_corridor_t *c, const sf_gw_opts_t *o, const args_t *a, double *th,
                    sf_gw_band_t *b, double *speed)
{
    if (a->speed_min_kmh > 0)
        return sf_gw_optimise_speed(c, o, a->speed_min_kmh / 3.6, a->speed_max_kmh / 3.6, speed, th,
                                    b);
    return sf_gw_optimise(c, o, th, b);
}

static int run_greenwave(const args_t *a, const sf_scenario_t *sc)
{
    const sf_greenwave_t *gw = &sc->control.greenwave;
    sf_gw_source_t src = {.plan_id = a->plan_id,
                          .speed_mps = a->speed_kmh / 3.6,
                          .line_idx = -1,
                          .queue_clearance = gw->queue_clearance && !a->no_qc};
    if (a->bus) {
        for (uint32_t l = 0; l < sc->n_lines; l++)
            if (strcmp(sc->lines[l].id, a->bus) == 0)
                src.line_idx = (int)l;
        if (src.line_idx < 0) {
            fprintf(stderr, "sigflow plan: --bus: no bus line '%s' in %s (lines:", a->bus, a->file);
            for (uint32_t l = 0; l < sc->n_lines; l++)
                fprintf(stderr, " %s", sc->lines[l].id);
            fprintf(stderr, "%s)\n", sc->n_lines ? "" : " none");
            return 2;
        }
    }
    static sf_gw_corridor_t c0, c; /* large: kept off the stack; main() calls this once */
    uint32_t node[SF_GW_MAX_NODES];
    uint8_t plan_idx[SF_GW_MAX_NODES];
    char err[256];
    bool search_cycle = a->cycle_min_s > 0;
    /* the corridor as the scenario has it: the baseline for the comparison */
    bool have_base = sf_gw_from_scenario(sc, &src, &c0, node, plan_idx, err, sizeof err) == 0;
    if (!have_base && !search_cycle) {
        fprintf(stderr, "sigflow plan: %s: %s\n", a->file, err);
        return 1;
    }
    sf_gw_opts_t o;
    sf_gw_opts_default(&o);
    /* by default the weights `sigflow run` uses (control.greenwave, else from the volumes),
     * so that the planner prints the offsets the controller computes */
    const char *w_from = "--weights";
    if (a->weight_out_given) {
        o.weight_out = a->weight_out;
        o.weight_in = a->weight;
    } else if (a->weight_given) {
        o.weight_out = 1;
        o.weight_in = a->weight;
        w_from = "--weight";
    } else {
        sf_gw_source_t vs = src;
        if (!have_base)
            vs.cycle_ds = (uint32_t)lround(a->cycle_min_s * 10);
        if (sf_gw_from_scenario(sc, &vs, &c, node, plan_idx, err, sizeof err) < 0 ||
            sf_gw_weights(sc, &c, &o.weight_out, &o.weight_in) < 0) {
            o.weight_out = o.weight_in = 1;
        }
        w_from = gw->weight_out > 0 || gw->weight_in > 0 ? "control.greenwave" : "volumes";
    }
    o.step_s = a->step_s;
    o.two_way = a->two_way || gw->two_way;
    double th[SF_GW_MAX_NODES], speed = 0;
    sf_gw_band_t best;
    uint32_t cycle_ds = 0;
    if (search_cycle) {
        /* MAXBAND also chooses the cycle: maximise (w b + k b') / C, i.e. bands as a share
         * of the cycle, on a 1 s offset grid per cycle, then refine the best one */
        sf_gw_opts_t oc = o;
        oc.step_s = fmax(1.0, o.step_s);
        double best_obj = -1;
        int n_ok = 0;
        for (long cd = lround(a->cycle_min_s * 10); cd <= lround(a->cycle_max_s * 10); cd += 10) {
            sf_gw_source_t sc_src = src;
            sc_src.cycle_ds = (uint32_t)cd;
            if (sf_gw_from_scenario(sc, &sc_src, &c, node, plan_idx, err, sizeof err) < 0)
                continue; /* e.g. below some intersection's minimum splits */
            if (a->bus && !a->weight_given && c.line_dirs == 1)
                oc.weight_in = 0.1; /* as below, for the final optimisation */
            else if (a->bus && !a->weight_given && c.line_dirs == 2)
                oc.weight_out = 0.1;
            sf_gw_band_t b;
            double v = 0;
            if (optimise(&c, &oc, a, th, &b, &v) < 0)
                continue; /* the grid does not fit this cycle */
            n_ok++;
            double obj = sf_gw_objective(&oc, &b) / c.cycle_s;
            if (obj > best_obj + 1e-12) {
                best_obj = obj;
                cycle_ds = (uint32_t)cd;
            }
        }
        if (n_ok == 0) {
            fprintf(stderr, "sigflow plan: %s: no cycle in %g-%g s fits the corridor (%s)\n",
                    a->file, a->cycle_min_s, a->cycle_max_s, err);
            return 1;
        }
        src.cycle_ds = cycle_ds;
    }
    if (sf_gw_from_scenario(sc, &src, &c, node, plan_idx, err, sizeof err) < 0) {
        fprintf(stderr, "sigflow plan: %s: %s\n", a->file, err);
        return 1;
    }
    /* a bus line that runs one way only: favour its direction unless told otherwise (the
     * other direction keeps a small weight so that its band still breaks ties) */
    if (a->bus && !a->weight_given && c.line_dirs == 1)
        o.weight_in = 0.1;
    else if (a->bus && !a->weight_given && c.line_dirs == 2)
        o.weight_out = 0.1;
    if (optimise(&c, &o, a, th, &best, &speed) < 0) {
        fprintf(stderr,
                "sigflow plan: the optimisation was refused (%s): is the cycle a multiple of "
                "--step?\n",
                strerror(errno));
        return 1;
    }
    double zero[SF_GW_MAX_NODES] = {0}, cur[SF_GW_MAX_NODES];
    sf_gw_band_t bz, bc;
    if (have_base) {
        for (uint32_t k = 0; k < c0.n; k++)
            cur[k] = sc->intersections[node[k]].plans[plan_idx[k]].offset_ds / 10.0;
        if (a->speed_min_kmh > 0) /* compare at the chosen speed */
            sf_gw_set_speed(&c0, speed);
        sf_gw_bandwidth(&c0, zero, &bz);
        sf_gw_bandwidth(&c0, cur, &bc);
    }

    bool x_axis =
        c.n < 2 || fabs(sc->intersections[node[c.n - 1]].x_m - sc->intersections[node[0]].x_m) >=
                       fabs(sc->intersections[node[c.n - 1]].y_m - sc->intersections[node[0]].y_m);
    const char *ob = x_axis ? "eastbound" : "northbound", *ib = x_axis ? "westbound" : "southbound";
    int pid = sc->intersections[node[0]].plans[plan_idx[0]].id;
    printf("Green wave for %s (%s)\n", sc->name, a->file);
    printf("plan %d, %u coordinated intersections; outbound = %s, inbound = %s; maximising "
           "%.2f b + %.2f b'%s\n",
           pid, c.n, ob, ib, o.weight_out, o.weight_in,
           o.two_way ? " with MAXBAND's target ratio between the bands (two-way)" : "");
    if (strcmp(w_from, "volumes") == 0)
        printf("weights from the volumes (MAXBAND's k = V_in / V_out): %s %.0f veh/h, %s %.0f "
               "veh/h (mean link flow)\n",
               ob, c.volume_out_veh_h, ib, c.volume_in_veh_h);
    else
        printf("weights from %s\n", w_from);
    if (search_cycle)
        printf("common cycle searched in %g-%g s (greens stretched with the cycle): best %.0f s "
               "(the plan has %.1f s)\n",
               a->cycle_min_s, a->cycle_max_s, c.cycle_s,
               sc->intersections[node[0]].plans[plan_idx[0]].cycle_ds / 10.0);
    else
        printf("common cycle %.1f s\n", c.cycle_s);
    if (a->speed_min_kmh > 0)
        printf("progression speed searched in %.0f-%.0f km/h: best %.0f km/h\n", a->speed_min_kmh,
               a->speed_max_kmh, speed * 3.6);
    else if (a->speed_kmh > 0)
        printf("progression speed %.1f km/h\n", a->speed_kmh);
    else
        printf("progression speed: each link's speed limit%s\n",
               a->bus ? " times the bus desired-speed factor" : "");
    if (a->bus)
        printf("bus progression for line %s (runs %s): dwell at its stops and the time lost "
               "stopping are added to the travel times\n",
               a->bus,
               c.line_dirs == 3   ? "both ways"
               : c.line_dirs == 1 ? ob
               : c.line_dirs == 2 ? ib
                                  : "on no corridor segment");
    if (src.queue_clearance)
        printf("queue clearance: tau = %.0f s + (turned-in queue per through lane) x %.0f s "
               "(saturation flow %.0f veh/h/lane)\n",
               SF_GW_STARTUP_LOST_S, 3600.0 / SF_GW_SAT_FLOW_VEH_H, SF_GW_SAT_FLOW_VEH_H);
    else
        printf("queue clearance: off (bands from the green starts)\n");
    printf("\n  %-4s %-10s %9s %9s %9s %9s %9s %10s %10s %9s %9s\n", "node", "id", "x_m", "g_out_s",
           "tau_out_s", "g_in_s", "tau_in_s", "offset_s", "current_s", "t_next_s", "t_prev_s");
    for (uint32_t k = 0; k < c.n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node[k]];
        char tn[16] = "-", tp[16] = "-";
        if (k + 1 < c.n)
            snprintf(tn, sizeof tn, "%.1f", c.t_out_s[k]);
        if (k > 0)
            snprintf(tp, sizeof tp, "%.1f", c.t_in_s[k - 1]);
        printf("  %-4u %-10s %9.1f %9.1f %9.1f %9.1f %9.1f %10.1f %10.1f %9s %9s\n", k, ix->id,
               x_axis ? ix->x_m : ix->y_m, c.green_out_s[k], c.tau_out_s[k], c.green_in_s[k],
               c.tau_in_s[k], th[k], ix->plans[plan_idx[k]].offset_ds / 10.0, tn, tp);
    }
    printf("\n  %-32s %10s %10s %11s\n", "offsets", "b_out_s", "b_in_s", "efficiency");
    if (have_base) {
        print_band("all zero", &bz);
        print_band("current (scenario file)", &bc);
    } else {
        printf("  %-32s (the plans have no common cycle)\n", "all zero, current");
    }
    double ow[SF_GW_MAX_NODES];
    sf_gw_band_t bo;
    char label[64];
    for (int d = 0; d < 2; d++)
        if (sf_gw_one_way(&c, (sf_gw_dir_t)d, ow) == 0) {
            /* on the same offset grid as the optimiser: what a unit could run */
            for (uint32_t k = 0; k < c.n; k++)
                ow[k] = round(ow[k] / o.step_s) * o.step_s;
            if (sf_gw_bandwidth(&c, ow, &bo) < 0)
                continue;
            snprintf(label, sizeof label, "one-way %s (x/v mod C)", d == 0 ? ob : ib);
            print_band(label, &bo);
        }
    print_band(search_cycle ? "optimised (cycle searched)" : "optimised", &best);
    if (have_base && bz.b_out_s + bz.b_in_s > 0)
        printf("  efficiency vs all zero: %+.3f (%+.0f %%)\n", best.efficiency - bz.efficiency,
               100.0 * (best.efficiency - bz.efficiency) / bz.efficiency);
    else if (have_base)
        printf("  efficiency vs all zero: %+.3f (all-zero offsets give no band)\n",
               best.efficiency);
    /* each direction on its own: what share of its narrowest usable window the band
     * fills, and plainly when a weighted direction got no band at all */
    for (int d = 0; d < 2; d++) {
        double narrow = INFINITY;
        uint32_t at = 0;
        for (uint32_t k = 0; k < c.n; k++) {
            double g = d == 0 ? c.green_out_s[k] : c.green_in_s[k];
            double tau = d == 0 ? c.tau_out_s[k] : c.tau_in_s[k];
            double u = g >= c.cycle_s ? g : fmax(0, g - tau);
            if (u < narrow) {
                narrow = u;
                at = k;
            }
        }
        double b = d == 0 ? best.b_out_s : best.b_in_s;
        double w = d == 0 ? o.weight_out : o.weight_in;
        printf("  %s: band %.1f s of the narrowest usable window %.1f s (node %u %s)%s\n",
               d == 0 ? ob : ib, b, narrow, at, sc->intersections[node[at]].id,
               b > 0   ? ""
               : w > 0 ? "; no band in this direction at these weights (the optimum is a "
                         "one-way wave)"
                       : "; weight 0: not optimised");
    }
    if (!a->write)
        return 0;
    sf_plan_t plans[SF_GW_MAX_NODES];
    for (uint32_t k = 0; k < c.n; k++) {
        const sf_intersection_t *ix = &sc->intersections[node[k]];
        plans[k] = ix->plans[plan_idx[k]];
        if (search_cycle && sf_gw_stretch_plan(ix, &plans[k], cycle_ds, &plans[k]) < 0) {
            fprintf(stderr, "sigflow plan: intersection %s: cannot stretch plan %d\n", ix->id,
                    plans[k].id);
            return 1;
        }
        plans[k].offset_ds = (uint16_t)(lround(th[k] * 10.0) % (long)plans[k].cycle_ds);
    }
    return write_plans(a, sc, node, plans, c.n, search_cycle);
}

int sf_cmd_plan(int argc, char **argv)
{
    args_t a = {.weight = 1.0, .step_s = 0.1};
    sf_webster_opts_default(&a.wo);
    a.sets = calloc((size_t)(argc > 0 ? argc : 1), sizeof *a.sets);
    if (!a.sets) {
        fprintf(stderr, "sigflow plan: out of memory\n");
        return 1;
    }
    int rc = 2;
    bool gw_only = false, wb_only = false;
    const char *gw_opt = NULL, *wb_opt = NULL;
    for (int k = 1; k < argc; k++) {
        const char *o = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        double x[3];
#define NEED_VALUE                                                                                 \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "sigflow plan: %s needs a value\n", o);                                \
            goto usage_err;                                                                        \
        }                                                                                          \
        k++;                                                                                       \
    } while (0)
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(o, "--set") == 0) {
            NEED_VALUE;
            a.sets[a.n_sets++] = v;
        } else if (strcmp(o, "--factor") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 0, 100, &a.wo.demand_factor))
                goto usage_err;
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--common") == 0) {
            a.common = true;
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--min-cycle") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 10, 600, &a.wo.min_cycle_s))
                goto usage_err;
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--max-cycle") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 10, 600, &a.wo.max_cycle_s))
                goto usage_err;
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--sat") == 0) {
            NEED_VALUE;
            if (!parse_list(o, v, 3, 100, 5000, x))
                goto usage_err;
            a.wo.sat_through_veh_h = x[0];
            a.wo.sat_left_veh_h = x[1];
            a.wo.sat_right_veh_h = x[2];
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--lost") == 0) {
            NEED_VALUE;
            if (!parse_list(o, v, 2, 0, 10, x))
                goto usage_err;
            a.wo.startup_lost_s = x[0];
            a.wo.end_gain_s = x[1];
            wb_only = true, wb_opt = o;
        } else if (strcmp(o, "--speed") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 5, 120, &a.speed_kmh))
                goto usage_err;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--speed-min") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 5, 120, &a.speed_min_kmh))
                goto usage_err;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--speed-max") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 5, 120, &a.speed_max_kmh))
                goto usage_err;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--cycle-min") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 20, 300, &a.cycle_min_s) ||
                a.cycle_min_s != floor(a.cycle_min_s)) {
                if (a.cycle_min_s != floor(a.cycle_min_s))
                    fprintf(stderr, "sigflow plan: --cycle-min needs whole seconds\n");
                goto usage_err;
            }
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--cycle-max") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 20, 300, &a.cycle_max_s) ||
                a.cycle_max_s != floor(a.cycle_max_s)) {
                if (a.cycle_max_s != floor(a.cycle_max_s))
                    fprintf(stderr, "sigflow plan: --cycle-max needs whole seconds\n");
                goto usage_err;
            }
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--weight") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 0, 100, &a.weight))
                goto usage_err;
            if (a.weight_out_given) {
                fprintf(stderr, "sigflow plan: --weight and --weights exclude each other\n");
                goto usage_err;
            }
            a.weight_given = true;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--weights") == 0) {
            NEED_VALUE;
            if (!parse_list(o, v, 2, 0, 100, x))
                goto usage_err;
            if (a.weight_given) {
                fprintf(stderr, "sigflow plan: --weight and --weights exclude each other\n");
                goto usage_err;
            }
            if (x[0] + x[1] <= 0) {
                fprintf(stderr, "sigflow plan: --weights: both 0 leaves nothing to optimise\n");
                goto usage_err;
            }
            a.weight_out = x[0];
            a.weight = x[1];
            a.weight_out_given = a.weight_given = true;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--two-way") == 0) {
            a.two_way = true;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--no-queue-clearance") == 0) {
            a.no_qc = true;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--bus") == 0) {
            NEED_VALUE;
            a.bus = v;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--plan") == 0) {
            NEED_VALUE;
            double p = 0;
            if (!parse_num(o, v, 1, SF_MAX_PLANS, &p))
                goto usage_err;
            if (p != floor(p)) {
                fprintf(stderr, "sigflow plan: --plan needs a plan number 1..16, got '%s'\n", v);
                goto usage_err;
            }
            a.plan_id = (int)p;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--step") == 0) {
            NEED_VALUE;
            if (!parse_num(o, v, 0.1, 10, &a.step_s))
                goto usage_err;
            gw_only = true, gw_opt = o;
        } else if (strcmp(o, "--write") == 0) {
            NEED_VALUE;
            a.write = v;
            gw_only = true, gw_opt = o;
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "sigflow plan: unknown option '%s'\n", o);
            goto usage_err;
        } else if (!a.mode) {
            a.mode = o;
        } else if (!a.file) {
            a.file = o;
        } else {
            fprintf(stderr, "sigflow plan: one SCENARIO only (got '%s' and '%s')\n", a.file, o);
            goto usage_err;
        }
#undef NEED_VALUE
    }
    if (!a.mode) {
        fprintf(stderr, "sigflow plan: missing webster or greenwave\n");
        goto usage_err;
    }
    bool is_w = strcmp(a.mode, "webster") == 0, is_g = strcmp(a.mode, "greenwave") == 0;
    if (!is_w && !is_g) {
        fprintf(stderr, "sigflow plan: unknown plan kind '%s' (webster or greenwave)\n", a.mode);
        goto usage_err;
    }
    if (!a.file) {
        fprintf(stderr, "sigflow plan: missing SCENARIO\n");
        goto usage_err;
    }
    if (is_w && gw_only) {
        fprintf(stderr, "sigflow plan: %s is a greenwave option\n", gw_opt);
        goto usage_err;
    }
    if (is_g && wb_only) {
        fprintf(stderr, "sigflow plan: %s is a webster option\n", wb_opt);
        goto usage_err;
    }
    if (a.wo.min_cycle_s > a.wo.max_cycle_s) {
        fprintf(stderr, "sigflow plan: --min-cycle %g is above --max-cycle %g\n", a.wo.min_cycle_s,
                a.wo.max_cycle_s);
        goto usage_err;
    }
    if ((a.speed_min_kmh > 0) != (a.speed_max_kmh > 0)) {
        fprintf(stderr, "sigflow plan: --speed-min and --speed-max go together\n");
        goto usage_err;
    }
    if (a.speed_min_kmh > a.speed_max_kmh) {
        fprintf(stderr, "sigflow plan: --speed-min %g is above --speed-max %g\n", a.speed_min_kmh,
                a.speed_max_kmh);
        goto usage_err;
    }
    if ((a.cycle_min_s > 0) != (a.cycle_max_s > 0)) {
        fprintf(stderr, "sigflow plan: --cycle-min and --cycle-max go together\n");
        goto usage_err;
    }
    if (a.cycle_min_s > a.cycle_max_s) {
        fprintf(stderr, "sigflow plan: --cycle-min %g is above --cycle-max %g\n", a.cycle_min_s,
                a.cycle_max_s);
        goto usage_err;
    }
    if (a.speed_min_kmh > 0 && a.speed_kmh > 0) {
        fprintf(stderr, "sigflow plan: --speed and --speed-min/--speed-max exclude each other\n");
        goto usage_err;
    }
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(a.file, a.sets, a.n_sets, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow plan", a.file);
        rc = 1;
        goto out;
    }
    rc = is_w ? run_webster(&a, sc) : run_greenwave(&a, sc);
    sf_scenario_destroy(&sc);
    goto out;
usage_err:
    fprintf(stderr, "(sigflow plan --help shows the options)\n");
out:
    free(a.sets);
    return rc;
}
