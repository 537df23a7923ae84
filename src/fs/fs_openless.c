/* fs_openless: the implicit open files of start --openless (fs_openless.h says what and why).
 * A hash table by nodeid plus an LRU list, under one leaf lock; the opening and closing of a
 * file (our fds on the original, the engine's attach and detach) happen outside it. A file
 * being opened is in the table already (state OPENING), so concurrent requests for the same
 * node wait for it instead of opening a second one.
 */
#include "fs/fs_openless.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache_catalog.h"
#include "fs/fs_int.h"
#include "fuse/fuse_session.h"
#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/siphash.h"

enum openless_state { OPENLESS_OPENING, OPENLESS_READY, OPENLESS_FAILED };

struct openless_file {
	uint64_t nodeid;
	struct fs_file reader;            /* O_RDONLY, attached once READY */
	struct fs_file writer;            /* O_RDWR, attached at the first request that writes */
	pthread_mutex_t writer_lock;      /* protects writer and has_writer */
	bool has_writer;
	/* Under the table's lock: */
	enum openless_state state;
	int error;                        /* FAILED: why */
	uint32_t users;                   /* requests holding it */
	bool in_table;                    /* else closed by the last user (a forget, a failure) */
	struct openless_file *hash_next;
	struct openless_file *lru_prev, *lru_next;  /* prev: more recently used */
};

/* A page invalidation the notifier sends for a GETATTR (pages_drop). */
struct inval_job {
	uint64_t nodeid;
	bool done;                        /* sent */
	bool abandoned;                   /* its waiter stopped waiting: the notifier frees it */
	struct inval_job *next;
};

struct fs_openless {
	pthread_mutex_t lock;
	pthread_cond_t opened;            /* a file left OPENING */
	struct openless_file **bucket;
	size_t bucket_count;              /* power of two */
	struct openless_file *lru_head, *lru_tail;  /* head: most recently used */
	unsigned count, max;
	uint64_t made, pushed_out;
	/* The notifier (timed mode): its own lock, a queue of jobs, started at the first one. */
	pthread_mutex_t notify_lock;
	pthread_cond_t notify_work, notify_done;
	struct inval_job *jobs_head, *jobs_tail;
	pthread_t notifier;
	bool notifier_started, notifier_stopping, notifier_failure_said;
};

static size_t bucket_of(const struct fs_openless *t, uint64_t nodeid)
{
	uint64_t h = nodeid * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & (t->bucket_count - 1);
}

int fs_openless_create(struct fs *fs, unsigned max)
{
	struct fs_openless *t = calloc(1, sizeof(*t));
	size_t buckets = 64;

	if (!t)
		return -ENOMEM;
	t->max = max ? max : 1;
	while (buckets < (size_t)t->max * 2)
		buckets *= 2;
	t->bucket = calloc(buckets, sizeof(*t->bucket));
	if (!t->bucket) {
		free(t);
		return -ENOMEM;
	}
	t->bucket_count = buckets;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->opened, NULL);
	pthread_mutex_init(&t->notify_lock, NULL);
	pthread_cond_init(&t->notify_work, NULL);
	pthread_condattr_t attr;   /* its waits are bounded on the monotonic clock (pages_inval) */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->notify_done, &attr);
	pthread_condattr_destroy(&attr);
	fs->openless = t;
	return 0;
}

/* ---- the table (t->lock held) --------------------------------------------------------------- */

static struct openless_file *table_find(struct fs_openless *t, uint64_t nodeid)
{
	struct openless_file *o = t->bucket[bucket_of(t, nodeid)];
	while (o && o->nodeid != nodeid)
		o = o->hash_next;
	return o;
}

static void lru_unlink(struct fs_openless *t, struct openless_file *o)
{
	if (o->lru_prev)
		o->lru_prev->lru_next = o->lru_next;
	else
		t->lru_head = o->lru_next;
	if (o->lru_next)
		o->lru_next->lru_prev = o->lru_prev;
	else
		t->lru_tail = o->lru_prev;
	o->lru_prev = o->lru_next = NULL;
}

static void lru_push_head(struct fs_openless *t, struct openless_file *o)
{
	o->lru_prev = NULL;
	o->lru_next = t->lru_head;
	if (t->lru_head)
		t->lru_head->lru_prev = o;
	t->lru_head = o;
	if (!t->lru_tail)
		t->lru_tail = o;
}

static void table_insert(struct fs_openless *t, struct openless_file *o)
{
	size_t b = bucket_of(t, o->nodeid);
	o->hash_next = t->bucket[b];
	t->bucket[b] = o;
	lru_push_head(t, o);
	o->in_table = true;
	t->count++;
}

static void table_remove(struct fs_openless *t, struct openless_file *o)
{
	struct openless_file **p = &t->bucket[bucket_of(t, o->nodeid)];
	while (*p != o)
		p = &(*p)->hash_next;
	*p = o->hash_next;
	lru_unlink(t, o);
	o->in_table = false;
	t->count--;
}

/* Take least recently used files that nobody uses out of the table while it is over max; they
 * are chained on *out (by hash_next) for closing once the lock is let go. */
static void table_make_room(struct fs_openless *t, struct openless_file **out)
{
	struct openless_file *o = t->lru_tail;
	while (t->count > t->max && o) {
		struct openless_file *prev = o->lru_prev;
		if (o->users == 0 && o->state == OPENLESS_READY) {
			table_remove(t, o);
			o->hash_next = *out;
			*out = o;
			t->pushed_out++;
		}
		o = prev;
	}
}

/* ---- timed: pages revalidated after --attr-timeout (fs_openless.h) ------------------------ */

enum { PAGES_NONE = 0, PAGES_UNVOUCHED = 1 };

/* The version of a file that st describes: a hash of the cache store's fingerprint of it
 * (engine_fingerprint: the fields whose equality lets cached bytes be served), never PAGES_NONE or
 * PAGES_UNVOUCHED. The key is fixed: nothing here is secret, and a collision of two versions
 * of one file is a 2^-64 chance. */
static uint64_t pages_version(struct fs *fs, const struct stat *st)
{
	static const uint8_t key[SIPHASH_KEY_BYTES] = { 'c', 'm', '-', 'p', 'a', 'g', 'e', 's' };
	struct cache_fingerprint fp;
	uint64_t h;

	engine_fingerprint(fs->engine, st, &fp);
	h = siphash24(key, &fp, sizeof(fp));
	return h > PAGES_UNVOUCHED ? h : h + 2;
}

bool fs_openless_timed(struct fs *fs, const struct fs_node *n)
{
	return fs->cfg.openless && n->type == S_IFREG && !fs_watch_covers(fs, n);
}

bool fs_openless_pages_held(struct fs *fs, const struct fs_node *n)
{
	return fs_openless_timed(fs, n) && atomic_load(&n->pages_from) != PAGES_NONE;
}

/* The version of the file fd is open on (pages_version), or PAGES_UNVOUCHED when its times
 * are too young to show a later change in the same clock tick (cache_catalog_stamp_racy) or it
 * cannot be stat'ed. */
static uint64_t pages_version_of_fd(struct fs *fs, int fd)
{
	struct cache_catalog_stamp stamp;
	struct stat st;

	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return PAGES_UNVOUCHED;
	cache_catalog_stamp_from_stat(&st, &stamp);
	return cache_catalog_stamp_racy(&stamp) ? PAGES_UNVOUCHED : pages_version(fs, &st);
}

/* An implicit file of regular file n was opened on version v of the file (pages_version_of_fd
 * of its fd, taken before its attach checked the cache copy, so v is never newer than what it
 * serves: a change in between makes a mismatch later, which drops the pages, never a match
 * that keeps older ones): the pages the kernel gets from now on are of that version. If it
 * already held pages of another one (an implicit file pushed out, the file changed meanwhile),
 * those cannot be named: the next GETATTR drops them, and a timed node's kernel is made to ask
 * it (attributes only: its pages may be locked for the READ being served). */
static void pages_opened(struct fs *fs, struct fs_node *n, uint64_t v)
{
	uint64_t old;

	old = atomic_load(&n->pages_from);
	if (old != PAGES_NONE && old != v)
		v = PAGES_UNVOUCHED;
	atomic_store(&n->pages_from, v);
	if (v == PAGES_UNVOUCHED && old != PAGES_UNVOUCHED && fs->session && fs_openless_timed(fs, n))
		fuse_session_notify_inval_inode(fs->session, n->nodeid, -1, 0);
}

/* ---- the notifier: page invalidations sent off the workers --------------------------------
 * NOTIFY_INVAL_INODE with a page range locks every page of the file in the kernel, and a page
 * being read stays locked until a worker answers its READ (an mmap fault, a readahead): sent by
 * the worker answering a GETATTR, it waits for READs that may need that very worker -- with
 * --threads 1, or one ring entry per queue, a GETATTR beside an mmap reader hung for good (a
 * dirty page of a shared mapping is written back first, by a WRITE, likewise). So the
 * invalidation is sent by a thread of its own, and the GETATTR waits for it at most
 * NOTIFY_WAIT_MS: in the common case the pages are gone before the answer; when the wait runs
 * out (a READ the waiting worker itself must serve, or the notifier busy with another file),
 * the answer goes without it, its attributes valid for 0 s, and the node stays unvouched, so
 * the next GETATTR drops again (pages_drop). */
enum { NOTIFY_WAIT_MS = 100 };

static void *notifier_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_openless *t = fs->openless;

	pthread_mutex_lock(&t->notify_lock);
	for (;;) {
		struct inval_job *j;
		while (!t->jobs_head && !t->notifier_stopping)
			pthread_cond_wait(&t->notify_work, &t->notify_lock);
		if (!t->jobs_head)
			break;
		j = t->jobs_head;
		t->jobs_head = j->next;
		if (!t->jobs_head)
			t->jobs_tail = NULL;
		pthread_mutex_unlock(&t->notify_lock);
		if (fs->session)
			fuse_session_notify_inval_inode(fs->session, j->nodeid, 0, 0);
		pthread_mutex_lock(&t->notify_lock);
		if (j->abandoned) {
			free(j);
		} else {
			j->done = true;
			pthread_cond_broadcast(&t->notify_done);
		}
	}
	pthread_mutex_unlock(&t->notify_lock);
	return NULL;
}

/* Have the notifier drop the kernel's pages of nodeid; wait for it at most NOTIFY_WAIT_MS.
 * true: dropped. false: still to come, or (no job or no thread: out of memory or threads) not
 * asked at all. */
static bool pages_inval(struct fs *fs, uint64_t nodeid)
{
	struct fs_openless *t = fs->openless;
	struct inval_job *j = calloc(1, sizeof(*j));
	struct timespec deadline;
	bool done;

	if (j)
		j->nodeid = nodeid;
	pthread_mutex_lock(&t->notify_lock);
	if (j && !t->notifier_started && !t->notifier_stopping &&
	    pthread_create(&t->notifier, NULL, notifier_main, fs) == 0)
		t->notifier_started = true;
	if (!j || !t->notifier_started) {
		/* Never sent from the worker instead (that can hang: above). Not dropped: the node
		 * stays unvouched (pages_drop), so every GETATTR tries again. Said once. */
		bool said = t->notifier_failure_said;
		t->notifier_failure_said = true;
		pthread_mutex_unlock(&t->notify_lock);
		free(j);
		if (!said)
			log_warn("no notifier thread (out of memory or threads): pages of files changed "
			         "elsewhere are dropped only once it can be made");
		return false;
	}
	if (t->jobs_tail)
		t->jobs_tail->next = j;
	else
		t->jobs_head = j;
	t->jobs_tail = j;
	pthread_cond_signal(&t->notify_work);
	deadline = clock_ns_timespec((int64_t)(clock_now_ns() + NOTIFY_WAIT_MS * 1000000ull));
	while (!j->done && pthread_cond_timedwait(&t->notify_done, &t->notify_lock, &deadline) == 0)
		;
	done = j->done;
	if (done)
		free(j);
	else
		j->abandoned = true;
	pthread_mutex_unlock(&t->notify_lock);
	return done;
}

void fs_openless_stop(struct fs *fs)
{
	struct fs_openless *t = fs->openless;
	bool started;

	if (!t)
		return;
	pthread_mutex_lock(&t->notify_lock);
	t->notifier_stopping = true;
	started = t->notifier_started;
	t->notifier_started = false;
	pthread_cond_signal(&t->notify_work);
	pthread_mutex_unlock(&t->notify_lock);
	if (started)
		pthread_join(t->notifier, NULL);
	/* No job is left: the notifier sends every queued one before it ends, and none is queued
	 * once notifier_started is false (pages_inval). */
}

/* The kernel's pages of n and its implicit file go. First the implicit file (a READ from now
 * on opens it afresh, at the current version) and the record, then the pages: whatever a READ
 * put in them before, through the old file or a new one, goes with them. true: the pages are
 * gone; false: their invalidation is still on its way (pages_inval). */
static bool pages_drop(struct fs *fs, struct fs_node *n, uint64_t seen)
{
	uint64_t expected = seen;
	fs_openless_forget(fs, n->nodeid);
	atomic_compare_exchange_strong(&n->pages_from, &expected, PAGES_NONE);
	if (pages_inval(fs, n->nodeid))
		return true;
	/* Not gone yet: until a drop is seen through, every GETATTR drops again (and entries
	 * keep attributes valid for 0 s), instead of trusting pages that may still be old. */
	atomic_store(&n->pages_from, PAGES_UNVOUCHED);
	return false;
}

int fs_openless_revalidate(struct fs *fs, struct fs_node *n, struct stat *st, bool *pending)
{
	uint64_t seen;
	int fd, rc;

	*pending = false;
	if (!fs_openless_timed(fs, n) || (seen = atomic_load(&n->pages_from)) == PAGES_NONE)
		return 0;
	fd = fs_node_open(fs, n, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*pending = !pages_drop(fs, n, seen);
		return fd;
	}
	rc = sys_fstatat(fd, "", st, AT_EMPTY_PATH);
	sys_close(fd);
	if (rc < 0 || seen == PAGES_UNVOUCHED || seen != pages_version(fs, st))
		*pending = !pages_drop(fs, n, seen);
	return rc < 0 ? rc : 1;
}

/* ---- opening and closing (no table lock) ---------------------------------------------------- */

/* Our own open of n's original, attached to its engine state like an open of the kernel's.
 * An inode unlinked behind the cache is served too (the application opened it before): the
 * attach's ESTALE, meant to make the kernel repeat an OPEN's path walk, is for OPEN only. */
static int file_attach(struct fs *fs, struct fs_node *n, struct fs_file *f, int flags)
{
	struct cm_fuse_open_out o;
	int fd = fs_node_open(fs, n, flags | O_CLOEXEC), rc;
	/* The version its pages will come from, recorded also while the watch covers it (one
	 * fstat): should the watch be lost, the node becomes timed with it known (fs_watch.c
	 * overflow). */
	bool record = n->type == S_IFREG;
	uint64_t version = PAGES_UNVOUCHED;

	if (fd < 0)
		return fd;
	f->node = n;
	f->path_fd = -1;   /* opened at once: no deferred open (fs_int.h) */
	f->file.fd = fd;
	f->file.open_flags = flags;
	if (record)
		version = pages_version_of_fd(fs, fd);
	rc = fs_cache_attach(fs, f, &o);
	if (rc == -ESTALE)
		rc = fs_cache_attach(fs, f, &o);  /* it marked the node: served as ours now */
	if (rc < 0) {
		sys_close(fd);
		return rc;
	}
	if (record)
		pages_opened(fs, n, version);
	return 0;
}

static void file_detach(struct fs *fs, struct fs_file *f)
{
	fs_cache_detach(fs, f);
	sys_close(f->file.fd);
}

/* Close o, out of the table and unused; drops its node reference (which may free the node). */
static void file_close(struct fs *fs, struct openless_file *o)
{
	if (o->state == OPENLESS_READY) {
		if (o->has_writer)
			file_detach(fs, &o->writer);
		file_detach(fs, &o->reader);
	}
	pthread_mutex_destroy(&o->writer_lock);
	fs_node_forget(fs, o->nodeid, 1);
	free(o);
}

/* A file whose opening failed: no node reference, nothing attached. */
static void file_free_failed(struct openless_file *o)
{
	pthread_mutex_destroy(&o->writer_lock);
	free(o);
}

static void close_chain(struct fs *fs, struct openless_file *o)
{
	while (o) {
		struct openless_file *next = o->hash_next;
		file_close(fs, o);
		o = next;
	}
}

/* Let go of a hold on o (t->lock held): true if o must now be closed by the caller. */
static bool hold_drop(struct openless_file *o)
{
	return --o->users == 0 && !o->in_table;
}

/* The implicit file of n, held. */
static struct openless_file *file_hold(struct fs *fs, struct fs_node *n, int *err)
{
	struct fs_openless *t = fs->openless;
	struct openless_file *o, *victims = NULL;
	int rc;

	pthread_mutex_lock(&t->lock);
	o = table_find(t, n->nodeid);
	if (o) {
		o->users++;
		lru_unlink(t, o);
		lru_push_head(t, o);
		while (o->state == OPENLESS_OPENING)
			pthread_cond_wait(&t->opened, &t->lock);
		if (o->state == OPENLESS_READY) {
			pthread_mutex_unlock(&t->lock);
			return o;
		}
		*err = o->error;
		if (!hold_drop(o))
			o = NULL;
		pthread_mutex_unlock(&t->lock);
		if (o)
			file_free_failed(o);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		pthread_mutex_unlock(&t->lock);
		*err = -ENOMEM;
		return NULL;
	}
	o->nodeid = n->nodeid;
	o->state = OPENLESS_OPENING;
	o->users = 1;
	pthread_mutex_init(&o->writer_lock, NULL);
	table_insert(t, o);
	table_make_room(t, &victims);
	pthread_mutex_unlock(&t->lock);
	close_chain(fs, victims);  /* before opening: the fds they held are free again */

	rc = file_attach(fs, n, &o->reader, O_RDONLY);
	pthread_mutex_lock(&t->lock);
	if (rc == 0) {
		fs_node_ref(fs, n);
		o->state = OPENLESS_READY;
		t->made++;
	} else {
		o->state = OPENLESS_FAILED;
		o->error = rc;
		if (o->in_table)
			table_remove(t, o);
	}
	pthread_cond_broadcast(&t->opened);
	if (rc < 0) {
		bool last = hold_drop(o);
		pthread_mutex_unlock(&t->lock);
		if (last)
			file_free_failed(o);
		*err = rc;
		return NULL;
	}
	pthread_mutex_unlock(&t->lock);
	return o;
}

static void file_release(struct fs *fs, struct openless_file *o)
{
	struct fs_openless *t = fs->openless;
	bool last;

	pthread_mutex_lock(&t->lock);
	last = hold_drop(o);
	pthread_mutex_unlock(&t->lock);
	if (last)
		file_close(fs, o);
}

struct fs_file *fs_openless_file(struct fs *fs, struct fs_node *n, bool write, int *err)
{
	struct openless_file *o;
	int rc = 0;

	if (!fs->openless) {  /* fh 0 outside the mode: a kernel bug or a forged request */
		*err = -EBADF;
		return NULL;
	}
	o = file_hold(fs, n, err);
	if (!o || !write)
		return o ? &o->reader : NULL;
	pthread_mutex_lock(&o->writer_lock);
	if (!o->has_writer) {
		rc = file_attach(fs, n, &o->writer, O_RDWR);
		o->has_writer = rc == 0;
	}
	pthread_mutex_unlock(&o->writer_lock);
	if (rc < 0) {
		file_release(fs, o);
		*err = rc;
		return NULL;
	}
	return &o->writer;
}

void fs_openless_put(struct fs *fs, struct fs_file *f)
{
	struct openless_file *o;

	if (!f)
		return;
	/* The reader is the read-only one (file_attach above). */
	if ((f->file.open_flags & O_ACCMODE) == O_RDONLY)
		o = (struct openless_file *)(void *)((char *)f - offsetof(struct openless_file, reader));
	else
		o = (struct openless_file *)(void *)((char *)f - offsetof(struct openless_file, writer));
	file_release(fs, o);
}

void fs_openless_forget(struct fs *fs, uint64_t nodeid)
{
	struct fs_openless *t = fs->openless;
	struct openless_file *o;
	bool close_now = false;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	o = table_find(t, nodeid);
	if (o && o->state == OPENLESS_READY) {
		table_remove(t, o);
		close_now = o->users == 0;  /* else its last user closes it */
	}
	pthread_mutex_unlock(&t->lock);
	if (close_now)
		file_close(fs, o);
}

bool fs_openless_report(struct fs *fs, uint64_t *files, uint64_t *made, uint64_t *pushed_out)
{
	struct fs_openless *t = fs->openless;

	*files = *made = *pushed_out = 0;
	if (!t)
		return false;
	pthread_mutex_lock(&t->lock);
	*files = t->count;
	*made = t->made;
	*pushed_out = t->pushed_out;
	pthread_mutex_unlock(&t->lock);
	return true;
}

void fs_openless_free(struct fs *fs)
{
	struct fs_openless *t = fs->openless;
	struct openless_file *victims = NULL;

	if (!t)
		return;
	fs_openless_stop(fs);  /* no-op if stopped already (before the session went) */
	pthread_mutex_lock(&t->lock);
	while (t->lru_head) {
		struct openless_file *o = t->lru_head;
		table_remove(t, o);   /* no request runs any more: nobody uses it */
		o->hash_next = victims;
		victims = o;
	}
	pthread_mutex_unlock(&t->lock);
	close_chain(fs, victims);
	pthread_cond_destroy(&t->opened);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->notify_work);
	pthread_cond_destroy(&t->notify_done);
	pthread_mutex_destroy(&t->notify_lock);
	free(t->bucket);
	free(t);
	fs->openless = NULL;
}
