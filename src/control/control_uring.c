/* control_uring: who turned on enable_uring, machine-wide (see control_uring.h). */
#include "control/control_uring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/control.h"

#define RECORD_TEXT_MAX 2048

struct uring_record {
	char previous;                 /* 'N' or 'Y'; 0: no record (nothing of ours to restore) */
	unsigned count;
	pid_t holders[CONTROL_URING_HOLDERS_MAX];
};

static const char *param_path(void)
{
	const char *p = getenv("CACHEMAX_URING_PARAM");
	return p && *p ? p : CONTROL_URING_PARAM;
}

static const char *record_path(void)
{
	const char *p = getenv("CACHEMAX_URING_RECORD");
	return p && *p ? p : CONTROL_URING_RECORD;
}

static int param_read(bool *on)
{
	char value[8] = "";
	int fd = open(param_path(), O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, value, sizeof(value) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	*on = value[0] == 'Y' || value[0] == '1';
	return 0;
}

static int param_write(bool on)
{
	int fd = open(param_path(), O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, on ? "Y\n" : "N\n", 2) != 2)
		rc = -errno;
	close(fd);
	return rc;
}

static void record_parse(int fd, struct uring_record *r)
{
	char text[RECORD_TEXT_MAX], *line, *save = NULL;
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	memset(r, 0, sizeof(*r));
	if (n <= 0)
		return;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "previous=", 9) && (line[9] == 'N' || line[9] == 'Y')) {
			r->previous = line[9];
		} else if (!strncmp(line, "holders=", 8)) {
			char *p = line + 8, *end;
			for (;;) {
				long pid = strtol(p, &end, 10);
				if (end == p || r->count == CONTROL_URING_HOLDERS_MAX)
					break;
				if (pid > 0)
					r->holders[r->count++] = (pid_t)pid;
				p = end;
			}
		}
	}
}

static int record_store(int fd, const struct uring_record *r)
{
	char text[RECORD_TEXT_MAX];
	size_t used = 0;

	if (r->previous) {
		used += (size_t)snprintf(text, sizeof(text), "previous=%c\nholders=", r->previous);
		for (unsigned i = 0; i < r->count && used < sizeof(text) - 16; i++)
			used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%d", i ? " " : "",
			                         (int)r->holders[i]);
		text[used++] = '\n';
	}
	if (ftruncate(fd, 0) < 0 || (used && pwrite(fd, text, used, 0) != (ssize_t)used))
		return -errno;
	return 0;
}

/* Keep the live holders other than `drop`. */
static void record_prune(struct uring_record *r, pid_t drop)
{
	unsigned kept = 0;
	for (unsigned i = 0; i < r->count; i++)
		if (r->holders[i] != drop && control_pid_alive(r->holders[i]))
			r->holders[kept++] = r->holders[i];
	r->count = kept;
}

static void record_add(struct uring_record *r, pid_t holder)
{
	for (unsigned i = 0; i < r->count; i++)
		if (r->holders[i] == holder)
			return;
	if (r->count < CONTROL_URING_HOLDERS_MAX)
		r->holders[r->count++] = holder;
}

/* The record, opened and locked; the caller closes the fd (which unlocks). */
static int record_lock(void)
{
	int fd = open(record_path(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, CONTROL_STATE_MODE);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || control_owner_check(&st, CONTROL_STATE_MODE) < 0 ||
	    !S_ISREG(st.st_mode)) {
		close(fd);
		return -EPERM;  /* someone else's file: never act on what it says */
	}
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int rc = -errno;
			close(fd);
			return rc;
		}
	return fd;
}

int control_uring_acquire(pid_t holder, bool turn_on, bool *on, bool *turned_on)
{
	struct uring_record r;
	bool value, changed = false;
	int fd, rc;

	rc = param_read(&value);
	if (rc < 0)
		return rc;
	if (value && !turn_on) {
		/* Join only a value we set; an administrator's needs no record. Cheap check first. */
		struct stat st;
		if (stat(record_path(), &st) < 0 || st.st_size == 0) {
			*on = true;
			*turned_on = false;
			return 0;
		}
	}
	if (!value && !turn_on) {
		*on = false;
		*turned_on = false;
		return 0;
	}
	fd = record_lock();
	if (fd < 0)
		return fd;
	record_parse(fd, &r);
	record_prune(&r, 0);
	rc = param_read(&value);  /* again, under the lock */
	if (rc == 0 && !value && turn_on) {
		rc = param_write(true);
		if (rc == 0) {
			changed = true;
			value = true;
			if (!r.previous)
				r.previous = 'N';
		}
	}
	if (rc == 0 && value && r.previous) {
		record_add(&r, holder);
		rc = record_store(fd, &r);
	}
	close(fd);
	if (rc < 0)
		return rc;
	*on = value;
	*turned_on = changed;
	return 0;
}

int control_uring_release(pid_t holder, bool *restored)
{
	struct uring_record r;
	bool done = false;
	struct stat st;
	int fd, rc = 0;

	if (restored)
		*restored = false;
	if (stat(record_path(), &st) < 0 || st.st_size == 0)
		return 0;  /* nothing of ours recorded */
	fd = record_lock();
	if (fd < 0)
		return fd;
	record_parse(fd, &r);
	if (r.previous) {
		record_prune(&r, holder);
		if (r.count == 0) {
			rc = param_write(r.previous == 'Y');
			if (rc == 0 || rc == -ENOENT) {  /* -ENOENT: the module is gone, so is its value */
				done = rc == 0;
				r.previous = 0;
				rc = 0;
			}
		}
		if (rc == 0)
			rc = record_store(fd, &r);
	}
	close(fd);
	if (restored)
		*restored = done;
	return rc;
}
