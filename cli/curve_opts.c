/* cli/curve_opts.c — the --curve-* options of the subcommands on the bus (curve_opts.h). */
#include "curve_opts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

int sf_curve_opt(const char *cmd, sf_curve_opts_t *c, const char *opt, const char *val)
{
    const char **slot = strcmp(opt, "--curve-key") == 0          ? &c->key
                        : strcmp(opt, "--curve-server-key") == 0 ? &c->server_key
                        : strcmp(opt, "--curve-allow") == 0      ? &c->allow
                                                                 : NULL;
    if (!slot)
        return 0;
    if (!val || !val[0]) {
        fprintf(stderr, "sigflow %s: %s needs a value\n", cmd, opt);
        return -1;
    }
    *slot = val;
    return 1;
}

bool sf_curve_opts_any(const sf_curve_opts_t *c)
{
    return c->key || c->server_key || c->allow;
}

int sf_curve_opts_client(const char *cmd, const sf_curve_opts_t *c, sf_bus_security_t *sec,
                         bool *secure)
{
    *secure = false;
    if (!sf_curve_opts_any(c))
        return 0;
    if (c->allow) {
        fprintf(stderr,
                "sigflow %s: --curve-allow is for a serving side; to join a secured bus give "
                "--curve-key and --curve-server-key\n",
                cmd);
        return 2;
    }
    if (!c->key || !c->server_key) {
        fprintf(stderr, "sigflow %s: --curve-key and --curve-server-key go together\n", cmd);
        return 2;
    }
    /* Each file on its own first, so that the message names the option. */
    const char *opt[2] = {"--curve-key", "--curve-server-key"}, *path[2] = {c->key, c->server_key};
    for (int i = 0; i < 2; i++) {
        char z85[SF_CURVE_Z85_LEN + 1];
        if (sf_curve_read_key(path[i], z85) != 0) {
            fprintf(stderr, "sigflow %s: %s %s: %s\n", cmd, opt[i], path[i],
                    errno == EINVAL ? "not a CurveZMQ key file (one Z85 key of 40 characters, "
                                      "as written by sigflow keygen)"
                                    : strerror(errno));
            return 1;
        }
    }
    char why[512];
    if (sf_bus_security_load(sec, c->key, c->server_key, why, sizeof why) != 0) {
        fprintf(stderr, "sigflow %s: --curve-key %s\n", cmd, why);
        return 1;
    }
    *secure = true;
    return 0;
}

int sf_curve_opts_server(const char *cmd, const sf_curve_opts_t *c,
                         char secret[SF_CURVE_Z85_LEN + 1], sf_bus_security_t *sec, bool *secure)
{
    *secure = false;
    if (!sf_curve_opts_any(c))
        return 0;
    if (c->server_key) {
        fprintf(stderr,
                "sigflow %s: --curve-server-key is for joining a bus; this one serves it: "
                "give --curve-key (the server's secret key) and --curve-allow\n",
                cmd);
        return 2;
    }
    if (!c->key || !c->allow) {
        fprintf(stderr, "sigflow %s: --curve-key and --curve-allow go together\n", cmd);
        return 2;
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "sigflow %s: this libzmq has no CURVE support\n", cmd);
        return 1;
    }
    if (sf_curve_read_key(c->key, secret) != 0) {
        fprintf(stderr, "sigflow %s: --curve-key %s: %s\n", cmd, c->key,
                errno == EINVAL ? "not a CurveZMQ key file (one Z85 key of 40 characters, as "
                                  "written by sigflow keygen)"
                                : strerror(errno));
        return 1;
    }
    size_t kl = strlen(c->key);
    if (kl > 4 && strcmp(c->key + kl - 4, ".pub") == 0) {
        fprintf(stderr,
                "sigflow %s: --curve-key %s: is a public key file; the server needs its secret "
                "key (NAME.key)\n",
                cmd, c->key);
        return 1;
    }
    /* The allow-list is read for real by the server's ZAP handler; a throwaway read here
     * refuses a bad or empty list before anything starts. */
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *a = ctx ? sf_curve_auth_new(ctx, c->allow) : NULL;
    int e = errno;
    bool loaded = a != NULL;
    size_t n = sf_curve_auth_keys(a);
    sf_curve_auth_destroy(&a);
    if (ctx)
        (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    if (!loaded || n == 0) {
        fprintf(stderr, "sigflow %s: --curve-allow %s: %s\n", cmd, c->allow,
                loaded        ? "no *.pub key there: nobody could join"
                : !ctx        ? zmq_strerror(e)
                : e == EINVAL ? "a key file there is not a Z85 public key"
                : e == E2BIG  ? "too many keys"
                              : strerror(e));
        return 1;
    }
    if (sf_bus_security_ephemeral(sec, secret) != 0) {
        fprintf(stderr, "sigflow %s: cannot make a key pair: %s\n", cmd, zmq_strerror(errno));
        return 1;
    }
    *secure = true;
    return 0;
}
