/*
 * test_sm_roster — the session server's roster, subscriptions and presence
 * routing (RFC 6121 §2, §3, §4), driven the way an edge drives it
 * (tests/unit/sm_harness.h): roster set/remove, errors and versions,
 * subscription handshakes online and offline (pending-in), pre-approval,
 * directed presence.
 */
#include "tests/unit/sm_harness.h"

/* ---- roster and subscriptions (RFC 6121 §2, §3, §4) ---------------------- */

/*
 * Read n stanzas for sid on t, in any order: each pattern (substrings
 * separated by '|') must match a different one of them; then nothing more.
 */
static void expect_stanzas(struct tlink *t, uint64_t sid, int n, const char *const *pats)
{
	char raws[8][4096];
	bool used[8] = { false };

	assert_true(n <= 8);
	for (int i = 0; i < n; i++)
		expect_stanza(t, sid, raws[i], sizeof(raws[i]));
	for (int p = 0; p < n; p++) {
		bool found = false;

		for (int i = 0; i < n && !found; i++) {
			char pat[1024], *save = NULL, *tok;
			bool all = true;

			if (used[i])
				continue;
			snprintf(pat, sizeof(pat), "%s", pats[p]);
			for (tok = strtok_r(pat, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
				if (!strstr(raws[i], tok))
					all = false;
			if (all)
				used[i] = found = true;
		}
		if (!found) {
			for (int i = 0; i < n; i++)
				print_message("got: %s\n", raws[i]);
			fail_msg("no stanza matches %s", pats[p]);
		}
	}
	expect_quiet(t);
}

static void expect_one(struct tlink *t, uint64_t sid, const char *pat)
{
	expect_stanzas(t, sid, 1, &pat);
}

static void roster_get(struct tlink *t, uint64_t sid, const char *jid, const char *ver)
{
	char raw[512];

	if (ver)
		snprintf(raw, sizeof(raw), "<iq type='get' id='g'><query xmlns='jabber:iq:roster' "
			 "ver='%s'/></iq>", ver);
	else
		snprintf(raw, sizeof(raw), "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
	stanza(t, sid, WIRE_KIND_IQ, "get", "", jid, "g", "jabber:iq:roster", raw);
}

static void roster_set(struct tlink *t, uint64_t sid, const char *jid, const char *id,
		       const char *items)
{
	char raw[2048];

	snprintf(raw, sizeof(raw), "<iq type='set' id='%s'><query xmlns='jabber:iq:roster'>%s"
		 "</query></iq>", id, items);
	stanza(t, sid, WIRE_KIND_IQ, "set", "", jid, id, "jabber:iq:roster", raw);
}

static void sub(struct tlink *t, uint64_t sid, const char *jid, const char *type, const char *to)
{
	char raw[512];

	snprintf(raw, sizeof(raw), "<presence type='%s' to='%s' id='%s1'/>", type, to, type);
	stanza(t, sid, WIRE_KIND_PRESENCE, type, to, jid, "", "", raw);
}

static void avail(struct tlink *t, uint64_t sid, const char *jid)
{
	char raw[512];

	snprintf(raw, sizeof(raw), "<presence from='%s'/>", jid);
	stanza(t, sid, WIRE_KIND_PRESENCE, "", "", jid, "", "", raw);
}

static void test_roster_set_remove(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0];
	char ja[256], raw[4096], out[4096];
	struct wire_msg m;

	hello(a, 0, "s3cret");
	expect_frame(a, &m, WIRE_HELLO_OK);
	add_user(e, "alice@localhost", "alicepass");
	add_user(e, "bob@localhost", "bobpass");
	login(a, 1, "alice", "a", ja);

	/* §2.6: a versioning client with no version gets the whole (empty) roster. */
	roster_get(a, 1, ja, "");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='g' to='alice@localhost/a'>"
				 "<query xmlns='jabber:iq:roster' ver='0'></query></iq>");

	/* §2.3: add with groups: result, then a push with the new version;
	 * the subscription attribute of a set is ignored (§2.1.2.5). */
	roster_set(a, 1, ja, "s1", "<item jid='Carol@LOCALHOST' name='C &amp; co' "
		   "subscription='both'><group>Friends</group><group>Work</group></item>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='s1' to='alice@localhost/a'/>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<iq type='set' id='push"));
	assert_non_null(strstr(raw, "<query xmlns='jabber:iq:roster' ver='1'><item "
				    "jid='carol@localhost' name='C &amp; co' subscription='none'>"
				    "<group>Friends</group><group>Work</group></item></query></iq>"));
	expect_quiet(a);

	/* §2.3.3 errors. */
	roster_set(a, 1, ja, "e1", "<item jid='x@localhost'/><item jid='y@localhost'/>");
	expect_one(a, 1, "type='error' id='e1'|<bad-request ");
	roster_set(a, 1, ja, "e2", "<item jid='x@localhost'><group>G</group><group>G</group></item>");
	expect_one(a, 1, "type='error' id='e2'|type='modify'|<bad-request ");
	roster_set(a, 1, ja, "e3", "<item jid='x@localhost'><group></group></item>");
	expect_one(a, 1, "type='error' id='e3'|<not-acceptable ");
	{
		/* Over the limits: a 1024-byte name, a 1024-byte group (§2.3.3). */
		char big[1100], item[1300];

		memset(big, 'n', 1024);
		big[1024] = '\0';
		snprintf(item, sizeof(item), "<item jid='x@localhost' name='%s'/>", big);
		roster_set(a, 1, ja, "e7", item);
		expect_one(a, 1, "type='error' id='e7'|<not-acceptable ");
		snprintf(item, sizeof(item), "<item jid='x@localhost'><group>%s</group></item>", big);
		roster_set(a, 1, ja, "e8", item);
		expect_one(a, 1, "type='error' id='e8'|<not-acceptable ");
		roster_set(a, 1, ja, "e9", "");
		expect_one(a, 1, "type='error' id='e9'|<bad-request ");
	}
	roster_set(a, 1, ja, "e4", "<item jid='@@'/>");
	expect_one(a, 1, "type='error' id='e4'|<jid-malformed ");
	roster_set(a, 1, ja, "e5", "<item jid='nobody@localhost' subscription='remove'/>");
	expect_one(a, 1, "type='error' id='e5'|type='cancel'|<item-not-found ");
	/* Another account's roster: forbidden. */
	stanza(a, 1, WIRE_KIND_IQ, "set", "bob@localhost", ja, "e6", "jabber:iq:roster",
	       "<iq type='set' id='e6' to='bob@localhost'><query xmlns='jabber:iq:roster'>"
	       "<item jid='x@localhost'/></query></iq>");
	expect_one(a, 1, "type='error' id='e6'|type='auth'|<forbidden ");

	/* Update: groups replaced, name dropped. */
	roster_set(a, 1, ja, "s2", "<item jid='carol@localhost'><group>Work</group></item>");
	expect_stanzas(a, 1, 2, (const char *const[]){
		"<iq type='result' id='s2'",
		"ver='2'><item jid='carol@localhost' subscription='none'><group>Work</group></item>" });

	/* §2.6.3: the current version gets an empty result, an old one the roster. */
	roster_get(a, 1, ja, "2");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='g' to='alice@localhost/a'/>");
	roster_get(a, 1, ja, "1");
	expect_one(a, 1, "ver='2'><item jid='carol@localhost' subscription='none'>");

	/* Stored, groups '\n'-joined. */
	admin(e, out, sizeof(out), "roster list alice@localhost");
	assert_string_equal(out, "carol@localhost none\nok\n");

	/* §2.5: remove: result and a push of subscription='remove'. */
	roster_set(a, 1, ja, "r1", "<item jid='carol@localhost' subscription='remove'/>");
	expect_stanzas(a, 1, 2, (const char *const[]){
		"<iq type='result' id='r1'",
		"ver='3'><item jid='carol@localhost' subscription='remove'/>" });
	admin(e, out, sizeof(out), "roster list alice@localhost");
	assert_string_equal(out, "roster is empty\nok\n");

	/* A get without ver: the whole roster, with its version (§2.1.3). */
	roster_get(a, 1, ja, NULL);
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='g' to='alice@localhost/a'>"
				 "<query xmlns='jabber:iq:roster' ver='3'></query></iq>");

	/* The version is stored: after a new login (record read again) the
	 * last version is still current; a change by the admin is a new one. */
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 1 };
	m.u.close.reason = WIRE_CLOSE_NORMAL;
	send_frame(a, &m);
	expect_quiet(a);
	login(a, 1, "alice", "a", ja);
	roster_get(a, 1, ja, "3");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='g' to='alice@localhost/a'/>");
	admin_ok(e, "roster add %s %s %s", "alice@localhost", "dave@localhost", "none");
	expect_one(a, 1, "ver='4'><item jid='dave@localhost' subscription='none'/>");
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 1 };
	m.u.close.reason = WIRE_CLOSE_NORMAL;
	send_frame(a, &m);
	expect_quiet(a);
	login(a, 1, "alice", "a", ja);
	roster_get(a, 1, ja, "3");
	expect_one(a, 1, "<query xmlns='jabber:iq:roster' ver='4'><item jid='dave@localhost'");
}

/* Alice and bob online, available, interested; empty rosters. */
static void two_strangers(struct env *e, char *ja, char *jb)
{
	struct tlink *a = e->l[0], *b = e->l[1];
	struct wire_msg m;

	for (int i = 0; i < 2; i++) {
		hello(e->l[i], (uint16_t)i, "s3cret");
		expect_frame(e->l[i], &m, WIRE_HELLO_OK);
	}
	add_user(e, "alice@localhost", "alicepass");
	add_user(e, "bob@localhost", "bobpass");
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);
	roster_get(a, 1, ja, NULL);
	roster_get(b, 2, jb, NULL);
	avail(a, 1, ja);
	avail(b, 2, jb);
	drain(a);
	drain(b);
}

static void test_subscription_online(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], out[4096];

	two_strangers(e, ja, jb);

	/* §3.1.2: alice asks: her push shows ask; bob gets it from her bare JID. */
	sub(a, 1, ja, "subscribe", "bob@localhost");
	expect_one(a, 1, "<item jid='bob@localhost' subscription='none' ask='subscribe'/>");
	expect_one(b, 2, "type='subscribe'|from='alice@localhost'|to='bob@localhost'|id='subscribe1'");
	/* §3.1.3 Security Warning: no roster item for bob before he approves. */
	expect_quiet(b);

	/* §3.1.5: bob approves: his push shows from; alice gets the approval,
	 * her push shows to, and then bob's presence. */
	sub(b, 2, jb, "subscribed", "alice@localhost");
	expect_one(b, 2, "<item jid='alice@localhost' subscription='from'/>");
	expect_stanzas(a, 1, 3, (const char *const[]){
		"type='subscribed'|from='bob@localhost'",
		"<item jid='bob@localhost' subscription='to'/>",
		"<presence |from='bob@localhost/b'|to='alice@localhost'" });

	/* Bob subscribes back, alice approves: both. */
	sub(b, 2, jb, "subscribe", "alice@localhost");
	expect_one(b, 2, "<item jid='alice@localhost' subscription='from' ask='subscribe'/>");
	expect_one(a, 1, "type='subscribe'|from='bob@localhost'");
	sub(a, 1, ja, "subscribed", "bob@localhost");
	expect_one(a, 1, "<item jid='bob@localhost' subscription='both'/>");
	expect_stanzas(b, 2, 3, (const char *const[]){
		"type='subscribed'|from='alice@localhost'",
		"<item jid='alice@localhost' subscription='both'/>",
		"<presence |from='alice@localhost/a'|to='bob@localhost'" });
	admin(e, out, sizeof(out), "roster list alice@localhost");
	assert_string_equal(out, "bob@localhost both\nok\n");

	/* Presence now flows both ways. */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "",
	       "<presence from='alice@localhost/a'><show>away</show></presence>");
	expect_one(b, 2, "from='alice@localhost/a'|<show>away</show>");
	drain(a);

	/* §4.3: a probe from a subscriber is answered; from a stranger:
	 * "unsubscribed" and nothing else. */
	stanza(b, 2, WIRE_KIND_PRESENCE, "probe", "alice@localhost", jb, "", "",
	       "<presence type='probe' to='alice@localhost'/>");
	expect_one(b, 2, "from='alice@localhost/a'|to='bob@localhost/b'|<show>away</show>");

	/* §2.5: alice removes bob: bob hears her go, is unsubscribed both ways,
	 * his row ends at none; alice gets the remove push and bob's unavailable. */
	roster_set(a, 1, ja, "r1", "<item jid='bob@localhost' subscription='remove'/>");
	expect_stanzas(b, 2, 5, (const char *const[]){
		"type='unavailable'|from='alice@localhost/a'",
		"type='unsubscribe'|from='alice@localhost'",
		"<item jid='alice@localhost' subscription='to'/>",
		"type='unsubscribed'|from='alice@localhost'",
		"<item jid='alice@localhost' subscription='none'/>" });
	expect_stanzas(a, 1, 3, (const char *const[]){
		"<item jid='bob@localhost' subscription='remove'/>",
		"<iq type='result' id='r1'",
		"type='unavailable'|from='bob@localhost/b'" });
	admin(e, out, sizeof(out), "roster list bob@localhost");
	assert_string_equal(out, "alice@localhost none\nok\n");
	stanza(b, 2, WIRE_KIND_PRESENCE, "probe", "alice@localhost", jb, "", "",
	       "<presence type='probe' to='alice@localhost'/>");
	expect_one(b, 2, "type='unsubscribed'|from='alice@localhost'|to='bob@localhost/b'");
	/* No such account: the same answer (probes reveal no accounts). */
	stanza(b, 2, WIRE_KIND_PRESENCE, "probe", "nobody@localhost", jb, "", "",
	       "<presence type='probe' to='nobody@localhost'/>");
	expect_one(b, 2, "type='unsubscribed'|from='nobody@localhost'|to='bob@localhost/b'");
}

static void test_subscription_offline(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096], out[4096];
	struct wire_msg m;

	for (int i = 0; i < 2; i++) {
		hello(e->l[i], (uint16_t)i, "s3cret");
		expect_frame(e->l[i], &m, WIRE_HELLO_OK);
	}
	add_user(e, "alice@localhost", "alicepass");
	add_user(e, "bob@localhost", "bobpass");
	login(a, 1, "alice", "a", ja);
	roster_get(a, 1, ja, NULL);
	avail(a, 1, ja);
	drain(a);

	/* Bob is not in memory: the request waits for his record, is kept. */
	sub(a, 1, ja, "subscribe", "bob@localhost");
	expect_one(a, 1, "<item jid='bob@localhost' subscription='none' ask='subscribe'/>");
	/* A request to nobody is silently ignored there (§8.5.1): the user's
	 * side keeps asking. */
	sub(a, 1, ja, "subscribe", "nobody@localhost");
	expect_one(a, 1, "<item jid='nobody@localhost' subscription='none' ask='subscribe'/>");
	/* Kept, but not in his roster (§3.1.3 Security Warning). */
	admin(e, out, sizeof(out), "roster list bob@localhost");
	assert_string_equal(out, "roster is empty\nok\n");

	/* Bob logs in: the roster shows nothing (no item before approval);
	 * the request comes at his initial presence, and again next time. */
	for (int round = 0; round < 2; round++) {
		login(b, 2, "bob", "b", jb);
		roster_get(b, 2, jb, NULL);
		expect_stanza(b, 2, raw, sizeof(raw));
		assert_string_equal(raw, "<iq type='result' id='g' to='bob@localhost/b'>"
					 "<query xmlns='jabber:iq:roster' ver='1'></query></iq>");
		avail(b, 2, jb);
		expect_stanzas(b, 2, 2, (const char *const[]){
			"from='bob@localhost/b'|to='bob@localhost'",
			"type='subscribe'|from='alice@localhost'|to='bob@localhost'" });
		if (round == 0) {
			m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 2 };
			m.u.close.reason = WIRE_CLOSE_NORMAL;
			send_frame(b, &m);
			expect_quiet(b);
		}
	}
	/* Approved: the request is answered and never comes again. */
	sub(b, 2, jb, "subscribed", "alice@localhost");
	expect_one(b, 2, "<item jid='alice@localhost' subscription='from'/>");
	expect_stanzas(a, 1, 3, (const char *const[]){
		"type='subscribed'|from='bob@localhost'",
		"<item jid='bob@localhost' subscription='to'/>",
		"from='bob@localhost/b'|to='alice@localhost'" });
	stanza(b, 2, WIRE_KIND_PRESENCE, "unavailable", "", jb, "", "",
	       "<presence type='unavailable' from='bob@localhost/b'/>");
	drain(b);
	expect_one(a, 1, "type='unavailable'|from='bob@localhost/b'");
	/* §4.3.2: a subscriber's probe to an account with no available
	 * resource gets no reply (no last unavailable presence is kept). */
	stanza(a, 1, WIRE_KIND_PRESENCE, "probe", "bob@localhost", ja, "", "",
	       "<presence type='probe' to='bob@localhost'/>");
	expect_quiet(a);
	avail(b, 2, jb);
	/* Bob (from) does not see alice; alice (to) sees him. */
	expect_one(b, 2, "from='bob@localhost/b'|to='bob@localhost'");
	expect_one(a, 1, "from='bob@localhost/b'|to='alice@localhost'");
}

static void test_pre_approval(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256];

	two_strangers(e, ja, jb);
	/* §3.4: bob approves before alice asks: the item shows approved;
	 * her request is then answered by the server at once. */
	sub(b, 2, jb, "subscribed", "alice@localhost");
	expect_one(b, 2, "<item jid='alice@localhost' subscription='none' approved='true'/>");
	expect_quiet(a);
	sub(a, 1, ja, "subscribe", "bob@localhost");
	expect_stanzas(a, 1, 4, (const char *const[]){
		"<item jid='bob@localhost' subscription='none' ask='subscribe'/>",
		"type='subscribed'|from='bob@localhost'",
		"<item jid='bob@localhost' subscription='to'/>",
		"from='bob@localhost/b'|to='alice@localhost'" });
	expect_one(b, 2, "<item jid='alice@localhost' subscription='from'/>");
}

static void test_directed_presence(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256];
	struct wire_msg m;

	two_strangers(e, ja, jb);
	/* §4.6: alice sends bob (not subscribed) directed presence: he gets
	 * it, and her unavailable broadcast reaches him too (§4.6.3). */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "bob@localhost/b", ja, "", "",
	       "<presence to='bob@localhost/b' from='alice@localhost/a'><show>dnd</show></presence>");
	expect_one(b, 2, "<show>dnd</show>");
	stanza(a, 1, WIRE_KIND_PRESENCE, "unavailable", "", ja, "", "",
	       "<presence type='unavailable' from='alice@localhost/a'><status>bye</status>"
	       "</presence>");
	drain(a);
	expect_one(b, 2, "type='unavailable'|from='alice@localhost/a'|to='bob@localhost/b'|"
			 "<status>bye</status>");

	/* Again, and the session ends without saying so: same. */
	avail(a, 1, ja);
	drain(a);
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "bob@localhost", ja, "", "",
	       "<presence to='bob@localhost' from='alice@localhost/a'/>");
	expect_one(b, 2, "from='alice@localhost/a'");
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 1 };
	m.u.close.reason = WIRE_CLOSE_NORMAL;
	send_frame(a, &m);
	expect_one(b, 2, "type='unavailable'|from='alice@localhost/a'|to='bob@localhost'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roster_set_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscription_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscription_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pre_approval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directed_presence, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
