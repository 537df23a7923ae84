/* clock: the monotonic clock in nanoseconds, for latencies and deadlines; and wall time, only
 * to compare with file times (clock_wall_ns). Shared by every layer, so that none keeps its own
 * copy. No errors: both clocks exist.
 */
#ifndef CACHEMAX_CLOCK_H
#define CACHEMAX_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wall time (CLOCK_REALTIME) in nanoseconds since the epoch: the clock file times come from. */
static inline int64_t clock_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

#endif
