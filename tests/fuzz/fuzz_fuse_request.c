/* libFuzzer target: the FUSE request decoder (fuse_proto_request_decode) and the INIT
 * negotiation (fuse_proto_init_negotiate) over arbitrary bytes from "the kernel". Every input is
 * copied into a buffer of exactly its size, so ASan sees any read past the request. Checks the
 * decoder's contract (fuse_proto.h); a violation aborts, which libFuzzer reports as a crash.
 * Run: make fuzz (bounded), or docs/FUZZING.md for long runs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void check_decoded(const uint8_t *buf, size_t len, const struct fuse_proto_request *r)
{
	const uint8_t *body = buf + sizeof(struct fuse_in_header), *end = body + r->body_size;

	CHECK(len >= sizeof(struct fuse_in_header));
	CHECK((const void *)r->header == (const void *)buf && r->header->len == len);
	CHECK(r->body_size + sizeof(struct fuse_in_header) + (size_t)r->header->total_extlen * 8 == len);
	CHECK(r->arg_size <= r->body_size);
	CHECK(strcmp(r->opname, "UNKNOWN") != 0);
	for (int i = 0; i < FUSE_PROTO_MAX_NAMES; i++) {
		const uint8_t *s = (const uint8_t *)r->names[i];
		if (!s)
			continue;
		CHECK(s >= body + r->arg_size && s < end);
		CHECK(memchr(s, 0, (size_t)(end - s)) != NULL && s[0] != 0);
	}
	if (r->data) {
		const uint8_t *d = r->data;
		CHECK(d >= body + r->arg_size && d < end);
		CHECK(r->data_size > 0 && d + r->data_size == end);
	} else {
		CHECK(r->data_size == 0);
	}
	CHECK(r->group_count <= FUSE_PROTO_MAX_GROUPS);
}

/* One decode of buf as a connection granted `granted` would see it. */
static void decode_one(uint8_t *buf, size_t size, uint64_t granted)
{
	struct fuse_proto_request r, sentinel;
	int rc;

	memset(&r, 0xA5, sizeof(r));
	memset(&sentinel, 0xA5, sizeof(sentinel));
	rc = fuse_proto_request_decode(buf, size, granted, &r);
	if (rc == 0) {
		check_decoded(buf, size, &r);
		if (r.opcode == FUSE_INIT) {
			struct fuse_proto_init_wants wants = { .flags = ~0ull, .max_write = 1 << 20,
			                                      .max_pages = 256, .max_background = 64,
			                                      .max_stack_depth = 1 };
			struct cm_fuse_init_out out;
			struct fuse_proto_init_result result;
			size_t out_size = 0;
			rc = fuse_proto_init_negotiate(r.arg, r.body_size, &wants, &out, &out_size, &result);
			CHECK(rc == 0 || rc == -EPROTO || rc == -EAGAIN || rc == -EINVAL);
			if (rc == 0 || rc == -EAGAIN)
				CHECK(out_size <= sizeof(out));
		}
	} else if (rc == -ENOSYS) {
		CHECK((const void *)r.header == (const void *)buf && r.opcode == r.header->opcode);
	} else {
		CHECK(rc == -EINVAL);
		CHECK(memcmp(&r, &sentinel, sizeof(r)) == 0);  /* out untouched on failure */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* Both layouts the connection's INIT can choose (FUSE_SETXATTR_EXT: a longer SETXATTR). */
	decode_one(buf, size, 0);
	decode_one(buf, size, FUSE_SETXATTR_EXT);
	free(buf);
	return 0;
}
