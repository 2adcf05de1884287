/* cli/commands.c — the subcommand table. Add a line here when a subcommand works. */
#include "commands.h"

#include <stddef.h>

const sf_command_t sf_commands[] = {
    {"regmap", "--md | --csv", "print the unit's Modbus register map (Markdown or CSV)",
     sf_cmd_regmap},
    {"check", "FILE [--set PATH=VALUE]...",
     "check a scenario file: `ok` and a summary, or every error with file:line:column",
     sf_cmd_check},
    {"plan", "webster|greenwave SCENARIO [OPTIONS] [--set PATH=VALUE]...",
     "Webster cycle and splits, or green-wave offsets and bandwidth (--write FILE)", sf_cmd_plan},
    {"bus", "[--pub ENDPOINT] [--sub ENDPOINT] [--hwm N]",
     "run a standalone ZeroMQ bus forwarder (XSUB/XPUB); stops on SIGINT/SIGTERM", sf_cmd_bus},
    {"unit", "SCENARIO [--intersection ID]... [--listen ADDR] [--base-port N] [--allow IP]...",
     "run signal units on the wall clock behind Modbus TCP (prints `ready ID ADDR:PORT`)",
     sf_cmd_unit},
    {"controller",
     "SCENARIO [--unit ID=HOST:PORT]... [--base-port N] [--host H] [--log FILE] [--greenwave]",
     "run the central controller on the wall clock against units anywhere (one line per event)",
     sf_cmd_controller},
    {"plot", "time-space|coordination|queues RUN --out FILE.png [--ix ID] [--size WxH]",
     "draw a plot of a recorded run as a PNG (offscreen, no display needed)", sf_cmd_plot},
    {"view", "SCENARIO [--bus ENDPOINT] [--pub ENDPOINT] [--record FILE] [--screenshot FILE.png --at S]",
     "live window on a running simulation bus (lamps, vehicles, panel, controls)", sf_cmd_view},
    {"run",
     "[SCENARIO] [--headless] [--duration S] [--seed N] [--set PATH=VALUE]... [--report FILE]"
     " [--realtime [F]] [--no-controller] [--inproc] [--screenshot FILE.png --at S]",
     "the whole scenario in one process: bus, simulator, units (Modbus TCP), controller",
     sf_cmd_run},
    {"sim",
     "SCENARIO [--bus PUB_EP,SUB_EP] [--expect NAME]... [--duration S] [--seed N] [--report FILE]",
     "the simulator alone as clock master on an existing bus, waiting for the named participants",
     sf_cmd_sim},
    {"probe",
     "HOST:PORT [--unit-id N] [--timeout S] [--no-fallback] [--json] [--scenario F --intersection ID]",
     "conformance test of any Modbus signal unit against the register map (pass/fail table)",
     sf_cmd_probe},
    {NULL, NULL, NULL, NULL},
};
