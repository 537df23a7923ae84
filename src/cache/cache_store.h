/* cache_store: the on-disk cache object store — one sparse copy of an origin file per object,
 * a chunk map saying which of its bytes are valid, and the origin's fingerprint they belong to.
 * It is the foundation of the cache engine: it knows nothing of FUSE or paths, nor what to fill;
 * the caller reads the origin and tells the store what it read or wrote. What to evict when a
 * capacity is set is the store's (cache_policy.h), which objects to pin the caller's.
 *
 * Layout (formats in cache_meta.c):
 *   CACHEDIR/cachemax-v1/superblock                 magic, version, origin root (st_dev, st_ino)
 *   CACHEDIR/cachemax-v1/capacity                   the capacity saved by the last open that set it
 *   CACHEDIR/cachemax-v1/objects/HH/DEV-INO.data    sparse copy: byte i == origin byte i
 *   CACHEDIR/cachemax-v1/objects/HH/DEV-INO.meta    record: key, fingerprint, chunk map, the
 *                                                   origin file's handle (version 2), CRC
 * HH is a hash byte of the key (256 shards); DEV and INO are 16 hex digits.
 *
 * Guarantees
 * - Never stale: an object whose persisted record does not match the fingerprint the caller
 *   passes (size, mtime_ns, ctime_ns, st_dev, st_ino), or whose record is damaged, is reset
 *   (data truncated, map cleared) before anything is served from it — or, if others hold it,
 *   divorced (cache_object_open): this open gets a fresh object, theirs is not changed.
 * - Never a claim without data: a chunk is marked present in the persisted record only after
 *   its data was made durable (fdatasync) on the cache device; and a persisted record is
 *   withdrawn (unlinked, directory fsynced) before any byte it claims is changed or destroyed
 *   (in-place write-through, truncate, invalidate, reset). After a crash at any point the
 *   record on disk claims only durable bytes that equal the origin under the record's
 *   fingerprint.
 * - Start-up does not read the objects: cache_store_open() reads only the superblock; a record
 *   is read when its object is opened. Usage is computed by one scan of the data files on the
 *   first cache_store_usage() call and kept up to date in memory afterwards. Objects left by
 *   files that vanished or changed meanwhile are found afterwards by the scrub (below).
 * - Space: an object holding no chunk is not kept past its last release; a deleted file's
 *   object is removed by cache_object_discard() (at its last release if open); holes of the
 *   origin stay holes in the data file (cache_object_fill_sparse).
 * - Capacity (when one is set): usage is kept under the capacity by an eviction thread owned by
 *   the store. When usage passes the high watermark it evicts the objects the policy
 *   (cache_policy.h: S3-FIFO by default, or LRU) names, exactly as cache_object_remove() does,
 *   until usage is at or below the low watermark; pinned objects are never evicted. The
 *   policy learns of an object at each cache_object_open() (an access), follows its
 *   allocation as fills, writes, truncates and resets change it, and learns of the objects
 *   left by an earlier run from the usage scan, which the thread runs right after open: those
 *   enter as the coldest objects, oldest data-file mtime first. A fill that would push usage
 *   past the capacity stores nothing (-EDQUOT) and wakes the thread; write-through is never
 *   refused (usage may pass the capacity until the thread has trimmed it). The effective
 *   capacity is saved in the store (CACHEDIR/cachemax-v1/capacity) for the next open that
 *   sets none. Without a capacity nothing is ever evicted but by cache_object_remove().
 * - Cache-device errors (EIO, ENOSPC, EROFS, ...) are returned to the caller (who then serves
 *   from the origin); the object is reset, or if even that fails, marked failed: it serves
 *   nothing and stores nothing until the next cache_object_open() of its key manages a reset.
 * - Limits: the fingerprint is the only witness of changes made behind the store's back, so a
 *   change that keeps size, mtime and ctime goes unseen (Linux moves ctime on every change, at
 *   nanosecond granularity once someone has looked, since 6.13). A record the device refuses to
 *   withdraw stays on disk describing the origin under its older fingerprint.
 *
 * Errors: every function returns 0 (or a documented non-negative value) or -errno; out-params
 * are written only on success. Store-specific codes:
 *   -ENODATA   cache_object_read(): miss, a chunk of the range is not present (read the origin)
 *   -ESTALE    cache_object_fill(): dropped: the generation changed, or the object serves
 *              nothing (removed or evicted, or failed)
 *   -EDQUOT    cache_object_fill(): nothing stored, the chunks would push usage past the
 *              capacity (not a device error: the object stays usable, later fills may succeed
 *              once the eviction thread made room)
 *   -EEXIST    cache_store_open(): CACHEDIR holds a store created for another origin
 *   -EUCLEAN   cache_store_open(): the superblock is damaged
 *   -EBUSY     cache_store_open(): another open store (any process) holds CACHEDIR;
 *              cache_store_close(): objects are still open
 *   -EPERM     cache_store_open(): CACHEDIR/cachemax-v1 or its objects directory belongs to
 *              another user or is writable by group or others (objects could be planted)
 *   -EFBIG     cache_object_open(): the file needs more than CACHE_OBJECT_MAX_CHUNKS chunks
 *
 * Threads: every function may be called from any thread. Each object has a mutex (cache_int.h
 * lists what it protects) held across that object's own I/O; reads copy from the data file
 * outside it and return -ENODATA if the generation moved meanwhile. Its locks — the evict lock
 * (one eviction at a time, against pin changes), an object's mutex, the usage lock (shared
 * across I/O that changes a data file, exclusive by the one usage scan), the policy's lock,
 * the eviction thread's and the scrub's wake-up locks, the table lock (around table and
 * reference updates only; the last release looks at the reference count under its object's
 * mutex) — are placed in docs/ARCHITECTURE.md "Lock order", the only copy. The eviction
 * thread and the scrub take them per object, never across a whole pass.
 *
 * Ordering the caller must provide: an origin write and its cache_object_write() must not be
 * overtaken by another write to the same bytes (hold a per-inode write lock across both), since
 * the store cannot see in which order they reached the origin. The same holds for truncate.
 */
#ifndef CACHEMAX_CACHE_STORE_H
#define CACHEMAX_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache/cache_layout.h"   /* CACHE_STORE_DIR_NAME */

#define CACHE_CHUNK_SIZE_DEFAULT (256u * 1024)
#define CACHE_CHUNK_SIZE_MIN 4096u
#define CACHE_CHUNK_SIZE_MAX (64u * 1024 * 1024)
#define CACHE_PERSIST_BATCH_DEFAULT 64u        /* chunks filled between record writes */
#define CACHE_OBJECT_MAX_CHUNKS (1ull << 26)   /* 8 MiB of map; 16 TiB at 256 KiB chunks */

struct cache_store;
struct cache_object;

/* An object's identity: the origin file's (st_dev, st_ino) (cache_key_from_stat), or on an
 * origin whose inode numbers do not last, its path (cache_store_path_key: dev is then
 * CACHE_KEY_DEV_PATH, which no file system's st_dev is). */
struct cache_key {
	uint64_t dev;
	uint64_t ino;
};
#define CACHE_KEY_DEV_PATH 0u

/* How the scrub reaches an object's origin file without a path: its file handle
 * (name_to_handle_at(2)) on the origin's file system. bytes 0: none known. */
#define CACHE_HANDLE_MAX 128u   /* MAX_HANDLE_SZ */
struct cache_origin_handle {
	int32_t type;
	uint32_t bytes;
	uint8_t data[CACHE_HANDLE_MAX];
};

/* A range of bytes of a file (cache_object_fill_sparse: where the origin holds data). */
struct cache_extent {
	uint64_t off;
	uint64_t len;
};

/* What the origin file looked like when its bytes were cached. Equal fingerprints (all five
 * fields) mean the cached bytes may be served. */
struct cache_fingerprint {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

enum cache_policy_kind {
	CACHE_POLICY_S3FIFO = 0,   /* the default: keeps the hot set through one-time scans */
	CACHE_POLICY_LRU,          /* least recently opened first (for comparison) */
};

#define CACHE_CAPACITY_UNLIMITED UINT64_MAX   /* config.capacity: no limit, forget a saved one */
#define CACHE_HIGH_PCT_DEFAULT 95u
#define CACHE_LOW_PCT_DEFAULT 85u

struct cache_store_config {
	uint64_t origin_dev;            /* st_dev, st_ino of the origin root: the store belongs */
	uint64_t origin_ino;            /* to that directory and refuses any other (-EEXIST) */
	/* Where inode numbers do not last, (st_dev, st_ino) of the root do not last either (a
	 * remounted sshfs may get another device number): non-zero, the origin's identity (a hash
	 * of what names it: its mount's type, source and root, its path in it). The superblock
	 * then holds (CACHE_KEY_DEV_PATH, origin_identity); one holding (origin_dev, origin_ino)
	 * (written before) is taken as this origin's and rewritten. */
	uint64_t origin_identity;
	uint32_t chunk_size;            /* power of two, MIN..MAX; 0 = CACHE_CHUNK_SIZE_DEFAULT.
	                                 * Records of another chunk size are reset when opened. */
	uint32_t persist_batch_chunks;  /* write the record after this many new chunks (and at
	                                 * sync/release); 1 = after every fill; 0 = default */
	uint64_t capacity;              /* bytes of data files; 0 = the capacity saved by an
	                                 * earlier open, or default_capacity if none was saved;
	                                 * CACHE_CAPACITY_UNLIMITED = none (the saved one is
	                                 * forgotten). The effective capacity, if any, is saved. */
	uint64_t default_capacity;      /* 0 = unlimited */
	uint8_t high_pct;               /* evict when usage passes high_pct % of the capacity ... */
	uint8_t low_pct;                /* ... down to low_pct %. 0 = the defaults (a low
	                                 * default above high_pct becomes high_pct);
	                                 * 1 <= low <= high <= 100, else -EINVAL */
	enum cache_policy_kind policy;  /* 0 = S3-FIFO */
};

struct cache_object_info {
	struct cache_fingerprint fingerprint;
	uint64_t generation;
	uint64_t chunk_count;         /* chunks covering fingerprint.size */
	uint64_t present_chunks;
	uint64_t allocated_bytes;     /* st_blocks * 512 of the data file at the last change */
	bool record_on_disk;          /* a persisted record exists (it may lag the memory map) */
	bool failed;                  /* a cache-device error left it serving nothing */
	bool removed;
	bool discarded;               /* its file was deleted: removed at its last release */
};

void cache_fingerprint_from_stat(const struct stat *st, struct cache_fingerprint *fp);
struct cache_key cache_key_from_stat(const struct stat *st);
bool cache_fingerprint_equal(const struct cache_fingerprint *a, const struct cache_fingerprint *b);
/* The key of the origin file at relpath (relative to the origin root, no leading '/'), for an
 * origin whose inode numbers do not last (a FUSE file system such as sshfs numbers its inodes
 * in lookup order: a number changes when the kernel evicts the inode, and after a remount it
 * goes to another file). A keyed hash (siphash24) of the path under the store's own secret,
 * made at its creation and kept in the store directory: the same path has the same key after
 * every restart, and nobody who cannot read the store can choose a path whose key collides
 * with another's (a planted copy). Pure given the store; any thread. */
struct cache_key cache_store_path_key(const struct cache_store *store, const char *relpath);

/* ---- Store ------------------------------------------------------------------------------ */

/* Opens (creating if needed) CACHEDIR/cachemax-v1 relative to cachedir_fd (any directory fd,
 * O_PATH is fine; the store does not keep it) and locks it (flock) for this store. With a
 * capacity, saves it and starts the eviction thread (which first scans usage). Errors: the
 * codes above, -EINVAL for a bad config, or the cache device's error. */
int cache_store_open(int cachedir_fd, const struct cache_store_config *config,
                     struct cache_store **out);
/* -EBUSY (nothing done) while objects are open. Otherwise stops the eviction thread, syncs the
 * cache file system, frees the store and returns 0 or the sync's error. */
int cache_store_close(struct cache_store *store);
uint32_t cache_store_chunk_size(const struct cache_store *store);
/* Bytes allocated to data files (st_blocks * 512) and number of objects (data files). The first
 * call scans the data files (one fstatat each, fills wait for it); later calls are O(1). With
 * a capacity, the eviction thread makes that first call right after open. */
int cache_store_usage(struct cache_store *store, uint64_t *bytes, uint64_t *objects);
/* Evicts an object: unlinks its record, then its data. Safe while the data file is open
 * elsewhere (space returns at its last close) and while the object is open here: that
 * cache_object stays valid but serves nothing and stores nothing. -ENOENT if there was none. */
int cache_object_remove(struct cache_store *store, struct cache_key key);
/* The origin file of key was deleted (its last name went): its object is of no further use.
 * Removed now, as by cache_object_remove(), if nobody has it open (0); otherwise marked to be
 * removed at its last cache_object_release() (1), so that its open users keep it until then;
 * its record is withdrawn at once and never written again, so that after a crash before that
 * release no record of it is found (the scrub takes the data file); a device error doing so
 * empties it and is returned. An open of key with another fingerprint (a new file that reuses
 * the inode number) gets an object of its own: cache_object_open divorces the discarded one;
 * so does any open of a path key's discarded object, whose name went: whatever has it now is
 * another file. -ENOENT if there was no object. */
int cache_object_discard(struct cache_store *store, struct cache_key key);
/* Evicts every object (as cache_object_remove, one by one); *removed counts them. */
int cache_store_remove_all(struct cache_store *store, uint64_t *removed);
/* The effective capacity in bytes (0: unlimited) and its watermarks in bytes. */
uint64_t cache_store_capacity(const struct cache_store *store);
void cache_store_watermarks(const struct cache_store *store, uint64_t *high, uint64_t *low);
/* Objects evicted by the eviction thread (never those of cache_object_remove()), and evictions
 * that failed on a device error (the object stays on disk, unknown to the policy until it is
 * opened again). */
uint64_t cache_store_evictions(struct cache_store *store);
uint64_t cache_store_eviction_errors(struct cache_store *store);
/* A pinned key's object is never evicted for capacity (cache_object_remove() still removes
 * it). The pin belongs to the key, whether or not an object exists now, until unpinned; it is
 * not saved (set it again after each open). When this returns, no eviction of key is in
 * progress. 0, or -ENOMEM. Without a capacity it does nothing. */
int cache_store_pin(struct cache_store *store, struct cache_key key, bool pinned);

/* ---- Scrub ------------------------------------------------------------------------------ */

/* Objects whose origin file vanished or changed while nobody watched (the daemon was down, or
 * a change by another route) are reclaimed by a background scrub: a thread that, delay_ms
 * after cache_store_scrub_start() and then every interval_ms, examines every object (at most
 * rate_per_sec a second, so its I/O stays bounded) and removes, exactly as
 * cache_object_remove(), those that nobody has open and that
 *   - have no intact record: they hold nothing that would ever be served;
 *   - have a record whose origin handle no longer opens a file (the file is gone: ESTALE),
 *     opens one without a name left, or one whose fingerprint differs from the record's (its
 *     next open would reset it anyway).
 * An object whose record has no handle (written before record version 2), or whose origin is
 * on another file system than the origin root (a mount below it: origin_fd cannot decode its
 * handle), is kept: the scrub cannot tell. Objects opened meanwhile are skipped. The scrub
 * stops at cache_store_close(). origin_fd: an fd on the origin root's mount (O_PATH is
 * fine), reopened (the caller keeps its own). 0, -EALREADY (started before), or -errno. */
#define CACHE_SCRUB_DELAY_MS_DEFAULT 10000u       /* after the start, to keep out of its way */
#define CACHE_SCRUB_INTERVAL_MS_DEFAULT 3600000u
#define CACHE_SCRUB_RATE_DEFAULT 1000u
struct cache_scrub_config {
	int origin_fd;
	uint32_t delay_ms;          /* before the first pass */
	uint32_t interval_ms;       /* from the start of a pass to the next; 0: one pass only */
	uint32_t rate_per_sec;      /* objects examined per second at most; 0: the default */
};
struct cache_scrub_stats {
	uint64_t passes;            /* passes finished */
	uint64_t checked;           /* objects examined */
	uint64_t reclaimed;         /* objects removed */
	uint64_t reclaimed_bytes;   /* the allocation of their data files */
};
int cache_store_scrub_start(struct cache_store *store, const struct cache_scrub_config *config);
void cache_store_scrub_stats(struct cache_store *store, struct cache_scrub_stats *out);

/* ---- Objects ---------------------------------------------------------------------------- */

/* Returns the object for key, one reference per call (objects are shared between openers).
 * A new object gets an empty data file. A persisted record is adopted if it is intact, has the
 * store's chunk size and its fingerprint equals current; otherwise, and whenever an already
 * open object's fingerprint differs from current, the object is reset to current — in place
 * only if nobody else holds it. An object others hold (an open file of a deleted file whose
 * inode number a new file got: the key is the new file's now) is never reset under them: it
 * is divorced — its record, then its data file, leave the key's name (as by
 * cache_object_remove), and the holders keep what it held: its data file, open, and its map,
 * so their cache_object_read() of present chunks still hits (a passthrough reader's backing
 * file keeps its bytes); it stores nothing more and goes at their last release — and this
 * open gets a fresh object (docs/ARCHITECTURE.md "Cache objects of reused inode numbers").
 * Returns 0, or 1 (CACHE_OBJECT_RESET) when cached contents were dropped: the caller should
 * drop the kernel's page cache of the inode too. */
#define CACHE_OBJECT_RESET 1
int cache_object_open(struct cache_store *store, struct cache_key key,
                      const struct cache_fingerprint *current, struct cache_object **out);
/* Drops one reference; the last one persists the record (returned: 0 or the error; the object
 * is released either way) and closes the data file. The last one also removes the object if
 * it holds no chunk (an object opened by a writer passing through to the origin, or by a
 * read that stored nothing, is not kept as an empty file) or was discarded, instead of
 * persisting it (returned then: 0 or the error of the removal). */
int cache_object_release(struct cache_object *obj);

/* An open of an object still referenced from an earlier one (kept in memory, its record
 * loaded): the same check against the origin's current fingerprint as cache_object_open, with
 * no disk access unless it must reset (a parked object's data file is opened again: one
 * openat). 0 if current matches, 1 if reset to current, -ESTALE if the object was removed or
 * discarded meanwhile, or its data file is gone (release it and open afresh), another -errno
 * if the reset failed. */
int cache_object_reopen(struct cache_object *obj, const struct cache_fingerprint *current);

/* The caller keeps its reference to obj but will not read, write or serve it until it calls
 * cache_object_reopen (struct engine_kept: a complete copy whose data file the kernel keeps
 * open as a passthrough backing file, which only reads it), and wrote nothing through
 * cache_object_data_fd since its last cache_object_account (the allocation is not read
 * again). If that reference is the only one and the object serves, its pending record is
 * persisted and its data file closed: the object then costs
 * no fd (true). The next cache_object_reopen or cache_object_open of it opens the data file
 * again (one openat). If others hold it too (false), or someone opens it meanwhile (warm,
 * verify), the data file is closed at the release that leaves the parker's reference alone.
 * The parker ends its parking with cache_object_reopen (its reference in use again) or gives
 * its reference back with cache_object_release_parked. A parked object may still be removed or
 * evicted: its space returns once every other holder of its data file (the kernel's backing
 * file) closes it. */
bool cache_object_park(struct cache_object *obj);
int cache_object_release_parked(struct cache_object *obj);

/* The same check as at open, for an attribute refresh: 0 if current matches, 1 if the object
 * was reset to current, -errno if the reset failed (the object then serves nothing). */
int cache_object_revalidate(struct cache_object *obj, const struct cache_fingerprint *current);

/* Sample BEFORE reading the origin for a fill; pass it to cache_object_fill(). Does not wait
 * for the object's lock: a value read after a change returned is the changed one. */
uint64_t cache_object_generation(struct cache_object *obj);

/* A hit copies [off, min(off + size, fingerprint size)) from the data file and returns the byte
 * count (0 at or after EOF). -ENODATA if any chunk of the range is absent (never a byte of an
 * absent chunk), or if the object changed during the copy. Other errors are the device's. */
ssize_t cache_object_read(struct cache_object *obj, void *buf, size_t size, off_t off);

/* buf holds size bytes just read from the origin at off. Stores every chunk the buffer covers
 * entirely (the last chunk of the file counts as covered when the buffer reaches the
 * fingerprint size); partial chunks and bytes past the fingerprint size are ignored. Returns
 * the number of chunks newly stored, -ESTALE if generation is not the current one, or -EDQUOT
 * if the new chunks would push usage past the capacity (nothing stored either way). The record
 * is persisted after persist_batch_chunks new chunks: a sync error there resets the object and
 * is returned. */
ssize_t cache_object_fill(struct cache_object *obj, uint64_t generation, const void *buf,
                          size_t size, off_t off);

/* cache_object_fill() of a buffer read from an origin file that has holes: data[0..count) are
 * the ranges of [off, off + size) that hold data in the origin (sorted, disjoint, inside it);
 * the rest of the range is a hole there (buf holds zeros for it). Only the data ranges are
 * written: the holes stay holes in the data file, which reads as zeros there and shows the
 * origin's holes to SEEK_DATA/SEEK_HOLE (at the cache file system's block size). A chunk
 * entirely in a hole is stored (present) without a byte written. */
ssize_t cache_object_fill_sparse(struct cache_object *obj, uint64_t generation, const void *buf,
                                 size_t size, off_t off, const struct cache_extent *data,
                                 size_t count);

/* The origin file's handle, kept with the object and persisted in its record, so that the
 * scrub can find the file later. The caller sets it once (has_origin_handle tells). */
void cache_object_set_origin_handle(struct cache_object *obj, const struct cache_origin_handle *h);
bool cache_object_has_origin_handle(struct cache_object *obj);

/* Write-through helpers, called after the same change succeeded on the origin. Each bumps the
 * generation (so concurrent fills sampled before are dropped) and then, unless the object
 * serves nothing anyway (removed, failed: they return 0), does what is said below. A
 * cache-device error resets the object (or leaves it failed) and is returned: the cache copy
 * then holds nothing, which is consistent with the origin. */
/* copies data into the present chunks it overlaps, marks absent chunks it covers entirely as
 * present, and extends the object if off + size is past its size. */
int cache_object_write(struct cache_object *obj, const void *data, size_t size, off_t off);
/* resizes the object; chunks past the new size are dropped. */
int cache_object_truncate(struct cache_object *obj, off_t new_size);
/* drops every chunk overlapping [off, off + len) (len 0: to the end) and frees its space. */
int cache_object_invalidate(struct cache_object *obj, off_t off, off_t len);
/* Records the origin's fingerprint after a change made through the mount, so that the next
 * open does not reset the object. A size the store was not told of (by write or truncate)
 * drops the chunks from the smaller size on; another dev/ino resets the object. Returns 0, or
 * 1 if chunks were dropped. */
int cache_object_set_fingerprint(struct cache_object *obj, const struct cache_fingerprint *fp);

/* Persists the record now (fdatasync of the data first). */
int cache_object_sync(struct cache_object *obj);
/* The caller wrote the data file itself (through cache_object_data_fd, e.g. mirroring bytes
 * under passthrough readers): account its allocation now, so usage and eviction see it. */
int cache_object_account(struct cache_object *obj);
/* Every chunk covering [off, off + len) (clipped to the fingerprint size) is present and
 * the object serves: a fill of that range would store nothing. */
bool cache_object_range_present(struct cache_object *obj, uint64_t off, uint64_t len);
/* Every chunk up to the fingerprint size is present (an empty file is complete). */
bool cache_object_complete(struct cache_object *obj);
/* The data file (O_RDWR), owned by the object: valid until the last cache_object_release(),
 * even after cache_object_remove(). For kernel passthrough of a complete object; the caller
 * must not write it, resize it or close it (dup it to keep it longer). Bytes of absent chunks
 * are unspecified, and invalidate/truncate/reset change the file under a reader. */
int cache_object_data_fd(struct cache_object *obj);
void cache_object_info(struct cache_object *obj, struct cache_object_info *info);

#endif
