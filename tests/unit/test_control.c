/* Unit tests for src/control/control.c: path resolution, the state records in
 * CACHEMAX_RUN_DIR, mount discovery from /proc/self/mountinfo, pid liveness and holders.
 * Everything happens in a temporary directory; the mount tests need root and are skipped
 * without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/control.h"
#include "control/control_proto.h"
#include "control/control_verbs.h"
#include "control/control_trust.h"
#include "control/control_uring.h"

struct fixture {
	char base[PATH_MAX];     /* realpath of the temp dir */
	char oldcwd[PATH_MAX];
	char mounts[4][PATH_MAX]; /* mounted by a test, detached in teardown */
	int mount_count;
};

static void pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < size);
}

static void make_dir(const struct fixture *f, const char *rel)
{
	char p[PATH_MAX];
	pathf(p, sizeof(p), "%s/%s", f->base, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void make_file(const struct fixture *f, const char *rel)
{
	char p[PATH_MAX];
	int fd;
	pathf(p, sizeof(p), "%s/%s", f->base, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void make_link(const struct fixture *f, const char *target, const char *rel)
{
	char p[PATH_MAX];
	pathf(p, sizeof(p), "%s/%s", f->base, rel);
	assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/cm-test-control.XXXXXX";

	if (!f || !mkdtemp(tmpl) || !realpath(tmpl, f->base) || !getcwd(f->oldcwd, sizeof(f->oldcwd)))
		return -1;
	unsetenv("CACHEMAX_RUN_DIR");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 32];
	int rc = 0;

	for (int i = f->mount_count - 1; i >= 0; i--)
		umount2(f->mounts[i], MNT_DETACH);
	if (chdir(f->oldcwd) != 0)
		rc = -1;
	unsetenv("CACHEMAX_RUN_DIR");
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
	if (system(cmd) != 0)
		rc = -1;
	free(f);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * control_resolve_path
 * ------------------------------------------------------------------------------------------- */

static void expect_resolve(const char *in, const char *want)
{
	char out[PATH_MAX];
	memset(out, 'Z', sizeof(out));
	out[sizeof(out) - 1] = '\0';
	assert_int_equal(control_resolve_path(in, out, sizeof(out)), 0);
	if (strcmp(out, want))
		fail_msg("control_resolve_path(\"%s\") = \"%s\", expected \"%s\"", in, out, want);
}

static void test_resolve_lexical(void **state)
{
	struct fixture *f = *state;
	char want[PATH_MAX], parent[PATH_MAX], tmp[PATH_MAX];

	make_dir(f, "real");
	make_dir(f, "real/sub");
	make_dir(f, "with space");
	assert_int_equal(chdir(f->base), 0);

	/* Relative paths are taken from the cwd. */
	pathf(want, sizeof(want), "%s/real", f->base);
	expect_resolve("real", want);
	expect_resolve("real/", want);                 /* trailing slash */
	expect_resolve("real///", want);
	expect_resolve("./real/./sub/..", want);       /* "." and ".." */
	expect_resolve("real/sub/../../real", want);
	pathf(tmp, sizeof(tmp), "%s//real", f->base);   /* "//" inside an absolute path */
	expect_resolve(tmp, want);
	pathf(want, sizeof(want), "%s/real/sub", f->base);
	expect_resolve("real//sub", want);
	expect_resolve("real/sub/.", want);
	pathf(want, sizeof(want), "%s/with space", f->base);
	expect_resolve("with space", want);
	expect_resolve("./with space/", want);

	expect_resolve(".", f->base);
	expect_resolve("./", f->base);
	pathf(tmp, sizeof(tmp), "%s/..", f->base);
	assert_non_null(realpath(tmp, parent));
	expect_resolve("..", parent);
	expect_resolve("../", parent);

	/* Absolute. */
	expect_resolve("/", "/");
	expect_resolve("//", "/");
	expect_resolve("///", "/");
	expect_resolve("/.", "/");
	expect_resolve("/..", "/");
	expect_resolve("/../..", "/");
	expect_resolve("/./tmp/../", "/");
	pathf(tmp, sizeof(tmp), "%s/real/sub/../../", f->base);
	expect_resolve(tmp, f->base);

	/* Invalid input. */
	{
		char out[16] = "unchanged";
		assert_int_equal(control_resolve_path("", out, sizeof(out)), -EINVAL);
		assert_int_equal(control_resolve_path(NULL, out, sizeof(out)), -EINVAL);
		assert_string_equal(out, "unchanged");
	}
}

static void test_resolve_symlinks(void **state)
{
	struct fixture *f = *state;
	char want[PATH_MAX], in[PATH_MAX];

	make_dir(f, "real");
	make_dir(f, "real/sub");
	make_file(f, "real/file");
	make_link(f, "real", "link");                  /* relative target */
	pathf(want, sizeof(want), "%s/real/sub", f->base);
	make_link(f, want, "abs-link");                /* absolute target */
	make_link(f, "link", "link2");                 /* chain */
	assert_int_equal(chdir(f->base), 0);

	pathf(want, sizeof(want), "%s/real", f->base);
	expect_resolve("link", want);
	expect_resolve("link/", want);
	expect_resolve("link2", want);
	pathf(in, sizeof(in), "%s/link", f->base);
	expect_resolve(in, want);
	pathf(want, sizeof(want), "%s/real/sub", f->base);
	expect_resolve("link/sub", want);              /* symlinked directory component */
	expect_resolve("link2/./sub/", want);
	expect_resolve("abs-link", want);
	pathf(want, sizeof(want), "%s/real/file", f->base);
	expect_resolve("link/file", want);
	/* A non-existent last component below a symlinked directory: parent resolved. */
	pathf(want, sizeof(want), "%s/real/new name", f->base);
	expect_resolve("link/new name", want);
	expect_resolve("link2/new name/", want);
	pathf(want, sizeof(want), "%s/real/sub/x", f->base);
	expect_resolve("abs-link/x", want);
	/* Parent resolving to the root: no doubled slash. */
	make_link(f, "/", "rootlink");
	expect_resolve("rootlink/cm-unit-test-does-not-exist", "/cm-unit-test-does-not-exist");
	expect_resolve("rootlink", "/");
}

static void test_resolve_nonexistent(void **state)
{
	struct fixture *f = *state;
	char want[PATH_MAX], in[PATH_MAX];

	make_dir(f, "real");
	assert_int_equal(chdir(f->base), 0);

	/* Missing last component: lexical name below the resolved parent. */
	pathf(want, sizeof(want), "%s/nope", f->base);
	expect_resolve("nope", want);
	expect_resolve("./nope/", want);
	expect_resolve("real/../nope", want);
	pathf(want, sizeof(want), "%s/real/nope", f->base);
	pathf(in, sizeof(in), "%s//real/./nope", f->base);
	expect_resolve(in, want);
	/* Missing parent too: purely lexical. */
	pathf(want, sizeof(want), "%s/nope1/nope2", f->base);
	expect_resolve("nope1/nope2", want);
	expect_resolve("nope1/x/../nope2/.", want);
	/* Right below the root. */
	expect_resolve("/cm-unit-test-does-not-exist", "/cm-unit-test-does-not-exist");
	expect_resolve("/cm-unit-test-does-not-exist/a/", "/cm-unit-test-does-not-exist/a");
	/* A regular file used as a directory. */
	make_file(f, "file");
	pathf(want, sizeof(want), "%s/file/x", f->base);
	expect_resolve("file/x", want);
}

/* As documented in control.h: where realpath() fails, the parent is resolved and the last
 * component appended as typed, so a dangling symlink as last component keeps its own name; if
 * the parent cannot be resolved either, the lexical form is returned. */
static void test_resolve_dangling_symlink(void **state)
{
	struct fixture *f = *state;
	char want[PATH_MAX];

	make_dir(f, "real");
	make_link(f, "real/gone", "dangling");
	make_link(f, "real", "link");
	assert_int_equal(chdir(f->base), 0);
	pathf(want, sizeof(want), "%s/dangling", f->base);
	expect_resolve("dangling", want);
	pathf(want, sizeof(want), "%s/link/nope/deeper", f->base);
	expect_resolve("link/nope/deeper", want);
}

/* A result that does not fit must not be returned as a silently truncated path (0 and a
 * different directory): neither into the caller's buffer, nor into the internal 2*PATH_MAX
 * copy of the input. */
static void test_resolve_truncation(void **state)
{
	char small[8], big[PATH_MAX], *in;
	size_t n;
	int rc, bad = 0;

	rc = control_resolve_path("/proc/self", small, sizeof(small));
	if (rc == 0) {
		print_error("\"/proc/self\" into 8 bytes: 0 \"%s\"\n", small);
		bad++;
	}
	rc = control_resolve_path("/cm-unit-test-long-name", small, sizeof(small));
	if (rc == 0) {
		print_error("\"/cm-unit-test-long-name\" into 8 bytes: 0 \"%s\"\n", small);
		bad++;
	}
	/* "/tmp/" + 2000 x "a/../" + "target" (10012 bytes) is "/tmp/target" or an error. */
	in = malloc(5 + 2000 * 5 + 7);
	assert_non_null(in);
	memcpy(in, "/tmp/", 5);
	n = 5;
	for (int i = 0; i < 2000; i++, n += 5)
		memcpy(in + n, "a/../", 5);
	memcpy(in + n, "target", 7);
	rc = control_resolve_path(in, big, sizeof(big));
	free(in);
	if (rc == 0 && strcmp(big, "/tmp/target")) {
		print_error("10012-byte input \"/tmp/(a/../)x2000target\": 0 \"%s\"\n", big);
		bad++;
	}
	assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------------------------------------
 * State records
 * ------------------------------------------------------------------------------------------- */

static void set_run_dir(const struct fixture *f, char *run, size_t size)
{
	pathf(run, size, "%s/run dir", f->base);  /* with a space, not created yet */
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", run, 1), 0);
}

static void fill_state(struct control_state *st, const char *dir, unsigned n)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->dir, sizeof(st->dir), "%s", dir);
	snprintf(st->cache, sizeof(st->cache), "/var/cache/cm %u/with space", n);
	snprintf(st->log, sizeof(st->log), "/run/cachemax/%u.log", n);
	st->daemon_pid = (pid_t)(1000 + n);
	st->watchdog_pid = (pid_t)(2000 + n);
	st->started = 1700000000LL + n;
	st->first_started = -5 - (int64_t)n;
	st->restarts = 3 + n;
	st->passthrough = n % 2 == 0;
	snprintf(st->passthrough_why, sizeof(st->passthrough_why),
	         "reason %u: key=value, with spaces", n);
	st->threads = 4 + n;
	snprintf(st->transport, sizeof(st->transport), "%s", n % 2 ? "io_uring" : "dev_fuse");
	if (n % 2 == 0)
		snprintf(st->transport_why, sizeof(st->transport_why), "io_uring setup failed: %u", n);
}

static void assert_state_equal(const struct control_state *a, const struct control_state *b)
{
	assert_string_equal(a->dir, b->dir);
	assert_string_equal(a->transport, b->transport);
	assert_string_equal(a->transport_why, b->transport_why);
	assert_string_equal(a->cache, b->cache);
	assert_string_equal(a->log, b->log);
	assert_int_equal(a->daemon_pid, b->daemon_pid);
	assert_int_equal(a->watchdog_pid, b->watchdog_pid);
	assert_int_equal(a->started, b->started);
	assert_int_equal(a->first_started, b->first_started);
	assert_int_equal(a->restarts, b->restarts);
	assert_int_equal(a->passthrough, b->passthrough);
	assert_string_equal(a->passthrough_why, b->passthrough_why);
	assert_int_equal(a->threads, b->threads);
}

static void test_run_dir_env(void **state)
{
	assert_int_equal(unsetenv("CACHEMAX_RUN_DIR"), 0);
	assert_string_equal(control_run_dir(), "/run/cachemax");
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", "", 1), 0);
	assert_string_equal(control_run_dir(), "/run/cachemax");
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", "/some/where", 1), 0);
	assert_string_equal(control_run_dir(), "/some/where");
}

static void test_state_paths(void **state)
{
	char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], l[PATH_MAX];
	const char *base;
	size_t blen;

	assert_int_equal(setenv("CACHEMAX_RUN_DIR", "/r", 1), 0);
	control_state_path("/srv/data", a, sizeof(a));
	control_state_path("/srv/data", b, sizeof(b));
	control_state_path("/srv/data2", c, sizeof(c));
	control_log_path("/srv/data", l, sizeof(l));
	assert_string_equal(a, b);          /* deterministic */
	assert_string_not_equal(a, c);      /* distinct directories, distinct files */
	/* "/r/" + 16 lower-case hex digits + ".state" */
	assert_int_equal(strlen(a), 3 + 16 + 6);
	assert_memory_equal(a, "/r/", 3);
	for (int i = 3; i < 19; i++)
		assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
	assert_string_equal(a + 19, ".state");
	/* The log file shares the hash. */
	assert_int_equal(strlen(l), 3 + 16 + 4);
	assert_memory_equal(l, a, 19);
	assert_string_equal(l + 19, ".log");
	/* Follows the environment. */
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", "/other/run", 1), 0);
	control_state_path("/srv/data", b, sizeof(b));
	base = strrchr(a, '/');
	blen = strlen("/other/run");
	assert_memory_equal(b, "/other/run", blen);
	assert_string_equal(b + blen, base);
	/* Hash differs for paths that differ only at the end or by a trailing slash. */
	control_state_path("/srv/data/", c, sizeof(c));
	assert_string_not_equal(b, c);
}

static void test_state_round_trip(void **state)
{
	struct fixture *f = *state;
	char run[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8], dir[PATH_MAX];
	struct control_state in, out;
	struct stat st;

	set_run_dir(f, run, sizeof(run));
	pathf(dir, sizeof(dir), "%s/my data/dir with  spaces ", f->base);
	fill_state(&in, dir, 2);
	assert_int_equal(control_state_write(&in), 0);  /* creates the run directory */
	assert_int_equal(stat(run, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	control_state_path(dir, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	pathf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(stat(tmp, &st), -1);           /* no temporary left behind */
	memset(&out, 0x5C, sizeof(out));
	assert_int_equal(control_state_read(path, &out), 0);
	assert_state_equal(&out, &in);

	/* Overwrite in place. */
	fill_state(&in, dir, 7);
	in.passthrough = false;
	in.passthrough_why[0] = '\0';
	assert_int_equal(control_state_write(&in), 0);
	assert_int_equal(control_state_read(path, &out), 0);
	assert_state_equal(&out, &in);

	/* Extreme values. */
	in.started = INT64_MAX;
	in.first_started = INT64_MIN;
	in.restarts = UINT32_MAX;
	in.threads = 0;
	in.daemon_pid = 0;
	in.watchdog_pid = -1;
	assert_int_equal(control_state_write(&in), 0);
	assert_int_equal(control_state_read(path, &out), 0);
	assert_state_equal(&out, &in);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static void test_state_read_errors(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	struct control_state out, sentinel;

	memset(&out, 0x77, sizeof(out));
	memset(&sentinel, 0x77, sizeof(sentinel));
	pathf(path, sizeof(path), "%s/missing.state", f->base);
	assert_int_equal(control_state_read(path, &out), -ENOENT);
	assert_memory_equal(&out, &sentinel, sizeof(out));

	/* No dir= line. */
	pathf(path, sizeof(path), "%s/nodir.state", f->base);
	write_text(path, "cache=/c\ndaemon_pid=5\n");
	assert_int_equal(control_state_read(path, &out), -EINVAL);
	assert_memory_equal(&out, &sentinel, sizeof(out));
	/* Empty file. */
	write_text(path, "");
	assert_int_equal(control_state_read(path, &out), -EINVAL);
	/* dir= present but empty. */
	write_text(path, "dir=\n");
	assert_int_equal(control_state_read(path, &out), -EINVAL);

	/* Unknown keys and junk lines are ignored; a missing final newline is fine. */
	pathf(path, sizeof(path), "%s/extra.state", f->base);
	write_text(path, "# comment\nfuture_key=1\njunk line\ndir=/d=x\ndaemon_pid=42\nthreads=3");
	assert_int_equal(control_state_read(path, &out), 0);
	assert_string_equal(out.dir, "/d=x");
	assert_int_equal(out.daemon_pid, 42);
	assert_int_equal(out.threads, 3);
	assert_string_equal(out.cache, "");
	assert_int_equal(out.watchdog_pid, 0);
	assert_false(out.passthrough);
	/* A record written before the transport existed: that daemon used /dev/fuse. */
	assert_string_equal(out.transport, "dev_fuse");
	assert_string_equal(out.transport_why, "");

	/* A directory is not a state file. */
	assert_true(control_state_read(f->base, &out) < 0);
}

static void test_state_write_error(void **state)
{
	struct fixture *f = *state;
	char run[PATH_MAX];
	struct control_state in;

	pathf(run, sizeof(run), "%s/no/such/parent", f->base);
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", run, 1), 0);
	fill_state(&in, "/x", 1);
	assert_int_equal(control_state_write(&in), -ENOENT);
	/* The run dir is a regular file. */
	pathf(run, sizeof(run), "%s/plainfile", f->base);
	make_file(f, "plainfile");
	assert_int_equal(setenv("CACHEMAX_RUN_DIR", run, 1), 0);
	assert_true(control_state_write(&in) < 0);
}

struct visit {
	int count;
	int stop_after;
	char dirs[8][PATH_MAX];
};

static int collect(const struct control_state *st, void *arg)
{
	struct visit *v = arg;
	if (v->count < 8)
		snprintf(v->dirs[v->count], sizeof(v->dirs[0]), "%s", st->dir);
	v->count++;
	return v->stop_after && v->count >= v->stop_after;
}

static bool visited(const struct visit *v, const char *dir)
{
	for (int i = 0; i < v->count && i < 8; i++)
		if (!strcmp(v->dirs[i], dir))
			return true;
	return false;
}

static void test_state_each_and_remove(void **state)
{
	struct fixture *f = *state;
	char run[PATH_MAX], p[PATH_MAX + 32];
	static const char *const dirs[3] = { "/srv/a", "/srv/b with space", "/home/u/c" };
	struct control_state st;
	struct visit v;

	set_run_dir(f, run, sizeof(run));
	/* No run directory yet: nothing to visit, no error. */
	memset(&v, 0, sizeof(v));
	assert_int_equal(control_state_each(collect, &v), 0);
	assert_int_equal(v.count, 0);

	for (int i = 0; i < 3; i++) {
		fill_state(&st, dirs[i], (unsigned)i);
		assert_int_equal(control_state_write(&st), 0);
	}
	/* Files that are not (valid) records are skipped. */
	pathf(p, sizeof(p), "%s/notes.txt", run);
	write_text(p, "dir=/not/a/record\n");
	pathf(p, sizeof(p), "%s/x.state.tmp", run);
	write_text(p, "dir=/half/written\n");
	pathf(p, sizeof(p), "%s/.state", run);
	write_text(p, "dir=/hidden/no/name\n");
	pathf(p, sizeof(p), "%s/broken.state", run);
	write_text(p, "cache=/no/dir\n");

	memset(&v, 0, sizeof(v));
	assert_int_equal(control_state_each(collect, &v), 0);
	assert_int_equal(v.count, 3);
	for (int i = 0; i < 3; i++)
		assert_true(visited(&v, dirs[i]));

	/* Early stop. */
	memset(&v, 0, sizeof(v));
	v.stop_after = 1;
	assert_int_equal(control_state_each(collect, &v), 0);
	assert_int_equal(v.count, 1);

	/* Remove one; removing again is not an error. */
	assert_int_equal(control_state_remove(dirs[1]), 0);
	control_state_path(dirs[1], p, sizeof(p));
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(control_state_remove(dirs[1]), 0);
	assert_int_equal(control_state_remove("/never/written"), 0);
	memset(&v, 0, sizeof(v));
	assert_int_equal(control_state_each(collect, &v), 0);
	assert_int_equal(v.count, 2);
	assert_true(visited(&v, dirs[0]));
	assert_false(visited(&v, dirs[1]));
	assert_true(visited(&v, dirs[2]));
	/* The others are intact. */
	control_state_path(dirs[2], p, sizeof(p));
	assert_int_equal(control_state_read(p, &st), 0);
	assert_string_equal(st.dir, dirs[2]);
	assert_int_equal(st.daemon_pid, 1002);
}

/* A directory name may legally contain a newline; the line-based record cannot hold it and
 * the rest of the name is read as another key (here it overrides `cache`). */
static void test_state_newline_in_dir(void **state)
{
	struct fixture *f = *state;
	char run[PATH_MAX], path[PATH_MAX];
	struct control_state in, out;

	set_run_dir(f, run, sizeof(run));
	fill_state(&in, "/srv/odd\ncache=/elsewhere", 1);
	assert_int_equal(control_state_write(&in), 0);
	control_state_path(in.dir, path, sizeof(path));
	assert_int_equal(control_state_read(path, &out), 0);
	assert_state_equal(&out, &in);
}

/* ---------------------------------------------------------------------------------------------
 * Mounts
 * ------------------------------------------------------------------------------------------- */

static void test_mount_root(void **state)
{
	char type[256], small[4];

	memset(type, 0, sizeof(type));
	assert_int_equal(control_mount_type("/", type, sizeof(type)), 0);
	assert_true(strlen(type) > 0);
	for (const char *c = type; *c; c++)
		assert_true(isgraph((unsigned char)*c));
	assert_string_not_equal(type, "-");
	assert_false(control_is_accelerated("/"));
	/* /proc is a mount of its own here. */
	if (control_mount_type("/proc", type, sizeof(type)) == 0)
		assert_string_equal(type, "proc");
	/* Truncation to the caller's buffer, always terminated. */
	assert_int_equal(control_mount_type("/", small, sizeof(small)), 0);
	assert_true(strlen(small) < sizeof(small));

	/* Not a mount point. */
	strcpy(type, "unchanged");
	assert_int_equal(control_mount_type("/cm-unit-test-does-not-exist", type, sizeof(type)), -ENOENT);
	assert_string_equal(type, "unchanged");
	assert_false(control_is_accelerated("/cm-unit-test-does-not-exist"));
	/* Exact match only: no prefix, no trailing slash. */
	assert_int_equal(control_mount_type("/pro", type, sizeof(type)), -ENOENT);
	assert_int_equal(control_mount_type("/proc/", type, sizeof(type)), -ENOENT);
	assert_int_equal(control_mount_type("", type, sizeof(type)), -ENOENT);
}

static int do_mount(struct fixture *f, const char *rel, const char *type, const char *opts,
                    char *path, size_t size)
{
	pathf(path, size, "%s/%s", f->base, rel);
	if (access(path, F_OK) != 0)
		assert_int_equal(mkdir(path, 0755), 0);
	if (mount("cmunit", path, type, 0, opts) < 0)
		return -errno;
	assert_true(f->mount_count < 4);
	snprintf(f->mounts[f->mount_count++], sizeof(f->mounts[0]), "%s", path);
	return 0;
}

static void test_mount_escaped_and_stacked(void **state)
{
	struct fixture *f = *state;
	char mnt[PATH_MAX], bs[PATH_MAX], type[64];

	if (geteuid() != 0 || do_mount(f, "mnt with space\tand tab", "tmpfs", "size=64k", mnt,
	                               sizeof(mnt)) < 0)
		skip();
	/* mountinfo writes the space and tab as \040 and \011. */
	assert_int_equal(control_mount_type(mnt, type, sizeof(type)), 0);
	assert_string_equal(type, "tmpfs");
	assert_false(control_is_accelerated(mnt));

	/* Stacked: the last (top) mount wins. */
	assert_int_equal(do_mount(f, "mnt with space\tand tab", "ramfs", NULL, mnt, sizeof(mnt)), 0);
	assert_int_equal(control_mount_type(mnt, type, sizeof(type)), 0);
	assert_string_equal(type, "ramfs");
	assert_int_equal(umount2(mnt, 0), 0);
	f->mount_count--;
	assert_int_equal(control_mount_type(mnt, type, sizeof(type)), 0);
	assert_string_equal(type, "tmpfs");
	assert_int_equal(umount2(mnt, 0), 0);
	f->mount_count--;
	assert_int_equal(control_mount_type(mnt, type, sizeof(type)), -ENOENT);

	/* Backslash is written as \134. */
	assert_int_equal(do_mount(f, "back\\slash", "tmpfs", "size=64k", bs, sizeof(bs)), 0);
	assert_int_equal(control_mount_type(bs, type, sizeof(type)), 0);
	assert_string_equal(type, "tmpfs");
}

/* Mount a FUSE file system of type fuse.cachemax at base/rel and let its server die at once:
 * stat() then fails with ENOTCONN (realpath() of the mount point itself still succeeds, as it
 * only readlink()s each component; below it, realpath() fails). Skips without root/dev/fuse. */
static void mount_dead_fuse(struct fixture *f, const char *rel, char *mnt, size_t size)
{
	char opts[128];
	int fd;

	if (geteuid() != 0)
		skip();
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		skip();
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
	if (do_mount(f, rel, "fuse.cachemax", opts, mnt, size) < 0) {
		close(fd);
		skip();
	}
	close(fd);  /* the server dies: the connection is aborted */
}

static void test_dead_fuse_mount(void **state)
{
	struct fixture *f = *state;
	char mnt[PATH_MAX], type[64], out[PATH_MAX], rel[PATH_MAX];
	struct stat st;

	mount_dead_fuse(f, "dead mnt", mnt, sizeof(mnt));
	assert_int_equal(stat(mnt, &st), -1);
	assert_int_equal(errno, ENOTCONN);

	assert_int_equal(control_mount_type(mnt, type, sizeof(type)), 0);
	assert_string_equal(type, "fuse.cachemax");
	assert_true(control_is_accelerated(mnt));

	/* The mount point resolves to itself, by any spelling. */
	assert_int_equal(control_resolve_path(mnt, out, sizeof(out)), 0);
	assert_string_equal(out, mnt);
	assert_int_equal(chdir(f->base), 0);
	assert_int_equal(control_resolve_path("./dead mnt/", out, sizeof(out)), 0);
	assert_string_equal(out, mnt);
	pathf(rel, sizeof(rel), "%s/x/../dead mnt", f->base);
	assert_int_equal(control_resolve_path(rel, out, sizeof(out)), 0);
	assert_string_equal(out, mnt);
}

/* The dead mount point reached through a symlink (`cachemax stop ~/data-link` after a crash):
 * realpath() only readlink()s each component, which succeeds on a dead mount's root. */
static void test_dead_fuse_mount_via_symlink(void **state)
{
	struct fixture *f = *state;
	char mnt[PATH_MAX], link[PATH_MAX], out[PATH_MAX], want[PATH_MAX];

	mount_dead_fuse(f, "dead mnt", mnt, sizeof(mnt));
	make_link(f, "dead mnt", "alias");
	pathf(link, sizeof(link), "%s/alias", f->base);
	assert_int_equal(control_resolve_path(link, out, sizeof(out)), 0);
	if (strcmp(out, mnt))
		fail_msg("control_resolve_path(\"%s\") = \"%s\", expected \"%s\"", link, out, mnt);
	assert_true(control_is_accelerated(out));
	/* Below the dead mount point: realpath() fails with ENOTCONN, the parent is resolved. */
	pathf(link, sizeof(link), "%s/alias/sub", f->base);
	pathf(want, sizeof(want), "%s/sub", mnt);
	assert_int_equal(control_resolve_path(link, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	pathf(link, sizeof(link), "%s/alias/sub/deeper/", f->base);
	pathf(want, sizeof(want), "%s/alias/sub/deeper", f->base);  /* nothing resolvable: lexical */
	assert_int_equal(control_resolve_path(link, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

/* ---------------------------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_pid_alive(void **state)
{
	pid_t child;
	siginfo_t si;

	assert_true(control_pid_alive(getpid()));
	assert_true(control_pid_alive(1));
	assert_false(control_pid_alive(0));
	assert_false(control_pid_alive(-1));

	/* A comm with ") Z " in it must not fool the parser. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		prctl(PR_SET_NAME, "x) Z (y", 0, 0, 0);
		for (;;)
			pause();
	}
	for (int i = 0; i < 200; i++) {  /* until the name is set */
		char p[64], comm[32] = "";
		FILE *fp;
		snprintf(p, sizeof(p), "/proc/%d/comm", (int)child);
		fp = fopen(p, "r");
		if (fp) {
			if (!fgets(comm, sizeof(comm), fp))
				comm[0] = '\0';
			fclose(fp);
		}
		if (!strncmp(comm, "x) Z (y", 7))
			break;
		sleep_ms(10);
	}
	assert_true(control_pid_alive(child));

	/* Zombie: exited, not reaped. */
	assert_int_equal(kill(child, SIGKILL), 0);
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
	assert_false(control_pid_alive(child));
	/* Reaped: gone. */
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_false(control_pid_alive(child));
}

/* Wait until /proc/PID/cwd reads `dir`. */
static void wait_cwd(pid_t pid, const char *dir)
{
	for (int i = 0; i < 500; i++) {
		char p[64], target[PATH_MAX];
		ssize_t len;
		snprintf(p, sizeof(p), "/proc/%d/cwd", (int)pid);
		len = readlink(p, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			if (!strcmp(target, dir))
				return;
		}
		sleep_ms(10);
	}
}

static pid_t child_in(const char *dir, int fd_to_keep)
{
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		(void)fd_to_keep;
		if (chdir(dir) != 0)
			_exit(1);
		for (;;)
			pause();
	}
	wait_cwd(child, dir);
	return child;
}

/* Holders are found by mount identity: a process whose cwd is on the mount counts; a process
 * holding the directory the mount covers (as the daemon does) does not; our own pid never. */
static void test_holders(void **state)
{
	struct fixture *f = *state;
	char held[PATH_MAX], buf[512], want[64];
	pid_t under, covered;
	int n;

	make_dir(f, "held");
	pathf(held, sizeof(held), "%s/held", f->base);
	/* Not a mount point: an error, not "nobody". */
	assert_int_equal(control_holders(held, buf, sizeof(buf)), -ENOENT);
	if (geteuid() != 0)
		skip();
	/* A process in the directory before the mount holds the covered directory, not the mount. */
	covered = child_in(held, -1);
	assert_int_equal(do_mount(f, "held", "tmpfs", "size=64k", held, sizeof(held)), 0);
	assert_int_equal(control_holders(held, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");

	under = child_in(held, -1);
	n = control_holders(held, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%d (", (int)under);
	if (n != 1 || !strstr(buf, want))
		fail_msg("holders of %s: %d \"%s\", expected only pid %d", held, n, buf, (int)under);
	/* Our own cwd on the mount is never reported. */
	assert_int_equal(chdir(held), 0);
	assert_int_equal(control_holders(held, buf, sizeof(buf)), 1);
	assert_int_equal(chdir(f->base), 0);
	/* A tiny buffer still counts and stays terminated. */
	{
		char tiny[4];
		assert_int_equal(control_holders(held, tiny, sizeof(tiny)), 1);
		assert_true(strlen(tiny) < sizeof(tiny));
	}
	assert_int_equal(kill(under, SIGKILL), 0);
	assert_int_equal(waitpid(under, NULL, 0), under);
	assert_int_equal(control_holders(held, buf, sizeof(buf)), 0);

	/* An open file and a mapping count too (the process has neither cwd nor fd left: only the
	 * mapping holds the mount in the second case). */
	{
		char file[PATH_MAX];
		int fd;
		pathf(file, sizeof(file), "%s/f", held);
		fd = open(file, O_RDWR | O_CREAT, 0644);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 4096), 0);
		under = fork();
		assert_true(under >= 0);
		if (under == 0) {
			void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED || chdir("/") != 0)
				_exit(1);
			close(fd);
			for (;;)
				pause();
		}
		close(fd);
		for (int i = 0; i < 200 && control_holders(held, buf, sizeof(buf)) != 1; i++)
			sleep_ms(10);
		snprintf(want, sizeof(want), "%d (", (int)under);
		if (!strstr(buf, want))
			fail_msg("a process mapping %s is not a holder: \"%s\"", file, buf);
		assert_int_equal(kill(under, SIGKILL), 0);
		assert_int_equal(waitpid(under, NULL, 0), under);
	}
	assert_int_equal(kill(covered, SIGKILL), 0);
	assert_int_equal(waitpid(covered, NULL, 0), covered);
}

/* The request line: a verb word, strict relative paths, framing. */
static void test_proto_parse(void **state)
{
	struct control_proto_request r;
	static char big[CONTROL_PROTO_LINE_MAX + 8];
	static const char *const bad_args[] = {
		"evict /etc/passwd\n", "evict ..\n", "evict ../x\n", "evict a/../../x\n", "evict a/..\n",
		"evict .\n", "evict ./a\n", "evict a//b\n", "evict \n", "warm /x\n",
	};

	assert_int_equal(control_proto_parse("ping\n", 5, &r), 5);
	assert_string_equal(r.verb, "ping");
	assert_string_equal(r.arg, "");
	assert_false(r.has_arg);
	assert_int_equal(control_proto_parse("stats\r\nmore", 11, &r), 7);
	assert_string_equal(r.verb, "stats");
	assert_int_equal(control_proto_parse("evict a/b c/.d..\n", 17, &r), 17);
	assert_string_equal(r.verb, "evict");
	assert_string_equal(r.arg, "a/b c/.d..");
	assert_true(r.has_arg);
	/* Any word parses; the table (control_verbs.c) decides whether it is a verb. */
	assert_int_equal(control_proto_parse("warm x\n", 7, &r), 7);
	assert_string_equal(r.verb, "warm");
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++)
		assert_int_equal(control_proto_parse(bad_args[i], strlen(bad_args[i]), &r), -EINVAL);
	assert_int_equal(control_proto_parse("evict a\0b\n", 10, &r), -EINVAL);
	assert_int_equal(control_proto_parse("Ping\n", 5, &r), -ENOSYS);
	assert_int_equal(control_proto_parse("-x\n", 3, &r), -ENOSYS);
	assert_int_equal(control_proto_parse("averyveryverylongword\n", 22, &r), -ENOSYS);
	assert_int_equal(control_proto_parse("\n", 1, &r), -ENOSYS);
	assert_int_equal(control_proto_parse(" x\n", 3, &r), -ENOSYS);
	/* Framing: every prefix of a line is incomplete; no newline within the limit is too long. */
	for (size_t n = 0; n < 5; n++)
		assert_int_equal(control_proto_parse("stats\n", n, &r), -EAGAIN);
	memset(big, 'a', sizeof(big));
	assert_int_equal(control_proto_parse(big, CONTROL_PROTO_LINE_MAX - 1, &r), -EAGAIN);
	assert_int_equal(control_proto_parse(big, CONTROL_PROTO_LINE_MAX, &r), -EMSGSIZE);
	assert_int_equal(control_proto_parse(big, sizeof(big), &r), -EMSGSIZE);
	/* The longest argument that fits, and one more. */
	memcpy(big, "evict ", 6);
	big[6 + CONTROL_PROTO_ARG_MAX - 1] = '\n';
	assert_int_equal(control_proto_parse(big, 6 + CONTROL_PROTO_ARG_MAX, &r), 6 + CONTROL_PROTO_ARG_MAX);
	assert_int_equal(strlen(r.arg), CONTROL_PROTO_ARG_MAX - 1);
	big[6 + CONTROL_PROTO_ARG_MAX - 1] = 'a';
	big[6 + CONTROL_PROTO_ARG_MAX] = '\n';
	assert_int_equal(control_proto_parse(big, 7 + CONTROL_PROTO_ARG_MAX, &r), -EINVAL);
}

/* The verb table: who may call what, and every verb has a handler and help. */
static void test_verbs_table(void **state)
{
	size_t count;
	const struct control_verb *v = control_verbs(&count);

	assert_true(count >= 5);
	for (size_t i = 0; i < count; i++) {
		assert_non_null(v[i].handler);
		assert_true(v[i].help && *v[i].help);
		assert_ptr_equal(control_verb_find(v[i].name), &v[i]);
		assert_true(strlen(v[i].name) < CONTROL_PROTO_VERB_MAX);
	}
	assert_int_equal(control_verb_find("ping")->access, CONTROL_ACCESS_PUBLIC);
	assert_int_equal(control_verb_find("stats")->access, CONTROL_ACCESS_PUBLIC);
	assert_int_equal(control_verb_find("evict")->access, CONTROL_ACCESS_ROOT);
	assert_int_equal(control_verb_find("warm")->access, CONTROL_ACCESS_ROOT);
	assert_int_equal(control_verb_find("verify")->access, CONTROL_ACCESS_ROOT);
	assert_int_equal(control_verb_find("warm")->arg, CONTROL_ARG_REQUIRED);
	assert_int_equal(control_verb_find("evict")->arg, CONTROL_ARG_OPTIONAL);
	assert_int_equal(control_verb_find("stats")->arg, CONTROL_ARG_NONE);
	assert_true(control_verb_find("verify")->slow);
	assert_null(control_verb_find("stop"));
	assert_null(control_verb_find(""));
}

/* Records are root's and not writable by others, written 0644 whatever the umask. */
static void test_state_ownership(void **state)
{
	struct fixture *f = *state;
	char run[PATH_MAX], path[PATH_MAX], why[CONTROL_WHY_MAX];
	struct control_state in, out;
	struct stat st;
	mode_t old = umask(0);

	if (geteuid() != 0) {
		umask(old);
		skip();
	}
	set_run_dir(f, run, sizeof(run));
	fill_state(&in, "/srv/own", 1);
	assert_int_equal(control_state_write(&in), 0);
	umask(old);
	control_state_path("/srv/own", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, CONTROL_STATE_MODE);
	assert_int_equal(control_state_read(path, &out), 0);
	assert_int_equal(control_run_dir_check(why, sizeof(why)), 0);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(control_state_read(path, &out), -EPERM);
	assert_int_equal(control_run_dir_check(why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, path));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(control_state_read(path, &out), -EPERM);
	assert_int_equal(control_run_dir_check(why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "uid 65534"));
	assert_int_equal(chown(path, 0, 0), 0);
	/* A symlink in place of a record is not followed. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_true(control_state_read(path, &out) < 0);
}

/* Trusted paths: root's all the way, sticky parents allowed, the last component strict. */
static void test_trust_path(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX], q[PATH_MAX], why[CONTROL_WHY_MAX];

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(f->base, 0755), 0);
	make_dir(f, "a");
	make_dir(f, "a/cache");
	pathf(p, sizeof(p), "%s/a/cache", f->base);
	assert_int_equal(chmod(p, 0700), 0);
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), 0);
	pathf(q, sizeof(q), "%s/a/cache/not/yet", f->base);   /* checked as far as it exists */
	assert_int_equal(control_trust_path(q, "the cache directory", why, sizeof(why)), 0);
	assert_int_equal(chmod(p, 0770), 0);
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "its group"));
	assert_int_equal(chmod(p, 01777), 0);  /* sticky does not help the directory itself */
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), -EPERM);
	assert_int_equal(chmod(p, 0755), 0);
	pathf(q, sizeof(q), "%s/a", f->base);
	assert_int_equal(chmod(q, 0777), 0);
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "every user"));
	assert_int_equal(chmod(q, 01777), 0);  /* sticky above a root-owned directory: fine */
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), 0);
	assert_int_equal(chown(q, 65534, 65534), 0);
	assert_int_equal(control_trust_path(p, "the cache directory", why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "uid 65534"));
	assert_int_equal(chown(q, 0, 0), 0);
	assert_int_equal(chmod(q, 0755), 0);
	make_link(f, "a/cache", "link");
	pathf(q, sizeof(q), "%s/link", f->base);
	assert_int_equal(control_trust_path(q, "the cache directory", why, sizeof(why)), -ELOOP);
	assert_int_equal(control_trust_path("relative", "the cache directory", why, sizeof(why)), -EINVAL);
}

static void test_pseudo_and_submounts(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX], list[512], why[CONTROL_WHY_MAX];

	assert_int_equal(control_pseudo_dir("/", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir("/proc", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir("/proc/sys/vm", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir("/sys/kernel", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir("/run", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir("/dev", why, sizeof(why)), -EPERM);
	assert_int_equal(control_pseudo_dir(f->base, why, sizeof(why)), 0);
	assert_int_equal(control_submounts(f->base, list, sizeof(list)), 0);
	assert_string_equal(list, "");
	if (geteuid() != 0)
		skip();
	make_dir(f, "m");
	pathf(p, sizeof(p), "%s/m", f->base);
	assert_int_equal(mount("cm-unit", p, "tmpfs", 0, "size=64k"), 0);
	pathf(f->mounts[f->mount_count++], sizeof(f->mounts[0]), "%s", p);
	assert_int_equal(control_submounts(f->base, list, sizeof(list)), 1);
	assert_non_null(strstr(list, p));
	assert_non_null(strstr(list, "(tmpfs)"));
	assert_int_equal(control_submounts(p, list, sizeof(list)), 0);  /* a mount AT dir is not below it */
}

/* The machine-wide enable_uring record, against files standing in for the parameter. */
static void test_uring_record(void **state)
{
	struct fixture *f = *state;
	char param[PATH_MAX], record[PATH_MAX], value[4] = "";
	bool on, turned_on, restored;
	pid_t child;
	FILE *fp;

	if (geteuid() != 0)
		skip();  /* the record must be root's */
	pathf(param, sizeof(param), "%s/enable_uring", f->base);
	pathf(record, sizeof(record), "%s/record", f->base);
	setenv("CACHEMAX_URING_PARAM", param, 1);
	setenv("CACHEMAX_URING_RECORD", record, 1);
#define PARAM_SET(v) do { fp = fopen(param, "w"); assert_non_null(fp); fputs(v, fp); fclose(fp); } while (0)
#define PARAM_IS(v) do { fp = fopen(param, "r"); assert_non_null(fp); assert_non_null(fgets(value, sizeof(value), fp)); fclose(fp); assert_int_equal(value[0], v); } while (0)
	assert_int_equal(control_uring_acquire(getpid(), true, &on, &turned_on), -ENOENT);
	PARAM_SET("N\n");
	/* Without --io-uring, off stays off. */
	assert_int_equal(control_uring_acquire(getpid(), false, &on, &turned_on), 0);
	assert_false(on);
	PARAM_IS('N');
	/* Turned on by us, joined by a second daemon (a live child), restored after both. */
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(control_uring_acquire(getpid(), true, &on, &turned_on), 0);
	assert_true(on && turned_on);
	PARAM_IS('Y');
	assert_int_equal(control_uring_acquire(child, false, &on, &turned_on), 0);
	assert_true(on && !turned_on);
	assert_int_equal(control_uring_release(getpid(), &restored), 0);
	assert_false(restored);
	PARAM_IS('Y');
	/* The child dies without letting go: anyone's release finds it dead and restores. */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(control_uring_release(0, &restored), 0);
	assert_true(restored);
	PARAM_IS('N');
	/* A value set by an administrator is neither recorded nor put back. */
	PARAM_SET("Y\n");
	assert_int_equal(control_uring_acquire(getpid(), true, &on, &turned_on), 0);
	assert_true(on && !turned_on);
	assert_int_equal(control_uring_release(getpid(), &restored), 0);
	assert_false(restored);
	PARAM_IS('Y');
	/* A record someone else could have written is never acted on. */
	PARAM_SET("N\n");
	assert_int_equal(chown(record, 65534, 65534), 0);
	assert_int_equal(control_uring_acquire(getpid(), true, &on, &turned_on), -EPERM);
	PARAM_IS('N');
	unsetenv("CACHEMAX_URING_PARAM");
	unsetenv("CACHEMAX_URING_RECORD");
#undef PARAM_SET
#undef PARAM_IS
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve_lexical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_nonexistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_dangling_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_read_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_each_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_newline_in_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_escaped_and_stacked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_fuse_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_fuse_mount_via_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pid_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proto_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verbs_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pseudo_and_submounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uring_record, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
