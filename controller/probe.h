/* controller/probe.h — conformance test of any Modbus signal unit against the register
 * map (proto/regmap.h), over libmodbus, using nothing but the map.
 *
 * The probe connects to HOST:PORT and runs, in order: identity and protocol version;
 * every readable entry of every table read in valid blocks (read-only values checked
 * against the map's ranges); refused unsafe writes (yellow < 3 s, min green < 5 s, a plan
 * whose coordinated phases conflict, an out-of-range mode command: exception 03; a write
 * to a gap address: exception 02), each read back to prove nothing changed; heartbeat loss
 * leads to local fallback (control_mode 0x2x, local_fallback 1) and a heartbeat brings
 * it back to centre control (0x1x); a command sequence (mode changes, plan select, calls,
 * holds, force-offs, a priority check-in and check-out) during which the lamp registers
 * are sampled at 20 Hz (>= 10 Hz) and no two conflicting groups may be green together.
 *
 * Conflicts: with an intersection (from a scenario) its sg_conflict matrix is checked on
 * every sample of sg_lamp. Without one, the map alone gives a weaker rule that any unit
 * must keep: at most n_rings phases green at once (a ring serves one phase at a time),
 * and fault_code never 0x10 (green conflict seen by the unit's own monitor).
 *
 * The probe leaves the unit as it found it as far as the map allows (mode command
 * restored, calls are momentary), but it does change the unit's control for a while:
 * never point it at a unit controlling real traffic.
 */
#ifndef SIGFLOW_PROBE_H
#define SIGFLOW_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

#define SF_PROBE_MAX_ROWS 32 /* checks in one report */

typedef enum {
    SF_PROBE_PASS = 0,
    SF_PROBE_FAIL = 1,
    SF_PROBE_SKIP = 2, /* not applicable to this unit, or turned off */
} sf_probe_result_t;

/* One check: what was expected and what was seen. */
typedef struct {
    char name[40];            /* short check name, e.g. "refuse yellow < 3 s" */
    sf_probe_result_t result; /* pass, fail or skip */
    char expected[160];       /* what a conforming unit does */
    char seen[320];           /* what this unit did */
} sf_probe_row_t;

typedef struct {
    const char *host;            /* IPv4 address or name of the unit */
    uint16_t port;               /* Modbus TCP port */
    int unit_id;                 /* Modbus unit identifier (MBAP), 0..247; default 1 */
    double timeout_s;            /* response timeout per request, s; 0 = 1 s */
    double max_wait_s;           /* longest wait for a mode change (start-up, fallback,
                                    return to centre), s; 0 = 120 s */
    double sequence_s;           /* length of the command sequence, s; 0 = 10 s */
    bool no_fallback;            /* skip the heartbeat-loss check (it takes the unit's
                                    heartbeat timeout plus up to a cycle) */
    const sf_intersection_t *ix; /* conflicts from this intersection; NULL = map rule */
} sf_probe_config_t;

typedef struct {
    size_t n_rows;                          /* rows filled */
    sf_probe_row_t rows[SF_PROBE_MAX_ROWS]; /* in the order run */
    size_t n_failed;                        /* rows with SF_PROBE_FAIL */
    uint32_t lamp_samples;                  /* lamp samples taken during the sequence */
    double lamp_hz;                         /* their measured mean rate, samples / s */
    double lamp_max_gap_s;                  /* longest time between two samples, s */
    uint32_t conflicts_seen;                /* samples with conflicting greens */
} sf_probe_report_t;

/* Fill cfg with the defaults above (host and port left NULL / 0). */
void sf_probe_config_default(sf_probe_config_t *cfg);

/* Run every check against the unit at cfg->host:port and fill *out. Returns 0 when the
 * probe ran (failures are rows of *out, n_failed counts them), or -1 with errno when it
 * could not start (EINVAL bad config; a connection error: *out then holds one failed
 * "connect" row saying why). */
int sf_probe_run(const sf_probe_config_t *cfg, sf_probe_report_t *out);

/* Print the report as a fixed-width pass/fail table, one row per check, and a summary
 * line. 0, or -1 with errno on a write error. */
int sf_probe_write_table(FILE *out, const sf_probe_report_t *rep);

/* Name of a result: "PASS", "FAIL", "SKIP" ("?" for a bad value). */
const char *sf_probe_result_name(sf_probe_result_t r);

#endif
