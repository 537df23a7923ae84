/* control_verbs: every request the control socket answers, in one table (control_verbs.c):
 * the verb, its argument, who may send it, its handler and its help.
 *   ping          public  {"pong": true}
 *   stats         public  the snapshot of docs/STATS.md
 *   evict [REL]   root    drop every cache copy, or REL's (a directory: every file below it):
 *                         {"evicted": N}
 *   warm REL      root    queue the completion of REL's copy if needed and say where it stands:
 *                         {"state": "complete"|"filling"|"waiting"|"excluded", "size": N,
 *                         "cached": N}; asked again until "complete" (cachemax warm)
 *   verify REL    root    hash REL's complete copy and the original (XXH3-64); a mismatch
 *                         drops the copy: {"result": "match"|"mismatch"|"not-complete"|
 *                         "changed", "size": N, "hash_copy": "HEX", "hash_origin": "HEX"}
 * "public": answered to any local user when the daemon runs with --public-stats; "root": to
 * root only (control_socket.c checks the peer with SO_PEERCRED before the handler runs).
 * Errors are {"error": "..."}. Slow verbs (verify) are answered on a thread of their own, so
 * that stats stays quick meanwhile.
 */
#ifndef CACHEMAX_CONTROL_VERBS_H
#define CACHEMAX_CONTROL_VERBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs;

/* What the handlers act on: set up by the daemon before the server starts. */
struct control_target {
	struct fs *fs;
	/* The stats snapshot, which the daemon assembles (session, kernel counters, windows). */
	int (*stats)(void *arg, char *reply, size_t size);
	void *stats_arg;
	const char *cache_why;          /* why there is no cache (when there is none) */
	atomic_uint_fast64_t evicted;   /* copies dropped by evict and verify (stats: evictions) */
};

enum control_arg { CONTROL_ARG_NONE, CONTROL_ARG_OPTIONAL, CONTROL_ARG_REQUIRED };
enum control_access { CONTROL_ACCESS_ROOT, CONTROL_ACCESS_PUBLIC };

/* Writes one JSON object (no newline) into reply; returns its length or -errno. rel is "" when
 * the request had no argument. */
typedef int (*control_verb_fn)(struct control_target *t, const char *rel, char *reply,
                               size_t size);

struct control_verb {
	const char *name;
	enum control_arg arg;
	enum control_access access;
	bool slow;                      /* reads whole files: answered on its own thread */
	control_verb_fn handler;
	const char *help;
};

/* The verb called `name`, or NULL. */
const struct control_verb *control_verb_find(const char *name);
/* The table, for documentation and tests: *count entries. */
const struct control_verb *control_verbs(size_t *count);

#endif
