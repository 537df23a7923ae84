/* control_socket: the daemon's unix socket and its client. Protocol (version 1): the client
 * connects, sends one request line ("stats", "ping"), and reads one JSON line back; then the
 * connection closes. One server thread answers connections one after another, so a handler
 * must be quick (it only formats a snapshot). Errors: 0 or -errno.
 */
#ifndef CACHEMAX_CONTROL_SOCKET_H
#define CACHEMAX_CONTROL_SOCKET_H

#include <stddef.h>

#define CONTROL_REPLY_MAX 65536

struct control_server;

/* Writes the reply (one JSON object, no newline) into reply; returns its length or -errno. */
typedef int (*control_handler_fn)(const char *request, char *reply, size_t size, void *arg);

int control_server_start(const char *path, control_handler_fn handler, void *arg,
                         struct control_server **out);
/* Stops the thread, closes and unlinks the socket. */
void control_server_stop(struct control_server *srv);

/* Send one request and read the reply line (without its newline) into reply. Gives up after
 * timeout_ms (-ETIMEDOUT): a hung daemon must not hang the CLI. */
int control_request(const char *path, const char *request, char *reply, size_t size,
                    int timeout_ms);

#endif
