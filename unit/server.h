/* unit/server.h — the Modbus TCP server of one signal unit (register map proto/regmap.h).
 *
 * A server owns one listening socket and a libmodbus context, and serves requests that
 * the host (unit/host.h) has found complete on a client socket. It borrows the unit.
 *
 * Write contract: a write request (FC 5, 6, 15, 16) is decoded from the received ADU and
 * checked against the map BEFORE anything is touched: every address must fall on a
 * writable entry (a u32 written whole), else exception 02; every value must be in the
 * entry's range, else exception 03. Only then is it applied through the unit API, which
 * refuses unsafe values (exception 03). A request is all or nothing: if any part is
 * refused, the parts already applied are restored and the unit is left as before.
 * Reversible parts (timings, coordination, sync, hold / force-off / omit, staging
 * buffers) are applied first, at most one command (mode_command, plan_select,
 * fault_reset, prio_req_commit, plan_dl_commit) after them, then the one-way effects
 * (calls, heartbeat) last. A request with two commands is refused (03).
 * FC 22 and 23 (mask write, read/write multiple) are not offered: exception 01.
 */
#ifndef SIGFLOW_SERVER_H
#define SIGFLOW_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "unit.h"

typedef struct sf_server_s sf_server_t;

/* Counters of one server (monotonic). */
typedef struct {
    uint64_t requests;   /* requests answered (normal or exception) */
    uint64_t writes_ok;  /* write requests applied */
    uint64_t exceptions; /* exception replies sent */
    uint64_t refused_01; /* ... of which 01 (function not offered / client may not write) */
    uint64_t refused_02; /* ... of which 02 (address) */
    uint64_t refused_03; /* ... of which 03 (value or safety) */
} sf_server_stats_t;

/* New server for unit u (borrowed; must outlive the server) made with config cfg (read
 * for det_interval; NULL = defaults), reported as unit_index in the identity registers,
 * listening on IPv4 address addr (NULL = "127.0.0.1") and port (0 = an ephemeral port;
 * read it with sf_server_port). Returns NULL with errno (EINVAL, EADDRINUSE, ENOMEM ...).
 * The listening socket is non-blocking and close-on-exec. */
sf_server_t *sf_server_new(sf_unit_t *u, const sf_unit_config_t *cfg, uint16_t unit_index,
                           const char *addr, uint16_t port);

/* Close the socket and free; takes NULL, sets *self_p to NULL. */
void sf_server_destroy(sf_server_t **self_p);

/* Listening socket (for poll) and the port it is bound to. */
int sf_server_listen_fd(const sf_server_t *s);
uint16_t sf_server_port(const sf_server_t *s);

/* The unit served. */
sf_unit_t *sf_server_unit(const sf_server_t *s);

/* Receive one request from client socket fd (the host has checked that one complete,
 * well-formed ADU of frame_len bytes is buffered) and answer it; writes are refused with
 * exception 01 unless may_write. Returns 0 when answered, or -1 with errno when the
 * connection must be closed (EPROTO: the frame did not match its MBAP length; a socket
 * error). */
int sf_server_handle(sf_server_t *s, int fd, bool may_write, int frame_len);

/* Answer the one request adu[0..len) that the caller has already read from client socket
 * fd (the host buffers what a client sends and hands over each complete frame); the reply
 * goes to fd. Same checks, refusals and return as sf_server_handle (EPROTO: adu is not one
 * well-formed frame, sf_server_frame_ok). */
int sf_server_handle_frame(sf_server_t *s, int fd, bool may_write, const uint8_t *adu, int len);

/* Mark the register image stale (call after ticking the unit or changing it directly);
 * the server refreshes it from the unit's status before the next request. */
void sf_server_touch(sf_server_t *s);

/* Counters so far. */
void sf_server_stats(const sf_server_t *s, sf_server_stats_t *out);

/* Check the framing of one MBAP ADU of len bytes (7-byte header + PDU): protocol id 0,
 * length field consistent, and the PDU length exactly what its function code needs (for
 * functions 1-6, 15, 16, 17, 22, 23; other codes must carry no data). 0 when well formed,
 * -1 (errno EPROTO) otherwise. Exposed for the host and tests. */
int sf_server_frame_ok(const uint8_t *adu, int len);

#endif
