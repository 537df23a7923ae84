/* config_options: the table of start options and what is derived from it (config_options.h).
 * The order of the rows is the order of `cachemax start --help`. */
#include "config/config_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/size.h"

#define FIELD(f) offsetof(struct config_start, f)
#define HELP_COLUMN 24   /* where the help text of an option starts in --help */

_Static_assert(sizeof(enum daemon_transport) == sizeof(int), "switch fields are int-sized");

const struct config_option config_options[] = {
	{ .name = "cache", .type = CONFIG_PATH, .value_name = "CACHEDIR", .offset = FIELD(cache),
	  .expect = "an absolute path such as /mnt/fast/cachemax", .flags = CONFIG_REQUIRED,
	  .help = "cache directory on the fast device, an absolute path (created\n"
	          "root-owned 0700 if missing); it and every directory above it\n"
	          "must be root's and not writable by others (sticky ones like\n"
	          "/tmp excepted above it)\n" },
	{ .name = "no-passthrough", .type = CONFIG_SWITCH, .offset = FIELD(daemon.passthrough),
	  .field_is_bool = true, .set_to = false,
	  .help = "serve every read and write through the daemon\n" },
	{ .name = "threads", .type = CONFIG_UINT, .value_name = "N", .offset = FIELD(daemon.threads),
	  .min = 1, .max = DAEMON_THREADS_MAX, .expect = "a number from 1 to 16",
	  .help = "FUSE worker threads (1-16, default 4)\n" },
	{ .name = "attr-timeout", .type = CONFIG_SECONDS, .value_name = "SEC",
	  .offset = FIELD(daemon.attr_timeout), .min = 0, .max = 86400, .expect = "seconds (0 to 86400)",
	  .help = "seconds the kernel may cache attributes (default 1) where\n"
	          "changes are not watched (stats: change_watch \"timeout\";\n"
	          "always on NFS, SMB, sshfs and other network file systems),\n"
	          "and within which an open of a cached file there is served\n"
	          "from its copy without opening the original again;\n"
	          "watched ones are cached until a change invalidates them\n" },
	{ .name = "entry-timeout", .type = CONFIG_SECONDS, .value_name = "SEC",
	  .offset = FIELD(daemon.entry_timeout), .min = 0, .max = 86400, .expect = "seconds (0 to 86400)",
	  .help = "the same for names (default 1); where changes are not\n"
	          "watched, a directory listing is kept as long as the\n"
	          "shorter of the two timeouts\n" },
	{ .name = "size", .type = CONFIG_SIZE, .value_name = "SIZE", .offset = FIELD(daemon.size),
	  .min = DAEMON_SIZE_MIN, .expect = "a size of at least 1M such as 512M or 20G",
	  .help = "cache capacity, e.g. 20G, at most the cache file system's size\n"
	          "(default: the size given before, or at first start 80% of the\n"
	          "cache file system's free space less what the other running\n"
	          "caches on it may still fill)\n" },
	{ .name = "pin", .type = CONFIG_GLOBS, .value_name = "GLOB", .offset = FIELD(daemon.pin),
	  .help = "keep matching files cached (relative to DIR; repeatable)\n" },
	{ .name = "exclude", .type = CONFIG_GLOBS, .value_name = "GLOB", .offset = FIELD(daemon.exclude),
	  .help = "never cache matching files (relative to DIR; repeatable)\n" },
	{ .name = "complete-max", .type = CONFIG_SIZE, .value_name = "SIZE",
	  .offset = FIELD(daemon.complete_max), .min = 0, .expect = "a size such as 64M (0: never)",
	  .help = "complete files up to SIZE in the background after their\n"
	          "first read (default 64M; 0: never)\n" },
	{ .name = "first-read", .type = CONFIG_CHOICE, .value_name = "MODE",
	  .offset = FIELD(daemon.first_read_fill), .choices = { "origin", "fill" },
	  .expect = "'origin' or 'fill'",
	  .help = "origin (default): a file the cache holds nothing of is read\n"
	          "from the original at native speed, and cached after its\n"
	          "close (a file over --complete-max: what that read left in\n"
	          "the page cache; the next read fills the rest); fill: that\n"
	          "read goes through the daemon and fills the cache as it\n"
	          "goes (one read of the original, not two:\n"
	          "for network shares and other metered or slow originals)\n" },
	{ .name = "io-uring", .type = CONFIG_SWITCH, .offset = FIELD(daemon.transport),
	  .set_to = DAEMON_TRANSPORT_IO_URING,
	  .help = "serve requests through FUSE-over-io_uring, one queue per CPU\n"
	          "(turns on the fuse module's enable_uring; without this\n"
	          "option io_uring is used only if enable_uring is already Y;\n"
	          "its value before is put back when the last daemon that\n"
	          "relies on it ends)\n" },
	{ .name = "no-io-uring", .type = CONFIG_SWITCH, .offset = FIELD(daemon.transport),
	  .set_to = DAEMON_TRANSPORT_DEV_FUSE,
	  .help = "serve requests through /dev/fuse only\n" },
	{ .name = "allow-submounts", .type = CONFIG_SWITCH, .offset = FIELD(allow_submounts),
	  .field_is_bool = true, .set_to = true,
	  .help = "accelerate DIR although other file systems are mounted\n"
	          "below it (they are then served through the mount too);\n"
	          "without it such a DIR is refused and they are listed\n" },
	{ .name = "public-stats", .type = CONFIG_SWITCH, .offset = FIELD(daemon.public_stats),
	  .field_is_bool = true, .set_to = true,
	  .help = "let every local user read 'stats' (the control socket is\n"
	          "then open to all; evict and every change stay root's)\n" },
	{ .name = "count-syscalls", .type = CONFIG_SWITCH, .offset = FIELD(daemon.count_syscalls),
	  .field_is_bool = true, .set_to = true,
	  .help = "where the kernel refuses fexit programs, count passthrough\n"
	          "reads with BPF hooks on every system call instead: exact\n"
	          "for read(2) and kin, but each system call on the machine\n"
	          "costs about 1.5 us more (without it: opens are counted)\n" },
	{ .name = "meta-catalog", .type = CONFIG_SWITCH, .offset = FIELD(daemon.meta_catalog),
	  .field_is_bool = true, .set_to = true,
	  .help = "experimental: keep directory listings and attributes in a\n"
	          "catalog on the cache device and, after a clean stop with\n"
	          "nothing written to the original's device since, serve\n"
	          "them without reading the original (docs/ARCHITECTURE.md\n"
	          "\"The metadata catalog\" lists the cases it does not yet\n"
	          "cover; off by default until they are closed)\n" },
	{ .name = "openless", .type = CONFIG_SWITCH, .offset = FIELD(daemon.openless),
	  .field_is_bool = true, .set_to = true,
	  .help = "experimental: opens and closes of files never reach the\n"
	          "daemon, and the kernel keeps file data in its page cache\n"
	          "across opens (cat or tar of many small files at the\n"
	          "original's speed once warm); no passthrough: large and\n"
	          "random reads of cached files go through the daemon; on a\n"
	          "local file system needs fanotify (refused without, and\n"
	          "with --allow-submounts); on NFS, SMB, FUSE (sshfs) and\n"
	          "other file systems whose files change elsewhere, file data\n"
	          "is kept for --attr-timeout, then checked against the\n"
	          "original\n" },
	{ .name = "foreground", .type = CONFIG_SWITCH, .offset = FIELD(foreground),
	  .field_is_bool = true, .set_to = true, .flags = CONFIG_NOT_IN_FILE,
	  .help = "run the daemon in this process, without a watchdog\n" },
};

const size_t config_option_count = sizeof(config_options) / sizeof(config_options[0]);
_Static_assert(sizeof(config_options) / sizeof(config_options[0]) <= CONFIG_OPTION_MAX,
               "raise CONFIG_OPTION_MAX");

void config_start_init(struct config_start *s)
{
	memset(s, 0, sizeof(*s));
	s->daemon.passthrough = true;
	s->daemon.transport = DAEMON_TRANSPORT_AUTO;
	s->daemon.threads = DAEMON_THREADS_DEFAULT;
	s->daemon.attr_timeout = DAEMON_TIMEOUT_DEFAULT;
	s->daemon.entry_timeout = DAEMON_TIMEOUT_DEFAULT;
	s->daemon.complete_max = DAEMON_COMPLETE_MAX_DEFAULT;
}

const struct config_option *config_option_find(const char *name)
{
	for (size_t i = 0; i < config_option_count; i++)
		if (!strcmp(config_options[i].name, name))
			return &config_options[i];
	return NULL;
}

const struct config_option *config_option_by_val(int val)
{
	if (val < CONFIG_OPTION_VAL_BASE || (size_t)(val - CONFIG_OPTION_VAL_BASE) >= config_option_count)
		return NULL;
	return &config_options[val - CONFIG_OPTION_VAL_BASE];
}

int config_bool_parse(const char *text, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* The pin or exclude list a CONFIG_GLOBS row fills, and its count. */
static unsigned *globs_count(const struct config_option *opt, struct config_start *s)
{
	return opt->offset == FIELD(daemon.pin) ? &s->daemon.pin_count : &s->daemon.exclude_count;
}

static int set_globs(const struct config_option *opt, const char *value, struct config_start *s,
                     const char *prefix, char *msg, size_t msg_size)
{
	char (*globs)[DAEMON_GLOB_MAX] = (void *)((char *)s + opt->offset);
	unsigned *count = globs_count(opt, s);
	const char *g = value;

	while (*g == '/')
		g++;  /* globs are relative to DIR; a leading slash means DIR itself */
	if (!*g || strlen(g) >= DAEMON_GLOB_MAX) {
		snprintf(msg, msg_size, "%s%s takes a glob relative to DIR such as 'db/*.sqlite' (up to %d "
		         "characters), not '%s'", prefix, opt->name, DAEMON_GLOB_MAX - 1, value);
		return -EINVAL;
	}
	if (*count == DAEMON_MAX_GLOBS) {
		snprintf(msg, msg_size, "at most %d %s%s globs", DAEMON_MAX_GLOBS, prefix, opt->name);
		return -E2BIG;
	}
	snprintf(globs[(*count)++], DAEMON_GLOB_MAX, "%s", g);
	return 0;
}

int config_option_set(const struct config_option *opt, const char *value, struct config_start *s,
                      const char *prefix, char *msg, size_t msg_size)
{
	void *field = (char *)s + opt->offset;
	char *end;

	switch (opt->type) {
	case CONFIG_SWITCH:
		if (opt->field_is_bool)
			*(bool *)field = opt->set_to != 0;
		else
			memcpy(field, &opt->set_to, sizeof(int));
		return 0;
	case CONFIG_PATH:
		/* Relative to where start happened to run is rarely meant, and then invisible. */
		if (value[0] != '/' || strlen(value) >= CONTROL_PATH_MAX)
			break;
		snprintf(field, CONTROL_PATH_MAX, "%s", value);
		return 0;
	case CONFIG_UINT: {
		long n = strtol(value, &end, 10);
		if (!*value || *end || n < opt->min || n > opt->max)
			break;
		*(unsigned *)field = (unsigned)n;
		return 0;
	}
	case CONFIG_SECONDS: {
		double v = strtod(value, &end);
		if (!*value || *end || !(v >= opt->min && v <= opt->max))
			break;
		*(double *)field = v;
		return 0;
	}
	case CONFIG_SIZE: {
		uint64_t v;
		if (size_parse(value, &v) < 0 || (double)v < opt->min)
			break;
		*(uint64_t *)field = v;
		return 0;
	}
	case CONFIG_CHOICE:
		if (strcmp(value, opt->choices[0]) && strcmp(value, opt->choices[1]))
			break;
		*(bool *)field = !strcmp(value, opt->choices[1]);
		return 0;
	case CONFIG_GLOBS:
		return set_globs(opt, value, s, prefix, msg, msg_size);
	}
	snprintf(msg, msg_size, "%s%s takes %s, not '%s'", prefix, opt->name, opt->expect, value);
	return -EINVAL;
}

void config_options_getopt(struct option *out, const struct option *extra, size_t extra_count)
{
	size_t n = 0;
	for (size_t i = 0; i < config_option_count; i++, n++)
		out[n] = (struct option){ config_options[i].name,
		                          config_options[i].type == CONFIG_SWITCH ? no_argument : required_argument,
		                          NULL, CONFIG_OPTION_VAL_BASE + (int)i };
	for (size_t i = 0; i < extra_count; i++, n++)
		out[n] = extra[i];
	out[n] = (struct option){ NULL, 0, NULL, 0 };
}

void config_options_print_help(FILE *f, int indent)
{
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];
		const char *h = o->help;
		char head[64];
		int column = snprintf(head, sizeof(head), "--%s%s%s", o->name, o->value_name ? " " : "",
		                      o->value_name ? o->value_name : "");
		while (*h) {
			size_t n = strcspn(h, "\n");
			fprintf(f, "%*s%-*s%.*s\n", indent, "", HELP_COLUMN, column ? head : "", (int)n, h);
			column = 0;
			h += n + (h[n] == '\n');
		}
	}
}

/* A size as the config file and the command line take it back: the largest exact unit. */
static void size_text(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "KMGTPE";
	int u = -1;
	while (v && v % 1024 == 0 && u + 1 < (int)sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%llu", (unsigned long long)v);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)v, units[u]);
}

/* Appends to buf at *len; -ENOSPC when full. */
static int append(char *buf, size_t size, size_t *len, bool as_args, const char *name, const char *value)
{
	int n;
	if (as_args && !value)
		n = snprintf(buf + *len, size - *len, "%s--%s", *len ? " " : "", name);
	else if (as_args)
		n = snprintf(buf + *len, size - *len, "%s--%s '%s'", *len ? " " : "", name, value);
	else
		n = snprintf(buf + *len, size - *len, "%s=%s\n", name, value ? value : "yes");
	if (n < 0 || (size_t)n >= size - *len)
		return -ENOSPC;
	*len += (size_t)n;
	return 0;
}

int config_start_format(const struct config_start *s, bool as_args, char *buf, size_t size)
{
	struct config_start def;
	size_t len = 0;
	int rc = 0;

	config_start_init(&def);
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < config_option_count && rc == 0; i++) {
		const struct config_option *o = &config_options[i];
		const void *field = (const char *)s + o->offset, *def_field = (const char *)&def + o->offset;
		char value[64];

		switch (o->type) {
		case CONFIG_SWITCH: {
			int v = o->field_is_bool ? *(const bool *)field : 0, d = o->field_is_bool ? *(const bool *)def_field : 0;
			if (!o->field_is_bool) {
				memcpy(&v, field, sizeof(int));
				memcpy(&d, def_field, sizeof(int));
			}
			if (v == o->set_to && v != d && !(o->flags & CONFIG_NOT_IN_FILE))
				rc = append(buf, size, &len, as_args, o->name, NULL);
			break;
		}
		case CONFIG_PATH:
			if (strcmp(field, def_field))
				rc = append(buf, size, &len, as_args, o->name, field);
			break;
		case CONFIG_UINT:
			if (*(const unsigned *)field != *(const unsigned *)def_field) {
				snprintf(value, sizeof(value), "%u", *(const unsigned *)field);
				rc = append(buf, size, &len, as_args, o->name, value);
			}
			break;
		case CONFIG_SECONDS:
			if (*(const double *)field != *(const double *)def_field) {
				snprintf(value, sizeof(value), "%g", *(const double *)field);
				rc = append(buf, size, &len, as_args, o->name, value);
			}
			break;
		case CONFIG_SIZE:
			if (*(const uint64_t *)field != *(const uint64_t *)def_field) {
				size_text(*(const uint64_t *)field, value, sizeof(value));
				rc = append(buf, size, &len, as_args, o->name, value);
			}
			break;
		case CONFIG_CHOICE:
			if (*(const bool *)field != *(const bool *)def_field)
				rc = append(buf, size, &len, as_args, o->name, o->choices[*(const bool *)field]);
			break;
		case CONFIG_GLOBS: {
			const char (*globs)[DAEMON_GLOB_MAX] = field;
			unsigned count = o->offset == FIELD(daemon.pin) ? s->daemon.pin_count : s->daemon.exclude_count;
			for (unsigned g = 0; g < count && rc == 0; g++)
				rc = append(buf, size, &len, as_args, o->name, globs[g]);
			break;
		}
		}
	}
	return rc;
}
