/*
 * test_tls_record — tls/tls.c's hand-over to tls/record.c, against wolfSSL's
 * own record layer as the independent peer: an in-memory wolfSSL client
 * talks to our server session.  Checks that a TLS 1.3 session really leaves
 * wolfSSL (tls_lean) for each suite, that data flows both ways across record
 * boundaries and partial deliveries, that KeyUpdate both ways, close_notify
 * and tampering behave as RFC 8446 says (the alert the client receives is
 * asserted), that TLS 1.2 stays with wolfSSL, and that our own client and
 * server (both lean) interoperate, the client skipping the server's tickets.
 * Also the handshake-time duties of tls.c: the dummy change_cipher_spec of
 * middlebox compatibility mode (RFC 8446 §D.4) both ways, and the
 * max_fragment_length the record layer inherits.
 *
 * tls/record.c is included rather than linked (h2o's habit): the tests reach
 * its static sealing function to build records no compliant peer sends
 * (over-long padding), and its key derivation is routed through a hook that
 * can be told to fail (KeyUpdate failures).  tls.c, linked from the library,
 * then runs on this copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Before cmocka.h, whose fail() macro would rewrite record.c's fail(). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/kdf.h>

/* Fail the expand_fail_at-th HKDF-Expand-Label of record.c (0: never). */
static int expand_calls, expand_fail_at;
static int hook_expand(byte *okm, word32 okm_len, const byte *prk, word32 prk_len, const byte *proto,
		       word32 proto_len, const byte *label, word32 label_len, const byte *info,
		       word32 info_len, int digest);
#define wc_Tls13_HKDF_Expand_Label hook_expand
#include "tls/record.c"
#undef wc_Tls13_HKDF_Expand_Label

#include <cmocka.h>
#include <wolfssl/ssl.h>

#include "core/buf.h"
#include "core/config.h"
#include "tls/tls.h"

static int hook_expand(byte *okm, word32 okm_len, const byte *prk, word32 prk_len, const byte *proto,
		       word32 proto_len, const byte *label, word32 label_len, const byte *info,
		       word32 info_len, int digest)
{
	if (++expand_calls == expand_fail_at)
		return -1;
	return wc_Tls13_HKDF_Expand_Label(okm, okm_len, prk, prk_len, proto, proto_len, label, label_len,
					  info, info_len, digest);
}

#define LIMIT (8u << 20)

static char dir[] = "/tmp/xedge-tlsrec-XXXXXX";
static char crt[128], key[128];

/* One connection: c2s/s2c carry ciphertext; the server's plaintext lands in splain. */
struct pipe {
	struct buf c2s, s2c, splain;
	struct tls_io sio;
	struct tls *srv;
	WOLFSSL_CTX *cctx;
	WOLFSSL *cli;
	int srv_res;           /* last tls_read result once it stopped */
	struct tls *ours;      /* our client instead of wolfSSL's (test_our_client) */
	struct tls_io cio;
	struct buf cplain;
};

static int srv_out(void *owner, const uint8_t *data, size_t len)
{
	struct pipe *p = owner;
	return buf_append(&p->s2c, data, len, LIMIT);
}

static int cli_out(void *owner, const uint8_t *data, size_t len)
{
	struct pipe *p = owner;
	return buf_append(&p->c2s, data, len, LIMIT);
}

static int wc_recv(WOLFSSL *ssl, char *b, int sz, void *ctx)
{
	struct pipe *p = ctx;
	size_t n = buf_used(&p->s2c) < (size_t)sz ? buf_used(&p->s2c) : (size_t)sz;

	(void)ssl;
	if (!n)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	memcpy(b, buf_data(&p->s2c), n);
	buf_consume(&p->s2c, n);
	return (int)n;
}

static int wc_send(WOLFSSL *ssl, char *b, int sz, void *ctx)
{
	(void)ssl;
	return cli_out(ctx, (const uint8_t *)b, (size_t)sz) < 0 ? WOLFSSL_CBIO_ERR_GENERAL : sz;
}

/* Feed the server what the client sent, `step` bytes at a time (0: all). */
static void pump_server(struct pipe *p, size_t step)
{
	static uint8_t out[TLS_READ_CAP];

	while (buf_used(&p->c2s)) {
		size_t n = step && step < buf_used(&p->c2s) ? step : buf_used(&p->c2s);
		p->sio.in = buf_data(&p->c2s);
		p->sio.in_len = n;
		if (!tls_sni_domain(p->srv) && tls_handshake(p->srv) != TLS_OK) {
			assert_int_equal(p->sio.in_len, 0);
			buf_consume(&p->c2s, n);
			continue;
		}
		for (;;) {
			int res;
			size_t got = tls_read(p->srv, out, sizeof(out), &res);
			if (got) {
				assert_int_equal(buf_append(&p->splain, out, got, LIMIT), 0);
				continue;
			}
			p->srv_res = res;
			break;
		}
		if (p->srv_res != TLS_WANT)
			break;
		assert_int_equal(p->sio.in_len, 0);
		buf_consume(&p->c2s, n);
	}
}

/* A wolfSSL client (TLS 1.2 or 1.3, optional cipher list) and our server,
 * before any byte was exchanged. */
static void pipe_new(struct pipe *p, int version, const char *ciphers)
{
	memset(p, 0, sizeof(*p));
	p->sio = (struct tls_io){ .out = srv_out, .owner = p };
	p->srv = tls_new("localhost", &p->sio);
	assert_non_null(p->srv);
	p->cctx = wolfSSL_CTX_new(version == 12 ? wolfTLSv1_2_client_method() : wolfTLSv1_3_client_method());
	assert_non_null(p->cctx);
	wolfSSL_CTX_set_verify(p->cctx, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(p->cctx, wc_recv);
	wolfSSL_CTX_SetIOSend(p->cctx, wc_send);
	if (ciphers)
		assert_int_equal(wolfSSL_CTX_set_cipher_list(p->cctx, ciphers), WOLFSSL_SUCCESS);
	p->cli = wolfSSL_new(p->cctx);
	assert_non_null(p->cli);
	wolfSSL_SetIOReadCtx(p->cli, p);
	wolfSSL_SetIOWriteCtx(p->cli, p);
}

/* Run the handshake; `extra` (n bytes) goes to the server before each
 * client flight but the first (the client's dummy change_cipher_spec
 * records), fed `step` bytes at a time (0: all at once). */
static void pipe_handshake(struct pipe *p, const uint8_t *extra, size_t n, size_t step)
{
	for (int i = 0; i < 10; i++) {
		int r = wolfSSL_connect(p->cli);
		if (i && n) {
			struct buf flight = p->c2s;
			memset(&p->c2s, 0, sizeof(p->c2s));
			assert_int_equal(buf_append(&p->c2s, extra, n, LIMIT), 0);
			if (buf_used(&flight))
				assert_int_equal(buf_append(&p->c2s, buf_data(&flight), buf_used(&flight), LIMIT), 0);
			buf_reset(&flight);
		}
		pump_server(p, step);
		if (r == WOLFSSL_SUCCESS && tls_sni_domain(p->srv))
			return;
	}
	fail_msg("handshake did not complete");
}

static void pipe_open(struct pipe *p, int version, const char *ciphers)
{
	pipe_new(p, version, ciphers);
	pipe_handshake(p, NULL, 0, 0);
}

static void pipe_close(struct pipe *p)
{
	tls_free(p->srv);
	tls_free(p->ours);
	if (p->cli)
		wolfSSL_free(p->cli);
	if (p->cctx)
		wolfSSL_CTX_free(p->cctx);
	buf_reset(&p->c2s);
	buf_reset(&p->s2c);
	buf_reset(&p->splain);
	buf_reset(&p->cplain);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + seed);
}

/* Client → server: n bytes in writes of `chunk`, fed to the server `step` bytes at a time. */
static void c2s_check(struct pipe *p, size_t n, size_t chunk, size_t step)
{
	uint8_t *data = calloc(1, n);

	fill(data, n, (unsigned)n);
	for (size_t off = 0; off < n; off += chunk) {
		int len = (int)(n - off < chunk ? n - off : chunk);
		assert_int_equal(wolfSSL_write(p->cli, data + off, len), len);
	}
	pump_server(p, step);
	assert_int_equal(p->srv_res, TLS_WANT);
	assert_int_equal(buf_used(&p->splain), n);
	assert_memory_equal(buf_data(&p->splain), data, n);
	buf_reset(&p->splain);
	free(data);
}

/* Server → client: n bytes through tls_write, read back by wolfSSL. */
static void s2c_check(struct pipe *p, size_t n)
{
	uint8_t *data = calloc(1, n), *got = calloc(1, n);
	size_t have = 0;

	fill(data, n, (unsigned)n + 7);
	assert_int_equal(tls_write(p->srv, data, n), 0);
	while (have < n) {
		int r = wolfSSL_read(p->cli, got + have, (int)(n - have));
		assert_true(r > 0);
		have += (size_t)r;
	}
	assert_memory_equal(got, data, n);
	free(data);
	free(got);
}

static void lean_session(const char *ciphers, const char *want)
{
	struct pipe p;

	pipe_open(&p, 13, ciphers);
	assert_string_equal(wolfSSL_get_cipher_name(p.cli), want);
	assert_true(tls_lean(p.srv));
	assert_string_equal(tls_sni_domain(p.srv), "localhost");
	c2s_check(&p, 1, 1, 0);
	c2s_check(&p, 5000, 700, 0);
	c2s_check(&p, 40000, 40000, 0);   /* records of 2^14, fed whole */
	c2s_check(&p, 20000, 20000, 1);   /* fed one byte at a time */
	c2s_check(&p, 20000, 3000, 777);  /* fed across record boundaries */
	s2c_check(&p, 1);
	s2c_check(&p, 50000);
	pipe_close(&p);
}

static void test_chacha(void **state)
{
	(void)state;
	lean_session(NULL, "TLS13-CHACHA20-POLY1305-SHA256");
}

static void test_aes128(void **state)
{
	(void)state;
	lean_session("TLS13-AES128-GCM-SHA256", "TLS13-AES128-GCM-SHA256");
}

static void test_aes256(void **state)
{
	(void)state;
	lean_session("TLS13-AES256-GCM-SHA384", "TLS13-AES256-GCM-SHA384");
}

/* TLS 1.2 keeps wolfSSL's record layer, and works. */
static void test_tls12_stays(void **state)
{
	struct pipe p;

	(void)state;
	pipe_open(&p, 12, NULL);
	assert_false(tls_lean(p.srv));
	c2s_check(&p, 30000, 30000, 100);
	s2c_check(&p, 30000);
	pipe_close(&p);
}

/* §4.6.3: the client rekeys and asks us to; both directions keep working. */
static void test_key_update(void **state)
{
	struct pipe p;

	(void)state;
	pipe_open(&p, 13, NULL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wolfSSL_update_keys(p.cli), WOLFSSL_SUCCESS);
		c2s_check(&p, 3000, 3000, 0);
		s2c_check(&p, 3000);
	}
	pipe_close(&p);
}

static void test_close_notify(void **state)
{
	struct pipe p;

	(void)state;
	pipe_open(&p, 13, NULL);
	c2s_check(&p, 10, 10, 0);
	(void)wolfSSL_shutdown(p.cli);
	pump_server(&p, 0);
	assert_int_equal(p.srv_res, TLS_CLOSED);
	/* and ours reaches wolfSSL as a close_notify */
	tls_close_notify(p.srv);
	{
		char b[8];
		int r = wolfSSL_read(p.cli, b, sizeof(b));
		assert_true(r <= 0);
		assert_int_equal(wolfSSL_get_error(p.cli, r), WOLFSSL_ERROR_ZERO_RETURN);
	}
	pipe_close(&p);
}

static int last_alert_rx(WOLFSSL *ssl)
{
	WOLFSSL_ALERT_HISTORY h;
	char b[8];

	(void)wolfSSL_read(ssl, b, sizeof(b));
	assert_int_equal(wolfSSL_get_alert_history(ssl, &h), WOLFSSL_SUCCESS);
	return h.last_rx.code;
}

/* A flipped bit: bad_record_mac (§5.2), and the session is dead after. */
static void test_tamper(void **state)
{
	struct pipe p;
	char err[128];

	(void)state;
	pipe_open(&p, 13, NULL);
	assert_int_equal(wolfSSL_write(p.cli, "hello", 5), 5);
	buf_data(&p.c2s)[8] ^= 0x40;
	pump_server(&p, 0);
	assert_int_equal(p.srv_res, TLS_ERROR);
	assert_string_equal(tls_error_str(p.srv, err, sizeof(err)), "record authentication failed");
	assert_int_equal(buf_used(&p.splain), 0);
	assert_int_equal(last_alert_rx(p.cli), 20 /* bad_record_mac */);
	assert_int_equal(tls_write(p.srv, (const uint8_t *)"x", 1), -1);
	pipe_close(&p);
}

/* Records the peer must never send after the handshake. */
static void bad_record(const uint8_t *rec, size_t len, int alert, const char *why)
{
	struct pipe p;
	char err[128];

	pipe_open(&p, 13, NULL);
	assert_int_equal(buf_append(&p.c2s, rec, len, LIMIT), 0);
	pump_server(&p, 0);
	assert_int_equal(p.srv_res, TLS_ERROR);
	assert_string_equal(tls_error_str(p.srv, err, sizeof(err)), why);
	assert_int_equal(last_alert_rx(p.cli), alert);
	pipe_close(&p);
}

static void test_bad_records(void **state)
{
	static uint8_t big[5 + 16384 + 257];
	const uint8_t ccs[] = { 20, 3, 3, 0, 1, 1 };
	const uint8_t plain_alert[] = { 21, 3, 3, 0, 2, 2, 40 };
	const uint8_t short_ct[] = { 23, 3, 3, 0, 4, 1, 2, 3, 4 };

	(void)state;
	bad_record(ccs, sizeof(ccs), 10, "change_cipher_spec after the handshake");
	bad_record(plain_alert, sizeof(plain_alert), 10, "unprotected record after the handshake");
	bad_record(short_ct, sizeof(short_ct), 20, "record authentication failed");
	big[0] = 23, big[1] = 3, big[2] = 3, big[3] = (16384 + 257) >> 8, big[4] = (16384 + 257) & 0xff;
	bad_record(big, sizeof(big), 22, "record over 2^14+256 bytes");
}

/* Our client and our server, both lean: the client skips the server's
 * NewSessionTicket; data both ways. */
static void test_our_client(void **state)
{
	static uint8_t out[TLS_READ_CAP];
	struct pipe p;
	uint8_t data[30000];
	size_t have = 0;
	int res;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.sio = (struct tls_io){ .out = srv_out, .owner = &p };
	p.cio = (struct tls_io){ .out = cli_out, .owner = &p };
	p.srv = tls_new("localhost", &p.sio);
	p.ours = tls_client_new("localhost", 1, &p.cio);
	assert_non_null(p.ours);
	for (int i = 0; i < 10 && !(tls_lean(p.ours) && tls_lean(p.srv)); i++) {
		p.cio.in = buf_data(&p.s2c);
		p.cio.in_len = buf_used(&p.s2c);
		int r = tls_connect(p.ours);
		buf_consume(&p.s2c, buf_used(&p.s2c) - p.cio.in_len);
		assert_int_not_equal(r, TLS_ERROR);
		pump_server(&p, 0);
	}
	assert_true(tls_lean(p.ours));
	assert_true(tls_lean(p.srv));
	fill(data, sizeof(data), 3);
	assert_int_equal(tls_write(p.ours, data, sizeof(data)), 0);
	pump_server(&p, 0);
	assert_int_equal(buf_used(&p.splain), sizeof(data));
	assert_memory_equal(buf_data(&p.splain), data, sizeof(data));
	assert_int_equal(tls_write(p.srv, data, sizeof(data)), 0);
	p.cio.in = buf_data(&p.s2c);
	p.cio.in_len = buf_used(&p.s2c);
	for (size_t n; (n = tls_read(p.ours, out, sizeof(out), &res)) > 0; have += n)
		assert_memory_equal(out, data + have, n);
	assert_int_equal(res, TLS_WANT);
	assert_int_equal(have, sizeof(data));
	pipe_close(&p);
}

/* ---- middlebox compatibility (RFC 8446 §D.4) ---------------------------- */

static const uint8_t ccs_rec[6] = { 20, 3, 3, 0, 1, 1 };

/* Give the ClientHello waiting in c2s a 32-byte legacy_session_id, as
 * OpenSSL and Erlang/OTP clients send (wolfSSL's client sends none). */
static void add_session_id(struct pipe *p)
{
	uint8_t *ch = buf_data(&p->c2s), out[4096];
	size_t len = buf_used(&p->c2s), rlen = (size_t)ch[3] << 8 | ch[4], hlen = rlen - 4;
	const size_t at = 5 + 4 + 2 + 32;   /* header, handshake header, version, random */

	assert_int_equal(ch[0], 22);
	assert_int_equal(ch[5], 1);
	assert_int_equal(len, 5 + rlen);     /* one record */
	assert_int_equal(ch[at], 0);
	memcpy(out, ch, at);
	out[at] = 32;
	memset(out + at + 1, 0xa5, 32);
	memcpy(out + at + 33, ch + at + 1, len - at - 1);
	rlen += 32, hlen += 32;
	out[3] = (uint8_t)(rlen >> 8), out[4] = (uint8_t)rlen;
	out[6] = (uint8_t)(hlen >> 16), out[7] = (uint8_t)(hlen >> 8), out[8] = (uint8_t)hlen;
	buf_reset(&p->c2s);
	assert_int_equal(buf_append(&p->c2s, out, len + 32, LIMIT), 0);
}

/* The server's answer to the ClientHello: its first record, a hello; *rec2
 * is the one after it. */
static const uint8_t *server_first(struct pipe *p, const uint8_t **rec2)
{
	const uint8_t *sh = buf_data(&p->s2c);

	assert_true(buf_used(&p->s2c) > 5u + 44u);
	assert_int_equal(sh[0], 22);
	assert_int_equal(sh[5], 2);
	*rec2 = sh + 5 + ((size_t)sh[3] << 8 | sh[4]);
	assert_true(*rec2 + 6 <= sh + buf_used(&p->s2c));
	return sh;
}

/* A ClientHello with a legacy_session_id gets the id echoed and the dummy
 * change_cipher_spec right after the ServerHello (and only there: the next
 * record is protected); one without gets no CCS at all. */
static void test_middlebox_ccs(void **state)
{
	static const uint8_t hrr_rand[8] = { 0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11 };
	const uint8_t *sh, *next;
	struct pipe p;

	(void)state;
	pipe_new(&p, 13, NULL);
	assert_int_not_equal(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
	add_session_id(&p);
	pump_server(&p, 0);
	sh = buf_data(&p.s2c);
	assert_int_equal(sh[0], 22);
	assert_int_equal(sh[5], 2);
	assert_int_equal(sh[5 + 4 + 2 + 32], 32);       /* legacy_session_id_echo */
	assert_int_equal(sh[5 + 4 + 2 + 33], 0xa5);
	next = sh + 5 + ((size_t)sh[3] << 8 | sh[4]);
	assert_memory_equal(next, ccs_rec, sizeof(ccs_rec));
	assert_int_equal(next[6], 23);                  /* EncryptedExtensions, protected */
	pipe_close(&p);

	/* Without a session id: the ServerHello is followed by protected records only. */
	pipe_new(&p, 13, NULL);
	assert_int_not_equal(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
	pump_server(&p, 0);
	(void)server_first(&p, &next);
	assert_int_equal(next[0], 23);
	pipe_close(&p);

	/* A HelloRetryRequest is the first handshake message: the CCS follows it. */
	pipe_new(&p, 13, NULL);
	assert_int_equal(wolfSSL_NoKeyShares(p.cli), WOLFSSL_SUCCESS);
	assert_int_not_equal(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
	add_session_id(&p);
	pump_server(&p, 0);
	sh = buf_data(&p.s2c);
	assert_int_equal(sh[5], 2);
	assert_memory_equal(sh + 11, hrr_rand, sizeof(hrr_rand));
	next = sh + 5 + ((size_t)sh[3] << 8 | sh[4]);
	assert_int_equal(next + 6, sh + buf_used(&p.s2c));
	assert_memory_equal(next, ccs_rec, sizeof(ccs_rec));
	pipe_close(&p);

	/* TLS 1.2 has a CCS of its own, and the server sends no dummy one. */
	pipe_new(&p, 12, NULL);
	assert_int_not_equal(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
	add_session_id(&p);
	pump_server(&p, 0);
	sh = buf_data(&p.s2c);
	next = sh + 5 + ((size_t)sh[3] << 8 | sh[4]);
	assert_true(next + 6 > sh + buf_used(&p.s2c) || next[0] != 20);
	pipe_close(&p);
}

/* §5: the client's dummy change_cipher_spec records (one byte, 1), however
 * many and however delivered, are dropped during the handshake; the session
 * still goes lean and works. */
static void test_client_ccs(void **state)
{
	uint8_t three[18];
	struct pipe p;

	(void)state;
	for (int i = 0; i < 3; i++)
		memcpy(three + 6 * i, ccs_rec, 6);
	for (size_t step = 0; step <= 4; step += 4) {
		pipe_new(&p, 13, NULL);
		pipe_handshake(&p, three, sizeof(three), step ? step : 0);
		assert_true(tls_lean(p.srv));
		c2s_check(&p, 3000, 3000, 0);
		s2c_check(&p, 3000);
		pipe_close(&p);
	}
	pipe_new(&p, 13, NULL);
	pipe_handshake(&p, three, sizeof(three), 1);    /* a byte at a time */
	assert_true(tls_lean(p.srv));
	pipe_close(&p);
	/* After a HelloRetryRequest too (before the second ClientHello, §D.4). */
	pipe_new(&p, 13, NULL);
	assert_int_equal(wolfSSL_NoKeyShares(p.cli), WOLFSSL_SUCCESS);
	pipe_handshake(&p, three, sizeof(three), 0);
	assert_true(tls_lean(p.srv));
	c2s_check(&p, 100, 100, 0);
	pipe_close(&p);
}

/* Any other change_cipher_spec during the handshake, or one before the
 * ClientHello, is an unexpected_message (§5), whatever wolfSSL would say. */
static void bad_ccs(const uint8_t *rec, size_t len, bool first, const char *why)
{
	struct pipe p;
	char err[128];
	int r = 0;

	pipe_new(&p, 13, NULL);
	if (first) {
		p.sio.in = rec;
		p.sio.in_len = len;
		r = tls_handshake(p.srv);
	} else {
		assert_int_not_equal(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
		pump_server(&p, 0);
		(void)wolfSSL_connect(p.cli);      /* reads the server's flight */
		buf_reset(&p.c2s);                 /* its Finished is not sent */
		p.sio.in = rec;
		p.sio.in_len = len;
		r = tls_handshake(p.srv);
	}
	assert_int_equal(r, TLS_ERROR);
	assert_string_equal(tls_error_str(p.srv, err, sizeof(err)), why);
	if (first) /* no key yet: our own plaintext alert */
		assert_memory_equal(buf_data(&p.s2c), ((const uint8_t[]){ 21, 3, 3, 0, 2, 2, 10 }), 7);
	else
		assert_int_equal(last_alert_rx(p.cli), 10);
	pipe_close(&p);
}

static void test_bad_ccs(void **state)
{
	(void)state;
	bad_ccs((const uint8_t[]){ 20, 3, 3, 0, 1, 1 }, 6, true, "change_cipher_spec before the ClientHello");
	bad_ccs((const uint8_t[]){ 20, 3, 3, 0, 1, 2 }, 6, false, "change_cipher_spec other than the single byte 1");
	bad_ccs((const uint8_t[]){ 20, 3, 3, 0, 2, 1, 1 }, 7, false, "change_cipher_spec other than the single byte 1");
	bad_ccs((const uint8_t[]){ 20, 3, 3, 0, 0 }, 5, false, "change_cipher_spec other than the single byte 1");
}

/* ---- max_fragment_length (RFC 6066 §4) ------------------------------------ */

/* Every record in b[0..n) protects at most `max` bytes of inner plaintext. */
static void records_within(const uint8_t *b, size_t n, size_t max)
{
	for (size_t i = 0; i < n;) {
		size_t len = (size_t)b[i + 3] << 8 | b[i + 4];
		assert_true(len - 16 <= max);
		i += 5 + len;
		assert_true(i <= n);
	}
}

/* A client that negotiated 512 bytes: after the hand-over our records stay
 * within it (content and type: 512), its own full-size 512-byte records are
 * accepted, and data flows both ways. */
static void test_max_fragment(void **state)
{
	uint8_t data[3000];
	struct pipe p;

	(void)state;
	pipe_new(&p, 13, NULL);
	assert_int_equal(wolfSSL_UseMaxFragment(p.cli, WOLFSSL_MFL_2_9), WOLFSSL_SUCCESS);
	pipe_handshake(&p, NULL, 0, 0);
	assert_true(tls_lean(p.srv));
	fill(data, sizeof(data), 9);
	assert_int_equal(tls_write(p.srv, data, sizeof(data)), 0);
	records_within(buf_data(&p.s2c), buf_used(&p.s2c), 512);
	for (size_t have = 0; have < sizeof(data);) {
		uint8_t got[600];
		int r = wolfSSL_read(p.cli, got, sizeof(got));
		assert_true(r > 0 && r <= 511);
		assert_memory_equal(got, data + have, (size_t)r);
		have += (size_t)r;
	}
	c2s_check(&p, 5000, 5000, 0);
	c2s_check(&p, 512, 512, 0);
	pipe_close(&p);
}

/* ---- the record layer on its own: two struct tls13 with the same secrets -- */

struct side {
	struct tls13 r;
	struct tls_io io;
	struct buf sent;
};

static int side_out(void *owner, const uint8_t *data, size_t len)
{
	struct side *s = owner;
	return buf_append(&s->sent, data, len, LIMIT);
}

/* srv is the server, peer the client, both ChaCha20-Poly1305 (AES-GCM when
 * aes is set). */
static void sides(struct side *srv, struct side *peer, bool aes)
{
	static const uint8_t cs[32] = "client application traffic sec";
	static const uint8_t ss[32] = "server application traffic sec";
	struct side *both[2] = { srv, peer };

	for (int i = 0; i < 2; i++) {
		struct side *s = both[i];
		memset(s, 0, sizeof(*s));
		s->r.client = (uint8_t)i;
		s->r.cipher = aes ? REC_AES_GCM : REC_CHACHA20_POLY1305;
		s->r.key_len = aes ? 16 : 32;
		s->r.hash_len = 32;
		memcpy(i ? s->r.wr.secret : s->r.rd.secret, cs, 32);
		memcpy(i ? s->r.rd.secret : s->r.wr.secret, ss, 32);
		assert_int_equal(rec_derive(&s->r, &s->r.rd), 0);
		assert_int_equal(rec_derive(&s->r, &s->r.wr), 0);
		s->io = (struct tls_io){ .out = side_out, .owner = s };
	}
}

static void sides_free(struct side *a, struct side *b)
{
	rec_clear(&a->r);
	rec_clear(&b->r);
	buf_reset(&a->sent);
	buf_reset(&b->sent);
}

/* Feed what `from` sent to `to` until it returns plaintext (in out, *n
 * bytes) or stops; returns the result.  The rest stays in to->io for more
 * rec_read calls. */
static int deliver(struct side *from, struct side *to, uint8_t *out, size_t *n)
{
	static uint8_t wire[LIMIT];
	size_t len = buf_used(&from->sent);
	int res;

	assert_true(len <= sizeof(wire));
	if (len)
		memcpy(wire, buf_data(&from->sent), len);
	buf_reset(&from->sent);
	to->io.in = wire;
	to->io.in_len = len;
	*n = rec_read(&to->r, &to->io, out, &res);
	return res;
}

/* The alert in the one record `from` sent, opened with to's read keys. */
static int alert_of(struct side *from, struct side *to)
{
	static uint8_t out[REC_INNER_MAX];
	const uint8_t *rec = buf_data(&from->sent);
	size_t clen = (size_t)rec[3] << 8 | rec[4];

	assert_int_equal(buf_used(&from->sent), 5 + clen);
	assert_int_equal(open_record(&to->r, rec, clen, out), 0);
	assert_int_equal(clen - TAG_LEN, 3);
	assert_int_equal(out[2], REC_CT_ALERT);
	assert_int_equal(out[0], 2);
	buf_reset(&from->sent);
	return out[1];
}

/* Seal a record of `content` bytes of application data and `pad` zero bytes
 * of padding (§5.4) as peer. */
static void send_padded(struct side *peer, size_t content, size_t pad)
{
	static uint8_t rec[5 + 70000];
	size_t inner = content + 1 + pad, wire = inner + TAG_LEN;

	memset(rec, 0, sizeof(rec));
	rec[0] = REC_CT_APPDATA, rec[1] = 3, rec[2] = 3;
	rec[3] = (uint8_t)(wire >> 8), rec[4] = (uint8_t)wire;
	memset(rec + 5, 'x', content);
	rec[5 + content] = REC_CT_APPDATA;
	assert_int_equal(seal(&peer->r, rec, rec + 5, inner), 0);
	peer->r.wr.seq++;
	assert_int_equal(buf_append(&peer->sent, rec, 5 + wire, LIMIT), 0);
}

/* §5.4: the inner plaintext — content, type and padding — is at most
 * 2^14 + 1 bytes; one byte of padding more is a record_overflow, even though
 * the record is within the 2^14 + 256 of §5.2. */
static void test_padding(void **state)
{
	static uint8_t out[REC_INNER_MAX];
	struct side srv, peer;
	size_t n;

	(void)state;
	for (int aes = 0; aes <= 1; aes++) {
		sides(&srv, &peer, aes);
		send_padded(&peer, 10, REC_PLAIN_MAX - 10);           /* 2^14 + 1: fine */
		send_padded(&peer, REC_PLAIN_MAX, 0);
		send_padded(&peer, 0, 100);                           /* an empty record, padded */
		send_padded(&peer, 5, 0);
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_OK);
		assert_int_equal(n, 10);
		assert_int_equal(rec_read(&srv.r, &srv.io, out, &(int){ 0 }), REC_PLAIN_MAX);
		assert_int_equal(rec_read(&srv.r, &srv.io, out, &(int){ 0 }), 5);
		send_padded(&peer, 10, REC_PLAIN_MAX - 9);            /* 2^14 + 2 */
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_ERROR);
		assert_string_equal(srv.r.err, "inner plaintext over 2^14+1 bytes");
		assert_int_equal(alert_of(&srv, &peer), REC_AL_RECORD_OVERFLOW);
		sides_free(&srv, &peer);
	}
	/* With max_fragment_length 512: 512 bytes of content (513 of inner
	 * plaintext) pass, as OpenSSL and wolfSSL send them; more content, or
	 * padding beyond, is a record_overflow. */
	for (int k = 0; k < 2; k++) {
		sides(&srv, &peer, false);
		srv.r.frag = 512;
		send_padded(&peer, 512, 0);
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_OK);
		assert_int_equal(n, 512);
		send_padded(&peer, k ? 513 : 100, k ? 0 : 413);
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_ERROR);
		assert_string_equal(srv.r.err, "record over the negotiated max_fragment_length");
		assert_int_equal(alert_of(&srv, &peer), REC_AL_RECORD_OVERFLOW);
		assert_int_equal(rec_write(&srv.r, &srv.io, out, 1), -1);
		sides_free(&srv, &peer);
	}
}

/*
 * A KeyUpdate whose key derivation fails (each of the three expansions in
 * turn): the direction keeps its old secret, key, iv and sequence number —
 * never the old key at sequence 0 — the error is latched, and the alert
 * (internal_error) goes out under the unchanged write keys, readable by the
 * peer.  Reading the peer's KeyUpdate (calls 1-3), answering its
 * update_requested (4-6), and our own rekeying at 2^24 records (1-3).
 */
static void test_key_update_failure(void **state)
{
	static uint8_t out[REC_INNER_MAX];
	const uint8_t ku[5] = { HS_KEY_UPDATE, 0, 0, 1, 1 };
	struct side srv, peer;
	struct rec_dir rd, wr;
	size_t n;

	(void)state;
	for (int at = 1; at <= 6; at++) {
		sides(&srv, &peer, at & 1);
		assert_int_equal(rec_write(&peer.r, &peer.io, (const uint8_t *)"abc", 3), 0);
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_OK);
		assert_int_equal(rec_write(&srv.r, &srv.io, (const uint8_t *)"def", 3), 0);
		assert_int_equal(deliver(&srv, &peer, out, &n), TLS_OK);
		assert_int_equal(rec_send(&peer.r, &peer.io, REC_CT_HANDSHAKE, ku, sizeof(ku)), 0);
		assert_int_equal(key_update(&peer.r, &peer.r.wr), 0);
		rd = srv.r.rd, wr = srv.r.wr;
		expand_calls = 0, expand_fail_at = at;
		assert_int_equal(deliver(&peer, &srv, out, &n), TLS_ERROR);
		expand_fail_at = 0;
		assert_string_equal(srv.r.err, at <= 3 ? "key derivation failed" : "cannot answer KeyUpdate");
		if (at <= 3) { /* the old key, past the KeyUpdate record */
			assert_memory_equal(srv.r.rd.secret, rd.secret, sizeof(rd.secret));
			assert_memory_equal(srv.r.rd.key, rd.key, sizeof(rd.key));
			assert_memory_equal(srv.r.rd.iv, rd.iv, sizeof(rd.iv));
			assert_int_equal(srv.r.rd.seq, rd.seq + 1);
		}
		assert_memory_equal(&srv.r.wr.secret, &wr.secret, sizeof(wr.secret));
		assert_memory_equal(&srv.r.wr.key, &wr.key, sizeof(wr.key));
		assert_int_equal(srv.r.wr.seq, wr.seq + 1);              /* the alert, nothing else */
		assert_int_equal(alert_of(&srv, &peer), REC_AL_INTERNAL_ERROR);
		assert_int_equal(rec_write(&srv.r, &srv.io, out, 1), -1);
		assert_int_equal(buf_used(&srv.sent), 0);
		sides_free(&srv, &peer);
	}
	for (int at = 1; at <= 3; at++) {
		sides(&srv, &peer, false);
		srv.r.wr.seq = KEY_UPDATE_AT;
		peer.r.rd.seq = KEY_UPDATE_AT;
		wr = srv.r.wr;
		expand_calls = 0, expand_fail_at = at;
		assert_int_equal(rec_write(&srv.r, &srv.io, (const uint8_t *)"x", 1), -1);
		expand_fail_at = 0;
		assert_string_equal(srv.r.err, "cannot update our keys");
		assert_memory_equal(&srv.r.wr.key, &wr.key, sizeof(wr.key));
		assert_int_equal(srv.r.wr.seq, KEY_UPDATE_AT + 1);       /* only the alert went out */
		assert_int_equal(alert_of(&srv, &peer), REC_AL_INTERNAL_ERROR);
		sides_free(&srv, &peer);
	}
	/* And without a failure: the answer to update_requested, then fresh keys
	 * both ways. */
	sides(&srv, &peer, false);
	assert_int_equal(rec_send(&peer.r, &peer.io, REC_CT_HANDSHAKE, ku, sizeof(ku)), 0);
	assert_int_equal(key_update(&peer.r, &peer.r.wr), 0);
	assert_int_equal(deliver(&peer, &srv, out, &n), TLS_WANT);
	assert_int_equal(srv.r.rd.seq, 0);
	assert_int_equal(srv.r.wr.seq, 0);
	assert_int_equal(deliver(&srv, &peer, out, &n), TLS_WANT);  /* its KeyUpdate(not requested) */
	assert_int_equal(rec_write(&srv.r, &srv.io, (const uint8_t *)"ok", 2), 0);
	assert_int_equal(deliver(&srv, &peer, out, &n), TLS_OK);
	assert_int_equal(n, 2);
	sides_free(&srv, &peer);
}

static int setup(void **state)
{
	struct config cfg;
	char cmd[512];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(crt, sizeof(crt), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
		 "-subj /CN=localhost -keyout %s -out %s 2>/dev/null", key, crt);
	if (system(cmd) != 0)
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ndomains = 1;
	cfg.domains[0] = (struct config_domain){ .name = "localhost", .cert = crt, .key = key };
	return tls_init(&cfg);
}

static int teardown(void **state)
{
	(void)state;
	tls_client_shutdown();
	tls_shutdown();
	unlink(crt);
	unlink(key);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chacha),
		cmocka_unit_test(test_aes128),
		cmocka_unit_test(test_aes256),
		cmocka_unit_test(test_tls12_stays),
		cmocka_unit_test(test_key_update),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_our_client),
		cmocka_unit_test(test_middlebox_ccs),
		cmocka_unit_test(test_client_ccs),
		cmocka_unit_test(test_bad_ccs),
		cmocka_unit_test(test_max_fragment),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_key_update_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
