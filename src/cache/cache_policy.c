/* cache_policy: S3-FIFO and LRU over one hash table of keys and intrusive FIFO lists.
 * Every known key has one entry; where it is says what it is:
 *   small/main FIFO     resident, evictable
 *   no queue, pinned    pinned (resident or not: a pin is remembered for a key yet to come)
 *   ghost FIFO          not resident, evicted from the small FIFO lately (S3-FIFO only)
 * Sizes are bytes: the small FIFO's target is a share of the capacity in bytes, and the ghost
 * FIFO remembers at most as many bytes as the main FIFO may hold.
 */
#include "cache/cache_policy.h"
#include "cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define SMALL_PERCENT 10          /* the small FIFO's share of the capacity (S3-FIFO) */
#define FREQ_MAX 3                /* 2-bit access count */
#define TABLE_MIN_BUCKETS 1024u   /* a power of two */
#define GHOST_MIN_KEYS 1024u      /* ghost keys beyond the resident count (zero-byte objects) */

enum queue { QUEUE_NONE, QUEUE_SMALL, QUEUE_MAIN, QUEUE_GHOST, QUEUE_COUNT };

struct link {
	struct link *prev, *next;
};

struct entry {
	struct link link;   /* first: an entry is its link */
	struct cache_key key;
	uint64_t bytes;     /* resident: allocated bytes; ghost: bytes when evicted; else 0 */
	struct entry *hash_next;
	uint8_t queue;      /* enum queue */
	uint8_t freq;       /* S3-FIFO: uses since insertion or the last pass, at most FREQ_MAX */
	bool resident;
	bool pinned;
};

struct fifo {
	struct link head;   /* sentinel: head.next is the oldest entry */
	uint64_t bytes;
	uint64_t count;
};

struct cache_policy {
	pthread_mutex_t lock;   /* protects everything below */
	enum cache_policy_kind kind;
	uint64_t small_target;  /* bytes */
	uint64_t main_target;   /* bytes; also the ghost FIFO's limit */
	struct entry **buckets;
	uint64_t bucket_mask;
	uint64_t known;         /* entries in the table */
	struct fifo queues[QUEUE_COUNT];   /* QUEUE_NONE unused */
	uint64_t bytes;         /* resident, pinned included */
	uint64_t count;
};

const char *cache_policy_kind_name(enum cache_policy_kind kind)
{
	switch (kind) {
	case CACHE_POLICY_S3FIFO:
		return "s3-fifo";
	case CACHE_POLICY_LRU:
		return "lru";
	}
	return "unknown";
}

/* ---- Table ------------------------------------------------------------------------------ */

static bool key_equal(struct cache_key a, struct cache_key b)
{
	return a.dev == b.dev && a.ino == b.ino;
}

static struct entry **table_slot(struct cache_policy *p, struct cache_key key)
{
	struct entry **slot = &p->buckets[cache_key_hash(key) & p->bucket_mask];
	while (*slot && !key_equal((*slot)->key, key))
		slot = &(*slot)->hash_next;
	return slot;
}

static struct entry *table_find(struct cache_policy *p, struct cache_key key)
{
	return *table_slot(p, key);
}

/* Doubles the table; on allocation failure it stays as it is (only slower). */
static void table_grow(struct cache_policy *p)
{
	uint64_t count = (p->bucket_mask + 1) * 2;
	struct entry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return;
	for (uint64_t i = 0; i <= p->bucket_mask; i++) {
		struct entry *e = p->buckets[i], *next;
		for (; e; e = next) {
			struct entry **slot = &buckets[cache_key_hash(e->key) & (count - 1)];
			next = e->hash_next;
			e->hash_next = *slot;
			*slot = e;
		}
	}
	free(p->buckets);
	p->buckets = buckets;
	p->bucket_mask = count - 1;
}

/* A new entry for an unknown key: not resident, in no queue. */
static struct entry *entry_new(struct cache_policy *p, struct cache_key key)
{
	struct entry *e = calloc(1, sizeof(*e)), **slot;

	if (!e)
		return NULL;
	if (p->known >= p->bucket_mask + 1)
		table_grow(p);
	e->key = key;
	slot = &p->buckets[cache_key_hash(key) & p->bucket_mask];
	e->hash_next = *slot;
	*slot = e;
	p->known++;
	return e;
}

/* Frees an entry that is in no queue. */
static void entry_delete(struct cache_policy *p, struct entry *e)
{
	struct entry **slot = table_slot(p, e->key);
	*slot = e->hash_next;
	p->known--;
	free(e);
}

/* ---- Queues ----------------------------------------------------------------------------- */

static void queue_insert(struct cache_policy *p, enum queue q, struct entry *e, bool at_head)
{
	struct fifo *f = &p->queues[q];
	struct link *before = at_head ? f->head.next : &f->head;   /* insert before this */

	e->link.next = before;
	e->link.prev = before->prev;
	before->prev->next = &e->link;
	before->prev = &e->link;
	e->queue = (uint8_t)q;
	f->bytes += e->bytes;
	f->count++;
}

static void queue_unlink(struct cache_policy *p, struct entry *e)
{
	struct fifo *f = &p->queues[e->queue];

	if (e->queue == QUEUE_NONE)
		return;
	e->link.prev->next = e->link.next;
	e->link.next->prev = e->link.prev;
	e->link.prev = e->link.next = NULL;
	f->bytes -= e->bytes;
	f->count--;
	e->queue = QUEUE_NONE;
}

static struct entry *queue_oldest(struct cache_policy *p, enum queue q)
{
	struct fifo *f = &p->queues[q];
	return f->count ? (struct entry *)f->head.next : NULL;
}

/* Forgets the oldest ghost keys beyond the ghost FIFO's limits. */
static void ghost_trim(struct cache_policy *p)
{
	struct fifo *g = &p->queues[QUEUE_GHOST];

	while (g->count && (g->bytes > p->main_target || g->count > p->count + GHOST_MIN_KEYS)) {
		struct entry *e = queue_oldest(p, QUEUE_GHOST);
		queue_unlink(p, e);
		entry_delete(p, e);
	}
}

/* Makes a non-resident entry (taken out of the ghost FIFO already) resident in queue q. */
static void entry_admit(struct cache_policy *p, struct entry *e, uint64_t bytes, enum queue q,
                        bool at_head)
{
	e->resident = true;
	e->bytes = bytes;
	e->freq = 0;
	p->bytes += bytes;
	p->count++;
	if (!e->pinned)
		queue_insert(p, q, e, at_head);
}

static void entry_set_bytes(struct cache_policy *p, struct entry *e, uint64_t bytes)
{
	p->bytes = p->bytes - e->bytes + bytes;
	if (e->queue != QUEUE_NONE)
		p->queues[e->queue].bytes = p->queues[e->queue].bytes - e->bytes + bytes;
	e->bytes = bytes;
}

/* Where new keys enter. */
static enum queue queue_new(const struct cache_policy *p)
{
	return p->kind == CACHE_POLICY_S3FIFO ? QUEUE_SMALL : QUEUE_MAIN;
}

/* ---- API -------------------------------------------------------------------------------- */

int cache_policy_create(enum cache_policy_kind kind, uint64_t capacity, struct cache_policy **out)
{
	struct cache_policy *p;

	if (capacity == 0 || (kind != CACHE_POLICY_S3FIFO && kind != CACHE_POLICY_LRU))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->buckets = calloc(TABLE_MIN_BUCKETS, sizeof(*p->buckets));
	if (!p->buckets) {
		free(p);
		return -ENOMEM;
	}
	p->bucket_mask = TABLE_MIN_BUCKETS - 1;
	p->kind = kind;
	p->small_target = capacity / 100 * SMALL_PERCENT + capacity % 100 * SMALL_PERCENT / 100;
	p->main_target = capacity - p->small_target;
	for (int q = 0; q < QUEUE_COUNT; q++)
		p->queues[q].head.prev = p->queues[q].head.next = &p->queues[q].head;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void cache_policy_free(struct cache_policy *p)
{
	if (!p)
		return;
	for (uint64_t i = 0; i <= p->bucket_mask; i++) {
		struct entry *e = p->buckets[i], *next;
		for (; e; e = next) {
			next = e->hash_next;
			free(e);
		}
	}
	free(p->buckets);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Inserts key (not resident) into queue q; a ghost key goes to the main FIFO instead when
 * ghost_to_main. Returns 0 or -ENOMEM. */
static int insert_locked(struct cache_policy *p, struct entry *e, struct cache_key key,
                         uint64_t bytes, enum queue q, bool at_head, bool ghost_to_main)
{
	if (!e) {
		e = entry_new(p, key);
		if (!e)
			return -ENOMEM;
	}
	if (e->queue == QUEUE_GHOST) {
		queue_unlink(p, e);
		if (ghost_to_main)
			q = QUEUE_MAIN;
	}
	entry_admit(p, e, bytes, q, at_head);
	return 0;
}

int cache_policy_access(struct cache_policy *p, struct cache_key key, uint64_t bytes)
{
	struct entry *e;
	int rc = 1;

	pthread_mutex_lock(&p->lock);
	e = table_find(p, key);
	if (e && e->resident) {
		entry_set_bytes(p, e, bytes);
		if (p->kind == CACHE_POLICY_S3FIFO) {
			if (e->freq < FREQ_MAX)
				e->freq++;
		} else if (e->queue == QUEUE_MAIN) {
			queue_unlink(p, e);
			queue_insert(p, QUEUE_MAIN, e, false);
		}
	} else {
		rc = insert_locked(p, e, key, bytes, queue_new(p), false, true);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int cache_policy_seed(struct cache_policy *p, struct cache_key key, uint64_t bytes)
{
	struct entry *e;
	int rc = 1;

	pthread_mutex_lock(&p->lock);
	e = table_find(p, key);
	if (!e || !e->resident)
		rc = insert_locked(p, e, key, bytes, queue_new(p), true, false);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int cache_policy_resize(struct cache_policy *p, struct cache_key key, uint64_t bytes)
{
	struct entry *e;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	e = table_find(p, key);
	if (e && e->resident)
		entry_set_bytes(p, e, bytes);
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int cache_policy_remove(struct cache_policy *p, struct cache_key key)
{
	struct entry *e;
	enum queue was;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	e = table_find(p, key);
	if (!e || !e->resident) {
		rc = -ENOENT;
		goto unlock;
	}
	was = (enum queue)e->queue;
	queue_unlink(p, e);
	p->bytes -= e->bytes;
	p->count--;
	e->resident = false;
	e->freq = 0;
	if (e->pinned) {
		e->bytes = 0;   /* the pin stays for the key's next arrival */
	} else if (was == QUEUE_SMALL) {
		queue_insert(p, QUEUE_GHOST, e, false);
		ghost_trim(p);
	} else {
		entry_delete(p, e);
	}
unlock:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int cache_policy_pin(struct cache_policy *p, struct cache_key key, bool pinned)
{
	struct entry *e;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	e = table_find(p, key);
	if (pinned) {
		if (!e)
			e = entry_new(p, key);
		if (!e) {
			rc = -ENOMEM;
		} else if (!e->pinned) {
			e->pinned = true;
			queue_unlink(p, e);   /* pinned keys are in no queue */
			if (!e->resident)
				e->bytes = 0;   /* was a ghost: only the pin is left to remember */
		}
	} else if (e && e->pinned) {
		e->pinned = false;
		if (e->resident) {
			e->freq = 0;
			queue_insert(p, QUEUE_MAIN, e, false);   /* it was worth keeping */
		} else {
			entry_delete(p, e);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* S3-FIFO: take from the small FIFO while it is over its share (or the main FIFO is empty):
 * a key used again moves on to the main FIFO, any other is the victim. Otherwise take from the
 * main FIFO: a key used again goes round with one use less. Terminates: every pass of the loop
 * moves a key out of the small FIFO or takes one off a bounded count. */
static struct entry *s3fifo_victim(struct cache_policy *p)
{
	for (;;) {
		struct fifo *small = &p->queues[QUEUE_SMALL], *main = &p->queues[QUEUE_MAIN];
		struct entry *e;

		if (small->count && (small->bytes > p->small_target || !main->count)) {
			e = queue_oldest(p, QUEUE_SMALL);
			if (!e->freq)
				return e;
			queue_unlink(p, e);
			e->freq = 0;
			queue_insert(p, QUEUE_MAIN, e, false);
			continue;
		}
		e = queue_oldest(p, QUEUE_MAIN);
		if (!e || !e->freq)
			return e;
		e->freq--;
		queue_unlink(p, e);
		queue_insert(p, QUEUE_MAIN, e, false);
	}
}

int cache_policy_victim(struct cache_policy *p, struct cache_key *out)
{
	struct entry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&p->lock);
	e = p->kind == CACHE_POLICY_S3FIFO ? s3fifo_victim(p) : queue_oldest(p, QUEUE_MAIN);
	if (e) {
		*out = e->key;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

uint64_t cache_policy_bytes(struct cache_policy *p)
{
	uint64_t bytes;
	pthread_mutex_lock(&p->lock);
	bytes = p->bytes;
	pthread_mutex_unlock(&p->lock);
	return bytes;
}

uint64_t cache_policy_count(struct cache_policy *p)
{
	uint64_t count;
	pthread_mutex_lock(&p->lock);
	count = p->count;
	pthread_mutex_unlock(&p->lock);
	return count;
}
