/* fs_node: the node table, the fd cache and nodes' open state.
 * The table is two chained hash tables over the same nodes: by our nodeid (every request) and
 * by the origin's (st_dev, st_ino) plus file handle (lookups, so hard links share one node).
 * A node holds no fd of its own: an operation borrows one from the fd cache, which opens it
 * from the node's file handle when it has none (open_by_handle_at), so the daemon's fds are
 * bounded whatever the size of the tree. A node whose file system gives no handle pins its
 * O_PATH fd in the cache instead (the only mode before; `status` says which one is in use).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_type.h"
#include "sys/sys.h"
#include "sys/sys_memory.h"
#include "util/log.h"

#define INITIAL_BUCKETS 1024

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static size_t bucket_by_id(const struct fs_table *t, uint64_t id) { return hash_u64(id) & (t->bucket_count - 1); }
static size_t bucket_by_key(const struct fs_table *t, dev_t dev, ino_t ino)
{
	return hash_u64((uint64_t)ino * 31 + (uint64_t)dev) & (t->bucket_count - 1);
}

void fs_proc_path(int fd, char buf[FS_PROC_PATH_MAX])
{
	snprintf(buf, FS_PROC_PATH_MAX, "/proc/self/fd/%d", fd);
}

/* ---- the fd cache ------------------------------------------------------------------------ */

static void lru_unlink(struct fs_fds *c, int32_t i)
{
	struct fs_fd_slot *s = &c->slot[i];
	if (s->prev >= 0)
		c->slot[s->prev].next = s->next;
	else
		c->lru_head = s->next;
	if (s->next >= 0)
		c->slot[s->next].prev = s->prev;
	else
		c->lru_tail = s->prev;
	s->prev = s->next = -1;
}

static void lru_append(struct fs_fds *c, int32_t i)
{
	struct fs_fd_slot *s = &c->slot[i];
	s->next = -1;
	s->prev = c->lru_tail;
	if (c->lru_tail >= 0)
		c->slot[c->lru_tail].next = i;
	else
		c->lru_head = i;
	c->lru_tail = i;
}

/* May the cache close this node's fd when nobody borrows it? fds.lock held. */
static bool node_evictable(const struct fs_node *n) { return n->reach != FS_REACH_FD; }

/* Free slot i; returns the fd it held (to close once the lock is dropped). */
static int slot_free(struct fs_fds *c, int32_t i)
{
	struct fs_fd_slot *s = &c->slot[i];
	int fd = s->fd;
	if (node_evictable(s->node))
		c->cached--;
	else
		c->pinned--;
	s->node->fd_slot = -1;
	s->node = NULL;
	s->fd = -1;
	s->next = c->free_head;
	c->free_head = i;
	return fd;
}

/* A free slot, growing the array when none is left; -1 without memory. */
static int32_t slot_take(struct fs_fds *c)
{
	int32_t i;
	if (c->free_head < 0) {
		int32_t grown = c->capacity ? c->capacity * 2 : 256;
		struct fs_fd_slot *bigger = realloc(c->slot, (size_t)grown * sizeof(*bigger));
		if (!bigger)
			return -1;
		c->slot = bigger;
		for (i = grown - 1; i >= c->capacity; i--) {
			c->slot[i] = (struct fs_fd_slot){ .node = NULL, .fd = -1, .prev = -1,
			                                  .next = c->free_head };
			c->free_head = i;
		}
		c->capacity = grown;
	}
	i = c->free_head;
	c->free_head = c->slot[i].next;
	c->slot[i].prev = c->slot[i].next = -1;
	return i;
}

/* Put fd in a slot of n (users: 1 if borrowed now, 0 if only kept). When the cache is full, the
 * least recently used unborrowed fd makes room: its fd is returned in *evicted (-1: none) for
 * the caller to close after unlocking. false: no slot (no memory); the caller keeps fd. */
static bool slot_insert(struct fs_fds *c, struct fs_node *n, int fd, uint32_t users, int *evicted)
{
	int32_t i;
	*evicted = -1;
	if (node_evictable(n) && c->cached >= c->max && c->lru_head >= 0) {
		int32_t old = c->lru_head;
		lru_unlink(c, old);
		*evicted = slot_free(c, old);
	}
	i = slot_take(c);
	if (i < 0)
		return false;
	c->slot[i].node = n;
	c->slot[i].fd = fd;
	c->slot[i].users = users;
	n->fd_slot = i;
	if (node_evictable(n)) {
		c->cached++;
		if (!users)
			lru_append(c, i);
	} else {
		c->pinned++;
	}
	return true;
}

/* Close up to half of the cached fds nobody uses (the daemon ran out of fds), a batch at a
 * time (closed outside the lock). */
#define FDS_SHRINK_BATCH 256
static void fds_shrink(struct fs *fs)
{
	struct fs_fds *c = &fs->fds;
	int close_fds[FDS_SHRINK_BATCH];
	unsigned total = 0, want, count;

	pthread_mutex_lock(&c->lock);
	want = (unsigned)(c->cached + 1) / 2;
	pthread_mutex_unlock(&c->lock);
	do {
		count = 0;
		pthread_mutex_lock(&c->lock);
		while (c->lru_head >= 0 && count < FDS_SHRINK_BATCH && total + count < want) {
			int32_t i = c->lru_head;
			lru_unlink(c, i);
			close_fds[count++] = slot_free(c, i);
		}
		pthread_mutex_unlock(&c->lock);
		for (unsigned i = 0; i < count; i++)
			sys_close(close_fds[i]);
		total += count;
	} while (count == FDS_SHRINK_BATCH);
	log_warn("the daemon ran out of fds: closed %u cached origin fds", total);
}

/* The file handle of n as the kernel takes it. */
struct handle_buffer {
	_Alignas(struct file_handle) unsigned char bytes[sizeof(struct file_handle) + FS_HANDLE_MAX];
};

static int handle_open(struct fs *fs, const struct fs_node *n, int flags)
{
	struct handle_buffer hb;
	struct file_handle *h = (struct file_handle *)(void *)hb.bytes;
	int mount_fd, fd;

	h->handle_bytes = n->handle_bytes;
	h->handle_type = n->handle_type;
	memcpy(h->f_handle, n->handle, n->handle_bytes);
	pthread_mutex_lock(&fs->mounts_lock);
	mount_fd = fs->mounts[n->mount].fd;
	pthread_mutex_unlock(&fs->mounts_lock);
	fd = sys_open_by_handle_at(mount_fd, h, flags | O_CLOEXEC);
	if (fs_limit_error(fd)) {
		fds_shrink(fs);
		fd = sys_open_by_handle_at(mount_fd, h, flags | O_CLOEXEC);
	}
	atomic_fetch_add_explicit(&fs->fds.misses, 1, memory_order_relaxed);
	if (fs_limit_error(fd)) {
		log_error("no fd left to reach inode %llu: %s", (unsigned long long)n->ino, strerror(-fd));
		fd = -ENOMEM;  /* the daemon's limit, not the application's: never EMFILE */
	}
	return fd;
}

/* FS_REACH_NAME: the parent and name kept in handle[] (see struct fs_node). */
static struct fs_node *node_parent(const struct fs_node *n)
{
	struct fs_node *p;
	memcpy(&p, n->handle, sizeof(p));
	return p;
}
static const char *node_name(const struct fs_node *n)
{
	return (const char *)n->handle + sizeof(struct fs_node *);
}

/* A hash of (parent, name): slots of fs->name_gens, buckets of by_name (both powers of two). */
static size_t name_gen_slot(const struct fs_node *parent, const char *name)
{
	uint64_t h = hash_u64((uint64_t)(uintptr_t)parent);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;   /* FNV-1a step */
	return hash_u64(h);
}

uint32_t fs_node_name_gen(struct fs *fs, const struct fs_node *parent, const char *name)
{
	return fs->files_by_path && parent && name
	       ? atomic_load(&fs->name_gens[name_gen_slot(parent, name) % FS_NAME_GENS]) : 0;
}

static size_t bucket_by_name(const struct fs_table *t, const struct fs_node *parent,
                             const char *name)
{
	return name_gen_slot(parent, name) & (t->bucket_count - 1);
}

void fs_node_name_changing(struct fs *fs, const struct fs_node *parent, const char *name)
{
	struct fs_node *n;

	if (!fs->files_by_path)
		return;
	pthread_mutex_lock(&fs->table_lock);
	atomic_fetch_add(&fs->name_gens[name_gen_slot(parent, name) % FS_NAME_GENS], 1);
	for (n = fs->table.by_name[bucket_by_name(&fs->table, parent, name)]; n; n = n->next_by_name)
		if (node_parent(n) == parent && !strcmp(node_name(n), name))
			atomic_store(&n->name_moved, true);
	pthread_mutex_unlock(&fs->table_lock);
}

bool fs_node_name(struct fs *fs, struct fs_node *n, struct fs_node **parent, const char **name)
{
	bool by_name;
	pthread_mutex_lock(&fs->fds.lock);
	by_name = n->reach == FS_REACH_NAME;
	pthread_mutex_unlock(&fs->fds.lock);
	if (by_name) {
		*parent = node_parent(n);
		*name = node_name(n);
	}
	return by_name;
}

/* Find n's inode again under its parent by name; -ESTALE if the name now leads elsewhere (a
 * rename or delete behind our back: the kernel then looks the name up afresh). Where inode
 * numbers do not last (fs->files_by_path: sshfs numbers an inode anew once the kernel evicted
 * it) another number is no sign of another file: the file at the name is n's, as it is for
 * the file system itself, unless its type or device differs or the name went or moved
 * through the mount since n's lookup (name_moved). */
static int name_open(struct fs *fs, struct fs_node *n)
{
	struct fs_node *p = node_parent(n);
	struct stat st;
	int pfd = fs_node_fd(fs, p), fd;

	if (pfd < 0)
		return pfd;
	fd = fs_open_retry(fs, pfd, node_name(n), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	fs_node_fd_put(fs, p, pfd);
	atomic_fetch_add_explicit(&fs->fds.misses, 1, memory_order_relaxed);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return -ESTALE;
	if (fd < 0)
		return fd;
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != n->dev ||
	    (st.st_ino != n->ino && (!fs->files_by_path || atomic_load(&n->name_moved))) ||
	    (st.st_mode & S_IFMT) != n->type) {
		sys_close(fd);
		return -ESTALE;
	}
	return fd;
}

int fs_node_fd(struct fs *fs, struct fs_node *n)
{
	struct fs_fds *c = &fs->fds;
	int fd, evicted, spare = -1;

	pthread_mutex_lock(&c->lock);
	if (n->fd_slot >= 0) {
		struct fs_fd_slot *s = &c->slot[n->fd_slot];
		if (s->users++ == 0 && node_evictable(n))
			lru_unlink(c, n->fd_slot);
		fd = s->fd;
		pthread_mutex_unlock(&c->lock);
		return fd;
	}
	pthread_mutex_unlock(&c->lock);
	if (n->reach == FS_REACH_HANDLE)
		fd = handle_open(fs, n, O_PATH);
	else if (n->reach == FS_REACH_NAME)
		fd = name_open(fs, n);
	else
		fd = -ESTALE;  /* an FS_REACH_FD node's fd is never taken away: not reached */
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&c->lock);
	if (n->fd_slot >= 0) {  /* another thread was first: use its fd */
		struct fs_fd_slot *s = &c->slot[n->fd_slot];
		if (s->users++ == 0)
			lru_unlink(c, n->fd_slot);
		spare = fd;
		fd = s->fd;
		evicted = -1;
	} else if (!slot_insert(c, n, fd, 1, &evicted)) {
		evicted = -1;  /* kept uncached: fs_node_fd_put closes it */
	}
	pthread_mutex_unlock(&c->lock);
	if (spare >= 0)
		sys_close(spare);
	if (evicted >= 0)
		sys_close(evicted);
	return fd;
}

int fs_node_open(struct fs *fs, struct fs_node *n, int flags)
{
	char path[FS_PROC_PATH_MAX];
	bool cached;
	int nfd, fd;

	pthread_mutex_lock(&fs->fds.lock);
	cached = n->fd_slot >= 0;
	pthread_mutex_unlock(&fs->fds.lock);
	/* Not in the fd cache but reached by handle: open it as asked in one call, instead of
	 * an O_PATH open (evicting another node's fd), the /proc reopen and the eviction's close. */
	if (!cached && n->reach == FS_REACH_HANDLE)
		return handle_open(fs, n, flags);
	nfd = fs_node_fd(fs, n);
	if (nfd < 0)
		return nfd;
	fs_proc_path(nfd, path);
	fd = fs_open_retry(fs, AT_FDCWD, path, flags, 0);
	fs_node_fd_put(fs, n, nfd);
	return fd;
}

int fs_node_stat(struct fs *fs, struct fs_node *n, struct stat *st)
{
	int fd = fs_node_fd(fs, n), rc;
	if (fd < 0)
		return fd;
	rc = sys_fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	fs_node_fd_put(fs, n, fd);
	return rc;
}

void fs_node_fd_put(struct fs *fs, struct fs_node *n, int fd)
{
	struct fs_fds *c = &fs->fds;
	pthread_mutex_lock(&c->lock);
	if (n->fd_slot >= 0 && c->slot[n->fd_slot].fd == fd) {
		struct fs_fd_slot *s = &c->slot[n->fd_slot];
		if (--s->users == 0 && node_evictable(n))
			lru_append(c, n->fd_slot);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	sys_close(fd);
}

int fs_open_retry(struct fs *fs, int dirfd, const char *name, int flags, mode_t mode)
{
	int fd = sys_openat(dirfd, name, flags, mode);
	if (fs_limit_error(fd)) {
		fds_shrink(fs);
		fd = sys_openat(dirfd, name, flags, mode);
		if (fs_limit_error(fd)) {
			log_error("the daemon has no fd left for an open: %s", strerror(-fd));
			fd = -ENOMEM;  /* the daemon's limit, not the application's: never EMFILE */
		}
	}
	return fd;
}

bool fs_node_names_in_use(struct fs *fs)
{
	return atomic_load_explicit(&fs->table.name_nodes, memory_order_relaxed) > 0;
}

void fs_node_pin_fd(struct fs *fs, struct fs_node *n)
{
	struct fs_fds *c = &fs->fds;
	int fd;

	if (n->reach != FS_REACH_FD && (fd = fs_node_fd(fs, n)) >= 0) {
		pthread_mutex_lock(&c->lock);
		if (n->fd_slot >= 0 && c->slot[n->fd_slot].fd == fd && n->reach != FS_REACH_FD) {
			/* borrowed now, so not on the LRU list: only the counts move */
			n->reach = FS_REACH_FD;
			c->cached--;
			c->pinned++;
		}
		pthread_mutex_unlock(&c->lock);
		fs_node_fd_put(fs, n, fd);
	}
}

void fs_node_hold_open(struct fs *fs, struct fs_node *n)
{
	int fd, none = -1;

	if (n->type != S_IFREG || atomic_load(&n->held_open_fd) >= 0 || fs_watch_covers(fs, n) ||
	    !fs_node_io_hold_existing(fs, n))
		return;
	fd = fs_node_open(fs, n, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		log_warn("keeping inode %llu open while its name goes failed: %s",
		         (unsigned long long)n->ino, strerror(-fd));
	else if (!atomic_compare_exchange_strong(&n->held_open_fd, &none, fd))
		sys_close(fd);   /* another thread was first */
	/* After the CAS: the last release of n's open state closes what was published. */
	fs_node_io_release(fs, n);
}

void fs_node_name_leaving(struct fs *fs, struct fs_node *n)
{
	if (n->reach == FS_REACH_NAME)
		fs_node_pin_fd(fs, n);
}

/* Keep fd (an O_PATH fd on n's inode) in the cache if n has no fd there yet, else close it. */
static void node_keep_fd(struct fs *fs, struct fs_node *n, int fd)
{
	struct fs_fds *c = &fs->fds;
	int evicted = -1;
	bool kept = false;

	pthread_mutex_lock(&c->lock);
	if (n->fd_slot < 0)
		kept = slot_insert(c, n, fd, 0, &evicted);
	pthread_mutex_unlock(&c->lock);
	if (!kept)
		sys_close(fd);
	if (evicted >= 0)
		sys_close(evicted);
}

/* Drop n's fd from the cache (the node is being freed: nobody borrows it). */
static void node_drop_fd(struct fs *fs, struct fs_node *n)
{
	struct fs_fds *c = &fs->fds;
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	if (n->fd_slot >= 0) {
		if (node_evictable(n) && c->slot[n->fd_slot].users == 0)
			lru_unlink(c, n->fd_slot);
		fd = slot_free(c, n->fd_slot);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		sys_close(fd);
}

/* ---- file handles ---------------------------------------------------------------------- */

/* Can handles of the file system fd is on be opened whenever we need them (fs_type.h)? */
static bool handles_reliable(int fd, char *why, size_t why_size)
{
	unsigned long type;
	if (fs_type_of_fd(fd, &type) == 0 && !fs_type_handles_reopen(type)) {
		if (why)
			snprintf(why, why_size, "the original is a FUSE file system, whose file handles "
			         "can be opened only while the kernel caches their inode");
		return false;
	}
	return true;
}

/* The index in fs->mounts of mount_id. A mount seen for the first time is registered when
 * fd (an O_PATH fd on an inode of it) is a directory: open_by_handle_at wants a mount fd that is
 * not O_PATH, and opening a directory has no side effects. -1: unknown mount, or table full. */
static int mount_index(struct fs *fs, int mount_id, int fd, mode_t type)
{
	int idx = -1, mount_fd = -1;
	pthread_mutex_lock(&fs->mounts_lock);
	for (unsigned i = 0; i < fs->mount_count && idx < 0; i++)
		if (fs->mounts[i].mount_id == mount_id)
			idx = (int)i;
	pthread_mutex_unlock(&fs->mounts_lock);
	if (idx >= 0 || type != S_IFDIR)
		return idx;
	mount_fd = fs_open_retry(fs, fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (mount_fd < 0)
		return -1;
	if (!handles_reliable(mount_fd, NULL, 0)) {
		sys_close(mount_fd);  /* its nodes are reached by name (asked again at each new node) */
		return -1;
	}
	pthread_mutex_lock(&fs->mounts_lock);
	for (unsigned i = 0; i < fs->mount_count && idx < 0; i++)
		if (fs->mounts[i].mount_id == mount_id)
			idx = (int)i;  /* another thread was first */
	if (idx < 0 && fs->mount_count < FS_MOUNTS_MAX) {
		idx = (int)fs->mount_count;
		fs->mounts[idx] = (struct fs_mount){ .mount_id = mount_id, .fd = mount_fd };
		fs->mount_count++;
		mount_fd = -1;
	}
	pthread_mutex_unlock(&fs->mounts_lock);
	if (mount_fd >= 0)
		sys_close(mount_fd);
	return idx;
}

/* Handle of the inode fd is open on, into h (room: FS_HANDLE_MAX); false if it has none. */
static bool handle_of(struct fs *fs, int fd, struct file_handle *h, int *mount_id)
{
	int rc;
	if (!fs->handles)
		return false;
	h->handle_bytes = FS_HANDLE_MAX;
	rc = sys_name_to_handle_at(fd, "", h, mount_id, AT_EMPTY_PATH);
	return rc == 0 && h->handle_bytes > 0 && h->handle_bytes <= FS_HANDLE_MAX;
}

static bool node_handle_equal(const struct fs_node *n, const struct file_handle *h)
{
	if (!h)
		return true;  /* no handle to compare: (dev, ino, type) decide */
	return n->handle_bytes == h->handle_bytes && n->handle_type == h->handle_type &&
	       !memcmp(n->handle, h->f_handle, h->handle_bytes);
}

int fs_node_handles_probe(struct fs *fs, int origin_fd)
{
	struct handle_buffer hb;
	struct file_handle *h = (struct file_handle *)(void *)hb.bytes;
	int mount_id, rc, fd;

	if (!handles_reliable(origin_fd, fs->handles_why, sizeof(fs->handles_why)))
		return -EOPNOTSUPP;
	h->handle_bytes = FS_HANDLE_MAX;
	rc = sys_name_to_handle_at(origin_fd, "", h, &mount_id, AT_EMPTY_PATH);
	if (rc < 0) {
		snprintf(fs->handles_why, sizeof(fs->handles_why),
		         "the original's file system gives no file handles (%s)", strerror(-rc));
		return rc;
	}
	if (mount_index(fs, mount_id, origin_fd, S_IFDIR) < 0) {
		snprintf(fs->handles_why, sizeof(fs->handles_why), "the original cannot be opened");
		return -EIO;
	}
	fd = sys_open_by_handle_at(fs->mounts[0].fd, h, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		snprintf(fs->handles_why, sizeof(fs->handles_why),
		         "file handles of the original cannot be opened (%s)", strerror(-fd));
		return fd;
	}
	sys_close(fd);
	fs->handles = true;
	return 0;
}

/* ---- the table ------------------------------------------------------------------------- */

/* 1/divisor of the daemon's fd limit, within [min, max]: the fd cache takes a quarter, the fill
 * queue (whose jobs hold their objects' fds) an eighth (an openless mount's implicit open
 * files, fs_openless.h, a sixteenth, with up to four fds each: a quarter); the rest is for
 * open files, directory streams and the cache's own files. The engine's kept objects hold no
 * fd: they are bounded by memory (kept_max_for_memory). */
static uint32_t fd_limit_share(unsigned divisor, uint32_t max, uint32_t min)
{
	struct rlimit rl;
	uint64_t share = max;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / divisor < share)
		share = rl.rlim_cur / divisor;
	return share < min ? min : (uint32_t)share;
}

/* One per `per` bytes of memory (the memory the daemon may use; 0: unknown, then max), within
 * [min, max]: fd_limit_share's counterpart for what costs memory, not fds. */
static uint32_t memory_share(uint64_t memory, uint64_t per, uint32_t max, uint32_t min)
{
	uint64_t n = memory ? memory / per : max;
	return (uint32_t)(n > max ? max : n < min ? min : n);
}

int fs_table_init(struct fs *fs)
{
	struct fs_table *t = &fs->table;
	bool from_cgroup;
	uint64_t memory;
	t->bucket_count = INITIAL_BUCKETS;
	t->by_id = calloc(t->bucket_count, sizeof(*t->by_id));
	t->by_key = calloc(t->bucket_count, sizeof(*t->by_key));
	t->by_name = calloc(t->bucket_count, sizeof(*t->by_name));
	if (!t->by_id || !t->by_key || !t->by_name) {
		free(t->by_id);
		free(t->by_key);
		free(t->by_name);
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->table_lock, NULL);
	for (int i = 0; i < FS_IO_STRIPES; i++)
		pthread_mutex_init(&fs->io_lock[i], NULL);
	pthread_mutex_init(&fs->fds.lock, NULL);
	fs->fds.free_head = fs->fds.lru_head = fs->fds.lru_tail = -1;
	fs->fds.max = fd_limit_share(4, FS_FD_CACHE_MAX, FS_FD_CACHE_MIN);
	fs->fill_queue_max = fd_limit_share(8, ENGINE_FILL_QUEUE_MAX, ENGINE_FILL_QUEUE_MIN);
	/* From the memory the daemon may use: the machine's, or its cgroup's limit (sys_memory.h). */
	memory = sys_memory_usable(&from_cgroup);
	fs->kept_max = memory_share(memory, FS_KEPT_MEMORY_PER, FS_KEPT_MAX, FS_KEPT_MIN);
	fs->fill_backlog_max = memory_share(memory, FS_FILL_BACKLOG_MEMORY_PER, ENGINE_FILL_BACKLOG_MAX,
	                                    FS_FILL_BACKLOG_MIN);
	if (memory)
		log_info("kept objects: at most %u (%llu MiB of memory%s)", fs->kept_max,
		         (unsigned long long)(memory >> 20), from_cgroup ? ": the cgroup's limit" : "");
	else
		log_info("kept objects: at most %u (the machine's memory is unknown)", fs->kept_max);
	fs->openless_max = fd_limit_share(16, FS_OPENLESS_MAX, FS_OPENLESS_MIN);
	pthread_mutex_init(&fs->mounts_lock, NULL);
	return 0;
}

static void io_free(struct fs *fs, struct engine_inode *io)
{
	engine_inode_free(fs->engine, io);
}

static size_t node_tail(const struct fs_node *n)
{
	return n->name_len ? sizeof(struct fs_node *) + n->name_len + 1u : n->handle_bytes;
}
static size_t node_size(const struct fs_node *n) { return sizeof(struct fs_node) + node_tail(n); }

static void node_free(struct fs *fs, struct fs_node *n)
{
	node_drop_fd(fs, n);
	if (atomic_load(&n->held_open_fd) >= 0)
		sys_close(atomic_load(&n->held_open_fd));
	if (n->io)  /* only at shutdown: holders keep a lookup reference */
		io_free(fs, n->io);
	free(n);
}

void fs_table_release(struct fs *fs)
{
	struct fs_table *t = &fs->table;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct fs_node *n = t->by_id[i];
		while (n) {
			struct fs_node *next = n->next_by_id;
			node_free(fs, n);
			n = next;
		}
	}
	free(t->by_id);
	free(t->by_key);
	free(t->by_name);
	pthread_mutex_destroy(&fs->table_lock);
	for (unsigned i = 0; i < fs->mount_count; i++)
		sys_close(fs->mounts[i].fd);
	fs->mount_count = 0;
}

/* After the root node was freed by the caller: the fd cache itself. */
static void fds_release(struct fs *fs)
{
	free(fs->fds.slot);
	fs->fds.slot = NULL;
	pthread_mutex_destroy(&fs->fds.lock);
	pthread_mutex_destroy(&fs->mounts_lock);
	for (int i = 0; i < FS_IO_STRIPES; i++)
		pthread_mutex_destroy(&fs->io_lock[i]);
}

static void table_insert(struct fs_table *t, struct fs_node *n)
{
	size_t bi = bucket_by_id(t, n->nodeid), bk = bucket_by_key(t, n->dev, n->ino);
	n->next_by_id = t->by_id[bi];
	t->by_id[bi] = n;
	n->next_by_key = t->by_key[bk];
	t->by_key[bk] = n;
	if (n->name_len) {
		size_t bn = bucket_by_name(t, node_parent(n), node_name(n));
		n->next_by_name = t->by_name[bn];
		t->by_name[bn] = n;
	}
	t->node_count++;
	t->node_bytes += node_size(n);
}

/* Double the buckets when the load passes 1; on allocation failure keep the old size. Only the
 * buckets are replaced: the counters stay (nodes_open and name_nodes move without table_lock;
 * a copy of the whole table once set them back to 0 at the growth past 1,024 nodes, so that
 * nodes_open read 0 with 1,024 implicit files open, and wrapped below 0 when they closed). */
static void table_grow(struct fs_table *t)
{
	struct fs_table bigger = { .bucket_count = t->bucket_count * 2 };
	bigger.by_id = calloc(bigger.bucket_count, sizeof(*bigger.by_id));
	bigger.by_key = calloc(bigger.bucket_count, sizeof(*bigger.by_key));
	bigger.by_name = calloc(bigger.bucket_count, sizeof(*bigger.by_name));
	if (!bigger.by_id || !bigger.by_key || !bigger.by_name) {
		free(bigger.by_id);
		free(bigger.by_key);
		free(bigger.by_name);
		return;
	}
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct fs_node *n = t->by_id[i];
		while (n) {
			struct fs_node *next = n->next_by_id;
			table_insert(&bigger, n);
			n = next;
		}
	}
	free(t->by_id);
	free(t->by_key);
	free(t->by_name);
	t->by_id = bigger.by_id;
	t->by_key = bigger.by_key;
	t->by_name = bigger.by_name;
	t->bucket_count = bigger.bucket_count;   /* node_count and node_bytes: the same nodes */
}

static struct fs_node *table_find_id(const struct fs_table *t, uint64_t nodeid)
{
	struct fs_node *n = t->by_id[bucket_by_id(t, nodeid)];
	while (n && n->nodeid != nodeid)
		n = n->next_by_id;
	return n;
}

/* The node of (dev, ino, type) whose handle is h (NULL: any; the newest comes first). An inode
 * number freed behind our back and reused has another handle (its generation differs), so the
 * old node, which nothing reaches any more, is not mistaken for the new inode. */
static struct fs_node *table_find_key(const struct fs_table *t, const struct stat *st,
                                      const struct file_handle *h)
{
	struct fs_node *n = t->by_key[bucket_by_key(t, st->st_dev, st->st_ino)];
	while (n && !(n->dev == st->st_dev && n->ino == st->st_ino &&
	              n->type == (st->st_mode & S_IFMT) && node_handle_equal(n, h)))
		n = n->next_by_key;
	return n;
}

static void table_remove(struct fs_table *t, struct fs_node *n)
{
	struct fs_node **pp = &t->by_id[bucket_by_id(t, n->nodeid)];
	while (*pp != n)
		pp = &(*pp)->next_by_id;
	*pp = n->next_by_id;
	pp = &t->by_key[bucket_by_key(t, n->dev, n->ino)];
	while (*pp != n)
		pp = &(*pp)->next_by_key;
	*pp = n->next_by_key;
	if (n->name_len) {
		pp = &t->by_name[bucket_by_name(t, node_parent(n), node_name(n))];
		while (*pp != n)
			pp = &(*pp)->next_by_name;
		*pp = n->next_by_name;
	}
	t->node_count--;
	t->node_bytes -= node_size(n);
}

struct fs_node *fs_node_get(struct fs *fs, uint64_t nodeid)
{
	struct fs_node *n;
	if (nodeid == FUSE_ROOT_ID)
		return fs->root;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_id(&fs->table, nodeid);
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

struct fs_node *fs_node_get_ref(struct fs *fs, uint64_t nodeid)
{
	struct fs_node *n;
	if (nodeid == FUSE_ROOT_ID)
		return fs->root;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_id(&fs->table, nodeid);
	if (n)
		n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

/* A node reached by handle h, else by parent and name (both given, the name at most 255
 * bytes), else pinned. The parent's reference is taken when the node enters the table. */
static struct fs_node *node_new(const struct stat *st, const struct file_handle *h, int mount,
                                struct fs_node *parent, const char *name)
{
	size_t name_len = !h && parent && name ? strlen(name) : 0;
	size_t tail = h ? h->handle_bytes : name_len && name_len <= 255 ? sizeof(parent) + name_len + 1 : 0;
	struct fs_node *n = calloc(1, sizeof(*n) + tail);
	if (!n)
		return NULL;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->fd_slot = -1;
	atomic_init(&n->held_open_fd, -1);
	n->lookups = 1;
	n->reach = FS_REACH_FD;
	if (h) {
		n->reach = FS_REACH_HANDLE;
		n->handle_bytes = (uint8_t)h->handle_bytes;
		n->handle_type = h->handle_type;
		n->mount = (uint16_t)mount;
		memcpy(n->handle, h->f_handle, h->handle_bytes);
	} else if (tail) {
		n->reach = FS_REACH_NAME;
		n->name_len = (uint8_t)name_len;
		memcpy(n->handle, &parent, sizeof(parent));
		memcpy(n->handle + sizeof(parent), name, name_len + 1);
	}
	return n;
}

/* With table_lock held: the node of (st, h) if the table has one, with a lookup reference
 * taken for the caller; else NULL, and fresh is in the table under a new nodeid. */
static struct fs_node *table_add_locked(struct fs *fs, struct fs_node *fresh, const struct stat *st,
                                        const struct file_handle *h)
{
	struct fs_table *t = &fs->table;
	struct fs_node *n = table_find_key(t, st, h);
	if (n) {
		n->lookups++;
		return n;
	}
	fresh->nodeid = fs->next_nodeid++;
	if (t->node_count >= t->bucket_count)
		table_grow(t);
	table_insert(t, fresh);
	fs_watch_node_added(fs, fresh);
	return NULL;
}

int fs_node_acquire(struct fs *fs, struct fs_node *parent, const char *name, uint32_t name_gen,
                    int fd, const struct stat *st, struct fs_node **out)
{
	struct fs_table *t = &fs->table;
	struct handle_buffer hb;
	struct file_handle *h = (struct file_handle *)(void *)hb.bytes;
	struct fs_node *n, *fresh;
	int mount_id, mount = -1;

	if (handle_of(fs, fd, h, &mount_id))
		mount = mount_index(fs, mount_id, fd, st->st_mode & S_IFMT);
	if (mount < 0)
		h = NULL;  /* no handle (or too many mounts below the origin): keep the fd open */

	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(t, st, h);
	if (n) {
		n->lookups++;
		pthread_mutex_unlock(&fs->table_lock);
		node_keep_fd(fs, n, fd);
		*out = n;
		return 0;
	}
	pthread_mutex_unlock(&fs->table_lock);

	fresh = node_new(st, h, mount, parent, name);
	if (!fresh) {
		sys_close(fd);
		return -ENOMEM;
	}

	pthread_mutex_lock(&fs->table_lock);
	n = table_add_locked(fs, fresh, st, h);  /* someone may have added it meanwhile */
	if (!n && fresh->name_len && fs_node_name_gen(fs, parent, name) != name_gen)
		atomic_store(&fresh->name_moved, true);   /* a change of its slot overlapped the lookup */
	if (n) {
		pthread_mutex_unlock(&fs->table_lock);
		free(fresh);
		node_keep_fd(fs, n, fd);
		*out = n;
		return 0;
	}
	if (fresh->name_len) {  /* it reaches its inode through the parent: keep the parent */
		if (parent->nodeid != FUSE_ROOT_ID)
			parent->lookups++;
		atomic_fetch_add_explicit(&t->name_nodes, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fs->table_lock);
	{
		/* Kept for the operations that follow a lookup (getattr, open). A node without a
		 * handle must keep it: it is its only way back to the inode. */
		struct fs_fds *c = &fs->fds;
		int evicted = -1;
		bool kept;
		pthread_mutex_lock(&c->lock);
		kept = slot_insert(c, fresh, fd, 0, &evicted);
		pthread_mutex_unlock(&c->lock);
		if (evicted >= 0)
			sys_close(evicted);
		if (!kept) {
			sys_close(fd);
			if (!fresh->handle_bytes) {
				fs_node_forget(fs, fresh->nodeid, 1);
				return -ENOMEM;
			}
		}
	}
	*out = fresh;
	return 0;
}

/* The mount index a handle of parent's mount is opened with: the parent's, or the origin's
 * (index 0) for the root. -1: parent is reached otherwise. */
static int parent_mount(const struct fs_node *parent)
{
	if (parent->reach == FS_REACH_HANDLE && parent->handle_bytes)
		return parent->mount;
	return parent->nodeid == FUSE_ROOT_ID ? 0 : -1;
}

static bool handle_load(struct file_handle *h, const struct cache_origin_handle *from)
{
	if (!from->bytes || from->bytes > FS_HANDLE_MAX)
		return false;
	h->handle_bytes = from->bytes;
	h->handle_type = from->type;
	memcpy(h->f_handle, from->data, from->bytes);
	return true;
}

int fs_handle_open(struct fs *fs, const struct fs_node *parent,
                   const struct cache_origin_handle *handle, int flags)
{
	struct handle_buffer hb;
	struct file_handle *h = (struct file_handle *)(void *)hb.bytes;
	int mount = parent_mount(parent), mount_fd;

	if (mount < 0 || !fs->handles || !handle_load(h, handle))
		return -EINVAL;
	pthread_mutex_lock(&fs->mounts_lock);
	mount_fd = (unsigned)mount < fs->mount_count ? fs->mounts[mount].fd : -1;
	pthread_mutex_unlock(&fs->mounts_lock);
	if (mount_fd < 0)
		return -EINVAL;
	return sys_open_by_handle_at(mount_fd, h, flags | O_CLOEXEC);
}

int fs_node_acquire_handle(struct fs *fs, struct fs_node *parent, const struct stat *st,
                           const struct cache_origin_handle *handle, struct fs_node **out)
{
	struct handle_buffer hb;
	struct file_handle *h = (struct file_handle *)(void *)hb.bytes;
	int mount = parent_mount(parent);
	struct fs_node *n, *fresh;

	if (mount < 0 || !fs->handles || (unsigned)mount >= fs->mount_count || !handle_load(h, handle))
		return -EINVAL;
	fresh = node_new(st, h, mount, NULL, NULL);
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&fs->table_lock);
	n = table_add_locked(fs, fresh, st, h);
	pthread_mutex_unlock(&fs->table_lock);
	if (n)
		free(fresh);
	*out = n ? n : fresh;
	return 0;
}

int fs_node_root_init(struct fs *fs, int origin_fd, const struct stat *st)
{
	struct fs_fds *c = &fs->fds;
	int evicted;
	bool kept;

	fs->root = node_new(st, NULL, -1, NULL, NULL);
	if (!fs->root)
		return -ENOMEM;
	fs->root->nodeid = FUSE_ROOT_ID;
	pthread_mutex_lock(&c->lock);
	kept = slot_insert(c, fs->root, origin_fd, 0, &evicted);  /* pinned: no handle */
	pthread_mutex_unlock(&c->lock);
	if (!kept) {
		free(fs->root);
		fs->root = NULL;
		return -ENOMEM;
	}
	return 0;
}

void fs_node_root_release(struct fs *fs)
{
	if (fs->root) {
		node_free(fs, fs->root);  /* closes the origin fd */
		fs->root = NULL;
	}
	fds_release(fs);
}

int fs_handle_stat(struct fs *fs, struct file_handle *h, struct stat *st)
{
	int mount_fd, fd, rc;

	pthread_mutex_lock(&fs->mounts_lock);
	mount_fd = fs->mounts[0].fd;
	pthread_mutex_unlock(&fs->mounts_lock);
	fd = sys_open_by_handle_at(mount_fd, h, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return fd;
	rc = sys_fstatat(fd, "", st, AT_EMPTY_PATH);
	sys_close(fd);
	return rc;
}

struct fs_node *fs_node_find_ref(struct fs *fs, const struct stat *st)
{
	struct fs_node *n;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(&fs->table, st, NULL);
	if (n)
		n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

struct fs_node *fs_node_find_held(struct fs *fs, const struct stat *st)
{
	struct fs_node *n;
	bool held;

	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(&fs->table, st, NULL);
	if (n)
		n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
	if (!n)
		return NULL;
	/* An fd in the cache keeps the node's inode alive, so its (dev, ino) cannot have been
	 * freed and given to another inode: the inode st describes is this node's. */
	pthread_mutex_lock(&fs->fds.lock);
	held = n->fd_slot >= 0;
	pthread_mutex_unlock(&fs->fds.lock);
	if (!held) {
		fs_node_forget(fs, n->nodeid, 1);
		return NULL;
	}
	return n;
}

void fs_node_ref(struct fs *fs, struct fs_node *n)
{
	if (n->nodeid == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->table_lock);
	n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
}

void fs_node_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup)
{
	struct fs_node *n, *parent;
	if (nodeid == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_id(&fs->table, nodeid);
	if (!n) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	n->lookups = nlookup >= n->lookups ? 0 : n->lookups - nlookup;
	if (n->lookups) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	table_remove(&fs->table, n);
	fs_watch_node_removed(fs, n);
	if (n->name_len)
		atomic_fetch_sub_explicit(&fs->table.name_nodes, 1, memory_order_relaxed);
	pthread_mutex_unlock(&fs->table_lock);
	parent = n->name_len ? node_parent(n) : NULL;
	node_free(fs, n);
	if (parent)  /* the reference the node held (may free the parent in turn) */
		fs_node_forget(fs, parent->nodeid, 1);
}

size_t fs_node_refs_all(struct fs *fs, mode_t type, struct fs_node ***out)
{
	struct fs_table *t = &fs->table;
	struct fs_node **all;
	size_t count = 0;

	pthread_mutex_lock(&fs->table_lock);
	all = malloc((t->node_count ? t->node_count : 1) * sizeof(*all));
	for (size_t i = 0; all && i < t->bucket_count; i++)
		for (struct fs_node *n = t->by_id[i]; n; n = n->next_by_id) {
			if (type && n->type != type)
				continue;
			n->lookups++;
			all[count++] = n;
		}
	pthread_mutex_unlock(&fs->table_lock);
	*out = all;
	return count;
}

/* ---- open state ------------------------------------------------------------------------ */

static pthread_mutex_t *io_stripe(struct fs *fs, const struct fs_node *n)
{
	return &fs->io_lock[hash_u64(n->nodeid) & (FS_IO_STRIPES - 1)];
}

static struct engine_inode *io_hold(struct fs *fs, struct fs_node *n, bool create)
{
	pthread_mutex_t *stripe = io_stripe(fs, n);
	struct engine_inode *io;

	pthread_mutex_lock(stripe);
	io = n->io;
	if (!io && create) {
		io = engine_inode_new(fs->engine, n, n->nodeid, (uint64_t)n->ino);
		if (io) {
			n->io = io;
			atomic_fetch_add_explicit(&fs->table.nodes_open, 1, memory_order_relaxed);
		}
	}
	if (io)
		engine_inode_holds_add(io, 1);
	pthread_mutex_unlock(stripe);
	return io;
}

struct engine_inode *fs_node_io_hold(struct fs *fs, struct fs_node *n) { return io_hold(fs, n, true); }
struct engine_inode *fs_node_io_hold_existing(struct fs *fs, struct fs_node *n) { return io_hold(fs, n, false); }

void fs_node_io_release(struct fs *fs, struct fs_node *n)
{
	pthread_mutex_t *stripe = io_stripe(fs, n);
	struct engine_inode *io;
	int held;

	pthread_mutex_lock(stripe);
	io = n->io;
	if (engine_inode_holds_add(io, -1)) {
		pthread_mutex_unlock(stripe);
		return;
	}
	n->io = NULL;
	/* No open file of ours holds the inode any more: nothing needs it kept open
	 * (fs_node_hold_open publishes only while it holds the engine inode). */
	held = atomic_exchange(&n->held_open_fd, -1);
	pthread_mutex_unlock(stripe);
	atomic_fetch_sub_explicit(&fs->table.nodes_open, 1, memory_order_relaxed);
	io_free(fs, io);
	if (held >= 0)
		sys_close(held);
}

void fs_gauges(struct fs *fs, struct fs_gauges *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_lock(&fs->table_lock);
	g->nodes = fs->table.node_count + 1;  /* and the root */
	g->nodes_open = atomic_load_explicit(&fs->table.nodes_open, memory_order_relaxed);
	g->node_bytes = fs->table.node_bytes + 2 * fs->table.bucket_count * sizeof(struct fs_node *) +
	                g->nodes_open * engine_inode_size();
	pthread_mutex_unlock(&fs->table_lock);
	pthread_mutex_lock(&fs->fds.lock);
	g->fds_cached = fs->fds.cached;
	g->fds_pinned = fs->fds.pinned;
	pthread_mutex_unlock(&fs->fds.lock);
	g->fd_cache_misses = atomic_load_explicit(&fs->fds.misses, memory_order_relaxed);
}
