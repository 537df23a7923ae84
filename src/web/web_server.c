/* web_server: `cachemax web` on libmicrohttpd (contract in web.h). One thread per connection
 * (at most WEB_CONNECTIONS_MAX): a request may wait on a slow daemon, and then it should not hold
 * up the others. The real web_source reads the state records and asks each daemon over its
 * control socket, with the same trust checks as the CLI. The main thread only waits for
 * SIGINT/SIGTERM, which every thread blocks. */
#include "web/web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/control_socket.h"
#include "control/control_trust.h"

#define WEB_CONNECTIONS_MAX 64
#define WEB_CONNECTION_TIMEOUT_S 30
#define WEB_CONNECTION_MEMORY 65536   /* MHD's buffer for a request's headers: larger ones get 431 */
#define WEB_TOKEN_FILE_MODE 0600

/* ---- the source: state records and control sockets ---- */

struct each_ctx {
	int (*fn)(const struct web_dir *d, void *fn_arg);
	void *fn_arg;
};

static int each_one(const struct control_state *st, void *arg)
{
	struct each_ctx *e = arg;
	struct web_dir d = { .state = *st, .health = control_state_health(st) };
	return e->fn(&d, e->fn_arg);
}

static int source_each_dir(void *arg, int (*fn)(const struct web_dir *d, void *fn_arg), void *fn_arg,
                           char *why, size_t why_size)
{
	struct each_ctx e = { fn, fn_arg };
	int rc = control_run_dir_check(why, why_size);
	if (rc < 0)
		return rc;
	rc = control_state_each(each_one, &e);
	return rc < 0 && rc != -ENOENT ? rc : 0;
}

static int source_stats(void *arg, const struct web_dir *d, char *reply, size_t size)
{
	int rc;
	if (!d->state.socket[0] || !control_pid_alive(d->state.daemon_pid))
		return -ENOTCONN;
	rc = control_request(d->state.socket, "stats", reply, size, WEB_STATS_TIMEOUT_MS);
	return rc < 0 ? rc : (int)strnlen(reply, size);
}

static int source_evict(void *arg, const struct web_dir *d, const char *rel, char *reply, size_t size)
{
	char request[CONTROL_PATH_MAX + 8];
	int rc;
	if (!d->state.socket[0])
		return -ENOTCONN;
	snprintf(request, sizeof(request), *rel ? "evict %s" : "evict", rel);
	rc = control_request(d->state.socket, request, reply, size, WEB_STATS_TIMEOUT_MS);
	return rc < 0 ? rc : (int)strnlen(reply, size);
}

/* ---- libmicrohttpd glue ---- */

/* MHD hands the access handler the path without the query; the URI log callback sees the URI
 * as sent, which web_handle() parses itself (one parser, the fuzzed one). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	return strdup(uri ? uri : "");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	free(*req_cls);
	*req_cls = NULL;
}

static bool peer_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static struct MHD_Response *file_response(const char *path)
{
	struct stat st;
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	return MHD_create_response_from_fd64((uint64_t)st.st_size, fd);  /* MHD closes fd */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	const struct web_config *cfg = cls;
	struct web_request req = {
		.method = method,
		.uri = *req_cls ? *req_cls : url,
		.cookie = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE),
		.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		.token_header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CacheMax-Token"),
		.loopback = peer_loopback(conn),
	};
	struct web_response res;
	struct MHD_Response *r = NULL;
	enum MHD_Result ret;
	char cookie[WEB_TOKEN_LEN + 96];

	/* Every route answers before any body is read: no route takes one, and MHD discards it. */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	web_handle(cfg, &req, &res);
	if (res.file) {
		r = file_response(res.file);
		if (!r) {
			web_response_release(&res);
			res.status = 404;
			res.content_type = "text/plain; charset=utf-8";
			res.body = strdup("not installed here (Debian package libjs-chart.js)\n");
			res.length = res.body ? strlen(res.body) : 0;
		}
	}
	if (!r) {
		r = MHD_create_response_from_buffer(res.length, res.body ? res.body : (void *)"",
		                                    res.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (r)
			res.body = NULL;   /* MHD frees it */
	}
	web_response_release(&res);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res.content_type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
	if (res.no_store)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (res.allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res.allow);
	if (res.status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"cachemax\"");
	if (res.set_cookie) {
		snprintf(cookie, sizeof(cookie), "cachemax_token=%s; Path=/; HttpOnly; SameSite=Strict", cfg->token);
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	}
	ret = MHD_queue_response(conn, (unsigned)res.status, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- start and stop ---- */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(listen, ':');
	size_t host_len = colon ? (size_t)(colon - listen) : 0;
	char *end;
	long port;

	if (!colon || host_len == 0 || host_len >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, listen, host_len);
	host[host_len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[host_len - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[host_len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
	}
	return 0;
}

static int token_make(char token[WEB_TOKEN_LEN + 1])
{
	unsigned char raw[WEB_TOKEN_BYTES];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* RUN_DIR/web-PORT.token, root's and 0600, replaced atomically (a server that was killed may
 * have left one). */
static int token_file_write(const char *path, const char *token)
{
	char tmp[CONTROL_PATH_MAX + 16], line[WEB_TOKEN_LEN + 2];
	int fd, rc = 0;
	size_t n = (size_t)snprintf(line, sizeof(line), "%s\n", token);

	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, WEB_TOKEN_FILE_MODE);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, WEB_TOKEN_FILE_MODE) < 0 || write(fd, line, n) != (ssize_t)n)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int web_server_run(const char *listen, const char *chartjs_path)
{
	static struct web_config cfg;   /* read by the connection threads until MHD_stop_daemon */
	struct sockaddr_storage ss;
	socklen_t ss_len;
	char why[CONTROL_WHY_MAX], token_path[CONTROL_PATH_MAX], host[INET6_ADDRSTRLEN];
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	sigset_t stop, old;
	unsigned port;
	int rc, sig;

	if (parse_listen(listen, &ss, &ss_len) < 0) {
		fprintf(stderr, "cachemax: --listen takes ADDR:PORT or [V6ADDR]:PORT, not '%s'\n", listen);
		return -EINVAL;
	}
	rc = control_run_dir_prepare(why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "cachemax: %s\n", why);
		return rc;
	}
	rc = token_make(cfg.token);
	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot make a token: %s\n", strerror(-rc));
		return rc;
	}
	cfg.chartjs_path = chartjs_path;
	cfg.source = (struct web_source){ source_each_dir, source_stats, source_evict, NULL };

	/* Blocked in every thread MHD starts, so that only sigwait() below sees them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	                     0, NULL, NULL, on_request, &cfg,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEB_CONNECTIONS_MAX,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_CONNECTION_TIMEOUT_S,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_CONNECTION_MEMORY,
	                     MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                     MHD_OPTION_END);
	if (!d) {
		rc = errno ? -errno : -EADDRINUSE;
		fprintf(stderr, "cachemax: cannot listen on %s: %s\n", listen, strerror(-rc));
		goto unblock;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : 0;
	snprintf(token_path, sizeof(token_path), "%s/web-%u.token", control_run_dir(), port);
	rc = token_file_write(token_path, cfg.token);
	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot write '%s': %s\n", token_path, strerror(-rc));
		goto stop;
	}
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	printf(ss.ss_family == AF_INET6 ? "dashboard: http://[%s]:%u/?token=%s\n" :
	       "dashboard: http://%s:%u/?token=%s\n", host, port, cfg.token);
	printf(ss.ss_family == AF_INET6 ? "metrics:   http://[%s]:%u/metrics\n" :
	       "metrics:   http://%s:%u/metrics\n", host, port);
	printf("token:     %s (root only; a new one at every start)\n", token_path);
	if (access(chartjs_path, R_OK) < 0)
		printf("charts:    %s is missing (Debian package libjs-chart.js): the page shows numbers only\n",
		       chartjs_path);
	fflush(stdout);
	do
		rc = sigwait(&stop, &sig);
	while (rc == EINTR);
	rc = 0;
	unlink(token_path);
stop:
	MHD_stop_daemon(d);
unblock:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
