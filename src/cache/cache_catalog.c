/* cache_catalog: the metadata catalog's records — one file per origin directory, written whole
 * and renamed into place, read whole and checked by CRC. The contract (validity rule, crash
 * safety, threads) is in cache_catalog.h; why per-directory records and not SQLite is in
 * docs/ARCHITECTURE.md "The metadata catalog".
 *
 * Layout: CATALOG/HH/DEV-INO.dir (HH: 256 buckets), CATALOG/tmp/ (puts in flight).
 *
 * Record format, version 2 (little-endian; written down here only):
 *   header, 64 bytes:
 *     0 magic "CMCT" (u32 0x54434d43)   4 version u32 = 2     8 flags u32 = 0   12 count u32
 *    16 directory dev u64              24 directory ino u64
 *    32 stamp ino u64                  40 stamp mtime_ns i64  48 stamp ctime_ns i64
 *    56 reserved u64 = 0
 *   count entries, sorted by name (strcmp order, no duplicates), each 96 bytes then
 *   handle_bytes bytes of file handle then name_len bytes of name (no NUL):
 *     0 dev u64   8 ino u64   16 mode u32   20 nlink u32   24 uid u32   28 gid u32
 *    32 rdev u64  40 size u64  48 blocks u64  56 atime_ns i64  64 mtime_ns i64  72 ctime_ns i64
 *    80 blksize u32   84 handle_type i32   88 handle_bytes u16 (<= 128)   90 name_len u16
 *       (1..255)   92 type u8   93 flags u8 (bit 0: no xattrs, CACHE_CATALOG_ATTR_NO_XATTRS;
 *       the others zero)   94..95 zero
 *   trailer: CRC32C (u32) of every byte before it.
 * Changelog: version 1 (issue 14) — first version. Version 2 — byte 93 of an entry holds its
 * flags (version 1 records, whose byte 93 is zero, are still read: nothing known of xattrs).
 */
#include "cache/cache_catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_bytes.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"
#include "util/clock.h"

#define CATALOG_MAGIC 0x54434d43u
#define CATALOG_VERSION 2u
#define CATALOG_VERSION_MIN 1u      /* still read */
#define CATALOG_VERSION_FLAGS 2u    /* the first with an entry's flags (byte 93) */
#define CATALOG_HEADER_SIZE 64u
#define CATALOG_ENTRY_SIZE 96u
#define CATALOG_CRC_SIZE 4u
#define CATALOG_BUCKETS 256u
/* Every put writes its temporary file here and renames it into its bucket, so that the
 * temporaries a crash left are found by reading this one (normally empty) directory at open,
 * not the buckets: 1 million records made a sweep of the buckets cost 2.8 s. */
#define CATALOG_TEMP_DIR "tmp"
#define CATALOG_TEMP_PREFIX ".tmp-"
#define CATALOG_RECORD_NAME_MAX 64u

#define CATALOG_MEMORY_SLOTS 256u   /* decoded listings kept, at most (and the byte bound) */

struct catalog_memory_slot {
	uint64_t dev, ino;
	struct cache_catalog_listing *listing;   /* NULL: a free slot */
	uint64_t last_use;
};

struct cache_catalog {
	int dir_fd;                   /* the catalog directory; immutable after open */
	atomic_uint_fast64_t temp_seq; /* names each put's temporary file */
	pthread_mutex_t lock;         /* guards everything below; never held across I/O */
	struct catalog_memory_slot slots[CATALOG_MEMORY_SLOTS];
	size_t memory_bytes;          /* of the listings in slots */
	uint64_t use_clock;
	/* Bumped after every change of a record (put, attr put, forget, damaged record removed): a
	 * listing read from disk is kept in memory only if no change happened since before its read
	 * began, so an older record read in a race never shadows a newer one. */
	uint64_t generation;
};

void cache_catalog_stamp_from_stat(const struct stat *st, struct cache_catalog_stamp *stamp)
{
	stamp->ino = st->st_ino;
	stamp->mtime_ns = clock_timespec_ns(&st->st_mtim);
	stamp->ctime_ns = clock_timespec_ns(&st->st_ctim);
}

void cache_catalog_attr_from_stat(const struct stat *st, struct cache_catalog_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->dev = st->st_dev;
	attr->ino = st->st_ino;
	attr->mode = st->st_mode;
	attr->nlink = (uint32_t)st->st_nlink;
	attr->uid = st->st_uid;
	attr->gid = st->st_gid;
	attr->rdev = st->st_rdev;
	attr->size = (uint64_t)st->st_size;
	attr->blocks = (uint64_t)st->st_blocks;
	attr->blksize = (uint32_t)st->st_blksize;
	attr->atime_ns = clock_timespec_ns(&st->st_atim);
	attr->mtime_ns = clock_timespec_ns(&st->st_mtim);
	attr->ctime_ns = clock_timespec_ns(&st->st_ctim);
}

void cache_catalog_attr_to_stat(const struct cache_catalog_attr *attr, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = attr->dev;
	st->st_ino = attr->ino;
	st->st_mode = attr->mode;
	st->st_nlink = attr->nlink;
	st->st_uid = attr->uid;
	st->st_gid = attr->gid;
	st->st_rdev = attr->rdev;
	st->st_size = (off_t)attr->size;
	st->st_blocks = (blkcnt_t)attr->blocks;
	st->st_blksize = (blksize_t)attr->blksize;
	st->st_atim = clock_ns_timespec(attr->atime_ns);
	st->st_mtim = clock_ns_timespec(attr->mtime_ns);
	st->st_ctim = clock_ns_timespec(attr->ctime_ns);
}

int cache_catalog_attr_matches(const struct cache_catalog_attr *attr, const struct stat *st)
{
	return attr->ino == st->st_ino && attr->ctime_ns == clock_timespec_ns(&st->st_ctim) &&
	       attr->mtime_ns == clock_timespec_ns(&st->st_mtim) && attr->size == (uint64_t)st->st_size;
}

static int stamp_equal(const struct cache_catalog_stamp *a, const struct cache_catalog_stamp *b)
{
	return a->ino == b->ino && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* Whether a change could still come in the same clock tick as stamp (CACHE_CATALOG_RACY_NS). */
bool cache_catalog_stamp_racy(const struct cache_catalog_stamp *stamp)
{
	int64_t newest = stamp->mtime_ns > stamp->ctime_ns ? stamp->mtime_ns : stamp->ctime_ns;
	return newest > clock_wall_ns() - CACHE_CATALOG_RACY_NS;
}

static int name_valid(const char *name, size_t len)
{
	if (len == 0 || len > CACHE_CATALOG_NAME_MAX || memchr(name, '/', len) || memchr(name, '\0', len))
		return 0;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* --- the record format --------------------------------------------------------------------- */

static int entry_compare(const void *a, const void *b)
{
	return strcmp(((const struct cache_catalog_entry *)a)->name, ((const struct cache_catalog_entry *)b)->name);
}

static void entry_encode(const struct cache_catalog_entry *e, size_t name_len, uint8_t *p)
{
	const struct cache_catalog_attr *a = &e->attr;
	memset(p, 0, CATALOG_ENTRY_SIZE);
	cache_put_le64(p + 0, a->dev);
	cache_put_le64(p + 8, a->ino);
	cache_put_le32(p + 16, a->mode);
	cache_put_le32(p + 20, a->nlink);
	cache_put_le32(p + 24, a->uid);
	cache_put_le32(p + 28, a->gid);
	cache_put_le64(p + 32, a->rdev);
	cache_put_le64(p + 40, a->size);
	cache_put_le64(p + 48, a->blocks);
	cache_put_le64(p + 56, (uint64_t)a->atime_ns);
	cache_put_le64(p + 64, (uint64_t)a->mtime_ns);
	cache_put_le64(p + 72, (uint64_t)a->ctime_ns);
	cache_put_le32(p + 80, a->blksize);
	cache_put_le32(p + 84, (uint32_t)a->handle.type);
	cache_put_le16(p + 88, (uint16_t)a->handle.bytes);
	cache_put_le16(p + 90, (uint16_t)name_len);
	p[92] = e->type;
	p[93] = a->flags & CACHE_CATALOG_ATTR_NO_XATTRS;
	memcpy(p + CATALOG_ENTRY_SIZE, a->handle.data, a->handle.bytes);
	memcpy(p + CATALOG_ENTRY_SIZE + a->handle.bytes, e->name, name_len);
}

/* entries must be sorted and valid (encode_sorted's callers check). */
static int encode_sorted(uint64_t dev, uint64_t ino, const struct cache_catalog_stamp *stamp,
                         const struct cache_catalog_entry *entries, size_t count, uint8_t **buf, size_t *len)
{
	size_t total = CATALOG_HEADER_SIZE + CATALOG_CRC_SIZE;
	for (size_t i = 0; i < count; i++)
		total += CATALOG_ENTRY_SIZE + entries[i].attr.handle.bytes + strlen(entries[i].name);
	uint8_t *out = malloc(total);
	if (!out)
		return -ENOMEM;
	memset(out, 0, CATALOG_HEADER_SIZE);
	cache_put_le32(out + 0, CATALOG_MAGIC);
	cache_put_le32(out + 4, CATALOG_VERSION);
	cache_put_le32(out + 12, (uint32_t)count);
	cache_put_le64(out + 16, dev);
	cache_put_le64(out + 24, ino);
	cache_put_le64(out + 32, stamp->ino);
	cache_put_le64(out + 40, (uint64_t)stamp->mtime_ns);
	cache_put_le64(out + 48, (uint64_t)stamp->ctime_ns);
	uint8_t *p = out + CATALOG_HEADER_SIZE;
	for (size_t i = 0; i < count; i++) {
		size_t name_len = strlen(entries[i].name);
		entry_encode(&entries[i], name_len, p);
		p += CATALOG_ENTRY_SIZE + entries[i].attr.handle.bytes + name_len;
	}
	cache_put_le32(p, cache_crc32c(0, out, (size_t)(p - out)));
	*buf = out;
	*len = total;
	return 0;
}

/* Sorts a copy of the caller's entries and checks names, uniqueness and handle sizes. */
static int entries_sorted_copy(const struct cache_catalog_entry *entries, size_t count,
                               struct cache_catalog_entry **out)
{
	if (count > CACHE_CATALOG_ENTRIES_MAX)
		return -EINVAL;
	struct cache_catalog_entry *sorted = malloc((count ? count : 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		if (!entries[i].name || !name_valid(entries[i].name, strlen(entries[i].name)) ||
		    entries[i].attr.handle.bytes > CACHE_HANDLE_MAX) {
			free(sorted);
			return -EINVAL;
		}
	}
	if (count)
		memcpy(sorted, entries, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), entry_compare);
	for (size_t i = 1; i < count; i++) {
		if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
			free(sorted);
			return -EINVAL;
		}
	}
	*out = sorted;
	return 0;
}

int cache_catalog_record_encode(uint64_t dev, uint64_t ino, const struct cache_catalog_stamp *stamp,
                                const struct cache_catalog_entry *entries, size_t count,
                                uint8_t **buf, size_t *len)
{
	struct cache_catalog_entry *sorted;
	int rc = entries_sorted_copy(entries, count, &sorted);
	if (rc < 0)
		return rc;
	rc = encode_sorted(dev, ino, stamp, sorted, count, buf, len);
	free(sorted);
	return rc;
}

int cache_catalog_record_decode(const uint8_t *buf, size_t len, uint64_t dev, uint64_t ino,
                                struct cache_catalog_listing **out)
{
	uint32_t version;

	if (len < CATALOG_HEADER_SIZE + CATALOG_CRC_SIZE)
		return -EBADMSG;
	version = cache_get_le32(buf + 4);
	if (cache_get_le32(buf) != CATALOG_MAGIC ||
	    version < CATALOG_VERSION_MIN || version > CATALOG_VERSION ||
	    cache_get_le32(buf + 8) != 0 || cache_get_le64(buf + 56) != 0 ||
	    cache_get_le64(buf + 16) != dev || cache_get_le64(buf + 24) != ino ||
	    cache_get_le32(buf + len - CATALOG_CRC_SIZE) != cache_crc32c(0, buf, len - CATALOG_CRC_SIZE))
		return -EBADMSG;
	size_t count = cache_get_le32(buf + 12);
	size_t body = len - CATALOG_HEADER_SIZE - CATALOG_CRC_SIZE;
	if (count > CACHE_CATALOG_ENTRIES_MAX || count > body / CATALOG_ENTRY_SIZE)
		return -EBADMSG;
	/* one allocation: the listing, its entries, then every name NUL-terminated */
	size_t names_room = body - count * CATALOG_ENTRY_SIZE + count;
	struct cache_catalog_listing *listing =
		malloc(sizeof(*listing) + count * sizeof(struct cache_catalog_entry) + names_room);
	if (!listing)
		return -ENOMEM;
	listing->entries = (struct cache_catalog_entry *)(listing + 1);
	listing->count = count;
	listing->memory_bytes = sizeof(*listing) + count * sizeof(struct cache_catalog_entry) + names_room;
	listing->stamp.ino = cache_get_le64(buf + 32);
	listing->stamp.mtime_ns = (int64_t)cache_get_le64(buf + 40);
	listing->stamp.ctime_ns = (int64_t)cache_get_le64(buf + 48);
	char *names = (char *)(listing->entries + count);
	const uint8_t *p = buf + CATALOG_HEADER_SIZE, *end = buf + len - CATALOG_CRC_SIZE;
	for (size_t i = 0; i < count; i++) {
		struct cache_catalog_entry *e = &listing->entries[i];
		if ((size_t)(end - p) < CATALOG_ENTRY_SIZE)
			goto bad;
		size_t handle_bytes = cache_get_le16(p + 88), name_len = cache_get_le16(p + 90);
		if ((p[93] & ~CACHE_CATALOG_ATTR_NO_XATTRS) || (p[93] && version < CATALOG_VERSION_FLAGS) ||
		    p[94] || p[95] || handle_bytes > CACHE_HANDLE_MAX ||
		    (size_t)(end - p) < CATALOG_ENTRY_SIZE + handle_bytes + name_len)
			goto bad;
		const char *name = (const char *)p + CATALOG_ENTRY_SIZE + handle_bytes;
		if (!name_valid(name, name_len))
			goto bad;
		memcpy(names, name, name_len);
		names[name_len] = '\0';
		e->name = names;
		names += name_len + 1;
		if (i > 0 && strcmp(listing->entries[i - 1].name, e->name) >= 0)
			goto bad;
		e->type = p[92];
		struct cache_catalog_attr *a = &e->attr;
		a->dev = cache_get_le64(p + 0);
		a->ino = cache_get_le64(p + 8);
		a->mode = cache_get_le32(p + 16);
		a->nlink = cache_get_le32(p + 20);
		a->uid = cache_get_le32(p + 24);
		a->gid = cache_get_le32(p + 28);
		a->rdev = cache_get_le64(p + 32);
		a->size = cache_get_le64(p + 40);
		a->blocks = cache_get_le64(p + 48);
		a->atime_ns = (int64_t)cache_get_le64(p + 56);
		a->mtime_ns = (int64_t)cache_get_le64(p + 64);
		a->ctime_ns = (int64_t)cache_get_le64(p + 72);
		a->blksize = cache_get_le32(p + 80);
		a->flags = p[93];
		a->handle.type = (int32_t)cache_get_le32(p + 84);
		a->handle.bytes = (uint32_t)handle_bytes;
		memcpy(a->handle.data, p + CATALOG_ENTRY_SIZE, handle_bytes);
		p += CATALOG_ENTRY_SIZE + handle_bytes + name_len;
	}
	if (p != end)
		goto bad;
	*out = listing;
	return 0;
bad:
	free(listing);
	return -EBADMSG;
}

void cache_catalog_listing_free(struct cache_catalog_listing *listing)
{
	free(listing);
}

const struct cache_catalog_entry *cache_catalog_listing_find(const struct cache_catalog_listing *listing,
                                                             const char *name)
{
	size_t lo = 0, hi = listing->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(listing->entries[mid].name, name);
		if (c == 0)
			return &listing->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* --- the files ----------------------------------------------------------------------------- */

static unsigned bucket_of(uint64_t dev, uint64_t ino)
{
	return (unsigned)(((ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0x9e3779b97f4a7c15ull) >> 56) % CATALOG_BUCKETS;
}

static void record_path(uint64_t dev, uint64_t ino, char *path, size_t size)
{
	snprintf(path, size, "%02x/%" PRIx64 "-%" PRIx64 ".dir", bucket_of(dev, ino), dev, ino);
}

/* Removes the temporary files of puts a crash interrupted (CATALOG_TEMP_DIR holds nothing else). */
static int sweep_temporaries(int dir_fd)
{
	int fd = sys_openat(dir_fd, CATALOG_TEMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		sys_close(fd);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, CATALOG_TEMP_PREFIX, strlen(CATALOG_TEMP_PREFIX)) == 0)
			sys_unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

int cache_catalog_open(const char *path, struct cache_catalog **out)
{
	int rc = sys_mkdirat(AT_FDCWD, path, 0700);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	int dir_fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dir_fd < 0)
		return dir_fd;
	rc = sys_mkdirat(dir_fd, CATALOG_TEMP_DIR, 0700);
	if (rc == 0 || rc == -EEXIST)
		rc = sweep_temporaries(dir_fd);
	if (rc < 0) {
		sys_close(dir_fd);
		return rc;
	}
	struct cache_catalog *catalog = calloc(1, sizeof(*catalog));
	if (!catalog) {
		sys_close(dir_fd);
		return -ENOMEM;
	}
	catalog->dir_fd = dir_fd;
	atomic_init(&catalog->temp_seq, 0);
	pthread_mutex_init(&catalog->lock, NULL);
	*out = catalog;
	return 0;
}

void cache_catalog_free(struct cache_catalog *catalog)
{
	if (!catalog)
		return;
	for (unsigned i = 0; i < CATALOG_MEMORY_SLOTS; i++)
		free(catalog->slots[i].listing);
	pthread_mutex_destroy(&catalog->lock);
	sys_close(catalog->dir_fd);
	free(catalog);
}

/* --- decoded listings kept in memory (catalog->lock held by the callers of slot_*) ------- */

static struct catalog_memory_slot *slot_find(struct cache_catalog *catalog, uint64_t dev, uint64_t ino)
{
	for (unsigned i = 0; i < CATALOG_MEMORY_SLOTS; i++) {
		struct catalog_memory_slot *s = &catalog->slots[i];
		if (s->listing && s->dev == dev && s->ino == ino)
			return s;
	}
	return NULL;
}

static void slot_clear(struct cache_catalog *catalog, struct catalog_memory_slot *s)
{
	catalog->memory_bytes -= s->listing->memory_bytes;
	free(s->listing);
	s->listing = NULL;
}

/* Keeps listing (taking it) unless it is too large; evicts the least recently used to fit. */
static void slot_keep(struct cache_catalog *catalog, uint64_t dev, uint64_t ino, struct cache_catalog_listing *listing)
{
	struct catalog_memory_slot *s = slot_find(catalog, dev, ino);
	if (s)
		slot_clear(catalog, s);
	if (listing->memory_bytes > CACHE_CATALOG_MEMORY_BYTES / 4) {
		free(listing);
		return;
	}
	for (;;) {
		struct catalog_memory_slot *free_slot = NULL, *oldest = NULL;
		for (unsigned i = 0; i < CATALOG_MEMORY_SLOTS; i++) {
			struct catalog_memory_slot *c = &catalog->slots[i];
			if (!c->listing)
				free_slot = free_slot ? free_slot : c;
			else if (!oldest || c->last_use < oldest->last_use)
				oldest = c;
		}
		if (free_slot && catalog->memory_bytes + listing->memory_bytes <= CACHE_CATALOG_MEMORY_BYTES) {
			free_slot->dev = dev;
			free_slot->ino = ino;
			free_slot->listing = listing;
			free_slot->last_use = ++catalog->use_clock;
			catalog->memory_bytes += listing->memory_bytes;
			return;
		}
		slot_clear(catalog, oldest);   /* full: there is an oldest */
	}
}

/* After a record of (dev, ino) changed on disk: its decoded copy goes, reads in flight are not kept. */
static void memory_changed(struct cache_catalog *catalog, uint64_t dev, uint64_t ino)
{
	pthread_mutex_lock(&catalog->lock);
	catalog->generation++;
	struct catalog_memory_slot *s = slot_find(catalog, dev, ino);
	if (s)
		slot_clear(catalog, s);
	pthread_mutex_unlock(&catalog->lock);
}

static struct cache_catalog_listing *listing_copy(const struct cache_catalog_listing *from)
{
	struct cache_catalog_listing *to = malloc(from->memory_bytes);
	if (!to)
		return NULL;
	memcpy(to, from, from->memory_bytes);
	to->entries = (struct cache_catalog_entry *)(to + 1);
	for (size_t i = 0; i < to->count; i++)   /* names live in the same block: rebase them */
		to->entries[i].name = (const char *)to + (from->entries[i].name - (const char *)from);
	return to;
}

static int record_write(struct cache_catalog *catalog, uint64_t dev, uint64_t ino, const uint8_t *buf, size_t len)
{
	char final[CATALOG_RECORD_NAME_MAX], temp[CATALOG_RECORD_NAME_MAX];
	record_path(dev, ino, final, sizeof(final));
	snprintf(temp, sizeof(temp), CATALOG_TEMP_DIR "/" CATALOG_TEMP_PREFIX "%" PRIx64 "-%" PRIx64 "-%" PRIuFAST64,
	         dev, ino, atomic_fetch_add(&catalog->temp_seq, 1));
	int fd = sys_openat(catalog->dir_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	int rc = cache_pwrite_full(fd, buf, len, 0);
	int close_rc = sys_close(fd);
	if (rc == 0)
		rc = close_rc;
	if (rc == 0)
		rc = sys_renameat2(catalog->dir_fd, temp, catalog->dir_fd, final, 0);
	if (rc == -ENOENT) {   /* the bucket's first record */
		char bucket[3] = { final[0], final[1], '\0' };
		rc = sys_mkdirat(catalog->dir_fd, bucket, 0700);
		if (rc == 0 || rc == -EEXIST)
			rc = sys_renameat2(catalog->dir_fd, temp, catalog->dir_fd, final, 0);
	}
	if (rc < 0)
		sys_unlinkat(catalog->dir_fd, temp, 0);
	return rc;
}

/* The whole record file of (dev, ino) in a malloc'ed buffer: 0, -ENOENT, -ENOMEM, an I/O error. */
static int record_read(struct cache_catalog *catalog, uint64_t dev, uint64_t ino, uint8_t **buf, size_t *len)
{
	char path[CATALOG_RECORD_NAME_MAX];
	record_path(dev, ino, path, sizeof(path));
	int fd = sys_openat(catalog->dir_fd, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	struct stat st;
	int rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	uint8_t *data = NULL;
	if (rc < 0)
		goto out_close;
	size_t size = (size_t)st.st_size;
	data = malloc(size ? size : 1);
	if (!data) {
		rc = -ENOMEM;
		goto out_close;
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = sys_pread(fd, data + done, size - done, (off_t)done);
		if (n < 0) {
			rc = (int)n;
			goto out_free;
		}
		if (n == 0)
			break;   /* shorter than it was: decoded as it is, the CRC decides */
		done += (size_t)n;
	}
	sys_close(fd);
	*buf = data;
	*len = done;
	return 0;
out_free:
	free(data);
out_close:
	sys_close(fd);
	return rc;
}

/* Calls fn(listing, arg) under the lock on the valid listing of (dev, ino) whose stamp equals
 * now — from memory, or read from disk and kept: fn's result, -ENOENT (no record, another
 * stamp, a damaged record: removed), -ENOMEM or an I/O error. */
static int listing_with(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                        const struct cache_catalog_stamp *now,
                        int (*fn)(struct cache_catalog_listing *listing, void *arg), void *arg)
{
	pthread_mutex_lock(&catalog->lock);
	struct catalog_memory_slot *s = slot_find(catalog, dev, ino);
	if (s) {
		s->last_use = ++catalog->use_clock;
		int rc = stamp_equal(&s->listing->stamp, now) ? fn(s->listing, arg) : -ENOENT;
		pthread_mutex_unlock(&catalog->lock);
		return rc;
	}
	uint64_t generation = catalog->generation;
	pthread_mutex_unlock(&catalog->lock);

	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = record_read(catalog, dev, ino, &buf, &len);
	if (rc < 0)
		return rc;
	struct cache_catalog_listing *listing = NULL;
	rc = cache_catalog_record_decode(buf, len, dev, ino, &listing);
	free(buf);
	if (rc == -EBADMSG) {
		cache_catalog_dir_forget(catalog, dev, ino);
		return -ENOENT;
	}
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&catalog->lock);
	rc = stamp_equal(&listing->stamp, now) ? fn(listing, arg) : -ENOENT;
	if (catalog->generation == generation)
		slot_keep(catalog, dev, ino, listing);
	else
		free(listing);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int cache_catalog_dir_put(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                          const struct cache_catalog_stamp *stamp,
                          const struct cache_catalog_entry *entries, size_t count)
{
	if (cache_catalog_stamp_racy(stamp)) {
		cache_catalog_dir_forget(catalog, dev, ino);   /* tidy: an older record is stale anyway */
		return -EAGAIN;
	}
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = cache_catalog_record_encode(dev, ino, stamp, entries, count, &buf, &len);
	if (rc < 0)
		return rc;
	rc = record_write(catalog, dev, ino, buf, len);
	free(buf);
	memory_changed(catalog, dev, ino);
	return rc;
}

static int copy_listing_out(struct cache_catalog_listing *listing, void *arg)
{
	struct cache_catalog_listing **out = arg;
	*out = listing_copy(listing);
	return *out ? 0 : -ENOMEM;
}

int cache_catalog_dir_get(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                          const struct cache_catalog_stamp *now,
                          struct cache_catalog_listing **out)
{
	return listing_with(catalog, dev, ino, now, copy_listing_out, out);
}

static int listing_exists(struct cache_catalog_listing *listing, void *arg)
{
	(void)listing;
	(void)arg;
	return 0;
}

int cache_catalog_dir_valid(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                            const struct cache_catalog_stamp *now)
{
	return listing_with(catalog, dev, ino, now, listing_exists, NULL);
}

int cache_catalog_dir_forget(struct cache_catalog *catalog, uint64_t dev, uint64_t ino)
{
	char path[CATALOG_RECORD_NAME_MAX];
	record_path(dev, ino, path, sizeof(path));
	int rc = sys_unlinkat(catalog->dir_fd, path, 0);
	memory_changed(catalog, dev, ino);
	return rc == -ENOENT ? 0 : rc;
}

struct attr_request {
	const char *name;
	struct cache_catalog_attr *attr;
};

static int copy_attr_out(struct cache_catalog_listing *listing, void *arg)
{
	struct attr_request *req = arg;
	const struct cache_catalog_entry *e = cache_catalog_listing_find(listing, req->name);
	if (!e)
		return -ENODATA;
	*req->attr = e->attr;
	return 0;
}

int cache_catalog_attr_get(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                           const struct cache_catalog_stamp *now, const char *name,
                           struct cache_catalog_attr *attr)
{
	struct attr_request req = { .name = name, .attr = attr };
	return listing_with(catalog, dev, ino, now, copy_attr_out, &req);
}

int cache_catalog_attr_put(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                           const struct cache_catalog_stamp *now, const char *name,
                           const struct cache_catalog_attr *attr)
{
	if (attr->handle.bytes > CACHE_HANDLE_MAX)
		return -EINVAL;
	struct cache_catalog_listing *listing = NULL;
	int rc = cache_catalog_dir_get(catalog, dev, ino, now, &listing);
	if (rc < 0)
		return rc;
	struct cache_catalog_entry *e = (struct cache_catalog_entry *)cache_catalog_listing_find(listing, name);
	if (!e) {
		cache_catalog_listing_free(listing);
		return -ENODATA;
	}
	e->attr = *attr;
	uint8_t *buf = NULL;
	size_t len = 0;
	rc = encode_sorted(dev, ino, &listing->stamp, listing->entries, listing->count, &buf, &len);
	cache_catalog_listing_free(listing);
	if (rc < 0)
		return rc;
	rc = record_write(catalog, dev, ino, buf, len);
	free(buf);
	memory_changed(catalog, dev, ino);
	return rc;
}
