/* bench/bench_greens.c — how much green one phase got over a time window, read from a run
 * record (`sigflow run ... --runrec FILE`: every lamp change of every signal group, as the
 * simulator saw the units' lamps). The phase's green is the time its vehicle signal groups
 * (kind vehicle or arrow driven by the phase) showed a green code (0x20-0x22); when it has
 * several, the first one's lamps are read (they change together). Prints the green seconds
 * in [FROM, TO), their share of the window, the green starts in it and the mean green per
 * start, one line of `name value` pairs for scripts (bench/evidence.sh, arm detfault).
 *
 * usage: bench_greens SCENARIO RUNREC IX_ID PHASE_NO FROM_S TO_S
 * (SCENARIO: the file the run loaded; the record is checked against it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runrec.h"
#include "scenario.h"

static bool is_green(uint8_t code)
{
    return code >= 0x20 && code <= 0x22;
}

/* A finite number from the whole of s, or false. */
static bool num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_greens SCENARIO RUNREC IX_ID PHASE_NO FROM_S TO_S\n");
        return 2;
    }
    double phase_no, from, to;
    if (!num(argv[4], &phase_no) || phase_no < 1 || phase_no > 16 || !num(argv[5], &from) ||
        !num(argv[6], &to) || from < 0 || to <= from) {
        fprintf(stderr, "bench_greens: PHASE_NO 1..16, 0 <= FROM_S < TO_S (got %s %s %s)\n",
                argv[4], argv[5], argv[6]);
        return 2;
    }
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(argv[1], NULL, 0, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "bench_greens", argv[1]);
        return 1;
    }
    int rc = 1;
    char err[256];
    sf_runrec_t *rec = sf_runrec_load(sc, argv[2], err, sizeof err);
    int ii = sf_scenario_find_intersection(sc, argv[3]);
    if (!rec) {
        fprintf(stderr, "bench_greens: %s\n", err);
        goto done;
    }
    if (ii < 0) {
        fprintf(stderr, "bench_greens: no intersection %s in %s\n", argv[3], argv[1]);
        goto done;
    }
    const sf_intersection_t *ix = &sc->intersections[ii];
    int sg = -1;
    for (uint8_t g = 0; g < ix->n_sg && sg < 0; g++)
        if (ix->sg[g].kind != SF_SG_PEDESTRIAN && ix->phases[ix->sg[g].phase_idx].id == phase_no)
            sg = g;
    if (sg < 0) {
        fprintf(stderr, "bench_greens: %s has no vehicle signal group of phase %g\n", ix->id,
                phase_no);
        goto done;
    }
    /* integrate the lamp of (ii, sg) over [from, to) from its changes, in time order */
    uint8_t code = 0;
    double t_prev = from, green_s = 0;
    unsigned starts = 0;
    size_t n = sf_runrec_n_lamp_changes(rec);
    for (size_t k = 0; k < n; k++) {
        const sf_lamp_change_t *c = sf_runrec_lamp_change(rec, k);
        if (c->ix != (uint16_t)ii || c->sg != (uint8_t)sg)
            continue;
        double t = c->t_s;
        if (t >= to)
            break;
        if (t > from) {
            if (is_green(code))
                green_s += t - t_prev;
            t_prev = t;
            if (is_green(c->code) && !is_green(code))
                starts++;
        }
        code = c->code;
    }
    if (is_green(code))
        green_s += to - t_prev;
    printf("ix %s phase %g from_s %g to_s %g green_s %.1f green_share_pct %.1f green_starts %u "
           "mean_green_s %.1f\n",
           ix->id, phase_no, from, to, green_s, 100.0 * green_s / (to - from), starts,
           starts ? green_s / starts : 0.0);
    rc = 0;
done:
    sf_runrec_destroy(&rec);
    sf_scenario_destroy(&sc);
    return rc;
}
