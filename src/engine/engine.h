/* engine: the cache engine — what to serve from the cache copy, what to fill and when, when to
 * read ahead, when to serve from the origin instead (DESIGN.md §2, docs/ARCHITECTURE.md
 * "Engine"). It knows nothing of FUSE: a read fills the caller's buffer and says what to do
 * after the reply; the host (the file system, src/fs/, or a unit test) sends the reply, then
 * calls engine_read_after(). The host reaches origin inodes, keeps nodes alive and registers
 * passthrough backing files for it through struct engine_host (the environment seam).
 *
 * One file per I/O path, each function carrying its file's prefix:
 *   engine.c            lifecycle, engine inodes, deleted files, object info for reports
 *   engine_open.c       io-mode choice at the first open, attach/detach, the first-read set
 *   engine_read.c       reads: hit, read-ahead hand-off, the after-reply step
 *   engine_miss.c       misses: whole-chunk reads filled after the reply, small random ones
 *   engine_write.c      write-through, mirroring into the cache copy, mmap write-back, resync
 *   engine_fill.c       background fill threads, one function per job kind
 *   engine_readahead.c  read-ahead pieces ahead of a sequential reader
 *   engine_bypass.c     serving from the origin: the reads and the breaker (after repeated
 *                       cache-device errors every new open bypasses the cache for a while)
 *   engine_pinned.c     --pin / --exclude globs and the walk that pins matching files at start
 *   engine_settle.c     close-to-open where no watcher reports changes: no cache for a file
 *                       whose times have not settled (a network original's coarse times)
 * Locks: docs/ARCHITECTURE.md "Lock order" (the only copy). No engine call may be made with an
 * engine lock held, and the host holds none of its own node locks across one.
 * Errors: 0 (or a byte count) or -errno; cache-device errors never reach the caller (the read
 * or write is served by the origin and the error counted, engine_bypass.c).
 */
#ifndef CACHEMAX_ENGINE_H
#define CACHEMAX_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache/cache_store.h"
#include "stats/stats.h"

struct engine;
struct engine_inode;    /* per-inode state: open counts, io-mode, cache object, read-ahead */
struct engine_file;

#define ENGINE_BREAKER_RETRY_MS_DEFAULT 60000
/* Data ranges of an origin range kept at most (engine_fill_data_ranges). */
#define ENGINE_FILL_RANGES_MAX 32
/* Fill jobs queued at most (read-ahead pieces aside; each holds its object's fd and its
 * inode's open state, 1,368 bytes on x86-64): the host picks a share of its fd limit between
 * these. A walk that reads a few thousand small files queues a completion for each (at 256, a
 * cat of 400 small files left 105 to 123 of them uncached until their next read). */
#define ENGINE_FILL_QUEUE_MAX 4096
#define ENGINE_FILL_QUEUE_MIN 8
/* Completions waiting in the fill backlog at most (engine_fill.c "the backlog": a completion
 * the full queue refused keeps only its node, no fd): the host picks a number from the memory
 * the daemon may use, up to this; each costs 24 bytes (32 with malloc's header) plus the node
 * it keeps, if the kernel forgot it meanwhile (fs_node: 152 bytes and its name). */
#define ENGINE_FILL_BACKLOG_MAX 262144

/* What the engine asks of its host. `node` is the host's node of an origin inode, given at
 * engine_inode_new(); every callback may be called from any thread, with no engine lock held. */
struct engine_host {
	void *arg;
	/* Borrow an O_PATH fd on the node's origin inode: >= 0 or -errno; give it back. */
	int (*origin_fd)(void *arg, void *node);
	void (*origin_fd_put)(void *arg, void *node, int fd);
	/* openat for the engine's own fds; survives a full fd table (closes cached fds). */
	int (*open)(void *arg, int dirfd, const char *name, int flags, mode_t mode);
	/* Open the origin file of open file f now (a lazy open, see struct engine_file): a new fd
	 * opened as the application's open asked (read-only), or -errno. NULL: the host opens
	 * every file at its open. */
	int (*file_open)(void *arg, struct engine_file *f);
	/* The node's path relative to the origin (for the --pin/--exclude globs); 0 or -errno. */
	int (*relpath)(void *arg, void *node, char *buf, size_t size);
	/* The origin file's handle (for the scrub after a restart); false: none. */
	bool (*origin_handle)(void *arg, void *node, struct cache_origin_handle *out);
	/* Keep the node and its engine inode alive for work after a reply (a fill, a read-ahead
	 * window move), the open file being possibly released meanwhile; undone by node_drop.
	 * Called only while the caller's open file or an earlier hold keeps the inode. */
	void (*node_hold)(void *arg, void *node);
	void (*node_drop)(void *arg, void *node);
	/* The fill backlog (engine_fill.c): keep the node alone while its completion waits (a
	 * lookup reference: no fd, no engine inode), let it go; node_inode_hold: hold a kept node
	 * and its engine inode, made if it has none, as node_hold does (undone by node_drop; NULL:
	 * out of memory). NULL callbacks: no backlog (a completion the full queue refuses is
	 * queued again by the file's next miss). */
	void (*node_keep)(void *arg, void *node);
	void (*node_let_go)(void *arg, void *node);
	struct engine_inode *(*node_inode_hold)(void *arg, void *node);
	/* Passthrough: may opens pass through at all; register fd as the inode's backing file
	 * (id > 0, or -errno: then served in user space); close a backing id. */
	bool (*passthrough_ok)(void *arg);
	int (*backing_open)(void *arg, int fd);
	int (*backing_close)(void *arg, int id);
	/* Does a watcher report every change of the node's origin file made by another route?
	 * false (a network original): close-to-open, engine_settle.c. NULL: always watched. */
	bool (*changes_watched)(void *arg, void *node);
};

struct engine_config {
	struct stats *stats;          /* counters to update; may be NULL */
	struct cache_store *store;    /* the cache; NULL: no caching (every read is a bypass) */
	int origin_fd;                /* O_PATH|O_DIRECTORY fd of the origin (the walk of engine_pinned.c); kept
	                               * by the caller */
	uint64_t complete_max;        /* complete files up to this size after their first miss */
	unsigned fill_threads;        /* background fill threads (0: 1) */
	unsigned fill_queue_max;      /* fill jobs queued at most (0: ENGINE_FILL_QUEUE_MAX) */
	unsigned fill_backlog_max;    /* completions waiting in the backlog at most (0:
	                               * ENGINE_FILL_BACKLOG_MAX) */
	bool first_read_origin;       /* a file's first read passes through to the origin */
	/* Complete objects of read-only hits kept past their last release, with their backing id,
	 * for the next open of the same file (0: none; they hold no fd: struct engine_kept). */
	unsigned kept_max;
	/* --pin and --exclude globs (fs.h says how they match); must outlive the engine. */
	const char *const *pin_globs;
	unsigned pin_count;
	const char *const *exclude_globs;
	unsigned exclude_count;
	/* The breaker went on (why says what failed) or off. Called from engine entry points
	 * after they let go of every lock (never under a node lock: it may rewrite files). */
	void (*breaker_changed)(void *arg, bool on, const char *why);
	void *breaker_arg;
	unsigned breaker_retry_ms;    /* how long the breaker stays on (0: the default) */
	unsigned fill_delay_ms;       /* tests: a fill job pauses before its first origin read */
	unsigned offer_delay_ms;      /* tests: a read-ahead piece pauses before its offer */
	int64_t settle_clock_offset_ns; /* tests: added to the wall clock engine_settle.c compares
	                               * file times with (ages or freshens them without waiting) */
	/* The origin's inode numbers do not last (a FUSE original such as sshfs numbers its inodes
	 * in lookup order: another number after the kernel evicts an inode, a number given to
	 * another file after a remount): the cache knows its files by their path relative to the
	 * origin (the host's relpath; cache_store_path_key), and fingerprints leave st_dev and
	 * st_ino out. Otherwise by (st_dev, st_ino). See engine_key. */
	bool files_by_path;
};

int engine_create(const struct engine_config *cfg, const struct engine_host *host,
                  struct engine **out);
/* Start the fill threads (and the walk that pins --pin matches); engine_stop stops them. 0 or -errno. */
int engine_start(struct engine *e);
/* Stop the fill threads (jobs still queued are dropped, their holds undone). */
void engine_stop(struct engine *e);
/* The cache store to use now: NULL without a cache or while the breaker is on. */
struct cache_store *engine_store(struct engine *e);
/* After engine_stop and once every engine inode is freed. */
void engine_free(struct engine *e);

/* Engine inodes: the host creates one when something needs the inode's open state (an open
 * file, a hold for work after a reply) and frees it when its last holder let go. The count
 * of holders is the host's (under its own lock): engine_inode_holds_add returns the new one. */
struct engine_inode *engine_inode_new(struct engine *e, void *node, uint64_t nodeid, uint64_t ino);
void engine_inode_free(struct engine *e, struct engine_inode *ei);
unsigned engine_inode_holds_add(struct engine_inode *ei, int delta);
size_t engine_inode_size(void);

/* One open file of an inode (embedded in the host's open file). */
struct engine_file {
	struct engine_inode *inode;
	/* The host's open fd on the origin file. A read-only open may leave it -1 (a lazy open:
	 * a hit passed through to the cache copy never reads the origin); engine_file_fd() opens
	 * it on first need through the host's file_open, once (the first of racing callers wins),
	 * and it stays open until the host's release. Never changed once >= 0. */
	atomic_int fd;
	int open_flags;               /* flags the application opened with */
	bool regular;
	bool passthrough;             /* opened with a backing file (engine_open_attach) */
	/* Opened while the inode's open files pass through to the cache copy (a hit) but must
	 * not use it as is (a writer, a stale copy): direct I/O sends its reads and writes here. */
	bool via_daemon;
	bool stale;                   /* the origin changed under the cache copy: read the origin */
	bool check_writeback;         /* a writer over the cache copy: its mmap writes land there */
	uint64_t next_off;            /* end of the last read: tells sequential from random misses */
	uint64_t discards;            /* engine_discards() before the host's stat of this open */
	atomic_int direct_fd;         /* O_DIRECT origin fd for whole-chunk miss reads: 0 not opened
	                               * yet, -1 unavailable (closed by engine_open_detach) */
};

/* ---- open (engine_open.c) ---- */
struct engine_open_result {
	bool passthrough;             /* open with this backing id ... */
	int backing_id;
	bool direct_io;               /* ... and direct I/O (reads and writes come to us) */
	bool hit;                     /* passthrough to the complete cache copy */
};
/* Attach f (f->fd, f->open_flags, f->regular set; f->inode held by the caller until
 * engine_open_detach) and choose the inode's io-mode if it is its first open. st: the origin
 * file's attributes (NULL if unknown). Does a deferred O_TRUNC. f->fd may be -1 (opened on
 * first need) only for a read-only open without O_TRUNC. 0 or -errno. */
int engine_open_attach(struct engine *e, struct engine_file *f, const struct stat *st,
                       struct engine_open_result *out);
void engine_open_detach(struct engine *e, struct engine_file *f);
/* Let go of the kept object of key (NULL: of every file), before the object is removed or
 * discarded: a kept reference would hold its data file's blocks. */
void engine_kept_forget(struct engine *e, const struct cache_key *key);
/* The fd whose bytes this open file shows (SEEK_DATA/HOLE): the cache copy while the inode's
 * files pass through to it (it mirrors the origin plus mmap writes not yet written back),
 * else the origin file's (opened now if it was not yet: engine_file_fd). >= 0 or -errno. */
int engine_open_data_fd(struct engine *e, struct engine_file *f);
/* f's fd on the origin file, opened now if the open left it for later (struct engine_file):
 * >= 0, or -errno (the open failed; a later call tries again). Any thread, no lock held. */
int engine_file_fd(struct engine *e, struct engine_file *f);
/* Does ei have open writers over the cache copy (whose mapping's writes reach the origin only
 * at write-back)? */
bool engine_open_cache_writers(struct engine_inode *ei);
/* Forget that the file with stat st (NULL: every file) had its first read. */
void engine_open_first_read_forget(struct engine *e, const struct stat *st);

/* ---- read (engine_read.c) ---- */
/* Work left for after the reply: engine_read_after() does it, always, once per read. */
struct engine_read_after {
	struct engine_inode *held;    /* node held across the reply; NULL: nothing to do */
	struct cache_object *obj;
	uint64_t off, size;           /* the request */
	bool sequential;              /* move the read-ahead window */
	int ticket_piece;             /* >= 0: the read-ahead piece the reply came from */
	/* A whole-chunk miss: fill [start, start + len) from buf (the caller's buffer, or own,
	 * freed after) with generation gen, holes at ranges (engine_fill_ranges). */
	bool fill;
	char *buf, *own;
	uint64_t start, gen;
	size_t len;
	size_t range_count;
	struct cache_extent ranges[ENGINE_FILL_RANGES_MAX];
};
/* Read [off, off + size) for open file f into buf (buf_size bytes, page-aligned, at least
 * size): the bytes to reply are *data (in buf, or a read-ahead piece's buffer) and the return
 * value (or -errno: reply that error). Counts the read. Then, after the reply, call
 * engine_read_after(e, after) whatever was returned; buf must stay untouched until then. */
ssize_t engine_read(struct engine *e, struct engine_file *f, char *buf, size_t buf_size,
                    size_t size, uint64_t off, const void **data, struct engine_read_after *after);
void engine_read_after(struct engine *e, struct engine_read_after *after);

/* ---- fill (engine_fill.c) ---- */
/* Warm (cachemax warm): open ei's object (st: the origin file's attributes), queue its
 * completion as a miss does (once), and report where it stands. Idempotent. 0 or -errno
 * (-EAGAIN while the breaker is on, -EIO if the object cannot serve). */
enum engine_warm_state {
	ENGINE_WARM_COMPLETE,   /* every chunk is in the cache */
	ENGINE_WARM_FILLING,    /* a completion job is queued or running */
	ENGINE_WARM_WAITING,    /* not queued now: the fill queue is full, the file is open
	                         * with passthrough, which a fill must not race, or (changes not
	                         * watched) it changed within ENGINE_SETTLE_NS (engine_settle.c) */
};
struct engine_warm {
	enum engine_warm_state state;
	uint64_t size;              /* the file's size */
	uint64_t cached;            /* bytes of it in the cache (whole chunks, clipped) */
};
int engine_fill_warm(struct engine *e, struct engine_inode *ei, const struct stat *st,
                     struct engine_warm *out);
/* An evict: the completions waiting in the backlog are let go, not run (they would fill
 * again what was just evicted); the next read of those files fills them. */
void engine_fill_backlog_forget(struct engine *e);

/* ---- write (engine_write.c) ---- */
/* Write-through: the origin first (f->fd), then the cache object and copy. Bytes written or
 * -errno (the origin's). */
ssize_t engine_write(struct engine *e, struct engine_file *f, const void *data, size_t size,
                     uint64_t off);
/* An origin change other than WRITE (truncate, fallocate, copy_file_range): between begin and
 * end, with ei's locks held (begin writes a mapping's changes back first); changed() after
 * the change succeeded: truncated to size, or bytes [off, off + len) changed. */
void engine_write_change_begin(struct engine *e, struct engine_inode *ei);
void engine_write_changed(struct engine *e, struct engine_inode *ei, bool truncated, off_t size,
                          off_t off, off_t len);
void engine_write_change_end(struct engine *e, struct engine_inode *ei);
/* Metadata of the origin file changed through the mount (its ctime moved): record the new
 * fingerprint of an open object. */
void engine_write_metadata_changed(struct engine *e, struct engine_inode *ei);
/* fsync, GETATTR of a file with a writable passthrough open: write a writer's mmap changes
 * in the cache copy back to the origin. */
void engine_write_back(struct engine *e, struct engine_inode *ei);
void engine_write_sync(struct engine *e, struct engine_file *f);
/* The origin file may have changed behind the cache (`event`: the change watch says so; else a
 * GETATTR of an open file asks): if its fingerprint moved, bring the open object in step. An
 * event marks an object read through the original (ENGINE_IO_ORIGIN) as raced in any case. */
void engine_write_resync(struct engine *e, struct engine_inode *ei, bool event);

/* ---- the identity of files in the cache (engine.c) ---- */
/* The key of the origin file with attributes st at relpath (relative to the origin root; may
 * be NULL unless files_by_path): (st_dev, st_ino), or with files_by_path the path's key. The
 * only place that decides it, with engine_fingerprint. */
struct cache_key engine_key(const struct engine *e, const char *relpath, const struct stat *st);
/* engine_key of the file of the host's node (its relpath asked of the host when files_by_path).
 * 0, or -errno if its path is not known (then it has no copy). */
int engine_node_key(struct engine *e, void *node, const struct stat *st, struct cache_key *key);
/* What the cache compares to tell whether its bytes of a file may be served: st's fingerprint,
 * without st_dev and st_ino when files_by_path (the key stands for the file there). */
void engine_fingerprint(const struct engine *e, const struct stat *st, struct cache_fingerprint *fp);

/* ---- deleted files, reports (engine.c) ---- */
/* Before a name goes, given what it leads to: true if its copy goes with it — the last name of
 * a regular file, or any name of one known by path (and there is a cache); once the name went,
 * engine_file_deleted() with its key (engine_key) discards its object — at once, or at its
 * last close if open. */
bool engine_last_name(struct engine *e, const struct stat *st);
/* A count of deleted files' discards, for engine_file.discards: read it before the stat that
 * an open's attributes come from (its key, for a file known by path, is read after it). */
uint64_t engine_discards(struct engine *e);
void engine_file_deleted(struct engine *e, struct cache_key key);
/* For reports: the object info of st's file (key: engine_key of it), that of ei's open object
 * if any (ei may be NULL), else the one on disk. false if the cache has none (or no cache, or
 * the breaker is on). */
bool engine_object_info(struct engine *e, struct engine_inode *ei, const struct stat *st,
                        struct cache_key key, struct cache_object_info *info);

/* ---- the breaker (engine_bypass.c) ---- */
/* True while the breaker is on (every new open bypasses the cache); *why says why. */
bool engine_bypass_breaker_on(struct engine *e, char *why, size_t why_size);

#endif
