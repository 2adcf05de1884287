/* unit/host.c — many units, one epoll loop, every client of every unit.
 *
 * Cost per request matters at a thousand units: the loop waits with epoll (a wait costs
 * what is ready, not what is open), reads every buffered request of a connection with one
 * recv, and corks the connection while it answers several (TCP_CORK), so the replies to a
 * pipelined poll leave as one segment instead of one per request. A connection that has
 * several requests to answer stays corked, and each batch's replies are pushed by
 * setting TCP_NODELAY, which flushes a corked socket (tcp(7)): one system call a batch
 * instead of cork and uncork. A batch of one request (a map version 4 poll: one FC 23)
 * uncorks the connection, so its reply leaves with its send and needs no push: per unit
 * and poll a recv and a send (on a 1,000-unit sweep the push cost the host 2.4-2.5 ms of
 * CPU, README "A poll sweep"). libmodbus still parses every request and builds every reply
 * (sf_server_handle_frame -> modbus_reply), with one send each. */
#define _GNU_SOURCE /* POLLRDHUP: the peer closed its side (Linux) */
#include "host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_CAP   4096 /* bytes buffered per connection: 15 maximum frames, ~340 small ones */
#define MAX_EVS  1024 /* epoll events taken per wait */
#define LISTENER (UINT64_C(1) << 63) /* epoll data: a unit's listening socket (| index) */

/* One client connection. Its bytes are read into rx as they come (one recv per wake-up
 * takes every request a pipelining master sent) and each complete frame is answered from
 * there; only a partial frame stays, and it has frame_timeout_ms to complete. */
typedef struct {
    int fd;                   /* client socket */
    uint32_t unit;            /* index of the unit it connected to */
    size_t slot;              /* index in sf_host_s.conns */
    bool may_write;           /* peer is on the allow-list (or there is none) */
    bool corked;              /* TCP_CORK is on: replies wait for push() */
    int64_t partial_since_ms; /* monotonic ms the partial frame in rx started, 0 none */
    uint16_t rx_len;          /* bytes in rx */
    uint8_t rx[RX_CAP];       /* received, not yet answered */
} conn_t;

struct sf_host_s {
    char listen_addr[INET_ADDRSTRLEN]; /* dotted quad */
    uint16_t base_port;                /* 0 = ephemeral */
    uint32_t *allow;                   /* allowed writers, network order */
    size_t n_allow;                    /* 0 = everyone may write */
    uint16_t max_clients;              /* per unit */
    uint16_t frame_timeout_ms;         /* partial frame limit */
    sf_unit_t **units;                 /* n_units engines, owned */
    sf_server_t **servers;             /* n_units servers, owned */
    uint16_t *n_clients;               /* connections per unit */
    size_t n_units, cap_units;
    conn_t **conns; /* open connections, each allocated alone (epoll data points at it) */
    size_t n_conns, cap_conns;
    size_t n_partial;        /* connections holding a partial frame */
    int ep;                  /* epoll set: every listening and client socket */
    struct epoll_event *evs; /* MAX_EVS, scratch for epoll_wait */
    sf_host_stats_t stats;   /* counters */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sf_host_t *sf_host_new(const sf_host_config_t *cfg)
{
    sf_host_config_t def = {0};
    if (!cfg)
        cfg = &def;
    struct in_addr a;
    const char *la = cfg->listen_addr ? cfg->listen_addr : "127.0.0.1";
    if (inet_pton(AF_INET, la, &a) != 1 || (cfg->n_allow && !cfg->allow)) {
        errno = EINVAL;
        return NULL;
    }
    sf_host_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ep = -1;
    inet_ntop(AF_INET, &a, h->listen_addr, sizeof h->listen_addr);
    h->base_port = cfg->base_port;
    h->max_clients = cfg->max_clients ? cfg->max_clients : 16;
    h->frame_timeout_ms = cfg->frame_timeout_ms ? cfg->frame_timeout_ms : 1000;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->evs = calloc(MAX_EVS, sizeof *h->evs);
    if (h->ep < 0 || !h->evs)
        goto fail;
    if (cfg->n_allow) {
        h->allow = calloc(cfg->n_allow, sizeof *h->allow);
        if (!h->allow)
            goto fail;
        for (size_t i = 0; i < cfg->n_allow; i++) {
            if (!cfg->allow[i] || inet_pton(AF_INET, cfg->allow[i], &a) != 1) {
                errno = EINVAL;
                goto fail;
            }
            h->allow[i] = a.s_addr;
        }
        h->n_allow = cfg->n_allow;
    }
    return h;
fail:;
    int saved = errno;
    sf_host_destroy(&h);
    errno = saved;
    return NULL;
}

void sf_host_destroy(sf_host_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_host_t *h = *self_p;
    for (size_t i = 0; i < h->n_conns; i++) {
        close(h->conns[i]->fd);
        free(h->conns[i]);
    }
    for (size_t i = 0; i < h->n_units; i++) {
        sf_server_destroy(&h->servers[i]);
        sf_unit_destroy(&h->units[i]);
    }
    free(h->units);
    free(h->servers);
    free(h->n_clients);
    free(h->conns);
    free(h->evs);
    if (h->ep >= 0)
        close(h->ep);
    free(h->allow);
    free(h);
    *self_p = NULL;
}

/* Grow an array of elements of size sz to hold at least need. */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * sz);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

int sf_host_add_unit(sf_host_t *h, const sf_intersection_t *ix, const sf_unit_config_t *ucfg)
{
    return sf_host_add_unit_at(h, ix, ucfg, 0);
}

int sf_host_add_unit_at(sf_host_t *h, const sf_intersection_t *ix, const sf_unit_config_t *ucfg,
                        uint16_t fixed_port)
{
    if (!h || !ix || h->n_units >= 65535) {
        errno = EINVAL;
        return -1;
    }
    size_t cap = h->cap_units;
    if (grow((void **)&h->units, &cap, h->n_units + 1, sizeof *h->units))
        return -1;
    cap = h->cap_units;
    if (grow((void **)&h->servers, &cap, h->n_units + 1, sizeof *h->servers))
        return -1;
    cap = h->cap_units;
    if (grow((void **)&h->n_clients, &cap, h->n_units + 1, sizeof *h->n_clients))
        return -1;
    h->cap_units = cap;
    sf_unit_t *u = sf_unit_new(ix, ucfg);
    if (!u)
        return -1;
    uint32_t port = fixed_port;
    if (!port && h->base_port) {
        port = (uint32_t)(h->base_port + h->n_units);
        if (port > 65535) {
            sf_unit_destroy(&u);
            errno = EINVAL;
            return -1;
        }
    }
    sf_server_t *s = sf_server_new(u, ucfg, (uint16_t)h->n_units, h->listen_addr, (uint16_t)port);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER | h->n_units};
    if (!s || epoll_ctl(h->ep, EPOLL_CTL_ADD, sf_server_listen_fd(s), &ev) != 0) {
        int saved = errno;
        sf_server_destroy(&s);
        sf_unit_destroy(&u);
        errno = saved;
        return -1;
    }
    h->units[h->n_units] = u;
    h->servers[h->n_units] = s;
    h->n_clients[h->n_units] = 0;
    return (int)h->n_units++;
}

size_t sf_host_n_units(const sf_host_t *h)
{
    return h ? h->n_units : 0;
}

sf_unit_t *sf_host_unit(const sf_host_t *h, size_t i)
{
    return h && i < h->n_units ? h->units[i] : NULL;
}

sf_server_t *sf_host_server(const sf_host_t *h, size_t i)
{
    return h && i < h->n_units ? h->servers[i] : NULL;
}

uint16_t sf_host_port(const sf_host_t *h, size_t i)
{
    return h && i < h->n_units ? sf_server_port(h->servers[i]) : 0;
}

int sf_host_set_clock(sf_host_t *h, uint32_t tod_ds)
{
    if (!h || tod_ds > 863999) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < h->n_units; i++)
        sf_unit_set_clock(h->units[i], tod_ds);
    return 0;
}

void sf_host_tick(sf_host_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_units; i++)
        sf_unit_tick(h->units[i]);
}

void sf_host_stats(const sf_host_t *h, sf_host_stats_t *out)
{
    if (h && out)
        *out = h->stats;
}

size_t sf_host_pollfds(const sf_host_t *h, struct pollfd *out, size_t cap)
{
    if (!h)
        return 0;
    /* The epoll set is readable whenever one of its sockets is: one descriptor stands for
     * them all. */
    if (out && cap >= 1)
        out[0] = (struct pollfd){.fd = h->ep, .events = POLLIN};
    return 1;
}

/* Monotonic ms at which the oldest partial frame times out, -1 none. */
static int64_t first_expiry(const sf_host_t *h)
{
    if (h->n_partial == 0)
        return -1;
    int64_t best = -1;
    for (size_t i = 0; i < h->n_conns; i++) {
        int64_t s = h->conns[i]->partial_since_ms;
        if (s && (best < 0 || s < best))
            best = s;
    }
    return best < 0 ? -1 : best + h->frame_timeout_ms + 1;
}

int sf_host_wait_hint_ms(const sf_host_t *h)
{
    if (!h)
        return -1;
    int64_t at = first_expiry(h);
    if (at < 0)
        return -1;
    int64_t d = at - now_ms();
    return d < 0 ? 0 : (int)d;
}

static bool allowed(const sf_host_t *h, uint32_t addr)
{
    if (h->n_allow == 0)
        return true;
    for (size_t i = 0; i < h->n_allow; i++)
        if (h->allow[i] == addr)
            return true;
    return false;
}

/* Accept every pending connection on unit u's listening socket. */
static void accept_all(sf_host_t *h, size_t u)
{
    for (;;) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(sf_server_listen_fd(h->servers[u]), (struct sockaddr *)&peer, &pl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: none left; anything else: try again at the next wake-up */
        conn_t *c = NULL;
        if (h->n_clients[u] >= h->max_clients ||
            grow((void **)&h->conns, &h->cap_conns, h->n_conns + 1, sizeof *h->conns) ||
            !(c = malloc(sizeof *c))) {
            close(fd);
            h->stats.rejected++;
            continue;
        }
        *c = (conn_t){
            .fd = fd,
            .unit = (uint32_t)u,
            .slot = h->n_conns,
            .may_write = peer.sin_family == AF_INET && allowed(h, peer.sin_addr.s_addr),
        };
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            h->stats.rejected++;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        h->conns[h->n_conns++] = c;
        h->n_clients[u]++;
        h->stats.accepted++;
    }
}

/* Close c (closing removes it from the epoll set) and free it. */
static void close_conn(sf_host_t *h, conn_t *c, uint64_t *counter)
{
    close(c->fd);
    h->n_clients[c->unit]--;
    if (c->partial_since_ms)
        h->n_partial--;
    conn_t *last = h->conns[--h->n_conns];
    h->conns[c->slot] = last;
    last->slot = c->slot;
    free(c);
    (*counter)++;
}

/* Hold c's replies until push(): on from its first batch of several requests on. */
static void cork(conn_t *c)
{
    int on = 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0)
        c->corked = true;
}

/* Stop holding c's replies: a batch of one request (the one FC 23 a poll of map version 4
 * makes) needs no cork, and a corked connection would pay a push (a system call) for each
 * such batch. Clearing TCP_CORK sends anything held. */
static void uncork(conn_t *c)
{
    int off = 0;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off) == 0)
        c->corked = false;
}

/* Send what a corked c holds now. Setting TCP_NODELAY (already on) flushes a corked
 * socket and leaves it corked (tcp(7)), so the next batch is held again without another
 * call. */
static void push(conn_t *c)
{
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Answer every complete frame in c->rx. False when c was closed (and freed). */
static bool serve_frames(sf_host_t *h, conn_t *c, int64_t now, int *served)
{
    sf_server_t *s = h->servers[c->unit];
    uint16_t off = 0;
    uint64_t *why = NULL;
    sf_server_stats_t before, after;
    sf_server_stats(s, &before);
    while (c->rx_len - off >= 7) {
        const uint8_t *f = c->rx + off;
        int len = 6 + (f[4] << 8 | f[5]);
        if ((f[2] | f[3]) != 0 || len < 8 || len > MODBUS_TCP_MAX_ADU_LENGTH) {
            why = &h->stats.closed_malformed;
            break;
        }
        if (c->rx_len - off < len)
            break;
        if (sf_server_frame_ok(f, len) != 0) {
            why = &h->stats.closed_malformed;
            break;
        }
        /* More requests behind this one: hold the replies and send them as one segment
         * (push() below sends what is held at once). */
        if (!c->corked && c->rx_len - off > len)
            cork(c);
        else if (c->corked && off == 0 && c->rx_len == len)
            uncork(c); /* the whole batch is this one request */
        if (sf_server_handle_frame(s, c->fd, c->may_write, f, len) != 0) {
            why = errno == EPROTO ? &h->stats.closed_malformed : &h->stats.closed_error;
            break;
        }
        (*served)++;
        off = (uint16_t)(off + len);
    }
    /* The server counts what it answered (also a request answered before its socket
     * failed); the host adds this batch's share. */
    sf_server_stats(s, &after);
    h->stats.requests += after.requests - before.requests;
    h->stats.exceptions += after.exceptions - before.exceptions;
    if (why) {
        close_conn(h, c, why);
        return false;
    }
    if (c->corked && off > 0)
        push(c);
    memmove(c->rx, c->rx + off, (size_t)(c->rx_len - off));
    c->rx_len = (uint16_t)(c->rx_len - off);
    /* A partial frame left: its clock starts when it started (now, if a frame was just
     * answered before it; else it keeps the time it was first seen). */
    bool was = c->partial_since_ms != 0;
    if (c->rx_len == 0)
        c->partial_since_ms = 0;
    else if (off > 0 || !was)
        c->partial_since_ms = now;
    h->n_partial = h->n_partial - was + (c->partial_since_ms != 0);
    return true;
}

/* Read what c has sent and answer it. */
static void serve_conn(sf_host_t *h, conn_t *c, int64_t now, int *served)
{
    for (;;) {
        size_t room = RX_CAP - c->rx_len;
        ssize_t r = recv(c->fd, c->rx + c->rx_len, room, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_conn(h, c, &h->stats.closed_error);
            return;
        }
        if (r == 0) {
            /* The peer shut its side: what was complete has been answered, a partial
             * frame will never complete. */
            close_conn(h, c, &h->stats.closed_peer);
            return;
        }
        c->rx_len = (uint16_t)(c->rx_len + r);
        if (!serve_frames(h, c, now, served))
            return;
        if ((size_t)r < room)
            return; /* drained (epoll reports the connection again if more comes) */
    }
}

/* Close the connections whose partial frame is older than the frame timeout. */
static void expire_partial(sf_host_t *h, int64_t now)
{
    if (h->n_partial == 0)
        return;
    for (size_t i = h->n_conns; i-- > 0;) {
        conn_t *c = h->conns[i];
        if (c->partial_since_ms && now - c->partial_since_ms > h->frame_timeout_ms)
            close_conn(h, c, &h->stats.closed_timeout); /* moves the last into slot i */
    }
}

int sf_host_poll(sf_host_t *h, int timeout_ms)
{
    if (!h) {
        errno = EINVAL;
        return -1;
    }
    /* Wait no longer than until the oldest partial frame times out. */
    int hint = sf_host_wait_hint_ms(h);
    if (hint >= 0 && (timeout_ms < 0 || hint < timeout_ms))
        timeout_ms = hint;
    int k = epoll_wait(h->ep, h->evs, MAX_EVS, timeout_ms);
    if (k < 0)
        return -1;
    int64_t now = now_ms();
    int served = 0;
    /* A connection is freed only while its own event is handled (or below), and each
     * appears once per wait, so every pointer in the batch is live when reached. */
    for (int i = 0; i < k; i++) {
        uint64_t d = h->evs[i].data.u64;
        if (d & LISTENER)
            accept_all(h, (size_t)(d & ~LISTENER));
        else
            serve_conn(h, h->evs[i].data.ptr, now, &served);
    }
    expire_partial(h, now);
    return served;
}
