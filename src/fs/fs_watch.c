/* fs_watch: open readers see changes made behind the cache (DESIGN.md §4, §6).
 * A fanotify group marks the origin's whole file system (FAN_MARK_FILESYSTEM, FID reporting)
 * and one thread reads its events: an event of another process on an inode the kernel holds
 * brings that inode's cache object in step (a cache copy under passthrough readers is resynced
 * from the origin, an object served in user space is invalidated) and then drops the kernel's
 * cached attributes and pages (NOTIFY_INVAL_INODE); a name created, deleted or moved in a
 * directory the kernel holds is dropped from its dentry cache (NOTIFY_INVAL_ENTRY). The
 * daemon's own changes come back as events of its pid and are ignored. Open files are also
 * revalidated at GETATTR: without fanotify (not root, no file handles, a file system that
 * reports nothing) that is at the attribute timeout; with it, a stat that comes before the
 * event never gets a size ahead of the bytes. An original whose files change elsewhere (NFS,
 * SMB, FUSE such as sshfs...: fs_type.h) is never watched, even where fanotify could mark it:
 * its events would tell only this machine's changes. Design notes: docs/ARCHITECTURE.md
 * "Changes behind the cache".
 */
#include "fs/fs_int.h"
#include "fs/fs_openless.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_type.h"
#include "sys/sys.h"
#include "util/log.h"

/* FAN_CLOSE_WRITE: some writes raise no FAN_MODIFY -- through a shared mapping, and by Linux
 * AIO (io_submit: aio_complete_rw calls no fsnotify_modify; io_uring's writes do) -- and the
 * kernel keeps the attributes of a watched inode for a day: the writer's close is when they are
 * seen (while it keeps the file open they are not: docs/ARCHITECTURE.md). */
#define WATCH_MASK (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_CREATE | FAN_DELETE | \
                    FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ONDIR)
#define WATCH_DIRENT (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)
#define WATCH_BUFFER (64 * 1024)
#define WATCH_BATCH 256             /* distinct nodes changed per read of events */
/* After the first event, wait this long before reading the queue: the kernel merges the events
 * of one inode that are still queued, so a stream of writes (an application's passthrough
 * writes through the mount come back as events of its pid) costs one revalidation per period
 * instead of one per write, at a small fraction of the one-second promise. */
#define WATCH_COALESCE_NS (20 * 1000 * 1000)

/* ---- names the watcher invalidated (see fs_watch.names_gen) ----------------------------------- */

static atomic_uint_fast64_t *names_slot(struct fs *fs, uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		h ^= *c;
		h *= 1099511628211ull;
	}
	return &fs->watch.names_gen[(h ^ (h >> 29)) % FS_WATCH_NAME_SLOTS];
}

uint64_t fs_watch_names_gen(struct fs *fs, uint64_t parent, const char *name)
{
	return atomic_load_explicit(names_slot(fs, parent, name), memory_order_acquire);
}

/* ---- the handle filter ---------------------------------------------------------------------- */

static size_t filter_slot(int type, const unsigned char *bytes, unsigned len)
{
	uint64_t h = 1469598103934665603ull ^ (uint32_t)type;
	for (unsigned i = 0; i < len; i++) {
		h ^= bytes[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 31;
	return (size_t)(h & ((1u << FS_WATCH_FILTER_BITS) - 1));
}

static void filter_add(struct fs *fs, int type, const unsigned char *bytes, unsigned len, int delta)
{
	_Atomic uint8_t *c;
	uint8_t v;
	if (!fs->watch.filter)
		return;
	c = &fs->watch.filter[filter_slot(type, bytes, len)];
	v = atomic_load_explicit(c, memory_order_relaxed);
	if (v == UINT8_MAX)
		return;  /* saturated: stays set for good (the filter only ever says "maybe") */
	atomic_store_explicit(c, (uint8_t)(v + delta), memory_order_relaxed);
}

void fs_watch_node_added(struct fs *fs, const struct fs_node *n)
{
	if (n->handle_bytes)
		filter_add(fs, n->handle_type, n->handle, n->handle_bytes, 1);
}

void fs_watch_node_removed(struct fs *fs, const struct fs_node *n)
{
	if (n->handle_bytes)
		filter_add(fs, n->handle_type, n->handle, n->handle_bytes, -1);
}

static bool filter_maybe(struct fs *fs, const struct file_handle *h)
{
	if (h->handle_bytes > MAX_HANDLE_SZ)
		return false;
	return atomic_load_explicit(&fs->watch.filter[filter_slot(h->handle_type, h->f_handle,
	                                                          h->handle_bytes)],
	                            memory_order_relaxed) != 0;
}

/* The node of the inode an event's handle names, with a reference (fs_node_forget(.., 1);
 * the root needs none), or NULL if the kernel holds no node of it. */
static struct fs_node *node_of_handle(struct fs *fs, struct file_handle *h)
{
	struct stat st;

	if (!filter_maybe(fs, h))
		return NULL;
	if (fs_handle_stat(fs, h, &st) < 0)
		return NULL;  /* gone already: nothing of it can be served any more */
	if (st.st_dev == fs->root->dev && st.st_ino == fs->root->ino)
		return fs->root;
	return fs_node_find_ref(fs, &st);
}

/* ---- bringing an object in step ---------------------------------------------------------- */

static void stat_bump(struct fs *fs, enum stats_counter c) { stats_add(fs->cfg.stats, c, 1); }

/* The watcher says the origin file of n changed behind the cache: if its fingerprint moved, the
 * engine brings the open object in step (engine_write_resync; a GETATTR asks the same through
 * fs_cache_before_getattr). */
static void object_revalidate(struct fs *fs, struct fs_node *n)
{
	struct engine_inode *io = fs_node_io_hold_existing(fs, n);
	if (!io)
		return;  /* no open file, no held object: the next open checks the fingerprint */
	engine_write_resync(fs->engine, io, true);
	fs_node_io_release(fs, n);
}


static void inval_inode(struct fs *fs, struct fs_node *n)
{
	/* Pages too for a regular file (a user-space open's page cache; passthrough has none) and
	 * a directory (its listing cached by FOPEN_CACHE_DIR: a name created behind has no
	 * dentry that INVAL_ENTRY could drop, so only this makes the next listing fresh). */
	int64_t off = n->type == S_IFREG || n->type == S_IFDIR ? 0 : -1;
	if (fuse_session_notify_inval_inode(fs->session, n->nodeid, off, 0) == 0)
		stat_bump(fs, STATS_KERNEL_INVALIDATIONS);
}

/* An inode the kernel holds changed (data or attributes): object first, then the kernel. */
static void node_changed(struct fs *fs, struct fs_node *n)
{
	stat_bump(fs, STATS_CHANGES_BEHIND);
	fs_xattr_changed(n);
	if (n->type == S_IFREG)
		object_revalidate(fs, n);
	inval_inode(fs, n);
}

/* Events were lost: everything the kernel holds is revalidated. */
static void overflow(struct fs *fs)
{
	struct fs_node **all = NULL;
	size_t count_all = fs_node_refs_all(fs, 0, &all);

	log_warn("change events were lost (fanotify queue overflow): revalidating %zu inodes",
	         count_all + 1);
	fs_catalog_overflow(fs);
	for (unsigned i = 0; i < FS_WATCH_NAME_SLOTS; i++)
		atomic_fetch_add_explicit(&fs->watch.names_gen[i], 1, memory_order_acq_rel);
	stat_bump(fs, STATS_WATCH_OVERFLOWS);
	for (size_t i = 0; i < count_all; i++) {
		/* An openless mount's implicit files were opened against what the watch vouched for:
		 * the next request opens them afresh. Before the pages go, so that none a READ put
		 * there through the old file stays (fs_openless.h "Timed"). */
		fs_openless_forget(fs, all[i]->nodeid);
		node_changed(fs, all[i]);
		fs_node_forget(fs, all[i]->nodeid, 1);
	}
	free(all);
	fs_xattr_changed(fs->root);
	inval_inode(fs, fs->root);
	/* Names: every cached one expires (Linux 6.16); before, they live out --entry-timeout. */
	if (fuse_session_notify_inc_epoch(fs->session) == 0)
		stat_bump(fs, STATS_KERNEL_INVALIDATIONS);
}

/* A directory removed behind the cache: no event names it once it is gone (its handle no
 * longer opens, FAN_DELETE_SELF waits for our own fd to close), so the kernel would keep its
 * attributes (nlink 2) for an application's open fd or working directory. Every directory node
 * whose inode is gone has its attributes dropped; one pass per read of the queue that removed
 * a directory, a syscall or two per directory node. */
static void removed_dirs(struct fs *fs)
{
	struct fs_node **dirs = NULL;
	size_t count = fs_node_refs_all(fs, S_IFDIR, &dirs);

	for (size_t i = 0; i < count; i++) {
		struct stat st;
		int fd = fs_node_fd(fs, dirs[i]);
		bool gone = fd < 0;
		if (fd >= 0) {
			gone = sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0 || st.st_nlink == 0;
			fs_node_fd_put(fs, dirs[i], fd);
		}
		if (gone && fuse_session_notify_inval_inode(fs->session, dirs[i]->nodeid, 0, 0) == 0)
			stat_bump(fs, STATS_KERNEL_INVALIDATIONS);
		fs_node_forget(fs, dirs[i]->nodeid, 1);
	}
	free(dirs);
}

/* ---- events ------------------------------------------------------------------------------- */

struct batch {
	struct fs_node *node[WATCH_BATCH];  /* each with a reference */
	unsigned count;
	bool overflow;
	bool dir_removed;                   /* a FAN_DELETE of a directory: see removed_dirs */
};

static void batch_add(struct fs *fs, struct batch *b, struct fs_node *n)
{
	for (unsigned i = 0; i < b->count; i++)
		if (b->node[i] == n) {
			fs_node_forget(fs, n->nodeid, 1);  /* the batch holds one already */
			return;
		}
	if (b->count == WATCH_BATCH) {
		node_changed(fs, n);
		fs_node_forget(fs, n->nodeid, 1);
		return;
	}
	b->node[b->count++] = n;
}

static void batch_run(struct fs *fs, struct batch *b)
{
	if (b->overflow) {
		overflow(fs);
		b->overflow = false;
	} else {
		for (unsigned i = 0; i < b->count; i++)
			node_changed(fs, b->node[i]);
		if (b->dir_removed)
			removed_dirs(fs);
	}
	b->dir_removed = false;
	for (unsigned i = 0; i < b->count; i++)
		fs_node_forget(fs, b->node[i]->nodeid, 1);
	b->count = 0;
}

/* The next information record of an event at *p, before end, with *p moved past it; NULL at
 * the end, or at a malformed record (the rest of the event is then ignored). */
static const struct fanotify_event_info_fid *fid_next(const char **p, const char *end)
{
	const struct fanotify_event_info_fid *fid = (const void *)*p;

	if (*p + sizeof(struct fanotify_event_info_header) > end ||
	    fid->hdr.len < sizeof(*fid) + sizeof(struct file_handle) || *p + fid->hdr.len > end)
		return NULL;
	*p += fid->hdr.len;
	return fid;
}

static struct file_handle *fid_handle(const struct fanotify_event_info_fid *fid)
{
	return (struct file_handle *)(void *)fid->handle;
}

/* One event of another process. */
static void event_take(struct fs *fs, struct batch *b, const struct fanotify_event_metadata *m,
                       const char *event)
{
	const char *p = event + m->metadata_len, *end = event + m->event_len;
	const struct fanotify_event_info_fid *fid;

	while ((fid = fid_next(&p, end))) {
		struct file_handle *h = fid_handle(fid);
		const char *name = NULL;
		struct fs_node *n;

		if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME)
			name = (const char *)h->f_handle + h->handle_bytes;
		if (fid->hdr.info_type != FAN_EVENT_INFO_TYPE_FID &&
		    fid->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME)
			continue;
		/* A changed inode's parent (its FID record follows), unless the name is "." (the
		 * directory itself, which no other record names). */
		if (name && strcmp(name, ".") && !(m->mask & WATCH_DIRENT))
			continue;
		n = node_of_handle(fs, h);
		if (!n)
			continue;
		if (name && strcmp(name, ".")) {
			stat_bump(fs, STATS_CHANGES_BEHIND);
			if ((m->mask & (FAN_DELETE | FAN_ONDIR)) == (FAN_DELETE | FAN_ONDIR))
				b->dir_removed = true;
			atomic_fetch_add_explicit(names_slot(fs, n->nodeid, name), 1, memory_order_acq_rel);
			if (fuse_session_notify_inval_entry(fs->session, n->nodeid, name, 0) == 0)
				stat_bump(fs, STATS_KERNEL_INVALIDATIONS);
		}
		if (n == fs->root) {
			fs_xattr_changed(n);
			inval_inode(fs, n);
		} else
			batch_add(fs, b, n);
	}
}

/* An attribute change of our own process: the request that made it already told the kernel
 * and the node, but the kernel may have added xattrs in our name (IMA's security.ima at the
 * close of a file we wrote, EVM's security.evm), so what is known of its xattrs goes. */
static void own_attrib(struct fs *fs, const struct fanotify_event_metadata *m, const char *event)
{
	const char *p = event + m->metadata_len, *end = event + m->event_len;
	const struct fanotify_event_info_fid *fid;

	while ((fid = fid_next(&p, end))) {
		struct fs_node *n;

		if (fid->hdr.info_type != FAN_EVENT_INFO_TYPE_FID)
			continue;  /* the changed inode itself, not its parent's record */
		if (!(n = node_of_handle(fs, fid_handle(fid))))
			continue;
		fs_xattr_changed(n);
		if (n != fs->root)
			fs_node_forget(fs, n->nodeid, 1);
	}
}

/* ---- the metadata catalog's part (fs_catalog.c) -------------------------------------------
 * Every event, of any process (ours too: a chmod or a write through the mount changes an
 * entry's attributes in its directory's record, and the kernel gives us no parent for it), drops
 * the record of the directory it names: its parent for a name, or the directory itself. A
 * change to a file with no name in its event (a file opened by handle, a link(2) elsewhere)
 * may leave its old attributes in a record no event names, so the seal goes for this run. */
static void catalog_event(struct fs *fs, const struct fanotify_event_metadata *m, const char *event)
{
	const char *p = event + m->metadata_len, *end = event + m->event_len;
	const struct fanotify_event_info_fid *fid;
	struct file_handle *self = NULL;
	bool named = false;

	while ((fid = fid_next(&p, end))) {
		struct file_handle *h = fid_handle(fid);

		if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_FID) {
			self = h;
			continue;
		}
		if (fid->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME &&
		    fid->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID)
			continue;
		named = true;
		fs_catalog_handle_changed(fs, h);
		fs_catalog_dir_changed_handle(fs, h);
	}
	if (p + sizeof(struct fanotify_event_info_header) <= end)
		return;  /* it stopped at a malformed record: nothing of the rest is trusted */
	if (self)
		fs_catalog_handle_changed(fs, self);  /* the file's own attributes (fs_catalog_file_attr) */
	if (self && (m->mask & FAN_ONDIR))
		fs_catalog_dir_changed_handle(fs, self);  /* its own attributes (dir attributes) */
	else if (!named && self && (m->mask & (FAN_ATTRIB | FAN_MODIFY | FAN_CLOSE_WRITE)))
		fs_catalog_nameless_change(fs, self);
}

/* The length of the event at p (its metadata copied: 4-byte alignment only). */
static ssize_t m_len(const char *p)
{
	struct fanotify_event_metadata m;
	memcpy(&m, p, sizeof(m));
	return m.event_len;
}

static void events_read(struct fs *fs, char *buf)
{
	struct batch b = { .count = 0 };
	pid_t self = getpid();

	fs_catalog_events_begin(fs);   /* until the catalog's pass is done: no file attrs served */
	for (;;) {
		ssize_t len = read(fs->watch.fan_fd, buf, WATCH_BUFFER), off = 0;
		if (len <= 0)
			break;  /* EAGAIN: all read */
		/* Two passes: the catalog's records of every directory named go first (before any
		 * invalidation makes the kernel ask again: a listing served from a record not yet
		 * forgotten would be cached for a day), then the kernel's invalidations, kept
		 * together so that a name dropped and its inode's attributes follow each other
		 * closely (difftest --behind saw the gap: an fstat between them). Records with names
		 * are 4-byte aligned only: each event's metadata is copied. */
		for (int pass = fs->catalog ? 0 : 1; pass < 2; pass++) {
			for (off = 0; len - off >= (ssize_t)FAN_EVENT_METADATA_LEN; off += m_len(buf + off)) {
				struct fanotify_event_metadata m;
				memcpy(&m, buf + off, sizeof(m));
				if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > len - off)
					break;
				if (m.vers != FANOTIFY_METADATA_VERSION)
					;
				else if (m.mask & FAN_Q_OVERFLOW)
					b.overflow = true;
				else if (pass == 0)
					catalog_event(fs, &m, buf + off);
				else if (m.pid != self)
					event_take(fs, &b, &m, buf + off);
				else if (m.mask & FAN_ATTRIB)
					own_attrib(fs, &m, buf + off);
			}
		}
		if (b.count == WATCH_BATCH)
			batch_run(fs, &b);
		/* Far from full: the queue was drained. Events still arriving (another program
		 * writing anywhere on the original's file system, which the mark covers) wait for
		 * the next wake-up and its coalescing pause: without this the thread read them one
		 * by one, 17,000 reads a second here while a build ran elsewhere on the disk. */
		if (len < WATCH_BUFFER / 2)
			break;
	}
	batch_run(fs, &b);   /* an overflow's handling too: then the catalog's floor is up */
	fs_catalog_events_end(fs);
}

/* The thread cannot go on reading events (no memory for its buffer, poll failed): nothing is
 * watched from now on, so every reply takes the short timeouts and nothing is answered from
 * what the watcher kept true; then everything the kernel holds is revalidated, as after lost
 * events (which also voids the seal). Its fd stays for fs_watch_stop to close. */
static void *watch_thread_lost(struct fs *fs, int rc)
{
	atomic_store(&fs->watch.active, false);
	snprintf(fs->watch.why, sizeof(fs->watch.why), "the change watcher's thread stopped (%s)",
	         strerror(-rc));
	log_warn("not watching the original for changes any more: %s", fs->watch.why);
	overflow(fs);
	return NULL;
}

static void *watch_thread(void *arg)
{
	struct fs *fs = arg;
	char *buf = malloc(WATCH_BUFFER);

	if (!buf)
		return watch_thread_lost(fs, -ENOMEM);
	for (;;) {
		struct pollfd p[2] = { { .fd = fs->watch.fan_fd, .events = POLLIN },
		                       { .fd = fs->watch.wake_pipe[0], .events = POLLIN } };
		/* Events first: one they report keeps a young listing out (fs_catalog.c). */
		if (poll(p, 2, fs_catalog_young_due(fs)) < 0 && errno != EINTR) {
			free(buf);
			return watch_thread_lost(fs, -errno);
		}
		if (p[1].revents) {
			char drain[64];
			while (read(fs->watch.wake_pipe[0], drain, sizeof(drain)) > 0)
				;
			if (atomic_load(&fs->watch.stopping))
				break;
		}
		if (p[0].revents) {
			struct timespec ts = { 0, WATCH_COALESCE_NS };
			nanosleep(&ts, NULL);
			events_read(fs, buf);
		}
		fs_catalog_young_record(fs);
	}
	free(buf);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Not watched, why: what stopped it, with the error rc's text (rc 0: what says it all). Status
 * and stats add what that means ("timeout"); the log says it. */
static int watch_off(struct fs *fs, int rc, const char *what)
{
	if (rc)
		snprintf(fs->watch.why, sizeof(fs->watch.why), "%s (%s)", what, strerror(-rc));
	else
		snprintf(fs->watch.why, sizeof(fs->watch.why), "%s", what);
	log_warn("not watching the original for changes: %s; changes behind the cache are seen at "
	         "the attribute timeout and at each open", fs->watch.why);
	if (fs->watch.fan_fd >= 0)
		sys_close(fs->watch.fan_fd);
	fs->watch.fan_fd = -1;
	return 0;
}

static int watch_start(struct fs *fs);

int fs_watch_start(struct fs *fs)
{
	int rc;
	if (fs->cfg.seal_start_delay_ms)   /* tests only (fs.h) */
		usleep(fs->cfg.seal_start_delay_ms * 1000u);
	rc = watch_start(fs);
	if (fs->cfg.seal_start_delay_ms)
		usleep(fs->cfg.seal_start_delay_ms * 1000u);
	fs_catalog_watch_started(fs);  /* the seal holds only while the watcher covers the original */
	return rc;
}

/* watch_off, remembering the error for a later watch_prepare. */
static int watch_refused(struct fs *fs, int rc, const char *what)
{
	fs->watch.prepare_error = rc;
	watch_off(fs, rc, what);
	return rc;
}

/* Whether the original's file system is one whose files change elsewhere (fs_type.h): then it
 * is not watched, whatever fanotify would allow, since no event tells of those changes (an NFS
 * mark succeeds and reports this client's changes only). 0 when local, else -errno with the
 * watch off and why (-EREMOTE: changed elsewhere). */
static int watch_refuse_changed_elsewhere(struct fs *fs)
{
	unsigned long type = fs->cfg.origin_fs_type;
	const char *kind;
	char what[sizeof(fs->watch.why)];
	int rc;

	/* The tests' type (CACHEMAX_ORIGIN_FS_TYPE) only ever makes an original unwatched: a local
	 * type given for a real network original is not believed. */
	if (!type || !fs_type_changed_elsewhere(type)) {
		if ((rc = fs_type_of_fd(fs->cfg.origin_fd, &type)) < 0)
			return watch_refused(fs, rc, "the original's file system type is unknown");
	}
	if (!(kind = fs_type_changed_elsewhere(type)))
		return 0;
	snprintf(what, sizeof(what), "the original's file system is %s, whose files change "
	         "elsewhere with no event here", kind);
	fs->watch.prepare_error = -EREMOTE;
	watch_off(fs, 0, what);
	return -EREMOTE;
}

/* The group and its mark, once (before the mount for an openless mount, else at the start).
 * 0, or -errno with the watch off and why. */
static int watch_prepare(struct fs *fs)
{
	struct fs_watch *w = &fs->watch;
	int rc;

	if (w->set_up)
		return w->fan_fd >= 0 ? 0 : w->prepare_error;
	w->fan_fd = -1;
	w->wake_pipe[0] = w->wake_pipe[1] = -1;
	w->set_up = true;
	w->prepare_error = -EOPNOTSUPP;
	if ((rc = watch_refuse_changed_elsewhere(fs)) < 0)
		return rc;
	if (!fs->handles)
		return watch_refused(fs, w->prepare_error, "the original's inodes have no file handles");
	rc = sys_fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID |
	                       FAN_REPORT_DFID_NAME, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (rc < 0)
		return watch_refused(fs, rc, "fanotify unavailable");
	w->fan_fd = rc;
	/* The mount fd (a directory opened O_RDONLY): fanotify_mark refuses O_PATH fds. */
	rc = sys_fanotify_mark(w->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	                       WATCH_MASK, fs->mounts[0].fd, NULL);
	if (rc < 0)
		return watch_refused(fs, rc, "the original's file system cannot be marked");
	/* What the start needs that could fail, made here: before the mount for an openless
	 * mount, whose start must not fail after it (fs_watch_start). */
	if (pipe2(w->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return watch_refused(fs, -errno, "no pipe");
	w->filter_made = calloc(1u << FS_WATCH_FILTER_BITS, 1);
	if (!w->filter_made)
		return watch_refused(fs, -ENOMEM, "no memory for the watch filter");
	return 0;
}

int fs_watch_prepare(struct fs *fs)
{
	return watch_prepare(fs);
}

static int watch_start(struct fs *fs)
{
	struct fs_watch *w = &fs->watch;
	int rc;

	if (watch_prepare(fs) < 0 || w->fan_fd < 0)
		return 0;  /* not watched: why is said */
	{
		/* The root has no handle of its own: events in the origin's top directory name it. */
		_Alignas(struct file_handle) unsigned char hb[sizeof(struct file_handle) + MAX_HANDLE_SZ];
		struct file_handle *h = (struct file_handle *)(void *)hb;
		_Atomic uint8_t *filter = w->filter_made;
		int mount_id;
		w->filter_made = NULL;
		h->handle_bytes = MAX_HANDLE_SZ;
		rc = sys_name_to_handle_at(fs->cfg.origin_fd, "", h, &mount_id, AT_EMPTY_PATH);
		/* Published under table_lock, with the nodes added before it existed (lookups
		 * between the mount and now). */
		pthread_mutex_lock(&fs->table_lock);
		w->filter = filter;
		if (rc == 0)
			filter_add(fs, h->handle_type, h->f_handle, h->handle_bytes, 1);
		for (size_t i = 0; i < fs->table.bucket_count; i++)
			for (struct fs_node *n = fs->table.by_id[i]; n; n = n->next_by_id)
				fs_watch_node_added(fs, n);
		pthread_mutex_unlock(&fs->table_lock);
	}
	rc = fs->cfg.watch_thread_fails ? EAGAIN : pthread_create(&w->thread, NULL, watch_thread, fs);
	if (rc) {  /* the pipe is closed by fs_watch_stop */
		watch_off(fs, -rc, "no watcher thread");
		return -rc;
	}
	w->started = true;
	atomic_store(&w->active, true);
	log_info("watching the original's file system for changes behind the cache (fanotify)");
	return 0;
}

/* At the stop: the events still queued, for the catalog only (the kernel is gone). */
static void catalog_drain(struct fs *fs)
{
	char *buf = malloc(WATCH_BUFFER);
	if (!buf) {
		fs_catalog_overflow(fs);
		return;
	}
	for (;;) {
		ssize_t len = read(fs->watch.fan_fd, buf, WATCH_BUFFER), off = 0;
		if (len <= 0)
			break;
		while (len - off >= (ssize_t)FAN_EVENT_METADATA_LEN) {
			struct fanotify_event_metadata m;
			memcpy(&m, buf + off, sizeof(m));
			if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > len - off)
				break;
			if (m.vers == FANOTIFY_METADATA_VERSION && (m.mask & FAN_Q_OVERFLOW))
				fs_catalog_overflow(fs);
			else if (m.vers == FANOTIFY_METADATA_VERSION)
				catalog_event(fs, &m, buf + off);
			off += m.event_len;
		}
	}
	free(buf);
}

void fs_watch_stop(struct fs *fs)
{
	struct fs_watch *w = &fs->watch;
	if (!w->set_up)
		return;  /* never started: its fds are not ours to close */
	if (w->started) {
		char c = 1;
		atomic_store(&w->stopping, true);
		/* Full (EAGAIN): a byte is there already, which the thread reads before stopping. */
		if (write(w->wake_pipe[1], &c, 1) < 0 && errno != EAGAIN)
			log_warn("cannot wake the change watcher: %s", strerror(errno));
		pthread_join(w->thread, NULL);
		/* The seal (fs_catalog.c): after a syncfs, every change is in the queue. */
		fs_catalog_seal_write(fs, catalog_drain);
		w->started = false;
		atomic_store(&w->active, false);
		snprintf(w->why, sizeof(w->why), "stopped");
	}
	if (w->wake_pipe[0] >= 0) {
		sys_close(w->wake_pipe[0]);
		sys_close(w->wake_pipe[1]);
		w->wake_pipe[0] = w->wake_pipe[1] = -1;
	}
	if (w->fan_fd >= 0)
		sys_close(w->fan_fd);
	w->fan_fd = -1;
}

void fs_watch_release(struct fs *fs)
{
	fs_watch_stop(fs);
	free(fs->watch.filter);
	fs->watch.filter = NULL;
	free(fs->watch.filter_made);  /* prepared, never started */
	fs->watch.filter_made = NULL;
}

void fs_watch_wake(struct fs *fs)
{
	char c = 0;
	if (!fs->watch.started)
		return;
	/* EAGAIN: the pipe is full, the thread will wake anyway. */
	if (write(fs->watch.wake_pipe[1], &c, 1) < 0 && errno != EAGAIN)
		log_warn("cannot wake the change watcher: %s", strerror(errno));
}

bool fs_watch_queue_empty(struct fs *fs)
{
	/* poll, not FIONREAD: the kernel answers it from whether the queue is empty, while
	 * FIONREAD walks the whole queue under the lock every event of the file system takes */
	struct pollfd p = { .fd = fs->watch.fan_fd, .events = POLLIN };
	return sys_poll(&p, 1, 0) == 0;
}

bool fs_watch_covers(struct fs *fs, const struct fs_node *n)
{
	return atomic_load_explicit(&fs->watch.active, memory_order_relaxed) &&
	       n->dev == fs->root->dev;
}

bool fs_watch_active(struct fs *fs, char *why, size_t why_size)
{
	bool on = atomic_load(&fs->watch.active);
	if (!on && why)
		snprintf(why, why_size, "%s", fs->watch.why);
	return on;
}
