/* cli/cmd_replay.c — `sigflow replay`: play a recording back onto a bus. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "bus.h"
#include "commands.h"
#include "curve.h"
#include "curve_opts.h"
#include "record.h"

#define REPLAY_LINGER_MS 2000 /* how long the end of the replay may take to flush, ms */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow replay FILE [--speed X | --max] [--pub ENDPOINT | --to ENDPOINT]"
            " [--wait N]\n"
            "                    [--curve-key FILE (--curve-allow DIR|FILE | --curve-server-key "
            "FILE)]\n"
            "  --speed X       play X times as fast as recorded (default 1; 0.01..10000)\n"
            "  --max           as fast as possible (no spacing)\n"
            "  --pub ENDPOINT  bind here; viewers connect with `sigflow view --bus ENDPOINT`\n"
            "                  (default %s; a port of * picks a free one)\n"
            "  --to ENDPOINT   instead, connect to a running forwarder's publisher endpoint\n"
            "  --wait N        start only after N subscriptions have arrived (default 0)\n"
            "  --curve-key FILE  CurveZMQ: this side's secret key (sigflow keygen); with --pub\n"
            "                  it serves the viewers securely and needs --curve-allow DIR|FILE\n"
            "                  (their authorised public keys); with --to it joins a secured\n"
            "                  forwarder and needs --curve-server-key FILE (the bus's NAME.pub)\n"
            "Prints \"ready replay pub=ENDPOINT\" on stderr when bound. A torn last record is\n"
            "reported and skipped (exit 0); a damaged record in the middle stops the replay\n"
            "there with its index and offset (exit 1). Stops on SIGINT or SIGTERM.\n",
            SF_BUS_DEFAULT_SUB);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait until the monotonic clock reaches target_ns or a stop signal arrives. Returns the
 * signal, or 0 when the time came. */
static int wait_until(const sigset_t *stop, uint64_t target_ns)
{
    for (;;) {
        uint64_t now = mono_ns();
        struct timespec left = {0, 0};
        if (target_ns > now) {
            uint64_t d = target_ns - now;
            left.tv_sec = (time_t)(d / 1000000000u);
            left.tv_nsec = (long)(d % 1000000000u);
        }
        int sig = sigtimedwait(stop, NULL, &left);
        if (sig > 0)
            return sig;
        if (mono_ns() >= target_ns)
            return 0;
    }
}

/* Read pending subscription messages from the XPUB; returns how many subscribe (not
 * unsubscribe) messages were read. */
static int drain_subscriptions(void *xpub)
{
    int n = 0;
    uint8_t buf[SF_BUS_TOPIC_MAX + 2];
    for (;;) {
        int r = zmq_recv(xpub, buf, sizeof buf, ZMQ_DONTWAIT);
        if (r < 0)
            return n;
        if (r >= 1 && buf[0] == 1)
            n++;
    }
}

static int parse_args(int argc, char **argv, const char **file, double *speed, const char **ep,
                      bool *connect, long *wait_n, sf_curve_opts_t *curve)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--max") == 0) {
            *speed = INFINITY;
            continue;
        }
        if (argv[i][0] != '-') {
            if (*file) {
                fprintf(stderr, "sigflow replay: more than one FILE ('%s')\n", argv[i]);
                return 2;
            }
            *file = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sigflow replay: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        }
        char *end;
        errno = 0;
        int cr = sf_curve_opt("replay", curve, argv[i], argv[i + 1]);
        if (cr < 0)
            return 2;
        if (cr > 0) {
            i++;
        } else if (strcmp(argv[i], "--speed") == 0) {
            double v = strtod(argv[++i], &end);
            if (errno || *end || end == argv[i] || !(v >= 0.01 && v <= 10000)) {
                fprintf(stderr, "sigflow replay: --speed: expected 0.01..10000, got '%s'\n",
                        argv[i]);
                return 2;
            }
            *speed = v;
        } else if (strcmp(argv[i], "--pub") == 0 || strcmp(argv[i], "--to") == 0) {
            *connect = strcmp(argv[i], "--to") == 0;
            *ep = argv[++i];
        } else if (strcmp(argv[i], "--wait") == 0) {
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 0 || v > 100000) {
                fprintf(stderr, "sigflow replay: --wait: expected 0..100000, got '%s'\n", argv[i]);
                return 2;
            }
            *wait_n = v;
        } else {
            fprintf(stderr, "sigflow replay: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!*file) {
        fprintf(stderr, "sigflow replay: FILE is required\n");
        return 2;
    }
    return -1;
}

int sf_cmd_replay(int argc, char **argv)
{
    const char *file = NULL, *ep = SF_BUS_DEFAULT_SUB;
    double speed = 1.0;
    bool connect = false;
    long wait_n = 0;
    sf_curve_opts_t curve = {0};
    int pr = parse_args(argc, argv, &file, &speed, &ep, &connect, &wait_n, &curve);
    if (pr == 2)
        usage(stderr);
    if (pr >= 0)
        return pr;
    /* Keys: joining a forwarder (--to) as a client, or serving viewers (--pub) as a CURVE
     * server; read and checked before anything starts. */
    sf_bus_security_t keys;
    char secret[SF_CURVE_Z85_LEN + 1] = "";
    bool secure = false;
    int crc = connect ? sf_curve_opts_client("replay", &curve, &keys, &secure)
                      : sf_curve_opts_server("replay", &curve, secret, &keys, &secure);
    if (crc != 0)
        return crc;

    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "sigflow replay: %s: %s\n", file, strerror(errno));
        return 1;
    }
    sf_rec_reader_t *r = sf_rec_reader_new(f);
    if (!r) {
        fprintf(stderr, "sigflow replay: %s: %s\n", file, sf_rec_strerror(errno));
        fclose(f);
        return 1;
    }
    if (sf_rec_reader_bus_version(r) != SF_BUS_VERSION)
        fprintf(stderr, "sigflow replay: warning: recorded with bus version %u, this is %d\n",
                sf_rec_reader_bus_version(r), SF_BUS_VERSION);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int status = 1;
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *auth = NULL;
    void *pub = NULL;
    if (ctx && secure && !connect && !(auth = sf_curve_auth_new(ctx, curve.allow))) {
        fprintf(stderr, "sigflow replay: --curve-allow %s: %s\n", curve.allow, strerror(errno));
        goto done;
    }
    pub = ctx ? zmq_socket(ctx, ZMQ_XPUB) : NULL;
    int hwm = SF_BUS_PUB_SNDHWM, linger = REPLAY_LINGER_MS;
    char bound[SF_BUS_ENDPOINT_MAX] = "";
    size_t bl = sizeof bound;
    if (!pub || zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        (secure && connect &&
         sf_curve_apply_client(pub, keys.public_key, keys.secret_key, keys.server_key) != 0) ||
        (secure && !connect && sf_curve_apply_server(pub, secret) != 0) ||
        (connect ? zmq_connect(pub, ep) : zmq_bind(pub, ep)) != 0 ||
        zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, bound, &bl) != 0) {
        fprintf(stderr, "sigflow replay: cannot %s %s: %s\n", connect ? "connect to" : "bind", ep,
                zmq_strerror(errno));
        goto done;
    }
    fprintf(stderr, "ready replay pub=%s%s\n", connect ? ep : bound, secure ? " curve" : "");
    fflush(stderr);

    int sig = 0;
    for (long got = 0; got < wait_n && !sig;) {
        zmq_pollitem_t it = {pub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) > 0)
            got += drain_subscriptions(pub);
        struct timespec zero = {0, 0};
        int s = sigtimedwait(&stop, NULL, &zero);
        if (s > 0)
            sig = s;
    }

    uint64_t start = mono_ns(), n = 0;
    sf_rec_t rec;
    int rc = 0;
    while (!sig && (rc = sf_rec_next(r, &rec)) == 1) {
        if (isfinite(speed)) {
            sig = wait_until(&stop, start + (uint64_t)((double)rec.t_ns / speed));
            if (sig)
                break;
        }
        drain_subscriptions(pub);
        if (zmq_send(pub, rec.topic, rec.topic_len, ZMQ_SNDMORE) < 0 ||
            zmq_send(pub, rec.payload, rec.len, 0) < 0) {
            fprintf(stderr, "sigflow replay: send: %s\n", zmq_strerror(errno));
            goto done;
        }
        n++;
    }
    char why[256];
    status = 0;
    if (!sig && rc < 0) {
        int e = errno;
        fprintf(stderr, "sigflow replay: %s: %s\n", file, sf_rec_reader_error(r, why, sizeof why));
        if (e != SF_REC_ETAIL)
            status = 1;
    }
    fprintf(stderr, "sigflow replay: %llu messages played%s\n", (unsigned long long)n,
            sig == SIGINT    ? " (SIGINT)"
            : sig == SIGTERM ? " (SIGTERM)"
                             : "");
done:
    if (pub)
        zmq_close(pub);
    sf_curve_auth_destroy(&auth);
    if (ctx)
        (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    sf_rec_reader_destroy(&r);
    fclose(f);
    return status;
}
