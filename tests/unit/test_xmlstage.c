/*
 * Unit tests for parser/xmlstage.c: header and stanza extraction, restricted
 * XML, error mapping, recovery after errors, and stream-context switching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/xmlstage.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
#define C2S "xmlns='jabber:client' xmlns:stream='" NS_STREAMS "'"
#define S2S "xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='" NS_STREAMS "'"

static int setup(void **state)
{
	*state = xmlstage_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	xmlstage_free(*state);
	return 0;
}

static int stanza(struct xmlstage *xs, const char *decls, const char *s, struct xs_stanza *out)
{
	return xmlstage_stanza(xs, decls, decls ? strlen(decls) : 0, s, strlen(s), out);
}

#define assert_str(xsstr, lit)                                                           \
	do {                                                                             \
		assert_string_equal((xsstr).p, (lit));                                   \
		assert_int_equal((xsstr).len, strlen(lit));                              \
	} while (0)

/* --- header -------------------------------------------------------------- */

static void test_header_fields(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	const char *in = "<?xml version='1.0' encoding='UTF-8'?>"
			 "<stream:stream xmlns:stream='" NS_STREAMS "' xmlns='jabber:client' "
			 "to='example.com' version='1.0' xml:lang='en' id='&amp;x'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	assert_str(h.name_ns, NS_STREAMS);
	assert_str(h.local, "stream");
	assert_str(h.prefix, "stream");
	assert_str(h.default_ns, "jabber:client");
	assert_str(h.to, "example.com");
	assert_str(h.version, "1.0");
	assert_str(h.lang, "en");
	assert_str(h.id, "&x");
	assert_str(h.from, "");
	assert_true(h.has_to);
	assert_true(h.has_version);
	/* canonical order: the default namespace first, then by prefix */
	assert_str(h.ns_decls, C2S);
}

static void test_header_minimal_and_other_prefix(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	const char *in = "<s:stream xmlns:s='" NS_STREAMS "' xmlns:b='urn:b' xmlns:a='a&apos;&lt;'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	assert_str(h.name_ns, NS_STREAMS);
	assert_str(h.prefix, "s");
	assert_str(h.default_ns, "");
	assert_false(h.has_to);
	assert_false(h.has_version);
	/* values are re-escaped for use as attribute text */
	assert_str(h.ns_decls, "xmlns:a='a&apos;&lt;' xmlns:b='urn:b' xmlns:s='" NS_STREAMS "'");
}

static void test_header_wrong_namespace_is_reported_not_refused(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	const char *in = "<stream xmlns='jabber:client'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	assert_str(h.name_ns, "jabber:client");
	assert_str(h.local, "stream");
	assert_str(h.prefix, "");
}

static void test_header_without_declarations(void **state)
{
	/* "" would mean the c2s default to xmlstage_stanza(): never returned */
	struct xmlstage *xs = *state;
	struct xs_header h;
	struct xs_stanza s;
	char decls[64];
	const char *in = "<stream to='a'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	assert_str(h.ns_decls, "xmlns=''");
	memcpy(decls, h.ns_decls.p, h.ns_decls.len + 1);
	assert_int_equal(stanza(xs, decls, "<stream:error/>", &s), XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(stanza(xs, decls, "<message/>", &s), XMLSTAGE_OK);
	assert_str(s.ns, "");
}

static void test_header_leading_space_before_decl(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	const char *in = "\n \n<?xml version='1.0'?><stream:stream xmlns:stream='" NS_STREAMS "'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	assert_str(h.local, "stream");
}

static void test_header_errors(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
		{ "<?xml version='1.0'?><!DOCTYPE s><stream:stream xmlns:stream='" NS_STREAMS "'>",
		  XMLSTAGE_E_RESTRICTED },
		{ "<!-- hi --><stream:stream xmlns:stream='" NS_STREAMS "'>", XMLSTAGE_E_RESTRICTED },
		{ "<?pi x?><stream:stream xmlns:stream='" NS_STREAMS "'>", XMLSTAGE_E_RESTRICTED },
		/* an unbound prefix violates Namespaces in XML: RFC 6120 §4.9.3.13 */
		{ "<stream:stream xmlns='jabber:client'>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<stream:stream xmlns:stream='" NS_STREAMS "' to='&foo;'>", XMLSTAGE_E_RESTRICTED },
		{ "<stream:stream xmlns:stream='" NS_STREAMS "' to='a' to='b'>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<stream:stream xmlns:stream='" NS_STREAMS "' to='\xff'>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<?xml version='1.0'?>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<stream:stream xmlns:stream='" NS_STREAMS "'/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "\xef\xbb\xbf<stream:stream xmlns:stream='" NS_STREAMS "'>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "   ", XMLSTAGE_E_NOT_WELL_FORMED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = xmlstage_header(xs, cases[i].in, strlen(cases[i].in), &h);
		if (rc != cases[i].rc)
			fail_msg("case %zu: got %s, want %s", i, xmlstage_error_str(rc),
				 xmlstage_error_str(cases[i].rc));
	}
}

static void test_header_nul_is_not_utf16(void **state)
{
	/* "\0<\0s\0>" is a valid UTF-16BE document to expat, even with UTF-8 forced */
	struct xmlstage *xs = *state;
	struct xs_header h;
	static const char in[] = "\0<\0s\0>";
	struct xs_stanza s;

	/* ...and so is "<\0s\0>\0" as UTF-16LE (found by fuzz_framer) */
	static const char le[] = " <\0s\0>\0";

	assert_int_equal(xmlstage_header(xs, in, sizeof(in) - 1, &h), XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(xmlstage_stanza(xs, NULL, 0, in, sizeof(in) - 1, &s),
			 XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(xmlstage_header(xs, le, sizeof(le) - 1, &h), XMLSTAGE_E_NOT_WELL_FORMED);
	/* inside a stream a NUL is just an invalid byte */
	assert_int_equal(xmlstage_stanza(xs, NULL, 0, le + 1, sizeof(le) - 2, &s),
			 XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(xmlstage_stanza(xs, NULL, 0, "<a/>", 4, &s), XMLSTAGE_OK);
}

static void test_header_then_stanza_in_same_context(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	struct xs_stanza s;
	char decls[256];
	const char *in = "<x:stream xmlns:x='" NS_STREAMS "' xmlns='jabber:client'>";

	assert_int_equal(xmlstage_header(xs, in, strlen(in), &h), XMLSTAGE_OK);
	memcpy(decls, h.ns_decls.p, h.ns_decls.len + 1);
	/* a nonza in the connection's own prefix for the streams namespace */
	assert_int_equal(stanza(xs, decls, "<x:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
					    "</x:features>", &s),
			 XMLSTAGE_OK);
	assert_str(s.ns, NS_STREAMS);
	assert_str(s.local, "features");
	assert_str(s.child_ns, "urn:ietf:params:xml:ns:xmpp-bind");
	/* the default c2s context does not know the x prefix */
	assert_int_equal(stanza(xs, NULL, "<x:features/>", &s), XMLSTAGE_E_NOT_WELL_FORMED);
}

/* --- stanzas ------------------------------------------------------------- */

static void test_routing_attributes(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	const char *in = "<message to='juliet@example.com/balcony' from=\"romeo@example.net\" "
			 "type='chat' id='m&amp;1&#x41;&lt;' xml:lang='en' a:to='no' xmlns:a='urn:a'>"
			 "<body>hi</body></message>";

	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_str(s.ns, "jabber:client");
	assert_str(s.local, "message");
	assert_str(s.to, "juliet@example.com/balcony");
	assert_str(s.from, "romeo@example.net");
	assert_str(s.type, "chat");
	assert_str(s.id, "m&1A<");
	assert_str(s.lang, "en");
	assert_true(s.has_to && s.has_from && s.has_type && s.has_id);
	assert_str(s.child_ns, "jabber:client");
	assert_str(s.child_local, "body");
	assert_int_equal(s.children, 1);
	assert_str(s.text, "");
	assert_int_equal(s.start_tag_end, strchr(in, '>') - in + 1);
}

static void test_absent_attributes(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;

	assert_int_equal(stanza(xs, C2S, "<presence/>", &s), XMLSTAGE_OK);
	assert_false(s.has_to || s.has_from || s.has_type || s.has_id);
	assert_str(s.to, "");
	assert_str(s.child_local, "");
	assert_int_equal(s.children, 0);
	assert_int_equal(s.start_tag_end, strlen("<presence/>"));
}

static void test_start_tag_end_with_gt_in_values(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	const char *in = "<iq to='a>b' id=\"x/>\"\n type='get'><query xmlns='jabber:iq:roster'/></iq>";
	const char *gt = strstr(in, "'get'>");

	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_int_equal(s.start_tag_end, (size_t)(gt - in) + 6);
	assert_str(s.child_ns, "jabber:iq:roster");
	assert_str(s.child_local, "query");
	assert_str(s.to, "a>b");
	/* and again after other stanzas: offsets are relative to each item */
	assert_int_equal(stanza(xs, C2S, "<presence/>", &s), XMLSTAGE_OK);
	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_int_equal(s.start_tag_end, (size_t)(gt - in) + 6);
}

static void test_children_and_text(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;

	assert_int_equal(stanza(xs, C2S, "<message><x xmlns='urn:x'><y/></x><body>b</body>"
				      "<thread>t</thread></message>", &s),
			 XMLSTAGE_OK);
	assert_int_equal(s.children, 3);
	assert_str(s.child_ns, "urn:x");
	assert_str(s.child_local, "x");
	assert_str(s.text, "");
	assert_int_equal(stanza(xs, C2S, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
				      "mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQ=&#10;<![CDATA[x]]></auth>", &s),
			 XMLSTAGE_OK);
	assert_str(s.ns, "urn:ietf:params:xml:ns:xmpp-sasl");
	assert_str(s.text, "biwsbj1qdWxpZXQ=\nx");
}

static void test_text_cap(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	size_t n = 20000;
	char *in = malloc(n + 64);

	assert_non_null(in);
	strcpy(in, "<auth>");
	memset(in + 6, 'A', n);
	strcpy(in + 6 + n, "</auth>");
	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_E_POLICY);
	/* exactly 16 KiB fits */
	strcpy(in + 6 + 16384, "</auth>");
	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_int_equal(s.text.len, 16384);
	/* text of children does not count against it */
	strcpy(in, "<iq><a>");
	memset(in + 7, 'A', n);
	strcpy(in + 7 + n, "</a></iq>");
	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_int_equal(s.text.len, 0);
	free(in);
}

static void test_priority(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	static const struct {
		const char *in;
		int prio;
	} cases[] = {
		{ "<presence><priority>5</priority></presence>", 5 },
		{ "<presence><show>away</show><priority> -1\n</priority></presence>", -1 },
		{ "<presence><priority>127</priority></presence>", 127 },
		{ "<presence><priority>-128</priority></presence>", -128 },
		{ "<presence><priority>+7</priority></presence>", 7 },
		{ "<presence><priority>128</priority></presence>", 0 },
		{ "<presence><priority>-129</priority></presence>", 0 },
		{ "<presence><priority>99999999999999999999</priority></presence>", 0 },
		{ "<presence><priority>abc</priority></presence>", 0 },
		{ "<presence><priority>1 2</priority></presence>", 0 },
		{ "<presence><priority></priority></presence>", 0 },
		{ "<presence><priority>-</priority></presence>", 0 },
		{ "<presence><priority>1<x/></priority></presence>", 0 },
		{ "<presence><priority>&#x33;</priority></presence>", 3 },
		{ "<presence><priority>4</priority><priority>9</priority></presence>", 4 },
		{ "<presence><priority xmlns='urn:other'>9</priority></presence>", 0 },
		{ "<presence><x><priority>9</priority></x></presence>", 0 },
		{ "<message><priority>9</priority></message>", 0 },
		{ "<presence/>", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(stanza(xs, C2S, cases[i].in, &s), XMLSTAGE_OK);
		if (s.priority != cases[i].prio)
			fail_msg("%s: priority %d, want %d", cases[i].in, s.priority, cases[i].prio);
	}
}

static void test_restricted(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	static const char *const cases[] = {
		"<message><!-- c --></message>",
		"<message><?pi x?></message>",
		"<message>&foo;</message>",
		"<message to='&foo;'/>",
		"<message><body>&nbsp;</body></message>",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = stanza(xs, C2S, cases[i], &s);
		if (rc != XMLSTAGE_E_RESTRICTED)
			fail_msg("%s: %s", cases[i], xmlstage_error_str(rc));
	}
}

static void test_errors(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
		{ "<foo:message/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message foo:to='a'/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><x:y/></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><body>\xc3\x28</body></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><body>\xed\xa0\x80</body></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><body>\x01</body></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><body>&#0;</body></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message><body></message></body>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message to='a' to='b'/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message xmlns:a='urn:x' xmlns:b='urn:x' a:t='1' b:t='2'/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message>]]></message>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<a/><b/>", XMLSTAGE_E_NOT_WELL_FORMED },     /* two elements in one item */
		{ "<a/> ", XMLSTAGE_E_NOT_WELL_FORMED },        /* text after the element */
		{ "<message><body>", XMLSTAGE_E_NOT_WELL_FORMED }, /* does not end */
		{ "</stream>", XMLSTAGE_E_NOT_WELL_FORMED },    /* closes the stream */
		{ "", XMLSTAGE_E_NOT_WELL_FORMED },
		{ " <a/>", XMLSTAGE_E_NOT_WELL_FORMED },
		{ "<message xmlns:xml='urn:not-xml'/>", XMLSTAGE_E_NOT_WELL_FORMED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = stanza(xs, C2S, cases[i].in, &s);
		if (rc != cases[i].rc)
			fail_msg("%s: got %s, want %s", cases[i].in, xmlstage_error_str(rc),
				 xmlstage_error_str(cases[i].rc));
		/* every error leaves the stage ready for the next stanza */
		assert_int_equal(stanza(xs, C2S, "<presence type='probe'/>", &s), XMLSTAGE_OK);
		assert_str(s.type, "probe");
	}
}

/* The first grandchild's text: the resource a bind request asks for. */
static void test_leaf_text(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza st;
	char *big;

	assert_int_equal(stanza(xs, NULL, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
				"<resource>desk &amp; top</resource></bind></iq>", &st), XMLSTAGE_OK);
	assert_str(st.leaf_text, "desk & top");
	/* only the first child's first child counts */
	assert_int_equal(stanza(xs, NULL, "<iq type='set' id='b'><a/><b><resource>x</resource></b></iq>", &st),
			 XMLSTAGE_OK);
	assert_str(st.leaf_text, "");
	assert_int_equal(stanza(xs, NULL, "<iq type='set' id='b'><bind><resource>r1</resource>"
				"<resource>r2</resource></bind></iq>", &st), XMLSTAGE_OK);
	assert_str(st.leaf_text, "r1");
	assert_int_equal(stanza(xs, NULL, "<iq type='set' id='b'><bind/></iq>", &st), XMLSTAGE_OK);
	assert_str(st.leaf_text, "");
	/*
	 * over 4 KiB: truncated, not an error, because any stanza's first
	 * grandchild lands here (a long XHTML-IM body must not close the stream);
	 * a 4096-byte resource is still refused by jid_resource_valid()
	 */
	big = malloc(6000);
	assert_non_null(big);
	strcpy(big, "<iq type='set' id='b'><bind><resource>");
	memset(big + strlen(big), 'r', 5000);
	strcpy(big + 38 + 5000, "</resource></bind></iq>");
	assert_int_equal(stanza(xs, NULL, big, &st), XMLSTAGE_OK);
	assert_int_equal(st.leaf_text.len, 4096);
	assert_int_equal(strlen(st.leaf_text.p), 4096);
	free(big);
	big = malloc(6000);
	assert_non_null(big);
	strcpy(big, "<message><html><body>");
	memset(big + strlen(big), 't', 5000);
	strcpy(big + 21 + 5000, "</body></html></message>");
	assert_int_equal(stanza(xs, NULL, big, &st), XMLSTAGE_OK);
	free(big);
	/* and the next stanza is fine again */
	assert_int_equal(stanza(xs, NULL, "<iq type='set' id='c'><bind><resource>ok</resource></bind></iq>", &st),
			 XMLSTAGE_OK);
	assert_str(st.leaf_text, "ok");
}

static void test_error_strings(void **state)
{
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_NOT_WELL_FORMED), "not-well-formed");
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_RESTRICTED), "restricted-xml");
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_INVALID_NS), "invalid-namespace");
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_BAD_FORMAT), "bad-format");
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_POLICY), "policy-violation");
	assert_string_equal(xmlstage_error_str(XMLSTAGE_E_BAD_NS_PREFIX), "bad-namespace-prefix");
}

/*
 * RFC 6120: a prefix bound nowhere violates Namespaces in XML (§4.9.3.13
 * not-well-formed); one the sender bound on its own stream header is legal in
 * its stream but unsupported in a stanza we forward byte for byte (§4.9.3.2
 * bad-namespace-prefix).  Regression: both used to be bad-namespace-prefix.
 */
static void test_fwd_unbound_prefix(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_header h;
	struct xs_stanza s;
	char own[256];
	const char *hdr = "<stream:stream xmlns='jabber:client' xmlns:stream='" NS_STREAMS "' "
			  "xmlns:foo='urn:example:foo' to='a' version='1.0'>";
	const char *plain = "<stream:stream xmlns:stream='" NS_STREAMS "' xmlns='jabber:client' to='a'>";
	static const char *bound_by_header[] = {
		"<message><foo:x/></message>",
		"<message foo:a='1'/>",
		"<foo:message/>",
		"<message><x xmlns='urn:y' foo:a='1'/></message>",
	};
	static const char *bound_nowhere[] = {
		"<message><x:y/></message>",
		"<x:bar/>",
		"<message bar:a='1'/>",
		"<message><foo:x/><x:y/></message>",
	};

	/* a header with only the defaults spells them as XMLSTAGE_C2S_DECLS, in any order */
	assert_int_equal(xmlstage_header(xs, plain, strlen(plain), &h), XMLSTAGE_OK);
	assert_str(h.ns_decls, XMLSTAGE_C2S_DECLS);
	assert_int_equal(xmlstage_header(xs, hdr, strlen(hdr), &h), XMLSTAGE_OK);
	assert_true(h.ns_decls.len < sizeof(own));
	memcpy(own, h.ns_decls.p, h.ns_decls.len + 1);
	for (size_t i = 0; i < sizeof(bound_by_header) / sizeof(bound_by_header[0]); i++) {
		const char *in = bound_by_header[i];
		int rc = xmlstage_stanza_fwd(xs, own, strlen(own), in, strlen(in), &s);
		if (rc != XMLSTAGE_E_BAD_NS_PREFIX)
			fail_msg("%s: %s", in, xmlstage_error_str(rc));
		/* and the sender's own parser would accept it */
		assert_int_equal(stanza(xs, own, in, &s), XMLSTAGE_OK);
	}
	for (size_t i = 0; i < sizeof(bound_nowhere) / sizeof(bound_nowhere[0]); i++) {
		const char *in = bound_nowhere[i];
		int rc = xmlstage_stanza_fwd(xs, own, strlen(own), in, strlen(in), &s);
		if (rc != XMLSTAGE_E_NOT_WELL_FORMED)
			fail_msg("%s: %s", in, xmlstage_error_str(rc));
		/* without header declarations: never bad-namespace-prefix */
		rc = xmlstage_stanza_fwd(xs, NULL, 0, in, strlen(in), &s);
		if (rc != XMLSTAGE_E_NOT_WELL_FORMED)
			fail_msg("%s (no own decls): %s", in, xmlstage_error_str(rc));
		rc = xmlstage_stanza_fwd(xs, C2S, strlen(C2S), in, strlen(in), &s);
		if (rc != XMLSTAGE_E_NOT_WELL_FORMED)
			fail_msg("%s (default decls): %s", in, xmlstage_error_str(rc));
	}
	/* the prefix is fine in the sender's stream, the stanza is not: that defect */
	assert_int_equal(xmlstage_stanza_fwd(xs, own, strlen(own), "<message><foo:x/><!--c--></message>",
					     35, &s),
			 XMLSTAGE_E_RESTRICTED);
	/* other errors and successes are those of the default context */
	assert_int_equal(xmlstage_stanza_fwd(xs, own, strlen(own), "<message to='a' to='b'/>", 24, &s),
			 XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(xmlstage_stanza_fwd(xs, own, strlen(own), "<message><stream:x/></message>",
					     30, &s),
			 XMLSTAGE_OK);
	assert_int_equal(xmlstage_stanza_fwd(xs, own, strlen(own), "<message to='b@c'/>", 19, &s),
			 XMLSTAGE_OK);
	assert_str(s.ns, "jabber:client");
	assert_str(s.to, "b@c");
}

static void test_context_switching(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;

	for (int round = 0; round < 3; round++) {
		assert_int_equal(stanza(xs, C2S, "<message/>", &s), XMLSTAGE_OK);
		assert_str(s.ns, "jabber:client");
		assert_int_equal(stanza(xs, S2S, "<db:result from='a' to='b'>key</db:result>", &s),
				 XMLSTAGE_OK);
		assert_str(s.ns, "jabber:server:dialback");
		assert_str(s.text, "key");
		assert_int_equal(stanza(xs, S2S, "<message/>", &s), XMLSTAGE_OK);
		assert_str(s.ns, "jabber:server");
		/* "" is the c2s default */
		assert_int_equal(stanza(xs, "", "<iq/>", &s), XMLSTAGE_OK);
		assert_str(s.ns, "jabber:client");
		assert_int_equal(stanza(xs, C2S, "<db:result/>", &s), XMLSTAGE_E_NOT_WELL_FORMED);
	}
	/* garbage declarations are refused, and do not poison the next call */
	assert_int_equal(stanza(xs, "xmlns='a' xmlns='a'", "<message/>", &s), XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(stanza(xs, "><evil", "<message/>", &s), XMLSTAGE_E_NOT_WELL_FORMED);
	assert_int_equal(stanza(xs, C2S, "<message/>", &s), XMLSTAGE_OK);
}

static void test_strings_valid_until_next_call(void **state)
{
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	char big[3000];

	/* force the scratch arena to grow while strings are being recorded */
	memset(big, 'j', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	char in[10000];
	snprintf(in, sizeof(in), "<message to='%s' from='%s' id='%s'><body/></message>", big, big, big);
	assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
	assert_int_equal(s.to.len, sizeof(big) - 1);
	assert_string_equal(s.from.p, big);
	assert_string_equal(s.id.p, big);
	assert_str(s.local, "message");
	assert_str(s.child_local, "body");
}

static void test_many_distinct_names(void **state)
{
	/* expat keeps every attribute name it meets; the stage resets periodically */
	struct xmlstage *xs = *state;
	struct xs_stanza s;
	char in[256];

	for (int i = 0; i < 60000; i++) {
		snprintf(in, sizeof(in), "<message a%d='1' id='%d'><x%d xmlns='urn:%d'/></message>", i,
			 i, i, i);
		assert_int_equal(stanza(xs, C2S, in, &s), XMLSTAGE_OK);
		assert_int_equal(atoi(s.id.p), i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_minimal_and_other_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_wrong_namespace_is_reported_not_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_without_declarations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_leading_space_before_decl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_nul_is_not_utf16, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_then_stanza_in_same_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_tag_end_with_gt_in_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_children_and_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restricted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leaf_text, setup, teardown),
		cmocka_unit_test(test_error_strings),
		cmocka_unit_test_setup_teardown(test_context_switching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fwd_unbound_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings_valid_until_next_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_distinct_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
