/* cachemax: the command line. Parses arguments, checks them with messages that say what is
 * wrong and what to do, and drives the daemon (start), the mount (stop) and the state records
 * (status). Exit codes: 0 success, 1 failure, 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_dax.h"
#include "cli/cli.h"
#include "config/config_options.h"
#include "control/control.h"
#include "control/control_socket.h"
#include "control/control_trust.h"
#include "control/control_uring.h"
#include "daemon/daemon.h"
#include "util/size.h"
#include "util/json.h"


#ifndef CACHEMAX_VERSION
#define CACHEMAX_VERSION "unknown (built without the Makefile)"
#endif

static int cmd_status(int argc, char **argv);
static int cmd_stats(int argc, char **argv);
static int cmd_evict(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* Every command: how it runs (with the arguments after the command word; argv[0] is the
 * program) and its help, from which both `cachemax help` (all of them) and `cachemax help
 * COMMAND` (one) are printed: the usage line after "cachemax ", what it does, its options. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *summary;
	const char *options;   /* NULL: none besides those in the usage line */
};

/* The options of start and enable: their own, then the option table's (main fills them in). */
static char start_options[8192], enable_options[8192];

static const struct command commands[] = {
	{ "start", cmd_start, "start DIR --cache CACHEDIR [options] | start --all [--config FILE]",
	  "accelerate DIR (same path, no new mount point to use); --all: every directory the config\n"
	  "file enables (cachemax enable), each reported, non-zero exit if any failed\n",
	  start_options },
	{ "stop", cmd_stop, "stop DIR [--lazy] | stop --all [--lazy] [--config FILE]",
	  "give DIR back exactly as it was; refuses while files under it are open unless --lazy;\n"
	  "also clears a dead mount left by a crash; --all: every enabled directory\n",
	  "--lazy                  detach now, finish when the files are closed\n"
	  "--all                   every directory the config file enables\n"
	  "--config FILE           the config file for --all (as for start)\n" },
	{ "enable", cmd_enable, "enable DIR --cache CACHEDIR [options] [--config FILE]",
	  "check DIR and the start options as start does, without starting, and record them in\n"
	  "the config file (replacing DIR's section): 'start --all' and cachemax.service start it\n",
	  enable_options },
	{ "disable", cmd_disable, "disable DIR [--config FILE]",
	  "remove DIR's section from the config file (a running DIR keeps running: stop it)\n",
	  "--config FILE           the config file (as for enable)\n" },
	{ "systemd-generator", cmd_systemd_generator, "systemd-generator NORMAL_DIR [EARLY_DIR LATE_DIR]",
	  "what systemd runs as cachemax-generator at boot and daemon-reload: a drop-in that makes\n"
	  "cachemax.service require the mounts of every enabled directory and cache\n", NULL },
	{ "status", cmd_status, "status [--json]",
	  "every accelerated directory: owner, cache, health (ok only while the cache serves),\n"
	  "daemon, transport, passthrough, options, log, uptime; for everyone\n",
	  "--json                  one JSON document\n" },
	{ "stats", cmd_stats, "stats DIR [--json] [--watch SEC [--count N]]",
	  "reads from cache and origin (passthrough reads counted in the kernel by BPF where it\n"
	  "allows), hit ratio, writes, latency, windows (1s 1m 5m 1h total), top files; root's,\n"
	  "everyone's if the daemon was started with --public-stats\n",
	  "--json                  one JSON document\n"
	  "--watch SEC             redraw every SEC seconds, with rates\n"
	  "--count N               stop after N screens\n" },
	{ "evict", cmd_evict, "evict DIR [PATH...]",
	  "drop cache copies: all of DIR's, or those of the files given, a directory's being every\n"
	  "file below it (a PATH that is not absolute is relative to DIR, like --pin globs)\n",
	  NULL },
	{ "warm", cmd_warm, "warm DIR [PATH|GLOB...] [--verify] [--jobs N] [--json]",
	  "complete the cache copies of DIR's files (or of the files, directories and globs given,\n"
	  "relative to DIR, globs as for --pin) through the daemon's background fills, behind\n"
	  "applications' reads; progress on a terminal; resumable (complete copies are skipped,\n"
	  "partial ones kept); refuses a set larger than the cache keeps (root only)\n",
	  "--verify                check each copy against the original (XXH3) once complete\n"
	  "--jobs N                files in flight at once (1-64, default 2)\n"
	  "--json                  one JSON document\n" },
	{ "verify", cmd_verify, "verify DIR [PATH...] [--json]",
	  "hash every complete cache copy (of DIR, or of the files and directories given) and its\n"
	  "original with XXH3; names each mismatch and drops that copy (the next read goes to the\n"
	  "original); exits 1 if any (root only)\n",
	  "--json                  one JSON document\n" },
	{ "bench", cmd_bench, "bench DIR --cache CACHEDIR [--size SIZE] [--runtime SEC] [--buffered] [--json]",
	  "SEQ1M and RND4K read/write on the original, the cache device and DIR accelerated (cold,\n"
	  "warm); cleans up after itself and leaves DIR accelerated or not, as it was (docs/BENCH.md)\n",
	  "--cache CACHEDIR        cache directory on the fast device (absolute), as for start\n"
	  "--size SIZE             size of the scratch file (default 256M)\n"
	  "--runtime SEC           seconds per test (default 5)\n"
	  "--buffered              through the page cache instead of O_DIRECT\n"
	  "--json                  one JSON document\n" },
	{ "web", cmd_web, "web [--listen ADDR:PORT]",
	  "Prometheus /metrics and a live dashboard for every accelerated directory (root only);\n"
	  "prints the dashboard's address with a new token first; /metrics needs no token from\n"
	  "loopback; runs until Ctrl-C (docs/WEB.md)\n",
	  "--listen ADDR:PORT      where to listen (default 127.0.0.1:9477)\n" },
	{ "version", cmd_version, "version",
	  "the version of cachemax (also: cachemax --version)\n", NULL },
	{ "help", cmd_help, "help [COMMAND]",
	  "every command's help, or one command's (also: cachemax COMMAND --help)\n", NULL },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Each line of text, after indent spaces. */
static void print_indented(FILE *f, const char *text, int indent)
{
	while (text && *text) {
		size_t n = strcspn(text, "\n");
		fprintf(f, "%*s%.*s\n", indent, "", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

/* own's lines, then the option table's, into buf. */
static void options_help_fill(char *buf, size_t size, const char *own)
{
	FILE *f = fmemopen(buf, size, "w");
	if (!f)
		return;
	fputs(own, f);
	config_options_print_help(f, 0);
	fclose(f);
}

static void help_print_all(FILE *f)
{
	fputs("usage: cachemax <command> [options]\n"
	      "\n"
	      "Accelerates a directory in place with a cache on a fast device.\n"
	      "\n"
	      "commands:\n", f);
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		fprintf(f, "  %s\n", commands[i].usage);
		print_indented(f, commands[i].summary, 6);
		print_indented(f, commands[i].options, 6);
	}
	fputs("\n'cachemax COMMAND --help' or 'cachemax help COMMAND': one command's help\n", f);
}

static void help_print_one(const struct command *h)
{
	printf("usage: cachemax %s\n\n", h->usage);
	print_indented(stdout, h->summary, 2);
	if (h->options) {
		printf("\noptions:\n");
		print_indented(stdout, h->options, 2);
	}
}


struct status_ctx {
	bool json;
	unsigned count;
};

/* Whose directory it is: the owner of the original directory, as the daemon recorded it
 * (status never touches the mount: a hung daemon must not hang it). */
static const char *status_owner(long uid, char *buf, size_t size)
{
	struct passwd *pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;

	if (uid < 0)
		return "unknown";
	if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "uid %ld", uid);
	return buf;
}

static int status_one(const struct control_state *st, void *arg)
{
	struct status_ctx *ctx = arg;
	int64_t up = time(NULL) - st->started;
	const char *health = control_state_health(st);
	char owner_buf[256];
	const char *owner = status_owner(st->owner_uid, owner_buf, sizeof(owner_buf));
	struct cache_dax dax = { .why = "unknown: the cache directory cannot be looked at" };

	cache_dax_probe(st->cache, &dax);

	if (ctx->json) {
		printf("%s\n    {\"dir\": ", ctx->count ? "," : "");
		json_write_string(stdout, st->dir);
		printf(", \"owner\": ");
		json_write_string(stdout, owner);
		printf(", \"owner_uid\": %ld, \"options\": ", st->owner_uid);
		json_write_string(stdout, st->options);
		printf(", \"cache\": ");
		json_write_string(stdout, st->cache);
		printf(", \"cache_on\": %s, \"cache_size\": %llu, \"bypass\": %s, \"cache_reason\": ",
		       st->cache_on ? "true" : "false", (unsigned long long)st->cache_size,
		       st->bypass ? "true" : "false");
		json_write_string(stdout, st->cache_on && !st->bypass ? "" : st->cache_why);
		printf(", \"cache_dax\": %s, \"cache_dax_reason\": ", dax.dax ? "true" : "false");
		json_write_string(stdout, dax.why);
		printf(", \"daemon_pid\": %d, \"watchdog_pid\": %d, \"threads\": %u, \"uptime_seconds\": %lld, "
		       "\"restarts\": %u, \"passthrough\": %s, \"passthrough_reason\": ",
		       (int)st->daemon_pid, (int)st->watchdog_pid, st->threads, (long long)up, st->restarts,
		       st->passthrough ? "true" : "false");
		json_write_string(stdout, st->passthrough ? "" : st->passthrough_why);
		printf(", \"transport\": ");
		json_write_string(stdout, st->transport);
		printf(", \"transport_reason\": ");
		json_write_string(stdout, st->transport_why);
		printf(", \"inodes_reached_by\": \"%s\", \"inodes_reason\": ",
		       st->file_handles ? "file_handle" : "name");
		json_write_string(stdout, st->file_handles ? "" : st->file_handles_why);
		printf(", \"change_watch\": \"%s\", \"change_watch_reason\": ",
		       st->change_watch ? "fanotify" : "timeout");
		json_write_string(stdout, st->change_watch ? "" : st->change_watch_why);
		printf(", \"meta_catalog\": ");
		json_write_string(stdout, st->meta_catalog);
		printf(", \"health\": ");
		json_write_string(stdout, health);
		printf(", \"log\": ");
		json_write_string(stdout, st->log);
		printf("}");
	} else {
		printf("%s%s\n", ctx->count ? "\n" : "", st->dir);
		printf("  owner:        %s\n", owner);
		char size_text[32];
		size_format(st->cache_size, size_text, sizeof(size_text));
		if (st->cache_on && st->bypass)
			printf("  cache:        %s (BYPASSED: %s; served from the origin)\n", st->cache, st->cache_why);
		else if (st->cache_on)
			printf("  cache:        %s (size %s)\n", st->cache, size_text);
		else
			printf("  cache:        %s (off: %s)\n", st->cache, st->cache_why);
		printf("  cache dax:    %s (%s)\n", dax.dax ? "yes" : "no", dax.why);
		printf("  health:       %s\n", health);
		printf("  daemon:       pid %d (watchdog %d), %u threads, up %lldh%02lldm%02llds, restarts %u\n",
		       (int)st->daemon_pid, (int)st->watchdog_pid, st->threads, (long long)(up / 3600),
		       (long long)(up / 60 % 60), (long long)(up % 60), st->restarts);
		if (st->transport_why[0])
			printf("  transport:    %s (%s)\n", st->transport, st->transport_why);
		else
			printf("  transport:    %s\n", st->transport);
		if (st->passthrough)
			printf("  passthrough:  on\n");
		else
			printf("  passthrough:  off (%s)\n", st->passthrough_why);
		if (st->file_handles)
			printf("  inodes:       reached by file handle\n");
		else
			printf("  inodes:       reached by parent and name (%s)\n", st->file_handles_why);
		if (st->change_watch)
			printf("  changes:      seen at once (fanotify)\n");
		else
			printf("  changes:      seen at the attribute timeout (%s)\n", st->change_watch_why);
		if (!strncmp(st->meta_catalog, "off", 3))
			printf("  metadata:     no catalog, %s\n", st->meta_catalog);
		else if (st->meta_catalog[0])
			printf("  metadata:     catalog, seal %s (at the start)\n", st->meta_catalog);
		if (st->options[0])
			printf("  options:      %s\n", st->options);
		printf("  log:          %s\n", st->log);
	}
	ctx->count++;
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct status_ctx ctx = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (c != 'j')
			return cli_option_error("status", c, argv);
		ctx.json = true;
	}
	if (optind != argc)
		return cli_usage_error("%s", "'status' takes no arguments besides --json");
	if (cli_refuse_untrusted_run_dir())
		return 1;
	if (ctx.json)
		printf("{\"directories\": [");
	control_state_each(status_one, &ctx);
	if (ctx.json)
		printf("%s]}\n", ctx.count ? "\n" : "");
	else if (!ctx.count)
		printf("no directory is accelerated\n");
	return 0;
}

#define STATS_TIMEOUT_MS 2000

/* A number from our own stats JSON: the first "key": after the optional section "sect": {. */
static double json_number(const char *json, const char *sect, const char *key)
{
	char pat[96];
	const char *p = json;
	if (sect) {
		snprintf(pat, sizeof(pat), "\"%s\": {", sect);
		p = strstr(p, pat);
		if (!p)
			return 0;
	}
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(p, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

/* Where the nested sections path[0], path[1], ... (each `"name": {`) begin; NULL if absent. */
static const char *json_section(const char *json, const char *const *path, size_t depth)
{
	char pat[96];
	const char *p = json;
	for (size_t i = 0; i < depth && p; i++) {
		snprintf(pat, sizeof(pat), "\"%s\": {", path[i]);
		p = strstr(p, pat);
		if (p)
			p += strlen(pat);
	}
	return p;
}

/* A latency in microseconds, or "—" when it has no samples (a JSON null), never 0.0. */
static const char *latency_text(const char *sect, const char *key, char *buf, size_t size)
{
	char pat[32];
	const char *v;
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	v = sect ? strstr(sect, pat) : NULL;
	if (!v || !strncmp(v + strlen(pat), "null", 4))
		return "\u2014";
	snprintf(buf, size, "%.1f", strtod(v + strlen(pat), NULL));
	return buf;
}

static void human_bytes(double b, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

/* A string value from our own JSON at p (after `"key": "`), copied into buf. */
static const char *json_string_at(const char *p, const char *key, char *buf, size_t size)
{
	char pat[64];
	size_t n = 0;
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = p ? strstr(p, pat) : NULL;
	buf[0] = '\0';
	if (!p)
		return buf;
	for (p += strlen(pat); *p && *p != '"' && n + 1 < size; p++) {
		if (*p == '\\' && p[1])
			p++;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return buf;
}

#define STATS_PRINT_FILES 5

/* One screen of stats; with prev (the previous snapshot) and interval, rates as well. */
static void stats_print(const char *dir, const char *j, const char *prev, double interval)
{
#define C(k) json_number(j, "counters", k)
#define D(k) (prev ? (C(k) - json_number(prev, "counters", k)) / interval : 0)
	static const char *const windows[] = { "1s", "1m", "5m", "1h", "total" };
	char b1[32], b2[32], b3[32], b4[32], l1[16], l2[16], l3[16], l4[16], why[512];
	double up = json_number(j, NULL, "uptime_seconds");
	bool counted = strstr(j, "\"passthrough_counting\": \"bpf\"") != NULL;
	const char *sect;

	printf("%s  (daemon pid %.0f, up %.0fs, transport %s, passthrough %s)\n", dir,
	       json_number(j, NULL, "pid"), up,
	       strstr(j, "\"transport\": \"io_uring\"") ? "io_uring" : "dev_fuse",
	       strstr(j, "\"passthrough\": true") ? "on" : "off");
	json_string_at(j, "passthrough_counting_why", why, sizeof(why));
	if (counted)
		printf("  counting      passthrough reads and writes counted in the kernel (BPF, %s)%s%s\n",
		       strstr(j, "\"passthrough_counting_hooks\": \"fexit\"") ? "fexit" : "syscalls",
		       why[0] ? ": " : "", why);
	else
		printf("  counting      passthrough reads are NOT counted, only opens: %s\n", why);
	printf("  opens         %.0f; passthrough to origin %.0f (first reads %.0f), to cache %.0f\n",
	       C("opens"), C("passthrough_opens_origin"), C("first_reads"), C("passthrough_opens_cache"));
	human_bytes(C("read_bytes_cache"), b1, sizeof(b1));
	human_bytes(C("read_bytes_origin"), b2, sizeof(b2));
	printf("  reads         from cache %.0f (%s), from origin %.0f (%s); hit ratio %.1f%% ops, %.1f%% bytes%s\n",
	       C("read_ops_cache"), b1, C("read_ops_origin"), b2,
	       100 * json_number(j, NULL, "hit_ratio_ops"), 100 * json_number(j, NULL, "hit_ratio_bytes"),
	       counted ? "" : " (daemon-served reads only)");
	human_bytes(C("passthrough_read_bytes_cache"), b1, sizeof(b1));
	human_bytes(C("passthrough_read_bytes_origin"), b2, sizeof(b2));
	human_bytes(C("passthrough_write_bytes"), b3, sizeof(b3));
	if (counted)
		printf("  passthrough   of those: from cache %.0f (%s), from origin %.0f (%s); writes %.0f (%s)\n",
		       C("passthrough_read_ops_cache"), b1, C("passthrough_read_ops_origin"), b2,
		       C("passthrough_write_ops"), b3);
	human_bytes(C("write_bytes"), b1, sizeof(b1));
	printf("  writes        %.0f (%s)\n", C("write_ops"), b1);
	human_bytes(C("fill_bytes"), b1, sizeof(b1));
	human_bytes(json_number(j, NULL, "cache_bytes"), b2, sizeof(b2));
	human_bytes(json_number(j, NULL, "cache_size"), b3, sizeof(b3));
	human_bytes(C("readahead_bytes"), b4, sizeof(b4));
	printf("  cache         %s of %s, %.0f objects, fills %.0f (%s, read-ahead %s), dropped %.0f, "
	       "refused (full) %.0f, completed files %.0f (%.0f waited in the backlog, %.0f skipped)\n",
	       strstr(j, "\"cache\": true") ? b2 : "off", b3, json_number(j, NULL, "cache_objects"),
	       C("fills"), b1, b4, C("fills_dropped"), C("fills_refused_full"), C("completions"),
	       C("completions_deferred"), C("completions_skipped"));
	printf("  evictions     %.0f (%.0f for capacity), invalidations %.0f, excluded opens %.0f\n",
	       C("evictions"), json_number(j, NULL, "evictions_capacity"), C("invalidations"),
	       C("excluded_opens"));
	if (strstr(j, "\"bypass\": true"))
		printf("  BYPASS        the cache device failed repeatedly: everything is served from the origin\n");
	printf("  errors        origin %.0f, cache %.0f, bypasses %.0f, bypass periods %.0f\n",
	       C("origin_errors"), C("cache_errors"), C("bypasses"), C("bypass_entries"));
	human_bytes(json_number(j, NULL, "rss_bytes"), b1, sizeof(b1));
	human_bytes(json_number(j, NULL, "node_bytes"), b2, sizeof(b2));
	printf("  daemon        nodes %.0f (%.0f open, %s), fds %.0f (origin: %.0f cached, %.0f pinned), "
	       "memory %s; inodes reached by %s\n",
	       json_number(j, NULL, "nodes"), json_number(j, NULL, "nodes_open"), b2,
	       json_number(j, NULL, "fds"), json_number(j, NULL, "fds_cached"),
	       json_number(j, NULL, "fds_pinned"), b1,
	       strstr(j, "\"file_handles\": true") ? "file handle" : "an fd per inode");
	{
		const char *const rc[] = { "latency_us", "read_cache" }, *const ro[] = { "latency_us", "read_origin" };
		const char *const wr[] = { "latency_us", "write" };
		const char *const prc[] = { "latency_us", "passthrough_read_cache" };
		const char *const pro[] = { "latency_us", "passthrough_read_origin" };
		const char *a = json_section(j, rc, 2), *o = json_section(j, ro, 2), *w = json_section(j, wr, 2);
		printf("  latency (us)  read cache p50 %s p99 %s | read origin p50 %s p99 %s | write p50 %s p99 %s\n",
		       latency_text(a, "p50", l1, sizeof(l1)), latency_text(a, "p99", l2, sizeof(l2)),
		       latency_text(o, "p50", l3, sizeof(l3)), latency_text(o, "p99", l4, sizeof(l4)),
		       latency_text(w, "p50", b1, sizeof(b1)), latency_text(w, "p99", b2, sizeof(b2)));
		a = json_section(j, prc, 2);
		o = json_section(j, pro, 2);
		printf("  passthrough   read cache p50 %s p99 %s | read origin p50 %s p99 %s (us, in the kernel)\n",
		       latency_text(a, "p50", l1, sizeof(l1)), latency_text(a, "p99", l2, sizeof(l2)),
		       latency_text(o, "p50", l3, sizeof(l3)), latency_text(o, "p99", l4, sizeof(l4)));
	}
	printf("  window        hit ratio ops/bytes   MB/s cache/origin   read latency p50/p99 (us) cache | origin\n");
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		const char *const wp[] = { "windows", windows[i] };
		const char *const wc[] = { "windows", windows[i], "read_cache" };
		const char *const wo[] = { "windows", windows[i], "read_origin" };
		const char *ws = json_section(j, wp, 2), *c = json_section(j, wc, 3), *o = json_section(j, wo, 3);
		if (!ws)
			continue;
		printf("  %-13s %5.1f%% / %5.1f%%      %8.1f / %-8.1f   %s / %s | %s / %s\n", windows[i],
		       100 * json_number(ws, NULL, "hit_ratio_ops"), 100 * json_number(ws, NULL, "hit_ratio_bytes"),
		       json_number(ws, NULL, "mb_per_s_cache"), json_number(ws, NULL, "mb_per_s_origin"),
		       latency_text(c, "p50", l1, sizeof(l1)), latency_text(c, "p99", l2, sizeof(l2)),
		       latency_text(o, "p50", l3, sizeof(l3)), latency_text(o, "p99", l4, sizeof(l4)));
	}
	sect = strstr(j, "\"files\": [");
	for (int i = 0; sect && i < STATS_PRINT_FILES; i++) {
		char path[256], state[16];
		sect = strstr(sect, "{\"path\": ");
		if (!sect)
			break;
		json_string_at(sect, "path", path, sizeof(path));
		json_string_at(sect, "state", state, sizeof(state));
		human_bytes(json_number(sect, NULL, "bytes_served"), b1, sizeof(b1));
		human_bytes(json_number(sect, NULL, "bytes_cached"), b2, sizeof(b2));
		human_bytes(json_number(sect, NULL, "size"), b3, sizeof(b3));
		printf("  %-13s %s served (%.0f%% from cache): %s, cached %s of %s (%s)\n",
		       i ? "" : "top files", b1,
		       json_number(sect, NULL, "bytes_served") > 0 ?
		       100 * json_number(sect, NULL, "read_bytes_cache") / json_number(sect, NULL, "bytes_served") : 0.0,
		       path[0] ? path : "(path unknown: no longer held by the kernel)", b2, b3, state);
		sect++;
	}
	if (prev) {
		human_bytes(D("read_bytes_cache") + D("read_bytes_origin"), b1, sizeof(b1));
		human_bytes(D("write_bytes"), b2, sizeof(b2));
		printf("  rates         %.0f reads/s (%s/s), %.0f writes/s (%s/s), %.0f requests/s, %.0f opens/s\n",
		       D("read_ops_cache") + D("read_ops_origin"), b1, D("write_ops"), b2, D("requests"),
		       D("opens"));
	}
#undef C
#undef D
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static char reply[CONTROL_REPLY_MAX], prev[CONTROL_REPLY_MAX];
	char dir[CONTROL_PATH_MAX];
	struct control_state state;
	bool json = false, tty = isatty(STDOUT_FILENO);
	double watch = 0;
	long count = -1;
	int c, rc;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'j': json = true; break;
		case 'w':
			watch = strtod(optarg, &end);
			if (*end || watch < 0.1 || watch > 3600)
				return cli_usage_error("--watch takes seconds (0.1 to 3600), not '%s'", optarg);
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1)
				return cli_usage_error("--count takes a positive number, not '%s'", optarg);
			break;
		default: return cli_option_error("stats", c, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("%s", "'stats' takes exactly one directory: cachemax stats DIR [--json] [--watch SEC]");
	if (cli_refuse_untrusted_run_dir())
		return 1;
	if (control_resolve_path(argv[optind], dir, sizeof(dir)) < 0) {
		fprintf(stderr, "cachemax: cannot resolve '%s'\n", argv[optind]);
		return 1;
	}
	if (control_state_find(dir, &state) < 0 || !control_is_accelerated(dir)) {
		fprintf(stderr, "cachemax: '%s' is not accelerated (see 'cachemax status')\n", dir);
		return 1;
	}
	if (!state.socket[0]) {
		fprintf(stderr, "cachemax: the daemon of '%s' has no control socket; see %s\n", dir, state.log);
		return 1;
	}
	prev[0] = '\0';
	for (long round = 0;; round++) {
		rc = control_request(state.socket, "stats", reply, sizeof(reply), STATS_TIMEOUT_MS);
		if (rc < 0) {
			fprintf(stderr, "cachemax: cannot get stats from the daemon of '%s': %s\n", dir,
			        rc == -EPERM ? "its control socket is not a socket owned by root (refused)" :
			        rc == -EACCES ? "permission denied (the daemon answers root only unless "
			        "started with --public-stats)" : strerror(-rc));
			return 1;
		}
		if (!strncmp(reply, "{\"error\": ", 10)) {
			fprintf(stderr, "cachemax: the daemon of '%s' refused: %s\n", dir, reply);
			return 1;
		}
		if (json) {
			printf("%s\n", reply);
		} else {
			if (watch > 0 && tty)
				printf("\033[H\033[2J");
			stats_print(dir, reply, prev[0] ? prev : NULL, watch);
		}
		fflush(stdout);
		if (watch <= 0 || (count > 0 && round + 1 >= count))
			break;
		memcpy(prev, reply, sizeof(prev));
		usleep((useconds_t)(watch * 1e6));
	}
	return 0;
}

static int cmd_evict(int argc, char **argv)
{
	char dir[CONTROL_PATH_MAX], reply[512];
	struct control_state state;
	unsigned long long total = 0;
	int rc, status = 0;

	if (argc < 2)
		return cli_usage_error("%s", "'evict' takes a directory and optional files: cachemax evict DIR [PATH...]");
	if (cli_refuse_non_root("evict") || cli_refuse_untrusted_run_dir())
		return 1;
	if (control_resolve_path(argv[1], dir, sizeof(dir)) < 0 || control_state_find(dir, &state) < 0 ||
	    !control_is_accelerated(dir)) {
		fprintf(stderr, "cachemax: '%s' is not accelerated (see 'cachemax status')\n", argv[1]);
		return 1;
	}
	for (int i = argc > 2 ? 2 : 1; i < argc; i++) {
		char path[CONTROL_PATH_MAX], request[CONTROL_PATH_MAX + 8];
		size_t n = strlen(dir);
		const char *rel = "";
		char *err;
		if (argc > 2) {
			/* Relative to DIR, as --pin globs are, not to wherever evict happens to run. */
			char given[CONTROL_PATH_MAX * 2];
			if (argv[i][0] == '/')
				snprintf(given, sizeof(given), "%s", argv[i]);
			else
				snprintf(given, sizeof(given), "%s/%s", dir, argv[i]);
			if (control_resolve_path(given, path, sizeof(path)) < 0 ||
			    strncmp(path, dir, n) || (path[n] != '/' && path[n] != '\0')) {
				fprintf(stderr, "cachemax: '%s' is not inside '%s'\n", argv[i], dir);
				status = 1;
				continue;
			}
			rel = path[n] ? path + n + 1 : "";
		}
		snprintf(request, sizeof(request), *rel ? "evict %s" : "evict", rel);
		rc = control_request(state.socket, request, reply, sizeof(reply), STATS_TIMEOUT_MS);
		if (rc < 0) {
			fprintf(stderr, "cachemax: cannot reach the daemon of '%s': %s\n", dir,
			        rc == -EPERM ? "its control socket is not a socket owned by root (refused)" :
			        strerror(-rc));
			return 1;
		}
		err = strstr(reply, "\"error\": \"");
		if (err) {
			err += 10;
			err[strcspn(err, "\"")] = '\0';
			fprintf(stderr, "cachemax: cannot evict '%s': %s\n", argc > 2 ? argv[i] : dir, err);
			status = 1;
			continue;
		}
		total += (unsigned long long)json_number(reply, NULL, "evicted");
	}
	/* "evicted 0" next to an error reads as if the error were harmless */
	if (!status || total)
		printf("evicted %llu cache cop%s\n", total, total == 1 ? "y" : "ies");
	return status;
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1)
		return cli_usage_error("%s", "'version' takes no arguments");
	printf("cachemax %s\n", CACHEMAX_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	const struct command *h;

	if (argc == 1) {
		help_print_all(stdout);
		return 0;
	}
	if (argc > 2)
		return cli_usage_error("%s", "'help' takes at most one command: cachemax help [COMMAND]");
	h = command_find(argv[1]);
	if (!h)
		return cli_usage_error("unknown command '%s'", argv[1]);
	help_print_one(h);
	return 0;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	const struct command *cmd;

	options_help_fill(start_options, sizeof(start_options),
	                  "--all                   every enabled directory, with its options from the config file\n"
	                  "--config FILE           the config file for --all (default $CACHEMAX_CONFIG, else\n"
	                  "                        /etc/cachemax/cachemax.conf)\n");
	options_help_fill(enable_options, sizeof(enable_options),
	                  "--config FILE           the config file (default $CACHEMAX_CONFIG, else\n"
	                  "                        /etc/cachemax/cachemax.conf)\n"
	                  "and the options of start, recorded as keys without '--' (not --foreground):\n");
	/* systemd runs generators by their name: cachemax-generator is a link to this program */
	if (!strcmp(strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0], "cachemax-generator"))
		return cmd_systemd_generator(argc, argv);
	if (!name) {
		help_print_all(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		name = "help";
	else if (!strcmp(name, "--version"))
		name = "version";
	cmd = command_find(name);
	if (!cmd)
		return cli_usage_error("unknown command '%s'", name);
	/* `cachemax COMMAND --help`: that command's help, whatever else the line holds */
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			help_print_one(cmd);
			return 0;
		}
	opterr = 0;  /* cli_option_problem says what is wrong, once */
	argv[1] = argv[0];  /* so getopt sees "cachemax" as the program and the rest as arguments */
	return cmd->run(argc - 1, argv + 1);
}
