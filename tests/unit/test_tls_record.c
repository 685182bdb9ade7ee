/*
 * test_tls_record — tls/tls.c's hand-over to tls/record.c, against wolfSSL's
 * own record layer as the independent peer: an in-memory wolfSSL client
 * talks to our server session.  Checks that a TLS 1.3 session really leaves
 * wolfSSL (tls_lean) for each suite, that data flows both ways across record
 * boundaries and partial deliveries, that KeyUpdate both ways, close_notify
 * and tampering behave as RFC 8446 says (the alert the client receives is
 * asserted), that TLS 1.2 stays with wolfSSL, and that our own client and
 * server (both lean) interoperate, the client skipping the server's tickets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "core/buf.h"
#include "core/config.h"
#include "tls/tls.h"

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

static void pipe_open(struct pipe *p, int version, const char *ciphers)
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
	for (int i = 0; i < 10; i++) {
		int r = wolfSSL_connect(p->cli);
		pump_server(p, 0);
		if (r == WOLFSSL_SUCCESS && tls_sni_domain(p->srv))
			return;
	}
	fail_msg("handshake did not complete");
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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
