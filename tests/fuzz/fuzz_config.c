/* libFuzzer target: the config file parser (config_file_parse), what root writes by hand and
 * `cachemax start --all` reads at boot. Checks its contract (config_file.h) and aborts on a
 * violation: every mistake counted is told as "NAME:LINE: ...", a section without mistakes has
 * an absolute directory and cache, counts stay within the table's limits.
 * Run: make fuzz (bounded), or docs/FUZZING.md for long runs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define NAME "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config_file cf;
	unsigned lines = 1, told = 0;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	config_file_parse(NAME, (const char *)data, size, &cf);
	CHECK((cf.errors != NULL) == (cf.error_count > 0));
	for (const char *e = cf.errors; e && *e; told++) {
		char *end;
		unsigned long line;
		CHECK(!strncmp(e, NAME ":", strlen(NAME ":")));
		line = strtoul(e + strlen(NAME ":"), &end, 10);
		CHECK(line >= 1 && line <= lines && *end == ':');
		e = strchr(e, '\n');
		CHECK(e != NULL);
		e++;
	}
	CHECK(told == cf.error_count);
	for (size_t i = 0; i < cf.count; i++) {
		const struct config_section *s = &cf.sections[i];
		CHECK(s->line >= 1 && s->line <= lines);
		CHECK(memchr(s->dir, '\0', sizeof(s->dir)));
		if (s->bad)
			continue;
		CHECK(s->dir[0] == '/' && s->start.cache[0] == '/');
		CHECK(s->start.daemon.pin_count <= DAEMON_MAX_GLOBS && s->start.daemon.exclude_count <= DAEMON_MAX_GLOBS);
		CHECK(s->start.daemon.threads >= 1 && s->start.daemon.threads <= DAEMON_THREADS_MAX);
		CHECK(!s->start.foreground);
		CHECK(!config_file_find(&cf, s->dir) || config_file_find(&cf, s->dir) <= s);
	}
	config_file_release(&cf);
	return 0;
}
