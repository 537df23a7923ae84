/* Unit tests for src/util/log.c: the size rotation of a log file (stderr and stdout move to a
 * new file, LOG_ROTATE_KEEP old ones kept) and the journal detection by JOURNAL_STREAM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/log.h"

static off_t size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_rotation(void **state)
{
	char dir[] = "/tmp/cm-test-log.XXXXXX", path[64], old[80], cmd[96];
	int saved = dup(STDERR_FILENO), fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_set_rotation(path, 1000);
	for (int i = 0; i < 100; i++)
		log_info("line %d of a log that grows past its limit", i);
	log_set_rotation(NULL, 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	/* each file at most the limit plus one line; the newest lines in the current file */
	assert_true(size_of(path) > 0 && size_of(path) < 1100);
	for (int i = 1; i <= LOG_ROTATE_KEEP; i++) {
		snprintf(old, sizeof(old), "%s.%d", path, i);
		assert_true(size_of(old) >= 1000 && size_of(old) < 1100);
	}
	snprintf(old, sizeof(old), "%s.%d", path, LOG_ROTATE_KEEP + 1);
	assert_int_equal(size_of(old), -1);
	{
		char buf[2048] = "";
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
		assert_non_null(strstr(buf, "line 99 of"));
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_journal_detection(void **state)
{
	char path[] = "/tmp/cm-test-journal.XXXXXX", value[64];
	int saved = dup(STDERR_FILENO), fd = mkstemp(path);
	struct stat st;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	unsetenv("JOURNAL_STREAM");
	assert_false(log_stderr_is_journal());
	dup2(fd, STDERR_FILENO);
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", value, 1);
	assert_true(log_stderr_is_journal());
	/* the variable inherited, stderr elsewhere: not the journal */
	dup2(saved, STDERR_FILENO);
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "junk", 1);
	assert_false(log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
	close(saved);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_journal_detection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
