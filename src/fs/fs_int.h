/* fs internals shared by the fs/ files only: the file system, its node table, open files.
 * Locking (see docs/ARCHITECTURE.md): fs->table_lock protects both hash tables and every
 * node's lookup count; node->lock protects the node's open state (open counts, backing id).
 * Order: table_lock before node->lock; never hold either across a reply.
 */
#ifndef CACHEMAX_FS_INT_H
#define CACHEMAX_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/fs.h"

struct fs_node {
	uint64_t nodeid;              /* ours, never reused */
	dev_t dev;                    /* origin key */
	ino_t ino;
	mode_t type;                  /* S_IFMT bits */
	int fd;                       /* O_PATH fd on the origin inode */
	uint64_t lookups;             /* kernel references; table_lock */
	struct fs_node *next_by_id;   /* table_lock */
	struct fs_node *next_by_key;  /* table_lock */

	pthread_mutex_t lock;         /* protects the fields below */
	unsigned open_count;          /* all open files of this inode */
	unsigned passthrough_count;   /* those opened with FOPEN_PASSTHROUGH */
	int backing_id;               /* > 0 while passthrough_count > 0 */
};

struct fs_file {
	struct fs_node *node;
	int fd;                       /* our own open fd on the origin file */
	int open_flags;               /* flags the application opened with */
	bool passthrough;
};

struct fs_dir {
	int fd;
	pthread_mutex_t lock;         /* protects everything below */
	uint64_t offset;              /* cookie of the next entry in buf (or of the fd position) */
	size_t buf_len, buf_pos;
	char buf[32768];
};

struct fs_table {
	struct fs_node **by_id;
	struct fs_node **by_key;
	size_t bucket_count;          /* power of two */
	size_t node_count;
};

struct fs {
	struct fs_config cfg;
	struct fuse_session *session;
	struct fs_node *root;
	pthread_mutex_t table_lock;
	struct fs_table table;
	uint64_t next_nodeid;         /* table_lock */
	atomic_bool passthrough_ok;   /* granted by INIT and not failed */
	char passthrough_why[160];    /* why not, for status; written once under table_lock */
	uint32_t stack_depth;
};

/* Node table (fs_node.c). */
int fs_table_init(struct fs *fs);
void fs_table_release(struct fs *fs);
/* The node for a kernel nodeid, or NULL if unknown (a bug or a stale id: answer ESTALE). */
struct fs_node *fs_node_get(struct fs *fs, uint64_t nodeid);
/* Find or add the node for an origin inode and take one lookup reference. `fd` is an O_PATH fd
 * on it; it is consumed (kept by a new node or closed). */
int fs_node_acquire(struct fs *fs, int fd, const struct stat *st, struct fs_node **out);
/* Drop nlookup references; frees the node at zero (root is never freed). */
void fs_node_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup);

/* "/proc/self/fd/N" for a node fd, for calls that have no *at() form usable with O_PATH. */
#define FS_PROC_PATH_MAX 32
void fs_proc_path(int fd, char buf[FS_PROC_PATH_MAX]);

#endif
