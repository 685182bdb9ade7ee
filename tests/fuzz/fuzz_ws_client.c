/*
 * fuzz_ws_client — libFuzzer target for the client side of parser/ws.c: the
 * server's answer to an upgrade (ws_response_parse), as xedge-bench reads it.
 *
 * Input: one selector byte (bits 0-3: the chunk size for incremental
 * feeding, 0 = at once), then the bytes a server sends.  The key is fixed
 * (RFC 6455 §1.3's), so a seed with its accept value reaches the success
 * path.
 *
 * Invariants (any breach is __builtin_trap()):
 *   the result is a length <= n ending in CRLF CRLF, 0 (only while the bytes
 *   fed are at most WS_REQ_MAX) or -1 with a reason; chunked feeding (each
 *   call on an exact-size copy of the bytes so far) gives the same result,
 *   status and reason as feeding at once; a success is a 101 whose head
 *   holds the accept value of the key; the request and key encoders stay
 *   consistent with the server's own upgrade parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/ws.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

static long feed(const uint8_t *in, size_t n, size_t chunk, struct ws_response *r)
{
	size_t have = 0;
	long k = 0;

	ws_response_init(r);
	if (chunk == 0)
		chunk = n ? n : 1;
	if (n == 0)
		return ws_response_parse(r, in, 0, KEY);
	while (have < n) {
		uint8_t *b;
		have = have + chunk < n ? have + chunk : n;
		b = malloc(have);
		if (!b)
			return -2;
		memcpy(b, in, have);
		k = ws_response_parse(r, b, have, KEY);
		free(b);
		if (k != 0)
			return k;
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_response a, b;
	long ra, rb;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = data[0] & 0x0F;
	data++;
	size--;

	ra = feed(data, size, 0, &a);
	if (ra == -2)
		return 0;
	CHECK(ra == -1 || ra >= 0);
	CHECK(ra <= (long)size);
	if (ra == 0)
		CHECK(size <= WS_REQ_MAX);
	if (ra < 0)
		CHECK(a.why != NULL);
	if (ra > 0) {
		char acc[WS_ACCEPT_LEN + 1];
		CHECK(ra >= 4 && !memcmp(data + ra - 4, "\r\n\r\n", 4));
		CHECK(a.status == 101);
		CHECK(ws_accept_key(KEY, acc) == 0);
		CHECK(memmem(data, (size_t)ra, acc, WS_ACCEPT_LEN) != NULL);
	}
	if (chunk) {
		rb = feed(data, size, chunk, &b);
		if (rb == -2)
			return 0;
		CHECK(rb == ra);
		CHECK(b.status == a.status);
		CHECK((a.why == NULL) == (b.why == NULL));
		if (a.why)
			CHECK(strcmp(a.why, b.why) == 0);
	}

	/* the request the client would send for a path made of the input's
	 * visible bytes is accepted by the server's parser, key included */
	{
		char path[64], req[512];
		size_t pl = 1;
		struct ws_upgrade u;
		uint8_t raw[16] = { 0 };
		char key[WS_KEY_LEN + 1];

		path[0] = '/';
		for (size_t i = 0; i < size && pl < sizeof(path) - 1; i++)
			if (data[i] > 0x20 && data[i] < 0x7F)
				path[pl++] = (char)data[i];
		path[pl] = '\0';
		memcpy(raw, data, size < 16 ? size : 16);
		CHECK(ws_client_key(raw, key) == 0);
		size_t n = ws_client_request("localhost:5280", path, key, req, sizeof(req));
		CHECK(n > 0);
		ws_upgrade_init(&u);
		CHECK(ws_upgrade_parse(&u, (const uint8_t *)req, n) == (long)n);
		CHECK(u.xmpp && !strcmp(u.key, key));
		CHECK(u.path.len == pl && !memcmp(req + u.path.off, path, pl));
	}
	return 0;
}
