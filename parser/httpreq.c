/*
 * httpreq — HTTP/1.x request heads for the admin listener (httpreq.h).
 */
#include <string.h>

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
		size_t plen = strcspn(p + t, "? ");
		if (plen > HTTPREQ_PATH_MAX)
			return -400;
		memcpy(r->path, p + t, plen);
		r->path[plen] = 0;
	}
	if (n - q - 1 != 8 || memcmp(p + q + 1, "HTTP/1.", 7) != 0)
		return -400;
	if (p[q + 8] != '0' && p[q + 8] != '1')
		return -505;
	return 0;
}

long httpreq_parse(const char *buf, size_t len, struct httpreq *r)
{
	size_t at = 0, n;
	int k;

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
		if (buf[at] == ' ' || buf[at] == '\t' || !memchr(buf + at, ':', n))
			return -400;   /* obs-fold, or not a field */
		at += n + 2;
	}
}
