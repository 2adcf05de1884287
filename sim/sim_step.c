/* sim/sim_step.c — one step of the traffic model: demand, entries, car-following with
 * signals and bus stops, detectors, stop-line crossings, lane changes and the measures
 * gathered along the way. The model and its parameters are described in sim.c.
 *
 * Order inside a step (fixed, so runs are reproducible):
 *   1. arrivals up to the new time join their entry queues (demand and bus dispatch);
 *   2. entry queues insert at the entry links' upstream ends where there is room;
 *   3. buses dwelling in bays count down and merge back when the lane has a gap;
 *   4. car-following on every lane (link order, lane order, front to back), detectors,
 *      stops, delay, projected arrivals on green, bus dwell and check-in;
 *   5. buses that began a bay dwell leave their lane;
 *   6. vehicles over their stop line move to their next link (or leave the network);
 *   7. lane changes (links whose lanes differ or that have bus stops), back to front;
 *   8. queue samples (every simulated second) and trajectory points.
 */
#include "sim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Poisson(mean) draw: Knuth's product method for small means, a rounded normal above. */
static unsigned rng_poisson(uint64_t s[4], double mean)
{
    if (!(mean > 0.0))
        return 0;
    if (mean < 30.0) {
        double lim = exp(-mean), prod = sf_rng_unit(s);
        unsigned k = 0;
        while (prod > lim && k < 1000) {
            prod *= sf_rng_unit(s);
            k++;
        }
        return k;
    }
    double u1 = sf_rng_unit(s), u2 = sf_rng_unit(s);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
    double x = floor(mean + sqrt(mean) * z + 0.5);
    return x < 0 ? 0u : (unsigned)x;
}

/* ---- lanes and pool --------------------------------------------------------------- */

static void lane_remove(lane_t *ln, uint32_t i)
{
    size_t tail = ln->n - i - 1u;
    float *P = ln->pos, *V = ln->v;
    uint32_t *W = ln->veh;
    memmove(P + i, P + i + 1, tail * sizeof *P);
    memmove(V + i, V + i + 1, tail * sizeof *V);
    memmove(W + i, W + i + 1, tail * sizeof *W);
    ln->n--;
}

/* Insert at index k (caller checked the order and that n < cap). */
static void lane_insert(lane_t *ln, uint32_t k, float p, float v, uint32_t w)
{
    size_t tail = ln->n - k;
    float *P = ln->pos, *V = ln->v;
    uint32_t *W = ln->veh;
    memmove(P + k + 1, P + k, tail * sizeof *P);
    memmove(V + k + 1, V + k, tail * sizeof *V);
    memmove(W + k + 1, W + k, tail * sizeof *W);
    P[k] = p;
    V[k] = v;
    W[k] = w;
    ln->n++;
}

/* Make room for one more vehicle in the lane's arrays: false when the lane is
 * physically full (jam density) or memory ran out. Arrays double when they grow, so this
 * allocates O(log n) times per lane over a run, never on a steady step. */
static bool lane_reserve(sf_sim_t *sim, lane_t *ln)
{
    if (ln->n >= ln->jam)
        return false;
    if (ln->n < ln->cap)
        return true;
    uint32_t nc = ln->cap * 2u < ln->jam ? ln->cap * 2u : ln->jam;
    float *blk = malloc((size_t)nc * (2 * sizeof(float) + sizeof(uint32_t)));
    if (!blk)
        return false;
    memcpy(blk, ln->pos, ln->n * sizeof(float));
    memcpy(blk + nc, ln->v, ln->n * sizeof(float));
    memcpy((uint32_t *)(blk + 2 * (size_t)nc), ln->veh, ln->n * sizeof(uint32_t));
    free(ln->pos);
    sim->mem_bytes += (size_t)(nc - ln->cap) * (2 * sizeof(float) + sizeof(uint32_t));
    ln->pos = blk;
    ln->v = blk + nc;
    ln->veh = (uint32_t *)(blk + 2 * (size_t)nc);
    ln->cap = nc;
    return true;
}

static inline const mov_t *movp(const sf_sim_t *sim, int32_t ix, uint8_t m)
{
    return &sim->mov[(size_t)ix * SF_MAX_MOVEMENTS + m];
}

static inline bool bus_stop_pending(const sf_sim_t *sim, const bus_t *b)
{
    const line_t *ln = &sim->lines[b->line];
    return b->route_k != SF_NONE8 && b->stop_k < ln->l.n_stops &&
           ln->stop_rk[b->stop_k] == b->route_k;
}

/* Lanes of link li that vehicle w may use for its next move. */
static uint8_t allowed_mask(const sf_sim_t *sim, uint32_t li, uint32_t w)
{
    const link_t *lk = &sim->links[li];
    uint32_t b = sim->v_bus[w];
    if (b != SF_NONE32 && bus_stop_pending(sim, &sim->bus[b]))
        return (uint8_t)(1u << lk->kerb_lane);
    if (lk->to_ix < 0 || sim->v_mov[w] == SF_NONE8)
        return (uint8_t)((1u << lk->n_lanes) - 1u);
    return movp(sim, lk->to_ix, sim->v_mov[w])->lanes;
}

/* Random movement at the end of link li by its turning ratios. */
static uint8_t choose_mov(sf_sim_t *sim, uint32_t li)
{
    const link_t *lk = &sim->links[li];
    if (lk->to_ix < 0)
        return SF_NONE8;
    if (lk->n_mov == 1)
        return lk->mov[0]; /* no draw: keeps the arrival stream independent of the lamps */
    float u = (float)sf_rng_unit(sim->rng);
    for (uint8_t m = 0; m < lk->n_mov; m++)
        if (u < lk->mov_cum[m])
            return lk->mov[m];
    return lk->mov[lk->n_mov - 1];
}

/* Full-length lanes a vehicle may enter link li on for movement m (NONE8 = any): those
 * that allow it; when only bays allow it, the full lane nearest to them; a bus that
 * serves a stop on li takes the kerb lane. */
static uint8_t lane_cands(const sf_sim_t *sim, uint32_t li, uint8_t m, bool kerb_only)
{
    const link_t *lk = &sim->links[li];
    if (kerb_only)
        return (uint8_t)(1u << lk->kerb_lane);
    unsigned mask = m == SF_NONE8 || lk->to_ix < 0 ? (1u << lk->n_lanes) - 1u
                                                   : (unsigned)movp(sim, lk->to_ix, m)->lanes;
    uint8_t cand = (uint8_t)(mask & lk->full_mask);
    if (cand)
        return cand;
    int target = __builtin_ctz(mask), bd = 99;
    uint8_t best = lk->kerb_lane;
    for (uint8_t j = 0; j < lk->n_lanes; j++) {
        int d = abs((int)j - target);
        if ((lk->full_mask >> j & 1u) && d < bd) {
            bd = d;
            best = j;
        }
    }
    return (uint8_t)(1u << best);
}

/* Room at the upstream end of a lane: where the last vehicle's tail is (m), the lane
 * length when empty, -1 when full. */
static float lane_room(const sf_sim_t *sim, const lane_t *ln)
{
    if (ln->n >= ln->jam)
        return -1.0f;
    if (ln->n == 0)
        return sim->links[ln->link].len;
    uint32_t j = ln->n - 1u;
    return ln->pos[j] - sim->vt[sim->v_type[ln->veh[j]]].len;
}

/* Lane to enter link li on for movement m: among the full-length lanes that serve it,
 * the one with the fewest vehicles, where each lane of distance from the natural lane
 * (natural >= 0: the lane a driver turns or drives straight into) counts as
 * LANE_KEEP_VEH vehicles; ties go to the one with most room at its upstream end. So
 * parallel lanes mostly discharge into parallel lanes, and a clearly emptier lane still
 * wins. At an entry (natural < 0) it is simply the least occupied. A bus that serves a
 * stop on li takes the kerb lane. */
#define LANE_KEEP_VEH 3
static uint8_t choose_lane(const sf_sim_t *sim, uint32_t li, uint8_t m, bool kerb_only, int natural)
{
    const link_t *lk = &sim->links[li];
    uint8_t cand = lane_cands(sim, li, m, kerb_only), best = SF_NONE8;
    long bc = 0;
    float br = 0;
    for (uint8_t j = 0; j < lk->n_lanes; j++) {
        if (!(cand >> j & 1u))
            continue;
        const lane_t *ln = &sim->lanes[lk->lane0 + j];
        float r = lane_room(sim, ln);
        long c = (long)ln->n + (natural >= 0 ? LANE_KEEP_VEH * labs((long)j - natural) : 0);
        if (best == SF_NONE8 || c < bc || (c == bc && r > br)) {
            best = j;
            bc = c;
            br = r;
        }
    }
    return best;
}

/* Choose the movement on, and the lane of, the link vehicle w takes next. */
static void choose_next(sf_sim_t *sim, uint32_t w, const link_t *lk, uint8_t cur_lane)
{
    const mov_t *mv = movp(sim, lk->to_ix, sim->v_mov[w]);
    uint32_t to = mv->to_link;
    uint8_t nl = sim->links[to].n_lanes;
    /* the lane a driver naturally ends up in: kerb lane after a right turn, median lane
     * after a left, the same lane straight on */
    int natural = mv->turn == SF_TURN_RIGHT  ? 0
                  : mv->turn == SF_TURN_LEFT ? nl - 1
                  : cur_lane < nl            ? cur_lane
                                             : nl - 1;
    uint8_t nm = SF_NONE8;
    bool kerb = false;
    uint32_t b = sim->v_bus[w];
    if (b != SF_NONE32 && sim->bus[b].route_k != SF_NONE8 &&
        sim->bus[b].route_k + 1u < sim->lines[sim->bus[b].line].l.n_route) {
        const bus_t *bb = &sim->bus[b];
        const line_t *ln = &sim->lines[bb->line];
        uint8_t k = (uint8_t)(bb->route_k + 1u);
        nm = ln->route_mov[k];
        kerb = bb->stop_k < ln->l.n_stops && ln->stop_rk[bb->stop_k] == k;
        if (nm == SF_NONE8 && sim->links[to].to_ix >= 0)
            nm = choose_mov(sim, to);
    } else {
        nm = choose_mov(sim, to);
    }
    sim->v_nmov[w] = nm;
    sim->v_nlane[w] = choose_lane(sim, to, nm, kerb, natural);
}

static void open_account(sf_sim_t *sim, uint32_t w, uint32_t li)
{
    if (sim->links[li].to_ix < 0) {
        sim->v_acc[w] = SF_NONE32;
        return;
    }
    sim->v_acc[w] = li;
    sim->v_delay_open[w] = sim->v_delay[w];
    sim->v_stops_open[w] = sim->v_stops[w];
}

static void close_account(sf_sim_t *sim, uint32_t w)
{
    uint32_t a = sim->v_acc[w];
    if (a != SF_NONE32 && sim->v_tcross[w] >= sim->warmup_s) {
        app_moe_t *m = &sim->app[a];
        m->n_acc++;
        m->sum_delay += (double)(sim->v_delay[w] - sim->v_delay_open[w]);
        m->sum_stops += (double)(sim->v_stops[w] - sim->v_stops_open[w]);
        if (sim->v_flags[w] & VF_ACC_THRU) {
            m->n_thru++;
            m->sum_thru_stops += (double)(sim->v_stops[w] - sim->v_stops_open[w]);
        }
    }
    sim->v_acc[w] = SF_NONE32;
    sim->v_flags[w] &= (uint8_t) ~(VF_ACC_OPEN | VF_ACC_THRU);
}

/* Classify a projected stop-line arrival as on green or not. */
static void classify_arrival(sf_sim_t *sim, uint32_t w, const link_t *lk, uint32_t li)
{
    sim->v_flags[w] &= (uint8_t)~VF_AOG;
    if (lk->to_ix < 0 || sim->v_mov[w] == SF_NONE8 || sim->t < sim->warmup_s)
        return;
    app_moe_t *m = &sim->app[li];
    m->arrivals++;
    if (sim->lamp[lk->to_ix][movp(sim, lk->to_ix, sim->v_mov[w])->sg] == LAMP_GO)
        m->arr_green++;
}

/* ---- demand ----------------------------------------------------------------------- */

static int src_push(sf_sim_t *sim, source_t *s, double t, uint8_t type, uint32_t bus)
{
    if (s->n == s->cap) {
        /* oversaturated entry: grow the ring (amortised, not per step) */
        uint32_t nc = s->cap * 2u;
        double *nt = malloc(nc * sizeof *nt);
        uint8_t *ny = malloc(nc * sizeof *ny);
        uint32_t *nb = malloc(nc * sizeof *nb);
        if (!nt || !ny || !nb) {
            free(nt);
            free(ny);
            free(nb);
            errno = ENOMEM;
            return -1;
        }
        for (uint32_t i = 0; i < s->n; i++) {
            uint32_t j = (s->head + i) % s->cap;
            nt[i] = s->t[j];
            ny[i] = s->type[j];
            nb[i] = s->bus[j];
        }
        free(s->t);
        free(s->type);
        free(s->bus);
        sim->mem_bytes += s->cap * (sizeof *nt + sizeof *ny + sizeof *nb);
        s->t = nt;
        s->type = ny;
        s->bus = nb;
        s->head = 0;
        s->cap = nc;
    }
    uint32_t j = (s->head + s->n) % s->cap;
    s->t[j] = t;
    s->type[j] = type;
    s->bus[j] = bus;
    s->n++;
    return 0;
}

/* Demand rate of entry e at time t (veh/s) and the end of its profile slice. */
static double rate_at(const sf_sim_t *sim, const sf_entry_t *e, double t, double *slice_end)
{
    double slice = (double)sim->slice_s;
    double k = floor(t / slice);
    *slice_end = (k + 1.0) * slice;
    double f = e->flow_veh_h;
    if (e->n_profile) {
        size_t i = k < (double)e->n_profile ? (size_t)k : (size_t)e->n_profile - 1u;
        f *= e->profile[i];
        if (k >= (double)e->n_profile - 1.0)
            *slice_end = INFINITY;
    } else {
        *slice_end = INFINITY;
    }
    return f / 3600.0;
}

double sf_sim_next_arrival(const sf_sim_t *sim, uint64_t rng[4], const sf_entry_t *e, double t)
{
    for (int guard = 0; guard < 200; guard++) {
        double end;
        double r = rate_at(sim, e, t, &end);
        if (r <= 0.0) {
            if (!isfinite(end))
                return INFINITY;
            t = end;
            continue;
        }
        double gap =
            e->arrivals == SF_ARRIVALS_UNIFORM ? 1.0 / r : -log(1.0 - sf_rng_unit(rng)) / r;
        if (t + gap <= end || e->arrivals == SF_ARRIVALS_UNIFORM)
            return t + gap;
        t = end;
    }
    return INFINITY;
}

static int generate(sf_sim_t *sim)
{
    for (uint32_t g = 0; g < sim->n_gen; g++) {
        gen_t *gn = &sim->gen[g];
        while (gn->next_t <= sim->t) {
            uint8_t type =
                sf_rng_unit(gn->rng) < (double)gn->e.truck_share ? SF_VEH_TRUCK : SF_VEH_CAR;
            if (src_push(sim, &sim->src[gn->src], gn->next_t, type, SF_NONE32) < 0)
                return -1;
            gn->next_t = sf_sim_next_arrival(sim, gn->rng, &gn->e, gn->next_t);
        }
    }
    for (uint32_t n = 0; n < sim->n_lines; n++) {
        line_t *ln = &sim->lines[n];
        for (;;) {
            double ts = (double)ln->l.first_departure_s + ln->dispatched * (double)ln->l.headway_s;
            if (ts > sim->t || sim->n_bus >= sim->bus_cap)
                break;
            bus_t *b = &sim->bus[sim->n_bus];
            memset(b, 0, sizeof *b);
            b->veh = SF_NONE32;
            b->line = (uint16_t)n;
            b->t_sched = ts;
            if (src_push(sim, &sim->src[ln->source], ts, SF_VEH_BUS, sim->n_bus) < 0)
                return -1;
            sim->n_bus++;
            ln->dispatched++;
        }
    }
    return 0;
}

/* Insert waiting vehicles at the upstream end of entry links where there is room. */
static void insert_entries(sf_sim_t *sim)
{
    for (uint32_t si = 0; si < sim->n_src; si++) {
        source_t *s = &sim->src[si];
        const link_t *lk = &sim->links[s->link];
        while (s->n > 0 && (sim->n_free > 0 || sf_sim_pool_grow(sim) == 0)) {
            uint32_t h = s->head;
            uint32_t b = s->bus[h];
            uint8_t type = s->type[h];
            bool kerb = false;
            if (s->pend_mov == SF_NONE8 && lk->to_ix >= 0) {
                s->pend_mov = b != SF_NONE32 ? sim->lines[sim->bus[b].line].route_mov[0]
                                             : choose_mov(sim, s->link);
                if (s->pend_mov == SF_NONE8)
                    s->pend_mov = choose_mov(sim, s->link);
            }
            if (b != SF_NONE32) {
                const line_t *ln = &sim->lines[sim->bus[b].line];
                kerb = ln->l.n_stops > 0 && ln->stop_rk[0] == 0;
            }
            uint8_t lane = choose_lane(sim, s->link, s->pend_mov, kerb, -1);
            lane_t *tl = &sim->lanes[lk->lane0 + lane];
            const vtype_t *vt = &sim->vt[type];
            float v0 = lk->v0[type], iv0 = lk->inv_v0[type], v_ins = v0;
            if (!lane_reserve(sim, tl))
                break;
            if (tl->n > 0) {
                uint32_t j = tl->n - 1u;
                float gap = tl->pos[j] - sim->vt[sim->v_type[tl->veh[j]]].len;
                float vl = tl->v[j];
                if (gap < vt->s0 + MIN_INSERT_GAP)
                    break;
                /* the fastest of a few speeds that needs no more than comfortable braking */
                const float f[5] = {1.0f, 0.75f, 0.5f, 0.25f, 0.0f};
                v_ins = 0.0f;
                for (int k = 0; k < 5; k++) {
                    float v = v0 * f[k];
                    if (sf_idm(vt, iv0, v, gap, v - vl) >= -vt->b) {
                        v_ins = v;
                        break;
                    }
                }
                if (v_ins == 0.0f && vl < v0 && sf_idm(vt, iv0, vl, gap, 0) >= -vt->b)
                    v_ins = vl;
            }
            uint32_t w = sim->free_stack[--sim->n_free];
            sim->v_id[w] = sim->next_id++;
            sim->v_type[w] = type;
            sim->v_flags[w] = (uint8_t)(VF_THRU_IN | (lk->to_ix >= 0 ? VF_AOG : 0));
            sim->v_mov[w] = s->pend_mov;
            sim->v_nmov[w] = SF_NONE8;
            sim->v_nlane[w] = SF_NONE8;
            sim->v_bus[w] = b;
            sim->v_tsys[w] = s->t[h];
            sim->v_delay[w] = (float)(sim->t - s->t[h]); /* waiting in the entry queue */
            sim->v_stops[w] = 0;
            if (v_ins < STOP_V) {
                sim->v_flags[w] |= VF_STOPPED;
                sim->v_stops[w] = 1;
            }
            sim->v_tlc[w] = -1000.0f;
            sim->v_tcross[w] = s->t[h];
            sim->v_tarr[w] = (float)(s->t[h] + (double)(lk->len * iv0));
            open_account(sim, w, s->link);
            sim->v_delay_open[w] = 0.0f;
            sim->v_stops_open[w] = 0;
            if (b != SF_NONE32) {
                sim->bus[b].veh = w;
                sim->bus[b].route_k = 0;
                sim->bus[b].lateness = (float)(sim->t - sim->bus[b].t_sched);
            }
            lane_insert(tl, tl->n, 0.0f, v_ins, w);
            sim->n_on++;
            sim->inserted++;
            s->head = (s->head + 1u) % s->cap;
            s->n--;
            s->pend_mov = SF_NONE8;
        }
    }
}

/* ---- buses ------------------------------------------------------------------------ */

static void finish_dwell(sf_sim_t *sim, bus_t *b, float pos)
{
    line_t *ln = &sim->lines[b->line];
    const sf_stop_t *st = &ln->l.stops[b->stop_k];
    b->lateness = (float)((sim->t - b->t_sched) - (double)st->scheduled_s);
    if (sim->t >= sim->warmup_s) {
        ln->n_late++;
        ln->sum_late += (double)b->lateness;
        ln->n_dwell++;
        ln->sum_dwell += (double)b->dwell_total;
    }
    b->stop_k++;
    b->dwelling = 0;
    b->zone_until = pos + BUS_ZONE_OUT_M;
}

static void start_dwell(sf_sim_t *sim, bus_t *b)
{
    const sf_stop_t *st = &sim->lines[b->line].l.stops[b->stop_k];
    unsigned pax = rng_poisson(sim->rng, (double)st->pax_mean);
    b->dwell_total = st->dwell_s + st->per_pax_s * (float)pax;
    b->dwell_left = b->dwell_total;
    b->dwelling = 1;
}

/* Buses dwelling in bays: count down, then merge back when the lane has room. */
static void bay_pass(sf_sim_t *sim)
{
    float dt = (float)sim->dt;
    for (uint32_t i = 0; i < sim->n_bay;) {
        bus_t *b = &sim->bus[sim->bay[i]];
        uint32_t w = b->veh;
        sim->v_delay[w] += dt;
        if (b->dwelling) {
            b->dwell_left -= dt;
            if (b->dwell_left <= 0.0f)
                finish_dwell(sim, b, b->bay_pos);
            i++;
            continue;
        }
        lane_t *ln = &sim->lanes[b->bay_lane];
        const vtype_t *vt = &sim->vt[SF_VEH_BUS];
        bool ok = lane_reserve(sim, ln);
        float *P = ln->pos, *V = ln->v;
        uint32_t *W = ln->veh;
        uint32_t k = 0;
        while (k < ln->n && P[k] >= b->bay_pos)
            k++;
        if (ok && k > 0)
            ok = P[k - 1] - sim->vt[sim->v_type[W[k - 1]]].len - b->bay_pos >= vt->s0;
        if (ok && k < ln->n) {
            const vtype_t *fv = &sim->vt[sim->v_type[W[k]]];
            float gap = b->bay_pos - vt->len - P[k];
            ok = gap >= fv->s0 && sf_idm(fv, sim->links[ln->link].inv_v0[sim->v_type[W[k]]], V[k],
                                         gap, V[k]) >= -DISC_BSAFE;
        }
        if (!ok) {
            i++;
            continue;
        }
        lane_insert(ln, k, b->bay_pos, 0.0f, w);
        b->in_bay = 0;
        sim->bay[i] = sim->bay[--sim->n_bay];
    }
}

static void push_transit(sf_sim_t *sim, sf_transit_kind_t kind, uint32_t w, uint32_t li, float eta)
{
    const link_t *lk = &sim->links[li];
    const bus_t *b = &sim->bus[sim->v_bus[w]];
    if (lk->to_ix < 0 || sim->v_mov[w] == SF_NONE8)
        return;
    sf_transit_event_t ev = {
        .kind = kind,
        .t_s = sim->t,
        .bus_id = sim->v_id[w],
        .line_idx = b->line,
        .ix_idx = (uint32_t)lk->to_ix,
        .link_idx = li,
        .movement_idx = sim->v_mov[w],
        .sg_idx = movp(sim, lk->to_ix, sim->v_mov[w])->sg,
        .eta_s = eta,
        .lateness_s = b->lateness,
    };
    if (sim->ev_n == SF_SIM_EVENT_QUEUE) {
        sim->ev_head = (sim->ev_head + 1u) % SF_SIM_EVENT_QUEUE;
        sim->ev_n--;
        sim->ev_dropped++;
    }
    sim->ev[(sim->ev_head + sim->ev_n) % SF_SIM_EVENT_QUEUE] = ev;
    sim->ev_n++;
}

/* ---- car-following ---------------------------------------------------------------- */

/* Acceleration of the vehicle at the front of lane ln (nearest the stop line). */
static float front_acc(sf_sim_t *sim, const lane_t *ln, const link_t *lk, uint32_t w, float p,
                       float v, const vtype_t *vt, float iv0)
{
    if (lk->to_ix < 0)
        return sf_idm_free(vt, iv0, v); /* exit link: the boundary absorbs everything */
    float dist = lk->len - p;
    float stop_acc = sf_idm(vt, iv0, v, dist - STOP_MARGIN_M + vt->s0, v);
    uint8_t m = sim->v_mov[w];
    const mov_t *mv = movp(sim, lk->to_ix, m);
    uint8_t cls = sim->lamp[lk->to_ix][mv->sg];
    unsigned am = allowed_mask(sim, ln->link, w);
    if (!(am >> ln->idx & 1u)) {
        /* wrong lane (a full bay, a lost gap): from the lane next to an allowed one it
         * makes its turn at the line when its movement may go; otherwise it waits
         * there for a gap to change */
        bool adjacent = ((am << 1) | (am >> 1)) >> ln->idx & 1u;
        if (!adjacent || (cls != LAMP_GO && cls != LAMP_CAUTION))
            return stop_acc;
    }
    uint8_t fl = sim->v_flags[w];
    bool go;
    if (cls == LAMP_GO || cls == LAMP_CAUTION) {
        fl &= (uint8_t) ~(VF_YGO | VF_YSTOP);
        go = true;
    } else if (cls == LAMP_YELLOW) {
        if (!(fl & (VF_YGO | VF_YSTOP))) {
            float d = dist - STOP_MARGIN_M;
            fl |= v * v <= 2.0f * vt->b * (d > 0 ? d : 0) ? VF_YSTOP : VF_YGO;
        }
        go = fl & VF_YGO;
    } else {
        go = fl & VF_YGO; /* committed on yellow: clears the red */
    }
    sim->v_flags[w] = fl;
    if (!go)
        return stop_acc;
    if (sim->v_nlane[w] == SF_NONE8)
        choose_next(sim, w, lk, ln->idx);
    const link_t *to = &sim->links[mv->to_link];
    const lane_t *tl = &sim->lanes[to->lane0 + sim->v_nlane[w]];
    float acc;
    if (tl->n >= tl->jam) {
        acc = stop_acc; /* no room downstream: wait at the line */
    } else if (tl->n > 0) {
        uint32_t j = tl->n - 1u;
        float gap = dist + tl->pos[j] - sim->vt[sim->v_type[tl->veh[j]]].len;
        acc = sf_idm(vt, iv0, v, gap, v - tl->v[j]);
    } else {
        acc = sf_idm_free(vt, iv0, v);
    }
    if (cls == LAMP_CAUTION && dist < CAUTION_ZONE_M) {
        float r = v / SF_SIM_CAUTION_MPS;
        r *= r;
        float c = vt->a * (1.0f - r * r);
        if (c < -vt->b)
            c = -vt->b;
        if (c < acc)
            acc = c;
    }
    return acc;
}

/* A vehicle in a lane that does not serve its next move, within MERGE_ZONE_M of where
 * it must change (the bay start, or the stop line), also follows the vehicle it would
 * have ahead in the lane it must reach: it slows to slot in behind it rather than drive
 * past the queue it has to join (with no such vehicle it just drives on). */
#define MERGE_ZONE_M 80.0f
static float merge_acc(const sf_sim_t *sim, const lane_t *ln, const link_t *lk, uint32_t w, float p,
                       float v, const vtype_t *vt, float iv0)
{
    unsigned am = allowed_mask(sim, ln->link, w);
    if (am >> ln->idx & 1u)
        return 1e9f;
    int best = -1, bd = 99;
    for (int k = 0; k < lk->n_lanes; k++)
        if ((am >> k & 1u) && abs(k - ln->idx) < bd) {
            bd = abs(k - ln->idx);
            best = k;
        }
    if (best < 0)
        return 1e9f;
    const lane_t *tl =
        &sim->lanes[lk->lane0 + (uint32_t)(best > ln->idx ? ln->idx + 1 : ln->idx - 1)];
    float reach = tl->start_m > 0 ? tl->start_m : lk->len;
    if (p < reach - MERGE_ZONE_M || tl->n == 0)
        return 1e9f;
    /* the rearmost vehicle of the target lane that is still ahead of us */
    uint32_t k = tl->n;
    while (k > 0 && tl->pos[k - 1] <= p)
        k--;
    if (k == 0)
        return 1e9f;
    float gap = tl->pos[k - 1] - sim->vt[sim->v_type[tl->veh[k - 1]]].len - p;
    if (gap < -vt->len)
        return 1e9f; /* already level with it: the lane change itself decides */
    return sf_idm(vt, iv0, v, gap, v - tl->v[k - 1]);
}

/* A bus's expected time to the stop line, s, were its movement green now: its distance d
 * at its speed (at least half the free speed), plus a saturation headway for every
 * queued vehicle ahead of it in its lane (P, V: the lane's positions and speeds, i: the
 * bus). The queue is what a check-in from distance and speed alone leaves out. */
static float bus_eta(const link_t *lk, const float *P, const float *V, uint32_t i, float d, float v,
                     float iv0)
{
    float vref = 0.5f / iv0;
    float eta = d / (v > vref ? v : vref);
    uint32_t nq = 0;
    for (uint32_t k = 0; k < i; k++)
        nq += V[k] < QUEUE_V && P[k] <= lk->len;
    return eta + (float)nq * SAT_HEADWAY_S;
}

static void lane_loop(sf_sim_t *sim, uint32_t lidx)
{
    lane_t *ln = &sim->lanes[lidx];
    uint32_t n = ln->n;
    /* cooperative merge: the request of the last step's lane changes, used once */
    uint32_t coop_i = UINT32_MAX;
    float coop_tail = ln->coop_tail, coop_v = ln->coop_v;
    if (ln->coop_w != SF_NONE32) {
        ln->coop_w = SF_NONE32;
        coop_i = 0;
        while (coop_i < n && ln->pos[coop_i] >= coop_tail)
            coop_i++;
    }
    if (!n)
        return;
    const link_t *lk = &sim->links[ln->link];
    const float dt = (float)sim->dt, hdt2 = 0.5f * dt * dt;
    const float L = lk->len, close_at = L < ACC_CLOSE_M ? L : ACC_CLOSE_M;
    const float t = (float)sim->t;
    float *P = ln->pos, *V = ln->v;
    const uint32_t *W = ln->veh;
    float lead_len = 0.0f;
    sim->veh_updates += n;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t w = W[i];
        const uint8_t ty = sim->v_type[w];
        const vtype_t *vt = &sim->vt[ty];
        const float iv0 = lk->inv_v0[ty];
        const float p = P[i], v = V[i];
        const uint32_t b = sim->v_bus[w];
        float acc;
        if (i > 0)
            acc = sf_idm(vt, iv0, v, P[i - 1] - lead_len - p, v - V[i - 1]);
        else
            acc = front_acc(sim, ln, lk, w, p, v, vt, iv0);
        if (lk->lc) {
            float a3 = merge_acc(sim, ln, lk, w, p, v, vt, iv0);
            if (a3 < acc)
                acc = a3;
            if (i == coop_i) {
                /* let the merging vehicle in, if that takes no hard braking */
                float ay = sf_idm(vt, iv0, v, coop_tail - p, v - coop_v);
                if (ay >= -COOP_BSAFE && ay < acc)
                    acc = ay;
            }
        }
        bool in_zone = false;
        bus_t *bb = NULL;
        if (b != SF_NONE32) {
            bb = &sim->bus[b];
            if (bb->dwelling) {
                acc = -MAX_DECEL; /* held at the stop */
                in_zone = true;
            } else if (bus_stop_pending(sim, bb)) {
                float sp = sim->lines[bb->line].l.stops[bb->stop_k].distance_m;
                float a2 = sf_idm(vt, iv0, v, sp - p + vt->s0, v);
                /* slowing for the stop (it binds, not the leader or a signal) */
                if (a2 < acc) {
                    acc = a2;
                    in_zone = p >= sp - BUS_ZONE_M;
                }
            } else if (p < bb->zone_until) {
                /* accelerating away from the stop; anything that slows it again, or
                 * being back at 0.9 v0, ends the stop's share */
                if (v >= 0.9f / iv0 || acc < 0.0f)
                    bb->zone_until = 0.0f;
                else
                    in_zone = true;
            }
        }
        /* ballistic update */
        float vn = v + acc * dt, pn;
        if (vn < 0.0f) {
            pn = acc < 0.0f ? p - v * v / (2.0f * acc) : p;
            vn = 0.0f;
        } else {
            pn = p + v * dt + acc * hdt2;
        }
        if (i > 0) {
            float lim = P[i - 1] - lead_len - 0.1f;
            if (pn > lim) {
                pn = lim > p ? lim : p;
                if (vn > V[i - 1])
                    vn = V[i - 1];
            }
        }
        P[i] = pn;
        V[i] = vn;
        lead_len = vt->len;
        /* time-based delay: integral of (1 - v/v0) dt, exact for the ballistic step */
        sim->v_delay[w] += dt - (pn - p) * iv0;
        uint8_t fl = sim->v_flags[w];
        if (vn < STOP_V) {
            if (!(fl & VF_STOPPED)) {
                fl |= VF_STOPPED;
                sim->v_stops[w]++;
                if (bb && !in_zone)
                    bb->sig_stops++;
            }
        } else if (vn > MOVE_V) {
            fl &= (uint8_t)~VF_STOPPED;
        }
        sim->v_flags[w] = fl;
        if ((fl & VF_ACC_OPEN) && pn >= close_at) {
            close_account(sim, w);
            open_account(sim, w, ln->link);
        }
        if ((fl & VF_AOG) && sim->v_tarr[w] <= t)
            classify_arrival(sim, w, lk, ln->link);
        if (ln->n_det) {
            const ldet_t *d = &sim->ldet[ln->det0];
            float tail = p - vt->len;
            for (uint16_t k = 0; k < ln->n_det; k++) {
                if (pn >= d[k].zs && tail <= d[k].ze)
                    sim->presence[d[k].ix] |= 1ull << d[k].det;
                if (p < d[k].zs && pn >= d[k].zs) {
                    size_t at = (size_t)d[k].ix * SF_MAX_DET + d[k].det;
                    sim->det_step[at]++;
                    sim->det_total[at]++;
                }
            }
        }
        if (bb) {
            if (bb->dwelling) {
                bb->dwell_left -= dt;
                if (bb->dwell_left <= 0.0f)
                    finish_dwell(sim, bb, pn);
            } else {
                if (!in_zone)
                    bb->sig_delay += dt - (pn - p) * iv0;
                if (bus_stop_pending(sim, bb)) {
                    const sf_stop_t *st = &sim->lines[bb->line].l.stops[bb->stop_k];
                    if (st->distance_m - pn < DWELL_REACH_M && vn < 0.5f) {
                        V[i] = 0.0f;
                        start_dwell(sim, bb);
                        if (st->kind == SF_STOP_BAY) {
                            bb->in_bay = 2; /* leaves the lane after this loop */
                            bb->bay_lane = lidx;
                            bb->bay_pos = pn;
                            bb->bay_link = ln->link;
                        }
                    }
                }
            }
            /* Check-in within checkin_m of the stop line, but only once no stop is left
             * to serve on this link (a near-side stop: at door close), so the ETA and
             * lateness are not those of a bus that still has to dwell. */
            if (lk->to_ix >= 0 && L - pn <= sim->checkin_m && L - pn > 0.0f && !bb->dwelling &&
                !bus_stop_pending(sim, bb)) {
                float eta = bus_eta(lk, P, V, i, L - pn, vn, iv0);
                if (!(sim->v_flags[w] & VF_CHECKIN)) {
                    sim->v_flags[w] |= VF_CHECKIN;
                    bb->eta_sent = eta;
                    bb->eta_at = sim->t;
                    push_transit(sim, SF_TRANSIT_CHECKIN, w, ln->link, eta);
                } else if (fabsf(eta - (bb->eta_sent - (float)(sim->t - bb->eta_at))) >
                           ETA_UPDATE_S) {
                    /* queued or held longer (or shorter) than announced: an update */
                    bb->eta_sent = eta;
                    bb->eta_at = sim->t;
                    push_transit(sim, SF_TRANSIT_CHECKIN, w, ln->link, eta);
                }
            }
        }
    }
}

/* Buses that began a bay dwell leave their lane. */
static void bay_leave(sf_sim_t *sim)
{
    for (uint32_t i = 0; i < sim->n_bus; i++) {
        bus_t *b = &sim->bus[i];
        if (b->in_bay != 2)
            continue;
        lane_t *ln = &sim->lanes[b->bay_lane];
        uint32_t *W = ln->veh;
        for (uint32_t k = 0; k < ln->n; k++)
            if (W[k] == b->veh) {
                lane_remove(ln, k);
                break;
            }
        b->in_bay = 1;
        sim->bay[sim->n_bay++] = i;
    }
}

/* ---- stop-line crossings ---------------------------------------------------------- */

static void vehicle_exit(sf_sim_t *sim, uint32_t w)
{
    if (sim->v_flags[w] & VF_ACC_OPEN)
        close_account(sim, w);
    if (sim->t >= sim->warmup_s) {
        sim->completed++;
        sim->sum_delay += (double)sim->v_delay[w];
        sim->sum_stops += (double)sim->v_stops[w];
        sim->sum_tt += sim->t - sim->v_tsys[w];
    }
    uint32_t b = sim->v_bus[w];
    if (b != SF_NONE32) {
        bus_t *bb = &sim->bus[b];
        bb->done = 1;
        bb->veh = SF_NONE32;
        if (sim->t >= sim->warmup_s) {
            line_t *ln = &sim->lines[bb->line];
            ln->n_done++;
            ln->sum_tt += sim->t - sim->v_tsys[w];
            ln->sum_sig_delay += (double)bb->sig_delay;
            ln->sum_sig_stops += (double)bb->sig_stops;
        }
    }
    sim->free_stack[sim->n_free++] = w;
    sim->n_on--;
}

static void transfers(sf_sim_t *sim)
{
    for (uint32_t l = 0; l < sim->n_lanes; l++) {
        lane_t *ln = &sim->lanes[l];
        const link_t *lk = &sim->links[ln->link];
        float *P = ln->pos, *V = ln->v;
        uint32_t *W = ln->veh;
        while (ln->n > 0 && P[0] >= lk->len) {
            uint32_t w = W[0];
            if (lk->to_ix < 0) {
                lane_remove(ln, 0);
                vehicle_exit(sim, w);
                continue;
            }
            if (sim->v_nlane[w] == SF_NONE8)
                choose_next(sim, w, lk, ln->idx);
            const mov_t *mv = movp(sim, lk->to_ix, sim->v_mov[w]);
            uint32_t to_li = mv->to_link;
            const link_t *to = &sim->links[to_li];
            lane_t *tl = &sim->lanes[to->lane0 + sim->v_nlane[w]];
            float np = P[0] - lk->len;
            float room = lane_room(sim, tl) - 0.1f;
            if (room < np) {
                /* another approach merged into that lane meanwhile: take the candidate
                 * lane with most room (a bus keeps its kerb lane) */
                uint8_t cand = (uint8_t)(1u << sim->v_nlane[w]);
                if (sim->v_bus[w] == SF_NONE32)
                    cand = lane_cands(sim, mv->to_link, sim->v_nmov[w], false);
                for (uint8_t j = 0; j < to->n_lanes; j++) {
                    if (!(cand >> j & 1u))
                        continue;
                    float r = lane_room(sim, &sim->lanes[to->lane0 + j]) - 0.1f;
                    if (r > room) {
                        room = r;
                        tl = &sim->lanes[to->lane0 + j];
                        sim->v_nlane[w] = j;
                    }
                }
                if (np > room)
                    np = room;
            }
            if (np < 0.0f || !lane_reserve(sim, tl)) {
                /* a merge from another approach took the room: hold at the line */
                P[0] = lk->len - 0.01f;
                V[0] = 0.0f;
                sim->blocked_transfers++;
                break;
            }
            float v = V[0];
            if (sim->v_flags[w] & VF_AOG)
                classify_arrival(sim, w, lk, ln->link);
            if (sim->v_flags[w] & VF_ACC_OPEN) {
                close_account(sim, w);
                open_account(sim, w, ln->link);
            }
            /* when it crossed, interpolated within the step */
            float vc = V[0] > 0.1f ? V[0] : 0.1f;
            double tc = sim->t - (double)((P[0] - lk->len) / vc);
            if (tc < sim->t - sim->dt)
                tc = sim->t - sim->dt;
            if (sim->t >= sim->warmup_s) {
                /* queue (stop-line) delay: crossing minus undelayed crossing (v_tarr) */
                sim->app[ln->link].crossed++;
                sim->app[ln->link].sum_sl_delay += tc - (double)sim->v_tarr[w];
            }
            uint32_t b = sim->v_bus[w];
            if (b != SF_NONE32)
                push_transit(sim, SF_TRANSIT_CHECKOUT, w, ln->link, 0.0f);
            /* the account of this approach stays open over the first metres downstream */
            sim->v_acc[w] = ln->link;
            sim->v_tcross[w] = sim->t;
            uint8_t fl = sim->v_flags[w];
            /* a through passage: came onto this approach straight and leaves it straight
             * (the arterial's through traffic, not the vehicles that turned in) */
            bool straight = mv->turn == SF_TURN_THROUGH;
            if (straight && (fl & VF_THRU_IN))
                fl |= VF_ACC_THRU;
            fl &= (uint8_t) ~(VF_YGO | VF_YSTOP | VF_CHECKIN | VF_AOG | VF_THRU_IN);
            if (straight)
                fl |= VF_THRU_IN;
            fl |= VF_ACC_OPEN;
            if (to->to_ix >= 0)
                fl |= VF_AOG;
            sim->v_flags[w] = fl;
            lane_remove(ln, 0);
            lane_insert(tl, tl->n, np, v, w);
            sim->v_mov[w] = sim->v_nmov[w];
            sim->v_nmov[w] = SF_NONE8;
            sim->v_nlane[w] = SF_NONE8;
            uint8_t ty = sim->v_type[w];
            sim->v_tarr[w] = (float)(tc + (double)(to->len * to->inv_v0[ty]));
            if (b != SF_NONE32) {
                bus_t *bb = &sim->bus[b];
                const line_t *line = &sim->lines[bb->line];
                if (bb->route_k != SF_NONE8 && bb->route_k + 1u < line->l.n_route &&
                    line->l.route[bb->route_k + 1u] == to_li)
                    bb->route_k++;
                else
                    bb->route_k = SF_NONE8; /* off its route: drives on like a car */
                bb->zone_until -= lk->len;  /* a departure zone may run past the line */
            }
        }
    }
}

/* ---- lane changes ----------------------------------------------------------------- */

static bool try_change(sf_sim_t *sim, lane_t *fl, uint32_t i, lane_t *tl, float bsafe, float a_cur,
                       float min_gain)
{
    if (!lane_reserve(sim, tl))
        return false;
    float p = fl->pos[i], v = fl->v[i];
    uint32_t w = fl->veh[i];
    const link_t *lk = &sim->links[fl->link];
    const vtype_t *vt = &sim->vt[sim->v_type[w]];
    float iv0 = lk->inv_v0[sim->v_type[w]];
    if (p - vt->len < tl->start_m)
        return false; /* beside the bay's taper, not yet beside the bay */
    const float *TP = tl->pos, *TV = tl->v;
    const uint32_t *TW = tl->veh;
    uint32_t k = 0;
    while (k < tl->n && TP[k] >= p)
        k++;
    float a_new;
    if (k > 0) {
        float gap = TP[k - 1] - sim->vt[sim->v_type[TW[k - 1]]].len - p;
        if (gap < 0.5f)
            return false;
        a_new = sf_idm(vt, iv0, v, gap, v - TV[k - 1]);
    } else {
        a_new = sf_idm_free(vt, iv0, v);
    }
    if (a_new < -bsafe || a_new - a_cur < min_gain)
        return false;
    if (k < tl->n) {
        uint8_t ft = sim->v_type[TW[k]];
        float gap = p - vt->len - TP[k];
        if (gap < 0.5f)
            return false;
        if (sf_idm(&sim->vt[ft], lk->inv_v0[ft], TV[k], gap, TV[k] - v) < -bsafe)
            return false;
    }
    lane_remove(fl, i);
    lane_insert(tl, k, p, v, w);
    sim->v_tlc[w] = (float)sim->t;
    return true;
}

static void lane_changes(sf_sim_t *sim)
{
    const float t = (float)sim->t;
    for (uint32_t li = 0; li < sim->n_links; li++) {
        const link_t *lk = &sim->links[li];
        if (!lk->lc)
            continue;
        for (uint8_t j = 0; j < lk->n_lanes; j++) {
            lane_t *ln = &sim->lanes[lk->lane0 + j];
            for (uint32_t i = ln->n; i-- > 0;) {
                uint32_t w = ln->veh[i];
                if (t - sim->v_tlc[w] < LC_COOLDOWN_S)
                    continue;
                uint32_t b = sim->v_bus[w];
                if (b != SF_NONE32 && sim->bus[b].dwelling)
                    continue;
                uint8_t am = allowed_mask(sim, li, w);
                float p = ln->pos[i], v = ln->v[i];
                const vtype_t *vt = &sim->vt[sim->v_type[w]];
                float iv0 = lk->inv_v0[sim->v_type[w]];
                if (!(am >> j & 1u)) {
                    /* mandatory: one lane toward the nearest allowed lane */
                    int best = -1, bd = 99;
                    for (int k = 0; k < lk->n_lanes; k++)
                        if ((am >> k & 1u) && abs(k - j) < bd) {
                            bd = abs(k - j);
                            best = k;
                        }
                    if (best < 0)
                        continue;
                    int to = best > j ? j + 1 : j - 1;
                    lane_t *tl = &sim->lanes[lk->lane0 + (uint32_t)to];
                    if (try_change(sim, ln, i, tl, MAND_BSAFE, 0.0f, -1e9f))
                        continue;
                    /* no gap: ask for one when the end of the room to change is near
                     * (where the allowed lane begins, or the stop line) */
                    const lane_t *al = &sim->lanes[lk->lane0 + (uint32_t)best];
                    float reach = al->start_m > 0 ? al->start_m : lk->len;
                    float zone = MERGE_ZONE_M * (float)bd;
                    if (p >= reach - zone &&
                        (tl->coop_w == SF_NONE32 || p - vt->len > tl->coop_tail)) {
                        tl->coop_w = w;
                        tl->coop_tail = p - vt->len;
                        tl->coop_v = v;
                    }
                    continue;
                }
                /* discretionary, about once a second per vehicle, when held up */
                if (i == 0 || (sim->step + w) % 10u != 0u)
                    continue;
                float vl = ln->v[i - 1];
                float gap = ln->pos[i - 1] - sim->vt[sim->v_type[ln->veh[i - 1]]].len - p;
                if (vl > 0.7f / iv0 || gap > 80.0f)
                    continue;
                float a_cur = sf_idm(vt, iv0, v, gap, v - vl);
                for (int d = -1; d <= 1; d += 2) {
                    int k = j + d;
                    if (k < 0 || k >= lk->n_lanes || !(am >> k & 1u))
                        continue;
                    if (try_change(sim, ln, i, &sim->lanes[lk->lane0 + (uint32_t)k], DISC_BSAFE,
                                   a_cur, DISC_GAIN))
                        break;
                }
            }
        }
    }
}

/* ---- queues and trajectories ------------------------------------------------------ */

static void sample_queues(sf_sim_t *sim)
{
    for (uint32_t li = 0; li < sim->n_links; li++) {
        const link_t *lk = &sim->links[li];
        if (lk->to_ix < 0)
            continue;
        float q = 0.0f;
        for (uint8_t j = 0; j < lk->n_lanes; j++) {
            const lane_t *ln = &sim->lanes[lk->lane0 + j];
            const float *P = ln->pos, *V = ln->v;
            const uint32_t *W = ln->veh;
            if (!ln->n || V[0] >= QUEUE_V || lk->len - P[0] > QUEUE_HEAD_M)
                continue;
            float back = P[0] - sim->vt[sim->v_type[W[0]]].len;
            for (uint32_t i = 1; i < ln->n; i++) {
                if (V[i] >= QUEUE_V || back - P[i] > QUEUE_GAP_M)
                    break;
                back = P[i] - sim->vt[sim->v_type[W[i]]].len;
            }
            float ql = lk->len - (back > 0 ? back : 0);
            if (ql > q)
                q = ql;
        }
        app_moe_t *m = &sim->app[li];
        m->q_sum += (double)q;
        m->q_n++;
        if (q > m->q_max)
            m->q_max = q;
    }
}

static int record(sf_sim_t *sim)
{
    for (uint32_t l = 0; l < sim->n_lanes; l++) {
        const lane_t *ln = &sim->lanes[l];
        if (!sim->links[ln->link].recorded)
            continue;
        for (uint32_t i = 0; i < ln->n; i++) {
            if (sim->rec_n == sim->rec_cap) {
                size_t nc = sim->rec_cap ? sim->rec_cap * 2 : 4096;
                sf_traj_point_t *r = realloc(sim->rec, nc * sizeof *r);
                if (!r) {
                    errno = ENOMEM;
                    return -1;
                }
                sim->mem_bytes += (nc - sim->rec_cap) * sizeof *r;
                sim->rec = r;
                sim->rec_cap = nc;
            }
            sf_traj_point_t *o = &sim->rec[sim->rec_n++];
            o->t_s = (float)sim->t;
            o->veh_id = sim->v_id[ln->veh[i]];
            o->link_idx = ln->link;
            o->pos_m = ln->pos[i];
            o->speed_mps = ln->v[i];
        }
    }
    return 0;
}

/* ---- injected detector faults --------------------------------------------------------- */

/* Half-second index of time t (chatter is occupied in the even halves). */
static uint64_t half_s(double t)
{
    return (uint64_t)floor(t * 2.0 + 1e-9);
}

/* Overwrite what the faulted detectors measured in this step with what the fault shows
 * (scenario faults.detectors, active for from_s <= t < to_s): stuck on = occupied, no
 * count; dead = free, no count; chatter = occupied in the first half of every second,
 * one count as it comes on. Applied to the step's presence and counts before anyone reads
 * them, so the unit, its registers and the centre see the fault as from the field. */
static void apply_det_faults(sf_sim_t *sim)
{
    double t = sim->t;
    for (uint8_t k = 0; k < sim->n_dfault; k++) {
        const sf_det_fault_t *f = &sim->dfault[k];
        if (t < f->from_s || t >= f->to_s)
            continue;
        size_t at = (size_t)f->ix_idx * SF_MAX_DET + f->det_idx;
        uint64_t bit = 1ull << f->det_idx;
        uint16_t counted = 0;
        bool on = false;
        switch (f->kind) {
        case SF_DET_FAULT_STUCK_ON:
            on = true;
            break;
        case SF_DET_FAULT_DEAD:
            break;
        case SF_DET_FAULT_CHATTER: {
            uint64_t h = half_s(t);
            on = h % 2 == 0;
            /* comes on: the first step of an even half (or of the window) */
            counted = on && (t - sim->dt < f->from_s || half_s(t - sim->dt) != h) ? 1 : 0;
            break;
        }
        }
        sim->presence[f->ix_idx] =
            on ? sim->presence[f->ix_idx] | bit : sim->presence[f->ix_idx] & ~bit;
        sim->det_total[at] = sim->det_total[at] - sim->det_step[at] + counted;
        sim->det_step[at] = counted;
    }
}

/* ---- the step --------------------------------------------------------------------- */

int sf_sim_step(sf_sim_t *sim)
{
    if (!sim) {
        errno = EINVAL;
        return -1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    sim->step++;
    sim->t = (double)sim->step * sim->dt;
    memset(sim->presence, 0, sim->n_ix * sizeof *sim->presence);
    memset(sim->det_step, 0, (size_t)sim->n_ix * SF_MAX_DET * sizeof *sim->det_step);
    if (generate(sim) < 0)
        rc = -1;
    insert_entries(sim);
    bay_pass(sim);
    for (uint32_t l = 0; l < sim->n_lanes; l++)
        lane_loop(sim, l);
    if (sim->n_dfault)
        apply_det_faults(sim);
    if (sim->n_bus)
        bay_leave(sim);
    transfers(sim);
    lane_changes(sim);
    uint64_t per_s = (uint64_t)llround(1.0 / sim->dt);
    if (per_s == 0)
        per_s = 1;
    if (sim->t >= sim->warmup_s && sim->step % per_s == 0)
        sample_queues(sim);
    if (sim->rec_every > 0 && sim->step >= sim->rec_next_step) {
        if (record(sim) < 0)
            rc = -1;
        uint64_t every = (uint64_t)llround(sim->rec_every / sim->dt);
        sim->rec_next_step = sim->step + (every ? every : 1u);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sim->wall_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return rc;
}
