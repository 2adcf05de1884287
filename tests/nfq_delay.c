/* tests/nfq_delay.c — a test helper that gives every packet of a netfilter queue a fixed
 * latency, for kernels without sch_netem (tests/test_multihost.c).
 *
 *   nfq_delay --queue N --delay-ms D
 *
 * An iptables rule sends packets to queue N (`-j NFQUEUE --queue-num N`, in the network
 * namespace this runs in). Each packet is held by the kernel until this program issues
 * its verdict: it takes every packet as it comes, and accepts it D ms after it came, in
 * arrival order (a FIFO: fixed latency never reorders). Nothing else about the packet is
 * touched (only its metadata is copied here, never its payload).
 *
 * Prints "nfq_delay: ready queue N" on stdout once bound (the caller's readiness
 * handshake), and on SIGTERM or SIGINT accepts what it still holds at once and prints
 * one line of figures: packets, hold time min/mean/max (measured here, from receipt to
 * verdict, so never below D), the most held at once, receive overruns and the kernel's
 * drop counters for the queue (/proc/net/netfilter/nfnetlink_queue). Exit 0, or 1 with
 * a message on stderr (bad arguments, queue cannot be bound: not root, no
 * nfnetlink_queue, or the queue taken).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define HOLD_CAP 8192 /* packets held at most; the kernel queue is limited to this too */

typedef struct {
    uint32_t id;    /* packet id for the verdict */
    int64_t got_ns; /* when it was received here */
} held_t;

typedef struct {
    struct nfq_q_handle *qh;
    int64_t delay_ns;
    held_t ring[HOLD_CAP];
    size_t head, n; /* FIFO */
    uint64_t packets, overflow, verdict_errors;
    int64_t hold_min_ns, hold_max_ns, hold_sum_ns;
    unsigned long long flushed; /* still held at exit, let go before their delay */
    size_t max_held;
} delayer_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Queue callback: hold the packet (its verdict comes later, from release()). */
static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *ctx)
{
    (void)msg;
    delayer_t *d = ctx;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (d->n == HOLD_CAP) { /* cannot happen with the queue limited to HOLD_CAP: no delay
                               then, but the packet is not lost */
        d->overflow++;
        nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
        return 0;
    }
    d->ring[(d->head + d->n) % HOLD_CAP] = (held_t){id, mono_ns()};
    d->n++;
    if (d->n > d->max_held)
        d->max_held = d->n;
    return 0;
}

/* Accept every held packet due by now (all of them when all is set). */
static void release(delayer_t *d, bool all)
{
    int64_t now = mono_ns();
    while (d->n > 0) {
        held_t *h = &d->ring[d->head];
        if (!all && h->got_ns + d->delay_ns > now)
            break;
        if (nfq_set_verdict(d->qh, h->id, NF_ACCEPT, 0, NULL) < 0)
            d->verdict_errors++;
        int64_t hold = mono_ns() - h->got_ns;
        if (hold < d->delay_ns) { /* let go early at exit: not a delay measured */
            d->flushed++;
            d->head = (d->head + 1) % HOLD_CAP;
            d->n--;
            continue;
        }
        if (d->packets == 0 || hold < d->hold_min_ns)
            d->hold_min_ns = hold;
        if (hold > d->hold_max_ns)
            d->hold_max_ns = hold;
        d->hold_sum_ns += hold;
        d->packets++;
        d->head = (d->head + 1) % HOLD_CAP;
        d->n--;
    }
}

/* The kernel's counters of queue num: packets dropped because the queue was full, and
 * because the netlink socket could not take them. -1 when not listed. */
static int queue_drops(unsigned num, unsigned long *q_dropped, unsigned long *u_dropped)
{
    FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
    if (!f)
        return -1;
    char line[256];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned qn, pid, copy_mode, copy_range, total;
        unsigned long qd, ud;
        if (sscanf(line, "%u %u %u %u %u %lu %lu", &qn, &pid, &total, &copy_mode, &copy_range, &qd,
                   &ud) == 7 &&
            qn == num) {
            *q_dropped = qd;
            *u_dropped = ud;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: nfq_delay --queue N --delay-ms D   (N 0..65535, D 1..10000)\n");
    return 1;
}

int main(int argc, char **argv)
{
    long queue = -1, delay_ms = -1;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
            queue = strtol(argv[++i], &end, 10);
            if (*end || queue < 0 || queue > 65535)
                return usage();
        } else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            delay_ms = strtol(argv[++i], &end, 10);
            if (*end || delay_ms < 1 || delay_ms > 10000)
                return usage();
        } else {
            return usage();
        }
    }
    if (queue < 0 || delay_ms < 0)
        return usage();

    delayer_t *d = calloc(1, sizeof *d);
    if (!d) {
        perror("nfq_delay");
        return 1;
    }
    d->delay_ns = delay_ms * 1000000;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    struct nfq_handle *h = nfq_open();
    if (sfd < 0 || !h) {
        fprintf(stderr, "nfq_delay: cannot open the netfilter queue interface: %s\n",
                strerror(errno));
        free(d);
        return 1;
    }
    d->qh = nfq_create_queue(h, (uint16_t)queue, on_packet, d);
    if (!d->qh) {
        fprintf(stderr, "nfq_delay: cannot bind queue %ld: %s (root? nfnetlink_queue? taken?)\n",
                queue, strerror(errno));
        nfq_close(h);
        free(d);
        return 1;
    }
    /* Metadata only (the id is all a verdict needs); the queue no longer than what can be
     * held here, so a packet is never accepted early. */
    if (nfq_set_mode(d->qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(d->qh, HOLD_CAP) < 0) {
        fprintf(stderr, "nfq_delay: cannot configure queue %ld: %s\n", queue, strerror(errno));
        nfq_destroy_queue(d->qh);
        nfq_close(h);
        free(d);
        return 1;
    }
    nfnl_rcvbufsiz(nfq_nfnlh(h), 4u << 20);
    int fd = nfq_fd(h);
    printf("nfq_delay: ready queue %ld delay %ld ms\n", queue, delay_ms);
    fflush(stdout);

    uint64_t overruns = 0;
    char buf[4096] __attribute__((aligned));
    for (;;) {
        /* Sleep until the next packet is due, or a packet or a signal comes. */
        struct timespec ts, *tsp = NULL;
        if (d->n > 0) {
            int64_t left = d->ring[d->head].got_ns + d->delay_ns - mono_ns();
            if (left < 0)
                left = 0;
            ts = (struct timespec){left / 1000000000, left % 1000000000};
            tsp = &ts;
        }
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int k = ppoll(p, 2, tsp, NULL);
        if (k < 0 && errno != EINTR) {
            perror("nfq_delay: ppoll");
            break;
        }
        if (k > 0 && (p[1].revents & POLLIN))
            break;
        if (k > 0 && (p[0].revents & POLLIN)) {
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0)
                nfq_handle_packet(h, buf, (int)r);
            else if (r < 0 && errno == ENOBUFS)
                overruns++; /* the socket buffer overflowed: the kernel dropped those */
        }
        release(d, false);
    }
    release(d, true);
    unsigned long qd = 0, ud = 0;
    int have = queue_drops((unsigned)queue, &qd, &ud);
    char drops[96] = "kernel drop counters not listed";
    if (have == 0)
        snprintf(drops, sizeof drops, "kernel queue drops %lu, socket drops %lu", qd, ud);
    printf("nfq_delay: queue %ld: %llu packets delayed %ld ms: held min %.2f mean %.2f max %.2f "
           "ms; at most %zu held at once; %llu overruns, %llu verdict errors, %llu not held; "
           "%s; %llu let go early at exit\n",
           queue, (unsigned long long)d->packets, delay_ms, (double)d->hold_min_ns / 1e6,
           d->packets ? (double)d->hold_sum_ns / (double)d->packets / 1e6 : 0.0,
           (double)d->hold_max_ns / 1e6, d->max_held, (unsigned long long)overruns,
           (unsigned long long)d->verdict_errors, (unsigned long long)d->overflow, drops,
           d->flushed);
    fflush(stdout);
    nfq_destroy_queue(d->qh);
    nfq_close(h);
    close(sfd);
    free(d);
    return 0;
}
