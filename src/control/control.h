/* control: how the CLI finds and describes accelerated directories.
 *   - state records: one small key=value file per accelerated directory in the run directory
 *     (CACHEMAX_RUN_DIR, default /run/cachemax), written by the daemon, removed by the watchdog;
 *   - mount discovery from /proc/self/mountinfo (is DIR covered by our mount? dead or alive?);
 *   - the processes that hold files under a directory (for a refusing stop).
 * Errors: 0 or -errno; out-parameters written only on success.
 */
#ifndef CACHEMAX_CONTROL_H
#define CACHEMAX_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_PATH_MAX 4096
#define CONTROL_RUN_DIR_MODE 0755   /* root-owned: only root creates records and sockets */
#define CONTROL_STATE_MODE 0644     /* everyone may read a record (status), only root write it */
#define CONTROL_STATE_MAX 65536     /* a record is a few KiB; anything larger is not ours */

struct control_state {
	char dir[CONTROL_PATH_MAX];
	char cache[CONTROL_PATH_MAX];
	char log[CONTROL_PATH_MAX];
	char socket[CONTROL_PATH_MAX];  /* the daemon's control socket (control_socket.h) */
	pid_t daemon_pid;
	pid_t watchdog_pid;
	int64_t started;            /* unix seconds of the current daemon's mount */
	int64_t first_started;      /* unix seconds of the first start */
	unsigned restarts;
	bool passthrough;
	char passthrough_why[256];
	bool cache_on;                  /* the cache store opened */
	char cache_why[256];            /* why not, if not */
	unsigned threads;
	int origin_fd;                  /* the daemon's O_PATH fd on the covered original directory:
	                                 * /proc/DAEMON_PID/fd/ORIGIN_FD reaches the original, not
	                                 * the mount (-1 if unknown) */
	uint64_t cache_size;            /* capacity of the cache in bytes (0: cache off) */
	bool bypass;                    /* the cache was put in bypass after repeated failures */
	char transport[16];             /* "io_uring" or "dev_fuse" (older records: dev_fuse) */
	char transport_why[160];        /* why io_uring was asked for but is not in use */
	bool file_handles;              /* origin inodes are reached by file handle, else by name */
	char file_handles_why[160];     /* why not */
	bool change_watch;              /* changes behind the cache are seen by fanotify, else at
	                                 * the attribute timeout */
	char change_watch_why[160];     /* why not */
	char meta_catalog[160];         /* the metadata catalog's seal at the start: "valid",
	                                 * "void: why", or "off (why)" */
	long owner_uid;                 /* owner of the directory (the original's) at start; -1:
	                                 * unknown (older records) */
	char options[2048];             /* the start options that differ from the defaults, as
	                                 * command-line arguments (config/config_options.h) */
};

const char *control_run_dir(void);
/* Where the daemons' log files are (when systemd does not take their output to the journal):
 * CACHEMAX_LOG_DIR, else the run directory if CACHEMAX_RUN_DIR is set, else
 * CONTROL_LOG_DIR_DEFAULT (persistent, unlike /run). */
#define CONTROL_LOG_DIR_DEFAULT "/var/log/cachemax"
const char *control_log_dir(void);
/* Paths of the state and log files for an accelerated directory. */
void control_state_path(const char *dir, char *buf, size_t size);
void control_log_path(const char *dir, char *buf, size_t size);
void control_socket_path(const char *dir, char *buf, size_t size);
/* Written atomically (a private temporary file, mode CONTROL_STATE_MODE, renamed over it). */
int control_state_write(const struct control_state *st);
/* -EPERM if the file is not owned by root or is writable by others than root: a record anyone
 * else could have written would let them point the CLI at their own socket or process. */
int control_state_read(const char *path, struct control_state *st);
/* The record format (key=value lines) parsed from `len` bytes of text that need not be
 * NUL-terminated; unknown keys and junk lines are skipped. -EINVAL without a dir. Pure: fuzzed
 * by tests/fuzz/fuzz_control.c. */
int control_state_parse(const char *text, size_t len, struct control_state *st);
/* 0 if `st` (of a file the CLI or daemon trusts) is owned by root and has no group or other
 * write bit beyond those in mode_max; -EPERM otherwise. */
struct stat;
int control_owner_check(const struct stat *st, mode_t mode_max);
int control_state_remove(const char *dir);
/* The record of `dir`, found by its content (not its file name, which an older version may
 * have derived differently); -ENOENT if there is none. */
int control_state_find(const char *dir, struct control_state *st);
/* Call fn for every state record; stops early if fn returns non-zero. */
int control_state_each(int (*fn)(const struct control_state *st, void *arg), void *arg);

/* "ok" only while the directory is served with its cache (a bypassed or unusable cache serves
 * every read from the origin, which is not what the user asked for); otherwise what is wrong:
 * "daemon not running", "not mounted", "degraded: cache unusable", "degraded: cache bypassed".
 * `cachemax status` and `cachemax web` show it. */
const char *control_state_health(const struct control_state *st);

/* A process that exists and is not a zombie (an orphaned daemon may stay unreaped). */
bool control_pid_alive(pid_t pid);
/* Waits at most timeout_ms for pid to exit: true once it has (as control_pid_alive sees it),
 * false when the time ran out. Woken by the exit itself (a pidfd); where pidfd_open is refused,
 * control_pid_alive is asked every 10 ms. */
bool control_pid_wait_exit(pid_t pid, int timeout_ms);

struct control_mount {
	int mount_id;   /* as in /proc/PID/mountinfo and fdinfo's mnt_id */
	dev_t dev;      /* st_dev of files on it */
};

/* One line of /proc/self/mountinfo: the mount point and the root of the mount within its file
 * system (unescaped), the file system type and the mount source ("" if none). */
struct control_mount_entry {
	const char *point;
	const char *root;
	const char *fstype;
	const char *source;
	struct control_mount mount;
};
/* Call fn for every mount in mountinfo order (a later mount at the same point is on top of an
 * earlier one); stops early if fn returns non-zero. */
int control_mount_each(int (*fn)(const struct control_mount_entry *m, void *arg), void *arg);

/* The topmost mount at exactly `dir`: its fstype (e.g. "fuse.cachemax"). -ENOENT if none. */
int control_mount_type(const char *dir, char *fstype, size_t size);
bool control_is_accelerated(const char *dir);
/* Identity of the topmost mount at exactly `dir`; -ENOENT if `dir` is not a mount point. */
int control_mount_get(const char *dir, struct control_mount *m);

/* Lexically normalise `path` (absolute, no ".", "..", "//"), then resolve symlinks with
 * realpath(). Where that fails (a dead mount point answers ENOTCONN, or the last component does
 * not exist), the parent is resolved and the last component appended as typed; if the parent
 * cannot be resolved either, the lexical form is returned. A dangling symlink as the last
 * component is therefore not followed. -ENAMETOOLONG if the result does not fit. */
int control_resolve_path(const char *path, char *out, size_t size);

/* Processes other than this one with a cwd, root, open file or file mapping on the mount at
 * `mountpoint`, identified by mount id and device, not by path: the daemon's own fds on the
 * covered original directory do not count, whatever its version. Writes "pid (comm)" items
 * separated by ", " into buf; returns how many were found, or -ENOENT if no mount is there. */
int control_holders(const char *mountpoint, char *buf, size_t size);
/* The same, not counting the process `ignore` (the daemon of an accelerated directory above
 * the mount, whose node fds reach into it; 0: none). */
int control_holders_except(const char *mountpoint, pid_t ignore, char *buf, size_t size);

#endif
