/* bench_io: the timed loops. Queue depth 1 uses pread/pwrite through the sys seam (so a test can
 * fail the Nth write); queue depth 32 keeps 32 requests in flight with a minimal io_uring driven
 * through the sys seam (sys_uring.h, no liburing). Offsets are
 * block-aligned, random ones from a xorshift generator, so O_DIRECT works on every target. */
#include "bench/bench_int.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sys/sys.h"
#include "sys/sys_uring.h"

#define BENCH_QUEUE_MAX 32u

static volatile sig_atomic_t bench_cancel_flag;

void bench_cancel(void)
{
	bench_cancel_flag = 1;
}

bool bench_cancelled(void)
{
	return bench_cancel_flag != 0;
}

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t seed_from_time(void)
{
	uint64_t s = (uint64_t)(bench_now() * 1e9) ^ ((uint64_t)getpid() << 32);
	return s ? s : 0x9e3779b97f4a7c15ull;
}

/* The offset of the next request: sequential wraps around, random picks a whole block. */
static off_t next_offset(const struct bench_test *t, uint64_t file_size, uint64_t *pos, uint64_t *seed)
{
	uint64_t blocks = file_size / t->block, off;
	if (t->random)
		return (off_t)((xorshift64(seed) % blocks) * t->block);
	if (*pos + t->block > file_size)
		*pos = 0;
	off = *pos;
	*pos += t->block;
	return (off_t)off;
}

int bench_io_fill(int fd, uint64_t size, void *buf, struct bench_progress *p)
{
	uint64_t seed = seed_from_time(), *words = buf;
	ssize_t n;

	for (uint64_t off = 0; off < size; off += BENCH_FILL_BLOCK) {
		if (bench_cancelled())
			return -EINTR;
		for (size_t i = 0; i < BENCH_FILL_BLOCK / sizeof(*words); i++)
			words[i] = xorshift64(&seed);
		n = sys_pwrite(fd, buf, BENCH_FILL_BLOCK, (off_t)off);
		if (n < 0)
			return (int)n;
		if (n != BENCH_FILL_BLOCK)
			return -EIO;
		bench_progress_draw(p, false);
	}
	return sys_fdatasync(fd);
}

int bench_io_read_all(int fd, uint64_t size, void *buf, struct bench_progress *p)
{
	ssize_t n;

	for (uint64_t off = 0; off < size; off += BENCH_FILL_BLOCK) {
		if (bench_cancelled())
			return -EINTR;
		n = sys_pread(fd, buf, BENCH_FILL_BLOCK, (off_t)off);
		if (n < 0)
			return (int)n;
		if (n != BENCH_FILL_BLOCK)
			return -EIO;
		bench_progress_draw(p, false);
	}
	return 0;
}

static int run_queue_depth_1(int fd, const struct bench_test *t, uint64_t file_size, double runtime,
                             struct bench_measure *m, struct bench_progress *p)
{
	uint64_t seed = seed_from_time(), pos = 0, ops = 0;
	double start = bench_now(), now = start;
	void *buf;
	int rc = 0;

	if (posix_memalign(&buf, BENCH_ALIGN, t->block))
		return -ENOMEM;
	memset(buf, 0xa5, t->block);
	p->test_end = start + runtime;
	do {
		off_t off = next_offset(t, file_size, &pos, &seed);
		ssize_t n = t->write ? sys_pwrite(fd, buf, t->block, off) : sys_pread(fd, buf, t->block, off);
		if (n < 0) {
			rc = (int)n;
			goto out_free;
		}
		if ((size_t)n != t->block) {
			rc = -EIO;  /* a short transfer inside the file: the target misbehaves */
			goto out_free;
		}
		ops++;
		if (bench_cancelled()) {
			rc = -EINTR;
			goto out_free;
		}
		now = bench_now();
		bench_progress_draw(p, false);
	} while (now - start < runtime);
	if (t->write) {
		rc = sys_fdatasync(fd);
		if (rc < 0)
			goto out_free;
		now = bench_now();
	}
	m->ops = ops;
	m->bytes = ops * t->block;
	m->seconds = now - start;
	m->done = true;
out_free:
	free(buf);
	return rc;
}

/* Queue one request (the caller keeps at most the ring's entries unsubmitted). */
static void uring_queue(struct sys_uring *u, int fd, bool write, void *buf, unsigned len, off_t off,
                        uint64_t tag)
{
	struct io_uring_sqe *sqe = sys_uring_sqe(u);

	sqe->opcode = write ? IORING_OP_WRITE : IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = len;
	sqe->off = (uint64_t)off;
	sqe->user_data = tag;
	sys_uring_push(u);
}

int bench_uring_probe(void)
{
	struct sys_uring u;
	int rc = sys_uring_setup(&u, 1, 0, 0);
	if (rc < 0)
		return rc;
	sys_uring_release(&u);
	return 0;
}

/* Keeps t->depth requests in flight until runtime is up, then drains: no buffer is freed while
 * the kernel may still use it, also when cancelled or failing. */
static int run_queue_depth_n(int fd, const struct bench_test *t, uint64_t file_size, double runtime,
                             struct bench_measure *m, struct bench_progress *p)
{
	unsigned depth = t->depth > BENCH_QUEUE_MAX ? BENCH_QUEUE_MAX : t->depth;
	uint64_t seed = seed_from_time(), pos = 0, ops = 0;
	unsigned inflight = 0, unsubmitted = 0;
	double start, now;
	struct sys_uring u;
	char *bufs;
	int rc, err = 0;

	rc = sys_uring_setup(&u, depth, 0, 0);
	if (rc < 0)
		return rc;
	if (posix_memalign((void **)&bufs, BENCH_ALIGN, (size_t)depth * t->block)) {
		sys_uring_release(&u);
		return -ENOMEM;
	}
	memset(bufs, 0x5a, (size_t)depth * t->block);
	start = now = bench_now();
	p->test_end = start + runtime;
	for (unsigned i = 0; i < depth; i++) {
		uring_queue(&u, fd, t->write, bufs + (size_t)i * t->block, t->block,
		            next_offset(t, file_size, &pos, &seed), i);
		unsubmitted++;
	}
	while (inflight + unsubmitted > 0) {
		struct io_uring_cqe cqe;
		bool more;

		rc = sys_uring_enter(&u, unsubmitted, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			if (!err)
				err = rc;
			if (!inflight)
				break;  /* nothing of ours is in the kernel: nothing to drain */
			unsubmitted = 0;
			continue;
		}
		if (rc > 0) {
			inflight += (unsigned)rc;
			unsubmitted -= (unsigned)rc;
		}
		if (bench_cancelled() && !err)
			err = -EINTR;
		more = !err && now - start < runtime;
		while (sys_uring_peek(&u, &cqe)) {
			unsigned slot = (unsigned)cqe.user_data;
			sys_uring_advance(&u);
			inflight--;
			if (cqe.res < 0 && !err)
				err = cqe.res;
			else if (cqe.res >= 0 && (unsigned)cqe.res != t->block && !err)
				err = -EIO;
			else if (cqe.res > 0)
				ops++;
			if (more && !err) {
				uring_queue(&u, fd, t->write, bufs + (size_t)slot * t->block, t->block,
				            next_offset(t, file_size, &pos, &seed), slot);
				unsubmitted++;
			}
		}
		now = bench_now();
		bench_progress_draw(p, false);
	}
	if (!err && t->write) {
		err = sys_fdatasync(fd);
		now = bench_now();
	}
	free(bufs);
	sys_uring_release(&u);
	if (err)
		return err;
	m->ops = ops;
	m->bytes = ops * t->block;
	m->seconds = now - start;
	m->done = true;
	return 0;
}

int bench_io_run(int fd, const struct bench_test *t, uint64_t file_size, double runtime,
                 struct bench_measure *m, struct bench_progress *p)
{
	if (file_size < t->block)
		return -EINVAL;
	if (t->depth > 1)
		return run_queue_depth_n(fd, t, file_size, runtime, m, p);
	return run_queue_depth_1(fd, t, file_size, runtime, m, p);
}
