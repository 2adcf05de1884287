/* cli/run_parts.c — what the threads of `sigflow run` share. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "run_parts.h"

#define REGISTER_TIMEOUT_S 10.0 /* every participant joins well within this */

#define WAIT_SLICE_S 1.0 /* a waiting part re-checks the stop flag this often */

int run_part_loop(sf_participant_t *p, const atomic_bool *stop, sf_lockstep_msg_fn on_msg,
                  sf_participant_step_fn on_step, void *arg)
{
    for (;;) {
        int rc = sf_participant_step(p, WAIT_SLICE_S, on_msg, on_step, arg);
        if (rc == 1)
            continue;
        if (rc == 0)
            return 0; /* the clock said bye */
        if (errno != SF_BUS_ETIMEOUT)
            return -1;
        if (atomic_load(stop))
            return 0; /* the run is over and nobody will step us again */
    }
}

void run_part_set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void *part_main(void *arg)
{
    run_part_t *rp = arg;
    sf_participant_config_t pc = {.name = rp->name,
                                  .role = rp->role,
                                  .lockstep = 1,
                                  .topics = rp->topics,
                                  .n_topics = rp->n_topics,
                                  .stage = rp->stage,
                                  .security = rp->bus.security};
    sf_participant_t *p = sf_participant_new(rp->bus.zctx, rp->bus.pub_ep, rp->bus.sub_ep, &pc);
    if (!p) {
        run_part_set_err(rp->err, sizeof rp->err, "%s: cannot join the bus: %s", rp->name,
                         sf_bus_strerror(errno));
        rp->rc = -1;
        return NULL;
    }
    if (sf_participant_register(p, REGISTER_TIMEOUT_S, rp->on_msg, rp->arg) != 0) {
        run_part_set_err(rp->err, sizeof rp->err, "%s: %s", rp->name, sf_participant_error(p));
        rp->rc = -1;
    } else {
        if (rp->io.fill || rp->io.serve)
            sf_participant_set_io(p, &rp->io);
        if (run_part_loop(p, rp->bus.stop, rp->on_msg, rp->on_step, rp->arg) != 0) {
            run_part_set_err(rp->err, sizeof rp->err, "%s: %s", rp->name, sf_participant_error(p));
            rp->rc = -1;
        }
    }
    sf_participant_destroy(&p);
    return NULL;
}

int run_part_start(run_part_t *rp, const run_bus_t *bus)
{
    if (!rp || !bus || rp->started) {
        errno = EINVAL;
        return -1;
    }
    rp->bus = *bus;
    int e = pthread_create(&rp->thr, NULL, part_main, rp);
    if (e) {
        errno = e;
        return -1;
    }
    rp->started = true;
    return 0;
}

int run_part_join(run_part_t *rp, char *err, size_t cap)
{
    if (!rp)
        return 0;
    if (rp->started) {
        pthread_join(rp->thr, NULL);
        rp->started = false;
    }
    if (rp->rc && err)
        run_part_set_err(err, cap, "%s", rp->err);
    return rp->rc;
}
