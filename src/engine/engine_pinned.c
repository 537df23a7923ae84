/* engine_pinned: the --pin and --exclude globs (util/glob.h) and the walk at start that
 * marks the cache objects of every file matching a --pin glob as pinned (kept: never evicted).
 * "Pinned" means only that here; a reference held across a reply is a hold (engine.c).
 */
#include "engine/engine_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>

#include "sys/sys.h"
#include "util/glob.h"

/* The rule is util/glob.h's, shared with the CLI (cachemax warm). */
bool engine_pinned_match(const char *const *globs, unsigned count, const char *rel)
{
	return glob_match_any(globs, count, rel);
}

#define PINNED_WALK_DEPTH_MAX 64

/* One directory of the walk: rel holds the directory's path relative to the origin ("" for
 * the origin) in a buffer of 4096 bytes. Consumes dirfd. */
static void pinned_walk_dir(struct engine *e, int dirfd, char *rel, size_t rel_len, unsigned depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (!d) {
		sys_close(dirfd);
		return;
	}
	while ((de = readdir(d)) && !engine_fill_stopping(e)) {
		size_t name_len = strlen(de->d_name);
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rel_len + 1 + name_len + 1 > 4096)
			continue;
		if (rel_len)
			rel[rel_len] = '/';
		memcpy(rel + rel_len + (rel_len != 0), de->d_name, name_len + 1);
		if (sys_fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode) && depth < PINNED_WALK_DEPTH_MAX) {
				int sub = sys_openat(dirfd, de->d_name,
				                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
				if (sub >= 0)
					pinned_walk_dir(e, sub, rel, rel_len + (rel_len != 0) + name_len, depth + 1);
			} else if (S_ISREG(st.st_mode) &&
			           engine_pinned_match(e->cfg.pin_globs, e->cfg.pin_count, rel) &&
			           !engine_pinned_match(e->cfg.exclude_globs, e->cfg.exclude_count, rel)) {
				cache_store_pin(e->store, engine_key(e, rel, &st), true);
			}
		}
		rel[rel_len] = '\0';
	}
	closedir(d);
}

void engine_pinned_walk(struct engine *e)
{
	char rel[4096] = "";
	int fd;

	if (!e->store || !e->cfg.pin_count)
		return;
	fd = sys_openat(e->cfg.origin_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd >= 0)
		pinned_walk_dir(e, fd, rel, 0, 0);
}
