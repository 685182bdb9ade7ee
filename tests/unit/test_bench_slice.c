/*
 * test_bench_slice — bench/slice.c: --start-at's two forms and what they
 * refuse, --index/--count and their environment defaults, and the cut of a
 * load into slices (disjoint, covering, rates shared, muc by whole rooms).
 * Includes the .c under test (the bench is not in libxedge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/slice.c"

struct bench B;     /* slice.c includes bench.h, which declares it */

static int64_t t(const char *s)
{
	int64_t ns = -42;
	if (slice_parse_time(s, &ns) < 0)
		fail_msg("'%s' refused", s);
	return ns;
}

static void test_times(void **state)
{
	(void)state;
	assert_int_equal(t("0"), 0);
	assert_int_equal(t("1796644800"), 1796644800ll * 1000000000ll);
	assert_int_equal(t("1796644800.25"), 1796644800ll * 1000000000ll + 250000000ll);
	/* 2026-12-07T12:00:00Z is 1796644800 */
	assert_int_equal(t("2026-12-07T12:00:00Z"), 1796644800ll * 1000000000ll);
	assert_int_equal(t("2026-12-07t12:00:00z"), 1796644800ll * 1000000000ll);
	assert_int_equal(t("2026-12-07T13:30:00+01:30"), 1796644800ll * 1000000000ll);
	assert_int_equal(t("2026-12-07T10:00:00.5-02:00"), 1796644800ll * 1000000000ll + 500000000ll);
	assert_int_equal(t("2026-12-07T12:00:00.1234567891Z"), 1796644800ll * 1000000000ll + 123456789ll);
	assert_int_equal(t("2024-02-29T00:00:00Z"), 1709164800ll * 1000000000ll);

	static const char *const bad[] = {
		"", "-1", "1e9", "12.", ".5", "99999999999", "2026-12-07T12:00:00",   /* no offset */
		"2026-12-07 12:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-12-07T24:00:00Z", "2026-12-07T12:00:00+1:00", "2026-12-07T12:00:00Zjunk",
		"1969-12-31T23:59:59Z", "now", "2026-12-07T12:00:00.Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ns;
		if (slice_parse_time(bad[i], &ns) == 0)
			fail_msg("'%s' accepted", bad[i]);
	}
}

static void options_fail(const char *index, const char *count, const char *start, const char *why)
{
	struct slice s;
	char err[256] = "";

	if (slice_options(&s, index, count, start, err, sizeof(err)) == 0)
		fail_msg("%s/%s/%s accepted", index, count, start);
	if (!strstr(err, why))
		fail_msg("got '%s', wanted '%s'", err, why);
}

static void test_options(void **state)
{
	struct slice s;
	char err[256];

	(void)state;
	unsetenv("JOB_COMPLETION_INDEX");
	unsetenv("XEDGE_BENCH_COUNT");
	assert_int_equal(slice_options(&s, NULL, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.index, 0);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.start_at_ns, 0);
	assert_int_equal(slice_options(&s, "2", "3", "1796644800", err, sizeof(err)), 0);
	assert_int_equal(s.index, 2);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.start_at_ns, 1796644800ll * 1000000000ll);

	options_fail("1", NULL, NULL, "without --count");
	options_fail(NULL, "3", NULL, "without --index");
	options_fail("3", "3", NULL, "not below the count");
	options_fail("x", "3", NULL, "bad --index x");
	options_fail("-1", "3", NULL, "bad --index");
	options_fail("0", "0", NULL, "bad --count 0");
	options_fail("0", "100001", NULL, "bad --count");
	options_fail(NULL, NULL, "tomorrow", "bad --start-at 'tomorrow'");

	/* the Job's environment: the index from the controller, the count from the manifest */
	setenv("JOB_COMPLETION_INDEX", "1", 1);
	options_fail(NULL, NULL, NULL, "JOB_COMPLETION_INDEX=1 without --count");
	setenv("XEDGE_BENCH_COUNT", "4", 1);
	assert_int_equal(slice_options(&s, NULL, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.index, 1);
	assert_int_equal(s.count, 4);
	/* the options win over the environment */
	assert_int_equal(slice_options(&s, "3", NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.index, 3);
	assert_int_equal(s.count, 4);
	setenv("JOB_COMPLETION_INDEX", "7", 1);
	options_fail(NULL, NULL, NULL, "slice index 7 is not below the count 4");
	setenv("XEDGE_BENCH_COUNT", "many", 1);
	options_fail("0", NULL, NULL, "bad XEDGE_BENCH_COUNT=many");
	unsetenv("JOB_COMPLETION_INDEX");
	unsetenv("XEDGE_BENCH_COUNT");
}

static struct bench_opts whole(int scenario, unsigned clients)
{
	return (struct bench_opts){ .scenario = scenario, .clients = clients, .split = clients,
				    .offset = 100, .ramp = 90, .concurrency = 200, .rate = 2,
				    .join_rate = 30, .rooms = 7, .room_size = 5 };
}

/* The slices of a load cover its users once each and share its total rates. */
static void test_apply(void **state)
{
	static const unsigned loads[][2] = { { 10, 3 }, { 12, 3 }, { 7, 7 }, { 1000, 8 }, { 5, 1 } };
	char err[256];

	(void)state;
	for (size_t k = 0; k < sizeof(loads) / sizeof(loads[0]); k++) {
		unsigned c = loads[k][0], n = loads[k][1], next = 100;
		double ramp = 0;
		for (unsigned i = 0; i < n; i++) {
			struct slice s = { .index = i, .count = n };
			struct bench_opts o = whole(SC_LOGIN, c);
			assert_int_equal(slice_apply(&s, &o, err, sizeof(err)), 0);
			assert_int_equal(o.offset, next);          /* adjacent, in order */
			assert_true(o.clients >= c / n && o.clients <= c / n + 1);
			assert_int_equal(o.split, o.clients);
			assert_int_equal(s.n, o.clients);
			assert_int_equal(s.whole_clients, c);
			assert_true(o.rate == 2);                  /* per client: unchanged */
			assert_true(o.concurrency >= 1);
			next += o.clients;
			ramp += o.ramp;
		}
		assert_int_equal(next, 100 + c);                   /* every user, once */
		assert_true(ramp > 90 - 1e-9 && ramp < 90 + 1e-9);
	}
	/* unlimited stays unlimited */
	struct slice s = { .index = 1, .count = 2 };
	struct bench_opts o = whole(SC_LOGIN, 10);
	o.ramp = 0;
	o.concurrency = 0;
	assert_int_equal(slice_apply(&s, &o, err, sizeof(err)), 0);
	assert_true(o.ramp == 0);
	assert_int_equal(o.concurrency, 0);

	/* muc: whole rooms; 7 rooms of 5 in 3 slices: 2, 2, 3 rooms */
	unsigned rooms = 0, next = 100;
	double join = 0;
	for (unsigned i = 0; i < 3; i++) {
		struct slice m = { .index = i, .count = 3 };
		struct bench_opts mo = whole(SC_MUC, 35);
		assert_int_equal(slice_apply(&m, &mo, err, sizeof(err)), 0);
		assert_int_equal(mo.rooms, i < 2 ? 2 : 3);
		assert_int_equal(mo.clients, mo.rooms * 5);
		assert_int_equal(mo.offset, next);
		next += mo.clients;
		rooms += mo.rooms;
		join += mo.join_rate;
	}
	assert_int_equal(rooms, 7);
	assert_int_equal(next, 135);
	assert_true(join > 30 - 1e-9 && join < 30 + 1e-9);

	/* refusals */
	struct slice r = { .index = 0, .count = 8 };
	o = whole(SC_MUC, 35);
	assert_int_equal(slice_apply(&r, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "7 rooms cannot make 8 slices"));
	o = whole(SC_CHAT, 15);
	assert_int_equal(slice_apply(&r, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--clients 15 cannot make 8 slices (2 each at least)"));
	o = whole(SC_LOGIN, 10);
	o.remote_host = "127.0.0.2";
	assert_int_equal(slice_apply(&r, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--remote with --count > 1"));
	/* one slice: the whole load, untouched */
	struct slice one = { .index = 0, .count = 1 };
	o = whole(SC_LOGIN, 10);
	o.remote_host = "127.0.0.2";
	assert_int_equal(slice_apply(&one, &o, err, sizeof(err)), 0);
	assert_int_equal(o.clients, 10);
	assert_int_equal(o.offset, 100);
	assert_true(o.ramp == 90);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
