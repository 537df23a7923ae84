/* web: `cachemax web`, the host-level HTTP server for every accelerated directory: Prometheus
 * `/metrics`, the dashboard (`/`, `/app.js`, `/style.css`, `/chart.js`) and its JSON API
 * (`/api/stats`, `POST /api/evict`). docs/WEB.md has the routes, the metric names and the rules.
 *
 * Two halves:
 *   - web_handle(): one request (method, raw URI with its query, the few headers that matter,
 *     whether the peer is on loopback) in, one response out. It does no I/O of its own: what it
 *     needs of the daemons goes through a `struct web_source` (the real one asks each daemon over
 *     its control socket; tests/fuzz/fuzz_web.c passes a fake). So every request the network can
 *     send is fuzzed without a socket.
 *   - web_server_run(): libmicrohttpd, the token file, signals (web_server.c).
 * Who may ask: /metrics answers loopback peers without the token, others only with it; every
 * other route except the static page files needs the token (401 without one, 403 with a wrong
 * one); POST /api/evict takes it only from a header (a cross-site form cannot set one).
 * Errors: 0 or -errno. Threads: web_handle() is reentrant; the source must be too.
 */
#ifndef CACHEMAX_WEB_H
#define CACHEMAX_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/control.h"

#define WEB_LISTEN_DEFAULT "127.0.0.1:9477"
#define WEB_TOKEN_BYTES 16                    /* random bytes; the token is their hex */
#define WEB_TOKEN_LEN (2 * WEB_TOKEN_BYTES)
#define WEB_URI_MAX 4096                      /* longer request URIs get 414 */
#define WEB_HEADER_VALUE_MAX 4096             /* longer Cookie/Authorization/token headers: 431 */
#define WEB_CHARTJS_DEFAULT "/usr/share/javascript/chart.js/chart.min.js"  /* libjs-chart.js */
#define WEB_STATS_TIMEOUT_MS 1500             /* a hung daemon must not hang a page */

/* One accelerated directory as the source describes it. */
struct web_dir {
	struct control_state state;   /* its state record */
	const char *health;           /* "ok", or what is wrong (as `cachemax status` says) */
};

/* What web_handle() may ask of the daemons. Each call is independent and may block up to
 * WEB_STATS_TIMEOUT_MS per daemon. */
struct web_source {
	/* Calls fn for each accelerated directory (stops when fn returns non-zero). 0 or -errno
	 * (with `why` filled: e.g. the run directory is not trusted). */
	int (*each_dir)(void *arg, int (*fn)(const struct web_dir *d, void *fn_arg), void *fn_arg,
	                char *why, size_t why_size);
	/* The daemon's `stats` reply (one JSON object, docs/STATS.md) into reply; its length or
	 * -errno. */
	int (*stats)(void *arg, const struct web_dir *d, char *reply, size_t size);
	/* Sends `evict` or `evict REL` (REL already checked by web_handle: relative, no "." or ".."
	 * component, no control characters); the daemon's reply into reply; its length or -errno. */
	int (*evict)(void *arg, const struct web_dir *d, const char *rel, char *reply, size_t size);
	void *arg;
};

struct web_request {
	const char *method;           /* "GET", "HEAD", "POST", ... */
	const char *uri;              /* as sent: path, then optionally "?" and the query */
	const char *cookie;           /* the Cookie header, or NULL */
	const char *authorization;    /* the Authorization header ("Bearer TOKEN"), or NULL */
	const char *token_header;     /* the X-CacheMax-Token header, or NULL */
	bool loopback;                /* the peer's address is 127.0.0.0/8 or ::1 */
};

struct web_config {
	char token[WEB_TOKEN_LEN + 1];
	const char *chartjs_path;     /* the Chart.js file served as /chart.js */
	struct web_source source;
};

struct web_response {
	int status;                   /* HTTP status */
	const char *content_type;     /* static string */
	char *body;                   /* malloc'd (free with web_response_release), or NULL */
	size_t length;
	const char *file;             /* or: serve this file (status 200 if it opens, else 404) */
	const char *allow;            /* for 405: the Allow header */
	bool set_cookie;              /* set the token cookie (the page was opened with ?token=) */
	bool no_store;                /* Cache-Control: no-store (anything with live numbers) */
};

/* Answer one request. Always fills `out` (a failure to build a body becomes a 500 with an
 * empty body); never reads past a NUL of the request's strings. */
void web_handle(const struct web_config *cfg, const struct web_request *req,
                struct web_response *out);
void web_response_release(struct web_response *res);

/* The Prometheus text exposition (version 0.0.4) of every directory the source lists, into a
 * malloc'd *out (length *len). 0 or -errno (-ENOMEM). Pure over the source. */
int web_metrics_render(const struct web_source *src, char **out, size_t *len);

/* Whether `a` equals the token, in time that does not depend on where they differ. */
bool web_token_equal(const char *token, const char *a, size_t a_len);

/* The embedded page files (web_page.S): NUL-terminated. */
extern const char web_page_index_html[];
extern const char web_page_app_js[];
extern const char web_page_style_css[];

/* `cachemax web`: listen on `listen` (ADDR:PORT, [V6ADDR]:PORT; port 0 picks a free one), print
 * "dashboard: http://ADDR:PORT/?token=TOKEN" as the first line of stdout, keep the token in
 * RUN_DIR/web-PORT.token (root, 0600) and serve until SIGINT or SIGTERM. Root only. 0 or -errno
 * (with a message on stderr). */
int web_server_run(const char *listen, const char *chartjs_path);

#endif
