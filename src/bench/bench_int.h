/* bench_int: private to src/bench/ — the measurement loops (bench_io.c) and the progress line
 * (bench_report.c) that the orchestration (bench.c) drives. Errors: 0 or -errno. */
#ifndef CACHEMAX_BENCH_INT_H
#define CACHEMAX_BENCH_INT_H

#include "bench/bench.h"

#define BENCH_ALIGN 4096u          /* O_DIRECT buffer and offset alignment */
#define BENCH_FILL_BLOCK (1u << 20)

/* Where the run is, for the progress line. */
struct bench_progress {
	bool enabled;
	const char *target;        /* "origin", ... */
	const char *step;          /* test name or "preparing" */
	unsigned tests_left;       /* timed tests after the current one */
	double runtime;
	double test_end;           /* monotonic seconds when the current test ends (0: untimed) */
	double last_draw;
};

double bench_now(void);
/* Set by bench_cancel(); every loop checks it. */
bool bench_cancelled(void);

/* Write size bytes of incompressible data at offset 0 (buf: BENCH_FILL_BLOCK, aligned), then
 * fdatasync. */
int bench_io_fill(int fd, uint64_t size, void *buf, struct bench_progress *p);
/* Read the whole file once (warm-up through the mount). */
int bench_io_read_all(int fd, uint64_t size, void *buf, struct bench_progress *p);
/* One timed test: runtime seconds of requests, at least one. A write test ends with fdatasync
 * inside the timed window (buffered writes must reach the device to count). */
int bench_io_run(int fd, const struct bench_test *t, uint64_t file_size, double runtime,
                 struct bench_measure *m, struct bench_progress *p);
/* 0 if io_uring can be set up here, else -errno (ENOSYS, EPERM under a seccomp filter, ...). */
int bench_uring_probe(void);

/* Redraw the progress line (at most every 0.2 s unless force); bench_progress_clear erases it. */
void bench_progress_draw(struct bench_progress *p, bool force);
void bench_progress_clear(struct bench_progress *p);

#endif
