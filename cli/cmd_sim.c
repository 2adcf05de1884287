/* cli/cmd_sim.c — `sigflow sim`: the simulator alone as clock master on an existing bus
 * (e.g. `sigflow bus`), waiting for the named lockstep participants (cli/run.h with no
 * units and no controller of its own). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "bus_join.h"
#include "commands.h"
#include "curve_opts.h"
#include "run.h"
#include "run_opts.h"
#include "scenario.h"

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

int sf_cmd_sim(int argc, char **argv)
{
    const char *bus = NULL;
    sf_run_opts_t ro;
    sf_run_opts_init(&ro, false); /* a split run's units and controller are expected here */
    static const char *const own_valued[] = {"--bus", NULL};
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        int r;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((r = sf_run_opt("sim", &ro, argc, argv, &a)) != 0) {
            if (r < 0)
                return 2;
        } else if (strcmp(s, "--bus") == 0 && a + 1 < argc) {
            bus = argv[++a];
        } else if (sf_run_opts_other("sim", &ro, s, own_valued) != 0) {
            return 2;
        }
    }
    if (!ro.file) {
        fprintf(stderr, "sigflow sim: missing SCENARIO (see sigflow sim --help)\n");
        return 2;
    }
    char pub[SF_BUS_ENDPOINT_MAX] = SF_BUS_DEFAULT_PUB,
         sub[SF_BUS_ENDPOINT_MAX] = SF_BUS_DEFAULT_SUB;
    if (bus && sf_bus_split_endpoints(bus, pub, sub) != 0) {
        fprintf(stderr, "sigflow sim: --bus: expected PUB_EP,SUB_EP, got '%s'\n", bus);
        return 2;
    }
    sf_bus_security_t keys;
    bool secure = false;
    int crc = sf_curve_opts_client("sim", &ro.curve, &keys, &secure);
    if (crc != 0)
        return crc;
    sf_scenario_t *sc = sf_run_opts_load("sim", &ro);
    if (!sc)
        return 1;
    int sfd = sf_cli_signalfd("sim");
    if (sfd < 0) {
        sf_scenario_destroy(&sc);
        return 1;
    }
    sf_runner_opts_t o = {.sc = sc,
                          .no_units = true,
                          .with_controller = false,
                          .realtime = ro.realtime,
                          .speed = ro.speed,
                          .stop_fd = sfd,
                          .extra = ro.expect,
                          .n_extra = ro.n_expect,
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
        if (ro.report && sf_runner_write_report(res.report, ro.report) != 0) {
            fprintf(stderr, "sigflow sim: --report %s: %s\n", ro.report, strerror(errno));
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
