/* fs_admin: evict, warm and verify by path for the control plane (see fs_admin.h).
 * Warm reaches the fill threads the way an open file does: it takes a node for the file (as a
 * lookup would), holds its engine inode, and the engine (engine_fill_warm) holds its cache
 * object (opening it if no open file has), queues a completion job, which holds them itself,
 * and lets go; the job's end releases the object, which persists its record. The io-mode
 * rules of engine_fill.c apply unchanged: a job
 * stops when the file is opened with passthrough (its writes would not be seen), and warm then
 * answers FS_WARM_WAITING until that open is closed; so it does for a file changed within 3 s
 * where no watcher reports changes (engine_settle.c).
 */
#include "fs/fs_admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fs/fs_int.h"
#include "sys/sys.h"
#include "sys/sys_walk.h"
#include "util/glob.h"

#define ADMIN_NAME_MAX 255
#define ADMIN_WALK_DEPTH_MAX 64
#define VERIFY_BUFFER (1024u * 1024)

/* An O_PATH fd on rel below the origin, one component at a time without following symlinks,
 * so that no name in rel leads out of the origin. */
static int open_beneath(struct fs *fs, const char *rel, int *out)
{
	int origin = fs_origin_fd(fs), dir = origin;
	const char *p = rel;

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char name[ADMIN_NAME_MAX + 1];
		int fd;

		/* One spelling per file ("a/b"): the cache may know files by their path. */
		if (n == 0 || n > ADMIN_NAME_MAX || (p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))) {
			if (dir != origin)
				sys_close(dir);
			return n > ADMIN_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		fd = sys_openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (slash ? O_DIRECTORY : 0), 0);
		if (dir != origin)
			sys_close(dir);
		if (fd < 0)
			return fd;
		if (!slash) {
			*out = fd;
			return 0;
		}
		dir = fd;
		p = slash + 1;
	}
}

/* ---- evict ---------------------------------------------------------------------------- */

static int evict_one(struct fs *fs, const char *rel, const struct stat *st, uint64_t *evicted)
{
	struct cache_key key = engine_key(fs->engine, rel, st);
	int rc;

	fs_first_read_forget(fs, st, &key);
	rc = cache_object_remove(fs->store, key);
	if (rc == 0)
		(*evicted)++;
	return rc == -ENOENT ? 0 : rc;  /* not cached: nothing to evict */
}

struct evict_walk {
	struct fs *fs;
	uint64_t evicted;
};

/* A file below the directory evicted. */
static int evict_visit(void *arg, int dirfd, const char *name, const char *rel)
{
	struct evict_walk *w = arg;
	struct stat st;

	if (sys_fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return 0;   /* gone or replaced meanwhile */
	return evict_one(w->fs, rel, &st, &w->evicted);
}

int fs_admin_evict(struct fs *fs, const char *rel, uint64_t *evicted)
{
	uint64_t removed = 0;
	struct stat st;
	int fd, rc;

	if (!fs->store)
		return -ENOMEDIUM;
	if (!*rel) {
		rc = cache_store_remove_all(fs->store, &removed);
		fs_first_read_forget(fs, NULL, NULL);
	} else {
		rc = open_beneath(fs, rel, &fd);
		if (rc < 0)
			return rc;
		rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
		if (rc == 0 && S_ISREG(st.st_mode)) {
			rc = evict_one(fs, rel, &st, &removed);
		} else if (rc == 0 && S_ISDIR(st.st_mode)) {
			char proc[FS_PROC_PATH_MAX], path[SYS_WALK_PATH_MAX];
			struct evict_walk w = { fs, 0 };
			size_t len = strlen(rel);
			int dirfd;
			if (len >= sizeof(path)) {
				sys_close(fd);
				return -ENAMETOOLONG;
			}
			memcpy(path, rel, len + 1);
			fs_proc_path(fd, proc);
			dirfd = sys_openat(AT_FDCWD, proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
			rc = dirfd < 0 ? dirfd : sys_walk_files(dirfd, path, len, ADMIN_WALK_DEPTH_MAX,
			                                        evict_visit, &w);
			removed = w.evicted;
		} else if (rc == 0) {
			rc = -EINVAL;
		}
		sys_close(fd);
	}
	if (rc < 0 && removed == 0)
		return rc;
	*evicted = removed;
	return 0;
}

/* ---- warm ----------------------------------------------------------------------------- */

/* The node of rel's regular file, with a lookup reference (drop it with fs_node_forget). */
static int node_of(struct fs *fs, const char *rel, struct stat *st, struct fs_node **out)
{
	int fd, rc = open_beneath(fs, rel, &fd);

	if (rc < 0)
		return rc;
	rc = sys_fstatat(fd, "", st, AT_EMPTY_PATH);
	if (rc == 0 && !S_ISREG(st->st_mode))
		rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if (rc < 0) {
		sys_close(fd);
		return rc;
	}
	return fs_node_acquire(fs, NULL, NULL, 0, fd, st, out);  /* consumes fd */
}

/* The cache-engine half of warm is engine_fill_warm(): with n's engine inode held. */
static int warm_node(struct fs *fs, struct fs_node *n, const struct stat *st,
                     struct fs_warm_report *out)
{
	static const enum fs_warm_state states[] = {
		[ENGINE_WARM_COMPLETE] = FS_WARM_COMPLETE,
		[ENGINE_WARM_FILLING] = FS_WARM_FILLING,
		[ENGINE_WARM_WAITING] = FS_WARM_WAITING,
	};
	struct engine_inode *io = fs_node_io_hold(fs, n);
	struct engine_warm w;
	int rc;

	if (!io)
		return -ENOMEM;
	rc = engine_fill_warm(fs->engine, io, st, &w);
	fs_node_io_release(fs, n);
	if (rc == 0) {
		out->state = states[w.state];
		out->size = w.size;
		out->cached = w.cached;
	}
	return rc;
}

int fs_admin_warm(struct fs *fs, const char *rel, struct fs_warm_report *out)
{
	struct fs_node *n;
	struct stat st;
	int rc;

	if (!fs->store)
		return -ENOMEDIUM;
	if (!engine_store(fs->engine))
		return -EAGAIN;
	rc = node_of(fs, rel, &st, &n);
	if (rc < 0)
		return rc;
	if (glob_match_any(fs->cfg.exclude, fs->cfg.exclude_count, rel)) {
		out->state = FS_WARM_EXCLUDED;
		out->size = (uint64_t)st.st_size;
		out->cached = 0;
	} else {
		rc = warm_node(fs, n, &st, out);
	}
	fs_node_forget(fs, n->nodeid, 1);
	return rc;
}

/* ---- verify --------------------------------------------------------------------------- */

/* Is the file open for writing through the mount? A writer over the cache copy may have
 * written it through a mapping not yet written back to the original (engine_write.c write-back):
 * the two differ for a while, and that is no corruption. */
static bool open_for_writing(struct fs *fs, const struct stat *st)
{
	struct fs_node *n = fs_node_find_ref(fs, st);
	bool writing = false;

	if (!n)
		return false;
	writing = atomic_load(&n->passthrough_writers) > 0;
	if (fs_node_io_hold_existing(fs, n)) {
		writing = writing || engine_open_cache_writers(n->io);
		fs_node_io_release(fs, n);
	}
	fs_node_forget(fs, n->nodeid, 1);
	return writing;
}

/* XXH3-64 of [0, size) of fd; -EIO if it ends sooner. */
static int hash_file(int fd, uint64_t size, char *buf, uint64_t *out)
{
	XXH3_state_t *state = XXH3_createState();
	uint64_t off = 0;
	int rc = 0;

	if (!state)
		return -ENOMEM;
	XXH3_64bits_reset(state);
	while (off < size) {
		size_t want = size - off < VERIFY_BUFFER ? (size_t)(size - off) : VERIFY_BUFFER;
		ssize_t n = sys_pread(fd, buf, want, (off_t)off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		XXH3_64bits_update(state, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (rc == 0)
		*out = XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return rc;
}

int fs_admin_verify(struct fs *fs, const char *rel, struct fs_verify_report *out)
{
	struct cache_store *store = engine_store(fs->engine);
	struct fs_verify_report rep = { 0 };
	struct cache_fingerprint fp, after_fp;
	struct cache_object *obj;
	struct cache_key key;
	struct stat st, after;
	char proc[FS_PROC_PATH_MAX], *buf = NULL;
	uint64_t generation;
	int pfd, fd, rc;

	if (!fs->store)
		return -ENOMEDIUM;
	if (!store)
		return -EAGAIN;
	rc = open_beneath(fs, rel, &pfd);
	if (rc < 0)
		return rc;
	rc = sys_fstatat(pfd, "", &st, AT_EMPTY_PATH);
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	fs_proc_path(pfd, proc);
	/* O_NOATIME: checking must not move the original's access time. */
	fd = rc < 0 ? rc : sys_openat(AT_FDCWD, proc, O_RDONLY | O_NOATIME | O_CLOEXEC, 0);
	sys_close(pfd);
	if (fd < 0)
		return fd;
	key = engine_key(fs->engine, rel, &st);
	engine_fingerprint(fs->engine, &st, &fp);
	rc = cache_object_open(store, key, &fp, &obj);
	if (rc < 0)
		goto out_close;
	rc = 0;
	rep.size = fp.size;
	if (!cache_object_complete(obj)) {
		rep.result = FS_VERIFY_NOT_COMPLETE;
		goto out_release;
	}
	if (open_for_writing(fs, &st)) {
		rep.result = FS_VERIFY_CHANGED;
		goto out_release;
	}
	buf = malloc(VERIFY_BUFFER);
	if (!buf) {
		rc = -ENOMEM;
		goto out_release;
	}
	generation = cache_object_generation(obj);
	rc = hash_file(cache_object_data_fd(obj), fp.size, buf, &rep.hash_copy);
	if (rc == -EIO) {  /* a copy shorter than the file: a mismatch */
		rep.hash_copy = ~0ull;
		rc = 0;
	}
	if (rc == 0)
		rc = hash_file(fd, fp.size, buf, &rep.hash_origin);
	if (rc < 0)
		goto out_release;
	rc = sys_fstatat(fd, "", &after, AT_EMPTY_PATH);
	if (rc < 0)
		goto out_release;
	engine_fingerprint(fs->engine, &after, &after_fp);
	if (!cache_fingerprint_equal(&fp, &after_fp) || cache_object_generation(obj) != generation ||
	    open_for_writing(fs, &st)) {
		rep.result = FS_VERIFY_CHANGED;
	} else if (rep.hash_copy == rep.hash_origin) {
		rep.result = FS_VERIFY_MATCH;
	} else {
		/* The next open reads the original (open files keep the copy until they close). */
		rep.result = FS_VERIFY_MISMATCH;
		fs_first_read_forget(fs, &st, &key);
		rc = cache_object_remove(fs->store, key);
		if (rc == -ENOENT)
			rc = 0;
	}
out_release:
	free(buf);
	cache_object_release(obj);
out_close:
	sys_close(fd);
	if (rc == 0)
		*out = rep;
	return rc;
}
