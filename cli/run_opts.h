/* cli/run_opts.h — the options `sigflow run` and `sigflow sim` share, parsed by one
 * parser so that both take and refuse them alike:
 *
 *   SCENARIO             the scenario file (one)
 *   --duration S         simulated seconds (run.duration_s), S > 0
 *   --seed N             random seed (run.seed), an integer >= 0
 *   --set PATH=VALUE     any scenario field (at most SF_RUN_MAX_SETS)
 *   --report FILE        where the report goes
 *   --realtime [F]       pace to the wall clock F times faster (0 < F <= 1e6, default 1)
 *   --expect NAME        also wait for lockstep participant NAME (at most SF_RUN_MAX_EXPECT)
 *   --curve-*            CurveZMQ (cli/curve_opts.h); each command checks the combination
 *
 * Every refusal is one line "sigflow CMD: ..." on stderr and means exit status 2.
 */
#ifndef SIGFLOW_RUN_OPTS_H
#define SIGFLOW_RUN_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "curve_opts.h"
#include "scenario.h"

#define SF_RUN_MAX_SETS   64 /* --set options */
#define SF_RUN_MAX_EXPECT 8  /* --expect options */

typedef struct {
    const char *file;                      /* SCENARIO, NULL when not given */
    const char *report;                    /* --report, NULL none */
    const char *sets[SF_RUN_MAX_SETS + 2]; /* --set, then --duration and --seed as sets */
    size_t n_sets;                         /* in sets */
    bool have_duration, have_seed;         /* given */
    double duration;                       /* --duration, s */
    unsigned long long seed;               /* --seed */
    bool realtime;                         /* --realtime */
    double speed;                          /* its factor, 1 when none was given */
    const char *expect[SF_RUN_MAX_EXPECT]; /* --expect names, each once */
    size_t n_expect;                       /* in expect */
    bool expect_reserved;                  /* set by the caller: the names of `sigflow run`'s
                                              own threads (units, controller, bridge) are
                                              refused */
    sf_curve_opts_t curve;                 /* --curve-* */
    char dur_set[64], seed_set[64];        /* the sets made of --duration and --seed */
} sf_run_opts_t;

/* A whole argument as a finite number into *out: 0, or -1 (out untouched) when s is not
 * one (trailing characters, out of range, inf, nan). */
int sf_parse_double(const char *s, double *out);

/* Default values (no options, no scenario); expect_reserved as given. */
void sf_run_opts_init(sf_run_opts_t *o, bool expect_reserved);

/* If argv[*a] is one of the shared options, take it (and its value: *a moves past it) and
 * return 1; a bad value: the refusal on stderr and -1; 0 when it is none of them (or one
 * without its value: see sf_run_opts_other). */
int sf_run_opt(const char *cmd, sf_run_opts_t *o, int argc, char *const *argv, int *a);

/* An argument neither sf_run_opt nor the command took: the scenario (0), or refused (-1,
 * said on stderr): an option is "missing value after" when it is one of the shared ones or
 * of own_valued (the command's options that take a value, NULL-terminated), else
 * "unknown option"; a second scenario is "one scenario only". */
int sf_run_opts_other(const char *cmd, sf_run_opts_t *o, const char *arg,
                      const char *const *own_valued);

/* Load o->file with the sets and --duration / --seed applied after them (so they win).
 * NULL after the loader's errors (or "sigflow CMD: FILE: cannot load: ...") on stderr. */
sf_scenario_t *sf_run_opts_load(const char *cmd, sf_run_opts_t *o);

#endif
