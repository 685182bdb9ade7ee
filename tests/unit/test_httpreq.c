/* Unit tests for parser/httpreq.c (the admin listener's request heads) and
 * core/metrics.c (the Prometheus text and histograms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "parser/httpreq.h"

static long parse(const char *s, struct httpreq *r)
{
	return httpreq_parse(s, strlen(s), r);
}

static void test_good_requests(void **state)
{
	struct httpreq r;
	const char *req = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: Prometheus/2\r\n\r\nrest";

	assert_int_equal(parse(req, &r), (long)strlen(req) - 4);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/metrics");
	assert_int_equal(parse("HEAD /readyz HTTP/1.0\r\n\r\n", &r), 25);
	assert_string_equal(r.method, "HEAD");
	assert_string_equal(r.path, "/readyz");
}

static void test_need_more_byte_by_byte(void **state)
{
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	struct httpreq r;
	size_t n = strlen(req);

	for (size_t i = 0; i < n; i++)
		assert_int_equal(httpreq_parse(req, i, &r), 0);
	assert_int_equal(httpreq_parse(req, n, &r), (long)n);
}

static void test_bad_requests(void **state)
{
	struct httpreq r;
	char big[HTTPREQ_MAX + 10];

	assert_int_equal(parse("garbage\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET metrics HTTP/1.1\r\n\r\n", &r), -400);     /* not origin-form */
	assert_int_equal(parse("GET /a HTTP/1.1\n\n", &r), -400);             /* bare LF */
	assert_int_equal(parse("GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n", &r), -400);  /* bare CR */
	assert_int_equal(parse("GET /a HTTP/1.1\r\nnocolon\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a HTTP/2.0\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET /a HTTP/1.9\r\n\r\n", &r), -505);
	assert_int_equal(parse("VERYLONGMETHODNAMEX /a HTTP/1.1\r\n\r\n", &r), -400);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /a HTTP/1.1\r\nX: ", 20);
	assert_int_equal(httpreq_parse(big, sizeof(big), &r), -431);
	assert_int_equal(httpreq_parse(big, HTTPREQ_MAX - 1, &r), 0);
}

static void test_upload_fields(void **state)
{
	struct httpreq r;
	const char *put = "PUT /upload/a/b/c%20d.jpg?z=10&e=5&c=1&h=ab HTTP/1.1\r\nHost: x\r\n"
			  "content-length:  10 \r\nContent-Type: image/jpeg\r\nExpect: 100-continue\r\n\r\n";

	assert_true(parse(put, &r) > 0);
	assert_string_equal(r.method, "PUT");
	assert_string_equal(r.path, "/upload/a/b/c%20d.jpg");
	assert_string_equal(r.query, "z=10&e=5&c=1&h=ab");
	assert_int_equal(r.content_length, 10);
	assert_string_equal(r.content_type, "image/jpeg");
	assert_true(r.expect_continue);
	assert_false(r.chunked);
	assert_string_equal(r.range, "");
	assert_true(parse("GET /f HTTP/1.1\r\nRange: bytes=1-2\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
	assert_string_equal(r.range, "bytes=1-2");
	assert_true(r.chunked);
	assert_int_equal(r.content_length, -1);
	assert_string_equal(r.query, "");
	/* RFC 9112 §6.3: a list, a sign, or two different lengths are malformed; the same twice is not */
	assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", &r), -400);
	assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: +5\r\n\r\n", &r), -400);
	assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &r), -400);
	assert_true(parse("PUT /f HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &r) > 0);
	assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &r), -400);
}

static void test_ranges(void **state)
{
	uint64_t a, b;

	assert_int_equal(httpreq_range("bytes=2-5", 10, &a, &b), 1);
	assert_true(a == 2 && b == 5);
	assert_int_equal(httpreq_range("bytes=7-", 10, &a, &b), 1);
	assert_true(a == 7 && b == 9);
	assert_int_equal(httpreq_range("bytes=5-100", 10, &a, &b), 1);
	assert_true(a == 5 && b == 9);
	assert_int_equal(httpreq_range("bytes=-3", 10, &a, &b), 1);
	assert_true(a == 7 && b == 9);
	assert_int_equal(httpreq_range("bytes=-30", 10, &a, &b), 1);
	assert_true(a == 0 && b == 9);
	assert_int_equal(httpreq_range("bytes=10-", 10, &a, &b), -416);
	assert_int_equal(httpreq_range("bytes=-0", 10, &a, &b), -416);
	assert_int_equal(httpreq_range("bytes=0-", 0, &a, &b), -416);
	/* ignored: the whole representation is sent */
	assert_int_equal(httpreq_range("bytes=0-1,4-5", 10, &a, &b), 0);
	assert_int_equal(httpreq_range("items=0-1", 10, &a, &b), 0);
	assert_int_equal(httpreq_range("bytes=5-2", 10, &a, &b), 0);
	assert_int_equal(httpreq_range("bytes=x-2", 10, &a, &b), 0);
	assert_int_equal(httpreq_range("bytes=-", 10, &a, &b), 0);
}

static void test_histogram_text(void **state)
{
	struct mhist h = { 0 }, sum = { 0 };
	struct mx m = { 0 };

	mhist_observe(&h, 500);       /* <= 1 ms */
	mhist_observe(&h, 1000);      /* <= 1 ms: bounds are inclusive (le) */
	mhist_observe(&h, 30000);     /* <= 50 ms */
	mhist_observe(&h, 99000000);  /* +Inf */
	mhist_add(&sum, &h);
	mhist_add(&sum, &h);
	mx_hist(&m, "t_seconds", "help", &sum);
	assert_false(m.failed);
	assert_non_null(strstr(m.p, "# TYPE t_seconds histogram\n"));
	assert_non_null(strstr(m.p, "t_seconds_bucket{le=\"0.001\"} 4\n"));
	assert_non_null(strstr(m.p, "t_seconds_bucket{le=\"0.025\"} 4\n"));
	assert_non_null(strstr(m.p, "t_seconds_bucket{le=\"0.05\"} 6\n"));
	assert_non_null(strstr(m.p, "t_seconds_bucket{le=\"10\"} 6\n"));
	assert_non_null(strstr(m.p, "t_seconds_bucket{le=\"+Inf\"} 8\n"));
	assert_non_null(strstr(m.p, "t_seconds_count 8\n"));
	assert_non_null(strstr(m.p, "t_seconds_sum 198.063000\n"));
	mx_free(&m);
}

static void test_text_grows(void **state)
{
	struct mx m = { 0 };

	for (int i = 0; i < 5000; i++)
		mx_val(&m, "x_total", "k=\"v\"", (uint64_t)i);
	assert_false(m.failed);
	assert_non_null(strstr(m.p, "x_total{k=\"v\"} 4999\n"));
	mx_val(&m, "y", "", 7);
	assert_non_null(strstr(m.p, "\ny 7\n"));
	mx_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_need_more_byte_by_byte),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_upload_fields),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_histogram_text),
		cmocka_unit_test(test_text_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
