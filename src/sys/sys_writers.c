/* sys_writers: writers of a block device's files that no fanotify event will announce (see
 * sys_writers.h). */
#include "sys/sys_writers.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sys/sys.h"

/* The device of the file behind path (a /proc magic link, a loop device's backing file),
 * from the attributes the kernel already has (AT_STATX_DONT_SYNC: no request to a network or
 * FUSE file system, which could hang). */
static bool on_device(const char *path, dev_t dev)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0)
		return false;
	return makedev(stx.stx_dev_major, stx.stx_dev_minor) == dev;
}

/* The first line of a small file of the system, its newline cut: its length, or -errno. */
static ssize_t first_line(const char *path, char *buf, size_t size)
{
	ssize_t n = sys_read_file(path, buf, size);
	if (n >= 0)
		buf[strcspn(buf, "\n")] = '\0';
	return n;
}

/* Is the open file whose fdinfo is at info open for writing? (Unreadable: taken as yes.) */
static bool open_for_writing(const char *info)
{
	char buf[4096], *flags;
	ssize_t n = sys_read_file(info, buf, sizeof(buf));

	if (n == -ENOENT)
		return false;   /* closed meanwhile: not a writer */
	if (n < 0)
		return true;
	flags = strstr(buf, "flags:");
	return !flags || (strtoul(flags + 6, NULL, 8) & O_ACCMODE) != O_RDONLY;
}

/* A process writes dev's files unannounced if it maps one shared and writable, or has an AIO
 * context (its ring is mapped as "/[aio]") and a file of dev open for writing. (A write(2) or
 * io_uring writer raises FAN_MODIFY as it writes: not one of these.) */
static bool pid_writes(const char *pid, dev_t dev)
{
	char path[600], *line = NULL;
	size_t cap = 0;
	bool hit = false, aio = false;
	struct dirent *de;
	DIR *fds;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	maps = fopen(path, "re");
	if (!maps)
		return false;   /* gone meanwhile, or not ours to read (sys_writers.h) */
	while (!hit && getline(&line, &cap, maps) > 0) {
		char perms[8];
		unsigned major, minor;
		unsigned long ino;
		if (strstr(line, " /[aio]"))
			aio = true;
		else if (sscanf(line, "%*s %7s %*s %x:%x %lu", perms, &major, &minor, &ino) == 4 && ino != 0)
			hit = perms[1] == 'w' && perms[3] == 's' && makedev(major, minor) == dev;
	}
	free(line);
	fclose(maps);
	if (hit || !aio)
		return hit;
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	if (!fds)
		return false;
	while (!hit && (de = readdir(fds))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, de->d_name);
		if (!on_device(path, dev))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, de->d_name);
		hit = open_for_writing(path);
	}
	closedir(fds);
	return hit;
}

static void comm_of(const char *pid, char *out, size_t size)
{
	char path[300], comm[64];

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	if (first_line(path, comm, sizeof(comm)) < 0)
		strcpy(comm, "?");
	snprintf(out, size, "%s (%s)", pid, comm);
}

/* A loop device attached read-write whose backing file is on dev: 1 and its name in who. */
static int loop_writes(dev_t dev, char *who, size_t who_size)
{
	char path[600], line[4096];
	struct dirent *de;
	DIR *dir = opendir("/sys/block");
	int found = 0;

	if (!dir)
		return 0;
	while (!found && (de = readdir(dir))) {
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/ro", de->d_name);
		if (first_line(path, line, sizeof(line)) >= 0 && !strcmp(line, "1"))
			continue;   /* attached read-only: writes nothing */
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		if (first_line(path, line, sizeof(line)) <= 0)
			continue;   /* not attached */
		if (on_device(line, dev)) {
			snprintf(who, who_size, "loop device %s", de->d_name);
			found = 1;
		}
	}
	closedir(dir);
	return found;
}

int sys_writers_of_device(dev_t dev, char *who, size_t who_size)
{
	char self[24];
	struct dirent *de;
	DIR *dir;
	int found = 0;

	if (who_size)
		who[0] = '\0';
	snprintf(self, sizeof(self), "%d", (int)getpid());
	if (!(dir = opendir("/proc")))
		return -errno;
	while (!found && (de = readdir(dir))) {
		if (!isdigit((unsigned char)de->d_name[0]) || !strcmp(de->d_name, self))
			continue;
		if (pid_writes(de->d_name, dev)) {
			comm_of(de->d_name, who, who_size);
			found = 1;
		}
	}
	closedir(dir);
	return found ? found : loop_writes(dev, who, who_size);
}
