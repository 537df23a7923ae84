/* daemon: watchdog and daemon processes (see daemon.h). */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_dax.h"
#include "cache/cache_store.h"
#include "control/control_socket.h"
#include "control/control_trust.h"
#include "control/control_uring.h"
#include "fs/fs.h"
#include "fs/fs_type.h"
#include "fuse/fuse_session.h"
#include "stats/stats_bpf.h"
#include "sys/sys.h"
#include "util/clock.h"
#include "util/siphash.h"
#include "util/json.h"
#include "util/log.h"

_Static_assert(DAEMON_THREADS_MAX == FUSE_SESSION_MAX_THREADS, "the option table's thread limit");

#define EXIT_STARTUP_FAILED 2
#define RESTART_DELAY_MS 300

static void report(int ready_fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int ready_fd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0) {
		size_t len = strlen(msg);
		if (write(ready_fd, msg, len) != (ssize_t)len)
			log_warn("cannot report to the starting command: %s", strerror(errno));
	}
}

static unsigned long mount_flags_like(const char *dir)
{
	struct statvfs sv;
	unsigned long flags = 0;
	if (statvfs(dir, &sv) < 0)
		return MS_NOSUID | MS_NODEV;
	if (sv.f_flag & ST_RDONLY) flags |= MS_RDONLY;
	if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
	return flags;
}

/* Whether to ask for FUSE-over-io_uring: the kernel offers it only with the fuse module's
 * enable_uring on. --io-uring turns it on (root); without the option we use io_uring only
 * where it is already on. Either way this daemon is recorded as relying on a value we set, so
 * that it is put back when the last such daemon ends (control_uring.h). */
static bool io_uring_wanted(enum daemon_transport transport)
{
	bool requested = transport == DAEMON_TRANSPORT_IO_URING, on = false, turned_on = false;
	int rc;

	if (transport == DAEMON_TRANSPORT_DEV_FUSE)
		return false;
	rc = control_uring_acquire(getpid(), requested, &on, &turned_on);
	if (rc == -ENOENT && requested)
		log_warn("--io-uring: this kernel has no FUSE-over-io_uring (no %s); serving "
		         "through /dev/fuse", CONTROL_URING_PARAM);
	else if (rc < 0 && requested)
		log_warn("--io-uring: cannot turn on %s: %s; serving through /dev/fuse",
		         CONTROL_URING_PARAM, strerror(-rc));
	else if (turned_on)
		log_info("--io-uring: turned on %s (it was N; put back when the last daemon that "
		         "relies on it ends)", CONTROL_URING_PARAM);
	return rc == 0 && on;
}

/* This daemon no longer relies on enable_uring (pid: the daemon's). */
static void io_uring_release(pid_t pid)
{
	bool restored = false;
	int rc = control_uring_release(pid, &restored);
	if (rc < 0)
		log_warn("cannot put back %s: %s", CONTROL_URING_PARAM, strerror(-rc));
	else if (restored)
		log_info("put %s back to its value before --io-uring", CONTROL_URING_PARAM);
}

/* Backing files on a stacked file system (overlayfs, FUSE: fs_type.h) need stack depth 2. */
static unsigned stack_depth_for(int origin_fd)
{
	unsigned long type;
	return fs_type_of_fd(origin_fd, &type) == 0 && fs_type_stacked(type) ? 2 : 1;
}

struct daemon_ctx {
	struct control_state state;
	pthread_mutex_t state_lock;     /* the state record is rewritten when bypass changes */
	struct fuse_session *session;
	struct fs *fs;
	struct cache_store *store;
	struct stats stats;
	/* Passthrough I/O counted in the kernel; NULL: counting opens only, bpf_why says why. */
	struct stats_bpf *bpf;
	char bpf_why[512];
	/* Rolling windows: the sampler thread pushes a sample every second until sampler_stop
	 * (sampler_lock, sampler_wake) is set. */
	struct stats_windows windows;
	pthread_t sampler;
	bool sampler_running;
	pthread_mutex_t sampler_lock;
	pthread_cond_t sampler_wake;
	bool sampler_stop;
	struct control_target control;  /* what the control socket's verbs act on */
	struct cache_dax cache_dax;     /* probed once at mount: is the cache directory on DAX */
	const char *pin[DAEMON_MAX_GLOBS];
	const char *exclude[DAEMON_MAX_GLOBS];
	char catalog_path[4200];        /* the metadata catalog's directory (fs_config) */
};

/* fs: the breaker tripped (every open bypasses the cache) or the cache is tried again: say so
 * in the state record (status). */
static void breaker_changed(void *arg, bool on, const char *why)
{
	struct daemon_ctx *d = arg;
	int rc;
	pthread_mutex_lock(&d->state_lock);
	d->state.bypass = on;
	snprintf(d->state.cache_why, sizeof(d->state.cache_why), "%s", on ? why : "");
	rc = control_state_write(&d->state);
	pthread_mutex_unlock(&d->state_lock);
	if (rc < 0)
		log_warn("cannot write state file: %s", strerror(-rc));
}

/* This process's open fds and resident memory in bytes (0 where /proc does not tell). */
static void process_gauges(uint64_t *fds, uint64_t *rss)
{
	unsigned long long pages_total = 0, pages_resident = 0;
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	FILE *f;

	*fds = 0;
	*rss = 0;
	if (dir) {
		while ((de = readdir(dir)))
			if (de->d_name[0] != '.')
				(*fds)++;
		closedir(dir);
		(*fds)--;  /* the one readdir used */
	}
	if ((f = fopen("/proc/self/statm", "r"))) {
		if (fscanf(f, "%llu %llu", &pages_total, &pages_resident) == 2)
			*rss = pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
}

#define DAEMON_TOP_FILES 10

static const char *const cached_names[] = {
	[FS_CACHED_NONE] = "none", [FS_CACHED_PARTIAL] = "partial", [FS_CACHED_FULL] = "full",
	[FS_CACHED_UNKNOWN] = "unknown",
};

/* `, "files": [...]`: the files that served most bytes, with their paths and cache state
 * resolved now (a path is empty when the kernel no longer holds the file's node). */
static int daemon_files_json(struct daemon_ctx *d, char *buf, size_t size)
{
	static struct stats_file kernel[STATS_BPF_FILES_MAX];  /* the control thread's only */
	struct stats_file top[DAEMON_TOP_FILES];
	size_t nk = d->bpf ? stats_bpf_files(d->bpf, kernel, STATS_BPF_FILES_MAX) : 0;
	size_t nt = stats_files_top(&d->stats, kernel, nk, top, DAEMON_TOP_FILES);
	static struct fs_file_report rep;
	char path_json[2048];
	int n = snprintf(buf, size, ", \"files\": [");

	for (size_t i = 0; i < nt && n >= 0 && (size_t)n < size; i++) {
		const struct stats_file *f = &top[i];
		if (fs_file_report(d->fs, f->nodeid, &rep) < 0 && !rep.path[0])
			rep.cached = FS_CACHED_UNKNOWN;
		n += snprintf(buf + n, size - (size_t)n,
		              "%s{\"path\": \"%s\", \"ino\": %llu, \"state\": \"%s\", \"size\": %llu, "
		              "\"bytes_cached\": %llu, \"bytes_served\": %llu, \"read_bytes_cache\": %llu, "
		              "\"read_bytes_origin\": %llu, \"write_bytes\": %llu, \"read_ops_cache\": %llu, "
		              "\"read_ops_origin\": %llu}",
		              i ? ", " : "", json_escape(rep.path, path_json, sizeof(path_json)),
		              (unsigned long long)f->ino, cached_names[rep.cached],
		              (unsigned long long)rep.size, (unsigned long long)rep.bytes_cached,
		              (unsigned long long)(f->read_bytes_cache + f->read_bytes_origin + f->write_bytes),
		              (unsigned long long)f->read_bytes_cache, (unsigned long long)f->read_bytes_origin,
		              (unsigned long long)f->write_bytes, (unsigned long long)f->read_ops_cache,
		              (unsigned long long)f->read_ops_origin);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	n += snprintf(buf + n, size - (size_t)n, "]");
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

/* The control socket's "stats" (control_verbs.h): the snapshot of docs/STATS.md. */
static int daemon_stats(void *arg, char *reply, size_t size)
{
	struct daemon_ctx *d = arg;
	char why[256] = "";
	int n, m;

	atomic_store(&d->stats.counter[STATS_REQUESTS], fuse_session_requests(d->session));
	uint64_t cache_bytes = 0, cache_objects = 0, capacity = 0, by_capacity = 0, yields, backoffs;
	uint64_t high = 0, low = 0;
	struct cache_scrub_stats scrub = { 0 };
	char bypass_why[256] = "", bypass_json[512], handles_why[160] = "", handles_json[330];
	char watch_why[160] = "", watch_json[330], dax_json[2 * CACHE_DAX_WHY_MAX + 1];
	bool bypass = fs_cache_breaker_tripped(d->fs, bypass_why, sizeof(bypass_why)), handles, watching;
	struct fs_gauges gauges;
	static struct stats_passthrough pt;   /* large; the control thread is the only user */
	static struct stats_totals now;
	char counting_json[1100], seal[160] = "", seal_json[330];
	uint64_t fds, rss;
	struct fs_catalog_counts catalog = { 0 };
	uint64_t openless_files, openless_made, openless_pushed_out;
	bool catalog_on, openless;
	if (d->store && cache_store_usage(d->store, &cache_bytes, &cache_objects) < 0)
		cache_bytes = cache_objects = 0;
	fuse_session_uring_yields(d->session, &yields, &backoffs);
	if (d->store) {
		capacity = cache_store_capacity(d->store);
		cache_store_watermarks(d->store, &high, &low);
		by_capacity = cache_store_evictions(d->store);
		cache_store_scrub_stats(d->store, &scrub);
	}
	atomic_store(&d->stats.counter[STATS_SCRUB_RECLAIMED], scrub.reclaimed);
	atomic_store(&d->stats.counter[STATS_EVICTIONS],
	             atomic_load(&d->control.evicted) + by_capacity);
	fs_gauges(d->fs, &gauges);
	process_gauges(&fds, &rss);
	handles = fs_handles_active(d->fs, handles_why, sizeof(handles_why));
	watching = fs_watch_active(d->fs, watch_why, sizeof(watch_why));
	catalog_on = fs_catalog_report(d->fs, seal, sizeof(seal), &catalog);
	openless = fs_openless_report(d->fs, &openless_files, &openless_made, &openless_pushed_out);
	n = snprintf(reply, size, "{\"pid\": %d, \"uptime_seconds\": %lld, \"transport\": \"%s\", "
	             "\"nodes\": %llu, \"nodes_open\": %llu, \"node_bytes\": %llu, \"fds\": %llu, "
	             "\"fds_cached\": %llu, \"fds_pinned\": %llu, \"fd_cache_misses\": %llu, "
	             "\"rss_bytes\": %llu, \"file_handles\": %s, \"file_handles_why\": \"%s\", "
	             "\"uring_requests\": %llu, \"uring_yields\": %llu, \"uring_yield_backoffs\": %llu, "
	             "\"passthrough\": %s, \"cache\": %s, \"cache_bytes\": %llu, \"cache_objects\": %llu, "
	             "\"cache_size\": %llu, \"cache_high_watermark\": %llu, \"cache_dax\": %s, "
	             "\"cache_dax_why\": \"%s\", \"evictions_capacity\": %llu, \"scrub_passes\": %llu, "
	             "\"scrub_checked\": %llu, \"scrub_reclaimed_bytes\": %llu, \"bypass\": %s, "
	             "\"bypass_why\": \"%s\", \"change_watch\": \"%s\", \"change_watch_why\": \"%s\", "
	             "\"passthrough_counting\": \"%s\", \"passthrough_counting_hooks\": \"%s\", "
	             "\"passthrough_counting_why\": \"%s\", "
	             "\"meta_catalog\": {\"on\": %s, \"seal\": \"%s\", \"hits\": %llu, "
	             "\"misses\": %llu, \"late_records\": %llu}, "
	             "\"openless\": {\"on\": %s, \"files\": %llu, \"made\": %llu, "
	             "\"pushed_out\": %llu}, "
	             "\"stats\": ",
	             (int)getpid(), (long long)(time(NULL) - d->state.started),
	             fuse_session_transport(d->session),
	             (unsigned long long)gauges.nodes, (unsigned long long)gauges.nodes_open,
	             (unsigned long long)gauges.node_bytes, (unsigned long long)fds,
	             (unsigned long long)gauges.fds_cached, (unsigned long long)gauges.fds_pinned,
	             (unsigned long long)gauges.fd_cache_misses, (unsigned long long)rss,
	             handles ? "true" : "false", json_escape(handles_why, handles_json, sizeof(handles_json)),
	             (unsigned long long)fuse_session_uring_requests(d->session),
	             (unsigned long long)yields, (unsigned long long)backoffs,
	             fs_passthrough_active(d->fs, why, sizeof(why)) ? "true" : "false",
	             d->store ? "true" : "false", (unsigned long long)cache_bytes,
	             (unsigned long long)cache_objects, (unsigned long long)capacity,
	             (unsigned long long)high,
	             d->cache_dax.dax ? "true" : "false",
	             json_escape(d->cache_dax.why, dax_json, sizeof(dax_json)),
	             (unsigned long long)by_capacity, (unsigned long long)scrub.passes,
	             (unsigned long long)scrub.checked, (unsigned long long)scrub.reclaimed_bytes,
	             bypass ? "true" : "false",
	             json_escape(bypass_why, bypass_json, sizeof(bypass_json)),
	             watching ? "fanotify" : "timeout",
	             json_escape(watch_why, watch_json, sizeof(watch_json)),
	             d->bpf ? "bpf" : "opens",
	             !d->bpf ? "" : stats_bpf_hooks_used(d->bpf) == STATS_BPF_FEXIT ? "fexit" : "syscalls",
	             json_escape(d->bpf_why, counting_json, sizeof(counting_json)),
	             catalog_on ? "true" : "false", json_escape(seal, seal_json, sizeof(seal_json)),
	             (unsigned long long)catalog.hits, (unsigned long long)catalog.misses,
	             (unsigned long long)catalog.late_records,
	             openless ? "true" : "false", (unsigned long long)openless_files,
	             (unsigned long long)openless_made, (unsigned long long)openless_pushed_out);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	if (d->bpf)
		stats_bpf_read(d->bpf, &pt);
	m = stats_snapshot_json(&d->stats, d->bpf ? &pt : NULL, reply + n, size - (size_t)n);
	if (m < 0 || (size_t)(n + m + 3) >= size)
		return -ENOSPC;
	n += m;
	n += snprintf(reply + n, size - (size_t)n, ", ");
	stats_totals_take(&d->stats, d->bpf ? &pt : NULL, (int64_t)(clock_now_ns() / 1000000), &now);
	m = stats_windows_json(&d->windows, &now, reply + n, size - (size_t)n);
	if (m < 0)
		return -ENOSPC;
	n += m;
	m = daemon_files_json(d, reply + n, size - (size_t)n);
	if (m < 0 || (size_t)(n + m + 1) >= size)
		return -ENOSPC;
	n += m;
	reply[n] = '}';
	reply[n + 1] = '\0';
	return n + 1;
}

/* A daemon whose directory was just unmounted (umount, cachemax stop) holds its cache directory
 * while it shuts down, some tens of milliseconds; a start right after (a service manager's
 * restart) waits for it, up to this long, unless a mounted directory is served by that cache. */
#define CACHE_EXITING_WAIT_MS 5000
#define CACHE_EXITING_POLL_MS 5

struct cache_user { const char *cache; bool mounted; };

static int cache_user_mounted(const struct control_state *st, void *arg)
{
	struct cache_user *u = arg;
	u->mounted = !strcmp(st->cache, u->cache) && control_pid_alive(st->daemon_pid) &&
	             control_is_accelerated(st->dir);
	return u->mounted;
}

/* A running daemon serves a mount with this cache directory (as its state record says). */
static bool cache_served_by_mount(const char *cache)
{
	struct cache_user u = { cache, false };
	control_state_each(cache_user_mounted, &u);
	return u.mounted;
}

static bool wait_quantum(unsigned ms);

struct origin_mount {
	int mount_id;
	const char *dir;
	char identity[3 * 1024];   /* type, source, root and the path in it, NUL-separated */
	size_t len;
};

static int origin_mount_one(const struct control_mount_entry *m, void *arg)
{
	struct origin_mount *om = arg;
	size_t point = strlen(m->point);
	const char *in = om->dir + (strcmp(m->point, "/") ? point : 0);
	int n;

	if (m->mount.mount_id != om->mount_id)
		return 0;
	n = snprintf(om->identity, sizeof(om->identity), "%s%c%s%c%s%c%s", m->fstype, 0, m->source,
	             0, m->root, 0, strncmp(om->dir, m->point, point) ? om->dir : in);
	om->len = n > 0 && (size_t)n < sizeof(om->identity) ? (size_t)n : 0;
	return 1;
}

/* The identity of an origin whose inode numbers do not last (cache_store_config's
 * origin_identity): a hash of its mount's file-system type, source (sshfs: user@host:path)
 * and root, and the origin's path below the mount point, which name the same directory after
 * a remount, whatever device number it got. 0 if the mount is not found. */
static uint64_t origin_identity(int origin_fd, const char *dir)
{
	static const uint8_t key[SIPHASH_KEY_BYTES] = { 'c', 'm', '-', 'o', 'r', 'i', 'g', 'i', 'n' };
	struct origin_mount om = { .dir = dir };
	uint64_t h;

	om.mount_id = sys_mount_id(origin_fd);
	if (om.mount_id < 0 || control_mount_each(origin_mount_one, &om) < 0 || !om.len)
		return 0;
	h = siphash24(key, om.identity, om.len);
	return h ? h : 1;
}

/* Open the cache store in the cache directory. A store that belongs to another directory or
 * is in use refuses the start; any other failure of the cache device runs without a cache
 * (the directory still works, uncached) and says so in the log. */
static int cache_open(const struct daemon_options *o, int origin_fd, struct cache_store **out,
                      int ready_fd, char *why, size_t why_size)
{
	struct cache_store_config cfg = { 0 };
	struct stat st;
	int fd, rc;

	*out = NULL;
	if (fstat(origin_fd, &st) < 0)
		return -errno;
	cfg.origin_dev = st.st_dev;
	cfg.origin_ino = st.st_ino;
	{
		unsigned long type;
		if (fs_type_of_fd(origin_fd, &type) == 0 && !fs_type_inode_numbers_last(type))
			cfg.origin_identity = origin_identity(origin_fd, o->dir);
	}
	cfg.capacity = o->size;
	{
		/* A first start without --size: a share of the cache file system's free space. */
		struct statvfs sv;
		if (o->size_default)
			cfg.default_capacity = o->size_default;
		else if (statvfs(o->cache, &sv) == 0)
			cfg.default_capacity = (uint64_t)sv.f_bavail * sv.f_frsize / 100 *
			                       DAEMON_SIZE_DEFAULT_PERCENT;
		if (cfg.default_capacity < DAEMON_SIZE_MIN)
			cfg.default_capacity = DAEMON_SIZE_MIN;
	}
	fd = open(o->cache, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : cache_store_open(fd, &cfg, out);
	for (unsigned waited = 0; rc == -EBUSY && waited < CACHE_EXITING_WAIT_MS &&
	                          !cache_served_by_mount(o->cache); waited += CACHE_EXITING_POLL_MS) {
		wait_quantum(CACHE_EXITING_POLL_MS);
		rc = cache_store_open(fd, &cfg, out);
	}
	if (fd >= 0)
		close(fd);
	if (rc == -EEXIST) {
		report(ready_fd, "ERR the cache directory '%s' holds the cache of another directory: "
		       "choose another cache directory\n", o->cache);
		return rc;
	}
	if (rc == -EBUSY) {
		report(ready_fd, "ERR the cache directory '%s' is in use by another running daemon\n", o->cache);
		return rc;
	}
	if (rc == -EPERM) {
		report(ready_fd, "ERR the cache store in '%s' was made by another user or can be written "
		       "by others: remove it (rm -r '%s/%s') or choose another cache directory\n",
		       o->cache, o->cache, CACHE_STORE_DIR_NAME);
		return rc;
	}
	if (rc < 0) {
		*out = NULL;
		snprintf(why, why_size, "cache directory unusable: %s", strerror(-rc));
		log_error("cache '%s' unavailable: %s; serving '%s' without a cache", o->cache,
		          strerror(-rc), o->dir);
	}
	return 0;
}

/* The state record of a mounted daemon (d->state.cache_why was set by cache_open). */
static void state_fill(struct daemon_ctx *d, const struct daemon_options *o, bool supervised,
                       unsigned restarts, int64_t first_started)
{
	struct control_state *st = &d->state;

	st->cache_on = d->store != NULL;
	snprintf(st->dir, sizeof(st->dir), "%s", o->dir);
	snprintf(st->cache, sizeof(st->cache), "%s", o->cache);
	if (log_stderr_is_journal())
		snprintf(st->log, sizeof(st->log), "%s", DAEMON_LOG_JOURNAL);
	else
		control_log_path(o->dir, st->log, sizeof(st->log));
	control_socket_path(o->dir, st->socket, sizeof(st->socket));
	st->daemon_pid = getpid();
	st->watchdog_pid = supervised ? getppid() : 0;
	st->started = time(NULL);
	st->first_started = first_started ? first_started : st->started;
	st->restarts = restarts;
	st->threads = o->threads;
	snprintf(st->options, sizeof(st->options), "%s", o->options_text);
	{
		struct stat origin;
		st->owner_uid = fstat(fs_origin_fd(d->fs), &origin) == 0 ? (long)origin.st_uid : -1;
	}
	st->origin_fd = fs_origin_fd(d->fs);
	st->cache_size = d->store ? cache_store_capacity(d->store) : 0;
	st->bypass = false;
	st->passthrough = fs_passthrough_active(d->fs, st->passthrough_why, sizeof(st->passthrough_why));
	snprintf(st->transport, sizeof(st->transport), "%s", fuse_session_transport(d->session));
	snprintf(st->transport_why, sizeof(st->transport_why), "%s",
	         fuse_session_transport_why(d->session));
	st->file_handles = fs_handles_active(d->fs, st->file_handles_why, sizeof(st->file_handles_why));
	st->change_watch = fs_watch_active(d->fs, st->change_watch_why, sizeof(st->change_watch_why));
	{
		struct fs_catalog_counts c;
		if (!fs_catalog_report(d->fs, st->meta_catalog, sizeof(st->meta_catalog), &c))
			snprintf(st->meta_catalog, sizeof(st->meta_catalog), "%s",
			         !o->cache[0] ? "off (no cache)"
			                      : "off (experimental: start --meta-catalog)");
	}
	if (cache_dax_probe(o->cache, &d->cache_dax) < 0)
		snprintf(d->cache_dax.why, sizeof(d->cache_dax.why), "unknown: the cache directory "
		         "cannot be looked at");
}

/* The daemon's fd limit, raised to the hard limit (as root, to fs.nr_open first): every file
 * an application holds open through the mount costs the daemon an fd, and the limit of the
 * shell that started it (often 1024) says nothing about the daemon's needs. Tests set
 * CACHEMAX_FD_LIMIT to run the daemon under a small limit instead. */
static void fd_limit_raise(void)
{
	const char *test = getenv("CACHEMAX_FD_LIMIT");
	struct rlimit rl, want;
	FILE *f;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	want = rl;
	if (test && *test) {
		want.rlim_cur = want.rlim_max = (rlim_t)strtoull(test, NULL, 10);
	} else {
		unsigned long long nr_open = 0;
		if ((f = fopen("/proc/sys/fs/nr_open", "r"))) {
			if (fscanf(f, "%llu", &nr_open) != 1)
				nr_open = 0;
			fclose(f);
		}
		if (geteuid() == 0 && nr_open > want.rlim_max)
			want.rlim_max = (rlim_t)nr_open;
		want.rlim_cur = want.rlim_max;
	}
	if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
		log_info("cannot raise the hard fd limit to %llu: %s (needs CAP_SYS_RESOURCE)",
		         (unsigned long long)want.rlim_max, strerror(errno));
		want = rl;
		want.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) < 0)
			want = rl;
	}
	log_info("fd limit %llu (was %llu)", (unsigned long long)want.rlim_cur,
	         (unsigned long long)rl.rlim_cur);
}

/* The windows' sampler: a sample of the totals every second (stats_window.c). */
static void *sampler_main(void *arg)
{
	struct daemon_ctx *d = arg;
	static struct stats_passthrough pt;   /* large; this thread's only */
	static struct stats_totals t;
	struct timespec next;

	prctl(PR_SET_NAME, "cm-stats");
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&d->sampler_lock);
	while (!d->sampler_stop) {
		next.tv_sec++;
		if (pthread_cond_timedwait(&d->sampler_wake, &d->sampler_lock, &next) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&d->sampler_lock);
		if (d->bpf)
			stats_bpf_read(d->bpf, &pt);
		stats_totals_take(&d->stats, d->bpf ? &pt : NULL, (int64_t)(clock_now_ns() / 1000000), &t);
		stats_windows_push(&d->windows, &t);
		pthread_mutex_lock(&d->sampler_lock);
	}
	pthread_mutex_unlock(&d->sampler_lock);
	return NULL;
}

/* Count passthrough I/O in the kernel for this mount (or say why not) and start the windows. */
static void stats_start(struct daemon_ctx *d, const struct daemon_options *o)
{
	static struct stats_totals zero;
	pthread_condattr_t ca;
	struct stat mnt, cache;
	char why[256];
	int rc;

	if (!fs_passthrough_active(d->fs, why, sizeof(why))) {
		snprintf(d->bpf_why, sizeof(d->bpf_why), "passthrough is off (%s): the daemon serves "
		         "and counts every read", why);
	} else if (stat(o->dir, &mnt) < 0) {
		snprintf(d->bpf_why, sizeof(d->bpf_why), "cannot stat the mount: %s", strerror(errno));
	} else {
		if (!d->store || stat(o->cache, &cache) < 0)
			cache.st_dev = 0;  /* no cache: every passthrough read is from the original */
		char memo[PATH_MAX];
		snprintf(memo, sizeof(memo), "%s/bpf-refused", control_run_dir());
		rc = stats_bpf_open(mnt.st_dev, cache.st_dev, o->count_syscalls, memo, &d->bpf,
		                    d->bpf_why, sizeof(d->bpf_why));
		if (rc == 0)
			log_info("counting passthrough reads and writes in the kernel (BPF)%s%s",
			         d->bpf_why[0] ? ": " : "", d->bpf_why);
		else
			log_warn("passthrough reads are not counted, only opens: %s", d->bpf_why);
	}
	zero.t_ms = (int64_t)(clock_now_ns() / 1000000);
	stats_windows_init(&d->windows, zero.t_ms);
	stats_windows_push(&d->windows, &zero);
	pthread_mutex_init(&d->sampler_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->sampler_wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&d->sampler, NULL, sampler_main, d);
	d->sampler_running = rc == 0;
	if (rc)
		log_warn("no statistics windows: cannot start the sampler: %s", strerror(rc));
}

static void stats_stop(struct daemon_ctx *d)
{
	if (d->sampler_running) {
		pthread_mutex_lock(&d->sampler_lock);
		d->sampler_stop = true;
		pthread_cond_signal(&d->sampler_wake);
		pthread_mutex_unlock(&d->sampler_lock);
		pthread_join(d->sampler, NULL);
		d->sampler_running = false;
	}
	stats_bpf_close(d->bpf);
	d->bpf = NULL;
}

/* The daemon proper: returns 0 after a clean unmount, EXIT_STARTUP_FAILED if it never mounted. */
static int daemon_serve(const struct daemon_options *o, bool supervised, unsigned restarts,
                        int64_t first_started, int ready_fd)
{
	struct fuse_session_config cfg = {
		.mountpoint = o->dir,
		.fsname = "cachemax",
		.subtype = "cachemax",
		.threads = o->threads,
		.passthrough = o->passthrough && !o->openless,
		.extra_flags = FS_FUSE_INIT_FLAGS,
		.withheld_flags = o->openless ? FS_OPENLESS_WITHHELD_FLAGS : 0,
	};
	struct fs_config fcfg = {
		.passthrough = o->passthrough && !o->openless,
		.openless = o->openless,
		.attr_timeout = o->attr_timeout,
		.entry_timeout = o->entry_timeout,
	};
	static struct daemon_ctx d;  /* large (histograms): not on the stack; zero in each daemon */
	struct control_server *control = NULL;
	struct cache_store *store = NULL;
	struct fuse_session *se = NULL;
	struct fs *fs = NULL;
	const char *fault = getenv("CACHEMAX_FAULT"), *retry;
	int origin_fd, rc;

	prctl(PR_SET_NAME, "cachemaxd");
	fd_limit_raise();
	umask(DAEMON_UMASK);
	if (chdir("/") < 0)
		log_warn("cannot chdir to /: %s", strerror(errno));
	if (fault && *fault && sys_fault_parse(fault) < 0)
		log_warn("ignoring malformed CACHEMAX_FAULT '%s'", fault);

	/* The origin must be opened before our mount covers it: afterwards it is unreachable. */
	origin_fd = open(o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (origin_fd < 0) {
		report(ready_fd, "ERR cannot open '%s': %s\n", o->dir, strerror(errno));
		return EXIT_STARTUP_FAILED;
	}
	rc = cache_open(o, origin_fd, &store, ready_fd, d.state.cache_why, sizeof(d.state.cache_why));
	if (rc < 0) {
		close(origin_fd);
		return EXIT_STARTUP_FAILED;
	}
	cfg.mount_flags = mount_flags_like(o->dir);
	cfg.io_uring = io_uring_wanted(o->transport);
	cfg.max_stack_depth = stack_depth_for(origin_fd);
	fcfg.origin_fd = origin_fd;
	/* Before the mount: mounts at points below DIR are below the origin (any error: maybe). */
	fcfg.origin_submounts = control_submounts(o->dir, NULL, 0) != 0;
	stats_init(&d.stats);
	fcfg.stats = &d.stats;
	fcfg.store = store;
	if (store) {
		if (o->meta_catalog) {
			snprintf(d.catalog_path, sizeof(d.catalog_path), "%s/cachemax-v1/catalog", o->cache);
			fcfg.catalog_path = d.catalog_path;
		}
	}
	fcfg.complete_max = o->complete_max;
	fcfg.fill_threads = DAEMON_FILL_THREADS;
	fcfg.first_read_origin = !o->first_read_fill;
	for (unsigned i = 0; i < o->pin_count; i++)
		d.pin[i] = o->pin[i];
	for (unsigned i = 0; i < o->exclude_count; i++)
		d.exclude[i] = o->exclude[i];
	fcfg.pin = d.pin;
	fcfg.pin_count = o->pin_count;
	fcfg.exclude = d.exclude;
	fcfg.exclude_count = o->exclude_count;
	fcfg.breaker_changed = breaker_changed;
	fcfg.breaker_arg = &d;
	if ((retry = getenv("CACHEMAX_BYPASS_RETRY_MS")))  /* for tests: how long a bypass lasts */
		fcfg.breaker_retry_ms = (unsigned)strtoul(retry, NULL, 10);
	if ((retry = getenv("CACHEMAX_FILL_DELAY_MS")))  /* for tests: fs.h */
		fcfg.fill_delay_ms = (unsigned)strtoul(retry, NULL, 10);
	if ((retry = getenv("CACHEMAX_OFFER_DELAY_MS")))  /* for tests: fs.h */
		fcfg.offer_delay_ms = (unsigned)strtoul(retry, NULL, 10);
	if ((retry = getenv("CACHEMAX_CATALOG_DELAY_MS")))  /* for tests: fs.h */
		fcfg.catalog_delay_ms = (unsigned)strtoul(retry, NULL, 10);
	fcfg.watch_thread_fails = getenv("CACHEMAX_WATCH_THREAD_FAIL") != NULL;  /* tests: fs.h */
	if ((retry = getenv("CACHEMAX_SEAL_START_DELAY_MS")))  /* for tests: fs.h */
		fcfg.seal_start_delay_ms = (unsigned)strtoul(retry, NULL, 10);
	if ((retry = getenv("CACHEMAX_DIR_SNAP_MAX")))  /* for tests: fs.h */
		fcfg.dir_snap_max = (unsigned)strtoul(retry, NULL, 10);
	if ((retry = getenv("CACHEMAX_ORIGIN_FS_TYPE")))  /* for tests: fs.h */
		fcfg.origin_fs_type = strtoul(retry, NULL, 0);
	pthread_mutex_init(&d.state_lock, NULL);
	rc = fs_create(&fcfg, &fs);
	if (rc < 0) {
		close(origin_fd);
		cache_store_close(store);
		report(ready_fd, "ERR cannot prepare '%s': %s\n", o->dir, strerror(-rc));
		return EXIT_STARTUP_FAILED;
	}
	/* Openless: the kernel keeps file data across opens, which only the watcher's
	 * invalidations make safe, so the watch must hold before INIT is answered; its mark is
	 * taken now, before the mount, and nothing changed from here on is missed. Refused, not
	 * fallen back from: the user asked for this mode, and without the watch it is unsafe
	 * while the fallback (the default mode) would serve from INIT on without passthrough. An
	 * original whose files change elsewhere (NFS, SMB, FUSE...) is never watched (-EREMOTE):
	 * there the pages are kept for --attr-timeout and then revalidated, as names and
	 * attributes are (fs_openless.h, "Timed"). */
	if (o->openless && (rc = fs_watch_prepare(fs)) < 0 && rc != -EREMOTE) {
		char why[256];
		fs_watch_active(fs, why, sizeof(why));
		fs_free(fs);
		cache_store_close(store);
		report(ready_fd, "ERR --openless needs fanotify on the file system of '%s', which "
		       "is not available: %s; start without --openless\n", o->dir, why);
		return EXIT_STARTUP_FAILED;
	}
	if (o->openless && rc == -EREMOTE)
		log_info("--openless on an original whose files change elsewhere: file data, names and "
		         "attributes are kept for --attr-timeout (%g s), then checked against the "
		         "original", o->attr_timeout);
	cfg.withheld_flags |= fs_withheld_init_flags(fs);
	rc = fuse_session_mount(&cfg, fs_fuse_ops(), fs, &se);
	if (rc < 0) {
		fs_free(fs);
		cache_store_close(store);
		report(ready_fd, "ERR cannot mount over '%s': %s\n", o->dir, strerror(-rc));
		return EXIT_STARTUP_FAILED;
	}
	fs_passthrough_probe(fs);
	rc = fs_start_background(fs);
	if (rc < 0)
		log_warn("no background fills: %s", strerror(-rc));
	rc = fs_watch_start(fs);
	if (rc < 0 && o->openless) {
		/* Kept pages with no invalidation would go stale for good: no mount at all. */
		char why[256];
		fs_watch_active(fs, why, sizeof(why));
		log_error("--openless: the change watcher did not start after the mount (%s); "
		          "unmounting '%s'", why, o->dir);
		if (umount2(o->dir, MNT_DETACH) < 0)
			log_error("cannot unmount '%s': %s", o->dir, strerror(errno));
		fuse_session_wait(se);
		fs_watch_stop(fs);
		fs_openless_stop(fs);
		fuse_session_free(se);
		fs_free(fs);
		cache_store_close(store);
		report(ready_fd, "ERR --openless: the change watcher could not start after the mount "
		       "(%s), so '%s' was unmounted again; start without --openless, or retry\n",
		       why, o->dir);
		return EXIT_STARTUP_FAILED;
	}
	if (store) {
		/* Objects of files deleted or changed while the daemon was down: reclaimed behind
		 * the start, at a bounded rate (cache_store.h). The knobs are for tests. */
		struct cache_scrub_config scfg = {
			.origin_fd = origin_fd, .delay_ms = CACHE_SCRUB_DELAY_MS_DEFAULT,
			.interval_ms = CACHE_SCRUB_INTERVAL_MS_DEFAULT, .rate_per_sec = CACHE_SCRUB_RATE_DEFAULT,
		};
		/* Under a valid seal nothing changed while the daemon was down (fs_catalog.c): a
		 * first pass would find nothing, reading every object's inode from the original. */
		if (fs_catalog_sealed(fs))
			scfg.delay_ms = scfg.interval_ms;
		if ((retry = getenv("CACHEMAX_SCRUB_DELAY_MS")))
			scfg.delay_ms = (uint32_t)strtoul(retry, NULL, 10);
		if ((retry = getenv("CACHEMAX_SCRUB_INTERVAL_MS")))
			scfg.interval_ms = (uint32_t)strtoul(retry, NULL, 10);
		rc = cache_store_scrub_start(store, &scfg);
		if (rc < 0)
			log_warn("no scrub of the cache: %s", strerror(-rc));
	}
	d.session = se;
	d.fs = fs;
	d.store = store;
	stats_start(&d, o);

	pthread_mutex_lock(&d.state_lock);
	state_fill(&d, o, supervised, restarts, first_started);
	pthread_mutex_unlock(&d.state_lock);
	d.control.fs = fs;
	d.control.stats = daemon_stats;
	d.control.stats_arg = &d;
	d.control.cache_why = d.state.cache_why;
	rc = control_server_start(d.state.socket, o->public_stats, &d.control, &control);
	if (rc < 0) {
		log_warn("no control socket at '%s': %s (stats unavailable)", d.state.socket, strerror(-rc));
		d.state.socket[0] = '\0';
	}
	pthread_mutex_lock(&d.state_lock);
	rc = control_state_write(&d.state);
	pthread_mutex_unlock(&d.state_lock);
	if (rc < 0)
		log_warn("cannot write state file: %s", strerror(-rc));
	log_info("serving '%s' with %u threads, transport %s%s%s, passthrough %s%s%s", o->dir,
	         o->threads, d.state.transport, d.state.transport_why[0] ? ": " : "",
	         d.state.transport_why, d.state.passthrough ? "on" : "off",
	         d.state.passthrough ? "" : ": ", d.state.passthrough_why);
	if (d.state.passthrough)
		report(ready_fd, "OK passthrough on\n");
	else
		report(ready_fd, "OK passthrough off (%s)\n", d.state.passthrough_why);
	if (ready_fd >= 0)
		close(ready_fd);

	fuse_session_wait(se);
	log_info("'%s' was unmounted; daemon exits", o->dir);
	control_server_stop(control);
	stats_stop(&d);
	fs_watch_stop(fs);  /* it notifies through the session */
	fs_openless_stop(fs);  /* so does this one */
	fuse_session_free(se);
	io_uring_release(getpid());
	fs_free(fs);
	if (store) {
		rc = cache_store_close(store);
		if (rc < 0)
			log_warn("closing the cache store: %s", strerror(-rc));
	}
	return 0;
}

static bool wait_quantum(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	return nanosleep(&ts, NULL) == 0;
}

static void watchdog_main(const struct daemon_options *o, int ready_fd)
{
	int64_t first_started = time(NULL);
	unsigned restarts = 0;

	prctl(PR_SET_NAME, "cachemax-wd");
	log_set_prefix("cachemax-watchdog");
	for (;;) {
		int status;
		pid_t pid = fork();
		if (pid < 0) {
			log_error("cannot fork the daemon: %s", strerror(errno));
			report(ready_fd, "ERR cannot fork the daemon: %s\n", strerror(errno));
			break;
		}
		if (pid == 0) {
			log_set_prefix("cachemaxd");
			_exit(daemon_serve(o, true, restarts, first_started, ready_fd));
		}
		if (ready_fd >= 0) {
			close(ready_fd);  /* only the first daemon reports to the starting command */
			ready_fd = -1;
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		io_uring_release(pid);  /* a daemon that died cannot have done it */
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			break;  /* clean unmount */
		if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_STARTUP_FAILED && restarts == 0)
			break;  /* never started: the starting command has the reason */
		if (WIFSIGNALED(status))
			log_error("daemon %d was killed by signal %d", (int)pid, WTERMSIG(status));
		else
			log_error("daemon %d exited with status %d", (int)pid, WEXITSTATUS(status));
		/* Give the original directory back at once; applications go on uncached. */
		if (control_is_accelerated(o->dir)) {
			if (umount2(o->dir, MNT_DETACH) < 0)
				log_error("cannot unmount '%s': %s", o->dir, strerror(errno));
			else
				log_info("unmounted '%s' lazily; the original directory is visible again", o->dir);
		}
		if (restarts >= DAEMON_MAX_RESTARTS) {
			log_error("giving up on '%s' after %u restarts", o->dir, restarts);
			break;
		}
		restarts++;
		wait_quantum(RESTART_DELAY_MS * restarts);
		log_info("restarting the daemon for '%s' (restart %u of %u)", o->dir, restarts,
		         DAEMON_MAX_RESTARTS);
	}
	control_state_remove(o->dir);
}

int daemon_start(const struct daemon_options *o, char *summary, size_t size)
{
	char log_path[CONTROL_PATH_MAX], msg[1200], why[CONTROL_WHY_MAX];
	bool journal;
	size_t used = 0;
	int pipefd[2], rc;
	pid_t pid;

	rc = control_run_dir_prepare(why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "cachemax: %s\n", why);
		return rc;
	}
	/* Under systemd the output goes to the journal as it is; else to a file of our own. */
	journal = log_stderr_is_journal();
	control_log_path(o->dir, log_path, sizeof(log_path));
	if (!journal && mkdir(control_log_dir(), DAEMON_LOG_DIR_MODE) < 0 && errno != EEXIST) {
		fprintf(stderr, "cachemax: cannot create the log directory '%s': %s\n", control_log_dir(),
		        strerror(errno));
		return -errno;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int logfd = journal ? -1 : open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
		close(pipefd[0]);
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		if (logfd >= 0) {
			dup2(logfd, STDOUT_FILENO);
			dup2(logfd, STDERR_FILENO);
			log_set_rotation(log_path, LOG_ROTATE_BYTES);
		}
		watchdog_main(o, pipefd[1]);
		_exit(0);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t n = read(pipefd[0], msg + used, sizeof(msg) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		if (used >= sizeof(msg) - 1)
			break;
	}
	close(pipefd[0]);
	msg[used] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (!strncmp(msg, "OK ", 3)) {
		snprintf(summary, size, "%s", msg + 3);
		return 0;
	}
	if (!strncmp(msg, "ERR ", 4))
		fprintf(stderr, "cachemax: %s\n", msg + 4);
	else
		fprintf(stderr, "cachemax: the daemon for '%s' failed to start; see %s\n", o->dir,
		        journal ? DAEMON_LOG_JOURNAL : log_path);
	return -EIO;
}

int daemon_run_foreground(const struct daemon_options *o)
{
	return daemon_serve(o, false, 0, 0, -1) == 0 ? 0 : -EIO;
}
