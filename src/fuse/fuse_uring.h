/* fuse_uring: the FUSE-over-io_uring transport (KERNEL-FUSE.md §1.5), used by fuse_session.
 * The kernel keeps one request queue per possible CPU and puts a request on the queue of the
 * CPU that issued it. For every queue this module runs `per_queue` threads pinned to that CPU;
 * each thread owns a small io_uring (128-byte SQEs) and one ring entry (a 288-byte header
 * buffer and a payload buffer), so a handler that blocks stalls only its own entry.
 *
 * Lifecycle (all calls from one thread, the session's):
 *   fuse_uring_create  before the INIT reply: threads pinned, rings and buffers ready, nothing
 *                      registered yet; a failure here means "do not advertise io_uring";
 *   fuse_uring_start   right after the INIT reply: every thread REGISTERs its entry (retrying
 *                      -EAGAIN/-EINTR) and reports; returns 0 when every queue has a
 *                      registered entry (the kernel's condition for using the ring). Else it
 *                      makes the kernel fall back to /dev/fuse (a REGISTER the kernel must
 *                      reject) so that requests do not hang, and returns the first error;
 *   (serving)          threads call cfg.handler for each request, then COMMIT_AND_FETCH;
 *   fuse_uring_wait    until every thread ended (the kernel completes parked commands with
 *                      -ENOTCONN at unmount or abort);
 *   fuse_uring_free    stops threads still running (SIGUSR1 + flag: the caller installs a
 *                      SIGUSR1 handler without SA_RESTART, as fuse_session does), closes
 *                      the rings, frees. Called while the connection still lives, the kernel
 *                      cancels the parked commands when the rings close.
 *   Small replies are committed with the thread in SCHED_IDLE, unless the CPU was found
 *   contended (the top of fuse_uring.c says why and how).
 * Memory: per thread one payload buffer and one scratch buffer of payload_size (+ 4 KiB).
 * Errors: 0 or -errno.
 */
#ifndef CACHEMAX_FUSE_URING_H
#define CACHEMAX_FUSE_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct fuse_uring;
struct fuse_uring_entry;

/* Called on a ring thread for each request. `in` holds the request as read(2) on /dev/fuse
 * would return it (fuse_in_header, arguments), `len` bytes; `scratch` is a buffer of the
 * configured payload size for reply data. The handler answers with fuse_uring_reply() at most
 * once before it returns; without an answer the request is answered EIO. */
typedef void (*fuse_uring_handler_fn)(void *arg, struct fuse_uring_entry *ent, const void *in,
                                      size_t len, void *scratch);

struct fuse_uring_config {
	int dev_fd;                 /* the session's /dev/fuse fd */
	unsigned per_queue;         /* threads (= entries) per CPU queue, >= 1 */
	size_t payload_size;        /* >= max(8192, max_write, max_pages * 4096) */
	fuse_uring_handler_fn handler;
	void *arg;
};

/* Number of kernel queues: the possible CPUs (/sys/devices/system/cpu/possible). */
unsigned fuse_uring_queue_count(void);

int fuse_uring_create(const struct fuse_uring_config *cfg, struct fuse_uring **out);
int fuse_uring_start(struct fuse_uring *u);

/* Store the reply of the entry's current request: fuse_out_header {len, -error, unique} into
 * the header buffer, args concatenated into the payload (args may point into scratch). When
 * they do not fit the payload buffer the reply becomes EIO and -EMSGSIZE is returned. The
 * reply is committed when the handler returns. */
int fuse_uring_reply(struct fuse_uring_entry *ent, int error, uint64_t unique,
                     const struct iovec *args, int nargs);

void fuse_uring_wait(struct fuse_uring *u);
void fuse_uring_free(struct fuse_uring *u);

/* Requests served through the rings so far. */
uint64_t fuse_uring_requests(const struct fuse_uring *u);
/* Commits made in SCHED_IDLE, and times a thread stopped yielding for a while because its
 * window was long (the CPU was contended). */
uint64_t fuse_uring_yields(const struct fuse_uring *u);
uint64_t fuse_uring_yield_backoffs(const struct fuse_uring *u);
/* Threads (entries) in total. */
unsigned fuse_uring_thread_count(const struct fuse_uring *u);

#endif
