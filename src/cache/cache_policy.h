/* cache_policy: which cached object to evict next — a pure, byte-weighted bookkeeping of keys
 * (no I/O, no knowledge of files), so that it can be measured on a trace by itself. The store
 * feeds it (cache_store.c, cache_capacity.c); the caller decides when to evict and removes a
 * victim only after it really dropped the object.
 *
 * Kinds (enum cache_policy_kind, cache_store.h):
 *   S3-FIFO  a small FIFO (new keys, about 10% of the capacity in bytes), a main FIFO whose keys
 *            carry a 2-bit access count, and a ghost FIFO of keys only (recently evicted from
 *            the small FIFO, bounded by the main FIFO's bytes). A key accessed again while in
 *            the small FIFO moves to the main FIFO when it reaches the head; a main key with a
 *            nonzero count goes round again with one less; a key found in the ghost FIFO is
 *            admitted straight into the main FIFO. A one-time scan passes through the small
 *            FIFO and leaves the main FIFO — the hot set — alone.
 *   LRU      least recently accessed first (for comparison).
 *
 * Vocabulary: a key is resident between access() (or seed()) and remove(); bytes() and count()
 * sum resident keys, pinned ones included. A pinned key is never a victim; a pin is a property
 * of the key and outlives its residency (a pin set on an unknown key applies when it arrives,
 * and survives remove()).
 *
 * Cost: O(1) amortised per operation (hash table grown by doubling, intrusive lists); about
 * 80 bytes per known key; no limit on the number of keys but memory.
 *
 * Threads: every function may be called from any thread; one internal mutex, held only inside
 * these functions and never around a call out, so it is a leaf in any lock order.
 *
 * Errors: 0 (or a documented non-negative value) or -errno; out-params only on success.
 */
#ifndef CACHEMAX_CACHE_POLICY_H
#define CACHEMAX_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache_store.h"

struct cache_policy;

/* capacity: the bytes the caller will keep resident (sizes the small and ghost FIFOs; the
 * policy itself never evicts). -EINVAL for capacity 0 or an unknown kind, -ENOMEM. */
int cache_policy_create(enum cache_policy_kind kind, uint64_t capacity,
                        struct cache_policy **out);
void cache_policy_free(struct cache_policy *policy);

/* A use of key, which now has bytes allocated. Returns 1 if it was resident (a hit; its size
 * becomes bytes), 0 if it was inserted, -ENOMEM. */
int cache_policy_access(struct cache_policy *policy, struct cache_key key, uint64_t bytes);
/* A key found on disk at start-up, with no history: if it is not resident it is inserted as the
 * coldest key, ahead of every key known so far (so seed the newest first: the oldest is then
 * the first victim). Returns 1 if it was already resident (left as it is), 0, -ENOMEM. */
int cache_policy_seed(struct cache_policy *policy, struct cache_key key, uint64_t bytes);
/* The resident key's allocation changed. -ENOENT if it is not resident. */
int cache_policy_resize(struct cache_policy *policy, struct cache_key key, uint64_t bytes);
/* The key's object is gone (evicted or removed). -ENOENT if it was not resident. */
int cache_policy_remove(struct cache_policy *policy, struct cache_key key);
/* Pins or unpins key, resident or not. 0 or -ENOMEM. */
int cache_policy_pin(struct cache_policy *policy, struct cache_key key, bool pinned);
/* The next key to evict (it stays resident until cache_policy_remove()): 0, or -ENOENT if no
 * resident key may be evicted (none, or all pinned). May reorder the queues (S3-FIFO). */
int cache_policy_victim(struct cache_policy *policy, struct cache_key *out);

uint64_t cache_policy_bytes(struct cache_policy *policy);
uint64_t cache_policy_count(struct cache_policy *policy);
const char *cache_policy_kind_name(enum cache_policy_kind kind);

#endif
