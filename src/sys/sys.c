/* sys: thin wrappers that turn -1/errno into -errno and consult the fault table first. */
#include "sys/sys.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *const sys_op_names[SYS_OP_COUNT] = {
	"openat", "close", "fstatat", "pread", "pwrite", "ftruncate", "truncate", "fsync",
	"fallocate", "lseek", "copy_file_range", "mkdirat", "mknodat", "symlinkat", "readlinkat",
	"unlinkat", "renameat2", "linkat", "fchownat", "chmod", "utimensat", "getxattr", "setxattr",
	"listxattr", "removexattr", "fstatvfs", "getdents", "syncfs", "backing_open", "fdatasync",
	"flock", "io_uring_setup", "io_uring_enter", "cachestat", "name_to_handle_at",
	"open_by_handle_at", "fanotify_init", "fanotify_mark", "fstatfs", "poll", "read_file",
	"mount_id", "pidfd_open",
};

struct sys_fault {
	atomic_uint_fast64_t calls;  /* calls seen since armed */
	atomic_uint_fast64_t nth;    /* 0: disarmed */
	atomic_int err;
};
static struct sys_fault sys_faults[SYS_OP_COUNT];
static atomic_bool sys_faults_armed;

void sys_fault_set(enum sys_op op, uint64_t nth, int err)
{
	atomic_store(&sys_faults[op].calls, 0);
	atomic_store(&sys_faults[op].err, err);
	atomic_store(&sys_faults[op].nth, nth);
	atomic_store(&sys_faults_armed, true);
}

void sys_fault_clear(void)
{
	for (int i = 0; i < SYS_OP_COUNT; i++)
		atomic_store(&sys_faults[i].nth, 0);
	atomic_store(&sys_faults_armed, false);
}

static int errno_from_name(const char *s)
{
	static const struct { const char *name; int err; } table[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EROFS", EROFS }, { "EACCES", EACCES },
		{ "ENOENT", ENOENT }, { "EDQUOT", EDQUOT }, { "ENOMEM", ENOMEM }, { "EPERM", EPERM },
		{ "EMFILE", EMFILE }, { "ENFILE", ENFILE },
		{ "SHORT", SYS_FAULT_SHORT },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(s, table[i].name))
			return table[i].err;
	return 0;
}

/* All items are checked before any is armed: a rejected spec arms nothing. */
int sys_fault_parse(const char *spec)
{
	struct { int op; unsigned long long nth; int err; } items[SYS_OP_COUNT * 2];
	char buf[512], *save = NULL, *item;
	size_t count = 0;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
		int op = -1;
		if (!c1 || !c2 || count == sizeof(items) / sizeof(items[0]))
			return -EINVAL;
		*c1 = *c2 = '\0';
		for (int i = 0; i < SYS_OP_COUNT; i++)
			if (!strcmp(item, sys_op_names[i]))
				op = i;
		if (op < 0 || c1[1] < '0' || c1[1] > '9')  /* strtoull would take "-1" or " 2" */
			return -EINVAL;
		items[count].op = op;
		items[count].nth = strtoull(c1 + 1, &end, 10);
		items[count].err = errno_from_name(c2 + 1);
		if (*end || items[count].nth == 0 || !items[count].err)
			return -EINVAL;
		count++;
	}
	for (size_t i = 0; i < count; i++)
		sys_fault_set((enum sys_op)items[i].op, items[i].nth, items[i].err);
	return 0;
}

/* Returns 0 to proceed, or the injected positive errno / SYS_FAULT_SHORT. */
static int fault_check(enum sys_op op)
{
	struct sys_fault *f;
	uint64_t nth;
	if (!atomic_load_explicit(&sys_faults_armed, memory_order_relaxed))
		return 0;
	f = &sys_faults[op];
	nth = atomic_load(&f->nth);
	if (!nth)
		return 0;
	if (atomic_fetch_add(&f->calls, 1) + 1 != nth)
		return 0;
	return atomic_load(&f->err);
}

#define FAULT_OR(op) do { int fe_ = fault_check(op); if (fe_ && fe_ != SYS_FAULT_SHORT) return -fe_; } while (0)
#define RET(expr) do { long r_ = (long)(expr); return r_ < 0 ? -errno : r_; } while (0)

int sys_openat(int dirfd, const char *path, int flags, mode_t mode) { FAULT_OR(SYS_OP_OPENAT); RET(openat(dirfd, path, flags, mode)); }
int sys_close(int fd) { FAULT_OR(SYS_OP_CLOSE); RET(close(fd)); }
int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags) { FAULT_OR(SYS_OP_FSTATAT); RET(fstatat(dirfd, path, st, flags)); }

ssize_t sys_pread(int fd, void *buf, size_t size, off_t off)
{
	int fe = fault_check(SYS_OP_PREAD);
	if (fe == SYS_FAULT_SHORT)
		size /= 2;
	else if (fe)
		return -fe;
	RET(pread(fd, buf, size, off));
}

ssize_t sys_pwrite(int fd, const void *buf, size_t size, off_t off)
{
	int fe = fault_check(SYS_OP_PWRITE);
	if (fe == SYS_FAULT_SHORT)
		size /= 2;
	else if (fe)
		return -fe;
	RET(pwrite(fd, buf, size, off));
}

int sys_ftruncate(int fd, off_t size) { FAULT_OR(SYS_OP_FTRUNCATE); RET(ftruncate(fd, size)); }
int sys_truncate(const char *path, off_t size) { FAULT_OR(SYS_OP_TRUNCATE); RET(truncate(path, size)); }
int sys_fsync(int fd, int datasync) { FAULT_OR(SYS_OP_FSYNC); RET(datasync ? fdatasync(fd) : fsync(fd)); }
int sys_fdatasync(int fd) { FAULT_OR(SYS_OP_FDATASYNC); RET(fdatasync(fd)); }
int sys_fallocate(int fd, int mode, off_t off, off_t len) { FAULT_OR(SYS_OP_FALLOCATE); RET(fallocate(fd, mode, off, len)); }
off_t sys_lseek(int fd, off_t off, int whence) { FAULT_OR(SYS_OP_LSEEK); RET(lseek(fd, off, whence)); }
ssize_t sys_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned flags)
{
	FAULT_OR(SYS_OP_COPY_FILE_RANGE);
	RET(copy_file_range(fd_in, off_in, fd_out, off_out, len, flags));
}
int sys_mkdirat(int dirfd, const char *name, mode_t mode) { FAULT_OR(SYS_OP_MKDIRAT); RET(mkdirat(dirfd, name, mode)); }
int sys_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev) { FAULT_OR(SYS_OP_MKNODAT); RET(mknodat(dirfd, name, mode, dev)); }
int sys_symlinkat(const char *target, int dirfd, const char *name) { FAULT_OR(SYS_OP_SYMLINKAT); RET(symlinkat(target, dirfd, name)); }
ssize_t sys_readlinkat(int dirfd, const char *path, char *buf, size_t size) { FAULT_OR(SYS_OP_READLINKAT); RET(readlinkat(dirfd, path, buf, size)); }
int sys_unlinkat(int dirfd, const char *name, int flags) { FAULT_OR(SYS_OP_UNLINKAT); RET(unlinkat(dirfd, name, flags)); }
int sys_renameat2(int olddir, const char *oldname, int newdir, const char *newname, unsigned flags)
{
	FAULT_OR(SYS_OP_RENAMEAT2);
	RET(syscall(SYS_renameat2, olddir, oldname, newdir, newname, flags));
}
int sys_linkat(int olddir, const char *oldpath, int newdir, const char *newname, int flags) { FAULT_OR(SYS_OP_LINKAT); RET(linkat(olddir, oldpath, newdir, newname, flags)); }
int sys_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) { FAULT_OR(SYS_OP_FCHOWNAT); RET(fchownat(dirfd, path, uid, gid, flags)); }
int sys_chmod(const char *path, mode_t mode) { FAULT_OR(SYS_OP_CHMOD); RET(chmod(path, mode)); }
int sys_utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags) { FAULT_OR(SYS_OP_UTIMENSAT); RET(utimensat(dirfd, path, ts, flags)); }
ssize_t sys_getxattr(const char *path, const char *name, void *value, size_t size) { FAULT_OR(SYS_OP_GETXATTR); RET(getxattr(path, name, value, size)); }
int sys_setxattr(const char *path, const char *name, const void *value, size_t size, int flags) { FAULT_OR(SYS_OP_SETXATTR); RET(setxattr(path, name, value, size, flags)); }
ssize_t sys_listxattr(const char *path, char *list, size_t size) { FAULT_OR(SYS_OP_LISTXATTR); RET(listxattr(path, list, size)); }
ssize_t sys_llistxattr(const char *path, char *list, size_t size) { FAULT_OR(SYS_OP_LISTXATTR); RET(llistxattr(path, list, size)); }
int sys_removexattr(const char *path, const char *name) { FAULT_OR(SYS_OP_REMOVEXATTR); RET(removexattr(path, name)); }
int sys_fstatvfs(int fd, struct statvfs *st) { FAULT_OR(SYS_OP_FSTATVFS); RET(fstatvfs(fd, st)); }
int sys_fstatfs(int fd, struct statfs *st) { FAULT_OR(SYS_OP_FSTATFS); RET(fstatfs(fd, st)); }
int sys_mount_id(int fd)
{
	struct statx stx;
	FAULT_OR(SYS_OP_MOUNT_ID);
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0)
		return -errno;
	return stx.stx_mask & STATX_MNT_ID ? (int)stx.stx_mnt_id : -EOPNOTSUPP;
}
ssize_t sys_getdents(int fd, void *buf, size_t size) { FAULT_OR(SYS_OP_GETDENTS); RET(syscall(SYS_getdents64, fd, buf, size)); }
int sys_syncfs(int fd) { FAULT_OR(SYS_OP_SYNCFS); RET(syncfs(fd)); }
int sys_flock(int fd, int operation) { FAULT_OR(SYS_OP_FLOCK); RET(flock(fd, operation)); }
int sys_name_to_handle_at(int dirfd, const char *path, struct file_handle *handle, int *mount_id,
                          int flags)
{
	FAULT_OR(SYS_OP_NAME_TO_HANDLE_AT);
	RET(name_to_handle_at(dirfd, path, handle, mount_id, flags));
}
int sys_open_by_handle_at(int mount_fd, struct file_handle *handle, int flags)
{
	FAULT_OR(SYS_OP_OPEN_BY_HANDLE_AT);
	RET(open_by_handle_at(mount_fd, handle, flags));
}
int sys_fanotify_init(unsigned flags, unsigned event_flags)
{
	FAULT_OR(SYS_OP_FANOTIFY_INIT);
	RET(fanotify_init(flags, event_flags));
}
int sys_fanotify_mark(int fanotify_fd, unsigned flags, uint64_t mask, int dirfd, const char *path)
{
	FAULT_OR(SYS_OP_FANOTIFY_MARK);
	RET(fanotify_mark(fanotify_fd, flags, mask, dirfd, path));
}
int sys_poll(struct pollfd *fds, unsigned count, int timeout_ms) { FAULT_OR(SYS_OP_POLL); RET(poll(fds, count, timeout_ms)); }
int sys_pidfd_open(pid_t pid) { FAULT_OR(SYS_OP_PIDFD_OPEN); RET(syscall(SYS_pidfd_open, pid, 0)); }
int sys_backing_open(int fuse_fd, unsigned long request, void *map) { FAULT_OR(SYS_OP_BACKING_OPEN); RET(ioctl(fuse_fd, request, map)); }
int sys_io_uring_setup(unsigned entries, struct io_uring_params *params) { FAULT_OR(SYS_OP_IO_URING_SETUP); RET(syscall(__NR_io_uring_setup, entries, params)); }
int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
	FAULT_OR(SYS_OP_IO_URING_ENTER);
	RET(syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0));
}

ssize_t sys_read_file(const char *path, char *buf, size_t size)
{
	size_t used = 0;
	ssize_t n = 0;
	int fd, err = 0;

	FAULT_OR(SYS_OP_READ_FILE);
	if (!size)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* One byte more than fits: a file that fills buf exactly is told from a longer one. */
	for (;;) {
		char probe;
		n = used < size - 1 ? read(fd, buf + used, size - 1 - used) : read(fd, &probe, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		if (used == size - 1) {
			err = EFBIG;
			break;
		}
		used += (size_t)n;
	}
	close(fd);
	if (err)
		return -err;
	buf[used] = '\0';
	return (ssize_t)used;
}

/* cachestat(2): not in the system headers (Linux 6.1); the layouts are the kernel's uapi. */
#define SYS_NR_CACHESTAT 451
struct sys_cachestat_range { uint64_t off, len; };
struct sys_cachestat_out { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

int sys_cachestat(int fd, uint64_t off, uint64_t len, uint64_t *cached)
{
	struct sys_cachestat_range range = { off, len };
	struct sys_cachestat_out out;
	long rc;

	FAULT_OR(SYS_OP_CACHESTAT);
	rc = syscall(SYS_NR_CACHESTAT, fd, &range, &out, 0);
	if (rc < 0)
		return -errno;
	*cached = out.nr_cache;
	return 0;
}
