/* Unit tests for src/sys/sys.c: the -errno convention of the wrappers and the fault table
 * (sys_fault_set / sys_fault_parse / sys_fault_clear), on real files in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sys/sys.h"
#include "sys/sys_walk.h"

struct fixture {
	char dir[64];
	int dirfd;
	int fd;  /* "data" in dir, read-write */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cm-test-sys.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0)
		return -1;
	f->fd = openat(f->dirfd, "data", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0)
		return -1;
	sys_fault_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	sys_fault_clear();
	close(f->fd);
	close(f->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * sys_fault_parse
 * ------------------------------------------------------------------------------------------- */

static void test_parse_accepts(void **state)
{
	struct fixture *f = *state;
	char buf[8] = "abcdefgh";

	assert_int_equal(sys_fault_parse("pwrite:2:EIO,openat:1:ENOSPC"), 0);
	/* Armed as parsed: the 1st openat and the 2nd pwrite fail. */
	assert_int_equal(sys_openat(f->dirfd, "data", O_RDONLY, 0), -ENOSPC);
	{
		int fd = sys_openat(f->dirfd, "data", O_RDONLY, 0);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(sys_pwrite(f->fd, buf, 8, 0), 8);
	assert_int_equal(sys_pwrite(f->fd, buf, 8, 8), -EIO);
	assert_int_equal(sys_pwrite(f->fd, buf, 8, 16), 8);
	sys_fault_clear();

	/* Every errno name of the table maps to its value; SHORT halves. */
	{
		static const struct { const char *name; int err; } names[] = {
			{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EROFS", EROFS }, { "EACCES", EACCES },
			{ "ENOENT", ENOENT }, { "EDQUOT", EDQUOT }, { "ENOMEM", ENOMEM }, { "EPERM", EPERM },
		};
		char spec[64];
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(spec, sizeof(spec), "pread:1:%s", names[i].name);
			assert_int_equal(sys_fault_parse(spec), 0);
			assert_int_equal(sys_pread(f->fd, buf, 8, 0), -names[i].err);
			assert_int_equal(sys_pread(f->fd, buf, 8, 0), 8);
		}
		assert_int_equal(sys_fault_parse("pread:1:SHORT"), 0);
		assert_int_equal(sys_pread(f->fd, buf, 8, 0), 4);
	}
	/* Every op name. */
	assert_int_equal(sys_fault_parse("openat:9:EIO,close:9:EIO,fstatat:9:EIO,pread:9:EIO,"
	                                 "pwrite:9:EIO,ftruncate:9:EIO,truncate:9:EIO,fsync:9:EIO,"
	                                 "fallocate:9:EIO,lseek:9:EIO,copy_file_range:9:EIO,"
	                                 "mkdirat:9:EIO,mknodat:9:EIO,symlinkat:9:EIO,readlinkat:9:EIO,"
	                                 "unlinkat:9:EIO,renameat2:9:EIO,linkat:9:EIO,fchownat:9:EIO,"
	                                 "chmod:9:EIO,utimensat:9:EIO,getxattr:9:EIO,setxattr:9:EIO,"
	                                 "listxattr:9:EIO,removexattr:9:EIO,fstatvfs:9:EIO,"
	                                 "getdents:9:EIO,syncfs:9:EIO,backing_open:9:EIO,"
	                                 "fdatasync:9:EIO,flock:9:EIO,io_uring_setup:9:ENOMEM,"
	                                 "io_uring_enter:9:ENOMEM"), 0);
	/* Large nth, empty items and the empty spec. */
	assert_int_equal(sys_fault_parse("lseek:18446744073709551615:EIO"), 0);
	assert_int_equal(sys_fault_parse("pwrite:3:EIO,,openat:2:EIO"), 0);
	assert_int_equal(sys_fault_parse(""), 0);
	sys_fault_clear();
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"pwrite",              /* no fields */
		"pwrite:2",            /* no errno */
		"pwrite:2:",           /* empty errno */
		"pwrite::EIO",         /* empty nth */
		":2:EIO",              /* empty op */
		"pwrote:2:EIO",        /* unknown op */
		"PWRITE:2:EIO",        /* op names are lower case */
		"pwrite:0:EIO",        /* nth is 1-based */
		"pwrite:x:EIO",
		"pwrite:2x:EIO",
		"pwrite:2:EFOO",       /* unknown errno */
		"pwrite:2:eio",
		"pwrite:2:5",          /* numeric errno not accepted */
		"pwrite:2:EIO:extra",
		"pwrite:2:EIO,bogus",  /* one bad item spoils the spec */
		"openat:1:ENOSPC;pwrite:2:EIO",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sys_fault_parse(bad[i]) != -EINVAL)
			fail_msg("sys_fault_parse(\"%s\") accepted", bad[i]);
	}
	/* Longer than the parser's buffer (otherwise valid). */
	{
		char spec[600];
		size_t n = 0;
		while (n + 13 < sizeof(spec) - 1) {
			memcpy(spec + n, "pwrite:1:EIO,", 13);
			n += 13;
		}
		spec[n] = '\0';
		assert_true(strlen(spec) >= 512);
		assert_int_equal(sys_fault_parse(spec), -EINVAL);
	}
	sys_fault_clear();
}

/* A negative nth is malformed (nth is 1-based); strtoull silently turns "-1" into 2^64-1. */
static void test_parse_rejects_negative_nth(void **state)
{
	assert_int_equal(sys_fault_parse("pwrite:-1:EIO"), -EINVAL);
	assert_int_equal(sys_fault_parse("pwrite: 2:EIO"), -EINVAL);
	assert_int_equal(sys_fault_parse("pwrite:+2:EIO"), -EINVAL);
	sys_fault_clear();
}

/* A rejected spec must arm nothing: the daemon logs "ignoring malformed CACHEMAX_FAULT" and
 * goes on. The parser arms items one by one, so the items before the bad one stay armed. */
static void test_parse_reject_arms_nothing(void **state)
{
	struct fixture *f = *state;
	char c = 'x';

	assert_int_equal(sys_fault_parse("pwrite:1:EIO,bogus"), -EINVAL);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
}

/* ---------------------------------------------------------------------------------------------
 * Fault injection
 * ------------------------------------------------------------------------------------------- */

static void test_fault_nth_pwrite(void **state)
{
	struct fixture *f = *state;
	char block[16], back[80];
	struct stat st;

	sys_fault_set(SYS_OP_PWRITE, 3, EIO);
	for (int i = 1; i <= 5; i++) {
		ssize_t n;
		memset(block, '0' + i, sizeof(block));
		n = sys_pwrite(f->fd, block, sizeof(block), (off_t)(i - 1) * 16);
		if (i == 3)
			assert_int_equal(n, -EIO);
		else
			assert_int_equal(n, 16);
	}
	/* The failed call did not reach the file: bytes 32..47 are a hole. */
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 80);
	assert_int_equal(pread(f->fd, back, sizeof(back), 0), 80);
	for (int i = 0; i < 80; i++) {
		int blk = i / 16 + 1;
		assert_int_equal(back[i], blk == 3 ? 0 : '0' + blk);
	}
	/* The fault fires once: later calls keep succeeding. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(sys_pwrite(f->fd, block, 4, 0), 4);
	/* Other operations are not affected. */
	assert_int_equal(sys_pread(f->fd, back, 16, 0), 16);
}

static void test_fault_counts_from_arming(void **state)
{
	struct fixture *f = *state;
	char c = 'x';

	for (int i = 0; i < 5; i++)
		assert_int_equal(sys_pwrite(f->fd, &c, 1, i), 1);
	sys_fault_set(SYS_OP_PWRITE, 1, ENOSPC);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), -ENOSPC);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	/* Re-arming resets the count. */
	sys_fault_set(SYS_OP_PWRITE, 2, EDQUOT);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), -EDQUOT);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
}

static void test_fault_several_ops(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	sys_fault_set(SYS_OP_FSTATAT, 2, EACCES);
	sys_fault_set(SYS_OP_MKDIRAT, 1, EROFS);
	assert_int_equal(sys_fstatat(f->dirfd, "data", &st, 0), 0);
	assert_int_equal(sys_mkdirat(f->dirfd, "sub", 0755), -EROFS);
	assert_int_equal(fstatat(f->dirfd, "sub", &st, 0), -1);  /* really not created */
	assert_int_equal(sys_fstatat(f->dirfd, "data", &st, 0), -EACCES);
	assert_int_equal(sys_fstatat(f->dirfd, "data", &st, 0), 0);
	assert_int_equal(sys_mkdirat(f->dirfd, "sub", 0755), 0);
	/* Injected errors come first, even where the real call would fail differently. */
	sys_fault_set(SYS_OP_UNLINKAT, 1, EPERM);
	assert_int_equal(sys_unlinkat(f->dirfd, "missing", 0), -EPERM);
	assert_int_equal(sys_unlinkat(f->dirfd, "missing", 0), -ENOENT);
	sys_fault_set(SYS_OP_CLOSE, 1, EIO);
	assert_int_equal(sys_close(-1), -EIO);
	assert_int_equal(sys_close(-1), -EBADF);
}

static void test_fault_short(void **state)
{
	struct fixture *f = *state;
	char data[100], back[100];

	for (int i = 0; i < 100; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(pwrite(f->fd, data, sizeof(data), 0), 100);

	sys_fault_set(SYS_OP_PREAD, 1, SYS_FAULT_SHORT);
	memset(back, 0, sizeof(back));
	assert_int_equal(sys_pread(f->fd, back, 100, 0), 50);
	assert_memory_equal(back, data, 50);
	assert_int_equal(back[50], 0);  /* only half was read */
	assert_int_equal(sys_pread(f->fd, back, 100, 0), 100);
	/* Odd sizes round down. */
	sys_fault_set(SYS_OP_PREAD, 1, SYS_FAULT_SHORT);
	assert_int_equal(sys_pread(f->fd, back, 7, 0), 3);

	/* Short write writes only the first half. */
	sys_fault_set(SYS_OP_PWRITE, 2, SYS_FAULT_SHORT);
	assert_int_equal(sys_pwrite(f->fd, "XXXX", 4, 0), 4);
	assert_int_equal(sys_pwrite(f->fd, "YYYYYYYY", 8, 100), 4);
	{
		struct stat st;
		assert_int_equal(fstat(f->fd, &st), 0);
		assert_int_equal(st.st_size, 104);
	}
	assert_int_equal(sys_pwrite(f->fd, "ZZ", 2, 0), 2);

	/* Through the parser too. */
	assert_int_equal(sys_fault_parse("pread:2:SHORT"), 0);
	assert_int_equal(sys_pread(f->fd, back, 20, 0), 20);
	assert_int_equal(sys_pread(f->fd, back, 20, 0), 10);

	/* SHORT on an operation without a size is ignored: the call proceeds normally. */
	sys_fault_set(SYS_OP_OPENAT, 1, SYS_FAULT_SHORT);
	{
		int fd = sys_openat(f->dirfd, "data", O_RDONLY | O_CLOEXEC, 0);
		assert_true(fd >= 0);
		close(fd);
	}
}

static void test_fault_clear(void **state)
{
	struct fixture *f = *state;
	char c = 'q';

	sys_fault_set(SYS_OP_PWRITE, 1, EIO);
	sys_fault_set(SYS_OP_PREAD, 1, EIO);
	sys_fault_clear();
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	assert_int_equal(sys_pread(f->fd, &c, 1, 0), 1);
	/* Clearing before the nth call: the nth call after clearing succeeds as well. */
	sys_fault_set(SYS_OP_PWRITE, 2, EIO);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	sys_fault_clear();
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	/* And arming again after clear works. */
	sys_fault_set(SYS_OP_PWRITE, 1, EIO);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), -EIO);
	/* Arming another op after a clear does not bring back a cleared, unfired fault. */
	sys_fault_set(SYS_OP_PWRITE, 1, EIO);
	sys_fault_clear();
	sys_fault_set(SYS_OP_LSEEK, 5, EIO);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
	assert_int_equal(sys_pwrite(f->fd, &c, 1, 0), 1);
}

/* ---------------------------------------------------------------------------------------------
 * Wrappers: results and -errno
 * ------------------------------------------------------------------------------------------- */

/* The fault the io_uring transport's fallback test injects: the first ring setup fails. */
static void test_fault_io_uring_setup(void **state)
{
	struct io_uring_params p;

	(void)state;
	assert_int_equal(sys_fault_parse("io_uring_setup:1:ENOMEM"), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(sys_io_uring_setup(1, &p), -ENOMEM);
	sys_fault_clear();
	memset(&p, 0, sizeof(p));
	p.flags = ~0u;  /* no such flags: the real call fails with EINVAL, never -1 */
	assert_int_equal(sys_io_uring_setup(1, &p), -EINVAL);
}

static void test_wrappers_errno(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	struct statvfs vfs;
	char buf[256];
	char path[128];

	assert_int_equal(sys_openat(f->dirfd, "missing", O_RDONLY, 0), -ENOENT);
	assert_int_equal(sys_openat(f->dirfd, "data", O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);
	assert_int_equal(sys_openat(f->dirfd, "data/x", O_RDONLY, 0), -ENOTDIR);
	assert_int_equal(sys_openat(-1, "relative", O_RDONLY, 0), -EBADF);
	assert_int_equal(sys_close(-1), -EBADF);
	assert_int_equal(sys_fstatat(f->dirfd, "missing", &st, 0), -ENOENT);
	assert_int_equal(sys_pread(-1, buf, 1, 0), -EBADF);
	assert_int_equal(sys_pwrite(-1, buf, 1, 0), -EBADF);
	assert_int_equal(sys_pread(f->fd, buf, 1, -1), -EINVAL);
	assert_int_equal(sys_ftruncate(-1, 0), -EBADF);
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(sys_truncate(path, 0), -ENOENT);
	assert_int_equal(sys_fsync(-1, 0), -EBADF);
	assert_int_equal(sys_fsync(-1, 1), -EBADF);
	assert_int_equal(sys_fallocate(f->fd, 0, 0, 0), -EINVAL);
	assert_int_equal(sys_lseek(-1, 0, SEEK_SET), -EBADF);
	assert_int_equal(sys_lseek(f->fd, -1, SEEK_SET), -EINVAL);
	assert_int_equal(sys_copy_file_range(-1, NULL, f->fd, NULL, 1, 0), -EBADF);
	assert_int_equal(sys_mkdirat(f->dirfd, "data", 0755), -EEXIST);
	assert_int_equal(sys_mknodat(f->dirfd, "data", S_IFIFO | 0644, 0), -EEXIST);
	assert_int_equal(sys_symlinkat("x", f->dirfd, "data"), -EEXIST);
	assert_int_equal(sys_readlinkat(f->dirfd, "data", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sys_readlinkat(f->dirfd, "missing", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(sys_unlinkat(f->dirfd, "missing", 0), -ENOENT);
	assert_int_equal(sys_unlinkat(f->dirfd, "data", AT_REMOVEDIR), -ENOTDIR);
	assert_int_equal(sys_renameat2(f->dirfd, "missing", f->dirfd, "other", 0), -ENOENT);
	assert_int_equal(sys_linkat(f->dirfd, "missing", f->dirfd, "other", 0), -ENOENT);
	assert_int_equal(sys_fchownat(f->dirfd, "missing", 0, 0, 0), -ENOENT);
	assert_int_equal(sys_chmod(path, 0644), -ENOENT);
	assert_int_equal(sys_utimensat(f->dirfd, "missing", NULL, 0), -ENOENT);
	assert_int_equal(sys_getxattr(path, "user.x", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(sys_setxattr(path, "user.x", "v", 1, 0), -ENOENT);
	assert_int_equal(sys_listxattr(path, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(sys_removexattr(path, "user.x"), -ENOENT);
	assert_int_equal(sys_fstatvfs(-1, &vfs), -EBADF);
	assert_int_equal(sys_getdents(-1, buf, sizeof(buf)), -EBADF);
	assert_int_equal(sys_getdents(f->fd, buf, sizeof(buf)), -ENOTDIR);
	assert_int_equal(sys_syncfs(-1), -EBADF);
	assert_int_equal(sys_fdatasync(-1), -EBADF);
	assert_int_equal(sys_flock(-1, LOCK_EX), -EBADF);
	/* A name longer than NAME_MAX. */
	{
		char longname[NAME_MAX + 2];
		memset(longname, 'n', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(sys_openat(f->dirfd, longname, O_RDONLY, 0), -ENAMETOOLONG);
	}
}

static void test_wrappers_success(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	struct statvfs vfs;
	char buf[4096];
	int fd, fd2;
	off_t in_off = 0, out_off = 0;
	ssize_t n;

	fd = sys_openat(f->dirfd, "new", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(sys_pwrite(fd, "hello world", 11, 0), 11);
	assert_int_equal(sys_pread(fd, buf, sizeof(buf), 6), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(sys_pread(fd, buf, sizeof(buf), 100), 0);
	assert_int_equal(sys_lseek(fd, 0, SEEK_END), 11);
	assert_int_equal(sys_ftruncate(fd, 3), 0);
	assert_int_equal(sys_fstatat(f->dirfd, "new", &st, 0), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(sys_fsync(fd, 0), 0);
	assert_int_equal(sys_fsync(fd, 1), 0);
	assert_int_equal(sys_fstatvfs(fd, &vfs), 0);
	assert_true(vfs.f_bsize > 0);
	assert_int_equal(sys_syncfs(fd), 0);
	assert_int_equal(sys_fdatasync(fd), 0);
	assert_int_equal(sys_flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(sys_flock(fd, LOCK_UN), 0);

	fd2 = sys_openat(f->dirfd, "copy", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd2 >= 0);
	n = sys_copy_file_range(fd, &in_off, fd2, &out_off, 3, 0);
	assert_int_equal(n, 3);
	assert_int_equal(in_off, 3);
	assert_int_equal(pread(fd2, buf, 3, 0), 3);
	assert_memory_equal(buf, "hel", 3);
	assert_int_equal(sys_close(fd2), 0);
	assert_int_equal(sys_close(fd), 0);

	assert_int_equal(sys_mkdirat(f->dirfd, "d", 0700), 0);
	assert_int_equal(sys_mknodat(f->dirfd, "fifo", S_IFIFO | 0600, 0), 0);
	assert_int_equal(sys_symlinkat("new", f->dirfd, "sym"), 0);
	assert_int_equal(sys_readlinkat(f->dirfd, "sym", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "new", 3);
	assert_int_equal(sys_linkat(f->dirfd, "new", f->dirfd, "hard", 0), 0);
	assert_int_equal(sys_fstatat(f->dirfd, "hard", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(sys_renameat2(f->dirfd, "hard", f->dirfd, "copy", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(sys_renameat2(f->dirfd, "hard", f->dirfd, "copy", RENAME_EXCHANGE), 0);
	assert_int_equal(sys_renameat2(f->dirfd, "hard", f->dirfd, "moved", 0), 0);
	assert_int_equal(sys_fchownat(f->dirfd, "new", getuid(), getgid(), 0), 0);
	{
		char path[128];
		snprintf(path, sizeof(path), "%s/new", f->dir);
		assert_int_equal(sys_chmod(path, 0640), 0);
		assert_int_equal(sys_truncate(path, 0), 0);
		assert_int_equal(sys_fstatat(f->dirfd, "new", &st, 0), 0);
		assert_int_equal(st.st_mode & 07777, 0640);
		assert_int_equal(st.st_size, 0);
	}
	{
		struct timespec ts[2] = { { 1000000000, 5 }, { 1234567890, 6 } };
		assert_int_equal(sys_utimensat(f->dirfd, "new", ts, 0), 0);
		assert_int_equal(sys_fstatat(f->dirfd, "new", &st, 0), 0);
		assert_int_equal(st.st_mtim.tv_sec, 1234567890);
	}
	/* getdents on the directory returns a positive byte count, then 0 at the end. */
	fd = sys_openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	assert_true(fd >= 0);
	n = sys_getdents(fd, buf, sizeof(buf));
	assert_true(n > 0);
	while (n > 0)
		n = sys_getdents(fd, buf, sizeof(buf));
	assert_int_equal(n, 0);
	assert_int_equal(sys_close(fd), 0);
	assert_int_equal(sys_unlinkat(f->dirfd, "d", AT_REMOVEDIR), 0);
	assert_int_equal(sys_unlinkat(f->dirfd, "sym", 0), 0);
}

/* sys_read_file: the whole file NUL-terminated; one that does not fit is -EFBIG, not cut. */
/* sys_walk_files: regular files only (no symlink followed, no directory, no fifo), each with its
 * path below the start's; deeper than depth_max skipped; a visitor's non-zero stops the walk. */
struct walk_seen {
	char paths[16][64];
	unsigned count, stop_at;
};
static int walk_record(void *arg, int dirfd, const char *name, const char *rel)
{
	struct walk_seen *w = arg;
	struct stat st;
	assert_int_equal(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(w->count < 16);
	snprintf(w->paths[w->count++], sizeof(w->paths[0]), "%s", rel);
	return w->stop_at && w->count == w->stop_at ? 7 : 0;
}
static int walk_cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_walk_files(void **state)
{
	struct fixture *f = *state;
	struct walk_seen w = { .count = 0 };
	char rel[SYS_WALK_PATH_MAX] = "top";
	static const char *const want[] = { "top/a/b/deep", "top/a/f", "top/data" };

	assert_int_equal(mkdirat(f->dirfd, "a", 0755), 0);
	assert_int_equal(mkdirat(f->dirfd, "a/b", 0755), 0);
	assert_int_equal(mkdirat(f->dirfd, "a/b/c", 0755), 0);
	close(openat(f->dirfd, "a/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	close(openat(f->dirfd, "a/b/deep", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	close(openat(f->dirfd, "a/b/c/too-deep", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	assert_int_equal(symlinkat("a/f", f->dirfd, "link"), 0);
	assert_int_equal(mkfifoat(f->dirfd, "fifo", 0644), 0);
	assert_int_equal(sys_walk_files(openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	                                rel, 3, 2, walk_record, &w), 0);
	assert_string_equal(rel, "top");
	assert_int_equal(w.count, 3);
	qsort(w.paths, w.count, sizeof(w.paths[0]), walk_cmp);
	for (unsigned i = 0; i < 3; i++)
		assert_string_equal(w.paths[i], want[i]);
	/* an empty start: names alone; a non-zero visitor stops it */
	memset(&w, 0, sizeof(w));
	w.stop_at = 1;
	rel[0] = '\0';
	assert_int_equal(sys_walk_files(openat(f->dirfd, "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	                                rel, 0, 8, walk_record, &w), 7);
	assert_int_equal(w.count, 1);
	assert_true(!strcmp(w.paths[0], "f") || !strcmp(w.paths[0], "b/deep") ||
	            !strcmp(w.paths[0], "b/c/too-deep"));
	/* not a directory */
	assert_int_equal(sys_walk_files(openat(f->dirfd, "nonexistent", O_RDONLY | O_CLOEXEC),
	                                rel, 0, 8, walk_record, &w), -EBADF);
}

static void test_read_file(void **state)
{
	struct fixture *f = *state;
	char path[128], buf[8];

	snprintf(path, sizeof(path), "%s/data", f->dir);
	assert_int_equal(pwrite(f->fd, "1234567", 7, 0), 7);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), 7);   /* exactly fits */
	assert_string_equal(buf, "1234567");
	assert_int_equal(pwrite(f->fd, "8", 1, 7), 1);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), -EFBIG);
	assert_int_equal(sys_read_file(path, buf, 0), -EINVAL);
	assert_int_equal(ftruncate(f->fd, 0), 0);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	snprintf(path, sizeof(path), "%s/absent", f->dir);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(sys_read_file(f->dir, buf, sizeof(buf)), -EISDIR);
	/* its own op: an openat fault does not touch it, a read_file fault does */
	snprintf(path, sizeof(path), "%s/data", f->dir);
	assert_int_equal(sys_fault_parse("openat:1:EIO,read_file:2:EACCES"), 0);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), 0);
	assert_int_equal(sys_read_file(path, buf, sizeof(buf)), -EACCES);
	assert_int_equal(sys_openat(f->dirfd, "data", O_RDONLY, 0), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_accepts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_rejects_negative_nth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_reject_arms_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_nth_pwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_counts_from_arming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_several_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_clear, setup, teardown),
		cmocka_unit_test(test_fault_io_uring_setup),
		cmocka_unit_test_setup_teardown(test_wrappers_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrappers_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
