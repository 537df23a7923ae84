/* daemon: the process tree behind one accelerated directory.
 *   cachemax start ──fork──▶ watchdog (own session) ──fork──▶ daemon (mount + FUSE workers)
 * The daemon opens the origin before mounting over it, mounts, records its state and reports
 * "ready" to the starting CLI through a pipe. The watchdog outlives it: if the daemon dies, the
 * watchdog lazily unmounts at once (the original directory is visible again) and restarts it,
 * a bounded number of times. A daemon that exits 0 (the mount was unmounted) ends the watchdog.
 * Their output goes to the journal when systemd runs start (JOURNAL_STREAM), else to a log
 * file in control_log_dir(), rotated by size (util/log.h).
 */
#ifndef CACHEMAX_DAEMON_H
#define CACHEMAX_DAEMON_H

#include <stdbool.h>

#include "control/control.h"

#define DAEMON_MAX_RESTARTS 5
#define DAEMON_MAX_GLOBS 16
#define DAEMON_GLOB_MAX 512
#define DAEMON_SIZE_MIN (1ull << 20)
#define DAEMON_SIZE_DEFAULT_PERCENT 80           /* of the cache file system's free space */
#define DAEMON_COMPLETE_MAX_DEFAULT (64ull << 20) /* files completed in the background */
#define DAEMON_UMASK 022                          /* its files and socket are never writable by others */
#define DAEMON_THREADS_DEFAULT 4                  /* FUSE workers */
#define DAEMON_THREADS_MAX 16                     /* = FUSE_SESSION_MAX_THREADS (checked in daemon.c) */
#define DAEMON_TIMEOUT_DEFAULT 1.0                /* attribute and entry timeouts, seconds */
#define DAEMON_OPTIONS_TEXT_MAX 2048              /* the options line of the state record */
#define DAEMON_LOG_DIR_MODE 0755                  /* control_log_dir(): root's, readable */
#define DAEMON_LOG_JOURNAL "the journal (journalctl -u cachemax)"  /* the log under systemd */
#define DAEMON_FILL_THREADS 4                     /* background fills and read-ahead: 2 origin reads in flight */

/* How the kernel should send requests (see io_uring_wanted in daemon.c). */
enum daemon_transport {
	DAEMON_TRANSPORT_AUTO,      /* io_uring if the fuse module's enable_uring is already Y */
	DAEMON_TRANSPORT_IO_URING,  /* --io-uring: turn enable_uring on if needed */
	DAEMON_TRANSPORT_DEV_FUSE,  /* --no-io-uring */
};

struct daemon_options {
	char dir[CONTROL_PATH_MAX];     /* resolved absolute path of the directory */
	char cache[CONTROL_PATH_MAX];   /* resolved absolute path of the cache directory */
	bool passthrough;
	enum daemon_transport transport;
	unsigned threads;
	double attr_timeout;
	double entry_timeout;
	uint64_t size;                  /* cache capacity in bytes; 0: the store's saved size, or
	                                 * DAEMON_SIZE_DEFAULT_PERCENT of the free space at first start */
	uint64_t size_default;          /* capacity at first start without --size (the CLI subtracts
	                                 * what other caches on the same file system may still
	                                 * fill); 0: DAEMON_SIZE_DEFAULT_PERCENT of the free space */
	uint64_t complete_max;          /* files up to this size are completed in the background
	                                 * after their first read; 0: none */
	bool first_read_fill;           /* --first-read fill: first reads fill in user space
	                                 * instead of passing through to the origin */
	bool public_stats;              /* --public-stats: any local user may read status and stats
	                                 * through the control socket (changes stay root's) */
	bool count_syscalls;            /* --count-syscalls: where fexit is refused, count
	                                 * passthrough reads with system-call hooks (stats_bpf.h) */
	bool meta_catalog;              /* --meta-catalog: the metadata catalog and its seal
	                                 * (experimental, off by default) */
	bool openless;                  /* --openless: opens and closes of files never reach the
	                                 * daemon (FUSE_NO_OPEN_SUPPORT); needs the change watcher;
	                                 * no passthrough (fs.h, fs_openless.c) */
	char options_text[DAEMON_OPTIONS_TEXT_MAX];  /* the start options that differ from the
	                                             * defaults, as arguments: the state record's
	                                             * "options" (config_start_format) */
	unsigned pin_count, exclude_count;
	char pin[DAEMON_MAX_GLOBS][DAEMON_GLOB_MAX];      /* globs relative to dir (fnmatch, FNM_PATHNAME) */
	char exclude[DAEMON_MAX_GLOBS][DAEMON_GLOB_MAX];  /* never cached */
};

/* Start the watchdog and daemon; returns once the mount works (0) or failed (-errno; the
 * reason has been printed to stderr). `summary` receives a line for the user. */
int daemon_start(const struct daemon_options *o, char *summary, size_t size);
/* Serve in the foreground without a watchdog (for debugging); returns at unmount. */
int daemon_run_foreground(const struct daemon_options *o);

#endif
