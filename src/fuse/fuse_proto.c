/* fuse_proto: validation and encoding of the FUSE wire format (see fuse_proto.h).
 * The opcode table (fuse_opcode.h) is the single description of every request body we accept:
 * its fixed argument size, how many NUL-terminated names follow, and whether a payload follows.
 */
#include "fuse/fuse_proto.h"
#include "fuse/fuse_opcode.h"

#include <errno.h>
#include <string.h>

enum payload_kind {
	PAYLOAD_NONE,      /* body is exactly arg (+ names) */
	PAYLOAD_TRAILING,  /* anything after arg (+ names) is payload: WRITE data, xattr value, forgets */
};

struct opcode_desc {
	const char *name;
	uint16_t arg_size;   /* minimum size of the fixed argument */
	uint8_t name_count;  /* NUL-terminated names after arg */
	uint8_t payload;     /* enum payload_kind */
	uint8_t flags;       /* FUSE_OPCODE_NO_REPLY, FUSE_OPCODE_BEFORE_INIT */
};

/* The wire columns of fuse_opcode.h's table; the handler column is the session's. */
#define OPCODE_WIRE(code, nm, argsz, names, pay, fl, handler) \
	[code] = { nm, argsz, names, PAYLOAD_##pay, fl },
static const struct opcode_desc opcode_table[] = { FUSE_OPCODE_TABLE(OPCODE_WIRE) };
#undef OPCODE_WIRE

#define OPCODE_TABLE_SIZE (sizeof(opcode_table) / sizeof(opcode_table[0]))

static const struct opcode_desc *opcode_lookup(uint32_t opcode)
{
	if (opcode >= OPCODE_TABLE_SIZE || !opcode_table[opcode].name)
		return NULL;
	return &opcode_table[opcode];
}

const char *fuse_proto_opcode_name(uint32_t opcode)
{
	const struct opcode_desc *d = opcode_lookup(opcode);
	return d ? d->name : "UNKNOWN";
}

bool fuse_proto_opcode_replied(uint32_t opcode)
{
	const struct opcode_desc *d = opcode_lookup(opcode);
	return !d || !(d->flags & FUSE_OPCODE_NO_REPLY);
}

bool fuse_proto_opcode_before_init(uint32_t opcode)
{
	const struct opcode_desc *d = opcode_lookup(opcode);
	return d && (d->flags & FUSE_OPCODE_BEFORE_INIT);
}

/* Parse the request extensions (7.38): a sequence of {size, type} headers, 8-byte aligned. */
static int decode_extensions(const uint8_t *ext, size_t ext_size, struct fuse_proto_request *out)
{
	size_t pos = 0;
	while (pos < ext_size) {
		struct fuse_ext_header eh;
		if (ext_size - pos < sizeof(eh))
			return -EINVAL;
		memcpy(&eh, ext + pos, sizeof(eh));
		if (eh.size < sizeof(eh) || eh.size % 8 != 0 || eh.size > ext_size - pos)
			return -EINVAL;
		if (eh.type == FUSE_EXT_GROUPS) {
			uint32_t nr;
			size_t payload = eh.size - sizeof(eh);
			if (payload < sizeof(nr))
				return -EINVAL;
			memcpy(&nr, ext + pos + sizeof(eh), sizeof(nr));
			if (nr > (payload - sizeof(nr)) / sizeof(uint32_t))
				return -EINVAL;
			if (nr > FUSE_PROTO_MAX_GROUPS)
				nr = FUSE_PROTO_MAX_GROUPS;
			memcpy(out->groups, ext + pos + sizeof(eh) + sizeof(nr), nr * sizeof(uint32_t));
			out->group_count = nr;
		}
		/* Other types (security contexts) are not requested; skip them. */
		pos += eh.size;
	}
	return 0;
}

int fuse_proto_request_decode(const void *buf, size_t len, uint64_t granted,
                              struct fuse_proto_request *out)
{
	struct fuse_proto_request r;
	const uint8_t *p = buf;
	const struct opcode_desc *d;
	size_t body_size, ext_size, pos, arg_size;

	if (len < sizeof(struct fuse_in_header))
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	r.header = buf;
	if (r.header->len != len)
		return -EINVAL;
	r.opcode = r.header->opcode;
	r.opname = fuse_proto_opcode_name(r.opcode);
	ext_size = (size_t)r.header->total_extlen * 8;
	if (ext_size > len - sizeof(struct fuse_in_header))
		return -EINVAL;
	body_size = len - sizeof(struct fuse_in_header) - ext_size;
	p += sizeof(struct fuse_in_header);

	d = opcode_lookup(r.opcode);
	if (!d) {
		*out = r;
		return -ENOSYS;
	}
	arg_size = d->arg_size;
	if (r.opcode == FUSE_SETXATTR && (granted & FUSE_SETXATTR_EXT))
		arg_size = sizeof(struct fuse_setxattr_in);
	if (body_size < arg_size)
		return -EINVAL;
	r.arg = arg_size || body_size ? p : NULL;
	r.arg_size = arg_size;
	r.body_size = body_size;
	pos = arg_size;
	for (unsigned i = 0; i < d->name_count; i++) {
		const char *s = (const char *)p + pos;
		size_t left = body_size - pos;
		size_t n = left ? strnlen(s, left) : 0;
		if (n == left || n == 0)  /* no terminating NUL inside the body, or an empty name */
			return -EINVAL;
		r.names[i] = s;
		pos += n + 1;
	}
	if (pos < body_size) {
		if (d->payload != PAYLOAD_TRAILING)
			return -EINVAL;
		r.data = p + pos;
		r.data_size = body_size - pos;
	}
	if (ext_size) {
		int rc = decode_extensions(p + body_size, ext_size, &r);
		if (rc < 0)
			return rc;
	}
	*out = r;
	return 0;
}

size_t fuse_proto_dirent_add(void *buf, size_t size, size_t used, const char *name, size_t namelen,
                             uint64_t ino, uint32_t type, uint64_t next_off)
{
	size_t rec = fuse_proto_dirent_size(namelen);
	struct fuse_dirent de;
	uint8_t *dst;

	if (used > size || rec > size - used)
		return 0;
	dst = (uint8_t *)buf + used;
	de.ino = ino;
	de.off = next_off;
	de.namelen = (uint32_t)namelen;
	de.type = type;
	memcpy(dst, &de, FUSE_NAME_OFFSET);
	memcpy(dst + FUSE_NAME_OFFSET, name, namelen);
	memset(dst + FUSE_NAME_OFFSET + namelen, 0, rec - FUSE_NAME_OFFSET - namelen);
	return rec;
}

size_t fuse_proto_dirent_size(size_t namelen)
{
	return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
}

size_t fuse_proto_direntplus_size(size_t namelen)
{
	return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);
}

size_t fuse_proto_direntplus_add(void *buf, size_t size, size_t used, const char *name,
                                 size_t namelen, const struct fuse_entry_out *entry,
                                 uint32_t type, uint64_t next_off)
{
	size_t rec = fuse_proto_direntplus_size(namelen);
	struct fuse_dirent de;
	uint8_t *dst;

	if (used > size || rec > size - used)
		return 0;
	dst = (uint8_t *)buf + used;
	memcpy(dst, entry, sizeof(*entry));
	de.ino = entry->attr.ino;
	de.off = next_off;
	de.namelen = (uint32_t)namelen;
	de.type = type;
	memcpy(dst + sizeof(*entry), &de, FUSE_NAME_OFFSET);
	memcpy(dst + FUSE_NAME_OFFSET_DIRENTPLUS, name, namelen);
	memset(dst + FUSE_NAME_OFFSET_DIRENTPLUS + namelen, 0,
	       rec - FUSE_NAME_OFFSET_DIRENTPLUS - namelen);
	return rec;
}

int fuse_proto_init_negotiate(const void *in, size_t in_size,
                              const struct fuse_proto_init_wants *wants,
                              struct cm_fuse_init_out *out, size_t *out_size,
                              struct fuse_proto_init_result *result)
{
	struct fuse_init_in init;
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	uint64_t offered, granted;

	if (in_size < 16)
		return -EINVAL;
	memset(&init, 0, sizeof(init));
	memcpy(&init, in, in_size < sizeof(init) ? in_size : sizeof(init));
	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	res.kernel_major = init.major;
	res.kernel_minor = init.minor;

	if (init.major < CM_FUSE_MAJOR)
		return -EPROTO;
	if (init.major > CM_FUSE_MAJOR) {
		/* Newer major: answer with ours only; the kernel sends a new INIT. */
		o.major = CM_FUSE_MAJOR;
		o.minor = CM_FUSE_MINOR;
		*out = o;
		*out_size = 8;
		*result = res;
		return -EAGAIN;
	}

	offered = init.flags;
	/* flags2 exists only when the kernel set INIT_EXT and sent the long body. */
	if ((init.flags & FUSE_INIT_EXT) && in_size >= 20)
		offered |= (uint64_t)init.flags2 << 32;
	granted = wants->flags & offered;
	if (offered & FUSE_INIT_EXT)
		granted |= FUSE_INIT_EXT;  /* without the echo the kernel ignores flags2 */
	/* Passthrough needs a valid stack depth and excludes the writeback cache. */
	if (granted & FUSE_PASSTHROUGH) {
		if (wants->max_stack_depth < 1 || wants->max_stack_depth > 2 ||
		    (granted & FUSE_WRITEBACK_CACHE))
			granted &= ~FUSE_PASSTHROUGH;
	}
	if (!(granted & FUSE_INIT_EXT))
		granted &= 0xffffffffULL;

	o.major = CM_FUSE_MAJOR;
	o.minor = init.minor < CM_FUSE_MINOR ? init.minor : CM_FUSE_MINOR;
	o.max_readahead = wants->max_readahead && wants->max_readahead < init.max_readahead
		? wants->max_readahead : init.max_readahead;
	o.flags = (uint32_t)granted;
	o.flags2 = (uint32_t)(granted >> 32);
	o.max_background = wants->max_background;
	o.congestion_threshold = (uint16_t)(wants->max_background * 3 / 4);
	o.max_write = wants->max_write < 4096 ? 4096 : wants->max_write;
	o.time_gran = 1;
	o.max_pages = (granted & FUSE_MAX_PAGES) ? wants->max_pages : 0;
	o.max_stack_depth = (granted & FUSE_PASSTHROUGH) ? wants->max_stack_depth : 0;

	res.offered = offered;
	res.granted = granted;
	res.max_write = o.max_write;
	*out = o;
	*out_size = sizeof(o);
	*result = res;
	return 0;
}
