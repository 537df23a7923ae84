/* fs_path: paths of nodes relative to the origin (for the --pin/--exclude globs, engine_pinned.c).
 * The node table knows inodes, not names; the kernel does: readlink of /proc/self/fd/N names
 * the dentry the node's O_PATH fd holds (renames included), under the origin's own path, which
 * is covered by our mount but still printed as it was. An fd opened from a file handle names
 * the inode's cached dentry, which a recent lookup of the inode left behind. Only called when globs are configured.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <string.h>

#include "sys/sys.h"

int fs_node_relpath(struct fs *fs, struct fs_node *n, char *buf, size_t size)
{
	char proc[FS_PROC_PATH_MAX], full[4096 + 16];
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

