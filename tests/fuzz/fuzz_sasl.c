/*
 * fuzz_sasl — libFuzzer target for core/sasl.c (and the tls/crypto base64
 * and parser/jid code under it).
 *
 * The input up to the first '\n' is a SCRAM client-first, the rest the
 * client-final.  They go through SCRAM-SHA-256 with fixed credentials
 * (user/pencil, 2 iterations so executions stay fast) and the fixed server
 * nonce FUZZ_SNONCE; through SCRAM-SHA-1 for an unknown user, starting with
 * an empty initial response; and the whole input goes through PLAIN, whose
 * PBKDF2 job is run inline (sasl_job_take, sasl_job_run, sasl_computed).
 * Nothing may crash or read out of bounds, and every result must be one the
 * header allows (__builtin_trap() otherwise).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sasl.h"
#include "tls/crypto.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define FUZZ_SNONCE "3rfcNHYJY1ZVvWVs7j"
#define DOMAIN "example.com"

static struct wire_scram sha1, sha256;

static void init_creds(void)
{
	static int done;
	static const uint8_t salt[] = "fuzzsaltfuzzsalt";

	if (done)
		return;
	sha1.iter = sha256.iter = 2;
	sha1.salt_len = sha256.salt_len = 16;
	memcpy(sha1.salt, salt, 16);
	memcpy(sha256.salt, salt, 16);
	sha1.key_len = 20;
	sha256.key_len = 32;
	CHECK(crypto_scram_keys(CRYPTO_SHA1, "pencil", 6, salt, 16, 2, sha1.stored_key,
				sha1.server_key) == 0);
	CHECK(crypto_scram_keys(CRYPTO_SHA256, "pencil", 6, salt, 16, 2, sha256.stored_key,
				sha256.server_key) == 0);
	done = 1;
}

static void check_state(struct sasl *s, int r)
{
	size_t n;
	const uint8_t *out = sasl_out(s, &n);

	CHECK(r == SASL_NEED_CREDS || r == SASL_NEED_COMPUTE || r == SASL_CHALLENGE ||
	      r == SASL_SUCCESS || r == SASL_FAILURE);
	CHECK(out != NULL && n <= SASL_MAX_OUT);
	if (r == SASL_FAILURE) {
		CHECK(sasl_cond(s) > SASL_C_NONE && sasl_cond(s) <= SASL_C_TEMPORARY_AUTH_FAILURE);
		CHECK(n == 0);
	} else {
		CHECK(sasl_cond(s) == SASL_C_NONE);
	}
	if (r == SASL_NEED_CREDS) {
		size_t ul = strlen(sasl_user(s));
		CHECK(ul > 0 && ul <= SASL_USER_MAX);
	}
	if (n)
		CHECK(out[0] != 0 && out[n - 1] != 0);   /* touch both ends */
}

/* Exact-size heap copies so ASan sees any over-read. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	CHECK(d != NULL);
	if (n)
		memcpy(d, p, n);
	return d;
}

static void run_scram(int mech, int status, int empty_first, const uint8_t *first, size_t fn,
		      const uint8_t *final, size_t finn)
{
	struct sasl *s = sasl_new(mech, DOMAIN, sizeof(DOMAIN) - 1);
	int r;

	CHECK(s != NULL);
	sasl_test_set_server_nonce(s, FUZZ_SNONCE);
	if (empty_first) {
		r = sasl_start(s, NULL, 0);
		CHECK(r == SASL_CHALLENGE);
		r = sasl_step(s, first, fn);
	} else {
		r = sasl_start(s, first, fn);
	}
	check_state(s, r);
	if (r == SASL_NEED_CREDS) {
		r = sasl_creds(s, status, &sha1, &sha256);
		check_state(s, r);
		CHECK(r == SASL_CHALLENGE);
		r = sasl_step(s, final, finn);
		check_state(s, r);
		CHECK(r == SASL_SUCCESS || r == SASL_FAILURE);
		if (r == SASL_SUCCESS) {
			size_t n;
			const uint8_t *out = sasl_out(s, &n);
			CHECK(status == WIRE_OK && n > 2 && out[0] == 'v' && out[1] == '=');
		}
		/* terminal either way */
		r = sasl_step(s, final, finn);
		CHECK(r == SASL_FAILURE);
	}
	sasl_free(s);
}

static void run_plain(const uint8_t *data, size_t size)
{
	struct sasl *s = sasl_new(SASL_PLAIN, DOMAIN, sizeof(DOMAIN) - 1);
	int r;

	CHECK(s != NULL);
	r = sasl_start(s, data, size);
	check_state(s, r);
	if (r == SASL_NEED_CREDS) {
		static struct sasl_job job;
		uint8_t salted[CRYPTO_MAX_DIGEST];
		int n;

		r = sasl_creds(s, WIRE_OK, &sha1, &sha256);
		check_state(s, r);
		CHECK(r == SASL_NEED_COMPUTE);
		CHECK(sasl_job_take(s, &job) == 0 && sasl_job_take(s, &job) == -1);
		CHECK(job.iter == 2 && job.pass_len > 0);
		n = sasl_job_run(&job, salted);
		CHECK(n == 32);
		r = sasl_computed(s, salted, (size_t)n);
		check_state(s, r);
		CHECK(r == SASL_SUCCESS || r == SASL_FAILURE);
	} else if (r == SASL_CHALLENGE) {
		CHECK(size == 0);
	}
	sasl_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t fn = nl ? (size_t)(nl - data) : size;
	size_t finn = nl ? size - fn - 1 : 0;
	uint8_t *first = dup_exact(data, fn);
	uint8_t *final = dup_exact(nl ? nl + 1 : data, finn);
	uint8_t *all = dup_exact(data, size);

	init_creds();
	run_scram(SASL_SCRAM_SHA256, WIRE_OK, 0, first, fn, final, finn);
	run_scram(SASL_SCRAM_SHA1, WIRE_NO_USER, 1, first, fn, final, finn);
	run_plain(all, size);
	free(first);
	free(final);
	free(all);
	return 0;
}
