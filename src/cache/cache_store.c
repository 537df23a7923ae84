/* cache_store: the store as a whole — creating and checking CACHEDIR/cachemax-v1 and its
 * superblock, the table of open objects (one struct cache_object per key, shared by its
 * openers), and usage accounting. One object's data, map and record live in cache_object.c;
 * capacity and eviction in cache_capacity.c. Start-up reads only the superblock; usage is one
 * scan of the data files on first demand, which also tells the policy of every object found.
 */
#include "cache/cache_bytes.h"
#include "cache/cache_int.h"
#include "cache/cache_meta.h"
#include "sys/sys.h"
#include "util/clock.h"
#include "util/siphash.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/random.h>

#define STORE_DIR_MODE 0700
#define STORE_FILE_MODE 0600
#define SUPERBLOCK_NAME "superblock"
#define PATH_SECRET_NAME "path-secret"
#define PATH_SECRET_TMP_NAME "path-secret.tmp"
#define SUPERBLOCK_TMP_NAME "superblock.tmp"
#define OBJECTS_DIR_NAME "objects"
#define DIRENT_BUFFER_SIZE 65536
#define HASH_MULTIPLIER 0x9E3779B97F4A7C15ull   /* splitmix64 constants */
#define HASH_MIX1 0xBF58476D1CE4E5B9ull
#define HASH_MIX2 0x94D049BB133111EBull

void cache_fingerprint_from_stat(const struct stat *st, struct cache_fingerprint *fp)
{
	fp->dev = (uint64_t)st->st_dev;
	fp->ino = (uint64_t)st->st_ino;
	fp->size = (uint64_t)st->st_size;
	fp->mtime_ns = clock_timespec_ns(&st->st_mtim);   /* saturated after 2262 */
	fp->ctime_ns = clock_timespec_ns(&st->st_ctim);
}

struct cache_key cache_key_from_stat(const struct stat *st)
{
	return (struct cache_key){ .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino };
}

bool cache_fingerprint_equal(const struct cache_fingerprint *a, const struct cache_fingerprint *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

struct cache_key cache_store_path_key(const struct cache_store *store, const char *relpath)
{
	return (struct cache_key){ .dev = CACHE_KEY_DEV_PATH,
	                           .ino = siphash24(store->path_secret, relpath, strlen(relpath)) };
}

uint32_t cache_key_hash(struct cache_key key)
{
	uint64_t z = key.dev * HASH_MULTIPLIER ^ key.ino;
	z = (z ^ (z >> 30)) * HASH_MIX1;
	z = (z ^ (z >> 27)) * HASH_MIX2;
	return (uint32_t)(z ^ (z >> 31));
}

void cache_object_name(struct cache_key key, char name[CACHE_OBJECT_NAME_SIZE])
{
	snprintf(name, CACHE_OBJECT_NAME_SIZE, "%02x/%016" PRIx64 "-%016" PRIx64,
	         cache_key_hash(key) % CACHE_SHARD_COUNT, key.dev, key.ino);
}

uint32_t cache_store_chunk_size(const struct cache_store *store)
{
	return 1u << store->chunk_shift;
}

/* ---- Superblock ------------------------------------------------------------------------- */

ssize_t cache_store_file_read(int dir_fd, const char *name, void *buf, size_t size)
{
	int fd = sys_openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	ssize_t n;
	if (fd < 0)
		return fd;
	n = sys_pread(fd, buf, size, 0);
	sys_close(fd);
	return n;
}

int cache_store_file_replace(int dir_fd, const char *name, const char *tmp_name, const void *buf,
                             size_t size)
{
	int fd, rc;

	fd = sys_openat(dir_fd, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                STORE_FILE_MODE);
	if (fd < 0)
		return fd;
	rc = cache_pwrite_full(fd, buf, size, 0);
	if (rc == 0)
		rc = sys_fsync(fd, 0);
	sys_close(fd);
	if (rc == 0)
		rc = sys_renameat2(dir_fd, tmp_name, dir_fd, name, 0);
	if (rc == 0)
		rc = sys_fsync(dir_fd, 0);
	if (rc < 0)
		sys_unlinkat(dir_fd, tmp_name, 0);
	return rc;
}

/* The secret of cache_store_path_key: read, or drawn and written if the store has none (a store
 * made before it existed gets one; it has no path keys yet), or none that can be read whole (a
 * damaged one is replaced). A new secret only makes earlier path keys match nothing (their
 * copies go by eviction), so the store never fails for it: a secret that cannot be written is
 * used for this run only; fresh: a new one whatever is there (a store adopted by its old
 * (st_dev, st_ino), which another share may have written: its path keys must match nothing).
 * -EIO only if no random bytes can be had. */
static int path_secret_load(int store_fd, bool fresh, uint8_t secret[SIPHASH_KEY_BYTES])
{
	uint8_t buf[SIPHASH_KEY_BYTES + 1];   /* one more: a longer file is damaged */
	ssize_t n = fresh ? -ENOENT : cache_store_file_read(store_fd, PATH_SECRET_NAME, buf, sizeof(buf));

	if (n == SIPHASH_KEY_BYTES) {
		memcpy(secret, buf, SIPHASH_KEY_BYTES);
		return 0;
	}
	if (getrandom(secret, SIPHASH_KEY_BYTES, 0) != (ssize_t)SIPHASH_KEY_BYTES)
		return -EIO;
	(void)cache_store_file_replace(store_fd, PATH_SECRET_NAME, PATH_SECRET_TMP_NAME, secret,
	                               SIPHASH_KEY_BYTES);
	return 0;
}

/* The superblock's record of the origin the store belongs to. */
static struct cache_meta_superblock superblock_of(const struct cache_store_config *config)
{
	if (config->origin_identity)
		return (struct cache_meta_superblock){ CACHE_KEY_DEV_PATH, config->origin_identity };
	return (struct cache_meta_superblock){ config->origin_dev, config->origin_ino };
}

static int superblock_write(int store_fd, const struct cache_store_config *config)
{
	struct cache_meta_superblock sb = superblock_of(config);
	uint8_t buf[CACHE_META_SUPERBLOCK_SIZE];

	cache_meta_superblock_encode(&sb, buf);
	return cache_store_file_replace(store_fd, SUPERBLOCK_NAME, SUPERBLOCK_TMP_NAME, buf,
	                                sizeof(buf));
}

/* A new store: objects/ first, the superblock last, so a store with a superblock always has
 * its objects directory. */
static int store_create(int store_fd, const struct cache_store_config *config)
{
	int rc = sys_mkdirat(store_fd, OBJECTS_DIR_NAME, STORE_DIR_MODE);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	return superblock_write(store_fd, config);
}

/* 0 if the store belongs to this origin, 1 if it was adopted (a superblock of the origin
 * root's (st_dev, st_ino) where the config names an identity, rewritten to it); -ENOENT if
 * there is no superblock yet. */
static int store_check(int store_fd, const struct cache_store_config *config)
{
	uint8_t buf[CACHE_META_SUPERBLOCK_SIZE + 1];   /* one more: a longer file is damaged */
	struct cache_meta_superblock sb, want = superblock_of(config);
	ssize_t n = cache_store_file_read(store_fd, SUPERBLOCK_NAME, buf, sizeof(buf));
	int rc;

	if (n < 0)
		return (int)n;
	rc = cache_meta_superblock_decode(buf, (size_t)n, &sb);
	if (rc == -EBADMSG)
		return -EUCLEAN;
	if (rc < 0)
		return rc;
	if (sb.origin_dev == want.origin_dev && sb.origin_ino == want.origin_ino)
		return 0;
	if (config->origin_identity && sb.origin_dev == config->origin_dev &&
	    sb.origin_ino == config->origin_ino) {
		rc = superblock_write(store_fd, config);
		return rc < 0 ? rc : 1;
	}
	return -EEXIST;
}

static int config_chunk_shift(const struct cache_store_config *config, uint32_t *shift)
{
	uint32_t size = config->chunk_size ? config->chunk_size : CACHE_CHUNK_SIZE_DEFAULT;
	if (size < CACHE_CHUNK_SIZE_MIN || size > CACHE_CHUNK_SIZE_MAX || (size & (size - 1)))
		return -EINVAL;
	*shift = (uint32_t)__builtin_ctz(size);
	return 0;
}

/* A store directory someone else made, or can write to, could hold planted objects. */
static int store_dir_private(int fd)
{
	struct stat st;
	int rc = sys_fstatat(fd, "", &st, AT_EMPTY_PATH);
	if (rc < 0)
		return rc;
	return st.st_uid == geteuid() && !(st.st_mode & (S_IWGRP | S_IWOTH)) ? 0 : -EPERM;
}

int cache_store_open(int cachedir_fd, const struct cache_store_config *config,
                     struct cache_store **out)
{
	pthread_rwlockattr_t rwattr;
	struct cache_store *store;
	bool adopted;
	uint32_t shift;
	int store_fd, objects_fd, rc;

	rc = config_chunk_shift(config, &shift);
	if (rc == 0)
		rc = cache_capacity_config_check(config);
	if (rc < 0)
		return rc;
	rc = sys_mkdirat(cachedir_fd, CACHE_STORE_DIR_NAME, STORE_DIR_MODE);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	store_fd = sys_openat(cachedir_fd, CACHE_STORE_DIR_NAME,
	                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (store_fd < 0)
		return store_fd;
	rc = store_dir_private(store_fd);
	if (rc < 0)
		goto close_store_fd;
	rc = sys_flock(store_fd, LOCK_EX | LOCK_NB);
	if (rc < 0) {
		rc = rc == -EWOULDBLOCK ? -EBUSY : rc;
		goto close_store_fd;
	}
	rc = store_check(store_fd, config);
	if (rc == -ENOENT)
		rc = store_create(store_fd, config);
	if (rc < 0)
		goto close_store_fd;
	adopted = rc == 1;
	objects_fd = sys_openat(store_fd, OBJECTS_DIR_NAME, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	                        O_CLOEXEC, 0);
	if (objects_fd == -ENOENT) {   /* removed by hand: an empty store is still consistent */
		rc = sys_mkdirat(store_fd, OBJECTS_DIR_NAME, STORE_DIR_MODE);
		objects_fd = rc < 0 ? rc : sys_openat(store_fd, OBJECTS_DIR_NAME,
		                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	}
	if (objects_fd < 0) {
		rc = objects_fd;
		goto close_store_fd;
	}
	rc = store_dir_private(objects_fd);
	if (rc < 0)
		goto close_objects_fd;
	store = calloc(1, sizeof(*store));
	if (!store) {
		rc = -ENOMEM;
		goto close_objects_fd;
	}
	store->store_fd = store_fd;
	store->objects_fd = objects_fd;
	store->origin_dev = config->origin_dev;
	rc = path_secret_load(store_fd, adopted, store->path_secret);
	if (rc < 0) {
		free(store);
		goto close_objects_fd;
	}
	store->chunk_shift = shift;
	store->persist_batch = config->persist_batch_chunks ? config->persist_batch_chunks
	                                                    : CACHE_PERSIST_BATCH_DEFAULT;
	pthread_mutex_init(&store->table_lock, NULL);
	/* The scan must not starve behind a steady stream of fills. */
	pthread_rwlockattr_init(&rwattr);
	pthread_rwlockattr_setkind_np(&rwattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&store->usage_lock, &rwattr);
	pthread_rwlockattr_destroy(&rwattr);
	rc = cache_capacity_start(store, config);
	if (rc < 0)
		goto free_store;
	*out = store;
	return 0;

free_store:
	pthread_rwlock_destroy(&store->usage_lock);
	pthread_mutex_destroy(&store->table_lock);
	free(store);
close_objects_fd:
	sys_close(objects_fd);
close_store_fd:
	sys_close(store_fd);   /* also drops the flock */
	return rc;
}

int cache_store_close(struct cache_store *store)
{
	int rc;

	/* With evict_lock held no eviction and no scrub holds a reference: open_objects counts the
	 * callers'. */
	pthread_mutex_lock(&store->evict_lock);
	pthread_mutex_lock(&store->table_lock);
	rc = store->open_objects ? -EBUSY : 0;
	pthread_mutex_unlock(&store->table_lock);
	if (rc == 0) {
		atomic_store(&store->evictor_stop, true);
		atomic_store(&store->scrub_stop, true);
	}
	pthread_mutex_unlock(&store->evict_lock);
	if (rc < 0)
		return rc;
	cache_scrub_stop(store);
	cache_capacity_stop(store);
	/* Records are renamed into place without a directory fsync; make a clean stop durable. */
	rc = sys_syncfs(store->store_fd);
	sys_close(store->objects_fd);
	sys_close(store->store_fd);
	pthread_rwlock_destroy(&store->usage_lock);
	pthread_mutex_destroy(&store->table_lock);
	free(store);
	return rc;
}

/* ---- Open-object table ------------------------------------------------------------------ */

static struct cache_object **table_slot(struct cache_store *store, struct cache_key key)
{
	struct cache_object **slot = &store->table[cache_key_hash(key) % CACHE_STORE_TABLE_SIZE];
	while (*slot && ((*slot)->key.dev != key.dev || (*slot)->key.ino != key.ino))
		slot = &(*slot)->hash_next;
	return slot;
}

/* A new object for key, with one reference, into the empty slot. store->table_lock held. */
static void table_insert_locked(struct cache_store *store, struct cache_object **slot,
                                struct cache_object *fresh, struct cache_key key)
{
	fresh->store = store;
	fresh->key = key;
	cache_object_name(key, fresh->name);
	fresh->refs = 1;
	fresh->in_table = true;
	fresh->data_fd = -1;
	pthread_mutex_init(&fresh->lock, NULL);
	*slot = fresh;
	store->open_objects++;
}

/* The object of key with one more reference: the one in the table (unless only_new: then
 * -EBUSY), or a new one. */
static int object_get(struct cache_store *store, struct cache_key key, bool only_new,
                      struct cache_object **out)
{
	struct cache_object *fresh = calloc(1, sizeof(*fresh)), **slot;

	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&store->table_lock);
	slot = table_slot(store, key);
	if (*slot) {
		if (!only_new) {
			(*slot)->refs++;
			*out = *slot;
		}
		pthread_mutex_unlock(&store->table_lock);
		free(fresh);
		return only_new ? -EBUSY : 0;
	}
	table_insert_locked(store, slot, fresh, key);
	pthread_mutex_unlock(&store->table_lock);
	*out = fresh;
	return 0;
}

int cache_store_object_get(struct cache_store *store, struct cache_key key,
                           struct cache_object **out)
{
	return object_get(store, key, false, out);
}

int cache_store_object_get_unused(struct cache_store *store, struct cache_key key,
                                  struct cache_object **out)
{
	return object_get(store, key, true, out);
}

static void table_unlink_locked(struct cache_object *obj)
{
	struct cache_object **slot = table_slot(obj->store, obj->key);
	if (*slot == obj)
		*slot = obj->hash_next;
	obj->hash_next = NULL;
	obj->in_table = false;
}

void cache_store_object_detach(struct cache_object *obj)
{
	pthread_mutex_lock(&obj->store->table_lock);
	if (obj->in_table)
		table_unlink_locked(obj);
	pthread_mutex_unlock(&obj->store->table_lock);
}

bool cache_store_object_unref(struct cache_object *obj)
{
	struct cache_store *store = obj->store;
	bool last;

	pthread_mutex_lock(&store->table_lock);
	last = --obj->refs == 0;
	if (last) {
		if (obj->in_table)
			table_unlink_locked(obj);
		store->open_objects--;
	}
	pthread_mutex_unlock(&store->table_lock);
	return last;
}

/* ---- Usage ------------------------------------------------------------------------------ */

void cache_store_usage_enter(struct cache_store *store)
{
	pthread_rwlock_rdlock(&store->usage_lock);
}

void cache_store_usage_leave(struct cache_store *store)
{
	pthread_rwlock_unlock(&store->usage_lock);
}

void cache_store_usage_add(struct cache_store *store, int64_t bytes, int64_t objects)
{
	if (!store->usage_known)
		return;   /* the scan will count the file as it finds it */
	atomic_fetch_add(&store->usage_bytes, (uint64_t)bytes);
	atomic_fetch_add(&store->usage_objects, (uint64_t)objects);
	if (bytes > 0)
		cache_capacity_grew(store);
}

static bool name_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n > s && !strcmp(name + n - s, suffix);
}

/* Call fn(shard_fd, name, arg) for every data file ("*.data") of one shard, if it exists;
 * stops at the first error. dirents: a DIRENT_BUFFER_SIZE buffer. */
static int shard_data_files_each(struct cache_store *store, uint32_t shard, void *dirents,
                                 int (*fn)(int shard_fd, const char *name, void *arg), void *arg)
{
	char name[4];
	int fd, rc = 0;

	snprintf(name, sizeof(name), "%02x", shard);
	fd = sys_openat(store->objects_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = sys_getdents(fd, dirents, DIRENT_BUFFER_SIZE);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		for (ssize_t pos = 0; pos < n && rc == 0;) {
			struct dirent64 *d = (struct dirent64 *)((char *)dirents + pos);
			pos += d->d_reclen;
			if (name_has_suffix(d->d_name, CACHE_DATA_SUFFIX))
				rc = fn(fd, d->d_name, arg);
		}
		if (rc < 0)
			break;
	}
	sys_close(fd);
	return rc;
}

/* The same for every shard. */
static int data_files_each(struct cache_store *store,
                           int (*fn)(int shard_fd, const char *name, void *arg), void *arg)
{
	void *dirents = malloc(DIRENT_BUFFER_SIZE);
	int rc = 0;

	if (!dirents)
		return -ENOMEM;
	for (uint32_t shard = 0; shard < CACHE_SHARD_COUNT && rc == 0; shard++)
		rc = shard_data_files_each(store, shard, dirents, fn, arg);
	free(dirents);
	return rc;
}

/* The key a data file ("DEV-INO.data") is named for: 0, or -EINVAL for another name. */
static int key_from_data_name(const char *name, struct cache_key *key)
{
	unsigned long long dev, ino;
	char tail[8];

	if (sscanf(name, "%16llx-%16llx%7s", &dev, &ino, tail) != 3)
		return -EINVAL;
	*key = (struct cache_key){ .dev = dev, .ino = ino };
	return 0;
}

/* Room for element n of an array of *cap elements: the array (moved, maybe), or NULL with the
 * old one untouched. */
static void *array_room(void *array, size_t *cap, size_t n, size_t elem_size)
{
	size_t ncap;
	void *grown;

	if (n < *cap)
		return array;
	ncap = *cap ? *cap * 2 : 256;
	grown = realloc(array, ncap * elem_size);
	if (grown)
		*cap = ncap;
	return grown;
}

/* An object found by the scan, for the policy. */
struct seed {
	struct cache_key key;
	uint64_t bytes;
	int64_t mtime_ns;
};

struct usage_sum {
	struct cache_store *store;
	uint64_t bytes, objects;
	struct seed *seeds;   /* collected only when the store has a policy */
	size_t seed_count, seed_cap;
};

static int usage_add(int shard_fd, const char *name, void *arg)
{
	struct usage_sum *u = arg;
	struct stat st;
	struct cache_key key;
	struct seed *seeds;
	uint64_t bytes;

	if (atomic_load(&u->store->evictor_stop))
		return -ECANCELED;   /* closing: the scan is the eviction thread's */
	if (sys_fstatat(shard_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return 0;   /* gone or not ours: not an object */
	bytes = (uint64_t)st.st_blocks * CACHE_BYTES_PER_BLOCK;
	u->bytes += bytes;
	u->objects++;
	if (!u->store->policy || key_from_data_name(name, &key) < 0)
		return 0;
	seeds = array_room(u->seeds, &u->seed_cap, u->seed_count, sizeof(*seeds));
	if (!seeds)
		return -ENOMEM;
	u->seeds = seeds;
	u->seeds[u->seed_count++] = (struct seed){
		key, bytes, clock_timespec_ns(&st.st_mtim),
	};
	return 0;
}

/* Newest first (the policy takes each seed as colder than every key before it). */
static int seed_newest_first(const void *a, const void *b)
{
	const struct seed *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? 1 : -1;
	if (x->key.dev != y->key.dev)
		return x->key.dev < y->key.dev ? 1 : -1;
	return x->key.ino < y->key.ino ? 1 : x->key.ino > y->key.ino ? -1 : 0;
}

struct key_list {
	struct cache_key *keys;
	size_t count, cap;
};

/* Append the key named by a data file to the key_list. */
static int key_add(int shard_fd, const char *name, void *arg)
{
	struct key_list *l = arg;
	struct cache_key key, *keys;

	if (key_from_data_name(name, &key) < 0)
		return 0;
	keys = array_room(l->keys, &l->cap, l->count, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	l->keys = keys;
	l->keys[l->count++] = key;
	return 0;
}

int cache_store_shard_keys(struct cache_store *store, uint32_t shard, struct cache_key **keys,
                           size_t *count)
{
	struct key_list l = { 0 };
	void *dirents = malloc(DIRENT_BUFFER_SIZE);
	int rc;

	if (!dirents)
		return -ENOMEM;
	rc = shard_data_files_each(store, shard, dirents, key_add, &l);
	free(dirents);
	if (rc < 0) {
		free(l.keys);
		return rc;
	}
	*keys = l.keys;
	*count = l.count;
	return 0;
}

int cache_store_remove_all(struct cache_store *store, uint64_t *removed)
{
	struct key_list l = { 0 };
	uint64_t done = 0;
	int rc = data_files_each(store, key_add, &l);

	for (size_t i = 0; i < l.count && rc == 0; i++) {
		int r = cache_object_remove(store, l.keys[i]);
		if (r == 0)
			done++;
		else if (r != -ENOENT)
			rc = r;
	}
	free(l.keys);
	if (rc < 0)
		return rc;
	*removed = done;
	return 0;
}

/* With the usage lock held exclusive: nobody is changing a data file, so the policy learns of
 * each object found before anyone can remove it (objects opened before the scan are known to
 * it already and keep their place). */
static int usage_scan(struct cache_store *store)
{
	struct usage_sum u = { .store = store };
	int rc = data_files_each(store, usage_add, &u);

	if (rc == 0 && u.seed_count) {
		qsort(u.seeds, u.seed_count, sizeof(*u.seeds), seed_newest_first);
		for (size_t i = 0; i < u.seed_count && rc == 0; i++)
			if (cache_policy_seed(store->policy, u.seeds[i].key, u.seeds[i].bytes) < 0)
				rc = -ENOMEM;
	}
	free(u.seeds);
	if (rc < 0)
		return rc;
	atomic_store(&store->usage_bytes, u.bytes);
	atomic_store(&store->usage_objects, u.objects);
	store->usage_known = true;
	return 0;
}

int cache_store_usage(struct cache_store *store, uint64_t *bytes, uint64_t *objects)
{
	int rc = 0;

	pthread_rwlock_rdlock(&store->usage_lock);
	if (!store->usage_known) {
		pthread_rwlock_unlock(&store->usage_lock);
		pthread_rwlock_wrlock(&store->usage_lock);
		if (!store->usage_known)
			rc = usage_scan(store);
	}
	if (rc == 0) {
		*bytes = atomic_load(&store->usage_bytes);
		*objects = atomic_load(&store->usage_objects);
	}
	pthread_rwlock_unlock(&store->usage_lock);
	return rc;
}
