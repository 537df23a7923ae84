/* control_trust: what the daemon (root) may rely on when other users share the machine.
 *   - Trusted paths (like ssh's StrictModes): every existing component of the path, from "/"
 *     down, is owned by root; a directory above the last component is not writable by group or
 *     others unless it is sticky (/tmp, /dev/shm: there nobody else can rename or remove the
 *     root-owned entry below it); the last component is not writable by group or others at
 *     all. A path that fails cannot be swapped or filled by another user.
 *   - The run directory (state records, sockets, logs): a trusted path, mode 0755.
 *   - Where not to mount: "/", /proc, /sys, /dev, /run and pseudo file systems; directories
 *     with mount points below them (listed).
 * Refusals come with `why`: what is wrong, with which path, and the command that fixes it.
 * Errors: 0 or -errno (-EPERM: untrusted, -ENOENT: a component is missing).
 */
#ifndef CACHEMAX_CONTROL_TRUST_H
#define CACHEMAX_CONTROL_TRUST_H

#include <stddef.h>

#define CONTROL_WHY_MAX 1024

/* Check `path` (absolute, resolved) by the rule above. `what` names it in `why` (e.g. "the
 * cache directory"). A path whose tail does not exist yet is checked as far as it exists and
 * returns 0 (the caller creates the rest as root, then checks again). */
int control_trust_path(const char *path, const char *what, char *why, size_t size);

/* Create the run directory if missing (mode 0755) and check it as a trusted path whose last
 * component must also be mode 0755 or stricter. */
int control_run_dir_prepare(char *why, size_t size);
/* For the CLI before it reads records: the run directory (if it exists) is trusted, and every
 * *.state and *.sock in it is root's (records not writable by others). -EPERM with why. */
int control_run_dir_check(char *why, size_t size);

/* -EPERM if `dir` (resolved) is "/", /proc, /sys, /dev, /run, below /proc or /sys, or on a
 * pseudo file system (proc, sysfs, devtmpfs, devpts, cgroup, debugfs, tracefs, securityfs,
 * bpf, pstore, efivarfs, configfs, mqueue, fusectl). */
int control_pseudo_dir(const char *dir, char *why, size_t size);

/* Mount points strictly below `dir`: writes "PATH (FSTYPE)" items separated by ", " into buf
 * and returns how many there are (0: none), or -errno. */
int control_submounts(const char *dir, char *buf, size_t size);

#endif
