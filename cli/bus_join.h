/* cli/bus_join.h — what `sigflow unit --bus` and `sigflow controller --bus` share: the
 * options that join a simulator's bus from another process (--bus, --name, --curve-*),
 * the signal descriptor that stops them, and the lockstep participant's loop (join,
 * register, step until the simulator's Bye).
 *
 *   --bus PUB_EP,SUB_EP   a `sigflow bus` forwarder's endpoints
 *   --name NAME           the lockstep participant's name (the simulator must --expect it)
 */
#ifndef SIGFLOW_BUS_JOIN_H
#define SIGFLOW_BUS_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "curve_opts.h"
#include "lockstep.h"

typedef struct {
    const char *bus;                  /* --bus as given, NULL = not on a bus */
    const char *name;                 /* --name, NULL = the command's default */
    char pub_ep[SF_BUS_ENDPOINT_MAX]; /* --bus split, valid when bus is set */
    char sub_ep[SF_BUS_ENDPOINT_MAX];
    sf_curve_opts_t curve; /* --curve-key, --curve-server-key */
} sf_bus_join_opts_t;

/* True when s is a participant name the bus accepts: 1..SF_BUS_NAME_MAX of
 * [A-Za-z0-9_.-]. */
bool sf_bus_valid_name(const char *s);

/* "PUB_EP,SUB_EP" into pub and sub (each SF_BUS_ENDPOINT_MAX); 0, or -1 when malformed. */
int sf_bus_split_endpoints(const char *arg, char *pub, char *sub);

/* If opt is --bus or --name with a value val, or a --curve-* option, take it into o and
 * return 1; a bad value: "sigflow CMD: ..." on stderr and -1 (usage error). 0 when opt is
 * none of them, or --bus / --name without a value (the caller says what is missing). */
int sf_bus_join_opt(const char *cmd, sf_bus_join_opts_t *o, const char *opt, const char *val);

/* After the options: --name and --curve-* need --bus; the keys are read into sec
 * (*secure false when none). Returns 0, 1 (a bad key file) or 2 (usage), said on stderr. */
int sf_bus_join_check(const char *cmd, const sf_bus_join_opts_t *o, sf_bus_security_t *sec,
                      bool *secure);

/* Block SIGINT and SIGTERM and return a descriptor that reads them (close it), or -1
 * after "sigflow CMD: signalfd: ..." on stderr. Call before any thread starts. */
int sf_cli_signalfd(const char *cmd);

/* Time of day from the local wall clock, in 0.1 s after midnight. */
uint32_t sf_cli_wall_tod_ds(void);

/* A lockstep participant joining from its own process. */
typedef struct {
    const char *cmd;           /* the subcommand, for messages ("unit") */
    const char *name;          /* default participant name, when --name is not given */
    Sfbus__Role role;          /* announced role */
    uint8_t stage;             /* lockstep stage */
    const char *const *topics; /* data topics to receive */
    size_t n_topics;
    sf_lockstep_msg_fn on_msg;      /* every data message (registration included) */
    sf_participant_step_fn on_step; /* every step */
    void *arg;                      /* of on_msg / on_step */
    sf_participant_io_t io;         /* descriptors to serve between steps (no fill: none) */
} sf_bus_join_part_t;

/* Join the bus of o (sec: NULL or the CurveZMQ keys) as part, register, and step until
 * the simulator's Bye or a signal on sfd (0), or an error (1); progress and errors are
 * said on stderr as "sigflow CMD: ...". A paused or slow clock is waited for. */
int sf_bus_join_run(const sf_bus_join_opts_t *o, const sf_bus_join_part_t *part,
                    const sf_bus_security_t *sec, int sfd);

#endif
