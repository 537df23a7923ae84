/* bench_report: what the user sees — the progress line on a terminal, the table, and the JSON
 * object (keys in docs/BENCH.md; a change there is a change here). */
#include "bench/bench_int.h"

#include <math.h>
#include <string.h>

#include "util/size.h"
#include "util/json.h"

#define PROGRESS_INTERVAL 0.2  /* seconds between redraws */

void bench_progress_draw(struct bench_progress *p, bool force)
{
	double now = bench_now(), left_all;

	if (!p || !p->enabled || (!force && now - p->last_draw < PROGRESS_INTERVAL))
		return;
	p->last_draw = now;
	left_all = p->tests_left * p->runtime;
	if (p->test_end > 0) {
		double left = p->test_end - now;
		left_all += left > 0 ? left : 0;
		fprintf(stderr, "\r\033[Kbench: %s: %s, %.1f s left (about %.0f s of tests in all)", p->target,
		        p->step, left > 0 ? left : 0, ceil(left_all));
	} else {
		fprintf(stderr, "\r\033[Kbench: %s%s%s (about %.0f s of tests left)", p->target, *p->step ? ": " : "",
		        p->step, ceil(left_all));
	}
	fflush(stderr);
}

void bench_progress_clear(struct bench_progress *p)
{
	if (!p->enabled)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static double hit_ratio(uint64_t hit, uint64_t miss)
{
	return hit + miss ? (double)hit / (double)(hit + miss) : 0;
}

void bench_print_table(FILE *f, const struct bench_options *o, const struct bench_result *r)
{
	const struct bench_stats *s = &r->stats;
	char sz[32], b1[32], b2[32], b3[32];

	fprintf(f, "cachemax bench %s (cache %s): %s file, %g s per test, %s\n", o->dir, o->cache,
	        size_format(r->file_bytes, sz, sizeof(sz)), o->runtime, o->direct ? "O_DIRECT" : "buffered");
	fprintf(f, "%s\n\n", r->was_accelerated ? "already accelerated: the original was reached through the daemon's fd"
	                                         : "not accelerated before: accelerated for the run, then stopped");
	fprintf(f, "%-18s", "");
	for (int t = 0; t < BENCH_TARGET_COUNT; t++)
		fprintf(f, "  %-18s", bench_target_names[t]);
	fprintf(f, "  %8s  %6s\n", "warm /", "warm /");
	fprintf(f, "%-18s", "test");
	for (int t = 0; t < BENCH_TARGET_COUNT; t++)
		fprintf(f, "  %9s %8s", "MB/s", "IOPS");
	fprintf(f, "  %8s  %6s\n", "origin", "cache");
	for (int i = 0; i < BENCH_TEST_COUNT; i++) {
		const struct bench_measure *m = r->m[i];
		if (bench_tests[i].depth > 1 && !r->queue_depth_32)
			continue;
		fprintf(f, "%-18s", bench_tests[i].name);
		for (int t = 0; t < BENCH_TARGET_COUNT; t++) {
			if (m[t].done)
				fprintf(f, "  %9.1f %8.0f", bench_measure_mb_per_s(&m[t]), bench_measure_iops(&m[t]));
			else
				fprintf(f, "  %9s %8s", "-", "-");
		}
		if (m[BENCH_WARM].done && m[BENCH_ORIGIN].done && m[BENCH_CACHE_DEVICE].done)
			fprintf(f, "  %7.2fx  %5.0f%%\n",
			        ratio(bench_measure_mb_per_s(&m[BENCH_WARM]), bench_measure_mb_per_s(&m[BENCH_ORIGIN])),
			        100 * ratio(bench_measure_mb_per_s(&m[BENCH_WARM]),
			                    bench_measure_mb_per_s(&m[BENCH_CACHE_DEVICE])));
		else
			fprintf(f, "  %8s  %6s\n", "-", "-");
	}
	fprintf(f, "\n");
	if (s->valid) {
		/* No read through the daemon is no hit ratio, not 0 %: passthrough reads are the kernel's. */
		if (s->read_ops_cache + s->read_ops_origin == 0)
			fprintf(f, "cachemax stats during the accelerated runs: no read went through the daemon "
			        "(passthrough reads are served in the kernel: see the opens below)\n");
		else
			fprintf(f, "cachemax stats during the accelerated runs: hit ratio %.1f%% of user-space reads, "
			        "%.1f%% of their bytes\n", 100 * hit_ratio(s->read_ops_cache, s->read_ops_origin),
			        100 * hit_ratio(s->read_bytes_cache, s->read_bytes_origin));
		fprintf(f, "  reads from cache %llu (%s), from origin %llu (%s); fills %llu (%s)\n",
		        (unsigned long long)s->read_ops_cache, size_format(s->read_bytes_cache, b1, sizeof(b1)),
		        (unsigned long long)s->read_ops_origin, size_format(s->read_bytes_origin, b2, sizeof(b2)),
		        (unsigned long long)s->fills, size_format(s->fill_bytes, b3, sizeof(b3)));
		fprintf(f, "  passthrough opens to the cache copy %llu, to the original %llu (their reads bypass the daemon)\n",
		        (unsigned long long)s->passthrough_opens_cache, (unsigned long long)s->passthrough_opens_origin);
	}
	if (!r->page_cache_dropped || r->note_count)
		fprintf(f, "notes:\n");
	for (unsigned i = 0; i < r->note_count; i++)
		fprintf(f, "  - %s\n", r->notes[i]);
}

static void json_measure(FILE *f, const struct bench_measure *m)
{
	if (!m->done) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\"mb_per_s\": %.3f, \"iops\": %.1f, \"ops\": %llu, \"bytes\": %llu, \"seconds\": %.4f}",
	        bench_measure_mb_per_s(m), bench_measure_iops(m), (unsigned long long)m->ops,
	        (unsigned long long)m->bytes, m->seconds);
}

void bench_print_json(FILE *f, const struct bench_options *o, const struct bench_result *r)
{
	const struct bench_stats *s = &r->stats;
	bool first = true;

	fprintf(f, "{\"version\": 1, \"dir\": ");
	json_write_string(f, o->dir);
	fprintf(f, ", \"cache\": ");
	json_write_string(f, o->cache);
	fprintf(f, ", \"file_bytes\": %llu, \"runtime_seconds\": %g, \"direct\": %s, \"was_accelerated\": %s, "
	        "\"origin_path\": ",
	        (unsigned long long)r->file_bytes, o->runtime, o->direct ? "true" : "false",
	        r->was_accelerated ? "true" : "false");
	json_write_string(f, r->origin_path);
	fprintf(f, ", \"page_cache_dropped\": %s, \"warm_complete\": %s, \"queue_depth_32\": %s, \"tests\": [",
	        r->page_cache_dropped ? "true" : "false", r->warm_complete ? "true" : "false",
	        r->queue_depth_32 ? "true" : "false");
	for (int i = 0; i < BENCH_TEST_COUNT; i++) {
		const struct bench_test *t = &bench_tests[i];
		const struct bench_measure *m = r->m[i];
		if (t->depth > 1 && !r->queue_depth_32)
			continue;
		fprintf(f, "%s\n  {\"key\": \"%s\", \"name\": \"%s\", \"block_bytes\": %u, \"queue_depth\": %u, "
		        "\"write\": %s",
		        first ? "" : ",", t->key, t->name, t->block, t->depth, t->write ? "true" : "false");
		first = false;
		for (int k = 0; k < BENCH_TARGET_COUNT; k++) {
			fprintf(f, ", \"%s\": ", bench_target_keys[k]);
			json_measure(f, &m[k]);
		}
		if (m[BENCH_WARM].done && m[BENCH_ORIGIN].done && m[BENCH_CACHE_DEVICE].done)
			fprintf(f, ", \"warm_over_origin\": %.4f, \"warm_of_cache_device\": %.4f}",
			        ratio(bench_measure_mb_per_s(&m[BENCH_WARM]), bench_measure_mb_per_s(&m[BENCH_ORIGIN])),
			        ratio(bench_measure_mb_per_s(&m[BENCH_WARM]), bench_measure_mb_per_s(&m[BENCH_CACHE_DEVICE])));
		else
			fprintf(f, ", \"warm_over_origin\": null, \"warm_of_cache_device\": null}");
	}
	fprintf(f, "\n], \"stats\": ");
	if (s->valid)
		fprintf(f, "{\"read_ops_cache\": %llu, \"read_bytes_cache\": %llu, \"read_ops_origin\": %llu, "
		        "\"read_bytes_origin\": %llu, \"passthrough_opens_cache\": %llu, \"passthrough_bytes_cache\": %llu, "
		        "\"passthrough_opens_origin\": %llu, \"passthrough_bytes_origin\": %llu, \"fills\": %llu, "
		        "\"fill_bytes\": %llu, \"hit_ratio_ops\": %.4f, \"hit_ratio_bytes\": %.4f}",
		        (unsigned long long)s->read_ops_cache, (unsigned long long)s->read_bytes_cache,
		        (unsigned long long)s->read_ops_origin, (unsigned long long)s->read_bytes_origin,
		        (unsigned long long)s->passthrough_opens_cache, (unsigned long long)s->passthrough_bytes_cache,
		        (unsigned long long)s->passthrough_opens_origin, (unsigned long long)s->passthrough_bytes_origin,
		        (unsigned long long)s->fills, (unsigned long long)s->fill_bytes,
		        hit_ratio(s->read_ops_cache, s->read_ops_origin), hit_ratio(s->read_bytes_cache, s->read_bytes_origin));
	else
		fprintf(f, "null");
	fprintf(f, ", \"notes\": [");
	for (unsigned i = 0; i < r->note_count; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_write_string(f, r->notes[i]);
	}
	fprintf(f, "]}\n");
}
