/* cli/cmd_run.c — `sigflow run`: the whole scenario in one command (cli/run.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "bus_join.h"
#include "curve_opts.h"
#include "run.h"
#include "run_opts.h"
#include "scenario.h"
#ifdef HAVE_SF_VIEW
#include "live.h"
#endif

#define DEFAULT_SCENARIO "assets/scenarios/xiantao-corridor.json"
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, as shells report it */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow run [SCENARIO] [--headless] [--duration S] [--seed N]\n"
            "                   [--set PATH=VALUE]... [--report FILE] [--realtime [FACTOR]]\n"
            "                   [--no-controller] [--inproc] [--screenshot FILE.png --at S]\n"
            "                   [--runrec FILE] [--events FILE]\n"
            "                   [--expect NAME]... [--curve-key FILE --curve-allow DIR|FILE]\n"
            "Run a whole scenario in one process: the ZeroMQ bus forwarder, the simulator (the\n"
            "clock), every intersection's signal unit behind its own Modbus TCP port and the\n"
            "central controller polling them over Modbus, all on 127.0.0.1 (ephemeral ports).\n"
            "SCENARIO defaults to " DEFAULT_SCENARIO ".\n\n"
            "  --headless          no window. Without it and with a display ($DISPLAY or\n"
            "                      $WAYLAND_DISPLAY) the live window opens, in real time x1\n"
            "                      unless --realtime says otherwise; closing it ends the run.\n"
            "                      Headless (or no display): on a terminal\n"
            "                      a progress bar on stderr, and a summary table on stdout\n"
            "  --duration S        simulated seconds (run.duration_s)\n"
            "  --seed N            random seed (run.seed): same seed, same report\n"
            "  --set PATH=VALUE    override any scenario field (see sigflow check)\n"
            "  --report FILE       write the report JSON (written atomically)\n"
            "  --realtime [F]      pace to the wall clock, F times faster (default 1); reports\n"
            "                      the step jitter. Default: lockstep, as fast as possible\n"
            "  --no-controller     units run their local plans, no central controller\n"
            "  --inproc            threads talk over the forwarder's inproc:// endpoints\n"
            "                      instead of TCP on 127.0.0.1 (faster; others still use TCP)\n"
            "  --screenshot F --at S  render a PNG of the network at sim time S (offscreen)\n"
            "  --runrec FILE       save a run record (trajectories along the arterial every\n"
            "                      1 s, every lamp change, approach queues) filled by the\n"
            "                      simulator itself; with --report the report names it\n"
            "                      (\"run_record\") so `sigflow plot KIND REPORT` draws it\n"
            "  --events FILE       write the controller's event log: one JSON line per event\n"
            "                      (plan, priority, fault, comms, mode, adaptive), as\n"
            "                      `sigflow controller --log`; the report's controller.events\n"
            "                      counts them by kind\n"
            "  --expect NAME       also wait for lockstep participant NAME (stage 0) joining\n"
            "                      over TCP, e.g. a HIL bridge; the bus endpoints are printed\n"
            "                      on stderr as `sigflow run: bus PUB SUB` before registration\n"
            "Exit status: 0 done, 1 scenario or run error, 2 usage error, 130 interrupted\n"
            "(SIGINT/SIGTERM: the partial report is still written, flagged \"partial\").\n");
    fputs(SF_CURVE_HELP_SERVER
          "  (this run's own threads join with a key pair made in memory; the report is\n"
          "  the same as on a plain bus)\n",
          out);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The default scenario: under $SIGFLOW_SOURCE_DIR, the build's source dir, or here. */
static const char *default_scenario(char *buf, size_t cap)
{
    const char *env = getenv("SIGFLOW_SOURCE_DIR");
    if (env && env[0]) {
        snprintf(buf, cap, "%s/%s", env, DEFAULT_SCENARIO);
        if (file_exists(buf))
            return buf;
    }
    if (file_exists(DEFAULT_SCENARIO))
        return DEFAULT_SCENARIO;
#ifdef SIGFLOW_SOURCE_DIR
    snprintf(buf, cap, "%s/%s", SIGFLOW_SOURCE_DIR, DEFAULT_SCENARIO);
    if (file_exists(buf))
        return buf;
#endif
    return DEFAULT_SCENARIO; /* the loader names it in its error */
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    double t0;   /* wall start */
    double last; /* wall time of the last redraw */
    bool shown;  /* something is on the line */
} progress_t;

static int progress_tick(void *arg, double sim_s, double duration_s)
{
    progress_t *p = arg;
    double now = wall_now();
    if (now - p->last < 0.2 && sim_s < duration_s)
        return 0;
    p->last = now;
    double frac = duration_s > 0 ? sim_s / duration_s : 1;
    if (frac > 1)
        frac = 1;
    char bar[31];
    int fill = (int)(frac * 30.0);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    double speed = now > p->t0 ? sim_s / (now - p->t0) : 0;
    fprintf(stderr, "\r[%s] %7.0f / %.0f s sim  %3.0f%%  x%.0f real time ", bar, sim_s, duration_s,
            frac * 100.0, speed);
    fflush(stderr);
    p->shown = true;
    return 0;
}

/* Lines on stderr that scripts and tests wait for (readiness handshake). */
static void print_ready(void *arg, int phase, const char *pub_ep, const char *sub_ep)
{
    (void)arg;
    if (phase == 0)
        fprintf(stderr, "sigflow run: bus %s %s\n", pub_ep, sub_ep);
    else
        fprintf(stderr, "sigflow run: ready\n");
    fflush(stderr);
}

/* What to do with a finished run: report file, summary, exit status. */
typedef struct {
    const char *report, *shot, *runrec;
    double at_s;
    bool done;  /* finish_run ran */
    int status; /* its result */
} finish_t;

/* The run record's path as the report names it: relative to the report's directory (so
 * the pair can be moved together), or as given when absolute or when a directory cannot
 * be resolved. */
static json_t *runrec_ref(const char *report, const char *runrec)
{
    if (runrec[0] == '/')
        return json_string(runrec);
    char rdir[4096], fdir[4096], buf[4096];
    snprintf(buf, sizeof buf, "%s", report);
    char *slash = strrchr(buf, '/');
    if (slash)
        *(slash == buf ? slash + 1 : slash) = '\0';
    if (!realpath(slash ? buf : ".", rdir))
        return json_string(runrec);
    snprintf(buf, sizeof buf, "%s", runrec);
    slash = strrchr(buf, '/');
    const char *base = slash ? slash + 1 : runrec;
    if (slash)
        *(slash == buf ? slash + 1 : slash) = '\0';
    if (!realpath(slash ? buf : ".", fdir))
        return json_string(runrec);
    /* drop the common leading directories, then one ".." per directory of rdir left */
    const char *r = rdir, *q = fdir;
    for (;;) {
        while (*r == '/')
            r++;
        while (*q == '/')
            q++;
        size_t nr = strcspn(r, "/"), nq = strcspn(q, "/");
        if (nr == 0 || nr != nq || strncmp(r, q, nr) != 0)
            break;
        r += nr;
        q += nq;
    }
    char out[8192];
    size_t len = 0;
    out[0] = '\0';
    while (*r && len < sizeof out) {
        len += (size_t)snprintf(out + len, sizeof out - len, "../");
        r += strcspn(r, "/");
        while (*r == '/')
            r++;
    }
    if (len < sizeof out)
        snprintf(out + len, sizeof out - len, "%s%s%s", q, q[0] ? "/" : "", base);
    return json_string(out);
}

static int finish_run(finish_t *f, int rc, sf_runner_result_t *res)
{
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "sigflow run: %s\n", res->err);
        status = 1;
    } else {
        if (f->report && f->runrec)
            json_object_set_new(res->report, "run_record", runrec_ref(f->report, f->runrec));
        if (f->report && sf_runner_write_report(res->report, f->report) != 0) {
            fprintf(stderr, "sigflow run: --report %s: %s\n", f->report, strerror(errno));
            status = 1;
        }
        sf_runner_print_summary(res->report, stdout);
        fflush(stdout);
        if (res->shot_written)
            fprintf(stderr, "sigflow run: screenshot at %.1f s written to %s\n", f->at_s, f->shot);
        if (res->partial) {
            fprintf(stderr, "sigflow run: interrupted: the report is partial\n");
            if (status == 0)
                status = EXIT_INTERRUPTED;
        }
        json_decref(res->report);
        res->report = NULL;
    }
    f->done = true;
    f->status = status;
    return status;
}

#ifdef HAVE_SF_VIEW
/* The run on its own thread while the window owns the main one (SDL wants it). */
typedef struct {
    sf_runner_opts_t *o;
    sf_runner_result_t *res;
    finish_t *fin; /* the thread reports as soon as the run ends; the window stays */
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool bus_up;   /* phase 0 seen: endpoints below are valid */
    bool finished; /* the run returned */
    char pub[256], sub[256];
} window_run_t;

static void window_ready(void *arg, int phase, const char *pub_ep, const char *sub_ep)
{
    window_run_t *w = arg;
    print_ready(NULL, phase, pub_ep, sub_ep);
    if (phase != 0)
        return;
    pthread_mutex_lock(&w->mu);
    snprintf(w->pub, sizeof w->pub, "%s", pub_ep);
    snprintf(w->sub, sizeof w->sub, "%s", sub_ep);
    w->bus_up = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *window_run_main(void *arg)
{
    window_run_t *w = arg;
    w->rc = sf_runner_run(w->o, w->res);
    finish_run(w->fin, w->rc, w->res);
    fprintf(stderr, "sigflow run: the run has ended; close the window (q) to exit\n");
    pthread_mutex_lock(&w->mu);
    w->finished = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Run with the live window on this thread; closing it stops the run (partial report).
 * A window that cannot open (no usable display) leaves the run going headless. */
static int run_with_window(const sf_scenario_t *sc, sf_runner_opts_t *o, sf_runner_result_t *res,
                           finish_t *fin)
{
    window_run_t w = {.o = o, .res = res, .fin = fin};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    atomic_bool closed;
    atomic_init(&closed, false);
    o->ready = window_ready;
    o->ready_arg = &w;
    o->stop_flag = &closed;
    pthread_t thr;
    if (pthread_create(&thr, NULL, window_run_main, &w) != 0) {
        o->ready = print_ready;
        o->stop_flag = NULL;
        return sf_runner_run(o, res);
    }
    pthread_mutex_lock(&w.mu);
    while (!w.bus_up && !w.finished)
        pthread_cond_wait(&w.cv, &w.mu);
    bool up = w.bus_up && !w.finished;
    pthread_mutex_unlock(&w.mu);
    if (up) {
        sf_live_opts_t lo = {.sub_endpoint = w.sub, .pub_endpoint = w.pub, .security = o->security};
        char err[256] = "";
        if (sf_live_run(sc, &lo, NULL, err, sizeof err) != 0)
            fprintf(stderr, "sigflow run: no window (%s); running headless\n",
                    err[0] ? err : strerror(errno));
        else
            atomic_store(&closed, true); /* window closed: stop the run */
    }
    pthread_join(thr, NULL);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return w.rc;
}
#endif

int sf_cmd_run(int argc, char **argv)
{
    const char *shot = NULL, *runrec = NULL, *events = NULL;
    bool headless = false, no_controller = false, inproc = false;
    bool have_at = false;
    double at_s = 0;
    sf_run_opts_t ro;
    sf_run_opts_init(&ro, true); /* units, controller and bridge are this run's own */
    static const char *const own_valued[] = {"--screenshot", "--at", "--runrec", "--events", NULL};
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        bool has_val = a + 1 < argc;
        int r;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(s, "--headless") == 0) {
            headless = true;
        } else if (strcmp(s, "--no-controller") == 0) {
            no_controller = true;
        } else if (strcmp(s, "--inproc") == 0) {
            inproc = true;
        } else if ((r = sf_run_opt("run", &ro, argc, argv, &a)) != 0) {
            if (r < 0)
                return 2;
        } else if (strcmp(s, "--runrec") == 0 && has_val) {
            runrec = argv[++a];
        } else if (strcmp(s, "--events") == 0 && has_val) {
            events = argv[++a];
        } else if (strcmp(s, "--screenshot") == 0 && has_val) {
            shot = argv[++a];
        } else if (strcmp(s, "--at") == 0 && has_val) {
            if (sf_parse_double(argv[++a], &at_s) != 0 || at_s < 0) {
                fprintf(stderr, "sigflow run: --at: expected sim seconds >= 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            have_at = true;
        } else if (sf_run_opts_other("run", &ro, s, own_valued) != 0) {
            return 2;
        }
    }
    if (shot && !have_at) {
        fprintf(stderr, "sigflow run: --screenshot needs --at S (sim seconds)\n");
        return 2;
    }
    if (have_at && !shot) {
        fprintf(stderr, "sigflow run: --at needs --screenshot FILE.png\n");
        return 2;
    }
    if (events && no_controller) {
        fprintf(stderr, "sigflow run: --events logs the controller's events: not with "
                        "--no-controller\n");
        return 2;
    }
#ifndef HAVE_SF_VIEW
    if (shot || runrec) {
        fprintf(stderr, "sigflow run: %s: this build has no viewer (SDL2)\n",
                shot ? "--screenshot" : "--runrec");
        return 2;
    }
#endif
    if (runrec) { /* it is saved at the end: a directory that cannot take it is said now */
        size_t n = strlen(runrec);
        if (n == 0 || runrec[n - 1] == '/') {
            fprintf(stderr, "sigflow run: --runrec '%s': expected a file name\n", runrec);
            return 2;
        }
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", runrec);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        if (access(slash ? dir : ".", W_OK) != 0) {
            fprintf(stderr, "sigflow run: --runrec %s: %s: %s\n", runrec, slash ? dir : ".",
                    strerror(errno));
            return 2;
        }
    }
    /* Keys are read and checked before anything starts. */
    char curve_secret[SF_CURVE_Z85_LEN + 1] = "";
    sf_bus_security_t own_keys;
    bool secure = false;
    int crc = sf_curve_opts_server("run", &ro.curve, curve_secret, &own_keys, &secure);
    if (crc != 0)
        return crc;
    char path_buf[4096];
    if (!ro.file)
        ro.file = default_scenario(path_buf, sizeof path_buf);
    sf_scenario_t *sc = sf_run_opts_load("run", &ro);
    if (!sc)
        return 1;
    bool realtime = ro.realtime;
    double speed = ro.speed;
    if (shot && at_s > sc->run.duration_s) {
        fprintf(stderr, "sigflow run: --at %g is after the end of the run (%g s)\n", at_s,
                sc->run.duration_s);
        sf_scenario_destroy(&sc);
        return 2;
    }
    if (events) { /* said now, not after the units started (the controller truncates it) */
        FILE *f = fopen(events, "a");
        if (!f) {
            fprintf(stderr, "sigflow run: --events %s: %s\n", events, strerror(errno));
            sf_scenario_destroy(&sc);
            return 2;
        }
        fclose(f);
    }
    if (!realtime && sc->run.mode == SF_MODE_REALTIME) {
        realtime = true;
        speed = sc->run.speed_factor > 0 ? sc->run.speed_factor : 1.0;
    }

    /* Signals arrive through a descriptor that the simulator checks between steps. */
    int sfd = sf_cli_signalfd("run");
    if (sfd < 0) {
        sf_scenario_destroy(&sc);
        return 1;
    }

    bool display = (getenv("DISPLAY") && getenv("DISPLAY")[0]) ||
                   (getenv("WAYLAND_DISPLAY") && getenv("WAYLAND_DISPLAY")[0]);
    bool window = !headless && display;
#ifndef HAVE_SF_VIEW
    window = false;
#endif
    if (window && !realtime) {
        realtime = true; /* a window on a lockstep run at full speed shows nothing useful */
        speed = 1.0;
    }
    progress_t prog = {.t0 = wall_now()};
    sf_runner_opts_t o = {.sc = sc,
                          .with_controller = !no_controller,
                          .inproc = inproc,
                          .realtime = realtime,
                          .speed = speed,
                          .stop_fd = sfd,
                          .shot_path = shot,
                          .shot_at_s = at_s,
                          .runrec_path = runrec,
                          .events_path = events,
                          .extra = ro.expect,
                          .n_extra = ro.n_expect,
                          .ready = print_ready,
                          .security = secure ? &own_keys : NULL,
                          .curve_secret = secure ? curve_secret : NULL,
                          .curve_allow = secure ? ro.curve.allow : NULL};
    if (!window && isatty(STDERR_FILENO)) {
        o.tick = progress_tick;
        o.tick_arg = &prog;
    }
    sf_runner_result_t res;
    finish_t fin = {.report = ro.report, .shot = shot, .runrec = runrec, .at_s = at_s};
    int rc;
#ifdef HAVE_SF_VIEW
    if (window)
        rc = run_with_window(sc, &o, &res, &fin);
    else
#endif
        rc = sf_runner_run(&o, &res);
    if (prog.shown)
        fprintf(stderr, "\n");
    int status = fin.done ? fin.status : finish_run(&fin, rc, &res);
    close(sfd);
    sf_scenario_destroy(&sc);
    return status;
}
