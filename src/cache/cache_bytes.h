/* cache_bytes: the byte order and the whole writes of the cache's on-disk formats (object
 * records, the superblock, the metadata catalog): little-endian integers, and a positioned
 * write of every byte through the syscall seam. Errors: 0 or -errno (a write of 0 bytes is
 * -EIO).
 */
#ifndef CACHEMAX_CACHE_BYTES_H
#define CACHEMAX_CACHE_BYTES_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sys/sys.h"

static inline void cache_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void cache_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void cache_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t cache_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t cache_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t cache_get_le64(const uint8_t *p)
{
	return (uint64_t)cache_get_le32(p) | (uint64_t)cache_get_le32(p + 4) << 32;
}

/* Write all size bytes of buf at off (a short write goes on where it stopped). */
static inline int cache_pwrite_full(int fd, const void *buf, size_t size, off_t off)
{
	size_t done = 0;
	while (done < size) {
		ssize_t n = sys_pwrite(fd, (const char *)buf + done, size - done, off + (off_t)done);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

#endif
