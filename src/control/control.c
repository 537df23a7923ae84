/* control: state records, mount discovery and open-file holders (see control.h). */
#include "control/control.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sys/sys.h"
#include "util/file.h"

const char *control_run_dir(void)
{
	const char *d = getenv("CACHEMAX_RUN_DIR");
	return d && *d ? d : "/run/cachemax";
}

static uint64_t path_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;  /* FNV-1a offset basis */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void control_state_path(const char *dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".state", control_run_dir(), path_hash(dir));
}

const char *control_log_dir(void)
{
	const char *d = getenv("CACHEMAX_LOG_DIR");
	if (d && *d)
		return d;
	/* A private run directory (tests) keeps its logs with it, not in the machine's. */
	d = getenv("CACHEMAX_RUN_DIR");
	return d && *d ? d : CONTROL_LOG_DIR_DEFAULT;
}

void control_log_path(const char *dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".log", control_log_dir(), path_hash(dir));
}

void control_socket_path(const char *dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".sock", control_run_dir(), path_hash(dir));
}

/* Values are written on one line each: a newline or backslash in a path is escaped. */
static void put_text(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s=", key);
	for (; *value; value++) {
		if (*value == '\\')
			fputs("\\\\", f);
		else if (*value == '\n')
			fputs("\\n", f);
		else
			fputc(*value, f);
	}
	fputc('\n', f);
}

static void get_text(char *dst, size_t size, const char *value)
{
	size_t n = 0;
	for (; *value && n + 1 < size; value++) {
		if (value[0] == '\\' && value[1]) {
			value++;
			dst[n++] = *value == 'n' ? '\n' : *value;
		} else {
			dst[n++] = *value;
		}
	}
	dst[n] = '\0';
}

/* The record's text, written with stdio into a memory stream (no partial file is ever seen). */
static char *state_format(const struct control_state *st, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	put_text(f, "dir", st->dir);
	put_text(f, "cache", st->cache);
	put_text(f, "log", st->log);
	put_text(f, "socket", st->socket);
	put_text(f, "passthrough_why", st->passthrough_why);
	put_text(f, "cache_why", st->cache_why);
	put_text(f, "transport", st->transport[0] ? st->transport : "dev_fuse");
	put_text(f, "transport_why", st->transport_why);
	put_text(f, "file_handles_why", st->file_handles_why);
	put_text(f, "change_watch_why", st->change_watch_why);
	put_text(f, "meta_catalog", st->meta_catalog);
	put_text(f, "options", st->options);
	fprintf(f, "owner_uid=%ld\n", st->owner_uid);
	fprintf(f, "daemon_pid=%d\nwatchdog_pid=%d\nstarted=%" PRId64 "\nfirst_started=%" PRId64
	        "\nrestarts=%u\npassthrough=%d\nthreads=%u\ncache_on=%d\norigin_fd=%d\ncache_size=%" PRIu64
	        "\nbypass=%d\nfile_handles=%d\nchange_watch=%d\n",
	        (int)st->daemon_pid, (int)st->watchdog_pid, st->started, st->first_started,
	        st->restarts, st->passthrough ? 1 : 0, st->threads, st->cache_on ? 1 : 0,
	        st->origin_fd, st->cache_size, st->bypass ? 1 : 0, st->file_handles ? 1 : 0,
	        st->change_watch ? 1 : 0);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Written to a private temporary file with an explicit mode (whatever the umask), then renamed
 * over the record: readers see the old record or the new one, never a part. */
int control_state_write(const struct control_state *st)
{
	char path[CONTROL_PATH_MAX];
	size_t len = 0;
	char *text;
	int rc;

	if (mkdir(control_run_dir(), CONTROL_RUN_DIR_MODE) < 0 && errno != EEXIST)
		return -errno;
	control_state_path(st->dir, path, sizeof(path));
	text = state_format(st, &len);
	if (!text)
		return -ENOMEM;
	rc = file_replace(path, text, len, CONTROL_STATE_MODE, false);
	free(text);
	return rc;
}

int control_state_parse(const char *text, size_t len, struct control_state *out)
{
	struct control_state st;
	char line[CONTROL_PATH_MAX + 32];
	size_t pos = 0;

	memset(&st, 0, sizeof(st));
	st.origin_fd = -1;
	st.owner_uid = -1;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *eq, *v;

		if (n >= sizeof(line)) {  /* longer than any value we write: not ours */
			pos += n + 1;
			continue;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (memchr(line, '\0', n))
			continue;  /* a NUL inside a line: junk */
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "dir")) get_text(st.dir, sizeof(st.dir), v);
		else if (!strcmp(line, "cache")) get_text(st.cache, sizeof(st.cache), v);
		else if (!strcmp(line, "log")) get_text(st.log, sizeof(st.log), v);
		else if (!strcmp(line, "socket")) get_text(st.socket, sizeof(st.socket), v);
		else if (!strcmp(line, "daemon_pid")) st.daemon_pid = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "watchdog_pid")) st.watchdog_pid = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "started")) st.started = strtoll(v, NULL, 10);
		else if (!strcmp(line, "first_started")) st.first_started = strtoll(v, NULL, 10);
		else if (!strcmp(line, "restarts")) st.restarts = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(line, "passthrough")) st.passthrough = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "passthrough_why")) get_text(st.passthrough_why, sizeof(st.passthrough_why), v);
		else if (!strcmp(line, "threads")) st.threads = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(line, "cache_on")) st.cache_on = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "cache_why")) get_text(st.cache_why, sizeof(st.cache_why), v);
		else if (!strcmp(line, "origin_fd")) st.origin_fd = (int)strtol(v, NULL, 10);
		else if (!strcmp(line, "cache_size")) st.cache_size = strtoull(v, NULL, 10);
		else if (!strcmp(line, "bypass")) st.bypass = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "transport")) get_text(st.transport, sizeof(st.transport), v);
		else if (!strcmp(line, "transport_why")) get_text(st.transport_why, sizeof(st.transport_why), v);
		else if (!strcmp(line, "file_handles")) st.file_handles = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "file_handles_why")) get_text(st.file_handles_why, sizeof(st.file_handles_why), v);
		else if (!strcmp(line, "change_watch")) st.change_watch = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "change_watch_why")) get_text(st.change_watch_why, sizeof(st.change_watch_why), v);
		else if (!strcmp(line, "meta_catalog")) get_text(st.meta_catalog, sizeof(st.meta_catalog), v);
		else if (!strcmp(line, "options")) get_text(st.options, sizeof(st.options), v);
		else if (!strcmp(line, "owner_uid")) st.owner_uid = strtol(v, NULL, 10);
	}
	if (!st.transport[0])
		snprintf(st.transport, sizeof(st.transport), "dev_fuse");
	if (!st.dir[0])
		return -EINVAL;
	*out = st;
	return 0;
}

int control_state_read(const char *path, struct control_state *out)
{
	char *text;
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	rc = control_owner_check(&st, CONTROL_STATE_MODE);
	if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size > CONTROL_STATE_MAX))
		rc = -EINVAL;
	if (rc < 0)
		goto out_close;
	text = malloc(CONTROL_STATE_MAX);
	if (!text) {
		rc = -ENOMEM;
		goto out_close;
	}
	n = read(fd, text, CONTROL_STATE_MAX);
	rc = n < 0 ? -errno : control_state_parse(text, (size_t)n, out);
	free(text);
out_close:
	close(fd);
	return rc;
}

int control_owner_check(const struct stat *st, mode_t mode_max)
{
	if (st->st_uid != 0)
		return -EPERM;
	if (st->st_mode & ~mode_max & (S_IWGRP | S_IWOTH))
		return -EPERM;
	return 0;
}

/* Visit every record in the run directory with its file path. */
static int state_scan(int (*fn)(const char *path, const struct control_state *st, void *arg), void *arg)
{
	DIR *d = opendir(control_run_dir());
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[CONTROL_PATH_MAX];
		struct control_state st;
		size_t len = strlen(de->d_name);
		if (len < 7 || strcmp(de->d_name + len - 6, ".state"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", control_run_dir(), de->d_name);
		if (control_state_read(path, &st) == 0 && fn(path, &st, arg))
			break;
	}
	closedir(d);
	return 0;
}

struct state_each {
	int (*fn)(const struct control_state *st, void *arg);
	void *arg;
};

static int state_each_one(const char *path, const struct control_state *st, void *arg)
{
	struct state_each *e = arg;
	return e->fn(st, e->arg);
}

int control_state_each(int (*fn)(const struct control_state *st, void *arg), void *arg)
{
	struct state_each e = { fn, arg };
	return state_scan(state_each_one, &e);
}

static int state_remove_one(const char *path, const struct control_state *st, void *arg)
{
	if (!strcmp(st->dir, arg))
		unlink(path);
	return 0;
}

/* By content, so that a record another version wrote under another name goes too. */
int control_state_remove(const char *dir)
{
	char path[CONTROL_PATH_MAX];
	control_state_path(dir, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return state_scan(state_remove_one, (void *)dir);
}

const char *control_state_health(const struct control_state *st)
{
	if (!control_pid_alive(st->daemon_pid))
		return "daemon not running";
	if (!control_is_accelerated(st->dir))
		return "not mounted";
	if (!st->cache_on)
		return "degraded: cache unusable";
	if (st->bypass)
		return "degraded: cache bypassed";
	return "ok";
}

bool control_pid_alive(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');  /* "pid (comm) S ...": comm may contain spaces and parens */
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

bool control_pid_wait_exit(pid_t pid, int timeout_ms)
{
	struct pollfd p = { .events = POLLIN };
	int rc;

	p.fd = sys_pidfd_open(pid);
	if (p.fd == -ESRCH)
		return true;
	if (p.fd < 0) {
		for (int waited = 0; control_pid_alive(pid); waited += 10) {
			if (waited >= timeout_ms)
				return false;
			usleep(10000);
		}
		return true;
	}
	rc = sys_poll(&p, 1, timeout_ms);
	sys_close(p.fd);
	return rc > 0 || !control_pid_alive(pid);
}

struct state_find {
	const char *dir;
	struct control_state *out;
	bool found;
};

static int state_find_one(const struct control_state *st, void *arg)
{
	struct state_find *f = arg;
	if (strcmp(st->dir, f->dir))
		return 0;
	*f->out = *st;
	f->found = true;
	return 1;
}

int control_state_find(const char *dir, struct control_state *out)
{
	struct control_state st;
	struct state_find f = { dir, &st, false };
	int rc = control_state_each(state_find_one, &f);
	if (rc < 0)
		return rc;
	if (!f.found)
		return -ENOENT;
	*out = st;
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && isdigit((unsigned char)r[1]) && isdigit((unsigned char)r[2]) &&
		    isdigit((unsigned char)r[3])) {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int control_mount_each(int (*fn)(const struct control_mount_entry *m, void *arg), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *fields[10] = { 0 };
		char *tok = strtok_r(line, " ", &save);
		struct control_mount_entry e;
		unsigned major, minor;
		int i = 0;
		for (; tok && i < 10; tok = strtok_r(NULL, " ", &save)) {
			fields[i++] = tok;
			if (!strcmp(tok, "-"))
				break;
		}
		if (i < 6 || !tok)
			continue;
		tok = strtok_r(NULL, " ", &save);  /* fstype after the "-" separator */
		if (!tok || sscanf(fields[2], "%u:%u", &major, &minor) != 2)
			continue;
		unescape_octal(fields[3]);
		unescape_octal(fields[4]);
		e.point = fields[4];
		e.root = fields[3];
		e.fstype = tok;
		e.source = strtok_r(NULL, " ", &save);
		if (!e.source)
			e.source = "";
		else
			unescape_octal((char *)e.source);
		e.mount.mount_id = atoi(fields[0]);
		e.mount.dev = makedev(major, minor);
		if (fn(&e, arg))
			break;
	}
	free(line);
	fclose(f);
	return 0;
}

struct mount_find {
	const char *dir;
	char fstype[256];
	struct control_mount last;
};

/* Later mountinfo lines are mounted on top of earlier ones: the last match is the topmost. */
static int mount_find_one(const struct control_mount_entry *e, void *arg)
{
	struct mount_find *mf = arg;
	if (!strcmp(e->point, mf->dir)) {
		snprintf(mf->fstype, sizeof(mf->fstype), "%s", e->fstype);
		mf->last = e->mount;
	}
	return 0;
}

/* The topmost mount at exactly `dir`. */
static int mount_find(const char *dir, char *fstype, size_t size, struct control_mount *m)
{
	struct mount_find mf = { .dir = dir };
	int rc = control_mount_each(mount_find_one, &mf);

	if (rc < 0)
		return rc;
	if (!mf.fstype[0])
		return -ENOENT;
	if (fstype)
		snprintf(fstype, size, "%s", mf.fstype);
	if (m)
		*m = mf.last;
	return 0;
}

int control_mount_type(const char *dir, char *fstype, size_t size)
{
	return mount_find(dir, fstype, size, NULL);
}

int control_mount_get(const char *dir, struct control_mount *m)
{
	return mount_find(dir, NULL, 0, m);
}

bool control_is_accelerated(const char *dir)
{
	char type[256];
	return control_mount_type(dir, type, sizeof(type)) == 0 && !strcmp(type, "fuse.cachemax");
}

int control_resolve_path(const char *path, char *out, size_t size)
{
	char abs[PATH_MAX * 2], norm[PATH_MAX], resolved[PATH_MAX];
	char *save = NULL, *tok;
	size_t len = 0;
	int n;

	if (!path || !*path)
		return -EINVAL;
	if (path[0] == '/') {
		n = snprintf(abs, sizeof(abs), "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	}
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -ENAMETOOLONG;
	norm[0] = '\0';
	for (tok = strtok_r(abs, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			char *slash = strrchr(norm, '/');
			if (slash)
				*slash = '\0';
			len = strlen(norm);
			continue;
		}
		if (len + 1 + strlen(tok) >= sizeof(norm))
			return -ENAMETOOLONG;
		norm[len++] = '/';
		strcpy(norm + len, tok);
		len += strlen(tok);
	}
	if (!norm[0])
		strcpy(norm, "/");
	/* Resolve symlinks where possible; a dead mount point keeps its lexical form. */
	if (realpath(norm, resolved)) {
		n = snprintf(out, size, "%s", resolved);
	} else {
		char parent[PATH_MAX], *slash;
		snprintf(parent, sizeof(parent), "%s", norm);
		slash = strrchr(parent, '/');
		*slash = '\0';
		if (slash != parent && realpath(parent, resolved))
			n = snprintf(out, size, "%s/%s", strcmp(resolved, "/") ? resolved : "", slash + 1);
		else
			n = snprintf(out, size, "%s", norm);
	}
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Does the fdinfo file at `info` (/proc/PID/fdinfo/N) name mount `m`? Reading it asks no file
 * system anything (no FUSE request, even to a hung mount). */
static bool fdinfo_on_mount(const char *info, const struct control_mount *m)
{
	char buf[1024], *p;
	bool hit = false;
	ssize_t n;
	int fd = open(info, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		p = strstr(buf, "mnt_id:");
		hit = p && atoi(p + 7) == m->mount_id;
	}
	close(fd);
	return hit;
}

/* Is the file behind a /proc magic link without an fdinfo of its own (cwd, root) on mount `m`?
 * Opening it O_PATH takes a reference without asking its file system anything; our fdinfo of
 * that fd then names the mount. */
static bool link_on_mount(const char *link, const struct control_mount *m)
{
	char info[64];
	bool hit;
	int fd = open(link, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return false;
	snprintf(info, sizeof(info), "/proc/self/fdinfo/%d", fd);
	hit = fdinfo_on_mount(info, m);
	close(fd);
	return hit;
}

/* A mapping of a file on the mount: maps lines carry the file's device as "maj:min" (hex). */
static bool maps_on_mount(pid_t pid, const struct control_mount *m)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool hit = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!hit && getline(&line, &cap, f) > 0) {
		unsigned major, minor;
		unsigned long ino;
		if (sscanf(line, "%*s %*s %*s %x:%x %lu", &major, &minor, &ino) == 3 && ino != 0)
			hit = makedev(major, minor) == m->dev;
	}
	free(line);
	fclose(f);
	return hit;
}

static bool pid_holds(pid_t pid, const struct control_mount *m)
{
	char path[64];
	DIR *fds;
	struct dirent *de;
	bool hit = false;

	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	if (link_on_mount(path, m))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	if (link_on_mount(path, m))
		return true;
	/* Each open file's own fdinfo (one open and read each, not an O_PATH open of the file). */
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	fds = opendir(path);
	if (fds) {
		while (!hit && (de = readdir(fds))) {
			char info[320];
			if (de->d_name[0] == '.')
				continue;
			snprintf(info, sizeof(info), "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
			hit = fdinfo_on_mount(info, m);
		}
		closedir(fds);
	}
	return hit || maps_on_mount(pid, m);
}

int control_holders(const char *mountpoint, char *buf, size_t size)
{
	return control_holders_except(mountpoint, 0, buf, size);
}

int control_holders_except(const char *mountpoint, pid_t ignore, char *buf, size_t size)
{
	struct control_mount m;
	DIR *proc;
	struct dirent *de;
	size_t used = 0;
	int count = 0, rc;

	if (size)
		buf[0] = '\0';
	rc = control_mount_get(mountpoint, &m);
	if (rc < 0)
		return rc;
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((de = readdir(proc))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		char comm[64] = "?", path[64];
		FILE *f;

		if (pid <= 0 || pid == getpid() || pid == ignore || !pid_holds(pid, &m))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		if (used < size) {
			int n = snprintf(buf + used, size - used, "%s%d (%s)", count ? ", " : "", (int)pid, comm);
			if (n > 0)
				used += (size_t)n;
		}
		count++;
	}
	closedir(proc);
	return count;
}
