/* cache_meta: the store's on-disk formats (object record, superblock, capacity) as pure
 * functions over the caller's buffer: no I/O, no allocation. The formats are written down in
 * cache_meta.c.
 * Private to src/cache/ and its unit tests.
 */
#ifndef CACHEMAX_CACHE_META_H
#define CACHEMAX_CACHE_META_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache_store.h"

#define CACHE_META_RECORD_VERSION 2u     /* written; version 1 is still read */
#define CACHE_META_RECORD_VERSION_1 1u
#define CACHE_META_HEADER_SIZE 232u      /* version 2 */
#define CACHE_META_HEADER_SIZE_V1 96u
#define CACHE_META_CRC_SIZE 4u
#define CACHE_META_SUPERBLOCK_VERSION 1u
#define CACHE_META_SUPERBLOCK_SIZE 36u
#define CACHE_META_CAPACITY_VERSION 1u
#define CACHE_META_CAPACITY_SIZE 28u
#define CACHE_META_CHUNK_SHIFT_MIN 12u   /* log2(CACHE_CHUNK_SIZE_MIN) */
#define CACHE_META_CHUNK_SHIFT_MAX 26u   /* log2(CACHE_CHUNK_SIZE_MAX) */

struct cache_meta_record {
	struct cache_key key;
	struct cache_fingerprint fp;
	uint32_t chunk_shift;
	uint64_t chunk_count;     /* must be chunks_for(fp.size, chunk_shift) */
	uint64_t present_count;   /* must be the number of bits set in bitmap */
	const uint8_t *bitmap;    /* encode: the map; decode: points into the decoded buffer */
	struct cache_origin_handle handle;   /* bytes 0: none (always so in version 1) */
};

struct cache_meta_superblock {
	uint64_t origin_dev;
	uint64_t origin_ino;
};

uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t len);

uint64_t cache_meta_chunks_for(uint64_t size, uint32_t chunk_shift);
uint64_t cache_meta_bitmap_bytes(uint64_t chunk_count);
uint64_t cache_meta_record_size(uint64_t chunk_count);

/* Writes exactly cache_meta_record_size(record->chunk_count) bytes to buf (version 2). */
void cache_meta_record_encode(const struct cache_meta_record *record, uint8_t *buf);
/* 0, or -EBADMSG for anything but an intact version-2 (or version-1) record: wrong length,
 * magic, version, CRC, chunk shift, chunk count, present count, handle length, nonzero padding
 * bits or bytes, flags. */
int cache_meta_record_decode(const uint8_t *buf, size_t len, struct cache_meta_record *record);

void cache_meta_superblock_encode(const struct cache_meta_superblock *sb,
                                  uint8_t buf[CACHE_META_SUPERBLOCK_SIZE]);
/* 0, or -EBADMSG (wrong length, magic, CRC or flags), -EPROTONOSUPPORT (another version). */
int cache_meta_superblock_decode(const uint8_t *buf, size_t len, struct cache_meta_superblock *sb);

void cache_meta_capacity_encode(uint64_t capacity, uint8_t buf[CACHE_META_CAPACITY_SIZE]);
/* 0, or -EBADMSG (wrong length, magic, CRC or flags, capacity 0), -EPROTONOSUPPORT. */
int cache_meta_capacity_decode(const uint8_t *buf, size_t len, uint64_t *capacity);

#endif
