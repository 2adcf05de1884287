/* cli/cmd_check.c — `sigflow check FILE [--set PATH=VALUE]...`: load and check a scenario. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "scenario.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sigflow check FILE [--set PATH=VALUE]...\n\n"
                 "Load the scenario FILE, apply the overrides, check everything and print\n"
                 "`ok: <summary>` (exit 0) or every error as `file:line:column: path: problem`\n"
                 "on stderr (exit 1). Usage errors exit 2.\n\n"
                 "  --set PATH=VALUE  override a field, e.g. --set run.seed=7,\n"
                 "                    --set intersections[0].phases[1].min_green_s=12,\n"
                 "                    --set control.strategy=actuated (repeatable; VALUE is a\n"
                 "                    JSON literal, a bare word is a string)\n"
                 "  -h, --help        this text\n");
}

int sf_cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    const char **sets = calloc((size_t)(argc > 0 ? argc : 1), sizeof *sets);
    size_t n_sets = 0;
    if (!sets) {
        fprintf(stderr, "sigflow check: out of memory\n");
        return 1;
    }
    int rc = 2;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--set") == 0) {
            if (k + 1 >= argc) {
                fprintf(stderr, "sigflow check: --set needs PATH=VALUE\n");
                goto usage_err;
            }
            sets[n_sets++] = argv[++k];
        } else if (strncmp(a, "--set=", 6) == 0) {
            sets[n_sets++] = a + 6;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sigflow check: unknown option '%s'\n", a);
            goto usage_err;
        } else if (file) {
            fprintf(stderr, "sigflow check: one FILE only (got '%s' and '%s')\n", file, a);
            goto usage_err;
        } else {
            file = a;
        }
    }
    if (!file) {
        fprintf(stderr, "sigflow check: missing FILE\n");
        goto usage_err;
    }
    sf_errors_t errs = {0, NULL};
    sf_scenario_t *sc = sf_scenario_load(file, sets, n_sets, &errs);
    if (!sc) {
        sf_errors_report(stderr, &errs, "sigflow check", file);
        rc = 1;
        goto out;
    }
    char line[512];
    printf("ok: %s\n", sf_scenario_summary(sc, line, sizeof line));
    sf_scenario_destroy(&sc);
    rc = 0;
    goto out;
usage_err:
    usage(stderr);
out:
    free(sets);
    return rc;
}
