/* cmd_bench: `cachemax bench` — parses the options, turns Ctrl-C and SIGTERM into a cancel of the
 * run (which then cleans up), and prints the table or the JSON object. Progress goes to stderr
 * only when it is a terminal, so a piped run prints nothing but the result. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "control/control.h"
#include "sys/sys.h"
#include "util/size.h"

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

static int bench_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bench_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cachemax: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: cachemax bench DIR --cache CACHEDIR [--size SIZE] [--runtime SEC] [--buffered] [--json]\n"
	        "run 'cachemax help' for more\n");
	return EXIT_USAGE;
}

static void on_signal(int sig)
{
	bench_cancel();
}

/* No SA_RESTART: a wait in progress returns EINTR and the run sees the cancel at once. Installed
 * even where the shell set SIGINT to ignored (a background job): the cleanup must run. */
static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "buffered", no_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench_options o;   /* two paths: not on the stack */
	static struct bench_result r;
	const char *cache = NULL, *fault = getenv("CACHEMAX_FAULT");
	bool json = false;
	char err[2048];
	int c, rc;

	memset(&o, 0, sizeof(o));
	o.size = BENCH_SIZE_DEFAULT;
	o.runtime = BENCH_RUNTIME_DEFAULT;
	o.direct = true;
	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c':
			if (optarg[0] != '/')
				return bench_usage("--cache takes an absolute path such as /mnt/fast/cmcache, not '%s'", optarg);
			cache = optarg;
			break;
		case 's':
			if (size_parse(optarg, &o.size) < 0 || o.size < BENCH_SIZE_MIN)
				return bench_usage("--size takes a size of at least 1M such as 64M or 1G, not '%s'", optarg);
			break;
		case 'r':
			o.runtime = strtod(optarg, &end);
			if (end == optarg || *end || !(o.runtime >= BENCH_RUNTIME_MIN && o.runtime <= BENCH_RUNTIME_MAX))
				return bench_usage("--runtime takes seconds per test (0.05 to 3600), not '%s'", optarg);
			break;
		case 'b': o.direct = false; break;
		case 'j': json = true; break;
		default: return bench_usage("'bench': %s", cli_option_problem(c, argv, err, sizeof(err)));
		}
	}
	if (optind + 1 != argc)
		return bench_usage("%s", "'bench' takes exactly one directory");
	if (!cache)
		return bench_usage("'bench %s' needs --cache CACHEDIR (a directory on the fast device)", argv[optind]);
	if (control_resolve_path(argv[optind], o.dir, sizeof(o.dir)) < 0 ||
	    control_resolve_path(cache, o.cache, sizeof(o.cache)) < 0) {
		fprintf(stderr, "cachemax: cannot resolve the paths given\n");
		return 1;
	}
	/* Faults for tests hit the bench's own scratch-file I/O (the daemon it starts gets none). */
	if (fault && *fault && sys_fault_parse(fault) < 0) {
		fprintf(stderr, "cachemax: CACHEMAX_FAULT='%s' is not op:nth:ERR[,...]\n", fault);
		return EXIT_USAGE;
	}
	o.progress = isatty(STDERR_FILENO);
	catch_signals();
	rc = bench_run(&o, &r, err, sizeof(err));
	if (rc == -EINTR && !strcmp(err, "interrupted")) {
		fprintf(stderr, "cachemax: bench interrupted; everything it made was removed\n");
		return EXIT_INTERRUPTED;
	}
	if (rc < 0) {
		fprintf(stderr, "cachemax: bench: %s\n", err[0] ? err : strerror(-rc));
		return 1;
	}
	if (json)
		bench_print_json(stdout, &o, &r);
	else
		bench_print_table(stdout, &o, &r);
	return fflush(stdout) == 0 ? 0 : 1;
}
