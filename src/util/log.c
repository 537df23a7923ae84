/* log: timestamped lines to stderr; level, prefix and rotation are set once at start-up. */
#include "util/log.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static const char *log_prefix = "cachemax";
static char log_rotate_path[PATH_MAX];   /* empty: no rotation */
static unsigned long long log_rotate_max;

void log_set_rotation(const char *path, unsigned long long max_bytes)
{
	snprintf(log_rotate_path, sizeof(log_rotate_path), "%s", path ? path : "");
	log_rotate_max = max_bytes;
}

bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

/* stderr past the limit: shift the old files, start a new one on stdout and stderr. A
 * failure leaves things as they are (the next line tries again). Other processes that share
 * the old file (the watchdog) go on writing to FILE.1. */
static void log_rotate_if_due(void)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	struct stat st;
	int fd;

	if (!log_rotate_path[0] || fstat(STDERR_FILENO, &st) < 0 || (unsigned long long)st.st_size < log_rotate_max)
		return;
	for (int i = LOG_ROTATE_KEEP - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", log_rotate_path, i);
		snprintf(to, sizeof(to), "%s.%d", log_rotate_path, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", log_rotate_path);
	if (rename(log_rotate_path, to) < 0)
		return;
	fd = open(log_rotate_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

void log_set_level(enum log_level level) { log_level = level; }
void log_set_prefix(const char *prefix) { log_prefix = prefix; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s: ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000, log_prefix, names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
	log_rotate_if_due();
}
