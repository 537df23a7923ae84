/* control_socket: the daemon's unix socket and its client. The client connects, sends one
 * request line (control_proto.h), and reads one JSON line back; then the connection closes.
 * One server thread answers connections one after another, so a handler must be quick; a verb
 * marked slow in the table (control_verbs.h) is answered on a thread of its own (at most
 * CONTROL_SLOW_MAX handlers at once; more are refused "busy"). A slow request's slot is free
 * again before its reply is written, so a client that sends its requests one after another
 * (`cachemax verify DIR` is one request per file) is never refused "busy": only requests
 * from several clients at once can be. The server answers a malformed or
 * unknown request, a missing or unexpected argument, and a verb the peer (SO_PEERCRED) may
 * not use, itself: a handler sees only requests it may answer. Errors: 0 or -errno.
 */
#ifndef CACHEMAX_CONTROL_SOCKET_H
#define CACHEMAX_CONTROL_SOCKET_H

#include <stdbool.h>
#include <stddef.h>

#include "control/control_proto.h"
#include "control/control_verbs.h"

#define CONTROL_REPLY_MAX 65536
#define CONTROL_SOCKET_MODE 0600       /* root only */
#define CONTROL_SOCKET_MODE_ALL 0666   /* public verbs for every local user (--public-stats) */
#define CONTROL_SLOW_MAX 2             /* slow handlers running at once */

struct control_server;

/* read_for_all: socket mode CONTROL_SOCKET_MODE_ALL and public verbs answered to any user;
 * otherwise mode CONTROL_SOCKET_MODE. Root verbs are root's either way. The handlers act on
 * target, which must outlive the server. */
int control_server_start(const char *path, bool read_for_all, struct control_target *target,
                         struct control_server **out);
/* Stops the thread (after the slow requests' threads, their replies written), closes and
 * unlinks the socket. */
void control_server_stop(struct control_server *srv);

/* Send one request and read the reply line (without its newline) into reply. Gives up after
 * timeout_ms (-ETIMEDOUT): a hung daemon must not hang the CLI. -EPERM (nothing sent) when the
 * path is not a socket owned by root (control_socket_check). */
int control_request(const char *path, const char *request, char *reply, size_t size,
                    int timeout_ms);

/* 0 if `path` is a socket owned by root, -EPERM if it is something else or someone else's
 * (only root's daemon may answer the CLI), -errno if it cannot be examined. */
int control_socket_check(const char *path);

#endif
