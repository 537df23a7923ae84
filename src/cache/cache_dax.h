/* cache_dax: whether the cache device serves the cache's files by DAX (direct access to
 * persistent memory, no page cache), and why — shown by `status`, `stats --json` and the
 * dashboard, so a user who put the cache on pmem sees whether it is used that way.
 * A file is DAX when its file system is mounted with dax or dax=always, or (dax=inode, the
 * default of ext4 and xfs) when it carries the per-file DAX flag, which new files inherit from
 * their directory. The probe asks statx (STATX_ATTR_DAX, and the mount id), the mount's line
 * in /proc/self/mountinfo, and the directory's FS_XFLAG_DAX. It changes nothing.
 * Errors: 0 or -errno.
 */
#ifndef CACHEMAX_CACHE_DAX_H
#define CACHEMAX_CACHE_DAX_H

#include <stdbool.h>
#include <stddef.h>

#define CACHE_DAX_WHY_MAX 512

/* What a mount's options say about DAX. */
enum cache_dax_mode {
	CACHE_DAX_UNSAID,   /* no dax option: per file where the file system supports it */
	CACHE_DAX_ALWAYS,   /* "dax" or "dax=always": every file */
	CACHE_DAX_INODE,    /* "dax=inode": files with the DAX flag */
	CACHE_DAX_NEVER,    /* "dax=never" */
};

/* The fields of one /proc/PID/mountinfo line that the probe needs. */
struct cache_dax_mount {
	int mount_id;
	char fstype[64];      /* truncated if longer */
	char source[256];     /* as mountinfo escapes it; truncated if longer */
	enum cache_dax_mode mode;   /* from the mount options and the super options */
};

/* Pure: parse one mountinfo line (with or without its newline). -EINVAL if it is not one. */
int cache_dax_mountinfo_parse(const char *line, struct cache_dax_mount *out);

struct cache_dax {
	bool dax;                      /* files created in the directory are served by DAX */
	char why[CACHE_DAX_WHY_MAX];   /* what says so, or why not */
};

/* The DAX state of files created in `dir` (the cache directory). 0 with *out filled (also when
 * the answer is "no" or "unknown": why says which), or -errno when dir cannot be looked at. */
int cache_dax_probe(const char *dir, struct cache_dax *out);

#endif
