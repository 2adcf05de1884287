/* cli/run_opts.c — the options `sigflow run` and `sigflow sim` share (cli/run_opts.h). */
#include "run_opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_join.h"

/* The shared options that take a value (--realtime's is optional). */
static const char *const valued[] = {"--duration", "--seed", "--set", "--report", "--expect", NULL};

void sf_run_opts_init(sf_run_opts_t *o, bool expect_reserved)
{
    memset(o, 0, sizeof *o);
    o->speed = 1.0;
    o->expect_reserved = expect_reserved;
}

int sf_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s[0] || s[0] == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int take_expect(const char *cmd, sf_run_opts_t *o, const char *nm)
{
    if (o->expect_reserved) {
        if (!sf_bus_valid_name(nm) || strcmp(nm, "units") == 0 || strcmp(nm, "controller") == 0 ||
            strcmp(nm, "bridge") == 0) {
            fprintf(stderr,
                    "sigflow %s: --expect '%s': a name of 1..%d characters [A-Za-z0-9_.-], not "
                    "units, controller or bridge\n",
                    cmd, nm, SF_BUS_NAME_MAX);
            return -1;
        }
    } else if (!sf_bus_valid_name(nm)) {
        fprintf(stderr, "sigflow %s: --expect '%s': expected 1..%d characters of [A-Za-z0-9_.-]\n",
                cmd, nm, SF_BUS_NAME_MAX);
        return -1;
    }
    if (o->n_expect == SF_RUN_MAX_EXPECT) {
        fprintf(stderr, "sigflow %s: too many --expect (at most %d)\n", cmd, SF_RUN_MAX_EXPECT);
        return -1;
    }
    for (size_t i = 0; i < o->n_expect; i++)
        if (strcmp(o->expect[i], nm) == 0) {
            fprintf(stderr, "sigflow %s: --expect %s given twice\n", cmd, nm);
            return -1;
        }
    o->expect[o->n_expect++] = nm;
    return 0;
}

int sf_run_opt(const char *cmd, sf_run_opts_t *o, int argc, char *const *argv, int *a)
{
    const char *s = argv[*a];
    const char *val = *a + 1 < argc ? argv[*a + 1] : NULL;
    if (strcmp(s, "--realtime") == 0) {
        o->realtime = true;
        /* The factor is optional: a next argument that is not a number is not it. */
        double f;
        if (val && val[0] != '-') {
            char *end;
            (void)strtod(val, &end);
            if (end != val && !*end) {
                if (sf_parse_double(val, &f) != 0 || !(f > 0) || f > 1e6) {
                    fprintf(stderr,
                            "sigflow %s: --realtime: factor must be > 0 and <= 1e6, got '%s'\n",
                            cmd, val);
                    return -1;
                }
                o->speed = f;
                (*a)++;
            }
        }
        return 1;
    }
    int cr = sf_curve_opt(cmd, &o->curve, s, val);
    if (cr < 0)
        return -1;
    if (cr > 0) {
        (*a)++;
        return 1;
    }
    if (!val)
        return 0;
    if (strcmp(s, "--duration") == 0) {
        if (sf_parse_double(val, &o->duration) != 0 || !(o->duration > 0)) {
            fprintf(stderr, "sigflow %s: --duration: expected seconds > 0, got '%s'\n", cmd, val);
            return -1;
        }
        o->have_duration = true;
    } else if (strcmp(s, "--seed") == 0) {
        if (parse_u64(val, &o->seed) != 0) {
            fprintf(stderr, "sigflow %s: --seed: expected an integer >= 0, got '%s'\n", cmd, val);
            return -1;
        }
        o->have_seed = true;
    } else if (strcmp(s, "--set") == 0) {
        if (o->n_sets == SF_RUN_MAX_SETS) {
            fprintf(stderr, "sigflow %s: too many --set (at most %d)\n", cmd, SF_RUN_MAX_SETS);
            return -1;
        }
        o->sets[o->n_sets++] = val;
    } else if (strcmp(s, "--report") == 0) {
        o->report = val;
    } else if (strcmp(s, "--expect") == 0) {
        if (take_expect(cmd, o, val) != 0)
            return -1;
    } else {
        return 0;
    }
    (*a)++;
    return 1;
}

static bool listed(const char *s, const char *const *names)
{
    for (size_t i = 0; names && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

int sf_run_opts_other(const char *cmd, sf_run_opts_t *o, const char *arg,
                      const char *const *own_valued)
{
    if (arg[0] == '-') {
        bool known = listed(arg, valued) || listed(arg, own_valued);
        fprintf(stderr, "sigflow %s: %s '%s' (see sigflow %s --help)\n", cmd,
                known ? "missing value after" : "unknown option", arg, cmd);
        return -1;
    }
    if (o->file) {
        fprintf(stderr, "sigflow %s: one scenario only, got '%s' and '%s'\n", cmd, o->file, arg);
        return -1;
    }
    o->file = arg;
    return 0;
}

sf_scenario_t *sf_run_opts_load(const char *cmd, sf_run_opts_t *o)
{
    size_t n = o->n_sets;
    if (o->have_duration) {
        snprintf(o->dur_set, sizeof o->dur_set, "run.duration_s=%.17g", o->duration);
        o->sets[n++] = o->dur_set;
    }
    if (o->have_seed) {
        snprintf(o->seed_set, sizeof o->seed_set, "run.seed=%llu", o->seed);
        o->sets[n++] = o->seed_set;
    }
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(o->file, o->sets, n, &errs);
    if (!sc) {
        char who[64];
        snprintf(who, sizeof who, "sigflow %s", cmd);
        sf_errors_report(stderr, &errs, who, o->file);
    }
    return sc;
}
