/*
 * test_certname — tls/certname.c: RFC 6125 §6.4 matching (table-driven,
 * with the examples of §6.4.3), reference domains to A-labels (RFC 3492
 * vectors), and identities read from certificates: real ones made by
 * openssl at test time (DNS-ID, SRV-ID and XmppAddr otherNames, CN-IDs and
 * when they count) and DER built here for what openssl will not make
 * (malformed lengths, a second subjectAltName, wrong string types, more
 * names than CERTNAME_MAX holds).  Every prefix and every one-byte
 * corruption of a real certificate is read too (ASan watches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls/certname.h"

/* ---- matching ------------------------------------------------------------- */

struct dns_case {
	const char *presented, *reference;
	bool match;
};

static const struct dns_case dns_cases[] = {
	/* §6.4.1: label by label, ASCII case-insensitive */
	{ "www.example.com", "www.example.com", true },
	{ "WWW.Example.Com", "www.example.com", true },
	{ "www.example.com", "WWW.EXAMPLE.COM", true },
	{ "example.com.", "example.com", true },
	{ "example.com", "example.com.", true },
	{ "example.com", "example.co", false },
	{ "example.co", "example.com", false },
	{ "ample.com", "example.com", false },
	{ "example.com", "www.example.com", false },
	{ "a_b.example", "A_B.example", true },
	/* §6.4.3's examples: one whole left-most label */
	{ "*.example.com", "foo.example.com", true },
	{ "*.example.com", "bar.foo.example.com", false },
	{ "*.example.com", "example.com", false },
	{ "*.Example.COM", "FOO.example.com", true },
	{ "*.example.com.", "foo.example.com", true },
	/* partial-label wildcards (§6.4.3 "MAY", RFC 9525 forbids): never */
	{ "baz*.example.net", "baz1.example.net", false },
	{ "*baz.example.net", "foobaz.example.net", false },
	{ "b*z.example.net", "buzz.example.net", false },
	{ "f*.example.com", "foo.example.com", false },
	/* only the left-most label, only one, and over two labels at least */
	{ "bar.*.example.net", "bar.foo.example.net", false },
	{ "*.*.example.net", "a.b.example.net", false },
	{ "*.com", "example.com", false },
	{ "*.", "com", false },
	{ "*", "com", false },
	{ "*.example.com", ".example.com", false },
	/* IDNs: the reference's U-labels become A-labels; a wildcard never
	 * inside an A-label, a whole-label one may stand for one */
	{ "xn--bcher-kva.example", "bücher.example", true },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example", true },
	{ "XN--BCHER-KVA.example", "bücher.example", true },
	{ "bücher.example", "bücher.example", false },
	{ "xn--*.example.com", "xn--bcher-kva.example.com", false },
	{ "xn--bcher-*.example.com", "xn--bcher-kva.example.com", false },
	{ "*.example.com", "xn--bcher-kva.example.com", true },
	{ "*.example.com", "bücher.example.com", true },
	/* IPv4 literals are no domain names (RFC 6125 leaves IPs out) */
	{ "192.0.2.1", "192.0.2.1", false },
	{ "*.0.2.1", "192.0.2.1", false },
	/* not domain names at all */
	{ "", "example.com", false },
	{ "example.com", "", false },
	{ "a..b", "a..b", false },
	{ ".", ".", false },
	{ "exa mple.com", "exa mple.com", false },
	{ "example.com", "*.example.com", false },
	{ "*.example.com", "*.example.com", false },
};

static void test_dns_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dns_cases) / sizeof(dns_cases[0]); i++) {
		const struct dns_case *c = &dns_cases[i];
		bool got = certname_dns_match(c->presented, strlen(c->presented), c->reference,
					      strlen(c->reference));
		if (got != c->match)
			fail_msg("'%s' vs '%s': %d, expected %d", c->presented, c->reference, got, c->match);
	}
}

/* Lengths: 63-byte labels and 253-byte names pass, one more does not; an
 * embedded NUL is not a name character. */
static void test_dns_lengths(void **state)
{
	char name[300], ref[300];

	(void)state;
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	assert_true(certname_dns_match(name, strlen(name), name, strlen(name)));
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	assert_false(certname_dns_match(name, strlen(name), name, strlen(name)));
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	memset(name, 'b', 253);
	name[63] = name[127] = name[191] = '.';
	name[253] = '\0';
	assert_true(certname_dns_match(name, 253, name, 253));
	memcpy(ref, name, 254);
	ref[0] = 'X';
	name[0] = '*', name[1] = '.';
	memmove(name + 2, name + 64, 253 - 64 + 1);   /* "*." and the last three labels */
	assert_true(certname_dns_match(name, strlen(name), ref, 253));
	memset(name, 'b', 254);
	name[63] = name[127] = name[191] = '.';
	assert_false(certname_dns_match(name, 254, name, 254));
	assert_false(certname_dns_match("example.com\0.evil.net", 21, "example.com", 11));
	assert_false(certname_dns_match("example.com", 11, "example.com\0.evil.net", 21));
}

struct domain_case {
	const char *in, *out;   /* out NULL: refused */
};

static const struct domain_case domain_cases[] = {
	{ "Example.COM.", "example.com" },
	{ "bücher.example", "xn--bcher-kva.example" },
	{ "münchen.de", "xn--mnchen-3ya.de" },
	{ "пример.рф", "xn--e1afmkfd.xn--p1ai" },
	{ "例子.cn", "xn--fsqu00a.cn" },
	/* RFC 3492 §7.1 (A) Arabic (Egyptian), and (L) with its ASCII lowercased */
	{ "\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8\xd8\xaa\xd9\x83\xd9\x84\xd9\x85"
	  "\xd9\x88\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\x9f.example",
	  "xn--egbpdaj6bu4bxfgehfvwxn.example" },
	{ "3\xe5\xb9\xb4" "B\xe7\xb5\x84\xe9\x87\x91\xe5\x85\xab\xe5\x85\x88\xe7\x94\x9f.jp",
	  "xn--3b-ww4c5e180e575a65lsy2b.jp" },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
	{ "", NULL },
	{ ".", NULL },
	{ "a..b", NULL },
	{ ".a", NULL },
	{ "*.example.com", NULL },
	{ "ex ample.com", NULL },
	{ "[::1]", NULL },
	{ "b\xc3.example", NULL },             /* truncated UTF-8 */
	{ "b\xc0\xbc.example", NULL },         /* overlong '<' */
	{ "b\xed\xa0\x80.example", NULL },     /* a surrogate */
	{ "b\xc2\x85.example", NULL },         /* C1 control NEL */
	{ "b\xf4\x90\x80\x80.example", NULL }, /* beyond U+10FFFF */
};

static void test_domain(void **state)
{
	char out[CERTNAME_DOMAIN_MAX + 1], label[200];

	(void)state;
	for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
		const struct domain_case *c = &domain_cases[i];
		int n = certname_domain(c->in, strlen(c->in), out, sizeof(out));
		if (!c->out) {
			if (n != -1)
				fail_msg("'%s' accepted as '%s'", c->in, out);
			continue;
		}
		if (n < 0 || strcmp(out, c->out) != 0 || (size_t)n != strlen(c->out))
			fail_msg("'%s' -> %d '%s', expected '%s'", c->in, n, n < 0 ? "" : out, c->out);
	}
	/* An A-label over 63 bytes is refused: 57 'ü' make "xn--" and 59
	 * bytes of Punycode, 58 one more. */
	for (int k = 0; k < 58; k++)
		memcpy(label + 2 * k, "\xc3\xbc", 2);
	assert_int_equal(certname_domain(label, 2 * 57, out, sizeof(out)), 63);
	assert_memory_equal(out, "xn--tdaaaa", 10);
	assert_int_equal(certname_domain(label, 2 * 58, out, sizeof(out)), -1);
	/* The output capacity is honoured. */
	assert_int_equal(certname_domain("example.com", 11, out, 11), -1);
	assert_int_equal(certname_domain("example.com", 11, out, 12), 11);
}

/* ---- DER built here --------------------------------------------------------- */

struct der {
	uint8_t b[70000];
	size_t n;
};

/* Append a TLV with contents c[0..len) (lengths in DER's minimal form). */
static void tlv(struct der *d, uint8_t tag, const void *c, size_t len)
{
	d->b[d->n++] = tag;
	if (len < 0x80) {
		d->b[d->n++] = (uint8_t)len;
	} else if (len < 0x100) {
		d->b[d->n++] = 0x81;
		d->b[d->n++] = (uint8_t)len;
	} else {
		d->b[d->n++] = 0x82;
		d->b[d->n++] = (uint8_t)(len >> 8);
		d->b[d->n++] = (uint8_t)len;
	}
	memcpy(d->b + d->n, c, len);
	d->n += len;
}

static void wrap(struct der *d, uint8_t tag)   /* d becomes TLV(tag, d) */
{
	static struct der tmp;
	tmp.n = 0;
	tlv(&tmp, tag, d->b, d->n);
	memcpy(d->b, tmp.b, tmp.n);
	d->n = tmp.n;
}

static const uint8_t OID_SAN[] = { 0x55, 0x1d, 0x11 };
static const uint8_t OID_CN[] = { 0x55, 0x04, 0x03 };
static const uint8_t OID_O[] = { 0x55, 0x04, 0x0a };
static const uint8_t OID_XMPP[] = { 0x2b, 6, 1, 5, 5, 7, 8, 5 };
static const uint8_t OID_SRV[] = { 0x2b, 6, 1, 5, 5, 7, 8, 7 };
static const uint8_t OID_OTHER[] = { 0x2b, 6, 1, 4, 1, 0x82, 0x37, 20, 2, 3 };   /* UPN */

/* An otherName GeneralName: type-id and [0] EXPLICIT value of `vtag`. */
static void other_name(struct der *gn, const uint8_t *oid, size_t oid_len, uint8_t vtag, const char *v)
{
	struct der x = { .n = 0 }, val = { .n = 0 };

	tlv(&val, vtag, v, strlen(v));
	tlv(&x, 0x06, oid, oid_len);
	tlv(&x, 0xa0, val.b, val.n);
	tlv(gn, 0xa0, x.b, x.n);
}

/* A Name of RDNs, each one attribute (oid, PrintableString value). */
static void name(struct der *out, const char *const *cns, size_t n, bool with_o)
{
	struct der rdns = { .n = 0 };

	for (size_t i = 0; i < n + with_o; i++) {
		struct der ava = { .n = 0 }, set = { .n = 0 };
		bool o = with_o && i == 0;
		const char *v = o ? "Org" : cns[i - with_o];
		tlv(&ava, 0x06, o ? OID_O : OID_CN, 3);
		tlv(&ava, 0x13, v, strlen(v));
		tlv(&set, 0x30, ava.b, ava.n);
		tlv(&rdns, 0x31, set.b, set.n);
	}
	tlv(out, 0x30, rdns.b, rdns.n);
}

/* A certificate whose subject has the CNs given, and whose extensions are
 * the given subjectAltName GeneralNames contents (`sans` of them: 0 none,
 * 2 twice); `issuer_cn` NULL: self-issued. */
static void cert(struct der *out, const struct der *gns, int sans, const char *const *cns, size_t ncn,
		 const char *issuer_cn)
{
	static const uint8_t alg[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	struct der tbs = { .n = 0 }, exts = { .n = 0 };
	const char *icn[1] = { issuer_cn };

	tlv(&tbs, 0xa0, "\x02\x01\x02", 3);
	tlv(&tbs, 0x02, "\x01", 1);
	tlv(&tbs, 0x30, alg, sizeof(alg));
	if (issuer_cn)
		name(&tbs, icn, 1, true);
	else
		name(&tbs, cns, ncn, true);
	tlv(&tbs, 0x30, "\x17\x0d" "200101000000Z" "\x17\x0d" "300101000000Z", 30);
	name(&tbs, cns, ncn, true);
	tlv(&tbs, 0x30, "\x30\x00\x03\x01\x00", 5);
	for (int i = 0; i < sans; i++) {
		struct der ext = { .n = 0 }, seq = { .n = 0 };
		tlv(&seq, 0x30, gns->b, gns->n);
		tlv(&ext, 0x06, OID_SAN, sizeof(OID_SAN));
		tlv(&ext, 0x04, seq.b, seq.n);
		tlv(&exts, 0x30, ext.b, ext.n);
	}
	if (sans) {
		wrap(&exts, 0x30);
		wrap(&exts, 0xa3);
		memcpy(tbs.b + tbs.n, exts.b, exts.n);
		tbs.n += exts.n;
	}
	out->n = 0;
	tlv(out, 0x30, tbs.b, tbs.n);
	tlv(out, 0x30, alg, sizeof(alg));
	tlv(out, 0x03, "\x00\x01", 2);
	wrap(out, 0x30);
}

/* The records of ids as "kind:name kind:name ...". */
static const char *records(const uint8_t *ids, int n)
{
	static char s[CERTNAME_MAX * 2];
	size_t at = 0, len, o = 0;
	const char *nm;
	int kind;

	s[0] = '\0';
	while (n > 0 && certname_next(ids, (size_t)n, &at, &kind, &nm, &len))
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s%d:%.*s", o ? " " : "", kind, (int)len, nm);
	return s;
}

static void test_built(void **state)
{
	static struct der c, g;
	const char *cn[] = { "cn.example", "Second.Example" }, *junk[] = { "not a domain" };
	uint8_t ids[CERTNAME_MAX];
	struct certname_info info;
	int n;

	(void)state;
	/* Every kind, case folded; the CN does not count beside them; names we
	 * cannot use are counted as dropped. */
	g.n = 0;
	tlv(&g, 0x82, "A.Example", 9);
	tlv(&g, 0x82, "*.a.example", 11);
	tlv(&g, 0x82, "w*.a.example", 12);                               /* dropped */
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "_XMPP-Server.a.example");
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "_xmpp-client.a.example");
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "xmpp-server.a.example");  /* dropped */
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x0c, "_xmpp-server.a.example"); /* UTF8: dropped */
	other_name(&g, OID_XMPP, sizeof(OID_XMPP), 0x0c, "bücher.example");
	other_name(&g, OID_XMPP, sizeof(OID_XMPP), 0x0c, "user@a.example");        /* dropped */
	other_name(&g, OID_XMPP, sizeof(OID_XMPP), 0x16, "a.example");             /* IA5: dropped */
	other_name(&g, OID_OTHER, sizeof(OID_OTHER), 0x0c, "someone@a.example");  /* not ours */
	tlv(&g, 0x81, "x@a.example", 11);                                  /* rfc822Name */
	tlv(&g, 0x87, "\xc0\x00\x02\x01", 4);                              /* iPAddress */
	cert(&c, &g, 1, cn, 2, NULL);
	n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "1:a.example 1:*.a.example 2:_xmpp-server.a.example "
					     "2:_xmpp-client.a.example 3:xn--bcher-kva.example");
	assert_int_equal(info.dropped, 5);
	assert_true(info.self_issued);
	assert_true(certname_match(ids, (size_t)n, "a.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "x.a.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "bücher.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "cn.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "x.y.a.example", "xmpp-server"));

	/* SRV-IDs count for their own service only. */
	g.n = 0;
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "_xmpp-client.c.example");
	other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "_xmpp-server.*.w.example");
	cert(&c, &g, 1, cn, 1, "Some CA");
	n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "2:_xmpp-client.c.example 2:_xmpp-server.*.w.example");
	assert_false(info.self_issued);
	assert_false(certname_match(ids, (size_t)n, "c.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "c.example", "xmpp-client"));
	assert_false(certname_match(ids, (size_t)n, "c.example", "xmpp"));
	assert_true(certname_match(ids, (size_t)n, "x.w.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "w.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "cn.example", "xmpp-server"));   /* SRV-ID: no CN */

	/* No SAN: every single-CN RDN that looks like a domain is a CN-ID. */
	cert(&c, &g, 0, cn, 2, "Some CA");
	n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "4:cn.example 4:second.example");
	assert_true(certname_match(ids, (size_t)n, "second.example", "xmpp-server"));
	cert(&c, &g, 0, junk, 1, "Some CA");
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), 0);
	assert_int_equal(info.dropped, 0);

	/* A SAN of only rfc822Name, iPAddress or an unknown otherName: the CN
	 * still counts; a URI-ID, a DNS-ID or an XmppAddr, even unusable, and
	 * it does not (§6.4.4). */
	g.n = 0;
	tlv(&g, 0x81, "x@a.example", 11);
	tlv(&g, 0x87, "\xc0\x00\x02\x01", 4);
	other_name(&g, OID_OTHER, sizeof(OID_OTHER), 0x0c, "someone@a.example");
	cert(&c, &g, 1, cn, 1, "Some CA");
	n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "4:cn.example");
	const char *const blockers[] = { "uri", "dns", "xmpp", "srv" };
	for (size_t k = 0; k < 4; k++) {
		g.n = 0;
		if (k == 0)
			tlv(&g, 0x86, "xmpp:cn.example", 15);
		else if (k == 1)
			tlv(&g, 0x82, "not a name", 10);
		else if (k == 2)
			other_name(&g, OID_XMPP, sizeof(OID_XMPP), 0x0c, "user@cn.example");
		else
			other_name(&g, OID_SRV, sizeof(OID_SRV), 0x16, "bad");
		cert(&c, &g, 1, cn, 1, "Some CA");
		n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
		if (n != 0)
			fail_msg("a %s GeneralName, and the CN still counted: %s", blockers[k], records(ids, n));
	}

	/* RFC 5280 §4.2: a second subjectAltName extension makes it unreadable. */
	g.n = 0;
	tlv(&g, 0x82, "a.example", 9);
	cert(&c, &g, 2, cn, 1, "Some CA");
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), -1);
	assert_int_equal(info.dropped, 0);
	/* Trailing bytes after the certificate. */
	cert(&c, &g, 1, cn, 1, "Some CA");
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), 11);
	c.b[c.n++] = 0;
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), -1);
}

/* Not DER: an indefinite length, a long form where the short one does,
 * a leading zero length octet, a multi-byte tag. */
static void test_not_der(void **state)
{
	static struct der c, g;
	const char *cn[] = { "cn.example" };
	uint8_t ids[64];
	struct certname_info info;
	size_t at;

	(void)state;
	g.n = 0;
	tlv(&g, 0x82, "a.example", 9);
	cert(&c, &g, 1, cn, 1, "Some CA");
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), 11);
	/* the dNSName's header, "82 09": its length octet is at `at` */
	for (at = 0; at + 11 <= c.n && memcmp(c.b + at, "\x82\x09" "a.example", 11); at++)
		;
	assert_true(at + 11 <= c.n);
	c.b[at + 1] = 0x80;   /* indefinite */
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), -1);
	c.b[at] = 0x9f;       /* multi-byte tag */
	c.b[at + 1] = 0x09;
	assert_int_equal(certname_extract(c.b, c.n, ids, sizeof(ids), &info), -1);

	/* 0x81 0x05: long form for a short length */
	uint8_t nonmin[] = { 0x30, 0x81, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01 };
	assert_int_equal(certname_extract(nonmin, sizeof(nonmin), ids, sizeof(ids), &info), -1);
	uint8_t zero[] = { 0x30, 0x82, 0x00, 0x85, 0x30 };
	assert_int_equal(certname_extract(zero, sizeof(zero), ids, sizeof(ids), &info), -1);
	assert_int_equal(certname_extract(zero, 0, ids, sizeof(ids), &info), -1);
}

/* More names than CERTNAME_MAX holds: records are never cut, the rest is
 * counted; a small cap likewise. */
static void test_cap(void **state)
{
	static struct der c, g;
	static uint8_t ids[CERTNAME_MAX];
	const char *cn[] = { "cn.example" };
	struct certname_info info;
	char nm[64];
	int n, k;

	(void)state;
	g.n = 0;
	for (k = 0; k < 400; k++) {   /* 400 names of 2 + 14..16 bytes */
		int len = snprintf(nm, sizeof(nm), "host%d.example", k);
		tlv(&g, 0x82, nm, (size_t)len);
	}
	cert(&c, &g, 1, cn, 1, "Some CA");
	n = certname_extract(c.b, c.n, ids, sizeof(ids), &info);
	assert_true(n > (int)CERTNAME_MAX - 20 && n <= (int)CERTNAME_MAX);
	assert_true(info.dropped > 100);
	assert_true(certname_match(ids, (size_t)n, "host0.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "host200.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "host399.example", "xmpp-server"));
	k = 0;
	for (size_t at = 0, len; certname_next(ids, (size_t)n, &at, &(int){ 0 }, &(const char *){ NULL }, &len);)
		k++;
	assert_int_equal(k + info.dropped, 400);

	n = certname_extract(c.b, c.n, ids, 20, &info);   /* "host0.example": 2 + 13 */
	assert_string_equal(records(ids, n), "1:host0.example");
	assert_int_equal(info.dropped, 399);

	/* certname_next stops at a record running past the end. */
	assert_false(certname_next((const uint8_t *)"\x01\x05" "abc", 5, &(size_t){ 0 }, &(int){ 0 },
				   &(const char *){ NULL }, &(size_t){ 0 }));
}

/* ---- certificates made by openssl ---------------------------------------- */

static char dir[] = "/tmp/xedge-certname-XXXXXX";

static const char script[] =
	"set -e; cd %s; exec 2>openssl.log\n"
	"K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2'\n"
	"cat > x.cnf <<'EOF'\n"
	"[req]\n"
	"distinguished_name = dn\n"
	"[dn]\n"
	"[full]\n"
	"subjectAltName = @alt\n"
	"[alt]\n"
	"DNS.1 = a.example\n"
	"DNS.2 = *.a.example\n"
	"otherName.1 = 1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.a.example\n"
	"otherName.2 = 1.3.6.1.5.5.7.8.5;FORMAT:UTF8,UTF8:bücher.example\n"
	"otherName.3 = 1.3.6.1.5.5.7.8.5;UTF8:juliet@a.example\n"
	"URI.1 = xmpp:a.example\n"
	"email.1 = x@a.example\n"
	"IP.1 = 192.0.2.1\n"
	"[ipmail]\n"
	"subjectAltName = IP:192.0.2.1, email:x@a.example\n"
	"[uri]\n"
	"subjectAltName = URI:xmpp:cn.example\n"
	"EOF\n"
	"mk() { openssl req -x509 $K -config x.cnf -subj \"$2\" ${3:+-extensions $3} -keyout k.pem -out $1.pem\n"
	"  openssl x509 -in $1.pem -outform DER -out $1.der; }\n"
	"mk full /CN=a.example full\n"
	"mk cns '/O=Org/CN=cn.example/CN=Second.Example'\n"
	"mk ipmail /CN=cn.example ipmail\n"
	"mk uri /CN=cn.example uri\n";

static uint8_t *load(const char *base, size_t *len)
{
	char path[128];
	FILE *f;
	uint8_t *b = malloc(65536);

	snprintf(path, sizeof(path), "%s/%s.der", dir, base);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_non_null(b);
	*len = fread(b, 1, 65536, f);
	fclose(f);
	assert_true(*len > 100);
	return b;
}

static int setup(void **state)
{
	char cmd[4096];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), script, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_certname: openssl could not make the certificates (%s/openssl.log)\n", dir);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_openssl(void **state)
{
	uint8_t ids[CERTNAME_MAX], *der;
	struct certname_info info;
	size_t len;
	int n;

	(void)state;
	der = load("full", &len);
	n = certname_extract(der, len, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "1:a.example 1:*.a.example 2:_xmpp-server.a.example "
					     "3:xn--bcher-kva.example");
	assert_int_equal(info.dropped, 1);   /* juliet@a.example is no server */
	assert_true(info.self_issued);
	assert_true(certname_match(ids, (size_t)n, "a.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "conference.a.example", "xmpp-server"));
	assert_true(certname_match(ids, (size_t)n, "bücher.example", "xmpp-server"));
	assert_false(certname_match(ids, (size_t)n, "example", "xmpp-server"));
	free(der);

	der = load("cns", &len);
	n = certname_extract(der, len, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "4:cn.example 4:second.example");
	free(der);

	der = load("ipmail", &len);
	n = certname_extract(der, len, ids, sizeof(ids), &info);
	assert_string_equal(records(ids, n), "4:cn.example");
	free(der);

	der = load("uri", &len);
	assert_int_equal(certname_extract(der, len, ids, sizeof(ids), &info), 0);
	free(der);
}

/* Every prefix, and every byte flipped: either unreadable or records that
 * parse; never a read outside the input (an exact-size copy each time). */
static void test_hostile(void **state)
{
	uint8_t ids[CERTNAME_MAX], *der;
	struct certname_info info;
	size_t len;

	(void)state;
	der = load("full", &len);
	for (size_t k = 0; k < len; k++) {
		uint8_t *copy = malloc(k ? k : 1);
		memcpy(copy, der, k);
		assert_int_equal(certname_extract(copy, k, ids, sizeof(ids), &info), -1);
		free(copy);
	}
	for (size_t k = 0; k < len; k++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t *copy = malloc(len);
			size_t at = 0, nl;
			const char *nm;
			int kind, n;
			memcpy(copy, der, len);
			copy[k] ^= (uint8_t)(1u << bit);
			n = certname_extract(copy, len, ids, sizeof(ids), &info);
			assert_true(n >= -1 && n <= (int)sizeof(ids));
			while (n > 0 && certname_next(ids, (size_t)n, &at, &kind, &nm, &nl))
				assert_true(kind >= CERTNAME_DNS && kind <= CERTNAME_CN && nl > 0);
			assert_true(n <= 0 || at == (size_t)n);
			free(copy);
		}
	}
	free(der);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_match),
		cmocka_unit_test(test_dns_lengths),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_built),
		cmocka_unit_test(test_not_der),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_openssl),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
