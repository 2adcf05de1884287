/* proto/curve.c — CurveZMQ key files, socket options and a ZAP handler (RFC 27). */
#include "curve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES   7 /* version, request id, domain, address, identity, mechanism, key */

struct sf_curve_auth_t {
    void *rep;                           /* REP bound to the ZAP endpoint (handler thread only) */
    void *ctl;                           /* PAIR: the owner's end of the stop pipe */
    void *ctl_peer;                      /* PAIR: the handler's end */
    pthread_t thread;                    /* the handler */
    pthread_mutex_t mu;                  /* guards n_keys and keys: sf_curve_auth_allow */
    size_t n_keys;                       /* keys admitted */
    uint8_t keys[SF_CURVE_MAX_KEYS][32]; /* binary public keys */
    atomic_ulong ok;                     /* requests admitted */
    atomic_ulong refused;                /* requests refused */
};

static int name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* Write text to path, created exclusively with mode. */
static int write_new(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    return close(fd);
}

int sf_curve_keygen(const char *dir, const char *name)
{
    if (!dir || !name_ok(name)) {
        errno = EINVAL;
        return -1;
    }
    if (!zmq_has("curve")) {
        errno = ENOTSUP;
        return -1;
    }
    char pub[SF_CURVE_Z85_LEN + 1], sec[SF_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0)
        return -1;
    char kpath[4096], ppath[4096], line[SF_CURVE_Z85_LEN + 2];
    snprintf(kpath, sizeof kpath, "%s/%s.key", dir, name);
    snprintf(ppath, sizeof ppath, "%s/%s.pub", dir, name);
    if (access(ppath, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    snprintf(line, sizeof line, "%s\n", sec);
    if (write_new(kpath, line, 0600) != 0)
        return -1;
    snprintf(line, sizeof line, "%s\n", pub);
    if (write_new(ppath, line, 0644) != 0) {
        int e = errno;
        unlink(kpath);
        errno = e;
        return -1;
    }
    return 0;
}

int sf_curve_read_key(const char *path, char out[SF_CURVE_Z85_LEN + 1])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char buf[SF_CURVE_Z85_LEN + 4];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    uint8_t bin[32];
    if (n != SF_CURVE_Z85_LEN) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, buf, n);
    out[n] = 0;
    if (!zmq_z85_decode(bin, out)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int sf_curve_apply_server(void *sock, const char *z85_secret)
{
    int one = 1;
    if (!sock || !z85_secret || strlen(z85_secret) != SF_CURVE_Z85_LEN) {
        errno = EINVAL;
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z85_secret, SF_CURVE_Z85_LEN) != 0)
        return -1;
    return 0;
}

int sf_curve_apply_client(void *sock, const char *z85_public, const char *z85_secret,
                          const char *z85_server_public)
{
    if (!sock || !z85_public || !z85_secret || !z85_server_public ||
        strlen(z85_public) != SF_CURVE_Z85_LEN || strlen(z85_secret) != SF_CURVE_Z85_LEN ||
        strlen(z85_server_public) != SF_CURVE_Z85_LEN) {
        errno = EINVAL;
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, z85_server_public, SF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, z85_public, SF_CURVE_Z85_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z85_secret, SF_CURVE_Z85_LEN) != 0)
        return -1;
    return 0;
}

/* Append the key of the file at path; the caller holds a->mu or owns a alone. */
static int add_key_file(sf_curve_auth_t *a, const char *path)
{
    char z85[SF_CURVE_Z85_LEN + 1];
    if (a->n_keys == SF_CURVE_MAX_KEYS) {
        errno = E2BIG;
        return -1;
    }
    if (sf_curve_read_key(path, z85) != 0 || !zmq_z85_decode(a->keys[a->n_keys], z85)) {
        if (errno != ENOENT && errno != EACCES)
            errno = EINVAL;
        return -1;
    }
    a->n_keys++;
    return 0;
}

static int load_keys(sf_curve_auth_t *a, const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return -1;
    if (S_ISREG(sb.st_mode)) /* one authorised key file */
        return add_key_file(a, dir);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".pub") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (add_key_file(a, path) != 0) {
            if (errno != E2BIG)
                errno = EINVAL;
            rc = -1;
            break;
        }
    }
    int e = errno;
    closedir(d);
    errno = e;
    return rc;
}

/* Answer one ZAP request waiting on a->rep. */
static void zap_answer(sf_curve_auth_t *a)
{
    zmq_msg_t fr[ZAP_FRAMES + 1];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->rep, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES + 1)
            fr[n++] = m;
        else
            zmq_msg_close(&m);
    }
    bool admit = false;
    if (n == ZAP_FRAMES && zmq_msg_size(&fr[0]) == 3 &&
        memcmp(zmq_msg_data(&fr[0]), "1.0", 3) == 0 && zmq_msg_size(&fr[5]) == 5 &&
        memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 && zmq_msg_size(&fr[6]) == 32) {
        pthread_mutex_lock(&a->mu);
        for (size_t i = 0; i < a->n_keys && !admit; i++)
            admit = memcmp(a->keys[i], zmq_msg_data(&fr[6]), 32) == 0;
        pthread_mutex_unlock(&a->mu);
    }
    if (admit)
        atomic_fetch_add(&a->ok, 1);
    else
        atomic_fetch_add(&a->refused, 1);
    if (n >= 2) {
        zmq_send(a->rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(a->rep, zmq_msg_data(&fr[1]), zmq_msg_size(&fr[1]), ZMQ_SNDMORE);
        zmq_send(a->rep, admit ? "200" : "400", 3, ZMQ_SNDMORE);
        const char *text = admit ? "OK" : "key not authorised";
        zmq_send(a->rep, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(a->rep, "", 0, ZMQ_SNDMORE);
        zmq_send(a->rep, "", 0, 0);
    } else if (n >= 1) {
        zmq_send(a->rep, "", 0, 0); /* keep REP in step */
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
}

static void *zap_thread(void *arg)
{
    sf_curve_auth_t *a = arg;
    for (;;) {
        zmq_pollitem_t it[2] = {{a->rep, 0, ZMQ_POLLIN, 0}, {a->ctl_peer, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (it[1].revents & ZMQ_POLLIN)
            break;
        if (it[0].revents & ZMQ_POLLIN)
            zap_answer(a);
    }
    int linger = 0;
    zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(a->rep);
    zmq_close(a->ctl_peer);
    return NULL;
}

sf_curve_auth_t *sf_curve_auth_new(void *zctx, const char *path)
{
    if (!zctx || !path) {
        errno = EINVAL;
        return NULL;
    }
    sf_curve_auth_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (load_keys(a, path) != 0) {
        int e = errno;
        free(a);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    char pipe_ep[64];
    snprintf(pipe_ep, sizeof pipe_ep, "inproc://sf-curve-auth-%p", (void *)a);
    a->rep = zmq_socket(zctx, ZMQ_REP);
    a->ctl = zmq_socket(zctx, ZMQ_PAIR);
    a->ctl_peer = zmq_socket(zctx, ZMQ_PAIR);
    if (!a->rep || !a->ctl || !a->ctl_peer || zmq_bind(a->rep, ZAP_ENDPOINT) != 0 ||
        zmq_bind(a->ctl_peer, pipe_ep) != 0 || zmq_connect(a->ctl, pipe_ep) != 0 ||
        pthread_create(&a->thread, NULL, zap_thread, a) != 0) {
        int e = errno;
        if (a->rep)
            zmq_close(a->rep);
        if (a->ctl)
            zmq_close(a->ctl);
        if (a->ctl_peer)
            zmq_close(a->ctl_peer);
        pthread_mutex_destroy(&a->mu);
        free(a);
        errno = e;
        return NULL;
    }
    return a;
}

int sf_curve_auth_allow(sf_curve_auth_t *a, const char *z85_public)
{
    uint8_t bin[32];
    if (!a || !z85_public || strlen(z85_public) != SF_CURVE_Z85_LEN ||
        !zmq_z85_decode(bin, z85_public)) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (a->n_keys == SF_CURVE_MAX_KEYS) {
        errno = E2BIG;
        rc = -1;
    } else {
        memcpy(a->keys[a->n_keys++], bin, sizeof bin);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

size_t sf_curve_auth_keys(sf_curve_auth_t *a)
{
    if (!a)
        return 0;
    pthread_mutex_lock(&a->mu);
    size_t n = a->n_keys;
    pthread_mutex_unlock(&a->mu);
    return n;
}

void sf_curve_auth_counts(sf_curve_auth_t *a, unsigned long *ok, unsigned long *refused)
{
    if (ok)
        *ok = a ? atomic_load(&a->ok) : 0;
    if (refused)
        *refused = a ? atomic_load(&a->refused) : 0;
}

void sf_curve_auth_destroy(sf_curve_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_curve_auth_t *a = *self_p;
    zmq_send(a->ctl, "", 0, 0);
    pthread_join(a->thread, NULL);
    int linger = 0;
    zmq_setsockopt(a->ctl, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(a->ctl);
    pthread_mutex_destroy(&a->mu);
    free(a);
    *self_p = NULL;
}
