/*
 * ws — see ws.h for the contract and the receive path.
 *
 * The upgrade parser walks the request once, byte by byte, and judges each
 * line when its CRLF arrives (a control byte anywhere is refused at once, so
 * a TLS ClientHello or other binary sent to the WebSocket port fails on its
 * first byte).  Field values are read in place; only the 24-byte key is
 * copied.  Header names compare case-insensitively (RFC 7230 §3.2), list
 * tokens of Upgrade and Connection too (§6.1, §6.7); subprotocol names are
 * compared exactly (RFC 6455 §4.1: they are case-sensitive tokens).
 *
 * The frame decoder needs at most WS_HDR_MAX bytes of header and never looks
 * at payload.  The fragmentation and UTF-8 rules live in ws_msg so the
 * caller can apply them while the payload streams through its buffer.
 */
#include "parser/ws.h"

#include <stdio.h>
#include <string.h>

#include "tls/crypto.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

/* ---- upgrade request ---------------------------------------------------- */

/* u->seen bits */
#define WS_SEEN_REQLINE 0x0001
#define WS_SEEN_HOST 0x0002
#define WS_SEEN_UPGRADE 0x0004   /* an Upgrade field listing websocket */
#define WS_SEEN_CONN 0x0008      /* a Connection field listing upgrade */
#define WS_SEEN_KEY 0x0010
#define WS_SEEN_VERSION 0x0020
#define WS_SEEN_ORIGIN 0x0040

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_upgrade_init(struct ws_upgrade *u)
{
	memset(u, 0, sizeof(*u));
}

static long fail(struct ws_upgrade *u, int status, const char *why, const char *extra)
{
	u->why = why;
	u->extra = extra;
	return -status;
}

static int lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* p[0..n) equals the lower-case literal s, ignoring case. */
static int eq_ci(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	if (n != k)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != (uint8_t)s[i])
			return 0;
	return 1;
}

/* RFC 7230 tchar */
static int is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Does the comma list v[0..n) hold the token tok (ci: ignoring case)? */
static int list_has(const uint8_t *v, size_t n, const char *tok, int ci)
{
	size_t i = 0, tl = strlen(tok);

	while (i <= n) {
		size_t s, e;

		for (s = i; s < n && v[s] != ','; s++)
			;
		e = s;
		while (i < e && is_ows(v[i]))
			i++;
		while (e > i && is_ows(v[e - 1]))
			e--;
		if (e - i == tl &&
		    (ci ? eq_ci(v + i, tl, tok) : memcmp(v + i, tok, tl) == 0))
			return 1;
		i = s + 1;
	}
	return 0;
}

/* Canonical base64 of exactly 16 bytes (RFC 6455 §4.1): 22 symbols, the
 * last with its unused bits zero, then "==".  crypto_b64_decode checks
 * exactly that. */
static int key_ok(const uint8_t *v, size_t n)
{
	uint8_t raw[16];

	return n == WS_KEY_LEN && crypto_b64_decode((const char *)v, n, raw, sizeof(raw)) == 16;
}

static struct ws_span span(size_t off, size_t len)
{
	struct ws_span s = { (uint16_t)off, (uint16_t)len };
	return s;
}

/* "GET SP origin-form SP HTTP/1.1"; p points at the line, n excludes CRLF. */
static long request_line(struct ws_upgrade *u, const uint8_t *buf, size_t off, size_t n)
{
	const uint8_t *p = buf + off;
	size_t i = 0, t0;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return fail(u, 400, "bad request line", NULL);
	if (i != 3 || memcmp(p, "GET", 3) != 0)
		return fail(u, 405, "method is not GET", "Allow: GET");
	t0 = ++i;
	while (i < n && p[i] > 0x20 && p[i] < 0x7F)
		i++;
	if (i == t0 || i == n || p[i] != ' ' || p[t0] != '/')
		return fail(u, 400, "bad request-target", NULL);
	u->path = span(off + t0, i - t0);
	i++;
	if (n - i == 8 && memcmp(p + i, "HTTP/1.1", 8) == 0)
		return 0;
	if (n - i == 8 && memcmp(p + i, "HTTP/", 5) == 0 && p[i + 5] >= '0' && p[i + 5] <= '9' &&
	    p[i + 6] == '.' && p[i + 7] >= '0' && p[i + 7] <= '9')
		return fail(u, 505, "HTTP version is not 1.1", NULL);
	return fail(u, 400, "bad HTTP version", NULL);
}

/* One header field line buf[off .. off + n), CRLF excluded. */
static long field_line(struct ws_upgrade *u, const uint8_t *buf, size_t off, size_t n)
{
	const uint8_t *p = buf + off, *v;
	size_t i = 0, vs, ve, vn;

	if (is_ows(p[0]))
		return fail(u, 400, "obsolete line folding", NULL);
	if (++u->fields > WS_MAX_FIELDS)
		return fail(u, 431, "too many header fields", NULL);
	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return fail(u, 400, "bad header field", NULL);
	for (vs = i + 1; vs < n && is_ows(p[vs]); vs++)
		;
	for (ve = n; ve > vs && is_ows(p[ve - 1]); ve--)
		;
	v = p + vs;
	vn = ve - vs;

	if (eq_ci(p, i, "host")) {
		if ((u->seen & WS_SEEN_HOST) || vn == 0)
			return fail(u, 400, "missing or duplicate Host", NULL);
		u->seen |= WS_SEEN_HOST;
		u->host = span(off + vs, vn);
	} else if (eq_ci(p, i, "upgrade")) {
		if (list_has(v, vn, "websocket", 1))
			u->seen |= WS_SEEN_UPGRADE;
	} else if (eq_ci(p, i, "connection")) {
		if (list_has(v, vn, "upgrade", 1))
			u->seen |= WS_SEEN_CONN;
	} else if (eq_ci(p, i, "sec-websocket-key")) {
		if ((u->seen & WS_SEEN_KEY) || !key_ok(v, vn))
			return fail(u, 400, "bad or duplicate Sec-WebSocket-Key", NULL);
		u->seen |= WS_SEEN_KEY;
		memcpy(u->key, v, WS_KEY_LEN);
		u->key[WS_KEY_LEN] = '\0';
	} else if (eq_ci(p, i, "sec-websocket-version")) {
		/* RFC 6455 §11.3.5: the field must not appear more than once */
		if (u->seen & WS_SEEN_VERSION)
			return fail(u, 400, "duplicate Sec-WebSocket-Version", NULL);
		if (vn != 2 || memcmp(v, "13", 2) != 0)
			return fail(u, 426, "Sec-WebSocket-Version is not 13",
				    "Sec-WebSocket-Version: 13");
		u->seen |= WS_SEEN_VERSION;
	} else if (eq_ci(p, i, "sec-websocket-protocol")) {
		if (list_has(v, vn, "xmpp", 0))
			u->xmpp = 1;
	} else if (eq_ci(p, i, "origin")) {
		if (u->seen & WS_SEEN_ORIGIN)
			return fail(u, 400, "duplicate Origin", NULL);
		u->seen |= WS_SEEN_ORIGIN;
		u->has_origin = 1;
		u->origin = span(off + vs, vn);
	} else if (eq_ci(p, i, "content-length")) {
		/* A body would be read as WebSocket frames: refuse any. */
		if (vn != 1 || v[0] != '0')
			return fail(u, 400, "request has a body", NULL);
	} else if (eq_ci(p, i, "transfer-encoding")) {
		return fail(u, 400, "request has a body", NULL);
	}
	return 0;
}

static long request_end(struct ws_upgrade *u)
{
	if (!(u->seen & WS_SEEN_HOST))
		return fail(u, 400, "missing Host", NULL);
	if (!(u->seen & WS_SEEN_UPGRADE))
		return fail(u, 426, "not a WebSocket upgrade", "Upgrade: websocket");
	if (!(u->seen & WS_SEEN_CONN))
		return fail(u, 400, "Connection does not list upgrade", NULL);
	if (!(u->seen & WS_SEEN_VERSION))
		return fail(u, 426, "missing Sec-WebSocket-Version", "Sec-WebSocket-Version: 13");
	if (!(u->seen & WS_SEEN_KEY))
		return fail(u, 400, "missing Sec-WebSocket-Key", NULL);
	return 0;
}

long ws_upgrade_parse(struct ws_upgrade *u, const uint8_t *buf, size_t len)
{
	size_t i;

	if (u == NULL || buf == NULL)
		return -400;
	for (i = u->scan; i < len; i++) {
		uint8_t b = buf[i];
		size_t ln;
		long r;

		if (i >= WS_REQ_MAX) {
			u->scan = (uint16_t)i;
			return fail(u, 431, "request too large", NULL);
		}
		if (i > u->line && buf[i - 1] == '\r' && b != '\n')
			return fail(u, 400, "bare CR", NULL);
		if ((b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7F)
			return fail(u, 400, "control character", NULL);
		if (i == 0 && !is_tchar(b))
			return fail(u, 400, "not an HTTP request", NULL);
		if (b != '\n')
			continue;
		if (i == u->line || buf[i - 1] != '\r')
			return fail(u, 400, "bare LF", NULL);
		ln = i - 1 - u->line;
		if (!(u->seen & WS_SEEN_REQLINE)) {
			/* not empty: its first byte was a tchar */
			r = request_line(u, buf, u->line, ln);
			u->seen |= WS_SEEN_REQLINE;
		} else if (ln == 0) {
			u->scan = (uint16_t)(i + 1);
			r = request_end(u);
			return r < 0 ? r : (long)(i + 1);
		} else {
			r = field_line(u, buf, u->line, ln);
		}
		if (r < 0)
			return r;
		u->line = (uint16_t)(i + 1);
	}
	u->scan = (uint16_t)(len < WS_REQ_MAX ? len : WS_REQ_MAX);
	return 0;
}

/* ---- responses ------------------------------------------------------------ */

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	uint8_t in[WS_KEY_LEN + sizeof(WS_GUID) - 1];
	uint8_t digest[WC_SHA_DIGEST_SIZE];
	word32 olen = WS_ACCEPT_LEN;

	if (key == NULL || out == NULL)
		return -1;
	memcpy(in, key, WS_KEY_LEN);
	memcpy(in + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	if (wc_ShaHash(in, (word32)sizeof(in), digest) != 0)
		return -1;
	if (Base64_Encode_NoNl(digest, (word32)sizeof(digest), (byte *)out, &olen) != 0 ||
	    olen != WS_ACCEPT_LEN)
		return -1;
	out[WS_ACCEPT_LEN] = '\0';
	return 0;
}

/* snprintf's result as a length, or 0 when it did not fit. */
static size_t fitted(int k, size_t cap)
{
	return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}

size_t ws_upgrade_response(const char *key, int xmpp, char *out, size_t cap)
{
	char accept[WS_ACCEPT_LEN + 1];

	if (out == NULL || ws_accept_key(key, accept) != 0)
		return 0;
	return fitted(snprintf(out, cap,
			       "HTTP/1.1 101 Switching Protocols\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Accept: %s\r\n"
			       "%s"
			       "\r\n",
			       accept, xmpp ? "Sec-WebSocket-Protocol: xmpp\r\n" : ""),
		      cap);
}

const char *ws_http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

size_t ws_http_error(int status, const char *extra, char *out, size_t cap)
{
	if (out == NULL || status < 100 || status > 599)
		return 0;
	return fitted(snprintf(out, cap,
			       "HTTP/1.1 %d %s\r\n%s%s"
			       "Connection: close\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n",
			       status, ws_http_reason(status), extra ? extra : "",
			       extra ? "\r\n" : ""),
		      cap);
}

/* ---- the client's upgrade -------------------------------------------------- */

/* r->seen bits */
#define WS_RSEEN_STATUS 0x0001
#define WS_RSEEN_UPGRADE 0x0002
#define WS_RSEEN_CONN 0x0004
#define WS_RSEEN_ACCEPT 0x0008
#define WS_RSEEN_PROTO 0x0010

int ws_client_key(const uint8_t raw[16], char out[WS_KEY_LEN + 1])
{
	if (raw == NULL || out == NULL ||
	    crypto_b64_encode(raw, 16, out, WS_KEY_LEN + 1) != WS_KEY_LEN)
		return -1;
	out[WS_KEY_LEN] = '\0';
	return 0;
}

/* Visible ASCII only (no space, no control byte), at least one byte. */
static int visible(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if ((uint8_t)*s <= 0x20 || (uint8_t)*s >= 0x7F)
			return 0;
	return 1;
}

size_t ws_client_request(const char *host, const char *path, const char *key, char *out,
			 size_t cap)
{
	if (out == NULL || !visible(host) || !visible(path) || path[0] != '/' || key == NULL ||
	    strlen(key) != WS_KEY_LEN || !key_ok((const uint8_t *)key, WS_KEY_LEN))
		return 0;
	return fitted(snprintf(out, cap,
			       "GET %s HTTP/1.1\r\n"
			       "Host: %s\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: %s\r\n"
			       "Sec-WebSocket-Version: 13\r\n"
			       "Sec-WebSocket-Protocol: xmpp\r\n"
			       "\r\n",
			       path, host, key),
		      cap);
}

void ws_response_init(struct ws_response *r)
{
	memset(r, 0, sizeof(*r));
}

static long rfail(struct ws_response *r, const char *why)
{
	r->why = why;
	return -1;
}

/* "HTTP/1.1 SP 3DIGIT [SP reason-phrase]"; p[0..n), CRLF excluded. */
static long status_line(struct ws_response *r, const uint8_t *p, size_t n)
{
	unsigned st = 0;

	if (n < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
		return rfail(r, "bad status line");
	for (size_t i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return rfail(r, "bad status code");
		st = st * 10 + (unsigned)(p[i] - '0');
	}
	if (n > 12 && p[12] != ' ')
		return rfail(r, "bad status line");
	if (st < 100)
		return rfail(r, "bad status code");
	r->status = (uint16_t)st;
	if (st != 101)
		return rfail(r, "status is not 101");
	return 0;
}

static long rfield(struct ws_response *r, const uint8_t *p, size_t n, const char *key)
{
	size_t i = 0, vs, ve, vn;
	const uint8_t *v;

	if (is_ows(p[0]))
		return rfail(r, "obsolete line folding");
	if (++r->fields > WS_MAX_FIELDS)
		return rfail(r, "too many header fields");
	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return rfail(r, "bad header field");
	for (vs = i + 1; vs < n && is_ows(p[vs]); vs++)
		;
	for (ve = n; ve > vs && is_ows(p[ve - 1]); ve--)
		;
	v = p + vs;
	vn = ve - vs;
	if (eq_ci(p, i, "upgrade")) {
		if (list_has(v, vn, "websocket", 1))
			r->seen |= WS_RSEEN_UPGRADE;
	} else if (eq_ci(p, i, "connection")) {
		if (list_has(v, vn, "upgrade", 1))
			r->seen |= WS_RSEEN_CONN;
	} else if (eq_ci(p, i, "sec-websocket-accept")) {
		char want[WS_ACCEPT_LEN + 1];
		if (r->seen & WS_RSEEN_ACCEPT)
			return rfail(r, "duplicate Sec-WebSocket-Accept");
		if (ws_accept_key(key, want) != 0 || vn != WS_ACCEPT_LEN || memcmp(v, want, vn) != 0)
			return rfail(r, "wrong Sec-WebSocket-Accept");
		r->seen |= WS_RSEEN_ACCEPT;
	} else if (eq_ci(p, i, "sec-websocket-extensions")) {
		if (vn)
			return rfail(r, "an extension the client did not ask for");
	} else if (eq_ci(p, i, "sec-websocket-protocol")) {
		if ((r->seen & WS_RSEEN_PROTO) || vn != 4 || memcmp(v, "xmpp", 4) != 0)
			return rfail(r, "a subprotocol other than xmpp");
		r->seen |= WS_RSEEN_PROTO;
	}
	return 0;
}

static long response_end(struct ws_response *r)
{
	if (!(r->seen & WS_RSEEN_UPGRADE))
		return rfail(r, "no Upgrade: websocket");
	if (!(r->seen & WS_RSEEN_CONN))
		return rfail(r, "no Connection: upgrade");
	if (!(r->seen & WS_RSEEN_ACCEPT))
		return rfail(r, "no Sec-WebSocket-Accept");
	if (!(r->seen & WS_RSEEN_PROTO))
		return rfail(r, "no Sec-WebSocket-Protocol: xmpp");
	return 0;
}

long ws_response_parse(struct ws_response *r, const uint8_t *buf, size_t len, const char *key)
{
	if (r == NULL || buf == NULL || key == NULL || strlen(key) != WS_KEY_LEN)
		return -1;
	for (size_t i = r->scan; i < len; i++) {
		uint8_t b = buf[i];
		size_t ln;
		long k;

		if (i >= WS_REQ_MAX) {
			r->scan = (uint16_t)i;
			return rfail(r, "response head too large");
		}
		if (i > r->line && buf[i - 1] == '\r' && b != '\n')
			return rfail(r, "bare CR");
		if ((b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7F)
			return rfail(r, "control character");
		if (i == 0 && b != 'H')
			return rfail(r, "not an HTTP response");
		if (b != '\n')
			continue;
		if (i == r->line || buf[i - 1] != '\r')
			return rfail(r, "bare LF");
		ln = i - 1 - r->line;
		if (!(r->seen & WS_RSEEN_STATUS)) {
			r->seen |= WS_RSEEN_STATUS;
			k = status_line(r, buf + r->line, ln);
		} else if (ln == 0) {
			r->scan = (uint16_t)(i + 1);
			k = response_end(r);
			return k < 0 ? k : (long)(i + 1);
		} else {
			k = rfield(r, buf + r->line, ln, key);
		}
		if (k < 0)
			return k;
		r->line = (uint16_t)(i + 1);
	}
	r->scan = (uint16_t)(len < WS_REQ_MAX ? len : WS_REQ_MAX);
	return 0;
}

/* ---- frames --------------------------------------------------------------- */

static int opcode_ok(uint8_t op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

long ws_frame_decode(const uint8_t *p, size_t n, int role, uint64_t max_payload,
		     struct ws_frame *f)
{
	uint8_t b0, b1, len7;
	size_t ext, hl;
	uint64_t len;

	if (p == NULL || f == NULL)
		return -WS_CLOSE_PROTOCOL;
	memset(f, 0, sizeof(*f));
	if (n < 1)
		return 0;
	b0 = p[0];
	f->fin = b0 >> 7;
	f->opcode = b0 & 0x0F;
	if ((b0 & 0x70) != 0 || !opcode_ok(f->opcode))
		return -WS_CLOSE_PROTOCOL;
	if (ws_is_control(f->opcode) && !f->fin)
		return -WS_CLOSE_PROTOCOL;
	if (n < 2)
		return 0;
	b1 = p[1];
	f->masked = b1 >> 7;
	len7 = b1 & 0x7F;
	if (f->masked != (role == WS_SERVER))
		return -WS_CLOSE_PROTOCOL;
	if (ws_is_control(f->opcode) && len7 > WS_CONTROL_MAX)
		return -WS_CLOSE_PROTOCOL;
	ext = len7 == 127 ? 8 : len7 == 126 ? 2 : 0;
	hl = 2 + ext + (f->masked ? 4 : 0);
	if (ext == 2 && n >= 4) {
		len = ((uint64_t)p[2] << 8) | p[3];
		if (len < 126)
			return -WS_CLOSE_PROTOCOL;   /* not the shortest form */
	} else if (ext == 8 && n >= 3 && (p[2] & 0x80)) {
		return -WS_CLOSE_PROTOCOL;           /* most significant bit must be 0 */
	}
	if (n < 2 + ext)
		return 0;
	if (ext == 0) {
		len = len7;
	} else if (ext == 2) {
		len = ((uint64_t)p[2] << 8) | p[3];
	} else {
		len = 0;
		for (size_t i = 0; i < 8; i++)
			len = (len << 8) | p[2 + i];
		if (len <= 0xFFFF)
			return -WS_CLOSE_PROTOCOL;
	}
	if (!ws_is_control(f->opcode) && len > max_payload)
		return -WS_CLOSE_TOO_BIG;
	if (n < hl)
		return 0;
	if (f->masked)
		memcpy(f->mask, p + 2 + ext, 4);
	f->len = len;
	f->hdr_len = (uint8_t)hl;
	return (long)hl;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off)
{
	uint8_t k[8];
	uint64_t kw;
	size_t i = 0;

	for (size_t j = 0; j < 8; j++)
		k[j] = key[(off + j) & 3];
	memcpy(&kw, k, 8);
	/* Eight bytes at a time: the key repeats every 4, so a 64-bit word of it
	 * rotated to off lines up with every 8-byte step. */
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		w ^= kw;
		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] ^= k[i & 7];
}

static size_t encode(uint8_t *out, size_t cap, int fin, uint8_t opcode, uint64_t len,
		     const uint8_t *key)
{
	size_t ext = len < 126 ? 0 : len <= 0xFFFF ? 2 : 8;
	size_t hl = 2 + ext + (key ? 4 : 0);

	if (out == NULL || !opcode_ok(opcode) || (len >> 63) != 0)
		return 0;
	if (ws_is_control(opcode) && (!fin || len > WS_CONTROL_MAX))
		return 0;
	if (cap < hl)
		return 0;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	out[1] = (uint8_t)((key ? 0x80 : 0) | (ext == 0 ? len : ext == 2 ? 126 : 127));
	for (size_t i = 0; i < ext; i++)
		out[2 + i] = (uint8_t)(len >> (8 * (ext - 1 - i)));
	if (key)
		memcpy(out + 2 + ext, key, 4);
	return hl;
}

size_t ws_frame_header(uint8_t *out, size_t cap, int fin, uint8_t opcode, uint64_t len)
{
	return encode(out, cap, fin, opcode, len, NULL);
}

size_t ws_frame_header_masked(uint8_t *out, size_t cap, int fin, uint8_t opcode, uint64_t len,
			      const uint8_t key[4])
{
	return key ? encode(out, cap, fin, opcode, len, key) : 0;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

void ws_utf8_init(struct ws_utf8 *u)
{
	u->need = 0;
	u->lo = 0x80;
	u->hi = 0xBF;
}

long ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];

		if (u->need) {
			if (b < u->lo || b > u->hi)
				return -WS_CLOSE_INVALID;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xBF;
			continue;
		}
		if (b < 0x80) {
			/* skip a run of ASCII eight bytes at a time */
			while (i + 8 < n) {
				uint64_t w;
				memcpy(&w, p + i + 1, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			continue;
		}
		if (b >= 0xC2 && b <= 0xDF) {
			u->need = 1;
		} else if (b >= 0xE0 && b <= 0xEF) {
			u->need = 2;
			if (b == 0xE0)
				u->lo = 0xA0;   /* no overlongs */
			else if (b == 0xED)
				u->hi = 0x9F;   /* no surrogates */
		} else if (b >= 0xF0 && b <= 0xF4) {
			u->need = 3;
			if (b == 0xF0)
				u->lo = 0x90;   /* no overlongs */
			else if (b == 0xF4)
				u->hi = 0x8F;   /* nothing above U+10FFFF */
		} else {
			return -WS_CLOSE_INVALID;
		}
	}
	return 0;
}

int ws_utf8_complete(const struct ws_utf8 *u)
{
	return u->need == 0;
}

/* ---- messages ------------------------------------------------------------- */

void ws_msg_init(struct ws_msg *m)
{
	memset(m, 0, sizeof(*m));
	ws_utf8_init(&m->utf8);
}

long ws_msg_frame(struct ws_msg *m, const struct ws_frame *f, uint64_t max_msg)
{
	if (ws_is_control(f->opcode))
		return 0;
	if (f->opcode == WS_OP_CONT) {
		if (m->op == 0)
			return -WS_CLOSE_PROTOCOL;   /* nothing to continue */
	} else {
		if (m->op != 0)
			return -WS_CLOSE_PROTOCOL;   /* previous message not finished */
		m->op = f->opcode;
		m->len = 0;
		ws_utf8_init(&m->utf8);
	}
	if (f->len > max_msg || m->len > max_msg - f->len)
		return -WS_CLOSE_TOO_BIG;
	m->len += f->len;
	return 0;
}

long ws_msg_data(struct ws_msg *m, const uint8_t *p, size_t n)
{
	return m->op == WS_OP_TEXT ? ws_utf8_feed(&m->utf8, p, n) : 0;
}

long ws_msg_frame_end(struct ws_msg *m, const struct ws_frame *f)
{
	if (!f->fin || ws_is_control(f->opcode))
		return 0;
	if (m->op == WS_OP_TEXT && !ws_utf8_complete(&m->utf8))
		return -WS_CLOSE_INVALID;
	m->op = 0;
	return 1;
}

/* ---- close frames --------------------------------------------------------- */

int ws_close_code_ok(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

long ws_close_parse(const uint8_t *p, size_t n, uint16_t *code, size_t *reason_len)
{
	struct ws_utf8 u;

	*code = WS_CLOSE_NO_STATUS;
	*reason_len = 0;
	if (n == 0)
		return 0;
	if (n == 1 || n > WS_CONTROL_MAX)
		return -WS_CLOSE_PROTOCOL;
	*code = (uint16_t)((p[0] << 8) | p[1]);
	if (!ws_close_code_ok(*code))
		return -WS_CLOSE_PROTOCOL;
	ws_utf8_init(&u);
	if (ws_utf8_feed(&u, p + 2, n - 2) != 0 || !ws_utf8_complete(&u))
		return -WS_CLOSE_INVALID;
	*reason_len = n - 2;
	return 0;
}

size_t ws_close_payload(uint16_t code, const char *reason, size_t rlen, uint8_t *out, size_t cap)
{
	if (out == NULL || !ws_close_code_ok(code) || rlen > WS_CLOSE_REASON_MAX ||
	    (rlen && reason == NULL) || cap < 2 + rlen)
		return 0;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	if (rlen)
		memcpy(out + 2, reason, rlen);
	return 2 + rlen;
}

/* ---- RFC 7395 messages as bytes ------------------------------------------------ */

#define WS_NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

static int ws_blank(uint8_t b)
{
	return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

const uint8_t *ws_starts_el(const uint8_t *p, size_t n, const char *name)
{
	size_t nl = strlen(name);

	while (n && ws_blank(*p))
		p++, n--;
	if (n > nl + 1 && p[0] == '<' && !memcmp(p + 1, name, nl) &&
	    (ws_blank(p[nl + 1]) || p[nl + 1] == '/' || p[nl + 1] == '>'))
		return p + nl + 1;
	return NULL;
}

size_t ws_open_header(const uint8_t *attrs, size_t n, char *out, size_t cap, int *framing)
{
	static const char head[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'";
	static const char fr1[] = "xmlns='" WS_NS_FRAMING "'", fr2[] = "xmlns=\"" WS_NS_FRAMING "\"";
	static const char client[] = "xmlns='jabber:client'";
	size_t o = sizeof(head) - 1, i = 0;

	_Static_assert(sizeof(head) + 1 <= WS_OPEN_SLACK, "WS_OPEN_SLACK holds the header's own bytes");
	_Static_assert(sizeof(client) <= sizeof(fr1), "the replacement is not longer");
	if (framing)
		*framing = 0;
	while (n && ws_blank(attrs[n - 1]))
		n--;
	if (n && attrs[n - 1] == '>')
		n--;
	if (n && attrs[n - 1] == '/')
		n--;
	if (cap < WS_OPEN_SLACK || n > cap - WS_OPEN_SLACK)
		return 0;
	memcpy(out, head, sizeof(head) - 1);
	while (i < n) {
		if (n - i >= sizeof(fr1) - 1 && (!memcmp(attrs + i, fr1, sizeof(fr1) - 1) ||
						 !memcmp(attrs + i, fr2, sizeof(fr2) - 1))) {
			memcpy(out + o, client, sizeof(client) - 1);
			o += sizeof(client) - 1;
			i += sizeof(fr1) - 1;
			if (framing)
				*framing = 1;
			continue;
		}
		out[o++] = (char)attrs[i++];
	}
	out[o++] = '>';
	return o;
}

size_t ws_start_tag_end(const uint8_t *p, size_t n)
{
	uint8_t q = 0;

	for (size_t i = 1; i < n; i++) {
		if (q) {
			if (p[i] == q)
				q = 0;
		} else if (p[i] == '\'' || p[i] == '"') {
			q = p[i];
		} else if (p[i] == '>') {
			return i;
		}
	}
	return n;
}

size_t ws_tag_name_end(const uint8_t *p, size_t tag_end)
{
	size_t i = 0;

	while (i < tag_end && !ws_blank(p[i]) && p[i] != '/' && p[i] != '>')
		i++;
	return i;
}

int ws_has_attr(const uint8_t *p, size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 1; i + nl < n; i++)
		if (ws_blank(p[i - 1]) && !memcmp(p + i, name, nl) && (p[i + nl] == '=' || p[i + nl] == ' '))
			return 1;
	return 0;
}
