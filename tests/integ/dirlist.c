/* dirlist DIR [BUFFER_BYTES [PAUSE_US]]: prints every name of DIR but "." and "..", one a line,
 * as getdents64 returns them with a small buffer (default 1024 bytes: one READDIR of a FUSE
 * mount gives only part of its reply, so a listing takes many calls, each resuming at a
 * cookie) and a pause between the calls (default 0), so that a writer can change the
 * directory in the middle of one listing. Exit 0, or 1 with a message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
	useconds_t pause_us = argc > 3 ? (useconds_t)strtoul(argv[3], NULL, 10) : 0;
	char *buf;
	int fd;

	if (argc < 2 || size < 512) {
		fprintf(stderr, "usage: dirlist DIR [BUFFER_BYTES >= 512 [PAUSE_US]]\n");
		return 1;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	buf = malloc(size);
	if (fd < 0 || !buf) {
		fprintf(stderr, "dirlist: cannot open '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, size);
		if (n < 0) {
			fprintf(stderr, "dirlist: getdents64 of '%s': %s\n", argv[1], strerror(errno));
			return 1;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
			off += de->d_reclen;
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				puts(de->d_name);
		}
		if (pause_us)
			usleep(pause_us);
	}
	free(buf);
	close(fd);
	return 0;
}
