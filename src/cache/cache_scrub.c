/* cache_scrub: the background scrub that returns the space of objects whose origin file
 * vanished or changed while nobody watched (the daemon was down; a change by another route).
 * Start-up reads no object (cache_store.h), so nothing at start can tell a live object from a
 * dead one: this thread does it afterwards, at a bounded rate, finding each object's origin
 * file by the handle its record keeps (no path, no walk of the origin tree). Each object is
 * examined like an eviction — under the evict lock, as a fresh table entry that an open
 * arriving meanwhile waits for — so an object in use is never touched.
 */
#include "cache/cache_int.h"
#include "sys/sys.h"
#include "util/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC 1000000000ll
#define NS_PER_MS 1000000ll
#define SCRUB_BATCH 16u
#define PROC_FD_PATH_SIZE 32   /* objects examined between two sleeps of the rate limit */

enum scrub_verdict {
	SCRUB_KEEP,       /* alive and unchanged, or the scrub cannot tell */
	SCRUB_EMPTY,      /* no intact record: holds nothing that would be served */
	SCRUB_GONE,       /* the origin file no longer exists (or has no name left) */
	SCRUB_CHANGED,    /* the origin file's fingerprint is not the record's */
	SCRUB_VERDICTS
};

struct scrub_pass {
	uint64_t checked;
	uint64_t reclaimed[SCRUB_VERDICTS];
	uint64_t bytes;
};

/* Sleeps ns unless the store is closing: false if it is. */
static bool scrub_sleep(struct cache_store *store, int64_t ns)
{
	struct timespec deadline;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	ns += deadline.tv_nsec;
	deadline.tv_sec += (time_t)(ns / NS_PER_SEC);
	deadline.tv_nsec = (long)(ns % NS_PER_SEC);
	pthread_mutex_lock(&store->scrub_lock);
	while (!(stop = atomic_load(&store->scrub_stop)))
		if (pthread_cond_timedwait(&store->scrub_cond, &store->scrub_lock, &deadline))
			break;   /* ETIMEDOUT */
	stop = atomic_load(&store->scrub_stop);
	pthread_mutex_unlock(&store->scrub_lock);
	return !stop;
}

/* What the origin says of the file record describes (record.handle set). */
static enum scrub_verdict origin_verdict(struct cache_store *store,
                                         const struct cache_meta_record *record)
{
	union {
		struct file_handle fh;
		char room[sizeof(struct file_handle) + CACHE_HANDLE_MAX];
	} h;
	struct cache_fingerprint now;
	struct stat st;
	int fd, rc;

	h.fh.handle_bytes = record->handle.bytes;
	h.fh.handle_type = record->handle.type;
	memcpy(h.fh.f_handle, record->handle.data, record->handle.bytes);
	fd = sys_open_by_handle_at(store->scrub_config.origin_fd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd == -ESTALE || fd == -ENOENT)
		return SCRUB_GONE;
	if (fd < 0)
		return SCRUB_KEEP;   /* EMFILE, ENOMEM, ...: another pass will tell */
	rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	sys_close(fd);
	if (rc < 0)
		return SCRUB_KEEP;
	if (st.st_nlink == 0)
		return SCRUB_GONE;   /* deleted, held open by someone: no name will open it again */
	cache_fingerprint_from_stat(&st, &now);
	return cache_fingerprint_equal(&now, &record->fp) ? SCRUB_KEEP : SCRUB_CHANGED;
}

/* obj: a fresh, unloaded table entry, its lock held. */
static enum scrub_verdict object_verdict(struct cache_store *store, struct cache_object *obj)
{
	struct cache_meta_record record;
	enum scrub_verdict verdict;
	uint8_t *buf;
	int rc = cache_disk_record_peek(obj, &record, &buf);

	if (rc == -ENOENT || rc == -EBADMSG)
		return SCRUB_EMPTY;
	if (rc < 0)
		return SCRUB_KEEP;   /* the device's error: leave it to the next open */
	/* Without a handle, on a file system below the origin root (whose handles origin_fd
	 * cannot decode), or known by its path (cache_store_path_key: dev CACHE_KEY_DEV_PATH,
	 * which origin_dev, a real st_dev, never is; an origin whose handles do not reopen
	 * either), the scrub cannot tell. */
	verdict = record.handle.bytes && obj->key.dev == store->origin_dev
	          ? origin_verdict(store, &record) : SCRUB_KEEP;
	free(buf);
	return verdict;
}

/* Examines the object of key unless it is open (or the store is closing). */
static void scrub_object(struct cache_store *store, struct cache_key key, struct scrub_pass *pass)
{
	char path[CACHE_OBJECT_PATH_SIZE];
	enum scrub_verdict verdict;
	struct cache_object *obj;
	struct stat st;

	pthread_mutex_lock(&store->evict_lock);   /* as an eviction: close waits for it */
	if (atomic_load(&store->scrub_stop) ||
	    cache_store_object_get_unused(store, key, &obj) < 0) {
		pthread_mutex_unlock(&store->evict_lock);
		return;
	}
	pass->checked++;
	pthread_mutex_lock(&obj->lock);
	verdict = object_verdict(store, obj);
	if (verdict != SCRUB_KEEP) {
		snprintf(path, sizeof(path), "%s%s", obj->name, CACHE_DATA_SUFFIX);
		if (sys_fstatat(store->objects_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			st.st_blocks = 0;
		cache_store_usage_enter(store);
		if (cache_disk_unlink(obj) == 0) {
			pass->reclaimed[verdict]++;
			pass->bytes += (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK;
			atomic_fetch_add(&store->scrub_reclaimed, 1);
			atomic_fetch_add(&store->scrub_reclaimed_bytes,
			                 (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK);
		}
		cache_store_usage_leave(store);
	}
	/* A kept entry stays in the table while an open that arrived meanwhile holds it. */
	cache_object_unlock_put(obj, obj->removed);
	pthread_mutex_unlock(&store->evict_lock);
	atomic_fetch_add(&store->scrub_checked, 1);
}

/* One pass over every shard; false if the store is closing. */
static bool scrub_pass_run(struct cache_store *store, struct scrub_pass *pass)
{
	uint32_t rate = store->scrub_config.rate_per_sec ? store->scrub_config.rate_per_sec
	                                                  : CACHE_SCRUB_RATE_DEFAULT;
	int64_t batch_ns = NS_PER_SEC * SCRUB_BATCH / rate;
	unsigned in_batch = 0;

	for (uint32_t shard = 0; shard < CACHE_SHARD_COUNT; shard++) {
		struct cache_key *keys = NULL;
		size_t count = 0;
		if (cache_store_shard_keys(store, shard, &keys, &count) < 0)
			continue;   /* an unreadable shard: the next pass tries again */
		for (size_t i = 0; i < count; i++) {
			if (++in_batch == SCRUB_BATCH) {
				in_batch = 0;
				if (!scrub_sleep(store, batch_ns)) {
					free(keys);
					return false;
				}
			}
			scrub_object(store, keys[i], pass);
		}
		free(keys);
		if (atomic_load(&store->scrub_stop))
			return false;
	}
	return true;
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void *scrub_main(void *arg)
{
	struct cache_store *store = arg;
	const struct cache_scrub_config *c = &store->scrub_config;

	if (!scrub_sleep(store, c->delay_ms * NS_PER_MS))
		return NULL;
	for (;;) {
		struct scrub_pass pass = { 0 };
		int64_t start = monotonic_ns(), elapsed;
		uint64_t reclaimed;

		if (!scrub_pass_run(store, &pass))
			return NULL;
		atomic_fetch_add(&store->scrub_passes, 1);
		reclaimed = pass.reclaimed[SCRUB_EMPTY] + pass.reclaimed[SCRUB_GONE] +
		            pass.reclaimed[SCRUB_CHANGED];
		elapsed = monotonic_ns() - start;
		if (reclaimed)
			log_info("scrub: examined %llu cache objects in %.1f s, reclaimed %llu (%llu KiB): "
			         "%llu of deleted files, %llu of changed files, %llu holding nothing",
			         (unsigned long long)pass.checked, (double)elapsed / NS_PER_SEC,
			         (unsigned long long)reclaimed, (unsigned long long)(pass.bytes / 1024),
			         (unsigned long long)pass.reclaimed[SCRUB_GONE],
			         (unsigned long long)pass.reclaimed[SCRUB_CHANGED],
			         (unsigned long long)pass.reclaimed[SCRUB_EMPTY]);
		else
			log_debug("scrub: examined %llu cache objects in %.1f s, all in use",
			          (unsigned long long)pass.checked, (double)elapsed / NS_PER_SEC);
		if (!c->interval_ms)
			return NULL;
		if (!scrub_sleep(store, c->interval_ms * NS_PER_MS > elapsed
		                        ? c->interval_ms * NS_PER_MS - elapsed : 0))
			return NULL;
	}
}

int cache_store_scrub_start(struct cache_store *store, const struct cache_scrub_config *config)
{
	char proc[PROC_FD_PATH_SIZE];
	pthread_condattr_t attr;
	sigset_t all, old;
	int rc;

	if (store->scrub_running)
		return -EALREADY;
	rc = -pthread_condattr_init(&attr);
	if (rc < 0)
		return rc;
	rc = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = -pthread_cond_init(&store->scrub_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc < 0)
		return rc;
	pthread_mutex_init(&store->scrub_lock, NULL);
	store->scrub_config = *config;
	/* Its own fd, which the caller may not close first; and not O_PATH, which
	 * open_by_handle_at refuses as a mount fd (EBADF). The /proc link reaches the same
	 * directory without a path lookup (the origin root may be covered by a mount). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", config->origin_fd);
	rc = sys_openat(AT_FDCWD, proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	store->scrub_config.origin_fd = rc;
	if (rc < 0) {
		pthread_mutex_destroy(&store->scrub_lock);
		pthread_cond_destroy(&store->scrub_cond);
		return rc;
	}
	atomic_store(&store->scrub_stop, false);
	/* The thread takes no signals: they belong to the daemon's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&store->scrub_thread, NULL, scrub_main, store);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		sys_close(store->scrub_config.origin_fd);
		pthread_mutex_destroy(&store->scrub_lock);
		pthread_cond_destroy(&store->scrub_cond);
		return rc;
	}
	store->scrub_running = true;
	return 0;
}

void cache_scrub_stop(struct cache_store *store)
{
	if (!store->scrub_running)
		return;
	pthread_mutex_lock(&store->scrub_lock);
	atomic_store(&store->scrub_stop, true);
	pthread_cond_signal(&store->scrub_cond);
	pthread_mutex_unlock(&store->scrub_lock);
	pthread_join(store->scrub_thread, NULL);
	sys_close(store->scrub_config.origin_fd);
	pthread_mutex_destroy(&store->scrub_lock);
	pthread_cond_destroy(&store->scrub_cond);
	store->scrub_running = false;
}

void cache_store_scrub_stats(struct cache_store *store, struct cache_scrub_stats *out)
{
	out->passes = atomic_load(&store->scrub_passes);
	out->checked = atomic_load(&store->scrub_checked);
	out->reclaimed = atomic_load(&store->scrub_reclaimed);
	out->reclaimed_bytes = atomic_load(&store->scrub_reclaimed_bytes);
}
