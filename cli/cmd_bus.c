/* cli/cmd_bus.c — `sigflow bus`: a standalone XSUB/XPUB forwarder for the simulation bus. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "commands.h"
#include "curve.h"
#include "curve_opts.h"
#include <zmq.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow bus [--pub ENDPOINT] [--sub ENDPOINT] [--hwm N]\n"
            "                   [--curve-key FILE --curve-allow DIR|FILE]\n"
            "  --pub ENDPOINT  where publishers connect (XSUB), default %s\n"
            "  --sub ENDPOINT  where subscribers connect (XPUB), default %s\n"
            "  --hwm N         messages queued per slow subscriber before dropping, "
            "default %d\n"
            "A port of * picks a free one. Prints \"ready pub=... sub=...\" when bound;\n"
            "stops on SIGINT or SIGTERM.\n",
            SF_BUS_DEFAULT_PUB, SF_BUS_DEFAULT_SUB, SF_BUS_XPUB_SNDHWM);
    fputs(SF_CURVE_HELP_SERVER
          "  (--curve-secret and --authorized are the older names of these two)\n"
          "  Participants then join with --curve-key THEIR.key --curve-server-key SERVER.pub\n",
          out);
}

int sf_cmd_bus(int argc, char **argv)
{
    const char *pub = SF_BUS_DEFAULT_PUB, *sub = SF_BUS_DEFAULT_SUB;
    int hwm = 0;
    const char *secret_file = NULL, *auth_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sigflow bus: unknown option or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--pub") == 0) {
            pub = argv[++i];
        } else if (strcmp(argv[i], "--sub") == 0) {
            sub = argv[++i];
        } else if (strcmp(argv[i], "--curve-secret") == 0 || strcmp(argv[i], "--curve-key") == 0) {
            secret_file = argv[++i];
        } else if (strcmp(argv[i], "--authorized") == 0 || strcmp(argv[i], "--curve-allow") == 0) {
            auth_dir = argv[++i];
        } else if (strcmp(argv[i], "--curve-server-key") == 0) {
            fprintf(stderr, "sigflow bus: --curve-server-key is for participants joining a bus; "
                            "the bus takes --curve-key (its secret key) and --curve-allow\n");
            return 2;
        } else if (strcmp(argv[i], "--hwm") == 0) {
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 1 || v > 10000000) {
                fprintf(stderr, "sigflow bus: --hwm: expected 1..10000000, got '%s'\n", argv[i]);
                return 2;
            }
            hwm = (int)v;
        } else {
            fprintf(stderr, "sigflow bus: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (!secret_file != !auth_dir) {
        fprintf(stderr, "sigflow bus: --curve-key and --curve-allow go together\n");
        return 2;
    }
    char secret[SF_CURVE_Z85_LEN + 1] = "";
    if (secret_file && sf_curve_read_key(secret_file, secret) != 0) {
        fprintf(stderr, "sigflow bus: --curve-key %s: %s\n", secret_file,
                errno == EINVAL ? "not a Z85 key file" : strerror(errno));
        return 1;
    }

    /* Block the stop signals before libzmq starts its threads (they inherit the mask),
     * then take them synchronously with sigwait: no handler, no flag, no polling. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "sigflow bus: cannot block signals\n");
        return 1;
    }
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *auth = NULL;
    if (auth_dir) {
        auth = sf_curve_auth_new(ctx, auth_dir);
        if (!auth || sf_curve_auth_keys(auth) == 0) {
            fprintf(stderr, "sigflow bus: --curve-allow %s: %s\n", auth_dir,
                    auth              ? "no *.pub key there: nobody could join"
                    : errno == EINVAL ? "a *.pub file is not a Z85 key"
                                      : strerror(errno));
            sf_curve_auth_destroy(&auth);
            (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
            return 1;
        }
    }
    sf_bus_forwarder_t *fw =
        ctx ? sf_bus_forwarder_new_curve(ctx, pub, sub, hwm, secret_file ? secret : NULL) : NULL;
    if (!fw) {
        int e = errno;
        sf_curve_auth_destroy(&auth);
        if (ctx)
            (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
        errno = e;
        fprintf(stderr, "sigflow bus: cannot bind pub=%s sub=%s: %s\n", pub, sub,
                sf_bus_strerror(errno));
        return 1;
    }
    printf("ready pub=%s sub=%s\n", sf_bus_forwarder_pub_endpoint(fw),
           sf_bus_forwarder_sub_endpoint(fw));
    fflush(stdout);

    int sig = 0;
    if (sigwait(&stop, &sig) != 0)
        sig = 0;
    sf_bus_stats_t st = {0};
    int have_stats = sf_bus_forwarder_stats(fw, &st) == 0;
    sf_bus_forwarder_destroy(&fw);
    unsigned long admitted = 0, refused = 0;
    sf_curve_auth_counts(auth, &admitted, &refused);
    sf_curve_auth_destroy(&auth);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    if (auth_dir)
        fprintf(stderr, "sigflow bus: curve: %lu clients admitted, %lu refused\n", admitted,
                refused);
    if (have_stats)
        fprintf(stderr, "sigflow bus: stopped by %s after %llu messages (%llu bytes) forwarded\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)st.out_msgs,
                (unsigned long long)st.out_bytes);
    return 0;
}
