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

/* A time since the epoch (a file time, or the wall clock) in nanoseconds, saturated at
 * INT64_MIN / INT64_MAX beyond what 64 bits hold (before 1678, after 2262). */
static inline int64_t clock_timespec_ns(const struct timespec *ts)
{
	const int64_t sec_max = INT64_MAX / 1000000000 - 1;
	if (ts->tv_sec > sec_max)
		return INT64_MAX;
	if (ts->tv_sec < -sec_max)
		return INT64_MIN;
	return (int64_t)ts->tv_sec * 1000000000 + (int64_t)ts->tv_nsec;
}

/* The inverse: nanoseconds since the epoch (negative before it) as a timespec. */
static inline struct timespec clock_ns_timespec(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

/* Wall time (CLOCK_REALTIME) in nanoseconds since the epoch: the clock file times come from. */
static inline int64_t clock_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return clock_timespec_ns(&ts);
}

#endif
