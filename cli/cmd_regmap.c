/* cli/cmd_regmap.c — `sigflow regmap`: print the Modbus register map from its one table. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "regmap.h"

int sf_cmd_regmap(int argc, char **argv)
{
    int md = 0, csv = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--md") == 0) {
            md = 1;
        } else if (strcmp(argv[i], "--csv") == 0) {
            csv = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: sigflow regmap --md | --csv\n"
                   "Print the unit's Modbus register map (version %d) as Markdown (the\n"
                   "source of proto/REGISTERS.md) or as CSV (proto/registers.csv).\n",
                   SF_REGMAP_VERSION);
            return 0;
        } else {
            fprintf(stderr, "sigflow regmap: unknown argument '%s' (expected --md or --csv)\n",
                    argv[i]);
            return 2;
        }
    }
    if (md + csv != 1) {
        fprintf(stderr, "sigflow regmap: give exactly one of --md, --csv\n");
        return 2;
    }
    char err[256];
    if (sf_regmap_check(err, sizeof err) != 0) {
        fprintf(stderr, "sigflow regmap: the register table is inconsistent: %s\n", err);
        return 1;
    }
    int rc = md ? sf_regmap_write_md(stdout) : sf_regmap_write_csv(stdout);
    if (rc != 0 || fflush(stdout) != 0) {
        perror("sigflow regmap: write");
        return 1;
    }
    return 0;
}
