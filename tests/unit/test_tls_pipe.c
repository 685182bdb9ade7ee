/*
 * test_tls_pipe — tls/pipe.c, the TLS pipe under the edge's TLS layer and
 * xedge-bench's client: a server pipe and a client pipe wired to each other
 * in memory.  The handshake both ways (the client verified against the CA
 * file and the name, or not verified), plaintext buffered and sealed at
 * flush, both sessions handed to our record layer, close_notify (SHUT
 * still reads the peer's goodbye, writes nothing), the live() stop, and the
 * verification failures: a CA that did not sign the certificate, and a
 * certificate for another name.
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

#include "tls/pipe.h"

static char dir[] = "/tmp/xedge-pipe-XXXXXX";
static char crt[256], key[256], other[256], other_key[256];

struct side {
	struct tlsp p;
	struct buf wire;         /* ciphertext it wrote, for the other side */
	struct buf plain;        /* plaintext it received */
	int ready, ends, last_end;
	bool dead;               /* live() answers false */
	char err[160];
};

static int s_out(void *owner, const uint8_t *d, size_t n)
{
	struct side *s = owner;
	return buf_append(&s->wire, d, n, 1u << 24);
}

static void s_ready(void *owner)
{
	((struct side *)owner)->ready++;
}

static void s_plain(void *owner, const uint8_t *d, size_t n)
{
	struct side *s = owner;
	assert_int_equal(buf_append(&s->plain, d, n, 1u << 24), 0);
}

static void s_end(void *owner, int why)
{
	struct side *s = owner;
	s->ends++;
	s->last_end = why;
	tlsp_error_str(&s->p, s->err, sizeof(s->err));
}

static bool s_live(void *owner)
{
	return !((struct side *)owner)->dead;
}

static const struct tlsp_ops ops = {
	.out = s_out, .ready = s_ready, .plain = s_plain, .end = s_end, .live = s_live,
};

static uint8_t scratch[TLS_READ_CAP];

/* Move what `from` wrote into `to`.  Returns the bytes moved. */
static size_t move(struct side *from, struct side *to)
{
	struct buf b = from->wire;
	size_t n = buf_used(&b);

	memset(&from->wire, 0, sizeof(from->wire));
	if (n)
		tlsp_input(&to->p, buf_data(&b), n, scratch);
	buf_reset(&b);
	return n;
}

static void pump(struct side *a, struct side *b)
{
	for (int i = 0; i < 20 && (move(a, b) | move(b, a)); i++)
		;
}

/* A server side and a client side (verified against the loaded CA file
 * for `name`, or unverified when name is NULL), the ClientHello sent. */
static void pair(struct side *srv, struct side *cli, const char *name)
{
	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	tlsp_init(&srv->p, &ops, srv);
	tlsp_init(&cli->p, &ops, cli);
	assert_int_equal(tlsp_server(&srv->p, "localhost"), 0);
	if (name)
		assert_int_equal(tlsp_client_verified(&cli->p, name), 0);
	else
		assert_int_equal(tlsp_client(&cli->p, "localhost", 1), 0);
	tlsp_input(&cli->p, NULL, 0, scratch);
	assert_true(buf_used(&cli->wire) > 0);   /* the ClientHello */
}

static void unpair(struct side *a, struct side *b)
{
	struct side *s[2] = { a, b };
	for (int i = 0; i < 2; i++) {
		tlsp_clear(&s[i]->p);
		buf_reset(&s[i]->wire);
		buf_reset(&s[i]->plain);
	}
}

static bool plain_is(struct side *s, const char *want)
{
	bool ok = buf_used(&s->plain) == strlen(want) &&
		  memcmp(buf_data(&s->plain), want, strlen(want)) == 0;
	buf_reset(&s->plain);
	return ok;
}

static int load(const char *ca)
{
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ndomains = 1;
	cfg.domains[0] = (struct config_domain){ .name = "localhost", .cert = crt, .key = key };
	cfg.upstream_tls = true;
	cfg.tls_ca_file = (char *)ca;
	return tls_init(&cfg);
}

static void exchange(struct side *srv, struct side *cli)
{
	pump(srv, cli);
	assert_int_equal(cli->ready, 1);
	assert_int_equal(srv->ready, 1);
	assert_true(tlsp_open(&cli->p) && tlsp_open(&srv->p));
	assert_true(tls_lean(cli->p.tls));
	assert_true(tls_lean(srv->p.tls));
	/* Written twice, sealed once: one record. */
	assert_int_equal(tlsp_write(&cli->p, "<a/>", 4, 1024), 0);
	assert_int_equal(tlsp_write(&cli->p, "<b/>", 4, 1024), 0);
	assert_int_equal(buf_used(&cli->wire), 0);
	assert_int_equal(tlsp_flush(&cli->p), 0);
	assert_int_equal(buf_used(&cli->wire), 5 + 8 + 1 + 16);
	assert_int_equal(tlsp_write(&srv->p, "<c/>", 4, 1024), 0);
	assert_int_equal(tlsp_flush(&srv->p), 0);
	pump(srv, cli);
	assert_true(plain_is(srv, "<a/><b/>"));
	assert_true(plain_is(cli, "<c/>"));
	assert_int_equal(tlsp_write(&cli->p, "x", 1, 0), -1);   /* over its limit */
}

static void test_verified(void **state)
{
	struct side srv, cli;

	(void)state;
	pair(&srv, &cli, "localhost");
	exchange(&srv, &cli);
	unpair(&srv, &cli);
}

static void test_unverified(void **state)
{
	struct side srv, cli;

	(void)state;
	pair(&srv, &cli, NULL);
	exchange(&srv, &cli);
	unpair(&srv, &cli);
}

static void test_close_notify(void **state)
{
	struct side srv, cli;

	(void)state;
	pair(&srv, &cli, "localhost");
	pump(&srv, &cli);
	assert_int_equal(tlsp_write(&cli.p, "</stream:stream>", 16, 1024), 0);
	tlsp_close_notify(&cli.p);   /* flushes first */
	assert_int_equal(cli.p.state, TLSP_SHUT);
	assert_int_equal(tlsp_write(&cli.p, "late", 4, 1024), 0);
	assert_int_equal(buf_used(&cli.p.pt), 0);   /* nothing after our goodbye */
	move(&cli, &srv);
	assert_true(plain_is(&srv, "</stream:stream>"));
	assert_int_equal(srv.ends, 1);
	assert_int_equal(srv.last_end, TLSP_END_NOTIFY);
	assert_int_equal(srv.p.state, TLSP_OPEN);   /* it answers with its own */
	assert_int_equal(tlsp_write(&srv.p, "</stream:stream>", 16, 1024), 0);
	tlsp_close_notify(&srv.p);
	move(&srv, &cli);
	assert_true(plain_is(&cli, "</stream:stream>"));   /* SHUT still reads */
	assert_int_equal(cli.ends, 1);
	assert_int_equal(cli.last_end, TLSP_END_NOTIFY);
	unpair(&srv, &cli);
}

static void test_live_stops_reading(void **state)
{
	struct side srv, cli;

	(void)state;
	pair(&srv, &cli, "localhost");
	pump(&srv, &cli);
	srv.dead = true;
	assert_int_equal(tlsp_write(&cli.p, "<a/>", 4, 1024), 0);
	assert_int_equal(tlsp_flush(&cli.p), 0);
	move(&cli, &srv);
	assert_int_equal(buf_used(&srv.plain), 0);
	assert_int_equal(srv.ends, 0);
	unpair(&srv, &cli);
}

static void test_wrong_ca(void **state)
{
	struct side srv, cli;

	(void)state;
	tls_shutdown();
	assert_int_equal(load(other), 0);
	pair(&srv, &cli, "localhost");
	pump(&srv, &cli);
	assert_int_equal(cli.ready, 0);
	assert_int_equal(cli.ends, 1);
	assert_int_equal(cli.last_end, TLSP_END_HANDSHAKE);
	assert_int_equal(cli.p.state, TLSP_CLOSED);
	assert_non_null(strstr(cli.err, "certificate verification failed"));
	unpair(&srv, &cli);
	tls_shutdown();
	assert_int_equal(load(crt), 0);
}

static void test_wrong_name(void **state)
{
	struct side srv, cli;

	(void)state;
	pair(&srv, &cli, "other.example");
	pump(&srv, &cli);
	assert_int_equal(cli.ready, 0);
	assert_int_equal(cli.last_end, TLSP_END_HANDSHAKE);
	assert_non_null(strstr(cli.err, "certificate verification failed"));
	assert_non_null(strstr(cli.err, "mismatch"));
	unpair(&srv, &cli);
}

static int make_cert(const char *k, const char *c, const char *cn)
{
	char cmd[768];

	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
		 "-subj /CN=%s -addext subjectAltName=DNS:%s -keyout %s -out %s 2>/dev/null", cn, cn, k, c);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(crt, sizeof(crt), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	snprintf(other, sizeof(other), "%s/o.pem", dir);
	snprintf(other_key, sizeof(other_key), "%s/ok.pem", dir);
	if (make_cert(key, crt, "localhost") < 0 || make_cert(other_key, other, "localhost") < 0)
		return -1;
	return load(crt);
}

static int teardown(void **state)
{
	(void)state;
	tls_client_shutdown();
	tls_shutdown();
	unlink(crt);
	unlink(key);
	unlink(other);
	unlink(other_key);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verified),
		cmocka_unit_test(test_unverified),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_live_stops_reading),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_wrong_name),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
