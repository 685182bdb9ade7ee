/*
 * test_hostport — parser/hostport.c: endpoints with numeric addresses and
 * DNS names (what is accepted, what is refused and why), and shard sets
 * (sorted, duplicates out, equality).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/hostport.h"

static void test_numeric(void **state)
{
	char host[HOSTPORT_MAX];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(hostport_parse("127.0.0.1:5270", host, sizeof(host), &port), HOSTPORT_IP);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 5270);
	assert_int_equal(hostport_parse("[::1]:1", host, sizeof(host), &port), HOSTPORT_IP);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_int_equal(hostport_parse("[fe80::1]:65535", host, sizeof(host), &port), HOSTPORT_IP);
	assert_int_equal(port, 65535);
}

static void test_names(void **state)
{
	char host[HOSTPORT_MAX];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(hostport_parse("xedge-sm-0.xedge-sm.default.svc.cluster.local:5280", host,
					sizeof(host), &port), HOSTPORT_NAME);
	assert_string_equal(host, "xedge-sm-0.xedge-sm.default.svc.cluster.local");
	assert_int_equal(port, 5280);
	assert_int_equal(hostport_parse("localhost:5270", host, sizeof(host), &port), HOSTPORT_NAME);
	assert_int_equal(hostport_parse("_sm._tcp.x:5270", host, sizeof(host), &port), HOSTPORT_NAME);
	assert_int_equal(hostport_parse("sm1:7", host, sizeof(host), &port), HOSTPORT_NAME);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"", ":", "sm", "sm:", ":5270", "sm:0", "sm:65536", "sm:52a", "sm:-1", "sm:+5",
		"::1:5270",            /* IPv6 without brackets */
		"[::1]5270", "[::1]:", "[]:5270", "[sm]:5270", "[::1",
		"sm..x:5270", ".sm:5270", "sm.:5270", "-sm:5270", "sm-:5270", "s m:5270",
		"sm/x:5270", "sm\x01:5270", "1.2.3:5270", "999.1.1.1:5270", "sm:5270:1",
	};
	char host[HOSTPORT_MAX];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hostport_parse(bad[i], host, sizeof(host), &port) != HOSTPORT_BAD)
			fail_msg("accepted: \"%s\"", bad[i]);
}

static void test_lengths(void **state)
{
	char name[300], s[320], host[HOSTPORT_MAX];
	uint16_t port;

	(void)state;
	/* A 63-byte label is fine, 64 is not. */
	memset(name, 'a', 63);
	strcpy(name + 63, ":1");
	assert_int_equal(hostport_parse(name, host, sizeof(host), &port), HOSTPORT_NAME);
	memset(name, 'a', 64);
	strcpy(name + 64, ":1");
	assert_int_equal(hostport_parse(name, host, sizeof(host), &port), HOSTPORT_BAD);
	/* 253 bytes in all are fine, 254 are not. */
	for (size_t i = 0; i < 253; i++)
		name[i] = (i % 50 == 49) ? '.' : 'b';
	name[253] = '\0';
	assert_true(hostport_name_ok(name));
	snprintf(s, sizeof(s), "%s:5", name);
	assert_int_equal(hostport_parse(s, host, sizeof(host), &port), HOSTPORT_NAME);
	name[253] = 'b';
	name[254] = '\0';
	assert_false(hostport_name_ok(name));
	snprintf(s, sizeof(s), "%s:5", name);
	assert_int_equal(hostport_parse(s, host, sizeof(host), &port), HOSTPORT_BAD);
	/* A host that does not fit the caller's buffer is refused, not cut. */
	assert_int_equal(hostport_parse("abcdef:1", host, 6, &port), HOSTPORT_BAD);
	assert_int_equal(hostport_parse("abcde:1", host, 6, &port), HOSTPORT_NAME);
}

static void test_set(void **state)
{
	const char *a[] = { "sm-1.x:5", "sm-0.x:5", "sm-1.x:5", "sm-2.x:5", "sm-0.x:5" };
	const char *b[] = { "sm-2.x:5", "sm-0.x:5", "sm-1.x:5" };
	size_t na, nb;

	(void)state;
	na = hostport_set_sort(a, 5);
	nb = hostport_set_sort(b, 3);
	assert_int_equal(na, 3);
	assert_string_equal(a[0], "sm-0.x:5");
	assert_string_equal(a[1], "sm-1.x:5");
	assert_string_equal(a[2], "sm-2.x:5");
	/* The duplicates are still there, past the count. */
	assert_string_equal(a[3], "sm-1.x:5");
	assert_string_equal(a[4], "sm-0.x:5");
	assert_true(hostport_set_equal(a, na, b, nb));
	assert_false(hostport_set_equal(a, na, b, 2));
	b[2] = "sm-3.x:5";
	assert_false(hostport_set_equal(a, na, b, nb));
	assert_int_equal(hostport_set_sort(a, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
