/* catalog-bench: the metadata catalog's storage choice (DESIGN §9, issue 14) measured — the
 * catalog's own per-directory records (src/cache/cache_catalog.c) against SQLite in WAL mode
 * holding the same listings and attributes — at DIRS directories of PER_DIR entries (default
 * 10,000 x 1,000 = 10 million entries), in directory PATH (put it on the cache device):
 *   write      every listing written once (a re-listing of every directory), entries/s
 *   start      open + the first listing read, in this process after a clean close, and after
 *              an unclean one (a child writes and dies without closing: SQLite's WAL is left
 *              to recover, the records' open sweeps the temporaries a crash left in tmp/)
 *   listing    a random directory's whole listing read, µs
 *   lookup     one random entry (directory stamp check + the entry), µs; and every entry of a
 *              directory in turn (a walk: the records' decoded listing is then kept in memory)
 *   update     one entry's attributes replaced, µs
 *   size       bytes on disk
 *     build/bench/catalog-bench PATH [DIRS] [PER_DIR]      (make build/bench/catalog-bench)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <sqlite3.h>

#include "cache/cache_catalog.h"

#define DEV 0x801u
#define SAMPLES 2000u
#define WALK_DIRS 20u

static unsigned dirs = 10000, per_dir = 1000;
static char path_records[512], path_sqlite[512];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "catalog-bench: %s failed (%d: %s)\n", what, rc, rc < 0 ? strerror(-rc) : "");
	exit(1);
}

static struct cache_catalog_stamp stamp_of(unsigned d)
{
	struct cache_catalog_stamp s = { .ino = 1000000 + d, .mtime_ns = 1700000000000000000 + d, .ctime_ns = 1700000000000000001 + d };
	return s;
}

static void entry_of(unsigned d, unsigned i, char *name, struct cache_catalog_entry *e)
{
	snprintf(name, 16, "f%06u.txt", i);
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->type = 8;
	uint64_t ino = 20000000ull + (uint64_t)d * per_dir + i;
	e->attr.dev = DEV;
	e->attr.ino = ino;
	e->attr.mode = 0100644;
	e->attr.nlink = 1;
	e->attr.size = 512 + ino % 3584;
	e->attr.blocks = 8;
	e->attr.blksize = 4096;
	e->attr.atime_ns = e->attr.mtime_ns = e->attr.ctime_ns = 1700000000000000000 + (int64_t)ino;
	e->attr.handle.type = 1;
	e->attr.handle.bytes = 8;
	memcpy(e->attr.handle.data, &ino, 8);
}

static uint64_t du_bytes(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "du -sb '%s' | cut -f1", path);
	FILE *p = popen(cmd, "r");
	unsigned long long n = 0;
	if (!p || fscanf(p, "%llu", &n) != 1)
		n = 0;
	if (p)
		pclose(p);
	return n;
}

/* --- the catalog's own records ---------------------------------------------------------- */

static void records_write(struct cache_catalog *c, unsigned from, unsigned to)
{
	struct cache_catalog_entry *e = malloc(per_dir * sizeof(*e));
	char (*names)[16] = malloc(per_dir * 16);
	for (unsigned d = from; d < to; d++) {
		for (unsigned i = 0; i < per_dir; i++)
			entry_of(d, i, names[i], &e[i]);
		struct cache_catalog_stamp s = stamp_of(d);
		int rc = cache_catalog_dir_put(c, DEV, 1000000 + d, &s, e, per_dir);
		if (rc < 0)
			die("cache_catalog_dir_put", rc);
	}
	free(names);
	free(e);
}

static void bench_records(void)
{
	struct cache_catalog *c;
	int rc = cache_catalog_open(path_records, &c);
	if (rc < 0)
		die("cache_catalog_open", rc);
	double t0 = now_s();
	records_write(c, 0, dirs);
	double t1 = now_s();
	cache_catalog_free(c);
	printf("records  write    %8.1f s   %9.0f entries/s   %6.1f MB on disk\n", t1 - t0,
	       (double)dirs * per_dir / (t1 - t0), du_bytes(path_records) / 1e6);

	struct cache_catalog_listing *l;
	struct cache_catalog_stamp s = stamp_of(dirs / 2);
	t0 = now_s();
	if ((rc = cache_catalog_open(path_records, &c)) < 0 || (rc = cache_catalog_dir_get(c, DEV, 1000000 + dirs / 2, &s, &l)) < 0)
		die("records start", rc);
	t1 = now_s();
	cache_catalog_listing_free(l);
	cache_catalog_free(c);
	printf("records  start    %8.2f ms  (clean close)\n", (t1 - t0) * 1e3);

	pid_t pid = fork();
	if (pid == 0) {   /* dies with the catalog open, in the middle of nothing in particular */
		if (cache_catalog_open(path_records, &c) < 0)
			_exit(1);
		records_write(c, 0, 10);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	t0 = now_s();
	if ((rc = cache_catalog_open(path_records, &c)) < 0 || (rc = cache_catalog_dir_get(c, DEV, 1000000 + dirs / 2, &s, &l)) < 0)
		die("records start after crash", rc);
	t1 = now_s();
	cache_catalog_listing_free(l);
	printf("records  start    %8.2f ms  (after an unclean close: sweep of tmp/)\n", (t1 - t0) * 1e3);

	srand(14);
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++) {
		unsigned d = (unsigned)rand() % dirs;
		s = stamp_of(d);
		if ((rc = cache_catalog_dir_get(c, DEV, 1000000 + d, &s, &l)) < 0 || l->count != per_dir)
			die("records listing", rc);
		cache_catalog_listing_free(l);
	}
	t1 = now_s();
	printf("records  listing  %8.1f µs  (%u entries)\n", (t1 - t0) * 1e6 / SAMPLES, per_dir);
	char name[16];
	struct cache_catalog_entry e;
	struct cache_catalog_attr a;
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++) {
		unsigned d = (unsigned)rand() % dirs, i = (unsigned)rand() % per_dir;
		entry_of(d, i, name, &e);
		s = stamp_of(d);
		if ((rc = cache_catalog_attr_get(c, DEV, 1000000 + d, &s, name, &a)) < 0 || a.ino != e.attr.ino)
			die("records lookup", rc);
	}
	t1 = now_s();
	printf("records  lookup   %8.1f µs  (random directory each time)\n", (t1 - t0) * 1e6 / SAMPLES);
	t0 = now_s();
	for (unsigned k = 0; k < WALK_DIRS; k++) {
		unsigned d = (unsigned)rand() % dirs;
		s = stamp_of(d);
		for (unsigned i = 0; i < per_dir; i++) {
			entry_of(d, i, name, &e);
			if ((rc = cache_catalog_attr_get(c, DEV, 1000000 + d, &s, name, &a)) < 0 || a.ino != e.attr.ino)
				die("records walk lookup", rc);
		}
	}
	t1 = now_s();
	printf("records  lookup   %8.1f µs  (every name of a directory in turn, as a walk does)\n",
	       (t1 - t0) * 1e6 / WALK_DIRS / per_dir);
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++) {
		unsigned d = (unsigned)rand() % dirs, i = (unsigned)rand() % per_dir;
		entry_of(d, i, name, &e);
		e.attr.size++;
		s = stamp_of(d);
		if ((rc = cache_catalog_attr_put(c, DEV, 1000000 + d, &s, name, &e.attr)) < 0)
			die("records update", rc);
	}
	t1 = now_s();
	printf("records  update   %8.1f µs\n", (t1 - t0) * 1e6 / SAMPLES);
	cache_catalog_free(c);
}

/* --- SQLite, WAL ------------------------------------------------------------------------ */

static void sq(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "catalog-bench: sqlite: %s: %s\n", sql, err);
		exit(1);
	}
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "catalog-bench: sqlite prepare: %s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
	return st;
}

static sqlite3 *sq_open(void)
{
	sqlite3 *db;
	if (sqlite3_open(path_sqlite, &db) != SQLITE_OK)
		die("sqlite3_open", 0);
	sq(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
	return db;
}

static const char *SQ_SCHEMA =
	"CREATE TABLE IF NOT EXISTS dirs(dev INTEGER, ino INTEGER, sino INTEGER, smtime INTEGER, sctime INTEGER,"
	" PRIMARY KEY(dev, ino)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS entries(pdev INTEGER, pino INTEGER, name TEXT, type INTEGER, dev INTEGER,"
	" ino INTEGER, mode INTEGER, nlink INTEGER, uid INTEGER, gid INTEGER, rdev INTEGER, size INTEGER,"
	" blocks INTEGER, blksize INTEGER, atime INTEGER, mtime INTEGER, ctime INTEGER, htype INTEGER,"
	" handle BLOB, PRIMARY KEY(pdev, pino, name)) WITHOUT ROWID;";

static void sq_write(sqlite3 *db, unsigned from, unsigned to)
{
	sqlite3_stmt *del = prep(db, "DELETE FROM entries WHERE pdev=?1 AND pino=?2");
	sqlite3_stmt *dir = prep(db, "INSERT OR REPLACE INTO dirs VALUES(?1,?2,?3,?4,?5)");
	sqlite3_stmt *ins = prep(db, "INSERT INTO entries VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)");
	char name[16];
	struct cache_catalog_entry e;
	for (unsigned d = from; d < to; d++) {
		sq(db, "BEGIN");
		sqlite3_bind_int64(del, 1, DEV);
		sqlite3_bind_int64(del, 2, 1000000 + d);
		sqlite3_step(del);
		sqlite3_reset(del);
		struct cache_catalog_stamp s = stamp_of(d);
		sqlite3_bind_int64(dir, 1, DEV);
		sqlite3_bind_int64(dir, 2, 1000000 + d);
		sqlite3_bind_int64(dir, 3, (int64_t)s.ino);
		sqlite3_bind_int64(dir, 4, s.mtime_ns);
		sqlite3_bind_int64(dir, 5, s.ctime_ns);
		if (sqlite3_step(dir) != SQLITE_DONE)
			die("sqlite dirs insert", 0);
		sqlite3_reset(dir);
		for (unsigned i = 0; i < per_dir; i++) {
			entry_of(d, i, name, &e);
			const struct cache_catalog_attr *a = &e.attr;
			sqlite3_bind_int64(ins, 1, DEV);
			sqlite3_bind_int64(ins, 2, 1000000 + d);
			sqlite3_bind_text(ins, 3, name, -1, SQLITE_STATIC);
			sqlite3_bind_int(ins, 4, e.type);
			sqlite3_bind_int64(ins, 5, (int64_t)a->dev);
			sqlite3_bind_int64(ins, 6, (int64_t)a->ino);
			sqlite3_bind_int64(ins, 7, a->mode);
			sqlite3_bind_int64(ins, 8, a->nlink);
			sqlite3_bind_int64(ins, 9, a->uid);
			sqlite3_bind_int64(ins, 10, a->gid);
			sqlite3_bind_int64(ins, 11, (int64_t)a->rdev);
			sqlite3_bind_int64(ins, 12, (int64_t)a->size);
			sqlite3_bind_int64(ins, 13, (int64_t)a->blocks);
			sqlite3_bind_int64(ins, 14, a->blksize);
			sqlite3_bind_int64(ins, 15, a->atime_ns);
			sqlite3_bind_int64(ins, 16, a->mtime_ns);
			sqlite3_bind_int64(ins, 17, a->ctime_ns);
			sqlite3_bind_int64(ins, 18, a->handle.type);
			sqlite3_bind_blob(ins, 19, a->handle.data, (int)a->handle.bytes, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE)
				die("sqlite entries insert", 0);
			sqlite3_reset(ins);
		}
		sq(db, "COMMIT");
	}
	sqlite3_finalize(del);
	sqlite3_finalize(dir);
	sqlite3_finalize(ins);
}

/* The listing of d, its stamp checked: the number of entries read. */
static unsigned sq_listing(sqlite3 *db, unsigned d)
{
	static __thread sqlite3_stmt *st_dir, *st_list;
	static __thread sqlite3 *for_db;
	if (for_db != db) {
		st_dir = prep(db, "SELECT sino, smtime, sctime FROM dirs WHERE dev=?1 AND ino=?2");
		st_list = prep(db, "SELECT * FROM entries WHERE pdev=?1 AND pino=?2 ORDER BY name");
		for_db = db;
	}
	struct cache_catalog_stamp s = stamp_of(d);
	sqlite3_bind_int64(st_dir, 1, DEV);
	sqlite3_bind_int64(st_dir, 2, 1000000 + d);
	if (sqlite3_step(st_dir) != SQLITE_ROW || sqlite3_column_int64(st_dir, 1) != s.mtime_ns)
		die("sqlite stamp", 0);
	sqlite3_reset(st_dir);
	sqlite3_bind_int64(st_list, 1, DEV);
	sqlite3_bind_int64(st_list, 2, 1000000 + d);
	unsigned n = 0;
	uint64_t sum = 0;
	while (sqlite3_step(st_list) == SQLITE_ROW) {
		sum += (uint64_t)sqlite3_column_int64(st_list, 5) + (uint64_t)sqlite3_column_bytes(st_list, 2);
		(void)sqlite3_column_blob(st_list, 18);
		n++;
	}
	sqlite3_reset(st_list);
	return sum ? n : 0;
}

static void bench_sqlite(void)
{
	sqlite3 *db = sq_open();
	sq(db, SQ_SCHEMA);
	double t0 = now_s();
	sq_write(db, 0, dirs);
	sq(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	double t1 = now_s();
	sqlite3_close(db);
	printf("sqlite   write    %8.1f s   %9.0f entries/s   %6.1f MB on disk\n", t1 - t0,
	       (double)dirs * per_dir / (t1 - t0), (du_bytes(path_sqlite) + 0.0) / 1e6);

	t0 = now_s();
	db = sq_open();
	if (sq_listing(db, dirs / 2) != per_dir)
		die("sqlite start", 0);
	t1 = now_s();
	printf("sqlite   start    %8.2f ms  (clean close)\n", (t1 - t0) * 1e3);
	sqlite3_close(db);

	pid_t pid = fork();
	if (pid == 0) {   /* writes 10 directories and dies without closing: the WAL stays */
		sqlite3 *child = sq_open();
		sq_write(child, 0, 10);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	t0 = now_s();
	db = sq_open();
	if (sq_listing(db, dirs / 2) != per_dir)
		die("sqlite start after crash", 0);
	t1 = now_s();
	printf("sqlite   start    %8.2f ms  (after an unclean close: WAL recovery)\n", (t1 - t0) * 1e3);

	srand(14);
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++)
		if (sq_listing(db, (unsigned)rand() % dirs) != per_dir)
			die("sqlite listing", 0);
	t1 = now_s();
	printf("sqlite   listing  %8.1f µs  (%u entries)\n", (t1 - t0) * 1e6 / SAMPLES, per_dir);
	sqlite3_stmt *st_dir = prep(db, "SELECT sino, smtime, sctime FROM dirs WHERE dev=?1 AND ino=?2");
	sqlite3_stmt *st_one = prep(db, "SELECT * FROM entries WHERE pdev=?1 AND pino=?2 AND name=?3");
	sqlite3_stmt *st_upd = prep(db, "UPDATE entries SET size=?4 WHERE pdev=?1 AND pino=?2 AND name=?3");
	char name[16];
	struct cache_catalog_entry e;
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++) {
		unsigned d = (unsigned)rand() % dirs, i = (unsigned)rand() % per_dir;
		entry_of(d, i, name, &e);
		sqlite3_bind_int64(st_dir, 1, DEV);
		sqlite3_bind_int64(st_dir, 2, 1000000 + d);
		if (sqlite3_step(st_dir) != SQLITE_ROW)
			die("sqlite lookup stamp", 0);
		sqlite3_reset(st_dir);
		sqlite3_bind_int64(st_one, 1, DEV);
		sqlite3_bind_int64(st_one, 2, 1000000 + d);
		sqlite3_bind_text(st_one, 3, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st_one) != SQLITE_ROW || (uint64_t)sqlite3_column_int64(st_one, 5) != e.attr.ino)
			die("sqlite lookup", 0);
		sqlite3_reset(st_one);
	}
	t1 = now_s();
	printf("sqlite   lookup   %8.1f µs  (random directory each time)\n", (t1 - t0) * 1e6 / SAMPLES);
	t0 = now_s();
	for (unsigned k = 0; k < WALK_DIRS; k++) {
		unsigned d = (unsigned)rand() % dirs;
		for (unsigned i = 0; i < per_dir; i++) {
			entry_of(d, i, name, &e);
			sqlite3_bind_int64(st_dir, 1, DEV);
			sqlite3_bind_int64(st_dir, 2, 1000000 + d);
			if (sqlite3_step(st_dir) != SQLITE_ROW)
				die("sqlite walk stamp", 0);
			sqlite3_reset(st_dir);
			sqlite3_bind_int64(st_one, 1, DEV);
			sqlite3_bind_int64(st_one, 2, 1000000 + d);
			sqlite3_bind_text(st_one, 3, name, -1, SQLITE_STATIC);
			if (sqlite3_step(st_one) != SQLITE_ROW || (uint64_t)sqlite3_column_int64(st_one, 5) != e.attr.ino)
				die("sqlite walk lookup", 0);
			sqlite3_reset(st_one);
		}
	}
	t1 = now_s();
	printf("sqlite   lookup   %8.1f µs  (every name of a directory in turn, as a walk does)\n",
	       (t1 - t0) * 1e6 / WALK_DIRS / per_dir);
	t0 = now_s();
	for (unsigned k = 0; k < SAMPLES; k++) {
		unsigned d = (unsigned)rand() % dirs, i = (unsigned)rand() % per_dir;
		entry_of(d, i, name, &e);
		sqlite3_bind_int64(st_upd, 1, DEV);
		sqlite3_bind_int64(st_upd, 2, 1000000 + d);
		sqlite3_bind_text(st_upd, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st_upd, 4, (int64_t)e.attr.size + 1);
		if (sqlite3_step(st_upd) != SQLITE_DONE)
			die("sqlite update", 0);
		sqlite3_reset(st_upd);
	}
	t1 = now_s();
	printf("sqlite   update   %8.1f µs  (autocommit, synchronous=NORMAL)\n", (t1 - t0) * 1e6 / SAMPLES);
	sqlite3_finalize(st_dir);
	sqlite3_finalize(st_one);
	sqlite3_finalize(st_upd);
	sqlite3_close(db);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: catalog-bench PATH [DIRS] [PER_DIR]   (PATH: an empty directory on the cache device)\n");
		return 2;
	}
	if (argc > 2)
		dirs = (unsigned)strtoul(argv[2], NULL, 10);
	if (argc > 3)
		per_dir = (unsigned)strtoul(argv[3], NULL, 10);
	if (dirs < 2 || per_dir < 1) {
		fprintf(stderr, "catalog-bench: DIRS must be >= 2 and PER_DIR >= 1\n");
		return 2;
	}
	snprintf(path_records, sizeof(path_records), "%s/records", argv[1]);
	snprintf(path_sqlite, sizeof(path_sqlite), "%s/catalog.sqlite", argv[1]);
	printf("catalog-bench: %u directories x %u entries = %llu entries in %s (SQLite %s)\n", dirs, per_dir,
	       (unsigned long long)dirs * per_dir, argv[1], sqlite3_libversion());
	bench_records();
	bench_sqlite();
	return 0;
}
