/* cache_layout: the one fact about a cache directory's on-disk layout that programs outside
 * the cache layer may rely on: the store lives in one subdirectory of the cache directory, so
 * a tool that created it (the bench) can remove it whole. Everything inside it is the store's
 * own (cache_store.h, docs/ARCHITECTURE.md); the version in the name changes with the format.
 */
#ifndef CACHEMAX_CACHE_LAYOUT_H
#define CACHEMAX_CACHE_LAYOUT_H

#define CACHE_STORE_DIR_NAME "cachemax-v1"

#endif
