/* cli/bus_join.c — a participant joining a simulator's bus from its own process
 * (cli/bus_join.h). */
#define _POSIX_C_SOURCE 200809L
#include "bus_join.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define REGISTER_S   30.0 /* the simulator must welcome us within this */
#define WAIT_SLICE_S 1.0  /* a paused clock is waited for in slices */

bool sf_bus_valid_name(const char *s)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    return s[0] && strlen(s) <= SF_BUS_NAME_MAX && strspn(s, ok) == strlen(s);
}

int sf_bus_split_endpoints(const char *arg, char *pub, char *sub)
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

int sf_bus_join_opt(const char *cmd, sf_bus_join_opts_t *o, const char *opt, const char *val)
{
    int cr = sf_curve_opt(cmd, &o->curve, opt, val);
    if (cr != 0)
        return cr;
    if (!val)
        return 0;
    if (strcmp(opt, "--bus") == 0) {
        o->bus = val;
        if (sf_bus_split_endpoints(val, o->pub_ep, o->sub_ep) != 0) {
            fprintf(stderr, "sigflow %s: --bus: expected PUB_EP,SUB_EP, got '%s'\n", cmd, val);
            return -1;
        }
        return 1;
    }
    if (strcmp(opt, "--name") == 0) {
        o->name = val;
        if (!sf_bus_valid_name(val)) {
            fprintf(stderr,
                    "sigflow %s: --name '%s': expected 1..%d characters of [A-Za-z0-9_.-]\n", cmd,
                    val, SF_BUS_NAME_MAX);
            return -1;
        }
        return 1;
    }
    return 0;
}

int sf_bus_join_check(const char *cmd, const sf_bus_join_opts_t *o, sf_bus_security_t *sec,
                      bool *secure)
{
    if (o->name && !o->bus) {
        fprintf(stderr, "sigflow %s: --name needs --bus (the name is the bus's)\n", cmd);
        return 2;
    }
    if (sf_curve_opts_any(&o->curve) && !o->bus) {
        fprintf(stderr, "sigflow %s: --curve-* options need --bus (they secure it)\n", cmd);
        return 2;
    }
    return sf_curve_opts_client(cmd, &o->curve, sec, secure);
}

int sf_cli_signalfd(const char *cmd)
{
    /* Signals arrive through a descriptor in the loop: no handler, no global flag. Threads
     * started later inherit the blocked mask, so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int sfd = -1;
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, "sigflow %s: signalfd: %s\n", cmd, strerror(errno));
        return -1;
    }
    return sfd;
}

uint32_t sf_cli_wall_tod_ds(void)
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

/* The participant's descriptors with the signal descriptor in front: a signal ends the
 * wait (and the run), the part's own descriptors are served as they would be alone. */
typedef struct {
    const sf_bus_join_part_t *part;
    int sfd;   /* signalfd: readable = stop */
    bool stop; /* a signal arrived */
} join_io_t;

static size_t join_fill(void *arg, zmq_pollitem_t *items, size_t cap, int *max_wait_ms)
{
    join_io_t *j = arg;
    const sf_participant_io_t *io = &j->part->io;
    size_t n = 0;
    *max_wait_ms = -1;
    if (io->fill)
        n = io->fill(io->arg, cap ? items + 1 : NULL, cap ? cap - 1 : 0, max_wait_ms);
    if (n + 1 > cap)
        return n + 1;
    items[0] = (zmq_pollitem_t){NULL, j->sfd, ZMQ_POLLIN, 0};
    return n + 1;
}

static int join_serve(void *arg, const zmq_pollitem_t *items, size_t n)
{
    join_io_t *j = arg;
    const sf_participant_io_t *io = &j->part->io;
    if (n > 0 && (items[0].revents & ZMQ_POLLIN)) {
        struct signalfd_siginfo si;
        if (read(j->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            fprintf(stderr, "sigflow %s: %s, stopping\n", j->part->cmd,
                    strsignal((int)si.ssi_signo));
        j->stop = true;
        return -1;
    }
    if (!io->serve || n == 0)
        return 0;
    return io->serve(io->arg, items + 1, n - 1);
}

int sf_bus_join_run(const sf_bus_join_opts_t *o, const sf_bus_join_part_t *part,
                    const sf_bus_security_t *sec, int sfd)
{
    const char *cmd = part->cmd;
    const char *name = o->name ? o->name : part->name;
    int rc = 1;
    void *zctx = zmq_ctx_new();
    sf_participant_t *p = NULL;
    if (!zctx) {
        fprintf(stderr, "sigflow %s: zmq_ctx_new: %s\n", cmd, zmq_strerror(errno));
        return 1;
    }
    sf_participant_config_t pc = {.name = name,
                                  .role = part->role,
                                  .lockstep = 1,
                                  .topics = part->topics,
                                  .n_topics = part->n_topics,
                                  .stage = part->stage,
                                  .security = sec};
    p = sf_participant_new(zctx, o->pub_ep, o->sub_ep, &pc);
    if (!p) {
        fprintf(stderr, "sigflow %s: --bus %s,%s: cannot join: %s\n", cmd, o->pub_ep, o->sub_ep,
                sf_bus_strerror(errno));
        goto out;
    }
    /* Registration first (a units host's Modbus sockets wait in the kernel's backlog
     * meanwhile). */
    if (sf_participant_register(p, REGISTER_S, part->on_msg, part->arg) != 0) {
        fprintf(stderr, "sigflow %s: %s\n", cmd, sf_participant_error(p));
        goto out;
    }
    fprintf(stderr, "sigflow %s: joined the bus as %s\n", cmd, name);
    join_io_t j = {.part = part, .sfd = sfd};
    sf_participant_io_t io = {.fill = join_fill, .serve = join_serve, .arg = &j};
    sf_participant_set_io(p, &io);
    for (;;) {
        int r = sf_participant_step(p, WAIT_SLICE_S, part->on_msg, part->on_step, part->arg);
        if (r == 1)
            continue;
        if (r == 0) {
            fprintf(stderr, "sigflow %s: the simulator ended the run after %llu steps\n", cmd,
                    (unsigned long long)sf_participant_steps(p));
            rc = 0;
            break;
        }
        if (j.stop) {
            rc = 0;
            break;
        }
        if (errno == SF_BUS_ETIMEOUT)
            continue; /* a paused or slow clock: the part goes on serving its descriptors */
        fprintf(stderr, "sigflow %s: %s\n", cmd, sf_participant_error(p));
        break;
    }
out:
    sf_participant_destroy(&p);
    (void)sf_bus_ctx_term(zctx, SF_BUS_CTX_TERM_MS);
    return rc;
}
