/* Unit tests for parser/dialback.c: XEP-0220 elements and XEP-0185 keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "parser/dialback.h"

#define CTX "xmlns='jabber:server' xmlns:db='jabber:server:dialback' " \
	    "xmlns:stream='http://etherx.jabber.org/streams'"

static int parse(const char *raw, struct db_elem *d)
{
	return dialback_parse(raw, strlen(raw), CTX, d);
}

static void test_result_request(void **state)
{
	struct db_elem d;

	assert_int_equal(parse("<db:result from='Capulet.example.' to='montague.example'>b4835385f37fe2895af6c1"
			       "96e5b1e8b3a7dd9c38</db:result>", &d), DB_OK);
	assert_int_equal(d.kind, DB_RESULT);
	assert_int_equal(d.type, DB_REQUEST);
	assert_string_equal(d.from, "capulet.example");
	assert_string_equal(d.to, "montague.example");
	assert_string_equal(d.key, "b4835385f37fe2895af6c196e5b1e8b3a7dd9c38");
	assert_string_equal(d.id, "");
}

static void test_verify_and_answers(void **state)
{
	struct db_elem d;

	assert_int_equal(parse("<db:verify from='a.example' to='b.example' id='417GAF25'>k3y</db:verify>", &d),
			 DB_OK);
	assert_int_equal(d.kind, DB_VERIFY);
	assert_string_equal(d.id, "417GAF25");
	assert_string_equal(d.key, "k3y");
	assert_int_equal(parse("<db:verify from='a.example' to='b.example' id='x' type='valid'/>", &d), DB_OK);
	assert_int_equal(d.type, DB_VALID);
	assert_string_equal(d.key, "");
	assert_int_equal(parse("<db:result from='a.example' to='b.example' type='invalid'/>", &d), DB_OK);
	assert_int_equal(d.type, DB_INVALID);
	assert_int_equal(parse("<db:result from='a.example' to='b.example' type='error'><error type='cancel'>"
			       "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
			       &d), DB_OK);
	assert_int_equal(d.type, DB_ERROR);
	assert_string_equal(d.cond, "item-not-found");
	/* An explicit namespace works as well as the header's prefix. */
	assert_int_equal(parse("<result xmlns='jabber:server:dialback' from='a.example' to='b.example'>k</result>",
			       &d), DB_OK);
}

static void test_refusals(void **state)
{
	struct db_elem d;
	char big[600];

	assert_int_equal(parse("<db:result to='b.example'>k</db:result>", &d), DB_E_FROM);
	assert_int_equal(parse("<db:result from='user@a.example' to='b.example'>k</db:result>", &d), DB_E_FROM);
	assert_int_equal(parse("<db:result from='a.example' to='b.example/r'>k</db:result>", &d), DB_E_TO);
	assert_int_equal(parse("<db:result from='a.example'>k</db:result>", &d), DB_E_TO);
	assert_int_equal(parse("<db:verify from='a.example' to='b.example'>k</db:verify>", &d), DB_E_ID);
	assert_int_equal(parse("<db:result from='a.example' to='b.example'/>", &d), DB_E_KEY);
	assert_int_equal(parse("<db:result from='a.example' to='b.example'>a b</db:result>", &d), DB_E_KEY);
	assert_int_equal(parse("<db:result from='a.example' to='b.example' type='maybe'/>", &d), DB_E_TYPE);
	assert_int_equal(parse("<db:other from='a.example' to='b.example'/>", &d), DB_E_XML);
	assert_int_equal(parse("<message from='a.example' to='b.example'/>", &d), DB_E_XML);
	assert_int_equal(parse("<db:result from='a.example' to='b.example'>k", &d), DB_E_XML);
	memset(big, 'k', sizeof(big));
	memcpy(big, "<db:result from='a.example' to='b.example'>", 43);
	strcpy(big + sizeof(big) - 13, "</db:result>");
	assert_int_equal(parse(big, &d), DB_E_KEY);
	assert_string_equal(dialback_error_str(DB_E_FROM), "invalid-from");
	assert_string_equal(dialback_error_str(DB_E_XML), "invalid-xml");
}

static void test_key(void **state)
{
	char sec[DB_KEY_HEX + 1], key[DB_KEY_HEX + 1];

	/* XEP-0185's secret, and the key computed independently (Python hmac). */
	dialback_secret_hex("s3cr3tf0rd14lb4ck", 17, sec);
	assert_string_equal(sec, "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc");
	assert_int_equal(dialback_key(sec, "example.net", "example.com", "D60000229F", key), 0);
	assert_string_equal(key, "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_request),
		cmocka_unit_test(test_verify_and_answers),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
