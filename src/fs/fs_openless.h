/* fs_openless: files the kernel opened without asking us (start --openless).
 *
 * In this mode OPEN answers ENOSYS, and the kernel then opens every regular file of the
 * connection itself (FUSE_NO_OPEN_SUPPORT: fh 0, FOPEN_KEEP_CACHE, no OPEN, no RELEASE; FLUSH
 * answers ENOSYS once and is never sent again). What reaches us are the requests that need
 * the file: READ on a page-cache miss, WRITE, FSYNC, LSEEK, FALLOCATE, COPY_FILE_RANGE, all
 * with fh 0. Each is served through an implicit open file of its node, made at the first such
 * request: our own fd on the original (read-only; a second one, read-write, at the first
 * request that writes) attached to the node's engine state like an open (fs_cache_attach), so
 * reads hit or fill the cache and writes go through to the original first, as for any open
 * file served in user space.
 *
 * Bounded: at most `max` implicit files (a sixteenth of the daemon's fd limit, fs_node.c). Each
 * holds up to four fds: ours on the original (the reader; the writer, once written), and the
 * engine's of its node (the cache object's data file; an O_DIRECT reader of the original for
 * misses), so at most a quarter of the limit; the node's O_PATH fd is the fd cache's, bounded
 * there. When the table is full the least recently used
 * one that no request is using is closed; a file a request is using is never closed under it
 * (the table may then exceed max by the requests in flight, at most one per worker thread).
 * The kernel forgetting a node (FORGET) closes its implicit file. Each implicit file holds a
 * lookup reference on its node, so a node never goes while its file is open.
 * The kernel sends no RELEASE on such a connection, also for files it opened by CREATE or
 * TMPFILE (Linux 6.18): those are answered with fh 0 as well (fs_ops.c reply_new_file). An
 * implicit file reopens its inode through the node's O_PATH fd or file handle; a regular file
 * whose last name went through the mount, and an O_TMPFILE, keep that fd until FORGET
 * (fs_node_pin_fd), since no handle reaches an unlinked inode.
 *
 * Watched: on an original the change watcher covers, the kernel keeps the pages of a file
 * across opens (FOPEN_KEEP_CACHE) and learns of a change behind the cache from the watcher's
 * NOTIFY_INVAL_INODE; the daemon takes the watch before the mount (daemon.c).
 * Timed: on an original whose files change elsewhere (a network original: fs_type.h), no event
 * tells of a change, so the pages, like names and attributes, are kept for --attr-timeout and
 * then revalidated, as a plain network mount does: the kernel asks GETATTR once the attributes
 * time out (before a read past what it holds: FUSE_AUTO_INVAL_DATA), and for a file whose pages
 * came from us that GETATTR opens the original (an open is what makes sshfs ask its server
 * again) and compares its fingerprint with the one the implicit file was opened at
 * (fs_node.pages_from, recorded at every implicit open); a change, or a fingerprint too young
 * to show a later change in the same clock tick (cache_catalog_stamp_racy), drops the implicit
 * file (whose next open checks the cache copy again) and then the kernel's pages
 * (NOTIFY_INVAL_INODE, sent by the notifier thread: a worker sending it can wait for a READ
 * only a worker answers), waited for at most 100 ms before the answer; past that the node
 * stays unvouched and the answer's attributes are valid for 0 s. A LOOKUP or READDIRPLUS entry
 * of such a file carries attributes valid for 0 s, so that the GETATTR revalidating it
 * follows. So a change made elsewhere shows within --attr-timeout (plus the original's own
 * caching: sshfs keeps attributes for 20 s unless an open asks).
 * Locks (docs/ARCHITECTURE.md "Lock order"): the table's lock is a leaf (no call into the
 * engine or the node table under it), and so is the notifier's queue lock (it sends with it
 * let go); a file's writer_lock is taken with no other lock held and held while it opens and
 * attaches the writer.
 * Errors: -errno.
 */
#ifndef CACHEMAX_FS_OPENLESS_H
#define CACHEMAX_FS_OPENLESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct fs;
struct fs_file;
struct fs_node;

/* At fs_create when cfg.openless: the table (fs->openless). 0 or -ENOMEM. */
int fs_openless_create(struct fs *fs, unsigned max);
/* At fs_free, before the engine stops: ends the notifier (if fs_openless_stop did not) and
 * closes every implicit file. */
void fs_openless_free(struct fs *fs);

/* The implicit file of node n, for a request with fh 0 (a file the kernel opened without
 * OPEN), made if needed and held until fs_openless_put. With
 * `write` the file can write (its read-write fd). NULL with *err set when it cannot be had:
 * the origin's error, or -ENOMEM; never EMFILE (the daemon's fd limit is its own: an open of
 * ours that hits it closes cached fds and tries again, then answers -ENOMEM, fs_open_retry;
 * the engine's opens of the cache object fall back to the origin). */
struct fs_file *fs_openless_file(struct fs *fs, struct fs_node *n, bool write, int *err);
/* Undo fs_openless_file. */
void fs_openless_put(struct fs *fs, struct fs_file *f);

/* Node nodeid's implicit file is closed (at once, or by the last request using it): the kernel
 * forgot the node (FORGET), its pages were found stale (a GETATTR), or the watch that vouched
 * for it overflowed or was lost (the watcher's thread). */
void fs_openless_forget(struct fs *fs, uint64_t nodeid);

/* Timed (above): whether n is a regular file of an openless mount that the watcher does not
 * cover. */
bool fs_openless_timed(struct fs *fs, const struct fs_node *n);
/* Whether the kernel may hold pages of n that came from us (timed nodes only): its LOOKUP and
 * READDIRPLUS entries then carry attributes valid for 0 s. */
bool fs_openless_pages_held(struct fs *fs, const struct fs_node *n);
/* At a GETATTR of a timed node whose pages came from us: the original opened and stat'ed into
 * *st, and on a change (or a racy fingerprint) the implicit file and the kernel's pages
 * dropped first -- the pages by the notifier thread, waited for at most 100 ms (a page
 * invalidation sent by a worker can wait for a READ only a worker can answer); *pending: that
 * wait ran out, so the answer's attributes must be valid for 0 s (the kernel asks again before
 * its next read). 1: *st is the answer; 0: not such a node (answer as usual); -errno: the
 * original could not be opened or stat'ed (its pages were dropped; answer as usual). */
int fs_openless_revalidate(struct fs *fs, struct fs_node *n, struct stat *st, bool *pending);

#endif
