/* cli/commands.c — the subcommand table. Add a line here when a subcommand works. */
#include "commands.h"

#include <stddef.h>

const sf_command_t sf_commands[] = {
    {"regmap", "--md | --csv", "print the unit's Modbus register map (Markdown or CSV)",
     sf_cmd_regmap},
    {NULL, NULL, NULL, NULL},
};
