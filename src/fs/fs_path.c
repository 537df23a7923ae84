/* fs_path: paths of nodes relative to the origin and the --pin/--exclude glob rules.
 * The node table knows inodes, not names; the kernel does: readlink of /proc/self/fd/N names
 * the dentry the node's O_PATH fd holds (renames included), under the origin's own path, which
 * is covered by our mount but still printed as it was. An fd opened from a file handle names
 * the inode's cached dentry, which a recent lookup of the inode left behind. Only called when globs are configured.
 */
#include "fs/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "sys/sys.h"
#include "util/glob.h"

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

/* The rule is util/glob.h's, shared with the CLI (cachemax warm). */
bool fs_glob_match(const char *const *globs, unsigned count, const char *rel)
{
	return glob_match_any(globs, count, rel);
}

#define PIN_WALK_DEPTH_MAX 64

/* One directory of the pin walk: rel holds the directory's path relative to the origin ("" for
 * the origin) in a buffer of 4096 bytes. Consumes dirfd. */
static void pin_walk_dir(struct fs *fs, int dirfd, char *rel, size_t rel_len, unsigned depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (!d) {
		sys_close(dirfd);
		return;
	}
	while ((de = readdir(d)) && !fs_fill_stopping(fs)) {
		size_t name_len = strlen(de->d_name);
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rel_len + 1 + name_len + 1 > 4096)
			continue;
		if (rel_len)
			rel[rel_len] = '/';
		memcpy(rel + rel_len + (rel_len != 0), de->d_name, name_len + 1);
		if (sys_fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode) && depth < PIN_WALK_DEPTH_MAX) {
				int sub = sys_openat(dirfd, de->d_name,
				                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
				if (sub >= 0)
					pin_walk_dir(fs, sub, rel, rel_len + (rel_len != 0) + name_len, depth + 1);
			} else if (S_ISREG(st.st_mode) &&
			           fs_glob_match(fs->cfg.pin, fs->cfg.pin_count, rel) &&
			           !fs_glob_match(fs->cfg.exclude, fs->cfg.exclude_count, rel)) {
				cache_store_pin(fs->store, cache_key_from_stat(&st), true);
			}
		}
		rel[rel_len] = '\0';
	}
	closedir(d);
}

void fs_pin_walk(struct fs *fs)
{
	char rel[4096] = "";
	int fd;

	if (!fs->store || !fs->cfg.pin_count)
		return;
	fd = sys_openat(fs->cfg.origin_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd >= 0)
		pin_walk_dir(fs, fd, rel, 0, 0);
}
