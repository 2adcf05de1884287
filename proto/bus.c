/* proto/bus.c — the bus forwarder and publish/subscribe helpers (see bus.h). */
#include "bus.h"
#include "curve.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sf_bus_forwarder_t {
    void *ctx;                        /* libzmq context */
    int own_ctx;                      /* 1 = ctx created here, terminated on destroy */
    void *xsub;                       /* publishers' side; owned by the thread once started */
    void *xpub;                       /* subscribers' side; idem */
    void *ctl_proxy;                  /* PAIR given to zmq_proxy_steerable; idem */
    void *ctl;                        /* PAIR the owner steers the proxy with */
    pthread_t thread;                 /* runs the proxy */
    int started;                      /* 1 = thread running (must be joined) */
    char pub_ep[SF_BUS_ENDPOINT_MAX]; /* bound XSUB endpoint, actual port */
    char sub_ep[SF_BUS_ENDPOINT_MAX]; /* bound XPUB endpoint, actual port */
    char inproc_pub[64];              /* the same XSUB, for sockets of this context */
    char inproc_sub[64];              /* the same XPUB, for sockets of this context */
};

static int set_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof value);
}

static void close_quietly(void **sock_p)
{
    if (*sock_p) {
        int zero = 0;
        zmq_setsockopt(*sock_p, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(*sock_p);
        *sock_p = NULL;
    }
}

/* The proxy thread owns the three sockets it was handed and closes them on exit: libzmq
 * sockets may move between threads only across a full memory barrier (pthread_create),
 * never be shared. */
static void *proxy_main(void *arg)
{
    sf_bus_forwarder_t *self = arg;
    zmq_proxy_steerable(self->xsub, self->xpub, NULL, self->ctl_proxy);
    close_quietly(&self->xsub);
    close_quietly(&self->xpub);
    close_quietly(&self->ctl_proxy);
    return NULL;
}

static int bind_and_read(void *sock, const char *ep, char *out)
{
    if (zmq_bind(sock, ep) != 0)
        return -1;
    size_t len = SF_BUS_ENDPOINT_MAX;
    return zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &len);
}

sf_bus_forwarder_t *sf_bus_forwarder_new(void *zctx, const char *pub_ep, const char *sub_ep,
                                         int xpub_sndhwm)
{
    return sf_bus_forwarder_new_curve(zctx, pub_ep, sub_ep, xpub_sndhwm, NULL);
}

sf_bus_forwarder_t *sf_bus_forwarder_new_curve(void *zctx, const char *pub_ep, const char *sub_ep,
                                               int xpub_sndhwm, const char *curve_secret)
{
    if (!pub_ep || !sub_ep || xpub_sndhwm < 0) {
        errno = EINVAL;
        return NULL;
    }
    sf_bus_forwarder_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    int err = 0;
    self->ctx = zctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = 1;
        if (!self->ctx)
            goto fail;
    }
    self->xsub = zmq_socket(self->ctx, ZMQ_XSUB);
    self->xpub = zmq_socket(self->ctx, ZMQ_XPUB);
    self->ctl_proxy = zmq_socket(self->ctx, ZMQ_PAIR);
    self->ctl = zmq_socket(self->ctx, ZMQ_PAIR);
    if (!self->xsub || !self->xpub || !self->ctl_proxy || !self->ctl)
        goto fail;
    if (set_int(self->xsub, ZMQ_RCVHWM, SF_BUS_XSUB_RCVHWM) != 0 ||
        set_int(self->xpub, ZMQ_SNDHWM, xpub_sndhwm ? xpub_sndhwm : SF_BUS_XPUB_SNDHWM) != 0 ||
        set_int(self->xpub, ZMQ_XPUB_NODROP, 0) != 0)
        goto fail;
    /* CURVE server on both sides before binding: every connection then needs a handshake
     * (and the context's ZAP handler, if any, to admit the client's key). */
    if (curve_secret && (sf_curve_apply_server(self->xsub, curve_secret) != 0 ||
                         sf_curve_apply_server(self->xpub, curve_secret) != 0))
        goto fail;
    if (bind_and_read(self->xsub, pub_ep, self->pub_ep) != 0 ||
        bind_and_read(self->xpub, sub_ep, self->sub_ep) != 0)
        goto fail;
    /* Also bind in-process endpoints: participants that are threads of this process skip
     * the TCP stack and libzmq's I/O thread, several context switches per message. */
    snprintf(self->inproc_pub, sizeof self->inproc_pub, "inproc://sf-bus-pub-%p", (void *)self);
    snprintf(self->inproc_sub, sizeof self->inproc_sub, "inproc://sf-bus-sub-%p", (void *)self);
    if (zmq_bind(self->xsub, self->inproc_pub) != 0 || zmq_bind(self->xpub, self->inproc_sub) != 0)
        goto fail;
    char ctl_ep[64];
    snprintf(ctl_ep, sizeof ctl_ep, "inproc://sf-bus-forwarder-%p", (void *)self);
    if (zmq_bind(self->ctl, ctl_ep) != 0 || zmq_connect(self->ctl_proxy, ctl_ep) != 0)
        goto fail;
    err = pthread_create(&self->thread, NULL, proxy_main, self);
    if (err != 0) {
        errno = err;
        goto fail;
    }
    self->started = 1;
    return self;
fail:
    err = errno;
    close_quietly(&self->xsub);
    close_quietly(&self->xpub);
    close_quietly(&self->ctl_proxy);
    close_quietly(&self->ctl);
    if (self->own_ctx && self->ctx)
        (void)sf_bus_ctx_term(self->ctx, SF_BUS_CTX_TERM_MS);
    free(self);
    errno = err;
    return NULL;
}

/* One zmq_ctx_term handed to a thread: whichever of the waiter and the thread comes
 * last frees it (the waiter may give up first). */
typedef struct {
    void *zctx;         /* the context to terminate */
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled when done */
    int done;           /* zmq_ctx_term returned */
    int rc, err;        /* its result and errno */
    int refs;           /* 2 while both hold it */
} ctx_term_t;

static void ctx_term_unref(ctx_term_t *t)
{
    pthread_mutex_lock(&t->mu);
    int left = --t->refs;
    pthread_mutex_unlock(&t->mu);
    if (left == 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
    }
}

static void *ctx_term_main(void *arg)
{
    ctx_term_t *t = arg;
    int rc;
    do
        rc = zmq_ctx_term(t->zctx);
    while (rc != 0 && errno == EINTR);
    int err = errno;
    pthread_mutex_lock(&t->mu);
    t->done = 1;
    t->rc = rc;
    t->err = err;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    ctx_term_unref(t);
    return NULL;
}

int sf_bus_ctx_term(void *zctx, int timeout_ms)
{
    if (!zctx || timeout_ms < 0) {
        errno = EINVAL;
        return -1;
    }
    ctx_term_t *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->zctx = zctx;
    t->refs = 2;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    pthread_t th;
    int err = pthread_create(&th, NULL, ctx_term_main, t);
    if (err != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        errno = err;
        return -1;
    }
    pthread_detach(th);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->done && pthread_cond_timedwait(&t->cv, &t->mu, &until) != ETIMEDOUT)
        ;
    int done = t->done, rc = t->rc;
    err = t->err;
    pthread_mutex_unlock(&t->mu);
    ctx_term_unref(t);
    if (!done) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (rc != 0)
        errno = err;
    return rc;
}

const char *sf_bus_forwarder_pub_endpoint(const sf_bus_forwarder_t *self)
{
    return self ? self->pub_ep : NULL;
}

const char *sf_bus_forwarder_sub_endpoint(const sf_bus_forwarder_t *self)
{
    return self ? self->sub_ep : NULL;
}

const char *sf_bus_forwarder_inproc_pub_endpoint(const sf_bus_forwarder_t *self)
{
    return self ? self->inproc_pub : NULL;
}

const char *sf_bus_forwarder_inproc_sub_endpoint(const sf_bus_forwarder_t *self)
{
    return self ? self->inproc_sub : NULL;
}

int sf_bus_forwarder_stats(sf_bus_forwarder_t *self, sf_bus_stats_t *stats)
{
    if (!self || !stats || !self->started) {
        errno = EINVAL;
        return -1;
    }
    if (zmq_send(self->ctl, "STATISTICS", 10, 0) != 10)
        return -1;
    uint64_t v[8] = {0};
    for (int i = 0; i < 8; i++) {
        int more = 0;
        size_t more_len = sizeof more;
        if (zmq_recv(self->ctl, &v[i], sizeof v[i], 0) != (int)sizeof v[i])
            return -1;
        if (zmq_getsockopt(self->ctl, ZMQ_RCVMORE, &more, &more_len) != 0)
            return -1;
        if (!more != (i == 7)) {
            errno = SF_BUS_EFRAMES;
            return -1;
        }
    }
    /* Order of zmq_proxy_steerable(3): frontend in msgs/bytes, frontend out, backend in,
     * backend out. Frontend = XSUB (from publishers), backend = XPUB (to subscribers). */
    stats->in_msgs = v[0];
    stats->in_bytes = v[1];
    stats->out_msgs = v[6];
    stats->out_bytes = v[7];
    return 0;
}

void sf_bus_forwarder_destroy(sf_bus_forwarder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_bus_forwarder_t *self = *self_p;
    if (self->started) {
        zmq_send(self->ctl, "TERMINATE", 9, 0);
        pthread_join(self->thread, NULL);
    }
    close_quietly(&self->ctl);
    if (self->own_ctx)
        (void)sf_bus_ctx_term(self->ctx, SF_BUS_CTX_TERM_MS);
    free(self);
    *self_p = NULL;
}

static void set_why(char *why, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_why(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* Read one key file into out, with a reason naming the file on failure. */
static int read_key_file(const char *path, char out[SF_CURVE_Z85_LEN + 1], char *why,
                         size_t why_cap)
{
    if (sf_curve_read_key(path, out) == 0)
        return 0;
    int e = errno;
    set_why(why, why_cap, "%s: %s", path,
            e == EINVAL ? "not a CurveZMQ key file (one Z85 key of 40 characters, "
                          "as written by sigflow keygen)"
                        : strerror(e));
    errno = e;
    return -1;
}

int sf_bus_security_load(sf_bus_security_t *sec, const char *key_file, const char *server_key_file,
                         char *why, size_t why_cap)
{
    if (why && why_cap)
        why[0] = '\0';
    if (!sec || !key_file || !server_key_file) {
        errno = EINVAL;
        set_why(why, why_cap, "no key file given");
        return -1;
    }
    if (!zmq_has("curve")) {
        set_why(why, why_cap, "this libzmq has no CURVE support");
        errno = ENOTSUP;
        return -1;
    }
    sf_bus_security_t s;
    memset(&s, 0, sizeof s);
    if (read_key_file(key_file, s.secret_key, why, why_cap) != 0 ||
        read_key_file(server_key_file, s.server_key, why, why_cap) != 0)
        return -1;
    if (zmq_curve_public(s.public_key, s.secret_key) != 0) {
        int e = errno;
        set_why(why, why_cap, "%s: %s", key_file, zmq_strerror(e));
        errno = e;
        return -1;
    }
    /* A public key given where the secret one belongs would make a key pair nobody has
     * authorised: catch the usual slip (NAME.pub for NAME.key) by name, and a NAME.key
     * whose NAME.pub beside it is another pair's. */
    size_t kl = strlen(key_file);
    if (kl > 4 && strcmp(key_file + kl - 4, ".pub") == 0) {
        set_why(why, why_cap, "%s: %s", key_file,
                "is a public key file; give the secret key (NAME.key) of this participant");
        errno = EINVAL;
        return -1;
    }
    if (kl > 4 && kl < 4096 && strcmp(key_file + kl - 4, ".key") == 0) {
        char pub_path[4096], pub[SF_CURVE_Z85_LEN + 1];
        memcpy(pub_path, key_file, kl - 4);
        memcpy(pub_path + kl - 4, ".pub", 5);
        if (sf_curve_read_key(pub_path, pub) == 0 && strcmp(pub, s.public_key) != 0) {
            set_why(why, why_cap, "%s: %s", key_file,
                    "does not belong to the public key beside it (NAME.pub): not one key pair");
            errno = EINVAL;
            return -1;
        }
    }
    *sec = s;
    return 0;
}

int sf_bus_security_ephemeral(sf_bus_security_t *sec, const char *server_secret)
{
    if (!sec || !server_secret || strlen(server_secret) != SF_CURVE_Z85_LEN) {
        errno = EINVAL;
        return -1;
    }
    if (!zmq_has("curve")) {
        errno = ENOTSUP;
        return -1;
    }
    sf_bus_security_t s;
    memset(&s, 0, sizeof s);
    if (zmq_curve_public(s.server_key, server_secret) != 0 ||
        zmq_curve_keypair(s.public_key, s.secret_key) != 0) {
        if (errno == 0)
            errno = EINVAL;
        return -1;
    }
    *sec = s;
    return 0;
}

/* CURVE client options on a socket not yet connected; sec NULL = plain. */
static int apply_security(void *s, const sf_bus_security_t *sec)
{
    if (!sec)
        return 0;
    return sf_curve_apply_client(s, sec->public_key, sec->secret_key, sec->server_key);
}

void *sf_bus_pub_new(void *zctx, const char *endpoint)
{
    return sf_bus_pub_new_secure(zctx, endpoint, NULL);
}

void *sf_bus_pub_new_secure(void *zctx, const char *endpoint, const sf_bus_security_t *sec)
{
    if (!zctx || !endpoint) {
        errno = EINVAL;
        return NULL;
    }
    void *s = zmq_socket(zctx, ZMQ_PUB);
    if (!s)
        return NULL;
    if (set_int(s, ZMQ_SNDHWM, SF_BUS_PUB_SNDHWM) != 0 ||
        set_int(s, ZMQ_LINGER, SF_BUS_LINGER_MS) != 0 || apply_security(s, sec) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        int err = errno;
        close_quietly(&s);
        errno = err;
        return NULL;
    }
    return s;
}

void *sf_bus_sub_new(void *zctx, const char *endpoint, const char *const *topics, size_t n_topics,
                     int rcvhwm)
{
    return sf_bus_sub_new_secure(zctx, endpoint, topics, n_topics, rcvhwm, NULL);
}

void *sf_bus_sub_new_secure(void *zctx, const char *endpoint, const char *const *topics,
                            size_t n_topics, int rcvhwm, const sf_bus_security_t *sec)
{
    if (!zctx || !endpoint || (n_topics && !topics) || rcvhwm < 0) {
        errno = EINVAL;
        return NULL;
    }
    void *s = zmq_socket(zctx, ZMQ_SUB);
    if (!s)
        return NULL;
    int rc = set_int(s, ZMQ_RCVHWM, rcvhwm ? rcvhwm : SF_BUS_SUB_RCVHWM);
    rc = rc ? rc : set_int(s, ZMQ_LINGER, 0);
    rc = rc ? rc : apply_security(s, sec);
    for (size_t i = 0; rc == 0 && i < n_topics; i++) {
        if (!topics[i]) {
            errno = EINVAL;
            rc = -1;
            break;
        }
        rc = zmq_setsockopt(s, ZMQ_SUBSCRIBE, topics[i], strlen(topics[i]));
    }
    if (rc == 0)
        rc = zmq_connect(s, endpoint);
    if (rc != 0) {
        int err = errno;
        close_quietly(&s);
        errno = err;
        return NULL;
    }
    return s;
}

void sf_bus_close(void **sock_p)
{
    if (!sock_p || !*sock_p)
        return;
    zmq_close(*sock_p); /* keeps the socket's linger: a PUB flushes what it queued */
    *sock_p = NULL;
}

int sf_bus_send(void *pub, const ProtobufCMessage *msg)
{
    char topic[SF_BUS_TOPIC_MAX + 1];
    if (!pub) {
        errno = EINVAL;
        return -1;
    }
    int tlen = sf_bus_topic_of(msg, topic, sizeof topic);
    if (tlen < 0)
        return -1;
    zmq_msg_t body;
    if (sf_bus_encode_zmq(msg, &body) != 0)
        return -1;
    /* PUB never blocks (it drops at its high-water mark); DONTWAIT makes that explicit. */
    if (zmq_send(pub, topic, (size_t)tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) != tlen) {
        int err = errno;
        zmq_msg_close(&body);
        errno = err;
        return -1;
    }
    if (zmq_msg_send(&body, pub, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close(&body);
        errno = err;
        return -1;
    }
    return 0;
}

/* Discard the rest of a multipart message. */
static void drain(void *sub)
{
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sub, 0);
        zmq_msg_close(&m);
        if (rc < 0)
            return;
    }
}

int sf_bus_recv(void *sub, sf_bus_rx_t *rx, int flags, char *why, size_t why_cap)
{
    if (!sub || !rx) {
        errno = EINVAL;
        return -1;
    }
    rx->msg = NULL;
    rx->topic[0] = '\0';
    if (why && why_cap)
        why[0] = '\0';
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, sub, flags) < 0) {
        int err = errno;
        zmq_msg_close(&topic);
        errno = err;
        return -1;
    }
    size_t tlen = zmq_msg_size(&topic);
    int more = zmq_msg_more(&topic);
    int type = sf_bus_type_of_topic(zmq_msg_data(&topic), tlen);
    if (tlen <= SF_BUS_TOPIC_MAX) {
        memcpy(rx->topic, zmq_msg_data(&topic), tlen);
        rx->topic[tlen] = '\0';
    }
    zmq_msg_close(&topic);
    if (!more) {
        errno = SF_BUS_EFRAMES;
        return -1;
    }
    if (type < 0 || tlen > SF_BUS_TOPIC_MAX) {
        drain(sub);
        if (why && why_cap)
            snprintf(why, why_cap, "unknown topic (%zu bytes)", tlen);
        errno = SF_BUS_ETOPIC;
        return -1;
    }
    zmq_msg_init(&body);
    /* The second frame is already here: ZeroMQ delivers a multipart message whole. */
    if (zmq_msg_recv(&body, sub, 0) < 0) {
        int err = errno;
        zmq_msg_close(&body);
        errno = err;
        return -1;
    }
    if (zmq_msg_more(&body)) {
        zmq_msg_close(&body);
        drain(sub);
        errno = SF_BUS_EFRAMES;
        return -1;
    }
    rx->msg =
        sf_bus_decode((sf_bus_type_t)type, zmq_msg_data(&body), zmq_msg_size(&body), why, why_cap);
    int err = errno;
    zmq_msg_close(&body);
    if (!rx->msg) {
        errno = err;
        return -1;
    }
    /* A welcome's topic must name the participant the message is for. */
    if (type == SF_BUS_WELCOME &&
        strcmp(rx->topic + 8, ((const Sfbus__Welcome *)(void *)rx->msg)->name) != 0) {
        sf_bus_msg_destroy(&rx->msg);
        if (why && why_cap)
            snprintf(why, why_cap, "topic '%s' does not match the welcome's name", rx->topic);
        errno = SF_BUS_ETOPIC;
        return -1;
    }
    rx->type = (sf_bus_type_t)type;
    return 0;
}

void sf_bus_rx_clear(sf_bus_rx_t *rx)
{
    if (rx)
        sf_bus_msg_destroy(&rx->msg);
}
