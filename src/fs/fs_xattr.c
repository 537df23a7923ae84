/* fs_xattr: GETXATTR and LISTXATTR of inodes known to have no xattrs, answered without the
 * original (the contract is in fs_int.h, "xattrs of inodes that have none"). */
#include <string.h>

#include "fs/fs_int.h"
#include "stats/stats.h"

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

/* Is what n's state says usable now? Only while the watcher covers n: without it a change
 * behind would go unseen. */
static bool known(struct fs *fs, const struct fs_node *n, unsigned state)
{
	return (state & FS_XATTR_KNOWN_MASK) != FS_XATTR_UNKNOWN && fs_xattr_watched(fs, n);
}

/* The learned answer for (name, type): > 0 an errno, 0 ask, -1 none learned. xattr_lock. */
static int learned_find(const struct fs *fs, const char *name, uint32_t type)
{
	for (unsigned i = 0; i < fs->xattr_learned_count; i++) {
		const struct fs_xattr_learned *l = &fs->xattr_learned[i];
		if (l->type == type && strcmp(l->name, name) == 0)
			return l->answer;
	}
	return -1;
}

/* The metadata catalog may know that regular file n had no xattrs when its directory was
 * listed and that nothing changed it since (fs_catalog_file_no_xattrs: after a sealed
 * restart, before anything of n was read): then n's state becomes "none" without a listxattr,
 * which would read its inode from the original. The sample is taken before the catalog is
 * asked, so a change counted meanwhile keeps the state unknown. Returns the state now. */
static unsigned seed_from_catalog(struct fs *fs, struct fs_node *n)
{
	unsigned s = fs_xattr_sample(n);

	if ((s & FS_XATTR_KNOWN_MASK) == FS_XATTR_UNKNOWN && n->type == S_IFREG &&
	    fs_xattr_watched(fs, n) && fs_catalog_file_no_xattrs(fs, n))
		fs_xattr_listed(fs, n, s, 0);
	return fs_xattr_sample(n);
}

int fs_xattr_get_known(struct fs *fs, struct fs_node *n, const char *name)
{
	unsigned s = seed_from_catalog(fs, n);
	int answer;

	if (!known(fs, n, s) || (s & FS_XATTR_KNOWN_MASK) != FS_XATTR_NONE)
		return 0;
	pthread_mutex_lock(&fs->xattr_lock);
	answer = learned_find(fs, name, n->type);
	pthread_mutex_unlock(&fs->xattr_lock);
	if (answer <= 0)
		return 0;
	stats_add(fs->cfg.stats, STATS_XATTR_ABSENT_ANSWERS, 1);
	return answer;
}

bool fs_xattr_none_known(struct fs *fs, struct fs_node *n)
{
	unsigned s = seed_from_catalog(fs, n);

	if (!known(fs, n, s) || (s & FS_XATTR_KNOWN_MASK) != FS_XATTR_NONE)
		return false;
	stats_add(fs->cfg.stats, STATS_XATTR_ABSENT_ANSWERS, 1);
	return true;
}

bool fs_xattr_probe_wanted(struct fs *fs, const struct fs_node *n, unsigned sample)
{
	return (sample & FS_XATTR_KNOWN_MASK) == FS_XATTR_UNKNOWN && fs_xattr_watched(fs, n);
}

void fs_xattr_listed(struct fs *fs, struct fs_node *n, unsigned sample, ssize_t size)
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
	/* A value, or one too large for the buffer, from an inode that listed none: a file system
	 * that makes this name up, or an xattr set behind whose event is still on its way. Not
	 * learned either way (the name stays asked) rather than kept as "always ask" from one
	 * sight. */
	int answer = result < 0 ? (int)-result : 0;

	/* Learned only from an inode that had no xattrs before the call and after it. */
	if ((sample & FS_XATTR_KNOWN_MASK) != FS_XATTR_NONE || len >= FS_XATTR_NAME_MAX ||
	    answer == 0 || answer == ERANGE || answer == E2BIG ||
	    answer == ENOMEM || answer == EINTR || answer == EIO || answer == ESTALE ||
	    answer == ENOENT || answer == EBADF)
		return;  /* not a property of the name: a failure of this call */
	pthread_mutex_lock(&fs->xattr_lock);
	if (fs_xattr_sample(n) == sample) {
		int had = learned_find(fs, name, n->type);
		if (had < 0 && fs->xattr_learned_count < FS_XATTR_LEARNED_MAX) {
			struct fs_xattr_learned *l = &fs->xattr_learned[fs->xattr_learned_count++];
			memcpy(l->name, name, len + 1);
			l->type = n->type;
			l->answer = answer;
		} else if (had > 0 && had != answer) {
			/* Two inodes with no xattrs answered differently: always ask for this name. */
			for (unsigned i = 0; i < fs->xattr_learned_count; i++)
				if (fs->xattr_learned[i].type == n->type &&
				    strcmp(fs->xattr_learned[i].name, name) == 0)
					fs->xattr_learned[i].answer = 0;
		}
	}
	pthread_mutex_unlock(&fs->xattr_lock);
}
