/*
 * test_sm_adopt — XEP-0198 resumption on another edge at the session server
 * (sm/adopt.c), driven the way edges drive it (tests/unit/sm_harness.h): a
 * resumable session (WIRE_SMACKS) outlives its link as an orphan, keeps what
 * is sent to it, and is adopted by another link (WIRE_ADOPT) with the h the
 * session server counted; the wrong account or id is refused; an orphan whose
 * time is up ends as any session does (messages stored, iqs answered with
 * errors, unavailable presence); a cross-shard message given to an edge link
 * that dies is routed again through another edge.
 */
#include "tests/unit/sm_harness.h"
#include "parser/shard.h"

#define PREVID "e0.0.0000000100000001.00112233445566778899aabbccddeeff"

static void smacks(struct tlink *t, uint64_t sid, uint32_t max, uint32_t h, const char *id)
{
	struct wire_msg m = { .type = WIRE_SMACKS, .sid = sid };

	m.u.smacks.max = max;
	m.u.smacks.h = h;
	m.u.smacks.previd = wire_s(id, strlen(id));
	send_frame(t, &m);
}

/* SESSION_OPEN + AUTHED as user: the stream that sends <resume/>. */
static void authed(struct tlink *t, uint64_t sid, const char *user)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = sid };

	m.u.open.flags = WIRE_OPEN_TLS;
	m.u.open.addr = wire_s("127.0.0.1:40001", 15);
	send_frame(t, &m);
	m = (struct wire_msg){ .type = WIRE_AUTHED, .sid = sid };
	m.u.authed.user = wire_s(user, strlen(user));
	m.u.authed.domain = wire_s("localhost", 9);
	send_frame(t, &m);
}

static void adopt(struct tlink *t, uint64_t sid, const char *id, const char *bare, struct wire_msg *r)
{
	struct wire_msg m = { .type = WIRE_ADOPT, .sid = sid };

	m.u.adopt.previd = wire_s(id, strlen(id));
	m.u.adopt.jid = wire_s(bare, strlen(bare));
	send_frame(t, &m);
	expect_frame(t, r, WIRE_ADOPT_RESP);
	assert_int_equal(r->sid, sid);
}

static void chat(struct tlink *t, uint64_t sid, const char *to, const char *from, const char *body)
{
	char raw[512];

	snprintf(raw, sizeof(raw), "<message to='%s' from='%s' type='chat'><body>%s</body></message>", to, from,
		 body);
	stanza(t, sid, WIRE_KIND_MESSAGE, "chat", to, from, "", "", raw);
}

/* The link of t is lost, as when its edge is killed; returns once the
 * session server lists jid as orphaned (admin `sessions`). */
static void lose(struct env *e, struct tlink *t, const char *jid)
{
	char out[4096], want[300];

	close(t->fd);
	t->fd = -1;
	snprintf(want, sizeof(want), "%s ", jid);
	for (int i = 0; i < WAIT_MS / 10; i++) {
		const char *l;

		admin(e, out, sizeof(out), "sessions");
		l = strstr(out, want);
		if (l && strstr(l, " orphaned ") && strstr(l, " orphaned ") < strchr(l, '\n'))
			return;
		usleep(10000);
	}
	fail_msg("%s not orphaned: %s", jid, out);
}

/* Frames on t until one of type `type` for sid, up to ms: its raw (STANZA) into out. */
static void wait_stanza(struct tlink *t, uint64_t sid, const char *needle, int ms)
{
	struct wire_msg m;

	for (int waited = 0; waited < ms; waited += 100) {
		while (recv_frame(t, &m, 100) == 1) {
			if (m.type == WIRE_STANZA && m.sid == sid &&
			    memmem(m.u.stanza.raw.p, m.u.stanza.raw.len, needle, strlen(needle)))
				return;
		}
	}
	fail_msg("no stanza with %s for sid %llu", needle, (unsigned long long)sid);
}

static void test_adopted(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1], *c = e->l[2];
	char ja[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	hello(c, 2, "s3cret");
	expect_frame(c, &m, WIRE_HELLO_OK);
	login(a, 1, "alice", "a", ja);
	smacks(a, 1, 60, 5, PREVID);
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence/>");   /* h 6 */
	login(b, 2, "bob", "b", jb);
	stanza(b, 2, WIRE_KIND_PRESENCE, "", "", jb, "", "", "<presence/>");
	chat(a, 1, jb, ja, "hi bob");                                           /* h 7 */
	wait_stanza(b, 2, "hi bob", WAIT_MS);
	drain(a);
	/* Sent to alice, never reported written (tracked). */
	chat(b, 2, ja, jb, "before");
	expect_stanza(a, 1, raw, sizeof(raw));
	assert_non_null(strstr(raw, "before"));
	drain(b);

	lose(e, a, ja);
	/* Orphaned, not ended: bob sees no unavailable presence, his message and
	 * iq are kept, not answered with errors. */
	chat(b, 2, ja, jb, "away");
	stanza(b, 2, WIRE_KIND_IQ, "get", ja, jb, "v1", "jabber:iq:version",
	       "<iq type='get' id='v1' to='alice@localhost/a' from='bob@localhost/b'>"
	       "<query xmlns='jabber:iq:version'/></iq>");
	expect_quiet(b);

	/* Adopted on link c by a stream authenticated as alice. */
	authed(c, 9, "alice");
	adopt(c, 9, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_OK);
	assert_int_equal(m.u.adopt_resp.h, 7);
	assert_int_equal(m.u.adopt_resp.jid.len, strlen(ja));
	assert_memory_equal(m.u.adopt_resp.jid.p, ja, strlen(ja));
	/* What was never confirmed written, tracked, in order; then what was kept. */
	expect_frame(c, &m, WIRE_STANZA);
	assert_int_equal(m.sid, 9);
	assert_true(m.u.stanza.flags & WIRE_STANZA_TRACK);
	assert_non_null(memmem(m.u.stanza.raw.p, m.u.stanza.raw.len, "before", 6));
	expect_frame(c, &m, WIRE_STANZA);
	assert_true(m.u.stanza.flags & WIRE_STANZA_TRACK);
	assert_non_null(memmem(m.u.stanza.raw.p, m.u.stanza.raw.len, "away", 4));
	expect_frame(c, &m, WIRE_STANZA);
	assert_int_equal(m.u.stanza.kind, WIRE_KIND_IQ);
	assert_non_null(memmem(m.u.stanza.raw.p, m.u.stanza.raw.len, "id='v1'", 7));
	expect_quiet(c);
	/* The same session: its full JID reaches it there, its stanzas count on. */
	chat(b, 2, ja, jb, "there");
	expect_stanza(c, 9, raw, sizeof(raw));
	assert_non_null(strstr(raw, "there"));
	chat(c, 9, jb, ja, "from c");
	wait_stanza(b, 2, "from c", WAIT_MS);
	/* Adopted once: the id names no orphan now. */
	authed(c, 10, "alice");
	adopt(c, 10, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	/* Lost again: orphaned again (its id was kept), and adopted again with h 8. */
	lose(e, c, ja);
	authed(b, 11, "alice");
	adopt(b, 11, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_OK);
	assert_int_equal(m.u.adopt_resp.h, 8);
}

static void test_refused(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1], *c = e->l[2];
	char ja[256], jb[256];
	struct wire_msg m;

	two_users(e);
	hello(c, 2, "s3cret");
	expect_frame(c, &m, WIRE_HELLO_OK);
	login(a, 1, "alice", "a", ja);
	smacks(a, 1, 60, 0, PREVID);
	login(b, 2, "bob", "b", jb);
	/* Not orphaned yet: nothing to adopt (its edge still holds it). */
	authed(c, 8, "alice");
	adopt(c, 8, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	lose(e, a, ja);
	expect_quiet(b);
	/* Another account with the right id; a wrong id; a session claiming
	 * another account than it authenticated as; an unauthenticated one. */
	authed(c, 9, "bob");
	adopt(c, 9, PREVID, "bob@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	authed(c, 10, "alice");
	adopt(c, 10, "e0.0.0000000100000001.00112233445566778899aabbccddeefe", "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	adopt(c, 10, PREVID "x", "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	adopt(c, 10, PREVID, "bob@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NOT_ALLOWED);
	adopt(c, 99, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NOT_ALLOWED);
	/* Still there for its owner. */
	adopt(c, 10, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_OK);
	/* Ids the session server would not keep: not resumable then. */
	login(c, 20, "bob", "b2", jb);
	smacks(c, 20, 60, 0, "has space");
	smacks(c, 21, 60, 0, "no such session");
	expect_quiet(c);
}

static void test_expired(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *b = e->l[1], *c = e->l[2];
	char ja[256], jb[256], raw[4096];
	struct wire_msg m;

	two_users(e);
	hello(c, 2, "s3cret");
	expect_frame(c, &m, WIRE_HELLO_OK);
	login(a, 1, "alice", "a", ja);
	smacks(a, 1, 1, 0, PREVID);     /* one second */
	stanza(a, 1, WIRE_KIND_PRESENCE, "", "", ja, "", "", "<presence/>");
	login(b, 2, "bob", "b", jb);
	stanza(b, 2, WIRE_KIND_PRESENCE, "", "", jb, "", "", "<presence/>");
	drain(a);
	drain(b);
	lose(e, a, ja);
	chat(b, 2, ja, jb, "stored");
	stanza(b, 2, WIRE_KIND_IQ, "get", ja, jb, "v2", "jabber:iq:version",
	       "<iq type='get' id='v2' to='alice@localhost/a' from='bob@localhost/b'>"
	       "<query xmlns='jabber:iq:version'/></iq>");
	/* Its time is up: the kept iq is answered with an error, the session
	 * goes unavailable, and it can no longer be adopted. */
	wait_stanza(b, 2, "<service-unavailable", 5000);
	wait_stanza(b, 2, "type='unavailable'", 5000);
	authed(c, 9, "alice");
	adopt(c, 9, PREVID, "alice@localhost", &m);
	assert_int_equal(m.u.adopt_resp.status, WIRE_NO_USER);
	/* The message was stored: a new session of alice gets it. */
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = 9 };
	m.u.bind_req.user = wire_s("alice", 5);
	m.u.bind_req.domain = wire_s("localhost", 9);
	m.u.bind_req.resource = wire_s("again", 5);
	send_frame(c, &m);
	expect_frame(c, &m, WIRE_BIND_RESP);
	assert_int_equal(m.u.bind_resp.status, WIRE_OK);
	stanza(c, 9, WIRE_KIND_PRESENCE, "", "", "alice@localhost/again", "", "", "<presence/>");
	wait_stanza(c, 9, "stored", 5000);
	(void)raw;
}

/* ---- cross-shard messages through an edge that dies ---------------------- */

static const char *const two_shards[] = { "0", "1" };

static void tune_shards(struct sm_config *cfg)
{
	cfg->shards = two_shards;
	cfg->nshards = 2;
	cfg->shard_self = 0;
}

static int setup_shards(void **state)
{
	return setup_tuned(state, tune_shards);
}

/* The first of u0, u1, ... (at domain localhost) that shard k owns, into out. */
static void owned_by(size_t k, const char *prefix, char *out, size_t cap)
{
	uint64_t names[2] = { shard_name_hash("0", 1), shard_name_hash("1", 1) };

	for (int i = 0; i < 1000; i++) {
		char jid[64];

		snprintf(out, cap, "%s%d", prefix, i);
		snprintf(jid, sizeof(jid), "%s@localhost", out);
		if (shard_owner(names, 2, jid, strlen(jid)) == k)
			return;
	}
	fail();
}

/* The link (index) on which a ROUTE frame with needle arrives, -1: none. */
static int route_on(struct env *e, const char *needle)
{
	struct wire_msg m;

	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < NLINKS; i++) {
			if (e->l[i]->fd < 0)
				continue;
			while (recv_frame(e->l[i], &m, 50) == 1)
				if (m.type == WIRE_ROUTE && (m.u.stanza.flags & WIRE_STANZA_SHARD) &&
				    memmem(m.u.stanza.raw.p, m.u.stanza.raw.len, needle, strlen(needle)))
					return i;
		}
	}
	return -1;
}

static void test_relay_again(void **state)
{
	struct env *e = *state;
	char here[32], there[32], jl[256], to[64], admin_out[256];
	struct wire_msg m;
	int first, second;

	owned_by(0, "u", here, sizeof(here));
	owned_by(1, "v", there, sizeof(there));
	for (int i = 0; i < NLINKS; i++) {
		hello(e->l[i], (uint16_t)i, "s3cret");
		expect_frame(e->l[i], &m, WIRE_HELLO_OK);
	}
	snprintf(admin_out, sizeof(admin_out), "%s@localhost", here);
	add_user(e, admin_out, "pw");
	login(e->l[0], 1, here, "r", jl);
	snprintf(to, sizeof(to), "%s@localhost/x", there);
	/* Messages to an account of the other shard leave through some edge link;
	 * presence does too, but only messages are kept. */
	chat(e->l[0], 1, to, jl, "across");
	first = route_on(e, "across");
	assert_true(first >= 0);
	/* That edge dies before passing it on: it goes out again through another. */
	close(e->l[first]->fd);
	e->l[first]->fd = -1;
	second = route_on(e, "across");
	assert_true(second >= 0 && second != first);
	/* Once: nothing more for it. */
	assert_int_equal(route_on(e, "across"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_again, setup_shards, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
