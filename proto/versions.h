/* proto/versions.h — the versions of sigflow's contracts.
 *
 * A contract version changes when a peer built against the old one would misread the
 * new one: a renumbered register, a renamed bus field, a scenario field with a new
 * meaning. Adding a register in reserved space, an optional proto field or an optional
 * scenario field with a default does not change it.
 */
#ifndef SIGFLOW_VERSIONS_H
#define SIGFLOW_VERSIONS_H

#define SF_BUS_VERSION      1 /* proto/bus.proto, field `version` of every message */
#define SF_REGMAP_VERSION   4 /* proto/regmap.c, register `protocol_version` (2: det_input,
                                 3: poll_image, 4: poll_image_rw) */
#define SF_SCENARIO_VERSION 1 /* proto/SCENARIO.md, field `version` of a scenario file */

#endif
