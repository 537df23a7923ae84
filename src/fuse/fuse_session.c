/* fuse_session: /dev/fuse transport, mount, INIT, worker threads and request dispatch.
 * Thread model: worker i blocks in read() on its own fd (the master for i = 0, clones for the
 * rest) and answers each request on that same fd, as the kernel requires. INIT is answered by
 * worker 0; with FUSE_DEV_IOC_SYNC_INIT it arrives inside mount(2), so worker 0 is started first.
 * With io_uring, worker 0 also creates the rings before it answers INIT and registers them
 * right after; ring threads then decode and dispatch like the workers, through the same code.
 */
#include "fuse/fuse_session.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuse/fuse_opcode.h"
#include "fuse/fuse_uring.h"
#include "sys/sys.h"
#include "util/log.h"

#define READ_BUFFER_SIZE (FUSE_SESSION_MAX_WRITE + 4096)
#define INIT_TIMEOUT_SECONDS 10

struct fuse_channel {
	struct fuse_session *se;
	int fd;
	pthread_t thread;
	bool started;
	void *in_buf;      /* one request */
	void *scratch;     /* reply data of the request being served */
};

struct fuse_session {
	const struct fuse_ops *ops;
	void *fs;
	struct fuse_session_config cfg;
	unsigned channel_count;
	struct fuse_channel channels[FUSE_SESSION_MAX_THREADS];

	pthread_mutex_t lock;            /* protects the fields below */
	pthread_cond_t cond;
	bool initialized;                /* INIT answered, ops->init called (atomic: read unlocked) */
	int init_error;                  /* negative errno if INIT failed */
	unsigned running;                /* workers still in their loop */
	struct fuse_proto_init_result init;
	bool ready;                      /* INIT answered and the transport settled */
	char transport_why[160];         /* why io_uring was asked for but is not used */

	struct fuse_uring *uring;        /* set by worker 0 during INIT, then read-only */
	atomic_bool uring_active;        /* every CPU queue has a registered ring entry */
	atomic_bool stopping;            /* set when the session shuts down */
	atomic_uint_fast64_t requests;   /* requests read from the device */
};

struct fuse_req {
	struct fuse_session *se;
	struct fuse_channel *ch;           /* /dev/fuse request, or NULL */
	struct fuse_uring_entry *ring;     /* io_uring request, or NULL */
	void *scratch;                     /* fuse_req_scratch(): the serving thread's */
	uint32_t opcode_raw;
	uint64_t unique;
	struct fuse_req_ctx ctx;
	bool replied;
};

void *fuse_req_fs(const struct fuse_req *r) { return r->se->fs; }
const struct fuse_req_ctx *fuse_req_ctx(const struct fuse_req *r) { return &r->ctx; }
struct fuse_session *fuse_req_session(const struct fuse_req *r) { return r->se; }
void *fuse_req_scratch(struct fuse_req *r) { return r->scratch; }
const struct fuse_proto_init_result *fuse_session_init_result(const struct fuse_session *se)
{
	return &se->init;
}

uint64_t fuse_session_requests(const struct fuse_session *se)
{
	return atomic_load_explicit(&se->requests, memory_order_relaxed);
}

uint64_t fuse_session_uring_requests(const struct fuse_session *se)
{
	return fuse_uring_requests(se->uring);
}

void fuse_session_uring_yields(const struct fuse_session *se, uint64_t *yields, uint64_t *backoffs)
{
	*yields = fuse_uring_yields(se->uring);
	*backoffs = fuse_uring_yield_backoffs(se->uring);
}

const char *fuse_session_transport(const struct fuse_session *se)
{
	return atomic_load(&se->uring_active) ? "io_uring" : "dev_fuse";
}

const char *fuse_session_transport_why(const struct fuse_session *se)
{
	return se->transport_why;
}

/* ---- replies ---------------------------------------------------------------------------- */

static int send_reply_iov(struct fuse_req *r, int err, const struct iovec *args, int nargs)
{
	struct iovec iov[4];
	struct fuse_out_header out;
	size_t total = sizeof(out);
	ssize_t n;

	if (r->replied) {
		log_error("request %llu: second reply dropped (bug)", (unsigned long long)r->unique);
		return -EALREADY;
	}
	r->replied = true;
	if (err < 0 || err >= 512) {
		log_error("request %llu: errno %d out of range, sending EIO", (unsigned long long)r->unique, err);
		err = EIO;
	}
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	for (int i = 0; i < nargs && !err; i++) {
		iov[1 + i] = args[i];
		total += args[i].iov_len;
	}
	if (r->ring)  /* committed when the ring thread's handler returns */
		return fuse_uring_reply(r->ring, err, r->unique, args, err ? 0 : nargs);
	out.len = (uint32_t)total;
	out.error = -err;
	out.unique = r->unique;
	n = writev(r->ch->fd, iov, err ? 1 : 1 + nargs);
	if (n < 0) {
		int e = errno;
		if (e == ENOENT)  /* interrupted or aborted meanwhile: nobody waits for it */
			return 0;
		log_warn("reply to request %llu failed: %s", (unsigned long long)r->unique, strerror(e));
		return -e;
	}
	return 0;
}

static int send_reply(struct fuse_req *r, const void *arg, size_t size)
{
	struct iovec iov = { (void *)arg, size };
	return send_reply_iov(r, 0, &iov, size ? 1 : 0);
}

int fuse_reply_err(struct fuse_req *r, int err) { return send_reply_iov(r, err, NULL, 0); }
int fuse_reply_entry(struct fuse_req *r, const struct fuse_entry_out *e) { return send_reply(r, e, sizeof(*e)); }
int fuse_reply_attr(struct fuse_req *r, const struct fuse_attr_out *a) { return send_reply(r, a, sizeof(*a)); }
int fuse_reply_open(struct fuse_req *r, const struct cm_fuse_open_out *o) { return send_reply(r, o, sizeof(*o)); }
int fuse_reply_data(struct fuse_req *r, const void *data, size_t size) { return send_reply(r, data, size); }

int fuse_reply_create(struct fuse_req *r, const struct fuse_entry_out *e, const struct cm_fuse_open_out *o)
{
	struct iovec iov[2] = { { (void *)e, sizeof(*e) }, { (void *)o, sizeof(*o) } };
	return send_reply_iov(r, 0, iov, 2);
}

int fuse_reply_write(struct fuse_req *r, uint32_t count)
{
	struct fuse_write_out o = { .size = count };
	return send_reply(r, &o, sizeof(o));
}

int fuse_reply_statfs(struct fuse_req *r, const struct statvfs *st)
{
	struct fuse_statfs_out o;
	memset(&o, 0, sizeof(o));
	o.st.blocks = st->f_blocks;
	o.st.bfree = st->f_bfree;
	o.st.bavail = st->f_bavail;
	o.st.files = st->f_files;
	o.st.ffree = st->f_ffree;
	o.st.bsize = (uint32_t)st->f_bsize;
	o.st.namelen = (uint32_t)st->f_namemax;
	o.st.frsize = (uint32_t)st->f_frsize;
	return send_reply(r, &o, sizeof(o));
}

int fuse_reply_xattr_size(struct fuse_req *r, uint32_t size)
{
	struct fuse_getxattr_out o = { .size = size };
	return send_reply(r, &o, sizeof(o));
}

int fuse_reply_lseek(struct fuse_req *r, uint64_t offset)
{
	struct fuse_lseek_out o = { .offset = offset };
	return send_reply(r, &o, sizeof(o));
}

int fuse_reply_copy_range(struct fuse_req *r, uint64_t count)
{
	struct cm_fuse_copy_file_range_out o = { .bytes_copied = count };
	return send_reply(r, &o, sizeof(o));
}

/* ---- notifications ---------------------------------------------------------------------- */

static int send_notify(struct fuse_session *se, int code, const struct iovec *args, int nargs)
{
	struct iovec iov[4];
	struct fuse_out_header out;
	size_t total = sizeof(out);

	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	for (int i = 0; i < nargs; i++) {
		iov[1 + i] = args[i];
		total += args[i].iov_len;
	}
	out.len = (uint32_t)total;
	out.error = code;
	out.unique = 0;
	if (writev(se->channels[0].fd, iov, 1 + nargs) < 0)
		return -errno;
	return 0;
}

int fuse_session_notify_inval_inode(struct fuse_session *se, uint64_t ino, int64_t off, int64_t len)
{
	struct fuse_notify_inval_inode_out o = { .ino = ino, .off = off, .len = len };
	struct iovec iov = { &o, sizeof(o) };
	return send_notify(se, FUSE_NOTIFY_INVAL_INODE, &iov, 1);
}

int fuse_session_notify_inval_entry(struct fuse_session *se, uint64_t parent, const char *name,
                                    uint32_t flags)
{
	struct fuse_notify_inval_entry_out o = { .parent = parent, .namelen = (uint32_t)strlen(name) };
	struct iovec iov[2] = { { &o, sizeof(o) }, { (void *)name, strlen(name) + 1 } };
	o.flags = flags;
	return send_notify(se, FUSE_NOTIFY_INVAL_ENTRY, iov, 2);
}

int fuse_session_notify_inc_epoch(struct fuse_session *se)
{
	if (se->init.kernel_minor < 44)
		return -ENOSYS;
	return send_notify(se, CM_FUSE_NOTIFY_INC_EPOCH, NULL, 0);
}

int fuse_session_backing_open(struct fuse_session *se, int fd)
{
	struct cm_fuse_backing_map map = { .fd = fd };
	return sys_backing_open(se->channels[0].fd, CM_FUSE_DEV_IOC_BACKING_OPEN, &map);
}

int fuse_session_backing_close(struct fuse_session *se, int backing_id)
{
	uint32_t id = (uint32_t)backing_id;
	return ioctl(se->channels[0].fd, CM_FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

/* ---- dispatch --------------------------------------------------------------------------- */

static void ring_request(void *arg, struct fuse_uring_entry *ent, const void *in, size_t len,
                         void *scratch);

/* Before the INIT reply: rings, pinned threads and buffers, or a logged reason why not. We
 * may advertise FUSE_OVER_IO_URING only if this succeeds (KERNEL-FUSE.md §1.5). */
static bool session_rings_prepare(struct fuse_session *se, uint64_t offered)
{
	unsigned queues = fuse_uring_queue_count();
	struct fuse_uring_config ucfg = {
		.dev_fd = se->channels[0].fd,
		.per_queue = se->cfg.threads / queues ? se->cfg.threads / queues : 1,
		.payload_size = FUSE_SESSION_SCRATCH,
		.handler = ring_request,
		.arg = se,
	};
	int rc;

	if (!(offered & FUSE_OVER_IO_URING)) {
		snprintf(se->transport_why, sizeof(se->transport_why),
		         "the kernel does not offer FUSE-over-io_uring (module parameter enable_uring)");
		log_warn("io_uring transport unavailable: %s; serving through /dev/fuse", se->transport_why);
		return false;
	}
	rc = fuse_uring_create(&ucfg, &se->uring);
	if (rc < 0) {
		se->uring = NULL;
		snprintf(se->transport_why, sizeof(se->transport_why), "io_uring setup failed: %s",
		         strerror(-rc));
		log_warn("io_uring transport unavailable: %s; serving through /dev/fuse", se->transport_why);
		return false;
	}
	return true;
}

/* After the INIT reply: register every entry. If a CPU queue stays without one, fuse_uring
 * has made the kernel fall back to /dev/fuse, whose workers keep running in any case. */
static void session_rings_start(struct fuse_session *se)
{
	int rc = fuse_uring_start(se->uring);
	if (rc < 0) {
		snprintf(se->transport_why, sizeof(se->transport_why), "io_uring registration failed: %s",
		         strerror(-rc));
		log_error("%s; the kernel serves through /dev/fuse", se->transport_why);
		return;
	}
	atomic_store(&se->uring_active, true);
	log_info("FUSE-over-io_uring: %u queues, %u ring threads", fuse_uring_queue_count(),
	         fuse_uring_thread_count(se->uring));
}

/* ---- request handlers: one per row of fuse_opcode.h -------------------------------------- */

typedef void opcode_handler(struct fuse_req *r, const struct fuse_proto_request *pr);

static void op_init(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	struct fuse_session *se = r->se;
	struct fuse_proto_init_wants wants = {
		.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_AUTO_INVAL_DATA |
		         FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS |
		         FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_NO_EXPORT_SUPPORT |
		         FUSE_CREATE_SUPP_GROUP | FUSE_SETXATTR_EXT |
		         se->cfg.extra_flags | (se->cfg.passthrough ? FUSE_PASSTHROUGH : 0),
		.max_write = FUSE_SESSION_MAX_WRITE,
		.max_pages = FUSE_SESSION_MAX_WRITE / 4096,
		.max_background = 64,
		.max_stack_depth = se->cfg.max_stack_depth,
	};
	struct cm_fuse_init_out out;
	struct fuse_proto_init_result res;
	size_t out_size;
	bool rings_ready = false;
	int rc;

	wants.flags &= ~se->cfg.withheld_flags;
	if (r->ring) {   /* INIT comes through /dev/fuse only */
		fuse_reply_err(r, EPROTO);
		return;
	}
	rc = fuse_proto_init_negotiate(pr->arg, pr->body_size, &wants, &out, &out_size, &res);

	if (rc == 0 && se->cfg.io_uring && !se->uring) {
		rings_ready = session_rings_prepare(se, res.offered);
		if (rings_ready) {
			wants.flags |= FUSE_OVER_IO_URING;
			rc = fuse_proto_init_negotiate(pr->arg, pr->body_size, &wants, &out, &out_size, &res);
			rings_ready = rc == 0 && (res.granted & FUSE_OVER_IO_URING);
		}
	}

	if (rc == -EAGAIN) {
		send_reply(r, &out, out_size);
		return;
	}
	if (rc < 0) {
		log_error("fuse init failed: kernel protocol %u.%u is not supported", res.kernel_major,
		          res.kernel_minor);
		fuse_reply_err(r, -rc);
		pthread_mutex_lock(&se->lock);
		se->init_error = rc;
		pthread_cond_broadcast(&se->cond);
		pthread_mutex_unlock(&se->lock);
		return;
	}
	se->init = res;
	if (se->ops->init)
		se->ops->init(se->fs, se, &res);
	send_reply(r, &out, out_size);
	/* Ring requests may come as soon as the first queue is complete: accept them first. */
	__atomic_store_n(&se->initialized, true, __ATOMIC_RELEASE);
	if (rings_ready)
		session_rings_start(se);
	pthread_mutex_lock(&se->lock);
	se->ready = true;
	pthread_cond_broadcast(&se->cond);
	pthread_mutex_unlock(&se->lock);
}

/* The file system's callback, or ENOSYS when it has none. */
#define CALL(fn, ...) do { if (r->se->ops->fn) r->se->ops->fn(__VA_ARGS__); \
                           else fuse_reply_err(r, ENOSYS); } while (0)
#define INO (pr->header->nodeid)

static void op_forget(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_forget_in *in = pr->arg;
	if (r->se->ops->forget)
		r->se->ops->forget(r->se->fs, INO, in->nlookup);
}

static void op_batch_forget(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_batch_forget_in *in = pr->arg;
	const uint8_t *p = pr->data;
	size_t avail = pr->data_size / sizeof(struct fuse_forget_one);
	size_t count = in->count < avail ? in->count : avail;

	for (size_t i = 0; i < count && r->se->ops->forget; i++) {
		struct fuse_forget_one one;
		memcpy(&one, p + i * sizeof(one), sizeof(one));
		r->se->ops->forget(r->se->fs, one.nodeid, one.nlookup);
	}
}

static void op_lookup(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(lookup, r, INO, pr->names[0]);
}

static void op_getattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(getattr, r, INO, pr->arg);
}

static void op_setattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(setattr, r, INO, pr->arg);
}

static void op_readlink(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(readlink, r, INO);
}

static void op_symlink(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(symlink, r, INO, pr->names[0], pr->names[1]);
}

static void op_mknod(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(mknod, r, INO, pr->names[0], pr->arg);
}

static void op_mkdir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(mkdir, r, INO, pr->names[0], pr->arg);
}

static void op_unlink(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(unlink, r, INO, pr->names[0]);
}

static void op_rmdir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(rmdir, r, INO, pr->names[0]);
}

static void op_rename(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_rename_in *in = pr->arg;
	CALL(rename, r, INO, pr->names[0], in->newdir, pr->names[1], 0);
}

static void op_rename2(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_rename2_in *in = pr->arg;
	CALL(rename, r, INO, pr->names[0], in->newdir, pr->names[1], in->flags);
}

static void op_link(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_link_in *in = pr->arg;
	CALL(link, r, in->oldnodeid, INO, pr->names[0]);
}

static void op_open(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(open, r, INO, pr->arg);
}

static void op_create(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(create, r, INO, pr->names[0], pr->arg);
}

static void op_tmpfile(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(tmpfile, r, INO, pr->arg);
}

static void op_read(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(read, r, INO, pr->arg);
}

static void op_write(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_write_in *in = pr->arg;
	if (in->size != pr->data_size)
		fuse_reply_err(r, EINVAL);
	else
		CALL(write, r, INO, in, pr->data);
}

static void op_flush(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(flush, r, INO, pr->arg);
}

static void op_release(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(release, r, INO, pr->arg);
}

static void op_fsync(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(fsync, r, INO, pr->arg);
}

static void op_statfs(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(statfs, r, INO);
}

static void op_setxattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_setxattr_in *in = pr->arg;
	/* setxattr_flags only with FUSE_SETXATTR_EXT (the decoder took the whole struct then) */
	uint32_t ext_flags = pr->arg_size >= sizeof(*in) ? in->setxattr_flags : 0;
	if (in->size != pr->data_size)
		fuse_reply_err(r, EINVAL);
	else
		CALL(setxattr, r, INO, pr->names[0], pr->data, in->size, in->flags, ext_flags);
}

static void op_getxattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_getxattr_in *in = pr->arg;
	CALL(getxattr, r, INO, pr->names[0], in->size);
}

static void op_listxattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_getxattr_in *in = pr->arg;
	CALL(listxattr, r, INO, in->size);
}

static void op_removexattr(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(removexattr, r, INO, pr->names[0]);
}

static void op_opendir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(opendir, r, INO, pr->arg);
}

static void op_readdir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(readdir, r, INO, pr->arg, false);
}

static void op_readdirplus(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(readdir, r, INO, pr->arg, true);
}

static void op_releasedir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(releasedir, r, INO, pr->arg);
}

static void op_fsyncdir(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(fsyncdir, r, INO, pr->arg);
}

static void op_access(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	const struct fuse_access_in *in = pr->arg;
	CALL(access, r, INO, in->mask);
}

static void op_fallocate(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(fallocate, r, INO, pr->arg);
}

static void op_lseek(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(lseek, r, INO, pr->arg);
}

static void op_copy_file_range(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(copy_file_range, r, INO, pr->arg, false);
}

static void op_copy_file_range_64(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(copy_file_range, r, INO, pr->arg, true);
}

static void op_syncfs(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	CALL(syncfs, r, INO);
}

static void op_destroy(struct fuse_req *r, const struct fuse_proto_request *pr)
{
	fuse_reply_err(r, 0);
}

#undef INO
#undef CALL

/* The handler column of fuse_opcode.h's table; NULL answers ENOSYS. */
#define OPCODE_HANDLER(code, nm, argsz, names, pay, fl, handler) [code] = handler,
static opcode_handler *const opcode_handlers[] = { FUSE_OPCODE_TABLE(OPCODE_HANDLER) };
#undef OPCODE_HANDLER

#define OPCODE_HANDLERS_SIZE (sizeof(opcode_handlers) / sizeof(opcode_handlers[0]))

/* One request of `len` bytes at buf, from a /dev/fuse worker (ch) or a ring thread (ring). */
static void process_request(struct fuse_session *se, struct fuse_channel *ch,
                            struct fuse_uring_entry *ring, void *scratch, const void *buf,
                            size_t len)
{
	struct fuse_proto_request pr;
	struct fuse_req r;
	opcode_handler *handler;
	bool expects_reply;
	/* INIT is answered (se->init written) before the kernel sends any other request */
	int rc = fuse_proto_request_decode(buf, len, se->init.granted, &pr);

	atomic_fetch_add_explicit(&se->requests, 1, memory_order_relaxed);
	memset(&r, 0, sizeof(r));
	r.se = se;
	r.ch = ch;
	r.ring = ring;
	r.scratch = scratch;
	if (len >= sizeof(struct fuse_in_header)) {
		const struct fuse_in_header *h = buf;
		r.opcode_raw = h->opcode;
		r.unique = h->unique;
		r.ctx.uid = h->uid;
		r.ctx.gid = h->gid;
		r.ctx.pid = h->pid;
	}
	if (rc < 0) {
		log_warn("request %s (%u bytes) rejected: %s", rc == -ENOSYS ? pr.opname : "malformed",
		         (unsigned)len, strerror(-rc));
		if (len >= sizeof(struct fuse_in_header) && fuse_proto_opcode_replied(r.opcode_raw))
			fuse_reply_err(&r, -rc);
		return;
	}
	r.ctx.group_count = pr.group_count;
	r.ctx.groups = pr.groups;

	if (!fuse_proto_opcode_before_init(pr.opcode) &&
	    !__atomic_load_n(&se->initialized, __ATOMIC_ACQUIRE)) {
		fuse_reply_err(&r, EIO);
		return;
	}
	handler = pr.opcode < OPCODE_HANDLERS_SIZE ? opcode_handlers[pr.opcode] : NULL;
	expects_reply = fuse_proto_opcode_replied(pr.opcode);
	if (handler)
		handler(&r, &pr);
	else if (expects_reply)
		fuse_reply_err(&r, ENOSYS);
	if (expects_reply && !r.replied) {
		log_error("request %s got no reply (bug): answering EIO", pr.opname);
		fuse_reply_err(&r, EIO);
	}
}

static void ring_request(void *arg, struct fuse_uring_entry *ent, const void *in, size_t len,
                         void *scratch)
{
	process_request(arg, NULL, ent, scratch, in, len);
}

static void *worker_main(void *arg)
{
	struct fuse_channel *ch = arg;
	struct fuse_session *se = ch->se;

	for (;;) {
		ssize_t n = read(ch->fd, ch->in_buf, READ_BUFFER_SIZE);
		if (n < 0) {
			int e = errno;
			if (atomic_load(&se->stopping))
				break;
			if (e == EINTR || e == EAGAIN || e == ENOENT)
				continue;
			if (e != ENODEV && e != ECONNABORTED)
				log_error("read from /dev/fuse failed: %s", strerror(e));
			break;
		}
		process_request(se, ch, NULL, ch->scratch, ch->in_buf, (size_t)n);
	}
	pthread_mutex_lock(&se->lock);
	se->running--;
	pthread_cond_broadcast(&se->cond);
	pthread_mutex_unlock(&se->lock);
	return NULL;
}

static void wake_signal_handler(int sig) { (void)sig; }

static int channel_start(struct fuse_session *se, unsigned i, int fd)
{
	struct fuse_channel *ch = &se->channels[i];
	int rc;

	ch->se = se;
	ch->fd = fd;
	ch->in_buf = malloc(READ_BUFFER_SIZE);
	if (posix_memalign(&ch->scratch, 4096, FUSE_SESSION_SCRATCH))
		ch->scratch = NULL;
	if (!ch->in_buf || !ch->scratch)
		return -ENOMEM;
	pthread_mutex_lock(&se->lock);
	se->running++;
	pthread_mutex_unlock(&se->lock);
	rc = pthread_create(&ch->thread, NULL, worker_main, ch);
	if (rc) {
		pthread_mutex_lock(&se->lock);
		se->running--;
		pthread_mutex_unlock(&se->lock);
		return -rc;
	}
	ch->started = true;
	return 0;
}

/* Stop every worker: set the flag, then poke threads blocked in read() with a signal. */
static void session_stop_workers(struct fuse_session *se)
{
	atomic_store(&se->stopping, true);
	for (;;) {
		pthread_mutex_lock(&se->lock);
		unsigned running = se->running;
		pthread_mutex_unlock(&se->lock);
		if (!running)
			break;
		for (unsigned i = 0; i < se->channel_count; i++)
			if (se->channels[i].started)
				pthread_kill(se->channels[i].thread, SIGUSR1);
		usleep(10000);
	}
}

static int wait_initialized(struct fuse_session *se)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += INIT_TIMEOUT_SECONDS;
	pthread_mutex_lock(&se->lock);
	while (!se->ready && !se->init_error && se->running && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&se->cond, &se->lock, &deadline);
	rc = se->ready ? 0 : se->init_error ? se->init_error : -ETIMEDOUT;
	pthread_mutex_unlock(&se->lock);
	return rc;
}

int fuse_session_mount(const struct fuse_session_config *cfg, const struct fuse_ops *ops, void *fs,
                       struct fuse_session **out)
{
	struct fuse_session *se;
	struct sigaction sa;
	struct stat st;
	char opts[256], type[64];
	bool sync_init;
	int fd, rc;

	if (cfg->threads < 1 || cfg->threads > FUSE_SESSION_MAX_THREADS)
		return -EINVAL;
	if (stat(cfg->mountpoint, &st) < 0)
		return -errno;
	se = calloc(1, sizeof(*se));
	if (!se)
		return -ENOMEM;
	se->ops = ops;
	se->fs = fs;
	se->cfg = *cfg;
	pthread_mutex_init(&se->lock, NULL);
	pthread_cond_init(&se->cond, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_signal_handler;  /* no SA_RESTART: read() returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);

	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_error("cannot open /dev/fuse: %s", strerror(errno));
		goto err_free;
	}
	se->channel_count = 1;
	/* With synchronous INIT, mount(2) waits for our INIT reply, so the reader must run first.
	 * Without it, read() before mount(2) fails, so the reader starts after. */
	sync_init = ioctl(fd, CM_FUSE_DEV_IOC_SYNC_INIT) == 0;
	if (sync_init) {
		rc = channel_start(se, 0, fd);
		if (rc < 0) {
			close(fd);
			goto err_free;
		}
	} else {
		se->channels[0].fd = fd;
	}

	snprintf(opts, sizeof(opts),
	         "fd=%d,rootmode=%o,user_id=0,group_id=0,default_permissions,allow_other", fd,
	         st.st_mode & S_IFMT);
	snprintf(type, sizeof(type), "fuse.%s", cfg->subtype);
	if (mount(cfg->fsname, cfg->mountpoint, type, cfg->mount_flags, opts) < 0) {
		rc = -errno;
		log_error("cannot mount %s on '%s': %s", type, cfg->mountpoint, strerror(errno));
		goto err_stop;
	}
	if (!sync_init) {
		rc = channel_start(se, 0, fd);
		if (rc < 0) {
			umount2(cfg->mountpoint, MNT_DETACH);
			goto err_stop;
		}
	}
	rc = wait_initialized(se);
	if (rc < 0) {
		log_error("fuse init did not complete on '%s': %s", cfg->mountpoint, strerror(-rc));
		umount2(cfg->mountpoint, MNT_DETACH);
		goto err_stop;
	}
	log_info("mounted '%s' (protocol 7.%u, %s init, flags %#llx, transport %s)", cfg->mountpoint,
	         se->init.kernel_minor, sync_init ? "synchronous" : "asynchronous",
	         (unsigned long long)se->init.granted, fuse_session_transport(se));

	for (unsigned i = 1; i < cfg->threads; i++) {
		uint32_t master = (uint32_t)fd;
		int cfd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
		if (cfd < 0) {
			log_warn("cannot open a cloned /dev/fuse fd: %s; using %u threads", strerror(errno), i);
			break;
		}
		if (ioctl(cfd, FUSE_DEV_IOC_CLONE, &master) < 0) {
			log_warn("cannot clone /dev/fuse: %s; using %u threads", strerror(errno), i);
			close(cfd);
			break;
		}
		se->channel_count = i + 1;
		if (channel_start(se, i, cfd) < 0) {
			se->channel_count = i;
			close(cfd);
			break;
		}
	}
	*out = se;
	return 0;

err_stop:
	session_stop_workers(se);
err_free:
	fuse_session_free(se);
	return rc;
}

int fuse_session_wait(struct fuse_session *se)
{
	pthread_mutex_lock(&se->lock);
	while (se->running)
		pthread_cond_wait(&se->cond, &se->lock);
	pthread_mutex_unlock(&se->lock);
	/* At unmount or abort the kernel completes the parked ring commands with ENOTCONN. */
	fuse_uring_wait(se->uring);
	return 0;
}

void fuse_session_free(struct fuse_session *se)
{
	if (!se)
		return;
	session_stop_workers(se);
	fuse_uring_free(se->uring);
	for (unsigned i = 0; i < se->channel_count; i++) {
		struct fuse_channel *ch = &se->channels[i];
		if (ch->started)
			pthread_join(ch->thread, NULL);
		if (ch->fd > 0)
			close(ch->fd);
		free(ch->in_buf);
		free(ch->scratch);
	}
	pthread_mutex_destroy(&se->lock);
	pthread_cond_destroy(&se->cond);
	free(se);
}
