/* cli/cmd_sim.c — `sigflow sim`: the simulator alone as clock master on an existing bus
 * (e.g. `sigflow bus`), waiting for the named lockstep participants (cli/run.h with no
 * units and no controller of its own). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bus.h"
#include "commands.h"
#include "curve_opts.h"
#include "run.h"
#include "scenario.h"

#define MAX_SETS   64
#define MAX_EXPECT 8

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow sim SCENARIO [--bus PUB_EP,SUB_EP] [--expect NAME]...\n"
            "                  [--duration S] [--seed N] [--set PATH=VALUE]... [--report FILE]\n"
            "                  [--realtime [FACTOR]] [--curve-key FILE --curve-server-key FILE]\n"
            "Run the simulator alone as the clock master on an existing bus forwarder (default\n"
            "%s,%s, e.g. `sigflow bus`). It waits for every --expect NAME lockstep\n"
            "participant (e.g. units, controller, a HIL bridge) and runs the scenario in\n"
            "lockstep with them; with no --expect it runs alone and publishes for listeners.\n"
            "Prints `sigflow sim: ready` on stderr once every participant is registered, the\n"
            "summary on stdout at the end. Exit status: 0 done, 1 error (a participant that\n"
            "stops answering is named after run.step_timeout_s), 2 usage, 130 interrupted.\n",
            SF_BUS_DEFAULT_PUB, SF_BUS_DEFAULT_SUB);
    fputs(SF_CURVE_HELP_CLIENT, out);
}

static void print_ready(void *arg, int phase, const char *pub_ep, const char *sub_ep)
{
    (void)arg;
    if (phase == 0)
        fprintf(stderr, "sigflow sim: bus %s %s, waiting for the participants\n", pub_ep, sub_ep);
    else
        fprintf(stderr, "sigflow sim: ready\n");
    fflush(stderr);
}

static bool valid_name(const char *s)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    return s[0] && strlen(s) <= SF_BUS_NAME_MAX && strspn(s, ok) == strlen(s);
}

int sf_cmd_sim(int argc, char **argv)
{
    const char *file = NULL, *report = NULL, *bus = NULL;
    const char *sets[MAX_SETS + 2];
    const char *expect[MAX_EXPECT];
    size_t n_sets = 0, n_expect = 0;
    bool realtime = false;
    double speed = 1.0;
    char dur_set[64], seed_set[64];
    sf_curve_opts_t curve = {0};
    int cr;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        bool has_val = a + 1 < argc;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(s, "--bus") == 0 && has_val) {
            bus = argv[++a];
        } else if (strcmp(s, "--expect") == 0 && has_val) {
            const char *nm = argv[++a];
            if (!valid_name(nm)) {
                fprintf(stderr,
                        "sigflow sim: --expect '%s': expected 1..%d characters of "
                        "[A-Za-z0-9_.-]\n",
                        nm, SF_BUS_NAME_MAX);
                return 2;
            }
            if (n_expect == MAX_EXPECT) {
                fprintf(stderr, "sigflow sim: too many --expect (at most %d)\n", MAX_EXPECT);
                return 2;
            }
            for (size_t i = 0; i < n_expect; i++)
                if (strcmp(expect[i], nm) == 0) {
                    fprintf(stderr, "sigflow sim: --expect %s given twice\n", nm);
                    return 2;
                }
            expect[n_expect++] = nm;
        } else if (strcmp(s, "--duration") == 0 && has_val) {
            char *end;
            double d = strtod(argv[++a], &end);
            if (end == argv[a] || *end || !isfinite(d) || !(d > 0)) {
                fprintf(stderr, "sigflow sim: --duration: expected seconds > 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            snprintf(dur_set, sizeof dur_set, "run.duration_s=%.17g", d);
            sets[n_sets++] = dur_set;
        } else if (strcmp(s, "--seed") == 0 && has_val) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++a], &end, 10);
            if (errno || end == argv[a] || *end || argv[a][0] == '-') {
                fprintf(stderr, "sigflow sim: --seed: expected an integer >= 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            snprintf(seed_set, sizeof seed_set, "run.seed=%llu", v);
            sets[n_sets++] = seed_set;
        } else if (strcmp(s, "--set") == 0 && has_val) {
            if (n_sets >= MAX_SETS) {
                fprintf(stderr, "sigflow sim: too many --set (at most %d)\n", MAX_SETS);
                return 2;
            }
            sets[n_sets++] = argv[++a];
        } else if ((cr = sf_curve_opt("sim", &curve, s, has_val ? argv[a + 1] : NULL)) != 0) {
            if (cr < 0)
                return 2;
            a++;
        } else if (strcmp(s, "--report") == 0 && has_val) {
            report = argv[++a];
        } else if (strcmp(s, "--realtime") == 0) {
            realtime = true;
            if (has_val && argv[a + 1][0] != '-') {
                char *end;
                double f = strtod(argv[a + 1], &end);
                if (end != argv[a + 1] && !*end) {
                    if (!(f > 0) || f > 1e6 || !isfinite(f)) {
                        fprintf(stderr, "sigflow sim: --realtime: factor must be > 0 and <= 1e6\n");
                        return 2;
                    }
                    speed = f;
                    a++;
                }
            }
        } else if (s[0] == '-') {
            bool known = strcmp(s, "--bus") == 0 || strcmp(s, "--expect") == 0 ||
                         strcmp(s, "--duration") == 0 || strcmp(s, "--seed") == 0 ||
                         strcmp(s, "--set") == 0 || strcmp(s, "--report") == 0;
            fprintf(stderr, "sigflow sim: %s '%s' (see sigflow sim --help)\n",
                    known ? "missing value after" : "unknown option", s);
            return 2;
        } else if (!file) {
            file = s;
        } else {
            fprintf(stderr, "sigflow sim: one scenario only, got '%s' and '%s'\n", file, s);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "sigflow sim: missing SCENARIO (see sigflow sim --help)\n");
        return 2;
    }
    char pub[SF_BUS_ENDPOINT_MAX] = SF_BUS_DEFAULT_PUB,
         sub[SF_BUS_ENDPOINT_MAX] = SF_BUS_DEFAULT_SUB;
    if (bus) {
        const char *comma = strchr(bus, ',');
        size_t lp = comma ? (size_t)(comma - bus) : 0;
        if (!comma || lp == 0 || !comma[1] || lp >= sizeof pub || strlen(comma + 1) >= sizeof sub ||
            strchr(comma + 1, ',')) {
            fprintf(stderr, "sigflow sim: --bus: expected PUB_EP,SUB_EP, got '%s'\n", bus);
            return 2;
        }
        memcpy(pub, bus, lp);
        pub[lp] = 0;
        snprintf(sub, sizeof sub, "%s", comma + 1);
    }
    sf_bus_security_t keys;
    bool secure = false;
    int crc = sf_curve_opts_client("sim", &curve, &keys, &secure);
    if (crc != 0)
        return crc;
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msg[i]);
        if (errs.n == 0)
            fprintf(stderr, "sigflow sim: %s: cannot load: %s\n", file, strerror(errno));
        sf_errors_clear(&errs);
        return 1;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int sfd = -1;
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        perror("sigflow sim: signalfd");
        sf_scenario_destroy(&sc);
        return 1;
    }
    sf_runner_opts_t o = {.sc = sc,
                          .no_units = true,
                          .with_controller = false,
                          .realtime = realtime,
                          .speed = speed,
                          .stop_fd = sfd,
                          .extra = expect,
                          .n_extra = n_expect,
                          .bus_pub = pub,
                          .bus_sub = sub,
                          .ready = print_ready,
                          .security = secure ? &keys : NULL};
    sf_runner_result_t res;
    int status = 0;
    if (sf_runner_run(&o, &res) != 0) {
        fprintf(stderr, "sigflow sim: %s\n", res.err);
        status = 1;
    } else {
        if (report && sf_runner_write_report(res.report, report) != 0) {
            fprintf(stderr, "sigflow sim: --report %s: %s\n", report, strerror(errno));
            status = 1;
        }
        sf_runner_print_summary(res.report, stdout);
        if (res.partial) {
            fprintf(stderr, "sigflow sim: interrupted: the report is partial\n");
            if (status == 0)
                status = 130;
        }
        json_decref(res.report);
    }
    close(sfd);
    sf_scenario_destroy(&sc);
    return status;
}
