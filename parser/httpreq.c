/*
 * httpreq — HTTP/1.x request heads (httpreq.h).
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "parser/httpreq.h"

/* RFC 9110 §5.6.2 tchar */
static int tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The next line of buf[at..len): its length without CRLF in *n.  1: found;
 * 0: no LF yet; -400: a bare CR or LF, or a control byte other than HTAB. */
static int line(const char *buf, size_t len, size_t at, size_t *n)
{
	for (size_t i = at; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n')
			return -400;   /* LF without CR */
		if (c == '\r') {
			if (i + 1 >= len)
				return 0;
			if (buf[i + 1] != '\n')
				return -400;
			*n = i - at;
			return 1;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -400;
	}
	return 0;
}

static long request_line(const char *p, size_t n, struct httpreq *r)
{
	size_t m = 0, t, q;

	while (m < n && tchar((unsigned char)p[m]))
		m++;
	if (m == 0 || m > HTTPREQ_METHOD_MAX || m >= n || p[m] != ' ')
		return -400;
	memcpy(r->method, p, m);
	r->method[m] = 0;
	t = m + 1;
	if (t >= n || p[t] != '/')
		return -400;
	for (q = t; q < n && p[q] != ' '; q++)
		if ((unsigned char)p[q] <= ' ' || (unsigned char)p[q] >= 0x7f)
			return -400;
	if (q >= n)
		return -400;
	{
		size_t plen = strcspn(p + t, "? "), qlen = 0;
		if (plen > HTTPREQ_PATH_MAX)
			return -400;
		memcpy(r->path, p + t, plen);
		r->path[plen] = 0;
		if (p[t + plen] == '?') {
			qlen = q - (t + plen + 1);
			if (qlen > HTTPREQ_QUERY_MAX)
				return -400;
			memcpy(r->query, p + t + plen + 1, qlen);
		}
		r->query[qlen] = 0;
	}
	if (n - q - 1 != 8 || memcmp(p + q + 1, "HTTP/1.", 7) != 0)
		return -400;
	if (p[q + 8] != '0' && p[q + 8] != '1')
		return -505;
	return 0;
}

/* The field line f[0..n) is "name: value"; is its name `name`?  *v, *vn: the
 * value without the optional whitespace around it. */
static bool field(const char *f, size_t n, const char *name, const char **v, size_t *vn)
{
	size_t nl = strlen(name), a, b;

	if (n <= nl || f[nl] != ':' || strncasecmp(f, name, nl) != 0)
		return false;
	for (a = nl + 1; a < n && (f[a] == ' ' || f[a] == '\t'); a++)
		;
	for (b = n; b > a && (f[b - 1] == ' ' || f[b - 1] == '\t'); b--)
		;
	*v = f + a;
	*vn = b - a;
	return true;
}

/* One header field line: 0, or -400. */
static long header_field(const char *f, size_t n, struct httpreq *r)
{
	const char *v;
	size_t vn;

	if (f[0] == ' ' || f[0] == '\t' || !memchr(f, ':', n))
		return -400;   /* obs-fold, or not a field */
	if (field(f, n, "Content-Length", &v, &vn)) {
		int64_t x = 0;
		if (vn == 0 || vn > 18)
			return -400;
		for (size_t i = 0; i < vn; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -400;   /* a list ("5, 5") or a sign: RFC 9112 §6.3 */
			x = x * 10 + (v[i] - '0');
		}
		if (r->content_length >= 0 && r->content_length != x)
			return -400;
		r->content_length = x;
	} else if (field(f, n, "Transfer-Encoding", &v, &vn)) {
		r->chunked = true;
	} else if (field(f, n, "Expect", &v, &vn)) {
		r->expect_continue = vn == 12 && !strncasecmp(v, "100-continue", 12);
	} else if (field(f, n, "Content-Type", &v, &vn)) {
		if (vn > HTTPREQ_CTYPE_MAX)
			return -400;
		memcpy(r->content_type, v, vn);
		r->content_type[vn] = 0;
	} else if (field(f, n, "Range", &v, &vn)) {
		if (vn <= HTTPREQ_RANGE_MAX) {
			memcpy(r->range, v, vn);
			r->range[vn] = 0;
		}
	}
	return 0;
}

long httpreq_parse(const char *buf, size_t len, struct httpreq *r)
{
	size_t at = 0, n;
	int k;

	r->content_length = -1;
	r->chunked = r->expect_continue = false;
	r->content_type[0] = r->range[0] = 0;

	if (len > HTTPREQ_MAX)
		len = HTTPREQ_MAX;
	k = line(buf, len, 0, &n);
	if (k <= 0)
		return k < 0 ? k : len >= HTTPREQ_MAX ? -431 : 0;
	{
		long e = request_line(buf, n, r);
		if (e < 0)
			return e;
	}
	at = n + 2;
	for (;;) {
		k = line(buf, len, at, &n);
		if (k < 0)
			return k;
		if (k == 0)
			return len >= HTTPREQ_MAX ? -431 : 0;
		if (n == 0)
			return (long)(at + 2);
		{
			long e = header_field(buf + at, n, r);
			if (e < 0)
				return e;
		}
		at += n + 2;
	}
}

static bool digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*out = x;
	return true;
}

int httpreq_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *dash;
	uint64_t a, b;
	size_t n;

	if (strncasecmp(v, "bytes=", 6) != 0)
		return 0;
	v += 6;
	n = strlen(v);
	if (memchr(v, ',', n) || !(dash = memchr(v, '-', n)))
		return 0;   /* several ranges: the whole representation (RFC 9110 §14.2 allows it) */
	if (dash == v) {
		/* suffix: the last b bytes */
		if (!digits(dash + 1, n - 1, &b))
			return 0;
		if (b == 0 || size == 0)
			return -416;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (!digits(v, (size_t)(dash - v), &a))
		return 0;
	if (dash[1] == 0) {
		b = UINT64_MAX;
	} else if (!digits(dash + 1, strlen(dash + 1), &b) || b < a) {
		return 0;
	}
	if (a >= size)
		return -416;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}
