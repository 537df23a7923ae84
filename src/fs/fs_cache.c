/* fs_cache: the io-mode of regular-file opens and the read and write paths through the cache.
 * At the first open of an inode (DESIGN.md §5):
 *   read-only, cache object complete   → FS_IO_CACHE: passthrough to the cache copy (a hit)
 *   read-only, object holds no data,
 *     the file's first read            → FS_IO_ORIGIN: passthrough to the original file; the
 *                                        last release fills the cache behind it (a completion,
 *                                        or the chunks left in the origin's page cache)
 *   read-only, object partial/absent   → FS_IO_USER: reads hit the object or fill it
 *   writable, object holds no data     → FS_IO_ORIGIN: passthrough to the original file
 *   writable, object holds data        → FS_IO_USER: write-through, origin first
 * Later opens join the inode's mode (the kernel allows one mode and one backing file per
 * inode). A writer, or a reader that finds the origin changed behind the cache, joining
 * FS_IO_CACHE gets FOPEN_DIRECT_IO: its reads and writes come here.
 * Invariant of FS_IO_CACHE: passthrough readers read the cache copy's bytes directly, so every
 * change made through the mount is mirrored into it byte for byte (never a punched hole), and
 * no fill writes it meanwhile; its chunk map may only become more conservative.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"

void fs_passthrough_disable(struct fs *fs, const char *why)
{
	if (atomic_exchange(&fs->passthrough_ok, false)) {
		snprintf(fs->passthrough_why, sizeof(fs->passthrough_why), "%s", why);
		log_warn("passthrough off: %s", why);
	}
}

static void fingerprint_refresh(struct fs *fs, struct fs_node *n, int fd);
static void fingerprint_refresh_node(struct fs *fs, struct fs_node *n);
static void copy_mtime_note(struct fs_node *n);

void fs_cache_error(struct fs *fs, const char *what, int rc)
{
	struct fs_bypass *b = &fs->bypass;
	uint64_t now = clock_now_ns();
	bool enter = false;
	char why[sizeof(b->why)];

	if (fs_limit_error(rc)) {  /* the daemon's fds, not the cache device */
		log_warn("cache %s: the daemon is out of fds (%s); serving from the origin", what,
		         strerror(-rc));
		return;
	}
	stats_add(fs->cfg.stats, STATS_CACHE_ERRORS, 1);
	log_warn("cache %s failed: %s; serving from the origin", what, strerror(-rc));
	pthread_mutex_lock(&b->lock);
	if (now - b->window_start_ns > FS_BYPASS_WINDOW_NS) {
		b->window_start_ns = now;
		b->errors = 0;
	}
	if (++b->errors >= FS_BYPASS_ERRORS && !atomic_load(&b->on)) {
		snprintf(b->why, sizeof(b->why), "%u cache-device errors within %llu s (last: %s: %s)",
		         b->errors, (unsigned long long)(FS_BYPASS_WINDOW_NS / 1000000000), what,
		         strerror(-rc));
		b->since_ns = now;
		atomic_store(&b->on, true);
		enter = true;
		snprintf(why, sizeof(why), "%s", b->why);
	}
	pthread_mutex_unlock(&b->lock);
	if (enter) {
		stats_add(fs->cfg.stats, STATS_BYPASS_ENTRIES, 1);
		log_error("cache bypassed: %s; everything is served from the origin, retry in %u ms",
		          why, fs->cfg.bypass_retry_ms);
		if (fs->cfg.bypass_changed)
			fs->cfg.bypass_changed(fs->cfg.bypass_arg, true, why);
	}
}

struct cache_store *fs_cache_store(struct fs *fs)
{
	struct fs_bypass *b = &fs->bypass;
	bool leave = false;

	if (!fs->store)
		return NULL;
	if (!atomic_load(&b->on))
		return fs->store;
	pthread_mutex_lock(&b->lock);
	if (atomic_load(&b->on) && clock_now_ns() - b->since_ns >= (uint64_t)fs->cfg.bypass_retry_ms * 1000000) {
		atomic_store(&b->on, false);
		b->errors = 0;
		b->window_start_ns = clock_now_ns();
		leave = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (!leave)
		return NULL;
	log_warn("cache bypass ends: trying the cache device again");
	if (fs->cfg.bypass_changed)
		fs->cfg.bypass_changed(fs->cfg.bypass_arg, false, "");
	return fs->store;
}

bool fs_cache_bypassed(struct fs *fs, char *why, size_t why_size)
{
	bool on;
	pthread_mutex_lock(&fs->bypass.lock);
	on = atomic_load(&fs->bypass.on);
	if (on && why)
		snprintf(why, why_size, "%s", fs->bypass.why);
	pthread_mutex_unlock(&fs->bypass.lock);
	return on;
}

/* ---- deleted files (cache_object_discard) and the scrub's handles ---------------------- */

bool fs_cache_last_name(struct fs *fs, const struct stat *st, struct cache_key *key)
{
	if (!fs->store || !S_ISREG(st->st_mode) || st->st_nlink != 1)
		return false;
	*key = cache_key_from_stat(st);
	return true;
}

void fs_cache_file_deleted(struct fs *fs, struct cache_key key)
{
	int rc = cache_object_discard(fs->store, key);
	if (rc >= 0)
		stats_add(fs->cfg.stats, STATS_DELETED_OBJECTS, 1);
	else if (rc != -ENOENT)
		fs_cache_error(fs, "discard of a deleted file's copy", rc);
}

/* The origin file's handle goes into its object's record, so that the scrub can find the file
 * after a restart without a path (cache_store.h). Where the file system has no handles, the
 * scrub keeps the object. */
static void object_note_handle(struct fs_node *n)
{
	struct cache_origin_handle handle = { 0 };

	if (!n->handle_bytes || n->handle_bytes > CACHE_HANDLE_MAX)
		return;  /* the node's own handle, taken at its lookup */
	handle.type = n->handle_type;
	handle.bytes = n->handle_bytes;
	memcpy(handle.data, n->handle, handle.bytes);
	cache_object_set_origin_handle(n->io->obj, &handle);
}

/* Register fd as the inode's backing file; false if the kernel refused (then user space).
 * fd -1: the origin inode itself. */
static bool backing_register(struct fs *fs, struct fs_node *n, int fd)
{
	int id, nfd = -1;
	if (fd < 0) {
		nfd = fs_node_fd(fs, n);
		if (nfd < 0)
			return false;
		fd = nfd;
	}
	id = fuse_session_backing_open(fs->session, fd);
	if (nfd >= 0)
		fs_node_fd_put(fs, n, nfd);
	if (id > 0) {
		n->io->backing_id = id;
		return true;
	}
	if (id == -EPERM)
		fs_passthrough_disable(fs, "the kernel refused backing files (EPERM: needs CAP_SYS_ADMIN)");
	else
		log_warn("passthrough unavailable for inode %llu: %s; serving it in user space",
		         (unsigned long long)n->ino, strerror(-id));
	return false;
}

/* ---- first reads (cfg.first_read_origin) ---------------------------------------------------
 * A file the cache holds nothing of is read through the origin at its first read-only open:
 * filling the cache on the way (a tee through user space) costs the reader about half the
 * origin's speed on a fast origin (docs/PERFORMANCE.md, ratio c). The set remembers the files
 * read so, so that an open after that, if the cache still holds nothing (a read with O_DIRECT
 * of a file larger than --complete-max leaves nothing in the page cache to copy), fills. */

static uint64_t seen_hash(const struct stat *st)
{
	uint64_t h = 1469598103934665603ull, v[4] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino,
	                                              (uint64_t)st->st_size,
	                                              (uint64_t)st->st_mtim.tv_sec * 1000000000ull +
	                                              (uint64_t)st->st_mtim.tv_nsec };
	for (int i = 0; i < 4; i++) {
		h ^= v[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return h ? h : 1;
}

/* Was st's first read made? If not, it is now (true: seen before). */
static bool first_read_seen(struct fs *fs, const struct stat *st)
{
	struct fs_seen *s = &fs->seen;
	uint64_t h = seen_hash(st);
	unsigned set = (unsigned)(h % FS_SEEN_SETS);
	bool seen = false;

	pthread_mutex_lock(&s->lock);
	for (int w = 0; w < FS_SEEN_WAYS && !seen; w++)
		seen = s->hash[set][w] == h;
	if (!seen) {
		s->hash[set][s->next[set]] = h;
		s->next[set] = (uint8_t)((s->next[set] + 1) % FS_SEEN_WAYS);
	}
	pthread_mutex_unlock(&s->lock);
	return seen;
}

void fs_first_read_forget(struct fs *fs, const struct stat *st)
{
	struct fs_seen *s = &fs->seen;
	pthread_mutex_lock(&s->lock);
	if (!st) {
		memset(s->hash, 0, sizeof(s->hash));
	} else {
		uint64_t h = seen_hash(st);
		unsigned set = (unsigned)(h % FS_SEEN_SETS);
		for (int w = 0; w < FS_SEEN_WAYS; w++)
			if (s->hash[set][w] == h)
				s->hash[set][w] = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

/* May an open with open_flags pass through to the original? The kernel reopens the backing
 * file with the application's flags: with O_DIRECT on a file system that refuses it the open
 * would fail with EIO, while our own fds drop O_DIRECT and serve it in user space. */
static bool origin_passthrough_ok(struct fs *fs, struct fs_node *n, int open_flags)
{
	int fd;

	if (!(open_flags & O_DIRECT))
		return true;
	fd = fs_origin_read_open(fs, n, FS_ORIGIN_DIRECT);
	if (fd >= 0)
		sys_close(fd);
	return fd != -EINVAL;
}

/* First open of the inode: open its cache object and choose the mode. node->io->lock held. */
static void mode_choose(struct fs *fs, struct fs_node *n, const struct stat *st, bool writer,
                        int open_flags)
{
	bool pt = atomic_load(&fs->passthrough_ok);
	struct cache_store *store = fs_cache_store(fs);
	struct cache_object_info info;

	n->io->mode = FS_IO_USER;
	n->io->pinned = false;
	if (store && (fs->cfg.exclude_count || fs->cfg.pin_count)) {
		char rel[4096];
		if (fs_node_relpath(fs, n, rel, sizeof(rel)) == 0) {
			if (fs_glob_match(fs->cfg.exclude, fs->cfg.exclude_count, rel)) {
				stats_add(fs->cfg.stats, STATS_EXCLUDED_OPENS, 1);
				store = NULL;
			} else {
				n->io->pinned = fs_glob_match(fs->cfg.pin, fs->cfg.pin_count, rel);
			}
		}
	}
	if (store) {
		struct cache_fingerprint fp;
		int rc;
		cache_fingerprint_from_stat(st, &fp);
		if (n->io->obj)  /* still pinned by a fill from before the last close: reuse it */
			rc = cache_object_revalidate(n->io->obj, &fp);
		else
			rc = cache_object_open(store, cache_key_from_stat(st), &fp, &n->io->obj);
		if (rc < 0 && !n->io->obj_pins) {
			if (n->io->obj)
				cache_object_release(n->io->obj);
			n->io->obj = NULL;
			fs_cache_error(fs, "object open", rc);
		} else if (rc < 0) {
			fs_cache_error(fs, "object revalidation", rc);
		} else if (rc == CACHE_OBJECT_RESET) {
			stats_add(fs->cfg.stats, STATS_INVALIDATIONS, 1);
		}
		if (n->io->obj && n->io->pinned)
			cache_store_pin(store, cache_key_from_stat(st), true);
		if (n->io->obj && !cache_object_has_origin_handle(n->io->obj))
			object_note_handle(n);
	}
	if (!pt)
		return;
	if (!store || !n->io->obj) {
		if (origin_passthrough_ok(fs, n, open_flags) && backing_register(fs, n, -1))
			n->io->mode = FS_IO_ORIGIN;
		return;
	}
	cache_object_info(n->io->obj, &info);
	if (!writer && cache_object_complete(n->io->obj) && !info.failed) {
		if (backing_register(fs, n, cache_object_data_fd(n->io->obj))) {
			n->io->mode = FS_IO_CACHE;
			pthread_mutex_lock(&n->io->write_lock);
			copy_mtime_note(n);
			n->io->mirror_fp = info.fingerprint;
			pthread_mutex_unlock(&n->io->write_lock);
		}
	} else if (writer && info.present_chunks == 0) {
		if (origin_passthrough_ok(fs, n, open_flags) && backing_register(fs, n, -1))
			n->io->mode = FS_IO_ORIGIN;
	} else if (!writer && info.present_chunks == 0 && fs->cfg.first_read_origin &&
	           origin_passthrough_ok(fs, n, open_flags) && !first_read_seen(fs, st) &&
	           backing_register(fs, n, -1)) {
		n->io->mode = FS_IO_ORIGIN;
		n->io->first_read = true;
		stats_add(fs->cfg.stats, STATS_FIRST_READS, 1);
	}
}

int fs_file_attach(struct fs *fs, struct fs_file *f, struct cm_fuse_open_out *o)
{
	struct fs_node *n = f->node;
	bool writer = (f->open_flags & O_ACCMODE) != O_RDONLY;
	struct stat st;
	bool have_stat, first_writer = false;

	memset(o, 0, sizeof(*o));
	o->fh = (uint64_t)(uintptr_t)f;
	o->open_flags = FOPEN_NOFLUSH;
	have_stat = n->type == S_IFREG && sys_fstatat(f->fd, "", &st, AT_EMPTY_PATH) == 0;
	/* The kernel's cached name still leads to an inode unlinked behind our back (the file was
	 * deleted or replaced in the original directory): opening it would serve the old file.
	 * ESTALE makes the kernel look the name up afresh (LOOKUP_REVAL) and open again. An inode
	 * we unlinked ourselves (reopened via /proc/PID/fd, O_TMPFILE) opens as usual. */
	if (have_stat && st.st_nlink == 0 && !atomic_load(&n->unlinked_by_us))
		return -ESTALE;
	/* The open file holds the node's open state until fs_file_detach. */
	if (!fs_node_io_hold(fs, n))
		return -ENOMEM;
	if (n->type != S_IFREG) {
		pthread_mutex_lock(&n->io->lock);
		n->io->open_count++;
		pthread_mutex_unlock(&n->io->lock);
		return 0;
	}
	pthread_mutex_lock(&n->io->lock);
	if (writer && (f->open_flags & O_TRUNC)) {
		int rc;
		pthread_mutex_lock(&n->io->write_lock);
		rc = sys_ftruncate(f->fd, 0);
		if (rc == 0)
			fs_cache_origin_changed(fs, n, true, 0, 0, 0);
		pthread_mutex_unlock(&n->io->write_lock);
		if (rc < 0) {
			pthread_mutex_unlock(&n->io->lock);
			fs_node_io_release(fs, n);
			return rc;
		}
		have_stat = sys_fstatat(f->fd, "", &st, AT_EMPTY_PATH) == 0;
	}
	if (n->io->open_count == 0 && have_stat)
		mode_choose(fs, n, &st, writer, f->open_flags);
	else if (n->io->open_count == 0)
		n->io->mode = FS_IO_USER;
	if (n->io->mode == FS_IO_CACHE) {
		struct cache_fingerprint fp;
		cache_fingerprint_from_stat(&st, &fp);
		pthread_mutex_lock(&n->io->write_lock);
		f->bypass_cache = !have_stat || !cache_fingerprint_equal(&fp, &n->io->mirror_fp);
		pthread_mutex_unlock(&n->io->write_lock);
		f->via_daemon = writer || f->bypass_cache;
		f->check_writeback = writer;
		if (writer)
			n->io->cache_writers++;
	}
	if (n->io->mode == FS_IO_ORIGIN && writer)
		n->io->origin_writers = true;
	if (n->io->mode == FS_IO_CACHE || n->io->mode == FS_IO_ORIGIN) {
		f->passthrough = true;
		n->io->passthrough_count++;
		o->open_flags |= FOPEN_PASSTHROUGH | (f->via_daemon ? FOPEN_DIRECT_IO : 0);
		o->backing_id = n->io->backing_id;
		if (writer)
			first_writer = atomic_fetch_add(&n->passthrough_writers, 1) == 0;
	}
	n->io->open_count++;
	pthread_mutex_unlock(&n->io->lock);
	/* What the kernel cached before (a lookup's attributes) would hide its mmap writes. */
	if (first_writer)
		fs_attr_invalidate(fs, n);

	stats_add(fs->cfg.stats, STATS_OPENS, 1);
	/* Reads of a passthrough open never reach us: the kernel counts them (stats_bpf.h); here
	 * only the open, never the file's size as if it had been read. */
	if (f->passthrough && !f->via_daemon) {
		bool hit = n->io->mode == FS_IO_CACHE;
		stats_add(fs->cfg.stats, hit ? STATS_PASSTHROUGH_OPENS_CACHE : STATS_PASSTHROUGH_OPENS_ORIGIN, 1);
	}
	return 0;
}

/* A writer over the cache copy may have written it through mmap (which the kernel maps to the
 * backing file): copy every range of the copy that differs to the origin — unless the origin
 * was changed behind us meanwhile, which then wins. node->io->write_lock held. */
static void writeback_locked(struct fs *fs, struct fs_node *n)
{
	uint32_t chunk = cache_store_chunk_size(fs->store);
	struct cache_fingerprint fp;
	char path[FS_PROC_PATH_MAX];
	char *cached = NULL, *origin = NULL;
	struct stat st, copy;
	bool wrote = false;
	int fd;

	if (n->io->mode != FS_IO_CACHE || !n->io->obj || !n->io->cache_writers)
		return;
	fd = fs_node_fd(fs, n);
	if (fd >= 0) {
		int nfd = fd;
		fs_proc_path(nfd, path);
		/* O_NOATIME: comparing reads the origin, which must not move its access time
		 * (relatime would, after a utimensat that put it before the mtime); it runs at
		 * every GETATTR. */
		fd = fs_open_retry(fs, AT_FDCWD, path, O_RDWR | O_NOATIME | O_CLOEXEC, 0);
		fs_node_fd_put(fs, n, nfd);
	}
	if (fd < 0) {
		log_error("cannot open inode %llu to write mmap changes back: %s",
		          (unsigned long long)n->ino, strerror(-fd));
		return;
	}
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		goto out;
	cache_fingerprint_from_stat(&st, &fp);
	if (!cache_fingerprint_equal(&fp, &n->io->mirror_fp))
		goto out;  /* changed behind us: the origin wins */
	cached = malloc(chunk);
	origin = malloc(chunk);
	if (!cached || !origin)
		goto out;
	for (uint64_t off = 0; off < fp.size; off += chunk) {
		ssize_t c = sys_pread(cache_object_data_fd(n->io->obj), cached, chunk, (off_t)off);
		ssize_t o = c > 0 ? sys_pread(fd, origin, (size_t)c, (off_t)off) : 0;
		if (c > 0 && (o != c || memcmp(cached, origin, (size_t)c))) {
			ssize_t w = sys_pwrite(fd, cached, (size_t)c, (off_t)off);
			wrote = true;
			if (w != c)
				log_error("writing mmap changes of inode %llu back to the origin failed: %s",
				          (unsigned long long)n->ino, w < 0 ? strerror((int)-w) : "short write");
		}
	}
	/* The mapping was written, but with the bytes already there: the origin's mtime and ctime
	 * move all the same, as they would on the origin itself. */
	if (!wrote && sys_fstatat(cache_object_data_fd(n->io->obj), "", &copy, AT_EMPTY_PATH) == 0 &&
	    (copy.st_mtim.tv_sec != n->io->copy_mtime.tv_sec ||
	     copy.st_mtim.tv_nsec != n->io->copy_mtime.tv_nsec)) {
		const struct timespec now[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
		int rc = sys_utimensat(fd, "", now, AT_EMPTY_PATH);
		if (rc < 0)
			log_warn("moving the mtime of inode %llu after an mmap write failed: %s",
			         (unsigned long long)n->ino, strerror(-rc));
	}
	fingerprint_refresh(fs, n, fd);
out:
	sys_close(fd);
	free(cached);
	free(origin);
}

void fs_cache_before_origin_change(struct fs *fs, struct fs_node *n)
{
	writeback_locked(fs, n);
}

static void writeback(struct fs *fs, struct fs_node *n)
{
	pthread_mutex_lock(&n->io->lock);
	pthread_mutex_lock(&n->io->write_lock);
	writeback_locked(fs, n);
	pthread_mutex_unlock(&n->io->write_lock);
	pthread_mutex_unlock(&n->io->lock);
}

/* node->io->lock held. */
static void object_release_locked(struct fs *fs, struct fs_node *n)
{
	int rc = cache_object_release(n->io->obj);
	if (rc < 0)
		fs_cache_error(fs, "record write", rc);
	n->io->obj = NULL;
}

/* Pin the node (a lookup reference, so a FORGET cannot free it) and its object (so the last
 * RELEASE leaves it to object_unpin) for work done after the answer. */
struct cache_object *fs_object_pin(struct fs *fs, struct fs_node *n)
{
	struct cache_object *obj;
	fs_node_ref(fs, n);
	fs_node_io_hold_existing(fs, n);  /* held by the caller's open file or pin: never NULL */
	pthread_mutex_lock(&n->io->lock);
	obj = n->io->obj;
	n->io->obj_pins++;
	pthread_mutex_unlock(&n->io->lock);
	return obj;
}

void fs_object_unpin(struct fs *fs, struct fs_node *n)
{
	pthread_mutex_lock(&n->io->lock);
	if (--n->io->obj_pins == 0 && n->io->open_count == 0 && n->io->obj)
		object_release_locked(fs, n);
	pthread_mutex_unlock(&n->io->lock);
	fs_node_io_release(fs, n);
	fs_node_forget(fs, n->nodeid, 1);  /* may free n */
}

bool fs_attr_volatile(const struct fs_node *n)
{
	return atomic_load_explicit(&n->passthrough_writers, memory_order_relaxed) > 0;
}

void fs_attr_invalidate(struct fs *fs, const struct fs_node *n)
{
	int rc = fuse_session_notify_inval_inode(fs->session, n->nodeid, -1, 0);
	if (rc < 0 && rc != -ENOENT)  /* ENOENT: the kernel holds no inode for it */
		log_warn("invalidating the attributes of inode %llu failed: %s",
		         (unsigned long long)n->ino, strerror(-rc));
}

void fs_cache_before_getattr(struct fs *fs, struct fs_node *n)
{
	if (n->type != S_IFREG || !fs_attr_volatile(n) || !fs_node_io_hold_existing(fs, n))
		return;
	writeback(fs, n);
	fs_node_io_release(fs, n);
}

void fs_file_sync(struct fs *fs, struct fs_file *f)
{
	if (f->check_writeback)
		writeback(fs, f->node);
}

/* The last close of an inode that had writers passed through to the origin: their writes
 * bypassed us, and a background fill may have raced with them unseen (file times can stay
 * equal), so drop every chunk (the generation bump also drops fills still in flight).
 * node->io->lock held. */
static void origin_writes_done(struct fs *fs, struct fs_node *n)
{
	struct cache_object_info info;
	int rc;

	pthread_mutex_lock(&n->io->write_lock);
	cache_object_info(n->io->obj, &info);
	rc = cache_object_invalidate(n->io->obj, 0, 0);
	if (rc < 0)
		fs_cache_error(fs, "invalidate", rc);
	else if (info.present_chunks)
		stats_add(fs->cfg.stats, STATS_INVALIDATIONS, 1);
	fingerprint_refresh_node(fs, n);
	pthread_mutex_unlock(&n->io->write_lock);
}

/* After a miss: queue the completion of a small (or pinned) file, once. The node is pinned or
 * its file open. True while a completion of the file is queued or running. */
static bool maybe_complete(struct fs *fs, struct fs_node *n, const struct cache_object_info *info)
{
	bool queue;
	if (!n->io->pinned && (!fs->cfg.complete_max || info->fingerprint.size > fs->cfg.complete_max))
		return false;
	if (info->present_chunks >= info->chunk_count)
		return false;
	pthread_mutex_lock(&n->io->lock);
	queue = !n->io->completing;
	n->io->completing = true;
	pthread_mutex_unlock(&n->io->lock);
	if (queue && !fs_fill_enqueue(fs, n, 0, UINT64_MAX, true)) {
		pthread_mutex_lock(&n->io->lock);
		n->io->completing = false;
		pthread_mutex_unlock(&n->io->lock);
		return false;
	}
	return true;
}

/* After the last release of a first read through the origin (n and obj, its object, pinned):
 * complete a small file, or copy the chunks of a larger one that the read left in the origin's
 * page cache. */
static void first_read_fill_behind(struct fs *fs, struct fs_node *n, struct cache_object *obj)
{
	struct cache_object_info info;
	if (!fs_cache_store(fs))
		return;
	cache_object_info(obj, &info);
	if (info.failed || info.removed || maybe_complete(fs, n, &info))
		return;
	if (info.present_chunks < info.chunk_count)
		fs_fill_enqueue_resident(fs, n);
}

void fs_file_detach(struct fs *fs, struct fs_file *f)
{
	struct fs_node *n = f->node;
	struct cache_object *behind = NULL;
	bool last;

	if (f->check_writeback)
		writeback(fs, n);
	if (atomic_load(&f->direct_fd) > 0)
		sys_close(atomic_load(&f->direct_fd));
	pthread_mutex_lock(&n->io->lock);
	n->io->open_count--;
	if (f->check_writeback)
		n->io->cache_writers--;
	if (f->passthrough && (f->open_flags & O_ACCMODE) != O_RDONLY)
		atomic_fetch_sub(&n->passthrough_writers, 1);
	if (f->passthrough && --n->io->passthrough_count == 0 && n->io->backing_id > 0) {
		int rc = fuse_session_backing_close(fs->session, n->io->backing_id);
		if (rc < 0)
			log_warn("closing backing id %d failed: %s", n->io->backing_id, strerror(-rc));
		n->io->backing_id = 0;
	}
	if (n->io->open_count == 0) {
		if (n->io->origin_writers && n->io->obj)
			origin_writes_done(fs, n);
		/* A first read through the origin: fill behind it (not if a writer joined: its
		 * writes bypassed us, and the object was just emptied). Pinned here, before an open
		 * of the inode coming in meanwhile and its release could drop the object. */
		if (n->io->first_read && !n->io->origin_writers && n->io->obj) {
			behind = n->io->obj;
			n->io->obj_pins++;
			fs_node_io_hold_existing(fs, n);  /* the pin's hold, as fs_object_pin takes */
		}
		n->io->first_read = false;
		n->io->origin_writers = false;
		if (n->io->obj && !n->io->obj_pins)
			object_release_locked(fs, n);
		n->io->mode = FS_IO_NONE;
	}
	last = n->io->open_count == 0;
	pthread_mutex_unlock(&n->io->lock);
	if (behind) {
		/* The pin's node reference (the kernel keeps the inode until this release is
		 * answered); the jobs pin both too, and the unpin releases the object if none did. */
		fs_node_ref(fs, n);
		first_read_fill_behind(fs, n, behind);
		fs_object_unpin(fs, n);
	}
	if (last && n->type == S_IFREG)
		fs_readahead_drop(fs, n);   /* the buffers its read-ahead keeps */
	fs_node_io_release(fs, n);
}

/* Count one read answered from the cache copy or the origin, also for its file. */
static void count_read(struct stats *stats, const struct fs_node *n, bool from_cache,
                       uint64_t bytes, uint64_t t0)
{
	stats_file_add(stats, n->nodeid, (uint64_t)n->ino, false, from_cache, bytes);
	stats_add(stats, from_cache ? STATS_READ_OPS_CACHE : STATS_READ_OPS_ORIGIN, 1);
	stats_add(stats, from_cache ? STATS_READ_BYTES_CACHE : STATS_READ_BYTES_ORIGIN, bytes);
	stats_record_latency(stats, from_cache ? STATS_LAT_READ_CACHE : STATS_LAT_READ_ORIGIN,
	                     clock_now_ns() - t0);
}

/* Answer a read from the origin. */
static void reply_from_origin(struct fuse_req *r, struct fs *fs, struct fs_file *f, size_t size,
                              uint64_t off, uint64_t t0)
{
	void *buf = fuse_req_scratch(r);
	ssize_t n = sys_pread(f->fd, buf, size, (off_t)off);
	if (n < 0) {
		stats_add(fs->cfg.stats, STATS_ORIGIN_ERRORS, 1);
		fuse_reply_err(r, (int)-n);
		return;
	}
	count_read(fs->cfg.stats, f->node, false, (uint64_t)n, t0);
	fuse_reply_data(r, buf, (size_t)n);
}

void fs_fill_count(struct fs *fs, const char *what, ssize_t filled, size_t read)
{
	struct stats *stats = fs->cfg.stats;
	if (filled == -ESTALE) {
		stats_add(stats, STATS_FILLS_DROPPED, 1);
	} else if (filled == -EDQUOT) {
		stats_add(stats, STATS_FILLS_REFUSED_FULL, 1);
	} else if (filled < 0) {
		fs_cache_error(fs, what, (int)filled);
	} else if (filled > 0) {
		uint64_t stored = (uint64_t)filled * cache_store_chunk_size(fs->store);
		stats_add(stats, STATS_FILLS, (uint64_t)filled);
		stats_add(stats, STATS_FILL_BYTES, stored < read ? stored : read);
	}
}

#define FILL_SPAN_MAX (8u * 1024 * 1024)
#define SEQUENTIAL_WINDOW (2u * 1024 * 1024)   /* a miss this close to the last read is sequential */

int fs_origin_read_open(struct fs *fs, struct fs_node *n, enum fs_origin_read how)
{
	char path[FS_PROC_PATH_MAX];
	int noatime = how == FS_ORIGIN_DIRECT ? 0 : O_NOATIME, fd = -EINVAL;
	int nfd = fs_node_fd(fs, n);

	if (nfd < 0)
		return nfd;
	fs_proc_path(nfd, path);
	if (how != FS_ORIGIN_RESIDENT)
		fd = fs_open_retry(fs, AT_FDCWD, path, O_RDONLY | O_DIRECT | noatime | O_CLOEXEC, 0);
	if (fd < 0 && how != FS_ORIGIN_DIRECT)
		fd = fs_open_retry(fs, AT_FDCWD, path, O_RDONLY | noatime | O_CLOEXEC, 0);
	fs_node_fd_put(fs, n, nfd);
	/* Advice only, outside the syscall seam: nothing to fail. */
	if (fd >= 0 && how == FS_ORIGIN_RESIDENT)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	return fd;
}

/* The fd for chunk-aligned miss reads: direct if the origin allows it, else our own. */
static int file_direct_fd(struct fs *fs, struct fs_file *f)
{
	int fd = atomic_load(&f->direct_fd), expected = 0;
	if (fd == 0) {
		fd = fs_origin_read_open(fs, f->node, FS_ORIGIN_DIRECT);
		if (fd < 0)
			fd = -1;
		if (!atomic_compare_exchange_strong(&f->direct_fd, &expected, fd)) {
			if (fd > 0)
				sys_close(fd);   /* another thread was first */
			fd = expected;
		}
	}
	return fd > 0 ? fd : f->fd;
}

/* A miss read in whole chunks: answer, then store the chunks (sequential reads, and requests
 * of half a chunk or more, whose chunks are about to be read anyway). */
static void read_miss_fill(struct fuse_req *r, struct fs *fs, struct fs_file *f,
                           const struct fuse_read_in *in, size_t size)
{
	struct stats *stats = fs->cfg.stats;
	struct fs_node *node = f->node;  /* f may be released once we answer; node is pinned */
	struct cache_object *obj = fs_object_pin(fs, node);
	struct cache_object_info info;
	uint64_t chunk = cache_store_chunk_size(fs->store), start, len, t0 = clock_now_ns();
	uint64_t gen = cache_object_generation(obj);
	struct fs_fill_ranges ranges;
	char *buf = NULL, *own = NULL;
	ssize_t n, filled;

	/* The chunks covering the request. Not clipped to the object's size, which may lag the
	 * origin (an evicted object records nothing, not even a new size): the origin's EOF ends
	 * the read. Into the thread's page-aligned scratch when they fit (a chunk-aligned 1 MiB
	 * read): a fresh 1 MiB buffer costs an mmap, 256 page faults and an munmap per request. */
	start = in->offset / chunk * chunk;
	len = (in->offset + size + chunk - 1) / chunk * chunk - start;
	if (len > 0 && len <= FUSE_SESSION_SCRATCH)
		buf = fuse_req_scratch(r);
	else if (len > 0 && len <= FILL_SPAN_MAX && posix_memalign((void **)&own, FS_DIRECT_ALIGN, len) == 0)
		buf = own;
	if (!buf) {
		reply_from_origin(r, fs, f, size, in->offset, t0);
		fs_object_unpin(fs, node);
		return;
	}
	n = sys_pread(file_direct_fd(fs, f), buf, len, (off_t)start);
	if (n < 0) {
		stats_add(stats, STATS_ORIGIN_ERRORS, 1);
		fuse_reply_err(r, (int)-n);
		free(own);
		fs_object_unpin(fs, node);
		return;
	}
	/* Where the origin has holes, for the fill: they stay holes in the copy. Asked before the
	 * answer (f and its fds may be gone after it); a write into a hole since the read moved
	 * the generation, and the fill is dropped. */
	fs_fill_data_ranges(file_direct_fd(fs, f), start, (uint64_t)n, &ranges);
	{
		uint64_t skip = in->offset - start;
		size_t give = (uint64_t)n > skip ? (size_t)((uint64_t)n - skip) : 0;
		if (give > size)
			give = size;
		count_read(stats, node, false, give, t0);
		fuse_reply_data(r, buf + skip, give);
	}
	/* After the answer: the application does not wait for the cache. The scratch stays this
	 * thread's until its next request. */
	filled = cache_object_fill_sparse(obj, gen, buf, (size_t)n, (off_t)start, ranges.ext,
	                                  ranges.count);
	fs_fill_count(fs, "fill", filled, (size_t)n);
	free(own);
	cache_object_info(obj, &info);
	if (filled != -EDQUOT)
		maybe_complete(fs, node, &info);
	fs_object_unpin(fs, node);
}

/* The read continues the file's last one (within SEQUENTIAL_WINDOW); records its end. */
static bool read_sequential(struct fs_file *f, uint64_t off, uint64_t size)
{
	uint64_t last = f->next_off;
	f->next_off = off + size;
	return off + SEQUENTIAL_WINDOW >= last && off <= last + SEQUENTIAL_WINDOW;
}

/* A miss in user space: sequential misses (and big requests) read whole chunks and fill them
 * after the answer; a small random miss reads just its bytes and leaves its chunk to a fill
 * thread, so that it costs what the origin read costs. */
static void read_miss(struct fuse_req *r, struct fs *fs, struct fs_file *f,
                      const struct fuse_read_in *in, size_t size, bool sequential)
{
	uint32_t chunk = cache_store_chunk_size(fs->store);
	struct fs_node *n = f->node;
	struct cache_object_info info;

	if (sequential || size >= chunk / 2) {
		read_miss_fill(r, fs, f, in, size);
		return;
	}
	/* Queue before answering: once answered, the file (and its node) may be released. */
	cache_object_info(n->io->obj, &info);
	if (!maybe_complete(fs, n, &info))
		fs_fill_enqueue(fs, n, in->offset, size, false);
	reply_from_origin(r, fs, f, size, in->offset, clock_now_ns());
}

void fs_file_read(struct fuse_req *r, struct fs_file *f, const struct fuse_read_in *in)
{
	struct fs *fs = fuse_req_fs(r);
	struct stats *stats = fs->cfg.stats;
	struct cache_object *obj = f->node->io->obj;
	void *buf = fuse_req_scratch(r);
	size_t size = in->size < FUSE_SESSION_SCRATCH ? in->size : FUSE_SESSION_SCRATCH;
	uint64_t t0 = clock_now_ns();
	ssize_t n;

	if (obj && !f->bypass_cache && f->node->io->mode == FS_IO_CACHE) {
		/* The cache copy mirrors the origin (plus mmap writes not yet written back): read it
		 * as the passthrough readers do. */
		n = sys_pread(cache_object_data_fd(obj), buf, size, (off_t)in->offset);
		if (n >= 0) {
			count_read(stats, f->node, true, (uint64_t)n, t0);
			fuse_reply_data(r, buf, (size_t)n);
			return;
		}
		fs_cache_error(fs, "read", (int)n);
		stats_add(stats, STATS_BYPASSES, 1);
	} else if (obj && !f->bypass_cache && !atomic_load(&fs->bypass.on)) {
		bool sequential = read_sequential(f, in->offset, size);
		struct fs_node *node = f->node;   /* f may be released once answered */
		struct fs_readahead_ticket ticket;
		int waited = 0;
		if (fs_readahead_lookup(node, obj, in->offset, size, &ticket)) {
			waited = FS_READAHEAD_HANDOFF;   /* read ahead and kept for us */
			n = -ENODATA;
		} else {
			n = cache_object_read(obj, buf, size, (off_t)in->offset);
			if (n == -ENODATA)
				waited = fs_readahead_wait(fs, node, obj, in->offset, size, &ticket);
		}
		if (waited == FS_READAHEAD_WAITED)
			n = cache_object_read(obj, buf, size, (off_t)in->offset);  /* read ahead meanwhile? */
		if (!sequential)
			fs_readahead_advance(fs, node, obj, in->offset, size, false);
		if (n == -ENODATA && waited != FS_READAHEAD_HANDOFF) {
			/* Before the miss reads the origin, so that the read-ahead's reads overlap it. */
			if (sequential)
				fs_readahead_advance(fs, node, obj, in->offset, size, true);
			read_miss(r, fs, f, in, size, sequential);
			return;
		}
		if (waited == FS_READAHEAD_HANDOFF || n >= 0) {
			/* A hit, or read ahead: then the read-ahead's own buffer answers (one copy less,
			 * and no wait for the object's lock, which a fill holds across its write). The
			 * node and object stay pinned across the answer (f may be released once
			 * answered): for the ticket, and for the window, which moves after the answer. */
			bool handoff = waited == FS_READAHEAD_HANDOFF, pin = sequential || handoff;
			const void *data = handoff ? ticket.data : buf;
			size_t len = handoff ? ticket.len : (size_t)n;
			if (pin)
				fs_object_pin(fs, node);
			count_read(stats, node, true, len, t0);
			fuse_reply_data(r, data, len);
			if (handoff)
				fs_readahead_ticket_release(node, &ticket);
			if (sequential)
				fs_readahead_advance(fs, node, obj, in->offset, size, true);
			if (pin)
				fs_object_unpin(fs, node);
			return;
		}
		fs_cache_error(fs, "read", (int)n);
		stats_add(stats, STATS_BYPASSES, 1);
	}
	reply_from_origin(r, fs, f, size, in->offset, t0);
}

/* FS_IO_CACHE: put bytes into the cache copy whether or not their chunks are present. */
static void mirror_bytes(struct fs *fs, struct fs_node *n, const void *data, size_t size, off_t off)
{
	ssize_t w = sys_pwrite(cache_object_data_fd(n->io->obj), data, size, off);
	if (w != (ssize_t)size)
		fs_cache_error(fs, "mirror write", w < 0 ? (int)w : -EIO);
}

/* FS_IO_CACHE: copy [off, off+len) of the origin into the cache copy (after fallocate or
 * copy_file_range changed it there). */
static void mirror_range(struct fs *fs, struct fs_node *n, off_t off, off_t len)
{
	char path[FS_PROC_PATH_MAX];
	size_t bufsize = 1024 * 1024;
	char *buf = malloc(bufsize);
	int fd;

	fd = fs_node_fd(fs, n);
	if (fd >= 0) {
		int nfd = fd;
		fs_proc_path(nfd, path);
		fd = fs_open_retry(fs, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
		fs_node_fd_put(fs, n, nfd);
	}
	if (fd < 0 || !buf) {
		fs_cache_error(fs, "mirror", fd < 0 ? fd : -ENOMEM);
		goto out;
	}
	while (len > 0) {
		ssize_t r = sys_pread(fd, buf, (size_t)len < bufsize ? (size_t)len : bufsize, off);
		if (r <= 0)
			break;
		mirror_bytes(fs, n, buf, (size_t)r, off);
		cache_object_write(n->io->obj, buf, (size_t)r, off);
		off += r;
		len -= r;
	}
out:
	if (fd >= 0)
		sys_close(fd);
	free(buf);
}

static void fingerprint_refresh_node(struct fs *fs, struct fs_node *n)
{
	int fd = fs_node_fd(fs, n);
	if (fd < 0)
		return;
	fingerprint_refresh(fs, n, fd);
	fs_node_fd_put(fs, n, fd);
}

/* Record the origin's new fingerprint so our own change does not invalidate the object. */
/* FS_IO_CACHE: note the copy's mtime after we wrote it (node->io->write_lock held). */
static void copy_mtime_note(struct fs_node *n)
{
	struct stat st;
	if (n->io->mode == FS_IO_CACHE && n->io->obj &&
	    sys_fstatat(cache_object_data_fd(n->io->obj), "", &st, AT_EMPTY_PATH) == 0)
		n->io->copy_mtime = st.st_mtim;
}

static void fingerprint_refresh(struct fs *fs, struct fs_node *n, int fd)
{
	struct cache_fingerprint fp;
	struct stat st;
	copy_mtime_note(n);
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	cache_fingerprint_from_stat(&st, &fp);
	n->io->mirror_fp = fp;
	if (cache_object_set_fingerprint(n->io->obj, &fp) > 0)
		stats_add(fs->cfg.stats, STATS_INVALIDATIONS, 1);
}

void fs_file_write(struct fuse_req *r, struct fs_file *f, const struct fuse_write_in *in,
                   const void *data)
{
	struct fs *fs = fuse_req_fs(r);
	struct stats *stats = fs->cfg.stats;
	struct fs_node *n = f->node;
	uint64_t t0 = clock_now_ns();
	ssize_t w;

	/* Write-through: the origin first, then the cache copy, before the answer, so a reader of
	 * the cache copy sees the write at once; the lock keeps both in the same order. */
	pthread_mutex_lock(&n->io->write_lock);
	w = sys_pwrite(f->fd, data, in->size, (off_t)in->offset);
	if (w > 0 && n->io->obj) {
		int rc = cache_object_write(n->io->obj, data, (size_t)w, (off_t)in->offset);
		if (rc < 0)
			fs_cache_error(fs, "write-through", rc);
		if (n->io->mode == FS_IO_CACHE)
			mirror_bytes(fs, n, data, (size_t)w, (off_t)in->offset);
		fingerprint_refresh(fs, n, f->fd);
	}
	pthread_mutex_unlock(&n->io->write_lock);
	if (w < 0) {
		stats_add(stats, STATS_ORIGIN_ERRORS, 1);
		fuse_reply_err(r, (int)-w);
		return;
	}
	stats_add(stats, STATS_WRITE_OPS, 1);
	stats_add(stats, STATS_WRITE_BYTES, (uint64_t)w);
	stats_file_add(stats, n->nodeid, (uint64_t)n->ino, true, false, (uint64_t)w);
	stats_record_latency(stats, STATS_LAT_WRITE, clock_now_ns() - t0);
	fuse_reply_write(r, (uint32_t)w);
}

void fs_cache_origin_changed(struct fs *fs, struct fs_node *n, bool truncated, off_t size,
                             off_t off, off_t len)
{
	int rc;
	if (!n->io->obj)
		return;
	if (n->io->mode == FS_IO_CACHE && !truncated) {
		mirror_range(fs, n, off, len);  /* invalidating would punch holes under readers */
		fingerprint_refresh_node(fs, n);
		return;
	}
	rc = truncated ? cache_object_truncate(n->io->obj, size) : cache_object_invalidate(n->io->obj, off, len);
	if (rc < 0)
		fs_cache_error(fs, truncated ? "truncate" : "invalidate", rc);
	if (truncated && n->io->mode == FS_IO_CACHE) {
		/* Passthrough readers read the copy's bytes, also after the object was evicted
		 * (it then stores nothing, but its data file stays theirs): size it like the origin. */
		int t = sys_ftruncate(cache_object_data_fd(n->io->obj), size);
		if (t < 0)
			fs_cache_error(fs, "mirror truncate", t);
		else
			cache_object_account(n->io->obj);
	}
	else if (!truncated)
		stats_add(fs->cfg.stats, STATS_INVALIDATIONS, 1);
	fingerprint_refresh_node(fs, n);
}

void fs_cache_metadata_changed(struct fs *fs, struct fs_node *n)
{
	if (n->type != S_IFREG || !fs_node_io_hold_existing(fs, n))
		return;  /* no open state: no object to keep in step */
	pthread_mutex_lock(&n->io->lock);
	if (n->io->obj) {
		pthread_mutex_lock(&n->io->write_lock);
		fingerprint_refresh_node(fs, n);
		pthread_mutex_unlock(&n->io->write_lock);
	}
	pthread_mutex_unlock(&n->io->lock);
	fs_node_io_release(fs, n);
}

int fs_file_data_fd(struct fs_file *f)
{
	struct fs_node *n = f->node;
	if (n->io->mode == FS_IO_CACHE && n->io->obj && !f->bypass_cache)
		return cache_object_data_fd(n->io->obj);
	return f->fd;
}

int fs_file_report(struct fs *fs, uint64_t nodeid, struct fs_file_report *out)
{
	struct fs_node *n = fs_node_get_ref(fs, nodeid);
	struct cache_store *store;
	struct cache_object_info info;
	bool have_info = false;
	struct stat st;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	out->cached = FS_CACHED_UNKNOWN;
	if (!n)
		return -ENOENT;
	if (fs_node_relpath(fs, n, out->path, sizeof(out->path)) < 0)
		out->path[0] = '\0';
	fd = fs_node_fd(fs, n);
	rc = fd < 0 ? fd : sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	if (fd >= 0)
		fs_node_fd_put(fs, n, fd);
	store = fs_cache_store(fs);
	if (rc == 0 && S_ISREG(st.st_mode) && store) {
		/* The object the open files use, if any; else the one on disk (opening an absent
		 * one and letting it go leaves nothing: an empty object is not kept). */
		if (fs_node_io_hold_existing(fs, n)) {
			pthread_mutex_lock(&n->io->lock);
			if (n->io->obj) {
				cache_object_info(n->io->obj, &info);
				have_info = true;
			}
			pthread_mutex_unlock(&n->io->lock);
			fs_node_io_release(fs, n);
		}
		if (!have_info) {
			struct cache_fingerprint fp;
			struct cache_object *obj;
			cache_fingerprint_from_stat(&st, &fp);
			if (cache_object_open(store, cache_key_from_stat(&st), &fp, &obj) >= 0) {
				cache_object_info(obj, &info);
				have_info = true;
				cache_object_release(obj);
			}
		}
	}
	if (rc == 0) {
		out->size = (uint64_t)st.st_size;
		if (have_info && !info.failed) {
			uint64_t chunk = cache_store_chunk_size(store);
			out->bytes_cached = info.present_chunks * chunk;
			if (out->bytes_cached > out->size)
				out->bytes_cached = out->size;
			out->cached = info.present_chunks == 0 ? FS_CACHED_NONE :
			              info.present_chunks >= info.chunk_count ? FS_CACHED_FULL :
			              FS_CACHED_PARTIAL;
		}
	}
	fs_node_forget(fs, n->nodeid, 1);
	return rc;
}
