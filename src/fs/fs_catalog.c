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
 *
 * A regular file's attributes from a sealed record (or the original, in this run) also answer
 * OPEN's fingerprint check and GETATTR while no event named the file or its directory since and
 * the watcher has nothing pending ("file attributes" below): no read of the original's inode.
 *
 * Races: a generation per directory (fs.catalog_gen), sampled before a record or the original
 * is read, keeps what was read from being stored or handed to the kernel as current once a
 * change in that directory was reported. READDIR cookies are keyed hashes of the names, the
 * same in every listing of a run, since each call reads the listing again.
 */
#include "fs/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_bytes.h"
#include "sys/sys.h"
#include "sys/sys_writers.h"
#include "util/clock.h"
#include "util/log.h"

#define SEAL_FILE "seal"
/* Version 2 adds the disk's diskseq and the file system's UUID (version 1 seals are void). */
#define SEAL_MAGIC "cachemax-seal 2"

/* Whether what records say may be served as current: the seal was valid at the start and
 * confirmed once the watcher covered the original (fs_catalog_watch_started). */
static bool seal_holds(struct fs *fs)
{
	return atomic_load(&fs->catalog_sealed) && atomic_load(&fs->catalog_seal_confirmed);
}

bool fs_catalog_sealed(struct fs *fs) { return seal_holds(fs); }

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
	uint64_t diskseq;
	char uuid[33];
	uint64_t root_dev, root_ino;
	struct fs_seal_counts counts;
};

static void uuid_hex(const uint8_t uuid[16], char out[33])
{
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", uuid[i]);
}

static void seal_path(struct fs *fs, char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", fs->catalog_path, name);
}

static int seal_parse(const char *buf, struct seal *s)
{
	unsigned long long rd, ri, w, se, d, seq;
	char magic[32];
	if (sscanf(buf, "%31[^\n]\nboot %63s\ndevice %u:%u\ndiskseq %llu\nuuid %32s\nroot %llu %llu\n"
	           "writes %llu\nsectors %llu\ndiscards %llu\n", magic, s->boot, &s->major, &s->minor,
	           &seq, s->uuid, &rd, &ri, &w, &se, &d) != 11 ||
	    strcmp(magic, SEAL_MAGIC))
		return -EBADMSG;
	s->diskseq = seq;
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

/* An inode's key (dev, ino) mixed for the hashed tables below (each folds it its own way). */
static uint64_t dev_ino_mix(uint64_t dev, uint64_t ino)
{
	return (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
}

static size_t dir_attr_bucket(uint64_t dev, uint64_t ino)
{
	uint64_t h = dev_ino_mix(dev, ino);
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

/* The attributes kept for directory n, if current: 0 and *a, or -ENOENT. */
static int dir_attr_current(struct fs *fs, struct fs_node *n, struct cache_catalog_attr *a)
{
	struct fs_dir_attr *e;
	int rc = -ENOENT;
	if (!fs->dir_attrs || n->type != S_IFDIR || !seal_holds(fs))
		return -ENOENT;
	pthread_mutex_lock(&fs->catalog_lock);
	for (e = fs->dir_attrs[dir_attr_bucket(n->dev, n->ino)]; e; e = e->next)
		if (e->attr.dev == n->dev && e->attr.ino == n->ino)
			break;
	/* Valid while the node's stamp is current (every change to the directory or its own
	 * attributes voids it) and is the one these attributes carry. */
	if (e && n->stamp_epoch == fs->catalog_epoch && n->stamp_mtime_ns == e->attr.mtime_ns &&
	    n->stamp_ctime_ns == e->attr.ctime_ns) {
		*a = e->attr;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->catalog_lock);
	return rc;
}

int fs_catalog_dir_attr(struct fs *fs, struct fs_node *n, struct stat *st)
{
	struct cache_catalog_attr a;
	int rc = dir_attr_current(fs, n, &a);
	if (rc == 0)
		cache_catalog_attr_to_stat(&a, st);
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

/* ---- file attributes ------------------------------------------------------------------------
 * OPEN of a cached file checks the original's fingerprint and GETATTR answers its attributes:
 * both read the original's inode (open_by_handle_at, a disk seek on an HDD-like original) after
 * a restart, although a sealed record already holds them. A regular file's attributes, read
 * from a record the seal vouches for (or from the original in this run), stay current until
 * an event names the file or its directory: every event's handles are hashed into `changed`
 * slots, each holding the watcher's event count when it was last named. The attributes are
 * kept with the count sampled before they were read (`since`) and served while neither slot
 * was named since, and only while the watcher has nothing queued or in hand (a zero-timeout poll of its
 * group: fs_watch_queue_empty, and an even `events` count around it): a change whose syscall
 * returned before the request is then either visible there or accounted in the slots. Writes through a shared
 * mapping make no FAN_MODIFY: the watcher watches closes of written files too
 * (fs_watch.c WATCH_MASK). A direct-mapped table (a newer entry replaces an older one), so
 * the memory is bounded whatever the tree. A symlink's attributes are kept by the same rule,
 * for their "no xattrs" flag only (fs_catalog_no_xattrs): OPEN and GETATTR use regular files'. */

#define FILE_ATTR_SLOTS 131072u       /* entries of 96 bytes: 12 MiB, its pages touched as used */
#define FILE_ATTR_LOCKS 64u
#define CHANGED_SLOTS 16384u          /* 128 KiB; a collision only makes a miss */

struct fs_file_attr {
	uint64_t dev, ino;                /* ino 0: empty */
	uint64_t since;                   /* the event count sampled before the attributes were read */
	uint32_t self_slot, parent_slot;  /* changed[] slots of the file's and its directory's handle */
	bool from_record;                 /* from a record (valid only under the seal), not the original */
	bool no_xattrs;                   /* CACHE_CATALOG_ATTR_NO_XATTRS */
	uint32_t mode, nlink, uid, gid, blksize;
	uint64_t size, blocks;
	int64_t atime_ns, mtime_ns, ctime_ns;
};

struct fs_file_attrs {
	/* Odd while the watcher reads and handles events (fs_catalog_events_begin/end). */
	atomic_uint_fast64_t events;
	/* Entries with since <= floor are void (events were lost then). */
	atomic_uint_fast64_t floor;
	atomic_uint_fast64_t changed[CHANGED_SLOTS];
	pthread_mutex_t lock[FILE_ATTR_LOCKS];
	struct fs_file_attr entry[FILE_ATTR_SLOTS];
	/* The origin root's handle (the root node keeps none): the directory of its files. */
	int32_t root_type;
	uint32_t root_bytes;
	unsigned char root_handle[MAX_HANDLE_SZ];
};

static uint32_t changed_slot(int32_t type, const unsigned char *bytes, uint32_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uint32_t)type;
	for (uint32_t i = 0; i < len; i++) {
		h ^= bytes[i];
		h *= 1099511628211ull;
	}
	return (uint32_t)((h ^ (h >> 29)) % CHANGED_SLOTS);
}

/* The low bits of an odd multiple of ino: inode numbers within FILE_ATTR_SLOTS of each other
 * (a tree made together) never share a slot. */
static size_t file_attr_index(uint64_t dev, uint64_t ino)
{
	return (size_t)(dev_ino_mix(dev, ino) % FILE_ATTR_SLOTS);
}

static void file_attrs_create(struct fs *fs)
{
	struct fs_file_attrs *fa = calloc(1, sizeof(*fa));
	_Alignas(struct file_handle) unsigned char hb[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	struct file_handle *h = (struct file_handle *)(void *)hb;
	int mount_id;

	if (!fa)
		return;   /* no file attributes: every OPEN and GETATTR asks the original */
	atomic_store(&fa->events, 2);   /* even; above floor (0), so a first entry can be current */
	h->handle_bytes = MAX_HANDLE_SZ;
	if (sys_name_to_handle_at(fs->cfg.origin_fd, "", h, &mount_id, AT_EMPTY_PATH) == 0) {
		fa->root_type = h->handle_type;
		fa->root_bytes = h->handle_bytes;
		memcpy(fa->root_handle, h->f_handle, h->handle_bytes);
	}
	for (unsigned i = 0; i < FILE_ATTR_LOCKS; i++)
		pthread_mutex_init(&fa->lock[i], NULL);
	fs->file_attrs = fa;
}

static void file_attrs_free(struct fs *fs)
{
	if (!fs->file_attrs)
		return;
	for (unsigned i = 0; i < FILE_ATTR_LOCKS; i++)
		pthread_mutex_destroy(&fs->file_attrs->lock[i]);
	free(fs->file_attrs);
	fs->file_attrs = NULL;
}

void fs_catalog_events_begin(struct fs *fs)
{
	if (fs->file_attrs)
		atomic_fetch_add(&fs->file_attrs->events, 1);
}

void fs_catalog_events_end(struct fs *fs)
{
	if (fs->file_attrs)
		atomic_fetch_add(&fs->file_attrs->events, 1);
}

void fs_catalog_handle_changed(struct fs *fs, const struct file_handle *h)
{
	struct fs_file_attrs *fa = fs->file_attrs;
	if (!fa || h->handle_bytes > MAX_HANDLE_SZ)
		return;
	/* the count now (odd: inside begin/end), which no entry read after this one started holds */
	atomic_store(&fa->changed[changed_slot(h->handle_type, h->f_handle, h->handle_bytes)],
	             atomic_load(&fa->events));
}

/* Keeps the attributes st of regular file or symlink n, found in directory p's record
 * (from_record) or on the original, both read after g was sampled. */
static void file_attr_keep(struct fs *fs, struct fs_node *p, struct fs_node *n,
                           const struct stat *st, bool from_record, bool no_xattrs,
                           const struct fs_catalog_gens *g)
{
	struct fs_file_attrs *fa = fs->file_attrs;
	struct fs_file_attr *e;
	uint32_t parent_slot;
	size_t i;

	if (!fa || !(S_ISREG(st->st_mode) || S_ISLNK(st->st_mode)) || st->st_nlink > 1 || !n->handle_bytes)
		return;   /* handle_bytes: only a node reached by its handle has them */
	if (p == fs->root && fa->root_bytes)
		parent_slot = changed_slot(fa->root_type, fa->root_handle, fa->root_bytes);
	else if (p != fs->root && p->handle_bytes)
		parent_slot = changed_slot(p->handle_type, p->handle, p->handle_bytes);
	else
		return;
	i = file_attr_index(n->dev, n->ino);
	pthread_mutex_lock(&fa->lock[i % FILE_ATTR_LOCKS]);
	e = &fa->entry[i];
	*e = (struct fs_file_attr){
		.dev = n->dev, .ino = n->ino, .since = g->events,
		.self_slot = changed_slot(n->handle_type, n->handle, n->handle_bytes),
		.parent_slot = parent_slot, .from_record = from_record, .no_xattrs = no_xattrs,
		.mode = st->st_mode, .nlink = (uint32_t)st->st_nlink, .uid = st->st_uid,
		.gid = st->st_gid, .blksize = (uint32_t)st->st_blksize, .size = (uint64_t)st->st_size,
		.blocks = (uint64_t)st->st_blocks, .atime_ns = clock_timespec_ns(&st->st_atim),
		.mtime_ns = clock_timespec_ns(&st->st_mtim), .ctime_ns = clock_timespec_ns(&st->st_ctim),
	};
	pthread_mutex_unlock(&fa->lock[i % FILE_ATTR_LOCKS]);
}

/* The kept entry of regular file or symlink n, whatever its age: 0, or -ENOENT (none, or
 * another file's). */
static int file_attr_entry(struct fs *fs, const struct fs_node *n, struct fs_file_attr *e)
{
	struct fs_file_attrs *fa = fs->file_attrs;
	size_t i;

	if (!fa || (n->type != S_IFREG && n->type != S_IFLNK))
		return -ENOENT;
	i = file_attr_index(n->dev, n->ino);
	pthread_mutex_lock(&fa->lock[i % FILE_ATTR_LOCKS]);
	*e = fa->entry[i];
	pthread_mutex_unlock(&fa->lock[i % FILE_ATTR_LOCKS]);
	return e->ino == n->ino && e->dev == n->dev ? 0 : -ENOENT;
}

/* Has anything the watcher handled made e stale (its file or directory named by an event
 * since it was read, events lost, or a record's seal gone)? */
static bool file_attr_stale(struct fs *fs, const struct fs_file_attr *e)
{
	struct fs_file_attrs *fa = fs->file_attrs;
	return e->since <= atomic_load(&fa->floor) ||
	       atomic_load(&fa->changed[e->self_slot]) >= e->since ||
	       atomic_load(&fa->changed[e->parent_slot]) >= e->since ||
	       (e->from_record && !seal_holds(fs));
}

/* Has the watcher nothing queued or in its hands? Then every change made before this request
 * is accounted where it voids what was kept (the slots, a directory's stamp: the watcher
 * counts up before it takes events out of the queue and again once it handled them), so the
 * caller reads those again after this check. */
static bool watcher_quiet(struct fs *fs)
{
	struct fs_file_attrs *fa = fs->file_attrs;
	uint64_t before;

	if (!fa)
		return false;
	before = atomic_load(&fa->events);
	return !(before & 1) && fs_watch_queue_empty(fs) && atomic_load(&fa->events) == before;
}

/* n's entry in *out if it is current (see above): 0, -ENOENT or -EAGAIN. */
static int file_attr_current(struct fs *fs, struct fs_node *n, struct fs_file_attr *out)
{
	struct fs_file_attr e;

	if (!fs_watch_covers(fs, n) ||
	    atomic_load(&n->passthrough_writers) ||   /* its times move with no request to us */
	    file_attr_entry(fs, n, &e) < 0 || file_attr_stale(fs, &e))
		return -ENOENT;   /* stale already: no need to ask the watcher's queue */
	if (!watcher_quiet(fs))
		return -EAGAIN;
	if (file_attr_stale(fs, &e))
		return -ENOENT;
	*out = e;
	return 0;
}

static void file_attr_to_stat(const struct fs_file_attr *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)e->dev;
	st->st_ino = (ino_t)e->ino;
	st->st_mode = e->mode;
	st->st_nlink = e->nlink;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_blksize = (blksize_t)e->blksize;
	st->st_size = (off_t)e->size;
	st->st_blocks = (blkcnt_t)e->blocks;
	st->st_atim = clock_ns_timespec(e->atime_ns);
	st->st_mtim = clock_ns_timespec(e->mtime_ns);
	st->st_ctim = clock_ns_timespec(e->ctime_ns);
}

int fs_catalog_file_attr(struct fs *fs, struct fs_node *n, struct stat *st)
{
	struct fs_file_attr e;
	int rc = n->type == S_IFREG ? file_attr_current(fs, n, &e) : -ENOENT;
	if (rc < 0)
		return rc;
	file_attr_to_stat(&e, st);
	return 0;
}

int fs_catalog_file_attr_kept(struct fs *fs, struct fs_node *n, struct stat *st)
{
	struct fs_file_attr e;
	int rc = n->type == S_IFREG ? file_attr_entry(fs, n, &e) : -ENOENT;
	if (rc < 0)
		return rc;
	file_attr_to_stat(&e, st);
	return 0;
}

bool fs_catalog_no_xattrs(struct fs *fs, struct fs_node *n)
{
	struct fs_file_attr e;
	struct cache_catalog_attr a;

	if (n->type != S_IFDIR)
		return file_attr_current(fs, n, &e) == 0 && e.no_xattrs;
	/* A directory's attributes kept from a sealed record (fs_catalog_dir_attr), current while
	 * its stamp is: an xattr change moves its ctime, and its event voids the stamp; checked
	 * again once the watcher is quiet, as a file's are. */
	return dir_attr_current(fs, n, &a) == 0 && (a.flags & CACHE_CATALOG_ATTR_NO_XATTRS) &&
	       watcher_quiet(fs) && dir_attr_current(fs, n, &a) == 0 &&
	       (a.flags & CACHE_CATALOG_ATTR_NO_XATTRS);
}

/* A file of the block device dev's sysfs directory, or of its disk's for a partition (the
 * partition's directory lies in its disk's). */
static int sysfs_disk_read(dev_t dev, const char *name, char *buf, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", major(dev), minor(dev), name);
	if (read_small(path, buf, size) == 0)
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../%s", major(dev), minor(dev), name);
	return read_small(path, buf, size);
}

/* True if the block device of dev (or, for a partition, its disk) counts its I/O: with
 * queue/iostats 0 the counters the seal compares never move. */
static bool iostats_on(dev_t dev)
{
	char buf[8];
	return sysfs_disk_read(dev, "queue/iostats", buf, sizeof(buf)) == 0 && buf[0] == '1';
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#define EXT_SUPER_MAGIC 0xef53u           /* ext2, ext3, ext4 */
#define XFS_SUPER_MAGIC_FS 0x58465342u
#define EXT_SB_OFFSET 1024u
#define EXT_COMPAT_HAS_JOURNAL 0x4u
#define EXT_INCOMPAT_JOURNAL_DEV 0x8u
#define SUPER_READ_BYTES 4096u

/* Whether the seal can vouch for the original's file system on block device dev, of statfs
 * type fs_type: its writes all go to dev (no journal or log on another device: a syncfs
 * commits to that one, and dev's counters might move only later, when the journal is
 * checkpointed), read from its superblock with its UUID. 0 and d->uuid, or -EXDEV with why. */
static int seal_device_fs(dev_t dev, unsigned long fs_type, struct fs_seal_device *d,
                          char *why, size_t why_size)
{
	char uevent[512], path[300], *name;
	uint8_t sb[SUPER_READ_BYTES];
	struct stat st;
	ssize_t n;
	int fd;

	if (fs_type != EXT_SUPER_MAGIC && fs_type != XFS_SUPER_MAGIC_FS) {
		snprintf(why, why_size, "the original's file system (0x%lx) is not ext2/3/4 or XFS, whose "
		         "journals the seal knows", fs_type);
		return -EXDEV;
	}
	/* the device node, by the kernel's name for it (there may be no /dev/block) */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major(dev), minor(dev));
	name = read_small(path, uevent, sizeof(uevent)) == 0 ? strstr(uevent, "DEVNAME=") : NULL;
	if (name) {
		name += strlen("DEVNAME=");
		name[strcspn(name, "\n")] = '\0';
		snprintf(path, sizeof(path), "/dev/%s", name);
	}
	fd = name ? sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0) : -ENOENT;
	if (fd >= 0 && (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != dev)) {
		sys_close(fd);
		fd = -ENODEV;
	}
	n = fd < 0 ? fd : sys_pread(fd, sb, sizeof(sb), 0);
	if (fd >= 0)
		sys_close(fd);
	if (n != (ssize_t)sizeof(sb)) {
		snprintf(why, why_size, "the superblock of device %u:%u cannot be read (%s)",
		         major(dev), minor(dev), n < 0 ? strerror((int)-n) : "short read");
		return -EXDEV;
	}
	if (fs_type == EXT_SUPER_MAGIC) {
		const uint8_t *e = sb + EXT_SB_OFFSET;
		if (cache_get_le16(e + 0x38) != EXT_SUPER_MAGIC || (cache_get_le32(e + 0x60) & EXT_INCOMPAT_JOURNAL_DEV)) {
			snprintf(why, why_size, "no ext2/3/4 superblock on the original's device %u:%u", major(dev), minor(dev));
			return -EXDEV;
		}
		/* s_rev_level 0, or s_inode_size 128: inodes with no room for the nanoseconds, so
		 * times are whole seconds and two changes within one second leave a directory's
		 * ctime as it was (a review measured it: 3,000 of 3,000 xattr changes on 6.18). The
		 * seal trusts recorded attributes by their ctime (a directory's mode, its "no
		 * xattrs" flag, which FUSE_POSIX_ACL would turn into an ACL not enforced). */
		if (cache_get_le32(e + 0x4c) == 0 || cache_get_le16(e + 0x58) <= 128) {
			snprintf(why, why_size, "the original's ext file system keeps whole-second times "
			         "(128-byte inodes): a change within the same second would not be seen");
			return -EXDEV;
		}
		if ((cache_get_le32(e + 0x5c) & EXT_COMPAT_HAS_JOURNAL) && cache_get_le32(e + 0xe0) == 0) {
			snprintf(why, why_size, "the original's ext4 journal is on another device (%u:%u)",
			         major(cache_get_le32(e + 0xe4)), minor(cache_get_le32(e + 0xe4)));
			return -EXDEV;
		}
		memcpy(d->uuid, e + 0x68, 16);
		return 0;
	}
	if (memcmp(sb, "XFSB", 4)) {
		snprintf(why, why_size, "no XFS superblock on the original's device %u:%u", major(dev), minor(dev));
		return -EXDEV;
	}
	if (be64_at(sb + 48) == 0 || be64_at(sb + 16) != 0) {  /* sb_logstart, sb_rblocks */
		snprintf(why, why_size, "the original's XFS has its %s on another device",
		         be64_at(sb + 48) == 0 ? "log" : "realtime section");
		return -EXDEV;
	}
	memcpy(d->uuid, sb + 32, 16);
	return 0;
}

/* The original's block device as the seal identifies it, or why there is no seal (seal_why). */
static void seal_device_probe(struct fs *fs, const struct stat *root)
{
	struct fs_seal_device *d = &fs->seal_dev;
	char why[140], buf[32];
	struct statfs sfs;

	memset(d, 0, sizeof(*d));
	/* A file system mounted below the original while the daemon was down wrote nothing to
	 * the original's device, and the record of the directory it covers would be served. */
	snprintf(why, sizeof(why), "mounts below the original (one made while the daemon was down "
	         "changes nothing the device counts)");
	if (fs->cfg.origin_submounts)
		goto refused;
	snprintf(why, sizeof(why), "the original is not on a block device that counts its writes");
	if (major(root->st_dev) == 0)
		goto refused;
	d->major = major(root->st_dev);
	d->minor = minor(root->st_dev);
	if (sysfs_disk_read(root->st_dev, "stat", buf, sizeof(buf)) < 0 || !iostats_on(root->st_dev))
		goto refused;
	if (sys_fstatfs(fs->cfg.origin_fd, &sfs) < 0 ||
	    seal_device_fs(root->st_dev, (unsigned long)sfs.f_type, d, why, sizeof(why)) < 0)
		goto refused;
	/* the kernel numbers every attachment of a disk: another disk (or image) given the same
	 * device numbers has another one */
	if (sysfs_disk_read(root->st_dev, "diskseq", buf, sizeof(buf)) == 0)
		d->diskseq = strtoull(buf, NULL, 10);
	d->known = true;
	return;
refused:
	d->known = false;
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: %s", why);
	log_info("metadata catalog: no seal: %s (its changes while the daemon is down cannot be "
	         "proven absent: attributes are confirmed by a stat)", why);
}

/* ---- open, the seal at the start ----------------------------------------------------------- */

/* The key of this run's READDIR cookies (fs_catalog_cookie). Should getrandom have nothing yet
 * (GRND_NONBLOCK, early in a boot), the clock and pid make a key that differs per start but
 * could be guessed: names chosen to collide are still returned (a group of equal cookies goes
 * whole into one reply), unless a group outgrows a reply. */
static void cookie_key_draw(struct fs *fs)
{
	if (getrandom(fs->cookie_key, sizeof(fs->cookie_key), GRND_NONBLOCK) != (ssize_t)sizeof(fs->cookie_key)) {
		uint64_t a = clock_now_ns(), b;
		b = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)fs;
		memcpy(fs->cookie_key, &a, 8);
		memcpy(fs->cookie_key + 8, &b, 8);
	}
}

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
	char sp[4200], buf[512], boot[64], uuid[33];
	struct seal s;
	struct stat st;
	int rc, have_seal;

	pthread_mutex_init(&fs->catalog_lock, NULL);
	fs->catalog_epoch = 1;
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: no catalog");
	if (!path)
		return;
	cookie_key_draw(fs);
	snprintf(fs->catalog_path, sizeof(fs->catalog_path), "%s", path);
	if (sys_fstatat(fs->cfg.origin_fd, "", &st, AT_EMPTY_PATH) == 0)
		seal_device_probe(fs, &st);
	else
		memset(&st, 0, sizeof(st));
	/* The seal is read and removed before anything else: a crash from now on leaves none. */
	seal_path(fs, sp, sizeof(sp), SEAL_FILE);
	have_seal = read_small(sp, buf, sizeof(buf)) == 0 && seal_parse(buf, &s) == 0;
	rc = sys_unlinkat(AT_FDCWD, sp, 0);
	if (rc < 0 && rc != -ENOENT) {  /* a seal left behind must not vouch for this run */
		have_seal = 0;
		atomic_store(&fs->catalog_tainted, true);
	}
	if (!fs->seal_dev.known) {
		;  /* seal_why says why (seal_device_probe) */
	} else {
		uuid_hex(fs->seal_dev.uuid, uuid);
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
		         s.diskseq != fs->seal_dev.diskseq || strcmp(s.uuid, uuid) ||
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
	file_attrs_create(fs);
	log_info("metadata catalog at '%s', seal %s", path, fs->seal_why);
}

static void young_free(struct fs *fs);   /* "young listings" below */

void fs_catalog_close(struct fs *fs)
{
	cache_catalog_free(fs->catalog);
	fs->catalog = NULL;
	dir_attrs_free(fs);
	file_attrs_free(fs);
	young_free(fs);
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
		return;
	}
	atomic_store(&fs->catalog_seal_confirmed, true);
}

void fs_catalog_seal_write(struct fs *fs, void (*drain)(struct fs *))
{
	char sp[4200], tmp[4200], boot[64], buf[512], uuid[33], who[128];
	struct fs_seal_counts c;
	struct stat st;
	int fd, len, rc;

	if (!fs->catalog || !fs->seal_dev.known || atomic_load(&fs->catalog_tainted))
		return;
	if (origin_syncfs(fs) < 0)
		return;
	drain(fs);  /* every change so far is in an event: its records go before the seal */
	if (atomic_load(&fs->catalog_tainted) || device_counts(fs, &c) < 0 || boot_id(boot) < 0 ||
	    sys_fstatat(fs->cfg.origin_fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	/* After the counters' sample: a writer still open (Linux AIO, a shared mapping, a loop
	 * device) may have changed a file with no event yet, and its close, which would tell,
	 * comes after the stop; one that opens after this scan writes after the sample (the
	 * counters move); one that closed before it is in the second drain. */
	if ((rc = sys_writers_of_device(makedev(fs->seal_dev.major, fs->seal_dev.minor), who,
	                                sizeof(who))) != 0) {
		if (rc > 0)
			log_info("metadata catalog not sealed: %s may write files of the original's "
			         "device with no event before its close (Linux AIO, a shared mapping, a "
			         "loop device)", who);
		else
			log_info("metadata catalog not sealed: cannot look for writers of the original "
			         "(%s)", strerror(-rc));
		return;
	}
	drain(fs);
	if (atomic_load(&fs->catalog_tainted))
		return;
	uuid_hex(fs->seal_dev.uuid, uuid);
	len = snprintf(buf, sizeof(buf), "%s\nboot %s\ndevice %u:%u\ndiskseq %llu\nuuid %s\nroot %llu %llu\n"
	               "writes %llu\nsectors %llu\ndiscards %llu\n", SEAL_MAGIC, boot, fs->seal_dev.major,
	               fs->seal_dev.minor, (unsigned long long)fs->seal_dev.diskseq, uuid,
	               (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
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

bool fs_catalog_report(struct fs *fs, char *seal, size_t seal_size, struct fs_catalog_counts *c)
{
	pthread_mutex_lock(&fs->catalog_lock);
	snprintf(seal, seal_size, "%s", fs->seal_why);
	pthread_mutex_unlock(&fs->catalog_lock);
	c->hits = atomic_load(&fs->catalog_hits);
	c->misses = atomic_load(&fs->catalog_misses);
	c->late_records = atomic_load(&fs->catalog_late_records);
	return fs->catalog != NULL;
}

/* ---- stamps ---------------------------------------------------------------------------------- */

bool fs_catalog_on(struct fs *fs, const struct fs_node *dir)
{
	return fs->catalog && fs->kernel_inc_epoch && fs_watch_covers(fs, dir);
}

static atomic_uint_fast64_t *gen_slot(struct fs *fs, uint64_t dev, uint64_t ino)
{
	uint64_t h = dev_ino_mix(dev, ino);
	return &fs->catalog_gen[(h ^ (h >> 31)) % FS_CATALOG_GEN_SLOTS];
}

void fs_catalog_gens_sample(struct fs *fs, struct fs_catalog_gens *g)
{
	g->events = fs->file_attrs ? atomic_load(&fs->file_attrs->events) : 0;
	for (unsigned i = 0; i < FS_CATALOG_GEN_SLOTS; i++)
		g->slot[i] = atomic_load(&fs->catalog_gen[i]);
}

bool fs_catalog_gens_moved(struct fs *fs, const struct fs_catalog_gens *g, uint64_t dev, uint64_t ino)
{
	atomic_uint_fast64_t *slot = gen_slot(fs, dev, ino);
	return atomic_load(slot) != g->slot[slot - fs->catalog_gen];
}

/* Every slot moves: nothing read before is stored or served as current afterwards. */
static void gens_bump_all(struct fs *fs)
{
	for (unsigned i = 0; i < FS_CATALOG_GEN_SLOTS; i++)
		atomic_fetch_add(&fs->catalog_gen[i], 1);
}

/* For tests (CACHEMAX_CATALOG_DELAY_MS, fs.h): the catalog waits this long between reading the
 * original and storing or serving what it read, so that a test can change the original in that
 * window. */
static void test_delay(struct fs *fs)
{
	if (fs->cfg.catalog_delay_ms) {
		struct timespec ts = { .tv_sec = fs->cfg.catalog_delay_ms / 1000,
		                       .tv_nsec = (long)(fs->cfg.catalog_delay_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* The stamp is stored only if no change was reported for the directory since g was sampled
 * (before st was read): checked and stored under catalog_lock, which stamp_void takes after
 * its bump, so a change either moved the slot before the check or voids the stamp after. */
void fs_catalog_stamp_seen(struct fs *fs, struct fs_node *n, const struct stat *st,
                           const struct fs_catalog_gens *g)
{
	if (!fs->catalog || n->type != S_IFDIR || n->ino != st->st_ino)
		return;
	pthread_mutex_lock(&fs->catalog_lock);
	if (!fs_catalog_gens_moved(fs, g, n->dev, n->ino)) {
		n->stamp_mtime_ns = clock_timespec_ns(&st->st_mtim);
		n->stamp_ctime_ns = clock_timespec_ns(&st->st_ctim);
		n->stamp_epoch = fs->catalog_epoch;
	}
	pthread_mutex_unlock(&fs->catalog_lock);
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
	struct fs_catalog_gens g;
	struct stat st;
	int rc;
	if (stamp_get(fs, d, s))
		return 0;
	fs_catalog_gens_sample(fs, &g);
	rc = fs_node_stat(fs, d, &st);
	if (rc < 0)
		return rc;
	fs_catalog_stamp_seen(fs, d, &st, &g);
	cache_catalog_stamp_from_stat(&st, s);
	return 0;
}

/* A record that cannot be removed may be read again later: the seal goes for this run (the
 * next start, void, wipes the catalog). */
static void record_forget(struct fs *fs, uint64_t dev, uint64_t ino)
{
	int rc;
	/* Bumped before and after: a reader that sampled between the first bump and the removal
	 * may have read the old record, and sees the second bump at its check. */
	atomic_fetch_add(gen_slot(fs, dev, ino), 1);
	rc = cache_catalog_dir_forget(fs->catalog, dev, ino);
	atomic_fetch_add(gen_slot(fs, dev, ino), 1);
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

	if (!fs->catalog)
		return;
	/* gone: its record is keyed by a stamp nothing will match */
	if (fs_handle_stat(fs, h, &st) < 0 || !S_ISDIR(st.st_mode))
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

	/* A failure, or no link left: its last name went (a rename over it, an unlink), in an
	 * event that named its directory, whose record that dropped. */
	if (fs_handle_stat(fs, self, &st) < 0 || S_ISDIR(st.st_mode) || st.st_nlink == 0)
		return;
	/* In every run, sealed or not: a run that started without a seal writes one at its stop
	 * unless tainted, and the record that kept the file's old attributes would be believed. */
	atomic_store(&fs->catalog_tainted, true);
	if (atomic_exchange(&fs->catalog_sealed, false))
		seal_void(fs, st.st_nlink >= 2 ? "a hard link was made while running"
		                               : "a file changed with no name in its event (opened by handle)");
}

void fs_catalog_overflow(struct fs *fs)
{
	if (!fs->catalog)
		return;
	atomic_store(&fs->catalog_sealed, false);
	atomic_store(&fs->catalog_tainted, true);
	gens_bump_all(fs);
	if (fs->file_attrs)   /* every file's attributes kept so far: no event will say what changed */
		atomic_store(&fs->file_attrs->floor, atomic_load(&fs->file_attrs->events));
	pthread_mutex_lock(&fs->catalog_lock);
	fs->catalog_epoch++;
	if (fs->catalog_epoch == 0)
		fs->catalog_epoch = 1;
	snprintf(fs->seal_why, sizeof(fs->seal_why), "void: change events were lost");
	pthread_mutex_unlock(&fs->catalog_lock);
}

/* ---- entries -------------------------------------------------------------------------------- */

/* Attributes from a record (read after g was sampled) are served as they are only under the
 * seal, and never for a file with other links (a change through another name reports another
 * directory). A directory's own changes (a chmod, a name made in it) are reported on the
 * directory itself, not on the parent whose record holds its attributes; but each one drops
 * the directory's own record (and moves its generation), and a record made afterwards carries
 * the directory's new times. So its attributes are trusted only while it has a record made
 * with exactly these times (ino, mtime, ctime): it has not changed since they were seen, in
 * this run or, under the seal, before it. */
static bool attrs_trusted(struct fs *fs, const struct cache_catalog_attr *a,
                          const struct fs_catalog_gens *g)
{
	struct cache_catalog_stamp own = { a->ino, a->mtime_ns, a->ctime_ns };
	if (!seal_holds(fs))
		return false;
	if (!S_ISDIR(a->mode))
		return a->nlink <= 1;
	return cache_catalog_dir_valid(fs->catalog, a->dev, a->ino, &own) == 0 &&
	       !fs_catalog_gens_moved(fs, g, a->dev, a->ino);
}

int fs_catalog_entry_node(struct fs *fs, struct fs_node *p, const struct cache_catalog_entry *e,
                          bool attrs_fresh, const struct fs_catalog_gens *g, struct stat *st,
                          struct fs_node **out)
{
	const struct cache_catalog_attr *a = &e->attr;
	struct fs_node *held;
	bool same;
	int fd, rc;

	if (a->dev != p->dev || !a->handle.bytes || a->handle.bytes > FS_HANDLE_MAX)
		return 1;
	/* A change reported in p since its listing was read (a name, an entry's attributes: the
	 * event names p) may be one this entry does not show: the origin answers instead. */
	if (fs_catalog_gens_moved(fs, g, p->dev, p->ino))
		return 1;
	cache_catalog_attr_to_stat(a, st);
	held = fs_node_find_ref(fs, st);
	if (held) {  /* the kernel holds it: its attributes come from the origin, as before */
		fs_node_forget(fs, held->nodeid, 1);
		return 1;
	}
	if (attrs_fresh || attrs_trusted(fs, a, g)) {
		rc = fs_node_acquire_handle(fs, p, st, &a->handle, out);
		if (rc == -EINVAL)
			return 1;
		if (rc == 0 && (*out)->type == S_IFDIR) {
			fs_catalog_stamp_seen(fs, *out, st, g);
			if (!attrs_fresh)
				dir_attr_keep(fs, a);
		} else if (rc == 0) {
			file_attr_keep(fs, p, *out, st, !attrs_fresh,
			               a->flags & CACHE_CATALOG_ATTR_NO_XATTRS, g);
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
	same = cache_catalog_attr_matches(a, st);
	if (!same)
		record_forget(fs, p->dev, p->ino);  /* re-listed next time */
	rc = fs_node_acquire(fs, p, e->name, fs_node_name_gen(fs, p, e->name), fd, st, out);
	if (rc == 0) {
		fs_catalog_stamp_seen(fs, *out, st, g);  /* g is older than the stat: it may only refuse */
		/* the flag too, if the stat shows the inode as recorded (an xattr change moves ctime) */
		file_attr_keep(fs, p, *out, st, false, (a->flags & CACHE_CATALOG_ATTR_NO_XATTRS) && same, g);
	}
	return rc;
}

int fs_catalog_lookup(struct fs *fs, struct fs_node *p, const char *name, struct stat *st,
                      struct fs_node **out)
{
	struct cache_catalog_stamp stamp;
	struct cache_catalog_entry e;
	struct fs_catalog_gens g;
	int rc;

	if (!fs_catalog_on(fs, p) || p->type != S_IFDIR)
		return 1;
	fs_catalog_gens_sample(fs, &g);
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
	test_delay(fs);
	e.name = name;
	e.type = (uint8_t)IFTODT(e.attr.mode);
	rc = fs_catalog_entry_node(fs, p, &e, false, &g, st, out);
	atomic_fetch_add(rc == 0 ? &fs->catalog_hits : &fs->catalog_misses, 1);
	return rc;
}

/* ---- listings -------------------------------------------------------------------------------- */

/* ---- young listings --------------------------------------------------------------------------
 * A listing of a directory whose stamp is younger than CACHE_CATALOG_RACY_NS is not recorded
 * when it is read (a change in the same clock tick, made while the daemon is down, would leave
 * the stamp as it was). Under the watcher the kernel keeps that listing, so no later READDIR
 * comes to record it: a directory listed right after it changed (a checkout, an unpacked
 * archive) would be read from the original after every restart. So the directory is kept here
 * and the watcher's thread lists it again once its stamp is old enough, which records it by the
 * rules of any listing (listing_build). On its own thread the generations cannot move while
 * it lists (it is the one that moves them): a change made meanwhile is in its queue, and drops
 * the record when the watcher handles it, after at most one directory's listing (a batch
 * stops as soon as events wait) — the same window as a READDIR's record has while the
 * watcher has not yet handled a change. Tried at most YOUNG_RELISTS times (young again), then
 * left to its next READDIR.
 * Kept also when a change was reported while it was read (not recorded for that): the events
 * of the changes that made it young often come just after the listing. The listing itself is
 * not kept: those events would void it. On the watcher's thread, so that it runs after the
 * events it has read and ends before the stop writes the seal: a batch stops after
 * YOUNG_BATCH_NS or as soon as events wait, whichever first. Bounded: YOUNG_MAX directories
 * waiting, none of more than YOUNG_ENTRIES_MAX entries when kept. In order of keeping (the
 * oldest is ready first); a directory is kept once (by dev and ino). */
#define YOUNG_MAX 4096u
#define YOUNG_ENTRIES_MAX 20000u
#define YOUNG_RELISTS 3u
#define YOUNG_BATCH_NS 20000000ll   /* 20 ms */

struct fs_young {
	struct fs_young *next;
	uint64_t nodeid, dev, ino;
	int64_t ready_ns;      /* wall time (file times' clock) from which the stamp is not racy */
	unsigned relists;      /* listings of it by this list so far */
	/* Its handle (bytes 0: none, the root): the kernel may forget the node meanwhile (the
	 * watcher invalidates the new name of a directory made and listed at once). */
	struct cache_origin_handle handle;
};

static void young_keep(struct fs *fs, const struct fs_node *d, const struct cache_catalog_stamp *stamp,
                       size_t count, unsigned relists)
{
	int64_t newest = stamp->mtime_ns > stamp->ctime_ns ? stamp->mtime_ns : stamp->ctime_ns;
	/* A millisecond past the racy window (cache_catalog_stamp_racy compares strictly). */
	int64_t ready = newest > INT64_MAX - CACHE_CATALOG_RACY_NS - 1000000 ? INT64_MAX
	                : newest + CACHE_CATALOG_RACY_NS + 1000000;
	struct fs_young *y;
	bool earliest;

	/* A stamp in the future (a clock set back, a time set by hand) would wait for ever. */
	if (count > YOUNG_ENTRIES_MAX || ready - clock_wall_ns() > 2 * CACHE_CATALOG_RACY_NS)
		return;
	y = malloc(sizeof(*y));
	if (!y)
		return;
	*y = (struct fs_young){ .nodeid = d->nodeid, .dev = d->dev, .ino = d->ino, .ready_ns = ready,
	                        .relists = relists };
	if (d->reach == FS_REACH_HANDLE && d->mount == 0 && d->handle_bytes <= sizeof(y->handle.data)) {
		y->handle.type = d->handle_type;
		y->handle.bytes = d->handle_bytes;
		memcpy(y->handle.data, d->handle, d->handle_bytes);
	}
	pthread_mutex_lock(&fs->catalog_lock);
	/* Each READDIR call of one listing reads it again: the directory is kept once, with the
	 * latest stamp's time. The watcher sleeps until the earliest: woken for an earlier one. */
	earliest = true;
	for (struct fs_young *o = fs->young; o; o = o->next) {
		if (o->dev == y->dev && o->ino == y->ino) {
			o->ready_ns = ready > o->ready_ns ? ready : o->ready_ns;
			pthread_mutex_unlock(&fs->catalog_lock);
			free(y);
			return;
		}
		if (o->ready_ns <= ready)
			earliest = false;
	}
	if (fs->young_count == YOUNG_MAX) {
		pthread_mutex_unlock(&fs->catalog_lock);
		free(y);
		return;
	}
	*(fs->young ? &fs->young_tail->next : &fs->young) = y;
	fs->young_tail = y;
	fs->young_count++;
	pthread_mutex_unlock(&fs->catalog_lock);
	if (earliest)
		fs_watch_wake(fs);
}

int fs_catalog_young_due(struct fs *fs)
{
	int64_t next = INT64_MAX, ms;
	if (!fs->catalog)
		return -1;   /* nothing is ever kept: no lock on the watcher's every wake-up */
	pthread_mutex_lock(&fs->catalog_lock);
	for (const struct fs_young *y = fs->young; y; y = y->next)
		if (y->ready_ns < next)
			next = y->ready_ns;
	pthread_mutex_unlock(&fs->catalog_lock);
	if (next == INT64_MAX)
		return -1;
	ms = (next - clock_wall_ns()) / 1000000 + 1;
	return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

static int listing_build(struct fs *fs, struct fs_node *d, const struct fs_catalog_gens *g,
                         unsigned relists, struct fs_listing *out);

/* The node of y's directory with a reference (drop it with fs_node_forget unless the root):
 * the one the kernel holds, else one made from its handle; NULL if neither is there. */
static struct fs_node *young_node(struct fs *fs, const struct fs_young *y)
{
	struct fs_node *d = fs_node_get_ref(fs, y->nodeid);
	struct stat st;
	int fd, rc;

	if (d && d->dev == y->dev && d->ino == y->ino)
		return d;
	if (d && d != fs->root)
		fs_node_forget(fs, d->nodeid, 1);
	if (!y->handle.bytes)
		return NULL;
	fd = fs_handle_open(fs, fs->root, &y->handle, O_PATH);
	if (fd < 0)
		return NULL;
	rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	sys_close(fd);
	if (rc < 0 || !S_ISDIR(st.st_mode) || st.st_dev != y->dev || st.st_ino != y->ino ||
	    fs_node_acquire_handle(fs, fs->root, &st, &y->handle, &d) < 0)
		return NULL;
	return d;
}

void fs_catalog_young_record(struct fs *fs)
{
	int64_t now, end;

	if (!fs->catalog)
		return;
	now = clock_wall_ns();
	end = (int64_t)clock_now_ns() + YOUNG_BATCH_NS;

	/* A batch, then back to the watcher's events (fs_catalog_young_due says 0 while ready
	 * ones wait): a checkout of 100,000 files listed at once must not hold events back. */
	for (bool first = true; first || ((int64_t)clock_now_ns() < end && fs_watch_queue_empty(fs));
	     first = false) {
		struct fs_young *y = NULL, *prev = NULL;
		struct fs_node *d;
		pthread_mutex_lock(&fs->catalog_lock);
		for (struct fs_young *o = fs->young; o; prev = o, o = o->next)
			if (o->ready_ns <= now) {
				y = o;
				*(prev ? &prev->next : &fs->young) = y->next;
				if (fs->young_tail == y)
					fs->young_tail = prev;
				fs->young_count--;
				break;
			}
		pthread_mutex_unlock(&fs->catalog_lock);
		if (!y)
			return;
		d = young_node(fs, y);
		if (d && fs_catalog_on(fs, d)) {
			struct fs_catalog_gens g;
			struct fs_listing l;
			fs_catalog_gens_sample(fs, &g);
			if (listing_build(fs, d, &g, y->relists + 1, &l) == 0) {
				if (l.recorded)
					atomic_fetch_add(&fs->catalog_late_records, 1);
				fs_catalog_listing_release(&l);
			}
		}
		if (d && d != fs->root)
			fs_node_forget(fs, d->nodeid, 1);
		free(y);
	}
}

static void young_free(struct fs *fs)
{
	while (fs->young) {
		struct fs_young *y = fs->young;
		fs->young = y->next;
		free(y);
	}
	fs->young_tail = NULL;
	fs->young_count = 0;
}

/* Whether entry name of directory dirfd (a regular file, a directory or a symlink) has no
 * extended attributes of its own (its inode was just stat'ed, so listxattr reads nothing more
 * of the device). llistxattr: the path's last component is not followed, so a symlink's own
 * list is asked, not its target's (also for a symlink swapped in for the name since the stat);
 * /proc/self/fd/N before it is the directory itself. */
static bool entry_no_xattrs(int dirfd, const char *name)
{
	char path[FS_PROC_PATH_MAX + CACHE_CATALOG_NAME_MAX + 2];
	int n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	return n > 0 && (size_t)n < sizeof(path) && sys_llistxattr(path, NULL, 0) == 0;
}

/* The origin's listing of d now, every entry stat'ed and with its handle; recorded if d's stamp
 * is the same before and after; if too young for that, kept to list again ("young listings";
 * relists: how many times that list listed d already, 0 for a READDIR). 0, -E2BIG (too many
 * entries), -errno. */
static int listing_build(struct fs *fs, struct fs_node *d, const struct fs_catalog_gens *g,
                         unsigned relists, struct fs_listing *out)
{
	struct stat before, after;
	struct cache_catalog_stamp s0, s1;
	struct cache_catalog_entry *entries = NULL;
	char *names = NULL, *buf = NULL;
	size_t count = 0, cap = 0, names_len = 0, names_cap = 0;
	bool complete = true, recorded = false, probe_xattrs;
	int nfd, dfd, rc;

	nfd = fs_node_fd(fs, d);
	if (nfd < 0)
		return nfd;
	rc = sys_fstatat(nfd, "", &before, AT_EMPTY_PATH);
	dfd = rc < 0 ? rc : fs_open_retry(fs, nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	fs_node_fd_put(fs, d, nfd);
	if (dfd < 0)
		return dfd;
	cache_catalog_stamp_from_stat(&before, &s0);
	/* A READDIR of a directory changed within the racy window is not recorded (its re-list
	 * is): its files' xattrs are not asked for a record that will not be written. */
	probe_xattrs = relists > 0 || !cache_catalog_stamp_racy(&s0);
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
			struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
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
			{
				struct cache_catalog_entry *ne = fs_grow(entries, &cap, count + 1,
				                                         sizeof(*entries), 64);
				char *nn = ne ? fs_grow(names, &names_cap, names_len + len + 1, 1, 4096) : NULL;
				if (ne)
					entries = ne;
				if (!nn) {
					rc = -ENOMEM;
					goto out;
				}
				names = nn;
			}
			e = &entries[count++];
			memset(e, 0, sizeof(*e));
			memcpy(names + names_len, de->d_name, len + 1);
			e->name = (const char *)(uintptr_t)names_len;  /* an offset until names settles */
			names_len += len + 1;
			e->type = de->d_type;
			cache_catalog_attr_from_stat(&st, &e->attr);
			/* After the stat: an xattr set in between leaves the flag unset; one set after
			 * the probe moves the entry's ctime past the one recorded with the flag, and its
			 * event voids what was kept of it (fs_catalog_no_xattrs). A file's or symlink's
			 * event names d (this listing is then not recorded, or forgotten); a
			 * subdirectory's names only itself: its flag, as its other attributes, rests on
			 * its ctime moving (attrs_trusted's own-record check). */
			if (probe_xattrs && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) &&
			    entry_no_xattrs(dfd, de->d_name))
				e->attr.flags |= CACHE_CATALOG_ATTR_NO_XATTRS;
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
	/* In readdir's order: the record sorts its own copy (cache_catalog_dir_put), READDIR
	 * orders by cookie (fs_catalog_listing_after). */
	rc = sys_fstatat(dfd, "", &after, AT_EMPTY_PATH);
	if (rc < 0)
		goto out;
	cache_catalog_stamp_from_stat(&after, &s1);  /* s0: before's, from the start */
	test_delay(fs);
	fs_catalog_stamp_seen(fs, d, &after, g);
	/* Recorded if nothing changed while listing: the stamp held still (names), and no change
	 * was reported for the directory since before it was read (attributes of entries, which
	 * leave the stamp alone). A change reported after the put drops it again, here or by its
	 * reporter. Too young to record: recorded later ("young listings"). */
	if (complete && s0.ino == s1.ino && s0.mtime_ns == s1.mtime_ns && s0.ctime_ns == s1.ctime_ns &&
	    !fs_catalog_gens_moved(fs, g, d->dev, d->ino)) {
		rc = cache_catalog_dir_put(fs->catalog, d->dev, d->ino, &s1, entries, count);
		if (rc == 0 && fs_catalog_gens_moved(fs, g, d->dev, d->ino))
			(void)cache_catalog_dir_forget(fs->catalog, d->dev, d->ino);
		else if (rc == 0)
			recorded = true;
	}
	if (!recorded && relists < YOUNG_RELISTS && cache_catalog_stamp_racy(&s1))
		young_keep(fs, d, &s1, count, relists);
	memset(out, 0, sizeof(*out));
	out->gens = *g;
	out->count = count;
	out->entries = entries;
	out->built = entries;
	out->names = names;
	out->attrs_fresh = true;
	out->recorded = recorded;
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

	struct fs_catalog_gens g;

	memset(out, 0, sizeof(*out));
	if (!fs_catalog_on(fs, d) || d->type != S_IFDIR)
		return -ENOTDIR;
	fs_catalog_gens_sample(fs, &g);  /* before anything is read: the record, or the origin */
	rc = stamp_of(fs, d, &stamp);
	if (rc < 0)
		return rc;
	rc = cache_catalog_dir_get(fs->catalog, d->dev, d->ino, &stamp, &l);
	if (rc == 0) {
		test_delay(fs);
		atomic_fetch_add(&fs->catalog_hits, 1);
		out->record = l;
		out->count = l->count;
		out->entries = l->entries;
		out->attrs_fresh = false;
		out->gens = g;
		return 0;
	}
	atomic_fetch_add(&fs->catalog_misses, 1);
	return listing_build(fs, d, &g, 0, out);
}

void fs_catalog_listing_release(struct fs_listing *l)
{
	if (l->record)
		cache_catalog_listing_free(l->record);
	free(l->built);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

/* ---- READDIR cookies ------------------------------------------------------------------------
 * A catalog listing is read again (or rebuilt from the origin) for every READDIR call, and the
 * directory may change between the calls of one reader: a cookie that was an index into one
 * listing pointed elsewhere in the next (an entry returned twice, or skipped). An entry's cookie
 * is a keyed hash of its name instead, the same in every listing of this run; a reader resumes
 * at the entries whose cookies are above the one it holds. */

uint64_t fs_catalog_cookie(const struct fs *fs, const char *name)
{
	uint64_t h = siphash24(fs->cookie_key, name, strlen(name)) >> 1;  /* lseek: no negative offset */
	return h < FS_CATALOG_COOKIE_FIRST ? h + FS_CATALOG_COOKIE_FIRST : h;
}

static bool pick_before(const struct fs_listing_pick *a, const struct fs_listing_pick *b)
{
	return a->cookie < b->cookie || (a->cookie == b->cookie && a->index < b->index);
}

static int pick_compare(const void *a, const void *b)
{
	const struct fs_listing_pick *x = a, *y = b;
	return pick_before(x, y) ? -1 : pick_before(y, x) ? 1 : 0;
}

/* picks[0..n) is a max-heap by (cookie, index): restore it below slot i. */
static void heap_down(struct fs_listing_pick *picks, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, top = i;
		if (l < n && pick_before(&picks[top], &picks[l]))
			top = l;
		if (r < n && pick_before(&picks[top], &picks[r]))
			top = r;
		if (top == i)
			return;
		struct fs_listing_pick t = picks[i];
		picks[i] = picks[top];
		picks[top] = t;
		i = top;
	}
}

static void heap_up(struct fs_listing_pick *picks, size_t i)
{
	while (i > 0 && pick_before(&picks[(i - 1) / 2], &picks[i])) {
		struct fs_listing_pick t = picks[i];
		picks[i] = picks[(i - 1) / 2];
		picks[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* One pass over the listing keeping the max smallest cookies above `after` in a max-heap:
 * O(count log max) per READDIR call, no copy of the listing. */
size_t fs_catalog_listing_after(const struct fs *fs, const struct fs_listing *l, uint64_t after,
                                 size_t max, struct fs_listing_pick *picks)
{
	size_t n = 0, beyond_same = 0, in_same = 0;
	bool more = false;

	if (max == 0)
		return 0;
	for (size_t i = 0; i < l->count; i++) {
		struct fs_listing_pick p = { fs_catalog_cookie(fs, l->entries[i].name), i };
		if (p.cookie <= after)
			continue;
		if (n < max) {
			picks[n] = p;
			heap_up(picks, n++);
		} else {
			more = true;
			if (pick_before(&p, &picks[0])) {
				picks[0] = p;
				heap_down(picks, n, 0);
			}
		}
	}
	qsort(picks, n, sizeof(*picks), pick_compare);
	if (!more)
		return n;
	/* Entries beyond max: if the last cookie picked is shared by one left out, that group
	 * waits for the next call whole (unless it is all there is). */
	for (size_t i = 0; i < l->count; i++)
		if (fs_catalog_cookie(fs, l->entries[i].name) == picks[n - 1].cookie)
			beyond_same++;
	for (size_t i = n; i > 0 && picks[i - 1].cookie == picks[n - 1].cookie; i--)
		in_same++;
	if (beyond_same > in_same && in_same < n)
		n -= in_same;
	return n;
}
