/* fs_ops: every FUSE operation, applied to the origin through the sys seam.
 * Names are resolved relative to the parent node's O_PATH fd; inode-wide calls that have no
 * O_PATH form (chmod, truncate, xattrs) use the node's /proc/self/fd path, which reaches the
 * same inode without a path lookup under the mount. Creations run with the caller's fsuid,
 * fsgid, the supplementary group and the umask the kernel sent, so new files belong to the
 * caller and get the mode the origin gives them (a default ACL replaces the umask).
 */
#include "cache/cache_catalog.h"
#include "fs/fs_int.h"
#include "fs/fs_openless.h"
#include "fs/fs_type.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stats/stats.h"
#include "sys/sys.h"
#include "util/clock.h"
#include "util/log.h"

#define FS_OF(r) ((struct fs *)fuse_req_fs(r))

/* ---- helpers ---------------------------------------------------------------------------- */

static void split_timeout(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t < 0)
		t = 0;
	*sec = (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

static void attr_from_stat(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

/* How long the kernel may keep n's attributes: until the watcher invalidates them where it
 * watches (the kernel drops a reply sampled before an INVAL_INODE: its attr_version), else the
 * option; never while a passthrough writer changes them unseen. */
static double attr_timeout(struct fs *fs, const struct fs_node *n)
{
	if (fs_cache_attr_volatile(n))
		return 0;
	return fs_watch_covers(fs, n) ? FS_WATCHED_TIMEOUT : fs->cfg.attr_timeout;
}

/* How long the kernel may keep a name in directory `dir`, whose lookup sampled the watcher's
 * name generation `gen` before it looked: a name invalidated meanwhile (the kernel had no
 * dentry to drop while the lookup ran) gets the option's timeout. */
static double entry_timeout(struct fs *fs, const struct fs_node *dir, const char *name,
                            uint64_t gen)
{
	if (fs->kernel_inc_epoch && fs_watch_covers(fs, dir) &&
	    fs_watch_names_gen(fs, dir->nodeid, name) == gen)
		return FS_WATCHED_TIMEOUT;
	return fs->cfg.entry_timeout;
}

static void entry_fill(struct fs *fs, struct fuse_entry_out *e, const struct fs_node *n,
                       const struct stat *st, double entry_valid)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = n->nodeid;
	e->generation = 0;  /* nodeids are never reused */
	split_timeout(entry_valid, &e->entry_valid, &e->entry_valid_nsec);
	/* Pages of a timed openless file are revalidated by a GETATTR (fs_openless.h): an entry's
	 * attributes must not spare it. */
	if (!fs_openless_pages_held(fs, n))
		split_timeout(attr_timeout(fs, n), &e->attr_valid, &e->attr_valid_nsec);
	attr_from_stat(&e->attr, st);
}

/* ---- set-id bits and file capabilities (FUSE_HANDLE_KILLPRIV_V2) --------------------------
 * The kernel leaves clearing them to us: our own writes, truncates and chowns run as root, which
 * keeps set-id bits, so we clear what the caller's operation clears on a local file system. In
 * return the kernel marks inodes S_NOSEC and stops asking for security.capability before every
 * write (a round trip per write; it made passthrough writes 30% slower than the origin).
 *
 * How each case reaches us: a truncate by an unprivileged caller carries FATTR_KILL_SUIDGID, an
 * O_TRUNC open FUSE_OPEN_KILL_SUIDGID, a write served here FUSE_WRITE_KILL_SUIDGID. Writes that
 * pass through to the original, fallocate, copy_file_range and chown(-1, -1) arrive as a SETATTR
 * with no attribute at all, which utimensat(OMIT, OMIT) also sends; the kernel asks for
 * security.capability (from the same process) just before the former and never before the
 * latter, which is how op_setattr tells them apart (cap_probe_*). Capabilities the kernel
 * removes itself (REMOVEXATTR) before that SETATTR. On an original with no xattrs the kernel
 * would answer that probe itself (GETXATTR answered ENOSYS, fs_xattr.c), so such a mount does
 * not take FUSE_HANDLE_KILLPRIV_V2 (fs_withheld_init_flags): its kernel clears set-id bits
 * with a SETATTR of the mode, as the original's own kernel does. */

#define XATTR_CAPS "security.capability"
#define XATTR_ACL_ACCESS "system.posix_acl_access"
#define CAP_PROBE_FRESH_NS 2000000000ull

static bool caller_in_group(const struct fuse_req_ctx *c, gid_t gid)
{
	if (c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->group_count; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

/* The set-id bits an unprivileged caller's write or truncate clears (setattr_should_drop_*). */
static mode_t setid_to_clear(const struct stat *st, const struct fuse_req_ctx *c)
{
	mode_t kill = st->st_mode & S_ISUID;
	if ((st->st_mode & S_ISGID) && ((st->st_mode & S_IXGRP) || !caller_in_group(c, st->st_gid)))
		kill |= S_ISGID;
	return kill;
}

/* chmod the `kill` bits away where they are set (the path is built only then). */
static int clear_setid(struct fs *fs, struct fs_node *n, const struct stat *st, mode_t kill)
{
	char path[FS_PROC_PATH_MAX];
	int fd, rc;
	if (!(st->st_mode & kill))
		return 0;
	fd = fs_node_fd(fs, n);
	if (fd < 0)
		return fd;
	fs_proc_path(fd, path);
	rc = sys_chmod(path, st->st_mode & ~kill & 07777);
	fs_node_fd_put(fs, n, fd);
	return rc;
}

/* For callers other than root (who holds CAP_FSETID): clear what their write clears. */
static int kill_setid(struct fs *fs, struct fs_node *n, const struct fuse_req_ctx *c)
{
	struct stat st;
	int rc;
	if (c->uid == 0 || n->type != S_IFREG)
		return 0;
	rc = fs_node_stat(fs, n, &st);
	return rc < 0 ? rc : clear_setid(fs, n, &st, setid_to_clear(&st, c));
}

/* The probe entry of nodeid (NULL: none). fs->cap_probes_lock held. */
static struct fs_cap_probe *cap_probe_find(struct fs *fs, uint64_t nodeid)
{
	for (int i = 0; i < FS_CAP_PROBES; i++)
		if (fs->cap_probes[i].nodeid == nodeid)
			return &fs->cap_probes[i];
	return NULL;
}

static void cap_probe_note(struct fs *fs, struct fs_node *n, uint32_t pid, bool removed)
{
	struct fs_cap_probe *p;
	pthread_mutex_lock(&fs->cap_probes_lock);
	p = cap_probe_find(fs, n->nodeid);
	if (!removed) {
		if (!p) {  /* a free entry, else the oldest probe */
			p = &fs->cap_probes[0];
			for (int i = 1; i < FS_CAP_PROBES && p->nodeid; i++)
				if (!fs->cap_probes[i].nodeid || fs->cap_probes[i].ns < p->ns)
					p = &fs->cap_probes[i];
		}
		*p = (struct fs_cap_probe){ .nodeid = n->nodeid, .pid = pid, .ns = clock_now_ns() };
	} else if (p && p->pid == pid) {
		p->removed = true;
	}
	pthread_mutex_unlock(&fs->cap_probes_lock);
}

/* 0: no fresh probe by pid; 1: probed; 2: probed, and the capabilities were removed since. */
static int cap_probe_take(struct fs *fs, struct fs_node *n, uint32_t pid)
{
	struct fs_cap_probe *p;
	int got = 0;
	pthread_mutex_lock(&fs->cap_probes_lock);
	p = cap_probe_find(fs, n->nodeid);
	if (p) {
		if (p->pid == pid && clock_now_ns() - p->ns < CAP_PROBE_FRESH_NS)
			got = p->removed ? 2 : 1;
		p->nodeid = 0;
	}
	pthread_mutex_unlock(&fs->cap_probes_lock);
	return got;
}

/* An attribute-less SETATTR after a capability probe: the kernel asks us to clear the set-id
 * bits for a write (if the caller is unprivileged) or for a chown(-1, -1) (set-user-ID always,
 * set-group-ID if group-executable). It has removed the capabilities itself, through
 * REMOVEXATTR, just before. From root, only chown sends it for a file without capabilities; with
 * capabilities, a write by root is assumed (its set-id bits stay; chown(-1, -1) by root of a
 * set-id file that also had capabilities is the one case this keeps them wrongly). */
static int kill_privs_request(struct fs *fs, struct fs_node *n, const struct fuse_req_ctx *c,
                              bool caps_removed)
{
	struct stat st;
	int rc = fs_node_stat(fs, n, &st);
	if (rc < 0)
		return rc;
	if (c->uid != 0)
		return clear_setid(fs, n, &st, setid_to_clear(&st, c));
	if (!caps_removed)
		return clear_setid(fs, n, &st, S_ISUID | ((st.st_mode & S_IXGRP) ? S_ISGID : 0));
	return 0;
}

/* An attribute-less SETATTR from chown(-1, -1) (or a write's kill-priv request, whose write
 * moves ctime anyway) must move ctime, as chown does on the origin; chown(-1, -1) by root does
 * it, and clears what root's chown clears (S_ISUID, S_ISGID with group execute: the same bits
 * kill_privs_request cleared before, or fewer). */
static int touch_ctime(int node_fd)
{
	return sys_fchownat(node_fd, "", (uid_t)-1, (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

/* Resolve name under a directory (node parent, borrowed fd dirfd) and take a lookup reference on
 * its node. A name whose inode has a node with a cached fd costs one fstatat; a new one an
 * O_PATH open, its fstat and its file handle (fs_node_acquire). */
static int lookup_at(struct fs *fs, struct fs_node *parent, int dirfd, const char *name,
                     struct fuse_entry_out *e)
{
	uint64_t gen = fs_watch_names_gen(fs, parent->nodeid, name);
	uint32_t name_gen = fs_node_name_gen(fs, parent, name);   /* before the name is looked at */
	struct fs_catalog_gens cgens;
	struct fs_node *n;
	struct stat st;
	int fd, rc;

	if (fs->catalog)
		fs_catalog_gens_sample(fs, &cgens);  /* a directory's stamp is kept only if current */
	rc = sys_fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0)
		return rc;
	n = fs_node_find_held(fs, &st);
	if (!n) {
		fd = fs_open_retry(fs, dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (rc < 0) {
			sys_close(fd);
			return rc;
		}
		rc = fs_node_acquire(fs, parent, name, name_gen, fd, &st, &n);
		if (rc < 0)
			return rc;
	}
	if (fs->catalog)
		fs_catalog_stamp_seen(fs, n, &st, &cgens);
	/* These attributes reach the kernel as a GETATTR's do (a LOOKUP, a READDIRPLUS entry): an
	 * open file's object is brought in step first, as for a GETATTR, or a reader served in
	 * user space could be told a size its object does not have yet, before the watcher's
	 * event arrives (difftest --behind with --no-passthrough: an empty read after a truncate
	 * behind, whose new size a listing had shown). */
	fs_cache_before_getattr(fs, n);
	entry_fill(fs, e, n, &st, entry_timeout(fs, parent, name, gen));
	return 0;
}

/* Node for an fd we just created or opened (create: as name under parent; tmpfile: parent and
 * name NULL): reach it by /proc, not by name, so a concurrent rename cannot make us describe
 * another file. (Its name generation is read here, after the create: a rename of the new name
 * through the mount between the two is not seen by it.) */
static int acquire_from_open_fd(struct fs *fs, struct fs_node *parent, const char *name, int fd,
                                struct fs_node **out, struct stat *st)
{
	char path[FS_PROC_PATH_MAX];
	int opath, rc;

	fs_proc_path(fd, path);
	opath = fs_open_retry(fs, AT_FDCWD, path, O_PATH | O_CLOEXEC, 0);
	if (opath < 0)
		return opath;
	rc = sys_fstatat(opath, "", st, AT_EMPTY_PATH);
	if (rc < 0) {
		sys_close(opath);
		return rc;
	}
	return fs_node_acquire(fs, parent, name, fs_node_name_gen(fs, parent, name), opath, st, out);
}

/* The caller's umask (FUSE_DONT_MASK: the kernel leaves it to us) is set on the creating thread,
 * so that the origin applies it exactly as to a local creation: not at all where the parent has
 * a default ACL, whose permissions replace it. A umask belongs to the fs_struct, which threads
 * share; each thread that creates unshares its own once (it starts with the daemon's umask 0).
 * 0: not tried yet, 1: this thread has its own, -1: it cannot (unshare failed). */
static __thread int thread_own_umask;
static __thread bool thread_umask_set;

static bool thread_umask_own(void)
{
	if (thread_own_umask == 0) {
		thread_own_umask = unshare(CLONE_FS) == 0 ? 1 : -1;
		if (thread_own_umask < 0)
			log_warn("cannot give a worker thread its own umask (unshare: %s): creations get "
			         "the umask applied by the daemon, also under a default ACL", strerror(errno));
	}
	return thread_own_umask > 0;
}

/* Run a creation with the caller's identity (per-thread fsuid/fsgid/groups, raw syscalls:
 * glibc's setgroups would change every thread) and umask. Returns the mode to create with:
 * `mode` as sent while the caller's umask is in force on this thread; where the thread cannot
 * have a umask of its own, `mode` masked here (a default ACL then loses its group bits, as
 * before FUSE_DONT_MASK: never more permissions than the caller's umask allows). */
static mode_t creds_enter(const struct fuse_req_ctx *c, mode_t mode, mode_t caller_umask)
{
	gid_t groups[FUSE_PROTO_MAX_GROUPS];
	for (uint32_t i = 0; i < c->group_count; i++)
		groups[i] = c->groups[i];
	syscall(SYS_setgroups, (size_t)c->group_count, groups);
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	caller_umask &= 0777;
	if (!caller_umask)
		return mode;
	if (!thread_umask_own())
		return mode & ~caller_umask;
	umask(caller_umask);
	thread_umask_set = true;
	return mode;
}

static void creds_leave(void)
{
	if (thread_umask_set) {
		umask(0);
		thread_umask_set = false;
	}
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	syscall(SYS_setgroups, (size_t)0, NULL);
}

/* Flags for the daemon's own fd: O_APPEND would turn page writeback (mmap) at an offset into an
 * append, and O_DIRECT needs aligned buffers we do not have; the kernel already resolved both.
 * O_NOFOLLOW was applied by the kernel to the name; on our /proc/self/fd reopen it would refuse
 * the magic link itself (ELOOP). */
static int own_open_flags(uint32_t flags)
{
	return (int)((flags & ~(uint32_t)(O_APPEND | O_DIRECT | O_NOCTTY | O_CREAT | O_EXCL |
	                                   O_NOFOLLOW)) | O_CLOEXEC);
}

#define GET_NODE(fs, r, n, ino) do { \
	(n) = fs_node_get((fs), (ino)); \
	if (!(n)) { fuse_reply_err((r), ESTALE); return; } \
} while (0)

/* Borrow the fd of node n for the operation (give it back with fs_node_fd_put before every
 * return after this); if it cannot be had, answer why and return. */
#define GET_NODE_FD(fs, r, n, fd) do { \
	(fd) = fs_node_fd((fs), (n)); \
	if ((fd) < 0) { fuse_reply_err((r), -(fd)); return; } \
} while (0)

/* An open file on our fd (>= 0), or deferred (fd -1): path_fd borrowed from the node's fd,
 * origin_flags for its late open. */
static struct fs_file *file_new(struct fs_node *n, int fd, int path_fd, int origin_flags,
                                uint32_t flags)
{
	struct fs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->node = n;
	atomic_init(&f->file.fd, fd);
	f->path_fd = path_fd;
	f->origin_flags = origin_flags;
	f->file.open_flags = (int)flags;
	return f;
}

/* Close what the open file holds (our fd if it was opened, the borrowed one) and free it. */
static void file_free(struct fs *fs, struct fs_file *f)
{
	int fd = atomic_load(&f->file.fd);
	if (fd >= 0)
		sys_close(fd);
	if (f->path_fd >= 0)
		fs_node_fd_put(fs, f->node, f->path_fd);
	free(f);
}

static struct fs_file *file_of(uint64_t fh) { return (struct fs_file *)(uintptr_t)fh; }

/* The open file a GETATTR or SETATTR names (`named`: FUSE_GETATTR_FH / FATTR_FH), or NULL:
 * none named, fh 0 (an --openless file: served from the node), or not a regular file. */
static struct fs_file *attr_file(const struct fs_node *n, bool named, uint64_t fh)
{
	return named && fh && n->type == S_IFREG ? file_of(fh) : NULL;
}

/* The open file of a request's handle fh: fh's own, or for fh 0 (a file the kernel opened
 * without OPEN, start --openless) the node's implicit one, which the request gives back with
 * PUT_FILE(fs, fh, f) before every return after this; if it cannot be had, answer why and
 * return. `write`: the request writes. */
#define GET_FILE(fs, r, ino, fh, write, f) do { \
	if (fh) { \
		(f) = file_of(fh); \
	} else { \
		struct fs_node *n_; \
		int err_; \
		GET_NODE((fs), (r), n_, (ino)); \
		(f) = fs_openless_file((fs), n_, (write), &err_); \
		if (!(f)) { fuse_reply_err((r), -err_); return; } \
	} \
} while (0)
#define PUT_FILE(fs, fh, f) do { if (!(fh)) fs_openless_put((fs), (f)); } while (0)
static struct fs_dir *dir_of(uint64_t fh) { return (struct fs_dir *)(uintptr_t)fh; }

/* ---- callbacks -------------------------------------------------------------------------- */

static void op_init(void *fsv, struct fuse_session *se, const struct fuse_proto_init_result *init)
{
	struct fs *fs = fsv;
	fs->session = se;
	fs->kernel_inc_epoch = init->kernel_major == 7 && init->kernel_minor >= 44;
	if (fs->cfg.openless) {
		snprintf(fs->passthrough_why, sizeof(fs->passthrough_why),
		         "off with --openless (the kernel opens files without asking the daemon)");
		if (!(init->offered & FUSE_NO_OPEN_SUPPORT))
			log_warn("the kernel does not say it opens files without OPEN "
			         "(FUSE_NO_OPEN_SUPPORT): --openless opens fail with ENOSYS");
	} else if (!fs->cfg.passthrough) {
		snprintf(fs->passthrough_why, sizeof(fs->passthrough_why), "disabled by --no-passthrough");
	} else if (!(init->granted & FUSE_PASSTHROUGH)) {
		snprintf(fs->passthrough_why, sizeof(fs->passthrough_why),
		         "the kernel (FUSE 7.%u) does not offer FUSE_PASSTHROUGH (needs Linux >= 6.9 "
		         "with CONFIG_FUSE_PASSTHROUGH)", init->kernel_minor);
	} else {
		atomic_store(&fs->passthrough_ok, true);
	}
}

static void op_forget(void *fsv, uint64_t ino, uint64_t nlookup)
{
	fs_node_forget(fsv, ino, nlookup);
	fs_openless_forget(fsv, ino);  /* the kernel dropped the inode: its implicit file goes */
}

static void op_lookup(struct fuse_req *r, uint64_t parent, const char *name)
{
	struct fs *fs = FS_OF(r);
	struct fuse_entry_out e;
	struct fs_node *p, *n;
	struct stat st;
	uint64_t gen;
	int rc, pfd;

	GET_NODE(fs, r, p, parent);
	gen = fs_watch_names_gen(fs, p->nodeid, name);
	/* The catalog first (fs_catalog.c): a valid listing answers without the origin. */
	rc = fs_catalog_lookup(fs, p, name, &st, &n);
	if (rc == 0) {
		entry_fill(fs, &e, n, &st, entry_timeout(fs, p, name, gen));
		fuse_reply_entry(r, &e);
		return;
	}
	if (rc == 1) {
		GET_NODE_FD(fs, r, p, pfd);
		rc = lookup_at(fs, p, pfd, name, &e);
		fs_node_fd_put(fs, p, pfd);
	}
	if (rc == -ENOENT) {
		/* A negative entry (nodeid 0): the kernel stops asking for a name that is not there
		 * until the watcher sees it created (INVAL_ENTRY drops negative dentries too), or,
		 * where nothing watches, for --entry-timeout, as it keeps the names that are there
		 * (git asks for a .gitattributes in every directory at every command: over sshfs a
		 * round trip to the server each). */
		memset(&e, 0, sizeof(e));
		split_timeout(entry_timeout(fs, p, name, gen), &e.entry_valid, &e.entry_valid_nsec);
		fuse_reply_entry(r, &e);
	} else if (rc < 0) {
		fuse_reply_err(r, -rc);
	} else {
		fuse_reply_entry(r, &e);
	}
}

/* Attributes valid for `valid` seconds. */
static void reply_attr_stat_for(struct fuse_req *r, const struct stat *st, double valid)
{
	struct fuse_attr_out a;
	memset(&a, 0, sizeof(a));
	split_timeout(valid, &a.attr_valid, &a.attr_valid_nsec);
	attr_from_stat(&a.attr, st);
	fuse_reply_attr(r, &a);
}

static void reply_attr_stat(struct fuse_req *r, const struct fs_node *n, const struct stat *st)
{
	reply_attr_stat_for(r, st, attr_timeout(FS_OF(r), n));
}

/* Whether some open file holds regular file n (its engine inode exists). */
static bool node_io_exists(struct fs *fs, struct fs_node *n)
{
	if (!fs_node_io_hold_existing(fs, n))
		return false;
	fs_node_io_release(fs, n);
	return true;
}

static void op_getattr(struct fuse_req *r, uint64_t ino, const struct fuse_getattr_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *n;
	struct fs_file *f;
	struct stat st;
	bool pending;
	int rc;

	GET_NODE(fs, r, n, ino);
	if (n->type == S_IFDIR && atomic_load(&n->listing_racy) &&
	    atomic_exchange(&n->listing_racy, false))   /* its cached listing goes first */
		fuse_session_notify_inval_inode(fs->session, n->nodeid, 0, 0);
	/* Its pages checked (fs_openless.h); on an error they were dropped, and the usual path
	 * answers (a file deleted elsewhere that an application holds: its fstat as without). */
	if (fs_openless_revalidate(fs, n, &st, &pending) == 1) {
		reply_attr_stat_for(r, &st, pending ? 0 : attr_timeout(fs, n));
		return;
	}
	if (fs_catalog_file_attr(fs, n, &st) == 0) {
		/* A file the catalog knows unchanged (fs_catalog.c): its object is in step already. */
		reply_attr_stat(r, n, &st);
		return;
	}
	fs_cache_before_getattr(fs, n);  /* an open object in step, mapped writes back (fs_int.h) */
	f = attr_file(n, in->getattr_flags & FUSE_GETATTR_FH, in->fh);
	if (f && fs_file_stat_fd(f) >= 0)  /* no late open */
		rc = sys_fstatat(fs_file_stat_fd(f), "", &st, AT_EMPTY_PATH);
	else if (fs_catalog_dir_attr(fs, n, &st) == 0)
		rc = 0;  /* a directory under the seal (fs_catalog.c) */
	else
		rc = fs_node_stat(fs, n, &st);
	if (rc == -ESTALE && n->type == S_IFREG && (f ? f->has_known : node_io_exists(fs, n))) {
		/* An open the catalog answered holds no fd on the original, which was unlinked behind
		 * since: an fstat on the original would say nlink 0 (tail -f goes on). An fstat
		 * names no open file (no FUSE_GETATTR_FH): the attributes the catalog kept then. */
		if (f) {
			st = f->known;
			rc = 0;
		} else {
			rc = fs_catalog_file_attr_kept(fs, n, &st) == 0 ? 0 : -ESTALE;
		}
		st.st_nlink = 0;
	}
	if (rc < 0)
		fuse_reply_err(r, -rc);
	else
		reply_attr_stat(r, n, &st);
}

#define FATTR_ANY_ATTRIBUTE (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | \
                             FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_CTIME)

static void op_setattr(struct fuse_req *r, uint64_t ino, const struct fuse_setattr_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *n;
	struct fs_file *f;
	char path[FS_PROC_PATH_MAX];
	struct stat st;
	int nfd, ffd = -1, rc = 0;

	GET_NODE(fs, r, n, ino);
	GET_NODE_FD(fs, r, n, nfd);
	f = attr_file(n, in->valid & FATTR_FH, in->fh);
	/* Only a truncate needs the open file itself (opened now if it was deferred); a chmod,
	 * chown or utimens reaches its inode by path: its fd, or a deferred open's O_PATH fd. */
	if (f && (in->valid & FATTR_SIZE) && (ffd = fs_file_origin_fd(fs, f)) < 0) {
		fs_node_fd_put(fs, n, nfd);
		fuse_reply_err(r, -ffd);
		return;
	}
	fs_proc_path(f && fs_file_stat_fd(f) >= 0 ? fs_file_stat_fd(f) : nfd, path);

	if (in->valid & FATTR_MODE) {
		rc = sys_chmod(path, in->mode);
	} else if (in->valid & FATTR_KILL_SUIDGID) {
		rc = kill_setid(fs, n, fuse_req_ctx(r));
	} else if (!(in->valid & FATTR_ANY_ATTRIBUTE) && n->type == S_IFREG) {
		int probe = cap_probe_take(fs, n, fuse_req_ctx(r)->pid);
		if (probe)
			rc = kill_privs_request(fs, n, fuse_req_ctx(r), probe == 2);
		/* Not after root's write of a file with capabilities: its REMOVEXATTR moved ctime. */
		if (rc == 0 && probe && !(fuse_req_ctx(r)->uid == 0 && probe == 2))
			rc = touch_ctime(nfd);
	} else if (!(in->valid & FATTR_ANY_ATTRIBUTE)) {
		rc = touch_ctime(nfd);
	}
	if (rc == 0 && (in->valid & (FATTR_UID | FATTR_GID))) {
		uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
		gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;
		rc = sys_fchownat(nfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (rc == 0 && (in->valid & FATTR_SIZE)) {
		struct engine_inode *io = fs_cache_change_begin(fs, n);
		if (!io) {
			rc = -ENOMEM;
		} else {
			rc = f ? sys_ftruncate(ffd, (off_t)in->size) : sys_truncate(path, (off_t)in->size);
			if (rc == 0)
				engine_write_changed(fs->engine, io, true, (off_t)in->size, 0, 0);
			fs_cache_change_end(fs, n, io);
		}
	}
	if (rc == 0 && (in->valid & (FATTR_ATIME | FATTR_MTIME))) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		if (in->valid & FATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (in->valid & FATTR_ATIME)
			ts[0] = (struct timespec){ (time_t)in->atime, in->atimensec };
		if (in->valid & FATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (in->valid & FATTR_MTIME)
			ts[1] = (struct timespec){ (time_t)in->mtime, in->mtimensec };
		rc = sys_utimensat(nfd, "", ts, AT_EMPTY_PATH);
	}
	if (rc == 0) {
		fs_cache_metadata_changed(fs, n);
		rc = sys_fstatat(nfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	/* A directory's own attributes may be answered from the catalog (fs_catalog_dir_attr):
	 * not any more. A file's entry in its parent's record goes with the watcher's event. */
	if (n->type == S_IFDIR)
		fs_catalog_dir_changed(fs, n);
	fs_node_fd_put(fs, n, nfd);
	if (rc < 0)
		fuse_reply_err(r, -rc);
	else
		reply_attr_stat(r, n, &st);
}

static void op_readlink(struct fuse_req *r, uint64_t ino)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *n;
	char *buf = fuse_req_scratch(r);
	ssize_t len;

	int nfd;

	GET_NODE(fs, r, n, ino);
	GET_NODE_FD(fs, r, n, nfd);
	len = sys_readlinkat(nfd, "", buf, FUSE_SESSION_SCRATCH);
	fs_node_fd_put(fs, n, nfd);
	if (len < 0)
		fuse_reply_err(r, (int)-len);
	else
		fuse_reply_data(r, buf, (size_t)len);
}

/* After a creation by name: look the new entry up and answer with it. */
/* The entry of a name just made under parent (rc: how making it went), then parent_fd given
 * back, then the reply: once the reply is out the kernel may forget parent (a BATCH_FORGET on
 * another thread frees the node), so nothing of it is touched after. */
static void reply_created_entry(struct fuse_req *r, struct fs_node *parent, int parent_fd,
                                const char *name, int rc)
{
	struct fuse_entry_out e;
	if (rc == 0) {
		fs_catalog_dir_changed(FS_OF(r), parent);
		rc = lookup_at(FS_OF(r), parent, parent_fd, name, &e);
	}
	fs_node_fd_put(FS_OF(r), parent, parent_fd);
	if (rc < 0)
		fuse_reply_err(r, -rc);
	else
		fuse_reply_entry(r, &e);
}

static void op_mknod(struct fuse_req *r, uint64_t parent, const char *name,
                     const struct fuse_mknod_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	mode_t mode;
	int pfd, rc;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	mode = creds_enter(fuse_req_ctx(r), in->mode, in->umask);
	rc = sys_mknodat(pfd, name, mode, in->rdev);
	creds_leave();
	reply_created_entry(r, p, pfd, name, rc);
}

static void op_mkdir(struct fuse_req *r, uint64_t parent, const char *name,
                     const struct fuse_mkdir_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	mode_t mode;
	int pfd, rc;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	mode = creds_enter(fuse_req_ctx(r), in->mode, in->umask);
	rc = sys_mkdirat(pfd, name, mode);
	creds_leave();
	reply_created_entry(r, p, pfd, name, rc);
}

static void op_symlink(struct fuse_req *r, uint64_t parent, const char *name, const char *target)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	int pfd, rc;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	creds_enter(fuse_req_ctx(r), 0, 0);  /* a symlink's mode is always 0777 */
	rc = sys_symlinkat(target, pfd, name);
	creds_leave();
	reply_created_entry(r, p, pfd, name, rc);
}

static void op_link(struct fuse_req *r, uint64_t ino, uint64_t newparent, const char *newname)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *n, *p;

	int nfd, pfd, rc;

	GET_NODE(fs, r, n, ino);
	GET_NODE(fs, r, p, newparent);
	GET_NODE_FD(fs, r, n, nfd);
	pfd = fs_node_fd(fs, p);
	if (pfd < 0) {
		fs_node_fd_put(fs, n, nfd);
		fuse_reply_err(r, -pfd);
		return;
	}
	rc = sys_linkat(nfd, "", pfd, newname, AT_EMPTY_PATH);
	fs_node_fd_put(fs, n, nfd);
	if (rc == 0)
		fs_cache_metadata_changed(fs, n);
	reply_created_entry(r, p, pfd, newname, rc);
}

/* A name about to go or move through the mount (unlink, rmdir, rename): what it leads to, looked
 * up once for everything that needs it (the cache's last-name check, the node's flags and
 * fingerprint, keeping the fd of a node reached by that name). */
struct leaving_name {
	bool found;
	struct stat st;
	struct fs_node *node;         /* with a reference (drop it), or NULL: the kernel holds none */
};

static void leaving_name(struct fs *fs, int dirfd, const char *name, struct leaving_name *l)
{
	l->node = NULL;
	l->found = sys_fstatat(dirfd, name, &l->st, AT_SYMLINK_NOFOLLOW) == 0;
	if (l->found && (l->node = fs_node_find_ref(fs, &l->st)))
		fs_node_name_leaving(fs, l->node);
}

/* Before l's name goes (unlink, rename over it), for a regular file whose last name this is:
 * - on an openless mount no open file of ours keeps its inode, while the kernel's open files
 *   of it still send requests (with fh 0): its node keeps an O_PATH fd until FORGET, through
 *   which its implicit file can be opened again (fs_openless.h);
 * - else, on an unwatched original, deferred opens (open_deferrable) hold no fd that keeps
 *   the file open for a FUSE server: it is opened and kept (fs_node_hold_open). */
static void last_name_leaving(struct fs *fs, const struct leaving_name *l)
{
	if (!l->node || !S_ISREG(l->st.st_mode) || l->st.st_nlink > 1)
		return;
	if (fs->cfg.openless)
		fs_node_pin_fd(fs, l->node);
	else
		fs_node_hold_open(fs, l->node);
}

/* After a link count change by name: refresh the fingerprint, then drop the reference. */
static void name_metadata_changed(struct fs *fs, struct fs_node *n)
{
	if (!n)
		return;
	fs_cache_metadata_changed(fs, n);
	fs_node_forget(fs, n->nodeid, 1);
}

static void op_unlink(struct fuse_req *r, uint64_t parent, const char *name)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p, *victim;
	struct leaving_name l;
	struct cache_key gone;
	bool last;
	int pfd, rc;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	leaving_name(fs, pfd, name, &l);
	victim = l.node;
	last_name_leaving(fs, &l);
	last = l.found && fs_cache_last_name(fs, p, name, &l.st, &gone);
	fs_node_name_changing(fs, p, name);
	rc = sys_unlinkat(pfd, name, 0);
	fs_node_name_changing(fs, p, name);
	fs_node_fd_put(fs, p, pfd);
	if (rc == 0)
		fs_catalog_dir_changed(fs, p);
	if (rc == 0 && last)
		fs_cache_file_deleted(fs, gone);
	if (rc == 0 && victim) {
		atomic_store(&victim->unlinked_by_us, true);
		fs_cache_metadata_changed(fs, victim);
	}
	if (victim)
		fs_node_forget(fs, victim->nodeid, 1);
	fuse_reply_err(r, -rc);
}

static void op_rmdir(struct fuse_req *r, uint64_t parent, const char *name)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	struct leaving_name l = { .node = NULL };
	int pfd, rc;
	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	if (fs_node_names_in_use(fs))  /* else nothing needs the name's stat */
		leaving_name(fs, pfd, name, &l);
	fs_node_name_changing(fs, p, name);
	rc = sys_unlinkat(pfd, name, AT_REMOVEDIR);
	fs_node_name_changing(fs, p, name);
	fs_node_fd_put(fs, p, pfd);
	if (rc == 0)
		fs_catalog_dir_changed(fs, p);
	if (l.node)
		fs_node_forget(fs, l.node->nodeid, 1);
	fuse_reply_err(r, -rc);
}

static void op_rename(struct fuse_req *r, uint64_t parent, const char *name, uint64_t newparent,
                      const char *newname, uint32_t flags)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p, *np;
	struct fs_node *moved, *replaced;
	struct leaving_name from, to;
	struct cache_key gone, moved_key, swapped_key;
	bool last, moved_keyed = false, swapped_keyed = false;
	int pfd, npfd, rc;

	GET_NODE(fs, r, p, parent);
	GET_NODE(fs, r, np, newparent);
	GET_NODE_FD(fs, r, p, pfd);
	npfd = fs_node_fd(fs, np);
	if (npfd < 0) {
		fs_node_fd_put(fs, p, pfd);
		fuse_reply_err(r, -npfd);
		return;
	}
	leaving_name(fs, pfd, name, &from);
	leaving_name(fs, npfd, newname, &to);
	moved = from.node;
	replaced = to.node;
	if (!(flags & RENAME_EXCHANGE))
		last_name_leaving(fs, &to);
	last = !(flags & RENAME_EXCHANGE) && to.found &&
	       fs_cache_last_name(fs, np, newname, &to.st, &gone);
	/* Where the cache knows files by path, a copy kept under a name that moves would belong to
	 * whatever takes that name next: it goes with the name (at its last release if open). */
	if (fs->files_by_path && from.found && S_ISREG(from.st.st_mode))
		moved_keyed = fs_cache_name_key(fs, p, name, &from.st, &moved_key) == 0;
	if (fs->files_by_path && (flags & RENAME_EXCHANGE) && to.found && S_ISREG(to.st.st_mode))
		swapped_keyed = fs_cache_name_key(fs, np, newname, &to.st, &swapped_key) == 0;
	fs_node_name_changing(fs, p, name);
	fs_node_name_changing(fs, np, newname);
	rc = sys_renameat2(pfd, name, npfd, newname, flags);
	fs_node_name_changing(fs, p, name);
	fs_node_name_changing(fs, np, newname);
	fs_node_fd_put(fs, p, pfd);
	fs_node_fd_put(fs, np, npfd);
	if (rc == 0) {
		fs_catalog_dir_changed(fs, p);
		fs_catalog_dir_changed(fs, np);
		if (moved && moved->type == S_IFDIR)
			fs_catalog_dir_changed(fs, moved);
	}
	if (rc == 0 && last)
		fs_cache_file_deleted(fs, gone);
	if (rc == 0 && moved_keyed)
		fs_cache_file_deleted(fs, moved_key);
	if (rc == 0 && swapped_keyed)
		fs_cache_file_deleted(fs, swapped_key);
	/* Before the reply: the kernel may forget p and np once it has it. */
	if (rc == 0 && fs->files_by_path && from.found && S_ISDIR(from.st.st_mode))
		fs_cache_tree_moved(fs, p, name, np, newname);
	if (rc == 0 && fs->files_by_path && (flags & RENAME_EXCHANGE) && to.found &&
	    S_ISDIR(to.st.st_mode))
		fs_cache_tree_moved(fs, np, newname, p, name);
	if (rc == 0) {
		if (replaced && !(flags & RENAME_EXCHANGE))
			atomic_store(&replaced->unlinked_by_us, true);
		name_metadata_changed(fs, moved);
		name_metadata_changed(fs, replaced);
	} else {
		if (moved)
			fs_node_forget(fs, moved->nodeid, 1);
		if (replaced)
			fs_node_forget(fs, replaced->nodeid, 1);
	}
	fuse_reply_err(r, -rc);
}

/* O_TRUNC of a regular file opened for writing is done by fs_file_attach, under the node's
 * locks together with the cache object, so no reader of the object sees it half done. */
static int deferred_trunc(mode_t type, uint32_t flags)
{
	return type == S_IFREG && (flags & O_ACCMODE) != O_RDONLY ? O_TRUNC : 0;
}

/* May the open of the origin file wait for the first request that needs it (struct fs_file)?
 * A read-only open without O_TRUNC of a regular file, where one of two things keeps the cache
 * copy in step with the origin instead of the open:
 * - the change watcher covers the file: the open's fingerprint check then needs no open (the
 *   O_PATH fd's attributes are the inode's);
 * - it does not (a network original, a file system mounted below), and an open that did open
 *   the original found the copy matching it less than --attr-timeout ago
 *   (origin_confirmed_ns): the network contract is close-to-open with changes by another
 *   client seen after the attribute timeout, which the kernel already applies to names and
 *   attributes. The open of the original is the revalidation (sshfs, for one, refreshes a
 *   file's attributes only at an open, while a stat through an O_PATH fd may be answered from
 *   its attribute cache): within the timeout the copy confirmed is what the contract allows,
 *   past it the open goes to the original again. The fingerprint is still checked (the O_PATH
 *   fd's stat), and an open that is not a hit passed through to the copy opens the original
 *   at once (op_open).
 * Writers open at once: their writes go to the origin first. now: clock_now_ns() (unwatched
 * only). */
static bool open_deferrable(struct fs *fs, const struct fs_node *n, uint32_t flags, bool watched,
                            uint64_t now)
{
	int64_t confirmed;

	if (n->type != S_IFREG || (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return false;
	if (watched)
		return true;
	confirmed = atomic_load_explicit(&n->origin_confirmed_ns, memory_order_relaxed);
	return confirmed > 0 && (double)(now - (uint64_t)confirmed) < fs->cfg.attr_timeout * 1e9;
}

/* After the attach of an open of a regular file the watcher does not cover (open_deferrable):
 * - it opened the original: the kernel's cached attributes of the file are dropped. They
 *   came from a reply of ours within --attr-timeout, which answered what the original's file
 *   system knew then: for sshfs its own attribute cache, refreshed only at an open (OPEN and
 *   STAT), so while opens were deferred up to 20 s old; the open just refreshed it;
 * - it opened the original, read-only, and passed through to the copy (the fingerprint
 *   matched): the copy is confirmed as of now, the deferral's window starts again;
 * - it was deferred but is not such a hit (the copy changed, went, or is read through the
 *   daemon): the original is opened now, as without the deferral, so that its reads never
 *   depend on a later open by name (a file deleted meanwhile by another client);
 * - a writer: the window ends (its writes change the original; the next reader confirms).
 * 0 or -errno (the late open failed). */
static int open_unwatched_done(struct fs *fs, struct fs_node *n, struct fs_file *f, uint64_t now)
{
	bool deferred = f->path_fd >= 0;
	int rc;

	if (!deferred)
		fs_cache_attr_invalidate(fs, n);
	if ((f->file.open_flags & O_ACCMODE) != O_RDONLY) {
		atomic_store_explicit(&n->origin_confirmed_ns, 0, memory_order_relaxed);
	} else if (!deferred && f->copy_hit) {
		atomic_store_explicit(&n->origin_confirmed_ns, (int64_t)now, memory_order_relaxed);
	} else if (deferred && !f->copy_hit) {
		atomic_store_explicit(&n->origin_confirmed_ns, 0, memory_order_relaxed);
		rc = fs_file_origin_fd(fs, f);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void op_open(struct fuse_req *r, uint64_t ino, const struct fuse_open_in *in)
{
	struct fs *fs = FS_OF(r);
	struct cm_fuse_open_out o;
	struct fs_node *n;
	struct fs_file *f;
	struct stat known;
	bool known_current = false;   /* the catalog's attributes (sealed, or read in this run) */
	int fd = -1, path_fd = -1, flags, rc;
	bool watched;
	uint64_t now;

	if (fs->cfg.openless) {  /* the kernel opens every file itself from now on (fs_openless.h) */
		fuse_reply_err(r, ENOSYS);
		return;
	}
	GET_NODE(fs, r, n, ino);
	watched = fs_watch_covers(fs, n);
	now = watched ? 0 : clock_now_ns();   /* before the open: what it confirms is this recent */
	flags = own_open_flags(in->flags) & ~deferred_trunc(n->type, in->flags);
	if (!open_deferrable(fs, n, in->flags, watched, now))
		rc = fd = fs_node_open(fs, n, flags);
	else if (watched && (known_current = fs_catalog_file_attr(fs, n, &known) == 0))
		rc = 0;                             /* known current (fs_catalog.c): no fd at all */
	else
		rc = path_fd = fs_node_fd(fs, n);   /* held until the release */
	if (rc < 0) {
		fuse_reply_err(r, -rc);
		return;
	}
	f = file_new(n, fd, path_fd, flags, in->flags);
	if (!f) {
		if (fd >= 0)
			sys_close(fd);
		if (path_fd >= 0)
			fs_node_fd_put(fs, n, path_fd);
		fuse_reply_err(r, ENOMEM);
		return;
	}
	rc = fs_cache_attach_known(fs, f, known_current ? &known : NULL, &o);
	if (rc < 0) {
		file_free(fs, f);
		fuse_reply_err(r, -rc);
		return;
	}
	if (!watched && n->type == S_IFREG) {
		rc = open_unwatched_done(fs, n, f, now);
		if (rc < 0) {
			fs_cache_detach(fs, f);
			file_free(fs, f);
			fuse_reply_err(r, -rc);
			return;
		}
	}
	if ((in->open_flags & FUSE_OPEN_KILL_SUIDGID) && deferred_trunc(n->type, in->flags)) {
		rc = kill_setid(fs, n, fuse_req_ctx(r));
		if (rc < 0)
			log_warn("open: clearing set-id bits after O_TRUNC failed: %s", strerror(-rc));
	}
	fuse_reply_open(r, &o);
}

/* Finish create/tmpfile: the new file is open as fd. */
static void reply_new_file(struct fuse_req *r, struct fs_node *parent, const char *name, int fd,
                           uint32_t flags, bool tmpfile)
{
	struct fs *fs = FS_OF(r);
	struct fuse_entry_out e;
	struct cm_fuse_open_out o;
	struct fs_node *n;
	struct fs_file *f;
	struct stat st;
	int rc = acquire_from_open_fd(fs, parent, name, fd, &n, &st);

	if (rc < 0) {
		sys_close(fd);
		fuse_reply_err(r, -rc);
		return;
	}
	if (tmpfile)  /* nameless by design: reopening it through /proc is not a stale name */
		atomic_store(&n->unlinked_by_us, true);
	if (fs->cfg.openless && tmpfile)
		fs_node_pin_fd(fs, n);  /* its only way back once our fd closes (openless below) */
	if (fs->cfg.openless && (st.st_size == 0 || !deferred_trunc(S_IFREG, flags))) {
		/* Openless, nothing to truncate (a new file, or no O_TRUNC): no open state at all
		 * (see below); the first request opens the implicit file. */
		sys_close(fd);
		memset(&o, 0, sizeof(o));
		o.open_flags = FOPEN_NOFLUSH;
		goto reply;
	}
	f = file_new(n, fd, -1, 0, flags);
	if (!f) {
		sys_close(fd);
		fs_node_forget(fs, n->nodeid, 1);
		fuse_reply_err(r, ENOMEM);
		return;
	}
	rc = fs_cache_attach(fs, f, &o);
	if (rc < 0) {
		file_free(fs, f);
		fs_node_forget(fs, n->nodeid, 1);
		fuse_reply_err(r, -rc);
		return;
	}
	if (fs->cfg.openless) {
		/* The kernel sends no RELEASE on a connection without opens (Linux 6.18 and later),
		 * for files it opened by CREATE too: nothing may be left for one. The attach did
		 * what this open needed (O_TRUNC of an existing file with its cache object); the
		 * file's requests come with fh 0 and are served by its implicit file, which
		 * reopens the inode: by handle, or through the node's O_PATH fd, which an
		 * O_TMPFILE's node keeps until FORGET (FS_REACH_FD). */
		fs_cache_detach(fs, f);
		file_free(fs, f);
		o.fh = 0;
	}
reply:
	/* Made through the mount: the kernel's dentry is right without an invalidation. */
	entry_fill(fs, &e, n, &st,
	           parent ? entry_timeout(fs, parent, name, fs_watch_names_gen(fs, parent->nodeid, name))
	                  : fs->cfg.entry_timeout);
	fuse_reply_create(r, &e, &o);
}

static void op_create(struct fuse_req *r, uint64_t parent, const char *name,
                      const struct fuse_create_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	mode_t mode;
	/* O_TRUNC of an existing file is left to fs_file_attach (see deferred_trunc). */
	int fd, flags = (own_open_flags(in->flags) & ~deferred_trunc(S_IFREG, in->flags)) | O_CREAT |
	                (int)(in->flags & O_EXCL);

	int pfd;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	mode = creds_enter(fuse_req_ctx(r), in->mode, in->umask);
	fd = fs_open_retry(fs, pfd, name, flags, mode);
	creds_leave();
	fs_node_fd_put(fs, p, pfd);
	if (fd < 0) {
		fuse_reply_err(r, -fd);
		return;
	}
	fs_catalog_dir_changed(fs, p);
	reply_new_file(r, p, name, fd, in->flags, false);
}

static void op_tmpfile(struct fuse_req *r, uint64_t parent, const struct fuse_create_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *p;
	mode_t mode;
	int fd, flags = (own_open_flags(in->flags) & ~(O_TMPFILE | O_TRUNC)) | O_TMPFILE |
	                (int)(in->flags & O_EXCL);

	int pfd;

	GET_NODE(fs, r, p, parent);
	GET_NODE_FD(fs, r, p, pfd);
	mode = creds_enter(fuse_req_ctx(r), in->mode, in->umask);
	fd = fs_open_retry(fs, pfd, ".", flags, mode);
	creds_leave();
	fs_node_fd_put(fs, p, pfd);
	if (fd < 0) {
		fuse_reply_err(r, -fd);
		return;
	}
	reply_new_file(r, NULL, NULL, fd, in->flags, true);
}

/* The engine fills the thread's scratch buffer (or points into a read-ahead piece); the reply
 * goes out before the engine's work after it (a fill, the read-ahead window). */
static void op_read(struct fuse_req *r, uint64_t ino, const struct fuse_read_in *in)
{
	struct fs *fs = FS_OF(r);
	struct engine_read_after after;
	size_t size = in->size < FUSE_SESSION_SCRATCH ? in->size : FUSE_SESSION_SCRATCH;
	const void *data;
	struct fs_file *f;
	ssize_t n;

	GET_FILE(fs, r, ino, in->fh, false, f);
	n = engine_read(fs->engine, &f->file, fuse_req_scratch(r), FUSE_SESSION_SCRATCH, size,
	                in->offset, &data, &after);
	if (n < 0)
		fuse_reply_err(r, (int)-n);
	else
		fuse_reply_data(r, data, (size_t)n);
	engine_read_after(fs->engine, &after);
	PUT_FILE(fs, in->fh, f);
}

static void op_write(struct fuse_req *r, uint64_t ino, const struct fuse_write_in *in,
                     const void *data)
{
	struct fs *fs = FS_OF(r);
	struct fs_file *f;
	ssize_t w;

	GET_FILE(fs, r, ino, in->fh, true, f);
	if (in->write_flags & FUSE_WRITE_KILL_SUIDGID) {
		int rc = kill_setid(fs, f->node, fuse_req_ctx(r));
		if (rc < 0) {
			PUT_FILE(fs, in->fh, f);
			fuse_reply_err(r, -rc);
			return;
		}
	}
	w = engine_write(fs->engine, &f->file, data, in->size, in->offset);
	PUT_FILE(fs, in->fh, f);
	if (w < 0)
		fuse_reply_err(r, (int)-w);
	else
		fuse_reply_write(r, (uint32_t)w);
}

static void op_flush(struct fuse_req *r, uint64_t ino, const struct fuse_flush_in *in)
{
	/* Writes are synchronous to the origin; locks are the kernel's. Nothing to flush. A file
	 * opened without OPEN (fh 0) has no FOPEN_NOFLUSH: ENOSYS stops FLUSH on the connection. */
	fuse_reply_err(r, in->fh ? 0 : ENOSYS);
}

static void op_release(struct fuse_req *r, uint64_t ino, const struct fuse_release_in *in)
{
	struct fs_file *f = file_of(in->fh);
	if (!f) {  /* never sent for a file opened without OPEN */
		fuse_reply_err(r, 0);
		return;
	}
	fs_cache_detach(FS_OF(r), f);
	file_free(FS_OF(r), f);
	fuse_reply_err(r, 0);
}

static void op_fsync(struct fuse_req *r, uint64_t ino, const struct fuse_fsync_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_file *f;
	int fd, rc;

	GET_FILE(fs, r, ino, in->fh, false, f);
	engine_write_sync(fs->engine, &f->file);
	/* The original's own dirty data too (another writer's), as an fsync of it would. */
	fd = fs_file_origin_fd(fs, f);
	rc = fd < 0 ? fd : sys_fsync(fd, in->fsync_flags & FUSE_FSYNC_FDATASYNC);
	/* A read-only open the catalog answered holds no fd: once the file is unlinked behind
	 * there is no original to reach, and nothing of ours to write. Nor has a deferred one on a
	 * network original whose file another client deleted (the late open by its name: ENOENT). */
	if ((rc == -ESTALE || (rc == -ENOENT && f->path_fd >= 0 && !fs_watch_covers(fs, f->node))) &&
	    (f->has_known || f->path_fd >= 0) && (f->file.open_flags & O_ACCMODE) == O_RDONLY)
		rc = 0;
	PUT_FILE(fs, in->fh, f);
	fuse_reply_err(r, -rc);
}

static void op_statfs(struct fuse_req *r, uint64_t ino)
{
	struct fs *fs = FS_OF(r);
	struct fs_node *n = fs_node_get(fs, ino);
	struct statvfs st;
	int fd, rc;

	if (!n)
		n = fs->root;
	/* Per file system (and mount): a node on the origin's own mount asks through the root's
	 * fd, which is always open, so that find's statfs of every directory opens no inode. */
	if (n->reach == FS_REACH_HANDLE && n->mount == 0 && n->dev == fs->root->dev)
		n = fs->root;
	GET_NODE_FD(fs, r, n, fd);
	rc = sys_fstatvfs(fd, &st);
	fs_node_fd_put(fs, n, fd);
	if (rc < 0)
		fuse_reply_err(r, -rc);
	else
		fuse_reply_statfs(r, &st);
}

/* xattrs go through the node's /proc/self/fd path, symlinks included: the magic link leads to
 * the symlink itself and is not followed further, so trusted.* and security.* xattrs of a
 * symlink work as on the origin (the kernel refuses user.* on symlinks before asking us). */

/* An xattr changed: the origin moved the inode's ctime, and a POSIX access ACL also rewrites
 * the group bits of its mode, which the kernel does not update in its cached attributes for
 * other names (it sends no attributes with SETXATTR; only an ACL set makes it invalidate them
 * itself). What fs_xattr.c knew of the inode goes: counted after the call, so that a probe that
 * overlapped it fails its compare-and-swap (an answer of "none" given before the call ended is
 * concurrent with it). */
static void xattr_changed(struct fs *fs, struct fs_node *n)
{
	fs_xattr_changed(n);
	fs_cache_metadata_changed(fs, n);
	fs_cache_attr_invalidate(fs, n);
}

/* The answer to GETXATTR or LISTXATTR: its size when the kernel asked with size 0, else the
 * len bytes at buf; or the error len holds. */
static void reply_xattr(struct fuse_req *r, uint32_t size, const void *buf, ssize_t len)
{
	if (len < 0)
		fuse_reply_err(r, (int)-len);
	else if (size == 0)
		fuse_reply_xattr_size(r, (uint32_t)len);
	else
		fuse_reply_data(r, buf, (size_t)len);
}

static void op_setxattr(struct fuse_req *r, uint64_t ino, const char *name, const void *value,
                        size_t size, uint32_t flags, uint32_t setxattr_flags)
{
	struct fs *fs = FS_OF(r);
	char path[FS_PROC_PATH_MAX];
	struct fs_node *n;
	int nfd, rc;

	GET_NODE(fs, r, n, ino);
	GET_NODE_FD(fs, r, n, nfd);
	fs_proc_path(nfd, path);
	rc = sys_setxattr(path, name, value, size, (int)flags);
	/* The kernel asks that an access ACL set by a caller outside the file's group, without
	 * CAP_FSETID, clear the setgid bit, as a local file system does; ours runs as root. */
	if (rc == 0 && (setxattr_flags & FUSE_SETXATTR_ACL_KILL_SGID) &&
	    strcmp(name, XATTR_ACL_ACCESS) == 0) {
		struct stat st;
		int krc = sys_fstatat(nfd, "", &st, AT_EMPTY_PATH);
		if (krc == 0)
			krc = clear_setid(fs, n, &st, S_ISGID);
		if (krc < 0)
			log_warn("setting an ACL: clearing the setgid bit failed: %s", strerror(-krc));
	}
	fs_node_fd_put(fs, n, nfd);
	if (rc == 0)
		xattr_changed(fs, n);
	fuse_reply_err(r, -rc);
}

static void op_getxattr(struct fuse_req *r, uint64_t ino, const char *name, uint32_t size)
{
	struct fs *fs = FS_OF(r);
	char path[FS_PROC_PATH_MAX];
	struct fs_node *n;
	void *buf = fuse_req_scratch(r);
	unsigned sample;
	ssize_t len;
	int nfd, known;

	GET_NODE(fs, r, n, ino);
	if (fs_xattr_unsupported(fs)) {  /* the original has none at all: the kernel stops asking */
		fuse_reply_err(r, ENOSYS);
		return;
	}
	if (n->type == S_IFREG && strcmp(name, XATTR_CAPS) == 0)
		cap_probe_note(fs, n, fuse_req_ctx(r)->pid, false);
	if ((known = fs_xattr_get_known(fs, n, name)) > 0) {
		fuse_reply_err(r, known);  /* it has no xattrs (fs_xattr.c) */
		return;
	}
	sample = fs_xattr_sample(n);
	GET_NODE_FD(fs, r, n, nfd);
	fs_proc_path(nfd, path);
	if (fs_xattr_probe_wanted(fs, n, sample)) {
		fs_xattr_listed(n, sample, sys_listxattr(path, NULL, 0));
		sample = fs_xattr_sample(n);
	}
	/* size 0 asks for the value's size only */
	len = sys_getxattr(path, name, size ? buf : NULL,
	                   size < FUSE_SESSION_SCRATCH ? size : FUSE_SESSION_SCRATCH);
	fs_node_fd_put(fs, n, nfd);
	fs_xattr_got(fs, n, sample, name, len);
	reply_xattr(r, size, buf, len);
}

static void op_listxattr(struct fuse_req *r, uint64_t ino, uint32_t size)
{
	struct fs *fs = FS_OF(r);
	char path[FS_PROC_PATH_MAX];
	struct fs_node *n;
	char *buf = fuse_req_scratch(r);
	unsigned sample;
	bool probe;
	ssize_t len;
	int nfd;

	GET_NODE(fs, r, n, ino);
	if (fs_xattr_unsupported(fs)) {  /* as in op_getxattr */
		fuse_reply_err(r, ENOSYS);
		return;
	}
	if (fs_xattr_none_known(fs, n)) {  /* it has none (fs_xattr.c) */
		reply_xattr(r, size, buf, 0);
		return;
	}
	sample = fs_xattr_sample(n);
	probe = fs_xattr_probe_wanted(fs, n, sample);  /* before the call: see fs_xattr_listed */
	GET_NODE_FD(fs, r, n, nfd);
	fs_proc_path(nfd, path);
	len = sys_listxattr(path, size ? buf : NULL,
	                    size < FUSE_SESSION_SCRATCH ? size : FUSE_SESSION_SCRATCH);
	fs_node_fd_put(fs, n, nfd);
	if (probe)
		fs_xattr_listed(n, sample, len);
	reply_xattr(r, size, buf, len);
}

static void op_removexattr(struct fuse_req *r, uint64_t ino, const char *name)
{
	struct fs *fs = FS_OF(r);
	char path[FS_PROC_PATH_MAX];
	struct fs_node *n;
	int nfd, rc;

	GET_NODE(fs, r, n, ino);
	GET_NODE_FD(fs, r, n, nfd);
	fs_proc_path(nfd, path);
	rc = sys_removexattr(path, name);
	fs_node_fd_put(fs, n, nfd);
	if (rc == 0 && n->type == S_IFREG && strcmp(name, XATTR_CAPS) == 0)
		cap_probe_note(fs, n, fuse_req_ctx(r)->pid, true);
	if (rc == 0)
		xattr_changed(fs, n);
	fuse_reply_err(r, -rc);
}

/* An fd open for reading on directory n's origin inode, or -errno. */
static int dir_stream_fd(struct fs *fs, struct fs_node *n)
{
	int nfd = fs_node_fd(fs, n), fd;

	if (nfd < 0)
		return nfd;
	fd = fs_open_retry(fs, nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	fs_node_fd_put(fs, n, nfd);
	return fd;
}

/* A directory stream on n's inode: 0 or -errno. */
static int dir_open(struct fs *fs, struct fs_node *n, struct fs_dir **out)
{
	struct fs_dir *d;
	int fd = dir_stream_fd(fs, n);

	if (fd < 0)
		return fd;
	d = calloc(1, sizeof(*d));
	if (!d) {
		sys_close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static void dir_snap_free(struct fs_dir *d)
{
	free(d->snap);
	free(d->snap_names);
	d->snap = NULL;
	d->snap_names = NULL;
	d->snap_count = 0;
	d->snapped = false;
}

static void dir_close(struct fs_dir *d)
{
	sys_close(d->fd);
	dir_snap_free(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* d reads from stream fd from now on (the old one closed), from its start. */
static void dir_stream_replace(struct fs_dir *d, int fd)
{
	sys_close(d->fd);
	d->fd = fd;
	d->offset = 0;
	d->buf_len = d->buf_pos = 0;
	d->read_any = false;
}

/* Are directory fd's times too recent to show a later change (cache_catalog_stamp_racy)?
 * 1 yes, 0 no, or -errno (no stat). */
static int dir_fd_racy(int fd)
{
	struct cache_catalog_stamp stamp;
	struct stat st;
	int rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	if (rc < 0)
		return rc;
	cache_catalog_stamp_from_stat(&st, &stamp);
	return cache_catalog_stamp_racy(&stamp);
}

/* qsort_r order of snapshot entries: by cookie, equal cookies by name (names: the names). */
static int snap_compare(const void *a, const void *b, void *names)
{
	const struct fs_dir_snap_entry *x = a, *y = b;
	if (x->cookie != y->cookie)
		return x->cookie < y->cookie ? -1 : 1;
	return strcmp((const char *)names + x->name, (const char *)names + y->name);
}

/* d's snapshot (struct fs_dir), read afresh from a new stream on n's origin inode (which then
 * replaces d->fd: READDIRPLUS looks names up in it). 0, -E2BIG (more than FS_DIR_SNAP_MAX
 * entries: nothing kept), or -errno. d->lock held. */
static int dir_snap_read(struct fs *fs, struct fs_node *n, struct fs_dir *d)
{
	struct fs_dir_snap_entry *e = NULL;
	char *names = NULL;
	size_t count = 0, cap = 0, names_len = 0, names_cap = 0;
	int fd = dir_stream_fd(fs, n), rc = 0;

	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t got = sys_getdents(fd, d->buf, sizeof(d->buf));
		if (got <= 0) {
			rc = (int)got;
			break;
		}
		for (size_t pos = 0; pos < (size_t)got && rc == 0;) {
			struct dirent64 *de = (struct dirent64 *)(void *)(d->buf + pos);
			size_t len = strlen(de->d_name);
			pos += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (count == (fs->cfg.dir_snap_max ? fs->cfg.dir_snap_max : FS_DIR_SNAP_MAX)) {
				rc = -E2BIG;
				break;
			}
			struct fs_dir_snap_entry *ne = fs_grow(e, &cap, count + 1, sizeof(*e), 64);
			char *nn = ne ? fs_grow(names, &names_cap, names_len + len + 1, 1, 4096) : NULL;
			if (ne)
				e = ne;
			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
			memcpy(names + names_len, de->d_name, len + 1);
			e[count].cookie = fs_catalog_cookie(fs, de->d_name);
			e[count].ino = de->d_ino;
			e[count].name = (uint32_t)names_len;
			e[count].type = de->d_type;
			e[count].len = (uint16_t)len;
			count++;
			names_len += len + 1;
		}
		if (rc < 0)
			break;
	}
	d->buf_len = d->buf_pos = 0;
	if (rc < 0 || names_len > UINT32_MAX) {
		free(e);
		free(names);
		sys_close(fd);
		return rc < 0 ? rc : -E2BIG;
	}
	if (count > 1) {
		size_t kept = 1;
		qsort_r(e, count, sizeof(*e), snap_compare, names);
		/* a name listed twice (a stream read while the server renamed): once */
		for (size_t i = 1; i < count; i++)
			if (snap_compare(&e[i], &e[kept - 1], names) != 0)
				e[kept++] = e[i];
		count = kept;
	}
	dir_snap_free(d);
	d->snap = e;
	d->snap_names = names;
	d->snap_count = count;
	d->snapped = true;
	dir_stream_replace(d, fd);
	d->read_any = true;   /* the stream is read to its end: a rewind reopens it */
	return 0;
}

/* The DT_* type of a READDIRPLUS entry: the original's, or, where it gave none (sshfs lists
 * every entry DT_UNKNOWN), the type of the attributes the entry's lookup just read (e: a node
 * looked up, or nodeid 0 without attributes). Without it every reader of d_type (find, fts,
 * git's scan of untracked files) lstat()s each entry, and once the entry's attributes have
 * expired, or on a timed openless mount always (its entries carry attributes valid for 0 s),
 * each of those is a GETATTR: a round trip to the original per file for `find`. */
static uint8_t entry_dtype(uint8_t type, const struct fuse_entry_out *e)
{
	if (type != DT_UNKNOWN || e->nodeid == 0)
		return type;
	return (uint8_t)IFTODT(e->attr.mode);
}

/* "." and ".." of directory ino into a READDIR(PLUS) reply (cookies 1 and 2) from *offset
 * on, advancing it; *used: bytes so far. false: the reply is full. */
static bool reply_dots(uint64_t ino, uint64_t *offset, bool plus, char *out, size_t cap,
                       size_t *used)
{
	for (; *offset < FS_CATALOG_COOKIE_DOTDOT; (*offset)++) {
		const char *name = *offset == 0 ? "." : "..";
		size_t rec;
		if (plus) {
			struct fuse_entry_out e;
			memset(&e, 0, sizeof(e));
			e.attr.ino = ino;
			rec = fuse_proto_direntplus_add(out, cap, *used, name, strlen(name), &e, DT_DIR,
			                                *offset + 1);
		} else {
			rec = fuse_proto_dirent_add(out, cap, *used, name, strlen(name), ino, DT_DIR,
			                            *offset + 1);
		}
		if (!rec)
			return false;
		*used += rec;
	}
	return true;
}

/* One READDIR(PLUS) reply from d's snapshot after cookie `offset` ("." and "..", then the
 * entries in cookie order; equal cookies go into one reply together, or wait for the next).
 * dir_node: the directory (for READDIRPLUS lookups). *used: bytes. d->lock held. */
static void dir_snap_reply(struct fs *fs, struct fs_node *dir_node, struct fs_dir *d,
                           uint64_t offset, bool plus, char *out, size_t cap, size_t *used_out)
{
	size_t used = 0, lo = 0, hi = d->snap_count;

	*used_out = 0;
	if (!reply_dots(dir_node->ino, &offset, plus, out, cap, &used)) {
		*used_out = used;
		return;
	}
	while (lo < hi) {   /* the first entry whose cookie is above offset */
		size_t mid = lo + (hi - lo) / 2;
		if (d->snap[mid].cookie <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < d->snap_count;) {
		size_t j = i, need = 0;
		for (; j < d->snap_count && d->snap[j].cookie == d->snap[i].cookie; j++)
			need += plus ? fuse_proto_direntplus_size(d->snap[j].len)
			             : fuse_proto_dirent_size(d->snap[j].len);
		if (need > cap - used && used > 0)
			break;
		for (; i < j; i++) {
			struct fs_dir_snap_entry *se = &d->snap[i];
			const char *name = d->snap_names + se->name;
			size_t len = se->len, rec;
			if ((plus ? fuse_proto_direntplus_size(len) : fuse_proto_dirent_size(len)) > cap - used)
				break;   /* checked before the lookup, which takes a reference */
			if (plus) {
				struct fuse_entry_out e;
				/* A failed lookup (entry removed meanwhile) is sent without attributes. */
				if (lookup_at(fs, dir_node, d->fd, name, &e) < 0) {
					memset(&e, 0, sizeof(e));
					e.attr.ino = se->ino;
				}
				/* kept for this handle's later plain READDIRs (the kernel's chunks after the
				 * first, of a large directory) */
				se->type = entry_dtype(se->type, &e);
				rec = fuse_proto_direntplus_add(out, cap, used, name, len, &e, se->type, se->cookie);
			} else {
				rec = fuse_proto_dirent_add(out, cap, used, name, len, se->ino, se->type, se->cookie);
			}
			used += rec;
		}
		if (i < j)
			break;
	}
	*used_out = used;
}

/* How long the kernel may keep the listing of a directory the watcher does not cover: the
 * shorter of --entry-timeout and --attr-timeout (its names and its attributes may be that old
 * too; the network contract: a change by another route is seen after the timeouts). */
static double listing_window(const struct fs *fs)
{
	return fs->cfg.entry_timeout < fs->cfg.attr_timeout ? fs->cfg.entry_timeout
	                                                    : fs->cfg.attr_timeout;
}

/* The open flags of an OPENDIR we answer (a directory the watcher does not cover; fd: the
 * stream just opened on it). The kernel caches the listing it reads (FOPEN_CACHE_DIR) and
 * keeps the one it holds across opens (FOPEN_KEEP_CACHE) if that began to be read from the
 * original within listing_window (n->listing_read_ns); otherwise it drops it (no
 * FOPEN_KEEP_CACHE) and the next READDIR at offset 0 stamps the new one. Not cached at all:
 * a directory that changed too recently for its mtime to show a later change
 * (cache_catalog_stamp_racy: sshfs's times are whole seconds, and past the window only the
 * kernel's mtime check guards a listing a long-lived handle re-reads after rewinddir). */
static uint32_t listing_open_flags(struct fs *fs, struct fs_node *n, int fd, uint64_t now)
{
	double window = listing_window(fs);
	int64_t read_ns;

	if (window <= 0 || atomic_load(&n->listing_from_origin) || dir_fd_racy(fd) != 0) {
		atomic_store(&n->listing_read_ns, 0);
		return 0;
	}
	read_ns = atomic_load(&n->listing_read_ns);
	if (read_ns > 0 && (double)(now - (uint64_t)read_ns) < window * 1e9) {
		stats_add(fs->cfg.stats, STATS_LISTINGS_KEPT, 1);
		return FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
	}
	atomic_store(&n->listing_read_ns, 0);
	return FOPEN_CACHE_DIR;
}

/* While the watcher covers the origin, OPENDIR answers ENOSYS: the kernel then never sends
 * OPENDIR or RELEASEDIR again on this connection and opens every directory with
 * FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR, so a listing it read once is served from its cache, with
 * no round trip, until the watcher drops it (NOTIFY_INVAL_INODE on the directory when a name in
 * it changes behind the cache; changes through the mount reset it in the kernel). READDIR then
 * comes with fh 0 and opens its own stream (op_readdir). Directories the watch does not cover
 * (a file system mounted below the origin) keep the short attribute timeout, and the kernel
 * drops their cached listing when it sees their mtime move. Without the watch (a network
 * original): an open per OPENDIR, and the kernel keeps a listing within the timeouts of
 * reading it (listing_open_flags). */
static void op_opendir(struct fuse_req *r, uint64_t ino, const struct fuse_open_in *in)
{
	struct fs *fs = FS_OF(r);
	struct cm_fuse_open_out o;
	struct fs_node *n;
	struct fs_dir *d;
	uint64_t now;
	int rc;

	GET_NODE(fs, r, n, ino);
	if (fs_watch_covers(fs, n) && fs->kernel_inc_epoch) {
		fuse_reply_err(r, ENOSYS);
		return;
	}
	now = clock_now_ns();
	rc = dir_open(fs, n, &d);
	if (rc < 0) {
		fuse_reply_err(r, -rc);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.fh = (uint64_t)(uintptr_t)d;
	if (!fs_watch_covers(fs, n))
		o.open_flags = listing_open_flags(fs, n, d->fd, now);
	d->kernel_caches = (o.open_flags & FOPEN_CACHE_DIR) != 0;
	fuse_reply_open(r, &o);
}

/* One READDIR(PLUS) reply from a catalog listing (fs_catalog.c) after cookie `offset`: "."
 * and "..", then the entries in cookie order (fs_catalog_cookie: a hash of the name, stable
 * across the listings of this run, so a reader whose directory changes between its calls
 * neither repeats nor skips an entry that stayed). Under READDIRPLUS an entry the catalog
 * cannot vouch for goes without attributes (nodeid 0): the kernel looks it up. *used: bytes. */
static int readdir_listing(struct fs *fs, struct fs_node *d, const struct fs_listing *l,
                           uint64_t offset, bool plus, char *out, size_t cap, size_t *used_out)
{
	size_t used = 0, max, n, i = 0;
	struct fs_listing_pick *picks;

	if (!reply_dots(d->ino, &offset, plus, out, cap, &used)) {
		*used_out = used;
		return 0;
	}
	/* at most what fits: every record is at least one of a one-byte name */
	max = cap / (plus ? fuse_proto_direntplus_size(1) : fuse_proto_dirent_size(1)) + 1;
	picks = malloc(max * sizeof(*picks));
	if (!picks)
		return -ENOMEM;
	n = fs_catalog_listing_after(fs, l, offset, max, picks);
	while (i < n) {
		size_t j = i, need = 0;
		/* equal cookies (distinct names, rare) go into one reply together, or wait for the next */
		for (; j < n && picks[j].cookie == picks[i].cookie; j++) {
			size_t len = strlen(l->entries[picks[j].index].name);
			need += plus ? fuse_proto_direntplus_size(len) : fuse_proto_dirent_size(len);
		}
		if (need > cap - used && used > 0)
			break;
		for (; i < j; i++) {
			const struct cache_catalog_entry *ce = &l->entries[picks[i].index];
			size_t namelen = strlen(ce->name), rec;
			if (plus) {
				struct fuse_entry_out e;
				struct fs_node *node;
				struct stat st;
				uint64_t gen = fs_watch_names_gen(fs, d->nodeid, ce->name);
				if (fuse_proto_direntplus_size(namelen) > cap - used)
					break;
				memset(&e, 0, sizeof(e));
				e.attr.ino = ce->attr.ino;
				if (fs_catalog_entry_node(fs, d, ce, l->attrs_fresh, &l->gens, &st, &node) == 0)
					entry_fill(fs, &e, node, &st, entry_timeout(fs, d, ce->name, gen));
				rec = fuse_proto_direntplus_add(out, cap, used, ce->name, namelen, &e,
				                                entry_dtype(ce->type, &e), picks[i].cookie);
			} else {
				rec = fuse_proto_dirent_add(out, cap, used, ce->name, namelen, ce->attr.ino,
				                            ce->type, picks[i].cookie);
			}
			if (!rec)
				break;
			used += rec;
		}
		if (i < j)
			break;
	}
	free(picks);
	*used_out = used;
	return 0;
}

/* A READDIR(PLUS) at cookie `offset` of an unwatched directory n on handle d (not stream-only),
 * from d's snapshot: read at the listing's start, or where the kernel continues one it served
 * from its cache. 1: answered into out (*used bytes); 0: the directory is beyond the
 * snapshot's bound, d now reads a new stream of the original from its start (the caller goes
 * on with it); -errno. d->lock held. */
static int dir_snap_serve(struct fs *fs, struct fs_node *n, struct fs_dir *d, uint64_t offset,
                          bool plus, char *out, size_t cap, size_t *used)
{
	bool big = atomic_load(&n->listing_from_origin);
	int rc;

	if (!big && (offset == 0 || !d->snapped)) {
		rc = dir_snap_read(fs, n, d);
		if (rc == -E2BIG) {   /* the stream's cookies from now on, never cached */
			atomic_store(&n->listing_from_origin, true);
			big = true;
		} else if (rc < 0) {
			return rc;
		}
	}
	if (big && (offset == 0 || !d->snapped)) {
		/* Too large (found by this handle or another): a new stream of the original, its own
		 * cookies. Any other cookie is one of a snapshot (this handle's, or one the kernel
		 * cached and continues here): no place in the stream; refused until a rewind. */
		if (offset != 0)
			return -EIO;
		rc = dir_stream_fd(fs, n);
		if (rc < 0)
			return rc;
		d->stream_only = true;
		dir_snap_free(d);
		dir_stream_replace(d, rc);
		return 0;
	}
	if (offset == 0 && d->kernel_caches && dir_fd_racy(d->fd) == 1)
		atomic_store(&n->listing_racy, true);
	dir_snap_reply(fs, n, d, offset, plus, out, cap, used);
	return 1;
}

/* Fill one READDIR(PLUS) reply from the directory stream, starting at cookie `offset`.
 * Cookies are the origin's d_off values, so they stay stable across calls and seeks; where the
 * catalog serves the directory they are hashes of the names (readdir_listing), for every
 * listing of it but those of a directory found too large for one (listing_from_origin). */
static void op_readdir(struct fuse_req *r, uint64_t ino, const struct fuse_read_in *in, bool plus)
{
	struct fs *fs = FS_OF(r);
	struct fs_dir *d = dir_of(in->fh);
	char *out = fuse_req_scratch(r);
	size_t cap = in->size < FUSE_SESSION_SCRATCH ? in->size : FUSE_SESSION_SCRATCH;
	size_t used = 0;
	int err = 0;
	/* READDIRPLUS makes nodes: their parent, for those reached by name */
	struct fs_node *dir_node = plus || !d ? fs_node_get(fs, ino) : NULL;
	bool own_stream = !d;  /* no OPENDIR (see op_opendir): a stream for this call */

	if (own_stream) {
		if (!dir_node) {
			fuse_reply_err(r, ESTALE);
			return;
		}
		if (fs_catalog_on(fs, dir_node) && !atomic_load(&dir_node->listing_from_origin)) {
			struct fs_listing l;
			err = fs_catalog_listing(fs, dir_node, &l);
			if (err == 0) {
				err = readdir_listing(fs, dir_node, &l, in->offset, plus, out, cap, &used);
				fs_catalog_listing_release(&l);
				if (err < 0)
					fuse_reply_err(r, -err);
				else
					fuse_reply_data(r, out, used);
				return;
			}
			if (err != -E2BIG) {
				fuse_reply_err(r, -err);
				return;
			}
			/* Too large for a listing in memory: from the origin's stream from now on (a
			 * listing begun in indexes, if it grew meanwhile, cannot be continued). */
			atomic_store(&dir_node->listing_from_origin, true);
			if (in->offset != 0) {
				fuse_reply_err(r, EIO);
				return;
			}
			err = 0;
		}
		err = -dir_open(fs, dir_node, &d);
		if (err) {
			fuse_reply_err(r, err);
			return;
		}
	}
	pthread_mutex_lock(&d->lock);
	if (!own_stream) {
		struct fs_node *n = dir_node ? dir_node : fs_node_get(fs, ino);
		bool unwatched = n && !fs_watch_covers(fs, n);
		int64_t none = 0;
		/* the first read of a listing the kernel may keep (listing_open_flags) */
		if (in->offset == 0 && unwatched)
			atomic_compare_exchange_strong(&n->listing_read_ns, &none, (int64_t)clock_now_ns());
		if (unwatched && !d->stream_only) {
			int rc = dir_snap_serve(fs, n, d, in->offset, plus, out, cap, &used);
			if (rc != 0) {
				err = rc < 0 ? -rc : 0;
				goto out;
			}
		}
		/* A rewind (rewinddir) reads the directory afresh on a new stream: a network
		 * original's own may not rewind (sshfs answers a rewound stream with nothing). */
		if (in->offset == 0 && n && d->read_any && (d->stream_only || !unwatched)) {
			int fd = dir_stream_fd(fs, n);
			if (fd >= 0)
				dir_stream_replace(d, fd);
		}
	}
	if (in->offset != d->offset || (in->offset == 0 && d->buf_pos == d->buf_len)) {
		off_t pos = sys_lseek(d->fd, (off_t)in->offset, SEEK_SET);
		if (pos < 0) {
			err = (int)-pos;
			goto out;
		}
		d->offset = in->offset;
		d->buf_len = d->buf_pos = 0;
	}
	for (;;) {
		struct dirent64 *de;
		size_t namelen, rec;

		if (d->buf_pos >= d->buf_len) {
			ssize_t n = sys_getdents(d->fd, d->buf, sizeof(d->buf));
			d->read_any = true;
			if (n < 0) {
				err = (int)-n;
				break;
			}
			if (n == 0)
				break;
			d->buf_len = (size_t)n;
			d->buf_pos = 0;
		}
		de = (struct dirent64 *)(void *)(d->buf + d->buf_pos);
		namelen = strlen(de->d_name);
		if (plus) {
			struct fuse_entry_out e;
			bool dots = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
			if (fuse_proto_direntplus_size(namelen) > cap - used)
				break;
			memset(&e, 0, sizeof(e));
			e.attr.ino = de->d_ino;
			/* A failed lookup (entry removed meanwhile) is sent without attributes. */
			if (!dots && (!dir_node || lookup_at(fs, dir_node, d->fd, de->d_name, &e) < 0)) {
				memset(&e, 0, sizeof(e));
				e.attr.ino = de->d_ino;
			}
			rec = fuse_proto_direntplus_add(out, cap, used, de->d_name, namelen, &e,
			                                entry_dtype(de->d_type, &e), (uint64_t)de->d_off);
		} else {
			rec = fuse_proto_dirent_add(out, cap, used, de->d_name, namelen, de->d_ino,
			                            de->d_type, (uint64_t)de->d_off);
			if (!rec)
				break;
		}
		used += rec;
		d->buf_pos += de->d_reclen;
		d->offset = (uint64_t)de->d_off;
	}
out:
	pthread_mutex_unlock(&d->lock);
	if (own_stream)
		dir_close(d);
	/* An error after some entries were packed is reported by the next call. */
	if (err && used == 0)
		fuse_reply_err(r, err);
	else
		fuse_reply_data(r, out, used);
}

static void op_releasedir(struct fuse_req *r, uint64_t ino, const struct fuse_release_in *in)
{
	if (in->fh)
		dir_close(dir_of(in->fh));
	fuse_reply_err(r, 0);
}

static void op_fsyncdir(struct fuse_req *r, uint64_t ino, const struct fuse_fsync_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_dir *d = dir_of(in->fh);
	struct fs_node *n;
	int rc;

	if (d) {
		fuse_reply_err(r, -sys_fsync(d->fd, in->fsync_flags & FUSE_FSYNC_FDATASYNC));
		return;
	}
	GET_NODE(fs, r, n, ino);  /* no OPENDIR (see op_opendir): open the directory for it */
	rc = dir_open(fs, n, &d);
	if (rc == 0) {
		rc = sys_fsync(d->fd, in->fsync_flags & FUSE_FSYNC_FDATASYNC);
		dir_close(d);
	}
	fuse_reply_err(r, -rc);
}

static void op_access(struct fuse_req *r, uint64_t ino, uint32_t mask)
{
	struct fs *fs = FS_OF(r);
	char path[FS_PROC_PATH_MAX];
	struct fs_node *n;
	int nfd, rc;

	GET_NODE(fs, r, n, ino);
	GET_NODE_FD(fs, r, n, nfd);
	fs_proc_path(nfd, path);
	creds_enter(fuse_req_ctx(r), 0, 0);
	rc = faccessat(AT_FDCWD, path, (int)mask, AT_EACCESS) < 0 ? -errno : 0;
	creds_leave();
	fs_node_fd_put(fs, n, nfd);
	fuse_reply_err(r, -rc);
}

static void op_fallocate(struct fuse_req *r, uint64_t ino, const struct fuse_fallocate_in *in)
{
	struct fs *fs = FS_OF(r);
	struct engine *e = fs->engine;
	struct engine_inode *io;
	struct fs_file *f;
	int fd, rc;

	GET_FILE(fs, r, ino, in->fh, true, f);
	io = f->file.inode;   /* held by the open file */
	fd = fs_file_origin_fd(fs, f);   /* a writer's: opened at its open */
	if (fd < 0) {
		PUT_FILE(fs, in->fh, f);
		fuse_reply_err(r, -fd);
		return;
	}
	engine_write_change_begin(e, io);
	rc = sys_fallocate(fd, (int)in->mode, (off_t)in->offset, (off_t)in->length);
	if (rc == 0)
		engine_write_changed(e, io, false, 0, (off_t)in->offset, (off_t)in->length);
	engine_write_change_end(e, io);
	PUT_FILE(fs, in->fh, f);
	fuse_reply_err(r, -rc);
}

static void op_lseek(struct fuse_req *r, uint64_t ino, const struct fuse_lseek_in *in)
{
	struct fs *fs = FS_OF(r);
	struct fs_file *f;
	off_t pos;
	int fd;

	GET_FILE(fs, r, ino, in->fh, false, f);
	fd = engine_open_data_fd(fs->engine, &f->file);
	pos = fd < 0 ? fd : sys_lseek(fd, (off_t)in->offset, (int)in->whence);
	PUT_FILE(fs, in->fh, f);
	if (pos < 0)
		fuse_reply_err(r, (int)-pos);
	else
		fuse_reply_lseek(r, (uint64_t)pos);
}

static void op_copy_file_range(struct fuse_req *r, uint64_t ino,
                               const struct fuse_copy_file_range_in *in, bool wide)
{
	struct fs *fs = FS_OF(r);
	struct fs_file *fin, *fout;
	off_t off_in = (off_t)in->off_in, off_out = (off_t)in->off_out;
	size_t len = wide ? in->len : (in->len > UINT32_MAX ? UINT32_MAX : in->len);
	struct engine *e = fs->engine;
	struct engine_inode *dst;
	int fd_in, fd_out;
	ssize_t n;

	GET_FILE(fs, r, ino, in->fh_in, false, fin);
	if (in->fh_out) {
		fout = file_of(in->fh_out);
	} else {  /* openless: the destination's node (nodeid_out), with a file that writes */
		struct fs_node *out_node = fs_node_get(fs, in->nodeid_out);
		int err = -ESTALE;
		fout = out_node ? fs_openless_file(fs, out_node, true, &err) : NULL;
		if (!fout) {
			PUT_FILE(fs, in->fh_in, fin);
			fuse_reply_err(r, -err);
			return;
		}
	}
	dst = fout->file.inode;   /* held by the open files */
	fd_in = fs_file_origin_fd(fs, fin);   /* the source's open may have been deferred */
	fd_out = fs_file_origin_fd(fs, fout);
	if (fd_in < 0 || fd_out < 0) {
		/* A source opened on the catalog's attributes and unlinked behind since has no
		 * original to copy from: EXDEV makes the kernel copy by splice, read from the cache
		 * copy the open passed through. */
		int err = fd_in == -ESTALE && fin->has_known ? EXDEV : fd_in < 0 ? -fd_in : -fd_out;
		PUT_FILE(fs, in->fh_in, fin);
		PUT_FILE(fs, in->fh_out, fout);
		fuse_reply_err(r, err);
		return;
	}
	if (fin->file.inode != dst) {  /* the source's mmap changes must be in the origin we copy from */
		engine_write_change_begin(e, fin->file.inode);
		engine_write_change_end(e, fin->file.inode);
	}
	engine_write_change_begin(e, dst);
	n = sys_copy_file_range(fd_in, &off_in, fd_out, &off_out, len, (unsigned)in->flags);
	if (n > 0)
		engine_write_changed(e, dst, false, 0, (off_t)in->off_out, (off_t)n);
	engine_write_change_end(e, dst);
	PUT_FILE(fs, in->fh_in, fin);
	PUT_FILE(fs, in->fh_out, fout);

	if (n < 0)
		fuse_reply_err(r, (int)-n);
	else if (wide)
		fuse_reply_copy_range(r, (uint64_t)n);
	else
		fuse_reply_write(r, (uint32_t)n);
}

static void op_syncfs(struct fuse_req *r, uint64_t ino)
{
	struct fs *fs = FS_OF(r);
	int fd = sys_openat(fs->cfg.origin_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int rc = fd < 0 ? fd : sys_syncfs(fd);
	if (fd >= 0)
		sys_close(fd);
	fuse_reply_err(r, -rc);
}

static const struct fuse_ops fs_ops = {
	.init = op_init,
	.forget = op_forget,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.symlink = op_symlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.tmpfile = op_tmpfile,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.access = op_access,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.syncfs = op_syncfs,
};

const struct fuse_ops *fs_fuse_ops(void) { return &fs_ops; }

/* ---- lifecycle -------------------------------------------------------------------------- */

int fs_create(const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	struct stat st;
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->store = cfg->store;
	fs->next_nodeid = FUSE_ROOT_ID + 1;
	rc = fs_table_init(fs);
	if (rc < 0)
		goto err;
	rc = sys_fstatat(cfg->origin_fd, "", &st, AT_EMPTY_PATH);
	if (rc < 0)
		goto err_table;
	rc = fs_node_root_init(fs, cfg->origin_fd, &st);
	if (rc < 0)
		goto err_table;
	fs_catalog_open(fs, cfg->store ? cfg->catalog_path : NULL);
	if (fs_node_handles_probe(fs, cfg->origin_fd) < 0)
		log_warn("nodes pin an fd each: %s", fs->handles_why);
	pthread_mutex_init(&fs->cap_probes_lock, NULL);
	pthread_mutex_init(&fs->xattr_lock, NULL);
	fs_xattr_origin_probe(fs);
	snprintf(fs->passthrough_why, sizeof(fs->passthrough_why), "not negotiated yet");
	{
		unsigned long type;
		fs->files_by_path = fs_type_of_fd(cfg->origin_fd, &type) == 0 &&
		                    !fs_type_inode_numbers_last(type);
	}
	rc = fs_cache_engine_create(fs);
	if (rc < 0)
		goto err_root;
	if (cfg->openless && (rc = fs_openless_create(fs, fs->openless_max)) < 0) {
		engine_free(fs->engine);
		goto err_root;
	}
	{
		char proc[FS_PROC_PATH_MAX];
		ssize_t len;
		fs_proc_path(cfg->origin_fd, proc);
		len = sys_readlinkat(AT_FDCWD, proc, fs->root_path, sizeof(fs->root_path) - 1);
		fs->root_path_len = len > 0 ? (size_t)len : 0;
		fs->root_path[fs->root_path_len] = '\0';
		if (fs->root_path_len == 1)  /* "/": paths below it start right after */
			fs->root_path_len = 0;
	}
	*out = fs;
	return 0;

err_root:
	pthread_mutex_destroy(&fs->cap_probes_lock);
	pthread_mutex_destroy(&fs->xattr_lock);
	fs_catalog_close(fs);
err_table:
	fs_table_release(fs);
	fs_node_root_release(fs);
err:
	free(fs);
	return rc;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_watch_stop(fs);
	fs_openless_free(fs);  /* its files hold nodes and engine state */
	engine_stop(fs->engine);
	fs_table_release(fs);
	fs_watch_release(fs);
	fs_node_root_release(fs);  /* closes the origin fd */
	engine_free(fs->engine);
	fs_catalog_close(fs);
	pthread_mutex_destroy(&fs->cap_probes_lock);
	pthread_mutex_destroy(&fs->xattr_lock);
	free(fs);
}

int fs_origin_fd(const struct fs *fs) { return fs->cfg.origin_fd; }

bool fs_handles_active(struct fs *fs, char *why, size_t why_size)
{
	if (!fs->handles && why)
		snprintf(why, why_size, "%s", fs->handles_why);
	return fs->handles;
}

bool fs_passthrough_active(struct fs *fs, char *why, size_t why_size)
{
	bool ok = atomic_load(&fs->passthrough_ok);
	if (!ok && why)
		snprintf(why, why_size, "%s", fs->passthrough_why);
	return ok;
}

void fs_passthrough_probe(struct fs *fs)
{
	int fd, id;
	if (!atomic_load(&fs->passthrough_ok))
		return;
	fd = sys_openat(AT_FDCWD, "/proc/self/exe", O_PATH | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	id = fuse_session_backing_open(fs->session, fd);
	if (id > 0)
		fuse_session_backing_close(fs->session, id);
	else if (id == -EPERM)
		fs_cache_passthrough_disable(fs, "the kernel refused backing files (EPERM: needs CAP_SYS_ADMIN)");
	sys_close(fd);
}
