/* view/runrec.h — a recorded run: what the plots are drawn from.
 *
 * A run record holds, for one scenario:
 *  - trajectory points (time, vehicle, link, position, speed, type) of the vehicles on
 *    the arterial, sampled every `every_s` seconds from vehicle snapshots (or taken from
 *    the simulator's own trajectory recorder);
 *  - every lamp change of every signal group (time, intersection, group, new code);
 *  - the queue of every approach link (longest lane, metres; see queues.h) at each
 *    snapshot sample.
 *
 * The arterial is derived from the scenario: the intersections' principal axis (x when
 * their east-west extent is at least their north-south extent, else y); a link is on
 * the arterial when it runs along that axis (|cos| >= 0.9) and both its ends lie within
 * SF_ARTERIAL_BAND_M of the intersections' mean cross coordinate. "Distance" is the
 * coordinate along the axis, so an intersection's distance is its x (or y); links run
 * in the + direction ("inbound"/eastbound/northbound, dir +1) or the - direction (-1).
 *
 * The record is saved as a binary file (native byte order, checked on load; layout in
 * runrec.c) that `sigflow plot` reads back with the scenario it names.
 */
#ifndef SIGFLOW_RUNREC_H
#define SIGFLOW_RUNREC_H

#include <stddef.h>
#include <stdint.h>

#include "scenario.h"
#include "sim.h"

#define SF_ARTERIAL_BAND_M 60.0

typedef struct sf_runrec sf_runrec_t;

/* A lamp change. */
typedef struct {
    float t_s;    /* sim time it took effect */
    uint16_t ix;  /* intersection index */
    uint8_t sg;   /* signal group index */
    uint8_t code; /* new GB/T 20999 lamp code */
} sf_lamp_change_t;

/* New empty record for sc (kept by pointer; sc must outlive it), sampling trajectories
 * and queues every every_s seconds (> 0). NULL with errno EINVAL / ENOMEM. */
sf_runrec_t *sf_runrec_new(const sf_scenario_t *sc, double every_s);

/* Free; takes NULL, sets *self_p NULL. */
void sf_runrec_destroy(sf_runrec_t **self_p);

/* The scenario the record belongs to. */
const sf_scenario_t *sf_runrec_scenario(const sf_runrec_t *rec);

/* Offer a snapshot at sim time t_s: it is sampled when at least every_s has passed since
 * the last sample (else ignored). Returns 1 sampled, 0 skipped, -1 with errno (EINVAL
 * time going backwards, ENOMEM). */
int sf_runrec_add_snapshot(sf_runrec_t *rec, double t_s, const sf_vehicle_snap_t *veh, size_t n);

/* Lamps of intersection ix at sim time t_s (codes for groups 0..n-1): changes against
 * the previous call are recorded. Returns the number of changes, or -1 (EINVAL: bad
 * index or n, or t_s earlier than the latest recorded change). */
int sf_runrec_add_lamps(sf_runrec_t *rec, double t_s, uint32_t ix, const uint8_t *codes, size_t n);

/* Append points from the simulator's trajectory recorder (no vehicle type there: all are
 * recorded as type `type`). Points on links off the arterial are skipped. Returns the
 * number kept or -1 (ENOMEM). */
int sf_runrec_add_points(sf_runrec_t *rec, const sf_traj_point_t *pts, size_t n, uint8_t type);

/* Counts. */
size_t sf_runrec_n_points(const sf_runrec_t *rec);
size_t sf_runrec_n_lamp_changes(const sf_runrec_t *rec);
size_t sf_runrec_n_queue_samples(const sf_runrec_t *rec);

/* Time span covered (first and last sample or lamp change); 0, 0 when empty. */
void sf_runrec_span(const sf_runrec_t *rec, double *t0, double *t1);

/* Point i (i < n_points): fills whichever pointers are non-NULL. Returns 0 or -1. */
int sf_runrec_point(const sf_runrec_t *rec, size_t i, float *t_s, uint32_t *veh, uint32_t *link,
                    float *pos_m, float *speed_mps, uint8_t *type);

/* Lamp change i. */
const sf_lamp_change_t *sf_runrec_lamp_change(const sf_runrec_t *rec, size_t i);

/* Lamp code of (ix, sg) at time t_s from the recorded changes; SF_LAMP_NONE (0) before
 * the first change. */
uint8_t sf_runrec_lamp_at(const sf_runrec_t *rec, uint32_t ix, uint8_t sg, double t_s);

/* Queue sample i: its time and the queue of link (0 for a link that is not an
 * approach). Returns 0 or -1 (EINVAL). */
int sf_runrec_queue(const sf_runrec_t *rec, size_t i, uint32_t link, double *t_s, float *queue_m);

/* Sampling period given at creation (or stored in the file), s. */
double sf_runrec_every_s(const sf_runrec_t *rec);

/* Name of an arterial direction: "eastbound"/"westbound" along x, "northbound"/
 * "southbound" along y. */
const char *sf_runrec_dir_name(const sf_runrec_t *rec, int dir);

/* Arterial geometry: direction of a link on it (+1, -1; 0 off the arterial), distance
 * of a point of a link, an intersection's distance, and whether it is on the arterial. */
int sf_runrec_link_dir(const sf_runrec_t *rec, uint32_t link);
double sf_runrec_distance(const sf_runrec_t *rec, uint32_t link, float pos_m);
double sf_runrec_ix_distance(const sf_runrec_t *rec, uint32_t ix);
bool sf_runrec_ix_on_arterial(const sf_runrec_t *rec, uint32_t ix);

/* The arterial approach of ix in direction dir (+1/-1) and the signal group of its
 * through movement. Returns 0, or -1 (ENOENT: no such approach or movement). */
int sf_runrec_approach(const sf_runrec_t *rec, uint32_t ix, int dir, uint32_t *link, uint8_t *sg);

/* Write the record to path. Returns 0, or -1 with errno (and the reason in err). */
int sf_runrec_save(const sf_runrec_t *rec, const char *path, char *err, size_t err_len);

/* Read the scenario path stored in a record file into buf. Returns 0, or -1 with the
 * reason in err ("FILE: not a sigflow run record", ...). */
int sf_runrec_peek_scenario(const char *path, char *buf, size_t len, char *err, size_t err_len);

/* Load a record written for sc. NULL with errno and a precise reason in err (bad magic,
 * truncated, another scenario, an index out of range, a non-finite number...). */
sf_runrec_t *sf_runrec_load(const sf_scenario_t *sc, const char *path, char *err, size_t err_len);

#endif
