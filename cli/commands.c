/* cli/commands.c — the subcommand table. Add a line here when a subcommand works. */
#include "commands.h"

#include <stddef.h>

const sf_command_t sf_commands[] = {
    {NULL, NULL, NULL, NULL},
};
