/* cli: the commands of the `cachemax` program. Each cmd_X takes the arguments after the
 * command word (argv[0] is the program) and returns the exit code: 0 success, 1 failure,
 * 2 usage error (130 when interrupted). A new command is a cmd_X here (in a file of its own,
 * cmd_X.c) and one row of the command table in main.c (name, function, usage, summary, help
 * of its options). */
#ifndef CACHEMAX_CLI_H
#define CACHEMAX_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_EXIT_USAGE 2

/* The option string every command gives getopt_long: ':' first, so that a missing value is
 * told apart from an unknown option (main sets opterr to 0). */
#define CLI_OPTSTRING ":"

/* What getopt_long's return c ('?' or ':') means, in buf, naming the option as typed. */
const char *cli_option_problem(int c, char **argv, char *buf, size_t size);
/* "cachemax: MESSAGE" and where to find the usage, on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* getopt_long returned '?' or ':' for command cmd: says which option and how; CLI_EXIT_USAGE. */
int cli_option_error(const char *cmd, int c, char **argv);
/* Commands that change something are root's: true (and said) if this is not root. */
bool cli_refuse_non_root(const char *what);
/* Before reading state records: true (and said) if the run directory is not root's. */
bool cli_refuse_untrusted_run_dir(void);

/* cachemax start DIR --cache CACHEDIR [options] | start --all [--config FILE] (cmd_start.c) */
int cmd_start(int argc, char **argv);
/* cachemax stop DIR [--lazy] | stop --all [--config FILE] [--lazy] */
int cmd_stop(int argc, char **argv);
/* cachemax enable DIR --cache CACHEDIR [options] [--config FILE] */
int cmd_enable(int argc, char **argv);
/* cachemax disable DIR [--config FILE] */
int cmd_disable(int argc, char **argv);

/* cachemax systemd-generator NORMAL_DIR [EARLY_DIR LATE_DIR] (cmd_systemd.c); also run as
 * cachemax-generator by systemd */
int cmd_systemd_generator(int argc, char **argv);

/* cachemax bench DIR --cache CACHEDIR [--size SIZE] [--runtime SEC] [--buffered] [--json] */
int cmd_bench(int argc, char **argv);

/* cachemax warm DIR [PATH|GLOB...] [--verify] [--jobs N] [--json] (cmd_warm.c) */
int cmd_warm(int argc, char **argv);

/* cachemax verify DIR [PATH...] [--json] (cmd_warm.c) */
int cmd_verify(int argc, char **argv);

/* cachemax web [--listen ADDR:PORT] */
int cmd_web(int argc, char **argv);

#endif
