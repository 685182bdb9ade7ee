/*
 * Unit tests for the client side of parser/ws.c (xedge-bench's WebSocket
 * transport): the key and the upgrade request, the 101 check of RFC 6455
 * §4.1 (every client requirement, with RFC 6455 §1.3's example response)
 * and RFC 7395 §3.1 (the xmpp subprotocol), chunking invariance of the
 * response parser, and client frames: masked on the way out, refused when a
 * server masks its own (§5.1).
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

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="              /* RFC 6455 §1.3 */
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define GOOD_101                                         \
	"HTTP/1.1 101 Switching Protocols\r\n"           \
	"Upgrade: websocket\r\n"                         \
	"Connection: Upgrade\r\n"                        \
	"Sec-WebSocket-Accept: " ACCEPT "\r\n"           \
	"Sec-WebSocket-Protocol: xmpp\r\n"               \
	"\r\n"

/* Feed in[0..len) `chunk` bytes at a time (0: at once) into growing exact-size
 * heap copies, as the generator's buffer grows. */
static long feed(const char *in, size_t len, size_t chunk, struct ws_response *r)
{
	size_t have = 0;
	long k = 0;

	ws_response_init(r);
	if (chunk == 0)
		chunk = len ? len : 1;
	while (have < len) {
		uint8_t *b;
		have = have + chunk < len ? have + chunk : len;
		b = malloc(have);
		assert_non_null(b);
		memcpy(b, in, have);
		k = ws_response_parse(r, b, have, KEY);
		free(b);
		if (k != 0)
			return k;
	}
	return k;
}

static void test_key_and_request(void **state)
{
	char key[WS_KEY_LEN + 1], req[1024];
	size_t n;

	(void)state;
	assert_int_equal(ws_client_key((const uint8_t *)"the sample nonce", key), 0);
	assert_string_equal(key, KEY);
	n = ws_client_request("127.0.0.1:5280", "/xmpp-websocket", key, req, sizeof(req));
	assert_string_equal(req, "GET /xmpp-websocket HTTP/1.1\r\n"
				 "Host: 127.0.0.1:5280\r\n"
				 "Upgrade: websocket\r\n"
				 "Connection: Upgrade\r\n"
				 "Sec-WebSocket-Key: " KEY "\r\n"
				 "Sec-WebSocket-Version: 13\r\n"
				 "Sec-WebSocket-Protocol: xmpp\r\n"
				 "\r\n");
	assert_int_equal(n, strlen(req));

	/* the server's own parser accepts it, xmpp included */
	struct ws_upgrade u;
	ws_upgrade_init(&u);
	assert_int_equal(ws_upgrade_parse(&u, (const uint8_t *)req, n), (long)n);
	assert_true(u.xmpp);
	assert_string_equal(u.key, KEY);

	/* refused: a path not in origin form, spaces or controls, a bad key, no room */
	assert_int_equal(ws_client_request("h", "xmpp", key, req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("h", "/a b", key, req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("h\r\nX: y", "/", key, req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("", "/", key, req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("h", "/", "short", req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("h", "/", "dGhlIHNhbXBsZSBub25jZR==", req, sizeof(req)), 0);
	assert_int_equal(ws_client_request("h", "/", key, req, 40), 0);
}

static void test_good_101_in_any_chunks(void **state)
{
	static const char in[] = GOOD_101 "\x81\x05hello";
	size_t head = strlen(GOOD_101);
	struct ws_response r;

	(void)state;
	for (size_t chunk = 0; chunk <= 17; chunk++) {
		long k = feed(in, sizeof(in) - 1, chunk, &r);
		assert_int_equal(k, (long)head);
		assert_int_equal(r.status, 101);
	}
	/* field names and list tokens ignore case; other fields are ignored */
	static const char alt[] = "HTTP/1.1 101 \r\nupgrade: WebSocket\r\nServer: x\r\n"
				  "connection: keep-alive, UPGRADE\r\nsec-websocket-protocol: xmpp\r\n"
				  "SEC-WEBSOCKET-ACCEPT:" ACCEPT "  \r\n\r\n";
	assert_int_equal(feed(alt, sizeof(alt) - 1, 0, &r), (long)sizeof(alt) - 1);
	/* a reason phrase may be empty, even without its space */
	static const char bare[] = "HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
	assert_int_equal(feed(bare, sizeof(bare) - 1, 3, &r), (long)sizeof(bare) - 1);
}

static void expect_fail(const char *in, const char *why)
{
	struct ws_response r;

	for (size_t chunk = 0; chunk <= 7; chunk++) {
		assert_int_equal(feed(in, strlen(in), chunk, &r), -1);
		assert_non_null(r.why);
		if (strcmp(r.why, why) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", in, r.why, why);
	}
}

static void test_every_client_requirement(void **state)
{
	struct ws_response r;

	(void)state;
	/* §4.1 (1): anything but 101 fails, with the status kept */
	expect_fail("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "status is not 101");
	assert_int_equal(feed("HTTP/1.1 404 Not Found\r\n", 24, 0, &r), -1);
	assert_int_equal(r.status, 404);
	expect_fail("HTTP/1.1 200 OK\r\n\r\n", "status is not 101");
	expect_fail("HTTP/1.0 101 Switching Protocols\r\n\r\n", "bad status line");
	expect_fail("HTTP/1.1 1x1 Switching\r\n\r\n", "bad status code");
	expect_fail("HTTP/1.1 101Switching\r\n\r\n", "bad status line");
	expect_fail("<stream:stream>", "not an HTTP response");
	/* (2) Upgrade, (3) Connection */
	expect_fail("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
		    "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n", "no Upgrade: websocket");
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
		    "no Upgrade: websocket");
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACCEPT
		    "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n", "no Connection: upgrade");
	/* (4) the accept value: missing, wrong, twice */
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Protocol: xmpp\r\n\r\n", "no Sec-WebSocket-Accept");
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n",
		    "wrong Sec-WebSocket-Accept");
	expect_fail("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"
		    "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", "duplicate Sec-WebSocket-Accept");
	/* (5) extensions, (6) and RFC 7395 §3.1: exactly xmpp */
	expect_fail("HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		    "an extension the client did not ask for");
	expect_fail("HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
		    "a subprotocol other than xmpp");
	expect_fail("HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: xmpp, chat\r\n\r\n",
		    "a subprotocol other than xmpp");
	expect_fail("HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: xmpp\r\n"
		    "Sec-WebSocket-Protocol: xmpp\r\n\r\n", "a subprotocol other than xmpp");
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", "no Sec-WebSocket-Protocol: xmpp");
	/* HTTP syntax */
	expect_fail("HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n", "bare LF");
	expect_fail("HTTP/1.1 101 OK\r\rUpgrade: websocket\r\n\r\n", "bare CR");
	expect_fail("HTTP/1.1 101 OK\r\nUpgrade: web\x01socket\r\n\r\n", "control character");
	expect_fail("HTTP/1.1 101 OK\r\n folded\r\n\r\n", "obsolete line folding");
	expect_fail("HTTP/1.1 101 OK\r\nNo colon here\r\n\r\n", "bad header field");
}

static void test_bounds(void **state)
{
	struct ws_response r;
	size_t n = WS_REQ_MAX + 64, fields = 0;
	char *big = malloc(n + 1);

	(void)state;
	assert_non_null(big);
	/* one endless field: refused once past WS_REQ_MAX, not before */
	memset(big, 'a', n);
	memcpy(big, "HTTP/1.1 101 OK\r\nX: ", 20);
	big[n] = '\0';
	ws_response_init(&r);
	assert_int_equal(ws_response_parse(&r, (const uint8_t *)big, WS_REQ_MAX, KEY), 0);
	assert_int_equal(ws_response_parse(&r, (const uint8_t *)big, n, KEY), -1);
	assert_string_equal(r.why, "response head too large");
	/* too many fields */
	size_t o = (size_t)snprintf(big, n, "HTTP/1.1 101 OK\r\n");
	while (o + 8 < n && fields <= WS_MAX_FIELDS) {
		memcpy(big + o, "A: b\r\n", 6);
		o += 6;
		fields++;
	}
	assert_int_equal(feed(big, o, 0, &r), -1);
	assert_string_equal(r.why, "too many header fields");
	free(big);
	/* a wrong key argument is refused rather than read past */
	ws_response_init(&r);
	assert_int_equal(ws_response_parse(&r, (const uint8_t *)GOOD_101, strlen(GOOD_101), "x"), -1);
}

static void test_client_frames(void **state)
{
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };   /* RFC 6455 §5.7 */
	uint8_t fr[64];
	struct ws_frame f;
	size_t hl;

	(void)state;
	/* RFC 6455 §5.7: a masked "Hello" from a client */
	hl = ws_frame_header_masked(fr, sizeof(fr), 1, WS_OP_TEXT, 5, key);
	assert_int_equal(hl, 6);
	memcpy(fr + hl, "Hello", 5);
	ws_mask(fr + hl, 5, key, 0);
	static const uint8_t want[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	assert_memory_equal(fr, want, sizeof(want));
	/* the server reads it; a client refuses a masked frame (§5.1) */
	assert_int_equal(ws_frame_decode(fr, hl + 5, WS_SERVER, 1 << 20, &f), 6);
	assert_int_equal(ws_frame_decode(fr, hl + 5, WS_CLIENT, 1 << 20, &f), -WS_CLOSE_PROTOCOL);
	/* ... and reads the unmasked form: §5.7's "Hello" from a server */
	static const uint8_t srv[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
	assert_int_equal(ws_frame_decode(srv, sizeof(srv), WS_CLIENT, 1 << 20, &f), 2);
	assert_int_equal(f.len, 5);
	/* too big for the client's bound: 1009 as soon as the length is in */
	static const uint8_t huge[] = { 0x81, 0x7f, 0, 0, 0, 0, 0, 0x20, 0, 0 };
	assert_int_equal(ws_frame_decode(huge, sizeof(huge), WS_CLIENT, 1 << 20, &f), -WS_CLOSE_TOO_BIG);
	/* a masked ping (client side: a pong of its payload) and a masked close */
	hl = ws_frame_header_masked(fr, sizeof(fr), 1, WS_OP_PONG, 3, key);
	assert_int_equal(hl, 6);
	assert_int_equal(fr[0], 0x8A);
	assert_int_equal(fr[1], 0x83);
	assert_int_equal(ws_frame_header_masked(fr, sizeof(fr), 0, WS_OP_CLOSE, 2, key), 0);
	/* 126 and 65536 bytes: the 16- and 64-bit length forms, with the key after them */
	assert_int_equal(ws_frame_header_masked(fr, sizeof(fr), 1, WS_OP_TEXT, 126, key), 8);
	assert_memory_equal(fr + 4, key, 4);
	assert_int_equal(ws_frame_header_masked(fr, sizeof(fr), 1, WS_OP_TEXT, 65536, key), 14);
	assert_memory_equal(fr + 10, key, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_and_request),
		cmocka_unit_test(test_good_101_in_any_chunks),
		cmocka_unit_test(test_every_client_requirement),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_client_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
