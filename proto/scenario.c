/* proto/scenario.c — load a scenario file (jansson), apply --set overrides, check it.
 *
 * The file is parsed by jansson, the --set overrides are applied to the JSON tree, and
 * then one pass walks the tree into the model of scenario.h, checking as it goes and
 * collecting every error instead of stopping at the first. Plain fields are described
 * by small tables (name, kind, unit, range, default) read by one generic routine; the
 * code by hand is only what tables cannot say: references between objects and the
 * signal-plan rules (rings, barriers, splits, green conflicts).
 *
 * Positions: jansson gives line:column only for syntax errors, so the first time an
 * error is reported the text is scanned once more (scenario_pos.c) into a path ->
 * line:column index. A value that came from a --set is located as "--set PATH=VALUE".
 */
#include "scenario.h"
#include "scenario_pos.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN       512         /* field paths in messages */
#define MAX_FILE_BYTES (16u << 20) /* a scenario is a few hundred kB at most */
#define MAX_NODES      4096        /* intersections, boundaries */
#define MAX_LINKS      65536
#define MAX_LINES      1024
#define PED_SPEED_MPS  1.2 /* fastest walking speed a ped clearance may assume */

/* ---- context and errors --------------------------------------------------------- */

typedef struct {
    const char *arg; /* the --set argument as given */
    char *anchor;    /* topmost path it created or replaced; NULL when it failed */
} set_origin_t;

typedef struct {
    const char *file;           /* as given, for messages */
    const char *text;           /* file contents */
    size_t len;                 /* bytes */
    sf_posidx_t *pos;           /* built at the first error that needs a position */
    bool pos_tried;             /* building it was attempted */
    set_origin_t *sets;         /* n_sets origins, in command-line order */
    size_t n_sets;              /* count */
    sf_errors_t errs;           /* collected messages */
    long *err_key;              /* per message: line * 2^20 + column; 0 = --set or no position */
    bool oom;                   /* an allocation failed: the result is an error */
    sf_scenario_t *sc;          /* being filled */
    const json_t **ixo;         /* JSON object of each intersection (for cross-checks) */
    bool *ix_ok;                /* intersection loaded without error */
    bool *link_ok;              /* link's nodes resolved (else its kinds/indices mean nothing) */
    char (*amb)[SF_ID_LEN + 1]; /* node and link ids defined twice: a reference is ambiguous */
    size_t n_amb;               /* count */
} ctx_t;

static void push_msg_at(ctx_t *c, char *m, long key)
{
    if (!m) {
        c->oom = true;
        return;
    }
    char **msg = realloc(c->errs.msg, (c->errs.n + 1) * sizeof *msg);
    long *keys = msg ? realloc(c->err_key, (c->errs.n + 1) * sizeof *keys) : NULL;
    if (msg)
        c->errs.msg = msg;
    if (!keys) {
        free(m);
        c->oom = true;
        return;
    }
    c->err_key = keys;
    c->err_key[c->errs.n] = key;
    c->errs.msg[c->errs.n++] = m;
}

static void push_msg(ctx_t *c, char *m)
{
    push_msg_at(c, m, 0);
}

typedef struct {
    long key;   /* position key */
    size_t idx; /* discovery order, for a stable sort */
    char *msg;  /* the message */
} err_ord_t;

static int err_cmp(const void *a, const void *b)
{
    const err_ord_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Errors in file order (--set and file-wide ones first), ties in discovery order. */
static void sort_errors(ctx_t *c)
{
    err_ord_t *o = c->errs.n > 1 ? malloc(c->errs.n * sizeof *o) : NULL;
    if (!o)
        return; /* discovery order is still a correct report */
    for (size_t k = 0; k < c->errs.n; k++)
        o[k] = (err_ord_t){c->err_key[k], k, c->errs.msg[k]};
    qsort(o, c->errs.n, sizeof *o, err_cmp);
    for (size_t k = 0; k < c->errs.n; k++)
        c->errs.msg[k] = o[k].msg;
    free(o);
}

/* Remember an id defined twice, so references to it fail quietly (the duplicate is
 * the error, not each use of it). */
static void ambiguous(ctx_t *c, const char *kind, const char *id)
{
    char(*a)[SF_ID_LEN + 1] = realloc(c->amb, (c->n_amb + 1) * sizeof *a);
    if (!a) {
        c->oom = true;
        return;
    }
    c->amb = a;
    snprintf(c->amb[c->n_amb++], sizeof *a, "%c%s", kind[0], id);
}

static bool is_ambiguous(const ctx_t *c, const char *kind, const char *id)
{
    for (size_t k = 0; k < c->n_amb; k++)
        if (c->amb[k][0] == kind[0] && strcmp(c->amb[k] + 1, id) == 0)
            return true;
    return false;
}

static bool under(const char *path, const char *anchor)
{
    size_t n = strlen(anchor);
    return strncmp(path, anchor, n) == 0 && (path[n] == '\0' || path[n] == '.' || path[n] == '[');
}

static long locate(ctx_t *c, const char *path, bool at_key, char *loc, size_t len)
{
    for (size_t k = c->n_sets; k-- > 0;) {
        if (c->sets[k].anchor && under(path, c->sets[k].anchor)) {
            snprintf(loc, len, "--set %s", c->sets[k].arg);
            return 0;
        }
    }
    if (c->text && !c->pos_tried) {
        c->pos = sf_posidx_new(c->text, c->len);
        c->pos_tried = true;
    }
    int line = 0, col = 0;
    if (c->pos && sf_posidx_find(c->pos, path, at_key, &line, &col) >= 0) {
        snprintf(loc, len, "%s:%d:%d", c->file, line, col);
        return (long)line * (1L << 20) + col;
    }
    snprintf(loc, len, "%s", c->file);
    return 0;
}

/* Record "location: path: message". at_key locates an object member by its key (for
 * unknown fields) rather than by its value. */
__attribute__((format(printf, 4, 5))) static void errf(ctx_t *c, const char *path, bool at_key,
                                                       const char *fmt, ...)
{
    char loc[PATH_LEN + 64], msg[1024];
    long key = locate(c, path, at_key, loc, sizeof loc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *p = *path ? path : "(top level)";
    size_t n = strlen(loc) + strlen(p) + strlen(msg) + 5;
    char *m = malloc(n);
    if (m) {
        snprintf(m, n, "%s: %s: %s", loc, p, msg);
        /* one message, one line: a key may hold control characters */
        for (char *t = m; *t; t++)
            if ((unsigned char)*t < 0x20)
                *t = '?';
    }
    push_msg_at(c, m, key);
}

/* out = parent + sep + tail, truncated to PATH_LEN; out may be parent (append). */
static void path_cat(char *out, const char *parent, const char *sep, const char *tail)
{
    size_t n = strnlen(parent, PATH_LEN - 1);
    if (out != parent)
        memmove(out, parent, n);
    const char *parts[2] = {sep, tail};
    for (int k = 0; k < 2; k++) {
        size_t m = strlen(parts[k]);
        if (m > PATH_LEN - 1 - n)
            m = PATH_LEN - 1 - n;
        memcpy(out + n, parts[k], m);
        n += m;
    }
    out[n] = '\0';
}

static void jkey(char *out, const char *parent, const char *key)
{
    path_cat(out, parent, *parent ? "." : "", key);
}

static void jidx(char *out, const char *parent, size_t i)
{
    char b[32];
    snprintf(b, sizeof b, "[%zu]", i);
    path_cat(out, parent, "", b);
}

/* A short rendering of a JSON value for "got ..." in messages. */
static const char *show(const json_t *v, char *b, size_t n)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (strlen(s) > 40)
            snprintf(b, n, "\"%.40s...\"", s);
        else
            snprintf(b, n, "\"%s\"", s);
        return b;
    }
    case JSON_INTEGER:
        snprintf(b, n, "%lld", (long long)json_integer_value(v));
        return b;
    case JSON_REAL:
        snprintf(b, n, "%.10g", json_real_value(v));
        return b;
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return "null";
    }
}

/* ---- the field tables ------------------------------------------------------------ */

typedef enum {
    K_INT,   /* JSON integer, stored as an unsigned integer of the field's size */
    K_NUM,   /* JSON number, stored as float or double by size */
    K_DS,    /* seconds in the file, a multiple of 0.1; stored as uint16 tenths */
    K_KMH,   /* km/h in the file; stored as float m/s */
    K_BOOL,  /* true / false */
    K_STR,   /* UTF-8 string into char[size] */
    K_ID,    /* id: 1..SF_ID_LEN-1 characters of [A-Za-z0-9_.-] */
    K_ENUM,  /* one of names[], stored as int (the enum's value = position) */
    K_TOD,   /* "HH:MM" time of day, stored as uint32 seconds after midnight */
    K_OTHER, /* known key read by the caller (references, arrays, sub-objects) */
} kind_t;

typedef struct {
    const char *name;         /* JSON key */
    kind_t kind;              /* how to read and store it */
    size_t off;               /* offset in the C struct */
    size_t size;              /* bytes of the C field */
    bool req;                 /* missing is an error */
    double def;               /* default in file units; NAN = keep what is there */
    double lo, hi;            /* allowed range in file units (numbers) */
    const char *unit;         /* for messages: "s", "m", "km/h"; NULL = none */
    const char *const *names; /* K_ENUM: the names, NULL-terminated */
    const char *sdef;         /* K_STR default */
} field_t;

#define KEEP           NAN
#define F(nm, k, T, m) .name = nm, .kind = k, .off = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define O(nm, r)       .name = nm, .kind = K_OTHER, .req = r
#define NF(t)          (sizeof(t) / sizeof((t)[0]))

static const char *const RECALL_N[] = {"none", "min", "max", "ped", NULL};
static const char *const SG_KIND_N[] = {"vehicle", "arrow", "pedestrian", NULL};
static const char *const SPLIT_MODE_N[] = {"none",       "min_recall", "max_recall",
                                           "ped_recall", "omit",       NULL};
static const char *const FORCE_N[] = {"fixed", "floating", NULL};
static const char *const DET_KIND_N[] = {"presence", "count", NULL};
static const char *const TURN_N[] = {"left", "through", "right", NULL};
static const char *const STRATEGY_N[] = {"fixed",    "actuated",     "coordinated",
                                         "adaptive", "max_pressure", NULL};
static const char *const ARRIVALS_N[] = {"poisson", "uniform", NULL};
static const char *const STOP_KIND_N[] = {"kerb", "bay", NULL};
static const char *const MODE_N[] = {"lockstep", "realtime", NULL};
static const char *const DET_FAULT_N[] = {"stuck_on", "dead", "chatter", NULL};
static const char *const SPARE_N[] = {"proportional", "coordinated", NULL};
static const char *const SATFLOW_N[] = {"fixed", "learned", NULL};

static const field_t ROOT_F[] = {
    {F("version", K_INT, sf_scenario_t, version), .req = true, .lo = 1, .hi = 1},
    {F("name", K_STR, sf_scenario_t, name), .req = true},
    {O("intersections", true)},
    {O("boundaries", true)},
    {O("links", true)},
    {O("demand", false)},
    {O("transit", false)},
    {O("control", false)},
    {O("faults", false)},
    {O("run", false)},
};

static const field_t PHASE_F[] = {
    {F("id", K_INT, sf_phase_t, id), .req = true, .lo = 1, .hi = SF_MAX_PHASES},
    {O("ring", false)},
    {F("min_green_s", K_DS, sf_phase_t, min_green_ds), .req = true, .lo = 5, .hi = 255,
     .unit = "s"},
    {F("passage_s", K_DS, sf_phase_t, passage_ds), .def = 3, .lo = 0, .hi = 25.5, .unit = "s"},
    {F("max1_s", K_DS, sf_phase_t, max1_ds), .def = 40, .lo = 5, .hi = 255, .unit = "s"},
    {F("max2_s", K_DS, sf_phase_t, max2_ds), .def = 60, .lo = 5, .hi = 255, .unit = "s"},
    {F("yellow_s", K_DS, sf_phase_t, yellow_ds), .def = 3, .lo = 3, .hi = 6, .unit = "s"},
    {F("red_clear_s", K_DS, sf_phase_t, red_clear_ds), .def = 2, .lo = 0, .hi = 6, .unit = "s"},
    {F("walk_s", K_DS, sf_phase_t, walk_ds), .def = 0, .lo = 0, .hi = 255, .unit = "s"},
    {F("ped_clear_s", K_DS, sf_phase_t, ped_clear_ds), .def = 0, .lo = 0, .hi = 255, .unit = "s"},
    {F("ped_crossing_m", K_NUM, sf_phase_t, ped_crossing_m), .def = 0, .lo = 0, .hi = 100,
     .unit = "m"},
    {F("recall", K_ENUM, sf_phase_t, recall), .def = 0, .names = RECALL_N},
};

static const field_t SG_F[] = {
    {F("id", K_ID, sf_signal_group_t, id), .req = true},
    {F("kind", K_ENUM, sf_signal_group_t, kind), .req = true, .names = SG_KIND_N},
    {O("phase", true)},
};

static const field_t PLAN_F[] = {
    {F("id", K_INT, sf_plan_t, id), .req = true, .lo = 1, .hi = SF_MAX_PLANS},
    {F("name", K_STR, sf_plan_t, name), .sdef = ""},
    {F("cycle_s", K_DS, sf_plan_t, cycle_ds), .req = true, .lo = 20, .hi = 300, .unit = "s"},
    {F("offset_s", K_DS, sf_plan_t, offset_ds), .def = 0, .lo = 0, .hi = 300, .unit = "s"},
    {O("splits", true)},
    {O("coord_phases", false)},
    {F("force_mode", K_ENUM, sf_plan_t, force_mode), .def = 0, .names = FORCE_N},
};

typedef struct {
    uint16_t split_ds;    /* 0.1 s */
    sf_split_mode_t mode; /* split mode */
} split_in_t;

static const field_t SPLIT_F[] = {
    {O("phase", true)},
    {F("split_s", K_DS, split_in_t, split_ds), .req = true, .lo = 0, .hi = 300, .unit = "s"},
    {F("mode", K_ENUM, split_in_t, mode), .def = 0, .names = SPLIT_MODE_N},
};

static const field_t SCHED_F[] = {
    {F("at", K_TOD, sf_schedule_entry_t, at_s), .req = true},
    {O("plan", true)},
};

static const field_t DET_F[] = {
    {F("id", K_ID, sf_detector_t, id), .req = true},
    {F("kind", K_ENUM, sf_detector_t, kind), .req = true, .names = DET_KIND_N},
    {O("link", true)},
    {F("lane", K_INT, sf_detector_t, lane), .def = 0, .lo = 0, .hi = SF_MAX_LANES - 1},
    {F("distance_m", K_NUM, sf_detector_t, distance_m), .req = true, .lo = 0, .hi = 5000,
     .unit = "m"},
    {F("length_m", K_NUM, sf_detector_t, length_m), .req = true, .lo = 0.5, .hi = 500, .unit = "m"},
    {O("phases", false)},
};

static const field_t MOV_F[] = {
    {F("id", K_ID, sf_movement_t, id), .req = true},
    {O("from_link", true)},
    {O("to_link", true)},
    {F("turn", K_ENUM, sf_movement_t, turn), .req = true, .names = TURN_N},
    {O("signal_group", true)},
};

static const field_t IX_F[] = {
    {F("id", K_ID, sf_intersection_t, id), .req = true},
    {F("name", K_STR, sf_intersection_t, name), .sdef = ""},
    {F("x_m", K_NUM, sf_intersection_t, x_m), .req = true, .lo = -1e6, .hi = 1e6, .unit = "m"},
    {F("y_m", K_NUM, sf_intersection_t, y_m), .req = true, .lo = -1e6, .hi = 1e6, .unit = "m"},
    {O("phases", true)},
    {O("rings", true)},
    {O("barriers", true)},
    {O("signal_groups", true)},
    {O("plans", true)},
    {O("schedule", false)},
    {O("local_plan", false)},
    {O("detectors", false)},
    {O("movements", true)},
    {F("strategy", K_ENUM, sf_intersection_t, strategy), .def = KEEP, .names = STRATEGY_N},
    {F("unit_host", K_STR, sf_intersection_t, unit_host), .sdef = ""},
    {F("unit_port", K_INT, sf_intersection_t, unit_port), .def = 0, .lo = 0, .hi = 65535},
};

static const field_t BOUNDARY_F[] = {
    {F("id", K_ID, sf_boundary_t, id), .req = true},
    {F("x_m", K_NUM, sf_boundary_t, x_m), .req = true, .lo = -1e6, .hi = 1e6, .unit = "m"},
    {F("y_m", K_NUM, sf_boundary_t, y_m), .req = true, .lo = -1e6, .hi = 1e6, .unit = "m"},
};

static const field_t LINK_F[] = {
    {F("id", K_ID, sf_link_t, id), .req = true},
    {O("from", true)},
    {O("to", true)},
    {F("length_m", K_NUM, sf_link_t, length_m), .def = 0, .lo = 1, .hi = 20000, .unit = "m"},
    {F("speed_kmh", K_KMH, sf_link_t, speed_mps), .def = 50, .lo = 5, .hi = 130, .unit = "km/h"},
    {O("lanes", true)},
    {O("turn_ratio", false)},
};

static const field_t LANE_F[] = {
    {O("use", true)},
    {F("bay_m", K_NUM, sf_lane_t, bay_m), .def = 0, .lo = 0, .hi = 2000, .unit = "m"},
};

typedef struct {
    float r[SF_TURN_N]; /* left, through, right */
} ratio_in_t;

static const field_t RATIO_F[] = {
    {.name = "left", .kind = K_NUM, .off = 0, .size = sizeof(float), .def = 0, .lo = 0, .hi = 1},
    {.name = "through",
     .kind = K_NUM,
     .off = sizeof(float),
     .size = sizeof(float),
     .def = 0,
     .lo = 0,
     .hi = 1},
    {.name = "right",
     .kind = K_NUM,
     .off = 2 * sizeof(float),
     .size = sizeof(float),
     .def = 0,
     .lo = 0,
     .hi = 1},
};

static const field_t DEMAND_F[] = {
    {F("slice_s", K_INT, sf_demand_t, slice_s), .def = 900, .lo = 60, .hi = 3600, .unit = "s"},
    {O("entries", false)},
    {O("vtype", false)},
};

static const field_t ENTRY_F[] = {
    {O("link", true)},
    {F("flow_veh_h", K_NUM, sf_entry_t, flow_veh_h), .req = true, .lo = 0, .hi = 10000,
     .unit = "veh/h"},
    {F("arrivals", K_ENUM, sf_entry_t, arrivals), .def = 0, .names = ARRIVALS_N},
    {O("profile", false)},
    {F("truck_share", K_NUM, sf_entry_t, truck_share), .def = 0, .lo = 0, .hi = 1},
};

static const field_t PROFILE_ITEM_F = {
    .name = "profile", .kind = K_NUM, .size = sizeof(float), .lo = 0, .hi = 10};

static const field_t VTYPES_F[] = {{O("car", false)}, {O("truck", false)}, {O("bus", false)}};

static const field_t VT_F[] = {
    {F("length_m", K_NUM, sf_veh_params_t, length_m), .def = KEEP, .lo = 2, .hi = 25, .unit = "m"},
    {F("v0_factor", K_NUM, sf_veh_params_t, v0_factor), .def = KEEP, .lo = 0.5, .hi = 1.5},
    {F("a_mps2", K_NUM, sf_veh_params_t, a_mps2), .def = KEEP, .lo = 0.3, .hi = 5, .unit = "m/s^2"},
    {F("b_mps2", K_NUM, sf_veh_params_t, b_mps2), .def = KEEP, .lo = 0.5, .hi = 9, .unit = "m/s^2"},
    {F("s0_m", K_NUM, sf_veh_params_t, s0_m), .def = KEEP, .lo = 0.5, .hi = 10, .unit = "m"},
    {F("t_s", K_NUM, sf_veh_params_t, t_s), .def = KEEP, .lo = 0.5, .hi = 5, .unit = "s"},
};

static const field_t TRANSIT_F[] = {{O("lines", false)}};

static const field_t LINE_F[] = {
    {F("id", K_ID, sf_line_t, id), .req = true},
    {F("name", K_STR, sf_line_t, name), .sdef = ""},
    {O("route", true)},
    {O("stops", false)},
    {F("headway_s", K_NUM, sf_line_t, headway_s), .req = true, .lo = 60, .hi = 7200, .unit = "s"},
    {F("first_departure_s", K_NUM, sf_line_t, first_departure_s), .def = 0, .lo = 0, .hi = 86400,
     .unit = "s"},
};

static const field_t STOP_F[] = {
    {F("id", K_ID, sf_stop_t, id), .req = true},
    {O("link", true)},
    {F("distance_m", K_NUM, sf_stop_t, distance_m), .req = true, .lo = 0, .hi = 20000, .unit = "m"},
    {F("kind", K_ENUM, sf_stop_t, kind), .def = 0, .names = STOP_KIND_N},
    {F("dwell_s", K_NUM, sf_stop_t, dwell_s), .def = 10, .lo = 0, .hi = 600, .unit = "s"},
    {F("per_pax_s", K_NUM, sf_stop_t, per_pax_s), .def = 2.5, .lo = 0, .hi = 30, .unit = "s"},
    {F("pax_mean", K_NUM, sf_stop_t, pax_mean), .def = 3, .lo = 0, .hi = 200},
    {F("scheduled_s", K_NUM, sf_stop_t, scheduled_s), .req = true, .lo = 0, .hi = 86400,
     .unit = "s"},
};

static const field_t CONTROL_F[] = {
    {F("strategy", K_ENUM, sf_control_t, strategy), .def = 0, .names = STRATEGY_N},
    {O("priority", false)},
    {O("greenwave", false)},
    {F("poll_period_s", K_NUM, sf_control_t, poll_period_s), .def = 1, .lo = 0.1, .hi = 60,
     .unit = "s"},
    {F("heartbeat_timeout_s", K_NUM, sf_control_t, heartbeat_timeout_s), .def = 5, .lo = 1,
     .hi = 600, .unit = "s"},
    {F("adaptive_min_cycle_s", K_NUM, sf_control_t, adaptive_min_cycle_s), .def = 60, .lo = 20,
     .hi = 300, .unit = "s"},
    {F("adaptive_max_cycle_s", K_NUM, sf_control_t, adaptive_max_cycle_s), .def = 150, .lo = 20,
     .hi = 300, .unit = "s"},
    {F("adaptive_split_failure", K_BOOL, sf_control_t, adaptive_split_failure), .def = 1},
    {F("adaptive_bay_guard", K_BOOL, sf_control_t, adaptive_bay_guard), .def = 1},
    {F("detector_diagnostics", K_BOOL, sf_control_t, detector_diagnostics), .def = 1},
    {F("adaptive_spare", K_ENUM, sf_control_t, adaptive_spare), .def = 0, .names = SPARE_N},
    {F("adaptive_sat_flow", K_ENUM, sf_control_t, adaptive_sat_flow), .def = 0, .names = SATFLOW_N},
};

static const field_t PRIO_F[] = {
    {F("enabled", K_BOOL, sf_priority_t, enabled), .def = 0},
    {F("lateness_threshold_s", K_NUM, sf_priority_t, lateness_threshold_s), .def = 60, .lo = 0,
     .hi = 3600, .unit = "s"},
    {F("checkin_distance_m", K_NUM, sf_priority_t, checkin_distance_m), .def = 150, .lo = 10,
     .hi = 2000, .unit = "m"},
    {F("max_extension_s", K_NUM, sf_priority_t, max_extension_s), .def = 15, .lo = 0, .hi = 60,
     .unit = "s"},
    {F("max_early_green_s", K_NUM, sf_priority_t, max_early_green_s), .def = 15, .lo = 0, .hi = 60,
     .unit = "s"},
    {F("lockout_s", K_NUM, sf_priority_t, lockout_s), .def = 120, .lo = 0, .hi = 3600, .unit = "s"},
};

static const field_t GW_F[] = {
    {F("enabled", K_BOOL, sf_greenwave_t, enabled), .def = 0},
    {F("weight_out", K_NUM, sf_greenwave_t, weight_out), .def = 0, .lo = 0, .hi = 100},
    {F("weight_in", K_NUM, sf_greenwave_t, weight_in), .def = 0, .lo = 0, .hi = 100},
    {F("queue_clearance", K_BOOL, sf_greenwave_t, queue_clearance), .def = 1},
    {F("two_way", K_BOOL, sf_greenwave_t, two_way), .def = 0},
    {F("adaptive_replan", K_BOOL, sf_greenwave_t, adaptive_replan), .def = 0},
};

static const field_t FAULTS_F[] = {{O("detectors", false)}};

/* A window's bounds share run.duration_s's upper limit: a fault may outlast the run. */
static const field_t DET_FAULT_F[] = {
    {O("intersection", true)},
    {O("detector", true)},
    {F("kind", K_ENUM, sf_det_fault_t, kind), .req = true, .names = DET_FAULT_N},
    {F("from_s", K_NUM, sf_det_fault_t, from_s), .req = true, .lo = 0, .hi = 604800, .unit = "s"},
    {F("to_s", K_NUM, sf_det_fault_t, to_s), .def = INFINITY, .lo = 0, .hi = 604800, .unit = "s"},
};

static const field_t RUN_F[] = {
    {F("duration_s", K_NUM, sf_run_t, duration_s), .def = 3600, .lo = 1, .hi = 604800, .unit = "s"},
    {F("warmup_s", K_NUM, sf_run_t, warmup_s), .def = 0, .lo = 0, .hi = 86400, .unit = "s"},
    {F("step_s", K_NUM, sf_run_t, step_s), .def = 0.1, .lo = 0.01, .hi = 1, .unit = "s"},
    {F("seed", K_INT, sf_run_t, seed), .def = 1, .lo = 0, .hi = 9.2e18},
    {F("mode", K_ENUM, sf_run_t, mode), .def = 0, .names = MODE_N},
    {F("speed_factor", K_NUM, sf_run_t, speed_factor), .def = 1, .lo = 0.01, .hi = 1000},
    {F("start_time", K_TOD, sf_run_t, start_tod_s), .def = 7 * 3600},
    {F("snapshot_hz", K_NUM, sf_run_t, snapshot_hz), .def = 10, .lo = 0, .hi = 100, .unit = "Hz"},
    {F("step_timeout_s", K_NUM, sf_run_t, step_timeout_s), .def = 10, .lo = 0.1, .hi = 3600,
     .unit = "s"},
    {F("bus_endpoint", K_STR, sf_run_t, bus_endpoint), .sdef = ""},
    {F("modbus_listen", K_STR, sf_run_t, modbus_listen), .sdef = "127.0.0.1"},
    {F("modbus_base_port", K_INT, sf_run_t, modbus_base_port), .def = 0, .lo = 0, .hi = 65535},
};

/* ---- the generic field reader ----------------------------------------------------- */

static void put_uint(void *dst, size_t size, uint64_t v)
{
    if (size == 1) {
        uint8_t x = (uint8_t)v;
        memcpy(dst, &x, 1);
    } else if (size == 2) {
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, 2);
    } else if (size == 4) {
        uint32_t x = (uint32_t)v;
        memcpy(dst, &x, 4);
    } else {
        memcpy(dst, &v, 8);
    }
}

static void put_real(void *dst, size_t size, double v)
{
    if (size == sizeof(float)) {
        float x = (float)v;
        memcpy(dst, &x, sizeof x);
    } else {
        memcpy(dst, &v, sizeof v);
    }
}

static const char *unit_sp(const field_t *f)
{
    return f->unit ? " " : "";
}

static const char *unit_of(const field_t *f)
{
    return f->unit ? f->unit : "";
}

static bool in_range(ctx_t *c, const char *path, const field_t *f, double v, const json_t *jv)
{
    char b[96];
    if (f->lo == f->hi && v != f->lo) {
        errf(c, path, false, "must be %g%s%s, got %s", f->lo, unit_sp(f), unit_of(f),
             show(jv, b, sizeof b));
        return false;
    }
    if (v < f->lo) {
        errf(c, path, false, "must be >= %g%s%s, got %s", f->lo, unit_sp(f), unit_of(f),
             show(jv, b, sizeof b));
        return false;
    }
    if (v > f->hi) {
        errf(c, path, false, "must be <= %g%s%s, got %s", f->hi, unit_sp(f), unit_of(f),
             show(jv, b, sizeof b));
        return false;
    }
    return true;
}

static bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SF_ID_LEN)
        return false;
    for (size_t k = 0; k < n; k++) {
        char ch = s[k];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* "HH:MM" (00:00..23:59) -> seconds after midnight, or -1. */
static long parse_tod(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int k = 0; k < 5; k++)
        if (k != 2 && (s[k] < '0' || s[k] > '9'))
            return -1;
    long h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    return h * 3600 + m * 60;
}

static int enum_index(const char *const *names, const char *s)
{
    for (int k = 0; names[k]; k++)
        if (strcmp(names[k], s) == 0)
            return k;
    return -1;
}

static void enum_list(const char *const *names, char *b, size_t n)
{
    size_t used = 0;
    b[0] = '\0';
    for (int k = 0; names[k] && used < n; k++)
        used += (size_t)snprintf(b + used, n - used, "%s\"%s\"", k ? ", " : "", names[k]);
}

/* Read one present value v of field f at path into base + f->off. */
static bool read_field(ctx_t *c, const json_t *v, const char *path, const field_t *f, void *base)
{
    char *dst = (char *)base + f->off;
    char b[96];
    switch (f->kind) {
    case K_INT: {
        if (!json_is_integer(v)) {
            errf(c, path, false, "must be an integer, got %s", show(v, b, sizeof b));
            return false;
        }
        json_int_t x = json_integer_value(v);
        if (!in_range(c, path, f, (double)x, v))
            return false;
        if (x < 0) { /* only reachable if a table allows negatives: none does */
            errf(c, path, false, "must be >= 0, got %lld", (long long)x);
            return false;
        }
        put_uint(dst, f->size, (uint64_t)x);
        return true;
    }
    case K_NUM:
    case K_DS:
    case K_KMH: {
        if (!json_is_number(v)) {
            errf(c, path, false, "must be a number, got %s", show(v, b, sizeof b));
            return false;
        }
        double x = json_number_value(v);
        if (!in_range(c, path, f, x, v))
            return false;
        if (f->kind == K_DS) {
            double t = x * 10.0;
            if (fabs(t - round(t)) > 1e-6) {
                errf(c, path, false, "must be a multiple of 0.1 s, got %s", show(v, b, sizeof b));
                return false;
            }
            put_uint(dst, f->size, (uint64_t)llround(t));
        } else if (f->kind == K_KMH) {
            put_real(dst, f->size, x / 3.6);
        } else {
            put_real(dst, f->size, x);
        }
        return true;
    }
    case K_BOOL:
        if (!json_is_boolean(v)) {
            errf(c, path, false, "must be true or false, got %s", show(v, b, sizeof b));
            return false;
        }
        *(bool *)(void *)dst = json_is_true(v);
        return true;
    case K_STR:
    case K_ID:
    case K_ENUM:
    case K_TOD: {
        if (!json_is_string(v)) {
            errf(c, path, false, "must be a string, got %s", show(v, b, sizeof b));
            return false;
        }
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (f->kind == K_STR) {
            if (n >= f->size) {
                errf(c, path, false, "must be at most %zu bytes, got %zu", f->size - 1, n);
                return false;
            }
            memcpy(dst, s, n + 1);
        } else if (f->kind == K_ID) {
            if (!is_id(s)) {
                errf(c, path, false,
                     "must be an id of 1-%d characters from A-Z a-z 0-9 _ - ., got %s",
                     SF_ID_LEN - 1, show(v, b, sizeof b));
                return false;
            }
            memcpy(dst, s, n + 1);
        } else if (f->kind == K_ENUM) {
            int k = enum_index(f->names, s);
            if (k < 0) {
                char list[256];
                enum_list(f->names, list, sizeof list);
                errf(c, path, false, "must be one of %s; got %s", list, show(v, b, sizeof b));
                return false;
            }
            put_uint(dst, f->size, (uint64_t)k);
        } else {
            long t = parse_tod(s);
            if (t < 0) {
                errf(c, path, false, "must be a time of day \"HH:MM\" (00:00..23:59), got %s",
                     show(v, b, sizeof b));
                return false;
            }
            put_uint(dst, f->size, (uint64_t)t);
        }
        return true;
    }
    case K_OTHER:
        break;
    }
    return true;
}

static void put_default(const field_t *f, void *base)
{
    /* base is NULL when a table is only validated (load_transit): nothing to fill. */
    if (!base || f->kind == K_OTHER || (f->kind != K_STR && isnan(f->def)))
        return;
    char *dst = (char *)base + f->off;
    switch (f->kind) {
    case K_INT:
    case K_ENUM:
    case K_TOD:
        put_uint(dst, f->size, (uint64_t)f->def);
        break;
    case K_DS:
        put_uint(dst, f->size, (uint64_t)llround(f->def * 10.0));
        break;
    case K_NUM:
        put_real(dst, f->size, f->def);
        break;
    case K_KMH:
        put_real(dst, f->size, f->def / 3.6);
        break;
    case K_BOOL:
        *(bool *)(void *)dst = f->def != 0;
        break;
    case K_STR:
        if (f->sdef)
            snprintf(dst, f->size, "%s", f->sdef);
        break;
    default:
        break;
    }
}

/* Edit distance of two short names (insert, delete, substitute, swap), capped at 3. */
static int name_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 40 || nb > 40)
        return 3;
    int d[41][41];
    for (size_t i = 0; i <= na; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[na][nb] < 3 ? d[na][nb] : 3;
}

/* Check that obj is an object with only the table's keys and every required one, and
 * read the plain fields into base (defaults for absent ones). K_OTHER fields are only
 * checked for presence. Returns true when nothing was wrong. */
static bool load_fields(ctx_t *c, const json_t *obj, const char *path, const field_t *tab, size_t n,
                        void *base)
{
    char b[96], p[PATH_LEN];
    if (!json_is_object(obj)) {
        errf(c, path, false, "must be an object, got %s", show(obj, b, sizeof b));
        return false;
    }
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t k = 0;
        while (k < n && strcmp(tab[k].name, key) != 0)
            k++;
        if (k == n) {
            /* a near miss is most likely a typo of a known field */
            const char *near = NULL;
            int best = 3;
            for (size_t j = 0; j < n; j++) {
                int dist = name_distance(key, tab[j].name);
                if (dist < best) {
                    best = dist;
                    near = tab[j].name;
                }
            }
            jkey(p, path, key);
            if (near)
                errf(c, p, true, "unknown field (did you mean \"%s\"?)", near);
            else
                errf(c, p, true, "unknown field");
            ok = false;
        }
    }
    for (size_t k = 0; k < n; k++) {
        const field_t *f = &tab[k];
        v = json_object_get(obj, f->name);
        jkey(p, path, f->name);
        if (!v) {
            if (f->req) {
                errf(c, p, false, "missing required field");
                ok = false;
            } else {
                put_default(f, base);
            }
            continue;
        }
        if (f->kind != K_OTHER && !read_field(c, v, p, f, base))
            ok = false;
    }
    return ok;
}

/* The array at obj[key], or NULL when absent or wrong (reported). *n gets its size. */
static const json_t *get_arr(ctx_t *c, const json_t *obj, const char *key, const char *path,
                             size_t lo, size_t hi, size_t *n)
{
    char p[PATH_LEN], b[96];
    *n = 0;
    const json_t *a = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!a)
        return NULL;
    jkey(p, path, key);
    if (!json_is_array(a)) {
        errf(c, p, false, "must be an array, got %s", show(a, b, sizeof b));
        return NULL;
    }
    size_t k = json_array_size(a);
    if (k > hi) {
        errf(c, p, false, "must have at most %zu entries, got %zu", hi, k);
        return NULL;
    }
    if (k < lo) {
        errf(c, p, false, "must have at least %zu entr%s, got %zu", lo, lo == 1 ? "y" : "ies", k);
        return NULL;
    }
    *n = k;
    return a;
}

/* ---- references ------------------------------------------------------------------- */

static int find_link(const sf_scenario_t *sc, const char *id)
{
    for (uint32_t k = 0; k < sc->n_links; k++)
        if (sc->links[k].id[0] && strcmp(sc->links[k].id, id) == 0)
            return (int)k;
    return -1;
}

static int find_boundary(const sf_scenario_t *sc, const char *id)
{
    for (uint32_t k = 0; k < sc->n_boundaries; k++)
        if (sc->boundaries[k].id[0] && strcmp(sc->boundaries[k].id, id) == 0)
            return (int)k;
    return -1;
}

/* Index of the link whose id is the string v, or -1 (reported). */
static int link_ref(ctx_t *c, const json_t *v, const char *path)
{
    char b[96];
    if (!json_is_string(v)) {
        errf(c, path, false, "must be a link id (string), got %s", show(v, b, sizeof b));
        return -1;
    }
    if (is_ambiguous(c, "link", json_string_value(v)))
        return -2; /* reported as a duplicate id */
    int k = find_link(c->sc, json_string_value(v));
    if (k < 0)
        errf(c, path, false, "unknown link %s", show(v, b, sizeof b));
    else if (!c->link_ok[k])
        return -2; /* the link's own error is reported; its ends are unknown */
    return k;
}

/* Index in ix->phases of the phase number v, or -1 (reported). */
static int phase_ref(ctx_t *c, const sf_intersection_t *ix, const json_t *v, const char *path)
{
    char b[96];
    if (!json_is_integer(v)) {
        errf(c, path, false, "must be a phase number, got %s", show(v, b, sizeof b));
        return -1;
    }
    json_int_t id = json_integer_value(v);
    for (uint8_t k = 0; k < ix->n_phases; k++)
        if (ix->phases[k].id == id)
            return k;
    errf(c, path, false, "unknown phase %lld", (long long)id);
    return -1;
}

/* A list of phase numbers at obj[key] -> bit mask of phase indices. */
static bool phase_list(ctx_t *c, const sf_intersection_t *ix, const json_t *obj, const char *key,
                       const char *path, uint16_t *mask)
{
    size_t n;
    char p[PATH_LEN], q[PATH_LEN];
    *mask = 0;
    const json_t *a = get_arr(c, obj, key, path, 0, SF_MAX_PHASES, &n);
    if (!a)
        return json_object_get(obj, key) == NULL;
    jkey(p, path, key);
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        jidx(q, p, k);
        int i = phase_ref(c, ix, json_array_get(a, k), q);
        if (i < 0) {
            ok = false;
        } else if (*mask >> i & 1u) {
            errf(c, q, false, "phase %u listed twice", ix->phases[i].id);
            ok = false;
        } else {
            *mask = (uint16_t)(*mask | 1u << i);
        }
    }
    return ok;
}

static const char *node_id(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx)
{
    return kind == SF_NODE_INTERSECTION ? sc->intersections[idx].id : sc->boundaries[idx].id;
}

/* ---- network ----------------------------------------------------------------------- */

static void load_boundaries(ctx_t *c, const json_t *root)
{
    size_t n;
    char p[PATH_LEN], q[PATH_LEN];
    const json_t *a = get_arr(c, root, "boundaries", "", 1, MAX_NODES, &n);
    if (!a)
        return;
    c->sc->boundaries = calloc(n, sizeof *c->sc->boundaries);
    if (!c->sc->boundaries) {
        c->oom = true;
        return;
    }
    c->sc->n_boundaries = (uint32_t)n;
    for (size_t k = 0; k < n; k++) {
        sf_boundary_t *bd = &c->sc->boundaries[k];
        jidx(p, "boundaries", k);
        load_fields(c, json_array_get(a, k), p, BOUNDARY_F, NF(BOUNDARY_F), bd);
        if (!bd->id[0])
            continue;
        jkey(q, p, "id");
        for (size_t j = 0; j < k; j++)
            if (strcmp(c->sc->boundaries[j].id, bd->id) == 0) {
                errf(c, q, false, "duplicate id \"%s\" (also boundaries[%zu])", bd->id, j);
                ambiguous(c, "node", bd->id);
                bd->id[0] = '\0';
                break;
            }
        for (uint32_t j = 0; bd->id[0] && j < c->sc->n_intersections; j++)
            if (strcmp(c->sc->intersections[j].id, bd->id) == 0) {
                errf(c, q, false, "duplicate id \"%s\" (also intersections[%u])", bd->id, j);
                ambiguous(c, "node", bd->id);
                bd->id[0] = '\0';
            }
    }
}

/* First pass over intersections: their ids only, so links can refer to them. Errors
 * in these ids are reported by the full pass (load_intersection). */
static void intersection_ids(ctx_t *c, const json_t *root)
{
    size_t n;
    char p[PATH_LEN];
    const json_t *a = get_arr(c, root, "intersections", "", 1, MAX_NODES, &n);
    if (!a)
        return;
    c->sc->intersections = calloc(n, sizeof *c->sc->intersections);
    c->ixo = calloc(n, sizeof *c->ixo);
    c->ix_ok = calloc(n, sizeof *c->ix_ok);
    if (!c->sc->intersections || !c->ixo || !c->ix_ok) {
        c->oom = true;
        return;
    }
    c->sc->n_intersections = (uint32_t)n;
    for (size_t k = 0; k < n; k++) {
        c->ixo[k] = json_array_get(a, k);
        const json_t *id = json_object_get(c->ixo[k], "id");
        sf_intersection_t *ix = &c->sc->intersections[k];
        /* positions too: a link's default length is the distance of its nodes */
        const json_t *x = json_object_get(c->ixo[k], "x_m"), *y = json_object_get(c->ixo[k], "y_m");
        ix->x_m = json_is_number(x) ? json_number_value(x) : 0;
        ix->y_m = json_is_number(y) ? json_number_value(y) : 0;
        if (!json_is_string(id) || !is_id(json_string_value(id)))
            continue;
        snprintf(ix->id, sizeof ix->id, "%s", json_string_value(id));
        for (size_t j = 0; j < k; j++)
            if (strcmp(c->sc->intersections[j].id, ix->id) == 0) {
                jidx(p, "intersections", k);
                jkey(p, p, "id");
                errf(c, p, false, "duplicate id \"%s\" (also intersections[%zu])", ix->id, j);
                ambiguous(c, "node", ix->id);
                ix->id[0] = '\0';
                break;
            }
    }
}

/* The node (intersection or boundary) whose id is v. */
static bool node_ref(ctx_t *c, const json_t *v, const char *path, sf_node_kind_t *kind,
                     uint32_t *idx)
{
    char b[96];
    if (!json_is_string(v)) {
        errf(c, path, false, "must be a node id (string), got %s", show(v, b, sizeof b));
        return false;
    }
    const char *id = json_string_value(v);
    if (is_ambiguous(c, "node", id))
        return false; /* reported as a duplicate id */
    int k = sf_scenario_find_intersection(c->sc, id);
    if (k >= 0 && id[0]) {
        *kind = SF_NODE_INTERSECTION;
        *idx = (uint32_t)k;
        return true;
    }
    k = find_boundary(c->sc, id);
    if (k >= 0 && id[0]) {
        *kind = SF_NODE_BOUNDARY;
        *idx = (uint32_t)k;
        return true;
    }
    errf(c, path, false, "unknown node %s (no intersection or boundary has this id)",
         show(v, b, sizeof b));
    return false;
}

static void node_xy(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx, double *x,
                    double *y)
{
    if (kind == SF_NODE_INTERSECTION) {
        *x = sc->intersections[idx].x_m;
        *y = sc->intersections[idx].y_m;
    } else {
        *x = sc->boundaries[idx].x_m;
        *y = sc->boundaries[idx].y_m;
    }
}

static bool load_lane_use(ctx_t *c, const json_t *v, const char *path, uint8_t *mask)
{
    char b[96], q[PATH_LEN];
    *mask = 0;
    bool one = json_is_string(v);
    if (!one && !json_is_array(v)) {
        errf(c, path, false,
             "must be a turn or a list of turns (\"left\", \"through\", "
             "\"right\"), got %s",
             show(v, b, sizeof b));
        return false;
    }
    size_t n = one ? 1 : json_array_size(v);
    if (n == 0) {
        errf(c, path, false, "must name at least one turn");
        return false;
    }
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        const json_t *e = one ? v : json_array_get(v, k);
        if (one)
            snprintf(q, sizeof q, "%s", path);
        else
            jidx(q, path, k);
        int t = json_is_string(e) ? enum_index(TURN_N, json_string_value(e)) : -1;
        if (t < 0) {
            errf(c, q, false, "must be one of \"left\", \"through\", \"right\"; got %s",
                 show(e, b, sizeof b));
            ok = false;
        } else if (*mask & (1u << t)) {
            errf(c, q, false, "turn \"%s\" listed twice", TURN_N[t]);
            ok = false;
        } else {
            *mask = (uint8_t)(*mask | 1u << t);
        }
    }
    return ok;
}

static void load_link(ctx_t *c, const json_t *o, size_t li)
{
    sf_scenario_t *sc = c->sc;
    sf_link_t *ln = &sc->links[li];
    char p[PATH_LEN], q[PATH_LEN], r[PATH_LEN];
    jidx(p, "links", li);
    bool ok = load_fields(c, o, p, LINK_F, NF(LINK_F), ln);
    if (!json_is_object(o))
        return;
    const json_t *v;
    bool ends_ok = true;
    if ((v = json_object_get(o, "from"))) {
        jkey(q, p, "from");
        ends_ok &= node_ref(c, v, q, &ln->from_kind, &ln->from_idx);
    } else {
        ends_ok = false;
    }
    if ((v = json_object_get(o, "to"))) {
        jkey(q, p, "to");
        ends_ok &= node_ref(c, v, q, &ln->to_kind, &ln->to_idx);
    } else {
        ends_ok = false;
    }
    if (ends_ok && ln->from_kind == ln->to_kind && ln->from_idx == ln->to_idx) {
        jkey(q, p, "to");
        errf(c, q, false, "must differ from \"from\" (a link joins two nodes)");
        ends_ok = false;
    }
    if (ends_ok && ln->from_kind == SF_NODE_BOUNDARY && ln->to_kind == SF_NODE_BOUNDARY) {
        jkey(q, p, "to");
        errf(c, q, false, "a link must start or end at an intersection");
        ends_ok = false;
    }
    if (ends_ok && ln->length_m == 0) {
        double x0, y0, x1, y1;
        node_xy(sc, ln->from_kind, ln->from_idx, &x0, &y0);
        node_xy(sc, ln->to_kind, ln->to_idx, &x1, &y1);
        ln->length_m = (float)hypot(x1 - x0, y1 - y0);
        if (ln->length_m < 1) {
            jkey(q, p, "length_m");
            errf(c, q, false, "missing: the two nodes are less than 1 m apart, give length_m");
            ends_ok = false;
        }
    }
    c->link_ok[li] = ends_ok;
    /* lanes */
    size_t n;
    const json_t *lanes = get_arr(c, o, "lanes", p, 1, SF_MAX_LANES, &n);
    ln->n_lanes = (uint8_t)n;
    jkey(q, p, "lanes");
    for (size_t k = 0; lanes && k < n; k++) {
        const json_t *lo = json_array_get(lanes, k);
        jidx(r, q, k);
        if (!load_fields(c, lo, r, LANE_F, NF(LANE_F), &ln->lanes[k]))
            continue;
        char u[PATH_LEN];
        jkey(u, r, "use");
        load_lane_use(c, json_object_get(lo, "use"), u, &ln->lanes[k].use_mask);
        if (ends_ok && ln->lanes[k].bay_m >= ln->length_m) {
            jkey(u, r, "bay_m");
            errf(c, u, false, "must be < the link length (%g m), got %g", ln->length_m,
                 ln->lanes[k].bay_m);
        }
    }
    /* turn ratios: at the downstream intersection */
    const json_t *tr = json_object_get(o, "turn_ratio");
    jkey(q, p, "turn_ratio");
    if (!ends_ok || !ok)
        return;
    if (ln->to_kind == SF_NODE_BOUNDARY) {
        if (tr)
            errf(c, q, true, "not allowed: link ends at boundary \"%s\"",
                 node_id(sc, ln->to_kind, ln->to_idx));
        ln->turn_ratio[SF_TURN_THROUGH] = 1;
        return;
    }
    if (!tr) {
        errf(c, q, false, "missing required field (link ends at intersection \"%s\")",
             node_id(sc, ln->to_kind, ln->to_idx));
        return;
    }
    ratio_in_t ri;
    if (!load_fields(c, tr, q, RATIO_F, NF(RATIO_F), &ri))
        return;
    double sum = (double)ri.r[0] + ri.r[1] + ri.r[2];
    if (fabs(sum - 1.0) > 1e-3) {
        errf(c, q, false, "must sum to 1, got %g", sum);
        return;
    }
    memcpy(ln->turn_ratio, ri.r, sizeof ri.r);
}

static void load_links(ctx_t *c, const json_t *root)
{
    size_t n;
    char p[PATH_LEN];
    const json_t *a = get_arr(c, root, "links", "", 1, MAX_LINKS, &n);
    if (!a)
        return;
    sf_scenario_t *sc = c->sc;
    sc->links = calloc(n, sizeof *sc->links);
    c->link_ok = calloc(n, sizeof *c->link_ok);
    if (!sc->links || !c->link_ok) {
        c->oom = true;
        return;
    }
    sc->n_links = (uint32_t)n;
    /* ids first, so duplicates are caught before anything refers to them */
    for (size_t k = 0; k < n; k++) {
        const json_t *id = json_object_get(json_array_get(a, k), "id");
        if (!json_is_string(id) || !is_id(json_string_value(id)))
            continue;
        const char *s = json_string_value(id);
        int j = find_link(sc, s);
        if (j >= 0) {
            jidx(p, "links", k);
            jkey(p, p, "id");
            errf(c, p, false, "duplicate id \"%s\" (also links[%d])", s, j);
            ambiguous(c, "link", s);
            continue;
        }
        snprintf(sc->links[k].id, SF_ID_LEN, "%s", s);
    }
    for (size_t k = 0; k < n; k++) {
        char keep[SF_ID_LEN];
        memcpy(keep, sc->links[k].id, SF_ID_LEN);
        load_link(c, json_array_get(a, k), k);
        /* a duplicate keeps no id, so nothing resolves to it */
        memcpy(sc->links[k].id, keep, SF_ID_LEN);
    }
}

/* ---- signals ----------------------------------------------------------------------- */

static bool load_phases(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix)
{
    size_t n;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN];
    const json_t *a = get_arr(c, o, "phases", p, 1, SF_MAX_PHASES, &n);
    if (!a)
        return false;
    ix->n_phases = (uint8_t)n;
    jkey(q, p, "phases");
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        sf_phase_t *ph = &ix->phases[k];
        jidx(r, q, k);
        if (!load_fields(c, json_array_get(a, k), r, PHASE_F, NF(PHASE_F), ph)) {
            ok = false;
            continue;
        }
        for (size_t j = 0; j < k; j++)
            if (ix->phases[j].id == ph->id) {
                jkey(s, r, "id");
                errf(c, s, false, "duplicate phase %u (also phases[%zu])", ph->id, j);
                ok = false;
            }
        if (ph->max1_ds < ph->min_green_ds) {
            jkey(s, r, "max1_s");
            errf(c, s, false, "must be >= min_green_s (%g s), got %g", ph->min_green_ds / 10.0,
                 ph->max1_ds / 10.0);
            ok = false;
        }
        if (ph->max2_ds < ph->min_green_ds) {
            jkey(s, r, "max2_s");
            errf(c, s, false, "must be >= min_green_s (%g s), got %g", ph->min_green_ds / 10.0,
                 ph->max2_ds / 10.0);
            ok = false;
        }
        if (ph->walk_ds > 0 && ph->ped_clear_ds == 0) {
            jkey(s, r, "ped_clear_s");
            errf(c, s, false, "must be > 0 when walk_s is given");
            ok = false;
        }
        if (ph->walk_ds > 0 && ph->ped_crossing_m > 0) {
            double need = ph->ped_crossing_m / PED_SPEED_MPS;
            if (ph->ped_clear_ds / 10.0 + 1e-9 < need) {
                jkey(s, r, "ped_clear_s");
                errf(c, s, false,
                     "must be >= %.1f s (crossing %g m at %.1f m/s walking speed), got %g",
                     ceil(need * 10.0) / 10.0, ph->ped_crossing_m, PED_SPEED_MPS,
                     ph->ped_clear_ds / 10.0);
                ok = false;
            }
        }
    }
    return ok;
}

/* rings: [[phase, ...] in service order, ...]; a phase's "ring" field, when given,
 * must agree. barriers: [[phase, ...], ...] in the order they are served. */
static bool load_rings_barriers(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix)
{
    size_t nr, nb;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN], b[96];
    int ring_of[SF_MAX_PHASES], barrier_of[SF_MAX_PHASES];
    for (int k = 0; k < SF_MAX_PHASES; k++)
        ring_of[k] = barrier_of[k] = -1;
    bool ok = true;
    const json_t *rings = get_arr(c, o, "rings", p, 1, SF_MAX_RINGS, &nr);
    const json_t *bars = get_arr(c, o, "barriers", p, 1, SF_MAX_BARRIERS, &nb);
    if (!rings || !bars)
        return false;
    const char *what[2] = {"rings", "barriers"};
    const json_t *arr[2] = {rings, bars};
    size_t cnt[2] = {nr, nb};
    int *of[2] = {ring_of, barrier_of};
    for (int w = 0; w < 2; w++) {
        jkey(q, p, what[w]);
        for (size_t g = 0; g < cnt[w]; g++) {
            const json_t *e = json_array_get(arr[w], g);
            jidx(r, q, g);
            if (!json_is_array(e) || json_array_size(e) == 0 ||
                json_array_size(e) > SF_MAX_PHASES) {
                errf(c, r, false, "must be a non-empty array of phase numbers, got %s",
                     json_is_array(e) ? "an empty array" : show(e, b, sizeof b));
                ok = false;
                continue;
            }
            for (size_t k = 0; k < json_array_size(e); k++) {
                jidx(s, r, k);
                int i = phase_ref(c, ix, json_array_get(e, k), s);
                if (i < 0) {
                    ok = false;
                } else if (of[w][i] >= 0) {
                    errf(c, s, false, "phase %u is already in %s[%d]", ix->phases[i].id, what[w],
                         of[w][i]);
                    ok = false;
                } else {
                    of[w][i] = (int)g;
                    if (w == 0)
                        ix->ring_seq[g][ix->ring_seq_len[g]++] = (uint8_t)i;
                    else
                        ix->barrier_mask[g] = (uint16_t)(ix->barrier_mask[g] | 1u << i);
                }
            }
        }
    }
    ix->n_rings = (uint8_t)nr;
    ix->n_barriers = (uint8_t)nb;
    const json_t *pa = json_object_get(o, "phases");
    jkey(q, p, "phases");
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        jidx(r, q, i);
        for (int w = 0; w < 2; w++)
            if (of[w][i] < 0) {
                errf(c, r, false, "phase %u is in no %s entry", ix->phases[i].id,
                     w == 0 ? "ring (rings)" : "barrier (barriers)");
                ok = false;
            }
        const json_t *rv = json_object_get(json_array_get(pa, i), "ring");
        jkey(s, r, "ring");
        if (rv && !json_is_integer(rv)) {
            errf(c, s, false, "must be an integer, got %s", show(rv, b, sizeof b));
            ok = false;
        } else if (rv && ring_of[i] >= 0 && json_integer_value(rv) != ring_of[i] + 1) {
            errf(c, s, false, "must be %d (the phase is listed in rings[%d]), got %lld",
                 ring_of[i] + 1, ring_of[i], (long long)json_integer_value(rv));
            ok = false;
        }
        if (ring_of[i] >= 0)
            ix->phases[i].ring = (uint8_t)(ring_of[i] + 1);
    }
    if (!ok)
        return false;
    /* barriers line up only if every ring serves the barrier groups in the same order
     * and has at least one phase in each */
    jkey(q, p, "rings");
    for (uint8_t g = 0; g < ix->n_rings; g++) {
        jidx(r, q, g);
        int prev = -1;
        uint8_t prev_i = 0;
        for (uint8_t k = 0; k < ix->ring_seq_len[g]; k++) {
            uint8_t i = ix->ring_seq[g][k];
            if (barrier_of[i] < prev) {
                jidx(s, r, k);
                errf(c, s, false,
                     "phase %u (barriers[%d]) is served after phase %u (barriers[%d]): every "
                     "ring must serve the barrier groups in the order of barriers",
                     ix->phases[i].id, barrier_of[i], ix->phases[prev_i].id, prev);
                ok = false;
                break; /* one report per ring */
            }
            if (barrier_of[i] > prev) {
                prev = barrier_of[i];
                prev_i = i;
            }
        }
        for (uint8_t bb = 0; bb < ix->n_barriers; bb++) {
            uint8_t count = 0;
            for (uint8_t k = 0; k < ix->ring_seq_len[g]; k++)
                count = (uint8_t)(count + (barrier_of[ix->ring_seq[g][k]] == bb));
            if (count == 0) {
                errf(c, r, false, "has no phase in barriers[%u]: barriers cannot line up", bb);
                ok = false;
            }
        }
    }
    return ok;
}

static int find_sg(const sf_intersection_t *ix, const char *id)
{
    for (uint8_t k = 0; k < ix->n_sg; k++)
        if (strcmp(ix->sg[k].id, id) == 0)
            return k;
    return -1;
}

static bool load_sgs(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix)
{
    size_t n;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN];
    const json_t *a = get_arr(c, o, "signal_groups", p, 1, SF_MAX_SG, &n);
    if (!a)
        return false;
    jkey(q, p, "signal_groups");
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        sf_signal_group_t g;
        memset(&g, 0, sizeof g);
        const json_t *e = json_array_get(a, k);
        jidx(r, q, k);
        if (!load_fields(c, e, r, SG_F, NF(SG_F), &g)) {
            ok = false;
            continue;
        }
        jkey(s, r, "phase");
        int i = phase_ref(c, ix, json_object_get(e, "phase"), s);
        if (i < 0) {
            ok = false;
            continue;
        }
        g.phase_idx = (uint8_t)i;
        if (find_sg(ix, g.id) >= 0) {
            jkey(s, r, "id");
            errf(c, s, false, "duplicate id \"%s\" (also signal_groups[%d])", g.id,
                 find_sg(ix, g.id));
            ok = false;
            continue;
        }
        ix->sg[ix->n_sg++] = g;
    }
    return ok;
}

static bool load_plan(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix,
                      sf_plan_t *pl, bool rings_ok)
{
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN];
    size_t n;
    bool ok = load_fields(c, o, p, PLAN_F, NF(PLAN_F), pl);
    int split_at[SF_MAX_PHASES]; /* splits[] entry of each phase, -1 = none */
    for (int k = 0; k < SF_MAX_PHASES; k++)
        split_at[k] = -1;
    const json_t *a = get_arr(c, o, "splits", p, 1, SF_MAX_PHASES, &n);
    if (!a)
        ok = false;
    jkey(q, p, "splits");
    for (size_t k = 0; a && k < n; k++) {
        const json_t *e = json_array_get(a, k);
        split_in_t si = {0, SF_SPLIT_NONE};
        jidx(r, q, k);
        if (!load_fields(c, e, r, SPLIT_F, NF(SPLIT_F), &si)) {
            ok = false;
            continue;
        }
        jkey(s, r, "phase");
        int i = phase_ref(c, ix, json_object_get(e, "phase"), s);
        if (i < 0) {
            ok = false;
        } else if (split_at[i] >= 0) {
            errf(c, s, false, "phase %u already has a split (splits[%d])", ix->phases[i].id,
                 split_at[i]);
            ok = false;
        } else {
            split_at[i] = (int)k;
            pl->split_ds[i] = si.split_ds;
            pl->split_mode[i] = si.mode;
        }
    }
    if (!phase_list(c, ix, o, "coord_phases", p, &pl->coord_phase_mask))
        ok = false;
    if (!ok)
        return false;
    for (uint8_t i = 0; i < ix->n_phases; i++)
        if (split_at[i] < 0) {
            errf(c, q, false, "no split for phase %u", ix->phases[i].id);
            ok = false;
        }
    if (!ok)
        return false;
    if (pl->offset_ds >= pl->cycle_ds) {
        jkey(s, p, "offset_s");
        errf(c, s, false, "must be < the cycle (%g s), got %g", pl->cycle_ds / 10.0,
             pl->offset_ds / 10.0);
        ok = false;
    }
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        const sf_phase_t *ph = &ix->phases[i];
        if (pl->split_mode[i] == SF_SPLIT_OMIT)
            continue;
        jidx(r, q, (size_t)split_at[i]);
        jkey(s, r, "split_s");
        int need = ph->min_green_ds + ph->yellow_ds + ph->red_clear_ds;
        int ped = ph->walk_ds + ph->ped_clear_ds + ph->yellow_ds + ph->red_clear_ds;
        if (pl->split_ds[i] < need) {
            errf(c, s, false,
                 "must be >= %g s (phase %u: min green %g + yellow %g + red clear %g), got %g",
                 need / 10.0, ph->id, ph->min_green_ds / 10.0, ph->yellow_ds / 10.0,
                 ph->red_clear_ds / 10.0, pl->split_ds[i] / 10.0);
            ok = false;
        } else if (ph->walk_ds > 0 && pl->split_ds[i] < ped) {
            errf(c, s, false,
                 "must be >= %g s (phase %u: walk %g + ped clear %g + yellow %g + red clear "
                 "%g), got %g",
                 ped / 10.0, ph->id, ph->walk_ds / 10.0, ph->ped_clear_ds / 10.0,
                 ph->yellow_ds / 10.0, ph->red_clear_ds / 10.0, pl->split_ds[i] / 10.0);
            ok = false;
        }
    }
    jkey(s, p, "coord_phases");
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if (!(pl->coord_phase_mask >> i & 1u))
            continue;
        if (pl->split_mode[i] == SF_SPLIT_OMIT) {
            errf(c, s, false, "coordinated phase %u is omitted in this plan", ix->phases[i].id);
            ok = false;
        }
        for (uint8_t j = (uint8_t)(i + 1); rings_ok && j < ix->n_phases; j++)
            if ((pl->coord_phase_mask >> j & 1u) && !ix->concurrent[i][j]) {
                errf(c, s, false,
                     "green conflict: coordinated phases %u and %u are not concurrent (same "
                     "ring or different barriers)",
                     ix->phases[i].id, ix->phases[j].id);
                ok = false;
            }
    }
    if (!rings_ok || !ok)
        return ok;
    /* every ring's splits fill the cycle exactly, and barrier by barrier */
    for (uint8_t g = 0; g < ix->n_rings; g++) {
        int sum = 0;
        for (uint8_t k = 0; k < ix->ring_seq_len[g]; k++)
            sum += pl->split_ds[ix->ring_seq[g][k]];
        if (sum != pl->cycle_ds) {
            errf(c, q, false, "ring %u splits sum to %g s, must equal cycle_s (%g s)", g + 1,
                 sum / 10.0, pl->cycle_ds / 10.0);
            ok = false;
        }
    }
    if (!ok)
        return false;
    /* with equal ring sums, one barrier off means another is off the other way: report
     * the first */
    for (uint8_t bb = 0; ok && bb < ix->n_barriers; bb++) {
        int first = -1;
        for (uint8_t g = 0; g < ix->n_rings; g++) {
            int sum = 0;
            for (uint8_t k = 0; k < ix->ring_seq_len[g]; k++) {
                uint8_t i = ix->ring_seq[g][k];
                if (ix->barrier_mask[bb] >> i & 1u)
                    sum += pl->split_ds[i];
            }
            if (g == 0) {
                first = sum;
            } else if (sum != first) {
                errf(c, q, false,
                     "barriers do not line up: in barriers[%u] ring 1 splits sum to %g s but "
                     "ring %u splits to %g s",
                     bb, first / 10.0, g + 1, sum / 10.0);
                ok = false;
            }
        }
    }
    return ok;
}

static int find_plan(const sf_intersection_t *ix, json_int_t id)
{
    for (uint8_t k = 0; k < ix->n_plans; k++)
        if (ix->plans[k].id == id)
            return k;
    return -1;
}

static int plan_ref(ctx_t *c, const sf_intersection_t *ix, const json_t *v, const char *path)
{
    char b[96];
    if (!json_is_integer(v)) {
        errf(c, path, false, "must be a plan number, got %s", show(v, b, sizeof b));
        return -1;
    }
    int k = find_plan(ix, json_integer_value(v));
    if (k < 0)
        errf(c, path, false, "unknown plan %lld", (long long)json_integer_value(v));
    return k;
}

static bool load_plans(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix,
                       bool rings_ok)
{
    size_t n;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN];
    const json_t *a = get_arr(c, o, "plans", p, 1, SF_MAX_PLANS, &n);
    if (!a)
        return false;
    jkey(q, p, "plans");
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        sf_plan_t pl;
        memset(&pl, 0, sizeof pl);
        jidx(r, q, k);
        if (!load_plan(c, json_array_get(a, k), r, ix, &pl, rings_ok)) {
            ok = false;
            continue;
        }
        int j = find_plan(ix, pl.id);
        if (j >= 0) {
            jkey(s, r, "id");
            errf(c, s, false, "duplicate plan %u (also plans[%d])", pl.id, j);
            ok = false;
            continue;
        }
        ix->plans[ix->n_plans++] = pl;
    }
    if (!ok)
        return false;
    /* schedule and local plan refer to plans by number */
    const json_t *sa = get_arr(c, o, "schedule", p, 0, SF_MAX_SCHEDULE, &n);
    if (!sa && json_object_get(o, "schedule"))
        ok = false;
    jkey(q, p, "schedule");
    for (size_t k = 0; sa && k < n; k++) {
        const json_t *e = json_array_get(sa, k);
        sf_schedule_entry_t se = {0, 0};
        jidx(r, q, k);
        if (!load_fields(c, e, r, SCHED_F, NF(SCHED_F), &se)) {
            ok = false;
            continue;
        }
        jkey(s, r, "plan");
        int pi = plan_ref(c, ix, json_object_get(e, "plan"), s);
        if (pi < 0) {
            ok = false;
            continue;
        }
        se.plan_idx = (uint8_t)pi;
        bool dup = false;
        for (uint8_t j = 0; j < ix->n_schedule; j++)
            if (ix->schedule[j].at_s == se.at_s) {
                jkey(s, r, "at");
                errf(c, s, false, "time %02u:%02u already has an entry", se.at_s / 3600,
                     se.at_s / 60 % 60);
                dup = ok = false;
            }
        if (!dup)
            ix->schedule[ix->n_schedule++] = se;
    }
    const json_t *lp = json_object_get(o, "local_plan");
    ix->local_plan_idx = 0;
    if (lp) {
        jkey(s, p, "local_plan");
        int pi = plan_ref(c, ix, lp, s);
        if (pi < 0)
            ok = false;
        else
            ix->local_plan_idx = (uint8_t)pi;
    }
    return ok;
}

static bool det_id_taken(const sf_scenario_t *sc, uint32_t upto_ix, const sf_intersection_t *ix,
                         const char *id, char *where, size_t len)
{
    for (uint32_t i = 0; i <= upto_ix; i++) {
        const sf_intersection_t *x = i == upto_ix ? ix : &sc->intersections[i];
        for (uint8_t k = 0; k < x->n_det; k++)
            if (strcmp(x->det[k].id, id) == 0) {
                snprintf(where, len, "intersection \"%s\"", x->id);
                return true;
            }
    }
    return false;
}

static bool load_detectors(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix,
                           uint32_t ii)
{
    size_t n;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN], where[96];
    const json_t *a = get_arr(c, o, "detectors", p, 0, SF_MAX_DET, &n);
    if (!a)
        return json_object_get(o, "detectors") == NULL;
    jkey(q, p, "detectors");
    bool ok = true;
    const sf_scenario_t *sc = c->sc;
    for (size_t k = 0; k < n; k++) {
        sf_detector_t d;
        memset(&d, 0, sizeof d);
        const json_t *e = json_array_get(a, k);
        jidx(r, q, k);
        if (!load_fields(c, e, r, DET_F, NF(DET_F), &d)) {
            ok = false;
            continue;
        }
        bool good = true;
        jkey(s, r, "link");
        int li = link_ref(c, json_object_get(e, "link"), s);
        if (li < 0) {
            good = false;
        } else {
            const sf_link_t *ln = &sc->links[li];
            d.link_idx = (uint32_t)li;
            if (ln->to_kind != SF_NODE_INTERSECTION || ln->to_idx != ii) {
                errf(c, s, false, "link \"%s\" does not approach intersection \"%s\"", ln->id,
                     ix->id);
                good = false;
            } else if (d.lane >= ln->n_lanes) {
                jkey(s, r, "lane");
                errf(c, s, false, "must be < %u (link \"%s\" has %u lanes), got %u", ln->n_lanes,
                     ln->id, ln->n_lanes, d.lane);
                good = false;
            } else if (d.distance_m > ln->length_m) {
                jkey(s, r, "distance_m");
                errf(c, s, false, "must be <= the length of link \"%s\" (%g m), got %g", ln->id,
                     ln->length_m, d.distance_m);
                good = false;
            }
        }
        if (d.length_m > d.distance_m) {
            jkey(s, r, "length_m");
            errf(c, s, false,
                 "must be <= distance_m (%g m; the zone ends at the stop line), got %g",
                 d.distance_m, d.length_m);
            good = false;
        }
        if (!phase_list(c, ix, e, "phases", r, &d.phase_mask)) {
            good = false;
        } else if (d.kind == SF_DET_PRESENCE && d.phase_mask == 0) {
            jkey(s, r, "phases");
            errf(c, s, false, "a presence detector must call at least one phase");
            good = false;
        }
        if (det_id_taken(sc, ii, ix, d.id, where, sizeof where)) {
            jkey(s, r, "id");
            errf(c, s, false, "duplicate detector id \"%s\" (also in %s)", d.id, where);
            good = false;
        }
        if (good)
            ix->det[ix->n_det++] = d;
        ok &= good;
    }
    return ok;
}

static bool load_movements(ctx_t *c, const json_t *o, const char *p, sf_intersection_t *ix,
                           uint32_t ii)
{
    size_t n;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN], b[96];
    const json_t *a = get_arr(c, o, "movements", p, 1, SF_MAX_MOVEMENTS, &n);
    if (!a)
        return false;
    jkey(q, p, "movements");
    bool ok = true;
    const sf_scenario_t *sc = c->sc;
    for (size_t k = 0; k < n; k++) {
        sf_movement_t m;
        memset(&m, 0, sizeof m);
        const json_t *e = json_array_get(a, k);
        jidx(r, q, k);
        if (!load_fields(c, e, r, MOV_F, NF(MOV_F), &m)) {
            ok = false;
            continue;
        }
        bool good = true;
        jkey(s, r, "from_link");
        int fl = link_ref(c, json_object_get(e, "from_link"), s);
        if (fl >= 0 &&
            (sc->links[fl].to_kind != SF_NODE_INTERSECTION || sc->links[fl].to_idx != ii)) {
            errf(c, s, false, "link \"%s\" does not approach intersection \"%s\"", sc->links[fl].id,
                 ix->id);
            fl = -1;
        } else if (fl >= 0 && !(sc->links[fl].n_lanes > 0)) {
            fl = -1; /* its lanes were already reported */
        } else if (fl >= 0) {
            bool lane = false;
            for (uint8_t l = 0; l < sc->links[fl].n_lanes; l++)
                lane |= (sc->links[fl].lanes[l].use_mask >> m.turn & 1u) != 0;
            if (!lane) {
                jkey(s, r, "turn");
                errf(c, s, false, "no lane of link \"%s\" allows \"%s\"", sc->links[fl].id,
                     TURN_N[m.turn]);
                good = false;
            }
        }
        jkey(s, r, "to_link");
        int tl = link_ref(c, json_object_get(e, "to_link"), s);
        if (tl >= 0 &&
            (sc->links[tl].from_kind != SF_NODE_INTERSECTION || sc->links[tl].from_idx != ii)) {
            errf(c, s, false, "link \"%s\" does not leave intersection \"%s\"", sc->links[tl].id,
                 ix->id);
            tl = -1;
        }
        jkey(s, r, "signal_group");
        const json_t *sv = json_object_get(e, "signal_group");
        int gi = json_is_string(sv) ? find_sg(ix, json_string_value(sv)) : -1;
        if (gi < 0)
            errf(c, s, false, "%s %s",
                 json_is_string(sv) ? "unknown signal group"
                                    : "must be a signal group id (string), got",
                 show(sv, b, sizeof b));
        if (fl < 0 || tl < 0 || gi < 0 || !good) {
            ok = false;
            continue;
        }
        m.from_link_idx = (uint32_t)fl;
        m.to_link_idx = (uint32_t)tl;
        m.sg_idx = (uint8_t)gi;
        for (uint8_t j = 0; j < ix->n_movements; j++) {
            if (strcmp(ix->movements[j].id, m.id) == 0) {
                jkey(s, r, "id");
                errf(c, s, false, "duplicate id \"%s\" (also movements[%u])", m.id, j);
                good = false;
            } else if (ix->movements[j].from_link_idx == m.from_link_idx &&
                       ix->movements[j].to_link_idx == m.to_link_idx) {
                jkey(s, r, "to_link");
                errf(c, s, false, "movement %s -> %s already exists (movements[%u])",
                     sc->links[fl].id, sc->links[tl].id, j);
                good = false;
            }
        }
        if (good)
            ix->movements[ix->n_movements++] = m;
        ok &= good;
    }
    return ok;
}

/* Unit vector of travel on a link as it reaches its downstream node; false when the
 * nodes coincide. */
static bool approach_dir(const sf_scenario_t *sc, const sf_link_t *ln, double *ux, double *uy)
{
    double x0, y0, x1, y1;
    node_xy(sc, ln->from_kind, ln->from_idx, &x0, &y0);
    node_xy(sc, ln->to_kind, ln->to_idx, &x1, &y1);
    double d = hypot(x1 - x0, y1 - y0);
    if (d < 1e-9)
        return false;
    *ux = (x1 - x0) / d;
    *uy = (y1 - y0) / d;
    return true;
}

/* Green conflicts the phase structure cannot see, from the geometry of the approaches:
 * two through movements from crossing approaches, or a protected (arrow) left and the
 * opposing through, must never be green together. Rings and barriers only say which
 * phases may run together; this checks that the movements given to them agree. */
static bool check_movement_conflicts(ctx_t *c, const sf_intersection_t *ix, const char *p)
{
    const sf_scenario_t *sc = c->sc;
    char q[PATH_LEN];
    bool ok = true;
    for (uint8_t a = 0; a < ix->n_movements; a++) {
        const sf_movement_t *ma = &ix->movements[a];
        double ax, ay, bx, by;
        if (!approach_dir(sc, &sc->links[ma->from_link_idx], &ax, &ay))
            continue;
        for (uint8_t b = 0; b < a; b++) {
            const sf_movement_t *mb = &ix->movements[b];
            if (ma->from_link_idx == mb->from_link_idx ||
                !approach_dir(sc, &sc->links[mb->from_link_idx], &bx, &by))
                continue;
            uint8_t pa = ix->sg[ma->sg_idx].phase_idx, pb = ix->sg[mb->sg_idx].phase_idx;
            if (pa != pb && !ix->concurrent[pa][pb])
                continue;
            double dot = ax * bx + ay * by; /* 1 same way, -1 opposing, 0 crossing */
            bool crossing = fabs(dot) < 0.5, opposing = dot <= -0.5;
            bool thr_a = ma->turn == SF_TURN_THROUGH, thr_b = mb->turn == SF_TURN_THROUGH;
            bool arrow_left_a = ma->turn == SF_TURN_LEFT && ix->sg[ma->sg_idx].kind == SF_SG_ARROW;
            bool arrow_left_b = mb->turn == SF_TURN_LEFT && ix->sg[mb->sg_idx].kind == SF_SG_ARROW;
            const char *why = NULL;
            if (crossing && thr_a && thr_b)
                why = "through movements from crossing approaches";
            else if (opposing && ((arrow_left_a && thr_b) || (arrow_left_b && thr_a)))
                why = "a protected left and the opposing through";
            if (!why)
                continue;
            jkey(q, p, "movements");
            jidx(q, q, a);
            jkey(q, q, "signal_group");
            errf(c, q, false,
                 "green conflict: %s (movements \"%s\" and \"%s\") would be green together "
                 "(signal groups \"%s\" and \"%s\", phases %u and %u)",
                 why, mb->id, ma->id, ix->sg[mb->sg_idx].id, ix->sg[ma->sg_idx].id,
                 ix->phases[pb].id, ix->phases[pa].id);
            ok = false;
            break; /* one report per movement */
        }
    }
    return ok;
}

static void load_intersection(ctx_t *c, uint32_t ii)
{
    sf_intersection_t *ix = &c->sc->intersections[ii];
    const json_t *o = c->ixo[ii];
    char p[PATH_LEN];
    jidx(p, "intersections", ii);
    char id[SF_ID_LEN];
    memcpy(id, ix->id, sizeof id); /* "" when the first pass found it bad or duplicate */
    ix->strategy = c->sc->control.strategy;
    bool ok = load_fields(c, o, p, IX_F, NF(IX_F), ix);
    memcpy(ix->id, id, sizeof id);
    if (!json_is_object(o))
        return;
    bool ph_ok = load_phases(c, o, p, ix);
    bool rings_ok = ph_ok && load_rings_barriers(c, o, p, ix);
    if (rings_ok)
        sf_intersection_derive_conflicts(ix);
    bool sg_ok = ph_ok && load_sgs(c, o, p, ix);
    bool pl_ok = ph_ok && load_plans(c, o, p, ix, rings_ok);
    bool det_ok = ph_ok && load_detectors(c, o, p, ix, ii);
    bool mov_ok = sg_ok && load_movements(c, o, p, ix, ii);
    if (sg_ok && rings_ok)
        sf_intersection_derive_conflicts(ix); /* again, now with the signal groups */
    if (mov_ok && rings_ok && !check_movement_conflicts(c, ix, p))
        mov_ok = false;
    c->ix_ok[ii] = ok && ph_ok && rings_ok && sg_ok && pl_ok && det_ok && mov_ok;
}

/* A turn with a share must have a movement to serve it. */
static void check_turns(ctx_t *c)
{
    const sf_scenario_t *sc = c->sc;
    char p[PATH_LEN];
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *ln = &sc->links[li];
        if (!c->link_ok[li] || ln->to_kind != SF_NODE_INTERSECTION || !c->ix_ok[ln->to_idx] ||
            ln->n_lanes == 0)
            continue;
        const sf_intersection_t *ix = &sc->intersections[ln->to_idx];
        for (int t = 0; t < SF_TURN_N; t++) {
            if (ln->turn_ratio[t] <= 0)
                continue;
            bool found = false;
            for (uint8_t m = 0; m < ix->n_movements; m++)
                found |= ix->movements[m].from_link_idx == li && (int)ix->movements[m].turn == t;
            if (!found) {
                snprintf(p, sizeof p, "links[%u].turn_ratio.%s", li, TURN_N[t]);
                errf(c, p, false, "is %g but intersection \"%s\" has no %s movement from \"%s\"",
                     ln->turn_ratio[t], ix->id, TURN_N[t], ln->id);
            }
        }
    }
}

/* ---- demand, transit, control, run -------------------------------------------------- */

static void load_demand(ctx_t *c, const json_t *root)
{
    sf_scenario_t *sc = c->sc;
    sf_demand_t *d = &sc->demand;
    for (int k = 0; k < SF_VEH_N; k++)
        d->vtype[k] = *sf_vtype_default((sf_veh_type_t)k);
    d->slice_s = 900;
    const json_t *o = json_object_get(root, "demand");
    if (!o)
        return;
    if (!load_fields(c, o, "demand", DEMAND_F, NF(DEMAND_F), d))
        if (!json_is_object(o))
            return;
    char p[PATH_LEN], q[PATH_LEN], r[PATH_LEN];
    const json_t *vt = json_object_get(o, "vtype");
    if (vt && load_fields(c, vt, "demand.vtype", VTYPES_F, NF(VTYPES_F), NULL)) {
        for (int k = 0; k < SF_VEH_N; k++) {
            const json_t *e = json_object_get(vt, VTYPES_F[k].name);
            jkey(p, "demand.vtype", VTYPES_F[k].name);
            if (e)
                load_fields(c, e, p, VT_F, NF(VT_F), &d->vtype[k]);
        }
    }
    size_t n;
    const json_t *a = get_arr(c, o, "entries", "demand", 0, MAX_LINKS, &n);
    if (!a || n == 0)
        return;
    d->entries = calloc(n, sizeof *d->entries);
    if (!d->entries) {
        c->oom = true;
        return;
    }
    for (size_t k = 0; k < n; k++) {
        sf_entry_t *en = &d->entries[d->n_entries];
        memset(en, 0, sizeof *en);
        const json_t *e = json_array_get(a, k);
        jidx(p, "demand.entries", k);
        if (!load_fields(c, e, p, ENTRY_F, NF(ENTRY_F), en))
            continue;
        bool good = true;
        jkey(q, p, "link");
        int li = link_ref(c, json_object_get(e, "link"), q);
        if (li >= 0 && sc->links[li].from_kind != SF_NODE_BOUNDARY) {
            errf(c, q, false, "link \"%s\" does not start at a boundary (demand enters there)",
                 sc->links[li].id);
            good = false;
        }
        for (uint32_t j = 0; li >= 0 && good && j < d->n_entries; j++)
            if (d->entries[j].link_idx == (uint32_t)li) {
                errf(c, q, false, "link \"%s\" already has an entry", sc->links[li].id);
                good = false;
            }
        size_t np;
        const json_t *pa = get_arr(c, e, "profile", p, 0, SF_MAX_PROFILE, &np);
        if (!pa && json_object_get(e, "profile"))
            good = false;
        jkey(q, p, "profile");
        for (size_t j = 0; pa && j < np; j++) {
            jidx(r, q, j);
            good &= read_field(c, json_array_get(pa, j), r, &PROFILE_ITEM_F, &en->profile[j]);
        }
        en->n_profile = (uint8_t)np;
        if (li < 0 || !good)
            continue;
        en->link_idx = (uint32_t)li;
        d->n_entries++;
    }
}

static bool link_in_route(const sf_line_t *ln, uint32_t li, uint8_t from, uint8_t *at)
{
    for (uint8_t k = from; k < ln->n_route; k++)
        if (ln->route[k] == li) {
            *at = k;
            return true;
        }
    return false;
}

static bool load_route(ctx_t *c, const json_t *e, const char *p, sf_line_t *ln)
{
    const sf_scenario_t *sc = c->sc;
    char q[PATH_LEN], r[PATH_LEN];
    size_t n;
    const json_t *a = get_arr(c, e, "route", p, 1, SF_MAX_ROUTE, &n);
    if (!a)
        return false;
    jkey(q, p, "route");
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        jidx(r, q, k);
        int li = link_ref(c, json_array_get(a, k), r);
        if (li < 0) {
            ok = false;
            continue;
        }
        ln->route[k] = (uint32_t)li;
    }
    ln->n_route = (uint8_t)n;
    if (!ok)
        return false;
    const sf_link_t *first = &sc->links[ln->route[0]], *last = &sc->links[ln->route[n - 1]];
    if (first->from_kind != SF_NODE_BOUNDARY) {
        jidx(r, q, 0);
        errf(c, r, false, "must start at a boundary: link \"%s\" starts at intersection \"%s\"",
             first->id, sc->intersections[first->from_idx].id);
        ok = false;
    }
    for (size_t k = 1; k < n; k++) {
        const sf_link_t *a0 = &sc->links[ln->route[k - 1]], *a1 = &sc->links[ln->route[k]];
        jidx(r, q, k);
        if (a0->to_kind != a1->from_kind || a0->to_idx != a1->from_idx ||
            a0->to_kind != SF_NODE_INTERSECTION) {
            errf(c, r, false, "link \"%s\" does not start where link \"%s\" ends", a1->id, a0->id);
            ok = false;
            continue;
        }
        const sf_intersection_t *ix = &sc->intersections[a0->to_idx];
        if (!c->ix_ok[a0->to_idx])
            continue;
        bool found = false;
        for (uint8_t m = 0; m < ix->n_movements; m++)
            found |= ix->movements[m].from_link_idx == ln->route[k - 1] &&
                     ix->movements[m].to_link_idx == ln->route[k];
        if (!found) {
            errf(c, r, false, "intersection \"%s\" has no movement from \"%s\" to \"%s\"", ix->id,
                 a0->id, a1->id);
            ok = false;
        }
    }
    if (ok && last->to_kind != SF_NODE_BOUNDARY) {
        jidx(r, q, n - 1);
        errf(c, r, false, "must end at a boundary: link \"%s\" ends at intersection \"%s\"",
             last->id, sc->intersections[last->to_idx].id);
        ok = false;
    }
    return ok;
}

static bool stop_id_taken(const sf_scenario_t *sc, const sf_line_t *cur, const char *id,
                          char *where, size_t len)
{
    for (uint32_t i = 0; i <= sc->n_lines; i++) {
        const sf_line_t *ln = i == sc->n_lines ? cur : &sc->lines[i];
        for (uint8_t k = 0; k < ln->n_stops; k++)
            if (strcmp(ln->stops[k].id, id) == 0) {
                snprintf(where, len, "line \"%s\"", ln->id);
                return true;
            }
    }
    return false;
}

static bool load_stops(ctx_t *c, const json_t *e, const char *p, sf_line_t *ln, bool route_ok)
{
    const sf_scenario_t *sc = c->sc;
    char q[PATH_LEN], r[PATH_LEN], s[PATH_LEN], where[96];
    size_t n;
    const json_t *a = get_arr(c, e, "stops", p, 0, SF_MAX_LINE_STOPS, &n);
    if (!a)
        return json_object_get(e, "stops") == NULL;
    jkey(q, p, "stops");
    bool ok = true;
    uint8_t at_prev = 0;
    float dist_prev = -1, sched_prev = -1;
    for (size_t k = 0; k < n; k++) {
        sf_stop_t st;
        memset(&st, 0, sizeof st);
        const json_t *so = json_array_get(a, k);
        jidx(r, q, k);
        if (!load_fields(c, so, r, STOP_F, NF(STOP_F), &st)) {
            ok = false;
            continue;
        }
        bool good = true;
        if (stop_id_taken(sc, ln, st.id, where, sizeof where)) {
            jkey(s, r, "id");
            errf(c, s, false, "duplicate stop id \"%s\" (also in %s)", st.id, where);
            good = false;
        }
        jkey(s, r, "link");
        int li = link_ref(c, json_object_get(so, "link"), s);
        if (li < 0 || !route_ok) {
            ok = false;
            continue;
        }
        st.link_idx = (uint32_t)li;
        uint8_t at;
        if (!link_in_route(ln, (uint32_t)li, 0, &at)) {
            errf(c, s, false, "link \"%s\" is not on the route of line \"%s\"", sc->links[li].id,
                 ln->id);
            ok = false;
            continue;
        }
        if (st.distance_m > sc->links[li].length_m) {
            jkey(s, r, "distance_m");
            errf(c, s, false, "must be <= the length of link \"%s\" (%g m), got %g",
                 sc->links[li].id, sc->links[li].length_m, st.distance_m);
            good = false;
        } else if (!link_in_route(ln, (uint32_t)li, at_prev, &at) ||
                   (at == at_prev && st.distance_m < dist_prev)) {
            jkey(s, r, "distance_m");
            errf(c, s, false,
                 "stops must be listed in route order: this one lies before the "
                 "previous stop");
            good = false;
        }
        if (st.scheduled_s < sched_prev) {
            jkey(s, r, "scheduled_s");
            errf(c, s, false, "must be >= the previous stop's (%g s), got %g", sched_prev,
                 st.scheduled_s);
            good = false;
        }
        if (!good) {
            ok = false;
            continue;
        }
        at_prev = at;
        dist_prev = st.distance_m;
        sched_prev = st.scheduled_s;
        ln->stops[ln->n_stops++] = st;
    }
    return ok;
}

static void load_transit(ctx_t *c, const json_t *root)
{
    sf_scenario_t *sc = c->sc;
    const json_t *o = json_object_get(root, "transit");
    if (!o || !load_fields(c, o, "transit", TRANSIT_F, NF(TRANSIT_F), NULL))
        return;
    size_t n;
    const json_t *a = get_arr(c, o, "lines", "transit", 0, MAX_LINES, &n);
    if (!a || n == 0)
        return;
    sc->lines = calloc(n, sizeof *sc->lines);
    if (!sc->lines) {
        c->oom = true;
        return;
    }
    char p[PATH_LEN], s[PATH_LEN];
    for (size_t k = 0; k < n; k++) {
        sf_line_t *ln = &sc->lines[sc->n_lines];
        memset(ln, 0, sizeof *ln);
        const json_t *e = json_array_get(a, k);
        jidx(p, "transit.lines", k);
        if (!load_fields(c, e, p, LINE_F, NF(LINE_F), ln))
            continue;
        bool good = true;
        for (uint32_t j = 0; j < sc->n_lines; j++)
            if (strcmp(sc->lines[j].id, ln->id) == 0) {
                jkey(s, p, "id");
                errf(c, s, false, "duplicate id \"%s\" (also transit.lines[%u])", ln->id, j);
                good = false;
            }
        bool route_ok = load_route(c, e, p, ln);
        good &= route_ok;
        good &= load_stops(c, e, p, ln, route_ok);
        if (good)
            sc->n_lines++;
    }
}

/* ---- faults ---------------------------------------------------------------------------- */

/* The intersection and detector one faults.detectors entry names (p is its path), into
 * f->ix_idx / f->det_idx; false when either is wrong (reported). An intersection that did
 * not load has its own errors: its detectors are not judged. */
static bool det_fault_ref(ctx_t *c, const json_t *e, const char *p, sf_det_fault_t *f)
{
    const sf_scenario_t *sc = c->sc;
    char q[PATH_LEN], b[96];
    const json_t *xv = json_object_get(e, "intersection");
    jkey(q, p, "intersection");
    if (!json_is_string(xv)) {
        errf(c, q, false, "must be an intersection id (string), got %s", show(xv, b, sizeof b));
        return false;
    }
    int ii = sf_scenario_find_intersection(sc, json_string_value(xv));
    if (ii < 0) {
        errf(c, q, false, "unknown intersection %s", show(xv, b, sizeof b));
        return false;
    }
    const sf_intersection_t *ix = &sc->intersections[ii];
    f->ix_idx = (uint32_t)ii;
    const json_t *dv = json_object_get(e, "detector");
    jkey(q, p, "detector");
    if (!json_is_string(dv)) {
        errf(c, q, false, "must be a detector id (string), got %s", show(dv, b, sizeof b));
        return false;
    }
    if (!c->ix_ok[ii])
        return false;
    const char *id = json_string_value(dv);
    for (uint8_t k = 0; k < ix->n_det; k++)
        if (strcmp(ix->det[k].id, id) == 0) {
            f->det_idx = k;
            return true;
        }
    for (uint32_t j = 0; j < sc->n_intersections; j++)
        for (uint8_t k = 0; k < sc->intersections[j].n_det; k++)
            if (strcmp(sc->intersections[j].det[k].id, id) == 0) {
                errf(c, q, false, "detector %s is at intersection \"%s\", not \"%s\"",
                     show(dv, b, sizeof b), sc->intersections[j].id, ix->id);
                return false;
            }
    errf(c, q, false, "unknown detector %s (intersection \"%s\" has %u detectors)",
         show(dv, b, sizeof b), ix->id, ix->n_det);
    return false;
}

/* faults.detectors: each entry's references and window (from_s < to_s, from_s within the
 * run: a fault that never starts is a mistake), and no two overlapping windows on one
 * detector (which fault would it show?). */
static void load_faults(ctx_t *c, const json_t *root)
{
    sf_scenario_t *sc = c->sc;
    const json_t *o = json_object_get(root, "faults");
    if (!o || !load_fields(c, o, "faults", FAULTS_F, NF(FAULTS_F), NULL))
        return;
    size_t n;
    const json_t *a = get_arr(c, o, "detectors", "faults", 0, SF_MAX_DET_FAULTS, &n);
    if (!a)
        return;
    char p[PATH_LEN], q[PATH_LEN];
    for (size_t k = 0; k < n; k++) {
        sf_det_fault_t f;
        memset(&f, 0, sizeof f);
        const json_t *e = json_array_get(a, k);
        jidx(p, "faults.detectors", k);
        if (!load_fields(c, e, p, DET_FAULT_F, NF(DET_FAULT_F), &f))
            continue;
        bool good = det_fault_ref(c, e, p, &f);
        if (f.to_s <= f.from_s) {
            jkey(q, p, "to_s");
            errf(c, q, false, "must be > from_s (%g s), got %g", f.from_s, f.to_s);
            good = false;
        } else if (f.from_s >= sc->run.duration_s) {
            jkey(q, p, "from_s");
            errf(c, q, false,
                 "must be < run.duration_s (%g s: the fault would never start), got %g",
                 sc->run.duration_s, f.from_s);
            good = false;
        }
        for (uint8_t j = 0; good && j < sc->faults.n_det; j++) {
            const sf_det_fault_t *g = &sc->faults.det[j];
            if (g->ix_idx == f.ix_idx && g->det_idx == f.det_idx && f.from_s < g->to_s &&
                g->from_s < f.to_s) {
                jkey(q, p, "from_s");
                errf(c, q, false,
                     "overlaps another fault of detector \"%s\" (%g..%g s); one detector has one "
                     "fault at a time",
                     sc->intersections[f.ix_idx].det[f.det_idx].id, g->from_s, g->to_s);
                good = false;
            }
        }
        if (good)
            sc->faults.det[sc->faults.n_det++] = f;
    }
}

static void load_control(ctx_t *c, const json_t *root)
{
    sf_control_t *ct = &c->sc->control;
    const json_t *o = json_object_get(root, "control");
    const json_t *empty = json_object();
    if (!empty) {
        c->oom = true;
        return;
    }
    /* an absent object reads as {} so every field gets its default */
    load_fields(c, o ? o : empty, "control", CONTROL_F, NF(CONTROL_F), ct);
    const json_t *pr = json_is_object(o) ? json_object_get(o, "priority") : NULL;
    load_fields(c, pr ? pr : empty, "control.priority", PRIO_F, NF(PRIO_F), &ct->priority);
    const json_t *gw = json_is_object(o) ? json_object_get(o, "greenwave") : NULL;
    load_fields(c, gw ? gw : empty, "control.greenwave", GW_F, NF(GW_F), &ct->greenwave);
    if (ct->adaptive_min_cycle_s > ct->adaptive_max_cycle_s)
        errf(c, "control.adaptive_max_cycle_s", false,
             "must be >= adaptive_min_cycle_s (%g s), got %g", ct->adaptive_min_cycle_s,
             ct->adaptive_max_cycle_s);
    const json_t *ro = json_object_get(root, "run");
    sf_run_t *run = &c->sc->run;
    if (load_fields(c, ro ? ro : empty, "run", RUN_F, NF(RUN_F), run)) {
        if (run->warmup_s >= run->duration_s)
            errf(c, "run.warmup_s", false, "must be < duration_s (%g s), got %g", run->duration_s,
                 run->warmup_s);
        double r1 = 0.1 / run->step_s, r2 = run->step_s / 0.1;
        if (fabs(r1 - round(r1)) > 1e-6 && fabs(r2 - round(r2)) > 1e-6)
            errf(c, "run.step_s", false,
                 "must divide 0.1 s or be a multiple of it (signal timing is in 0.1 s), got %g",
                 run->step_s);
    }
    json_decref((json_t *)empty);
}

/* ---- --set --------------------------------------------------------------------------- */

/* Apply one "PATH=VALUE" to the tree. On success records in o->anchor the topmost path
 * it created or replaced, so errors below it are located at the --set. */
static void apply_set(ctx_t *c, json_t *root, set_origin_t *o)
{
    const char *arg = o->arg;
    const char *eq = strchr(arg, '=');
    char loc[PATH_LEN + 64];
    snprintf(loc, sizeof loc, "--set %s", arg);
    if (!eq || eq == arg) {
        size_t n = strlen(loc) + 96;
        char *m = malloc(n);
        if (m)
            snprintf(m, n, "%s: %s", loc,
                     eq ? "empty path (expected PATH=VALUE)" : "missing '=' (expected PATH=VALUE)");
        push_msg(c, m);
        return;
    }
    size_t plen = (size_t)(eq - arg);
    char path[PATH_LEN], canon[PATH_LEN] = "", anchor[PATH_LEN] = "";
    if (plen >= sizeof path) {
        char *m = malloc(strlen(loc) + 32);
        if (m)
            snprintf(m, strlen(loc) + 32, "%s: path too long", loc);
        push_msg(c, m);
        return;
    }
    memcpy(path, arg, plen);
    path[plen] = '\0';
    const char *val = eq + 1;
    json_error_t je;
    json_t *v = json_loads(val, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v)
        v = json_string(val); /* a bare word is a string */
    if (!v) {
        char *m = malloc(strlen(loc) + 64);
        if (m)
            snprintf(m, strlen(loc) + 64, "%s: value is not valid UTF-8", loc);
        push_msg(c, m);
        return;
    }
    /* syntax first: name(.name|[index])* */
    for (const char *t = path; *t;) {
        const char *start = t;
        while (*t && *t != '.' && *t != '[' && *t != ']')
            t++;
        bool fine = t > start;
        while (fine && *t == '[') {
            const char *d = ++t;
            while (*t >= '0' && *t <= '9')
                t++;
            fine = t > d && *t == ']';
            t += fine;
        }
        if (fine && *t == '.' && t[1] != '\0')
            t++;
        else if (fine && *t != '\0')
            fine = false;
        if (!fine) {
            size_t n = strlen(loc) + strlen(path) + 96;
            char *m = malloc(n);
            if (m)
                snprintf(m, n, "%s: %s: malformed path (expected name(.name|[index])*)", loc, path);
            push_msg(c, m);
            json_decref(v);
            return;
        }
    }
    /* walk */
    json_t *node = root;
    const char *s = path;
    const char *bad = NULL;
    char what[PATH_LEN + 128] = "";
    while (!bad) {
        const char *start = s;
        while (*s && *s != '.' && *s != '[')
            s++;
        size_t kl = (size_t)(s - start);
        if (kl == 0) {
            bad = "malformed path (expected name(.name|[index])*)";
            break;
        }
        char key[PATH_LEN];
        memcpy(key, start, kl);
        key[kl] = '\0';
        /* key segment, then any number of [index] */
        if (!json_is_object(node)) {
            snprintf(what, sizeof what, "%s is not an object", canon);
            break;
        }
        jkey(canon, canon, key);
        bool last = *s == '\0';
        if (last) {
            if (!anchor[0])
                snprintf(anchor, sizeof anchor, "%s", canon);
            json_object_set_new(node, key, v);
            v = NULL;
            break;
        }
        json_t *child = json_object_get(node, key);
        if (!child) {
            if (*s == '[') {
                snprintf(what, sizeof what, "%s does not exist", canon);
                break;
            }
            child = json_object();
            if (!child || json_object_set_new(node, key, child) != 0) {
                c->oom = true;
                bad = "out of memory";
                break;
            }
            if (!anchor[0])
                snprintf(anchor, sizeof anchor, "%s", canon);
        }
        node = child;
        while (*s == '[') {
            s++;
            char *end;
            if (*s < '0' || *s > '9') {
                bad = "malformed path (an index is a non-negative integer)";
                break;
            }
            unsigned long long ix = strtoull(s, &end, 10);
            if (*end != ']') {
                bad = "malformed path (expected ']')";
                break;
            }
            s = end + 1;
            if (!json_is_array(node)) {
                snprintf(what, sizeof what, "%s is not an array", canon);
                break;
            }
            char tmp[PATH_LEN];
            snprintf(tmp, sizeof tmp, "%s", canon);
            jidx(canon, tmp, (size_t)ix);
            if (ix >= json_array_size(node)) {
                snprintf(what, sizeof what, "index out of range (%s has %zu entries)", tmp,
                         json_array_size(node));
                break;
            }
            if (*s == '\0') {
                if (!anchor[0])
                    snprintf(anchor, sizeof anchor, "%s", canon);
                json_array_set_new(node, (size_t)ix, v);
                v = NULL;
                break;
            }
            node = json_array_get(node, (size_t)ix);
        }
        if (what[0] || !v)
            break;
        if (!bad && *s == '.') {
            s++;
        } else if (!bad) {
            bad = "malformed path (expected '.' or '[' after a name)";
        }
    }
    json_decref(v);
    if (bad || what[0]) {
        size_t n = strlen(loc) + strlen(path) + strlen(bad ? bad : what) + 8;
        char *m = malloc(n);
        if (m)
            snprintf(m, n, "%s: %s: %s", loc, path, bad ? bad : what);
        push_msg(c, m);
        return;
    }
    o->anchor = strdup(anchor);
    if (!o->anchor)
        c->oom = true;
}

/* ---- entry points ---------------------------------------------------------------------- */

static char *read_file(const char *file, size_t *len, int *err)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap + 1);
    *err = buf ? 0 : ENOMEM;
    while (!*err) {
        errno = 0;
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            *err = errno ? errno : EIO; /* e.g. EISDIR */
        } else if (n < cap) {
            break; /* end of file */
        } else if (cap >= MAX_FILE_BYTES) {
            *err = EFBIG;
        } else {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger)
                *err = ENOMEM;
            else
                buf = bigger, cap *= 2;
        }
    }
    fclose(f);
    if (*err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void load_all(ctx_t *c, const json_t *root)
{
    sf_scenario_t *sc = c->sc;
    if (!load_fields(c, root, "", ROOT_F, NF(ROOT_F), sc) && !json_is_object(root))
        return;
    load_control(c, root);
    intersection_ids(c, root);
    load_boundaries(c, root);
    if (c->oom)
        return;
    load_links(c, root);
    if (c->oom)
        return;
    for (uint32_t k = 0; k < sc->n_intersections; k++)
        load_intersection(c, k);
    check_turns(c);
    load_demand(c, root);
    load_transit(c, root);
    load_faults(c, root);
}

sf_scenario_t *sf_scenario_load(const char *file, const char *const *sets, size_t n_sets,
                                sf_errors_t *errs)
{
    if (!file || (n_sets && !sets)) {
        errno = EINVAL;
        return NULL;
    }
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.file = file;
    int rd_err = 0;
    char *text = read_file(file, &c.len, &rd_err);
    c.text = text;
    sf_scenario_t *sc = NULL;
    json_t *root = NULL;
    if (!text) {
        size_t n = strlen(file) + 96;
        char *m = malloc(n);
        if (m)
            snprintf(m, n, "%s: cannot read: %s", file,
                     rd_err == EFBIG ? "larger than 16 MiB" : strerror(rd_err));
        push_msg(&c, m);
        goto done;
    }
    json_error_t je;
    root = json_loadb(text, c.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        size_t n = strlen(file) + strlen(je.text) + 64;
        char *m = malloc(n);
        if (m)
            snprintf(m, n, "%s:%d:%d: (json): %s", file, je.line, je.column, je.text);
        push_msg(&c, m);
        goto done;
    }
    c.sets = calloc(n_sets ? n_sets : 1, sizeof *c.sets);
    sc = calloc(1, sizeof *sc);
    if (!c.sets || !sc) {
        c.oom = true;
        goto done;
    }
    c.sc = sc;
    snprintf(sc->path, sizeof sc->path, "%s", file);
    c.n_sets = n_sets;
    for (size_t k = 0; k < n_sets; k++) {
        c.sets[k].arg = sets[k] ? sets[k] : "";
        apply_set(&c, root, &c.sets[k]);
    }
    load_all(&c, root);
done:
    if (c.oom)
        push_msg(&c, strdup("out of memory"));
    sort_errors(&c);
    free(c.err_key);
    json_decref(root);
    sf_posidx_destroy(&c.pos);
    for (size_t k = 0; c.sets && k < c.n_sets; k++)
        free(c.sets[k].anchor);
    free(c.sets);
    free(c.ixo);
    free(c.ix_ok);
    free(c.link_ok);
    free(c.amb);
    free(text);
    if (c.errs.n > 0 || c.oom) {
        sf_scenario_destroy(&sc);
        if (errs) {
            for (size_t k = 0; k < c.errs.n; k++) {
                char **msg = realloc(errs->msg, (errs->n + 1) * sizeof *msg);
                if (!msg) {
                    free(c.errs.msg[k]);
                    continue;
                }
                errs->msg = msg;
                errs->msg[errs->n++] = c.errs.msg[k];
            }
            free(c.errs.msg);
        } else {
            sf_errors_clear(&c.errs);
        }
        errno = c.oom ? ENOMEM : rd_err ? rd_err : EINVAL;
        return NULL;
    }
    free(c.errs.msg);
    return sc;
}

void sf_scenario_destroy(sf_scenario_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_scenario_t *sc = *self_p;
    free(sc->intersections);
    free(sc->boundaries);
    free(sc->links);
    free(sc->demand.entries);
    free(sc->lines);
    free(sc);
    *self_p = NULL;
}

void sf_errors_clear(sf_errors_t *errs)
{
    if (!errs)
        return;
    for (size_t k = 0; k < errs->n; k++)
        free(errs->msg[k]);
    free(errs->msg);
    errs->msg = NULL;
    errs->n = 0;
}

void sf_errors_report(FILE *f, sf_errors_t *errs, const char *who, const char *file)
{
    int e = errno;
    size_t n = errs ? errs->n : 0;
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s\n", errs->msg[k]);
    if (n)
        fprintf(f, "%zu error%s\n", n, n == 1 ? "" : "s");
    else
        fprintf(f, "%s: %s: cannot load: %s\n", who ? who : "sigflow", file ? file : "(no file)",
                strerror(e ? e : EINVAL));
    sf_errors_clear(errs);
}

char *sf_scenario_summary(const sf_scenario_t *sc, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!sc) {
        buf[0] = '\0';
        return buf;
    }
    unsigned det = 0, plans = 0, stops = 0;
    double flow = 0;
    for (uint32_t k = 0; k < sc->n_intersections; k++) {
        det += sc->intersections[k].n_det;
        plans += sc->intersections[k].n_plans;
    }
    for (uint32_t k = 0; k < sc->n_lines; k++)
        stops += sc->lines[k].n_stops;
    for (uint32_t k = 0; k < sc->demand.n_entries; k++)
        flow += sc->demand.entries[k].flow_veh_h;
    snprintf(buf, len,
             "%s: %u intersections, %u links, %u detectors, %u lines, %u stops, %u plans, "
             "%.0f veh/h entry flow",
             sc->name, sc->n_intersections, sc->n_links, det, sc->n_lines, stops, plans, flow);
    size_t used = strlen(buf);
    if (sc->faults.n_det && used < len) /* only then: a scenario without faults reads as before */
        snprintf(buf + used, len - used, ", %u detector fault%s", sc->faults.n_det,
                 sc->faults.n_det == 1 ? "" : "s");
    return buf;
}
