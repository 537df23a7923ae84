/* log: one-line diagnostics to stderr (the daemon's stderr is its log file, or the journal
 * when systemd runs it). Messages are lower case, say what failed first and quote the
 * subject (git's convention). A log file is rotated by size: past LOG_ROTATE_BYTES it becomes
 * FILE.1 (FILE.1 becomes FILE.2, LOG_ROTATE_KEEP old files in all) and stdout and stderr go
 * on in a new FILE. */
#ifndef CACHEMAX_LOG_H
#define CACHEMAX_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

#define LOG_ROTATE_BYTES (8u << 20)
#define LOG_ROTATE_KEEP 3

void log_set_level(enum log_level level);
/* Rotate `path` (this process's stdout and stderr) by size from now on; NULL: never. */
void log_set_rotation(const char *path, unsigned long long max_bytes);
/* True if stderr is the journal's stream (systemd's JOURNAL_STREAM names its device:inode). */
bool log_stderr_is_journal(void);
void log_set_prefix(const char *prefix);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
