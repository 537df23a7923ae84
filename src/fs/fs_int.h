/* fs internals shared by the fs/ files only: the file system, its node table, open files.
 * The cache engine's state of an inode (struct engine_inode, src/engine/) hangs off its node
 * while something holds it; node identity (the table, handles, fds) stays here.
 * Locks: docs/ARCHITECTURE.md "Lock order" (the only copy). None is held across a reply or
 * across a call into the engine.
 */
#ifndef CACHEMAX_FS_INT_H
#define CACHEMAX_FS_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache/cache_catalog.h"
#include "cache/cache_store.h"
#include "engine/engine.h"
#include "fs/fs.h"
#include "util/siphash.h"

/* How a node gets back to its origin inode when the fd cache has no fd for it. */
enum fs_reach {
	FS_REACH_HANDLE,              /* open_by_handle_at of its file handle */
	FS_REACH_NAME,                /* openat(parent's fd, name), checked against (dev, ino): the
	                               * origin gives no usable handles (a FUSE or network file
	                               * system); a rename behind our back makes it ESTALE */
	FS_REACH_FD,                  /* neither (the root, an O_TMPFILE, a node renamed or unlinked
	                               * through the mount): its fd stays in the cache */
};

/* One per origin inode the kernel holds (a lookup reference): kept small (docs/ARCHITECTURE.md
 * "Nodes"), since a walk of a large tree makes the kernel hold millions. It reaches the origin
 * inode by file handle (an fd from the fd cache, or open_by_handle_at); on a file system that
 * gives no handles its O_PATH fd is pinned in the fd cache instead. */
#define FS_HANDLE_MAX 40              /* f_handle bytes kept inline (ext4 8, tmpfs 12, xfs 8-16,
                                       * btrfs 20); a larger handle: the node keeps its fd open */
struct fs_openless;

struct fs_node {
	uint64_t nodeid;              /* ours, never reused */
	dev_t dev;                    /* origin key (with the handle) */
	ino_t ino;
	uint64_t lookups;             /* kernel references; table_lock */
	struct fs_node *next_by_id;   /* table_lock */
	struct fs_node *next_by_key;  /* table_lock */
	struct fs_node *next_by_name; /* table_lock: a name node's chain in by_name */
	struct engine_inode *io;      /* the engine's state of it, NULL while nobody holds it;
	                               * its io stripe lock */
	int32_t fd_slot;              /* its slot in the fd cache, -1: none; fds.lock */
	uint32_t type;                /* S_IFMT bits */
	int32_t handle_type;
	uint16_t mount;               /* index in fs->mounts of the mount its handle is for */
	uint8_t handle_bytes;         /* FS_REACH_HANDLE: bytes of handle[]; else 0 */
	uint8_t reach;                /* enum fs_reach; fds.lock once the node is in the table */
	uint8_t name_len;             /* > 0: handle[] holds its parent and name (see below) */
	/* A directory too large for a catalog listing, or for a handle's snapshot (struct fs_dir):
	 * READDIR reads the origin's stream (its cookies are the origin's, not the names' hashes)
	 * from now on, and the kernel is not let cache its listing (listing_open_flags). */
	atomic_bool listing_from_origin;
	/* A name node (files_by_path) whose name went or moved through the mount since its lookup
	 * (fs_node_name_changing), or whose lookup overlapped such a change of a name of its slot:
	 * another inode number at its name is another file from now on (name_open). */
	atomic_bool name_moved;
	/* A directory's catalog stamp (fs_catalog.c): its mtime and ctime as last seen (the ino is
	 * the node's), valid while stamp_epoch equals fs->catalog_epoch (0: none). catalog_lock. */
	uint32_t stamp_epoch;
	int64_t stamp_mtime_ns, stamp_ctime_ns;
	/* An original the change watcher does not cover (a network original): when (clock_now_ns,
	 * taken before the open) an open that opened the original last found the cache copy
	 * matching it and passed through to it; read-only opens within --attr-timeout of that are
	 * deferred (fs_ops.c op_open). 0: none. */
	_Atomic int64_t origin_confirmed_ns;
	/* A directory the change watcher does not cover, whose OPENDIR we answer (op_opendir): when
	 * (clock_now_ns, taken before the read) the listing the kernel may hold of it began to be
	 * read from the original -- the first READDIR at offset 0 since an OPENDIR that made the
	 * kernel drop its listing. An OPENDIR within the listing window of that lets the kernel keep
	 * the listing (FOPEN_KEEP_CACHE). 0: none (the kernel holds no listing we vouch for). */
	_Atomic int64_t listing_read_ns;
	/* Such a directory whose listing was last read at offset 0 while its times were racy
	 * (cache_catalog_stamp_racy): the kernel may hold a listing that its mtime check cannot
	 * tell stale. The next GETATTR of it -- which the kernel sends before it re-reads a
	 * cached listing at offset 0 once the attribute timeout let it ask -- drops that listing
	 * (NOTIFY_INVAL_INODE) before the reply (op_getattr). */
	atomic_bool listing_racy;
	/* The same kind of original: a file whose last name went through the mount (unlink,
	 * rename over it) while open files of ours held it: an fd open on it (read-only) until
	 * the last of them closes (fs_node_io_release), so that a FUSE server (sshfs) hides it as it hides an open file
	 * (libfuse's .fuse_hidden) instead of removing it, and the deferred opens' fstat, fsync
	 * and late open still reach it (fs_node_hold_open). -1: none. */
	atomic_int held_open_fd;
	/* Its last name went away and the kernel knows: through the mount (unlink, rename over),
	 * or an open of it was answered ESTALE (the kernel then looked the name up afresh). */
	atomic_bool unlinked_by_us;
	/* Passthrough opens for writing (changed at open and release, read without): a write through
	 * their mapping changes the origin's mtime and ctime with no request to us
	 * (fs_cache_attr_volatile). In the node, not its open state: every GETATTR reads it. */
	atomic_uint passthrough_writers;
	/* --openless on an original the watcher does not cover (fs_openless.h "Timed"): which
	 * version of the file the kernel's pages of it came from -- FS_PAGES_NONE (no data of ours
	 * since the last drop), FS_PAGES_UNVOUCHED (pages of a version we cannot name: the next
	 * GETATTR drops them), or a hash of the fingerprint its implicit file was opened at. */
	_Atomic uint64_t pages_from;
	/* What is known of its origin inode's xattrs (fs_xattr.c): its state in the low two bits,
	 * a count of changes above them. */
	atomic_uint xattr_state;
	/* FS_REACH_HANDLE: handle_bytes of f_handle. Otherwise, if name_len > 0: the parent node
	 * (a pointer, which holds a lookup reference on it) then the name, NUL-terminated. */
	unsigned char handle[];
};

/* An open file. A read-only open of a file the change watcher covers, or of one on an
 * unwatched original within --attr-timeout of an open that confirmed its copy, is deferred
 * (fs_ops.c op_open): the origin file is not opened until a request needs it (engine_file_fd,
 * through the host's file_open); a hit passed through to the cache copy never does. */
struct fs_file {
	struct fs_node *node;
	struct engine_file file;      /* file.fd: our own open fd on the origin file; -1 until
	                               * first needed for a deferred open */
	int path_fd;                  /* a deferred open: the node's O_PATH fd, borrowed
	                               * (fs_node_fd) for the open's life: it keeps the inode whose
	                               * fingerprint the open checked, which the late open reopens
	                               * (/proc/self/fd), also once unlinked; -1: not deferred */
	int origin_flags;             /* open(2) flags of the late open */
	bool has_known;               /* opened on the catalog's attributes (fs_cache_attach_known) */
	bool copy_hit;                /* attached as a read-only hit passed through to the cache
	                               * copy: its reads never reach the daemon */
	struct stat known;            /* those attributes: a GETATTR of this open file whose late
	                               * stat finds the file unlinked behind (ESTALE) answers them
	                               * with st_nlink 0, as an fstat of the original would */
};

/* The array buf of *cap elements of `size` bytes, grown (doubling, from `first`) to hold at
 * least `need`: the new array (*cap updated), or NULL with buf and *cap unchanged. */
static inline void *fs_grow(void *buf, size_t *cap, size_t need, size_t size, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	void *p;
	if (need <= *cap)
		return buf;
	while (ncap < need)
		ncap *= 2;
	p = realloc(buf, ncap * size);
	if (p)
		*cap = ncap;
	return p;
}

/* One entry of a directory handle's snapshot (struct fs_dir). */
struct fs_dir_snap_entry {
	uint64_t cookie;              /* fs_catalog_cookie of the name */
	uint64_t ino;
	uint32_t name;                /* offset in the snapshot's names */
	uint8_t type;                 /* DT_* */
	uint16_t len;                 /* of the name (FUSE allows up to 1024 bytes) */
};

/* A directory handle of an OPENDIR we answered. A directory the watcher does not cover is
 * served from a snapshot (fs_ops.c op_readdir): its whole listing read from the original at
 * once, in cookie order, with cookies that are keyed hashes of the names (the catalog's), so
 * that a reader the kernel continues at a cookie of its own cached listing -- read on another
 * handle, before a change -- neither skips nor repeats an entry that stayed; positions (the
 * cookies sshfs gives) would shift. Otherwise (or a listing beyond FS_DIR_SNAP_MAX entries)
 * the origin's own stream and cookies. */
struct fs_dir {
	int fd;
	pthread_mutex_t lock;         /* protects everything below */
	uint64_t offset;              /* cookie of the next entry in buf (or of the fd position) */
	size_t buf_len, buf_pos;
	char buf[32768];              /* getdents records: 8-byte aligned, as buf_len is */
	bool read_any;                /* getdents called on fd (a read at offset 0 then reopens it) */
	bool snapped;                 /* snap holds the listing (snap_count entries, maybe 0) */
	bool stream_only;             /* too large for a snapshot: the stream, as above */
	bool kernel_caches;           /* opened with FOPEN_CACHE_DIR: the kernel caches what it reads */
	struct fs_dir_snap_entry *snap;
	char *snap_names;
	size_t snap_count;
};
#define FS_DIR_SNAP_MAX 4000000u  /* entries of one snapshot, at most (~40 bytes each) */

struct fs_table {
	struct fs_node **by_id;
	struct fs_node **by_key;
	struct fs_node **by_name;     /* name nodes by (parent, name) */
	size_t bucket_count;          /* power of two */
	size_t node_count;
	size_t node_bytes;            /* what the nodes in it take (struct and handle) */
	atomic_size_t nodes_open;     /* nodes with open state (node->io) */
	atomic_size_t name_nodes;     /* nodes reached by parent and name (FS_REACH_NAME) */
};

/* The fd cache (fs_node.c): O_PATH fds on origin inodes, at most FS_FD_CACHE_MAX of them for
 * nodes with a file handle (least recently used closed first, never one in use), plus the pinned
 * fds of nodes without one (fewer under a small fd limit). An operation borrows a node's fd with fs_node_fd() and gives it back
 * with fs_node_fd_put(). */
#define FS_FD_CACHE_MAX 16384
#define FS_FD_CACHE_MIN 16
/* Complete objects of small files kept with their backing id (engine_config.kept_max): no fd
 * each, but about 300 bytes here and a backing file in the kernel (its struct file and the
 * copy's inode held in memory, about 1.5 KiB): one per FS_KEPT_MEMORY_PER bytes of the
 * memory the daemon may use (~1.5% of it: the machine's, or its cgroup's limit when smaller,
 * sys_memory.h), within [FS_KEPT_MIN, FS_KEPT_MAX]. */
#define FS_KEPT_MAX 131072
#define FS_KEPT_MIN 1024
#define FS_KEPT_MEMORY_PER (128u << 10)
/* Completions waiting in the engine's fill backlog at most (engine_config.fill_backlog_max):
 * no fd each, 32 bytes and the node each keeps (if the kernel forgot it: at most ~450 bytes
 * with its name): one per FS_FILL_BACKLOG_MEMORY_PER bytes of the memory the daemon may use
 * (at most ~2.7% of it, ~0.2% while the kernel holds the nodes), within [FS_FILL_BACKLOG_MIN,
 * ENGINE_FILL_BACKLOG_MAX]: 65,536 at 1 GiB, 262,144 from 4 GiB. */
#define FS_FILL_BACKLOG_MIN 1024
#define FS_FILL_BACKLOG_MEMORY_PER (16u << 10)
/* Implicit open files of an openless mount at most (fs_openless.h; up to four fds each). */
#define FS_OPENLESS_MAX 1024
#define FS_OPENLESS_MIN 16
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
#define FS_WATCH_NAME_SLOTS 64
#define FS_CATALOG_GEN_SLOTS 64   /* fs.catalog_gen */
struct fs_watch {
	int fan_fd;                   /* -1: changes are not watched (why says why) */
	/* The thread's wake-up (a byte written): at the stop (stopping set first), or when the
	 * catalog has a young listing to record later (fs_watch_wake). Non-blocking. */
	int wake_pipe[2];
	atomic_bool stopping;
	pthread_t thread;
	bool set_up;                  /* fs_watch_prepare ran: the fds above are its */
	int prepare_error;            /* why it could not mark the original (-errno) */
	bool started;                 /* the thread runs */
	atomic_bool active;           /* fanotify marks the origin's file system */
	/* Bumped before every name the watcher invalidates (the slot of a hash of parent and
	 * name; every slot at an overflow): a lookup that samples its name's slot before its
	 * fstatat and finds it moved when it replies may describe a name the invalidation missed
	 * (the kernel had no dentry to drop yet), so that entry gets the option's timeout. */
	atomic_uint_fast64_t names_gen[FS_WATCH_NAME_SLOTS];
	char why[160];
	/* Counting filter of the file handles of nodes in the table (hash of type and bytes, a
	 * saturating counter each): an event whose handle counts zero is of an inode the kernel
	 * does not hold, dropped without a syscall. Updated under table_lock, read without. */
	_Atomic uint8_t *filter;
	_Atomic uint8_t *filter_made; /* allocated by fs_watch_prepare, published by the start */
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

/* Answers learned for xattr names asked of inodes with no xattrs (fs_xattr.c). */
#define FS_XATTR_LEARNED_MAX 32
#define FS_XATTR_NAME_MAX 48          /* longer names are always asked */
struct fs_xattr_learned {
	char name[FS_XATTR_NAME_MAX];
	uint32_t type;                /* S_IFMT bits of the inodes it was learned on */
	int answer;                   /* the errno the original gave; 0: it gave a value, ask */
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
	/* The kernel can expire every cached name at once (NOTIFY_INC_EPOCH, FUSE 7.44), which a
	 * watcher overflow needs: only then are names of watched nodes cached for long. */
	bool kernel_inc_epoch;
	char passthrough_why[160];    /* why not, for status; written once under table_lock */
	uint32_t stack_depth;
	struct engine *engine;        /* the cache engine (also without a cache: it then bypasses) */
	unsigned fill_queue_max;      /* the engine's fill jobs at most (from the fd limit) */
	unsigned kept_max;            /* the engine's kept objects at most (from memory) */
	unsigned fill_backlog_max;    /* the engine's fill backlog at most (from memory) */
	unsigned openless_max;        /* implicit open files at most (fs_openless.h; fd limit) */
	struct fs_openless *openless; /* cfg.openless: the implicit open files; else NULL */
	/* The origin's inode numbers do not last (fs_type_inode_numbers_last): the cache knows its
	 * files by path (engine_config.files_by_path, fs_cache_name_key). Set at creation. */
	bool files_by_path;
	/* With files_by_path: generations of (parent, name) slots (a hash of both), moved before
	 * and after a name goes or moves through the mount (fs_node_name_changing), so that a lookup
	 * that overlapped such a change marks its new node (name_moved). table_lock to move. */
#define FS_NAME_GENS 4096
	_Atomic uint32_t name_gens[FS_NAME_GENS];
	struct fs_watch watch;
	char root_path[4096];         /* the origin's path as the kernel prints it (readlink) */
	size_t root_path_len;
	/* The metadata catalog (fs_catalog.c): NULL when there is none (no cache store, or it
	 * could not be opened). Used only where the watcher covers a directory. */
	struct cache_catalog *catalog;
	pthread_mutex_t catalog_lock; /* node stamps, catalog_epoch; a leaf lock */
	uint32_t catalog_epoch;       /* bumped to void every node's stamp (a watcher overflow) */
	/* The seal (fs_catalog.c, docs/ARCHITECTURE.md "The seal"): the catalog's attributes are
	 * served without a stat of the file (the original provably did not change while the
	 * daemon was down, and the watcher has covered it since). */
	atomic_bool catalog_sealed;
	/* The seal passed its second check (fs_catalog_watch_started: a syncfs and the same device
	 * counters once the watcher's mark is on): until then a change made between the first check
	 * and the mark is in no event, so nothing that trusts records (seal_holds) is used. */
	atomic_bool catalog_seal_confirmed;
	/* Something the catalog may not reflect happened (events lost, the original written
	 * while starting): no seal is written at the stop. */
	atomic_bool catalog_tainted;
	char catalog_path[4096];
	char seal_why[160];           /* the seal's state for status, written under catalog_lock */
	struct fs_seal_device {       /* the original's block device, for the seal */
		bool known;               /* false: no seal (why in seal_why) */
		unsigned major, minor;
		uint64_t diskseq;         /* the kernel's number of this disk's attachment (0: none) */
		uint8_t uuid[16];         /* the file system's, from its superblock */
	} seal_dev;
	struct fs_seal_counts { uint64_t writes, sectors, discards; } seal_counts;  /* at the start */
	atomic_uint_fast64_t catalog_hits, catalog_misses;
	atomic_uint_fast64_t catalog_late_records;   /* young listings recorded (fs_catalog.c) */
	/* Bumped (a slot per hash of the directory's key) before a directory's record is dropped
	 * or its stamp voided, every slot at an overflow: whatever was read of the original before
	 * a bump (a listing, a stamp, attributes for READDIRPLUS) is not stored or served as
	 * current after it (struct fs_catalog_gens, fs_catalog.c). */
	atomic_uint_fast64_t catalog_gen[FS_CATALOG_GEN_SLOTS];
	/* The key of the READDIR cookies of catalog listings (fs_catalog_cookie): drawn at each
	 * start, so that nobody can choose names whose cookies collide. Immutable after open. */
	uint8_t cookie_key[SIPHASH_KEY_BYTES];
	/* Attributes of directories made from sealed records (fs_catalog.c "directory attributes"):
	 * the kernel asks for a directory's attributes again after each listing (its atime), and
	 * the seal lets them be answered without the origin. catalog_lock. */
	struct fs_dir_attr **dir_attrs;
	size_t dir_attr_count;
	/* The original's file system has no xattrs at all and nothing is mounted below the origin
	 * (fs_xattr_origin_probe, at fs_create; immutable after): GETXATTR and LISTXATTR answer
	 * ENOSYS, which the kernel keeps for the connection. */
	bool xattrs_unsupported;
	pthread_mutex_t xattr_lock;   /* xattr_learned, xattr_learned_count (a leaf lock) */
	struct fs_xattr_learned xattr_learned[FS_XATTR_LEARNED_MAX];
	unsigned xattr_learned_count;
	/* Directories listed while their stamp was too young to record, to list again once it is
	 * not (fs_catalog.c "young listings"): a list of young_count. catalog_lock. */
	struct fs_young *young, *young_tail;
	size_t young_count;
	/* Attributes of regular files the catalog knows current (fs_catalog.c "file attributes":
	 * OPEN and GETATTR without reading the original's inode; symlinks' for their "no xattrs"
	 * flag). NULL: none. Its own locks. */
	struct fs_file_attrs *file_attrs;
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
 * found it (NULL: nowhere, e.g. O_TMPFILE), for a node that has no file handle; name_gen:
 * fs_node_name_gen(parent, name) read before the name was looked at (0 without a name). */
int fs_node_acquire(struct fs *fs, struct fs_node *parent, const char *name, uint32_t name_gen,
                    int fd, const struct stat *st, struct fs_node **out);
/* Where inode numbers do not last (fs->files_by_path): a name node may take another inode
 * number at its name for its own file only while its name did not go or move through the
 * mount. fs_node_name_changing, before and after an unlink, rmdir or rename of a name, marks
 * the name nodes of (parent, name) (name_moved) and moves the generation of its slot, which a
 * lookup reads before it looks at the name (fs_node_name_gen) and fs_node_acquire compares
 * when it adds the node (moved: the change overlapped the lookup, the node is marked too).
 * No-ops on other originals. */
uint32_t fs_node_name_gen(struct fs *fs, const struct fs_node *parent, const char *name);
void fs_node_name_changing(struct fs *fs, const struct fs_node *parent, const char *name);
/* Find or add the node of an origin inode known by its file handle (from the catalog: no fd,
 * no name_to_handle_at) and take one lookup reference. The handle belongs to parent's mount.
 * 0, -EINVAL (no usable handle: take the long way), -ENOMEM. */
int fs_node_acquire_handle(struct fs *fs, struct fs_node *parent, const struct stat *st,
                           const struct cache_origin_handle *handle, struct fs_node **out);
/* An fd on the inode of handle (of parent's mount) opened with flags, or -errno. */
int fs_handle_open(struct fs *fs, const struct fs_node *parent,
                   const struct cache_origin_handle *handle, int flags);
/* The node of an origin inode if we have one, with a reference (drop with fs_node_forget). */
struct fs_node *fs_node_find_ref(struct fs *fs, const struct stat *st);
/* The attributes of the inode handle h names on the original's own file system (a fanotify
 * event's handle). 0, or -errno (-ESTALE and the like: it is gone). */
struct file_handle;
int fs_handle_stat(struct fs *fs, struct file_handle *h, struct stat *st);
/* The same, but only if that node's origin fd is in the fd cache (which proves the inode
 * (dev, ino) names now is the node's, not a new one given a freed number): a lookup of a known
 * name then costs one fstatat, no open and no name_to_handle_at. NULL: take the long way. */
struct fs_node *fs_node_find_held(struct fs *fs, const struct stat *st);
/* Kernel caching (fs_watch.c): while fanotify watches the origin's file system, the kernel may
 * keep names, attributes and directory listings of that file system until the watcher
 * invalidates them (FS_WATCHED_TIMEOUT); elsewhere (a file system mounted below the origin, no
 * watch) --entry-timeout and --attr-timeout apply. */
#define FS_WATCHED_TIMEOUT 86400.0
bool fs_watch_covers(struct fs *fs, const struct fs_node *n);
/* Whether the watcher's fanotify group has no event queued (a zero-timeout poll finds nothing); false on an error. */
bool fs_watch_queue_empty(struct fs *fs);
/* Wakes the watcher's thread to look at the catalog's young listings again (one due earlier
 * than the others: fs_catalog_young_due). From a request's thread, while the session runs
 * (fs_watch_stop runs after every worker ended). */
void fs_watch_wake(struct fs *fs);
/* The watcher's invalidation count of the slot of (parent, name): see fs_watch.names_gen. */
uint64_t fs_watch_names_gen(struct fs *fs, uint64_t parent, const char *name);
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
/* A new fd on n's inode opened with `flags` (open(2) flags, no O_CREAT), or -errno: through
 * its cached O_PATH fd (/proc/self/fd/N), else straight from its file handle. */
int fs_node_open(struct fs *fs, struct fs_node *n, int flags);
void fs_node_fd_put(struct fs *fs, struct fs_node *n, int fd);
/* The origin inode's attributes (symlinks not followed), through a borrowed fd. 0 or -errno. */
int fs_node_stat(struct fs *fs, struct fs_node *n, struct stat *st);
/* Before n's name goes or moves through the mount (unlink, rmdir, rename): if n is reached by
 * that name, it keeps its fd from now on (FS_REACH_FD). */
void fs_node_name_leaving(struct fs *fs, struct fs_node *n);
/* Before the last name of n, a regular file on an original the watcher does not cover, goes
 * through the mount (unlink, rename over it): if open files of ours hold it (deferred ones
 * hold no fd that keeps it open), it is opened and kept open until the last of
 * them closes (held_open_fd). A failure is only logged: their reads are served from the copy anyway. */
void fs_node_hold_open(struct fs *fs, struct fs_node *n);
/* n keeps its O_PATH fd from now on until it goes (FS_REACH_FD), whatever reached it: an inode
 * whose last name goes (or an O_TMPFILE) can then be opened again through /proc, which a file
 * handle no longer does once it is unlinked (ext4: ESTALE) or closed by all (gone). Used by
 * openless mounts, where no open file of ours keeps it (fs_openless.h). */
void fs_node_pin_fd(struct fs *fs, struct fs_node *n);
/* Are any nodes reached by name? If not, fs_node_name_leaving has nothing to do. */
bool fs_node_names_in_use(struct fs *fs);
/* openat for the daemon's own fds (O_PATH lookups, opens): when the daemon runs out of fds it
 * closes cached ones and tries again; a limit it still hits is -ENOMEM, never EMFILE. */
int fs_open_retry(struct fs *fs, int dirfd, const char *name, int flags, mode_t mode);
/* The open state of n, created if needed: NULL only without memory. Every hold is undone by
 * fs_node_io_release; the state is freed with the last. */
struct engine_inode *fs_node_io_hold(struct fs *fs, struct fs_node *n);
/* The same if n has open state now; NULL (nothing held) if not. */
struct engine_inode *fs_node_io_hold_existing(struct fs *fs, struct fs_node *n);
void fs_node_io_release(struct fs *fs, struct fs_node *n);
/* Is a daemon limit (not the origin's answer)? Such an error is never passed on as is. */
static inline bool fs_limit_error(int rc) { return rc == -EMFILE || rc == -ENFILE; }

/* The fs side of the cache engine (fs_cache.c): the host seam, open files, and the node-level
 * calls into the engine. */
int fs_cache_engine_create(struct fs *fs);
void fs_cache_passthrough_disable(struct fs *fs, const char *why);
/* Attach an open file (f->file.fd or, deferred, f->path_fd; open_flags set) to its node's
 * engine inode and choose the io-mode; fills the open reply. -errno fails the open, -ESTALE
 * when the inode was unlinked behind our back (the kernel then looks the name up again). */
int fs_cache_attach(struct fs *fs, struct fs_file *f, struct cm_fuse_open_out *o);
/* The same for a deferred open with neither fd whose attributes the catalog knows current
 * (known: fs_catalog_file_attr): checked against them; unless it is a hit passed through to
 * the cache copy, the node's O_PATH fd is borrowed then. */
int fs_cache_attach_known(struct fs *fs, struct fs_file *f, const struct stat *known,
                          struct cm_fuse_open_out *o);
void fs_cache_detach(struct fs *fs, struct fs_file *f);
/* The origin fd of open file f, opened now if its open was deferred: >= 0 or -errno. */
int fs_file_origin_fd(struct fs *fs, struct fs_file *f);
/* An fd to fstat f's origin inode with (its own, else the borrowed O_PATH fd): no open. */
int fs_file_stat_fd(const struct fs_file *f);
/* An origin change other than WRITE on a node (truncate, fallocate, copy_file_range): begin
 * (returns the engine inode, held, its locks taken; NULL without memory), then
 * engine_write_changed() after the change succeeded, then end. */
struct engine_inode *fs_cache_change_begin(struct fs *fs, struct fs_node *n);
void fs_cache_change_end(struct fs *fs, struct fs_node *n, struct engine_inode *io);
/* Metadata of the node's origin file changed through the mount (its ctime moved). */
void fs_cache_metadata_changed(struct fs *fs, struct fs_node *n);
/* Deleted files return their space (engine_last_name, engine_file_deleted). */
bool fs_cache_last_name(struct fs *fs, struct fs_node *parent, const char *name,
                        const struct stat *st, struct cache_key *key);
void fs_cache_file_deleted(struct fs *fs, struct cache_key key);
/* The node's attributes may change with no request to us (a writable passthrough open: writes
 * through its mapping move mtime and ctime): replies give them no time in the kernel's cache. */
bool fs_cache_attr_volatile(const struct fs_node *n);
/* Drop the kernel's cached attributes of n (NOTIFY_INVAL_INODE, attributes only), after a change
 * the kernel learns of in no reply. Never call it holding a lock the kernel may wait for. */
void fs_cache_attr_invalidate(struct fs *fs, const struct fs_node *n);
/* Before a GETATTR (and before a LOOKUP or READDIRPLUS entry carries a node's attributes,
 * lookup_at), with the node's open state held once: an open file whose origin changed
 * behind the cache has its object brought in step before the attributes are answered -- also
 * with fanotify, whose event may still be on its way while a reader's stat already asks (a
 * passthrough read drops the kernel's atime, so the next fstat asks us): the size answered must
 * never run ahead of the bytes the reader reads; then a writer over the cache copy may have
 * written its mapping, which lands in the copy: it is written back, so that the origin's times
 * and bytes are current. Nothing to do for a file with no open state. */
void fs_cache_before_getattr(struct fs *fs, struct fs_node *n);

/* The metadata catalog wired in (fs_catalog.c; docs/ARCHITECTURE.md "The metadata catalog").
 * Directory listings and attributes for READDIR(PLUS) and LOOKUP, valid while the directory's
 * stamp is; attributes served without a stat only under a valid seal. */
#define FS_CATALOG_BUILD_MAX 65536u     /* a larger directory is listed from the origin */
/* At fs_create: open the catalog at path (NULL: none) and check the seal. */
void fs_catalog_open(struct fs *fs, const char *path);
void fs_catalog_close(struct fs *fs);
/* After the watcher started (active or not): confirms or voids the seal. */
void fs_catalog_watch_started(struct fs *fs);
/* At a clean stop, with the watcher's queue drained by drain(fs) after a syncfs of the
 * original: writes the seal if nothing voided it. */
void fs_catalog_seal_write(struct fs *fs, void (*drain)(struct fs *));
/* Whether the catalog serves directory dir (a catalog, the watcher covering it, the kernel
 * caching listings: READDIR comes with fh 0). */
bool fs_catalog_on(struct fs *fs, const struct fs_node *dir);
/* A directory's listing or an entry in it changed (through the mount): its record goes. */
void fs_catalog_dir_changed(struct fs *fs, struct fs_node *dir);
struct file_handle;
/* The watcher saw a change in the directory of handle h (events of any process, ours too). */
void fs_catalog_dir_changed_handle(struct fs *fs, struct file_handle *h);
/* GETATTR of a directory node from the catalog: 0 and *st while the seal holds and the node's
 * stamp is the one its attributes came with; -ENOENT: ask the origin. */
int fs_catalog_dir_attr(struct fs *fs, struct fs_node *n, struct stat *st);
/* A file changed (attributes, data, a link count) with no name in its event (a file opened by
 * handle has no parent to report, a link(2) names none): its directory's record may hold its
 * old attributes, so the seal goes for this run and none is written at its stop (also in a run
 * that started without one). */
void fs_catalog_nameless_change(struct fs *fs, struct file_handle *self);
/* Events were lost: the seal is void, every node stamp too. */
void fs_catalog_overflow(struct fs *fs);
/* The watcher is about to read events from its queue (begin) and has handled all it read
 * (end): between the two, the catalog holds no file's attributes current (fs_catalog_file_attr),
 * since a change taken out of the queue may not have been accounted yet. */
void fs_catalog_events_begin(struct fs *fs);
void fs_catalog_events_end(struct fs *fs);
/* An event named handle h (the file it changed, or the directory of a name): every attributes
 * the catalog holds for h's inode, or for a file in h's directory, stop being current. Call for
 * every handle of every event (any process), before any invalidation the event causes. */
void fs_catalog_handle_changed(struct fs *fs, const struct file_handle *h);
/* The attributes of regular file n, known current without reading the original (OPEN's
 * fingerprint, GETATTR): 0 and *st while nothing changed n or its directory since they were
 * read (from a sealed record, or from the original in this run) and the watcher has no event
 * pending or in hand; -ENOENT or -EAGAIN: ask the original. */
int fs_catalog_file_attr(struct fs *fs, struct fs_node *n, struct stat *st);
/* The attributes of regular file n last kept (current or not): for a GETATTR of a file open on
 * them whose original was unlinked behind since (op_getattr). 0, or -ENOENT (none kept). */
int fs_catalog_file_attr_kept(struct fs *fs, struct fs_node *n, struct stat *st);
/* Whether n (a regular file, a symlink or a directory) had no xattrs when listed and that is
 * still current (the rule of its attributes: fs_catalog_file_attr's for a file or symlink,
 * fs_catalog_dir_attr's for a directory, and the watcher has nothing pending): fs_xattr.c then
 * knows n has none without a listxattr of the original (its answers for each name are still
 * learned from real calls, once per mount and type). */
bool fs_catalog_no_xattrs(struct fs *fs, struct fs_node *n);
/* The watcher's thread: records the young listings whose time came (fs_catalog.c "young
 * listings"), and says in how many ms the next one's comes (-1: none, for poll). */
void fs_catalog_young_record(struct fs *fs);
int fs_catalog_young_due(struct fs *fs);
/* What the catalog generations were before something was read of the original: compared
 * before what was read is stored or served as current (a change reported meanwhile bumped its
 * directory's slot). 64 loads to take; any thread. */
struct fs_catalog_gens {
	uint64_t slot[FS_CATALOG_GEN_SLOTS];
	uint64_t events;   /* the watcher's event count (fs_catalog_events_begin) at the sample */
};
void fs_catalog_gens_sample(struct fs *fs, struct fs_catalog_gens *g);
/* Whether a change was reported for directory (dev, ino) since g was sampled. */
bool fs_catalog_gens_moved(struct fs *fs, const struct fs_catalog_gens *g, uint64_t dev, uint64_t ino);
/* A directory node was stat'ed on the origin (st), g sampled before: its stamp, kept unless a
 * change was reported for it since g. */
void fs_catalog_stamp_seen(struct fs *fs, struct fs_node *n, const struct stat *st,
                           const struct fs_catalog_gens *g);
/* LOOKUP from the catalog: 0 with *st and *out (a node, one reference taken); -ENOENT: a valid
 * listing has no such name; 1: the catalog cannot answer (ask the origin). */
int fs_catalog_lookup(struct fs *fs, struct fs_node *p, const char *name, struct stat *st,
                      struct fs_node **out);
/* A listing of d for READDIR: a valid record, or the origin's listing made now (and recorded
 * when its stamp held still). 0, or -E2BIG (more than FS_CATALOG_BUILD_MAX entries: use the
 * origin's stream), or -errno. */
struct fs_listing {
	size_t count;
	const struct cache_catalog_entry *entries;  /* in no order READDIR relies on */
	bool attrs_fresh;                           /* stat'ed just now: serve them */
	bool recorded;                              /* read from the origin and recorded */
	/* sampled before the record was read or the origin listed: a change reported for d or an
	 * entry since then means the listing may no longer be current (fs_catalog_gens_moved) */
	struct fs_catalog_gens gens;
	struct cache_catalog_listing *record;       /* private */
	struct cache_catalog_entry *built;
	char *names;
};
int fs_catalog_listing(struct fs *fs, struct fs_node *d, struct fs_listing *out);
void fs_catalog_listing_release(struct fs_listing *l);
/* READDIR cookies of catalog listings: "." 1, ".." 2, an entry a keyed hash of its name
 * (>= FS_CATALOG_COOKIE_FIRST, < 2^63), the same in every listing of this run, so that a reader
 * resuming at a cookie in a listing rebuilt meanwhile neither skips nor repeats an entry that
 * was there throughout. Distinct names may share a cookie (rarely: 63-bit keyed hash); a reply
 * then carries all of them or none. */
#define FS_CATALOG_COOKIE_DOT 1u
#define FS_CATALOG_COOKIE_DOTDOT 2u
#define FS_CATALOG_COOKIE_FIRST 3u
uint64_t fs_catalog_cookie(const struct fs *fs, const char *name);
struct fs_listing_pick {
	uint64_t cookie;
	size_t index;   /* into l->entries */
};
/* The at most max entries of l with the smallest cookies above `after`, in cookie order (equal
 * cookies by index), into picks; how many. A group of equal cookies that would be cut at max is
 * left out (unless it is all there is). */
size_t fs_catalog_listing_after(const struct fs *fs, const struct fs_listing *l, uint64_t after,
                                 size_t max, struct fs_listing_pick *picks);
/* The node of entry e of directory p for READDIRPLUS, from a listing read after g was sampled:
 * 0 with *st and *out (a reference), 1: send the entry without attributes (the kernel looks it
 * up; also when a change in p was reported since g), or -errno. */
int fs_catalog_entry_node(struct fs *fs, struct fs_node *p, const struct cache_catalog_entry *e,
                          bool attrs_fresh, const struct fs_catalog_gens *g, struct stat *st,
                          struct fs_node **out);

/* Whether n is reached by parent and name (FS_REACH_NAME): then its parent (held by n's
 * reference) and name, which stay as they are while n lives. */
bool fs_node_name(struct fs *fs, struct fs_node *n, struct fs_node **parent, const char **name);

/* Paths (fs_path.c): the node's path relative to the origin, built from the names of nodes
 * reached by name, else from the kernel's name of its fd; -ENOENT if it is outside the origin
 * or deleted, -ENAMETOOLONG past size. */
#define FS_RELPATH_MAX 4096
int fs_node_relpath(struct fs *fs, struct fs_node *n, char *buf, size_t size);
/* The path of name in directory parent, relative to the origin: the same errors. */
int fs_name_relpath(struct fs *fs, struct fs_node *parent, const char *name, char *buf,
                    size_t size);
/* Where the cache knows files by path (fs->files_by_path): the directory parent/name moved to
 * newparent/newname through the mount; the copies under its old path belong to no file now
 * (a later file at an old path must not find them): discarded, walking the directory at its
 * new place (d_type; at most FS_TREE_MOVED_DEPTH_MAX levels). A no-op elsewhere. */
#define FS_TREE_MOVED_DEPTH_MAX 64
void fs_cache_tree_moved(struct fs *fs, struct fs_node *parent, const char *name,
                         struct fs_node *newparent, const char *newname);
/* The cache key of the file at name in directory parent, with attributes st (engine_key: its
 * path where fs->files_by_path). 0 or -errno (its path is not known). */
int fs_cache_name_key(struct fs *fs, struct fs_node *parent, const char *name,
                      const struct stat *st, struct cache_key *key);

/* The change watcher (fs_watch.c): open readers see changes made behind the cache. */
/* A node with a file handle entered (added) or left the table; table_lock held. */
void fs_watch_node_added(struct fs *fs, const struct fs_node *n);
void fs_watch_node_removed(struct fs *fs, const struct fs_node *n);
/* At fs_free, after the node table: stops the watcher if running and frees the filter. */
void fs_watch_release(struct fs *fs);
/* Every node in the table of file type `type` (S_IFDIR, ...; 0: any) with a reference taken
 * (undo each with fs_node_forget(.., 1)), the root excepted: *out is malloc'ed (free it), the
 * count is returned; 0 without memory. */
size_t fs_node_refs_all(struct fs *fs, mode_t type, struct fs_node ***out);

/* "/proc/self/fd/N" for a node fd, for calls that have no *at() form usable with O_PATH. */
#define FS_PROC_PATH_MAX 32
void fs_proc_path(int fd, char buf[FS_PROC_PATH_MAX]);

/* ---- xattrs of inodes that have none (fs_xattr.c) -----------------------------------------
 * `ls -l` asks every file for security.selinux and system.posix_acl_access (and a directory
 * for its default ACL); almost every file has no xattrs at all, and the kernel caches none of
 * these answers for FUSE. Where the change watcher covers an inode, the daemon learns once
 * (one listxattr) that it has none, and from then answers GETXATTR and LISTXATTR of it without
 * the original (no fd, no syscall) until a change: any watcher event naming the inode (a
 * setxattr or removexattr behind the cache is FAN_ATTRIB), an overflow, or an xattr change
 * through the mount (fs_xattr_changed). The answer for a name is the errno the original gave
 * for that name on an inode of the same type with no xattrs (ENODATA for a supported
 * namespace, EOPNOTSUPP for one the file system lacks, which differs by file type and mount
 * options), learned from a real call (32 name and type pairs per mount, first come); a name
 * the original answered with a value on such an inode (a file system that makes xattrs up,
 * e.g. ntfs3's system.ntfs_attrib) is not learned, and two different errnos for one name make
 * it always asked. Only nodes events can name count (a handle of their own, or the root).
 * Races: a change is counted before it is acted on, and what a call learned is kept only if
 * no change was counted between the sample taken before the call and its end. */
/* The state before asking the original about n (pass it to the calls below). */
unsigned fs_xattr_sample(const struct fs_node *n);
/* Without the original: the errno to answer a GETXATTR of name on n with (> 0), or 0: ask. */
int fs_xattr_get_known(struct fs *fs, struct fs_node *n, const char *name);
/* Without the original: does n have no xattrs (answer LISTXATTR with an empty list)? */
bool fs_xattr_none_known(struct fs *fs, struct fs_node *n);
/* Should the caller list n's xattrs (fs_xattr_listed) before asking for one? */
bool fs_xattr_probe_wanted(struct fs *fs, const struct fs_node *n, unsigned sample);
/* The original's listxattr(n) size (or -errno), asked after sample, and only if
 * fs_xattr_probe_wanted(sample) said yes before the call (a call made before the watcher's
 * mark could miss a change that no event will report). */
void fs_xattr_listed(struct fs_node *n, unsigned sample, ssize_t size);
/* The original's getxattr(n, name) result (a size, or -errno), asked after sample. */
void fs_xattr_got(struct fs *fs, struct fs_node *n, unsigned sample, const char *name,
                  ssize_t result);
/* n's xattrs may have changed (an event of the watcher's, or a change through the mount). */
void fs_xattr_changed(struct fs_node *n);

/* ---- an original whose file system has no xattrs (fs_xattr.c) -----------------------------
 * On a file system without xattr support (sshfs: its kernel answers EOPNOTSUPP to every name
 * after sshfs's ENOSYS, and ENODATA to the two ACL names, a NULL ACL; vfat alike) every
 * GETXATTR is a round trip for an answer known in advance, and the kernel asks again for
 * every file: ls keeps an EOPNOTSUPP per device, but the ACL's ENODATA is per file, and the
 * kernel's cached ACLs go at every READDIRPLUS re-listing and attribute refresh. ENOSYS to
 * GETXATTR (LISTXATTR) sets the connection's no_getxattr (no_listxattr) for good: the kernel
 * then answers EOPNOTSUPP itself, and NULL ACLs (ENODATA for the ACL names, fs/fuse/acl.c)
 * -- the original's answers, name for name. Exact only if nothing below the origin has
 * xattrs, so it needs no mount below the origin at the start (cfg.origin_submounts); one
 * made later lands on the CacheMax mount that covers the origin, not below it (a mount
 * through another path to the original, a bind made before the start or propagation into
 * it, is the known limit). SETXATTR and REMOVEXATTR still go to the original (EOPNOTSUPP). */
/* At fs_create: sets fs->xattrs_unsupported if the origin's root lists no xattrs with
 * EOPNOTSUPP, answers EOPNOTSUPP for a user.* name and ENODATA for both ACL names, and
 * nothing was mounted below the origin. */
void fs_xattr_origin_probe(struct fs *fs);
/* Answer GETXATTR and LISTXATTR with ENOSYS (counted as answered without the original)? */
bool fs_xattr_unsupported(struct fs *fs);

#endif
