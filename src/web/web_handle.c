/* web_handle: one HTTP request to one response, without I/O (contract in web.h). The routes
 * are one table; the token check comes before anything that touches a daemon; every string of
 * the request is bounded before it is used. */
#include "web/web.h"
#include "web/web_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/control_proto.h"
#include "control/control_socket.h"
#include "util/json.h"

#define TOKEN_COOKIE "cachemax_token"

#define TYPE_JSON "application/json"
#define TYPE_TEXT "text/plain; charset=utf-8"
#define TYPE_HTML "text/html; charset=utf-8"
#define TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

enum access {
	ACCESS_PUBLIC,        /* page files without data */
	ACCESS_LOOPBACK,      /* no token from loopback, the token from elsewhere (/metrics) */
	ACCESS_TOKEN,         /* the token from the query, a cookie or a header */
	ACCESS_TOKEN_HEADER,  /* the token from a header only (changes something) */
};

struct route {
	const char *path;
	const char *method;   /* GET routes answer HEAD too */
	enum access access;
	void (*handle)(const struct web_config *cfg, const char *query, struct web_response *out);
};

static void set_body(struct web_response *out, int status, const char *type, const char *text)
{
	out->status = status;
	out->content_type = type;
	out->body = strdup(text);
	out->length = out->body ? strlen(text) : 0;
}

static void set_static(struct web_response *out, const char *type, const char *text)
{
	set_body(out, 200, type, text);
}

static void handle_index(const struct web_config *cfg, const char *query, struct web_response *out)
{
	set_static(out, TYPE_HTML, web_page_index_html);
	out->no_store = true;
}

static void handle_app(const struct web_config *cfg, const char *query, struct web_response *out)
{
	set_static(out, "text/javascript; charset=utf-8", web_page_app_js);
}

static void handle_style(const struct web_config *cfg, const char *query, struct web_response *out)
{
	set_static(out, "text/css; charset=utf-8", web_page_style_css);
}

static void handle_chartjs(const struct web_config *cfg, const char *query, struct web_response *out)
{
	out->status = 200;
	out->content_type = "text/javascript; charset=utf-8";
	out->file = cfg->chartjs_path;
}

static void handle_metrics(const struct web_config *cfg, const char *query, struct web_response *out)
{
	char *text;
	size_t len;
	int rc = web_metrics_render(&cfg->source, &text, &len);
	if (rc < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot collect metrics: %s\n", strerror(-rc));
		set_body(out, 500, TYPE_TEXT, msg);
		return;
	}
	out->status = 200;
	out->content_type = TYPE_METRICS;
	out->body = text;
	out->length = len;
	out->no_store = true;
}

struct api_collect {
	const struct web_source *src;
	FILE *f;
	unsigned count;
	char *reply;
};

static void put_string_member(FILE *f, const char *key, const char *value)
{
	fprintf(f, ", \"%s\": ", key);
	json_write_string(f, value);
}

static int api_one(const struct web_dir *d, void *arg)
{
	struct api_collect *c = arg;
	const struct control_state *st = &d->state;
	FILE *f = c->f;
	int rc;

	fprintf(f, "%s{\"dir\": ", c->count++ ? ", " : "");
	json_write_string(f, st->dir);
	put_string_member(f, "cache", st->cache);
	put_string_member(f, "health", d->health ? d->health : "");
	put_string_member(f, "transport", st->transport);
	fprintf(f, ", \"passthrough\": %s, \"cache_on\": %s, \"bypass\": %s, \"cache_size\": %llu",
	        st->passthrough ? "true" : "false", st->cache_on ? "true" : "false",
	        st->bypass ? "true" : "false", (unsigned long long)st->cache_size);
	put_string_member(f, "passthrough_reason", st->passthrough ? "" : st->passthrough_why);
	put_string_member(f, "cache_reason", st->cache_on && !st->bypass ? "" : st->cache_why);
	fprintf(f, ", \"daemon_pid\": %d, \"restarts\": %u, \"stats\": ", (int)st->daemon_pid, st->restarts);
	rc = c->src->stats(c->src->arg, d, c->reply, CONTROL_REPLY_MAX);
	/* The daemon's reply goes in verbatim, so it must be one whole JSON object. */
	if (rc > 0 && c->reply[0] == '{' && web_json_valid(c->reply, c->reply + rc) &&
	    strncmp(c->reply, "{\"error\"", 8)) {
		fwrite(c->reply, 1, (size_t)rc, f);
		fputs(", \"stats_error\": \"\"}", f);
	} else {
		fputs("null", f);
		put_string_member(f, "stats_error", rc < 0 ? strerror(-rc) : "the daemon refused or sent no stats");
		fputs("}", f);
	}
	return 0;
}

static void handle_api_stats(const struct web_config *cfg, const char *query, struct web_response *out)
{
	struct api_collect c = { .src = &cfg->source };
	char why[512] = "", *buf = NULL;
	size_t size = 0;
	int rc;

	c.reply = malloc(CONTROL_REPLY_MAX);
	c.f = c.reply ? open_memstream(&buf, &size) : NULL;
	if (!c.f) {
		free(c.reply);
		set_body(out, 500, TYPE_JSON, "{\"error\": \"out of memory\"}");
		return;
	}
	fprintf(c.f, "{\"version\": 1, \"time\": %lld, \"directories\": [", (long long)time(NULL));
	rc = cfg->source.each_dir(cfg->source.arg, api_one, &c, why, sizeof(why));
	fprintf(c.f, "], \"error\": ");
	json_write_string(c.f, rc < 0 ? (why[0] ? why : strerror(-rc)) : "");
	fputs("}", c.f);
	free(c.reply);
	if (fclose(c.f) != 0 || !buf) {
		free(buf);
		set_body(out, 500, TYPE_JSON, "{\"error\": \"out of memory\"}");
		return;
	}
	out->status = rc < 0 ? 500 : 200;
	out->content_type = TYPE_JSON;
	out->body = buf;
	out->length = size;
	out->no_store = true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The first value of `key` in a query string (percent and '+' decoded) into buf. -ENOENT if
 * absent, -EINVAL for a bad escape or a NUL in it, -ENAMETOOLONG if it does not fit. */
static int query_get(const char *query, const char *key, char *buf, size_t size)
{
	size_t key_len = strlen(key);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t item_len = amp ? (size_t)(amp - p) : strlen(p);
		if (item_len > key_len && !strncmp(p, key, key_len) && p[key_len] == '=') {
			size_t n = 0;
			for (const char *v = p + key_len + 1; v < p + item_len; v++) {
				char c = *v;
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int hi, lo;
					if (p + item_len - v < 3 || (hi = hex_value(v[1])) < 0 ||
					    (lo = hex_value(v[2])) < 0)
						return -EINVAL;
					c = (char)(hi * 16 + lo);
					if (!c)
						return -EINVAL;
					v += 2;
				}
				if (n + 1 >= size)
					return -ENAMETOOLONG;
				buf[n++] = c;
			}
			buf[n] = '\0';
			return 0;
		}
		if (item_len == key_len && !strncmp(p, key, key_len)) {
			if (!size)
				return -ENAMETOOLONG;
			buf[0] = '\0';
			return 0;
		}
		p = amp ? amp + 1 : NULL;
	}
	return -ENOENT;
}

/* A path below an accelerated directory as the daemon's `evict REL` takes it. */
static bool rel_ok(const char *rel)
{
	const char *c;
	if (rel[0] == '/')
		return false;
	for (c = rel; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (c = rel; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/')
			c++;
	}
	return strlen(rel) < CONTROL_PROTO_ARG_MAX;
}

struct evict_find {
	const char *dir;
	struct web_dir found;
	bool ok;
};

static int evict_find_one(const struct web_dir *d, void *arg)
{
	struct evict_find *e = arg;
	if (strcmp(d->state.dir, e->dir))
		return 0;
	e->found = *d;
	e->ok = true;
	return 1;
}

static void handle_api_evict(const struct web_config *cfg, const char *query, struct web_response *out)
{
	char dir[CONTROL_PATH_MAX], rel[CONTROL_PROTO_ARG_MAX] = "", why[512] = "", *reply;
	struct evict_find e = { .dir = dir };
	int rc;

	if (query_get(query, "dir", dir, sizeof(dir)) < 0) {
		set_body(out, 400, TYPE_JSON, "{\"error\": \"evict takes ?dir=DIR[&path=REL]\"}");
		return;
	}
	rc = query_get(query, "path", rel, sizeof(rel));
	if ((rc < 0 && rc != -ENOENT) || (rc == 0 && rel[0] && !rel_ok(rel))) {
		set_body(out, 400, TYPE_JSON, "{\"error\": \"path must be relative to the directory, "
		         "without '.' or '..' components\"}");
		return;
	}
	rc = cfg->source.each_dir(cfg->source.arg, evict_find_one, &e, why, sizeof(why));
	if (rc < 0 || !e.ok) {
		set_body(out, rc < 0 ? 500 : 404, TYPE_JSON, rc < 0 ? "{\"error\": \"cannot list the accelerated "
		         "directories\"}" : "{\"error\": \"not an accelerated directory\"}");
		return;
	}
	reply = malloc(CONTROL_REPLY_MAX);
	if (!reply) {
		set_body(out, 500, TYPE_JSON, "{\"error\": \"out of memory\"}");
		return;
	}
	rc = cfg->source.evict(cfg->source.arg, &e.found, rel, reply, CONTROL_REPLY_MAX - 1);
	if (rc <= 0 || reply[0] != '{' || !web_json_valid(reply, reply + rc)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "{\"error\": \"cannot reach the daemon: %s\"}",
		         rc < 0 ? strerror(-rc) : "no reply");
		free(reply);
		set_body(out, 502, TYPE_JSON, msg);
		return;
	}
	reply[rc] = '\0';
	out->status = strncmp(reply, "{\"error\"", 8) ? 200 : 409;
	out->content_type = TYPE_JSON;
	out->body = reply;
	out->length = (size_t)rc;
	out->no_store = true;
}

static const struct route routes[] = {
	{ "/", "GET", ACCESS_TOKEN, handle_index },
	{ "/app.js", "GET", ACCESS_PUBLIC, handle_app },
	{ "/style.css", "GET", ACCESS_PUBLIC, handle_style },
	{ "/chart.js", "GET", ACCESS_PUBLIC, handle_chartjs },
	{ "/metrics", "GET", ACCESS_LOOPBACK, handle_metrics },
	{ "/api/stats", "GET", ACCESS_TOKEN, handle_api_stats },
	{ "/api/evict", "POST", ACCESS_TOKEN_HEADER, handle_api_evict },
};

bool web_token_equal(const char *token, const char *a, size_t a_len)
{
	size_t n = strlen(token);
	unsigned char diff = (unsigned char)(a_len != n);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(token[i] ^ (i < a_len ? a[i] : 0));
	return diff == 0 && n > 0;
}

/* The value of cookie `name` in a Cookie header: where it starts and its length. */
static const char *cookie_get(const char *cookie, const char *name, size_t *len)
{
	size_t name_len = strlen(name);
	const char *p = cookie;
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, name, name_len) && p[name_len] == '=') {
			p += name_len + 1;
			*len = strcspn(p, ";");
			return p;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

enum token_seen { TOKEN_NONE, TOKEN_WRONG, TOKEN_RIGHT };

/* A present but wrong token anywhere is wrong: no second guess from another place. */
static enum token_seen token_check(const char *token, const char *a, size_t len, enum token_seen seen)
{
	if (!a || seen == TOKEN_WRONG)
		return seen;
	return web_token_equal(token, a, len) ? TOKEN_RIGHT : TOKEN_WRONG;
}

static enum token_seen token_of(const struct web_config *cfg, const struct web_request *req,
                                const char *query, bool header_only, bool *from_query)
{
	enum token_seen seen = TOKEN_NONE;
	char value[WEB_TOKEN_LEN + 2];
	const char *c;
	size_t len;
	int rc;

	if (req->token_header)
		seen = token_check(cfg->token, req->token_header, strlen(req->token_header), seen);
	if (req->authorization && !strncmp(req->authorization, "Bearer ", 7))
		seen = token_check(cfg->token, req->authorization + 7, strlen(req->authorization + 7), seen);
	if (header_only)
		return seen;
	rc = query_get(query, "token", value, sizeof(value));
	if (rc != -ENOENT) {
		*from_query = true;
		seen = token_check(cfg->token, rc == 0 ? value : "", rc == 0 ? strlen(value) : 0, seen);
	}
	c = cookie_get(req->cookie, TOKEN_COOKIE, &len);
	if (c)
		seen = token_check(cfg->token, c, len, seen);
	return seen;
}

static bool header_too_long(const char *h)
{
	return h && strnlen(h, WEB_HEADER_VALUE_MAX + 1) > WEB_HEADER_VALUE_MAX;
}

void web_handle(const struct web_config *cfg, const struct web_request *req, struct web_response *out)
{
	char path[WEB_URI_MAX + 1];
	const struct route *route = NULL;
	const char *query;
	bool path_known = false, from_query = false, is_head;
	enum token_seen seen;
	size_t uri_len, path_len;

	memset(out, 0, sizeof(*out));
	if (!req->uri || !req->method) {
		set_body(out, 400, TYPE_TEXT, "bad request\n");
		return;
	}
	uri_len = strnlen(req->uri, WEB_URI_MAX + 1);
	if (uri_len > WEB_URI_MAX) {
		set_body(out, 414, TYPE_TEXT, "request URI too long\n");
		return;
	}
	if (header_too_long(req->cookie) || header_too_long(req->authorization) ||
	    header_too_long(req->token_header)) {
		set_body(out, 431, TYPE_TEXT, "request header too large\n");
		return;
	}
	if (req->uri[0] != '/') {
		set_body(out, 400, TYPE_TEXT, "bad request URI\n");
		return;
	}
	path_len = strcspn(req->uri, "?#");
	memcpy(path, req->uri, path_len);
	path[path_len] = '\0';
	query = req->uri[path_len] == '?' ? req->uri + path_len + 1 : "";
	is_head = !strcmp(req->method, "HEAD");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path))
			continue;
		path_known = true;
		if (!strcmp(routes[i].method, req->method) || (is_head && !strcmp(routes[i].method, "GET")))
			route = &routes[i];
		else
			out->allow = !strcmp(routes[i].method, "GET") ? "GET, HEAD" : routes[i].method;
	}
	if (!path_known) {
		set_body(out, 404, TYPE_TEXT, "not found\n");
		return;
	}
	if (!route) {
		const char *allow = out->allow;
		set_body(out, 405, TYPE_TEXT, "method not allowed\n");
		out->allow = allow;
		return;
	}
	if (route->access != ACCESS_PUBLIC && !(route->access == ACCESS_LOOPBACK && req->loopback)) {
		seen = token_of(cfg, req, query, route->access == ACCESS_TOKEN_HEADER, &from_query);
		if (seen == TOKEN_NONE) {
			set_body(out, 401, TYPE_TEXT, route->access == ACCESS_TOKEN_HEADER ?
			         "the token is needed in the X-CacheMax-Token header\n" :
			         "the token is needed: open the address `cachemax web` printed (…/?token=…)\n");
			return;
		}
		if (seen == TOKEN_WRONG) {
			set_body(out, 403, TYPE_TEXT, "wrong token: `cachemax web` makes a new one at every start\n");
			return;
		}
		/* The page keeps working after a reload without ?token= in the address. */
		out->set_cookie = from_query && route->handle == handle_index;
	}
	route->handle(cfg, query, out);
	if (out->status == 0)
		set_body(out, 500, TYPE_TEXT, "internal error\n");
}

void web_response_release(struct web_response *res)
{
	free(res->body);
	res->body = NULL;
	res->length = 0;
}
