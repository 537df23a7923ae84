/* engine internals shared by the engine/ files only: the engine, its per-inode state, the fill
 * queue, the read-ahead pieces, the breaker and the first-read set. Every lock below is placed
 * in the one lock order of docs/ARCHITECTURE.md "Lock order".
 */
#ifndef CACHEMAX_ENGINE_INT_H
#define CACHEMAX_ENGINE_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache/cache_store.h"
#include "engine/engine.h"

/* io-mode of an inode's open files (the kernel allows one per inode, DESIGN.md §5). */
enum engine_io_mode {
	ENGINE_IO_NONE,    /* no open file */
	ENGINE_IO_ORIGIN,  /* passthrough to the original file */
	ENGINE_IO_CACHE,   /* passthrough to the complete cache copy */
	ENGINE_IO_USER,    /* served by the daemon: reads hit or fill the cache object */
};

/* Read-ahead of one inode (engine_readahead.c): the pieces queued for or being read by the
 * fill threads, so that a reader waits for a piece in flight instead of reading the origin
 * twice. */
#define ENGINE_READAHEAD_PIECES 16
enum engine_piece_state {
	ENGINE_PIECE_FREE,
	ENGINE_PIECE_QUEUED,          /* a fill job will read it; a reader that needs it first takes
	                               * it back (the job then skips it) and reads the origin itself */
	ENGINE_PIECE_READING,         /* a fill thread reads the origin and fills: readers wait */
	ENGINE_PIECE_FILLED,          /* filled; the readers that waited reply from the fill
	                               * thread's buffer (data), which it keeps until they are done */
};

struct engine_readahead_piece {
	uint64_t off, len;            /* whole chunks */
	uint32_t seq;                 /* tells the job its piece was not taken back and reused */
	enum engine_piece_state state;
	unsigned readers;             /* readers waiting for it or replying from data */
	const char *data;             /* ENGINE_PIECE_FILLED: the bytes read at off ... */
	size_t data_len;              /* ... this many (fewer at the end of the file) */
	uint64_t generation;          /* ... current while the object's generation is this */
	char *kept;                   /* ENGINE_PIECE_FILLED: data is this buffer, kept for the
	                               * reader (from e->readahead_pool) until it moves past the
	                               * piece; NULL: the fill thread's own, lent while readers wait */
};

/* A reader's claim on the buffer of a filled piece (engine_readahead_wait). */
struct engine_readahead_ticket {
	int piece;
	const char *data;             /* the bytes asked for ... */
	size_t len;                   /* ... this many (fewer at the end of the file) */
};

struct engine_readahead {
	pthread_mutex_t lock;         /* protects everything below */
	pthread_cond_t piece_done;    /* a piece left ENGINE_PIECE_READING */
	uint64_t next;                /* end of the range queued so far (0: none since the reset) */
	uint64_t window;              /* bytes kept queued ahead of the reader (0: not sequential) */
	uint32_t seq;
	struct engine_readahead_piece piece[ENGINE_READAHEAD_PIECES];
};

/* The engine's state of one inode (io-mode, cache object, read-ahead, write ordering), created
 * by the host when something needs it and freed with its last holder. */
struct engine_inode {
	/* Identity, set at engine_inode_new and never changed. */
	void *node;                   /* the host's node */
	uint64_t nodeid;              /* the host's id of it (statistics) */
	uint64_t ino;                 /* origin inode number (statistics, logs) */
	unsigned holds;               /* the host's count of holders, under the host's lock */

	pthread_mutex_t lock;         /* protects the fields below */
	unsigned open_count;          /* all open files of this inode */
	unsigned passthrough_count;   /* those opened with a backing file */
	int backing_id;               /* > 0 while passthrough_count > 0 */
	enum engine_io_mode mode;     /* how the open files of the inode are served */
	/* Set at the first open, released at the last (or at the last object hold after that):
	 * stable while any file is open, so the paths of an open file use it without ei->lock
	 * until they answer. Work after the answer (a fill) holds it: the file may be closed. */
	struct cache_object *obj;
	unsigned obj_holds;
	unsigned cache_writers;       /* open writers over the cache copy (ENGINE_IO_CACHE) */
	bool origin_writers;          /* a writer was opened in ENGINE_IO_ORIGIN mode since the
	                               * first open: its writes never reached us, so the last release
	                               * drops the object's chunks (times are too coarse to tell) */
	bool pinned;                  /* its path matched a --pin glob at the first open */
	bool completing;              /* a background completion job is queued or running */
	bool first_read;              /* ENGINE_IO_ORIGIN chosen for a first read: the last release
	                               * fills the cache behind it */
	bool cache_written;           /* ENGINE_IO_CACHE: a writer joined since the first open (its
	                               * object is not kept past the last release, engine_kept) */
	/* Close-to-open where changes are not watched (engine_settle.c), set at the first open:
	 * the origin's change time and size then (INT64_MIN: watched, or no first open with a
	 * stat; set so by engine_inode_new and at the last release), and whether the last
	 * release drops the object's chunks (as for origin_writers) because bytes of a version
	 * whose times had not settled may have entered it. */
	int64_t settle_change_ns;
	uint64_t settle_size;
	bool unsettled;
	struct cache_key key;         /* the object's key, set with obj */

	pthread_mutex_t write_lock;   /* an origin change and the cache update after it */
	/* write_lock: in ENGINE_IO_CACHE mode, the origin fingerprint the cache copy mirrors.
	 * Kept here, not only in the object: an evicted object stores nothing (not even a new
	 * fingerprint), yet its data file goes on serving the passthrough readers. */
	struct cache_fingerprint mirror_fp;
	/* write_lock: in ENGINE_IO_CACHE mode, the copy's mtime after our last write to it. Moved
	 * since, with no byte different from the origin: a writer's mapping wrote the same bytes
	 * (which moves mtime on any file system), see write_back_locked. */
	struct timespec copy_mtime;
	bool copy_mtime_noted;        /* write_lock: copy_mtime was taken (at the first writer) */

	struct engine_readahead readahead;  /* its own lock; taken with no other inode lock held */
};

/* Background fills (engine_fill.c), done by fill threads after the answer. A job holds its
 * node and object. */
enum engine_fill_kind {
	ENGINE_FILL_CHUNKS,           /* the chunks of a random miss */
	ENGINE_FILL_COMPLETION,       /* the whole file (counts in STATS_COMPLETIONS) */
	ENGINE_FILL_RESIDENT,         /* the chunks in the origin's page cache, after a first read */
	ENGINE_FILL_PIECE,            /* a read-ahead piece of ei->readahead */
};
struct engine_fill_job {
	struct engine_fill_job *next;
	struct engine_inode *inode;
	struct cache_object *obj;
	enum engine_fill_kind kind;
	uint64_t off, len;            /* the range to fill (whole file: 0, UINT64_MAX) */
	int piece;                    /* ENGINE_FILL_PIECE: its index in readahead, and seq */
	uint32_t piece_seq;
};

#define ENGINE_FILL_THREADS_MAX 4
#define ENGINE_FILL_BACKGROUND_MAX 1  /* completion and chunk jobs run at once (see job_take) */

/* A completion the queue refused at queue_max, waiting in the backlog (engine_fill.c "the
 * backlog"): it keeps its node alone (host node_keep: no fd, no engine inode). */
struct engine_fill_wait {
	struct engine_fill_wait *next;
	void *node;
	uint64_t epoch;               /* the backlog's epoch when it came: older ones are let go */
};

struct engine_filler {
	pthread_mutex_t lock;         /* protects everything below */
	pthread_cond_t cond;
	struct engine_fill_job *head, *tail;
	unsigned queued;
	unsigned queue_max;           /* each queued job holds its cache object's fd */
	struct engine_fill_wait *backlog_head, *backlog_tail;
	unsigned backlog_count;
	unsigned backlog_max;         /* 0: no backlog (the host cannot keep nodes) */
	uint64_t backlog_epoch;       /* moved by engine_fill_backlog_forget (an evict) */
	unsigned background_running;  /* jobs other than read-ahead pieces being run (at most
	                               * ENGINE_FILL_BACKGROUND_MAX: they must not crowd out the
	                               * origin reads that applications wait for) */
	bool stop;
	bool started;
	unsigned thread_count;
	pthread_t threads[ENGINE_FILL_THREADS_MAX];
	pthread_t pinned_walk;        /* engine_pinned_walk at start, joined by engine_fill_stop */
	bool pinned_walk_started;
};

/* The breaker: after ENGINE_BREAKER_ERRORS cache-device errors within ENGINE_BREAKER_WINDOW_NS
 * new opens bypass the cache; it is tried again after cfg.breaker_retry_ms. */
#define ENGINE_BREAKER_ERRORS 8
#define ENGINE_BREAKER_WINDOW_NS (10ull * 1000000000)

struct engine_breaker {
	pthread_mutex_t lock;         /* protects everything below but `on` and `notify_pending` */
	atomic_bool on;
	uint64_t window_start_ns;
	unsigned errors;
	uint64_t since_ns;
	char why[200];
	/* A change not yet told to cfg.breaker_changed: told by engine_bypass_notify, which the
	 * entry points call once they hold no lock (the callback rewrites the state file). */
	atomic_bool notify_pending;
	pthread_mutex_t notify_lock;  /* one callback at a time, in order; taken with no other */
};

/* Buffers kept in filled read-ahead pieces, engine-wide: at most ENGINE_READAHEAD_KEPT_MAX,
 * and a free list of as many (one fill buffer each, page-aligned). */
#define ENGINE_READAHEAD_KEPT_MAX 32
struct engine_readahead_pool {
	pthread_mutex_t lock;         /* protects everything below; a leaf lock */
	unsigned kept;                /* buffers held by pieces (or reserved for a swap) */
	unsigned free_count;
	char *free[ENGINE_READAHEAD_KEPT_MAX];
};

/* Files whose first read passed through to the origin (engine_open.c): a set of hashes of
 * (key, size, mtime), set-associative, oldest way replaced. A lost or colliding entry only
 * changes which path serves a read, never the bytes. */
#define ENGINE_SEEN_SETS 4096
#define ENGINE_SEEN_WAYS 4
struct engine_seen {
	pthread_mutex_t lock;         /* protects everything below; a leaf lock */
	uint64_t hash[ENGINE_SEEN_SETS][ENGINE_SEEN_WAYS];  /* 0: empty */
	uint8_t next[ENGINE_SEEN_SETS];   /* the way to replace next */
};

/* Kept objects (engine_open.c): the complete cache objects of read-only hits, with their
 * registered backing id, kept past the inode's last release so that its next open needs no
 * record read and no BACKING_OPEN: it still checks the object against the origin's
 * fingerprint of that open (cache_object_reopen). A kept object is parked
 * (cache_object_park): its data file stays open only as the kernel's backing file, so an entry
 * costs the daemon no fd (about 300 bytes of memory, and the kernel a backing file: its
 * struct file and the copy's inode kept in memory). Set-associative by key; an entry pushed
 * out is released (its id closed). Bounded by cfg.kept_max entries (from the memory the
 * daemon may use, fs_node.c) and ENGINE_KEPT_BYTES_MAX bytes of copies (a kept object evicted or
 * removed by the capacity thread or the scrub holds its data file's blocks through the
 * kernel's backing file until it is pushed out or reopened), each at most
 * ENGINE_KEPT_SIZE_MAX. */
/* 16 ways: a scan of every file, a cyclic pattern that a full set's FIFO loses whole, finds
 * its object kept where its set holds at most this many (a scan of 100,000 files over 131,072
 * entries: 83% of them by a Poisson estimate, 64% with 4 ways). */
#define ENGINE_KEPT_WAYS 16
#define ENGINE_KEPT_SIZE_MAX (256u << 10)
#define ENGINE_KEPT_BYTES_MAX (1ull << 30)
#define ENGINE_KEPT_BYTES_DIVISOR 64   /* and at most this part of the cache's capacity */
struct engine_kept_entry {
	struct cache_object *obj;     /* NULL: empty */
	struct cache_key key;
	int backing_id;               /* > 0: registered for obj's data file */
	uint64_t bytes;               /* the copy's allocation when it was kept */
};
struct engine_kept {
	pthread_mutex_t lock;         /* protects everything below; a leaf lock */
	unsigned sets;                /* 0: nothing is kept */
	struct engine_kept_entry (*slot)[ENGINE_KEPT_WAYS];
	uint8_t *next;                /* per set, the way to replace next */
	uint64_t bytes;               /* of the entries in slot */
	uint64_t bytes_max;
	/* Deleted files' keys forgotten (engine_file_deleted, after the discard's mark and before
	 * the forget): an entry put while it moved may hold an object discarded after its park
	 * checked, which the forget ran too early to find; it is not kept (kept_put). */
	atomic_uint_fast64_t forgets;
};

struct engine {
	struct engine_config cfg;
	struct engine_host host;
	struct cache_store *store;    /* NULL: no caching */
	struct engine_filler filler;
	struct engine_breaker breaker;
	atomic_uint_fast64_t readahead_paused_until_ns;  /* a read-ahead fill found the cache full */
	struct engine_readahead_pool readahead_pool;
	struct engine_seen seen;
	struct engine_kept kept;
	/* Discards of deleted files' copies (engine_file_deleted), counted before each discard: an
	 * open during which it moved may have opened, after the discard found nothing, the copy of
	 * a name that just went (its key read from a path a rename then moved, or its inode's last
	 * name unlinked after its stat): it asks again (open_recheck). */
	atomic_uint_fast64_t discards;
};

/* ---- close-to-open where changes are not watched (engine_settle.c) ---- */
/* A file changed less than this long ago (its mtime or ctime) may change again without its
 * times moving: 2 s of timestamp granularity (FAT; SFTP and others have 1 s) and 1 s of clock
 * difference between the file server and us. */
#define ENGINE_SETTLE_NS (3 * 1000000000ll)
/* The first open of ei, with the origin's stat: true if its times have not settled (the open
 * must not bring the cache store in; a held object is dropped at the last release). ei->lock. */
bool engine_settle_begin(struct engine *e, struct engine_inode *ei, const struct stat *st);
/* The last release of ei (ei->lock held): sets ei->unsettled if the object's fingerprint
 * moved since the first open (a write, a change seen at GETATTR). */
void engine_settle_end(struct engine_inode *ei);
/* May no bytes be stored under fp (an object's fingerprint, sampled with its generation) now?
 * True where ei's changes are not watched and fp's mtime or ctime is younger than
 * ENGINE_SETTLE_NS: a fill job stops, warm answers "waiting". No lock needed. */
bool engine_settle_fresh(struct engine *e, struct engine_inode *ei, const struct cache_fingerprint *fp);

/* ---- kept objects (engine_open.c) ---- */
int engine_kept_init(struct engine *e);
/* Release every kept object; close_ids: also their backing ids (false once the session that
 * registered them is gone: the connection's teardown frees them). */
void engine_kept_drain(struct engine *e, bool close_ids);

/* ---- the host seam (engine.c) ---- */
int engine_host_origin_fd(struct engine *e, struct engine_inode *ei);
void engine_host_origin_fd_put(struct engine *e, struct engine_inode *ei, int fd);
int engine_host_open(struct engine *e, int dirfd, const char *name, int flags, mode_t mode);
/* "/proc/self/fd/N" for an O_PATH fd, for calls that have no *at() form usable with it. */
#define ENGINE_PROC_PATH_MAX 32
#define ENGINE_RELPATH_MAX 4096   /* a path relative to the origin (the host's relpath) */
void engine_host_proc_path(int fd, char buf[ENGINE_PROC_PATH_MAX]);
/* Hold the node and its object for work after the answer (the object stays open past the
 * last release until engine_object_drop); engine_object_hold returns the object. */
struct cache_object *engine_object_hold(struct engine *e, struct engine_inode *ei);
void engine_object_drop(struct engine *e, struct engine_inode *ei);
/* ei->lock held: release the object (the last close or the last hold). */
void engine_object_release_locked(struct engine *e, struct engine_inode *ei);
/* A daemon limit (not the origin's answer, nor the cache device's)? */
static inline bool engine_limit_error(int rc) { return rc == -EMFILE || rc == -ENFILE; }

/* ---- reads served by the origin, the breaker (engine_bypass.c) ---- */
/* The cache store to use for a new open: NULL without a cache or while the breaker is on. */
struct cache_store *engine_bypass_store(struct engine *e);
/* A cache-device error (never passed to the application): counted, logged, and after
 * repeated ones the breaker goes on. Safe under any lock: the breaker's callback is deferred
 * to engine_bypass_notify. */
void engine_bypass_error(struct engine *e, const char *what, int rc);
/* Tell cfg.breaker_changed of a change; call with no lock held. */
void engine_bypass_notify(struct engine *e);
bool engine_bypass_breaker_tripped(struct engine *e);
/* Count one read answered from the cache copy or the origin, also for its file. */
void engine_bypass_count_read(struct engine *e, const struct engine_inode *ei, bool from_cache,
                              uint64_t bytes, uint64_t t0);
/* Read [off, off + size) from the origin (f->fd) into buf, counted: bytes or -errno. */
ssize_t engine_bypass_read(struct engine *e, struct engine_file *f, char *buf, size_t size,
                           uint64_t off, uint64_t t0);

/* ---- origin reads for fills (engine_fill.c) ---- */
/* An O_RDONLY fd on the origin file for the cache's own reads (-errno if refused):
 *   ENGINE_ORIGIN_DIRECT      O_DIRECT: whole-chunk reads bypass the origin's page cache, as a
 *                             direct read of the original would (an application's misses; the
 *                             probe before a passthrough open);
 *   ENGINE_ORIGIN_BACKGROUND  the same for reads nobody asked for yet (fills, read-ahead), which
 *                             must leave the access time alone (O_NOATIME); buffered where the
 *                             file system refuses O_DIRECT;
 *   ENGINE_ORIGIN_RESIDENT    buffered, O_NOATIME, without read-ahead: copies of what the
 *                             origin's page cache holds. */
enum engine_origin_read { ENGINE_ORIGIN_DIRECT, ENGINE_ORIGIN_BACKGROUND, ENGINE_ORIGIN_RESIDENT };
int engine_fill_origin_open(struct engine *e, struct engine_inode *ei, enum engine_origin_read how);
#define ENGINE_DIRECT_ALIGN 4096u
#define ENGINE_FILL_BUFFER_CHUNKS 4   /* chunks read from the origin per fill (a piece) */

/* The data ranges of [off, off + len) of an origin file (SEEK_DATA/SEEK_HOLE), for
 * cache_object_fill_sparse(): past ENGINE_FILL_RANGES_MAX ranges, or where the file system
 * cannot tell, the rest counts as data. engine_fill_ranges_clip() cuts them at end. */
struct engine_fill_ranges {
	struct cache_extent ext[ENGINE_FILL_RANGES_MAX];
	size_t count;
};
void engine_fill_data_ranges(int fd, uint64_t off, uint64_t len, struct engine_fill_ranges *r);
void engine_fill_ranges_clip(struct engine_fill_ranges *r, uint64_t end);
/* Count the outcome of cache_object_fill() of `read` origin bytes: stored chunks, a fill
 * dropped by a racing write (-ESTALE), refused at capacity (-EDQUOT), or a device error. */
void engine_fill_count(struct engine *e, const char *what, ssize_t filled, size_t read);
/* Queue a job (each holds node and object; the file must be open or the object held); false
 * if not queued (queue full for all but pieces, or stopping). A completion the full queue
 * refuses waits in the backlog instead (engine_fill_completion is then true). */
bool engine_fill_chunks(struct engine *e, struct engine_inode *ei, uint64_t off, uint64_t len);
bool engine_fill_completion(struct engine *e, struct engine_inode *ei);
bool engine_fill_resident(struct engine *e, struct engine_inode *ei);
bool engine_fill_piece(struct engine *e, struct engine_inode *ei, uint64_t off, uint64_t len,
                       int piece, uint32_t seq);
/* After a miss: queue the completion of a small (or pinned) file, once. True while one is
 * queued or running, or waits in the backlog. */
bool engine_fill_maybe_complete(struct engine *e, struct engine_inode *ei,
                                const struct cache_object_info *info);

/* The fill threads (and the pinned walk): started by engine_start, stopped by engine_stop. */
int engine_fill_start(struct engine *e);
void engine_fill_stop(struct engine *e);
bool engine_fill_stopping(struct engine *e);

/* ---- misses (engine_miss.c) ---- */
ssize_t engine_miss_read(struct engine *e, struct engine_file *f, char *buf, size_t buf_size,
                         size_t size, uint64_t off, bool sequential, const void **data,
                         struct engine_read_after *after);
/* The after-reply part of a whole-chunk miss: fill the chunks read. */
void engine_miss_fill_after(struct engine *e, struct engine_read_after *after);

/* ---- read-ahead (engine_readahead.c) ---- */
void engine_readahead_init(struct engine_readahead *ra);
void engine_readahead_release(struct engine *e, struct engine_readahead *ra);
void engine_readahead_pool_init(struct engine *e);
void engine_readahead_pool_release(struct engine *e);
/* The last open file closed: give back the buffers its pieces keep. */
void engine_readahead_drop(struct engine *e, struct engine_inode *ei);
/* A read that a filled, current piece holds: true with a ticket (reply from t->data, t->len,
 * then engine_readahead_ticket_release(); hold the node across the reply). */
bool engine_readahead_lookup(struct engine_inode *ei, struct cache_object *obj, uint64_t off,
                             uint64_t size, struct engine_readahead_ticket *t);
/* A sequential read keeps up to the window queued ahead of it as fill jobs of whole chunks,
 * growing the window; another resets it. */
void engine_readahead_advance(struct engine *e, struct engine_inode *ei, struct cache_object *obj,
                              uint64_t off, uint64_t size, bool sequential);
/* Before a miss reads the origin: wait (bounded) for the pieces being read that overlap it,
 * take back those only queued. ENGINE_READAHEAD_HANDOFF: one piece covered the range, current:
 * reply from the ticket; ENGINE_READAHEAD_WAITED: it waited (read the cache again); 0. */
#define ENGINE_READAHEAD_WAITED 1
#define ENGINE_READAHEAD_HANDOFF 2
int engine_readahead_wait(struct engine *e, struct engine_inode *ei, struct cache_object *obj,
                          uint64_t off, uint64_t size, struct engine_readahead_ticket *t);
void engine_readahead_ticket_release(struct engine_inode *ei, int piece);
/* Fill jobs of pieces: claim before the origin read (false: taken back, skip); offer the
 * filled bytes to the waiting readers (returns the buffer the fill thread goes on with);
 * done when the job ends, run or not. */
bool engine_readahead_piece_claim(struct engine_inode *ei, int piece, uint32_t seq);
char *engine_readahead_piece_offer(struct engine *e, struct engine_inode *ei, int piece,
                                   uint32_t seq, char *data, size_t len, uint64_t generation);
void engine_readahead_piece_done(struct engine_inode *ei, int piece, uint32_t seq);
/* The read-ahead stops for a while once a fill found the cache full. */
void engine_readahead_pause(struct engine *e);

/* ---- write helpers (engine_write.c) ---- */
/* ENGINE_IO_CACHE: note the copy's mtime after we wrote it (ei->write_lock held). */
void engine_write_copy_mtime_note(struct engine_inode *ei);
/* ei->write_lock held: record the origin's new fingerprint (fd: an fd on it). */
void engine_write_fingerprint_refresh(struct engine *e, struct engine_inode *ei);

/* ---- --pin and --exclude (engine_pinned.c) ---- */
bool engine_pinned_match(const char *const *globs, unsigned count, const char *rel);
/* Pin the cache objects of every file under the origin whose path matches a --pin glob. */
void engine_pinned_walk(struct engine *e);

#endif
