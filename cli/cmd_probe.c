/* cli/cmd_probe.c — `sigflow probe HOST:PORT`: conformance test of a Modbus signal unit
 * against the register map (controller/probe.h); exit 0 conforming, 1 any failure, 2 a
 * usage error. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "probe.h"
#include "scenario.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow probe HOST:PORT [--unit-id N] [--timeout S] [--no-fallback]\n"
            "                     [--json] [--scenario FILE --intersection ID]\n"
            "                     [--max-wait S] [--sequence S]\n"
            "Conformance test of any Modbus TCP signal unit against the register map\n"
            "(`sigflow regmap --md`): identity and version, every readable register, refused\n"
            "unsafe writes (exception 03/02, read back unchanged), heartbeat loss -> local\n"
            "fallback -> centre control, and a command sequence while the lamps are watched\n"
            "at 20 Hz for conflicting greens (conflicts of --scenario's intersection, else at\n"
            "most one green phase per ring). It commands the unit: never use it on a unit\n"
            "controlling real traffic. --timeout: response timeout per request (default 1 s);\n"
            "--max-wait: longest wait for a mode change (default 120 s); --sequence: length\n"
            "of the command sequence (default 10 s); --no-fallback skips the heartbeat-loss\n"
            "check. Prints a pass/fail table (or JSON); exit 0 conforming, 1 a failure,\n"
            "2 a usage error.\n");
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* "HOST:PORT" (last colon) into host (len bytes) and port 1..65535. */
static int parse_target(const char *s, char *host, size_t len, uint16_t *port)
{
    const char *c = strrchr(s, ':');
    if (!c || c == s || (size_t)(c - s) >= len)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(c + 1, &end, 10);
    if (errno || end == c + 1 || *end || v < 1 || v > 65535)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    *port = (uint16_t)v;
    return 0;
}

static int print_json(const sf_probe_report_t *rep)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < rep->n_rows; i++) {
        const sf_probe_row_t *r = &rep->rows[i];
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s}", "check", r->name, "result",
                                              sf_probe_result_name(r->result), "expected",
                                              r->expected, "seen", r->seen));
    }
    json_t *root =
        json_pack("{s:o, s:I, s:b, s:{s:I, s:f, s:f, s:I}}", "checks", rows, "failed",
                  (json_int_t)rep->n_failed, "conforming", rep->n_failed == 0, "lamp_watch",
                  "samples", (json_int_t)rep->lamp_samples, "hz", rep->lamp_hz, "max_gap_s",
                  rep->lamp_max_gap_s, "conflicts", (json_int_t)rep->conflicts_seen);
    if (!root)
        return -1;
    int rc = json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
    return rc;
}

int sf_cmd_probe(int argc, char **argv)
{
    sf_probe_config_t cfg;
    sf_probe_config_default(&cfg);
    char host[256] = "";
    const char *target = NULL, *scen = NULL, *ix_id = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        double d;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-fallback") == 0) {
            cfg.no_fallback = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--unit-id") == 0 && has_val) {
            if (parse_double(argv[++i], 0, 247, &d) != 0 || d != (int)d) {
                fprintf(stderr, "sigflow probe: --unit-id: expected 0..247, got '%s'\n", argv[i]);
                return 2;
            }
            cfg.unit_id = (int)d;
        } else if (strcmp(a, "--timeout") == 0 && has_val) {
            if (parse_double(argv[++i], 0.01, 60, &cfg.timeout_s) != 0) {
                fprintf(stderr, "sigflow probe: --timeout: expected 0.01..60 s, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--max-wait") == 0 && has_val) {
            if (parse_double(argv[++i], 0.1, 3600, &cfg.max_wait_s) != 0) {
                fprintf(stderr, "sigflow probe: --max-wait: expected 0.1..3600 s, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--sequence") == 0 && has_val) {
            if (parse_double(argv[++i], 1, 3600, &cfg.sequence_s) != 0) {
                fprintf(stderr, "sigflow probe: --sequence: expected 1..3600 s, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--scenario") == 0 && has_val) {
            scen = argv[++i];
        } else if (strcmp(a, "--intersection") == 0 && has_val) {
            ix_id = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "sigflow probe: %s '%s' (see sigflow probe --help)\n",
                    has_val ? "unknown option" : "unknown option or missing value after", a);
            return 2;
        } else if (!target) {
            target = a;
        } else {
            fprintf(stderr, "sigflow probe: one HOST:PORT only, got '%s' and '%s'\n", target, a);
            return 2;
        }
    }
    if (!target) {
        fprintf(stderr, "sigflow probe: missing HOST:PORT (see sigflow probe --help)\n");
        return 2;
    }
    if (parse_target(target, host, sizeof host, &cfg.port) != 0) {
        fprintf(stderr, "sigflow probe: '%s': expected HOST:PORT with PORT 1..65535\n", target);
        return 2;
    }
    if ((scen != NULL) != (ix_id != NULL)) {
        fprintf(stderr, "sigflow probe: --scenario and --intersection go together\n");
        return 2;
    }
    cfg.host = host;
    sf_scenario_t *sc = NULL;
    if (scen) {
        sf_errors_t errs = {0};
        sc = sf_scenario_load(scen, NULL, 0, &errs);
        if (!sc) {
            sf_errors_report(stderr, &errs, "sigflow probe", scen);
            return 2;
        }
        int k = sf_scenario_find_intersection(sc, ix_id);
        if (k < 0) {
            fprintf(stderr, "sigflow probe: --intersection %s: no such intersection in %s\n", ix_id,
                    scen);
            sf_scenario_destroy(&sc);
            return 2;
        }
        cfg.ix = &sc->intersections[k];
    }
    sf_probe_report_t *rep = calloc(1, sizeof *rep);
    if (!rep) {
        fprintf(stderr, "sigflow probe: out of memory\n");
        sf_scenario_destroy(&sc);
        return 1;
    }
    int rc = sf_probe_run(&cfg, rep);
    if (rc != 0 && rep->n_rows == 0) {
        fprintf(stderr, "sigflow probe: %s\n", strerror(errno));
        free(rep);
        sf_scenario_destroy(&sc);
        return 1;
    }
    if (json)
        print_json(rep);
    else
        sf_probe_write_table(stdout, rep);
    fflush(stdout);
    int status = rc != 0 || rep->n_failed ? 1 : 0;
    free(rep);
    sf_scenario_destroy(&sc);
    return status;
}
