/* stats_window: rolling windows (1 s, 1 min, 5 min, 1 h, total) like bcache's, by differencing
 * cumulative totals: a window's figure is the totals now minus the newest sample at least the
 * window's length old (or the start, while the daemon is younger than the window; "seconds"
 * then says how long the window really is). Samples of three resolutions keep memory small:
 * every 1 s (for 1 s and 1 min), every 5 s (5 min) and every 60 s (1 h). See stats.h.
 */
#include "stats/stats.h"
#include "util/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const unsigned ring_step[3] = { 1, 5, 60 };   /* pushes (seconds) between samples */

static const struct {
	const char *name;
	int64_t ms;           /* 0: since the start */
	unsigned ring;
} windows[] = {
	{ "1s", 1000, 0 }, { "1m", 60000, 0 }, { "5m", 300000, 1 }, { "1h", 3600000, 2 }, { "total", 0, 0 },
};

void stats_totals_take(const struct stats *s, const struct stats_passthrough *pt, int64_t now_ms,
                       struct stats_totals *t)
{
#define LOAD(c) atomic_load_explicit(&s->counter[c], memory_order_relaxed)
	static const enum stats_latency from[STATS_WLAT_COUNT] = {
		[STATS_WLAT_READ_CACHE] = STATS_LAT_READ_CACHE,
		[STATS_WLAT_READ_ORIGIN] = STATS_LAT_READ_ORIGIN,
	};
	memset(t, 0, sizeof(*t));
	t->t_ms = now_ms;
	t->read_ops_cache = LOAD(STATS_READ_OPS_CACHE);
	t->read_bytes_cache = LOAD(STATS_READ_BYTES_CACHE);
	t->read_ops_origin = LOAD(STATS_READ_OPS_ORIGIN);
	t->read_bytes_origin = LOAD(STATS_READ_BYTES_ORIGIN);
	t->write_ops = LOAD(STATS_WRITE_OPS);
	t->write_bytes = LOAD(STATS_WRITE_BYTES);
	if (pt) {
		t->read_ops_cache += pt->counter[STATS_PT_READ_OPS_CACHE];
		t->read_bytes_cache += pt->counter[STATS_PT_READ_BYTES_CACHE];
		t->read_ops_origin += pt->counter[STATS_PT_READ_OPS_ORIGIN];
		t->read_bytes_origin += pt->counter[STATS_PT_READ_BYTES_ORIGIN];
		t->write_ops += pt->counter[STATS_PT_WRITE_OPS];
		t->write_bytes += pt->counter[STATS_PT_WRITE_BYTES];
	}
	for (unsigned l = 0; l < STATS_WLAT_COUNT; l++) {
		for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
			uint64_t n = atomic_load_explicit(&s->latency[from[l]].bucket[b], memory_order_relaxed);
			unsigned w = b < STATS_WINDOW_FIRST_BUCKET ? 0 : b - STATS_WINDOW_FIRST_BUCKET;
			if (pt)
				n += pt->lat_bucket[from[l]][b];
			if (w >= STATS_WINDOW_BUCKETS)
				w = STATS_WINDOW_BUCKETS - 1;
			t->lat[l][w] += (uint32_t)n;  /* modulo 2^32: differences stay exact */
		}
	}
#undef LOAD
}

void stats_windows_init(struct stats_windows *w, int64_t now_ms)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->start_ms = now_ms;
}

void stats_windows_release(struct stats_windows *w)
{
	pthread_mutex_destroy(&w->lock);
}

static void ring_push(struct stats_window_ring *r, const struct stats_totals *t)
{
	r->head = (r->head + 1) % STATS_WINDOW_RING;
	r->sample[r->head] = *t;
	if (r->count < STATS_WINDOW_RING)
		r->count++;
}

void stats_windows_push(struct stats_windows *w, const struct stats_totals *t)
{
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < 3; i++)
		if (w->pushes % ring_step[i] == 0)
			ring_push(&w->ring[i], t);
	w->pushes++;
	pthread_mutex_unlock(&w->lock);
}

/* The newest sample of ring r taken at or before `at`; NULL if none is that old. */
static const struct stats_totals *ring_find(const struct stats_window_ring *r, int64_t at)
{
	for (unsigned k = 0; k < r->count; k++) {
		const struct stats_totals *t =
			&r->sample[(r->head + STATS_WINDOW_RING - k) % STATS_WINDOW_RING];
		if (t->t_ms <= at)
			return t;
	}
	return NULL;
}

static double ratio_of(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

static void window_json(struct json_buf *o, const struct stats_totals *now,
                        const struct stats_totals *base, double seconds)
{
	static const char *const lat_names[STATS_WLAT_COUNT] = { "read_cache", "read_origin" };
	uint64_t roc = now->read_ops_cache - base->read_ops_cache;
	uint64_t rbc = now->read_bytes_cache - base->read_bytes_cache;
	uint64_t roo = now->read_ops_origin - base->read_ops_origin;
	uint64_t rbo = now->read_bytes_origin - base->read_bytes_origin;
	uint64_t wo = now->write_ops - base->write_ops, wb = now->write_bytes - base->write_bytes;
	double sec = seconds > 0.001 ? seconds : 0.001;

	json_buf_printf(o, "{\"seconds\": %.1f, \"read_ops_cache\": %llu, \"read_bytes_cache\": %llu, "
	    "\"read_ops_origin\": %llu, \"read_bytes_origin\": %llu, \"write_ops\": %llu, "
	    "\"write_bytes\": %llu, \"hit_ratio_ops\": %.4f, \"hit_ratio_bytes\": %.4f, "
	    "\"mb_per_s_cache\": %.3f, \"mb_per_s_origin\": %.3f, \"latency_us\": {",
	    seconds, (unsigned long long)roc, (unsigned long long)rbc, (unsigned long long)roo,
	    (unsigned long long)rbo, (unsigned long long)wo, (unsigned long long)wb,
	    ratio_of(roc, roc + roo), ratio_of(rbc, rbc + rbo), (double)rbc / 1e6 / sec,
	    (double)rbo / 1e6 / sec);
	for (unsigned l = 0; l < STATS_WLAT_COUNT; l++) {
		uint64_t d[STATS_WINDOW_BUCKETS], n = 0;
		for (unsigned b = 0; b < STATS_WINDOW_BUCKETS; b++) {
			d[b] = (uint32_t)(now->lat[l][b] - base->lat[l][b]);
			n += d[b];
		}
		json_buf_printf(o, "%s\"%s\": {\"count\": %llu", l ? ", " : "", lat_names[l], (unsigned long long)n);
		if (n)
			json_buf_printf(o, ", \"p50\": %.1f, \"p99\": %.1f}",
			    (double)stats_buckets_percentile(d, STATS_WINDOW_BUCKETS, STATS_WINDOW_FIRST_BUCKET, 50) / 1000.0,
			    (double)stats_buckets_percentile(d, STATS_WINDOW_BUCKETS, STATS_WINDOW_FIRST_BUCKET, 99) / 1000.0);
		else
			json_buf_printf(o, ", \"p50\": null, \"p99\": null}");
	}
	json_buf_printf(o, "}}");
}

int stats_windows_json(struct stats_windows *w, const struct stats_totals *now, char *buf,
                       size_t size)
{
	static const struct stats_totals zero;
	struct json_buf o = { buf, size, 0, 0 };

	if (!size)
		return -ENOSPC;
	pthread_mutex_lock(&w->lock);
	json_buf_printf(&o, "\"windows\": {");
	for (unsigned i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		const struct stats_totals *base = NULL;
		int64_t from;
		if (windows[i].ms)
			base = ring_find(&w->ring[windows[i].ring], now->t_ms - windows[i].ms);
		from = base ? base->t_ms : w->start_ms;
		json_buf_printf(&o, "%s\"%s\": ", i ? ", " : "", windows[i].name);
		window_json(&o, now, base ? base : &zero, (double)(now->t_ms - from) / 1000.0);
	}
	json_buf_printf(&o, "}");
	pthread_mutex_unlock(&w->lock);
	return o.err ? o.err : (int)o.used;
}
