/* tests/test_curve.c — CurveZMQ: key files from `sigflow keygen`, and a CURVE server with
 * the ZAP handler that admits only authorised keys, over real TCP. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_child.h"

#include <sys/stat.h>
#include <zmq.h>

#include "curve.h"

static void make_dir(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/sf_test_curve_%d_%s", (int)getpid(), tag);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(mkdir(buf, 0700), 0);
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void keys_of(const char *dir, const char *name, char pub[41], char sec[41])
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.pub", dir, name);
    cr_assert_eq(sf_curve_read_key(p, pub), 0, "%s: %s", p, strerror(errno));
    snprintf(p, sizeof p, "%s/%s.key", dir, name);
    cr_assert_eq(sf_curve_read_key(p, sec), 0, "%s: %s", p, strerror(errno));
}

Test(curve, keygen_cli_writes_a_pair)
{
    cr_assert(zmq_has("curve"), "libzmq built without CURVE");
    char dir[256];
    make_dir(dir, sizeof dir, "keygen");
    child_t c;
    char *argv[] = {"sigflow", "keygen", "--out", dir, "--name", "ctl", NULL};
    cr_assert_eq(child_run(&c, argv, 20), 0, "%s", c.err);
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/ctl.key", dir);
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "secret key mode %o", sb.st_mode & 0777);
    char pub[41], sec[41], derived[41];
    keys_of(dir, "ctl", pub, sec);
    cr_assert_eq(zmq_curve_public(derived, sec), 0);
    cr_assert_str_eq(derived, pub, "the public key belongs to the secret key");
    /* never overwrites; bad names and a missing directory are refused */
    cr_assert_eq(child_run(&c, argv, 20), 1);
    cr_assert(strstr(c.err, "exists"), "%s", c.err);
    char pub2[41], sec2[41];
    keys_of(dir, "ctl", pub2, sec2);
    cr_assert_str_eq(pub2, pub, "the existing pair is untouched");
    cr_assert_str_eq(sec2, sec);
    char *bad[] = {"sigflow", "keygen", "--out", dir, "--name", "../evil", NULL};
    cr_assert_eq(child_run(&c, bad, 20), 2);
    char *nodir[] = {"sigflow", "keygen", "--out", "/nonexistent-dir", NULL};
    cr_assert_eq(child_run(&c, nodir, 20), 1);
    remove_dir(dir);
}

Test(curve, bad_key_files_refused)
{
    char dir[256];
    make_dir(dir, sizeof dir, "badkey");
    char p[512], k[41];
    snprintf(p, sizeof p, "%s/x.pub", dir);
    FILE *f = fopen(p, "w");
    fputs("not a key\n", f);
    fclose(f);
    cr_assert_eq(sf_curve_read_key(p, k), -1);
    cr_assert_eq(errno, EINVAL);
    void *ctx = zmq_ctx_new();
    cr_assert_null(sf_curve_auth_new(ctx, dir), "a bad file in the authorised directory");
    cr_assert_null(sf_curve_auth_new(ctx, "/nonexistent-dir"));
    cr_assert_eq(errno, ENOENT);
    zmq_ctx_term(ctx);
    remove_dir(dir);
}

static void *client(void *ctx, const char *ep, const char *pub, const char *sec,
                    const char *server_pub)
{
    void *s = zmq_socket(ctx, ZMQ_SUB);
    cr_assert_not_null(s);
    if (pub)
        cr_assert_eq(sf_curve_apply_client(s, pub, sec, server_pub), 0);
    cr_assert_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0), 0);
    cr_assert_eq(zmq_connect(s, ep), 0);
    return s;
}

static int pending(void *s)
{
    int n = 0;
    char buf[64];
    while (zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        n++;
    return n;
}

Test(curve, only_authorised_clients_receive, .timeout = 60)
{
    char keys[256], auth[256];
    make_dir(keys, sizeof keys, "keys");
    make_dir(auth, sizeof auth, "auth");
    cr_assert_eq(sf_curve_keygen(keys, "server"), 0);
    cr_assert_eq(sf_curve_keygen(keys, "good"), 0);
    cr_assert_eq(sf_curve_keygen(keys, "stranger"), 0);
    char spub[41], ssec[41], gpub[41], gsec[41], xpub[41], xsec[41];
    keys_of(keys, "server", spub, ssec);
    keys_of(keys, "good", gpub, gsec);
    keys_of(keys, "stranger", xpub, xsec);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cp '%s/good.pub' '%s/'", keys, auth);
    cr_assert_eq(system(cmd), 0);

    void *sctx = zmq_ctx_new();
    sf_curve_auth_t *a = sf_curve_auth_new(sctx, auth);
    cr_assert_not_null(a, "auth: %s", strerror(errno));
    cr_assert_eq(sf_curve_auth_keys(a), 1);
    void *pub = zmq_socket(sctx, ZMQ_PUB);
    cr_assert_eq(sf_curve_apply_server(pub, ssec), 0);
    cr_assert_eq(zmq_bind(pub, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t el = sizeof ep;
    cr_assert_eq(zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, ep, &el), 0);

    void *cctx = zmq_ctx_new();
    void *good = client(cctx, ep, gpub, gsec, spub);
    void *stranger = client(cctx, ep, xpub, xsec, spub);
    void *plain = client(cctx, ep, NULL, NULL, NULL);

    /* Publish until the authorised client has 20 messages and the stranger's handshake has
     * been refused by the ZAP handler; then nobody else may have anything. */
    int got = 0;
    unsigned long ok = 0, refused = 0;
    double end = child_now() + 30;
    while ((got < 20 || refused < 1) && child_now() < end) {
        zmq_send(pub, "secret", 6, 0);
        zmq_pollitem_t it = {good, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 20) > 0)
            got += pending(good);
        sf_curve_auth_counts(a, &ok, &refused);
    }
    cr_assert_geq(got, 20, "the authorised client received %d", got);
    cr_assert_geq(ok, 1);
    cr_assert_geq(refused, 1, "the stranger's key reached the ZAP handler and was refused");
    for (int i = 0; i < 20; i++)
        zmq_send(pub, "secret", 6, 0);
    zmq_pollitem_t it = {good, 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&it, 1, 5000), 1);
    cr_assert_eq(pending(stranger), 0, "an unknown key received data");
    cr_assert_eq(pending(plain), 0, "a plain client received data");

    int linger = 0;
    void *socks[] = {good, stranger, plain};
    for (int i = 0; i < 3; i++) {
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(socks[i]);
    }
    zmq_ctx_term(cctx);
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(pub);
    sf_curve_auth_destroy(&a);
    cr_assert_null(a);
    zmq_ctx_term(sctx);
    remove_dir(keys);
    remove_dir(auth);
}

/* `sigflow bus --curve-secret --authorized`: an authorised publisher and subscriber talk
 * through the forwarder; a subscriber with an unknown key and a plain one get nothing. */
Test(curve, bus_forwarder_refuses_unauthenticated, .timeout = 90)
{
    char keys[256], auth[256];
    make_dir(keys, sizeof keys, "fkeys");
    make_dir(auth, sizeof auth, "fauth");
    cr_assert_eq(sf_curve_keygen(keys, "bus"), 0);
    cr_assert_eq(sf_curve_keygen(keys, "good"), 0);
    cr_assert_eq(sf_curve_keygen(keys, "stranger"), 0);
    char spub[41], ssec[41], gpub[41], gsec[41], xpub[41], xsec[41];
    keys_of(keys, "bus", spub, ssec);
    keys_of(keys, "good", gpub, gsec);
    keys_of(keys, "stranger", xpub, xsec);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cp '%s/good.pub' '%s/'", keys, auth);
    cr_assert_eq(system(cmd), 0);
    char secret_file[300];
    snprintf(secret_file, sizeof secret_file, "%s/bus.key", keys);

    child_t c;
    char *argv[] = {"sigflow",
                    "bus",
                    "--pub",
                    "tcp://127.0.0.1:*",
                    "--sub",
                    "tcp://127.0.0.1:*",
                    "--curve-secret",
                    secret_file,
                    "--authorized",
                    auth,
                    NULL};
    cr_assert_eq(child_start(&c, argv), 0);
    double end = child_now() + 20;
    while (!strstr(c.out, "\n") && child_now() < end && child_pump(&c, 100))
        ;
    char pub_ep[128], sub_ep[128];
    cr_assert_eq(sscanf(c.out, "ready pub=%127s sub=%127s", pub_ep, sub_ep), 2, "bus: %s %s", c.out,
                 c.err);

    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    cr_assert_eq(sf_curve_apply_client(pub, gpub, gsec, spub), 0);
    cr_assert_eq(zmq_connect(pub, pub_ep), 0);
    void *good = client(ctx, sub_ep, gpub, gsec, spub);
    void *stranger = client(ctx, sub_ep, xpub, xsec, spub);
    void *plain = client(ctx, sub_ep, NULL, NULL, NULL);
    int got = 0;
    end = child_now() + 30;
    while (got < 20 && child_now() < end) {
        zmq_send(pub, "secret", 6, 0);
        zmq_pollitem_t it = {good, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 20) > 0)
            got += pending(good);
        child_pump(&c, 0);
    }
    cr_assert_geq(got, 20, "the authorised subscriber received %d", got);
    cr_assert_eq(pending(stranger), 0, "an unknown key received data");
    cr_assert_eq(pending(plain), 0, "a plain client received data");

    int linger = 0;
    void *socks[] = {pub, good, stranger, plain};
    for (int i = 0; i < 4; i++) {
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(socks[i]);
    }
    zmq_ctx_term(ctx);
    kill(c.pid, SIGTERM);
    cr_assert_eq(child_finish(&c, 20), 0, "bus: %s", c.err);
    unsigned long adm = 0, ref = 0;
    const char *line = strstr(c.err, "curve: ");
    cr_assert_not_null(line, "%s", c.err);
    cr_assert_eq(sscanf(line, "curve: %lu clients admitted, %lu refused", &adm, &ref), 2);
    cr_assert_geq(adm, 2, "publisher and subscriber admitted");
    cr_assert_geq(ref, 1, "the unknown key was refused: %s", c.err);

    /* Usage: the two options go together; a bad secret file is refused. */
    char *half[] = {"sigflow", "bus", "--curve-secret", secret_file, NULL};
    cr_assert_eq(child_run(&c, half, 20), 2);
    char *badkey[] = {
        "sigflow", "bus", "--curve-secret", SIGFLOW_TESTDATA "/minimal.json", "--authorized",
        auth,      NULL};
    cr_assert_eq(child_run(&c, badkey, 20), 1);
    cr_assert(strstr(c.err, "not a Z85 key"), "%s", c.err);
    remove_dir(keys);
    remove_dir(auth);
}
