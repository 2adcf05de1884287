/* cli/cmd_keygen.c — `sigflow keygen`: write a CurveZMQ key pair for the bus. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "curve.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sigflow keygen --out DIR [--name NAME]\n"
                 "  --out DIR    directory to write into (must exist)\n"
                 "  --name NAME  file name stem, letters, digits, - and _ (default \"bus\")\n"
                 "Writes DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub (public), Z85 text;\n"
                 "never overwrites. Copy NAME.pub into a server's authorised-keys directory.\n");
}

int sf_cmd_keygen(int argc, char **argv)
{
    const char *dir = NULL, *name = "bus";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sigflow keygen: unknown option or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--out") == 0) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--name") == 0) {
            name = argv[++i];
        } else {
            fprintf(stderr, "sigflow keygen: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "sigflow keygen: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (sf_curve_keygen(dir, name) != 0) {
        if (errno == EINVAL)
            fprintf(stderr, "sigflow keygen: --name: expected letters, digits, - or _, got '%s'\n",
                    name);
        else
            fprintf(stderr, "sigflow keygen: %s/%s: %s\n", dir, name, strerror(errno));
        return errno == EINVAL ? 2 : 1;
    }
    printf("%s/%s.key\n%s/%s.pub\n", dir, name, dir, name);
    return 0;
}
