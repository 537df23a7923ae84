/* engine_open: the io-mode of regular-file opens, attach and detach of open files, the
 * first-read set. At the first open of an inode (DESIGN.md §5):
 *   read-only, cache object complete   → ENGINE_IO_CACHE: passthrough to the cache copy (a hit)
 *   read-only, object holds no data,
 *     the file's first read            → ENGINE_IO_ORIGIN: passthrough to the original file; the
 *                                        last release fills the cache behind it (a completion,
 *                                        or the chunks left in the origin's page cache)
 *   read-only, object partial/absent   → ENGINE_IO_USER: reads hit the object or fill it
 *   writable, object holds no data     → ENGINE_IO_ORIGIN: passthrough to the original file
 *   writable, object holds data        → ENGINE_IO_USER: write-through, origin first
 * Later opens join the inode's mode (the kernel allows one mode and one backing file per
 * inode). A writer, or a reader that finds the origin changed behind the cache (a stale copy),
 * joining ENGINE_IO_CACHE gets direct I/O: its reads and writes come here.
 * Invariant of ENGINE_IO_CACHE: passthrough readers read the cache copy's bytes directly, so
 * every change made through the mount is mirrored into it byte for byte (never a punched hole),
 * and no fill writes it meanwhile; its chunk map may only become more conservative.
 */
#include "engine/engine_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "util/log.h"

/* The origin file's handle goes into its object's record, so that the scrub can find the file
 * after a restart without a path (cache_store.h). Where the file system has no handles, the
 * scrub keeps the object. */
static void open_note_handle(struct engine *e, struct engine_inode *ei)
{
	struct cache_origin_handle handle = { 0 };

	if (!e->host.origin_handle(e->host.arg, ei->node, &handle))
		return;
	cache_object_set_origin_handle(ei->obj, &handle);
}

/* Register fd as the inode's backing file; false if the kernel refused (then user space).
 * fd -1: the origin inode itself. */
static bool open_backing_register(struct engine *e, struct engine_inode *ei, int fd)
{
	int id, nfd = -1;
	if (fd < 0) {
		nfd = engine_host_origin_fd(e, ei);
		if (nfd < 0)
			return false;
		fd = nfd;
	}
	id = e->host.backing_open(e->host.arg, fd);
	if (nfd >= 0)
		engine_host_origin_fd_put(e, ei, nfd);
	if (id > 0) {
		ei->backing_id = id;
		return true;
	}
	if (id != -EPERM)   /* EPERM: the host turned passthrough off and said why */
		log_warn("passthrough unavailable for inode %llu: %s; serving it in user space",
		         (unsigned long long)ei->ino, strerror(-id));
	return false;
}

/* ---- first reads (cfg.first_read_origin) ---------------------------------------------------
 * A file the cache holds nothing of is read through the origin at its first read-only open:
 * filling the cache on the way (a tee through user space) costs the reader about half the
 * origin's speed on a fast origin (docs/PERFORMANCE.md, ratio c). The set remembers the files
 * read so, so that an open after that, if the cache still holds nothing (a read with O_DIRECT
 * of a file larger than --complete-max leaves nothing in the page cache to copy), fills. */

static uint64_t open_seen_hash(const struct stat *st)
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
static bool open_first_read_seen(struct engine *e, const struct stat *st)
{
	struct engine_seen *s = &e->seen;
	uint64_t h = open_seen_hash(st);
	unsigned set = (unsigned)(h % ENGINE_SEEN_SETS);
	bool seen = false;

	pthread_mutex_lock(&s->lock);
	for (int w = 0; w < ENGINE_SEEN_WAYS && !seen; w++)
		seen = s->hash[set][w] == h;
	if (!seen) {
		s->hash[set][s->next[set]] = h;
		s->next[set] = (uint8_t)((s->next[set] + 1) % ENGINE_SEEN_WAYS);
	}
	pthread_mutex_unlock(&s->lock);
	return seen;
}

void engine_open_first_read_forget(struct engine *e, const struct stat *st)
{
	struct engine_seen *s = &e->seen;
	pthread_mutex_lock(&s->lock);
	if (!st) {
		memset(s->hash, 0, sizeof(s->hash));
	} else {
		uint64_t h = open_seen_hash(st);
		unsigned set = (unsigned)(h % ENGINE_SEEN_SETS);
		for (int w = 0; w < ENGINE_SEEN_WAYS; w++)
			if (s->hash[set][w] == h)
				s->hash[set][w] = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- kept objects (struct engine_kept) ------------------------------------------------------ */

int engine_kept_init(struct engine *e)
{
	struct engine_kept *k = &e->kept;
	unsigned sets = (e->cfg.kept_max + ENGINE_KEPT_WAYS - 1) / ENGINE_KEPT_WAYS;

	pthread_mutex_init(&k->lock, NULL);
	if (!sets || !e->store)
		return 0;
	k->slot = calloc(sets, sizeof(*k->slot));
	k->next = calloc(sets, sizeof(*k->next));
	if (!k->slot || !k->next)
		return -ENOMEM;
	k->sets = sets;
	k->bytes_max = ENGINE_KEPT_BYTES_MAX;
	if (cache_store_capacity(e->store) &&
	    cache_store_capacity(e->store) / ENGINE_KEPT_BYTES_DIVISOR < k->bytes_max)
		k->bytes_max = cache_store_capacity(e->store) / ENGINE_KEPT_BYTES_DIVISOR;
	return 0;
}

static unsigned kept_set(const struct engine_kept *k, struct cache_key key)
{
	uint64_t h = (key.ino ^ (key.dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (unsigned)((h ^ (h >> 32)) % k->sets);
}

/* Take the entry of key out of the set: true if there was one. */
static bool kept_take(struct engine *e, struct cache_key key, struct engine_kept_entry *out)
{
	struct engine_kept *k = &e->kept;
	bool found = false;
	unsigned set;

	if (!k->sets)
		return false;
	set = kept_set(k, key);
	pthread_mutex_lock(&k->lock);
	for (int w = 0; w < ENGINE_KEPT_WAYS && !found; w++) {
		struct engine_kept_entry *x = &k->slot[set][w];
		if (x->obj && x->key.dev == key.dev && x->key.ino == key.ino) {
			*out = *x;
			k->bytes -= x->bytes;
			memset(x, 0, sizeof(*x));
			found = true;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

/* Let go of what an entry holds (no engine lock held). */
static void kept_release(struct engine *e, struct engine_kept_entry *x, bool close_id)
{
	int rc;
	if (close_id && x->backing_id > 0 && (rc = e->host.backing_close(e->host.arg, x->backing_id)) < 0)
		log_warn("closing backing id %d failed: %s", x->backing_id, strerror(-rc));
	rc = cache_object_release_parked(x->obj);
	if (rc < 0)
		engine_bypass_error(e, "record write", rc);
	memset(x, 0, sizeof(*x));
}

/* Keep x (taking over its references); the entry it pushes out, if any, is released, and so
 * is x itself if the kept copies would pass their bytes. Parked first, while no other thread
 * can take it (a taker's reopen opens the data file again). */
static void kept_put(struct engine *e, struct engine_kept_entry *x)
{
	struct engine_kept *k = &e->kept;
	struct engine_kept_entry old = { 0 };
	unsigned set = kept_set(k, x->key);
	uint64_t forgets = atomic_load(&k->forgets);   /* before the park looks at the object */
	bool fits;
	int way = -1;

	/* An object that could not be parked (another holder: warm, a report, an open that took
	 * it meanwhile; or something left to sync) keeps its data fd: not kept, so that no entry
	 * holds an fd (the table is sized by memory, not by the fd limit) and no object is kept
	 * twice. */
	if (!cache_object_park(x->obj)) {
		kept_release(e, x, true);
		return;
	}
	pthread_mutex_lock(&k->lock);
	for (int w = 0; w < ENGINE_KEPT_WAYS && way < 0; w++)
		if (!k->slot[set][w].obj)
			way = w;
	if (way < 0) {
		way = k->next[set];
		old = k->slot[set][way];
	}
	/* A deleted file's key was forgotten since the park: maybe this object's, too early to
	 * find it here (a discard's mark after the park, its forget before this insert). */
	fits = k->bytes - old.bytes + x->bytes <= k->bytes_max && atomic_load(&k->forgets) == forgets;
	if (fits) {
		if (old.obj)
			k->next[set] = (uint8_t)((way + 1) % ENGINE_KEPT_WAYS);
		k->bytes += x->bytes - old.bytes;
		k->slot[set][way] = *x;
	} else {
		old = *x;   /* full (the oldest entries stay), or a forget raced: this one goes */
	}
	pthread_mutex_unlock(&k->lock);
	if (old.obj)
		kept_release(e, &old, true);
}

void engine_kept_forget(struct engine *e, const struct cache_key *key)
{
	struct engine_kept_entry x;
	if (!key)
		engine_kept_drain(e, true);
	else if (kept_take(e, *key, &x))
		kept_release(e, &x, true);
}

void engine_kept_drain(struct engine *e, bool close_ids)
{
	struct engine_kept *k = &e->kept;
	for (unsigned set = 0; set < k->sets; set++) {
		for (int w = 0; w < ENGINE_KEPT_WAYS; w++) {
			struct engine_kept_entry x;
			pthread_mutex_lock(&k->lock);
			x = k->slot[set][w];
			k->bytes -= x.bytes;
			memset(&k->slot[set][w], 0, sizeof(x));
			pthread_mutex_unlock(&k->lock);
			if (x.obj)
				kept_release(e, &x, close_ids);
		}
	}
}

/* May an open with open_flags pass through to the original? The kernel reopens the backing
 * file with the application's flags: with O_DIRECT on a file system that refuses it the open
 * would fail with EIO, while our own fds drop O_DIRECT and serve it in user space. */
static bool open_origin_passthrough_ok(struct engine *e, struct engine_inode *ei, int open_flags)
{
	int fd;

	if (!(open_flags & O_DIRECT))
		return true;
	fd = engine_fill_origin_open(e, ei, ENGINE_ORIGIN_DIRECT);
	if (fd >= 0)
		sys_close(fd);
	return fd != -EINVAL;
}

/* A deleted file's copy was discarded while this open took its key and opened its object
 * (engine.discards moved): the discard may have run before the object was in the table and
 * found nothing, so that this open made a fresh object for a name that just went. Asked again
 * now that the object is in the table: either this look sees the change, or the discard came
 * after and found the object; if the name went, the object goes at its last release (its
 * holders keep it; a later file at the name must not find it).
 * Known by path: the node's path is no longer the key's (a rename moved the file after the
 * path was read). Known by inode: the inode has no name left (an unlink after the open's
 * stat). */
static void open_recheck(struct engine *e, struct engine_inode *ei, struct cache_store *store,
                         const struct stat *st)
{
	bool gone = true;

	if (e->cfg.files_by_path) {
		char rel[ENGINE_RELPATH_MAX];
		if (e->host.relpath(e->host.arg, ei->node, rel, sizeof(rel)) == 0) {
			struct cache_key now = engine_key(e, rel, st);
			gone = now.dev != ei->key.dev || now.ino != ei->key.ino;
		}
	} else {
		struct stat at;
		int fd = e->host.origin_fd(e->host.arg, ei->node);
		if (fd < 0)
			return;
		gone = sys_fstatat(fd, "", &at, AT_EMPTY_PATH) == 0 && at.st_nlink == 0;
		e->host.origin_fd_put(e->host.arg, ei->node, fd);
	}
	if (gone)
		(void)cache_object_discard(store, ei->key);
}

/* First open of the inode: open its cache object and choose the mode. ei->lock held. store:
 * engine_bypass_store(), asked before the lock; discards: engine_discards() before st. */
static void open_mode_choose(struct engine *e, struct engine_inode *ei, struct cache_store *store,
                             const struct stat *st, uint64_t discards, bool writer, int open_flags)
{
	bool pt = e->host.passthrough_ok(e->host.arg);
	struct cache_object_info info;
	int kept_id = 0;   /* the backing id kept with the object, used or closed below */
	bool complete;

	ei->mode = ENGINE_IO_USER;
	ei->pinned = false;
	ei->cache_written = false;
	if (store && (e->cfg.exclude_count || e->cfg.pin_count || e->cfg.files_by_path)) {
		char rel[ENGINE_RELPATH_MAX];
		bool known = e->host.relpath(e->host.arg, ei->node, rel, sizeof(rel)) == 0;
		if (known && engine_pinned_match(e->cfg.exclude_globs, e->cfg.exclude_count, rel)) {
			stats_add(e->cfg.stats, STATS_EXCLUDED_OPENS, 1);
			store = NULL;
		} else if (known) {
			ei->pinned = engine_pinned_match(e->cfg.pin_globs, e->cfg.pin_count, rel);
		}
		if (known || !e->cfg.files_by_path)
			ei->key = engine_key(e, known ? rel : NULL, st);
		else
			store = NULL;   /* known by its path, which is not known (deleted): no copy */
	} else if (store) {
		ei->key = engine_key(e, NULL, st);
	}
	if (store) {
		struct cache_fingerprint fp;
		struct engine_kept_entry kx = { 0 };
		int rc;
		engine_fingerprint(e, st, &fp);
		if (ei->obj) {  /* still held by a fill from before the last close: reuse it */
			rc = cache_object_revalidate(ei->obj, &fp);
		} else if (kept_take(e, ei->key, &kx) &&
		           (rc = cache_object_reopen(kx.obj, &fp)) != -ESTALE) {
			ei->obj = kx.obj;   /* kept since its last release: checked, not read again */
			if (rc == 0) {   /* counted only when the kept copy is what serves the open */
				stats_add(e->cfg.stats, STATS_KEPT_REOPENS, 1);
				kept_id = kx.backing_id;
			} else if (kx.backing_id > 0)
				e->host.backing_close(e->host.arg, kx.backing_id);
		} else {
			if (kx.obj)   /* removed or discarded while kept */
				kept_release(e, &kx, true);
			rc = cache_object_open(store, ei->key, &fp, &ei->obj);
		}
		if (rc < 0 && !ei->obj_holds) {
			if (ei->obj)
				cache_object_release(ei->obj);
			ei->obj = NULL;
			engine_bypass_error(e, "object open", rc);
		} else if (rc < 0) {
			engine_bypass_error(e, "object revalidation", rc);
		} else if (rc == CACHE_OBJECT_RESET) {
			stats_add(e->cfg.stats, STATS_INVALIDATIONS, 1);
		}
		if (ei->obj && atomic_load(&e->discards) != discards)
			open_recheck(e, ei, store, st);
		if (ei->obj && ei->pinned)
			cache_store_pin(store, ei->key, true);
		if (ei->obj && !cache_object_has_origin_handle(ei->obj))
			open_note_handle(e, ei);
	}
	if (!pt || !store || !ei->obj) {
		if (kept_id > 0)
			e->host.backing_close(e->host.arg, kept_id);
		if (pt && open_origin_passthrough_ok(e, ei, open_flags) &&
		    open_backing_register(e, ei, -1))
			ei->mode = ENGINE_IO_ORIGIN;
		return;
	}
	cache_object_info(ei->obj, &info);
	complete = !writer && cache_object_complete(ei->obj) && !info.failed;
	if (complete) {
		/* The id kept with the object is registered for its data file, which the kernel
		 * allows to back the inode again once no open file uses it (KERNEL-FUSE.md §2.8). */
		if (kept_id > 0)
			ei->backing_id = kept_id;
		if (kept_id > 0 || open_backing_register(e, ei, cache_object_data_fd(ei->obj))) {
			ei->mode = ENGINE_IO_CACHE;
			pthread_mutex_lock(&ei->write_lock);
			ei->copy_mtime_noted = false;   /* taken when a writer joins */
			ei->mirror_fp = info.fingerprint;
			pthread_mutex_unlock(&ei->write_lock);
		}
		kept_id = 0;
	}
	if (kept_id > 0)
		e->host.backing_close(e->host.arg, kept_id);
	if (complete) {
		return;
	} else if (writer && info.present_chunks == 0) {
		if (open_origin_passthrough_ok(e, ei, open_flags) && open_backing_register(e, ei, -1))
			ei->mode = ENGINE_IO_ORIGIN;
	} else if (!writer && info.present_chunks == 0 && e->cfg.first_read_origin &&
	           open_origin_passthrough_ok(e, ei, open_flags) && !open_first_read_seen(e, st) &&
	           open_backing_register(e, ei, -1)) {
		ei->mode = ENGINE_IO_ORIGIN;
		ei->first_read = true;
		stats_add(e->cfg.stats, STATS_FIRST_READS, 1);
	}
}

static void open_origin_writes_done(struct engine *e, struct engine_inode *ei);

int engine_open_attach(struct engine *e, struct engine_file *f, const struct stat *st_in,
                       struct engine_open_result *out)
{
	struct engine_inode *ei = f->inode;
	bool writer = (f->open_flags & O_ACCMODE) != O_RDONLY;
	bool have_stat = st_in != NULL;
	struct cache_store *store;
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (!f->regular) {
		pthread_mutex_lock(&ei->lock);
		ei->open_count++;
		pthread_mutex_unlock(&ei->lock);
		return 0;
	}
	if (have_stat)
		st = *st_in;
	/* Asked before the inode lock: leaving the breaker is told to the host (which rewrites
	 * its state file) by engine_bypass_notify below, with no lock held. */
	store = engine_bypass_store(e);
	pthread_mutex_lock(&ei->lock);
	if (writer && (f->open_flags & O_TRUNC)) {
		int rc;
		pthread_mutex_lock(&ei->write_lock);
		rc = sys_ftruncate(f->fd, 0);
		if (rc == 0)
			engine_write_changed(e, ei, true, 0, 0, 0);
		pthread_mutex_unlock(&ei->write_lock);
		if (rc < 0) {
			pthread_mutex_unlock(&ei->lock);
			engine_bypass_notify(e);
			return rc;
		}
		have_stat = sys_fstatat(f->fd, "", &st, AT_EMPTY_PATH) == 0;
	}
	if (ei->open_count == 0 && have_stat) {
		/* Times not settled where changes are not watched: no cache (engine_settle.c). An
		 * object still held (a fill job, warm) may predate a change within the same tick:
		 * emptied, so that the open is served from the original. */
		if (engine_settle_begin(e, ei, &st)) {
			stats_add(e->cfg.stats, STATS_UNSETTLED_OPENS, 1);
			if (ei->obj)
				open_origin_writes_done(e, ei);
			store = NULL;
		}
		/* A file with no name left (reopened through /proc/PID/fd, O_TMPFILE, an open that
		 * raced its unlink): its copy would serve nobody after it, and one created after the
		 * unlink's discard would stay behind as a live object. */
		if (st.st_nlink == 0 && !ei->obj)
			store = NULL;
		open_mode_choose(e, ei, store, &st, f->discards, writer, f->open_flags);
	} else if (ei->open_count == 0) {
		ei->mode = ENGINE_IO_USER;
	}
	if (ei->mode == ENGINE_IO_CACHE) {
		struct cache_fingerprint fp = { 0 };
		if (have_stat)
			engine_fingerprint(e, &st, &fp);
		pthread_mutex_lock(&ei->write_lock);
		f->stale = !have_stat || !cache_fingerprint_equal(&fp, &ei->mirror_fp);
		/* The copy's mtime before a writer's first change (nothing else writes the copy while
		 * only readers pass through to it, so this equals its mtime at the first open). */
		if (writer && !ei->copy_mtime_noted) {
			engine_write_copy_mtime_note(ei);
			ei->copy_mtime_noted = true;
		}
		pthread_mutex_unlock(&ei->write_lock);
		if (writer)
			ei->cache_written = true;
		f->via_daemon = writer || f->stale;
		f->check_writeback = writer;
		if (writer)
			ei->cache_writers++;
	}
	if (ei->mode == ENGINE_IO_ORIGIN && writer)
		ei->origin_writers = true;
	if (ei->mode == ENGINE_IO_CACHE || ei->mode == ENGINE_IO_ORIGIN) {
		f->passthrough = true;
		ei->passthrough_count++;
		out->passthrough = true;
		out->direct_io = f->via_daemon;
		out->backing_id = ei->backing_id;
		out->hit = ei->mode == ENGINE_IO_CACHE;
	}
	ei->open_count++;
	pthread_mutex_unlock(&ei->lock);
	engine_bypass_notify(e);

	stats_add(e->cfg.stats, STATS_OPENS, 1);
	/* Reads of a passthrough open never reach us: the kernel counts them (stats_bpf.h); here
	 * only the open, never the file's size as if it had been read. */
	if (f->passthrough && !f->via_daemon)
		stats_add(e->cfg.stats, out->hit ? STATS_PASSTHROUGH_OPENS_CACHE
		                                 : STATS_PASSTHROUGH_OPENS_ORIGIN, 1);
	return 0;
}

/* The last close of an inode that had writers passed through to the origin: their writes
 * never reached us, and a background fill may have raced with them unseen (file times can stay
 * equal), so drop every chunk (the generation bump also drops fills still in flight).
 * ei->lock held. */
static void open_origin_writes_done(struct engine *e, struct engine_inode *ei)
{
	struct cache_object_info info;
	int rc;

	pthread_mutex_lock(&ei->write_lock);
	cache_object_info(ei->obj, &info);
	rc = cache_object_invalidate(ei->obj, 0, 0);
	if (rc < 0)
		engine_bypass_error(e, "invalidate", rc);
	else if (info.present_chunks)
		stats_add(e->cfg.stats, STATS_INVALIDATIONS, 1);
	engine_write_fingerprint_refresh(e, ei);
	pthread_mutex_unlock(&ei->write_lock);
}

/* After the last release of a first read through the origin (node and obj held): complete a
 * small file, or copy the chunks of a larger one that the read left in the page cache. */
static void open_first_read_fill_behind(struct engine *e, struct engine_inode *ei,
                                        struct cache_object *obj)
{
	struct cache_object_info info;
	if (!engine_bypass_store(e))
		return;
	cache_object_info(obj, &info);
	if (info.failed || info.removed || engine_fill_maybe_complete(e, ei, &info))
		return;
	if (info.present_chunks < info.chunk_count)
		engine_fill_resident(e, ei);
}

/* May the object of ei, whose last file is being released, be kept? ei->lock held. */
static bool open_keepable(struct engine *e, struct engine_inode *ei, struct engine_file *f)
{
	struct cache_object_info info;

	if (!e->kept.sets || ei->open_count != 0 || ei->mode != ENGINE_IO_CACHE || !ei->obj ||
	    ei->obj_holds || ei->cache_written || ei->origin_writers || ei->unsettled ||
	    !f->passthrough || ei->passthrough_count != 1 || ei->backing_id <= 0)
		return false;
	cache_object_info(ei->obj, &info);
	/* A deleted file's copy goes at its last release; a removed or failed one serves nothing. */
	return !info.failed && !info.removed && !info.discarded &&
	       info.fingerprint.size <= ENGINE_KEPT_SIZE_MAX;
}

void engine_open_detach(struct engine *e, struct engine_file *f)
{
	struct engine_inode *ei = f->inode;
	struct cache_object *behind = NULL;
	struct engine_kept_entry kept = { 0 };
	bool last;

	if (f->check_writeback)
		engine_write_back(e, ei);
	if (atomic_load(&f->direct_fd) > 0)
		sys_close(atomic_load(&f->direct_fd));
	pthread_mutex_lock(&ei->lock);
	ei->open_count--;
	if (f->check_writeback)
		ei->cache_writers--;
	if (ei->open_count == 0)
		engine_settle_end(ei);
	/* The last close of a read-only hit on a small file: its object and backing id are kept
	 * for the next open (struct engine_kept), not released. */
	if (open_keepable(e, ei, f)) {
		struct cache_object_info info;
		cache_object_info(ei->obj, &info);
		kept = (struct engine_kept_entry){ .obj = ei->obj, .key = ei->key,
		                                   .backing_id = ei->backing_id,
		                                   .bytes = info.allocated_bytes };
		ei->obj = NULL;
		ei->backing_id = 0;
	}
	if (f->passthrough && --ei->passthrough_count == 0 && ei->backing_id > 0) {
		int rc = e->host.backing_close(e->host.arg, ei->backing_id);
		if (rc < 0)
			log_warn("closing backing id %d failed: %s", ei->backing_id, strerror(-rc));
		ei->backing_id = 0;
	}
	if (ei->open_count == 0) {
		if ((ei->origin_writers || ei->unsettled) && ei->obj)
			open_origin_writes_done(e, ei);
		/* A first read through the origin: fill behind it (not if a writer joined: its
		 * writes never reached us, and the object was just emptied). Held here, before an open
		 * of the inode coming in meanwhile and its release could drop the object. */
		if (ei->first_read && !ei->origin_writers && !ei->unsettled && ei->obj) {
			behind = ei->obj;
			ei->obj_holds++;
		}
		ei->first_read = false;
		ei->origin_writers = false;
		ei->unsettled = false;
		ei->settle_change_ns = INT64_MIN;   /* the next first open sets it again, or none */
		if (ei->obj && !ei->obj_holds)
			engine_object_release_locked(e, ei);
		ei->mode = ENGINE_IO_NONE;
	}
	last = ei->open_count == 0;
	pthread_mutex_unlock(&ei->lock);
	if (kept.obj)
		kept_put(e, &kept);
	if (behind) {
		/* The hold's node reference (the host keeps the node until this release is
		 * answered); the jobs hold both too, and the drop releases the object if none did. */
		e->host.node_hold(e->host.arg, ei->node);
		open_first_read_fill_behind(e, ei, behind);
		engine_object_drop(e, ei);
	}
	if (last && f->regular)
		engine_readahead_drop(e, ei);   /* the buffers its read-ahead keeps */
	engine_bypass_notify(e);
}

bool engine_open_cache_writers(struct engine_inode *ei)
{
	bool writers;
	pthread_mutex_lock(&ei->lock);
	writers = ei->cache_writers > 0;
	pthread_mutex_unlock(&ei->lock);
	return writers;
}

int engine_open_data_fd(struct engine *e, struct engine_file *f)
{
	struct engine_inode *ei = f->inode;
	if (ei->mode == ENGINE_IO_CACHE && ei->obj && !f->stale)
		return cache_object_data_fd(ei->obj);
	return engine_file_fd(e, f);
}

/* ---- lazy opens ------------------------------------------------------------------------------
 * A read-only open may attach with no fd on the origin file (the host checked the origin's
 * fingerprint through its O_PATH fd): a hit passed through to the cache copy never reads the
 * origin, and on a network original an open and a close are two round trips. The first path
 * that needs the fd opens it; requests of one open file may run at once, so the fd is set by a
 * compare-and-swap from -1 and a loser closes its own. */
int engine_file_fd(struct engine *e, struct engine_file *f)
{
	int fd = atomic_load(&f->fd), expected = -1;

	if (fd >= 0)
		return fd;
	if (!e->host.file_open)
		return -EBADF;
	fd = e->host.file_open(e->host.arg, f);
	if (fd < 0)
		return fd;
	if (!atomic_compare_exchange_strong(&f->fd, &expected, fd)) {
		sys_close(fd);   /* another request of this file was first */
		return expected;
	}
	stats_add(e->cfg.stats, STATS_ORIGIN_OPENS_LATE, 1);
	return fd;
}
