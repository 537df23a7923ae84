/* json: the one string escaper for the JSON the CLI, the bench and the daemon print.
 * Quotes and backslashes get a backslash; control characters become \u00XX.
 */
#ifndef CACHEMAX_JSON_H
#define CACHEMAX_JSON_H

#include <stddef.h>
#include <stdio.h>

/* s as a quoted JSON string on f. */
void json_write_string(FILE *f, const char *s);
/* s escaped (without the quotes) into out, always terminated; an escape that does not fit is
 * left out whole. Returns out. */
const char *json_escape(const char *s, char *out, size_t size);

/* JSON text built in the caller's buffer: once an append does not fit, err is -ENOSPC and
 * every later append does nothing, so the builder checks once at the end. */
struct json_buf {
	char *buf;
	size_t size, used;
	int err;
};
void json_buf_printf(struct json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
