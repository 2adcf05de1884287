/* proto/record.h — bus recordings: an append-only file of bus messages, each checksummed.
 *
 * File layout (all integers little-endian):
 *   header, 16 bytes: magic "SFREC\r\n\x1a", u32 format version (SF_REC_FORMAT),
 *                     u32 bus contract version (SF_BUS_VERSION of the recorder)
 *   records, each:    u32 len, u32 ~len (guards the length itself), u32 crc32(body),
 *                     body = u64 t_ns (receive time, ns, monotonic since recording began),
 *                            u16 topic_len, topic bytes, payload bytes (the encoded
 *                            message frame exactly as received)
 * The checksum is the bus codec's IEEE CRC-32 (sf_bus_crc32).
 *
 * Durability: every record is written with one write(2) of the whole frame, so a recorder
 * killed at any moment (SIGKILL included) leaves whole records plus at most one short
 * tail; data written is in the page cache and survives the process. Against a machine
 * crash the writer calls fdatasync when SF_REC_SYNC_MS have passed since the last one (at
 * the first record written after that) and at close, so at most about that much is lost.
 *
 * Reading: a short or torn last record (one that runs past the end of the file, or whose
 * checksum fails while it ends exactly at the end of the file) is SF_REC_ETAIL: every
 * record before it has been returned, and it is ignored. Anything else wrong (a length
 * that disagrees with its guard or exceeds the limit, a checksum that fails with more
 * data after it) is SF_REC_ECORRUPT, reported with the record index and byte offset.
 */
#ifndef SIGFLOW_RECORD_H
#define SIGFLOW_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus_codec.h"

#define SF_REC_MAGIC      "SFREC\r\n\x1a" /* 8 bytes, no NUL */
#define SF_REC_FORMAT     1               /* format version written */
#define SF_REC_HEADER     16              /* bytes of the file header */
#define SF_REC_FRAME_HEAD 12              /* bytes before each record's body */
#define SF_REC_BODY_HEAD  10              /* t_ns + topic_len */
/* Largest body accepted: the largest bus message plus its topic and head. */
#define SF_REC_MAX_BODY (SF_BUS_MAX_MSG + SF_BUS_TOPIC_MAX + SF_REC_BODY_HEAD)
#define SF_REC_SYNC_MS  1000 /* fdatasync at most this often, ms */

/* Error codes (errno values). */
#define SF_REC_EBASE    0x5C00
#define SF_REC_EMAGIC   (SF_REC_EBASE + 1) /* not a recording (magic) or header cut short */
#define SF_REC_EFORMAT  (SF_REC_EBASE + 2) /* format version not understood */
#define SF_REC_ETAIL    (SF_REC_EBASE + 3) /* last record short or torn: ignored */
#define SF_REC_ECORRUPT (SF_REC_EBASE + 4) /* a record in the middle is damaged */

/* Message for errnum (SF_REC_E*, else sf_bus_strerror). Never NULL. */
const char *sf_rec_strerror(int errnum);

typedef struct sf_rec_writer_t sf_rec_writer_t;

/* Create (truncate) path and write the header. Returns NULL with errno. */
sf_rec_writer_t *sf_rec_writer_new(const char *path);

/* Append one record. t_ns: receive time since the recording began; topic of topic_len
 * bytes (1..SF_BUS_TOPIC_MAX), payload of len bytes. Returns 0, or -1 with errno (EINVAL,
 * E2BIG beyond SF_REC_MAX_BODY, or from write). */
int sf_rec_write(sf_rec_writer_t *w, uint64_t t_ns, const void *topic, size_t topic_len,
                 const void *payload, size_t len);

/* Records written so far. */
uint64_t sf_rec_writer_count(const sf_rec_writer_t *w);

/* fdatasync, close and free; takes NULL, sets *self_p to NULL. Returns 0, or -1 with
 * errno when the final sync or close failed (the writer is freed anyway). */
int sf_rec_writer_destroy(sf_rec_writer_t **self_p);

/* One record as read; the pointers are owned by the reader, valid until the next call. */
typedef struct {
    uint64_t t_ns;          /* receive time since the recording began, ns */
    const uint8_t *topic;   /* topic bytes (not NUL-terminated) */
    size_t topic_len;       /* bytes */
    const uint8_t *payload; /* encoded message frame */
    size_t len;             /* bytes */
} sf_rec_t;

typedef struct sf_rec_reader_t sf_rec_reader_t;

/* Read a recording from f (borrowed; read sequentially from its current position, which
 * must be the start of the file). Checks the header. Returns NULL with errno
 * (SF_REC_EMAGIC, SF_REC_EFORMAT, ENOMEM, EIO). */
sf_rec_reader_t *sf_rec_reader_new(FILE *f);

/* Bus contract version in the header. */
uint32_t sf_rec_reader_bus_version(const sf_rec_reader_t *r);

/* Next record. Returns 1 with *rec filled, 0 at a clean end of file, or -1 with errno:
 * SF_REC_ETAIL or SF_REC_ECORRUPT (see sf_rec_reader_index / _offset for where), ENOMEM,
 * EIO. After -1 the reader stays at the error. */
int sf_rec_next(sf_rec_reader_t *r, sf_rec_t *rec);

/* Index (0-based) of the record the last call returned or failed on. */
uint64_t sf_rec_reader_index(const sf_rec_reader_t *r);

/* Byte offset in the file of the start of that record. */
uint64_t sf_rec_reader_offset(const sf_rec_reader_t *r);

/* A one-line description of the last error with index and offset, into buf; returns buf. */
char *sf_rec_reader_error(const sf_rec_reader_t *r, char *buf, size_t cap);

/* Free; takes NULL, sets *self_p to NULL. Does not close the FILE. */
void sf_rec_reader_destroy(sf_rec_reader_t **self_p);

#endif
