/*
 * tls — wolfSSL server contexts per domain, and TLS sessions driven through
 * our own buffers (custom I/O callbacks; wolfSSL never touches a socket).
 *
 * One WOLFSSL_CTX per configured domain, shared by all workers (wolfSSL's
 * context is safe to share for creating sessions).  TLS 1.2 and 1.3 only,
 * ChaCha20-Poly1305 preferred (no AES-NI in Debian's build), ALPN
 * "xmpp-client" accepted for XEP-0368, SNI selects the domain's certificate.
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

/* Load every domain's certificate and key, and with cfg->upstream_tls the
 * CA certificates of cfg->tls_ca_file for verifying clients.  Returns 0,
 * or -1 after logging which domain and file failed and why. */
int tls_init(const struct config *cfg);
void tls_shutdown(void);

/* Release the calling thread's wolfSSL caches (the ECC fixed-point cache is
 * per thread); call from every thread that ran handshakes, before it exits. */
void tls_thread_exit(void);

/* A new server session for `domain` (NULL: the first domain; Direct TLS
 * switches by SNI).  io must outlive the session.  NULL on failure. */
struct tls *tls_new(const char *domain, struct tls_io *io);
void tls_free(struct tls *t);

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
 * certificate must chain to tls.ca_file (loaded by tls_init when
 * cfg->upstream_tls is set) and carry `name`, which is also sent as SNI.
 * A failed check fails the handshake; tls_error_str then starts with
 * "certificate verification failed".  NULL on failure (no such context). */
struct tls *tls_client_new_verified(const char *name, struct tls_io *io);

/* Advance the client handshake with what is in io.in (the first call writes
 * the ClientHello through io.out).  TLS_OK once complete, TLS_WANT, or
 * TLS_ERROR (tls_error_str says why).  Free sessions with tls_free. */
int tls_connect(struct tls *t);

/* Free the client context; call after every client session is freed. */
void tls_client_shutdown(void);

#endif
