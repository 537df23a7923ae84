/* control_proto: the control socket's request line (protocol version 3), parsed as a pure
 * function over the caller's bytes: no I/O, no allocation, fuzzed by tests/fuzz/fuzz_control.c.
 *   request  = verb [" " argument] "\n"      (a trailing "\r" is ignored)
 * The verbs, what they answer and who may send them are one table: control_verbs.h. An argument
 * is always REL, a path relative to the accelerated directory: no leading "/", no "." or ".."
 * component, no empty component, no NUL; the parser refuses any other argument whatever the
 * verb, so a handler never sees one.
 * Changelog: 1 ("stats", "evict [REL]", "ping", anyone); 2 (peer check, strict REL, whole
 * lines); 3 ("warm REL", "verify REL"; "evict REL" of a directory evicts every file below it).
 */
#ifndef CACHEMAX_CONTROL_PROTO_H
#define CACHEMAX_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_PROTO_VERSION 3
#define CONTROL_PROTO_LINE_MAX 4352   /* a request line with its newline: a path of 4096 and more */
#define CONTROL_PROTO_ARG_MAX 4097
#define CONTROL_PROTO_VERB_MAX 16     /* the longest verb word, with its NUL */

struct control_proto_request {
	char verb[CONTROL_PROTO_VERB_MAX];  /* the first word, NUL-terminated (not looked up) */
	char arg[CONTROL_PROTO_ARG_MAX];    /* NUL-terminated; "" when the verb came alone */
	bool has_arg;                       /* a space followed the verb */
};

/* Parse the first line of the `len` bytes at buf. Returns the bytes consumed (the line and its
 * newline, > 0), -EAGAIN (no newline yet and fewer than CONTROL_PROTO_LINE_MAX bytes),
 * -EMSGSIZE (no newline within CONTROL_PROTO_LINE_MAX bytes), -ENOSYS (no verb, or a word
 * no verb can be: empty, too long, not lower-case letters) or -EINVAL (an argument that is not
 * a REL). `out` is written only on success. */
int control_proto_parse(const char *buf, size_t len, struct control_proto_request *out);

#endif
