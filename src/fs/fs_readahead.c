/* fs_readahead: keeps the origin busy ahead of a sequential reader of a partially cached file.
 * Each sequential read (hit or miss) of an FS_IO_USER file queues fill jobs for the whole-chunk
 * pieces of the next `window` bytes that are neither present nor queued; the window doubles
 * from FS_READAHEAD_MIN to FS_READAHEAD_MAX while the reader stays sequential and is reset by a
 * random read. The fill threads read the pieces with O_DIRECT and fill them (fs_fill.c: the
 * generation sampled before the origin read drops a fill that raced with a write, and the jobs
 * stop in FS_IO_ORIGIN / FS_IO_CACHE mode and in bypass), so that the reader's next requests
 * are cache hits. A reader that misses on a piece being read waits for it (bounded) rather
 * than read the origin a second time; a piece only queued is taken back and read by the reader.
 * A filled piece keeps the fill thread's buffer (which takes a spare from a small fs-wide pool)
 * until the reader has moved past it, so the reader answers from it without reading the cache
 * device or taking the object's lock, as long as the object's generation has not moved since
 * the piece's origin read (any change through the mount moves it). Kept buffers go back at a
 * random read, at the last close and when the node is freed.
 * A fill refused at capacity pauses read-ahead for FS_READAHEAD_PAUSE_NS.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

#define FS_READAHEAD_MIN (2ull * 1024 * 1024)
#define FS_READAHEAD_MAX (8ull * 1024 * 1024)
#define FS_READAHEAD_PIECE (1ull * 1024 * 1024)    /* per fill job: one O_DIRECT origin read */
#define FS_READAHEAD_WAIT_MS 500                   /* then the reader reads the origin itself */
#define FS_READAHEAD_PAUSE_NS (1000ull * 1000000)

void fs_readahead_init(struct fs_readahead *ra)
{
	pthread_condattr_t attr;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ra->piece_done, &attr);
	pthread_condattr_destroy(&attr);
}

void fs_readahead_pool_init(struct fs *fs)
{
	pthread_mutex_init(&fs->readahead_pool.lock, NULL);
}

void fs_readahead_pool_release(struct fs *fs)
{
	struct fs_readahead_pool *pool = &fs->readahead_pool;
	for (unsigned i = 0; i < pool->free_count; i++)
		free(pool->free[i]);
	pool->free_count = 0;
	pthread_mutex_destroy(&pool->lock);
}

/* A spare fill buffer for a fill thread whose buffer a piece keeps; NULL at the limit. */
static char *pool_take(struct fs *fs)
{
	struct fs_readahead_pool *pool = &fs->readahead_pool;
	char *buf = NULL;
	bool reserved = false;

	pthread_mutex_lock(&pool->lock);
	if (pool->kept < FS_READAHEAD_KEPT_MAX) {
		pool->kept++;
		reserved = true;
		if (pool->free_count)
			buf = pool->free[--pool->free_count];
	}
	pthread_mutex_unlock(&pool->lock);
	if (reserved && !buf &&
	    posix_memalign((void **)&buf, FS_DIRECT_ALIGN,
	                   (size_t)cache_store_chunk_size(fs->store) * FS_FILL_BUFFER_CHUNKS) != 0) {
		buf = NULL;
		pthread_mutex_lock(&pool->lock);
		pool->kept--;
		pthread_mutex_unlock(&pool->lock);
	}
	return buf;
}

/* A buffer a piece kept (or a spare not used) goes back. */
static void pool_give(struct fs *fs, char *buf)
{
	struct fs_readahead_pool *pool = &fs->readahead_pool;
	pthread_mutex_lock(&pool->lock);
	pool->kept--;
	if (pool->free_count < FS_READAHEAD_KEPT_MAX) {
		pool->free[pool->free_count++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	free(buf);
}

/* A filled piece that keeps its buffer and has no reader goes (ra->lock held). */
static bool piece_drop_kept(struct fs *fs, struct fs_readahead_piece *p)
{
	if (p->state != FS_PIECE_FILLED || !p->kept || p->readers)
		return false;
	pool_give(fs, p->kept);
	p->kept = NULL;
	p->data = NULL;
	p->state = FS_PIECE_FREE;
	return true;
}

void fs_readahead_release(struct fs *fs, struct fs_readahead *ra)
{
	for (int i = 0; i < FS_READAHEAD_PIECES; i++)
		piece_drop_kept(fs, &ra->piece[i]);
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->piece_done);
}

void fs_readahead_drop(struct fs *fs, struct fs_node *n)
{
	struct fs_readahead *ra = &n->io->readahead;
	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < FS_READAHEAD_PIECES; i++)
		piece_drop_kept(fs, &ra->piece[i]);
	ra->next = 0;
	ra->window = 0;
	pthread_mutex_unlock(&ra->lock);
}

bool fs_readahead_lookup(struct fs_node *n, struct cache_object *obj, uint64_t off, uint64_t size,
                         struct fs_readahead_ticket *t)
{
	struct fs_readahead *ra = &n->io->readahead;
	bool found = false;

	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < FS_READAHEAD_PIECES && !found; i++) {
		struct fs_readahead_piece *p = &ra->piece[i];
		uint64_t skip;
		if (p->state != FS_PIECE_FILLED || off < p->off || off >= p->off + p->len)
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

void fs_readahead_pause(struct fs *fs)
{
	atomic_store(&fs->readahead_paused_until_ns, clock_now_ns() + FS_READAHEAD_PAUSE_NS);
}

void fs_readahead_advance(struct fs *fs, struct fs_node *n, struct cache_object *obj, uint64_t off,
                          uint64_t size, bool sequential)
{
	struct fs_readahead *ra = &n->io->readahead;
	uint64_t chunk = cache_store_chunk_size(fs->store), end = off + size, from, want, file_end;
	uint64_t paused_until;
	struct { int piece; uint32_t seq; uint64_t off, len; } queue[FS_READAHEAD_PIECES];
	struct cache_object_info info;
	unsigned count = 0;

	if (!sequential) {
		fs_readahead_drop(fs, n);   /* a random read: the window starts over */
		return;
	}
	paused_until = atomic_load(&fs->readahead_paused_until_ns);
	if (!obj || atomic_load(&fs->bypass.on) || (paused_until && clock_now_ns() < paused_until))
		return;
	cache_object_info(obj, &info);
	file_end = (info.fingerprint.size + chunk - 1) / chunk * chunk;

	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < FS_READAHEAD_PIECES; i++)   /* the reader has moved past them */
		if (ra->piece[i].off + ra->piece[i].len <= off)
			piece_drop_kept(fs, &ra->piece[i]);
	ra->window = ra->window ? ra->window * 2 : FS_READAHEAD_MIN;
	if (ra->window > FS_READAHEAD_MAX)
		ra->window = FS_READAHEAD_MAX;
	from = (end + chunk - 1) / chunk * chunk;
	if (ra->next > from)
		from = ra->next;
	want = end + ra->window;
	if (want > file_end)
		want = file_end;
	while (from < want) {
		uint64_t len = want - from < FS_READAHEAD_PIECE ? want - from : FS_READAHEAD_PIECE;
		int slot = -1;
		len = (len + chunk - 1) / chunk * chunk;
		/* Present pieces are skipped by their job (asking the object here could wait for
		 * its lock, which a fill holds across its write, with ours held). */
		for (int i = 0; i < FS_READAHEAD_PIECES && slot < 0; i++)
			if (ra->piece[i].state == FS_PIECE_FREE)
				slot = i;
		if (slot < 0)
			break;
		ra->piece[slot] = (struct fs_readahead_piece){ .off = from, .len = len, .seq = ++ra->seq,
		                                                .state = FS_PIECE_QUEUED };
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
		if (!fs_fill_enqueue_piece(fs, n, queue[i].off, queue[i].len, queue[i].piece, queue[i].seq)) {
			/* Queue full or stopping: give the rest back; a later read queues them again. */
			pthread_mutex_lock(&ra->lock);
			for (unsigned k = i; k < count; k++) {
				struct fs_readahead_piece *p = &ra->piece[queue[k].piece];
				if (p->seq == queue[k].seq && p->state == FS_PIECE_QUEUED)
					p->state = FS_PIECE_FREE;
			}
			if (ra->next > queue[i].off)
				ra->next = queue[i].off;
			pthread_mutex_unlock(&ra->lock);
			break;
		}
	}
}

int fs_readahead_wait(struct fs *fs, struct fs_node *n, struct cache_object *obj, uint64_t off,
                      uint64_t size, struct fs_readahead_ticket *t)
{
	struct fs_readahead *ra = &n->io->readahead;
	uint64_t chunk = cache_store_chunk_size(fs->store);
	uint64_t start = off / chunk * chunk, end = (off + size + chunk - 1) / chunk * chunk;
	struct timespec deadline;
	int result = 0, waiting = -1;   /* the piece covering the request we wait on, registered */
	uint32_t waiting_seq = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += FS_READAHEAD_WAIT_MS / 1000;
	deadline.tv_nsec += (long)(FS_READAHEAD_WAIT_MS % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ra->lock);
	for (;;) {
		bool reading = false;
		if (waiting >= 0) {
			struct fs_readahead_piece *p = &ra->piece[waiting];
			/* Filled, but its bytes are those of its generation: a change through the mount
			 * since (a truncate, a write into a hole; this request may have come after it)
			 * makes them stale, as fs_readahead_lookup checks. The piece was read and
			 * filled before the change but offered after it (its fill thread preempted in
			 * between): the reader reads the cache or the origin instead. */
			if (p->seq == waiting_seq && p->state == FS_PIECE_FILLED &&
			    p->generation != cache_object_generation(obj)) {
				p->readers--;
				pthread_cond_broadcast(&ra->piece_done);   /* a lent buffer may go back */
				waiting = -1;
				result = FS_READAHEAD_WAITED;
				break;
			}
			if (p->seq == waiting_seq && p->state == FS_PIECE_FILLED) {
				uint64_t skip = off - p->off;
				t->piece = waiting;
				t->data = p->data + (skip < p->data_len ? skip : p->data_len);
				t->len = skip < p->data_len ? (size_t)(p->data_len - skip) : 0;
				if (t->len > size)
					t->len = (size_t)size;
				result = FS_READAHEAD_HANDOFF;   /* stays registered until released */
				break;
			}
			if (p->seq != waiting_seq || p->state != FS_PIECE_READING) {
				p->readers -= p->seq == waiting_seq;
				waiting = -1;    /* dropped or failed: the cache or the origin then */
			}
		}
		for (int i = 0; i < FS_READAHEAD_PIECES; i++) {
			struct fs_readahead_piece *p = &ra->piece[i];
			if (p->state == FS_PIECE_FREE || p->state == FS_PIECE_FILLED ||
			    p->off >= end || p->off + p->len <= start)
				continue;
			if (p->state == FS_PIECE_QUEUED) {
				p->state = FS_PIECE_FREE;   /* taken back: the reader reads it now */
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
		result = FS_READAHEAD_WAITED;
		if (pthread_cond_timedwait(&ra->piece_done, &ra->lock, &deadline) == ETIMEDOUT) {
			log_warn("read-ahead of inode %llu still reading after %u ms: reading the origin",
			         (unsigned long long)n->ino, FS_READAHEAD_WAIT_MS);
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

void fs_readahead_ticket_release(struct fs_node *n, const struct fs_readahead_ticket *t)
{
	struct fs_readahead *ra = &n->io->readahead;
	pthread_mutex_lock(&ra->lock);
	if (--ra->piece[t->piece].readers == 0)
		pthread_cond_broadcast(&ra->piece_done);
	pthread_mutex_unlock(&ra->lock);
}

bool fs_readahead_piece_claim(struct fs_node *n, int piece, uint32_t seq)
{
	struct fs_readahead *ra = &n->io->readahead;
	bool mine;
	pthread_mutex_lock(&ra->lock);
	mine = ra->piece[piece].seq == seq && ra->piece[piece].state == FS_PIECE_QUEUED;
	if (mine)
		ra->piece[piece].state = FS_PIECE_READING;
	pthread_mutex_unlock(&ra->lock);
	return mine;
}

char *fs_readahead_piece_offer(struct fs *fs, struct fs_node *n, int piece, uint32_t seq, char *data,
                               size_t len, uint64_t generation)
{
	struct fs_readahead *ra = &n->io->readahead;
	struct fs_readahead_piece *p = &ra->piece[piece];
	char *spare = pool_take(fs), *next = data;

	pthread_mutex_lock(&ra->lock);
	if (p->seq == seq && p->state == FS_PIECE_READING && (spare || p->readers)) {
		p->state = FS_PIECE_FILLED;
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
		pool_give(fs, spare);
	return next;
}

void fs_readahead_piece_done(struct fs_node *n, int piece, uint32_t seq)
{
	struct fs_readahead *ra = &n->io->readahead;
	pthread_mutex_lock(&ra->lock);
	if (ra->piece[piece].seq == seq && ra->piece[piece].state != FS_PIECE_FREE &&
	    !ra->piece[piece].kept) {
		ra->piece[piece].state = FS_PIECE_FREE;
		pthread_cond_broadcast(&ra->piece_done);
	}
	pthread_mutex_unlock(&ra->lock);
}
