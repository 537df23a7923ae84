/* fs_xattr: GETXATTR and LISTXATTR answered without the original: of inodes known to have no
 * xattrs, and on an original whose file system has none at all (the contracts are in
 * fs_int.h, "xattrs of inodes that have none" and "an original whose file system has no
 * xattrs"). */
#include <errno.h>
#include <string.h>

#include "fs/fs_int.h"
#include "stats/stats.h"
#include "sys/sys.h"
#include "util/log.h"

/* The state in the low two bits of fs_node.xattr_state */
#define FS_XATTR_UNKNOWN 0u
#define FS_XATTR_NONE 1u              /* the inode has no xattrs */
#define FS_XATTR_SOME 2u              /* it has some: ask the original, no probe */
#define FS_XATTR_KNOWN_MASK 3u

/* A change: the count above the two state bits goes up and the state becomes unknown. */
#define XATTR_CHANGE (FS_XATTR_KNOWN_MASK + 1u)

/* Do events about n reach it? The watcher covers its file system, and finds n by the handle
 * an event names: a node with no handle of its own (first seen through another mount of the
 * same file system, or with a handle too large to keep) is in no event's reach. */
static bool fs_xattr_watched(struct fs *fs, const struct fs_node *n)
{
	return fs_watch_covers(fs, n) && (n->handle_bytes > 0 || n == fs->root);
}

unsigned fs_xattr_sample(const struct fs_node *n)
{
	return atomic_load_explicit(&n->xattr_state, memory_order_acquire);
}

void fs_xattr_changed(struct fs_node *n)
{
	unsigned old = atomic_load_explicit(&n->xattr_state, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&n->xattr_state, &old,
	                                              (old & ~FS_XATTR_KNOWN_MASK) + XATTR_CHANGE,
	                                              memory_order_acq_rel, memory_order_relaxed))
		;
}

/* The learned answer for (name, type), or NULL: none learned (one entry at most each). */
static struct fs_xattr_learned *learned_find(struct fs *fs, const char *name, uint32_t type)
{
	for (unsigned i = 0; i < fs->xattr_learned_count; i++) {
		struct fs_xattr_learned *l = &fs->xattr_learned[i];
		if (l->type == type && strcmp(l->name, name) == 0)
			return l;
	}
	return NULL;
}

/* Is n known to have no xattrs now? Only while the watcher covers n (without it a change
 * behind would go unseen). Seeded from the catalog first: it may know that n (a regular file,
 * a directory or a symlink) had none when its parent was listed and that nothing changed it
 * since (fs_catalog_no_xattrs: after a sealed restart, before anything of n was read), which
 * spares a listxattr that would read its inode from the original. The sample is taken before
 * the catalog is asked, so a change counted meanwhile keeps the state unknown. */
static bool none_now(struct fs *fs, struct fs_node *n)
{
	unsigned s = fs_xattr_sample(n);

	if (!fs_xattr_watched(fs, n))
		return false;
	if ((s & FS_XATTR_KNOWN_MASK) == FS_XATTR_UNKNOWN && fs_catalog_no_xattrs(fs, n)) {
		fs_xattr_listed(n, s, 0);
		s = fs_xattr_sample(n);
	}
	return (s & FS_XATTR_KNOWN_MASK) == FS_XATTR_NONE;
}

int fs_xattr_get_known(struct fs *fs, struct fs_node *n, const char *name)
{
	struct fs_xattr_learned *l;
	int answer = 0;

	if (!none_now(fs, n))
		return 0;
	pthread_mutex_lock(&fs->xattr_lock);
	if ((l = learned_find(fs, name, n->type)))
		answer = l->answer;
	pthread_mutex_unlock(&fs->xattr_lock);
	if (answer > 0)
		stats_add(fs->cfg.stats, STATS_XATTR_ABSENT_ANSWERS, 1);
	return answer;
}

bool fs_xattr_none_known(struct fs *fs, struct fs_node *n)
{
	if (!none_now(fs, n))
		return false;
	stats_add(fs->cfg.stats, STATS_XATTR_ABSENT_ANSWERS, 1);
	return true;
}

bool fs_xattr_probe_wanted(struct fs *fs, const struct fs_node *n, unsigned sample)
{
	return (sample & FS_XATTR_KNOWN_MASK) == FS_XATTR_UNKNOWN && fs_xattr_watched(fs, n);
}

void fs_xattr_listed(struct fs_node *n, unsigned sample, ssize_t size)
{
	unsigned expect = sample;

	/* An error (a file system without xattrs answers EOPNOTSUPP): ask each time. */
	if (size < 0 || (sample & FS_XATTR_KNOWN_MASK) != FS_XATTR_UNKNOWN)
		return;
	atomic_compare_exchange_strong_explicit(&n->xattr_state, &expect,
	                                        sample | (size == 0 ? FS_XATTR_NONE : FS_XATTR_SOME),
	                                        memory_order_acq_rel, memory_order_relaxed);
}

void fs_xattr_got(struct fs *fs, struct fs_node *n, unsigned sample, const char *name,
                  ssize_t result)
{
	size_t len = strlen(name);
	/* A value (or ERANGE, one too large for the buffer) from an inode that listed none is a
	 * file system that makes this name up, or an xattr set behind whose event is on its way:
	 * not learned (the name stays asked). */
	int answer = result < 0 ? (int)-result : 0;

	/* Learned only from an inode that had no xattrs before the call and after it, and only
	 * the two answers that are a property of the name there: absent, or a namespace the file
	 * system lacks (anything else is a failure of this call). */
	if ((sample & FS_XATTR_KNOWN_MASK) != FS_XATTR_NONE || len >= FS_XATTR_NAME_MAX ||
	    (answer != ENODATA && answer != EOPNOTSUPP))
		return;
	pthread_mutex_lock(&fs->xattr_lock);
	if (fs_xattr_sample(n) == sample) {
		struct fs_xattr_learned *l = learned_find(fs, name, n->type);
		if (!l && fs->xattr_learned_count < FS_XATTR_LEARNED_MAX) {
			l = &fs->xattr_learned[fs->xattr_learned_count++];
			memcpy(l->name, name, len + 1);
			l->type = n->type;
			l->answer = answer;
		} else if (l && l->answer != answer) {
			l->answer = 0;  /* two inodes with none answered differently: always ask */
		}
	}
	pthread_mutex_unlock(&fs->xattr_lock);
}

/* ---- an original whose file system has no xattrs (contract in fs_int.h) ------------------- */

void fs_xattr_origin_probe(struct fs *fs)
{
	char path[FS_PROC_PATH_MAX];

	fs->xattrs_unsupported = false;
	if (fs->cfg.origin_submounts)
		return;
	fs_proc_path(fs->cfg.origin_fd, path);
	/* Each answer the kernel gives itself once the connection has no_getxattr and
	 * no_listxattr, asked of the original: any other (a value, ENODATA for a user.* name, an
	 * EOPNOTSUPP for an ACL name as some NFS servers give, EIO of an unreachable server)
	 * keeps every request going to the original. */
	if (sys_listxattr(path, NULL, 0) != -EOPNOTSUPP ||
	    sys_getxattr(path, "user.cachemax.probe", NULL, 0) != -EOPNOTSUPP ||
	    sys_getxattr(path, "system.posix_acl_access", NULL, 0) != -ENODATA ||
	    sys_getxattr(path, "system.posix_acl_default", NULL, 0) != -ENODATA)
		return;
	fs->xattrs_unsupported = true;
	log_info("the original's file system has no xattrs: GETXATTR and LISTXATTR answer ENOSYS "
	         "(the kernel then answers them itself, as the original does)");
}

uint64_t fs_withheld_init_flags(const struct fs *fs)
{
	return fs->xattrs_unsupported ? FUSE_HANDLE_KILLPRIV_V2 : 0;
}

bool fs_xattr_unsupported(struct fs *fs)
{
	if (!fs->xattrs_unsupported)
		return false;
	stats_add(fs->cfg.stats, STATS_XATTR_ABSENT_ANSWERS, 1);
	return true;
}
