/* control_trust: trusted paths, the run directory, where not to mount (see control_trust.h). */
#include "control/control_trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "control/control.h"

#define GROUP_OTHER_WRITE (S_IWGRP | S_IWOTH)

/* One component: `last` is the path itself (no group/other write at all); above it a sticky
 * directory may be writable by all. */
static int trust_component(const char *path, const struct stat *st, bool last, const char *what,
                           const char *full, char *why, size_t size)
{
	if (!S_ISDIR(st->st_mode) && !last) {
		snprintf(why, size, "'%s' above %s '%s' is not a directory", path, what, full);
		return -ENOTDIR;
	}
	if (st->st_uid != 0) {
		snprintf(why, size, "%s '%s' is not safe: '%s' is owned by uid %u, not root, so that "
		         "user could replace what the daemon reads and serves to everyone; run "
		         "'chown root:root %s' or choose a directory that only root can write to",
		         what, full, path, (unsigned)st->st_uid, path);
		return -EPERM;
	}
	if ((st->st_mode & GROUP_OTHER_WRITE) && (last || !(st->st_mode & S_ISVTX))) {
		snprintf(why, size, "%s '%s' is not safe: '%s' is writable by %s (mode %04o), so "
		         "other users could %s; run 'chmod go-w %s' or choose a directory that only "
		         "root can write to", what, full, path,
		         (st->st_mode & S_IWOTH) ? "every user" : "its group",
		         (unsigned)(st->st_mode & 07777),
		         last ? "plant or change files in it" : "replace what lies below it", path);
		return -EPERM;
	}
	return 0;
}

/* lstat one prefix and check it; 1 if it does not exist (nor anything below it). */
static int trust_prefix(const char *prefix, bool last, const char *what, const char *full,
                        char *why, size_t size)
{
	struct stat st;

	if (lstat(prefix, &st) < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(why, size, "cannot examine '%s' of %s '%s': %s", prefix, what, full, strerror(errno));
		return -errno;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, size, "'%s' in %s '%s' is a symbolic link: give the resolved path",
		         prefix, what, full);
		return -ELOOP;
	}
	return trust_component(prefix, &st, last, what, full, why, size);
}

int control_trust_path(const char *path, const char *what, char *why, size_t size)
{
	char prefix[CONTROL_PATH_MAX];
	size_t len = strlen(path);
	int rc;

	if (path[0] != '/' || len >= sizeof(prefix)) {
		snprintf(why, size, "%s '%s' is not an absolute path", what, path);
		return -EINVAL;
	}
	rc = trust_prefix("/", len == 1, what, path, why, size);
	for (size_t i = 2; rc == 0 && i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		rc = trust_prefix(prefix, i == len, what, path, why, size);
	}
	return rc > 0 ? 0 : rc;
}

int control_run_dir_prepare(char *why, size_t size)
{
	const char *run = control_run_dir();
	struct stat st;
	int rc;

	if (mkdir(run, CONTROL_RUN_DIR_MODE) < 0 && errno != EEXIST) {
		snprintf(why, size, "cannot create the run directory '%s': %s", run, strerror(errno));
		return -errno;
	}
	rc = control_trust_path(run, "the run directory", why, size);
	if (rc < 0)
		return rc;
	if (lstat(run, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, size, "the run directory '%s' is not a directory", run);
		return -ENOTDIR;
	}
	return 0;
}

int control_run_dir_check(char *why, size_t size)
{
	const char *run = control_run_dir();
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc;

	if (lstat(run, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = control_trust_path(run, "the run directory", why, size);
	if (rc < 0)
		return rc;
	d = opendir(run);
	if (!d)
		return errno == EACCES ? 0 : -errno;  /* unreadable to this user: nothing to be fooled by */
	while ((de = readdir(d))) {
		char path[CONTROL_PATH_MAX];
		size_t len = strlen(de->d_name);
		bool record = len > 6 && !strcmp(de->d_name + len - 6, ".state");
		bool sock = len > 5 && !strcmp(de->d_name + len - 5, ".sock");
		if (!record && !sock)
			continue;
		snprintf(path, sizeof(path), "%s/%s", run, de->d_name);
		if (lstat(path, &st) < 0)
			continue;  /* gone meanwhile */
		if (control_owner_check(&st, record ? CONTROL_STATE_MODE : 0777) < 0 ||
		    (record && !S_ISREG(st.st_mode)) || (sock && !S_ISSOCK(st.st_mode))) {
			snprintf(why, size, "'%s' (owner uid %u, mode %04o) is not a %s that only root "
			         "could have written: someone else may have put it there to mislead this "
			         "command; remove it ('rm %s') and check who can write to '%s'", path,
			         (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			         record ? "state record" : "control socket", path, run);
			rc = -EPERM;
			break;
		}
	}
	closedir(d);
	return rc;
}

static bool path_below(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (!strcmp(outer, "/"))
		return inner[0] == '/' && inner[1] != '\0';
	return !strncmp(inner, outer, n) && inner[n] == '/';
}

struct containing_mount {
	const char *dir;
	size_t best;
	char fstype[64];
};

/* The mount that holds `dir`: the last one in mountinfo whose point is the longest prefix. */
static int containing_one(const struct control_mount_entry *e, void *arg)
{
	struct containing_mount *c = arg;
	size_t n = strlen(e->point);
	if ((path_below(c->dir, e->point) || !strcmp(c->dir, e->point)) && n >= c->best) {
		c->best = n;
		snprintf(c->fstype, sizeof(c->fstype), "%s", e->fstype);
	}
	return 0;
}

int control_pseudo_dir(const char *dir, char *why, size_t size)
{
	static const char *const system_dirs[] = { "/", "/proc", "/sys", "/dev", "/run" };
	static const char *const pseudo_types[] = {
		"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
		"securityfs", "bpf", "pstore", "efivarfs", "configfs", "mqueue", "fusectl", "binfmt_misc",
		"hugetlbfs", "autofs", "nsfs",
	};
	struct containing_mount c = { .dir = dir };
	struct statfs sf;

	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++)
		if (!strcmp(dir, system_dirs[i])) {
			snprintf(why, size, "cannot accelerate '%s': it is a system directory with other "
			         "mounts below it; choose a directory of your data", dir);
			return -EPERM;
		}
	if (path_below(dir, "/proc") || path_below(dir, "/sys") ||
	    (statfs(dir, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC))) {
		snprintf(why, size, "cannot accelerate '%s': it is part of the kernel's /proc or /sys", dir);
		return -EPERM;
	}
	if (control_mount_each(containing_one, &c) == 0 && c.fstype[0])
		for (size_t i = 0; i < sizeof(pseudo_types) / sizeof(pseudo_types[0]); i++)
			if (!strcmp(c.fstype, pseudo_types[i])) {
				snprintf(why, size, "cannot accelerate '%s': it is on a %s pseudo file system, "
				         "not stored data", dir, c.fstype);
				return -EPERM;
			}
	return 0;
}

struct submounts {
	const char *dir;
	char *buf;
	size_t size, used;
	int count;
};

static int submount_one(const struct control_mount_entry *e, void *arg)
{
	struct submounts *s = arg;
	if (!path_below(e->point, s->dir))
		return 0;
	if (s->used < s->size) {
		int n = snprintf(s->buf + s->used, s->size - s->used, "%s%s (%s)", s->count ? ", " : "",
		                 e->point, e->fstype);
		if (n > 0)
			s->used += (size_t)n;
	}
	s->count++;
	return 0;
}

int control_submounts(const char *dir, char *buf, size_t size)
{
	struct submounts s = { .dir = dir, .buf = buf, .size = size };
	int rc;

	if (size)
		buf[0] = '\0';
	rc = control_mount_each(submount_one, &s);
	return rc < 0 ? rc : s.count;
}
