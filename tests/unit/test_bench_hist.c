/*
 * test_bench_hist — bench/hist.c: bucket layout (every value lands in a
 * bucket whose range holds it, buckets are ordered and contiguous), the
 * 1/64 relative precision of percentiles, merging, and the edges (empty,
 * zero, beyond the range).  Includes the .c under test (the bench is not in
 * libxedge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/hist.c"

static void test_layout_contiguous(void **state)
{
	uint64_t lo, hi, prev_hi = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		hist_bucket_range(i, &lo, &hi);
		assert_true(lo <= hi);
		if (i)
			assert_int_equal(lo, prev_hi + 1);
		assert_int_equal(hist_index(lo), i);
		assert_int_equal(hist_index(hi), i);
		/* relative width at most 1/64 above the linear part */
		if (lo >= HIST_SUB)
			assert_true((hi - lo + 1) * HIST_SUB <= lo);
		prev_hi = hi;
	}
	assert_int_equal(prev_hi, HIST_MAX_US);
	assert_int_equal(hist_index(HIST_MAX_US + 12345), HIST_BUCKETS - 1);
}

static void test_values_in_their_bucket(void **state)
{
	uint64_t lo, hi;

	for (uint64_t v = 0; v < 5000000; v = v * 3 / 2 + 1) {
		hist_bucket_range(hist_index(v), &lo, &hi);
		assert_true(lo <= v && v <= hi);
	}
}

static void test_percentiles_uniform(void **state)
{
	struct hist *h = calloc(1, sizeof(*h));

	/* 1 µs .. 100 ms, uniform */
	for (uint64_t us = 1; us <= 100000; us++)
		hist_record(h, us * 1000);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min_ns, 1000);
	assert_int_equal(h->max_ns, 100000000);
	const double ps[] = { 50, 90, 99, 99.9 };
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		double want = ps[i] * 1000.0 * 1000.0; /* ns */
		double got = (double)hist_percentile(h, ps[i]);
		assert_true(got >= want * (1 - 1.0 / 64) && got <= want * (1 + 1.0 / 64));
	}
	assert_int_equal(hist_percentile(h, 100), 100000000);
	assert_int_equal(hist_percentile(h, 0), 1000);
	free(h);
}

static void test_merge_equals_record(void **state)
{
	struct hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *all = calloc(1, sizeof(*all));

	for (uint64_t i = 0; i < 20000; i++) {
		uint64_t ns = (i * 7919) % 3000000 * 1000 + 17;
		hist_record(i % 3 ? a : b, ns);
		hist_record(all, ns);
	}
	hist_merge(a, b);
	assert_memory_equal(a, all, sizeof(*a));
	hist_reset(b);
	hist_merge(a, b);   /* merging an empty histogram changes nothing */
	assert_memory_equal(a, all, sizeof(*a));
	free(a);
	free(b);
	free(all);
}

static void test_edges(void **state)
{
	struct hist *h = calloc(1, sizeof(*h));

	assert_int_equal(hist_percentile(h, 50), 0);
	hist_record(h, 0);
	assert_int_equal(hist_percentile(h, 99), 0);
	hist_record(h, 500ull * 1000000000ull);    /* 500 s: beyond the range */
	assert_int_equal(h->b[HIST_BUCKETS - 1], 1);
	assert_int_equal(hist_percentile(h, 100), 500ull * 1000000000ull);
	/* a single sample is reported exactly (clamped to min/max) */
	hist_reset(h);
	hist_record(h, 1234567);
	assert_int_equal(hist_percentile(h, 50), 1234567);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_contiguous),
		cmocka_unit_test(test_values_in_their_bucket),
		cmocka_unit_test(test_percentiles_uniform),
		cmocka_unit_test(test_merge_equals_record),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
