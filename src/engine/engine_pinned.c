/* engine_pinned: the --pin and --exclude globs (util/glob.h) and the walk at start that
 * marks the cache objects of every file matching a --pin glob as pinned (kept: never evicted).
 * "Pinned" means only that here; a reference held across a reply is a hold (engine.c).
 */
#include "engine/engine_int.h"

#include <fcntl.h>
#include <string.h>

#include "sys/sys.h"
#include "sys/sys_walk.h"
#include "util/glob.h"

/* The rule is util/glob.h's, shared with the CLI (cachemax warm). */
bool engine_pinned_match(const char *const *globs, unsigned count, const char *rel)
{
	return glob_match_any(globs, count, rel);
}

#define PINNED_WALK_DEPTH_MAX 64

/* A file of the walk: pinned if it matches a --pin glob and no --exclude glob. Non-zero (the
 * walk stops) once the fill threads stop. */
static int pinned_visit(void *arg, int dirfd, const char *name, const char *rel)
{
	struct engine *e = arg;
	struct stat st;

	if (engine_fill_stopping(e))
		return 1;
	if (engine_pinned_match(e->cfg.pin_globs, e->cfg.pin_count, rel) &&
	    !engine_pinned_match(e->cfg.exclude_globs, e->cfg.exclude_count, rel) &&
	    sys_fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		cache_store_pin(e->store, engine_key(e, rel, &st), true);
	return 0;
}

void engine_pinned_walk(struct engine *e)
{
	char rel[SYS_WALK_PATH_MAX] = "";
	int fd;

	if (!e->store || !e->cfg.pin_count)
		return;
	fd = sys_openat(e->cfg.origin_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd >= 0)
		(void)sys_walk_files(fd, rel, 0, PINNED_WALK_DEPTH_MAX, pinned_visit, e);
}
