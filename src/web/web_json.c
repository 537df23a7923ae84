/* web_json: finding values in the daemon's stats JSON (contract in web_int.h). Recursive descent
 * with a depth bound; strict enough that what it accepts can be embedded in a reply verbatim. */
#include "web/web_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p at the opening quote; returns one past the closing quote. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]))
					return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return NULL;
}

static const char *skip_number(const char *p, const char *end)
{
	const char *digits;
	if (p < end && *p == '-')
		p++;
	digits = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	if (p == digits)
		return NULL;
	if (p < end && *p == '.') {
		digits = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == digits)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		digits = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == digits)
			return NULL;
	}
	return p;
}

static const char *skip_word(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) >= n && !memcmp(p, word, n) ? p + n : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth)
{
	char close;

	p = skip_space(p, end);
	if (p >= end)
		return NULL;
	switch (*p) {
	case '"': return skip_string(p, end);
	case 't': return skip_word(p, end, "true");
	case 'f': return skip_word(p, end, "false");
	case 'n': return skip_word(p, end, "null");
	case '{': close = '}'; break;
	case '[': close = ']'; break;
	default: return skip_number(p, end);
	}
	if (depth >= WEB_JSON_DEPTH_MAX)
		return NULL;
	p = skip_space(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			p = skip_space(p, end);
			if (p >= end || *p != '"' || !(p = skip_string(p, end)))
				return NULL;
			p = skip_space(p, end);
			if (p >= end || *p != ':')
				return NULL;
			p++;
		}
		p = skip_value(p, end, depth + 1);
		if (!p)
			return NULL;
		p = skip_space(p, end);
		if (p >= end)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

const char *web_json_skip(const char *p, const char *end)
{
	return skip_value(p, end, 0);
}

bool web_json_valid(const char *p, const char *end)
{
	p = web_json_skip(p, end);
	return p && skip_space(p, end) == end;
}

int web_json_member(const struct web_json *obj, const char *key, struct web_json *out)
{
	const char *p = skip_space(obj->start, obj->end), *end = obj->end;
	size_t key_len = strlen(key);

	if (p >= end || *p != '{')
		return -EINVAL;
	p = skip_space(p + 1, end);
	if (p < end && *p == '}')
		return -ENOENT;
	for (;;) {
		const char *name = p, *name_end, *value;
		if (p >= end || *p != '"' || !(name_end = skip_string(p, end)))
			return -EINVAL;
		p = skip_space(name_end, end);
		if (p >= end || *p != ':')
			return -EINVAL;
		value = skip_space(p + 1, end);
		p = web_json_skip(value, end);
		if (!p)
			return -EINVAL;
		/* Our keys have no escapes: compare the raw bytes between the quotes. */
		if ((size_t)(name_end - name - 2) == key_len && !memcmp(name + 1, key, key_len)) {
			out->start = value;
			out->end = p;
			return 0;
		}
		p = skip_space(p, end);
		if (p >= end)
			return -EINVAL;
		if (*p == '}')
			return -ENOENT;
		if (*p != ',')
			return -EINVAL;
		p = skip_space(p + 1, end);
	}
}

int web_json_path(const struct web_json *obj, const char *const *path, struct web_json *out)
{
	struct web_json v = *obj;
	for (; *path; path++) {
		int rc = web_json_member(&v, *path, &v);
		if (rc < 0)
			return rc;
	}
	*out = v;
	return 0;
}

int web_json_number(const struct web_json *v, double *out)
{
	char buf[64];
	const char *end = skip_number(v->start, v->end);
	size_t n = end ? (size_t)(end - v->start) : 0;

	if (!end || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v->start, n);
	buf[n] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

int web_json_string(const struct web_json *v, char *buf, size_t size)
{
	const char *p = v->start, *end = skip_string(p, v->end);
	size_t n = 0;

	if (p >= v->end || *p != '"' || !end || !size)
		return -EINVAL;
	for (p++; p < end - 1; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				char hex[5] = { p[1], p[2], p[3], p[4], 0 };
				long code = strtol(hex, NULL, 16);
				c = code > 0 && code < 0x80 ? (char)code : '?';
				p += 4;
				break;
			}
			default: c = *p; break;
			}
		}
		if (n + 1 >= size)
			return -ENAMETOOLONG;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

int web_json_bool(const struct web_json *v, bool *out)
{
	if (skip_word(v->start, v->end, "true")) {
		*out = true;
		return 0;
	}
	if (skip_word(v->start, v->end, "false")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}
