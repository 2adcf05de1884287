/* unit/priority.c — transit signal priority service.
 *
 * One request is served at a time (the best queued: lowest level number, then the
 * earliest check-in). Granting starts the lockout; while the lockout runs, the next
 * request is refused (SF_PRIO_R_LOCKOUT). Strategies:
 *  - green extension: the requested phase is green; the engine holds it beyond its
 *    normal end by at most max_extension (and, coordinated, at most the slack every
 *    other phase has above its minimum service, so their force-offs still fit);
 *  - early green (red truncation): greens that conflict with the requested phase end as
 *    soon as they can, but only once the time they lose is within max_early_green;
 *    they always keep min green, walk, ped clearance, and the full yellow and red clear
 *    (the engine's can_end and interval timers are not bypassed: this module only asks).
 *  - phase insertion (coordinated and fixed-time control): when the requested phase's
 *    ring has already passed it in the barrier group being served (a bus for the lead
 *    left that arrives just after its green), the phase is served once more before the
 *    barrier instead of a cycle later: the ring's phase after it ends early as for an
 *    early green (within max_early_green, keeping its min green and clearances), the
 *    requested phase follows with its min green and the extension hold, the other rings
 *    wait at the barrier with their concurrent greens, and the next group starts that
 *    much later (its phases keep their min service or are skipped by the usual
 *    force-off rule). At most one insertion per group visit, and only for a bus due
 *    within the inserted green (no empty insertion).
 *  - phase skip (coordinated and actuated control): while a late bus (level 1-2) waits
 *    for an early green of its phase, a called phase before it in its ring and barrier
 *    group is passed over for this group visit, as a phase with no call is: it is never
 *    started, so nothing is shortened. Only a non-coordinated phase with no pedestrian
 *    call, only for a coordinated requested phase in coordinated control (always served
 *    after it), not a phase skipped at its previous visit (it is served in between), and
 *    only for a bus due before even a truncated service of that phase could be over (no
 *    empty skip). Its call stays for the next visit.
 * Once the requested phase is green it is held as for an extension until check-out.
 *
 * The ETA (updated by later check-ins of the same id) decides two things:
 *  - an extension is only worth holding while the bus can still reach the stop line
 *    within the extension left: a green is not held for a bus whose ETA is beyond it
 *    (a bus at the back of a queue), so no green is spent empty;
 *  - a green that ends before the bus checked out, while its ETA still says it is
 *    coming (ETA > 0: it is queued or held upstream), does not end the request: it is
 *    served again as early green for the next green of its phase (at most
 *    SF_PRIO_MAX_SERVICES services in all). With the ETA run out the bus is not
 *    coming as announced and the request expires.
 * A request whose ETA has run out and whose bus has sent nothing (no check-in, no ETA
 * update) for max_extension + 60 s expires: the bus is not coming. A bus waiting at the
 * line keeps updating its ETA, so its request stays for the re-served green.
 */
#include "unit_impl.h"

#include <errno.h>
#include <string.h>

/* Services of one request: its first, and one more after a green it missed. */
#define SF_PRIO_MAX_SERVICES 2
/* Phase skip serves requests of this level or higher (1 highest): sf_tsp_level gives 2
 * to a bus late beyond twice the lateness threshold. A skipped phase's vehicles wait a
 * cycle more, so only for a bus late enough to be worth it. */
#define SF_PRIO_SKIP_LEVEL 2
/* ETA margin of a hold, 0.1 s: a bus due this much after the extension left still counts
 * (the ETA is an estimate, updated only when it drifts by several seconds). */
#define SF_PRIO_HOLD_MARGIN_DS 20

void sf_prio_clear(sf_unit_t *u)
{
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        sf_prio_t *q = &u->prio[i];
        if (q->state == SF_PRIO_ST_QUEUED || q->state == SF_PRIO_ST_ACTIVE) {
            q->state = SF_PRIO_ST_REFUSED;
            q->reason = SF_PRIO_R_MODE;
        }
    }
    u->prio_active = -1;
    u->trunc_budget = 0;
}

static bool live(const sf_prio_t *q)
{
    return q->id && (q->state == SF_PRIO_ST_QUEUED || q->state == SF_PRIO_ST_ACTIVE);
}

int sf_prio_submit(sf_unit_t *u, const sf_prio_request_t *req)
{
    if (req->id == 0 || req->level < 1 || req->level > 7 || req->phase_no < 1 ||
        req->phase_no > SF_MAX_PHASES || u->idx_of_no[req->phase_no] < 0 ||
        (req->action != SF_PRIO_CHECK_IN && req->action != SF_PRIO_CHECK_OUT)) {
        errno = EINVAL;
        return -1;
    }
    uint8_t ph = (uint8_t)u->idx_of_no[req->phase_no];
    int slot = -1;
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++)
        if (live(&u->prio[i]) && u->prio[i].id == req->id)
            slot = i;
    if (req->action == SF_PRIO_CHECK_OUT) {
        if (slot < 0) {
            /* A request this unit ended on its own (expired when its green ran out
             * before the bus passed, or refused) without the centre knowing yet: the bus
             * leaving is no error, and the slot keeps its outcome. A second check-out
             * (served, cancelled) or an id never seen is refused. */
            for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++)
                if (u->prio[i].id == req->id && (u->prio[i].state == SF_PRIO_ST_EXPIRED ||
                                                 u->prio[i].state == SF_PRIO_ST_REFUSED))
                    return 0;
            errno = EINVAL;
            return -1;
        }
        sf_prio_t *q = &u->prio[slot];
        bool served = q->was_green || sf_engine_phase_green(u, q->ph);
        q->state = served ? SF_PRIO_ST_SERVED : SF_PRIO_ST_CANCELLED;
        q->eta = 0;
        if (u->prio_active == slot)
            u->prio_active = -1;
        return 0;
    }
    if (slot >= 0) { /* an update of a live request: new ETA and level */
        u->prio[slot].eta = req->eta_ds;
        u->prio[slot].level = req->level;
        u->prio[slot].heard = 0;
        return 0;
    }
    /* a free slot, else the oldest finished one */
    uint32_t best_seq = UINT32_MAX;
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        const sf_prio_t *q = &u->prio[i];
        if (!q->id) {
            slot = i;
            break;
        }
        if (!live(q) && q->seq < best_seq) {
            best_seq = q->seq;
            slot = i;
        }
    }
    if (slot < 0) {
        errno = SF_EFULL;
        return -1;
    }
    sf_prio_t *q = &u->prio[slot];
    memset(q, 0, sizeof *q);
    q->id = req->id;
    q->level = req->level;
    q->ph = ph;
    q->state = SF_PRIO_ST_QUEUED;
    q->eta = req->eta_ds;
    q->seq = ++u->prio_seq;
    return 0;
}

/* Whether the running control can serve phase ph at all. */
static bool phase_in_service(const sf_unit_t *u, uint8_t ph)
{
    if (u->group_of[ph] == 0xFF)
        return false;
    bool coord = u->run_mode == SF_UMODE_COORDINATED && (u->rp.coord_phase_mask >> ph & 1u);
    if (coord)
        return true;
    if (u->omit >> ph & 1u)
        return false;
    if (u->run_mode != SF_UMODE_ACTUATED &&
        (!u->rp.split_ds[ph] || u->rp.split_mode[ph] == SF_SPLIT_OMIT))
        return false;
    return true;
}

/* Green phase p's time above its min service (min green, walk + ped clearance) in its
 * split, 0 when it has none. */
static int32_t phase_slack(const sf_unit_t *u, uint8_t p)
{
    if (!u->rp.split_ds[p])
        return 0;
    const sf_phase_t *ph = &u->ix.phases[p];
    int32_t s =
        (int32_t)u->rp.split_ds[p] - ph->yellow_ds - ph->red_clear_ds - sf_unit_min_service(ph);
    return s > 0 ? s : 0;
}

uint16_t sf_prio_coord_slack(const sf_unit_t *u, uint8_t ph)
{
    uint8_t g0 = u->group_of[ph];
    uint8_t r0 = (uint8_t)(u->ix.phases[ph].ring - 1);
    if (g0 == 0xFF || r0 >= u->ix.n_rings || u->n_groups == 0)
        return 0;
    int k0 = -1;
    for (uint8_t k = 0; k < u->rg_n[r0][g0]; k++)
        if (u->rg_ph[r0][g0][k] == ph)
            k0 = k;
    if (k0 < 0)
        return 0;
    bool at_barrier = k0 + 1 == u->rg_n[r0][g0];
    int32_t lim = INT32_MAX;
    for (uint8_t r = 0; r < u->ix.n_rings; r++) {
        /* Ring r0 goes on after ph; the other rings are held only when ph ends its group
         * (the barrier waits for it), and then from the next group. */
        if (r != r0 && !at_barrier)
            continue;
        uint8_t g = g0;
        int k = r == r0 ? k0 + 1 : (int)u->rg_n[r][g0];
        int32_t sum = 0;
        bool stop = false;
        for (int n = 0; n <= SF_MAX_PHASES * SF_MAX_BARRIERS && !stop; n++) {
            if (k >= u->rg_n[r][g]) {
                g = (uint8_t)((g + 1) % u->n_groups);
                k = 0;
                continue;
            }
            uint8_t p = u->rg_ph[r][g][k++];
            sum += phase_slack(u, p);
            stop = (u->rp.coord_phase_mask >> p & 1u) != 0;
        }
        if (sum < lim)
            lim = sum;
    }
    return (uint16_t)(lim > UINT16_MAX ? UINT16_MAX : lim);
}

static uint16_t ext_limit(const sf_unit_t *u, uint8_t ph)
{
    uint16_t lim = u->cfg.max_extension_ds;
    if (u->run_mode == SF_UMODE_COORDINATED) {
        uint16_t s = sf_prio_coord_slack(u, ph);
        if (s < lim)
            lim = s;
    }
    return lim;
}

static const sf_ring_t *ring_of(const sf_unit_t *u, uint8_t ph)
{
    return &u->ring[u->ix.phases[ph].ring - 1];
}

bool sf_prio_holds(const sf_unit_t *u, uint8_t ph)
{
    if (u->prio_active < 0)
        return false;
    const sf_prio_t *q = &u->prio[u->prio_active];
    if (q->ph != ph || !sf_engine_phase_green(u, ph))
        return false;
    uint16_t used = ring_of(u, ph)->ext, lim = ext_limit(u, ph);
    if (used >= lim)
        return false;
    /* a bus that cannot arrive within the extension left is not held for */
    return (uint32_t)q->eta <= (uint32_t)(lim - used) + SF_PRIO_HOLD_MARGIN_DS;
}

void sf_prio_held(sf_unit_t *u, uint8_t ph)
{
    sf_ring_t *rg = &u->ring[u->ix.phases[ph].ring - 1];
    if (rg->ext < UINT16_MAX)
        rg->ext++;
}

/* Normal time left of the green of ring rg (what a truncation would take away). */
static uint16_t normal_left(const sf_unit_t *u, const sf_ring_t *rg)
{
    const sf_phase_t *ph = &u->ix.phases[rg->ph];
    int32_t left;
    switch (u->run_mode) {
    case SF_UMODE_FIXED:
        left = (int32_t)u->rp.split_ds[rg->ph] - ph->yellow_ds - ph->red_clear_ds - rg->t;
        break;
    case SF_UMODE_ACTUATED: {
        uint16_t mx = u->run_local ? ph->max2_ds : ph->max1_ds;
        left = (int32_t)mx - rg->max_t;
        break;
    }
    default: {
        /* Up to its force-off, but no more than its programmed split: a phase that began
         * early (the one before it gapped out, or an earlier early green) may run on to
         * its force-off, yet cutting it back to its split takes nothing from it. Without
         * this bound the lead phase after an early return absorbs the time an early
         * green has won, and the requested phase comes no sooner. */
        uint64_t fo = u->lap_zero + u->pos_f[rg->ph];
        left = fo > u->gabs ? (int32_t)(fo - u->gabs) : 0;
        int32_t split_left =
            (int32_t)u->rp.split_ds[rg->ph] - ph->yellow_ds - ph->red_clear_ds - rg->t;
        if (split_left < left)
            left = split_left;
        break;
    }
    }
    return (uint16_t)(left < 0 ? 0 : (left > UINT16_MAX ? UINT16_MAX : left));
}

int sf_prio_insertion(const sf_unit_t *u, uint8_t r, int k)
{
    if (u->prio_active < 0 || k < 0 || u->ins_visit == u->grp_visit ||
        (u->run_mode != SF_UMODE_COORDINATED && u->run_mode != SF_UMODE_FIXED))
        return -1;
    const sf_prio_t *q = &u->prio[u->prio_active];
    uint8_t g = u->group;
    if (q->state != SF_PRIO_ST_ACTIVE || q->strategy != 2 || q->had_green ||
        u->ix.phases[q->ph].ring != r + 1 || u->group_of[q->ph] != g || !phase_in_service(u, q->ph))
        return -1;
    int kk = -1;
    for (int i = 0; i < k && i < u->rg_n[r][g]; i++)
        if (u->rg_ph[r][g][i] == q->ph)
            kk = i;
    if (kk < 0)
        return -1;
    /* No empty insertion: the bus must be able to reach the inserted green, i.e. be due
     * within the clearance of the ring's phase now, the min green and the hold. */
    const sf_phase_t *ph = &u->ix.phases[q->ph];
    uint32_t reach = (uint32_t)ph->min_green_ds + ext_limit(u, q->ph) + SF_PRIO_HOLD_MARGIN_DS;
    int cur = u->ring[r].ph;
    if (cur >= 0)
        reach += (uint32_t)u->ix.phases[cur].yellow_ds + u->ix.phases[cur].red_clear_ds;
    return (uint32_t)q->eta <= reach ? kk : -1;
}

void sf_prio_inserted(sf_unit_t *u)
{
    if (u->prio_active < 0)
        return;
    u->prio[u->prio_active].strategy = 3;
    u->trunc_budget = 0;
}

bool sf_prio_skips(const sf_unit_t *u, uint8_t p)
{
    if (u->prio_active < 0 || p >= u->ix.n_phases ||
        (u->run_mode != SF_UMODE_COORDINATED && u->run_mode != SF_UMODE_ACTUATED))
        return false;
    const sf_prio_t *q = &u->prio[u->prio_active];
    /* a late bus (level 1-2), waiting for an early green of its phase */
    if (q->state != SF_PRIO_ST_ACTIVE || q->strategy != 2 || q->had_green ||
        q->level > SF_PRIO_SKIP_LEVEL || q->ph == p || u->ix.concurrent[p][q->ph])
        return false;
    bool coord = u->run_mode == SF_UMODE_COORDINATED;
    /* never a coordinated phase; in coordinated control only for a coordinated requested
     * phase, which is always served (a non-coordinated one may not fit before its
     * force-off: the skip would then give nothing) */
    if (coord && ((u->rp.coord_phase_mask >> p & 1u) || !(u->rp.coord_phase_mask >> q->ph & 1u)))
        return false;
    /* a called phase with no pedestrian call (a walk asked for is served) */
    if (!(u->veh_call >> p & 1u) || (u->ped_call >> p & 1u))
        return false;
    /* before the requested phase in its ring and barrier group */
    uint8_t g = u->group_of[p], r = (uint8_t)(u->ix.phases[p].ring - 1);
    if (g == 0xFF || g != u->group_of[q->ph] || u->ix.phases[q->ph].ring != r + 1 ||
        r >= u->ix.n_rings)
        return false;
    int kp = -1, kq = -1;
    for (uint8_t k = 0; k < u->rg_n[r][g]; k++) {
        if (u->rg_ph[r][g][k] == p)
            kp = k;
        if (u->rg_ph[r][g][k] == q->ph)
            kq = k;
    }
    if (kp < 0 || kq < 0 || kp > kq)
        return false;
    /* not twice running: served at least once since its last skip */
    uint32_t last = u->skip_visit[p];
    if (last && last != u->grp_visit && u->grp_visit - last <= u->n_groups)
        return false;
    /* no empty skip: only for a bus that would wait for p, i.e. due before even a
     * truncated p (min service and clearance) could be over */
    const sf_phase_t *ph = &u->ix.phases[p];
    uint32_t p_time = (uint32_t)sf_unit_min_service(ph) + ph->yellow_ds + ph->red_clear_ds;
    return (uint32_t)q->eta < p_time && phase_in_service(u, q->ph);
}

void sf_prio_skipped(sf_unit_t *u, uint8_t p)
{
    if (u->prio_active < 0 || p >= SF_MAX_PHASES)
        return;
    u->skip_visit[p] = u->grp_visit;
    u->prio[u->prio_active].skipped = true;
}

bool sf_prio_truncates(const sf_unit_t *u, uint8_t ph)
{
    if (u->prio_active < 0)
        return false;
    const sf_prio_t *q = &u->prio[u->prio_active];
    if (q->strategy != 2 || q->had_green || q->ph == ph || u->ix.concurrent[ph][q->ph])
        return false;
    return normal_left(u, ring_of(u, ph)) <= u->trunc_budget;
}

void sf_prio_tick(sf_unit_t *u)
{
    if (u->lockout)
        u->lockout--;
    bool serviceable = u->state == ST_RUN && !u->stopping && u->cfg.priority_enabled;
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        sf_prio_t *q = &u->prio[i];
        if (!live(q))
            continue;
        if (q->age < UINT16_MAX)
            q->age++;
        if (q->heard < UINT16_MAX)
            q->heard++;
        bool green = sf_engine_phase_green(u, q->ph);
        if (q->eta)
            q->eta--;
        if (!serviceable) {
            q->state = SF_PRIO_ST_REFUSED;
            q->reason = SF_PRIO_R_MODE;
            continue;
        }
        if (q->state == SF_PRIO_ST_ACTIVE) {
            if (green && !q->had_green) {
                q->had_green = true;
                q->was_green = true;
                u->trunc_budget = 0; /* early green done */
            }
            if (q->had_green && !green) {
                /* the green ended before the bus checked out */
                if (q->eta == 0 || q->services >= SF_PRIO_MAX_SERVICES) {
                    q->state = SF_PRIO_ST_EXPIRED;
                    continue;
                }
                /* still coming (queued): early green for the next green of its phase */
                q->services++;
                q->strategy = 2;
                q->had_green = false;
                u->trunc_budget = u->cfg.max_early_green_ds;
                u->veh_call |= (uint16_t)(1u << q->ph);
            }
        }
        /* no check-out long after the ETA: the bus is not coming. Long after its latest
         * ETA, not its first: a bus queued at the line keeps sending updates (ETA about
         * 0) while it waits for the re-served green, and is coming. */
        if (q->eta == 0 && q->heard > (uint32_t)u->cfg.max_extension_ds + 600u &&
            !(q->state == SF_PRIO_ST_ACTIVE && green))
            q->state = SF_PRIO_ST_EXPIRED;
    }
    if (u->prio_active >= 0 && !live(&u->prio[u->prio_active]))
        u->prio_active = -1;
    if (u->prio_active >= 0 || !serviceable)
        return;
    int best = -1;
    for (uint8_t i = 0; i < SF_UNIT_MAX_PRIO; i++) {
        const sf_prio_t *q = &u->prio[i];
        if (q->state != SF_PRIO_ST_QUEUED)
            continue;
        if (best < 0 || q->level < u->prio[best].level ||
            (q->level == u->prio[best].level && q->seq < u->prio[best].seq))
            best = i;
    }
    if (best < 0)
        return;
    sf_prio_t *q = &u->prio[best];
    if (u->lockout) {
        q->state = SF_PRIO_ST_REFUSED;
        q->reason = SF_PRIO_R_LOCKOUT;
        return;
    }
    if (!phase_in_service(u, q->ph)) {
        q->state = SF_PRIO_ST_REFUSED;
        q->reason = SF_PRIO_R_PHASE;
        return;
    }
    q->state = SF_PRIO_ST_ACTIVE;
    bool green = sf_engine_phase_green(u, q->ph);
    q->strategy = green ? 1 : 2;
    q->had_green = green;
    q->was_green = green;
    q->services = 1;
    u->prio_active = (int8_t)best;
    u->lockout = u->cfg.lockout_ds;
    u->trunc_budget = green ? 0 : u->cfg.max_early_green_ds;
    /* a call so the engine goes there */
    if (!green)
        u->veh_call |= (uint16_t)(1u << q->ph);
}
