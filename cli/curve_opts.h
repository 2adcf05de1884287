/* cli/curve_opts.h — the CurveZMQ options every subcommand on the bus shares:
 *
 *   --curve-key FILE         this process's own secret key (NAME.key of sigflow keygen);
 *                            on a serving side (bus, run, replay --pub) the server's key
 *   --curve-server-key FILE  the forwarder's public key (its NAME.pub): joining a bus
 *   --curve-allow DIR|FILE   authorised client keys (the .pub files of DIR, or one .pub)
 *                            (serving side)
 *
 * A joining side needs --curve-key with --curve-server-key; a serving side --curve-key
 * with --curve-allow. Key files are read and checked before anything starts.
 */
#ifndef SIGFLOW_CURVE_OPTS_H
#define SIGFLOW_CURVE_OPTS_H

#include <stdbool.h>

#include "bus.h"

/* Help lines, for the usage texts. */
#define SF_CURVE_HELP_CLIENT                                                                       \
    "CurveZMQ, to join a secured bus (README, Security):\n"                                        \
    "  --curve-key FILE    join a CurveZMQ-secured bus with this secret key (NAME.key of\n"        \
    "                      sigflow keygen; its NAME.pub must be in the bus's allow-list)\n"        \
    "  --curve-server-key FILE  the secured bus's public key (the server's NAME.pub)\n"
#define SF_CURVE_HELP_SERVER                                                                       \
    "CurveZMQ, to serve a secured bus (README, Security):\n"                                       \
    "  --curve-key FILE    serve the bus with CurveZMQ (encrypted, authenticated) with this\n"     \
    "                      secret key (NAME.key of sigflow keygen)\n"                              \
    "  --curve-allow DIR|FILE  admit only clients whose public key is one of DIR/*.pub (or\n"      \
    "                      the one key FILE); everyone else is refused\n"

typedef struct {
    const char *key;        /* --curve-key */
    const char *server_key; /* --curve-server-key */
    const char *allow;      /* --curve-allow */
} sf_curve_opts_t;

/* If opt is one of the three options, take val (NULL when missing) into c and return 1
 * (or print "CMD: OPT needs a value" and return -1); 0 when opt is not one of them. */
int sf_curve_opt(const char *cmd, sf_curve_opts_t *c, const char *opt, const char *val);

/* True when any of the options was given. */
bool sf_curve_opts_any(const sf_curve_opts_t *c);

/* Joining side: check the combination and read the keys into sec. *secure = false and 0
 * when none was given. Returns 0, 1 (a key file is bad, message printed) or 2 (usage,
 * message printed). */
int sf_curve_opts_client(const char *cmd, const sf_curve_opts_t *c, sf_bus_security_t *sec,
                         bool *secure);

/* Serving side: check the combination, read the secret key into secret, check the allow
 * path has keys (read again by the server when it starts); and make in sec the
 * credentials of the process's own participants (an in-memory key pair the server
 * admits, sf_bus_security_ephemeral). *secure = false and 0 when none was given. Returns
 * 0, 1 or 2 as above. */
int sf_curve_opts_server(const char *cmd, const sf_curve_opts_t *c,
                         char secret[SF_CURVE_Z85_LEN + 1], sf_bus_security_t *sec, bool *secure);

#endif
