/* view/queues.c — queue lengths per lane from a snapshot (see queues.h). */
#include "queues.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sf_queues {
    const sf_scenario_t *sc; /* not owned */
    uint32_t *lane_base;     /* per link: slot of its lane 0 */
    uint32_t n_slots;        /* lanes of all links */
    uint32_t *bucket;        /* n_slots + 1 bucket bounds */
    uint32_t *order;         /* vehicle indices grouped by lane slot */
    size_t cap_order;        /* capacity of order */
    float *queue_m;          /* per lane slot, m */
};

sf_queues_t *sf_queues_new(const sf_scenario_t *sc)
{
    if (!sc || (sc->n_links && !sc->links)) {
        errno = EINVAL;
        return NULL;
    }
    sf_queues_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->sc = sc;
    q->lane_base = calloc(sc->n_links + 1, sizeof *q->lane_base);
    if (!q->lane_base)
        goto fail;
    for (uint32_t li = 0; li < sc->n_links; li++) {
        q->lane_base[li] = q->n_slots;
        q->n_slots += sc->links[li].n_lanes <= SF_MAX_LANES ? sc->links[li].n_lanes : 0;
    }
    q->bucket = calloc(q->n_slots + 2, sizeof *q->bucket);
    q->queue_m = calloc(q->n_slots + 1, sizeof *q->queue_m);
    if (!q->bucket || !q->queue_m)
        goto fail;
    return q;
fail:
    sf_queues_destroy(&q);
    errno = ENOMEM;
    return NULL;
}

void sf_queues_destroy(sf_queues_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_queues_t *q = *self_p;
    free(q->lane_base);
    free(q->bucket);
    free(q->order);
    free(q->queue_m);
    free(q);
    *self_p = NULL;
}

static int slot_of(const sf_queues_t *q, const sf_vehicle_snap_t *v)
{
    if (v->link_idx >= q->sc->n_links)
        return -1;
    const sf_link_t *l = &q->sc->links[v->link_idx];
    if (l->n_lanes > SF_MAX_LANES || v->lane >= l->n_lanes)
        return -1;
    return (int)(q->lane_base[v->link_idx] + v->lane);
}

int sf_queues_update(sf_queues_t *q, const sf_vehicle_snap_t *veh, size_t n)
{
    if (!q || (n && !veh)) {
        errno = EINVAL;
        return -1;
    }
    const sf_scenario_t *sc = q->sc;
    memset(q->bucket, 0, (q->n_slots + 2) * sizeof *q->bucket);
    memset(q->queue_m, 0, (q->n_slots + 1) * sizeof *q->queue_m);
    if (n == 0)
        return 0;
    if (n > q->cap_order) {
        uint32_t *o = realloc(q->order, n * sizeof *o);
        if (!o) {
            errno = ENOMEM;
            return -1;
        }
        q->order = o;
        q->cap_order = n;
    }
    /* counting sort by lane slot: bucket[s + 1] counts, prefix sums give starts */
    for (size_t i = 0; i < n; i++) {
        int s = slot_of(q, &veh[i]);
        if (s >= 0)
            q->bucket[s + 1]++;
    }
    for (uint32_t s = 0; s < q->n_slots; s++)
        q->bucket[s + 1] += q->bucket[s];
    uint32_t *fill = q->bucket; /* bucket[s] advances to the end of slot s */
    for (size_t i = 0; i < n; i++) {
        int s = slot_of(q, &veh[i]);
        if (s >= 0)
            q->order[fill[s]++] = (uint32_t)i;
    }
    /* now bucket[s] = end of slot s, and slot s starts at bucket[s - 1] (0 for s = 0) */
    for (uint32_t li = 0; li < sc->n_links; li++) {
        const sf_link_t *l = &sc->links[li];
        if (l->to_kind != SF_NODE_INTERSECTION || l->n_lanes > SF_MAX_LANES)
            continue;
        for (uint8_t ln = 0; ln < l->n_lanes; ln++) {
            uint32_t s = q->lane_base[li] + ln;
            uint32_t b0 = s == 0 ? 0 : q->bucket[s - 1], m = q->bucket[s] - b0;
            uint32_t *o = q->order + b0;
            /* front first (insertion sort: the sim sends lanes in this order already) */
            for (uint32_t i = 1; i < m; i++) {
                uint32_t key = o[i], j = i;
                while (j > 0 && veh[o[j - 1]].pos_m < veh[key].pos_m) {
                    o[j] = o[j - 1];
                    j--;
                }
                o[j] = key;
            }
            float limit = l->length_m - SF_QUEUE_FRONT_M, tail = l->length_m;
            bool any = false;
            for (uint32_t i = 0; i < m; i++) {
                const sf_vehicle_snap_t *v = &veh[o[i]];
                if (!(v->speed_mps < SF_QUEUE_STOP_MPS) || v->pos_m < limit)
                    break;
                uint8_t t = v->type < SF_VEH_N ? v->type : 0;
                float vl = sc->demand.vtype[t].length_m > 0 ? sc->demand.vtype[t].length_m : 4.5f;
                tail = v->pos_m - vl;
                limit = tail - SF_QUEUE_GAP_M;
                any = true;
            }
            q->queue_m[s] = any ? fmaxf(l->length_m - tail, 0) : 0;
        }
    }
    return 0;
}

float sf_queues_lane(const sf_queues_t *q, uint32_t link, uint8_t lane)
{
    if (!q || link >= q->sc->n_links || lane >= q->sc->links[link].n_lanes ||
        q->sc->links[link].n_lanes > SF_MAX_LANES)
        return 0;
    return q->queue_m[q->lane_base[link] + lane];
}

float sf_queues_link(const sf_queues_t *q, uint32_t link)
{
    float best = 0;
    if (!q || link >= q->sc->n_links)
        return 0;
    for (uint8_t ln = 0; ln < q->sc->links[link].n_lanes && ln < SF_MAX_LANES; ln++)
        best = fmaxf(best, sf_queues_lane(q, link, ln));
    return best;
}
