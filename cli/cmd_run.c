/* cli/cmd_run.c — `sigflow run`: the whole scenario in one command (cli/run.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "run.h"
#include "scenario.h"

#define MAX_SETS         64
#define DEFAULT_SCENARIO "assets/scenarios/xiantao-corridor.json"
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, as shells report it */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sigflow run [SCENARIO] [--headless] [--duration S] [--seed N]\n"
            "                   [--set PATH=VALUE]... [--report FILE] [--realtime [FACTOR]]\n"
            "                   [--no-controller] [--inproc] [--screenshot FILE.png --at S]\n"
            "                   [--expect NAME]...\n"
            "Run a whole scenario in one process: the ZeroMQ bus forwarder, the simulator (the\n"
            "clock), every intersection's signal unit behind its own Modbus TCP port and the\n"
            "central controller polling them over Modbus, all on 127.0.0.1 (ephemeral ports).\n"
            "SCENARIO defaults to " DEFAULT_SCENARIO ".\n\n"
            "  --headless          no window (also when no display is available); on a terminal\n"
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
            "  --expect NAME       also wait for lockstep participant NAME (stage 0) joining\n"
            "                      over TCP, e.g. a HIL bridge; the bus endpoints are printed\n"
            "                      on stderr as `sigflow run: bus PUB SUB` before registration\n"
            "Exit status: 0 done, 1 scenario or run error, 2 usage error, 130 interrupted\n"
            "(SIGINT/SIGTERM: the partial report is still written, flagged \"partial\").\n");
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s[0] || s[0] == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
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

int sf_cmd_run(int argc, char **argv)
{
    const char *file = NULL, *report = NULL, *shot = NULL;
    const char *sets[MAX_SETS + 2];
    const char *expect[8];
    size_t n_expect = 0;
    size_t n_sets = 0;
    bool headless = false, no_controller = false, inproc = false, realtime = false;
    bool have_at = false;
    double speed = 1.0, at_s = 0, duration = 0;
    unsigned long long seed = 0;
    bool have_duration = false, have_seed = false;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        bool has_val = a + 1 < argc;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(s, "--headless") == 0) {
            headless = true;
        } else if (strcmp(s, "--no-controller") == 0) {
            no_controller = true;
        } else if (strcmp(s, "--inproc") == 0) {
            inproc = true;
        } else if (strcmp(s, "--realtime") == 0) {
            realtime = true;
            double f;
            if (has_val && argv[a + 1][0] != '-' && parse_double(argv[a + 1], &f) == 0) {
                if (!(f > 0) || f > 1e6) {
                    fprintf(stderr,
                            "sigflow run: --realtime: factor must be > 0 and <= 1e6, "
                            "got '%s'\n",
                            argv[a + 1]);
                    return 2;
                }
                speed = f;
                a++;
            }
        } else if (strcmp(s, "--duration") == 0 && has_val) {
            if (parse_double(argv[++a], &duration) != 0 || !(duration > 0)) {
                fprintf(stderr, "sigflow run: --duration: expected seconds > 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            have_duration = true;
        } else if (strcmp(s, "--seed") == 0 && has_val) {
            if (parse_u64(argv[++a], &seed) != 0) {
                fprintf(stderr, "sigflow run: --seed: expected an integer >= 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            have_seed = true;
        } else if (strcmp(s, "--set") == 0 && has_val) {
            if (n_sets == MAX_SETS) {
                fprintf(stderr, "sigflow run: too many --set (at most %d)\n", MAX_SETS);
                return 2;
            }
            sets[n_sets++] = argv[++a];
        } else if (strcmp(s, "--expect") == 0 && has_val) {
            if (n_expect == sizeof expect / sizeof expect[0]) {
                fprintf(stderr, "sigflow run: too many --expect (at most 8)\n");
                return 2;
            }
            const char *nm = argv[++a];
            if (!nm[0] || strlen(nm) > 63 || strcmp(nm, "units") == 0 ||
                strcmp(nm, "controller") == 0 ||
                strspn(nm, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
                    strlen(nm)) {
                fprintf(stderr,
                        "sigflow run: --expect '%s': a name of 1..63 characters [A-Za-z0-9_.-], "
                        "not units or controller\n",
                        nm);
                return 2;
            }
            expect[n_expect++] = nm;
        } else if (strcmp(s, "--report") == 0 && has_val) {
            report = argv[++a];
        } else if (strcmp(s, "--screenshot") == 0 && has_val) {
            shot = argv[++a];
        } else if (strcmp(s, "--at") == 0 && has_val) {
            if (parse_double(argv[++a], &at_s) != 0 || at_s < 0) {
                fprintf(stderr, "sigflow run: --at: expected sim seconds >= 0, got '%s'\n",
                        argv[a]);
                return 2;
            }
            have_at = true;
        } else if (s[0] == '-') {
            bool known = strcmp(s, "--duration") == 0 || strcmp(s, "--seed") == 0 ||
                         strcmp(s, "--set") == 0 || strcmp(s, "--report") == 0 ||
                         strcmp(s, "--screenshot") == 0 || strcmp(s, "--at") == 0 ||
                         strcmp(s, "--expect") == 0;
            fprintf(stderr, "sigflow run: %s '%s' (see sigflow run --help)\n",
                    known ? "missing value after" : "unknown option", s);
            return 2;
        } else if (!file) {
            file = s;
        } else {
            fprintf(stderr, "sigflow run: one scenario only, got '%s' and '%s'\n", file, s);
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
#ifndef HAVE_SF_VIEW
    if (shot) {
        fprintf(stderr, "sigflow run: --screenshot: this build has no viewer (SDL2)\n");
        return 2;
    }
#endif
    char dur_set[64], seed_set[64], path_buf[4096];
    if (have_duration) {
        snprintf(dur_set, sizeof dur_set, "run.duration_s=%.17g", duration);
        sets[n_sets++] = dur_set;
    }
    if (have_seed) {
        snprintf(seed_set, sizeof seed_set, "run.seed=%llu", seed);
        sets[n_sets++] = seed_set;
    }
    if (!file)
        file = default_scenario(path_buf, sizeof path_buf);

    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msg[i]);
        if (errs.n == 0)
            fprintf(stderr, "sigflow run: %s: cannot load: %s\n", file, strerror(errno));
        sf_errors_clear(&errs);
        return 1;
    }
    if (shot && at_s > sc->run.duration_s) {
        fprintf(stderr, "sigflow run: --at %g is after the end of the run (%g s)\n", at_s,
                sc->run.duration_s);
        sf_scenario_destroy(&sc);
        return 2;
    }
    if (!realtime && sc->run.mode == SF_MODE_REALTIME) {
        realtime = true;
        speed = sc->run.speed_factor > 0 ? sc->run.speed_factor : 1.0;
    }

    /* Signals arrive through a descriptor that the simulator checks between steps; every
     * thread inherits the blocked mask, so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int sfd = -1;
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        perror("sigflow run: signalfd");
        sf_scenario_destroy(&sc);
        return 1;
    }

    bool display = (getenv("DISPLAY") && getenv("DISPLAY")[0]) ||
                   (getenv("WAYLAND_DISPLAY") && getenv("WAYLAND_DISPLAY")[0]);
    bool window = false; /* the live window in `run` is not wired yet: headless always */
    (void)display;
    progress_t prog = {.t0 = wall_now()};
    sf_runner_opts_t o = {.sc = sc,
                          .with_controller = !no_controller,
                          .inproc = inproc,
                          .realtime = realtime,
                          .speed = speed,
                          .stop_fd = sfd,
                          .shot_path = shot,
                          .shot_at_s = at_s,
                          .extra = expect,
                          .n_extra = n_expect,
                          .ready = print_ready};
    if (!window && isatty(STDERR_FILENO)) {
        o.tick = progress_tick;
        o.tick_arg = &prog;
    }
    sf_runner_result_t res;
    int rc;
    rc = sf_runner_run(&o, &res);
    if (prog.shown)
        fprintf(stderr, "\n");
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "sigflow run: %s\n", res.err);
        status = 1;
    } else {
        if (report && sf_runner_write_report(res.report, report) != 0) {
            fprintf(stderr, "sigflow run: --report %s: %s\n", report, strerror(errno));
            status = 1;
        }
        if (headless || !window)
            sf_runner_print_summary(res.report, stdout);
        if (res.shot_written)
            fprintf(stderr, "sigflow run: screenshot at %.1f s written to %s\n", at_s, shot);
        if (res.partial) {
            fprintf(stderr, "sigflow run: interrupted: the report is partial\n");
            if (status == 0)
                status = EXIT_INTERRUPTED;
        }
        json_decref(res.report);
    }
    close(sfd);
    sf_scenario_destroy(&sc);
    return status;
}
