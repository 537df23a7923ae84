/* cache_object: the object API — opening and sharing objects, reads, fills and the
 * write-through helpers — as locking and chunk arithmetic over cache_disk.c, which owns the
 * files and the crash-ordering rules. Every change bumps the generation first; readers copy
 * outside the lock and re-check it afterwards.
 */
#include "cache/cache_int.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Open and release ------------------------------------------------------------------- */

/* fn(obj) with the object's lock and the usage lock (shared) held. */
static int with_usage(struct cache_object *obj, int (*fn)(struct cache_object *))
{
	int rc;
	pthread_mutex_lock(&obj->lock);
	cache_store_usage_enter(obj->store);
	rc = fn(obj);
	cache_store_usage_leave(obj->store);
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

void cache_object_unlock_put(struct cache_object *obj, bool detach)
{
	bool last;
	if (detach)
		cache_store_object_detach(obj);
	last = cache_store_object_unref(obj);
	pthread_mutex_unlock(&obj->lock);
	if (last)
		cache_object_free(obj);
}

/* Held by nobody but `others` more: with obj->lock held, no other reference can be taken that
 * is not waiting for that lock (an open, which then finds the object removed and starts afresh,
 * or parked and opens its data file again), and none is dropped (every holder drops its own
 * with the lock held: cache_object_unlock_put), so a count taken here stays exact until this
 * holder lets the lock go. */
static bool references_are(struct cache_object *obj, uint32_t refs)
{
	bool equal;
	pthread_mutex_lock(&obj->store->table_lock);
	equal = obj->refs == refs;
	pthread_mutex_unlock(&obj->store->table_lock);
	return equal;
}
static bool last_reference(struct cache_object *obj) { return references_are(obj, 1); }

int cache_object_open(struct cache_store *store, struct cache_key key,
                      const struct cache_fingerprint *current, struct cache_object **out)
{
	struct cache_object *obj;
	bool divorced = false, gone_name = false;
	int rc;

	if (cache_meta_chunks_for(current->size, store->chunk_shift) > CACHE_OBJECT_MAX_CHUNKS)
		return -EFBIG;   /* before anything is created for it */
	for (;;) {
		rc = cache_store_object_get(store, key, &obj);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&obj->lock);
		/* A path key's discarded object is the copy of a name that went (unlink, rename):
		 * whatever opens the key now is another file, whatever its fingerprint. */
		gone_name = obj->discarded && key.dev == CACHE_KEY_DEV_PATH;
		if (!obj->removed && obj->loaded && !obj->failed &&
		    (gone_name || !cache_fingerprint_equal(current, &obj->fp)) && !last_reference(obj)) {
			/* Another file, or another version, while others hold the object: an open
			 * file of a deleted file whose inode number a new file got reads its data
			 * file (a passthrough backing file, or user-space hits). Not reset under
			 * them: they keep it (divorced, out of the table), this open takes a fresh
			 * one. */
			cache_store_usage_enter(store);
			rc = cache_disk_divorce(obj);
			cache_store_usage_leave(store);
			if (rc < 0) {
				cache_object_unlock_put(obj, false);
				return rc;
			}
			divorced = true;
		}
		if (!obj->removed)
			break;
		/* Removed while we looked it up (or divorced above): it is leaving the table;
		 * take a fresh one. */
		cache_object_unlock_put(obj, true);
	}
	cache_store_usage_enter(store);
	if (!obj->loaded) {
		rc = cache_disk_load(obj, current);
	} else if (obj->data_fd < 0 && (rc = cache_disk_unpark(obj)) < 0) {
		;   /* parked, and its data file cannot be opened again: the device's error */
	} else if (obj->failed || (obj->discarded && key.dev == CACHE_KEY_DEV_PATH) ||
	           !cache_fingerprint_equal(current, &obj->fp)) {
		/* Another file (or another version): a discard of the deleted one is not its. */
		obj->discarded = false;
		rc = cache_disk_reset(obj, current);
		if (rc == 0)
			rc = CACHE_OBJECT_RESET;
	}
	if (rc == 0 && divorced)
		rc = CACHE_OBJECT_RESET;   /* what was cached under the key is not this open's */
	if (rc >= 0)
		cache_capacity_object_opened(obj);   /* in the usage lock: ordered with the scan */
	cache_store_usage_leave(store);
	if (rc < 0) {
		cache_object_unlock_put(obj, false);
		return rc;
	}
	pthread_mutex_unlock(&obj->lock);
	*out = obj;
	return rc;
}

/* Every release persists what is pending, so the last one leaves nothing unpersisted, and
 * accounts growth through the data fd (mmap, the fs layer's mirror writes) before it closes. */
static int release_locked(struct cache_object *obj)
{
	int rc = cache_disk_persist(obj);
	if (obj->loaded && !obj->removed && obj->data_fd >= 0)   /* a parked one was accounted */
		cache_disk_account(obj);
	return rc;
}


/* Close the data file of an object held only by its parker now (obj->lock): its record
 * persisted (and its allocation counted by the caller if anyone wrote it). */
static void park_locked(struct cache_object *obj)
{
	/* Nothing in the data file that a record claims (an empty file's copy, reset and never
	 * written): nothing to sync before it is closed. */
	if (obj->present_count == 0 && !obj->record_on_disk)
		obj->data_unsynced = false;
	if (cache_disk_persist(obj) == 0 && cache_object_servable(obj) && !obj->data_unsynced) {
		sys_close(obj->data_fd);
		obj->data_fd = -1;
	}
}

int cache_object_release(struct cache_object *obj)
{
	bool drop;
	int rc;

	pthread_mutex_lock(&obj->lock);
	cache_store_usage_enter(obj->store);
	/* An object without a chunk is only an empty file: an open re-creates it at once, while
	 * keeping it would leave one file per file ever opened (written through to the origin,
	 * deleted) in the cache. A discarded one belongs to a deleted file: nothing to persist; it
	 * goes even if failed (a device error withdrawing its record). Any other failed one is
	 * reset by its next open (or fails). */
	drop = (obj->discarded || (cache_object_servable(obj) && obj->present_count == 0)) &&
	       obj->loaded && !obj->removed && last_reference(obj);
	if (drop) {
		rc = cache_disk_unlink(obj);   /* a failure leaves it failed: the next open resets it */
		if (rc == -ENOENT)
			rc = 0;   /* its files were removed by hand: gone all the same */
	} else {
		rc = release_locked(obj);
		/* Someone else's use of a parked object (warm, verify, a report) opened its data file
		 * again: closed when only the parker is left, so parked objects stay without fds. */
		if (rc == 0 && obj->parker && obj->data_fd >= 0 && references_are(obj, 2))
			park_locked(obj);
	}
	cache_store_usage_leave(obj->store);
	/* Dropped before the lock goes: a release that runs next counts without this reference,
	 * so of two last releases at once one sees itself last (drops a discarded object's files)
	 * rather than both seeing the other and leaving its record for the key's next file. */
	cache_object_unlock_put(obj, false);
	return rc;
}

void cache_object_free(struct cache_object *obj)
{
	if (obj->data_fd >= 0)
		sys_close(obj->data_fd);
	free(obj->map);
	pthread_mutex_destroy(&obj->lock);
	free(obj);
}

int cache_object_revalidate(struct cache_object *obj, const struct cache_fingerprint *current)
{
	int rc = 0;

	pthread_mutex_lock(&obj->lock);
	if (obj->divorced && !cache_fingerprint_equal(current, &obj->fp))
		obj->divorced = false;   /* its file changed: the bytes it held are served no more */
	if (obj->loaded && !obj->removed &&
	    (obj->failed || !cache_fingerprint_equal(current, &obj->fp))) {
		cache_store_usage_enter(obj->store);
		rc = cache_disk_reset(obj, current);
		cache_store_usage_leave(obj->store);
		if (rc == 0)
			rc = CACHE_OBJECT_RESET;
	}
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

int cache_object_reopen(struct cache_object *obj, const struct cache_fingerprint *current)
{
	int rc = 0;

	pthread_mutex_lock(&obj->lock);
	obj->parker = false;   /* the parker's reference is in use again */
	if (!obj->loaded || obj->removed || obj->discarded) {
		rc = -ESTALE;
	} else if (obj->data_fd < 0 && cache_disk_unpark(obj) < 0) {
		rc = -ESTALE;   /* its data file is gone (removed by hand): open it afresh */
	} else {
		cache_store_usage_enter(obj->store);
		if (obj->failed || !cache_fingerprint_equal(current, &obj->fp)) {
			rc = cache_disk_reset(obj, current);
			if (rc == 0)
				rc = CACHE_OBJECT_RESET;
		}
		if (rc >= 0)
			cache_capacity_object_opened(obj);   /* as an open: the policy sees the use */
		cache_store_usage_leave(obj->store);
	}
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

bool cache_object_park(struct cache_object *obj)
{
	bool parked = false;

	pthread_mutex_lock(&obj->lock);
	obj->parker = true;
	/* Not a discarded one (a deleted file's): its last release removes it. */
	if (cache_object_servable(obj) && !obj->discarded && obj->data_fd >= 0 &&
	    last_reference(obj)) {
		/* Nothing pending on disk. Its allocation is not read again: the parker only read
		 * it since (the caller's contract), so what the last change accounted stands. */
		cache_store_usage_enter(obj->store);
		park_locked(obj);
		cache_store_usage_leave(obj->store);
		parked = obj->data_fd < 0;
	}
	pthread_mutex_unlock(&obj->lock);
	return parked;
}

int cache_object_release_parked(struct cache_object *obj)
{
	pthread_mutex_lock(&obj->lock);
	obj->parker = false;
	pthread_mutex_unlock(&obj->lock);
	return cache_object_release(obj);
}

/* ---- Reads and fills -------------------------------------------------------------------- */

uint64_t cache_object_generation(struct cache_object *obj)
{
	/* No lock: a fill holds it across its write to the data file. */
	return atomic_load(&obj->generation);
}

/* off + size as a file offset, or -EINVAL if it would not be one. */
static int range_check(off_t off, uint64_t size)
{
	if (off < 0 || size > (uint64_t)INT64_MAX - (uint64_t)off)
		return -EINVAL;
	return 0;
}

/* Every chunk of [start, end) is present (start < end). */
static bool range_present(const struct cache_object *obj, uint64_t start, uint64_t end)
{
	for (uint64_t k = cache_chunk_index(obj, start); k <= cache_chunk_index(obj, end - 1); k++)
		if (!cache_chunk_present(obj, k))
			return false;
	return true;
}

bool cache_object_range_present(struct cache_object *obj, uint64_t off, uint64_t len)
{
	bool present;
	pthread_mutex_lock(&obj->lock);
	if (!cache_object_servable(obj)) {
		present = false;
	} else {
		uint64_t end = len > obj->fp.size - (off < obj->fp.size ? off : obj->fp.size)
		               ? obj->fp.size : off + len;
		present = off >= end || range_present(obj, off, end);
	}
	pthread_mutex_unlock(&obj->lock);
	return present;
}

ssize_t cache_object_read(struct cache_object *obj, void *buf, size_t size, off_t off)
{
	uint64_t start = (uint64_t)off, end, generation;
	ssize_t want, n;
	int fd;

	if (range_check(off, size) < 0)
		return -EINVAL;
	pthread_mutex_lock(&obj->lock);
	if (!cache_object_servable(obj) && !(obj->divorced && !obj->failed)) {
		want = -ENODATA;
	} else if (start >= obj->fp.size || size == 0) {
		want = 0;
	} else {
		end = start + size < obj->fp.size ? start + size : obj->fp.size;
		want = range_present(obj, start, end) ? (ssize_t)(end - start) : -ENODATA;
	}
	generation = obj->generation;
	fd = obj->data_fd;
	pthread_mutex_unlock(&obj->lock);
	if (want <= 0)
		return want;

	n = cache_disk_pread(fd, buf, (size_t)want, off);

	/* Every change bumps the generation, under the lock, before it touches a byte of the copy:
	 * if the bytes we read saw a change, this load sees its bump. A hit needs no lock here. */
	if (atomic_load(&obj->generation) != generation)
		return -ENODATA;   /* changed under the copy: the bytes may be a mix */
	if (n == want)
		return n;
	pthread_mutex_lock(&obj->lock);
	if (obj->generation != generation) {
		n = -ENODATA;
	} else {
		/* The device failed, or the data file is shorter than the map says. */
		cache_store_usage_enter(obj->store);
		n = cache_disk_fail(obj, n < 0 ? (int)n : -EIO);
		cache_store_usage_leave(obj->store);
	}
	pthread_mutex_unlock(&obj->lock);
	return n;
}

/* Chunk k is entirely inside [off, end) (its end clipped to the file size). */
static bool chunk_covered(const struct cache_object *obj, uint64_t k, uint64_t off, uint64_t end)
{
	return cache_chunk_start(obj, k) >= off && cache_chunk_end(obj, k) <= end;
}

/* The first chunk that starts at or after off. */
static uint64_t chunk_from(const struct cache_object *obj, uint64_t off)
{
	uint64_t k = cache_chunk_index(obj, off);
	return cache_chunk_start(obj, k) == off ? k : k + 1;
}

/* Bytes of [lo, hi) inside data[0..count). */
static uint64_t data_bytes(uint64_t lo, uint64_t hi, const struct cache_extent *data, size_t count)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < count; i++) {
		uint64_t a = data[i].off > lo ? data[i].off : lo;
		uint64_t b = data[i].off + data[i].len < hi ? data[i].off + data[i].len : hi;
		bytes += b > a ? b - a : 0;
	}
	return bytes;
}

/* What storing the absent chunks that [start, end) covers entirely would allocate: their data
 * (holes allocate nothing), in whole blocks of the smallest chunk size. */
static uint64_t fill_new_bytes(const struct cache_object *obj, uint64_t start, uint64_t end,
                               const struct cache_extent *data, size_t count)
{
	uint64_t bytes = 0;

	for (uint64_t k = chunk_from(obj, start);
	     k < obj->chunk_count && chunk_covered(obj, k, start, end); k++) {
		uint64_t len = data_bytes(cache_chunk_start(obj, k), cache_chunk_end(obj, k), data, count);
		if (!cache_chunk_present(obj, k))
			bytes += (len + CACHE_CHUNK_SIZE_MIN - 1) / CACHE_CHUNK_SIZE_MIN *
			         CACHE_CHUNK_SIZE_MIN;
	}
	return bytes;
}

/* Stores the absent chunks that [start, end) covers entirely; counts them in *stored. */
static int fill_locked(struct cache_object *obj, const void *buf, uint64_t start, uint64_t end,
                       const struct cache_extent *data, size_t count, uint64_t *stored)
{
	uint64_t k = chunk_from(obj, start);

	while (k < obj->chunk_count && chunk_covered(obj, k, start, end)) {
		uint64_t last = k;
		int rc;
		if (cache_chunk_present(obj, k)) {
			k++;
			continue;
		}
		while (last + 1 < obj->chunk_count && !cache_chunk_present(obj, last + 1) &&
		       chunk_covered(obj, last + 1, start, end))
			last++;
		rc = cache_disk_write_chunks(obj, buf, start, end, k, last, data, count);
		if (rc < 0)
			return rc;
		*stored += last + 1 - k;
		for (; k <= last; k++)
			cache_chunk_set(obj, k);
	}
	if (*stored == 0)
		return 0;
	obj->data_unsynced = true;
	obj->record_stale = true;
	obj->unpersisted_chunks += (uint32_t)*stored;
	return cache_disk_account(obj);
}

/* The data ranges are sorted, disjoint and inside [off, off + size). */
static bool extents_valid(uint64_t off, uint64_t size, const struct cache_extent *data,
                          size_t count)
{
	uint64_t pos = off;
	for (size_t i = 0; i < count; i++) {
		if (data[i].off < pos || data[i].len > off + size - data[i].off)
			return false;
		pos = data[i].off + data[i].len;
	}
	return true;
}

ssize_t cache_object_fill_sparse(struct cache_object *obj, uint64_t generation, const void *buf,
                                 size_t size, off_t off, const struct cache_extent *data,
                                 size_t count)
{
	struct cache_store *store = obj->store;
	uint64_t start = (uint64_t)off, end, stored = 0, reserved;
	int rc;

	if (range_check(off, size) < 0 || !extents_valid(start, size, data, count))
		return -EINVAL;
	pthread_mutex_lock(&obj->lock);
	if (!cache_object_servable(obj) || generation != obj->generation) {
		pthread_mutex_unlock(&obj->lock);
		return -ESTALE;
	}
	end = start + size < obj->fp.size ? start + size : obj->fp.size;
	cache_store_usage_enter(store);
	rc = cache_capacity_reserve(store, obj->allocated,
	                            store->capacity ? fill_new_bytes(obj, start, end, data, count) : 0,
	                            &reserved);
	if (rc == 0) {
		rc = fill_locked(obj, buf, start, end, data, count, &stored);
		rc = rc < 0 ? cache_disk_fail(obj, rc) : cache_disk_persist_if_due(obj);
		cache_capacity_unreserve(store, reserved);
	}
	cache_store_usage_leave(store);
	pthread_mutex_unlock(&obj->lock);
	return rc < 0 ? rc : (ssize_t)stored;
}

ssize_t cache_object_fill(struct cache_object *obj, uint64_t generation, const void *buf,
                          size_t size, off_t off)
{
	struct cache_extent all = { (uint64_t)off, size };
	return cache_object_fill_sparse(obj, generation, buf, size, off, &all, 1);
}

void cache_object_set_origin_handle(struct cache_object *obj, const struct cache_origin_handle *h)
{
	if (h->bytes > CACHE_HANDLE_MAX)
		return;
	pthread_mutex_lock(&obj->lock);
	if (obj->handle.bytes != h->bytes || obj->handle.type != h->type ||
	    memcmp(obj->handle.data, h->data, h->bytes)) {
		memset(&obj->handle, 0, sizeof(obj->handle));
		obj->handle.type = h->type;
		obj->handle.bytes = h->bytes;
		memcpy(obj->handle.data, h->data, h->bytes);
		obj->record_stale = true;   /* the next persist writes it */
	}
	pthread_mutex_unlock(&obj->lock);
}

bool cache_object_has_origin_handle(struct cache_object *obj)
{
	bool has;
	pthread_mutex_lock(&obj->lock);
	has = obj->handle.bytes != 0;
	pthread_mutex_unlock(&obj->lock);
	return has;
}

/* ---- Write-through ---------------------------------------------------------------------- */

/* Present chunks take the new bytes in place; absent ones only if entirely covered. */
static bool chunk_writable(const struct cache_object *obj, uint64_t k, uint64_t off, uint64_t end)
{
	return cache_chunk_present(obj, k) || chunk_covered(obj, k, off, end);
}

static int write_locked(struct cache_object *obj, const void *data, uint64_t start, uint64_t end)
{
	struct cache_extent all = { start, end - start };   /* written bytes are data */
	uint64_t first, last, stored = 0;
	bool changed = end > obj->fp.size;
	int rc;

	if (changed) {
		rc = cache_disk_resize(obj, end);
		if (rc < 0)
			return rc;
	}
	first = cache_chunk_index(obj, start);
	last = cache_chunk_index(obj, end - 1);
	if (cache_chunks_any_present(obj, first, last)) {
		rc = cache_disk_withdraw(obj);   /* rule 2: bytes a record may claim are about to change */
		if (rc < 0)
			return rc;
	}
	for (uint64_t k = first; k <= last;) {
		uint64_t run_end = k;
		if (!chunk_writable(obj, k, start, end)) {
			k++;
			continue;
		}
		while (run_end + 1 <= last && chunk_writable(obj, run_end + 1, start, end))
			run_end++;
		rc = cache_disk_write_chunks(obj, data, start, end, k, run_end, &all, 1);
		if (rc < 0)
			return rc;
		changed = true;
		for (; k <= run_end; k++) {
			stored += !cache_chunk_present(obj, k);
			cache_chunk_set(obj, k);
		}
	}
	if (!changed)
		return 0;   /* only absent chunks, not covered: the copy and its record stay as they were */
	obj->data_unsynced = true;
	obj->record_stale = true;
	obj->unpersisted_chunks += (uint32_t)stored;
	return cache_disk_account(obj);
}

int cache_object_write(struct cache_object *obj, const void *data, size_t size, off_t off)
{
	int rc = 0;

	if (range_check(off, size) < 0)
		return -EINVAL;
	pthread_mutex_lock(&obj->lock);
	obj->generation++;
	if (cache_object_servable(obj) && size) {
		cache_store_usage_enter(obj->store);
		rc = write_locked(obj, data, (uint64_t)off, (uint64_t)off + size);
		rc = rc < 0 ? cache_disk_fail(obj, rc) : cache_disk_persist_if_due(obj);
		cache_store_usage_leave(obj->store);
	}
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

int cache_object_truncate(struct cache_object *obj, off_t new_size)
{
	int rc = 0;

	if (new_size < 0)
		return -EINVAL;
	pthread_mutex_lock(&obj->lock);
	obj->generation++;
	if (!cache_object_servable(obj) || (uint64_t)new_size == obj->fp.size)
		goto unlock;
	cache_store_usage_enter(obj->store);
	if ((uint64_t)new_size < obj->fp.size && obj->present_count)
		rc = cache_disk_withdraw(obj);
	if (rc == 0)
		rc = cache_disk_resize(obj, (uint64_t)new_size);
	if (rc == 0)
		rc = cache_disk_account(obj);
	if (rc < 0)
		rc = cache_disk_fail(obj, rc);
	cache_store_usage_leave(obj->store);
unlock:
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

int cache_object_invalidate(struct cache_object *obj, off_t off, off_t len)
{
	uint64_t end;
	int rc = 0;

	if (off < 0 || len < 0)
		return -EINVAL;
	pthread_mutex_lock(&obj->lock);
	obj->generation++;
	obj->divorced = false;   /* what a divorced object held is its holders' no more */
	end = len == 0 || (uint64_t)len > obj->fp.size ? obj->fp.size : (uint64_t)off + (uint64_t)len;
	if (end > obj->fp.size)
		end = obj->fp.size;
	if (!cache_object_servable(obj) || (uint64_t)off >= end)
		goto unlock;
	cache_store_usage_enter(obj->store);
	rc = cache_disk_drop_chunks(obj, cache_chunk_index(obj, (uint64_t)off),
	                            cache_chunk_index(obj, end - 1));
	if (rc < 0)
		rc = cache_disk_fail(obj, rc);
	cache_store_usage_leave(obj->store);
unlock:
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

/* A size change nobody reported: the bytes from the smaller size on are unknown. Returns 0 or
 * CACHE_OBJECT_RESET if chunks were dropped. */
static int resize_unreported(struct cache_object *obj, const struct cache_fingerprint *fp)
{
	uint64_t from = cache_chunk_index(obj, fp->size < obj->fp.size ? fp->size : obj->fp.size);
	bool dropped = cache_chunks_any_present(obj, from, obj->chunk_count);
	int rc;

	obj->generation++;
	rc = cache_disk_drop_chunks(obj, from, obj->chunk_count);
	if (rc == 0)
		rc = cache_disk_resize(obj, fp->size);
	if (rc == 0)
		rc = cache_disk_account(obj);
	if (rc < 0)
		return rc;
	obj->fp = *fp;
	return dropped ? CACHE_OBJECT_RESET : 0;
}

int cache_object_set_fingerprint(struct cache_object *obj, const struct cache_fingerprint *fp)
{
	int rc = 0;

	pthread_mutex_lock(&obj->lock);
	if (cache_fingerprint_equal(fp, &obj->fp))
		goto unlock;
	obj->divorced = false;   /* its file changed: the bytes it held are served no more */
	if (!cache_object_servable(obj))
		goto unlock;
	cache_store_usage_enter(obj->store);
	if (fp->dev != obj->fp.dev || fp->ino != obj->fp.ino) {
		rc = cache_disk_reset(obj, fp);   /* another file: nothing here is its bytes */
		if (rc == 0)
			rc = CACHE_OBJECT_RESET;
	} else if (fp->size != obj->fp.size) {
		rc = resize_unreported(obj, fp);
		if (rc < 0)
			rc = cache_disk_fail(obj, rc);
	} else {
		obj->fp = *fp;
		obj->record_stale = true;
	}
	cache_store_usage_leave(obj->store);
unlock:
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

/* ---- State ------------------------------------------------------------------------------ */

int cache_object_sync(struct cache_object *obj)
{
	return with_usage(obj, cache_disk_persist);
}

static int account_locked(struct cache_object *obj)
{
	return obj->loaded && !obj->removed ? cache_disk_account(obj) : 0;
}

int cache_object_account(struct cache_object *obj)
{
	return with_usage(obj, account_locked);
}

bool cache_object_complete(struct cache_object *obj)
{
	bool complete;
	pthread_mutex_lock(&obj->lock);
	complete = cache_object_servable(obj) && obj->present_count == obj->chunk_count;
	pthread_mutex_unlock(&obj->lock);
	return complete;
}

int cache_object_data_fd(struct cache_object *obj)
{
	return obj->data_fd;
}

void cache_object_info(struct cache_object *obj, struct cache_object_info *info)
{
	pthread_mutex_lock(&obj->lock);
	info->fingerprint = obj->fp;
	info->generation = obj->generation;
	info->chunk_count = obj->chunk_count;
	info->present_chunks = obj->present_count;
	info->allocated_bytes = obj->allocated;
	info->record_on_disk = obj->record_on_disk;
	info->failed = obj->failed;
	info->removed = obj->removed;
	info->discarded = obj->discarded;
	pthread_mutex_unlock(&obj->lock);
}

/* ---- Remove ----------------------------------------------------------------------------- */

int cache_object_discard(struct cache_store *store, struct cache_key key)
{
	struct cache_object *obj;
	bool held = false;
	int rc = cache_store_object_get(store, key, &obj);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&obj->lock);
	if (obj->removed) {
		rc = -ENOENT;
	} else if (!obj->loaded || last_reference(obj)) {
		/* Nobody has it open (an open about to load it waits for the lock, then finds it
		 * removed and starts afresh). */
		cache_store_usage_enter(store);
		rc = cache_disk_unlink(obj);
		cache_store_usage_leave(store);
	} else {
		/* Its holders keep reading the data file; no record claims it from now on, so
		 * that not even a crash before its last release leaves the deleted file's copy to
		 * whatever next has the key (a path key: the next file at that name). */
		obj->discarded = true;
		held = true;
		cache_store_usage_enter(store);
		rc = cache_disk_withdraw(obj);
		if (rc < 0)
			cache_disk_fail(obj, rc);   /* its record may still claim: emptied, or failed */
		cache_store_usage_leave(store);
	}
	if (held) {
		pthread_mutex_unlock(&obj->lock);
		/* As any user: if the others released meanwhile, this is the last release. */
		cache_object_release(obj);
		return rc < 0 ? rc : 1;
	}
	/* Not removed (a device error): an open waiting for it keeps it in the table. */
	cache_object_unlock_put(obj, obj->removed);
	return rc;
}

int cache_object_remove(struct cache_store *store, struct cache_key key)
{
	struct cache_object *obj;
	int rc;

	rc = cache_store_object_get(store, key, &obj);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&obj->lock);
	cache_store_usage_enter(store);
	rc = obj->removed ? -ENOENT : cache_disk_unlink(obj);
	cache_store_usage_leave(store);
	cache_object_unlock_put(obj, true);
	return rc;
}
