/* Unit tests for src/config/: the option table (defaults, parsing and its messages, getopt
 * entries, --help, the formatted options round-tripping through the parser) and the config
 * file (sections, every kind of mistake reported with its line, enable/disable rewriting one
 * section and keeping the rest). Files live in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config_file.h"
#include "config/config_options.h"

static char base[256];

static int setup(void **state)
{
	char tmpl[] = "/tmp/cm-test-config.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	snprintf(base, sizeof(base), "%s", tmpl);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0644), 0);
}

static char *read_file(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_defaults(void **state)
{
	struct config_start s;
	config_start_init(&s);
	assert_true(s.daemon.passthrough);
	assert_int_equal(s.daemon.threads, 4);
	assert_true(s.daemon.attr_timeout == 1.0 && s.daemon.entry_timeout == 1.0);
	assert_int_equal(s.daemon.complete_max, 64ull << 20);
	assert_int_equal(s.daemon.size, 0);
	assert_int_equal(s.daemon.transport, DAEMON_TRANSPORT_AUTO);
	assert_false(s.daemon.first_read_fill || s.foreground || s.allow_submounts || s.cache[0]);
}

/* Every row: a name, help, getopt entry with the right argument kind; a switch has no value
 * name, anything else has one and an `expect` text for its message. */
static void test_table_rows(void **state)
{
	struct option opts[CONFIG_OPTION_MAX + 2];
	const struct option extra[] = { { "all", no_argument, NULL, 1 } };

	assert_true(config_option_count <= CONFIG_OPTION_MAX);
	config_options_getopt(opts, extra, 1);
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];
		assert_non_null(o->name);
		assert_non_null(o->help);
		assert_string_equal(opts[i].name, o->name);
		assert_int_equal(opts[i].has_arg, o->type == CONFIG_SWITCH ? no_argument : required_argument);
		assert_ptr_equal(config_option_by_val(opts[i].val), o);
		assert_ptr_equal(config_option_find(o->name), o);
		assert_true((o->type == CONFIG_SWITCH) == (o->value_name == NULL));
		if (o->type != CONFIG_SWITCH && o->type != CONFIG_GLOBS)
			assert_non_null(o->expect);
	}
	assert_string_equal(opts[config_option_count].name, "all");
	assert_null(opts[config_option_count + 1].name);
	assert_null(config_option_by_val('c'));
	assert_null(config_option_find("nope"));
}

static void expect_error(const char *name, const char *value, const char *message)
{
	struct config_start s;
	char msg[CONFIG_MESSAGE_MAX];
	config_start_init(&s);
	assert_int_equal(config_option_set(config_option_find(name), value, &s, "--", msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, message);
}

/* The messages are those start printed before the table (tests/integ/t-cli.sh checks some). */
static void test_parse_and_messages(void **state)
{
	struct config_start s;
	char msg[CONFIG_MESSAGE_MAX];

	config_start_init(&s);
	assert_int_equal(config_option_set(config_option_find("size"), "20G", &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(s.daemon.size, 20ull << 30);
	assert_int_equal(config_option_set(config_option_find("threads"), "16", &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(s.daemon.threads, 16);
	assert_int_equal(config_option_set(config_option_find("attr-timeout"), "0.5", &s, "--", msg, sizeof(msg)), 0);
	assert_true(s.daemon.attr_timeout == 0.5);
	assert_int_equal(config_option_set(config_option_find("complete-max"), "0", &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(s.daemon.complete_max, 0);
	assert_int_equal(config_option_set(config_option_find("first-read"), "fill", &s, "--", msg, sizeof(msg)), 0);
	assert_true(s.daemon.first_read_fill);
	assert_int_equal(config_option_set(config_option_find("no-passthrough"), NULL, &s, "--", msg, sizeof(msg)), 0);
	assert_false(s.daemon.passthrough);
	assert_int_equal(config_option_set(config_option_find("no-io-uring"), NULL, &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(s.daemon.transport, DAEMON_TRANSPORT_DEV_FUSE);
	assert_int_equal(config_option_set(config_option_find("pin"), "/db/*.sqlite", &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(s.daemon.pin_count, 1);
	assert_string_equal(s.daemon.pin[0], "db/*.sqlite");
	assert_int_equal(config_option_set(config_option_find("cache"), "/mnt/fast/c", &s, "--", msg, sizeof(msg)), 0);
	assert_string_equal(s.cache, "/mnt/fast/c");

	expect_error("cache", "rel/c", "--cache takes an absolute path such as /mnt/fast/cachemax, not 'rel/c'");
	expect_error("size", "512K", "--size takes a size of at least 1M such as 512M or 20G, not '512K'");
	expect_error("size", "lots", "--size takes a size of at least 1M such as 512M or 20G, not 'lots'");
	expect_error("complete-max", "-1", "--complete-max takes a size such as 64M (0: never), not '-1'");
	expect_error("threads", "17", "--threads takes a number from 1 to 16, not '17'");
	expect_error("threads", "0", "--threads takes a number from 1 to 16, not '0'");
	expect_error("threads", "", "--threads takes a number from 1 to 16, not ''");
	expect_error("attr-timeout", "86401", "--attr-timeout takes seconds (0 to 86400), not '86401'");
	expect_error("entry-timeout", "x", "--entry-timeout takes seconds (0 to 86400), not 'x'");
	expect_error("first-read", "later", "--first-read takes 'origin' or 'fill', not 'later'");
	expect_error("pin", "/", "--pin takes a glob relative to DIR such as 'db/*.sqlite' (up to 511 characters), not '/'");

	config_start_init(&s);
	for (int i = 0; i < DAEMON_MAX_GLOBS; i++)
		assert_int_equal(config_option_set(config_option_find("exclude"), "*.tmp", &s, "--", msg, sizeof(msg)), 0);
	assert_int_equal(config_option_set(config_option_find("exclude"), "*.tmp", &s, "--", msg, sizeof(msg)), -E2BIG);
	assert_string_equal(msg, "at most 16 --exclude globs");
	/* the config file names keys without "--" */
	assert_int_equal(config_option_set(config_option_find("threads"), "99", &s, "", msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "threads takes a number from 1 to 16, not '99'");
}

/* Formatting what differs from the defaults and parsing it back gives the same options. */
static void test_format_round_trip(void **state)
{
	static struct config_start s, back;
	char text[4096], msg[CONFIG_MESSAGE_MAX], *line, *save;

	config_start_init(&s);
	assert_int_equal(config_start_format(&s, false, text, sizeof(text)), 0);
	assert_string_equal(text, "");
	const char *const given[][2] = { { "cache", "/c" }, { "size", "1536M" }, { "threads", "2" },
	                                 { "entry-timeout", "0.25" }, { "pin", "a/*" }, { "pin", "b" },
	                                 { "first-read", "fill" }, { "no-passthrough", NULL },
	                                 { "io-uring", NULL }, { "foreground", NULL } };
	for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
		assert_int_equal(config_option_set(config_option_find(given[i][0]), given[i][1], &s, "--", msg,
		                                   sizeof(msg)), 0);
	assert_int_equal(config_start_format(&s, false, text, sizeof(text)), 0);
	assert_string_equal(text, "cache=/c\nno-passthrough=yes\nthreads=2\nentry-timeout=0.25\nsize=1536M\n"
	                          "pin=a/*\npin=b\nfirst-read=fill\nio-uring=yes\n");
	config_start_init(&back);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		const struct config_option *o;
		*eq = '\0';
		o = config_option_find(line);
		assert_int_equal(config_option_set(o, o->type == CONFIG_SWITCH ? NULL : eq + 1, &back, "", msg,
		                                   sizeof(msg)), 0);
	}
	back.foreground = true;  /* never written: for the command line only */
	assert_memory_equal(&s, &back, sizeof(s));
	assert_int_equal(config_start_format(&s, true, text, sizeof(text)), 0);
	assert_string_equal(text, "--cache '/c' --no-passthrough --threads '2' --entry-timeout '0.25' "
	                          "--size '1536M' --pin 'a/*' --pin 'b' --first-read 'fill' --io-uring");
	assert_int_equal(config_start_format(&s, true, text, 20), -ENOSPC);
}

static void test_help(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	config_options_print_help(f, 2);
	fclose(f);
	for (size_t i = 0; i < config_option_count; i++) {
		char head[64];
		snprintf(head, sizeof(head), "  --%s", config_options[i].name);
		assert_non_null(strstr(text, head));
	}
	assert_non_null(strstr(text, "  --threads N             FUSE worker threads (1-16, default 4)\n"));
	free(text);
}

static void test_file_load(void **state)
{
	static struct config_file cf;
	char path[PATH_MAX], msg[PATH_MAX];
	const struct config_section *sec;

	snprintf(path, sizeof(path), "%s/cachemax.conf", base);
	write_file(path, "# comment\n"
	                 "[/srv/data]\n"
	                 "cache = /mnt/fast/data\n"
	                 "size = 2G\n"
	                 "pin = db/*.sqlite ; not a comment\n"
	                 "pin = *.idx\n"
	                 "no-passthrough\n"
	                 "public-stats = no\n"
	                 "\n"
	                 "[ /srv/other ]\n"
	                 "cache=/mnt/fast/other\n"
	                 "count-syscalls = yes\n");
	assert_int_equal(config_file_load(path, &cf, msg, sizeof(msg)), 0);
	assert_null(cf.errors);
	assert_int_equal(cf.count, 2);
	sec = config_file_find(&cf, "/srv/data");
	assert_non_null(sec);
	assert_int_equal(sec->line, 2);
	assert_false(sec->bad);
	assert_string_equal(sec->start.cache, "/mnt/fast/data");
	assert_int_equal(sec->start.daemon.size, 2ull << 30);
	assert_int_equal(sec->start.daemon.pin_count, 2);
	assert_string_equal(sec->start.daemon.pin[0], "db/*.sqlite ; not a comment");
	assert_false(sec->start.daemon.passthrough);
	assert_false(sec->start.daemon.public_stats);
	sec = config_file_find(&cf, "/srv/other");
	assert_non_null(sec);
	assert_true(sec->start.daemon.count_syscalls);
	config_file_release(&cf);

	snprintf(msg, sizeof(msg), "%s/missing.conf", base);
	assert_int_equal(config_file_load(msg, &cf, path, sizeof(path)), -ENOENT);
	config_file_release(&cf);
}

/* Each mistake: its line named, its section marked bad, the good section untouched. */
static void test_file_errors(void **state)
{
	static struct config_file cf;
	char path[PATH_MAX], msg[1024], want[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/bad.conf", base);
	write_file(path, "threads = 2\n"                       /* 1: outside a section */
	                 "[/srv/a]\n"                          /* 2 */
	                 "cache = /mnt/a\n"                    /* 3 */
	                 "threads = 40\n"                      /* 4: out of range */
	                 "colour = blue\n"                     /* 5: unknown key */
	                 "[/srv/b\n"                           /* 6: no ']' */
	                 "[/srv/good]\n"                       /* 7 */
	                 "cache = /mnt/good\n"                 /* 8 */
	                 "[relative]\n"                        /* 9: not absolute */
	                 "cache = /mnt/r\n"                    /* 10 */
	                 "[/srv/nocache]\n"                    /* 11: no cache key */
	                 "size\n"                              /* 12: needs a value */
	                 "[/srv/c]\n"                          /* 13 */
	                 "cache = /mnt/c\n"                    /* 14 */
	                 "foreground = yes\n"                  /* 15: command line only */
	                 "io-uring = maybe\n"                  /* 16: not yes/no */
	                 "[/srv/good]\n"                       /* 17: twice */
	                 "cache = /mnt/x\n");
	assert_int_equal(config_file_load(path, &cf, msg, sizeof(msg)), 0);
	assert_non_null(cf.errors);
	const char *const expected[] = {
		":1: 'threads' is outside a section",
		":4: threads takes a number from 1 to 16, not '40'",
		":5: unknown key 'colour'",
		":6: a section header needs its closing ']'",
		":9: section [relative]: a section is named after its directory",
		":12: 'size' needs a value",
		":15: 'foreground' is for the command line only",
		":16: 'io-uring' takes yes or no",
		":17: section [/srv/good] is already at line 7",
	};
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		snprintf(want, sizeof(want), "%s%s", path, expected[i]);
		if (!strstr(cf.errors, want))
			fail_msg("missing '%s' in:\n%s", want, cf.errors);
	}
	assert_int_equal(cf.error_count, 9);  /* [/srv/nocache] is bad already: no second message */
	assert_true(config_file_find(&cf, "/srv/a")->bad);
	assert_true(config_file_find(&cf, "/srv/c")->bad);
	assert_true(config_file_find(&cf, "/srv/nocache")->bad);
	assert_false(cf.sections[1].bad);  /* the first [/srv/good] */
	assert_string_equal(cf.sections[1].start.cache, "/mnt/good");
	config_file_release(&cf);
}

static void test_file_put_remove(void **state)
{
	static struct config_file cf;
	char path[PATH_MAX], msg[PATH_MAX];

	snprintf(path, sizeof(path), "%s/sub/cachemax.conf", base);
	assert_int_equal(config_file_remove(path, "/srv/a"), -ENOENT);
	assert_int_equal(config_file_put(path, "/srv/a", "cache=/mnt/a\n"), 0);
	assert_int_equal(config_file_put(path, "/srv/b", "cache=/mnt/b\nsize=2G\n"), 0);
	/* a hand edit in between: kept */
	{
		char text[4096];
		snprintf(text, sizeof(text), "%s# keep me\n", read_file(path));
		write_file(path, text);
	}
	assert_int_equal(config_file_put(path, "/srv/a", "cache=/mnt/a2\nthreads=2\n"), 0);
	assert_non_null(strstr(read_file(path), "[/srv/a]\ncache=/mnt/a2\nthreads=2\n\n[/srv/b]\ncache=/mnt/b\nsize=2G\n# keep me\n"));
	assert_int_equal(config_file_load(path, &cf, msg, sizeof(msg)), 0);
	assert_null(cf.errors);
	assert_int_equal(cf.count, 2);
	assert_int_equal(config_file_find(&cf, "/srv/a")->start.daemon.threads, 2);
	config_file_release(&cf);
	assert_int_equal(config_file_remove(path, "/srv/a"), 0);
	assert_null(strstr(read_file(path), "/srv/a"));
	assert_non_null(strstr(read_file(path), "[/srv/b]\ncache=/mnt/b\nsize=2G\n# keep me\n"));
	assert_int_equal(config_file_remove(path, "/srv/a"), -ENOENT);
	/* others may not write it: refused */
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(config_file_load(path, &cf, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "not owned by root or that others may write"));
	config_file_release(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_table_rows),
		cmocka_unit_test(test_parse_and_messages),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_help),
		cmocka_unit_test_setup_teardown(test_file_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_put_remove, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
