/* fs_cache: the file system's side of the cache engine (src/engine/). It is the engine's host:
 * the callbacks through which the engine reaches origin inodes (the node table's fds), keeps
 * nodes alive across a reply and registers passthrough backing files with the FUSE session;
 * and the node-level calls of the fs operations into the engine (open files, origin changes,
 * deleted files, reports). The engine knows nothing of FUSE; the replies are fs_ops.c's.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"
#include "sys/sys_walk.h"
#include "util/log.h"

void fs_cache_passthrough_disable(struct fs *fs, const char *why)
{
	if (atomic_exchange(&fs->passthrough_ok, false)) {
		snprintf(fs->passthrough_why, sizeof(fs->passthrough_why), "%s", why);
		log_warn("passthrough off: %s", why);
	}
}

/* ---- the host seam ----------------------------------------------------------------------- */

static int host_origin_fd(void *arg, void *node) { return fs_node_fd(arg, node); }
static void host_origin_fd_put(void *arg, void *node, int fd) { fs_node_fd_put(arg, node, fd); }

static int host_open(void *arg, int dirfd, const char *name, int flags, mode_t mode)
{
	return fs_open_retry(arg, dirfd, name, flags, mode);
}

/* The late open of a deferred open file: its borrowed O_PATH fd reopened (the inode the open
 * checked, even if its name went meanwhile), with the flags the open would have used. */
static int host_file_open(void *arg, struct engine_file *ef)
{
	struct fs_file *f = (struct fs_file *)(void *)((char *)ef - offsetof(struct fs_file, file));
	char path[FS_PROC_PATH_MAX];

	if (f->path_fd < 0)
		return fs_node_open(arg, f->node, f->origin_flags);
	fs_proc_path(f->path_fd, path);
	return fs_open_retry(arg, AT_FDCWD, path, f->origin_flags, 0);
}

int fs_file_origin_fd(struct fs *fs, struct fs_file *f)
{
	return engine_file_fd(fs->engine, &f->file);
}

int fs_file_stat_fd(const struct fs_file *f)
{
	int fd = atomic_load(&f->file.fd);
	return fd >= 0 ? fd : f->path_fd;
}

static int host_relpath(void *arg, void *node, char *buf, size_t size)
{
	return fs_node_relpath(arg, node, buf, size);
}

static bool host_origin_handle(void *arg, void *node, struct cache_origin_handle *out)
{
	const struct fs_node *n = node;
	if (!n->handle_bytes || n->handle_bytes > CACHE_HANDLE_MAX)
		return false;  /* the node's own handle, taken at its lookup */
	out->type = n->handle_type;
	out->bytes = n->handle_bytes;
	memcpy(out->data, n->handle, out->bytes);
	return true;
}

/* A lookup reference (so a FORGET cannot free the node) and a hold on its engine inode. */
static void host_node_hold(void *arg, void *node)
{
	fs_node_ref(arg, node);
	fs_node_io_hold_existing(arg, node);  /* held by the caller's open file or hold */
}

static void host_node_drop(void *arg, void *node)
{
	struct fs_node *n = node;
	fs_node_io_release(arg, n);
	fs_node_forget(arg, n->nodeid, 1);  /* may free n */
}

/* The fill backlog's reference: the node alone (no engine inode, no fd). */
static void host_node_keep(void *arg, void *node) { fs_node_ref(arg, node); }

static void host_node_let_go(void *arg, void *node)
{
	struct fs_node *n = node;
	fs_node_forget(arg, n->nodeid, 1);  /* may free n */
}

/* A kept node's turn: held as host_node_hold holds it, its engine inode made if it has none. */
static struct engine_inode *host_node_inode_hold(void *arg, void *node)
{
	struct engine_inode *io = fs_node_io_hold(arg, node);
	if (io)
		fs_node_ref(arg, node);
	return io;
}

static bool host_passthrough_ok(void *arg)
{
	struct fs *fs = arg;
	return atomic_load(&fs->passthrough_ok);
}

static int host_backing_open(void *arg, int fd)
{
	struct fs *fs = arg;
	int id = fuse_session_backing_open(fs->session, fd);
	if (id == -EPERM)
		fs_cache_passthrough_disable(fs, "the kernel refused backing files (EPERM: needs CAP_SYS_ADMIN)");
	return id;
}

static int host_backing_close(void *arg, int id)
{
	struct fs *fs = arg;
	return fuse_session_backing_close(fs->session, id);
}

static bool host_changes_watched(void *arg, void *node)
{
	return fs_watch_covers(arg, node);
}

int fs_cache_engine_create(struct fs *fs)
{
	const struct engine_host host = {
		.arg = fs,
		.origin_fd = host_origin_fd,
		.origin_fd_put = host_origin_fd_put,
		.open = host_open,
		.file_open = host_file_open,
		.relpath = host_relpath,
		.origin_handle = host_origin_handle,
		.node_hold = host_node_hold,
		.node_drop = host_node_drop,
		.node_keep = host_node_keep,
		.node_let_go = host_node_let_go,
		.node_inode_hold = host_node_inode_hold,
		.passthrough_ok = host_passthrough_ok,
		.backing_open = host_backing_open,
		.backing_close = host_backing_close,
		.changes_watched = host_changes_watched,
	};
	const struct engine_config cfg = {
		.stats = fs->cfg.stats,
		.store = fs->cfg.store,
		.origin_fd = fs->cfg.origin_fd,
		.complete_max = fs->cfg.complete_max,
		.files_by_path = fs->files_by_path,
		.fill_threads = fs->cfg.fill_threads,
		.fill_queue_max = fs->fill_queue_max,
		.fill_backlog_max = fs->fill_backlog_max,
		.kept_max = fs->kept_max,
		.first_read_origin = fs->cfg.first_read_origin,
		.pin_globs = fs->cfg.pin,
		.pin_count = fs->cfg.pin_count,
		.exclude_globs = fs->cfg.exclude,
		.exclude_count = fs->cfg.exclude_count,
		.breaker_changed = fs->cfg.breaker_changed,
		.breaker_arg = fs->cfg.breaker_arg,
		.breaker_retry_ms = fs->cfg.breaker_retry_ms,
		.fill_delay_ms = fs->cfg.fill_delay_ms,
		.offer_delay_ms = fs->cfg.offer_delay_ms,
	};
	return engine_create(&cfg, &host, &fs->engine);
}

/* ---- open files -------------------------------------------------------------------------- */

int fs_cache_attach(struct fs *fs, struct fs_file *f, struct cm_fuse_open_out *o)
{
	return fs_cache_attach_known(fs, f, NULL, o);
}

int fs_cache_attach_known(struct fs *fs, struct fs_file *f, const struct stat *known,
                          struct cm_fuse_open_out *o)
{
	struct fs_node *n = f->node;
	struct engine_open_result res;
	struct stat st;
	bool have_stat, writer = (f->file.open_flags & O_ACCMODE) != O_RDONLY;
	int rc;

	memset(o, 0, sizeof(*o));
	o->fh = (uint64_t)(uintptr_t)f;
	f->file.discards = engine_discards(fs->engine);   /* before the stat below */
	o->open_flags = FOPEN_NOFLUSH;
	/* The fingerprint the engine checks: through our open fd, or for a deferred open through
	 * the node's O_PATH fd (the same inode's attributes, without opening the file). */
	if (known) {  /* the catalog's, known current (fs_catalog_file_attr): no fd at all */
		st = *known;
		f->known = *known;
		f->has_known = true;
	}
	have_stat = n->type == S_IFREG &&
	            (known || sys_fstatat(fs_file_stat_fd(f), "", &st, AT_EMPTY_PATH) == 0);
	/* The kernel's cached name still leads to an inode unlinked behind our back (the file was
	 * deleted or replaced in the original directory): opening it would serve the old file.
	 * ESTALE makes the kernel look the name up afresh (LOOKUP_REVAL) and open again. An inode
	 * we unlinked ourselves (reopened via /proc/PID/fd, O_TMPFILE) opens as usual, and so does
	 * the next open after an ESTALE: the kernel's retry of a path walk reached the new inode
	 * (LOOKUP_REVAL dropped the stale name), so an open that reaches the old one again comes
	 * through /proc/PID/fd, which opens a file unlinked behind on the original too. */
	if (have_stat && st.st_nlink == 0 && !atomic_exchange(&n->unlinked_by_us, true))
		return -ESTALE;
	/* The open file holds the node's engine inode until fs_cache_detach. */
	f->file.inode = fs_node_io_hold(fs, n);
	if (!f->file.inode)
		return -ENOMEM;
	f->file.regular = n->type == S_IFREG;
	rc = engine_open_attach(fs->engine, &f->file, have_stat ? &st : NULL, &res);
	if (rc < 0) {
		fs_node_io_release(fs, n);
		return rc;
	}
	if (known && (!res.hit || f->file.via_daemon)) {
		/* Served from the original after all (not a hit passed through to the cache copy):
		 * the node's O_PATH fd now, as any deferred open (a failure: the first request that
		 * needs the original opens it by handle). */
		int path_fd = fs_node_fd(fs, n);
		if (path_fd == -ESTALE) {
			/* Unlinked behind since the catalog said it current: its reads would fail.
			 * ESTALE makes the kernel look the name up again (as above). */
			fs_cache_detach(fs, f);
			return -ESTALE;
		}
		f->path_fd = path_fd >= 0 ? path_fd : -1;
	} else if (known) {
		stats_add(fs->cfg.stats, STATS_CATALOG_OPENS, 1);
	}
	f->copy_hit = res.hit && !f->file.via_daemon;
	if (f->path_fd >= 0 || known)
		stats_add(fs->cfg.stats, STATS_ORIGIN_OPENS_DEFERRED, 1);
	if (res.passthrough) {
		o->open_flags |= FOPEN_PASSTHROUGH | (res.direct_io ? FOPEN_DIRECT_IO : 0);
		o->backing_id = res.backing_id;
		/* What the kernel cached before (a lookup's attributes) would hide its mmap writes. */
		if (writer && atomic_fetch_add(&n->passthrough_writers, 1) == 0)
			fs_cache_attr_invalidate(fs, n);
	}
	return 0;
}

void fs_cache_detach(struct fs *fs, struct fs_file *f)
{
	struct fs_node *n = f->node;
	/* After the engine wrote a writer's mmap changes back: until then a GETATTR must still
	 * see the attributes as volatile (fs_cache_before_getattr writes them back first). */
	engine_open_detach(fs->engine, &f->file);
	if (f->file.passthrough && (f->file.open_flags & O_ACCMODE) != O_RDONLY)
		atomic_fetch_sub(&n->passthrough_writers, 1);
	fs_node_io_release(fs, n);
}

/* ---- origin changes ---------------------------------------------------------------------- */

struct engine_inode *fs_cache_change_begin(struct fs *fs, struct fs_node *n)
{
	struct engine_inode *io = fs_node_io_hold(fs, n);
	if (io)
		engine_write_change_begin(fs->engine, io);
	return io;
}

void fs_cache_change_end(struct fs *fs, struct fs_node *n, struct engine_inode *io)
{
	engine_write_change_end(fs->engine, io);
	fs_node_io_release(fs, n);
}

void fs_cache_metadata_changed(struct fs *fs, struct fs_node *n)
{
	struct engine_inode *io;
	if (n->type != S_IFREG || !(io = fs_node_io_hold_existing(fs, n)))
		return;  /* no engine inode: no object to keep in step */
	engine_write_metadata_changed(fs->engine, io);
	fs_node_io_release(fs, n);
}

void fs_cache_before_getattr(struct fs *fs, struct fs_node *n)
{
	struct engine_inode *io;
	if (n->type != S_IFREG || !(io = fs_node_io_hold_existing(fs, n)))
		return;  /* no open file, no held object: the next open checks the fingerprint */
	engine_write_resync(fs->engine, io, false);
	if (fs_cache_attr_volatile(n))
		engine_write_back(fs->engine, io);
	fs_node_io_release(fs, n);
}

int fs_cache_name_key(struct fs *fs, struct fs_node *parent, const char *name,
                      const struct stat *st, struct cache_key *key)
{
	char rel[FS_RELPATH_MAX];
	int rc;

	if (!fs->files_by_path) {
		*key = engine_key(fs->engine, NULL, st);
		return 0;
	}
	rc = fs_name_relpath(fs, parent, name, rel, sizeof(rel));
	if (rc == 0)
		*key = engine_key(fs->engine, rel, st);
	return rc;
}

bool fs_cache_last_name(struct fs *fs, struct fs_node *parent, const char *name,
                        const struct stat *st, struct cache_key *key)
{
	return engine_last_name(fs->engine, st) && fs_cache_name_key(fs, parent, name, st, key) == 0;
}

/* A file below a directory renamed through the mount, at its old path rel: its copy goes. */
static int tree_moved_visit(void *arg, int dirfd, const char *name, const char *rel)
{
	struct fs *fs = arg;
	engine_file_deleted(fs->engine, cache_store_path_key(fs->store, rel));
	return 0;
}

void fs_cache_tree_moved(struct fs *fs, struct fs_node *parent, const char *name,
                         struct fs_node *newparent, const char *newname)
{
	char rel[SYS_WALK_PATH_MAX];
	int pfd, fd;

	if (!fs->files_by_path || !fs->store || fs_name_relpath(fs, parent, name, rel, sizeof(rel)) < 0)
		return;
	pfd = fs_node_fd(fs, newparent);
	if (pfd < 0)
		return;
	fd = sys_openat(pfd, newname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	fs_node_fd_put(fs, newparent, pfd);
	if (fd >= 0)
		(void)sys_walk_files(fd, rel, strlen(rel), FS_TREE_MOVED_DEPTH_MAX, tree_moved_visit, fs);
}

void fs_cache_file_deleted(struct fs *fs, struct cache_key key)
{
	engine_file_deleted(fs->engine, key);
}

bool fs_cache_attr_volatile(const struct fs_node *n)
{
	return atomic_load_explicit(&n->passthrough_writers, memory_order_relaxed) > 0;
}

void fs_cache_attr_invalidate(struct fs *fs, const struct fs_node *n)
{
	int rc = fuse_session_notify_inval_inode(fs->session, n->nodeid, -1, 0);
	if (rc < 0 && rc != -ENOENT)  /* ENOENT: the kernel holds no inode for it */
		log_warn("invalidating the attributes of inode %llu failed: %s",
		         (unsigned long long)n->ino, strerror(-rc));
}

/* ---- the public calls of fs.h that the engine answers -------------------------------------- */

int fs_start_background(struct fs *fs)
{
	return engine_start(fs->engine);
}

bool fs_cache_breaker_tripped(struct fs *fs, char *why, size_t why_size)
{
	return engine_bypass_breaker_on(fs->engine, why, why_size);
}

void fs_first_read_forget(struct fs *fs, const struct stat *st, const struct cache_key *key)
{
	engine_open_first_read_forget(fs->engine, st);
	engine_kept_forget(fs->engine, st ? key : NULL);
	engine_fill_backlog_forget(fs->engine);   /* it would fill the file again */
}

int fs_file_report(struct fs *fs, uint64_t nodeid, struct fs_file_report *out)
{
	struct fs_node *n = fs_node_get_ref(fs, nodeid);
	struct cache_object_info info;
	struct engine_inode *io;
	bool have_info = false, known;
	struct stat st;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	out->cached = FS_CACHED_UNKNOWN;
	if (!n)
		return -ENOENT;
	known = fs_node_relpath(fs, n, out->path, sizeof(out->path)) == 0;
	if (!known)
		out->path[0] = '\0';
	fd = fs_node_fd(fs, n);
	rc = fd < 0 ? fd : sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	if (fd >= 0)
		fs_node_fd_put(fs, n, fd);
	if (rc == 0 && (known || !fs->files_by_path)) {
		io = S_ISREG(st.st_mode) ? fs_node_io_hold_existing(fs, n) : NULL;
		have_info = engine_object_info(fs->engine, io, &st,
		                               engine_key(fs->engine, out->path, &st), &info);
		if (io)
			fs_node_io_release(fs, n);
	}
	if (rc == 0) {
		out->size = (uint64_t)st.st_size;
		if (have_info && !info.failed) {
			uint64_t chunk = cache_store_chunk_size(fs->store);
			out->bytes_cached = info.present_chunks * chunk;
			if (out->bytes_cached > out->size)
				out->bytes_cached = out->size;
			out->cached = info.present_chunks == 0 ? FS_CACHED_NONE :
			              info.present_chunks >= info.chunk_count ? FS_CACHED_FULL :
			              FS_CACHED_PARTIAL;
		}
	}
	fs_node_forget(fs, n->nodeid, 1);
	return rc;
}
