/* bench/bench_sim.c — traffic model throughput on a grid of signalised intersections.
 *
 * For each size, an n x n grid (built in code as an sf_scenario_t): two-way links of
 * LINK_M metres with two lanes (kerb lane through+right, median lane through+left),
 * left/through/right movements at every intersection, two signal groups (east-west,
 * north-south) driven by a fixed-time schedule in this program (cycle 60 s, 27 s green +
 * 3 s yellow each, offsets staggered), Poisson entries on every boundary link near their
 * capacity. The grid fills from its edges until it holds the target number of vehicles; then
 * MEASURE_STEPS steps are timed. Prints vehicle updates per wall second (one update = one vehicle
 * advanced by one step, lane changes, detectors and measures included), the simulator's
 * own memory accounting per vehicle, and the process's peak RSS.
 *
 * Usage: bench_sim [SIZE...]   (targets in vehicles, default 1000 10000 100000) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "scenario.h"
#include "sim.h"

#define LINK_M        300.0f
#define SPEED_MPS     (50.0f / 3.6f)
#define CYCLE_S       60.0
#define GREEN_S       27.0
#define YELLOW_S      3.0
#define MEASURE_STEPS 600
#define MAX_FILL_S    3000.0

typedef struct {
    sf_scenario_t sc;   /* the grid */
    unsigned n;         /* intersections per side */
    uint32_t *in_link;  /* [n*n*4] link arriving at intersection x travelling in direction d */
    uint32_t *out_link; /* [n*n*4] link leaving intersection x in direction d */
} grid_t;

enum { DIR_E = 0, DIR_N = 1, DIR_W = 2, DIR_S = 3 };

static void add_link(sf_scenario_t *sc, sf_node_kind_t fk, uint32_t fi, sf_node_kind_t tk,
                     uint32_t ti)
{
    sf_link_t *l = &sc->links[sc->n_links];
    snprintf(l->id, sizeof l->id, "K%u", sc->n_links);
    l->from_kind = fk;
    l->from_idx = fi;
    l->to_kind = tk;
    l->to_idx = ti;
    l->length_m = LINK_M;
    l->speed_mps = SPEED_MPS;
    l->n_lanes = 2;
    l->lanes[0].use_mask = SF_LANE_USE_THROUGH | SF_LANE_USE_RIGHT;
    l->lanes[1].use_mask = SF_LANE_USE_THROUGH | SF_LANE_USE_LEFT;
    l->turn_ratio[SF_TURN_LEFT] = 0.1f;
    l->turn_ratio[SF_TURN_THROUGH] = 0.8f;
    l->turn_ratio[SF_TURN_RIGHT] = 0.1f;
    sc->n_links++;
}

static void build(grid_t *g, unsigned n, float entry_flow, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    sf_scenario_t *sc = &g->sc;
    snprintf(sc->name, sizeof sc->name, "bench-grid-%ux%u", n, n);
    sc->n_intersections = n * n;
    sc->intersections = calloc(n * n, sizeof *sc->intersections);
    sc->n_boundaries = 4 * n;
    sc->boundaries = calloc(4 * n, sizeof *sc->boundaries);
    size_t max_links = (size_t)n * n * 4 + 8u * n;
    sc->links = calloc(max_links, sizeof *sc->links);
    uint32_t *in_link = g->in_link = calloc((size_t)n * n * 4, sizeof *in_link);
    uint32_t *out_link = g->out_link = calloc((size_t)n * n * 4, sizeof *out_link);
    /* boundary b: side s (0 west, 1 south, 2 east, 3 north), position k */
    for (unsigned b = 0; b < 4 * n; b++)
        snprintf(sc->boundaries[b].id, sizeof sc->boundaries[b].id, "B%u", b);
#define IX(i, j) ((uint32_t)((j)*n + (i)))
    const int di[4] = {1, 0, -1, 0}, dj[4] = {0, 1, 0, -1};
    for (unsigned j = 0; j < n; j++)
        for (unsigned i = 0; i < n; i++)
            for (int d = 0; d < 4; d++) {
                int ti = (int)i + di[d], tj = (int)j + dj[d];
                uint32_t from = IX(i, j);
                out_link[from * 4 + d] = sc->n_links;
                if (ti < 0 || tj < 0 || ti >= (int)n || tj >= (int)n) {
                    /* exit to a boundary; its twin entry comes from the same boundary */
                    uint32_t b = d == DIR_E   ? 2 * n + j
                                 : d == DIR_W ? j
                                 : d == DIR_N ? 3 * n + i
                                              : n + i;
                    add_link(sc, SF_NODE_INTERSECTION, from, SF_NODE_BOUNDARY, b);
                    in_link[from * 4 + (d + 2) % 4] = sc->n_links;
                    add_link(sc, SF_NODE_BOUNDARY, b, SF_NODE_INTERSECTION, from);
                } else {
                    in_link[IX(ti, tj) * 4 + d] = sc->n_links;
                    add_link(sc, SF_NODE_INTERSECTION, from, SF_NODE_INTERSECTION,
                             IX((unsigned)ti, (unsigned)tj));
                }
            }
    for (unsigned x = 0; x < n * n; x++) {
        sf_intersection_t *ix = &sc->intersections[x];
        snprintf(ix->id, sizeof ix->id, "I%u", x);
        ix->n_phases = 2;
        ix->phases[0].id = 2;
        ix->phases[0].ring = 1;
        ix->phases[1].id = 4;
        ix->phases[1].ring = 1;
        ix->n_sg = 2;
        strcpy(ix->sg[0].id, "EW");
        ix->sg[0].phase_idx = 0;
        strcpy(ix->sg[1].id, "NS");
        ix->sg[1].phase_idx = 1;
        for (int d = 0; d < 4; d++) {
            uint32_t from = in_link[x * 4 + d];
            const int turn_dir[3] = {(d + 1) % 4, d, (d + 3) % 4}; /* left, through, right */
            for (int t = 0; t < 3; t++) {
                sf_movement_t *m = &ix->movements[ix->n_movements++];
                snprintf(m->id, sizeof m->id, "M%d%d", d, t);
                m->from_link_idx = from;
                m->to_link_idx = out_link[x * 4 + turn_dir[t]];
                m->turn = (sf_turn_t)t;
                m->sg_idx = (d == DIR_E || d == DIR_W) ? 0 : 1;
            }
            /* a stop-bar presence zone per lane */
            for (uint8_t k = 0; k < 2; k++) {
                sf_detector_t *dt = &ix->det[ix->n_det++];
                snprintf(dt->id, sizeof dt->id, "D%d%u", d, k);
                dt->link_idx = from;
                dt->lane = k;
                dt->distance_m = 20.0f;
                dt->length_m = 20.0f;
            }
        }
    }
    sc->demand.slice_s = 900;
    sc->demand.entries = calloc(4 * n, sizeof *sc->demand.entries);
    for (uint32_t l = 0; l < sc->n_links; l++)
        if (sc->links[l].from_kind == SF_NODE_BOUNDARY) {
            sf_entry_t *e = &sc->demand.entries[sc->demand.n_entries++];
            e->link_idx = l;
            e->flow_veh_h = entry_flow;
            e->truck_share = 0.05f;
        }
    sc->run.duration_s = 1e7;
    sc->run.step_s = 0.1;
    sc->run.seed = seed;
    sc->control.priority.checkin_distance_m = 150;
}

static void lamps(sf_sim_t *sim, const grid_t *g, double t)
{
    for (unsigned x = 0; x < g->n * g->n; x++) {
        double c = fmod(t + 7.0 * x, CYCLE_S);
        uint8_t codes[2];
        for (int k = 0; k < 2; k++) {
            double in = c - k * CYCLE_S / 2;
            codes[k] = in >= 0 && in < GREEN_S              ? SF_LAMP_GREEN
                       : in >= 0 && in < GREEN_S + YELLOW_S ? SF_LAMP_YELLOW
                                                            : SF_LAMP_RED;
        }
        sf_sim_set_lamps(sim, x, codes, 2);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void run(size_t target)
{
    /* grid side and entry flow so that the grid holds about target vehicles at a
     * moderate density (about 20-25 vehicles per lane-km) */
    unsigned n = (unsigned)ceil(sqrt((double)target / 62.0));
    if (n < 2)
        n = 2;
    grid_t g;
    build(&g, n, 3500.0f, 1); /* entries near their capacity: the grid fills fast */
    long rss0 = maxrss_kb();
    char err[256];
    sf_sim_t *sim = sf_sim_new_checked(&g.sc, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "bench_sim: %s\n", err);
        exit(1);
    }
    double t0 = now();
    while (sf_sim_vehicle_count(sim) < target && sf_sim_time(sim) < MAX_FILL_S) {
        lamps(sim, &g, sf_sim_time(sim));
        sf_sim_step(sim);
    }
    double fill_wall = now() - t0;
    json_t *r0 = sf_sim_report(sim, true);
    json_int_t u0 =
        json_integer_value(json_object_get(json_object_get(r0, "perf"), "vehicle_updates"));
    double w0 = json_number_value(json_object_get(json_object_get(r0, "perf"), "wall_s"));
    json_decref(r0);
    double veh_sum = 0;
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    for (int k = 0; k < MEASURE_STEPS; k++) {
        lamps(sim, &g, sf_sim_time(sim));
        sf_sim_step(sim);
        veh_sum += (double)sf_sim_vehicle_count(sim);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
    json_t *r1 = sf_sim_report(sim, true);
    json_t *pf = json_object_get(r1, "perf");
    double upd = (double)(json_integer_value(json_object_get(pf, "vehicle_updates")) - u0);
    double wall = json_number_value(json_object_get(pf, "wall_s")) - w0;
    json_t *net = json_object_get(r1, "network");
    double veh = veh_sum / MEASURE_STEPS;
    size_t mem = sf_sim_memory(sim);
    size_t nv = sf_sim_vehicle_count(sim);
    sf_vehicle_snap_t *snap = malloc((nv ? nv : 1) * sizeof *snap);
    double vsum = 0;
    size_t got = snap ? sf_sim_snapshot(sim, snap, nv) : 0;
    for (size_t i = 0; i < got && i < nv; i++)
        vsum += snap[i].speed_mps;
    free(snap);
    long rss1 = maxrss_kb();
    printf("grid %2ux%-2u (%5u links, %4u signals): %7.0f vehicles  %6.2f M updates/s wall, "
           "%6.2f M per CPU s (%.0f updates in %.3f s)  sim memory %6.1f MB = %4.0f B/vehicle  "
           "peak RSS +%ld kB "
           "(%4.0f B/vehicle)  [mean speed %.1f m/s; fill %.0f s sim in %.1f s wall, %lld "
           "waiting at entries]\n",
           n, n, g.sc.n_links, n * n, veh, upd / wall / 1e6, upd / cpu / 1e6, upd, wall,
           (double)mem / 1e6, (double)mem / veh, rss1 - rss0, (double)(rss1 - rss0) * 1024.0 / veh,
           got ? vsum / (double)got : 0.0, sf_sim_time(sim) - MEASURE_STEPS * 0.1, fill_wall,
           (long long)json_integer_value(json_object_get(net, "vehicles_waiting_to_enter")));
    fflush(stdout);
    json_decref(r1);
    sf_sim_destroy(&sim);
    free(g.sc.intersections);
    free(g.sc.boundaries);
    free(g.sc.links);
    free(g.sc.demand.entries);
    free(g.in_link);
    free(g.out_link);
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {1000, 10000, 100000};
    int n = 3;
    if (argc > 1) {
        n = 0;
        for (int i = 1; i < argc && n < 8; i++)
            sizes[n++] = (size_t)strtoull(argv[i], NULL, 10);
    }
    printf("bench_sim: IDM vehicles on a signalised grid, step 0.1 s, one core\n");
    for (int i = 0; i < n; i++)
        run(sizes[i]);
    return 0;
}
