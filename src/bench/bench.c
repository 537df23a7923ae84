/* bench: the run — checks, the four targets in order, and the cleanup that every exit path goes
 * through. Design note: everything the run creates is recorded in struct bench_run the moment
 * it exists (scratch files, cache directories, the store, the acceleration), and
 * bench_run_cleanup() undoes exactly that list with injected faults cleared, so a failure or a
 * cancel at any point leaves what was there before. Acceleration is started and stopped by
 * running our own binary in its own process group: a Ctrl-C on the terminal reaches only the
 * bench, which then stops what it started. */
#include "bench/bench_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache_layout.h"
#include "control/control_socket.h"
#include "sys/sys.h"
#include "util/size.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

#define BENCH_SCRATCH_PREFIX ".cachemax-bench-"
#define BENCH_CONTROL_TIMEOUT_MS 5000
#define BENCH_WARM_PASSES 5             /* whole-file reads before giving up on "warm" */
#define BENCH_WARM_PAUSE_US 100000      /* lets fills that follow the answers finish */
#define BENCH_STOP_TRIES 20
#define BENCH_STOP_PAUSE_US 250000
#define BENCH_CHILD_OUTPUT_MAX 1024

const struct bench_test bench_tests[BENCH_TEST_COUNT] = {
	[BENCH_SEQ1M_Q1_READ] = { "SEQ1M Q1T1 read", "seq1m_q1t1_read", 1u << 20, 1, false, false },
	[BENCH_SEQ1M_Q1_WRITE] = { "SEQ1M Q1T1 write", "seq1m_q1t1_write", 1u << 20, 1, false, true },
	[BENCH_RND4K_Q1_READ] = { "RND4K Q1T1 read", "rnd4k_q1t1_read", 4096, 1, true, false },
	[BENCH_RND4K_Q1_WRITE] = { "RND4K Q1T1 write", "rnd4k_q1t1_write", 4096, 1, true, true },
	[BENCH_RND4K_Q32_READ] = { "RND4K Q32T1 read", "rnd4k_q32t1_read", 4096, 32, true, false },
	[BENCH_RND4K_Q32_WRITE] = { "RND4K Q32T1 write", "rnd4k_q32t1_write", 4096, 32, true, true },
};
const char *const bench_target_keys[BENCH_TARGET_COUNT] = {
	"origin", "cache_device", "accelerated_cold", "accelerated_warm",
};
const char *const bench_target_names[BENCH_TARGET_COUNT] = {
	"origin", "cache device", "accel. cold", "accel. warm",
};

/* Reads before writes on every target: the warm reads must find the copy complete, and the
 * cold writes find the object empty (they pass through to the original). */
static const enum bench_test_id bench_order[BENCH_TEST_COUNT] = {
	BENCH_SEQ1M_Q1_READ, BENCH_RND4K_Q1_READ, BENCH_RND4K_Q32_READ,
	BENCH_SEQ1M_Q1_WRITE, BENCH_RND4K_Q1_WRITE, BENCH_RND4K_Q32_WRITE,
};

struct bench_run {
	const struct bench_options *o;
	struct bench_result *r;
	char *err;
	size_t errsize;
	char name[64];              /* scratch file name, the same on every target */
	int direct_flag;            /* O_DIRECT or 0 */
	int origin_fd;              /* O_PATH on the original directory (never the mount) */
	int cache_fd;               /* O_PATH on CACHEDIR */
	int mount_fd;               /* O_PATH on the mount, while measuring through it */
	bool origin_file, cache_file;   /* scratch files that exist */
	bool started;               /* the run accelerated DIR: it must stop it */
	bool object_possible;       /* the scratch file may have a cache object: evict it */
	bool store_created;         /* CACHEDIR/cachemax-v1 did not exist before the run */
	size_t created_from;        /* CACHEDIR's first component the run created (its length), 0 */
	unsigned tests_left;
	struct control_state state; /* the daemon's, once DIR is accelerated */
	char *reply;                /* CONTROL_REPLY_MAX */
	void *buf;                  /* BENCH_FILL_BLOCK, aligned */
	struct bench_progress progress;
};

static int fail(struct bench_run *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct bench_run *b, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err, b->errsize, fmt, ap);
	va_end(ap);
	return rc;
}

static void note(struct bench_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct bench_result *r, const char *fmt, ...)
{
	va_list ap;
	if (r->note_count == BENCH_NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->note_count++], BENCH_NOTE_MAX, fmt, ap);
	va_end(ap);
}

double bench_measure_mb_per_s(const struct bench_measure *m)
{
	return m->done && m->seconds > 0 ? (double)m->bytes / 1e6 / m->seconds : 0;
}

double bench_measure_iops(const struct bench_measure *m)
{
	return m->done && m->seconds > 0 ? (double)m->ops / m->seconds : 0;
}

static bool path_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '\0' || inner[n] == '/');
}

/* ---- our own binary, for start and stop ---- */

extern char **environ;

/* Runs /proc/self/exe with args in its own process group, stdout to /dev/null, stderr kept in
 * out; CACHEMAX_FAULT is left out of its environment (faults are for this process's I/O).
 * Returns the exit status (0..255), 128 + signal, or -errno. */
static int run_self(char *const args[], char *out, size_t outsize)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	size_t envc = 0, n = 0;
	int memfd, status, rc;
	char **env;
	pid_t pid;
	ssize_t got;

	out[0] = '\0';
	while (environ[envc])
		envc++;
	env = calloc(envc + 1, sizeof(*env));
	if (!env)
		return -ENOMEM;
	for (size_t i = 0; i < envc; i++)
		if (strncmp(environ[i], "CACHEMAX_FAULT=", 15))
			env[n++] = environ[i];
	memfd = memfd_create("cachemax-bench-stderr", MFD_CLOEXEC);
	if (memfd < 0) {
		rc = -errno;
		free(env);
		return rc;
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, memfd, STDERR_FILENO);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	rc = -posix_spawn(&pid, "/proc/self/exe", &actions, &attr, args, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	free(env);
	if (rc == 0) {
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {  /* a cancel must not abandon the child */
				rc = -errno;
				break;
			}
		}
		if (rc == 0)
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		got = pread(memfd, out, outsize - 1, 0);
		if (got > 0) {
			out[got] = '\0';
			while (got > 0 && out[got - 1] == '\n')
				out[--got] = '\0';
		}
	}
	close(memfd);
	return rc;
}

/* "cachemax: cannot ..." → "cannot ..." (the child's messages carry our prefix). */
static const char *child_message(const char *out)
{
	return !strncmp(out, "cachemax: ", 10) ? out + 10 : out;
}

/* ---- the daemon's control socket ---- */

static uint64_t json_counter(const char *json, const char *key)
{
	char pat[96];
	const char *p = strstr(json, "\"counters\": {");
	if (!p)
		return 0;
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(p, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static int stats_snapshot(struct bench_run *b, struct bench_stats *s)
{
	int rc = control_request(b->state.socket, "stats", b->reply, CONTROL_REPLY_MAX,
	                         BENCH_CONTROL_TIMEOUT_MS);
	if (rc < 0)
		return fail(b, rc, "cannot get stats from the daemon of '%s': %s", b->o->dir, strerror(-rc));
	s->valid = true;
	s->read_ops_cache = json_counter(b->reply, "read_ops_cache");
	s->read_bytes_cache = json_counter(b->reply, "read_bytes_cache");
	s->read_ops_origin = json_counter(b->reply, "read_ops_origin");
	s->read_bytes_origin = json_counter(b->reply, "read_bytes_origin");
	s->passthrough_opens_cache = json_counter(b->reply, "passthrough_opens_cache");
	s->passthrough_bytes_cache = json_counter(b->reply, "passthrough_bytes_cache");
	s->passthrough_opens_origin = json_counter(b->reply, "passthrough_opens_origin");
	s->passthrough_bytes_origin = json_counter(b->reply, "passthrough_bytes_origin");
	s->fills = json_counter(b->reply, "fills");
	s->fill_bytes = json_counter(b->reply, "fill_bytes");
	return 0;
}

static void stats_subtract(struct bench_stats *d, const struct bench_stats *after,
                           const struct bench_stats *before)
{
#define SUB(f) d->f = after->f - before->f
	d->valid = true;
	SUB(read_ops_cache); SUB(read_bytes_cache); SUB(read_ops_origin); SUB(read_bytes_origin);
	SUB(passthrough_opens_cache); SUB(passthrough_bytes_cache);
	SUB(passthrough_opens_origin); SUB(passthrough_bytes_origin);
	SUB(fills); SUB(fill_bytes);
#undef SUB
}

static int evict_scratch(struct bench_run *b)
{
	char request[sizeof(b->name) + 8], *e;
	int rc;

	if (!b->state.cache_on)
		return 0;  /* no store: nothing is cached, nothing to evict */
	snprintf(request, sizeof(request), "evict %s", b->name);
	rc = control_request(b->state.socket, request, b->reply, CONTROL_REPLY_MAX, BENCH_CONTROL_TIMEOUT_MS);
	if (rc < 0)
		return fail(b, rc, "cannot evict the scratch file's cache copy: the daemon of '%s' does not answer: %s",
		            b->o->dir, strerror(-rc));
	e = strstr(b->reply, "\"error\": \"");
	if (e) {
		e += 10;
		e[strcspn(e, "\"")] = '\0';
		return fail(b, -EIO, "cannot evict the scratch file's cache copy: %s", e);
	}
	return 0;
}

/* ---- page cache ---- */

/* Drops fd's pages and, as root, the clean page cache, so that origin reads reach the device. */
static void drop_page_cache(struct bench_run *b, int fd)
{
	static const char path[] = "/proc/sys/vm/drop_caches";
	int pfd, err = 0;

	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (!b->r->page_cache_dropped)
		return;  /* said once; the drop will not work later either */
	syncfs(fd);
	pfd = open(path, O_WRONLY | O_CLOEXEC);
	if (pfd < 0 || write(pfd, "1", 1) != 1)
		err = errno;
	if (pfd >= 0)
		close(pfd);
	if (err) {
		b->r->page_cache_dropped = false;
		note(b->r, "page cache not dropped: cannot write %s: %s (origin reads may be served from memory)",
		     path, strerror(err));
	}
}

/* ---- measuring one target ---- */

static int open_scratch(struct bench_run *b, int dirfd, int flags)
{
	int fd = sys_openat(dirfd, b->name, flags | b->direct_flag | O_CLOEXEC, 0600);
	return fd;
}

/* Create and fill the scratch file in dirfd; *exists is set as soon as it does. */
static int create_scratch(struct bench_run *b, enum bench_target target, int dirfd, const char *where,
                          bool *exists)
{
	char sz[32];
	int fd, rc;

	fd = open_scratch(b, dirfd, O_RDWR | O_CREAT | O_EXCL);
	if (fd == -EINVAL && b->direct_flag) {
		note(b->r, "%s: O_DIRECT refused; this target was measured buffered", bench_target_names[target]);
		fd = sys_openat(dirfd, b->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return fail(b, fd, "cannot create the scratch file '%s/%s': %s", where, b->name, strerror(-fd));
	*exists = true;
	b->progress.target = bench_target_names[target];
	b->progress.step = "writing the scratch file";
	b->progress.test_end = 0;
	bench_progress_draw(&b->progress, true);
	rc = bench_io_fill(fd, b->r->file_bytes, b->buf, &b->progress);
	sys_close(fd);
	if (rc == -EINTR)
		return fail(b, rc, "interrupted");
	if (rc < 0)
		return fail(b, rc, "cannot write the %s scratch file '%s/%s': %s",
		            size_format(b->r->file_bytes, sz, sizeof(sz)), where, b->name, strerror(-rc));
	return 0;
}

static int run_tests(struct bench_run *b, enum bench_target target, int dirfd, const char *where)
{
	for (int i = 0; i < BENCH_TEST_COUNT; i++) {
		const struct bench_test *t = &bench_tests[bench_order[i]];
		struct bench_measure *m = &b->r->m[bench_order[i]][target];
		int fd, rc;

		if (t->depth > 1 && !b->r->queue_depth_32)
			continue;
		if (bench_cancelled())
			return fail(b, -EINTR, "interrupted");
		if (target == BENCH_COLD) {
			rc = evict_scratch(b);  /* every cold test starts from an empty cache object */
			if (rc < 0)
				return rc;
		}
		fd = open_scratch(b, dirfd, t->write ? O_WRONLY : O_RDONLY);
		if (fd == -EINVAL && b->direct_flag)
			fd = sys_openat(dirfd, b->name, (t->write ? O_WRONLY : O_RDONLY) | O_CLOEXEC, 0);
		if (fd < 0)
			return fail(b, fd, "cannot open the scratch file '%s/%s': %s", where, b->name, strerror(-fd));
		if (target == BENCH_ORIGIN || target == BENCH_COLD)
			drop_page_cache(b, fd);
		b->tests_left--;
		b->progress.target = bench_target_names[target];
		b->progress.step = t->name;
		b->progress.tests_left = b->tests_left;
		rc = bench_io_run(fd, t, b->r->file_bytes, b->o->runtime, m, &b->progress);
		sys_close(fd);
		if (rc == -EINTR)
			return fail(b, rc, "interrupted");
		if (rc < 0)
			return fail(b, rc, "%s on %s ('%s/%s') failed: %s", t->name, bench_target_names[target], where,
			            b->name, strerror(-rc));
	}
	return 0;
}

/* Read the file through the mount until a pass touches the origin no more. */
static int warm_up(struct bench_run *b)
{
	struct bench_stats before, after;
	int fd, rc;

	b->progress.target = bench_target_names[BENCH_WARM];
	b->progress.step = "reading the file once through the mount";
	b->progress.test_end = 0;
	bench_progress_draw(&b->progress, true);
	for (int pass = 1; pass <= BENCH_WARM_PASSES; pass++) {
		rc = stats_snapshot(b, &before);
		if (rc < 0)
			return rc;
		fd = open_scratch(b, b->mount_fd, O_RDONLY);
		if (fd < 0)
			return fail(b, fd, "cannot open '%s/%s' to warm it: %s", b->o->dir, b->name, strerror(-fd));
		rc = bench_io_read_all(fd, b->r->file_bytes, b->buf, &b->progress);
		sys_close(fd);
		if (rc < 0)
			return rc == -EINTR ? fail(b, rc, "interrupted")
			                    : fail(b, rc, "cannot read '%s/%s' to warm it: %s", b->o->dir, b->name, strerror(-rc));
		rc = stats_snapshot(b, &after);
		if (rc < 0)
			return rc;
		if (pass > 1 && after.read_ops_origin == before.read_ops_origin &&
		    after.passthrough_opens_origin == before.passthrough_opens_origin &&
		    (after.passthrough_opens_cache > before.passthrough_opens_cache ||
		     after.read_ops_cache > before.read_ops_cache)) {
			b->r->warm_complete = true;
			return 0;
		}
		usleep(BENCH_WARM_PAUSE_US);
	}
	note(b->r, "warm: the file was not fully cached after %d reads (is the cache on? see 'cachemax status')",
	     BENCH_WARM_PASSES);
	return 0;
}

static int accelerate(struct bench_run *b)
{
	char out[BENCH_CHILD_OUTPUT_MAX];
	char *args[] = { "cachemax", "start", (char *)b->o->dir, "--cache", (char *)b->o->cache, NULL };
	int rc;

	b->progress.target = "accelerating";
	b->progress.step = b->o->dir;
	b->progress.test_end = 0;
	bench_progress_draw(&b->progress, true);
	rc = run_self(args, out, sizeof(out));
	/* Whatever start said, a mount that is there now is ours to stop. */
	b->started = control_is_accelerated(b->o->dir);
	if (rc != 0 || !b->started)
		return fail(b, rc < 0 ? rc : -EIO, "cannot accelerate '%s' for the run: %s", b->o->dir,
		            rc < 0 ? strerror(-rc) : out[0] ? child_message(out) : "start failed");
	if (control_state_find(b->o->dir, &b->state) < 0)
		return fail(b, -ENOENT, "'%s' was accelerated but has no state record in %s", b->o->dir,
		            control_run_dir());
	return 0;
}

static int measure_accelerated(struct bench_run *b)
{
	struct bench_stats before, after;
	struct statfs sf;
	struct stat st;
	int rc;

	if (!b->state.socket[0])
		return fail(b, -ENOTCONN, "the daemon of '%s' has no control socket; see %s", b->o->dir, b->state.log);
	if (!b->state.cache_on)
		note(b->r, "the daemon's cache is off (%s): warm cannot be faster than cold", b->state.cache_why);
	b->mount_fd = open(b->o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b->mount_fd < 0)
		return fail(b, -errno, "cannot open '%s': %s", b->o->dir, strerror(errno));
	if (fstatfs(b->mount_fd, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC)
		return fail(b, -EIO, "'%s' is not served by cachemax after the start", b->o->dir);
	/* The file written behind the mount must be seen through it, whole. */
	rc = sys_fstatat(b->mount_fd, b->name, &st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0)
		return fail(b, rc, "the scratch file is not visible through the mount at '%s/%s': %s", b->o->dir,
		            b->name, strerror(-rc));
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != b->r->file_bytes)
		return fail(b, -EIO, "the scratch file '%s/%s' looks different through the mount", b->o->dir, b->name);
	b->object_possible = true;
	rc = stats_snapshot(b, &before);
	if (rc < 0)
		return rc;
	rc = run_tests(b, BENCH_COLD, b->mount_fd, b->o->dir);
	if (rc < 0)
		return rc;
	rc = evict_scratch(b);  /* the cold writes changed the file: warm starts from a clean object */
	if (rc < 0)
		return rc;
	rc = warm_up(b);
	if (rc < 0)
		return rc;
	rc = run_tests(b, BENCH_WARM, b->mount_fd, b->o->dir);
	if (rc < 0)
		return rc;
	rc = stats_snapshot(b, &after);
	if (rc < 0)
		return rc;
	stats_subtract(&b->r->stats, &after, &before);
	if (b->r->was_accelerated)
		note(b->r, "stats include whatever else used '%s' during the run", b->o->dir);
	return 0;
}

/* ---- checks before anything is written ---- */

/* mkdir -p CACHEDIR, remembering the first directory the run created. */
static int cache_dir_create(struct bench_run *b)
{
	char path[CONTROL_PATH_MAX];
	snprintf(path, sizeof(path), "%s", b->o->cache);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0700) == 0) {
			if (!b->created_from)
				b->created_from = strlen(path);
		} else if (errno != EEXIST) {
			return fail(b, -errno, "cannot create the cache directory '%s': %s", path, strerror(errno));
		}
		*p = c;
		if (!c)
			return 0;
	}
}

static int space_check(struct bench_run *b)
{
	uint64_t need = 2 * b->r->file_bytes + BENCH_FREE_MARGIN, free_origin, free_cache;
	char s1[32], s2[32], s3[32];
	struct statvfs vo, vc;
	struct stat so, sc;
	int rc;

	rc = sys_fstatvfs(b->origin_fd, &vo);
	if (rc == 0)
		rc = sys_fstatvfs(b->cache_fd, &vc);
	if (rc < 0 || fstat(b->origin_fd, &so) < 0 || fstat(b->cache_fd, &sc) < 0)
		return fail(b, rc < 0 ? rc : -errno, "cannot see the free space of '%s' or '%s'", b->o->dir, b->o->cache);
	free_origin = (uint64_t)vo.f_bavail * vo.f_frsize;
	free_cache = (uint64_t)vc.f_bavail * vc.f_frsize;
	if (so.st_dev == sc.st_dev && free_origin < 2 * need)
		return fail(b, -ENOSPC,
		            "too little free space: '%s' and the cache '%s' share a file system with %s free; "
		            "the bench needs %s (2 x (2 x --size + 16 MiB)); use a smaller --size or free some space",
		            b->o->dir, b->o->cache, size_format(free_origin, s1, sizeof(s1)),
		            size_format(2 * need, s2, sizeof(s2)));
	if (free_origin < need || free_cache < need) {
		bool o = free_origin < need;
		return fail(b, -ENOSPC,
		            "too little free space on %s '%s': %s free, the bench needs %s (2 x --size %s + 16 MiB); "
		            "use a smaller --size or free some space",
		            o ? "the directory's file system" : "the cache's file system", o ? b->o->dir : b->o->cache,
		            size_format(o ? free_origin : free_cache, s1, sizeof(s1)), size_format(need, s2, sizeof(s2)),
		            size_format(b->r->file_bytes, s3, sizeof(s3)));
	}
	return 0;
}

static int prepare(struct bench_run *b)
{
	const struct bench_options *o = b->o;
	struct statfs sf;
	struct stat st;
	int rc;

	if (geteuid() != 0)
		return fail(b, -EPERM, "bench must run as root: it mounts in place and drops the page cache");
	if (stat(o->dir, &st) < 0)
		return fail(b, -errno, "cannot benchmark '%s': %s", o->dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(b, -ENOTDIR, "cannot benchmark '%s': not a directory", o->dir);
	if (!strcmp(o->dir, "/"))
		return fail(b, -EINVAL, "cannot benchmark '/': choose a directory below it");
	if (path_inside(o->cache, o->dir) || path_inside(o->dir, o->cache))
		return fail(b, -EINVAL, "the cache '%s' and the directory '%s' must not contain each other", o->cache, o->dir);
	if (stat(o->cache, &st) == 0 && !S_ISDIR(st.st_mode))
		return fail(b, -ENOTDIR, "the cache '%s' exists and is not a directory", o->cache);

	b->r->was_accelerated = control_is_accelerated(o->dir);
	if (b->r->was_accelerated) {
		if (control_state_find(o->dir, &b->state) < 0)
			return fail(b, -ENOENT, "'%s' is accelerated but its state record is not in %s", o->dir,
			            control_run_dir());
		if (strcmp(b->state.cache, o->cache))
			return fail(b, -EINVAL, "'%s' is accelerated with the cache '%s', not '%s': run with --cache %s",
			            o->dir, b->state.cache, o->cache, b->state.cache);
		if (b->state.origin_fd < 0 || !control_pid_alive(b->state.daemon_pid))
			return fail(b, -ESRCH, "cannot reach the original of '%s' through its daemon; restart it "
			            "('cachemax stop %s', then start)", o->dir, o->dir);
		snprintf(b->r->origin_path, sizeof(b->r->origin_path), "/proc/%d/fd/%d", (int)b->state.daemon_pid,
		         b->state.origin_fd);
	} else {
		snprintf(b->r->origin_path, sizeof(b->r->origin_path), "%s", o->dir);
	}
	/* A magic link when accelerated: it names the daemon's fd, no path is looked up under the mount. */
	b->origin_fd = open(b->r->origin_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b->origin_fd < 0)
		return fail(b, -errno, "cannot open the original directory '%s': %s", b->r->origin_path, strerror(errno));
	if (b->r->was_accelerated && (fstatfs(b->origin_fd, &sf) < 0 || sf.f_type == FUSE_SUPER_MAGIC))
		return fail(b, -EIO, "'%s' does not lead to the original directory of '%s'", b->r->origin_path, o->dir);

	rc = cache_dir_create(b);
	if (rc < 0)
		return rc;
	b->cache_fd = open(o->cache, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b->cache_fd < 0)
		return fail(b, -errno, "cannot open the cache directory '%s': %s", o->cache, strerror(errno));
	b->store_created = faccessat(b->cache_fd, CACHE_STORE_DIR_NAME, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
	rc = space_check(b);
	if (rc < 0)
		return rc;
	rc = bench_uring_probe();
	b->r->queue_depth_32 = rc == 0;
	if (rc < 0)
		note(b->r, "RND4K Q32T1 skipped: io_uring is not available here (%s)", strerror(-rc));
	snprintf(b->name, sizeof(b->name), BENCH_SCRATCH_PREFIX "%d-%lx", (int)getpid(),
	         (unsigned long)(bench_now() * 1000) & 0xffffff);
	return 0;
}

/* ---- cleanup ---- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

/* Appends a cleanup failure to err (the run then fails even if the measurements succeeded). */
static int cleanup_fail(struct bench_run *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cleanup_fail(struct bench_run *b, int rc, const char *fmt, ...)
{
	size_t n = strlen(b->err);
	va_list ap;
	if (n && n + 2 < b->errsize) {
		strcpy(b->err + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(b->err + n, b->errsize - n, fmt, ap);
	va_end(ap);
	return rc;
}

static int stop_acceleration(struct bench_run *b)
{
	char out[BENCH_CHILD_OUTPUT_MAX];
	char *stop[] = { "cachemax", "stop", (char *)b->o->dir, NULL };
	char *lazy[] = { "cachemax", "stop", (char *)b->o->dir, "--lazy", NULL };
	int rc = -EIO;

	for (int i = 0; i < BENCH_STOP_TRIES && control_is_accelerated(b->o->dir); i++) {
		rc = run_self(i + 1 < BENCH_STOP_TRIES ? stop : lazy, out, sizeof(out));
		if (rc == 0)
			break;
		usleep(BENCH_STOP_PAUSE_US);
	}
	if (control_is_accelerated(b->o->dir))
		return cleanup_fail(b, -EBUSY, "cannot stop the acceleration of '%s' the bench started: %s; run 'cachemax stop %s'",
		                    b->o->dir, out[0] ? child_message(out) : "stop failed", b->o->dir);
	return 0;
}

static int bench_run_cleanup(struct bench_run *b)
{
	char path[CONTROL_PATH_MAX + 32];
	int rc, status = 0;

	sys_fault_clear();  /* injected faults test the run; the cleanup must really happen */
	b->progress.target = "cleaning up";
	b->progress.step = "";
	b->progress.test_end = 0;
	bench_progress_draw(&b->progress, true);
	if (b->object_possible && b->state.socket[0] && control_is_accelerated(b->o->dir)) {
		rc = evict_scratch(b);
		if (rc < 0)
			status = cleanup_fail(b, rc, "the scratch file's cache copy may remain (evict it with 'cachemax evict %s')",
			                      b->o->dir);
	}
	if (b->mount_fd >= 0 && b->origin_file && b->r->was_accelerated) {
		/* Through the mount, so the kernel and the daemon forget the name at once. */
		if (unlinkat(b->mount_fd, b->name, 0) == 0 || errno == ENOENT)
			b->origin_file = false;
	}
	if (b->mount_fd >= 0)
		close(b->mount_fd);  /* a holder on the mount would make stop refuse */
	b->mount_fd = -1;
	if (b->started) {
		rc = stop_acceleration(b);
		if (rc < 0)
			status = rc;
		else
			b->started = false;
	}
	rc = b->origin_file ? sys_unlinkat(b->origin_fd, b->name, 0) : 0;
	if (rc < 0 && rc != -ENOENT)
		status = cleanup_fail(b, rc, "cannot remove the scratch file '%s/%s': %s", b->o->dir, b->name, strerror(-rc));
	rc = b->cache_file ? sys_unlinkat(b->cache_fd, b->name, 0) : 0;
	if (rc < 0 && rc != -ENOENT)
		status = cleanup_fail(b, rc, "cannot remove the scratch file '%s/%s': %s", b->o->cache, b->name, strerror(-rc));
	if (b->store_created && b->cache_fd >= 0 && !b->started && !control_is_accelerated(b->o->dir)) {
		snprintf(path, sizeof(path), "%s/%s", b->o->cache, CACHE_STORE_DIR_NAME);
		if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
			status = cleanup_fail(b, -errno, "cannot remove the cache store '%s' the bench created: %s", path,
			                      strerror(errno));
	}
	if (b->created_from && !b->started) {
		snprintf(path, sizeof(path), "%s", b->o->cache);
		while (strlen(path) >= b->created_from && rmdir(path) == 0)
			*strrchr(path, '/') = '\0';
	}
	if (b->origin_fd >= 0)
		close(b->origin_fd);
	if (b->cache_fd >= 0)
		close(b->cache_fd);
	bench_progress_clear(&b->progress);
	return status;
}

int bench_run(const struct bench_options *o, struct bench_result *r, char *err, size_t errsize)
{
	struct bench_run *b;
	int rc, crc;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err[0] = '\0';
	memset(r, 0, sizeof(*r));
	r->page_cache_dropped = true;
	r->file_bytes = o->size / BENCH_FILL_BLOCK * BENCH_FILL_BLOCK;
	b->o = o;
	b->r = r;
	b->err = err;
	b->errsize = errsize;
	b->origin_fd = b->cache_fd = b->mount_fd = -1;
	b->direct_flag = o->direct ? O_DIRECT : 0;
	b->progress.enabled = o->progress;
	b->progress.runtime = o->runtime;
	b->reply = malloc(CONTROL_REPLY_MAX);
	if (!b->reply || posix_memalign(&b->buf, BENCH_ALIGN, BENCH_FILL_BLOCK)) {
		rc = fail(b, -ENOMEM, "out of memory");
		goto out_free;
	}
	if (r->file_bytes < BENCH_SIZE_MIN) {
		rc = fail(b, -EINVAL, "the scratch file must be at least 1 MiB");
		goto out_free;
	}

	rc = prepare(b);
	if (rc < 0)
		goto out_cleanup;
	b->tests_left = (r->queue_depth_32 ? 6 : 4) * BENCH_TARGET_COUNT;
	b->progress.tests_left = b->tests_left;

	rc = create_scratch(b, BENCH_ORIGIN, b->origin_fd, r->origin_path, &b->origin_file);
	if (rc == 0)
		rc = run_tests(b, BENCH_ORIGIN, b->origin_fd, r->origin_path);
	if (rc == 0)
		rc = create_scratch(b, BENCH_CACHE_DEVICE, b->cache_fd, o->cache, &b->cache_file);
	if (rc == 0)
		rc = run_tests(b, BENCH_CACHE_DEVICE, b->cache_fd, o->cache);
	if (rc == 0 && sys_unlinkat(b->cache_fd, b->name, 0) == 0)
		b->cache_file = false;  /* room for the cache copy */
	if (rc == 0 && !r->was_accelerated)
		rc = accelerate(b);
	if (rc == 0 && bench_cancelled())
		rc = fail(b, -EINTR, "interrupted");
	if (rc == 0)
		rc = measure_accelerated(b);
out_cleanup:
	crc = bench_run_cleanup(b);
	if (rc == 0)
		rc = crc;
out_free:
	free(b->buf);
	free(b->reply);
	free(b);
	return rc;
}
