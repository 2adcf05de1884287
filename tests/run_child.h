/* tests/run_child.h — the one helper every test uses to run the built `sigflow` as a
 * child process: start it with its stdout and stderr on pipes, wait for lines (readiness
 * handshakes, never sleeps), collect its output and exit status, stop it by pid.
 *
 * A child never outlives a failed test: it gets SIGTERM when the test process dies
 * (PR_SET_PDEATHSIG: a failed assertion ends the test process), and a suite declared with
 * CHILD_SUITE(name) kills by pid, in its teardown, every child still running. */
#ifndef SIGFLOW_TEST_RUN_CHILD_H
#define SIGFLOW_TEST_RUN_CHILD_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_MAX_LIVE 32 /* children one test has running at once */

/* The pids started and not yet reaped, for the teardown. One test process, one thread
 * starting children: the table is the test's own. */
static inline pid_t *child_live(void)
{
    static pid_t live[CHILD_MAX_LIVE];
    return live;
}

static inline void child_track(pid_t pid, bool on)
{
    pid_t *live = child_live();
    for (int i = 0; i < CHILD_MAX_LIVE; i++)
        if (on ? live[i] == 0 : live[i] == pid) {
            live[i] = on ? pid : 0;
            return;
        }
}

/* Kill (SIGKILL) and reap every child still running; a suite's teardown (CHILD_SUITE). */
static inline void child_kill_all(void)
{
    pid_t *live = child_live();
    for (int i = 0; i < CHILD_MAX_LIVE; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            while (waitpid(live[i], NULL, 0) < 0 && errno == EINTR)
                ;
            live[i] = 0;
        }
}

/* A Criterion suite whose every test ends with child_kill_all. */
#define CHILD_SUITE(name) TestSuite(name, .fini = child_kill_all)

/* Fork and exec SIGFLOW_BIN with argv (NULL-terminated; argv[0] is the name it sees),
 * stdout onto out_fd and stderr onto err_fd where >= 0 (else inherited). Only
 * async-signal-safe calls between fork and exec (the test may have threads). Returns the
 * pid, or -1 with errno. */
static inline pid_t child_spawn(char *const argv[], int out_fd, int err_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Dies with the test process; if that already happened, do not start at all. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        if ((out_fd >= 0 && dup2(out_fd, 1) < 0) || (err_fd >= 0 && dup2(err_fd, 2) < 0))
            _exit(127);
        execv(SIGFLOW_BIN, argv);
        _exit(127);
    }
    child_track(pid, true);
    return pid;
}

/* Wait for pid and forget it: its exit status, or -1 (ended by a signal, or not ours). */
static inline int child_reap(pid_t pid)
{
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    child_track(pid, false);
    return r == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct {
    pid_t pid;
    int out_fd, err_fd; /* read ends, -1 once at EOF */
    char out[1 << 16];  /* stdout so far (truncated beyond) */
    size_t n_out;
    char err[1 << 16]; /* stderr so far */
    size_t n_err;
} child_t;

static inline double child_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Start SIGFLOW_BIN with argv (NULL-terminated) with stdout and stderr on pipes. 0 or -1. */
static inline int child_start(child_t *c, char *const argv[])
{
    memset(c, 0, sizeof *c);
    c->out_fd = c->err_fd = -1;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    c->pid = child_spawn(argv, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    if (c->pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -1;
    }
    c->out_fd = po[0];
    c->err_fd = pe[0];
    return 0;
}

/* A child_t on the heap (they are 128 KiB: not for the stack); aborts when out of memory. */
static inline child_t *child_new(void)
{
    child_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->out_fd = c->err_fd = -1;
    return c;
}

/* Read what is available, waiting at most timeout_ms. Returns false once both are at EOF. */
static inline bool child_pump(child_t *c, int timeout_ms)
{
    struct pollfd p[2] = {{c->out_fd, POLLIN, 0}, {c->err_fd, POLLIN, 0}};
    if (c->out_fd < 0 && c->err_fd < 0)
        return false;
    if (poll(p, 2, timeout_ms) <= 0)
        return true;
    for (int i = 0; i < 2; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP)))
            continue;
        char *buf = i == 0 ? c->out : c->err;
        size_t *n = i == 0 ? &c->n_out : &c->n_err;
        char tmp[4096];
        ssize_t r = read(p[i].fd, tmp, sizeof tmp);
        if (r <= 0) {
            close(p[i].fd);
            if (i == 0)
                c->out_fd = -1;
            else
                c->err_fd = -1;
            continue;
        }
        size_t room = (i == 0 ? sizeof c->out : sizeof c->err) - 1 - *n;
        size_t take = (size_t)r < room ? (size_t)r : room;
        memcpy(buf + *n, tmp, take);
        *n += take;
        buf[*n] = 0;
    }
    return true;
}

/* Wait until stderr contains needle (true) or the child closed it / timeout_s passed. */
static inline bool child_wait_err(child_t *c, const char *needle, double timeout_s)
{
    double end = child_now() + timeout_s;
    while (!strstr(c->err, needle)) {
        if (child_now() > end || !child_pump(c, 100))
            return strstr(c->err, needle) != NULL;
    }
    return true;
}

/* Wait until stdout holds needle n times (true), or the child closed it / timeout_s
 * passed. */
static inline bool child_wait_out(child_t *c, const char *needle, int n, double timeout_s)
{
    double end = child_now() + timeout_s;
    for (;;) {
        int found = 0;
        for (const char *at = c->out; (at = strstr(at, needle)) != NULL; at += strlen(needle))
            found++;
        if (found >= n)
            return true;
        if (child_now() > end || !child_pump(c, 100))
            return false;
    }
}

/* Collect everything until EOF, then the exit status (-1: killed after timeout_s, or by a
 * signal). */
static inline int child_finish(child_t *c, double timeout_s)
{
    double end = child_now() + timeout_s;
    while (child_pump(c, 200))
        if (child_now() > end) {
            kill(c->pid, SIGKILL);
            break;
        }
    int st = child_reap(c->pid);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    c->out_fd = c->err_fd = -1;
    return st;
}

/* Send sig to the child (by its pid) and collect it as child_finish does. */
static inline int child_stop(child_t *c, int sig, double timeout_s)
{
    kill(c->pid, sig);
    return child_finish(c, timeout_s);
}

/* Run to completion: exit status. */
static inline int child_run(child_t *c, char *const argv[], double timeout_s)
{
    if (child_start(c, argv) != 0)
        return -2;
    return child_finish(c, timeout_s);
}

/* Run `sigflow ARGS...` (args NULL-terminated, at most 30) to completion in c: exit
 * status as child_run. */
static inline int child_run_args(child_t *c, const char *const *args, double timeout_s)
{
    char *argv[32] = {"sigflow"};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    return child_run(c, argv, timeout_s);
}

/* A child read line by line: its stdout as a FILE (stderr inherited), for a command
 * whose only output is a ready line or two (fgets blocks until it comes or the child
 * ends). */
typedef struct {
    pid_t pid;
    FILE *out; /* its stdout */
} child_pipe_t;

/* Start SIGFLOW_BIN with argv (NULL-terminated), its stdout in c->out. 0 or -1. */
static inline int child_popen(child_pipe_t *c, char *const argv[])
{
    c->pid = -1;
    c->out = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    c->pid = child_spawn(argv, fds[1], -1);
    close(fds[1]);
    c->out = c->pid > 0 ? fdopen(fds[0], "r") : NULL;
    if (!c->out) {
        close(fds[0]);
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            child_reap(c->pid);
        }
        return -1;
    }
    return 0;
}

/* Send sig to the child by its pid (0: none, it ends by itself), wait for it and close its
 * stdout: its exit status, or -1 (ended by a signal). */
static inline int child_pclose(child_pipe_t *c, int sig)
{
    if (sig)
        kill(c->pid, sig);
    int st = child_reap(c->pid);
    if (c->out)
        fclose(c->out);
    c->out = NULL;
    return st;
}

/* `sigflow unit SCENARIO --base-port BASE` started in c; the port of its first unit (the
 * "ready ID ADDR:PORT" line on stdout), or 0 when it did not come within timeout_s. */
static inline uint16_t child_start_unit(child_t *c, const char *scenario, uint16_t base,
                                        double timeout_s)
{
    char bp[8];
    snprintf(bp, sizeof bp, "%u", (unsigned)base);
    char *argv[] = {"sigflow", "unit", (char *)scenario, "--base-port", bp, NULL};
    if (child_start(c, argv) != 0 || !child_wait_out(c, "\n", 1, timeout_s))
        return 0;
    unsigned port = 0;
    const char *colon = strncmp(c->out, "ready ", 6) == 0 ? strchr(c->out, ':') : NULL;
    if (!colon || sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
        return 0;
    return (uint16_t)port;
}

#endif
