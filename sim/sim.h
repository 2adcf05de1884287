/* sim/sim.h — the microscopic traffic model: network, demand, vehicles, buses, MOEs.
 *
 * No I/O and no clock of its own: a driver (the bus/clock, `sigflow run`, a test or the
 * bench) calls, for each step k:
 *
 *     sf_sim_set_lamps(sim, ix, codes, n)   for every intersection (lamps for step k)
 *     sf_sim_step(sim)                      advance by run.step_s
 *     sf_sim_detectors(...)                 detector bits and counts of step k
 *     while (sf_sim_next_event(sim, &ev))   transit check-in / check-out of step k
 *     sf_sim_snapshot(...)                  optional, at the snapshot rate
 *
 * and at the end sf_sim_report(). The model is deterministic: the same scenario, seed
 * and sequence of lamp inputs give the same report byte for byte (outside `perf`).
 * It draws its randomness from its own PRNG (xoshiro256**, seeded from run.seed).
 *
 * Lamp inputs are GB/T 20999 lamp codes per signal group (sf_intersection_t.sg order):
 * green 0x20/0x21/0x22 = go; yellow 0x30 = the yellow decision (stop if it can at its
 * comfortable deceleration b, else go); flashing yellow 0x31 = proceed with caution
 * (slow to SF_SIM_CAUTION_MPS near the stop line, no stop); red 0x10 and every other
 * code (off, flashing red, red+yellow...) = stop. Until set, every group is red.
 *
 * Thread safety: one sf_sim_t is used by one thread at a time.
 */
#ifndef SIGFLOW_SIM_H
#define SIGFLOW_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "scenario.h"

typedef struct sf_sim sf_sim_t;

#define SF_SIM_CAUTION_MPS 5.0f    /* speed over the stop line under flashing yellow */
#define SF_SIM_NO_LINE     0xFFFFu /* sf_vehicle_snap_t.line of a non-bus vehicle */

/* Lamp codes (GB/T 20999-2017), as the sim reads them. */
#define SF_LAMP_OFF          0x01
#define SF_LAMP_RED          0x10
#define SF_LAMP_GREEN        0x20
#define SF_LAMP_GREEN_FLASH  0x21
#define SF_LAMP_GREEN_FAST   0x22
#define SF_LAMP_YELLOW       0x30
#define SF_LAMP_YELLOW_FLASH 0x31

typedef enum {
    SF_TRANSIT_CHECKIN = 0,  /* bus came within checkin_distance_m of the stop line */
    SF_TRANSIT_CHECKOUT = 1, /* bus crossed the stop line */
} sf_transit_kind_t;

/* One transit event; indices refer to the scenario given to sf_sim_new(). */
typedef struct {
    sf_transit_kind_t kind;
    double t_s;           /* sim time of the event */
    uint32_t bus_id;      /* vehicle id (same as sf_vehicle_snap_t.id) */
    uint32_t line_idx;    /* index into sc->lines */
    uint32_t ix_idx;      /* intersection */
    uint32_t link_idx;    /* approach link */
    uint8_t movement_idx; /* index into intersections[ix_idx].movements */
    uint8_t sg_idx;       /* signal group of that movement */
    float eta_s;          /* check-in: expected time to the stop line (s); 0 at check-out */
    float lateness_s;     /* latest lateness against the timetable (s, > 0 = late) */
} sf_transit_event_t;

/* One vehicle as the bus and the viewer see it. */
typedef struct {
    uint32_t id;       /* unique for the run */
    uint32_t link_idx; /* link it is on */
    uint8_t lane;      /* 0 = kerbside; a bus dwelling in a bay reports lane 0 */
    uint8_t type;      /* sf_veh_type_t */
    uint16_t line;     /* line index for buses, SF_SIM_NO_LINE otherwise */
    float pos_m;       /* front bumper, metres from the link's upstream end */
    float speed_mps;   /* m/s */
} sf_vehicle_snap_t;

/* Priority outcomes the controller reports; counted in the report's `priority`. */
typedef enum {
    SF_PRIO_REQUEST = 0, /* a request was sent to a unit */
    SF_PRIO_GRANTED = 1, /* the unit granted it (early green or extension) */
    SF_PRIO_REFUSED = 2, /* refused (lockout, conflict, not late enough...) */
} sf_prio_event_t;

/* One point of a recorded trajectory (time-space diagram). */
typedef struct {
    float t_s;         /* sim time */
    uint32_t veh_id;   /* vehicle id */
    uint32_t link_idx; /* link */
    float pos_m;       /* front bumper on that link, m */
    float speed_mps;   /* m/s */
} sf_traj_point_t;

/* New simulator for scenario sc (copied: sc may be freed afterwards). Returns NULL with
 * errno EINVAL when the scenario cannot be simulated (e.g. a lane-less movement, a bus
 * route that is not connected) and writes the reason into err (err_len bytes,
 * NUL-terminated; err may be NULL), ENOMEM when out of memory. */
sf_sim_t *sf_sim_new_checked(const sf_scenario_t *sc, char *err, size_t err_len);

/* sf_sim_new_checked without the message. */
sf_sim_t *sf_sim_new(const sf_scenario_t *sc);

/* Free the simulator; takes NULL, sets *self_p to NULL. */
void sf_sim_destroy(sf_sim_t **self_p);

/* Set the lamps of intersection ix_idx for the coming steps: codes[i] for signal group i,
 * n <= SF_MAX_SG (groups past n keep their code). Returns 0, or -1 with errno EINVAL on a
 * bad index or n. */
int sf_sim_set_lamps(sf_sim_t *sim, uint32_t ix_idx, const uint8_t *codes, size_t n);

/* Advance the world by run.step_s. Returns 0, or -1 with errno ENOMEM when an entry
 * queue or the trajectory recorder could not grow (the step is still complete; an
 * arrival may be lost), EINVAL on NULL. Steps past run.duration_s still work (the driver
 * decides when to stop; see sf_sim_finished), but no bus departs after duration_s. */
int sf_sim_step(sf_sim_t *sim);

/* Sim time (s) and number of steps done. */
double sf_sim_time(const sf_sim_t *sim);
uint64_t sf_sim_steps(const sf_sim_t *sim);

/* True once sim time has reached run.duration_s. */
bool sf_sim_finished(const sf_sim_t *sim);

/* Bytes the simulator has allocated (its own accounting, for the benchmark). */
size_t sf_sim_memory(const sf_sim_t *sim);

/* Vehicles currently on links (not counting those waiting in entry queues). */
size_t sf_sim_vehicle_count(const sf_sim_t *sim);

/* Detectors of intersection ix_idx for the last step. *presence (may be NULL) gets bit
 * i = detector i occupied at any time during the step. counts (may be NULL) gets, for
 * the first n detectors, the number of vehicles whose front entered the zone during the
 * step; totals (may be NULL) the same since the start. Returns the number of detectors
 * of that intersection, or -1 with errno EINVAL on a bad index. */
int sf_sim_detectors(const sf_sim_t *sim, uint32_t ix_idx, uint64_t *presence, uint16_t *counts,
                     uint32_t *totals, size_t n);

/* Take the oldest pending transit event into *ev; false when none is pending. The queue
 * holds SF_SIM_EVENT_QUEUE events; when a driver does not drain it the oldest are
 * dropped and counted (report: transit.events_dropped). */
#define SF_SIM_EVENT_QUEUE 1024
bool sf_sim_next_event(sf_sim_t *sim, sf_transit_event_t *ev);

/* Copy up to cap vehicles into out (link order, lane order, front first). Returns the
 * total number of vehicles on links (may exceed cap). */
size_t sf_sim_snapshot(const sf_sim_t *sim, sf_vehicle_snap_t *out, size_t cap);

/* Count a priority outcome for the report. Returns 0, or -1 with errno EINVAL. */
int sf_sim_note_priority(sf_sim_t *sim, sf_prio_event_t event);

/* Start recording trajectories of vehicles on the given links (e.g. an arterial's
 * links in order) every every_s seconds (>= step). Replaces any earlier recording
 * (its points are discarded). n_links == 0 stops recording. Returns 0, or -1 with errno
 * EINVAL / ENOMEM. */
int sf_sim_record(sf_sim_t *sim, const uint32_t *links, size_t n_links, double every_s);

/* Recorded points so far, in time order; *n gets their number. The array stays owned
 * by the simulator and valid until the next sf_sim_step / sf_sim_record. */
const sf_traj_point_t *sf_sim_trajectory(const sf_sim_t *sim, size_t *n);

/* The measures of effectiveness so far as a new JSON object (caller owns the
 * reference), schema in proto/REPORT.md. Everything outside "perf" depends only on the
 * scenario, the seed and the lamp inputs; "perf" is present only when with_perf. */
json_t *sf_sim_report(const sf_sim_t *sim, bool with_perf);

/* sf_sim_report serialised with the fixed flags every tool uses (indent 2, keys in
 * schema order, reals with 10 significant digits). Caller frees with free(). NULL on
 * ENOMEM. */
char *sf_sim_report_string(const sf_sim_t *sim, bool with_perf);

#endif
