/* tests/run_child.h — start the built `sigflow` as a child process with its stdout and
 * stderr on pipes, wait for lines on stderr (readiness handshakes), collect its output
 * and exit status. Shared by test_run.c and test_determinism.c. */
#ifndef SIGFLOW_TEST_RUN_CHILD_H
#define SIGFLOW_TEST_RUN_CHILD_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

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

/* Start SIGFLOW_BIN with argv (argv[0] ignored, NULL-terminated). 0 or -1. */
static inline int child_start(child_t *c, char *const argv[])
{
    memset(c, 0, sizeof *c);
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    int rc = posix_spawn(&c->pid, SIGFLOW_BIN, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    c->out_fd = po[0];
    c->err_fd = pe[0];
    return rc == 0 ? 0 : -1;
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
    int st = 0;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    c->out_fd = c->err_fd = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run to completion: exit status. */
static inline int child_run(child_t *c, char *const argv[], double timeout_s)
{
    if (child_start(c, argv) != 0)
        return -2;
    return child_finish(c, timeout_s);
}

#endif
