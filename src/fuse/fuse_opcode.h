/* fuse_opcode: the one table of FUSE opcodes we serve (private to src/fuse/). Each row says
 * everything about one opcode: its name for logs, the wire shape of its body (fixed argument
 * size, NUL-terminated names after it, whether a payload may follow), how the session treats
 * it, and the session's handler. fuse_proto.c expands the wire columns (so the decoder, its unit
 * test and the fuzzer need nothing but fuse_proto.c); fuse_session.c expands the handler column.
 * An opcode not in the table is answered ENOSYS. A new opcode is one row here, and one handler
 * in fuse_session.c (NULL: answered ENOSYS).
 *
 * Columns: FUSE_OPCODE(code, name, arg_size, name_count, payload, flags, handler)
 *   payload  NONE: the body is exactly arg (+ names); TRAILING: anything after is the payload
 *            (WRITE data, an xattr value, forgets, the growing INIT body);
 *   flags    FUSE_OPCODE_NO_REPLY: the kernel waits for no answer (a reply would be an error
 *            on the device); FUSE_OPCODE_BEFORE_INIT: served also before INIT was answered.
 */
#ifndef CACHEMAX_FUSE_OPCODE_H
#define CACHEMAX_FUSE_OPCODE_H

#include "fuse/fuse_kernel_ext.h"

#define FUSE_OPCODE_NO_REPLY 1u
#define FUSE_OPCODE_BEFORE_INIT 2u

/* The oldest INIT body we accept (major, minor, max_readahead, flags); the rest is optional. */
#define FUSE_OPCODE_INIT_MIN 16
/* struct fuse_statx_in (7.39), declared by fuse_kernel_ext.h only as an opcode. */
#define FUSE_OPCODE_STATX_MIN 24

#define FUSE_OPCODE_TABLE(X)                                                                    \
	X(FUSE_LOOKUP, "LOOKUP", 0, 1, NONE, 0, op_lookup)                                       \
	X(FUSE_FORGET, "FORGET", sizeof(struct fuse_forget_in), 0, NONE,                         \
	  FUSE_OPCODE_NO_REPLY | FUSE_OPCODE_BEFORE_INIT, op_forget)                             \
	X(FUSE_GETATTR, "GETATTR", sizeof(struct fuse_getattr_in), 0, NONE, 0, op_getattr)       \
	X(FUSE_SETATTR, "SETATTR", sizeof(struct fuse_setattr_in), 0, NONE, 0, op_setattr)       \
	X(FUSE_READLINK, "READLINK", 0, 0, NONE, 0, op_readlink)                                 \
	X(FUSE_SYMLINK, "SYMLINK", 0, 2, NONE, 0, op_symlink)                                    \
	X(FUSE_MKNOD, "MKNOD", sizeof(struct fuse_mknod_in), 1, NONE, 0, op_mknod)               \
	X(FUSE_MKDIR, "MKDIR", sizeof(struct fuse_mkdir_in), 1, NONE, 0, op_mkdir)               \
	X(FUSE_UNLINK, "UNLINK", 0, 1, NONE, 0, op_unlink)                                       \
	X(FUSE_RMDIR, "RMDIR", 0, 1, NONE, 0, op_rmdir)                                          \
	X(FUSE_RENAME, "RENAME", sizeof(struct fuse_rename_in), 2, NONE, 0, op_rename)           \
	X(FUSE_LINK, "LINK", sizeof(struct fuse_link_in), 1, NONE, 0, op_link)                   \
	X(FUSE_OPEN, "OPEN", sizeof(struct fuse_open_in), 0, NONE, 0, op_open)                   \
	X(FUSE_READ, "READ", sizeof(struct fuse_read_in), 0, NONE, 0, op_read)                   \
	X(FUSE_WRITE, "WRITE", sizeof(struct fuse_write_in), 0, TRAILING, 0, op_write)           \
	X(FUSE_STATFS, "STATFS", 0, 0, NONE, 0, op_statfs)                                       \
	X(FUSE_RELEASE, "RELEASE", sizeof(struct fuse_release_in), 0, NONE, 0, op_release)       \
	X(FUSE_FSYNC, "FSYNC", sizeof(struct fuse_fsync_in), 0, NONE, 0, op_fsync)               \
	X(FUSE_SETXATTR, "SETXATTR", FUSE_COMPAT_SETXATTR_IN_SIZE, 1, TRAILING, 0, op_setxattr)  \
	X(FUSE_GETXATTR, "GETXATTR", sizeof(struct fuse_getxattr_in), 1, NONE, 0, op_getxattr)   \
	X(FUSE_LISTXATTR, "LISTXATTR", sizeof(struct fuse_getxattr_in), 0, NONE, 0, op_listxattr) \
	X(FUSE_REMOVEXATTR, "REMOVEXATTR", 0, 1, NONE, 0, op_removexattr)                        \
	X(FUSE_FLUSH, "FLUSH", sizeof(struct fuse_flush_in), 0, NONE, 0, op_flush)               \
	X(FUSE_INIT, "INIT", FUSE_OPCODE_INIT_MIN, 0, TRAILING, FUSE_OPCODE_BEFORE_INIT, op_init) \
	X(FUSE_OPENDIR, "OPENDIR", sizeof(struct fuse_open_in), 0, NONE, 0, op_opendir)          \
	X(FUSE_READDIR, "READDIR", sizeof(struct fuse_read_in), 0, NONE, 0, op_readdir)          \
	X(FUSE_RELEASEDIR, "RELEASEDIR", sizeof(struct fuse_release_in), 0, NONE, 0,             \
	  op_releasedir)                                                                         \
	X(FUSE_FSYNCDIR, "FSYNCDIR", sizeof(struct fuse_fsync_in), 0, NONE, 0, op_fsyncdir)      \
	X(FUSE_GETLK, "GETLK", sizeof(struct fuse_lk_in), 0, NONE, 0, NULL)                      \
	X(FUSE_SETLK, "SETLK", sizeof(struct fuse_lk_in), 0, NONE, 0, NULL)                      \
	X(FUSE_SETLKW, "SETLKW", sizeof(struct fuse_lk_in), 0, NONE, 0, NULL)                    \
	X(FUSE_ACCESS, "ACCESS", sizeof(struct fuse_access_in), 0, NONE, 0, op_access)           \
	X(FUSE_CREATE, "CREATE", sizeof(struct fuse_create_in), 1, NONE, 0, op_create)           \
	/* Our requests finish quickly: ENOSYS (no handler) tells the kernel to stop sending. */ \
	X(FUSE_INTERRUPT, "INTERRUPT", sizeof(struct fuse_interrupt_in), 0, NONE,                \
	  FUSE_OPCODE_BEFORE_INIT, NULL)                                                         \
	X(FUSE_BMAP, "BMAP", sizeof(struct fuse_bmap_in), 0, NONE, 0, NULL)                      \
	X(FUSE_DESTROY, "DESTROY", 0, 0, NONE, 0, op_destroy)                                    \
	X(FUSE_IOCTL, "IOCTL", sizeof(struct fuse_ioctl_in), 0, TRAILING, 0, NULL)               \
	X(FUSE_POLL, "POLL", sizeof(struct fuse_poll_in), 0, NONE, 0, NULL)                      \
	X(FUSE_NOTIFY_REPLY, "NOTIFY_REPLY", sizeof(struct fuse_notify_retrieve_in), 0, TRAILING, \
	  FUSE_OPCODE_NO_REPLY | FUSE_OPCODE_BEFORE_INIT, NULL)                                  \
	X(FUSE_BATCH_FORGET, "BATCH_FORGET", sizeof(struct fuse_batch_forget_in), 0, TRAILING,   \
	  FUSE_OPCODE_NO_REPLY | FUSE_OPCODE_BEFORE_INIT, op_batch_forget)                       \
	X(FUSE_FALLOCATE, "FALLOCATE", sizeof(struct fuse_fallocate_in), 0, NONE, 0,             \
	  op_fallocate)                                                                          \
	X(FUSE_READDIRPLUS, "READDIRPLUS", sizeof(struct fuse_read_in), 0, NONE, 0,              \
	  op_readdirplus)                                                                        \
	X(FUSE_RENAME2, "RENAME2", sizeof(struct fuse_rename2_in), 2, NONE, 0, op_rename2)       \
	X(FUSE_LSEEK, "LSEEK", sizeof(struct fuse_lseek_in), 0, NONE, 0, op_lseek)               \
	X(FUSE_COPY_FILE_RANGE, "COPY_FILE_RANGE", sizeof(struct fuse_copy_file_range_in), 0,    \
	  NONE, 0, op_copy_file_range)                                                           \
	X(FUSE_SYNCFS, "SYNCFS", sizeof(struct fuse_syncfs_in), 0, NONE, 0, op_syncfs)           \
	X(FUSE_TMPFILE, "TMPFILE", sizeof(struct fuse_create_in), 1, NONE, 0, op_tmpfile)        \
	X(CM_FUSE_STATX, "STATX", FUSE_OPCODE_STATX_MIN, 0, NONE, 0, NULL)                       \
	X(CM_FUSE_COPY_FILE_RANGE_64, "COPY_FILE_RANGE_64",                                      \
	  sizeof(struct fuse_copy_file_range_in), 0, NONE, 0, op_copy_file_range_64)

#endif
