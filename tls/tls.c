/*
 * tls — see tls.h.  wolfSSL is driven entirely through memory: the read
 * callback serves bytes from tls_io.in, the write callback hands records to
 * tls_io.out.  Nothing here blocks or touches a descriptor.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "tls/tls.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

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

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_io *io = ctx;
	size_t n;

	if (io->in_len == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	n = io->in_len < (size_t)sz ? io->in_len : (size_t)sz;
	memcpy(buf, io->in, n);
	io->in += n;
	io->in_len -= n;
	return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_io *io = ctx;

	if (io->out(io->owner, (const uint8_t *)buf, (size_t)sz) < 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return sz;
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

WOLFSSL *tls_new(const char *domain, struct tls_io *io)
{
	WOLFSSL_CTX *ctx = ctx_for(domain);
	WOLFSSL *ssl;

	if (!ctx) {
		if (!ndomains)
			return NULL;
		ctx = domains[0].ctx;
	}
	ssl = wolfSSL_new(ctx);
	if (!ssl)
		return NULL;
	wolfSSL_SSLSetIORecv(ssl, io_recv);
	wolfSSL_SSLSetIOSend(ssl, io_send);
	wolfSSL_SetIOReadCtx(ssl, io);
	wolfSSL_SetIOWriteCtx(ssl, io);
	/* XEP-0368: accept ALPN xmpp-client; clients without ALPN are fine too. */
	wolfSSL_UseALPN(ssl, (char *)alpn_xmpp, sizeof(alpn_xmpp) - 1,
			WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
	return ssl;
}

void tls_free(WOLFSSL *ssl)
{
	if (ssl)
		wolfSSL_free(ssl);
}

int tls_handshake(WOLFSSL *ssl)
{
	int r = wolfSSL_accept(ssl);

	if (r == WOLFSSL_SUCCESS)
		return TLS_OK;
	r = wolfSSL_get_error(ssl, r);
	if (r == WOLFSSL_ERROR_WANT_READ || r == WOLFSSL_ERROR_WANT_WRITE)
		return TLS_WANT;
	return TLS_ERROR;
}

size_t tls_read(WOLFSSL *ssl, uint8_t *out, size_t cap, int *res)
{
	int r = wolfSSL_read(ssl, out, (int)cap);

	if (r > 0) {
		*res = TLS_OK;
		return (size_t)r;
	}
	r = wolfSSL_get_error(ssl, r);
	if (r == WOLFSSL_ERROR_WANT_READ || r == WOLFSSL_ERROR_WANT_WRITE)
		*res = TLS_WANT;
	else if (r == WOLFSSL_ERROR_ZERO_RETURN)
		*res = TLS_CLOSED;
	else
		*res = TLS_ERROR;
	return 0;
}

int tls_write(WOLFSSL *ssl, const uint8_t *data, size_t len)
{
	while (len) {
		int chunk = len > 16384 ? 16384 : (int)len;
		int r = wolfSSL_write(ssl, data, chunk);
		if (r <= 0)
			return -1;
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

void tls_close_notify(WOLFSSL *ssl)
{
	(void)wolfSSL_shutdown(ssl);
}

const char *tls_error_str(WOLFSSL *ssl, char *buf, size_t len)
{
	int e = wolfSSL_get_error(ssl, 0);

	wolfSSL_ERR_error_string_n((unsigned long)e, buf, len);
	return buf;
}

const char *tls_sni_domain(WOLFSSL *ssl)
{
	WOLFSSL_CTX *ctx = wolfSSL_get_SSL_CTX(ssl);

	for (size_t i = 0; i < ndomains; i++)
		if (domains[i].ctx == ctx)
			return domains[i].name;
	return NULL;
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
	client_ctx = ctx;
}

WOLFSSL *tls_client_new(const char *sni, int alpn, struct tls_io *io)
{
	WOLFSSL *ssl;

	pthread_once(&client_once, client_ctx_init);
	if (!client_ctx)
		return NULL;
	ssl = wolfSSL_new(client_ctx);
	if (!ssl)
		return NULL;
	wolfSSL_SetIOReadCtx(ssl, io);
	wolfSSL_SetIOWriteCtx(ssl, io);
	if ((sni && wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) !=
			    WOLFSSL_SUCCESS) ||
	    (alpn && wolfSSL_UseALPN(ssl, (char *)alpn_xmpp, sizeof(alpn_xmpp) - 1,
				     WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)) {
		wolfSSL_free(ssl);
		return NULL;
	}
	return ssl;
}

int tls_connect(WOLFSSL *ssl)
{
	int r = wolfSSL_connect(ssl);

	if (r == WOLFSSL_SUCCESS)
		return TLS_OK;
	r = wolfSSL_get_error(ssl, r);
	if (r == WOLFSSL_ERROR_WANT_READ || r == WOLFSSL_ERROR_WANT_WRITE)
		return TLS_WANT;
	return TLS_ERROR;
}

void tls_client_shutdown(void)
{
	if (client_ctx) {
		wolfSSL_CTX_free(client_ctx);
		client_ctx = NULL;
		wolfSSL_Cleanup();
	}
}
