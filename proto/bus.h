/* proto/bus.h — the ZeroMQ simulation bus: a forwarder and thin publish/subscribe helpers.
 *
 * Topology: every participant owns one PUB socket connected to the forwarder's XSUB
 * ("pub endpoint") and one SUB socket connected to its XPUB ("sub endpoint"); the
 * forwarder copies messages from XSUB to XPUB and subscriptions the other way. A message
 * is two frames, [topic][encoded message] (proto/bus_codec.h).
 *
 * Ordering: ZeroMQ keeps the order of the messages of one PUB socket towards one
 * subscriber; nothing is ordered across publishers. The lockstep (proto/lockstep.h)
 * relies on exactly this: a participant's outputs for step k precede its Done(k).
 *
 * Back-pressure: no publisher ever blocks. A subscriber that does not keep up (a viewer
 * taking snapshots) has its own queue at the forwarder's XPUB, bounded by the
 * forwarder's send high-water mark plus the subscriber's receive high-water mark
 * (messages); beyond that, messages for that subscriber only are dropped (ZeroMQ PUB/XPUB
 * semantics, ZMQ_XPUB_NODROP off), and everybody else is unaffected.
 *
 * Sockets are plain libzmq sockets (void *): use them from one thread at a time.
 */
#ifndef SIGFLOW_BUS_H
#define SIGFLOW_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "bus_codec.h"
#include "curve.h"

#define SF_BUS_DEFAULT_PUB  "tcp://127.0.0.1:5570" /* publishers connect here (XSUB) */
#define SF_BUS_DEFAULT_SUB  "tcp://127.0.0.1:5571" /* subscribers connect here (XPUB) */
#define SF_BUS_ENDPOINT_MAX 256                    /* bytes, with NUL */

/* High-water marks, messages. The publisher's is large so that a burst of one step (a
 * detector message per intersection, a snapshot) is never dropped on the way to the
 * forwarder, which drains it at once; the per-subscriber ones bound what a slow
 * subscriber can hold up. */
#define SF_BUS_PUB_SNDHWM  100000
#define SF_BUS_XSUB_RCVHWM 100000
#define SF_BUS_XPUB_SNDHWM 1000
#define SF_BUS_SUB_RCVHWM  1000
#define SF_BUS_CTX_TERM_MS 5000 /* sf_bus_ctx_term bound used by this module and callers */
#define SF_BUS_LINGER_MS   500  /* a closing PUB flushes for at most this long */

/* Forwarder statistics, as zmq_proxy_steerable reports them. */
typedef struct {
    uint64_t in_msgs;   /* messages received from publishers (XSUB side) */
    uint64_t in_bytes;  /* bytes of those messages */
    uint64_t out_msgs;  /* messages handed to XPUB (before per-subscriber drops) */
    uint64_t out_bytes; /* bytes of those messages */
} sf_bus_stats_t;

typedef struct sf_bus_forwarder_t sf_bus_forwarder_t;

/* Start an XSUB/XPUB forwarder in its own thread. pub_ep is bound by the XSUB socket
 * (publishers connect there), sub_ep by the XPUB socket (subscribers connect there);
 * "tcp://127.0.0.1:*" picks an ephemeral port, read back with the _endpoint functions.
 * zctx may be NULL (the forwarder then owns a context). xpub_sndhwm: messages queued per
 * subscriber before dropping, 0 = SF_BUS_XPUB_SNDHWM. Returns NULL with errno on failure
 * (e.g. EADDRINUSE). */
sf_bus_forwarder_t *sf_bus_forwarder_new(void *zctx, const char *pub_ep, const char *sub_ep,
                                         int xpub_sndhwm);

/* The same, as a CurveZMQ server with the Z85 secret key curve_secret (NULL = plain, as
 * sf_bus_forwarder_new) on both sockets: peers must be CURVE clients knowing the server's
 * public key (proto/curve.h); start a ZAP handler (sf_curve_auth_new) on zctx first to
 * admit only authorised client keys. zctx must then be the caller's context. */
sf_bus_forwarder_t *sf_bus_forwarder_new_curve(void *zctx, const char *pub_ep, const char *sub_ep,
                                               int xpub_sndhwm, const char *curve_secret);

/* The endpoint publishers connect to (actual port, never "*"); owned by the forwarder. */
const char *sf_bus_forwarder_pub_endpoint(const sf_bus_forwarder_t *self);

/* The endpoint subscribers connect to; owned by the forwarder. */
const char *sf_bus_forwarder_sub_endpoint(const sf_bus_forwarder_t *self);

/* In-process endpoints of the same forwarder ("inproc://..."), usable only by sockets of
 * the context the forwarder was created with: threads of one process (`sigflow run`) reach
 * the bus faster there, while other processes use the TCP endpoints. Owned by the
 * forwarder. */
const char *sf_bus_forwarder_inproc_pub_endpoint(const sf_bus_forwarder_t *self);
const char *sf_bus_forwarder_inproc_sub_endpoint(const sf_bus_forwarder_t *self);

/* Read the forwarder's counters. Returns 0, or -1 with errno. Call from the thread that
 * created the forwarder. */
int sf_bus_forwarder_stats(sf_bus_forwarder_t *self, sf_bus_stats_t *stats);

/* Stop the forwarder (messages in flight may be lost), join its thread and free it; takes
 * NULL, sets *self_p to NULL. */
void sf_bus_forwarder_destroy(sf_bus_forwarder_t **self_p);

/* zmq_ctx_term(zctx) bounded by timeout_ms: 0 when the context is terminated, -1 with
 * errno ETIMEDOUT when libzmq had not finished by then (the context and its two
 * background threads are then left to the end of the process), or zmq_ctx_term's errno.
 * Every socket of zctx must be closed. Why: libzmq 4.3.4 occasionally never finishes
 * zmq_ctx_term with every socket closed (its reaper and I/O threads both idle in
 * epoll_wait with no timer: a termination acknowledgement is lost, cf. zeromq/libzmq#2586
 * and #3252); test_lockstep hit it in 3 of 80 runs under load, with no socket of ours
 * open and with linger 0 as well (1 of 78). A run must end, not hang its caller. */
int sf_bus_ctx_term(void *zctx, int timeout_ms);

/* CurveZMQ credentials of a participant: a CURVE client of a secured forwarder
 * (sf_bus_forwarder_new_curve) proves its key pair and checks the server's public key;
 * the forwarder's ZAP handler admits it only if its public key is authorised. Everything
 * on the connection is then encrypted. Z85 text, NUL-terminated. In-process (inproc://)
 * connections have no handshake: these options do not apply to them. */
typedef struct {
    char public_key[SF_CURVE_Z85_LEN + 1]; /* own public key */
    char secret_key[SF_CURVE_Z85_LEN + 1]; /* own secret key */
    char server_key[SF_CURVE_Z85_LEN + 1]; /* the forwarder's public key */
} sf_bus_security_t;

/* Fill sec from key files: key_file is the participant's secret key (NAME.key of
 * `sigflow keygen`; the public key is derived from it, and must match NAME.pub beside it
 * when that file exists), server_key_file the forwarder's public key (its NAME.pub).
 * Returns 0, or -1 with errno (from the file system, EINVAL for a file that is not one Z85
 * key or a mismatched pair, ENOTSUP without CURVE in libzmq) and the reason, naming the
 * file, in why. sec is untouched on failure. */
int sf_bus_security_load(sf_bus_security_t *sec, const char *key_file, const char *server_key_file,
                         char *why, size_t why_cap);

/* Fill sec with a key pair made now (kept in memory only) and the public key belonging to
 * the server secret key server_secret (Z85): for a process that runs a secured forwarder
 * and joins it with its own participants (`sigflow run`); admit sec->public_key with
 * sf_curve_auth_allow. Returns 0 or -1 with errno (EINVAL, ENOTSUP). */
int sf_bus_security_ephemeral(sf_bus_security_t *sec, const char *server_secret);

/* A PUB socket connected to endpoint (a forwarder's pub endpoint), high-water mark
 * SF_BUS_PUB_SNDHWM. Returns the socket (close with sf_bus_close) or NULL with errno. */
void *sf_bus_pub_new(void *zctx, const char *endpoint);

/* sf_bus_pub_new as a CURVE client with sec (NULL = plain, exactly sf_bus_pub_new); the
 * options are set before connecting. */
void *sf_bus_pub_new_secure(void *zctx, const char *endpoint, const sf_bus_security_t *sec);

/* A SUB socket subscribed to n_topics topics (in this order; "" = everything) and then
 * connected to endpoint (a forwarder's sub endpoint). rcvhwm 0 = SF_BUS_SUB_RCVHWM.
 * Subscribing before connecting makes the subscriptions travel in this order, so a
 * message received on the last topic proves the earlier ones are in place upstream.
 * Returns the socket (close with sf_bus_close) or NULL with errno. */
void *sf_bus_sub_new(void *zctx, const char *endpoint, const char *const *topics, size_t n_topics,
                     int rcvhwm);

/* sf_bus_sub_new as a CURVE client with sec (NULL = plain, exactly sf_bus_sub_new). */
void *sf_bus_sub_new_secure(void *zctx, const char *endpoint, const char *const *topics,
                            size_t n_topics, int rcvhwm, const sf_bus_security_t *sec);

/* Close a socket made by this module; takes NULL, sets *sock_p to NULL. */
void sf_bus_close(void **sock_p);

/* Publish msg (two frames, topic from the message) without ever blocking. Returns 0, or
 * -1 with errno from sf_bus_encode or zmq_msg_send. */
int sf_bus_send(void *pub, const ProtobufCMessage *msg);

/* One received message. */
typedef struct {
    sf_bus_type_t type;               /* from the topic */
    char topic[SF_BUS_TOPIC_MAX + 1]; /* the topic frame, NUL-terminated */
    ProtobufCMessage *msg;            /* decoded message, owned (sf_bus_rx_clear) */
} sf_bus_rx_t;

/* Receive one message from a SUB socket. flags: 0 (wait) or ZMQ_DONTWAIT. Returns 0 with
 * *rx filled (caller clears it), or -1 with errno: EAGAIN (nothing waiting), ETERM/EINTR
 * from libzmq, or a bus error (SF_BUS_EFRAMES, SF_BUS_ETOPIC, decode errors: the bad
 * message was consumed and dropped, why holds a reason when given). */
int sf_bus_recv(void *sub, sf_bus_rx_t *rx, int flags, char *why, size_t why_cap);

/* Free the message held by rx; safe on a cleared rx. */
void sf_bus_rx_clear(sf_bus_rx_t *rx);

#endif
