/* control_socket: a small unix-socket server thread and its client (see control_socket.h). */
#include "control/control_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "util/log.h"

#define SERVER_IO_TIMEOUT_MS 1000
/* For tests: a slow request's thread waits this long after its reply is written, before it
 * ends, as if preempted there; a client must still never be answered "busy" (t-control-slow). */
#define SLOW_LINGER_ENV "CACHEMAX_CONTROL_LINGER_MS"

struct control_server {
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	struct control_target *target;
	bool read_for_all;               /* public verbs answered to any local user */
	struct control_proto_request request;  /* used by the server thread only */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char reply[CONTROL_REPLY_MAX + 1];  /* used by the server thread only */
	pthread_mutex_t slow_lock;       /* protects slow_working and slow_threads */
	pthread_cond_t slow_done;        /* signalled when slow_threads drops */
	/* Two counts, because a slow request's thread outlives its work. The limit is on the
	 * work (handlers running, at most CONTROL_SLOW_MAX), counted done before the reply is
	 * written, so that a client holding its answer always finds the slot free again (given
	 * back after the reply, a thread not yet scheduled again kept it: the client's next
	 * request was "busy"). Threads past their work only write a reply line (at most
	 * SERVER_IO_TIMEOUT_MS) and end; stop waits for them, as they use the server until then. */
	unsigned slow_working;
	unsigned slow_threads;
	unsigned slow_linger_ms;         /* SLOW_LINGER_ENV; 0 outside tests */
};

/* A slow request, answered on its own thread (it owns fd and itself). */
struct slow_request {
	struct control_server *srv;
	const struct control_verb *verb;
	int fd;
	char arg[CONTROL_PROTO_ARG_MAX];
	char reply[CONTROL_REPLY_MAX + 1];
};

static int address_of(const char *path, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	strcpy(addr->sun_path, path);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to become ready for `events` before the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - now_ms();
		int rc;
		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* Who may ask what: root anything; other users only public verbs, and only when the daemon
 * was started to allow it (the socket is then mode 0666). Anything else a non-root peer sends,
 * malformed or unknown included, is answered "permission denied" and nothing more. */
static bool peer_allowed(const struct control_server *srv, int fd, const struct control_verb *verb)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	if (cred.uid == 0)
		return true;
	return verb && srv->read_for_all && verb->access == CONTROL_ACCESS_PUBLIC;
}

/* Send the reply (len bytes, room for a newline after them) before the deadline. */
static void reply_send(int fd, char *reply, int len, int64_t deadline)
{
	if (len < 0)
		len = snprintf(reply, CONTROL_REPLY_MAX, "{\"error\": \"%s\"}", strerror(-len));
	reply[len++] = '\n';
	for (size_t off = 0; off < (size_t)len;) {
		ssize_t n;
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			return;
		n = send(fd, reply + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void *slow_main(void *arg)
{
	struct slow_request *q = arg;
	struct control_server *srv = q->srv;
	int len = q->verb->handler(srv->target, q->arg, q->reply, CONTROL_REPLY_MAX);

	pthread_mutex_lock(&srv->slow_lock);
	srv->slow_working--;        /* before the reply: see struct control_server */
	pthread_mutex_unlock(&srv->slow_lock);
	reply_send(q->fd, q->reply, len, now_ms() + SERVER_IO_TIMEOUT_MS);
	close(q->fd);
	free(q);
	if (srv->slow_linger_ms) {
		struct timespec linger = { srv->slow_linger_ms / 1000, srv->slow_linger_ms % 1000 * 1000000L };
		nanosleep(&linger, NULL);
	}
	pthread_mutex_lock(&srv->slow_lock);
	srv->slow_threads--;
	pthread_cond_broadcast(&srv->slow_done);
	pthread_mutex_unlock(&srv->slow_lock);
	return NULL;
}

/* Hand a slow request to a thread of its own: true if it took fd. */
static bool slow_start(struct control_server *srv, int fd, const struct control_verb *verb)
{
	struct slow_request *q;
	pthread_attr_t attr;
	pthread_t thread;
	bool started = false;

	pthread_mutex_lock(&srv->slow_lock);
	if (srv->slow_working >= CONTROL_SLOW_MAX) {
		pthread_mutex_unlock(&srv->slow_lock);
		return false;
	}
	srv->slow_working++;
	srv->slow_threads++;
	pthread_mutex_unlock(&srv->slow_lock);
	q = malloc(sizeof(*q));
	if (q) {
		q->srv = srv;
		q->verb = verb;
		q->fd = fd;
		snprintf(q->arg, sizeof(q->arg), "%s", srv->request.arg);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&thread, &attr, slow_main, q) == 0;
		pthread_attr_destroy(&attr);
		if (!started)
			free(q);
	}
	if (!started) {
		pthread_mutex_lock(&srv->slow_lock);
		srv->slow_working--;
		srv->slow_threads--;
		pthread_mutex_unlock(&srv->slow_lock);
	}
	return started;
}

/* Answer one connection; true if a slow request's thread took fd (it closes it). */
static bool serve_one(struct control_server *srv, int fd)
{
	char req[CONTROL_PROTO_LINE_MAX];
	const struct control_verb *verb = NULL;
	const char *refused = NULL;
	size_t used = 0;
	int64_t deadline = now_ms() + SERVER_IO_TIMEOUT_MS;
	int len, rc = -EAGAIN;

	while (rc == -EAGAIN) {
		ssize_t n;
		if (wait_fd(fd, POLLIN, deadline) < 0)
			return false;
		n = read(fd, req + used, sizeof(req) - used);
		if (n <= 0)
			return false;
		used += (size_t)n;
		rc = control_proto_parse(req, used, &srv->request);
	}
	if (rc > 0) {
		verb = control_verb_find(srv->request.verb);
		if (!verb)
			rc = -ENOSYS;
		else if ((srv->request.has_arg && verb->arg == CONTROL_ARG_NONE) ||
		         (!srv->request.has_arg && verb->arg == CONTROL_ARG_REQUIRED))
			rc = -EINVAL;
	}
	if (!peer_allowed(srv, fd, rc > 0 ? verb : NULL))
		refused = rc > 0 && srv->read_for_all ? "only root may change anything" :
		          "this daemon answers root only";
	if (refused)
		len = snprintf(srv->reply, CONTROL_REPLY_MAX, "{\"error\": \"permission denied: %s\"}", refused);
	else if (rc < 0)
		len = snprintf(srv->reply, CONTROL_REPLY_MAX, "{\"error\": \"%s\"}",
		               rc == -ENOSYS ? "unknown request" : rc == -EMSGSIZE ? "request too long" :
		               "malformed argument");
	else if (verb->slow && slow_start(srv, fd, verb))
		return true;
	else if (verb->slow)
		len = snprintf(srv->reply, CONTROL_REPLY_MAX, "{\"error\": \"busy: %d '%s' requests are "
		               "being answered; try again\"}", CONTROL_SLOW_MAX, verb->name);
	else
		len = verb->handler(srv->target, srv->request.arg, srv->reply, CONTROL_REPLY_MAX);
	reply_send(fd, srv->reply, len, deadline);
	return false;
}

static void *server_main(void *arg)
{
	struct control_server *srv = arg;
	for (;;) {
		struct pollfd p[2] = { { srv->listen_fd, POLLIN, 0 }, { srv->stop_pipe[0], POLLIN, 0 } };
		int fd;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("control socket poll failed: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		if (!serve_one(srv, fd))
			close(fd);
	}
	return NULL;
}

int control_server_start(const char *path, bool read_for_all, struct control_target *target,
                         struct control_server **out)
{
	struct control_server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_un addr;
	const char *linger;
	int rc;

	if (!srv)
		return -ENOMEM;
	srv->target = target;
	pthread_mutex_init(&srv->slow_lock, NULL);
	pthread_cond_init(&srv->slow_done, NULL);
	srv->read_for_all = read_for_all;
	if ((linger = getenv(SLOW_LINGER_ENV))) {   /* at most 10 s: a stop waits for it */
		unsigned long ms = strtoul(linger, NULL, 10);
		srv->slow_linger_ms = ms > 10000 ? 10000 : (unsigned)ms;
	}
	srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
	rc = address_of(path, &addr);
	if (rc < 0)
		goto err_free;
	strcpy(srv->path, path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	unlink(path);  /* a socket left by a killed daemon */
	/* bind creates the socket with the umask's mode; the daemon's 022 leaves others without
	 * the write permission connect needs, until chmod sets the mode we mean. */
	if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, read_for_all ? CONTROL_SOCKET_MODE_ALL : CONTROL_SOCKET_MODE) < 0 ||
	    listen(srv->listen_fd, 16) < 0 || pipe2(srv->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto err_close;
	}
	rc = -pthread_create(&srv->thread, NULL, server_main, srv);
	if (rc < 0)
		goto err_close;
	*out = srv;
	return 0;

err_close:
	close(srv->listen_fd);
	if (srv->stop_pipe[0] >= 0) {
		close(srv->stop_pipe[0]);
		close(srv->stop_pipe[1]);
	}
	unlink(path);
err_free:
	free(srv);
	return rc;
}

void control_server_stop(struct control_server *srv)
{
	if (!srv)
		return;
	if (write(srv->stop_pipe[1], "x", 1) != 1)
		log_warn("cannot wake the control socket thread: %s", strerror(errno));
	pthread_join(srv->thread, NULL);
	pthread_mutex_lock(&srv->slow_lock);
	while (srv->slow_threads)
		pthread_cond_wait(&srv->slow_done, &srv->slow_lock);
	pthread_mutex_unlock(&srv->slow_lock);
	close(srv->listen_fd);
	close(srv->stop_pipe[0]);
	close(srv->stop_pipe[1]);
	unlink(srv->path);
	free(srv);
}

int control_request(const char *path, const char *request, char *reply, size_t size,
                    int timeout_ms)
{
	struct sockaddr_un addr;
	int64_t deadline = now_ms() + timeout_ms;
	size_t used = 0, len = strlen(request);
	int fd, rc;

	if (!size)
		return -EINVAL;
	rc = address_of(path, &addr);
	if (rc < 0)
		return rc;
	rc = control_socket_check(path);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		goto out;
	}
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n;
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			goto out;
		n = read(fd, reply + used, size - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		if (memchr(reply, '\n', used) || used == size - 1)
			break;
	}
	reply[used] = '\0';
	if (!memchr(reply, '\n', used)) {
		rc = used == size - 1 ? -ENOSPC : -EPROTO;
		goto out;
	}
	reply[strcspn(reply, "\n")] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

int control_socket_check(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != 0)
		return -EPERM;
	return 0;
}
