/* tests/test_curve.c — CurveZMQ: key files from `sigflow keygen`, and a CURVE server with
 * the ZAP handler that admits only authorised keys, over real TCP. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_child.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <zmq.h>

#include "bus.h"
#include "curve.h"
#include "lockstep.h"
#include "record.h"

#define SINGLE SIGFLOW_ASSETS "/scenarios/single.json"
#define EPH    "tcp://127.0.0.1:*"

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

CHILD_SUITE(curve);

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
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
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
    (void)sf_bus_ctx_term(cctx, SF_BUS_CTX_TERM_MS);
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(pub);
    sf_curve_auth_destroy(&a);
    cr_assert_null(a);
    (void)sf_bus_ctx_term(sctx, SF_BUS_CTX_TERM_MS);
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
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
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

/* ---- participants on a secured bus -------------------------------------------------- */

/* A key directory with pairs "bus" (the server), "good" (authorised), "other" (also
 * authorised) and "stranger" (not), and an allow directory holding good.pub and
 * other.pub. */
typedef struct {
    char keys[256], allow[256];
    char bus_key[320], bus_pub[320], good_key[320], other_key[320], stranger_key[320];
    char bus_secret[41];
} keyset_t;

static void keyset_make(keyset_t *k, const char *tag)
{
    char t[64];
    snprintf(t, sizeof t, "%s_keys", tag);
    make_dir(k->keys, sizeof k->keys, t);
    snprintf(t, sizeof t, "%s_allow", tag);
    make_dir(k->allow, sizeof k->allow, t);
    const char *names[] = {"bus", "good", "other", "stranger"};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sf_curve_keygen(k->keys, names[i]), 0, "keygen %s: %s", names[i],
                     strerror(errno));
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cp '%s/good.pub' '%s/other.pub' '%s/'", k->keys, k->keys, k->allow);
    cr_assert_eq(system(cmd), 0);
    snprintf(k->bus_key, sizeof k->bus_key, "%s/bus.key", k->keys);
    snprintf(k->bus_pub, sizeof k->bus_pub, "%s/bus.pub", k->keys);
    snprintf(k->good_key, sizeof k->good_key, "%s/good.key", k->keys);
    snprintf(k->other_key, sizeof k->other_key, "%s/other.key", k->keys);
    snprintf(k->stranger_key, sizeof k->stranger_key, "%s/stranger.key", k->keys);
    cr_assert_eq(sf_curve_read_key(k->bus_key, k->bus_secret), 0);
}

static void keyset_remove(const keyset_t *k)
{
    remove_dir(k->keys);
    remove_dir(k->allow);
}

static void load_sec(sf_bus_security_t *sec, const char *key, const char *server)
{
    char why[512];
    cr_assert_eq(sf_bus_security_load(sec, key, server, why, sizeof why), 0, "%s", why);
}

typedef struct {
    void *ctx;
    const char *pe, *se;
    const sf_bus_security_t *sec; /* NULL: a plain participant */
    const char *name;
    int lockstep;
    int rc, err;      /* of registration (lockstep: of the whole step loop) */
    uint64_t steps;   /* steps handled */
    atomic_bool done; /* the thread has finished */
} part_t;

/* Every step, publish this step's lamps: data the clock must receive before Done(k). */
static int part_step(void *arg, const Sfbus__Step *step, void *pub)
{
    part_t *a = arg;
    uint8_t codes[2] = {0x10, 0x30}; /* GB/T 20999 lamp codes */
    uint32_t rem[2] = {0, 0};
    Sfbus__LampStates ls = SFBUS__LAMP_STATES__INIT;
    ls.k = step->k;
    ls.ix = 0;
    ls.lamps.data = codes;
    ls.lamps.len = 2;
    ls.n_remaining_ds = 2;
    ls.remaining_ds = rem;
    a->steps++;
    return sf_bus_send(pub, &ls.base);
}

static void *part_main(void *arg)
{
    part_t *a = arg;
    sf_participant_config_t pc = {.name = a->name,
                                  .role = a->lockstep ? SFBUS__ROLE__ROLE_UNITS
                                                      : SFBUS__ROLE__ROLE_VIEW,
                                  .lockstep = a->lockstep,
                                  .security = a->sec};
    sf_participant_t *p = sf_participant_new(a->ctx, a->pe, a->se, &pc);
    a->rc = p ? sf_participant_register(p, a->lockstep ? 30.0 : 2.0, NULL, NULL) : -1;
    a->err = a->rc ? errno : 0;
    int r = 1;
    while (a->rc == 0 && a->lockstep && r == 1)
        r = sf_participant_step(p, 30.0, NULL, part_step, a);
    if (a->rc == 0 && a->lockstep && r != 0) {
        a->rc = -1;
        a->err = errno;
    }
    sf_participant_destroy(&p);
    atomic_store(&a->done, true);
    return NULL;
}

typedef struct {
    uint64_t lamps; /* LampStates the clock received */
} clk_seen_t;

static int clk_on_msg(void *arg, const sf_bus_rx_t *rx)
{
    clk_seen_t *c = arg;
    if (rx->type == SF_BUS_LAMPS)
        c->lamps++;
    return 0;
}

typedef struct {
    uint64_t msgs, steps, hello_good, hello_stranger, hello_plain;
} sniffed_t;

static void sniff(void *sub, sniffed_t *n)
{
    sf_bus_rx_t rx;
    while (sf_bus_recv(sub, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
        n->msgs++;
        if (rx.type == SF_BUS_STEP)
            n->steps++;
        if (rx.type == SF_BUS_HELLO) {
            const char *nm = ((const Sfbus__Hello *)(void *)rx.msg)->name;
            n->hello_good += strcmp(nm, "good") == 0;
            n->hello_stranger += strcmp(nm, "stranger") == 0;
            n->hello_plain += strcmp(nm, "plain") == 0;
        }
        sf_bus_rx_clear(&rx);
    }
}

/* The lockstep clock and a participant with an authorised key register and step through
 * a secured forwarder over TCP, their data reaching each other; a participant with an
 * unknown key and a plain one are never welcomed, and nothing they send reaches anyone. */
Test(curve, lockstep_on_a_secured_forwarder, .timeout = 120)
{
    keyset_t k;
    keyset_make(&k, "lockstep");
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *auth = sf_curve_auth_new(ctx, k.allow);
    cr_assert_not_null(auth, "%s", strerror(errno));
    cr_assert_eq(sf_curve_auth_keys(auth), 2);
    sf_bus_security_t clk_sec, good, stranger;
    cr_assert_eq(sf_bus_security_ephemeral(&clk_sec, k.bus_secret), 0);
    cr_assert_str_neq(clk_sec.public_key, clk_sec.server_key);
    cr_assert_eq(sf_curve_auth_allow(auth, clk_sec.public_key), 0);
    cr_assert_eq(sf_curve_auth_keys(auth), 3);
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new_curve(ctx, EPH, EPH, 0, k.bus_secret);
    cr_assert_not_null(fw, "%s", strerror(errno));
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    load_sec(&good, k.good_key, k.bus_pub);
    load_sec(&stranger, k.stranger_key, k.bus_pub);

    const char *expected[] = {"good"}, *clk_topics[] = {"lamps"};
    sf_clock_config_t cc = {.name = "sim",
                            .scenario = "curve",
                            .step_ds = 1,
                            .n_expected = 1,
                            .expected = expected,
                            .register_timeout_s = 30,
                            .step_timeout_s = 30,
                            .topics = clk_topics,
                            .n_topics = 1,
                            .security = &clk_sec};
    sf_clock_t *clk = sf_clock_new(ctx, pe, se, &cc);
    cr_assert_not_null(clk);

    void *pctx = zmq_ctx_new(); /* the participants' side, as another process would be */
    const char *all[] = {""};
    void *sniffer = sf_bus_sub_new_secure(pctx, se, all, 1, 100000, &good);
    cr_assert_not_null(sniffer);
    static part_t pg, ps, pp;
    pg = (part_t){.ctx = pctx, .pe = pe, .se = se, .sec = &good, .name = "good", .lockstep = 1};
    ps = (part_t){.ctx = pctx, .pe = pe, .se = se, .sec = &stranger, .name = "stranger"};
    pp = (part_t){.ctx = pctx, .pe = pe, .se = se, .sec = NULL, .name = "plain"};
    pthread_t tg, ts, tp;
    cr_assert_eq(pthread_create(&tg, NULL, part_main, &pg), 0);
    clk_seen_t seen = {0};
    cr_assert_eq(sf_clock_register(clk, clk_on_msg, &seen), 0, "%s", sf_clock_error(clk));

    /* Step until the sniffer (authorised) sees steps: it is connected from then on. */
    sniffed_t n = {0};
    for (int i = 0; i < 20000 && n.steps == 0; i++) {
        cr_assert_eq(sf_clock_step(clk, clk_on_msg, &seen), 0, "%s", sf_clock_error(clk));
        sniff(sniffer, &n);
    }
    cr_assert_gt(n.steps, 0, "the authorised sniffer received no step");

    /* Now the unknown key and the plain participant try to join (Hello every 100 ms for
     * 2 s) while the clock serves the bus. */
    cr_assert_eq(pthread_create(&ts, NULL, part_main, &ps), 0);
    cr_assert_eq(pthread_create(&tp, NULL, part_main, &pp), 0);
    while (!atomic_load(&ps.done) || !atomic_load(&pp.done)) {
        cr_assert_eq(sf_clock_poll(clk, 50, clk_on_msg, &seen), 0, "%s", sf_clock_error(clk));
        sniff(sniffer, &n);
    }
    pthread_join(ts, NULL);
    pthread_join(tp, NULL);
    cr_assert_eq(ps.rc, -1, "a participant with an unknown key was welcomed");
    cr_assert_eq(ps.err, SF_BUS_ETIMEOUT, "%s", sf_bus_strerror(ps.err));
    cr_assert_eq(pp.rc, -1, "a plain participant was welcomed");
    cr_assert_eq(pp.err, SF_BUS_ETIMEOUT, "%s", sf_bus_strerror(pp.err));

    for (int i = 0; i < 50; i++)
        cr_assert_eq(sf_clock_step(clk, clk_on_msg, &seen), 0, "%s", sf_clock_error(clk));
    cr_assert_eq(sf_clock_bye(clk, "end of test"), 0);
    pthread_join(tg, NULL);
    cr_assert_eq(pg.rc, 0, "good: %s", sf_bus_strerror(pg.err));

    sf_clock_stats_t st = sf_clock_stats(clk);
    cr_assert_eq(pg.steps, st.steps, "the participant handled every step");
    cr_assert_eq((uint64_t)sf_clock_done_count(clk, "good"), st.steps);
    cr_assert_eq(seen.lamps, st.steps, "every step's lamps reached the clock");
    cr_assert_eq(st.refused + st.unknown, 0, "nothing of the refused peers reached the clock");
    /* Let the last messages arrive, then count what the sniffer saw. */
    zmq_pollitem_t it = {sniffer, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&it, 1, 300) > 0)
        sniff(sniffer, &n);
    cr_assert_eq(n.hello_stranger, 0, "a Hello from the unknown key reached a subscriber");
    cr_assert_eq(n.hello_plain, 0, "a Hello from the plain peer reached a subscriber");
    unsigned long ok = 0, refused = 0;
    sf_curve_auth_counts(auth, &ok, &refused);
    cr_assert_geq(ok, 5, "clock (2), good (2) and sniffer (1) admitted: %lu", ok);
    cr_assert_geq(refused, 1, "the unknown key was refused by the ZAP handler");

    sf_bus_close(&sniffer);
    (void)sf_bus_ctx_term(pctx, SF_BUS_CTX_TERM_MS);
    sf_clock_destroy(&clk);
    sf_bus_forwarder_destroy(&fw);
    sf_curve_auth_destroy(&auth);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    keyset_remove(&k);
}

/* Library errors: a public key where the secret belongs, a pair that is not one, a
 * missing file; sec is untouched. */
Test(curve, security_load_refuses_bad_key_files)
{
    keyset_t k;
    keyset_make(&k, "load");
    sf_bus_security_t sec;
    memset(&sec, 0x5a, sizeof sec);
    sf_bus_security_t before = sec;
    char why[512];
    cr_assert_eq(sf_bus_security_load(&sec, k.bus_pub, k.bus_pub, why, sizeof why), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert(strstr(why, "is a public key file"), "%s", why);
    char mixed[400], cmd[900];
    snprintf(mixed, sizeof mixed, "%s/good.pub", k.keys);
    snprintf(cmd, sizeof cmd, "cp '%s/other.pub' '%s'", k.keys, mixed);
    cr_assert_eq(system(cmd), 0); /* good.key now sits beside another pair's public key */
    cr_assert_eq(sf_bus_security_load(&sec, k.good_key, k.bus_pub, why, sizeof why), -1);
    cr_assert(strstr(why, "does not belong to the public key beside it"), "%s", why);
    cr_assert_eq(sf_bus_security_load(&sec, "/nonexistent.key", k.bus_pub, why, sizeof why), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert(strstr(why, "/nonexistent.key"), "%s", why);
    cr_assert_eq(
        sf_bus_security_load(&sec, k.other_key, SIGFLOW_TESTDATA "/minimal.json", why, sizeof why),
        -1);
    cr_assert(strstr(why, "minimal.json: not a CurveZMQ key file"), "%s", why);
    cr_assert_eq(memcmp(&sec, &before, sizeof sec), 0, "sec unchanged on failure");
    cr_assert_eq(sf_bus_security_load(&sec, k.other_key, k.bus_pub, why, sizeof why), 0, "%s", why);
    char pub[41], derived[41];
    snprintf(mixed, sizeof mixed, "%s/other.pub", k.keys);
    cr_assert_eq(sf_curve_read_key(mixed, pub), 0);
    cr_assert_str_eq(sec.public_key, pub, "public key derived from the secret one");
    cr_assert_eq(zmq_curve_public(derived, k.bus_secret), 0);
    cr_assert_str_eq(sec.server_key, derived);
    keyset_remove(&k);
}

/* ---- whole programs on a secured bus ------------------------------------------------ */

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "%s: %s", path, e.text);
    return j;
}

/* Count the records of a recording by topic. */
static void count_recording(const char *path, uint64_t *total, uint64_t *steps, uint64_t *byes)
{
    *total = *steps = *byes = 0;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    sf_rec_reader_t *r = sf_rec_reader_new(f);
    cr_assert_not_null(r, "%s", path);
    sf_rec_t rec;
    while (sf_rec_next(r, &rec) == 1) {
        (*total)++;
        *steps += rec.topic_len == 4 && memcmp(rec.topic, "step", 4) == 0;
        *byes += rec.topic_len == 3 && memcmp(rec.topic, "bye", 3) == 0;
    }
    sf_rec_reader_destroy(&r);
    fclose(f);
}

/* Every part of the system as its own process on a secured `sigflow bus`, each with its
 * own key: the simulator's results are those of a plain one-process `sigflow run` of the
 * same seed (encryption changes nothing); an authorised recorder records the run to its
 * end, one with an unknown key records nothing and is counted refused. */
Test(curve, split_system_on_a_secured_bus, .timeout = 300)
{
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "60" : "180";
    keyset_t k;
    keyset_make(&k, "split");
    const char *names[] = {"sim", "units", "controller", "recorder"};
    char key[4][400], cmd[900];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(sf_curve_keygen(k.keys, names[i]), 0);
        snprintf(key[i], sizeof key[i], "%s/%s.key", k.keys, names[i]);
        snprintf(cmd, sizeof cmd, "cp '%s/%s.pub' '%s/'", k.keys, names[i], k.allow);
        cr_assert_eq(system(cmd), 0);
    }
    char rep_split[400], rep_one[400], rec_good[400], rec_bad[400];
    snprintf(rep_split, sizeof rep_split, "%s/split.json", k.keys);
    snprintf(rep_one, sizeof rep_one, "%s/one.json", k.keys);
    snprintf(rec_good, sizeof rec_good, "%s/good.rec", k.keys);
    snprintf(rec_bad, sizeof rec_bad, "%s/bad.rec", k.keys);

    static child_t bus, sim, units, ctl, rg, rb, one;
    char *bus_argv[] = {"sigflow",     "bus",     "--pub",         EPH,     "--sub", EPH,
                        "--curve-key", k.bus_key, "--curve-allow", k.allow, NULL};
    cr_assert_eq(child_start(&bus, bus_argv), 0);
    double end = child_now() + 30;
    while (!strchr(bus.out, '\n') && child_now() < end && child_pump(&bus, 100))
        ;
    char pub[128], sub[128], eps[260];
    cr_assert_eq(sscanf(bus.out, "ready pub=%127s sub=%127s", pub, sub), 2, "bus: %s %s", bus.out,
                 bus.err);
    snprintf(eps, sizeof eps, "%s,%s", pub, sub);

    char *rg_argv[] = {"sigflow",     "record", "--bus",
                       sub,           "--out",  rec_good,
                       "--curve-key", key[3],   "--curve-server-key",
                       k.bus_pub,     NULL};
    char *rb_argv[] = {"sigflow",
                       "record",
                       "--bus",
                       sub,
                       "--out",
                       rec_bad,
                       "--curve-key",
                       k.stranger_key,
                       "--curve-server-key",
                       k.bus_pub,
                       NULL};
    cr_assert_eq(child_start(&rg, rg_argv), 0);
    cr_assert_eq(child_start(&rb, rb_argv), 0);
    cr_assert(child_wait_err(&rg, "ready record", 30), "recorder: %s", rg.err);
    cr_assert(child_wait_err(&rb, "ready record", 30), "recorder: %s", rb.err);

    char *sim_argv[] = {"sigflow",
                        "sim",
                        SINGLE,
                        "--bus",
                        eps,
                        "--expect",
                        "units",
                        "--expect",
                        "controller",
                        "--duration",
                        (char *)dur,
                        "--seed",
                        "11",
                        "--report",
                        rep_split,
                        "--set",
                        "run.warmup_s=0",
                        "--curve-key",
                        key[0],
                        "--curve-server-key",
                        k.bus_pub,
                        NULL};
    cr_assert_eq(child_start(&sim, sim_argv), 0);
    cr_assert(child_wait_err(&sim, "waiting for the participants", 30), "sim: %s", sim.err);
    char *unit_argv[] = {"sigflow", "unit",        SINGLE, "--base-port",        "0",       "--bus",
                         eps,       "--curve-key", key[1], "--curve-server-key", k.bus_pub, NULL};
    cr_assert_eq(child_start(&units, unit_argv), 0);
    end = child_now() + 30;
    while (!strstr(units.out, "ready ") && child_now() < end && child_pump(&units, 100))
        ;
    char id[16], addr[64], unit_arg[96];
    cr_assert_eq(sscanf(strstr(units.out, "ready "), "ready %15s %63s", id, addr), 2, "units: %s",
                 units.out);
    snprintf(unit_arg, sizeof unit_arg, "%s=%s", id, addr);
    char *ctl_argv[] = {
        "sigflow", "controller", SINGLE,   "--bus",       eps,    "--round-timeout-ms",
        "5000",    "--unit",     unit_arg, "--curve-key", key[2], "--curve-server-key",
        k.bus_pub, NULL};
    cr_assert_eq(child_start(&ctl, ctl_argv), 0);

    int sim_rc = child_finish(&sim, 240);
    cr_assert_eq(sim_rc, 0, "sim exit %d: %s", sim_rc, sim.err);
    cr_assert_eq(child_finish(&units, 60), 0, "units: %s", units.err);
    cr_assert_eq(child_finish(&ctl, 60), 0, "controller: %s", ctl.err);
    /* The recorders have what they will get once the run's last message (Bye) is in. */
    uint64_t total = 0, steps = 0, byes = 0;
    end = child_now() + 30;
    while (child_now() < end) {
        child_pump(&rg, 100);
        count_recording(rec_good, &total, &steps, &byes);
        if (byes > 0)
            break;
    }
    kill(rg.pid, SIGTERM);
    kill(rb.pid, SIGTERM);
    cr_assert_eq(child_finish(&rg, 30), 0, "recorder: %s", rg.err);
    cr_assert_eq(child_finish(&rb, 30), 0, "recorder: %s", rb.err);
    kill(bus.pid, SIGTERM);
    cr_assert_eq(child_finish(&bus, 30), 0, "bus: %s", bus.err);

    count_recording(rec_good, &total, &steps, &byes);
    cr_assert_geq(byes, 1, "the authorised recorder has the run's end: %s", rg.err);
    cr_assert_gt(steps, 0);
    uint64_t bt, bs, bb;
    count_recording(rec_bad, &bt, &bs, &bb);
    cr_assert_eq(bt, 0, "the recorder with an unknown key recorded %llu messages",
                 (unsigned long long)bt);
    cr_assert(strstr(rb.err, "0 messages recorded"), "%s", rb.err);
    unsigned long adm = 0, ref = 0;
    const char *line = strstr(bus.err, "curve: ");
    cr_assert_not_null(line, "%s", bus.err);
    cr_assert_eq(sscanf(line, "curve: %lu clients admitted, %lu refused", &adm, &ref), 2);
    cr_assert_geq(adm, 7, "sim, units, controller (two sockets each) and the recorder: %lu", adm);
    cr_assert_geq(ref, 1, "the unknown key was refused: %s", bus.err);

    char *one_argv[] = {"sigflow", "run", SINGLE,     "--headless", "--duration", (char *)dur,
                        "--seed",  "11",  "--report", rep_one,      "--set",      "run.warmup_s=0",
                        NULL};
    int one_rc = child_run(&one, one_argv, 240);
    cr_assert_eq(one_rc, 0, "sigflow run exit %d: %s", one_rc, one.err);
    json_t *split = load_json(rep_split), *whole = load_json(rep_one);
    const char *same[] = {"scenario", "seed",    "sim_seconds",   "warmup_s",
                          "step_s",   "network", "intersections", "transit"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        json_t *a = json_object_get(split, same[i]), *b = json_object_get(whole, same[i]);
        cr_assert_not_null(a, "split report: no %s", same[i]);
        char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
        cr_expect(json_equal(a, b), "%s differs:\nsecured split %.600s\nplain run     %.600s",
                  same[i], sa, sb);
        free(sa);
        free(sb);
    }
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(split, "perf"), "bus_security")),
        "curve");
    json_decref(split);
    json_decref(whole);
    keyset_remove(&k);
}

/* `sigflow run --curve-key --curve-allow`: its own threads join the secured forwarder
 * (admitted by the ZAP handler, over TCP) and the report is byte for byte the plain run's
 * outside perf; a recorder with an unknown key gets nothing from it. */
Test(curve, secured_run_gives_the_plain_report, .timeout = 300)
{
    const char *dur = getenv("SIGFLOW_SANITIZED") ? "60" : "180";
    keyset_t k;
    keyset_make(&k, "run");
    char rep_plain[400], rep_sec[400], rec_bad[400];
    snprintf(rep_plain, sizeof rep_plain, "%s/plain.json", k.keys);
    snprintf(rep_sec, sizeof rep_sec, "%s/secured.json", k.keys);
    snprintf(rec_bad, sizeof rec_bad, "%s/bad.rec", k.keys);
    static child_t plain, sec, rb;
    char *plain_argv[] = {"sigflow",   "run",     SINGLE, "--headless", "--duration",
                          (char *)dur, "--seed",  "5",    "--set",      "run.warmup_s=0",
                          "--report",  rep_plain, NULL};
    cr_assert_eq(child_run(&plain, plain_argv, 240), 0, "%s", plain.err);
    char *sec_argv[] = {"sigflow",   "run",    SINGLE,        "--headless", "--duration",
                        (char *)dur, "--seed", "5",           "--set",      "run.warmup_s=0",
                        "--report",  rep_sec,  "--curve-key", k.bus_key,    "--curve-allow",
                        k.allow,     NULL};
    cr_assert_eq(child_start(&sec, sec_argv), 0);
    cr_assert(child_wait_err(&sec, "sigflow run: bus ", 30), "%s", sec.err);
    char pe[128], se[128];
    cr_assert_eq(
        sscanf(strstr(sec.err, "sigflow run: bus "), "sigflow run: bus %127s %127s", pe, se), 2);
    char *rb_argv[] = {"sigflow",
                       "record",
                       "--bus",
                       se,
                       "--out",
                       rec_bad,
                       "--curve-key",
                       k.stranger_key,
                       "--curve-server-key",
                       k.bus_pub,
                       NULL};
    cr_assert_eq(child_start(&rb, rb_argv), 0);
    cr_assert(child_wait_err(&rb, "ready record", 30), "recorder: %s", rb.err);
    cr_assert_eq(child_finish(&sec, 240), 0, "%s", sec.err);
    kill(rb.pid, SIGTERM);
    cr_assert_eq(child_finish(&rb, 30), 0, "recorder: %s", rb.err);
    cr_assert(strstr(rb.err, "0 messages recorded"), "%s", rb.err);

    json_t *a = load_json(rep_plain), *b = load_json(rep_sec);
    json_t *perf = json_object_get(b, "perf");
    cr_assert_str_eq(json_string_value(json_object_get(perf, "bus_security")), "curve");
    json_t *cc = json_object_get(perf, "curve_clients");
    cr_assert_geq(json_integer_value(json_object_get(cc, "admitted")), 6,
                  "clock, units and controller joined over CURVE");
    json_object_del(a, "perf");
    json_object_del(b, "perf");
    char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
    cr_assert_str_eq(sa, sb, "the secured run's report differs from the plain one");
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
    keyset_remove(&k);
}

/* `sigflow view` joins a secured bus with its key: it draws what the bus carries until
 * sim time 3 s (screenshot, then exits); with an unknown key it receives nothing. */
Test(curve, view_joins_a_secured_bus, .timeout = 120)
{
    setenv("SDL_VIDEODRIVER", "dummy", 1);
    keyset_t k;
    keyset_make(&k, "view");
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *auth = sf_curve_auth_new(ctx, k.allow);
    cr_assert_not_null(auth);
    sf_bus_forwarder_t *fw = sf_bus_forwarder_new_curve(ctx, EPH, EPH, 0, k.bus_secret);
    cr_assert_not_null(fw);
    const char *pe = sf_bus_forwarder_pub_endpoint(fw), *se = sf_bus_forwarder_sub_endpoint(fw);
    sf_bus_security_t other;
    load_sec(&other, k.other_key, k.bus_pub);
    void *pub = sf_bus_pub_new_secure(ctx, pe, &other);
    cr_assert_not_null(pub);
    char png[400];
    snprintf(png, sizeof png, "%s/view.png", k.keys);
    static child_t good, bad;
    char *good_argv[] = {"sigflow",
                         "view",
                         SINGLE,
                         "--bus",
                         (char *)se,
                         "--no-commands",
                         "--software",
                         "--screenshot",
                         png,
                         "--at",
                         "3",
                         "--exit",
                         "--wall",
                         "90",
                         "--curve-key",
                         k.good_key,
                         "--curve-server-key",
                         k.bus_pub,
                         NULL};
    char *bad_argv[] = {
        "sigflow",    "view",   SINGLE, "--bus",       (char *)se,     "--no-commands",
        "--software", "--wall", "4",    "--curve-key", k.stranger_key, "--curve-server-key",
        k.bus_pub,    NULL};
    cr_assert_eq(child_start(&good, good_argv), 0);
    cr_assert_eq(child_start(&bad, bad_argv), 0);
    bool good_done = false, bad_done = false;
    int good_rc = -1, bad_rc = -1;
    for (uint64_t kk = 0; kk < 100000 && !(good_done && bad_done); kk++) {
        Sfbus__Step step = SFBUS__STEP__INIT;
        step.k = kk;
        step.t_ds = kk;
        step.step_ds = 1;
        cr_assert_eq(sf_bus_send(pub, &step.base), 0);
        /* about 100 steps a second of wall time, while reading the viewers' output */
        child_pump(&good, 5);
        child_pump(&bad, 5);
        if (!good_done && good.out_fd < 0 && good.err_fd < 0) {
            good_rc = child_finish(&good, 10);
            good_done = true;
        }
        if (!bad_done && bad.out_fd < 0 && bad.err_fd < 0) {
            bad_rc = child_finish(&bad, 10);
            bad_done = true;
        }
    }
    cr_assert(good_done && bad_done);
    cr_assert_eq(good_rc, 0, "view: %s %s", good.out, good.err);
    cr_assert(strstr(good.out, "screenshot"), "the viewer reached sim time 3 s: %s", good.out);
    unsigned long frames = 0, msgs = 0;
    const char *v = strstr(good.out, "view: ");
    cr_assert_not_null(v, "%s", good.out);
    cr_assert_eq(sscanf(v, "view: %lu frames (%*[^)]), %lu messages", &frames, &msgs), 2, "%s", v);
    cr_assert_gt(msgs, 0);
    cr_assert_eq(bad_rc, 0, "view: %s %s", bad.out, bad.err);
    v = strstr(bad.out, "view: ");
    cr_assert_not_null(v, "%s", bad.out);
    cr_assert_eq(sscanf(v, "view: %lu frames (%*[^)]), %lu messages", &frames, &msgs), 2, "%s", v);
    cr_assert_eq(msgs, 0, "the viewer with an unknown key received %lu messages", msgs);
    unsigned long ok = 0, refused = 0;
    sf_curve_auth_counts(auth, &ok, &refused);
    cr_assert_geq(refused, 1);
    sf_bus_close(&pub);
    sf_bus_forwarder_destroy(&fw);
    sf_curve_auth_destroy(&auth);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    keyset_remove(&k);
}

/* Bad or missing keys and wrong combinations are refused with a precise message before
 * anything starts (record creates no file). */
Test(curve, cli_key_options_refused_precisely, .timeout = 60)
{
    keyset_t k;
    keyset_make(&k, "cli");
    char out[400], empty[400];
    snprintf(out, sizeof out, "%s/never.rec", k.keys);
    snprintf(empty, sizeof empty, "%s/empty", k.keys);
    cr_assert_eq(mkdir(empty, 0700), 0);
    const char *bus = "tcp://127.0.0.1:1";
    struct {
        int rc;
        const char *want;
        const char *argv[16];
    } cases[] = {
        {2,
         "--curve-key and --curve-server-key go together",
         {"record", "--bus", bus, "--out", out, "--curve-key", k.good_key}},
        {1,
         "--curve-key /nonexistent.key: No such file",
         {"record", "--bus", bus, "--out", out, "--curve-key", "/nonexistent.key",
          "--curve-server-key", k.bus_pub}},
        {1,
         "is a public key file",
         {"record", "--bus", bus, "--out", out, "--curve-key", k.bus_pub, "--curve-server-key",
          k.bus_pub}},
        {1,
         "--curve-server-key " SINGLE ": not a CurveZMQ key file",
         {"sim", SINGLE, "--curve-key", k.good_key, "--curve-server-key", SINGLE}},
        {2,
         "--curve-allow is for a serving side",
         {"view", SINGLE, "--curve-key", k.good_key, "--curve-allow", k.allow}},
        {2, "--curve-key and --curve-allow go together", {"run", SINGLE, "--curve-key", k.bus_key}},
        {2,
         "--curve-server-key is for joining a bus",
         {"run", SINGLE, "--curve-key", k.bus_key, "--curve-server-key", k.bus_pub}},
        {1,
         "no *.pub key there: nobody could join",
         {"run", SINGLE, "--curve-key", k.bus_key, "--curve-allow", empty}},
        {1,
         "no *.pub key there: nobody could join",
         {"bus", "--pub", EPH, "--sub", EPH, "--curve-key", k.bus_key, "--curve-allow", empty}},
        {2, "--curve-* options need --bus", {"unit", SINGLE, "--curve-key", k.good_key}},
        {2, "--curve-key needs a value", {"controller", SINGLE, "--curve-key"}},
        {2,
         "--curve-key and --curve-allow go together",
         {"replay", out, "--pub", EPH, "--curve-key", k.bus_key}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[18] = {"sigflow"};
        for (int j = 0; cases[i].argv[j]; j++)
            argv[j + 1] = (char *)cases[i].argv[j];
        child_t c;
        int rc = child_run(&c, argv, 30);
        cr_expect_eq(rc, cases[i].rc, "case %zu (%s): exit %d: %s", i, argv[1], rc, c.err);
        cr_expect(strstr(c.err, cases[i].want), "case %zu (%s): said '%s', not '%s'", i, argv[1],
                  c.err, cases[i].want);
    }
    struct stat sb;
    cr_assert_neq(stat(out, &sb), 0, "record created its file although its keys were refused");
    /* A single authorised key file is accepted as the allow-list. */
    char one[400];
    snprintf(one, sizeof one, "%s/good.pub", k.keys);
    void *ctx = zmq_ctx_new();
    sf_curve_auth_t *a = sf_curve_auth_new(ctx, one);
    cr_assert_not_null(a);
    cr_assert_eq(sf_curve_auth_keys(a), 1);
    sf_curve_auth_destroy(&a);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    keyset_remove(&k);
}

/* `sigflow replay --pub` serves viewers as a CURVE server: an authorised subscriber gets
 * every recorded message in order, one with an unknown key gets none and the replay waits
 * for it in vain (--wait counts admitted subscribers only). */
Test(curve, replay_serves_only_authorised_subscribers, .timeout = 120)
{
    keyset_t k;
    keyset_make(&k, "replay");
    char rec[400];
    snprintf(rec, sizeof rec, "%s/steps.rec", k.keys);
    enum { N = 200 };
    sf_rec_writer_t *w = sf_rec_writer_new(rec);
    cr_assert_not_null(w);
    for (uint64_t i = 0; i < N; i++) {
        Sfbus__Step st = SFBUS__STEP__INIT;
        st.k = i;
        st.step_ds = 1;
        st.t_ds = i;
        uint8_t buf[128];
        long n = sf_bus_encode(&st.base, buf, sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq(sf_rec_write(w, i * 1000, "step", 4, buf, (size_t)n), 0);
    }
    cr_assert_eq(sf_rec_writer_destroy(&w), 0);

    static child_t rp;
    char *argv[] = {"sigflow", "replay",      rec,       "--max",         "--pub", EPH, "--wait",
                    "1",       "--curve-key", k.bus_key, "--curve-allow", k.allow, NULL};
    cr_assert_eq(child_start(&rp, argv), 0);
    cr_assert(child_wait_err(&rp, "ready replay pub=", 30), "replay: %s", rp.err);
    char ep[SF_BUS_ENDPOINT_MAX];
    cr_assert_eq(sscanf(strstr(rp.err, "pub="), "pub=%255s", ep), 1);
    void *ctx = zmq_ctx_new();
    sf_bus_security_t good, stranger;
    load_sec(&good, k.good_key, k.bus_pub);
    load_sec(&stranger, k.stranger_key, k.bus_pub);
    const char *all[] = {""};
    /* The stranger first: were it admitted, its subscription would start the replay. */
    void *bad = sf_bus_sub_new_secure(ctx, ep, all, 1, 10000, &stranger);
    void *plain = sf_bus_sub_new(ctx, ep, all, 1, 10000);
    cr_assert(bad && plain);
    zmq_pollitem_t it[2] = {{bad, 0, ZMQ_POLLIN, 0}, {plain, 0, ZMQ_POLLIN, 0}};
    cr_assert_eq(zmq_poll(it, 2, 1500), 0, "a refused subscriber received something");
    child_pump(&rp, 0);
    cr_assert_null(strstr(rp.err, "messages played"), "the replay started for a refused peer");
    void *sub = sf_bus_sub_new_secure(ctx, ep, all, 1, 10000, &good);
    cr_assert_not_null(sub);
    int to = 20000;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &to, sizeof to);
    for (uint64_t i = 0; i < N; i++) {
        sf_bus_rx_t rx;
        char why[128] = "";
        cr_assert_eq(sf_bus_recv(sub, &rx, 0, why, sizeof why), 0, "message %llu: %s %s",
                     (unsigned long long)i, sf_bus_strerror(errno), why);
        cr_assert_eq(rx.type, SF_BUS_STEP);
        cr_assert_eq(((const Sfbus__Step *)(void *)rx.msg)->k, i, "in order");
        sf_bus_rx_clear(&rx);
    }
    cr_assert_eq(child_finish(&rp, 30), 0, "replay: %s", rp.err);
    cr_assert(strstr(rp.err, "200 messages played"), "%s", rp.err);
    cr_assert_eq(zmq_poll(it, 2, 0), 0, "a refused subscriber received something");
    sf_bus_close(&sub);
    sf_bus_close(&bad);
    sf_bus_close(&plain);
    (void)sf_bus_ctx_term(ctx, SF_BUS_CTX_TERM_MS);
    keyset_remove(&k);
}
