/* Unit tests of sys_memory.h: /proc/self/cgroup and memory-limit texts parsed strictly (also
 * every prefix, under ASan), and the memory a process may use chosen from physical memory and
 * its cgroups' limits, over a fake file reader (a table of paths and texts) instead of the
 * machine's files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sys/sys_memory.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* ---- sys_memory_cgroup_path ------------------------------------------------------------ */

static const char hybrid[] =   /* this machine's: v1 controllers and the v2 line */
	"9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ddbb\n2:cpu,cpuacct:/a\n0::/\n";

static void test_cgroup_path(void **state)
{
	char path[64];

	(void)state;
	assert_int_equal(sys_memory_cgroup_path("0::/system.slice/cachemax@x.service\n", false, path,
	                                        sizeof(path)), 0);
	assert_string_equal(path, "/system.slice/cachemax@x.service");
	assert_int_equal(sys_memory_cgroup_path("0::/\n", false, path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	assert_int_equal(sys_memory_cgroup_path("0::/no-newline", false, path, sizeof(path)), 0);
	assert_string_equal(path, "/no-newline");
	assert_int_equal(sys_memory_cgroup_path("0::/\n", true, path, sizeof(path)), -ENOENT);
	assert_int_equal(sys_memory_cgroup_path("", false, path, sizeof(path)), -ENOENT);

	assert_int_equal(sys_memory_cgroup_path(hybrid, true, path, sizeof(path)), 0);
	assert_string_equal(path, "/process_api/ddbb");
	assert_int_equal(sys_memory_cgroup_path(hybrid, false, path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	/* "memory" is a word of the controllers, not a part of one */
	assert_int_equal(sys_memory_cgroup_path("3:cpu,memory,io:/m\n", true, path, sizeof(path)), 0);
	assert_string_equal(path, "/m");
	assert_int_equal(sys_memory_cgroup_path("3:memory_x:/a\n5:xmemory:/b\n", true, path,
	                                        sizeof(path)), -ENOENT);
	/* a colon inside the path is the path's */
	assert_int_equal(sys_memory_cgroup_path("0::/a:b\n", false, path, sizeof(path)), 0);
	assert_string_equal(path, "/a:b");
	/* a v1 hierarchy with no controller but a name is not v2 */
	assert_int_equal(sys_memory_cgroup_path("1::/x\n", false, path, sizeof(path)), -ENOENT);
	assert_int_equal(sys_memory_cgroup_path("0::/0123456789\n", false, path, 11), -ENAMETOOLONG);
	assert_int_equal(sys_memory_cgroup_path("0::/012345678\n", false, path, 11), 0);
}

static void test_cgroup_path_rejects(void **state)
{
	static const char *const bad[] = {
		"0:/\n", "::/\n", "x::/\n", "0x::/\n", " 0::/\n", "0::\n", "0::relative\n",
		"4:memory:/a\n\n0::/\n", "4:memory:/a\ngarbage\n", "-1::/\n",
	};
	char path[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(path, "untouched");
		assert_int_equal(sys_memory_cgroup_path(bad[i], false, path, sizeof(path)), -EINVAL);
		assert_int_equal(sys_memory_cgroup_path(bad[i], true, path, sizeof(path)), -EINVAL);
		assert_string_equal(path, "untouched");
	}
}

/* Every prefix of a text, in a buffer of exactly its size (ASan sees any read past it): an
 * answer, never a crash. */
static void test_prefixes(void **state)
{
	static const char *const texts[] = {
		hybrid, "0::/system.slice/x.service\n", "12:cpu,memory:/a/b\n0::/c\n",
		"max\n", "9223372036854771712\n",
	};
	char path[64];
	uint64_t bytes;

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t len = strlen(texts[t]);
		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n + 1);
			int rc;
			assert_non_null(p);
			memcpy(p, texts[t], n);
			p[n] = '\0';
			for (int v1 = 0; v1 <= 1; v1++) {
				rc = sys_memory_cgroup_path(p, v1, path, sizeof(path));
				assert_true(rc == 0 || rc == -ENOENT || rc == -EINVAL);
				if (rc == 0)
					assert_true(path[0] == '/');
			}
			rc = sys_memory_limit_parse(p, &bytes);
			assert_true(rc == 0 || rc == -EINVAL);
			free(p);
		}
	}
}

/* ---- sys_memory_limit_parse ------------------------------------------------------------ */

static void test_limit_parse(void **state)
{
	static const char *const bad[] = {
		"", "\n", "max\n\n", " max", "MAX", "maximum", "-1", "+5", "12 ", " 12", "12\n\n",
		"12k", "1.5", "0x10", "18446744073709551616", "99999999999999999999999",
	};
	uint64_t bytes;

	(void)state;
	assert_int_equal(sys_memory_limit_parse("max\n", &bytes), 0);
	assert_true(bytes == SYS_MEMORY_NO_LIMIT);
	assert_int_equal(sys_memory_limit_parse("max", &bytes), 0);
	assert_true(bytes == SYS_MEMORY_NO_LIMIT);
	assert_int_equal(sys_memory_limit_parse("536870912\n", &bytes), 0);
	assert_true(bytes == 512 * MIB);
	assert_int_equal(sys_memory_limit_parse("0", &bytes), 0);
	assert_true(bytes == 0);
	/* cgroup v1's "no limit" (PAGE_COUNTER_MAX pages of 4 KiB) and the largest u64 */
	assert_int_equal(sys_memory_limit_parse("9223372036854771712\n", &bytes), 0);
	assert_true(bytes == 9223372036854771712ull);
	assert_int_equal(sys_memory_limit_parse("18446744073709551615", &bytes), 0);
	assert_true(bytes == UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bytes = 7;
		if (sys_memory_limit_parse(bad[i], &bytes) != -EINVAL)
			fail_msg("'%s' was taken as a memory limit", bad[i]);
		assert_true(bytes == 7);
	}
}

/* ---- sys_memory_usable_read: the choice -------------------------------------------------- */

static const char *const *fake_files;   /* path, text, path, text, ..., NULL */
static unsigned fake_reads;

static ssize_t fake_read(const char *path, char *buf, size_t size)
{
	fake_reads++;
	for (const char *const *f = fake_files; *f; f += 2) {
		if (strcmp(*f, path))
			continue;
		if (strlen(f[1]) >= size)
			return -EFBIG;
		strcpy(buf, f[1]);
		return (ssize_t)strlen(buf);
	}
	return -ENOENT;
}

static uint64_t usable(uint64_t physical, bool *from_cgroup, const char *const *files)
{
	fake_files = files;
	fake_reads = 0;
	return sys_memory_usable_read(physical, fake_read, from_cgroup);
}

static void test_usable_v2(void **state)
{
	const char *const unit[] = {
		"/proc/self/cgroup", "0::/system.slice/cachemax.service\n",
		"/sys/fs/cgroup/system.slice/cachemax.service/memory.max", "536870912\n",
		"/sys/fs/cgroup/system.slice/memory.max", "max\n",
		NULL,
	};
	const char *const unlimited[] = {
		"/proc/self/cgroup", "0::/user.slice/u\n",
		"/sys/fs/cgroup/user.slice/u/memory.max", "max\n",
		"/sys/fs/cgroup/user.slice/memory.max", "max\n",
		NULL,
	};
	const char *const slice[] = {   /* the parent's limit is smaller: it holds */
		"/proc/self/cgroup", "0::/a.slice/b.slice/c.service\n",
		"/sys/fs/cgroup/a.slice/b.slice/c.service/memory.max", "4294967296\n",
		"/sys/fs/cgroup/a.slice/b.slice/memory.max", "1073741824\n",
		"/sys/fs/cgroup/a.slice/memory.max", "2147483648\n",
		NULL,
	};
	const char *const container[] = {   /* no cgroup namespace: the limit at the mount's root */
		"/proc/self/cgroup", "0::/docker/0123abcd\n",
		"/sys/fs/cgroup/memory.max", "268435456\n",
		NULL,
	};
	bool cg;

	(void)state;
	assert_true(usable(16 * GIB, &cg, unit) == 512 * MIB);
	assert_true(cg);
	assert_true(usable(256 * MIB, &cg, unit) == 256 * MIB);   /* the machine is smaller */
	assert_false(cg);
	assert_true(usable(16 * GIB, &cg, unlimited) == 16 * GIB);
	assert_false(cg);
	assert_true(usable(16 * GIB, &cg, slice) == 1 * GIB);
	assert_true(cg);
	assert_true(usable(16 * GIB, &cg, container) == 256 * MIB);
	assert_true(cg);
	/* /proc/self/cgroup, then memory.max of c.service, b.slice, a.slice and the root */
	usable(16 * GIB, &cg, slice);
	assert_int_equal(fake_reads, 5);
	/* physical unknown: the limit alone; neither known: 0 */
	assert_true(usable(0, &cg, unit) == 512 * MIB);
	assert_true(cg);
	assert_true(usable(0, &cg, unlimited) == 0);
	assert_false(cg);
}

static void test_usable_v1(void **state)
{
	const char *const limited[] = {
		"/proc/self/cgroup", "9:name=systemd:/\n4:memory:/process_api/ddbb\n0::/\n",
		"/sys/fs/cgroup/memory/process_api/ddbb/memory.limit_in_bytes", "9223372036854771712\n",
		"/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "2147483648\n",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n",
		NULL,
	};
	const char *const unlimited[] = {   /* this machine: every level "no limit" */
		"/proc/self/cgroup", "4:memory:/process_api/ddbb\n0::/\n",
		"/sys/fs/cgroup/memory/process_api/ddbb/memory.limit_in_bytes", "9223372036854771712\n",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n",
		NULL,
	};
	const char *const both[] = {   /* v1 and v2 limits: the smaller */
		"/proc/self/cgroup", "4:memory:/m\n0::/u\n",
		"/sys/fs/cgroup/memory/m/memory.limit_in_bytes", "3221225472\n",
		"/sys/fs/cgroup/u/memory.max", "4294967296\n",
		NULL,
	};
	bool cg;

	(void)state;
	assert_true(usable(24 * GIB, &cg, limited) == 2 * GIB);
	assert_true(cg);
	assert_true(usable(24 * GIB, &cg, unlimited) == 24 * GIB);
	assert_false(cg);
	assert_true(usable(24 * GIB, &cg, both) == 3 * GIB);
	assert_true(cg);
}

/* What cannot be read or parsed sets no limit; it never lowers the memory to 0. */
static void test_usable_unreadable(void **state)
{
	const char *const none[] = { NULL };
	const char *const bad_proc[] = {
		"/proc/self/cgroup", "garbage\n0::/u\n",
		"/sys/fs/cgroup/u/memory.max", "1048576\n",
		NULL,
	};
	const char *const bad_limit[] = {
		"/proc/self/cgroup", "0::/u/v\n",
		"/sys/fs/cgroup/u/v/memory.max", "12 MB\n",
		"/sys/fs/cgroup/u/memory.max", "1073741824\n",
		NULL,
	};
	const char *const too_long[] = {
		"/proc/self/cgroup", "0::/u\n",
		"/sys/fs/cgroup/u/memory.max",
		"1073741824                                                                      \n",
		NULL,
	};
	bool cg;

	(void)state;
	assert_true(usable(8 * GIB, &cg, none) == 8 * GIB);
	assert_false(cg);
	assert_true(usable(8 * GIB, &cg, bad_proc) == 8 * GIB);
	assert_false(cg);
	assert_true(usable(8 * GIB, &cg, bad_limit) == 1 * GIB);   /* the parent's still holds */
	assert_true(cg);
	assert_true(usable(8 * GIB, &cg, too_long) == 8 * GIB);
	assert_false(cg);
}

/* The machine's own answer: never more than its physical memory, never 0 here. */
static void test_usable_here(void **state)
{
	bool cg;
	uint64_t here = sys_memory_usable(&cg);
	uint64_t physical = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

	(void)state;
	assert_true(here > 0);
	assert_true(here <= physical);
	assert_true(cg || here == physical);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_path),
		cmocka_unit_test(test_cgroup_path_rejects),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_limit_parse),
		cmocka_unit_test(test_usable_v2),
		cmocka_unit_test(test_usable_v1),
		cmocka_unit_test(test_usable_unreadable),
		cmocka_unit_test(test_usable_here),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
