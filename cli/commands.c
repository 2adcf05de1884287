/* cli/commands.c — the subcommand table. Add a line here when a subcommand works. */
#include "commands.h"

#include <stddef.h>

const sf_command_t sf_commands[] = {
    {"check", "FILE [--set PATH=VALUE]...", "check a scenario file; print ok and a summary or every error",
     sf_cmd_check},
    {NULL, NULL, NULL, NULL},
};
