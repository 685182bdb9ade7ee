/*
 * crypto — the few primitives xedge needs, all from wolfCrypt (we write no
 * crypto): hashes, HMAC, PBKDF2, base64, random bytes, and the SCRAM key
 * derivation built on them (RFC 5802 §3).
 *
 * Hash ids: CRYPTO_SHA1 (20-byte output) and CRYPTO_SHA256 (32-byte output).
 * All functions return 0 on success and -1 on failure unless said otherwise.
 * Thread-safe: no shared state except the per-thread RNG (crypto_random).
 */
#ifndef XEDGE_CRYPTO_H
#define XEDGE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

enum crypto_hash { CRYPTO_SHA1 = 1, CRYPTO_SHA256 = 2 };

#define CRYPTO_MAX_DIGEST 32

size_t crypto_digest_len(int hash);                  /* 20 or 32; 0 if unknown */
int crypto_hash(int hash, const void *in, size_t n, uint8_t *out);
int crypto_hmac(int hash, const void *key, size_t klen, const void *in, size_t n, uint8_t *out);
int crypto_pbkdf2(int hash, const void *pass, size_t plen, const uint8_t *salt, size_t slen,
		  uint32_t iter, uint8_t *out, size_t outlen);
int crypto_random(void *out, size_t n);

/* Constant-time comparison: 1 when equal. */
int crypto_equal(const void *a, const void *b, size_t n);

/* Base64 (RFC 4648, with padding, no line breaks).  Return the output
 * length, or -1 (bad input for decode, or cap too small). */
long crypto_b64_encode(const void *in, size_t n, char *out, size_t cap);
long crypto_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/*
 * SCRAM keys from a password (RFC 5802): SaltedPassword = PBKDF2(pass, salt,
 * iter); StoredKey = H(HMAC(SaltedPassword, "Client Key")); ServerKey =
 * HMAC(SaltedPassword, "Server Key").  Outputs are crypto_digest_len(hash).
 */
int crypto_scram_keys(int hash, const char *pass, size_t plen, const uint8_t *salt, size_t slen,
		      uint32_t iter, uint8_t *stored_key, uint8_t *server_key);

#endif
