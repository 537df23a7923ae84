/* cli_option: what went wrong in getopt_long, said once and by us. getopt's own messages are
 * off (opterr = 0 in main): printed next to ours they contradicted each other ("requires an
 * argument", then "unknown option"). Option strings start with ':' so that a missing value
 * comes back as ':' and an unknown option as '?'. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

const char *cli_option_problem(int c, char **argv, char *buf, size_t size)
{
	/* optind has moved past the option, except for an unknown short option inside a cluster
	 * (-xy), which optopt names. optopt is also set for a long option given a value it does
	 * not take (--lazy=1). */
	const char *arg = argv[optind - 1];
	bool long_option = !strncmp(arg, "--", 2);

	if (c == ':')
		snprintf(buf, size, "option '%s' needs a value", arg);
	else if (optopt && long_option)
		snprintf(buf, size, "option '%.*s' takes no value", (int)strcspn(arg, "="), arg);
	else if (optopt)
		snprintf(buf, size, "unknown option '-%c'", optopt);
	else
		snprintf(buf, size, "unknown option '%s'", arg);
	return buf;
}
