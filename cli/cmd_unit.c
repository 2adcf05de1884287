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
#include "commands.h"
#include "curve_opts.h"
#include "host.h"
#include "lockstep.h"
#include "scenario.h"
#include "unit_part.h"

#define TICK_NS      100000000L /* 0.1 s: the unit's resolution */
#define MAX_CATCH    10         /* ticks run at most per wake-up after a stall */
#define REGISTER_S   30.0       /* --bus: the simulator must welcome us within this */
#define WAIT_SLICE_S 1.0        /* --bus: a paused clock is waited for in slices */

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

/* Time of day from the local wall clock, 0.1 s after midnight. */
static uint32_t wall_tod_ds(void)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!localtime_r(&ts.tv_sec, &tm))
        return 0;
    return (uint32_t)((tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec) * 10 +
                      ts.tv_nsec / 100000000L) %
           864000u;
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
                    sf_host_set_clock(h, wall_tod_ds());
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

/* The units' work (cli/unit_part.h) and the signal descriptor: a signal ends the wait. */
typedef struct {
    sf_unit_part_t *work;   /* what a step does with the units */
    sf_participant_io_t io; /* work's descriptors (the host's Modbus sockets) */
    int sfd;                /* signalfd: readable = stop */
    bool stop;              /* a signal arrived */
} bus_units_t;

/* The signal descriptor first, then the host's Modbus sockets: the controller polls the
 * units between their steps. */
static size_t bus_io_fill(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms)
{
    bus_units_t *u = arg;
    size_t n = u->io.fill(u->io.arg, cap ? items + 1 : NULL, cap ? cap - 1 : 0, max_wait_ms);
    if (n + 1 > cap)
        return n + 1;
    items[0] = (zmq_pollitem_t){NULL, u->sfd, ZMQ_POLLIN, 0};
    return n + 1;
}

static int bus_io_serve(void *arg, const zmq_pollitem_t *items, size_t n)
{
    bus_units_t *u = arg;
    if (n > 0 && (items[0].revents & ZMQ_POLLIN)) {
        struct signalfd_siginfo si;
        if (read(u->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            fprintf(stderr, "sigflow unit: %s, stopping\n", strsignal((int)si.ssi_signo));
        u->stop = true;
        return -1;
    }
    return u->io.serve(u->io.arg, n ? items + 1 : items, n ? n - 1 : 0);
}

/* Join the bus at pub_ep/sub_ep as name and step until the simulator's Bye (0), a signal
 * (0) or an error (1, said on stderr). */
static int run_bus(sf_host_t *h, const sf_scenario_t *sc, const int *which, size_t n_run,
                   const char *pub_ep, const char *sub_ep, const char *name, int sfd,
                   const sf_bus_security_t *sec)
{
    int rc = 1;
    bus_units_t u = {.sfd = sfd};
    uint32_t *ix_of = calloc(n_run ? n_run : 1, sizeof *ix_of);
    void *zctx = zmq_ctx_new();
    sf_participant_t *p = NULL;
    if (!ix_of || !zctx) {
        fprintf(stderr, "sigflow unit: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n_run; i++)
        ix_of[i] = (uint32_t)which[i];
    u.work = sf_unit_part_new(h, sc->n_intersections, ix_of, n_run, sc->run.step_s);
    if (!u.work) {
        fprintf(stderr, "sigflow unit: out of memory\n");
        goto out;
    }
    u.io = sf_unit_part_io(u.work);
    const char *topics[] = {"det"};
    sf_participant_config_t pc = {.name = name,
                                  .role = SFBUS__ROLE__ROLE_UNITS,
                                  .lockstep = 1,
                                  .topics = topics,
                                  .n_topics = 1,
                                  .stage = 0,
                                  .security = sec};
    p = sf_participant_new(zctx, pub_ep, sub_ep, &pc);
    if (!p) {
        fprintf(stderr, "sigflow unit: --bus %s,%s: cannot join: %s\n", pub_ep, sub_ep,
                sf_bus_strerror(errno));
        goto out;
    }
    sf_participant_io_t io = {.fill = bus_io_fill, .serve = bus_io_serve, .arg = &u};
    /* Registration first (the Modbus sockets wait in the kernel's backlog meanwhile). */
    if (sf_participant_register(p, REGISTER_S, sf_unit_part_on_msg, u.work) != 0) {
        fprintf(stderr, "sigflow unit: %s\n", sf_participant_error(p));
        goto out;
    }
    fprintf(stderr, "sigflow unit: joined the bus as %s\n", name);
    sf_participant_set_io(p, &io);
    for (;;) {
        int r =
            sf_participant_step(p, WAIT_SLICE_S, sf_unit_part_on_msg, sf_unit_part_on_step, u.work);
        if (r == 1)
            continue;
        if (r == 0) {
            fprintf(stderr, "sigflow unit: the simulator ended the run after %llu steps\n",
                    (unsigned long long)sf_participant_steps(p));
            rc = 0;
            break;
        }
        if (u.stop) {
            rc = 0;
            break;
        }
        if (errno == SF_BUS_ETIMEOUT)
            continue; /* a paused or slow clock: the units go on serving Modbus */
        fprintf(stderr, "sigflow unit: %s\n", sf_participant_error(p));
        break;
    }
out:
    sf_participant_destroy(&p);
    if (zctx)
        zmq_ctx_term(zctx);
    sf_unit_part_destroy(&u.work);
    free(ix_of);
    return rc;
}

/* "PUB_EP,SUB_EP" into pub and sub (each SF_BUS_ENDPOINT_MAX); -1 when malformed. */
static int split_bus(const char *arg, char *pub, char *sub)
{
    const char *comma = strchr(arg, ',');
    size_t lp = comma ? (size_t)(comma - arg) : 0;
    if (!comma || lp == 0 || !comma[1] || lp >= SF_BUS_ENDPOINT_MAX ||
        strlen(comma + 1) >= SF_BUS_ENDPOINT_MAX || strchr(comma + 1, ','))
        return -1;
    memcpy(pub, arg, lp);
    pub[lp] = 0;
    snprintf(sub, SF_BUS_ENDPOINT_MAX, "%s", comma + 1);
    return 0;
}

static bool valid_name(const char *s)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    return s[0] && strlen(s) <= SF_BUS_NAME_MAX && strspn(s, ok) == strlen(s);
}

int sf_cmd_unit(int argc, char **argv)
{
    const char *file = NULL, *listen = NULL, *bus = NULL, *name = NULL;
    char pub_ep[SF_BUS_ENDPOINT_MAX], sub_ep[SF_BUS_ENDPOINT_MAX];
    const char **ids = calloc((size_t)argc, sizeof *ids);
    const char **sets = calloc((size_t)argc, sizeof *sets);
    const char **allow = calloc((size_t)argc, sizeof *allow);
    size_t n_ids = 0, n_sets = 0, n_allow = 0;
    int have_port = 0, status = 2;
    uint16_t base_port = 0;
    sf_scenario_t *sc = NULL;
    sf_host_t *h = NULL;
    int sfd = -1;
    sf_curve_opts_t curve = {0};
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
        } else if ((cr = sf_curve_opt("unit", &curve, a, has_val ? argv[i + 1] : NULL)) != 0) {
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
        } else if (strcmp(a, "--bus") == 0 && has_val) {
            bus = argv[++i];
            if (split_bus(bus, pub_ep, sub_ep) != 0) {
                fprintf(stderr, "sigflow unit: --bus: expected PUB_EP,SUB_EP, got '%s'\n", bus);
                goto done;
            }
        } else if (strcmp(a, "--name") == 0 && has_val) {
            name = argv[++i];
            if (!valid_name(name)) {
                fprintf(stderr,
                        "sigflow unit: --name '%s': expected 1..%d characters of "
                        "[A-Za-z0-9_.-]\n",
                        name, SF_BUS_NAME_MAX);
                goto done;
            }
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
    if (name && !bus) {
        fprintf(stderr, "sigflow unit: --name needs --bus (the name is the bus's)\n");
        goto done;
    }
    if (sf_curve_opts_any(&curve) && !bus) {
        fprintf(stderr, "sigflow unit: --curve-* options need --bus (they secure it)\n");
        goto done;
    }
    if ((cr = sf_curve_opts_client("unit", &curve, &keys, &secure)) != 0) {
        status = cr;
        goto done;
    }

    sf_errors_t errs = {0};
    sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msg[i]);
        if (errs.n == 0)
            fprintf(stderr, "sigflow unit: %s: cannot load: %s\n", file, strerror(errno));
        sf_errors_clear(&errs);
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
    /* Signals arrive through a descriptor in the loop: no handler, no global flag. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        perror("sigflow unit: signalfd");
        free(which);
        status = 1;
        goto done;
    }
    for (size_t i = 0; i < n_run; i++)
        printf("ready %s %s:%u\n", sc->intersections[which[i]].id, listen,
               (unsigned)sf_host_port(h, i));
    fflush(stdout);
    if (bus)
        status = run_bus(h, sc, which, n_run, pub_ep, sub_ep, name ? name : "units", sfd,
                         secure ? &keys : NULL);
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
