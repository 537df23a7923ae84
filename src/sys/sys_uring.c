/* sys_uring: see sys_uring.h. */
#include "sys/sys_uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sys/sys.h"

static void *map_ring(int fd, size_t size, off_t what)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
}

int sys_uring_setup(struct sys_uring *r, unsigned entries, unsigned flags, unsigned fallback)
{
	struct io_uring_params p;
	char *sq, *cq;
	int fd, err;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	memset(&p, 0, sizeof(p));
	p.flags = flags;
	fd = sys_io_uring_setup(entries, &p);
	if (fd == -EINVAL && fallback != flags) {
		memset(&p, 0, sizeof(p));
		p.flags = fallback;
		fd = sys_io_uring_setup(entries, &p);
	}
	if (fd < 0)
		return fd;
	r->sqe_size = (p.flags & IORING_SETUP_SQE128) ? 128 : sizeof(struct io_uring_sqe);
	r->sq_map_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	r->cq_map_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_map_size > r->sq_map_size)
			r->sq_map_size = r->cq_map_size;
		r->cq_map_size = 0;
	}
	r->sq_map = map_ring(fd, r->sq_map_size, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED)
		goto fail;
	r->cq_map = r->sq_map;
	if (r->cq_map_size) {
		r->cq_map = map_ring(fd, r->cq_map_size, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED)
			goto fail_sq;
	}
	r->sqes_size = (size_t)p.sq_entries * r->sqe_size;
	r->sqes = map_ring(fd, r->sqes_size, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		goto fail_cq;
	sq = r->sq_map;
	cq = r->cq_map;
	r->sq_head = (unsigned *)(void *)(sq + p.sq_off.head);
	r->sq_tail = (unsigned *)(void *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(void *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(void *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(void *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(void *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(void *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(void *)(cq + p.cq_off.cqes);
	r->fd = fd;
	return 0;

fail_cq:
	if (r->cq_map_size)
		munmap(r->cq_map, r->cq_map_size);
fail_sq:
	munmap(r->sq_map, r->sq_map_size);
fail:
	err = -errno;
	close(fd);
	return err;
}

void sys_uring_release(struct sys_uring *r)
{
	if (r->fd < 0)
		return;
	munmap(r->sqes, r->sqes_size);
	if (r->cq_map_size)
		munmap(r->cq_map, r->cq_map_size);
	munmap(r->sq_map, r->sq_map_size);
	close(r->fd);
	r->fd = -1;
}

struct io_uring_sqe *sys_uring_sqe(struct sys_uring *r)
{
	unsigned index = *r->sq_tail & *r->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)(void *)(r->sqes + (size_t)index * r->sqe_size);
	memset(sqe, 0, r->sqe_size);
	return sqe;
}

void sys_uring_push(struct sys_uring *r)
{
	unsigned tail = *r->sq_tail, index = tail & *r->sq_mask;
	r->sq_array[index] = index;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
}

unsigned sys_uring_unsubmitted(const struct sys_uring *r)
{
	return *r->sq_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
}

int sys_uring_enter(struct sys_uring *r, unsigned submit, unsigned wait)
{
	return sys_io_uring_enter(r->fd, submit, wait, IORING_ENTER_GETEVENTS);
}

bool sys_uring_peek(const struct sys_uring *r, struct io_uring_cqe *out)
{
	unsigned head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return false;
	*out = r->cqes[head & *r->cq_mask];
	return true;
}

void sys_uring_advance(struct sys_uring *r)
{
	__atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
}
