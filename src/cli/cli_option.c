/* cli_option: what went wrong in getopt_long, said once and by us, and the checks every
 * command makes before it starts (usage errors, root, a trusted run directory). getopt's own messages are
 * off (opterr = 0 in main): printed next to ours they contradicted each other ("requires an
 * argument", then "unknown option"). Option strings start with ':' so that a missing value
 * comes back as ':' and an unknown option as '?'. */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "control/control_trust.h"

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

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cachemax: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nrun 'cachemax help' for usage\n");
	return CLI_EXIT_USAGE;
}

int cli_option_error(const char *cmd, int c, char **argv)
{
	char problem[CONTROL_PATH_MAX + 64];
	return cli_usage_error("'%s': %s", cmd, cli_option_problem(c, argv, problem, sizeof(problem)));
}

bool cli_refuse_non_root(const char *what)
{
	if (geteuid() == 0)
		return false;
	fprintf(stderr, "cachemax: '%s' changes what root's daemon does: run it as root\n", what);
	return true;
}

bool cli_refuse_untrusted_run_dir(void)
{
	char why[CONTROL_WHY_MAX];
	if (control_run_dir_check(why, sizeof(why)) == 0)
		return false;
	fprintf(stderr, "cachemax: refusing to trust the run directory: %s\n", why);
	return true;
}
