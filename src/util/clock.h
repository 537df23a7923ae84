/* clock: the monotonic clock in nanoseconds, for latencies and deadlines (never wall time).
 * Shared by every layer, so that none keeps its own copy. No errors: CLOCK_MONOTONIC exists.
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

#endif
