/*
 * fuzz_record — libFuzzer target for tls/record.c, the TLS 1.3 record layer
 * that reads every byte a TLS client sends after the handshake.
 *
 * Input: byte 0 picks the suite (ChaCha20-Poly1305, AES-128-GCM,
 * AES-256-GCM/SHA-384); byte 1 the mode (bit 0), a max_fragment_length of
 * 512 on the server side (bit 1) and a chunking seed; the rest is
 *   - raw mode: ciphertext as it would come off the socket;
 *   - sealed mode: a script of records (type, 16-bit length, content) that a
 *     peer holding the same secrets protects properly, so the fuzzer reaches
 *     what lies behind authentication: alerts, handshake messages, KeyUpdate,
 *     padding, empty records.
 * The server side reads it in pseudo-random chunks.  Checked: no crash; all
 * input is taken while the session wants more; when the script holds only
 * application data (within the fragment length), the plaintext equals what
 * was sealed; no read returns more than the fragment length; and whatever the
 * server sends back (alerts, KeyUpdate answers) decrypts at the peer, so the
 * keys we rotate are the keys the peer expects.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/record.h"
#include "tls/tls.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define LIMIT (1u << 22)

struct side {
	struct tls13 r;
	struct tls_io io;
	struct buf sent;
};

static int collect(void *owner, const uint8_t *data, size_t len)
{
	struct side *s = owner;
	return buf_append(&s->sent, data, len, LIMIT);
}

/* buf_data() of an empty buffer is NULL + 0, which UBSan rejects. */
static const uint8_t *bytes(const struct buf *b)
{
	return buf_used(b) ? buf_data(b) : NULL;
}

static void setup(struct side *s, uint8_t suite, int client)
{
	static const uint8_t cs[48] = "client traffic secret, 48 bytes of it.........";
	static const uint8_t ss[48] = "server traffic secret, 48 bytes of it.........";

	memset(s, 0, sizeof(*s));
	s->r.client = (uint8_t)client;
	s->r.cipher = suite == 0 ? REC_CHACHA20_POLY1305 : REC_AES_GCM;
	s->r.key_len = suite == 1 ? 16 : 32;
	s->r.hash_len = suite == 2 ? 48 : 32;
	memcpy(client ? s->r.wr.secret : s->r.rd.secret, cs, 48);
	memcpy(client ? s->r.rd.secret : s->r.wr.secret, ss, 48);
	CHECK(rec_derive(&s->r, &s->r.rd) == 0 && rec_derive(&s->r, &s->r.wr) == 0);
	s->io = (struct tls_io){ .out = collect, .owner = s };
}

/* Feed len bytes to s in chunks; plaintext appended to plain.  Returns the
 * last result. */
static int feed(struct side *s, const uint8_t *p, size_t len, uint32_t seed, struct buf *plain)
{
	static uint8_t out[TLS_READ_CAP];
	int res = TLS_WANT;

	while (p && len) {
		size_t n;
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 4096;
		if (n > len)
			n = len;
		s->io.in = p;
		s->io.in_len = n;
		for (;;) {
			size_t got = rec_read(&s->r, &s->io, out, &res);
			if (got) {
				CHECK(got <= (s->r.frag ? s->r.frag : REC_PLAIN_MAX));
				CHECK(buf_append(plain, out, got, LIMIT) == 0);
				continue;
			}
			break;
		}
		if (res != TLS_WANT)
			return res;
		CHECK(s->io.in_len == 0);
		p += n;
		len -= n;
	}
	return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct side srv, peer;
	struct buf plain = { 0 }, expect = { 0 }, back = { 0 };
	const uint8_t *p;
	size_t len;
	uint8_t suite;
	int sealed, only_data = 1, res;

	if (size < 2)
		return 0;
	suite = data[0] % 3;
	sealed = data[1] & 1;
	p = data + 2;
	len = size - 2;
	setup(&srv, suite, 0);
	setup(&peer, suite, 1);
	if (data[1] & 2)
		srv.r.frag = 512;
	if (!sealed) {
		feed(&srv, p, len, data[1], &plain);
	} else {
		while (len >= 3) {
			uint8_t type = p[0];
			size_t n = (size_t)p[1] << 8 | p[2];
			p += 3;
			len -= 3;
			if (n > len)
				n = len;
			CHECK(rec_send(&peer.r, &peer.io, type, p, n) == 0);
			if (type == 23 && (!srv.r.frag || n <= srv.r.frag))
				CHECK(buf_append(&expect, p, n, LIMIT) == 0);
			else
				only_data = 0;
			p += n;
			len -= n;
		}
		res = feed(&srv, bytes(&peer.sent), buf_used(&peer.sent), data[1], &plain);
		if (only_data) {
			CHECK(res == TLS_WANT);
			CHECK(buf_used(&plain) == buf_used(&expect));
			CHECK(!buf_used(&plain) || memcmp(bytes(&plain), bytes(&expect), buf_used(&plain)) == 0);
		}
		/* What the server sent back must authenticate at the peer. */
		res = feed(&peer, bytes(&srv.sent), buf_used(&srv.sent), 7, &back);
		CHECK(!(res == TLS_ERROR && peer.r.err && strcmp(peer.r.err, "record authentication failed") == 0));
	}
	rec_clear(&srv.r);
	rec_clear(&peer.r);
	buf_reset(&srv.sent);
	buf_reset(&peer.sent);
	buf_reset(&plain);
	buf_reset(&expect);
	buf_reset(&back);
	return 0;
}
