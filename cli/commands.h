/* cli/commands.h — the launcher's subcommands. Each lives in cli/cmd_<name>.c.
 *
 * A subcommand is listed in commands.c only once it works: `sigflow --help` never shows
 * a stub. Each returns the process exit status (0 ok, 1 a finding such as a bad
 * scenario, 2 a usage error) and prints its own errors to stderr.
 */
#ifndef SIGFLOW_COMMANDS_H
#define SIGFLOW_COMMANDS_H

typedef int (*sf_cmd_fn)(int argc, char **argv); /* argv[0] is the subcommand name */

typedef struct {
    const char *name;    /* word after `sigflow` */
    const char *usage;   /* argument synopsis, e.g. "SCENARIO [--set PATH=VALUE]..." */
    const char *summary; /* one line for --help */
    sf_cmd_fn run;
} sf_command_t;

/* The table, terminated by an entry whose name is NULL. */
extern const sf_command_t sf_commands[];

int sf_cmd_check(int argc, char **argv);
int sf_cmd_controller(int argc, char **argv);
int sf_cmd_bus(int argc, char **argv);
int sf_cmd_plan(int argc, char **argv);
int sf_cmd_regmap(int argc, char **argv);
int sf_cmd_unit(int argc, char **argv);
int sf_cmd_plot(int argc, char **argv);
int sf_cmd_view(int argc, char **argv);
int sf_cmd_run(int argc, char **argv);
int sf_cmd_sim(int argc, char **argv);
int sf_cmd_probe(int argc, char **argv);
int sf_cmd_record(int argc, char **argv);
int sf_cmd_replay(int argc, char **argv);
int sf_cmd_keygen(int argc, char **argv);

#endif
