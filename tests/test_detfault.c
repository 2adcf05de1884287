/* tests/test_detfault.c — injected detector faults (scenario `faults.detectors`): the
 * loader (every field, every bad case, with the exact message), the simulator (a faulted
 * detector reads stuck on / dead / chattering inside its window and exactly as without the
 * fault outside it, the other detectors untouched), and `sigflow run` end to end (the
 * centre's detector diagnosis reports the injected faults and their recovery, through the
 * units and Modbus like a field fault; the run stays deterministic; with
 * control.detector_diagnostics false nothing is failed). */
#include "run_child.h" /* first: it asks for _GNU_SOURCE */

#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "scenario.h"
#include "sim.h"
#include "slurp.h"

#define SINGLE   SIGFLOW_ASSETS "/scenarios/single.json"
#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"

CHILD_SUITE(detfault);

static bool sanitized(void)
{
    const char *s = getenv("SIGFLOW_SANITIZED");
    return s && s[0] && strcmp(s, "0") != 0;
}

static sf_scenario_t *load_ok(const char *file, const char *const *sets, size_t n)
{
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n, &errs);
    for (size_t k = 0; k < errs.n; k++)
        cr_log_error("%s", errs.msg[k]);
    cr_assert_not_null(sc, "%s should load", file);
    sf_errors_clear(&errs);
    return sc;
}

static int det_idx(const sf_intersection_t *ix, const char *id)
{
    for (int k = 0; k < ix->n_det; k++)
        if (strcmp(ix->det[k].id, id) == 0)
            return k;
    return -1;
}

/* ---- loader ------------------------------------------------------------------------- */

Test(detfault, loader_reads_every_field)
{
    /* none by default; the diagnosis is on by default */
    sf_scenario_t *sc = load_ok(CORRIDOR, NULL, 0);
    cr_assert_eq(sc->faults.n_det, 0);
    cr_assert(sc->control.detector_diagnostics);
    sf_scenario_destroy(&sc);

    const char *sets[] = {
        "faults.detectors=[{\"intersection\": \"I4\", \"detector\": \"I4-SB0\", \"kind\": "
        "\"stuck_on\", \"from_s\": 900, \"to_s\": 2700},"
        " {\"intersection\": \"I2\", \"detector\": \"I2-EB1C\", \"kind\": \"dead\", \"from_s\": 0},"
        " {\"intersection\": \"I4\", \"detector\": \"I4-SB0\", \"kind\": \"chatter\", \"from_s\": "
        "2700, \"to_s\": 3000.5}]",
        "control.detector_diagnostics=false",
    };
    sc = load_ok(CORRIDOR, sets, 2);
    cr_assert_not(sc->control.detector_diagnostics);
    cr_assert_eq(sc->faults.n_det, 3);
    const sf_det_fault_t *f = sc->faults.det;
    int i4 = sf_scenario_find_intersection(sc, "I4"), i2 = sf_scenario_find_intersection(sc, "I2");
    cr_assert_eq(f[0].ix_idx, (uint32_t)i4);
    cr_assert_eq(f[0].det_idx, det_idx(&sc->intersections[i4], "I4-SB0"));
    cr_assert_eq(f[0].kind, SF_DET_FAULT_STUCK_ON);
    cr_assert_float_eq(f[0].from_s, 900.0, 0.0);
    cr_assert_float_eq(f[0].to_s, 2700.0, 0.0);
    cr_assert_eq(f[1].ix_idx, (uint32_t)i2);
    cr_assert_eq(f[1].det_idx, det_idx(&sc->intersections[i2], "I2-EB1C"));
    cr_assert_eq(f[1].kind, SF_DET_FAULT_DEAD);
    cr_assert(isinf(f[1].to_s) && f[1].to_s > 0, "to_s absent = never ends");
    /* the next window of the same detector may start where the last one ends */
    cr_assert_eq(f[2].kind, SF_DET_FAULT_CHATTER);
    cr_assert_float_eq(f[2].to_s, 3000.5, 0.0);
    cr_assert_str_eq(sf_det_fault_kind_name(f[2].kind), "chatter");
    /* `sigflow check` says there are faults */
    char sum[512];
    sf_scenario_summary(sc, sum, sizeof sum);
    size_t n = strlen(sum), tail = strlen(", 3 detector faults");
    cr_assert(n > tail && strcmp(sum + n - tail, ", 3 detector faults") == 0, "%s", sum);
    sf_scenario_destroy(&sc);

    /* one field of an entry reached by --set like any other */
    const char *sets2[] = {sets[0], "faults.detectors[0].to_s=1200",
                           "faults.detectors[1].kind=stuck_on"};
    sc = load_ok(CORRIDOR, sets2, 3);
    cr_assert_float_eq(sc->faults.det[0].to_s, 1200.0, 0.0);
    cr_assert_eq(sc->faults.det[1].kind, SF_DET_FAULT_STUCK_ON);
    sf_scenario_destroy(&sc);
}

/* --set VALUE of faults.detectors on FILE: exactly the one error want, nothing loaded. */
static void expect_bad(const char *file, const char *value, const char *want)
{
    char set[1024];
    snprintf(set, sizeof set, "faults.detectors=%s", value);
    const char *sets[] = {set};
    sf_errors_t errs = {0, NULL};
    errno = 0;
    sf_scenario_t *sc = sf_scenario_load(file, sets, 1, &errs);
    bool loaded = sc != NULL;
    sf_scenario_destroy(&sc);
    cr_assert_not(loaded, "%s should be rejected", value);
    cr_assert_eq(errno, EINVAL);
    cr_expect_eq(errs.n, 1, "%s: %zu errors, first %s", value, errs.n, errs.n ? errs.msg[0] : "-");
    char full[2048];
    snprintf(full, sizeof full, "--set %s: %s", set, want);
    if (errs.n)
        cr_expect_str_eq(errs.msg[0], full);
    sf_errors_clear(&errs);
}

#define E(x, d, k, w) "[{\"intersection\": " x ", \"detector\": " d ", \"kind\": " k ", " w "}]"

Test(detfault, loader_refuses_every_bad_entry_precisely)
{
    expect_bad(SINGLE, E("\"I9\"", "\"DN0\"", "\"dead\"", "\"from_s\": 0"),
               "faults.detectors[0].intersection: unknown intersection \"I9\"");
    expect_bad(SINGLE, E("3", "\"DN0\"", "\"dead\"", "\"from_s\": 0"),
               "faults.detectors[0].intersection: must be an intersection id (string), got 3");
    expect_bad(SINGLE, E("\"I1\"", "\"DX\"", "\"dead\"", "\"from_s\": 0"),
               "faults.detectors[0].detector: unknown detector \"DX\" (intersection \"I1\" has "
               "12 detectors)");
    expect_bad(SINGLE, E("\"I1\"", "null", "\"dead\"", "\"from_s\": 0"),
               "faults.detectors[0].detector: must be a detector id (string), got null");
    expect_bad(CORRIDOR, E("\"I3\"", "\"I4-SB0\"", "\"dead\"", "\"from_s\": 0"),
               "faults.detectors[0].detector: detector \"I4-SB0\" is at intersection \"I4\", "
               "not \"I3\"");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"flaky\"", "\"from_s\": 0"),
               "faults.detectors[0].kind: must be one of \"stuck_on\", \"dead\", \"chatter\"; "
               "got \"flaky\"");
    expect_bad(SINGLE, "[{\"intersection\": \"I1\", \"detector\": \"DN0\", \"from_s\": 0}]",
               "faults.detectors[0].kind: missing required field");
    expect_bad(SINGLE, "[{\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": \"dead\"}]",
               "faults.detectors[0].from_s: missing required field");
    expect_bad(SINGLE, "[{\"detector\": \"DN0\", \"kind\": \"dead\", \"from_s\": 0}]",
               "faults.detectors[0].intersection: missing required field");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": -1"),
               "faults.detectors[0].from_s: must be >= 0 s, got -1");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": \"10\""),
               "faults.detectors[0].from_s: must be a number, got \"10\"");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": 0, \"to_s\": 700000"),
               "faults.detectors[0].to_s: must be <= 604800 s, got 700000");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": 600, \"to_s\": 600"),
               "faults.detectors[0].to_s: must be > from_s (600 s), got 600");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": 3600"),
               "faults.detectors[0].from_s: must be < run.duration_s (3600 s: the fault would "
               "never start), got 3600");
    expect_bad(SINGLE, E("\"I1\"", "\"DN0\"", "\"dead\"", "\"from_s\": 0, \"too_s\": 5"),
               "faults.detectors[0].too_s: unknown field (did you mean \"to_s\"?)");
    expect_bad(SINGLE,
               "[{\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": \"dead\", \"from_s\": "
               "100, \"to_s\": 500}, {\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": "
               "\"stuck_on\", \"from_s\": 499}]",
               "faults.detectors[1].from_s: overlaps another fault of detector \"DN0\" (100..500 "
               "s); one detector has one fault at a time");
    expect_bad(SINGLE, "{\"I1\": 1}", "faults.detectors: must be an array, got an object");

    /* the section itself */
    const char *sets[] = {"faults.detector=[]"};
    sf_errors_t errs = {0, NULL};
    cr_assert_null(sf_scenario_load(SINGLE, sets, 1, &errs));
    cr_assert_eq(errs.n, 1);
    cr_expect_str_eq(errs.msg[0], "--set faults.detector=[]: faults.detector: unknown field (did "
                                  "you mean \"detectors\"?)");
    sf_errors_clear(&errs);
    const char *sets3[] = {"control.detector_diagnostics=1"};
    cr_assert_null(sf_scenario_load(SINGLE, sets3, 1, &errs));
    cr_assert_eq(errs.n, 1);
    cr_expect_str_eq(errs.msg[0], "--set control.detector_diagnostics=1: "
                                  "control.detector_diagnostics: must be true or false, got 1");
    sf_errors_clear(&errs);

    /* more entries than SF_MAX_DET_FAULTS */
    char *big = malloc(65536);
    cr_assert_not_null(big);
    size_t used = (size_t)snprintf(big, 65536, "faults.detectors=[");
    for (int k = 0; k <= SF_MAX_DET_FAULTS; k++)
        used += (size_t)snprintf(big + used, 65536 - used,
                                 "%s{\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": "
                                 "\"dead\", \"from_s\": %d, \"to_s\": %d}",
                                 k ? ", " : "", k * 10, k * 10 + 5);
    snprintf(big + used, 65536 - used, "]");
    const char *sets2[] = {big};
    cr_assert_null(sf_scenario_load(SINGLE, sets2, 1, &errs));
    cr_assert_eq(errs.n, 1);
    cr_expect(strstr(errs.msg[0], "faults.detectors: must have at most 64 entries, got 65"), "%s",
              errs.msg[0]);
    sf_errors_clear(&errs);
    free(big);
}

/* ---- simulator ---------------------------------------------------------------------- */

/* Lamps of single.json's I1: phase 2's groups green for 30 s, then phase 4's for 30 s. */
static void lamps(sf_sim_t *sim, const sf_intersection_t *ix, double t)
{
    int green_phase = fmod(t, 60.0) < 30.0 ? 2 : 4;
    uint8_t codes[SF_MAX_SG];
    for (uint8_t g = 0; g < ix->n_sg; g++)
        codes[g] = ix->phases[ix->sg[g].phase_idx].id == green_phase ? SF_LAMP_GREEN : SF_LAMP_RED;
    cr_assert_eq(sf_sim_set_lamps(sim, 0, codes, ix->n_sg), 0);
}

Test(detfault, sim_detector_reads_the_fault_inside_its_window_only)
{
    const double from = 40.0, to = 160.0;
    char set[512];
    snprintf(set, sizeof set,
             "faults.detectors=[{\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": "
             "\"stuck_on\", \"from_s\": %g, \"to_s\": %g}, {\"intersection\": \"I1\", "
             "\"detector\": \"DS1\", \"kind\": \"dead\", \"from_s\": %g, \"to_s\": %g}, "
             "{\"intersection\": \"I1\", \"detector\": \"DE0\", \"kind\": \"chatter\", "
             "\"from_s\": %g, \"to_s\": %g}]",
             from, to, from, to, from, to);
    const char *sets[] = {set, "run.duration_s=240", "run.warmup_s=0"};
    sf_scenario_t *plain = load_ok(SINGLE, sets + 1, 2);
    sf_scenario_t *faulty = load_ok(SINGLE, sets, 3);
    const sf_intersection_t *ix = &plain->intersections[0];
    int dn0 = det_idx(ix, "DN0"), ds1 = det_idx(ix, "DS1"), de0 = det_idx(ix, "DE0");
    cr_assert(dn0 >= 0 && ds1 >= 0 && de0 >= 0);
    sf_sim_t *a = sf_sim_new(plain), *b = sf_sim_new(faulty);
    cr_assert(a && b);
    int nd = ix->n_det;
    uint32_t base_in_window[SF_MAX_DET] = {0}, chatter_counts = 0;
    int dead_masked = 0, stuck_forced = 0, chatter_on = 0, chatter_off = 0;
    bool prev_on = false;
    while (!sf_sim_finished(a)) {
        double t = sf_sim_time(a);
        lamps(a, ix, t);
        lamps(b, ix, t);
        cr_assert_eq(sf_sim_step(a), 0);
        cr_assert_eq(sf_sim_step(b), 0);
        t = sf_sim_time(a);
        uint64_t pa, pb;
        uint16_t ca[SF_MAX_DET], cb[SF_MAX_DET];
        cr_assert_eq(sf_sim_detectors(a, 0, &pa, ca, NULL, SF_MAX_DET), nd);
        cr_assert_eq(sf_sim_detectors(b, 0, &pb, cb, NULL, SF_MAX_DET), nd);
        bool in = t >= from && t < to;
        for (int d = 0; d < nd; d++) {
            bool ba = pa >> d & 1u, bb = pb >> d & 1u;
            bool faulted = in && (d == dn0 || d == ds1 || d == de0);
            if (!faulted) {
                /* outside the window, and the other detectors always: as without faults
                 * (the fault changes what the detector says, never the traffic) */
                cr_assert_eq(bb, ba, "t %.1f det %d presence %d, without the fault %d", t, d, bb,
                             ba);
                cr_assert_eq(cb[d], ca[d], "t %.1f det %d count %u, without the fault %u", t, d,
                             cb[d], ca[d]);
                continue;
            }
            base_in_window[d] += ca[d];
            if (d == dn0) {
                cr_assert(bb, "stuck on at t %.1f reads free", t);
                cr_assert_eq(cb[d], 0, "stuck on counts nothing");
                stuck_forced += !ba;
            } else if (d == ds1) {
                cr_assert_not(bb, "dead at t %.1f reads occupied", t);
                cr_assert_eq(cb[d], 0, "dead counts nothing");
                dead_masked += ba;
            } else {
                bool on = fmod(t + 1e-9, 1.0) < 0.5;
                cr_assert_eq(bb, on, "chatter at t %.1f", t);
                cr_assert_eq(cb[d], on && !prev_on ? 1 : 0, "chatter counts its rising edges");
                chatter_counts += cb[d];
                chatter_on += on;
                chatter_off += !on;
                prev_on = on;
            }
        }
    }
    /* the faults changed something real: traffic was there for the dead one to hide and
     * gaps for the stuck one to fill */
    cr_assert_gt(dead_masked, 0);
    cr_assert_gt(stuck_forced, 0);
    cr_assert_gt(base_in_window[ds1], 0);
    cr_assert_gt(chatter_on, 0);
    cr_assert_gt(chatter_off, 0);
    cr_assert_eq(chatter_counts, (uint32_t)(to - from), "one count a second");
    /* totals: what the fault hid is missing, the chatter's counts added */
    uint32_t ta[SF_MAX_DET], tb[SF_MAX_DET];
    sf_sim_detectors(a, 0, NULL, NULL, ta, SF_MAX_DET);
    sf_sim_detectors(b, 0, NULL, NULL, tb, SF_MAX_DET);
    cr_assert_eq(tb[dn0], ta[dn0] - base_in_window[dn0]);
    cr_assert_eq(tb[ds1], ta[ds1] - base_in_window[ds1]);
    cr_assert_eq(tb[de0], ta[de0] - base_in_window[de0] + chatter_counts);
    /* and the traffic itself is the same */
    char *ra = sf_sim_report_string(a, false), *rb = sf_sim_report_string(b, false);
    cr_assert_str_eq(ra, rb);
    free(ra);
    free(rb);
    sf_sim_destroy(&a);
    sf_sim_destroy(&b);
    sf_scenario_destroy(&plain);
    sf_scenario_destroy(&faulty);
}

Test(detfault, sim_refuses_a_fault_built_wrong_in_code)
{
    sf_scenario_t *sc = load_ok(SINGLE, NULL, 0);
    sc->faults.n_det = 1;
    sc->faults.det[0] = (sf_det_fault_t){.ix_idx = 0, .det_idx = 40, .from_s = 0, .to_s = 10};
    char err[256] = "";
    errno = 0;
    cr_assert_null(sf_sim_new_checked(sc, err, sizeof err));
    cr_assert_eq(errno, EINVAL);
    cr_assert_str_eq(err, "faults.detectors[0]: intersection/detector out of range");
    sc->faults.det[0] = (sf_det_fault_t){.ix_idx = 0, .det_idx = 1, .from_s = 10, .to_s = 10};
    cr_assert_null(sf_sim_new_checked(sc, err, sizeof err));
    cr_assert_str_eq(err, "faults.detectors[0]: bad window 10..10 s");
    sc->faults.det[0].to_s = INFINITY;
    sf_sim_t *sim = sf_sim_new_checked(sc, err, sizeof err);
    cr_assert_not_null(sim, "an open-ended window is fine: %s", err);
    sf_sim_destroy(&sim);
    sf_scenario_destroy(&sc);
}

/* ---- sigflow run end to end ----------------------------------------------------------- */

typedef struct {
    char *report; /* without perf */
    char *events; /* the event log */
    int n_failed, n_recovered;
    double failed_t[3], recovered_t[3];
    char failed_det[3][SF_ID_LEN], failed_rule[3][16];
} run_out_t;

/* single.json adaptive, DN0 stuck on 60..600 s, DS1 dead 60..900 s and DW0 chattering
 * 100..400 s. */
static void run_single(const char *diag, run_out_t *o)
{
    memset(o, 0, sizeof *o);
    char rep[] = "/tmp/sf_detfault_rep_XXXXXX", evp[] = "/tmp/sf_detfault_ev_XXXXXX";
    int fd = mkstemp(rep);
    cr_assert(fd >= 0);
    close(fd);
    fd = mkstemp(evp);
    cr_assert(fd >= 0);
    close(fd);
    char dg[64];
    snprintf(dg, sizeof dg, "control.detector_diagnostics=%s", diag);
    const char *args[] = {
        "run",
        SINGLE,
        "--headless",
        "--inproc",
        "--duration",
        "1000",
        "--seed",
        "3",
        "--set",
        "control.strategy=adaptive",
        "--set",
        "run.step_timeout_s=120",
        "--set",
        dg,
        "--set",
        "faults.detectors=[{\"intersection\": \"I1\", \"detector\": \"DN0\", \"kind\": "
        "\"stuck_on\", \"from_s\": 60, \"to_s\": 600}, {\"intersection\": \"I1\", \"detector\": "
        "\"DS1\", \"kind\": \"dead\", \"from_s\": 60, \"to_s\": 900}, {\"intersection\": "
        "\"I1\", \"detector\": \"DW0\", \"kind\": \"chatter\", \"from_s\": 100, \"to_s\": 400}]",
        "--events",
        evp,
        "--report",
        rep,
        NULL,
    };
    child_t *c = child_new();
    int st = child_run_args(c, args, 300);
    cr_assert_eq(st, 0, "sigflow run exited %d: %s", st, c->err);
    free(c);
    json_error_t je;
    json_t *r = json_load_file(rep, 0, &je);
    cr_assert_not_null(r, "%s: %s", rep, je.text);
    json_object_del(r, "perf");
    o->report = json_dumps(r, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(r);
    o->events = slurp(evp, NULL);
    for (char *line = o->events; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_t *e = json_loadb(line, len, 0, &je);
        cr_assert_not_null(e, "event line: %s", je.text);
        const char *kind = json_string_value(json_object_get(e, "kind"));
        const char *what = json_string_value(json_object_get(e, "event"));
        if (kind && strcmp(kind, "fault") == 0 && what) {
            bool failed = strcmp(what, "detector_failed") == 0;
            bool rec = strcmp(what, "detector_recovered") == 0;
            cr_assert(failed || rec, "no other fault in this run: %.*s", (int)len, line);
            const char *det = json_string_value(json_object_get(e, "detector"));
            int k = strcmp(det, "DN0") == 0   ? 0
                    : strcmp(det, "DS1") == 0 ? 1
                    : strcmp(det, "DW0") == 0 ? 2
                                              : -1;
            cr_assert(k >= 0, "a detector that works was failed: %s", det);
            double t = json_number_value(json_object_get(e, "t"));
            if (failed) {
                o->n_failed++;
                o->failed_t[k] = t;
                snprintf(o->failed_rule[k], sizeof o->failed_rule[k], "%s",
                         json_string_value(json_object_get(e, "rule")));
            } else {
                o->n_recovered++;
                o->recovered_t[k] = t;
            }
        }
        json_decref(e);
        line += len + (nl ? 1 : 0);
    }
    unlink(rep);
    unlink(evp);
}

Test(detfault, run_reports_the_injected_faults_and_recovery, .timeout = 300)
{
    run_out_t a, b, off;
    run_single("true", &a);
    /* each fault failed by its own rule, after the rule's time, within its window (the
     * diagnosis defaults: 300 s max presence, 600 s no activity) and recovered after it
     * (at the first poll that shows the detector working again: a free poll, a count) */
    cr_assert_eq(a.n_failed, 3, "%s", a.events);
    cr_assert_eq(a.n_recovered, 3, "%s", a.events);
    cr_assert_str_eq(a.failed_rule[0], "max_presence");
    cr_assert_geq(a.failed_t[0], 60.0 + 300.0);
    cr_assert_lt(a.failed_t[0], 600.0);
    cr_assert_geq(a.recovered_t[0], 600.0);
    cr_assert_lt(a.recovered_t[0], 700.0);
    cr_assert_str_eq(a.failed_rule[1], "no_activity");
    cr_assert_geq(a.failed_t[1], 60.0 + 600.0);
    cr_assert_lt(a.failed_t[1], 900.0);
    cr_assert_geq(a.recovered_t[1], 900.0);
    cr_assert_lt(a.recovered_t[1], 1000.0);
    /* chatter: a count a second, 60 a minute, above erratic_cpm 40: failed at the first
     * detector interval completed inside its window, recovered at the first after it */
    cr_assert_str_eq(a.failed_rule[2], "erratic");
    cr_assert_gt(a.failed_t[2], 100.0);
    cr_assert_lt(a.failed_t[2], 400.0);
    cr_assert_gt(a.recovered_t[2], 400.0);
    cr_assert_lt(a.recovered_t[2], 600.0);
    json_t *r = json_loads(a.report, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(r, "controller"), "events"), "fault")),
                 6);
    json_decref(r);
    if (!sanitized()) {
        /* deterministic with faults: the same report and the same event log */
        run_single("true", &b);
        cr_assert_str_eq(b.report, a.report);
        cr_assert_str_eq(b.events, a.events);
        free(b.report);
        free(b.events);
    }
    /* the diagnosis off: the same faults, nothing failed */
    run_single("false", &off);
    cr_assert_eq(off.n_failed, 0, "%s", off.events);
    cr_assert_eq(off.n_recovered, 0);
    free(off.report);
    free(off.events);
    free(a.report);
    free(a.events);
}
