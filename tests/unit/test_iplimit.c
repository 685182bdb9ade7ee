/* Unit tests for core/iplimit.c: concurrent cap, per-second rate, release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/iplimit.h"

static void ip4(uint8_t ip[16], uint8_t last)
{
	memset(ip, 0, 16);
	ip[10] = ip[11] = 0xff;
	ip[12] = 127;
	ip[15] = last;
}

static void test_concurrent_cap(void **state)
{
	uint8_t a[16], b[16];

	ip4(a, 10);
	ip4(b, 11);
	for (int i = 0; i < 3; i++)
		assert_int_equal(iplimit_enter(a, 3, 100, 1000), IPLIMIT_OK);
	assert_int_equal(iplimit_enter(a, 3, 100, 1000), IPLIMIT_TOO_MANY);
	/* another address is not affected */
	assert_int_equal(iplimit_enter(b, 3, 100, 1000), IPLIMIT_OK);
	/* a connection ends: room for one more */
	iplimit_leave(a);
	assert_int_equal(iplimit_enter(a, 3, 100, 1000), IPLIMIT_OK);
	for (int i = 0; i < 3; i++)
		iplimit_leave(a);
	iplimit_leave(b);
}

static void test_rate(void **state)
{
	uint8_t a[16];

	ip4(a, 20);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(iplimit_enter(a, 100, 5, 2000), IPLIMIT_OK);
		iplimit_leave(a);
	}
	assert_int_equal(iplimit_enter(a, 100, 5, 2000), IPLIMIT_TOO_FAST);
	/* the next second has a fresh budget */
	assert_int_equal(iplimit_enter(a, 100, 5, 2001), IPLIMIT_OK);
	iplimit_leave(a);
}

static void test_many_addresses_bounded(void **state)
{
	uint8_t ip[16] = { 0 };
	int full = 0;

	/* distinct sources all holding a connection: the table fills up and
	 * refuses instead of growing; releasing frees the slots again */
	for (uint32_t i = 0; i < 200000; i++) {
		memcpy(ip, &i, 4);
		int v = iplimit_enter(ip, 10, 10, 3000);
		if (v == IPLIMIT_TABLE_FULL)
			full++;
		else
			assert_int_equal(v, IPLIMIT_OK);
	}
	assert_true(full > 0);
	for (uint32_t i = 0; i < 200000; i++) {
		memcpy(ip, &i, 4);
		iplimit_leave(ip);
	}
	memcpy(ip, &(uint32_t){ 7 }, 4);
	assert_int_equal(iplimit_enter(ip, 10, 10, 3001), IPLIMIT_OK);
	iplimit_leave(ip);
}

static void test_register_rate(void **state)
{
	uint8_t a[16], b[16], x[16];
	int full = 0;

	ip4(a, 20);
	ip4(b, 21);
	/* per minute (fixed windows), per address, independent of connections */
	for (int i = 0; i < 3; i++)
		assert_int_equal(iplimit_register(a, 3, 6000 + (uint64_t)i * 10), IPLIMIT_OK);
	assert_int_equal(iplimit_register(a, 3, 6059), IPLIMIT_TOO_FAST);
	assert_int_equal(iplimit_register(a, 3, 6059), IPLIMIT_TOO_FAST);
	assert_int_equal(iplimit_register(b, 3, 6059), IPLIMIT_OK);
	assert_int_equal(iplimit_enter(a, 10, 10, 6059), IPLIMIT_OK);
	iplimit_leave(a);
	/* the next minute starts afresh */
	assert_int_equal(iplimit_register(a, 3, 6060), IPLIMIT_OK);
	assert_int_equal(iplimit_register(a, 1, 6061), IPLIMIT_TOO_FAST);
	/* a flood of addresses in one minute: bounded, refused, never grown */
	memset(x, 0, sizeof(x));
	for (uint32_t i = 0; i < 20000; i++) {
		memcpy(x, &i, sizeof(i));
		if (iplimit_register(x, 3, 12000) == IPLIMIT_TABLE_FULL)
			full++;
	}
	assert_true(full > 0);
	assert_int_equal(iplimit_register(a, 3, 12060), IPLIMIT_OK);   /* freed next minute */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_cap),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_many_addresses_bounded),
		cmocka_unit_test(test_register_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
