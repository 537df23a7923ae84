/* fuse_proto: pure functions over the FUSE wire format. No I/O, no allocation, no global state:
 * every function works on buffers the caller owns, so all of it is unit-tested without a mount.
 *   - request validation: header length, the opcode table of fuse_opcode.h (minimum body sizes,
 *     NUL-terminated names), request extensions (supplementary groups);
 *   - directory record packing for READDIR and READDIRPLUS;
 *   - INIT negotiation: what we ask for against what the kernel offers.
 * Errors are returned as -errno; out-parameters are written only on success.
 */
#ifndef CACHEMAX_FUSE_PROTO_H
#define CACHEMAX_FUSE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuse/fuse_kernel_ext.h"

#define FUSE_PROTO_MAX_NAMES 2
#define FUSE_PROTO_MAX_GROUPS 64

/* One request, decoded in place: pointers refer into the caller's buffer. */
struct fuse_proto_request {
	const struct fuse_in_header *header;
	uint32_t opcode;
	const char *opname;       /* "LOOKUP", … ("UNKNOWN" if not in the table) */
	const void *arg;          /* fixed-size argument struct of the opcode (may be NULL) */
	size_t arg_size;          /* size of the fixed argument (the table's minimum) */
	size_t body_size;         /* whole body without extensions (INIT: the variable-size init_in) */
	const char *names[FUSE_PROTO_MAX_NAMES]; /* NUL-terminated names following arg */
	const void *data;         /* payload after arg (WRITE data, SETXATTR value), or NULL */
	size_t data_size;
	uint32_t group_count;     /* supplementary groups from FUSE_EXT_GROUPS */
	uint32_t groups[FUSE_PROTO_MAX_GROUPS];
};

/* Validate and decode one request of exactly `len` bytes.
 * Returns 0, -EINVAL (malformed: length, short body, missing NUL, bad extension) or -ENOSYS
 * (opcode not in the table; header fields are still filled so the caller can reply).
 * `granted`: the INIT flags the connection was granted, which change some layouts (with
 * FUSE_SETXATTR_EXT a SETXATTR's fixed part is a whole struct fuse_setxattr_in, else the
 * 8-byte compat one). */
int fuse_proto_request_decode(const void *buf, size_t len, uint64_t granted,
                              struct fuse_proto_request *out);

/* Name of an opcode for logs, never NULL. */
const char *fuse_proto_opcode_name(uint32_t opcode);
/* Whether the kernel waits for an answer to this opcode (false: FORGET, BATCH_FORGET,
 * NOTIFY_REPLY; an opcode not in the table is answered, ENOSYS). */
bool fuse_proto_opcode_replied(uint32_t opcode);
/* Whether the opcode is served before INIT was answered (INIT, forgets, INTERRUPT). */
bool fuse_proto_opcode_before_init(uint32_t opcode);

/* Append one READDIR record (struct fuse_dirent + name, 8-byte aligned) at buf+used.
 * Returns the record size, or 0 when it does not fit into `size` (the caller stops there). */
size_t fuse_proto_dirent_add(void *buf, size_t size, size_t used, const char *name, size_t namelen,
                             uint64_t ino, uint32_t type, uint64_t next_off);

/* Size a READDIR record for this name would take. */
size_t fuse_proto_dirent_size(size_t namelen);

/* Size a READDIRPLUS record for this name would take. */
size_t fuse_proto_direntplus_size(size_t namelen);

/* Append one READDIRPLUS record (struct fuse_entry_out + dirent + name). Same return as above. */
size_t fuse_proto_direntplus_add(void *buf, size_t size, size_t used, const char *name,
                                 size_t namelen, const struct fuse_entry_out *entry,
                                 uint32_t type, uint64_t next_off);

/* What the file system wants from INIT. */
struct fuse_proto_init_wants {
	uint64_t flags;            /* desired INIT flags (FUSE_INIT_EXT is added when offered) */
	uint32_t max_write;
	uint32_t max_readahead;    /* 0: take the kernel's offer */
	uint16_t max_pages;
	uint16_t max_background;
	uint32_t max_stack_depth;  /* used only when FUSE_PASSTHROUGH is granted */
};

/* Result of the negotiation. */
struct fuse_proto_init_result {
	uint32_t kernel_major, kernel_minor;
	uint64_t offered;          /* flags the kernel offered */
	uint64_t granted;          /* flags we replied with */
	uint32_t max_write;
};

/* Compute the INIT reply for the kernel's INIT body `in` of `in_size` bytes.
 * Returns 0 (reply `out`, `*out_size` bytes), -EPROTO (major < 7), or -EAGAIN when the kernel
 * speaks a newer major: reply with just our major (out filled, *out_size = 8) and await a new INIT. */
int fuse_proto_init_negotiate(const void *in, size_t in_size,
                              const struct fuse_proto_init_wants *wants,
                              struct cm_fuse_init_out *out, size_t *out_size,
                              struct fuse_proto_init_result *result);

#endif
