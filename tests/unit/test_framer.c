/*
 * Unit tests for parser/framer.c: every event, every limit, every restricted
 * construct, and chunking invariance (one byte at a time == whole buffer).
 *
 * The helper run() plays the edge: it keeps the unconsumed input contiguous,
 * feeds it `chunk` bytes at a time, consumes each item and records the
 * events with absolute end offsets.  Consecutive SPACE events are merged,
 * because SPACE is the one event documented to follow the chunking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/framer.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
	    "xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"

static const struct framer_limits LIM = {
	.max_stanza = 65536, .max_depth = 16, .max_attrs = 16, .max_name = 64, .max_value = 1024,
};

struct ev {
	enum framer_event type;
	size_t end;  /* absolute offset just past the item; error: offset of the bad byte */
	uint8_t err;
};

struct run {
	struct ev ev[64];
	size_t n;
};

static void record(struct run *r, enum framer_event t, size_t end, uint8_t err)
{
	if (t == FRAMER_SPACE && r->n > 0 && r->ev[r->n - 1].type == FRAMER_SPACE) {
		r->ev[r->n - 1].end = end;
		return;
	}
	assert_true(r->n < 64);
	r->ev[r->n++] = (struct ev){ t, end, err };
}

/* Scan in[0..len) delivered `chunk` bytes at a time (0: all at once). */
static void run_lim(const char *in, size_t len, size_t chunk, const struct framer_limits *lim,
		    struct run *r)
{
	struct framer f;
	size_t start = 0, avail = 0;

	framer_reset(&f);
	memset(r, 0, sizeof(*r));
	if (chunk == 0)
		chunk = len ? len : 1;
	while (avail < len) {
		avail = avail + chunk < len ? avail + chunk : len;
		for (;;) {
			size_t end = 0;
			enum framer_event e = framer_scan(&f, lim, (const uint8_t *)in + start,
							  avail - start, &end);
			if (e == FRAMER_MORE)
				break;
			if (e == FRAMER_ERROR) {
				record(r, e, start + f.off, f.err);
				return;
			}
			assert_true(end > 0 && end <= avail - start);
			start += end;
			record(r, e, start, 0);
		}
	}
}

static void run(const char *in, size_t chunk, struct run *r)
{
	run_lim(in, strlen(in), chunk, &LIM, r);
}

/* The events of in, in every chunking from 1 to 17 bytes, must equal whole-buffer. */
static void same_any_chunking(const char *in, const struct framer_limits *lim)
{
	struct run whole, part;
	size_t len = strlen(in);

	run_lim(in, len, 0, lim, &whole);
	for (size_t c = 1; c <= 17; c++) {
		run_lim(in, len, c, lim, &part);
		assert_int_equal(whole.n, part.n);
		for (size_t i = 0; i < whole.n; i++) {
			assert_int_equal(whole.ev[i].type, part.ev[i].type);
			assert_int_equal(whole.ev[i].end, part.ev[i].end);
			assert_int_equal(whole.ev[i].err, part.ev[i].err);
		}
	}
}

/* The last event of HDR + body, for error tests. */
static struct ev last_after_header(const char *body)
{
	char buf[8192];
	struct run r;

	snprintf(buf, sizeof(buf), "%s%s", HDR, body);
	run(buf, 0, &r);
	assert_true(r.n >= 1);
	assert_int_equal(r.ev[0].type, FRAMER_HEADER);
	assert_int_equal(r.ev[0].end, strlen(HDR));
	return r.ev[r.n - 1];
}

static void expect_error(const char *body, uint8_t err)
{
	struct ev e = last_after_header(body);

	assert_int_equal(e.type, FRAMER_ERROR);
	assert_int_equal(e.err, err);
}

static void expect_stanza(const char *body)
{
	struct ev e = last_after_header(body);

	assert_int_equal(e.type, FRAMER_STANZA);
	assert_int_equal(e.end, strlen(HDR) + strlen(body));
}

/* --- events -------------------------------------------------------------- */

static void test_header_with_decl_and_leading_space(void **state)
{
	const char *in = " \r\n\t" HDR;
	struct run r;

	run(in, 0, &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].type, FRAMER_HEADER);
	assert_int_equal(r.ev[0].end, strlen(in));
}

static void test_header_without_decl(void **state)
{
	const char *in = "<stream:stream xmlns='jabber:client'>";
	struct run r;

	run(in, 0, &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].type, FRAMER_HEADER);
	assert_int_equal(r.ev[0].end, strlen(in));
}

static void test_header_incomplete_is_more(void **state)
{
	struct run r;

	run("<?xml version='1.0'?><stream:stream xmlns='jabber:client'", 0, &r);
	assert_int_equal(r.n, 0);
}

static void test_keepalive_reported_at_end_of_input(void **state)
{
	struct run r;

	run(HDR " ", 0, &r);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[1].type, FRAMER_SPACE);
	assert_int_equal(r.ev[1].end, strlen(HDR) + 1);
}

static void test_space_before_stanza(void **state)
{
	const char *in = HDR "\n\n<iq type='get' id='1'/>";
	struct run r;

	run(in, 0, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ev[1].type, FRAMER_SPACE);
	assert_int_equal(r.ev[1].end, strlen(HDR) + 2);
	assert_int_equal(r.ev[2].type, FRAMER_STANZA);
	assert_int_equal(r.ev[2].end, strlen(in));
}

static void test_three_stanza_pipeline(void **state)
{
	const char *s1 = "<message to='a@b'><body>one</body></message>";
	const char *s2 = "<presence/>";
	const char *s3 = "<iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>";
	char in[1024];
	struct run r;
	size_t h = strlen(HDR);

	snprintf(in, sizeof(in), "%s%s%s%s", HDR, s1, s2, s3);
	run(in, 0, &r);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.ev[1].type, FRAMER_STANZA);
	assert_int_equal(r.ev[1].end, h + strlen(s1));
	assert_int_equal(r.ev[2].type, FRAMER_STANZA);
	assert_int_equal(r.ev[2].end, h + strlen(s1) + strlen(s2));
	assert_int_equal(r.ev[3].type, FRAMER_STANZA);
	assert_int_equal(r.ev[3].end, strlen(in));
}

static void test_close_tag(void **state)
{
	struct run r;

	run(HDR "<presence/></stream:stream >", 0, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ev[2].type, FRAMER_CLOSE);
	assert_int_equal(r.ev[2].end, strlen(HDR) + strlen("<presence/></stream:stream >"));
}

static void test_after_close_only_space(void **state)
{
	struct run r;

	run(HDR "</stream:stream> \n", 0, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ev[1].type, FRAMER_CLOSE);
	assert_int_equal(r.ev[2].type, FRAMER_SPACE);
	expect_error("</stream:stream><presence/>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_nested_and_end_tag_spaces(void **state)
{
	expect_stanza("<a><b><c/></b ><d x='1' y=\"2\" ></d\t></a\n>");
}

static void test_gt_in_attribute_values(void **state)
{
	expect_stanza("<message to='a>b' id=\"x>/y\" type = 'c\"hat'><body a='/>'>x</body></message>");
}

static void test_self_closing_with_spaces(void **state)
{
	expect_stanza("<presence to='a' />");
}

static void test_cdata_not_scanned(void **state)
{
	expect_stanza("<message><body><![CDATA[<a> </b> <!-- &foo; <?pi?> ]]></body></message>");
	expect_stanza("<m><![CDATA[x]]]></m>");
	expect_stanza("<m><![CDATA[]] > ] ]>]]></m>");
	expect_stanza("<m><![CDATA[]]></m>");
}

static void test_cdata_at_stream_level(void **state)
{
	expect_error("<![CDATA[ ]]>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_cdata_bad_keyword(void **state)
{
	expect_error("<m><![CDATX[x]]></m>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_text_at_stream_level(void **state)
{
	expect_error("hello", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<presence/>x", FRAMER_E_NOT_WELL_FORMED);
	expect_error("&amp;", FRAMER_E_NOT_WELL_FORMED);
}

static void test_nul_at_stream_level(void **state)
{
	const char in[] = HDR " \0";
	struct run r;

	run_lim(in, sizeof(in) - 1, 0, &LIM, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_ERROR);
	assert_int_equal(r.ev[r.n - 1].err, FRAMER_E_NOT_WELL_FORMED);
	assert_int_equal(r.ev[r.n - 1].end, sizeof(in) - 2);
}

static void test_garbage_before_header(void **state)
{
	struct run r;

	run("hello<stream:stream>", 0, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].end, 0);
	run("</stream:stream>", 0, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	run("<stream:stream/>", 0, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_NOT_WELL_FORMED);
}

/* --- restricted XML ------------------------------------------------------ */

static void test_restricted_pi(void **state)
{
	struct run r;

	expect_error("<?pi data?>", FRAMER_E_RESTRICTED);
	expect_error("<m><?pi?></m>", FRAMER_E_RESTRICTED);
	expect_error("<?xml version='1.0'?>", FRAMER_E_RESTRICTED); /* not at stream start */
	run("<?xml version='1.0'?><?xml version='1.0'?><s>", 0, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
	run("<?xml-stylesheet href='a'?><s>", 0, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
	run("<?xml version='1.0'?><?pi?><s>", 0, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
}

static void test_restricted_comment(void **state)
{
	struct run r;

	expect_error("<!-- hi -->", FRAMER_E_RESTRICTED);
	expect_error("<m><!-- hi --></m>", FRAMER_E_RESTRICTED);
	run("<!--x--><s>", 0, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
	/* "<!-" followed by something else is just broken */
	expect_error("<m><!-x></m>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_restricted_dtd(void **state)
{
	struct run r;

	run("<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'b'>]><s>", 0, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
	expect_error("<m><!ENTITY x 'y'></m>", FRAMER_E_RESTRICTED);
	expect_error("<!DOCTYPE x>", FRAMER_E_RESTRICTED);
	expect_error("<m><!1></m>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_restricted_entities(void **state)
{
	expect_error("<m>&foo;</m>", FRAMER_E_RESTRICTED);
	expect_error("<m a='&foo;'/>", FRAMER_E_RESTRICTED);
	expect_error("<m a='&lta;'/>", FRAMER_E_RESTRICTED);
	expect_error("<m>&nbsp;</m>", FRAMER_E_RESTRICTED);
}

static void test_restricted_entity_in_header(void **state)
{
	struct run r;

	run("<stream:stream to='&foo;'>", 0, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_RESTRICTED);
}

static void test_allowed_references(void **state)
{
	expect_stanza("<m a='&lt;&gt;&amp;&quot;&apos;&#65;&#x41;'>&lt;&gt;&amp;&quot;&apos;&#10;&#x1F600;</m>");
}

static void test_bad_reference_syntax(void **state)
{
	expect_error("<m>&;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&#;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&#x;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&#X41;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&#12a;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&#xfg;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&a b;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m>&1;</m>", FRAMER_E_NOT_WELL_FORMED);
	expect_error("<m a='&'/>", FRAMER_E_NOT_WELL_FORMED);
}

static void test_reference_too_long(void **state)
{
	char body[128];

	snprintf(body, sizeof(body), "<m>&#%s65;</m>", "0000000000000000000000000000000000");
	expect_error(body, FRAMER_E_POLICY);
	snprintf(body, sizeof(body), "<m>&#%s65;</m>", "00000000000000000000000000000");
	expect_stanza(body);
}

/* --- malformed tags -------------------------------------------------------- */

static void test_malformed_tags(void **state)
{
	static const char *const bad[] = {
		"< a/>", "<a b>", "<a b/>", "</>", "<a/ >", "<a b='1'c='2'/>", "<a b=1/>",
		"<a b='<'/>", "<a<", "<a></ a>", "<a></a b>", "<a =''/>", "<a b=='1'/>",
		"<1a/>", "<a>< </a>", "<a!/>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ev e = last_after_header(bad[i]);
		if (e.type != FRAMER_ERROR || e.err != FRAMER_E_NOT_WELL_FORMED)
			fail_msg("accepted: %s", bad[i]);
	}
}

static void test_error_is_sticky_and_located(void **state)
{
	struct framer f;
	size_t end;
	const char *in = HDR "<a b>";
	size_t h = strlen(HDR);

	framer_reset(&f);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)in, strlen(in), &end), FRAMER_HEADER);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)in + h, strlen(in) - h, &end),
			 FRAMER_ERROR);
	assert_int_equal(f.off, 4); /* the '>' */
	assert_int_equal(f.err, FRAMER_E_NOT_WELL_FORMED);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)"<a/>", 4, &end), FRAMER_ERROR);
	assert_string_equal(framer_error_str(f.err), "not-well-formed");
	assert_string_equal(framer_error_str(FRAMER_E_RESTRICTED), "restricted-xml");
	assert_string_equal(framer_error_str(FRAMER_E_POLICY), "policy-violation");
}

/* --- limits -------------------------------------------------------------- */

static void test_limit_stanza_bytes(void **state)
{
	struct framer_limits lim = LIM;
	const char *st = "<message><body>0123456789</body></message>";
	char in[512];
	struct run r;

	/* a short header, so that only the stanza meets the limit */
	snprintf(in, sizeof(in), "<s>%s", st);
	lim.max_stanza = (uint32_t)strlen(st); /* exactly the stanza's size: accepted */
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[1].type, FRAMER_STANZA);
	lim.max_stanza--; /* one byte less: refused at the byte that does not fit */
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[1].type, FRAMER_ERROR);
	assert_int_equal(r.ev[1].err, FRAMER_E_POLICY);
	assert_int_equal(r.ev[1].end, 3 + lim.max_stanza);
	/* whitespace items are not limited (they are reported per read) */
	lim.max_stanza = 4;
	run_lim("<s>          <a/>", 17, 0, &lim, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ev[1].type, FRAMER_SPACE);
	assert_int_equal(r.ev[2].type, FRAMER_STANZA);
}

static void test_limit_stanza_cut_early(void **state)
{
	/* a never-ending stanza is cut as soon as it holds max_stanza bytes */
	struct framer_limits lim = LIM;
	char in[4096];
	struct run r;
	size_t h = strlen(HDR);

	lim.max_stanza = 200;
	memset(in, 'x', sizeof(in));
	memcpy(in, HDR, h);
	memcpy(in + h, "<message><body>", 15);
	run_lim(in, h + 400, 7, &lim, &r); /* no end tag at all */
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_ERROR);
	assert_int_equal(r.ev[r.n - 1].err, FRAMER_E_POLICY);
	assert_int_equal(r.ev[r.n - 1].end, h + 200);
}

static void test_limit_header_bytes(void **state)
{
	struct framer_limits lim = LIM;
	struct run r;

	lim.max_stanza = 20;
	run_lim(HDR, strlen(HDR), 0, &lim, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
	assert_int_equal(r.ev[0].end, 20);
}

static void test_limit_depth(void **state)
{
	struct framer_limits lim = LIM;
	char in[512];
	struct run r;

	lim.max_depth = 3;
	snprintf(in, sizeof(in), "%s%s", HDR, "<a><b><c/></b></a>");
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_STANZA);
	snprintf(in, sizeof(in), "%s%s", HDR, "<a><b><c><d/></c></b></a>");
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_ERROR);
	assert_int_equal(r.ev[r.n - 1].err, FRAMER_E_POLICY);
	assert_int_equal(r.ev[r.n - 1].end, strlen(HDR) + 10); /* the 'd' */
}

static void test_limit_attrs(void **state)
{
	struct framer_limits lim = LIM;
	char in[512];
	struct run r;

	lim.max_attrs = 3;
	snprintf(in, sizeof(in), "<s>%s", "<a x='1' y='2' z='3'/>");
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_STANZA);
	snprintf(in, sizeof(in), "<s>%s", "<a><b x='1' y='2' z='3' w='4'/></a>");
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_ERROR);
	assert_int_equal(r.ev[r.n - 1].err, FRAMER_E_POLICY);
	/* the header counts too: it has 4 attributes */
	lim.max_attrs = 3;
	run_lim(HDR, strlen(HDR), 0, &lim, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
}

static void test_limit_names(void **state)
{
	struct framer_limits lim = LIM;
	char in[512];
	struct run r;
	static const char *const bad[] = { "<abcdefg/>", "<a abcdefg='1'/>", "<a></abcdefg>" };

	lim.max_name = 6;
	run_lim("<s><abcdef abcdef='1'></abcdef>", 31, 0, &lim, &r);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ev[1].type, FRAMER_STANZA);
	for (size_t i = 0; i < 3; i++) {
		snprintf(in, sizeof(in), "<s>%s", bad[i]);
		run_lim(in, strlen(in), 0, &lim, &r);
		assert_int_equal(r.ev[r.n - 1].type, FRAMER_ERROR);
		assert_int_equal(r.ev[r.n - 1].err, FRAMER_E_POLICY);
		assert_int_equal(in[r.ev[r.n - 1].end], 'g'); /* the 7th byte */
	}
	/* the header's names count too */
	run_lim("<abcdefg>", 9, 0, &lim, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
	run_lim("<s abcdefg='1'>", 15, 0, &lim, &r);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
}

static void test_limit_value(void **state)
{
	struct framer_limits lim = LIM;
	char in[512];
	struct run r;

	lim.max_value = 5;
	run_lim("<s a='12345' b=\"&amp;\">", strlen("<s a='12345' b=\"&amp;\">"), 0, &lim, &r);
	assert_int_equal(r.ev[0].type, FRAMER_HEADER);
	run_lim("<s a='123456'>", strlen("<s a='123456'>"), 0, &lim, &r);
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
	assert_int_equal(r.ev[0].end, 11);
	run_lim("<s a='1&amp;'>", strlen("<s a='1&amp;'>"), 0, &lim, &r); /* raw bytes count */
	assert_int_equal(r.ev[0].type, FRAMER_ERROR);
	assert_int_equal(r.ev[0].err, FRAMER_E_POLICY);
	lim.max_value = 1024;
	snprintf(in, sizeof(in), "%s<a b='%0300d'/>", HDR, 0);
	run_lim(in, strlen(in), 0, &lim, &r);
	assert_int_equal(r.ev[r.n - 1].type, FRAMER_STANZA);
}

/* --- chunking and restart ------------------------------------------------ */

static void test_byte_at_a_time_equals_whole(void **state)
{
	static const char *const streams[] = {
		"  " HDR " <message to='a>b' id=\"q'\"><body>x &amp; y &#x41;<![CDATA[<a>]]]]></body>"
		"</message>\n\t<presence><priority>1</priority></presence> <iq/></stream:stream > ",
		HDR "<a><b c='1'/><![CDATA[ ]] ]>]]><d>&lt;</d></a><e/>",
		HDR "<m>&foo;</m>",
		HDR "<m><!-- c --></m>",
		HDR "<a b='1' c>",
		HDR "<a>" "<b><c><d><e><f><g><h><i><j><k><l><m><n><o><p><q/></p></o></n></m></l>"
		    "</k></j></i></h></g></f></e></d></c></b></a>",
	};
	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++)
		same_any_chunking(streams[i], &LIM);
}

static void test_byte_at_a_time_manual(void **state)
{
	/* one framer, the buffer grows by one byte per call */
	const char *in = HDR "<message><body>hi</body></message> ";
	struct framer f;
	size_t start = 0, end, n = strlen(in);
	int header = 0, stanza = 0, space = 0;

	framer_reset(&f);
	for (size_t avail = 1; avail <= n; avail++) {
		enum framer_event e;
		while ((e = framer_scan(&f, &LIM, (const uint8_t *)in + start, avail - start, &end)) !=
		       FRAMER_MORE) {
			assert_int_not_equal(e, FRAMER_ERROR);
			if (e == FRAMER_HEADER) {
				assert_int_equal(start + end, strlen(HDR));
				header++;
			}
			if (e == FRAMER_STANZA) {
				assert_int_equal(start + end, n - 1);
				stanza++;
			}
			if (e == FRAMER_SPACE)
				space++;
			start += end;
			if (start == avail)
				break;
		}
	}
	assert_int_equal(header, 1);
	assert_int_equal(stanza, 1);
	assert_int_equal(space, 1);
}

static void test_stream_restart(void **state)
{
	const char *a = HDR "<auth mechanism='PLAIN'>AGFAYgBj</auth>";
	const char *b = "\n" HDR "<iq type='set' id='b'/>";
	struct framer f;
	size_t end, h = strlen(HDR);

	framer_reset(&f);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)a, strlen(a), &end), FRAMER_HEADER);
	assert_int_equal(end, h);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)a + h, strlen(a) - h, &end),
			 FRAMER_STANZA);
	/* SASL success: a new stream, the XML declaration is allowed again */
	framer_reset(&f);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)b, strlen(b), &end), FRAMER_HEADER);
	assert_int_equal(end, h + 1);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)b + h + 1, strlen(b) - h - 1, &end),
			 FRAMER_STANZA);
	/* without a reset, an XML declaration in the stream is a PI */
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)HDR, h, &end), FRAMER_ERROR);
	assert_int_equal(f.err, FRAMER_E_RESTRICTED); /* its XML declaration */
}

static void test_contract_violation(void **state)
{
	struct framer f;
	size_t end;

	framer_reset(&f);
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)"<stream", 7, &end), FRAMER_MORE);
	assert_int_equal(f.off, 7);
	/* the caller dropped bytes of an unfinished item */
	assert_int_equal(framer_scan(&f, &LIM, (const uint8_t *)"<str", 4, &end), FRAMER_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_with_decl_and_leading_space),
		cmocka_unit_test(test_header_without_decl),
		cmocka_unit_test(test_header_incomplete_is_more),
		cmocka_unit_test(test_keepalive_reported_at_end_of_input),
		cmocka_unit_test(test_space_before_stanza),
		cmocka_unit_test(test_three_stanza_pipeline),
		cmocka_unit_test(test_close_tag),
		cmocka_unit_test(test_after_close_only_space),
		cmocka_unit_test(test_nested_and_end_tag_spaces),
		cmocka_unit_test(test_gt_in_attribute_values),
		cmocka_unit_test(test_self_closing_with_spaces),
		cmocka_unit_test(test_cdata_not_scanned),
		cmocka_unit_test(test_cdata_at_stream_level),
		cmocka_unit_test(test_cdata_bad_keyword),
		cmocka_unit_test(test_text_at_stream_level),
		cmocka_unit_test(test_nul_at_stream_level),
		cmocka_unit_test(test_garbage_before_header),
		cmocka_unit_test(test_restricted_pi),
		cmocka_unit_test(test_restricted_comment),
		cmocka_unit_test(test_restricted_dtd),
		cmocka_unit_test(test_restricted_entities),
		cmocka_unit_test(test_restricted_entity_in_header),
		cmocka_unit_test(test_allowed_references),
		cmocka_unit_test(test_bad_reference_syntax),
		cmocka_unit_test(test_reference_too_long),
		cmocka_unit_test(test_malformed_tags),
		cmocka_unit_test(test_error_is_sticky_and_located),
		cmocka_unit_test(test_limit_stanza_bytes),
		cmocka_unit_test(test_limit_stanza_cut_early),
		cmocka_unit_test(test_limit_header_bytes),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_limit_attrs),
		cmocka_unit_test(test_limit_names),
		cmocka_unit_test(test_limit_value),
		cmocka_unit_test(test_byte_at_a_time_equals_whole),
		cmocka_unit_test(test_byte_at_a_time_manual),
		cmocka_unit_test(test_stream_restart),
		cmocka_unit_test(test_contract_violation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
