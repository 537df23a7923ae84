/* engine_settle: close-to-open for origin files whose changes no watcher reports (a network
 * original: sshfs, NFS, SMB; host callback changes_watched). There an open checks the cache
 * object against the origin's fingerprint (size, times, inode), and a change that moves none
 * of them goes unseen: file times are coarse (SFTP carries whole seconds), so a file changed
 * twice within one tick, with the same size, looks unchanged -- also across a restart, since
 * objects persist. The rule (the "racily clean" entries of git's index, in the cache's terms):
 * the bytes an object keeps past the last release were all read or written while the origin's
 * times were older than ENGINE_SETTLE_NS, so a later change of the origin gets later times
 * and a fingerprint that differs.
 *   - The first open of a file changed within ENGINE_SETTLE_NS opens no cache object: it is
 *     served from the origin (passthrough, or the daemon) and caches nothing. An object still
 *     held from before (a fill after the last release) is used as usual, then dropped.
 *   - The last release drops the object's chunks if its fingerprint moved since the first
 *     open (a write through the mount, a change seen at GETATTR): those bytes came in while
 *     the new times were fresh. A written file is therefore read from the origin again.
 * Bound: a fill job queued before a last release that drops the chunks and reading after it
 * stores current bytes under the current fingerprint; a second same-size change within the
 * same tick after that read is not seen (a narrow window, noted in docs/ARCHITECTURE.md).
 * Watched originals (fanotify) are not affected: the watcher revalidates at every change.
 */
#include "engine/engine_int.h"

#include "util/clock.h"

static int64_t settle_change_ns(int64_t mtime_ns, int64_t ctime_ns)
{
	return mtime_ns > ctime_ns ? mtime_ns : ctime_ns;
}

bool engine_settle_begin(struct engine *e, struct engine_inode *ei, const struct stat *st)
{
	ei->unsettled = false;
	ei->settle_change_ns = INT64_MIN;
	if (!e->host.changes_watched || e->host.changes_watched(e->host.arg, ei->node))
		return false;
	ei->settle_size = (uint64_t)st->st_size;
	ei->settle_change_ns = settle_change_ns(
		(int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
		(int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec);
	ei->unsettled = clock_wall_ns() < ei->settle_change_ns + ENGINE_SETTLE_NS;
	return ei->unsettled;
}

void engine_settle_end(struct engine_inode *ei)
{
	struct cache_object_info info;

	if (ei->settle_change_ns == INT64_MIN || !ei->obj || ei->unsettled)
		return;
	cache_object_info(ei->obj, &info);
	if (info.fingerprint.size != ei->settle_size ||
	    settle_change_ns(info.fingerprint.mtime_ns, info.fingerprint.ctime_ns) != ei->settle_change_ns)
		ei->unsettled = true;
}
