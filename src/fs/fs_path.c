/* fs_path: paths of nodes relative to the origin (the --pin/--exclude globs, engine_pinned.c;
 * the cache's key of a file where inode numbers do not last, engine_key; reports).
 * A node reached by parent and name (FS_REACH_NAME) has its path in the table: the names up to
 * the first node that is not, which is the root or is named by the kernel. Otherwise the
 * kernel knows: readlink of /proc/self/fd/N names the dentry the node's O_PATH fd holds
 * (renames included), under the origin's own path, which is covered by our mount but still
 * printed as it was. An fd opened from a file handle names the inode's cached dentry, which a
 * recent lookup of the inode left behind.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <string.h>

#include "sys/sys.h"

/* The kernel's name of n's inode, relative to the origin. */
static int relpath_of_fd(struct fs *fs, struct fs_node *n, char *buf, size_t size)
{
	char proc[FS_PROC_PATH_MAX], full[FS_RELPATH_MAX + 16];
	ssize_t len;
	int fd = fs_node_fd(fs, n);

	if (fd < 0)
		return fd;
	fs_proc_path(fd, proc);
	len = sys_readlinkat(AT_FDCWD, proc, full, sizeof(full) - 1);
	fs_node_fd_put(fs, n, fd);
	if (len < 0)
		return (int)len;
	full[len] = '\0';
	if (fs->root_path_len == 0 || (size_t)len <= fs->root_path_len + 1 ||
	    memcmp(full, fs->root_path, fs->root_path_len) ||
	    full[fs->root_path_len] != '/')
		return -ENOENT;
	if (len >= 10 && !strcmp(full + len - 10, " (deleted)"))
		return -ENOENT;
	if ((size_t)len - fs->root_path_len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, full + fs->root_path_len + 1, (size_t)len - fs->root_path_len);
	return 0;
}

int fs_node_relpath(struct fs *fs, struct fs_node *n, char *buf, size_t size)
{
	char tail[FS_RELPATH_MAX];
	size_t start = sizeof(tail) - 1, head = 0;   /* tail[start..] holds the names so far */
	struct fs_node *parent;
	const char *name;
	int rc;

	tail[start] = '\0';
	while (n != fs->root && fs_node_name(fs, n, &parent, &name)) {
		size_t name_len = strlen(name);
		bool slash = start < sizeof(tail) - 1;   /* a name follows: a '/' after this one */
		if (name_len + slash > start)
			return -ENAMETOOLONG;
		start -= name_len + slash;
		memcpy(tail + start, name, name_len);
		if (slash)
			tail[start + name_len] = '/';
		n = parent;
	}
	if (n != fs->root) {
		rc = relpath_of_fd(fs, n, buf, size);
		if (rc < 0)
			return rc;
		head = strlen(buf);
		if (start < sizeof(tail) - 1) {
			if (head + 1 >= size)
				return -ENAMETOOLONG;
			buf[head++] = '/';
		}
	} else if (start == sizeof(tail) - 1) {
		return -ENOENT;   /* the root itself: no path below the origin */
	}
	if (head + (sizeof(tail) - start) > size)
		return -ENAMETOOLONG;
	memcpy(buf + head, tail + start, sizeof(tail) - start);
	return 0;
}

int fs_name_relpath(struct fs *fs, struct fs_node *parent, const char *name, char *buf,
                    size_t size)
{
	size_t len = 0, name_len = strlen(name);
	int rc;

	if (parent != fs->root) {
		rc = fs_node_relpath(fs, parent, buf, size);
		if (rc < 0)
			return rc;
		len = strlen(buf);
		buf[len++] = '/';   /* fs_node_relpath left room: its result is shorter than size */
	}
	if (len + name_len + 1 > size)
		return -ENAMETOOLONG;
	memcpy(buf + len, name, name_len + 1);
	return 0;
}
