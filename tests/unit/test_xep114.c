/*
 * Unit tests for parser/xep114.c: which component a header's `to` names, the
 * <handshake/> digest (XEP-0114 §3: hex SHA-1 of stream id + secret), and the
 * addresses of a component's stanzas.  Digests computed independently
 * (Python hashlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/xep114.h"

static enum xep114_hs hs(const char *sid, const char *secret, const char *text, unsigned children)
{
	return xep114_handshake(sid, strlen(sid), secret, strlen(secret), text, strlen(text), children);
}

static enum xep114_addr addr(const char *name, bool own, const char *jid)
{
	return xep114_addr(name, own, jid != NULL, jid ? jid : "", jid ? strlen(jid) : 0);
}

static void test_host(void **state)
{
	assert_true(xep114_host_is("comp.example", "comp.example", 12));
	assert_true(xep114_host_is("comp.example", "Comp.EXAMPLE", 12));
	assert_true(xep114_host_is("comp.example", "comp.example.", 13));
	assert_false(xep114_host_is("comp.example", "comp.example..", 14));
	assert_false(xep114_host_is("comp.example", "sub.comp.example", 16));
	assert_false(xep114_host_is("comp.example", "omp.example", 11));
	assert_false(xep114_host_is("comp.example", "comp.exampl", 11));
	assert_false(xep114_host_is("comp.example", "", 0));
	assert_false(xep114_host_is("comp.example", ".", 1));
	/* Only ASCII folds: a byte that differs elsewhere is a different name. */
	assert_false(xep114_host_is("comp.example", "comp\xc0" "example", 12));
}

static void test_digest_vectors(void **state)
{
	char hex[XEP114_HEX_LEN + 1];

	assert_int_equal(xep114_digest_hex("3BF96D32", 8, "secret", 6, hex), 0);
	assert_string_equal(hex, "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136");
	assert_int_equal(xep114_digest_hex("abc", 3, "", 0, hex), 0);   /* SHA-1("abc") */
	assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	/* Non-ASCII secrets are hashed as their UTF-8 bytes (XEP-0114 §3 step 1). */
	assert_int_equal(xep114_digest_hex("id", 2, "pass\xc3\xa9", 6, hex), 0);
	assert_string_equal(hex, "3f07bb044e5d93983fc59110b98545fbfe4db9de");
}

static void test_handshake(void **state)
{
	assert_int_equal(hs("3BF96D32", "secret", "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136", 0),
			 XEP114_HS_OK);
	assert_int_equal(hs("3BF96D32", "secret", "B09EA9B3B7F586BE8A08D0A3DD7466F110AEB136", 0),
			 XEP114_HS_OK);
	assert_int_equal(hs("3BF96D32", "secret", "b09ea9b3b7f586be8a08d0a3dd7466f110aeb137", 0),
			 XEP114_HS_MISMATCH);
	/* Another stream id or secret: a replayed handshake does not verify. */
	assert_int_equal(hs("3BF96D33", "secret", "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136", 0),
			 XEP114_HS_MISMATCH);
	assert_int_equal(hs("3BF96D32", "s3cret", "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136", 0),
			 XEP114_HS_MISMATCH);
	assert_int_equal(hs("3BF96D32", "s3cret", "a984b871214a298f0f743fcd25f99b10838ba12b", 0),
			 XEP114_HS_OK);
}

static void test_handshake_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"b09ea9b3b7f586be8a08d0a3dd7466f110aeb13",     /* 39 */
		"b09ea9b3b7f586be8a08d0a3dd7466f110aeb1366",   /* 41 */
		" b09ea9b3b7f586be8a08d0a3dd7466f110aeb13",    /* whitespace */
		"b09ea9b3b7f586be8a08d0a3dd7466f110aeb13 ",
		"g09ea9b3b7f586be8a08d0a3dd7466f110aeb136",    /* not hex */
		"b09ea9b3b7f586be8a08d0a3dd7466f110aeb1:6",
		"0xb09ea9b3b7f586be8a08d0a3dd7466f110aeb1",
		"sJ6ps7f1hr6KCNCj3XRm8RCuuzY=XXXXXXXXXXXX",    /* base64, padded to 40 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hs("3BF96D32", "secret", bad[i], 0), XEP114_HS_MALFORMED);
	/* The right digest with a child element is still malformed. */
	assert_int_equal(hs("3BF96D32", "secret", "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136", 1),
			 XEP114_HS_MALFORMED);
	/* A NUL inside the 40 bytes. */
	assert_int_equal(xep114_handshake("3BF96D32", 8, "secret", 6,
					  "b09ea9b3b7f586be8a08d0a3dd7466f110aeb1\0" "6", 40, 0),
			 XEP114_HS_MALFORMED);
}

static void test_long_secret(void **state)
{
	size_t n = 100000;
	char *secret = malloc(n + 1), hex[XEP114_HEX_LEN + 1];

	assert_non_null(secret);
	memset(secret, 'k', n);
	secret[n] = 0;
	assert_int_equal(xep114_digest_hex("sid", 3, secret, n, hex), 0);
	assert_int_equal(hs("sid", secret, hex, 0), XEP114_HS_OK);
	free(secret);
}

static void test_from(void **state)
{
	const char *n = "comp.example";

	assert_int_equal(addr(n, true, "comp.example"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "user@comp.example"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "user@comp.example/res"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "user@COMP.Example."), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "room@sub.comp.example/nick"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "a.b.comp.example"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, true, "user@example"), XEP114_ADDR_FOREIGN);
	assert_int_equal(addr(n, true, "user@xcomp.example"), XEP114_ADDR_FOREIGN);
	assert_int_equal(addr(n, true, "comp.example.org"), XEP114_ADDR_FOREIGN);
	assert_int_equal(addr(n, true, "comp.example@other.example"), XEP114_ADDR_FOREIGN);
	assert_int_equal(addr(n, true, "other.example/comp.example"), XEP114_ADDR_FOREIGN);
	assert_int_equal(addr(n, true, NULL), XEP114_ADDR_MISSING);
	assert_int_equal(addr(n, true, ""), XEP114_ADDR_MISSING);
	assert_int_equal(addr(n, true, "a b@comp.example"), XEP114_ADDR_MALFORMED);
	assert_int_equal(addr(n, true, "@comp.example"), XEP114_ADDR_MALFORMED);
	assert_int_equal(addr(n, true, "user@comp.example/"), XEP114_ADDR_MALFORMED);
	assert_int_equal(addr(n, true, ".comp.example"), XEP114_ADDR_MALFORMED);
}

static void test_to(void **state)
{
	const char *n = "comp.example";

	/* The `to` may be anywhere: only its presence and form are checked. */
	assert_int_equal(addr(n, false, "alice@example"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, false, "remote.example.org"), XEP114_ADDR_OK);
	assert_int_equal(addr(n, false, NULL), XEP114_ADDR_MISSING);
	assert_int_equal(addr(n, false, ""), XEP114_ADDR_MISSING);
	assert_int_equal(addr(n, false, "a b@example"), XEP114_ADDR_MALFORMED);
	assert_int_equal(addr(n, false, "alice@"), XEP114_ADDR_MALFORMED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_digest_vectors),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_handshake_malformed),
		cmocka_unit_test(test_long_secret),
		cmocka_unit_test(test_from),
		cmocka_unit_test(test_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
