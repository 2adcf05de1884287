/* unit/unit.c — the signal unit's construction, validation and commands.
 *
 * Every command validates on a copy (or before touching anything) and either applies
 * whole or returns -1 with errno: a refusal changes nothing. Changes that affect the
 * running control (mode, plan, timing of the running plan) are only recorded here; the
 * engine applies them at its next safe point.
 */
#include "unit_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *sf_unit_strerror(int errnum)
{
    switch (errnum) {
    case SF_EUNSAFE:
        return "timing below a safety minimum";
    case SF_EMODE:
        return "command not allowed in the current control mode";
    case SF_ECONFLICT:
        return "plan would run conflicting phases green together";
    case SF_ESPLIT:
        return "split below min green + yellow + red clear (or pedestrian timing)";
    case SF_ECYCLE:
        return "ring splits do not sum to the cycle or barriers do not line up";
    case SF_ENOPLAN:
        return "no such plan stored in the unit";
    case SF_EFULL:
        return "priority request table full";
    case SF_EFAULTED:
        return "refused while a monitor fault is latched";
    default:
        return strerror(errnum);
    }
}

void sf_unit_config_default(sf_unit_config_t *cfg, const sf_intersection_t *ix)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->heartbeat_timeout_ds = 50;
    cfg->startup_flash_ds = 100;
    cfg->startup_all_red_ds = 50;
    cfg->initial_mode = SF_UMODE_FIXED;
    if (ix) {
        if (ix->strategy == SF_STRAT_ACTUATED)
            cfg->initial_mode = SF_UMODE_ACTUATED;
        else if (ix->strategy == SF_STRAT_COORDINATED || ix->strategy == SF_STRAT_ADAPTIVE)
            cfg->initial_mode = SF_UMODE_COORDINATED; /* SCATS-like adapts coordinated plans */
    }
    cfg->initial_plan = 0;
    cfg->correction = SF_CORRECT_SHORTWAY;
    cfg->correction_pct = 20;
    cfg->priority_enabled = true;
    cfg->max_extension_ds = 150;
    cfg->max_early_green_ds = 150;
    cfg->lockout_ds = 600;
    cfg->det_interval_ds = 600;
}

static uint16_t secs_to_ds(float s, uint16_t fallback)
{
    if (!(s >= 0.0f) || s > 6553.0f)
        return fallback;
    return (uint16_t)(s * 10.0f + 0.5f);
}

void sf_unit_config_from_control(sf_unit_config_t *cfg, const sf_control_t *ctl)
{
    if (!cfg || !ctl)
        return;
    cfg->heartbeat_timeout_ds = secs_to_ds(ctl->heartbeat_timeout_s, cfg->heartbeat_timeout_ds);
    cfg->priority_enabled = ctl->priority.enabled;
    cfg->max_extension_ds = secs_to_ds(ctl->priority.max_extension_s, cfg->max_extension_ds);
    cfg->max_early_green_ds = secs_to_ds(ctl->priority.max_early_green_s, cfg->max_early_green_ds);
    cfg->lockout_ds = secs_to_ds(ctl->priority.lockout_s, cfg->lockout_ds);
}

uint16_t sf_unit_min_service(const sf_phase_t *ph)
{
    uint16_t ped = ph->walk_ds ? (uint16_t)(ph->walk_ds + ph->ped_clear_ds) : 0;
    return ph->min_green_ds > ped ? ph->min_green_ds : ped;
}

uint16_t sf_unit_mask_to_no(const sf_unit_t *u, uint16_t idx_mask)
{
    uint16_t m = 0;
    for (uint8_t i = 0; i < u->ix.n_phases; i++)
        if (idx_mask >> i & 1u)
            m |= (uint16_t)(1u << (u->ix.phases[i].id - 1));
    return m;
}

int sf_unit_mask_from_no(const sf_unit_t *u, uint16_t no_mask, uint16_t *idx_mask)
{
    uint16_t m = 0;
    for (uint8_t b = 0; b < 16; b++) {
        if (!(no_mask >> b & 1u))
            continue;
        int8_t i = u->idx_of_no[b + 1];
        if (i < 0) {
            errno = EINVAL;
            return -1;
        }
        m |= (uint16_t)(1u << i);
    }
    *idx_mask = m;
    return 0;
}

/* Check one phase's timings against the safety ranges. */
static int check_phase(const sf_phase_t *ph)
{
    if (ph->min_green_ds > 2550 || ph->passage_ds > 255 || ph->max1_ds > 2550 ||
        ph->max2_ds > 2550 || ph->yellow_ds > 60 || ph->walk_ds > 600 || ph->ped_clear_ds > 600)
        return EINVAL;
    if (ph->min_green_ds < 50 || ph->yellow_ds < 30 || ph->red_clear_ds > 60 ||
        ph->max1_ds < ph->min_green_ds || ph->max2_ds < ph->min_green_ds)
        return SF_EUNSAFE;
    if (ph->recall > SF_RECALL_PED)
        return EINVAL;
    return 0;
}

/* Validate plan p against the layout of u and the timings of ix (which may be a
 * candidate copy). 0 or an errno value. */
int sf_unit_validate_plan(const sf_unit_t *u, const sf_intersection_t *ix, const sf_plan_t *p)
{
    if (p->id < 1 || p->id > SF_MAX_PLANS || p->cycle_ds == 0 || p->offset_ds >= p->cycle_ds ||
        p->force_mode > SF_FORCE_FLOATING)
        return EINVAL;
    for (uint8_t i = 0; i < SF_MAX_PHASES; i++) {
        if (p->split_mode[i] > SF_SPLIT_OMIT)
            return EINVAL;
        bool used = i < ix->n_phases && u->group_of[i] != 0xFF;
        if (!used && (p->split_ds[i] || (p->coord_phase_mask >> i & 1u)))
            return EINVAL;
    }
    bool any = false;
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        if (!p->split_ds[i])
            continue;
        any = true;
        const sf_phase_t *ph = &ix->phases[i];
        if (p->split_ds[i] < sf_unit_min_service(ph) + ph->yellow_ds + ph->red_clear_ds)
            return SF_ESPLIT;
    }
    if (!any)
        return EINVAL;
    for (uint8_t a = 0; a < ix->n_phases; a++) {
        if (!(p->coord_phase_mask >> a & 1u))
            continue;
        if (!p->split_ds[a] || p->split_mode[a] == SF_SPLIT_OMIT)
            return SF_ESPLIT;
        for (uint8_t b = (uint8_t)(a + 1); b < ix->n_phases; b++)
            if ((p->coord_phase_mask >> b & 1u) && !ix->concurrent[a][b])
                return SF_ECONFLICT;
    }
    /* Barriers line up: every ring with phases in a group gives it the same time, and
     * the groups fill the cycle. */
    uint32_t total = 0;
    for (uint8_t g = 0; g < u->n_groups; g++) {
        int32_t len = -1;
        for (uint8_t r = 0; r < ix->n_rings; r++) {
            if (!u->rg_n[r][g])
                continue;
            uint32_t s = 0;
            for (uint8_t k = 0; k < u->rg_n[r][g]; k++)
                s += p->split_ds[u->rg_ph[r][g][k]];
            if (len >= 0 && (uint32_t)len != s)
                return SF_ECYCLE;
            len = (int32_t)s;
        }
        total += (uint32_t)(len < 0 ? 0 : len);
    }
    if (total != p->cycle_ds)
        return SF_ECYCLE;
    return 0;
}

/* Derive the ring / barrier-group layout of ix into u. 0 or EINVAL. */
static int derive_layout(sf_unit_t *u)
{
    const sf_intersection_t *ix = &u->ix;
    if (ix->n_phases < 1 || ix->n_phases > SF_MAX_PHASES || ix->n_rings < 1 ||
        ix->n_rings > SF_MAX_RINGS || ix->n_barriers < 1 || ix->n_barriers > SF_MAX_BARRIERS ||
        ix->n_sg > SF_MAX_SG || ix->n_det > SF_MAX_DET || ix->n_plans < 1 ||
        ix->n_plans > SF_MAX_PLANS || ix->n_schedule > SF_MAX_SCHEDULE ||
        ix->local_plan_idx >= ix->n_plans)
        return EINVAL;
    memset(u->idx_of_no, -1, sizeof u->idx_of_no);
    for (uint8_t i = 0; i < ix->n_phases; i++) {
        const sf_phase_t *ph = &ix->phases[i];
        if (ph->id < 1 || ph->id > SF_MAX_PHASES || u->idx_of_no[ph->id] >= 0 || ph->ring < 1 ||
            ph->ring > ix->n_rings)
            return EINVAL;
        u->idx_of_no[ph->id] = (int8_t)i;
        int rc = check_phase(ph);
        if (rc)
            return rc;
    }
    /* group of each phase: the one barrier mask that holds it */
    uint8_t bgroup[SF_MAX_PHASES];
    memset(bgroup, 0xFF, sizeof bgroup);
    for (uint8_t k = 0; k < ix->n_barriers; k++)
        for (uint8_t i = 0; i < ix->n_phases; i++)
            if (ix->barrier_mask[k] >> i & 1u) {
                if (bgroup[i] != 0xFF)
                    return EINVAL;
                bgroup[i] = k;
            }
    /* service order of groups: first appearance along ring 1, then the others */
    uint8_t pos_of[SF_MAX_BARRIERS]; /* barrier index -> service position */
    uint8_t n = 0;
    memset(pos_of, 0xFF, sizeof pos_of);
    bool seen[SF_MAX_PHASES] = {false};
    for (uint8_t r = 0; r < ix->n_rings; r++) {
        if (ix->ring_seq_len[r] > SF_MAX_PHASES)
            return EINVAL;
        for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++) {
            uint8_t p = ix->ring_seq[r][k];
            if (p >= ix->n_phases || seen[p] || ix->phases[p].ring != r + 1 || bgroup[p] == 0xFF)
                return EINVAL;
            seen[p] = true;
            if (pos_of[bgroup[p]] == 0xFF) {
                pos_of[bgroup[p]] = n++;
            }
        }
    }
    if (n == 0)
        return EINVAL;
    u->n_groups = n;
    memset(u->group_of, 0xFF, sizeof u->group_of);
    memset(u->rg_n, 0, sizeof u->rg_n);
    for (uint8_t r = 0; r < ix->n_rings; r++)
        for (uint8_t k = 0; k < ix->ring_seq_len[r]; k++) {
            uint8_t p = ix->ring_seq[r][k];
            uint8_t g = pos_of[bgroup[p]];
            u->group_of[p] = g;
            u->rg_ph[r][g][u->rg_n[r][g]++] = p;
        }
    /* The engine runs phases of one group in different rings together: the matrices
     * must allow exactly that, or the monitor would trip on a correct engine. */
    for (uint8_t a = 0; a < ix->n_phases; a++)
        for (uint8_t b = 0; b < ix->n_phases; b++) {
            if (a == b || u->group_of[a] == 0xFF || u->group_of[b] == 0xFF)
                continue;
            bool together =
                u->group_of[a] == u->group_of[b] && ix->phases[a].ring != ix->phases[b].ring;
            if (together && !ix->concurrent[a][b])
                return EINVAL;
        }
    for (uint8_t i = 0; i < ix->n_sg; i++) {
        if (ix->sg[i].kind > SF_SG_PEDESTRIAN || ix->sg[i].phase_idx >= ix->n_phases)
            return EINVAL;
        for (uint8_t j = 0; j < ix->n_sg; j++) {
            uint8_t a = ix->sg[i].phase_idx, b = ix->sg[j].phase_idx;
            if (ix->sg_conflict[i][j] && (a == b || ix->concurrent[a][b]))
                return EINVAL;
            if (!ix->sg_conflict[i][j] && a != b && !ix->concurrent[a][b])
                return EINVAL;
        }
    }
    for (uint8_t d = 0; d < ix->n_det; d++)
        if (ix->det[d].phase_mask >> ix->n_phases)
            return EINVAL;
    for (uint8_t s = 0; s < ix->n_schedule; s++)
        if (ix->schedule[s].plan_idx >= ix->n_plans)
            return EINVAL;
    for (uint8_t a = 0; a < ix->n_plans; a++) {
        int rc = sf_unit_validate_plan(u, ix, &ix->plans[a]);
        if (rc)
            return rc;
        for (uint8_t b = 0; b < a; b++)
            if (ix->plans[a].id == ix->plans[b].id)
                return EINVAL;
    }
    return 0;
}

static int plan_index(const sf_unit_t *u, uint8_t plan_no)
{
    for (uint8_t i = 0; i < u->ix.n_plans; i++)
        if (u->ix.plans[i].id == plan_no)
            return i;
    return -1;
}

/* The centre mode and plan a unit starts with: initial_mode, on plan index p (fixed when
 * that plan has no coordinated phase). */
static void start_plan(sf_unit_t *u, uint8_t p)
{
    u->mode_cmd = (uint8_t)u->cfg.initial_mode;
    u->plan_sel = p;
    if (u->mode_cmd == SF_UMODE_COORDINATED && !u->ix.plans[p].coord_phase_mask)
        u->mode_cmd = SF_UMODE_FIXED;
}

sf_unit_t *sf_unit_new(const sf_intersection_t *ix, const sf_unit_config_t *cfg)
{
    if (!ix) {
        errno = EINVAL;
        return NULL;
    }
    sf_unit_t *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->ix = *ix;
    if (cfg)
        u->cfg = *cfg;
    else
        sf_unit_config_default(&u->cfg, ix);
    int rc = derive_layout(u);
    if (rc || u->cfg.initial_mode < SF_UMODE_FIXED || u->cfg.initial_mode > SF_UMODE_LOCAL ||
        u->cfg.correction > SF_CORRECT_DWELL || u->cfg.correction_pct > 50 ||
        (u->cfg.initial_plan && plan_index(u, u->cfg.initial_plan) < 0))
        goto fail;
    u->mon = sf_monitor_new(&u->ix);
    if (!u->mon)
        goto fail;
    start_plan(u, u->cfg.initial_plan ? (uint8_t)plan_index(u, u->cfg.initial_plan)
                                      : sf_intersection_plan_at(&u->ix, 0));
    u->start_known = u->cfg.initial_plan != 0;
    sf_engine_reset(u);
    sf_engine_refresh_status(u);
    return u;
fail:
    sf_unit_destroy(&u);
    errno = EINVAL;
    return NULL;
}

void sf_unit_destroy(sf_unit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_monitor_destroy(&(*self_p)->mon);
    free(*self_p);
    *self_p = NULL;
}

void sf_unit_set_hooks(sf_unit_t *u, const sf_unit_hooks_t *hooks)
{
    if (!u)
        return;
    if (hooks)
        u->hooks = *hooks;
    else
        memset(&u->hooks, 0, sizeof u->hooks);
}

const sf_intersection_t *sf_unit_intersection(const sf_unit_t *u)
{
    return u ? &u->ix : NULL;
}

int sf_unit_phase_index(const sf_unit_t *u, uint8_t phase_no)
{
    if (!u || phase_no < 1 || phase_no > SF_MAX_PHASES || u->idx_of_no[phase_no] < 0) {
        errno = EINVAL;
        return -1;
    }
    return u->idx_of_no[phase_no];
}

int sf_unit_get_plan(const sf_unit_t *u, uint8_t plan_no, sf_plan_t *out)
{
    if (!u || !out || plan_no < 1 || plan_no > SF_MAX_PLANS) {
        errno = EINVAL;
        return -1;
    }
    int i = plan_index(u, plan_no);
    if (i < 0) {
        errno = SF_ENOPLAN;
        return -1;
    }
    *out = u->ix.plans[i];
    return 0;
}

int sf_unit_set_clock(sf_unit_t *u, uint32_t tod_ds)
{
    if (!u || tod_ds >= 864000u) {
        errno = EINVAL;
        return -1;
    }
    u->tod_ds = tod_ds;
    u->clock_set = true;
    u->st.tod_ds = tod_ds;
    if (!u->start_known) {
        /* initial_plan 0 = the schedule's plan, which needs the time of day: the plan of the
         * first clock, unless the centre has chosen since (a unit made before its host knows
         * the time would otherwise start on the plan the schedule runs at midnight) */
        u->start_known = true;
        start_plan(u, sf_intersection_plan_at(&u->ix, tod_ds / 10));
        sf_engine_refresh_status(u);
    }
    return 0;
}

void sf_unit_set_detectors(sf_unit_t *u, uint64_t presence)
{
    if (!u)
        return;
    uint64_t keep = u->ix.n_det >= 64 ? ~0ull : ((1ull << u->ix.n_det) - 1);
    u->det_own = presence & keep;
    if (!u->det_ext_on)
        u->det = u->det_own;
    u->st.det_presence = u->det;
}

void sf_unit_set_external_detectors(sf_unit_t *u, bool enable, uint64_t presence)
{
    if (!u)
        return;
    uint64_t keep = u->ix.n_det >= 64 ? ~0ull : ((1ull << u->ix.n_det) - 1);
    u->det_ext = presence & keep;
    u->det_ext_on = enable;
    u->det = enable ? u->det_ext : u->det_own;
    u->st.det_presence = u->det;
    u->st.det_external = enable;
    u->st.det_input = u->det_ext;
}

int sf_unit_heartbeat(sf_unit_t *u, uint16_t value)
{
    if (!u) {
        errno = EINVAL;
        return -1;
    }
    u->hb_value = value;
    u->hb_age = 0;
    u->fallback = false;
    sf_engine_refresh_status(u);
    return 0;
}

static bool plan_has_coord(const sf_unit_t *u, uint8_t plan_idx)
{
    return u->ix.plans[plan_idx].coord_phase_mask != 0;
}

int sf_unit_command_mode(sf_unit_t *u, sf_unit_mode_t mode)
{
    if (!u || mode < SF_UMODE_FIXED || mode > SF_UMODE_LOCAL) {
        errno = EINVAL;
        return -1;
    }
    if (u->state == ST_FAULT) {
        errno = SF_EFAULTED;
        return -1;
    }
    if (mode == SF_UMODE_COORDINATED && !plan_has_coord(u, u->plan_sel)) {
        errno = SF_EMODE;
        return -1;
    }
    u->mode_cmd = (uint8_t)mode;
    u->start_known = true;
    if (mode == SF_UMODE_COORDINATED) {
        /* the coordinator owns holds and force-offs */
        u->hold = 0;
        u->force_off = 0;
    }
    sf_engine_refresh_status(u);
    return 0;
}

int sf_unit_select_plan(sf_unit_t *u, uint8_t plan_no)
{
    if (!u || plan_no < 1 || plan_no > SF_MAX_PLANS) {
        errno = EINVAL;
        return -1;
    }
    int i = plan_index(u, plan_no);
    if (i < 0) {
        errno = SF_ENOPLAN;
        return -1;
    }
    if (u->mode_cmd == SF_UMODE_COORDINATED && !plan_has_coord(u, (uint8_t)i)) {
        errno = SF_EMODE;
        return -1;
    }
    u->plan_sel = (uint8_t)i;
    u->start_known = true;
    sf_engine_refresh_status(u);
    return 0;
}

/* Replace or add plan p after validation; the engine picks up a change of the running
 * plan at its next safe point (it re-derives coordination from ix.plans there). */
int sf_unit_write_plan(sf_unit_t *u, const sf_plan_t *plan)
{
    if (!u || !plan) {
        errno = EINVAL;
        return -1;
    }
    int rc = sf_unit_validate_plan(u, &u->ix, plan);
    if (rc) {
        errno = rc;
        return -1;
    }
    int i = plan_index(u, plan->id);
    if (i < 0) {
        if (u->ix.n_plans >= SF_MAX_PLANS) {
            errno = EINVAL;
            return -1;
        }
    } else if (!plan->coord_phase_mask && u->mode_cmd == SF_UMODE_COORDINATED &&
               (uint8_t)i == u->plan_sel) {
        errno = SF_EMODE;
        return -1;
    }
    if (i < 0)
        i = u->ix.n_plans++;
    u->ix.plans[i] = *plan;
    sf_engine_refresh_status(u);
    return 0;
}

int sf_unit_get_timing(const sf_unit_t *u, uint8_t phase_no, sf_timing_field_t field)
{
    int i = sf_unit_phase_index(u, phase_no);
    if (i < 0 || field >= SF_T_N) {
        errno = EINVAL;
        return -1;
    }
    const sf_phase_t *ph = &u->ix.phases[i];
    const uint16_t v[SF_T_N] = {ph->min_green_ds, ph->passage_ds,   ph->max1_ds, ph->max2_ds,
                                ph->yellow_ds,    ph->red_clear_ds, ph->walk_ds, ph->ped_clear_ds};
    return v[field];
}

int sf_unit_set_timing(sf_unit_t *u, uint8_t phase_no, sf_timing_field_t field, uint16_t value)
{
    int i = sf_unit_phase_index(u, phase_no);
    if (i < 0 || field >= SF_T_N) {
        errno = EINVAL;
        return -1;
    }
    sf_phase_t ph = u->ix.phases[i];
    uint16_t *f[SF_T_N] = {&ph.min_green_ds, &ph.passage_ds,   &ph.max1_ds, &ph.max2_ds,
                           &ph.yellow_ds,    &ph.red_clear_ds, &ph.walk_ds, &ph.ped_clear_ds};
    *f[field] = value;
    int rc = check_phase(&ph);
    if (rc) {
        errno = rc;
        return -1;
    }
    /* every stored plan must still fit: validate against a candidate copy */
    sf_phase_t old = u->ix.phases[i];
    u->ix.phases[i] = ph;
    for (uint8_t k = 0; k < u->ix.n_plans && !rc; k++)
        rc = sf_unit_validate_plan(u, &u->ix, &u->ix.plans[k]);
    if (rc) {
        u->ix.phases[i] = old;
        errno = rc;
        return -1;
    }
    sf_engine_refresh_status(u);
    return 0;
}

void sf_unit_get_coord(const sf_unit_t *u, sf_coord_t *out)
{
    if (!u || !out)
        return;
    memset(out, 0, sizeof *out);
    const sf_plan_t *p = &u->ix.plans[u->plan];
    out->cycle_ds = p->cycle_ds;
    out->offset_ds = p->offset_ds;
    for (uint8_t i = 0; i < u->ix.n_phases; i++)
        out->split_ds[u->ix.phases[i].id - 1] = p->split_ds[i];
}

int sf_unit_set_coord(sf_unit_t *u, const sf_coord_t *coord)
{
    if (!u || !coord) {
        errno = EINVAL;
        return -1;
    }
    sf_plan_t p = u->ix.plans[u->plan];
    p.cycle_ds = coord->cycle_ds;
    p.offset_ds = coord->offset_ds;
    memset(p.split_ds, 0, sizeof p.split_ds);
    for (uint8_t n = 0; n < SF_MAX_PHASES; n++) {
        if (!coord->split_ds[n])
            continue;
        int8_t i = u->idx_of_no[n + 1];
        if (i < 0) {
            errno = EINVAL;
            return -1;
        }
        p.split_ds[i] = coord->split_ds[n];
    }
    return sf_unit_write_plan(u, &p);
}

int sf_unit_set_sync(sf_unit_t *u, uint32_t sync_ref_ds)
{
    if (!u || sync_ref_ds >= 864000u) {
        errno = EINVAL;
        return -1;
    }
    u->sync_ref_ds = sync_ref_ds;
    sf_engine_refresh_status(u);
    return 0;
}

int sf_unit_phase_control(sf_unit_t *u, sf_phase_ctl_t which, uint16_t mask)
{
    uint16_t m;
    if (!u || which >= SF_CTL_N || sf_unit_mask_from_no(u, mask, &m) < 0) {
        errno = EINVAL;
        return -1;
    }
    bool coord = u->state == ST_RUN ? u->run_mode == SF_UMODE_COORDINATED
                                    : u->mode_cmd == SF_UMODE_COORDINATED;
    if ((which == SF_CTL_HOLD || which == SF_CTL_FORCE_OFF) && m && coord) {
        errno = SF_EMODE;
        return -1;
    }
    switch (which) {
    case SF_CTL_VEH_CALL:
        u->veh_call |= m;
        break;
    case SF_CTL_PED_CALL:
        for (uint8_t i = 0; i < u->ix.n_phases; i++)
            if ((m >> i & 1u) && !u->ix.phases[i].walk_ds)
                m &= (uint16_t) ~(1u << i); /* no pedestrian movement: nothing to call */
        u->ped_call |= m;
        u->veh_call |= m;
        break;
    case SF_CTL_HOLD:
        u->hold = m;
        break;
    case SF_CTL_FORCE_OFF:
        u->force_off = m;
        break;
    case SF_CTL_OMIT:
        u->omit = m;
        break;
    default:
        break;
    }
    sf_engine_refresh_status(u);
    return 0;
}

int sf_unit_priority(sf_unit_t *u, const sf_prio_request_t *req)
{
    if (!u || !req) {
        errno = EINVAL;
        return -1;
    }
    int rc = sf_prio_submit(u, req);
    if (rc == 0)
        sf_engine_refresh_status(u);
    return rc;
}

int sf_unit_fault_reset(sf_unit_t *u)
{
    if (!u) {
        errno = EINVAL;
        return -1;
    }
    if (u->state != ST_FAULT)
        return 0;
    sf_monitor_reset(u->mon);
    sf_engine_reset(u);
    sf_engine_refresh_status(u);
    return 0;
}

const sf_unit_status_t *sf_unit_status(const sf_unit_t *u)
{
    return u ? &u->st : NULL;
}
