/* size: byte counts as users type and read them ("64M", "20G", "1.5T", "4096").
 * Suffixes K, M, G, T (optionally followed by "iB" or "B") are powers of 1024.
 * Errors: 0 or -EINVAL (empty, negative, unknown suffix, trailing junk) / -ERANGE (overflow).
 */
#ifndef CACHEMAX_SIZE_H
#define CACHEMAX_SIZE_H

#include <stddef.h>
#include <stdint.h>

int size_parse(const char *s, uint64_t *out);
/* "1.5 GiB", "512 KiB", "17 B" into buf (always terminated). Returns buf. */
const char *size_format(uint64_t bytes, char *buf, size_t size);

#endif
