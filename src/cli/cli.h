/* cli: commands of the `cachemax` program that live in their own file. Each takes the
 * arguments after the command word (argv[0] is the program) and returns the exit code:
 * 0 success, 1 failure, 2 usage error (130 when interrupted). */
#ifndef CACHEMAX_CLI_H
#define CACHEMAX_CLI_H

/* cachemax bench DIR --cache CACHEDIR [--size SIZE] [--runtime SEC] [--buffered] [--json] */
int cmd_bench(int argc, char **argv);

/* cachemax web [--listen ADDR:PORT] */
int cmd_web(int argc, char **argv);

#endif
