/* control_proto: the control socket's request line (protocol version 2), parsed as a pure
 * function over the caller's bytes: no I/O, no allocation, fuzzed by tests/fuzz/fuzz_control.c.
 *   request  = verb [" " argument] "\n"      (a trailing "\r" is ignored)
 *   ping                 read-only  {"pong": true}
 *   stats                read-only  the snapshot of docs/STATS.md
 *   evict [REL]          root only  drop every cache copy, or the one of the file at REL
 * REL is relative to the accelerated directory: no leading "/", no "." or ".." component, no NUL.
 * Who may ask: the server (control_socket.c) answers a verb that is not read-only only when the
 * peer (SO_PEERCRED) is root; verbs added later are root only unless listed read-only here.
 * Changelog: 1 ("stats", "evict [REL]", "ping", anyone); 2 (peer check, strict REL, whole lines).
 */
#ifndef CACHEMAX_CONTROL_PROTO_H
#define CACHEMAX_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_PROTO_VERSION 2
#define CONTROL_PROTO_LINE_MAX 4352   /* a request line with its newline: a path of 4096 and more */
#define CONTROL_PROTO_ARG_MAX 4097

enum control_verb {
	CONTROL_VERB_PING,
	CONTROL_VERB_STATS,
	CONTROL_VERB_EVICT,
};

struct control_proto_request {
	enum control_verb verb;
	char arg[CONTROL_PROTO_ARG_MAX];  /* NUL-terminated; "" when the verb came alone */
};

/* Parse the first line of the `len` bytes at buf. Returns the bytes consumed (the line and its
 * newline, > 0), -EAGAIN (no newline yet and fewer than CONTROL_PROTO_LINE_MAX bytes),
 * -EMSGSIZE (no newline within CONTROL_PROTO_LINE_MAX bytes), -ENOSYS (unknown verb: out->verb
 * is not set) or -EINVAL (a known verb with a malformed argument). `out` is written only on
 * success. */
int control_proto_parse(const char *buf, size_t len, struct control_proto_request *out);

/* Whether a verb only reads (answered to non-root peers when the daemon allows it). */
bool control_proto_read_only(enum control_verb verb);

#endif
