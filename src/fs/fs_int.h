/* fs internals shared by the fs/ files only: the file system, its node table, open files.
 * Locking (see docs/ARCHITECTURE.md): fs->table_lock protects both hash tables and every
 * node's lookup count; io->lock protects the node's open state (open counts, io-mode, backing
 * id, cache object pointer); io->write_lock orders an origin write with the cache update that
 * follows it. Order: table_lock, io->lock, io->write_lock. Leaves, taken under any of those:
 * an io stripe lock (fs->io_lock: node->io and its hold count) and fs->fds.lock (the fd
 * cache). Never hold any across a reply.
 */
#ifndef CACHEMAX_FS_INT_H
#define CACHEMAX_FS_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache/cache_store.h"
#include "fs/fs.h"

/* io-mode of an inode's open files (the kernel allows one per inode, DESIGN.md §5). */
enum fs_io_mode {
	FS_IO_NONE,    /* no open file */
	FS_IO_ORIGIN,  /* passthrough to the original file */
	FS_IO_CACHE,   /* passthrough to the complete cache copy */
	FS_IO_USER,    /* served by the daemon: reads hit or fill the cache object */
};

/* Read-ahead of one inode (fs_readahead.c): the pieces queued for or being read by the fill
 * threads, so that a reader waits for a piece in flight instead of reading the origin twice. */
#define FS_READAHEAD_PIECES 16
enum fs_piece_state {
	FS_PIECE_FREE,
	FS_PIECE_QUEUED,              /* a fill job will read it; a reader that needs it first takes
	                               * it back (the job then skips it) and reads the origin itself */
	FS_PIECE_READING,             /* a fill thread reads the origin and fills: readers wait */
	FS_PIECE_FILLED,              /* filled; the readers that waited reply from the fill
	                               * thread's buffer (data), which it keeps until they are done */
};

struct fs_readahead_piece {
	uint64_t off, len;            /* whole chunks */
	uint32_t seq;                 /* tells the job its piece was not taken back and reused */
	enum fs_piece_state state;
	unsigned readers;             /* readers waiting for it or replying from data */
	const char *data;             /* FS_PIECE_FILLED: the bytes read at off ... */
	size_t data_len;              /* ... this many (fewer at the end of the file) */
	uint64_t generation;          /* ... current while the object's generation is this */
	char *kept;                   /* FS_PIECE_FILLED: data is this buffer, kept for the reader
	                               * (from fs->readahead_pool) until it moves past the piece;
	                               * NULL: the fill thread's own, lent while readers wait */
};

/* A reader's claim on the buffer of a filled piece (fs_readahead_wait). */
struct fs_readahead_ticket {
	int piece;
	const char *data;             /* the bytes asked for ... */
	size_t len;                   /* ... this many (fewer at the end of the file) */
};

struct fs_readahead {
	pthread_mutex_t lock;         /* protects everything below */
	pthread_cond_t piece_done;    /* a piece left FS_PIECE_READING */
	uint64_t next;                /* end of the range queued so far (0: none since the reset) */
	uint64_t window;              /* bytes kept queued ahead of the reader (0: not sequential) */
	uint32_t seq;
	struct fs_readahead_piece piece[FS_READAHEAD_PIECES];
};

/* The open state of an inode (io-mode, cache object, read-ahead, write ordering): allocated
 * when something needs it (an open file, a pinned object, a truncate) and freed when the last
 * holder lets go, so that an inode the kernel merely knows costs only its struct fs_node. */
struct fs_node_io {
	unsigned holds;               /* holders (fs_node_io_hold); the node's io stripe lock */

	pthread_mutex_t lock;         /* protects the fields below */
	unsigned open_count;          /* all open files of this inode */
	unsigned passthrough_count;   /* those opened with FOPEN_PASSTHROUGH */
	int backing_id;               /* > 0 while passthrough_count > 0 */
	enum fs_io_mode mode;         /* how the open files of the inode are served */
	/* Set at the first open, released at the last (or at the last unpin after that): stable
	 * while any file is open, so the paths of an open file use it without io->lock until
	 * they answer. Work after the answer (a fill) pins it: the file may be closed by then. */
	struct cache_object *obj;
	unsigned obj_pins;
	unsigned cache_writers;       /* open writers over the cache copy (FS_IO_CACHE) */
	bool origin_writers;          /* a writer was opened in FS_IO_ORIGIN mode since the first
	                               * open: its writes bypassed us, so the last release drops the
	                               * object's chunks (times are too coarse to tell) */
	bool pinned;                  /* its path matched a --pin glob at the first open */
	bool completing;              /* a background completion job is queued or running */
	bool first_read;              /* FS_IO_ORIGIN chosen for a first read (cfg.first_read_origin):
	                               * the last release fills the cache behind it */

	pthread_mutex_t write_lock;   /* an origin change and the cache update after it */
	/* write_lock: in FS_IO_CACHE mode, the origin fingerprint the cache copy mirrors. Kept
	 * here, not only in the object: an evicted object stores nothing (not even a new
	 * fingerprint), yet its data file goes on serving the passthrough readers. */
	struct cache_fingerprint mirror_fp;
	/* write_lock: in FS_IO_CACHE mode, the copy's mtime after our last write to it. Moved
	 * since, with no byte different from the origin: a writer's mapping wrote the same bytes
	 * (which moves mtime on any file system), see writeback_locked. */
	struct timespec copy_mtime;

	struct fs_readahead readahead;  /* its own lock; taken with no other node lock held */
};

/* How a node gets back to its origin inode when the fd cache has no fd for it. */
enum fs_reach {
	FS_REACH_HANDLE,              /* open_by_handle_at of its file handle */
	FS_REACH_NAME,                /* openat(parent's fd, name), checked against (dev, ino): the
	                               * origin gives no usable handles (a FUSE or network file
	                               * system); a rename behind our back makes it ESTALE */
	FS_REACH_PINNED,              /* neither (the root, an O_TMPFILE, a node renamed or unlinked
	                               * through the mount): its fd stays in the cache */
};

/* One per origin inode the kernel holds (a lookup reference): kept small (docs/ARCHITECTURE.md
 * "Nodes"), since a walk of a large tree makes the kernel hold millions. It reaches the origin
 * inode by file handle (an fd from the fd cache, or open_by_handle_at); on a file system that
 * gives no handles its O_PATH fd is pinned in the fd cache instead. */
#define FS_HANDLE_MAX 40              /* f_handle bytes kept inline (ext4 8, tmpfs 12, xfs 8-16,
                                       * btrfs 20); a larger handle: the node pins its fd */
struct fs_node {
	uint64_t nodeid;              /* ours, never reused */
	dev_t dev;                    /* origin key (with the handle) */
	ino_t ino;
	uint64_t lookups;             /* kernel references; table_lock */
	struct fs_node *next_by_id;   /* table_lock */
	struct fs_node *next_by_key;  /* table_lock */
	struct fs_node_io *io;        /* NULL while nobody holds it; its io stripe lock */
	int32_t fd_slot;              /* its slot in the fd cache, -1: none; fds.lock */
	uint32_t type;                /* S_IFMT bits */
	int32_t handle_type;
	uint16_t mount;               /* index in fs->mounts of the mount its handle is for */
	uint8_t handle_bytes;         /* FS_REACH_HANDLE: bytes of handle[]; else 0 */
	uint8_t reach;                /* enum fs_reach; fds.lock once the node is in the table */
	uint8_t name_len;             /* > 0: handle[] holds its parent and name (see below) */
	atomic_bool unlinked_by_us;   /* its last name went through the mount (unlink, rename over) */
	/* Passthrough opens for writing (changed under io->lock, read without): a write through
	 * their mapping changes the origin's mtime and ctime with no request to us
	 * (fs_attr_volatile). In the node, not its open state: every GETATTR reads it. */
	atomic_uint passthrough_writers;
	/* FS_REACH_HANDLE: handle_bytes of f_handle. Otherwise, if name_len > 0: the parent node
	 * (a pointer, which holds a lookup reference on it) then the name, NUL-terminated. */
	unsigned char handle[];
};

struct fs_file {
	struct fs_node *node;
	int fd;                       /* our own open fd on the origin file */
	int open_flags;               /* flags the application opened with */
	bool passthrough;
	/* Opened while the inode is in FS_IO_CACHE mode but must not use the cache copy as is:
	 * FOPEN_DIRECT_IO sends its reads and writes to us. */
	bool via_daemon;
	bool bypass_cache;            /* the origin changed under the cache copy: read the origin */
	bool check_writeback;         /* a writer over the cache copy: its mmap writes land there */
	uint64_t next_off;            /* end of the last read: tells sequential from random misses */
	atomic_int direct_fd;         /* O_DIRECT origin fd for whole-chunk miss reads: 0 not opened
	                               * yet, -1 unavailable (closed by fs_file_detach) */
};

struct fs_dir {
	int fd;
	pthread_mutex_t lock;         /* protects everything below */
	uint64_t offset;              /* cookie of the next entry in buf (or of the fd position) */
	size_t buf_len, buf_pos;
	char buf[32768];
};

struct fs_table {
	struct fs_node **by_id;
	struct fs_node **by_key;
	size_t bucket_count;          /* power of two */
	size_t node_count;
	size_t node_bytes;            /* what the nodes in it take (struct and handle) */
	atomic_size_t nodes_open;     /* nodes with open state (node->io) */
	atomic_size_t name_nodes;     /* nodes reached by parent and name (FS_REACH_NAME) */
};

/* Background fills (fs_fill.c), done by fill threads after the answer (the kinds: fs_fill.c's
 * header). A job pins its node and object. */
enum fs_fill_kind {
	FS_FILL_CHUNKS,               /* the chunks of a random miss */
	FS_FILL_COMPLETION,           /* the whole file (counts in STATS_COMPLETIONS) */
	FS_FILL_RESIDENT,             /* the chunks in the origin's page cache, after a first read */
	FS_FILL_PIECE,                /* a read-ahead piece of node->readahead */
};
struct fs_fill_job {
	struct fs_fill_job *next;
	struct fs_node *node;
	struct cache_object *obj;
	enum fs_fill_kind kind;
	uint64_t off, len;            /* the range to fill (whole file: 0, UINT64_MAX) */
	int piece;                    /* FS_FILL_PIECE: its index in node->readahead, and seq */
	uint32_t piece_seq;
};

#define FS_FILL_THREADS_MAX 4
#define FS_FILL_BACKGROUND_MAX 1  /* completion and chunk jobs run at once (see job_take) */
#define FS_FILL_QUEUE_MAX 256     /* jobs beyond this are skipped (read-ahead pieces are not) */
#define FS_FILL_QUEUE_MIN 8

struct fs_filler {
	pthread_mutex_t lock;         /* protects everything below */
	pthread_cond_t cond;
	struct fs_fill_job *head, *tail;
	unsigned queued;
	unsigned queue_max;           /* FS_FILL_QUEUE_MAX, or an eighth of the fd limit if less:
	                               * each queued job holds its cache object's fd */
	unsigned background_running;  /* jobs other than read-ahead pieces being run (at most
	                               * FS_FILL_BACKGROUND_MAX: they must not crowd out the origin
	                               * reads that applications wait for) */
	bool stop;
	bool started;
	unsigned thread_count;
	pthread_t threads[FS_FILL_THREADS_MAX];
	pthread_t pin_walk;           /* fs_pin_walk at start, joined by fs_fill_stop */
	bool pin_walk_started;
};

/* Bypass: after FS_BYPASS_ERRORS cache-device errors within FS_BYPASS_WINDOW_NS new opens stop
 * using the cache; it is tried again after cfg.bypass_retry_ms. */
#define FS_BYPASS_ERRORS 8
#define FS_BYPASS_WINDOW_NS (10ull * 1000000000)

struct fs_bypass {
	pthread_mutex_t lock;         /* protects everything below but `on` */
	atomic_bool on;
	uint64_t window_start_ns;
	unsigned errors;
	uint64_t since_ns;
	char why[200];
};

/* Buffers kept in filled read-ahead pieces, fs-wide: at most FS_READAHEAD_KEPT_MAX, and a free
 * list of as many (one fill buffer each, page-aligned). */
#define FS_READAHEAD_KEPT_MAX 32
struct fs_readahead_pool {
	pthread_mutex_t lock;         /* protects everything below; a leaf lock */
	unsigned kept;                /* buffers held by pieces (or reserved for a swap) */
	unsigned free_count;
	char *free[FS_READAHEAD_KEPT_MAX];
};

/* Files whose first read passed through to the origin (fs_first_read_*, fs_cache.c): a set of
 * hashes of (key, size, mtime), set-associative, oldest way replaced. A lost or colliding entry
 * only changes which path serves a read, never the bytes. */
#define FS_SEEN_SETS 4096
#define FS_SEEN_WAYS 4
struct fs_seen {
	pthread_mutex_t lock;         /* protects everything below; a leaf lock */
	uint64_t hash[FS_SEEN_SETS][FS_SEEN_WAYS];  /* 0: empty */
	uint8_t next[FS_SEEN_SETS];   /* the way to replace next */
};

/* The fd cache (fs_node.c): O_PATH fds on origin inodes, at most FS_FD_CACHE_MAX of them for
 * nodes with a file handle (least recently used closed first, never one in use), plus the pinned
 * fds of nodes without one (fewer under a small fd limit). An operation borrows a node's fd with fs_node_fd() and gives it back
 * with fs_node_fd_put(). */
#define FS_FD_CACHE_MAX 1024
#define FS_FD_CACHE_MIN 16
struct fs_fd_slot {
	struct fs_node *node;         /* NULL: free (next: the next free slot) */
	int fd;
	uint32_t users;               /* borrowed and not given back */
	int32_t prev, next;           /* the LRU list: slots of nodes with a handle and no user */
};
struct fs_fds {
	pthread_mutex_t lock;         /* protects everything below and every node's fd_slot; a
	                               * leaf lock */
	struct fs_fd_slot *slot;
	int32_t capacity;             /* slots allocated */
	int32_t free_head;            /* -1: none */
	int32_t lru_head, lru_tail;   /* head: least recently used */
	uint32_t max;                 /* cached fds kept at most (from the fd limit) */
	uint32_t cached;              /* slots in use for nodes with a handle */
	uint32_t pinned;              /* slots of nodes without a handle */
	atomic_uint_fast64_t misses;  /* fds opened again (by handle or by name) */
};

/* Mounts that node handles are for: an fd on each, for open_by_handle_at. */
#define FS_MOUNTS_MAX 64
struct fs_mount {
	int mount_id;
	int fd;                       /* O_PATH fd on some inode of that mount */
};

/* The change watcher (fs_watch.c): a fanotify group on the origin's file system and its
 * thread, or (no fanotify) revalidation of open files at GETATTR. Written at start and stop
 * only, but for the filter. */
#define FS_WATCH_FILTER_BITS 18       /* 256 KiB of counters, whatever the tree */
struct fs_watch {
	int fan_fd;                   /* -1: changes are not watched (why says why) */
	int stop_pipe[2];             /* the thread's wake-up at stop */
	pthread_t thread;
	bool set_up;                  /* fs_watch_start ran: the fds above are its */
	bool started;                 /* the thread runs */
	atomic_bool active;           /* fanotify marks the origin's file system */
	char why[160];
	/* Counting filter of the file handles of nodes in the table (hash of type and bytes, a
	 * saturating counter each): an event whose handle counts zero is of an inode the kernel
	 * does not hold, dropped without a syscall. Updated under table_lock, read without. */
	_Atomic uint8_t *filter;
};

/* Locks for node->io: striped by node id, so a node needs no mutex of its own. */
#define FS_IO_STRIPES 64

/* Who asked for a node's security.capability last (see fs_ops.c, "set-id bits"): a few recent
 * probes, fs-wide, so that a node keeps no field for them. */
#define FS_CAP_PROBES 16
struct fs_cap_probe {
	uint64_t nodeid;              /* 0: free */
	uint32_t pid;
	uint64_t ns;
	bool removed;                 /* the capabilities were removed since */
};

struct fs {
	struct fs_config cfg;
	struct cache_store *store;    /* NULL: no caching (cfg.store) */
	struct fuse_session *session;
	struct fs_node *root;
	pthread_mutex_t table_lock;
	pthread_mutex_t io_lock[FS_IO_STRIPES];
	struct fs_fds fds;
	pthread_mutex_t mounts_lock;  /* protects the two below */
	unsigned mount_count;
	struct fs_mount mounts[FS_MOUNTS_MAX];
	bool handles;                 /* the origin gives file handles (else: an fd per node) */
	char handles_why[160];        /* why not, for status */
	pthread_mutex_t cap_probes_lock;
	struct fs_cap_probe cap_probes[FS_CAP_PROBES];
	struct fs_table table;
	uint64_t next_nodeid;         /* table_lock */
	atomic_bool passthrough_ok;   /* granted by INIT and not failed */
	char passthrough_why[160];    /* why not, for status; written once under table_lock */
	uint32_t stack_depth;
	struct fs_filler filler;
	struct fs_bypass bypass;
	atomic_uint_fast64_t readahead_paused_until_ns;  /* a read-ahead fill found the cache full */
	struct fs_readahead_pool readahead_pool;
	struct fs_seen seen;
	struct fs_watch watch;
	char root_path[4096];         /* the origin's path as the kernel prints it (readlink) */
	size_t root_path_len;
};

/* Node table (fs_node.c). */
int fs_table_init(struct fs *fs);
void fs_table_release(struct fs *fs);
/* The node for a kernel nodeid, or NULL if unknown (a bug or a stale id: answer ESTALE). */
struct fs_node *fs_node_get(struct fs *fs, uint64_t nodeid);
/* The same with a reference (drop with fs_node_forget(fs, nodeid, 1)), for callers outside a
 * request of the kernel's, which could otherwise see the node freed by a FORGET. */
struct fs_node *fs_node_get_ref(struct fs *fs, uint64_t nodeid);
/* Find or add the node for an origin inode and take one lookup reference. `fd` is an O_PATH fd
 * on it; it is consumed (kept in the fd cache or closed). parent and name: where the lookup
 * found it (NULL: nowhere, e.g. O_TMPFILE), for a node that has no file handle. */
int fs_node_acquire(struct fs *fs, struct fs_node *parent, const char *name, int fd,
                    const struct stat *st, struct fs_node **out);
/* The node of an origin inode if we have one, with a reference (drop with fs_node_forget). */
struct fs_node *fs_node_find_ref(struct fs *fs, const struct stat *st);
/* Take one more reference on a node we hold (undone by fs_node_forget(fs, n->nodeid, 1)). */
void fs_node_ref(struct fs *fs, struct fs_node *n);
/* Drop nlookup references; frees the node at zero (root is never freed). */
void fs_node_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup);
/* At fs_create: does the origin give file handles we can open? 0, or -errno with
 * fs->handles_why set (nodes then pin an fd each). */
int fs_node_handles_probe(struct fs *fs, int origin_fd);
/* The root node over the origin's fd (taken: fs_node_root_release closes it), and its end
 * after fs_table_release (also releases the fd cache). */
int fs_node_root_init(struct fs *fs, int origin_fd, const struct stat *st);
void fs_node_root_release(struct fs *fs);
/* Borrow an O_PATH fd on the node's origin inode (from the fd cache or its file handle):
 * >= 0, or -errno (-ESTALE: the inode is gone). Give it back with fs_node_fd_put. A limit of
 * the daemon's (EMFILE, ENFILE) is retried after closing cached fds and never returned. */
int fs_node_fd(struct fs *fs, struct fs_node *n);
void fs_node_fd_put(struct fs *fs, struct fs_node *n, int fd);
/* Before n's name goes or moves through the mount (unlink, rmdir, rename): if n is reached by
 * that name, it keeps its fd from now on (FS_REACH_PINNED). */
void fs_node_name_leaving(struct fs *fs, struct fs_node *n);
/* Are any nodes reached by name? If not, fs_node_name_leaving has nothing to do. */
bool fs_node_names_in_use(struct fs *fs);
/* openat for the daemon's own fds (O_PATH lookups, opens): when the daemon runs out of fds it
 * closes cached ones and tries again; a limit it still hits is -ENOMEM, never EMFILE. */
int fs_open_retry(struct fs *fs, int dirfd, const char *name, int flags, mode_t mode);
/* The open state of n, created if needed: NULL only without memory. Every hold is undone by
 * fs_node_io_release; the state is freed with the last. */
struct fs_node_io *fs_node_io_hold(struct fs *fs, struct fs_node *n);
/* The same if n has open state now; NULL (nothing held) if not. */
struct fs_node_io *fs_node_io_hold_existing(struct fs *fs, struct fs_node *n);
void fs_node_io_release(struct fs *fs, struct fs_node *n);
/* Is a daemon limit (not the origin's answer)? Such an error is never passed on as is. */
static inline bool fs_limit_error(int rc) { return rc == -EMFILE || rc == -ENFILE; }

/* Open files and their io-mode, the read and write paths through the cache (fs_cache.c). */
void fs_passthrough_disable(struct fs *fs, const char *why);
/* Choose the io-mode of a new open (and do its deferred O_TRUNC); -errno fails the open,
 * -ESTALE when the inode was unlinked behind our back (the kernel then looks the name up again). */
int fs_file_attach(struct fs *fs, struct fs_file *f, struct cm_fuse_open_out *o);
void fs_file_detach(struct fs *fs, struct fs_file *f);
/* The fd whose bytes this open file shows: the cache copy in FS_IO_CACHE mode (it mirrors
 * the origin plus mmap writes not yet written back), else our origin fd. For SEEK_DATA/HOLE. */
int fs_file_data_fd(struct fs_file *f);
/* fsync: a writer over the cache copy first writes its mmap changes back to the origin. */
void fs_file_sync(struct fs *fs, struct fs_file *f);
void fs_file_read(struct fuse_req *r, struct fs_file *f, const struct fuse_read_in *in);
void fs_file_write(struct fuse_req *r, struct fs_file *f, const struct fuse_write_in *in,
                   const void *data);
/* The origin file of an open node was changed through the mount other than by WRITE
 * (truncate to `size`, or bytes [off, off+len) by fallocate or copy_file_range): bring its
 * cache object in step. Call with node->write_lock held, after the origin change succeeded. */
void fs_cache_origin_changed(struct fs *fs, struct fs_node *n, bool truncated, off_t size,
                             off_t off, off_t len);

/* Before an origin change other than WRITE (truncate, fallocate, copy_file_range from or
 * into it) in FS_IO_CACHE mode: write the cache copy's mmap changes back to the origin, which
 * the change would otherwise be applied to without them. Call with node->lock and
 * node->write_lock held. */
void fs_cache_before_origin_change(struct fs *fs, struct fs_node *n);

/* Metadata of the node's origin file changed through the mount (chmod, utimens, xattr, link
 * count): its ctime moved, so record the new fingerprint of an open cache object, which
 * otherwise would look changed behind our back. Takes the node's locks. */
void fs_cache_metadata_changed(struct fs *fs, struct fs_node *n);

/* Deleted files return their space. Before a name goes (unlink, rename over it), given what
 * it leads to (st): true, with the file's key, if it is the last name of a regular file (and there is a cache); once the
 * name went, fs_cache_file_deleted() discards its cache object — at once, or at its last close
 * if the file is open (cache_object_discard). A hard link made in between only costs a miss. */
bool fs_cache_last_name(struct fs *fs, const struct stat *st, struct cache_key *key);
void fs_cache_file_deleted(struct fs *fs, struct cache_key key);
/* The node's attributes may change with no request to us (a writable passthrough open: writes
 * through its mapping move mtime and ctime): replies give them no time in the kernel's cache. */
bool fs_attr_volatile(const struct fs_node *n);
/* Drop the kernel's cached attributes of n (NOTIFY_INVAL_INODE, attributes only), after a change
 * the kernel learns of in no reply. Never call it holding a lock the kernel may wait for. */
void fs_attr_invalidate(struct fs *fs, const struct fs_node *n);
/* Before a GETATTR: a writer over the cache copy (FS_IO_CACHE) may have written its mapping,
 * which lands in the copy: write it back, so that the origin's times and bytes are current. */
void fs_cache_before_getattr(struct fs *fs, struct fs_node *n);

/* The cache store to use for a new open: NULL without a cache or while in bypass. */
struct cache_store *fs_cache_store(struct fs *fs);
/* A cache-device error (never passed to the application): counted, logged, and after
 * repeated ones the cache goes into bypass. */
void fs_cache_error(struct fs *fs, const char *what, int rc);

/* An O_RDONLY fd on the node's origin file for the cache's own reads (-errno if refused):
 *   FS_ORIGIN_DIRECT      O_DIRECT: whole-chunk reads bypass the origin's page cache, as a
 *                         direct read of the original would, instead of copying through it
 *                         (an application's misses; the probe before a passthrough open);
 *   FS_ORIGIN_BACKGROUND  the same for reads nobody asked for yet (fills, read-ahead), which
 *                         must leave the access time alone (O_NOATIME: relatime would move it
 *                         after a utimensat that put it before the mtime); buffered where the
 *                         file system refuses O_DIRECT;
 *   FS_ORIGIN_RESIDENT    buffered, O_NOATIME, without read-ahead (which would read the pages
 *                         after a resident run from the device): copies of what the origin's
 *                         page cache holds. */
enum fs_origin_read { FS_ORIGIN_DIRECT, FS_ORIGIN_BACKGROUND, FS_ORIGIN_RESIDENT };
int fs_origin_read_open(struct fs *fs, struct fs_node *n, enum fs_origin_read how);
#define FS_DIRECT_ALIGN 4096u
#define FS_FILL_BUFFER_CHUNKS 4   /* chunks read from the origin per fill (a read-ahead piece) */

/* The data ranges of [off, off + len) of an origin file (SEEK_DATA/SEEK_HOLE), for
 * cache_object_fill_sparse(): past FS_FILL_RANGES_MAX ranges, or where the file system cannot
 * tell, the rest counts as data (fs_fill.c). fs_fill_ranges_clip() cuts them at end
 * (a read that came back short). */
#define FS_FILL_RANGES_MAX 32
struct fs_fill_ranges {
	struct cache_extent ext[FS_FILL_RANGES_MAX];
	size_t count;
};
void fs_fill_data_ranges(int fd, uint64_t off, uint64_t len, struct fs_fill_ranges *r);
void fs_fill_ranges_clip(struct fs_fill_ranges *r, uint64_t end);

/* Count the outcome of cache_object_fill() of `read` origin bytes: stored chunks, a fill
 * dropped by a racing write (-ESTALE), refused at capacity (-EDQUOT), or a device error. */
void fs_fill_count(struct fs *fs, const char *what, ssize_t filled, size_t read);

/* Background fills (fs_fill.c). Enqueue: pins node and object (the file must be open or the
 * object pinned); false if not queued (queue full for chunk jobs, or stopping). */
bool fs_fill_enqueue(struct fs *fs, struct fs_node *n, uint64_t off, uint64_t len, bool completion);
/* After a first read that passed through to the origin: fill the chunks of n that the origin's
 * page cache holds (a background job of the whole file that reads no uncached byte). */
bool fs_fill_enqueue_resident(struct fs *fs, struct fs_node *n);
/* The same for read-ahead piece `piece` (seq) of n->readahead: a chunk job that claims the
 * piece first and counts what it stores in STATS_READAHEAD_BYTES. */
bool fs_fill_enqueue_piece(struct fs *fs, struct fs_node *n, uint64_t off, uint64_t len, int piece,
                           uint32_t seq);
void fs_fill_stop(struct fs *fs);
/* fs_fill_stop was called: long walks give up. */
bool fs_fill_stopping(struct fs *fs);
/* Pin (or unpin) and unpin-with-release of a node's object for work after the answer. */
struct cache_object *fs_object_pin(struct fs *fs, struct fs_node *n);
void fs_object_unpin(struct fs *fs, struct fs_node *n);

/* Read-ahead (fs_readahead.c). Node state lifecycle, with the node (release: no reader left). */
void fs_readahead_init(struct fs_readahead *ra);
void fs_readahead_release(struct fs *fs, struct fs_readahead *ra);
/* The buffer pool, with the fs (release: after fs_fill_stop and the node table). */
void fs_readahead_pool_init(struct fs *fs);
void fs_readahead_pool_release(struct fs *fs);
/* The last open file of n closed: give back the buffers its pieces keep. */
void fs_readahead_drop(struct fs *fs, struct fs_node *n);
/* A read of [off, off + size) that a filled piece holds, current (the object's generation has
 * not moved since the piece's origin read): true with a ticket (reply from t->data, t->len,
 * then fs_readahead_ticket_release(); pin the node across the reply). */
bool fs_readahead_lookup(struct fs_node *n, struct cache_object *obj, uint64_t off, uint64_t size,
                         struct fs_readahead_ticket *t);
/* A read of [off, off + size) of an FS_IO_USER file with object obj (open, or pinned): a
 * sequential one keeps up to the window queued ahead of it as fill jobs of whole chunks,
 * growing the window; another resets it. */
void fs_readahead_advance(struct fs *fs, struct fs_node *n, struct cache_object *obj, uint64_t off,
                          uint64_t size, bool sequential);
/* Before reading the origin for a miss of [off, off + size): wait (bounded) for the read-ahead
 * pieces being read that overlap it, and take back those only queued. Returns
 * FS_READAHEAD_HANDOFF when one piece covered the range and was filled with obj's current
 * generation: reply from t->data, t->len, then fs_readahead_ticket_release();
 * FS_READAHEAD_WAITED if it waited (the chunks may be present now); 0 if nothing was in
 * flight. */
#define FS_READAHEAD_WAITED 1
#define FS_READAHEAD_HANDOFF 2
int fs_readahead_wait(struct fs *fs, struct fs_node *n, struct cache_object *obj, uint64_t off,
                      uint64_t size, struct fs_readahead_ticket *t);
void fs_readahead_ticket_release(struct fs_node *n, const struct fs_readahead_ticket *t);
/* Fill jobs of pieces: claim the piece before reading the origin (false: it was taken back,
 * skip it); after a fill that stored the piece (or found it present, generation unchanged),
 * offer the bytes to the readers waiting for it (returns once they replied); done when the
 * job ends, run or not (wakes the readers waiting for it). */
bool fs_readahead_piece_claim(struct fs_node *n, int piece, uint32_t seq);
/* data (the fill thread's buffer) holds the piece's len bytes, read with the object's
 * generation at `generation`; returns the buffer the fill thread goes on with: a spare from the
 * pool when the piece keeps data for the reader, else data, once the waiting readers replied. */
char *fs_readahead_piece_offer(struct fs *fs, struct fs_node *n, int piece, uint32_t seq, char *data,
                               size_t len, uint64_t generation);
void fs_readahead_piece_done(struct fs_node *n, int piece, uint32_t seq);
/* The read-ahead stops for a while once a fill found the cache full. */
void fs_readahead_pause(struct fs *fs);

/* Paths (fs_path.c): the node's path relative to the origin (from the kernel's name of its
 * fd); -ENOENT if it is outside the origin or deleted. */
int fs_node_relpath(struct fs *fs, struct fs_node *n, char *buf, size_t size);
/* rel (or a directory above it) matches one of the globs (rules in fs.h). */
bool fs_glob_match(const char *const *globs, unsigned count, const char *rel);
/* Pin the cache objects of every file under the origin whose path matches a --pin glob. */
void fs_pin_walk(struct fs *fs);

/* The change watcher (fs_watch.c): open readers see changes made behind the cache. */
/* A node with a file handle entered (added) or left the table; table_lock held. */
void fs_watch_node_added(struct fs *fs, const struct fs_node *n);
void fs_watch_node_removed(struct fs *fs, const struct fs_node *n);
/* Without fanotify, at GETATTR: an open file whose origin changed behind the cache has its
 * object brought in step before the attributes are answered. Takes the node's locks. */
void fs_watch_revalidate(struct fs *fs, struct fs_node *n);
/* At fs_free, after the node table: stops the watcher if running and frees the filter. */
void fs_watch_release(struct fs *fs);
/* Every node in the table with a reference taken (undo each with fs_node_forget(.., 1)), the
 * root excepted: *out is malloc'ed (free it), the count is returned; 0 without memory. */
size_t fs_node_refs_all(struct fs *fs, struct fs_node ***out);

/* "/proc/self/fd/N" for a node fd, for calls that have no *at() form usable with O_PATH. */
#define FS_PROC_PATH_MAX 32
void fs_proc_path(int fd, char buf[FS_PROC_PATH_MAX]);

#endif
