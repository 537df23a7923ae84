/* engine_read: a read of an open file served by the daemon (not passed through by the kernel).
 *   ENGINE_IO_CACHE (a writer or a stale reader joined a hit): the cache copy, as the
 *                    passthrough readers read it;
 *   ENGINE_IO_USER:  a read-ahead piece that holds the bytes (hand-off: its buffer answers), a
 *                    hit on the cache object, or a miss (engine_miss.c); a sequential reader
 *                    moves the read-ahead window after the reply;
 *   otherwise, or after a cache-device error: the origin (engine_bypass.c).
 * The caller replies with what engine_read() returned, then calls engine_read_after(), which
 * does the work left for after the reply with the node held (the file may be released by then).
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "util/clock.h"

#define READ_SEQUENTIAL_WINDOW (2u * 1024 * 1024)  /* a read this close to the last is sequential */

/* The read continues the file's last one (within READ_SEQUENTIAL_WINDOW); records its end. */
static bool read_sequential(struct engine_file *f, uint64_t off, uint64_t size)
{
	uint64_t last = f->next_off;
	f->next_off = off + size;
	return off + READ_SEQUENTIAL_WINDOW >= last && off <= last + READ_SEQUENTIAL_WINDOW;
}

ssize_t engine_read(struct engine *e, struct engine_file *f, char *buf, size_t buf_size,
                    size_t size, uint64_t off, const void **data, struct engine_read_after *after)
{
	struct stats *stats = e->cfg.stats;
	struct engine_inode *ei = f->inode;
	struct cache_object *obj = ei->obj;
	uint64_t t0 = clock_now_ns();
	ssize_t n;

	after->held = NULL;
	after->fill = false;
	after->own = NULL;
	after->sequential = false;
	after->ticket_piece = -1;
	*data = buf;
	if (obj && !f->stale && ei->mode == ENGINE_IO_CACHE) {
		/* The cache copy mirrors the origin (plus mmap writes not yet written back): read it
		 * as the passthrough readers do. */
		n = sys_pread(cache_object_data_fd(obj), buf, size, (off_t)off);
		if (n >= 0) {
			engine_bypass_count_read(e, ei, true, (uint64_t)n, t0);
			return n;
		}
		engine_bypass_error(e, "read", (int)n);
		stats_add(stats, STATS_BYPASSES, 1);
	} else if (obj && !f->stale && !engine_bypass_breaker_tripped(e)) {
		bool sequential = read_sequential(f, off, size);
		struct engine_readahead_ticket ticket;
		int waited = 0;
		if (engine_readahead_lookup(ei, obj, off, size, &ticket)) {
			waited = ENGINE_READAHEAD_HANDOFF;   /* read ahead and kept for us */
			n = -ENODATA;
		} else {
			n = cache_object_read(obj, buf, size, (off_t)off);
			if (n == -ENODATA)
				waited = engine_readahead_wait(e, ei, obj, off, size, &ticket);
		}
		if (waited == ENGINE_READAHEAD_WAITED)
			n = cache_object_read(obj, buf, size, (off_t)off);  /* read ahead meanwhile? */
		if (!sequential)
			engine_readahead_advance(e, ei, obj, off, size, false);
		if (n == -ENODATA && waited != ENGINE_READAHEAD_HANDOFF) {
			/* Before the miss reads the origin, so that the read-ahead's reads overlap it. */
			if (sequential)
				engine_readahead_advance(e, ei, obj, off, size, true);
			n = engine_miss_read(e, f, buf, buf_size, size, off, sequential, data, after);
			engine_bypass_notify(e);
			return n;
		}
		if (waited == ENGINE_READAHEAD_HANDOFF || n >= 0) {
			/* A hit, or read ahead: then the read-ahead's own buffer answers (one copy less,
			 * and no wait for the object's lock, which a fill holds across its write). The
			 * node and object stay held across the answer (the file may be released once
			 * answered): for the ticket, and for the window, which moves after the answer. */
			bool handoff = waited == ENGINE_READAHEAD_HANDOFF;
			size_t len = handoff ? ticket.len : (size_t)n;
			if (handoff) {
				*data = ticket.data;
				after->ticket_piece = ticket.piece;
			}
			if (sequential || handoff) {
				engine_object_hold(e, ei);
				after->held = ei;
				after->obj = obj;
				after->off = off;
				after->size = size;
				after->sequential = sequential;
			}
			engine_bypass_count_read(e, ei, true, len, t0);
			return (ssize_t)len;
		}
		engine_bypass_error(e, "read", (int)n);
		stats_add(stats, STATS_BYPASSES, 1);
	}
	n = engine_bypass_read(e, f, buf, size, off, t0);
	engine_bypass_notify(e);
	return n;
}

void engine_read_after(struct engine *e, struct engine_read_after *after)
{
	struct engine_inode *ei = after->held;

	if (after->fill)
		engine_miss_fill_after(e, after);
	free(after->own);
	after->own = NULL;
	if (!ei)
		return;
	if (after->ticket_piece >= 0)
		engine_readahead_ticket_release(ei, after->ticket_piece);
	if (after->sequential)
		engine_readahead_advance(e, ei, after->obj, after->off, after->size, true);
	after->held = NULL;
	engine_object_drop(e, ei);   /* may free ei */
	engine_bypass_notify(e);
}
