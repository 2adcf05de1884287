/* controller/health.h — the comms health of one unit as the centre sees it: a small state
 * machine driven by poll outcomes, with no clock of its own.
 *
 * Time is the caller's (now_ds, 0.1 s, sim time in lockstep or wall time when alone), so
 * the same sequence of outcomes gives the same transitions on any machine.
 *
 * Invariants:
 *  - a unit starts UNKNOWN (never heard) and becomes ONLINE on its first good poll;
 *  - it goes OFFLINE after `offline_after` consecutive missed polls (a miss is a poll not
 *    fully answered within the sweep timeout, or a refused / failed connection);
 *  - while not OFFLINE every poll is attempted; once OFFLINE, attempts are spaced by a
 *    back-off that starts at backoff_min_ds and doubles after each failed attempt up to
 *    backoff_max_ds; one good poll makes it ONLINE again and resets the back-off.
 */
#ifndef SIGFLOW_HEALTH_H
#define SIGFLOW_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SF_LINK_UNKNOWN = 0, /* never answered yet */
    SF_LINK_ONLINE = 1,  /* last poll answered (or fewer than offline_after misses since) */
    SF_LINK_OFFLINE = 2, /* offline_after consecutive misses; reconnecting with back-off */
} sf_link_state_t;

/* What one outcome changed (for the event log). */
typedef enum {
    SF_LINK_NO_CHANGE = 0,
    SF_LINK_WENT_ONLINE = 1,  /* first answer, or back after being offline */
    SF_LINK_WENT_OFFLINE = 2, /* the offline_after-th consecutive miss */
} sf_link_change_t;

typedef struct {
    uint16_t offline_after;  /* consecutive misses before offline, >= 1 (default 3) */
    uint32_t backoff_min_ds; /* first retry delay once offline, 0.1 s (default 10) */
    uint32_t backoff_max_ds; /* cap of the doubling delay, 0.1 s (default 300) */
} sf_health_cfg_t;

typedef struct {
    sf_health_cfg_t cfg;   /* copied at init */
    sf_link_state_t state; /* see above */
    uint16_t missed_run;   /* consecutive missed polls */
    uint64_t n_polls;      /* polls attempted */
    uint64_t n_missed;     /* polls missed, total */
    uint64_t n_offline;    /* times it went offline */
    uint64_t n_reconnects; /* times it came back after being offline */
    int64_t last_reply_ds; /* time of the last good poll, -1 never */
    int64_t next_try_ds;   /* while offline: no attempt before this */
    uint32_t backoff_ds;   /* while offline: delay after the next failed attempt */
} sf_health_t;

/* Fill cfg with the defaults (3 misses, back-off 1 s doubling to 30 s). */
void sf_health_cfg_default(sf_health_cfg_t *cfg);

/* Start h in UNKNOWN with cfg (NULL = defaults). 0, or -1 EINVAL (NULL h, offline_after 0,
 * backoff_min_ds 0 or above backoff_max_ds); h is left unchanged on error. */
int sf_health_init(sf_health_t *h, const sf_health_cfg_t *cfg);

/* True when a poll should be attempted at now_ds (always unless offline and backing off). */
bool sf_health_due(const sf_health_t *h, int64_t now_ds);

/* Record a good poll at now_ds; returns the change it made. */
sf_link_change_t sf_health_reply(sf_health_t *h, int64_t now_ds);

/* Record a missed poll at now_ds; returns the change it made. Once offline, each miss
 * schedules the next attempt at now_ds + back-off and doubles the back-off (capped). */
sf_link_change_t sf_health_miss(sf_health_t *h, int64_t now_ds);

/* "unknown", "online", "offline". */
const char *sf_link_state_name(sf_link_state_t s);

#endif
