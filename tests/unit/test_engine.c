/* Unit tests for src/engine/: the cache engine against two plain directories (an origin and a
 * cache in a temporary directory), without /dev/fuse. The test is the engine's host: its nodes
 * are O_PATH fds on the origin's files, its "backing files" fake ids. Covered: a miss filled
 * after the reply then a hit, a fill racing with a write (generation drop), a first read passed
 * through to the origin and filled behind at the last close, mirroring of writes into the cache
 * copy, a stale copy bypassed by one open file, the breaker (and that its callback runs with no
 * inode lock held), read-ahead ahead of a sequential reader, close-to-open where changes are
 * not watched (engine_settle.c: fresh and settled times, a fill job after the last release,
 * warm, a held object at a fresh open; the engine's clock is set off instead of waiting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine_int.h"
#include "sys/sys.h"

#define CHUNK (64u * 1024)
#define SCRATCH (1024u * 1024 + 4096)

struct node {
	int fd;                        /* O_PATH on the origin file */
	char name[64];
};

struct fixture {
	char dir[64];
	int origin_fd;                 /* O_PATH | O_DIRECTORY on dir/origin */
	int cache_fd;
	struct cache_store *store;
	struct stats *stats;
	struct engine *e;
	struct engine_config cfg;
	struct node node;
	struct engine_inode *ei;
	char *buf;                     /* the "reply" buffer, page-aligned */
	bool passthrough;              /* what host.passthrough_ok says */
	bool unwatched;                /* what host.changes_watched says, negated */
	int holds;                     /* node_hold minus node_drop */
	int backing_opens, backing_closes;
	int file_opens;                /* host.file_open calls (late opens of deferred files) */
	int file_open_fail;            /* -errno: host.file_open fails so */
	int breaker_calls;
	bool breaker_last_on;
	bool breaker_lock_free;        /* the inode's lock was free in every callback */
};

/* ---- the host --------------------------------------------------------------------------- */

static int host_origin_fd(void *arg, void *node) { return ((struct node *)node)->fd; }
static void host_origin_fd_put(void *arg, void *node, int fd) {}
static int host_open(void *arg, int dirfd, const char *name, int flags, mode_t mode)
{
	int fd = openat(dirfd, name, flags, mode);
	return fd < 0 ? -errno : fd;
}
static int host_file_open(void *arg, struct engine_file *ef)
{
	struct fixture *f = arg;
	char path[64];
	int fd;

	f->file_opens++;
	if (f->file_open_fail)
		return f->file_open_fail;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->node.fd);
	fd = open(path, ef->open_flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
static int host_relpath(void *arg, void *node, char *buf, size_t size)
{
	snprintf(buf, size, "%s", ((struct node *)node)->name);
	return 0;
}
static bool host_origin_handle(void *arg, void *node, struct cache_origin_handle *out) { return false; }
static void host_node_hold(void *arg, void *node) { ((struct fixture *)arg)->holds++; }
static void host_node_drop(void *arg, void *node) { ((struct fixture *)arg)->holds--; }
static bool host_passthrough_ok(void *arg) { return ((struct fixture *)arg)->passthrough; }
static bool host_changes_watched(void *arg, void *node) { return !((struct fixture *)arg)->unwatched; }
static int host_backing_open(void *arg, int fd)
{
	((struct fixture *)arg)->backing_opens++;
	return 7;
}
static int host_backing_close(void *arg, int id)
{
	((struct fixture *)arg)->backing_closes++;
	return id == 7 ? 0 : -EINVAL;
}

static void breaker_changed(void *arg, bool on, const char *why)
{
	struct fixture *f = arg;
	f->breaker_calls++;
	f->breaker_last_on = on;
	if (f->ei) {
		/* The daemon rewrites its state file here: no inode lock may be held. */
		if (pthread_mutex_trylock(&f->ei->lock) == 0)
			pthread_mutex_unlock(&f->ei->lock);
		else
			f->breaker_lock_free = false;
	}
}

static uint64_t counter(struct fixture *f, enum stats_counter c)
{
	return atomic_load(&f->stats->counter[c]);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int fixture_setup(void **state, unsigned retry_ms, uint64_t complete_max, unsigned kept_max)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cache_store_config sc = { 0 };
	const struct engine_host host = {
		.origin_fd = host_origin_fd, .origin_fd_put = host_origin_fd_put, .open = host_open,
		.file_open = host_file_open, .relpath = host_relpath, .origin_handle = host_origin_handle,
		.node_hold = host_node_hold, .node_drop = host_node_drop,
		.passthrough_ok = host_passthrough_ok, .backing_open = host_backing_open,
		.backing_close = host_backing_close, .changes_watched = host_changes_watched, .arg = f,
	};
	char path[128];
	struct stat root;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cm-test-engine.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/origin", f->dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	f->origin_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/cache", f->dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	f->cache_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->origin_fd < 0 || f->cache_fd < 0 || fstat(f->origin_fd, &root) < 0)
		return -1;
	sc.origin_dev = root.st_dev;
	sc.origin_ino = root.st_ino;
	sc.chunk_size = CHUNK;
	sc.persist_batch_chunks = 1;
	sys_fault_clear();
	if (cache_store_open(f->cache_fd, &sc, &f->store) < 0)
		return -1;
	f->stats = calloc(1, sizeof(*f->stats));
	if (!f->stats || posix_memalign((void **)&f->buf, 4096, SCRATCH) != 0)
		return -1;
	stats_init(f->stats);
	f->cfg.stats = f->stats;
	f->cfg.store = f->store;
	f->cfg.origin_fd = f->origin_fd;
	f->cfg.complete_max = complete_max;
	f->cfg.fill_threads = 1;
	f->cfg.first_read_origin = true;
	f->cfg.breaker_changed = breaker_changed;
	f->cfg.breaker_arg = f;
	f->cfg.breaker_retry_ms = retry_ms;
	f->cfg.kept_max = kept_max;
	f->breaker_lock_free = true;
	f->node.fd = -1;
	if (engine_create(&f->cfg, &host, &f->e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state) { return fixture_setup(state, 0, 64ull << 20, 0); }
static int setup_short_breaker(void **state) { return fixture_setup(state, 1000, 64ull << 20, 0); }
static int setup_no_completion(void **state) { return fixture_setup(state, 0, 0, 0); }
static int setup_kept(void **state) { return fixture_setup(state, 0, 64ull << 20, 8); }

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	int rc = 0;

	engine_stop(f->e);
	if (f->ei)
		engine_inode_free(f->e, f->ei);
	engine_free(f->e);
	if (f->holds != 0) {
		fprintf(stderr, "node holds left: %d\n", f->holds);
		rc = -1;
	}
	if (cache_store_close(f->store) < 0) {   /* -EBUSY: an object left open */
		fprintf(stderr, "cache objects left open\n");
		rc = -1;
	}
	if (f->node.fd >= 0)
		close(f->node.fd);
	close(f->origin_fd);
	close(f->cache_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		rc = -1;
	stats_release(f->stats);
	free(f->stats);
	free(f->buf);
	free(f);
	return rc;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static unsigned char pattern_byte(uint64_t off, unsigned seed) { return (unsigned char)(off * 31 + seed + (off >> 12)); }

/* An origin file of `size` bytes of a pattern, and the node and engine inode of it. */
static void make_file(struct fixture *f, const char *name, size_t size, unsigned seed)
{
	unsigned char *data = malloc(size);
	int fd;

	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = pattern_byte(i, seed);
	fd = openat(f->origin_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
	snprintf(f->node.name, sizeof(f->node.name), "%s", name);
	f->node.fd = openat(f->origin_fd, name, O_PATH | O_CLOEXEC);
	assert_true(f->node.fd >= 0);
	f->ei = engine_inode_new(f->e, &f->node, 2, 1234);
	assert_non_null(f->ei);
}

static void open_file(struct fixture *f, int flags, struct engine_file *ef,
                      struct engine_open_result *res)
{
	char path[64];
	struct stat st;

	memset(ef, 0, sizeof(*ef));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->node.fd);
	ef->fd = open(path, flags | O_CLOEXEC);
	assert_true(ef->fd >= 0);
	ef->open_flags = flags;
	ef->regular = true;
	ef->inode = f->ei;
	assert_int_equal(fstat(ef->fd, &st), 0);
	assert_int_equal(engine_open_attach(f->e, ef, &st, res), 0);
}

static void close_file(struct fixture *f, struct engine_file *ef)
{
	engine_open_detach(f->e, ef);
	close(ef->fd);
}

/* A read as the file system does it: reply (here: compare), then the after-reply step. */
static ssize_t read_checked(struct fixture *f, struct engine_file *ef, uint64_t off, size_t size,
                            unsigned seed)
{
	struct engine_read_after after;
	const void *data;
	ssize_t n = engine_read(f->e, ef, f->buf, SCRATCH, size, off, &data, &after);
	if (n > 0) {
		const unsigned char *b = data;
		for (ssize_t i = 0; i < n; i++)
			if (b[i] != pattern_byte(off + (uint64_t)i, seed))
				fail_msg("byte %llu: %u, expected %u", (unsigned long long)(off + (uint64_t)i),
				         b[i], pattern_byte(off + (uint64_t)i, seed));
	}
	engine_read_after(f->e, &after);
	return n;
}

static bool wait_for(struct fixture *f, enum stats_counter c, uint64_t at_least)
{
	for (int i = 0; i < 1000; i++) {
		if (counter(f, c) >= at_least)
			return true;
		usleep(10000);
	}
	return false;
}

/* Wait until the file's object holds every chunk and no job holds it any more. */
static bool wait_complete(struct fixture *f)
{
	struct cache_object_info info;
	struct stat st;

	if (fstat(f->node.fd, &st) < 0)
		return false;
	for (int i = 0; i < 1000; i++) {
		if (engine_object_info(f->e, f->ei, &st, engine_key(f->e, NULL, &st), &info) && info.present_chunks == info.chunk_count &&
		    f->holds == 0)
			return true;
		usleep(10000);
	}
	return false;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* A miss reads whole chunks from the origin, is answered, and fills after the reply; the same
 * read again is a hit on the cache object. */
static void test_miss_then_hit(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	make_file(f, "a", 4 * CHUNK, 1);
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(res.passthrough);                  /* passthrough off: user space */
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 1), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), 1);
	assert_int_equal(counter(f, STATS_FILLS), 1);   /* one chunk, after the reply */
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 1), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_CACHE), 1);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), 1);
	/* Past the end of the file: nothing, from wherever. */
	assert_int_equal(read_checked(f, &ef, 4 * CHUNK, CHUNK, 1), 0);
	close_file(f, &ef);
	assert_int_equal(f->holds, 0);
}

/* A write between the miss's origin read and its fill after the reply moves the object's
 * generation: the fill is dropped, and the next read sees the written bytes. */
static void test_fill_races_with_write(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_read_after after;
	struct engine_file ef;
	const void *data;
	const char *text = "written";

	make_file(f, "a", 4 * CHUNK, 2);
	open_file(f, O_RDWR, &ef, &res);
	assert_int_equal(engine_read(f->e, &ef, f->buf, SCRATCH, CHUNK, 0, &data, &after), CHUNK);
	assert_true(after.fill);
	assert_int_equal(engine_write(f->e, &ef, text, strlen(text), 100), (ssize_t)strlen(text));
	engine_read_after(f->e, &after);
	assert_int_equal(counter(f, STATS_FILLS_DROPPED), 1);
	assert_int_equal(counter(f, STATS_FILLS), 0);
	/* Read again: the new bytes (a stale fill would have served the old ones from the cache). */
	assert_int_equal(engine_read(f->e, &ef, f->buf, SCRATCH, CHUNK, 0, &data, &after), CHUNK);
	assert_memory_equal((const char *)data + 100, text, strlen(text));
	engine_read_after(f->e, &after);
	assert_int_equal(counter(f, STATS_FILLS), 1);
	assert_int_equal(engine_read(f->e, &ef, f->buf, SCRATCH, CHUNK, 0, &data, &after), CHUNK);
	assert_memory_equal((const char *)data + 100, text, strlen(text));
	engine_read_after(f->e, &after);
	assert_int_equal(counter(f, STATS_READ_OPS_CACHE), 1);
	close_file(f, &ef);
}

/* The first read-only open of a file the cache holds nothing of passes through to the origin;
 * the last close completes it in the background; the next open is a hit on the cache copy. An
 * open after an evict's forget is a first read again. */
static void test_first_read(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;
	struct cache_object_info info;
	struct stat st;

	f->passthrough = true;
	assert_int_equal(engine_start(f->e), 0);
	make_file(f, "a", 3 * CHUNK + 100, 3);
	open_file(f, O_RDONLY, &ef, &res);
	assert_true(res.passthrough);
	assert_false(res.hit);
	assert_int_equal(res.backing_id, 7);
	assert_int_equal(counter(f, STATS_FIRST_READS), 1);
	assert_int_equal(counter(f, STATS_PASSTHROUGH_OPENS_ORIGIN), 1);
	close_file(f, &ef);
	assert_true(wait_for(f, STATS_COMPLETIONS, 1));
	assert_int_equal(fstat(f->node.fd, &st), 0);
	assert_true(engine_object_info(f->e, NULL, &st, engine_key(f->e, NULL, &st), &info));
	assert_int_equal(info.present_chunks, info.chunk_count);

	open_file(f, O_RDONLY, &ef, &res);
	assert_true(res.passthrough);
	assert_true(res.hit);                           /* the complete cache copy */
	assert_false(res.direct_io);
	assert_int_equal(counter(f, STATS_FIRST_READS), 1);
	assert_int_equal(counter(f, STATS_PASSTHROUGH_OPENS_CACHE), 1);
	assert_true(engine_open_data_fd(f->e, &ef) != ef.fd); /* SEEK_DATA on the copy */
	close_file(f, &ef);
	for (int i = 0; i < 1000 && f->holds; i++)
		usleep(10000);
	assert_int_equal(f->holds, 0);
}

/* A file with no first read yet but seen once (and nothing cached) fills in user space. */
static void test_first_read_seen_once(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	f->passthrough = true;   /* no fill threads: nothing fills behind */
	make_file(f, "a", 2 * CHUNK, 4);
	open_file(f, O_RDONLY, &ef, &res);
	assert_true(res.passthrough);
	close_file(f, &ef);
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(res.passthrough);                  /* seen: served here, filling */
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 4), CHUNK);
	assert_int_equal(counter(f, STATS_FILLS), 1);
	close_file(f, &ef);
	engine_open_first_read_forget(f->e, NULL);
	/* Partially cached now: not a first read, whatever the set says. */
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(res.passthrough);
	close_file(f, &ef);
	assert_int_equal(counter(f, STATS_FIRST_READS), 1);
}

/* Fill a file completely through user-space reads and a completion, then open it as a hit. */
static void make_cached(struct fixture *f, const char *name, size_t size, unsigned seed)
{
	struct engine_open_result res;
	struct engine_file ef;

	f->passthrough = false;
	make_file(f, name, size, seed);
	assert_int_equal(engine_start(f->e), 0);
	open_file(f, O_RDONLY, &ef, &res);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, seed), CHUNK);  /* queues the completion */
	assert_true(wait_complete(f));   /* by the completion, or the read-ahead got there first */
	close_file(f, &ef);
	f->passthrough = true;
}

/* A writer joining a hit (ENGINE_IO_CACHE) writes through to the origin and mirrors its bytes
 * into the cache copy, which the passthrough readers read. */
static void test_mirror(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file reader, writer;
	const char *text = "mirrored";
	char got[16] = "";
	int fd;

	make_cached(f, "a", 4 * CHUNK, 5);
	open_file(f, O_RDONLY, &reader, &res);
	assert_true(res.hit);
	open_file(f, O_WRONLY, &writer, &res);
	assert_true(res.passthrough);
	assert_true(res.direct_io);                     /* its writes come to us */
	assert_int_equal(engine_write(f->e, &writer, text, strlen(text), CHUNK + 10),
	                 (ssize_t)strlen(text));
	/* The copy the reader's passthrough reads ... */
	assert_int_equal(pread(engine_open_data_fd(f->e, &reader), got, strlen(text), CHUNK + 10),
	                 (ssize_t)strlen(text));
	assert_memory_equal(got, text, strlen(text));
	/* ... and the origin. */
	fd = openat(f->origin_fd, "a", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(pread(fd, got, strlen(text), CHUNK + 10), (ssize_t)strlen(text));
	assert_memory_equal(got, text, strlen(text));
	close(fd);
	close_file(f, &writer);
	close_file(f, &reader);
}

/* The origin changed behind a hit: a new open gets a stale copy, so its reads bypass the cache
 * copy (direct I/O to us, served by the origin) while the first reader keeps the copy. */
static void test_stale_copy(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file reader, late;
	struct engine_read_after after;
	const void *data;
	const char *text = "behind";
	uint64_t origin_reads;
	int fd;

	make_cached(f, "a", 4 * CHUNK, 6);
	open_file(f, O_RDONLY, &reader, &res);
	assert_true(res.hit);
	fd = openat(f->origin_fd, "a", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
	assert_int_equal(ftruncate(fd, 4 * CHUNK + 1), 0);   /* the size moves: a new fingerprint */
	close(fd);
	open_file(f, O_RDONLY, &late, &res);
	assert_true(late.stale);
	assert_true(res.direct_io);
	assert_int_equal(engine_open_data_fd(f->e, &late), late.fd);
	origin_reads = counter(f, STATS_READ_OPS_ORIGIN);
	assert_int_equal(engine_read(f->e, &late, f->buf, SCRATCH, 64, 0, &data, &after), 64);
	assert_memory_equal(data, text, strlen(text));
	engine_read_after(f->e, &after);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), origin_reads + 1);
	assert_true(engine_open_data_fd(f->e, &reader) != reader.fd);
	close_file(f, &late);
	close_file(f, &reader);
}

/* Kept objects: the last release of a read-only hit keeps its object and backing id, and the
 * next opens reuse both (no BACKING_OPEN, no BACKING_CLOSE); each open still checks the object
 * against the origin: a change behind it resets the object (no hit) and closes the kept id. */
static void test_kept(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;
	int fd;

	make_cached(f, "a", 2 * CHUNK, 9);
	open_file(f, O_RDONLY, &ef, &res);
	assert_true(res.hit);
	assert_int_equal(f->backing_opens, 1);
	close_file(f, &ef);
	assert_int_equal(f->backing_closes, 0);         /* kept with the object */
	for (int i = 0; i < 3; i++) {
		open_file(f, O_RDONLY, &ef, &res);
		assert_true(res.hit);
		assert_int_equal(res.backing_id, 7);
		assert_int_equal(read_checked(f, &ef, 0, CHUNK, 9), CHUNK);
		close_file(f, &ef);
	}
	assert_int_equal(f->backing_opens, 1);
	assert_int_equal(f->backing_closes, 0);
	assert_int_equal(counter(f, STATS_PASSTHROUGH_OPENS_CACHE), 4);
	usleep(20000);   /* past the file system's timestamp granularity */
	fd = openat(f->origin_fd, "a", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "x", 1, 0), 1);     /* same size, new mtime and ctime */
	close(fd);
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(res.hit);                          /* never the old copy */
	assert_int_equal(f->backing_closes, 1);         /* the kept id went with it */
	assert_int_equal(counter(f, STATS_PASSTHROUGH_OPENS_CACHE), 4);
	close_file(f, &ef);
	engine_stop(f->e);
}

/* After ENGINE_BREAKER_ERRORS cache-device errors every new open bypasses the cache until the
 * retry time passed; the breaker's callback is told with no inode lock held (the daemon
 * rewrites its state file in it). */
static void test_breaker(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	make_file(f, "a", 2 * CHUNK, 7);
	for (int i = 0; i < ENGINE_BREAKER_ERRORS; i++)
		engine_bypass_error(f->e, "test", -EIO);
	assert_true(engine_bypass_breaker_on(f->e, NULL, 0));
	assert_int_equal(counter(f, STATS_BYPASS_ENTRIES), 1);
	assert_int_equal(f->breaker_calls, 0);          /* told later, outside every lock */
	open_file(f, O_RDONLY, &ef, &res);
	assert_int_equal(f->breaker_calls, 1);
	assert_true(f->breaker_last_on);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 7), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), 1);
	assert_int_equal(counter(f, STATS_FILLS), 0);   /* no object while the breaker is on */
	close_file(f, &ef);

	usleep(1100 * 1000);                            /* past breaker_retry_ms (1000) */
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(engine_bypass_breaker_on(f->e, NULL, 0));
	assert_int_equal(f->breaker_calls, 2);
	assert_false(f->breaker_last_on);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 7), CHUNK);
	assert_int_equal(counter(f, STATS_FILLS), 1);   /* the cache is used again */
	close_file(f, &ef);
	assert_true(f->breaker_lock_free);
}

/* A sequential reader keeps the fill threads reading ahead of it: pieces are stored
 * (STATS_READAHEAD_BYTES) and its later reads are hits or hand-offs, never origin reads. */
static void test_readahead(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;
	uint64_t off = 0, origin_reads;

	make_file(f, "a", 64 * CHUNK, 8);   /* 4 MiB, never completed (complete_max 0) */
	assert_int_equal(engine_start(f->e), 0);
	open_file(f, O_RDONLY, &ef, &res);
	/* The first read misses and queues the window's pieces ([64K, 1088K) first). */
	assert_int_equal(read_checked(f, &ef, off, CHUNK, 8), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), 1);
	assert_true(wait_for(f, STATS_READAHEAD_BYTES, 1024 * 1024));
	origin_reads = counter(f, STATS_READ_OPS_ORIGIN);
	for (off = CHUNK; off < 16 * CHUNK; off += CHUNK)
		assert_int_equal(read_checked(f, &ef, off, CHUNK, 8), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), origin_reads);   /* all read ahead */
	assert_int_equal(counter(f, STATS_READ_OPS_CACHE), 15);
	close_file(f, &ef);
	engine_stop(f->e);
}

/* The engine's view of the file times (engine_settle.c), without waiting: its wall clock set
 * this far off (a file just written is "fresh" with -10 s, "settled" with +10 s). */
#define SETTLE_FRESH (-10 * 1000000000ll)
#define SETTLE_SETTLED (10 * 1000000000ll)

static void settle_clock(struct fixture *f, int64_t offset_ns) { f->e->cfg.settle_clock_offset_ns = offset_ns; }

static unsigned present_chunks(struct fixture *f)
{
	struct cache_object_info info;
	struct stat st;
	assert_int_equal(fstat(f->node.fd, &st), 0);
	return engine_object_info(f->e, NULL, &st, engine_key(f->e, NULL, &st), &info) ? (unsigned)info.present_chunks : 0;
}

/* Hold the file's object as a fill job or warm does (ei->obj set with no open file). */
static void hold_object(struct fixture *f)
{
	struct cache_fingerprint fp;
	struct stat st;
	assert_int_equal(fstat(f->node.fd, &st), 0);
	cache_fingerprint_from_stat(&st, &fp);
	pthread_mutex_lock(&f->ei->lock);
	assert_null(f->ei->obj);
	assert_true(cache_object_open(f->store, cache_key_from_stat(&st), &fp, &f->ei->obj) >= 0);
	pthread_mutex_unlock(&f->ei->lock);
	assert_non_null(engine_object_hold(f->e, f->ei));
}

/* Warm the file to completion (times settled) and wait until no job holds it. */
static void settle_warm_complete(struct fixture *f)
{
	struct engine_warm w;
	struct stat st;
	assert_int_equal(fstat(f->node.fd, &st), 0);
	assert_int_equal(engine_fill_warm(f->e, f->ei, &st, &w), 0);
	assert_true(wait_complete(f));
}

/* Where changes are not watched (a network original, engine_settle.c): a file whose times are
 * younger than ENGINE_SETTLE_NS is served from the origin and caches nothing (and the open is
 * counted); once they settled its reads fill; a write session moves the fingerprint, so its
 * last release drops the chunks (a same-size change by another client within the same tick
 * would go unseen). */
static void test_settle(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	f->unwatched = true;
	make_file(f, "a", 2 * CHUNK, 10);
	settle_clock(f, SETTLE_FRESH);
	open_file(f, O_RDONLY, &ef, &res);
	assert_int_equal(counter(f, STATS_UNSETTLED_OPENS), 1);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 10), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_ORIGIN), 1);
	assert_int_equal(counter(f, STATS_FILLS), 0);   /* fresh times: no cache object */
	close_file(f, &ef);
	assert_int_equal(present_chunks(f), 0);

	settle_clock(f, SETTLE_SETTLED);
	open_file(f, O_RDONLY, &ef, &res);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 10), CHUNK);
	assert_int_equal(counter(f, STATS_FILLS), 1);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 10), CHUNK);
	assert_int_equal(counter(f, STATS_READ_OPS_CACHE), 1);
	close_file(f, &ef);
	assert_int_equal(present_chunks(f), 1);         /* kept past the release */
	assert_int_equal(counter(f, STATS_UNSETTLED_OPENS), 1);

	usleep(20000);                                  /* the write's times differ */
	open_file(f, O_RDWR, &ef, &res);
	assert_int_equal(engine_write(f->e, &ef, "w", 1, CHUNK + 5), 1);
	close_file(f, &ef);
	assert_int_equal(present_chunks(f), 0);
}

/* A fill job queued in a settled session that runs after its last release, when the object's
 * fingerprint (moved by the session's write) is fresh, stores nothing: before, it re-read its
 * generation after the release's invalidation, filled the whole file and made it permanent. */
static void test_settle_fill_after_release(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	assert_int_equal(engine_start(f->e), 0);
	f->unwatched = true;
	make_file(f, "a", 4 * CHUNK, 11);
	settle_clock(f, SETTLE_SETTLED);
	f->e->cfg.fill_delay_ms = 300;                  /* the completion waits past the release */
	open_file(f, O_RDWR, &ef, &res);
	assert_int_equal(read_checked(f, &ef, 0, CHUNK, 11), CHUNK);   /* a miss: completion queued */
	assert_true(f->holds > 0);                      /* the job holds the node */
	usleep(20000);                                  /* the write's times differ */
	assert_int_equal(engine_write(f->e, &ef, &(char){ (char)pattern_byte(CHUNK + 5, 11) }, 1,
	                              CHUNK + 5), 1);
	settle_clock(f, SETTLE_FRESH);                  /* the write's times are fresh */
	close_file(f, &ef);
	for (int i = 0; i < 300 && f->holds; i++)
		usleep(10000);
	assert_int_equal(f->holds, 0);
	assert_int_equal(present_chunks(f), 0);
	assert_int_equal(counter(f, STATS_COMPLETIONS), 0);
}

/* Warm of a file whose times are fresh answers "waiting" and creates no object; settled, it
 * completes the file. */
static void test_settle_warm(void **state)
{
	struct fixture *f = *state;
	struct engine_warm w;
	struct stat st;

	assert_int_equal(engine_start(f->e), 0);
	f->unwatched = true;
	make_file(f, "a", 4 * CHUNK, 12);
	assert_int_equal(fstat(f->node.fd, &st), 0);
	settle_clock(f, SETTLE_FRESH);
	assert_int_equal(engine_fill_warm(f->e, f->ei, &st, &w), 0);
	assert_int_equal(w.state, ENGINE_WARM_WAITING);
	assert_int_equal(w.size, 4 * CHUNK);
	assert_int_equal(w.cached, 0);
	usleep(200000);
	assert_null(f->ei->obj);
	assert_int_equal(present_chunks(f), 0);
	assert_int_equal(f->holds, 0);

	settle_clock(f, SETTLE_SETTLED);
	settle_warm_complete(f);
	assert_int_equal(present_chunks(f), 4);
}

/* An object still held (by a fill job or warm) is not served at an open whose times are fresh:
 * it may predate a change within the same tick (which no fingerprint field shows over sshfs).
 * It is emptied and the open served from the original. */
static void test_settle_held_object(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;

	assert_int_equal(engine_start(f->e), 0);
	f->unwatched = true;
	f->passthrough = true;
	make_file(f, "a", 2 * CHUNK, 13);
	settle_clock(f, SETTLE_SETTLED);
	settle_warm_complete(f);
	hold_object(f);
	settle_clock(f, SETTLE_FRESH);
	open_file(f, O_RDONLY, &ef, &res);
	assert_false(res.hit);                          /* not passed through to the copy */
	assert_int_equal(present_chunks(f), 0);
	close_file(f, &ef);
	engine_object_drop(f->e, f->ei);
	assert_int_equal(present_chunks(f), 0);
}

/* Where changes are watched, a first open without a stat (the host had none) leaves the
 * close-to-open state unset: its release keeps the chunks of an object held meanwhile. */
static void test_settle_open_without_stat(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;
	char path[64];

	assert_int_equal(engine_start(f->e), 0);
	make_file(f, "a", 2 * CHUNK, 14);
	settle_warm_complete(f);
	hold_object(f);
	memset(&ef, 0, sizeof(ef));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->node.fd);
	ef.fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ef.fd >= 0);
	ef.open_flags = O_RDONLY;
	ef.regular = true;
	ef.inode = f->ei;
	assert_int_equal(engine_open_attach(f->e, &ef, NULL, &res), 0);
	close_file(f, &ef);
	assert_int_equal(present_chunks(f), 2);
	engine_object_drop(f->e, f->ei);
	assert_int_equal(present_chunks(f), 2);
}

/* File times past 2262 (or before 1678) do not fit 64 bits of nanoseconds: saturated, not
 * wrapped (a signed overflow; UBSan aborts on one), and such a file counts as fresh. */
static void test_settle_far_times(void **state)
{
	struct fixture *f = *state;
	struct cache_fingerprint fp;
	struct stat st;

	f->unwatched = true;
	make_file(f, "a", CHUNK, 15);
	assert_int_equal(fstat(f->node.fd, &st), 0);
	st.st_mtim.tv_sec = INT64_MAX / 1000000000 + 100;
	st.st_ctim.tv_sec = -(INT64_MAX / 1000000000) - 100;
	cache_fingerprint_from_stat(&st, &fp);
	assert_true(fp.mtime_ns == INT64_MAX);
	assert_true(fp.ctime_ns == INT64_MIN);
	pthread_mutex_lock(&f->ei->lock);
	assert_true(engine_settle_begin(f->e, f->ei, &st));
	pthread_mutex_unlock(&f->ei->lock);
	assert_true(engine_settle_fresh(f->e, f->ei, &fp));
	fp.mtime_ns = INT64_MIN;
	assert_false(engine_settle_fresh(f->e, f->ei, &fp));
}

/* A deferred open (fd -1): attaching opens nothing; the first read that must reach the origin
 * (here a stale reader's) opens it through the host, once; a failed late open fails that read
 * and the next need tries again. */
static void test_deferred_open(void **state)
{
	struct fixture *f = *state;
	struct engine_open_result res;
	struct engine_file ef;
	struct stat st;
	int fd;

	make_file(f, "a", 3 * CHUNK + 100, 9);
	memset(&ef, 0, sizeof(ef));
	atomic_init(&ef.fd, -1);
	ef.open_flags = O_RDONLY;
	ef.regular = true;
	ef.inode = f->ei;
	assert_int_equal(fstat(f->node.fd, &st), 0);
	assert_int_equal(engine_open_attach(f->e, &ef, &st, &res), 0);
	assert_int_equal(f->file_opens, 0);
	ef.stale = true;   /* its reads go to the origin (engine_bypass_read) */
	f->file_open_fail = -EACCES;
	assert_int_equal(read_checked(f, &ef, 100, 1000, 9), -EACCES);
	assert_int_equal(atomic_load(&ef.fd), -1);
	f->file_open_fail = 0;
	assert_int_equal(read_checked(f, &ef, 100, 1000, 9), 1000);
	fd = atomic_load(&ef.fd);
	assert_true(fd >= 0);
	assert_int_equal(read_checked(f, &ef, 2 * CHUNK, 1000, 9), 1000);
	assert_int_equal(engine_file_fd(f->e, &ef), fd);
	assert_int_equal(f->file_opens, 2);
	assert_int_equal(counter(f, STATS_ORIGIN_OPENS_LATE), 1);
	close_file(f, &ef);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fill_races_with_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_read_seen_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept, setup_kept, teardown),
		cmocka_unit_test_setup_teardown(test_breaker, setup_short_breaker, teardown),
		cmocka_unit_test_setup_teardown(test_readahead, setup_no_completion, teardown),
		cmocka_unit_test_setup_teardown(test_settle, setup_no_completion, teardown),
		cmocka_unit_test_setup_teardown(test_settle_fill_after_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_warm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_held_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_open_without_stat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_far_times, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
