/*
 * jid — see jid.h for the contract.
 *
 * Everything here is a bounded scan over the caller's bytes: no allocation,
 * no globals, no locale.  Each part is checked in one pass that decodes
 * UTF-8 strictly (shortest form only, no surrogates, nothing above
 * U+10FFFF) and classifies every code point, so a part is accepted only if
 * every byte in it was looked at.
 *
 * What is deliberately not done (documented in jid.h's terms: "non-ASCII
 * bytes are kept as given"): no PRECIS / NFC normalisation, no IDNA
 * (A-label / U-label) conversion, no mapping of the ideographic full stops
 * U+3002, U+FF0E, U+FF61 to '.', and no canonical text form for IPv6
 * literals (only ASCII letters are lowercased).
 */
#include "parser/jid.h"

#include <arpa/inet.h>
#include <string.h>

#define LABEL_MAX 63

/*
 * Decode one UTF-8 sequence at s[0..n) (n >= 1).  Returns its length in
 * bytes and stores the code point in *cp, or returns 0 when the bytes are
 * not a well-formed, shortest-form sequence of a scalar value (overlong
 * forms, surrogates D800..DFFF, > U+10FFFF, truncated, stray continuation).
 * The ranges are those of RFC 3629 §4, so no decoded value needs a second
 * range check.
 */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		c &= 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;      /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F;      /* surrogates */
		c &= 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;      /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F;      /* above U+10FFFF */
		c &= 0x07;
	} else {
		return 0;               /* C0, C1, F5..FF, or a continuation byte */
	}
	if (n < len)
		return 0;
	/* Only the second byte has a narrowed range; the rest are 80..BF. */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	*cp = c;
	return len;
}

/* C0, DEL and C1 controls. */
static bool is_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* Unicode White_Space (controls among them are caught by is_control too). */
static bool is_space(unsigned cp)
{
	return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* What every part forbids: controls and the two noncharacters of jid.h. */
static bool is_forbidden_any(unsigned cp)
{
	return is_control(cp) || cp == 0xFFFE || cp == 0xFFFF;
}

/*
 * Walk s[0..n) as UTF-8 and call the class test on each code point.  The
 * test returns true when the code point is acceptable.  Returns false on a
 * bad length, bad UTF-8 or a refused code point.
 */
static bool part_scan(const char *s, size_t n, bool (*ok)(unsigned cp))
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (s == NULL || n == 0 || n > JID_PART_MAX)
		return false;
	while (i < n) {
		unsigned cp;
		size_t k = utf8_next(p + i, n - i, &cp);

		if (k == 0 || is_forbidden_any(cp) || !ok(cp))
			return false;
		i += k;
	}
	return true;
}

static bool local_cp_ok(unsigned cp)
{
	switch (cp) {
	case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
		return false;
	default:
		return !is_space(cp);
	}
}

static bool domain_cp_ok(unsigned cp)
{
	return cp != '@' && cp != '/' && !is_space(cp);
}

static bool resource_cp_ok(unsigned cp)
{
	(void)cp;   /* spaces allowed; controls already refused by part_scan */
	return true;
}

bool jid_local_valid(const char *s, size_t n)
{
	return part_scan(s, n, local_cp_ok);
}

bool jid_resource_valid(const char *s, size_t n)
{
	return part_scan(s, n, resource_cp_ok);
}

static bool is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* "[...]" holding an IPv6 address; inet_pton is a pure parser, no I/O. */
static bool ipv6_literal_ok(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];

	/* The longest textual IPv6 form (with embedded IPv4) fits INET6_ADDRSTRLEN. */
	if (n < 4 || n - 2 >= sizeof(buf))
		return false;
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1;
}

/*
 * The domainpart as it appears in a jid_view: the trailing dot, if any, has
 * already been removed by jid_parse, so a string ending in '.' here has an
 * empty last label and is refused.
 */
bool jid_domain_valid(const char *s, size_t n)
{
	size_t start = 0;

	if (!part_scan(s, n, domain_cp_ok))
		return false;
	if (s[0] == '[' || s[n - 1] == ']')
		return s[0] == '[' && s[n - 1] == ']' && ipv6_literal_ok(s, n);

	/* Labels: 1..63 bytes; ASCII bytes must be LDH (underscore tolerated)
	 * with no hyphen at either end; non-ASCII bytes (a U-label) already
	 * passed the UTF-8 and code point checks above. */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t len = i - start;
		if (len == 0 || len > LABEL_MAX)
			return false;
		if (s[start] == '-' || s[i - 1] == '-')
			return false;
		for (size_t j = start; j < i; j++) {
			unsigned char c = (unsigned char)s[j];
			if (c < 0x80 && !is_ldh(c))
				return false;
		}
		start = i + 1;
	}
	return true;
}

/*
 * RFC 7622 §3.2 splitting: the resource is everything after the first '/'
 * (it may itself hold '/' and '@'); the localpart is what precedes the
 * first '@' before that '/'.
 */
int jid_parse(const char *s, size_t n, struct jid_view *out)
{
	struct jid_view v = { 0 };
	const char *slash, *at;
	size_t head;

	if (s == NULL || out == NULL || n == 0)
		return -1;
	slash = memchr(s, '/', n);
	head = slash ? (size_t)(slash - s) : n;
	if (slash) {
		v.resource = slash + 1;
		v.resource_len = n - head - 1;
		if (!jid_resource_valid(v.resource, v.resource_len))
			return -1;
	}
	at = memchr(s, '@', head);
	if (at) {
		v.local = s;
		v.local_len = (size_t)(at - s);
		if (!jid_local_valid(v.local, v.local_len))
			return -1;
		v.domain = at + 1;
		v.domain_len = head - v.local_len - 1;
	} else {
		v.domain = s;
		v.domain_len = head;
	}
	/* One trailing dot is the absolute-name spelling of the same domain. */
	if (v.domain_len > 1 && v.domain[v.domain_len - 1] == '.')
		v.domain_len--;
	if (!jid_domain_valid(v.domain, v.domain_len))
		return -1;
	*out = v;
	return 0;
}

void jid_fold(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
}

int jid_canon(const struct jid_view *v, bool full, char *out, size_t cap)
{
	size_t need = v->domain_len + 1;   /* + NUL */
	size_t k = 0;
	bool res = full && v->resource_len > 0;

	if (v->local_len)
		need += v->local_len + 1;
	if (res)
		need += v->resource_len + 1;
	/* A jid_view from jid_parse is at most JID_MAX bytes, which fits int;
	 * a hand-built one larger than that is refused rather than truncated. */
	if (out == NULL || need > cap || need > (size_t)JID_MAX + 1)
		return -1;
	if (v->local_len) {
		jid_fold(v->local, v->local_len, out);
		k = v->local_len;
		out[k++] = '@';
	}
	jid_fold(v->domain, v->domain_len, out + k);
	k += v->domain_len;
	if (res) {
		out[k++] = '/';
		memcpy(out + k, v->resource, v->resource_len);
		k += v->resource_len;
	}
	out[k] = '\0';
	return (int)k;
}
