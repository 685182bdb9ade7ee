/*
 * test_sasl — core/sasl.c: the RFC 5802 §5 and RFC 7677 §3 examples run
 * through the state machine, PLAIN, and every failure path the header and
 * sasl.c's decisions promise.  Client proofs for non-RFC cases are computed
 * here from tls/crypto (the same primitives a client would use).
 *
 * PLAIN's asynchronous step (SASL_NEED_COMPUTE, sasl_job_take, sasl_job_run,
 * sasl_computed) is driven here the way be_native drives it, with the job
 * run inline instead of on an offload thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sasl.h"
#include "tls/crypto.h"

#define DOMAIN "example.com"

/* ---- helpers ----------------------------------------------------------- */

struct creds {
	struct wire_scram sha1, sha256;
};

static void make_record(struct wire_scram *r, int hash, const char *pass, const char *salt_b64,
			uint32_t iter)
{
	long n;

	memset(r, 0, sizeof(*r));
	n = crypto_b64_decode(salt_b64, strlen(salt_b64), r->salt, sizeof(r->salt));
	assert_true(n > 0);
	r->salt_len = (uint8_t)n;
	r->iter = iter;
	r->key_len = (uint8_t)crypto_digest_len(hash);
	assert_int_equal(crypto_scram_keys(hash, pass, strlen(pass), r->salt, r->salt_len, iter,
					   r->stored_key, r->server_key),
			 0);
}

/* The RFC examples' account: "user" / "pencil" with each RFC's salt. */
static void rfc_creds(struct creds *c)
{
	make_record(&c->sha1, CRYPTO_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096);
	make_record(&c->sha256, CRYPTO_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
}

static int start_str(struct sasl *s, const char *m)
{
	return sasl_start(s, (const uint8_t *)m, strlen(m));
}

static int step_str(struct sasl *s, const char *m)
{
	return sasl_step(s, (const uint8_t *)m, strlen(m));
}

static void assert_out(struct sasl *s, const char *want)
{
	size_t n;
	const uint8_t *p = sasl_out(s, &n);

	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static char *out_str(struct sasl *s)
{
	size_t n;
	const uint8_t *p = sasl_out(s, &n);
	char *r = malloc(n + 1);

	assert_non_null(r);
	memcpy(r, p, n);
	r[n] = '\0';
	return r;
}

/* From server-first "r=...,s=...,i=...": the parts, each malloc'd. */
static void parse_sfirst(const char *sf, char **nonce, char **salt, uint32_t *iter)
{
	const char *s = strstr(sf, ",s="), *i = strstr(sf, ",i=");

	assert_true(strncmp(sf, "r=", 2) == 0 && s && i && i > s);
	*nonce = strndup(sf + 2, (size_t)(s - sf - 2));
	*salt = strndup(s + 3, (size_t)(i - s - 3));
	*iter = (uint32_t)strtoul(i + 3, NULL, 10);
}

/*
 * A client's client-final for password pass: "c=<cb>,r=<nonce>[ext],p=<proof>".
 * cfb is the client-first-bare the client sent; returns a malloc'd string.
 */
static char *client_final(int hash, const char *pass, const char *cfb, const char *sfirst,
			  const char *cb, const char *ext)
{
	char *nonce, *salt_b64, wp[8192], am[16384], pb64[64], *res;
	uint8_t salt[128], salted[32], ckey[32], skey[32], sig[32], proof[32];
	size_t dlen = crypto_digest_len(hash);
	uint32_t iter;
	long slen;

	parse_sfirst(sfirst, &nonce, &salt_b64, &iter);
	slen = crypto_b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	assert_true(slen > 0);
	snprintf(wp, sizeof(wp), "c=%s,r=%s%s", cb, nonce, ext ? ext : "");
	snprintf(am, sizeof(am), "%s,%s,%s", cfb, sfirst, wp);
	assert_int_equal(crypto_pbkdf2(hash, pass, strlen(pass), salt, (size_t)slen, iter, salted,
				       dlen),
			 0);
	assert_int_equal(crypto_hmac(hash, salted, dlen, "Client Key", 10, ckey), 0);
	assert_int_equal(crypto_hash(hash, ckey, dlen, skey), 0);
	assert_int_equal(crypto_hmac(hash, skey, dlen, am, strlen(am), sig), 0);
	for (size_t i = 0; i < dlen; i++)
		proof[i] = ckey[i] ^ sig[i];
	assert_true(crypto_b64_encode(proof, dlen, pb64, sizeof(pb64)) > 0);
	res = malloc(strlen(wp) + 4 + strlen(pb64));
	assert_non_null(res);
	sprintf(res, "%s,p=%s", wp, pb64);
	free(nonce);
	free(salt_b64);
	return res;
}

/* Run client-first through sasl_creds; returns the server-first (malloc'd). */
static char *to_server_first(struct sasl *s, const char *cfirst, const struct creds *c,
			     int status)
{
	assert_int_equal(start_str(s, cfirst), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, status, &c->sha1, &c->sha256), SASL_CHALLENGE);
	return out_str(s);
}

/* A full SCRAM exchange with a computed proof (c= from cfirst's GS2 header)
 * against creds c, or the RFC account when c is NULL; returns the result. */
static int scram_run_c(int mech, const char *cfirst, const char *pass, int status,
		       const struct creds *cr, int *cond)
{
	struct creds c;
	struct sasl *s = sasl_new(mech, DOMAIN, strlen(DOMAIN));
	int hash = mech == SASL_SCRAM_SHA1 ? CRYPTO_SHA1 : CRYPTO_SHA256;
	const char *bare = strchr(strchr(cfirst, ',') + 1, ',') + 1;
	char *sf, *cf, cb[256];
	int r;

	assert_non_null(s);
	assert_true(crypto_b64_encode(cfirst, (size_t)(bare - cfirst), cb, sizeof(cb)) > 0);
	if (cr)
		c = *cr;
	else
		rfc_creds(&c);
	sf = to_server_first(s, cfirst, &c, status);
	cf = client_final(hash, pass, bare, sf, cb, NULL);
	r = step_str(s, cf);
	*cond = sasl_cond(s);
	free(sf);
	free(cf);
	sasl_free(s);
	return r;
}

static int scram_run(int mech, const char *cfirst, const char *pass, int status, int *cond)
{
	return scram_run_c(mech, cfirst, pass, status, NULL, cond);
}

/* ---- RFC examples ------------------------------------------------------ */

static void test_rfc5802_sha1(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA1, DOMAIN, strlen(DOMAIN));

	rfc_creds(&c);
	assert_non_null(s);
	assert_int_equal(start_str(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"), SASL_NEED_CREDS);
	assert_string_equal(sasl_user(s), "user");
	sasl_test_set_server_nonce(s, "3rfcNHYJY1ZVvWVs7j");
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_CHALLENGE);
	assert_out(s, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
	assert_int_equal(step_str(s, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
				     "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
			 SASL_SUCCESS);
	assert_out(s, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	assert_int_equal(sasl_cond(s), SASL_C_NONE);
	/* Terminal: nothing more is accepted. */
	assert_int_equal(step_str(s, "x"), SASL_FAILURE);
	sasl_free(s);
}

static void test_rfc7677_sha256(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));

	rfc_creds(&c);
	assert_non_null(s);
	assert_int_equal(start_str(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), SASL_NEED_CREDS);
	sasl_test_set_server_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_CHALLENGE);
	assert_out(s, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	assert_int_equal(step_str(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			 SASL_SUCCESS);
	assert_out(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	sasl_free(s);
}

/* The helper agrees with the RFC, so the computed-proof tests below mean something. */
static void test_helper_matches_rfc(void **state)
{
	char *cf = client_final(CRYPTO_SHA256, "pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO",
				"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
				"biws", NULL);
	assert_string_equal(cf, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	free(cf);
}

/* ---- SCRAM variants ---------------------------------------------------- */

static void test_scram_random_nonce(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	char *sf, *nonce, *salt;
	uint32_t iter;

	rfc_creds(&c);
	sf = to_server_first(s, "n,,n=user,r=abc", &c, WIRE_OK);
	parse_sfirst(sf, &nonce, &salt, &iter);
	/* client nonce + base64 of 24 random bytes */
	assert_int_equal(strlen(nonce), 3 + 32);
	assert_memory_equal(nonce, "abc", 3);
	assert_string_equal(salt, "W22ZaJ0SNY7soEsUEjb6gQ==");
	assert_int_equal(iter, 4096);
	free(sf);
	free(nonce);
	free(salt);
	sasl_free(s);
}

static void test_scram_success_variants(void **state)
{
	int cond;

	/* SHA-1 and SHA-256 with random nonces */
	assert_int_equal(scram_run(SASL_SCRAM_SHA1, "n,,n=user,r=x1", "pencil", WIRE_OK,
				   &cond),
			 SASL_SUCCESS);
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,,n=user,r=x2", "pencil", WIRE_OK, &cond),
			 SASL_SUCCESS);
	/* 'y' flag: c= must carry "y,," */
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "y,,n=user,r=x3", "pencil", WIRE_OK, &cond),
			 SASL_SUCCESS);
	/* authzid equal to user@domain (case-insensitive) */
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,a=User@Example.COM,n=user,r=x4",
				   "pencil", WIRE_OK, &cond),
			 SASL_SUCCESS);
	/* bare JID as username; uppercase folded */
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,,n=USER@example.com,r=x5", "pencil",
				   WIRE_OK, &cond),
			 SASL_SUCCESS);
	/* an unknown extension after the nonce is ignored */
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,,n=user,r=x6,x=whatever", "pencil",
				   WIRE_OK, &cond),
			 SASL_SUCCESS);
}

static void test_scram_wrong_password(void **state)
{
	int cond;

	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,,n=user,r=x", "pencil2", WIRE_OK,
				   &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	assert_int_equal(scram_run(SASL_SCRAM_SHA1, "n,,n=user,r=x", "Pencil", WIRE_OK,
				   &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
}

static void test_scram_unknown_user(void **state)
{
	struct creds c;
	struct sasl *s1 = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	struct sasl *s2 = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	struct sasl *s3 = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	char *sf1, *sf2, *sf3, *n1, *n2, *n3, *salt1, *salt2, *salt3, *cf;
	uint32_t i1, i2, i3;
	int cond;

	memset(&c, 0, sizeof(c));
	sf1 = to_server_first(s1, "n,,n=ghost,r=a", &c, WIRE_NO_USER);
	sf2 = to_server_first(s2, "n,,n=Ghost,r=b", &c, WIRE_NO_USER);
	sf3 = to_server_first(s3, "n,,n=phantom,r=c", &c, WIRE_NO_USER);
	parse_sfirst(sf1, &n1, &salt1, &i1);
	parse_sfirst(sf2, &n2, &salt2, &i2);
	parse_sfirst(sf3, &n3, &salt3, &i3);
	/* A plausible 16-byte salt, stable per (canonical) name, distinct per name. */
	assert_int_equal(strlen(salt1), 24);
	assert_string_equal(salt1, salt2);
	assert_string_not_equal(salt1, salt3);
	assert_int_equal(i1, 4096);

	/* Even the "right" proof for the fake salt fails, at the very end. */
	cf = client_final(CRYPTO_SHA256, "pencil", "n=ghost,r=a", sf1, "biws", NULL);
	assert_int_equal(step_str(s1, cf), SASL_FAILURE);
	assert_int_equal(sasl_cond(s1), SASL_C_NOT_AUTHORIZED);
	free(cf);

	/* An account without usable keys for this mechanism looks the same. */
	rfc_creds(&c);
	assert_int_equal(scram_run_c(SASL_SCRAM_SHA256, "n,,n=user,r=x", "pencil", WIRE_OK, &c,
				     &cond),
			 SASL_SUCCESS);
	c.sha256.key_len = 0;
	assert_int_equal(scram_run_c(SASL_SCRAM_SHA256, "n,,n=user,r=x", "pencil", WIRE_OK, &c,
				     &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	rfc_creds(&c);
	c.sha1.iter = 0;
	assert_int_equal(scram_run_c(SASL_SCRAM_SHA1, "n,,n=user,r=x", "pencil", WIRE_OK, &c,
				     &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	rfc_creds(&c);
	c.sha1.key_len = 32;   /* a SHA-256-sized key in the SHA-1 slot */
	assert_int_equal(scram_run_c(SASL_SCRAM_SHA1, "n,,n=user,r=x", "pencil", WIRE_OK, &c,
				     &cond),
			 SASL_FAILURE);
	/* NO_USER wins over keys that happen to be present */
	assert_int_equal(scram_run(SASL_SCRAM_SHA256, "n,,n=user,r=x", "pencil", WIRE_NO_USER,
				   &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);

	free(sf1); free(sf2); free(sf3);
	free(n1); free(n2); free(n3);
	free(salt1); free(salt2); free(salt3);
	sasl_free(s1);
	sasl_free(s2);
	sasl_free(s3);
}

static void test_scram_temp_fail(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));

	rfc_creds(&c);
	assert_int_equal(start_str(s, "n,,n=user,r=x"), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, WIRE_TEMP_FAIL, &c.sha1, &c.sha256), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_TEMPORARY_AUTH_FAILURE);
	assert_int_equal(step_str(s, "c=biws"), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_TEMPORARY_AUTH_FAILURE);
	sasl_free(s);
}

/* Feed a client-final to a fresh RFC 7677 exchange; returns the condition. */
static int final_cond(const char *cfinal)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	int cond;

	rfc_creds(&c);
	assert_int_equal(start_str(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), SASL_NEED_CREDS);
	sasl_test_set_server_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_CHALLENGE);
	if (step_str(s, cfinal) == SASL_SUCCESS)
		cond = -1;
	else
		cond = sasl_cond(s);
	sasl_free(s);
	return cond;
}

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static void test_scram_final_errors(void **state)
{
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF), -1);
	/* bad base64 inside c= */
	assert_int_equal(final_cond("c=bi*s,r=" RFC_NONCE ",p=" RFC_PROOF),
			 SASL_C_INCORRECT_ENCODING);
	assert_int_equal(final_cond("c=biw,r=" RFC_NONCE ",p=" RFC_PROOF),
			 SASL_C_INCORRECT_ENCODING);
	assert_int_equal(final_cond("c=bix=,r=" RFC_NONCE ",p=" RFC_PROOF),
			 SASL_C_INCORRECT_ENCODING);   /* non-zero pad bits */
	/* c= decodes but is not our GS2 header ("y,," instead of "n,,") */
	assert_int_equal(final_cond("c=eSws,r=" RFC_NONCE ",p=" RFC_PROOF),
			 SASL_C_NOT_AUTHORIZED);
	/* bad base64 in p=, proof of the wrong length, wrong proof */
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",p=dHzb!apW"),
			 SASL_C_INCORRECT_ENCODING);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",p=dHzb"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE
				    ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			 SASL_C_NOT_AUTHORIZED);
	/* wrong nonce: truncated, extended, changed, client part only */
	assert_int_equal(final_cond("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k,"
				    "p=" RFC_PROOF),
			 SASL_C_NOT_AUTHORIZED);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF),
			 SASL_C_NOT_AUTHORIZED);
	assert_int_equal(final_cond("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
				    "p=" RFC_PROOF),
			 SASL_C_NOT_AUTHORIZED);
	assert_int_equal(final_cond("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" RFC_PROOF),
			 SASL_C_NOT_AUTHORIZED);
	/* syntax */
	assert_int_equal(final_cond("r=" RFC_NONCE ",c=biws,p=" RFC_PROOF),
			 SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",x=y"),
			 SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",,p=" RFC_PROOF),
			 SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=" RFC_NONCE ",m=x,p=" RFC_PROOF),
			 SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond("c=biws,r=,p=" RFC_PROOF), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(final_cond(""), SASL_C_MALFORMED_REQUEST);
	{
		/* a NUL inside */
		struct creds c;
		struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
		static const char m[] = "c=biws\0,r=x,p=" RFC_PROOF;
		rfc_creds(&c);
		free(to_server_first(s, "n,,n=user,r=x", &c, WIRE_OK));
		assert_int_equal(sasl_step(s, (const uint8_t *)m, sizeof(m) - 1), SASL_FAILURE);
		assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
		sasl_free(s);
	}
}

/* An extension before p= is part of AuthMessage and accepted. */
static void test_scram_final_extension(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	char *sf, *cf;

	rfc_creds(&c);
	sf = to_server_first(s, "n,,n=user,r=e", &c, WIRE_OK);
	cf = client_final(CRYPTO_SHA256, "pencil", "n=user,r=e", sf, "biws", ",x=ext=1");
	assert_int_equal(step_str(s, cf), SASL_SUCCESS);
	free(sf);
	free(cf);
	sasl_free(s);
}

static void test_scram_replayed_nonce(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	const char *cf1 = "c=biws,r=" RFC_NONCE ",p=" RFC_PROOF;

	rfc_creds(&c);
	/* Exchange 1 succeeds (fixed nonce)... */
	assert_int_equal(final_cond(cf1), -1);
	/* ...exchange 2 has a fresh server nonce, so its replay fails. */
	assert_int_equal(start_str(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_CHALLENGE);
	assert_int_equal(step_str(s, cf1), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_NOT_AUTHORIZED);
	sasl_free(s);
}

/* Returns the condition sasl_start gives client-first m (0 for NEED_CREDS). */
static int first_cond(int mech, const char *m, size_t n)
{
	struct sasl *s = sasl_new(mech, DOMAIN, strlen(DOMAIN));
	int r, cond;

	assert_non_null(s);
	r = sasl_start(s, (const uint8_t *)m, n);
	cond = r == SASL_NEED_CREDS ? 0 : sasl_cond(s);
	if (r != SASL_NEED_CREDS)
		assert_int_equal(r, SASL_FAILURE);
	sasl_free(s);
	return cond;
}

static int fc(const char *m)
{
	return first_cond(SASL_SCRAM_SHA256, m, strlen(m));
}

static void test_scram_first_errors(void **state)
{
	assert_int_equal(fc("n,,n=user,r=abc"), 0);
	assert_int_equal(fc("y,,n=user,r=abc"), 0);
	/* channel binding requested: refused */
	assert_int_equal(fc("p=tls-unique,,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("p=tls-exporter,a=user@example.com,n=user,r=abc"),
			 SASL_C_MALFORMED_REQUEST);
	/* authzid */
	assert_int_equal(fc("n,a=user@example.com,n=user,r=abc"), 0);
	assert_int_equal(fc("n,a=other@example.com,n=user,r=abc"), SASL_C_INVALID_AUTHZID);
	assert_int_equal(fc("n,a=user@example.org,n=user,r=abc"), SASL_C_INVALID_AUTHZID);
	assert_int_equal(fc("n,a=user,n=user,r=abc"), SASL_C_INVALID_AUTHZID);
	assert_int_equal(fc("n,a=user@example.com/res,n=user,r=abc"), SASL_C_INVALID_AUTHZID);
	assert_int_equal(fc("n,a=,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,a=x=41,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	/* reserved mandatory extension */
	assert_int_equal(fc("n,,m=ext,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=abc,m=ext"), SASL_C_MALFORMED_REQUEST);
	/* username escapes */
	assert_int_equal(fc("n,,n=us=2Cer,r=abc"), 0);
	assert_int_equal(fc("n,,n=us=3Der,r=abc"), 0);
	assert_int_equal(fc("n,,n=us=41er,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=us=2cer,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user=,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user=2,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=,r=abc"), SASL_C_MALFORMED_REQUEST);
	/* usernames that cannot be a localpart / another domain: not-authorized */
	assert_int_equal(fc("n,,n=a b,r=abc"), SASL_C_NOT_AUTHORIZED);
	assert_int_equal(fc("n,,n=a:b,r=abc"), SASL_C_NOT_AUTHORIZED);
	assert_int_equal(fc("n,,n=\xc0\xaf,r=abc"), SASL_C_NOT_AUTHORIZED);
	assert_int_equal(fc("n,,n=user@example.org,r=abc"), SASL_C_NOT_AUTHORIZED);
	assert_int_equal(fc("n,,n=@example.com,r=abc"), SASL_C_NOT_AUTHORIZED);
	/* nonce */
	assert_int_equal(fc("n,,n=user,r="), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=a b"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=ab\x7f"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,r=abc,n=user"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=abc,"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=abc,1=x"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n,,n=user,r=abc,x="), SASL_C_MALFORMED_REQUEST);
	/* GS2 header */
	assert_int_equal(fc("n,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("x,,n=user,r=abc"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(fc("n"), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(first_cond(SASL_SCRAM_SHA256, "n,,n=u\0ser,r=abc", 16),
			 SASL_C_MALFORMED_REQUEST);
}

static void test_scram_user_canon(void **state)
{
	struct sasl *s = sasl_new(SASL_SCRAM_SHA1, DOMAIN, strlen(DOMAIN));

	assert_int_equal(start_str(s, "n,,n=J=2CDoe=3D,r=abc"), SASL_NEED_CREDS);
	assert_string_equal(sasl_user(s), "j,doe=");
	sasl_free(s);
	s = sasl_new(SASL_SCRAM_SHA1, "Example.COM", 11);
	assert_int_equal(start_str(s, "n,,n=Bob@EXAMPLE.com,r=abc"), SASL_NEED_CREDS);
	assert_string_equal(sasl_user(s), "bob");
	sasl_free(s);
}

static void test_oversized(void **state)
{
	char *m = malloc(SASL_MAX_MSG + 2);
	int n;

	assert_non_null(m);
	/* Exactly SASL_MAX_MSG bytes: accepted (a long client nonce). */
	n = sprintf(m, "n,,n=user,r=");
	memset(m + n, 'a', SASL_MAX_MSG - (size_t)n);
	assert_int_equal(first_cond(SASL_SCRAM_SHA256, m, SASL_MAX_MSG), 0);
	/* One more: refused before parsing. */
	m[SASL_MAX_MSG] = 'a';
	assert_int_equal(first_cond(SASL_SCRAM_SHA256, m, SASL_MAX_MSG + 1),
			 SASL_C_MALFORMED_REQUEST);
	assert_int_equal(first_cond(SASL_PLAIN, m, SASL_MAX_MSG + 1), SASL_C_MALFORMED_REQUEST);

	/* A maximal client nonce still yields a valid exchange. */
	{
		struct creds c;
		struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
		char *sf, *cf;

		rfc_creds(&c);
		m[SASL_MAX_MSG] = '\0';
		sf = to_server_first(s, m, &c, WIRE_OK);
		assert_true(strlen(sf) <= SASL_MAX_OUT);
		cf = client_final(CRYPTO_SHA256, "pencil", m + 3, sf, "biws", NULL);
		assert_true(strlen(cf) > SASL_MAX_MSG);   /* the nonce grew: too big */
		assert_int_equal(step_str(s, cf), SASL_FAILURE);
		assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
		free(sf);
		free(cf);
		sasl_free(s);
	}
	/* Oversized client-final */
	{
		struct creds c;
		struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
		rfc_creds(&c);
		free(to_server_first(s, "n,,n=user,r=x", &c, WIRE_OK));
		memset(m, 'c', SASL_MAX_MSG + 1);
		assert_int_equal(sasl_step(s, (const uint8_t *)m, SASL_MAX_MSG + 1), SASL_FAILURE);
		assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
		sasl_free(s);
	}
	free(m);
}

static void test_empty_initial_response(void **state)
{
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	size_t n;

	assert_int_equal(sasl_start(s, NULL, 0), SASL_CHALLENGE);
	sasl_out(s, &n);
	assert_int_equal(n, 0);
	assert_int_equal(step_str(s, "n,,n=user,r=abc"), SASL_NEED_CREDS);
	assert_string_equal(sasl_user(s), "user");
	sasl_free(s);

	/* Empty again: no endless empty-challenge loop. */
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_start(s, NULL, 0), SASL_CHALLENGE);
	assert_int_equal(sasl_step(s, NULL, 0), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
	sasl_free(s);
}

static void test_misuse(void **state)
{
	struct creds c;
	struct sasl *s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));

	rfc_creds(&c);
	/* a response before the session server answered */
	assert_int_equal(start_str(s, "n,,n=user,r=abc"), SASL_NEED_CREDS);
	assert_int_equal(step_str(s, "c=biws"), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
	/* failure is terminal */
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
	sasl_free(s);

	/* creds before start, start twice */
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_FAILURE);
	sasl_free(s);
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_start(s, (const uint8_t *)"\0user\0pencil", 12), SASL_NEED_CREDS);
	assert_int_equal(sasl_start(s, (const uint8_t *)"\0user\0pencil", 12), SASL_FAILURE);
	sasl_free(s);

	assert_null(sasl_new(0, DOMAIN, strlen(DOMAIN)));
	assert_null(sasl_new(4, DOMAIN, strlen(DOMAIN)));
	sasl_free(NULL);
}

/* ---- PLAIN ------------------------------------------------------------- */

/* After SASL_NEED_COMPUTE: take the job, run it, hand the result back. */
static int plain_compute(struct sasl *s)
{
	struct sasl_job *job = malloc(sizeof(*job));
	uint8_t salted[CRYPTO_MAX_DIGEST];
	int n, r;

	assert_non_null(job);
	assert_int_equal(sasl_job_take(s, job), 0);
	n = sasl_job_run(job, salted);
	assert_true(n > 0);
	r = sasl_computed(s, salted, (size_t)n);
	free(job);
	return r;
}

static int plain_run(const char *m, size_t n, int status, struct creds *c, int *cond)
{
	struct sasl *s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	int r = sasl_start(s, (const uint8_t *)m, n);

	if (r == SASL_NEED_CREDS)
		r = sasl_creds(s, status, &c->sha1, &c->sha256);
	if (r == SASL_NEED_COMPUTE)
		r = plain_compute(s);
	*cond = sasl_cond(s);
	if (r == SASL_SUCCESS) {
		size_t len;
		sasl_out(s, &len);
		assert_int_equal(len, 0);
	}
	sasl_free(s);
	return r;
}

#define P(lit) lit, sizeof(lit) - 1

static void test_plain(void **state)
{
	struct creds c;
	int cond;

	rfc_creds(&c);
	assert_int_equal(plain_run(P("\0user\0pencil"), WIRE_OK, &c, &cond), SASL_SUCCESS);
	assert_int_equal(plain_run(P("\0USER\0pencil"), WIRE_OK, &c, &cond), SASL_SUCCESS);
	assert_int_equal(plain_run(P("\0user@example.com\0pencil"), WIRE_OK, &c, &cond),
			 SASL_SUCCESS);
	assert_int_equal(plain_run(P("user@example.com\0user\0pencil"), WIRE_OK, &c, &cond),
			 SASL_SUCCESS);
	/* wrong password */
	assert_int_equal(plain_run(P("\0user\0pencil2"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	assert_int_equal(plain_run(P("\0user\0Pencil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	/* unknown user, even with the password that would match */
	assert_int_equal(plain_run(P("\0ghost\0pencil"), WIRE_NO_USER, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	assert_int_equal(plain_run(P("\0user\0pencil"), WIRE_TEMP_FAIL, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_TEMPORARY_AUTH_FAILURE);
	/* authzid mismatch */
	assert_int_equal(plain_run(P("admin@example.com\0user\0pencil"), WIRE_OK, &c, &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_INVALID_AUTHZID);
	/* another domain, invalid localpart */
	assert_int_equal(plain_run(P("\0user@example.org\0pencil"), WIRE_OK, &c, &cond),
			 SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	assert_int_equal(plain_run(P("\0us er\0pencil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
	/* syntax */
	assert_int_equal(plain_run(P("user\0pencil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_MALFORMED_REQUEST);
	assert_int_equal(plain_run(P("\0user\0"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_MALFORMED_REQUEST);
	assert_int_equal(plain_run(P("\0\0pencil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_MALFORMED_REQUEST);
	assert_int_equal(plain_run(P("\0user\0pen\0cil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_MALFORMED_REQUEST);
	assert_int_equal(plain_run(P("\0"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_MALFORMED_REQUEST);
	/* SHA-1-only account: PLAIN falls back to those keys */
	c.sha256.key_len = 0;
	make_record(&c.sha1, CRYPTO_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096);
	assert_int_equal(plain_run(P("\0user\0pencil"), WIRE_OK, &c, &cond), SASL_SUCCESS);
	assert_int_equal(plain_run(P("\0user\0pencil!"), WIRE_OK, &c, &cond), SASL_FAILURE);
	/* no usable keys at all */
	c.sha1.key_len = 0;
	assert_int_equal(plain_run(P("\0user\0pencil"), WIRE_OK, &c, &cond), SASL_FAILURE);
	assert_int_equal(cond, SASL_C_NOT_AUTHORIZED);
}

/* The job sasl_creds asks for, as a caller sees it. */
static struct sasl *plain_to_job(const char *m, size_t n, int status, struct creds *c,
				 struct sasl_job *job)
{
	struct sasl *s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));

	assert_non_null(s);
	assert_int_equal(sasl_start(s, (const uint8_t *)m, n), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, status, &c->sha1, &c->sha256), SASL_NEED_COMPUTE);
	assert_int_equal(sasl_job_take(s, job), 0);
	return s;
}

static void test_plain_compute_steps(void **state)
{
	struct creds c;
	struct sasl_job *job = calloc(1, sizeof(*job)), *again = calloc(1, sizeof(*again));
	uint8_t salted[CRYPTO_MAX_DIGEST], want[CRYPTO_MAX_DIGEST], zero[SASL_MAX_MSG] = { 0 };
	struct sasl *s;
	size_t n;

	assert_non_null(job);
	assert_non_null(again);
	rfc_creds(&c);
	s = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, job);
	/* The job carries what PBKDF2 needs for the SCRAM-SHA-256 keys. */
	assert_int_equal(job->hash, CRYPTO_SHA256);
	assert_int_equal(job->iter, 4096);
	assert_int_equal(job->salt_len, c.sha256.salt_len);
	assert_memory_equal(job->salt, c.sha256.salt, job->salt_len);
	assert_int_equal(job->pass_len, 6);
	assert_memory_equal(job->pass, "pencil", 6);
	/* Taken once: the password has left the state machine. */
	assert_int_equal(sasl_job_take(s, again), -1);
	/* Nothing to send while the job runs. */
	sasl_out(s, &n);
	assert_int_equal(n, 0);
	/* The job is pure: same inputs, same output, password wiped after. */
	assert_int_equal(sasl_job_run(job, salted), 32);
	assert_int_equal(job->pass_len, 0);
	assert_memory_equal(job->pass, zero, sizeof(job->pass));
	assert_int_equal(crypto_pbkdf2(CRYPTO_SHA256, "pencil", 6, c.sha256.salt, c.sha256.salt_len,
				       4096, want, 32),
			 0);
	assert_memory_equal(salted, want, 32);
	assert_int_equal(sasl_computed(s, salted, 32), SASL_SUCCESS);
	assert_int_equal(sasl_cond(s), SASL_C_NONE);
	assert_string_equal(sasl_user(s), "user");
	/* Terminal: a second result is misuse. */
	assert_int_equal(sasl_computed(s, salted, 32), SASL_FAILURE);
	sasl_free(s);

	/* SHA-1-only account: a SHA-1 job. */
	c.sha256.key_len = 0;
	s = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, job);
	assert_int_equal(job->hash, CRYPTO_SHA1);
	assert_int_equal(job->salt_len, c.sha1.salt_len);
	assert_int_equal(sasl_job_run(job, salted), 20);
	/* A result of the wrong size is the runner's failure, not the client's. */
	assert_int_equal(sasl_computed(s, salted, 32), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_TEMPORARY_AUTH_FAILURE);
	sasl_free(s);

	/* The job failed (NULL result): temporary-auth-failure. */
	rfc_creds(&c);
	s = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, job);
	assert_int_equal(sasl_computed(s, NULL, 0), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_TEMPORARY_AUTH_FAILURE);
	sasl_free(s);

	/* The right password's result for another account's salt: not-authorized. */
	s = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, job);
	assert_int_equal(crypto_pbkdf2(CRYPTO_SHA256, "pencil", 6, c.sha1.salt, c.sha1.salt_len, 4096,
				       want, 32),
			 0);
	assert_int_equal(sasl_computed(s, want, 32), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_NOT_AUTHORIZED);
	sasl_free(s);

	/* The result may come back without the job ever being taken (the
	 * caller copied it another way); the password is wiped on free. */
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_start(s, (const uint8_t *)"\0user\0pencil", 12), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_NEED_COMPUTE);
	assert_int_equal(crypto_pbkdf2(CRYPTO_SHA256, "pencil", 6, c.sha256.salt, c.sha256.salt_len,
				       4096, want, 32),
			 0);
	assert_int_equal(sasl_computed(s, want, 32), SASL_SUCCESS);
	sasl_free(s);
	free(job);
	free(again);
}

/* Unknown users cost the same: a full PBKDF2 job with a fake, stable salt. */
static void test_plain_unknown_user_job(void **state)
{
	struct creds c;
	struct sasl_job *j1 = calloc(1, sizeof(*j1)), *j2 = calloc(1, sizeof(*j2));
	struct sasl_job *j3 = calloc(1, sizeof(*j3)), *jr = calloc(1, sizeof(*jr));
	uint8_t salted[CRYPTO_MAX_DIGEST];
	struct sasl *s1, *s2, *s3, *sr;
	int n;

	assert_true(j1 && j2 && j3 && jr);
	memset(&c, 0, sizeof(c));
	s1 = plain_to_job(P("\0ghost\0pencil"), WIRE_NO_USER, &c, j1);
	s2 = plain_to_job(P("\0GHOST\0other"), WIRE_NO_USER, &c, j2);
	s3 = plain_to_job(P("\0phantom\0pencil"), WIRE_NO_USER, &c, j3);
	rfc_creds(&c);
	sr = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, jr);
	/* Same shape as a real account's job (xedgectl: SHA-256, 4096). */
	assert_int_equal(j1->hash, jr->hash);
	assert_int_equal(j1->iter, jr->iter);
	assert_int_equal(j1->salt_len, 16);
	/* Stable per canonical name, distinct across names. */
	assert_int_equal(j2->salt_len, 16);
	assert_memory_equal(j1->salt, j2->salt, 16);
	assert_memory_not_equal(j1->salt, j3->salt, 16);
	/* Even the "right" derivation for the fake salt fails, at the end. */
	n = sasl_job_run(j1, salted);
	assert_int_equal(n, 32);
	assert_int_equal(sasl_computed(s1, salted, (size_t)n), SASL_FAILURE);
	assert_int_equal(sasl_cond(s1), SASL_C_NOT_AUTHORIZED);
	/* An account without usable keys looks the same. */
	c.sha256.key_len = 0;
	c.sha1.key_len = 0;
	sasl_free(sr);
	sr = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, jr);
	assert_int_equal(jr->iter, 4096);
	assert_int_equal(jr->salt_len, 16);
	n = sasl_job_run(jr, salted);
	assert_int_equal(sasl_computed(sr, salted, (size_t)n), SASL_FAILURE);
	assert_int_equal(sasl_cond(sr), SASL_C_NOT_AUTHORIZED);
	sasl_free(s1);
	sasl_free(s2);
	sasl_free(s3);
	sasl_free(sr);
	free(j1);
	free(j2);
	free(j3);
	free(jr);
}

/* The compute step only where the machine is waiting for it. */
static void test_plain_compute_misuse(void **state)
{
	struct creds c;
	struct sasl_job *job = calloc(1, sizeof(*job));
	uint8_t salted[CRYPTO_MAX_DIGEST] = { 0 };
	struct sasl *s;

	assert_non_null(job);
	rfc_creds(&c);
	/* before the credentials */
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_job_take(s, job), -1);
	assert_int_equal(sasl_start(s, (const uint8_t *)"\0user\0pencil", 12), SASL_NEED_CREDS);
	assert_int_equal(sasl_job_take(s, job), -1);
	assert_int_equal(sasl_computed(s, salted, 32), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_TEMPORARY_AUTH_FAILURE);
	sasl_free(s);
	/* a <response/> while the job runs: malformed-request, and the late
	 * result changes nothing */
	s = plain_to_job(P("\0user\0pencil"), WIRE_OK, &c, job);
	assert_int_equal(step_str(s, "x"), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
	assert_int_equal(sasl_job_run(job, salted), 32);
	assert_int_equal(sasl_computed(s, salted, 32), SASL_FAILURE);
	assert_int_equal(sasl_cond(s), SASL_C_MALFORMED_REQUEST);
	sasl_free(s);
	/* the session server's temporary failure: no job at all */
	s = sasl_new(SASL_PLAIN, DOMAIN, strlen(DOMAIN));
	assert_int_equal(sasl_start(s, (const uint8_t *)"\0user\0pencil", 12), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, WIRE_TEMP_FAIL, &c.sha1, &c.sha256), SASL_FAILURE);
	assert_int_equal(sasl_job_take(s, job), -1);
	sasl_free(s);
	/* SCRAM never asks for a job */
	s = sasl_new(SASL_SCRAM_SHA256, DOMAIN, strlen(DOMAIN));
	assert_int_equal(start_str(s, "n,,n=user,r=abc"), SASL_NEED_CREDS);
	assert_int_equal(sasl_creds(s, WIRE_OK, &c.sha1, &c.sha256), SASL_CHALLENGE);
	assert_int_equal(sasl_job_take(s, job), -1);
	assert_int_equal(sasl_computed(s, salted, 32), SASL_FAILURE);
	sasl_free(s);
	/* NULL everywhere */
	assert_int_equal(sasl_job_take(NULL, job), -1);
	assert_int_equal(sasl_job_run(NULL, salted), -1);
	assert_int_equal(sasl_computed(NULL, salted, 32), SASL_FAILURE);
	job->hash = 7;   /* unknown hash */
	assert_int_equal(sasl_job_run(job, salted), -1);
	free(job);
}

static void test_names(void **state)
{
	assert_int_equal(sasl_mech_from_name("PLAIN", 5), SASL_PLAIN);
	assert_int_equal(sasl_mech_from_name("SCRAM-SHA-1", 11), SASL_SCRAM_SHA1);
	assert_int_equal(sasl_mech_from_name("SCRAM-SHA-256", 13), SASL_SCRAM_SHA256);
	assert_int_equal(sasl_mech_from_name("SCRAM-SHA-256-PLUS", 18), 0);
	assert_int_equal(sasl_mech_from_name("SCRAM-SHA-2", 11), 0);
	assert_int_equal(sasl_mech_from_name("plain", 5), 0);
	assert_int_equal(sasl_mech_from_name("PLAINX", 5), SASL_PLAIN);   /* length-bounded */
	assert_string_equal(sasl_mech_name(SASL_SCRAM_SHA1), "SCRAM-SHA-1");
	assert_string_equal(sasl_mech_name(99), "unknown");
	assert_string_equal(sasl_cond_str(SASL_C_NOT_AUTHORIZED), "not-authorized");
	assert_string_equal(sasl_cond_str(SASL_C_TEMPORARY_AUTH_FAILURE), "temporary-auth-failure");
	assert_string_equal(sasl_cond_str(SASL_C_ABORTED), "aborted");
	assert_string_equal(sasl_cond_str(SASL_C_INCORRECT_ENCODING), "incorrect-encoding");
	assert_string_equal(sasl_cond_str(-1), "not-authorized");
	assert_string_equal(sasl_cond_str(SASL_C_NONE), "not-authorized");
}

/* ---- crypto (the primitives SASL rests on) ----------------------------- */

static void test_crypto_b64(void **state)
{
	uint8_t b[16];
	char e[16];

	assert_int_equal(crypto_b64_decode("biws", 4, b, sizeof(b)), 3);
	assert_memory_equal(b, "n,,", 3);
	assert_int_equal(crypto_b64_decode("YQ==", 4, b, 1), 1);
	assert_int_equal(crypto_b64_decode("YWI=", 4, b, 2), 2);
	assert_int_equal(crypto_b64_decode("", 0, b, 0), 0);
	assert_int_equal(crypto_b64_decode("YWJj", 4, b, 2), -1);   /* cap */
	assert_int_equal(crypto_b64_decode("YQ", 2, b, 16), -1);    /* no padding */
	assert_int_equal(crypto_b64_decode("YR==", 4, b, 16), -1);  /* pad bits */
	assert_int_equal(crypto_b64_decode("YWJ=", 4, b, 16), -1);  /* pad bits */
	assert_int_equal(crypto_b64_decode("Y Q=", 4, b, 16), -1);
	assert_int_equal(crypto_b64_decode("YQ=\n", 4, b, 16), -1);
	assert_int_equal(crypto_b64_decode("=QQQ", 4, b, 16), -1);
	assert_int_equal(crypto_b64_decode("Q=QQ", 4, b, 16), -1);
	assert_int_equal(crypto_b64_decode("====", 4, b, 16), -1);
	assert_int_equal(crypto_b64_encode("n,,", 3, e, sizeof(e)), 4);
	assert_string_equal(e, "biws");
	assert_int_equal(crypto_b64_encode("a", 1, e, 4), 4);
	assert_memory_equal(e, "YQ==", 4);
	assert_int_equal(crypto_b64_encode("a", 1, e, 3), -1);
	{
		/* long input through the chunked decoder */
		uint8_t raw[3000], back[3000];
		char *enc = malloc(4100);
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)(i * 7);
		assert_int_equal(crypto_b64_encode(raw, sizeof(raw), enc, 4100), 4000);
		assert_int_equal(crypto_b64_decode(enc, 4000, back, sizeof(back)), 3000);
		assert_memory_equal(raw, back, 3000);
		assert_int_equal(crypto_b64_decode(enc, 3996, back, sizeof(back)), 2997);
		assert_int_equal(crypto_b64_decode(enc, 4000, back, 2999), -1);
		free(enc);
	}
}

static void test_crypto_misc(void **state)
{
	uint8_t a[32], b[32], out[32];

	assert_int_equal(crypto_digest_len(CRYPTO_SHA1), 20);
	assert_int_equal(crypto_digest_len(CRYPTO_SHA256), 32);
	assert_int_equal(crypto_digest_len(7), 0);
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(crypto_equal(a, a, 32), 1);
	assert_int_equal(crypto_equal(a, b, 32), 0);
	assert_int_equal(crypto_equal(a, b, 0), 1);
	/* SHA-256("abc") */
	assert_int_equal(crypto_hash(CRYPTO_SHA256, "abc", 3, out), 0);
	assert_int_equal(out[0], 0xba);
	assert_int_equal(out[31], 0xad);
	assert_int_equal(crypto_hash(9, "abc", 3, out), -1);
	assert_int_equal(crypto_pbkdf2(CRYPTO_SHA256, "p", 1, a, 4, 0, out, 32), -1);
	assert_int_equal(crypto_hmac(CRYPTO_SHA1, NULL, 0, NULL, 0, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5802_sha1),
		cmocka_unit_test(test_rfc7677_sha256),
		cmocka_unit_test(test_helper_matches_rfc),
		cmocka_unit_test(test_scram_random_nonce),
		cmocka_unit_test(test_scram_success_variants),
		cmocka_unit_test(test_scram_wrong_password),
		cmocka_unit_test(test_scram_unknown_user),
		cmocka_unit_test(test_scram_temp_fail),
		cmocka_unit_test(test_scram_final_errors),
		cmocka_unit_test(test_scram_final_extension),
		cmocka_unit_test(test_scram_replayed_nonce),
		cmocka_unit_test(test_scram_first_errors),
		cmocka_unit_test(test_scram_user_canon),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_empty_initial_response),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_compute_steps),
		cmocka_unit_test(test_plain_unknown_user_job),
		cmocka_unit_test(test_plain_compute_misuse),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_crypto_b64),
		cmocka_unit_test(test_crypto_misc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
