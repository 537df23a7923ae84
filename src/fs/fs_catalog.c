/* fs_catalog: the metadata catalog (cache/cache_catalog.h) wired into the fs layer, and the
 * seal. Where the watcher covers a directory (and the kernel caches listings, so READDIR comes
 * with fh 0), READDIR(PLUS) is served from the directory's record while its stamp (ino, mtime,
 * ctime) is the one recorded, and LOOKUP is answered from it: a name missing from a valid
 * listing is ENOENT without asking the origin. A listing the origin gave is recorded when the
 * directory's stamp held still around it. A directory's stamp is kept in its node from the last
 * time it was seen (a stat, or its entry in a trusted listing) until a change voids it.
 *
 * Attributes of a file from a record are confirmed by one stat by handle (rule 3 of
 * docs/ARCHITECTURE.md "The metadata catalog") unless the seal is valid: at a clean stop the
 * daemon records the original's block device's write counters after a syncfs; at the next
 * start a syncfs and the same counters (same boot) prove that nothing on that file system
 * changed while the daemon was down, and the watcher has covered it since. Proof and limits:
 * docs/ARCHITECTURE.md "The seal".
 */
#include "fs/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sys/sys.h"
#include "util/log.h"

#define SEAL_FILE "seal"
#define SEAL_MAGIC "cachemax-seal 1"

static void seal_void(struct fs *fs, const char *why)
{
	pthread_mutex_lock(&fs->catalog_lock);
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: %s", why);
	pthread_mutex_unlock(&fs->catalog_lock);
}

/* ---- the seal's facts: boot, device counters --------------------------------------------- */

static int read_small(const char *path, char *buf, size_t size)
{
	int fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n;
	if (fd < 0)
		return fd;
	n = sys_pread(fd, buf, size - 1, 0);
	sys_close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

static int boot_id(char out[64])
{
	int rc = read_small("/proc/sys/kernel/random/boot_id", out, 64);
	if (rc == 0)
		out[strcspn(out, "\n")] = '\0';
	return rc;
}

/* The block device's counters of writes (fields 5, 7 and 14 of its stat: write requests,
 * sectors written, sectors discarded). -ENODEV: the original is not on a block device. */
static bool counts_equal(const struct fs_seal_counts *a, const struct fs_seal_counts *b)
{
	/* Write requests are not compared: a syncfs with nothing to write still sends an empty
	 * flush, counted as a write of no sector. */
	return a->sectors == b->sectors && a->discards == b->discards;
}

static int device_counts(const struct fs *fs, struct fs_seal_counts *c)
{
	char path[96], buf[512];
	unsigned long long f[17] = { 0 };
	int rc, n;

	if (!fs->seal_dev.known)
		return -ENODEV;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", fs->seal_dev.major, fs->seal_dev.minor);
	rc = read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return rc == -ENOENT ? -ENODEV : rc;
	n = sscanf(buf, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	           &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10],
	           &f[11], &f[12], &f[13]);
	if (n < 11)
		return -EBADMSG;
	c->writes = f[4];
	c->sectors = f[6];
	c->discards = n >= 14 ? f[13] : 0;
	return 0;
}

/* syncfs of the original (a real fd: syncfs refuses O_PATH ones). */
static int origin_syncfs(struct fs *fs)
{
	char proc[FS_PROC_PATH_MAX];
	int fd, rc;
	fs_proc_path(fs->cfg.origin_fd, proc);
	fd = sys_openat(AT_FDCWD, proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	rc = sys_syncfs(fd);
	sys_close(fd);
	return rc;
}

struct seal {
	char boot[64];
	unsigned major, minor;
	uint64_t root_dev, root_ino;
	struct fs_seal_counts counts;
};

static void seal_path(struct fs *fs, char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", fs->catalog_path, name);
}

static int seal_parse(const char *buf, struct seal *s)
{
	unsigned long long rd, ri, w, se, d;
	char magic[32];
	if (sscanf(buf, "%31[^\n]\nboot %63s\ndevice %u:%u\nroot %llu %llu\nwrites %llu\nsectors %llu\n"
	           "discards %llu\n", magic, s->boot, &s->major, &s->minor, &rd, &ri, &w, &se, &d) != 9 ||
	    strcmp(magic, SEAL_MAGIC))
		return -EBADMSG;
	s->root_dev = rd;
	s->root_ino = ri;
	s->counts = (struct fs_seal_counts){ w, se, d };
	return 0;
}

/* ---- directory attributes ------------------------------------------------------------------- */

#define DIR_ATTR_BUCKETS 16384u
#define DIR_ATTR_MAX 65536u      /* about 8 MiB at most; beyond, GETATTR asks the origin */
struct fs_dir_attr {
	struct fs_dir_attr *next;
	struct cache_catalog_attr attr;  /* without its handle: attr.handle.bytes is 0 */
};

static size_t dir_attr_bucket(uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
	return (size_t)((h ^ (h >> 29)) % DIR_ATTR_BUCKETS);
}

static void dir_attr_keep(struct fs *fs, const struct cache_catalog_attr *a)
{
	struct fs_dir_attr *e, **head;
	if (!fs->dir_attrs)
		return;
	pthread_mutex_lock(&fs->catalog_lock);
	head = &fs->dir_attrs[dir_attr_bucket(a->dev, a->ino)];
	for (e = *head; e && !(e->attr.dev == a->dev && e->attr.ino == a->ino); e = e->next)
		;
	if (!e && fs->dir_attr_count < DIR_ATTR_MAX && (e = calloc(1, sizeof(*e)))) {
		e->next = *head;
		*head = e;
		fs->dir_attr_count++;
	}
	if (e) {
		e->attr = *a;
		e->attr.handle.bytes = 0;
	}
	pthread_mutex_unlock(&fs->catalog_lock);
}

int fs_catalog_dir_attr(struct fs *fs, struct fs_node *n, struct stat *st)
{
	struct fs_dir_attr *e;
	int rc = -ENOENT;
	if (!fs->dir_attrs || n->type != S_IFDIR || !atomic_load(&fs->catalog_sealed))
		return -ENOENT;
	pthread_mutex_lock(&fs->catalog_lock);
	for (e = fs->dir_attrs[dir_attr_bucket(n->dev, n->ino)]; e; e = e->next)
		if (e->attr.dev == n->dev && e->attr.ino == n->ino)
			break;
	/* Valid while the node's stamp is current (every change to the directory or its own
	 * attributes voids it) and is the one these attributes carry. */
	if (e && n->stamp_epoch == fs->catalog_epoch && n->stamp_mtime_ns == e->attr.mtime_ns &&
	    n->stamp_ctime_ns == e->attr.ctime_ns) {
		cache_catalog_attr_to_stat(&e->attr, st);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->catalog_lock);
	return rc;
}

static void dir_attrs_free(struct fs *fs)
{
	if (!fs->dir_attrs)
		return;
	for (size_t i = 0; i < DIR_ATTR_BUCKETS; i++)
		while (fs->dir_attrs[i]) {
			struct fs_dir_attr *e = fs->dir_attrs[i];
			fs->dir_attrs[i] = e->next;
			free(e);
		}
	free(fs->dir_attrs);
	fs->dir_attrs = NULL;
}

/* True if the block device of dev (or, for a partition, its disk) counts its I/O: with
 * queue/iostats 0 the counters the seal compares never move. */
static bool iostats_on(dev_t dev)
{
	char path[128], buf[8];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/iostats", major(dev), minor(dev));
	if (read_small(path, buf, sizeof(buf)) < 0) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/iostats", major(dev), minor(dev));
		if (read_small(path, buf, sizeof(buf)) < 0)
			return false;
	}
	return buf[0] == '1';
}

/* ---- open, the seal at the start ----------------------------------------------------------- */

/* Removes every record (a catalog that a void seal leaves untrusted on a block device: starting
 * empty lets the next seal vouch for every record). Records are in CATALOG/HH/ and tmp/. */
static bool catalog_wipe(const char *path)
{
	DIR *top = opendir(path);
	struct dirent *de;
	bool ok = true;
	if (!top)
		return errno == ENOENT;
	while ((de = readdir(top))) {
		char sub[4200];
		struct stat st;
		DIR *d;
		struct dirent *e;
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_DIR &&
		    (de->d_type != DT_UNKNOWN || fstatat(dirfd(top), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		d = opendir(sub);
		if (!d) {
			ok = false;
			continue;
		}
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
				ok = false;
		closedir(d);
	}
	closedir(top);
	return ok;
}

void fs_catalog_open(struct fs *fs, const char *path)
{
	char sp[4200], buf[512], boot[64];
	struct seal s;
	struct stat st;
	int rc, have_seal;

	pthread_mutex_init(&fs->catalog_lock, NULL);
	fs->catalog_epoch = 1;
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: no catalog");
	if (!path)
		return;
	snprintf(fs->catalog_path, sizeof(fs->catalog_path), "%s", path);
	if (sys_fstatat(fs->cfg.origin_fd, "", &st, AT_EMPTY_PATH) == 0 && major(st.st_dev) != 0) {
		char dev[96];
		snprintf(dev, sizeof(dev), "/sys/dev/block/%u:%u/stat", major(st.st_dev), minor(st.st_dev));
		fs->seal_dev.major = major(st.st_dev);
		fs->seal_dev.minor = minor(st.st_dev);
		fs->seal_dev.known = access(dev, R_OK) == 0 && iostats_on(st.st_dev);
	}
	/* The seal is read and removed before anything else: a crash from now on leaves none. */
	seal_path(fs, sp, sizeof(sp), SEAL_FILE);
	have_seal = read_small(sp, buf, sizeof(buf)) == 0 && seal_parse(buf, &s) == 0;
	rc = sys_unlinkat(AT_FDCWD, sp, 0);
	if (rc < 0 && rc != -ENOENT) {  /* a seal left behind must not vouch for this run */
		have_seal = 0;
		atomic_store(&fs->catalog_tainted, true);
	}
	if (!fs->seal_dev.known) {
		snprintf(fs->seal_why, sizeof(fs->seal_why),
		         "void: the original is not on a block device that counts its writes (its "
		         "changes while the daemon is down cannot be proven absent)");
	} else {
		rc = origin_syncfs(fs);
		if (rc == 0)
			rc = device_counts(fs, &fs->seal_counts);
		if (rc < 0)
			snprintf(fs->seal_why, sizeof(fs->seal_why), "void: the original's device cannot be "
			         "read (%s)", strerror(-rc));
		else if (!have_seal)
			snprintf(fs->seal_why, sizeof(fs->seal_why), "void: no seal (first start, or the last "
			         "stop was not clean)");
		else if (boot_id(boot) < 0 || strcmp(boot, s.boot))
			snprintf(fs->seal_why, sizeof(fs->seal_why), "void: the machine was restarted");
		else if (s.major != fs->seal_dev.major || s.minor != fs->seal_dev.minor ||
		         s.root_dev != st.st_dev || s.root_ino != st.st_ino)
			snprintf(fs->seal_why, sizeof(fs->seal_why), "void: another device or directory");
		else if (!counts_equal(&s.counts, &fs->seal_counts))
			snprintf(fs->seal_why, sizeof(fs->seal_why), "void: the original's device was written "
			         "while the daemon was down");
		else {
			snprintf(fs->seal_why, sizeof(fs->seal_why), "valid");
			atomic_store(&fs->catalog_sealed, true);
		}
		if (!atomic_load(&fs->catalog_sealed)) {
			/* The records may hold attributes changed while the daemon was down: start
			 * empty, so that the next seal vouches for every record it covers. */
			if (!catalog_wipe(path))
				atomic_store(&fs->catalog_tainted, true);  /* no seal at the stop */
		}
	}
	rc = cache_catalog_open(path, &fs->catalog);
	if (rc < 0) {
		log_warn("no metadata catalog at '%s': %s", path, strerror(-rc));
		fs->catalog = NULL;
		atomic_store(&fs->catalog_sealed, false);
		snprintf(fs->seal_why, sizeof(fs->seal_why), "void: no catalog (%s)", strerror(-rc));
		return;
	}
	if (atomic_load(&fs->catalog_sealed))
		fs->dir_attrs = calloc(DIR_ATTR_BUCKETS, sizeof(*fs->dir_attrs));
	log_info("metadata catalog at '%s', seal %s", path, fs->seal_why);
}

void fs_catalog_close(struct fs *fs)
{
	cache_catalog_free(fs->catalog);
	fs->catalog = NULL;
	dir_attrs_free(fs);
	pthread_mutex_destroy(&fs->catalog_lock);
}

void fs_catalog_watch_started(struct fs *fs)
{
	struct fs_seal_counts now;
	if (!fs->catalog)
		return;
	if (!fs_watch_active(fs, NULL, 0)) {
		atomic_store(&fs->catalog_sealed, false);
		atomic_store(&fs->catalog_tainted, true);
		seal_void(fs, "the original is not watched (the catalog is not used)");
		return;
	}
	if (!atomic_load(&fs->catalog_sealed))
		return;
	/* A change between the check in fs_catalog_open and the watcher's start is in no event:
	 * the counters, after another syncfs, tell. */
	if (origin_syncfs(fs) < 0 || device_counts(fs, &now) < 0 ||
	    !counts_equal(&now, &fs->seal_counts)) {
		atomic_store(&fs->catalog_sealed, false);
		atomic_store(&fs->catalog_tainted, true);
		seal_void(fs, "the original was written while the daemon started");
	}
}

void fs_catalog_seal_write(struct fs *fs, void (*drain)(struct fs *))
{
	char sp[4200], tmp[4200], boot[64], buf[512];
	struct fs_seal_counts c;
	struct stat st;
	int fd, len;

	if (!fs->catalog || !fs->seal_dev.known || atomic_load(&fs->catalog_tainted))
		return;
	if (origin_syncfs(fs) < 0)
		return;
	drain(fs);  /* every change so far is in an event: its records go before the seal */
	if (atomic_load(&fs->catalog_tainted) || device_counts(fs, &c) < 0 || boot_id(boot) < 0 ||
	    sys_fstatat(fs->cfg.origin_fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	len = snprintf(buf, sizeof(buf), "%s\nboot %s\ndevice %u:%u\nroot %llu %llu\nwrites %llu\n"
	               "sectors %llu\ndiscards %llu\n", SEAL_MAGIC, boot, fs->seal_dev.major,
	               fs->seal_dev.minor, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	               (unsigned long long)c.writes, (unsigned long long)c.sectors,
	               (unsigned long long)c.discards);
	seal_path(fs, sp, sizeof(sp), SEAL_FILE);
	seal_path(fs, tmp, sizeof(tmp), SEAL_FILE ".tmp");
	fd = sys_openat(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (sys_pwrite(fd, buf, (size_t)len, 0) != len || sys_fsync(fd, false) < 0 ||
	    sys_renameat2(AT_FDCWD, tmp, AT_FDCWD, sp, 0) < 0) {
		sys_close(fd);
		(void)sys_unlinkat(AT_FDCWD, tmp, 0);
		return;
	}
	sys_close(fd);
	log_info("metadata catalog sealed (device %u:%u, %llu sectors written)", fs->seal_dev.major,
	         fs->seal_dev.minor, (unsigned long long)c.sectors);
}

bool fs_catalog_report(struct fs *fs, char *seal, size_t seal_size, uint64_t *hits,
                       uint64_t *misses)
{
	pthread_mutex_lock(&fs->catalog_lock);
	snprintf(seal, seal_size, "%s", fs->seal_why);
	pthread_mutex_unlock(&fs->catalog_lock);
	*hits = atomic_load(&fs->catalog_hits);
	*misses = atomic_load(&fs->catalog_misses);
	return fs->catalog != NULL;
}

/* ---- stamps ---------------------------------------------------------------------------------- */

bool fs_catalog_on(struct fs *fs, const struct fs_node *dir)
{
	return fs->catalog && fs->kernel_inc_epoch && fs_watch_covers(fs, dir);
}

static int64_t ts_ns(const struct timespec *ts) { return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec; }

static void stamp_set(struct fs *fs, struct fs_node *n, int64_t mtime_ns, int64_t ctime_ns)
{
	pthread_mutex_lock(&fs->catalog_lock);
	n->stamp_mtime_ns = mtime_ns;
	n->stamp_ctime_ns = ctime_ns;
	n->stamp_epoch = fs->catalog_epoch;
	pthread_mutex_unlock(&fs->catalog_lock);
}

void fs_catalog_stamp_seen(struct fs *fs, struct fs_node *n, const struct stat *st)
{
	if (fs->catalog && n->type == S_IFDIR && n->ino == st->st_ino)
		stamp_set(fs, n, ts_ns(&st->st_mtim), ts_ns(&st->st_ctim));
}

static bool stamp_get(struct fs *fs, struct fs_node *n, struct cache_catalog_stamp *s)
{
	bool ok;
	pthread_mutex_lock(&fs->catalog_lock);
	ok = n->stamp_epoch == fs->catalog_epoch;
	s->ino = n->ino;
	s->mtime_ns = n->stamp_mtime_ns;
	s->ctime_ns = n->stamp_ctime_ns;
	pthread_mutex_unlock(&fs->catalog_lock);
	return ok;
}

/* The stamp of directory d: from its node, else one stat on the origin (then kept). */
static int stamp_of(struct fs *fs, struct fs_node *d, struct cache_catalog_stamp *s)
{
	struct stat st;
	int rc;
	if (stamp_get(fs, d, s))
		return 0;
	rc = fs_node_stat(fs, d, &st);
	if (rc < 0)
		return rc;
	fs_catalog_stamp_seen(fs, d, &st);
	cache_catalog_stamp_from_stat(&st, s);
	return 0;
}

static atomic_uint_fast64_t *gen_slot(struct fs *fs, uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
	return &fs->catalog_gen[(h ^ (h >> 31)) % 64];
}

/* A record that cannot be removed may be read again later: the seal goes for this run (the
 * next start, void, wipes the catalog). */
static void record_forget(struct fs *fs, uint64_t dev, uint64_t ino)
{
	int rc;
	atomic_fetch_add(gen_slot(fs, dev, ino), 1);
	rc = cache_catalog_dir_forget(fs->catalog, dev, ino);
	if (rc < 0 && rc != -ENOENT) {
		atomic_store(&fs->catalog_sealed, false);
		if (!atomic_exchange(&fs->catalog_tainted, true))
			seal_void(fs, "a record could not be removed");
	}
}

static void stamp_void(struct fs *fs, struct fs_node *n)
{
	pthread_mutex_lock(&fs->catalog_lock);
	n->stamp_epoch = 0;
	pthread_mutex_unlock(&fs->catalog_lock);
}

void fs_catalog_dir_changed(struct fs *fs, struct fs_node *dir)
{
	if (!fs->catalog || !dir)
		return;
	record_forget(fs, dir->dev, dir->ino);
	stamp_void(fs, dir);
}

void fs_catalog_dir_changed_handle(struct fs *fs, struct file_handle *h)
{
	struct stat st;
	struct fs_node *n;
	int mount_fd, fd, rc;

	if (!fs->catalog)
		return;
	pthread_mutex_lock(&fs->mounts_lock);
	mount_fd = fs->mounts[0].fd;
	pthread_mutex_unlock(&fs->mounts_lock);
	fd = sys_open_by_handle_at(mount_fd, h, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;  /* gone: its record is keyed by a stamp nothing will match */
	rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	sys_close(fd);
	if (rc < 0 || !S_ISDIR(st.st_mode))
		return;
	record_forget(fs, st.st_dev, st.st_ino);
	n = st.st_dev == fs->root->dev && st.st_ino == fs->root->ino ? fs->root : fs_node_find_ref(fs, &st);
	if (n) {
		stamp_void(fs, n);
		if (n != fs->root)
			fs_node_forget(fs, n->nodeid, 1);
	}
}

void fs_catalog_nameless_change(struct fs *fs, struct file_handle *self)
{
	struct stat st;
	int mount_fd, fd, rc;

	if (!atomic_load(&fs->catalog_sealed))
		return;
	pthread_mutex_lock(&fs->mounts_lock);
	mount_fd = fs->mounts[0].fd;
	pthread_mutex_unlock(&fs->mounts_lock);
	fd = sys_open_by_handle_at(mount_fd, self, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;  /* its last name went */
	rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	sys_close(fd);
	if (rc == 0 && !S_ISDIR(st.st_mode)) {
		atomic_store(&fs->catalog_sealed, false);
		atomic_store(&fs->catalog_tainted, true);
		seal_void(fs, st.st_nlink >= 2 ? "a hard link was made while running"
		                               : "a file changed with no name in its event (opened by handle)");
	}
}

void fs_catalog_overflow(struct fs *fs)
{
	if (!fs->catalog)
		return;
	atomic_store(&fs->catalog_sealed, false);
	atomic_store(&fs->catalog_tainted, true);
	pthread_mutex_lock(&fs->catalog_lock);
	fs->catalog_epoch++;
	if (fs->catalog_epoch == 0)
		fs->catalog_epoch = 1;
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: change events were lost");
	pthread_mutex_unlock(&fs->catalog_lock);
}

/* ---- entries -------------------------------------------------------------------------------- */

/* Attributes from a record are served as they are only under the seal, never for a file with
 * other links (a change through another name reports another directory), and never for a
 * directory: a directory's own changes (chmod, a name made in it) are reported on the
 * directory itself, not on the parent whose record holds its attributes. */
static bool attrs_trusted(struct fs *fs, const struct cache_catalog_attr *a)
{
	return atomic_load(&fs->catalog_sealed) && !S_ISDIR(a->mode) && a->nlink <= 1;
}

int fs_catalog_entry_node(struct fs *fs, struct fs_node *p, const struct cache_catalog_entry *e,
                          bool attrs_fresh, struct stat *st, struct fs_node **out)
{
	const struct cache_catalog_attr *a = &e->attr;
	struct fs_node *held;
	int fd, rc;

	if (a->dev != p->dev || !a->handle.bytes || a->handle.bytes > FS_HANDLE_MAX)
		return 1;
	cache_catalog_attr_to_stat(a, st);
	held = fs_node_find_ref(fs, st);
	if (held) {  /* the kernel holds it: its attributes come from the origin, as before */
		fs_node_forget(fs, held->nodeid, 1);
		return 1;
	}
	if (attrs_fresh || attrs_trusted(fs, a)) {
		rc = fs_node_acquire_handle(fs, p, st, &a->handle, out);
		if (rc == -EINVAL)
			return 1;
		if (rc == 0 && (*out)->type == S_IFDIR) {
			fs_catalog_stamp_seen(fs, *out, st);
			if (!attrs_fresh)
				dir_attr_keep(fs, a);
		}
		return rc;
	}
	/* Rule 3: one stat by handle (no directory read) confirms the attributes. */
	fd = fs_handle_open(fs, p, &a->handle, O_PATH);
	if (fd < 0)
		return 1;
	rc = sys_fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (rc < 0 || st->st_ino != a->ino || st->st_dev != a->dev) {
		sys_close(fd);
		return 1;
	}
	if (!cache_catalog_attr_matches(a, st))
		record_forget(fs, p->dev, p->ino);  /* re-listed next time */
	rc = fs_node_acquire(fs, p, e->name, fd, st, out);
	if (rc == 0)
		fs_catalog_stamp_seen(fs, *out, st);
	return rc;
}

int fs_catalog_lookup(struct fs *fs, struct fs_node *p, const char *name, struct stat *st,
                      struct fs_node **out)
{
	struct cache_catalog_stamp stamp;
	struct cache_catalog_entry e;
	int rc;

	if (!fs_catalog_on(fs, p) || p->type != S_IFDIR)
		return 1;
	if (stamp_of(fs, p, &stamp) < 0)
		return 1;
	rc = cache_catalog_attr_get(fs->catalog, p->dev, p->ino, &stamp, name, &e.attr);
	if (rc == -ENODATA) {
		atomic_fetch_add(&fs->catalog_hits, 1);
		return -ENOENT;
	}
	if (rc < 0) {
		atomic_fetch_add(&fs->catalog_misses, 1);
		return 1;
	}
	e.name = name;
	e.type = (uint8_t)IFTODT(e.attr.mode);
	rc = fs_catalog_entry_node(fs, p, &e, false, st, out);
	atomic_fetch_add(rc == 0 ? &fs->catalog_hits : &fs->catalog_misses, 1);
	return rc;
}

/* ---- listings -------------------------------------------------------------------------------- */

struct dirent64_rec {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int entry_compare(const void *a, const void *b)
{
	return strcmp(((const struct cache_catalog_entry *)a)->name,
	              ((const struct cache_catalog_entry *)b)->name);
}

/* The origin's listing of d now, every entry stat'ed and with its handle; recorded if d's stamp
 * is the same before and after. 0, -E2BIG (too many entries), -errno. */
static int listing_build(struct fs *fs, struct fs_node *d, struct fs_listing *out)
{
	struct stat before, after;
	struct cache_catalog_stamp s0, s1;
	struct cache_catalog_entry *entries = NULL;
	char *names = NULL, *buf = NULL;
	size_t count = 0, cap = 0, names_len = 0, names_cap = 0;
	bool complete = true;
	uint64_t gen = atomic_load(gen_slot(fs, d->dev, d->ino));
	int nfd, dfd, rc;

	nfd = fs_node_fd(fs, d);
	if (nfd < 0)
		return nfd;
	rc = sys_fstatat(nfd, "", &before, AT_EMPTY_PATH);
	dfd = rc < 0 ? rc : fs_open_retry(fs, nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	fs_node_fd_put(fs, d, nfd);
	if (dfd < 0)
		return dfd;
	buf = malloc(32768);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = sys_getdents(dfd, buf, 32768);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			struct dirent64_rec *de = (struct dirent64_rec *)(void *)(buf + off);
			size_t len = strlen(de->d_name);
			struct cache_catalog_entry *e;
			struct stat st;
			off += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (count == FS_CATALOG_BUILD_MAX) {
				rc = -E2BIG;
				goto out;
			}
			if (sys_fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				complete = false;  /* gone meanwhile: listed without it, not recorded */
				continue;
			}
			if (count == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				void *p = realloc(entries, ncap * sizeof(*entries));
				if (!p) {
					rc = -ENOMEM;
					goto out;
				}
				entries = p;
				cap = ncap;
			}
			if (names_len + len + 1 > names_cap) {
				size_t ncap = names_cap ? names_cap * 2 : 4096;
				void *p;
				while (ncap < names_len + len + 1)
					ncap *= 2;
				p = realloc(names, ncap);
				if (!p) {
					rc = -ENOMEM;
					goto out;
				}
				names = p;
				names_cap = ncap;
			}
			e = &entries[count++];
			memset(e, 0, sizeof(*e));
			memcpy(names + names_len, de->d_name, len + 1);
			e->name = (const char *)(uintptr_t)names_len;  /* an offset until names settles */
			names_len += len + 1;
			e->type = de->d_type;
			cache_catalog_attr_from_stat(&st, &e->attr);
			if (fs->handles && st.st_dev == d->dev) {
				_Alignas(struct file_handle) unsigned char hb[sizeof(struct file_handle) + CACHE_HANDLE_MAX];
				struct file_handle *h = (struct file_handle *)(void *)hb;
				int mount_id;
				h->handle_bytes = CACHE_HANDLE_MAX;
				if (sys_name_to_handle_at(dfd, de->d_name, h, &mount_id, 0) == 0) {
					e->attr.handle.type = h->handle_type;
					e->attr.handle.bytes = h->handle_bytes;
					memcpy(e->attr.handle.data, h->f_handle, h->handle_bytes);
				}
			}
		}
	}
	for (size_t i = 0; i < count; i++)
		entries[i].name = names + (uintptr_t)entries[i].name;
	if (count)
		qsort(entries, count, sizeof(*entries), entry_compare);
	rc = sys_fstatat(dfd, "", &after, AT_EMPTY_PATH);
	if (rc < 0)
		goto out;
	cache_catalog_stamp_from_stat(&before, &s0);
	cache_catalog_stamp_from_stat(&after, &s1);
	fs_catalog_stamp_seen(fs, d, &after);
	/* Recorded if nothing changed while listing: the stamp held still (names), and no change
	 * was reported for the directory (attributes of entries, which leave the stamp alone). A
	 * change reported after the put drops it again, here or by its reporter. */
	if (complete && s0.ino == s1.ino && s0.mtime_ns == s1.mtime_ns && s0.ctime_ns == s1.ctime_ns &&
	    atomic_load(gen_slot(fs, d->dev, d->ino)) == gen &&
	    cache_catalog_dir_put(fs->catalog, d->dev, d->ino, &s1, entries, count) == 0 &&
	    atomic_load(gen_slot(fs, d->dev, d->ino)) != gen)
		(void)cache_catalog_dir_forget(fs->catalog, d->dev, d->ino);
	memset(out, 0, sizeof(*out));
	out->count = count;
	out->entries = entries;
	out->built = entries;
	out->names = names;
	out->attrs_fresh = true;
	entries = NULL;
	names = NULL;
	rc = 0;
out:
	free(buf);
	free(entries);
	free(names);
	sys_close(dfd);
	return rc;
}

int fs_catalog_listing(struct fs *fs, struct fs_node *d, struct fs_listing *out)
{
	struct cache_catalog_stamp stamp;
	struct cache_catalog_listing *l;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!fs_catalog_on(fs, d) || d->type != S_IFDIR)
		return -ENOTDIR;
	rc = stamp_of(fs, d, &stamp);
	if (rc < 0)
		return rc;
	rc = cache_catalog_dir_get(fs->catalog, d->dev, d->ino, &stamp, &l);
	if (rc == 0) {
		atomic_fetch_add(&fs->catalog_hits, 1);
		out->record = l;
		out->count = l->count;
		out->entries = l->entries;
		out->attrs_fresh = false;
		return 0;
	}
	atomic_fetch_add(&fs->catalog_misses, 1);
	return listing_build(fs, d, out);
}

void fs_catalog_listing_release(struct fs_listing *l)
{
	if (l->record)
		cache_catalog_listing_free(l->record);
	free(l->built);
	free(l->names);
	memset(l, 0, sizeof(*l));
}
