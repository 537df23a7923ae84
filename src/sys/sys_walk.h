/* sys_walk: every regular file below a directory, with its path, depth first (the --pin walk,
 * engine_pinned.c; `cachemax evict` of a directory, fs_admin.c; the copies of a directory
 * renamed through the mount, fs_cache.c). Symlinks are not followed; a directory deeper than
 * depth_max levels below the start, or an entry whose path would not fit, is skipped; an entry
 * that vanishes meanwhile is skipped. Types come from readdir's d_type, else one fstatat.
 * Errors: 0 or -errno.
 */
#ifndef CACHEMAX_SYS_WALK_H
#define CACHEMAX_SYS_WALK_H

#include <stddef.h>

#define SYS_WALK_PATH_MAX 4096

/* Called for each regular file: dirfd and name reach it, rel is its path (the start's path,
 * then '/' and the names below, or the names alone below an empty start). Non-zero stops the
 * walk and is returned by it. */
typedef int (*sys_walk_visit)(void *arg, int dirfd, const char *name, const char *rel);

/* Walk the directory dirfd (consumed: closed at the end), whose path is rel[0, rel_len) in a
 * buffer of SYS_WALK_PATH_MAX bytes (written during the walk, as it was at the end). 0, the
 * visitor's non-zero value, or -errno if dirfd cannot be read. */
int sys_walk_files(int dirfd, char *rel, size_t rel_len, unsigned depth_max, sys_walk_visit visit,
                   void *arg);

#endif
