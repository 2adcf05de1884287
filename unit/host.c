/* unit/host.c — many units, one poll loop, every client of every unit. */
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS       5  /* re-check a connection holding a partial frame after this */
#define MAX_PER_WAKEUP 64 /* frames answered per connection per wake-up (fairness) */

typedef struct {
    int fd;                   /* client socket */
    uint32_t unit;            /* index of the unit it connected to */
    bool may_write;           /* peer is on the allow-list (or there is none) */
    int64_t partial_since_ms; /* monotonic ms a partial frame was first seen, 0 none */
    int64_t retry_at_ms;      /* do not poll before this (partial frame), 0 = now */
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
    conn_t *conns; /* open connections */
    size_t n_conns, cap_conns;
    struct pollfd *pfd; /* scratch for poll: units then connections */
    size_t cap_pfd;
    sf_host_stats_t stats; /* counters */
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
    inet_ntop(AF_INET, &a, h->listen_addr, sizeof h->listen_addr);
    h->base_port = cfg->base_port;
    h->max_clients = cfg->max_clients ? cfg->max_clients : 16;
    h->frame_timeout_ms = cfg->frame_timeout_ms ? cfg->frame_timeout_ms : 1000;
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
    for (size_t i = 0; i < h->n_conns; i++)
        close(h->conns[i].fd);
    for (size_t i = 0; i < h->n_units; i++) {
        sf_server_destroy(&h->servers[i]);
        sf_unit_destroy(&h->units[i]);
    }
    free(h->units);
    free(h->servers);
    free(h->n_clients);
    free(h->conns);
    free(h->pfd);
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
    if (grow((void **)&h->pfd, &h->cap_pfd, h->n_units + 1 + h->n_conns, sizeof *h->pfd))
        return -1;
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
    if (!s) {
        int saved = errno;
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
    size_t n = 0;
    for (size_t i = 0; i < h->n_units; i++, n++)
        if (out && n < cap)
            out[n] = (struct pollfd){.fd = sf_server_listen_fd(h->servers[i]), .events = POLLIN};
    int64_t now = now_ms();
    for (size_t i = 0; i < h->n_conns; i++, n++)
        if (out && n < cap)
            out[n] = (struct pollfd){.fd = h->conns[i].retry_at_ms > now ? -1 : h->conns[i].fd,
                                     .events = POLLIN};
    return n;
}

int sf_host_wait_hint_ms(const sf_host_t *h)
{
    if (!h)
        return -1;
    int64_t now = now_ms(), best = -1;
    for (size_t i = 0; i < h->n_conns; i++) {
        int64_t r = h->conns[i].retry_at_ms;
        if (r == 0)
            continue;
        int64_t d = r > now ? r - now : 0;
        if (best < 0 || d < best)
            best = d;
    }
    return (int)best;
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
        int fd = accept(sf_server_listen_fd(h->servers[u]), (struct sockaddr *)&peer, &pl);
        if (fd >= 0) {
            int fl = fcntl(fd, F_GETFL);
            if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
                fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                close(fd);
                h->stats.rejected++;
                continue;
            }
        }
        if (fd < 0)
            return; /* EAGAIN: none left; anything else: try again at the next wake-up */
        if (h->n_clients[u] >= h->max_clients ||
            grow((void **)&h->conns, &h->cap_conns, h->n_conns + 1, sizeof *h->conns) ||
            grow((void **)&h->pfd, &h->cap_pfd, h->n_units + h->n_conns + 1, sizeof *h->pfd)) {
            close(fd);
            h->stats.rejected++;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        h->conns[h->n_conns++] = (conn_t){
            .fd = fd,
            .unit = (uint32_t)u,
            .may_write = peer.sin_family == AF_INET && allowed(h, peer.sin_addr.s_addr),
        };
        h->n_clients[u]++;
        h->stats.accepted++;
    }
}

static void close_conn(sf_host_t *h, size_t i, uint64_t *counter)
{
    close(h->conns[i].fd);
    h->n_clients[h->conns[i].unit]--;
    h->conns[i] = h->conns[--h->n_conns];
    (*counter)++;
}

/* How a connection stands: the length of the complete frame at the head of its buffer,
 * 0 when only part of one is there, -1 peer gone, -2 malformed, -3 socket error. */
static int frame_ready(int fd)
{
    /* One peek shows what is buffered, up to the largest ADU. */
    uint8_t head[MODBUS_TCP_MAX_ADU_LENGTH];
    ssize_t r = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0)
        return -1;
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -3;
    if (r < 7)
        return 0;
    int len = 6 + (head[4] << 8 | head[5]);
    if ((head[2] | head[3]) != 0 || len < 8 || len > MODBUS_TCP_MAX_ADU_LENGTH)
        return -2;
    if (r < len)
        return 0;
    return sf_server_frame_ok(head, len) == 0 ? len : -2;
}

/* Serve connection i; false when it was closed (the slot now holds another one). */
static bool serve_conn(sf_host_t *h, size_t i, int64_t now, bool rdhup, int *served)
{
    conn_t *c = &h->conns[i];
    for (int k = 0; k < MAX_PER_WAKEUP; k++) {
        int len = frame_ready(c->fd);
        if (len == -1) {
            close_conn(h, i, &h->stats.closed_peer);
            return false;
        }
        if (len == -2) {
            close_conn(h, i, &h->stats.closed_malformed);
            return false;
        }
        if (len == -3) {
            close_conn(h, i, &h->stats.closed_error);
            return false;
        }
        if (len == 0 && rdhup) {
            /* The peer shut its side: what is buffered is all that will ever come. */
            close_conn(h, i, &h->stats.closed_peer);
            return false;
        }
        if (len == 0) {
            if (k > 0)
                return true; /* served what was complete; the rest comes later */
            if (c->partial_since_ms == 0)
                c->partial_since_ms = now;
            if (now - c->partial_since_ms > h->frame_timeout_ms) {
                close_conn(h, i, &h->stats.closed_timeout);
                return false;
            }
            c->retry_at_ms = now + RETRY_MS;
            return true;
        }
        c->partial_since_ms = 0;
        c->retry_at_ms = 0;
        sf_server_t *s = h->servers[c->unit];
        sf_server_stats_t before, after;
        sf_server_stats(s, &before);
        if (sf_server_handle(s, c->fd, c->may_write, len) != 0) {
            close_conn(h, i, errno == EPROTO ? &h->stats.closed_malformed : &h->stats.closed_error);
            return false;
        }
        sf_server_stats(s, &after);
        h->stats.requests += after.requests - before.requests;
        h->stats.exceptions += after.exceptions - before.exceptions;
        (*served)++;
    }
    return true;
}

int sf_host_poll(sf_host_t *h, int timeout_ms)
{
    if (!h) {
        errno = EINVAL;
        return -1;
    }
    int64_t now = now_ms();
    size_t n = 0;
    for (size_t i = 0; i < h->n_units; i++)
        h->pfd[n++] = (struct pollfd){.fd = sf_server_listen_fd(h->servers[i]), .events = POLLIN};
    /* A connection holding a partial frame sits out until its retry time, so it neither
     * spins the loop nor blocks anyone; the wait is shortened to that time. */
    for (size_t i = 0; i < h->n_conns; i++) {
        conn_t *c = &h->conns[i];
        bool wait = c->retry_at_ms > now;
        /* Waiting: only a hang-up wakes us (the buffered part would keep POLLIN set). */
        h->pfd[n++] = (struct pollfd){.fd = c->fd, .events = wait ? POLLRDHUP : POLLIN | POLLRDHUP};
        if (wait) {
            int64_t d = c->retry_at_ms - now;
            if (timeout_ms < 0 || d < timeout_ms)
                timeout_ms = (int)d;
        }
    }
    int rc = poll(h->pfd, (nfds_t)n, timeout_ms);
    if (rc < 0)
        return -1;
    now = now_ms();
    int served = 0;
    size_t n_units = h->n_units, n_conns = h->n_conns;
    /* Connections first, walking backwards: closing one moves the last into its slot,
     * and the last has been visited already. The pfd entries keep their old order. */
    for (size_t i = n_conns; i-- > 0;) {
        const struct pollfd *p = &h->pfd[n_units + i];
        conn_t *c = &h->conns[i];
        bool due = c->retry_at_ms && c->retry_at_ms <= now;
        if ((p->revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) || due)
            serve_conn(h, i, now, (p->revents & (POLLRDHUP | POLLHUP)) != 0, &served);
    }
    for (size_t i = 0; i < n_units; i++)
        if (h->pfd[i].revents & POLLIN)
            accept_all(h, i);
    return served;
}
