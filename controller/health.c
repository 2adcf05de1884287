/* controller/health.c — comms health state machine (see health.h). */
#include "health.h"

#include <errno.h>
#include <stddef.h>

void sf_health_cfg_default(sf_health_cfg_t *cfg)
{
    if (!cfg)
        return;
    cfg->offline_after = 3;
    cfg->backoff_min_ds = 10;
    cfg->backoff_max_ds = 300;
}

int sf_health_init(sf_health_t *h, const sf_health_cfg_t *cfg)
{
    sf_health_cfg_t c;
    if (!h) {
        errno = EINVAL;
        return -1;
    }
    if (cfg)
        c = *cfg;
    else
        sf_health_cfg_default(&c);
    if (c.offline_after == 0 || c.backoff_min_ds == 0 || c.backoff_min_ds > c.backoff_max_ds) {
        errno = EINVAL;
        return -1;
    }
    *h = (sf_health_t){.cfg = c, .state = SF_LINK_UNKNOWN, .last_reply_ds = -1};
    h->backoff_ds = c.backoff_min_ds;
    return 0;
}

bool sf_health_due(const sf_health_t *h, int64_t now_ds)
{
    if (!h)
        return false;
    return h->state != SF_LINK_OFFLINE || now_ds >= h->next_try_ds;
}

sf_link_change_t sf_health_reply(sf_health_t *h, int64_t now_ds)
{
    if (!h)
        return SF_LINK_NO_CHANGE;
    sf_link_state_t was = h->state;
    h->n_polls++;
    h->missed_run = 0;
    h->last_reply_ds = now_ds;
    h->state = SF_LINK_ONLINE;
    h->backoff_ds = h->cfg.backoff_min_ds;
    h->next_try_ds = now_ds;
    if (was == SF_LINK_OFFLINE)
        h->n_reconnects++;
    return was == SF_LINK_ONLINE ? SF_LINK_NO_CHANGE : SF_LINK_WENT_ONLINE;
}

sf_link_change_t sf_health_miss(sf_health_t *h, int64_t now_ds)
{
    if (!h)
        return SF_LINK_NO_CHANGE;
    h->n_polls++;
    h->n_missed++;
    if (h->missed_run < UINT16_MAX)
        h->missed_run++;
    if (h->state == SF_LINK_OFFLINE) {
        /* A failed reconnect attempt: wait longer before the next one. */
        h->next_try_ds = now_ds + h->backoff_ds;
        h->backoff_ds =
            h->backoff_ds * 2 > h->cfg.backoff_max_ds ? h->cfg.backoff_max_ds : h->backoff_ds * 2;
        return SF_LINK_NO_CHANGE;
    }
    if (h->missed_run >= h->cfg.offline_after) {
        h->state = SF_LINK_OFFLINE;
        h->n_offline++;
        h->backoff_ds = h->cfg.backoff_min_ds;
        h->next_try_ds = now_ds + h->backoff_ds;
        h->backoff_ds =
            h->backoff_ds * 2 > h->cfg.backoff_max_ds ? h->cfg.backoff_max_ds : h->backoff_ds * 2;
        return SF_LINK_WENT_OFFLINE;
    }
    return SF_LINK_NO_CHANGE;
}

const char *sf_link_state_name(sf_link_state_t s)
{
    switch (s) {
    case SF_LINK_UNKNOWN:
        return "unknown";
    case SF_LINK_ONLINE:
        return "online";
    case SF_LINK_OFFLINE:
        return "offline";
    }
    return "?";
}
