/*
 * Unit tests for the entity capabilities PEP relies on (sm/caps.c): the
 * XEP-0115 verification string, computed against the published examples of
 * XEP-0115 §5.2 and §5.3, and the answers §5.4 says must not be trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parser/xtree.h"
#include "sm/sm_int.h"

#define DISCO "xmlns='http://jabber.org/protocol/disco#info'"
#define F(v) "<feature var='" v "'/>"

/* XEP-0115 §5.2 */
static const char simple[] =
	"<query " DISCO " node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>"
	"<identity category='client' name='Exodus 0.9.1' type='pc'/>"
	F("http://jabber.org/protocol/caps") F("http://jabber.org/protocol/disco#info")
	F("http://jabber.org/protocol/disco#items") F("http://jabber.org/protocol/muc")
	"</query>";

/* XEP-0115 §5.3, children in a different order than S lists them. */
static const char complex_[] =
	"<query " DISCO " node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>"
	"<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
	"<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"
	F("http://jabber.org/protocol/muc") F("http://jabber.org/protocol/caps")
	F("http://jabber.org/protocol/disco#items") F("http://jabber.org/protocol/disco#info")
	"<x xmlns='jabber:x:data' type='result'>"
	"<field var='os_version'><value>10.5.1</value></field>"
	"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
	"<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>"
	"<field var='os'><value>Mac</value></field>"
	"<field var='software'><value>Psi</value></field>"
	"<field var='software_version'><value>0.11</value></field>"
	"</x></query>";

static bool verify(const char *hash, const char *ver, const char *xml)
{
	int err;
	struct xtree *t = xtree_parse(xml, strlen(xml), NULL, NULL, &err);
	bool ok;

	assert_non_null(t);
	ok = sm_caps_verify(hash, ver, xtree_root(t));
	xtree_free(t);
	return ok;
}

static void test_published_examples(void **state)
{
	(void)state;
	assert_true(verify("sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", simple));
	assert_true(verify("sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", complex_));
}

static void test_mismatch_and_unknown_hash(void **state)
{
	(void)state;
	/* Another answer's ver, or the right ver under another hash name. */
	assert_false(verify("sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", simple));
	assert_false(verify("sha-256", "QgayPKawpkPSDYmwT/WM94uAlu0=", simple));
	assert_false(verify("md5", "QgayPKawpkPSDYmwT/WM94uAlu0=", simple));
	assert_false(verify("sha-1", "", simple));
}

static void test_ill_formed_answers(void **state)
{
	static const char dup_feature[] =
		"<query " DISCO "><identity category='client' name='Exodus 0.9.1' type='pc'/>"
		F("http://jabber.org/protocol/caps") F("http://jabber.org/protocol/caps")
		"</query>";
	static const char dup_identity[] =
		"<query " DISCO "><identity category='client' name='x' type='pc'/>"
		"<identity category='client' name='x' type='pc'/></query>";
	static const char dup_form[] =
		"<query " DISCO "><x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x></query>";

	(void)state;
	/* §5.4 3.3-3.5: whatever ver they claim, they are not trusted. */
	assert_false(verify("sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", dup_feature));
	assert_false(verify("sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", dup_identity));
	assert_false(verify("sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", dup_form));
}

static void test_form_without_form_type_ignored(void **state)
{
	/* §5.4 3.6: a form with no hidden FORM_TYPE is left out of S. */
	static const char extra[] =
		"<query " DISCO "><identity category='client' name='Exodus 0.9.1' type='pc'/>"
		F("http://jabber.org/protocol/caps") F("http://jabber.org/protocol/disco#info")
		F("http://jabber.org/protocol/disco#items") F("http://jabber.org/protocol/muc")
		"<x xmlns='jabber:x:data' type='result'><field var='os'><value>Mac</value></field>"
		"</x></query>";

	(void)state;
	assert_true(verify("sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", extra));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_published_examples),
		cmocka_unit_test(test_mismatch_and_unknown_hash),
		cmocka_unit_test(test_ill_formed_answers),
		cmocka_unit_test(test_form_without_form_type_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
