/* view/panel.h — the intersection panel: ring-and-barrier diagram and unit state.
 *
 * sf_ix_status_t is the viewer's picture of one intersection, fed from the bus
 * (LampStates for the lamps, phase status, plan, mode, fault; ControllerEvent for comms
 * and priority requests) or directly from a unit's status in the run loop. The panel
 * draws, for the intersection's rings, one box per phase in service order with a width
 * proportional to its split in the active plan (max 1 + yellow + red clearance without
 * a plan), barrier lines between barrier groups, the active phases filled with their
 * interval colour and the time left, then plan, cycle timer, control mode, comms state,
 * fault and the latest priority requests with their state.
 */
#ifndef SIGFLOW_PANEL_H
#define SIGFLOW_PANEL_H

#include <stdbool.h>
#include <stdint.h>

#include "canvas.h"
#include "scenario.h"

#define SF_PANEL_MAX_REQ 6 /* priority requests kept per intersection (latest first) */

typedef enum {
    SF_REQ_PENDING = 0, /* received, no decision yet */
    SF_REQ_GRANTED = 1,
    SF_REQ_REFUSED = 2,
    SF_REQ_SERVED = 3, /* outcome at check-out: served, cancelled or expired (see text) */
} sf_req_state_t;

typedef struct {
    uint32_t id; /* request id (ControllerEvent.request_id) */
    sf_req_state_t state;
    double t_s;    /* sim time of the latest event about it */
    char text[72]; /* the latest event's detail */
} sf_req_view_t;

typedef struct {
    bool known;                          /* a LampStates has arrived */
    uint8_t lamps[SF_MAX_SG];            /* GB/T 20999 lamp code per signal group */
    uint16_t remaining_ds[SF_MAX_SG];    /* time left in each group's lamp, 0.1 s */
    uint32_t greens, yellows, reds;      /* bit i = phases[i] in that interval */
    uint8_t plan;                        /* active plan number 1..16, 0 none */
    uint32_t cycle_timer_ds;             /* position in the cycle, 0.1 s */
    uint32_t control_mode;               /* GB/T 20999 control mode code */
    uint32_t fault_code;                 /* GB/T 20999 fault code, 0 none */
    int comms;                           /* -1 unknown, 0 offline, 1 online */
    uint8_t n_req;                       /* requests in req[] */
    sf_req_view_t req[SF_PANEL_MAX_REQ]; /* latest first */
} sf_ix_status_t;

/* Reset a status to "nothing known". */
void sf_ix_status_init(sf_ix_status_t *s);

/* Record a priority request event: creates the request (newest first, the oldest
 * dropped when full) or updates its state and text. */
void sf_ix_status_note_request(sf_ix_status_t *s, uint32_t id, sf_req_state_t state, double t_s,
                               const char *text);

/* Name of a GB/T 20999 control mode / fault code ("centre coordinated", "green
 * conflict", ...); "unknown (0xNN)" style text for others, written into buf. */
const char *sf_control_mode_name(uint32_t code, char *buf, size_t len);
const char *sf_fault_name(uint32_t code, char *buf, size_t len);

/* Size the panel wants, pixels. */
#define SF_PANEL_W 460
#define SF_PANEL_H 330

/* Draw the panel of intersection ix of sc at (x, y), SF_PANEL_W x SF_PANEL_H. */
void sf_panel_draw(sf_canvas_t *c, const sf_scenario_t *sc, uint32_t ix, const sf_ix_status_t *st,
                   float x, float y);

#endif
