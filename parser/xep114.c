/*
 * xep114 — see xep114.h for the contract.
 *
 * Bounded scans of the caller's bytes, nothing allocated: SHA-1 (wolfCrypt)
 * runs incrementally over the stream id and then the secret, so neither is
 * copied and neither has a length limit here.
 */
#include "parser/xep114.h"

#include <stdint.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha.h>

#include "parser/jid.h"
#include "tls/crypto.h"

#define DIGEST_LEN WC_SHA_DIGEST_SIZE

bool xep114_host_is(const char *name, const char *to, size_t n)
{
	size_t len = strlen(name);

	if (n && to[n - 1] == '.')
		n--;
	if (n != len || n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)to[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		if (ch != (unsigned char)name[i])
			return false;
	}
	return true;
}

static int hex_val(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* SHA-1(sid || secret) into out: 0, or -1. */
static int digest(const char *sid, size_t sid_len, const char *secret, size_t secret_len,
		  uint8_t out[DIGEST_LEN])
{
	wc_Sha sha;
	int ok;

	if (sid_len > UINT32_MAX || secret_len > UINT32_MAX || wc_InitSha(&sha) != 0)
		return -1;
	ok = wc_ShaUpdate(&sha, (const byte *)sid, (word32)sid_len) == 0 &&
	     wc_ShaUpdate(&sha, (const byte *)secret, (word32)secret_len) == 0 &&
	     wc_ShaFinal(&sha, out) == 0;
	wc_ShaFree(&sha);
	return ok ? 0 : -1;
}

int xep114_digest_hex(const char *sid, size_t sid_len, const char *secret, size_t secret_len,
		      char out[XEP114_HEX_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	uint8_t d[DIGEST_LEN];

	if (digest(sid, sid_len, secret, secret_len, d) < 0)
		return -1;
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[XEP114_HEX_LEN] = 0;
	return 0;
}

enum xep114_hs xep114_handshake(const char *sid, size_t sid_len, const char *secret,
				size_t secret_len, const char *text, size_t n, unsigned children)
{
	uint8_t got[DIGEST_LEN], want[DIGEST_LEN];

	if (children || n != XEP114_HEX_LEN)
		return XEP114_HS_MALFORMED;
	/* The decoding branches on the peer's own bytes only; the secret
	 * meets them in crypto_equal, which does not branch. */
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = hex_val((unsigned char)text[2 * i]), lo = hex_val((unsigned char)text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return XEP114_HS_MALFORMED;
		got[i] = (uint8_t)(hi << 4 | lo);
	}
	if (digest(sid, sid_len, secret, secret_len, want) < 0)
		return XEP114_HS_MISMATCH;
	return crypto_equal(got, want, DIGEST_LEN) ? XEP114_HS_OK : XEP114_HS_MISMATCH;
}

/* Is the domain d[0..n) (as in a jid_view: no trailing dot) `name` or a
 * subdomain of it, ignoring ASCII case? */
static bool in_domain(const char *name, const char *d, size_t n)
{
	size_t len = strlen(name);

	if (n < len || (n > len && d[n - len - 1] != '.'))
		return false;
	return xep114_host_is(name, d + (n - len), len);
}

enum xep114_addr xep114_addr(const char *name, bool own, bool has, const char *jid, size_t n)
{
	struct jid_view v;

	if (!has || n == 0)
		return XEP114_ADDR_MISSING;
	if (jid_parse(jid, n, &v) < 0)
		return XEP114_ADDR_MALFORMED;
	if (own && !in_domain(name, v.domain, v.domain_len))
		return XEP114_ADDR_FOREIGN;
	return XEP114_ADDR_OK;
}
