/*
 * scram_client — see scram_client.h.  Message grammar (RFC 5802 §7):
 *   client-first  = "n,," "n=" saslname ",r=" c-nonce
 *   server-first  = ["m=" ext ","] "r=" nonce ",s=" salt ",i=" count ["," ext]
 *   client-final  = "c=biws,r=" nonce ",p=" proof        ("biws" = base64("n,,"))
 *   server-final  = "e=" error / "v=" verifier ["," ext]
 * A mandatory extension (m=) is refused: we implement none.
 */
#include "bench/scram_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const errs[] = {
	"ok", "bad-argument", "malformed-server-message", "nonce-mismatch", "crypto-failure",
	"server-signature-mismatch", "server-error"
};

const char *scram_error_str(int err)
{
	return err <= 0 && err >= SCRAM_E_SERVER_ERROR ? errs[-err] : "?";
}

int scram_client_first(struct scram_client *s, int hash, const char *user, const char *nonce,
		       char *out, size_t cap)
{
	size_t n = 0, nl = strlen(nonce);

	if (!crypto_digest_len(hash) || nl == 0 || nl > SCRAM_NONCE_MAX)
		return SCRAM_E_ARG;
	for (size_t i = 0; i < nl; i++)
		if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',')
			return SCRAM_E_ARG;
	memset(s, 0, sizeof(*s));
	s->hash = hash;
	n = (size_t)snprintf(s->first_bare, sizeof(s->first_bare), "n=");
	for (const char *p = user; *p; p++) {
		const char *esc = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
		size_t el = esc ? 3 : 1;
		if (n + el >= sizeof(s->first_bare))
			return SCRAM_E_ARG;
		memcpy(s->first_bare + n, esc ? esc : p, el);
		n += el;
	}
	if (n + 3 + nl >= sizeof(s->first_bare))
		return SCRAM_E_ARG;
	n += (size_t)snprintf(s->first_bare + n, sizeof(s->first_bare) - n, ",r=%s", nonce);
	s->first_bare_len = n;
	if (n + 3 >= cap)
		return SCRAM_E_ARG;
	memcpy(out, "n,,", 3);
	memcpy(out + 3, s->first_bare, n);
	return (int)(n + 3);
}

/* The value of attribute `key` at the start of sf[*pos..len), up to the next
 * ',' or the end; advances *pos past it (and the comma). */
static int take_attr(const char *sf, size_t len, size_t *pos, char key, const char **v,
		     size_t *vl)
{
	size_t p = *pos, e;

	if (p + 2 > len || sf[p] != key || sf[p + 1] != '=')
		return -1;
	for (e = p + 2; e < len && sf[e] != ','; e++)
		;
	*v = sf + p + 2;
	*vl = e - p - 2;
	*pos = e < len ? e + 1 : e;
	return 0;
}

/* Nonce of the server-first message, filled by parse_first for final(). */
static int parse(struct scram_client *s, const char *sf, size_t len, const char **nonce,
		 size_t *nonce_len)
{
	const char *v, *cn;
	size_t vl, pos = 0, cnl;
	char num[12];
	long b;
	unsigned long it;
	char *end;

	if (len == 0 || len > SCRAM_MAX_MSG || memchr(sf, '\0', len))
		return SCRAM_E_FORMAT;
	if (take_attr(sf, len, &pos, 'r', nonce, nonce_len) < 0 || *nonce_len == 0)
		return SCRAM_E_FORMAT;
	/* Our nonce is the tail of first_bare after ",r=". */
	cn = strstr(s->first_bare, ",r=");
	if (!cn)
		return SCRAM_E_ARG;
	cn += 3;
	cnl = strlen(cn);
	if (*nonce_len <= cnl || memcmp(*nonce, cn, cnl) != 0)
		return SCRAM_E_NONCE;
	if (take_attr(sf, len, &pos, 's', &v, &vl) < 0 || vl == 0)
		return SCRAM_E_FORMAT;
	b = crypto_b64_decode(v, vl, s->salt, sizeof(s->salt));
	if (b <= 0)
		return SCRAM_E_FORMAT;
	s->salt_len = (size_t)b;
	if (take_attr(sf, len, &pos, 'i', &v, &vl) < 0 || vl == 0 || vl >= sizeof(num))
		return SCRAM_E_FORMAT;
	memcpy(num, v, vl);
	num[vl] = '\0';
	it = strtoul(num, &end, 10);
	if (*end || num[0] < '1' || num[0] > '9' || it > 10000000ul)
		return SCRAM_E_FORMAT;
	s->iter = (uint32_t)it;
	return SCRAM_OK;
}

int scram_client_parse_first(struct scram_client *s, const char *sf, size_t len)
{
	const char *nonce;
	size_t nl;

	return parse(s, sf, len, &nonce, &nl);
}

int scram_client_final(struct scram_client *s, const char *password, const char *sf,
		       size_t len, const struct scram_keys *keys_known,
		       struct scram_keys *keys_out, char *out, size_t cap)
{
	size_t dl = crypto_digest_len(s->hash), n, am_len;
	uint8_t salted[CRYPTO_MAX_DIGEST], stored[CRYPTO_MAX_DIGEST], sig[CRYPTO_MAX_DIGEST];
	struct scram_keys k;
	char am[3 * SCRAM_MAX_MSG + 8];
	const char *nonce;
	size_t nl;
	long b;
	int r = parse(s, sf, len, &nonce, &nl);

	if (r < 0)
		return r;
	if (!dl)
		return SCRAM_E_ARG;
	if (keys_known) {
		k = *keys_known;
	} else if (crypto_pbkdf2(s->hash, password, strlen(password), s->salt, s->salt_len, s->iter,
				 salted, dl) < 0 ||
		   crypto_hmac(s->hash, salted, dl, "Client Key", 10, k.client_key) < 0 ||
		   crypto_hmac(s->hash, salted, dl, "Server Key", 10, k.server_key) < 0) {
		explicit_bzero(salted, sizeof(salted));
		return SCRAM_E_CRYPTO;
	}
	explicit_bzero(salted, sizeof(salted));
	/* client-final-message-without-proof */
	n = (size_t)snprintf(out, cap, "c=biws,r=%.*s", (int)nl, nonce);
	if (n >= cap)
		return SCRAM_E_ARG;
	am_len = (size_t)snprintf(am, sizeof(am), "%s,%.*s,%.*s", s->first_bare, (int)len, sf,
				  (int)n, out);
	if (am_len >= sizeof(am))
		return SCRAM_E_ARG;
	if (crypto_hash(s->hash, k.client_key, dl, stored) < 0 ||
	    crypto_hmac(s->hash, stored, dl, am, am_len, sig) < 0)
		return SCRAM_E_CRYPTO;
	for (size_t i = 0; i < dl; i++)
		sig[i] ^= k.client_key[i];           /* ClientProof */
	if (n + 3 >= cap)
		return SCRAM_E_ARG;
	memcpy(out + n, ",p=", 3);
	n += 3;
	b = crypto_b64_encode(sig, dl, out + n, cap - n);
	if (b < 0 || n + (size_t)b >= cap)
		return SCRAM_E_ARG;
	n += (size_t)b;
	if (crypto_hmac(s->hash, k.server_key, dl, am, am_len, s->server_sig) < 0)
		return SCRAM_E_CRYPTO;
	if (keys_out)
		*keys_out = k;
	explicit_bzero(&k, sizeof(k));
	return (int)n;
}

int scram_client_verify(const struct scram_client *s, const char *sfin, size_t len)
{
	size_t dl = crypto_digest_len(s->hash), pos = 0, vl;
	uint8_t v[CRYPTO_MAX_DIGEST + 4];
	const char *val;
	long b;

	if (len > SCRAM_MAX_MSG || !dl)
		return SCRAM_E_FORMAT;
	if (len >= 2 && sfin[0] == 'e' && sfin[1] == '=')
		return SCRAM_E_SERVER_ERROR;
	if (take_attr(sfin, len, &pos, 'v', &val, &vl) < 0)
		return SCRAM_E_FORMAT;
	b = crypto_b64_decode(val, vl, v, sizeof(v));
	if (b != (long)dl)
		return SCRAM_E_FORMAT;
	return crypto_equal(v, s->server_sig, dl) ? SCRAM_OK : SCRAM_E_SERVER_SIG;
}
