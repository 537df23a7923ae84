/* engine_fill: background fills. Four kinds of job, run by a few fill threads after the answer,
 * one function each to queue them:
 *   completion (engine_fill_completion): every absent chunk of a file up to --complete-max (or
 *               pinned by --pin), queued after its first miss (or the last close after a first
 *               read that passed through to the origin), so that the next open is a hit;
 *   resident   (engine_fill_resident): after a first read of a larger file passed through to
 *               the origin, the chunks that read left in the origin's page cache (cachestat(2));
 *   chunks     (engine_fill_chunks): the chunks of a random miss on a larger file, which was
 *               answered with just the bytes asked for;
 *   piece      (engine_fill_piece): a read-ahead piece ahead of a sequential reader
 *               (engine_readahead.c), claimed before its origin read and offered to the readers
 *               waiting for it after its fill.
 * Every kind reads only the origin's data ranges (SEEK_DATA/SEEK_HOLE): holes stay holes in
 * the cache copy ("sparse files" below).
 * Safety: each fill samples the object's generation before reading the origin, so a write
 * through the mount in between drops it. Where changes are not watched, a fill whose object's
 * fingerprint (sampled with the generation) has times younger than ENGINE_SETTLE_NS stores
 * nothing: the job stops (engine_settle.c). Writes that never reach us (ENGINE_IO_ORIGIN passthrough)
 * are not seen: a job stops when the inode is in that mode (or in ENGINE_IO_CACHE, whose copy
 * must not be filled under passthrough readers), and the last release of an inode that had
 * such writers drops the object's chunks (engine_open_detach), covering a fill that raced.
 * Every queued job holds its object open (an fd), so the queue is bounded (queue_max, from
 * the fd limit); a completion it refuses waits in the backlog, keeping only its node (no fd),
 * and is queued as the queue empties ("the backlog" below).
 */
#include "engine/engine_int.h"

#include <fcntl.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"


bool engine_fill_stopping(struct engine *e)
{
	bool stop;
	pthread_mutex_lock(&e->filler.lock);
	stop = e->filler.stop;
	pthread_mutex_unlock(&e->filler.lock);
	return stop;
}

/* 0: queued; -EAGAIN: the queue is full; -ECANCELED: stopping (or not started); -ENOMEM. */
static int fill_job_enqueue(struct engine *e, struct engine_inode *ei, enum engine_fill_kind kind, uint64_t off,
                        uint64_t len, int piece, uint32_t piece_seq)
{
	struct engine_filler *q = &e->filler;
	struct engine_fill_job *j;

	pthread_mutex_lock(&q->lock);
	/* Every queued job holds its object open (an fd): bounded, read-ahead pieces aside (a few
	 * per reader). A completion not queued waits in the backlog (fill_completion_queue). */
	if (!q->started || q->stop || (kind != ENGINE_FILL_PIECE && q->queued >= q->queue_max)) {
		int rc = !q->started || q->stop ? -ECANCELED : -EAGAIN;
		pthread_mutex_unlock(&q->lock);
		return rc;
	}
	pthread_mutex_unlock(&q->lock);
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->inode = ei;
	j->obj = engine_object_hold(e, ei);
	j->off = off;
	j->len = len;
	j->kind = kind;
	j->piece = piece;
	j->piece_seq = piece_seq;
	pthread_mutex_lock(&q->lock);
	if (q->stop) {
		pthread_mutex_unlock(&q->lock);
		engine_object_drop(e, ei);
		free(j);
		return -ECANCELED;
	}
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->queued++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* ---- the backlog ----------------------------------------------------------------------------
 * A pass over many small files queues a completion per file faster than a slow original lets
 * them run; past queue_max (an eighth of the fd limit, at most 4,096) they used to be dropped,
 * to be queued again by the file's next miss, which a single pass never makes (over sshfs, a
 * pass over 100,000 files left 7,111 uncached). A completion the full queue refuses waits here
 * instead, in order, keeping its node with a lookup reference (host node_keep): no fd, and no
 * engine inode (1,392 bytes): 24 bytes of its own, plus the node if the kernel forgets it
 * meanwhile. At most backlog_max wait (from the memory the daemon may use); one more is
 * counted in STATS_COMPLETIONS_SKIPPED and left to the file's next miss. When no job is queued
 * a fill thread takes the oldest and queues its completion as warm does, with the origin's
 * attributes of that moment (fill_backlog_run): the object is opened (or reset) for them, and
 * the job samples its generation and fingerprint before each origin read as any job does; a
 * file deleted or replaced meanwhile (its node's inode unlinked or gone) is let go. Stop lets
 * every entry go without a look at the origin (one list walk). An evict lets go of them all
 * (engine_fill_backlog_forget): they would fill again what was just evicted. */

/* What fill_completion_queue does when the queue is full. */
enum fill_when_full {
	FILL_FULL_GIVE_UP,     /* nothing (warm: the CLI asks again) */
	FILL_FULL_WAIT,        /* into the backlog (counted in STATS_COMPLETIONS_DEFERRED) */
	FILL_FULL_WAIT_AGAIN,  /* back into it: an entry whose turn came as the queue filled */
};
#define FILL_WAITS 1       /* fill_completion_queue: in the backlog */

/* Keep node (the caller holds it) in the backlog: 0, -ENOSPC (full), -ECANCELED, -ENOMEM. */
static int fill_backlog_add(struct engine *e, void *node)
{
	struct engine_filler *q = &e->filler;
	struct engine_fill_wait *w;

	pthread_mutex_lock(&q->lock);
	if (q->stop || q->backlog_count >= q->backlog_max) {
		int rc = q->stop ? -ECANCELED : -ENOSPC;
		pthread_mutex_unlock(&q->lock);
		return rc;
	}
	q->backlog_count++;   /* its place, taken before the host call below */
	pthread_mutex_unlock(&q->lock);
	w = calloc(1, sizeof(*w));
	if (w) {
		w->node = node;
		e->host.node_keep(e->host.arg, node);
	}
	pthread_mutex_lock(&q->lock);
	if (!w || q->stop) {
		q->backlog_count--;
		pthread_mutex_unlock(&q->lock);
		if (!w)
			return -ENOMEM;
		e->host.node_let_go(e->host.arg, node);
		free(w);
		return -ECANCELED;
	}
	w->epoch = q->backlog_epoch;
	if (q->backlog_tail)
		q->backlog_tail->next = w;
	else
		q->backlog_head = w;
	q->backlog_tail = w;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* The oldest entry, once no job is queued (q->lock held); NULL if none or not yet. */
static struct engine_fill_wait *fill_backlog_take(struct engine_filler *q)
{
	struct engine_fill_wait *w = q->backlog_head;
	if (!w || q->queued > 0)
		return NULL;
	q->backlog_head = w->next;
	if (!q->backlog_head)
		q->backlog_tail = NULL;
	q->backlog_count--;
	w->next = NULL;
	return w;
}

/* Let go of the entries of list (no lock held). */
static void fill_backlog_let_go(struct engine *e, struct engine_fill_wait *list)
{
	while (list) {
		struct engine_fill_wait *next = list->next;
		e->host.node_let_go(e->host.arg, list->node);
		free(list);
		list = next;
	}
}

/* Detach every entry (q->lock held); the caller lets them go. */
static struct engine_fill_wait *fill_backlog_detach(struct engine_filler *q)
{
	struct engine_fill_wait *list = q->backlog_head, *w;
	for (w = list; w; w = w->next)
		q->backlog_count--;
	q->backlog_head = q->backlog_tail = NULL;
	return list;
}

void engine_fill_backlog_forget(struct engine *e)
{
	struct engine_filler *q = &e->filler;
	struct engine_fill_wait *list;

	pthread_mutex_lock(&q->lock);
	q->backlog_epoch++;   /* an entry a fill thread took already is let go too */
	list = fill_backlog_detach(q);
	pthread_mutex_unlock(&q->lock);
	fill_backlog_let_go(e, list);
}

/* Queue ei's completion: 0, FILL_WAITS (in the backlog: the queue was full), or -errno (not
 * queued: -EAGAIN the queue was full, -ENOSPC so was the backlog, -ECANCELED, -ENOMEM). */
static int fill_completion_queue(struct engine *e, struct engine_inode *ei, enum fill_when_full when_full)
{
	int rc = fill_job_enqueue(e, ei, ENGINE_FILL_COMPLETION, 0, UINT64_MAX, -1, 0);

	if (rc != -EAGAIN || when_full == FILL_FULL_GIVE_UP)
		return rc;
	rc = e->filler.backlog_max ? fill_backlog_add(e, ei->node) : -ENOSPC;
	if (rc == 0 && when_full == FILL_FULL_WAIT)
		stats_add(e->cfg.stats, STATS_COMPLETIONS_DEFERRED, 1);
	else if (rc == -ENOSPC || rc == -ENOMEM)
		stats_add(e->cfg.stats, STATS_COMPLETIONS_SKIPPED, 1);
	return rc == 0 ? FILL_WAITS : rc;
}

bool engine_fill_chunks(struct engine *e, struct engine_inode *ei, uint64_t off, uint64_t len)
{
	return fill_job_enqueue(e, ei, ENGINE_FILL_CHUNKS, off, len, -1, 0) == 0;
}

bool engine_fill_completion(struct engine *e, struct engine_inode *ei)
{
	return fill_completion_queue(e, ei, FILL_FULL_WAIT) >= 0;
}

bool engine_fill_resident(struct engine *e, struct engine_inode *ei)
{
	return fill_job_enqueue(e, ei, ENGINE_FILL_RESIDENT, 0, UINT64_MAX, -1, 0) == 0;
}

bool engine_fill_piece(struct engine *e, struct engine_inode *ei, uint64_t off, uint64_t len,
                       int piece, uint32_t seq)
{
	return fill_job_enqueue(e, ei, ENGINE_FILL_PIECE, off, len, piece, seq) == 0;
}

bool engine_fill_maybe_complete(struct engine *e, struct engine_inode *ei,
                                const struct cache_object_info *info)
{
	bool queue;
	int rc;
	if (!ei->pinned && (!e->cfg.complete_max || info->fingerprint.size > e->cfg.complete_max))
		return false;
	if (info->present_chunks >= info->chunk_count)
		return false;
	pthread_mutex_lock(&ei->lock);
	queue = !ei->completing;
	ei->completing = true;
	pthread_mutex_unlock(&ei->lock);
	if (!queue)
		return true;
	rc = fill_completion_queue(e, ei, FILL_FULL_WAIT);
	if (rc != 0) {   /* no job queued to clear the flag (the backlog keeps no engine inode) */
		pthread_mutex_lock(&ei->lock);
		ei->completing = false;
		pthread_mutex_unlock(&ei->lock);
	}
	return rc >= 0;
}

static int fill_warm(struct engine *e, struct engine_inode *ei, const struct stat *st,
                     struct engine_warm *out, enum fill_when_full when_full);

int engine_fill_warm(struct engine *e, struct engine_inode *ei, const struct stat *st,
                     struct engine_warm *out)
{
	return fill_warm(e, ei, st, out, FILL_FULL_GIVE_UP);
}

/* A backlog entry's turn (a fill thread, no lock held): its completion queued as warm queues
 * it, with the origin's attributes of now. */
static void fill_backlog_run(struct engine *e, struct engine_fill_wait *w)
{
	struct engine_filler *q = &e->filler;
	struct engine_inode *ei;
	struct engine_warm rep;
	struct stat st;
	bool current;
	int fd, rc;

	pthread_mutex_lock(&q->lock);
	current = w->epoch == q->backlog_epoch && !q->stop;
	pthread_mutex_unlock(&q->lock);
	fd = current ? e->host.origin_fd(e->host.arg, w->node) : -ECANCELED;
	if (fd >= 0) {
		rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
		e->host.origin_fd_put(e->host.arg, w->node, fd);
		/* Deleted (its inode outlives its names while something holds it) or no longer a
		 * regular file: nothing to fill. A file changed meanwhile is filled as it is now. */
		if (rc == 0 && S_ISREG(st.st_mode) && st.st_nlink > 0 &&
		    (ei = e->host.node_inode_hold(e->host.arg, w->node))) {
			(void)fill_warm(e, ei, &st, &rep, FILL_FULL_WAIT_AGAIN);
			e->host.node_drop(e->host.arg, w->node);
		}
	}
	e->host.node_let_go(e->host.arg, w->node);
	free(w);
}

static int fill_warm(struct engine *e, struct engine_inode *ei, const struct stat *st,
                     struct engine_warm *out, enum fill_when_full when_full)
{
	struct cache_store *store = engine_bypass_store(e);
	struct engine_warm rep = { 0 };
	struct cache_fingerprint fp;
	struct cache_key key;
	int key_rc;
	struct cache_object_info info;
	struct cache_object *obj;
	enum engine_io_mode mode;
	bool completing;
	uint32_t chunk;
	int rc = 0;

	engine_bypass_notify(e);
	if (!store)
		return -EAGAIN;
	chunk = cache_store_chunk_size(store);
	engine_fingerprint(e, st, &fp);
	key_rc = engine_node_key(e, ei->node, st, &key);   /* asks the host: before ei->lock */
	pthread_mutex_lock(&ei->lock);
	if (engine_settle_fresh(e, ei, &fp)) {
		/* Changed within ENGINE_SETTLE_NS where changes are not watched: nothing may be
		 * stored yet (engine_settle.c); the CLI asks again until the times settle. */
		rep.state = ENGINE_WARM_WAITING;
		rep.size = (uint64_t)st->st_size;
		if (ei->obj) {
			cache_object_info(ei->obj, &info);
			rep.cached = info.present_chunks * chunk < rep.size ? info.present_chunks * chunk
			                                                    : rep.size;
		}
		pthread_mutex_unlock(&ei->lock);
		*out = rep;
		return 0;
	}
	if (!ei->obj)
		rc = key_rc < 0 ? key_rc : cache_object_open(store, key, &fp, &ei->obj);
	else if (ei->open_count == 0)  /* kept by a job: the file may have changed since */
		rc = cache_object_revalidate(ei->obj, &fp);
	if (rc < 0 && !ei->obj_holds && ei->obj) {
		cache_object_release(ei->obj);
		ei->obj = NULL;
	}
	if (!ei->obj) {
		pthread_mutex_unlock(&ei->lock);
		return rc < 0 ? rc : -EIO;
	}
	if (rc > 0)
		rc = 0;  /* CACHE_OBJECT_RESET: it starts again from nothing */
	ei->obj_holds++;  /* with the node hold below: what engine_object_drop() undoes */
	obj = ei->obj;    /* stays while held (the first open revalidates it, never replaces it) */
	mode = ei->mode;
	completing = ei->completing;
	pthread_mutex_unlock(&ei->lock);
	e->host.node_hold(e->host.arg, ei->node);

	cache_object_info(obj, &info);
	rep.size = info.fingerprint.size;
	rep.cached = info.present_chunks * chunk < rep.size ? info.present_chunks * chunk : rep.size;
	if (info.failed || info.removed) {
		rc = -EIO;
	} else if (cache_object_complete(obj)) {
		rep.state = ENGINE_WARM_COMPLETE;
	} else if (completing) {
		rep.state = ENGINE_WARM_FILLING;
	} else if (mode == ENGINE_IO_ORIGIN || mode == ENGINE_IO_CACHE) {
		rep.state = ENGINE_WARM_WAITING;  /* a fill must not race passthrough writers */
	} else {
		bool queue;
		pthread_mutex_lock(&ei->lock);
		queue = !ei->completing;
		ei->completing = true;
		pthread_mutex_unlock(&ei->lock);
		int queued = queue ? fill_completion_queue(e, ei, when_full) : 0;
		rep.state = ENGINE_WARM_FILLING;
		if (queued != 0) {   /* no job queued (the backlog keeps no engine inode) */
			pthread_mutex_lock(&ei->lock);
			ei->completing = false;
			pthread_mutex_unlock(&ei->lock);
		}
		if (queued < 0)
			rep.state = ENGINE_WARM_WAITING;  /* the queue is full */
	}
	engine_object_drop(e, ei);
	engine_bypass_notify(e);
	if (rc == 0)
		*out = rep;
	return rc;
}

void engine_fill_count(struct engine *e, const char *what, ssize_t filled, size_t read)
{
	struct stats *stats = e->cfg.stats;
	if (filled == -ESTALE) {
		stats_add(stats, STATS_FILLS_DROPPED, 1);
	} else if (filled == -EDQUOT) {
		stats_add(stats, STATS_FILLS_REFUSED_FULL, 1);
	} else if (filled < 0) {
		engine_bypass_error(e, what, (int)filled);
	} else if (filled > 0) {
		uint64_t stored = (uint64_t)filled * cache_store_chunk_size(e->store);
		stats_add(stats, STATS_FILLS, (uint64_t)filled);
		stats_add(stats, STATS_FILL_BYTES, stored < read ? stored : read);
	}
}

int engine_fill_origin_open(struct engine *e, struct engine_inode *ei, enum engine_origin_read how)
{
	char path[ENGINE_PROC_PATH_MAX];
	int noatime = how == ENGINE_ORIGIN_DIRECT ? 0 : O_NOATIME, fd = -EINVAL;
	int nfd = engine_host_origin_fd(e, ei);

	if (nfd < 0)
		return nfd;
	engine_host_proc_path(nfd, path);
	if (how != ENGINE_ORIGIN_RESIDENT)
		fd = engine_host_open(e, AT_FDCWD, path, O_RDONLY | O_DIRECT | noatime | O_CLOEXEC, 0);
	if (fd < 0 && how != ENGINE_ORIGIN_DIRECT)
		fd = engine_host_open(e, AT_FDCWD, path, O_RDONLY | noatime | O_CLOEXEC, 0);
	engine_host_origin_fd_put(e, ei, nfd);
	/* Advice only, outside the syscall seam: nothing to fail. */
	if (fd >= 0 && how == ENGINE_ORIGIN_RESIDENT)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	return fd;
}

/* ---- sparse files: fills skip the origin's holes ----------------------------------------
 * A hole reads as zeros, but a copy that stores those zeros is allocated where the original is
 * not, and SEEK_DATA/SEEK_HOLE on it (served from the copy once it is complete) would differ
 * from the original's. So a fill reads only the data ranges and tells the store where they
 * are (cache_object_fill_sparse): the copy keeps the holes. */

void engine_fill_data_ranges(int fd, uint64_t off, uint64_t len, struct engine_fill_ranges *r)
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
		if (r->count == ENGINE_FILL_RANGES_MAX) {   /* too fragmented: the rest counts as data */
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

void engine_fill_ranges_clip(struct engine_fill_ranges *r, uint64_t end)
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

/* Reads [off, off + len) of fd into buf: its data ranges r (in whole ENGINE_DIRECT_ALIGN blocks,
 * for O_DIRECT; off is a chunk boundary), zeros in the holes between them. Returns the bytes
 * the range holds (fewer at the origin's end of file; r is clipped to them), or -errno. */
static ssize_t fill_read_data_ranges(int fd, char *buf, uint64_t off, uint64_t len,
                                struct engine_fill_ranges *r)
{
	uint64_t pos = off, end;
	struct stat st;
	int rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);

	if (rc < 0)
		return rc;
	end = off + len < (uint64_t)st.st_size ? off + len : (uint64_t)st.st_size;
	for (size_t i = 0; i < r->count && pos < end; i++) {
		uint64_t a = r->ext[i].off / ENGINE_DIRECT_ALIGN * ENGINE_DIRECT_ALIGN;
		uint64_t b = r->ext[i].off + r->ext[i].len;
		ssize_t n;
		if (a < pos)
			a = pos;
		if (a >= end)
			break;
		memset(buf + (pos - off), 0, a - pos);
		b = (b + ENGINE_DIRECT_ALIGN - 1) / ENGINE_DIRECT_ALIGN * ENGINE_DIRECT_ALIGN;
		n = sys_pread(fd, buf + (a - off), b - a, (off_t)a);
		if (n < 0)
			return n;
		if (a + (uint64_t)n < end && a + (uint64_t)n < b)
			end = a + (uint64_t)n;   /* the file ends sooner than it did */
		pos = a + (uint64_t)n < b ? a + (uint64_t)n : b;
	}
	if (pos < end)
		memset(buf + (pos - off), 0, end - pos);
	engine_fill_ranges_clip(r, end);
	return end > off ? (ssize_t)(end - off) : 0;
}

/* The leading whole chunks of [off, off + len) (len: whole chunks, or up to the end of the
 * file) whose pages are all in the origin's page cache: their length, 0 if the first is not.
 * Pages of holes count as cached: there is nothing to read there. */
static uint64_t fill_resident_span(int fd, uint64_t off, uint64_t len, uint32_t chunk)
{
	uint64_t done = 0, page = 4096;
	while (done < len) {
		uint64_t part = len - done < chunk ? len - done : chunk, cached = 0, data_pages = 0;
		struct engine_fill_ranges r;
		if (sys_cachestat(fd, off + done, part, &cached) < 0)
			break;
		if (cached < (part + page - 1) / page) {
			engine_fill_data_ranges(fd, off + done, part, &r);
			for (size_t i = 0; i < r.count; i++)
				data_pages += (r.ext[i].off % page + r.ext[i].len + page - 1) / page;
			if (cached < data_pages)
				break;
		}
		done += part;
	}
	return done;
}

/* May the job go on filling? Not in ENGINE_IO_ORIGIN / ENGINE_IO_CACHE mode, nor when stopping. */
static bool fill_job_may_fill(struct engine *e, struct engine_inode *ei)
{
	enum engine_io_mode mode;
	pthread_mutex_lock(&ei->lock);
	mode = ei->mode;
	pthread_mutex_unlock(&ei->lock);
	return !engine_fill_stopping(e) && mode != ENGINE_IO_ORIGIN && mode != ENGINE_IO_CACHE && !engine_bypass_breaker_tripped(e);
}

/* *bufp: the thread's ENGINE_FILL_BUFFER_CHUNKS chunks, page-aligned for O_DIRECT (a read-ahead
 * piece may keep it and give another). */
static void fill_job_run(struct engine *e, struct engine_fill_job *j, char **bufp)
{
	char *buf = *bufp;
	struct stats *stats = e->cfg.stats;
	uint32_t chunk = cache_store_chunk_size(e->store);
	size_t bufsize = (size_t)chunk * ENGINE_FILL_BUFFER_CHUNKS;
	struct cache_object_info info;
	uint64_t off, end;
	int fd;

	if (j->kind == ENGINE_FILL_PIECE && !engine_readahead_piece_claim(j->inode, j->piece, j->piece_seq))
		return;    /* a reader took it back */
	cache_object_info(j->obj, &info);
	if (engine_settle_fresh(e, j->inode, &info.fingerprint))
		return;    /* would store nothing (checked again at each pass): no origin open */
	fd = engine_fill_origin_open(e, j->inode, j->kind == ENGINE_FILL_RESIDENT ? ENGINE_ORIGIN_RESIDENT
	                                                              : ENGINE_ORIGIN_BACKGROUND);
	if (fd < 0)
		return;
	if (j->kind == ENGINE_FILL_RESIDENT) {   /* nothing in the page cache: nothing to walk */
		uint64_t cached = 0;
		if (sys_cachestat(fd, 0, 0, &cached) < 0 || cached == 0) {
			sys_close(fd);
			return;
		}
	}
	if (e->cfg.fill_delay_ms)
		usleep(e->cfg.fill_delay_ms * 1000u);
	off = j->off / chunk * chunk;
	/* Whole chunks (a partial one is not stored); the loop cuts the end at the file's size. */
	end = j->len >= UINT64_MAX - j->off - chunk ? UINT64_MAX
	                                             : (j->off + j->len + chunk - 1) / chunk * chunk;
	while (off < end && fill_job_may_fill(e, j->inode)) {
		struct engine_fill_ranges ranges;
		uint64_t len, gen;
		ssize_t n, filled;

		/* The generation and the size of one moment: a piece that stops at the end of the
		 * file may say so only for the size that goes with its generation (a write that
		 * extended the file after the job began moved both). */
		cache_object_info(j->obj, &info);
		gen = info.generation;
		/* Where changes are not watched, bytes read while the object's times are fresh could
		 * belong to a version a same-tick change replaces unseen: none is stored, the job
		 * stops (engine_settle.c; a later open or warm queues the file again). */
		if (engine_settle_fresh(e, j->inode, &info.fingerprint))
			break;
		if (end > info.fingerprint.size)
			end = info.fingerprint.size;
		if (off >= end)
			break;
		len = end - off < bufsize ? end - off : bufsize;
		if (j->kind == ENGINE_FILL_RESIDENT)
			len = fill_resident_span(fd, off, len, chunk);
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
		engine_fill_data_ranges(fd, off, len, &ranges);
		n = fill_read_data_ranges(fd, buf, off, len, &ranges);
		if (n <= 0)
			break;
		filled = cache_object_fill_sparse(j->obj, gen, buf, (size_t)n, (off_t)off, ranges.ext,
		                                  ranges.count);
		engine_fill_count(e, "background fill", filled, (size_t)n);
		if (j->kind == ENGINE_FILL_PIECE && filled > 0) {
			uint64_t stored = (uint64_t)filled * chunk;
			stats_add(stats, STATS_READAHEAD_BYTES, stored < (uint64_t)n ? stored : (uint64_t)n);
		} else if (j->kind == ENGINE_FILL_PIECE && filled == -EDQUOT) {
			engine_readahead_pause(e);
		}
		/* The generation held from before the origin read to the fill: the bytes are current
		 * (and in the cache): the readers waiting for them reply from buf, if it holds the
		 * whole piece (up to the end of the file). */
		if (j->kind == ENGINE_FILL_PIECE && filled >= 0 && off == j->off &&
		    (off + (uint64_t)n >= j->off + j->len || off + (uint64_t)n == info.fingerprint.size)) {
			if (e->cfg.offer_delay_ms)
				usleep(e->cfg.offer_delay_ms * 1000u);
			*bufp = buf = engine_readahead_piece_offer(e, j->inode, j->piece, j->piece_seq, buf,
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
	if ((j->kind == ENGINE_FILL_COMPLETION || j->kind == ENGINE_FILL_RESIDENT) &&
	    cache_object_complete(j->obj)) {
		/* Persist the record now, so that the next start keeps the copy. */
		int rc = cache_object_sync(j->obj);
		if (rc < 0)
			engine_bypass_error(e, "record write", rc);
		else
			stats_add(stats, STATS_COMPLETIONS, 1);
	}
	sys_close(fd);
}

static void fill_job_finish(struct engine *e, struct engine_fill_job *j)
{
	if (j->kind == ENGINE_FILL_PIECE)
		engine_readahead_piece_done(j->inode, j->piece, j->piece_seq);
	if (j->kind == ENGINE_FILL_COMPLETION) {
		pthread_mutex_lock(&j->inode->lock);
		j->inode->completing = false;
		pthread_mutex_unlock(&j->inode->lock);
	}
	engine_object_drop(e, j->inode);
	free(j);
}

/* The oldest job this thread may run (q->lock held): a read-ahead piece always (a reader is
 * about to wait for it), a completion or chunk job only while fewer than
 * ENGINE_FILL_BACKGROUND_MAX run, so that random misses, which wait for their own origin read,
 * queue behind at most that many big background reads on the origin device. */
static struct engine_fill_job *fill_job_take(struct engine_filler *q)
{
	struct engine_fill_job *j, *prev = NULL;
	for (j = q->head; j; prev = j, j = j->next) {
		if (j->kind != ENGINE_FILL_PIECE && q->background_running >= ENGINE_FILL_BACKGROUND_MAX)
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
	struct engine *e = arg;
	struct engine_filler *q = &e->filler;
	size_t bufsize = (size_t)cache_store_chunk_size(e->store) * ENGINE_FILL_BUFFER_CHUNKS;
	char *buf = NULL;

	/* One buffer for the thread's life: a fresh one per job costs an mmap and a page fault
	 * per page. Without it, jobs are taken and dropped (their holds undone). */
	if (posix_memalign((void **)&buf, ENGINE_DIRECT_ALIGN, bufsize) != 0)
		buf = NULL;
	for (;;) {
		struct engine_fill_job *j;
		struct engine_fill_wait *w = NULL;
		bool background;
		pthread_mutex_lock(&q->lock);
		while (!(j = fill_job_take(q)) && !q->stop && !(w = fill_backlog_take(q)))
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop) {
			pthread_mutex_unlock(&q->lock);
			if (j)   /* taken as the stop came: undo its holds, as engine_stop does */
				fill_job_finish(e, j);
			free(buf);
			return NULL;
		}
		if (w) {     /* nothing queued: the backlog's oldest is queued (the next turn runs it) */
			pthread_mutex_unlock(&q->lock);
			fill_backlog_run(e, w);
			continue;
		}
		background = j->kind != ENGINE_FILL_PIECE;
		q->background_running += background;
		pthread_mutex_unlock(&q->lock);
		if (j->obj && buf)
			fill_job_run(e, j, &buf);
		fill_job_finish(e, j);
		engine_bypass_notify(e);   /* the job's cache-device errors, with no lock held */
		if (background) {
			pthread_mutex_lock(&q->lock);
			q->background_running--;
			pthread_cond_broadcast(&q->cond);   /* a queued background job may go now */
			pthread_mutex_unlock(&q->lock);
		}
	}
}

static void *fill_pinned_walk_thread(void *arg)
{
	engine_pinned_walk(arg);
	return NULL;
}

int engine_fill_start(struct engine *e)
{
	struct engine_filler *q = &e->filler;
	unsigned want = e->cfg.fill_threads ? e->cfg.fill_threads : 1;

	if (!e->store)
		return 0;
	if (want > ENGINE_FILL_THREADS_MAX)
		want = ENGINE_FILL_THREADS_MAX;
	pthread_mutex_lock(&q->lock);
	q->started = true;
	for (; q->thread_count < want; q->thread_count++) {
		int rc = pthread_create(&q->threads[q->thread_count], NULL, fill_thread, e);
		if (rc) {
			pthread_mutex_unlock(&q->lock);
			return -rc;
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (e->cfg.pin_count && !q->pinned_walk_started)
		q->pinned_walk_started = pthread_create(&q->pinned_walk, NULL, fill_pinned_walk_thread, e) == 0;
	return 0;
}

void engine_fill_stop(struct engine *e)
{
	struct engine_filler *q = &e->filler;
	struct engine_fill_job *rest;
	struct engine_fill_wait *waits;

	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->thread_count; i++)
		pthread_join(q->threads[i], NULL);
	q->thread_count = 0;
	if (q->pinned_walk_started)
		pthread_join(q->pinned_walk, NULL);
	q->pinned_walk_started = false;
	pthread_mutex_lock(&q->lock);
	rest = q->head;
	q->head = q->tail = NULL;
	q->queued = 0;
	waits = fill_backlog_detach(q);
	pthread_mutex_unlock(&q->lock);
	while (rest) {
		struct engine_fill_job *next = rest->next;
		fill_job_finish(e, rest);
		rest = next;
	}
	fill_backlog_let_go(e, waits);
}
