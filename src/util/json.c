/* json: string escaping and the JSON buffer builder (contract in json.h). */
#include "util/json.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* The escape of ch into esc (at most 7 bytes with the terminator). */
static void escape_char(unsigned char ch, char esc[8])
{
	if (ch == '"' || ch == '\\')
		snprintf(esc, 8, "\\%c", ch);
	else if (ch < 0x20)
		snprintf(esc, 8, "\\u%04x", ch);
	else
		snprintf(esc, 8, "%c", ch);
}

void json_write_string(FILE *f, const char *s)
{
	char esc[8];
	fputc('"', f);
	for (; *s; s++) {
		escape_char((unsigned char)*s, esc);
		fputs(esc, f);
	}
	fputc('"', f);
}

const char *json_escape(const char *s, char *out, size_t size)
{
	size_t used = 0;
	char esc[8];

	if (!size)
		return out;
	for (; *s; s++) {
		size_t len;
		escape_char((unsigned char)*s, esc);
		len = strlen(esc);
		if (used + len >= size)
			break;
		memcpy(out + used, esc, len);
		used += len;
	}
	out[used] = '\0';
	return out;
}

void json_buf_printf(struct json_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->used, b->size - b->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->size - b->used)
		b->err = -ENOSPC;
	else
		b->used += (size_t)n;
}
