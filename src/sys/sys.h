/* sys: the one syscall seam for the origin and the cache device.
 * Every wrapper returns the syscall's non-negative result or -errno, never -1 with errno, and
 * goes through a call counter so tests can fail the Nth call of any operation:
 *   CACHEMAX_FAULT="pwrite:3:EIO,openat:10:ENOSPC"   (in the daemon's environment), or
 *   sys_fault_set(SYS_OP_PWRITE, 3, EIO)              (in unit tests).
 * A short read/write can be injected with the pseudo-errno "SHORT" (returns half the bytes).
 */
#ifndef CACHEMAX_SYS_H
#define CACHEMAX_SYS_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

enum sys_op {
	SYS_OP_OPENAT, SYS_OP_CLOSE, SYS_OP_FSTATAT, SYS_OP_PREAD, SYS_OP_PWRITE, SYS_OP_FTRUNCATE,
	SYS_OP_TRUNCATE, SYS_OP_FSYNC, SYS_OP_FALLOCATE, SYS_OP_LSEEK, SYS_OP_COPY_FILE_RANGE,
	SYS_OP_MKDIRAT, SYS_OP_MKNODAT, SYS_OP_SYMLINKAT, SYS_OP_READLINKAT, SYS_OP_UNLINKAT,
	SYS_OP_RENAMEAT2, SYS_OP_LINKAT, SYS_OP_FCHOWNAT, SYS_OP_CHMOD, SYS_OP_UTIMENSAT,
	SYS_OP_GETXATTR, SYS_OP_SETXATTR, SYS_OP_LISTXATTR, SYS_OP_REMOVEXATTR, SYS_OP_FSTATVFS,
	SYS_OP_GETDENTS, SYS_OP_SYNCFS, SYS_OP_BACKING_OPEN, SYS_OP_FDATASYNC, SYS_OP_FLOCK,
	SYS_OP_IO_URING_SETUP, SYS_OP_IO_URING_ENTER, SYS_OP_CACHESTAT, SYS_OP_NAME_TO_HANDLE_AT,
	SYS_OP_OPEN_BY_HANDLE_AT, SYS_OP_FANOTIFY_INIT, SYS_OP_FANOTIFY_MARK, SYS_OP_FSTATFS,
	SYS_OP_POLL, SYS_OP_READ_FILE, SYS_OP_MOUNT_ID, SYS_OP_PIDFD_OPEN, SYS_OP_COUNT
};

#define SYS_FAULT_SHORT 100000  /* pseudo-errno: short read/write */

/* Fail the nth (1-based) future call of op with err (positive errno or SYS_FAULT_SHORT). */
void sys_fault_set(enum sys_op op, uint64_t nth, int err);
void sys_fault_clear(void);
/* Parse CACHEMAX_FAULT-style text; returns 0 or -EINVAL. */
int sys_fault_parse(const char *spec);

int sys_openat(int dirfd, const char *path, int flags, mode_t mode);
int sys_close(int fd);
int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags);
ssize_t sys_pread(int fd, void *buf, size_t size, off_t off);
ssize_t sys_pwrite(int fd, const void *buf, size_t size, off_t off);
int sys_ftruncate(int fd, off_t size);
int sys_truncate(const char *path, off_t size);
int sys_fsync(int fd, int datasync);
/* fdatasync(2) as its own op, so tests can fail the cache's data syncs apart from record fsyncs. */
int sys_fdatasync(int fd);
/* The pages of [off, off + len) of fd's file in the page cache, in *cached (cachestat(2), Linux
 * 6.5; -ENOSYS before). */
int sys_cachestat(int fd, uint64_t off, uint64_t len, uint64_t *cached);
int sys_fallocate(int fd, int mode, off_t off, off_t len);
off_t sys_lseek(int fd, off_t off, int whence);
ssize_t sys_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
                            unsigned flags);
int sys_mkdirat(int dirfd, const char *name, mode_t mode);
int sys_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev);
int sys_symlinkat(const char *target, int dirfd, const char *name);
ssize_t sys_readlinkat(int dirfd, const char *path, char *buf, size_t size);
int sys_unlinkat(int dirfd, const char *name, int flags);
int sys_renameat2(int olddir, const char *oldname, int newdir, const char *newname, unsigned flags);
int sys_linkat(int olddir, const char *oldpath, int newdir, const char *newname, int flags);
int sys_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);
int sys_chmod(const char *path, mode_t mode);
int sys_utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags);
ssize_t sys_getxattr(const char *path, const char *name, void *value, size_t size);
int sys_setxattr(const char *path, const char *name, const void *value, size_t size, int flags);
ssize_t sys_listxattr(const char *path, char *list, size_t size);
/* llistxattr(2): a symlink's own list (fault-injection op: listxattr, as sys_listxattr). */
ssize_t sys_llistxattr(const char *path, char *list, size_t size);
int sys_removexattr(const char *path, const char *name);
int sys_fstatvfs(int fd, struct statvfs *st);
/* fstatfs(2), for the file system's type (f_type). */
struct statfs;
int sys_fstatfs(int fd, struct statfs *st);
/* The id of the mount fd is on (statx(2) STATX_MNT_ID, as in /proc/PID/mountinfo): >= 0 or
 * -errno. */
int sys_mount_id(int fd);
/* getdents64(2): buf holds records of glibc's struct dirent64 (<dirent.h>, the kernel's
 * linux_dirent64 layout), each d_reclen long. */
ssize_t sys_getdents(int fd, void *buf, size_t size);
int sys_syncfs(int fd);
int sys_flock(int fd, int operation);
/* name_to_handle_at(2): the file handle of dirfd/path in *handle (handle->handle_bytes: room
 * for f_handle on entry, the size used on return) and its mount id. -EOVERFLOW if the room is
 * short, -EOPNOTSUPP if the file system gives no handles. */
struct file_handle;
int sys_name_to_handle_at(int dirfd, const char *path, struct file_handle *handle, int *mount_id,
                          int flags);
/* open_by_handle_at(2): an fd on the inode of handle on mount_fd's mount (needs
 * CAP_DAC_READ_SEARCH); -ESTALE once the inode is gone. */
int sys_open_by_handle_at(int mount_fd, struct file_handle *handle, int flags);
/* fanotify_init(2) / fanotify_mark(2): the change watcher's (fs_watch.c); their own ops so that
 * tests can make watching unavailable (the watcher then falls back to revalidation at the
 * attribute timeout). fanotify_init returns the group's fd. */
int sys_fanotify_init(unsigned flags, unsigned event_flags);
int sys_fanotify_mark(int fanotify_fd, unsigned flags, uint64_t mask, int dirfd, const char *path);
/* poll(2) (a zero timeout on the watcher's group: fs_watch_queue_empty). Returns the ready count. */
struct pollfd;
int sys_poll(struct pollfd *fds, unsigned count, int timeout_ms);
/* pidfd_open(2): an fd of process pid that poll finds readable once it has exited (-ESRCH: no
 * such process). */
int sys_pidfd_open(pid_t pid);
/* The whole of a small file of the system (/proc, /sys: the cgroup's memory limit,
 * sys_memory.h) into buf, NUL-terminated: its length, -EFBIG (nothing usable) if it does not
 * fit in size - 1 bytes, or -errno. Its own op ("read_file"), apart from openat and pread, so
 * that reading it shifts no other op's count and tests can fail it alone. */
ssize_t sys_read_file(const char *path, char *buf, size_t size);
/* ioctl(FUSE_DEV_IOC_BACKING_OPEN): its own op so tests can make the kernel "refuse" it. */
int sys_backing_open(int fuse_fd, unsigned long request, void *map);
/* io_uring_setup(2): its own op so tests can make FUSE-over-io_uring setup fail (the session
 * then stays on /dev/fuse). Returns the ring fd. */
struct io_uring_params;
int sys_io_uring_setup(unsigned entries, struct io_uring_params *params);
/* io_uring_enter(2) without a signal mask: submitted count or -errno. */
int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags);

#endif
