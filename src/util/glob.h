/* glob: the one rule by which CacheMax matches a path relative to a directory against a glob
 * (--pin, --exclude, cachemax warm): fnmatch(3) with FNM_PATHNAME. A glob with '/' is matched
 * against the path and each directory above it ("a", "a/b", ...), so it covers everything
 * below a directory it names; one without '/' is matched against each component, so "*.log"
 * matches at any depth and "tmp" covers every directory named tmp. Pure; no allocation.
 */
#ifndef CACHEMAX_GLOB_H
#define CACHEMAX_GLOB_H

#include <stdbool.h>

/* rel (no leading '/') matches glob by the rule above. Paths of 4096 bytes or more never do. */
bool glob_match(const char *glob, const char *rel);
/* Any of count globs. */
bool glob_match_any(const char *const *globs, unsigned count, const char *rel);

#endif
