/* sim/sim_internal.h — the simulator's private state, shared by sim.c (model) and
 * sim_report.c (measures of effectiveness). Not a public header.
 *
 * Layout (data-oriented): every lane owns three parallel arrays (pos, v, veh) in one
 * block, holding its vehicles front first (index 0 is the vehicle nearest the stop
 * line), so car-following walks contiguous memory. Everything else about a vehicle sits
 * in struct-of-arrays pools indexed by veh[], recycled through a free stack. Lane arrays,
 * the pool, entry queues and the trajectory recorder grow by doubling when full (so
 * memory follows the traffic, not the network's jam capacity); a steady step allocates
 * nothing.
 */
#ifndef SIGFLOW_SIM_INTERNAL_H
#define SIGFLOW_SIM_INTERNAL_H

#include "sim.h"

#define SF_NONE32 0xFFFFFFFFu
#define SF_NONE16 0xFFFFu
#define SF_NONE8  0xFFu

/* Vehicle flags (pool flags[]). */
enum {
    VF_YGO = 1,        /* yellow decision taken: go (also carries it through red) */
    VF_YSTOP = 2,      /* yellow decision taken: stop */
    VF_STOPPED = 4,    /* stopped since speed fell below STOP_V (cleared above MOVE_V) */
    VF_ACC_OPEN = 8,   /* crossed a stop line; its approach account closes downstream */
    VF_AOG = 16,       /* projected stop-line arrival still to be classified */
    VF_CHECKIN = 32,   /* bus checked in on this link */
    VF_THRU_IN = 64,   /* entered this link straight on: from a boundary or by a through movement */
    VF_ACC_THRU = 128, /* the open approach account is a through passage (in and out straight) */
};

/* Lamp classes. */
enum { LAMP_STOP = 0, LAMP_GO = 1, LAMP_YELLOW = 2, LAMP_CAUTION = 3 };

typedef struct {
    float len;     /* vehicle length, m */
    float a;       /* IDM max acceleration, m/s^2 */
    float b;       /* IDM comfortable deceleration, m/s^2 */
    float s0;      /* IDM jam gap, m */
    float t;       /* IDM time headway, s */
    float v0f;     /* desired speed / speed limit */
    float inv2sab; /* 1 / (2 sqrt(a b)), s^2/m */
} vtype_t;

typedef struct {
    float *pos;     /* m, front bumpers, front first (also the allocation base) */
    float *v;       /* m/s */
    uint32_t *veh;  /* pool indices */
    uint32_t cap;   /* allocated slots (doubles up to jam) */
    uint32_t jam;   /* physical capacity at jam density */
    uint32_t n;     /* vehicles, front first */
    uint32_t link;  /* link index */
    float start_m;  /* 0, or where the turn bay starts (m from the link start) */
    uint8_t idx;    /* lane index on the link, 0 = kerbside */
    uint8_t use;    /* sf_lane_use_t bits */
    uint16_t n_det; /* detectors on this lane */
    uint32_t det0;  /* first in sim->ldet */
    /* a mandatory lane changer beside this lane that found no gap in the last step
     * (the one nearest the stop line): the vehicle behind its tail here lets it in */
    uint32_t coop_w; /* its pool index, SF_NONE32 = none */
    float coop_tail; /* m, its rear bumper */
    float coop_v;    /* m/s */
} lane_t;

typedef struct {
    float zs, ze; /* zone on the link, m from the link start */
    uint32_t ix;  /* intersection */
    uint8_t det;  /* detector index in that intersection */
} ldet_t;

typedef struct {
    uint32_t to_link; /* exit link */
    uint8_t sg;       /* signal group */
    uint8_t turn;     /* sf_turn_t */
    uint8_t lanes;    /* bit i = lane i of the approach allows it */
} mov_t;

typedef struct {
    float len;              /* m */
    float v0[SF_VEH_N];     /* desired speed per vehicle type, m/s */
    float inv_v0[SF_VEH_N]; /* 1 / v0, s/m */
    uint32_t lane0;         /* first lane in sim->lanes */
    uint8_t n_lanes;
    uint8_t kerb_lane;               /* lowest full-length lane (buses serve stops from it) */
    uint8_t full_mask;               /* bit i = lane i runs the full length */
    uint8_t n_mov;                   /* movements leaving this link */
    int32_t to_ix;                   /* downstream intersection, -1 = boundary (exit link) */
    int32_t source;                  /* entry queue index when it starts at a boundary, else -1 */
    uint8_t mov[SF_MAX_MOVEMENTS];   /* movement indices in the downstream intersection */
    float mov_cum[SF_MAX_MOVEMENTS]; /* cumulative choice probability */
    uint8_t lc;                      /* lanes differ (use, bays, stops): run lane changing */
    uint8_t recorded;                /* trajectory recorder watches this link */
} link_t;

/* Measures of one approach (a link ending at an intersection), after warm-up. */
typedef struct {
    uint64_t crossed;      /* vehicles over the stop line */
    double sum_sl_delay;   /* s: stop-line crossing minus undelayed (free-flow) crossing */
    uint64_t n_acc;        /* closed delay accounts */
    double sum_delay;      /* s */
    double sum_stops;      /* stops */
    uint64_t n_thru;       /* closed accounts of through vehicles (VF_ACC_THRU) */
    double sum_thru_stops; /* their stops */
    uint64_t arrivals;     /* projected stop-line arrivals */
    uint64_t arr_green;    /* ... of which on green */
    double q_sum;          /* sum of sampled queue lengths, m */
    uint64_t q_n;          /* samples */
    float q_max;           /* m */
} app_moe_t;

typedef struct {
    uint32_t link;     /* entry link */
    double *t;         /* arrival times of waiting vehicles (ring) */
    uint8_t *type;     /* their types */
    uint32_t *bus;     /* bus record or SF_NONE32 */
    uint32_t head;     /* ring start */
    uint32_t n;        /* waiting */
    uint32_t cap;      /* ring capacity (grows when oversaturated) */
    uint8_t pend_mov;  /* head vehicle's chosen movement, NONE8 = not chosen yet */
    uint8_t pend_lane; /* head vehicle's chosen lane, NONE8 = not chosen yet */
} source_t;

typedef struct {
    uint32_t src;    /* source index */
    sf_entry_t e;    /* copy of the scenario entry */
    double next_t;   /* next arrival, s; INFINITY = none */
    uint64_t rng[4]; /* this entry's own stream (xoshiro256**) for its arrival gaps and
                        vehicle types: nothing else draws from it, so the demand of a seed
                        is the same whatever the signals do (common random numbers: the
                        arms of a comparison see the same vehicles arrive) */
} gen_t;

typedef struct {
    sf_line_t l;                        /* copy of the scenario line */
    uint8_t route_mov[SF_MAX_ROUTE];    /* movement at the end of route[k], or NONE8 */
    uint8_t stop_rk[SF_MAX_LINE_STOPS]; /* route index of each stop's link */
    int32_t source;                     /* entry queue of route[0] */
    uint32_t dispatched;                /* buses sent so far */
    /* measures after warm-up */
    uint64_t n_done;                             /* buses that finished the route */
    double sum_tt, sum_sig_delay, sum_sig_stops; /* over finished buses */
    uint64_t n_late;                             /* stop departures */
    double sum_late;                             /* s */
    uint64_t n_dwell;                            /* dwells */
    double sum_dwell;                            /* s */
} line_t;

typedef struct {
    uint32_t veh;       /* pool index while on the network, else NONE32 */
    uint16_t line;      /* line index */
    uint8_t route_k;    /* current link = line.route[route_k] */
    uint8_t stop_k;     /* next stop to serve */
    uint8_t in_bay;     /* dwelling off the lane in a bay */
    uint32_t bay_lane;  /* global lane index it left for the bay */
    uint8_t done;       /* finished or gone */
    uint8_t dwelling;   /* dwell in progress */
    double t_sched;     /* scheduled departure from the first stop/terminus, s */
    float dwell_left;   /* s */
    float dwell_total;  /* s, of the current dwell */
    float lateness;     /* s, latest against the timetable */
    float sig_delay;    /* s, delay outside bus-stop zones */
    float zone_until;   /* m on the current link: still in a bus-stop zone before this */
    float bay_pos;      /* m, position while in a bay */
    uint32_t bay_link;  /* link of the bay */
    uint16_t sig_stops; /* stops outside bus-stop zones */
    float eta_sent;     /* s, ETA of its last check-in on the current link */
    double eta_at;      /* sim time of that check-in */
} bus_t;

struct sf_sim {
    /* scenario copy (what the model needs) */
    char name[SF_NAME_LEN]; /* scenario name */
    uint64_t seed;          /* run.seed */
    double dt;              /* s per step */
    double duration_s;      /* run.duration_s */
    double warmup_s;        /* run.warmup_s */
    float checkin_m;        /* control.priority.checkin_distance_m */
    uint32_t slice_s;       /* demand profile slice, s */
    vtype_t vt[SF_VEH_N];   /* vehicle types */

    uint32_t n_ix;                   /* intersections */
    char (*ix_id)[SF_ID_LEN];        /* their ids */
    uint8_t *ix_n_sg;                /* signal groups per intersection */
    uint8_t *ix_n_det;               /* detectors per intersection */
    uint8_t(*ix_n_mov);              /* movements per intersection */
    mov_t *mov;                      /* [n_ix * SF_MAX_MOVEMENTS] */
    uint8_t (*lamp)[SF_MAX_SG];      /* current lamp class per group */
    uint8_t (*lamp_code)[SF_MAX_SG]; /* current lamp code per group */
    uint64_t *presence;              /* per intersection, last step */
    uint16_t *det_step;              /* [n_ix * SF_MAX_DET] counts in the last step */
    uint32_t *det_total;             /* [n_ix * SF_MAX_DET] counts since start */

    /* injected detector faults (scenario faults.detectors), applied after each step's
     * detectors are read from the vehicles (sim_step.c apply_det_faults) */
    uint8_t n_dfault;
    sf_det_fault_t dfault[SF_MAX_DET_FAULTS];

    uint32_t n_links;
    link_t *links;
    char (*link_id)[SF_ID_LEN];
    app_moe_t *app; /* per link (used when it ends at an intersection) */
    uint32_t n_lanes;
    lane_t *lanes;
    uint32_t n_ldet;
    ldet_t *ldet;

    /* vehicle pool (struct of arrays) */
    uint32_t pool_cap;
    uint32_t *free_stack; /* free pool indices */
    uint32_t n_free;
    uint32_t *v_id;         /* id for the outside world */
    uint8_t *v_type;        /* sf_veh_type_t */
    uint8_t *v_flags;       /* VF_* */
    uint8_t *v_mov;         /* movement at the end of the current link, NONE8 = exit */
    uint8_t *v_nmov;        /* chosen movement on the next link, NONE8 = not yet */
    uint8_t *v_nlane;       /* chosen lane on the next link, NONE8 = not yet */
    uint32_t *v_bus;        /* bus record, NONE32 = not a bus */
    double *v_tsys;         /* time it arrived (joined the entry queue), s */
    float *v_tarr;          /* projected undelayed stop-line arrival, s */
    float *v_delay;         /* delay so far (entry queue included), s */
    float *v_delay_open;    /* v_delay when the approach account opened */
    uint16_t *v_stops;      /* stops so far */
    uint16_t *v_stops_open; /* v_stops when the account opened */
    uint32_t *v_acc;        /* approach link of the open account, NONE32 = none */
    double *v_tcross;       /* time it crossed the account's stop line */
    float *v_tlc;           /* time of the last lane change, s */
    uint32_t next_id;       /* id of the next vehicle */
    size_t n_on;            /* vehicles on lanes (+ bays) */

    uint32_t n_src;
    source_t *src;
    uint32_t n_gen;
    gen_t *gen;
    uint32_t n_lines;
    line_t *lines;
    uint32_t n_bus; /* bus records in use */
    uint32_t bus_cap;
    bus_t *bus;
    uint32_t *bay; /* buses dwelling in bays (off their lane) */
    uint32_t n_bay;

    /* transit events ring */
    sf_transit_event_t ev[SF_SIM_EVENT_QUEUE];
    uint32_t ev_head, ev_n;
    uint64_t ev_dropped;

    /* trajectories */
    double rec_every;       /* s; 0 = off */
    uint64_t rec_next_step; /* step of the next sample */
    sf_traj_point_t *rec;
    size_t rec_n, rec_cap;

    /* PRNG */
    uint64_t rng[4]; /* xoshiro256** state */

    /* clock */
    uint64_t step; /* steps done */
    double t;      /* sim time = step * dt */

    /* network measures after warm-up */
    uint64_t completed;                  /* vehicles that left the network */
    double sum_delay, sum_stops, sum_tt; /* over completed vehicles */
    uint64_t inserted;                   /* vehicles that entered the network (all time) */
    uint64_t blocked_transfers;          /* merges refused for lack of room (all time) */
    uint64_t prio[3];                    /* priority outcomes */
    size_t mem_bytes;                    /* bytes allocated by the simulator */
    /* perf */
    double wall_s;        /* wall time inside sf_sim_step */
    uint64_t veh_updates; /* vehicle-steps */
};

/* Model constants (see sim.c for the model). */
#define MAX_DECEL      9.0f   /* m/s^2, physical emergency braking limit */
#define STOP_V         1.0f   /* m/s: falling below it is a stop ... */
#define MOVE_V         3.0f   /* m/s: ... once the speed rose above this since the last one */
#define STOP_MARGIN_M  1.0f   /* m: a stopped front bumper rests this far before the line */
#define CAUTION_ZONE_M 40.0f  /* m before the line where flashing yellow caps the speed */
#define ACC_CLOSE_M    100.0f /* m past a stop line where that approach's delay account closes */
#define BUS_ZONE_M     250.0f /* m before a stop that count as stop (not signal) delay ... */
#define BUS_ZONE_OUT_M 250.0f /* ... and after leaving it, until back at 0.9 v0 */
#define QUEUE_V        1.4f   /* m/s: queued (HCM: about 5 km/h) */
#define QUEUE_GAP_M    10.0f  /* m: max gap between consecutive queued vehicles */
#define QUEUE_HEAD_M   15.0f  /* m: a queue's head is this close to the line */
#define LC_COOLDOWN_S  2.0f   /* s between two lane changes of one vehicle */
#define MAND_BSAFE     4.0f   /* m/s^2: braking a mandatory change may impose */
#define DISC_BSAFE     2.0f   /* m/s^2: braking a discretionary change may impose */
#define COOP_BSAFE     2.0f   /* m/s^2: braking a driver accepts to let a merging one in */
#define DISC_GAIN      0.5f   /* m/s^2: advantage a discretionary change needs */
#define MIN_INSERT_GAP 1.0f   /* m beyond s0 needed to insert at an entry */
#define DWELL_REACH_M  2.0f   /* m: a bus this close to its stop and slow starts dwelling */
#define SAT_HEADWAY_S  2.0f   /* s per queued vehicle ahead of a bus (1800 veh/h/lane) */
#define ETA_UPDATE_S   5.0f   /* s: a bus's ETA that drifts this far is sent again */

/* xoshiro256** (Blackman & Vigna); the state lives in the sim. */
static inline uint64_t sf_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sf_rng_next(uint64_t s[4])
{
    uint64_t r = sf_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sf_rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static inline double sf_rng_unit(uint64_t s[4])
{
    return (double)(sf_rng_next(s) >> 11) * 0x1.0p-53;
}

/* IDM acceleration behind a leader at gap (m) with speed difference dv = v - v_lead. */
static inline float sf_idm(const vtype_t *vt, float iv0, float v, float gap, float dv)
{
    float r = v * iv0;
    r *= r;
    float ss = v * vt->t + v * dv * vt->inv2sab;
    ss = vt->s0 + (ss > 0.0f ? ss : 0.0f);
    if (gap < 0.1f)
        gap = 0.1f;
    float q = ss / gap;
    float acc = vt->a * (1.0f - r * r - q * q);
    return acc < -MAX_DECEL ? -MAX_DECEL : acc;
}

/* IDM acceleration on a free road. */
static inline float sf_idm_free(const vtype_t *vt, float iv0, float v)
{
    float r = v * iv0;
    r *= r;
    float acc = vt->a * (1.0f - r * r);
    return acc < -MAX_DECEL ? -MAX_DECEL : acc;
}

/* Double the vehicle pool (sim.c). Returns 0, or -1 with errno ENOMEM. */
int sf_sim_pool_grow(sf_sim_t *sim);

/* Double the vehicle pool (sim.c). Returns 0, or -1 with errno ENOMEM. */
int sf_sim_pool_grow(sf_sim_t *sim);

/* Next arrival after t of entry e (sim_step.c). */
double sf_sim_next_arrival(const sf_sim_t *sim, uint64_t rng[4], const sf_entry_t *e, double t);

/* Control delay level of service (HCM, signalised): "A".."F". */
const char *sf_sim_los(double delay_s);

#endif
