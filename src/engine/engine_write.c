/* engine_write: changes through the mount. Write-through: the origin first, then the cache
 * object, before the answer, under ei->write_lock so that both see writes in the same order.
 * In ENGINE_IO_CACHE mode the cache copy is mirrored byte for byte (passthrough readers read
 * it). A writer over the cache copy may write it through its mapping: write-back copies what
 * differs to the origin (at fsync, GETATTR, the last release, and before other origin changes).
 * Resync: an origin changed behind the cache (seen at GETATTR without a change watch) brings
 * the open object in step.
 */
#include "engine/engine_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"

#define WRITE_RESYNC_BUFFER (1024u * 1024)

void engine_write_copy_mtime_note(struct engine_inode *ei)
{
	struct stat st;
	if (ei->mode == ENGINE_IO_CACHE && ei->obj &&
	    sys_fstatat(cache_object_data_fd(ei->obj), "", &st, AT_EMPTY_PATH) == 0)
		ei->copy_mtime = st.st_mtim;
}

/* Record the origin's new fingerprint (fd: on the origin file) so that our own change does not
 * invalidate the object. ei->write_lock held. */
static void write_fingerprint_from_fd(struct engine *e, struct engine_inode *ei, int fd)
{
	struct cache_fingerprint fp;
	struct stat st;
	engine_write_copy_mtime_note(ei);
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	engine_fingerprint(e, &st, &fp);
	ei->mirror_fp = fp;
	if (cache_object_set_fingerprint(ei->obj, &fp) > 0)
		stats_add(e->cfg.stats, STATS_INVALIDATIONS, 1);
}

void engine_write_fingerprint_refresh(struct engine *e, struct engine_inode *ei)
{
	int fd = engine_host_origin_fd(e, ei);
	if (fd < 0)
		return;
	write_fingerprint_from_fd(e, ei, fd);
	engine_host_origin_fd_put(e, ei, fd);
}

/* A writer over the cache copy may have written it through mmap (which the kernel maps to the
 * backing file): copy every range of the copy that differs to the origin — unless the origin
 * was changed behind us meanwhile, which then wins. ei->write_lock held. */
static void write_back_locked(struct engine *e, struct engine_inode *ei)
{
	uint32_t chunk = cache_store_chunk_size(e->store);
	struct cache_fingerprint fp;
	char path[ENGINE_PROC_PATH_MAX];
	char *cached = NULL, *origin = NULL;
	struct stat st, copy;
	bool wrote = false;
	int fd;

	if (ei->mode != ENGINE_IO_CACHE || !ei->obj || !ei->cache_writers)
		return;
	fd = engine_host_origin_fd(e, ei);
	if (fd >= 0) {
		int nfd = fd;
		engine_host_proc_path(nfd, path);
		/* O_NOATIME: comparing reads the origin, which must not move its access time
		 * (relatime would, after a utimensat that put it before the mtime); it runs at
		 * every GETATTR. */
		fd = engine_host_open(e, AT_FDCWD, path, O_RDWR | O_NOATIME | O_CLOEXEC, 0);
		engine_host_origin_fd_put(e, ei, nfd);
	}
	if (fd < 0) {
		log_error("cannot open inode %llu to write mmap changes back: %s",
		          (unsigned long long)ei->ino, strerror(-fd));
		return;
	}
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		goto out;
	engine_fingerprint(e, &st, &fp);
	if (!cache_fingerprint_equal(&fp, &ei->mirror_fp))
		goto out;  /* changed behind us: the origin wins */
	cached = malloc(chunk);
	origin = malloc(chunk);
	if (!cached || !origin)
		goto out;
	for (uint64_t off = 0; off < fp.size; off += chunk) {
		ssize_t c = sys_pread(cache_object_data_fd(ei->obj), cached, chunk, (off_t)off);
		ssize_t o = c > 0 ? sys_pread(fd, origin, (size_t)c, (off_t)off) : 0;
		if (c > 0 && (o != c || memcmp(cached, origin, (size_t)c))) {
			ssize_t w = sys_pwrite(fd, cached, (size_t)c, (off_t)off);
			wrote = true;
			if (w != c)
				log_error("writing mmap changes of inode %llu back to the origin failed: %s",
				          (unsigned long long)ei->ino, w < 0 ? strerror((int)-w) : "short write");
		}
	}
	/* The mapping was written, but with the bytes already there: the origin's mtime and ctime
	 * move all the same, as they would on the origin itself. */
	if (!wrote && sys_fstatat(cache_object_data_fd(ei->obj), "", &copy, AT_EMPTY_PATH) == 0 &&
	    (copy.st_mtim.tv_sec != ei->copy_mtime.tv_sec ||
	     copy.st_mtim.tv_nsec != ei->copy_mtime.tv_nsec)) {
		const struct timespec now[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
		int rc = sys_utimensat(fd, "", now, AT_EMPTY_PATH);
		if (rc < 0)
			log_warn("moving the mtime of inode %llu after an mmap write failed: %s",
			         (unsigned long long)ei->ino, strerror(-rc));
	}
	write_fingerprint_from_fd(e, ei, fd);
out:
	sys_close(fd);
	free(cached);
	free(origin);
}

void engine_write_back(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_lock(&ei->lock);
	pthread_mutex_lock(&ei->write_lock);
	write_back_locked(e, ei);
	pthread_mutex_unlock(&ei->write_lock);
	pthread_mutex_unlock(&ei->lock);
	engine_bypass_notify(e);
}

void engine_write_sync(struct engine *e, struct engine_file *f)
{
	if (f->check_writeback)
		engine_write_back(e, f->inode);
}

/* ENGINE_IO_CACHE: put bytes into the cache copy whether or not their chunks are present. */
static void write_mirror_bytes(struct engine *e, struct engine_inode *ei, const void *data,
                               size_t size, off_t off)
{
	ssize_t w = sys_pwrite(cache_object_data_fd(ei->obj), data, size, off);
	if (w != (ssize_t)size)
		engine_bypass_error(e, "mirror write", w < 0 ? (int)w : -EIO);
}

/* ENGINE_IO_CACHE: copy [off, off+len) of the origin into the cache copy (after fallocate or
 * copy_file_range changed it there). */
static void write_mirror_range(struct engine *e, struct engine_inode *ei, off_t off, off_t len)
{
	char path[ENGINE_PROC_PATH_MAX];
	size_t bufsize = 1024 * 1024;
	char *buf = malloc(bufsize);
	int fd;

	fd = engine_host_origin_fd(e, ei);
	if (fd >= 0) {
		int nfd = fd;
		engine_host_proc_path(nfd, path);
		fd = engine_host_open(e, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
		engine_host_origin_fd_put(e, ei, nfd);
	}
	if (fd < 0 || !buf) {
		engine_bypass_error(e, "mirror", fd < 0 ? fd : -ENOMEM);
		goto out;
	}
	while (len > 0) {
		ssize_t r = sys_pread(fd, buf, (size_t)len < bufsize ? (size_t)len : bufsize, off);
		if (r <= 0)
			break;
		write_mirror_bytes(e, ei, buf, (size_t)r, off);
		cache_object_write(ei->obj, buf, (size_t)r, off);
		off += r;
		len -= r;
	}
out:
	if (fd >= 0)
		sys_close(fd);
	free(buf);
}

ssize_t engine_write(struct engine *e, struct engine_file *f, const void *data, size_t size,
                     uint64_t off)
{
	struct engine_inode *ei = f->inode;
	struct stats *stats = e->cfg.stats;
	uint64_t t0 = clock_now_ns();
	ssize_t w;

	/* Write-through: the origin first, then the cache copy, before the answer, so a reader of
	 * the cache copy sees the write at once; the lock keeps both in the same order. */
	pthread_mutex_lock(&ei->write_lock);
	w = sys_pwrite(f->fd, data, size, (off_t)off);
	if (w > 0 && ei->obj) {
		int rc = cache_object_write(ei->obj, data, (size_t)w, (off_t)off);
		if (rc < 0)
			engine_bypass_error(e, "write-through", rc);
		if (ei->mode == ENGINE_IO_CACHE)
			write_mirror_bytes(e, ei, data, (size_t)w, (off_t)off);
		write_fingerprint_from_fd(e, ei, f->fd);
	}
	pthread_mutex_unlock(&ei->write_lock);
	engine_bypass_notify(e);
	if (w < 0) {
		stats_add(stats, STATS_ORIGIN_ERRORS, 1);
		return w;
	}
	stats_add(stats, STATS_WRITE_OPS, 1);
	stats_add(stats, STATS_WRITE_BYTES, (uint64_t)w);
	stats_file_add(stats, ei->nodeid, ei->ino, true, false, (uint64_t)w);
	stats_record_latency(stats, STATS_LAT_WRITE, clock_now_ns() - t0);
	return w;
}

void engine_write_change_begin(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_lock(&ei->lock);
	pthread_mutex_lock(&ei->write_lock);
	write_back_locked(e, ei);
}

void engine_write_change_end(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_unlock(&ei->write_lock);
	pthread_mutex_unlock(&ei->lock);
	engine_bypass_notify(e);
}

void engine_write_changed(struct engine *e, struct engine_inode *ei, bool truncated, off_t size,
                          off_t off, off_t len)
{
	int rc;
	if (!ei->obj)
		return;
	if (ei->mode == ENGINE_IO_CACHE && !truncated) {
		write_mirror_range(e, ei, off, len);  /* invalidating would punch holes under readers */
		engine_write_fingerprint_refresh(e, ei);
		return;
	}
	rc = truncated ? cache_object_truncate(ei->obj, size) : cache_object_invalidate(ei->obj, off, len);
	if (rc < 0)
		engine_bypass_error(e, truncated ? "truncate" : "invalidate", rc);
	if (truncated && ei->mode == ENGINE_IO_CACHE) {
		/* Passthrough readers read the copy's bytes, also after the object was evicted
		 * (it then stores nothing, but its data file stays theirs): size it like the origin. */
		int t = sys_ftruncate(cache_object_data_fd(ei->obj), size);
		if (t < 0)
			engine_bypass_error(e, "mirror truncate", t);
		else
			cache_object_account(ei->obj);
	}
	else if (!truncated)
		stats_add(e->cfg.stats, STATS_INVALIDATIONS, 1);
	engine_write_fingerprint_refresh(e, ei);
}

void engine_write_metadata_changed(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_lock(&ei->lock);
	if (ei->obj) {
		pthread_mutex_lock(&ei->write_lock);
		engine_write_fingerprint_refresh(e, ei);
		pthread_mutex_unlock(&ei->write_lock);
	}
	pthread_mutex_unlock(&ei->lock);
}

/* ---- resync: changes behind the cache ----------------------------------------------------- */

/* ENGINE_IO_CACHE: passthrough readers read the cache copy, which cannot be swapped under their
 * open files: copy the origin's bytes into it where they differ (the origin says nothing of
 * which bytes changed), then size it like the origin. ei->lock and ei->write_lock held. */
static void write_copy_resync(struct engine *e, struct engine_inode *ei, int origin,
                              const struct stat *st)
{
	struct cache_object *obj = ei->obj;
	int data = cache_object_data_fd(obj);
	char *a = malloc(WRITE_RESYNC_BUFFER), *b = malloc(WRITE_RESYNC_BUFFER);
	uint64_t copied = 0;
	off_t off = 0;

	if (!a || !b) {
		engine_bypass_error(e, "resync", -ENOMEM);
		goto out;
	}
	while (off < st->st_size) {
		ssize_t r = sys_pread(origin, a, WRITE_RESYNC_BUFFER, off), c, w;
		if (r <= 0)
			break;  /* shorter than it said: the truncate below, or the next event, ends it */
		c = sys_pread(data, b, (size_t)r, off);
		if (c != r || memcmp(a, b, (size_t)r)) {
			w = sys_pwrite(data, a, (size_t)r, off);
			if (w != r) {
				engine_bypass_error(e, "resync write", w < 0 ? (int)w : -EIO);
				break;
			}
			/* The object learns the bytes too (its chunks stay present and equal). */
			if (cache_object_write(obj, a, (size_t)r, off) < 0)
				engine_bypass_error(e, "resync", -EIO);
			copied += (uint64_t)r;
		}
		off += r;
	}
	{
		struct stat cst;
		if (sys_fstatat(data, "", &cst, AT_EMPTY_PATH) == 0 && cst.st_size > st->st_size) {
			int rc = cache_object_truncate(obj, st->st_size);
			if (rc < 0)
				engine_bypass_error(e, "resync truncate", rc);
			rc = sys_ftruncate(data, st->st_size);
			if (rc < 0)
				engine_bypass_error(e, "resync truncate", rc);
		}
	}
	cache_object_account(obj);
	log_debug("inode %llu changed behind the cache: %llu bytes copied into its cache copy",
	          (unsigned long long)ei->ino, (unsigned long long)copied);
out:
	free(a);
	free(b);
}

void engine_write_resync(struct engine *e, struct engine_inode *ei, bool event)
{
	struct cache_fingerprint fp, known;
	struct cache_object_info info;
	struct stat st;
	int fd;

	pthread_mutex_lock(&ei->lock);
	if (!ei->obj)
		goto unlock;
	if (ei->mode == ENGINE_IO_ORIGIN && event) {
		/* Its readers read the origin itself. Its object is dropped at the last release,
		 * as after writes through the mount: a fill behind may have raced with the change. */
		ei->origin_writers = true;
		goto unlock;
	}
	fd = engine_host_origin_fd(e, ei);
	if (fd < 0)
		goto unlock;
	pthread_mutex_lock(&ei->write_lock);
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) == 0) {
		engine_fingerprint(e, &st, &fp);
		cache_object_info(ei->obj, &info);
		known = ei->mode == ENGINE_IO_CACHE ? ei->mirror_fp : info.fingerprint;
		if (ei->mode == ENGINE_IO_ORIGIN) {
			/* A GETATTR: only a fingerprint that moved since the open marks it (a stat of
			 * a first read must not cost the fill behind it). */
			if (!cache_fingerprint_equal(&fp, &known))
				ei->origin_writers = true;
		} else if (!cache_fingerprint_equal(&fp, &known)) {
			if (ei->mode == ENGINE_IO_CACHE) {
				char path[ENGINE_PROC_PATH_MAX];
				int origin;
				engine_host_proc_path(fd, path);
				origin = engine_host_open(e, AT_FDCWD, path, O_RDONLY | O_NOATIME | O_CLOEXEC, 0);
				if (origin < 0)
					origin = engine_host_open(e, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
				if (origin >= 0) {
					write_copy_resync(e, ei, origin, &st);
					sys_close(origin);
				}
				ei->mirror_fp = fp;
			} else {
				/* User space: drop every chunk; the generation bump drops the fills
				 * and read-ahead pieces read before. */
				int rc = cache_object_invalidate(ei->obj, 0, 0);
				if (rc < 0)
					engine_bypass_error(e, "invalidate", rc);
			}
			if (cache_object_set_fingerprint(ei->obj, &fp) < 0)
				engine_bypass_error(e, "record write", -EIO);
			if (info.present_chunks)
				stats_add(e->cfg.stats, STATS_INVALIDATIONS, 1);
		}
	}
	pthread_mutex_unlock(&ei->write_lock);
	engine_host_origin_fd_put(e, ei, fd);
unlock:
	pthread_mutex_unlock(&ei->lock);
	engine_bypass_notify(e);
}
