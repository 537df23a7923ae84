/* config_file: /etc/cachemax/cachemax.conf, the directories `cachemax start --all` accelerates.
 * INI, one section per directory, its keys the start options of config_options.h:
 *     # comment
 *     [/srv/data]
 *     cache = /mnt/fast/cachemax-data
 *     size = 200G
 *     pin = db/[a-z]*.sqlite
 *     pin = *.idx              (repeatable options: one line each)
 *     no-passthrough           (a switch: alone, or = yes / no)
 * Parsed with libinih (Debian's libinih-dev). Every mistake is reported as "FILE:LINE: what is
 * wrong"; a section with a mistake is marked bad, the others stay usable. `enable` and
 * `disable` rewrite one section and leave every other line (comments too) as it was.
 * Errors: 0 or -errno.
 */
#ifndef CACHEMAX_CONFIG_FILE_H
#define CACHEMAX_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config_options.h"

#define CONFIG_FILE_DEFAULT "/etc/cachemax/cachemax.conf"
#define CONFIG_FILE_ENV "CACHEMAX_CONFIG"
#define CONFIG_FILE_MODE 0644
#define CONFIG_FILE_LINE_MAX 8192

struct config_section {
	char dir[CONTROL_PATH_MAX];  /* the section name: an absolute directory path */
	unsigned line;               /* of its [header] */
	bool bad;                    /* one of its lines was wrong (reported in the errors) */
	struct config_start start;
};

struct config_file {
	char path[CONTROL_PATH_MAX];
	struct config_section *sections;
	size_t count;
	char *errors;                /* "FILE:LINE: message\n" lines, NULL if none */
	unsigned error_count;
};

/* `given` (from --config), else $CACHEMAX_CONFIG, else CONFIG_FILE_DEFAULT. */
const char *config_file_path(const char *given);

/* Parse the file into cf (release it with config_file_release, also after an error).
 * -ENOENT if it does not exist; -EPERM if it is not root's or others may write it (msg says
 * so); other -errno if it cannot be read. Mistakes inside it are not an error of the call:
 * they are in cf->errors. */
int config_file_load(const char *path, struct config_file *cf, char *msg, size_t msg_size);
/* The same for len bytes of text (need not be NUL-terminated), `name` naming it in messages.
 * Pure but for libinih's global settings: fuzzed by tests/fuzz/fuzz_config.c. */
void config_file_parse(const char *name, const char *text, size_t len, struct config_file *cf);
void config_file_release(struct config_file *cf);
/* The section of `dir`, or NULL. */
const struct config_section *config_file_find(const struct config_file *cf, const char *dir);

/* Replace the section of `dir` (keeping its place) or append it, with `body` ("key=value\n"
 * lines). Creates the file and its directory if missing. Written atomically. */
int config_file_put(const char *path, const char *dir, const char *body);
/* Remove the section of `dir`; -ENOENT if it has none. */
int config_file_remove(const char *path, const char *dir);

#endif
