/* web_metrics: the daemons' stats snapshots as Prometheus text exposition (version 0.0.4).
 * Names follow Prometheus conventions: counters end in _total, units are base units (_bytes,
 * _seconds), a key's cache/origin pair is one family with a `source` label, every sample has
 * `dir`. All samples of a family must be contiguous, so every daemon is asked first and the
 * families are written one after the other over all directories. The metric list is
 * docs/WEB.md's table: keep both in step. */
#include "web/web.h"
#include "web/web_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_socket.h"

struct metric_series {
	const char *label;     /* extra label (`source="cache"`), or NULL */
	const char *key;       /* member of the section */
};

struct metric_family {
	const char *name;
	const char *type;
	const char *help;
	const char *const *section;   /* path of the object holding the keys (NULL: top level) */
	struct metric_series series[2];
};

static const char *const counters[] = { "stats", "counters", NULL };
static const char *const ratios[] = { "stats", NULL };

#define COUNTER(name, help, key) { "cachemax_" name "_total", "counter", help, counters, \
	{ { NULL, key }, { NULL, NULL } } }
#define COUNTER_BY_SOURCE(name, help, key) { "cachemax_" name "_total", "counter", help, counters, \
	{ { "source=\"cache\"", key "_cache" }, { "source=\"origin\"", key "_origin" } } }
#define TOP(name, type, help, key) { "cachemax_" name, type, help, NULL, \
	{ { NULL, key }, { NULL, NULL } } }

static const struct metric_family families[] = {
	COUNTER_BY_SOURCE("read_ops", "Reads served, from the cache copy or the origin (daemon and passthrough).", "read_ops"),
	COUNTER_BY_SOURCE("read_bytes", "Bytes read, from the cache copy or the origin (daemon and passthrough).", "read_bytes"),
	COUNTER("write_ops", "Writes (daemon and passthrough).", "write_ops"),
	COUNTER("write_bytes", "Bytes written (daemon and passthrough).", "write_bytes"),
	COUNTER_BY_SOURCE("passthrough_read_ops", "Passthrough reads counted in the kernel (BPF).", "passthrough_read_ops"),
	COUNTER_BY_SOURCE("passthrough_read_bytes", "Bytes of passthrough reads counted in the kernel (BPF).", "passthrough_read_bytes"),
	COUNTER("passthrough_write_ops", "Passthrough writes counted in the kernel (BPF).", "passthrough_write_ops"),
	COUNTER("passthrough_write_bytes", "Bytes of passthrough writes counted in the kernel (BPF).", "passthrough_write_bytes"),
	COUNTER("passthrough_errors", "Passthrough reads and writes that returned an error.", "passthrough_errors"),
	COUNTER_BY_SOURCE("passthrough_opens", "Opens passed through to the cache copy or the original file.", "passthrough_opens"),
	COUNTER("requests", "FUSE requests the daemon read from the kernel.", "requests"),
	COUNTER("opens", "Opens of regular files.", "opens"),
	COUNTER("first_reads", "Read-only first opens passed through to the original.", "first_reads"),
	COUNTER("origin_opens_deferred", "Read-only opens answered without opening the original file.", "origin_opens_deferred"),
	COUNTER("origin_opens_late", "Original files of deferred opens opened later, on first need.", "origin_opens_late"),
	COUNTER("catalog_opens", "Deferred opens checked against the metadata catalog: the original's inode not read.", "catalog_opens"),
	COUNTER("kept_reopens", "First opens that found their cache copy kept since the last close.", "kept_reopens"),
	COUNTER("fills", "Chunks written into the cache.", "fills"),
	COUNTER("fill_bytes", "Bytes written into the cache.", "fill_bytes"),
	COUNTER("fills_dropped", "Fills discarded because a write raced with them.", "fills_dropped"),
	COUNTER("fills_refused_full", "Fills not stored because the cache was at its capacity.", "fills_refused_full"),
	COUNTER("readahead_bytes", "Bytes stored in the cache by read-ahead.", "readahead_bytes"),
	COUNTER("completions", "Files completed in the background.", "completions"),
	COUNTER("completions_deferred", "Completions the full fill queue refused that waited in the fill backlog.", "completions_deferred"),
	COUNTER("completions_skipped", "Completions neither the fill queue nor the backlog took (filled at the file's next miss).", "completions_skipped"),
	COUNTER("evictions", "Cache objects evicted (by evict and for capacity).", "evictions"),
	COUNTER("invalidations", "Cache objects invalidated (origin changed, write, truncate).", "invalidations"),
	COUNTER("deleted_objects", "Cache copies dropped because their file was deleted through the mount.", "deleted_objects"),
	COUNTER("scrub_reclaimed", "Cache copies removed by the background scrub.", "scrub_reclaimed"),
	COUNTER("bypasses", "Requests served from the origin because the cache device failed.", "bypasses"),
	COUNTER("bypass_entries", "Times the whole cache went into bypass.", "bypass_entries"),
	COUNTER("origin_errors", "Errors returned by the origin.", "origin_errors"),
	COUNTER("cache_errors", "Errors of the cache device (never passed to applications).", "cache_errors"),
	COUNTER("excluded_opens", "First opens of files excluded from caching.", "excluded_opens"),
	COUNTER("unsettled_opens", "First opens not cached because the file had just changed (no change watcher).", "unsettled_opens"),
	COUNTER("xattr_absent_answers", "Xattr requests answered without the original (the inode has no xattrs).", "xattr_absent_answers"),
	COUNTER("listings_kept", "Directory opens on an unwatched original answered letting the kernel keep the listing it read within the timeouts.", "listings_kept"),
	COUNTER("changes_behind", "Changes made behind the cache that the change watcher saw.", "changes_behind"),
	COUNTER("kernel_invalidations", "Invalidation notifications the kernel accepted.", "kernel_invalidations"),
	COUNTER("watch_overflows", "Times change events were lost.", "watch_overflows"),
	COUNTER("files_dropped", "Files dropped from the daemon's per-file table.", "files_dropped"),
	TOP("evictions_capacity_total", "counter", "Cache objects evicted for capacity.", "evictions_capacity"),
	TOP("uring_requests_total", "counter", "Requests that arrived through FUSE-over-io_uring.", "uring_requests"),
	TOP("scrub_passes_total", "counter", "Passes of the background scrub.", "scrub_passes"),
	TOP("cache_bytes", "gauge", "Space allocated to cache copies.", "cache_bytes"),
	TOP("cache_size_bytes", "gauge", "Capacity of the cache.", "cache_size"),
	TOP("cache_objects", "gauge", "Cache copies.", "cache_objects"),
	TOP("bypass", "gauge", "1 while the cache is bypassed after repeated failures.", "bypass"),
	TOP("passthrough", "gauge", "1 when kernel passthrough is in use.", "passthrough"),
	TOP("daemon_uptime_seconds", "gauge", "Seconds since the daemon started.", "uptime_seconds"),
	TOP("nodes", "gauge", "Origin inodes the kernel holds.", "nodes"),
	TOP("daemon_open_fds", "gauge", "File descriptors the daemon has open.", "fds"),
	TOP("daemon_resident_memory_bytes", "gauge", "Resident memory of the daemon.", "rss_bytes"),
	{ "cachemax_hit_ratio", "gauge", "Reads from the cache over all reads since the start, by ops or bytes.",
	  ratios, { { "by=\"ops\"", "hit_ratio_ops" }, { "by=\"bytes\"", "hit_ratio_bytes" } } },
};

/* Latency summaries: quantiles 0.5 and 0.99 from the daemon's histograms, in seconds. */
struct latency_family {
	const char *name;
	const char *help;
	struct metric_series series[2];   /* key: member of stats.latency_us */
};

static const struct latency_family latencies[] = {
	{ "cachemax_read_latency_seconds", "Latency of reads the daemon served.",
	  { { "source=\"cache\"", "read_cache" }, { "source=\"origin\"", "read_origin" } } },
	{ "cachemax_write_latency_seconds", "Latency of writes the daemon served.",
	  { { NULL, "write" }, { NULL, NULL } } },
	{ "cachemax_passthrough_read_latency_seconds", "Latency of passthrough reads, measured in the kernel.",
	  { { "source=\"cache\"", "passthrough_read_cache" }, { "source=\"origin\"", "passthrough_read_origin" } } },
	{ "cachemax_passthrough_write_latency_seconds", "Latency of passthrough writes, measured in the kernel.",
	  { { NULL, "passthrough_write" }, { NULL, NULL } } },
};

struct metrics_dir {
	struct web_dir dir;
	char health[128];
	char *reply;           /* the stats JSON, or NULL when the daemon did not answer */
	size_t length;
};

struct metrics_collect {
	const struct web_source *src;
	struct metrics_dir *dirs;
	size_t count, cap;
	int error;
};

static int collect_one(const struct web_dir *d, void *arg)
{
	struct metrics_collect *c = arg;
	struct metrics_dir *m;
	int rc;

	if (c->count == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct metrics_dir *dirs = realloc(c->dirs, cap * sizeof(*dirs));
		if (!dirs) {
			c->error = -ENOMEM;
			return 1;
		}
		c->dirs = dirs;
		c->cap = cap;
	}
	m = &c->dirs[c->count];
	memset(m, 0, sizeof(*m));
	m->dir = *d;
	snprintf(m->health, sizeof(m->health), "%s", d->health ? d->health : "");
	m->dir.health = m->health;
	m->reply = malloc(CONTROL_REPLY_MAX);
	if (!m->reply) {
		c->error = -ENOMEM;
		return 1;
	}
	c->count++;
	rc = c->src->stats(c->src->arg, d, m->reply, CONTROL_REPLY_MAX);
	/* Only a whole JSON object counts: a refusal or a cut reply is "down", not half a metric. */
	if (rc <= 0 || !web_json_valid(m->reply, m->reply + rc) || m->reply[0] != '{' ||
	    !strncmp(m->reply, "{\"error\"", 8)) {
		free(m->reply);
		m->reply = NULL;
	} else {
		m->length = (size_t)rc;
	}
	return 0;
}

/* A label value: backslash, double quote and newline escaped (exposition format). */
static void put_label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void put_labels(FILE *f, const struct metrics_dir *m, const char *extra, const char *quantile)
{
	fputs("{dir=", f);
	put_label_value(f, m->dir.state.dir);
	if (extra)
		fprintf(f, ",%s", extra);
	if (quantile)
		fprintf(f, ",quantile=\"%s\"", quantile);
	fputc('}', f);
}

static bool is_null(const struct web_json *v)
{
	return v->end - v->start == 4 && !memcmp(v->start, "null", 4);
}

/* A number, a boolean or null: what a sample can show. */
static bool is_value(const struct web_json *v)
{
	double d;
	bool b;
	return web_json_number(v, &d) == 0 || web_json_bool(v, &b) == 0 || is_null(v);
}

/* The sample value at v (is_value): a JSON number as written (exact for 64-bit counters), a
 * boolean as 1/0, null as NaN. */
static void put_value(FILE *f, const struct web_json *v)
{
	bool b;
	if (web_json_bool(v, &b) == 0)
		fputs(b ? "1" : "0", f);
	else if (is_null(v))
		fputs("NaN", f);
	else
		fprintf(f, "%.*s", (int)(v->end - v->start), v->start);
}

static void put_header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_family(FILE *f, const struct metric_family *fam, const struct metrics_collect *c)
{
	put_header(f, fam->name, fam->type, fam->help);
	for (size_t i = 0; i < c->count; i++) {
		const struct metrics_dir *m = &c->dirs[i];
		struct web_json root, sect, v;
		if (!m->reply)
			continue;
		root = (struct web_json){ m->reply, m->reply + m->length };
		sect = root;
		if (fam->section && web_json_path(&root, fam->section, &sect) < 0)
			continue;
		for (size_t s = 0; s < 2 && fam->series[s].key; s++) {
			if (web_json_member(&sect, fam->series[s].key, &v) < 0 || !is_value(&v))
				continue;
			fputs(fam->name, f);
			put_labels(f, m, fam->series[s].label, NULL);
			fputc(' ', f);
			put_value(f, &v);
			fputc('\n', f);
		}
	}
}

static double member_number(const struct web_json *obj, const char *key, double otherwise)
{
	struct web_json v;
	double d;
	return web_json_member(obj, key, &v) == 0 && web_json_number(&v, &d) == 0 ? d : otherwise;
}

static void put_seconds(FILE *f, double us)
{
	if (us != us)
		fputs("NaN", f);
	else
		fprintf(f, "%.9g", us / 1e6);
}

static void put_latency(FILE *f, const struct latency_family *fam, const struct metrics_collect *c)
{
	static const char *const path[] = { "stats", "latency_us", NULL };
	put_header(f, fam->name, "summary", fam->help);
	for (size_t i = 0; i < c->count; i++) {
		const struct metrics_dir *m = &c->dirs[i];
		struct web_json root, sect, h;
		if (!m->reply)
			continue;
		root = (struct web_json){ m->reply, m->reply + m->length };
		if (web_json_path(&root, path, &sect) < 0)
			continue;
		for (size_t s = 0; s < 2 && fam->series[s].key; s++) {
			const char *label = fam->series[s].label;
			double count, mean;
			if (web_json_member(&sect, fam->series[s].key, &h) < 0)
				continue;
			count = member_number(&h, "count", 0);
			mean = member_number(&h, "mean", 0);
			fputs(fam->name, f);
			put_labels(f, m, label, "0.5");
			fputc(' ', f);
			put_seconds(f, member_number(&h, "p50", 0.0 / 0.0));
			fprintf(f, "\n%s", fam->name);
			put_labels(f, m, label, "0.99");
			fputc(' ', f);
			put_seconds(f, member_number(&h, "p99", 0.0 / 0.0));
			fprintf(f, "\n%s_sum", fam->name);
			put_labels(f, m, label, NULL);
			fputc(' ', f);
			put_seconds(f, mean * count);
			fprintf(f, "\n%s_count", fam->name);
			put_labels(f, m, label, NULL);
			fprintf(f, " %.0f\n", count);
		}
	}
}

int web_metrics_render(const struct web_source *src, char **out, size_t *len)
{
	struct metrics_collect c = { .src = src };
	char why[256], *buf = NULL;
	size_t size = 0;
	FILE *f;
	int rc;

	rc = src->each_dir(src->arg, collect_one, &c, why, sizeof(why));
	if (c.error)
		rc = c.error;
	f = rc < 0 ? NULL : open_memstream(&buf, &size);
	if (!f) {
		rc = rc < 0 ? rc : -ENOMEM;
		goto free_dirs;
	}
	put_header(f, "cachemax_up", "gauge", "1 when the directory's daemon answered for these metrics.");
	for (size_t i = 0; i < c.count; i++) {
		fputs("cachemax_up", f);
		put_labels(f, &c.dirs[i], NULL, NULL);
		fprintf(f, " %d\n", c.dirs[i].reply ? 1 : 0);
	}
	put_header(f, "cachemax_healthy", "gauge", "1 while the directory is served with its cache (status health ok).");
	for (size_t i = 0; i < c.count; i++) {
		fputs("cachemax_healthy", f);
		put_labels(f, &c.dirs[i], NULL, NULL);
		fprintf(f, " %d\n", !strcmp(c.dirs[i].health, "ok"));
	}
	put_header(f, "cachemax_directory_info", "gauge", "An accelerated directory: its cache directory, health and transport.");
	for (size_t i = 0; i < c.count; i++) {
		const struct metrics_dir *m = &c.dirs[i];
		fputs("cachemax_directory_info{dir=", f);
		put_label_value(f, m->dir.state.dir);
		fputs(",cache=", f);
		put_label_value(f, m->dir.state.cache);
		fputs(",health=", f);
		put_label_value(f, m->health);
		fputs(",transport=", f);
		put_label_value(f, m->dir.state.transport);
		fputs("} 1\n", f);
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		put_family(f, &families[i], &c);
	for (size_t i = 0; i < sizeof(latencies) / sizeof(latencies[0]); i++)
		put_latency(f, &latencies[i], &c);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		rc = -ENOMEM;
		goto free_dirs;
	}
	*out = buf;
	*len = size;
	rc = 0;
free_dirs:
	for (size_t i = 0; i < c.count; i++)
		free(c.dirs[i].reply);
	free(c.dirs);
	return rc;
}
