/* Unit tests for src/cache/cache_policy.c: the eviction order of S3-FIFO and LRU on small
 * hand-made cases, pins, the byte and count bookkeeping against a naive model under random
 * operations, a million keys, and a skewed trace — Zipf-distributed requests over objects of
 * varied sizes, interleaved with one-time scans — on which S3-FIFO must keep clearly more of
 * the hot set than LRU. The trace's hit ratios are printed (one line per policy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache/cache_policy.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)

/* The trace: 20,000 objects of 4 KiB .. 1 MiB (log-uniform), Zipf(0.9) requests, a cache of
 * 10% of the objects' bytes, and every 50,000 requests a scan of never-seen keys whose bytes
 * are twice the cache. */
#define TRACE_SEED 0x5eed2024u
#define TRACE_OBJECTS 20000u
#define TRACE_REQUESTS 1000000u
#define TRACE_ZIPF_ALPHA 0.9
#define TRACE_CAPACITY_PERCENT 10u
#define TRACE_SCAN_EVERY 50000u
#define TRACE_SCAN_CAPACITIES 2u
#define TRACE_SIZE_MIN_LOG2 12   /* 4 KiB */
#define TRACE_SIZE_MAX_LOG2 20   /* 1 MiB */
#define TRACE_SCAN_DEV 1u        /* scan keys live on another "device" than the hot objects */
#define TRACE_MIN_MARGIN 0.05    /* S3-FIFO's request hit ratio must beat LRU's by this much */

#define MODEL_KEYS 64u
#define MODEL_OPS 200000u
#define MODEL_BYTES_MAX 100000u
#define MILLION 1000000u
#define MILLION_LIMIT_NS 20000000000ll   /* generous: the sanitizer build on a busy machine */

static const enum cache_policy_kind kinds[] = { CACHE_POLICY_S3FIFO, CACHE_POLICY_LRU };
#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

/* ---- Helpers ---------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(uint64_t *state)
{
	return (double)(splitmix64(state) >> 11) / (double)(1ull << 53);
}

static struct cache_key key_of(uint64_t dev, uint64_t ino)
{
	return (struct cache_key){ .dev = dev, .ino = ino };
}

static struct cache_policy *policy_new(enum cache_policy_kind kind, uint64_t capacity)
{
	struct cache_policy *p = NULL;
	assert_int_equal(cache_policy_create(kind, capacity, &p), 0);
	assert_non_null(p);
	return p;
}

/* The victim, asserted to exist, then removed. */
static uint64_t evict_next(struct cache_policy *p)
{
	struct cache_key key;
	assert_int_equal(cache_policy_victim(p, &key), 0);
	assert_int_equal(cache_policy_remove(p, key), 0);
	return key.ino;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Small cases ------------------------------------------------------------------------ */

static void test_create_and_errors(void **state)
{
	struct cache_policy *p = NULL;
	struct cache_key key;

	assert_int_equal(cache_policy_create(CACHE_POLICY_S3FIFO, 0, &p), -EINVAL);
	assert_int_equal(cache_policy_create((enum cache_policy_kind)7, 100, &p), -EINVAL);
	assert_null(p);
	for (size_t i = 0; i < KIND_COUNT; i++) {
		p = policy_new(kinds[i], 100);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		assert_int_equal(cache_policy_remove(p, key_of(0, 1)), -ENOENT);
		assert_int_equal(cache_policy_resize(p, key_of(0, 1), 5), -ENOENT);
		assert_int_equal(cache_policy_access(p, key_of(0, 1), 5), 0);
		assert_int_equal(cache_policy_access(p, key_of(0, 1), 7), 1);
		assert_int_equal(cache_policy_seed(p, key_of(0, 1), 9), 1);   /* left as it is */
		assert_int_equal(cache_policy_bytes(p), 7);
		assert_int_equal(cache_policy_count(p), 1);
		assert_int_equal(cache_policy_remove(p, key_of(0, 1)), 0);
		assert_int_equal(cache_policy_remove(p, key_of(0, 1)), -ENOENT);
		assert_int_equal(cache_policy_bytes(p), 0);
		assert_int_equal(cache_policy_count(p), 0);
		assert_string_not_equal(cache_policy_kind_name(kinds[i]), "unknown");
		cache_policy_free(p);
	}
	cache_policy_free(NULL);
}

static void test_lru_order(void **state)
{
	struct cache_policy *p = policy_new(CACHE_POLICY_LRU, 100);

	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(cache_policy_access(p, key_of(0, i), 10), 0);
	assert_int_equal(cache_policy_access(p, key_of(0, 1), 10), 1);   /* 1 is now the newest */
	assert_int_equal(cache_policy_seed(p, key_of(0, 9), 10), 0);     /* a seed is the coldest */
	assert_int_equal(evict_next(p), 9);
	assert_int_equal(evict_next(p), 2);
	assert_int_equal(evict_next(p), 3);
	assert_int_equal(evict_next(p), 4);
	assert_int_equal(evict_next(p), 1);
	cache_policy_free(p);
}

/* Keys used twice survive a scan of new keys that passes many times their bytes through the
 * cache under S3-FIFO; LRU loses them all. */
static void test_scan_resistance(void **state)
{
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct cache_policy *p = policy_new(kinds[i], 100);
		unsigned survivors = 0;
		for (uint64_t k = 1; k <= 5; k++) {
			cache_policy_access(p, key_of(0, k), 10);
			cache_policy_access(p, key_of(0, k), 10);
		}
		for (uint64_t k = 1000; k < 1100; k++) {
			assert_int_equal(cache_policy_access(p, key_of(0, k), 10), 0);
			while (cache_policy_bytes(p) > 100)
				evict_next(p);
		}
		for (uint64_t k = 1; k <= 5; k++)
			survivors += cache_policy_access(p, key_of(0, k), 10) == 1;
		assert_int_equal(survivors, kinds[i] == CACHE_POLICY_S3FIFO ? 5 : 0);
		cache_policy_free(p);
	}
}

/* S3-FIFO: a key evicted from the small FIFO and asked for again enters the main FIFO, which
 * gives way only once the small FIFO is back within its share (10 of 100 bytes here). */
static void test_s3fifo_ghost_enters_main(void **state)
{
	struct cache_policy *p = policy_new(CACHE_POLICY_S3FIFO, 100);

	cache_policy_access(p, key_of(0, 1), 10);
	cache_policy_access(p, key_of(0, 2), 10);
	assert_int_equal(evict_next(p), 1);                               /* into the ghost FIFO */
	assert_int_equal(cache_policy_access(p, key_of(0, 1), 10), 0);   /* a miss, into main */
	cache_policy_access(p, key_of(0, 3), 10);
	cache_policy_access(p, key_of(0, 4), 10);
	/* small: 2 3 4 (30 bytes), main: 1 */
	assert_int_equal(evict_next(p), 2);
	assert_int_equal(evict_next(p), 3);
	assert_int_equal(evict_next(p), 1);   /* small holds 10 bytes: within its share */
	assert_int_equal(evict_next(p), 4);
	cache_policy_free(p);
}

/* S3-FIFO: a key used again while in the small FIFO moves to main; a main key used again goes
 * round once more. */
static void test_s3fifo_frequency(void **state)
{
	struct cache_policy *p = policy_new(CACHE_POLICY_S3FIFO, 100);

	for (uint64_t k = 1; k <= 5; k++)
		cache_policy_access(p, key_of(0, k), 10);
	cache_policy_access(p, key_of(0, 1), 10);
	cache_policy_access(p, key_of(0, 2), 10);
	/* small 1* 2* 3 4 5 (50 bytes): 1 and 2 move to main, 3 is the victim */
	assert_int_equal(evict_next(p), 3);
	assert_int_equal(evict_next(p), 4);   /* small 4 5: still over its share */
	cache_policy_access(p, key_of(0, 1), 10);
	/* small 5 (10 bytes: within its share), main 1* 2: 1 goes round, 2 is the victim */
	assert_int_equal(evict_next(p), 2);
	assert_int_equal(evict_next(p), 1);
	assert_int_equal(evict_next(p), 5);
	cache_policy_free(p);
}

/* ---- Pins ------------------------------------------------------------------------------- */

static void test_pinned_never_victims(void **state)
{
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct cache_policy *p = policy_new(kinds[i], 1000);
		struct cache_key key;
		uint64_t evicted = 0;

		for (uint64_t k = 0; k < 200; k++) {
			if (k % 10 == 0)
				assert_int_equal(cache_policy_pin(p, key_of(0, k), true), 0);
			assert_int_equal(cache_policy_access(p, key_of(0, k), k + 1), 0);
			if (k % 10 == 5)
				assert_int_equal(cache_policy_pin(p, key_of(0, k), true), 0);
			if (k % 3 == 0)
				cache_policy_access(p, key_of(0, k), k + 1);
		}
		while (cache_policy_victim(p, &key) == 0) {
			assert_true(key.ino % 10 != 0 && key.ino % 10 != 5);
			assert_int_equal(cache_policy_remove(p, key), 0);
			evicted++;
		}
		assert_int_equal(evicted, 160);
		assert_int_equal(cache_policy_count(p), 40);
		/* Removing a pinned key (an explicit removal) keeps its pin for its return. */
		assert_int_equal(cache_policy_remove(p, key_of(0, 10)), 0);
		assert_int_equal(cache_policy_access(p, key_of(0, 10), 3), 0);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		/* Unpinned, they are victims again. */
		assert_int_equal(cache_policy_pin(p, key_of(0, 10), false), 0);
		assert_int_equal(cache_policy_pin(p, key_of(0, 10), false), 0);
		assert_int_equal(evict_next(p), 10);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		cache_policy_free(p);
	}
}

static void test_pin_before_insert(void **state)
{
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct cache_policy *p = policy_new(kinds[i], 100);
		struct cache_key key;

		assert_int_equal(cache_policy_pin(p, key_of(0, 1), true), 0);
		assert_int_equal(cache_policy_count(p), 0);   /* a pin alone is not resident */
		assert_int_equal(cache_policy_bytes(p), 0);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		assert_int_equal(cache_policy_remove(p, key_of(0, 1)), -ENOENT);
		assert_int_equal(cache_policy_seed(p, key_of(0, 1), 50), 0);
		assert_int_equal(cache_policy_access(p, key_of(0, 2), 50), 0);
		assert_int_equal(cache_policy_access(p, key_of(0, 3), 50), 0);
		assert_int_equal(cache_policy_bytes(p), 150);
		assert_int_equal(evict_next(p), 2);
		assert_int_equal(evict_next(p), 3);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		assert_int_equal(cache_policy_resize(p, key_of(0, 1), 60), 0);
		assert_int_equal(cache_policy_bytes(p), 60);
		/* A pin on a key that only the ghost FIFO remembers. */
		assert_int_equal(cache_policy_access(p, key_of(0, 4), 10), 0);
		assert_int_equal(evict_next(p), 4);
		assert_int_equal(cache_policy_pin(p, key_of(0, 4), true), 0);
		assert_int_equal(cache_policy_access(p, key_of(0, 4), 10), 0);
		assert_int_equal(cache_policy_victim(p, &key), -ENOENT);
		assert_int_equal(cache_policy_pin(p, key_of(0, 4), false), 0);
		assert_int_equal(evict_next(p), 4);
		/* An unpin of a key never seen is nothing. */
		assert_int_equal(cache_policy_pin(p, key_of(0, 5), false), 0);
		assert_int_equal(cache_policy_count(p), 1);
		cache_policy_free(p);
	}
}

/* ---- Bookkeeping against a naive model -------------------------------------------------- */

struct model {
	bool resident[MODEL_KEYS];
	bool pinned[MODEL_KEYS];
	uint64_t bytes[MODEL_KEYS];
};

static void model_check(struct cache_policy *p, const struct model *m)
{
	uint64_t bytes = 0, count = 0;
	for (unsigned k = 0; k < MODEL_KEYS; k++)
		if (m->resident[k]) {
			bytes += m->bytes[k];
			count++;
		}
	assert_int_equal(cache_policy_bytes(p), bytes);
	assert_int_equal(cache_policy_count(p), count);
}

static bool model_evictable(const struct model *m)
{
	for (unsigned k = 0; k < MODEL_KEYS; k++)
		if (m->resident[k] && !m->pinned[k])
			return true;
	return false;
}

static void test_bookkeeping_random(void **state)
{
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct cache_policy *p = policy_new(kinds[i], MODEL_KEYS * MODEL_BYTES_MAX / 4);
		uint64_t rng = 42 + i;
		struct model m;

		memset(&m, 0, sizeof(m));
		for (unsigned op = 0; op < MODEL_OPS; op++) {
			unsigned k = (unsigned)(splitmix64(&rng) % MODEL_KEYS);
			uint64_t bytes = splitmix64(&rng) % MODEL_BYTES_MAX;
			struct cache_key key = key_of(7, k), victim;
			int rc;

			switch (splitmix64(&rng) % 8) {
			case 0:
			case 1:
				rc = cache_policy_access(p, key, bytes);
				assert_int_equal(rc, m.resident[k] ? 1 : 0);
				m.resident[k] = true;
				m.bytes[k] = bytes;
				break;
			case 2:
				rc = cache_policy_seed(p, key, bytes);
				assert_int_equal(rc, m.resident[k] ? 1 : 0);
				if (!m.resident[k])
					m.bytes[k] = bytes;
				m.resident[k] = true;
				break;
			case 3:
				rc = cache_policy_resize(p, key, bytes);
				assert_int_equal(rc, m.resident[k] ? 0 : -ENOENT);
				if (m.resident[k])
					m.bytes[k] = bytes;
				break;
			case 4:
				rc = cache_policy_remove(p, key);
				assert_int_equal(rc, m.resident[k] ? 0 : -ENOENT);
				m.resident[k] = false;
				break;
			case 5:
				/* mostly unpins, so that victims remain */
				m.pinned[k] = splitmix64(&rng) % 4 == 0;
				assert_int_equal(cache_policy_pin(p, key, m.pinned[k]), 0);
				break;
			default:
				rc = cache_policy_victim(p, &victim);
				if (!model_evictable(&m)) {
					assert_int_equal(rc, -ENOENT);
					break;
				}
				assert_int_equal(rc, 0);
				assert_int_equal(victim.dev, 7);
				assert_true(victim.ino < MODEL_KEYS);
				assert_true(m.resident[victim.ino] && !m.pinned[victim.ino]);
				if (splitmix64(&rng) % 2) {
					assert_int_equal(cache_policy_remove(p, victim), 0);
					m.resident[victim.ino] = false;
				}
				break;
			}
			model_check(p, &m);
		}
		cache_policy_free(p);
	}
}

/* ---- Scale ------------------------------------------------------------------------------ */

static void test_million_keys(void **state)
{
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct cache_policy *p = policy_new(kinds[i], MILLION * 4 * KIB / 10);
		int64_t t0 = now_ns(), t_insert, t_evict;
		uint64_t evicted = 0;
		struct cache_key key;

		for (uint64_t k = 0; k < MILLION; k++)
			assert_int_equal(cache_policy_access(p, key_of(3, k), 4 * KIB), 0);
		for (uint64_t k = 0; k < MILLION; k += 3)
			assert_int_equal(cache_policy_access(p, key_of(3, k), 4 * KIB), 1);
		t_insert = now_ns() - t0;
		assert_int_equal(cache_policy_count(p), MILLION);
		assert_int_equal(cache_policy_bytes(p), MILLION * 4 * KIB);
		t0 = now_ns();
		while (cache_policy_victim(p, &key) == 0) {
			assert_int_equal(cache_policy_remove(p, key), 0);
			evicted++;
		}
		t_evict = now_ns() - t0;
		assert_int_equal(evicted, MILLION);
		assert_int_equal(cache_policy_count(p), 0);
		print_message("%s: %u inserts + %u hits %.2f s, %u evictions %.2f s\n",
		              cache_policy_kind_name(kinds[i]), MILLION, MILLION / 3 + 1,
		              t_insert / 1e9, MILLION, t_evict / 1e9);
		assert_true(t_insert + t_evict < MILLION_LIMIT_NS);
		cache_policy_free(p);
	}
}

/* ---- The skewed trace ------------------------------------------------------------------- */

struct trace {
	uint64_t *size;     /* by object */
	uint64_t *object;   /* by popularity rank: the object */
	double *cdf;        /* by rank */
	uint64_t total_bytes;
	uint64_t capacity;
};

static uint64_t trace_size(uint64_t *rng)
{
	double log2_size = TRACE_SIZE_MIN_LOG2 +
	                   uniform(rng) * (TRACE_SIZE_MAX_LOG2 - TRACE_SIZE_MIN_LOG2);
	uint64_t size = (uint64_t)exp2(log2_size);
	return (size + 4 * KIB - 1) / (4 * KIB) * (4 * KIB);
}

static void trace_init(struct trace *t)
{
	uint64_t rng = TRACE_SEED;
	double sum = 0;

	t->size = calloc(TRACE_OBJECTS, sizeof(*t->size));
	t->object = calloc(TRACE_OBJECTS, sizeof(*t->object));
	t->cdf = calloc(TRACE_OBJECTS, sizeof(*t->cdf));
	assert_true(t->size && t->object && t->cdf);
	t->total_bytes = 0;
	for (uint64_t i = 0; i < TRACE_OBJECTS; i++) {
		t->size[i] = trace_size(&rng);
		t->total_bytes += t->size[i];
		t->object[i] = i;
	}
	for (uint64_t i = TRACE_OBJECTS - 1; i > 0; i--) {   /* popularity independent of size */
		uint64_t j = splitmix64(&rng) % (i + 1), tmp = t->object[i];
		t->object[i] = t->object[j];
		t->object[j] = tmp;
	}
	for (uint64_t r = 0; r < TRACE_OBJECTS; r++) {
		sum += 1.0 / pow((double)(r + 1), TRACE_ZIPF_ALPHA);
		t->cdf[r] = sum;
	}
	for (uint64_t r = 0; r < TRACE_OBJECTS; r++)
		t->cdf[r] /= sum;
	t->capacity = t->total_bytes / 100 * TRACE_CAPACITY_PERCENT;
}

static void trace_release(struct trace *t)
{
	free(t->size);
	free(t->object);
	free(t->cdf);
}

static uint64_t trace_zipf_rank(const struct trace *t, uint64_t *rng)
{
	double u = uniform(rng);
	uint64_t lo = 0, hi = TRACE_OBJECTS - 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (t->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct trace_result {
	uint64_t requests, hits;
	uint64_t bytes, hit_bytes;
};

/* One request: a hit if resident, else a miss that inserts; then evict down to the capacity. */
static void trace_request(struct cache_policy *p, const struct trace *t, struct cache_key key,
                          uint64_t size, struct trace_result *r)
{
	int rc = cache_policy_access(p, key, size);
	assert_true(rc >= 0);
	r->requests++;
	r->bytes += size;
	if (rc == 1) {
		r->hits++;
		r->hit_bytes += size;
	}
	while (cache_policy_bytes(p) > t->capacity)
		evict_next(p);
}

static void trace_run(const struct trace *t, enum cache_policy_kind kind, struct trace_result *r)
{
	struct cache_policy *p = policy_new(kind, t->capacity);
	uint64_t rng = TRACE_SEED ^ 0xabcdefull, scan_ino = 0;

	memset(r, 0, sizeof(*r));
	for (uint64_t i = 1; i <= TRACE_REQUESTS; i++) {
		uint64_t object = t->object[trace_zipf_rank(t, &rng)];
		trace_request(p, t, key_of(0, object), t->size[object], r);
		if (i % TRACE_SCAN_EVERY)
			continue;
		for (uint64_t scanned = 0; scanned < TRACE_SCAN_CAPACITIES * t->capacity;) {
			uint64_t size = trace_size(&rng);
			trace_request(p, t, key_of(TRACE_SCAN_DEV, scan_ino++), size, r);
			scanned += size;
		}
	}
	assert_true(cache_policy_bytes(p) <= t->capacity);
	cache_policy_free(p);
}

static void test_trace_s3fifo_beats_lru(void **state)
{
	struct trace_result results[KIND_COUNT];
	struct trace t;

	trace_init(&t);
	for (size_t i = 0; i < KIND_COUNT; i++) {
		struct trace_result *r = &results[i];
		trace_run(&t, kinds[i], r);
		printf("trace %-7s hit ratio %.4f by requests, %.4f by bytes  (%" PRIu64
		       " requests incl. scans, %u objects, Zipf %.1f, capacity %" PRIu64
		       " MiB = %u%% of %" PRIu64 " MiB, scan of %ux capacity every %u requests)\n",
		       cache_policy_kind_name(kinds[i]), (double)r->hits / (double)r->requests,
		       (double)r->hit_bytes / (double)r->bytes, r->requests, TRACE_OBJECTS,
		       TRACE_ZIPF_ALPHA, t.capacity / MIB, TRACE_CAPACITY_PERCENT,
		       t.total_bytes / MIB, TRACE_SCAN_CAPACITIES, TRACE_SCAN_EVERY);
	}
	fflush(stdout);
	/* Both saw the same requests. */
	assert_int_equal(results[0].requests, results[1].requests);
	assert_int_equal(results[0].bytes, results[1].bytes);
	assert_true((double)results[0].hits / (double)results[0].requests >=
	            (double)results[1].hits / (double)results[1].requests + TRACE_MIN_MARGIN);
	assert_true((double)results[0].hit_bytes / (double)results[0].bytes >
	            (double)results[1].hit_bytes / (double)results[1].bytes);
	trace_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_errors),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_scan_resistance),
		cmocka_unit_test(test_s3fifo_ghost_enters_main),
		cmocka_unit_test(test_s3fifo_frequency),
		cmocka_unit_test(test_pinned_never_victims),
		cmocka_unit_test(test_pin_before_insert),
		cmocka_unit_test(test_bookkeeping_random),
		cmocka_unit_test(test_million_keys),
		cmocka_unit_test(test_trace_s3fifo_beats_lru),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
