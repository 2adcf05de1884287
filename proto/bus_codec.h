/* proto/bus_codec.h — encode and decode the messages of proto/bus.proto, with checks.
 *
 * A bus message is two ZeroMQ frames: [topic][encoded message]. This module knows every
 * message type, its topic, and how to turn a message into bytes and back:
 *  - encoding stamps `version` (SF_BUS_VERSION) when the caller left it 0, refuses any
 *    other version, checks the fields (sf_bus_check) and appends the integrity trailer
 *    (field 1000, `fixed32 crc32` = IEEE CRC-32 of every byte before it; see bus.proto);
 *  - decoding refuses, with errno set to a precise SF_BUS_E* code, anything that is not
 *    exactly one well-formed message of the expected type and version: garbage, a
 *    truncated or extended buffer, a missing or wrong trailer, a wrong version, an oversize
 *    buffer, inconsistent fields. It never crashes and frees everything on failure.
 *
 * Messages are the protobuf-c structs of the generated header `bus.pb-c.h` (Sfbus__Step,
 * ...), handled here through their common head `ProtobufCMessage`.
 */
#ifndef SIGFLOW_BUS_CODEC_H
#define SIGFLOW_BUS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "bus.pb-c.h"
#include "versions.h"

/* The message types, one per topic. */
typedef enum {
    SF_BUS_HELLO = 0,
    SF_BUS_WELCOME, /* topic "welcome.<name>" */
    SF_BUS_STEP,
    SF_BUS_DET,
    SF_BUS_LAMPS,
    SF_BUS_DONE,
    SF_BUS_TRANSIT_IN,
    SF_BUS_TRANSIT_OUT,
    SF_BUS_SNAP,
    SF_BUS_EVENT,
    SF_BUS_SUMMARY,
    SF_BUS_CMD,
    SF_BUS_BYE,
    SF_BUS_N_TYPES
} sf_bus_type_t;

/* Largest encoded message accepted, bytes (a 100k-vehicle snapshot is about 3 MB). */
#define SF_BUS_MAX_MSG (32u * 1024u * 1024u)
/* Longest topic, bytes without NUL ("welcome." + a 63-byte name). */
#define SF_BUS_TOPIC_MAX 72
/* Longest participant name, bytes without NUL. */
#define SF_BUS_NAME_MAX 63

/* Error codes (errno values) of the bus modules; sf_bus_strerror() names them. */
#define SF_BUS_EBASE      0x5B00
#define SF_BUS_EMALFORMED (SF_BUS_EBASE + 1)  /* not a protobuf of the expected type */
#define SF_BUS_ETRAILER   (SF_BUS_EBASE + 2)  /* integrity trailer missing, misplaced or wrong */
#define SF_BUS_EVERSION   (SF_BUS_EBASE + 3)  /* version field is not SF_BUS_VERSION */
#define SF_BUS_ETOOBIG    (SF_BUS_EBASE + 4)  /* larger than SF_BUS_MAX_MSG */
#define SF_BUS_EFIELD     (SF_BUS_EBASE + 5)  /* a field out of range or arrays of unequal length */
#define SF_BUS_ETOPIC     (SF_BUS_EBASE + 6)  /* unknown topic, or topic and message disagree */
#define SF_BUS_EFRAMES    (SF_BUS_EBASE + 7)  /* not exactly two frames */
#define SF_BUS_ESPACE     (SF_BUS_EBASE + 8)  /* caller's buffer too small */
#define SF_BUS_ETIMEOUT   (SF_BUS_EBASE + 9)  /* lockstep: a peer did not answer in time */
#define SF_BUS_EREFUSED   (SF_BUS_EBASE + 10) /* lockstep: registration refused */
#define SF_BUS_EPROTO     (SF_BUS_EBASE + 11) /* lockstep: message out of sequence */
#define SF_BUS_ECLOSED    (SF_BUS_EBASE + 12) /* lockstep: the clock said bye */
#define SF_BUS_ELAST      (SF_BUS_EBASE + 13)

/* Message for errnum: the SF_BUS_E* text, zmq_strerror() for anything else. Never NULL. */
const char *sf_bus_strerror(int errnum);

/* Topic string of a type ("hello", "step", ...; "welcome" for SF_BUS_WELCOME, whose real
 * topic is "welcome.<name>"); NULL when t is out of range. */
const char *sf_bus_topic(sf_bus_type_t t);

/* Type named by a received topic frame (len bytes, not NUL-terminated; "welcome.<name>"
 * is SF_BUS_WELCOME); -1 with errno SF_BUS_ETOPIC when unknown. */
int sf_bus_type_of_topic(const void *topic, size_t len);

/* Type of a message from its descriptor; -1 with errno EINVAL if it is not a bus message. */
int sf_bus_type_of(const ProtobufCMessage *msg);

/* Descriptor of type t, NULL if out of range. */
const ProtobufCMessageDescriptor *sf_bus_descriptor(sf_bus_type_t t);

/* Write the topic of msg into buf (cap bytes, NUL-terminated): the type's topic, or
 * "welcome.<name>". Returns its length, or -1 (EINVAL, SF_BUS_ESPACE). */
int sf_bus_topic_of(const ProtobufCMessage *msg, char *buf, size_t cap);

/* Check the fields of a message against the contract (lengths, ranges, names). Returns 0,
 * or -1 with errno SF_BUS_EFIELD (or SF_BUS_EVERSION) and a one-line reason in why (may be
 * NULL) of why_cap bytes. */
int sf_bus_check(const ProtobufCMessage *msg, char *why, size_t why_cap);

/* IEEE 802.3 CRC-32 (the trailer's checksum) of len bytes. */
uint32_t sf_bus_crc32(const void *data, size_t len);

/* Exact encoded size of msg including its trailer, bytes. */
size_t sf_bus_encoded_size(const ProtobufCMessage *msg);

/* Encode msg (version stamped if 0) into buf of cap bytes. Returns the length written, or
 * -1 with errno EINVAL, SF_BUS_EVERSION, SF_BUS_EFIELD, SF_BUS_ETOOBIG or SF_BUS_ESPACE.
 * msg is not modified. */
long sf_bus_encode(const ProtobufCMessage *msg, uint8_t *buf, size_t cap);

/* Encode msg into out, which this initialises (zmq_msg_init_size); on success the caller
 * owns out (send it or zmq_msg_close it). Returns 0, or -1 with errno as sf_bus_encode
 * (out is then left closed). */
int sf_bus_encode_zmq(const ProtobufCMessage *msg, zmq_msg_t *out);

/* Decode len bytes as a message of type t. Returns a new message (free with
 * sf_bus_msg_destroy), or NULL with errno SF_BUS_ETOOBIG, SF_BUS_ETRAILER,
 * SF_BUS_EMALFORMED, SF_BUS_EVERSION, SF_BUS_EFIELD, ENOMEM or EINVAL; on SF_BUS_EFIELD the
 * reason is written into why (may be NULL). */
ProtobufCMessage *sf_bus_decode(sf_bus_type_t t, const uint8_t *buf, size_t len, char *why,
                                size_t why_cap);

/* Free a decoded message; takes NULL, sets *msg_p to NULL. */
void sf_bus_msg_destroy(ProtobufCMessage **msg_p);

#endif
