/* fs_node: the node table. Two chained hash tables over the same nodes: by our nodeid (every
 * request) and by the origin's (st_dev, st_ino) (lookups, so hard links share one node). */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "sys/sys.h"

#define INITIAL_BUCKETS 1024

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static size_t bucket_by_id(const struct fs_table *t, uint64_t id) { return hash_u64(id) & (t->bucket_count - 1); }
static size_t bucket_by_key(const struct fs_table *t, dev_t dev, ino_t ino)
{
	return hash_u64((uint64_t)ino * 31 + (uint64_t)dev) & (t->bucket_count - 1);
}

void fs_proc_path(int fd, char buf[FS_PROC_PATH_MAX])
{
	snprintf(buf, FS_PROC_PATH_MAX, "/proc/self/fd/%d", fd);
}

int fs_table_init(struct fs *fs)
{
	struct fs_table *t = &fs->table;
	t->bucket_count = INITIAL_BUCKETS;
	t->by_id = calloc(t->bucket_count, sizeof(*t->by_id));
	t->by_key = calloc(t->bucket_count, sizeof(*t->by_key));
	if (!t->by_id || !t->by_key) {
		free(t->by_id);
		free(t->by_key);
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->table_lock, NULL);
	return 0;
}

static void node_free(struct fs *fs, struct fs_node *n)
{
	sys_close(n->fd);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->write_lock);
	fs_readahead_release(fs, &n->readahead);
	free(n);
}

void fs_table_release(struct fs *fs)
{
	struct fs_table *t = &fs->table;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct fs_node *n = t->by_id[i];
		while (n) {
			struct fs_node *next = n->next_by_id;
			node_free(fs, n);
			n = next;
		}
	}
	free(t->by_id);
	free(t->by_key);
	pthread_mutex_destroy(&fs->table_lock);
}

static void table_insert(struct fs_table *t, struct fs_node *n)
{
	size_t bi = bucket_by_id(t, n->nodeid), bk = bucket_by_key(t, n->dev, n->ino);
	n->next_by_id = t->by_id[bi];
	t->by_id[bi] = n;
	n->next_by_key = t->by_key[bk];
	t->by_key[bk] = n;
	t->node_count++;
}

/* Double the buckets when the load passes 1; on allocation failure keep the old size. */
static void table_grow(struct fs_table *t)
{
	struct fs_table bigger = { .bucket_count = t->bucket_count * 2 };
	bigger.by_id = calloc(bigger.bucket_count, sizeof(*bigger.by_id));
	bigger.by_key = calloc(bigger.bucket_count, sizeof(*bigger.by_key));
	if (!bigger.by_id || !bigger.by_key) {
		free(bigger.by_id);
		free(bigger.by_key);
		return;
	}
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct fs_node *n = t->by_id[i];
		while (n) {
			struct fs_node *next = n->next_by_id;
			table_insert(&bigger, n);
			n = next;
		}
	}
	free(t->by_id);
	free(t->by_key);
	*t = bigger;
}

static struct fs_node *table_find_id(const struct fs_table *t, uint64_t nodeid)
{
	struct fs_node *n = t->by_id[bucket_by_id(t, nodeid)];
	while (n && n->nodeid != nodeid)
		n = n->next_by_id;
	return n;
}

/* The inode number can only be reused once its last reference is gone, and our O_PATH fd is
 * one; the type check guards against an origin changed under us all the same. */
static struct fs_node *table_find_key(const struct fs_table *t, const struct stat *st)
{
	struct fs_node *n = t->by_key[bucket_by_key(t, st->st_dev, st->st_ino)];
	while (n && !(n->dev == st->st_dev && n->ino == st->st_ino &&
	              n->type == (st->st_mode & S_IFMT)))
		n = n->next_by_key;
	return n;
}

static void table_remove(struct fs_table *t, struct fs_node *n)
{
	struct fs_node **pp = &t->by_id[bucket_by_id(t, n->nodeid)];
	while (*pp != n)
		pp = &(*pp)->next_by_id;
	*pp = n->next_by_id;
	pp = &t->by_key[bucket_by_key(t, n->dev, n->ino)];
	while (*pp != n)
		pp = &(*pp)->next_by_key;
	*pp = n->next_by_key;
	t->node_count--;
}

struct fs_node *fs_node_get(struct fs *fs, uint64_t nodeid)
{
	struct fs_node *n;
	if (nodeid == FUSE_ROOT_ID)
		return fs->root;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_id(&fs->table, nodeid);
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

int fs_node_acquire(struct fs *fs, int fd, const struct stat *st, struct fs_node **out)
{
	struct fs_table *t = &fs->table;
	struct fs_node *n, *fresh;

	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(t, st);
	if (n) {
		n->lookups++;
		pthread_mutex_unlock(&fs->table_lock);
		sys_close(fd);
		*out = n;
		return 0;
	}
	pthread_mutex_unlock(&fs->table_lock);

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		sys_close(fd);
		return -ENOMEM;
	}
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->fd = fd;
	fresh->lookups = 1;
	pthread_mutex_init(&fresh->lock, NULL);
	pthread_mutex_init(&fresh->write_lock, NULL);
	fs_readahead_init(&fresh->readahead);

	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(t, st);  /* someone may have added it meanwhile */
	if (n) {
		n->lookups++;
		pthread_mutex_unlock(&fs->table_lock);
		node_free(fs, fresh);
		*out = n;
		return 0;
	}
	fresh->nodeid = fs->next_nodeid++;
	if (t->node_count >= t->bucket_count)
		table_grow(t);
	table_insert(t, fresh);
	pthread_mutex_unlock(&fs->table_lock);
	*out = fresh;
	return 0;
}

struct fs_node *fs_node_find_ref(struct fs *fs, const struct stat *st)
{
	struct fs_node *n;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_key(&fs->table, st);
	if (n)
		n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

void fs_node_ref(struct fs *fs, struct fs_node *n)
{
	if (n->nodeid == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->table_lock);
	n->lookups++;
	pthread_mutex_unlock(&fs->table_lock);
}

void fs_node_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup)
{
	struct fs_node *n;
	if (nodeid == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->table_lock);
	n = table_find_id(&fs->table, nodeid);
	if (!n) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	n->lookups = nlookup >= n->lookups ? 0 : n->lookups - nlookup;
	if (n->lookups) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	table_remove(&fs->table, n);
	pthread_mutex_unlock(&fs->table_lock);
	node_free(fs, n);
}
