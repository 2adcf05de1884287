/* cli/cmd_record.c — `sigflow record`: write every bus message to a recording file. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "bus.h"
#include "commands.h"
#include "curve_opts.h"
#include "record.h"

#define MAX_TOPICS 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow record --bus SUB_ENDPOINT --out FILE [--topics T,...]\n"
            "                      [--curve-key FILE --curve-server-key FILE]\n"
            "  --bus SUB_ENDPOINT  the forwarder's subscriber endpoint (XPUB), e.g. %s\n"
            "  --out FILE          recording to write (created or truncated)\n"
            "  --topics T,...      record only these topic prefixes (default: everything)\n"
            "Every message is stored as received (topic and encoded frame) with its receive\n"
            "time; format in proto/record.h. Prints \"ready ...\" on stderr once subscribed;\n"
            "stops on SIGINT or SIGTERM. A kill at any moment leaves a readable file.\n",
            SF_BUS_DEFAULT_SUB);
    fputs(SF_CURVE_HELP_CLIENT, out);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Receive one two-frame message (non-blocking) and append it. Returns 1 recorded, 0
 * nothing waiting or a malformed message skipped, -1 fatal (errno). */
static int record_one(void *sub, sf_rec_writer_t *w, uint64_t t0, uint64_t *skipped)
{
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    int rc = 0;
    if (zmq_msg_recv(&topic, sub, ZMQ_DONTWAIT) < 0) {
        rc = errno == EAGAIN || errno == EINTR ? 0 : -1;
        goto out;
    }
    uint64_t t = mono_ns() - t0;
    int frames = 1, more = zmq_msg_more(&topic);
    if (more) {
        if (zmq_msg_recv(&body, sub, 0) < 0) {
            rc = -1;
            goto out;
        }
        frames++;
        more = zmq_msg_more(&body);
    }
    while (more) { /* drain extra frames of a malformed message */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, sub, 0) < 0) {
            zmq_msg_close(&extra);
            rc = -1;
            goto out;
        }
        more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        frames++;
    }
    size_t tl = zmq_msg_size(&topic);
    if (frames != 2 || tl == 0 || tl > SF_BUS_TOPIC_MAX) {
        (*skipped)++;
        goto out;
    }
    if (sf_rec_write(w, t, zmq_msg_data(&topic), tl, zmq_msg_data(&body), zmq_msg_size(&body)) !=
        0) {
        if (errno == E2BIG) {
            (*skipped)++;
            goto out;
        }
        rc = -1;
        goto out;
    }
    rc = 1;
out:;
    int e = errno;
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    errno = e;
    return rc;
}

int sf_cmd_record(int argc, char **argv)
{
    const char *bus = NULL, *out = NULL;
    char topics_buf[1024] = "";
    const char *topics[MAX_TOPICS];
    size_t n_topics = 0;
    sf_curve_opts_t curve = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sigflow record: unknown option or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        int cr = sf_curve_opt("record", &curve, argv[i], argv[i + 1]);
        if (cr < 0)
            return 2;
        if (cr > 0) {
            i++;
        } else if (strcmp(argv[i], "--bus") == 0) {
            bus = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--topics") == 0) {
            if (strlen(argv[++i]) >= sizeof topics_buf) {
                fprintf(stderr, "sigflow record: --topics: list too long\n");
                return 2;
            }
            strcpy(topics_buf, argv[i]);
            n_topics = 0;
            for (char *save = NULL, *t = strtok_r(topics_buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (n_topics == MAX_TOPICS || strlen(t) > SF_BUS_TOPIC_MAX) {
                    fprintf(stderr,
                            "sigflow record: --topics: at most %d topics of at most %d "
                            "bytes\n",
                            MAX_TOPICS, SF_BUS_TOPIC_MAX);
                    return 2;
                }
                topics[n_topics++] = t;
            }
            if (n_topics == 0) {
                fprintf(stderr, "sigflow record: --topics: empty list\n");
                return 2;
            }
        } else {
            fprintf(stderr, "sigflow record: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!bus || !out) {
        fprintf(stderr, "sigflow record: --bus and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (n_topics == 0)
        topics[n_topics++] = "";
    sf_bus_security_t keys;
    bool secure = false;
    int crc = sf_curve_opts_client("record", &curve, &keys, &secure);
    if (crc != 0)
        return crc;

    /* Stop signals are taken synchronously between polls (blocked before libzmq starts
     * its threads, which inherit the mask). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "sigflow record: cannot block signals\n");
        return 1;
    }
    sf_rec_writer_t *w = sf_rec_writer_new(out);
    if (!w) {
        fprintf(stderr, "sigflow record: %s: %s\n", out, strerror(errno));
        return 1;
    }
    void *ctx = zmq_ctx_new();
    void *sub =
        ctx ? sf_bus_sub_new_secure(ctx, bus, topics, n_topics, 0, secure ? &keys : NULL) : NULL;
    if (!sub) {
        fprintf(stderr, "sigflow record: cannot connect to %s: %s\n", bus, sf_bus_strerror(errno));
        sf_rec_writer_destroy(&w);
        if (ctx)
            (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
        return 1;
    }
    fprintf(stderr, "ready record bus=%s out=%s%s\n", bus, out, secure ? " curve" : "");
    fflush(stderr);

    uint64_t t0 = mono_ns(), skipped = 0;
    int status = 0, sig = 0;
    struct timespec zero = {0, 0};
    for (;;) {
        sig = sigtimedwait(&stop, NULL, &zero);
        if (sig > 0)
            break;
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        int pr = zmq_poll(&it, 1, 100);
        if (pr < 0 && errno != EINTR) {
            fprintf(stderr, "sigflow record: poll: %s\n", zmq_strerror(errno));
            status = 1;
            break;
        }
        int r;
        while ((r = record_one(sub, w, t0, &skipped)) == 1)
            ;
        if (r < 0) {
            fprintf(stderr, "sigflow record: %s\n", strerror(errno));
            status = 1;
            break;
        }
    }
    uint64_t n = sf_rec_writer_count(w);
    sf_bus_close(&sub);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    if (sf_rec_writer_destroy(&w) != 0) {
        fprintf(stderr, "sigflow record: closing %s: %s\n", out, strerror(errno));
        status = 1;
    }
    fprintf(stderr, "sigflow record: %llu messages recorded, %llu malformed skipped%s\n",
            (unsigned long long)n, (unsigned long long)skipped,
            sig == SIGINT    ? " (SIGINT)"
            : sig == SIGTERM ? " (SIGTERM)"
                             : "");
    return status;
}
