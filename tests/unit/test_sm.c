/*
 * test_sm — the session server driven the way an edge drives it
 * (tests/unit/sm_harness.h): hello and credentials, binds, presence,
 * messages and flow control, offline storage, iq, conflicts, link loss,
 * registration, malformed frames, listeners.  The roster, subscription and
 * presence-routing tests are in test_sm_roster.c.
 */
#include "tests/unit/sm_harness.h"

/* ---- tests ------------------------------------------------------------- */

static void test_hello_secret(void **state)
{
	struct env *e = *state;
	struct wire_msg m;

	hello(e->l[0], 0, "wrong");
	assert_int_equal(recv_frame(e->l[0], &m, WAIT_MS), -1);   /* closed */
	/* A frame before HELLO closes the link too. */
	m = (struct wire_msg){ .type = WIRE_PING };
	send_frame(e->l[1], &m);
	assert_int_equal(recv_frame(e->l[1], &m, WAIT_MS), -1);
	hello(e->l[2], 2, "s3cret");
	expect_frame(e->l[2], &m, WIRE_HELLO_OK);
	expect_quiet(e->l[2]);
}

static void test_credentials(void **state)
{
	struct env *e = *state;
	struct wire_msg m = { .type = WIRE_CRED_REQ, .sid = 7 };
	char out[1024];

	hello(e->l[0], 0, "s3cret");
	expect_frame(e->l[0], &m, WIRE_HELLO_OK);
	add_user(e, "Alice@LocalHost", "pw");
	admin(e, out, sizeof(out), "user add alice@localhost 00 1 %040d %040d %064d %d %064d %064d",
	      0, 0, 0, 1, 0, 0);
	assert_non_null(strstr(out, "error: user exists"));

	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 7 };
	m.u.cred_req.user = wire_s("ALICE", 5);     /* canonicalised: alice */
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_CRED_RESP);
	assert_int_equal(m.sid, 7);
	assert_int_equal(m.u.cred_resp.status, WIRE_OK);
	assert_int_equal(m.u.cred_resp.sha1.iter, 4096);
	assert_int_equal(m.u.cred_resp.sha1.salt_len, 16);
	assert_int_equal(m.u.cred_resp.sha1.key_len, 20);
	assert_memory_equal(m.u.cred_resp.sha1.salt, e->salt1, 16);
	assert_memory_equal(m.u.cred_resp.sha1.stored_key, e->stored1, 20);
	assert_memory_equal(m.u.cred_resp.sha1.server_key, e->server1, 20);
	assert_int_equal(m.u.cred_resp.sha256.key_len, 32);
	assert_memory_equal(m.u.cred_resp.sha256.salt, e->salt256, 16);
	assert_memory_equal(m.u.cred_resp.sha256.stored_key, e->stored256, 32);
	assert_memory_equal(m.u.cred_resp.sha256.server_key, e->server256, 32);

	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 8 };
	m.u.cred_req.user = wire_s("nobody", 6);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.status, WIRE_NO_USER);

	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 9 };
	m.u.cred_req.user = wire_s("alice", 5);
	m.u.cred_req.domain = wire_s("example.org", 11);   /* not served */
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.status, WIRE_NO_USER);

	admin(e, out, sizeof(out), "user add carol@example.org 00 1 %040d %040d %064d %d %064d %064d",
	      0, 0, 0, 1, 0, 0);
	assert_non_null(strstr(out, "error: this server does not serve"));
}

static void test_bind_rules(void **state)
{
	struct env *e = *state;
	struct wire_msg m;
	char jid[256];

	hello(e->l[0], 0, "s3cret");
	expect_frame(e->l[0], &m, WIRE_HELLO_OK);
	add_user(e, "alice@localhost", "pw");
	/* Bind before authentication: not allowed. */
	m = (struct wire_msg){ .type = WIRE_SESSION_OPEN, .sid = 1 };
	send_frame(e->l[0], &m);
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 1 };
	m.u.bind_req.user = wire_s("alice", 5);
	m.u.bind_req.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_BIND_RESP);
	assert_int_equal(m.u.bind_resp.status, WIRE_NOT_ALLOWED);
	/* Authenticated as alice, binding as bob: not allowed. */
	m = (struct wire_msg){ .type = WIRE_AUTHED, .sid = 1 };
	m.u.authed.user = wire_s("alice", 5);
	m.u.authed.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 1 };
	m.u.bind_req.user = wire_s("bob", 3);
	m.u.bind_req.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_BIND_RESP);
	assert_int_equal(m.u.bind_resp.status, WIRE_NOT_ALLOWED);
	/* A resource with a control character: bad request. */
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 1 };
	m.u.bind_req.user = wire_s("alice", 5);
	m.u.bind_req.domain = wire_s("localhost", 9);
	m.u.bind_req.resource = wire_s("a\x01" "b", 3);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_BIND_RESP);
	assert_int_equal(m.u.bind_resp.status, WIRE_BAD_REQUEST);
	/* Empty resource: one is generated. */
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 1 };
	m.u.bind_req.user = wire_s("alice", 5);
	m.u.bind_req.domain = wire_s("localhost", 9);
	send_frame(e->l[0], &m);
	expect_frame(e->l[0], &m, WIRE_BIND_RESP);
	assert_int_equal(m.u.bind_resp.status, WIRE_OK);
	assert_int_equal(m.u.bind_resp.jid.len, strlen("alice@localhost/") + 12);
	assert_memory_equal(m.u.bind_resp.jid.p, "alice@localhost/", 16);
	/* Sessions list shows it. */
	login(e->l[0], 2, "alice", "Desk Top", jid);
	assert_string_equal(jid, "alice@localhost/Desk Top");
	{
		char out[4096];

		admin(e, out, sizeof(out), "sessions");
		assert_non_null(strstr(out, "alice@localhost/Desk Top 127.0.0.1:40000 link="));
		assert_non_null(strstr(out, " unavailable\n"));
	}
}

static void test_presence(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096];

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);

	/* Bob's initial presence: alice has not sent any, so only bob's own
	 * resource (himself) hears it. */
	stanza(b, 2, WIRE_KIND_PRESENCE, "", "", jb, "", "",
	       "<presence from='bob@localhost/b'><priority>1</priority></presence>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "to='bob@localhost'"));
	expect_quiet(a);
	expect_quiet(b);

	/* Alice's initial presence: broadcast to bob (to = bob's bare JID) and
	 * to herself; the probe brings bob's presence to her (to = her full JID). */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "",
	       "<presence from='alice@localhost/a'><show>chat</show></presence>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "to='bob@localhost'"));
	assert_non_null(strstr(raw, "from='alice@localhost/a'"));
	assert_non_null(strstr(raw, "<show>chat</show>"));
	{
		int own = 0, probe = 0;

		for (int i = 0; i < 2; i++) {
			expect_stanza(a, 1, raw, sizeof(raw));
			if (strstr(raw, "to='alice@localhost'") && strstr(raw, "from='alice@localhost/a'"))
				own++;
			if (strstr(raw, "to='alice@localhost/a'") && strstr(raw, "from='bob@localhost/b'") &&
			    strstr(raw, "<priority>1</priority>"))
				probe++;
		}
		assert_int_equal(own, 1);
		assert_int_equal(probe, 1);
	}
	expect_quiet(a);
	expect_quiet(b);

	/* Bob goes unavailable explicitly: alice hears it. */
	stanza(b, 2, WIRE_KIND_PRESENCE, "unavailable", "", jb, "", "",
	       "<presence type='unavailable' from='bob@localhost/b'/>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "type='unavailable'"));
	assert_non_null(strstr(raw, "to='alice@localhost'"));
	expect_quiet(b);
}

static void test_messages(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], ja2[256], jb[256], raw[4096];
	const char *msg = "<message from='bob@localhost/b' to='alice@localhost/a' type='chat' "
			  "id='m1'><body>hi &amp; bye</body></message>";
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(a, 11, "alice", "phone", ja2);
	login(b, 2, "bob", "b", jb);
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "",
	       "<presence from='alice@localhost/a'><priority>1</priority></presence>");
	stanza(a, 11, WIRE_KIND_PRESENCE, "", "", ja2, "", "",
	       "<presence from='alice@localhost/phone'><priority>5</priority></presence>");
	drain(a);
	drain(b);

	/* To a full JID: delivered unchanged, to that session only. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "m1", "", msg);
	expect_frame(a, &m, WIRE_STANZA);
	assert_int_equal(m.sid, 1);
	assert_int_equal(m.u.stanza.kind, WIRE_KIND_MESSAGE);
	assert_int_equal(m.u.stanza.raw.len, strlen(msg));
	assert_memory_equal(m.u.stanza.raw.p, msg, strlen(msg));
	assert_int_equal(m.u.stanza.id.len, 2);
	expect_quiet(a);

	/* To the bare JID: the highest priority resource (phone, 5). */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost", jb, "m2", "",
	       "<message from='bob@localhost/b' to='alice@localhost' type='chat'><body>2</body></message>");
	expect_stanza(a, 11, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<body>2</body>"));
	expect_quiet(a);

	/* To a full JID not online: handled as to the bare JID. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/gone", jb, "m3", "",
	       "<message from='bob@localhost/b' to='alice@localhost/gone' type='chat'><body>3</body></message>");
	expect_stanza(a, 11, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<body>3</body>"));

	/* Unknown local user: service-unavailable back to bob. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "nobody@localhost", jb, "m4", "",
	       "<message from='bob@localhost/b' to='nobody@localhost' type='chat'><body>4</body></message>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "type='error'"));
	assert_non_null(strstr(raw, "id='m4'"));
	assert_non_null(strstr(raw, "from='nobody@localhost'"));
	assert_non_null(strstr(raw, "to='bob@localhost/b'"));
	assert_non_null(strstr(raw, "<error type='cancel'><service-unavailable "
				    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"));

	/* Another server: remote-server-not-found. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "x@example.org", jb, "m5", "",
	       "<message from='bob@localhost/b' to='x@example.org' type='chat'><body>5</body></message>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<remote-server-not-found "));
	/* An error to nobody is dropped silently; groupchat to a bare JID is refused. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "error", "nobody@localhost", jb, "m6", "",
	       "<message from='bob@localhost/b' to='nobody@localhost' type='error'/>");
	stanza(b, 2, WIRE_KIND_MESSAGE, "groupchat", "alice@localhost", jb, "m7", "",
	       "<message from='bob@localhost/b' to='alice@localhost' type='groupchat'><body>7</body></message>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "id='m7'"));
	assert_non_null(strstr(raw, "<service-unavailable "));
	expect_quiet(b);
	expect_quiet(a);
}

static void credit(struct tlink *t, uint64_t sid, uint32_t bytes)
{
	struct wire_msg m = { .type = WIRE_CREDIT, .sid = sid };

	m.u.credit.bytes = bytes;
	send_frame(t, &m);
}

/* Flow control (docs/protocol.md): a reader without credit pauses the sender
 * of each stanza delivered to it; credit back (or the reader ending) resumes
 * every sender paused for it. */
static void test_flow_control(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], jb2[256], raw[4096];
	const char *msg = "<message to='alice@localhost/a' type='chat'><body>0123456789</body></message>";
	size_t len = strlen(msg);
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);
	login(b, 3, "bob", "b2", jb2);
	drain(a);
	drain(b);

	/* No CREDIT yet: not flow-controlled, nobody is paused. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "", "", msg);
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_quiet(b);

	/* Three stanzas of credit (the first is already spent): the third delivery
	 * leaves none, so its sender is paused; the message is delivered anyway. */
	credit(a, 1, (uint32_t)(3 * len));
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "", "", msg);
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_quiet(b);
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "", "", msg);
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_frame(b, &m, WIRE_FLOW);
	assert_int_equal(m.sid, 2);
	assert_int_equal(m.u.flow.stop, 1);
	/* A second writer is paused too; the first is not told twice. */
	stanza(b, 3, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb2, "", "", msg);
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "", "", msg);
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_frame(b, &m, WIRE_FLOW);
	assert_int_equal(m.sid, 3);
	assert_int_equal(m.u.flow.stop, 1);
	expect_quiet(b);

	/* Credit that leaves the count at zero resumes nobody; more does, both. */
	credit(a, 1, (uint32_t)(2 * len));
	expect_quiet(b);
	credit(a, 1, 1);
	for (int i = 0; i < 2; i++) {
		expect_frame(b, &m, WIRE_FLOW);
		assert_true(m.sid == 2 || m.sid == 3);
		assert_int_equal(m.u.flow.stop, 0);
	}
	expect_quiet(b);

	/* Out of credit again, then the reader ends: its senders are resumed. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost/a", jb, "", "", msg);
	expect_stanza(a, 1, raw, sizeof(raw));
	expect_frame(b, &m, WIRE_FLOW);
	assert_int_equal(m.u.flow.stop, 1);
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 1 };
	send_frame(a, &m);
	expect_frame(b, &m, WIRE_FLOW);
	assert_int_equal(m.sid, 2);
	assert_int_equal(m.u.flow.stop, 0);
	drain(b);
}

static void test_offline(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096];

	two_users(e);
	login(b, 2, "bob", "b", jb);
	/* alice is offline: stored. */
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", "alice@localhost", jb, "o1", "",
	       "<message from='bob@localhost/b' to='alice@localhost' type='chat'><body>later</body></message>");
	expect_quiet(b);
	login(a, 1, "alice", "a", ja);
	expect_quiet(a);    /* nothing before initial presence */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	{
		int found = 0;

		for (int i = 0; i < 2; i++) {   /* her own presence echo + the message */
			expect_stanza(a, 1, raw, sizeof(raw));
			if (strstr(raw, "<body>later</body>")) {
				found++;
				assert_non_null(strstr(raw, "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='"));
			}
		}
		assert_int_equal(found, 1);
	}
	expect_quiet(a);
	/* Not reported written by the edge: still stored, but in flight to this
	 * session, so another initial presence of it does not repeat it. */
	stanza(a, 1, WIRE_KIND_PRESENCE, "unavailable", "", ja, "", "",
	       "<presence type='unavailable' from='alice@localhost/a'/>");
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_null(strstr(raw, "later"));
	expect_quiet(a);
	/* The session ends before the edge reported it written: the next login
	 * gets it again (a drop at any moment loses nothing). */
	{
		struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = 1 };

		m.u.close.reason = WIRE_CLOSE_DISCONNECT;
		send_frame(a, &m);
	}
	login(a, 3, "alice", "a", ja);
	stanza(a, 3, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	{
		int found = 0;

		for (int i = 0; i < 2; i++) {
			expect_stanza(a, 3, raw, sizeof(raw));
			found += strstr(raw, "<body>later</body>") != NULL;
		}
		assert_int_equal(found, 1);
	}
	expect_quiet(a);
	/* The edge reports everything written: deleted, delivered once only. */
	{
		struct wire_msg d = { .type = WIRE_DELIVERED, .sid = 3 };

		d.u.delivered.bytes = (uint64_t)1 << 40;
		send_frame(a, &d);
		d = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 3 };
		send_frame(a, &d);
	}
	login(a, 5, "alice", "a", ja);
	stanza(a, 5, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	expect_stanza(a, 5, raw, sizeof(raw));
	assert_null(strstr(raw, "later"));
	expect_quiet(a);
}

/* A one-to-one message whose session ends before its edge reported it
 * written goes to the account's other available resource; with none left,
 * into offline storage (nothing accepted is lost). */
static void test_unconfirmed_messages_move_on(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char j1[256], j2[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "one", j1);
	login(a, 2, "alice", "two", j2);
	login(b, 3, "bob", "b", jb);
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", j1, "", "", "<presence from='alice@localhost/one'/>");
	stanza(a, 2, WIRE_KIND_PRESENCE, "", "", j2, "", "", "<presence from='alice@localhost/two'/>");
	drain(a);      /* the presence each resource sees of itself and of the other */
	stanza(b, 3, WIRE_KIND_MESSAGE, "chat", "alice@localhost/one", jb, "m1", "",
	       "<message from='bob@localhost/b' to='alice@localhost/one' type='chat'>"
	       "<body>first</body></message>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<body>first</body>"));
	/* alice/one drops before its edge wrote it: alice/two gets it. */
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 1 };
	m.u.close.reason = WIRE_CLOSE_DISCONNECT;
	send_frame(a, &m);
	for (int found = 0; !found;) {
		expect_frame(a, &m, WIRE_STANZA);        /* her unavailable, then the message */
		found = m.sid == 2 && memmem(m.u.stanza.raw.p, m.u.stanza.raw.len,
					      "<body>first</body>", 18) != NULL;
	}
	/* alice/two drops as well, unconfirmed: stored, handed out at the next login. */
	drain(a);      /* one's unavailable presence */
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 2 };
	m.u.close.reason = WIRE_CLOSE_DISCONNECT;
	send_frame(a, &m);
	login(a, 4, "alice", "three", j1);
	stanza(a, 4, WIRE_KIND_PRESENCE, "", "", j1, "", "", "<presence from='alice@localhost/three'/>");
	for (int found = 0; !found;) {
		expect_stanza(a, 4, raw, sizeof(raw));
		found = strstr(raw, "<body>first</body>") != NULL;
	}
	assert_non_null(strstr(raw, "<delay xmlns='urn:xmpp:delay'"));
}

/* XEP-0198 at the session server: SESSION_MOVE re-keys a bound session to
 * another link (the old link gets SESSION_CLOSE(MOVED) first), a move naming
 * no such session is refused, and RETURNED stanzas are treated as
 * undeliverable to the session's full JID (iq get: service-unavailable to
 * the sender; groupchat: an error; chat: stored for later). */
static void returned(struct tlink *t, uint64_t sid, int kind, const char *raw)
{
	struct wire_msg m = { .type = WIRE_STANZA, .sid = sid };

	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.flags = WIRE_STANZA_RETURNED;
	m.u.stanza.raw = wire_s(raw, strlen(raw));
	send_frame(t, &m);
}

static void test_move_and_returned(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1], *c = e->l[2];
	char ja[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	hello(c, 2, "s3cret");
	expect_frame(c, &m, WIRE_HELLO_OK);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);

	/* Moved from link a (sid 1) to link c (sid 7). */
	m = (struct wire_msg){ .type = WIRE_SESSION_MOVE, .sid = 7 };
	m.u.move.old_sid = 1;
	m.u.move.jid = wire_s(ja, strlen(ja));
	send_frame(c, &m);
	expect_frame(a, &m, WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 1);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_MOVED);
	stanza(b, 2, WIRE_KIND_MESSAGE, "chat", ja, jb, "m1", "",
	       "<message to='alice@localhost/a' from='bob@localhost/b' type='chat'><body>moved</body></message>");
	expect_stanza(c, 7, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<body>moved</body>"));
	expect_quiet(a);
	/* Its old sid is gone from link a; a second move of it is refused. */
	m = (struct wire_msg){ .type = WIRE_SESSION_MOVE, .sid = 8 };
	m.u.move.old_sid = 1;
	m.u.move.jid = wire_s(ja, strlen(ja));
	send_frame(c, &m);
	expect_frame(c, &m, WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 8);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_KICKED);

	/* Returned by alice's edge (never acknowledged): bob's iq get gets an error from alice. */
	returned(c, 7, WIRE_KIND_IQ, "<iq type='get' id='q1' from='bob@localhost/b' to='alice@localhost/a'>"
		 "<query xmlns='jabber:iq:version'/></iq>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "type='error'"));
	assert_non_null(strstr(raw, "id='q1'"));
	assert_non_null(strstr(raw, "<service-unavailable"));
	/* A returned iq result and presence: dropped. */
	returned(c, 7, WIRE_KIND_IQ, "<iq type='result' id='q2' from='bob@localhost/b' to='alice@localhost/a'/>");
	returned(c, 7, WIRE_KIND_PRESENCE, "<presence from='bob@localhost/b' to='alice@localhost/a'/>");
	expect_quiet(b);
	/* A returned groupchat message: an error to its sender. */
	returned(c, 7, WIRE_KIND_MESSAGE, "<message type='groupchat' id='g1' from='bob@localhost/b' "
		 "to='alice@localhost/a'><body>g</body></message>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "id='g1'"));
	assert_non_null(strstr(raw, "type='error'"));
	/* A returned chat message, no other resource: stored, handed to alice's next login. */
	returned(c, 7, WIRE_KIND_MESSAGE, "<message type='chat' id='c1' from='bob@localhost/b' "
		 "to='alice@localhost/a'><body>kept</body></message>");
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 7 };
	m.u.close.reason = WIRE_CLOSE_DISCONNECT;
	send_frame(c, &m);
	expect_quiet(b);
	login(a, 9, "alice", "again", ja);
	stanza(a, 9, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/again'/>");
	for (int found = 0; !found;) {
		expect_stanza(a, 9, raw, sizeof(raw));
		found = strstr(raw, "<body>kept</body>") != NULL;
	}
}

static void test_iq(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);

	stanza(a, 1, WIRE_KIND_IQ, "get", "", ja, "r1", "jabber:iq:roster",
	       "<iq type='get' id='r1' from='alice@localhost/a'><query xmlns='jabber:iq:roster'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='r1' to='alice@localhost/a'>"
				 "<query xmlns='jabber:iq:roster' ver='1'><item jid='bob@localhost' "
				 "name='Bob B' subscription='both'/></query></iq>");

	stanza(a, 1, WIRE_KIND_IQ, "get", "localhost", ja, "p&1", "urn:xmpp:ping",
	       "<iq type='get' id='p&amp;1' to='localhost' from='alice@localhost/a'>"
	       "<ping xmlns='urn:xmpp:ping'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='p&amp;1' from='localhost' "
				 "to='alice@localhost/a'/>");

	stanza(a, 1, WIRE_KIND_IQ, "get", "localhost", ja, "d1",
	       "http://jabber.org/protocol/disco#info",
	       "<iq type='get' id='d1' to='localhost' from='alice@localhost/a'>"
	       "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<identity category='server' type='im'"));
	assert_non_null(strstr(raw, "<feature var='urn:xmpp:ping'/>"));
	assert_non_null(strstr(raw, "<feature var='jabber:iq:roster'/>"));

	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "s1", "urn:ietf:params:xml:ns:xmpp-session",
	       "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='result' id='s1' to='alice@localhost/a'/>");

	/* Unknown payload to the server: service-unavailable, type cancel. */
	stanza(a, 1, WIRE_KIND_IQ, "get", "", ja, "v1", "jabber:iq:version",
	       "<iq type='get' id='v1' from='alice@localhost/a'><query xmlns='jabber:iq:version'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<iq type='error' id='v1' to='alice@localhost/a'><error type='cancel'>"
				 "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
				 "</error></iq>");

	/* To another user's bare JID: service-unavailable; to a full JID online: routed. */
	stanza(a, 1, WIRE_KIND_IQ, "get", "bob@localhost", ja, "v2", "jabber:iq:version",
	       "<iq type='get' id='v2' to='bob@localhost'><query xmlns='jabber:iq:version'/></iq>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "from='bob@localhost'"));
	assert_non_null(strstr(raw, "<service-unavailable "));
	stanza(a, 1, WIRE_KIND_IQ, "get", "bob@localhost/b", ja, "v3", "jabber:iq:version",
	       "<iq type='get' id='v3' to='bob@localhost/b' from='alice@localhost/a'>"
	       "<query xmlns='jabber:iq:version'/></iq>");
	expect_frame(b, &m, WIRE_STANZA);
	assert_int_equal(m.sid, 2);
	assert_int_equal(m.u.stanza.kind, WIRE_KIND_IQ);
	/* The result back; an undeliverable result is dropped. */
	stanza(b, 2, WIRE_KIND_IQ, "result", "alice@localhost/a", jb, "v3", "",
	       "<iq type='result' id='v3' to='alice@localhost/a' from='bob@localhost/b'/>");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "id='v3'"));
	stanza(b, 2, WIRE_KIND_IQ, "result", "alice@localhost/zzz", jb, "v4", "",
	       "<iq type='result' id='v4' to='alice@localhost/zzz' from='bob@localhost/b'/>");
	/* A get to an offline full JID: service-unavailable. */
	stanza(b, 2, WIRE_KIND_IQ, "get", "alice@localhost/zzz", jb, "v5", "jabber:iq:version",
	       "<iq type='get' id='v5' to='alice@localhost/zzz'><query xmlns='jabber:iq:version'/></iq>");
	expect_stanza(b, 2, raw, sizeof(raw));
	assert_non_null(strstr(raw, "id='v5'"));
	assert_non_null(strstr(raw, "<service-unavailable "));
	expect_quiet(a);
	expect_quiet(b);

	/* A roster change by the admin is pushed to alice, who asked for it. */
	admin_ok(e, "roster add %s %s %s carol", "alice@localhost", "carol@localhost", "to");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "<iq type='set' id='push"));
	assert_non_null(strstr(raw, "<item jid='carol@localhost' name='carol' subscription='to'/>"));
	expect_quiet(b);
	{
		char out[4096];

		admin(e, out, sizeof(out), "roster list alice@localhost");
		assert_string_equal(out, "bob@localhost both Bob B\ncarol@localhost to carol\nok\n");
	}
}

static void test_conflict_and_close(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);
	/* Frames on different links are not ordered: drain each before the next. */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	drain(a);
	stanza(b, 2, WIRE_KIND_PRESENCE, "", "", jb, "", "", "<presence from='bob@localhost/b'/>");
	drain(b);
	drain(a);

	/* Bob logs in again with the same resource on link a: the old session
	 * is told CONFLICT, alice sees it go unavailable (before the new bind
	 * is answered: the old session ends first). */
	m = (struct wire_msg){ .type = WIRE_SESSION_OPEN, .sid = 3 };
	send_frame(a, &m);
	m = (struct wire_msg){ .type = WIRE_AUTHED, .sid = 3 };
	m.u.authed.user = wire_s("bob", 3);
	m.u.authed.domain = wire_s("localhost", 9);
	send_frame(a, &m);
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 3 };
	m.u.bind_req.user = wire_s("bob", 3);
	m.u.bind_req.domain = wire_s("localhost", 9);
	m.u.bind_req.resource = wire_s("b", 1);
	send_frame(a, &m);
	expect_frame(b, &m, WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 2);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_CONFLICT);
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<presence type='unavailable' from='bob@localhost/b' "
				 "to='alice@localhost'/>");
	expect_frame(a, &m, WIRE_BIND_RESP);
	assert_int_equal(m.sid, 3);
	assert_int_equal(m.u.bind_resp.status, WIRE_OK);
	assert_int_equal(m.u.bind_resp.jid.len, strlen("bob@localhost/b"));
	/* The new session is the one messages go to. */
	stanza(a, 1, WIRE_KIND_MESSAGE, "chat", "bob@localhost/b", ja, "c1", "",
	       "<message to='bob@localhost/b' from='alice@localhost/a'><body>x</body></message>");
	expect_stanza(a, 3, raw, sizeof(raw));
	expect_quiet(b);

	/* Bob's new session becomes available then closes: alice hears both. */
	stanza(a, 3, WIRE_KIND_PRESENCE, "", "", jb, "", "", "<presence from='bob@localhost/b'/>");
	drain(a);
	m = (struct wire_msg){ .type = WIRE_SESSION_CLOSE, .sid = 3 };
	m.u.close.reason = WIRE_CLOSE_NORMAL;
	send_frame(a, &m);
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_string_equal(raw, "<presence type='unavailable' from='bob@localhost/b' "
				 "to='alice@localhost'/>");
	expect_quiet(a);
}

static void test_link_loss_and_kick(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	char ja[256], jb[256], raw[4096], out[4096];
	struct wire_msg m;

	two_users(e);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "bob", "b", jb);
	/* Frames on different links are not ordered: drain each before the next. */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence from='alice@localhost/a'/>");
	drain(a);
	stanza(b, 2, WIRE_KIND_PRESENCE, "", "", jb, "", "", "<presence from='bob@localhost/b'/>");
	drain(b);
	drain(a);

	/* Link b breaks: bob's session ends, alice gets unavailable presence. */
	shutdown(b->fd, SHUT_RDWR);
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "type='unavailable' from='bob@localhost/b'"));

	/* Deleting alice closes her session (KICKED). */
	admin(e, out, sizeof(out), "user del alice@localhost");
	assert_string_equal(out, "user alice@localhost deleted, sessions closed: 1\nok\n");
	expect_frame(a, &m, WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 1);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_KICKED);
	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 5 };
	m.u.cred_req.user = wire_s("alice", 5);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(a, &m);
	expect_frame(a, &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.status, WIRE_NO_USER);
	admin(e, out, sizeof(out), "sessions");
	assert_string_equal(out, "no sessions\nok\n");
}

static void reg_frame(struct tlink *t, uint64_t sid, int op, const char *user, int with_keys,
		      uint8_t seed)
{
	struct wire_msg m = { .type = WIRE_REGISTER, .sid = sid };

	m.u.reg.op = (uint8_t)op;
	m.u.reg.user = wire_s(user, strlen(user));
	m.u.reg.domain = wire_s("localhost", 9);
	if (with_keys) {
		m.u.reg.sha1.iter = m.u.reg.sha256.iter = 4096;
		m.u.reg.sha1.salt_len = m.u.reg.sha256.salt_len = 16;
		m.u.reg.sha1.key_len = 20;
		m.u.reg.sha256.key_len = 32;
		memset(m.u.reg.sha1.salt, seed, 16);
		memset(m.u.reg.sha256.salt, seed + 1, 16);
		memset(m.u.reg.sha1.stored_key, seed + 2, 20);
		memset(m.u.reg.sha256.stored_key, seed + 3, 32);
	}
	send_frame(t, &m);
}

static int reg_status(struct tlink *t, uint64_t sid)
{
	struct wire_msg m;

	expect_frame(t, &m, WIRE_REGISTER_RESP);
	assert_int_equal(m.sid, sid);
	return m.u.reg_resp.status;
}

static void test_register(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1];
	struct wire_msg m;
	char ja[256], jb[256];

	two_users(e);
	/* Create: no session needed; the name is canonicalised. */
	reg_frame(a, 40, WIRE_REG_CREATE, "Dave", 1, 0x10);
	assert_int_equal(reg_status(a, 40), WIRE_OK);
	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 41 };
	m.u.cred_req.user = wire_s("dave", 4);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(a, &m);
	expect_frame(a, &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.status, WIRE_OK);
	assert_int_equal(m.u.cred_resp.sha256.salt[0], 0x11);
	/* The same account again; a name that is no localpart; keys missing. */
	reg_frame(a, 42, WIRE_REG_CREATE, "dave", 1, 0x20);
	assert_int_equal(reg_status(a, 42), WIRE_CONFLICT);
	reg_frame(a, 43, WIRE_REG_CREATE, "da@ve", 1, 0x20);
	assert_int_equal(reg_status(a, 43), WIRE_BAD_REQUEST);
	reg_frame(a, 44, WIRE_REG_CREATE, "erin", 0, 0);
	assert_int_equal(reg_status(a, 44), WIRE_BAD_REQUEST);

	/* Password and removal: only the session's own account. */
	reg_frame(a, 45, WIRE_REG_PASSWORD, "alice", 1, 0x30);
	assert_int_equal(reg_status(a, 45), WIRE_NOT_ALLOWED);
	login(a, 1, "alice", "a", ja);
	login(b, 2, "alice", "b", jb);
	reg_frame(a, 1, WIRE_REG_PASSWORD, "bob", 1, 0x30);
	assert_int_equal(reg_status(a, 1), WIRE_NOT_ALLOWED);
	reg_frame(a, 1, WIRE_REG_REMOVE, "bob", 0, 0);
	assert_int_equal(reg_status(a, 1), WIRE_NOT_ALLOWED);
	reg_frame(a, 1, WIRE_REG_PASSWORD, "alice", 1, 0x30);
	assert_int_equal(reg_status(a, 1), WIRE_OK);
	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 46 };
	m.u.cred_req.user = wire_s("alice", 5);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(a, &m);
	expect_frame(a, &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.sha1.salt[0], 0x30);
	assert_int_equal(m.u.cred_resp.sha256.stored_key[0], 0x33);

	/* A delivery report is accepted and changes nothing. */
	m = (struct wire_msg){ .type = WIRE_DELIVERED, .sid = 1 };
	m.u.delivered.bytes = 12345;
	send_frame(a, &m);
	expect_quiet(a);

	/* Remove: the answer, then every session of the account is kicked. */
	drain(b);
	reg_frame(a, 1, WIRE_REG_REMOVE, "alice", 0, 0);
	assert_int_equal(reg_status(a, 1), WIRE_OK);
	do
		expect_frame_any(a, &m);
	while (m.type != WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 1);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_KICKED);
	do
		expect_frame_any(b, &m);
	while (m.type != WIRE_SESSION_CLOSE);
	assert_int_equal(m.sid, 2);
	assert_int_equal(m.u.close.reason, WIRE_CLOSE_KICKED);
	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 47 };
	m.u.cred_req.user = wire_s("alice", 5);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(a, &m);
	expect_frame(a, &m, WIRE_CRED_RESP);
	assert_int_equal(m.u.cred_resp.status, WIRE_NO_USER);
}

static void test_malformed_frame(void **state)
{
	struct env *e = *state;
	struct wire_msg m;
	/* A frame of unknown type 0x7f: 9-byte body. */
	static const uint8_t bad[] = { 0, 0, 0, 9, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1 };

	hello(e->l[0], 0, "s3cret");
	expect_frame(e->l[0], &m, WIRE_HELLO_OK);
	hello(e->l[2], 2, "s3cret");
	expect_frame(e->l[2], &m, WIRE_HELLO_OK);
	assert_int_equal(write(e->l[2]->fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(recv_frame(e->l[2], &m, WAIT_MS), -1);
	/* The other link is unaffected. */
	expect_quiet(e->l[0]);
	/* So is the admin socket; junk there is answered, not fatal. */
	{
		char out[1024];

		admin(e, out, sizeof(out), "frobnicate");
		assert_non_null(strstr(out, "error: unknown command"));
		admin(e, out, sizeof(out), "user add x@localhost zz 1 00 00 00 1 00 00");
		assert_non_null(strstr(out, "error: bad salt"));
	}
}

/* A frame whose outcome needs the storage thread (CRED_REQ: the account's
 * keys are read) is confirmed only after that outcome went out. */
static void handled_after_storage(struct tlink *t)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = 1 };
	bool answered = false;

	m.u.open.addr = wire_s("127.0.0.1", 9);
	send_frame(t, &m);                                  /* frame 2 */
	m = (struct wire_msg){ .type = WIRE_CRED_REQ, .sid = 1 };
	m.u.cred_req.user = wire_s("nobody", 6);
	m.u.cred_req.domain = wire_s("localhost", 9);
	send_frame(t, &m);                                  /* frame 3 */
	for (;;) {
		expect_frame_any(t, &m);
		if (m.type == WIRE_CRED_RESP) {
			assert_int_equal(m.u.cred_resp.status, WIRE_NO_USER);
			answered = true;
		} else if (m.type == WIRE_HANDLED) {
			assert_true(m.u.handled.count <= 3);
			if (m.u.handled.count == 3) {
				assert_true(answered);   /* never before its answer */
				return;
			}
		} else {
			fail_msg("unexpected %s frame", wire_type_str(m.type));
		}
	}
}

/* External mode: edges connect to the listener (Unix socket, then TCP). */
static void test_listeners(void **state)
{
	static const char *const domains[] = { "localhost" };
	char dir[] = "/tmp/test_sm_l.XXXXXX", db[96], spec[128];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct sm_config cfg = { 0 };
	struct tlink *t = calloc(1, sizeof(*t));
	struct wire_msg m;
	pthread_t thr;
	struct sm *sm;
	int probe;

	(void)state;
	assert_non_null(t);
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/sm.db", dir);
	cfg.database = db;
	cfg.domains = domains;
	cfg.ndomains = 1;
	for (int round = 0; round < 2; round++) {
		if (round == 0) {
			snprintf(spec, sizeof(spec), "unix:%s/edge.sock", dir);
		} else {
			/* A free port: bind port 0, read it back, release it. */
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			probe = socket(AF_INET, SOCK_STREAM, 0);
			assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
			assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &sl), 0);
			close(probe);
			snprintf(spec, sizeof(spec), "127.0.0.1:%u", ntohs(sin.sin_port));
		}
		cfg.listen = spec;
		sm = sm_new(&cfg);
		assert_non_null(sm);
		assert_int_equal(pthread_create(&thr, NULL, run_sm, sm), 0);
		if (round == 0) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };

			assert_true(strlen(spec + 5) < sizeof(sa.sun_path));
			memcpy(sa.sun_path, spec + 5, strlen(spec + 5) + 1);
			t->fd = socket(AF_UNIX, SOCK_STREAM, 0);
			assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		} else {
			t->fd = socket(AF_INET, SOCK_STREAM, 0);
			assert_int_equal(connect(t->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		}
		t->len = t->consumed = 0;
		hello(t, 0, "");     /* no secret configured: any is accepted */
		expect_frame(t, &m, WIRE_HELLO_OK);
		/* A link from another process hears which of its frames are handled. */
		expect_frame(t, &m, WIRE_HANDLED);
		assert_true(m.u.handled.count == 1);
		if (round == 0)
			handled_after_storage(t);
		else
			expect_quiet(t);
		sm_stop(sm);
		pthread_join(thr, NULL);
		sm_free(sm);
		close(t->fd);
	}
	snprintf(spec, sizeof(spec), "%s/edge.sock", dir);
	assert_int_equal(access(spec, F_OK), -1);   /* removed by sm_free */
	unlink(db);
	snprintf(spec, sizeof(spec), "%s-wal", db);
	unlink(spec);
	snprintf(spec, sizeof(spec), "%s-shm", db);
	unlink(spec);
	rmdir(dir);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_and_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfirmed_messages_move_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_loss_and_kick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_frame, setup, teardown),
		cmocka_unit_test(test_listeners),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
