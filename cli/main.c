/* cli/main.c — `sigflow`: one launcher for every component. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "versions.h"

static void print_help(FILE *out)
{
    fprintf(out, "usage: sigflow COMMAND [ARGS]...\n"
                 "       sigflow --version | --help\n\n"
                 "commands:\n");
    for (const sf_command_t *c = sf_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n  %-10s   %s\n", c->name, c->usage, "", c->summary);
    fprintf(out, "\n`sigflow COMMAND --help` shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("sigflow %s (bus contract %d, register map %d, scenario %d)\n", SIGFLOW_VERSION,
               SF_BUS_VERSION, SF_REGMAP_VERSION, SF_SCENARIO_VERSION);
        return 0;
    }
    for (const sf_command_t *c = sf_commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "sigflow: unknown command '%s' (see sigflow --help)\n", argv[1]);
    return 2;
}
