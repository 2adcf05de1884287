/* unit/host.h — one process hosting one or many signal units behind Modbus TCP.
 *
 * Each unit has its own listening port (base port + index, or an ephemeral port read
 * back with sf_host_port) and several clients; every socket is served from ONE event
 * loop (epoll), no thread per connection. Time is the caller's: sf_host_poll() serves
 * pending Modbus traffic for up to timeout_ms, sf_host_tick() advances every unit by
 * 0.1 s. `sigflow unit` calls them on the wall clock; the simulator's lockstep calls
 * tick once per step and can wait on its ZeroMQ sockets and the host's sockets together
 * (sf_host_pollfds fills a pollfd list, today the one epoll descriptor that stands for
 * every socket; copy the fds into zmq_pollitem_t.fd).
 *
 * Robustness: a request is answered only once the whole frame is buffered (the host reads
 * each client's bytes into a buffer of its own), so a client that stops mid-frame delays
 * nobody; it is closed when its frame is not complete within frame_timeout_ms. A malformed frame
 * (MBAP length or protocol id wrong, PDU length not what its function needs), a socket error or a
 * client that does not read its replies closes that connection only.
 *
 * A host is driven by one thread at a time (poll, tick and direct unit calls from the
 * same thread); it takes no locks.
 */
#ifndef SIGFLOW_HOST_H
#define SIGFLOW_HOST_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "unit.h"

typedef struct {
    const char *listen_addr;   /* IPv4 address to listen on; NULL = "127.0.0.1" */
    uint16_t base_port;        /* unit i listens on base_port + i; 0 = ephemeral ports */
    const char *const *allow;  /* IPv4 addresses that may write; n_allow 0 = every client */
    size_t n_allow;            /* entries in allow */
    uint16_t max_clients;      /* connections per unit, 0 = 16; more are closed at accept */
    uint16_t frame_timeout_ms; /* a started frame must complete within this, 0 = 1000 */
} sf_host_config_t;

/* Counters of a host (monotonic). */
typedef struct {
    uint64_t requests;         /* requests answered, all units */
    uint64_t exceptions;       /* of which exception replies */
    uint64_t accepted;         /* connections accepted */
    uint64_t rejected;         /* connections closed at accept (max_clients) */
    uint64_t closed_peer;      /* connections closed by the peer */
    uint64_t closed_malformed; /* connections closed for a malformed frame */
    uint64_t closed_timeout;   /* connections closed for an incomplete frame */
    uint64_t closed_error;     /* connections closed for a socket error */
} sf_host_stats_t;

typedef struct sf_host_s sf_host_t;

/* New empty host. cfg is copied (allow strings parsed); NULL = defaults. Returns NULL with
 * errno EINVAL (a bad address in listen_addr or allow) or ENOMEM. */
sf_host_t *sf_host_new(const sf_host_config_t *cfg);

/* Stop serving, close every socket, destroy the units; takes NULL, sets *self_p NULL. */
void sf_host_destroy(sf_host_t **self_p);

/* Add a unit for intersection ix with unit config ucfg (NULL = defaults) and start
 * listening for it. Returns its index (0, 1, ...) or -1 with errno (EINVAL: the unit
 * refused ix; EADDRINUSE; ENOMEM). */
int sf_host_add_unit(sf_host_t *h, const sf_intersection_t *ix, const sf_unit_config_t *ucfg);

/* The same on a given port (for a scenario's intersections[].unit_port); port 0 = the
 * base-port rule above. */
int sf_host_add_unit_at(sf_host_t *h, const sf_intersection_t *ix, const sf_unit_config_t *ucfg,
                        uint16_t port);

/* Number of units, and unit i's engine, server and port (NULL / 0 when out of range).
 * The caller may drive the unit directly (detectors, clock) between polls. */
size_t sf_host_n_units(const sf_host_t *h);
sf_unit_t *sf_host_unit(const sf_host_t *h, size_t i);
sf_server_t *sf_host_server(const sf_host_t *h, size_t i);
uint16_t sf_host_port(const sf_host_t *h, size_t i);

/* Set every unit's time of day (0.1 s after midnight, 0..863999); -1 EINVAL. */
int sf_host_set_clock(sf_host_t *h, uint32_t tod_ds);

/* Advance every unit by 0.1 s. */
void sf_host_tick(sf_host_t *h);

/* Serve Modbus traffic: wait up to timeout_ms (0 = just what is pending, -1 = until
 * something happens) and answer every complete request. Returns the number of requests
 * answered, or -1 with errno (EINTR when a signal interrupted the wait: nothing lost). */
int sf_host_poll(sf_host_t *h, int timeout_ms);

/* Fill out[0..cap) with the descriptors to watch (events POLLIN) for an outer poll /
 * zmq_poll; returns how many there are (may exceed cap: call again with a bigger array;
 * today always 1, the host's epoll set). Wait at most sf_host_wait_hint_ms(), then call
 * sf_host_poll(h, 0). */
size_t sf_host_pollfds(const sf_host_t *h, struct pollfd *out, size_t cap);

/* Longest an outer wait may last before the host wants sf_host_poll again: -1 no limit,
 * else milliseconds (a connection holding a partial frame times out then). */
int sf_host_wait_hint_ms(const sf_host_t *h);

/* Counters so far. */
void sf_host_stats(const sf_host_t *h, sf_host_stats_t *out);

#endif
