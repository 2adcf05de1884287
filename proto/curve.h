/* proto/curve.h — CurveZMQ keys and authentication for the bus.
 *
 * Keys are Z85 text (40 characters) in files: NAME.key holds the secret key (mode 0600),
 * NAME.pub the public key. A CURVE server (the forwarder's sockets) takes its secret key;
 * a ZAP handler (RFC 27, a thread answering on inproc://zeromq.zap.01 of the server's
 * context) admits only clients whose public key is one of the *.pub files of an
 * authorised-keys directory. Clients (participants) take their own key pair and the
 * server's public key. Plain (unencrypted) peers fail the CURVE handshake.
 */
#ifndef SIGFLOW_CURVE_H
#define SIGFLOW_CURVE_H

#include <stddef.h>

#define SF_CURVE_Z85_LEN  40  /* characters of a Z85 key */
#define SF_CURVE_MAX_KEYS 256 /* authorised keys held */

/* Generate a key pair and write DIR/NAME.key (0600, created exclusively) and
 * DIR/NAME.pub. Returns 0, or -1 with errno (EINVAL bad name, EEXIST, ENOTSUP when libzmq
 * has no CURVE, or from the file system). */
int sf_curve_keygen(const char *dir, const char *name);

/* Read one Z85 key (40 characters, optional trailing newline) from path into out (41
 * bytes). Returns 0, or -1 with errno (EINVAL when the file is not exactly one key). */
int sf_curve_read_key(const char *path, char out[SF_CURVE_Z85_LEN + 1]);

/* Make sock a CURVE server with the secret key z85_secret. Returns 0 or -1 with errno. */
int sf_curve_apply_server(void *sock, const char *z85_secret);

/* Make sock a CURVE client: its key pair and the server's public key. 0 or -1 (errno). */
int sf_curve_apply_client(void *sock, const char *z85_public, const char *z85_secret,
                          const char *z85_server_public);

typedef struct sf_curve_auth_t sf_curve_auth_t;

/* Start the ZAP handler for zctx, admitting CURVE clients whose public key is in one of
 * the *.pub files of path when it is a directory, or the one key of path when it is a file
 * (read once, now). Everything else is refused (status 400). Returns NULL with errno
 * (ENOENT, EINVAL on a bad key file, E2BIG beyond SF_CURVE_MAX_KEYS, EADDRINUSE when the
 * context already has a handler). Start it before the server sockets bind. */
sf_curve_auth_t *sf_curve_auth_new(void *zctx, const char *path);

/* Admit one more public key (Z85) from now on, e.g. a key pair a server made for its own
 * in-process participants. Safe while the handler runs. Returns 0, or -1 with errno
 * (EINVAL not a Z85 key, E2BIG when full). */
int sf_curve_auth_allow(sf_curve_auth_t *a, const char *z85_public);

/* Number of keys admitted. */
size_t sf_curve_auth_keys(sf_curve_auth_t *a);

/* Requests answered so far: admitted and refused. */
void sf_curve_auth_counts(sf_curve_auth_t *a, unsigned long *ok, unsigned long *refused);

/* Stop the handler thread and free; takes NULL, sets *self_p to NULL. Call before the
 * context is terminated. */
void sf_curve_auth_destroy(sf_curve_auth_t **self_p);

#endif
