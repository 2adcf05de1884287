/* bench/bench_corridor.c — the default corridor for one simulated hour at 0.1 s steps with
 * the units (and the controller) in the loop, through the built `sigflow run`: wall time,
 * CPU time, vehicle updates per second, and where the time goes (the model's own step
 * time vs. the lockstep round trips), over TCP on 127.0.0.1 and over inproc:// endpoints.
 *
 * usage: bench_corridor [--bin PATH/sigflow] [--duration S] [--only tcp|inproc]
 * (default binary: ../cli/sigflow next to this program's directory). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CORRIDOR SIGFLOW_ASSETS "/scenarios/xiantao-corridor.json"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* One run; prints a row. Returns 0 or -1. */
static int bench(const char *bin, const char *duration, bool inproc, bool controller)
{
    char report[64];
    snprintf(report, sizeof report, "/tmp/bench_corridor_%d.json", (int)getpid());
    char *argv[16];
    int n = 0;
    argv[n++] = "sigflow";
    argv[n++] = "run";
    argv[n++] = CORRIDOR;
    argv[n++] = "--headless";
    argv[n++] = "--duration";
    argv[n++] = (char *)duration;
    argv[n++] = "--report";
    argv[n++] = report;
    if (inproc)
        argv[n++] = "--inproc";
    if (!controller)
        argv[n++] = "--no-controller";
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double t0 = now_s();
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench_corridor: cannot start %s: %s\n", bin, strerror(rc));
        return -1;
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_corridor: sigflow run failed\n");
        return -1;
    }
    double wall_proc = now_s() - t0;
    json_error_t je;
    json_t *r = json_load_file(report, 0, &je);
    unlink(report);
    if (!r) {
        fprintf(stderr, "bench_corridor: report: %s\n", je.text);
        return -1;
    }
    const json_t *perf = json_object_get(r, "perf");
    double wall = num(perf, "wall_s"), steps = num(perf, "steps");
    double model = num(perf, "sim_model_wall_s");
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    printf("%-7s %-4s %8.2f %8.2f %8.2f %9.0f %12.0f %9.0f %10.3f %9.3f\n",
           inproc ? "inproc" : "tcp", controller ? "yes" : "no", wall, wall_proc, cpu, steps / wall,
           num(perf, "vehicle_updates_per_s"), num(perf, "vehicle_updates") / model,
           (wall - model) / steps * 1e3, model);
    fflush(stdout);
    json_decref(r);
    return 0;
}

int main(int argc, char **argv)
{
    char bin[PATH_MAX] = "";
    const char *duration = "3600", *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bin") == 0 && i + 1 < argc)
            snprintf(bin, sizeof bin, "%s", argv[++i]);
        else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc)
            duration = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_corridor [--bin PATH] [--duration S] [--only tcp|inproc]\n");
            return 2;
        }
    }
    if (!bin[0]) {
        char self[PATH_MAX];
        ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
        if (l <= 0)
            return 1;
        self[l] = 0;
        snprintf(bin, sizeof bin, "%s/../cli/sigflow", dirname(self));
    }
    printf("corridor %s s simulated at 0.1 s steps, units in the loop (%s)\n", duration, bin);
    printf("%-7s %-4s %8s %8s %8s %9s %12s %9s %10s %9s\n", "bus", "ctl", "wall_s", "proc_s",
           "cpu_s", "steps/s", "veh_upd/s", "model/s", "ms/step*", "model_s");
    int fails = 0;
    for (int t = 0; t < 2; t++) {
        bool inproc = t == 1;
        if (only && strcmp(only, inproc ? "inproc" : "tcp") != 0)
            continue;
        fails += bench(bin, duration, inproc, true) != 0;
        fails += bench(bin, duration, inproc, false) != 0;
    }
    printf("* wall time per step outside the traffic model: bus round trips, unit ticks,\n"
           "  controller Modbus polls, encoding. model/s = vehicle updates per second of model\n"
           "  time alone. proc_s includes start-up and report; cpu_s is user+sys of the run.\n");
    return fails ? 1 : 0;
}
