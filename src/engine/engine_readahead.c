/* engine_readahead: keeps the origin busy ahead of a sequential reader of a partially cached file.
 * Each sequential read (hit or miss) of an ENGINE_IO_USER file queues fill jobs for the whole-chunk
 * pieces of the next `window` bytes that are neither present nor queued; the window doubles
 * from ENGINE_READAHEAD_MIN to ENGINE_READAHEAD_MAX while the reader stays sequential and is reset by a
 * random read. The fill threads read the pieces with O_DIRECT and fill them (engine_fill.c: the
 * generation sampled before the origin read drops a fill that raced with a write, and the jobs
 * stop in ENGINE_IO_ORIGIN / ENGINE_IO_CACHE mode and while the breaker is on), so that the reader's next requests
 * are cache hits. A reader that misses on a piece being read waits for it (bounded) rather
 * than read the origin a second time; a piece only queued is taken back and read by the reader.
 * A filled piece keeps the fill thread's buffer (which takes a spare from a small engine-wide pool)
 * until the reader has moved past it, so the reader answers from it without reading the cache
 * device or taking the object's lock, as long as the object's generation has not moved since
 * the piece's origin read (any change through the mount moves it). Kept buffers go back at a
 * random read, at the last close and when the node is freed.
 * A fill refused at capacity pauses read-ahead for ENGINE_READAHEAD_PAUSE_NS.
 */
#include "engine/engine_int.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

#define ENGINE_READAHEAD_MIN (2ull * 1024 * 1024)
#define ENGINE_READAHEAD_MAX (8ull * 1024 * 1024)
#define ENGINE_READAHEAD_PIECE (1ull * 1024 * 1024)    /* per fill job: one O_DIRECT origin read */
#define ENGINE_READAHEAD_WAIT_MS 500                   /* then the reader reads the origin itself */
#define ENGINE_READAHEAD_PAUSE_NS (1000ull * 1000000)

void engine_readahead_init(struct engine_readahead *ra)
{
	pthread_condattr_t attr;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ra->piece_done, &attr);
	pthread_condattr_destroy(&attr);
}

void engine_readahead_pool_init(struct engine *e)
{
	pthread_mutex_init(&e->readahead_pool.lock, NULL);
}

void engine_readahead_pool_release(struct engine *e)
{
	struct engine_readahead_pool *pool = &e->readahead_pool;
	for (unsigned i = 0; i < pool->free_count; i++)
		free(pool->free[i]);
	pool->free_count = 0;
	pthread_mutex_destroy(&pool->lock);
}

/* A spare fill buffer for a fill thread whose buffer a piece keeps; NULL at the limit. */
static char *readahead_pool_take(struct engine *e)
{
	struct engine_readahead_pool *pool = &e->readahead_pool;
	char *buf = NULL;
	bool reserved = false;

	pthread_mutex_lock(&pool->lock);
	if (pool->kept < ENGINE_READAHEAD_KEPT_MAX) {
		pool->kept++;
		reserved = true;
		if (pool->free_count)
			buf = pool->free[--pool->free_count];
	}
	pthread_mutex_unlock(&pool->lock);
	if (reserved && !buf &&
	    posix_memalign((void **)&buf, ENGINE_DIRECT_ALIGN,
	                   (size_t)cache_store_chunk_size(e->store) * ENGINE_FILL_BUFFER_CHUNKS) != 0) {
		buf = NULL;
		pthread_mutex_lock(&pool->lock);
		pool->kept--;
		pthread_mutex_unlock(&pool->lock);
	}
	return buf;
}

/* A buffer a piece kept (or a spare not used) goes back. */
static void readahead_pool_give(struct engine *e, char *buf)
{
	struct engine_readahead_pool *pool = &e->readahead_pool;
	pthread_mutex_lock(&pool->lock);
	pool->kept--;
	if (pool->free_count < ENGINE_READAHEAD_KEPT_MAX) {
		pool->free[pool->free_count++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	free(buf);
}

/* A filled piece that keeps its buffer and has no reader goes (ra->lock held). */
static bool readahead_piece_drop_kept(struct engine *e, struct engine_readahead_piece *p)
{
	if (p->state != ENGINE_PIECE_FILLED || !p->kept || p->readers)
		return false;
	readahead_pool_give(e, p->kept);
	p->kept = NULL;
	p->data = NULL;
	p->state = ENGINE_PIECE_FREE;
	return true;
}

void engine_readahead_release(struct engine *e, struct engine_readahead *ra)
{
	for (int i = 0; i < ENGINE_READAHEAD_PIECES; i++)
		readahead_piece_drop_kept(e, &ra->piece[i]);
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->piece_done);
}

void engine_readahead_drop(struct engine *e, struct engine_inode *ei)
{
	struct engine_readahead *ra = &ei->readahead;
	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < ENGINE_READAHEAD_PIECES; i++)
		readahead_piece_drop_kept(e, &ra->piece[i]);
	ra->next = 0;
	ra->window = 0;
	pthread_mutex_unlock(&ra->lock);
}

bool engine_readahead_lookup(struct engine_inode *ei, struct cache_object *obj, uint64_t off, uint64_t size,
                         struct engine_readahead_ticket *t)
{
	struct engine_readahead *ra = &ei->readahead;
	bool found = false;

	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < ENGINE_READAHEAD_PIECES && !found; i++) {
		struct engine_readahead_piece *p = &ra->piece[i];
		uint64_t skip;
		if (p->state != ENGINE_PIECE_FILLED || off < p->off || off >= p->off + p->len)
			continue;
		/* The whole request, or up to the end of the file the piece reached. */
		if (off + size > p->off + p->len && p->data_len == p->len)
			continue;
		if (p->generation != cache_object_generation(obj))
			continue;   /* changed since its origin read: dropped when the reader moves on */
		skip = off - p->off;
		t->piece = i;
		t->data = p->data + (skip < p->data_len ? skip : p->data_len);
		t->len = skip < p->data_len ? (size_t)(p->data_len - skip) : 0;
		if (t->len > size)
			t->len = (size_t)size;
		p->readers++;
		found = true;
	}
	pthread_mutex_unlock(&ra->lock);
	return found;
}

void engine_readahead_pause(struct engine *e)
{
	atomic_store(&e->readahead_paused_until_ns, clock_now_ns() + ENGINE_READAHEAD_PAUSE_NS);
}

void engine_readahead_advance(struct engine *e, struct engine_inode *ei, struct cache_object *obj, uint64_t off,
                          uint64_t size, bool sequential)
{
	struct engine_readahead *ra = &ei->readahead;
	uint64_t chunk = cache_store_chunk_size(e->store), end = off + size, from, want, file_end;
	uint64_t paused_until;
	struct { int piece; uint32_t seq; uint64_t off, len; } queue[ENGINE_READAHEAD_PIECES];
	struct cache_object_info info;
	unsigned count = 0;

	if (!sequential) {
		engine_readahead_drop(e, ei);   /* a random read: the window starts over */
		return;
	}
	paused_until = atomic_load(&e->readahead_paused_until_ns);
	if (!obj || engine_bypass_breaker_tripped(e) || (paused_until && clock_now_ns() < paused_until))
		return;
	cache_object_info(obj, &info);
	file_end = (info.fingerprint.size + chunk - 1) / chunk * chunk;

	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < ENGINE_READAHEAD_PIECES; i++)   /* the reader has moved past them */
		if (ra->piece[i].off + ra->piece[i].len <= off)
			readahead_piece_drop_kept(e, &ra->piece[i]);
	ra->window = ra->window ? ra->window * 2 : ENGINE_READAHEAD_MIN;
	if (ra->window > ENGINE_READAHEAD_MAX)
		ra->window = ENGINE_READAHEAD_MAX;
	from = (end + chunk - 1) / chunk * chunk;
	if (ra->next > from)
		from = ra->next;
	want = end + ra->window;
	if (want > file_end)
		want = file_end;
	while (from < want) {
		uint64_t len = want - from < ENGINE_READAHEAD_PIECE ? want - from : ENGINE_READAHEAD_PIECE;
		int slot = -1;
		len = (len + chunk - 1) / chunk * chunk;
		/* Present pieces are skipped by their job (asking the object here could wait for
		 * its lock, which a fill holds across its write, with ours held). */
		for (int i = 0; i < ENGINE_READAHEAD_PIECES && slot < 0; i++)
			if (ra->piece[i].state == ENGINE_PIECE_FREE)
				slot = i;
		if (slot < 0)
			break;
		ra->piece[slot] = (struct engine_readahead_piece){ .off = from, .len = len, .seq = ++ra->seq,
		                                                .state = ENGINE_PIECE_QUEUED };
		queue[count].piece = slot;
		queue[count].seq = ra->seq;
		queue[count].off = from;
		queue[count].len = len;
		count++;
		from += len;
	}
	ra->next = from;
	pthread_mutex_unlock(&ra->lock);

	for (unsigned i = 0; i < count; i++) {
		if (!engine_fill_piece(e, ei, queue[i].off, queue[i].len, queue[i].piece, queue[i].seq)) {
			/* Queue full or stopping: give the rest back; a later read queues them again. */
			pthread_mutex_lock(&ra->lock);
			for (unsigned k = i; k < count; k++) {
				struct engine_readahead_piece *p = &ra->piece[queue[k].piece];
				if (p->seq == queue[k].seq && p->state == ENGINE_PIECE_QUEUED)
					p->state = ENGINE_PIECE_FREE;
			}
			if (ra->next > queue[i].off)
				ra->next = queue[i].off;
			pthread_mutex_unlock(&ra->lock);
			break;
		}
	}
}

int engine_readahead_wait(struct engine *e, struct engine_inode *ei, struct cache_object *obj, uint64_t off,
                      uint64_t size, struct engine_readahead_ticket *t)
{
	struct engine_readahead *ra = &ei->readahead;
	uint64_t chunk = cache_store_chunk_size(e->store);
	uint64_t start = off / chunk * chunk, end = (off + size + chunk - 1) / chunk * chunk;
	struct timespec deadline;
	int result = 0, waiting = -1;   /* the piece covering the request we wait on, registered */
	uint32_t waiting_seq = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ENGINE_READAHEAD_WAIT_MS / 1000;
	deadline.tv_nsec += (long)(ENGINE_READAHEAD_WAIT_MS % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ra->lock);
	for (;;) {
		bool reading = false;
		if (waiting >= 0) {
			struct engine_readahead_piece *p = &ra->piece[waiting];
			/* Filled, but its bytes are those of its generation: a change through the mount
			 * since (a truncate, a write into a hole; this request may have come after it)
			 * makes them stale, as engine_readahead_lookup checks. The piece was read and
			 * filled before the change but offered after it (its fill thread preempted in
			 * between): the reader reads the cache or the origin instead. */
			if (p->seq == waiting_seq && p->state == ENGINE_PIECE_FILLED &&
			    p->generation != cache_object_generation(obj)) {
				p->readers--;
				pthread_cond_broadcast(&ra->piece_done);   /* a lent buffer may go back */
				waiting = -1;
				result = ENGINE_READAHEAD_WAITED;
				break;
			}
			if (p->seq == waiting_seq && p->state == ENGINE_PIECE_FILLED) {
				uint64_t skip = off - p->off;
				t->piece = waiting;
				t->data = p->data + (skip < p->data_len ? skip : p->data_len);
				t->len = skip < p->data_len ? (size_t)(p->data_len - skip) : 0;
				if (t->len > size)
					t->len = (size_t)size;
				result = ENGINE_READAHEAD_HANDOFF;   /* stays registered until released */
				break;
			}
			if (p->seq != waiting_seq || p->state != ENGINE_PIECE_READING) {
				p->readers -= p->seq == waiting_seq;
				waiting = -1;    /* dropped or failed: the cache or the origin then */
			}
		}
		for (int i = 0; i < ENGINE_READAHEAD_PIECES; i++) {
			struct engine_readahead_piece *p = &ra->piece[i];
			if (p->state == ENGINE_PIECE_FREE || p->state == ENGINE_PIECE_FILLED ||
			    p->off >= end || p->off + p->len <= start)
				continue;
			if (p->state == ENGINE_PIECE_QUEUED) {
				p->state = ENGINE_PIECE_FREE;   /* taken back: the reader reads it now */
				continue;
			}
			reading = true;
			if (waiting < 0 && result == 0 && p->off <= off && off + size <= p->off + p->len) {
				waiting = i;    /* covers the request: its buffer can answer it */
				waiting_seq = p->seq;
				p->readers++;
			}
		}
		if (!reading && waiting < 0)
			break;
		result = ENGINE_READAHEAD_WAITED;
		if (pthread_cond_timedwait(&ra->piece_done, &ra->lock, &deadline) == ETIMEDOUT) {
			log_warn("read-ahead of inode %llu still reading after %u ms: reading the origin",
			         (unsigned long long)ei->ino, ENGINE_READAHEAD_WAIT_MS);
			if (waiting >= 0 && ra->piece[waiting].seq == waiting_seq) {
				ra->piece[waiting].readers--;
				pthread_cond_broadcast(&ra->piece_done);
			}
			break;
		}
	}
	pthread_mutex_unlock(&ra->lock);
	return result;
}

void engine_readahead_ticket_release(struct engine_inode *ei, int piece)
{
	struct engine_readahead *ra = &ei->readahead;
	pthread_mutex_lock(&ra->lock);
	if (--ra->piece[piece].readers == 0)
		pthread_cond_broadcast(&ra->piece_done);
	pthread_mutex_unlock(&ra->lock);
}

bool engine_readahead_piece_claim(struct engine_inode *ei, int piece, uint32_t seq)
{
	struct engine_readahead *ra = &ei->readahead;
	bool mine;
	pthread_mutex_lock(&ra->lock);
	mine = ra->piece[piece].seq == seq && ra->piece[piece].state == ENGINE_PIECE_QUEUED;
	if (mine)
		ra->piece[piece].state = ENGINE_PIECE_READING;
	pthread_mutex_unlock(&ra->lock);
	return mine;
}

char *engine_readahead_piece_offer(struct engine *e, struct engine_inode *ei, int piece, uint32_t seq, char *data,
                               size_t len, uint64_t generation)
{
	struct engine_readahead *ra = &ei->readahead;
	struct engine_readahead_piece *p = &ra->piece[piece];
	char *spare = readahead_pool_take(e), *next = data;

	pthread_mutex_lock(&ra->lock);
	if (p->seq == seq && p->state == ENGINE_PIECE_READING && (spare || p->readers)) {
		p->state = ENGINE_PIECE_FILLED;
		p->data = data;
		p->data_len = len;
		p->generation = generation;
		if (spare) {
			p->kept = data;   /* the reader answers from it until it moves past the piece */
			next = spare;
			spare = NULL;
		}
		pthread_cond_broadcast(&ra->piece_done);
		while (!p->kept && p->readers)   /* lent: they reply from data, keep it till then */
			pthread_cond_wait(&ra->piece_done, &ra->lock);
	}
	pthread_mutex_unlock(&ra->lock);
	if (spare)
		readahead_pool_give(e, spare);
	return next;
}

void engine_readahead_piece_done(struct engine_inode *ei, int piece, uint32_t seq)
{
	struct engine_readahead *ra = &ei->readahead;
	pthread_mutex_lock(&ra->lock);
	if (ra->piece[piece].seq == seq && ra->piece[piece].state != ENGINE_PIECE_FREE &&
	    !ra->piece[piece].kept) {
		ra->piece[piece].state = ENGINE_PIECE_FREE;
		pthread_cond_broadcast(&ra->piece_done);
	}
	pthread_mutex_unlock(&ra->lock);
}
