/*
 * Unit tests for parser/xtree.c: tree shape, namespaces (default, prefixed,
 * inherited, from the stream context), lookups, limits, malformed and
 * restricted input, escaping, and round trips of real XEP payloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/xtree.h"

#define NS_CLIENT "jabber:client"
#define NS_ROSTER "jabber:iq:roster"
#define NS_VCARD "vcard-temp"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_DATA "jabber:x:data"
#define NS_MAM "urn:xmpp:mam:2"
#define NS_RSM "http://jabber.org/protocol/rsm"

/* A growable output buffer, as the session server's struct sm_buf is used. */
struct obuf {
	char *p;
	size_t len, cap;
	unsigned calls;
};

static void obuf_put(void *arg, const char *p, size_t n)
{
	struct obuf *b = arg;

	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *g = realloc(b->p, cap);
		assert_non_null(g);
		b->p = g;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	b->calls++;
}

/* Serialise el; the caller frees the string. */
static char *write_str(const struct xtree_node *el)
{
	struct obuf b = { 0 };
	size_t n = xtree_write(el, obuf_put, &b);

	assert_int_equal(n, b.len);
	assert_non_null(b.p);
	return b.p;
}

static struct xtree *parse_lim(const char *s, const char *ctx, const struct xtree_limits *lim)
{
	int err = -1;
	struct xtree *t = xtree_parse(s, strlen(s), ctx, lim, &err);

	if (!t)
		fail_msg("parse failed (%s): %s", xtree_error_str(err), s);
	assert_int_equal(err, XTREE_OK);
	return t;
}

static struct xtree *parse(const char *s, const char *ctx)
{
	return parse_lim(s, ctx, NULL);
}

static int parse_err(const char *s, const char *ctx, const struct xtree_limits *lim)
{
	int err = -1;
	struct xtree *t = xtree_parse(s, strlen(s), ctx, lim, &err);

	if (t) {
		xtree_free(t);
		fail_msg("accepted: %s", s);
	}
	return err;
}

/* parse(write(el)) with no context is equivalent to el; returns the text. */
static char *round_trip(const struct xtree_node *el)
{
	char *out = write_str(el);
	struct xtree *t2 = parse(out, NULL);
	char *again;

	assert_true(xtree_equal(el, xtree_root(t2)));
	/* and writing is stable: the re-parsed tree writes the same bytes */
	again = write_str(xtree_root(t2));
	assert_string_equal(out, again);
	free(again);
	xtree_free(t2);
	return out;
}

static unsigned count(const struct xtree_node *first, const char *ns, const char *local)
{
	unsigned n = 0;

	for (const struct xtree_node *c = first; c; c = xtree_next(c, ns, local))
		n++;
	return n;
}

static void test_roster_in_c2s_context(void **state)
{
	struct xtree *t = parse("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'>"
				"<item jid='nurse@example.com' name='Nurse'><group>Servants</group>"
				"<group>Family &amp; friends</group></item>"
				"<item jid='juliet@example.com' subscription='remove'/></query></iq>",
				XTREE_CTX_C2S);
	const struct xtree_node *iq = xtree_root(t), *q, *item, *g;

	assert_string_equal(iq->ns, NS_CLIENT); /* inherited from the stream */
	assert_string_equal(iq->local, "iq");
	assert_null(iq->parent);
	assert_string_equal(xtree_attr(iq, "type"), "set");
	assert_string_equal(xtree_attr(iq, "id"), "r1");
	assert_null(xtree_attr(iq, "to"));
	q = xtree_child(iq, NS_ROSTER, "query");
	assert_non_null(q);
	assert_ptr_equal(q->parent, iq);
	assert_null(xtree_child(iq, NS_CLIENT, "query"));
	assert_ptr_equal(xtree_child(iq, NULL, "query"), q);
	assert_ptr_equal(xtree_child(iq, NULL, NULL), q);

	item = xtree_child(q, NS_ROSTER, "item");
	assert_string_equal(xtree_attr(item, "jid"), "nurse@example.com");
	assert_int_equal(count(item, NS_ROSTER, "item"), 2);
	g = xtree_child(item, NS_ROSTER, "group");
	assert_string_equal(xtree_text(g), "Servants");
	g = xtree_next(g, NS_ROSTER, "group");
	assert_string_equal(xtree_text(g), "Family & friends");
	assert_int_equal(g->text_len, strlen("Family & friends"));
	assert_null(xtree_next(g, NS_ROSTER, "group"));
	item = xtree_next(item, NS_ROSTER, "item");
	assert_string_equal(xtree_attr(item, "subscription"), "remove");
	assert_null(item->first);
	assert_string_equal(xtree_text(item), "");
	assert_ptr_equal(q->last, item);

	/* lookups chain through absence */
	assert_null(xtree_text(xtree_child(xtree_child(iq, NULL, "nope"), NULL, "x")));
	assert_null(xtree_attr(NULL, "a"));
	assert_null(xtree_next(NULL, NULL, NULL));
	xtree_free(t);
}

static void test_standalone_has_no_namespace(void **state)
{
	struct xtree *t = parse("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", NULL);
	const struct xtree_node *iq = xtree_root(t);

	assert_string_equal(iq->ns, "");
	assert_string_equal(xtree_child(iq, NULL, "ping")->ns, "urn:xmpp:ping");
	xtree_free(t);
	/* "" is no context too */
	t = parse("<a/>", "");
	assert_string_equal(xtree_root(t)->ns, "");
	xtree_free(t);
}

static void test_namespaces(void **state)
{
	struct xtree *t = parse(
		"<a xmlns='urn:a' xmlns:p='urn:p' xmlns:q='urn:q'>"
		"<b><p:c q:x='1' y='2' xml:lang='en'/></b>"
		"<d xmlns=''><e/><p:f xmlns:p='urn:p2'/></d>"
		"<q:g xmlns='urn:other'><h/></q:g></a>",
		NULL);
	const struct xtree_node *a = xtree_root(t), *b, *c, *d, *e, *f, *g, *h;

	assert_string_equal(a->ns, "urn:a");
	b = xtree_child(a, "urn:a", "b");
	assert_non_null(b);
	c = xtree_child(b, "urn:p", "c");
	assert_non_null(c);
	assert_int_equal(c->nattrs, 3);
	assert_string_equal(c->attrs[0].ns, "urn:q");
	assert_string_equal(c->attrs[0].prefix, "q");
	assert_string_equal(c->attrs[0].local, "x");
	assert_string_equal(xtree_attr_ns(c, "urn:q", "x"), "1");
	assert_null(xtree_attr(c, "x")); /* q:x is not the unprefixed x */
	assert_string_equal(xtree_attr(c, "y"), "2");
	assert_string_equal(c->attrs[1].ns, "");
	assert_string_equal(c->attrs[1].prefix, "");
	assert_string_equal(xtree_attr_ns(c, XTREE_NS_XML, "lang"), "en");
	assert_string_equal(c->attrs[2].prefix, "xml");

	d = xtree_child(a, "", "d");
	assert_non_null(d);
	e = xtree_child(d, NULL, "e");
	assert_string_equal(e->ns, "");
	f = xtree_child(d, NULL, "f");
	assert_string_equal(f->ns, "urn:p2"); /* redeclared prefix */
	g = xtree_child(a, "urn:q", "g");
	assert_non_null(g);
	h = xtree_child(g, NULL, "h");
	assert_string_equal(h->ns, "urn:other");
	/* one scope, one string: inherited namespaces are shared, not copied */
	assert_ptr_equal(b->ns, a->ns);
	xtree_free(t);
}

static void test_text_concatenation_and_decoding(void **state)
{
	struct xtree *t = parse("<m>one<x/>two&lt;&#x263A;&#65;<![CDATA[<raw>&amp;]]>\r\nend<y>in</y></m>",
				NULL);
	const struct xtree_node *m = xtree_root(t);

	assert_string_equal(xtree_text(m), "onetwo<\xe2\x98\xba" "A<raw>&amp;\nend");
	assert_string_equal(xtree_text(xtree_child(m, NULL, "y")), "in");
	assert_string_equal(xtree_text(xtree_child(m, NULL, "x")), "");
	xtree_free(t);
}

static void test_indentation_dropped(void **state)
{
	struct xtree *t = parse("<a>\n  <b> </b>\r\n\t<c>\n</c> x <d/>\n</a>", NULL);
	const struct xtree_node *a = xtree_root(t);
	char *s;

	/* white space in a leaf is its content; between children it is not */
	assert_string_equal(xtree_text(xtree_child(a, NULL, "b")), " ");
	assert_string_equal(xtree_text(xtree_child(a, NULL, "c")), "\n");
	assert_string_equal(xtree_text(a), "\n  \n\t x \n");
	xtree_free(t);

	t = parse("<a>\n  <b>\n    <c/>\n  </b>\n</a>", NULL);
	a = xtree_root(t);
	assert_string_equal(xtree_text(a), "");
	assert_int_equal(a->text_len, 0);
	s = write_str(a);
	assert_string_equal(s, "<a><b><c/></b></a>");
	free(s);
	xtree_free(t);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"<a>",                           /* not closed */
		"<a></b>",                       /* mismatched */
		"<a/><b/>",                      /* two elements */
		"<a/>text",                      /* text after it */
		"<a/> ",                         /* even whitespace */
		" <a/>",
		"text",
		"</r>",                          /* closing the synthetic root */
		"<a/></r><b/>",
		"<a></r>",
		"<a><![CDATA[x]]",               /* cut */
		"<?xml version='1.0'?><a/>",     /* a declaration is not an element */
		"<p:a/>",                        /* unbound prefix */
		"<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>", /* same {ns}x twice */
		"<a x='1' x='2'/>",
		"<a xmlns:p=''/>",               /* undeclaring a prefix: XML 1.0 NS forbids */
		"<a xmlns:xml='urn:not-xml'/>",
		"<a>\xff</a>",                   /* not UTF-8 */
		"<a>\xc0\xaf</a>",               /* overlong */
		"<a>&#0;</a>",
		"<a>\x01</a>",
		"<a b='<'/>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse_err(bad[i], NULL, NULL);
		if (err != XTREE_E_MALFORMED)
			fail_msg("%s: %s", bad[i], xtree_error_str(err));
	}
	/* a NUL inside the element (strlen would stop there) */
	{
		int err = -1;
		assert_null(xtree_parse("<a>\0</a>", 8, NULL, NULL, &err));
		assert_int_equal(err, XTREE_E_MALFORMED);
		assert_null(xtree_parse("", 0, NULL, NULL, &err));
		assert_int_equal(err, XTREE_E_MALFORMED);
	}
	/* the stream prefix exists only in the c2s context */
	assert_int_equal(parse_err("<stream:error/>", NULL, NULL), XTREE_E_MALFORMED);
	xtree_free(parse("<stream:error/>", XTREE_CTX_C2S));
	/* a context that is not attribute text */
	assert_int_equal(parse_err("<a/>", "><b", NULL), XTREE_E_MALFORMED);
	assert_int_equal(parse_err("<a/>", "x=", NULL), XTREE_E_MALFORMED);
}

static void test_restricted(void **state)
{
	static const char *const bad[] = {
		"<a><!-- c --></a>",
		"<a><?pi x?></a>",
		"<a>&ent;</a>",
		"<a b='&ent;'/>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse_err(bad[i], NULL, NULL);
		if (err != XTREE_E_RESTRICTED)
			fail_msg("%s: %s", bad[i], xtree_error_str(err));
	}
	/* a DOCTYPE cannot even appear inside the stream: not well-formed */
	assert_int_equal(parse_err("<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", NULL, NULL),
			 XTREE_E_MALFORMED);
	assert_string_equal(xtree_error_str(XTREE_E_RESTRICTED), "restricted-xml");
}

static void test_limits(void **state)
{
	struct xtree_limits lim = XTREE_LIMITS_DEFAULT;
	struct xtree *t;
	char buf[8192];
	size_t n = 0;
	int err;

	/* bytes */
	lim.max_bytes = 12;
	xtree_free(parse_lim("<a>12345</a>", NULL, &lim));
	lim.max_bytes = 11;
	assert_int_equal(parse_err("<a>12345</a>", NULL, &lim), XTREE_E_LIMIT);
	lim = (struct xtree_limits)XTREE_LIMITS_DEFAULT;

	/* depth: exactly at the limit passes, one more fails */
	lim.max_depth = 4;
	xtree_free(parse_lim("<a><b><c><d/></c></b></a>", NULL, &lim));
	assert_int_equal(parse_err("<a><b><c><d><e/></d></c></b></a>", NULL, &lim), XTREE_E_LIMIT);
	/* the context root does not count */
	xtree_free(parse_lim("<a><b><c><d/></c></b></a>", XTREE_CTX_C2S, &lim));
	lim = (struct xtree_limits)XTREE_LIMITS_DEFAULT;

	/* elements */
	lim.max_elements = 3;
	xtree_free(parse_lim("<a><b/><c/></a>", NULL, &lim));
	assert_int_equal(parse_err("<a><b/><c/><d/></a>", NULL, &lim), XTREE_E_LIMIT);
	lim = (struct xtree_limits)XTREE_LIMITS_DEFAULT;

	/* attributes per element; declarations do not count */
	lim.max_attrs = 2;
	xtree_free(parse_lim("<a xmlns='u' xmlns:p='v' x='1' p:y='2'><b x='1' y='2'/></a>", NULL, &lim));
	assert_int_equal(parse_err("<a x='1' y='2' z='3'/>", NULL, &lim), XTREE_E_LIMIT);
	lim = (struct xtree_limits)XTREE_LIMITS_DEFAULT;

	/* arena memory: a flat list needs about one node per element */
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "<l>");
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "<i/>");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "</l>");
	lim.max_mem = 1000 * sizeof(struct xtree_node);
	assert_int_equal(parse_err(buf, NULL, &lim), XTREE_E_LIMIT);
	lim.max_mem = 1001 * sizeof(struct xtree_node) + 64 * 1024;
	t = xtree_parse(buf, n, NULL, &lim, &err);
	assert_non_null(t);
	assert_int_equal(count(xtree_root(t)->first, NULL, "i"), 1000);
	xtree_free(t);
	lim = (struct xtree_limits)XTREE_LIMITS_DEFAULT;

	/* namespace declarations in scope */
	n = (size_t)snprintf(buf, sizeof(buf), "<a");
	for (int i = 0; i < XTREE_MAX_NS + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " xmlns:p%d='u%d'", i, i);
	snprintf(buf + n, sizeof(buf) - n, "/>");
	assert_int_equal(parse_err(buf, NULL, NULL), XTREE_E_LIMIT);
	/* ... and they leave scope with their element */
	n = (size_t)snprintf(buf, sizeof(buf), "<a>");
	for (int i = 0; i < 2 * XTREE_MAX_NS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "<b xmlns='u%d' xmlns:p='v'/>", i);
	snprintf(buf + n, sizeof(buf) - n, "</a>");
	xtree_free(parse(buf, XTREE_CTX_C2S));
}

/* A long inherited namespace is stored once, however many elements use it. */
static void test_namespace_not_copied_per_element(void **state)
{
	struct xtree_limits lim = XTREE_LIMITS_DEFAULT;
	static char buf[64 * 1024];
	size_t n = 0;
	struct xtree *t;
	int err;

	n += (size_t)snprintf(buf, sizeof(buf), "<a xmlns='urn:");
	memset(buf + n, 'x', 4000);
	n += 4000;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "' xmlns:p='urn:p'>");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, i % 2 ? "<b/>" : "<p:b/>");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "</a>");
	/* 2000 copies of the namespace would be 8 MB */
	lim.max_mem = 2001 * sizeof(struct xtree_node) + 64 * 1024;
	t = xtree_parse(buf, n, NULL, &lim, &err);
	assert_non_null(t);
	assert_int_equal(strlen(xtree_root(t)->first->next->ns), 4004);
	xtree_free(t);
}

static void test_write_namespaces(void **state)
{
	struct xtree *t = parse("<iq type='result' id='x'><query xmlns='jabber:iq:roster' ver='v1'>"
				"<item jid='a@b'/></query><c xmlns=''/></iq>",
				XTREE_CTX_C2S);
	const struct xtree_node *iq = xtree_root(t);
	char *s = write_str(iq);

	assert_string_equal(s, "<iq xmlns='jabber:client' type='result' id='x'>"
			       "<query xmlns='jabber:iq:roster' ver='v1'><item jid='a@b'/></query>"
			       "<c xmlns=''/></iq>");
	free(s);
	/* a subtree declares the namespace it inherited */
	s = write_str(xtree_child(xtree_child(iq, NULL, "query"), NULL, "item"));
	assert_string_equal(s, "<item xmlns='jabber:iq:roster' jid='a@b'/>");
	free(s);
	/* a subtree in no namespace needs no declaration */
	s = write_str(xtree_child(iq, "", "c"));
	assert_string_equal(s, "<c/>");
	free(s);
	xtree_free(t);

	/* prefixed attributes: declared where needed, once, not again below */
	t = parse("<x:a xmlns:x='urn:x' xmlns:p='urn:p' p:k='1' p:l='2' xml:lang='en'>"
		  "<b p:k='3'><c p:k='4'/></b><d xmlns:p='urn:p2' p:k='5'/></x:a>",
		  NULL);
	s = round_trip(xtree_root(t));
	/* b and d are in no namespace: the x: prefix was the root's alone */
	assert_string_equal(s, "<a xmlns='urn:x' xmlns:p='urn:p' p:k='1' p:l='2' xml:lang='en'>"
			       "<b xmlns='' p:k='3'><c p:k='4'/></b>"
			       "<d xmlns='' xmlns:p='urn:p2' p:k='5'/></a>");
	free(s);
	/* the declaration moves down to a subtree's root */
	s = round_trip(xtree_child(xtree_root(t), NULL, "b"));
	assert_string_equal(s, "<b xmlns:p='urn:p' p:k='3'><c p:k='4'/></b>");
	free(s);
	xtree_free(t);
}

static void test_write_escaping(void **state)
{
	struct xtree *t = parse("<a v='&lt;&amp;&gt;&apos;&quot;&#9;&#10;&#13;x'>"
				"&lt;b&gt; &amp; ' \" &#13;&#10;\t]]&gt;</a>",
				NULL);
	const struct xtree_node *a = xtree_root(t);
	char *s;

	assert_string_equal(xtree_attr(a, "v"), "<&>'\"\t\n\rx");
	assert_string_equal(xtree_text(a), "<b> & ' \" \r\n\t]]>");
	s = round_trip(a);
	assert_string_equal(s, "<a v='&lt;&amp;&gt;&apos;&quot;&#9;&#10;&#13;x'>"
			       "&lt;b&gt; &amp; ' \" &#13;\n\t]]&gt;</a>");
	free(s);
	xtree_free(t);

	/* namespace URIs are attribute values too */
	t = parse("<a xmlns='urn:&amp;&apos;' xmlns:p='urn:&lt;' p:x=''/>", NULL);
	s = round_trip(xtree_root(t));
	assert_string_equal(s, "<a xmlns='urn:&amp;&apos;' xmlns:p='urn:&lt;' p:x=''/>");
	free(s);
	xtree_free(t);
}

static void test_equal(void **state)
{
	struct xtree *a = parse("<a xmlns='u' x='1' y='2'><b>t</b><c/></a>", NULL);
	struct xtree *b = parse("<p:a xmlns:p='u' y='2' x='1'><p:b>t</p:b><p:c/></p:a>", NULL);
	struct xtree *c = parse("<a xmlns='u' x='1' y='2'><b>t</b></a>", NULL);
	struct xtree *d = parse("<a xmlns='u' x='1' y='3'><b>t</b><c/></a>", NULL);
	struct xtree *e = parse("<a xmlns='u' x='1' y='2'><b>t</b><c/><c/></a>", NULL);
	struct xtree *f = parse("<a xmlns='u' x='1' y='2'><b>t<z/></b><c/></a>", NULL);

	assert_true(xtree_equal(xtree_root(a), xtree_root(b)));
	assert_false(xtree_equal(xtree_root(a), xtree_root(c)));
	assert_false(xtree_equal(xtree_root(c), xtree_root(a)));
	assert_false(xtree_equal(xtree_root(a), xtree_root(d)));
	assert_false(xtree_equal(xtree_root(a), xtree_root(e)));
	assert_false(xtree_equal(xtree_root(e), xtree_root(a)));
	assert_false(xtree_equal(xtree_root(a), xtree_root(f)));
	/* a subtree compares as a whole, whatever follows it */
	assert_true(xtree_equal(xtree_root(a)->first, xtree_root(b)->first));
	assert_false(xtree_equal(xtree_root(a), NULL));
	xtree_free(a);
	xtree_free(b);
	xtree_free(c);
	xtree_free(d);
	xtree_free(e);
	xtree_free(f);
}

/* XEP-0054: a vCard with a photo (base64 broken into lines, as clients send it). */
static void test_round_trip_vcard(void **state)
{
	struct xtree *t = parse(
		"<iq id='v1' type='set'><vCard xmlns='vcard-temp'>"
		"<FN>Peter Saint-Andre</FN><N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN>"
		"<MIDDLE/></N><NICKNAME>stpeter</NICKNAME>"
		"<EMAIL><INTERNET/><PREF/><USERID>stpeter@jabber.org</USERID></EMAIL>"
		"<ORG><ORGNAME>XMPP Standards Foundation</ORGNAME></ORG>"
		"<DESC>More info &amp; stuff &lt;here&gt;</DESC>"
		"<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
		"\r\n+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==</BINVAL></PHOTO></vCard></iq>",
		XTREE_CTX_C2S);
	const struct xtree_node *vc = xtree_child(xtree_root(t), NS_VCARD, "vCard"), *photo;
	char *s;

	assert_non_null(vc);
	assert_string_equal(xtree_text(xtree_child(vc, NS_VCARD, "FN")), "Peter Saint-Andre");
	assert_string_equal(xtree_text(xtree_child(xtree_child(vc, NS_VCARD, "N"), NS_VCARD, "GIVEN")),
			    "Peter");
	photo = xtree_child(vc, NS_VCARD, "PHOTO");
	assert_string_equal(xtree_text(xtree_child(photo, NS_VCARD, "TYPE")), "image/png");
	/* CRLF arrives as LF (XML end-of-line handling) */
	assert_string_equal(xtree_text(xtree_child(photo, NS_VCARD, "BINVAL")),
			    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\n"
			    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");
	/* what the server stores is the vCard element alone */
	s = round_trip(vc);
	assert_true(strncmp(s, "<vCard xmlns='vcard-temp'><FN>", 30) == 0);
	assert_non_null(strstr(s, "<DESC>More info &amp; stuff &lt;here&gt;</DESC>"));
	assert_non_null(strstr(s, "<MIDDLE/>"));
	free(s);
	free(round_trip(xtree_root(t)));
	xtree_free(t);
}

/* A photo near the stanza size limit: one text node of 200 kB. */
static void test_large_binval(void **state)
{
	size_t big = 200 * 1024, n;
	char *buf = malloc(big + 128), *s;
	struct xtree *t;

	assert_non_null(buf);
	n = (size_t)sprintf(buf, "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>");
	memset(buf + n, 'A', big);
	n += big;
	strcpy(buf + n, "</BINVAL></PHOTO></vCard>");
	t = parse(buf, NULL);
	assert_int_equal(xtree_child(xtree_child(xtree_root(t), NS_VCARD, "PHOTO"), NS_VCARD, "BINVAL")
				 ->text_len,
			 big);
	s = round_trip(xtree_root(t));
	assert_string_equal(s, buf);
	free(s);
	xtree_free(t);
	free(buf);
}

/* XEP-0163 / XEP-0060: a PEP publish with publish-options (XEP-0004 form). */
static void test_round_trip_pep_publish(void **state)
{
	struct xtree *t = parse(
		"<iq type='set' id='pub1'>\n"
		"  <pubsub xmlns='http://jabber.org/protocol/pubsub'>\n"
		"    <publish node='urn:xmpp:avatar:metadata'>\n"
		"      <item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'>\n"
		"        <metadata xmlns='urn:xmpp:avatar:metadata'>\n"
		"          <info bytes='12345' id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'"
		" height='64' type='image/png' width='64'/>\n"
		"        </metadata>\n"
		"      </item>\n"
		"    </publish>\n"
		"    <publish-options>\n"
		"      <x xmlns='jabber:x:data' type='submit'>\n"
		"        <field var='FORM_TYPE' type='hidden'>"
		"<value>http://jabber.org/protocol/pubsub#publish-options</value></field>\n"
		"        <field var='pubsub#access_model'><value>presence</value></field>\n"
		"        <field var='pubsub#max_items'><value>1</value></field>\n"
		"      </x>\n"
		"    </publish-options>\n"
		"  </pubsub>\n"
		"</iq>",
		XTREE_CTX_C2S);
	const struct xtree_node *ps = xtree_child(xtree_root(t), NS_PUBSUB, "pubsub"), *pub, *item, *x, *f;
	const char *access = NULL;
	char *s;

	pub = xtree_child(ps, NS_PUBSUB, "publish");
	assert_string_equal(xtree_attr(pub, "node"), "urn:xmpp:avatar:metadata");
	item = xtree_child(pub, NS_PUBSUB, "item");
	assert_string_equal(xtree_attr(item, "id"), "111f4b3c50d7b0df729d299bc6f8e9ef9066971f");
	x = xtree_child(xtree_child(ps, NS_PUBSUB, "publish-options"), NS_DATA, "x");
	assert_string_equal(xtree_attr(x, "type"), "submit");
	assert_int_equal(count(xtree_child(x, NS_DATA, "field"), NS_DATA, "field"), 3);
	for (f = xtree_child(x, NS_DATA, "field"); f; f = xtree_next(f, NS_DATA, "field"))
		if (strcmp(xtree_attr(f, "var"), "pubsub#access_model") == 0)
			access = xtree_text(xtree_child(f, NS_DATA, "value"));
	assert_string_equal(access, "presence");

	/* the payload the node stores: the item's child, standalone */
	s = round_trip(item->first);
	assert_string_equal(s, "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345'"
			       " id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f' height='64'"
			       " type='image/png' width='64'/></metadata>");
	free(s);
	free(round_trip(item));
	free(round_trip(xtree_root(t)));
	xtree_free(t);
}

/* XEP-0313 query with a XEP-0004 filter and a XEP-0059 result set. */
static void test_round_trip_mam_query(void **state)
{
	struct xtree *t = parse(
		"<iq type='set' id='juliet1'><query xmlns='urn:xmpp:mam:2' queryid='f27'>"
		"<x xmlns='jabber:x:data' type='submit'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
		"<field var='with'><value>juliet@capulet.lit</value></field>"
		"<field var='start'><value>2010-08-07T00:00:00Z</value></field></x>"
		"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
		"<before>09af3-cc343-b409f</before></set></query></iq>",
		XTREE_CTX_C2S);
	const struct xtree_node *q = xtree_child(xtree_root(t), NS_MAM, "query"), *set, *f;
	char *s;

	assert_string_equal(xtree_attr(q, "queryid"), "f27");
	set = xtree_child(q, NS_RSM, "set");
	assert_string_equal(xtree_text(xtree_child(set, NS_RSM, "max")), "10");
	assert_string_equal(xtree_text(xtree_child(set, NS_RSM, "before")), "09af3-cc343-b409f");
	assert_null(xtree_child(set, NS_RSM, "after"));
	/* <max/> is not looked up in the query's namespace */
	assert_null(xtree_child(set, NS_MAM, "max"));
	f = xtree_next(xtree_child(xtree_child(q, NS_DATA, "x"), NS_DATA, "field"), NS_DATA, "field");
	assert_string_equal(xtree_attr(f, "var"), "with");
	assert_string_equal(xtree_text(xtree_child(f, NS_DATA, "value")), "juliet@capulet.lit");

	s = round_trip(xtree_root(t));
	assert_string_equal(s,
		"<iq xmlns='jabber:client' type='set' id='juliet1'><query xmlns='urn:xmpp:mam:2' queryid='f27'>"
		"<x xmlns='jabber:x:data' type='submit'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
		"<field var='with'><value>juliet@capulet.lit</value></field>"
		"<field var='start'><value>2010-08-07T00:00:00Z</value></field></x>"
		"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
		"<before>09af3-cc343-b409f</before></set></query></iq>");
	free(s);
	xtree_free(t);
}

/* XEP-0049 / XEP-0191: arbitrary private XML and a blocking list. */
static void test_round_trip_private_and_blocking(void **state)
{
	struct xtree *t = parse(
		"<iq type='set' id='a1'><query xmlns='jabber:iq:private'>"
		"<exodus:prefs xmlns:exodus='exodus:prefs' xmlns:h='urn:h'>"
		"<exodus:defaultnick h:lang='x'>Hamlet</exodus:defaultnick></exodus:prefs>"
		"</query></iq>",
		XTREE_CTX_C2S);
	const struct xtree_node *prefs = xtree_child(xtree_child(xtree_root(t), "jabber:iq:private", "query"),
						     "exodus:prefs", "prefs");
	char *s;

	assert_non_null(prefs);
	s = round_trip(prefs);
	assert_string_equal(s, "<prefs xmlns='exodus:prefs'><defaultnick xmlns:h='urn:h' h:lang='x'>"
			       "Hamlet</defaultnick></prefs>");
	free(s);
	xtree_free(t);

	t = parse("<iq type='set' id='block1'><block xmlns='urn:xmpp:blocking'>"
		  "<item jid='romeo@montague.net'/><item jid='iago@shakespeare.lit'/></block></iq>",
		  XTREE_CTX_C2S);
	assert_int_equal(count(xtree_child(xtree_child(xtree_root(t), "urn:xmpp:blocking", "block"),
					   "urn:xmpp:blocking", "item"),
			       "urn:xmpp:blocking", "item"),
			 2);
	free(round_trip(xtree_root(t)));
	xtree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roster_in_c2s_context),
		cmocka_unit_test(test_standalone_has_no_namespace),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_text_concatenation_and_decoding),
		cmocka_unit_test(test_indentation_dropped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_restricted),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_namespace_not_copied_per_element),
		cmocka_unit_test(test_write_namespaces),
		cmocka_unit_test(test_write_escaping),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_round_trip_vcard),
		cmocka_unit_test(test_large_binval),
		cmocka_unit_test(test_round_trip_pep_publish),
		cmocka_unit_test(test_round_trip_mam_query),
		cmocka_unit_test(test_round_trip_private_and_blocking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
