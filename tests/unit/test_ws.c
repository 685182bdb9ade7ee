/*
 * Unit tests for parser/ws.c: RFC 6455's handshake and frame examples
 * (§1.2, §1.3, §4.2.2, §5.7) and RFC 7395's, every HTTP status and every
 * close code the codec returns, and chunking invariance: the upgrade parser
 * fed 1..17 bytes at a time reports exactly what it reports for the whole
 * request, frame headers are "need more" on every strict prefix, and
 * unmasking or UTF-8 checking in pieces equals doing it at once; and the
 * RFC 7395 byte-level helpers (<open/>/<close/> recognition, <open/> as a
 * stream header, start tag scanning) on exact-size copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/ws.h"

#define MAXP (1u << 20)

/* ---- upgrade request ------------------------------------------------------ */

#define RFC6455_REQ                                              \
	"GET /chat HTTP/1.1\r\n"                                 \
	"Host: server.example.com\r\n"                           \
	"Upgrade: websocket\r\n"                                 \
	"Connection: Upgrade\r\n"                                \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"        \
	"Origin: http://example.com\r\n"                         \
	"Sec-WebSocket-Protocol: chat, superchat\r\n"            \
	"Sec-WebSocket-Version: 13\r\n"                          \
	"\r\n"

#define RFC7395_REQ                                              \
	"GET /xmpp-websocket HTTP/1.1\r\n"                       \
	"Host: example.com\r\n"                                  \
	"Upgrade: websocket\r\n"                                 \
	"Connection: Upgrade\r\n"                                \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"        \
	"Origin: http://example.com\r\n"                         \
	"Sec-WebSocket-Protocol: xmpp\r\n"                       \
	"Sec-WebSocket-Version: 13\r\n"                          \
	"\r\n"

/*
 * Feed in[0..len) `chunk` bytes at a time (0: at once) the way the edge does:
 * the buffer grows, the parser resumes.  Each call sees an exact-size heap
 * copy so ASan catches any read past len.
 */
static long feed(const char *in, size_t len, size_t chunk, struct ws_upgrade *u)
{
	size_t have = 0;
	long r = 0;

	ws_upgrade_init(u);
	if (chunk == 0)
		chunk = len ? len : 1;
	while (have < len) {
		uint8_t *c;

		have = have + chunk < len ? have + chunk : len;
		c = malloc(have);
		assert_non_null(c);
		memcpy(c, in, have);
		r = ws_upgrade_parse(u, c, have);
		free(c);
		if (r != 0)
			return r;
	}
	return r;
}

/* The whole-buffer result, after checking every chunking agrees with it. */
static long upgrade(const char *in, size_t len, struct ws_upgrade *u)
{
	long whole = feed(in, len, 0, u);

	for (size_t c = 1; c <= 17; c++) {
		struct ws_upgrade v;
		long r = feed(in, len, c, &v);

		assert_int_equal(r, whole);
		if (whole > 0) {
			assert_memory_equal(&v.path, &u->path, sizeof(v.path));
			assert_memory_equal(&v.host, &u->host, sizeof(v.host));
			assert_memory_equal(&v.origin, &u->origin, sizeof(v.origin));
			assert_int_equal(v.has_origin, u->has_origin);
			assert_int_equal(v.xmpp, u->xmpp);
			assert_string_equal(v.key, u->key);
		} else if (whole < 0) {
			assert_string_equal(v.why, u->why);
			assert_ptr_equal(v.extra, u->extra);
		}
	}
	return whole;
}

static long upgrade_s(const char *in, struct ws_upgrade *u)
{
	return upgrade(in, strlen(in), u);
}

static void assert_span(const char *buf, struct ws_span s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(buf + s.off, want, s.len);
}

static void test_upgrade_rfc6455(void **state)
{
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(upgrade_s(RFC6455_REQ, &u), strlen(RFC6455_REQ));
	assert_span(RFC6455_REQ, u.path, "/chat");
	assert_span(RFC6455_REQ, u.host, "server.example.com");
	assert_int_equal(u.has_origin, 1);
	assert_span(RFC6455_REQ, u.origin, "http://example.com");
	assert_int_equal(u.xmpp, 0);
	assert_string_equal(u.key, "dGhlIHNhbXBsZSBub25jZQ==");
}

static void test_upgrade_rfc7395_with_frame_after(void **state)
{
	char buf[512];
	struct ws_upgrade u;

	(void)state;
	snprintf(buf, sizeof(buf), "%s\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", RFC7395_REQ);
	assert_int_equal(upgrade_s(buf, &u), strlen(RFC7395_REQ));
	assert_int_equal(u.xmpp, 1);
	assert_span(buf, u.path, "/xmpp-websocket");
}

static void test_upgrade_tolerated_forms(void **state)
{
	const char *req =
		"GET /ws?a=b HTTP/1.1\r\n"
		"host:example.com:5280\r\n"
		"UPGRADE: h2c ,  WebSocket\r\n"
		"connection: keep-alive,upgrade\r\n"
		"sec-websocket-key:\t+/+/AAAAAAAAAAAAAAAAAw==  \r\n"
		"SEC-WEBSOCKET-VERSION: 13\r\n"
		"Sec-WebSocket-Protocol: chat\r\n"
		"Sec-WebSocket-Protocol: superchat, xmpp\r\n"
		"Sec-WebSocket-Extensions: permessage-deflate\r\n"
		"Content-Length: 0\r\n"
		"X-Empty:\r\n"
		"User-Agent: test \xc3\xa9\r\n"
		"\r\n";
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(upgrade_s(req, &u), strlen(req));
	assert_span(req, u.path, "/ws?a=b");
	assert_span(req, u.host, "example.com:5280");
	assert_int_equal(u.has_origin, 0);
	assert_int_equal(u.origin.len, 0);
	assert_int_equal(u.xmpp, 1);
	assert_string_equal(u.key, "+/+/AAAAAAAAAAAAAAAAAw==");
}

/* A valid request with one line replaced (or, if `line` is NULL, dropped). */
static void build(char *out, size_t cap, const char *drop, const char *line)
{
	static const char *const lines[] = {
		"Host: example.com", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
	};
	size_t n = (size_t)snprintf(out, cap, "GET /xmpp HTTP/1.1\r\n");

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *l = lines[i];
		if (drop && strncmp(l, drop, strlen(drop)) == 0)
			l = line;
		if (l)
			n += (size_t)snprintf(out + n, cap - n, "%s\r\n", l);
	}
	snprintf(out + n, cap - n, "\r\n");
}

struct bad_case {
	const char *drop;   /* prefix of the line to replace; NULL: raw holds the request */
	const char *line;   /* replacement; NULL drops the line */
	const char *raw;
	int status;
	const char *extra;
};

static void test_upgrade_errors(void **state)
{
	static const struct bad_case cases[] = {
		/* request line */
		{ NULL, NULL, "POST /xmpp HTTP/1.1\r\n\r\n", 405, "Allow: GET" },
		{ NULL, NULL, "get /xmpp HTTP/1.1\r\n\r\n", 405, "Allow: GET" },
		{ NULL, NULL, "GET  /xmpp HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp  HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.1 \r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET xmpp HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET http://example.com/xmpp HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /x\xc3\xa9 HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.0\r\n\r\n", 505, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/2.0\r\n\r\n", 505, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.10\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp http/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.1\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.1\rX\r\n", 400, NULL },
		{ NULL, NULL, "\r\nGET /xmpp HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, " GET /xmpp HTTP/1.1\r\n\r\n", 400, NULL },
		{ NULL, NULL, "\x16\x03\x01\x02\x00", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.1\r\nHost: a\x01" "b\r\n\r\n", 400, NULL },
		{ NULL, NULL, "GET /xmpp HTTP/1.1\r\nHost: a\x7f\r\n\r\n", 400, NULL },
		/* fields */
		{ "Host", "Host : example.com", NULL, 400, NULL },
		{ "Host", "Host", NULL, 400, NULL },
		{ "Host", ": example.com", NULL, 400, NULL },
		{ "Host", "Ho(st: example.com", NULL, 400, NULL },
		{ "Host", "Host:", NULL, 400, NULL },
		{ "Host", NULL, NULL, 400, NULL },
		{ "Host", "Host: a\r\nHost: b", NULL, 400, NULL },
		{ "Host", "Host: a\r\n b", NULL, 400, NULL },   /* obs-fold */
		{ "Host", "Host: a\r\n\tb", NULL, 400, NULL },
		{ "Host", "Host: a\nX: b", NULL, 400, NULL },
		{ "Upgrade", NULL, NULL, 426, "Upgrade: websocket" },
		{ "Upgrade", "Upgrade: websockets", NULL, 426, "Upgrade: websocket" },
		{ "Upgrade", "Upgrade: websocket/13", NULL, 426, "Upgrade: websocket" },
		{ "Connection", NULL, NULL, 400, NULL },
		{ "Connection", "Connection: keep-alive", NULL, 400, NULL },
		{ "Connection", "Connection: upgraded", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", NULL, NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA", NULL, 400, NULL },
		{ "Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
		  "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", NULL, 400, NULL },
		{ "Sec-WebSocket-Version", NULL, NULL, 426, "Sec-WebSocket-Version: 13" },
		{ "Sec-WebSocket-Version", "Sec-WebSocket-Version: 8", NULL, 426,
		  "Sec-WebSocket-Version: 13" },
		{ "Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8", NULL, 426,
		  "Sec-WebSocket-Version: 13" },
		{ "Sec-WebSocket-Version", "Sec-WebSocket-Version: 013", NULL, 426,
		  "Sec-WebSocket-Version: 13" },
		{ "Sec-WebSocket-Version", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13",
		  NULL, 400, NULL },
		{ "Host", "Host: a\r\nOrigin: x\r\nOrigin: y", NULL, 400, NULL },
		{ "Host", "Host: a\r\nContent-Length: 5", NULL, 400, NULL },
		{ "Host", "Host: a\r\nContent-Length: 00", NULL, 400, NULL },
		{ "Host", "Host: a\r\nTransfer-Encoding: chunked", NULL, 400, NULL },
	};
	char buf[1024];
	struct ws_upgrade u;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		long r;

		if (c->raw)
			snprintf(buf, sizeof(buf), "%s", c->raw);
		else
			build(buf, sizeof(buf), c->drop, c->line);
		r = upgrade_s(buf, &u);
		if (r != -c->status)
			fail_msg("case %zu: %ld (%s) for\n%s", i, r, u.why ? u.why : "-", buf);
		assert_non_null(u.why);
		if (c->extra)
			assert_string_equal(u.extra, c->extra);
		else
			assert_null(u.extra);
	}
	/* the baseline of build() is valid */
	build(buf, sizeof(buf), NULL, NULL);
	assert_int_equal(upgrade_s(buf, &u), strlen(buf));
	assert_int_equal(u.has_origin, 0);
}

static void test_upgrade_early_verdicts(void **state)
{
	struct ws_upgrade u;

	(void)state;
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"\x16", 1), -400);
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"<", 1), -400);
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"GET /x HT\x00", 10), -400);
	/* a wrong method is judged when its line is complete, not before */
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"PUT /x HTTP/1.1", 15), 0);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"PUT /x HTTP/1.1\r\n", 17), -405);
	/* a bad field fails at its line, before the request ends */
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"GET /x HTTP/1.1\r\nA b\r\n", 22),
			 -400);
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)"", 0), 0);
	assert_int_equal(ws_upgrade_parse(NULL, (const uint8_t *)"", 0), -400);
	assert_int_equal(ws_upgrade_parse(&u, NULL, 0), -400);
}

static void test_upgrade_size_bound(void **state)
{
	char *buf = malloc(WS_REQ_MAX + 64);
	const char *head = "GET /xmpp HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
			   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\nX-Pad: ";
	size_t h = strlen(head), pad;
	struct ws_upgrade u;

	(void)state;
	assert_non_null(buf);
	/* exactly WS_REQ_MAX bytes: accepted */
	pad = WS_REQ_MAX - h - 4;
	memcpy(buf, head, h);
	memset(buf + h, 'p', pad);
	memcpy(buf + h + pad, "\r\n\r\n", 4);
	assert_int_equal(feed(buf, WS_REQ_MAX, 0, &u), WS_REQ_MAX);
	assert_int_equal(feed(buf, WS_REQ_MAX, 1, &u), WS_REQ_MAX);
	assert_int_equal(feed(buf, WS_REQ_MAX, 1000, &u), WS_REQ_MAX);
	/* one byte more: 431 on the byte past the bound, need-more before it */
	memset(buf + h, 'p', pad + 1);
	memcpy(buf + h + pad + 1, "\r\n\r\n", 4);
	assert_int_equal(feed(buf, WS_REQ_MAX + 1, 0, &u), -431);
	assert_int_equal(feed(buf, WS_REQ_MAX, 0, &u), 0);
	assert_int_equal(feed(buf, WS_REQ_MAX + 1, 7, &u), -431);
	assert_int_equal(feed(buf, WS_REQ_MAX + 5, 1, &u), -431);
	assert_string_equal(u.why, "request too large");
	free(buf);
}

static void test_upgrade_field_count(void **state)
{
	char buf[4096];
	size_t n;
	struct ws_upgrade u;

	(void)state;
	build(buf, sizeof(buf), NULL, NULL);
	n = strlen(buf) - 2;   /* before the blank line */
	for (int i = 5; i < WS_MAX_FIELDS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: y\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	assert_int_equal(upgrade_s(buf, &u), strlen(buf));
	snprintf(buf + n, sizeof(buf) - n, "X-last: y\r\n\r\n");
	assert_int_equal(upgrade_s(buf, &u), -431);
	assert_string_equal(u.why, "too many header fields");
}

/* ---- responses ------------------------------------------------------------ */

static void test_accept_key_rfc6455(void **state)
{
	char acc[WS_ACCEPT_LEN + 1];

	(void)state;
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc), 0);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key(NULL, acc), -1);
}

static void test_upgrade_response(void **state)
{
	const char *want =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		"Sec-WebSocket-Protocol: xmpp\r\n"
		"\r\n";
	const char *plain =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		"\r\n";
	char out[256];

	(void)state;
	assert_int_equal(ws_upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", 1, out, sizeof(out)),
			 strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(ws_upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", 0, out, sizeof(out)),
			 strlen(plain));
	assert_string_equal(out, plain);
	assert_int_equal(ws_upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", 1, out, strlen(want) + 1),
			 strlen(want));
	assert_int_equal(ws_upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", 1, out, strlen(want)), 0);
	assert_int_equal(ws_upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", 1, NULL, 0), 0);
}

static void test_http_error(void **state)
{
	char out[256];
	const char *w426 = "HTTP/1.1 426 Upgrade Required\r\n"
			   "Sec-WebSocket-Version: 13\r\n"
			   "Connection: close\r\n"
			   "Content-Length: 0\r\n\r\n";
	const char *w400 = "HTTP/1.1 400 Bad Request\r\n"
			   "Connection: close\r\n"
			   "Content-Length: 0\r\n\r\n";
	static const int st[] = { 101, 400, 403, 404, 405, 413, 426, 431, 500, 503, 505 };

	(void)state;
	assert_int_equal(ws_http_error(426, "Sec-WebSocket-Version: 13", out, sizeof(out)),
			 strlen(w426));
	assert_string_equal(out, w426);
	assert_int_equal(ws_http_error(400, NULL, out, sizeof(out)), strlen(w400));
	assert_string_equal(out, w400);
	assert_int_equal(ws_http_error(400, NULL, out, strlen(w400)), 0);
	assert_int_equal(ws_http_error(99, NULL, out, sizeof(out)), 0);
	assert_int_equal(ws_http_error(600, NULL, out, sizeof(out)), 0);
	assert_int_equal(ws_http_error(400, NULL, NULL, 10), 0);
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		assert_string_not_equal(ws_http_reason(st[i]), "Error");
	assert_string_equal(ws_http_reason(418), "Error");
	assert_string_equal(ws_http_reason(431), "Request Header Fields Too Large");
}

/* ---- frames --------------------------------------------------------------- */

/* Decode p[0..n) and check every strict prefix of the header is need-more. */
static long decode(const uint8_t *p, size_t n, int role, uint64_t max, struct ws_frame *f)
{
	long r = ws_frame_decode(p, n, role, max, f);

	if (r > 0) {
		struct ws_frame g;
		for (size_t k = 0; k < (size_t)r; k++) {
			uint8_t *c = malloc(k ? k : 1);
			assert_non_null(c);
			memcpy(c, p, k);
			assert_int_equal(ws_frame_decode(c, k, role, max, &g), 0);
			free(c);
		}
	}
	return r;
}

static void test_frames_rfc6455_examples(void **state)
{
	static const uint8_t hello_unmasked[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const uint8_t hello_masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
						0x9f, 0x4d, 0x51, 0x58 };
	static const uint8_t frag1[] = { 0x01, 0x03, 0x48, 0x65, 0x6c };
	static const uint8_t frag2[] = { 0x80, 0x02, 0x6c, 0x6f };
	static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const uint8_t pong_masked[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
					       0x9f, 0x4d, 0x51, 0x58 };
	static const uint8_t bin256[] = { 0x82, 0x7E, 0x01, 0x00 };
	static const uint8_t bin64k[] = { 0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0 };
	uint8_t buf[16], hdr[WS_HDR_MAX];
	struct ws_frame f;

	(void)state;
	assert_int_equal(decode(hello_unmasked, sizeof(hello_unmasked), WS_CLIENT, MAXP, &f), 2);
	assert_int_equal(f.fin, 1);
	assert_int_equal(f.opcode, WS_OP_TEXT);
	assert_int_equal(f.masked, 0);
	assert_int_equal(f.len, 5);
	assert_memory_equal(hello_unmasked + 2, "Hello", 5);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_TEXT, 5), 2);
	assert_memory_equal(hdr, hello_unmasked, 2);

	assert_int_equal(decode(hello_masked, sizeof(hello_masked), WS_SERVER, MAXP, &f), 6);
	assert_int_equal(f.masked, 1);
	assert_int_equal(f.hdr_len, 6);
	assert_memory_equal(f.mask, "\x37\xfa\x21\x3d", 4);
	memcpy(buf, hello_masked + 6, 5);
	ws_mask(buf, 5, f.mask, 0);
	assert_memory_equal(buf, "Hello", 5);
	assert_int_equal(ws_frame_header_masked(hdr, sizeof(hdr), 1, WS_OP_TEXT, 5, f.mask), 6);
	assert_memory_equal(hdr, hello_masked, 6);
	ws_mask(buf, 5, f.mask, 0);
	assert_memory_equal(buf, hello_masked + 6, 5);

	assert_int_equal(decode(frag1, sizeof(frag1), WS_CLIENT, MAXP, &f), 2);
	assert_int_equal(f.fin, 0);
	assert_int_equal(f.opcode, WS_OP_TEXT);
	assert_int_equal(f.len, 3);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 0, WS_OP_TEXT, 3), 2);
	assert_memory_equal(hdr, frag1, 2);
	assert_int_equal(decode(frag2, sizeof(frag2), WS_CLIENT, MAXP, &f), 2);
	assert_int_equal(f.fin, 1);
	assert_int_equal(f.opcode, WS_OP_CONT);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_CONT, 2), 2);
	assert_memory_equal(hdr, frag2, 2);

	assert_int_equal(decode(ping, sizeof(ping), WS_CLIENT, MAXP, &f), 2);
	assert_int_equal(f.opcode, WS_OP_PING);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_PING, 5), 2);
	assert_memory_equal(hdr, ping, 2);
	assert_int_equal(decode(pong_masked, sizeof(pong_masked), WS_SERVER, MAXP, &f), 6);
	assert_int_equal(f.opcode, WS_OP_PONG);
	assert_int_equal(f.len, 5);

	assert_int_equal(decode(bin256, sizeof(bin256), WS_CLIENT, MAXP, &f), 4);
	assert_int_equal(f.opcode, WS_OP_BINARY);
	assert_int_equal(f.len, 256);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_BINARY, 256), 4);
	assert_memory_equal(hdr, bin256, 4);
	assert_int_equal(decode(bin64k, sizeof(bin64k), WS_CLIENT, MAXP, &f), 10);
	assert_int_equal(f.len, 65536);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_BINARY, 65536), 10);
	assert_memory_equal(hdr, bin64k, 10);
}

static void test_frame_lengths(void **state)
{
	static const uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 1u << 20,
					 0x7FFFFFFFFFFFFFFFull };
	static const size_t hl[] = { 2, 2, 2, 4, 4, 4, 10, 10, 10 };
	uint8_t key[4] = { 1, 2, 3, 4 }, hdr[WS_HDR_MAX];
	struct ws_frame f;

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_BINARY, lens[i]);
		assert_int_equal(n, hl[i]);
		assert_int_equal(decode(hdr, n, WS_CLIENT, UINT64_MAX, &f), (long)n);
		assert_int_equal(f.len, lens[i]);
		n = ws_frame_header_masked(hdr, sizeof(hdr), 0, WS_OP_TEXT, lens[i], key);
		assert_int_equal(n, hl[i] + 4);
		assert_int_equal(decode(hdr, n, WS_SERVER, UINT64_MAX, &f), (long)n);
		assert_int_equal(f.len, lens[i]);
		assert_int_equal(f.fin, 0);
		assert_memory_equal(f.mask, key, 4);
		/* too small an output buffer */
		assert_int_equal(ws_frame_header(hdr, hl[i] - 1, 1, WS_OP_BINARY, lens[i]), 0);
	}
	/* max_payload: equal is fine, one more is 1009, judged before the mask key */
	assert_int_equal(ws_frame_header_masked(hdr, sizeof(hdr), 1, WS_OP_TEXT, 1000, key), 8);
	assert_int_equal(decode(hdr, 8, WS_SERVER, 1000, &f), 8);
	assert_int_equal(ws_frame_decode(hdr, 8, WS_SERVER, 999, &f), -1009);
	assert_int_equal(ws_frame_decode(hdr, 4, WS_SERVER, 999, &f), -1009);
	/* control frames are bound by 125, not by max_payload */
	assert_int_equal(ws_frame_header_masked(hdr, sizeof(hdr), 1, WS_OP_PING, 125, key), 6);
	assert_int_equal(decode(hdr, 6, WS_SERVER, 10, &f), 6);
}

static void test_frame_errors(void **state)
{
	struct {
		uint8_t b[10];
		size_t n;      /* bytes needed for the verdict */
		int role;
		long want;
	} cases[] = {
		{ { 0xC1, 0x80 }, 1, WS_SERVER, -1002 },   /* RSV1 */
		{ { 0xA1, 0x80 }, 1, WS_SERVER, -1002 },   /* RSV2 */
		{ { 0x91, 0x80 }, 1, WS_SERVER, -1002 },   /* RSV3 */
		{ { 0x83, 0x80 }, 1, WS_SERVER, -1002 },   /* opcodes 3..7 */
		{ { 0x87, 0x80 }, 1, WS_SERVER, -1002 },
		{ { 0x8B, 0x80 }, 1, WS_SERVER, -1002 },   /* opcodes B..F */
		{ { 0x8F, 0x80 }, 1, WS_SERVER, -1002 },
		{ { 0x08, 0x80 }, 1, WS_SERVER, -1002 },   /* fragmented close */
		{ { 0x09, 0x80 }, 1, WS_SERVER, -1002 },   /* fragmented ping */
		{ { 0x0A, 0x80 }, 1, WS_SERVER, -1002 },   /* fragmented pong */
		{ { 0x81, 0x05 }, 2, WS_SERVER, -1002 },   /* client frame not masked */
		{ { 0x81, 0x85 }, 2, WS_CLIENT, -1002 },   /* server frame masked */
		{ { 0x89, 0xFE }, 2, WS_SERVER, -1002 },   /* control, 126 */
		{ { 0x88, 0xFF }, 2, WS_SERVER, -1002 },   /* control, 127 */
		{ { 0x82, 0xFE, 0x00, 0x7D }, 4, WS_SERVER, -1002 },  /* 16-bit holding 125 */
		{ { 0x82, 0xFE, 0x00, 0x00 }, 4, WS_SERVER, -1002 },
		{ { 0x82, 0xFF, 0x80 }, 3, WS_SERVER, -1002 },        /* 64-bit, MSB set */
		{ { 0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF }, 10, WS_SERVER, -1002 },
		{ { 0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5 }, 10, WS_SERVER, -1002 },
		{ { 0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0 }, 10, WS_SERVER, -1009 },
		{ { 0x82, 0xFE, 0xFF, 0xFF }, 4, WS_SERVER, -1009 },
	};
	struct ws_frame f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < cases[i].n; k++)
			if (ws_frame_decode(cases[i].b, k, cases[i].role, 60000, &f) != 0)
				fail_msg("case %zu: verdict before byte %zu", i, cases[i].n);
		if (ws_frame_decode(cases[i].b, cases[i].n, cases[i].role, 60000, &f) !=
		    cases[i].want)
			fail_msg("case %zu", i);
	}
	assert_int_equal(ws_frame_decode(NULL, 2, WS_SERVER, 10, &f), -1002);
}

static void test_encoder_refusals(void **state)
{
	uint8_t hdr[WS_HDR_MAX], key[4] = { 9, 9, 9, 9 };

	(void)state;
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_PING, 126), 0);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 0, WS_OP_CLOSE, 2), 0);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, 3, 2), 0);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, 0x10, 2), 0);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_TEXT, 1ull << 63), 0);
	assert_int_equal(ws_frame_header(NULL, 14, 1, WS_OP_TEXT, 1), 0);
	assert_int_equal(ws_frame_header_masked(hdr, sizeof(hdr), 1, WS_OP_TEXT, 1, NULL), 0);
	assert_int_equal(ws_frame_header_masked(hdr, 5, 1, WS_OP_TEXT, 1, key), 0);
	assert_int_equal(ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_PONG, 125), 2);
}

static void test_mask_in_pieces(void **state)
{
	uint8_t a[300], b[300], key[4] = { 0xde, 0xad, 0xbe, 0xef };

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 3);
	memcpy(b, a, sizeof(a));
	ws_mask(a, sizeof(a), key, 0);
	for (size_t i = 0; i < sizeof(a); i++)
		assert_int_equal(a[i], (uint8_t)(b[i] ^ key[i & 3]));
	for (size_t step = 1; step <= 19; step++) {
		uint8_t c[300];
		memcpy(c, b, sizeof(c));
		for (size_t off = 0; off < sizeof(c); off += step) {
			size_t k = off + step <= sizeof(c) ? step : sizeof(c) - off;
			ws_mask(c + off, k, key, off);
		}
		assert_memory_equal(c, a, sizeof(a));
	}
	/* large offsets keep the phase */
	memcpy(a, b, 8);
	ws_mask(a, 8, key, 0x100000003ull);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(a[i], (uint8_t)(b[i] ^ key[(i + 3) & 3]));
	ws_mask(a, 0, key, 5);
}

/* ---- UTF-8 ---------------------------------------------------------------- */

struct u8case {
	const char *s;
	long feed;       /* 0 or -1007 */
	int complete;    /* when feed == 0 */
};

static void test_utf8(void **state)
{
	static const struct u8case cases[] = {
		{ "", 0, 1 },
		{ "plain ascii, long enough for the 8-byte path", 0, 1 },
		{ "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0, 1 },  /* κόσμε */
		{ "\xc2\x80", 0, 1 },
		{ "\xdf\xbf", 0, 1 },
		{ "\xe0\xa0\x80", 0, 1 },
		{ "\xed\x9f\xbf", 0, 1 },
		{ "\xee\x80\x80", 0, 1 },
		{ "\xef\xbf\xbf", 0, 1 },
		{ "\xf0\x90\x80\x80", 0, 1 },
		{ "\xf4\x8f\xbf\xbf", 0, 1 },
		{ "abc\xf0\x9f\x98\x80" "defghijklmnop", 0, 1 },
		{ "\xce", 0, 0 },
		{ "\xe0\xa0", 0, 0 },
		{ "\xf4\x8f\xbf", 0, 0 },
		{ "\x80", -1007, 0 },
		{ "\xbf", -1007, 0 },
		{ "\xc0\x80", -1007, 0 },
		{ "\xc1\xbf", -1007, 0 },
		{ "\xe0\x9f\xbf", -1007, 0 },
		{ "\xed\xa0\x80", -1007, 0 },
		{ "\xed\xbf\xbf", -1007, 0 },
		{ "\xf0\x8f\xbf\xbf", -1007, 0 },
		{ "\xf4\x90\x80\x80", -1007, 0 },
		{ "\xf5\x80\x80\x80", -1007, 0 },
		{ "\xf8\x88\x80\x80\x80", -1007, 0 },
		{ "\xfe", -1007, 0 },
		{ "\xff", -1007, 0 },
		{ "\xc2\x41", -1007, 0 },
		{ "\xe1\x80\x41", -1007, 0 },
		/* Autobahn 6.4.1: fail on the first bad byte, not at the end */
		{ "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74",
		  -1007, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;
		size_t n = strlen(cases[i].s);
		struct ws_utf8 u;
		long r = 0;

		ws_utf8_init(&u);
		if (ws_utf8_feed(&u, p, n) != cases[i].feed)
			fail_msg("case %zu whole", i);
		if (cases[i].feed == 0 && ws_utf8_complete(&u) != cases[i].complete)
			fail_msg("case %zu complete", i);
		/* byte at a time: the same verdict */
		ws_utf8_init(&u);
		for (size_t k = 0; k < n && r == 0; k++)
			r = ws_utf8_feed(&u, p + k, 1);
		if (r != cases[i].feed)
			fail_msg("case %zu bytewise", i);
	}
}

static void test_utf8_fails_fast(void **state)
{
	const char *s = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
	struct ws_utf8 u;
	size_t k;

	(void)state;
	ws_utf8_init(&u);
	for (k = 0; k < strlen(s); k++)
		if (ws_utf8_feed(&u, (const uint8_t *)s + k, 1) != 0)
			break;
	assert_int_equal(k, 12);   /* the 0xA0 after 0xED */
}

/* ---- messages ------------------------------------------------------------- */

static struct ws_frame fr(int fin, uint8_t op, uint64_t len)
{
	struct ws_frame f;

	memset(&f, 0, sizeof(f));
	f.fin = (uint8_t)fin;
	f.opcode = op;
	f.len = len;
	return f;
}

static void test_msg_fragments_and_control(void **state)
{
	struct ws_msg m;
	struct ws_frame f;
	const uint8_t *txt = (const uint8_t *)"a\xe2\x82\xac" "b";   /* a€b */

	(void)state;
	ws_msg_init(&m);
	f = fr(0, WS_OP_TEXT, 2);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, txt, 2), 0);       /* "a" + first byte of € */
	assert_int_equal(ws_msg_frame_end(&m, &f), 0);
	f = fr(1, WS_OP_PING, 3);                            /* control in between */
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 0);
	assert_int_equal(m.op, WS_OP_TEXT);
	f = fr(0, WS_OP_CONT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, txt + 2, 1), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 0);
	f = fr(1, WS_OP_CONT, 2);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, txt + 3, 2), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 1);
	assert_int_equal(m.op, 0);
	assert_int_equal(m.len, 5);
	/* the next message may start; empty final frames are fine */
	f = fr(1, WS_OP_BINARY, 0);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 1);
	f = fr(1, WS_OP_TEXT, 0);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 1);
}

static void test_msg_errors(void **state)
{
	struct ws_msg m;
	struct ws_frame f;

	(void)state;
	/* continuation with nothing to continue */
	ws_msg_init(&m);
	f = fr(1, WS_OP_CONT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), -1002);
	/* a new data frame while a message is open */
	ws_msg_init(&m);
	f = fr(0, WS_OP_TEXT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	f = fr(1, WS_OP_TEXT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), -1002);
	f = fr(1, WS_OP_BINARY, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), -1002);
	/* message size: equal to the bound is fine, one more is 1009 */
	ws_msg_init(&m);
	f = fr(0, WS_OP_BINARY, 60);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	f = fr(0, WS_OP_CONT, 40);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	f = fr(1, WS_OP_CONT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), -1009);
	ws_msg_init(&m);
	f = fr(1, WS_OP_BINARY, UINT64_MAX);
	assert_int_equal(ws_msg_frame(&m, &f, 100), -1009);
	/* invalid UTF-8 in text, anything in binary */
	ws_msg_init(&m);
	f = fr(1, WS_OP_TEXT, 2);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, (const uint8_t *)"\xc0\xaf", 2), -1007);
	ws_msg_init(&m);
	f = fr(1, WS_OP_BINARY, 2);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, (const uint8_t *)"\xc0\xaf", 2), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 1);
	/* a text message ending inside a sequence */
	ws_msg_init(&m);
	f = fr(0, WS_OP_TEXT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, (const uint8_t *)"\xe2", 1), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), 0);
	f = fr(1, WS_OP_CONT, 1);
	assert_int_equal(ws_msg_frame(&m, &f, 100), 0);
	assert_int_equal(ws_msg_data(&m, (const uint8_t *)"\x82", 1), 0);
	assert_int_equal(ws_msg_frame_end(&m, &f), -1007);
}

/* ---- close ---------------------------------------------------------------- */

static void test_close_codes(void **state)
{
	static const unsigned ok[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009,
				       1010, 1011, 3000, 3999, 4000, 4999 };
	static const unsigned bad[] = { 0, 999, 1004, 1005, 1006, 1012, 1013, 1014,
					1015, 1016, 1100, 2000, 2999, 5000, 65535 };
	uint8_t p[4];
	uint16_t code;
	size_t rl;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_true(ws_close_code_ok(ok[i]));
		p[0] = (uint8_t)(ok[i] >> 8);
		p[1] = (uint8_t)ok[i];
		assert_int_equal(ws_close_parse(p, 2, &code, &rl), 0);
		assert_int_equal(code, ok[i]);
		assert_int_equal(rl, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(ws_close_code_ok(bad[i]));
		p[0] = (uint8_t)(bad[i] >> 8);
		p[1] = (uint8_t)bad[i];
		assert_int_equal(ws_close_parse(p, 2, &code, &rl), -1002);
	}
}

static void test_close_payload(void **state)
{
	uint8_t out[130], big[126];
	uint16_t code;
	size_t rl;

	(void)state;
	assert_int_equal(ws_close_parse(NULL, 0, &code, &rl), 0);
	assert_int_equal(code, WS_CLOSE_NO_STATUS);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03", 1, &code, &rl), -1002);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8" "bye \xe2\x82\xac", 9, &code,
					&rl), 0);
	assert_int_equal(code, 1000);
	assert_int_equal(rl, 7);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8\xff", 3, &code, &rl), -1007);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8\xe2\x82", 4, &code, &rl), -1007);
	memset(big, 'a', sizeof(big));
	big[0] = 0x03;
	big[1] = 0xe8;
	assert_int_equal(ws_close_parse(big, 125, &code, &rl), 0);
	assert_int_equal(ws_close_parse(big, 126, &code, &rl), -1002);

	assert_int_equal(ws_close_payload(1000, "bye", 3, out, sizeof(out)), 5);
	assert_memory_equal(out, "\x03\xe8" "bye", 5);
	assert_int_equal(ws_close_payload(1001, NULL, 0, out, 2), 2);
	assert_memory_equal(out, "\x03\xe9", 2);
	assert_int_equal(ws_close_payload(1005, NULL, 0, out, sizeof(out)), 0);
	assert_int_equal(ws_close_payload(1000, (const char *)big, 124, out, sizeof(out)), 0);
	assert_int_equal(ws_close_payload(1000, (const char *)big, 123, out, sizeof(out)), 125);
	assert_int_equal(ws_close_payload(1000, "bye", 3, out, 4), 0);
	assert_int_equal(ws_close_payload(1000, NULL, 3, out, sizeof(out)), 0);
}

/* ---- RFC 7395 messages as bytes ---------------------------------------------- */

/* s as an exact-size heap copy (no NUL after it), so ASan sees any read past
 * its end; the caller frees it. */
static uint8_t *exact(const char *s, size_t *n)
{
	uint8_t *p;

	*n = strlen(s);
	p = malloc(*n ? *n : 1);
	assert_non_null(p);
	memcpy(p, s, *n);
	return p;
}

/* ws_starts_el on an exact copy of s: the offset of what follows "<name",
 * or -1 for NULL. */
static long starts(const char *s, const char *name)
{
	size_t n;
	uint8_t *p = exact(s, &n);
	const uint8_t *r = ws_starts_el(p, n, name);
	long off = r ? (long)(r - p) : -1;

	free(p);
	return off;
}

static void test_starts_el(void **state)
{
	(void)state;
	/* RFC 7395 §3.4's <open/> and §3.6's <close/> */
	assert_int_equal(starts("<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"example.com\" "
				"version=\"1.0\" />", "open"), 5);
	assert_int_equal(starts("<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />", "close"), 6);
	assert_int_equal(starts("<close/>", "close"), 6);
	assert_int_equal(starts("<open>", "open"), 5);
	assert_int_equal(starts(" \t\r\n<open\txmlns='x'/>", "open"), 9);
	assert_int_equal(starts("<open\r\n/>", "open"), 5);
	assert_int_equal(starts("<open\n/>", "open"), 5);
	/* another element, a longer name, a prefix, text first, cut short */
	assert_int_equal(starts("<close/>", "open"), -1);
	assert_int_equal(starts("<opener/>", "open"), -1);
	assert_int_equal(starts("<x:open/>", "open"), -1);
	assert_int_equal(starts("x<open/>", "open"), -1);
	assert_int_equal(starts("<open", "open"), -1);
	assert_int_equal(starts("  <open", "open"), -1);
	assert_int_equal(starts("<ope", "open"), -1);
	assert_int_equal(starts("", "open"), -1);
	assert_int_equal(starts("   ", "open"), -1);
	assert_int_equal(starts("<message/>", "open"), -1);
}

#define HEAD "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"

static void test_open_header(void **state)
{
	static const struct {
		const char *attrs, *want;
		int framing;
	} t[] = {
		/* RFC 7395 §3.4, double quotes, a blank before "/>" (kept) */
		{ " xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"example.com\" version=\"1.0\" />",
		  HEAD " xmlns='jabber:client' to=\"example.com\" version=\"1.0\" >", 1 },
		/* single quotes, "/>" then trailing blanks; ">" alone */
		{ " to='example.com' xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/> \r\n",
		  HEAD " to='example.com' xmlns='jabber:client' version='1.0'>", 1 },
		{ " xmlns='urn:ietf:params:xml:ns:xmpp-framing'>", HEAD " xmlns='jabber:client'>", 1 },
		/* another namespace stays as written (the stream code answers it) */
		{ " xmlns='jabber:client' to='example.com'/>", HEAD " xmlns='jabber:client' to='example.com'>", 0 },
		/* the closing quote is part of the match: a longer name is another namespace */
		{ " xmlns='urn:ietf:params:xml:ns:xmpp-framing-x'/>",
		  HEAD " xmlns='urn:ietf:params:xml:ns:xmpp-framing-x'>", 0 },
		{ " xmlns='urn:ietf:params:xml:ns:xmpp-framing\"/>",
		  HEAD " xmlns='urn:ietf:params:xml:ns:xmpp-framing\">", 0 },
		{ "/>", HEAD ">", 0 },
		{ "", HEAD ">", 0 },
	};
	char out[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int fr = -1;
		size_t n, r;
		uint8_t *a = exact(t[i].attrs, &n);

		r = ws_open_header(a, n, out, sizeof(out), &fr);
		assert_int_equal(r, strlen(t[i].want));
		assert_memory_equal(out, t[i].want, r);
		assert_int_equal(fr, t[i].framing);
		assert_int_equal(ws_open_header(a, n, out, sizeof(out), NULL), r);
		free(a);
	}
}

static void test_open_header_bound(void **state)
{
	enum { CAP = 1024, FIT = CAP - WS_OPEN_SLACK };
	uint8_t a[FIT + 8];
	char *out = malloc(CAP);   /* exact size: ASan sees a write past cap */
	int fr;

	(void)state;
	assert_non_null(out);
	/* the trimmed attributes may be cap - WS_OPEN_SLACK bytes long, no more */
	memset(a, 'a', sizeof(a));
	a[0] = ' ';
	assert_int_equal(ws_open_header(a, FIT + 1, out, CAP, &fr), 0);
	assert_int_equal(ws_open_header(a, sizeof(a), out, CAP, &fr), 0);
	assert_int_equal(ws_open_header(a, FIT, out, CAP, &fr), sizeof(HEAD) + FIT);
	assert_int_equal(out[sizeof(HEAD) - 1 + FIT], '>');
	/* the trailing "/>" and blanks do not count */
	memcpy(a + FIT, "/>\r\n", 4);
	assert_int_equal(ws_open_header(a, FIT + 4, out, CAP, &fr), sizeof(HEAD) + FIT);
	/* a cap below the slack fits nothing */
	assert_int_equal(ws_open_header(a, 0, out, WS_OPEN_SLACK - 1, &fr), 0);
	assert_int_equal(ws_open_header(a, 0, out, 0, &fr), 0);
	free(out);
}

/* The start tag of s (an exact copy): its end, the name's end, and whether
 * it has attribute attr. */
static void tag(const char *s, const char *attr, size_t want_end, size_t want_name, int want_attr)
{
	size_t n, e;
	uint8_t *p = exact(s, &n);

	e = ws_start_tag_end(p, n);
	assert_int_equal(e, want_end);
	assert_int_equal(ws_tag_name_end(p, e), want_name);
	assert_int_equal(ws_has_attr(p, e, attr), want_attr);
	free(p);
}

static void test_start_tag(void **state)
{
	(void)state;
	tag("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "xmlns", 21, 3, 0);
	tag("<iq xmlns='jabber:client'/>", "xmlns", 26, 3, 1);
	tag("<message to='a>b' body=\"c>d\">x</message>", "xmlns", 28, 8, 0);
	tag("<presence/>", "xmlns", 10, 9, 0);
	tag("<presence>", "xmlns", 9, 9, 0);
	tag("<a\txmlns='x'>", "xmlns", 12, 2, 1);
	tag("<a\r\nxmlns ='x'>", "xmlns", 14, 2, 1);
	tag("<a xmlns:foo='x'>", "xmlns", 16, 2, 0);
	tag("<a xmlns:foo='x'>", "xmlns:foo", 16, 2, 1);
	tag("<a axmlns='x'>", "xmlns", 13, 2, 0);
	tag("<stream:features xmlns:stream='s'>", "xmlns:stream", 33, 16, 1);
	tag("<stream:error>", "xmlns:stream", 13, 13, 0);
	/* no end: the tag runs to n, an unclosed quote to n too */
	tag("<a xmlns", "xmlns", 8, 2, 0);
	tag("<a xmlns=", "xmlns", 9, 2, 1);
	tag("<a b='>", "xmlns", 7, 2, 0);
	tag("<abc", "xmlns", 4, 4, 0);
	tag("<", "xmlns", 1, 1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_rfc6455),
		cmocka_unit_test(test_upgrade_rfc7395_with_frame_after),
		cmocka_unit_test(test_upgrade_tolerated_forms),
		cmocka_unit_test(test_upgrade_errors),
		cmocka_unit_test(test_upgrade_early_verdicts),
		cmocka_unit_test(test_upgrade_size_bound),
		cmocka_unit_test(test_upgrade_field_count),
		cmocka_unit_test(test_accept_key_rfc6455),
		cmocka_unit_test(test_upgrade_response),
		cmocka_unit_test(test_http_error),
		cmocka_unit_test(test_frames_rfc6455_examples),
		cmocka_unit_test(test_frame_lengths),
		cmocka_unit_test(test_frame_errors),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_mask_in_pieces),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_utf8_fails_fast),
		cmocka_unit_test(test_msg_fragments_and_control),
		cmocka_unit_test(test_msg_errors),
		cmocka_unit_test(test_close_codes),
		cmocka_unit_test(test_close_payload),
		cmocka_unit_test(test_starts_el),
		cmocka_unit_test(test_open_header),
		cmocka_unit_test(test_open_header_bound),
		cmocka_unit_test(test_start_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
