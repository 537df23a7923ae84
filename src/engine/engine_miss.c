/* engine_miss: a read of an ENGINE_IO_USER file whose bytes the cache object lacks. Sequential
 * misses (and big requests) read whole chunks from the origin (O_DIRECT where allowed) into
 * the caller's buffer, are answered from it, and fill the chunks after the reply
 * (engine_miss_fill_after, from engine_read_after); a small random miss reads just its bytes
 * and leaves its chunk to a fill thread, so that it costs what the origin read costs.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "util/clock.h"

#define MISS_FILL_SPAN_MAX (8u * 1024 * 1024)

/* The fd for chunk-aligned miss reads: direct if the origin allows it, else our own (opened
 * now if the open left it for later); -errno if neither can be had. */
static int miss_direct_fd(struct engine *e, struct engine_file *f)
{
	int fd = atomic_load(&f->direct_fd), expected = 0;
	if (fd == 0) {
		fd = engine_fill_origin_open(e, f->inode, ENGINE_ORIGIN_DIRECT);
		if (fd < 0)
			fd = -1;
		if (!atomic_compare_exchange_strong(&f->direct_fd, &expected, fd)) {
			if (fd > 0)
				sys_close(fd);   /* another thread was first */
			fd = expected;
		}
	}
	return fd > 0 ? fd : engine_file_fd(e, f);
}

/* A miss read in whole chunks: answer, then store the chunks (sequential reads, and requests
 * of half a chunk or more, whose chunks are about to be read anyway). */
static ssize_t miss_read_chunks(struct engine *e, struct engine_file *f, char *buf_in,
                                size_t buf_size, size_t size, uint64_t off, const void **data,
                                struct engine_read_after *after)
{
	struct engine_inode *ei = f->inode;  /* f may be released once answered; ei is held */
	struct cache_object *obj = engine_object_hold(e, ei);
	uint64_t chunk = cache_store_chunk_size(e->store), start, len, t0 = clock_now_ns();
	struct engine_fill_ranges ranges;
	char *buf = NULL;
	ssize_t n;
	int fd;

	after->held = ei;
	after->obj = obj;
	after->gen = cache_object_generation(obj);
	/* The chunks covering the request. Not clipped to the object's size, which may lag the
	 * origin (an evicted object records nothing, not even a new size): the origin's EOF ends
	 * the read. Into the caller's page-aligned buffer when they fit (a chunk-aligned 1 MiB
	 * read): a fresh 1 MiB buffer costs an mmap, 256 page faults and an munmap per request. */
	start = off / chunk * chunk;
	len = (off + size + chunk - 1) / chunk * chunk - start;
	if (len > 0 && len <= buf_size)
		buf = buf_in;
	else if (len > 0 && len <= MISS_FILL_SPAN_MAX &&
	         posix_memalign((void **)&after->own, ENGINE_DIRECT_ALIGN, len) == 0)
		buf = after->own;
	if (!buf) {
		*data = buf_in;
		return engine_bypass_read(e, f, buf_in, size, off, t0);
	}
	fd = miss_direct_fd(e, f);
	n = fd < 0 ? fd : sys_pread(fd, buf, len, (off_t)start);
	if (n < 0) {
		stats_add(e->cfg.stats, STATS_ORIGIN_ERRORS, 1);
		return n;
	}
	/* Where the origin has holes, for the fill: they stay holes in the copy. Asked before the
	 * answer (f and its fds may be gone after it); a write into a hole since the read moved
	 * the generation, and the fill is dropped. */
	engine_fill_data_ranges(fd, start, (uint64_t)n, &ranges);
	after->fill = true;
	after->buf = buf;
	after->start = start;
	after->len = (size_t)n;
	after->range_count = ranges.count;
	memcpy(after->ranges, ranges.ext, ranges.count * sizeof(ranges.ext[0]));
	{
		uint64_t skip = off - start;
		size_t give = (uint64_t)n > skip ? (size_t)((uint64_t)n - skip) : 0;
		if (give > size)
			give = size;
		engine_bypass_count_read(e, ei, false, give, t0);
		*data = buf + skip;
		return (ssize_t)give;
	}
}

void engine_miss_fill_after(struct engine *e, struct engine_read_after *after)
{
	struct cache_object_info info;
	ssize_t filled;

	/* After the answer: the application does not wait for the cache. */
	filled = cache_object_fill_sparse(after->obj, after->gen, after->buf, after->len,
	                                  (off_t)after->start, after->ranges, after->range_count);
	engine_fill_count(e, "fill", filled, after->len);
	after->fill = false;
	cache_object_info(after->obj, &info);
	if (filled != -EDQUOT)
		engine_fill_maybe_complete(e, after->held, &info);
}

ssize_t engine_miss_read(struct engine *e, struct engine_file *f, char *buf, size_t buf_size,
                         size_t size, uint64_t off, bool sequential, const void **data,
                         struct engine_read_after *after)
{
	uint32_t chunk = cache_store_chunk_size(e->store);
	struct engine_inode *ei = f->inode;
	struct cache_object_info info;

	if (sequential || size >= chunk / 2)
		return miss_read_chunks(e, f, buf, buf_size, size, off, data, after);
	/* Queue before answering: once answered, the file (and its node) may be released. */
	cache_object_info(ei->obj, &info);
	if (!engine_fill_maybe_complete(e, ei, &info))
		engine_fill_chunks(e, ei, off, size);
	*data = buf;
	return engine_bypass_read(e, f, buf, size, off, clock_now_ns());
}
