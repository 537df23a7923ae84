/* aiowrite FILE OFFSET TEXT [HOLD]: writes TEXT at OFFSET of FILE by Linux AIO (io_submit),
 * waits for its completion, keeps the file and its AIO context HOLD seconds (default 0), closes
 * it (a SIGTERM meanwhile closes it too). Such a write raises no fanotify FAN_MODIFY (the kernel's
 * aio_complete_rw calls no fsnotify_modify): only the close (FAN_CLOSE_WRITE) tells a watcher.
 * For t-watch-close-write and t-meta-catalog-seal. Exit 0, or 1 with the failing call on stderr. */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	aio_context_t ctx = 0;
	struct iocb cb;
	struct iocb *cbs[1] = { &cb };
	struct io_event ev;
	int fd;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: aiowrite FILE OFFSET TEXT [HOLD]\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = (unsigned)fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (unsigned long)argv[3];
	cb.aio_nbytes = strlen(argv[3]);
	cb.aio_offset = atoll(argv[2]);
	if (syscall(SYS_io_setup, 8, &ctx) < 0) {
		perror("io_setup");
		return 1;
	}
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1) {
		perror("io_submit");
		return 1;
	}
	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1 || (long)ev.res != (long)cb.aio_nbytes) {
		fprintf(stderr, "io_getevents: the write did not complete whole (%lld)\n", (long long)ev.res);
		return 1;
	}
	if (argc == 5)   /* the AIO context kept meanwhile, as a database keeps its own */
		sleep((unsigned)atoi(argv[4]));
	syscall(SYS_io_destroy, ctx);
	if (close(fd) < 0) {
		perror("close");
		return 1;
	}
	return 0;
}
