/* view/runrec.c — recorded trajectories, lamp changes and queues of a run (runrec.h).
 *
 * File layout (native byte order; the byte-order mark tells a foreign file apart):
 *   char[8]  "SFRUNv1\n"
 *   u32      0x01020304 byte-order mark
 *   u32      n_links, u32 n_intersections of the scenario (checked on load)
 *   f64      every_s
 *   u32      path length, then the scenario path (no NUL)
 *   u64      n_points, u64 n_lamp_changes, u64 n_queue_samples, u32 n_queue_links
 *   points as arrays: f32 t[n], u32 veh[n], u32 link[n], f32 pos[n], f32 speed[n], u8 type[n]
 *   lamp changes: n x {f32 t, u16 ix, u8 sg, u8 code}
 *   u32 queue_links[n_queue_links], f32 queue_t[n_q], f32 queue_m[n_q * n_queue_links]
 */
#include "runrec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palette.h"
#include "queues.h"

#define MAGIC       "SFRUNv1\n"
#define BOM         0x01020304u
#define MAX_RECORDS (1ull << 31) /* sanity bound on any count read from a file */

struct sf_runrec {
    const sf_scenario_t *sc; /* not owned */
    double every_s;          /* sampling period, s */
    double last_sample_t;    /* time of the last snapshot sample, -inf before */
    double t_first, t_last;  /* span of everything recorded */
    bool any;                /* something recorded (span valid) */
    double axis_x, axis_y;   /* unit vector of the arterial */
    double cross_mean;       /* mean cross coordinate of the intersections */
    int8_t *link_dir;        /* per link: +1, -1, 0 */
    /* trajectory points, struct of arrays */
    float *pt_t, *pt_pos, *pt_speed;
    uint32_t *pt_veh, *pt_link;
    uint8_t *pt_type;
    size_t n_pts, cap_pts;
    /* lamp changes and the last code seen per (ix, sg) */
    sf_lamp_change_t *lc;
    size_t n_lc, cap_lc;
    uint8_t *last_code; /* n_intersections * SF_MAX_SG */
    /* queues: one column per approach link */
    uint32_t *qlinks;   /* approach link of each column */
    uint32_t n_qlinks;  /* columns */
    int32_t *qcol;      /* per link: its column, -1 */
    float *q_t, *q_val; /* per sample: time; n_qlinks values */
    size_t n_q, cap_q;
    sf_queues_t *queues; /* measurer */
};

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void node_xy(const sf_scenario_t *sc, sf_node_kind_t kind, uint32_t idx, double *x,
                    double *y)
{
    if (kind == SF_NODE_INTERSECTION && idx < sc->n_intersections) {
        *x = sc->intersections[idx].x_m;
        *y = sc->intersections[idx].y_m;
    } else if (kind == SF_NODE_BOUNDARY && idx < sc->n_boundaries) {
        *x = sc->boundaries[idx].x_m;
        *y = sc->boundaries[idx].y_m;
    } else {
        *x = *y = NAN;
    }
}

static void derive_arterial(sf_runrec_t *r)
{
    const sf_scenario_t *sc = r->sc;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (uint32_t i = 0; i < sc->n_intersections; i++) {
        x0 = fmin(x0, sc->intersections[i].x_m);
        x1 = fmax(x1, sc->intersections[i].x_m);
        y0 = fmin(y0, sc->intersections[i].y_m);
        y1 = fmax(y1, sc->intersections[i].y_m);
    }
    bool along_x = !(y1 - y0 > x1 - x0);
    r->axis_x = along_x ? 1 : 0;
    r->axis_y = along_x ? 0 : 1;
    double sum = 0;
    for (uint32_t i = 0; i < sc->n_intersections; i++)
        sum += along_x ? sc->intersections[i].y_m : sc->intersections[i].x_m;
    r->cross_mean = sc->n_intersections ? sum / sc->n_intersections : 0;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *l = &sc->links[li];
        double ax, ay, bx, by;
        node_xy(sc, l->from_kind, l->from_idx, &ax, &ay);
        node_xy(sc, l->to_kind, l->to_idx, &bx, &by);
        double len = hypot(bx - ax, by - ay);
        r->link_dir[li] = 0;
        if (!(len > 0))
            continue;
        double along = ((bx - ax) * r->axis_x + (by - ay) * r->axis_y) / len;
        double ca = along_x ? ay : ax, cb = along_x ? by : bx;
        if (fabs(along) >= 0.9 && fabs(ca - r->cross_mean) <= SF_ARTERIAL_BAND_M &&
            fabs(cb - r->cross_mean) <= SF_ARTERIAL_BAND_M)
            r->link_dir[li] = along > 0 ? 1 : -1;
    }
}

static sf_runrec_t *alloc_rec(const sf_scenario_t *sc, double every_s)
{
    sf_runrec_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->sc = sc;
    r->every_s = every_s;
    r->last_sample_t = -INFINITY;
    r->link_dir = calloc(sc->n_links + 1, sizeof *r->link_dir);
    r->qcol = malloc((sc->n_links + 1) * sizeof *r->qcol);
    r->qlinks = calloc(sc->n_links + 1, sizeof *r->qlinks);
    r->last_code = calloc((size_t)sc->n_intersections * SF_MAX_SG + 1, 1);
    r->queues = sf_queues_new(sc);
    if (!r->link_dir || !r->qcol || !r->qlinks || !r->last_code || !r->queues) {
        sf_runrec_destroy(&r);
        errno = ENOMEM;
        return NULL;
    }
    for (uint32_t li = 0; li < sc->n_links; li++)
        r->qcol[li] = -1;
    derive_arterial(r);
    return r;
}

sf_runrec_t *sf_runrec_new(const sf_scenario_t *sc, double every_s)
{
    if (!sc || !(every_s > 0) || (sc->n_links && !sc->links)) {
        errno = EINVAL;
        return NULL;
    }
    sf_runrec_t *r = alloc_rec(sc, every_s);
    if (!r)
        return NULL;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        if (sc->links[li].to_kind == SF_NODE_INTERSECTION) {
            r->qcol[li] = (int32_t)r->n_qlinks;
            r->qlinks[r->n_qlinks++] = li;
        }
    }
    return r;
}

void sf_runrec_destroy(sf_runrec_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_runrec_t *r = *self_p;
    free(r->link_dir);
    free(r->pt_t);
    free(r->pt_pos);
    free(r->pt_speed);
    free(r->pt_veh);
    free(r->pt_link);
    free(r->pt_type);
    free(r->lc);
    free(r->last_code);
    free(r->qlinks);
    free(r->qcol);
    free(r->q_t);
    free(r->q_val);
    sf_queues_destroy(&r->queues);
    free(r);
    *self_p = NULL;
}

const sf_scenario_t *sf_runrec_scenario(const sf_runrec_t *rec)
{
    return rec ? rec->sc : NULL;
}

static void note_time(sf_runrec_t *r, double t)
{
    if (!r->any) {
        r->t_first = r->t_last = t;
        r->any = true;
    }
    r->t_first = fmin(r->t_first, t);
    r->t_last = fmax(r->t_last, t);
}

#define GROW(ptr, cap_needed)                                                                      \
    do {                                                                                           \
        void *np_ = realloc((ptr), (cap_needed) * sizeof *(ptr));                                  \
        if (!np_)                                                                                  \
            return -1;                                                                             \
        (ptr) = np_;                                                                               \
    } while (0)

static int reserve_points(sf_runrec_t *r, size_t more)
{
    if (r->n_pts + more <= r->cap_pts)
        return 0;
    size_t cap = r->cap_pts ? r->cap_pts : 4096;
    while (cap < r->n_pts + more)
        cap *= 2;
    GROW(r->pt_t, cap);
    GROW(r->pt_pos, cap);
    GROW(r->pt_speed, cap);
    GROW(r->pt_veh, cap);
    GROW(r->pt_link, cap);
    GROW(r->pt_type, cap);
    r->cap_pts = cap;
    return 0;
}

static int reserve_queue(sf_runrec_t *r)
{
    if (r->n_q < r->cap_q)
        return 0;
    size_t cap = r->cap_q ? r->cap_q * 2 : 256;
    GROW(r->q_t, cap);
    GROW(r->q_val, cap * (r->n_qlinks ? r->n_qlinks : 1));
    r->cap_q = cap;
    return 0;
}

int sf_runrec_add_snapshot(sf_runrec_t *rec, double t_s, const sf_vehicle_snap_t *veh, size_t n)
{
    if (!rec || (n && !veh) || !isfinite(t_s)) {
        errno = EINVAL;
        return -1;
    }
    if (t_s < rec->last_sample_t) {
        errno = EINVAL;
        return -1;
    }
    /* half a step of tolerance: snapshots arrive at multiples of the step length */
    if (t_s - rec->last_sample_t < rec->every_s - 1e-6)
        return 0;
    size_t keep = 0;
    for (size_t i = 0; i < n; i++)
        keep += veh[i].link_idx < rec->sc->n_links && rec->link_dir[veh[i].link_idx] != 0;
    if (reserve_points(rec, keep) != 0 || reserve_queue(rec) != 0) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const sf_vehicle_snap_t *v = &veh[i];
        if (v->link_idx >= rec->sc->n_links || rec->link_dir[v->link_idx] == 0)
            continue;
        size_t k = rec->n_pts++;
        rec->pt_t[k] = (float)t_s;
        rec->pt_veh[k] = v->id;
        rec->pt_link[k] = v->link_idx;
        rec->pt_pos[k] = v->pos_m;
        rec->pt_speed[k] = v->speed_mps;
        rec->pt_type[k] = v->type < SF_VEH_N ? v->type : SF_VEH_CAR;
    }
    if (sf_queues_update(rec->queues, veh, n) != 0)
        return -1;
    rec->q_t[rec->n_q] = (float)t_s;
    float *row = rec->q_val + rec->n_q * rec->n_qlinks;
    for (uint32_t c = 0; c < rec->n_qlinks; c++)
        row[c] = sf_queues_link(rec->queues, rec->qlinks[c]);
    rec->n_q++;
    rec->last_sample_t = t_s;
    note_time(rec, t_s);
    return 1;
}

int sf_runrec_add_lamps(sf_runrec_t *rec, double t_s, uint32_t ix, const uint8_t *codes, size_t n)
{
    if (!rec || !codes || ix >= rec->sc->n_intersections || n > SF_MAX_SG || !isfinite(t_s)) {
        errno = EINVAL;
        return -1;
    }
    /* changes are kept in time order (lookups and the file rely on it); compared at the
     * stored (float) precision: a time that rounds up when stored must not make another
     * intersection's change at the same step look earlier */
    if (rec->n_lc && (float)t_s < rec->lc[rec->n_lc - 1].t_s) {
        errno = EINVAL;
        return -1;
    }
    int changes = 0;
    uint8_t *last = rec->last_code + (size_t)ix * SF_MAX_SG;
    for (size_t g = 0; g < n; g++) {
        if (codes[g] == last[g])
            continue;
        if (rec->n_lc == rec->cap_lc) {
            size_t cap = rec->cap_lc ? rec->cap_lc * 2 : 1024;
            sf_lamp_change_t *p = realloc(rec->lc, cap * sizeof *p);
            if (!p) {
                errno = ENOMEM;
                return -1;
            }
            rec->lc = p;
            rec->cap_lc = cap;
        }
        rec->lc[rec->n_lc++] = (sf_lamp_change_t){(float)t_s, (uint16_t)ix, (uint8_t)g, codes[g]};
        last[g] = codes[g];
        changes++;
    }
    note_time(rec, t_s);
    return changes;
}

int sf_runrec_add_points(sf_runrec_t *rec, const sf_traj_point_t *pts, size_t n, uint8_t type)
{
    if (!rec || (n && !pts) || type >= SF_VEH_N) {
        errno = EINVAL;
        return -1;
    }
    if (reserve_points(rec, n) != 0) {
        errno = ENOMEM;
        return -1;
    }
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        const sf_traj_point_t *p = &pts[i];
        if (p->link_idx >= rec->sc->n_links || rec->link_dir[p->link_idx] == 0 || !isfinite(p->t_s))
            continue;
        size_t k = rec->n_pts++;
        rec->pt_t[k] = p->t_s;
        rec->pt_veh[k] = p->veh_id;
        rec->pt_link[k] = p->link_idx;
        rec->pt_pos[k] = p->pos_m;
        rec->pt_speed[k] = p->speed_mps;
        rec->pt_type[k] = type;
        note_time(rec, p->t_s);
        kept++;
    }
    return kept;
}

size_t sf_runrec_n_points(const sf_runrec_t *rec)
{
    return rec ? rec->n_pts : 0;
}

size_t sf_runrec_n_lamp_changes(const sf_runrec_t *rec)
{
    return rec ? rec->n_lc : 0;
}

size_t sf_runrec_n_queue_samples(const sf_runrec_t *rec)
{
    return rec ? rec->n_q : 0;
}

void sf_runrec_span(const sf_runrec_t *rec, double *t0, double *t1)
{
    *t0 = rec && rec->any ? rec->t_first : 0;
    *t1 = rec && rec->any ? rec->t_last : 0;
}

int sf_runrec_point(const sf_runrec_t *rec, size_t i, float *t_s, uint32_t *veh, uint32_t *link,
                    float *pos_m, float *speed_mps, uint8_t *type)
{
    if (!rec || i >= rec->n_pts) {
        errno = EINVAL;
        return -1;
    }
    if (t_s)
        *t_s = rec->pt_t[i];
    if (veh)
        *veh = rec->pt_veh[i];
    if (link)
        *link = rec->pt_link[i];
    if (pos_m)
        *pos_m = rec->pt_pos[i];
    if (speed_mps)
        *speed_mps = rec->pt_speed[i];
    if (type)
        *type = rec->pt_type[i];
    return 0;
}

const sf_lamp_change_t *sf_runrec_lamp_change(const sf_runrec_t *rec, size_t i)
{
    return rec && i < rec->n_lc ? &rec->lc[i] : NULL;
}

uint8_t sf_runrec_lamp_at(const sf_runrec_t *rec, uint32_t ix, uint8_t sg, double t_s)
{
    uint8_t code = SF_LAMP_NONE;
    if (!rec)
        return code;
    /* changes are appended in time order */
    for (size_t i = 0; i < rec->n_lc && rec->lc[i].t_s <= t_s; i++)
        if (rec->lc[i].ix == ix && rec->lc[i].sg == sg)
            code = rec->lc[i].code;
    return code;
}

int sf_runrec_queue(const sf_runrec_t *rec, size_t i, uint32_t link, double *t_s, float *queue_m)
{
    if (!rec || i >= rec->n_q || link >= rec->sc->n_links) {
        errno = EINVAL;
        return -1;
    }
    if (t_s)
        *t_s = rec->q_t[i];
    if (queue_m)
        *queue_m =
            rec->qcol[link] < 0 ? 0 : rec->q_val[i * rec->n_qlinks + (size_t)rec->qcol[link]];
    return 0;
}

double sf_runrec_every_s(const sf_runrec_t *rec)
{
    return rec ? rec->every_s : 0;
}

const char *sf_runrec_dir_name(const sf_runrec_t *rec, int dir)
{
    bool x = !rec || rec->axis_x > 0;
    if (dir > 0)
        return x ? "eastbound" : "northbound";
    return x ? "westbound" : "southbound";
}

int sf_runrec_link_dir(const sf_runrec_t *rec, uint32_t link)
{
    return rec && link < rec->sc->n_links ? rec->link_dir[link] : 0;
}

double sf_runrec_distance(const sf_runrec_t *rec, uint32_t link, float pos_m)
{
    if (!rec || link >= rec->sc->n_links)
        return NAN;
    const sf_link_t *l = &rec->sc->links[link];
    double ax, ay, bx, by;
    node_xy(rec->sc, l->from_kind, l->from_idx, &ax, &ay);
    node_xy(rec->sc, l->to_kind, l->to_idx, &bx, &by);
    double f = l->length_m > 0 ? pos_m / l->length_m : 0;
    double x = ax + (bx - ax) * f, y = ay + (by - ay) * f;
    return x * rec->axis_x + y * rec->axis_y;
}

double sf_runrec_ix_distance(const sf_runrec_t *rec, uint32_t ix)
{
    if (!rec || ix >= rec->sc->n_intersections)
        return NAN;
    const sf_intersection_t *i = &rec->sc->intersections[ix];
    return i->x_m * rec->axis_x + i->y_m * rec->axis_y;
}

bool sf_runrec_ix_on_arterial(const sf_runrec_t *rec, uint32_t ix)
{
    for (int dir = -1; dir <= 1; dir += 2) {
        uint32_t l;
        uint8_t g;
        if (sf_runrec_approach(rec, ix, dir, &l, &g) == 0)
            return true;
    }
    return false;
}

int sf_runrec_approach(const sf_runrec_t *rec, uint32_t ix, int dir, uint32_t *link, uint8_t *sg)
{
    if (!rec || ix >= rec->sc->n_intersections) {
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = rec->sc;
    const sf_intersection_t *x = &sc->intersections[ix];
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *l = &sc->links[li];
        if (rec->link_dir[li] != dir || l->to_kind != SF_NODE_INTERSECTION || l->to_idx != ix)
            continue;
        for (uint8_t m = 0; m < x->n_movements; m++) {
            if (x->movements[m].from_link_idx == li && x->movements[m].turn == SF_TURN_THROUGH &&
                x->movements[m].sg_idx < x->n_sg) {
                *link = li;
                *sg = x->movements[m].sg_idx;
                return 0;
            }
        }
    }
    errno = ENOENT;
    return -1;
}

/* ---- file ---------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    bool ok;
} writer_t;

static void wr(writer_t *w, const void *p, size_t size)
{
    if (w->ok && size && fwrite(p, 1, size, w->f) != size)
        w->ok = false;
}

int sf_runrec_save(const sf_runrec_t *rec, const char *path, char *err, size_t err_len)
{
    if (!rec || !path) {
        errno = EINVAL;
        seterr(err, err_len, "runrec: no record or path");
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        seterr(err, err_len, "%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    writer_t w = {f, true};
    uint32_t bom = BOM, nl = rec->sc->n_links, ni = rec->sc->n_intersections;
    uint32_t plen = (uint32_t)strnlen(rec->sc->path, sizeof rec->sc->path);
    uint64_t np = rec->n_pts, nlc = rec->n_lc, nq = rec->n_q;
    wr(&w, MAGIC, 8);
    wr(&w, &bom, 4);
    wr(&w, &nl, 4);
    wr(&w, &ni, 4);
    wr(&w, &rec->every_s, 8);
    wr(&w, &plen, 4);
    wr(&w, rec->sc->path, plen);
    wr(&w, &np, 8);
    wr(&w, &nlc, 8);
    wr(&w, &nq, 8);
    wr(&w, &rec->n_qlinks, 4);
    wr(&w, rec->pt_t, np * 4);
    wr(&w, rec->pt_veh, np * 4);
    wr(&w, rec->pt_link, np * 4);
    wr(&w, rec->pt_pos, np * 4);
    wr(&w, rec->pt_speed, np * 4);
    wr(&w, rec->pt_type, np);
    for (size_t i = 0; i < rec->n_lc; i++) {
        wr(&w, &rec->lc[i].t_s, 4);
        wr(&w, &rec->lc[i].ix, 2);
        wr(&w, &rec->lc[i].sg, 1);
        wr(&w, &rec->lc[i].code, 1);
    }
    wr(&w, rec->qlinks, (size_t)rec->n_qlinks * 4);
    wr(&w, rec->q_t, nq * 4);
    wr(&w, rec->q_val, nq * rec->n_qlinks * 4);
    int e = errno;
    if (fclose(f) != 0)
        w.ok = false;
    if (!w.ok) {
        seterr(err, err_len, "%s: write failed: %s", path, strerror(e ? e : EIO));
        errno = e ? e : EIO;
        return -1;
    }
    return 0;
}

typedef struct {
    const uint8_t *p; /* file contents */
    size_t len, at;   /* size and read position */
} reader_t;

static bool rd(reader_t *r, void *out, size_t size)
{
    if (size > r->len - r->at)
        return false;
    memcpy(out, r->p + r->at, size);
    r->at += size;
    return true;
}

static uint8_t *slurp(const char *path, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        seterr(err, err_len, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                seterr(err, err_len, "%s: out of memory", path);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        seterr(err, err_len, "%s: read error", path);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Header up to and including the scenario path. */
static int read_header(reader_t *r, const char *path, uint32_t *nl, uint32_t *ni, double *every,
                       char *spath, size_t spath_len, char *err, size_t err_len)
{
    char magic[8];
    uint32_t bom, plen;
    if (!rd(r, magic, 8) || memcmp(magic, MAGIC, 8) != 0) {
        seterr(err, err_len, "%s: not a sigflow run record (bad magic)", path);
        return -1;
    }
    if (!rd(r, &bom, 4) || bom != BOM) {
        seterr(err, err_len, "%s: written on a machine of another byte order", path);
        return -1;
    }
    if (!rd(r, nl, 4) || !rd(r, ni, 4) || !rd(r, every, 8) || !rd(r, &plen, 4)) {
        seterr(err, err_len, "%s: truncated header", path);
        return -1;
    }
    if (!(*every > 0) || !isfinite(*every)) {
        seterr(err, err_len, "%s: bad sampling period %g", path, *every);
        return -1;
    }
    if (plen >= spath_len || plen > r->len - r->at) {
        seterr(err, err_len, "%s: bad scenario path length %u", path, (unsigned)plen);
        return -1;
    }
    memcpy(spath, r->p + r->at, plen);
    spath[plen] = '\0';
    r->at += plen;
    return 0;
}

int sf_runrec_peek_scenario(const char *path, char *buf, size_t len, char *err, size_t err_len)
{
    if (!path || !buf || !len) {
        errno = EINVAL;
        seterr(err, err_len, "runrec: bad arguments");
        return -1;
    }
    size_t n;
    uint8_t *data = slurp(path, &n, err, err_len);
    if (!data)
        return -1;
    reader_t r = {data, n, 0};
    uint32_t nl, ni;
    double every;
    int rc = read_header(&r, path, &nl, &ni, &every, buf, len, err, err_len);
    free(data);
    if (rc != 0)
        errno = EINVAL;
    return rc;
}

sf_runrec_t *sf_runrec_load(const sf_scenario_t *sc, const char *path, char *err, size_t err_len)
{
    if (!sc || !path) {
        errno = EINVAL;
        seterr(err, err_len, "runrec: no scenario or path");
        return NULL;
    }
    size_t n;
    uint8_t *data = slurp(path, &n, err, err_len);
    if (!data)
        return NULL;
    reader_t r = {data, n, 0};
    sf_runrec_t *rec = NULL;
    uint32_t nl, ni, nql;
    double every;
    uint64_t np, nlc, nq;
    char spath[sizeof sc->path];
    if (read_header(&r, path, &nl, &ni, &every, spath, sizeof spath, err, err_len) != 0)
        goto bad;
    if (nl != sc->n_links || ni != sc->n_intersections) {
        seterr(err, err_len,
               "%s: recorded for a scenario with %u links and %u intersections (%s), not this "
               "one (%u links, %u intersections)",
               path, (unsigned)nl, (unsigned)ni, spath, (unsigned)sc->n_links,
               (unsigned)sc->n_intersections);
        goto bad;
    }
    if (!rd(&r, &np, 8) || !rd(&r, &nlc, 8) || !rd(&r, &nq, 8) || !rd(&r, &nql, 4)) {
        seterr(err, err_len, "%s: truncated header", path);
        goto bad;
    }
    if (np > MAX_RECORDS || nlc > MAX_RECORDS || nq > MAX_RECORDS || nql > sc->n_links) {
        seterr(err, err_len,
               "%s: implausible counts (%llu points, %llu lamp changes, %llu "
               "queue samples, %u queue links)",
               path, (unsigned long long)np, (unsigned long long)nlc, (unsigned long long)nq,
               (unsigned)nql);
        goto bad;
    }
    /* exact size check before touching any array */
    uint64_t need = np * 21 + nlc * 8 + (uint64_t)nql * 4 + nq * 4 + nq * nql * 4;
    if (need != (uint64_t)(r.len - r.at)) {
        seterr(err, err_len, "%s: %s: %llu bytes of data expected after the header, %llu found",
               path, need > r.len - r.at ? "truncated" : "trailing bytes", (unsigned long long)need,
               (unsigned long long)(r.len - r.at));
        goto bad;
    }
    rec = alloc_rec(sc, every);
    if (!rec) {
        seterr(err, err_len, "%s: out of memory", path);
        goto bad;
    }
    if (reserve_points(rec, (size_t)np) != 0) {
        seterr(err, err_len, "%s: out of memory", path);
        goto bad;
    }
    rd(&r, rec->pt_t, np * 4);
    rd(&r, rec->pt_veh, np * 4);
    rd(&r, rec->pt_link, np * 4);
    rd(&r, rec->pt_pos, np * 4);
    rd(&r, rec->pt_speed, np * 4);
    rd(&r, rec->pt_type, np);
    rec->n_pts = (size_t)np;
    for (size_t i = 0; i < rec->n_pts; i++) {
        if (rec->pt_link[i] >= sc->n_links || rec->pt_type[i] >= SF_VEH_N ||
            !isfinite(rec->pt_t[i]) || !isfinite(rec->pt_pos[i]) || !isfinite(rec->pt_speed[i])) {
            seterr(err, err_len, "%s: point %zu: bad link %u, type %u or non-finite value", path, i,
                   (unsigned)rec->pt_link[i], (unsigned)rec->pt_type[i]);
            goto bad;
        }
        note_time(rec, rec->pt_t[i]);
    }
    rec->lc = malloc((size_t)(nlc ? nlc : 1) * sizeof *rec->lc);
    if (!rec->lc) {
        seterr(err, err_len, "%s: out of memory", path);
        goto bad;
    }
    rec->cap_lc = (size_t)(nlc ? nlc : 1);
    float prev = -INFINITY;
    for (size_t i = 0; i < nlc; i++) {
        sf_lamp_change_t c = {0};
        rd(&r, &c.t_s, 4);
        rd(&r, &c.ix, 2);
        rd(&r, &c.sg, 1);
        rd(&r, &c.code, 1);
        if (c.ix >= sc->n_intersections || c.sg >= SF_MAX_SG || !isfinite(c.t_s) || c.t_s < prev) {
            seterr(err, err_len,
                   "%s: lamp change %zu: intersection %u, group %u or time %g out of range or "
                   "order",
                   path, i, (unsigned)c.ix, (unsigned)c.sg, (double)c.t_s);
            goto bad;
        }
        prev = c.t_s;
        rec->lc[rec->n_lc++] = c;
        rec->last_code[(size_t)c.ix * SF_MAX_SG + c.sg] = c.code;
        note_time(rec, c.t_s);
    }
    for (uint32_t c = 0; c < nql; c++) {
        uint32_t li = UINT32_MAX;
        rd(&r, &li, 4);
        if (li >= sc->n_links || sc->links[li].to_kind != SF_NODE_INTERSECTION ||
            rec->qcol[li] >= 0) {
            seterr(err, err_len, "%s: queue column %u: link %u is not an approach (or repeated)",
                   path, (unsigned)c, (unsigned)li);
            goto bad;
        }
        rec->qcol[li] = (int32_t)c;
        rec->qlinks[c] = li;
    }
    rec->n_qlinks = nql;
    rec->q_t = malloc((size_t)(nq ? nq : 1) * 4);
    rec->q_val = malloc((size_t)(nq * nql > 0 ? nq * nql : 1) * 4);
    if (!rec->q_t || !rec->q_val) {
        seterr(err, err_len, "%s: out of memory", path);
        goto bad;
    }
    rec->cap_q = (size_t)(nq ? nq : 1);
    rd(&r, rec->q_t, nq * 4);
    rd(&r, rec->q_val, nq * nql * 4);
    rec->n_q = (size_t)nq;
    for (size_t i = 0; i < rec->n_q; i++) {
        if (!isfinite(rec->q_t[i])) {
            seterr(err, err_len, "%s: queue sample %zu: non-finite time", path, i);
            goto bad;
        }
        note_time(rec, rec->q_t[i]);
    }
    if (rec->n_q)
        rec->last_sample_t = rec->q_t[rec->n_q - 1];
    free(data);
    return rec;
bad:
    free(data);
    sf_runrec_destroy(&rec);
    errno = EINVAL;
    return NULL;
}
