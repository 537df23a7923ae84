/* file: small whole-file writes of the control plane (state records, the config file), which
 * are neither the origin nor the cache device and so do not go through src/sys.
 * Errors: 0 or -errno.
 */
#ifndef CACHEMAX_FILE_H
#define CACHEMAX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Replace path with len bytes of data atomically: written to PATH.PID.tmp with exactly mode
 * (whatever the umask), fsynced first if durable, then renamed over path, so a reader sees the
 * old file or the new one, never a part. The temporary file is removed on failure. */
int file_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable);

#endif
