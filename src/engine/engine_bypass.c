/* engine_bypass: serving from the origin instead of the cache. A read bypasses the cache when
 * the file has no usable cache copy (no cache, an excluded file, a stale copy, a cache-device
 * error); the breaker makes every new open bypass it for cfg.breaker_retry_ms after
 * ENGINE_BREAKER_ERRORS cache-device errors within ENGINE_BREAKER_WINDOW_NS. The breaker's
 * callback (which rewrites the daemon's state file) is told of a change only by
 * engine_bypass_notify, which entry points call once they hold no lock.
 */
#include "engine/engine_int.h"

#include <string.h>

#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"

void engine_bypass_error(struct engine *e, const char *what, int rc)
{
	struct engine_breaker *b = &e->breaker;
	uint64_t now = clock_now_ns();
	bool enter = false;
	char why[sizeof(b->why)];

	if (engine_limit_error(rc)) {  /* the daemon's fds, not the cache device */
		log_warn("cache %s: the daemon is out of fds (%s); serving from the origin", what,
		         strerror(-rc));
		return;
	}
	stats_add(e->cfg.stats, STATS_CACHE_ERRORS, 1);
	log_warn("cache %s failed: %s; serving from the origin", what, strerror(-rc));
	pthread_mutex_lock(&b->lock);
	if (now - b->window_start_ns > ENGINE_BREAKER_WINDOW_NS) {
		b->window_start_ns = now;
		b->errors = 0;
	}
	if (++b->errors >= ENGINE_BREAKER_ERRORS && !atomic_load(&b->on)) {
		snprintf(b->why, sizeof(b->why), "%u cache-device errors within %llu s (last: %s: %s)",
		         b->errors, (unsigned long long)(ENGINE_BREAKER_WINDOW_NS / 1000000000), what,
		         strerror(-rc));
		b->since_ns = now;
		atomic_store(&b->on, true);
		atomic_store(&b->notify_pending, true);
		enter = true;
		snprintf(why, sizeof(why), "%s", b->why);
	}
	pthread_mutex_unlock(&b->lock);
	if (enter) {
		stats_add(e->cfg.stats, STATS_BYPASS_ENTRIES, 1);
		log_error("cache bypassed: %s; everything is served from the origin, retry in %u ms",
		          why, e->cfg.breaker_retry_ms);
	}
}

struct cache_store *engine_bypass_store(struct engine *e)
{
	struct engine_breaker *b = &e->breaker;
	bool leave = false;

	if (!e->store)
		return NULL;
	if (!atomic_load(&b->on))
		return e->store;
	pthread_mutex_lock(&b->lock);
	if (atomic_load(&b->on) &&
	    clock_now_ns() - b->since_ns >= (uint64_t)e->cfg.breaker_retry_ms * 1000000) {
		atomic_store(&b->on, false);
		atomic_store(&b->notify_pending, true);
		b->errors = 0;
		b->window_start_ns = clock_now_ns();
		leave = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (!leave)
		return NULL;
	log_warn("cache bypass ends: trying the cache device again");
	return e->store;
}

void engine_bypass_notify(struct engine *e)
{
	struct engine_breaker *b = &e->breaker;
	char why[sizeof(b->why)] = "";
	bool on;

	if (!atomic_load(&b->notify_pending))
		return;
	pthread_mutex_lock(&b->notify_lock);
	pthread_mutex_lock(&b->lock);
	if (!atomic_exchange(&b->notify_pending, false)) {
		pthread_mutex_unlock(&b->lock);
		pthread_mutex_unlock(&b->notify_lock);
		return;   /* another thread told it */
	}
	on = atomic_load(&b->on);
	if (on)
		snprintf(why, sizeof(why), "%s", b->why);
	pthread_mutex_unlock(&b->lock);
	if (e->cfg.breaker_changed)
		e->cfg.breaker_changed(e->cfg.breaker_arg, on, why);
	pthread_mutex_unlock(&b->notify_lock);
}

bool engine_bypass_breaker_tripped(struct engine *e) { return atomic_load(&e->breaker.on); }

bool engine_bypass_breaker_on(struct engine *e, char *why, size_t why_size)
{
	bool on;
	pthread_mutex_lock(&e->breaker.lock);
	on = atomic_load(&e->breaker.on);
	if (on && why)
		snprintf(why, why_size, "%s", e->breaker.why);
	pthread_mutex_unlock(&e->breaker.lock);
	return on;
}

void engine_bypass_count_read(struct engine *e, const struct engine_inode *ei, bool from_cache,
                              uint64_t bytes, uint64_t t0)
{
	struct stats *stats = e->cfg.stats;
	stats_file_add(stats, ei->nodeid, ei->ino, false, from_cache, bytes);
	stats_add(stats, from_cache ? STATS_READ_OPS_CACHE : STATS_READ_OPS_ORIGIN, 1);
	stats_add(stats, from_cache ? STATS_READ_BYTES_CACHE : STATS_READ_BYTES_ORIGIN, bytes);
	stats_record_latency(stats, from_cache ? STATS_LAT_READ_CACHE : STATS_LAT_READ_ORIGIN,
	                     clock_now_ns() - t0);
}

ssize_t engine_bypass_read(struct engine *e, struct engine_file *f, char *buf, size_t size,
                           uint64_t off, uint64_t t0)
{
	int fd = engine_file_fd(e, f);
	ssize_t n = fd < 0 ? fd : sys_pread(fd, buf, size, (off_t)off);
	if (n < 0) {
		stats_add(e->cfg.stats, STATS_ORIGIN_ERRORS, 1);
		return n;
	}
	engine_bypass_count_read(e, f->inode, false, (uint64_t)n, t0);
	return n;
}
