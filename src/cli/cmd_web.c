/* cachemax web: the host-level metrics and dashboard server (src/web/web.h, docs/WEB.md). The
 * command checks its arguments and who runs it; the server is the web layer's. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "web/web.h"

int cmd_web(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = WEB_LISTEN_DEFAULT;
	/* CACHEMAX_CHARTJS: another Chart.js file (tests use a missing one). */
	const char *chartjs = getenv("CACHEMAX_CHARTJS");
	char problem[256];
	int c;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (c != 'l') {
			fprintf(stderr, "cachemax: 'web': %s\nrun 'cachemax help' for usage\n",
			        cli_option_problem(c, argv, problem, sizeof(problem)));
			return 2;
		}
		listen = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "cachemax: 'web' takes no arguments besides --listen ADDR:PORT\n"
		        "run 'cachemax help' for usage\n");
		return 2;
	}
	/* The daemons answer stats and evict to root, and the token file is root's. */
	if (geteuid() != 0) {
		fprintf(stderr, "cachemax: 'web' must be run as root (the daemons' control sockets answer root)\n");
		return 1;
	}
	return web_server_run(listen, chartjs && *chartjs ? chartjs : WEB_CHARTJS_DEFAULT) < 0 ? 1 : 0;
}
