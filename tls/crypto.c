/*
 * crypto — see crypto.h.  Thin wrappers over wolfCrypt (libwolfssl 5.5.4):
 * every primitive is wolfCrypt's; this file only checks arguments, converts
 * sizes to wolfCrypt's word32/int, and wipes intermediate secrets.
 *
 * Two things are not delegated, on purpose:
 *   - base64 decoding is validated here before wolfCrypt sees it, because
 *     Base64_Decode() is lenient (skips whitespace and line breaks, accepts
 *     missing padding and non-zero pad bits).  We accept only the canonical
 *     RFC 4648 form, so one value has one spelling;
 *   - the constant-time comparison is a plain XOR-accumulate loop.
 *
 * Random numbers: one WC_RNG (Hash-DRBG) per thread, created on first use
 * and freed by a pthread key destructor when the thread exits.  A process
 * that fork()s after using crypto_random() must not use it in the child
 * (the DRBG state would be shared); xedge does not fork after start-up.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "tls/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* wolfCrypt takes word32 / int lengths; refuse anything larger rather than
 * truncate.  INT_MAX bounds both. */
#define WC_LEN_MAX ((size_t)INT_MAX)

/* Any non-NULL address for zero-length inputs: some wolfCrypt builds refuse
 * NULL even with length 0. */
static const uint8_t empty[1];

static int wc_type(int hash)
{
	switch (hash) {
	case CRYPTO_SHA1:
		return WC_SHA;
	case CRYPTO_SHA256:
		return WC_SHA256;
	default:
		return -1;
	}
}

size_t crypto_digest_len(int hash)
{
	switch (hash) {
	case CRYPTO_SHA1:
		return WC_SHA_DIGEST_SIZE;
	case CRYPTO_SHA256:
		return WC_SHA256_DIGEST_SIZE;
	default:
		return 0;
	}
}

int crypto_hash(int hash, const void *in, size_t n, uint8_t *out)
{
	const byte *p = n ? in : empty;

	if (out == NULL || (n && in == NULL) || n > WC_LEN_MAX)
		return -1;
	switch (hash) {
	case CRYPTO_SHA1:
		return wc_ShaHash(p, (word32)n, out) == 0 ? 0 : -1;
	case CRYPTO_SHA256:
		return wc_Sha256Hash(p, (word32)n, out) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

int crypto_hmac(int hash, const void *key, size_t klen, const void *in, size_t n, uint8_t *out)
{
	Hmac h;
	int type = wc_type(hash);
	int rc = -1;

	if (type < 0 || out == NULL || (klen && key == NULL) || (n && in == NULL) ||
	    klen > WC_LEN_MAX || n > WC_LEN_MAX)
		return -1;
	if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
		return -1;
	if (wc_HmacSetKey(&h, type, klen ? key : empty, (word32)klen) == 0 &&
	    wc_HmacUpdate(&h, n ? in : empty, (word32)n) == 0 && wc_HmacFinal(&h, out) == 0)
		rc = 0;
	wc_HmacFree(&h);
	/* The context holds the padded key. */
	explicit_bzero(&h, sizeof(h));
	return rc;
}

int crypto_pbkdf2(int hash, const void *pass, size_t plen, const uint8_t *salt, size_t slen,
		  uint32_t iter, uint8_t *out, size_t outlen)
{
	int type = wc_type(hash);

	/* wolfCrypt silently treats 0 iterations as 1; that is a caller bug. */
	if (type < 0 || out == NULL || (plen && pass == NULL) || (slen && salt == NULL) ||
	    iter == 0 || iter > INT_MAX || plen > WC_LEN_MAX || slen > WC_LEN_MAX ||
	    outlen == 0 || outlen > WC_LEN_MAX)
		return -1;
	return wc_PBKDF2(out, plen ? pass : empty, (int)plen, slen ? salt : empty, (int)slen,
			 (int)iter, (int)outlen, type) == 0 ? 0 : -1;
}

/* ---- random ------------------------------------------------------------ */

static _Thread_local WC_RNG rng;
static _Thread_local bool rng_ready;
static pthread_key_t rng_key;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;
static bool rng_key_ok;

static void rng_destroy(void *p)
{
	wc_FreeRng(p);
}

static void rng_key_init(void)
{
	rng_key_ok = pthread_key_create(&rng_key, rng_destroy) == 0;
}

int crypto_random(void *out, size_t n)
{
	uint8_t *p = out;

	if (n && out == NULL)
		return -1;
	if (!rng_ready) {
		pthread_once(&rng_once, rng_key_init);
		if (wc_InitRng(&rng) != 0)
			return -1;
		/* Without the key the RNG lives until exit: a small leak per
		 * thread, not a failure. */
		if (rng_key_ok)
			pthread_setspecific(rng_key, &rng);
		rng_ready = true;
	}
	/* wolfCrypt caps one request at RNG_MAX_BLOCK_LEN. */
	while (n) {
		word32 k = n > 4096 ? 4096 : (word32)n;
		if (wc_RNG_GenerateBlock(&rng, p, k) != 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

int crypto_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* ---- base64 ------------------------------------------------------------ */

long crypto_b64_encode(const void *in, size_t n, char *out, size_t cap)
{
	size_t need;
	word32 olen;

	if (out == NULL || (n && in == NULL) || n > WC_LEN_MAX / 2)
		return -1;
	need = 4 * ((n + 2) / 3);
	if (need > cap)
		return -1;
	if (n) {
		olen = (word32)need;
		if (Base64_Encode_NoNl(in, (word32)n, (byte *)out, &olen) != 0 || olen != need)
			return -1;
	}
	/* Terminate when there is room: callers often print the result. */
	if (need < cap)
		out[need] = '\0';
	return (long)need;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Canonical RFC 4648 base64: length a multiple of 4, alphabet only, '='
 * only as the one or two final characters, and the bits the padding leaves
 * unused must be zero.  Returns the decoded length, or -1.
 */
static long b64_check(const char *in, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pad = 0;

	if (n % 4)
		return -1;
	if (n == 0)
		return 0;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_val(s[i]) < 0)
			return -1;
	if (pad == 2 && (b64_val(s[n - 3]) & 0x0F))
		return -1;
	if (pad == 1 && (b64_val(s[n - 2]) & 0x03))
		return -1;
	return (long)(n / 4 * 3 - pad);
}

long crypto_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	long total;
	size_t done = 0;

	if ((n && in == NULL) || n > WC_LEN_MAX)
		return -1;
	total = b64_check(in, n);
	if (total < 0 || (size_t)total > cap || (total && out == NULL))
		return -1;
	/* Base64_Decode() wants room for 3 bytes per 4-character group even
	 * when the last group is padded, so decode through a bounce buffer in
	 * chunks and copy exactly what the caller asked room for. */
	for (size_t i = 0; i < n; i += 1024) {
		byte tmp[768];
		size_t chunk = n - i > 1024 ? 1024 : n - i;
		word32 olen = sizeof(tmp);

		if (Base64_Decode((const byte *)in + i, (word32)chunk, tmp, &olen) != 0 ||
		    olen > (size_t)total - done) {
			explicit_bzero(tmp, sizeof(tmp));
			return -1;
		}
		memcpy(out + done, tmp, olen);
		done += olen;
		explicit_bzero(tmp, sizeof(tmp));
	}
	return done == (size_t)total ? total : -1;
}

/* ---- SCRAM ------------------------------------------------------------- */

int crypto_scram_keys(int hash, const char *pass, size_t plen, const uint8_t *salt, size_t slen,
		      uint32_t iter, uint8_t *stored_key, uint8_t *server_key)
{
	uint8_t salted[CRYPTO_MAX_DIGEST], client_key[CRYPTO_MAX_DIGEST];
	size_t dlen = crypto_digest_len(hash);
	int rc = -1;

	if (dlen == 0 || stored_key == NULL || server_key == NULL)
		return -1;
	if (crypto_pbkdf2(hash, pass, plen, salt, slen, iter, salted, dlen) == 0 &&
	    crypto_hmac(hash, salted, dlen, "Client Key", 10, client_key) == 0 &&
	    crypto_hash(hash, client_key, dlen, stored_key) == 0 &&
	    crypto_hmac(hash, salted, dlen, "Server Key", 10, server_key) == 0)
		rc = 0;
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(client_key, sizeof(client_key));
	return rc;
}
