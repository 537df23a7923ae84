/* sys_uring: a minimal io_uring over the syscall seam (sys_io_uring_setup/enter), no liburing:
 * one ring mapped as the kernel describes it in io_uring_params, SQEs of 64 bytes or, with
 * IORING_SETUP_SQE128, 128 bytes. Used by one thread at a time (the FUSE ring threads, the
 * benchmark's queue-depth loop).
 *
 * Contract:
 *   - sys_uring_sqe() hands out the next SQE, zeroed; sys_uring_push() publishes it. The caller
 *     keeps at most `entries` SQEs unsubmitted;
 *   - sys_uring_enter() submits `submit` SQEs, runs pending completion work (GETEVENTS, which
 *     IORING_SETUP_DEFER_TASKRUN needs) and waits for `wait` completions;
 *   - sys_uring_peek() copies the oldest completion, sys_uring_advance() consumes it.
 * Errors: 0 (or a count) or -errno.
 */
#ifndef CACHEMAX_SYS_URING_H
#define CACHEMAX_SYS_URING_H

#include <linux/io_uring.h>
#include <stdbool.h>
#include <stddef.h>

struct sys_uring {
	int fd;                       /* -1 when not set up */
	unsigned sqe_size;            /* 64 or 128 */
	void *sq_map, *cq_map;
	size_t sq_map_size, cq_map_size;  /* cq_map_size 0: one mapping for both */
	char *sqes;
	size_t sqes_size;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
};

/* A ring of `entries` SQEs created with setup `flags`; if the kernel refuses them (EINVAL) and
 * `fallback` differs, with `fallback` (flags older kernels lack). */
int sys_uring_setup(struct sys_uring *r, unsigned entries, unsigned flags, unsigned fallback);
/* Unmaps and closes; nothing when r->fd < 0. */
void sys_uring_release(struct sys_uring *r);

struct io_uring_sqe *sys_uring_sqe(struct sys_uring *r);
void sys_uring_push(struct sys_uring *r);
unsigned sys_uring_unsubmitted(const struct sys_uring *r);
int sys_uring_enter(struct sys_uring *r, unsigned submit, unsigned wait);
bool sys_uring_peek(const struct sys_uring *r, struct io_uring_cqe *out);
void sys_uring_advance(struct sys_uring *r);

#endif
