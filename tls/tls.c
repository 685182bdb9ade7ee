/*
 * tls — see tls.h.  wolfSSL is driven entirely through memory: the read
 * callback serves bytes from tls_io.in, the write callback hands records to
 * tls_io.out.  Nothing here blocks or touches a descriptor.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/kdf.h>

#include "tls/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "tls/certname.h"
#include "tls/record.h"

/* Ciphers in preference order: ChaCha20 first, it is 2.4x faster than
 * AES-GCM in Debian's wolfSSL build (no AES-NI, DESIGN §3). */
#define TLS_CIPHERS \
	"TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

static const char alpn_xmpp[] = "xmpp-client";
static const char alpn_s2s[] = "xmpp-server";

/* A served domain's contexts: c2s, and with tls_init_s2s the s2s server
 * side (asks for the peer's certificate) and client side (presents ours). */
struct tls_domain {
	const char *name;
	WOLFSSL_CTX *ctx;
	WOLFSSL_CTX *s2s;
	WOLFSSL_CTX *s2s_client;
};

/*
 * The contexts of every served domain.  tls_init makes the first table;
 * tls_reload builds a whole new one and publishes it with one pointer store
 * (release; readers on the workers load it with acquire), so a handshake
 * starts on the old contexts or the new ones, never a mix.  A replaced table
 * is retired: once every worker has moved past the reload (tls_reclaim) our
 * references to its contexts are dropped, and sessions made from them keep
 * theirs (wolfSSL counts a context's references from its sessions).  The
 * retired table itself stays until exit, so domain_of and ctx_is_s2s still
 * recognise a context a handshake began on (its pointer is only compared):
 * a reload costs 32 bytes per domain until exit.
 */
struct tls_table {
	struct tls_table *older;   /* the table this one replaced */
	uint64_t gen;              /* the configuration generation it was made for */
	bool reclaimed;            /* our references to its contexts are dropped */
	size_t n;
	struct tls_domain d[];
};

static struct tls_table *table;

static struct tls_table *table_new(size_t n)
{
	struct tls_table *t = calloc(1, sizeof(*t) + n * sizeof(t->d[0]));

	return t;
}

static struct tls_table *tab(void)
{
	return __atomic_load_n(&table, __ATOMIC_ACQUIRE);
}

/* tls.ca_file, parsed once: every context that verifies a peer shares this
 * store (a reference each) instead of loading its own copy. */
static WOLFSSL_X509_STORE *ca_store;
static WOLFSSL_CTX *verify_ctx;   /* upstream_tls: clients that verify (tls.ca_file) */
static WOLFSSL_CTX *client_ctx_new(VerifyCallback verify, const struct config_domain *d);
static int on_verify(int ok, WOLFSSL_X509_STORE_CTX *store);

/* A session: wolfSSL during the handshake (and for good with TLS 1.2), our
 * record layer after a TLS 1.3 handshake (see record.h). */
_Static_assert(TLS_READ_CAP >= REC_INNER_MAX, "tls_read's buffer must hold a record");

/* What a server's first hello selected: it decides what a change_cipher_spec
 * record from the client means (see io_recv). */
enum tls_hello {
	HELLO_NONE = 0,  /* nothing sent yet: the first ClientHello is incomplete */
	HELLO_TLS12,     /* a TLS 1.2 ServerHello: wolfSSL handles CCS itself */
	HELLO_HRR,       /* a TLS 1.3 HelloRetryRequest: still no keys */
	HELLO_TLS13,     /* a TLS 1.3 ServerHello: handshake keys from here on */
	HELLO_OTHER,     /* something else went first (an alert) */
};

/*
 * What a server-to-server session learnt of its peer's certificate: the
 * verify callback's findings during the handshake, the leaf's identities
 * (certname records) at its completion.  Kept for the session's life: after
 * a TLS 1.3 hand-over the WOLFSSL, and the certificate with it, are gone.
 */
struct tls_peer {
	int16_t verr;            /* the first verification error (X509_V_ERR_* or wolfSSL's) */
	uint8_t vdepth;          /* its place in the chain (0: the peer's own certificate) */
	uint8_t flags;           /* PEER_* */
	uint16_t ids_len;        /* bytes of ids */
	uint8_t ids[];           /* certname_extract records */
};

enum {
	PEER_CERT = 1,           /* the peer presented a certificate */
	PEER_LEAF_OK = 2,        /* wolfSSL verified it, up to tls.ca_file */
	PEER_FAILED = 4,         /* a check of the chain failed (verr, vdepth) */
	PEER_SELF = 8,           /* the leaf is self-issued */
	PEER_UNREADABLE = 16,    /* certname could not read the leaf */
	PEER_NOMEM = 32,         /* its identities could not be kept */
};

struct tls {
	WOLFSSL *ssl;            /* NULL once handed over */
	struct tls_io *io;
	const char *domain;      /* server: the domain whose certificate was used */
	const char *why;         /* a handshake failure found here rather than by wolfSSL */
	struct tls_peer *peer;   /* server-to-server sessions only, else NULL */
	uint8_t hdr[5];          /* the header of the record being handed to wolfSSL */
	uint8_t hdr_have;        /* bytes of hdr received (5: the record is under way) */
	uint8_t hdr_given;       /* bytes of hdr handed to wolfSSL */
	uint8_t hello;           /* server: enum tls_hello */
	uint8_t ccs_due;         /* that record is a change_cipher_spec not yet judged */
	uint8_t fake;            /* its body is our byte, not the input's (ccs_filter) */
	uint8_t done;            /* the handshake completed (a session kept by wolfSSL) */
	uint16_t rec_left;       /* body bytes of that record still to hand over */
	struct tls13 r;          /* rd/wr.secret collect the traffic secrets meanwhile */
};

/* The session whose wolfSSL call is running on this thread, for on_expand. */
static _Thread_local struct tls *tls_cur;

/* A fatal handshake error found here while no key is in use yet: our own
 * plaintext alert, and wolfSSL is told the connection is gone (it then
 * sends nothing more). */
static int refuse_plain(struct tls *t, uint8_t desc, const char *why)
{
	const uint8_t alert[7] = { REC_CT_ALERT, 3, 3, 0, 2, 2, desc };

	if (!t->why)   /* once: wolfSSL may ask again */
		(void)t->io->out(t->io->owner, alert, sizeof(alert));
	t->why = why;
	return WOLFSSL_CBIO_ERR_CONN_CLOSE;
}

/*
 * A change_cipher_spec record from a TLS 1.3 client (RFC 8446 §5): one
 * unprotected record of the single byte 1, between the first ClientHello and
 * the client's Finished, is dropped without further processing — any number
 * of them (middlebox compatibility mode, §D.4); any other change_cipher_spec
 * is an unexpected_message.  Debian's wolfSSL 5.5.4 accepts only the first
 * one and answers the others, and any other value or length, with
 * illegal_parameter, and takes one before the ClientHello: so on a server
 * they never reach it.  With the header in t->hdr, returns 1 when the record
 * was dropped (consumed), 0 when it goes on to wolfSSL (a TLS 1.2 CCS; a bad
 * one disguised as a plaintext handshake record, which wolfSSL, holding the
 * handshake keys, answers with unexpected_message), WOLFSSL_CBIO_ERR_WANT_READ
 * when its byte has not arrived, or an error after our own alert.
 */
static int ccs_filter(struct tls *t)
{
	struct tls_io *io = t->io;

	if (t->r.client || t->done || t->hello == HELLO_TLS12 || t->hello == HELLO_OTHER)
		return 0;   /* wolfSSL's business (after the handshake it refuses any CCS) */
	if (t->hello == HELLO_NONE)
		return refuse_plain(t, REC_AL_UNEXPECTED_MESSAGE, "change_cipher_spec before the ClientHello");
	if (t->rec_left == 1 && !io->in_len)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (t->rec_left == 1 && io->in[0] == 1) {
		io->in++;
		io->in_len--;
		t->hdr_have = 0;
		return 1;
	}
	if (t->hello == HELLO_HRR)
		return refuse_plain(t, REC_AL_UNEXPECTED_MESSAGE, "change_cipher_spec other than the single byte 1");
	/* wolfSSL gets a one-byte plaintext handshake record in its place (it
	 * takes an empty one without a word); the rest of the input no longer
	 * matters. */
	t->why = "change_cipher_spec other than the single byte 1";
	memcpy(t->hdr, (const uint8_t[]){ REC_CT_HANDSHAKE, 3, 3, 0, 1 }, sizeof(t->hdr));
	t->rec_left = 1;
	t->fake = 1;
	return 0;
}

/*
 * wolfSSL's reads.  We hand over at most one record at a time, so that when
 * the handshake completes wolfSSL holds no byte beyond the peer's Finished
 * record: what follows belongs to our record layer.  A record header is
 * collected whole in t->hdr before wolfSSL sees it (ccs_filter needs it);
 * otherwise every call with input pending returns at least one byte.
 */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls *t = ctx;
	struct tls_io *io = t->io;
	size_t n;

	(void)ssl;
	for (;;) {
		if (t->hdr_have < sizeof(t->hdr)) {
			n = sizeof(t->hdr) - t->hdr_have;
			if (n > io->in_len)
				n = io->in_len;
			if (!n)
				return WOLFSSL_CBIO_ERR_WANT_READ;
			memcpy(t->hdr + t->hdr_have, io->in, n);
			t->hdr_have = (uint8_t)(t->hdr_have + n);
			io->in += n;
			io->in_len -= n;
			if (t->hdr_have < sizeof(t->hdr))
				return WOLFSSL_CBIO_ERR_WANT_READ;
			t->hdr_given = 0;
			t->rec_left = (uint16_t)(t->hdr[3] << 8 | t->hdr[4]);
			t->ccs_due = t->hdr[0] == REC_CT_CCS;
			t->fake = 0;
		}
		if (t->ccs_due) {
			int r = ccs_filter(t);
			if (r < 0)
				return r;  /* ccs_due stays: the filter runs again */
			t->ccs_due = 0;
			if (r == 1)
				continue;  /* dropped: on to the next record */
		}
		break;
	}
	if (t->hdr_given < sizeof(t->hdr)) {
		n = sizeof(t->hdr) - t->hdr_given;
		if (n > (size_t)sz)
			n = (size_t)sz;
		memcpy(buf, t->hdr + t->hdr_given, n);
		t->hdr_given = (uint8_t)(t->hdr_given + n);
	} else if (t->fake) {
		n = 1;
		buf[0] = 1;
		t->rec_left = 0;
	} else {
		n = t->rec_left;
		if (n > (size_t)sz)
			n = (size_t)sz;
		if (n > io->in_len)
			n = io->in_len;
		if (!n)
			return WOLFSSL_CBIO_ERR_WANT_READ;
		memcpy(buf, io->in, n);
		io->in += n;
		io->in_len -= n;
		t->rec_left = (uint16_t)(t->rec_left - n);
	}
	if (t->hdr_given == sizeof(t->hdr) && !t->rec_left)
		t->hdr_have = 0;
	return (int)n;
}

/* The SHA-256 of "HelloRetryRequest": a ServerHello with this random is a
 * HelloRetryRequest (RFC 8446 §4.1.3). */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

/*
 * A server's hello, from the records wolfSSL writes: until a TLS 1.3
 * ServerHello has gone out, look at the first record of each write (wolfSSL
 * writes a hello in a record and a write of its own).  Sets t->hello, and
 * returns the length of that record when the dummy change_cipher_spec of
 * RFC 8446 §D.4 must follow it, else 0: "the server sends a dummy
 * change_cipher_spec record immediately after its first handshake message"
 * (ServerHello or HelloRetryRequest) when the client's legacy_session_id was
 * not empty — Erlang/OTP's client (tsung) aborts without it.  Debian's
 * wolfSSL echoes the session id but is built without
 * WOLFSSL_TLS13_MIDDLEBOX_COMPAT and has no run-time switch for it, so it
 * never sends that record: we do.  The echo is the client's id (§4.1.3), so
 * reading ours needs no access to the ClientHello.
 */
static size_t server_hello(struct tls *t, const uint8_t *p, size_t len)
{
	size_t end, i, sid, ext_end;
	bool first = t->hello == HELLO_NONE, tls13 = false;

	if (len < 5 + 4 || p[0] != REC_CT_HANDSHAKE || p[5] != 2 /* server_hello */) {
		if (first)
			t->hello = HELLO_OTHER;
		return 0;
	}
	end = 5 + (size_t)(p[3] << 8 | p[4]);
	i = 5 + 4 + 2;                           /* legacy_version, then random */
	if (end > len || i + 32 + 1 > end)
		return 0;
	sid = p[i + 32];
	ext_end = i + 32 + 1 + sid + 2 + 1;      /* cipher_suite, legacy_compression_method */
	if (ext_end + 2 <= end) {
		i = ext_end + 2;
		ext_end = i + (size_t)(p[ext_end] << 8 | p[ext_end + 1]);
		while (ext_end <= end && i + 4 <= ext_end) {
			size_t type = (size_t)(p[i] << 8 | p[i + 1]), elen = (size_t)(p[i + 2] << 8 | p[i + 3]);
			i += 4;
			if (type == 43 /* supported_versions */ && elen == 2 && i + 2 <= ext_end &&
			    p[i] == 3 && p[i + 1] == 4)
				tls13 = true;
			i += elen;
		}
	}
	if (!tls13) {
		if (first)
			t->hello = HELLO_TLS12;
		return 0;
	}
	t->hello = memcmp(p + 11, hrr_random, sizeof(hrr_random)) == 0 ? HELLO_HRR : HELLO_TLS13;
	return first && sid ? end : 0;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	static const uint8_t ccs[6] = { REC_CT_CCS, 3, 3, 0, 1, 1 };
	struct tls *t = ctx;
	const uint8_t *p = (const uint8_t *)buf;
	size_t len = (size_t)sz, hello = 0;

	(void)ssl;
	if (!t->r.client && (t->hello == HELLO_NONE || t->hello == HELLO_HRR))
		hello = server_hello(t, p, len);
	if (hello && (t->io->out(t->io->owner, p, hello) < 0 ||
		      t->io->out(t->io->owner, ccs, sizeof(ccs)) < 0))
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	if (len > hello && t->io->out(t->io->owner, p + hello, len - hello) < 0)
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
 * keys we derive equal wolfSSL's, no byte is left inside wolfSSL, the record
 * size limit is known); otherwise the session simply stays with wolfSSL.
 * The limit: wolfSSL_GetMaxOutputSize is the max_fragment_length negotiated
 * (RFC 6066; 2^14 without one), which binds both directions.
 */
static void handover(struct tls *t)
{
	WOLFSSL *ssl = t->ssl;
	struct tls13 *r = &t->r;
	struct rec_dir *cl = r->client ? &r->wr : &r->rd, *sv = r->client ? &r->rd : &r->wr;
	int bulk = wolfSSL_GetBulkCipher(ssl), key_len = wolfSSL_GetKeySize(ssl);
	int frag = wolfSSL_GetMaxOutputSize(ssl);
	word64 rseq, wseq;

	if (wolfSSL_version(ssl) != TLS1_3_VERSION || wolfSSL_GetIVSize(ssl) != 12 ||
	    t->hdr_have || wolfSSL_has_pending(ssl) || !(r->hash_len == 32 || r->hash_len == 48) ||
	    frag < (int)REC_FRAG_MIN || frag > (int)REC_PLAIN_MAX)
		return;
	r->frag = frag < (int)REC_PLAIN_MAX ? (uint16_t)frag : 0;
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

/* The domain of a server context, in any table (a session may outlive a reload). */
static const char *domain_of(const WOLFSSL_CTX *ctx)
{
	for (const struct tls_table *t = tab(); t; t = t->older)
		for (size_t i = 0; i < t->n; i++)
			if (t->d[i].ctx == ctx || (t->d[i].s2s && t->d[i].s2s == ctx))
				return t->d[i].name;
	return NULL;
}

static struct tls_domain *domain_named(const char *name)
{
	struct tls_table *t = tab();

	for (size_t i = 0; t && i < t->n; i++)
		if (name && strcasecmp(t->d[i].name, name) == 0)
			return &t->d[i];
	return NULL;
}

/* The named domain's server context, c2s or s2s; NULL when not served. */
static WOLFSSL_CTX *ctx_for(const char *name, bool s2s)
{
	struct tls_domain *d = domain_named(name);

	return d ? (s2s ? d->s2s : d->ctx) : NULL;
}

static bool ctx_is_s2s(const WOLFSSL_CTX *ctx)
{
	for (const struct tls_table *t = tab(); t; t = t->older)
		for (size_t i = 0; i < t->n; i++)
			if (t->d[i].s2s && t->d[i].s2s == ctx)
				return true;
	return false;
}

/* SNI: switch to the named domain's certificate when we serve it (among the
 * contexts of the session's kind: an s2s session keeps asking for the
 * peer's certificate); otherwise keep the default and let the stream
 * header's 'to' decide (host-unknown). */
static int on_sni(WOLFSSL *ssl, int *ret, void *arg)
{
	const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
	WOLFSSL_CTX *cur = wolfSSL_get_SSL_CTX(ssl), *ctx = ctx_for(name, ctx_is_s2s(cur));

	if (ctx && ctx != cur)
		wolfSSL_set_SSL_CTX(ssl, ctx);
	return 0; /* SSL_TLSEXT_ERR_OK */
}

/* Give ctx a reference to the shared tls.ca_file store.  0, or -1. */
static int share_ca_store(WOLFSSL_CTX *ctx)
{
	if (wolfSSL_X509_STORE_up_ref(ca_store) != WOLFSSL_SUCCESS)
		return -1;
	wolfSSL_CTX_set_cert_store(ctx, ca_store);   /* the context owns that reference */
	if (wolfSSL_CTX_get_cert_store(ctx) != ca_store) {
		wolfSSL_X509_STORE_free(ca_store);
		return -1;
	}
	return 0;
}

/*
 * A server-to-server session's verify callback (both sides).  wolfSSL calls
 * it for every certificate of the peer's chain, verified or not
 * (WOLFSSL_ALWAYS_VERIFY_CB, WOLFSSL_VERIFY_CB_ALL_CERTS in Debian's
 * build): the first failure is recorded and, since the stream's own policy
 * decides (dialback may still authenticate the peer, RFC 7590 §3.4 / XEP-0220),
 * never fails the handshake.  A verified leaf is recorded as such: that,
 * not the absence of failures, is what tls_peer_chain_ok reports.
 */
static int on_verify_s2s(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct tls *t = tls_cur;
	struct tls_peer *p = t ? t->peer : NULL;

	if (!p)   /* not within a handshake step of ours: wolfSSL's verdict stands */
		return ok;
	if (!ok && !(p->flags & PEER_FAILED)) {
		p->flags |= PEER_FAILED;
		p->verr = (int16_t)(store->error < INT16_MIN ? INT16_MIN :
				    store->error > INT16_MAX ? INT16_MAX : store->error);
		p->vdepth = (uint8_t)(store->error_depth < 0 ? 0 :
				      store->error_depth > 255 ? 255 : store->error_depth);
	} else if (ok && store->error_depth == 0) {
		p->flags |= PEER_LEAF_OK;
	}
	return 1;
}

/* A server context for domain d: c2s, or s2s (asks for the client's
 * certificate without requiring one, verifies it against the shared
 * tls.ca_file store, no session resumption: a resumed session would carry
 * no certificate to check). */
static WOLFSSL_CTX *ctx_new(const struct config_domain *d, bool s2s)
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
		log_error("tls: cannot load the certificate chain: a PEM block does not decode as a "
			  "certificate", "domain=%s file=%s", d->name, d->cert);
		goto fail;
	}
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, d->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot load the private key: its PEM block does not decode as a key",
			  "domain=%s file=%s", d->name, d->key);
		goto fail;
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		log_error("tls: the private key does not belong to the certificate",
			  "domain=%s cert=%s key=%s", d->name, d->cert, d->key);
		goto fail;
	}
	wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!s2s) {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	} else {
		if (ca_store && share_ca_store(ctx) < 0) {
			log_error("tls: cannot share the tls.ca_file store", "domain=%s", d->name);
			goto fail;
		}
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, on_verify_s2s);
		wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
		/* (the TLS 1.3 one returns 0 on success) */
		if (wolfSSL_CTX_NoTicketTLSv12(ctx) != WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_no_ticket_TLSv13(ctx) != 0) {
			log_error("tls: cannot turn session tickets off", "domain=%s", d->name);
			goto fail;
		}
	}
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	wolfSSL_CTX_SetHKDFExpandLabelCb(ctx, on_expand);
	wolfSSL_CTX_set_servername_callback(ctx, on_sni);
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/* The most of a certificate chain or key file read to check it. */
#define TLS_PEM_MAX (1u << 20)

/*
 * Read the PEM file `path` of domain d into *out (NUL-terminated, the
 * caller frees it), or log what is wrong with it (cannot open or read it,
 * too big, no `-----BEGIN <label>` line) and return -1.  `label` ends the
 * BEGIN line looked for: "CERTIFICATE-----", or "PRIVATE KEY-----" (which
 * also ends "EC PRIVATE KEY-----" and "RSA PRIVATE KEY-----").
 */
static int pem_read(const struct config_domain *d, const char *path, const char *label,
		    const char *what, char **out, size_t *len)
{
	char why[PATH_MAX + 160];
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n = 0;
	const char *b;
	bool found = false;

	if (!f) {
		snprintf(why, sizeof(why), "tls: cannot open %s: %s", path, strerror(errno));
		goto bad;
	}
	buf = malloc(TLS_PEM_MAX + 1);
	if (!buf) {
		snprintf(why, sizeof(why), "tls: cannot read %s: out of memory", path);
		goto bad;
	}
	n = fread(buf, 1, TLS_PEM_MAX + 1, f);
	if (ferror(f)) {
		snprintf(why, sizeof(why), "tls: cannot read %s: %s", path, strerror(errno));
		goto bad;
	}
	if (n > TLS_PEM_MAX) {
		snprintf(why, sizeof(why), "tls: %s is larger than %u bytes: not a %s", path, TLS_PEM_MAX,
			 what);
		goto bad;
	}
	buf[n] = 0;
	for (b = strstr(buf, "-----BEGIN "); b && !found; b = strstr(b + 1, "-----BEGIN ")) {
		const char *end = strchr(b + 11, '\n');
		size_t ll = strlen(label), bl = end ? (size_t)(end - b) : strlen(b);
		while (bl && (b[bl - 1] == '\r' || b[bl - 1] == ' '))
			bl--;
		found = bl >= 11 + ll && !memcmp(b + bl - ll, label, ll);
	}
	if (!found) {
		snprintf(why, sizeof(why), "tls: %s is not PEM: no '-----BEGIN ...%s' line (%s expected)",
			 path, label, what);
		goto bad;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
bad:
	log_write(LOG_ERROR, why, "domain=%s", d->name);
	free(buf);
	if (f)
		fclose(f);
	return -1;
}

/*
 * Whether the EC private key in key_pem signs what the certificate's
 * public key verifies: 1 yes, 0 no, -1 the key is not an EC key (the
 * library's own check, which covers RSA, is then what counts).  Debian's
 * wolfSSL_CTX_check_private_key passes an EC key that belongs to another
 * certificate, and every handshake then fails with bad_signature.
 */
static int ec_key_matches(WOLFSSL_X509 *x, const char *key_pem, size_t key_len)
{
	static const char msg[] = "xedge: does this key belong to this certificate?";
	int der_cap = (int)key_len, der_len, pub_len = 0, verified = 0, rc = 0;
	uint8_t *der = malloc((size_t)der_cap), *pub = NULL;
	uint8_t hash[WC_SHA256_DIGEST_SIZE], sig[ECC_MAX_SIG_SIZE];
	word32 idx = 0, sig_len = sizeof(sig);
	ecc_key priv, pubk;
	WC_RNG rng;

	if (!der)
		return 0;
	der_len = wc_KeyPemToDer((const uint8_t *)key_pem, (int)key_len, der, der_cap, NULL);
	if (der_len <= 0 || wc_ecc_init(&priv) != 0) {
		free(der);
		return -1;
	}
	if (wc_EccPrivateKeyDecode(der, &idx, &priv, (word32)der_len) != 0) {
		rc = -1;
		goto out_priv;
	}
	if (wc_ecc_init(&pubk) != 0)
		goto out_priv;
	if (wolfSSL_X509_get_pubkey_buffer(x, NULL, &pub_len) != WOLFSSL_SUCCESS || pub_len <= 0 ||
	    !(pub = malloc((size_t)pub_len)) ||
	    wolfSSL_X509_get_pubkey_buffer(x, pub, &pub_len) != WOLFSSL_SUCCESS)
		goto out_pub;
	idx = 0;
	if (wc_EccPublicKeyDecode(pub, &idx, &pubk, (word32)pub_len) != 0)
		goto out_pub;   /* an EC key with a certificate of another type */
	if (wc_Sha256Hash((const uint8_t *)msg, sizeof(msg) - 1, hash) != 0 || wc_InitRng(&rng) != 0)
		goto out_pub;
	if (wc_ecc_sign_hash(hash, sizeof(hash), sig, &sig_len, &rng, &priv) == 0 &&
	    wc_ecc_verify_hash(sig, sig_len, hash, sizeof(hash), &verified, &pubk) == 0)
		rc = verified == 1;
	wc_FreeRng(&rng);
out_pub:
	free(pub);
	wc_ecc_free(&pubk);
out_priv:
	wc_ecc_free(&priv);
	free(der);
	return rc;
}

/* Check that domain d's certificate and key files can be read and hold
 * PEM, before wolfSSL (whose errors do not say which) loads them: -1
 * after logging what is wrong with which file. */
static int domain_files_check(const struct config_domain *d)
{
	char *pem = NULL;
	size_t len;

	if (pem_read(d, d->cert, "CERTIFICATE-----", "a certificate chain in PEM", &pem, &len) < 0)
		return -1;
	free(pem);
	if (pem_read(d, d->key, "PRIVATE KEY-----", "a private key in PEM", &pem, &len) < 0)
		return -1;
	free(pem);
	return 0;
}

/*
 * Check the pair loaded into ctx for domain d: a key of another
 * certificate is an error (-1, logged naming the domain and both files);
 * an expired or not yet valid certificate, or one that does not name the
 * domain, is a warning only (the operator may be replacing it; clients
 * refuse it meanwhile).
 */
static int domain_pair_check(WOLFSSL_CTX *ctx, const struct config_domain *d)
{
	WOLFSSL_X509 *x = wolfSSL_CTX_get0_certificate(ctx);
	uint8_t ids[CERTNAME_MAX];
	struct certname_info info;
	const uint8_t *der;
	char *pem = NULL;
	size_t len;
	int der_len = 0, n, ok;

	if (!x) {
		log_error("tls: no certificate loaded", "domain=%s cert=%s", d->name, d->cert);
		return -1;
	}
	if (pem_read(d, d->key, "PRIVATE KEY-----", "a private key in PEM", &pem, &len) < 0)
		return -1;
	ok = ec_key_matches(x, pem, len);
	free(pem);
	if (ok == 0) {
		log_error("tls: the private key does not belong to the certificate (its public key "
			  "does not verify what the key signs)", "domain=%s cert=%s key=%s", d->name,
			  d->cert, d->key);
		return -1;
	}
	if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notAfter(x)) < 0)
		log_warn("tls: the certificate has expired: clients will refuse it", "domain=%s cert=%s",
			 d->name, d->cert);
	else if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notBefore(x)) > 0)
		log_warn("tls: the certificate is not valid yet: clients will refuse it",
			 "domain=%s cert=%s", d->name, d->cert);
	der = wolfSSL_X509_get_der(x, &der_len);
	n = der ? certname_extract(der, (size_t)der_len, ids, sizeof(ids), &info) : -1;
	if (n < 0 || !certname_match(ids, (size_t)n, d->name, "xmpp-client"))
		log_warn("tls: the certificate does not name the domain (RFC 6125: no DNS, SRV or "
			 "XmppAddr identity matching it): clients will refuse it", "domain=%s cert=%s",
			 d->name, d->cert);
	return 0;
}

/* Fill t with the c2s contexts of cfg's domains, each checked.  0, or -1
 * (logged) with what was made left in t for table_free. */
static int table_fill(struct tls_table *t, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->ndomains; i++) {
		const struct config_domain *d = &cfg->domains[i];
		if (!d->cert || !d->key) {
			log_error("tls: domain has no certificate: add 'cert' and 'key' to it in the config",
				  "domain=%s", d->name);
			return -1;
		}
		t->d[i].name = d->name;
		t->d[i].ctx = domain_files_check(d) < 0 ? NULL : ctx_new(d, false);
		t->n = i + 1;
		if (!t->d[i].ctx || domain_pair_check(t->d[i].ctx, d) < 0)
			return -1;
	}
	return 0;
}

/* The s2s server and client contexts of t's domains.  0, or -1. */
static int table_fill_s2s(struct tls_table *t, const struct config *cfg)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct config_domain *d = &cfg->domains[i];
		t->d[i].s2s = ctx_new(d, true);
		t->d[i].s2s_client = t->d[i].s2s ? client_ctx_new(on_verify_s2s, d) : NULL;
		if (!t->d[i].s2s_client)
			return -1;
	}
	return 0;
}

/* Free t's contexts (not t). */
static void table_free(struct tls_table *t, bool s2s_only)
{
	for (size_t i = 0; i < t->n; i++) {
		wolfSSL_CTX_free(t->d[i].s2s);
		wolfSSL_CTX_free(t->d[i].s2s_client);
		t->d[i].s2s = t->d[i].s2s_client = NULL;
		if (!s2s_only) {
			wolfSSL_CTX_free(t->d[i].ctx);
			t->d[i].ctx = NULL;
		}
	}
	if (!s2s_only)
		t->n = 0;
}

int tls_init(const struct config *cfg)
{
	wolfSSL_Init();
	table = table_new(cfg->ndomains);
	if (!table || table_fill(table, cfg) < 0) {
		tls_shutdown();
		return -1;
	}
	if (cfg->tls_ca_file) {
		ca_store = wolfSSL_X509_STORE_new();
		/* A fresh store checks CRLs, of which there are none: every chain
		 * would fail with CRL_MISSING.  Revocation is not checked (as with
		 * a context's own store). */
		if (!ca_store ||
		    wolfSSL_X509_STORE_load_locations(ca_store, cfg->tls_ca_file, NULL) != WOLFSSL_SUCCESS ||
		    wolfSSL_CertManagerDisableCRL(ca_store->cm) != WOLFSSL_SUCCESS) {
			log_error("tls: cannot load the CA certificates of tls.ca_file (PEM expected)",
				  "file=%s", cfg->tls_ca_file);
			tls_shutdown();
			return -1;
		}
	}
	if (cfg->upstream_tls) {
		verify_ctx = ca_store ? client_ctx_new(on_verify, NULL) : NULL;
		if (!verify_ctx) {
			log_error("tls: no client context verifying against tls.ca_file", "file=%s",
				  cfg->tls_ca_file ? cfg->tls_ca_file : "(none)");
			tls_shutdown();
			return -1;
		}
	}
	return 0;
}

int tls_init_s2s(const struct config *cfg)
{
	if (table->n && table->d[0].s2s)
		return 0;   /* done already */
	if (!ca_store)
		log_warn("tls: no tls.ca_file: no peer certificate will verify on server-to-server streams",
			 "domains=%zu", table->n);
	if (table_fill_s2s(table, cfg) < 0) {
		table_free(table, true);
		return -1;
	}
	return 0;
}

int tls_reload(const struct config *cfg, bool s2s)
{
	struct tls_table *t = table_new(cfg->ndomains);

	if (!t)
		return -1;
	if (table_fill(t, cfg) < 0 || (s2s && table_fill_s2s(t, cfg) < 0)) {
		table_free(t, false);
		free(t);
		return -1;
	}
	t->gen = cfg->generation;
	t->older = table;   /* only the main thread writes `table` */
	__atomic_store_n(&table, t, __ATOMIC_RELEASE);
	return 0;
}

void tls_reclaim(uint64_t gen)
{
	for (struct tls_table *t = table ? table->older : NULL; t; t = t->older) {
		if (t->reclaimed || t->gen >= gen)
			continue;
		for (size_t i = 0; i < t->n; i++) {
			wolfSSL_CTX_free(t->d[i].ctx);
			wolfSSL_CTX_free(t->d[i].s2s);
			wolfSSL_CTX_free(t->d[i].s2s_client);
		}
		t->reclaimed = true;
	}
}

void tls_shutdown(void)
{
	struct tls_table *t = table, *older;

	for (; t; t = older) {
		older = t->older;
		if (!t->reclaimed)
			table_free(t, false);
		free(t);
	}
	table = NULL;
	if (verify_ctx) {
		wolfSSL_CTX_free(verify_ctx);
		verify_ctx = NULL;
	}
	if (ca_store) {   /* after every context holding a reference */
		wolfSSL_X509_STORE_free(ca_store);
		ca_store = NULL;
	}
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
	WOLFSSL_CTX *ctx = ctx_for(domain, false);
	struct tls *t;

	if (!ctx) {
		struct tls_table *tt = tab();
		if (!tt || !tt->n)
			return NULL;
		ctx = tt->d[0].ctx;
	}
	t = session(ctx, io, false);
	/* XEP-0368: accept ALPN xmpp-client; clients without ALPN are fine too. */
	if (t)
		wolfSSL_UseALPN(t->ssl, (char *)alpn_xmpp, sizeof(alpn_xmpp) - 1,
				WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
	return t;
}

/* A server-to-server session: t with its (empty) peer record.  t is freed
 * on failure. */
static struct tls *s2s_session(struct tls *t)
{
	if (t && !(t->peer = calloc(1, sizeof(*t->peer)))) {
		tls_free(t);
		return NULL;
	}
	return t;
}

struct tls *tls_new_s2s(const char *domain, struct tls_io *io)
{
	WOLFSSL_CTX *ctx = ctx_for(domain, true);
	struct tls *t;

	if (!ctx) {
		struct tls_table *tt = tab();
		if (!tt || !tt->n || !tt->d[0].s2s)
			return NULL;
		ctx = tt->d[0].s2s;
	}
	t = s2s_session(session(ctx, io, false));
	/* XEP-0368: accept ALPN xmpp-server; peers without ALPN are fine too. */
	if (t && wolfSSL_UseALPN(t->ssl, (char *)alpn_s2s, sizeof(alpn_s2s) - 1,
				 WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
		tls_free(t);
		return NULL;
	}
	return t;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		wolfSSL_free(t->ssl);
	rec_clear(&t->r);
	free(t->peer);
	free(t);
}

bool tls_lean(const struct tls *t)
{
	return t->ssl == NULL;
}

/*
 * At the end of a server-to-server handshake, while the WOLFSSL still
 * holds the peer's chain: keep the leaf's identities, and make sure a
 * verification failure wolfSSL recorded without telling the callback counts
 * too.  Costs sizeof(struct tls_peer) + ids_len bytes (malloc's rounding
 * aside) for the session's life; the DER itself is not kept.
 */
static void peer_capture(struct tls *t)
{
	WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(t->ssl);
	struct tls_peer *p = t->peer, *q;
	uint8_t ids[CERTNAME_MAX];
	struct certname_info info;
	const uint8_t *der;
	long vr = wolfSSL_get_verify_result(t->ssl);
	int len, n;

	if (vr != 0 /* X509_V_OK */ && !(p->flags & PEER_FAILED)) {
		p->flags |= PEER_FAILED;
		p->verr = (int16_t)(vr > INT16_MAX ? INT16_MAX : vr < INT16_MIN ? INT16_MIN : vr);
	}
	if (!chain || wolfSSL_get_chain_count(chain) < 1)
		return;
	der = wolfSSL_get_chain_cert(chain, 0);
	len = wolfSSL_get_chain_length(chain, 0);
	if (!der || len <= 0)
		return;
	p->flags |= PEER_CERT;
	n = certname_extract(der, (size_t)len, ids, sizeof(ids), &info);
	if (n < 0) {
		p->flags |= PEER_UNREADABLE;
		return;
	}
	if (info.self_issued)
		p->flags |= PEER_SELF;
	if (info.dropped)
		log_info("tls: peer certificate names not kept (no server name, or beyond CERTNAME_MAX)",
			 "dropped=%u kept_bytes=%d", (unsigned)info.dropped, n);
	if (n == 0)
		return;
	q = realloc(p, sizeof(*p) + (size_t)n);
	if (!q) {
		p->flags |= PEER_NOMEM;
		return;
	}
	memcpy(q->ids, ids, (size_t)n);
	q->ids_len = (uint16_t)n;
	t->peer = q;
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
		t->done = 1;
		if (!t->r.client)
			t->domain = domain_of(wolfSSL_get_SSL_CTX(t->ssl));
		if (t->peer)
			peer_capture(t);
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
	if (t->why && t->ssl) {
		snprintf(buf, len, "%s", t->why);
		return buf;
	}
	if (!t->ssl) {
		snprintf(buf, len, "%s", t->r.err ? t->r.err : "no error");
		return buf;
	}
	wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(t->ssl, 0), buf, len);
	return buf;
}

int tls_error_class(struct tls *t)
{
	int e;

	if (t->why)   /* ours: a certificate refused, or a record refused before wolfSSL saw it */
		return !strncmp(t->why, "certificate", 11) ? TLSF_CERT : TLSF_PROTOCOL;
	if (!t->ssl)
		return TLSF_PROTOCOL;
	e = wolfSSL_get_error(t->ssl, 0);
	if (e == VERSION_ERROR || e == UNSUPPORTED_PROTO_VERSION)
		return TLSF_VERSION;
	if (e == MATCH_SUITE_ERROR)
		return TLSF_CIPHER;
	if (e == FATAL_ERROR)
		return TLSF_ALERT;
	return TLSF_PROTOCOL;
}

const char *tls_sni_domain(const struct tls *t)
{
	return t->domain;
}

/* ---- client side ------------------------------------------------------ */

static WOLFSSL_CTX *client_ctx;
static pthread_once_t client_once = PTHREAD_ONCE_INIT;

/*
 * A verifying client's certificate check failed: say why in the session's
 * error (wolfSSL's own code for it is a generic "verify problem").  Called
 * by wolfSSL during wolfSSL_connect, so tls_cur is the session.
 */
static const char *verify_error_str(int e)
{
	/* X509_V_ERR_* codes (chain problems) are positive, and Debian's
	 * wolfSSL names few of them; its own codes, such as
	 * DOMAIN_NAME_MISMATCH, are negative. */
	switch (e) {
	case 9: return "certificate not yet valid";
	case 10: return "certificate has expired";
	case 18: return "self-signed certificate not in tls.ca_file";
	case 19: return "self-signed certificate in the chain, not in tls.ca_file";
	case 20: return "issuer not found in tls.ca_file";
	case 21: return "no issuer in tls.ca_file signs the certificate";
	}
	return e > 0 ? wolfSSL_X509_verify_cert_error_string(e) : wolfSSL_ERR_reason_error_string((unsigned long)e);
}

static int on_verify(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	static _Thread_local char why[160];
	struct tls *t = tls_cur;

	if (ok || !t)
		return ok;
	snprintf(why, sizeof(why), "certificate verification failed: %s (error %d)",
		 verify_error_str(store->error), store->error);
	t->why = why;
	return 0;
}

/* A client context: TLS 1.2 and 1.3 with the server side's cipher
 * preference; X25519 first, the cheapest key exchange in Debian's build,
 * P-256 for servers without it (one HelloRetryRequest).  With a verify
 * callback the server's certificate is checked against the shared
 * tls.ca_file store (the name per session) and the callback judges;
 * without, nothing is verified.  With d, d's certificate and key are
 * presented when the server asks for one (s2s: the peer may authenticate
 * us with SASL EXTERNAL, XEP-0178).  NULL after logging why. */
static WOLFSSL_CTX *client_ctx_new(VerifyCallback verify, const struct config_domain *d)
{
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1 };
	WOLFSSL_CTX *ctx;

	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!ctx)
		return NULL;
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != WOLFSSL_SUCCESS) {
		log_error("tls: cannot set client protocol versions or ciphers", "side=%s", "client");
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	(void)wolfSSL_CTX_set_groups(ctx, groups, 2);
	if (verify) {
		if (ca_store && share_ca_store(ctx) < 0) {
			log_error("tls: cannot share the tls.ca_file store", "side=%s", "client");
			wolfSSL_CTX_free(ctx);
			return NULL;
		}
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify);
	} else {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	}
	if (d && (wolfSSL_CTX_use_certificate_chain_file(ctx, d->cert) != WOLFSSL_SUCCESS ||
		  wolfSSL_CTX_use_PrivateKey_file(ctx, d->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
		  wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)) {
		log_error("tls: cannot load the domain's certificate and key for s2s client use",
			  "domain=%s cert=%s key=%s", d->name, d->cert, d->key);
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	wolfSSL_CTX_SetHKDFExpandLabelCb(ctx, on_expand);
	return ctx;
}

static void client_ctx_init(void)
{
	client_ctx = client_ctx_new(NULL, NULL);
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

struct tls *tls_client_new_verified(const char *name, struct tls_io *io)
{
	struct tls *t;

	if (!verify_ctx || !name)
		return NULL;
	t = session(verify_ctx, io, true);
	if (!t)
		return NULL;
	if (wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name)) !=
		    WOLFSSL_SUCCESS ||
	    wolfSSL_check_domain_name(t->ssl, name) != WOLFSSL_SUCCESS) {
		tls_free(t);
		return NULL;
	}
	return t;
}

struct tls *tls_client_new_s2s(const char *local_domain, const char *name, bool direct_tls,
				struct tls_io *io)
{
	struct tls_domain *d = domain_named(local_domain);
	struct tls *t;

	if (!d || !d->s2s_client || !name || !*name)
		return NULL;
	t = s2s_session(session(d->s2s_client, io, true));
	if (!t)
		return NULL;
	/* XEP-0368: SNI is the peer's domain; ALPN xmpp-server over Direct TLS. */
	if (wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name)) !=
		    WOLFSSL_SUCCESS ||
	    (direct_tls && wolfSSL_UseALPN(t->ssl, (char *)alpn_s2s, sizeof(alpn_s2s) - 1,
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

/* ---- the peer's certificate (server-to-server) ---------------------------- */

bool tls_peer_chain_ok(const struct tls *t)
{
	const struct tls_peer *p = t->peer;

	return p && t->done && (p->flags & (PEER_CERT | PEER_LEAF_OK | PEER_FAILED)) ==
				       (PEER_CERT | PEER_LEAF_OK);
}

bool tls_peer_has_id(const struct tls *t, const char *domain)
{
	const struct tls_peer *p = t->peer;

	return p && t->done && domain && certname_match(p->ids, p->ids_len, domain, alpn_s2s);
}

/* Why the chain did not verify, from the first error wolfSSL reported:
 * X509_V_ERR_* numbers, or its own (negative) codes. */
static const char *chain_why(const struct tls_peer *p, char *buf, size_t len)
{
	const char *why;

	if (!(p->flags & PEER_FAILED))
		return "not verified";
	switch (p->verr) {
	case 18: /* X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT */
	case ASN_SELF_SIGNED_E:
		return "self-signed";
	case 2:  /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
	case 20: /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
	case 21: /* X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE */
	case ASN_NO_SIGNER_E:
		if (p->vdepth == 0 && (p->flags & PEER_SELF))
			return "self-signed";
		why = ca_store ? "issuer not in tls.ca_file" : "no tls.ca_file to verify against";
		break;
	case 19: /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
		why = "self-signed root not in tls.ca_file";
		break;
	/* Debian's wolfSSL hands its verify callback the date errors as
	 * X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD / _NOT_BEFORE_FIELD (14, 13)
	 * and keeps 10 and 9 for wolfSSL_get_verify_result. */
	case 10: /* X509_V_ERR_CERT_HAS_EXPIRED */
	case 14: /* X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD */
	case ASN_AFTER_DATE_E:
		why = "expired";
		break;
	case 9:  /* X509_V_ERR_CERT_NOT_YET_VALID */
	case 13: /* X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD */
	case ASN_BEFORE_DATE_E:
		why = "not yet valid";
		break;
	case 7: /* X509_V_ERR_CERT_SIGNATURE_FAILURE */
	case ASN_SIG_CONFIRM_E:
		why = "bad signature";
		break;
	case 23: /* X509_V_ERR_CERT_REVOKED */
	case CRL_CERT_REVOKED:
		why = "revoked";
		break;
	default:
		snprintf(buf, len, "verification failed: %s (error %d, chain depth %u)",
			 p->verr > 0 ? wolfSSL_X509_verify_cert_error_string(p->verr) :
				       wolfSSL_ERR_reason_error_string((unsigned long)p->verr),
			 p->verr, (unsigned)p->vdepth);
		return buf;
	}
	if (p->vdepth == 0)
		return why;
	snprintf(buf, len, "%s (chain depth %u)", why, (unsigned)p->vdepth);
	return buf;
}

const char *tls_peer_why(const struct tls *t, const char *domain, char *buf, size_t len)
{
	const struct tls_peer *p = t->peer;
	const char *chain = NULL, *name;
	char tmp[160];
	size_t at = 0, nlen, o;
	int kind, w;

	if (!len)
		return NULL;
	if (!p)
		chain = "not a server-to-server session";
	else if (!t->done)
		chain = "handshake not complete";
	else if (!(p->flags & PEER_CERT))
		chain = "no certificate";
	else if (!tls_peer_chain_ok(t))
		chain = chain_why(p, tmp, sizeof(tmp));
	if (!p || !t->done || !(p->flags & PEER_CERT) || !domain || tls_peer_has_id(t, domain)) {
		if (!chain)
			return NULL;
		snprintf(buf, len, "%s", chain);
		return buf;
	}
	/* No identity for domain: say what the certificate does name. */
	w = snprintf(buf, len, "%s%sno identity for %s (certificate names:", chain ? chain : "",
		     chain ? "; " : "", domain);
	o = w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
	if (p->flags & (PEER_UNREADABLE | PEER_NOMEM))
		name = p->flags & PEER_UNREADABLE ? " unreadable" : " not kept, out of memory";
	else
		name = p->ids_len ? NULL : " none";
	if (name) {
		snprintf(buf + o, len - o, "%s)", name);
		return buf;
	}
	while (o + 1 < len && certname_next(p->ids, p->ids_len, &at, &kind, &name, &nlen)) {
		const char *pre = kind == CERTNAME_XMPP ? "xmpp:" : kind == CERTNAME_CN ? "CN=" : "";
		w = snprintf(buf + o, len - o, " %s%.*s", pre, (int)nlen, name);
		o = w < 0 ? len - 1 : o + (size_t)w < len ? o + (size_t)w : len - 1;
	}
	if (o + 1 < len)
		snprintf(buf + o, len - o, ")");
	return buf;
}
