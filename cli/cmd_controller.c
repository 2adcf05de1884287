/* cli/cmd_controller.c — `sigflow controller`: the central controller alone on the wall
 * clock against units anywhere (e.g. started with `sigflow unit`), printing every event
 * as one JSON line, until SIGINT or SIGTERM; the report goes to stderr at the end. With
 * --bus it is instead the lockstep participant of a simulator elsewhere (stage 1, after
 * the units, as in `sigflow run`): its time is the simulator's, it takes the buses'
 * check-ins and check-outs and the viewers' operator commands from the bus, and it ends
 * with the run. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "bus_join.h"
#include "commands.h"
#include "curve_opts.h"
#include "controller.h"
#include "ctl_part.h"
#include "lockstep.h"
#include "scenario.h"

#define MAX_SETS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow controller SCENARIO [--unit ID=HOST:PORT]... [--base-port N]\n"
            "                          [--host H] [--log FILE] [--greenwave]\n"
            "                          [--round-timeout-ms N] [--set PATH=VALUE]...\n"
            "                          [--bus PUB_EP,SUB_EP [--name NAME]]\n"
            "Run the central controller on the wall clock: every control.poll_period_s it polls\n"
            "each intersection's unit over Modbus TCP (heartbeat, status, lamps), downloads and\n"
            "verifies the timing plans, selects plans by time of day, adapts (SCATS-like\n"
            "intersections) and answers transit priority. Units are at --unit ID=HOST:PORT, else\n"
            "H:N+index with --base-port N (H default run.modbus_listen, 127.0.0.1), else the\n"
            "scenario's unit_host/unit_port or run.modbus_base_port + index. Prints one JSON line\n"
            "per event (also to --log FILE) and the report on stderr when stopped by\n"
            "SIGINT/SIGTERM. --greenwave replaces the coordinated plans' offsets by the\n"
            "green-wave optimiser's (as the scenario's control.greenwave.enabled does).\n"
            "With --bus it runs on the simulator's clock instead: it joins the bus (a\n"
            "`sigflow bus` forwarder's endpoints) as lockstep participant NAME (default\n"
            "controller, stage 1: after the units; the simulator must --expect it), takes the\n"
            "buses' check-ins and check-outs and the viewers' operator commands (priority\n"
            "on/off, plan, fault reset) from it, and ends with the run (exit 0 and the report).\n");
    fputs(SF_CURVE_HELP_CLIENT, out);
}

static int parse_u16(const char *s, long lo, uint16_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
    fflush(stdout);
}

/* "ID=HOST:PORT" into eps[index of ID]; -1 with a message on a bad one. */
static int parse_unit(const sf_scenario_t *sc, const char *arg, sf_endpoint_t *eps, bool *given)
{
    const char *eq = strchr(arg, '=');
    const char *colon = eq ? strrchr(eq + 1, ':') : NULL;
    if (!eq || !colon || colon == eq + 1) {
        fprintf(stderr, "sigflow controller: --unit %s: expected ID=HOST:PORT\n", arg);
        return -1;
    }
    char id[SF_ID_LEN];
    size_t id_len = (size_t)(eq - arg);
    size_t host_len = (size_t)(colon - eq - 1);
    if (id_len == 0 || id_len >= sizeof id || host_len >= sizeof eps[0].host) {
        fprintf(stderr, "sigflow controller: --unit %s: id or host too long\n", arg);
        return -1;
    }
    memcpy(id, arg, id_len);
    id[id_len] = 0;
    int i = sf_scenario_find_intersection(sc, id);
    if (i < 0) {
        fprintf(stderr, "sigflow controller: --unit %s: no intersection '%s' in %s\n", arg, id,
                sc->path);
        return -1;
    }
    uint16_t port;
    if (parse_u16(colon + 1, 1, &port) < 0) {
        fprintf(stderr, "sigflow controller: --unit %s: port must be 1..65535\n", arg);
        return -1;
    }
    memcpy(eps[i].host, eq + 1, host_len);
    eps[i].host[host_len] = 0;
    eps[i].port = port;
    given[i] = true;
    return 0;
}

int sf_cmd_controller(int argc, char **argv)
{
    const char *file = NULL, *log = NULL, *host = NULL;
    sf_bus_join_opts_t bj = {0};
    const char *sets[MAX_SETS];
    const char *units[256];
    size_t n_sets = 0, n_units = 0;
    uint16_t base_port = 0;
    bool have_base = false, greenwave = false;
    uint16_t round_ms = 0;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        bool has_val = a + 1 < argc;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int cr = sf_bus_join_opt("controller", &bj, s, has_val ? argv[a + 1] : NULL);
        if (cr < 0)
            return 2;
        if (cr > 0) {
            a++;
            continue;
        } else if (strcmp(s, "--unit") == 0 && has_val) {
            if (n_units == sizeof units / sizeof units[0]) {
                fprintf(stderr, "sigflow controller: too many --unit\n");
                return 2;
            }
            units[n_units++] = argv[++a];
        } else if (strcmp(s, "--base-port") == 0 && has_val) {
            if (parse_u16(argv[++a], 1, &base_port) < 0) {
                fprintf(stderr, "sigflow controller: --base-port: expected 1..65535, got '%s'\n",
                        argv[a]);
                return 2;
            }
            have_base = true;
        } else if (strcmp(s, "--host") == 0 && has_val) {
            host = argv[++a];
        } else if (strcmp(s, "--log") == 0 && has_val) {
            log = argv[++a];
        } else if (strcmp(s, "--round-timeout-ms") == 0 && has_val) {
            if (parse_u16(argv[++a], 1, &round_ms) < 0) {
                fprintf(stderr, "sigflow controller: --round-timeout-ms: expected 1..65535\n");
                return 2;
            }
        } else if (strcmp(s, "--greenwave") == 0) {
            greenwave = true;
        } else if (strcmp(s, "--set") == 0 && has_val) {
            if (n_sets == MAX_SETS) {
                fprintf(stderr, "sigflow controller: too many --set\n");
                return 2;
            }
            sets[n_sets++] = argv[++a];
        } else if (s[0] == '-') {
            fprintf(stderr,
                    "sigflow controller: unknown or incomplete option '%s'"
                    " (see sigflow controller --help)\n",
                    s);
            return 2;
        } else if (!file) {
            file = s;
        } else {
            fprintf(stderr, "sigflow controller: unexpected argument '%s'\n", s);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "sigflow controller: missing SCENARIO (see sigflow controller --help)\n");
        return 2;
    }
    sf_bus_security_t keys;
    bool secure = false;
    int crc = sf_bus_join_check("controller", &bj, &keys, &secure);
    if (crc != 0)
        return crc;
    if (host && strlen(host) >= SF_MASTER_HOST_LEN) {
        fprintf(stderr, "sigflow controller: --host: too long\n");
        return 2;
    }
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow controller", file);
        return 1;
    }
    int status = 1;
    sf_controller_t *c = NULL;
    int tfd = -1, sfd = -1;
    sf_ctl_part_t bus_ctl = {0};
    sf_endpoint_t *eps = calloc(sc->n_intersections, sizeof *eps);
    bool *given = calloc(sc->n_intersections, sizeof *given);
    if (!eps || !given) {
        fprintf(stderr, "sigflow controller: out of memory\n");
        goto done;
    }
    for (size_t u = 0; u < n_units; u++)
        if (parse_unit(sc, units[u], eps, given) < 0) {
            status = 2;
            goto done;
        }
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        const sf_intersection_t *ix = &sc->intersections[i];
        if (given[i])
            continue;
        if (have_base) {
            snprintf(eps[i].host, sizeof eps[i].host, "%s",
                     host                       ? host
                     : sc->run.modbus_listen[0] ? sc->run.modbus_listen
                                                : "127.0.0.1");
            if ((uint32_t)base_port + i > 65535) {
                fprintf(stderr, "sigflow controller: --base-port %u + %u is above 65535\n",
                        base_port, i);
                status = 2;
                goto done;
            }
            eps[i].port = (uint16_t)(base_port + i);
        } else if (ix->unit_host[0] && ix->unit_port) {
            snprintf(eps[i].host, sizeof eps[i].host, "%s", ix->unit_host);
            eps[i].port = ix->unit_port;
        } else if (sc->run.modbus_base_port) {
            snprintf(eps[i].host, sizeof eps[i].host, "%s",
                     host                       ? host
                     : sc->run.modbus_listen[0] ? sc->run.modbus_listen
                                                : "127.0.0.1");
            eps[i].port = (uint16_t)(sc->run.modbus_base_port + i);
        } else {
            fprintf(stderr,
                    "sigflow controller: intersection %s: no unit address (give --unit %s=HOST:PORT"
                    " or --base-port N)\n",
                    ix->id, ix->id);
            status = 2;
            goto done;
        }
    }
    sf_controller_opts_t o;
    sf_controller_opts_default(&o);
    o.log_path = log;
    o.sink = print_line;
    o.greenwave = greenwave || sc->control.greenwave.enabled;
    if (round_ms)
        o.round_timeout_ms = round_ms;
    char err[256] = "";
    c = sf_controller_new(sc, eps, &o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "sigflow controller: %s\n", err[0] ? err : strerror(errno));
        goto done;
    }
    if ((sfd = sf_cli_signalfd("controller")) < 0)
        goto done;
    double step_s = sc->run.step_s > 0 ? sc->run.step_s : 0.1;
    if (bj.bus) {
        fprintf(stderr, "sigflow controller: %u units, poll every %.2f s of sim time\n",
                sc->n_intersections, sc->control.poll_period_s);
        bus_ctl.ctl = c;
        /* "cmd" too: a viewer's operator commands (toggle priority, select plan, fault
         * reset) reach this controller as they reach the one inside `sigflow run`. */
        static const char *const topics[] = {"transit.in", "transit.out", "cmd"};
        sf_bus_join_part_t part = {.cmd = "controller",
                                   .name = "controller",
                                   .role = SFBUS__ROLE__ROLE_CONTROLLER,
                                   .stage = 1, /* after the units, as in `sigflow run` */
                                   .topics = topics,
                                   .n_topics = sizeof topics / sizeof topics[0],
                                   .on_msg = sf_ctl_part_on_msg,
                                   .on_step = sf_ctl_part_on_step,
                                   .arg = &bus_ctl};
        status = sf_bus_join_run(&bj, &part, secure ? &keys : NULL, sfd);
        goto done;
    }
    long step_ns = (long)(step_s * 1e9);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec its = {.it_interval = {step_ns / 1000000000L, step_ns % 1000000000L},
                             .it_value = {0, 1}};
    if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) != 0) {
        perror("sigflow controller: timerfd");
        goto done;
    }
    fprintf(stderr, "sigflow controller: %u units, poll every %.2f s, step %.2f s\n",
            sc->n_intersections, sc->control.poll_period_s, step_s);
    uint64_t k = 0;
    bool first = true;
    for (;;) {
        struct pollfd p[2] = {{.fd = tfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("sigflow controller: poll");
            goto done;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                fprintf(stderr, "sigflow controller: %s, stopping\n", strsignal((int)si.ssi_signo));
                break;
            }
        }
        if (p[0].revents & POLLIN) {
            uint64_t n = 0;
            if (read(tfd, &n, sizeof n) != (ssize_t)sizeof n || n == 0)
                continue;
            /* Steps missed while a round ran are skipped, not replayed. */
            k = first ? 0 : k + n;
            first = false;
            if (sf_controller_step(c, k, sf_cli_wall_tod_ds()) < 0) {
                fprintf(stderr, "sigflow controller: step %llu: %s\n", (unsigned long long)k,
                        strerror(errno));
                goto done;
            }
        }
    }
    status = 0;
done:
    if (c) {
        json_t *rep = bj.bus ? sf_ctl_part_report(&bus_ctl) : sf_controller_report(c);
        if (rep) /* network- and machine-dependent: kept out of the deterministic part */
            json_object_set_new(rep, "perf", sf_controller_comms_perf(c));
        char *s = rep ? json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (s)
            fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(rep);
    }
    sf_controller_destroy(&c);
    if (tfd >= 0)
        close(tfd);
    if (sfd >= 0)
        close(sfd);
    free(eps);
    free(given);
    sf_scenario_destroy(&sc);
    return status;
}
