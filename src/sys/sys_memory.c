/* sys_memory: physical memory and the cgroup's memory limit, the smaller (see sys_memory.h). */
#include "sys/sys_memory.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sys/sys.h"
#include "util/log.h"

#define PROC_CGROUP_MAX 8192   /* /proc/self/cgroup: a line per v1 hierarchy */
#define LIMIT_TEXT_MAX 64      /* "max" or 20 digits, and a newline */

int sys_memory_cgroup_path(const char *proc_cgroup, bool v1, char *path, size_t size)
{
	const char *found = NULL, *found_end = NULL;

	for (const char *line = proc_cgroup; *line;) {   /* every line checked, also past a match */
		const char *end = strchrnul(line, '\n'), *c1 = memchr(line, ':', (size_t)(end - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
		bool match = false;

		if (!c1 || !c2 || c1 == line || strspn(line, "0123456789") != (size_t)(c1 - line) ||
		    c2[1] != '/')
			return -EINVAL;
		if (!v1) {
			match = c1 - line == 1 && *line == '0' && c2 == c1 + 1;
		} else {
			for (const char *w = c1 + 1; w < c2 && !match;) {  /* "cpu,memory": a word of it */
				const char *comma = memchr(w, ',', (size_t)(c2 - w));
				const char *wend = comma ? comma : c2;
				match = wend - w == 6 && !memcmp(w, "memory", 6);
				w = wend + 1;
			}
		}
		if (match && !found) {
			found = c2 + 1;
			found_end = end;
		}
		line = *end ? end + 1 : end;
	}
	if (!found)
		return -ENOENT;
	if ((size_t)(found_end - found) >= size)
		return -ENAMETOOLONG;
	memcpy(path, found, (size_t)(found_end - found));
	path[found_end - found] = '\0';
	return 0;
}

int sys_memory_limit_parse(const char *text, uint64_t *bytes)
{
	size_t len = strlen(text), digits = strspn(text, "0123456789");
	uint64_t value = 0;

	if (len && text[len - 1] == '\n')
		len--;
	if (len == 3 && !memcmp(text, "max", 3)) {
		*bytes = SYS_MEMORY_NO_LIMIT;
		return 0;
	}
	if (!len || digits != len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(text[i] - '0');
		if (value > (UINT64_MAX - d) / 10)
			return -EINVAL;
		value = value * 10 + d;
	}
	*bytes = value;
	return 0;
}

/* The smallest limit in file under root for cgroup and each of its ancestors. */
static uint64_t cgroup_limit(sys_memory_read_fn read_file, const char *root, const char *file,
                             char *cgroup)
{
	uint64_t limit = SYS_MEMORY_NO_LIMIT;

	for (;;) {
		char name[PATH_MAX + 64], text[LIMIT_TEXT_MAX];
		char *slash = strrchr(cgroup, '/');
		uint64_t bytes;
		bool top = !strcmp(cgroup, "/");

		snprintf(name, sizeof(name), "%s%s/%s", root, top ? "" : cgroup, file);
		if (read_file(name, text, sizeof(text)) >= 0) {
			if (sys_memory_limit_parse(text, &bytes) < 0)
				log_warn("cannot read the memory limit in '%s': not \"max\" or a number of bytes; "
				         "ignored", name);
			else if (bytes < limit)
				limit = bytes;
		}
		if (top || !slash)
			return limit;
		slash[slash == cgroup] = '\0';   /* "/a/b" -> "/a", "/a" -> "/" */
	}
}

uint64_t sys_memory_usable_read(uint64_t physical, sys_memory_read_fn read_file, bool *from_cgroup)
{
	char text[PROC_CGROUP_MAX], path2[PATH_MAX], path1[PATH_MAX];
	uint64_t limit = SYS_MEMORY_NO_LIMIT, v1;
	int rc2 = -ENOENT, rc1 = -ENOENT;

	ssize_t n = read_file(SYS_MEMORY_PROC_CGROUP, text, sizeof(text));

	if (n >= 0) {
		rc2 = sys_memory_cgroup_path(text, false, path2, sizeof(path2));
		rc1 = sys_memory_cgroup_path(text, true, path1, sizeof(path1));
	} else if (n != -ENOENT) {   /* no /proc: nothing to say; anything else is said */
		log_warn("cannot read '%s' (%s): no memory limit of a cgroup is used",
		         SYS_MEMORY_PROC_CGROUP, strerror((int)-n));
	}
	if (rc2 == -EINVAL || rc1 == -EINVAL) {
		log_warn("cannot read '%s': a line is not ID:CONTROLLERS:/PATH; no memory limit of a "
		         "cgroup is used", SYS_MEMORY_PROC_CGROUP);
	} else if ((rc2 < 0 && rc2 != -ENOENT) || (rc1 < 0 && rc1 != -ENOENT)) {
		log_warn("cannot use the cgroup named in '%s' (%s): no memory limit of a cgroup is used",
		         SYS_MEMORY_PROC_CGROUP, strerror(-(rc2 < 0 && rc2 != -ENOENT ? rc2 : rc1)));
	} else {
		if (rc2 == 0)
			limit = cgroup_limit(read_file, SYS_MEMORY_CGROUP2, "memory.max", path2);
		if (rc1 == 0 && (v1 = cgroup_limit(read_file, SYS_MEMORY_CGROUP1, "memory.limit_in_bytes",
		                                   path1)) < limit)
			limit = v1;
	}
	*from_cgroup = limit != SYS_MEMORY_NO_LIMIT && (!physical || limit < physical);
	return *from_cgroup ? limit : physical;
}

uint64_t sys_memory_usable(bool *from_cgroup)
{
	long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
	uint64_t physical = pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;

	return sys_memory_usable_read(physical, sys_read_file, from_cgroup);
}
