/* proto/lockstep.c — clock master and participants over the bus (see lockstep.h). */
#include "lockstep.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Milliseconds for zmq_poll until an absolute deadline, rounded up so that a wait never
 * ends before it (0 once it has passed). */
static long ms_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - now_ns();
    if (left <= 0)
        return 0;
    return (long)((left + NS_PER_MS - 1) / NS_PER_MS);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
set_err(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SF_LOCKSTEP_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* Make a PUB socket take in the subscriptions that have reached it. libzmq reads them
 * lazily and throttles that work on send (at most about once a millisecond), so a
 * subscription that arrived just before a send may not apply to it; asking for
 * ZMQ_EVENTS processes pending commands unthrottled. The lockstep relies on it: a
 * participant's "step" subscription is in the clock's pipe before its acknowledgement
 * reaches the clock, and must be applied before Step(start_k) goes out. */
static void apply_subscriptions(void *pub)
{
    int events = 0;
    size_t len = sizeof events;
    zmq_getsockopt(pub, ZMQ_EVENTS, &events, &len);
}

/* ---- clock master ---------------------------------------------------------------- */

typedef struct {
    char name[SF_BUS_NAME_MAX + 1]; /* participant name */
    uint64_t instance;              /* Hello.instance of the registered object */
    uint32_t pid;                   /* its process id, for messages */
    bool lockstep;                  /* waited for every step */
    uint8_t stage;                  /* lockstep stage 0..SF_LOCKSTEP_STAGES-1 */
    bool acked;                     /* welcomed and acknowledged: registered */
    bool left;                      /* said bye */
    bool done_now;                  /* Done(cur_k) counted */
    uint64_t last_done_k;           /* last step whose Done was counted */
    uint64_t n_done;                /* Done(k) counted */
    char reason[96];                /* its Bye reason */
} peer_t;

struct sf_clock_t {
    void *pub;                             /* publishes step, welcome, bye, data */
    void *sub;                             /* hello, done, bye + caller's topics */
    int tfd;                               /* timerfd, CLOCK_MONOTONIC, real time */
    char name[SF_BUS_NAME_MAX + 1];        /* the clock's name */
    char scenario[64];                     /* sent in Welcome */
    uint64_t seed;                         /* sent in Welcome */
    uint32_t step_ds;                      /* 0.1 s */
    uint64_t start_k;                      /* first step */
    uint32_t start_tod_ds;                 /* time of day at k = 0, 0.1 s */
    size_t n_expected;                     /* lockstep participants to wait for */
    char (*expected)[SF_BUS_NAME_MAX + 1]; /* n_expected names, or NULL */
    double register_timeout_s;             /* s */
    double step_timeout_s;                 /* s */
    bool realtime;                         /* pace to the wall clock */
    double speed;                          /* real-time factor */
    uint64_t k;                            /* next step to run */
    bool started;                          /* registration complete */
    bool in_step;                          /* waiting for Done(cur_k) */
    uint8_t cur_stage;                     /* stage of cur_k being waited for */
    unsigned skip_mask;                    /* stages skipped in the next step (bit = stage) */
    uint64_t cur_k;                        /* step being waited for */
    size_t n_peers;
    peer_t peers[SF_LOCKSTEP_MAX_PEERS];
    sf_clock_stats_t stats;
    int64_t anchor_ns; /* real time: deadline of anchor_k */
    uint64_t anchor_k;
    double *jitter_us; /* lateness per real-time step */
    size_t n_jitter, cap_jitter;
    char err[SF_LOCKSTEP_ERR_MAX]; /* last error */
};

static peer_t *find_peer(sf_clock_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (strcmp(self->peers[i].name, name) == 0)
            return &self->peers[i];
    return NULL;
}

static bool is_expected(const sf_clock_t *self, const char *name)
{
    if (!self->expected)
        return true;
    for (size_t i = 0; i < self->n_expected; i++)
        if (strcmp(self->expected[i], name) == 0)
            return true;
    return false;
}

static size_t lockstep_peers(const sf_clock_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_peers; i++)
        n += self->peers[i].lockstep;
    return n;
}

sf_clock_t *sf_clock_new(void *zctx, const char *pub_ep, const char *sub_ep,
                         const sf_clock_config_t *cfg)
{
    if (!zctx || !pub_ep || !sub_ep || !cfg || !cfg->name || strlen(cfg->name) > SF_BUS_NAME_MAX ||
        cfg->step_ds == 0 || !(cfg->register_timeout_s > 0) || !(cfg->step_timeout_s > 0) ||
        (cfg->realtime && !(cfg->speed_factor > 0 && isfinite(cfg->speed_factor))) ||
        cfg->n_expected > SF_LOCKSTEP_MAX_PEERS || (cfg->n_topics && !cfg->topics)) {
        errno = EINVAL;
        return NULL;
    }
    sf_clock_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    int err;
    self->tfd = -1;
    snprintf(self->name, sizeof self->name, "%s", cfg->name);
    snprintf(self->scenario, sizeof self->scenario, "%s", cfg->scenario ? cfg->scenario : "");
    self->seed = cfg->seed;
    self->step_ds = cfg->step_ds;
    self->start_k = self->k = cfg->start_k;
    self->start_tod_ds = cfg->start_tod_ds;
    self->n_expected = cfg->n_expected;
    self->register_timeout_s = cfg->register_timeout_s;
    self->step_timeout_s = cfg->step_timeout_s;
    self->realtime = cfg->realtime != 0;
    self->speed = cfg->realtime ? cfg->speed_factor : 1.0;
    if (cfg->expected && cfg->n_expected) {
        self->expected = calloc(cfg->n_expected, sizeof *self->expected);
        if (!self->expected)
            goto fail;
        for (size_t i = 0; i < cfg->n_expected; i++) {
            if (!cfg->expected[i] || strlen(cfg->expected[i]) > SF_BUS_NAME_MAX) {
                errno = EINVAL;
                goto fail;
            }
            snprintf(self->expected[i], sizeof self->expected[i], "%s", cfg->expected[i]);
        }
    }
    /* Subscriptions in this order: the caller's data topics, then done and bye, then hello
     * last, so the first Hello received proves the others are in place (bus.h). */
    const char *topics[40];
    size_t n = 0;
    if (cfg->n_topics > 36) {
        errno = EINVAL;
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_topics; i++)
        topics[n++] = cfg->topics[i];
    topics[n++] = "done";
    topics[n++] = "bye";
    topics[n++] = "hello";
    self->pub = sf_bus_pub_new_secure(zctx, pub_ep, cfg->security);
    if (!self->pub)
        goto fail;
    self->sub = sf_bus_sub_new_secure(zctx, sub_ep, topics, n, 0, cfg->security);
    if (!self->sub)
        goto fail;
    if (self->realtime) {
        self->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (self->tfd < 0)
            goto fail;
    }
    return self;
fail:
    err = errno;
    sf_clock_destroy(&self);
    errno = err;
    return NULL;
}

void sf_clock_destroy(sf_clock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_clock_t *self = *self_p;
    sf_bus_close(&self->pub);
    sf_bus_close(&self->sub);
    if (self->tfd >= 0)
        close(self->tfd);
    free(self->expected);
    free(self->jitter_us);
    free(self);
    *self_p = NULL;
}

static int send_welcome(sf_clock_t *self, const char *name, uint64_t instance, const char *refused)
{
    Sfbus__Welcome w = SFBUS__WELCOME__INIT;
    w.name = (char *)name;
    w.instance = instance;
    w.step_ds = self->step_ds;
    w.start_k = self->started ? self->k : self->start_k;
    w.scenario = self->scenario;
    w.seed = self->seed;
    w.refused = (char *)(refused ? refused : "");
    w.clock = self->name;
    return sf_bus_send(self->pub, &w.base);
}

static void refuse(sf_clock_t *self, const Sfbus__Hello *h, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void refuse(sf_clock_t *self, const Sfbus__Hello *h, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    self->stats.refused++;
    send_welcome(self, h->name, h->instance, reason);
}

static void handle_hello(sf_clock_t *self, const Sfbus__Hello *h)
{
    peer_t *p = find_peer(self, h->name);
    if (p && p->instance != h->instance) {
        /* A departed viewer may come back as a new object under its old name. */
        if (p->left && !p->lockstep) {
            p->instance = h->instance;
            p->pid = h->pid;
            p->left = false;
            p->acked = false;
        } else {
            refuse(self, h, "name '%s' is already registered (pid %u)", h->name, p->pid);
            return;
        }
    }
    if (p) {
        if (h->welcomed)
            p->acked = true;
        else
            send_welcome(self, h->name, h->instance, NULL); /* it was lost: again */
        return;
    }
    if (h->lockstep) {
        if (h->stage >= SF_LOCKSTEP_STAGES) {
            refuse(self, h, "stage %u: must be 0..%d", h->stage, SF_LOCKSTEP_STAGES - 1);
            return;
        }
        if (self->started) {
            refuse(self, h,
                   "the run has started (step %llu); lockstep participants must register "
                   "before it",
                   (unsigned long long)self->k);
            return;
        }
        if (!is_expected(self, h->name)) {
            refuse(self, h, "'%s' is not an expected lockstep participant", h->name);
            return;
        }
        if (lockstep_peers(self) >= self->n_expected) {
            refuse(self, h, "all %zu lockstep participants are registered", self->n_expected);
            return;
        }
    }
    if (self->n_peers == SF_LOCKSTEP_MAX_PEERS) {
        refuse(self, h, "too many participants (%d)", SF_LOCKSTEP_MAX_PEERS);
        return;
    }
    p = &self->peers[self->n_peers++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", h->name);
    p->instance = h->instance;
    p->pid = h->pid;
    p->lockstep = h->lockstep;
    p->stage = (uint8_t)h->stage;
    p->acked = h->welcomed; /* a repeated acknowledgement after a clock restart */
    send_welcome(self, h->name, h->instance, NULL);
}

static void handle_done(sf_clock_t *self, const Sfbus__Done *d)
{
    peer_t *p = find_peer(self, d->name);
    if (!p || !p->lockstep || !p->acked) {
        self->stats.unknown++;
        return;
    }
    if (self->in_step && d->k == self->cur_k) {
        if (p->done_now) {
            self->stats.duplicates++;
            return;
        }
        p->done_now = true;
        p->last_done_k = d->k;
        p->n_done++;
        self->stats.dones++;
        return;
    }
    if (p->n_done && d->k == p->last_done_k)
        self->stats.duplicates++;
    else
        self->stats.stale++;
}

static void handle_bye(sf_clock_t *self, const Sfbus__Bye *b)
{
    if (strcmp(b->name, self->name) == 0)
        return; /* our own, or another clock's: not a participant leaving */
    peer_t *p = find_peer(self, b->name);
    if (!p) {
        self->stats.unknown++;
        return;
    }
    p->left = true;
    snprintf(p->reason, sizeof p->reason, "%s", b->reason ? b->reason : "");
}

/* Receive and dispatch everything waiting on the clock's SUB socket. Returns 0, or -1
 * when on_msg aborted (errno ECANCELED) or the socket failed. */
static int drain_clock(sf_clock_t *self, sf_lockstep_msg_fn on_msg, void *arg)
{
    for (;;) {
        sf_bus_rx_t rx;
        if (sf_bus_recv(self->sub, &rx, ZMQ_DONTWAIT, NULL, 0) != 0) {
            if (errno == EAGAIN)
                return 0;
            if (errno == ETERM || errno == ENOTSOCK || errno == EINTR)
                return -1;
            self->stats.bad++; /* a bad message is dropped; it changes nothing */
            continue;
        }
        int rc = 0;
        switch (rx.type) {
        case SF_BUS_HELLO:
            handle_hello(self, (const Sfbus__Hello *)(void *)rx.msg);
            break;
        case SF_BUS_DONE:
            handle_done(self, (const Sfbus__Done *)(void *)rx.msg);
            break;
        case SF_BUS_BYE:
            handle_bye(self, (const Sfbus__Bye *)(void *)rx.msg);
            break;
        default:
            if (on_msg && on_msg(arg, &rx) != 0)
                rc = -1;
            break;
        }
        sf_bus_rx_clear(&rx);
        if (rc != 0) {
            set_err(self->err, "lockstep: stopped by the message handler");
            errno = ECANCELED;
            return -1;
        }
    }
}

/* Wait on the SUB socket (and the timer when armed) until deadline_ns; returns 1 if the
 * timer fired, 0 on a message or the deadline, -1 on error. */
static int wait_once(sf_clock_t *self, int64_t deadline_ns, bool use_timer)
{
    zmq_pollitem_t items[2] = {{self->sub, 0, ZMQ_POLLIN, 0}, {NULL, self->tfd, ZMQ_POLLIN, 0}};
    long timeout = use_timer ? -1 : ms_until(deadline_ns);
    int rc = zmq_poll(items, use_timer ? 2 : 1, timeout);
    if (rc < 0)
        return -1;
    if (use_timer && (items[1].revents & ZMQ_POLLIN)) {
        uint64_t expirations;
        if (read(self->tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
            return -1;
        return 1;
    }
    return 0;
}

static bool registration_complete(const sf_clock_t *self)
{
    size_t acked = 0;
    for (size_t i = 0; i < self->n_peers; i++)
        acked += self->peers[i].lockstep && self->peers[i].acked;
    return acked >= self->n_expected;
}

/* "'a', 'b' (welcomed, no acknowledgement)" for every expected name not registered. */
static void describe_missing(const sf_clock_t *self, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; self->expected && i < self->n_expected; i++) {
        const peer_t *p = find_peer((sf_clock_t *)self, self->expected[i]);
        if (p && p->acked)
            continue;
        int n = snprintf(buf + len, cap - len, "%s'%s'%s", len ? ", " : "", self->expected[i],
                         p ? " (welcomed, no acknowledgement)" : "");
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}

int sf_clock_register(sf_clock_t *self, sf_lockstep_msg_fn on_msg, void *arg)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = now_ns() + (int64_t)(self->register_timeout_s * (double)NS_PER_S);
    int64_t next_rewelcome = now_ns() + SF_LOCKSTEP_RETRY_MS * NS_PER_MS;
    self->err[0] = '\0';
    for (;;) {
        if (drain_clock(self, on_msg, arg) != 0)
            return -1;
        if (registration_complete(self))
            break;
        if (now_ns() >= deadline) {
            char missing[SF_LOCKSTEP_ERR_MAX / 2];
            if (self->expected) {
                describe_missing(self, missing, sizeof missing);
                set_err(self->err, "lockstep: registration timed out after %.1f s: missing %s",
                        self->register_timeout_s, missing);
            } else {
                size_t len = 0, acked = 0;
                missing[0] = '\0';
                for (size_t i = 0; i < self->n_peers; i++) {
                    const peer_t *p = &self->peers[i];
                    if (!p->lockstep || !p->acked)
                        continue;
                    acked++;
                    int n = snprintf(missing + len, sizeof missing - len, "%s'%s'", len ? ", " : "",
                                     p->name);
                    if (n > 0 && (size_t)n < sizeof missing - len)
                        len += (size_t)n;
                }
                set_err(self->err,
                        "lockstep: registration timed out after %.1f s: %zu of %zu lockstep "
                        "participants registered (%s), %zu missing",
                        self->register_timeout_s, acked, self->n_expected, acked ? missing : "none",
                        self->n_expected - acked);
            }
            errno = SF_BUS_ETIMEOUT;
            return -1;
        }
        /* A participant welcomed but silent since may have lost its Welcome after
         * registering it in flight, or we lost its acknowledgement: repeat the Welcome
         * (it answers every Welcome with an acknowledgement). */
        int64_t now = now_ns();
        if (now >= next_rewelcome) {
            next_rewelcome = now + SF_LOCKSTEP_RETRY_MS * NS_PER_MS;
            for (size_t i = 0; i < self->n_peers; i++)
                if (self->peers[i].lockstep && !self->peers[i].acked)
                    send_welcome(self, self->peers[i].name, self->peers[i].instance, NULL);
        }
        if (wait_once(self,
                      now + SF_LOCKSTEP_RETRY_MS * NS_PER_MS < deadline
                          ? now + SF_LOCKSTEP_RETRY_MS * NS_PER_MS
                          : deadline,
                      false) < 0)
            return -1;
    }
    self->started = true;
    self->anchor_ns = now_ns();
    self->anchor_k = self->k;
    return 0;
}

int sf_clock_publish(sf_clock_t *self, const ProtobufCMessage *msg)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    return sf_bus_send(self->pub, msg);
}

int sf_clock_poll(sf_clock_t *self, int timeout_ms, sf_lockstep_msg_fn on_msg, void *arg)
{
    if (!self || timeout_ms < 0) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    do {
        if (drain_clock(self, on_msg, arg) != 0)
            return -1;
        if (wait_once(self, deadline, false) < 0)
            return -1;
    } while (now_ns() < deadline);
    return drain_clock(self, on_msg, arg);
}

int sf_clock_set_speed(sf_clock_t *self, double speed_factor)
{
    if (!self || !(speed_factor > 0) || !isfinite(speed_factor)) {
        errno = EINVAL;
        return -1;
    }
    self->speed = speed_factor;
    self->anchor_ns = now_ns();
    self->anchor_k = self->k;
    return 0;
}

int sf_clock_set_pacing(sf_clock_t *self, double speed_factor)
{
    if (!self || !(speed_factor >= 0) || !isfinite(speed_factor)) {
        errno = EINVAL;
        return -1;
    }
    if (speed_factor == 0) {
        self->realtime = false; /* the timer stays, disarmed: pace() rearms it when needed */
        return 0;
    }
    if (self->tfd < 0) {
        /* A clock created for lockstep gets its timer on the first real-time request. */
        self->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (self->tfd < 0)
            return -1;
    }
    self->realtime = true;
    return sf_clock_set_speed(self, speed_factor);
}

double sf_clock_speed(const sf_clock_t *self)
{
    return self && self->realtime ? self->speed : 0.0;
}

/* Deadline of step k in real time: anchored, so a late step never shifts the others. */
static int64_t deadline_of(const sf_clock_t *self, uint64_t k)
{
    double step_ns = (double)self->step_ds * 1e8 / self->speed;
    return self->anchor_ns + (int64_t)llround((double)(k - self->anchor_k) * step_ns);
}

static void record_jitter(sf_clock_t *self, double us)
{
    if (self->n_jitter == self->cap_jitter) {
        size_t cap = self->cap_jitter ? self->cap_jitter * 2 : 4096;
        double *p = realloc(self->jitter_us, cap * sizeof *p);
        if (!p)
            return; /* keep running; the measurement just stops growing */
        self->jitter_us = p;
        self->cap_jitter = cap;
    }
    self->jitter_us[self->n_jitter++] = us;
}

/* Wait for the real-time deadline of step k, serving the bus meanwhile. */
static int pace(sf_clock_t *self, uint64_t k, sf_lockstep_msg_fn on_msg, void *arg)
{
    int64_t deadline = deadline_of(self, k);
    if (deadline < 1)
        deadline = 1; /* 0 would disarm the timer */
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(deadline / NS_PER_S),
                                          .tv_nsec = (long)(deadline % NS_PER_S)}};
    if (timerfd_settime(self->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        return -1;
    for (;;) {
        if (drain_clock(self, on_msg, arg) != 0)
            return -1;
        int rc = wait_once(self, 0, true);
        if (rc < 0)
            return -1;
        if (rc == 1)
            break;
    }
    record_jitter(self, (double)(now_ns() - deadline) / 1e3);
    return 0;
}

/* Names of the lockstep participants that have not answered Done(cur_k). */
static void describe_silent(const sf_clock_t *self, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < self->n_peers; i++) {
        const peer_t *p = &self->peers[i];
        if (!p->lockstep || !p->acked || p->done_now || p->stage != self->cur_stage)
            continue;
        int n = snprintf(buf + len, cap - len, "%s'%s'", len ? ", " : "", p->name);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}

/* A lockstep participant is registered for this stage. */
static bool stage_used(const sf_clock_t *self, uint8_t stage)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].lockstep && self->peers[i].acked && self->peers[i].stage == stage)
            return true;
    return false;
}

/* Publish Step(k, stage) and wait for the Done(k) of every participant of that stage. */
static int run_stage(sf_clock_t *self, uint64_t k, uint8_t stage, sf_lockstep_msg_fn on_msg,
                     void *arg)
{
    self->cur_stage = stage;
    self->in_step = true;
    Sfbus__Step st = SFBUS__STEP__INIT;
    st.k = k;
    st.t_ds = k * self->step_ds;
    st.tod_ds = (uint32_t)((self->start_tod_ds + k * self->step_ds) % 864000u);
    st.step_ds = self->step_ds;
    st.stage = stage;
    st.speed_factor = self->realtime ? self->speed : 0.0;
    apply_subscriptions(self->pub);
    if (sf_bus_send(self->pub, &st.base) != 0) {
        self->in_step = false;
        set_err(self->err, "lockstep: cannot publish step(%llu): %s", (unsigned long long)k,
                sf_bus_strerror(errno));
        return -1;
    }
    int64_t deadline = now_ns() + (int64_t)(self->step_timeout_s * (double)NS_PER_S);
    for (;;) {
        if (drain_clock(self, on_msg, arg) != 0) {
            self->in_step = false;
            return -1;
        }
        bool all = true;
        const peer_t *gone = NULL;
        for (size_t i = 0; i < self->n_peers; i++) {
            const peer_t *p = &self->peers[i];
            if (!p->lockstep || !p->acked || p->done_now || p->stage != stage)
                continue;
            all = false;
            if (p->left && !gone)
                gone = p;
        }
        if (all)
            break;
        if (gone) {
            self->in_step = false;
            set_err(self->err, "lockstep: '%s' left during step %llu (%s)", gone->name,
                    (unsigned long long)k, gone->reason[0] ? gone->reason : "no reason");
            errno = SF_BUS_ECLOSED;
            return -1;
        }
        if (now_ns() >= deadline) {
            char silent[SF_LOCKSTEP_ERR_MAX / 2];
            describe_silent(self, silent, sizeof silent);
            self->in_step = false;
            set_err(self->err, "lockstep: no done(%llu) from %s after %.1f s",
                    (unsigned long long)k, silent, self->step_timeout_s);
            errno = SF_BUS_ETIMEOUT;
            return -1;
        }
        if (wait_once(self, deadline, false) < 0) {
            self->in_step = false;
            return -1;
        }
    }
    self->in_step = false;
    return 0;
}

int sf_clock_step(sf_clock_t *self, sf_lockstep_msg_fn on_msg, void *arg)
{
    if (!self || !self->started) {
        errno = EINVAL;
        return -1;
    }
    self->err[0] = '\0';
    uint64_t k = self->k;
    if (self->realtime && pace(self, k, on_msg, arg) != 0)
        return -1;
    for (size_t i = 0; i < self->n_peers; i++)
        self->peers[i].done_now = false;
    self->cur_k = k;
    unsigned skip = self->skip_mask;
    self->skip_mask = 0;
    for (uint8_t stage = 0; stage < SF_LOCKSTEP_STAGES; stage++) {
        if (stage > 0 && (!stage_used(self, stage) || (skip >> stage & 1u)))
            continue;
        if (run_stage(self, k, stage, on_msg, arg) != 0)
            return -1;
    }
    self->in_step = false;
    self->k = k + 1;
    self->stats.steps++;
    return 0;
}

int sf_clock_skip_stages(sf_clock_t *self, unsigned mask)
{
    if (!self || (mask & ~0xEu)) {
        errno = EINVAL;
        return -1;
    }
    self->skip_mask = mask;
    return 0;
}

int sf_clock_bye(sf_clock_t *self, const char *reason)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    Sfbus__Bye b = SFBUS__BYE__INIT;
    b.name = self->name;
    b.reason = (char *)(reason ? reason : "end of run");
    b.k = self->k ? self->k - 1 : 0;
    apply_subscriptions(self->pub);
    return sf_bus_send(self->pub, &b.base);
}

uint64_t sf_clock_k(const sf_clock_t *self)
{
    return self ? self->k : 0;
}

sf_clock_stats_t sf_clock_stats(const sf_clock_t *self)
{
    sf_clock_stats_t s = {0};
    return self ? self->stats : s;
}

int64_t sf_clock_done_count(const sf_clock_t *self, const char *name)
{
    if (!self || !name)
        return -1;
    const peer_t *p = find_peer((sf_clock_t *)self, name);
    if (!p || !p->lockstep || !p->acked)
        return -1;
    return (int64_t)p->n_done;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

sf_clock_jitter_t sf_clock_jitter(const sf_clock_t *self)
{
    sf_clock_jitter_t j = {0};
    if (!self || self->n_jitter == 0)
        return j;
    double *sorted = malloc(self->n_jitter * sizeof *sorted);
    double sum = 0, max = self->jitter_us[0];
    for (size_t i = 0; i < self->n_jitter; i++) {
        sum += self->jitter_us[i];
        if (self->jitter_us[i] > max)
            max = self->jitter_us[i];
    }
    j.n = self->n_jitter;
    j.mean_us = sum / (double)self->n_jitter;
    j.max_us = max;
    if (sorted) {
        memcpy(sorted, self->jitter_us, self->n_jitter * sizeof *sorted);
        qsort(sorted, self->n_jitter, sizeof *sorted, cmp_double);
        /* nearest-rank p95 */
        size_t rank = (size_t)ceil(0.95 * (double)self->n_jitter);
        j.p95_us = sorted[rank ? rank - 1 : 0];
        free(sorted);
    } else {
        j.p95_us = max; /* an upper bound when no memory is left to sort */
    }
    return j;
}

const char *sf_clock_error(const sf_clock_t *self)
{
    return self ? self->err : "";
}

/* ---- participant ----------------------------------------------------------------- */

struct sf_participant_t {
    void *pub;                      /* hello, done, bye, the caller's outputs */
    void *sub;                      /* caller's topics, step, bye, welcome.<name> */
    char name[SF_BUS_NAME_MAX + 1]; /* our name */
    Sfbus__Role role;
    bool lockstep;     /* answer Done every step */
    uint8_t stage;     /* the stage of each step we handle */
    uint64_t instance; /* random per object (Hello.instance) */
    uint32_t pid;
    Sfbus__Welcome *welcome;       /* decoded Welcome, owned; NULL before registration */
    bool closed;                   /* the clock said bye */
    uint64_t next_k;               /* next step expected */
    uint64_t steps;                /* steps handled */
    sf_participant_io_t io;        /* extra descriptors served while waiting (fill NULL: none) */
    zmq_pollitem_t *items;         /* poll set: [0] our SUB socket, then io's items */
    size_t cap_items;              /* allocated items */
    char err[SF_LOCKSTEP_ERR_MAX]; /* last error */
};

static bool valid_name(const char *s)
{
    Sfbus__Done d = SFBUS__DONE__INIT;
    d.version = SF_BUS_VERSION;
    d.name = (char *)s;
    return sf_bus_check(&d.base, NULL, 0) == 0;
}

sf_participant_t *sf_participant_new(void *zctx, const char *pub_ep, const char *sub_ep,
                                     const sf_participant_config_t *cfg)
{
    if (!zctx || !pub_ep || !sub_ep || !cfg || !cfg->name || !valid_name(cfg->name) ||
        cfg->role <= SFBUS__ROLE__ROLE_UNSPECIFIED || cfg->role > SFBUS__ROLE__ROLE_RECORDER ||
        (cfg->n_topics && !cfg->topics) || cfg->n_topics > 32 || cfg->rcvhwm < 0 ||
        cfg->stage >= SF_LOCKSTEP_STAGES) {
        errno = EINVAL;
        return NULL;
    }
    sf_participant_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->name, sizeof self->name, "%s", cfg->name);
    self->role = cfg->role;
    self->lockstep = cfg->lockstep != 0;
    self->stage = cfg->stage;
    self->pid = (uint32_t)getpid();
    /* Distinct per object, also across threads of one process and across restarts. */
    self->instance = (uint64_t)now_ns() ^ ((uint64_t)self->pid << 40) ^
                     (uint64_t)(uintptr_t)self * 0x9E3779B97F4A7C15ull;
    char welcome_topic[SF_BUS_TOPIC_MAX + 1];
    snprintf(welcome_topic, sizeof welcome_topic, "welcome.%s", self->name);
    /* Order matters: the Welcome, subscribed last, proves the others are upstream. */
    const char *topics[40];
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_topics; i++)
        topics[n++] = cfg->topics[i];
    topics[n++] = "step";
    topics[n++] = "bye";
    topics[n++] = welcome_topic;
    int err;
    self->pub = sf_bus_pub_new_secure(zctx, pub_ep, cfg->security);
    if (!self->pub)
        goto fail;
    self->sub = sf_bus_sub_new_secure(zctx, sub_ep, topics, n, cfg->rcvhwm, cfg->security);
    if (!self->sub)
        goto fail;
    return self;
fail:
    err = errno;
    sf_bus_close(&self->pub);
    sf_bus_close(&self->sub);
    free(self);
    errno = err;
    return NULL;
}

static int send_hello(sf_participant_t *self, bool welcomed)
{
    Sfbus__Hello h = SFBUS__HELLO__INIT;
    h.name = self->name;
    h.role = self->role;
    h.lockstep = self->lockstep;
    h.instance = self->instance;
    h.welcomed = welcomed;
    h.pid = self->pid;
    h.stage = self->stage;
    return sf_bus_send(self->pub, &h.base);
}

/* A Welcome meant for this object (the topic filter also passes clashing names). */
static bool is_ours(const sf_participant_t *self, const sf_bus_rx_t *rx)
{
    const Sfbus__Welcome *w = (const Sfbus__Welcome *)(void *)rx->msg;
    return strcmp(w->name, self->name) == 0 && w->instance == self->instance;
}

int sf_participant_register(sf_participant_t *self, double timeout_s, sf_lockstep_msg_fn on_msg,
                            void *arg)
{
    if (!self || !(timeout_s > 0)) {
        errno = EINVAL;
        return -1;
    }
    self->err[0] = '\0';
    int64_t deadline = now_ns() + (int64_t)(timeout_s * (double)NS_PER_S);
    while (!self->welcome) {
        if (now_ns() >= deadline) {
            set_err(self->err, "lockstep: '%s' got no welcome from the clock after %.1f s",
                    self->name, timeout_s);
            errno = SF_BUS_ETIMEOUT;
            return -1;
        }
        if (send_hello(self, false) != 0) {
            set_err(self->err, "lockstep: cannot publish hello: %s", sf_bus_strerror(errno));
            return -1;
        }
        /* Wait one retry period (or less, to the deadline) for an answer; a lost Hello or
         * Welcome (subscriptions still travelling) is simply repeated. */
        int64_t retry_at = now_ns() + SF_LOCKSTEP_RETRY_MS * NS_PER_MS;
        if (retry_at > deadline)
            retry_at = deadline;
        while (!self->welcome) {
            zmq_pollitem_t item = {self->sub, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, ms_until(retry_at)) < 0)
                return -1;
            if (!(item.revents & ZMQ_POLLIN))
                break;
            sf_bus_rx_t rx;
            while (!self->welcome && sf_bus_recv(self->sub, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
                if (rx.type == SF_BUS_WELCOME && is_ours(self, &rx)) {
                    const Sfbus__Welcome *w = (const Sfbus__Welcome *)(void *)rx.msg;
                    if (w->refused && w->refused[0]) {
                        set_err(self->err, "lockstep: clock refused '%s': %s", self->name,
                                w->refused);
                        sf_bus_rx_clear(&rx);
                        errno = SF_BUS_EREFUSED;
                        return -1;
                    }
                    self->welcome = (Sfbus__Welcome *)(void *)rx.msg;
                    rx.msg = NULL;
                } else if (rx.type != SF_BUS_STEP && rx.type != SF_BUS_BYE &&
                           rx.type != SF_BUS_WELCOME && on_msg && on_msg(arg, &rx) != 0) {
                    sf_bus_rx_clear(&rx);
                    set_err(self->err, "lockstep: stopped by the message handler");
                    errno = ECANCELED;
                    return -1;
                }
                sf_bus_rx_clear(&rx);
            }
        }
    }
    self->next_k = self->welcome->start_k;
    if (send_hello(self, true) != 0) {
        set_err(self->err, "lockstep: cannot acknowledge the welcome: %s", sf_bus_strerror(errno));
        return -1;
    }
    return 0;
}

const Sfbus__Welcome *sf_participant_welcome(const sf_participant_t *self)
{
    return self ? self->welcome : NULL;
}

/* Handle a Step: returns 1 done, 0 ignored (a repeat), -1 error. */
static int take_step(sf_participant_t *self, const Sfbus__Step *st, sf_participant_step_fn on_step,
                     void *arg)
{
    if (st->stage != self->stage || st->k < self->next_k)
        return 0; /* another stage's Step, or a repeat */
    /* Stage 0 sees every step; a later stage may be skipped on steps where its
     * participants have nothing due (sf_clock_skip_stages), never repeated. */
    if (self->lockstep && st->k != self->next_k && !(self->stage > 0 && st->k > self->next_k)) {
        set_err(self->err, "lockstep: '%s' expected step(%llu), got step(%llu)", self->name,
                (unsigned long long)self->next_k, (unsigned long long)st->k);
        errno = SF_BUS_EPROTO;
        return -1;
    }
    if (on_step && on_step(arg, st, self->pub) != 0) {
        set_err(self->err, "lockstep: '%s' step(%llu) failed in its handler", self->name,
                (unsigned long long)st->k);
        errno = ECANCELED;
        return -1;
    }
    if (self->lockstep) {
        Sfbus__Done d = SFBUS__DONE__INIT;
        d.k = st->k;
        d.name = self->name;
        apply_subscriptions(self->pub);
        if (sf_bus_send(self->pub, &d.base) != 0) {
            set_err(self->err, "lockstep: cannot publish done(%llu): %s", (unsigned long long)st->k,
                    sf_bus_strerror(errno));
            return -1;
        }
    }
    self->next_k = st->k + 1;
    self->steps++;
    return 1;
}

/* Wait until deadline for our SUB socket, serving the io descriptors meanwhile. The poll
 * set grows when io has more descriptors than fit, and is then reused: no allocation per
 * step once it has its size. Returns 0, or -1 with errno. */
static int wait_io(sf_participant_t *self, int64_t deadline)
{
    if (!self->io.fill) {
        zmq_pollitem_t item = {self->sub, 0, ZMQ_POLLIN, 0};
        return zmq_poll(&item, 1, ms_until(deadline)) < 0 ? -1 : 0;
    }
    int hint = -1;
    size_t n;
    for (;;) {
        size_t cap = self->cap_items ? self->cap_items - 1 : 0;
        n = self->io.fill(self->io.arg, cap ? self->items + 1 : NULL, cap, &hint);
        if (n <= cap && self->items)
            break;
        size_t want = n + 1 > 16 ? n + 1 : 16;
        zmq_pollitem_t *p = realloc(self->items, want * sizeof *p);
        if (!p)
            return -1;
        self->items = p;
        self->cap_items = want;
    }
    self->items[0] = (zmq_pollitem_t){self->sub, 0, ZMQ_POLLIN, 0};
    long timeout = ms_until(deadline);
    if (hint >= 0 && hint < timeout)
        timeout = hint;
    if (zmq_poll(self->items, (int)(n + 1), timeout) < 0)
        return -1;
    if (self->io.serve(self->io.arg, self->items + 1, n) != 0) {
        set_err(self->err, "lockstep: '%s' stopped by its descriptor handler", self->name);
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int sf_participant_step(sf_participant_t *self, double timeout_s, sf_lockstep_msg_fn on_msg,
                        sf_participant_step_fn on_step, void *arg)
{
    if (!self || !self->welcome || !(timeout_s > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (self->closed)
        return 0;
    self->err[0] = '\0';
    int64_t deadline = now_ns() + (int64_t)(timeout_s * (double)NS_PER_S);
    for (;;) {
        sf_bus_rx_t rx;
        while (sf_bus_recv(self->sub, &rx, ZMQ_DONTWAIT, NULL, 0) == 0) {
            int rc = -2; /* -2: keep reading */
            if (rx.type == SF_BUS_STEP) {
                rc = take_step(self, (const Sfbus__Step *)(void *)rx.msg, on_step, arg);
                if (rc == 0)
                    rc = -2;
            } else if (rx.type == SF_BUS_WELCOME) {
                if (is_ours(self, &rx))
                    send_hello(self, true); /* the clock repeated it: acknowledge again */
            } else if (rx.type == SF_BUS_BYE) {
                const Sfbus__Bye *b = (const Sfbus__Bye *)(void *)rx.msg;
                if (strcmp(b->name, self->welcome->clock) == 0) {
                    self->closed = true;
                    rc = 0;
                }
            } else if (on_msg && on_msg(arg, &rx) != 0) {
                set_err(self->err, "lockstep: stopped by the message handler");
                errno = ECANCELED;
                rc = -1;
            }
            sf_bus_rx_clear(&rx);
            if (rc != -2)
                return rc;
        }
        if (errno != EAGAIN && errno != SF_BUS_EMALFORMED && errno != SF_BUS_ETRAILER &&
            errno != SF_BUS_EVERSION && errno != SF_BUS_EFIELD && errno != SF_BUS_ETOPIC &&
            errno != SF_BUS_EFRAMES)
            return -1;
        if (errno != EAGAIN)
            continue; /* a bad message was dropped; read on */
        if (now_ns() >= deadline) {
            set_err(self->err, "lockstep: '%s' got no step(%llu) from the clock after %.1f s",
                    self->name, (unsigned long long)self->next_k, timeout_s);
            errno = SF_BUS_ETIMEOUT;
            return -1;
        }
        if (wait_io(self, deadline) != 0)
            return -1;
    }
}

int sf_participant_set_io(sf_participant_t *self, const sf_participant_io_t *io)
{
    if (!self || (io && (!io->fill || !io->serve))) {
        errno = EINVAL;
        return -1;
    }
    if (io)
        self->io = *io;
    else
        memset(&self->io, 0, sizeof self->io);
    return 0;
}

int sf_participant_publish(sf_participant_t *self, const ProtobufCMessage *msg)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    return sf_bus_send(self->pub, msg);
}

uint64_t sf_participant_steps(const sf_participant_t *self)
{
    return self ? self->steps : 0;
}

const char *sf_participant_error(const sf_participant_t *self)
{
    return self ? self->err : "";
}

void sf_participant_destroy(sf_participant_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_participant_t *self = *self_p;
    if (self->welcome && !self->closed) {
        Sfbus__Bye b = SFBUS__BYE__INIT;
        b.name = self->name;
        b.reason = "participant closed";
        b.k = self->next_k ? self->next_k - 1 : 0;
        sf_bus_send(self->pub, &b.base);
    }
    sf_bus_close(&self->pub);
    sf_bus_close(&self->sub);
    sf_bus_msg_destroy((ProtobufCMessage **)&self->welcome);
    free(self->items);
    free(self);
    *self_p = NULL;
}
