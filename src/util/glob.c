/* glob: matching relative paths against globs (see glob.h). */
#include "util/glob.h"

#include <fnmatch.h>
#include <string.h>

#define GLOB_PATH_MAX 4096

bool glob_match(const char *glob, const char *rel)
{
	char prefix[GLOB_PATH_MAX];
	size_t len = strlen(rel);

	if (len >= sizeof(prefix))
		return false;
	if (strchr(glob, '/')) {
		for (size_t i = 0; i <= len; i++) {
			if (rel[i] != '/' && rel[i] != '\0')
				continue;
			memcpy(prefix, rel, i);
			prefix[i] = '\0';
			if (fnmatch(glob, prefix, FNM_PATHNAME) == 0)
				return true;
		}
		return false;
	}
	for (const char *c = rel; *c;) {
		const char *slash = strchr(c, '/');
		size_t clen = slash ? (size_t)(slash - c) : strlen(c);
		memcpy(prefix, c, clen);
		prefix[clen] = '\0';
		if (fnmatch(glob, prefix, 0) == 0)
			return true;
		c += clen + (slash != NULL);
	}
	return false;
}

bool glob_match_any(const char *const *globs, unsigned count, const char *rel)
{
	for (unsigned i = 0; i < count; i++)
		if (glob_match(globs[i], rel))
			return true;
	return false;
}
