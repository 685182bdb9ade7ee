/*
 * test_bench_scram — bench/scram_client.c: the RFC 5802 §5 (SHA-1) and
 * RFC 7677 §3 (SHA-256) examples byte for byte, cached keys giving the same
 * proof, every rejection of a bad server message, username escaping, and a
 * full exchange against xedge's own server side (core/sasl.c), which is the
 * cross-check that matters for the bench.  Includes the .c under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/scram_client.c"
#include "core/sasl.h"

static char out[SCRAM_MAX_MSG];

struct vec {
	int hash;
	const char *nonce, *first, *server_first, *client_final, *server_final;
};

static const struct vec rfc5802 = {
	CRYPTO_SHA1, "fyko+d2lbbFgONRv9qkxdawL", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct vec rfc7677 = {
	CRYPTO_SHA256, "rOprNGfwEbeRWgbNEkqO", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static void run_vector(const struct vec *v)
{
	struct scram_client s, s2;
	struct scram_keys k;
	int n;

	n = scram_client_first(&s, v->hash, "user", v->nonce, out, sizeof(out));
	assert_int_equal(n, strlen(v->first));
	assert_memory_equal(out, v->first, (size_t)n);
	n = scram_client_final(&s, "pencil", v->server_first, strlen(v->server_first), NULL, &k, out,
			       sizeof(out));
	assert_int_equal(n, strlen(v->client_final));
	assert_memory_equal(out, v->client_final, (size_t)n);
	assert_int_equal(s.iter, 4096);
	assert_int_equal(scram_client_verify(&s, v->server_final, strlen(v->server_final)), SCRAM_OK);

	/* The cached keys give the same message without the password. */
	scram_client_first(&s2, v->hash, "user", v->nonce, out, sizeof(out));
	n = scram_client_final(&s2, "not-the-password", v->server_first, strlen(v->server_first), &k,
			       NULL, out, sizeof(out));
	assert_int_equal(n, strlen(v->client_final));
	assert_memory_equal(out, v->client_final, (size_t)n);
	assert_int_equal(scram_client_verify(&s2, v->server_final, strlen(v->server_final)), SCRAM_OK);
}

static void test_rfc5802_sha1(void **state)
{
	run_vector(&rfc5802);
}

static void test_rfc7677_sha256(void **state)
{
	run_vector(&rfc7677);
}

static int final_of(const char *server_first)
{
	struct scram_client s;

	scram_client_first(&s, CRYPTO_SHA256, "user", "abc", out, sizeof(out));
	return scram_client_final(&s, "pencil", server_first, strlen(server_first), NULL, NULL, out,
				  sizeof(out));
}

static void test_bad_server_first(void **state)
{
	assert_int_equal(final_of("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096"), SCRAM_E_NONCE);
	assert_int_equal(final_of("r=abc,s=QSXCR+Q6sek8bf92,i=4096"), SCRAM_E_NONCE); /* no server part */
	assert_int_equal(final_of("m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,i=4096"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,s=QSXCR+Q6sek8bf92"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,s=QSXCR+Q6sek8bf92,i=0"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,s=QSXCR+Q6sek8bf92,i=-5"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,s=QSXCR+Q6sek8bf92,i=40x"), SCRAM_E_FORMAT);
	assert_int_equal(final_of("r=abcdef,s=!!!,i=4096"), SCRAM_E_FORMAT);
	assert_int_equal(final_of(""), SCRAM_E_FORMAT);
	/* extensions after i= are allowed */
	assert_true(final_of("r=abcdef,s=QSXCR+Q6sek8bf92,i=1,x=y") > 0);
}

static void test_bad_server_final(void **state)
{
	const struct vec *v = &rfc7677;
	struct scram_client s;

	scram_client_first(&s, v->hash, "user", v->nonce, out, sizeof(out));
	assert_true(scram_client_final(&s, "pencil", v->server_first, strlen(v->server_first), NULL,
				       NULL, out, sizeof(out)) > 0);
	assert_int_equal(scram_client_verify(&s, "e=invalid-proof", 15), SCRAM_E_SERVER_ERROR);
	assert_int_equal(scram_client_verify(&s, "v=AAAA", 6), SCRAM_E_FORMAT);
	assert_int_equal(scram_client_verify(&s, "x=1", 3), SCRAM_E_FORMAT);
	assert_int_equal(scram_client_verify(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", 46),
			 SCRAM_E_FORMAT); /* non-canonical base64 */
	assert_int_equal(scram_client_verify(&s, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 46),
			 SCRAM_E_SERVER_SIG);
}

static void test_first_arguments(void **state)
{
	struct scram_client s;
	int n;

	n = scram_client_first(&s, CRYPTO_SHA1, "a,b=c", "nonce", out, sizeof(out));
	assert_int_equal(n, strlen("n,,n=a=2Cb=3Dc,r=nonce"));
	assert_memory_equal(out, "n,,n=a=2Cb=3Dc,r=nonce", (size_t)n);
	assert_int_equal(scram_client_first(&s, CRYPTO_SHA1, "u", "no,nce", out, sizeof(out)), SCRAM_E_ARG);
	assert_int_equal(scram_client_first(&s, CRYPTO_SHA1, "u", "", out, sizeof(out)), SCRAM_E_ARG);
	assert_int_equal(scram_client_first(&s, 99, "u", "n", out, sizeof(out)), SCRAM_E_ARG);
	assert_int_equal(scram_client_first(&s, CRYPTO_SHA1, "u", "n", out, 8), SCRAM_E_ARG);
	assert_string_equal(scram_error_str(SCRAM_E_NONCE), "nonce-mismatch");
}

/* Client against xedge's server state machine, both hashes. */
static void exchange(int hash, int mech)
{
	struct wire_scram rec[2];
	uint8_t salt[16];
	struct scram_client c;
	struct sasl *srv;
	const uint8_t *so;
	size_t sl;
	int n, r;

	memset(rec, 0, sizeof(rec));
	memset(salt, 0x5a, sizeof(salt));
	for (int i = 0; i < 2; i++) {
		int h = i ? CRYPTO_SHA256 : CRYPTO_SHA1;
		rec[i].iter = 4096;
		rec[i].salt_len = sizeof(salt);
		memcpy(rec[i].salt, salt, sizeof(salt));
		rec[i].key_len = (uint8_t)crypto_digest_len(h);
		assert_int_equal(crypto_scram_keys(h, "pw", 2, salt, sizeof(salt), 4096, rec[i].stored_key,
						   rec[i].server_key), 0);
	}
	srv = sasl_new(mech, "localhost", 9);
	assert_non_null(srv);
	n = scram_client_first(&c, hash, "bench7", "Zm9vYmFyYmF6cXV4", out, sizeof(out));
	assert_int_equal(sasl_start(srv, (const uint8_t *)out, (size_t)n), SASL_NEED_CREDS);
	assert_string_equal(sasl_user(srv), "bench7");
	assert_int_equal(sasl_creds(srv, WIRE_OK, &rec[0], &rec[1]), SASL_CHALLENGE);
	so = sasl_out(srv, &sl);
	n = scram_client_final(&c, "pw", (const char *)so, sl, NULL, NULL, out, sizeof(out));
	assert_true(n > 0);
	r = sasl_step(srv, (const uint8_t *)out, (size_t)n);
	assert_int_equal(r, SASL_SUCCESS);
	so = sasl_out(srv, &sl);
	assert_int_equal(scram_client_verify(&c, (const char *)so, sl), SCRAM_OK);
	sasl_free(srv);
}

static void test_against_xedge_server(void **state)
{
	exchange(CRYPTO_SHA1, SASL_SCRAM_SHA1);
	exchange(CRYPTO_SHA256, SASL_SCRAM_SHA256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5802_sha1),
		cmocka_unit_test(test_rfc7677_sha256),
		cmocka_unit_test(test_bad_server_first),
		cmocka_unit_test(test_bad_server_final),
		cmocka_unit_test(test_first_arguments),
		cmocka_unit_test(test_against_xedge_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
