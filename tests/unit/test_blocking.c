/*
 * test_blocking — sm/blocking.c: the JID matching rules a blocklist item
 * follows (XEP-0191 §6 -> XEP-0016 §2.1), and sm_blocking_has() over a list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sm/sm_int.h"

static void test_full_item(void **state)
{
	(void)state;
	assert_true(sm_blocking_match("romeo@montague.net/orchard", "romeo@montague.net/orchard"));
	assert_false(sm_blocking_match("romeo@montague.net/orchard", "romeo@montague.net/garden"));
	assert_false(sm_blocking_match("romeo@montague.net/orchard", "romeo@montague.net"));
	assert_false(sm_blocking_match("romeo@montague.net/orchard", "montague.net"));
}

static void test_bare_item(void **state)
{
	(void)state;
	assert_true(sm_blocking_match("romeo@montague.net", "romeo@montague.net"));
	assert_true(sm_blocking_match("romeo@montague.net", "romeo@montague.net/orchard"));
	/* a resource that looks like a JID changes nothing */
	assert_true(sm_blocking_match("romeo@montague.net", "romeo@montague.net/x@y/z"));
	assert_false(sm_blocking_match("romeo@montague.net", "romeo@montague.network"));
	assert_false(sm_blocking_match("romeo@montague.net", "romeox@montague.net"));
	assert_false(sm_blocking_match("romeo@montague.net", "montague.net"));
	assert_false(sm_blocking_match("romeo@montague.net", "juliet@capulet.com/romeo@montague.net"));
}

static void test_domain_resource_item(void **state)
{
	(void)state;
	assert_true(sm_blocking_match("montague.net/bot", "montague.net/bot"));
	assert_false(sm_blocking_match("montague.net/bot", "romeo@montague.net/bot"));
	assert_false(sm_blocking_match("montague.net/bot", "montague.net"));
}

static void test_domain_item(void **state)
{
	(void)state;
	assert_true(sm_blocking_match("montague.net", "montague.net"));
	assert_true(sm_blocking_match("montague.net", "montague.net/bot"));
	assert_true(sm_blocking_match("montague.net", "romeo@montague.net"));
	assert_true(sm_blocking_match("montague.net", "romeo@montague.net/orchard"));
	assert_true(sm_blocking_match("montague.net", "romeo@montague.net/a@other.org"));
	assert_false(sm_blocking_match("montague.net", "chat.montague.net"));
	assert_false(sm_blocking_match("montague.net", "romeo@chat.montague.net"));
	assert_false(sm_blocking_match("montague.net", "montague.net.evil"));
	assert_false(sm_blocking_match("montague.net", "capulet.com/montague.net"));
	assert_false(sm_blocking_match("montague.net", "montague.net@capulet.com"));
}

static void test_has(void **state)
{
	char *items[] = { "iago@shakespeare.lit", "evil.example" };
	struct sm_user u = { .blocked = items, .nblocked = 2 };

	(void)state;
	assert_true(sm_blocking_has(&u, "iago@shakespeare.lit/x"));
	assert_true(sm_blocking_has(&u, "anyone@evil.example/r"));
	assert_false(sm_blocking_has(&u, "romeo@shakespeare.lit"));
	assert_false(sm_blocking_has(NULL, "iago@shakespeare.lit"));
	assert_true(sm_blocking_between(&u, "me@x", NULL, "iago@shakespeare.lit"));
	assert_true(sm_blocking_between(NULL, "a@evil.example/r", &u, "me@x"));
	assert_false(sm_blocking_between(NULL, "a@good.example/r", &u, "me@x"));
	u.nblocked = 0;
	assert_false(sm_blocking_between(&u, "me@x", &u, "iago@shakespeare.lit"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_item),
		cmocka_unit_test(test_bare_item),
		cmocka_unit_test(test_domain_resource_item),
		cmocka_unit_test(test_domain_item),
		cmocka_unit_test(test_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
