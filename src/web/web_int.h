/* web_int: what the web layer's files share and nothing outside it uses.
 * A reader for the daemon's stats JSON (docs/STATS.md): it only finds values, it never builds a
 * tree or allocates; every function takes an end pointer, so the text need not be terminated and
 * malformed or truncated text is an error, never a read past `end`. Nesting deeper than
 * WEB_JSON_DEPTH_MAX is refused.
 */
#ifndef CACHEMAX_WEB_INT_H
#define CACHEMAX_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>

#define WEB_JSON_DEPTH_MAX 16

struct web_json {
	const char *start;   /* first byte of the value */
	const char *end;     /* one past its last byte */
};

/* Where the value starting at p (after whitespace) ends, or NULL if it is malformed or runs
 * past end. */
const char *web_json_skip(const char *p, const char *end);
/* The whole text is exactly one value (with surrounding whitespace). */
bool web_json_valid(const char *p, const char *end);
/* The member `key` of the object `obj`; -ENOENT if absent, -EINVAL if obj is no object. */
int web_json_member(const struct web_json *obj, const char *key, struct web_json *out);
/* The value at a path of member names ("stats", "counters", NULL-terminated) below obj. */
int web_json_path(const struct web_json *obj, const char *const *path, struct web_json *out);
/* The number at v (a JSON number); -EINVAL for anything else (null included). */
int web_json_number(const struct web_json *v, double *out);
/* The string at v, unescaped into buf (escapes \uXXXX above 0x7f become '?'); -EINVAL if v is
 * no string, -ENAMETOOLONG if it does not fit. */
int web_json_string(const struct web_json *v, char *buf, size_t size);
/* true/false at v; -EINVAL for anything else. */
int web_json_bool(const struct web_json *v, bool *out);

#endif
