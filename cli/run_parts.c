/* cli/run_parts.c — what the threads of `sigflow run` share. */
#include <errno.h>

#include "run_parts.h"

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
