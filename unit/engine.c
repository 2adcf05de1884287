/* unit/engine.c — the phase engine: NEMA rings and barriers, intervals, modes.
 *
 * One tick (0.1 s) runs, in this order:
 *   clock and watchdog -> unit state machine (start-up, flash, all-red, run) ->
 *   calls (detectors, recalls, coordination) -> ring timers (green, walk, yellow, red
 *   clearance) -> starts of next phases within the barrier group -> barrier crossing
 *   (and safe-point changes) -> green terminations -> lamp outputs -> test seam ->
 *   conflict monitor -> status snapshot.
 *
 * Safety does not rest on the sequencing alone: start_phase() refuses a green that is
 * not concurrent with every phase still showing green, yellow or red clearance, and
 * can_end() refuses to end a green before its min green and pedestrian clearance. The
 * monitor checks the result independently every tick.
 *
 * Coordination runs on "group time" gt: 0 is the start of the barrier group holding the
 * coordinated phases, and phase force-offs sit at fixed group times (pos_f) computed
 * from the running plan's splits. gabs is gt made monotonic; lap_zero is the gabs of the
 * running lap's group time 0. The offset is corrected at each cycle boundary by dwell
 * (holding gt while the coordinated phase is green) or short-way (also advancing gt twice
 * per tick), never more than correction_pct of the cycle per cycle and never taking the
 * coordinated green below its minimum service.
 */
#include "unit_impl.h"

#include <string.h>

/* ---- small helpers --------------------------------------------------------------- */

static const sf_phase_t *phase(const sf_unit_t *u, int p)
{
    return &u->ix.phases[p];
}

static bool bit(uint16_t m, int i)
{
    return (m >> i & 1u) != 0;
}

static uint16_t pbit(int i)
{
    return (uint16_t)(1u << i);
}

static bool is_coord_phase(const sf_unit_t *u, int p)
{
    return u->run_mode == SF_UMODE_COORDINATED && bit(u->rp.coord_phase_mask, p);
}

bool sf_engine_phase_green(const sf_unit_t *u, uint8_t p)
{
    if (u->state != ST_RUN)
        return false;
    const sf_ring_t *r = &u->ring[phase(u, p)->ring - 1];
    return r->ph == (int8_t)p && r->iv == IV_GREEN;
}

/* Phases green now, by index. */
static uint16_t greens(const sf_unit_t *u)
{
    uint16_t m = 0;
    for (uint8_t r = 0; r < u->ix.n_rings; r++)
        if (u->ring[r].ph >= 0 && u->ring[r].iv == IV_GREEN)
            m |= pbit(u->ring[r].ph);
    return m;
}

/* Whether phase p is out of service in the running control. */
static bool omitted(const sf_unit_t *u, int p)
{
    if (is_coord_phase(u, p))
        return false; /* the coordinator always serves its phases */
    if (bit(u->omit, p))
        return true;
    if (u->run_mode != SF_UMODE_ACTUATED &&
        (!u->rp.split_ds[p] || u->rp.split_mode[p] == SF_SPLIT_OMIT))
        return true;
    return false;
}

static uint16_t maxv(const sf_unit_t *u, int p)
{
    return u->run_local ? phase(u, p)->max2_ds : phase(u, p)->max1_ds;
}

/* Fixed-time green of p: split less its clearance. */
static uint16_t split_green(const sf_unit_t *u, int p)
{
    const sf_phase_t *ph = phase(u, p);
    return (uint16_t)(u->rp.split_ds[p] - ph->yellow_ds - ph->red_clear_ds);
}

/* Calls on phases that are not green and can be served: demand somewhere else. */
static uint16_t demand(const sf_unit_t *u)
{
    uint16_t m = (uint16_t)((u->veh_call | u->ped_call) & ~greens(u));
    for (uint8_t p = 0; p < u->ix.n_phases; p++)
        if (bit(m, p) && (omitted(u, p) || u->group_of[p] == 0xFF))
            m &= (uint16_t)~pbit(p);
    return m;
}

static uint64_t fo_abs(const sf_unit_t *u, int p)
{
    return u->lap_zero + u->pos_f[p];
}

/* Whether phase p should be served when its turn comes. */
static bool servable(const sf_unit_t *u, int p)
{
    if (omitted(u, p))
        return false;
    if (sf_prio_skips(u, (uint8_t)p))
        return false; /* passed over for a late bus this visit (priority.c) */
    switch (u->run_mode) {
    case SF_UMODE_FIXED:
        return true;
    case SF_UMODE_ACTUATED:
        return bit(u->veh_call | u->ped_call, p);
    default:
        if (is_coord_phase(u, p))
            return true;
        if (!bit(u->veh_call | u->ped_call, p))
            return false;
        /* only if its minimum service fits before its force-off */
        return u->gabs + sf_unit_min_service(phase(u, p)) <= fo_abs(u, p);
    }
}

/* Next servable phase of ring r in the current group after position k, or -1. */
static int next_in_group(const sf_unit_t *u, uint8_t r, int k)
{
    uint8_t g = u->group;
    for (int kk = k + 1; kk < u->rg_n[r][g]; kk++) {
        int p = u->rg_ph[r][g][kk];
        if (servable(u, p))
            return kk;
    }
    return -1;
}

/* Next position of ring r after k: the next servable phase of the group, else a phase
 * inserted for a priority request whose phase the ring has already passed (served again
 * before the barrier: the other rings wait there, as for any phase of the group). */
static int next_pos(const sf_unit_t *u, uint8_t r, int k)
{
    int kk = next_in_group(u, r, k);
    if (kk < 0 && !u->stopping)
        kk = sf_prio_insertion(u, r, k);
    return kk;
}

/* ---- coordination ---------------------------------------------------------------- */

/* First coordinated phase: lowest ring, then ring order. -1 when the plan has none. */
static int first_coord(const sf_unit_t *u)
{
    for (uint8_t r = 0; r < u->ix.n_rings; r++)
        for (uint8_t k = 0; k < u->ix.ring_seq_len[r]; k++) {
            uint8_t p = u->ix.ring_seq[r][k];
            if (bit(u->rp.coord_phase_mask, p))
                return p;
        }
    return -1;
}

/* Lay the running plan out on group time. */
static void derive_coord(sf_unit_t *u)
{
    const sf_plan_t *rp = &u->rp;
    u->cyc = rp->cycle_ds;
    int cp = first_coord(u);
    u->g_c = cp >= 0 ? u->group_of[cp] : 0;
    uint16_t acc = 0;
    for (uint8_t j = 0; j < u->n_groups; j++) {
        uint8_t g = (uint8_t)((u->g_c + j) % u->n_groups);
        u->grp_start[g] = acc;
        uint16_t len = 0;
        for (uint8_t r = 0; r < u->ix.n_rings; r++) {
            uint16_t a = acc;
            for (uint8_t k = 0; k < u->rg_n[r][g]; k++) {
                uint8_t p = u->rg_ph[r][g][k];
                uint16_t s = rp->split_ds[p];
                const sf_phase_t *ph = phase(u, p);
                u->pos_f[p] = s ? (uint16_t)(a + s - ph->yellow_ds - ph->red_clear_ds) : a;
                a = (uint16_t)(a + s);
            }
            if (a - acc > len)
                len = (uint16_t)(a - acc);
        }
        acc = (uint16_t)(acc + len);
    }
    if (cp >= 0) {
        const sf_phase_t *ph = phase(u, cp);
        u->s_c = (uint16_t)(u->pos_f[cp] + ph->yellow_ds + ph->red_clear_ds - rp->split_ds[cp]);
    } else {
        u->s_c = 0;
    }
}

/* Group time at which the reference (tod, sync, offset) says we should be. */
static uint16_t ref_gt(const sf_unit_t *u)
{
    int64_t c = u->cyc;
    int64_t v =
        (int64_t)u->tod_ds - (int64_t)u->sync_ref_ds - (int64_t)u->rp.offset_ds + (int64_t)u->s_c;
    v %= c;
    if (v < 0)
        v += c;
    return (uint16_t)v;
}

/* Cycle boundary: measure the error and plan this cycle's correction. */
static void on_wrap(sf_unit_t *u)
{
    int32_t c = u->cyc;
    int32_t err = ((int32_t)u->gt - (int32_t)ref_gt(u)) % c;
    if (err < 0)
        err += c;
    int32_t lim = c * u->cfg.correction_pct / 100;
    if (lim < 1)
        lim = 1;
    if (err == 0) {
        u->corr = 0;
        u->in_sync = true;
        return;
    }
    u->in_sync = false;
    if (u->cfg.correction == SF_CORRECT_DWELL || err <= c / 2)
        u->corr = err < lim ? err : lim; /* we are ahead: lengthen */
    else
        u->corr = -(c - err < lim ? c - err : lim); /* behind: shorten */
}

static void target(const sf_unit_t *u, uint8_t *mode, uint8_t *plan, bool *local);

/* A lap restarting while the unit rests in the coordinated group (no call anywhere else, so
 * no barrier is crossed and cross_barrier's safe point never comes) is where a new plan in
 * the same coordinated control takes effect: without it such a unit would keep its old
 * plan for as long as nothing calls. Only when nothing but the timing changes: the same
 * centre or local control, the same coordinated phases, and only coordinated phases green
 * now (they stay green; the new lap is laid out from here, the correction then finds the
 * new reference). */
static void rest_plan_change(sf_unit_t *u)
{
    uint8_t mode, plan;
    bool local;
    target(u, &mode, &plan, &local);
    const sf_plan_t *np = &u->ix.plans[plan];
    if (mode != SF_UMODE_COORDINATED || u->run_mode != SF_UMODE_COORDINATED ||
        local != u->run_local || np->coord_phase_mask != u->rp.coord_phase_mask ||
        (plan == u->plan && memcmp(&u->rp, np, sizeof u->rp) == 0))
        return;
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        const sf_ring_t *rg = &u->ring[r];
        if (rg->ph >= 0 && (rg->iv != IV_GREEN || !bit(np->coord_phase_mask, rg->ph) ||
                            !np->split_ds[rg->ph] || np->split_mode[rg->ph] == SF_SPLIT_OMIT))
            return;
    }
    u->plan = plan;
    u->rp = *np;
    derive_coord(u);
    u->in_sync = false;
    u->corr = 0;
    if (u->gt >= u->cyc)
        u->gt = (uint16_t)(u->gt % u->cyc);
    u->lap_zero = u->gabs - u->gt;
}

/* Advance group time by one tick, applying the correction while the coordinated
 * phases are green before their yield point. */
static void coord_advance(sf_unit_t *u)
{
    int step = 1;
    int cp = first_coord(u);
    if (u->corr != 0 && cp >= 0 && sf_engine_phase_green(u, (uint8_t)cp) &&
        u->gabs < fo_abs(u, cp)) {
        if (u->corr > 0) {
            step = 0;
            u->corr--;
        } else {
            /* shorten only if every green coordinated phase keeps its minimum service */
            bool ok = u->gabs + 2 < fo_abs(u, cp);
            for (uint8_t r = 0; r < u->ix.n_rings && ok; r++) {
                const sf_ring_t *rg = &u->ring[r];
                if (rg->ph < 0 || rg->iv != IV_GREEN || !is_coord_phase(u, rg->ph))
                    continue;
                uint64_t end = fo_abs(u, rg->ph);
                if (end < u->gabs + 2 ||
                    rg->t + (end - u->gabs) - 2 < sf_unit_min_service(phase(u, rg->ph)))
                    ok = false;
            }
            if (ok) {
                step = 2;
                u->corr++;
            }
        }
    }
    u->gabs += (uint64_t)step;
    u->gt = (uint16_t)(u->gt + step);
    if (u->gt >= u->cyc) {
        u->gt = (uint16_t)(u->gt - u->cyc);
        on_wrap(u);
    }
    /* resting in the coordinated group past a whole lap: the lap restarts */
    if (u->group == u->g_c && u->gabs >= u->lap_zero + u->cyc) {
        u->lap_zero += u->cyc;
        for (uint8_t r = 0; r < u->ix.n_rings; r++)
            u->ring[r].yield_seen = u->ring[r].yield_go = false;
        rest_plan_change(u);
    }
}

/* ---- starting and ending phases --------------------------------------------------- */

static void reset_rings(sf_unit_t *u)
{
    for (uint8_t r = 0; r < SF_MAX_RINGS; r++) {
        memset(&u->ring[r], 0, sizeof u->ring[r]);
        u->ring[r].ph = SF_NO_PHASE;
        u->ring[r].k = -1;
    }
}

/* Start phase at position k of ring r's current group, if every phase not in red is
 * concurrent with it. Returns whether it started. */
static bool start_phase(sf_unit_t *u, uint8_t r, int k)
{
    int p = u->rg_ph[r][u->group][k];
    if (u->yellow_end[p] && u->st.ticks + 1 - u->yellow_end[p] < SF_RED_REVERT_DS)
        return false; /* red revert: serve it again a little later */
    for (uint8_t o = 0; o < u->ix.n_rings; o++) {
        int q = u->ring[o].ph;
        if (o != r && q >= 0 && !u->ix.concurrent[p][q])
            return false; /* interlock: should never trigger with a sound layout */
    }
    const sf_phase_t *ph = phase(u, p);
    sf_ring_t *rg = &u->ring[r];
    memset(rg, 0, sizeof *rg);
    rg->ph = (int8_t)p;
    rg->k = (int8_t)k;
    rg->iv = IV_GREEN;
    rg->gap = ph->passage_ds;
    rg->min_g = ph->min_green_ds;
    if (ph->walk_ds && (bit(u->ped_call, p) || u->run_mode == SF_UMODE_FIXED)) {
        rg->ped = PED_WALK;
        rg->walk = ph->walk_ds;
        u->ped_call &= (uint16_t)~pbit(p);
    }
    u->veh_call &= (uint16_t)~pbit(p);
    return true;
}

/* Fill idle rings with their next phase in the group, or mark them done. */
static void start_next(sf_unit_t *u)
{
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        sf_ring_t *rg = &u->ring[r];
        if (rg->ph >= 0 || rg->done)
            continue;
        int k = u->stopping ? -1 : next_in_group(u, r, rg->k);
        /* record the phases passed over for a late bus (phase skip) */
        int k_end = k >= 0 ? k : u->rg_n[r][u->group];
        for (int kk = rg->k + 1; !u->stopping && kk < k_end; kk++)
            if (sf_prio_skips(u, u->rg_ph[r][u->group][kk]))
                sf_prio_skipped(u, u->rg_ph[r][u->group][kk]);
        bool insert = false;
        if (k < 0 && !u->stopping) {
            k = sf_prio_insertion(u, r, rg->k);
            insert = k >= 0;
        }
        if (k < 0) {
            rg->done = true;
        } else if (start_phase(u, r, k) && insert) {
            /* the inserted phase is the ring's last in this group: nothing after it is
             * served again (its position moves to the group's end) */
            rg->k = (int8_t)(u->rg_n[r][u->group] - 1);
            u->ins_visit = u->grp_visit;
            sf_prio_inserted(u);
        }
    }
}

/* Whether group g has anything to serve in the running control. */
static bool group_has_service(sf_unit_t *u, uint8_t g)
{
    uint8_t save = u->group;
    u->group = g;
    bool any = false;
    for (uint8_t r = 0; r < u->ix.n_rings && !any; r++)
        any = next_in_group(u, r, -1) >= 0;
    u->group = save;
    return any;
}

/* Enter group g: every ring starts afresh; actuated dual entry puts a phase in every
 * ring that has one in the group when any ring serves it. */
static void enter_group(sf_unit_t *u, uint8_t g)
{
    u->group = g;
    u->grp_visit++;
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        u->ring[r].done = false;
        u->ring[r].k = -1;
    }
    if (u->run_mode == SF_UMODE_COORDINATED && g == u->g_c) {
        /* A new lap. Its group time 0 is the last cycle boundary, unless this lap's
         * coordinated yield has already passed (an early return to the coordinated
         * group, or a late one): then it is the next boundary. */
        uint64_t base = u->gabs - u->gt;
        int cp = first_coord(u);
        u->lap_zero = (cp >= 0 && u->gabs >= base + u->pos_f[cp]) ? base + u->cyc : base;
    }
    start_next(u);
    if (u->run_mode != SF_UMODE_ACTUATED)
        return;
    bool any = false;
    for (uint8_t r = 0; r < u->ix.n_rings; r++)
        any = any || u->ring[r].ph >= 0;
    if (!any)
        return;
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        sf_ring_t *rg = &u->ring[r];
        uint8_t n = u->rg_n[r][g];
        if (rg->ph >= 0 || n == 0)
            continue;
        /* dual entry: the ring's last phase of the group (the through movement in the
         * usual NEMA numbering) when it is in service */
        for (int k = n - 1; k >= 0; k--) {
            int p = u->rg_ph[r][g][k];
            if (!omitted(u, p)) {
                if (start_phase(u, r, k))
                    rg->done = false;
                break;
            }
        }
    }
}

/* The target control: what the centre commands, or the local plan in fallback. */
uint8_t sf_engine_local_plan(const sf_unit_t *u)
{
    if (u->ix.n_schedule)
        return sf_intersection_plan_at(&u->ix, u->tod_ds / 10);
    return u->ix.local_plan_idx;
}

uint8_t sf_engine_local_mode(const sf_unit_t *u, uint8_t plan)
{
    if (u->ix.strategy == SF_STRAT_COORDINATED && u->ix.plans[plan].coord_phase_mask)
        return SF_UMODE_COORDINATED;
    if (u->ix.strategy == SF_STRAT_ACTUATED)
        return SF_UMODE_ACTUATED;
    return SF_UMODE_FIXED;
}

static void target(const sf_unit_t *u, uint8_t *mode, uint8_t *plan, bool *local)
{
    *local = u->fallback || u->mode_cmd == SF_UMODE_LOCAL;
    if (*local) {
        *plan = sf_engine_local_plan(u);
        *mode = sf_engine_local_mode(u, *plan);
    } else {
        *plan = u->plan_sel;
        *mode = u->mode_cmd;
    }
    if (*mode == SF_UMODE_COORDINATED && !u->ix.plans[*plan].coord_phase_mask)
        *mode = SF_UMODE_FIXED;
}

/* Begin running control (from all-red): first group, or the coordinated group. */
static void start_run(sf_unit_t *u, uint8_t mode, uint8_t plan, bool local)
{
    u->startup_seq = false;
    u->state = ST_RUN;
    u->st_t = 0;
    u->stopping = false;
    u->run_mode = mode;
    u->plan = plan;
    u->run_local = local;
    u->rp = u->ix.plans[plan];
    reset_rings(u);
    derive_coord(u);
    u->in_sync = false;
    u->corr = 0;
    uint8_t g = mode == SF_UMODE_COORDINATED ? u->g_c : 0;
    u->gt = u->grp_start[g];
    u->lap_zero = u->gabs - u->gt;
    enter_group(u, g);
}

/* All rings in red with clearances done: the safe point. Apply pending changes, then
 * cross to the next group with service. */
static void cross_barrier(sf_unit_t *u)
{
    uint8_t mode, plan;
    bool local;
    target(u, &mode, &plan, &local);
    if (mode == SF_UMODE_FLASH || mode == SF_UMODE_ALL_RED)
        return; /* stopping: the state machine takes over */
    uint8_t next = (uint8_t)((u->group + 1) % u->n_groups);
    bool plan_changed = plan != u->plan || local != u->run_local ||
                        memcmp(&u->rp, &u->ix.plans[plan], sizeof u->rp) != 0;
    if (mode != u->run_mode ||
        (plan_changed && (u->run_mode != SF_UMODE_COORDINATED || next == u->g_c))) {
        bool was_coord = u->run_mode == SF_UMODE_COORDINATED;
        /* where the next lap would begin under the old plan (coordinated only) */
        uint64_t base = u->gabs - u->gt;
        int cp = first_coord(u);
        uint64_t lap = (cp >= 0 && u->gabs >= base + u->pos_f[cp]) ? base + u->cyc : base;
        u->run_mode = mode;
        u->plan = plan;
        u->run_local = local;
        u->rp = u->ix.plans[plan];
        derive_coord(u);
        if (mode == SF_UMODE_COORDINATED) {
            u->in_sync = false;
            u->corr = 0;
            if (!was_coord) {
                /* fresh entry: group time where the sequence stands; the offset is
                 * then reached by the correction */
                u->gt = u->grp_start[next];
            } else if (u->gabs >= lap) {
                /* a new plan at the lap boundary: keep the lap's position */
                u->gt = (uint16_t)((u->gabs - lap) % u->cyc);
            } else {
                uint64_t early = lap - u->gabs;
                u->gt = early < u->cyc ? (uint16_t)(u->cyc - early) : 0;
            }
            u->lap_zero = u->gabs - u->gt;
        }
    } else if (u->run_mode == SF_UMODE_COORDINATED && next == u->g_c) {
        /* timings may have been written: re-lay at the lap start; a moved force-off
         * makes this cycle differ from the plan's */
        uint16_t old_f[SF_MAX_PHASES], old_sc = u->s_c;
        memcpy(old_f, u->pos_f, sizeof old_f);
        derive_coord(u);
        if (memcmp(old_f, u->pos_f, sizeof old_f) != 0 || old_sc != u->s_c)
            u->in_sync = false;
    }
    /* next group with something to serve; none at all: rest in red */
    for (uint8_t j = 0; j < u->n_groups; j++) {
        uint8_t g = (uint8_t)((u->group + 1 + j) % u->n_groups);
        if (group_has_service(u, g)) {
            enter_group(u, g);
            return;
        }
    }
}

/* The green may end: its min green and any walk and ped clearance are done. */
static bool can_end(const sf_ring_t *rg)
{
    return rg->t >= rg->min_g && (rg->ped == PED_NONE || rg->ped == PED_DONE);
}

/* Whether the green of ring r wants to end now (before hold and barrier). */
static bool wants_end(sf_unit_t *u, uint8_t r)
{
    sf_ring_t *rg = &u->ring[r];
    int p = rg->ph;
    const sf_phase_t *ph = phase(u, p);
    if (u->stopping)
        return true;
    if (sf_prio_truncates(u, (uint8_t)p))
        return true;
    switch (u->run_mode) {
    case SF_UMODE_FIXED:
        return rg->t >= split_green(u, p) || bit(u->force_off, p);
    case SF_UMODE_ACTUATED: {
        if (!demand(u))
            return false; /* rest in green */
        bool max_recall = ph->recall == SF_RECALL_MAX;
        bool gap_out = rg->gap == 0 && !max_recall;
        return gap_out || rg->max_t >= maxv(u, p) || bit(u->force_off, p);
    }
    default:
        break;
    }
    /* coordinated */
    if (is_coord_phase(u, p)) {
        if (!rg->yield_seen && u->gabs >= fo_abs(u, p)) {
            rg->yield_seen = true;
            rg->yield_go = demand(u) != 0;
        }
        return rg->yield_go;
    }
    bool max_recall = u->rp.split_mode[p] == SF_SPLIT_MAX_RECALL ||
                      (u->rp.split_mode[p] == SF_SPLIT_NONE && ph->recall == SF_RECALL_MAX);
    if (u->gabs >= fo_abs(u, p))
        return true;
    if (u->rp.force_mode == SF_FORCE_FLOATING && rg->t >= split_green(u, p))
        return true;
    return rg->gap == 0 && !max_recall && demand(u) != 0;
}

/* Whether ring r is at (or heading to) the barrier: nothing more to serve in the group
 * and, if green, ready to end. */
static bool at_barrier(const sf_unit_t *u, uint8_t r)
{
    const sf_ring_t *rg = &u->ring[r];
    if (rg->ph < 0)
        return rg->done;
    if (next_pos(u, r, rg->k) >= 0)
        return false;
    return rg->iv != IV_GREEN || rg->ready;
}

static void begin_yellow(sf_unit_t *u, sf_ring_t *rg)
{
    if (is_coord_phase(u, rg->ph) && u->gabs != fo_abs(u, rg->ph))
        u->in_sync = false; /* the coordinated yield moved: this cycle is not exact */
    rg->iv = IV_YELLOW;
    rg->t = 0;
    rg->len = phase(u, rg->ph)->yellow_ds;
    rg->ready = false;
    rg->ped = PED_NONE;
}

static void end_greens(sf_unit_t *u)
{
    uint8_t n = u->ix.n_rings;
    for (uint8_t r = 0; r < n; r++) {
        sf_ring_t *rg = &u->ring[r];
        if (rg->ph < 0 || rg->iv != IV_GREEN) {
            rg->ready = false;
            continue;
        }
        bool want = wants_end(u, r);
        if (want && !u->stopping) {
            bool held = u->run_mode != SF_UMODE_COORDINATED && bit(u->hold, rg->ph);
            if (!held && sf_prio_holds(u, (uint8_t)rg->ph)) {
                held = true;
                sf_prio_held(u, (uint8_t)rg->ph);
                if (is_coord_phase(u, rg->ph))
                    u->in_sync = false;
            }
            if (held)
                want = false;
        }
        rg->ready = want && can_end(rg);
    }
    /* greens with a next phase in the group end now; the last ones of the group end
     * together once every ring is at the barrier (or at once when stopping) */
    bool all = true;
    for (uint8_t r = 0; r < n; r++)
        all = all && at_barrier(u, r);
    for (uint8_t r = 0; r < n; r++) {
        sf_ring_t *rg = &u->ring[r];
        if (rg->ph < 0 || rg->iv != IV_GREEN || !rg->ready)
            continue;
        if (u->stopping || next_pos(u, r, rg->k) >= 0 || all)
            begin_yellow(u, rg);
    }
}

/* Timers of the intervals in progress. */
static void time_rings(sf_unit_t *u, uint16_t presence)
{
    uint16_t dem = demand(u);
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        sf_ring_t *rg = &u->ring[r];
        if (rg->ph < 0)
            continue;
        const sf_phase_t *ph = phase(u, rg->ph);
        if (rg->t < UINT16_MAX)
            rg->t++;
        switch (rg->iv) {
        case IV_GREEN:
            if (rg->ped == PED_WALK && ++rg->ped_t >= rg->walk) {
                rg->pclr = ph->ped_clear_ds; /* the clearance begins: its length now */
                rg->ped = rg->pclr ? PED_CLEAR : PED_DONE;
                rg->ped_t = 0;
            } else if (rg->ped == PED_CLEAR && ++rg->ped_t >= rg->pclr) {
                rg->ped = PED_DONE;
                rg->ped_t = 0;
            }
            if (bit(presence, rg->ph))
                rg->gap = ph->passage_ds;
            else if (rg->gap > 0)
                rg->gap--;
            if (dem && rg->max_t < UINT16_MAX)
                rg->max_t++;
            break;
        case IV_YELLOW:
            if (rg->t >= rg->len) {
                u->yellow_end[rg->ph] = u->st.ticks + 1; /* 0 = never */
                rg->iv = IV_RED_CLEAR;
                rg->t = 0;
                rg->len = ph->red_clear_ds;
                if (rg->len == 0)
                    rg->ph = SF_NO_PHASE;
            }
            break;
        case IV_RED_CLEAR:
            if (rg->t >= rg->len)
                rg->ph = SF_NO_PHASE;
            break;
        default:
            break;
        }
    }
}

/* Calls from detectors and recalls. Returns the presence mask by phase index. */
static uint16_t place_calls(sf_unit_t *u)
{
    uint16_t presence = 0;
    for (uint8_t d = 0; d < u->ix.n_det; d++)
        if ((u->det >> d & 1u) && u->ix.det[d].kind == SF_DET_PRESENCE)
            presence |= u->ix.det[d].phase_mask;
    uint16_t g = greens(u);
    uint16_t veh = (uint16_t)(presence & ~g); /* locking memory: calls stay once placed */
    uint16_t ped = 0;
    for (uint8_t p = 0; p < u->ix.n_phases; p++) {
        sf_recall_t rc = phase(u, p)->recall;
        if (u->run_mode == SF_UMODE_COORDINATED) {
            if (bit(u->rp.coord_phase_mask, p)) {
                rc = SF_RECALL_MAX;
            } else {
                switch (u->rp.split_mode[p]) {
                case SF_SPLIT_MIN_RECALL:
                    rc = SF_RECALL_MIN;
                    break;
                case SF_SPLIT_MAX_RECALL:
                    rc = SF_RECALL_MAX;
                    break;
                case SF_SPLIT_PED_RECALL:
                    rc = SF_RECALL_PED;
                    break;
                default:
                    break;
                }
            }
        }
        if (bit(g, p) || rc == SF_RECALL_NONE)
            continue;
        veh |= pbit(p);
        if (rc == SF_RECALL_PED && phase(u, p)->walk_ds)
            ped |= pbit(p);
    }
    u->veh_call |= veh;
    u->ped_call |= ped;
    return presence;
}

/* fresh: running control began this tick (the phases just started show their first
 * tick: their timers do not advance). */
static void run_tick(sf_unit_t *u, bool fresh)
{
    uint16_t presence = place_calls(u);
    if (!fresh) {
        if (u->run_mode == SF_UMODE_COORDINATED)
            coord_advance(u);
        time_rings(u, presence);
    }
    start_next(u);
    bool idle = true;
    for (uint8_t r = 0; r < u->ix.n_rings; r++)
        idle = idle && u->ring[r].ph < 0 && u->ring[r].done;
    if (idle && !u->stopping)
        cross_barrier(u);
    end_greens(u);
}

/* ---- state machine and outputs ----------------------------------------------------- */

static void set_state(sf_unit_t *u, uint8_t s)
{
    if (s != ST_START_RED)
        u->startup_seq = false;
    u->state = s;
    u->st_t = 0;
    u->stopping = false;
    reset_rings(u);
}

void sf_engine_reset(sf_unit_t *u)
{
    set_state(u, ST_START_FLASH);
    u->startup_seq = true;
    u->run_mode = 0;
    u->plan = u->plan_sel;
    u->rp = u->ix.plans[u->plan];
    derive_coord(u);
    sf_prio_clear(u);
}

/* Stopping and every ring in red with its clearance done: enter flash / all-red. */
static void stop_if_idle(sf_unit_t *u, uint8_t mode)
{
    if (!u->stopping)
        return;
    for (uint8_t r = 0; r < u->ix.n_rings; r++)
        if (u->ring[r].ph >= 0)
            return;
    /* flash and all-red begin from red: not on the tick a yellow ended */
    for (uint8_t p = 0; p < u->ix.n_phases; p++)
        if (u->yellow_end[p] == u->st.ticks + 1)
            return;
    set_state(u, mode == SF_UMODE_FLASH ? ST_FLASH : ST_ALL_RED);
}

/* Returns whether running control began this tick. */
static bool state_machine(sf_unit_t *u)
{
    uint8_t mode, plan;
    bool local;
    target(u, &mode, &plan, &local);
    bool run = mode != SF_UMODE_FLASH && mode != SF_UMODE_ALL_RED;
    switch (u->state) {
    case ST_START_FLASH:
        if (u->st_t >= u->cfg.startup_flash_ds)
            set_state(u, ST_START_RED);
        break;
    case ST_START_RED:
        if (u->st_t >= u->cfg.startup_all_red_ds) {
            if (run) {
                start_run(u, mode, plan, local);
                return true;
            } else
                set_state(u, mode == SF_UMODE_FLASH ? ST_FLASH : ST_ALL_RED);
        }
        break;
    case ST_FLASH:
        if (mode != SF_UMODE_FLASH)
            set_state(u, ST_START_RED);
        break;
    case ST_ALL_RED:
        if (mode == SF_UMODE_FLASH)
            set_state(u, ST_FLASH);
        else if (run && u->st_t >= u->cfg.startup_all_red_ds) {
            start_run(u, mode, plan, local);
            return true;
        }
        break;
    case ST_RUN:
        u->stopping = !run;
        stop_if_idle(u, mode);
        break;
    default:
        break;
    }
    return false;
}

/* Lamp outputs from the engine state. */
static void outputs(sf_unit_t *u)
{
    const sf_intersection_t *ix = &u->ix;
    for (uint8_t i = 0; i < ix->n_sg; i++) {
        bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
        uint8_t o;
        switch (u->state) {
        case ST_START_FLASH:
        case ST_FLASH:
        case ST_FAULT:
            o = ped ? 0 : (uint8_t)(SF_OUT_YELLOW | SF_OUT_FLASH);
            break;
        case ST_RUN: {
            int p = ix->sg[i].phase_idx;
            const sf_ring_t *rg = &u->ring[phase(u, p)->ring - 1];
            o = SF_OUT_RED;
            if (rg->ph == p && rg->iv == IV_GREEN) {
                if (!ped)
                    o = SF_OUT_GREEN;
                else if (rg->ped == PED_WALK)
                    o = SF_OUT_GREEN;
                else if (rg->ped == PED_CLEAR)
                    o = SF_OUT_RED | SF_OUT_FLASH;
            } else if (rg->ph == p && rg->iv == IV_YELLOW && !ped) {
                o = SF_OUT_YELLOW;
            }
            break;
        }
        default:
            o = SF_OUT_RED;
            break;
        }
        u->out[i] = o;
    }
}

static void detector_data(sf_unit_t *u)
{
    uint64_t rise = u->det & ~u->det_prev;
    for (uint8_t d = 0; d < u->ix.n_det; d++) {
        if ((rise >> d & 1u) && u->vol_acc[d] < UINT16_MAX)
            u->vol_acc[d]++;
        if ((u->det >> d & 1u) && u->occ_acc[d] < UINT16_MAX)
            u->occ_acc[d]++;
    }
    u->det_prev = u->det;
    uint32_t n = u->cfg.det_interval_ds ? u->cfg.det_interval_ds : 600;
    if (++u->int_t < n)
        return;
    for (uint8_t d = 0; d < u->ix.n_det; d++) {
        u->st.det_volume[d] = u->vol_acc[d];
        u->st.det_occupancy[d] = (uint16_t)((uint32_t)u->occ_acc[d] * 1000u / n);
        u->vol_acc[d] = 0;
        u->occ_acc[d] = 0;
    }
    u->st.det_seq++;
    u->int_t = 0;
}

void sf_engine_tick(sf_unit_t *u)
{
    if (!u->clock_set)
        u->tod_ds = (u->tod_ds + 1) % 864000u;
    u->clock_set = false;
    if (u->hb_age < UINT32_MAX)
        u->hb_age++;
    if (u->cfg.heartbeat_timeout_ds && u->hb_age >= u->cfg.heartbeat_timeout_ds)
        u->fallback = true;

    if (u->state != ST_FAULT) {
        bool fresh = state_machine(u);
        if (u->state == ST_RUN) {
            run_tick(u, fresh);
            uint8_t mode, plan;
            bool local;
            target(u, &mode, &plan, &local);
            stop_if_idle(u, mode);
        }
    }
    sf_prio_tick(u);
    outputs(u);
    if (u->hooks.outputs)
        u->hooks.outputs(u->hooks.ctx, u->out, u->ix.n_sg);
    if (sf_monitor_check(u->mon, u->out) != SF_FAULT_NONE && u->state != ST_FAULT) {
        set_state(u, ST_FAULT);
        sf_prio_clear(u);
    }
    if (u->state == ST_FAULT)
        outputs(u); /* the latched fault output replaces whatever was driven */
    detector_data(u);
    if (u->st_t < UINT32_MAX)
        u->st_t++; /* ticks the state has been shown, this one included */
    u->st.ticks++;
    sf_engine_refresh_status(u);
}

void sf_unit_tick(sf_unit_t *u)
{
    if (u)
        sf_engine_tick(u);
}

/* ---- status ----------------------------------------------------------------------- */

static uint8_t lamp_code(uint8_t o)
{
    bool f = o & SF_OUT_FLASH;
    uint8_t c = o & (SF_OUT_RED | SF_OUT_YELLOW | SF_OUT_GREEN);
    switch (c) {
    case 0:
        return SF_LAMP_OFF;
    case SF_OUT_RED:
        return f ? SF_LAMP_RED_FLASH : SF_LAMP_RED;
    case SF_OUT_YELLOW:
        return f ? SF_LAMP_YELLOW_FLASH : SF_LAMP_YELLOW;
    case SF_OUT_GREEN:
        return f ? SF_LAMP_GREEN_FLASH : SF_LAMP_GREEN;
    case SF_OUT_RED | SF_OUT_YELLOW:
        return SF_LAMP_RED_YELLOW;
    default:
        return SF_LAMP_RED_YELLOW; /* impossible after the monitor: it latches flash */
    }
}

/* Time left of ring r's green, 0.1 s (an upper bound when actuated; 0 = indefinite). */
static uint16_t green_left(const sf_unit_t *u, const sf_ring_t *rg)
{
    int32_t left = 0;
    switch (u->run_mode) {
    case SF_UMODE_FIXED:
        left = (int32_t)split_green(u, rg->ph) - rg->t;
        break;
    case SF_UMODE_ACTUATED:
        left = demand(u) ? (int32_t)maxv(u, rg->ph) - rg->max_t : 0;
        break;
    default:
        left = (int32_t)(fo_abs(u, rg->ph) -
                         (u->gabs < fo_abs(u, rg->ph) ? u->gabs : fo_abs(u, rg->ph)));
        break;
    }
    int32_t min_left = (int32_t)rg->min_g - rg->t;
    if (left < min_left)
        left = min_left;
    return (uint16_t)(left < 0 ? 0 : left);
}

void sf_engine_refresh_status(sf_unit_t *u)
{
    sf_unit_status_t *st = &u->st;
    const sf_intersection_t *ix = &u->ix;
    uint8_t mode, plan;
    bool local;
    target(u, &mode, &plan, &local);
    st->mode_command = u->mode_cmd;
    st->startup = u->startup_seq;
    st->fallback = u->fallback;
    switch (u->state) {
    case ST_RUN: {
        st->mode = u->run_mode;
        uint8_t k = u->run_mode == SF_UMODE_FIXED ? 0 : u->run_mode == SF_UMODE_ACTUATED ? 1 : 2;
        st->control_mode = (uint8_t)((u->run_local ? SF_CM_LOCAL_FIXED : SF_CM_CENTRE_FIXED) + k);
        break;
    }
    case ST_ALL_RED:
    case ST_START_RED:
        st->mode = SF_UMODE_ALL_RED;
        st->control_mode = SF_CM_ALL_RED;
        break;
    default:
        st->mode = SF_UMODE_FLASH;
        st->control_mode = SF_CM_FLASH;
        break;
    }
    if (local && u->state == ST_RUN)
        st->mode = u->run_mode;
    st->active_plan = ix->plans[u->plan].id;
    bool pend = u->state == ST_RUN &&
                (plan != u->plan || memcmp(&u->rp, &ix->plans[plan], sizeof u->rp) != 0);
    st->pending_plan = pend ? ix->plans[plan].id : 0;
    st->cycle_ds = u->rp.cycle_ds;
    st->offset_ds = u->rp.offset_ds;
    bool coord = u->state == ST_RUN && u->run_mode == SF_UMODE_COORDINATED;
    st->cycle_timer_ds = 0;
    if (coord && u->cyc) {
        uint32_t ct = ((uint32_t)u->gt + u->cyc - u->s_c) % u->cyc;
        st->cycle_timer_ds = (uint16_t)ct;
    }
    st->coord_in_sync = coord && u->in_sync;
    st->tod_ds = u->tod_ds;
    st->sync_ref_ds = u->sync_ref_ds;

    uint16_t reds = 0, yel = 0, grn = 0, dw = 0, pc = 0, wk = 0, on = 0, next = 0;
    for (uint8_t p = 0; p < ix->n_phases; p++) {
        const sf_ring_t *rg = &u->ring[phase(u, p)->ring - 1];
        bool mine = u->state == ST_RUN && rg->ph == p;
        if (mine && rg->iv == IV_GREEN)
            grn |= pbit(p);
        else if (mine && rg->iv == IV_YELLOW)
            yel |= pbit(p);
        else if (u->state == ST_FLASH || u->state == ST_START_FLASH || u->state == ST_FAULT)
            yel |= pbit(p); /* flashing */
        else
            reds |= pbit(p);
        if (mine)
            on |= pbit(p);
        if (mine && rg->iv == IV_GREEN && rg->ped == PED_WALK)
            wk |= pbit(p);
        else if (mine && rg->iv == IV_GREEN && rg->ped == PED_CLEAR)
            pc |= pbit(p);
        else if (phase(u, p)->walk_ds)
            dw |= pbit(p);
    }
    if (u->state == ST_RUN) {
        /* next: in the group, else the first in service of the following groups */
        uint8_t save = u->group;
        for (uint8_t r = 0; r < ix->n_rings; r++) {
            int k = next_in_group(u, r, u->ring[r].k);
            for (uint8_t j = 1; k < 0 && j < u->n_groups; j++) {
                u->group = (uint8_t)((save + j) % u->n_groups);
                k = next_in_group(u, r, -1);
            }
            if (k >= 0)
                next |= pbit(u->rg_ph[r][u->group][k]);
            u->group = save;
        }
    }
    st->reds = sf_unit_mask_to_no(u, reds);
    st->yellows = sf_unit_mask_to_no(u, yel);
    st->greens = sf_unit_mask_to_no(u, grn);
    st->dont_walks = sf_unit_mask_to_no(u, dw);
    st->ped_clears = sf_unit_mask_to_no(u, pc);
    st->walks = sf_unit_mask_to_no(u, wk);
    st->veh_calls = sf_unit_mask_to_no(u, u->veh_call);
    st->ped_calls = sf_unit_mask_to_no(u, u->ped_call);
    st->phase_on = sf_unit_mask_to_no(u, on);
    st->phase_next = sf_unit_mask_to_no(u, next);
    st->hold = sf_unit_mask_to_no(u, u->hold);
    st->force_off = sf_unit_mask_to_no(u, u->force_off);
    st->omit = sf_unit_mask_to_no(u, u->omit);

    st->n_sg = ix->n_sg;
    for (uint8_t i = 0; i < ix->n_sg; i++) {
        st->sg_out[i] = u->out[i];
        st->sg_lamp[i] = lamp_code(u->out[i]);
        uint16_t left = 0;
        if (u->state == ST_RUN) {
            int p = ix->sg[i].phase_idx;
            const sf_ring_t *rg = &u->ring[phase(u, p)->ring - 1];
            bool ped = ix->sg[i].kind == SF_SG_PEDESTRIAN;
            if (rg->ph == p && rg->iv == IV_GREEN) {
                if (!ped)
                    left = green_left(u, rg);
                else if (rg->ped == PED_WALK)
                    left = (uint16_t)(rg->walk - rg->ped_t);
                else if (rg->ped == PED_CLEAR)
                    left = (uint16_t)(rg->pclr - rg->ped_t);
            } else if (rg->ph == p && rg->iv == IV_YELLOW && !ped) {
                left = (uint16_t)(rg->len - rg->t);
            }
        } else if (u->state == ST_START_FLASH) {
            left = u->st_t < u->cfg.startup_flash_ds ? (uint16_t)(u->cfg.startup_flash_ds - u->st_t)
                                                     : 0;
        }
        st->sg_remaining_ds[i] = left;
    }
    uint8_t sg[2];
    uint8_t f = sf_monitor_fault(u->mon, sg);
    st->fault_latched = f != SF_FAULT_NONE;
    st->fault_code = f ? f : (u->fallback ? SF_FAULT_COMMS : SF_FAULT_NONE);
    st->fault_sg[0] = sg[0];
    st->fault_sg[1] = sg[1];
    st->heartbeat_echo = u->hb_value;
    st->heartbeat_age_ds = u->hb_age;
    st->n_det = ix->n_det;
    st->det_presence = u->det;
    st->det_external = u->det_ext_on;
    st->det_input = u->det_ext;
    st->prio_lockout_ds = u->lockout;
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        const sf_prio_t *q = &u->prio[i];
        sf_prio_status_t *o = &st->prio[i];
        o->id = q->id;
        o->level = q->level;
        o->phase_no = q->id ? ix->phases[q->ph].id : 0;
        o->state = q->state;
        o->reason = q->reason;
        /* 4: early green that skipped a phase (phase skip) */
        o->strategy = q->skipped && q->strategy == 2 ? 4 : q->strategy;
        o->eta_ds = q->eta;
        o->age_ds = q->age;
    }
}
