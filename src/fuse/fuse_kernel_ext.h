/* FUSE protocol definitions newer than the system's <linux/fuse.h> (Debian 12: 7.38, and that
 * header even lacks two 7.38 items). This is the one place they are declared; each carries the
 * protocol minor that added it. Layouts follow the kernel uapi header at 7.45 (Linux 6.18).
 *
 * Version history of what we declare here:
 *   7.38  FUSE_CREATE_SUPP_GROUP init flag, FUSE_EXT_GROUPS extension, struct fuse_supp_groups
 *   7.39  FUSE_DIRECT_IO_ALLOW_MMAP, FUSE_STATX opcode
 *   7.40  FUSE_PASSTHROUGH, fuse_init_out.max_stack_depth, fuse_open_out.backing_id,
 *         FOPEN_PASSTHROUGH, FUSE_NO_EXPORT_SUPPORT, FUSE_HAS_RESEND, FUSE_NOTIFY_RESEND,
 *         struct fuse_backing_map and the BACKING_OPEN/CLOSE ioctls
 *   7.41  FUSE_ALLOW_IDMAP
 *   7.42  FUSE_OVER_IO_URING, the fuse_uring_* structs and enum fuse_uring_cmd
 *   7.43  FUSE_REQUEST_TIMEOUT, fuse_init_out.request_timeout
 *   7.44  FUSE_NOTIFY_INC_EPOCH
 *   7.45  FUSE_COPY_FILE_RANGE_64, struct fuse_copy_file_range_out, FUSE_NOTIFY_PRUNE
 *   6.18  FUSE_DEV_IOC_SYNC_INIT ioctl (no minor bump)
 */
#ifndef CACHEMAX_FUSE_KERNEL_EXT_H
#define CACHEMAX_FUSE_KERNEL_EXT_H

#include <linux/fuse.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* The protocol version we speak. */
#define CM_FUSE_MAJOR 7
#define CM_FUSE_MINOR 45

/* INIT flags; bits 32..63 travel in flags2 and only count when FUSE_INIT_EXT is echoed. */
#ifndef FUSE_CREATE_SUPP_GROUP
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#endif
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#define FUSE_PASSTHROUGH (1ULL << 37)
#define FUSE_NO_EXPORT_SUPPORT (1ULL << 38)
#define FUSE_HAS_RESEND (1ULL << 39)
#define FUSE_ALLOW_IDMAP (1ULL << 40)
#define FUSE_OVER_IO_URING (1ULL << 41)
#define FUSE_REQUEST_TIMEOUT (1ULL << 42)

/* Open reply flags. */
#define FOPEN_PASSTHROUGH (1U << 7)
/* The only flags the kernel accepts together with FOPEN_PASSTHROUGH; others make open() fail. */
#define CM_FOPEN_PASSTHROUGH_MASK (FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO | \
                                   FOPEN_PARALLEL_DIRECT_WRITES | FOPEN_NOFLUSH)

/* Opcodes. */
#define CM_FUSE_STATX 52
#define CM_FUSE_COPY_FILE_RANGE_64 53

/* Notify codes. */
#define CM_FUSE_NOTIFY_RESEND 7
#define CM_FUSE_NOTIFY_INC_EPOCH 8
#define CM_FUSE_NOTIFY_PRUNE 9

/* Request extension types (7.38). */
#ifndef FUSE_EXT_GROUPS
#define FUSE_EXT_GROUPS 32
#endif
struct cm_fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};

/* fuse_init_out as of 7.43+: max_stack_depth replaced unused[0], request_timeout follows. */
struct cm_fuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused[11];
};

/* fuse_open_out as of 7.40: backing_id replaced padding. */
struct cm_fuse_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

/* Argument of FUSE_DEV_IOC_BACKING_OPEN. */
struct cm_fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

struct cm_fuse_copy_file_range_out {
	uint64_t bytes_copied;
};

/* FUSE-over-io_uring (7.42). One ring entry is a header buffer (this struct) and a payload
 * buffer; requests and replies travel through them (KERNEL-FUSE.md §1.5). */
struct cm_fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;    /* echo back in COMMIT_AND_FETCH */
	uint32_t payload_sz;   /* bytes used in the payload buffer, both directions */
	uint32_t padding;
	uint64_t reserved;
};

#define CM_FUSE_URING_IN_OUT_HEADER_SZ 128
#define CM_FUSE_URING_OP_IN_OUT_SZ 128
struct cm_fuse_uring_req_header {
	char in_out[CM_FUSE_URING_IN_OUT_HEADER_SZ];  /* fuse_in_header / fuse_out_header */
	char op_in[CM_FUSE_URING_OP_IN_OUT_SZ];       /* first (per-opcode) request argument */
	struct cm_fuse_uring_ent_in_out ring_ent_in_out;
};

/* Lives in the command area of a 128-byte SQE (sqe->cmd). */
struct cm_fuse_uring_cmd_req {
	uint64_t flags;        /* 0 */
	uint64_t commit_id;
	uint16_t qid;          /* queue = CPU index */
	uint8_t padding[6];
};

enum cm_fuse_uring_cmd {
	CM_FUSE_IO_URING_CMD_INVALID = 0,
	CM_FUSE_IO_URING_CMD_REGISTER = 1,
	CM_FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};

#define CM_FUSE_DEV_IOC_MAGIC 229
#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(CM_FUSE_DEV_IOC_MAGIC, 0, uint32_t)
#endif
#define CM_FUSE_DEV_IOC_BACKING_OPEN _IOW(CM_FUSE_DEV_IOC_MAGIC, 1, struct cm_fuse_backing_map)
#define CM_FUSE_DEV_IOC_BACKING_CLOSE _IOW(CM_FUSE_DEV_IOC_MAGIC, 2, uint32_t)
#define CM_FUSE_DEV_IOC_SYNC_INIT _IO(CM_FUSE_DEV_IOC_MAGIC, 3)

_Static_assert(sizeof(struct cm_fuse_init_out) == 64, "fuse_init_out is 64 bytes");
_Static_assert(sizeof(struct cm_fuse_open_out) == 16, "fuse_open_out is 16 bytes");
_Static_assert(sizeof(struct cm_fuse_backing_map) == 16, "fuse_backing_map is 16 bytes");
_Static_assert(sizeof(struct cm_fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out is 32 bytes");
_Static_assert(sizeof(struct cm_fuse_uring_req_header) == 288, "fuse_uring_req_header is 288 bytes");
_Static_assert(sizeof(struct cm_fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req is 24 bytes");
_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header is 40 bytes");
_Static_assert(sizeof(struct fuse_init_in) == 64, "fuse_init_in is 64 bytes");

#endif
