/*
 * test_sm_remote — the session server's external routes (sm/remote.c):
 * WIRE_DOMAIN (components up/down, s2s links, link death), stanzas to
 * remote JIDs and components over WIRE_ROUTE with their bounces, the s2s
 * link choice, and the inbound half of stanzas from external entities
 * (messages, offline storage, blocking, subscriptions, presence and probes,
 * the server's iq).  Driven the way an edge drives it (sm_harness.h):
 * link 0 carries the local users' sessions, links 1 and 2 play edges that
 * offer s2s or components.
 */
#include "tests/unit/sm_harness.h"

/* ---- helpers ------------------------------------------------------------- */

static void domain_frame(struct tlink *t, int op, const char *d)
{
	struct wire_msg m = { .type = WIRE_DOMAIN, .sid = 0 };

	m.u.domain.op = (uint8_t)op;
	m.u.domain.domain = wire_s(d, strlen(d));
	send_frame(t, &m);
	expect_quiet(t);    /* processed before anything sent after it */
}

static void route(struct tlink *t, int kind, const char *type, const char *to, const char *from,
		  const char *id, const char *ns, const char *raw)
{
	struct wire_msg m = { .type = WIRE_ROUTE, .sid = 0 };

	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.type = wire_s(type, strlen(type));
	m.u.stanza.to = wire_s(to, strlen(to));
	m.u.stanza.from = wire_s(from, strlen(from));
	m.u.stanza.id = wire_s(id, strlen(id));
	m.u.stanza.ns = wire_s(ns, strlen(ns));
	m.u.stanza.raw = wire_s(raw, strlen(raw));
	send_frame(t, &m);
}

/* The next frame on t, which must be a ROUTE (sid 0, flags 0), as
 * "TO:<to> FROM:<from> KIND:<kind> RAW:<raw>" in out. */
static void expect_route(struct tlink *t, char *out, size_t cap)
{
	struct wire_msg m;

	expect_frame(t, &m, WIRE_ROUTE);
	assert_int_equal(m.sid, 0);
	assert_int_equal(m.u.stanza.flags, 0);
	assert_true(m.u.stanza.raw.len + m.u.stanza.to.len + m.u.stanza.from.len + 64 < cap);
	snprintf(out, cap, "TO:%.*s FROM:%.*s KIND:%d RAW:%.*s", (int)m.u.stanza.to.len,
		 (const char *)m.u.stanza.to.p, (int)m.u.stanza.from.len,
		 (const char *)m.u.stanza.from.p, m.u.stanza.kind, (int)m.u.stanza.raw.len,
		 (const char *)m.u.stanza.raw.p);
}

/* quiet(), saying what came instead. */
static void quiet(struct tlink *t)
{
	struct wire_msg m = { .type = WIRE_PING, .sid = 0 };

	m.u.ping.token = 0x5157;
	send_frame(t, &m);
	expect_frame_any(t, &m);
	if (m.type != WIRE_PONG)
		fail_msg("expected nothing, got a %s frame: %.*s", wire_type_str(m.type),
			 m.type == WIRE_STANZA || m.type == WIRE_ROUTE ? (int)m.u.stanza.raw.len : 0,
			 m.type == WIRE_STANZA || m.type == WIRE_ROUTE ?
			 (const char *)m.u.stanza.raw.p : "");
}

/* Whether s holds every '|'-separated part of pat. */
static bool matches(const char *s, const char *pat)
{
	char p[1024], *save = NULL, *tok;

	snprintf(p, sizeof(p), "%s", pat);
	for (tok = strtok_r(p, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
		if (!strstr(s, tok))
			return false;
	return true;
}

#define ANY_SID UINT64_MAX

/* n frames on t (ROUTE when sid is 0, else STANZA for sid; for ANY_SID a
 * STANZA of any session, as "SID:<sid> RAW:<raw>"), in any order: each
 * pattern must match a different one of them; then nothing more. */
static void expect_n(struct tlink *t, uint64_t sid, int n, const char *const *pats)
{
	char raws[8][4096];
	bool used[8] = { false };
	struct wire_msg m;

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		if (sid == 0) {
			expect_route(t, raws[i], sizeof(raws[i]));
		} else if (sid == ANY_SID) {
			expect_frame(t, &m, WIRE_STANZA);
			assert_true(m.u.stanza.raw.len + 32 < sizeof(raws[i]));
			snprintf(raws[i], sizeof(raws[i]), "SID:%llu RAW:%.*s",
				 (unsigned long long)m.sid, (int)m.u.stanza.raw.len,
				 (const char *)m.u.stanza.raw.p);
		} else {
			expect_stanza(t, sid, raws[i], sizeof(raws[i]));
		}
	}
	for (int p = 0; p < n; p++) {
		bool found = false;

		for (int i = 0; i < n && !found; i++)
			if (!used[i] && matches(raws[i], pats[p]))
				used[i] = found = true;
		if (!found) {
			for (int i = 0; i < n; i++)
				print_message("got: %s\n", raws[i]);
			fail_msg("no frame matches %s", pats[p]);
		}
	}
	quiet(t);
}

static void expect_one(struct tlink *t, uint64_t sid, const char *pat)
{
	expect_n(t, sid, 1, &pat);
}

static void msg(struct tlink *t, uint64_t sid, const char *from, const char *to, const char *type,
		const char *id, const char *body)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "<message type='%s' id='%s' from='%s' to='%s'><body>%s</body>"
		 "</message>", type, id, from, to, body);
	stanza(t, sid, WIRE_KIND_MESSAGE, type, to, from, id, "", raw);
}

static void rmsg(struct tlink *t, const char *from, const char *to, const char *type,
		 const char *id, const char *body)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "<message type='%s' id='%s' from='%s' to='%s'><body>%s</body>"
		 "</message>", type, id, from, to, body);
	route(t, WIRE_KIND_MESSAGE, type, to, from, id, "", raw);
}

static void rpres(struct tlink *t, const char *from, const char *to, const char *type,
		  const char *inner)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "<presence%s%s%s from='%s' to='%s'>%s</presence>",
		 *type ? " type='" : "", type, *type ? "'" : "", from, to, inner);
	route(t, WIRE_KIND_PRESENCE, type, to, from, "", "", raw);
}

static void riq(struct tlink *t, const char *from, const char *to, const char *type,
		const char *id, const char *ns, const char *payload)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "<iq type='%s' id='%s' from='%s' to='%s'>%s</iq>", type, id,
		 from, to, payload);
	route(t, WIRE_KIND_IQ, type, to, from, id, ns, raw);
}

static void pres(struct tlink *t, uint64_t sid, const char *jid, const char *type,
		 const char *to, const char *inner)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "<presence%s%s%s%s%s%s from='%s'>%s</presence>",
		 *type ? " type='" : "", type, *type ? "'" : "", *to ? " to='" : "", to,
		 *to ? "'" : "", jid, inner);
	stanza(t, sid, WIRE_KIND_PRESENCE, type, to, jid, "", "", raw);
}

static void roster_get(struct tlink *t, uint64_t sid, const char *jid)
{
	stanza(t, sid, WIRE_KIND_IQ, "get", "", jid, "g", "jabber:iq:roster",
	       "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
}

static void close_session(struct tlink *t, uint64_t sid)
{
	struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = sid };

	m.u.close.reason = WIRE_CLOSE_NORMAL;
	send_frame(t, &m);
}

/* Close test link i and wait until the sm has seen it go: a session
 * opened on it first is no longer listed by the admin socket. */
static void link_close(struct env *e, int i)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = 77 };
	char addr[32], out[8192];

	snprintf(addr, sizeof(addr), "gone-%d", i);
	m.u.open.addr = wire_s(addr, strlen(addr));
	send_frame(e->l[i], &m);
	quiet(e->l[i]);
	admin(e, out, sizeof(out), "sessions");
	assert_non_null(strstr(out, addr));
	close(e->l[i]->fd);
	e->l[i]->fd = -1;
	for (int waited = 0; waited < WAIT_MS; waited += 5) {
		admin(e, out, sizeof(out), "sessions");
		if (!strstr(out, addr))
			return;
		poll(NULL, 0, 5);
	}
	fail_msg("the sm did not see link %d close", i);
}

/* Every link said hello; alice exists. */
static void edges(struct env *e)
{
	struct wire_msg m;

	for (int i = 0; i < NLINKS; i++) {
		hello(e->l[i], (uint16_t)i, "s3cret");
		expect_frame(e->l[i], &m, WIRE_HELLO_OK);
	}
	add_user(e, "alice@localhost", "alicepass");
}

/* alice/a online on link 0 (sid 1), roster asked, available. */
static void alice_on(struct env *e, char *ja)
{
	login(e->l[0], 1, "alice", "a", ja);
	roster_get(e->l[0], 1, ja);
	pres(e->l[0], 1, ja, "", "", "");
	drain(e->l[0]);
}

/* ---- outbound routes ------------------------------------------------------ */

static void test_routes(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1], *comp = e->l[2];
	char ja[256];

	edges(e);
	add_user(e, "bob@localhost", "bobpass");
	alice_on(e, ja);

	/* No route at all: RFC 6120 §10.4.3, remote-server-not-found, cancel. */
	msg(a, 1, ja, "bob@remote.example", "chat", "m1", "hi");
	expect_one(a, 1, "<message type='error' id='m1' from='bob@remote.example' "
			 "to='alice@localhost/a'><error type='cancel'><remote-server-not-found "
			 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");

	/* An s2s link: the stanza goes out as it came, canonical header. */
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	msg(a, 1, ja, "Bob@Remote.Example/Phone", "chat", "m2", "hello");
	expect_one(s2s, 0, "TO:bob@remote.example/Phone FROM:alice@localhost/a KIND:1 "
			   "RAW:<message type='chat' id='m2' from='alice@localhost/a' "
			   "to='Bob@Remote.Example/Phone'><body>hello</body></message>");
	quiet(a);
	quiet(comp);

	/* A component and its subdomains go to its link, never to s2s. */
	domain_frame(comp, WIRE_DOMAIN_UP, "IRC.example.");
	msg(a, 1, ja, "#chan%net@irc.example", "groupchat", "m3", "to the component");
	expect_one(comp, 0, "TO:#chan%net@irc.example FROM:alice@localhost/a|<body>to the component");
	msg(a, 1, ja, "x.irc.example", "normal", "m4", "to a subdomain");
	expect_one(comp, 0, "TO:x.irc.example FROM:alice@localhost/a|<body>to a subdomain");
	/* A subdomain of ours is a component's like any other. */
	domain_frame(comp, WIRE_DOMAIN_UP, "conference.localhost");
	msg(a, 1, ja, "room@conference.localhost", "groupchat", "m5", "muc");
	expect_one(comp, 0, "TO:room@conference.localhost|<body>muc");
	quiet(s2s);

	/* A served domain is never a component's: bob stays local. */
	domain_frame(comp, WIRE_DOMAIN_UP, "localhost");
	msg(a, 1, ja, "bob@localhost", "chat", "m6", "local");
	quiet(comp);

	/* DOWN from a link the component is not on changes nothing. */
	domain_frame(s2s, WIRE_DOMAIN_DOWN, "irc.example");
	msg(a, 1, ja, "x@irc.example", "chat", "m7", "still up");
	expect_one(comp, 0, "TO:x@irc.example|<body>still up");

	/* DOWN from its link: service-unavailable (cancel), even for its
	 * subdomains; never sent to s2s instead. */
	domain_frame(comp, WIRE_DOMAIN_DOWN, "irc.example");
	msg(a, 1, ja, "x@sub.irc.example", "chat", "m8", "down");
	expect_one(a, 1, "<message type='error' id='m8' from='x@sub.irc.example' "
			 "to='alice@localhost/a'><error type='cancel'><service-unavailable ");
	quiet(s2s);
	quiet(comp);
	/* A configured component never connected: known, down. */
	domain_frame(s2s, WIRE_DOMAIN_DOWN, "gw.example");
	stanza(a, 1, WIRE_KIND_IQ, "get", "gw.example", ja, "q1", "jabber:iq:version",
	       "<iq type='get' id='q1' to='gw.example'><query xmlns='jabber:iq:version'/></iq>");
	expect_one(a, 1, "<iq type='error' id='q1' from='gw.example' to='alice@localhost/a'>"
			 "<error type='cancel'><service-unavailable ");

	/* UP again, on the other link: that link has it now. */
	domain_frame(s2s, WIRE_DOMAIN_UP, "irc.example");
	msg(a, 1, ja, "x@irc.example", "chat", "m9", "moved");
	expect_one(s2s, 0, "TO:x@irc.example|<body>moved");
	domain_frame(comp, WIRE_DOMAIN_UP, "irc.example");
	msg(a, 1, ja, "x@irc.example", "chat", "m10", "moved back");
	expect_one(comp, 0, "TO:x@irc.example|<body>moved back");
	quiet(s2s);

	/* The component's link dies: its components go down. */
	link_close(e, 2);
	msg(a, 1, ja, "room@conference.localhost", "groupchat", "m11", "gone");
	expect_one(a, 1, "type='error' id='m11'|<service-unavailable ");
	/* The s2s link dies: no s2s left, remote domains bounce again. */
	link_close(e, 1);
	msg(a, 1, ja, "bob@remote.example", "chat", "m12", "gone too");
	expect_one(a, 1, "type='error' id='m12'|<remote-server-not-found ");
	/* The local path is untouched by all of it. */
	msg(a, 1, ja, "alice@localhost/a", "chat", "m13", "self");
	expect_one(a, 1, "<body>self</body>");
}

/* Errors are never answered (RFC 6120 §8.3.1), nor iq results. */
static void test_never_answer_errors(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *comp = e->l[2];
	char ja[256];

	edges(e);
	alice_on(e, ja);
	stanza(a, 1, WIRE_KIND_MESSAGE, "error", "bob@remote.example", ja, "e1", "",
	       "<message type='error' id='e1' to='bob@remote.example'><error type='cancel'>"
	       "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
	stanza(a, 1, WIRE_KIND_PRESENCE, "error", "bob@remote.example", ja, "e2", "",
	       "<presence type='error' id='e2' to='bob@remote.example'/>");
	stanza(a, 1, WIRE_KIND_IQ, "error", "bob@remote.example/x", ja, "e3", "",
	       "<iq type='error' id='e3' to='bob@remote.example/x'/>");
	stanza(a, 1, WIRE_KIND_IQ, "result", "bob@remote.example/x", ja, "e4", "",
	       "<iq type='result' id='e4' to='bob@remote.example/x'/>");
	quiet(a);
	/* The same to a component that is down. */
	domain_frame(comp, WIRE_DOMAIN_DOWN, "irc.example");
	stanza(a, 1, WIRE_KIND_MESSAGE, "error", "x@irc.example", ja, "e5", "",
	       "<message type='error' id='e5' to='x@irc.example'/>");
	quiet(a);
	/* An external sender's error to nobody here: dropped, not answered. */
	domain_frame(e->l[1], WIRE_DOMAIN_S2S, "");
	rmsg(e->l[1], "bob@remote.example/x", "nobody@localhost", "error", "e6", "x");
	route(e->l[1], WIRE_KIND_IQ, "error", "localhost", "bob@remote.example/x", "e7", "",
	      "<iq type='error' id='e7' to='localhost' from='bob@remote.example/x'/>");
	quiet(e->l[1]);
	/* A component's message to a down component: its error comes back to
	 * it, and that error is not bounced again. */
	domain_frame(comp, WIRE_DOMAIN_UP, "bot.example");
	rmsg(comp, "b@bot.example", "x@irc.example", "chat", "e8", "loop?");
	expect_one(comp, 0, "TO:b@bot.example FROM:x@irc.example|type='error' id='e8'|"
			    "<service-unavailable ");
	quiet(a);
}

/* Rendezvous hashing over the s2s links: one (local, remote) pair, one link. */
static void test_s2s_pick(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0];
	char ja[256], to[64], out[4096];
	int count[3] = { 0 }, first[16];

	edges(e);
	alice_on(e, ja);
	domain_frame(e->l[1], WIRE_DOMAIN_S2S, "");
	domain_frame(e->l[2], WIRE_DOMAIN_S2S, "");
	domain_frame(e->l[2], WIRE_DOMAIN_S2S, "");     /* twice: still one entry */
	for (int round = 0; round < 3; round++) {
		for (int d = 0; d < 16; d++) {
			struct pollfd p[2] = { { .fd = e->l[1]->fd, .events = POLLIN },
					       { .fd = e->l[2]->fd, .events = POLLIN } };
			int got;

			snprintf(to, sizeof(to), "u%d@d%d.example/r", round, d);
			msg(a, 1, ja, to, "chat", "h", "x");
			assert_true(poll(p, 2, WAIT_MS) > 0);
			got = (p[0].revents & POLLIN) ? 1 : 2;
			expect_route(e->l[got], out, sizeof(out));
			assert_non_null(strstr(out, to));
			quiet(e->l[got == 1 ? 2 : 1]);
			if (round == 0)
				first[d] = got;
			else
				assert_int_equal(got, first[d]);   /* the pair keeps its link */
			count[got]++;
		}
	}
	/* Both links carry some pairs (deterministic: the hash is not seeded). */
	assert_true(count[1] > 0 && count[2] > 0);
	/* One link goes: its pairs move to the other, the others stay. */
	link_close(e, 2);
	for (int d = 0; d < 16; d++) {
		snprintf(to, sizeof(to), "v@d%d.example", d);
		msg(a, 1, ja, to, "chat", "h", "x");
		expect_one(e->l[1], 0, to);
	}
}

/* ---- inbound --------------------------------------------------------------- */

static void test_inbound_messages(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1], *comp = e->l[2];
	char ja[256], raw[4096];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	/* alice offline: stored (with a delay stamp), delivered at her
	 * initial presence; a message to nobody is refused. */
	rmsg(s2s, "bob@remote.example/x", "alice@localhost", "chat", "o1", "while you were out");
	rmsg(s2s, "bob@remote.example/x", "nobody@localhost", "chat", "o2", "anyone?");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:nobody@localhost|"
			   "<message type='error' id='o2' from='nobody@localhost' "
			   "to='bob@remote.example/x'><error type='cancel'><service-unavailable ");
	login(a, 1, "alice", "a", ja);
	pres(a, 1, ja, "", "", "");
	expect_n(a, 1, 2, (const char *const[]){
		"from='alice@localhost/a'|to='alice@localhost'",
		"id='o1'|from='bob@remote.example/x'|<body>while you were out</body>|"
		"<delay xmlns='urn:xmpp:delay' from='localhost'" });

	/* Online: to the bare JID, to the full JID; a headline to a gone
	 * resource is dropped, a chat goes to the bare JID's best resource. */
	rmsg(s2s, "bob@remote.example/x", "alice@localhost", "chat", "b1", "bare");
	expect_one(a, 1, "id='b1'|<body>bare</body>");
	rmsg(s2s, "bob@remote.example/x", "alice@localhost/a", "chat", "f1", "full");
	expect_one(a, 1, "id='f1'|<body>full</body>");
	rmsg(s2s, "bob@remote.example/x", "alice@localhost/gone", "headline", "h1", "x");
	quiet(a);
	rmsg(s2s, "bob@remote.example/x", "alice@localhost/gone", "chat", "f2", "moved");
	expect_one(a, 1, "id='f2'|<body>moved</body>");
	/* To the server itself: service-unavailable, back out. */
	rmsg(s2s, "bob@remote.example/x", "localhost", "chat", "s1", "server?");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:localhost|type='error' id='s1'|"
			   "<service-unavailable ");

	/* What the sm checks again: from a domain of ours, from a domain the
	 * link does not carry (no s2s on link 2), to a domain we do not serve
	 * from an s2s peer: all dropped, nothing answered. */
	rmsg(s2s, "mallory@localhost/x", "alice@localhost", "chat", "x1", "spoof");
	rmsg(comp, "bob@remote.example/x", "alice@localhost", "chat", "x2", "no s2s here");
	rmsg(s2s, "bob@remote.example/x", "carol@elsewhere.example", "chat", "x3", "relay?");
	route(s2s, WIRE_KIND_MESSAGE, "chat", "alice@localhost", "", "x4", "",
	      "<message to='alice@localhost'/>");
	quiet(a);
	quiet(s2s);
	quiet(comp);

	/* A component may talk to other servers and to other components. */
	domain_frame(comp, WIRE_DOMAIN_UP, "irc.example");
	domain_frame(comp, WIRE_DOMAIN_UP, "bot.example");
	rmsg(comp, "nick@irc.example", "carol@elsewhere.example", "chat", "c1", "relayed");
	expect_one(s2s, 0, "TO:carol@elsewhere.example FROM:nick@irc.example|<body>relayed");
	rmsg(comp, "nick@irc.example", "b@bot.example", "chat", "c2", "to a component");
	expect_one(comp, 0, "TO:b@bot.example FROM:nick@irc.example|<body>to a component");
	/* ... and to us, from its own link only. */
	rmsg(comp, "nick@irc.example", "alice@localhost/a", "chat", "c3", "from irc");
	expect_one(a, 1, "id='c3'|from='nick@irc.example'");
	rmsg(s2s, "nick@irc.example", "alice@localhost/a", "chat", "c4", "wrong link");
	quiet(a);
	/* ... but an error from it may come on any link: the edge that could
	 * not deliver to it answers (after its DOWN, here). */
	domain_frame(comp, WIRE_DOMAIN_DOWN, "irc.example");
	msg(a, 1, ja, "nick@irc.example", "chat", "c5", "x");
	expect_one(a, 1, "type='error' id='c5'|<service-unavailable ");
	rmsg(s2s, "nick@irc.example", "alice@localhost/a", "error", "c6", "edge bounce");
	expect_one(a, 1, "type='error' id='c6'|from='nick@irc.example'");
	domain_frame(comp, WIRE_DOMAIN_UP, "irc.example");

	/* XEP-0191: alice blocks bob@remote.example: his message is refused
	 * with service-unavailable (she looks offline), his presence dropped. */
	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "blk", "urn:xmpp:blocking",
	       "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'>"
	       "<item jid='bob@remote.example'/></block></iq>");
	expect_one(a, 1, "type='result' id='blk'");
	rmsg(s2s, "bob@remote.example/x", "alice@localhost", "chat", "k1", "blocked?");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:alice@localhost|type='error' id='k1'|"
			   "<service-unavailable ");
	rpres(s2s, "bob@remote.example/x", "alice@localhost", "", "");
	quiet(a);
	quiet(s2s);
	/* Her own messages to him: not-acceptable + <blocked/>. */
	msg(a, 1, ja, "bob@remote.example", "chat", "k2", "x");
	expect_one(a, 1, "type='error' id='k2'|<not-acceptable |<blocked ");
	quiet(s2s);
	(void)raw;
}

static void mam_always(struct sm_config *cfg)
{
	cfg->mam_retention_days = 30;
	cfg->mam_default = 2;       /* always: bob is not in alice's roster */
}

static int setup_mam(void **state)
{
	return setup_tuned(state, mam_always);
}

/* XEP-0313 and XEP-0280 still apply to one-to-one messages with remote JIDs. */
static void test_carbons_mam_remote(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1];
	char ja[256], jb[256];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	alice_on(e, ja);
	login(a, 2, "alice", "b", jb);
	pres(a, 2, jb, "", "", "");
	drain(a);
	for (uint64_t sid = 1; sid <= 2; sid++) {
		stanza(a, sid, WIRE_KIND_IQ, "set", "", sid == 1 ? ja : jb, "cb", "urn:xmpp:carbons:2",
		       "<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
		expect_one(a, sid, "type='result' id='cb'");
	}
	/* Sent: out over s2s, a <sent/> carbon to the other resource. */
	msg(a, 1, ja, "bob@remote.example", "chat", "c1", "out");
	expect_one(e->l[1], 0, "TO:bob@remote.example|<body>out</body>");
	/* Received: to resource a, a <received/> carbon to b. */
	rmsg(s2s, "bob@remote.example/x", "alice@localhost/a", "chat", "c2", "in");
	expect_n(a, ANY_SID, 3, (const char *const[]){
		"SID:2 |<sent xmlns='urn:xmpp:carbons:2'>|<body>out</body>",
		"SID:1 |<body>in</body>|<stanza-id xmlns='urn:xmpp:sid:0'",
		"SID:2 |<received xmlns='urn:xmpp:carbons:2'>|<body>in</body>" });
	/* Both are in alice's archive, with bob. */
	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "q", "urn:xmpp:mam:2",
	       "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='Q'/></iq>");
	expect_n(a, 1, 3, (const char *const[]){
		"<result xmlns='urn:xmpp:mam:2' queryid='Q'|<body>out</body>",
		"<result xmlns='urn:xmpp:mam:2' queryid='Q'|<body>in</body>",
		"type='result' id='q'|<fin " });
}

/*
 * A whole subscription handshake between alice@localhost and
 * bob@remote.example (RFC 6121 §3), then presence both ways, probes,
 * unavailable, and removal (§2.5.2): what goes out over ROUTE and what
 * alice's client sees.
 */
static void test_subscription_remote(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1];
	char ja[256], jb[256], out[4096];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	alice_on(e, ja);

	/* §3.1.2: alice asks; her push shows ask; bob's server gets the
	 * request stamped with her bare JID. */
	pres(a, 1, ja, "subscribe", "Bob@remote.example", "");
	expect_one(a, 1, "<item jid='bob@remote.example' subscription='none' ask='subscribe'/>");
	expect_one(s2s, 0, "TO:bob@remote.example FROM:alice@localhost KIND:2|type='subscribe'|"
			   "from='alice@localhost'|to='bob@remote.example'");

	/* §3.1.6: bob approves: alice gets the approval and a push (to). */
	rpres(s2s, "bob@remote.example", "alice@localhost", "subscribed", "");
	expect_n(a, 1, 2, (const char *const[]){
		"<presence |type='subscribed'|from='bob@remote.example'|to='alice@localhost'",
		"<item jid='bob@remote.example' subscription='to'/>" });
	quiet(s2s);
	/* His presence reaches her, at her bare JID and at her full JID. */
	rpres(s2s, "bob@remote.example/phone", "alice@localhost", "", "<show>away</show>");
	expect_one(a, 1, "from='bob@remote.example/phone'|<show>away</show>");

	/* §3.1.3: bob asks back: alice's client gets the request (no push:
	 * he is listed already and the request shows nothing); she approves:
	 * push both, "subscribed" out, then her presence to him (§3.1.5). */
	rpres(s2s, "bob@remote.example", "alice@localhost", "subscribe", "");
	expect_one(a, 1, "<presence |type='subscribe'|from='bob@remote.example'|"
			 "to='alice@localhost'");
	pres(a, 1, ja, "subscribed", "bob@remote.example", "");
	expect_one(a, 1, "<item jid='bob@remote.example' subscription='both'/>");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost KIND:2|type='subscribed'|"
		"from='alice@localhost'",
		"TO:bob@remote.example FROM:alice@localhost/a KIND:2|from='alice@localhost/a'|"
		"to='bob@remote.example'" });
	admin(e, out, sizeof(out), "roster list alice@localhost");
	assert_string_equal(out, "bob@remote.example both\nok\n");

	/* §4.4.2: her presence broadcast goes to him with `to` set. */
	pres(a, 1, ja, "", "", "<show>dnd</show>");
	expect_one(s2s, 0, "TO:bob@remote.example FROM:alice@localhost/a|to='bob@remote.example'|"
			   "from='alice@localhost/a'|<show>dnd</show>");
	drain(a);

	/* §4.3.2: his server probes her: each available resource answers;
	 * a stranger's probe gets "unsubscribed". */
	rpres(s2s, "bob@remote.example", "alice@localhost", "probe", "");
	expect_one(s2s, 0, "TO:bob@remote.example FROM:alice@localhost/a|from='alice@localhost/a'|"
			   "to='bob@remote.example'|<show>dnd</show>");
	rpres(s2s, "carol@remote.example", "alice@localhost", "probe", "");
	expect_one(s2s, 0, "TO:carol@remote.example FROM:alice@localhost|"
			   "<presence type='unsubscribed' from='alice@localhost' "
			   "to='carol@remote.example'/>");

	/* §4.2.2 / §4.3.1: a second resource's initial presence: broadcast
	 * to bob and a probe from her bare JID; his answer, to her bare JID,
	 * reaches both resources. */
	login(a, 2, "alice", "b", jb);
	pres(a, 2, jb, "", "", "");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost/b|from='alice@localhost/b'|"
		"to='bob@remote.example'",
		"TO:bob@remote.example FROM:alice@localhost KIND:2 RAW:<presence type='probe' "
		"from='alice@localhost' to='bob@remote.example'/>" });
	drain(a);
	rpres(s2s, "bob@remote.example/phone", "alice@localhost", "", "<show>xa</show>");
	expect_n(a, ANY_SID, 2, (const char *const[]){
		"SID:1 |from='bob@remote.example/phone'|to='alice@localhost'|<show>xa</show>",
		"SID:2 |from='bob@remote.example/phone'|to='alice@localhost'|<show>xa</show>" });
	/* His unavailable too. */
	rpres(s2s, "bob@remote.example/phone", "alice@localhost", "unavailable", "");
	expect_n(a, ANY_SID, 2, (const char *const[]){
		"SID:1 |type='unavailable'|from='bob@remote.example/phone'",
		"SID:2 |type='unavailable'|from='bob@remote.example/phone'" });

	/* §4.5.2: resource a goes unavailable: he hears it. */
	pres(a, 1, ja, "unavailable", "", "");
	expect_one(s2s, 0, "TO:bob@remote.example FROM:alice@localhost/a|type='unavailable'|"
			   "to='bob@remote.example'");
	drain(a);

	/* §2.5.2: alice removes him: unavailable from her available resource
	 * b, then "unsubscribe" and "unsubscribed" from her bare JID; her
	 * resources get the push; the row is gone. */
	stanza(a, 2, WIRE_KIND_IQ, "set", "", jb, "r1", "jabber:iq:roster",
	       "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'>"
	       "<item jid='bob@remote.example' subscription='remove'/></query></iq>");
	expect_n(s2s, 0, 3, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost/b|type='unavailable'",
		"TO:bob@remote.example FROM:alice@localhost KIND:2 RAW:<presence "
		"type='unsubscribe' from='alice@localhost' to='bob@remote.example'/>",
		"TO:bob@remote.example FROM:alice@localhost KIND:2 RAW:<presence "
		"type='unsubscribed' from='alice@localhost' to='bob@remote.example'/>" });
	expect_n(a, ANY_SID, 2, (const char *const[]){
		"SID:1 |<item jid='bob@remote.example' subscription='remove'/>",
		"SID:2 |<iq type='result' id='r1' to='alice@localhost/b'/>" });
	admin(e, out, sizeof(out), "roster list alice@localhost");
	assert_string_equal(out, "roster is empty\nok\n");
	/* His late "unsubscribe" answer: nothing to push, nothing to send. */
	rpres(s2s, "bob@remote.example", "alice@localhost", "unsubscribed", "");
	quiet(s2s);
}

/* A remote user subscribes to an offline local account: the request waits
 * for her record and is kept; her approval goes out with her presence. */
static void test_subscription_from_remote_offline(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1];
	char ja[256];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	rpres(s2s, "dave@remote.example", "alice@localhost", "subscribe", "<status>hi</status>");
	/* A subscription for nobody is silently ignored (§8.5.1). */
	rpres(s2s, "dave@remote.example", "nobody@localhost", "subscribe", "");
	quiet(s2s);
	login(a, 1, "alice", "a", ja);
	roster_get(a, 1, ja);
	pres(a, 1, ja, "", "", "");
	expect_n(a, 1, 3, (const char *const[]){
		"<iq type='result' id='g'|<query xmlns='jabber:iq:roster' ver='1'></query>",
		"from='alice@localhost/a'|to='alice@localhost'",
		"type='subscribe'|from='dave@remote.example'|to='alice@localhost'|"
		"<status>hi</status>" });
	pres(a, 1, ja, "subscribed", "dave@remote.example", "");
	expect_one(a, 1, "<item jid='dave@remote.example' subscription='from'/>");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:dave@remote.example FROM:alice@localhost KIND:2|type='subscribed'",
		"TO:dave@remote.example FROM:alice@localhost/a|from='alice@localhost/a'|"
		"to='dave@remote.example'" });
	/* Answers the server gives on her behalf (RFC 6121 A.3.1, A.3.2):
	 * dave asks again: "subscribed" at once, and her presence; he cancels:
	 * she hears it, her push shows none, he gets her unavailable and the
	 * automatic "unsubscribed". */
	rpres(s2s, "dave@remote.example", "alice@localhost", "subscribe", "");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:dave@remote.example FROM:alice@localhost KIND:2 RAW:<presence "
		"type='subscribed' from='alice@localhost' to='dave@remote.example'/>",
		"TO:dave@remote.example FROM:alice@localhost/a|from='alice@localhost/a'" });
	quiet(a);
	rpres(s2s, "dave@remote.example", "alice@localhost", "unsubscribe", "");
	expect_n(a, 1, 2, (const char *const[]){
		"<presence |type='unsubscribe'|from='dave@remote.example'",
		"<item jid='dave@remote.example' subscription='none'/>" });
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:dave@remote.example FROM:alice@localhost/a|type='unavailable'",
		"TO:dave@remote.example FROM:alice@localhost KIND:2 RAW:<presence "
		"type='unsubscribed' from='alice@localhost' to='dave@remote.example'/>" });
	/* Subscribed again, then her session ends without a word: dave hears
	 * her unavailable. */
	rpres(s2s, "dave@remote.example", "alice@localhost", "subscribe", "");
	expect_one(a, 1, "type='subscribe'|from='dave@remote.example'");
	pres(a, 1, ja, "subscribed", "dave@remote.example", "");
	expect_one(a, 1, "<item jid='dave@remote.example' subscription='from'/>");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:dave@remote.example FROM:alice@localhost KIND:2|type='subscribed'",
		"TO:dave@remote.example FROM:alice@localhost/a|from='alice@localhost/a'" });
	close_session(a, 1);
	expect_one(s2s, 0, "TO:dave@remote.example FROM:alice@localhost/a KIND:2|"
			   "type='unavailable'|from='alice@localhost/a'|to='dave@remote.example'");
}

/* Contacts elsewhere in the roster: initial presence, probes, directed
 * presence and its unavailable, all over ROUTE. */
static void test_presence_remote_contacts(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1], *comp = e->l[2];
	char ja[256];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	domain_frame(comp, WIRE_DOMAIN_UP, "conference.example");
	admin_ok(e, "roster add %s %s both %s", "alice@localhost", "bob@remote.example", "Bob");
	admin_ok(e, "roster add %s %s to %s", "alice@localhost", "eve@other.example", "Eve");
	admin_ok(e, "roster add %s %s from %s", "alice@localhost", "fred@other.example", "Fred");
	login(a, 1, "alice", "a", ja);
	pres(a, 1, ja, "", "", "<priority>5</priority>");
	/* Broadcast to from/both (bob, fred), probes to to/both (bob, eve). */
	expect_n(s2s, 0, 4, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost/a|<priority>5</priority>",
		"TO:fred@other.example FROM:alice@localhost/a|<priority>5</priority>",
		"RAW:<presence type='probe' from='alice@localhost' to='bob@remote.example'/>",
		"RAW:<presence type='probe' from='alice@localhost' to='eve@other.example'/>" });
	drain(a);

	/* Directed presence to a MUC room (a component): out as sent; her
	 * unavailable reaches it too (§4.6.3). */
	pres(a, 1, ja, "", "room@conference.example/Alice", "<x xmlns='http://jabber.org/protocol/muc'/>");
	expect_one(comp, 0, "TO:room@conference.example/Alice FROM:alice@localhost/a|"
			    "<x xmlns='http://jabber.org/protocol/muc'/>");
	/* The room answers to her full JID. */
	rpres(comp, "room@conference.example/Alice", "alice@localhost/a", "",
	      "<x xmlns='http://jabber.org/protocol/muc#user'/>");
	expect_one(a, 1, "from='room@conference.example/Alice'|muc#user");
	pres(a, 1, ja, "unavailable", "", "<status>bye</status>");
	expect_n(s2s, 0, 2, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost/a|type='unavailable'|<status>bye</status>",
		"TO:fred@other.example FROM:alice@localhost/a|type='unavailable'" });
	expect_one(comp, 0, "TO:room@conference.example/Alice FROM:alice@localhost/a|"
			    "type='unavailable'|to='room@conference.example/Alice'|<status>bye</status>");

	/* XEP-0191: blocking fred sends him unavailable, and he gets no more
	 * broadcasts; unblocking sends him her presence. */
	pres(a, 1, ja, "", "", "");
	expect_n(s2s, 0, 4, (const char *const[]){
		"TO:bob@remote.example FROM:alice@localhost/a",
		"TO:fred@other.example FROM:alice@localhost/a",
		"RAW:<presence type='probe' from='alice@localhost' to='bob@remote.example'/>",
		"RAW:<presence type='probe' from='alice@localhost' to='eve@other.example'/>" });
	drain(a);
	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "blk", "urn:xmpp:blocking",
	       "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'>"
	       "<item jid='other.example'/></block></iq>");
	expect_one(a, 1, "type='result' id='blk'");
	expect_one(s2s, 0, "TO:fred@other.example FROM:alice@localhost/a|type='unavailable'");
	pres(a, 1, ja, "", "", "<show>chat</show>");
	expect_one(s2s, 0, "TO:bob@remote.example FROM:alice@localhost/a|<show>chat</show>");
	drain(a);
	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "ublk", "urn:xmpp:blocking",
	       "<iq type='set' id='ublk'><unblock xmlns='urn:xmpp:blocking'/></iq>");
	expect_one(a, 1, "type='result' id='ublk'");
	expect_one(s2s, 0, "TO:fred@other.example FROM:alice@localhost/a|<show>chat</show>");

	/* No route for the contacts' domains: lost presence is not answered
	 * (broadcasts, directed presence); a subscription request is: the
	 * error comes to her resources from the contact. */
	link_close(e, 1);
	pres(a, 1, ja, "", "", "<show>away</show>");
	expect_one(a, 1, "from='alice@localhost/a'|to='alice@localhost'|<show>away</show>");
	pres(a, 1, ja, "", "room@elsewhere.example/Alice", "");
	quiet(a);
	pres(a, 1, ja, "subscribe", "carol@nowhere.example", "");
	expect_one(a, 1, "<presence type='error' from='carol@nowhere.example' "
			 "to='alice@localhost'><error type='cancel'><remote-server-not-found ");
}

/* The server's iq to an external requester (RFC 6120 §10.3.3, XEP-0030,
 * XEP-0199, XEP-0092); what needs a session of ours is refused. */
static void test_server_iq_remote(void **state)
{
	struct env *e = *state;
	struct tlink *a = e->l[0], *s2s = e->l[1];
	const char *bob = "bob@remote.example/x";
	char ja[256];

	edges(e);
	domain_frame(s2s, WIRE_DOMAIN_S2S, "");
	riq(s2s, bob, "localhost", "get", "d1", "http://jabber.org/protocol/disco#info",
	    "<query xmlns='http://jabber.org/protocol/disco#info'/>");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:localhost KIND:3|"
			   "<iq type='result' id='d1' from='localhost' to='bob@remote.example/x'>|"
			   "<identity category='server' type='im'|"
			   "<feature var='urn:xmpp:ping'/>");
	riq(s2s, bob, "localhost", "get", "d2", "http://jabber.org/protocol/disco#items",
	    "<query xmlns='http://jabber.org/protocol/disco#items'/>");
	expect_one(s2s, 0, "<iq type='result' id='d2' from='localhost' to='bob@remote.example/x'>"
			   "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
	riq(s2s, bob, "localhost", "get", "p1", "urn:xmpp:ping", "<ping xmlns='urn:xmpp:ping'/>");
	expect_one(s2s, 0, "RAW:<iq type='result' id='p1' from='localhost' "
			   "to='bob@remote.example/x'/>");
	riq(s2s, bob, "localhost", "get", "v1", "jabber:iq:version",
	    "<query xmlns='jabber:iq:version'/>");
	expect_one(s2s, 0, "type='result' id='v1'|<name>xedge</name>");
	/* Rosters, sessions and carbons are our clients' business. */
	riq(s2s, bob, "localhost", "get", "r1", "jabber:iq:roster",
	    "<query xmlns='jabber:iq:roster'/>");
	expect_one(s2s, 0, "type='error' id='r1'|<error type='cancel'><service-unavailable ");
	riq(s2s, bob, "alice@localhost", "get", "r2", "jabber:iq:roster",
	    "<query xmlns='jabber:iq:roster'/>");
	expect_one(s2s, 0, "type='error' id='r2' from='alice@localhost'|<error type='auth'>"
			   "<forbidden ");
	riq(s2s, bob, "localhost", "set", "c1", "urn:xmpp:carbons:2",
	    "<enable xmlns='urn:xmpp:carbons:2'/>");
	expect_one(s2s, 0, "type='error' id='c1'|<service-unavailable ");
	riq(s2s, bob, "localhost", "set", "s1", "urn:ietf:params:xml:ns:xmpp-session",
	    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>");
	expect_one(s2s, 0, "type='error' id='s1'|<service-unavailable ");
	riq(s2s, bob, "alice@localhost", "get", "pv", "jabber:iq:private",
	    "<query xmlns='jabber:iq:private'><x xmlns='a:b'/></query>");
	expect_one(s2s, 0, "type='error' id='pv'|<forbidden ");
	/* A result or error to the server: nothing. */
	riq(s2s, bob, "localhost", "result", "z1", "", "");
	quiet(s2s);

	/* On an account's behalf while it is offline (its record loads,
	 * the request waits): disco#info, vCard. */
	riq(s2s, bob, "alice@localhost", "get", "a1", "http://jabber.org/protocol/disco#info",
	    "<query xmlns='http://jabber.org/protocol/disco#info'/>");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:alice@localhost|type='result' id='a1'|"
			   "<identity category='account' type='registered'/>");
	riq(s2s, bob, "nobody@localhost", "get", "a2", "http://jabber.org/protocol/disco#info",
	    "<query xmlns='http://jabber.org/protocol/disco#info'/>");
	expect_one(s2s, 0, "type='error' id='a2' from='nobody@localhost'|<service-unavailable ");
	riq(s2s, bob, "alice@localhost", "get", "a3", "vcard-temp", "<vCard xmlns='vcard-temp'/>");
	expect_one(s2s, 0, "type='error' id='a3'|<service-unavailable ");
	login(a, 1, "alice", "a", ja);
	stanza(a, 1, WIRE_KIND_IQ, "set", "", ja, "vs", "vcard-temp",
	       "<iq type='set' id='vs'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>");
	expect_one(a, 1, "type='result' id='vs'");
	riq(s2s, bob, "alice@localhost", "get", "a4", "vcard-temp", "<vCard xmlns='vcard-temp'/>");
	expect_one(s2s, 0, "type='result' id='a4' from='alice@localhost' "
			   "to='bob@remote.example/x'|<FN>Alice</FN>");
	riq(s2s, bob, "alice@localhost", "set", "a5", "vcard-temp",
	    "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>");
	expect_one(s2s, 0, "type='error' id='a5'|<forbidden ");

	/* To her full JID: forwarded; her answer goes back out; to a gone
	 * resource: service-unavailable. */
	riq(s2s, bob, "alice@localhost/a", "get", "f1", "jabber:iq:version",
	    "<query xmlns='jabber:iq:version'/>");
	expect_one(a, 1, "<iq type='get' id='f1' from='bob@remote.example/x' "
			 "to='alice@localhost/a'>");
	stanza(a, 1, WIRE_KIND_IQ, "result", bob, ja, "f1", "",
	       "<iq type='result' id='f1' to='bob@remote.example/x' from='alice@localhost/a'/>");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:alice@localhost/a KIND:3|"
			   "type='result' id='f1'");
	riq(s2s, bob, "alice@localhost/gone", "get", "f2", "jabber:iq:version",
	    "<query xmlns='jabber:iq:version'/>");
	expect_one(s2s, 0, "type='error' id='f2' from='alice@localhost/gone'|"
			   "<service-unavailable ");
	/* Alice asks bob: out; with no route: remote-server-not-found. */
	stanza(a, 1, WIRE_KIND_IQ, "get", bob, ja, "o1", "urn:xmpp:ping",
	       "<iq type='get' id='o1' to='bob@remote.example/x'><ping xmlns='urn:xmpp:ping'/></iq>");
	expect_one(s2s, 0, "TO:bob@remote.example/x FROM:alice@localhost/a KIND:3|id='o1'");
	link_close(e, 1);
	stanza(a, 1, WIRE_KIND_IQ, "get", bob, ja, "o2", "urn:xmpp:ping",
	       "<iq type='get' id='o2' to='bob@remote.example/x'><ping xmlns='urn:xmpp:ping'/></iq>");
	expect_one(a, 1, "<iq type='error' id='o2' from='bob@remote.example/x' "
			 "to='alice@localhost/a'><error type='cancel'><remote-server-not-found ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_answer_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s2s_pick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carbons_mam_remote, setup_mam, teardown),
		cmocka_unit_test_setup_teardown(test_subscription_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscription_from_remote_offline, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_presence_remote_contacts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_iq_remote, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
