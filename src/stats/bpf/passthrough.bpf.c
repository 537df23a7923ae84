/* passthrough.bpf.c: exact counts of the reads and writes that FUSE passthrough serves in the
 * kernel, where the daemon never sees them. Two sets of hooks; the loader uses the first the
 * kernel accepts (stats_bpf.c):
 *  - fentry/fexit on fuse_passthrough_{read,write}_iter and fuse_passthrough_splice_read: every
 *    passthrough read and write, whatever issued it;
 *  - where tracing programs are refused (some kernels and VMs return EPERM for fentry; there are
 *    no kretprobes without CONFIG_KPROBES), the syscall tracepoints of read/write, pread/pwrite,
 *    readv/writev and preadv(2)/pwritev(2) on a file of the mount that is passing through:
 *    exact for those calls, blind to io_uring, aio, sendfile, splice and copy_file_range.
 * Both count bytes (the return value), ops and latency (entry to exit), for one mount only (the
 * daemon sets mount_dev before loading), by file (the daemon's nodeid).
 * A read is from the cache copy when the backing file is on the cache's device and is not the
 * original inode itself (the FUSE inode's number is the original's st_ino); otherwise from the
 * original. No vmlinux.h: the few kernel fields used are declared below and relocated by
 * CO-RE against the running kernel's BTF at load.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "passthrough.h"

char LICENSE[] SEC("license") = "GPL";  /* fentry/fexit programs must be GPL */

struct super_block { __u32 s_dev; } __attribute__((preserve_access_index));
struct inode { struct super_block *i_sb; unsigned long i_ino; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; void *private_data; } __attribute__((preserve_access_index));
struct fuse_file { __u64 nodeid; __u32 open_flags; struct file *passthrough; } __attribute__((preserve_access_index));
struct kiocb { struct file *ki_filp; } __attribute__((preserve_access_index));
struct fdtable { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
struct task_struct { struct files_struct *files; } __attribute__((preserve_access_index));
struct iov_iter;
struct pipe_inode_info;

/* Set by the daemon before load (kernel dev_t encoding: major << 20 | minor). */
const volatile __u32 mount_dev = 0;
const volatile __u32 cache_dev = 0;

/* Read by the daemon through the skeleton's mmap of .bss. */
__u64 pt_counter[PT_COUNTER_COUNT];
__u64 pt_hist[PT_LAT_COUNT][PT_HIST_BUCKETS];
__u64 pt_hist_sum_ns[PT_LAT_COUNT];

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PT_FILES_MAX);
	__type(key, __u64);
	__type(value, struct pt_file);
} pt_files SEC(".maps");

/* Entry time (and, for the syscall hooks, the file) by thread: a read or write of one thread
 * does not nest in another. */
struct pt_entry {
	__u64 ns;
	struct file *file;
	__u64 write;          /* the syscall hooks: a write */
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct pt_entry);
} pt_start SEC(".maps");

static __always_inline int ours(struct file *f)
{
	return BPF_CORE_READ(f, f_inode, i_sb, s_dev) == mount_dev;
}

static __always_inline int on_entry(struct file *f)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct pt_entry e = { .file = f };
	if (!ours(f))
		return 0;
	e.ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&pt_start, &tid, &e, BPF_ANY);
	return 0;
}

/* Bucket of stats/stats.h: below 8 the value itself, above the power of two and 3 more bits. */
static __always_inline __u32 bucket_of(__u64 ns)
{
	__u32 msb = 0;
	__u64 v = ns;
	if (ns < PT_HIST_SUB)
		return (__u32)ns;
	if (v >> 32) { v >>= 32; msb += 32; }
	if (v >> 16) { v >>= 16; msb += 16; }
	if (v >> 8) { v >>= 8; msb += 8; }
	if (v >> 4) { v >>= 4; msb += 4; }
	if (v >> 2) { v >>= 2; msb += 2; }
	if (v >> 1) { msb += 1; }
	return (msb - 2) * PT_HIST_SUB + (__u32)((ns >> (msb - 3)) & (PT_HIST_SUB - 1));
}

static __always_inline void on_exit(struct file *f, long ret, int write)
{
	__u64 tid = bpf_get_current_pid_tgid(), ns = 0, nodeid, ino;
	struct pt_entry *t0;
	struct fuse_file *ff;
	struct inode *backing;
	struct pt_file *pf, zero = {};
	int from_cache = 0;
	__u32 lat, b;

	if (!ours(f))
		return;
	t0 = bpf_map_lookup_elem(&pt_start, &tid);
	if (t0) {
		ns = bpf_ktime_get_ns() - t0->ns;
		bpf_map_delete_elem(&pt_start, &tid);
	}
	if (ret < 0) {
		__sync_fetch_and_add(&pt_counter[PT_ERRORS], 1);
		return;
	}
	if (ret == 0)
		return;  /* end of file: no data served */
	ff = BPF_CORE_READ(f, private_data);
	nodeid = BPF_CORE_READ(ff, nodeid);
	ino = BPF_CORE_READ(f, f_inode, i_ino);
	backing = BPF_CORE_READ(ff, passthrough, f_inode);
	if (backing && BPF_CORE_READ(backing, i_sb, s_dev) == cache_dev &&
	    BPF_CORE_READ(backing, i_ino) != ino)
		from_cache = 1;

	pf = bpf_map_lookup_elem(&pt_files, &nodeid);
	if (!pf) {
		zero.ino = ino;
		bpf_map_update_elem(&pt_files, &nodeid, &zero, BPF_NOEXIST);
		pf = bpf_map_lookup_elem(&pt_files, &nodeid);
	}
	if (write) {
		__sync_fetch_and_add(&pt_counter[PT_WRITE_OPS], 1);
		__sync_fetch_and_add(&pt_counter[PT_WRITE_BYTES], ret);
		if (pf) {
			__sync_fetch_and_add(&pf->write_ops, 1);
			__sync_fetch_and_add(&pf->write_bytes, ret);
		}
		lat = PT_LAT_WRITE;
	} else if (from_cache) {
		__sync_fetch_and_add(&pt_counter[PT_READ_OPS_CACHE], 1);
		__sync_fetch_and_add(&pt_counter[PT_READ_BYTES_CACHE], ret);
		if (pf) {
			__sync_fetch_and_add(&pf->read_ops_cache, 1);
			__sync_fetch_and_add(&pf->read_bytes_cache, ret);
		}
		lat = PT_LAT_READ_CACHE;
	} else {
		__sync_fetch_and_add(&pt_counter[PT_READ_OPS_ORIGIN], 1);
		__sync_fetch_and_add(&pt_counter[PT_READ_BYTES_ORIGIN], ret);
		if (pf) {
			__sync_fetch_and_add(&pf->read_ops_origin, 1);
			__sync_fetch_and_add(&pf->read_bytes_origin, ret);
		}
		lat = PT_LAT_READ_ORIGIN;
	}
	if (!t0)
		return;  /* entered before the program was attached: no latency */
	b = bucket_of(ns);
	if (b >= PT_HIST_BUCKETS)
		b = PT_HIST_BUCKETS - 1;
	__sync_fetch_and_add(&pt_hist[lat][b], 1);
	__sync_fetch_and_add(&pt_hist_sum_ns[lat], ns);
}

SEC("fentry/fuse_passthrough_read_iter")
int BPF_PROG(read_iter_entry, struct kiocb *iocb, struct iov_iter *iter)
{
	return on_entry(BPF_CORE_READ(iocb, ki_filp));
}

SEC("fexit/fuse_passthrough_read_iter")
int BPF_PROG(read_iter_exit, struct kiocb *iocb, struct iov_iter *iter, long ret)
{
	on_exit(BPF_CORE_READ(iocb, ki_filp), ret, 0);
	return 0;
}

SEC("fentry/fuse_passthrough_write_iter")
int BPF_PROG(write_iter_entry, struct kiocb *iocb, struct iov_iter *iter)
{
	return on_entry(BPF_CORE_READ(iocb, ki_filp));
}

SEC("fexit/fuse_passthrough_write_iter")
int BPF_PROG(write_iter_exit, struct kiocb *iocb, struct iov_iter *iter, long ret)
{
	on_exit(BPF_CORE_READ(iocb, ki_filp), ret, 1);
	return 0;
}

SEC("fentry/fuse_passthrough_splice_read")
int BPF_PROG(splice_read_entry, struct file *in, long long *ppos, struct pipe_inode_info *pipe,
             unsigned long len, unsigned int flags)
{
	return on_entry(in);
}

SEC("fexit/fuse_passthrough_splice_read")
int BPF_PROG(splice_read_exit, struct file *in, long long *ppos, struct pipe_inode_info *pipe,
             unsigned long len, unsigned int flags, long ret)
{
	on_exit(in, ret, 0);
	return 0;
}

/* ---- The syscall hooks ------------------------------------------------------------------- */

/* raw tracepoints sys_enter/sys_exit (they need no tracefs, unlike the syscalls/ tracepoints):
 * every system call passes, and all but the ten below leave at the first comparison. x86_64
 * numbers and registers (BPF_ARCH in the Makefile). */
struct pt_regs { unsigned long di; } __attribute__((preserve_access_index));
enum {
	NR_READ = 0, NR_WRITE = 1, NR_PREAD64 = 17, NR_PWRITE64 = 18, NR_READV = 19, NR_WRITEV = 20,
	NR_PREADV = 295, NR_PWRITEV = 296, NR_PREADV2 = 327, NR_PWRITEV2 = 328,
};

/* The open file of fd in the current task, if it is a file of our mount that is passing
 * through (the kernel reads it through its backing file, fuse_file_read_iter). */
static __always_inline struct file *passthrough_file(long fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;
	struct fuse_file *ff;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) < 0 || !f || !ours(f))
		return NULL;
	ff = BPF_CORE_READ(f, private_data);
	/* FOPEN_DIRECT_IO (bit 0) sends reads to the daemon even with a backing file. */
	if (!ff || !BPF_CORE_READ(ff, passthrough) || (BPF_CORE_READ(ff, open_flags) & 1))
		return NULL;
	return f;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(syscall_enter, struct pt_regs *regs, long nr)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct pt_entry e = {};

	switch (nr) {
	case NR_READ: case NR_PREAD64: case NR_READV: case NR_PREADV: case NR_PREADV2:
		break;
	case NR_WRITE: case NR_PWRITE64: case NR_WRITEV: case NR_PWRITEV: case NR_PWRITEV2:
		e.write = 1;
		break;
	default:
		return 0;
	}
	e.file = passthrough_file((long)BPF_CORE_READ(regs, di));
	if (!e.file)
		return 0;
	e.ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&pt_start, &tid, &e, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(syscall_exit, struct pt_regs *regs, long ret)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct pt_entry *e = bpf_map_lookup_elem(&pt_start, &tid);
	if (e && e->file)
		on_exit(e->file, ret, e->write);
	return 0;
}
