/* fs_admin: what the control plane (src/control/control_verbs.c) asks of the file system, by a
 * path relative to the origin ("REL": no leading '/', no "." or ".." component; a symlink on
 * the way is not followed), so that nothing above fs/ builds cache keys or touches the cache
 * engine's state:
 *   evict   drop cache copies (all, one file's, or every file's below a directory);
 *   warm    complete one file's copy through the fill threads (a background completion job,
 *           queued like the one a miss queues: never ahead of an application's read-ahead,
 *           at most ENGINE_FILL_BACKGROUND_MAX at once); asked again, it reports the progress;
 *   verify  hash a complete copy and the original (XXH3) and drop the copy if they differ.
 * Each runs on the caller's thread; verify reads two whole files, the others return at once.
 * Errors: 0 or -errno; -ENOMEDIUM without a cache, -EAGAIN while the cache is bypassed (warm,
 * verify), -EISDIR (warm, verify of a directory), -EINVAL (not a regular file or directory),
 * the origin's error (-ENOENT, -ENOTDIR, -ELOOP for a symlink), the store's (-EFBIG).
 */
#ifndef CACHEMAX_FS_ADMIN_H
#define CACHEMAX_FS_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

struct fs;

/* rel "": every object (and the first-read set); a regular file: its object; a directory:
 * the objects of every regular file below it. *evicted counts the objects removed (a file the
 * cache held nothing of counts 0). Open files keep reading the copy they had until they close;
 * the next open of an evicted file reads the original. */
int fs_admin_evict(struct fs *fs, const char *rel, uint64_t *evicted);

enum fs_warm_state {
	FS_WARM_COMPLETE,   /* every chunk is in the cache (the next open is a passthrough hit) */
	FS_WARM_FILLING,    /* a completion job is queued or running: ask again */
	FS_WARM_WAITING,    /* not queued now (the fill queue is full, or the file is open with
	                     * passthrough, which a fill must not race): ask again later */
	FS_WARM_EXCLUDED,   /* it matches --exclude: never cached */
};
struct fs_warm_report {
	enum fs_warm_state state;
	uint64_t size;      /* the file's size */
	uint64_t cached;    /* bytes of it in the cache (whole chunks, clipped to the size) */
};
/* Queue the completion of rel's cache copy if it is not complete and none is queued; report
 * where it stands. Idempotent: a client polls it until FS_WARM_COMPLETE. */
int fs_admin_warm(struct fs *fs, const char *rel, struct fs_warm_report *out);

enum fs_verify_result {
	FS_VERIFY_MATCH,         /* the complete copy equals the original */
	FS_VERIFY_MISMATCH,      /* it differs: the copy was dropped */
	FS_VERIFY_NOT_COMPLETE,  /* the cache holds only part of it (or nothing): not checked */
	FS_VERIFY_CHANGED,       /* the file changed while it was hashed, or is open for writing
	                          * (a mapping's writes reach the original later): not checked */
};
struct fs_verify_report {
	enum fs_verify_result result;
	uint64_t size;
	uint64_t hash_copy;      /* XXH3-64 of the copy and of the original (MATCH, MISMATCH) */
	uint64_t hash_origin;
};
int fs_admin_verify(struct fs *fs, const char *rel, struct fs_verify_report *out);

#endif
