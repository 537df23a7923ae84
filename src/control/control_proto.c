/* control_proto: the control request line (see control_proto.h). */
#include "control/control_proto.h"

#include <errno.h>
#include <string.h>

/* A relative path that stays below the directory: no leading '/', no "." or ".." component,
 * no empty component, no NUL. */
static bool rel_path_ok(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0 || s[0] == '/' || memchr(s, '\0', len))
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0 && i < len)
			return false;  /* "a//b" */
		if ((n == 1 && s[start] == '.') || (n == 2 && s[start] == '.' && s[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

/* Verbs are lower-case words (a '-' inside); anything else is no verb of ours. */
static bool verb_word_ok(const char *s, size_t len)
{
	if (len == 0 || len >= CONTROL_PROTO_VERB_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] == '-' && i > 0)))
			return false;
	return true;
}

int control_proto_parse(const char *buf, size_t len, struct control_proto_request *out)
{
	const char *nl = memchr(buf, '\n', len < CONTROL_PROTO_LINE_MAX ? len : CONTROL_PROTO_LINE_MAX);
	size_t line_len, word_len, arg_len = 0;
	const char *space, *arg = NULL;

	if (!nl)
		return len < CONTROL_PROTO_LINE_MAX ? -EAGAIN : -EMSGSIZE;
	line_len = (size_t)(nl - buf);
	if (line_len && buf[line_len - 1] == '\r')
		line_len--;
	space = memchr(buf, ' ', line_len);
	word_len = space ? (size_t)(space - buf) : line_len;
	if (space) {
		arg = space + 1;
		arg_len = line_len - word_len - 1;
	}
	if (!verb_word_ok(buf, word_len))
		return -ENOSYS;
	if (space && (arg_len >= CONTROL_PROTO_ARG_MAX || !rel_path_ok(arg, arg_len)))
		return -EINVAL;
	memcpy(out->verb, buf, word_len);
	out->verb[word_len] = '\0';
	if (arg_len)
		memcpy(out->arg, arg, arg_len);
	out->arg[arg_len] = '\0';
	out->has_arg = space != NULL;
	return (int)(nl - buf) + 1;
}
