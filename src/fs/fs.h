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

/* INIT flags the file system needs (fuse_session_config.extra_flags): it clears set-id bits and
 * file capabilities itself on write, truncate and chown (FUSE_HANDLE_KILLPRIV_V2), so that the
 * kernel stops asking for security.capability before every write; it applies the caller's
 * umask itself (FUSE_DONT_MASK), because the origin must see the mode unmasked where the parent
 * directory has a default ACL, which replaces the umask; and the kernel checks permissions with
 * the origin's POSIX ACLs, not the mode bits alone (FUSE_POSIX_ACL: under default_permissions
 * without it, a user an ACL entry denies got in through the group class's "other" bits, and one
 * an entry admits was refused). The kernel then caches each inode's ACLs, forgotten at every
 * INVAL_INODE (the watcher), entry revalidation (the timeouts) and change through the mount;
 * the origin itself updates an ACL's mask on chmod and inherits default ACLs on create. */
#define FS_FUSE_INIT_FLAGS (FUSE_HANDLE_KILLPRIV_V2 | FUSE_DONT_MASK | FUSE_POSIX_ACL)

/* INIT flags an openless mount must not be granted: with FUSE_ATOMIC_O_TRUNC the kernel leaves
 * an O_TRUNC open's truncation to OPEN (fuse_do_setattr skips it for ATTR_OPEN), which an
 * openless mount never receives. */
#define FS_OPENLESS_WITHHELD_FLAGS FUSE_ATOMIC_O_TRUNC

struct fs_config {
	int origin_fd;          /* O_PATH|O_DIRECTORY fd of the origin; fs takes ownership */
	bool passthrough;       /* try kernel passthrough for regular files */
	/* Files are opened by the kernel without OPEN (fs_openless.h): OPEN answers ENOSYS and
	 * requests with fh 0 are served through implicit open files. Needs the change watcher
	 * (fs_watch_prepare before the mount) and no passthrough, FUSE_ATOMIC_O_TRUNC withheld
	 * (FS_OPENLESS_WITHHELD_FLAGS). */
	bool openless;
	/* Mounts were below the origin when the daemon started (--allow-submounts): its file
	 * system's lack of xattrs says nothing of theirs (fs_xattr_origin_probe). */
	bool origin_submounts;
	double attr_timeout;    /* seconds the kernel may cache attributes */
	double entry_timeout;   /* seconds the kernel may cache names */
	struct stats *stats;    /* counters to update; owned by the caller, may be NULL */
	struct cache_store *store; /* the cache; owned by the caller; NULL: no caching */
	const char *catalog_path;  /* the metadata catalog's directory (CACHEDIR/cachemax-v1/
	                            * catalog); NULL: none */
	uint64_t complete_max;  /* complete files up to this size in the background after their
	                         * first miss; 0: never */
	unsigned fill_threads;  /* background fill threads (0: 1) */
	/* The first read of a file the cache holds nothing of passes through to the original
	 * (kernel passthrough, native speed): after its last close the file is completed (up to
	 * complete_max) or its chunks that the read left in the origin's page cache are copied;
	 * an open after that fills in user space. false: every read-only open of a file not
	 * complete in the cache is served in user space, and its misses fill the cache. */
	bool first_read_origin;
	/* Globs relative to the origin (fnmatch, FNM_PATHNAME; a glob without '/' matches the
	 * name at any depth; a match on a directory covers everything below it). Pinned files
	 * are kept (never evicted) and completed in the background; excluded files are never
	 * cached. The arrays must outlive the fs. */
	const char *const *pin;
	unsigned pin_count;
	const char *const *exclude;
	unsigned exclude_count;
	/* Called (from any thread, with no fs or engine lock held: it may rewrite files) when
	 * the breaker trips after repeated cache-device failures and every new open bypasses the
	 * cache (on = true, why says what failed), and when it is tried again (on = false). A
	 * change is told once the thread that made it let go of its locks (engine_bypass.c). */
	void (*breaker_changed)(void *arg, bool on, const char *why);
	void *breaker_arg;
	unsigned fill_delay_ms;    /* for tests (CACHEMAX_FILL_DELAY_MS): a background fill job
	                            * pauses this long after it began, before its first origin read,
	                            * so that a test can change the file in between */
	unsigned offer_delay_ms;   /* for tests (CACHEMAX_OFFER_DELAY_MS): a read-ahead piece waits
	                            * this long between its fill and offering its buffer to the
	                            * readers waiting for it (a fill thread preempted there), so
	                            * that a test can change the file in between */
	unsigned catalog_delay_ms; /* for tests (CACHEMAX_CATALOG_DELAY_MS): the metadata catalog
	                            * waits this long between reading a directory (its record or
	                            * the origin) and storing or serving what it read, so that a
	                            * test can change the original in between */
	unsigned seal_start_delay_ms; /* for tests (CACHEMAX_SEAL_START_DELAY_MS): fs_watch_start
	                            * waits this long before the watcher's mark and again before
	                            * the seal's second check (fs_catalog_watch_started), so that a
	                            * test can change the original before the mark and ask after */
	bool watch_thread_fails;   /* for tests (CACHEMAX_WATCH_THREAD_FAIL): fs_watch_start
	                            * fails as if its thread could not be made (EAGAIN) */
	unsigned dir_snap_max;     /* for tests (CACHEMAX_DIR_SNAP_MAX): entries of a directory
	                            * handle's snapshot, at most (0: FS_DIR_SNAP_MAX, fs_int.h) */
	unsigned long origin_fs_type; /* for tests (CACHEMAX_ORIGIN_FS_TYPE): the watcher takes
	                            * the original's file system for this statfs f_type (fs_type.h;
	                            * 0: its own), so that a test on a local file system can see how
	                            * a network original is served */
	unsigned breaker_retry_ms; /* how long the breaker keeps the cache bypassed before the
	                            * cache is tried again (0: ENGINE_BREAKER_RETRY_MS_DEFAULT) */
};

int fs_create(const struct fs_config *cfg, struct fs **out);
void fs_free(struct fs *fs);
const struct fuse_ops *fs_fuse_ops(void);
/* INIT flags of FS_FUSE_INIT_FLAGS this file system must not be granted, known once fs_create
 * probed the original (fuse_session_config.withheld_flags): FUSE_HANDLE_KILLPRIV_V2 where the
 * original's file system has no xattrs (fs_xattr.c): the kernel then answers its own
 * security.capability probe before a write, which is how the daemon tells a write's
 * attribute-less SETATTR apart, so it clears set-id bits itself, as the original's kernel does. */
uint64_t fs_withheld_init_flags(const struct fs *fs);

/* Passthrough state for status: true when in use; otherwise *why says why not. */
bool fs_passthrough_active(struct fs *fs, char *why, size_t why_size);



/* How nodes reach origin inodes, for status: true by file handle (fds bounded); otherwise *why
 * says why each node pins an fd. */
bool fs_handles_active(struct fs *fs, char *why, size_t why_size);

/* The metadata catalog's counters: lookups and listings answered from it (hits) or not
 * (misses); listings recorded once their directory's stamp was old enough (late_records: read
 * when it was too young to record). */
struct fs_catalog_counts {
	uint64_t hits, misses, late_records;
};
/* The metadata catalog for status and stats: false when there is none; *seal says "valid" or
 * "void: why". */
bool fs_catalog_report(struct fs *fs, char *seal, size_t seal_size, struct fs_catalog_counts *c);

/* Does the metadata catalog's seal hold (valid at the start and confirmed once the watcher
 * covered the original): nothing changed while the daemon was down? */
bool fs_catalog_sealed(struct fs *fs);

/* The openless mode (start --openless, fs_openless.h) for stats: false when off; else the
 * implicit open files open now, made so far, and closed to make room for others. */
bool fs_openless_report(struct fs *fs, uint64_t *files, uint64_t *made, uint64_t *pushed_out);
/* Before the session is freed: the openless mode's notifier thread ends (fs_openless.c). A
 * no-op when the mode is off. */
void fs_openless_stop(struct fs *fs);

/* Gauges for stats (docs/STATS.md): nodes the kernel holds (and those with open state), the
 * bytes the node table takes, origin fds cached and pinned, and fds opened again (by file handle
 * or by name) after the fd cache had closed them. */
struct fs_gauges {
	uint64_t nodes, nodes_open, node_bytes, fds_cached, fds_pinned, fd_cache_misses;
};
void fs_gauges(struct fs *fs, struct fs_gauges *g);

/* Watch the origin for changes made behind the cache (fs_watch.c), after the mount: fanotify on
 * the origin's file system when the kernel allows it and no other machine changes its files
 * (fs_type.h), else revalidation at the attribute timeout and at each open (status says which
 * and why). 0, also when not watched; -errno when the watch was
 * prepared (fs_watch_prepare succeeded) but its thread could not start: the only failure
 * left after a prepare, which an openless mount must not serve through (daemon.c stops).
 * Stop it before the session is freed (fs_free stops it too). */
int fs_watch_start(struct fs *fs);
/* The part of fs_watch_start that can run before the mount: the fanotify group and its mark on
 * the original's file system, so that every change from then on is queued for the watcher
 * thread that fs_watch_start starts. 0 when marked; -errno when changes cannot be watched
 * (fs_watch_active's why says why; fs_watch_start then does nothing more): -EREMOTE when the
 * original's file system is one whose files change elsewhere with no event here (NFS, SMB,
 * FUSE, ...: fs_type.h), which is never counted as watched even where fanotify could mark it. */
int fs_watch_prepare(struct fs *fs);
void fs_watch_stop(struct fs *fs);
/* For status: true when changes are watched by fanotify; otherwise *why says why not. */
bool fs_watch_active(struct fs *fs, char *why, size_t why_size);

/* Start the background fill threads (after the mount); fs_free stops them. 0 or -errno. */
int fs_start_background(struct fs *fs);

/* The breaker for status/stats: true while it has tripped (every open bypasses the cache);
 * *why says why. */
bool fs_cache_breaker_tripped(struct fs *fs, char *why, size_t why_size);

/* Forget that the file with stat st and cache key key (both NULL: every file) had its first
 * read: the next read-only open of it, if the cache holds nothing of it, is a first read again
 * (after an evict). Also lets go of its kept object (engine_kept_forget), so that the removal
 * that follows frees it. */
void fs_first_read_forget(struct fs *fs, const struct stat *st, const struct cache_key *key);

/* One file of the stats' top-files table, by the nodeid the statistics carry: its path
 * relative to the directory, size, and how much of it the cache holds. 0, or -ENOENT when the
 * kernel no longer holds the node (the path is then unknown), or the origin's error. */
enum fs_cached { FS_CACHED_NONE, FS_CACHED_PARTIAL, FS_CACHED_FULL, FS_CACHED_UNKNOWN };
struct fs_file_report {
	char path[4096];
	uint64_t size;
	uint64_t bytes_cached;      /* present chunks, clipped to the size */
	enum fs_cached cached;      /* UNKNOWN without a cache or while it is bypassed */
};
int fs_file_report(struct fs *fs, uint64_t nodeid, struct fs_file_report *out);

/* The origin directory's O_PATH fd (owned by fs). */
int fs_origin_fd(const struct fs *fs);

/* After the mount: check that the kernel really lets us register backing files (it refuses
 * without CAP_SYS_ADMIN) so that status tells the truth before the first open. */
void fs_passthrough_probe(struct fs *fs);
#endif
