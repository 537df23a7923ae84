/* stats_bpf: loads bpf/passthrough.bpf.c through its bpftool skeleton (see stats_bpf.h). */
#include "stats/stats_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "passthrough.skel.h"
#include "stats/bpf/passthrough.h"
#include "sys/sys.h"
#include "util/log.h"

_Static_assert((int)STATS_PT_COUNTER_COUNT == (int)PT_COUNTER_COUNT, "counter indices");
_Static_assert((int)STATS_PT_ERRORS == (int)PT_ERRORS, "counter indices");
_Static_assert((int)STATS_LAT_COUNT == (int)PT_LAT_COUNT, "latency indices");
_Static_assert((int)STATS_LAT_READ_CACHE == (int)PT_LAT_READ_CACHE &&
               (int)STATS_LAT_READ_ORIGIN == (int)PT_LAT_READ_ORIGIN &&
               (int)STATS_LAT_WRITE == (int)PT_LAT_WRITE, "latency indices");
_Static_assert(STATS_HIST_BUCKETS == PT_HIST_BUCKETS, "histogram geometry");
_Static_assert(STATS_BPF_FILES_MAX == PT_FILES_MAX, "per-file map size");

#define BTF_VMLINUX "/sys/kernel/btf/vmlinux"

struct stats_bpf {
	struct passthrough_bpf *skel;
	enum stats_bpf_hooks hooks;
};

/* libbpf's messages: its warnings explain a failed load, so keep them in the log (one line
 * each); its debug chatter is dropped. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_info("libbpf: %s", line);
	return 0;
}

/* The kernel's dev_t (major << 20 | minor), as s_dev holds it. */
static __u32 kernel_dev(dev_t d)
{
	return (__u32)(major(d) << 20 | minor(d));
}

/* Open, load and attach the skeleton with the programs of one set of hooks only. */
static int skeleton_load(dev_t mount_dev, dev_t cache_dev, enum stats_bpf_hooks hooks,
                         struct passthrough_bpf **out, char *why, size_t why_size)
{
	struct passthrough_bpf *skel = passthrough_bpf__open();
	struct bpf_program *prog;
	int rc;

	if (!skel) {
		rc = -errno;
		snprintf(why, why_size, "cannot open the BPF program: %s", strerror(-rc));
		return rc;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		bool tracepoint = !strncmp(bpf_program__section_name(prog), "raw_tp/", 7);
		bpf_program__set_autoload(prog, tracepoint == (hooks == STATS_BPF_SYSCALLS));
	}
	skel->rodata->mount_dev = kernel_dev(mount_dev);
	skel->rodata->cache_dev = kernel_dev(cache_dev);
	rc = passthrough_bpf__load(skel);
	if (rc < 0) {
		snprintf(why, why_size, "the kernel refused the %s programs: %s%s",
		         hooks == STATS_BPF_FEXIT ? "fentry/fexit" : "raw tracepoint", strerror(-rc),
		         rc == -EPERM ? " (needs CAP_BPF and CAP_PERFMON; some kernels refuse tracing "
		                        "programs to root too)" : "");
		goto destroy;
	}
	rc = passthrough_bpf__attach(skel);
	if (rc < 0) {
		snprintf(why, why_size, "cannot attach the %s programs: %s",
		         hooks == STATS_BPF_FEXIT ? "fentry/fexit" : "raw tracepoint", strerror(-rc));
		goto destroy;
	}
	*out = skel;
	return 0;
destroy:
	passthrough_bpf__destroy(skel);
	return rc < 0 ? rc : -EIO;
}

#define BOOT_ID "/proc/sys/kernel/random/boot_id"

/* What a refusal is remembered for: this boot's id and this process's effective capabilities
 * ("BOOT CAPEFF"; a start with fewer privileges is refused what a later one may be granted),
 * or "" where the kernel does not say them. */
static void refusal_key(char out[128])
{
	char boot[64], status[16384], *cap;

	out[0] = '\0';
	if (sys_read_file(BOOT_ID, boot, sizeof(boot)) <= 0 ||
	    sys_read_file("/proc/self/status", status, sizeof(status)) < 0 ||
	    !(cap = strstr(status, "\nCapEff:")))
		return;
	cap += strlen("\nCapEff:");
	cap += strspn(cap, " \t");
	snprintf(out, 128, "%.*s %.*s", (int)strcspn(boot, "\n"), boot, (int)strcspn(cap, "\n"), cap);
}

/* Was the refusal remembered in memo for this boot and these privileges? */
static bool refusal_remembered(const char *memo, const char *key)
{
	char line[128];
	ssize_t n;
	int fd;

	if (!memo || !key[0] || (fd = open(memo, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\n")] = '\0';
	return strcmp(line, key) == 0;
}

/* Remember the refusal (or, refused == false, forget one remembered in an earlier boot). */
static void refusal_remember(const char *memo, const char *key, bool refused)
{
	int fd;

	if (!memo || !key[0])
		return;
	if (!refused) {
		unlink(memo);
		return;
	}
	fd = open(memo, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_info("cannot remember the BPF refusal in %s: %s", memo, strerror(errno));
		return;
	}
	if (write(fd, key, strlen(key)) < 0 || write(fd, "\n", 1) < 0)
		log_info("cannot remember the BPF refusal in %s: %s", memo, strerror(errno));
	close(fd);
}

int stats_bpf_open(dev_t mount_dev, dev_t cache_dev, bool syscalls_ok, const char *memo,
                   struct stats_bpf **out, char *why, size_t why_size)
{
	char key[128];
	const char *off = getenv("CACHEMAX_NO_BPF"), *only = getenv("CACHEMAX_BPF_HOOKS");
	char fexit_why[256] = "";
	struct stats_bpf *b;
	int rc;

	*out = NULL;
	if (off && *off && strcmp(off, "0")) {
		snprintf(why, why_size, "disabled by CACHEMAX_NO_BPF");
		return -ECANCELED;
	}
	if (access(BTF_VMLINUX, R_OK) < 0) {
		rc = -errno;
		snprintf(why, why_size, "the kernel has no BTF (%s: %s)", BTF_VMLINUX, strerror(-rc));
		return rc;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	libbpf_set_print(libbpf_log);
	/* fentry/fexit sees every passthrough read; the syscall hooks only those of read(2) and
	 * its kin. CACHEMAX_BPF_HOOKS=syscalls skips the first (for tests). */
	rc = -ECANCELED;
	refusal_key(key);
	if (only && !strcmp(only, "syscalls")) {
		snprintf(fexit_why, sizeof(fexit_why), "fentry/fexit skipped by CACHEMAX_BPF_HOOKS");
	} else if (refusal_remembered(memo, key)) {
		rc = -EPERM;
		snprintf(fexit_why, sizeof(fexit_why), "the kernel refused the fentry/fexit programs "
		         "earlier in this boot (EPERM, remembered in %s)", memo);
	} else {
		rc = skeleton_load(mount_dev, cache_dev, STATS_BPF_FEXIT, &b->skel, fexit_why,
		                   sizeof(fexit_why));
		if (rc == 0 || rc == -EPERM)
			refusal_remember(memo, key, rc == -EPERM);
	}
	b->hooks = STATS_BPF_FEXIT;
	if (rc < 0 && !syscalls_ok) {
		snprintf(why, why_size, "%s; hooks on every system call would count them but slow the "
		         "whole machine (start with --count-syscalls to use them)", fexit_why);
		free(b);
		return -ECANCELED;
	}
	if (rc < 0) {
		rc = skeleton_load(mount_dev, cache_dev, STATS_BPF_SYSCALLS, &b->skel, why, why_size);
		b->hooks = STATS_BPF_SYSCALLS;
		if (rc < 0) {
			char both[256];
			snprintf(both, sizeof(both), "%s", why);
			snprintf(why, why_size, "%s; %s", fexit_why, both);
			free(b);
			return rc;
		}
		snprintf(why, why_size, "%s: counting the read and write system calls instead "
		         "(io_uring, aio, sendfile, splice and copy_file_range are not seen)", fexit_why);
	} else {
		why[0] = '\0';
	}
	*out = b;
	return 0;
}

enum stats_bpf_hooks stats_bpf_hooks_used(const struct stats_bpf *b)
{
	return b->hooks;
}

void stats_bpf_close(struct stats_bpf *b)
{
	if (!b)
		return;
	passthrough_bpf__destroy(b->skel);
	free(b);
}

void stats_bpf_read(const struct stats_bpf *b, struct stats_passthrough *out)
{
	const struct passthrough_bpf__bss *bss = b->skel->bss;

	for (unsigned i = 0; i < PT_COUNTER_COUNT; i++)
		out->counter[i] = __atomic_load_n(&bss->pt_counter[i], __ATOMIC_RELAXED);
	for (unsigned l = 0; l < PT_LAT_COUNT; l++) {
		out->lat_sum_ns[l] = __atomic_load_n(&bss->pt_hist_sum_ns[l], __ATOMIC_RELAXED);
		for (unsigned k = 0; k < PT_HIST_BUCKETS; k++)
			out->lat_bucket[l][k] = __atomic_load_n(&bss->pt_hist[l][k], __ATOMIC_RELAXED);
	}
}

size_t stats_bpf_files(const struct stats_bpf *b, struct stats_file *out, size_t max)
{
	int fd = bpf_map__fd(b->skel->maps.pt_files);
	__u64 key, next;
	size_t n = 0;
	bool first = true;

	while (n < max && bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		struct pt_file v;
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v) < 0)
			continue;  /* fell out of the LRU meanwhile */
		out[n] = (struct stats_file){
			.nodeid = key, .ino = v.ino,
			.read_ops_cache = v.read_ops_cache, .read_bytes_cache = v.read_bytes_cache,
			.read_ops_origin = v.read_ops_origin, .read_bytes_origin = v.read_bytes_origin,
			.write_ops = v.write_ops, .write_bytes = v.write_bytes,
		};
		n++;
	}
	return n;
}
