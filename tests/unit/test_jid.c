/*
 * test_jid — parser/jid.c: splitting (RFC 7622 §3.2), per-part validation,
 * the 1023-byte limits, strict UTF-8, and canonicalisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/jid.h"

static int parse(const char *s, struct jid_view *v)
{
	return jid_parse(s, strlen(s), v);
}

static bool ok(const char *s)
{
	struct jid_view v;
	return parse(s, &v) == 0;
}

static void assert_part(const char *p, size_t n, const char *want)
{
	if (want == NULL) {
		assert_int_equal(n, 0);
		return;
	}
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static void check_split(const char *s, const char *l, const char *d, const char *r)
{
	struct jid_view v;

	assert_int_equal(parse(s, &v), 0);
	assert_part(v.local, v.local_len, l);
	assert_part(v.domain, v.domain_len, d);
	assert_part(v.resource, v.resource_len, r);
}

static void test_split(void **state)
{
	check_split("example.com", NULL, "example.com", NULL);
	check_split("user@example.com", "user", "example.com", NULL);
	check_split("user@example.com/res", "user", "example.com", "res");
	check_split("example.com/res", NULL, "example.com", "res");
	/* the resource may hold '@' and '/' */
	check_split("user@example.com/a@b/c", "user", "example.com", "a@b/c");
	check_split("example.com/@", NULL, "example.com", "@");
	/* trailing dot dropped */
	check_split("user@example.com./r", "user", "example.com", "r");
	check_split("example.com.", NULL, "example.com", NULL);
	/* resource with spaces and non-ASCII */
	check_split("u@d/The Balcony \xc3\xa9", "u", "d", "The Balcony \xc3\xa9");
	check_split("u@localhost", "u", "localhost", NULL);
	check_split("u@192.168.0.1", "u", "192.168.0.1", NULL);
	check_split("u@[::1]/r", "u", "[::1]", "r");
	check_split("u@[2001:db8::ff00:42:8329]", "u", "[2001:db8::ff00:42:8329]", NULL);
	check_split("u@[::ffff:192.0.2.1]", "u", "[::ffff:192.0.2.1]", NULL);
	check_split("\xc3\xbc@\xc3\xa9xample.com", "\xc3\xbc", "\xc3\xa9xample.com", NULL);
	check_split("a_b@x_y.com", "a_b", "x_y.com", NULL);
}

static void test_invalid(void **state)
{
	struct jid_view v;

	assert_int_equal(jid_parse("", 0, &v), -1);
	assert_false(ok("@example.com"));
	assert_false(ok("user@"));
	assert_false(ok("user@/res"));
	assert_false(ok("example.com/"));
	assert_false(ok("/res"));
	assert_false(ok("a@b@c"));
	assert_false(ok("."));
	assert_false(ok("example.com.."));
	assert_false(ok(".example.com"));
	assert_false(ok("a..b"));
	assert_false(ok("exa mple.com"));
	assert_false(ok("-example.com"));
	assert_false(ok("example-.com"));
	assert_false(ok("exa!mple.com"));
	assert_false(ok("exa:mple.com"));
	assert_false(ok("[::1"));
	assert_false(ok("::1]"));
	assert_false(ok("[::1]x"));
	assert_false(ok("[]"));
	assert_false(ok("[::g]"));
	assert_false(ok("[1.2.3.4]"));
	assert_false(ok("[fe80::1%eth0]"));
	assert_false(ok("u@[::1]:5222"));
	assert_false(ok("u@[1111:2222:3333:4444:5555:6666:7777:8888:9999]"));
	/* a NUL anywhere */
	assert_int_equal(jid_parse("u@d\0x", 5, &v), -1);
	assert_int_equal(jid_parse("u\0@d", 4, &v), -1);
	assert_int_equal(jid_parse("u@d/r\0", 6, &v), -1);
}

static void test_local_chars(void **state)
{
	static const char bad[] = "\"&'/:<>@";

	assert_true(jid_local_valid("juliet", 6));
	assert_true(jid_local_valid("a.b-c_d+e=f,g!h", 15));
	for (const char *p = bad; *p; p++) {
		char l[3] = { 'a', *p, 'b' };
		assert_false(jid_local_valid(l, 3));
	}
	assert_false(jid_local_valid("a b", 3));
	assert_false(jid_local_valid("a\tb", 3));
	assert_false(jid_local_valid("a\xc2\xa0" "b", 4));          /* NBSP */
	assert_false(jid_local_valid("a\xe3\x80\x80" "b", 5));      /* ideographic space */
	assert_false(jid_local_valid("a\xe2\x80\xa8" "b", 5));      /* line separator */
	assert_false(jid_local_valid("", 0));
	assert_false(ok("a b@example.com"));
	assert_false(ok("a'b@example.com"));
	assert_false(ok("a:b@example.com"));
	assert_false(ok("a<b@example.com"));
	assert_false(ok("a&amp@example.com"));
}

static void test_controls(void **state)
{
	char buf[4];

	for (unsigned c = 0; c < 0x20; c++) {
		buf[0] = 'a';
		buf[1] = (char)c;
		assert_false(jid_local_valid(buf, 2));
		assert_false(jid_domain_valid(buf, 2));
		assert_false(jid_resource_valid(buf, 2));
	}
	assert_false(jid_resource_valid("a\x7f", 2));
	/* C1 controls U+0080..U+009F, as UTF-8 */
	for (unsigned c = 0x80; c <= 0x9F; c++) {
		buf[0] = (char)0xC2;
		buf[1] = (char)c;
		assert_false(jid_resource_valid(buf, 2));
		assert_false(jid_local_valid(buf, 2));
	}
	assert_true(jid_resource_valid("\xc2\xa0", 2));   /* U+00A0: printable in a resource */
	/* U+FFFE, U+FFFF; U+FFFD is fine */
	assert_false(jid_resource_valid("\xef\xbf\xbe", 3));
	assert_false(jid_resource_valid("\xef\xbf\xbf", 3));
	assert_true(jid_resource_valid("\xef\xbf\xbd", 3));
	assert_true(jid_resource_valid("a b", 3));
	assert_false(jid_resource_valid("a\nb", 3));
}

static void test_utf8(void **state)
{
	/* valid: 2, 3, 4 byte forms and the extremes */
	assert_true(jid_resource_valid("\xc2\xa9", 2));
	assert_true(jid_resource_valid("\xe2\x82\xac", 3));
	assert_true(jid_resource_valid("\xf0\x9f\x98\x80", 4));
	assert_true(jid_resource_valid("\xf4\x8f\xbf\xbd", 4));        /* U+10FFFD */
	assert_true(jid_resource_valid("\xed\x9f\xbf", 3));            /* U+D7FF */
	assert_true(jid_resource_valid("\xee\x80\x80", 3));            /* U+E000 */
	/* overlong */
	assert_false(jid_resource_valid("\xc0\xaf", 2));
	assert_false(jid_resource_valid("\xc1\xbf", 2));
	assert_false(jid_resource_valid("\xe0\x80\xaf", 3));
	assert_false(jid_resource_valid("\xe0\x9f\xbf", 3));
	assert_false(jid_resource_valid("\xf0\x80\x80\xaf", 4));
	assert_false(jid_resource_valid("\xf0\x8f\xbf\xbf", 4));
	/* surrogates */
	assert_false(jid_resource_valid("\xed\xa0\x80", 3));
	assert_false(jid_resource_valid("\xed\xbf\xbf", 3));
	assert_false(jid_resource_valid("\xed\xa0\xbd\xed\xb8\x80", 6));
	/* above U+10FFFF, invalid lead bytes */
	assert_false(jid_resource_valid("\xf4\x90\x80\x80", 4));
	assert_false(jid_resource_valid("\xf5\x80\x80\x80", 4));
	assert_false(jid_resource_valid("\xff", 1));
	assert_false(jid_resource_valid("\xfe", 1));
	/* truncated and stray continuation */
	assert_false(jid_resource_valid("\xc3", 1));
	assert_false(jid_resource_valid("a\xe2\x82", 3));
	assert_false(jid_resource_valid("\xf0\x9f\x98", 3));
	assert_false(jid_resource_valid("\x80", 1));
	assert_false(jid_resource_valid("\xc3\xa9\xa9", 3));
	assert_false(jid_resource_valid("\xe2\x28\xa1", 3));
	assert_false(jid_resource_valid("\xf0\x9f\x28\x80", 4));
	/* the length given is the bound: a valid sequence cut by n */
	assert_false(jid_resource_valid("\xe2\x82\xac", 2));
	assert_false(ok("u@d/\xc3"));
	assert_false(ok("\xc0\xae@d"));
	assert_false(ok("u@\xed\xa0\x80.com"));
}

static char *filled(size_t n, char c)
{
	char *p = malloc(n + 1);
	assert_non_null(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

static void test_limits(void **state)
{
	char *a1023 = filled(1023, 'a'), *a1024 = filled(1024, 'a');
	char *buf = malloc(4000);
	struct jid_view v;
	char out[JID_MAX + 1];

	assert_non_null(buf);
	assert_true(jid_local_valid(a1023, 1023));
	assert_false(jid_local_valid(a1024, 1024));
	assert_true(jid_resource_valid(a1023, 1023));
	assert_false(jid_resource_valid(a1024, 1024));

	/* A 1023-byte domain of 63-byte labels: 16 * 64 - 1 = 1023. */
	{
		char *d = buf;
		size_t k = 0;
		for (int i = 0; i < 16; i++) {
			memset(d + k, 'd', 63);
			k += 63;
			if (i < 15)
				d[k++] = '.';
		}
		assert_int_equal(k, 1023);
		assert_true(jid_domain_valid(d, 1023));
		/* plus a trailing dot: 1024 bytes in the string, 1023 in the view */
		d[k] = '.';
		assert_false(jid_domain_valid(d, 1024));
		assert_int_equal(jid_parse(d, 1024, &v), 0);
		assert_int_equal(v.domain_len, 1023);
		/* one more byte in a label: 1024 */
		d[k] = 'x';
		assert_false(jid_domain_valid(d, 1024));
	}
	/* labels: 63 ok, 64 not */
	{
		char *l63 = filled(63, 'x'), *l64 = filled(64, 'x');
		assert_true(jid_domain_valid(l63, 63));
		assert_false(jid_domain_valid(l64, 64));
		free(l63);
		free(l64);
	}

	/* The largest JID: 1023 + '@' + 1023 + '/' + 1023 = JID_MAX. */
	{
		size_t k = 0;
		memcpy(buf, a1023, 1023);
		k = 1023;
		buf[k++] = '@';
		for (int i = 0; i < 16; i++) {
			memset(buf + k, 'D', 63);
			k += 63;
			if (i < 15)
				buf[k++] = '.';
		}
		buf[k++] = '/';
		memcpy(buf + k, a1023, 1023);
		k += 1023;
		assert_int_equal(k, JID_MAX);
		assert_int_equal(jid_parse(buf, k, &v), 0);
		assert_int_equal(jid_canon(&v, true, out, sizeof(out)), JID_MAX);
		assert_int_equal(jid_canon(&v, true, out, JID_MAX), -1);
		assert_int_equal(out[1024], 'd');
		/* a 1024-byte localpart or resource */
		buf[k] = 'a';
		assert_int_equal(jid_parse(buf, k + 1, &v), -1);
		memmove(buf + 1, buf, k);
		buf[0] = 'a';
		assert_int_equal(jid_parse(buf, k + 1, &v), -1);
	}
	free(a1023);
	free(a1024);
	free(buf);
}

static void canon_is(const char *in, bool full, const char *want)
{
	struct jid_view v;
	char out[JID_MAX + 1];

	assert_int_equal(parse(in, &v), 0);
	assert_int_equal(jid_canon(&v, full, out, sizeof(out)), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_canon(void **state)
{
	struct jid_view v;
	char small[8];

	canon_is("Juliet@Example.COM/Balcony", true, "juliet@example.com/Balcony");
	canon_is("Juliet@Example.COM/Balcony", false, "juliet@example.com");
	canon_is("EXAMPLE.com.", true, "example.com");
	canon_is("Example.com/R", true, "example.com/R");
	canon_is("Example.com/R", false, "example.com");
	canon_is("U@[::ABCD]", true, "u@[::abcd]");
	/* non-ASCII kept as given */
	canon_is("\xc3\x9c@d", true, "\xc3\x9c@d");

	/* cap: exact fit needs room for the NUL */
	assert_int_equal(parse("ab@cd/e", &v), 0);
	assert_int_equal(jid_canon(&v, true, small, 8), 7);
	assert_int_equal(jid_canon(&v, true, small, 7), -1);
	assert_int_equal(jid_canon(&v, false, small, 6), 5);
	assert_string_equal(small, "ab@cd");

	{
		char f[5];
		jid_fold("AbZ@9", 5, f);
		assert_memory_equal(f, "abz@9", 5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_local_chars),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_canon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
