/* daemon: the process tree behind one accelerated directory.
 *   cachemax start ──fork──▶ watchdog (own session) ──fork──▶ daemon (mount + FUSE workers)
 * The daemon opens the origin before mounting over it, mounts, records its state and reports
 * "ready" to the starting CLI through a pipe. The watchdog outlives it: if the daemon dies, the
 * watchdog lazily unmounts at once (the original directory is visible again) and restarts it,
 * a bounded number of times. A daemon that exits 0 (the mount was unmounted) ends the watchdog.
 */
#ifndef CACHEMAX_DAEMON_H
#define CACHEMAX_DAEMON_H

#include <stdbool.h>

#include "control/control.h"

#define DAEMON_MAX_RESTARTS 5

struct daemon_options {
	char dir[CONTROL_PATH_MAX];     /* resolved absolute path of the directory */
	char cache[CONTROL_PATH_MAX];   /* resolved absolute path of the cache directory */
	bool passthrough;
	unsigned threads;
	double attr_timeout;
	double entry_timeout;
};

/* Start the watchdog and daemon; returns once the mount works (0) or failed (-errno; the
 * reason has been printed to stderr). `summary` receives a line for the user. */
int daemon_start(const struct daemon_options *o, char *summary, size_t size);
/* Serve in the foreground without a watchdog (for debugging); returns at unmount. */
int daemon_run_foreground(const struct daemon_options *o);

#endif
