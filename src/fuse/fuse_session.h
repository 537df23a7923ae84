/* fuse_session: CacheMax's FUSE transport. Owns the /dev/fuse connection, the mount, the worker
 * threads (one cloned fd each), optionally the FUSE-over-io_uring rings (fuse_uring.h), and the
 * dispatch of decoded requests to a file system's callback table. It knows nothing about
 * caching or about what the file system does.
 *
 * Contract with the file system:
 *   - every callback except forget receives a struct fuse_req and must answer it exactly once
 *     through one fuse_reply_*() call; a missing reply is answered EIO and logged, a second reply
 *     is dropped and logged;
 *   - a NULL callback answers ENOSYS;
 *   - callbacks run concurrently on several worker threads (with io_uring: also on the ring
 *     threads, each pinned to the CPU whose requests it serves);
 *   - fuse_req_scratch() is a per-thread buffer of FUSE_SESSION_SCRATCH bytes for reply data,
 *     page-aligned (usable for O_DIRECT reads); it stays the thread's until its next request.
 * Errors: functions return 0 or -errno.
 */
#ifndef CACHEMAX_FUSE_SESSION_H
#define CACHEMAX_FUSE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "fuse/fuse_proto.h"

#define FUSE_SESSION_MAX_WRITE (1024 * 1024)
#define FUSE_SESSION_SCRATCH (FUSE_SESSION_MAX_WRITE + 4096)
#define FUSE_SESSION_MAX_THREADS 16

struct fuse_session;
struct fuse_req;

/* Who sent a request. */
struct fuse_req_ctx {
	uint32_t uid, gid, pid;
	uint32_t group_count;
	const uint32_t *groups;
};

struct fuse_ops {
	/* Called once after INIT was answered, before any other request. No reply. */
	void (*init)(void *fs, struct fuse_session *se, const struct fuse_proto_init_result *init);
	/* No reply: drop nlookup references of ino. */
	void (*forget)(void *fs, uint64_t ino, uint64_t nlookup);

	void (*lookup)(struct fuse_req *r, uint64_t parent, const char *name);
	void (*getattr)(struct fuse_req *r, uint64_t ino, const struct fuse_getattr_in *in);
	void (*setattr)(struct fuse_req *r, uint64_t ino, const struct fuse_setattr_in *in);
	void (*readlink)(struct fuse_req *r, uint64_t ino);
	void (*symlink)(struct fuse_req *r, uint64_t parent, const char *name, const char *target);
	void (*mknod)(struct fuse_req *r, uint64_t parent, const char *name,
	              const struct fuse_mknod_in *in);
	void (*mkdir)(struct fuse_req *r, uint64_t parent, const char *name,
	              const struct fuse_mkdir_in *in);
	void (*unlink)(struct fuse_req *r, uint64_t parent, const char *name);
	void (*rmdir)(struct fuse_req *r, uint64_t parent, const char *name);
	void (*rename)(struct fuse_req *r, uint64_t parent, const char *name, uint64_t newparent,
	               const char *newname, uint32_t flags);
	void (*link)(struct fuse_req *r, uint64_t ino, uint64_t newparent, const char *newname);
	void (*open)(struct fuse_req *r, uint64_t ino, const struct fuse_open_in *in);
	void (*create)(struct fuse_req *r, uint64_t parent, const char *name,
	               const struct fuse_create_in *in);
	void (*tmpfile)(struct fuse_req *r, uint64_t parent, const struct fuse_create_in *in);
	void (*read)(struct fuse_req *r, uint64_t ino, const struct fuse_read_in *in);
	void (*write)(struct fuse_req *r, uint64_t ino, const struct fuse_write_in *in,
	              const void *data);
	void (*flush)(struct fuse_req *r, uint64_t ino, const struct fuse_flush_in *in);
	void (*release)(struct fuse_req *r, uint64_t ino, const struct fuse_release_in *in);
	void (*fsync)(struct fuse_req *r, uint64_t ino, const struct fuse_fsync_in *in);
	void (*statfs)(struct fuse_req *r, uint64_t ino);
	/* setxattr_flags: FUSE_SETXATTR_ACL_KILL_SGID (FUSE_SETXATTR_EXT is asked for) */
	void (*setxattr)(struct fuse_req *r, uint64_t ino, const char *name, const void *value,
	                 size_t size, uint32_t flags, uint32_t setxattr_flags);
	void (*getxattr)(struct fuse_req *r, uint64_t ino, const char *name, uint32_t size);
	void (*listxattr)(struct fuse_req *r, uint64_t ino, uint32_t size);
	void (*removexattr)(struct fuse_req *r, uint64_t ino, const char *name);
	void (*opendir)(struct fuse_req *r, uint64_t ino, const struct fuse_open_in *in);
	void (*readdir)(struct fuse_req *r, uint64_t ino, const struct fuse_read_in *in, bool plus);
	void (*releasedir)(struct fuse_req *r, uint64_t ino, const struct fuse_release_in *in);
	void (*fsyncdir)(struct fuse_req *r, uint64_t ino, const struct fuse_fsync_in *in);
	void (*access)(struct fuse_req *r, uint64_t ino, uint32_t mask);
	void (*fallocate)(struct fuse_req *r, uint64_t ino, const struct fuse_fallocate_in *in);
	void (*lseek)(struct fuse_req *r, uint64_t ino, const struct fuse_lseek_in *in);
	/* wide: COPY_FILE_RANGE_64 (reply with fuse_reply_copy_range; 64-bit count). */
	void (*copy_file_range)(struct fuse_req *r, uint64_t ino,
	                        const struct fuse_copy_file_range_in *in, bool wide);
	void (*syncfs)(struct fuse_req *r, uint64_t ino);
};

struct fuse_session_config {
	const char *mountpoint;      /* absolute path */
	const char *fsname;          /* shown as the mount's source */
	const char *subtype;         /* type becomes fuse.<subtype> */
	unsigned long mount_flags;   /* MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC … */
	unsigned threads;            /* worker threads, 1..FUSE_SESSION_MAX_THREADS */
	bool passthrough;            /* ask for FUSE_PASSTHROUGH */
	uint32_t max_stack_depth;    /* 1 or 2, see KERNEL-FUSE.md §2.2 */
	uint64_t extra_flags;        /* further INIT flags the file system wants */
	uint64_t withheld_flags;     /* INIT flags the session asks for by default that the file
	                              * system does not want (e.g. FUSE_ATOMIC_O_TRUNC) */
	bool io_uring;               /* serve requests through FUSE-over-io_uring when the kernel
	                              * offers it and the rings come up before the INIT reply;
	                              * otherwise (and for FORGET/INTERRUPT always) /dev/fuse */
};

/* Open /dev/fuse, mount, and answer INIT (synchronously where the kernel can).
 * On success *out is a mounted session with its workers running. */
int fuse_session_mount(const struct fuse_session_config *cfg, const struct fuse_ops *ops, void *fs,
                       struct fuse_session **out);
/* Block until the file system is unmounted (workers see ENODEV) or the connection aborts. */
int fuse_session_wait(struct fuse_session *se);
/* Free a session whose workers have ended. */
void fuse_session_free(struct fuse_session *se);

/* What INIT granted. */
const struct fuse_proto_init_result *fuse_session_init_result(const struct fuse_session *se);

/* Requests read from the device so far (all opcodes, both transports). */
uint64_t fuse_session_requests(const struct fuse_session *se);
/* Requests served through the io_uring rings so far (0 on /dev/fuse). */
uint64_t fuse_session_uring_requests(const struct fuse_session *se);
/* io_uring commits made in SCHED_IDLE, and back-offs from it (fuse_uring.h); 0 without rings. */
void fuse_session_uring_yields(const struct fuse_session *se, uint64_t *yields, uint64_t *backoffs);
/* "io_uring" or "dev_fuse": how the kernel sends requests to this session. */
const char *fuse_session_transport(const struct fuse_session *se);
/* Why io_uring was asked for but is not in use ("" otherwise). */
const char *fuse_session_transport_why(const struct fuse_session *se);

/* Passthrough backing files: register fd (O_PATH accepted); returns id > 0 or -errno. */
int fuse_session_backing_open(struct fuse_session *se, int fd);
int fuse_session_backing_close(struct fuse_session *se, int backing_id);

/* Notifications (KERNEL-FUSE.md §4.11). Never call them from a request on a related inode. */
int fuse_session_notify_inval_inode(struct fuse_session *se, uint64_t ino, int64_t off,
                                    int64_t len);
int fuse_session_notify_inval_entry(struct fuse_session *se, uint64_t parent, const char *name,
                                    uint32_t flags);
/* Every cached name from before expires (FUSE 7.44, Linux 6.16): -ENOSYS on an older kernel. */
int fuse_session_notify_inc_epoch(struct fuse_session *se);

/* Request accessors. */
void *fuse_req_fs(const struct fuse_req *r);
const struct fuse_req_ctx *fuse_req_ctx(const struct fuse_req *r);
struct fuse_session *fuse_req_session(const struct fuse_req *r);
void *fuse_req_scratch(struct fuse_req *r);

/* Typed replies: each answers the request once. They return 0 or -errno from the device
 * (ENOENT, the request was interrupted or aborted, counts as success). */
int fuse_reply_err(struct fuse_req *r, int err);  /* err: positive errno, or 0 */
int fuse_reply_entry(struct fuse_req *r, const struct fuse_entry_out *entry);
int fuse_reply_create(struct fuse_req *r, const struct fuse_entry_out *entry,
                      const struct cm_fuse_open_out *open);
int fuse_reply_attr(struct fuse_req *r, const struct fuse_attr_out *attr);
int fuse_reply_open(struct fuse_req *r, const struct cm_fuse_open_out *open);
int fuse_reply_data(struct fuse_req *r, const void *data, size_t size);
int fuse_reply_write(struct fuse_req *r, uint32_t count);
int fuse_reply_statfs(struct fuse_req *r, const struct statvfs *st);
int fuse_reply_xattr_size(struct fuse_req *r, uint32_t size);
int fuse_reply_lseek(struct fuse_req *r, uint64_t offset);
int fuse_reply_copy_range(struct fuse_req *r, uint64_t count);

#endif
