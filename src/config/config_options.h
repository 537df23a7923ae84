/* config_options: the one table of `cachemax start` options. Each row (name, type, default,
 * range, help, where the value goes) drives everything an option touches:
 *   - getopt_long's long options for `start` and `enable` (config_options_getopt),
 *   - their --help text (config_options_print_help),
 *   - the defaults (config_start_init),
 *   - the parsing and its messages, on the command line and in the config file
 *     (config_option_set: one message per bad value, naming the option),
 *   - the text of the options a daemon runs with, for its state record and for the config
 *     file (config_start_format).
 * A new knob is one row in config_options.c plus its field in struct daemon_options (or here).
 * Errors: 0 or -errno; messages in the caller's buffer.
 */
#ifndef CACHEMAX_CONFIG_OPTIONS_H
#define CACHEMAX_CONFIG_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/daemon.h"

#define CONFIG_MESSAGE_MAX 768
/* getopt_long values of the table's rows: CONFIG_OPTION_VAL_BASE + row index (above any char) */
#define CONFIG_OPTION_VAL_BASE 0x1000
/* Rows the table may have (checked at build time): room for a command's getopt array. */
#define CONFIG_OPTION_MAX 48

/* Everything `start` is told: what the daemon gets, and what only the CLI acts on. */
struct config_start {
	struct daemon_options daemon;
	char cache[CONTROL_PATH_MAX];   /* --cache as given (absolute; resolved into daemon.cache) */
	bool foreground;                /* run in this process (never from the config file) */
	bool allow_submounts;           /* accelerate a directory with mounts below it */
};

enum config_type {
	CONFIG_SWITCH,    /* no value: sets an int-sized field (bool or enum) to `set_to` */
	CONFIG_PATH,      /* an absolute path, into a char[CONTROL_PATH_MAX] */
	CONFIG_UINT,      /* unsigned, min..max */
	CONFIG_SECONDS,   /* double, min..max seconds */
	CONFIG_SIZE,      /* uint64_t bytes (util/size.h syntax), at least min (0 allowed if min is 0) */
	CONFIG_CHOICE,    /* one of two words: choices[0] sets a bool field false, choices[1] true */
	CONFIG_GLOBS,     /* repeatable glob relative to DIR, appended to the pin or exclude list */
};

#define CONFIG_NOT_IN_FILE 0x1u   /* command line only (--foreground) */
#define CONFIG_REQUIRED    0x2u   /* start and enable refuse to go on without it (--cache) */

struct config_option {
	const char *name;       /* long option without "--", and the config file's key */
	enum config_type type;
	const char *value_name; /* in --help: "SIZE", "N"; NULL for switches */
	size_t offset;          /* where the value goes in struct config_start */
	bool field_is_bool;     /* CONFIG_SWITCH: the field is a bool (else an int-sized enum) */
	int set_to;             /* CONFIG_SWITCH: the value it stores */
	double min, max;        /* CONFIG_UINT, CONFIG_SECONDS, CONFIG_SIZE (min only) */
	const char *choices[2]; /* CONFIG_CHOICE */
	const char *expect;     /* what a good value looks like, for "--X takes EXPECT, not 'V'" */
	const char *help;       /* --help lines after the option (default, range, meaning) */
	unsigned flags;         /* CONFIG_NOT_IN_FILE, CONFIG_REQUIRED */
};

extern const struct config_option config_options[];
extern const size_t config_option_count;

/* The defaults every row gives. */
void config_start_init(struct config_start *s);
/* The row named `name` (without "--"), or NULL. */
const struct config_option *config_option_find(const char *name);
/* The row whose getopt_long value is `val`, or NULL (a command's own option). */
const struct config_option *config_option_by_val(int val);

/* Parse `value` (NULL for a switch) into s. On a bad value -EINVAL and, in msg, what is wrong
 * and what is expected: "--size takes a size ..., not 'x'" (`prefix` "--" on the command line,
 * "" in the config file). -E2BIG when a repeatable option is given too often. */
int config_option_set(const struct config_option *opt, const char *value, struct config_start *s,
                      const char *prefix, char *msg, size_t msg_size);

/* Fill `out` (room for config_option_count + extra_count + 1 entries) with the table's long
 * options followed by `extra` (a command's own, e.g. --all) and the terminating zero entry. */
void config_options_getopt(struct option *out, const struct option *extra, size_t extra_count);

/* The table as --help lines ("--name VALUE" in a column, then the help), each after indent. */
void config_options_print_help(FILE *f, int indent);

/* The values of s that differ from the defaults, one "name=value" (a switch: "name=yes") per
 * line when `as_args` is false (the config file's form, globs one line each); as command-line
 * arguments ("--size 20G --pin 'db/[a-z]*'") when true (the state record's "options" line).
 * -ENOSPC if it does not fit. */
int config_start_format(const struct config_start *s, bool as_args, char *buf, size_t size);

/* A yes/no word of the config file: yes/true/on/1 and no/false/off/0. -EINVAL otherwise. */
int config_bool_parse(const char *text, bool *out);

#endif
