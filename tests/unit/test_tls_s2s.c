/*
 * test_tls_s2s — the server-to-server side of tls/tls.c: real handshakes in
 * memory between tls_client_new_s2s and tls_new_s2s (and wolfSSL's own
 * client and server as independent peers), with certificates made at test
 * time by openssl: a test CA in tls.ca_file, leaves it signs, a self-signed
 * leaf, a leaf of a CA not in tls.ca_file, an expired leaf, a CN-only leaf.
 * Asserts what the peer's certificate proved on both sides (chain, identity,
 * the reason given for logs), that a certificate failing verification never
 * fails the handshake, that the answers survive the TLS 1.3 hand-over to the
 * record layer (data still flows), SNI on the s2s server, ALPN "xmpp-server"
 * (XEP-0368) both ways, a peer without a certificate, and TLS 1.2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "tls/tls.h"

#define LIMIT (1u << 20)

static char dir[] = "/tmp/xedge-tls-s2s-XXXXXX";

/* The served domains and what their certificate is. */
enum { A, B, C, D, E, F, G, H, X, Y, NDOM };
static const char *const names[NDOM] = {
	"a.example",   /* CA-signed: DNS-ID and SRV-ID _xmpp-server */
	"b.example",   /* CA-signed: DNS-ID and XmppAddr */
	"c.example",   /* self-signed */
	"d.example",   /* signed by a CA not in tls.ca_file */
	"e.example",   /* CA-signed, expired */
	"f.example",   /* CA-signed, subject CN only */
	"g.example",   /* signed by an intermediate CA, which the chain file holds */
	"h.example",   /* signed by that intermediate, which is not sent */
	"x.example",   /* signed by a self-made CA it sends along (not in tls.ca_file) */
	"y.example",   /* signed by that CA, sent alone */
};

static char paths[2 * NDOM + 1][160];   /* cert and key of each, then tls.ca_file */
static struct config cfg;

/* One end of a connection: our session, or wolfSSL's own. */
struct end {
	struct tls *t;
	WOLFSSL *w;
	bool server, done, failed;
	struct tls_io io;
	struct buf in;      /* ciphertext from the other end */
	struct buf plain;   /* plaintext received */
	struct end *peer;
};

static int end_out(void *owner, const uint8_t *data, size_t len)
{
	struct end *e = owner;
	return buf_append(&e->peer->in, data, len, LIMIT);
}

static int w_recv(WOLFSSL *ssl, char *b, int sz, void *ctx)
{
	struct end *e = ctx;
	size_t n = buf_used(&e->in) < (size_t)sz ? buf_used(&e->in) : (size_t)sz;

	(void)ssl;
	if (!n)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	memcpy(b, buf_data(&e->in), n);
	buf_consume(&e->in, n);
	return (int)n;
}

static int w_send(WOLFSSL *ssl, char *b, int sz, void *ctx)
{
	(void)ssl;
	return end_out(ctx, (const uint8_t *)b, (size_t)sz) < 0 ? WOLFSSL_CBIO_ERR_GENERAL : sz;
}

static void ends_link(struct end *cli, struct end *srv)
{
	memset(cli, 0, sizeof(*cli));
	memset(srv, 0, sizeof(*srv));
	cli->peer = srv;
	srv->peer = cli;
	srv->server = true;
	cli->io = (struct tls_io){ .out = end_out, .owner = cli };
	srv->io = (struct tls_io){ .out = end_out, .owner = srv };
}

/* Give e what it received: the handshake, then any plaintext. */
static void end_step(struct end *e)
{
	static uint8_t out[TLS_READ_CAP];

	if (e->failed)
		return;
	if (e->t) {
		e->io.in = buf_data(&e->in);
		e->io.in_len = buf_used(&e->in);
		if (!e->done) {
			int r = e->server ? tls_handshake(e->t) : tls_connect(e->t);
			e->done = r == TLS_OK;
			e->failed = r == TLS_ERROR;
		}
		while (e->done) {
			int res;
			size_t n = tls_read(e->t, out, sizeof(out), &res);
			if (!n) {
				e->failed = res != TLS_WANT;
				break;
			}
			assert_int_equal(buf_append(&e->plain, out, n, LIMIT), 0);
		}
		buf_consume(&e->in, buf_used(&e->in) - e->io.in_len);
		return;
	}
	if (!e->done) {
		int r = e->server ? wolfSSL_accept(e->w) : wolfSSL_connect(e->w);
		if (r == WOLFSSL_SUCCESS) {
			e->done = true;
		} else {
			r = wolfSSL_get_error(e->w, r);
			e->failed = r != WOLFSSL_ERROR_WANT_READ && r != WOLFSSL_ERROR_WANT_WRITE;
		}
	}
	while (e->done && buf_used(&e->in)) {
		int n = wolfSSL_read(e->w, out, sizeof(out));
		if (n <= 0)
			break;
		assert_int_equal(buf_append(&e->plain, out, (size_t)n, LIMIT), 0);
	}
}

/* Run both ends until neither has anything left to take. */
static void run(struct end *cli, struct end *srv)
{
	for (int i = 0; i < 50; i++) {
		end_step(cli);
		end_step(srv);
		if (cli->done && srv->done && !buf_used(&cli->in) && !buf_used(&srv->in))
			break;
		if ((cli->failed || srv->failed) && !buf_used(&cli->in) && !buf_used(&srv->in))
			break;
	}
}

static void end_free(struct end *e)
{
	tls_free(e->t);
	if (e->w)
		wolfSSL_free(e->w);
	buf_reset(&e->in);
	buf_reset(&e->plain);
}

/* Our client from `from` to our server, which serves `sni`'s certificate
 * when the client asks for it (server created for `srv_domain`). */
static void ours(struct end *cli, struct end *srv, int from, const char *sni, const char *srv_domain,
		 bool direct)
{
	ends_link(cli, srv);
	cli->t = tls_client_new_s2s(names[from], sni, direct, &cli->io);
	srv->t = tls_new_s2s(srv_domain, &srv->io);
	assert_non_null(cli->t);
	assert_non_null(srv->t);
	run(cli, srv);
	assert_true(cli->done && srv->done);
	assert_false(cli->failed || srv->failed);
}

static const char *why(const struct tls *t, const char *domain)
{
	static char buf[256];
	return tls_peer_why(t, domain, buf, sizeof(buf));
}

/* Data both ways, on whichever record layer the sessions run. */
static void exchange(struct end *cli, struct end *srv)
{
	assert_int_equal(tls_write(cli->t, (const uint8_t *)"<db:result/>", 12), 0);
	assert_int_equal(tls_write(srv->t, (const uint8_t *)"<stream:features/>", 18), 0);
	run(cli, srv);
	assert_int_equal(buf_used(&srv->plain), 12);
	assert_memory_equal(buf_data(&srv->plain), "<db:result/>", 12);
	assert_int_equal(buf_used(&cli->plain), 18);
	assert_memory_equal(buf_data(&cli->plain), "<stream:features/>", 18);
}

/*
 * Both certificates CA-signed: each side's chain verifies and names the
 * peer's domain, not its own.  The server was created without a domain: SNI
 * chose b.example's s2s context, which still asked for the client's
 * certificate.  The answers hold after the hand-over, where data flows.
 */
static void test_mutual(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, A, "b.example", NULL, true);
	assert_true(tls_lean(cli.t));
	assert_true(tls_lean(srv.t));
	assert_string_equal(tls_sni_domain(srv.t), "b.example");

	assert_true(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "a.example"));
	assert_true(tls_peer_has_id(srv.t, "A.Example."));
	assert_false(tls_peer_has_id(srv.t, "b.example"));
	assert_false(tls_peer_has_id(srv.t, "x.a.example"));
	assert_null(why(srv.t, "a.example"));
	assert_null(why(srv.t, NULL));
	assert_string_equal(why(srv.t, "b.example"),
			    "no identity for b.example (certificate names: a.example _xmpp-server.a.example)");

	assert_true(tls_peer_chain_ok(cli.t));
	assert_true(tls_peer_has_id(cli.t, "b.example"));
	assert_false(tls_peer_has_id(cli.t, "a.example"));
	assert_null(why(cli.t, "b.example"));
	assert_string_equal(why(cli.t, "a.example"),
			    "no identity for a.example (certificate names: b.example xmpp:b.example)");

	/* A short buffer: cut, terminated, never overrun (ASan). */
	for (size_t cap = 1; cap < 80; cap++) {
		char *small = malloc(cap);
		assert_ptr_equal(tls_peer_why(srv.t, "b.example", small, cap), small);
		assert_int_equal(strlen(small), cap - 1);
		assert_memory_equal(small, "no identity for b.example (certificate names: a.example _xmpp",
				    cap - 1 < 60 ? cap - 1 : 60);
		free(small);
	}
	assert_null(tls_peer_why(srv.t, "b.example", NULL, 0));

	exchange(&cli, &srv);
	assert_true(tls_peer_chain_ok(srv.t) && tls_peer_has_id(srv.t, "a.example"));
	end_free(&cli);
	end_free(&srv);
}

/* A self-signed client certificate: the handshake completes, the chain is
 * not ok ("self-signed"), the name it carries still matches. */
static void test_self_signed_client(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, C, "a.example", "a.example", false);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "c.example"));
	assert_string_equal(why(srv.t, "c.example"), "self-signed");
	assert_string_equal(why(srv.t, NULL), "self-signed");
	assert_true(tls_peer_chain_ok(cli.t));
	assert_true(tls_peer_has_id(cli.t, "a.example"));
	exchange(&cli, &srv);
	end_free(&cli);
	end_free(&srv);
}

/* The same from the client's side: a self-signed server. */
static void test_self_signed_server(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, A, "c.example", "c.example", false);
	assert_false(tls_peer_chain_ok(cli.t));
	assert_true(tls_peer_has_id(cli.t, "c.example"));
	assert_string_equal(why(cli.t, "c.example"), "self-signed");
	assert_string_equal(why(cli.t, "a.example"),
			    "self-signed; no identity for a.example (certificate names: c.example)");
	assert_true(tls_peer_chain_ok(srv.t));
	exchange(&cli, &srv);
	end_free(&cli);
	end_free(&srv);
}

/* A CA that tls.ca_file does not hold, both directions. */
static void test_unknown_issuer(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, D, "d.example", "d.example", true);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_false(tls_peer_chain_ok(cli.t));
	assert_true(tls_peer_has_id(srv.t, "d.example"));
	assert_string_equal(why(srv.t, "d.example"), "issuer not in tls.ca_file");
	assert_string_equal(why(cli.t, "d.example"), "issuer not in tls.ca_file");
	end_free(&cli);
	end_free(&srv);
}

static void test_expired(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, E, "a.example", "a.example", false);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "e.example"));
	assert_string_equal(why(srv.t, "e.example"), "expired");
	end_free(&cli);
	end_free(&srv);
	ours(&cli, &srv, A, "e.example", "e.example", false);
	assert_false(tls_peer_chain_ok(cli.t));
	assert_string_equal(why(cli.t, "e.example"), "expired");
	end_free(&cli);
	end_free(&srv);
}

/*
 * A chain through an intermediate CA: without the intermediate the issuer
 * is unknown; sent, it verifies both ways.  wolfSSL then keeps the verified
 * intermediate in the (shared) store, as a cache: a later chain that omits
 * it verifies too — the intermediate did chain to tls.ca_file.
 */
static void test_intermediate(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, H, "a.example", "a.example", false);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "h.example"));
	assert_string_equal(why(srv.t, "h.example"), "issuer not in tls.ca_file");
	end_free(&cli);
	end_free(&srv);
	ours(&cli, &srv, G, "g.example", "g.example", false);
	assert_true(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_chain_ok(cli.t));
	assert_true(tls_peer_has_id(srv.t, "g.example"));
	assert_true(tls_peer_has_id(cli.t, "g.example"));
	end_free(&cli);
	end_free(&srv);
	ours(&cli, &srv, H, "a.example", "a.example", false);
	assert_true(tls_peer_chain_ok(srv.t));
	end_free(&cli);
	end_free(&srv);
}

/*
 * A chain whose CA is not in tls.ca_file, sent along with the leaf: the
 * verify callback lets the handshake go on, and that must not make the CA
 * trusted — a later leaf it signed, sent alone, still does not verify.
 */
static void test_untrusted_ca_sent(void **state)
{
	struct end cli, srv;

	(void)state;
	for (int k = 0; k < 2; k++) {
		ours(&cli, &srv, X, "x.example", "x.example", false);
		assert_false(tls_peer_chain_ok(srv.t));
		assert_string_equal(why(srv.t, "x.example"), "issuer not in tls.ca_file");
		assert_string_equal(why(cli.t, "x.example"), "issuer not in tls.ca_file");
		assert_false(tls_peer_chain_ok(cli.t));
		end_free(&cli);
		end_free(&srv);
		ours(&cli, &srv, Y, "y.example", "y.example", false);
		assert_false(tls_peer_chain_ok(srv.t));
		assert_false(tls_peer_chain_ok(cli.t));
		assert_string_equal(why(srv.t, "y.example"), "issuer not in tls.ca_file");
		end_free(&cli);
		end_free(&srv);
	}
}

/* A certificate with no subjectAltName: its subject CN counts (RFC 6125
 * §6.4.4). */
static void test_cn_only(void **state)
{
	struct end cli, srv;

	(void)state;
	ours(&cli, &srv, F, "a.example", "a.example", false);
	assert_true(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "f.example"));
	assert_string_equal(why(srv.t, "a.example"),
			    "no identity for a.example (certificate names: CN=f.example)");
	end_free(&cli);
	end_free(&srv);
}

/* Before completion nothing is proved; a c2s session is not an s2s one. */
static void test_not_yet(void **state)
{
	struct end cli, srv;
	struct tls *c2s;

	(void)state;
	ends_link(&cli, &srv);
	cli.t = tls_client_new_s2s("a.example", "b.example", false, &cli.io);
	srv.t = tls_new_s2s("b.example", &srv.io);
	end_step(&cli);
	end_step(&srv);
	assert_false(srv.done);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_false(tls_peer_has_id(srv.t, "a.example"));
	assert_string_equal(why(srv.t, "a.example"), "handshake not complete");
	end_free(&cli);
	end_free(&srv);

	c2s = tls_new("a.example", &srv.io);
	assert_non_null(c2s);
	assert_false(tls_peer_chain_ok(c2s));
	assert_false(tls_peer_has_id(c2s, "a.example"));
	assert_string_equal(why(c2s, "a.example"), "not a server-to-server session");
	tls_free(c2s);

	/* Only served domains originate s2s streams; a peer name is needed. */
	assert_null(tls_client_new_s2s("z.example", "b.example", false, &cli.io));
	assert_null(tls_client_new_s2s("a.example", NULL, false, &cli.io));
}

/* wolfSSL's own client: version, certificate (domain or none), ALPN. */
static WOLFSSL *w_client(struct end *e, int version, int domain, const char *alpn)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(version == 12 ? wolfTLSv1_2_client_method() :
							wolfTLSv1_3_client_method());
	WOLFSSL *w;

	assert_non_null(ctx);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(ctx, w_recv);
	wolfSSL_CTX_SetIOSend(ctx, w_send);
	if (domain >= 0) {
		assert_int_equal(wolfSSL_CTX_use_certificate_chain_file(ctx, cfg.domains[domain].cert), 1);
		assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(ctx, cfg.domains[domain].key,
								  WOLFSSL_FILETYPE_PEM), 1);
	}
	w = wolfSSL_new(ctx);
	wolfSSL_CTX_free(ctx);   /* the session keeps a reference */
	assert_non_null(w);
	wolfSSL_SetIOReadCtx(w, e);
	wolfSSL_SetIOWriteCtx(w, e);
	if (alpn)
		assert_int_equal(wolfSSL_UseALPN(w, (char *)alpn, (unsigned)strlen(alpn),
						 WOLFSSL_ALPN_FAILED_ON_MISMATCH), 1);
	return w;
}

/* A peer that withholds its certificate is still served: "no certificate". */
static void test_no_client_cert(void **state)
{
	struct end cli, srv;

	(void)state;
	ends_link(&cli, &srv);
	cli.w = w_client(&cli, 13, -1, NULL);
	srv.t = tls_new_s2s("a.example", &srv.io);
	run(&cli, &srv);
	assert_true(cli.done && srv.done);
	assert_true(tls_lean(srv.t));
	assert_false(tls_peer_chain_ok(srv.t));
	assert_false(tls_peer_has_id(srv.t, "a.example"));
	assert_string_equal(why(srv.t, "a.example"), "no certificate");
	end_free(&cli);
	end_free(&srv);
}

/* XEP-0368: the s2s server takes ALPN xmpp-server (a c2s server does not:
 * it speaks xmpp-client only, and goes on without ALPN). */
static void test_alpn_server(void **state)
{
	struct end cli, srv;
	char *proto = NULL;
	unsigned short len = 0;

	(void)state;
	ends_link(&cli, &srv);
	cli.w = w_client(&cli, 13, B, "xmpp-server");
	srv.t = tls_new_s2s("a.example", &srv.io);
	run(&cli, &srv);
	assert_true(cli.done && srv.done);
	assert_int_equal(wolfSSL_ALPN_GetProtocol(cli.w, &proto, &len), WOLFSSL_SUCCESS);
	assert_int_equal(len, 11);
	assert_memory_equal(proto, "xmpp-server", 11);
	assert_true(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "b.example"));
	end_free(&cli);
	end_free(&srv);

	ends_link(&cli, &srv);
	cli.w = w_client(&cli, 13, B, "xmpp-server");
	srv.t = tls_new("a.example", &srv.io);
	run(&cli, &srv);
	assert_true(cli.done && srv.done);   /* without ALPN: the c2s side does not speak it */
	assert_int_not_equal(wolfSSL_ALPN_GetProtocol(cli.w, &proto, &len), WOLFSSL_SUCCESS);
	end_free(&cli);
	end_free(&srv);
}

/* wolfSSL's own server, which requires and verifies a client certificate:
 * our client presents its domain's, sends SNI, and ALPN only over Direct TLS. */
static void test_alpn_client(void **state)
{
	for (int direct = 0; direct <= 1; direct++) {
		WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
		struct end cli, srv;
		char *proto = NULL, *sni = NULL;
		unsigned short len = 0;

		(void)state;
		assert_non_null(ctx);
		assert_int_equal(wolfSSL_CTX_use_certificate_chain_file(ctx, cfg.domains[B].cert), 1);
		assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(ctx, cfg.domains[B].key, WOLFSSL_FILETYPE_PEM), 1);
		assert_int_equal(wolfSSL_CTX_load_verify_locations(ctx, cfg.tls_ca_file, NULL), 1);
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		wolfSSL_CTX_SetIORecv(ctx, w_recv);
		wolfSSL_CTX_SetIOSend(ctx, w_send);
		ends_link(&cli, &srv);
		srv.w = wolfSSL_new(ctx);
		wolfSSL_CTX_free(ctx);
		assert_non_null(srv.w);
		wolfSSL_SetIOReadCtx(srv.w, &srv);
		wolfSSL_SetIOWriteCtx(srv.w, &srv);
		assert_int_equal(wolfSSL_UseSNI(srv.w, WOLFSSL_SNI_HOST_NAME, "b.example", 9), 1);
		assert_int_equal(wolfSSL_UseALPN(srv.w, (char *)"xmpp-server", 11,
						 WOLFSSL_ALPN_CONTINUE_ON_MISMATCH), 1);
		cli.t = tls_client_new_s2s("a.example", "b.example", direct, &cli.io);
		assert_non_null(cli.t);
		run(&cli, &srv);
		assert_true(cli.done && srv.done);
		assert_int_equal(wolfSSL_SNI_GetRequest(srv.w, WOLFSSL_SNI_HOST_NAME, (void **)&sni), 9);
		assert_memory_equal(sni, "b.example", 9);
		if (direct) {
			assert_int_equal(wolfSSL_ALPN_GetProtocol(srv.w, &proto, &len), WOLFSSL_SUCCESS);
			assert_int_equal(len, 11);
			assert_memory_equal(proto, "xmpp-server", 11);
		} else {
			assert_int_not_equal(wolfSSL_ALPN_GetProtocol(srv.w, &proto, &len), WOLFSSL_SUCCESS);
		}
		assert_true(tls_peer_chain_ok(cli.t));
		assert_true(tls_peer_has_id(cli.t, "b.example"));
		end_free(&cli);
		end_free(&srv);
	}
}

/* TLS 1.2: the session stays with wolfSSL; the same answers. */
static void test_tls12(void **state)
{
	struct end cli, srv;

	(void)state;
	ends_link(&cli, &srv);
	cli.w = w_client(&cli, 12, A, NULL);
	srv.t = tls_new_s2s("b.example", &srv.io);
	run(&cli, &srv);
	assert_true(cli.done && srv.done);
	assert_false(tls_lean(srv.t));
	assert_true(tls_peer_chain_ok(srv.t));
	assert_true(tls_peer_has_id(srv.t, "a.example"));
	assert_false(tls_peer_has_id(srv.t, "b.example"));
	end_free(&cli);
	end_free(&srv);

	ends_link(&cli, &srv);
	cli.w = w_client(&cli, 12, C, NULL);
	srv.t = tls_new_s2s("b.example", &srv.io);
	run(&cli, &srv);
	assert_true(cli.done && srv.done);
	assert_false(tls_peer_chain_ok(srv.t));
	assert_string_equal(why(srv.t, "c.example"), "self-signed");
	end_free(&cli);
	end_free(&srv);
}

/* ---- certificates ----------------------------------------------------------- */

static const char script[] =
	"set -e; cd %s; exec 2>openssl.log\n"
	"K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
	"cat > ext.cnf <<'EOF'\n"
	"[req]\n"
	"distinguished_name = dn\n"
	"[dn]\n"
	"[a]\n"
	"subjectAltName = DNS:a.example, otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.a.example\n"
	"[b]\n"
	"subjectAltName = DNS:b.example, otherName:1.3.6.1.5.5.7.8.5;UTF8:b.example\n"
	"[c]\n"
	"subjectAltName = DNS:c.example\n"
	"[d]\n"
	"subjectAltName = DNS:d.example\n"
	"[e]\n"
	"subjectAltName = DNS:e.example\n"
	"[f]\n"
	"basicConstraints = CA:FALSE\n"
	"[g]\n"
	"subjectAltName = DNS:g.example\n"
	"[h]\n"
	"subjectAltName = DNS:h.example\n"
	"[x]\n"
	"subjectAltName = DNS:x.example\n"
	"[y]\n"
	"subjectAltName = DNS:y.example\n"
	"[int]\n"
	"basicConstraints = critical, CA:TRUE\n"
	"keyUsage = critical, keyCertSign, cRLSign\n"
	"[ca]\n"
	"default_ca = tca\n"
	"[tca]\n"
	"database = index.txt\n"
	"serial = serial\n"
	"new_certs_dir = .\n"
	"certificate = ca.pem\n"
	"private_key = ca.key\n"
	"default_md = sha256\n"
	"policy = any\n"
	"[any]\n"
	"commonName = supplied\n"
	"EOF\n"
	"ca() { openssl req -x509 $K -days 30 -subj \"/CN=$1\" -keyout $2.key -out $2.pem "
	"-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }\n"
	"leaf() { openssl req -new $K -subj /CN=$1.example -keyout $1.key -out $1.csr\n"
	"  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days $3 "
	"-extfile ext.cnf -extensions $1 -out $1.pem; }\n"
	"ca 'xedge test CA' ca; ca 'another CA' ca2\n"
	"leaf a ca 30; leaf b ca 30; leaf d ca2 30; leaf f ca 30\n"
	"openssl req -new $K -subj '/CN=xedge intermediate' -keyout int.key -out int.csr\n"
	"openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 "
	"-extfile ext.cnf -extensions int -out int.pem\n"
	"leaf g int 30; leaf h int 30; cat int.pem >> g.pem\n"
	"ca 'self-made CA' evil; leaf x evil 30; leaf y evil 30; cat evil.pem >> x.pem\n"
	"touch index.txt; echo 01 > serial\n"   /* expired: valid for a day in 2020 */
	"openssl req -new $K -subj /CN=e.example -keyout e.key -out e.csr\n"
	"openssl ca -batch -notext -config ext.cnf -extensions e -startdate 20200101000000Z "
	"-enddate 20200102000000Z -in e.csr -out e.pem\n"
	"openssl req -x509 $K -days 30 -subj /CN=c.example -config ext.cnf -extensions c "
	"-keyout c.key -out c.pem\n";

static int setup(void **state)
{
	char cmd[4096];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), script, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls_s2s: openssl could not make the certificates (%s/openssl.log)\n", dir);
		return -1;
	}
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 0; i < NDOM; i++) {
		snprintf(paths[2 * i], sizeof(paths[0]), "%s/%c.pem", dir, names[i][0]);
		snprintf(paths[2 * i + 1], sizeof(paths[0]), "%s/%c.key", dir, names[i][0]);
		cfg.domains[i] = (struct config_domain){ .name = (char *)names[i], .cert = paths[2 * i],
							 .key = paths[2 * i + 1] };
	}
	cfg.ndomains = NDOM;
	snprintf(paths[2 * NDOM], sizeof(paths[0]), "%s/ca.pem", dir);
	cfg.tls_ca_file = paths[2 * NDOM];
	if (tls_init(&cfg) < 0 || tls_init_s2s(&cfg) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	tls_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_self_signed_client),
		cmocka_unit_test(test_self_signed_server),
		cmocka_unit_test(test_unknown_issuer),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_intermediate),
		cmocka_unit_test(test_untrusted_ca_sent),
		cmocka_unit_test(test_cn_only),
		cmocka_unit_test(test_not_yet),
		cmocka_unit_test(test_no_client_cert),
		cmocka_unit_test(test_alpn_server),
		cmocka_unit_test(test_alpn_client),
		cmocka_unit_test(test_tls12),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
