/* controller/master.c — pipelined Modbus TCP master (see master.h). */
#define _POSIX_C_SOURCE 200809L
#include "master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_RAW            100  /* unit id + PDU of the largest request (plan download: 84 bytes) */
#define RX_CAP             4608 /* replies of a full queue: 17 x 260 bytes, rounded up */
#define MBAP_LEN           7    /* Modbus/TCP header: transaction, protocol, length, unit */
#define SLOT_IDENT         0    /* req[0] is the identity read sent first on a new connection */
#define LATE_CAP           64 /* replies still owed from missed rounds before the link is dropped */
#define CONNECT_TIMEOUT_MS 3000 /* default: covers one lost SYN (first retransmit at 1 s) */
#define MAX_READ_REGS                                                                              \
    125 /* FC 4 reads at most 125 registers (MODBUS Application                                    \
           Protocol V1.1b3, section 6.4) */

/* What a reply feeds (reads) or that it is a write. */
typedef enum {
    K_WRITE = 0,
    K_IDENT,
    K_STATUS,
    K_LAMPS,
    K_DET,
    K_OCC,
    K_PRIO,
    K_PLAN_RD,
    K_PRESENCE,
    K_DETOCC,   /* det_seq through the unit's last det_occupancy in one read */
    K_IMAGE,    /* a part of the poll image (map version 3) */
    K_IMAGE_RW, /* FC 23: the heartbeat written, the poll image read (map version 4) */
} req_kind_t;

typedef struct {
    uint8_t raw[REQ_RAW]; /* unit id, function code, data: the ADU after the MBAP length */
    uint8_t raw_len;      /* bytes in raw */
    uint8_t kind;         /* req_kind_t */
    uint8_t outcome;      /* sf_mreq_outcome_t */
    uint8_t exc;          /* exception code when outcome is SF_MREQ_EXCEPTION */
    uint16_t tid;         /* transaction id it was sent with (replies must echo it) */
    uint16_t addr;        /* first address */
    uint16_t qty;         /* registers or bits */
    bool status_part;     /* one of the status reads of a poll */
    bool image_last;      /* K_IMAGE: the last part of the image read: the state is filled */
} req_t;

/* Where a unit is within the current round. */
typedef enum {
    C_IDLE = 0,   /* not in this round (nothing queued, skipped, or between rounds) */
    C_CONNECTING, /* in the round, waiting for its connection to be made */
    C_WAITING,    /* requests sent, replies outstanding */
    C_DONE,       /* every reply in (or failed: see failed) */
} conn_phase_t;

/* The unit's connection, which lives across rounds. */
typedef enum {
    L_NONE = 0,   /* no socket */
    L_CONNECTING, /* non-blocking connect in progress (may span several rounds) */
    L_OPEN,       /* connected */
} link_t;

typedef struct {
    modbus_t *mb;                      /* libmodbus context; owns the socket once connected */
    struct sockaddr_in sa;             /* resolved endpoint */
    int fd;                            /* socket, -1 none */
    uint8_t link;                      /* link_t */
    uint8_t phase;                     /* conn_phase_t */
    bool ident_read;                   /* identity read on this connection */
    bool detocc_refused;               /* the device refused the joined detector read (on
                                          this connection): two reads from then on */
    bool image_refused;                /* the device refused a poll image read (on this
                                          connection): the separate reads from then on */
    bool fc23_refused;                 /* the device refused an FC 23 poll (on this
                                          connection): the version 3 image read and
                                          heartbeat write from then on */
    bool image_ok;                     /* every part of this poll's image read came back */
    uint8_t image_what;                /* SF_POLL_* bits of the queued image poll */
    uint16_t image_end;                /* registers of the image it reads (from offset 0) */
    int64_t connect_deadline_ms;       /* monotonic ms: a connect still pending then fails */
    uint16_t late_n;                   /* replies still owed for requests of missed rounds */
    uint16_t late_tid;                 /* transaction id of the next of those */
    bool failed;                       /* this round missed */
    req_t req[SF_MASTER_MAX_REQ + 1];  /* slot 0: identity read; queued from slot 1 */
    uint8_t n_req;                     /* slots used including slot 0 (>= 1) */
    uint8_t first;                     /* first slot sent this round (0 or 1) */
    uint8_t next_reply;                /* slot whose reply is expected next */
    bool status_ok;                    /* every status read of this round succeeded */
    bool has_status;                   /* this round polled the status */
    bool ran;                          /* the queue has run: outcomes readable, queue stale */
    uint16_t tid;                      /* last transaction id used on this unit */
    uint16_t rx_len;                   /* bytes buffered in rx */
    uint8_t rx[RX_CAP];                /* received bytes not yet parsed */
    char expect_id[33];                /* id the unit must report, "" any */
    int64_t sent_us;                   /* monotonic us of this round's send (round trip) */
    uint64_t retrans_closed;           /* TCP retransmits of the connections closed so far */
    sf_unit_state_t st;                /* what we know */
    uint16_t image[SF_POLL_IMAGE_MAX]; /* the poll image as read this round */
} unit_t;

struct sf_master_s {
    size_t n;                /* units */
    unit_t *u;               /* n units */
    sf_master_opts_t opts;   /* copied */
    int ep;                  /* epoll set of every open unit socket (data: unit index) */
    struct epoll_event *evs; /* n entries, scratch for epoll_wait */
    sf_master_stats_t stats; /* counters */
};

void sf_master_opts_default(sf_master_opts_t *o)
{
    if (!o)
        return;
    o->round_timeout_ms = 200;
    o->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    sf_health_cfg_default(&o->health);
    o->no_image = false;
    o->no_fc23 = false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Bucket of a round trip of us microseconds: 4 x the exponent of its leading bit plus the
 * two bits below it, so each octave is cut in four equal parts (a bucket spans at most
 * 25 % of its lower edge: enough for percentiles of link latency, and no floating point
 * on the round's path). */
static unsigned rtt_bucket(uint32_t us)
{
    if (us < 2)
        return 0;
    unsigned e = 31u - (unsigned)__builtin_clz(us);
    unsigned frac = e >= 2 ? (us >> (e - 2)) & 3u : (us << (2 - e)) & 3u;
    unsigned b = 4 * e + frac;
    return b < SF_RTT_BUCKETS ? b : SF_RTT_BUCKETS - 1;
}

static void rtt_add(sf_rtt_stats_t *r, int64_t us)
{
    uint32_t v = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (r->n == 0 || v < r->min_us)
        r->min_us = v;
    if (v > r->max_us)
        r->max_us = v;
    r->n++;
    r->sum_us += v;
    r->last_us = v;
    r->hist[rtt_bucket(v)]++;
}

void sf_rtt_merge(sf_rtt_stats_t *a, const sf_rtt_stats_t *b)
{
    if (!a || !b || b->n == 0)
        return;
    if (a->n == 0 || b->min_us < a->min_us)
        a->min_us = b->min_us;
    if (b->max_us > a->max_us)
        a->max_us = b->max_us;
    a->n += b->n;
    a->sum_us += b->sum_us;
    a->last_us = b->last_us;
    for (int i = 0; i < SF_RTT_BUCKETS; i++)
        a->hist[i] += b->hist[i];
}

double sf_rtt_quantile_ms(const sf_rtt_stats_t *r, double q)
{
    if (!r || r->n == 0)
        return 0.0;
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    /* rank of the quantile, 1..n (the 1e-9 keeps q x n = 90.000000000000014 at 90) */
    uint64_t rank = (uint64_t)ceil(q * (double)r->n - 1e-9), seen = 0;
    if (rank == 0)
        rank = 1;
    double us = r->max_us;
    for (int b = 0; b < SF_RTT_BUCKETS; b++) {
        seen += r->hist[b];
        if (seen >= rank) {
            /* upper edge of bucket b (see rtt_bucket) */
            us =
                b == SF_RTT_BUCKETS - 1 ? r->max_us : ldexp(1.0 + (double)(b % 4 + 1) / 4.0, b / 4);
            break;
        }
    }
    if (us > r->max_us)
        us = r->max_us;
    if (us < r->min_us)
        us = r->min_us;
    return us / 1000.0;
}

/* Segments the kernel retransmitted on fd's connection so far, and its smoothed RTT. */
static bool tcp_figures(int fd, uint64_t *retrans, uint32_t *srtt_us)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    *retrans = ti.tcpi_total_retrans;
    *srtt_us = ti.tcpi_rtt;
    return true;
}

int sf_master_tcp_link(const sf_master_t *m, size_t u, sf_tcp_link_t *out)
{
    if (!m || u >= m->n || !out) {
        errno = EINVAL;
        return -1;
    }
    const unit_t *un = &m->u[u];
    uint64_t r = 0;
    uint32_t srtt = 0;
    bool have = un->fd >= 0 && tcp_figures(un->fd, &r, &srtt);
    out->retransmits = un->retrans_closed + (have ? r : 0);
    out->open = have && un->link == L_OPEN;
    out->srtt_us = out->open ? srtt : 0;
    return 0;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
        errno = EINVAL;
        return -1;
    }
    sa->sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

sf_master_t *sf_master_new(size_t n, const sf_endpoint_t *eps, const char *const *expect_id,
                           const sf_master_opts_t *opts)
{
    sf_master_t *m = NULL;
    if (n == 0 || n > 65535 || !eps) {
        errno = EINVAL;
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto fail;
    if (opts)
        m->opts = *opts;
    else
        sf_master_opts_default(&m->opts);
    if (m->opts.round_timeout_ms <= 0 || m->opts.connect_timeout_ms < 0) {
        errno = EINVAL;
        goto fail;
    }
    if (m->opts.connect_timeout_ms == 0)
        m->opts.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    /* A connect is given at least one whole round. */
    if (m->opts.connect_timeout_ms < m->opts.round_timeout_ms)
        m->opts.connect_timeout_ms = m->opts.round_timeout_ms;
    m->n = n;
    m->u = calloc(n, sizeof *m->u);
    m->ep = -1;
    m->evs = calloc(n, sizeof *m->evs);
    if (!m->u || !m->evs)
        goto fail;
    m->ep = epoll_create1(EPOLL_CLOEXEC);
    if (m->ep < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        unit_t *u = &m->u[i];
        u->fd = -1;
        u->n_req = 1;
        u->st.status_ds = -1;
        if (eps[i].port == 0 || memchr(eps[i].host, 0, sizeof eps[i].host) == NULL ||
            resolve(eps[i].host, eps[i].port, &u->sa) < 0 ||
            sf_health_init(&u->st.health, &m->opts.health) < 0) {
            errno = EINVAL;
            goto fail;
        }
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &u->sa.sin_addr, ip, sizeof ip);
        u->mb = modbus_new_tcp(ip, eps[i].port);
        if (!u->mb)
            goto fail;
        if (expect_id && expect_id[i]) {
            strncpy(u->expect_id, expect_id[i], sizeof u->expect_id - 1);
        }
    }
    return m;
fail : {
    int e = errno ? errno : ENOMEM;
    sf_master_destroy(&m);
    errno = e;
    return NULL;
}
}

void sf_master_destroy(sf_master_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_master_t *m = *self_p;
    if (m->u) {
        for (size_t i = 0; i < m->n; i++) {
            if (m->u[i].mb) {
                modbus_close(m->u[i].mb);
                modbus_free(m->u[i].mb);
            }
        }
    }
    free(m->u);
    if (m->ep >= 0)
        close(m->ep);
    free(m->evs);
    free(m);
    *self_p = NULL;
}

size_t sf_master_n(const sf_master_t *m)
{
    return m ? m->n : 0;
}

const sf_unit_state_t *sf_master_state(const sf_master_t *m, size_t u)
{
    if (!m || u >= m->n)
        return NULL;
    return &m->u[u].st;
}

void sf_master_stats(const sf_master_t *m, sf_master_stats_t *out)
{
    if (m && out)
        *out = m->stats;
}

/* ---- queueing --------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xff);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Queueing after a round starts a new queue (the old outcomes are dropped). */
static void fresh(unit_t *un)
{
    if (un->ran) {
        un->n_req = 1;
        un->has_status = false;
        un->ran = false;
    }
}

static req_t *new_slot(sf_master_t *m, size_t u)
{
    if (!m || u >= m->n) {
        errno = EINVAL;
        return NULL;
    }
    unit_t *un = &m->u[u];
    fresh(un);
    if (un->n_req >= SF_MASTER_MAX_REQ + 1) {
        errno = ENOSPC;
        return NULL;
    }
    req_t *r = &un->req[un->n_req++];
    memset(r, 0, sizeof *r);
    return r;
}

static void make_read(req_t *r, uint8_t fc, uint16_t addr, uint16_t qty, req_kind_t kind)
{
    r->raw[0] = MODBUS_TCP_SLAVE;
    r->raw[1] = fc;
    put16(r->raw + 2, addr);
    put16(r->raw + 4, qty);
    r->raw_len = 6;
    r->addr = addr;
    r->qty = qty;
    r->kind = (uint8_t)kind;
}

/* Write of holding registers as FC 16; n <= 40 keeps it within REQ_RAW. */
static void make_write16(req_t *r, uint16_t addr, const uint16_t *vals, uint16_t n)
{
    r->raw[0] = MODBUS_TCP_SLAVE;
    r->raw[1] = MODBUS_FC_WRITE_MULTIPLE_REGISTERS;
    put16(r->raw + 2, addr);
    put16(r->raw + 4, n);
    r->raw[6] = (uint8_t)(2 * n);
    for (uint16_t i = 0; i < n; i++)
        put16(r->raw + 7 + 2 * i, vals[i]);
    r->raw_len = (uint8_t)(7 + 2 * n);
    r->addr = addr;
    r->qty = n;
    r->kind = K_WRITE;
}

static int handle_of(const sf_master_t *m, size_t u, const req_t *r)
{
    return (int)(r - m->u[u].req) - 1;
}

int sf_master_queue_write(sf_master_t *m, size_t u, sf_reg_id_t id, uint16_t elem,
                          const uint16_t *vals, uint16_t n)
{
    const sf_reg_t *e = sf_regmap_get(id);
    if (!m || u >= m->n || !e || e->table != SF_TBL_HOLDING || !vals || n == 0 || n > 40 ||
        (uint32_t)e->address + elem + n > 65536u) {
        errno = EINVAL;
        return -1;
    }
    /* Every address written must be a writable holding register (the write may run on
     * into the following entries, e.g. the whole priority mailbox 300..305). A write
     * within the entry itself (the heartbeat, every poll) needs no search of the map. */
    bool inside = (e->access & SF_ACC_W) && (uint32_t)elem + n <= sf_regmap_span(e);
    for (uint32_t a = (uint32_t)e->address + elem; !inside && a < (uint32_t)e->address + elem + n;
         a++) {
        const sf_reg_t *x = sf_regmap_at(SF_TBL_HOLDING, (uint16_t)a, NULL, NULL);
        if (!x || !(x->access & SF_ACC_W)) {
            errno = EINVAL;
            return -1;
        }
    }
    req_t *r = new_slot(m, u);
    if (!r)
        return -1;
    make_write16(r, (uint16_t)(e->address + elem), vals, n);
    return handle_of(m, u, r);
}

int sf_master_queue_coils(sf_master_t *m, size_t u, sf_reg_id_t id, uint16_t elem,
                          const uint8_t *bits, uint16_t n)
{
    const sf_reg_t *e = sf_regmap_get(id);
    if (!m || u >= m->n || !e || e->table != SF_TBL_COIL || !(e->access & SF_ACC_W) || !bits ||
        n == 0 || (uint32_t)elem + n > e->count) {
        errno = EINVAL;
        return -1;
    }
    req_t *r = new_slot(m, u);
    if (!r)
        return -1;
    uint16_t addr = (uint16_t)(e->address + elem);
    r->raw[0] = MODBUS_TCP_SLAVE;
    r->raw[1] = MODBUS_FC_WRITE_MULTIPLE_COILS;
    put16(r->raw + 2, addr);
    put16(r->raw + 4, n);
    uint8_t nbytes = (uint8_t)((n + 7) / 8);
    r->raw[6] = nbytes;
    memset(r->raw + 7, 0, nbytes);
    for (uint16_t i = 0; i < n; i++)
        if (bits[i])
            r->raw[7 + i / 8] |= (uint8_t)(1u << (i % 8));
    r->raw_len = (uint8_t)(7 + nbytes);
    r->addr = addr;
    r->qty = n;
    r->kind = K_WRITE;
    return handle_of(m, u, r);
}

/* First address of entry id and the number of addresses from it through entry last. */
static void block(sf_reg_id_t first, sf_reg_id_t last, uint16_t *addr, uint16_t *qty)
{
    const sf_reg_t *a = sf_regmap_get(first), *b = sf_regmap_get(last);
    *addr = a->address;
    *qty = (uint16_t)(b->address + sf_regmap_span(b) - a->address);
}

static int queue_read(sf_master_t *m, size_t u, sf_reg_id_t first, sf_reg_id_t last,
                      req_kind_t kind)
{
    uint16_t addr, qty;
    block(first, last, &addr, &qty);
    req_t *r = new_slot(m, u);
    if (!r)
        return -1;
    make_read(r, MODBUS_FC_READ_INPUT_REGISTERS, addr, qty, kind);
    r->status_part = kind != K_PLAN_RD;
    return handle_of(m, u, r);
}

/* The detector data and occupancies can be read as one: the connected device's identity
 * is known, its detectors' occupancies end within one read of det_seq, and it has not
 * refused such a read on this connection. */
static bool detocc_joinable(const unit_t *un)
{
    const sf_reg_t *seq = sf_regmap_get(SF_R_DET_SEQ), *occ = sf_regmap_get(SF_R_DET_OCCUPANCY);
    return un->link == L_OPEN && un->ident_read && !un->detocc_refused &&
           un->st.n_det <= occ->count &&
           occ->address + un->st.n_det - seq->address <= MAX_READ_REGS;
}

/* The poll image can be read: the connected device's identity is known, says map version
 * 3 or later and a poll_image_len that its counts give (so both sides agree on the layout),
 * the device has not refused an image read on this connection and the caller did not ask
 * for the separate reads. Fills *l. */
static bool image_usable(const sf_master_t *m, const unit_t *un, sf_poll_image_layout_t *l)
{
    return !m->opts.no_image && un->link == L_OPEN && un->ident_read && !un->image_refused &&
           un->st.protocol_version >= 3 &&
           sf_regmap_image_layout(un->st.n_sg, un->st.n_det, l) == 0 &&
           l->len == un->st.poll_image_len;
}

/* Registers of the image, from offset 0, that hold what a poll of `what` reads: the status
 * and lamps, then the priority slots, then the detector sections (regmap.h's order). */
static uint16_t image_end(const sf_poll_image_layout_t *l, unsigned what)
{
    if (what & (SF_POLL_DETECTORS | SF_POLL_PRESENCE))
        return l->len;
    return (what & SF_POLL_PRIORITY) ? l->det : l->prio;
}

/* The poll's image read and its heartbeat write can be one FC 23 (map version 4): the
 * heartbeat goes after the reads (SF_POLL_STATUS_FIRST: an FC 23 returns the image from
 * before its write, which is what that order reads), the device may be written, its
 * identity says version 4, the image prefix fits one read, and the device has not refused
 * an FC 23 on this connection. */
static bool fc23_usable(const sf_master_t *m, const unit_t *un, bool img, uint16_t end,
                        bool hb_last, bool foreign)
{
    return img && hb_last && !foreign && !m->opts.no_fc23 && !un->fc23_refused &&
           un->st.protocol_version >= 4 && end >= 1 && end <= MODBUS_MAX_WR_READ_REGISTERS;
}

/* FC 23 (Modbus Application Protocol V1.1b3, section 6.17): write vals to the heartbeat,
 * read `end` registers of poll_image_rw. */
static void make_fc23(req_t *r, uint16_t hb, uint16_t end)
{
    uint16_t rd = sf_regmap_get(SF_R_POLL_IMAGE_RW)->address;
    r->raw[0] = MODBUS_TCP_SLAVE;
    r->raw[1] = MODBUS_FC_WRITE_AND_READ_REGISTERS;
    put16(r->raw + 2, rd);
    put16(r->raw + 4, end);
    put16(r->raw + 6, sf_regmap_get(SF_R_HEARTBEAT)->address);
    put16(r->raw + 8, 1);
    r->raw[10] = 2;
    put16(r->raw + 11, hb);
    r->raw_len = 13;
    r->addr = rd;
    r->qty = end;
    r->kind = K_IMAGE_RW;
    r->status_part = true;
    r->image_last = true;
}

int sf_master_queue_poll(sf_master_t *m, size_t u, uint16_t hb, unsigned what)
{
    if (!m || u >= m->n) {
        errno = EINVAL;
        return -1;
    }
    unit_t *un = &m->u[u];
    fresh(un);
    bool det = (what & SF_POLL_DETECTORS) != 0, prio = (what & SF_POLL_PRIORITY) != 0;
    bool pres = (what & SF_POLL_PRESENCE) != 0;
    sf_poll_image_layout_t l;
    bool img = image_usable(m, un, &l);
    uint16_t end = img ? image_end(&l, what) : 0;
    int n_img = (end + MAX_READ_REGS - 1) / MAX_READ_REGS;
    /* A connected device that reported a map version or id we do not know is only read,
     * never written (its identity is read again on every new connection). */
    bool foreign = un->st.connected && un->st.protocol_version != 0 && !un->st.identity_ok;
    bool hb_last = (what & SF_POLL_STATUS_FIRST) != 0;
    bool one = fc23_usable(m, un, img, end, hb_last, foreign);
    int need = one ? 1 : img ? 1 + n_img : 3 + (det ? 2 : 0) + (prio ? 1 : 0) + (pres ? 1 : 0);
    if (un->n_req + need > SF_MASTER_MAX_REQ + 1) {
        errno = ENOSPC;
        return -1;
    }
    if (one) {
        /* One request instead of two: the unit pays one recv and one send for the whole
         * poll (its cost is per request), and the image it returns is from before the
         * heartbeat, as the version 3 order reads it. */
        un->image_what = (uint8_t)(what & SF_POLL_ALL);
        un->image_end = end;
        req_t *r = new_slot(m, u);
        make_fc23(r, hb, end);
        un->has_status = true;
        return handle_of(m, u, r);
    }
    int h = foreign || hb_last ? -1 : sf_master_queue_write(m, u, SF_R_HEARTBEAT, 0, &hb, 1);
    if (img) {
        /* Everything the separate reads below would read, as copies in one block: one
         * reply instead of five, and the unit's cost is per reply (a send each). */
        uint16_t base = sf_regmap_get(SF_R_POLL_IMAGE)->address;
        un->image_what = (uint8_t)(what & SF_POLL_ALL);
        un->image_end = end;
        for (uint16_t off = 0; off < end; off = (uint16_t)(off + MAX_READ_REGS)) {
            uint16_t qty = (uint16_t)(end - off < MAX_READ_REGS ? end - off : MAX_READ_REGS);
            req_t *r = new_slot(m, u);
            make_read(r, MODBUS_FC_READ_INPUT_REGISTERS, (uint16_t)(base + off), qty, K_IMAGE);
            r->status_part = true;
            r->image_last = off + qty == end;
        }
    } else {
        queue_read(m, u, SF_R_CONTROL_MODE, SF_R_PHASE_STATUS_NEXT, K_STATUS);
        queue_read(m, u, SF_R_SG_LAMP, SF_R_SG_TIME_REMAINING, K_LAMPS);
    }
    if (!img && det && detocc_joinable(un)) {
        /* One read instead of two: every reply costs the device a send, and the map puts
         * det_seq (300) and the occupancies (400..) within one read's reach when the unit
         * has at most 25 detectors (it says how many in its identity). The span includes
         * 302..319 and 384..399, outside the map: a device that refuses that gets the two
         * separate reads from its next poll on (detocc_refused). */
        const sf_reg_t *occ = sf_regmap_get(SF_R_DET_OCCUPANCY);
        uint16_t from = sf_regmap_get(SF_R_DET_SEQ)->address;
        req_t *r = new_slot(m, u);
        make_read(r, MODBUS_FC_READ_INPUT_REGISTERS, from,
                  (uint16_t)(occ->address + un->st.n_det - from), K_DETOCC);
        r->status_part = true;
    } else if (!img && det) {
        queue_read(m, u, SF_R_DET_SEQ, SF_R_DET_VOLUME, K_DET);
        queue_read(m, u, SF_R_DET_OCCUPANCY, SF_R_DET_OCCUPANCY, K_OCC);
    }
    if (prio && !img)
        queue_read(m, u, SF_R_PRIO_STATUS_ID, SF_R_PRIO_STATUS_PHASE, K_PRIO);
    if (pres && !img) {
        req_t *r = new_slot(m, u);
        const sf_reg_t *e = sf_regmap_get(SF_R_DET_PRESENCE);
        make_read(r, MODBUS_FC_READ_DISCRETE_INPUTS, e->address, e->count, K_PRESENCE);
        r->status_part = true;
    }
    /* Last on the same connection: the unit takes requests in order, so the status above
     * is the one from before this heartbeat (which ends a fallback at once). */
    if (hb_last && !foreign)
        h = sf_master_queue_write(m, u, SF_R_HEARTBEAT, 0, &hb, 1);
    un->has_status = true;
    return h;
}

int sf_master_queue_plan(sf_master_t *m, size_t u, const sf_intersection_t *ix, const sf_plan_t *p)
{
    if (!m || u >= m->n || !ix || !p || p->id < 1 || p->id > SF_MAX_PLANS ||
        ix->n_phases > SF_MAX_PHASES) {
        errno = EINVAL;
        return -1;
    }
    fresh(&m->u[u]);
    if (m->u[u].n_req + 3 > SF_MASTER_MAX_REQ + 1) {
        errno = ENOSPC;
        return -1;
    }
    /* plan_dl_number .. plan_dl_commit in one request: the unit takes it atomically. */
    uint16_t addr, qty;
    block(SF_R_PLAN_DL_NUMBER, SF_R_PLAN_DL_COMMIT, &addr, &qty);
    uint16_t v[48] = {0};
    uint16_t split_at = (uint16_t)(sf_regmap_get(SF_R_PLAN_DL_SPLIT)->address - addr);
    uint16_t mode_at = (uint16_t)(sf_regmap_get(SF_R_PLAN_DL_SPLIT_MODE)->address - addr);
    uint16_t coord = 0;
    v[0] = p->id;
    v[1] = p->cycle_ds;
    v[2] = p->offset_ds;
    v[4] = (uint16_t)p->force_mode;
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        uint8_t no = ix->phases[i].id;
        if (no < 1 || no > SF_MAX_PHASES) {
            errno = EINVAL;
            return -1;
        }
        v[split_at + no - 1] = p->split_ds[i];
        v[mode_at + no - 1] = (uint16_t)p->split_mode[i];
        if (p->coord_phase_mask & (1u << i))
            coord = (uint16_t)(coord | (1u << (no - 1)));
    }
    v[3] = coord;
    v[qty - 1] = 1; /* plan_dl_commit */
    req_t *r = new_slot(m, u);
    make_write16(r, addr, v, qty);
    int h = handle_of(m, u, r);
    sf_master_queue_plan_read(m, u, p->id);
    return h;
}

int sf_master_queue_plan_read(sf_master_t *m, size_t u, uint8_t plan_no)
{
    if (!m || u >= m->n || plan_no < 1 || plan_no > SF_MAX_PLANS) {
        errno = EINVAL;
        return -1;
    }
    fresh(&m->u[u]);
    if (m->u[u].n_req + 2 > SF_MASTER_MAX_REQ + 1) {
        errno = ENOSPC;
        return -1;
    }
    uint16_t sel = plan_no;
    sf_master_queue_write(m, u, SF_R_PLAN_RD_SELECT, 0, &sel, 1);
    return queue_read(m, u, SF_R_PLAN_RD_NUMBER, SF_R_PLAN_DL_ERROR, K_PLAN_RD);
}

sf_mreq_outcome_t sf_master_outcome(const sf_master_t *m, size_t u, int handle)
{
    if (!m || u >= m->n || handle < 0 || handle >= SF_MASTER_MAX_REQ)
        return SF_MREQ_PENDING;
    return (sf_mreq_outcome_t)m->u[u].req[handle + 1].outcome;
}

int sf_master_exception(const sf_master_t *m, size_t u, int handle)
{
    if (sf_master_outcome(m, u, handle) != SF_MREQ_EXCEPTION)
        return 0;
    return m->u[u].req[handle + 1].exc;
}

/* ---- replies ---------------------------------------------------------------------- */

/* The status block: st12 = control_mode .. tod (100..111), ps10 = the phase status
 * bitmasks (140..149), from the status read or from the poll image's copies of them. */
static void apply_status(sf_unit_state_t *s, const uint16_t *st12, const uint16_t *ps10)
{
#define AT(id) st12[sf_regmap_get(id)->address - sf_regmap_get(SF_R_CONTROL_MODE)->address]
    s->mode = AT(SF_R_CONTROL_MODE);
    s->active_plan = AT(SF_R_ACTIVE_PLAN);
    s->pending_plan = AT(SF_R_PENDING_PLAN);
    s->cycle_timer_ds = AT(SF_R_CYCLE_TIMER);
    s->coord_in_sync = AT(SF_R_COORD_IN_SYNC);
    s->heartbeat_echo = AT(SF_R_HEARTBEAT_ECHO);
    s->local_fallback = AT(SF_R_LOCAL_FALLBACK);
    s->fault_code = AT(SF_R_FAULT_CODE);
    s->fault_latched = AT(SF_R_FAULT_LATCHED);
    s->heartbeat_age_ds = AT(SF_R_HEARTBEAT_AGE);
    s->tod_ds = ((uint32_t)(&AT(SF_R_TOD))[0] << 16) | (&AT(SF_R_TOD))[1];
#undef AT
    memcpy(s->phase_status, ps10, sizeof s->phase_status);
}

/* The detector block: seq and interval, then volumes and occupancies of n detectors (the
 * rest 0, as a device answers for detectors it does not have). */
static void apply_det(sf_unit_state_t *s, const uint16_t *seq2, const uint16_t *vol,
                      const uint16_t *occ, unsigned n)
{
    s->det_seq = seq2[0];
    s->det_interval_s = seq2[1];
    memset(s->det_volume, 0, sizeof s->det_volume);
    memset(s->det_occupancy, 0, sizeof s->det_occupancy);
    memcpy(s->det_volume, vol, n * sizeof *vol);
    memcpy(s->det_occupancy, occ, n * sizeof *occ);
}

/* The last part of a poll's image has come: fill the state from it as the separate reads
 * would have (only the parts the poll asked for), when every part came back and the
 * layout is still the one the reads were sized for. */
static void apply_image(unit_t *u)
{
    sf_unit_state_t *s = &u->st;
    sf_poll_image_layout_t l;
    if (!u->image_ok || sf_regmap_image_layout(s->n_sg, s->n_det, &l) != 0 ||
        image_end(&l, u->image_what) != u->image_end) {
        u->status_ok = false;
        return;
    }
    const uint16_t *img = u->image;
    apply_status(s, img + l.status, img + l.phase_status);
    for (unsigned i = 0; i < SF_MAX_SG; i++) {
        s->lamp[i] = i < s->n_sg ? (uint8_t)img[l.lamp + i] : 0;
        s->sg_remaining_ds[i] = i < s->n_sg ? img[l.remaining + i] : 0;
    }
    if (u->image_what & SF_POLL_PRIORITY) {
        memcpy(s->prio_id, img + l.prio, sizeof s->prio_id);
        memcpy(s->prio_state, img + l.prio + 8, sizeof s->prio_state);
        memcpy(s->prio_reason, img + l.prio + 16, sizeof s->prio_reason);
        memcpy(s->prio_phase, img + l.prio + 24, sizeof s->prio_phase);
    }
    if (u->image_what & SF_POLL_DETECTORS)
        apply_det(s, img + l.det, img + l.volume, img + l.occupancy, s->n_det);
    if (u->image_what & SF_POLL_PRESENCE) {
        uint64_t bits = 0;
        for (unsigned k = 0; k < l.n_presence; k++)
            bits |= (uint64_t)img[l.presence + k] << (16 * k);
        s->det_presence = bits;
    }
}

static void apply_read(unit_t *u, const req_t *r, const uint8_t *data)
{
    sf_unit_state_t *s = &u->st;
    if (r->kind == K_PRESENCE) { /* bits, LSB of the first byte = first input */
        unsigned n = r->qty < 64 ? r->qty : 64;
        uint64_t bits = 0;
        for (unsigned i = 0; i < (n + 7) / 8; i++) /* a byte at a time */
            bits |= (uint64_t)data[i] << (8 * i);
        s->det_presence = n < 64 ? bits & (((uint64_t)1 << n) - 1) : bits;
        return;
    }
    /* Bounds in locals: read through r in the loop condition, they would be reloaded for
     * every register (this loop is most of the master's own work in a poll). */
    uint16_t v[128];
    unsigned n = r->qty < 128 ? r->qty : 128;
    for (unsigned i = 0; i < n; i++)
        v[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
#define AT(id)  v[sf_regmap_get(id)->address - r->addr]
#define PTR(id) (&v[sf_regmap_get(id)->address - r->addr])
    switch ((req_kind_t)r->kind) {
    case K_IDENT: {
        u->ident_read = true;
        s->protocol_version = AT(SF_R_PROTOCOL_VERSION);
        s->n_phases = AT(SF_R_N_PHASES);
        s->n_rings = AT(SF_R_N_RINGS);
        s->n_sg = AT(SF_R_N_SG);
        s->n_det = AT(SF_R_N_DET);
        s->n_plans = AT(SF_R_N_PLANS);
        s->poll_image_len = AT(SF_R_POLL_IMAGE_LEN); /* 0 at a version 1 or 2 unit (a gap) */
        const uint16_t *id = PTR(SF_R_UNIT_ID);
        for (int i = 0; i < 16; i++) {
            s->unit_id[2 * i] = (char)(id[i] >> 8);
            s->unit_id[2 * i + 1] = (char)(id[i] & 0xff);
        }
        s->unit_id[32] = 0;
        /* The map is append-only and the controller needs only version 1 entries (the
         * poll image of version 3 is read when there): a version 1 unit (e.g. a real unit
         * in a HIL run) is as good as a later one. */
        s->identity_ok = s->protocol_version >= 1 && s->protocol_version <= SF_REGMAP_VERSION &&
                         (u->expect_id[0] == 0 || strcmp(u->expect_id, s->unit_id) == 0);
        break;
    }
    case K_STATUS:
        apply_status(s, PTR(SF_R_CONTROL_MODE), PTR(SF_R_PHASE_STATUS_REDS));
        break;
    case K_IMAGE:      /* a part of the image; the state is filled from the whole at the last */
    case K_IMAGE_RW: { /* the whole image (its holding copy) in the FC 23 reply */
        sf_reg_id_t base = r->kind == K_IMAGE_RW ? SF_R_POLL_IMAGE_RW : SF_R_POLL_IMAGE;
        uint16_t off = (uint16_t)(r->addr - sf_regmap_get(base)->address);
        if (off == 0)
            u->image_ok = true; /* the first part: a part refused after it clears this */
        if (off + n <= SF_POLL_IMAGE_MAX)
            memcpy(u->image + off, v, n * sizeof v[0]);
        if (r->image_last)
            apply_image(u);
        break;
    }
    case K_LAMPS: { /* addresses looked up once, not per signal group */
        const uint16_t *lamp = PTR(SF_R_SG_LAMP), *left = PTR(SF_R_SG_TIME_REMAINING);
        for (int i = 0; i < SF_MAX_SG; i++) {
            s->lamp[i] = (uint8_t)lamp[i];
            s->sg_remaining_ds[i] = left[i];
        }
        break;
    }
    case K_DET:
        s->det_seq = AT(SF_R_DET_SEQ);
        s->det_interval_s = AT(SF_R_DET_INTERVAL);
        memcpy(s->det_volume, PTR(SF_R_DET_VOLUME), sizeof s->det_volume);
        break;
    case K_OCC:
        memcpy(s->det_occupancy, PTR(SF_R_DET_OCCUPANCY), sizeof s->det_occupancy);
        break;
    case K_DETOCC: { /* every volume, then the occupancies of the unit's detectors */
        s->det_seq = AT(SF_R_DET_SEQ);
        s->det_interval_s = AT(SF_R_DET_INTERVAL);
        memcpy(s->det_volume, PTR(SF_R_DET_VOLUME), sizeof s->det_volume);
        uint16_t at = (uint16_t)(sf_regmap_get(SF_R_DET_OCCUPANCY)->address - r->addr);
        memset(s->det_occupancy, 0, sizeof s->det_occupancy);
        memcpy(s->det_occupancy, &v[at], (size_t)(r->qty - at) * sizeof v[0]);
        break;
    }
    case K_PRIO:
        memcpy(s->prio_id, PTR(SF_R_PRIO_STATUS_ID), sizeof s->prio_id);
        memcpy(s->prio_state, PTR(SF_R_PRIO_STATUS_STATE), sizeof s->prio_state);
        memcpy(s->prio_reason, PTR(SF_R_PRIO_STATUS_REASON), sizeof s->prio_reason);
        memcpy(s->prio_phase, PTR(SF_R_PRIO_STATUS_PHASE), sizeof s->prio_phase);
        break;
    case K_PLAN_RD: {
        sf_plan_t *p = &s->plan_rd;
        memset(p, 0, sizeof *p);
        p->id = (uint8_t)AT(SF_R_PLAN_RD_NUMBER);
        p->cycle_ds = AT(SF_R_PLAN_RD_CYCLE);
        p->offset_ds = AT(SF_R_PLAN_RD_OFFSET);
        p->coord_phase_mask = AT(SF_R_PLAN_RD_COORD_PHASES);
        p->force_mode = AT(SF_R_PLAN_RD_FORCE_MODE) ? SF_FORCE_FLOATING : SF_FORCE_FIXED;
        const uint16_t *split = PTR(SF_R_PLAN_RD_SPLIT), *mode = PTR(SF_R_PLAN_RD_SPLIT_MODE);
        for (int i = 0; i < SF_MAX_PHASES; i++) {
            p->split_ds[i] = split[i];
            uint16_t sm = mode[i];
            p->split_mode[i] = sm <= SF_SPLIT_OMIT ? (sf_split_mode_t)sm : SF_SPLIT_NONE;
        }
        s->plan_dl_status = AT(SF_R_PLAN_DL_STATUS);
        s->plan_dl_error = AT(SF_R_PLAN_DL_ERROR);
        break;
    }
    case K_WRITE:
    case K_PRESENCE:
        break;
    }
#undef AT
#undef PTR
}

/* Check one complete frame against the request it answers and apply it. 0, or -1 when the
 * frame does not belong to that request (the stream is no longer trusted). */
static int take_reply(sf_master_t *m, unit_t *u, const uint8_t *f, uint16_t len)
{
    req_t *r = &u->req[u->next_reply];
    uint16_t tid = get16(f), proto = get16(f + 2);
    const uint8_t *pdu = f + MBAP_LEN;
    uint16_t pdu_len = (uint16_t)(len - MBAP_LEN);
    uint8_t fc = r->raw[1];
    if (tid != r->tid || proto != 0 || pdu_len < 2)
        return -1;
    if (pdu[0] == (fc | 0x80)) {
        if (pdu_len != 2)
            return -1;
        r->outcome = SF_MREQ_EXCEPTION;
        r->exc = pdu[1];
        if (r->kind == K_DETOCC)
            u->detocc_refused = true;
        if (r->kind == K_IMAGE) { /* e.g. a version 3 device without the image: 02 */
            u->image_refused = true;
            u->image_ok = false;
        }
        if (r->kind == K_IMAGE_RW) { /* no FC 23 (01), no poll_image_rw (02), ...: the
                                        version 3 read and write from the next poll */
            u->fc23_refused = true;
            u->image_ok = false;
        }
        u->st.n_exceptions++;
        m->stats.exceptions++;
        if (r->status_part)
            u->status_ok = false;
    } else if (pdu[0] != fc) {
        return -1;
    } else if (fc == MODBUS_FC_WRITE_MULTIPLE_REGISTERS || fc == MODBUS_FC_WRITE_MULTIPLE_COILS) {
        if (pdu_len != 5 || get16(pdu + 1) != r->addr || get16(pdu + 3) != r->qty)
            return -1;
        r->outcome = SF_MREQ_OK;
    } else {
        uint16_t want; /* byte count: registers x 2, or bits rounded up to bytes */
        if (fc == MODBUS_FC_READ_INPUT_REGISTERS || fc == MODBUS_FC_READ_HOLDING_REGISTERS ||
            fc == MODBUS_FC_WRITE_AND_READ_REGISTERS)
            want = (uint16_t)(2u * r->qty);
        else
            want = (uint16_t)((r->qty + 7u) / 8u);
        if (pdu[1] != want || pdu_len != 2 + want)
            return -1;
        r->outcome = SF_MREQ_OK;
        apply_read(u, r, pdu + 2);
    }
    m->stats.replies++;
    u->next_reply++;
    return 0;
}

static void close_unit(unit_t *u)
{
    uint64_t r;
    uint32_t srtt;
    if (tcp_figures(u->fd, &r, &srtt))
        u->retrans_closed += r;
    if (u->mb)
        modbus_close(u->mb);
    u->fd = -1;
    u->link = L_NONE;
    u->rx_len = 0;
    u->late_n = 0;
    u->ident_read = false;
    u->st.connected = false;
}

/* The round failed for u: every request not answered is missed; the connection closes. */
static void fail_unit(unit_t *u)
{
    for (uint8_t i = u->next_reply; i < u->n_req; i++)
        if (u->req[i].outcome == SF_MREQ_PENDING)
            u->req[i].outcome = SF_MREQ_MISSED;
    u->failed = true;
    u->phase = C_DONE;
    close_unit(u);
}

static bool in_round(const unit_t *u)
{
    return u->phase == C_CONNECTING || u->phase == C_WAITING;
}

/* The connection is gone or cannot be trusted: the round fails if u is in one. */
static void drop_unit(unit_t *u)
{
    if (in_round(u))
        fail_unit(u);
    else
        close_unit(u);
}

/* Parse every complete frame buffered: first the replies still owed for the requests of
 * missed rounds (their round is over: each is matched by transaction id and dropped),
 * then this round's, each checked against its request. */
static void parse_rx(sf_master_t *m, unit_t *u)
{
    uint16_t off = 0;
    while (u->rx_len - off >= MBAP_LEN) {
        const uint8_t *f = u->rx + off;
        uint16_t mb_len = get16(f + 4);
        if (mb_len < 2 || mb_len > 254)
            goto bad;
        uint16_t flen = (uint16_t)(6 + mb_len);
        if (u->rx_len - off < flen)
            break;
        if (u->late_n > 0) {
            if (get16(f) != u->late_tid || get16(f + 2) != 0)
                goto bad;
            u->late_tid = (uint16_t)(u->late_tid + 1);
            u->late_n--;
        } else if (u->phase != C_WAITING || u->next_reply >= u->n_req ||
                   take_reply(m, u, f, flen) < 0) {
            goto bad; /* not a reply to anything outstanding */
        }
        off = (uint16_t)(off + flen);
    }
    memmove(u->rx, u->rx + off, (size_t)(u->rx_len - off));
    u->rx_len = (uint16_t)(u->rx_len - off);
    if (u->phase == C_WAITING && u->next_reply >= u->n_req) {
        u->phase = C_DONE;
        rtt_add(&u->st.rtt, mono_us() - u->sent_us);
    }
    return;
bad:
    m->stats.protocol_errors++;
    drop_unit(u);
}

/* Read what is there (one recv: the replies of a round come in one or a few segments)
 * and parse every complete frame. */
static void on_readable(sf_master_t *m, unit_t *u)
{
    ssize_t got;
    do
        got = recv(u->fd, u->rx + u->rx_len, RX_CAP - u->rx_len, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (got > 0) {
        u->rx_len = (uint16_t)(u->rx_len + got);
        parse_rx(m, u);
        return; /* an end of stream behind the data is seen at the next wake-up */
    }
    drop_unit(u); /* closed by the peer, or a socket error */
}

static void send_all(sf_master_t *m, unit_t *u)
{
    /* A new connection may be a new device: its identity is read first, and read again
     * at the next round when that reply was missed. */
    u->first = u->ident_read ? 1 : SLOT_IDENT;
    if (!u->ident_read) {
        uint16_t addr, qty;
        block(SF_R_PROTOCOL_VERSION, SF_R_UNIT_ID, &addr, &qty);
        make_read(&u->req[SLOT_IDENT], MODBUS_FC_READ_INPUT_REGISTERS, addr, qty, K_IDENT);
    }
    /* Every request of the round in one buffer and one send(): one segment per unit
     * instead of one per request. Each ADU is MBAP (transaction id, protocol 0, length,
     * unit id) + PDU, Modbus Messaging on TCP/IP Implementation Guide V1.0b section 3.1.3. */
    uint8_t tx[(SF_MASTER_MAX_REQ + 1) * (REQ_RAW + MBAP_LEN)];
    size_t len = 0;
    for (uint8_t i = u->first; i < u->n_req; i++) {
        req_t *r = &u->req[i];
        r->outcome = SF_MREQ_PENDING;
        u->tid = (uint16_t)(u->tid + 1);
        r->tid = u->tid;
        put16(tx + len, r->tid);
        put16(tx + len + 2, 0);
        put16(tx + len + 4, r->raw_len);
        memcpy(tx + len + 6, r->raw, r->raw_len);
        len += 6 + (size_t)r->raw_len;
    }
    u->next_reply = u->first;
    u->sent_us = mono_us();
    ssize_t sent;
    do
        sent = send(u->fd, tx, len, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    /* The send buffer of a connection far exceeds one round (at most 1.8 kB) plus what
     * the device still owes, so a short write means a broken link: the poll is missed. */
    if (sent != (ssize_t)len) {
        fail_unit(u);
        return;
    }
    m->stats.requests += (uint64_t)(u->n_req - u->first);
    u->phase = C_WAITING;
}

/* u's non-blocking connect has completed. */
static void connected(sf_master_t *m, unit_t *u)
{
    int one = 1;
    setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(u - m->u)};
    if (epoll_ctl(m->ep, EPOLL_CTL_MOD, u->fd, &ev) < 0) {
        drop_unit(u);
        return;
    }
    u->link = L_OPEN;
    u->ident_read = false;
    u->detocc_refused = false; /* perhaps another device */
    u->image_refused = false;
    u->fc23_refused = false;
    u->late_n = 0;
    u->st.connected = true;
    u->st.n_connects++;
    m->stats.connects++;
    /* In a round: its requests go now. Between rounds they wait for the next one. */
    if (u->phase == C_CONNECTING)
        send_all(m, u);
}

/* Start a non-blocking connect; it may take several rounds (see the round's end). */
static void start_connect(sf_master_t *m, unit_t *u)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        m->stats.connect_failures++;
        fail_unit(u);
        return;
    }
    /* The context owns the socket from here: modbus_close() closes it (and closing
     * removes it from the epoll set). */
    modbus_set_socket(u->mb, fd);
    u->fd = fd;
    u->link = L_CONNECTING;
    u->connect_deadline_ms = mono_ms() + m->opts.connect_timeout_ms;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(u - m->u)};
    if (epoll_ctl(m->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        m->stats.connect_failures++;
        fail_unit(u);
        return;
    }
    if (connect(fd, (const struct sockaddr *)&u->sa, sizeof u->sa) == 0) {
        connected(m, u);
    } else if (errno != EINPROGRESS) {
        m->stats.connect_failures++;
        fail_unit(u);
    }
}

/* Put u into the round: send its requests, or wait for its connection. */
static void start(sf_master_t *m, unit_t *u)
{
    u->failed = false;
    u->status_ok = true;
    u->first = 1;
    u->next_reply = 1;
    for (uint8_t k = 1; k < u->n_req; k++)
        u->req[k].outcome = SF_MREQ_PENDING;
    if (u->link == L_OPEN) {
        send_all(m, u);
        return;
    }
    u->phase = C_CONNECTING;
    if (u->link == L_NONE)
        start_connect(m, u);
}

/* The connect of u completed, successfully or not (EPOLLOUT). */
static void on_writable(sf_master_t *m, unit_t *u)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        m->stats.connect_failures++;
        drop_unit(u);
        return;
    }
    connected(m, u);
}

/* At the round's end u still waits for replies: they are missed, and owed. The connection
 * stays: the replies are dropped when they come, so a device that answers late (or a host
 * still accepting hundreds of new connections) is not thrown back to connecting, and its
 * work wasted, every round. The link is dropped once the unit goes offline (see run). */
static void owe(unit_t *u)
{
    if (u->late_n == 0)
        u->late_tid = u->req[u->next_reply].tid;
    u->late_n = (uint16_t)(u->late_n + (u->n_req - u->next_reply));
    for (uint8_t i = u->next_reply; i < u->n_req; i++)
        u->req[i].outcome = SF_MREQ_MISSED;
    u->next_reply = u->n_req;
    u->failed = true;
    u->phase = C_DONE;
}

int sf_master_run(sf_master_t *m, int64_t now_ds)
{
    if (!m) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = mono_ms() + m->opts.round_timeout_ms;
    m->stats.rounds++;
    size_t active = 0;
    for (size_t i = 0; i < m->n; i++) {
        unit_t *u = &m->u[i];
        u->phase = C_IDLE;
        if (u->n_req <= 1 || u->ran)
            continue;
        if (!sf_health_due(&u->st.health, now_ds)) {
            for (uint8_t k = 1; k < u->n_req; k++)
                u->req[k].outcome = SF_MREQ_SKIPPED;
            continue;
        }
        start(m, u);
        active += in_round(u);
    }
    int rc = 0;
    /* Events of units outside the round (a connect completing, late replies) are served
     * too while the round lasts. */
    while (active > 0) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        int k = epoll_wait(m->ep, m->evs, (int)m->n, (int)left);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (int j = 0; j < k; j++) {
            unit_t *u = &m->u[m->evs[j].data.u32];
            bool was = in_round(u);
            if (u->link == L_CONNECTING)
                on_writable(m, u);
            else if (u->link == L_OPEN)
                on_readable(m, u);
            if (was && !in_round(u))
                active--;
        }
    }
    int e = errno;
    int64_t end = mono_ms();
    int complete = 0;
    for (size_t i = 0; i < m->n; i++) {
        unit_t *u = &m->u[i];
        if (u->n_req <= 1 || u->ran)
            goto reset;
        if (u->phase == C_IDLE) { /* offline, backing off: skipped */
            u->ran = true;
            goto reset;
        }
        if (u->phase == C_CONNECTING) {
            if (end < u->connect_deadline_ms) {
                /* Still connecting, and not yet due to give up: nothing was sent, so
                 * this is no missed poll; the connect goes on into the next round. */
                for (uint8_t k = 1; k < u->n_req; k++)
                    u->req[k].outcome = SF_MREQ_SKIPPED;
                m->stats.connect_waits++;
                u->ran = true;
                goto reset;
            }
            m->stats.connect_failures++;
            fail_unit(u);
        } else if (u->phase == C_WAITING) {
            owe(u);
        }
        if (u->failed) {
            m->stats.missed++;
            sf_health_miss(&u->st.health, now_ds);
            /* Offline (or a failed retry while offline): reconnect with back-off. A unit
             * that owes more than a few rounds of replies is not keeping up either. */
            if (u->link != L_NONE &&
                (u->st.health.state == SF_LINK_OFFLINE || u->late_n > LATE_CAP))
                close_unit(u);
        } else {
            complete++;
            sf_health_reply(&u->st.health, now_ds);
            if (u->has_status && u->status_ok) {
                u->st.n_status++;
                u->st.status_ds = now_ds;
            }
        }
        /* Outcomes stay readable until the next queueing, which starts a new queue. */
        u->ran = true;
    reset:
        u->phase = C_IDLE;
    }
    if (rc < 0) {
        errno = e;
        return -1;
    }
    return complete;
}

bool sf_master_plan_equal(const sf_intersection_t *ix, const sf_plan_t *sent, const sf_plan_t *read)
{
    if (!ix || !sent || !read)
        return false;
    if (sent->id != read->id || sent->cycle_ds != read->cycle_ds ||
        sent->offset_ds != read->offset_ds || sent->force_mode != read->force_mode)
        return false;
    uint16_t coord = 0;
    for (uint8_t i = 0; i < ix->n_phases && i < SF_MAX_PHASES; i++) {
        uint8_t no = ix->phases[i].id;
        if (no < 1 || no > SF_MAX_PHASES)
            return false;
        if (sent->split_ds[i] != read->split_ds[no - 1] ||
            sent->split_mode[i] != read->split_mode[no - 1])
            return false;
        if (sent->coord_phase_mask & (1u << i))
            coord = (uint16_t)(coord | (1u << (no - 1)));
    }
    return coord == read->coord_phase_mask;
}

int sf_master_set_round_timeout(sf_master_t *m, int round_timeout_ms)
{
    if (!m || round_timeout_ms <= 0) {
        errno = EINVAL;
        return -1;
    }
    m->opts.round_timeout_ms = round_timeout_ms;
    if (m->opts.connect_timeout_ms < round_timeout_ms)
        m->opts.connect_timeout_ms = round_timeout_ms;
    return 0;
}

int sf_master_sweep(sf_master_t *m, int64_t now_ds, uint16_t hb, unsigned what)
{
    if (!m) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < m->n; i++)
        sf_master_queue_poll(m, i, hb, what);
    return sf_master_run(m, now_ds);
}
