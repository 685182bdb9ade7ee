/*
 * Unit tests for parser/xmltag.c: stamping `from` / setting `to` in a start
 * tag, escaping, output sizing, and bounds safety on malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/xmltag.h"

static char out[4096];

/* Rewrite el (a C string) with one attribute; returns out as a C string. */
static const char *rw(const char *el, const struct xmltag_attr *set, size_t n)
{
	size_t len = xmltag_rewrite(el, strlen(el), set, n, out, sizeof(out) - 1);

	assert_true(len < sizeof(out));
	out[len] = '\0';
	return out;
}

static void test_replace_from_apostrophes(void **state)
{
	struct xmltag_attr a = { "from", "juliet@example.com/balcony" };

	assert_string_equal(rw("<message from='evil@x' to='romeo@y'><body/></message>", &a, 1),
			    "<message from='juliet@example.com/balcony' to='romeo@y'><body/></message>");
}

static void test_replace_from_double_quotes(void **state)
{
	struct xmltag_attr a = { "from", "j@e/r" };

	assert_string_equal(rw("<iq type=\"get\"\n from=\"x'y>z\" id=\"1\"><q from='keep'/></iq>", &a, 1),
			    "<iq from='j@e/r' type=\"get\" id=\"1\"><q from='keep'/></iq>");
}

static void test_add_when_absent(void **state)
{
	struct xmltag_attr a = { "from", "a@b" };

	assert_string_equal(rw("<presence><show>away</show></presence>", &a, 1),
			    "<presence from='a@b'><show>away</show></presence>");
	assert_string_equal(rw("<presence type='unavailable'/>", &a, 1),
			    "<presence from='a@b' type='unavailable'/>");
}

static void test_self_closing(void **state)
{
	struct xmltag_attr a = { "to", "b@c" };

	assert_string_equal(rw("<presence/>", &a, 1), "<presence to='b@c'/>");
	assert_string_equal(rw("<presence to='x' />", &a, 1), "<presence to='b@c' />");
	assert_string_equal(rw("<presence to='x'/>", &a, 1), "<presence to='b@c'/>");
}

static void test_value_escaping(void **state)
{
	struct xmltag_attr a = { "from", "a&b<c>d\"e'f" };

	assert_string_equal(rw("<message/>", &a, 1),
			    "<message from='a&amp;b&lt;c&gt;d&quot;e&apos;f'/>");
}

static void test_several_and_remove(void **state)
{
	struct xmltag_attr set[] = { { "from", "f@x" }, { "to", "t@y" }, { "id", NULL } };

	assert_string_equal(rw("<message id='1' to='old' type='chat' from='old'>x</message>", set, 3),
			    "<message from='f@x' to='t@y' type='chat'>x</message>");
	/* removing only */
	assert_string_equal(rw("<message id='1'/>", &set[2], 1), "<message/>");
}

static void test_prefixed_and_similar_names_kept(void **state)
{
	struct xmltag_attr a = { "from", "f@x" };

	assert_string_equal(rw("<message x:from='1' fromx='2' xmlns:x='urn:x'/>", &a, 1),
			    "<message from='f@x' x:from='1' fromx='2' xmlns:x='urn:x'/>");
}

static void test_nothing_to_do_is_identity(void **state)
{
	const char *el = "<message  to = 'a>b'\tid=\"2\"><b a='c'/>tail</message>";

	assert_string_equal(rw(el, NULL, 0), el);
}

static void test_not_a_start_tag(void **state)
{
	struct xmltag_attr a = { "from", "f" };
	static const char *const bad[] = {
		"", "<", "message/>", "</message>", "<!-- x -->", "<?pi?>", "< message/>",
		"<message", "<message from='x", "<message from='x'", "<message from>", "<message from'x'>",
		"<message from='x'id='y'/>", "<message from=x/>", "<message /", "<message a='1' b",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (xmltag_rewrite(bad[i], strlen(bad[i]), &a, 1, out, sizeof(out)) != 0)
			fail_msg("rewrote: %s", bad[i]);
	}
}

static void test_small_output_buffer(void **state)
{
	struct xmltag_attr a = { "from", "f@x" };
	const char *el = "<presence from='o'/>";
	const char *want = "<presence from='f@x'/>";
	char small[8];

	memset(small, '#', sizeof(small));
	assert_int_equal(xmltag_rewrite(el, strlen(el), &a, 1, small, 4), strlen(want));
	assert_memory_equal(small, "<pre####", 8); /* nothing written past cap */
	assert_int_equal(xmltag_rewrite(el, strlen(el), &a, 1, NULL, 0), strlen(want));
}

static void test_never_reads_past_len(void **state)
{
	/* every prefix of a tag, in an exact-size heap copy: ASan sees any overread */
	const char *el = "<iq type='get' from=\"a'b\" id='x'  /><more/>";
	struct xmltag_attr set[] = { { "from", "f" }, { "id", NULL } };
	size_t n = strlen(el);

	for (size_t k = 0; k <= n; k++) {
		char *copy = malloc(k ? k : 1);
		size_t r;
		assert_non_null(copy);
		memcpy(copy, el, k);
		r = xmltag_rewrite(copy, k, set, 2, out, sizeof(out));
		/* the tag is complete from byte 36 on */
		if (k < 36)
			assert_int_equal(r, 0);
		else
			assert_true(r > 0);
		free(copy);
	}
}

static void test_escape(void **state)
{
	char buf[64];
	size_t n = xml_escape("<a href=\"x\">&'</a>", 18, buf, sizeof(buf));

	assert_int_equal(n, strlen("&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"));
	assert_memory_equal(buf, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;", n);
	assert_int_equal(xml_escape("plain", 5, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "plain", 5);
	assert_int_equal(xml_escape("", 0, buf, sizeof(buf)), 0);
	/* cap respected, full length still returned */
	memset(buf, '#', sizeof(buf));
	assert_int_equal(xml_escape("a&b", 3, buf, 3), 7);
	assert_memory_equal(buf, "a&a#", 4);
	/* UTF-8 and NUL pass through untouched */
	assert_int_equal(xml_escape("\xc3\xa9\0", 3, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "\xc3\xa9\0", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_from_apostrophes),
		cmocka_unit_test(test_replace_from_double_quotes),
		cmocka_unit_test(test_add_when_absent),
		cmocka_unit_test(test_self_closing),
		cmocka_unit_test(test_value_escaping),
		cmocka_unit_test(test_several_and_remove),
		cmocka_unit_test(test_prefixed_and_similar_names_kept),
		cmocka_unit_test(test_nothing_to_do_is_identity),
		cmocka_unit_test(test_not_a_start_tag),
		cmocka_unit_test(test_small_output_buffer),
		cmocka_unit_test(test_never_reads_past_len),
		cmocka_unit_test(test_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
