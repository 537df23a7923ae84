/* sys_walk: every regular file below a directory (see sys_walk.h). */
#include "sys/sys_walk.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "sys/sys.h"

/* d: the directory rel[0, rel_len) (closed here). */
static int walk_dir(DIR *d, char *rel, size_t rel_len, unsigned depth, unsigned depth_max,
                    sys_walk_visit visit, void *arg)
{
	int fd = dirfd(d);
	struct dirent *de;
	int rc = 0;

	while (rc == 0 && (de = readdir(d))) {
		size_t name_len = strlen(de->d_name), len = rel_len + (rel_len != 0) + name_len;
		unsigned char type = de->d_type;
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || len >= SYS_WALK_PATH_MAX)
			continue;
		if (type == DT_UNKNOWN) {
			if (sys_fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;   /* gone meanwhile */
			type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN;
		}
		if (rel_len)
			rel[rel_len] = '/';
		memcpy(rel + rel_len + (rel_len != 0), de->d_name, name_len + 1);
		if (type == DT_REG) {
			rc = visit(arg, fd, de->d_name, rel);
		} else if (type == DT_DIR && depth < depth_max) {
			int sub = sys_openat(fd, de->d_name,
			                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
			DIR *sd = sub >= 0 ? fdopendir(sub) : NULL;
			if (sd)
				rc = walk_dir(sd, rel, len, depth + 1, depth_max, visit, arg);
			else if (sub >= 0)
				sys_close(sub);   /* unreadable: the rest is still walked */
		}
		rel[rel_len] = '\0';
	}
	closedir(d);
	return rc;
}

int sys_walk_files(int dirfd, char *rel, size_t rel_len, unsigned depth_max, sys_walk_visit visit,
                   void *arg)
{
	DIR *d = fdopendir(dirfd);
	int rc;

	if (!d) {
		rc = -errno;
		sys_close(dirfd);
		return rc;
	}
	return walk_dir(d, rel, rel_len, 0, depth_max, visit, arg);
}
