/* cache_int: the store's private structures and the seams between its files:
 *   cache_store.c     the store: superblock, open-object table, usage
 *   cache_capacity.c  the saved capacity, admission of fills, pins, the eviction thread
 *   cache_scrub.c     the scrub thread: objects whose origin vanished or changed are removed
 *   cache_policy.c    what to evict (pure bookkeeping, with its own header)
 *   cache_object.c    the object API: locking, sharing, chunk arithmetic of reads and writes
 *   cache_disk.c      one object's files and the crash-ordering rules (cache_disk_*)
 *   cache_meta.c      the on-disk formats (pure)
 * Private to src/cache/ and its unit tests.
 */
#ifndef CACHEMAX_CACHE_INT_H
#define CACHEMAX_CACHE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/cache_meta.h"
#include "cache/cache_policy.h"
#include "cache/cache_store.h"
#include "util/siphash.h"

/* Buckets of the open-object table (a power of two; 512 KiB of pointers): the engine keeps up to
 * 131,072 objects open past their files' last close (engine_kept): two per bucket on average. */
#define CACHE_STORE_TABLE_SIZE 65536u
#define CACHE_SHARD_COUNT 256u         /* objects/00 .. objects/ff */
#define CACHE_OBJECT_NAME_SIZE 40u     /* "HH/" + 16 hex + "-" + 16 hex + NUL, rounded up */
#define CACHE_OBJECT_PATH_SIZE 64u     /* name + ".meta.tmp" + NUL, rounded up */
#define CACHE_DATA_SUFFIX ".data"
#define CACHE_META_SUFFIX ".meta"
#define CACHE_META_TMP_SUFFIX ".meta.tmp"
#define CACHE_BYTES_PER_BLOCK 512u     /* unit of st_blocks */

struct cache_store {
	int store_fd;      /* CACHEDIR/cachemax-v1, flock'ed for the store's lifetime */
	int objects_fd;    /* .../objects */
	uint32_t chunk_shift;
	uint32_t persist_batch;

	/* table_lock protects table[], open_objects and, in every object, refs, hash_next and
	 * in_table. */
	pthread_mutex_t table_lock;
	struct cache_object *table[CACHE_STORE_TABLE_SIZE];
	uint64_t open_objects;   /* objects allocated (in the table or still referenced) */

	/* Usage. Held shared by whoever changes a data file's allocation or existence until the
	 * change is accounted; held exclusive by the one scan. usage_known only changes under
	 * the exclusive hold; the counters are atomics because shared holders add concurrently. */
	pthread_rwlock_t usage_lock;
	bool usage_known;
	atomic_uint_fast64_t usage_bytes;
	atomic_uint_fast64_t usage_objects;

	/* Capacity (cache_capacity.c). Constant after open: capacity (0: unlimited, and then no
	 * policy and no thread), the watermarks and policy (the pointer; it locks itself). */
	uint64_t capacity;
	uint64_t high_bytes;
	uint64_t low_bytes;
	struct cache_policy *policy;
	atomic_uint_fast64_t reserved_bytes;   /* admitted fills not yet in usage_bytes */
	atomic_uint_fast64_t evictions;
	atomic_uint_fast64_t eviction_errors;
	/* evict_lock is held across one eviction (victim choice to unlink) and by pin changes, so
	 * a pin never races with the eviction of its key; close takes it to see no eviction's
	 * reference among open_objects. */
	pthread_mutex_t evict_lock;
	/* The eviction thread: wake_lock and wake_cond for its sleep; the flags are atomics so the
	 * paths that grow usage can test them cheaply. */
	pthread_mutex_t wake_lock;
	pthread_cond_t wake_cond;
	atomic_bool evict_wake;       /* a pass is due */
	atomic_bool evict_pressure;   /* a fill was refused: trim to the low watermark now */
	atomic_bool evictor_stop;     /* set under evict_lock by close */
	bool evictor_running;         /* a thread was started (open/close only) */
	pthread_t evictor;

	/* The scrub (cache_scrub.c): config and thread set by its start, stopped by close;
	 * scrub_lock and scrub_cond for its sleeps; the counters are atomics (read any time). */
	struct cache_scrub_config scrub_config;
	pthread_mutex_t scrub_lock;
	pthread_cond_t scrub_cond;
	atomic_bool scrub_stop;
	bool scrub_running;
	pthread_t scrub_thread;
	atomic_uint_fast64_t scrub_passes;
	atomic_uint_fast64_t scrub_checked;
	atomic_uint_fast64_t scrub_reclaimed;
	atomic_uint_fast64_t scrub_reclaimed_bytes;
	uint64_t origin_dev;          /* the origin root's st_dev (constant) */
	uint8_t path_secret[SIPHASH_KEY_BYTES];   /* cache_store_path_key's (constant) */
};

struct cache_object {
	/* Set at creation, then constant. */
	struct cache_store *store;
	struct cache_key key;
	char name[CACHE_OBJECT_NAME_SIZE];   /* "HH/DEV-INO", relative to objects_fd */

	/* store->table_lock */
	uint32_t refs;
	bool in_table;
	struct cache_object *hash_next;

	/* lock protects everything below. data_fd is constant once loaded, so a reader may use it
	 * after dropping the lock (it re-checks generation afterwards) -- except while the object
	 * is parked (cache_object_park: loaded, data_fd -1, one reference, the parker's, which
	 * reads nothing): every open and reopen opens it again first. */
	pthread_mutex_t lock;
	bool loaded;           /* data file open, map matches the record or was reset */
	bool removed;          /* cache_object_remove(): serves and stores nothing */
	bool discarded;        /* cache_object_discard() while open: removed at the last release */
	bool failed;           /* a reset after a device error failed: serves and stores nothing */
	bool divorced;         /* removed, its name given to an open of another file with the same
	                        * key while others held it: still serves their reads of what it
	                        * held (cache_object_open) */
	bool parker;           /* one reference is cache_object_park's: the data file is closed
	                        * whenever that one is the only reference left */
	int data_fd;
	struct cache_fingerprint fp;
	/* Bumped (under lock) before any present byte may change or a chunk is dropped; read
	 * without the lock by cache_object_generation(). */
	_Atomic uint64_t generation;
	uint8_t *map;          /* bitmap, on-disk layout; capacity map_capacity bytes */
	uint64_t map_capacity;
	uint64_t chunk_count;  /* chunks_for(fp.size) */
	uint64_t present_count;
	bool record_on_disk;   /* a persisted record may claim chunks: withdraw before changing them */
	bool record_stale;     /* map or fingerprint differ from the persisted record */
	bool data_unsynced;    /* data written since the last fdatasync */
	uint32_t unpersisted_chunks;   /* chunks stored since the last record write */
	uint64_t allocated;    /* data file st_blocks * 512 as last accounted */
	struct cache_origin_handle handle;   /* from the record or the caller; bytes 0: none */
};

/* Names: "HH/DEV-INO" for key (the caller's buffer holds CACHE_OBJECT_NAME_SIZE). */
void cache_object_name(struct cache_key key, char name[CACHE_OBJECT_NAME_SIZE]);
/* Shard index 0..CACHE_SHARD_COUNT-1 and table bucket of a key. */
uint32_t cache_key_hash(struct cache_key key);

/* cache_store.c: table references. cache_store_object_get() returns the key's object with one
 * more reference, creating an unloaded one if needed (-ENOMEM). cache_store_object_unref()
 * drops one and says whether it was the last (out of the table then; the caller frees it
 * with cache_object_free): called with obj->lock held, by cache_object_unlock_put only.
 * cache_store_object_detach() takes it out of the table so that the next open of its key
 * creates a fresh object. */
int cache_store_object_get(struct cache_store *store, struct cache_key key,
                           struct cache_object **out);
bool cache_store_object_unref(struct cache_object *obj);
/* cache_object.c: drops the caller's reference with obj->lock held (out of the table first if
 * detach), then lets the lock go and frees the object if that was the last reference. Every
 * holder lets go this way, so that a count of references read under obj->lock (the last
 * release's decision) stays exact while that lock is held, and no holder unlocks a mutex that
 * another one's put has freed. */
void cache_object_unlock_put(struct cache_object *obj, bool detach);
/* Like cache_store_object_get(), but only if the key has no object in the table (-EBUSY
 * otherwise): a new, unloaded object that an open arriving meanwhile waits for (obj->lock). */
int cache_store_object_get_unused(struct cache_store *store, struct cache_key key,
                                  struct cache_object **out);
/* The keys of the data files in shard (0..CACHE_SHARD_COUNT-1): a new array in *keys (free
 * it), *count of them; 0 (also for a shard that does not exist) or -errno. */
int cache_store_shard_keys(struct cache_store *store, uint32_t shard, struct cache_key **keys,
                           size_t *count);
void cache_store_object_detach(struct cache_object *obj);

/* Writes buf to dir_fd/tmp_name, fsyncs it, renames it over name and fsyncs the directory. */
/* Reads up to size bytes of the small file name in dir_fd (the store's superblock, capacity):
 * the byte count, or -errno (-ENOENT if there is none). */
ssize_t cache_store_file_read(int dir_fd, const char *name, void *buf, size_t size);
int cache_store_file_replace(int dir_fd, const char *name, const char *tmp_name, const void *buf,
                             size_t size);

/* The usage lock, shared: taken with obj->lock held around anything that may change a data
 * file's allocation or existence, until the change is passed on with cache_store_usage_add()
 * (ignored until the first scan has counted everything). */
void cache_store_usage_enter(struct cache_store *store);
void cache_store_usage_leave(struct cache_store *store);
void cache_store_usage_add(struct cache_store *store, int64_t bytes, int64_t objects);

/* cache_capacity.c. cache_capacity_start() resolves and saves the capacity of config, and with
 * one creates the policy and starts the eviction thread; cache_capacity_stop() stops it (after
 * evictor_stop was set) and frees the policy; both are for open and close only. */
int cache_capacity_start(struct cache_store *store, const struct cache_store_config *config);
void cache_capacity_stop(struct cache_store *store);
/* -EINVAL if the capacity part of config is bad (before anything is created). */
int cache_capacity_config_check(const struct cache_store_config *config);
/* Admission of a fill of bytes new bytes into an object holding object_bytes (obj->lock and
 * the usage lock held shared): 0 with *reserved set (to pass to cache_capacity_unreserve() once
 * the fill is accounted), or -EDQUOT: the cache is full (and the eviction thread is woken to
 * make room), or the object would pass the low watermark (one object never does: else, with
 * everything else evicted, the evictor would evict the very object being filled, and a file as
 * large as the cache would be filled and dropped over and over). */
int cache_capacity_reserve(struct cache_store *store, uint64_t object_bytes, uint64_t bytes,
                           uint64_t *reserved);
void cache_capacity_unreserve(struct cache_store *store, uint64_t reserved);
/* Usage grew: wakes the eviction thread if usage passed the high watermark. */
void cache_capacity_grew(struct cache_store *store);
/* The policy's view of an object (obj->lock held): an open, an allocation change, removal. */
void cache_capacity_object_opened(struct cache_object *obj);
void cache_capacity_object_resized(struct cache_object *obj);
void cache_capacity_object_removed(struct cache_object *obj);

/* cache_scrub.c: stops the scrub thread if one runs (close only). */
void cache_scrub_stop(struct cache_store *store);

/* cache_object.c: closes the data file and frees an object nobody references. */
void cache_object_free(struct cache_object *obj);

/* ---- Chunk geometry and map (obj->lock held) -------------------------------------------- */

static inline uint64_t cache_chunk_index(const struct cache_object *obj, uint64_t off)
{
	return off >> obj->store->chunk_shift;
}

static inline uint64_t cache_chunk_start(const struct cache_object *obj, uint64_t k)
{
	return k << obj->store->chunk_shift;
}

/* End of chunk k within the file: the last chunk may be partial. */
static inline uint64_t cache_chunk_end(const struct cache_object *obj, uint64_t k)
{
	uint64_t end = (k + 1) << obj->store->chunk_shift;
	return end < obj->fp.size ? end : obj->fp.size;
}

static inline bool cache_chunk_present(const struct cache_object *obj, uint64_t k)
{
	return (obj->map[k / 8] >> (k % 8)) & 1;
}

static inline void cache_chunk_set(struct cache_object *obj, uint64_t k)
{
	if (!cache_chunk_present(obj, k)) {
		obj->map[k / 8] |= (uint8_t)(1u << (k % 8));
		obj->present_count++;
	}
}

static inline void cache_chunk_clear(struct cache_object *obj, uint64_t k)
{
	if (cache_chunk_present(obj, k)) {
		obj->map[k / 8] &= (uint8_t)~(1u << (k % 8));
		obj->present_count--;
	}
}

/* Any chunk of [first, last] (clipped to the map) present. */
static inline bool cache_chunks_any_present(const struct cache_object *obj, uint64_t first,
                                            uint64_t last)
{
	for (uint64_t k = first; k <= last && k < obj->chunk_count; k++)
		if (cache_chunk_present(obj, k))
			return true;
	return false;
}

static inline bool cache_object_servable(const struct cache_object *obj)
{
	return obj->loaded && !obj->removed && !obj->failed;
}

/* ---- cache_disk.c: with obj->lock held; those marked (usage) also with the usage lock held
 * shared. All return 0 or -errno unless said otherwise. ------------------------------------ */

/* Loads a new object's data file and record for current (usage). Returns 0, or
 * CACHE_OBJECT_RESET if a record was found and not adopted. */
int cache_disk_load(struct cache_object *obj, const struct cache_fingerprint *current);
/* Rule 1: fdatasync the data, then write the record (tmp, fsync, rename) if the map or the
 * fingerprint changed (usage). A failed data sync resets the object; a failed record write
 * leaves the previous record, which claims only durable bytes. */
int cache_disk_persist(struct cache_object *obj);
/* cache_disk_persist() once persist_batch chunks are waiting (usage). */
int cache_disk_persist_if_due(struct cache_object *obj);
/* Rule 2: after 0, no record on disk claims any byte of the data file. */
int cache_disk_withdraw(struct cache_object *obj);
/* Empties the object for fp: withdraw, truncate the data file to 0 then to fp->size (usage).
 * Any failure leaves the object failed. Bumps the generation. */
int cache_disk_reset(struct cache_object *obj, const struct cache_fingerprint *fp);
/* A cache-device error: reset (failed if even that fails); returns err (usage). */
int cache_disk_fail(struct cache_object *obj, int err);
/* Resizes the data file and the map to size bytes; new chunks are absent. */
int cache_disk_resize(struct cache_object *obj, uint64_t size);
/* Withdraws, drops chunks [first, last] and punches their bytes out (usage). */
int cache_disk_drop_chunks(struct cache_object *obj, uint64_t first, uint64_t last);
/* Re-reads the data file's allocation and passes the change to the store (usage). */
int cache_disk_account(struct cache_object *obj);
/* Writes the part of buf (which holds [off, end)) that falls in chunks [first, last]: of that
 * part, only what lies in data[0..count) (cache_object_fill_sparse), the rest is made a hole
 * in the data file (punched if it held bytes). */
int cache_disk_write_chunks(struct cache_object *obj, const void *buf, uint64_t off, uint64_t end,
                            uint64_t first, uint64_t last, const struct cache_extent *data,
                            size_t count);
/* The persisted record of an object that is not loaded (the scrub): 0 with *record (pointing
 * into *buf, to free), -ENOENT (none), -EBADMSG (not an intact record of this key), or the
 * device's error. */
int cache_disk_record_peek(struct cache_object *obj, struct cache_meta_record *record,
                           uint8_t **buf);
/* pread until size bytes or EOF: the count, or -errno. */
ssize_t cache_disk_pread(int fd, void *buf, size_t size, off_t off);
/* A parked object's data file opened again (loaded, data_fd -1): 0, or the device's error
 * (-ENOENT: removed by hand). */
int cache_disk_unpark(struct cache_object *obj);
/* Eviction: unlinks the record, then the data (usage). 0, -ENOENT if neither existed, or the
 * device's error (the object is then failed). Marks the object removed. */
int cache_disk_unlink(struct cache_object *obj);
/* As cache_disk_unlink, but the object's holders keep what it holds: its map, fingerprint and
 * generation stay, so their reads of its present chunks still hit (its data file, open, is
 * theirs alone now). Marks the object removed and divorced. */
int cache_disk_divorce(struct cache_object *obj);

#endif
