/* fs_type: what the original's file-system type (statfs f_type) decides, in one place.
 * - Changed elsewhere: other machines (a network or cluster file system), a host (a VM's
 *   shared folder) or a user-space server (FUSE) change its files with no fanotify event on
 *   this machine. Such an original is never counted as watched (fs_watch.c): the kernel keeps
 *   its names and attributes for --entry-timeout / --attr-timeout only, every open opens the
 *   original and checks its fingerprint (close-to-open), the metadata catalog is not used, and
 *   --openless is refused on it. Every other type counts as local: every change to its files
 *   is made through this kernel, so a FAN_MARK_FILESYSTEM mark sees it (an overlayfs is one:
 *   changing its layers under it is undefined, Documentation/filesystems/overlayfs.rst).
 * - Stacked (overlayfs, FUSE): its files live on other file systems, so a backing file on it
 *   needs the kernel's stack depth 2.
 * - Handles that reopen at will: FUSE encodes a handle for every inode but decodes it only while
 *   the kernel still caches the inode (unless its server supports exports, which we cannot
 *   ask), so its nodes are reached by name.
 * - Inode numbers that last: not on FUSE (we cannot ask a server whether its numbers are its
 *   files' own; sshfs's are not) nor vboxsf, so the cache knows their files by path.
 * The decisions are pure functions of f_type (tests/unit/test_fs_type.c).
 */
#ifndef CACHEMAX_FS_TYPE_H
#define CACHEMAX_FS_TYPE_H

#include <stdbool.h>

/* The name of a file system whose files change elsewhere with no event here ("NFS",
 * "CIFS/SMB", "FUSE (sshfs or another user-space file system)", ...), else NULL. */
const char *fs_type_changed_elsewhere(unsigned long f_type);
/* Whether its files live on other file systems (backing files need stack depth 2). */
bool fs_type_stacked(unsigned long f_type);
/* Whether a file handle of its inodes opens whenever we need it (false: reach them by name). */
bool fs_type_handles_reopen(unsigned long f_type);
/* Whether a file keeps its inode number (false: FUSE, whose servers may number inodes in lookup
 * order, as sshfs and rclone do: a number changes when the kernel evicts the inode and goes to
 * another file after a remount; vboxsf, which numbers them as it meets them). The cache then
 * knows files by their path (engine_config.files_by_path). */
bool fs_type_inode_numbers_last(unsigned long f_type);
/* The f_type of the file system fd is on (sys_fstatfs; an O_PATH fd will do): 0 or -errno. */
int fs_type_of_fd(int fd, unsigned long *f_type);

#endif
