/*
 * test_threshold — bench/threshold.c: the grammar (every metric form, the
 * operators, the units), the error messages of bad expressions, and the
 * evaluation against a result (latencies, counts, rates, "no samples").
 * Includes the .c files under test (the bench is not in libxedge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/hist.c"
#include "bench/result.c"
#include "bench/threshold.c"

static void parse_ok(const char *text, int txn, int metric, int op, double value)
{
	struct thr t;
	char err[256] = "";

	if (thr_parse(text, &t, err, sizeof(err)) < 0)
		fail_msg("%s: %s", text, err);
	assert_int_equal(t.txn, txn);
	assert_int_equal(t.metric, metric);
	assert_int_equal(t.op, op);
	assert_true(fabs(t.value - value) <= 1e-9 * (value > 1 ? value : 1));
}

static void test_grammar(void **state)
{
	struct thr t;
	char err[256];

	parse_ok("message_rtt.p99 < 50ms", TX_MESSAGE_RTT, THR_PCT, THR_LT, 50e6);
	parse_ok("login.p99.9 <= 1s", TX_LOGIN, THR_PCT, THR_LE, 1e9);
	parse_ok("errors.rate < 0.1%", -1, THR_ERR_RATE, THR_LT, 0.001);
	parse_ok("errors.rate<0.001", -1, THR_ERR_RATE, THR_LT, 0.001);
	parse_ok("errors.count == 0", -1, THR_ERR_COUNT, THR_EQ, 0);
	parse_ok("connect.count >= 1000", TX_CONNECT, THR_COUNT, THR_GE, 1000);
	parse_ok("message_rtt.mean < 10ms", TX_MESSAGE_RTT, THR_MEAN, THR_LT, 10e6);
	parse_ok("join.errors.rate < 1%", TX_JOIN, THR_ERR_RATE, THR_LT, 0.01);
	parse_ok("  tls.max > 250us  ", TX_TLS, THR_MAX, THR_GT, 250e3);
	parse_ok("auth.errors != 3", TX_AUTH, THR_ERR_COUNT, THR_NE, 3);
	parse_ok("room_fanout.min >= 0.5ms", TX_ROOM_FANOUT, THR_MIN, THR_GE, 0.5e6);
	assert_int_equal(thr_parse("login.p99.9 <= 1s", &t, err, sizeof(err)), 0);
	assert_true(fabs(t.pct - 99.9) < 1e-9);
	assert_string_equal(t.text, "login.p99.9 <= 1s");
}

static void bad(const char *text, const char *reason)
{
	struct thr t;
	char err[256] = "";

	assert_int_equal(thr_parse(text, &t, err, sizeof(err)), -1);
	if (!strstr(err, reason))
		fail_msg("'%s': got '%s', wanted '%s'", text, err, reason);
	assert_non_null(strstr(err, "bad threshold"));
}

static void test_errors(void **state)
{
	bad("", "expected a metric");
	bad("p99 < 5ms", "expected <transaction>");
	bad("chat.p99 < 5ms", "unknown transaction");
	bad("login.p100 < 5ms", "unknown statistic");
	bad("login.p0 < 5ms", "unknown statistic");
	bad("login.median < 5ms", "unknown statistic");
	bad("errors.p99 < 5ms", "errors.rate or errors.count");
	bad("login.p99 5ms", "expected an operator");
	bad("login.p99 =< 5ms", "expected an operator");
	bad("login.p99 < ms", "expected a number");
	bad("login.p99 < -5ms", "expected a number");
	bad("login.p99 < 5", "needs a unit");
	bad("login.p99 < 5m", "needs a unit");
	bad("login.p99 < 0x10ms", "non-negative number");
	bad("login.count > 5ms", "takes no unit");
	bad("errors.rate < 5ms", "a rate is a fraction");
	bad("errors.rate < 150%", "at most 1");
	bad("login.p99 < 5ms and more", "unexpected text");
}

static void test_eval(void **state)
{
	struct result r;
	struct thr t;
	char err[256], d[256];
	const char *why;
	double a;

	result_init(&r);
	for (int i = 1; i <= 1000; i++)
		hist_record(&r.tx[TX_LOGIN].h, (uint64_t)i * 1000000);     /* 1 .. 1000 ms */
	r.tx[TX_LOGIN].count = 1000;
	result_cause(&r, "sasl:not-authorized", 2);
	assert_int_equal(r.tx[TX_LOGIN].errors, 2);
	assert_int_equal(r.tx[TX_AUTH].errors, 2);

	assert_int_equal(thr_parse("login.p99 < 1s", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));
	assert_true(a >= 990e6 * (1 - 1.0 / 64) && a <= 990e6 * (1 + 1.0 / 64));
	assert_int_equal(thr_parse("login.p50 < 400ms", &t, err, sizeof(err)), 0);
	assert_false(thr_eval(&t, &r, &a, &why));
	assert_null(why);
	thr_describe(&t, a, why, d, sizeof(d));
	assert_non_null(strstr(d, "login.p50 < 400ms (actual "));
	assert_int_equal(thr_parse("login.count == 1000", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));
	assert_int_equal(thr_parse("errors.count == 0", &t, err, sizeof(err)), 0);
	assert_false(thr_eval(&t, &r, &a, &why));
	assert_true(a == 2);
	/* 2 errors in 1002 operations: 0.1996 % */
	assert_int_equal(thr_parse("errors.rate < 0.2%", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));
	assert_int_equal(thr_parse("errors.rate < 0.19%", &t, err, sizeof(err)), 0);
	assert_false(thr_eval(&t, &r, &a, &why));
	assert_int_equal(thr_parse("auth.errors.rate <= 100%", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));  /* 2 errors, no recorded success: 100 % */
	assert_int_equal(thr_parse("login.mean < 501ms", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));
	assert_true(a == 500.5e6);
	assert_int_equal(thr_parse("login.max <= 1s", &t, err, sizeof(err)), 0);
	assert_true(thr_eval(&t, &r, &a, &why));
	/* a latency gate on a transaction that never ran fails */
	assert_int_equal(thr_parse("message_rtt.p99 < 50ms", &t, err, sizeof(err)), 0);
	assert_false(thr_eval(&t, &r, &a, &why));
	assert_string_equal(why, "no samples");
	thr_describe(&t, a, why, d, sizeof(d));
	assert_string_equal(d, "message_rtt.p99 < 50ms (no samples)");
	result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_eval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
