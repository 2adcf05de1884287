/* cli/ctl_part.c — the controller as a lockstep participant's work (cli/ctl_part.h). */
#include "ctl_part.h"

int sf_ctl_part_on_msg(void *arg, const sf_bus_rx_t *rx)
{
    sf_ctl_part_t *c = arg;
    if (rx->type == SF_BUS_CMD) {
        (void)sf_controller_operator(c->ctl, rx->msg);
        return 0;
    }
    if (rx->type != SF_BUS_TRANSIT_IN && rx->type != SF_BUS_TRANSIT_OUT)
        return 0;
    c->transit_msgs++;
    if (sf_controller_transit_msg(c->ctl, rx->msg) != 0)
        c->transit_refused++;
    return 0;
}

int sf_ctl_part_on_step(void *arg, const Sfbus__Step *st, void *pub)
{
    (void)pub;
    sf_ctl_part_t *c = arg;
    return sf_controller_step(c->ctl, st->k, st->tod_ds);
}

json_t *sf_ctl_part_report(const sf_ctl_part_t *c)
{
    json_t *r = sf_controller_report(c->ctl);
    if (r)
        json_object_set_new(r, "transit_messages",
                            json_pack("{s:I, s:I}", "taken", (json_int_t)c->transit_msgs, "refused",
                                      (json_int_t)c->transit_refused));
    return r;
}
