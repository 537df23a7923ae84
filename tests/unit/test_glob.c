/* Unit tests of the one glob rule (util/glob.h): --pin, --exclude and cachemax warm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/glob.h"

/* Without '/': any component, so a name at any depth and everything below a directory. */
static void test_glob_component(void **state)
{
	assert_true(glob_match("*.iso", "a.iso"));
	assert_true(glob_match("*.iso", "projects/x/a.iso"));
	assert_false(glob_match("*.iso", "projects/a.isox"));
	assert_true(glob_match("tmp", "a/tmp/b/c"));
	assert_false(glob_match("tmp", "a/tmpx/b"));
	assert_true(glob_match("*", "anything/at/all"));
}

/* With '/': the path or a directory above it, '*' not crossing a '/'. */
static void test_glob_path(void **state)
{
	assert_true(glob_match("projects/*.iso", "projects/a.iso"));
	assert_false(glob_match("projects/*.iso", "projects/sub/a.iso"));
	assert_false(glob_match("projects/*.iso", "other/projects/a.iso"));
	assert_true(glob_match("projects/sub", "projects/sub/deep/file"));
	assert_true(glob_match("*/sub", "projects/sub/file"));
	assert_false(glob_match("projects/sub", "projects/subx/file"));
}

static void test_glob_any_and_limits(void **state)
{
	static const char *const globs[] = { "*.log", "cache/*" };
	static char longpath[5000];

	assert_true(glob_match_any(globs, 2, "x/y.log"));
	assert_true(glob_match_any(globs, 2, "cache/z"));
	assert_false(glob_match_any(globs, 2, "x/cache.txt"));
	assert_false(glob_match_any(globs, 0, "x.log"));
	memset(longpath, 'a', sizeof(longpath) - 1);
	assert_false(glob_match("*", longpath));  /* 4096 bytes or more: never */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob_component),
		cmocka_unit_test(test_glob_path),
		cmocka_unit_test(test_glob_any_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
