/* stats: counters, log-linear latency histograms and their JSON snapshot (see stats.h). */
#include "stats/stats.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const counter_names[STATS_COUNTER_COUNT] = {
	[STATS_REQUESTS] = "requests",
	[STATS_OPENS] = "opens",
	[STATS_PASSTHROUGH_OPENS_ORIGIN] = "passthrough_opens_origin",
	[STATS_PASSTHROUGH_BYTES_ORIGIN] = "passthrough_bytes_origin",
	[STATS_PASSTHROUGH_OPENS_CACHE] = "passthrough_opens_cache",
	[STATS_PASSTHROUGH_BYTES_CACHE] = "passthrough_bytes_cache",
	[STATS_READ_OPS_CACHE] = "read_ops_cache",
	[STATS_READ_BYTES_CACHE] = "read_bytes_cache",
	[STATS_READ_OPS_ORIGIN] = "read_ops_origin",
	[STATS_READ_BYTES_ORIGIN] = "read_bytes_origin",
	[STATS_WRITE_OPS] = "write_ops",
	[STATS_WRITE_BYTES] = "write_bytes",
	[STATS_FILLS] = "fills",
	[STATS_FILL_BYTES] = "fill_bytes",
	[STATS_FILLS_DROPPED] = "fills_dropped",
	[STATS_EVICTIONS] = "evictions",
	[STATS_INVALIDATIONS] = "invalidations",
	[STATS_BYPASSES] = "bypasses",
	[STATS_ORIGIN_ERRORS] = "origin_errors",
	[STATS_CACHE_ERRORS] = "cache_errors",
	[STATS_FILLS_REFUSED_FULL] = "fills_refused_full",
	[STATS_COMPLETIONS] = "completions",
	[STATS_FIRST_READS] = "first_reads",
	[STATS_BYPASS_ENTRIES] = "bypass_entries",
	[STATS_EXCLUDED_OPENS] = "excluded_opens",
	[STATS_READAHEAD_BYTES] = "readahead_bytes",
	[STATS_CHANGES_BEHIND] = "changes_behind",
	[STATS_KERNEL_INVALIDATIONS] = "kernel_invalidations",
	[STATS_WATCH_OVERFLOWS] = "watch_overflows",
	[STATS_DELETED_OBJECTS] = "deleted_objects",
	[STATS_SCRUB_RECLAIMED] = "scrub_reclaimed",
};

static const char *const latency_names[STATS_LAT_COUNT] = {
	[STATS_LAT_READ_CACHE] = "read_cache",
	[STATS_LAT_READ_ORIGIN] = "read_origin",
	[STATS_LAT_WRITE] = "write",
};

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
}

/* Bucket of a value: values below STATS_HIST_SUB map to themselves; above, the power of two
 * selects a group of STATS_HIST_SUB buckets and the next three bits the bucket within it. */
static unsigned bucket_of(uint64_t ns)
{
	unsigned msb, shift;
	if (ns < STATS_HIST_SUB)
		return (unsigned)ns;
	msb = 63u - (unsigned)__builtin_clzll(ns);          /* >= 3 */
	shift = msb - 3;                                     /* log2(STATS_HIST_SUB) = 3 */
	return (msb - 2) * STATS_HIST_SUB + (unsigned)((ns >> shift) & (STATS_HIST_SUB - 1));
}

/* Largest value that falls into bucket b. */
static uint64_t bucket_upper(unsigned b)
{
	unsigned group = b / STATS_HIST_SUB, sub = b % STATS_HIST_SUB, msb, shift;
	if (group == 0)
		return b;
	msb = group + 2;
	shift = msb - 3;
	return (((uint64_t)(STATS_HIST_SUB + sub) + 1) << shift) - 1;
}

void stats_record_latency(struct stats *s, enum stats_latency l, uint64_t ns)
{
	struct stats_histogram *h;
	unsigned b;
	if (!s)
		return;
	h = &s->latency[l];
	b = bucket_of(ns);
	if (b >= STATS_HIST_BUCKETS)
		b = STATS_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t stats_histogram_percentile(const struct stats_histogram *h, double p)
{
	uint64_t total = 0, seen = 0, rank;
	uint64_t counts[STATS_HIST_BUCKETS];

	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
		counts[b] = atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		total += counts[b];
	}
	if (!total)
		return 0;
	rank = (uint64_t)((double)total * p / 100.0);
	if (rank >= total)
		rank = total - 1;
	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
		seen += counts[b];
		if (seen > rank)
			return bucket_upper(b);
	}
	return bucket_upper(STATS_HIST_BUCKETS - 1);
}

struct json_out {
	char *buf;
	size_t size, used;
	int err;
};

static void out(struct json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct json_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (o->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->used, o->size - o->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->used)
		o->err = -ENOSPC;
	else
		o->used += (size_t)n;
}

static double ratio(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

int stats_snapshot_json(const struct stats *s, char *buf, size_t size)
{
	struct json_out o = { buf, size, 0, 0 };
	uint64_t c[STATS_COUNTER_COUNT];

	if (!size)
		return -ENOSPC;
	for (int i = 0; i < STATS_COUNTER_COUNT; i++)
		c[i] = atomic_load_explicit(&s->counter[i], memory_order_relaxed);
	out(&o, "{\"version\": 1, \"counters\": {");
	for (int i = 0; i < STATS_COUNTER_COUNT; i++)
		out(&o, "%s\"%s\": %llu", i ? ", " : "", counter_names[i], (unsigned long long)c[i]);
	out(&o, "}, \"hit_ratio_ops\": %.4f, \"hit_ratio_bytes\": %.4f, \"latency_us\": {",
	    ratio(c[STATS_READ_OPS_CACHE], c[STATS_READ_OPS_CACHE] + c[STATS_READ_OPS_ORIGIN]),
	    ratio(c[STATS_READ_BYTES_CACHE], c[STATS_READ_BYTES_CACHE] + c[STATS_READ_BYTES_ORIGIN]));
	for (int i = 0; i < STATS_LAT_COUNT; i++) {
		const struct stats_histogram *h = &s->latency[i];
		uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
		uint64_t sum = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
		out(&o, "%s\"%s\": {\"count\": %llu, \"mean\": %.1f, \"p50\": %.1f, \"p99\": %.1f}",
		    i ? ", " : "", latency_names[i], (unsigned long long)n,
		    n ? (double)sum / (double)n / 1000.0 : 0.0,
		    (double)stats_histogram_percentile(h, 50) / 1000.0,
		    (double)stats_histogram_percentile(h, 99) / 1000.0);
	}
	out(&o, "}}");
	return o.err ? o.err : (int)o.used;
}
