/* cache_catalog: the metadata catalog on the cache device (DESIGN §9) — directory listings and
 * the attributes of their entries, kept so that after a warm-up, and after a restart, lookup,
 * readdir and getattr can be answered without reading the original.
 *
 * One meaning per name: "catalog" in the code is this metadata catalog only. The store's index
 * of cached data objects (DESIGN §6 calls it "Catalog") is the object records, cache_meta.c.
 *
 * Storage: one record file per origin directory, CATALOG_DIR/HH/DEV-INO.dir (HH: a hash of the
 * key), holding the directory's validity stamp and every entry — name, child key (dev, ino), type
 * and the child's attributes (with a "no xattrs" flag) and file handle — sorted by name,
 * CRC32C over the whole record. Format: cache_catalog.c. Why own records and not SQLite: docs/ARCHITECTURE.md
 * "The metadata catalog" (figures at 10 million entries).
 *
 * Validity rule (the caller's part is marked "caller"):
 *  - A listing is served only while the directory's stamp (ino, mtime_ns, ctime_ns, as the
 *    caller saw them before it listed) equals the directory's stamp now (caller: one stat of
 *    the directory on the origin). Every create, unlink, rename or link in a directory changes
 *    its mtime and ctime, so a directory changed while the daemon was down is re-listed.
 *  - A listing whose stamp is younger than CACHE_CATALOG_RACY_NS is not recorded (-EAGAIN):
 *    file systems stamp times from a coarse clock (a jiffy on ext4, a second on sshfs), so a
 *    change made in the same tick as the listing leaves the stamp as it was (git's "racily
 *    clean" rule). The caller lists again later, or keeps serving from the origin.
 *  - The attributes of an entry are those seen when the listing was written (or updated by
 *    cache_catalog_attr_put). They are a hint for a file until checked: a file whose attributes
 *    changed (chmod, chown, utimens, a write or truncate, a new link) has a new ctime, caught
 *    when the caller stats the file (caller: before serving the attributes of a restart, or at
 *    open, where the data fingerprint — size, mtime, ctime, ino — is checked anyway).
 *  - Limits: ctime cannot be set by a user, but a clock set backwards, a file system that does
 *    not update ctime/mtime (some network file systems, within their own caching), or a raw
 *    write to the device would not be seen. A file whose content changed in place without any
 *    change to its directory keeps a valid listing entry; its content is caught by the data
 *    fingerprint at open, its attributes by the ctime rule above.
 *  - Changes while running: the caller forgets a directory (cache_catalog_dir_forget) when it
 *    learns of a change (fanotify, a change made through the mount); a put replaces the record.
 *
 * Crash safety: a record is written to a temporary file and renamed over the old one; a record
 * whose length, magic, version, CRC or contents are not intact is a miss and is removed, so a
 * torn record is never served. Records are not fsynced: a put lost in a crash is a miss (or an
 * older record, still guarded by its stamp), never a wrong answer. Temporary files a crash left
 * are removed at the next open: one catalog directory is opened by one process at a time (the
 * store's lock on the cache directory makes it so).
 *
 * Memory: the most recently used decoded listings (at most CACHE_CATALOG_MEMORY_BYTES) are kept,
 * so that lookups in one directory read its record once, not once per name.
 *
 * Threads: every function may be called from any thread at once. One mutex guards the decoded
 * listings kept in memory (never held across I/O); each put writes its own temporary file and
 * renames it (atomic). Errors: 0 or -errno; -ENOENT is a miss. Every I/O goes through src/sys
 * (fault injection).
 */
#ifndef CACHEMAX_CACHE_CATALOG_H
#define CACHEMAX_CACHE_CATALOG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cache/cache_store.h"

#define CACHE_CATALOG_NAME_MAX 255u         /* NAME_MAX */
#define CACHE_CATALOG_ENTRIES_MAX 16777216u /* one directory: a record beyond this is refused */
#define CACHE_CATALOG_MEMORY_BYTES (32u << 20) /* decoded listings kept in memory, at most */
#define CACHE_CATALOG_RACY_NS 2000000000ll  /* a stamp this close to now is not trusted */

struct cache_catalog;

/* What makes a listing valid: the directory's identity and change times when it was listed. */
struct cache_catalog_stamp {
	uint64_t ino;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

/* The subset of struct stat a FUSE attribute reply needs, and the inode's file handle. */
struct cache_catalog_attr {
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks;
	uint32_t blksize;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint8_t flags;                       /* CACHE_CATALOG_ATTR_* */
	struct cache_origin_handle handle;   /* bytes 0: none */
};
/* The inode had no extended attributes when it was listed (listxattr gave 0 bytes): kept
 * current by the same rule as the rest (an xattr change moves the inode's ctime). Unset: not
 * known, or it has some. */
#define CACHE_CATALOG_ATTR_NO_XATTRS 0x1u

struct cache_catalog_entry {
	const char *name;   /* put: the caller's; in a listing: points into the listing */
	uint8_t type;       /* DT_* */
	struct cache_catalog_attr attr;
};

/* A decoded listing, entries sorted by name (strcmp order). */
struct cache_catalog_listing {
	struct cache_catalog_stamp stamp;
	size_t count;
	struct cache_catalog_entry *entries;
	size_t memory_bytes;   /* the listing is one allocation of this size (the catalog's use) */
};

/* Opens (creating it 0700 if missing) the catalog kept in directory path. 0, or -errno. */
int cache_catalog_open(const char *path, struct cache_catalog **out);
/* Closes the catalog and frees it; NULL is allowed. Records stay on disk. */
void cache_catalog_free(struct cache_catalog *catalog);

/* The stamp of a directory as stat reports it. */
void cache_catalog_stamp_from_stat(const struct stat *st, struct cache_catalog_stamp *stamp);
/* Is the stamp younger than CACHE_CATALOG_RACY_NS (its directory changed too recently for a
 * listing of it to be recorded)? */
bool cache_catalog_stamp_racy(const struct cache_catalog_stamp *stamp);
/* The attributes of st (handle: none; set attr->handle afterwards if known). */
void cache_catalog_attr_from_stat(const struct stat *st, struct cache_catalog_attr *attr);
/* Fills st from attr (fields the catalog does not keep are zero). */
void cache_catalog_attr_to_stat(const struct cache_catalog_attr *attr, struct stat *st);
/* Whether attr still describes the file now stat'ed as st (same ino, ctime, mtime, size). */
int cache_catalog_attr_matches(const struct cache_catalog_attr *attr, const struct stat *st);

/* Records the listing of directory (dev, ino) as seen with stamp (stat'ed before the listing,
 * and the caller should check it is unchanged after): count entries in any order (sorted here;
 * names must be unique, 1..255 bytes, no '/', not "." or ".."). Replaces any earlier record.
 * 0, -EAGAIN (the stamp is younger than CACHE_CATALOG_RACY_NS: nothing recorded, any earlier
 * record dropped), -EINVAL (a bad name, a duplicate, too many entries), -ENOMEM, or an I/O
 * error of the cache device. */
int cache_catalog_dir_put(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                          const struct cache_catalog_stamp *stamp,
                          const struct cache_catalog_entry *entries, size_t count);
/* The listing of directory (dev, ino) if its recorded stamp equals now: 0 and *out (free it with
 * cache_catalog_listing_free); -ENOENT: no record, another stamp, or a damaged record (removed);
 * -ENOMEM or an I/O error. */
int cache_catalog_dir_get(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                          const struct cache_catalog_stamp *now,
                          struct cache_catalog_listing **out);
/* Whether directory (dev, ino) has an intact record made with stamp now: 0; -ENOENT (none,
 * another stamp, damaged: removed), -ENOMEM or an I/O error. Copies nothing. */
int cache_catalog_dir_valid(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                            const struct cache_catalog_stamp *now);
/* Drops the record of directory (dev, ino): 0 (also when there was none) or an I/O error. */
int cache_catalog_dir_forget(struct cache_catalog *catalog, uint64_t dev, uint64_t ino);
void cache_catalog_listing_free(struct cache_catalog_listing *listing);
/* The entry called name in listing (binary search), or NULL. */
const struct cache_catalog_entry *cache_catalog_listing_find(const struct cache_catalog_listing *listing,
                                                             const char *name);

/* The attributes of entry name of directory (dev, ino), if the directory's stamp equals now:
 * 0 and *attr (attr->mode carries the type); -ENODATA: the valid listing has no such name (a
 * negative answer the caller may give without asking the origin); -ENOENT: no valid listing
 * (as for cache_catalog_dir_get: ask the origin). */
int cache_catalog_attr_get(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                           const struct cache_catalog_stamp *now, const char *name,
                           struct cache_catalog_attr *attr);
/* Replaces the attributes of entry name of directory (dev, ino) (e.g. after a write through the
 * mount changed a size), if the directory's stamp equals now: 0; -ENOENT (no valid record) or
 * -ENODATA (no such entry): nothing changed; an I/O error. Costs a rewrite of the directory's
 * record (so a directory with many changing files is better forgotten than updated). Two
 * concurrent attr puts in one directory: one of the two changes may be lost (an older value
 * stays, which the ctime rule above catches; never a torn or mixed record). */
int cache_catalog_attr_put(struct cache_catalog *catalog, uint64_t dev, uint64_t ino,
                           const struct cache_catalog_stamp *now, const char *name,
                           const struct cache_catalog_attr *attr);

/* The record format, exposed for the unit tests and the storage benchmark: encodes a sorted,
 * validated listing into a malloc'ed buffer (*buf, *len). 0 or -ENOMEM / -EINVAL. */
int cache_catalog_record_encode(uint64_t dev, uint64_t ino, const struct cache_catalog_stamp *stamp,
                                const struct cache_catalog_entry *entries, size_t count,
                                uint8_t **buf, size_t *len);
/* Decodes a record of directory (dev, ino): 0 and *out; -EBADMSG for anything but an intact
 * record of that directory; -ENOMEM. */
int cache_catalog_record_decode(const uint8_t *buf, size_t len, uint64_t dev, uint64_t ino,
                                struct cache_catalog_listing **out);

#endif
