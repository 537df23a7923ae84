/* stats: one accelerated directory's counters and latency histograms. Worker threads update them
 * without locks (relaxed atomics); the control socket reads a snapshot. Statistics never lie:
 * reads and writes on passthrough opens bypass the daemon, so for those only the opens and the
 * size of the files opened are counted, never invented per-read figures.
 * The JSON keys are a stable interface, documented in docs/STATS.md (version 1).
 */
#ifndef CACHEMAX_STATS_H
#define CACHEMAX_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum stats_counter {
	STATS_REQUESTS,                  /* FUSE requests answered */
	STATS_OPENS,                     /* file opens (regular files) */
	STATS_PASSTHROUGH_OPENS_ORIGIN,  /* opens passed through to the original file */
	STATS_PASSTHROUGH_BYTES_ORIGIN,  /* sizes of those files at open */
	STATS_PASSTHROUGH_OPENS_CACHE,   /* opens passed through to the cache copy (hits) */
	STATS_PASSTHROUGH_BYTES_CACHE,   /* sizes of those files at open */
	STATS_READ_OPS_CACHE,            /* user-space reads served from the cache copy */
	STATS_READ_BYTES_CACHE,
	STATS_READ_OPS_ORIGIN,           /* user-space reads served from the origin (misses) */
	STATS_READ_BYTES_ORIGIN,
	STATS_WRITE_OPS,                 /* user-space writes (always to the origin first) */
	STATS_WRITE_BYTES,
	STATS_FILLS,                     /* chunks written into the cache */
	STATS_FILL_BYTES,
	STATS_FILLS_DROPPED,             /* fills dropped because they raced with a write */
	STATS_EVICTIONS,
	STATS_INVALIDATIONS,             /* objects invalidated (origin changed, write, truncate) */
	STATS_BYPASSES,                  /* requests served from the origin because the cache failed */
	STATS_ORIGIN_ERRORS,             /* errors from the origin, passed to applications */
	STATS_CACHE_ERRORS,              /* errors from the cache device, never passed on */
	STATS_FILLS_REFUSED_FULL,        /* fills not stored: the cache was at its capacity */
	STATS_COMPLETIONS,               /* files completed in the background */
	STATS_FIRST_READS,               /* read-only opens passed through to the origin as a
	                                  * file's first read (the cache fills behind it) */
	STATS_BYPASS_ENTRIES,            /* times the whole cache went into bypass */
	STATS_EXCLUDED_OPENS,            /* opens of files excluded from caching (--exclude) */
	STATS_READAHEAD_BYTES,           /* bytes stored by read-ahead ahead of a sequential reader */
	STATS_CHANGES_BEHIND,            /* changes made behind the cache to an inode the kernel
	                                  * holds, as the change watcher saw them (fs_watch.c) */
	STATS_KERNEL_INVALIDATIONS,      /* notifications that dropped the kernel's cached
	                                  * attributes, data or names after such changes */
	STATS_WATCH_OVERFLOWS,           /* change events lost (queue overflow): all revalidated */
	STATS_DELETED_OBJECTS,           /* cache objects dropped because their file was deleted
	                                  * through the mount (at its last close if it was open) */
	STATS_SCRUB_RECLAIMED,           /* cache objects the scrub removed (origin gone or changed,
	                                  * or holding nothing); the daemon copies the store's count */
	STATS_COUNTER_COUNT
};

enum stats_latency {
	STATS_LAT_READ_CACHE,            /* user-space read served from the cache copy */
	STATS_LAT_READ_ORIGIN,           /* user-space read served from the origin */
	STATS_LAT_WRITE,                 /* user-space write */
	STATS_LAT_COUNT
};

/* Log-linear buckets: 8 sub-buckets per power of two of nanoseconds (<= 12.5% error). */
#define STATS_HIST_SUB 8
#define STATS_HIST_BUCKETS (64 * STATS_HIST_SUB)

struct stats_histogram {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t bucket[STATS_HIST_BUCKETS];
};

struct stats {
	atomic_uint_fast64_t counter[STATS_COUNTER_COUNT];
	struct stats_histogram latency[STATS_LAT_COUNT];
};

void stats_init(struct stats *s);
static inline void stats_add(struct stats *s, enum stats_counter c, uint64_t n)
{
	if (s)
		atomic_fetch_add_explicit(&s->counter[c], n, memory_order_relaxed);
}
void stats_record_latency(struct stats *s, enum stats_latency l, uint64_t ns);
/* Latencies are measured with clock_now_ns() (util/clock.h). */

/* Percentile (0 < p < 100) of a histogram in nanoseconds (bucket upper bound); 0 if empty. */
uint64_t stats_histogram_percentile(const struct stats_histogram *h, double p);

/* One snapshot as a JSON object (no newline). Returns the length, or -ENOSPC if buf is small. */
int stats_snapshot_json(const struct stats *s, char *buf, size_t size);

#endif
