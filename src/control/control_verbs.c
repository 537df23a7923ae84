/* control_verbs: the control socket's verbs and their handlers (see control_verbs.h). The
 * handlers ask the file system by path (fs_admin.h); none touches the cache engine itself. */
#include "control/control_verbs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/fs_admin.h"
#include "util/json.h"

/* {"error": "..."} for a handler's failure, with what the user can do about it. */
static int reply_error(struct control_target *t, int rc, char *reply, size_t size)
{
	char why[512];
	const char *what = rc == -ENOMEDIUM ? "the cache is off" :
	                   rc == -EAGAIN ? "the cache is bypassed after device errors (see status); try again later" :
	                   rc == -EISDIR ? "a directory (give its files)" :
	                   rc == -EINVAL ? "not a regular file" : strerror(-rc);
	if (rc == -ENOMEDIUM && t->cache_why && *t->cache_why) {
		snprintf(why, sizeof(why), "the cache is off: %s", t->cache_why);
		what = why;
	}
	char escaped[1100];
	return snprintf(reply, size, "{\"error\": \"%s\"}", json_escape(what, escaped, sizeof(escaped)));
}

static int verb_ping(struct control_target *t, const char *rel, char *reply, size_t size)
{
	return snprintf(reply, size, "{\"pong\": true}");
}

static int verb_stats(struct control_target *t, const char *rel, char *reply, size_t size)
{
	return t->stats(t->stats_arg, reply, size);
}

/* Open objects are safe to evict: readers keep the unlinked copy until they close. */
static int verb_evict(struct control_target *t, const char *rel, char *reply, size_t size)
{
	uint64_t evicted = 0;
	int rc = fs_admin_evict(t->fs, rel, &evicted);

	if (rc < 0)
		return reply_error(t, rc, reply, size);
	atomic_fetch_add(&t->evicted, evicted);
	return snprintf(reply, size, "{\"evicted\": %" PRIu64 "}", evicted);
}

static int verb_warm(struct control_target *t, const char *rel, char *reply, size_t size)
{
	static const char *const states[] = {
		[FS_WARM_COMPLETE] = "complete", [FS_WARM_FILLING] = "filling",
		[FS_WARM_WAITING] = "waiting", [FS_WARM_EXCLUDED] = "excluded",
	};
	struct fs_warm_report r;
	int rc = fs_admin_warm(t->fs, rel, &r);

	if (rc < 0)
		return reply_error(t, rc, reply, size);
	return snprintf(reply, size, "{\"state\": \"%s\", \"size\": %" PRIu64 ", \"cached\": %" PRIu64 "}",
	                states[r.state], r.size, r.cached);
}

static int verb_verify(struct control_target *t, const char *rel, char *reply, size_t size)
{
	static const char *const results[] = {
		[FS_VERIFY_MATCH] = "match", [FS_VERIFY_MISMATCH] = "mismatch",
		[FS_VERIFY_NOT_COMPLETE] = "not-complete", [FS_VERIFY_CHANGED] = "changed",
	};
	struct fs_verify_report r;
	int rc = fs_admin_verify(t->fs, rel, &r);

	if (rc < 0)
		return reply_error(t, rc, reply, size);
	if (r.result == FS_VERIFY_MISMATCH)
		atomic_fetch_add(&t->evicted, 1);
	return snprintf(reply, size, "{\"result\": \"%s\", \"size\": %" PRIu64 ", \"hash_copy\": \"%016"
	                PRIx64 "\", \"hash_origin\": \"%016" PRIx64 "\"}", results[r.result], r.size,
	                r.hash_copy, r.hash_origin);
}

static const struct control_verb verbs[] = {
	{ "ping", CONTROL_ARG_NONE, CONTROL_ACCESS_PUBLIC, false, verb_ping,
	  "is the daemon there" },
	{ "stats", CONTROL_ARG_NONE, CONTROL_ACCESS_PUBLIC, false, verb_stats,
	  "the statistics snapshot (docs/STATS.md)" },
	{ "evict", CONTROL_ARG_OPTIONAL, CONTROL_ACCESS_ROOT, false, verb_evict,
	  "drop every cache copy, or REL's (a directory: every file below it)" },
	{ "warm", CONTROL_ARG_REQUIRED, CONTROL_ACCESS_ROOT, false, verb_warm,
	  "complete REL's cache copy in the background; report its state" },
	{ "verify", CONTROL_ARG_REQUIRED, CONTROL_ACCESS_ROOT, true, verb_verify,
	  "compare REL's complete copy with the original (XXH3); drop it if they differ" },
};

const struct control_verb *control_verb_find(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

const struct control_verb *control_verbs(size_t *count)
{
	*count = sizeof(verbs) / sizeof(verbs[0]);
	return verbs;
}
