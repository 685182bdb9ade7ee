/*
 * tls — see tls.h.  wolfSSL is driven entirely through memory: the read
 * callback serves bytes from tls_io.in, the write callback hands records to
 * tls_io.out.  Nothing here blocks or touches a descriptor.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/kdf.h>

#include "tls/tls.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "tls/record.h"

/* Ciphers in preference order: ChaCha20 first, it is 2.4x faster than
 * AES-GCM in Debian's wolfSSL build (no AES-NI, DESIGN §3). */
#define TLS_CIPHERS \
	"TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

static const char alpn_xmpp[] = "xmpp-client";

struct tls_domain {
	const char *name;
	WOLFSSL_CTX *ctx;
};

static struct tls_domain domains[CONFIG_MAX_DOMAINS];
static size_t ndomains;

/* A session: wolfSSL during the handshake (and for good with TLS 1.2), our
 * record layer after a TLS 1.3 handshake (see record.h). */
_Static_assert(TLS_READ_CAP >= REC_INNER_MAX, "tls_read's buffer must hold a record");

struct tls {
	WOLFSSL *ssl;            /* NULL once handed over */
	struct tls_io *io;
	const char *domain;      /* server: the domain whose certificate was used */
	uint8_t hdr[5];          /* the record header being handed to wolfSSL */
	uint8_t hdr_have;
	uint16_t rec_left;       /* body bytes of that record still to hand over */
	struct tls13 r;          /* rd/wr.secret collect the traffic secrets meanwhile */
};

/* The session whose wolfSSL call is running on this thread, for on_expand. */
static _Thread_local struct tls *tls_cur;

/*
 * wolfSSL's reads.  We hand over at most one record at a time, so that when
 * the handshake completes wolfSSL holds no byte beyond the peer's Finished
 * record: what follows belongs to our record layer.  Every call with input
 * pending returns at least one byte, so nothing is ever withheld.
 */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls *t = ctx;
	struct tls_io *io = t->io;
	size_t n = io->in_len < (size_t)sz ? io->in_len : (size_t)sz;

	(void)ssl;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (t->hdr_have < sizeof(t->hdr)) {
		if (n > sizeof(t->hdr) - t->hdr_have)
			n = sizeof(t->hdr) - t->hdr_have;
		memcpy(t->hdr + t->hdr_have, io->in, n);
		t->hdr_have = (uint8_t)(t->hdr_have + n);
		if (t->hdr_have == sizeof(t->hdr)) {
			t->rec_left = (uint16_t)(t->hdr[3] << 8 | t->hdr[4]);
			if (!t->rec_left)
				t->hdr_have = 0;
		}
	} else {
		if (n > t->rec_left)
			n = t->rec_left;
		t->rec_left = (uint16_t)(t->rec_left - n);
		if (!t->rec_left)
			t->hdr_have = 0;
	}
	memcpy(buf, io->in, n);
	io->in += n;
	io->in_len -= n;
	return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls *t = ctx;

	(void)ssl;
	if (t->io->out(t->io->owner, (const uint8_t *)buf, (size_t)sz) < 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return sz;
}

/*
 * wolfSSL derives every TLS 1.3 key through this callback (HAVE_PK_CALLBACKS
 * in Debian's build).  The secret a "key" is expanded from is that side's
 * traffic secret; the last ones of the handshake are the application
 * traffic secrets, which the hand-over needs (and checks against the keys
 * wolfSSL ends up with).
 */
static int on_expand(byte *okm, word32 okm_len, const byte *prk, word32 prk_len, const byte *proto,
		     word32 proto_len, const byte *label, word32 label_len, const byte *info,
		     word32 info_len, int digest, int side)
{
	struct tls *t = tls_cur;

	if (t && label_len == 3 && memcmp(label, "key", 3) == 0 && prk_len <= sizeof(t->r.rd.secret)) {
		/* rd is the peer's side: the client's secret on a server. */
		struct rec_dir *d = (side == WOLFSSL_CLIENT_END) == !t->r.client ? &t->r.rd : &t->r.wr;
		memcpy(d->secret, prk, prk_len);
		t->r.hash_len = (uint8_t)prk_len;
	}
	return wc_Tls13_HKDF_Expand_Label(okm, okm_len, prk, prk_len, proto, proto_len, label,
					  label_len, info, info_len, digest);
}

/*
 * After a TLS 1.3 handshake: move to our record layer and free the WOLFSSL.
 * Done only when every fact checks out (the suite is one we implement, the
 * keys we derive equal wolfSSL's, no byte is left inside wolfSSL); otherwise
 * the session simply stays with wolfSSL.
 */
static void handover(struct tls *t)
{
	WOLFSSL *ssl = t->ssl;
	struct tls13 *r = &t->r;
	struct rec_dir *cl = r->client ? &r->wr : &r->rd, *sv = r->client ? &r->rd : &r->wr;
	int bulk = wolfSSL_GetBulkCipher(ssl), key_len = wolfSSL_GetKeySize(ssl);
	word64 rseq, wseq;

	if (wolfSSL_version(ssl) != TLS1_3_VERSION || wolfSSL_GetIVSize(ssl) != 12 ||
	    t->hdr_have || wolfSSL_has_pending(ssl) || !(r->hash_len == 32 || r->hash_len == 48))
		return;
	if (bulk == wolfssl_chacha && key_len == 32)
		r->cipher = REC_CHACHA20_POLY1305;
	else if (bulk == wolfssl_aes_gcm && (key_len == 16 || key_len == 32))
		r->cipher = REC_AES_GCM;
	else
		return;
	r->key_len = (uint8_t)key_len;
	if (rec_derive(r, cl) < 0 || rec_derive(r, sv) < 0 ||
	    memcmp(cl->key, wolfSSL_GetClientWriteKey(ssl), r->key_len) != 0 ||
	    memcmp(sv->key, wolfSSL_GetServerWriteKey(ssl), r->key_len) != 0 ||
	    memcmp(cl->iv, wolfSSL_GetClientWriteIV(ssl), 12) != 0 ||
	    memcmp(sv->iv, wolfSSL_GetServerWriteIV(ssl), 12) != 0) {
		log_warn("tls: TLS 1.3 keys do not match wolfSSL's; the session stays with wolfSSL",
			 "cipher=%s", wolfSSL_get_cipher_name(ssl));
		r->cipher = 0;
		return;
	}
	wolfSSL_GetPeerSequenceNumber(ssl, &rseq);
	wolfSSL_GetSequenceNumber(ssl, &wseq);
	r->rd.seq = rseq;
	r->wr.seq = wseq;
	wolfSSL_free(ssl);
	t->ssl = NULL;
}

static const char *domain_of(const WOLFSSL_CTX *ctx)
{
	for (size_t i = 0; i < ndomains; i++)
		if (domains[i].ctx == ctx)
			return domains[i].name;
	return NULL;
}

static WOLFSSL_CTX *ctx_for(const char *name)
{
	for (size_t i = 0; i < ndomains; i++)
		if (name && strcasecmp(domains[i].name, name) == 0)
			return domains[i].ctx;
	return NULL;
}

/* SNI: switch to the named domain's certificate when we serve it; otherwise
 * keep the default and let the stream header's 'to' decide (host-unknown). */
static int on_sni(WOLFSSL *ssl, int *ret, void *arg)
{
	const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
	WOLFSSL_CTX *ctx = ctx_for(name);

	if (ctx && ctx != wolfSSL_get_SSL_CTX(ssl))
		wolfSSL_set_SSL_CTX(ssl, ctx);
	return 0; /* SSL_TLSEXT_ERR_OK */
}

static WOLFSSL_CTX *ctx_new(const struct config_domain *d)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());

	if (!ctx)
		return NULL;
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot set protocol versions or ciphers", "domain=%s", d->name);
		goto fail;
	}
	if (wolfSSL_CTX_use_certificate_chain_file(ctx, d->cert) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot load certificate (PEM chain expected)", "domain=%s file=%s",
			  d->name, d->cert);
		goto fail;
	}
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, d->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot load private key or it does not match the certificate",
			  "domain=%s file=%s", d->name, d->key);
		goto fail;
	}
	wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	wolfSSL_CTX_SetHKDFExpandLabelCb(ctx, on_expand);
	wolfSSL_CTX_set_servername_callback(ctx, on_sni);
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

int tls_init(const struct config *cfg)
{
	wolfSSL_Init();
	for (size_t i = 0; i < cfg->ndomains; i++) {
		const struct config_domain *d = &cfg->domains[i];
		if (!d->cert || !d->key) {
			log_error("tls: domain has no certificate: add 'cert' and 'key' to it in the config",
				  "domain=%s", d->name);
			tls_shutdown();
			return -1;
		}
		domains[i].name = d->name;
		domains[i].ctx = ctx_new(d);
		if (!domains[i].ctx) {
			tls_shutdown();
			return -1;
		}
		ndomains = i + 1;
	}
	return 0;
}

void tls_shutdown(void)
{
	for (size_t i = 0; i < ndomains; i++)
		wolfSSL_CTX_free(domains[i].ctx);
	ndomains = 0;
	wolfSSL_Cleanup();
}

void tls_thread_exit(void)
{
	wc_ecc_fp_free();
}

/* A session object around a fresh WOLFSSL; NULL on failure. */
static struct tls *session(WOLFSSL_CTX *ctx, struct tls_io *io, bool client)
{
	struct tls *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ssl = wolfSSL_new(ctx);
	if (!t->ssl) {
		free(t);
		return NULL;
	}
	t->io = io;
	t->r.client = client;
	wolfSSL_SetIOReadCtx(t->ssl, t);
	wolfSSL_SetIOWriteCtx(t->ssl, t);
	return t;
}

struct tls *tls_new(const char *domain, struct tls_io *io)
{
	WOLFSSL_CTX *ctx = ctx_for(domain);
	struct tls *t;

	if (!ctx) {
		if (!ndomains)
			return NULL;
		ctx = domains[0].ctx;
	}
	t = session(ctx, io, false);
	/* XEP-0368: accept ALPN xmpp-client; clients without ALPN are fine too. */
	if (t)
		wolfSSL_UseALPN(t->ssl, (char *)alpn_xmpp, sizeof(alpn_xmpp) - 1,
				WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
	return t;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		wolfSSL_free(t->ssl);
	rec_clear(&t->r);
	free(t);
}

bool tls_lean(const struct tls *t)
{
	return t->ssl == NULL;
}

/* Run one handshake step (wolfSSL_accept or wolfSSL_connect). */
static int handshake_step(struct tls *t, int (*step)(WOLFSSL *))
{
	int r;

	if (!t->ssl)
		return TLS_OK;
	tls_cur = t;
	r = step(t->ssl);
	tls_cur = NULL;
	if (r == WOLFSSL_SUCCESS) {
		if (!t->r.client)
			t->domain = domain_of(wolfSSL_get_SSL_CTX(t->ssl));
		handover(t);
		return TLS_OK;
	}
	r = wolfSSL_get_error(t->ssl, r);
	if (r == WOLFSSL_ERROR_WANT_READ || r == WOLFSSL_ERROR_WANT_WRITE)
		return TLS_WANT;
	return TLS_ERROR;
}

int tls_handshake(struct tls *t)
{
	return handshake_step(t, wolfSSL_accept);
}

size_t tls_read(struct tls *t, uint8_t *out, size_t cap, int *res)
{
	int r;

	if (!t->ssl)
		return rec_read(&t->r, t->io, out, res);
	r = wolfSSL_read(t->ssl, out, (int)cap);
	if (r > 0) {
		*res = TLS_OK;
		return (size_t)r;
	}
	r = wolfSSL_get_error(t->ssl, r);
	if (r == WOLFSSL_ERROR_WANT_READ || r == WOLFSSL_ERROR_WANT_WRITE)
		*res = TLS_WANT;
	else if (r == WOLFSSL_ERROR_ZERO_RETURN)
		*res = TLS_CLOSED;
	else
		*res = TLS_ERROR;
	return 0;
}

int tls_write(struct tls *t, const uint8_t *data, size_t len)
{
	if (!t->ssl)
		return rec_write(&t->r, t->io, data, len);
	while (len) {
		int chunk = len > 16384 ? 16384 : (int)len;
		int r = wolfSSL_write(t->ssl, data, chunk);
		if (r <= 0)
			return -1;
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

void tls_close_notify(struct tls *t)
{
	if (t->ssl)
		(void)wolfSSL_shutdown(t->ssl);
	else
		rec_alert(&t->r, t->io, 0);
}

const char *tls_error_str(struct tls *t, char *buf, size_t len)
{
	if (!t->ssl) {
		snprintf(buf, len, "%s", t->r.err ? t->r.err : "no error");
		return buf;
	}
	wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(t->ssl, 0), buf, len);
	return buf;
}

const char *tls_sni_domain(const struct tls *t)
{
	return t->domain;
}

/* ---- client side ------------------------------------------------------ */

static WOLFSSL_CTX *client_ctx;
static pthread_once_t client_once = PTHREAD_ONCE_INIT;

static void client_ctx_init(void)
{
	/* X25519 first: the cheapest key exchange in Debian's build; P-256 for
	 * servers without it (one HelloRetryRequest). */
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1 };
	WOLFSSL_CTX *ctx;

	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!ctx)
		return;
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot set client protocol versions or ciphers", "side=%s", "client");
		wolfSSL_CTX_free(ctx);
		return;
	}
	(void)wolfSSL_CTX_set_groups(ctx, groups, 2);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	wolfSSL_CTX_SetHKDFExpandLabelCb(ctx, on_expand);
	client_ctx = ctx;
}

struct tls *tls_client_new(const char *sni, int alpn, struct tls_io *io)
{
	struct tls *t;

	pthread_once(&client_once, client_ctx_init);
	if (!client_ctx)
		return NULL;
	t = session(client_ctx, io, true);
	if (!t)
		return NULL;
	if ((sni && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) !=
			    WOLFSSL_SUCCESS) ||
	    (alpn && wolfSSL_UseALPN(t->ssl, (char *)alpn_xmpp, sizeof(alpn_xmpp) - 1,
				     WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)) {
		tls_free(t);
		return NULL;
	}
	return t;
}

int tls_connect(struct tls *t)
{
	return handshake_step(t, wolfSSL_connect);
}

void tls_client_shutdown(void)
{
	if (client_ctx) {
		wolfSSL_CTX_free(client_ctx);
		client_ctx = NULL;
		wolfSSL_Cleanup();
	}
}
