/* Unit tests for src/cache/cache_dax.c: the mountinfo line parser on real and hostile lines
 * (every truncated prefix under ASan), and the probe's negative answer on this machine's
 * file systems (there is no pmem here; the positive mount-option cases are the parser's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include <cmocka.h>

#include "cache/cache_dax.h"

static void parse_ok(const char *line, int id, const char *fstype, const char *source,
                     enum cache_dax_mode mode)
{
	struct cache_dax_mount m;
	int rc = cache_dax_mountinfo_parse(line, &m);

	if (rc != 0)
		fail_msg("'%s': %d, expected 0", line, rc);
	assert_int_equal(m.mount_id, id);
	assert_string_equal(m.fstype, fstype);
	assert_string_equal(m.source, source);
	if (m.mode != mode)
		fail_msg("'%s': mode %d, expected %d", line, m.mode, mode);
}

static void test_mountinfo_dax_modes(void **state)
{
	parse_ok("1234 25 259:0 / /mnt/pmem rw,relatime shared:500 - ext4 /dev/pmem0 rw,dax=always\n",
	         1234, "ext4", "/dev/pmem0", CACHE_DAX_ALWAYS);
	/* Kernels before 5.8 show the bare word. */
	parse_ok("40 25 259:1 / /mnt/pm1 rw,relatime - xfs /dev/pmem1 rw,attr2,dax,inode64,noquota",
	         40, "xfs", "/dev/pmem1", CACHE_DAX_ALWAYS);
	parse_ok("41 25 259:1 / /mnt/pm1 rw,relatime - xfs /dev/pmem1 rw,attr2,dax=never,noquota",
	         41, "xfs", "/dev/pmem1", CACHE_DAX_NEVER);
	parse_ok("42 25 259:1 / /mnt/pm1 rw - ext4 /dev/pmem1 rw,dax=inode", 42, "ext4",
	         "/dev/pmem1", CACHE_DAX_INODE);
	/* virtiofs takes it as a mount option. */
	parse_ok("43 25 0:50 / /mnt/v rw,relatime,dax=always - virtiofs share rw", 43, "virtiofs",
	         "share", CACHE_DAX_ALWAYS);
	/* The super options come last and say what the file system does. */
	parse_ok("44 25 0:50 / /mnt/v rw,dax - ext4 /dev/pmem2 rw,dax=never", 44, "ext4",
	         "/dev/pmem2", CACHE_DAX_NEVER);
	/* Several optional fields before the separator. */
	parse_ok("45 25 259:3 / /mnt/p rw shared:1 master:2 propagate_from:3 - ext4 /dev/pmem3 rw,dax",
	         45, "ext4", "/dev/pmem3", CACHE_DAX_ALWAYS);
}

static void test_mountinfo_no_dax(void **state)
{
	parse_ok("29 1 254:0 / / rw,relatime - ext4 /dev/vda rw,errors=remount-ro", 29, "ext4",
	         "/dev/vda", CACHE_DAX_UNSAID);
	parse_ok("25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683772k", 25, "tmpfs",
	         "tmpfs", CACHE_DAX_UNSAID);
	/* Words that only look like it. */
	parse_ok("50 1 8:1 / /mnt/dax rw - ext4 /dev/sda1 rw,nodax,daxfoo,dax=alwaysx,dax_mode=1",
	         50, "ext4", "/dev/sda1", CACHE_DAX_UNSAID);
	parse_ok("51 1 8:1 /dax=always /mnt/dax\\040dir rw - ext4 dax=always rw", 51, "ext4",
	         "dax=always", CACHE_DAX_UNSAID);
	parse_ok("52 1 8:1 / /m rw,relatime - ext4 /dev/sda1 rw,data=ordered,dax=", 52, "ext4",
	         "/dev/sda1", CACHE_DAX_UNSAID);
}

static void test_mountinfo_rejects(void **state)
{
	const char *bad[] = {
		"", "\n", "garbage", "29 1 254:0 / / rw,relatime",
		"29 1 254:0 / / rw,relatime -",                   /* no fstype */
		"29 1 254:0 / / rw,relatime - ext4",              /* no source */
		"29 1 254:0 / / rw,relatime - ext4 /dev/vda",     /* no super options */
		"x29 1 254:0 / / rw - ext4 /dev/vda rw",          /* the id is not a number */
		"-5 1 254:0 / / rw - ext4 /dev/vda rw",
		"99999999999 1 254:0 / / rw - ext4 /dev/vda rw",
		"29 1 254:0 / - ext4 /dev/vda rw",                /* "-" before six fields */
	};
	struct cache_dax_mount m, sentinel;

	memset(&m, 0x5A, sizeof(m));
	memset(&sentinel, 0x5A, sizeof(sentinel));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cache_dax_mountinfo_parse(bad[i], &m) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_memory_equal(&m, &sentinel, sizeof(m));   /* untouched on failure */
	}
	assert_int_equal(cache_dax_mountinfo_parse(NULL, &m), -EINVAL);
}

/* Every prefix of a line, copied to a buffer of exactly its size: ASan sees any overread. */
static void test_mountinfo_prefixes(void **state)
{
	const char *line = "1234 25 259:0 / /mnt/pmem rw,relatime shared:500 - ext4 /dev/pmem0 "
	                   "rw,dax=always\n";
	size_t len = strlen(line);
	struct cache_dax_mount m;

	for (size_t n = 0; n <= len; n++) {
		char *copy = malloc(n + 1);
		int rc;
		assert_non_null(copy);
		memcpy(copy, line, n);
		copy[n] = '\0';
		rc = cache_dax_mountinfo_parse(copy, &m);
		assert_true(rc == 0 || rc == -EINVAL);
		if (n < strlen("1234 25 259:0 / /mnt/pmem rw,relatime shared:500 - ext4 /dev/pmem0 r"))
			assert_int_equal(rc, -EINVAL);
		free(copy);
	}
	/* A long file system type and source are cut, not overflowed. */
	char longline[1200];
	snprintf(longline, sizeof(longline), "7 1 0:1 / /m rw - %0200d %0600d rw,dax", 1, 2);
	assert_int_equal(cache_dax_mountinfo_parse(longline, &m), 0);
	assert_int_equal(strlen(m.fstype), sizeof(m.fstype) - 1);
	assert_int_equal(strlen(m.source), sizeof(m.source) - 1);
	assert_int_equal(m.mode, CACHE_DAX_ALWAYS);
}

/* Every line of this process's own mountinfo is one. */
static void test_mountinfo_real(void **state)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lines = 0;
	struct cache_dax_mount m;

	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		if (cache_dax_mountinfo_parse(line, &m) != 0)
			fail_msg("a real mountinfo line was refused: %s", line);
		lines++;
	}
	free(line);
	fclose(f);
	assert_true(lines > 0);
}

/* No pmem here: /tmp and /dev/shm are not DAX, and the answer names the file system. */
static void test_probe_negative(void **state)
{
	const char *dirs[] = { "/tmp", "/dev/shm", "/" };
	struct cache_dax dax;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct statfs sf;
		assert_int_equal(statfs(dirs[i], &sf), 0);
		memset(&dax, 0x5A, sizeof(dax));
		assert_int_equal(cache_dax_probe(dirs[i], &dax), 0);
		if (dax.dax)
			fail_msg("%s is reported DAX: %s", dirs[i], dax.why);
		assert_non_null(memchr(dax.why, 0, sizeof(dax.why)));
		assert_non_null(strstr(dax.why, "without dax"));
		if (sf.f_type == TMPFS_MAGIC)
			assert_non_null(strstr(dax.why, "tmpfs"));
		else if (sf.f_type == EXT4_SUPER_MAGIC)
			assert_non_null(strstr(dax.why, "ext4"));
	}
	assert_int_equal(cache_dax_probe("/nonexistent/cachemax-dax-test", &dax), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo_dax_modes),
		cmocka_unit_test(test_mountinfo_no_dax),
		cmocka_unit_test(test_mountinfo_rejects),
		cmocka_unit_test(test_mountinfo_prefixes),
		cmocka_unit_test(test_mountinfo_real),
		cmocka_unit_test(test_probe_negative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
