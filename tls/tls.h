/*
 * tls — wolfSSL server contexts per domain, and TLS sessions driven through
 * our own buffers (custom I/O callbacks; wolfSSL never touches a socket).
 *
 * One WOLFSSL_CTX per configured domain, shared by all workers (wolfSSL's
 * context is safe to share for creating sessions).  TLS 1.2 and 1.3 only,
 * ChaCha20-Poly1305 preferred (no AES-NI in Debian's build), ALPN
 * "xmpp-client" accepted for XEP-0368, SNI selects the domain's certificate.
 * With server-to-server streams (tls_init_s2s) each domain has two more: an
 * s2s server context that asks for the peer's certificate and an s2s client
 * context that presents the domain's own; tls.ca_file is parsed once into a
 * store every verifying context shares (Debian's bundle of 144 CAs: ~0.3 MB
 * with glibc's malloc, ~0.6 MB with jemalloc, once; a copy per context
 * would cost ~320 KB per context).  wolfSSL keeps the intermediate CAs it
 * verified in that store, for later chains that omit them.
 *
 * A session is created lazily — on the first ClientHello byte (Direct TLS)
 * or at <starttls/> — because a WOLFSSL costs ~60 KB (DESIGN §3).  When a
 * TLS 1.3 handshake completes, the session moves to our own record layer
 * (record.h) and the WOLFSSL is freed: an established session keeps ~300
 * bytes, and the max_fragment_length negotiated (RFC 6066) goes with it.
 * TLS 1.2 sessions stay with wolfSSL.
 *
 * Middlebox compatibility (RFC 8446 §D.4): a server whose client sent a
 * legacy_session_id sends the dummy change_cipher_spec right after its first
 * hello (Debian's wolfSSL does not: tls.c inserts it), and the client's own
 * dummy change_cipher_spec records are dropped during the handshake (any
 * other one is an unexpected_message).
 *
 * I/O contract: before calling into wolfSSL for a connection, the owner sets
 * `tls_io.in/in_len` to the ciphertext it received; wolfSSL consumes from it
 * through the read callback (whatever it does not take stays there: the
 * owner checks in_len afterwards).  Ciphertext wolfSSL produces is handed to
 * tls_io.out(owner, bytes, len), which must take all of it or return -1.
 */
#ifndef XEDGE_TLS_H
#define XEDGE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct tls_io {
	const uint8_t *in;     /* ciphertext not yet consumed by wolfSSL */
	size_t in_len;
	int (*out)(void *owner, const uint8_t *data, size_t len);
	void *owner;
};

struct tls;

/* tls_read's out buffer must hold this much (a record's inner plaintext). */
#define TLS_READ_CAP (16384u + 240u)

/* Load every domain's certificate and key, and the CA certificates of
 * cfg->tls_ca_file when set (the peers' certificates are verified against
 * them: upstream_tls, server-to-server).  Each file must open, read and
 * hold PEM, and the key must belong to the certificate (any key type: EC
 * keys are checked by a test signature); a certificate expired, not yet
 * valid, or not naming its domain (RFC 6125) is logged as a warning only.
 * Returns 0, or -1 after logging which domain and file failed and why. */
int tls_init(const struct config *cfg);

/* After tls_init, once, when server-to-server streams are configured: the
 * s2s server and client contexts of every domain (cfg the same as
 * tls_init's).  Returns 0, or -1 after logging why (no s2s context is left
 * then).  Without tls.ca_file no peer's chain ever verifies. */
int tls_init_s2s(const struct config *cfg);
void tls_shutdown(void);

/*
 * SIGHUP: load cfg's certificates and keys again (every check of tls_init)
 * into new contexts, with the s2s ones when s2s, and switch to them for the
 * handshakes that start from now on; sessions made before go on with the
 * contexts they have.  The domains must be those tls_init had (same names,
 * same order).  Main thread only.  0, or -1 (logged) with nothing changed.
 */
int tls_reload(const struct config *cfg, bool s2s);

/* Drop our references to the contexts of tables made for configuration
 * generations before gen: every thread that makes sessions (the workers)
 * has switched to gen or later, so none can pick those contexts any more.
 * Main thread only. */
void tls_reclaim(uint64_t gen);

/* Release the calling thread's wolfSSL caches (the ECC fixed-point cache is
 * per thread); call from every thread that ran handshakes, before it exits. */
void tls_thread_exit(void);

/* A new server session for `domain` (NULL: the first domain; Direct TLS
 * switches by SNI).  io must outlive the session.  NULL on failure. */
struct tls *tls_new(const char *domain, struct tls_io *io);
void tls_free(struct tls *t);

/*
 * A server session for a server-to-server stream (RFC 6120 §5, §13.7.2;
 * Direct TLS: XEP-0368, ALPN "xmpp-server" accepted): like tls_new, and
 * it asks for the peer's certificate, which the peer may withhold; a
 * certificate that does not verify never fails the handshake — the
 * tls_peer_* functions below say what it proved, the stream decides.
 * NULL on failure, or without tls_init_s2s.
 */
struct tls *tls_new_s2s(const char *domain, struct tls_io *io);

/* True once the session runs on our record layer (the WOLFSSL is gone). */
bool tls_lean(const struct tls *t);

enum tls_result { TLS_OK = 0, TLS_WANT = 1, TLS_CLOSED = 2, TLS_ERROR = -1 };

/* Advance the handshake with what is in io.in.  TLS_OK once complete. */
int tls_handshake(struct tls *t);

/* Decrypt into out (cap >= TLS_READ_CAP).  Returns bytes (> 0), or 0 with
 * *res set to TLS_WANT (need more ciphertext; all of io.in was taken),
 * TLS_CLOSED (close_notify) or TLS_ERROR (the fatal alert, if any, is sent). */
size_t tls_read(struct tls *t, uint8_t *out, size_t cap, int *res);

/* Encrypt plaintext; the records go to io.out.  0 or -1. */
int tls_write(struct tls *t, const uint8_t *data, size_t len);

/* Queue a close_notify alert through io.out. */
void tls_close_notify(struct tls *t);

/* The last error as text, for logs. */
const char *tls_error_str(struct tls *t, char *buf, size_t len);

/* Why a handshake failed, for metrics (the causes the edge counts). */
enum tls_fail {
	TLSF_LIMIT = 0,   /* limits.max_tls_handshakes were in progress */
	TLSF_TIMEOUT,     /* timeouts.handshake passed */
	TLSF_CLOSED,      /* the peer closed the connection mid-handshake */
	TLSF_VERSION,     /* no protocol version in common */
	TLSF_CIPHER,      /* no cipher suite in common */
	TLSF_ALERT,       /* the peer sent a fatal alert */
	TLSF_CERT,        /* a verifying client refused the server's certificate */
	TLSF_PROTOCOL,    /* anything else: malformed records, bad MAC, ... */
	TLSF_COUNT
};
/* The TLSF_* of a failed handshake: VERSION, CIPHER, ALERT, CERT (a verifying
 * client's check) or PROTOCOL; never LIMIT, TIMEOUT or CLOSED (the edge's own). */
int tls_error_class(struct tls *t);

/* The domain whose certificate the session selected (SNI), or NULL. */
const char *tls_sni_domain(const struct tls *t);

/*
 * Client side (xedge-bench, and the edge's upstream streams).  One client
 * WOLFSSL_CTX for the process,
 * created on first use (thread-safe): TLS 1.2 and 1.3, the same cipher
 * preference as the server side, X25519 then P-256 key shares, and no
 * certificate verification — the bench measures servers, it does not
 * authenticate them.  Independent of tls_init / tls_shutdown.
 */

/* A new client session with SNI `sni` (NULL: none), offering ALPN
 * "xmpp-client" when alpn is non-zero (XEP-0368 Direct TLS).  The handshake
 * starts with the first tls_connect().  io must outlive the session.  NULL
 * on failure. */
struct tls *tls_client_new(const char *sni, int alpn, struct tls_io *io);

/* A new client session that verifies the server (upstream_tls): its
 * certificate must chain to tls.ca_file (the context exists when
 * cfg->upstream_tls is set) and carry `name`, which is also sent as SNI.
 * A failed check fails the handshake; tls_error_str then starts with
 * "certificate verification failed".  NULL on failure (no such context). */
struct tls *tls_client_new_verified(const char *name, struct tls_io *io);

/*
 * A client session for a server-to-server stream from local_domain (a
 * served domain: its certificate is presented when the peer asks, so the
 * peer can authenticate us with SASL EXTERNAL, XEP-0178 §3) to the server
 * of `name`, the peer's domain, sent as SNI; with direct_tls ALPN offers
 * "xmpp-server" (XEP-0368).  The peer's certificate is verified against
 * tls.ca_file but, as on the server side, a failure does not fail the
 * handshake.  NULL on failure, for a domain not served, or without
 * tls_init_s2s.
 */
struct tls *tls_client_new_s2s(const char *local_domain, const char *name, bool direct_tls,
				struct tls_io *io);

/* Advance the client handshake with what is in io.in (the first call writes
 * the ClientHello through io.out).  TLS_OK once complete, TLS_WANT, or
 * TLS_ERROR (tls_error_str says why).  Free sessions with tls_free. */
int tls_connect(struct tls *t);

/* Free the client context; call after every client session is freed. */
void tls_client_shutdown(void);

/*
 * The peer's certificate on a server-to-server session (tls_new_s2s,
 * tls_client_new_s2s), both sides, once the handshake completed (before:
 * false, and "handshake not complete").  What they read was captured at
 * completion, so they answer the same after the hand-over to the record
 * layer.  A peer is authenticated as a domain (RFC 6120 §13.7.2, XEP-0178
 * §3) when both are true: tls_peer_chain_ok and tls_peer_has_id.  Cost per
 * s2s session: one allocation of a 6-byte header and the identities
 * (certname records: 2 bytes + the name each, at most CERTNAME_MAX; ~40
 * bytes for a DNS-ID and an SRV-ID), the certificate itself is not kept;
 * every session, c2s too, has 8 bytes more for the pointer to it.
 */

/* The peer presented a certificate that chains to tls.ca_file (in date,
 * signatures good). */
bool tls_peer_chain_ok(const struct tls *t);

/* The peer's certificate names `domain` (a JID domainpart) as an XMPP
 * server: DNS-ID, SRV-ID _xmpp-server, XmppAddr, or CN-ID where RFC 6125
 * §6.4.4 allows (tls/certname.h has the rules).  Says nothing of the chain. */
bool tls_peer_has_id(const struct tls *t, const char *domain);

/*
 * For logs: why the peer is not authenticated as `domain` (NULL: why the
 * chain is not ok), written into buf: "no certificate", "self-signed",
 * "issuer not in tls.ca_file", "expired", "not yet valid", ... and/or
 * "no identity for DOMAIN (certificate names: ...)", joined by "; ".
 * Returns buf, or NULL when nothing is wrong.
 */
const char *tls_peer_why(const struct tls *t, const char *domain, char *buf, size_t len);

#endif
