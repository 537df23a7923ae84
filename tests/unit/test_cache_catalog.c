/* Unit tests for src/cache/cache_catalog.c, the metadata catalog: a listing put and got back
 * sorted with its attributes, a changed directory stamp is a miss, a name missing from a valid
 * listing is a negative answer, a stamp too recent to trust is not recorded, attributes got and
 * replaced,
 * bad names refused, every truncated prefix and flipped byte of a record refused (a torn record
 * on disk is a miss and is removed), a reopen after an unclean close (temporary files of
 * interrupted puts swept, intact records served), a failed rename keeps the old record, the
 * listings kept in memory stay bounded and never outlive a change, threads putting and reading
 * one directory see whole versions only, and 100,000 entries (one directory, and 1,000
 * directories of 100).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cache_bytes.h"
#include "cache/cache_catalog.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"

#define SCALE_ENTRIES 100000u
#define SCALE_DIRS 1000u
#define DEV 0x801u

static char base[64];

static int setup(void **state)
{
	snprintf(base, sizeof(base), "/tmp/cm-catalog-test.XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	assert_int_equal(system(cmd), 0);
	sys_fault_clear();
	return 0;
}

static struct cache_catalog *open_catalog(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/catalog", base);
	struct cache_catalog *catalog = NULL;
	assert_int_equal(cache_catalog_open(path, &catalog), 0);
	return catalog;
}

static struct cache_catalog_entry make_entry(const char *name, uint64_t ino)
{
	struct cache_catalog_entry e = { .name = name, .type = DT_REG };
	e.attr.dev = DEV;
	e.attr.ino = ino;
	e.attr.mode = 0100644;
	e.attr.nlink = 1;
	e.attr.uid = 1000;
	e.attr.gid = 100;
	e.attr.size = ino * 7;
	e.attr.blocks = 8;
	e.attr.blksize = 4096;
	e.attr.atime_ns = 1700000000123456789;
	e.attr.mtime_ns = 1700000001000000000 + (int64_t)ino;
	e.attr.ctime_ns = 1700000002000000000 + (int64_t)ino;
	e.attr.handle.type = 1;
	e.attr.handle.bytes = 8;
	for (unsigned i = 0; i < 8; i++)
		e.attr.handle.data[i] = (uint8_t)(ino >> (8 * i));
	e.attr.flags = ino % 2 ? CACHE_CATALOG_ATTR_NO_XATTRS : 0;
	return e;
}

static const struct cache_catalog_stamp stamp1 = { .ino = 2, .mtime_ns = 1000, .ctime_ns = 2000 };

static void assert_attr_equal(const struct cache_catalog_attr *a, const struct cache_catalog_attr *b)
{
	assert_int_equal(a->dev, b->dev);
	assert_int_equal(a->ino, b->ino);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->ctime_ns, b->ctime_ns);
	assert_int_equal(a->atime_ns, b->atime_ns);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->handle.type, b->handle.type);
	assert_int_equal(a->handle.bytes, b->handle.bytes);
	assert_memory_equal(a->handle.data, b->handle.data, a->handle.bytes);
}

static void test_listing_put_get(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry in[3] = { make_entry("zeta", 30), make_entry("alpha", 10), make_entry("mid", 20) };
	in[2].type = DT_DIR;
	in[2].attr.handle.bytes = 0;   /* no handle */
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, 3), 0);
	struct cache_catalog_listing *l = NULL;
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), 0);
	assert_int_equal(l->count, 3);
	assert_string_equal(l->entries[0].name, "alpha");
	assert_string_equal(l->entries[1].name, "mid");
	assert_string_equal(l->entries[2].name, "zeta");
	assert_int_equal(l->entries[1].type, DT_DIR);
	assert_attr_equal(&l->entries[0].attr, &in[1].attr);
	assert_attr_equal(&l->entries[1].attr, &in[2].attr);
	assert_attr_equal(&l->entries[2].attr, &in[0].attr);
	assert_ptr_equal(cache_catalog_listing_find(l, "mid"), &l->entries[1]);
	assert_null(cache_catalog_listing_find(l, "nope"));
	assert_null(cache_catalog_listing_find(l, "a"));
	cache_catalog_listing_free(l);
	/* another directory is a miss; an empty listing is a listing */
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 3, &stamp1, &l), -ENOENT);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 3, &stamp1, NULL, 0), 0);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 3, &stamp1, &l), 0);
	assert_int_equal(l->count, 0);
	cache_catalog_listing_free(l);
	/* forget */
	assert_int_equal(cache_catalog_dir_forget(catalog, DEV, 2), 0);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), -ENOENT);
	assert_int_equal(cache_catalog_dir_forget(catalog, DEV, 2), 0);
	cache_catalog_free(catalog);
}

static void test_stamp_mismatch_is_miss(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry e = make_entry("f", 5);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, &e, 1), 0);
	struct cache_catalog_stamp other[3] = { stamp1, stamp1, stamp1 };
	other[0].mtime_ns++;
	other[1].ctime_ns++;
	other[2].ino++;
	struct cache_catalog_listing *l = NULL;
	struct cache_catalog_attr attr;
	assert_int_equal(cache_catalog_dir_valid(catalog, DEV, 2, &stamp1), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cache_catalog_dir_valid(catalog, DEV, 2, &other[i]), -ENOENT);
		assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &other[i], &l), -ENOENT);
		assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &other[i], "f", &attr), -ENOENT);
		assert_int_equal(cache_catalog_attr_put(catalog, DEV, 2, &other[i], "f", &e.attr), -ENOENT);
	}
	/* the record stays for the stamp it was made with */
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), 0);
	cache_catalog_listing_free(l);
	/* a re-listing replaces it */
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &other[1], NULL, 0), 0);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), -ENOENT);
	assert_int_equal(cache_catalog_dir_valid(catalog, DEV, 2, &stamp1), -ENOENT);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &other[1], &l), 0);
	assert_int_equal(l->count, 0);
	cache_catalog_listing_free(l);
	cache_catalog_free(catalog);
}

static void test_attr_put_get(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry in[2] = { make_entry("a", 10), make_entry("b", 11) };
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, 2), 0);
	struct cache_catalog_attr attr;
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "b", &attr), 0);
	assert_attr_equal(&attr, &in[1].attr);
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "c", &attr), -ENODATA);
	attr.size = 123456;
	attr.ctime_ns += 5;
	assert_int_equal(cache_catalog_attr_put(catalog, DEV, 2, &stamp1, "b", &attr), 0);
	struct cache_catalog_attr again;
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "b", &again), 0);
	assert_attr_equal(&again, &attr);
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "a", &again), 0);
	assert_attr_equal(&again, &in[0].attr);
	assert_int_equal(cache_catalog_attr_put(catalog, DEV, 2, &stamp1, "c", &attr), -ENODATA);
	/* stat round trip and the ctime rule */
	struct stat st;
	cache_catalog_attr_to_stat(&attr, &st);
	struct cache_catalog_attr back;
	cache_catalog_attr_from_stat(&st, &back);
	back.handle = attr.handle;
	back.flags = attr.flags;   /* neither is in a struct stat */
	assert_attr_equal(&back, &attr);
	assert_true(cache_catalog_attr_matches(&attr, &st));
	st.st_ctim.tv_nsec = (st.st_ctim.tv_nsec + 1) % 1000000000;
	assert_false(cache_catalog_attr_matches(&attr, &st));
	cache_catalog_free(catalog);
}

/* A stamp younger than the racy window is not recorded: a change in the same clock tick would
 * leave it unchanged. One just past the window is. */
static void test_racy_stamp_not_recorded(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry e = make_entry("f", 1);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	struct cache_catalog_stamp fresh = { .ino = 2, .mtime_ns = now_ns - 1000000, .ctime_ns = now_ns - CACHE_CATALOG_RACY_NS * 2 };
	struct cache_catalog_stamp ctime_fresh = { .ino = 2, .mtime_ns = 1000, .ctime_ns = now_ns };
	struct cache_catalog_stamp settled = { .ino = 2, .mtime_ns = now_ns - CACHE_CATALOG_RACY_NS - 1000000000,
	                                       .ctime_ns = now_ns - CACHE_CATALOG_RACY_NS - 1000000000 };
	struct cache_catalog_listing *l;
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &settled, &e, 1), 0);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &fresh, &e, 1), -EAGAIN);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &fresh, &l), -ENOENT);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &settled, &l), -ENOENT);   /* dropped too */
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &ctime_fresh, &e, 1), -EAGAIN);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &settled, &e, 1), 0);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &settled, &l), 0);
	cache_catalog_listing_free(l);
	cache_catalog_free(catalog);
}

static void test_bad_names_refused(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	const char *bad[] = { "", ".", "..", "a/b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cache_catalog_entry e = make_entry(bad[i], 1);
		assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, &e, 1), -EINVAL);
	}
	char long_name[300];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	struct cache_catalog_entry e = make_entry(long_name, 1);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, &e, 1), -EINVAL);
	struct cache_catalog_entry dup[2] = { make_entry("same", 1), make_entry("same", 2) };
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, dup, 2), -EINVAL);
	struct cache_catalog_listing *l;
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), -ENOENT);
	cache_catalog_free(catalog);
}

/* Every truncated prefix, and a flip of every byte, of an encoded record is refused. */
static void test_record_prefixes_flips(void **state)
{
	struct cache_catalog_entry in[3] = { make_entry("one", 1), make_entry("two", 2), make_entry("three", 3) };
	uint8_t *buf;
	size_t len;
	assert_int_equal(cache_catalog_record_encode(DEV, 2, &stamp1, in, 3, &buf, &len), 0);
	struct cache_catalog_listing *l;
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), 0);
	assert_int_equal(l->count, 3);
	cache_catalog_listing_free(l);
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 3, &l), -EBADMSG);   /* another dir */
	for (size_t n = 0; n < len; n++) {
		uint8_t *prefix = malloc(n ? n : 1);
		memcpy(prefix, buf, n);
		assert_int_equal(cache_catalog_record_decode(prefix, n, DEV, 2, &l), -EBADMSG);
		free(prefix);
	}
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), -EBADMSG);
		buf[i] ^= 0x20;
	}
	free(buf);
}

/* Version 2 carries each entry's flags (byte 93); a version 1 record (byte 93 zero) is still
 * read, and one with a flag set is not (version 1 had none). */
static void test_record_versions(void **state)
{
	struct cache_catalog_entry in[2] = { make_entry("even", 2), make_entry("odd", 3) };
	struct cache_catalog_listing *l;
	uint8_t *buf;
	size_t len;
	(void)state;
	assert_int_equal(cache_catalog_record_encode(DEV, 2, &stamp1, in, 2, &buf, &len), 0);
	assert_int_equal(cache_get_le32(buf + 4), 2);
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), 0);
	assert_int_equal(cache_catalog_listing_find(l, "odd")->attr.flags, CACHE_CATALOG_ATTR_NO_XATTRS);
	assert_int_equal(cache_catalog_listing_find(l, "even")->attr.flags, 0);
	cache_catalog_listing_free(l);
	cache_put_le32(buf + 4, 1);   /* as version 1: the flag set is refused ... */
	cache_put_le32(buf + len - 4, cache_crc32c(0, buf, len - 4));
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), -EBADMSG);
	free(buf);
	in[1].attr.flags = 0;          /* ... none set is read */
	assert_int_equal(cache_catalog_record_encode(DEV, 2, &stamp1, in, 2, &buf, &len), 0);
	cache_put_le32(buf + 4, 1);
	cache_put_le32(buf + len - 4, cache_crc32c(0, buf, len - 4));
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), 0);
	assert_int_equal(l->count, 2);
	cache_catalog_listing_free(l);
	cache_put_le32(buf + 4, 3);   /* a later version is not */
	cache_put_le32(buf + len - 4, cache_crc32c(0, buf, len - 4));
	assert_int_equal(cache_catalog_record_decode(buf, len, DEV, 2, &l), -EBADMSG);
	free(buf);
}

static void record_file(char *path, size_t size, uint64_t ino)
{
	/* the one record file of directory (DEV, ino): found by its name in any bucket */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls %s/catalog/*/%x-%lx.dir", base, DEV, (unsigned long)ino);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(path, (int)size, p));
	path[strcspn(path, "\n")] = '\0';
	pclose(p);
}

static size_t count_files(const char *pattern)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls -a %s/catalog/* 2>/dev/null | grep -c -- '%s' || true", base, pattern);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	unsigned long n = 0;
	assert_int_equal(fscanf(p, "%lu", &n), 1);
	pclose(p);
	return n;
}

/* A torn record on disk (any length short of whole, or a damaged byte) is a miss and removed;
 * after an unclean close, the reopen sweeps temporaries and intact records still serve. */
static void test_crash_reopen_no_torn_entries(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry in[4] = { make_entry("a", 1), make_entry("bb", 2), make_entry("ccc", 3),
	                                     make_entry("dddd", 4) };
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 7, &stamp1, in, 4), 0);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 8, &stamp1, in, 2), 0);
	char path[256];
	record_file(path, sizeof(path), 7);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t whole[4096];
	size_t len = fread(whole, 1, sizeof(whole), f);
	fclose(f);
	assert_true(len > 64);
	/* "crash": the catalog is never freed, a put left a temporary */
	char temp[300];
	snprintf(temp, sizeof(temp), "%s/catalog/tmp/.tmp-leftover", base);
	f = fopen(temp, "wb");
	assert_non_null(f);
	fwrite(whole, 1, len / 2, f);
	fclose(f);
	free(catalog);   /* leaks its fd on purpose: an unclean close */
	struct cache_catalog_listing *l;
	for (size_t n = 0; n <= len; n += (n < 200 ? 1 : 37)) {
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(whole, 1, n == len ? len - 1 : n, f), n == len ? len - 1 : n);
		fclose(f);
		catalog = open_catalog();
		assert_int_equal(count_files(".tmp-"), 0);
		assert_int_equal(cache_catalog_dir_get(catalog, DEV, 7, &stamp1, &l), -ENOENT);
		assert_int_equal(access(path, F_OK), -1);   /* removed */
		assert_int_equal(cache_catalog_dir_get(catalog, DEV, 8, &stamp1, &l), 0);
		assert_int_equal(l->count, 2);
		cache_catalog_listing_free(l);
		cache_catalog_free(catalog);
	}
	/* a damaged byte anywhere: a miss */
	for (size_t i = 0; i < len; i += 11) {
		whole[i] ^= 1;
		f = fopen(path, "wb");
		fwrite(whole, 1, len, f);
		fclose(f);
		whole[i] ^= 1;
		catalog = open_catalog();
		assert_int_equal(cache_catalog_dir_get(catalog, DEV, 7, &stamp1, &l), -ENOENT);
		cache_catalog_free(catalog);
	}
	/* and the whole record again: served */
	f = fopen(path, "wb");
	fwrite(whole, 1, len, f);
	fclose(f);
	catalog = open_catalog();
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 7, &stamp1, &l), 0);
	assert_int_equal(l->count, 4);
	cache_catalog_listing_free(l);
	cache_catalog_free(catalog);
}

/* A put whose write or rename fails leaves the old record served and no temporary behind. */
static void test_failed_put_keeps_old_record(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry in[2] = { make_entry("a", 1), make_entry("b", 2) };
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, 2), 0);
	struct cache_catalog_listing *l;
	sys_fault_set(SYS_OP_RENAMEAT2, 1, EIO);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, 1), -EIO);
	sys_fault_set(SYS_OP_PWRITE, 1, ENOSPC);
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, 1), -ENOSPC);
	sys_fault_clear();
	assert_int_equal(count_files(".tmp-"), 0);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), 0);
	assert_int_equal(l->count, 2);
	cache_catalog_listing_free(l);
	/* a read error is an error, not a miss (a fresh catalog: nothing decoded in memory yet) */
	cache_catalog_free(catalog);
	catalog = open_catalog();
	sys_fault_set(SYS_OP_PREAD, 1, EIO);
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), -EIO);
	sys_fault_clear();
	cache_catalog_free(catalog);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Listings kept in memory: a change through the catalog replaces them at once, and more
 * directories than fit are all still served (from disk). */
static void test_memory_bounded_and_fresh(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry e = make_entry("f", 1);
	struct cache_catalog_attr attr;
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, &e, 1), 0);
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "f", &attr), 0);   /* now in memory */
	attr.size = 999;
	assert_int_equal(cache_catalog_attr_put(catalog, DEV, 2, &stamp1, "f", &attr), 0);
	struct cache_catalog_attr again;
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "f", &again), 0);
	assert_int_equal(again.size, 999);
	assert_int_equal(cache_catalog_dir_forget(catalog, DEV, 2), 0);
	assert_int_equal(cache_catalog_attr_get(catalog, DEV, 2, &stamp1, "f", &again), -ENOENT);
	/* 600 directories (more than the 256 kept): every one served, a listing copy is independent */
	for (unsigned d = 0; d < 600; d++)
		assert_int_equal(cache_catalog_dir_put(catalog, DEV, 1000 + d, &stamp1, &e, 1), 0);
	for (unsigned round = 0; round < 2; round++)
		for (unsigned d = 0; d < 600; d++) {
			struct cache_catalog_listing *l;
			assert_int_equal(cache_catalog_dir_get(catalog, DEV, 1000 + d, &stamp1, &l), 0);
			assert_string_equal(l->entries[0].name, "f");
			l->entries[0].attr.size = 1;   /* the caller's copy */
			cache_catalog_listing_free(l);
			assert_int_equal(cache_catalog_attr_get(catalog, DEV, 1000 + d, &stamp1, "f", &attr), 0);
			assert_int_equal(attr.size, e.attr.size);
		}
	cache_catalog_free(catalog);
}

/* Threads: two put two versions of one directory (2 and 3 entries, same stamp), two read it;
 * every listing read is one whole version, never a mix or a torn one. */
#define RACE_ROUNDS 1500
static struct cache_catalog *race_catalog;

static void *race_writer(void *arg)
{
	struct cache_catalog_entry v[3] = { make_entry("a", 1), make_entry("b", 2), make_entry("c", 3) };
	size_t count = (size_t)(uintptr_t)arg;
	for (int i = 0; i < RACE_ROUNDS; i++)
		if (cache_catalog_dir_put(race_catalog, DEV, 2, &stamp1, v, count) != 0)
			return (void *)1;
	return NULL;
}

static void *race_reader(void *arg)
{
	for (int i = 0; i < RACE_ROUNDS; i++) {
		struct cache_catalog_listing *l;
		if (cache_catalog_dir_get(race_catalog, DEV, 2, &stamp1, &l) != 0)
			return (void *)1;
		int ok = (l->count == 2 || l->count == 3) && strcmp(l->entries[0].name, "a") == 0 &&
		         strcmp(l->entries[1].name, "b") == 0 && (l->count == 2 || strcmp(l->entries[2].name, "c") == 0);
		cache_catalog_listing_free(l);
		struct cache_catalog_attr attr;
		if (!ok || cache_catalog_attr_get(race_catalog, DEV, 2, &stamp1, "b", &attr) != 0 || attr.ino != 2)
			return (void *)1;
	}
	return NULL;
}

static void test_threads_see_whole_versions(void **state)
{
	race_catalog = open_catalog();
	struct cache_catalog_entry v[2] = { make_entry("a", 1), make_entry("b", 2) };
	assert_int_equal(cache_catalog_dir_put(race_catalog, DEV, 2, &stamp1, v, 2), 0);
	pthread_t t[4];
	assert_int_equal(pthread_create(&t[0], NULL, race_writer, (void *)(uintptr_t)2), 0);
	assert_int_equal(pthread_create(&t[1], NULL, race_writer, (void *)(uintptr_t)3), 0);
	assert_int_equal(pthread_create(&t[2], NULL, race_reader, NULL), 0);
	assert_int_equal(pthread_create(&t[3], NULL, race_reader, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *rc;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
	assert_int_equal(count_files(".tmp-"), 0);
	cache_catalog_free(race_catalog);
}

/* 100,000 entries: in one directory, and in 1,000 directories of 100. */
static void test_scale_100k(void **state)
{
	struct cache_catalog *catalog = open_catalog();
	struct cache_catalog_entry *in = calloc(SCALE_ENTRIES, sizeof(*in));
	char (*names)[16] = calloc(SCALE_ENTRIES, 16);
	assert_non_null(in);
	assert_non_null(names);
	for (unsigned i = 0; i < SCALE_ENTRIES; i++) {
		snprintf(names[i], 16, "f%07u", (i * 7919u) % SCALE_ENTRIES);   /* unsorted, unique */
		in[i] = make_entry(names[i], 1000 + i);
	}
	double t0 = now_s();
	assert_int_equal(cache_catalog_dir_put(catalog, DEV, 2, &stamp1, in, SCALE_ENTRIES), 0);
	double t1 = now_s();
	struct cache_catalog_listing *l;
	assert_int_equal(cache_catalog_dir_get(catalog, DEV, 2, &stamp1, &l), 0);
	double t2 = now_s();
	assert_int_equal(l->count, SCALE_ENTRIES);
	for (unsigned i = 0; i < SCALE_ENTRIES; i++) {
		const struct cache_catalog_entry *e = cache_catalog_listing_find(l, names[i]);
		assert_non_null(e);
		assert_int_equal(e->attr.ino, 1000 + i);
	}
	cache_catalog_listing_free(l);
	for (unsigned d = 0; d < SCALE_DIRS; d++)
		assert_int_equal(cache_catalog_dir_put(catalog, DEV, 100 + d, &stamp1,
		                                       in + d * (SCALE_ENTRIES / SCALE_DIRS), SCALE_ENTRIES / SCALE_DIRS), 0);
	double t3 = now_s();
	for (unsigned d = 0; d < SCALE_DIRS; d++) {
		assert_int_equal(cache_catalog_dir_get(catalog, DEV, 100 + d, &stamp1, &l), 0);
		assert_int_equal(l->count, SCALE_ENTRIES / SCALE_DIRS);
		assert_non_null(cache_catalog_listing_find(l, names[d * (SCALE_ENTRIES / SCALE_DIRS)]));
		cache_catalog_listing_free(l);
	}
	double t4 = now_s();
	printf("catalog scale (sanitizer build): one dir of %u: put %.0f ms, get %.0f ms; %u dirs of %u: put %.0f ms, get %.0f ms\n",
	       SCALE_ENTRIES, (t1 - t0) * 1e3, (t2 - t1) * 1e3, SCALE_DIRS, SCALE_ENTRIES / SCALE_DIRS,
	       (t3 - t2) * 1e3, (t4 - t3) * 1e3);
	free(names);
	free(in);
	cache_catalog_free(catalog);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_listing_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stamp_mismatch_is_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attr_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racy_stamp_not_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
		cmocka_unit_test(test_record_prefixes_flips),
		cmocka_unit_test(test_record_versions),
		cmocka_unit_test_setup_teardown(test_crash_reopen_no_torn_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_put_keeps_old_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_bounded_and_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_see_whole_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_100k, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
