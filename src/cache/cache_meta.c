/* cache_meta: encode and decode the cache store's on-disk records. This comment is the
 * specification of the formats; change the version (and this changelog) with any change.
 *
 * All integers are little-endian. CRC32C is Castagnoli (reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF; "123456789" -> 0xE3069283).
 *
 * Object record, objects/HH/DEV-INO.meta, version 2 (H = header_size = 232):
 *   off  size  field
 *     0     8  magic          "CMXOBJ\r\n"
 *     8     4  version        2
 *    12     4  header_size    232 (offset of the bitmap)
 *    16     8  key_dev        the object's key (must match the file name)
 *    24     8  key_ino
 *    32     8  fp_dev         fingerprint of the origin file the present chunks belong to
 *    40     8  fp_ino
 *    48     8  fp_size
 *    56     8  fp_mtime_ns    signed
 *    64     8  fp_ctime_ns    signed
 *    72     4  chunk_shift    log2(chunk size), 12..26
 *    76     4  flags          0 (none defined; any other value is rejected)
 *    80     8  chunk_count    ceil(fp_size / chunk size), at most CACHE_OBJECT_MAX_CHUNKS
 *    88     8  present_count  bits set in the bitmap
 *    96     4  handle_type    signed; the origin file's handle (name_to_handle_at), by which
 *   100     4  handle_bytes   the background scrub finds the origin file without a path;
 *   104   128  handle         handle_bytes 0..128 (0: none, then handle_type 0); bytes past
 *                             handle_bytes are 0
 *     H     B  bitmap         B = ceil(chunk_count / 8); chunk i present = bit (i % 8) of byte
 *                             i / 8; bits past chunk_count are 0
 *   H+B     4  crc32c         of bytes [0, H + B)
 * The file is exactly H + B + 4 bytes. Anything else (torn, garbled, unknown version) is
 * treated as no record at all. Written to DEV-INO.meta.tmp, fsynced, renamed over DEV-INO.meta.
 * Version 1 records (H = 96: no handle fields, the bitmap at 96) are still read, as records
 * without a handle; they are rewritten as version 2 at their next persist.
 *
 * Superblock, cachemax-v1/superblock, version 1 (36 bytes):
 *     0     8  magic          "CMXSTOR\n"
 *     8     4  version        1
 *    12     4  flags          0
 *    16     8  origin_dev     st_dev, st_ino of the origin root the store belongs to
 *    24     8  origin_ino
 *    32     4  crc32c         of bytes [0, 32)
 *
 * Capacity, cachemax-v1/capacity, version 1 (28 bytes): the capacity in effect at the last open
 * that had one, for the next open that sets none. Written to capacity.tmp, fsynced, renamed.
 *     0     8  magic          "CMXCAPA\n"
 *     8     4  version        1
 *    12     4  flags          0
 *    16     8  capacity       bytes, not 0
 *    24     4  crc32c         of bytes [0, 24)
 *
 * Changelog: version 1 — first format (the capacity file came later, as its own version 1;
 * stores without it are read as "no capacity saved"). Object record version 2 — the origin
 * file's handle, for the scrub that reclaims objects whose original vanished or changed while
 * the daemon was down (issue #12); version 1 records are read as handle-less.
 */
#include "cache/cache_meta.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cache/cache_bytes.h"

#define CRC32C_POLY 0x82F63B78u
#define CRC32C_INIT 0xFFFFFFFFu
#define CRC_TABLE_SIZE 256

static const uint8_t record_magic[8] = { 'C', 'M', 'X', 'O', 'B', 'J', '\r', '\n' };
static const uint8_t superblock_magic[8] = { 'C', 'M', 'X', 'S', 'T', 'O', 'R', '\n' };
static const uint8_t capacity_magic[8] = { 'C', 'M', 'X', 'C', 'A', 'P', 'A', '\n' };

enum record_offset {
	REC_MAGIC = 0, REC_VERSION = 8, REC_HEADER_SIZE = 12, REC_KEY_DEV = 16, REC_KEY_INO = 24,
	REC_FP_DEV = 32, REC_FP_INO = 40, REC_FP_SIZE = 48, REC_FP_MTIME = 56, REC_FP_CTIME = 64,
	REC_CHUNK_SHIFT = 72, REC_FLAGS = 76, REC_CHUNK_COUNT = 80, REC_PRESENT_COUNT = 88,
	REC_HANDLE_TYPE = 96, REC_HANDLE_BYTES = 100, REC_HANDLE = 104,
};
enum superblock_offset {
	SB_MAGIC = 0, SB_VERSION = 8, SB_FLAGS = 12, SB_ORIGIN_DEV = 16, SB_ORIGIN_INO = 24,
	SB_CRC = 32,
};
enum capacity_offset {
	CAP_MAGIC = 0, CAP_VERSION = 8, CAP_FLAGS = 12, CAP_CAPACITY = 16, CAP_CRC = 24,
};

static uint32_t crc_table[CRC_TABLE_SIZE];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < CRC_TABLE_SIZE; i++) {
		uint32_t c = i;
		for (int bit = 0; bit < 8; bit++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[i] = c;
	}
}

/* crc is the value returned for the previous piece (0 to start). */
uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	pthread_once(&crc_table_once, crc_table_init);
	crc ^= CRC32C_INIT;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ CRC32C_INIT;
}

uint64_t cache_meta_chunks_for(uint64_t size, uint32_t chunk_shift)
{
	return (size >> chunk_shift) + ((size & ((1ull << chunk_shift) - 1)) != 0);
}

uint64_t cache_meta_bitmap_bytes(uint64_t chunk_count)
{
	return chunk_count / 8 + (chunk_count % 8 != 0);
}

uint64_t cache_meta_record_size(uint64_t chunk_count)
{
	return CACHE_META_HEADER_SIZE + cache_meta_bitmap_bytes(chunk_count) + CACHE_META_CRC_SIZE;
}

/* The header size of a record version (0: not a version we read). */
static uint32_t header_size_of(uint32_t version)
{
	return version == CACHE_META_RECORD_VERSION ? CACHE_META_HEADER_SIZE
	       : version == CACHE_META_RECORD_VERSION_1 ? CACHE_META_HEADER_SIZE_V1 : 0;
}

void cache_meta_record_encode(const struct cache_meta_record *r, uint8_t *buf)
{
	uint64_t bitmap_bytes = cache_meta_bitmap_bytes(r->chunk_count);

	memset(buf, 0, CACHE_META_HEADER_SIZE);
	memcpy(buf + REC_MAGIC, record_magic, sizeof(record_magic));
	cache_put_le32(buf + REC_VERSION, CACHE_META_RECORD_VERSION);
	cache_put_le32(buf + REC_HEADER_SIZE, CACHE_META_HEADER_SIZE);
	cache_put_le64(buf + REC_KEY_DEV, r->key.dev);
	cache_put_le64(buf + REC_KEY_INO, r->key.ino);
	cache_put_le64(buf + REC_FP_DEV, r->fp.dev);
	cache_put_le64(buf + REC_FP_INO, r->fp.ino);
	cache_put_le64(buf + REC_FP_SIZE, r->fp.size);
	cache_put_le64(buf + REC_FP_MTIME, (uint64_t)r->fp.mtime_ns);
	cache_put_le64(buf + REC_FP_CTIME, (uint64_t)r->fp.ctime_ns);
	cache_put_le32(buf + REC_CHUNK_SHIFT, r->chunk_shift);
	cache_put_le32(buf + REC_FLAGS, 0);
	cache_put_le64(buf + REC_CHUNK_COUNT, r->chunk_count);
	cache_put_le64(buf + REC_PRESENT_COUNT, r->present_count);
	cache_put_le32(buf + REC_HANDLE_TYPE, r->handle.bytes ? (uint32_t)r->handle.type : 0);
	cache_put_le32(buf + REC_HANDLE_BYTES, r->handle.bytes);
	if (r->handle.bytes)
		memcpy(buf + REC_HANDLE, r->handle.data, r->handle.bytes);
	if (bitmap_bytes)
		memcpy(buf + CACHE_META_HEADER_SIZE, r->bitmap, bitmap_bytes);
	cache_put_le32(buf + CACHE_META_HEADER_SIZE + bitmap_bytes,
	         cache_crc32c(0, buf, CACHE_META_HEADER_SIZE + bitmap_bytes));
}

static uint64_t popcount_bytes(const uint8_t *p, uint64_t n)
{
	uint64_t count = 0;
	for (uint64_t i = 0; i < n; i++)
		count += (uint64_t)__builtin_popcount(p[i]);
	return count;
}

int cache_meta_record_decode(const uint8_t *buf, size_t len, struct cache_meta_record *out)
{
	struct cache_meta_record r;
	uint64_t bitmap_bytes;
	uint32_t header;

	if (len < CACHE_META_HEADER_SIZE_V1 + CACHE_META_CRC_SIZE ||
	    memcmp(buf + REC_MAGIC, record_magic, sizeof(record_magic)))
		return -EBADMSG;
	header = header_size_of(cache_get_le32(buf + REC_VERSION));
	if (!header || cache_get_le32(buf + REC_HEADER_SIZE) != header || cache_get_le32(buf + REC_FLAGS) != 0 ||
	    len < header + CACHE_META_CRC_SIZE)
		return -EBADMSG;
	r.chunk_shift = cache_get_le32(buf + REC_CHUNK_SHIFT);
	r.chunk_count = cache_get_le64(buf + REC_CHUNK_COUNT);
	if (r.chunk_shift < CACHE_META_CHUNK_SHIFT_MIN || r.chunk_shift > CACHE_META_CHUNK_SHIFT_MAX ||
	    r.chunk_count > CACHE_OBJECT_MAX_CHUNKS ||
	    header + cache_meta_bitmap_bytes(r.chunk_count) + CACHE_META_CRC_SIZE != len)
		return -EBADMSG;
	bitmap_bytes = cache_meta_bitmap_bytes(r.chunk_count);
	if (cache_get_le32(buf + header + bitmap_bytes) != cache_crc32c(0, buf, header + bitmap_bytes))
		return -EBADMSG;

	r.key.dev = cache_get_le64(buf + REC_KEY_DEV);
	r.key.ino = cache_get_le64(buf + REC_KEY_INO);
	r.fp.dev = cache_get_le64(buf + REC_FP_DEV);
	r.fp.ino = cache_get_le64(buf + REC_FP_INO);
	r.fp.size = cache_get_le64(buf + REC_FP_SIZE);
	r.fp.mtime_ns = (int64_t)cache_get_le64(buf + REC_FP_MTIME);
	r.fp.ctime_ns = (int64_t)cache_get_le64(buf + REC_FP_CTIME);
	r.present_count = cache_get_le64(buf + REC_PRESENT_COUNT);
	r.bitmap = buf + header;
	memset(&r.handle, 0, sizeof(r.handle));
	if (header == CACHE_META_HEADER_SIZE) {
		r.handle.type = (int32_t)cache_get_le32(buf + REC_HANDLE_TYPE);
		r.handle.bytes = cache_get_le32(buf + REC_HANDLE_BYTES);
		if (r.handle.bytes > CACHE_HANDLE_MAX || (!r.handle.bytes && r.handle.type))
			return -EBADMSG;
		for (uint32_t i = r.handle.bytes; i < CACHE_HANDLE_MAX; i++)
			if (buf[REC_HANDLE + i])
				return -EBADMSG;
		memcpy(r.handle.data, buf + REC_HANDLE, r.handle.bytes);
	}
	if (r.fp.size > INT64_MAX || cache_meta_chunks_for(r.fp.size, r.chunk_shift) != r.chunk_count)
		return -EBADMSG;
	if (r.chunk_count % 8 && (r.bitmap[bitmap_bytes - 1] >> (r.chunk_count % 8)))
		return -EBADMSG;
	if (popcount_bytes(r.bitmap, bitmap_bytes) != r.present_count)
		return -EBADMSG;
	*out = r;
	return 0;
}

void cache_meta_superblock_encode(const struct cache_meta_superblock *sb,
                                  uint8_t buf[CACHE_META_SUPERBLOCK_SIZE])
{
	memcpy(buf + SB_MAGIC, superblock_magic, sizeof(superblock_magic));
	cache_put_le32(buf + SB_VERSION, CACHE_META_SUPERBLOCK_VERSION);
	cache_put_le32(buf + SB_FLAGS, 0);
	cache_put_le64(buf + SB_ORIGIN_DEV, sb->origin_dev);
	cache_put_le64(buf + SB_ORIGIN_INO, sb->origin_ino);
	cache_put_le32(buf + SB_CRC, cache_crc32c(0, buf, SB_CRC));
}

int cache_meta_superblock_decode(const uint8_t *buf, size_t len, struct cache_meta_superblock *sb)
{
	if (len != CACHE_META_SUPERBLOCK_SIZE ||
	    memcmp(buf + SB_MAGIC, superblock_magic, sizeof(superblock_magic)) ||
	    cache_get_le32(buf + SB_CRC) != cache_crc32c(0, buf, SB_CRC) || cache_get_le32(buf + SB_FLAGS) != 0)
		return -EBADMSG;
	if (cache_get_le32(buf + SB_VERSION) != CACHE_META_SUPERBLOCK_VERSION)
		return -EPROTONOSUPPORT;
	sb->origin_dev = cache_get_le64(buf + SB_ORIGIN_DEV);
	sb->origin_ino = cache_get_le64(buf + SB_ORIGIN_INO);
	return 0;
}

void cache_meta_capacity_encode(uint64_t capacity, uint8_t buf[CACHE_META_CAPACITY_SIZE])
{
	memcpy(buf + CAP_MAGIC, capacity_magic, sizeof(capacity_magic));
	cache_put_le32(buf + CAP_VERSION, CACHE_META_CAPACITY_VERSION);
	cache_put_le32(buf + CAP_FLAGS, 0);
	cache_put_le64(buf + CAP_CAPACITY, capacity);
	cache_put_le32(buf + CAP_CRC, cache_crc32c(0, buf, CAP_CRC));
}

int cache_meta_capacity_decode(const uint8_t *buf, size_t len, uint64_t *capacity)
{
	uint64_t value;

	if (len != CACHE_META_CAPACITY_SIZE ||
	    memcmp(buf + CAP_MAGIC, capacity_magic, sizeof(capacity_magic)) ||
	    cache_get_le32(buf + CAP_CRC) != cache_crc32c(0, buf, CAP_CRC) ||
	    cache_get_le32(buf + CAP_FLAGS) != 0)
		return -EBADMSG;
	if (cache_get_le32(buf + CAP_VERSION) != CACHE_META_CAPACITY_VERSION)
		return -EPROTONOSUPPORT;
	value = cache_get_le64(buf + CAP_CAPACITY);
	if (value == 0)
		return -EBADMSG;
	*capacity = value;
	return 0;
}
