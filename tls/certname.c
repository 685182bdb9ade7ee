/*
 * certname — see certname.h.  Why a DER walker of our own rather than
 * wolfSSL's DecodedCert: Debian's wolfSSL 5.5.4 decodes dNSName entries
 * but not the two otherName forms XMPP needs (id-on-dnsSRV, id-on-xmppAddr),
 * and DecodedCert is a multi-kilobyte structure whose layout changes with
 * the build options; the few elements we need are read here in a bounded
 * walk that can be fuzzed on its own, without a TLS library.
 */
#include "tls/certname.h"

#include <string.h>
#include <strings.h>

#include "parser/jid.h"

/* ---- DER ---------------------------------------------------------------- */

/* A cursor over DER contents: what is left to read. */
struct der {
	const uint8_t *p;
	size_t n;
};

enum {
	DER_BOOLEAN = 0x01,
	DER_INTEGER = 0x02,
	DER_OCTETS = 0x04,
	DER_OID = 0x06,
	DER_UTF8 = 0x0c,
	DER_PRINTABLE = 0x13,
	DER_TELETEX = 0x14,
	DER_IA5 = 0x16,
	DER_SEQ = 0x30,
	DER_SET = 0x31,
	DER_CTX0 = 0xa0,       /* [0] constructed */
	DER_CTX1 = 0x81,       /* [1] primitive: issuerUniqueID */
	DER_CTX2 = 0x82,       /* [2] primitive: subjectUniqueID; dNSName in a GeneralName */
	DER_CTX3 = 0xa3,       /* [3] constructed: extensions */
	DER_URI = 0x86,        /* [6] primitive: uniformResourceIdentifier in a GeneralName */
};

/* Object identifiers, contents octets. */
static const uint8_t oid_san[] = { 0x55, 0x1d, 0x11 };              /* 2.5.29.17 */
static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 };               /* 2.5.4.3 */
static const uint8_t oid_xmpp[] = { 0x2b, 6, 1, 5, 5, 7, 8, 5 };    /* 1.3.6.1.5.5.7.8.5 */
static const uint8_t oid_srv[] = { 0x2b, 6, 1, 5, 5, 7, 8, 7 };     /* 1.3.6.1.5.5.7.8.7 */

/*
 * Take the next element off c: its tag in *tag, its contents in *v and, when
 * whole is not NULL, the element with its header in *whole.  False when it
 * is not DER this walker reads: a multi-byte tag, an indefinite, non-minimal
 * or over 2^24 length, or contents running past c.
 */
static bool der_take(struct der *c, uint8_t *tag, struct der *v, struct der *whole)
{
	size_t len, hdr = 2;

	if (c->n < 2 || (c->p[0] & 0x1f) == 0x1f)
		return false;
	*tag = c->p[0];
	len = c->p[1];
	if (len & 0x80) {
		size_t nb = len & 0x7f;
		if (nb == 0 || nb > 3 || c->n - 2 < nb || c->p[2] == 0)
			return false;
		len = 0;
		for (size_t i = 0; i < nb; i++)
			len = len << 8 | c->p[2 + i];
		if (len < 0x80)
			return false;
		hdr += nb;
	}
	if (len > c->n - hdr)
		return false;
	v->p = c->p + hdr;
	v->n = len;
	if (whole) {
		whole->p = c->p;
		whole->n = hdr + len;
	}
	c->p += hdr + len;
	c->n -= hdr + len;
	return true;
}

/* The next element, which must carry `tag`. */
static bool der_expect(struct der *c, uint8_t tag, struct der *v, struct der *whole)
{
	uint8_t t;

	return der_take(c, &t, v, whole) && t == tag;
}

static bool der_next_is(const struct der *c, uint8_t tag)
{
	return c->n && c->p[0] == tag;
}

static bool oid_is(const struct der *v, const uint8_t *oid, size_t n)
{
	return v->n == n && memcmp(v->p, oid, n) == 0;
}

/* ---- names ---------------------------------------------------------------- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * A presented DNS name (DNS-ID, CN-ID, the name of an SRV-ID) into out
 * (>= CERTNAME_DOMAIN_MAX bytes, not terminated): ASCII lowercased, one
 * trailing dot dropped.  Returns its length, or -1 when it can never match
 * (§6.4.3: a wildcard only as the whole left-most label, and then over at
 * least two labels).
 */
static int presented(const uint8_t *s, size_t n, char *out)
{
	size_t label = 0, labels = 1;
	bool wild = n >= 2 && s[0] == '*' && s[1] == '.';

	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > CERTNAME_DOMAIN_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = lower((char)s[i]);
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			labels++;
		} else if (label_char(c) || (c == '*' && i == 0 && wild)) {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = c;
	}
	if (label == 0 || (wild && labels < 3))
		return -1;
	return (int)n;
}

/* ---- RFC 3492 (Punycode), encoding only --------------------------------- */

enum { PUNY_BASE = 36, PUNY_TMIN = 1, PUNY_TMAX = 26, PUNY_SKEW = 38, PUNY_DAMP = 700 };

static uint32_t puny_adapt(uint32_t delta, uint32_t points, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / points;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static char puny_digit(uint32_t d)
{
	return d < 26 ? (char)('a' + d) : (char)('0' + d - 26);
}

/* Code points cp[0..n) as Punycode into out[0..cap).  Returns the length,
 * or -1 when it does not fit (§6.3 of RFC 3492, with its overflow checks). */
static int puny_encode(const uint32_t *cp, size_t n, char *out, size_t cap)
{
	uint32_t cur = 128, delta = 0, bias = 72, h, b = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (cp[i] < 0x80) {
			if (o == cap)
				return -1;
			out[o++] = (char)cp[i];
			b++;
		}
	if (b) {
		if (o == cap)
			return -1;
		out[o++] = '-';
	}
	for (h = b; h < n; delta++, cur++) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= cur && cp[i] < m)
				m = cp[i];
		if (m - cur > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - cur) * (h + 1);
		cur = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < cur && ++delta == 0)
				return -1;
			if (cp[i] != cur)
				continue;
			uint32_t q = delta;
			for (uint32_t k = PUNY_BASE;; k += PUNY_BASE) {
				uint32_t t = k <= bias ? PUNY_TMIN : k >= bias + PUNY_TMAX ? PUNY_TMAX : k - bias;
				if (q < t)
					break;
				if (o == cap)
					return -1;
				out[o++] = puny_digit(t + (q - t) % (PUNY_BASE - t));
				q = (q - t) / (PUNY_BASE - t);
			}
			if (o == cap)
				return -1;
			out[o++] = puny_digit(q);
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
	}
	return (int)o;
}

/* One UTF-8 sequence at s[0..n): the code point in *cp, returns its length,
 * or 0 when it is not well-formed (overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_take(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* One label s[0..n) as compared: ASCII lowercased, or "xn--" and the
 * Punycode of a label with non-ASCII code points.  Returns its length
 * (1..63) in out, or -1. */
static int label_alabel(const uint8_t *s, size_t n, char *out)
{
	uint32_t cp[64];
	size_t ncp = 0, i = 0;
	bool ascii = true;
	int len;

	while (i < n) {
		size_t k = utf8_take(s + i, n - i, &cp[ncp]);
		if (k == 0 || ncp == 63)
			return -1;
		if (cp[ncp] < 0x80) {
			cp[ncp] = (uint8_t)lower((char)cp[ncp]);
			if (!label_char((char)cp[ncp]))
				return -1;
		} else if (cp[ncp] < 0xa0) {
			return -1;     /* C1 controls */
		} else {
			ascii = false;
		}
		ncp++;
		i += k;
	}
	if (ncp == 0)
		return -1;
	if (ascii) {
		for (i = 0; i < ncp; i++)
			out[i] = (char)cp[i];
		return (int)ncp;
	}
	memcpy(out, "xn--", 4);
	len = puny_encode(cp, ncp, out + 4, 63 - 4);
	return len < 0 ? -1 : len + 4;
}

int certname_domain(const char *s, size_t n, char *out, size_t cap)
{
	const uint8_t *u = (const uint8_t *)s;
	char buf[CERTNAME_DOMAIN_MAX + 64];
	size_t o = 0, start = 0;

	if (n && s[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (o)
			buf[o++] = '.';
		int len = label_alabel(u + start, i - start, buf + o);
		if (len < 0)
			return -1;
		o += (size_t)len;
		if (o > CERTNAME_DOMAIN_MAX)
			return -1;
		start = i + 1;
	}
	if (o + 1 > cap)
		return -1;
	memcpy(out, buf, o);
	out[o] = '\0';
	return (int)o;
}

/* A reference domain as compared; -1 when it can name no certificate
 * subject (not a domain name, or an IPv4 literal: its last label all
 * digits, which no top-level domain is). */
static int reference(const char *s, size_t n, char *out)
{
	int len = certname_domain(s, n, out, CERTNAME_DOMAIN_MAX + 1);
	const char *last;

	if (len < 0)
		return -1;
	last = memrchr(out, '.', (size_t)len);
	last = last ? last + 1 : out;
	for (const char *c = last; c < out + len; c++)
		if (*c < '0' || *c > '9')
			return len;
	return -1;
}

/* Presented p and reference r, both in the forms above (§6.4.1, §6.4.3). */
static bool dns_match(const char *p, size_t pl, const char *r, size_t rl)
{
	if (pl >= 2 && p[0] == '*' && p[1] == '.') {
		const char *dot = memchr(r, '.', rl);
		size_t rest;
		if (!dot || dot == r)
			return false;
		rest = rl - (size_t)(dot + 1 - r);
		return rest == pl - 2 && memcmp(dot + 1, p + 2, rest) == 0;
	}
	return pl == rl && memcmp(p, r, pl) == 0;
}

bool certname_dns_match(const char *p, size_t plen, const char *r, size_t rlen)
{
	char pn[CERTNAME_DOMAIN_MAX], rn[CERTNAME_DOMAIN_MAX + 1];
	int pl = presented((const uint8_t *)p, plen, pn), rl = reference(r, rlen, rn);

	return pl > 0 && rl > 0 && dns_match(pn, (size_t)pl, rn, (size_t)rl);
}

/* ---- extraction ------------------------------------------------------------ */

struct out {
	uint8_t *p;
	size_t cap, used;
	struct certname_info *info;
};

static void drop(struct out *o)
{
	if (o->info->dropped < UINT16_MAX)
		o->info->dropped++;
}

static void put(struct out *o, int kind, const char *name, int len)
{
	if (len <= 0 || o->cap - o->used < 2 + (size_t)len) {
		drop(o);
		return;
	}
	o->p[o->used] = (uint8_t)kind;
	o->p[o->used + 1] = (uint8_t)len;
	memcpy(o->p + o->used + 2, name, (size_t)len);
	o->used += 2 + (size_t)len;
}

static void put_dns(struct out *o, int kind, const struct der *v)
{
	char buf[CERTNAME_DOMAIN_MAX];

	put(o, kind, buf, presented(v->p, v->n, buf));
}

/* An SRV-ID, "_service.name" (RFC 4985 §2): the service one label of
 * letters, digits and hyphens, the name a presented DNS name; the whole at
 * most a domain name long. */
static void put_srv(struct out *o, const struct der *v)
{
	char buf[64 + 1 + CERTNAME_DOMAIN_MAX];
	const uint8_t *dot = v->n > 1 ? memchr(v->p, '.', v->n) : NULL;
	size_t svc = dot ? (size_t)(dot - v->p) : 0;
	int len;

	if (svc < 2 || svc > 64 || v->p[0] != '_') {
		drop(o);
		return;
	}
	for (size_t i = 1; i < svc; i++) {
		char c = lower((char)v->p[i]);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			drop(o);
			return;
		}
		buf[i] = c;
	}
	buf[0] = '_';
	buf[svc] = '.';
	len = presented(dot + 1, v->n - svc - 1, buf + svc + 1);
	if (len < 0 || svc + 1 + (size_t)len > CERTNAME_DOMAIN_MAX) {
		drop(o);
		return;
	}
	put(o, CERTNAME_SRV, buf, (int)svc + 1 + len);
}

/* An XmppAddr naming a server: a JID with neither localpart nor resource. */
static void put_xmpp(struct out *o, const struct der *v)
{
	char buf[CERTNAME_DOMAIN_MAX + 1];
	struct jid_view j;

	if (jid_parse((const char *)v->p, v->n, &j) < 0 || j.local_len || j.resource_len) {
		drop(o);
		return;
	}
	put(o, CERTNAME_XMPP, buf, certname_domain(j.domain, j.domain_len, buf, sizeof(buf)));
}

/* GeneralNames (RFC 5280 §4.2.1.6).  Sets *named when one of them is a
 * DNS-ID, SRV-ID, URI-ID or XmppAddr, usable or not: then no CN-ID counts. */
static bool san_names(struct der san, struct out *o, bool *named)
{
	while (san.n) {
		struct der v, oid, wrap, val;
		uint8_t tag, vtag;
		if (!der_take(&san, &tag, &v, NULL))
			return false;
		if (tag == DER_CTX2) {
			*named = true;
			put_dns(o, CERTNAME_DNS, &v);
		} else if (tag == DER_URI) {
			*named = true;
		} else if (tag == DER_CTX0) {
			/* otherName: type-id, [0] EXPLICIT value */
			if (!der_expect(&v, DER_OID, &oid, NULL) || !der_expect(&v, DER_CTX0, &wrap, NULL) ||
			    v.n || !der_take(&wrap, &vtag, &val, NULL) || wrap.n)
				return false;
			if (oid_is(&oid, oid_srv, sizeof(oid_srv))) {
				*named = true;
				if (vtag == DER_IA5)
					put_srv(o, &val);
				else
					drop(o);
			} else if (oid_is(&oid, oid_xmpp, sizeof(oid_xmpp))) {
				*named = true;
				if (vtag == DER_UTF8)
					put_xmpp(o, &val);
				else
					drop(o);
			}
		}
	}
	return true;
}

/* CN-IDs of the subject Name: RDNs holding exactly one attribute, a CN
 * whose value has the form of a domain name (RFC 6125 §2.3.1). */
static bool subject_cns(struct der name, struct out *o)
{
	while (name.n) {
		struct der rdn, ava, oid, val;
		uint8_t vtag;
		if (!der_expect(&name, DER_SET, &rdn, NULL) || !der_expect(&rdn, DER_SEQ, &ava, NULL) ||
		    !der_expect(&ava, DER_OID, &oid, NULL) || !der_take(&ava, &vtag, &val, NULL) || ava.n)
			return false;
		if (rdn.n) {   /* a multi-valued RDN: check its syntax, take nothing */
			while (rdn.n)
				if (!der_expect(&rdn, DER_SEQ, &ava, NULL))
					return false;
			continue;
		}
		if (oid_is(&oid, oid_cn, sizeof(oid_cn)) &&
		    (vtag == DER_UTF8 || vtag == DER_PRINTABLE || vtag == DER_IA5 || vtag == DER_TELETEX)) {
			char buf[CERTNAME_DOMAIN_MAX];
			int len = presented(val.p, val.n, buf);
			if (len > 0)
				put(o, CERTNAME_CN, buf, len);
		}
	}
	return true;
}

int certname_extract(const uint8_t *der, size_t len, uint8_t *out, size_t cap,
		     struct certname_info *info)
{
	struct der c = { der, len }, cert, tbs, x, issuer, subject, subj, exts = { 0 }, san = { 0 };
	struct out o = { out, cap, 0, info };
	bool have_exts = false, have_san = false, named = false;
	uint8_t tag;

	memset(info, 0, sizeof(*info));
	/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } */
	if (!der_expect(&c, DER_SEQ, &cert, NULL) || c.n || !der_expect(&cert, DER_SEQ, &tbs, NULL))
		goto bad;
	/* TBSCertificate: [0] version, serialNumber, signature, issuer, validity,
	 * subject, subjectPublicKeyInfo, [1] issuerUID, [2] subjectUID, [3] extensions */
	if (der_next_is(&tbs, DER_CTX0) && !der_expect(&tbs, DER_CTX0, &x, NULL))
		goto bad;
	if (!der_expect(&tbs, DER_INTEGER, &x, NULL) || !der_expect(&tbs, DER_SEQ, &x, NULL) ||
	    !der_expect(&tbs, DER_SEQ, &x, &issuer) || !der_expect(&tbs, DER_SEQ, &x, NULL) ||
	    !der_expect(&tbs, DER_SEQ, &subj, &subject) || !der_expect(&tbs, DER_SEQ, &x, NULL))
		goto bad;
	while (tbs.n) {
		if (!der_take(&tbs, &tag, &x, NULL))
			goto bad;
		if (tag == DER_CTX1 || tag == DER_CTX2)
			continue;
		if (tag != DER_CTX3 || have_exts || !der_expect(&x, DER_SEQ, &exts, NULL) || x.n)
			goto bad;
		have_exts = true;
	}
	/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue } */
	while (exts.n) {
		struct der ext, oid, val;
		if (!der_expect(&exts, DER_SEQ, &ext, NULL) || !der_expect(&ext, DER_OID, &oid, NULL) ||
		    (der_next_is(&ext, DER_BOOLEAN) && !der_expect(&ext, DER_BOOLEAN, &x, NULL)) ||
		    !der_expect(&ext, DER_OCTETS, &val, NULL) || ext.n)
			goto bad;
		if (!oid_is(&oid, oid_san, sizeof(oid_san)))
			continue;
		if (have_san || !der_expect(&val, DER_SEQ, &san, NULL) || val.n)
			goto bad;   /* RFC 5280 §4.2: an extension appears at most once */
		have_san = true;
	}
	if (!san_names(san, &o, &named))
		goto bad;
	if (!named && !subject_cns(subj, &o))
		goto bad;
	info->self_issued = issuer.n == subject.n && memcmp(issuer.p, subject.p, issuer.n) == 0;
	return (int)o.used;
bad:
	memset(info, 0, sizeof(*info));
	return -1;
}

bool certname_next(const uint8_t *ids, size_t n, size_t *at, int *kind, const char **name,
		   size_t *name_len)
{
	size_t i = *at;

	if (i >= n || n - i < 2 || n - i - 2 < ids[i + 1])
		return false;
	*kind = ids[i];
	*name_len = ids[i + 1];
	*name = (const char *)ids + i + 2;
	*at = i + 2 + ids[i + 1];
	return true;
}

bool certname_match(const uint8_t *ids, size_t n, const char *domain, const char *service)
{
	char ref[CERTNAME_DOMAIN_MAX + 1];
	int rl = reference(domain, strlen(domain), ref);
	size_t at = 0, sl = strlen(service), len;
	const char *name;
	int kind;

	if (rl < 0)
		return false;
	while (certname_next(ids, n, &at, &kind, &name, &len)) {
		switch (kind) {
		case CERTNAME_DNS:
		case CERTNAME_CN:
			if (dns_match(name, len, ref, (size_t)rl))
				return true;
			break;
		case CERTNAME_SRV:
			if (len > sl + 2 && name[sl + 1] == '.' && strncasecmp(name + 1, service, sl) == 0 &&
			    dns_match(name + sl + 2, len - sl - 2, ref, (size_t)rl))
				return true;
			break;
		case CERTNAME_XMPP:
			if (len == (size_t)rl && memcmp(name, ref, len) == 0)
				return true;
			break;
		}
	}
	return false;
}
