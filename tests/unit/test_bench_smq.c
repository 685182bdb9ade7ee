/*
 * test_bench_smq — bench/smq.c, the client side of XEP-0198: what counts as a
 * stanza, the copies kept until the server's h covers them (and what a
 * resumption sends again), an h past what was sent refused and harmless,
 * the count's wrap at 2^32, the copies' bound, and the reading of
 * <enabled/>, <a/> and <resumed/> (ids that cannot be echoed are refused).
 * Includes the .c under test (the bench is not in libxedge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/smq.c"

static void sent(struct smq *q, const char *s)
{
	assert_int_equal(smq_sent(q, s, strlen(s)), 0);
}

static void assert_again(const struct smq *q, const char *want)
{
	size_t n;
	const uint8_t *p = smq_bytes(q, &n);

	assert_int_equal(n, strlen(want));
	if (n)
		assert_memory_equal(p, want, n);
	else
		assert_null(p);
}

static void test_stanzas(void **state)
{
	(void)state;
	assert_true(smq_is_stanza("<message to='a'/>", 17));
	assert_true(smq_is_stanza("<presence/>", 11));
	assert_true(smq_is_stanza("<iq type='get' id='x'/>", 23));
	assert_true(smq_is_stanza("<iq>", 4));
	assert_false(smq_is_stanza("<r xmlns='urn:xmpp:sm:3'/>", 26));
	assert_false(smq_is_stanza("<a xmlns='urn:xmpp:sm:3' h='1'/>", 32));
	assert_false(smq_is_stanza("<enable xmlns='urn:xmpp:sm:3'/>", 31));
	assert_false(smq_is_stanza(" ", 1));
	assert_false(smq_is_stanza("</stream:stream>", 16));
	assert_false(smq_is_stanza("<iqx/>", 6));
	assert_false(smq_is_stanza("<messages/>", 11));
	assert_false(smq_is_stanza("<iq", 3));
}

static void test_copies_until_acked(void **state)
{
	struct smq *q = smq_new(true);

	(void)state;
	sent(q, "<message id='1'/>");
	sent(q, "<presence/>");
	sent(q, "<iq id='3'/>");
	assert_int_equal(smq_unacked(q), 3);
	assert_int_equal(q->since_r, 3);
	assert_again(q, "<message id='1'/><presence/><iq id='3'/>");
	assert_int_equal(smq_ack(q, 0), 0);        /* nothing new */
	assert_int_equal(smq_ack(q, 2), 0);
	assert_again(q, "<iq id='3'/>");
	assert_int_equal(smq_unacked(q), 1);
	/* an h past what was sent: refused, nothing changed (XEP-0198 §4) */
	assert_int_equal(smq_ack(q, 4), -1);
	assert_int_equal(smq_unacked(q), 1);
	assert_again(q, "<iq id='3'/>");
	/* an h behind the last one is "past what was sent" modulo 2^32 */
	assert_int_equal(smq_ack(q, 1), -1);
	sent(q, "<message id='4'/>");
	assert_int_equal(smq_ack(q, 4), 0);
	assert_again(q, "");
	assert_int_equal(smq_unacked(q), 0);
	/* many, the ring grows and wraps */
	for (int i = 0; i < 100; i++)
		sent(q, "<presence/>");
	assert_int_equal(smq_ack(q, 4 + 97), 0);
	assert_again(q, "<presence/><presence/><presence/>");
	for (int i = 0; i < 40; i++)
		sent(q, "<iq/>");
	assert_int_equal(smq_ack(q, 4 + 100), 0);
	assert_int_equal(smq_unacked(q), 40);
	assert_int_equal(smq_bytes(q, &(size_t){ 0 }) != NULL, 1);
	smq_free(q);
}

static void test_wrap_and_acks_only(void **state)
{
	struct smq *q = smq_new(false);

	(void)state;
	q->sent = q->acked = UINT32_MAX - 1;
	sent(q, "<message/>");
	sent(q, "<message/>");
	sent(q, "<message/>");
	assert_int_equal(q->sent, 1);
	assert_int_equal(smq_unacked(q), 3);
	assert_again(q, "");                       /* acks only: nothing kept */
	assert_int_equal(smq_ack(q, 0), 0);        /* 2^32 - 1 + 1 */
	assert_int_equal(smq_unacked(q), 1);
	assert_int_equal(smq_ack(q, 2), -1);
	assert_int_equal(smq_ack(q, 1), 0);
	smq_free(q);
}

static void test_bound(void **state)
{
	struct smq *q = smq_new(true);
	char *big = malloc(1u << 20);

	(void)state;
	memset(big, 'x', 1u << 20);
	memcpy(big, "<message>", 9);
	for (int i = 0; i < 8; i++)
		assert_int_equal(smq_sent(q, big, 1u << 20), 0);
	assert_int_equal(smq_sent(q, big, 1), -1);   /* past SMQ_BYTES_MAX */
	assert_int_equal(smq_ack(q, 8), 0);
	assert_again(q, "");
	free(big);
	smq_free(q);
}

static void test_enabled_and_resumed(void **state)
{
	struct smq *q = smq_new(true);
	static const char en[] = "<enabled xmlns='urn:xmpp:sm:3' id='ab.c-1/+=' resume='true' max='300'/>";
	uint32_t h = 7;

	(void)state;
	sent(q, "<presence/>");
	smq_enabled(q, en, strlen(en));
	assert_true(q->resumable && q->keep);
	assert_string_equal(q->id, "ab.c-1/+=");
	assert_int_equal(q->max, 300);
	assert_true(smq_previd_is(q, "<resumed h='1' previd='ab.c-1/+='/>", 35));
	assert_false(smq_previd_is(q, "<resumed h='1' previd='ab.c-1/+'/>", 34));
	assert_false(smq_previd_is(q, "<resumed h='1'/>", 16));
	assert_int_equal(smq_attr_u32("<a xmlns='urn:xmpp:sm:3' h=\"42\"/>", 32, "h", &h), 0);
	assert_int_equal(h, 42);
	assert_int_equal(smq_attr_u32("<a h='4294967295'/>", 19, "h", &h), 0);
	assert_int_equal(h, UINT32_MAX);
	assert_int_equal(smq_attr_u32("<a h='4294967296'/>", 19, "h", &h), -1);
	assert_int_equal(smq_attr_u32("<a h='-1'/>", 11, "h", &h), -1);
	assert_int_equal(smq_attr_u32("<a h=''/>", 9, "h", &h), -1);
	assert_int_equal(smq_attr_u32("<a/>", 4, "h", &h), -1);
	/* a value that only looks like the attribute: quoted text is skipped whole */
	assert_int_equal(smq_attr_u32("<a x=\" h='5'\"/>", 15, "h", &h), -1);
	smq_free(q);

	/* no resume='true', or an id we could not echo: not resumable, copies dropped */
	static const char *const no[] = {
		"<enabled xmlns='urn:xmpp:sm:3'/>",
		"<enabled xmlns='urn:xmpp:sm:3' id='x' resume='false'/>",
		"<enabled xmlns='urn:xmpp:sm:3' resume='true'/>",
		"<enabled xmlns='urn:xmpp:sm:3' id='' resume='true'/>",
		"<enabled xmlns='urn:xmpp:sm:3' id=\"a'b\" resume='true'/>",
		"<enabled xmlns='urn:xmpp:sm:3' id='a&amp;b' resume='true'/>",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		q = smq_new(true);
		sent(q, "<presence/>");
		smq_enabled(q, no[i], strlen(no[i]));
		assert_false(q->resumable);
		assert_false(q->keep);
		assert_again(q, "");
		assert_int_equal(smq_unacked(q), 1);   /* still counted for acks */
		smq_free(q);
	}
	/* an id longer than we echo */
	char longid[SMQ_ID_MAX + 64];
	int n = snprintf(longid, sizeof(longid), "<enabled id='%0*d' resume='1'/>", SMQ_ID_MAX + 1, 0);
	q = smq_new(true);
	smq_enabled(q, longid, (size_t)n);
	assert_false(q->resumable);
	smq_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stanzas),
		cmocka_unit_test(test_copies_until_acked),
		cmocka_unit_test(test_wrap_and_acks_only),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_enabled_and_resumed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
