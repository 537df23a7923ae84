/* Unit tests of the file-system-type decisions (fs/fs_type.h) over statfs f_type values: which
 * originals are never counted as watched, which are stacked, whose handles reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/magic.h>

#include <cmocka.h>

#include "fs/fs_type.h"
#include "sys/sys.h"

/* Network, cluster, host-shared and user-space file systems: changed elsewhere, by name. */
static void test_fs_type_changed_elsewhere(void **state)
{
	static const struct { unsigned long type; const char *name; } remote[] = {
		{ 0x6969, "NFS" },                 /* NFS_SUPER_MAGIC (nfs and nfs4) */
		{ 0xff534d42ul, "CIFS/SMB" },      /* CIFS_SUPER_MAGIC */
		{ 0xfe534d42ul, "SMB" },           /* SMB2_SUPER_MAGIC (smb3) */
		{ 0x517b, "SMB" },                 /* SMB_SUPER_MAGIC */
		{ 0x01021997, "9p" },              /* V9FS_MAGIC */
		{ 0x00c36400, "Ceph" },            /* CEPH_SUPER_MAGIC */
		{ 0x6b414653, "AFS" },             /* AFS_FS_MAGIC (kAFS) */
		{ 0x5346414f, "AFS" },             /* AFS_SUPER_MAGIC (OpenAFS) */
		{ 0x73757245, "Coda" },
		{ 0x564c, "NCP" },
		{ 0x20030528, "OrangeFS" },
		{ 0x0bd00bd0, "Lustre" },
		{ 0x47504653, "GPFS" },
		{ 0x19830326, "BeeGFS" },
		{ 0xaad7aaeaul, "PanFS" },
		{ 0x01161970, "GFS2" },
		{ 0x7461636f, "OCFS2" },
		{ 0x786f4256, "vboxsf" },
		{ 0x65735546, "FUSE" },            /* FUSE_SUPER_MAGIC: sshfs, virtiofs, fuseblk */
	};
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		const char *name = fs_type_changed_elsewhere(remote[i].type);
		assert_non_null(name);
		/* the name the messages show starts with the kind a user knows it by */
		assert_int_equal(strncmp(name, remote[i].name, strlen(remote[i].name)), 0);
	}
	/* sshfs is said to be FUSE in so many words (t-openless greps for it) */
	assert_non_null(strstr(fs_type_changed_elsewhere(FUSE_SUPER_MAGIC), "sshfs"));
}

/* Local file systems (every change goes through this kernel): watched. An overlay too (its
 * layers must not change under it), and a value no file system uses. */
static void test_fs_type_local(void **state)
{
	static const unsigned long local[] = {
		EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC, TMPFS_MAGIC, OVERLAYFS_SUPER_MAGIC,
		F2FS_SUPER_MAGIC, 0x2011bab0ul /* exfat */, 0x4d44 /* vfat */, 0x5346544e /* ntfs3 */,
		0xca451a4eul /* bcachefs */, 0, 0x12345678,
	};
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		assert_null(fs_type_changed_elsewhere(local[i]));
}

static void test_fs_type_stacked_and_handles(void **state)
{
	assert_true(fs_type_stacked(OVERLAYFS_SUPER_MAGIC));
	assert_true(fs_type_stacked(FUSE_SUPER_MAGIC));
	assert_false(fs_type_stacked(EXT4_SUPER_MAGIC));
	assert_false(fs_type_stacked(NFS_SUPER_MAGIC));
	assert_false(fs_type_handles_reopen(FUSE_SUPER_MAGIC));
	assert_true(fs_type_handles_reopen(EXT4_SUPER_MAGIC));
	assert_true(fs_type_handles_reopen(NFS_SUPER_MAGIC));
	assert_true(fs_type_handles_reopen(OVERLAYFS_SUPER_MAGIC));
	/* sshfs numbers inodes in lookup order; vboxsf as it meets them */
	assert_false(fs_type_inode_numbers_last(FUSE_SUPER_MAGIC));
	assert_false(fs_type_inode_numbers_last(0x786f4256ul));
	assert_true(fs_type_inode_numbers_last(EXT4_SUPER_MAGIC));
	assert_true(fs_type_inode_numbers_last(NFS_SUPER_MAGIC));
	assert_true(fs_type_inode_numbers_last(OVERLAYFS_SUPER_MAGIC));
}

/* The type of a real fd (an O_PATH one too), and the sys seam's error passed on. */
static void test_fs_type_of_fd(void **state)
{
	unsigned long type = 0;
	int fd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fs_type_of_fd(fd, &type), 0);
	assert_true(type == PROC_SUPER_MAGIC);
	sys_fault_set(SYS_OP_FSTATFS, 1, EIO);
	type = 1;
	assert_int_equal(fs_type_of_fd(fd, &type), -EIO);
	assert_true(type == 1);  /* untouched on failure */
	sys_fault_clear();
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs_type_changed_elsewhere),
		cmocka_unit_test(test_fs_type_local),
		cmocka_unit_test(test_fs_type_stacked_and_handles),
		cmocka_unit_test(test_fs_type_of_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
