/* cache_capacity: keeping the store within its capacity — the capacity saved in the store for
 * the next open, admission of fills at the hard limit, pins, and the eviction thread.
 * The thread sleeps until usage passes the high watermark (the paths that grow usage wake it)
 * or a poll interval passes, then evicts the policy's victims one at a time, each exactly as
 * cache_object_remove() (record first, then data), until usage is at or below the low
 * watermark. Each eviction holds evict_lock from the choice of the victim to its unlink, so a
 * pin set meanwhile waits for it and is never overtaken; no other lock is held across a pass.
 */
#include "cache/cache_int.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

#define CAPACITY_NAME "capacity"
#define CAPACITY_TMP_NAME "capacity.tmp"
#define EVICT_POLL_NS 1000000000ll   /* the thread looks at usage at least this often */
#define NS_PER_SEC 1000000000ll
#define PERCENT 100u

/* ---- Configuration ---------------------------------------------------------------------- */

static void config_watermarks(const struct cache_store_config *config, unsigned *high,
                              unsigned *low)
{
	*high = config->high_pct ? config->high_pct : CACHE_HIGH_PCT_DEFAULT;
	if (config->low_pct)
		*low = config->low_pct;
	else
		*low = CACHE_LOW_PCT_DEFAULT < *high ? CACHE_LOW_PCT_DEFAULT : *high;
}

int cache_capacity_config_check(const struct cache_store_config *config)
{
	unsigned high, low;

	config_watermarks(config, &high, &low);
	if (high > PERCENT || low > high ||
	    (config->policy != CACHE_POLICY_S3FIFO && config->policy != CACHE_POLICY_LRU))
		return -EINVAL;
	return 0;
}

/* pct % of bytes, without overflow. */
static uint64_t percent_of(uint64_t bytes, unsigned pct)
{
	return bytes / PERCENT * pct + bytes % PERCENT * pct / PERCENT;
}

/* The saved capacity into *saved (0: none; a damaged or unknown file counts as none), or the
 * device's error. */
static int capacity_load(struct cache_store *store, uint64_t *saved)
{
	uint8_t buf[CACHE_META_CAPACITY_SIZE + 1];   /* one more: a longer file is damaged */
	uint64_t value = 0;
	ssize_t n = cache_store_file_read(store->store_fd, CAPACITY_NAME, buf, sizeof(buf));

	if (n == -ENOENT) {
		*saved = 0;
		return 0;
	}
	if (n < 0)
		return (int)n;
	if (cache_meta_capacity_decode(buf, (size_t)n, &value) < 0)
		value = 0;
	*saved = value;
	return 0;
}

static int capacity_save(struct cache_store *store, uint64_t capacity)
{
	uint8_t buf[CACHE_META_CAPACITY_SIZE];

	cache_meta_capacity_encode(capacity, buf);
	return cache_store_file_replace(store->store_fd, CAPACITY_NAME, CAPACITY_TMP_NAME, buf,
	                                sizeof(buf));
}

static int capacity_forget(struct cache_store *store)
{
	int rc = sys_unlinkat(store->store_fd, CAPACITY_NAME, 0);
	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : sys_fsync(store->store_fd, 0);
}

/* Resolves the effective capacity of config against the saved one, and saves it. */
static int capacity_resolve(struct cache_store *store, const struct cache_store_config *config,
                            uint64_t *out)
{
	uint64_t saved = 0, capacity;
	int rc = capacity_load(store, &saved);

	if (rc < 0)
		return rc;
	if (config->capacity == CACHE_CAPACITY_UNLIMITED) {
		capacity = 0;
		rc = capacity_forget(store);
	} else {
		capacity = config->capacity ? config->capacity
		                            : saved ? saved : config->default_capacity;
		if (capacity && capacity != saved)
			rc = capacity_save(store, capacity);
	}
	if (rc < 0)
		return rc;
	*out = capacity;
	return 0;
}

uint64_t cache_store_capacity(const struct cache_store *store)
{
	return store->capacity;
}

void cache_store_watermarks(const struct cache_store *store, uint64_t *high, uint64_t *low)
{
	*high = store->high_bytes;
	*low = store->low_bytes;
}

uint64_t cache_store_evictions(struct cache_store *store)
{
	return atomic_load_explicit(&store->evictions, memory_order_relaxed);
}

uint64_t cache_store_eviction_errors(struct cache_store *store)
{
	return atomic_load_explicit(&store->eviction_errors, memory_order_relaxed);
}

/* ---- The policy's view ------------------------------------------------------------------ */

/* A key the policy has no memory for (-ENOMEM) is not evicted until it is opened again. */
void cache_capacity_object_opened(struct cache_object *obj)
{
	if (obj->store->policy)
		cache_policy_access(obj->store->policy, obj->key, obj->allocated);
}

void cache_capacity_object_resized(struct cache_object *obj)
{
	if (obj->store->policy)
		cache_policy_resize(obj->store->policy, obj->key, obj->allocated);
}

void cache_capacity_object_removed(struct cache_object *obj)
{
	if (obj->store->policy)
		cache_policy_remove(obj->store->policy, obj->key);
}

/* ---- Admission -------------------------------------------------------------------------- */

static void evictor_wake(struct cache_store *store, bool pressure)
{
	if (!store->evictor_running)
		return;
	if (pressure)
		atomic_store(&store->evict_pressure, true);
	if (atomic_exchange(&store->evict_wake, true))
		return;   /* already due */
	pthread_mutex_lock(&store->wake_lock);
	pthread_cond_signal(&store->wake_cond);
	pthread_mutex_unlock(&store->wake_lock);
}

/* An unpin wakes the thread: that object may be what kept usage over the high watermark. */
int cache_store_pin(struct cache_store *store, struct cache_key key, bool pinned)
{
	int rc;

	if (!store->policy)
		return 0;
	pthread_mutex_lock(&store->evict_lock);
	rc = cache_policy_pin(store->policy, key, pinned);
	pthread_mutex_unlock(&store->evict_lock);
	if (!pinned)
		cache_capacity_grew(store);
	return rc;
}

void cache_capacity_grew(struct cache_store *store)
{
	if (store->capacity && atomic_load(&store->usage_bytes) > store->high_bytes)
		evictor_wake(store, false);
}

/* Until the first scan, usage is not known and every fill is admitted (the thread scans right
 * after open and trims what came meanwhile). Reservations make concurrent fills add up. */
int cache_capacity_reserve(struct cache_store *store, uint64_t object_bytes, uint64_t bytes,
                           uint64_t *reserved)
{
	uint64_t held;

	if (!store->capacity || !bytes || !store->usage_known) {
		*reserved = 0;
		return 0;
	}
	if (object_bytes + bytes > store->low_bytes)
		return -EDQUOT;   /* evicting others would not make room for this object */
	held = atomic_load(&store->reserved_bytes);
	do {
		uint64_t used = atomic_load(&store->usage_bytes) + held;
		if (bytes > store->capacity || used > store->capacity - bytes) {
			evictor_wake(store, true);
			return -EDQUOT;
		}
	} while (!atomic_compare_exchange_weak(&store->reserved_bytes, &held, held + bytes));
	*reserved = bytes;
	return 0;
}

void cache_capacity_unreserve(struct cache_store *store, uint64_t reserved)
{
	if (reserved)
		atomic_fetch_sub(&store->reserved_bytes, reserved);
}

/* ---- The eviction thread ---------------------------------------------------------------- */

/* Evicts the policy's next victim: 0 (also when it was gone already or could not be
 * removed: the policy forgets it either way), or -ENOENT when nothing may be evicted,
 * -ECANCELED when the store is closing. */
static int evict_one(struct cache_store *store)
{
	struct cache_key key;
	int rc;

	pthread_mutex_lock(&store->evict_lock);
	if (atomic_load(&store->evictor_stop)) {
		rc = -ECANCELED;
		goto unlock;
	}
	rc = cache_policy_victim(store->policy, &key);
	if (rc < 0)
		goto unlock;
	rc = cache_object_remove(store, key);
	if (rc == 0) {
		atomic_fetch_add_explicit(&store->evictions, 1, memory_order_relaxed);
	} else if (rc != -ENOENT) {
		/* The device refused: the object stays (failed if open); pick another next time. */
		atomic_fetch_add_explicit(&store->eviction_errors, 1, memory_order_relaxed);
		cache_policy_remove(store->policy, key);
	}
	/* -ENOENT: removed meanwhile, and that removal told the policy. */
	rc = 0;
unlock:
	pthread_mutex_unlock(&store->evict_lock);
	return rc;
}

static void evict_pass(struct cache_store *store)
{
	bool pressure = atomic_exchange(&store->evict_pressure, false);
	uint64_t bytes, objects;

	if (cache_store_usage(store, &bytes, &objects) < 0)
		return;   /* the first scan failed: again at the next poll */
	if (bytes <= store->high_bytes && !pressure)
		return;
	while (atomic_load(&store->usage_bytes) > store->low_bytes)
		if (evict_one(store) < 0)
			break;
}

static void deadline_after(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ns += ts->tv_nsec;
	ts->tv_sec += (time_t)(ns / NS_PER_SEC);
	ts->tv_nsec = (long)(ns % NS_PER_SEC);
}

static void *evictor_main(void *arg)
{
	struct cache_store *store = arg;
	struct timespec deadline;

	while (!atomic_load(&store->evictor_stop)) {
		atomic_store(&store->evict_wake, false);
		evict_pass(store);
		deadline_after(&deadline, EVICT_POLL_NS);
		pthread_mutex_lock(&store->wake_lock);
		while (!atomic_load(&store->evictor_stop) && !atomic_load(&store->evict_wake))
			if (pthread_cond_timedwait(&store->wake_cond, &store->wake_lock, &deadline))
				break;   /* ETIMEDOUT: poll */
		pthread_mutex_unlock(&store->wake_lock);
	}
	return NULL;
}

/* The thread takes no signals: they belong to the daemon's own threads. */
static int evictor_start(struct cache_store *store)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&store->evictor, NULL, evictor_main, store);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int locks_init(struct cache_store *store)
{
	pthread_condattr_t attr;
	int rc;

	rc = -pthread_condattr_init(&attr);
	if (rc < 0)
		return rc;
	rc = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = -pthread_cond_init(&store->wake_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc < 0)
		return rc;
	pthread_mutex_init(&store->evict_lock, NULL);
	pthread_mutex_init(&store->wake_lock, NULL);
	return 0;
}

static void locks_destroy(struct cache_store *store)
{
	pthread_cond_destroy(&store->wake_cond);
	pthread_mutex_destroy(&store->wake_lock);
	pthread_mutex_destroy(&store->evict_lock);
}

int cache_capacity_start(struct cache_store *store, const struct cache_store_config *config)
{
	unsigned high, low;
	uint64_t capacity;
	int rc;

	rc = capacity_resolve(store, config, &capacity);
	if (rc < 0)
		return rc;
	rc = locks_init(store);
	if (rc < 0)
		return rc;
	store->capacity = capacity;
	if (!capacity)
		return 0;
	config_watermarks(config, &high, &low);
	store->high_bytes = percent_of(capacity, high);
	store->low_bytes = percent_of(capacity, low);
	rc = cache_policy_create(config->policy, capacity, &store->policy);
	if (rc < 0)
		goto destroy_locks;
	store->evictor_running = true;   /* before the thread: it reads it */
	rc = evictor_start(store);
	if (rc < 0)
		goto free_policy;
	return 0;

free_policy:
	store->evictor_running = false;
	cache_policy_free(store->policy);
	store->policy = NULL;
destroy_locks:
	locks_destroy(store);
	return rc;
}

void cache_capacity_stop(struct cache_store *store)
{
	if (store->evictor_running) {
		atomic_store(&store->evictor_stop, true);
		pthread_mutex_lock(&store->wake_lock);
		pthread_cond_signal(&store->wake_cond);
		pthread_mutex_unlock(&store->wake_lock);
		pthread_join(store->evictor, NULL);
		store->evictor_running = false;
	}
	cache_policy_free(store->policy);
	store->policy = NULL;
	locks_destroy(store);
}
