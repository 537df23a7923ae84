/* stats: one accelerated directory's counters, latency histograms, per-file read counts and
 * rolling windows. Worker threads update counters and histograms without locks (relaxed
 * atomics); the per-file table and the windows have their own locks (below). The control
 * socket reads a snapshot. Statistics never lie: reads and writes on passthrough opens bypass
 * the daemon; the kernel counts them exactly (stats_bpf.h) and a snapshot merges those counts
 * in (struct stats_passthrough). Without them only the opens are counted, never file sizes.
 * The JSON keys are a stable interface, documented in docs/STATS.md (version 2).
 */
#ifndef CACHEMAX_STATS_H
#define CACHEMAX_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stats_counter {
	STATS_REQUESTS,                  /* FUSE requests answered */
	STATS_OPENS,                     /* file opens (regular files) */
	STATS_PASSTHROUGH_OPENS_ORIGIN,  /* opens passed through to the original file */
	STATS_PASSTHROUGH_OPENS_CACHE,   /* opens passed through to the cache copy (hits) */
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
	STATS_ORIGIN_OPENS_DEFERRED,     /* read-only opens answered without opening the original
	                                  * file (checked through the node's O_PATH fd) */
	STATS_ORIGIN_OPENS_LATE,         /* of those, original files opened later, on first need */
	STATS_CATALOG_OPENS,             /* of those, opens checked against the metadata catalog's
	                                  * attributes and passed through to the cache copy: the
	                                  * original's inode not read at all (fs_catalog.c) */
	STATS_KEPT_REOPENS,              /* first opens that found their cache copy kept since
	                                  * the last close, with its backing id (engine_kept) */
	STATS_UNSETTLED_OPENS,           /* first opens not cached: the file changed within 3 s and
	                                  * no watcher reports its changes (engine_settle.c) */
	STATS_XATTR_ABSENT_ANSWERS,      /* GETXATTR and LISTXATTR answered without the original:
	                                  * the inode is known to have no xattrs, or the original's
	                                  * file system has none at all (ENOSYS; fs_xattr.c) */
	STATS_LISTINGS_KEPT,             /* directory opens on an unwatched original that let the
	                                  * kernel keep the listing it read within the timeouts */
	STATS_COMPLETIONS_DEFERRED,      /* completions the full fill queue refused that waited in
	                                  * the fill backlog (no fd) to be queued as it emptied */
	STATS_COMPLETIONS_SKIPPED,       /* completions neither the queue nor the backlog took:
	                                  * the file is filled at its next miss */
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

/* Bytes and ops served per file through the daemon (user space), by nodeid: a bounded table
 * (STATS_FILES_MAX) in stripes, each with its own lock; when a stripe is full, the entry that
 * served least makes room (its counts are then lost; `files_dropped` counts that). */
#define STATS_FILES_STRIPES 16
#define STATS_FILES_PER_STRIPE 64
#define STATS_FILES_MAX (STATS_FILES_STRIPES * STATS_FILES_PER_STRIPE)
struct stats_file {
	uint64_t nodeid;        /* 0: free slot */
	uint64_t ino;           /* the original's st_ino */
	uint64_t read_ops_cache, read_bytes_cache, read_ops_origin, read_bytes_origin;
	uint64_t write_ops, write_bytes;
};
struct stats_files_stripe {
	pthread_mutex_t lock;   /* protects slot[] */
	struct stats_file slot[STATS_FILES_PER_STRIPE];
};

struct stats {
	atomic_uint_fast64_t counter[STATS_COUNTER_COUNT];
	struct stats_histogram latency[STATS_LAT_COUNT];
	struct stats_files_stripe files[STATS_FILES_STRIPES];
	atomic_uint_fast64_t files_dropped;
};

/* Passthrough reads and writes as the kernel counted them (stats_bpf.h), merged into a
 * snapshot: read_ops_cache etc., the ratios and the windows then include them. */
enum stats_pt_counter {
	STATS_PT_READ_OPS_CACHE,
	STATS_PT_READ_BYTES_CACHE,
	STATS_PT_READ_OPS_ORIGIN,
	STATS_PT_READ_BYTES_ORIGIN,
	STATS_PT_WRITE_OPS,
	STATS_PT_WRITE_BYTES,
	STATS_PT_ERRORS,
	STATS_PT_COUNTER_COUNT
};
struct stats_passthrough {
	uint64_t counter[STATS_PT_COUNTER_COUNT];
	uint64_t lat_sum_ns[STATS_LAT_COUNT];           /* indexed like enum stats_latency */
	uint64_t lat_bucket[STATS_LAT_COUNT][STATS_HIST_BUCKETS];
};

void stats_init(struct stats *s);
void stats_release(struct stats *s);
static inline void stats_add(struct stats *s, enum stats_counter c, uint64_t n)
{
	if (s)
		atomic_fetch_add_explicit(&s->counter[c], n, memory_order_relaxed);
}
void stats_record_latency(struct stats *s, enum stats_latency l, uint64_t ns);
/* Latencies are measured with clock_now_ns() (util/clock.h). */

/* Percentile (0 < p < 100) of a histogram in nanoseconds (bucket upper bound); 0 if empty. */
uint64_t stats_histogram_percentile(const struct stats_histogram *h, double p);
/* The same over plain counts of buckets first .. first + nbuckets - 1. */
uint64_t stats_buckets_percentile(const uint64_t *counts, unsigned nbuckets, unsigned first,
                                  double p);
/* The bucket of a latency in nanoseconds (the BPF program computes the same). */
unsigned stats_bucket_of(uint64_t ns);

/* Count one read (write: false) or write served through the daemon for a file. */
void stats_file_add(struct stats *s, uint64_t nodeid, uint64_t ino, bool write, bool from_cache,
                    uint64_t bytes);

/* The n files that served most bytes (reads from cache and origin, writes), user space and
 * passthrough (extra: the kernel's per-file counts, may be NULL) merged by nodeid, most first.
 * Returns how many were written to out. */
size_t stats_files_top(struct stats *s, const struct stats_file *extra, size_t extra_count,
                       struct stats_file *out, size_t n);

/* One snapshot as a JSON object (no newline): pt (may be NULL: the kernel's counts are not
 * available) is merged into the read and write counters and ratios. Returns the length, or
 * -ENOSPC if buf is small. */
int stats_snapshot_json(const struct stats *s, const struct stats_passthrough *pt, char *buf,
                        size_t size);

/* ---- Rolling windows --------------------------------------------------------------------- */

/* Cumulative totals (user space and passthrough) that the windows difference. Latencies of
 * reads from the cache and from the origin, both paths merged, in the window buckets: those
 * of the histograms from 128 ns to 137 s (shorter and longer ones fall into the first and last),
 * as 32-bit counts (a window's difference is exact below 2^32 samples). */
#define STATS_WINDOW_FIRST_BUCKET 40   /* bucket of 128 ns */
#define STATS_WINDOW_BUCKETS 256
enum stats_window_latency { STATS_WLAT_READ_CACHE, STATS_WLAT_READ_ORIGIN, STATS_WLAT_COUNT };
struct stats_totals {
	int64_t t_ms;           /* when taken (CLOCK_MONOTONIC) */
	uint64_t read_ops_cache, read_bytes_cache, read_ops_origin, read_bytes_origin;
	uint64_t write_ops, write_bytes;
	uint32_t lat[STATS_WLAT_COUNT][STATS_WINDOW_BUCKETS];
};
void stats_totals_take(const struct stats *s, const struct stats_passthrough *pt, int64_t now_ms,
                       struct stats_totals *out);

/* Samples for the windows 1 s, 1 min, 5 min, 1 h (and the total since the start): three rings
 * of STATS_WINDOW_RING samples taken every 1 s, 5 s and 60 s. One sampler pushes a sample every
 * second; the control thread reads. `lock` protects everything. */
#define STATS_WINDOW_RING 62
struct stats_window_ring {
	unsigned head, count;
	struct stats_totals sample[STATS_WINDOW_RING];
};
struct stats_windows {
	pthread_mutex_t lock;
	int64_t start_ms;
	uint64_t pushes;
	struct stats_window_ring ring[3];
};
void stats_windows_init(struct stats_windows *w, int64_t now_ms);
void stats_windows_release(struct stats_windows *w);
void stats_windows_push(struct stats_windows *w, const struct stats_totals *t);
/* `"windows": {"1s": {...}, "1m": ..., "5m": ..., "1h": ..., "total": ...}` against the
 * current totals now (no braces around it). Returns the length or -ENOSPC. */
int stats_windows_json(struct stats_windows *w, const struct stats_totals *now, char *buf,
                       size_t size);

#endif
