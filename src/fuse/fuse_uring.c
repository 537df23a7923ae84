/* fuse_uring: FUSE-over-io_uring through raw io_uring syscalls (see fuse_uring.h).
 * Each thread submits one command at a time and waits for its completion in the same
 * io_uring_enter call, so a request costs one system call: COMMIT_AND_FETCH hands the reply
 * of the last request to the kernel and parks the entry for the next one. The request is
 * rebuilt in place as /dev/fuse would deliver it: the header and first argument are copied
 * into the page just before the payload buffer, which the kernel filled with the rest.
 *
 * The yielding commit. The commit wakes the requester while this thread still runs on the
 * requester's CPU (the queue is that CPU's), so the scheduler sends the requester to the other,
 * idle CPU: on a VM that costs a cross-CPU wake-up of a halted vCPU per request and turned a
 * 12 µs round trip into 32-38 µs (docs/PERFORMANCE.md). A small reply is therefore committed
 * with the thread in SCHED_IDLE: a CPU running only SCHED_IDLE tasks counts as idle, so the
 * requester is woken where it was and preempts us; back from the submit, the thread returns
 * to SCHED_OTHER (two sched_setscheduler calls, ~1.4 µs each here; a thread started in another
 * policy never yields). If another task was runnable on the CPU, the thread waited behind it in
 * SCHED_IDLE for a slice (measured: p99 3.8 ms with CPU hogs) while the next request, given to
 * this same entry, waited for it; so a window longer than URING_YIELD_SLOW_US turns yielding
 * off for URING_YIELD_BACKOFF_MS. The window also holds the requester's own run up to its next
 * request: one that computes for longer between requests backs off too, and loses nothing.
 */
#include "fuse/fuse_uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuse/fuse_kernel_ext.h"
#include "sys/sys.h"
#include "sys/sys_uring.h"
#include "util/clock.h"
#include "util/log.h"

#define URING_SQE_SIZE 128            /* IORING_SETUP_SQE128 */
#define URING_SQE_CMD_OFFSET 48       /* sqe->cmd: 80 bytes of command data in a 128-byte SQE */
#define URING_REQUEST_PREFIX 4096     /* room before the payload for header + first argument */
#define URING_REGISTER_TIMEOUT_MS 5000
#define URING_EAGAIN_PAUSE_US 1000
#define URING_YIELD_MAX_REPLY (64u * 1024)  /* larger replies: the wake-up cost is small */
#define URING_YIELD_SLOW_US 250         /* a window this long: the CPU is contended */
#define URING_YIELD_BACKOFF_MS 1000     /* then commit without yielding this long */

_Static_assert(sizeof(struct io_uring_sqe) == 64, "base SQE is 64 bytes");
_Static_assert(sizeof(struct cm_fuse_uring_cmd_req) <= URING_SQE_SIZE - URING_SQE_CMD_OFFSET,
               "fuse_uring_cmd_req fits the SQE command area");
_Static_assert(sizeof(struct fuse_in_header) + CM_FUSE_URING_OP_IN_OUT_SZ <= URING_REQUEST_PREFIX,
               "the request prefix holds header and first argument");

/* One io_uring, mapped as io_uring_params describes. Used by its own thread only. */
struct fuse_uring_entry {
	struct fuse_uring *u;
	unsigned qid;                 /* kernel queue = CPU the thread is pinned to */
	pthread_t thread;
	bool started, joined;         /* owned by the session thread */
	/* Owned by the entry's thread while it runs: */
	struct sys_uring ring;
	struct cm_fuse_uring_req_header *header;
	char *buffer;                 /* URING_REQUEST_PREFIX bytes, then the payload */
	char *payload;
	void *scratch;                /* fuse_req_scratch(): never the payload, which the reply
	                               * rewrites while the handler may still use its scratch */
	char *rebuilt;                /* a request whose first argument left the payload unaligned */
	struct iovec iov[2];          /* REGISTER argument: header, payload */
	bool replied;
	uint64_t yield_off_until;     /* CLOCK_MONOTONIC ns: no yielding commit before (contention);
	                               * UINT64_MAX: never (not SCHED_OTHER, or a policy call failed) */
	/* Protected by u->lock: */
	bool prepared, registered, ended;
	int error;                    /* of prepare or REGISTER, negative errno */
};

struct fuse_uring {
	struct fuse_uring_config cfg;
	unsigned queues, count;
	struct fuse_uring_entry *entries;

	pthread_mutex_t lock;         /* protects go, cancel and the entries' state flags */
	pthread_cond_t cond;
	bool go;                      /* fuse_uring_start: register */
	bool cancel;                  /* fuse_uring_free before start: just end */

	atomic_bool stopping;         /* fuse_uring_free: leave the serve loop */
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t yields;      /* commits made in SCHED_IDLE */
	atomic_uint_fast64_t yield_backoffs;
};

unsigned fuse_uring_queue_count(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned max = 0, a, b;
	bool any = false;
	char sep;

	/* Format: "0-1", "0", "0-3,8-11". The kernel sizes its queues by the highest + 1. */
	if (f) {
		while (fscanf(f, "%u", &a) == 1) {
			b = a;
			if (fscanf(f, "%c", &sep) == 1 && sep == '-') {
				if (fscanf(f, "%u", &b) != 1)
					break;
				if (fscanf(f, "%c", &sep) != 1)
					sep = '\n';
			}
			if (b > max || !any)
				max = b;
			any = true;
			if (sep != ',')
				break;
		}
		fclose(f);
	}
	if (any)
		return max + 1;
	long n = sysconf(_SC_NPROCESSORS_CONF);
	return n > 0 ? (unsigned)n : 1;
}

uint64_t fuse_uring_requests(const struct fuse_uring *u)
{
	return u ? atomic_load_explicit(&u->requests, memory_order_relaxed) : 0;
}

unsigned fuse_uring_thread_count(const struct fuse_uring *u) { return u ? u->count : 0; }

uint64_t fuse_uring_yields(const struct fuse_uring *u)
{
	return u ? atomic_load_explicit(&u->yields, memory_order_relaxed) : 0;
}

uint64_t fuse_uring_yield_backoffs(const struct fuse_uring *u)
{
	return u ? atomic_load_explicit(&u->yield_backoffs, memory_order_relaxed) : 0;
}

static int set_policy(pid_t tid, int policy)
{
	struct sched_param param = { .sched_priority = 0 };
	return sched_setscheduler(tid, policy, &param) < 0 ? -errno : 0;
}

/* ---- one io_uring ----------------------------------------------------------------------- */

/* One entry's ring: 128-byte SQEs; completions are processed only when its thread waits for
 * them (no task-work interruptions while it runs a handler), where the kernel has the flags. */
static int ring_setup(struct sys_uring *r)
{
	return sys_uring_setup(r, 1, IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
	                              IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SQE128);
}

/* Submit what is queued and wait for `wait` completions; 0.. or -errno. */
static int ring_enter(struct sys_uring *r, unsigned wait)
{
	return sys_uring_enter(r, sys_uring_unsubmitted(r), wait);
}

/* Queue a FUSE command (REGISTER or COMMIT_AND_FETCH) for the entry; returns its SQE. */
static struct io_uring_sqe *entry_queue_cmd(struct fuse_uring_entry *e, uint32_t cmd_op, uint64_t commit_id)
{
	struct io_uring_sqe *sqe = sys_uring_sqe(&e->ring);
	struct cm_fuse_uring_cmd_req req;

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = e->u->cfg.dev_fd;
	sqe->cmd_op = cmd_op;
	sqe->user_data = (uint64_t)(uintptr_t)e;
	if (cmd_op == CM_FUSE_IO_URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	memset(&req, 0, sizeof(req));
	req.commit_id = commit_id;
	req.qid = (uint16_t)e->qid;
	memcpy((char *)sqe + URING_SQE_CMD_OFFSET, &req, sizeof(req));
	sys_uring_push(&e->ring);
	return sqe;
}

/* ---- one entry (thread) ----------------------------------------------------------------- */

static int entry_prepare(struct fuse_uring_entry *e)
{
	size_t payload_size = e->u->cfg.payload_size;
	char name[16];
	cpu_set_t set;
	int rc;

	snprintf(name, sizeof(name), "cm-uring-q%u", e->qid);
	pthread_setname_np(pthread_self(), name);
	/* Only a SCHED_OTHER thread yields: it goes back to SCHED_OTHER after each commit. */
	e->yield_off_until = sched_getscheduler(0) == SCHED_OTHER ? 0 : UINT64_MAX;
	CPU_ZERO(&set);
	CPU_SET(e->qid, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc)  /* a possible but offline CPU: its queue still needs an entry */
		log_warn("cannot pin the io_uring thread of queue %u to its CPU: %s; it runs unpinned",
		         e->qid, strerror(rc));
	/* The ring is created here so that this thread is its single issuer. */
	rc = ring_setup(&e->ring);
	if (rc < 0) {
		log_warn("io_uring_setup for queue %u failed: %s", e->qid, strerror(-rc));
		return rc;
	}
	e->header = calloc(1, sizeof(*e->header));
	e->buffer = aligned_alloc(4096, URING_REQUEST_PREFIX + ((payload_size + 4095) & ~(size_t)4095));
	/* page-aligned, as fuse_req_scratch() promises (O_DIRECT reads land in it) */
	e->scratch = aligned_alloc(4096, (payload_size + 4095) & ~(size_t)4095);
	e->rebuilt = malloc(URING_REQUEST_PREFIX + payload_size);
	if (!e->header || !e->buffer || !e->scratch || !e->rebuilt)
		return -ENOMEM;
	e->payload = e->buffer + URING_REQUEST_PREFIX;
	e->iov[0].iov_base = e->header;
	e->iov[0].iov_len = sizeof(*e->header);
	e->iov[1].iov_base = e->payload;
	e->iov[1].iov_len = payload_size;
	return 0;
}

/* Hand the entry's request to the handler; returns its commit id. */
static uint64_t entry_handle(struct fuse_uring_entry *e)
{
	struct fuse_uring *u = e->u;
	struct cm_fuse_uring_req_header *h = e->header;
	struct fuse_in_header in;
	uint64_t commit_id = h->ring_ent_in_out.commit_id;
	uint32_t payload_sz = h->ring_ent_in_out.payload_sz;
	size_t arg_size;
	char *start;
	void *scratch;

	memcpy(&in, h->in_out, sizeof(in));
	e->replied = false;
	atomic_fetch_add_explicit(&u->requests, 1, memory_order_relaxed);
	if (in.len < sizeof(in) || payload_sz > u->cfg.payload_size ||
	    in.len - sizeof(in) < payload_sz ||
	    in.len - sizeof(in) - payload_sz > CM_FUSE_URING_OP_IN_OUT_SZ) {
		log_error("io_uring request %llu (opcode %u): inconsistent sizes (len %u, payload %u), "
		          "answering EIO", (unsigned long long)in.unique, in.opcode, in.len, payload_sz);
		fuse_uring_reply(e, EIO, in.unique, NULL, 0);
		return commit_id;
	}
	arg_size = in.len - sizeof(in) - payload_sz;
	start = e->payload - sizeof(in) - arg_size;
	if ((uintptr_t)start % 8 == 0) {
		/* In place: header and first argument just before the payload. */
		memcpy(start, &in, sizeof(in));
		memcpy(start + sizeof(in), h->op_in, arg_size);
		scratch = e->scratch;
	} else {
		/* An odd-sized first argument: rebuild the request aligned elsewhere. */
		start = e->rebuilt;
		memcpy(start, &in, sizeof(in));
		memcpy(start + sizeof(in), h->op_in, arg_size);
		memcpy(start + sizeof(in) + arg_size, e->payload, payload_sz);
		scratch = e->scratch;
	}
	u->cfg.handler(u->cfg.arg, e, start, in.len, scratch);
	if (!e->replied) {
		log_error("io_uring request %llu got no reply (bug): answering EIO",
		          (unsigned long long)in.unique);
		fuse_uring_reply(e, EIO, in.unique, NULL, 0);
	}
	return commit_id;
}

int fuse_uring_reply(struct fuse_uring_entry *e, int error, uint64_t unique,
                     const struct iovec *args, int nargs)
{
	struct fuse_out_header out;
	size_t total = 0, off = 0;
	int rc = 0;

	if (e->replied)
		return -EALREADY;
	e->replied = true;
	for (int i = 0; i < nargs && !error; i++)
		total += args[i].iov_len;
	if (!error && total > e->u->cfg.payload_size) {
		/* Never tell the kernel about more payload than it registered (KERNEL-FUSE.md §5). */
		log_error("io_uring reply to request %llu: %zu bytes exceed the payload buffer, "
		          "answering EIO", (unsigned long long)unique, total);
		error = EIO;
		rc = -EMSGSIZE;
	}
	if (error) {
		total = 0;
	} else {
		for (int i = 0; i < nargs; i++) {
			if (args[i].iov_base != e->payload + off)
				memmove(e->payload + off, args[i].iov_base, args[i].iov_len);
			off += args[i].iov_len;
		}
	}
	out.len = (uint32_t)(sizeof(out) + total);
	out.error = -error;
	out.unique = unique;
	memcpy(e->header->in_out, &out, sizeof(out));
	e->header->ring_ent_in_out.payload_sz = (uint32_t)total;
	return rc;
}

static void entry_report(struct fuse_uring_entry *e, bool registered, int error)
{
	struct fuse_uring *u = e->u;
	pthread_mutex_lock(&u->lock);
	e->registered = registered;
	if (error)
		e->error = error;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static bool stop_requested(const struct fuse_uring *u)
{
	return atomic_load_explicit(&u->stopping, memory_order_relaxed);
}

/* Submit REGISTER until the kernel takes it. 0, or -errno. A success leaves no completion:
 * the command stays parked until a request arrives. */
static int entry_register(struct fuse_uring_entry *e)
{
	struct io_uring_cqe cqe;
	unsigned waited_us = 0;
	int rc;

	entry_queue_cmd(e, CM_FUSE_IO_URING_CMD_REGISTER, 0);
	for (;;) {
		if (stop_requested(e->u))
			return -ECANCELED;
		rc = ring_enter(&e->ring, 0);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
		if (sys_uring_unsubmitted(&e->ring))
			continue;
		if (!sys_uring_peek(&e->ring, &cqe) || cqe.res == 0)
			return 0;  /* parked, or already holding a request: the serve loop takes it */
		sys_uring_advance(&e->ring);
		if (cqe.res != -EAGAIN && cqe.res != -EINTR)
			return cqe.res;
		/* Before the kernel processed the INIT reply: try again shortly. */
		if (waited_us >= URING_REGISTER_TIMEOUT_MS * 1000u)
			return -ETIMEDOUT;
		usleep(URING_EAGAIN_PAUSE_US);
		waited_us += URING_EAGAIN_PAUSE_US;
		entry_queue_cmd(e, CM_FUSE_IO_URING_CMD_REGISTER, 0);
	}
}

/* ---- the yielding commit (see the top of this file) ------------------------------------- */

/* Submit the queued COMMIT_AND_FETCH with the thread in SCHED_IDLE, unless backing off. A
 * failed submit leaves the SQE queued: the serve loop's next io_uring_enter submits it (and
 * reports an error). */
static void commit_yielding(struct fuse_uring_entry *e)
{
	struct fuse_uring *u = e->u;
	uint64_t start = clock_now_ns(), took;
	int rc;

	if (start < e->yield_off_until)
		return;
	rc = set_policy(0, SCHED_IDLE);
	if (rc < 0) {
		e->yield_off_until = UINT64_MAX;
		log_warn("io_uring queue %u: cannot enter SCHED_IDLE for the commit (%s); this thread "
		         "commits without it", e->qid, strerror(-rc));
		return;
	}
	ring_enter(&e->ring, 0);
	rc = set_policy(0, SCHED_OTHER);
	if (rc < 0) {
		log_error("io_uring queue %u: cannot leave SCHED_IDLE (%s); the thread stays in it "
		          "and stops yielding", e->qid, strerror(-rc));
		e->yield_off_until = UINT64_MAX;
		return;
	}
	atomic_fetch_add_explicit(&u->yields, 1, memory_order_relaxed);
	/* The requester preempts us at the wake-up and we run again when it waits for its next
	 * request: microseconds, unless another task took the CPU meanwhile. */
	took = clock_now_ns() - start;
	if (took > (uint64_t)URING_YIELD_SLOW_US * 1000u) {
		e->yield_off_until = start + took + (uint64_t)URING_YIELD_BACKOFF_MS * 1000000u;
		atomic_fetch_add_explicit(&u->yield_backoffs, 1, memory_order_relaxed);
	}
}

static bool connection_gone(int res)
{
	return res == -ENOTCONN || res == -ENODEV || res == -ECONNABORTED || res == -ECANCELED;
}

static void entry_serve(struct fuse_uring_entry *e)
{
	struct io_uring_cqe cqe;
	bool last_was_register = true;
	int rc = entry_register(e);

	if (rc < 0) {
		if (!connection_gone(rc))
			log_error("io_uring REGISTER of queue %u failed: %s", e->qid, strerror(-rc));
		entry_report(e, false, rc);
		return;
	}
	entry_report(e, true, 0);
	for (;;) {
		if (!sys_uring_peek(&e->ring, &cqe)) {
			rc = ring_enter(&e->ring, 1);
			if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
				log_error("io_uring_enter on queue %u failed: %s", e->qid, strerror(-rc));
				return;
			}
			if (stop_requested(e->u))
				return;
			continue;
		}
		sys_uring_advance(&e->ring);
		if (cqe.res == 0) {
			uint64_t commit_id = entry_handle(e);
			entry_queue_cmd(e, CM_FUSE_IO_URING_CMD_COMMIT_AND_FETCH, commit_id);
			last_was_register = false;
			if (e->yield_off_until != UINT64_MAX &&
			    e->header->ring_ent_in_out.payload_sz <= URING_YIELD_MAX_REPLY)
				commit_yielding(e);  /* submits; the loop then waits for the next request */
			continue;
		}
		if (connection_gone(cqe.res))
			return;  /* unmount or abort: the kernel gave the entry back */
		if (last_was_register && cqe.res != -EAGAIN && cqe.res != -EINTR) {
			log_error("io_uring REGISTER of queue %u failed: %s", e->qid, strerror(-cqe.res));
			return;
		}
		/* A commit the kernel refused (its request was gone) leaves the entry unusable:
		 * register it again so that the queue keeps its capacity. */
		if (!last_was_register)
			log_warn("io_uring command on queue %u failed: %s; registering the entry again",
			         e->qid, strerror(-cqe.res));
		else
			usleep(URING_EAGAIN_PAUSE_US);
		entry_queue_cmd(e, CM_FUSE_IO_URING_CMD_REGISTER, 0);
		last_was_register = true;
	}
}

static void *entry_main(void *arg)
{
	struct fuse_uring_entry *e = arg;
	struct fuse_uring *u = e->u;
	int rc = entry_prepare(e);
	bool go;

	pthread_mutex_lock(&u->lock);
	e->prepared = true;
	e->error = rc;
	pthread_cond_broadcast(&u->cond);
	while (!u->go && !u->cancel)
		pthread_cond_wait(&u->cond, &u->lock);
	go = u->go && !u->cancel && rc == 0;
	pthread_mutex_unlock(&u->lock);

	if (go)
		entry_serve(e);
	pthread_mutex_lock(&u->lock);
	e->ended = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* ---- the set of entries ----------------------------------------------------------------- */

int fuse_uring_create(const struct fuse_uring_config *cfg, struct fuse_uring **out)
{
	struct fuse_uring *u;
	int rc = 0;

	if (cfg->per_queue < 1 || cfg->payload_size < 8192 || !cfg->handler)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->cfg = *cfg;
	u->queues = fuse_uring_queue_count();
	u->count = u->queues * cfg->per_queue;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	u->entries = calloc(u->count, sizeof(*u->entries));
	if (!u->entries) {
		fuse_uring_free(u);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < u->count; i++)
		u->entries[i].ring.fd = -1;
	for (unsigned i = 0; i < u->count; i++) {
		struct fuse_uring_entry *e = &u->entries[i];
		e->u = u;
		e->qid = i / cfg->per_queue;
		rc = -pthread_create(&e->thread, NULL, entry_main, e);
		if (rc < 0)
			break;
		e->started = true;
	}
	/* Every started thread reports whether its ring and buffers are ready. */
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < u->count; i++) {
		struct fuse_uring_entry *e = &u->entries[i];
		while (e->started && !e->prepared)
			pthread_cond_wait(&u->cond, &u->lock);
		if (!rc && e->error)
			rc = e->error;
	}
	pthread_mutex_unlock(&u->lock);
	if (rc < 0) {
		fuse_uring_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

/* Make the kernel give up io_uring on this connection. Advertised but never ready, the ring
 * would hold every request forever; a REGISTER that fails inside registration (here: one
 * iovec instead of two) makes the kernel clear its io_uring flag and serve /dev/fuse. */
static int uring_force_fallback(struct fuse_uring *u)
{
	struct fuse_uring_entry probe;
	struct io_uring_cqe cqe;
	int rc;

	memset(&probe, 0, sizeof(probe));
	probe.u = u;
	rc = ring_setup(&probe.ring);  /* on this thread: it is the ring's single issuer */
	if (rc < 0)
		return rc;
	entry_queue_cmd(&probe, CM_FUSE_IO_URING_CMD_REGISTER, 0)->len = 1;
	do
		rc = ring_enter(&probe.ring, 1);
	while (rc == -EINTR || (rc >= 0 && !sys_uring_peek(&probe.ring, &cqe)));
	if (rc >= 0)
		rc = cqe.res == -EINVAL ? 0 : cqe.res ? cqe.res : -EPROTO;
	sys_uring_release(&probe.ring);
	return rc;
}

int fuse_uring_start(struct fuse_uring *u)
{
	struct timespec deadline;
	unsigned covered = 0, failed = 0;
	int rc = 0, wait_rc = 0, frc;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += URING_REGISTER_TIMEOUT_MS / 1000 + 1;
	pthread_mutex_lock(&u->lock);
	u->go = true;
	pthread_cond_broadcast(&u->cond);
	for (unsigned i = 0; i < u->count; i++) {
		struct fuse_uring_entry *e = &u->entries[i];
		while (!e->registered && !e->error && !e->ended && !wait_rc)
			wait_rc = pthread_cond_timedwait(&u->cond, &u->lock, &deadline);
		if (!e->registered) {
			failed++;
			if (!rc)
				rc = e->error ? e->error : wait_rc ? -ETIMEDOUT : -ENOTCONN;
		}
	}
	/* Entries are grouped by queue: count the queues with at least one registered entry. */
	for (unsigned q = 0; q < u->queues; q++)
		for (unsigned k = 0; k < u->cfg.per_queue; k++)
			if (u->entries[q * u->cfg.per_queue + k].registered) {
				covered++;
				break;
			}
	pthread_mutex_unlock(&u->lock);
	if (covered == u->queues) {
		if (failed)  /* the kernel is ready once every queue has an entry: degraded, working */
			log_warn("io_uring: %u of %u ring entries failed to register (%s); serving with "
			         "the rest", failed, u->count, strerror(-rc));
		return 0;
	}
	frc = uring_force_fallback(u);
	if (frc < 0)
		log_error("io_uring: cannot make the kernel fall back to /dev/fuse (%s): requests "
		          "may hang until the mount is aborted", strerror(-frc));
	return rc;
}

void fuse_uring_wait(struct fuse_uring *u)
{
	for (unsigned i = 0; u && i < u->count; i++) {
		struct fuse_uring_entry *e = &u->entries[i];
		if (e->started && !e->joined) {
			pthread_join(e->thread, NULL);
			e->joined = true;
		}
	}
}

void fuse_uring_free(struct fuse_uring *u)
{
	if (!u)
		return;
	atomic_store(&u->stopping, true);
	pthread_mutex_lock(&u->lock);
	u->cancel = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	/* Threads still parked in io_uring_enter (the connection is alive) leave on EINTR. */
	for (;;) {
		bool running = false;
		pthread_mutex_lock(&u->lock);
		for (unsigned i = 0; u->entries && i < u->count; i++)
			if (u->entries[i].started && !u->entries[i].ended) {
				running = true;
				pthread_kill(u->entries[i].thread, SIGUSR1);
			}
		pthread_mutex_unlock(&u->lock);
		if (!running)
			break;
		usleep(10000);
	}
	fuse_uring_wait(u);
	for (unsigned i = 0; u->entries && i < u->count; i++) {
		struct fuse_uring_entry *e = &u->entries[i];
		/* Closing the ring cancels commands still parked, before their buffers go. */
		sys_uring_release(&e->ring);
		free(e->header);
		free(e->buffer);
		free(e->scratch);
		free(e->rebuilt);
	}
	free(u->entries);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u);
}
