/*
 * scram_client — the client side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802,
 * RFC 7677) without channel binding (GS2 header "n,,"), as a pure codec: no
 * I/O, no globals; the caller supplies the client nonce and, optionally, the
 * cached ClientKey/ServerKey pair.  Crypto is tls/crypto.h (wolfCrypt).
 *
 * Sequence:
 *   scram_client_first()   -> client-first-message (send base64 in <auth/>)
 *   scram_client_final()   <- server-first-message, -> client-final-message
 *   scram_client_verify()  <- server-final-message (v=... or e=...)
 *
 * The salted-password derivation (PBKDF2, 4096 iterations: 2–4 ms of CPU in
 * Debian's wolfSSL) dominates a login's client cost.  RFC 5802 §5.1 lets a
 * client cache ClientKey and ServerKey per (salt, iteration count); the
 * caller may pass them in (keys_known) or get them back (keys_out) to do so.
 *
 * All server input is checked: the combined nonce must start with ours,
 * attributes appear in the order the RFC fixes, lengths are bounded by
 * SCRAM_MAX_MSG, and the server signature is compared in constant time.
 */
#ifndef XEDGE_BENCH_SCRAM_CLIENT_H
#define XEDGE_BENCH_SCRAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "tls/crypto.h"

#define SCRAM_MAX_MSG 1024        /* bytes of any SCRAM message handled here */
#define SCRAM_NONCE_MAX 64
#define SCRAM_SALT_MAX 128        /* decoded salt bytes */

enum scram_error {
	SCRAM_OK = 0,
	SCRAM_E_ARG = -1,          /* bad argument or output too small */
	SCRAM_E_FORMAT = -2,       /* server message malformed */
	SCRAM_E_NONCE = -3,        /* server nonce does not extend ours */
	SCRAM_E_CRYPTO = -4,       /* a wolfCrypt primitive failed */
	SCRAM_E_SERVER_SIG = -5,   /* server signature wrong: the server does not know the keys */
	SCRAM_E_SERVER_ERROR = -6  /* server-final carried e=<error> */
};

/* Derived from the password, per (hash, salt, iteration count). */
struct scram_keys {
	uint8_t client_key[CRYPTO_MAX_DIGEST];
	uint8_t server_key[CRYPTO_MAX_DIGEST];
};

struct scram_client {
	int hash;                                  /* CRYPTO_SHA1 or CRYPTO_SHA256 */
	size_t first_bare_len;
	char first_bare[SCRAM_MAX_MSG];            /* client-first-message-bare */
	uint8_t server_sig[CRYPTO_MAX_DIGEST];     /* expected in server-final */
	/* From the server-first-message, for the caller's key cache: */
	uint8_t salt[SCRAM_SALT_MAX];
	size_t salt_len;
	uint32_t iter;
};

/*
 * Start: writes "n,,n=<user>,r=<nonce>" to out (cap bytes) and returns its
 * length, or SCRAM_E_ARG.  user is escaped as RFC 5802 §5.1 requires;
 * nonce must be printable ASCII without ',' (1..SCRAM_NONCE_MAX bytes).
 */
int scram_client_first(struct scram_client *s, int hash, const char *user, const char *nonce,
		       char *out, size_t cap);

/*
 * Parse the server-first-message sf[0..len) (r=,s=,i= plus extensions we
 * ignore), then write the client-final-message "c=biws,r=...,p=..." to out
 * and return its length, or a negative enum scram_error.  When keys_known is
 * non-NULL it is used instead of deriving keys from password (the caller
 * looked it up by s->salt / s->iter: call scram_client_parse_first first);
 * when keys_out is non-NULL the keys used are copied there.
 */
int scram_client_final(struct scram_client *s, const char *password, const char *sf,
		       size_t len, const struct scram_keys *keys_known,
		       struct scram_keys *keys_out, char *out, size_t cap);

/* Only the parsing half of scram_client_final: fills s->salt, s->salt_len
 * and s->iter so the caller can consult its key cache.  0 or negative. */
int scram_client_parse_first(struct scram_client *s, const char *sf, size_t len);

/* Check the server-final-message: SCRAM_OK when v= carries the expected
 * ServerSignature, SCRAM_E_SERVER_ERROR for e=, SCRAM_E_SERVER_SIG or
 * SCRAM_E_FORMAT otherwise. */
int scram_client_verify(const struct scram_client *s, const char *sfin, size_t len);

const char *scram_error_str(int err);

#endif
