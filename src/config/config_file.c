/* config_file: the config file of enabled directories (config_file.h). libinih splits lines
 * into sections and keys; we feed it the lines ourselves, so that we know the number of the
 * line each key comes from and can name it in every message, and check what inih would only
 * count (a header without its ']', a line too long). */
#include "config/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/control.h"
#include "util/file.h"

const char *config_file_path(const char *given)
{
	const char *env = getenv(CONFIG_FILE_ENV);
	if (given && *given)
		return given;
	return env && *env ? env : CONFIG_FILE_DEFAULT;
}

/* The parse in progress: the text, where the reader is, the file being filled. */
struct parse {
	const char *text;
	size_t len, pos;
	unsigned line;
	struct config_file *cf;
	struct config_section *current;  /* the section of the last header; NULL before any */
};

static void error_add(struct parse *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void error_add(struct parse *p, unsigned line, const char *fmt, ...)
{
	struct config_file *cf = p->cf;
	size_t old = cf->errors ? strlen(cf->errors) : 0;
	char msg[CONFIG_MESSAGE_MAX + CONTROL_PATH_MAX];
	char *grown;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(NULL, 0, "%s:%u: %s\n", cf->path, line, msg);
	grown = realloc(cf->errors, old + (size_t)n + 1);
	cf->error_count++;
	if (!grown)
		return;  /* counted, not told: the caller still fails */
	snprintf(grown + old, (size_t)n + 1, "%s:%u: %s\n", cf->path, line, msg);
	cf->errors = grown;
	if (p->current)
		p->current->bad = true;
}

/* "[name]" (blanks around allowed): the name into out; false if the line is no header. */
static bool header_name(const char *line, size_t n, char *out, size_t size, bool *closed)
{
	const char *end = line + n;
	while (line < end && (*line == ' ' || *line == '\t'))
		line++;
	if (line == end || *line != '[')
		return false;
	const char *close = memchr(line, ']', (size_t)(end - line));
	*closed = close != NULL;
	if (close) {
		size_t len = (size_t)(close - line - 1);
		while (len && (line[1] == ' ' || line[1] == '\t')) {
			line++;
			len--;
		}
		while (len && (line[len] == ' ' || line[len] == '\t'))
			len--;
		snprintf(out, size, "%.*s", (int)len, line + 1);
	}
	return true;
}

static void section_begin(struct parse *p, const char *name)
{
	struct config_file *cf = p->cf;
	struct config_section *grown;
	const struct config_section *earlier = config_file_find(cf, name);
	unsigned earlier_line = earlier ? earlier->line : 0;  /* the realloc below moves it */

	grown = realloc(cf->sections, (cf->count + 1) * sizeof(*grown));
	if (!grown) {
		p->current = NULL;
		error_add(p, p->line, "out of memory");
		return;
	}
	cf->sections = grown;
	p->current = &cf->sections[cf->count++];
	memset(p->current, 0, sizeof(*p->current));
	snprintf(p->current->dir, sizeof(p->current->dir), "%s", name);
	p->current->line = p->line;
	config_start_init(&p->current->start);
	if (name[0] != '/' || strlen(name) >= CONTROL_PATH_MAX)
		error_add(p, p->line, "section [%s]: a section is named after its directory, an absolute path "
		          "such as [/srv/data]", name);
	else if (earlier_line)
		error_add(p, p->line, "section [%s] is already at line %u: give each directory one section",
		          name, earlier_line);
}

/* inih's fgets: one line of the text per call (counted); a header is checked here. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *line = p->text + p->pos, *nl;
	size_t n;
	char name[CONTROL_PATH_MAX];
	bool closed;

	if (p->pos >= p->len)
		return NULL;
	nl = memchr(line, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - line) : p->len - p->pos;
	p->pos += n + (nl != NULL);
	p->line++;
	if (n + 2 >= (size_t)num || memchr(line, '\0', n)) {
		error_add(p, p->line, "line too long (at most %d characters) or not text", num - 3);
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	if (header_name(line, n, name, sizeof(name), &closed)) {
		if (!closed) {
			error_add(p, p->line, "a section header needs its closing ']': [/srv/data]");
			snprintf(str, (size_t)num, "\n");
			return str;
		}
		section_begin(p, name);
	}
	memcpy(str, line, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct config_option *opt = config_option_find(name);
	char msg[CONFIG_MESSAGE_MAX];
	bool on;

	if (!section[0] || !p->current) {
		error_add(p, p->line, "'%s' is outside a section: put it under the [DIR] it is for", name);
		return 1;
	}
	if (!opt) {
		error_add(p, p->line, "unknown key '%s' (the keys are the options of 'cachemax start', "
		          "without '--': see 'cachemax start --help')", name);
		return 1;
	}
	if (opt->flags & CONFIG_NOT_IN_FILE) {
		error_add(p, p->line, "'%s' is for the command line only, not for the config file", name);
		return 1;
	}
	if (opt->type == CONFIG_SWITCH) {
		if (value && config_bool_parse(value, &on) < 0)
			error_add(p, p->line, "'%s' takes yes or no (or nothing: yes), not '%s'", name, value);
		else if (!value || on)
			config_option_set(opt, NULL, &p->current->start, "", msg, sizeof(msg));
		return 1;
	}
	if (!value || !*value)
		error_add(p, p->line, "'%s' needs a value: %s = ...", name, name);
	else if (config_option_set(opt, value, &p->current->start, "", msg, sizeof(msg)) < 0)
		error_add(p, p->line, "%s", msg);
	return 1;
}

static int file_read(const char *path, char **text, size_t *len, char *msg, size_t msg_size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, msg_size, "%s: not a regular file", path);
		rc = -EINVAL;
		goto out_close;
	}
	/* It says what root mounts where: nobody else may have written it. */
	if (control_owner_check(&st, CONFIG_FILE_MODE) < 0) {
		snprintf(msg, msg_size, "%s: refusing a config file that is not owned by root or that "
		         "others may write (chown root and chmod go-w it)", path);
		rc = -EPERM;
		goto out_close;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		rc = -ENOMEM;
		goto out_close;
	}
	n = read(fd, *text, (size_t)st.st_size);
	if (n < 0) {
		rc = -errno;
		free(*text);
		goto out_close;
	}
	(*text)[n] = '\0';
	*len = (size_t)n;
out_close:
	close(fd);
	return rc;
}

void config_file_parse(const char *name, const char *text, size_t len, struct config_file *cf)
{
	struct parse p = { .cf = cf, .text = text, .len = len };

	memset(cf, 0, sizeof(*cf));
	snprintf(cf->path, sizeof(cf->path), "%s", name);
	/* Debian's libinih takes its build options at run time as well. */
	ini_use_stack = false;
	ini_max_line = CONFIG_FILE_LINE_MAX;
	ini_allow_multiline = false;       /* an indented line is a key of its own */
	ini_allow_inline_comments = false; /* a ';' in a glob is part of it */
	ini_allow_no_value = true;         /* a switch alone: "no-passthrough" */
	ini_stop_on_first_error = false;
	ini_parse_stream(reader, &p, handler, &p);
	for (size_t i = 0; i < cf->count; i++) {
		struct config_section *s = &cf->sections[i];
		if (!s->bad && !s->start.cache[0]) {
			p.current = s;
			error_add(&p, s->line, "section [%s] has no 'cache' key: cache = /mnt/fast/DIR", s->dir);
		}
	}
}

int config_file_load(const char *path, struct config_file *cf, char *msg, size_t msg_size)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(cf, 0, sizeof(*cf));
	if (msg_size)
		msg[0] = '\0';
	rc = file_read(path, &text, &len, msg, msg_size);
	if (rc < 0) {
		if (!msg[0])
			snprintf(msg, msg_size, "cannot read the config file '%s': %s", path, strerror(-rc));
		return rc;
	}
	config_file_parse(path, text, len, cf);
	free(text);
	return 0;
}

void config_file_release(struct config_file *cf)
{
	free(cf->sections);
	free(cf->errors);
	cf->sections = NULL;
	cf->errors = NULL;
	cf->count = 0;
}

const struct config_section *config_file_find(const struct config_file *cf, const char *dir)
{
	for (size_t i = 0; i < cf->count; i++)
		if (!strcmp(cf->sections[i].dir, dir))
			return &cf->sections[i];
	return NULL;
}

/* Its directory made if missing, then replaced atomically and durably (util/file.h). */
static int config_write(const char *path, const char *text, size_t len)
{
	char dir[CONTROL_PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	return file_replace(path, text, len, CONFIG_FILE_MODE, true);
}

/* Where the section of dir begins and ends in text (its header up to the next header or the
 * end); false if it has none. */
static bool section_span(const char *text, size_t len, const char *dir, size_t *begin, size_t *end)
{
	char name[CONTROL_PATH_MAX];
	bool found = false, closed;

	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (header_name(text + pos, n, name, sizeof(name), &closed) && closed) {
			if (found) {
				*end = pos;
				return true;
			}
			if (!strcmp(name, dir)) {
				found = true;
				*begin = pos;
			}
		}
		pos += n + (nl != NULL);
	}
	*end = len;
	return found;
}

/* text with [begin, end) replaced by `insert`, written over path. */
static int file_splice(const char *path, const char *text, size_t len, size_t begin, size_t end,
                       const char *insert)
{
	size_t ins = strlen(insert), out_len = begin + ins + (len - end);
	char *out = malloc(out_len + 1);
	int rc;

	if (!out)
		return -ENOMEM;
	memcpy(out, text, begin);
	memcpy(out + begin, insert, ins);
	memcpy(out + begin + ins, text + end, len - end);
	rc = config_write(path, out, out_len);
	free(out);
	return rc;
}

int config_file_put(const char *path, const char *dir, const char *body)
{
	char msg[CONFIG_MESSAGE_MAX + CONTROL_PATH_MAX], *text = NULL, *section;
	size_t len = 0, begin, end;
	bool blank_before;
	int rc = file_read(path, &text, &len, msg, sizeof(msg));

	if (rc == -ENOENT) {
		text = strdup("# cachemax: the directories 'cachemax start --all' accelerates, one section each;\n"
		              "# the keys are the options of 'cachemax start' (see 'cachemax start --help').\n");
		if (!text)
			return -ENOMEM;
		len = strlen(text);
	} else if (rc < 0) {
		return rc;
	}
	if (!section_span(text, len, dir, &begin, &end))
		begin = end = len;
	blank_before = begin == len && len && !(len >= 2 && text[len - 1] == '\n' && text[len - 2] == '\n');
	if (asprintf(&section, "%s%s[%s]\n%s%s", begin == len && len && text[len - 1] != '\n' ? "\n" : "",
	             blank_before ? "\n" : "", dir, body, end < len ? "\n" : "") < 0) {
		free(text);
		return -ENOMEM;
	}
	rc = file_splice(path, text, len, begin, end, section);
	free(section);
	free(text);
	return rc;
}

int config_file_remove(const char *path, const char *dir)
{
	char msg[CONFIG_MESSAGE_MAX + CONTROL_PATH_MAX], *text = NULL;
	size_t len = 0, begin, end;
	int rc = file_read(path, &text, &len, msg, sizeof(msg));

	if (rc < 0)
		return rc;
	rc = section_span(text, len, dir, &begin, &end) ? file_splice(path, text, len, begin, end, "") : -ENOENT;
	free(text);
	return rc;
}
