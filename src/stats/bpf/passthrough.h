/* passthrough: what the kernel-side counter (passthrough.bpf.c) and the daemon's loader
 * (stats/stats_bpf.c) share: the indices of its counters and histograms and the layout of its
 * per-file map. Included by BPF C and by the daemon, so only fixed-width types. Changing a
 * layout changes both sides in one build; nothing of it is persisted.
 */
#ifndef CACHEMAX_STATS_BPF_PASSTHROUGH_H
#define CACHEMAX_STATS_BPF_PASSTHROUGH_H

#include <linux/types.h>

/* Counters (array `pt_counter` in the program's .bss). */
enum pt_counter {
	PT_READ_OPS_CACHE,      /* reads that returned data from the cache copy */
	PT_READ_BYTES_CACHE,
	PT_READ_OPS_ORIGIN,     /* ... from the original file */
	PT_READ_BYTES_ORIGIN,
	PT_WRITE_OPS,           /* writes that wrote at least a byte (to either backing file) */
	PT_WRITE_BYTES,
	PT_ERRORS,              /* reads and writes that returned an error */
	PT_COUNTER_COUNT
};

/* Latency histograms (array `pt_hist`): entry to exit of the kernel function, in the
 * log-linear buckets of stats/stats.h (8 per power of two of nanoseconds). */
enum pt_latency {
	PT_LAT_READ_CACHE,
	PT_LAT_READ_ORIGIN,
	PT_LAT_WRITE,
	PT_LAT_COUNT
};
#define PT_HIST_SUB 8
#define PT_HIST_BUCKETS (64 * PT_HIST_SUB)

/* Per file: map `pt_files`, an LRU hash keyed by the daemon's nodeid (fuse_file->nodeid), so
 * that it stays bounded whatever the number of files; the least recently used fall out. */
#define PT_FILES_MAX 4096
struct pt_file {
	__u64 ino;              /* the FUSE inode's number (= the original's st_ino) */
	__u64 read_ops_cache;
	__u64 read_bytes_cache;
	__u64 read_ops_origin;
	__u64 read_bytes_origin;
	__u64 write_ops;
	__u64 write_bytes;
};

#endif
