/* cli: commands of the `cachemax` program that live in their own file. Each takes the
 * arguments after the command word (argv[0] is the program) and returns the exit code:
 * 0 success, 1 failure, 2 usage error (130 when interrupted). */
#ifndef CACHEMAX_CLI_H
#define CACHEMAX_CLI_H

#include <stddef.h>

/* The option string every command gives getopt_long: ':' first, so that a missing value is
 * told apart from an unknown option (main sets opterr to 0). */
#define CLI_OPTSTRING ":"

/* What getopt_long's return c ('?' or ':') means, in buf, naming the option as typed. */
const char *cli_option_problem(int c, char **argv, char *buf, size_t size);

/* cachemax bench DIR --cache CACHEDIR [--size SIZE] [--runtime SEC] [--buffered] [--json] */
int cmd_bench(int argc, char **argv);

/* cachemax warm DIR [PATH|GLOB...] [--verify] [--jobs N] [--json] (cmd_warm.c) */
int cmd_warm(int argc, char **argv);

/* cachemax verify DIR [PATH...] [--json] (cmd_warm.c) */
int cmd_verify(int argc, char **argv);

/* cachemax web [--listen ADDR:PORT] */
int cmd_web(int argc, char **argv);

#endif
