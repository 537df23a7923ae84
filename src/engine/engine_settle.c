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
 *     held from before (by a fill job or warm) is emptied first (engine_open.c), so the open
 *     never serves a copy that may predate a change within the same tick.
 *   - The last release drops the object's chunks if its fingerprint moved since the first
 *     open (a write through the mount, a change seen at GETATTR): those bytes came in while
 *     the new times were fresh. A written file is therefore read from the origin again.
 *   - Outside an open session (a fill job still queued or running after the last release,
 *     warm), the rule holds per fill: a job stores nothing while its object's fingerprint,
 *     sampled with the generation, has fresh times (engine_settle_fresh; it stops), and warm
 *     answers "waiting" for a file with fresh times (engine_fill.c).
 * Watched originals (fanotify) are not affected: the watcher revalidates at every change.
 */
#include "engine/engine_int.h"

#include "util/clock.h"

static int64_t settle_change_ns(int64_t mtime_ns, int64_t ctime_ns)
{
	return mtime_ns > ctime_ns ? mtime_ns : ctime_ns;
}

static bool settle_watched(struct engine *e, struct engine_inode *ei)
{
	return !e->host.changes_watched || e->host.changes_watched(e->host.arg, ei->node);
}

/* Is a change at change_ns younger than ENGINE_SETTLE_NS? (No overflow at the saturated
 * ends of clock_timespec_ns: a time at INT64_MAX is fresh, one at INT64_MIN is not.) */
static bool settle_young(struct engine *e, int64_t change_ns)
{
	return change_ns > clock_wall_ns() + e->cfg.settle_clock_offset_ns - ENGINE_SETTLE_NS;
}

bool engine_settle_begin(struct engine *e, struct engine_inode *ei, const struct stat *st)
{
	ei->unsettled = false;
	ei->settle_change_ns = INT64_MIN;
	if (settle_watched(e, ei))
		return false;
	ei->settle_size = (uint64_t)st->st_size;
	ei->settle_change_ns = settle_change_ns(clock_timespec_ns(&st->st_mtim),
	                                        clock_timespec_ns(&st->st_ctim));
	ei->unsettled = settle_young(e, ei->settle_change_ns);
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

bool engine_settle_fresh(struct engine *e, struct engine_inode *ei, const struct cache_fingerprint *fp)
{
	return !settle_watched(e, ei) && settle_young(e, settle_change_ns(fp->mtime_ns, fp->ctime_ns));
}
