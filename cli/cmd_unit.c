/* cli/cmd_unit.c — `sigflow unit`: run a scenario's signal units standalone on the wall
 * clock, each behind its own Modbus TCP port, until SIGINT or SIGTERM; or, with --bus, as
 * a lockstep participant of a simulator elsewhere (`sigflow sim --expect NAME`): unit
 * time then follows the simulator's steps, detectors come from the bus and lamps go to
 * it, exactly as the units thread of `sigflow run` does, so units, simulator and
 * controller can run on different hosts. */
#include <errno.h>
#include <inttypes.h>
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
#include "host.h"
#include "lockstep.h"
#include "scenario.h"
#include "unit_part.h"

#define TICK_NS   100000000L /* 0.1 s: the unit's resolution */
#define MAX_CATCH 10         /* ticks run at most per wake-up after a stall */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow unit SCENARIO [--intersection ID]... [--listen ADDR]\n"
            "                    [--base-port N] [--allow IP]... [--set PATH=VALUE]...\n"
            "                    [--bus PUB_EP,SUB_EP [--name NAME]]\n"
            "Run the scenario's signal units (all, or each --intersection) on the wall clock\n"
            "at 10 Hz, each serving the register map (`sigflow regmap --md`) over Modbus TCP\n"
            "on ADDR (default run.modbus_listen, 127.0.0.1). Unit i (0-based, in the order\n"
            "run) listens on port N + i; without --base-port on the intersection's unit_port,\n"
            "else run.modbus_base_port + i; a base of 0 means ephemeral ports. Prints\n"
            "`ready ID ADDR:PORT` per unit once it listens. With --allow, only those client\n"
            "IPv4 addresses may write; others can read, and get exception 01 for writes.\n"
            "With --bus the units do not follow the wall clock: they join the simulator's bus\n"
            "(a `sigflow bus` forwarder's endpoints) as lockstep participant NAME (default\n"
            "units; the simulator must --expect it), take detector inputs and the time from\n"
            "its steps and publish their lamps, and exit 0 when the simulator ends the run.\n"
            "Stops on SIGINT/SIGTERM.\n");
    fputs(SF_CURVE_HELP_CLIENT, out);
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Serve until a signal arrives on sfd; 0 on a clean stop, 1 on a runtime error. */
static int run_loop(sf_host_t *h, int sfd)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (tfd < 0) {
        perror("sigflow unit: timerfd_create");
        return 1;
    }
    struct itimerspec its = {.it_interval = {0, TICK_NS}, .it_value = {0, TICK_NS}};
    if (timerfd_settime(tfd, 0, &its, NULL) != 0) {
        perror("sigflow unit: timerfd_settime");
        close(tfd);
        return 1;
    }
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        size_t n = sf_host_pollfds(h, NULL, 0) + 2;
        if (n > cap) {
            struct pollfd *p = realloc(pfd, n * 2 * sizeof *p);
            if (!p) {
                fprintf(stderr, "sigflow unit: out of memory\n");
                rc = 1;
                break;
            }
            pfd = p;
            cap = n * 2;
        }
        pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = tfd, .events = POLLIN};
        sf_host_pollfds(h, pfd + 2, cap - 2);
        if (poll(pfd, (nfds_t)n, sf_host_wait_hint_ms(h)) < 0) {
            if (errno == EINTR)
                continue;
            perror("sigflow unit: poll");
            rc = 1;
            break;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                fprintf(stderr, "sigflow unit: %s, stopping\n", strsignal((int)si.ssi_signo));
            break;
        }
        if (pfd[1].revents & POLLIN) {
            uint64_t expired = 0;
            if (read(tfd, &expired, sizeof expired) == (ssize_t)sizeof expired) {
                /* Late wake-ups are caught up (bounded): unit time follows the wall clock. */
                if (expired > MAX_CATCH)
                    expired = MAX_CATCH;
                for (uint64_t k = 0; k < expired; k++) {
                    sf_host_set_clock(h, sf_cli_wall_tod_ds());
                    sf_host_tick(h);
                }
            }
        }
        if (sf_host_poll(h, 0) < 0 && errno != EINTR) {
            perror("sigflow unit: serving");
            rc = 1;
            break;
        }
    }
    free(pfd);
    close(tfd);
    return rc;
}

/* ---- --bus: lockstep participant ----------------------------------------------------- */

/* Join the bus of bj as the units of which[0..n_run-1] (scenario indices, the host's
 * order) and step until the simulator's Bye (0), a signal (0) or an error (1, said on
 * stderr). */
static int run_bus(sf_host_t *h, const sf_scenario_t *sc, const int *which, size_t n_run,
                   const sf_bus_join_opts_t *bj, int sfd, const sf_bus_security_t *sec)
{
    uint32_t *ix_of = calloc(n_run ? n_run : 1, sizeof *ix_of);
    if (!ix_of) {
        fprintf(stderr, "sigflow unit: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n_run; i++)
        ix_of[i] = (uint32_t)which[i];
    sf_unit_part_t *work = sf_unit_part_new(h, sc->n_intersections, ix_of, n_run, sc->run.step_s);
    free(ix_of);
    if (!work) {
        fprintf(stderr, "sigflow unit: %s\n", strerror(errno));
        return 1;
    }
    static const char *const topics[] = {"det"};
    sf_bus_join_part_t part = {.cmd = "unit",
                               .name = "units",
                               .role = SFBUS__ROLE__ROLE_UNITS,
                               .stage = 0,
                               .topics = topics,
                               .n_topics = 1,
                               .on_msg = sf_unit_part_on_msg,
                               .on_step = sf_unit_part_on_step,
                               .arg = work,
                               .io = sf_unit_part_io(work)};
    int rc = sf_bus_join_run(bj, &part, sec, sfd);
    sf_unit_part_destroy(&work);
    return rc;
}

int sf_cmd_unit(int argc, char **argv)
{
    const char *file = NULL, *listen = NULL;
    sf_bus_join_opts_t bj = {0};
    const char **ids = calloc((size_t)argc, sizeof *ids);
    const char **sets = calloc((size_t)argc, sizeof *sets);
    const char **allow = calloc((size_t)argc, sizeof *allow);
    size_t n_ids = 0, n_sets = 0, n_allow = 0;
    int have_port = 0, status = 2;
    uint16_t base_port = 0;
    sf_scenario_t *sc = NULL;
    sf_host_t *h = NULL;
    int sfd = -1;
    sf_bus_security_t keys;
    bool secure = false;
    int cr;
    if (!ids || !sets || !allow) {
        fprintf(stderr, "sigflow unit: out of memory\n");
        status = 1;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            status = 0;
            goto done;
        } else if ((cr = sf_bus_join_opt("unit", &bj, a, has_val ? argv[i + 1] : NULL)) != 0) {
            if (cr < 0)
                goto done;
            i++;
        } else if (strcmp(a, "--intersection") == 0 && has_val) {
            ids[n_ids++] = argv[++i];
        } else if (strcmp(a, "--listen") == 0 && has_val) {
            listen = argv[++i];
        } else if (strcmp(a, "--base-port") == 0 && has_val) {
            if (parse_port(argv[++i], &base_port) != 0) {
                fprintf(stderr, "sigflow unit: --base-port: expected 0..65535, got '%s'\n",
                        argv[i]);
                goto done;
            }
            have_port = 1;
        } else if (strcmp(a, "--allow") == 0 && has_val) {
            allow[n_allow++] = argv[++i];
        } else if (strcmp(a, "--set") == 0 && has_val) {
            sets[n_sets++] = argv[++i];
        } else if (a[0] == '-') {
            int known = strcmp(a, "--intersection") == 0 || strcmp(a, "--listen") == 0 ||
                        strcmp(a, "--base-port") == 0 || strcmp(a, "--allow") == 0 ||
                        strcmp(a, "--set") == 0 || strcmp(a, "--bus") == 0 ||
                        strcmp(a, "--name") == 0;
            fprintf(stderr, "sigflow unit: %s '%s' (see sigflow unit --help)\n",
                    known ? "missing value after" : "unknown option", a);
            goto done;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "sigflow unit: one scenario only, got '%s' and '%s'\n", file, a);
            goto done;
        }
    }
    if (!file) {
        fprintf(stderr, "sigflow unit: missing SCENARIO (see sigflow unit --help)\n");
        goto done;
    }
    if ((cr = sf_bus_join_check("unit", &bj, &keys, &secure)) != 0) {
        status = cr;
        goto done;
    }

    sf_errors_t errs = {0};
    sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow unit", file);
        status = 1;
        goto done;
    }
    /* Units to run: each --intersection, or all, in scenario order. */
    size_t n_run = n_ids ? n_ids : sc->n_intersections;
    int *which = calloc(n_run ? n_run : 1, sizeof *which);
    if (!which) {
        fprintf(stderr, "sigflow unit: out of memory\n");
        status = 1;
        goto done;
    }
    for (size_t i = 0; i < n_run; i++) {
        which[i] = n_ids ? sf_scenario_find_intersection(sc, ids[i]) : (int)i;
        if (which[i] < 0) {
            fprintf(stderr, "sigflow unit: --intersection %s: no such intersection in %s\n", ids[i],
                    file);
            free(which);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (which[j] == which[i]) {
                fprintf(stderr, "sigflow unit: --intersection %s given twice\n", ids[i]);
                free(which);
                goto done;
            }
    }
    if (!listen)
        listen = sc->run.modbus_listen[0] ? sc->run.modbus_listen : "127.0.0.1";
    if (!have_port)
        base_port = sc->run.modbus_base_port;
    sf_host_config_t hc = {
        .listen_addr = listen,
        .base_port = base_port,
        .allow = allow,
        .n_allow = n_allow,
    };
    h = sf_host_new(&hc);
    if (!h) {
        fprintf(stderr, "sigflow unit: --listen %s / --allow: not an IPv4 address\n", listen);
        free(which);
        goto done;
    }
    for (size_t i = 0; i < n_run; i++) {
        const sf_intersection_t *ix = &sc->intersections[which[i]];
        sf_unit_config_t uc;
        sf_unit_config_default(&uc, ix);
        sf_unit_config_from_control(&uc, &sc->control);
        /* A port the scenario gives this intersection wins, unless --base-port says. */
        uint16_t port = have_port ? 0 : ix->unit_port;
        if (sf_host_add_unit_at(h, ix, &uc, port) < 0) {
            int e = errno;
            if (port || base_port)
                fprintf(stderr, "sigflow unit: %s: cannot serve on %s:%u: %s\n", ix->id, listen,
                        port ? (unsigned)port : (unsigned)(base_port + i), sf_unit_strerror(e));
            else
                fprintf(stderr, "sigflow unit: %s: cannot serve on %s: %s\n", ix->id, listen,
                        sf_unit_strerror(e));
            free(which);
            status = 1;
            goto done;
        }
    }
    if ((sfd = sf_cli_signalfd("unit")) < 0) {
        free(which);
        status = 1;
        goto done;
    }
    for (size_t i = 0; i < n_run; i++)
        printf("ready %s %s:%u\n", sc->intersections[which[i]].id, listen,
               (unsigned)sf_host_port(h, i));
    fflush(stdout);
    if (bj.bus)
        status = run_bus(h, sc, which, n_run, &bj, sfd, secure ? &keys : NULL);
    else
        status = run_loop(h, sfd);
    free(which);

done:
    if (sfd >= 0)
        close(sfd);
    sf_host_destroy(&h);
    sf_scenario_destroy(&sc);
    free(ids);
    free(sets);
    free(allow);
    return status;
}
