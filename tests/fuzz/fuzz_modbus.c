/* tests/fuzz/fuzz_modbus.c — libFuzzer target: the unit server's request handling. The
 * first byte chooses whether the client may write; the rest is one Modbus TCP ADU. It
 * goes through the frame check the host applies, then, when well formed, through
 * sf_server_handle over a socketpair (the server reads the request from its end and
 * writes the reply, which is read back and checked to be one well-formed MBAP answer).
 * A fresh unit and server per input keep every run reproducible. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scenario.h"
#include "server.h"
#include "unit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static sf_scenario_t *g_sc; /* loaded once: the intersection the units are made from */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_sc = sf_scenario_load(SIGFLOW_ASSETS "/scenarios/single.json", NULL, 0, NULL);
    if (!g_sc || g_sc->n_intersections == 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 + 260)
        return 0;
    bool may_write = data[0] & 1;
    const uint8_t *adu = data + 1;
    int len = (int)(size - 1);
    if (sf_server_frame_ok(adu, len) != 0)
        return 0;
    sf_unit_t *u = sf_unit_new(&g_sc->intersections[0], NULL);
    if (!u)
        abort();
    sf_server_t *s = sf_server_new(u, NULL, 0, "127.0.0.1", 0);
    if (!s)
        abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    if (write(sv[1], adu, (size_t)len) != len)
        abort();
    int rc = sf_server_handle(s, sv[0], may_write, len);
    if (rc == 0) {
        uint8_t rep[300];
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        ssize_t n = read(sv[1], rep, sizeof rep);
        /* an answered request got an answer: same transaction id, a consistent length */
        if (n < 9 || memcmp(rep, adu, 4) != 0 || (rep[4] << 8 | rep[5]) != n - 6)
            abort();
    }
    close(sv[0]);
    close(sv[1]);
    sf_server_destroy(&s);
    sf_unit_destroy(&u);
    return 0;
}
