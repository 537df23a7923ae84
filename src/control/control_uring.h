/* control_uring: the fuse module's parameter enable_uring is one setting for the whole
 * machine, so who turned it on is recorded for the whole machine, not in a run directory:
 * CONTROL_URING_RECORD holds "previous=N" and "holders=PID ..." (the daemons that rely on the
 * value we set), changed only under an flock of the record. A daemon started with --io-uring
 * that finds the parameter off turns it on and records the previous value; a daemon that finds
 * it on because of such a record joins as a holder (its rings need it to stay on); a value an
 * administrator set is never recorded and never changed. When the last holder lets go, or is
 * found dead by anyone (the watchdog after a crash, `cachemax stop`, the next start), the
 * previous value is written back.
 * Tests point CACHEMAX_URING_PARAM and CACHEMAX_URING_RECORD at files of their own.
 * Errors: 0 or -errno (-ENOENT: the kernel has no such parameter).
 */
#ifndef CACHEMAX_CONTROL_URING_H
#define CACHEMAX_CONTROL_URING_H

#include <stdbool.h>
#include <sys/types.h>

#define CONTROL_URING_PARAM "/sys/module/fuse/parameters/enable_uring"
#define CONTROL_URING_RECORD "/run/cachemax-enable_uring"
#define CONTROL_URING_HOLDERS_MAX 64

/* Whether `holder` may use io_uring: *on is the parameter's value afterwards. With turn_on and
 * the parameter off, turns it on (*turned_on). `holder` is recorded whenever the value it sees
 * is one we set. */
int control_uring_acquire(pid_t holder, bool turn_on, bool *on, bool *turned_on);
/* `holder` no longer needs the value (0: only drop dead holders). Restores the previous value
 * when no live holder is left; *restored says so (may be NULL). */
int control_uring_release(pid_t holder, bool *restored);

#endif
