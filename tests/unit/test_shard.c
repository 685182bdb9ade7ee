/*
 * test_shard — parser/shard.c: the owner does not depend on the order of
 * the list; keys spread evenly; removing a shard moves only the keys it
 * owned, adding one takes about 1/n of the keys and moves no other; and a
 * few fixed owners that the integration tests rely on (they compute the
 * same function in Python).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parser/shard.h"

#define KEYS 20000

static void names(uint64_t *h, const char *const *n, size_t count)
{
	for (size_t i = 0; i < count; i++)
		h[i] = shard_name_hash(n[i], strlen(n[i]));
}

static size_t owner(const uint64_t *h, size_t count, int k)
{
	char key[32];
	int len = snprintf(key, sizeof(key), "user%d@example.org", k);

	return shard_owner(h, count, key, (size_t)len);
}

static void test_fixed(void **state)
{
	uint64_t h[2];
	static const char *const two[] = { "0", "1" };

	(void)state;
	names(h, two, 2);
	assert_int_equal(shard_owner(h, 2, "alice@localhost", 15), 1);
	assert_int_equal(shard_owner(h, 2, "bob@localhost", 13), 1);
	assert_int_equal(shard_owner(h, 2, "carol@localhost", 15), 0);
	assert_int_equal(shard_owner(h, 1, "carol@localhost", 15), 0);
	assert_int_equal(shard_owner(h, 0, "carol@localhost", 15), 0);
}

static void test_order_free_and_even(void **state)
{
	static const char *const a[] = { "sm-0:5270", "sm-1:5270", "sm-2:5270", "sm-3:5270" };
	static const char *const b[] = { "sm-2:5270", "sm-0:5270", "sm-3:5270", "sm-1:5270" };
	static const int map[] = { 1, 3, 0, 2 };   /* index in b of a[i] */
	uint64_t ha[4], hb[4];
	int count[4] = { 0 };

	(void)state;
	names(ha, a, 4);
	names(hb, b, 4);
	for (int k = 0; k < KEYS; k++) {
		size_t o = owner(ha, 4, k);

		assert_int_equal(owner(hb, 4, k), map[o]);
		count[o]++;
	}
	for (int i = 0; i < 4; i++)     /* 5,000 each, within 5 % */
		assert_true(count[i] > KEYS / 4 * 95 / 100 && count[i] < KEYS / 4 * 105 / 100);
}

static void test_minimal_moves(void **state)
{
	static const char *const four[] = { "a", "b", "c", "d" };
	static const char *const three[] = { "a", "b", "d" };    /* "c" removed */
	uint64_t h4[4], h3[3];
	int taken = 0;

	(void)state;
	names(h4, four, 4);
	names(h3, three, 3);
	for (int k = 0; k < KEYS; k++) {
		size_t before = owner(h4, 4, k), after = owner(h3, 3, k);

		if (before != 2)     /* not c's: stays where it was */
			assert_string_equal(four[before], three[after]);
	}
	/* Adding "c" back takes a quarter, from everyone, and nothing else moves. */
	for (int k = 0; k < KEYS; k++) {
		size_t before = owner(h3, 3, k), after = owner(h4, 4, k);

		if (after == 2)
			taken++;
		else
			assert_string_equal(three[before], four[after]);
	}
	assert_true(taken > KEYS / 4 * 9 / 10 && taken < KEYS / 4 * 11 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_order_free_and_even),
		cmocka_unit_test(test_minimal_moves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
