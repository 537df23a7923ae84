/* stats: counters, log-linear latency histograms and their JSON snapshot (see stats.h). */
#include "stats/stats.h"
#include "util/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const counter_names[STATS_COUNTER_COUNT] = {
	[STATS_REQUESTS] = "requests",
	[STATS_OPENS] = "opens",
	[STATS_PASSTHROUGH_OPENS_ORIGIN] = "passthrough_opens_origin",
	[STATS_PASSTHROUGH_OPENS_CACHE] = "passthrough_opens_cache",
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
	[STATS_ORIGIN_OPENS_DEFERRED] = "origin_opens_deferred",
	[STATS_ORIGIN_OPENS_LATE] = "origin_opens_late",
	[STATS_CATALOG_OPENS] = "catalog_opens",
	[STATS_KEPT_REOPENS] = "kept_reopens",
	[STATS_UNSETTLED_OPENS] = "unsettled_opens",
	[STATS_XATTR_ABSENT_ANSWERS] = "xattr_absent_answers",
	[STATS_LISTINGS_KEPT] = "listings_kept",
	[STATS_COMPLETIONS_DEFERRED] = "completions_deferred",
	[STATS_COMPLETIONS_SKIPPED] = "completions_skipped",
};

static const char *const latency_names[STATS_LAT_COUNT] = {
	[STATS_LAT_READ_CACHE] = "read_cache",
	[STATS_LAT_READ_ORIGIN] = "read_origin",
	[STATS_LAT_WRITE] = "write",
};

static const char *const pt_counter_names[STATS_PT_COUNTER_COUNT] = {
	[STATS_PT_READ_OPS_CACHE] = "passthrough_read_ops_cache",
	[STATS_PT_READ_BYTES_CACHE] = "passthrough_read_bytes_cache",
	[STATS_PT_READ_OPS_ORIGIN] = "passthrough_read_ops_origin",
	[STATS_PT_READ_BYTES_ORIGIN] = "passthrough_read_bytes_origin",
	[STATS_PT_WRITE_OPS] = "passthrough_write_ops",
	[STATS_PT_WRITE_BYTES] = "passthrough_write_bytes",
	[STATS_PT_ERRORS] = "passthrough_errors",
};

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < STATS_FILES_STRIPES; i++)
		pthread_mutex_init(&s->files[i].lock, NULL);
}

void stats_release(struct stats *s)
{
	for (unsigned i = 0; i < STATS_FILES_STRIPES; i++)
		pthread_mutex_destroy(&s->files[i].lock);
}

void stats_file_add(struct stats *s, uint64_t nodeid, uint64_t ino, bool write, bool from_cache,
                    uint64_t bytes)
{
	struct stats_files_stripe *st;
	struct stats_file *e = NULL, *least = NULL;

	if (!s || !nodeid)
		return;
	st = &s->files[(nodeid * 0x9E3779B97F4A7C15ull) >> 60];  /* 16 stripes: the top 4 bits */
	pthread_mutex_lock(&st->lock);
	for (unsigned i = 0; i < STATS_FILES_PER_STRIPE && !e; i++) {
		struct stats_file *c = &st->slot[i];
		if (c->nodeid == nodeid) {
			e = c;
		} else if (!c->nodeid) {
			e = c;
			e->nodeid = nodeid;
		} else if (!least || c->read_bytes_cache + c->read_bytes_origin + c->write_bytes <
		                     least->read_bytes_cache + least->read_bytes_origin +
		                     least->write_bytes) {
			least = c;
		}
	}
	if (!e) {
		atomic_fetch_add_explicit(&s->files_dropped, 1, memory_order_relaxed);
		e = least;
		memset(e, 0, sizeof(*e));
		e->nodeid = nodeid;
	}
	e->ino = ino;
	if (write) {
		e->write_ops++;
		e->write_bytes += bytes;
	} else if (from_cache) {
		e->read_ops_cache++;
		e->read_bytes_cache += bytes;
	} else {
		e->read_ops_origin++;
		e->read_bytes_origin += bytes;
	}
	pthread_mutex_unlock(&st->lock);
}

static uint64_t file_served(const struct stats_file *f)
{
	return f->read_bytes_cache + f->read_bytes_origin + f->write_bytes;
}

static int by_nodeid(const void *a, const void *b)
{
	uint64_t x = ((const struct stats_file *)a)->nodeid, y = ((const struct stats_file *)b)->nodeid;
	return x < y ? -1 : x > y;
}

static int by_served_desc(const void *a, const void *b)
{
	uint64_t x = file_served(a), y = file_served(b);
	return x > y ? -1 : x < y;
}

size_t stats_files_top(struct stats *s, const struct stats_file *extra, size_t extra_count,
                       struct stats_file *out, size_t n)
{
	size_t have = 0, merged = 0;
	struct stats_file *all;

	if (!n)
		return 0;
	all = calloc(STATS_FILES_MAX + extra_count, sizeof(*all));
	if (!all)
		return 0;
	if (extra_count)
		memcpy(all, extra, extra_count * sizeof(*all));
	have = extra_count;
	for (unsigned i = 0; i < STATS_FILES_STRIPES; i++) {
		pthread_mutex_lock(&s->files[i].lock);
		for (unsigned j = 0; j < STATS_FILES_PER_STRIPE; j++)
			if (s->files[i].slot[j].nodeid)
				all[have++] = s->files[i].slot[j];
		pthread_mutex_unlock(&s->files[i].lock);
	}
	/* A file served both ways has an entry in each: sum them. */
	qsort(all, have, sizeof(*all), by_nodeid);
	for (size_t i = 0; i < have; i++) {
		struct stats_file *m = &all[merged];
		if (merged && all[i].nodeid == all[merged - 1].nodeid) {
			m = &all[merged - 1];
			m->read_ops_cache += all[i].read_ops_cache;
			m->read_bytes_cache += all[i].read_bytes_cache;
			m->read_ops_origin += all[i].read_ops_origin;
			m->read_bytes_origin += all[i].read_bytes_origin;
			m->write_ops += all[i].write_ops;
			m->write_bytes += all[i].write_bytes;
			if (!m->ino)
				m->ino = all[i].ino;
		} else {
			*m = all[i];
			merged++;
		}
	}
	qsort(all, merged, sizeof(*all), by_served_desc);
	if (merged > n)
		merged = n;
	memcpy(out, all, merged * sizeof(*out));
	free(all);
	return merged;
}

/* Bucket of a value: values below STATS_HIST_SUB map to themselves; above, the power of two
 * selects a group of STATS_HIST_SUB buckets and the next three bits the bucket within it. */
unsigned stats_bucket_of(uint64_t ns)
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
	b = stats_bucket_of(ns);
	if (b >= STATS_HIST_BUCKETS)
		b = STATS_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t stats_buckets_percentile(const uint64_t *counts, unsigned nbuckets, unsigned first,
                                  double p)
{
	uint64_t total = 0, seen = 0, rank;

	for (unsigned b = 0; b < nbuckets; b++)
		total += counts[b];
	if (!total)
		return 0;
	rank = (uint64_t)((double)total * p / 100.0);
	if (rank >= total)
		rank = total - 1;
	for (unsigned b = 0; b < nbuckets; b++) {
		seen += counts[b];
		if (seen > rank)
			return bucket_upper(first + b);
	}
	return bucket_upper(first + nbuckets - 1);
}

uint64_t stats_histogram_percentile(const struct stats_histogram *h, double p)
{
	uint64_t counts[STATS_HIST_BUCKETS];

	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
		counts[b] = atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
	return stats_buckets_percentile(counts, STATS_HIST_BUCKETS, 0, p);
}

static double ratio(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

/* A histogram as a JSON object: count, mean, p50, p99 in microseconds; null without samples
 * (no number is better than a made-up 0). */
static void latency_json(struct json_buf *o, const char *name, const uint64_t *bucket, uint64_t sum_ns,
                         bool first)
{
	uint64_t n = 0;
	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
		n += bucket[b];
	json_buf_printf(o, "%s\"%s\": {\"count\": %llu", first ? "" : ", ", name, (unsigned long long)n);
	if (!n) {
		json_buf_printf(o, ", \"mean\": null, \"p50\": null, \"p99\": null}");
		return;
	}
	json_buf_printf(o, ", \"mean\": %.1f, \"p50\": %.1f, \"p99\": %.1f}", (double)sum_ns / (double)n / 1000.0,
	    (double)stats_buckets_percentile(bucket, STATS_HIST_BUCKETS, 0, 50) / 1000.0,
	    (double)stats_buckets_percentile(bucket, STATS_HIST_BUCKETS, 0, 99) / 1000.0);
}

int stats_snapshot_json(const struct stats *s, const struct stats_passthrough *pt, char *buf,
                        size_t size)
{
	static const struct stats_passthrough none;
	struct json_buf o = { buf, size, 0, 0 };
	uint64_t c[STATS_COUNTER_COUNT], bucket[STATS_HIST_BUCKETS];
	const uint64_t *p;

	if (!size)
		return -ENOSPC;
	if (!pt)
		pt = &none;
	p = pt->counter;
	for (int i = 0; i < STATS_COUNTER_COUNT; i++)
		c[i] = atomic_load_explicit(&s->counter[i], memory_order_relaxed);
	c[STATS_READ_OPS_CACHE] += p[STATS_PT_READ_OPS_CACHE];
	c[STATS_READ_BYTES_CACHE] += p[STATS_PT_READ_BYTES_CACHE];
	c[STATS_READ_OPS_ORIGIN] += p[STATS_PT_READ_OPS_ORIGIN];
	c[STATS_READ_BYTES_ORIGIN] += p[STATS_PT_READ_BYTES_ORIGIN];
	c[STATS_WRITE_OPS] += p[STATS_PT_WRITE_OPS];
	c[STATS_WRITE_BYTES] += p[STATS_PT_WRITE_BYTES];
	json_buf_printf(&o, "{\"version\": 2, \"counters\": {");
	for (int i = 0; i < STATS_COUNTER_COUNT; i++)
		json_buf_printf(&o, "%s\"%s\": %llu", i ? ", " : "", counter_names[i], (unsigned long long)c[i]);
	for (int i = 0; i < STATS_PT_COUNTER_COUNT; i++)
		json_buf_printf(&o, ", \"%s\": %llu", pt_counter_names[i], (unsigned long long)p[i]);
	json_buf_printf(&o, ", \"files_dropped\": %llu",
	    (unsigned long long)atomic_load_explicit(&s->files_dropped, memory_order_relaxed));
	json_buf_printf(&o, "}, \"hit_ratio_ops\": %.4f, \"hit_ratio_bytes\": %.4f, \"latency_us\": {",
	    ratio(c[STATS_READ_OPS_CACHE], c[STATS_READ_OPS_CACHE] + c[STATS_READ_OPS_ORIGIN]),
	    ratio(c[STATS_READ_BYTES_CACHE], c[STATS_READ_BYTES_CACHE] + c[STATS_READ_BYTES_ORIGIN]));
	for (int i = 0; i < STATS_LAT_COUNT; i++) {
		const struct stats_histogram *h = &s->latency[i];
		for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
			bucket[b] = atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		latency_json(&o, latency_names[i], bucket,
		             atomic_load_explicit(&h->sum_ns, memory_order_relaxed), i == 0);
	}
	for (int i = 0; i < STATS_LAT_COUNT; i++) {
		char name[48];
		snprintf(name, sizeof(name), "passthrough_%s", latency_names[i]);
		latency_json(&o, name, pt->lat_bucket[i], pt->lat_sum_ns[i], false);
	}
	json_buf_printf(&o, "}}");
	return o.err ? o.err : (int)o.used;
}
