/* fs_fill: background fills. Four kinds of job, run by a few fill threads after the answer:
 *   completion: every absent chunk of a file up to --complete-max (or pinned), queued after
 *               its first miss (or the last close after a first read that passed through to
 *               the origin), so that the next open is a hit served by passthrough;
 *   resident:   after a first read of a larger file passed through to the origin, the chunks
 *               that read left in the origin's page cache (cachestat(2)): copied from memory
 *               (a page evicted between the check and the read is read from the device);
 *   chunk:      the chunks of a random miss on a larger file, which was answered with just the
 *               bytes asked for (a 4K read must not wait for a 256 KiB chunk);
 *   piece:      a read-ahead piece ahead of a sequential reader (fs_readahead.c), claimed
 *               before its origin read and offered to the readers waiting for it after its fill.
 * Every kind reads only the origin's data ranges (SEEK_DATA/SEEK_HOLE): holes stay holes in
 * the cache copy ("sparse files" below).
 * Safety: each fill samples the object's generation before reading the origin, so a write
 * through the mount in between drops it. Writes that bypass us (FS_IO_ORIGIN passthrough) are
 * not seen: a job stops when the inode is in that mode (or in FS_IO_CACHE, whose copy must not
 * be filled under passthrough readers), and the last release of an inode that had such
 * writers drops the object's chunks (fs_file_detach), covering a fill that raced with them.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sys/sys.h"
#include "util/log.h"


bool fs_fill_stopping(struct fs *fs)
{
	bool stop;
	pthread_mutex_lock(&fs->filler.lock);
	stop = fs->filler.stop;
	pthread_mutex_unlock(&fs->filler.lock);
	return stop;
}

static bool job_enqueue(struct fs *fs, struct fs_node *n, enum fs_fill_kind kind, uint64_t off,
                        uint64_t len, int piece, uint32_t piece_seq)
{
	struct fs_filler *q = &fs->filler;
	struct fs_fill_job *j;

	pthread_mutex_lock(&q->lock);
	/* Every queued job holds its object open (an fd): bounded, read-ahead pieces aside (a few
	 * per reader). A completion not queued is queued again by the file's next miss. */
	if (!q->started || q->stop || (kind != FS_FILL_PIECE && q->queued >= q->queue_max)) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	pthread_mutex_unlock(&q->lock);
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	j->node = n;
	j->obj = fs_object_pin(fs, n);
	j->off = off;
	j->len = len;
	j->kind = kind;
	j->piece = piece;
	j->piece_seq = piece_seq;
	pthread_mutex_lock(&q->lock);
	if (q->stop) {
		pthread_mutex_unlock(&q->lock);
		fs_object_unpin(fs, n);
		free(j);
		return false;
	}
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->queued++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return true;
}

bool fs_fill_enqueue(struct fs *fs, struct fs_node *n, uint64_t off, uint64_t len, bool completion)
{
	return job_enqueue(fs, n, completion ? FS_FILL_COMPLETION : FS_FILL_CHUNKS, off, len, -1, 0);
}

bool fs_fill_enqueue_resident(struct fs *fs, struct fs_node *n)
{
	return job_enqueue(fs, n, FS_FILL_RESIDENT, 0, UINT64_MAX, -1, 0);
}

bool fs_fill_enqueue_piece(struct fs *fs, struct fs_node *n, uint64_t off, uint64_t len, int piece,
                           uint32_t seq)
{
	return job_enqueue(fs, n, FS_FILL_PIECE, off, len, piece, seq);
}

/* ---- sparse files: fills skip the origin's holes ----------------------------------------
 * A hole reads as zeros, but a copy that stores those zeros is allocated where the original is
 * not, and SEEK_DATA/SEEK_HOLE on it (served from the copy once it is complete) would differ
 * from the original's. So a fill reads only the data ranges and tells the store where they
 * are (cache_object_fill_sparse): the copy keeps the holes. */

void fs_fill_data_ranges(int fd, uint64_t off, uint64_t len, struct fs_fill_ranges *r)
{
	uint64_t pos = off, end = off + len;

	r->count = 0;
	while (pos < end) {
		off_t data = sys_lseek(fd, (off_t)pos, SEEK_DATA), hole;
		if (data == -ENXIO || (data >= 0 && (uint64_t)data >= end))
			break;   /* holes to the end of the range (or of the file) */
		hole = data < 0 ? data : sys_lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			goto all_data;   /* cannot tell: read it all, as before */
		if (r->count == FS_FILL_RANGES_MAX) {   /* too fragmented: the rest counts as data */
			r->ext[r->count - 1].len = end - r->ext[r->count - 1].off;
			return;
		}
		r->ext[r->count].off = (uint64_t)data;
		r->ext[r->count].len = ((uint64_t)hole < end ? (uint64_t)hole : end) - (uint64_t)data;
		r->count++;
		pos = (uint64_t)hole;
	}
	return;

all_data:
	r->ext[0] = (struct cache_extent){ off, len };
	r->count = 1;
}

void fs_fill_ranges_clip(struct fs_fill_ranges *r, uint64_t end)
{
	size_t n = 0;
	for (size_t i = 0; i < r->count; i++) {
		if (r->ext[i].off >= end)
			break;
		if (r->ext[i].len > end - r->ext[i].off)
			r->ext[i].len = end - r->ext[i].off;
		n++;
	}
	r->count = n;
}

/* Reads [off, off + len) of fd into buf: its data ranges r (in whole FS_DIRECT_ALIGN blocks,
 * for O_DIRECT; off is a chunk boundary), zeros in the holes between them. Returns the bytes
 * the range holds (fewer at the origin's end of file; r is clipped to them), or -errno. */
static ssize_t read_data_ranges(int fd, char *buf, uint64_t off, uint64_t len,
                                struct fs_fill_ranges *r)
{
	uint64_t pos = off, end;
	struct stat st;
	int rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);

	if (rc < 0)
		return rc;
	end = off + len < (uint64_t)st.st_size ? off + len : (uint64_t)st.st_size;
	for (size_t i = 0; i < r->count && pos < end; i++) {
		uint64_t a = r->ext[i].off / FS_DIRECT_ALIGN * FS_DIRECT_ALIGN;
		uint64_t b = r->ext[i].off + r->ext[i].len;
		ssize_t n;
		if (a < pos)
			a = pos;
		if (a >= end)
			break;
		memset(buf + (pos - off), 0, a - pos);
		b = (b + FS_DIRECT_ALIGN - 1) / FS_DIRECT_ALIGN * FS_DIRECT_ALIGN;
		n = sys_pread(fd, buf + (a - off), b - a, (off_t)a);
		if (n < 0)
			return n;
		if (a + (uint64_t)n < end && a + (uint64_t)n < b)
			end = a + (uint64_t)n;   /* the file ends sooner than it did */
		pos = a + (uint64_t)n < b ? a + (uint64_t)n : b;
	}
	if (pos < end)
		memset(buf + (pos - off), 0, end - pos);
	fs_fill_ranges_clip(r, end);
	return end > off ? (ssize_t)(end - off) : 0;
}

/* The leading whole chunks of [off, off + len) (len: whole chunks, or up to the end of the
 * file) whose pages are all in the origin's page cache: their length, 0 if the first is not.
 * Pages of holes count as cached: there is nothing to read there. */
static uint64_t resident_span(int fd, uint64_t off, uint64_t len, uint32_t chunk)
{
	uint64_t done = 0, page = 4096;
	while (done < len) {
		uint64_t part = len - done < chunk ? len - done : chunk, cached = 0, data_pages = 0;
		struct fs_fill_ranges r;
		if (sys_cachestat(fd, off + done, part, &cached) < 0)
			break;
		if (cached < (part + page - 1) / page) {
			fs_fill_data_ranges(fd, off + done, part, &r);
			for (size_t i = 0; i < r.count; i++)
				data_pages += (r.ext[i].off % page + r.ext[i].len + page - 1) / page;
			if (cached < data_pages)
				break;
		}
		done += part;
	}
	return done;
}

/* May the job go on filling? Not in FS_IO_ORIGIN / FS_IO_CACHE mode, nor when stopping. */
static bool job_may_fill(struct fs *fs, struct fs_node *n)
{
	enum fs_io_mode mode;
	pthread_mutex_lock(&n->io->lock);
	mode = n->io->mode;
	pthread_mutex_unlock(&n->io->lock);
	return !fs_fill_stopping(fs) && mode != FS_IO_ORIGIN && mode != FS_IO_CACHE && !atomic_load(&fs->bypass.on);
}

/* *bufp: the thread's FS_FILL_BUFFER_CHUNKS chunks, page-aligned for O_DIRECT (a read-ahead
 * piece may keep it and give another). */
static void job_run(struct fs *fs, struct fs_fill_job *j, char **bufp)
{
	char *buf = *bufp;
	struct stats *stats = fs->cfg.stats;
	uint32_t chunk = cache_store_chunk_size(fs->store);
	size_t bufsize = (size_t)chunk * FS_FILL_BUFFER_CHUNKS;
	struct cache_object_info info;
	uint64_t off, end;
	int fd;

	if (j->kind == FS_FILL_PIECE && !fs_readahead_piece_claim(j->node, j->piece, j->piece_seq))
		return;    /* a reader took it back */
	fd = fs_origin_read_open(fs, j->node, j->kind == FS_FILL_RESIDENT ? FS_ORIGIN_RESIDENT
	                                                              : FS_ORIGIN_BACKGROUND);
	if (fd < 0)
		return;
	if (j->kind == FS_FILL_RESIDENT) {   /* nothing in the page cache: nothing to walk */
		uint64_t cached = 0;
		if (sys_cachestat(fd, 0, 0, &cached) < 0 || cached == 0) {
			sys_close(fd);
			return;
		}
	}
	if (fs->cfg.fill_delay_ms)
		usleep(fs->cfg.fill_delay_ms * 1000u);
	off = j->off / chunk * chunk;
	/* Whole chunks (a partial one is not stored); the loop cuts the end at the file's size. */
	end = j->len >= UINT64_MAX - j->off - chunk ? UINT64_MAX
	                                             : (j->off + j->len + chunk - 1) / chunk * chunk;
	while (off < end && job_may_fill(fs, j->node)) {
		struct fs_fill_ranges ranges;
		uint64_t len, gen;
		ssize_t n, filled;

		/* The generation and the size of one moment: a piece that stops at the end of the
		 * file may say so only for the size that goes with its generation (a write that
		 * extended the file after the job began moved both). */
		cache_object_info(j->obj, &info);
		gen = info.generation;
		if (end > info.fingerprint.size)
			end = info.fingerprint.size;
		if (off >= end)
			break;
		len = end - off < bufsize ? end - off : bufsize;
		if (j->kind == FS_FILL_RESIDENT)
			len = resident_span(fd, off, len, chunk);
		if (len == 0) {   /* its first chunk is not in the page cache */
			off += chunk;
			continue;
		}
		if (cache_object_range_present(j->obj, off, len)) {
			off += len;
			continue;
		}
		/* Only the data: the holes stay holes in the copy (whole blocks for O_DIRECT; the
		 * file's end cuts the read short). */
		fs_fill_data_ranges(fd, off, len, &ranges);
		n = read_data_ranges(fd, buf, off, len, &ranges);
		if (n <= 0)
			break;
		filled = cache_object_fill_sparse(j->obj, gen, buf, (size_t)n, (off_t)off, ranges.ext,
		                                  ranges.count);
		fs_fill_count(fs, "background fill", filled, (size_t)n);
		if (j->kind == FS_FILL_PIECE && filled > 0) {
			uint64_t stored = (uint64_t)filled * chunk;
			stats_add(stats, STATS_READAHEAD_BYTES, stored < (uint64_t)n ? stored : (uint64_t)n);
		} else if (j->kind == FS_FILL_PIECE && filled == -EDQUOT) {
			fs_readahead_pause(fs);
		}
		/* The generation held from before the origin read to the fill: the bytes are current
		 * (and in the cache): the readers waiting for them reply from buf, if it holds the
		 * whole piece (up to the end of the file). */
		if (j->kind == FS_FILL_PIECE && filled >= 0 && off == j->off &&
		    (off + (uint64_t)n >= j->off + j->len || off + (uint64_t)n == info.fingerprint.size)) {
			if (fs->cfg.offer_delay_ms)
				usleep(fs->cfg.offer_delay_ms * 1000u);
			*bufp = buf = fs_readahead_piece_offer(fs, j->node, j->piece, j->piece_seq, buf,
			                                       (size_t)n, gen);
		}
		if (filled == -ESTALE) {
			cache_object_info(j->obj, &info);
			if (info.removed || info.failed)
				break;
			continue;  /* a write raced with us: read that range again */
		}
		if (filled < 0)
			break;     /* at capacity, or the device failed */
		off += (uint64_t)n;
	}
	if ((j->kind == FS_FILL_COMPLETION || j->kind == FS_FILL_RESIDENT) &&
	    cache_object_complete(j->obj)) {
		/* Persist the record now, so that the next start keeps the copy. */
		int rc = cache_object_sync(j->obj);
		if (rc < 0)
			fs_cache_error(fs, "record write", rc);
		else
			stats_add(stats, STATS_COMPLETIONS, 1);
	}
	sys_close(fd);
}

static void job_finish(struct fs *fs, struct fs_fill_job *j)
{
	if (j->kind == FS_FILL_PIECE)
		fs_readahead_piece_done(j->node, j->piece, j->piece_seq);
	if (j->kind == FS_FILL_COMPLETION) {
		pthread_mutex_lock(&j->node->io->lock);
		j->node->io->completing = false;
		pthread_mutex_unlock(&j->node->io->lock);
	}
	fs_object_unpin(fs, j->node);
	free(j);
}

/* The oldest job this thread may run (q->lock held): a read-ahead piece always (a reader is
 * about to wait for it), a completion or chunk job only while fewer than
 * FS_FILL_BACKGROUND_MAX run, so that random misses, which wait for their own origin read,
 * queue behind at most that many big background reads on the origin device. */
static struct fs_fill_job *job_take(struct fs_filler *q)
{
	struct fs_fill_job *j, *prev = NULL;
	for (j = q->head; j; prev = j, j = j->next) {
		if (j->kind != FS_FILL_PIECE && q->background_running >= FS_FILL_BACKGROUND_MAX)
			continue;
		if (prev)
			prev->next = j->next;
		else
			q->head = j->next;
		if (q->tail == j)
			q->tail = prev;
		q->queued--;
		return j;
	}
	return NULL;
}

static void *fill_thread(void *arg)
{
	struct fs *fs = arg;
	struct fs_filler *q = &fs->filler;
	size_t bufsize = (size_t)cache_store_chunk_size(fs->store) * FS_FILL_BUFFER_CHUNKS;
	char *buf = NULL;

	/* One buffer for the thread's life: a fresh one per job costs an mmap and a page fault
	 * per page. Without it, jobs are taken and dropped (their nodes must be unpinned). */
	if (posix_memalign((void **)&buf, FS_DIRECT_ALIGN, bufsize) != 0)
		buf = NULL;
	for (;;) {
		struct fs_fill_job *j;
		bool background;
		pthread_mutex_lock(&q->lock);
		while (!(j = job_take(q)) && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop) {
			pthread_mutex_unlock(&q->lock);
			free(buf);
			return NULL;
		}
		background = j->kind != FS_FILL_PIECE;
		q->background_running += background;
		pthread_mutex_unlock(&q->lock);
		if (j->obj && buf)
			job_run(fs, j, &buf);
		job_finish(fs, j);
		if (background) {
			pthread_mutex_lock(&q->lock);
			q->background_running--;
			pthread_cond_broadcast(&q->cond);   /* a queued background job may go now */
			pthread_mutex_unlock(&q->lock);
		}
	}
}

static void *pin_walk_thread(void *arg)
{
	fs_pin_walk(arg);
	return NULL;
}

int fs_start_background(struct fs *fs)
{
	struct fs_filler *q = &fs->filler;
	unsigned want = fs->cfg.fill_threads ? fs->cfg.fill_threads : 1;

	if (!fs->store)
		return 0;
	if (want > FS_FILL_THREADS_MAX)
		want = FS_FILL_THREADS_MAX;
	pthread_mutex_lock(&q->lock);
	q->started = true;
	for (; q->thread_count < want; q->thread_count++) {
		int rc = pthread_create(&q->threads[q->thread_count], NULL, fill_thread, fs);
		if (rc) {
			pthread_mutex_unlock(&q->lock);
			return -rc;
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (fs->cfg.pin_count && !q->pin_walk_started)
		q->pin_walk_started = pthread_create(&q->pin_walk, NULL, pin_walk_thread, fs) == 0;
	return 0;
}

void fs_fill_stop(struct fs *fs)
{
	struct fs_filler *q = &fs->filler;
	struct fs_fill_job *rest;

	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->thread_count; i++)
		pthread_join(q->threads[i], NULL);
	q->thread_count = 0;
	if (q->pin_walk_started)
		pthread_join(q->pin_walk, NULL);
	q->pin_walk_started = false;
	pthread_mutex_lock(&q->lock);
	rest = q->head;
	q->head = q->tail = NULL;
	q->queued = 0;
	pthread_mutex_unlock(&q->lock);
	while (rest) {
		struct fs_fill_job *next = rest->next;
		job_finish(fs, rest);
		rest = next;
	}
}
