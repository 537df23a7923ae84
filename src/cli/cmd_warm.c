/* cachemax warm and cachemax verify: the CLI side of the control verbs "warm REL" and
 * "verify REL" (control_verbs.h). The CLI picks the files (walking DIR through the mount),
 * checks that they fit the cache, and drives the daemon one file at a time with up to --jobs
 * files in flight: "warm REL" queues the file's completion on the daemon's fill threads and
 * is asked again until it says "complete". Nothing is copied by the CLI, and nothing is
 * remembered between runs but the cache itself: a file already complete is skipped, a partial
 * one keeps its chunks, so a second run after Ctrl-C or a restart copies only what remains.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "control/control_socket.h"
#include "control/control_trust.h"
#include "util/clock.h"
#include "util/glob.h"
#include "util/json.h"
#include "util/size.h"

#define WARM_JOBS_DEFAULT 2
#define WARM_JOBS_MAX 64
#define WARM_POLL_MS 100
#define WARM_WAIT_MAX_MS 30000           /* a file that cannot be queued this long is skipped */
#define WARM_REQUEST_TIMEOUT_MS 5000
#define VERIFY_TIMEOUT_MS (3600 * 1000)  /* hashing two copies of a large file */
#define WARM_WALK_DEPTH_MAX 64

/* ---- the files: DIR's, or those the arguments name ------------------------------------- */

struct warm_file {
	char *rel;
	uint64_t size;
	/* warm: */
	bool asked;                  /* the daemon answered once (cached0 is known) */
	uint64_t cached0;            /* bytes cached when first asked */
	uint64_t cached;             /* bytes cached at the last answer */
	unsigned waited_ms;          /* time spent "waiting" (not queued) */
	enum { WARM_PENDING, WARM_ACTIVE, WARM_DONE, WARM_EXCLUDED, WARM_SKIPPED, WARM_FAILED } state;
};

struct file_list {
	struct warm_file *v;
	size_t count, cap;
};

static int list_add(struct file_list *l, const char *rel, uint64_t size)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct warm_file *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->count], 0, sizeof(l->v[0]));
	l->v[l->count].rel = strdup(rel);
	if (!l->v[l->count].rel)
		return -ENOMEM;
	l->v[l->count++].size = size;
	return 0;
}

static void list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->v[i].rel);
	free(l->v);
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct warm_file *)a)->rel, ((const struct warm_file *)b)->rel);
}

/* Sorted, each file once (a file named twice, or by a path and a glob). */
static void list_unique(struct file_list *l)
{
	size_t n = 0;
	qsort(l->v, l->count, sizeof(l->v[0]), file_cmp);
	for (size_t i = 0; i < l->count; i++) {
		if (n && !strcmp(l->v[n - 1].rel, l->v[i].rel)) {
			free(l->v[i].rel);
			continue;
		}
		l->v[n++] = l->v[i];
	}
	l->count = n;
}

struct walk {
	const char *dir;                 /* the accelerated directory (walked through the mount) */
	const char *const *globs;        /* NULL: every regular file */
	unsigned glob_count;
	struct file_list *files;
};

/* The regular files below rel ("" for DIR itself), in DIR's tree (symlinks not followed). */
static int walk_dir(struct walk *w, const char *rel, unsigned depth)
{
	char path[CONTROL_PATH_MAX * 2];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s", w->dir, *rel ? "/" : "", rel);
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "cachemax: cannot list '%s': %s\n", path, strerror(errno));
		return -errno;
	}
	while (rc == 0 && (de = readdir(d))) {
		char child[CONTROL_PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(child))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;  /* gone meanwhile */
		if (S_ISDIR(st.st_mode) && depth < WARM_WALK_DEPTH_MAX)
			rc = walk_dir(w, child, depth + 1);
		else if (S_ISREG(st.st_mode) && (!w->globs || glob_match_any(w->globs, w->glob_count, child)))
			rc = list_add(w->files, child, (uint64_t)st.st_size);
	}
	closedir(d);
	return rc;
}

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* The files the arguments name (relative to dir, or absolute inside it): a file, a directory
 * (every file below it) or a glob (the --pin rule, util/glob.h); none: every file. 0, or 1
 * after a message (a path outside dir, missing, or neither a file nor a directory). */
static int files_collect(const char *dir, char **args, int count, struct file_list *files)
{
	const char **globs = calloc((size_t)count + 1, sizeof(*globs));
	unsigned glob_count = 0;
	size_t n = strlen(dir);
	int status = 0;

	if (!globs)
		return 1;
	for (int i = 0; i < count && status == 0; i++) {
		char given[CONTROL_PATH_MAX * 2], path[CONTROL_PATH_MAX];
		const char *rel;
		struct stat st;

		if (args[i][0] == '/')
			snprintf(given, sizeof(given), "%s", args[i]);
		else
			snprintf(given, sizeof(given), "%s/%s", dir, args[i]);
		if (is_glob(args[i])) {
			/* Relative to DIR, as --pin globs are; an absolute one must start with DIR. */
			if (args[i][0] == '/' && (strncmp(args[i], dir, n) || args[i][n] != '/')) {
				fprintf(stderr, "cachemax: '%s' is not inside '%s'\n", args[i], dir);
				status = 1;
			} else {
				globs[glob_count++] = args[i][0] == '/' ? args[i] + n + 1 : args[i];
			}
			continue;
		}
		if (control_resolve_path(given, path, sizeof(path)) < 0 || strncmp(path, dir, n) ||
		    (path[n] != '/' && path[n] != '\0')) {
			fprintf(stderr, "cachemax: '%s' is not inside '%s'\n", args[i], dir);
			status = 1;
			continue;
		}
		rel = path[n] ? path + n + 1 : "";
		if (lstat(path, &st) < 0) {
			fprintf(stderr, "cachemax: cannot find '%s': %s\n", args[i], strerror(errno));
			status = 1;
		} else if (S_ISDIR(st.st_mode)) {
			struct walk w = { dir, NULL, 0, files };
			status = walk_dir(&w, rel, 0) < 0;
		} else if (S_ISREG(st.st_mode)) {
			status = list_add(files, rel, (uint64_t)st.st_size) < 0;
		} else {
			fprintf(stderr, "cachemax: '%s' is neither a regular file nor a directory\n", args[i]);
			status = 1;
		}
	}
	if (status == 0 && (glob_count || count == 0)) {
		struct walk w = { dir, glob_count ? globs : NULL, glob_count, files };
		status = walk_dir(&w, "", 0) < 0;
	}
	free(globs);
	if (status == 0)
		list_unique(files);
	return status;
}

/* ---- talking to the daemon -------------------------------------------------------------- */

struct target {
	char dir[CONTROL_PATH_MAX];
	struct control_state state;
};

/* DIR accelerated, with a control socket we trust: 0, or 1 after a message. */
static int target_find(const char *cmd, const char *arg, struct target *t)
{
	char why[CONTROL_WHY_MAX];

	if (geteuid() != 0) {
		fprintf(stderr, "cachemax: '%s' changes what root's daemon does: run it as root\n", cmd);
		return 1;
	}
	if (control_run_dir_check(why, sizeof(why)) < 0) {
		fprintf(stderr, "cachemax: refusing to trust the run directory: %s\n", why);
		return 1;
	}
	if (control_resolve_path(arg, t->dir, sizeof(t->dir)) < 0 ||
	    control_state_find(t->dir, &t->state) < 0 || !control_is_accelerated(t->dir)) {
		fprintf(stderr, "cachemax: '%s' is not accelerated (see 'cachemax status')\n", arg);
		return 1;
	}
	if (!t->state.socket[0]) {
		fprintf(stderr, "cachemax: the daemon of '%s' has no control socket; see %s\n", t->dir,
		        t->state.log);
		return 1;
	}
	return 0;
}

/* One request; 0 with the reply, or 1 after a message (the daemon cannot be reached). */
static int ask(const struct target *t, const char *verb, const char *rel, char *reply, size_t size,
               int timeout_ms)
{
	char request[CONTROL_PATH_MAX + 16];
	int rc;

	snprintf(request, sizeof(request), "%s%s%s", verb, *rel ? " " : "", rel);
	rc = control_request(t->state.socket, request, reply, size, timeout_ms);
	if (rc < 0) {
		fprintf(stderr, "\ncachemax: cannot reach the daemon of '%s': %s\n", t->dir,
		        rc == -EPERM ? "its control socket is not a socket owned by root (refused)" :
		        strerror(-rc));
		return 1;
	}
	return 0;
}

/* The value of "key": "..." in one of the daemon's flat replies (empty if absent). */
static const char *reply_string(const char *reply, const char *key, char *out, size_t size)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(reply, pat);
	if (p) {
		for (p += strlen(pat); *p && *p != '"' && n + 1 < size; p++) {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return out;
}

static uint64_t reply_number(const char *reply, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(reply, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* ---- warm ----------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = 1;
}

static double now_seconds(void)
{
	return (double)clock_now_ns() / 1e9;
}

struct warm_totals {
	size_t files, done, already, excluded, skipped, failed, verified, mismatches;
	uint64_t bytes, cached, copied;
	double seconds;
};

static void totals_of(const struct file_list *l, struct warm_totals *s)
{
	s->done = s->already = s->excluded = s->skipped = s->failed = 0;
	s->cached = s->copied = 0;
	for (size_t i = 0; i < l->count; i++) {
		const struct warm_file *f = &l->v[i];
		s->done += f->state == WARM_DONE;
		s->already += f->state == WARM_DONE && f->cached0 >= f->size;
		s->excluded += f->state == WARM_EXCLUDED;
		s->skipped += f->state == WARM_SKIPPED;
		s->failed += f->state == WARM_FAILED;
		s->cached += f->cached;
		if (f->asked && f->cached > f->cached0)
			s->copied += f->cached - f->cached0;
	}
}

static void progress_draw(const struct warm_totals *s)
{
	char cached[32], bytes[32], eta[32] = "";
	double rate = s->seconds > 0 ? (double)s->copied / s->seconds : 0;

	if (rate > 0 && s->bytes > s->cached) {
		unsigned long left = (unsigned long)((double)(s->bytes - s->cached) / rate);
		snprintf(eta, sizeof(eta), ", ETA %lu:%02lu", left / 60, left % 60);
	}
	printf("\r\033[Kwarm: %zu/%zu files, %s of %s, %.1f MB/s%s",
	       s->done + s->excluded + s->skipped + s->failed,
	       s->files, size_format(s->cached, cached, sizeof(cached)),
	       size_format(s->bytes, bytes, sizeof(bytes)), rate / 1e6, eta);
	fflush(stdout);
}

/* --verify of a file warm just completed: 0 match (or not checkable), 1 mismatch or error. */
static int verify_one(const struct target *t, const char *rel, bool quiet_ok, size_t *mismatches)
{
	char reply[1024], result[32], err[512];

	if (ask(t, "verify", rel, reply, sizeof(reply), VERIFY_TIMEOUT_MS))
		return -1;
	if (*reply_string(reply, "error", err, sizeof(err))) {
		fprintf(stderr, "\ncachemax: cannot verify '%s': %s\n", rel, err);
		return 1;
	}
	reply_string(reply, "result", result, sizeof(result));
	if (!strcmp(result, "mismatch")) {
		char copy[32], origin[32];
		fprintf(stderr, "\rmismatch: '%s': the cache copy (XXH3 %s) differs from the original "
		        "(XXH3 %s); the copy was dropped, reads go to the original\n", rel,
		        reply_string(reply, "hash_copy", copy, sizeof(copy)),
		        reply_string(reply, "hash_origin", origin, sizeof(origin)));
		(*mismatches)++;
		return 1;
	}
	if (!quiet_ok && strcmp(result, "match"))
		fprintf(stderr, "\rcachemax: '%s' was not checked: %s\n", rel,
		        !strcmp(result, "changed") ? "it changed while it was hashed, or is open for writing" :
		        "the cache holds only part of it");
	return 0;
}

/* Ask about file f once and act on the answer; -1 if the daemon cannot be reached. */
static int warm_step(const struct target *t, struct warm_file *f, bool verify,
                     struct warm_totals *s, bool tty)
{
	char reply[1024], state[32], err[512];

	if (ask(t, "warm", f->rel, reply, sizeof(reply), WARM_REQUEST_TIMEOUT_MS))
		return -1;
	if (*reply_string(reply, "error", err, sizeof(err))) {
		fprintf(stderr, "%scachemax: cannot warm '%s': %s\n", tty ? "\r\033[K" : "", f->rel, err);
		f->state = WARM_FAILED;
		return 0;
	}
	reply_string(reply, "state", state, sizeof(state));
	f->size = reply_number(reply, "size");
	f->cached = reply_number(reply, "cached");
	if (!f->asked) {
		f->asked = true;
		f->cached0 = f->cached;
	}
	if (!strcmp(state, "complete")) {
		f->cached = f->size;
		f->state = WARM_DONE;
		if (verify) {
			int rc = verify_one(t, f->rel, false, &s->mismatches);
			if (rc < 0)
				return -1;
			s->verified += rc == 0;
			if (rc > 0)
				f->state = WARM_FAILED;
		}
	} else if (!strcmp(state, "excluded")) {
		f->state = WARM_EXCLUDED;  /* never cached, as asked: counted, not an error */
	} else if (!strcmp(state, "waiting")) {
		f->waited_ms += WARM_POLL_MS;
		if (f->waited_ms >= WARM_WAIT_MAX_MS) {
			fprintf(stderr, "%scachemax: skipping '%s': open with passthrough, the fill queue "
			        "is full, or it keeps changing (try again later)\n", tty ? "\r\033[K" : "", f->rel);
			f->state = WARM_SKIPPED;
		}
	}
	return 0;
}

static void warm_report(const struct target *t, const struct warm_totals *s, bool json, bool verify)
{
	char bytes[32], copied[32];
	double rate = s->seconds > 0 ? (double)s->copied / s->seconds : 0;

	if (json) {
		char dir_json[CONTROL_PATH_MAX * 2];
		printf("{\"dir\": \"%s\", \"files\": %zu, \"bytes\": %" PRIu64 ", \"complete\": %zu, "
		       "\"already_complete\": %zu, \"excluded\": %zu, \"skipped\": %zu, \"failed\": %zu, \"bytes_cached\": %"
		       PRIu64 ", \"bytes_copied\": %" PRIu64 ", \"seconds\": %.3f, \"verified\": %zu, "
		       "\"mismatches\": %zu, \"interrupted\": %s}\n",
		       json_escape(t->dir, dir_json, sizeof(dir_json)), s->files, s->bytes, s->done,
		       s->already, s->excluded, s->skipped, s->failed, s->cached, s->copied, s->seconds, s->verified,
		       s->mismatches, interrupted ? "true" : "false");
		return;
	}
	printf("%s %zu of %zu files complete in the cache (%s), %zu already were; copied %s in %.1f s "
	       "(%.1f MB/s)", interrupted ? "interrupted:" : "warm:", s->done, s->files,
	       size_format(s->bytes, bytes, sizeof(bytes)), s->already,
	       size_format(s->copied, copied, sizeof(copied)), s->seconds, rate / 1e6);
	if (s->excluded)
		printf("; %zu excluded (--exclude)", s->excluded);
	if (s->skipped || s->failed)
		printf("; %zu skipped, %zu failed", s->skipped, s->failed);
	if (verify)
		printf("; verified %zu, %zu mismatch%s", s->verified, s->mismatches,
		       s->mismatches == 1 ? "" : "es");
	printf("\n");
	if (interrupted)
		printf("run the same command again to resume (what is cached stays; files being copied "
		       "when interrupted finish in the background)\n");
}

/* Refuse a set that the cache cannot hold: eviction starts at the high watermark, and would
 * then drop files this warm copied. 0, or 1 after a message. */
static int warm_fits(const struct target *t, uint64_t bytes)
{
	char reply[CONTROL_REPLY_MAX], err[512], need[32], cap[32], high[32];
	uint64_t capacity, limit;

	if (ask(t, "stats", "", reply, sizeof(reply), WARM_REQUEST_TIMEOUT_MS))
		return 1;
	if (*reply_string(reply, "error", err, sizeof(err))) {
		fprintf(stderr, "cachemax: the daemon of '%s' refused: %s\n", t->dir, err);
		return 1;
	}
	if (!strstr(reply, "\"cache\": true")) {
		fprintf(stderr, "cachemax: '%s' has no cache to warm (see 'cachemax status')\n", t->dir);
		return 1;
	}
	capacity = reply_number(reply, "cache_size");
	limit = reply_number(reply, "cache_high_watermark");
	if (!limit)
		limit = capacity;
	if (capacity && bytes > limit) {
		fprintf(stderr, "cachemax: the files to warm take %s, more than the cache of '%s' keeps "
		        "(capacity %s, eviction starts at %s); nothing was copied. Warm fewer files, or "
		        "restart it with a larger --size\n", size_format(bytes, need, sizeof(need)), t->dir,
		        size_format(capacity, cap, sizeof(cap)), size_format(limit, high, sizeof(high)));
		return 1;
	}
	return 0;
}

int cmd_warm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verify", no_argument, NULL, 'v' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	struct file_list files = { 0 };
	struct warm_totals s = { 0 };
	struct target t;
	struct sigaction sa = { .sa_handler = on_interrupt };
	bool verify = false, json = false, tty;
	long jobs = WARM_JOBS_DEFAULT;
	size_t next = 0, active = 0;
	char problem[256], *end;
	double start;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (c) {
		case 'v': verify = true; break;
		case 'J': json = true; break;
		case 'j':
			jobs = strtol(optarg, &end, 10);
			if (*end || jobs < 1 || jobs > WARM_JOBS_MAX) {
				fprintf(stderr, "cachemax: --jobs takes a number from 1 to %d, not '%s'\n"
				        "run 'cachemax help warm' for usage\n", WARM_JOBS_MAX, optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "cachemax: 'warm': %s\nrun 'cachemax help warm' for usage\n",
			        cli_option_problem(c, argv, problem, sizeof(problem)));
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "cachemax: 'warm' takes a directory and optional files, directories or "
		        "globs: cachemax warm DIR [PATH|GLOB...]\nrun 'cachemax help warm' for usage\n");
		return 2;
	}
	if (target_find("warm", argv[optind], &t))
		return 1;
	if (files_collect(t.dir, argv + optind + 1, argc - optind - 1, &files)) {
		list_free(&files);
		return 1;
	}
	s.files = files.count;
	for (size_t i = 0; i < files.count; i++)
		s.bytes += files.v[i].size;
	if (warm_fits(&t, s.bytes)) {
		list_free(&files);
		return 1;
	}
	tty = !json && isatty(STDOUT_FILENO);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	start = now_seconds();
	/* Up to `jobs` files in flight; each asked every WARM_POLL_MS until it is settled. */
	while (!interrupted && (next < files.count || active)) {
		while (active < (size_t)jobs && next < files.count) {
			files.v[next++].state = WARM_ACTIVE;
			active++;
		}
		for (size_t i = 0; i < next && !interrupted; i++) {
			struct warm_file *f = &files.v[i];
			if (f->state != WARM_ACTIVE)
				continue;
			if (warm_step(&t, f, verify, &s, tty) < 0) {
				status = 1;
				interrupted = 1;
				break;
			}
			if (f->state != WARM_ACTIVE)
				active--;
		}
		s.seconds = now_seconds() - start;
		totals_of(&files, &s);
		if (tty)
			progress_draw(&s);
		if (active && !interrupted)
			usleep(WARM_POLL_MS * 1000);
	}
	s.seconds = now_seconds() - start;
	totals_of(&files, &s);
	if (tty)
		printf("\r\033[K");
	warm_report(&t, &s, json, verify);
	if (s.skipped || s.failed || s.mismatches)
		status = 1;
	list_free(&files);
	return interrupted ? 130 : status;
}

/* ---- verify --------------------------------------------------------------------------- */

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	struct file_list files = { 0 };
	size_t matched = 0, mismatched = 0, partial = 0, changed = 0, failed = 0;
	struct target t;
	bool json = false;
	char problem[256];
	int c;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (c != 'J') {
			fprintf(stderr, "cachemax: 'verify': %s\nrun 'cachemax help verify' for usage\n",
			        cli_option_problem(c, argv, problem, sizeof(problem)));
			return 2;
		}
		json = true;
	}
	if (optind >= argc) {
		fprintf(stderr, "cachemax: 'verify' takes a directory and optional files or directories: "
		        "cachemax verify DIR [PATH...]\nrun 'cachemax help verify' for usage\n");
		return 2;
	}
	if (target_find("verify", argv[optind], &t))
		return 1;
	if (files_collect(t.dir, argv + optind + 1, argc - optind - 1, &files)) {
		list_free(&files);
		return 1;
	}
	for (size_t i = 0; i < files.count; i++) {
		char reply[1024], result[32], err[512];
		const char *rel = files.v[i].rel;
		if (ask(&t, "verify", rel, reply, sizeof(reply), VERIFY_TIMEOUT_MS)) {
			list_free(&files);
			return 1;
		}
		if (*reply_string(reply, "error", err, sizeof(err))) {
			fprintf(stderr, "cachemax: cannot verify '%s': %s\n", rel, err);
			failed++;
			continue;
		}
		reply_string(reply, "result", result, sizeof(result));
		if (!strcmp(result, "match")) {
			matched++;
		} else if (!strcmp(result, "mismatch")) {
			char copy[32], origin[32];
			printf("mismatch: '%s': the cache copy (XXH3 %s) differs from the original (XXH3 %s); "
			       "the copy was dropped, reads go to the original\n", rel,
			       reply_string(reply, "hash_copy", copy, sizeof(copy)),
			       reply_string(reply, "hash_origin", origin, sizeof(origin)));
			mismatched++;
		} else if (!strcmp(result, "changed")) {
			changed++;
		} else {
			partial++;
		}
	}
	if (json) {
		char dir_json[CONTROL_PATH_MAX * 2];
		printf("{\"dir\": \"%s\", \"files\": %zu, \"match\": %zu, \"mismatch\": %zu, "
		       "\"not_complete\": %zu, \"changed\": %zu, \"failed\": %zu}\n",
		       json_escape(t.dir, dir_json, sizeof(dir_json)), files.count, matched, mismatched,
		       partial, changed, failed);
	} else {
		printf("verify: %zu complete cop%s checked, %zu match, %zu mismatch%s (dropped); %zu file%s "
		       "not complete in the cache (not checked)", matched + mismatched,
		       matched + mismatched == 1 ? "y" : "ies", matched, mismatched,
		       mismatched == 1 ? "" : "es", partial, partial == 1 ? "" : "s");
		if (changed)
			printf(", %zu changed while hashed or open for writing (not checked)", changed);
		if (failed)
			printf(", %zu failed", failed);
		printf("\n");
	}
	list_free(&files);
	return mismatched || failed ? 1 : 0;
}
