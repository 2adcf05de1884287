/* controller/master.h — the centre's Modbus TCP master for many signal units.
 *
 * One libmodbus context per unit (modbus_new_tcp), sockets connected without blocking
 * (all units at once, then modbus_set_socket) and every request of a round pipelined:
 * sf_master_run() first sends every unit's queued requests (each ADU framed with its MBAP
 * header, all of a unit's in one send), then waits with one epoll set over all sockets and
 * parses replies as they complete, so a round over N units costs about one round trip,
 * not N. Replies are
 * parsed here rather than by modbus_receive_confirmation because libmodbus waits with
 * select(), which cannot watch descriptors above FD_SETSIZE (1024) that a master of a
 * thousand units uses.
 *
 * Only the register map (proto/regmap.h) is used: the master works the same against the
 * emulated units and against any device that implements the map.
 *
 * A unit whose requests are not all answered by the round's deadline has missed a poll and
 * its health records the miss (controller/health.h). Its connection stays open: the replies
 * it still owes are recognised by transaction id when they come and dropped, so a unit that
 * answers late (a host still accepting hundreds of new connections, a loaded link) is not
 * reconnected, and its work thrown away, every round. The connection is closed on a
 * protocol error, when the unit goes offline (reconnection then follows the health's
 * back-off) or when it owes more than a few rounds of replies.
 *
 * Connects are non-blocking and go on across rounds: a unit whose connect is still pending
 * at the end of a round has sent nothing (its requests end as SF_MREQ_SKIPPED, counted in
 * connect_waits) and has not missed a poll; the connect fails (a missed poll) only once
 * connect_timeout_ms has passed, or at once when refused. A unit offline and backing off
 * is not contacted at all: its queued requests end as SF_MREQ_SKIPPED. Nothing blocks past
 * the round's deadline.
 */
#ifndef SIGFLOW_MASTER_H
#define SIGFLOW_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "regmap.h"
#include "scenario.h"

#define SF_MASTER_HOST_LEN 64 /* host names and addresses, with NUL */
#define SF_MASTER_MAX_REQ  16 /* requests queued per unit per round */
#define SF_MASTER_PRIO     8  /* priority status slots read (regmap prio_status_*) */

/* Where one unit listens. */
typedef struct {
    char host[SF_MASTER_HOST_LEN]; /* IPv4 address or host name */
    uint16_t port;                 /* TCP port */
} sf_endpoint_t;

typedef struct {
    int round_timeout_ms;   /* a round (connect, send, every reply) ends after this; def. 200 */
    int connect_timeout_ms; /* a connect still pending after this fails (a missed poll);
                               0 = the default 3000; at least round_timeout_ms */
    sf_health_cfg_t health; /* offline threshold and back-off (0.1 s units) */
    bool no_image;          /* never read the poll image (map version 3): always the separate
                               reads of version 1 (to compare the two); default false */
    bool no_fc23;           /* never the one-request poll of map version 4 (FC 23): the
                               image read and the heartbeat write of version 3 instead (to
                               compare the two); default false */
} sf_master_opts_t;

/* Poll round trips of one unit as the centre measured them: from the one send of a
 * round's requests to the last of their replies, for every round fully answered (a
 * missed round is counted by the health, not here). Wall time, so it belongs to no
 * deterministic report. hist[] is a log-linear histogram: each octave of microseconds
 * [2^e, 2^(e+1)) cut in four equal buckets, 4e .. 4e+3; the last bucket is open-ended. */
#define SF_RTT_BUCKETS 96 /* 1 us .. 2^24 us (16.8 s) at 4 buckets per octave */
typedef struct {
    uint64_t n;      /* round trips measured */
    uint64_t sum_us; /* their sum */
    uint32_t min_us, max_us, last_us;
    uint32_t hist[SF_RTT_BUCKETS];
} sf_rtt_stats_t;

/* What the centre last read from one unit (register values as the map defines them). */
typedef struct {
    /* identity (read once per connection) */
    uint16_t protocol_version; /* 1..SF_REGMAP_VERSION expected */
    uint16_t n_phases, n_rings, n_sg, n_det, n_plans;
    uint16_t poll_image_len; /* registers of its poll image (map v3, v4), 0 none */
    char unit_id[33];        /* intersection id, NUL-terminated */
    bool identity_ok;        /* protocol version known and id as configured */
    /* status */
    uint16_t mode;           /* GB/T 20999 code (0x10.., 0x2x local, 0x31 flash ...) */
    uint16_t active_plan;    /* 1..16 */
    uint16_t pending_plan;   /* 0 none */
    uint16_t cycle_timer_ds; /* 0.1 s */
    uint16_t coord_in_sync;
    uint16_t heartbeat_echo;
    uint16_t local_fallback;
    uint16_t fault_code;
    uint16_t fault_latched;
    uint16_t heartbeat_age_ds;
    uint32_t tod_ds;           /* unit time of day, 0.1 s */
    uint16_t phase_status[10]; /* reds, yellows, greens, dont_walks, ped_clears, walks,
                                  veh_calls, ped_calls, on, next (bit i = phase i+1) */
    uint8_t lamp[SF_MAX_SG];   /* GB/T 20999 lamp codes */
    uint16_t sg_remaining_ds[SF_MAX_SG];
    uint16_t det_seq; /* last completed detector interval */
    uint16_t det_interval_s;
    uint16_t det_volume[SF_MAX_DET];    /* veh in that interval */
    uint16_t det_occupancy[SF_MAX_DET]; /* 0.1 % */
    uint64_t det_presence;              /* bit d = detector d occupied (SF_POLL_PRESENCE) */
    uint16_t prio_id[SF_MASTER_PRIO], prio_state[SF_MASTER_PRIO];
    uint16_t prio_reason[SF_MASTER_PRIO], prio_phase[SF_MASTER_PRIO];
    /* last plan read back (plan_rd_*), in register terms: split_ds[] and split_mode[] are
     * indexed by phase number - 1 and coord_phase_mask bit i is phase i + 1 (not the
     * scenario's phase indices); id 0 when the unit does not have that plan */
    sf_plan_t plan_rd;
    uint16_t plan_dl_status, plan_dl_error;
    /* bookkeeping */
    uint64_t n_status;     /* sweeps whose status reads all succeeded */
    int64_t status_ds;     /* now_ds of the last such sweep, -1 never */
    sf_health_t health;    /* comms health */
    bool connected;        /* a socket is open */
    uint64_t n_connects;   /* connections established */
    uint64_t n_exceptions; /* exception replies received */
    sf_rtt_stats_t rtt;    /* poll round trips (wall time) */
} sf_unit_state_t;

/* Outcome of one queued request after a round. */
typedef enum {
    SF_MREQ_PENDING = 0,   /* not run yet */
    SF_MREQ_OK = 1,        /* normal reply */
    SF_MREQ_EXCEPTION = 2, /* exception reply; see sf_master_exception */
    SF_MREQ_MISSED = 3,    /* no reply by the deadline (or connection failed) */
    SF_MREQ_SKIPPED = 4,   /* not sent: unit offline and backing off, or still connecting */
} sf_mreq_outcome_t;

/* Comms statistics over all units (monotonic). */
typedef struct {
    uint64_t rounds;           /* rounds run */
    uint64_t requests;         /* requests sent */
    uint64_t replies;          /* replies parsed */
    uint64_t exceptions;       /* of which exceptions */
    uint64_t missed;           /* unit-polls missed */
    uint64_t connects;         /* connections established */
    uint64_t connect_failures; /* connections refused, failed or timed out */
    uint64_t connect_waits;    /* unit-polls not sent: connect still pending (not missed) */
    uint64_t protocol_errors;  /* replies that did not match their request (conn. closed) */
} sf_master_stats_t;

typedef struct sf_master_s sf_master_t;

/* Fill o with the defaults above. */
void sf_master_opts_default(sf_master_opts_t *o);

/* New master for n units at eps[0..n) (copied); expect_id[i] (may be NULL, or an entry
 * NULL) is the intersection id unit i must report. NULL with errno EINVAL (n 0, a bad
 * endpoint or option: the host is resolved here), ENOMEM. Connects nothing yet. */
sf_master_t *sf_master_new(size_t n, const sf_endpoint_t *eps, const char *const *expect_id,
                           const sf_master_opts_t *opts);

/* Close every connection and free; takes NULL, sets *self_p to NULL. */
void sf_master_destroy(sf_master_t **self_p);

/* Number of units. */
size_t sf_master_n(const sf_master_t *m);

/* State of unit u (NULL when out of range); valid until the next round. */
const sf_unit_state_t *sf_master_state(const sf_master_t *m, size_t u);

/* Queue a write of holding registers starting at element `elem` of entry id (FC 16),
 * values vals[0..n), n <= 40 (u32 entries: n counts registers; the write may continue
 * into the next entries when every address is writable). Returns the request's handle
 * for sf_master_outcome, or -1 with errno EINVAL (an address not writable, u out of
 * range), ENOSPC (queue full). */
int sf_master_queue_write(sf_master_t *m, size_t u, sf_reg_id_t id, uint16_t elem,
                          const uint16_t *vals, uint16_t n);

/* Queue a write of coils (FC 15) starting at element elem of entry id, bits[0..n) 0/1.
 * Returns a handle, or -1 (EINVAL, ENOSPC). */
int sf_master_queue_coils(sf_master_t *m, size_t u, sf_reg_id_t id, uint16_t elem,
                          const uint8_t *bits, uint16_t n);

/* What a poll reads besides the status block (100..149) and the lamps (200..271). */
#define SF_POLL_DETECTORS 1u /* det_seq, det_interval, det_volume, det_occupancy */
#define SF_POLL_PRIORITY  2u /* the priority status slots */
#define SF_POLL_PRESENCE  4u /* det_presence discrete inputs (FC 2) */
#define SF_POLL_ALL       7u
/* Order, not content: the heartbeat is written after the reads instead of before them, so
 * the status shows a local fallback (which the heartbeat write ends at once) instead of
 * the state the heartbeat has just made. */
#define SF_POLL_STATUS_FIRST 8u

/* Queue a poll: heartbeat write of hb, then the status and lamp reads, and what `what`
 * adds (SF_POLL_* bits; with SF_POLL_STATUS_FIRST the heartbeat goes after the reads).
 * Once the connected device's identity says map version >= 3 with a poll_image_len that
 * its n_sg and n_det give (regmap.h sf_poll_image_layout_t), the reads are one read of the
 * poll image (its prefix that holds what `what` asks for; two reads, or three, when that is
 * over 125 registers), and the state is filled exactly as the separate reads fill it. On
 * With SF_POLL_STATUS_FIRST, once the identity says map version >= 4 and that prefix is
 * at most 125 registers, the read and the heartbeat are ONE request, an FC 23 that writes
 * the heartbeat and reads poll_image_rw (the image from before the write, as the read then
 * the write of version 3 give); a device that refuses an FC 23 (any exception: that poll's
 * status is incomplete and its heartbeat not written) gets the version 3 read and write on
 * this connection from the next poll on, as does opts.no_fc23. On
 * a new connection (identity not read yet), with opts.no_image, for a version 1 or 2
 * device, or once the device has refused an image read on this connection (that poll's
 * status is incomplete), the separate reads: the detector data and occupancies are one
 * read (det_seq through the last detector's occupancy) once the identity says at most 25
 * detectors, two reads before that or when the device has refused the joined read (it
 * spans addresses outside the map) on this connection. Returns the
 * handle of the heartbeat write (the FC 23 when the poll is one), or -1 (EINVAL, ENOSPC; or, with
 * the reads queued, when the connected device's identity is not the expected one: it is then only
 * read, never written). */
int sf_master_queue_poll(sf_master_t *m, size_t u, uint16_t hb, unsigned what);

/* Queue a plan download of plan p (phase splits by index per ix, written as plan_dl_*
 * 400..437 in one atomic FC 16 ending with the commit) and its read-back (plan_rd_select
 * then plan_rd_*, plan_dl_status/error). Returns the handle of the download write (the
 * read-back lands in sf_master_state()->plan_rd) or -1 (EINVAL, ENOSPC). */
int sf_master_queue_plan(sf_master_t *m, size_t u, const sf_intersection_t *ix, const sf_plan_t *p);

/* Queue a read-back of plan plan_no (plan_rd_select, then plan_rd_* into
 * sf_master_state()->plan_rd). Returns the handle of the read, or -1 (EINVAL, ENOSPC). */
int sf_master_queue_plan_read(sf_master_t *m, size_t u, uint8_t plan_no);

/* Run everything queued on every unit as one pipelined round ending by now + the round
 * timeout; updates states and health at now_ds (0.1 s, the caller's clock). Units with
 * nothing queued are not touched. Returns the number of units that answered every
 * request, or -1 with errno on a system error (poll). */
int sf_master_run(sf_master_t *m, int64_t now_ds);

/* Queue a poll (hb, what) for every unit and run the round. */
int sf_master_sweep(sf_master_t *m, int64_t now_ds, uint16_t hb, unsigned what);

/* Bound the rounds from now on by round_timeout_ms (> 0), as opts.round_timeout_ms does
 * (the connect bound is raised to it when shorter). 0, or -1 with errno EINVAL. */
int sf_master_set_round_timeout(sf_master_t *m, int round_timeout_ms);

/* Outcome of request `handle` of unit u in the last round (SF_MREQ_PENDING if unknown),
 * and its exception code (0 unless SF_MREQ_EXCEPTION). */
sf_mreq_outcome_t sf_master_outcome(const sf_master_t *m, size_t u, int handle);
int sf_master_exception(const sf_master_t *m, size_t u, int handle);

/* Comms statistics so far. */
void sf_master_stats(const sf_master_t *m, sf_master_stats_t *out);

/* The kernel's view of unit u's TCP link: segments retransmitted over every connection
 * made so far (TCP_INFO tcpi_total_retrans, summed over closed ones and the open one),
 * and the open connection's smoothed round trip (tcpi_rtt; 0 when none is open). */
typedef struct {
    uint64_t retransmits;
    uint32_t srtt_us;
    bool open;
} sf_tcp_link_t;

/* Fill out with unit u's TCP link figures. 0, or -1 with errno EINVAL (NULL, u out of
 * range). */
int sf_master_tcp_link(const sf_master_t *m, size_t u, sf_tcp_link_t *out);

/* Add the round trips of b into a (counts, sums, histogram; min and max over both). */
void sf_rtt_merge(sf_rtt_stats_t *a, const sf_rtt_stats_t *b);

/* The q-quantile (0..1) of r's round trips in ms, from its histogram: the upper edge of
 * the bucket holding it, clamped to the measured min and max (so at most 25 % above the
 * true value). 0 when r holds none. */
double sf_rtt_quantile_ms(const sf_rtt_stats_t *r, double q);

/* Compare a plan read back with the plan sent (number, cycle, offset, coordinated phases,
 * force mode, every used phase's split and split mode of ix's phases). True when equal. */
bool sf_master_plan_equal(const sf_intersection_t *ix, const sf_plan_t *sent,
                          const sf_plan_t *read);

#endif
