/* cache_dax: is the cache directory on DAX (see cache_dax.h). The mountinfo line parser is a
 * pure function over the caller's text (unit-tested on real lines); the probe reads the line
 * of the mount statx names, so a mount point below another or a bind mount is never confused
 * with its neighbours.
 */
#include "cache/cache_dax.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOUNTINFO "/proc/self/mountinfo"
#define MOUNTINFO_FIELDS_MIN 6   /* id, parent, dev, root, point, options before the "-" */

struct token {
	const char *p;
	size_t len;
};

/* The next space-separated token from *pos (mountinfo escapes spaces in values as \040). */
static bool token_next(const char **pos, struct token *t)
{
	const char *s = *pos;

	while (*s == ' ')
		s++;
	if (!*s || *s == '\n')
		return false;
	t->p = s;
	while (*s && *s != ' ' && *s != '\n')
		s++;
	t->len = (size_t)(s - t->p);
	*pos = s;
	return true;
}

static bool token_is(const struct token *t, const char *word)
{
	return t->len == strlen(word) && !memcmp(t->p, word, t->len);
}

static void token_copy(const struct token *t, char *buf, size_t size)
{
	size_t n = t->len < size - 1 ? t->len : size - 1;
	memcpy(buf, t->p, n);
	buf[n] = '\0';
}

/* The DAX word among comma-separated options, or the mode given so far. */
static enum cache_dax_mode options_mode(const struct token *t, enum cache_dax_mode mode)
{
	const char *s = t->p, *end = t->p + t->len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		struct token option = { s, (size_t)((comma ? comma : end) - s) };
		if (token_is(&option, "dax") || token_is(&option, "dax=always"))
			mode = CACHE_DAX_ALWAYS;
		else if (token_is(&option, "dax=inode"))
			mode = CACHE_DAX_INODE;
		else if (token_is(&option, "dax=never"))
			mode = CACHE_DAX_NEVER;
		s = comma ? comma + 1 : end;
	}
	return mode;
}

int cache_dax_mountinfo_parse(const char *line, struct cache_dax_mount *out)
{
	struct cache_dax_mount m = { 0 };
	struct token t, options = { 0 }, fstype, source, super;
	const char *pos = line;
	char *end;
	unsigned fields = 0;
	long id;

	if (!line)
		return -EINVAL;
	for (;;) {   /* up to the "-" that ends the optional fields */
		if (!token_next(&pos, &t))
			return -EINVAL;
		if (fields >= MOUNTINFO_FIELDS_MIN && token_is(&t, "-"))
			break;
		if (fields == 0) {
			id = strtol(t.p, &end, 10);
			if (end != t.p + t.len || id < 0 || id > INT_MAX)
				return -EINVAL;
			m.mount_id = (int)id;
		} else if (fields == 5) {
			options = t;
		}
		fields++;
	}
	if (!token_next(&pos, &fstype) || !token_next(&pos, &source) || !token_next(&pos, &super))
		return -EINVAL;
	token_copy(&fstype, m.fstype, sizeof(m.fstype));
	token_copy(&source, m.source, sizeof(m.source));
	m.mode = options_mode(&super, options_mode(&options, CACHE_DAX_UNSAID));
	*out = m;
	return 0;
}

/* The mountinfo line of mount `id`; -ENOENT if there is none. */
static int mount_find(int id, struct cache_dax_mount *out)
{
	FILE *f = fopen(MOUNTINFO, "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		struct cache_dax_mount m;
		if (cache_dax_mountinfo_parse(line, &m) == 0 && m.mount_id == id) {
			*out = m;
			rc = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* 1 if dir carries the per-file DAX flag that new files inherit, 0 if not, or -errno (a user
 * other than the cache's owner may not open it). */
static int directory_flag(const char *dir)
{
	struct fsxattr attr;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) < 0)
		rc = errno == ENOTTY || errno == EOPNOTSUPP ? 0 : -errno;   /* no flags here: no DAX */
	else
		rc = (attr.fsx_xflags & FS_XFLAG_DAX) != 0;
	close(fd);
	return rc;
}

int cache_dax_probe(const char *dir, struct cache_dax *out)
{
	struct cache_dax_mount m;
	struct statx stx;
	struct cache_dax r = { 0 };
	int flag;

	if (statx(AT_FDCWD, dir, 0, STATX_BASIC_STATS | STATX_MNT_ID, &stx) < 0)
		return -errno;
	if ((stx.stx_attributes_mask & STATX_ATTR_DAX) && (stx.stx_attributes & STATX_ATTR_DAX)) {
		r.dax = true;
		snprintf(r.why, sizeof(r.why), "statx reports DAX on the cache directory");
		*out = r;
		return 0;
	}
	if (!(stx.stx_mask & STATX_MNT_ID) || mount_find((int)stx.stx_mnt_id, &m) < 0) {
		snprintf(r.why, sizeof(r.why), "unknown: the cache directory's mount is not in "
		         MOUNTINFO);
		*out = r;
		return 0;
	}
	switch (m.mode) {
	case CACHE_DAX_ALWAYS:
		r.dax = true;
		snprintf(r.why, sizeof(r.why), "%s on %s is mounted with dax", m.fstype, m.source);
		break;
	case CACHE_DAX_NEVER:
		snprintf(r.why, sizeof(r.why), "%s on %s is mounted with dax=never", m.fstype, m.source);
		break;
	case CACHE_DAX_INODE:
	case CACHE_DAX_UNSAID:
		flag = directory_flag(dir);
		r.dax = flag > 0;
		if (flag > 0)
			snprintf(r.why, sizeof(r.why), "the cache directory has the DAX flag (%s on %s, "
			         "dax=inode)", m.fstype, m.source);
		else if (flag == 0)
			snprintf(r.why, sizeof(r.why), "%s on %s is mounted without dax and the cache "
			         "directory has no DAX flag", m.fstype, m.source);
		else
			snprintf(r.why, sizeof(r.why), "%s on %s is mounted without dax (the cache "
			         "directory's DAX flag is not readable here: %s)", m.fstype, m.source,
			         strerror(-flag));
		break;
	}
	*out = r;
	return 0;
}
