/* fs: the file system CacheMax serves over the origin directory. It implements the fuse_ops
 * callback table with the semantics of the origin: every operation is done *at() relative to the
 * origin's O_PATH fd (opened before the mount covered it) or to per-node O_PATH fds, through the
 * sys seam. It never touches a path under its own mount point.
 *
 * Regular-file opens pass through to the origin file when the kernel allows it (one backing id
 * per inode, registered at the first passthrough open and closed at the last release);
 * otherwise reads and writes are served here.
 * Errors: fs_create returns 0 or -errno.
 */
#ifndef CACHEMAX_FS_H
#define CACHEMAX_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "fuse/fuse_session.h"
#include "stats/stats.h"

struct cache_store;

struct fs;

struct fs_config {
	int origin_fd;          /* O_PATH|O_DIRECTORY fd of the origin; fs takes ownership */
	bool passthrough;       /* try kernel passthrough for regular files */
	double attr_timeout;    /* seconds the kernel may cache attributes */
	double entry_timeout;   /* seconds the kernel may cache names */
	struct stats *stats;    /* counters to update; owned by the caller, may be NULL */
	struct cache_store *store; /* the cache; owned by the caller; NULL: no caching */
};

int fs_create(const struct fs_config *cfg, struct fs **out);
void fs_free(struct fs *fs);
const struct fuse_ops *fs_fuse_ops(void);

/* Passthrough state for status: true when in use; otherwise *why says why not. */
bool fs_passthrough_active(struct fs *fs, char *why, size_t why_size);



/* The origin directory's O_PATH fd (owned by fs). */
int fs_origin_fd(const struct fs *fs);

/* After the mount: check that the kernel really lets us register backing files (it refuses
 * without CAP_SYS_ADMIN) so that status tells the truth before the first open. */
void fs_passthrough_probe(struct fs *fs);
#endif
