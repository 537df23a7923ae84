/* sys_memory: the memory this process may use, for what is sized from it (the kept objects'
 * table, fs_node.c): the machine's physical memory, or the memory limit of the process's
 * cgroup when that is smaller (a daemon in a systemd unit with MemoryMax=, in a container).
 *   cgroup v2: the "0::PATH" line of /proc/self/cgroup; memory.max under SYS_MEMORY_CGROUP2
 *              ("max": no limit, or bytes);
 *   cgroup v1: the line whose controllers include "memory"; memory.limit_in_bytes under
 *              SYS_MEMORY_CGROUP1 (bytes; its "no limit" is a number past any machine's memory).
 * The limit is the smallest found in PATH and each of its ancestors up to "/" (a parent's limit
 * holds for its children; and a container without a cgroup namespace sees its own limit at
 * the mount's root while /proc/self/cgroup names the host's path). A file that is absent or
 * unreadable sets no limit; one that does not parse is said in the log and sets none.
 * Files are read through the syscall seam (sys_read_file); the parsers are pure functions of
 * the files' text. Errors: 0 or -errno.
 */
#ifndef CACHEMAX_SYS_MEMORY_H
#define CACHEMAX_SYS_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SYS_MEMORY_PROC_CGROUP "/proc/self/cgroup"
#define SYS_MEMORY_CGROUP2 "/sys/fs/cgroup"
#define SYS_MEMORY_CGROUP1 "/sys/fs/cgroup/memory"
#define SYS_MEMORY_NO_LIMIT UINT64_MAX

/* The cgroup path (starting with "/") of the v2 line (v1 false) or of the v1 memory line (v1
 * true) of /proc/self/cgroup's text, into path: 0, -ENOENT (no such line), -EINVAL (a line
 * that is not "ID:CONTROLLERS:/PATH"), -ENAMETOOLONG (not within size). */
int sys_memory_cgroup_path(const char *proc_cgroup, bool v1, char *path, size_t size);

/* A memory.max or memory.limit_in_bytes text: "max" (SYS_MEMORY_NO_LIMIT) or decimal bytes,
 * each with an optional newline and nothing else, into *bytes: 0 or -EINVAL. */
int sys_memory_limit_parse(const char *text, uint64_t *bytes);

/* How sys_memory_usable() reads a file: sys_read_file's contract. */
typedef ssize_t (*sys_memory_read_fn)(const char *path, char *buf, size_t size);

/* The memory this process may use: the smaller of physical (bytes, 0: unknown) and its
 * cgroups' limits read with `read`; 0 when neither is known. *from_cgroup: the limit won. */
uint64_t sys_memory_usable_read(uint64_t physical, sys_memory_read_fn read_file, bool *from_cgroup);

/* The same for this machine: _SC_PHYS_PAGES and sys_read_file. */
uint64_t sys_memory_usable(bool *from_cgroup);

#endif
