/* Unit tests for src/fuse/fuse_proto.c: request decoding (opcode table, names, payload,
 * extensions), READDIR/READDIRPLUS record packing and INIT negotiation.
 * Every request is built in an exactly-sized heap buffer so that ASan catches any overread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>

#include <cmocka.h>

#include "fuse/fuse_proto.h"

#define HDR_SIZE sizeof(struct fuse_in_header)

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

struct bytes {
	uint8_t d[4096];
	size_t n;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->d));
	if (n)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

/* Name with its terminating NUL. */
static void put_name(struct bytes *b, const char *s)
{
	put(b, s, strlen(s) + 1);
}

static void put_u32(struct bytes *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

/* A supplementary-groups extension: {size, type} + {nr, groups[]} padded to 8 bytes. */
static void put_groups_ext(struct bytes *b, const uint32_t *groups, uint32_t nr)
{
	struct fuse_ext_header eh;
	size_t start = b->n, raw = sizeof(eh) + sizeof(uint32_t) + nr * sizeof(uint32_t);
	eh.size = (uint32_t)((raw + 7) & ~(size_t)7);
	eh.type = FUSE_EXT_GROUPS;
	put(b, &eh, sizeof(eh));
	put_u32(b, nr);
	put(b, groups, nr * sizeof(uint32_t));
	while (b->n - start < eh.size)
		put(b, "\0", 1);
}

/* Request = header + body + ext, in a heap buffer of exactly that size. */
static uint8_t *build_req_ext(uint32_t opcode, const struct bytes *body, const struct bytes *ext,
                              size_t *out_len)
{
	size_t body_n = body ? body->n : 0, ext_n = ext ? ext->n : 0;
	size_t len = HDR_SIZE + body_n + ext_n;
	struct fuse_in_header h;
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(ext_n % 8, 0);
	memset(&h, 0, sizeof(h));
	h.len = (uint32_t)len;
	h.opcode = opcode;
	h.unique = 0x1122334455667788ULL;
	h.nodeid = 42;
	h.uid = 1000;
	h.gid = 1001;
	h.pid = 4242;
	h.total_extlen = (uint16_t)(ext_n / 8);
	memcpy(buf, &h, sizeof(h));
	if (body_n)
		memcpy(buf + HDR_SIZE, body->d, body_n);
	if (ext_n)
		memcpy(buf + HDR_SIZE + body_n, ext->d, ext_n);
	*out_len = len;
	return buf;
}

static uint8_t *build_req(uint32_t opcode, const struct bytes *body, size_t *out_len)
{
	return build_req_ext(opcode, body, NULL, out_len);
}

static void set_hdr_len(uint8_t *buf, uint32_t len)
{
	memcpy(buf + offsetof(struct fuse_in_header, len), &len, sizeof(len));
}

static void set_hdr_extlen(uint8_t *buf, uint16_t extlen)
{
	memcpy(buf + offsetof(struct fuse_in_header, total_extlen), &extlen, sizeof(extlen));
}

/* Decode and check that the out-parameter is untouched on failure. */
static int decode_checked(const uint8_t *buf, size_t len, struct fuse_proto_request *out)
{
	struct fuse_proto_request sentinel;
	int rc;

	memset(out, 0xA5, sizeof(*out));
	memset(&sentinel, 0xA5, sizeof(sentinel));
	rc = fuse_proto_request_decode(buf, len, 0, out);
	if (rc == -EINVAL)
		assert_memory_equal(out, &sentinel, sizeof(sentinel));
	return rc;
}

static int decode_body(uint32_t opcode, const struct bytes *body)
{
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf = build_req(opcode, body, &len);
	int rc = decode_checked(buf, len, &r);
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Well-formed requests
 * ------------------------------------------------------------------------------------------- */

static void test_decode_lookup(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put_name(&body, "file.txt");
	buf = build_req(FUSE_LOOKUP, &body, &len);
	assert_int_equal(len, 40 + 9);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_ptr_equal(r.header, buf);
	assert_int_equal(r.opcode, FUSE_LOOKUP);
	assert_string_equal(r.opname, "LOOKUP");
	assert_int_equal(r.header->unique, 0x1122334455667788ULL);
	assert_int_equal(r.header->nodeid, 42);
	assert_int_equal(r.arg_size, 0);
	assert_int_equal(r.body_size, 9);
	assert_ptr_equal(r.names[0], buf + 40);
	assert_string_equal(r.names[0], "file.txt");
	assert_null(r.names[1]);
	assert_null(r.data);
	assert_int_equal(r.data_size, 0);
	assert_int_equal(r.group_count, 0);
	free(buf);
}

static void test_decode_empty_body(void **state)
{
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf = build_req(FUSE_STATFS, NULL, &len);

	assert_int_equal(len, 40);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_int_equal(r.opcode, FUSE_STATFS);
	assert_string_equal(r.opname, "STATFS");
	assert_null(r.arg);
	assert_int_equal(r.arg_size, 0);
	assert_int_equal(r.body_size, 0);
	assert_null(r.names[0]);
	assert_null(r.data);
	free(buf);
}

static void test_decode_getattr(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_getattr_in in = { .getattr_flags = FUSE_GETATTR_FH, .fh = 99 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put(&body, &in, sizeof(in));
	buf = build_req(FUSE_GETATTR, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_ptr_equal(r.arg, buf + 40);
	assert_int_equal(r.arg_size, sizeof(struct fuse_getattr_in));
	assert_int_equal(r.body_size, 16);
	assert_null(r.data);
	assert_int_equal(((const struct fuse_getattr_in *)r.arg)->fh, 99);
	free(buf);
}

static void test_decode_write(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_write_in in;
	uint8_t payload[100];
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	memset(&in, 0, sizeof(in));
	in.fh = 7;
	in.offset = 4096;
	in.size = sizeof(payload);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	put(&body, &in, sizeof(in));
	put(&body, payload, sizeof(payload));
	buf = build_req(FUSE_WRITE, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_string_equal(r.opname, "WRITE");
	assert_ptr_equal(r.arg, buf + 40);
	assert_int_equal(r.arg_size, 40);
	assert_int_equal(r.body_size, 140);
	assert_ptr_equal(r.data, buf + 80);
	assert_int_equal(r.data_size, 100);
	assert_memory_equal(r.data, payload, sizeof(payload));
	assert_null(r.names[0]);
	free(buf);

	/* A WRITE of zero bytes: no payload pointer. */
	body.n = 0;
	in.size = 0;
	put(&body, &in, sizeof(in));
	buf = build_req(FUSE_WRITE, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_null(r.data);
	assert_int_equal(r.data_size, 0);
	free(buf);
}

static void test_decode_setxattr(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put_u32(&body, 5);  /* size */
	put_u32(&body, 0);  /* flags */
	put_name(&body, "user.key");
	put(&body, "VA\0UE", 5);  /* the value may contain NULs */
	buf = build_req(FUSE_SETXATTR, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_string_equal(r.opname, "SETXATTR");
	assert_int_equal(r.arg_size, FUSE_COMPAT_SETXATTR_IN_SIZE);
	assert_ptr_equal(r.arg, buf + 40);
	assert_ptr_equal(r.names[0], buf + 48);
	assert_string_equal(r.names[0], "user.key");
	assert_ptr_equal(r.data, buf + 48 + 9);
	assert_int_equal(r.data_size, 5);
	assert_memory_equal(r.data, "VA\0UE", 5);
	free(buf);

	/* Empty value: name only. */
	body.n = 0;
	put_u32(&body, 0);
	put_u32(&body, 0);
	put_name(&body, "user.k");
	buf = build_req(FUSE_SETXATTR, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_null(r.data);
	assert_int_equal(r.data_size, 0);
	free(buf);
}

/* With FUSE_SETXATTR_EXT granted, the fixed part is a whole struct fuse_setxattr_in (its
 * setxattr_flags carry FUSE_SETXATTR_ACL_KILL_SGID); the compat layout read as it would put
 * the name inside the flags. */
static void test_decode_setxattr_ext(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	const struct fuse_setxattr_in *in;
	size_t len;
	uint8_t *buf;

	put_u32(&body, 3);  /* size */
	put_u32(&body, 0);  /* flags */
	put_u32(&body, FUSE_SETXATTR_ACL_KILL_SGID);
	put_u32(&body, 0);  /* padding */
	put_name(&body, "system.posix_acl_access");
	put(&body, "abc", 3);
	buf = build_req(FUSE_SETXATTR, &body, &len);
	memset(&r, 0, sizeof(r));
	assert_int_equal(fuse_proto_request_decode(buf, len, FUSE_SETXATTR_EXT, &r), 0);
	assert_int_equal(r.arg_size, sizeof(struct fuse_setxattr_in));
	in = r.arg;
	assert_int_equal(in->setxattr_flags, FUSE_SETXATTR_ACL_KILL_SGID);
	assert_string_equal(r.names[0], "system.posix_acl_access");
	assert_int_equal(r.data_size, 3);
	assert_memory_equal(r.data, "abc", 3);
	/* Not granted: the 8-byte layout, whose "name" would start in setxattr_flags. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(fuse_proto_request_decode(buf, len, 0, &r), 0);
	assert_string_not_equal(r.names[0], "system.posix_acl_access");
	free(buf);
	/* Too short for the extended struct. */
	body.n = 0;
	put_u32(&body, 0);
	put_u32(&body, 0);
	buf = build_req(FUSE_SETXATTR, &body, &len);
	assert_int_equal(fuse_proto_request_decode(buf, len, FUSE_SETXATTR_EXT, &r), -EINVAL);
	free(buf);
}

static void test_decode_rename2(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_rename2_in in = { .newdir = 77, .flags = 1 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put(&body, &in, sizeof(in));
	put_name(&body, "old name");
	put_name(&body, "new");
	buf = build_req(FUSE_RENAME2, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_string_equal(r.opname, "RENAME2");
	assert_int_equal(r.arg_size, 16);
	assert_ptr_equal(r.names[0], buf + 56);
	assert_string_equal(r.names[0], "old name");
	assert_ptr_equal(r.names[1], buf + 65);
	assert_string_equal(r.names[1], "new");
	assert_null(r.data);
	assert_int_equal(((const struct fuse_rename2_in *)r.arg)->newdir, 77);
	free(buf);
}

static void test_decode_symlink_two_names_no_arg(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put_name(&body, "link");
	put_name(&body, "../target");
	buf = build_req(FUSE_SYMLINK, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_ptr_equal(r.names[0], buf + 40);
	assert_ptr_equal(r.names[1], buf + 45);
	assert_string_equal(r.names[1], "../target");
	free(buf);
}

static void test_decode_batch_forget(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_batch_forget_in in = { .count = 3 };
	struct fuse_forget_one one[3] = { { 10, 1 }, { 11, 2 }, { 12, 3 } };
	struct fuse_forget_one got;
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put(&body, &in, sizeof(in));
	put(&body, one, sizeof(one));
	buf = build_req(FUSE_BATCH_FORGET, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_string_equal(r.opname, "BATCH_FORGET");
	assert_int_equal(r.arg_size, 8);
	assert_ptr_equal(r.data, buf + 48);
	assert_int_equal(r.data_size, 48);
	memcpy(&got, (const uint8_t *)r.data + 2 * sizeof(got), sizeof(got));
	assert_int_equal(got.nodeid, 12);
	assert_int_equal(got.nlookup, 3);
	free(buf);
}

static void test_decode_init(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_init_in in;
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	memset(&in, 0, sizeof(in));
	in.major = 7;
	in.minor = 45;
	in.max_readahead = 131072;
	in.flags = FUSE_INIT_EXT;
	in.flags2 = 0x5fd;
	put(&body, &in, sizeof(in));
	assert_int_equal(body.n, 64);
	buf = build_req(FUSE_INIT, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_string_equal(r.opname, "INIT");
	assert_ptr_equal(r.arg, buf + 40);
	assert_int_equal(r.arg_size, 16);
	assert_int_equal(r.body_size, 64);
	assert_ptr_equal(r.data, buf + 56);
	assert_int_equal(r.data_size, 48);
	free(buf);

	/* The oldest INIT body we accept: 16 bytes. */
	body.n = 0;
	put(&body, &in, 16);
	buf = build_req(FUSE_INIT, &body, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_int_equal(r.body_size, 16);
	assert_null(r.data);
	free(buf);
}

static void test_opcode_names(void **state)
{
	assert_string_equal(fuse_proto_opcode_name(FUSE_LOOKUP), "LOOKUP");
	assert_string_equal(fuse_proto_opcode_name(FUSE_READDIRPLUS), "READDIRPLUS");
	assert_string_equal(fuse_proto_opcode_name(CM_FUSE_STATX), "STATX");
	assert_string_equal(fuse_proto_opcode_name(CM_FUSE_COPY_FILE_RANGE_64), "COPY_FILE_RANGE_64");
	assert_string_equal(fuse_proto_opcode_name(0), "UNKNOWN");
	assert_string_equal(fuse_proto_opcode_name(48), "UNKNOWN");  /* SETUPMAPPING: not handled */
	assert_string_equal(fuse_proto_opcode_name(FUSE_SYNCFS), "SYNCFS");
	assert_string_equal(fuse_proto_opcode_name(54), "UNKNOWN");
	assert_string_equal(fuse_proto_opcode_name(4096), "UNKNOWN"); /* CUSE_INIT */
	assert_string_equal(fuse_proto_opcode_name(UINT32_MAX), "UNKNOWN");
}

/* The table's flags: which opcodes the kernel waits no answer for, which come before INIT. */
static void test_opcode_flags(void **state)
{
	const uint32_t silent[] = { FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_NOTIFY_REPLY };
	const uint32_t early[] = { FUSE_INIT, FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT,
	                           FUSE_NOTIFY_REPLY };
	size_t silent_count = 0, early_count = 0;

	for (uint32_t op = 0; op < 4200; op++) {
		bool want_silent = false, want_early = false;
		for (size_t i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
			want_silent |= op == silent[i];
		for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++)
			want_early |= op == early[i];
		if (fuse_proto_opcode_replied(op) == want_silent)
			fail_msg("opcode %u (%s): replied is %d", op, fuse_proto_opcode_name(op),
			         fuse_proto_opcode_replied(op));
		if (fuse_proto_opcode_before_init(op) != want_early)
			fail_msg("opcode %u (%s): before_init is %d", op, fuse_proto_opcode_name(op),
			         fuse_proto_opcode_before_init(op));
		silent_count += !fuse_proto_opcode_replied(op);
		early_count += fuse_proto_opcode_before_init(op);
	}
	assert_int_equal(silent_count, 3);
	assert_int_equal(early_count, 5);
	assert_true(fuse_proto_opcode_replied(UINT32_MAX));   /* unknown: answered ENOSYS */
	assert_false(fuse_proto_opcode_before_init(UINT32_MAX));
}

/* ---------------------------------------------------------------------------------------------
 * Rejections
 * ------------------------------------------------------------------------------------------- */

static void test_reject_short_header(void **state)
{
	struct fuse_proto_request r;
	for (size_t len = 0; len < 40; len++) {
		uint8_t *buf = malloc(len ? len : 1);
		assert_non_null(buf);
		memset(buf, 0, len);
		if (len >= 4)
			set_hdr_len(buf, (uint32_t)len);
		assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
		free(buf);
	}
}

static void test_reject_len_mismatch(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put_name(&body, "abc");
	buf = build_req(FUSE_LOOKUP, &body, &len);
	set_hdr_len(buf, (uint32_t)len + 1);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	set_hdr_len(buf, (uint32_t)len - 1);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	set_hdr_len(buf, 0);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	set_hdr_len(buf, UINT32_MAX);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	set_hdr_len(buf, (uint32_t)len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	/* Shorter `len` than the buffer with the header claiming the full size. */
	assert_int_equal(decode_checked(buf, len - 1, &r), -EINVAL);
	free(buf);
}

static void test_reject_short_arg(void **state)
{
	struct bytes body = { .n = 0 };
	uint8_t zeros[64] = { 0 };

	put(&body, zeros, sizeof(struct fuse_getattr_in) - 1);
	assert_int_equal(decode_body(FUSE_GETATTR, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, 39);
	assert_int_equal(decode_body(FUSE_WRITE, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_READ, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, 15);
	assert_int_equal(decode_body(FUSE_INIT, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, 7);
	assert_int_equal(decode_body(FUSE_BATCH_FORGET, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_SETXATTR, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_FORGET, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, 23);
	assert_int_equal(decode_body(CM_FUSE_STATX, &body), -EINVAL);
	/* Fixed argument present but the names that must follow are absent. */
	body.n = 0;
	put(&body, zeros, sizeof(struct fuse_rename2_in));
	assert_int_equal(decode_body(FUSE_RENAME2, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, sizeof(struct fuse_mkdir_in));
	assert_int_equal(decode_body(FUSE_MKDIR, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_LOOKUP, NULL), -EINVAL);
}

static void test_reject_missing_nul(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_rename2_in in = { .newdir = 1 };

	put(&body, "abc", 3);
	assert_int_equal(decode_body(FUSE_LOOKUP, &body), -EINVAL);
	/* Second name unterminated. */
	body.n = 0;
	put(&body, &in, sizeof(in));
	put_name(&body, "a");
	put(&body, "b", 1);
	assert_int_equal(decode_body(FUSE_RENAME2, &body), -EINVAL);
	/* SETXATTR name unterminated: the value cannot start. */
	body.n = 0;
	put_u32(&body, 3);
	put_u32(&body, 0);
	put(&body, "user.xVAL", 9);
	assert_int_equal(decode_body(FUSE_SETXATTR, &body), -EINVAL);
}

static void test_reject_empty_name(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_rename2_in in = { .newdir = 1 };

	put(&body, "\0", 1);
	assert_int_equal(decode_body(FUSE_LOOKUP, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_UNLINK, &body), -EINVAL);
	body.n = 0;
	put(&body, &in, sizeof(in));
	put_name(&body, "a");
	put(&body, "\0", 1);
	assert_int_equal(decode_body(FUSE_RENAME2, &body), -EINVAL);
	body.n = 0;
	put(&body, &in, sizeof(in));
	put(&body, "\0", 1);
	put_name(&body, "b");
	assert_int_equal(decode_body(FUSE_RENAME2, &body), -EINVAL);
}

static void test_reject_trailing_garbage(void **state)
{
	struct bytes body = { .n = 0 };
	uint8_t zeros[64] = { 0 };

	put_name(&body, "a");
	put(&body, "xyz", 3);
	assert_int_equal(decode_body(FUSE_LOOKUP, &body), -EINVAL);
	body.n = 0;
	put_name(&body, "a");
	put(&body, "\0", 1);  /* even a single NUL */
	assert_int_equal(decode_body(FUSE_LOOKUP, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, sizeof(struct fuse_getattr_in) + 1);
	assert_int_equal(decode_body(FUSE_GETATTR, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, sizeof(struct fuse_read_in) + 8);
	assert_int_equal(decode_body(FUSE_READ, &body), -EINVAL);
	body.n = 0;
	put(&body, zeros, 1);
	assert_int_equal(decode_body(FUSE_STATFS, &body), -EINVAL);
	assert_int_equal(decode_body(FUSE_DESTROY, &body), -EINVAL);
	/* Same sizes are fine on opcodes that take a trailing payload. */
	body.n = 0;
	put(&body, zeros, sizeof(struct fuse_write_in) + 8);
	assert_int_equal(decode_body(FUSE_WRITE, &body), 0);
}

static void test_reject_extlen_past_end(void **state)
{
	struct bytes body = { .n = 0 };
	struct fuse_proto_request r;
	size_t len;
	uint8_t *buf;

	put_name(&body, "abc");  /* 4-byte body */
	buf = build_req(FUSE_LOOKUP, &body, &len);
	set_hdr_extlen(buf, 1);  /* 8 bytes of extension > 4 bytes after the header */
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	set_hdr_extlen(buf, UINT16_MAX);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	free(buf);

	/* Past the end also for an opcode not in the table: malformed wins over ENOSYS. */
	buf = build_req(200, &body, &len);
	set_hdr_extlen(buf, 1);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	free(buf);

	/* Extension swallowing the whole body of a LOOKUP leaves no name. */
	body.n = 0;
	put_name(&body, "abcdefg");  /* 8 bytes */
	buf = build_req(FUSE_LOOKUP, &body, &len);
	set_hdr_extlen(buf, 1);
	assert_int_equal(decode_checked(buf, len, &r), -EINVAL);
	free(buf);
}

static void test_unknown_opcode(void **state)
{
	static const uint32_t ops[] = { 0, 48, 49, 54, 1000, 4096, UINT32_MAX };
	struct bytes body = { .n = 0 };

	put_name(&body, "whatever");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct fuse_proto_request r;
		size_t len;
		uint8_t *buf = build_req(ops[i], &body, &len);
		memset(&r, 0, sizeof(r));
		assert_int_equal(fuse_proto_request_decode(buf, len, 0, &r), -ENOSYS);
		assert_int_equal(r.opcode, ops[i]);
		assert_ptr_equal(r.header, buf);
		assert_string_equal(r.opname, "UNKNOWN");
		assert_int_equal(r.header->unique, 0x1122334455667788ULL);
		free(buf);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Truncated prefixes
 * ------------------------------------------------------------------------------------------- */

/* Feed every prefix of `full` (0..full_len-1) to the decoder, in an exactly-sized heap buffer,
 * once with the header's len left at the full size and once adjusted to the prefix length.
 * An unadjusted prefix is always inconsistent (-EINVAL). An adjusted prefix is a consistent but
 * shorter request: it must fail (-EINVAL) unless it is at least `min_valid` bytes long, which
 * only happens for opcodes whose body ends in a variable payload (WRITE data, xattr value,
 * forget entries, the INIT tail); the decoder does not check a payload's length against the
 * argument's count by contract (the session does). Returns the number of accepted prefixes. */
static size_t check_prefixes(const uint8_t *full, size_t full_len, size_t min_valid)
{
	size_t accepted = 0;

	for (size_t len = 0; len < full_len; len++) {
		for (int adjust = 0; adjust < 2; adjust++) {
			struct fuse_proto_request r;
			uint8_t *buf = malloc(len ? len : 1);
			int rc;
			assert_non_null(buf);
			memcpy(buf, full, len);
			if (adjust && len >= sizeof(uint32_t))
				set_hdr_len(buf, (uint32_t)len);
			rc = decode_checked(buf, len, &r);
			if (adjust && len >= HDR_SIZE && len >= min_valid) {
				if (rc != 0)
					fail_msg("prefix %zu/%zu (adjusted) rejected: %d", len, full_len, rc);
				assert_int_equal(r.body_size + HDR_SIZE, len);
				if (r.data) {
					assert_true((const uint8_t *)r.data >= buf + HDR_SIZE);
					assert_true((const uint8_t *)r.data + r.data_size == buf + len);
				}
				accepted++;
			} else if (rc != -EINVAL) {
				fail_msg("prefix %zu/%zu (%s) returned %d, expected -EINVAL", len, full_len,
				         adjust ? "adjusted" : "unadjusted", rc);
			}
			free(buf);
		}
	}
	/* And the full request itself decodes. */
	{
		struct fuse_proto_request r;
		uint8_t *buf = malloc(full_len);
		assert_non_null(buf);
		memcpy(buf, full, full_len);
		assert_int_equal(decode_checked(buf, full_len, &r), 0);
		free(buf);
	}
	return accepted;
}

static void test_truncated_prefixes(void **state)
{
	struct bytes body = { .n = 0 }, ext = { .n = 0 };
	uint8_t *full;
	size_t len;
	static const uint32_t groups[3] = { 10, 20, 30 };

	/* LOOKUP: every prefix fails. */
	put_name(&body, "some-name");
	full = build_req(FUSE_LOOKUP, &body, &len);
	assert_int_equal(check_prefixes(full, len, SIZE_MAX), 0);
	free(full);

	/* LOOKUP with a groups extension: every prefix fails (name or extension cut). */
	put_groups_ext(&ext, groups, 3);
	full = build_req_ext(FUSE_LOOKUP, &body, &ext, &len);
	assert_int_equal(check_prefixes(full, len, SIZE_MAX), 0);
	free(full);

	/* RENAME2. */
	body.n = 0;
	{
		struct fuse_rename2_in in = { .newdir = 5 };
		put(&body, &in, sizeof(in));
	}
	put_name(&body, "from");
	put_name(&body, "to");
	full = build_req(FUSE_RENAME2, &body, &len);
	assert_int_equal(check_prefixes(full, len, SIZE_MAX), 0);
	free(full);

	/* GETATTR (fixed argument only). */
	body.n = 0;
	{
		struct fuse_getattr_in in = { .fh = 1 };
		put(&body, &in, sizeof(in));
	}
	full = build_req(FUSE_GETATTR, &body, &len);
	assert_int_equal(check_prefixes(full, len, SIZE_MAX), 0);
	free(full);

	/* WRITE: prefixes keeping the write_in decode with a shorter payload. */
	body.n = 0;
	{
		struct fuse_write_in in = { .fh = 1, .size = 24 };
		uint8_t data[24];
		memset(data, 0xAB, sizeof(data));
		put(&body, &in, sizeof(in));
		put(&body, data, sizeof(data));
	}
	full = build_req(FUSE_WRITE, &body, &len);
	assert_int_equal(check_prefixes(full, len, 40 + 40), 24);
	free(full);

	/* WRITE with an extension: the extension window slides into the payload and fails. */
	full = build_req_ext(FUSE_WRITE, &body, &ext, &len);
	assert_int_equal(check_prefixes(full, len, SIZE_MAX), 0);
	free(full);

	/* SETXATTR: arg + name are required, the value may be cut. */
	body.n = 0;
	put_u32(&body, 6);
	put_u32(&body, 0);
	put_name(&body, "user.attr");
	put(&body, "value!", 6);
	full = build_req(FUSE_SETXATTR, &body, &len);
	assert_int_equal(check_prefixes(full, len, 40 + 8 + 10), 6);
	free(full);

	/* BATCH_FORGET: arg required, entries may be cut. */
	body.n = 0;
	{
		struct fuse_batch_forget_in in = { .count = 2 };
		struct fuse_forget_one one[2] = { { 3, 1 }, { 4, 1 } };
		put(&body, &in, sizeof(in));
		put(&body, one, sizeof(one));
	}
	full = build_req(FUSE_BATCH_FORGET, &body, &len);
	assert_int_equal(check_prefixes(full, len, 40 + 8), 32);
	free(full);

	/* INIT: 16 bytes minimum, anything beyond is the optional tail. */
	body.n = 0;
	{
		struct fuse_init_in in;
		memset(&in, 0, sizeof(in));
		in.major = 7;
		in.minor = 45;
		in.flags = FUSE_INIT_EXT;
		put(&body, &in, sizeof(in));
	}
	full = build_req(FUSE_INIT, &body, &len);
	assert_int_equal(check_prefixes(full, len, 40 + 16), 48);
	free(full);
}

/* ---------------------------------------------------------------------------------------------
 * Extensions
 * ------------------------------------------------------------------------------------------- */

static int decode_lookup_with_ext(const struct bytes *ext, struct fuse_proto_request *r,
                                  uint8_t **bufp)
{
	struct bytes body = { .n = 0 };
	size_t len;
	uint8_t *buf;
	int rc;

	put_name(&body, "n");
	buf = build_req_ext(FUSE_LOOKUP, &body, ext, &len);
	rc = decode_checked(buf, len, r);
	if (bufp)
		*bufp = buf;
	else
		free(buf);
	return rc;
}

static void test_ext_groups(void **state)
{
	struct bytes ext = { .n = 0 };
	struct fuse_proto_request r;
	uint8_t *buf;
	static const uint32_t one[1] = { 4711 };
	static const uint32_t three[3] = { 100, 200, 300 };

	put_groups_ext(&ext, one, 1);
	assert_int_equal(ext.n, 16);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, &buf), 0);
	assert_int_equal(r.group_count, 1);
	assert_int_equal(r.groups[0], 4711);
	assert_int_equal(r.body_size, 2);  /* the extension is not part of the body */
	assert_string_equal(r.names[0], "n");
	assert_null(r.data);
	free(buf);

	ext.n = 0;
	put_groups_ext(&ext, three, 3);
	assert_int_equal(ext.n, 24);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, 3);
	assert_int_equal(r.groups[0], 100);
	assert_int_equal(r.groups[1], 200);
	assert_int_equal(r.groups[2], 300);

	/* Zero groups. */
	ext.n = 0;
	put_groups_ext(&ext, NULL, 0);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, 0);
}

static void test_ext_groups_clamped(void **state)
{
	struct bytes ext = { .n = 0 };
	struct fuse_proto_request r;
	uint32_t many[FUSE_PROTO_MAX_GROUPS + 6];

	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		many[i] = (uint32_t)(5000 + i);
	put_groups_ext(&ext, many, (uint32_t)(sizeof(many) / sizeof(many[0])));
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, FUSE_PROTO_MAX_GROUPS);
	assert_int_equal(r.groups[0], 5000);
	assert_int_equal(r.groups[FUSE_PROTO_MAX_GROUPS - 1], 5000 + FUSE_PROTO_MAX_GROUPS - 1);
}

static void put_ext_raw(struct bytes *b, uint32_t size, uint32_t type, size_t fill_to)
{
	struct fuse_ext_header eh = { .size = size, .type = type };
	size_t start = b->n;
	put(b, &eh, sizeof(eh));
	while (b->n - start < fill_to)
		put(b, "\0", 1);
}

static void test_ext_malformed(void **state)
{
	struct bytes ext = { .n = 0 };
	struct fuse_proto_request r;
	static const uint32_t one[1] = { 1 };

	put_ext_raw(&ext, 0, FUSE_EXT_GROUPS, 16);  /* size 0 */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, 0, 99, 8);  /* size 0, unknown type: must not loop forever */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, 4, 99, 8);  /* smaller than its own header */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, 12, FUSE_EXT_GROUPS, 16);  /* not a multiple of 8 */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, 20, 99, 24);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, 24, FUSE_EXT_GROUPS, 16);  /* larger than what remains */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	ext.n = 0;
	put_ext_raw(&ext, UINT32_MAX - 7, 99, 16);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	/* Sizes that are not multiples of 8 but otherwise add up: 12 + 12 = 24. */
	ext.n = 0;
	put_ext_raw(&ext, 12, 99, 12);
	put_ext_raw(&ext, 12, 98, 12);
	assert_int_equal(ext.n, 24);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	/* A valid extension followed by a bad one. */
	ext.n = 0;
	put_groups_ext(&ext, one, 1);
	put_ext_raw(&ext, 16, 99, 8);  /* claims 16, only 8 remain */
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	/* Groups: nr larger than the payload holds. */
	ext.n = 0;
	{
		struct fuse_ext_header eh = { .size = 16, .type = FUSE_EXT_GROUPS };
		put(&ext, &eh, sizeof(eh));
		put_u32(&ext, 2);  /* room for only one group */
		put_u32(&ext, 7);
	}
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
	/* Groups: header only, no nr field. */
	ext.n = 0;
	put_ext_raw(&ext, 8, FUSE_EXT_GROUPS, 8);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), -EINVAL);
}

static void test_ext_unknown_skipped(void **state)
{
	struct bytes ext = { .n = 0 };
	struct fuse_proto_request r;
	static const uint32_t two[2] = { 31, 32 };

	/* Unknown type alone: accepted, nothing decoded. */
	put_ext_raw(&ext, 16, 99, 16);
	memset(ext.d + 8, 0xFF, 8);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, 0);

	/* Unknown (security-context-like, type 1) then groups: the groups are still found. */
	ext.n = 0;
	put_ext_raw(&ext, 24, 1, 24);
	put_groups_ext(&ext, two, 2);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, 2);
	assert_int_equal(r.groups[0], 31);
	assert_int_equal(r.groups[1], 32);

	/* Groups then unknown. */
	ext.n = 0;
	put_groups_ext(&ext, two, 2);
	put_ext_raw(&ext, 8, 77, 8);
	assert_int_equal(decode_lookup_with_ext(&ext, &r, NULL), 0);
	assert_int_equal(r.group_count, 2);
}

static void test_ext_with_payload(void **state)
{
	struct bytes body = { .n = 0 }, ext = { .n = 0 };
	struct fuse_write_in in = { .size = 10 };
	struct fuse_proto_request r;
	static const uint32_t one[1] = { 9 };
	size_t len;
	uint8_t *buf;

	put(&body, &in, sizeof(in));
	put(&body, "0123456789", 10);
	put_groups_ext(&ext, one, 1);
	buf = build_req_ext(FUSE_WRITE, &body, &ext, &len);
	assert_int_equal(decode_checked(buf, len, &r), 0);
	assert_int_equal(r.body_size, 50);
	assert_ptr_equal(r.data, buf + 80);
	assert_int_equal(r.data_size, 10);  /* the extension is not payload */
	assert_int_equal(r.group_count, 1);
	assert_int_equal(r.groups[0], 9);
	free(buf);
}

/* ---------------------------------------------------------------------------------------------
 * READDIR / READDIRPLUS packing
 * ------------------------------------------------------------------------------------------- */

static void check_dirent(const uint8_t *rec, const char *name, size_t namelen, uint64_t ino,
                         uint32_t type, uint64_t off, size_t recsize)
{
	struct fuse_dirent de;
	memcpy(&de, rec, FUSE_NAME_OFFSET);
	assert_int_equal(de.ino, ino);
	assert_int_equal(de.off, off);
	assert_int_equal(de.namelen, namelen);
	assert_int_equal(de.type, type);
	assert_memory_equal(rec + FUSE_NAME_OFFSET, name, namelen);
	for (size_t i = FUSE_NAME_OFFSET + namelen; i < recsize; i++)
		if (rec[i] != 0)
			fail_msg("padding byte %zu of %s is 0x%02x", i, name, rec[i]);
}

static void test_dirent_sizes(void **state)
{
	static const struct { size_t namelen, rec; } cases[] = {
		{ 1, 32 }, { 5, 32 }, { 7, 32 }, { 8, 32 }, { 9, 40 }, { 16, 40 }, { 17, 48 }, { 255, 280 },
	};
	uint8_t buf[512];
	char name[256];

	memset(name, 'x', sizeof(name));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].namelen;
		memset(buf, 0xEE, sizeof(buf));
		assert_int_equal(FUSE_DIRENT_ALIGN(24 + n), cases[i].rec);
		assert_int_equal(fuse_proto_dirent_add(buf, sizeof(buf), 0, name, n, 1, DT_REG, 2),
		                 cases[i].rec);
		check_dirent(buf, name, n, 1, DT_REG, 2, cases[i].rec);
		assert_int_equal(buf[cases[i].rec], 0xEE);  /* nothing written past the record */
	}
}

static void test_dirent_fields_and_append(void **state)
{
	uint8_t *buf = malloc(96);
	size_t used = 0, n;

	assert_non_null(buf);
	memset(buf, 0xCC, 96);
	n = fuse_proto_dirent_add(buf, 96, used, "hello", 5, 0x0102030405060708ULL, DT_DIR, 1);
	assert_int_equal(n, 32);
	used += n;
	n = fuse_proto_dirent_add(buf, 96, used, "a-longer-name", 13, 99, DT_LNK, 0xFFFFFFFFFFFFFFFFULL);
	assert_int_equal(n, 40);
	used += n;
	check_dirent(buf, "hello", 5, 0x0102030405060708ULL, DT_DIR, 1, 32);
	check_dirent(buf + 32, "a-longer-name", 13, 99, DT_LNK, 0xFFFFFFFFFFFFFFFFULL, 40);
	/* 24 bytes left: a record needs at least 32. */
	assert_int_equal(fuse_proto_dirent_add(buf, 96, used, "z", 1, 1, DT_REG, 3), 0);
	for (size_t i = used; i < 96; i++)
		assert_int_equal(buf[i], 0xCC);
	free(buf);
}

static void test_dirent_fit(void **state)
{
	uint8_t *buf = malloc(40);
	assert_non_null(buf);
	memset(buf, 0x11, 40);
	/* Exactly fits (exactly-sized heap buffer: ASan checks the padding write). */
	assert_int_equal(fuse_proto_dirent_add(buf, 40, 0, "123456789", 9, 5, DT_REG, 6), 40);
	check_dirent(buf, "123456789", 9, 5, DT_REG, 6, 40);
	/* One byte short. */
	memset(buf, 0x11, 40);
	assert_int_equal(fuse_proto_dirent_add(buf, 39, 0, "123456789", 9, 5, DT_REG, 6), 0);
	assert_int_equal(buf[0], 0x11);
	/* At an offset: 8 used + 32 record = 40. */
	assert_int_equal(fuse_proto_dirent_add(buf, 40, 8, "ab", 2, 5, DT_REG, 6), 32);
	check_dirent(buf + 8, "ab", 2, 5, DT_REG, 6, 32);
	assert_int_equal(fuse_proto_dirent_add(buf, 40, 9, "ab", 2, 5, DT_REG, 6), 0);
	/* used beyond size, and size 0. */
	assert_int_equal(fuse_proto_dirent_add(buf, 40, 41, "ab", 2, 5, DT_REG, 6), 0);
	assert_int_equal(fuse_proto_dirent_add(buf, 40, 40, "ab", 2, 5, DT_REG, 6), 0);
	assert_int_equal(fuse_proto_dirent_add(buf, 0, 0, "ab", 2, 5, DT_REG, 6), 0);
	free(buf);
}

static void fill_entry(struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = 77;  /* deliberately different from attr.ino */
	e->generation = 3;
	e->entry_valid = 10;
	e->attr_valid = 11;
	e->entry_valid_nsec = 12;
	e->attr_valid_nsec = 13;
	e->attr.ino = 123456789;
	e->attr.size = 4096;
	e->attr.mode = 0100644;
	e->attr.nlink = 1;
	e->attr.uid = 1000;
	e->attr.gid = 1000;
}

static void test_direntplus(void **state)
{
	struct fuse_entry_out e;
	size_t rec = fuse_proto_direntplus_size(5);
	uint8_t *buf;

	assert_int_equal(sizeof(struct fuse_entry_out), 128);
	assert_int_equal(FUSE_NAME_OFFSET_DIRENTPLUS, 152);
	assert_int_equal(rec, 160);
	assert_int_equal(fuse_proto_direntplus_size(0), 152);
	assert_int_equal(fuse_proto_direntplus_size(8), 160);
	assert_int_equal(fuse_proto_direntplus_size(9), 168);
	assert_int_equal(fuse_proto_direntplus_size(255), FUSE_DIRENT_ALIGN(152 + 255));

	fill_entry(&e);
	buf = malloc(rec);
	assert_non_null(buf);
	memset(buf, 0xDD, rec);
	assert_int_equal(fuse_proto_direntplus_add(buf, rec, 0, "hello", 5, &e, DT_REG, 9), rec);
	assert_memory_equal(buf, &e, sizeof(e));
	check_dirent(buf + 128, "hello", 5, 123456789, DT_REG, 9, rec - 128);

	/* One byte short, and at an offset that no longer fits. */
	memset(buf, 0xDD, rec);
	assert_int_equal(fuse_proto_direntplus_add(buf, rec - 1, 0, "hello", 5, &e, DT_REG, 9), 0);
	assert_int_equal(fuse_proto_direntplus_add(buf, rec, 1, "hello", 5, &e, DT_REG, 9), 0);
	assert_int_equal(fuse_proto_direntplus_add(buf, rec, rec + 1, "hello", 5, &e, DT_REG, 9), 0);
	for (size_t i = 0; i < rec; i++)
		assert_int_equal(buf[i], 0xDD);
	free(buf);
}

static void test_direntplus_append(void **state)
{
	struct fuse_entry_out e1, e2;
	size_t size = 160 + 168, used = 0, n;
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	fill_entry(&e1);
	fill_entry(&e2);
	e2.nodeid = 5;
	e2.attr.ino = 5;
	e2.attr.mode = 040755;
	n = fuse_proto_direntplus_add(buf, size, used, "a", 1, &e1, DT_REG, 1);
	assert_int_equal(n, 160);
	used += n;
	n = fuse_proto_direntplus_add(buf, size, used, "directory", 9, &e2, DT_DIR, 2);
	assert_int_equal(n, 168);
	used += n;
	assert_int_equal(used, size);
	assert_memory_equal(buf + 160, &e2, sizeof(e2));
	check_dirent(buf + 160 + 128, "directory", 9, 5, DT_DIR, 2, 40);
	assert_int_equal(fuse_proto_direntplus_add(buf, size, used, "b", 1, &e1, DT_REG, 3), 0);
	free(buf);
}

/* ---------------------------------------------------------------------------------------------
 * INIT negotiation
 * ------------------------------------------------------------------------------------------- */

/* What 6.18.44 offered (KERNEL-FUSE.md §1.4). */
#define K618_FLAGS 0x73fffffbU
#define K618_FLAGS2 0x000005fdU

static struct fuse_init_in kernel_init(uint32_t major, uint32_t minor, uint32_t flags,
                                       uint32_t flags2)
{
	struct fuse_init_in in;
	memset(&in, 0, sizeof(in));
	in.major = major;
	in.minor = minor;
	in.max_readahead = 131072;
	in.flags = flags;
	in.flags2 = flags2;
	return in;
}

static struct fuse_proto_init_wants default_wants(void)
{
	struct fuse_proto_init_wants w = {
		.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS |
		         FUSE_PASSTHROUGH | FUSE_NO_EXPORT_SUPPORT | FUSE_CREATE_SUPP_GROUP,
		.max_write = 1 << 20,
		.max_readahead = 0,
		.max_pages = 256,
		.max_background = 64,
		.max_stack_depth = 1,
	};
	return w;
}

/* Negotiate from an exactly-sized heap copy of the first `in_size` bytes of `in`. */
static int negotiate(const struct fuse_init_in *in, size_t in_size,
                     const struct fuse_proto_init_wants *w, struct cm_fuse_init_out *out,
                     size_t *out_size, struct fuse_proto_init_result *res)
{
	uint8_t *buf = malloc(in_size ? in_size : 1);
	int rc;
	assert_non_null(buf);
	memcpy(buf, in, in_size < sizeof(*in) ? in_size : sizeof(*in));
	if (in_size > sizeof(*in))
		memset(buf + sizeof(*in), 0, in_size - sizeof(*in));
	rc = fuse_proto_init_negotiate(buf, in_size, w, out, out_size, res);
	free(buf);
	return rc;
}

static void test_init_full(void **state)
{
	struct fuse_init_in in = kernel_init(7, 45, K618_FLAGS, K618_FLAGS2);
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	size_t out_size = 0;
	uint8_t zero[22] = { 0 };

	w.max_stack_depth = 2;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(out_size, 64);
	assert_int_equal(o.major, 7);
	assert_int_equal(o.minor, 45);
	assert_true(o.flags & FUSE_INIT_EXT);
	assert_true(o.flags & FUSE_ASYNC_READ);
	assert_true(o.flags & FUSE_MAX_PAGES);
	assert_true(o.flags & FUSE_DO_READDIRPLUS);
	assert_false(o.flags & FUSE_WRITEBACK_CACHE);  /* not wanted */
	assert_int_equal(o.flags2, (1U << (37 - 32)) | (1U << (38 - 32)) | (1U << (34 - 32)));
	assert_int_equal(o.max_stack_depth, 2);
	assert_int_equal(o.max_readahead, 131072);
	assert_int_equal(o.max_write, 1 << 20);
	assert_int_equal(o.max_pages, 256);
	assert_int_equal(o.max_background, 64);
	assert_int_equal(o.congestion_threshold, 48);
	assert_int_equal(o.time_gran, 1);
	assert_int_equal(o.map_alignment, 0);
	assert_int_equal(o.request_timeout, 0);
	assert_memory_equal(o.unused, zero, sizeof(o.unused));
	assert_int_equal(res.kernel_major, 7);
	assert_int_equal(res.kernel_minor, 45);
	assert_int_equal(res.offered, 0x000005fd73fffffbULL);
	assert_int_equal(res.granted, ((uint64_t)o.flags2 << 32) | o.flags);
	assert_true(res.granted & FUSE_PASSTHROUGH);
	assert_int_equal(res.max_write, 1 << 20);
	/* Nothing granted that was not both wanted and offered (INIT_EXT excepted). */
	assert_int_equal(res.granted & ~(w.flags | FUSE_INIT_EXT), 0);
	assert_int_equal(res.granted & ~res.offered, 0);
}

static void test_init_without_init_ext(void **state)
{
	/* flags2 carries garbage but INIT_EXT is not offered: it must be ignored. */
	struct fuse_init_in in = kernel_init(7, 45, K618_FLAGS & ~(uint32_t)FUSE_INIT_EXT, K618_FLAGS2);
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	size_t out_size;

	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(o.flags & FUSE_INIT_EXT);
	assert_int_equal(o.flags2, 0);
	assert_int_equal(o.max_stack_depth, 0);
	assert_int_equal(res.offered >> 32, 0);
	assert_int_equal(res.granted >> 32, 0);
	assert_true(o.flags & FUSE_MAX_PAGES);

	/* Wanting INIT_EXT explicitly does not make it granted when not offered. */
	w.flags |= FUSE_INIT_EXT;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(o.flags & FUSE_INIT_EXT);
	assert_int_equal(o.flags2, 0);
}

static void test_init_passthrough_rules(void **state)
{
	struct fuse_init_in in = kernel_init(7, 45, K618_FLAGS, K618_FLAGS2);
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	size_t out_size;

	/* Writeback cache excludes passthrough. */
	w.flags |= FUSE_WRITEBACK_CACHE;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_true(o.flags & FUSE_WRITEBACK_CACHE);
	assert_false(o.flags2 & (1U << (37 - 32)));
	assert_false(res.granted & FUSE_PASSTHROUGH);
	assert_int_equal(o.max_stack_depth, 0);
	assert_true(o.flags & FUSE_INIT_EXT);  /* other high bits still go through */
	assert_true(o.flags2 & (1U << (38 - 32)));

	/* Invalid stack depths. */
	w = default_wants();
	for (uint32_t depth = 0; depth <= 4; depth++) {
		bool ok = depth == 1 || depth == 2;
		w.max_stack_depth = depth;
		assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
		assert_int_equal(!!(o.flags2 & (1U << (37 - 32))), ok);
		assert_int_equal(o.max_stack_depth, ok ? depth : 0);
	}
	w.max_stack_depth = UINT32_MAX;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(res.granted & FUSE_PASSTHROUGH);

	/* Passthrough not offered. */
	w = default_wants();
	in = kernel_init(7, 45, K618_FLAGS, K618_FLAGS2 & ~(1U << (37 - 32)));
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(res.granted & FUSE_PASSTHROUGH);
	assert_int_equal(o.max_stack_depth, 0);

	/* Passthrough offered but not wanted. */
	w.flags &= ~FUSE_PASSTHROUGH;
	in = kernel_init(7, 45, K618_FLAGS, K618_FLAGS2);
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(res.granted & FUSE_PASSTHROUGH);
	assert_int_equal(o.max_stack_depth, 0);
}

static void test_init_major(void **state)
{
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o, sentinel;
	struct fuse_proto_init_result res;
	size_t out_size;
	struct fuse_init_in in = kernel_init(6, 99, K618_FLAGS, K618_FLAGS2);

	memset(&o, 0x5A, sizeof(o));
	memset(&sentinel, 0x5A, sizeof(sentinel));
	out_size = 12345;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), -EPROTO);
	assert_memory_equal(&o, &sentinel, sizeof(o));
	assert_int_equal(out_size, 12345);
	in.major = 0;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), -EPROTO);

	in = kernel_init(8, 0, K618_FLAGS, K618_FLAGS2);
	memset(&res, 0xFF, sizeof(res));
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), -EAGAIN);
	assert_int_equal(out_size, 8);
	assert_int_equal(o.major, 7);
	assert_int_equal(o.minor, 45);
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.flags2, 0);
	assert_int_equal(res.kernel_major, 8);
	assert_int_equal(res.kernel_minor, 0);
	assert_int_equal(res.granted, 0);

	in.major = UINT32_MAX;
	assert_int_equal(negotiate(&in, 16, &w, &o, &out_size, &res), -EAGAIN);
	assert_int_equal(out_size, 8);
	assert_int_equal(o.major, 7);
}

static void test_init_minor_and_sizes(void **state)
{
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	size_t out_size;
	struct fuse_init_in in = kernel_init(7, 38, K618_FLAGS, K618_FLAGS2);

	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.minor, 38);
	in.minor = 46;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.minor, 45);
	in.minor = 99;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.minor, 45);
	assert_int_equal(res.kernel_minor, 99);
	in.minor = 0;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.minor, 0);

	/* max_readahead never exceeds the offer. */
	in = kernel_init(7, 45, K618_FLAGS, K618_FLAGS2);
	w.max_readahead = 65536;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_readahead, 65536);
	w.max_readahead = 1 << 20;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_readahead, 131072);
	w.max_readahead = 131072;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_readahead, 131072);
	w.max_readahead = 0;
	in.max_readahead = 4096;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_readahead, 4096);

	/* max_write is at least 4096. */
	w.max_write = 100;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_write, 4096);
	assert_int_equal(res.max_write, 4096);

	/* max_pages only with MAX_PAGES granted. */
	w = default_wants();
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_pages, 256);
	in.flags &= ~(uint32_t)FUSE_MAX_PAGES;  /* not offered */
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(o.flags & FUSE_MAX_PAGES);
	assert_int_equal(o.max_pages, 0);
	in.flags |= FUSE_MAX_PAGES;
	w.flags &= ~(uint64_t)FUSE_MAX_PAGES;  /* not wanted */
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_false(o.flags & FUSE_MAX_PAGES);
	assert_int_equal(o.max_pages, 0);

	/* Background limits. */
	w = default_wants();
	w.max_background = 1000;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.max_background, 1000);
	assert_int_equal(o.congestion_threshold, 750);
	w.max_background = UINT16_MAX;
	assert_int_equal(negotiate(&in, sizeof(in), &w, &o, &out_size, &res), 0);
	assert_int_equal(o.congestion_threshold, (uint16_t)(UINT16_MAX * 3 / 4));
}

static void test_init_old_body(void **state)
{
	struct fuse_proto_init_wants w = default_wants();
	struct cm_fuse_init_out o;
	struct fuse_proto_init_result res;
	size_t out_size;
	/* A 7.31 kernel (before flags2, 7.36) sends 16 bytes. Even with INIT_EXT set, a 16-byte body
	 * has no flags2 and it must not be read (exactly-sized heap buffer: ASan). */
	struct fuse_init_in in = kernel_init(7, 31, K618_FLAGS, K618_FLAGS2);

	assert_int_equal(negotiate(&in, 16, &w, &o, &out_size, &res), 0);
	assert_int_equal(out_size, 64);
	assert_int_equal(o.major, 7);
	assert_int_equal(o.minor, 31);
	assert_int_equal(res.offered, K618_FLAGS);
	assert_int_equal(o.flags2, 0);
	assert_false(res.granted & FUSE_PASSTHROUGH);
	assert_int_equal(o.max_stack_depth, 0);
	assert_true(o.flags & FUSE_ASYNC_READ);

	/* 19 bytes: still no complete flags2. */
	assert_int_equal(negotiate(&in, 19, &w, &o, &out_size, &res), 0);
	assert_int_equal(res.offered, K618_FLAGS);
	/* 20 bytes: flags2 present. */
	assert_int_equal(negotiate(&in, 20, &w, &o, &out_size, &res), 0);
	assert_int_equal(res.offered, 0x000005fd73fffffbULL);
	assert_true(res.granted & FUSE_PASSTHROUGH);
	/* A body longer than fuse_init_in is fine. */
	assert_int_equal(negotiate(&in, 100, &w, &o, &out_size, &res), 0);
	assert_int_equal(res.offered, 0x000005fd73fffffbULL);

	/* Shorter than 16 bytes: rejected. */
	for (size_t n = 0; n < 16; n++)
		assert_int_equal(negotiate(&in, n, &w, &o, &out_size, &res), -EINVAL);
}

/* ---------------------------------------------------------------------------------------------
 * Fuzz
 * ------------------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;  /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 2685821657736338717ULL;
}

static void test_fuzz_decode(void **state)
{
	size_t ok = 0, nosys = 0, einval = 0;

	for (int iter = 0; iter < 200000; iter++) {
		size_t len = (size_t)(rnd() % 513);
		uint8_t *buf = malloc(len ? len : 1);
		struct fuse_proto_request r;
		struct fuse_in_header h;
		int rc;

		assert_non_null(buf);
		/* Mostly-zero bytes with some text makes names and extensions plausible. */
		for (size_t i = 0; i < len; i++) {
			uint64_t v = rnd();
			buf[i] = (v & 3) == 0 ? 0 : (uint8_t)(v >> 8);
		}
		if (len >= HDR_SIZE) {
			memcpy(&h, buf, sizeof(h));
			if (rnd() & 1)
				h.len = (uint32_t)len;
			h.opcode = (rnd() % 8) == 0 ? (uint32_t)rnd() : (uint32_t)(rnd() % 60);
			switch (rnd() % 4) {
			case 0: case 1: h.total_extlen = 0; break;
			case 2: h.total_extlen = (uint16_t)(rnd() % 8); break;
			default: break;  /* random */
			}
			memcpy(buf, &h, sizeof(h));
			/* Sometimes plant a plausible extension header at the start of the ext area. */
			if (h.total_extlen && h.len == len && (size_t)h.total_extlen * 8 <= len - HDR_SIZE &&
			    (rnd() & 1)) {
				struct fuse_ext_header eh;
				eh.size = (uint32_t)h.total_extlen * 8;
				eh.type = (rnd() & 1) ? FUSE_EXT_GROUPS : (uint32_t)(rnd() % 64);
				memcpy(buf + len - eh.size, &eh, sizeof(eh));
				if (eh.size >= 12) {
					uint32_t nr = (uint32_t)(rnd() % ((eh.size - 12) / 4 + 2));
					memcpy(buf + len - eh.size + 8, &nr, sizeof(nr));
				}
			}
		} else if (len >= 4 && (rnd() & 1)) {
			set_hdr_len(buf, (uint32_t)len);
		}

		rc = decode_checked(buf, len, &r);
		if (rc == 0) {
			const uint8_t *body = buf + HDR_SIZE, *end = body + r.body_size;
			ok++;
			assert_true(len >= HDR_SIZE);
			assert_ptr_equal(r.header, buf);
			assert_int_equal(r.header->len, len);
			assert_int_equal(r.body_size + HDR_SIZE + (size_t)r.header->total_extlen * 8, len);
			assert_true(r.arg_size <= r.body_size);
			assert_string_not_equal(r.opname, "UNKNOWN");
			if (r.arg_size)
				assert_ptr_equal(r.arg, body);
			for (int i = 0; i < FUSE_PROTO_MAX_NAMES; i++) {
				const uint8_t *s = (const uint8_t *)r.names[i];
				if (!s)
					continue;
				assert_true(s >= body + r.arg_size && s < end);
				assert_non_null(memchr(s, 0, (size_t)(end - s)));
				assert_true(s[0] != 0);
			}
			if (r.data) {
				const uint8_t *d = r.data;
				assert_true(d >= body + r.arg_size && d < end);
				assert_true(r.data_size > 0 && r.data_size <= (size_t)(end - d));
				assert_true(d + r.data_size == end);
			} else {
				assert_int_equal(r.data_size, 0);
			}
			assert_true(r.group_count <= FUSE_PROTO_MAX_GROUPS);
		} else if (rc == -ENOSYS) {
			nosys++;
			assert_string_equal(r.opname, "UNKNOWN");
			assert_int_equal(r.opcode, r.header->opcode);
			assert_ptr_equal(r.header, buf);
		} else {
			assert_int_equal(rc, -EINVAL);
			einval++;
		}
		free(buf);
	}
	print_message("fuzz: %zu accepted, %zu ENOSYS, %zu EINVAL\n", ok, nosys, einval);
	/* The generator must reach the interesting paths, or this test proves nothing. */
	assert_true(ok > 1000);
	assert_true(nosys > 1000);
	assert_true(einval > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_lookup),
		cmocka_unit_test(test_decode_empty_body),
		cmocka_unit_test(test_decode_getattr),
		cmocka_unit_test(test_decode_write),
		cmocka_unit_test(test_decode_setxattr),
		cmocka_unit_test(test_decode_setxattr_ext),
		cmocka_unit_test(test_decode_rename2),
		cmocka_unit_test(test_decode_symlink_two_names_no_arg),
		cmocka_unit_test(test_decode_batch_forget),
		cmocka_unit_test(test_decode_init),
		cmocka_unit_test(test_opcode_names),
		cmocka_unit_test(test_opcode_flags),
		cmocka_unit_test(test_reject_short_header),
		cmocka_unit_test(test_reject_len_mismatch),
		cmocka_unit_test(test_reject_short_arg),
		cmocka_unit_test(test_reject_missing_nul),
		cmocka_unit_test(test_reject_empty_name),
		cmocka_unit_test(test_reject_trailing_garbage),
		cmocka_unit_test(test_reject_extlen_past_end),
		cmocka_unit_test(test_unknown_opcode),
		cmocka_unit_test(test_truncated_prefixes),
		cmocka_unit_test(test_ext_groups),
		cmocka_unit_test(test_ext_groups_clamped),
		cmocka_unit_test(test_ext_malformed),
		cmocka_unit_test(test_ext_unknown_skipped),
		cmocka_unit_test(test_ext_with_payload),
		cmocka_unit_test(test_dirent_sizes),
		cmocka_unit_test(test_dirent_fields_and_append),
		cmocka_unit_test(test_dirent_fit),
		cmocka_unit_test(test_direntplus),
		cmocka_unit_test(test_direntplus_append),
		cmocka_unit_test(test_init_full),
		cmocka_unit_test(test_init_without_init_ext),
		cmocka_unit_test(test_init_passthrough_rules),
		cmocka_unit_test(test_init_major),
		cmocka_unit_test(test_init_minor_and_sizes),
		cmocka_unit_test(test_init_old_body),
		cmocka_unit_test(test_fuzz_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
