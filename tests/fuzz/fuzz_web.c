/* libFuzzer target: what the network sends `cachemax web` (web_handle, src/web/web.h), and what
 * the daemons send back (their stats JSON, read by web_json and web_metrics).
 * Input: byte 0 holds flags (bit 0: the peer is on loopback; bits 1-2: the method GET, HEAD,
 * POST or "PUT"; bit 3: the daemons answer with the rest of the input instead of a fixed
 * snapshot); the rest is split at newlines into the URI, the Cookie, Authorization and
 * X-CacheMax-Token headers (an empty field is an absent header) and the daemons' stats reply.
 * Contract checked (abort on violation): a known status and a content type; no 200 for a route
 * that needs the token unless the token was sent; evict only with the token in a header and a
 * relative path without "." or ".."; /api/stats is one valid JSON value; every line of /metrics
 * is a HELP, TYPE or sample line with escaped labels.
 * Run: make fuzz (bounded), or docs/FUZZING.md for long runs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_proto.h"
#include "web/web.h"
#include "web/web_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

#define TOKEN "0123456789abcdef0123456789abcdef"

static const char snapshot[] =
	"{\"pid\": 1, \"uptime_seconds\": 5, \"transport\": \"dev_fuse\", \"passthrough\": true, "
	"\"cache_bytes\": 4096, \"cache_size\": 1048576, \"bypass\": false, "
	"\"stats\": {\"version\": 2, \"counters\": {\"read_ops_cache\": 18446744073709551615, "
	"\"read_ops_origin\": 1, \"read_bytes_cache\": 4096, \"read_bytes_origin\": 0, \"evictions\": 2}, "
	"\"hit_ratio_ops\": 0.5, \"hit_ratio_bytes\": 1, \"latency_us\": {\"read_cache\": {\"count\": 3, "
	"\"mean\": 1.5, \"p50\": 1.2, \"p99\": 9.9}, \"read_origin\": {\"count\": 0, \"mean\": null, "
	"\"p50\": null, \"p99\": null}}}, \"windows\": {}, \"files\": [{\"path\": \"a\\\"b\"}]}";

struct fake {
	const char *reply;      /* what the daemons answer */
	size_t reply_len;
	bool evicted;
	char rel[CONTROL_PROTO_ARG_MAX];
};

static int fake_each_dir(void *arg, int (*fn)(const struct web_dir *d, void *fn_arg), void *fn_arg,
                         char *why, size_t why_size)
{
	static struct web_dir dirs[2];
	if (!dirs[0].state.dir[0]) {
		strcpy(dirs[0].state.dir, "/srv/data");
		strcpy(dirs[0].state.cache, "/fast/cache");
		strcpy(dirs[0].state.transport, "dev_fuse");
		dirs[0].health = "ok";
		strcpy(dirs[1].state.dir, "/srv/\"odd\"\\dir\nname");
		strcpy(dirs[1].state.transport, "io_uring");
		dirs[1].health = "degraded: cache bypassed";
	}
	for (size_t i = 0; i < 2; i++)
		if (fn(&dirs[i], fn_arg))
			break;
	return 0;
}

static int fake_stats(void *arg, const struct web_dir *d, char *reply, size_t size)
{
	const struct fake *f = arg;
	size_t n = f->reply_len < size - 1 ? f->reply_len : size - 1;
	memcpy(reply, f->reply, n);
	reply[n] = '\0';
	return (int)n;
}

static int fake_evict(void *arg, const struct web_dir *d, const char *rel, char *reply, size_t size)
{
	struct fake *f = arg;
	f->evicted = true;
	CHECK(strlen(rel) < sizeof(f->rel));
	strcpy(f->rel, rel);
	strcpy(reply, "{\"evicted\": 1}");
	return (int)strlen(reply);
}

static bool rel_allowed(const char *rel)
{
	size_t n = strlen(rel);
	if (rel[0] == '/')
		return false;
	for (const char *c = rel; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	if (!strcmp(rel, ".") || !strcmp(rel, "..") || !strncmp(rel, "./", 2) || !strncmp(rel, "../", 3) ||
	    strstr(rel, "/./") || strstr(rel, "/../") || strstr(rel, "//"))
		return false;
	/* A trailing "/" is an empty last component, which the daemon's parser accepts too. */
	return !(n >= 2 && !strcmp(rel + n - 2, "/.")) && !(n >= 3 && !strcmp(rel + n - 3, "/.."));
}

/* One exposition line: "# HELP name text", "# TYPE name type" or name{labels} value. */
static void check_metrics_line(const char *l, size_t len)
{
	const char *p = l, *end = l + len;
	if (len >= 7 && (!memcmp(l, "# HELP ", 7) || !memcmp(l, "# TYPE ", 7)))
		return;
	CHECK(len > 9 && !memcmp(p, "cachemax_", 9));
	while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
		p++;
	CHECK(p < end && *p == '{');
	for (p++;;) {
		while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_'))
			p++;
		CHECK(p + 1 < end && p[0] == '=' && p[1] == '"');
		for (p += 2; p < end && *p != '"'; p++)
			if (*p == '\\') {
				CHECK(p + 1 < end && (p[1] == '\\' || p[1] == '"' || p[1] == 'n'));
				p++;
			}
		CHECK(p < end);
		p++;
		CHECK(p < end);
		if (*p == '}')
			break;
		CHECK(*p == ',');
		p++;
	}
	CHECK(p + 2 <= end && p[1] == ' ');
	p += 2;
	if (!(end - p == 3 && !memcmp(p, "NaN", 3))) {
		struct web_json v = { p, end };
		double d;
		CHECK(web_json_number(&v, &d) == 0 && web_json_skip(p, end) == end);
	}
}

static void check_metrics(const struct web_response *r)
{
	const char *p = r->body, *end = r->body + r->length;
	CHECK(r->length && end[-1] == '\n');
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl);
		check_metrics_line(p, (size_t)(nl - p));
		p = nl + 1;
	}
}

/* The next field (up to a newline) as a fresh allocation of exactly its size: ASan sees any
 * read past it. NULL for an empty field (an absent header). */
static char *field(const uint8_t **p, const uint8_t *end, bool keep_empty)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s;
	if (!n && !keep_empty) {
		*p += nl ? 1 : 0;
		return NULL;
	}
	s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl ? 1 : 0);
	return s;
}

static bool sent_token(const char *s)
{
	return s && strstr(s, TOKEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT" };
	const uint8_t *p = data + 1, *end = data + size;
	struct fake fake = { .reply = snapshot, .reply_len = sizeof(snapshot) - 1 };
	struct web_config cfg = { .token = TOKEN, .chartjs_path = "/nonexistent/chart.js",
	                          .source = { fake_each_dir, fake_stats, fake_evict, &fake } };
	struct web_request req = { 0 };
	struct web_response res;
	char *uri, *cookie, *auth, *header, *reply = NULL;
	bool token_anywhere, token_in_header;
	size_t path_len;

	if (size == 0)
		return 0;
	req.loopback = data[0] & 1;
	req.method = methods[(data[0] >> 1) & 3];
	uri = field(&p, end, true);
	cookie = field(&p, end, false);
	auth = field(&p, end, false);
	header = field(&p, end, false);
	if (data[0] & 8) {
		reply = malloc(end > p ? (size_t)(end - p) : 1);
		if (!reply)
			abort();
		memcpy(reply, p, (size_t)(end - p));
		fake.reply = reply;
		fake.reply_len = (size_t)(end - p);
	}
	req.uri = uri;
	req.cookie = cookie;
	req.authorization = auth;
	req.token_header = header;

	web_handle(&cfg, &req, &res);

	CHECK(res.content_type || res.file);
	CHECK(res.status == 200 || res.status == 400 || res.status == 401 || res.status == 403 ||
	      res.status == 404 || res.status == 405 || res.status == 409 || res.status == 414 ||
	      res.status == 431 || res.status == 500 || res.status == 502);
	CHECK(!res.length || res.body);
	CHECK(res.status != 405 || res.allow);
	token_in_header = sent_token(auth) || sent_token(header);
	token_anywhere = token_in_header || sent_token(uri) || sent_token(cookie);
	path_len = strcspn(uri, "?#");
	if (res.status == 200 && (!strncmp(uri, "/api/", 5) || path_len == 1))
		CHECK(token_anywhere);
	if (res.status == 200 && path_len == 8 && !strncmp(uri, "/metrics", 8) && !req.loopback)
		CHECK(token_anywhere);
	if (fake.evicted) {
		CHECK(token_in_header && !strcmp(req.method, "POST"));
		CHECK(!fake.rel[0] || rel_allowed(fake.rel));
	}
	if (res.status == 200 && res.content_type && !strncmp(res.content_type, "text/plain; version=0.0.4", 25))
		check_metrics(&res);
	if (res.status == 200 && res.content_type && !strcmp(res.content_type, "application/json"))
		CHECK(web_json_valid(res.body, res.body + res.length));

	web_response_release(&res);
	free(uri);
	free(cookie);
	free(auth);
	free(header);
	free(reply);
	return 0;
}
