/* engine: the engine's lifecycle, its inodes, the host seam, object holds for work after a
 * reply, deleted files and the object info that reports show. The I/O paths are in the
 * engine_*.c files named in engine.h.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

int engine_create(const struct engine_config *cfg, const struct engine_host *host,
                  struct engine **out)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->host = *host;
	if (!e->cfg.breaker_retry_ms)
		e->cfg.breaker_retry_ms = ENGINE_BREAKER_RETRY_MS_DEFAULT;
	e->store = cfg->store;
	e->filler.queue_max = cfg->fill_queue_max ? cfg->fill_queue_max : ENGINE_FILL_QUEUE_MAX;
	if (host->node_keep && host->node_let_go && host->node_inode_hold)
		e->filler.backlog_max = cfg->fill_backlog_max ? cfg->fill_backlog_max
		                                              : ENGINE_FILL_BACKLOG_MAX;
	pthread_mutex_init(&e->filler.lock, NULL);
	pthread_cond_init(&e->filler.cond, NULL);
	pthread_mutex_init(&e->breaker.lock, NULL);
	pthread_mutex_init(&e->breaker.notify_lock, NULL);
	pthread_mutex_init(&e->seen.lock, NULL);
	engine_readahead_pool_init(e);
	if (engine_kept_init(e) < 0) {
		engine_free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	engine_readahead_pool_release(e);
	pthread_mutex_destroy(&e->filler.lock);
	pthread_cond_destroy(&e->filler.cond);
	pthread_mutex_destroy(&e->breaker.lock);
	pthread_mutex_destroy(&e->breaker.notify_lock);
	pthread_mutex_destroy(&e->seen.lock);
	pthread_mutex_destroy(&e->kept.lock);
	free(e->kept.slot);
	free(e->kept.next);
	free(e);
}

int engine_start(struct engine *e) { return engine_fill_start(e); }
/* The session may already be gone (the daemon frees it first): its backing ids go with it. */
void engine_stop(struct engine *e)
{
	engine_fill_stop(e);
	engine_kept_drain(e, false);
}

struct cache_store *engine_store(struct engine *e)
{
	struct cache_store *store = engine_bypass_store(e);
	engine_bypass_notify(e);
	return store;
}

/* ---- engine inodes ----------------------------------------------------------------------- */

struct engine_inode *engine_inode_new(struct engine *e, void *node, uint64_t nodeid, uint64_t ino)
{
	struct engine_inode *ei = calloc(1, sizeof(*ei));
	if (!ei)
		return NULL;
	ei->node = node;
	ei->nodeid = nodeid;
	ei->ino = ino;
	ei->settle_change_ns = INT64_MIN;   /* no first open yet (engine_settle.c) */
	pthread_mutex_init(&ei->lock, NULL);
	pthread_mutex_init(&ei->write_lock, NULL);
	engine_readahead_init(&ei->readahead);
	return ei;
}

void engine_inode_free(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_destroy(&ei->lock);
	pthread_mutex_destroy(&ei->write_lock);
	engine_readahead_release(e, &ei->readahead);
	free(ei);
}

unsigned engine_inode_holds_add(struct engine_inode *ei, int delta)
{
	ei->holds = (unsigned)((int)ei->holds + delta);
	return ei->holds;
}

size_t engine_inode_size(void) { return sizeof(struct engine_inode); }

/* ---- the host seam ----------------------------------------------------------------------- */

int engine_host_origin_fd(struct engine *e, struct engine_inode *ei)
{
	return e->host.origin_fd(e->host.arg, ei->node);
}

void engine_host_origin_fd_put(struct engine *e, struct engine_inode *ei, int fd)
{
	e->host.origin_fd_put(e->host.arg, ei->node, fd);
}

int engine_host_open(struct engine *e, int dirfd, const char *name, int flags, mode_t mode)
{
	return e->host.open(e->host.arg, dirfd, name, flags, mode);
}

void engine_host_proc_path(int fd, char buf[ENGINE_PROC_PATH_MAX])
{
	snprintf(buf, ENGINE_PROC_PATH_MAX, "/proc/self/fd/%d", fd);
}

/* ---- object holds ------------------------------------------------------------------------
 * Work after the answer (a fill, a read-ahead window move) holds the node (so the host cannot
 * free it) and its object (so the last release leaves the object to engine_object_drop). */

void engine_object_release_locked(struct engine *e, struct engine_inode *ei)
{
	int rc = cache_object_release(ei->obj);
	if (rc < 0)
		engine_bypass_error(e, "record write", rc);
	ei->obj = NULL;
}

struct cache_object *engine_object_hold(struct engine *e, struct engine_inode *ei)
{
	struct cache_object *obj;
	e->host.node_hold(e->host.arg, ei->node);
	pthread_mutex_lock(&ei->lock);
	obj = ei->obj;
	ei->obj_holds++;
	pthread_mutex_unlock(&ei->lock);
	return obj;
}

void engine_object_drop(struct engine *e, struct engine_inode *ei)
{
	pthread_mutex_lock(&ei->lock);
	if (--ei->obj_holds == 0 && ei->open_count == 0 && ei->obj)
		engine_object_release_locked(e, ei);
	pthread_mutex_unlock(&ei->lock);
	e->host.node_drop(e->host.arg, ei->node);  /* may free ei */
}

/* ---- the identity of files in the cache --------------------------------------------------- */

struct cache_key engine_key(const struct engine *e, const char *relpath, const struct stat *st)
{
	if (e->cfg.files_by_path && e->cfg.store)
		return cache_store_path_key(e->cfg.store, relpath);
	return cache_key_from_stat(st);
}

int engine_node_key(struct engine *e, void *node, const struct stat *st, struct cache_key *key)
{
	char rel[ENGINE_RELPATH_MAX];
	int rc;

	if (!e->cfg.files_by_path || !e->cfg.store) {
		*key = cache_key_from_stat(st);
		return 0;
	}
	rc = e->host.relpath(e->host.arg, node, rel, sizeof(rel));
	if (rc == 0)
		*key = cache_store_path_key(e->cfg.store, rel);
	return rc;
}

void engine_fingerprint(const struct engine *e, const struct stat *st, struct cache_fingerprint *fp)
{
	cache_fingerprint_from_stat(st, fp);
	if (e->cfg.files_by_path)
		fp->dev = fp->ino = 0;
}

/* ---- deleted files (cache_object_discard) ------------------------------------------------- */

uint64_t engine_discards(struct engine *e)
{
	return atomic_load(&e->discards);
}

bool engine_last_name(struct engine *e, const struct stat *st)
{
	/* Known by path, each name's copy is its own: it goes with the name, whatever the links. */
	return e->store && S_ISREG(st->st_mode) && (st->st_nlink == 1 || e->cfg.files_by_path);
}

void engine_file_deleted(struct engine *e, struct cache_key key)
{
	int rc;

	atomic_fetch_add(&e->discards, 1);   /* before the discard (open_recheck) */
	rc = cache_object_discard(e->store, key);

	atomic_fetch_add(&e->kept.forgets, 1);   /* after the mark, before the forget (kept_put) */
	engine_kept_forget(e, &key);   /* its release removes the copy that a kept reference held */
	if (rc >= 0)
		stats_add(e->cfg.stats, STATS_DELETED_OBJECTS, 1);
	else if (rc != -ENOENT)
		engine_bypass_error(e, "discard of a deleted file's copy", rc);
	engine_bypass_notify(e);
}

bool engine_object_info(struct engine *e, struct engine_inode *ei, const struct stat *st,
                        struct cache_key key, struct cache_object_info *info)
{
	struct cache_store *store = engine_bypass_store(e);
	bool have = false;

	engine_bypass_notify(e);
	if (!store || !S_ISREG(st->st_mode))
		return false;
	/* The object the open files use, if any; else the one on disk (opening an absent one and
	 * letting it go leaves nothing: an empty object is not kept). */
	if (ei) {
		pthread_mutex_lock(&ei->lock);
		if (ei->obj) {
			cache_object_info(ei->obj, info);
			have = true;
		}
		pthread_mutex_unlock(&ei->lock);
	}
	if (!have) {
		struct cache_fingerprint fp;
		struct cache_object *obj;
		engine_fingerprint(e, st, &fp);
		if (cache_object_open(store, key, &fp, &obj) >= 0) {
			cache_object_info(obj, info);
			have = true;
			cache_object_release(obj);
		}
	}
	return have;
}
