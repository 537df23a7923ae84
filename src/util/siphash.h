/* siphash: SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed 64-bit hash of a byte string.
 * With a secret key, nobody who does not know the key can choose inputs that collide, which a
 * hash whose values an application sees (readdir cookies made from names) needs. Pure function,
 * any thread. */
#ifndef CACHEMAX_UTIL_SIPHASH_H
#define CACHEMAX_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_BYTES 16u

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_BYTES], const void *data, size_t len);

#endif
