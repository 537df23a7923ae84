/* sys_writers: is anything on the machine able to change the files of a block device without
 * a fanotify event still to come? Asked by the metadata catalog before it seals (fs_catalog.c):
 * a write by Linux AIO or through a shared mapping raises no FAN_MODIFY, only the writer's
 * close does, and a writer still open at the stop closes (unseen) after it.
 * (A write(2) or io_uring writer raises FAN_MODIFY as it writes, so an idle writer, or one
 * that writes later, is not one of these: what it writes after the stop moves the device's
 * counters, which void the seal.) Looked at, for the device dev of the original, in every
 * process but this one:
 *   - its mappings (/proc/PID/maps): a shared, writable mapping of a file on dev;
 *   - if it has an AIO context (its ring mapped as "/[aio]"): its open files, each by the
 *     device of the file (statx of /proc/PID/fd/N with AT_STATX_DONT_SYNC: the attributes the
 *     kernel holds) and, on dev, its fdinfo's flags (open for writing);
 *   - every loop device attached read-write (/sys/block/loop*\/loop/backing_file) whose
 *     backing file (its path, looked up in this mount namespace) is on dev.
 * A process that exits meanwhile is skipped, and so is one whose /proc files root cannot read
 * (EACCES: this VM's init, in another user namespace; the scan cannot know what it does).
 * Returns 0 (none), 1 (one found, said in who: "PID (COMM)" or "loop device NAME"), or -errno
 * (/proc unreadable).
 */
#ifndef CACHEMAX_SYS_WRITERS_H
#define CACHEMAX_SYS_WRITERS_H

#include <stddef.h>
#include <sys/types.h>

int sys_writers_of_device(dev_t dev, char *who, size_t who_size);

#endif
