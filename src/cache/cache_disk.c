/* cache_disk: the disk side of one object — its data file and its record — and the two
 * ordering rules that keep a crash at any point from ever serving wrong bytes:
 *   1. data before claim: chunks are fdatasynced before a record claiming them is renamed into
 *      place (cache_disk_persist);
 *   2. withdraw before change: a persisted record is unlinked and its directory fsynced before
 *      any byte it may claim is overwritten, truncated or punched (cache_disk_withdraw).
 * Everything here runs with obj->lock held, and the store's usage lock held shared wherever a
 * data file's allocation can change (see cache_int.h).
 */
#include "cache/cache_bytes.h"
#include "cache/cache_int.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJECT_FILE_MODE 0600
#define SHARD_DIR_MODE 0700
#define SHARD_NAME_SIZE 3   /* "HH" + NUL */

/* ---- Map -------------------------------------------------------------------------------- */

/* Drops chunks [first, chunk_count). Bits past chunk_count stay zero (the map's invariant). */
static void map_drop_from(struct cache_object *obj, uint64_t first)
{
	uint64_t bytes = cache_meta_bitmap_bytes(obj->chunk_count), byte = first / 8;

	if (first >= obj->chunk_count)
		return;
	if (first % 8) {
		uint8_t keep = (uint8_t)((1u << (first % 8)) - 1);
		obj->present_count -= (uint64_t)__builtin_popcount(obj->map[byte] & ~keep);
		obj->map[byte] &= keep;
		byte++;
	}
	for (uint64_t i = byte; i < bytes; i++)
		obj->present_count -= (uint64_t)__builtin_popcount(obj->map[i]);
	memset(obj->map + byte, 0, bytes - byte);
}

/* Sizes the map for a file of size bytes; new chunks are absent. */
static int map_resize(struct cache_object *obj, uint64_t size)
{
	uint64_t count = cache_meta_chunks_for(size, obj->store->chunk_shift);
	uint64_t bytes = cache_meta_bitmap_bytes(count);

	if (count > CACHE_OBJECT_MAX_CHUNKS)
		return -EFBIG;
	if (bytes > obj->map_capacity) {
		uint64_t capacity = bytes > obj->map_capacity * 2 ? bytes : obj->map_capacity * 2;
		uint8_t *map = realloc(obj->map, capacity);
		if (!map)
			return -ENOMEM;
		memset(map + obj->map_capacity, 0, capacity - obj->map_capacity);
		obj->map = map;
		obj->map_capacity = capacity;
	}
	map_drop_from(obj, count);
	obj->chunk_count = count;
	return 0;
}

/* ---- Files ------------------------------------------------------------------------------ */

static void object_path(const struct cache_object *obj, const char *suffix,
                        char path[CACHE_OBJECT_PATH_SIZE])
{
	snprintf(path, CACHE_OBJECT_PATH_SIZE, "%s%s", obj->name, suffix);
}

static void object_shard(const struct cache_object *obj, char shard[SHARD_NAME_SIZE])
{
	shard[0] = obj->name[0];
	shard[1] = obj->name[1];
	shard[2] = '\0';
}

/* Opens name+suffix under objects/; with O_CREAT, creates the shard directory on demand. */
static int object_open_file(const struct cache_object *obj, const char *suffix, int flags)
{
	char path[CACHE_OBJECT_PATH_SIZE], shard[SHARD_NAME_SIZE];
	int objects_fd = obj->store->objects_fd, fd, rc;

	object_path(obj, suffix, path);
	flags |= O_CLOEXEC | O_NOFOLLOW;
	fd = sys_openat(objects_fd, path, flags, OBJECT_FILE_MODE);
	if (fd != -ENOENT || !(flags & O_CREAT))
		return fd;
	object_shard(obj, shard);
	rc = sys_mkdirat(objects_fd, shard, SHARD_DIR_MODE);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	return sys_openat(objects_fd, path, flags, OBJECT_FILE_MODE);
}

static int object_unlink_file(const struct cache_object *obj, const char *suffix)
{
	char path[CACHE_OBJECT_PATH_SIZE];
	object_path(obj, suffix, path);
	return sys_unlinkat(obj->store->objects_fd, path, 0);
}

static int fd_stat(int fd, struct stat *st)
{
	return sys_fstatat(fd, "", st, AT_EMPTY_PATH);
}

/* Reads size bytes unless EOF comes first; returns the count or -errno. */
ssize_t cache_disk_pread(int fd, void *buf, size_t size, off_t off)
{
	size_t done = 0;
	while (done < size) {
		ssize_t n = sys_pread(fd, (char *)buf + done, size - done, off + (off_t)done);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* With the usage lock held shared: tell the store how the data file's allocation moved. */
int cache_disk_account(struct cache_object *obj)
{
	struct stat st;
	uint64_t now;
	int rc = fd_stat(obj->data_fd, &st);

	if (rc < 0)
		return rc;
	now = (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK;
	cache_store_usage_add(obj->store, (int64_t)(now - obj->allocated), 0);
	if (now != obj->allocated) {
		obj->allocated = now;
		cache_capacity_object_resized(obj);
	}
	return 0;
}

/* ---- Record ----------------------------------------------------------------------------- */

/* Rule 2: after this returns 0, no record on disk claims any byte of the data file. */
int cache_disk_withdraw(struct cache_object *obj)
{
	char shard[SHARD_NAME_SIZE];
	int fd, rc;

	if (!obj->record_on_disk)
		return 0;
	rc = object_unlink_file(obj, CACHE_META_SUFFIX);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	object_shard(obj, shard);
	fd = sys_openat(obj->store->objects_fd, shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	rc = sys_fsync(fd, 0);
	sys_close(fd);
	if (rc < 0)
		return rc;   /* the unlink may not be durable: still counts as on disk */
	obj->record_on_disk = false;
	return 0;
}

/* Writes the record (tmp, fsync, rename). On failure the previous record, if any, is intact. */
static int record_write(struct cache_object *obj)
{
	struct cache_meta_record record = {
		.key = obj->key, .fp = obj->fp, .chunk_shift = obj->store->chunk_shift,
		.chunk_count = obj->chunk_count, .present_count = obj->present_count,
		.bitmap = obj->map, .handle = obj->handle,
	};
	char tmp[CACHE_OBJECT_PATH_SIZE], final[CACHE_OBJECT_PATH_SIZE];
	uint64_t size = cache_meta_record_size(obj->chunk_count);
	uint8_t *buf = malloc(size);
	int fd, rc;

	if (!buf)
		return -ENOMEM;
	cache_meta_record_encode(&record, buf);
	fd = object_open_file(obj, CACHE_META_TMP_SUFFIX, O_WRONLY | O_CREAT | O_TRUNC);
	if (fd < 0) {
		rc = fd;
		goto free_buf;
	}
	rc = cache_pwrite_full(fd, buf, size, 0);
	if (rc == 0)
		rc = sys_fsync(fd, 0);
	sys_close(fd);
	object_path(obj, CACHE_META_TMP_SUFFIX, tmp);
	object_path(obj, CACHE_META_SUFFIX, final);
	if (rc == 0)
		rc = sys_renameat2(obj->store->objects_fd, tmp, obj->store->objects_fd, final, 0);
	if (rc < 0)
		sys_unlinkat(obj->store->objects_fd, tmp, 0);
free_buf:
	free(buf);
	return rc;
}

/* Reads the persisted record into a new buffer: 0, -ENOENT (none), -EBADMSG (cannot be one),
 * or the device's error. */
static int record_read(struct cache_object *obj, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd, rc;

	fd = object_open_file(obj, CACHE_META_SUFFIX, O_RDONLY);
	if (fd < 0)
		return fd;
	rc = fd_stat(fd, &st);
	if (rc < 0)
		goto close_fd;
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > cache_meta_record_size(CACHE_OBJECT_MAX_CHUNKS)) {
		rc = -EBADMSG;
		goto close_fd;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto close_fd;
	}
	n = cache_disk_pread(fd, buf, (size_t)st.st_size, 0);
	if (n < 0 || n != st.st_size) {
		rc = n < 0 ? (int)n : -EBADMSG;
		free(buf);
		goto close_fd;
	}
	*out = buf;
	*len = (size_t)n;
close_fd:
	sys_close(fd);
	return rc;
}

/* A cache-device error: nothing unverified may be served, so start over from empty; if even
 * that fails the object is left failed. Returns err. */
int cache_disk_fail(struct cache_object *obj, int err)
{
	struct cache_fingerprint fp = obj->fp;
	cache_disk_reset(obj, &fp);
	return err;
}

/* Rule 1: data durable, then the record. A failed data sync resets the object; a failed record
 * write leaves the memory map (its data is durable now) and the previous record as they are. */
int cache_disk_persist(struct cache_object *obj)
{
	int rc;

	/* A discarded object (a deleted file's, held until its last release) is never recorded
	 * again: its record was withdrawn at the discard (cache_object_discard). */
	if (!cache_object_servable(obj) || obj->discarded ||
	    (!obj->record_stale && !obj->unpersisted_chunks))
		return 0;
	if (obj->record_on_disk || obj->present_count) {
		if (obj->data_unsynced) {
			rc = sys_fdatasync(obj->data_fd);
			if (rc < 0)
				return cache_disk_fail(obj, rc);
			obj->data_unsynced = false;
		}
		rc = record_write(obj);
		if (rc < 0)
			return rc;
		obj->record_on_disk = true;
	}
	obj->record_stale = false;
	obj->unpersisted_chunks = 0;
	return 0;
}

int cache_disk_persist_if_due(struct cache_object *obj)
{
	if (obj->unpersisted_chunks < obj->store->persist_batch)
		return 0;
	return cache_disk_persist(obj);
}

/* Empties the object for fingerprint fp: withdraw, truncate to 0, then to fp->size (sparse).
 * Any failure leaves it failed. With the usage lock held shared. */
int cache_disk_reset(struct cache_object *obj, const struct cache_fingerprint *fp)
{
	int rc;

	obj->generation++;
	map_drop_from(obj, 0);
	obj->record_stale = false;
	obj->unpersisted_chunks = 0;
	obj->fp = *fp;
	rc = cache_disk_withdraw(obj);
	if (rc == 0)
		rc = map_resize(obj, fp->size);
	if (rc == 0)
		rc = sys_ftruncate(obj->data_fd, 0);
	if (rc == 0)
		rc = sys_ftruncate(obj->data_fd, (off_t)fp->size);
	obj->data_unsynced = true;
	if (rc == 0)
		rc = cache_disk_account(obj);
	obj->failed = rc < 0;
	return rc;
}

/* Resizes data file and map together (write-through growth, truncate). */
int cache_disk_resize(struct cache_object *obj, uint64_t size)
{
	int rc = map_resize(obj, size);
	if (rc == 0)
		rc = sys_ftruncate(obj->data_fd, (off_t)size);
	if (rc == 0) {
		obj->fp.size = size;
		obj->data_unsynced = true;
		obj->record_stale = true;
	}
	return rc;
}

/* Adopts the record if it is intact and matches; a record that cannot be trusted makes the
 * load a reset. */
static int object_adopt(struct cache_object *obj, const uint8_t *buf, size_t len,
                        const struct cache_fingerprint *current, const struct stat *data_st)
{
	struct cache_meta_record record;
	int rc = cache_meta_record_decode(buf, len, &record);

	if (rc < 0 || record.key.dev != obj->key.dev || record.key.ino != obj->key.ino ||
	    record.chunk_shift != obj->store->chunk_shift ||
	    !cache_fingerprint_equal(&record.fp, current) ||
	    (uint64_t)data_st->st_size != record.fp.size)
		return -EBADMSG;
	rc = map_resize(obj, record.fp.size);
	if (rc < 0)
		return rc;
	if (record.chunk_count)
		memcpy(obj->map, record.bitmap, cache_meta_bitmap_bytes(record.chunk_count));
	obj->present_count = record.present_count;
	obj->fp = record.fp;
	if (record.handle.bytes)
		obj->handle = record.handle;
	return 0;
}

int cache_disk_record_peek(struct cache_object *obj, struct cache_meta_record *record,
                           uint8_t **out)
{
	uint8_t *buf;
	size_t len;
	int rc = record_read(obj, &buf, &len);

	if (rc < 0)
		return rc;
	rc = cache_meta_record_decode(buf, len, record);
	if (rc == 0 && (record->key.dev != obj->key.dev || record->key.ino != obj->key.ino))
		rc = -EBADMSG;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

/* With obj->lock and the usage lock (shared) held. */
int cache_disk_load(struct cache_object *obj, const struct cache_fingerprint *current)
{
	struct stat st;
	bool created = false, had_record;
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd, rc;

	fd = object_open_file(obj, CACHE_DATA_SUFFIX, O_RDWR);
	if (fd == -ENOENT) {
		fd = object_open_file(obj, CACHE_DATA_SUFFIX, O_RDWR | O_CREAT | O_EXCL);
		created = fd >= 0;
	}
	if (fd < 0)
		return fd;
	rc = fd_stat(fd, &st);
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EUCLEAN;
	if (rc < 0)
		goto close_fd;
	rc = record_read(obj, &buf, &len);
	if (rc < 0 && rc != -ENOENT && rc != -EBADMSG)
		goto close_fd;   /* the device's error: nothing was changed */

	obj->data_fd = fd;
	obj->allocated = (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK;
	if (created)
		cache_store_usage_add(obj->store, 0, 1);
	obj->loaded = true;
	obj->record_on_disk = rc != -ENOENT;
	/* A record beside a data file we just created describes a file that is gone. */
	if (rc == 0 && !created && object_adopt(obj, buf, len, current, &st) == 0) {
		free(buf);
		return 0;
	}
	free(buf);
	had_record = obj->record_on_disk;
	rc = cache_disk_reset(obj, current);
	if (rc < 0)
		return rc;
	return had_record ? CACHE_OBJECT_RESET : 0;

close_fd:
	sys_close(fd);
	return rc;
}

/* Drops chunks [first, last] (withdrawing the record first) and punches their bytes out. */
int cache_disk_drop_chunks(struct cache_object *obj, uint64_t first, uint64_t last)
{
	uint64_t lo, hi;
	int rc;

	if (first >= obj->chunk_count || !cache_chunks_any_present(obj, first, last))
		return 0;
	if (last >= obj->chunk_count)
		last = obj->chunk_count - 1;
	rc = cache_disk_withdraw(obj);
	if (rc < 0)
		return rc;
	for (uint64_t k = first; k <= last; k++)
		cache_chunk_clear(obj, k);
	obj->record_stale = true;
	lo = cache_chunk_start(obj, first);
	hi = cache_chunk_end(obj, last);
	rc = sys_fallocate(obj->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)lo,
	                   (off_t)(hi - lo));
	if (rc == -EOPNOTSUPP)
		rc = 0;   /* the space is not returned, nothing else is wrong */
	if (rc == 0)
		rc = cache_disk_account(obj);
	return rc;
}

int cache_disk_unpark(struct cache_object *obj)
{
	int fd = object_open_file(obj, CACHE_DATA_SUFFIX, O_RDWR);
	if (fd < 0)
		return fd;
	obj->data_fd = fd;
	return 0;
}

/* Record first, then data: a record never outlives the data it claims. Whoever has the data
 * file open keeps reading the unlinked file. keep_content (cache_disk_divorce): the map and
 * the generation stay, so that those holders' reads of present chunks still hit. */
static int disk_unlink(struct cache_object *obj, bool keep_content)
{
	char path[CACHE_OBJECT_PATH_SIZE];
	struct stat st;
	int rc, record_rc;

	if (!keep_content) {
		obj->generation++;
		map_drop_from(obj, 0);
	}
	obj->record_stale = false;
	obj->unpersisted_chunks = 0;
	record_rc = object_unlink_file(obj, CACHE_META_SUFFIX);
	if (record_rc < 0 && record_rc != -ENOENT) {
		obj->failed = true;   /* the record may still claim: change nothing more */
		return record_rc;
	}
	obj->record_on_disk = false;
	object_unlink_file(obj, CACHE_META_TMP_SUFFIX);
	object_path(obj, CACHE_DATA_SUFFIX, path);
	rc = sys_fstatat(obj->store->objects_fd, path, &st, AT_SYMLINK_NOFOLLOW);
	if (rc == 0)
		rc = object_unlink_file(obj, CACHE_DATA_SUFFIX);
	if (rc < 0 && rc != -ENOENT) {
		obj->failed = true;
		return rc;
	}
	if (obj->loaded && obj->data_fd >= 0)   /* not parked: count what its fd holds now */
		cache_disk_account(obj);
	obj->removed = true;
	cache_capacity_object_removed(obj);
	/* A loaded object: what was accounted, not st_blocks, since the fs layer may have grown
	 * the data file (mirror writes under passthrough readers) without the store seeing it.
	 * An object never loaded here was counted by the scan as its st_blocks. */
	if (rc == 0)
		cache_store_usage_add(obj->store,
		                      -(int64_t)(obj->loaded ? obj->allocated
		                                             : (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK),
		                      -1);
	obj->allocated = 0;
	return rc == 0 || record_rc == 0 ? 0 : -ENOENT;
}

int cache_disk_unlink(struct cache_object *obj) { return disk_unlink(obj, false); }

int cache_disk_divorce(struct cache_object *obj)
{
	int rc = disk_unlink(obj, true);
	obj->divorced = obj->removed;   /* also if its files were removed by hand (-ENOENT) */
	return rc == -ENOENT ? 0 : rc;
}

/* [lo, hi) of the data file reads as zeros and is a hole: a fill's hole goes where no byte of
 * a present chunk is (it is absent), but the data file may hold bytes there all the same (a
 * punch the file system refused, an earlier claim withdrawn): punch them, or if the file system
 * cannot, write zeros (correct, only not sparse). */
static int make_hole(struct cache_object *obj, uint64_t lo, uint64_t hi)
{
	static const uint8_t zeros[CACHE_CHUNK_SIZE_MIN];
	off_t data = sys_lseek(obj->data_fd, (off_t)lo, SEEK_DATA);
	int rc;

	if (data == -ENXIO || (data >= 0 && (uint64_t)data >= hi))
		return 0;   /* a hole already (or past the end of the data file: reads as zeros) */
	rc = sys_fallocate(obj->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)lo,
	                   (off_t)(hi - lo));
	if (rc != -EOPNOTSUPP)
		return rc;
	for (; lo < hi && rc == 0; lo += sizeof(zeros))
		rc = cache_pwrite_full(obj->data_fd, zeros, hi - lo < sizeof(zeros) ? hi - lo : sizeof(zeros),
		                 (off_t)lo);
	return rc;
}

/* Writes [max(off, start of first), min(end, end of last)) from buf (which holds off..end):
 * the parts in data[], holes elsewhere. */
int cache_disk_write_chunks(struct cache_object *obj, const void *buf, uint64_t off, uint64_t end,
                            uint64_t first, uint64_t last, const struct cache_extent *data,
                            size_t count)
{
	uint64_t lo = cache_chunk_start(obj, first) > off ? cache_chunk_start(obj, first) : off;
	uint64_t hi = cache_chunk_end(obj, last) < end ? cache_chunk_end(obj, last) : end;
	uint64_t pos = lo;
	int rc = 0;

	for (size_t i = 0; i < count && pos < hi && rc == 0; i++) {
		uint64_t a = data[i].off > pos ? data[i].off : pos;
		uint64_t b = data[i].off + data[i].len < hi ? data[i].off + data[i].len : hi;
		if (a >= b)
			continue;
		if (a > pos)
			rc = make_hole(obj, pos, a);
		if (rc == 0)
			rc = cache_pwrite_full(obj->data_fd, (const char *)buf + (a - off), b - a, (off_t)a);
		pos = b;
	}
	if (rc == 0 && pos < hi)
		rc = make_hole(obj, pos, hi);
	return rc;
}
