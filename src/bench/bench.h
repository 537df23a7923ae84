/* bench: the built-in benchmark (issue #4). One scratch file is measured with CrystalDiskMark's
 * tests (sequential 1 MiB and random 4 KiB, queue depth 1, and 32 where io_uring works) on four
 * targets: the original directory, the cache device, and the accelerated path cold and warm.
 *
 * Contract
 * - Leaves everything as it found it: every scratch file is removed, the scratch file's cache
 *   object evicted, a cache directory or store the run created removed; a directory that was
 *   not accelerated is accelerated for the run (our own `start`, in its own process group) and
 *   stopped at the end; one that was stays accelerated. This holds on failure and after
 *   bench_cancel() as well (not after SIGKILL).
 * - The original is never reached by a path under the mount: before the run, DIR itself is
 *   opened (O_PATH) while it is not covered; when it is, through /proc/DAEMON/fd/ORIGIN_FD.
 * - Scratch-file I/O goes through the sys seam (sys.h), so CACHEMAX_FAULT in this process can
 *   fail it midway; `start` and `stop` run without CACHEMAX_FAULT in their environment.
 * - Output: nothing is printed by bench_run() except progress lines on stderr when asked for;
 *   the result goes to bench_print_table() or bench_print_json() (keys: docs/BENCH.md).
 * Errors: bench_run() returns 0 or -errno and writes a message (what failed, what to do) into
 * err: -ENOTDIR not a directory, -ENOSPC too little free space, -EINVAL bad paths, -EPERM not
 * root, -EINTR cancelled, others from the failing call. The result is filled in only on 0.
 */
#ifndef CACHEMAX_BENCH_H
#define CACHEMAX_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "control/control.h"

#define BENCH_SIZE_DEFAULT (256ull << 20)
#define BENCH_SIZE_MIN (1ull << 20)
#define BENCH_RUNTIME_DEFAULT 5.0
#define BENCH_RUNTIME_MIN 0.05
#define BENCH_RUNTIME_MAX 3600.0
/* DIR's and CACHEDIR's file systems must each have 2 × size + this free (the cache device holds
 * the scratch file, later the scratch file's cache copy; the margin keeps them from filling up). */
#define BENCH_FREE_MARGIN (16ull << 20)
#define BENCH_NOTES_MAX 8
#define BENCH_NOTE_MAX 256

enum bench_target { BENCH_ORIGIN, BENCH_CACHE_DEVICE, BENCH_COLD, BENCH_WARM, BENCH_TARGET_COUNT };

enum bench_test_id {
	BENCH_SEQ1M_Q1_READ, BENCH_SEQ1M_Q1_WRITE, BENCH_RND4K_Q1_READ, BENCH_RND4K_Q1_WRITE,
	BENCH_RND4K_Q32_READ, BENCH_RND4K_Q32_WRITE, BENCH_TEST_COUNT
};

struct bench_test {
	const char *name;     /* "SEQ1M Q1T1 read" */
	const char *key;      /* "seq1m_q1t1_read" */
	uint32_t block;       /* bytes per request */
	unsigned depth;       /* requests in flight */
	bool random;
	bool write;
};
extern const struct bench_test bench_tests[BENCH_TEST_COUNT];
extern const char *const bench_target_keys[BENCH_TARGET_COUNT];   /* "origin", ... */
extern const char *const bench_target_names[BENCH_TARGET_COUNT];  /* "origin", ... */

struct bench_options {
	char dir[CONTROL_PATH_MAX];    /* resolved absolute path of the directory */
	char cache[CONTROL_PATH_MAX];  /* resolved absolute path of the cache directory */
	uint64_t size;                 /* scratch file size (rounded down to whole MiB) */
	double runtime;                /* seconds per test */
	bool direct;                   /* O_DIRECT (default) or buffered */
	bool progress;                 /* progress lines on stderr */
};

struct bench_measure {
	bool done;
	uint64_t ops, bytes;
	double seconds;
};

/* Differences of the daemon's counters (docs/STATS.md) over the accelerated phases. */
struct bench_stats {
	bool valid;
	uint64_t read_ops_cache, read_bytes_cache, read_ops_origin, read_bytes_origin;
	uint64_t passthrough_opens_cache, passthrough_bytes_cache;
	uint64_t passthrough_opens_origin, passthrough_bytes_origin;
	uint64_t fills, fill_bytes;
};

struct bench_result {
	uint64_t file_bytes;
	bool was_accelerated;          /* DIR was accelerated before the run (and still is) */
	char origin_path[CONTROL_PATH_MAX];  /* how the original was reached */
	bool page_cache_dropped;       /* before every origin and cold test */
	bool warm_complete;            /* the file was fully cached before the warm tests */
	bool queue_depth_32;           /* io_uring worked: the Q32 rows were measured */
	struct bench_measure m[BENCH_TEST_COUNT][BENCH_TARGET_COUNT];
	struct bench_stats stats;
	unsigned note_count;
	char notes[BENCH_NOTES_MAX][BENCH_NOTE_MAX];
};

int bench_run(const struct bench_options *o, struct bench_result *r, char *err, size_t errsize);
/* Ask a running bench_run() to stop, clean up and return -EINTR. Async-signal-safe. */
void bench_cancel(void);

/* MB/s (10^6 bytes, as CrystalDiskMark) and IOPS of a measurement; 0 if not done. */
double bench_measure_mb_per_s(const struct bench_measure *m);
double bench_measure_iops(const struct bench_measure *m);

void bench_print_table(FILE *f, const struct bench_options *o, const struct bench_result *r);
void bench_print_json(FILE *f, const struct bench_options *o, const struct bench_result *r);

#endif
