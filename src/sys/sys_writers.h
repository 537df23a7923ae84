/* sys_writers: is anything on the machine able to change the files of a block device without
 * a fanotify event still to come? Asked by the metadata catalog before it seals (fs_catalog.c):
 * a write by Linux AIO or through a shared mapping raises no FAN_MODIFY, only the writer's
 * close does, and a writer still open at the stop closes (unseen) after it.
 * Looked at, for the device dev of the original:
 *   - every process's open files (/proc/PID/fdinfo/N): one open for writing whose mount
 *     (mnt_id) is a mount of dev in this mount namespace (/proc/self/mountinfo), or a mount
 *     this namespace does not show (another namespace's: it might be dev's);
 *   - every process's mappings (/proc/PID/maps): a shared, writable mapping of a file on dev;
 *   - every loop device attached read-write (/sys/block/loop*\/loop/backing_file) backed by a
 *     file on dev.
 * Reading fdinfo, maps and sysfs asks no file system anything. A process that exits meanwhile
 * is skipped. Processes whose files cannot be read (not root) count as writers.
 * Returns 0 (none), 1 (one found, said in who: "PID (COMM)" or "loop device NAME"), or -errno
 * (the scan itself failed: /proc or mountinfo unreadable).
 */
#ifndef CACHEMAX_SYS_WRITERS_H
#define CACHEMAX_SYS_WRITERS_H

#include <stddef.h>
#include <sys/types.h>

int sys_writers_of_device(dev_t dev, char *who, size_t who_size);

#endif
