/* stats_bpf: the kernel-side counter of passthrough reads and writes (bpf/passthrough.bpf.c),
 * one per daemon, for its own mount. It owns the loaded program, its links and maps; nothing
 * of it outlives stats_bpf_close() or the process (the kernel detaches it when the fds close).
 * Reading the counts takes no lock: the program adds with atomics, the reader loads them from
 * the mmapped .bss, so a snapshot may be a few operations behind, never wrong.
 * Errors: stats_bpf_open returns 0 or -errno and says why in words (no BTF, no privilege, the
 * kernel lacks the functions, disabled for a test by CACHEMAX_NO_BPF).
 */
#ifndef CACHEMAX_STATS_BPF_H
#define CACHEMAX_STATS_BPF_H

#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>

#include "stats/stats.h"

struct stats_bpf;

/* The kernel keeps the counts of this many files (least recently used fall out). */
#define STATS_BPF_FILES_MAX 4096

/* Which hooks count: fentry/fexit on the kernel's passthrough functions (every read and
 * write), or, where the kernel refuses tracing programs, the read/write system calls (blind to
 * io_uring, aio, sendfile, splice, copy_file_range). */
enum stats_bpf_hooks { STATS_BPF_FEXIT, STATS_BPF_SYSCALLS };

/* Load and attach for the FUSE mount with st_dev mount_dev; reads whose backing file is on
 * cache_dev (and is not the original inode) count as served from the cache. On success *why
 * is empty, or says what the syscall hooks miss and why fexit was refused. */
/* syscalls_ok: where fentry/fexit is refused, fall back to the system-call hooks, which tax
 * every system call on the machine (measured: about 1.5 us each, read(2) of /dev/zero 3x slower)
 * — only when the user asked for it (--count-syscalls). */
/* memo (or NULL): a file in which a refusal of the fentry/fexit programs for lack of privilege
 * (EPERM: some kernels and VMs refuse tracing programs to root) is remembered with the boot's
 * id and the process's effective capabilities, so that later starts in the same boot with the
 * same privileges skip the load (about 0.1 s: libbpf parses the
 * kernel's BTF) and say it was remembered. Its directory must be root's alone (the run
 * directory). */
int stats_bpf_open(dev_t mount_dev, dev_t cache_dev, bool syscalls_ok, const char *memo,
                   struct stats_bpf **out, char *why, size_t why_size);
void stats_bpf_close(struct stats_bpf *b);
enum stats_bpf_hooks stats_bpf_hooks_used(const struct stats_bpf *b);

/* The counts so far (cumulative since the open). */
void stats_bpf_read(const struct stats_bpf *b, struct stats_passthrough *out);

/* Per-file counts (at most max, in no order; nodeid and ino set). Returns how many. */
size_t stats_bpf_files(const struct stats_bpf *b, struct stats_file *out, size_t max);

#endif
