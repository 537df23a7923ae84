/* fs_type: the original's file-system type and what it decides (see fs_type.h). */
#include "fs/fs_type.h"

#include <linux/magic.h>
#include <stddef.h>
#include <sys/statfs.h>

#include "sys/sys.h"

/* Magic numbers that <linux/magic.h> does not carry (the kernel defines them in the file
 * system's own source, or the client is out of tree): statfs(2)'s f_type for each. */
#define FS_TYPE_GFS2 0x01161970ul       /* fs/gfs2: GFS2_MAGIC */
#define FS_TYPE_ORANGEFS 0x20030528ul   /* fs/orangefs: ORANGEFS_SUPER_MAGIC */
#define FS_TYPE_VBOXSF 0x786f4256ul     /* fs/vboxsf: VBOXSF_SUPER_MAGIC */
#define FS_TYPE_LUSTRE 0x0bd00bd0ul     /* out of tree: LL_SUPER_MAGIC */
#define FS_TYPE_GPFS 0x47504653ul       /* out of tree: IBM Storage Scale */
#define FS_TYPE_BEEGFS 0x19830326ul     /* out of tree: BeeGFS (FhGFS) */
#define FS_TYPE_PANFS 0xaad7aaeaul      /* out of tree: Panasas */

/* Changed elsewhere: the client of a server other machines write to (network), a node of a
 * file system on a disk other machines mount too (cluster), a folder the host shares with this
 * VM, a user-space server (FUSE: sshfs, and also virtiofs, whose host changes the files, and
 * glusterfs, s3fs, rclone; a local FUSE file system such as ntfs-3g too, whose handles do not
 * reopen anyway). Only this machine's changes make fanotify events. */
static const struct {
	unsigned long type;
	const char *name;
} changed_elsewhere[] = {
	{ NFS_SUPER_MAGIC, "NFS" },
	{ CIFS_SUPER_MAGIC, "CIFS/SMB" },
	{ SMB2_SUPER_MAGIC, "SMB" },
	{ SMB_SUPER_MAGIC, "SMB" },
	{ V9FS_MAGIC, "9p" },
	{ CEPH_SUPER_MAGIC, "Ceph" },
	{ AFS_FS_MAGIC, "AFS" },
	{ AFS_SUPER_MAGIC, "AFS" },
	{ CODA_SUPER_MAGIC, "Coda" },
	{ NCP_SUPER_MAGIC, "NCP" },
	{ FS_TYPE_ORANGEFS, "OrangeFS" },
	{ FS_TYPE_LUSTRE, "Lustre" },
	{ FS_TYPE_GPFS, "GPFS" },
	{ FS_TYPE_BEEGFS, "BeeGFS" },
	{ FS_TYPE_PANFS, "PanFS" },
	{ FS_TYPE_GFS2, "GFS2 (a cluster file system)" },
	{ OCFS2_SUPER_MAGIC, "OCFS2 (a cluster file system)" },
	{ FS_TYPE_VBOXSF, "vboxsf (a VirtualBox shared folder)" },
	{ FUSE_SUPER_MAGIC, "FUSE (sshfs or another user-space file system)" },
};

const char *fs_type_changed_elsewhere(unsigned long f_type)
{
	for (size_t i = 0; i < sizeof(changed_elsewhere) / sizeof(changed_elsewhere[0]); i++)
		if (changed_elsewhere[i].type == f_type)
			return changed_elsewhere[i].name;
	return NULL;
}

bool fs_type_stacked(unsigned long f_type)
{
	return f_type == OVERLAYFS_SUPER_MAGIC || f_type == FUSE_SUPER_MAGIC;
}

bool fs_type_handles_reopen(unsigned long f_type)
{
	return f_type != FUSE_SUPER_MAGIC;
}

bool fs_type_inode_numbers_last(unsigned long f_type)
{
	return f_type != FUSE_SUPER_MAGIC && f_type != FS_TYPE_VBOXSF;
}

int fs_type_of_fd(int fd, unsigned long *f_type)
{
	struct statfs sf;
	int rc = sys_fstatfs(fd, &sf);
	if (rc < 0)
		return rc;
	*f_type = (unsigned long)sf.f_type;
	return 0;
}
