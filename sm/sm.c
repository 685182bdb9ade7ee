/*
 * sm — the session server's event loop, links, sessions, binds and delivery
 * tracking.
 * See sm.h for the public contract and sm_int.h for the object graph.
 *
 * One thread, one epoll set over few descriptors: the eventfd sm_stop()
 * writes, the edge listener, one link per edge worker, the admin socket and
 * its connections, and the storage thread's completion eventfd
 * (sm/store.c).  Epoll is level-triggered; each wakeup handles a batch of
 * events, then writes every link that has output (one send per link per
 * batch, which coalesces the frames of the batch), then reaps links killed
 * during the batch.  Killing is deferred so that no handler ever sees a link
 * or session disappear under it.
 *
 * Per link (DESIGN §5, parser/wire.h):
 *   HELLO -> HELLO_OK; SESSION_OPEN; CRED_REQ -> CRED_RESP; AUTHED;
 *   BIND_REQ -> BIND_RESP (replacing a session holding the same full JID,
 *   RFC 6120 §7.7.2.2); STANZA (sm/route.c); SESSION_CLOSE; PING -> PONG;
 *   REGISTER -> REGISTER_RESP (XEP-0077); CREDIT (flow control);
 *   DELIVERED (what the edge wrote to the client: delivery tracking below);
 *   ROUTE and DOMAIN (external entities: sm/remote.c).
 * A frame that does not decode, a frame before HELLO or a frame only the sm
 * sends breaks the link: the peer is not speaking our protocol.  A frame for
 * an unknown session is dropped (the sm may have ended it first).
 *
 * Storage is never called from here directly: credentials, registration and
 * account records are storage jobs (sm/store.h) whose done() answers the
 * edge; a bind waits for its account's record (sm/user.c).
 */
#include "sm/sm.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/chan.h"
#include "parser/jid.h"
#include "parser/shard.h"
#include "parser/xmlstage.h"
#include "sm/sm_int.h"
#include "sm/store.h"
#include "tls/crypto.h"

#define SM_EPOLL_BATCH 64
#define SM_READ_CHUNK 65536
#define SM_READS_PER_EVENT 8


/* ---- small helpers ----------------------------------------------------- */

bool sm_domain_served(const struct sm *sm, const char *d, size_t n)
{
	for (size_t i = 0; i < sm->ndomains; i++)
		if (strlen(sm->domains[i]) == n && memcmp(sm->domains[i], d, n) == 0)
			return true;
	return false;
}

bool sm_owns(const struct sm *sm, const char *bare, size_t n)
{
	/* No list: one shard.  A set without this server (sm/members.c): none. */
	return !sm->shard_names || shard_owner(sm->shard_names, sm->nshards, bare, n) == sm->shard_self;
}

/*
 * Canonical bare JID user@domain from the wire fields of CRED_REQ, AUTHED
 * and BIND_REQ.  Returns the length, or -1 when they do not form a valid
 * bare JID of a served domain.
 */
/* ---- sessions ---------------------------------------------------------- */

struct sm_session *sm_session_find(struct sm *sm, const char *full, size_t n)
{
	uint64_t h = sm_tab_hash(&sm->by_jid, full, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&sm->by_jid, h); e; e = e->next) {
		struct sm_session *s = sm_container_of(e, struct sm_session, by_jid);

		if (e->hash == h && s->full_len == n && memcmp(s->full, full, n) == 0)
			return s;
	}
	return NULL;
}

static struct sm_session *session_find_sid(struct sm_link *l, uint64_t sid)
{
	uint64_t h = sm_tab_hash(&l->sessions, &sid, sizeof(sid));

	for (struct sm_tab_node *e = sm_tab_bucket(&l->sessions, h); e; e = e->next) {
		struct sm_session *s = sm_container_of(e, struct sm_session, by_sid);

		if (e->hash == h && s->sid == sid)
			return s;
	}
	return NULL;
}

/* Forget s; broadcast=false skips presence (sm_free: everyone is leaving). */
/*
 * ---- flow control: a slow reader pauses the sessions that write to it ----
 *
 * Each session's edge grants credit in stanza bytes (WIRE_CREDIT): the
 * window at bind, then what its client has taken off the queue.  Delivery
 * spends it.  A session with no credit left still gets its stanzas (the edge
 * bounds its queue), but whoever wrote them is paused (FLOW stop to the
 * writer's edge) until the reader has credit again or ends.  So what is in
 * flight towards a slow reader stays within one window, however far behind
 * it is and however fast the links are.
 */

static void flow_send(struct sm_session *s, bool stop)
{
	struct wire_msg m = { .type = WIRE_FLOW, .sid = s->sid };

	m.u.flow.stop = stop;
	sm_link_send(s->link, &m);
}

/* s wrote to t while t's client is behind: the edge stops reading from s's
 * client until t catches up (or ends).  A session waits for one at a time:
 * once paused it sends nothing new. */
static void flow_wait(struct sm_session *s, struct sm_session *t)
{
	if (s->waiting_on)
		return;
	s->waiting_on = t;
	s->wprev = NULL;
	s->wnext = t->waiters;
	if (t->waiters)
		t->waiters->wprev = s;
	t->waiters = s;
	flow_send(s, true);
}

/* t caught up or is ending: resume every session paused for it. */
static void flow_release(struct sm_session *t)
{
	while (t->waiters) {
		struct sm_session *s = t->waiters;
		t->waiters = s->wnext;
		s->waiting_on = NULL;
		s->wnext = s->wprev = NULL;
		flow_send(s, false);
	}
}

static void flow_unwait(struct sm_session *s)
{
	struct sm_session *t = s->waiting_on;

	if (!t)
		return;
	if (s->wprev)
		s->wprev->wnext = s->wnext;
	else
		t->waiters = s->wnext;
	if (s->wnext)
		s->wnext->wprev = s->wprev;
	s->waiting_on = s->wnext = s->wprev = NULL;
}

/*
 * ---- delivery tracking: nothing accepted is lost --------------------------
 *
 * Stored messages (offline rows) and one-to-one messages are sent with
 * WIRE_STANZA_TRACK and remembered on the session (s->thead, in order, with
 * the session's cumulative byte count at their end).  The edge reports with
 * WIRE_DELIVERED how many of the session's stanza bytes have been written
 * to the client's socket: what ends at or before that is done (its offline
 * row is deleted; a live copy is dropped).  When the session ends first,
 * offline rows simply stay stored and live copies go back to offline storage
 * (sm_route_requeue): a message may then arrive twice, never not at all.
 */
struct sm_track {
	struct sm_track *next;
	uint64_t end;                 /* s->tx once this stanza was sent */
	int64_t row;                  /* offline row id; 0: a live message (raw below) */
	size_t len;
	uint8_t raw[];
};

/* A track entry for a stanza of len bytes (a copy of raw for a live
 * message, row 0); NULL when out of memory. */
static struct sm_track *track_new(int64_t row, const void *raw, size_t len)
{
	size_t keep = row ? 0 : len;
	struct sm_track *k = malloc(sizeof(*k) + keep);

	if (!k)
		return NULL;
	k->next = NULL;
	k->row = row;
	k->len = keep;
	memcpy(k->raw, raw, keep);
	return k;
}

/* k was just sent to t: it ends at t's byte count now. */
static void track_push(struct sm_session *t, struct sm_track *k)
{
	k->end = t->tx;
	if (k->row && t->user && sm_offline_inflight_add(t->user, k->row) < 0)
		log_warn("out of memory noting a stored message in flight", "jid=\"%s\"", t->full);
	if (t->ttail)
		t->ttail->next = k;
	else
		t->thead = k;
	t->ttail = k;
}

/* The edge wrote t's stanza bytes up to `bytes`: settle what ended there. */
static void track_delivered(struct sm *sm, struct sm_session *t, uint64_t bytes)
{
	int64_t rows[64];
	size_t n = 0;

	while (t->thead && t->thead->end <= bytes) {
		struct sm_track *k = t->thead;

		t->thead = k->next;
		if (k->row) {
			if (t->user)
				sm_offline_inflight_del(t->user, k->row);
			rows[n++] = k->row;
			if (n == sizeof(rows) / sizeof(rows[0])) {
				sm_offline_forget(sm, rows, n);
				n = 0;
			}
		}
		free(k);
	}
	if (!t->thead)
		t->ttail = NULL;
	sm_offline_forget(sm, rows, n);
}

/*
 * t ends with deliveries unconfirmed.  Live messages go to the account's
 * best other available resource (tracked again), else back to storage;
 * stored rows are released, and offered to that resource.
 */
static void track_end(struct sm *sm, struct sm_session *t)
{
	struct sm_session *other = t->user ? sm_offline_target(t->user, t) : NULL;
	struct sm_track *k, *next;
	unsigned moved = 0, requeued = 0;
	bool rows = false;

	for (k = t->thead; k; k = next) {
		next = k->next;
		if (k->row) {
			if (t->user)
				sm_offline_inflight_del(t->user, k->row);
			rows = true;
		} else if (other && sm_route_offline(sm, other, 0, k->raw, k->len) == 0) {
			moved++;
		} else if (t->bare) {
			sm_route_requeue(sm, t->bare, k->raw, k->len);
			requeued++;
		}
		free(k);
	}
	t->thead = t->ttail = NULL;
	if (rows && other)
		sm_offline_deliver(sm, other);
	if (moved || requeued)
		log_info("undelivered messages stored again", "jid=\"%s\" moved=%u stored=%u",
			 t->full ? t->full : t->bare, moved, requeued);
}

void sm_track_restart(struct sm *sm, struct sm_session *t)
{
	struct sm_track *k = t->thead, *next;
	bool rows = false;

	t->thead = t->ttail = NULL;
	t->tx = 0;
	for (; k; k = next) {
		next = k->next;
		if (k->row) {
			if (t->user)
				sm_offline_inflight_del(t->user, k->row);
			rows = true;
		} else if (sm_route_offline(sm, t, 0, k->raw, k->len) < 0 && t->bare) {
			sm_route_requeue(sm, t->bare, k->raw, k->len);
		}
		free(k);
	}
	if (rows && t->user)
		sm_offline_deliver(sm, t);
}

static void deliver(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		    struct wire_str to, struct wire_str from, struct wire_str id, struct wire_str ns,
		    const void *raw, size_t rawlen, uint8_t flags)
{
	struct wire_msg m = { .type = WIRE_STANZA, .sid = t->sid };

	if (t->orphan_until)
		sm_adopt_held(sm, t, kind, raw, rawlen, flags);   /* XEP-0198: its edge is gone */
	STAT_INC(sm->stats.delivered[kind & 3]);
	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.flags = flags;
	m.u.stanza.type = type;
	m.u.stanza.to = to;
	m.u.stanza.from = from;
	m.u.stanza.id = id;
	m.u.stanza.ns = ns;
	m.u.stanza.raw = wire_s(raw, rawlen);
	sm_link_send(t->link, &m);
	t->tx += rawlen;
	t->credit -= (int64_t)rawlen;
	/* Delivered all the same (the edge bounds t's queue); the writer pauses. */
	if (t->credited && t->credit <= 0 && sm->sender)
		flow_wait(sm->sender, t);
}

void sm_deliver(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		struct wire_str to, struct wire_str from, struct wire_str id, struct wire_str ns,
		const void *raw, size_t rawlen)
{
	deliver(sm, t, kind, type, to, from, id, ns, raw, rawlen, 0);
}

int sm_deliver_tracked(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		       struct wire_str to, struct wire_str from, struct wire_str id,
		       struct wire_str ns, const void *raw, size_t rawlen, int64_t row)
{
	struct sm_track *k = track_new(row, raw, rawlen);

	if (!k && row)
		return -ENOMEM;     /* not sent: the row stays stored */
	if (!k) {
		/* A live message goes out all the same, untracked. */
		log_warn("out of memory tracking a delivery", "jid=\"%s\"", t->full);
		deliver(sm, t, kind, type, to, from, id, ns, raw, rawlen, 0);
		return 0;
	}
	deliver(sm, t, kind, type, to, from, id, ns, raw, rawlen, WIRE_STANZA_TRACK);
	track_push(t, k);
	return 0;
}

struct sm_session *sm_session_by_sid(struct sm_link *l, uint64_t sid)
{
	return session_find_sid(l, sid);
}

static void session_drop(struct sm *sm, struct sm_session *s, bool broadcast)
{
	struct sm_link *l = s->link;
	struct sm_user *u = s->user;

	flow_unwait(s);
	flow_release(s);
	if (sm->sender == s)
		sm->sender = NULL;
	track_end(sm, s);

	if (s->state == SM_SESS_BOUND && u) {
		if (broadcast && s->available)
			sm_presence_gone(sm, s);
		sm_tab_remove(&sm->by_jid, &s->by_jid);
		if (s->uprev)
			s->uprev->unext = s->unext;
		else
			u->shead = s->unext;
		if (s->unext)
			s->unext->uprev = s->uprev;
		u->nsessions--;
		if (s->carbons)
			u->ncarbons--;
		sm_user_release(sm, u);
	} else if (s->state == SM_SESS_BINDING) {
		sm_user_unbind_wait(sm, s);
	}
	sm_session_unlink(l, s);
	log_debug("session ended", "link=%u sid=%llu jid=\"%s\"", l->id,
		  (unsigned long long)s->sid, s->full ? s->full : s->bare ? s->bare : "");
	sm_adopt_forget(sm, s);
	sm_presence_directed_clear(s);
	free(s->presence);
	free(s->full);
	free(s->bare);
	free(s);
}

void sm_session_end(struct sm *sm, struct sm_session *s)
{
	session_drop(sm, s, true);
}

void sm_session_discard(struct sm *sm, struct sm_session *s)
{
	session_drop(sm, s, false);
}

void sm_session_kick(struct sm *sm, struct sm_session *s, int reason)
{
	struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = s->sid };

	m.u.close.reason = (uint8_t)reason;
	sm_link_send(s->link, &m);
	log_info("session closed by the sm", "link=%u sid=%llu jid=\"%s\" reason=%d",
		 s->link->id, (unsigned long long)s->sid, s->full ? s->full : "", reason);
	sm_session_end(sm, s);
}

/* ---- links: frames ----------------------------------------------------- */

static void on_hello(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct wire_msg r = { .type = WIRE_HELLO_OK };
	const struct wire_str *sec = &m->u.hello.secret;

	if (m->u.hello.version != WIRE_VERSION) {
		log_warn("edge speaks another protocol version", "link=%u version=%u ours=%u",
			 l->id, m->u.hello.version, WIRE_VERSION);
		sm_link_kill(l, "protocol version mismatch");
		return;
	}
	if (sm->secret && (sec->len != sm->secret_len ||
			   !crypto_equal(sec->p, sm->secret, sm->secret_len))) {
		sm_link_kill(l, "wrong secret in hello");
		return;
	}
	l->worker = m->u.hello.worker;
	l->state = SM_LINK_READY;
	r.u.hello_ok.version = WIRE_VERSION;
	sm_link_send(l, &r);
	log_info("edge link up", "link=%u worker=%u peer=\"%s\"", l->id, l->worker, l->peer);
}

static void on_open(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = session_find_sid(l, m->sid);
	size_t n;

	if (s) {
		/* The edge reused a live sid: it lost track of the old session. */
		log_warn("session id reused, old session ended", "link=%u sid=%llu", l->id,
			 (unsigned long long)m->sid);
		sm_session_end(sm, s);
	}
	if (l->nsessions >= SM_MAX_SESSIONS_PER_LINK) {
		struct wire_msg r = { .type = WIRE_SESSION_CLOSE, .sid = m->sid };

		r.u.close.reason = WIRE_CLOSE_KICKED;
		sm_link_send(l, &r);
		log_warn("too many sessions on a link", "link=%u sessions=%zu", l->id, l->nsessions);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		struct wire_msg r = { .type = WIRE_SESSION_CLOSE, .sid = m->sid };

		r.u.close.reason = WIRE_CLOSE_KICKED;
		sm_link_send(l, &r);
		return;
	}
	s->link = l;
	s->sid = m->sid;
	s->flags = m->u.open.flags;
	/* The address is only shown (admin, logs): keep it short and printable. */
	n = m->u.open.addr.len < SM_ADDR_MAX - 1 ? m->u.open.addr.len : SM_ADDR_MAX - 1;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = m->u.open.addr.p[i];

		s->addr[i] = c > 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
	}
	s->addr[n] = '\0';
	sm_session_link(l, s);
	log_debug("session opened", "link=%u sid=%llu addr=\"%s\" flags=%u", l->id,
		  (unsigned long long)s->sid, s->addr, s->flags);
}

static void on_authed(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = session_find_sid(l, m->sid);
	char bare[JID_MAX + 1];
	int n;

	if (!s) {
		l->dropped++;
		log_debug("authed for an unknown session", "link=%u sid=%llu", l->id,
			  (unsigned long long)m->sid);
		return;
	}
	if (s->state != SM_SESS_OPEN) {
		log_warn("second authentication ignored", "link=%u sid=%llu", l->id,
			 (unsigned long long)m->sid);
		return;
	}
	n = sm_account_bare(sm, m->u.authed.user, m->u.authed.domain, bare, sizeof(bare));
	if (n < 0) {
		log_warn("authed with an invalid jid or foreign domain", "link=%u sid=%llu", l->id,
			 (unsigned long long)m->sid);
		return;
	}
	s->bare = sm_memdup_z(bare, (size_t)n);
	if (!s->bare)
		return;
	s->bare_len = (size_t)n;
	s->state = SM_SESS_AUTHED;
	log_debug("session authenticated", "link=%u sid=%llu jid=\"%s\"", l->id,
		  (unsigned long long)s->sid, s->bare);
}

/* A random resource: base32 of crypto_random bytes, unguessable by others. */
static void resource_generate(char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t rnd[SM_RESOURCE_GEN_LEN];

	if (crypto_random(rnd, sizeof(rnd)) < 0) {
		/* wolfCrypt's RNG failing is exceptional: fall back to the kernel's. */
		if (getentropy(rnd, sizeof(rnd)) < 0)
			memset(rnd, 0, sizeof(rnd));
	}
	for (size_t i = 0; i < SM_RESOURCE_GEN_LEN; i++)
		out[i] = alphabet[rnd[i] & 31];
	out[SM_RESOURCE_GEN_LEN] = '\0';
}

static void bind_reply(struct sm_link *l, uint64_t sid, int status, const char *jid)
{
	struct wire_msg r = { .type = WIRE_BIND_RESP, .sid = sid };

	r.u.bind_resp.status = (uint8_t)status;
	r.u.bind_resp.jid = sm_ws(jid);
	sm_link_send(l, &r);
}

static void on_bind(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = session_find_sid(l, m->sid);
	const struct wire_str *res = &m->u.bind_req.resource;
	char bare[JID_MAX + 1], full[JID_MAX + 1], gen[SM_RESOURCE_GEN_LEN + 1];
	const char *rp;
	size_t rlen;
	int n;

	if (!s || s->state != SM_SESS_AUTHED) {
		bind_reply(l, m->sid, WIRE_NOT_ALLOWED, "");
		return;
	}
	n = sm_account_bare(sm, m->u.bind_req.user, m->u.bind_req.domain, bare, sizeof(bare));
	if (n < 0 || (size_t)n != s->bare_len || memcmp(bare, s->bare, (size_t)n) != 0) {
		bind_reply(l, m->sid, WIRE_NOT_ALLOWED, "");
		return;
	}
	if (res->len == 0) {
		do
			resource_generate(gen);
		while (snprintf(full, sizeof(full), "%s/%s", s->bare, gen) > 0 &&
		       sm_session_find(sm, full, strlen(full)));
		rp = gen;
		rlen = SM_RESOURCE_GEN_LEN;
	} else {
		rp = (const char *)res->p;
		rlen = res->len;
		if (rlen > JID_PART_MAX || memchr(rp, 0, rlen) || !jid_resource_valid(rp, rlen)) {
			bind_reply(l, m->sid, WIRE_BAD_REQUEST, "");
			return;
		}
	}
	if (s->bare_len + 1 + rlen > JID_MAX) {
		bind_reply(l, m->sid, WIRE_BAD_REQUEST, "");
		return;
	}
	memcpy(full, s->bare, s->bare_len);
	full[s->bare_len] = '/';
	memcpy(full + s->bare_len + 1, rp, rlen);
	full[s->bare_len + 1 + rlen] = '\0';
	s->full = sm_memdup_z(full, s->bare_len + 1 + rlen);
	if (!s->full) {
		bind_reply(l, m->sid, WIRE_TEMP_FAIL, "");
		return;
	}
	s->full_len = s->bare_len + 1 + rlen;
	/* The account's record may have to be read first: sm_bind_finish()
	 * completes the bind now or once it is loaded. */
	if (sm_user_bind(sm, s) < 0) {
		free(s->full);
		s->full = NULL;
		bind_reply(l, m->sid, WIRE_TEMP_FAIL, "");
	}
}

void sm_bind_finish(struct sm *sm, struct sm_session *s, struct sm_user *u)
{
	struct sm_link *l = s->link;
	struct sm_session *old;

	s->state = SM_SESS_AUTHED;
	if (!u || !u->exists) {
		/* Storage failed, or the account was deleted while it loaded. */
		free(s->full);
		s->full = NULL;
		bind_reply(l, s->sid, u ? WIRE_NOT_ALLOWED : WIRE_TEMP_FAIL, "");
		return;
	}
	/* RFC 6120 §7.7.2.2: the newest session wins the resource.  u holds a
	 * reference meanwhile: ending the old session must not free it. */
	old = sm_session_find(sm, s->full, s->full_len);
	if (u->nsessions - (old ? 1 : 0) >= SM_MAX_RESOURCES) {
		log_warn("too many resources", "jid=\"%s\" resources=%u", s->bare, u->nsessions);
		free(s->full);
		s->full = NULL;
		bind_reply(l, s->sid, WIRE_NOT_ALLOWED, "");
		sm_user_release(sm, u);
		return;
	}
	if (old) {
		u->refs++;
		sm_session_kick(sm, old, WIRE_CLOSE_CONFLICT);
		u->refs--;
	}
	s->user = u;
	s->unext = u->shead;
	if (u->shead)
		u->shead->uprev = s;
	u->shead = s;
	u->nsessions++;
	sm_tab_insert(&sm->by_jid, &s->by_jid, sm_tab_hash(&sm->by_jid, s->full, s->full_len));
	s->state = SM_SESS_BOUND;
	STAT_INC(sm->stats.binds);
	bind_reply(l, s->sid, WIRE_OK, s->full);
	/* debug: the edge logs every bind at info already */
	log_debug("session bound", "link=%u sid=%llu jid=\"%s\" addr=\"%s\"%s", l->id,
		  (unsigned long long)s->sid, s->full, s->addr, old ? " replaced=1" : "");
}

static void on_stanza(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = session_find_sid(l, m->sid);

	if ((!s || s->state != SM_SESS_BOUND) && (m->u.stanza.flags & WIRE_STANZA_RETURNED)) {
		/* Sent again to a restarted shard: its session is gone (returned.c). */
		sm_returned(sm, NULL, m);
		return;
	}
	if (!s || s->state != SM_SESS_BOUND) {
		l->dropped++;
		log_debug("stanza from an unbound session dropped", "link=%u sid=%llu", l->id,
			  (unsigned long long)m->sid);
		return;
	}
	if (s->smk_id && !(m->u.stanza.flags & WIRE_STANZA_RETURNED))
		s->smk_h++;    /* XEP-0198: one more of its client's stanzas handled (sm/adopt.c) */
	sm->sender = s;
	sm_route_stanza(sm, s, m);
	sm->sender = NULL;
}

static void link_frame_do(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s;

	if (l->shard_peer) {
		/* Another shard of this process: stanzas for our accounts only. */
		if (m->type == WIRE_ROUTE && (m->u.stanza.flags & WIRE_STANZA_SHARD))
			sm_remote_in(sm, l, m);
		else
			log_warn("unexpected frame from a shard", "link=%u type=%s", l->id,
				 wire_type_str(m->type));
		return;
	}
	if (l->state == SM_LINK_HELLO) {
		if (m->type == WIRE_HELLO)
			on_hello(sm, l, m);
		else
			sm_link_kill(l, "frame before hello");
		return;
	}
	switch (m->type) {
	case WIRE_SESSION_OPEN:
		on_open(sm, l, m);
		break;
	case WIRE_CRED_REQ:
		sm_account_cred_req(sm, l, m);
		break;
	case WIRE_AUTHED:
		on_authed(sm, l, m);
		break;
	case WIRE_BIND_REQ:
		on_bind(sm, l, m);
		break;
	case WIRE_STANZA:
		on_stanza(sm, l, m);
		break;
	case WIRE_SESSION_MOVE:
		sm_moved(sm, l, m);   /* XEP-0198 resumption on another worker */
		break;
	case WIRE_SMACKS:
		sm_adopt_smacks(sm, l, m);   /* XEP-0198: resumable (sm/adopt.c) */
		break;
	case WIRE_ADOPT:
		sm_adopt_in(sm, l, m);       /* XEP-0198 resumption on another edge */
		break;
	case WIRE_SESSION_CLOSE:
		/* Unknown: the sm may have ended it first (conflict, kick). */
		s = session_find_sid(l, m->sid);
		if (s)
			sm_session_end(sm, s);
		break;
	case WIRE_PING: {
		struct wire_msg r = { .type = WIRE_PONG, .sid = m->sid };

		if (sm_members_ping(sm, l, m))
			break;   /* a session moving off this shard: after storage */

		r.u.ping.token = m->u.ping.token;
		sm_link_send(l, &r);
		break;
	}
	case WIRE_PONG:
		break;
	case WIRE_CREDIT:
		s = session_find_sid(l, m->sid);
		if (s) {
			s->credited = true;
			s->credit += m->u.credit.bytes;
			if (s->credit > 0)
				flow_release(s);
		}
		break;
	case WIRE_REGISTER:
		sm_account_register(sm, l, m);
		break;
	case WIRE_DELIVERED:
		s = session_find_sid(l, m->sid);
		if (s)
			track_delivered(sm, s, m->u.delivered.bytes);
		break;
	case WIRE_ROUTE:
		sm_remote_in(sm, l, m);
		break;
	case WIRE_DOMAIN:
		sm_remote_domain(sm, l, m);
		break;
	default:
		/* HELLO again, or a frame only the sm sends. */
		log_warn("unexpected frame", "link=%u type=%s", l->id, wire_type_str(m->type));
		sm_link_kill(l, "unexpected frame");
		break;
	}
}

static void link_frame(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	l->frames_in++;
	sm->obl_link = l->confirm ? l : NULL;
	sm->obl = NULL;
	link_frame_do(sm, l, m);
	sm->obl_link = NULL;
	sm->obl = NULL;
}

static void link_input(struct sm *sm, struct sm_link *l)
{
	for (int i = 0; i < SM_READS_PER_EVENT && l->state != SM_LINK_DEAD && !sm->over; i++) {
		size_t room = SM_READ_CHUNK, used = sm_buf_used(&l->in);
		ssize_t n;

		if (l->in.max - used < room)
			room = l->in.max - used;
		if (room == 0 || sm_buf_reserve(&l->in, room) < 0) {
			sm_link_kill(l, "input buffer exhausted");
			return;
		}
		n = recv(l->ev.fd, l->in.p + l->in.len, room, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				sm_link_kill(l, strerror(errno));
			return;
		}
		if (n == 0) {
			sm_link_kill(l, "edge closed the link");
			return;
		}
		l->in.len += (size_t)n;
		/* Decode every whole frame; wire_str fields point into l->in,
		 * which does not move until the loop is done. */
		while (l->state != SM_LINK_DEAD && sm_buf_used(&l->in)) {
			struct wire_msg m;
			long r = wire_decode(sm_buf_data(&l->in), sm_buf_used(&l->in), &m);

			if (r == 0)
				break;
			if (r < 0) {
				sm_link_kill(l, "malformed frame");
				return;
			}
			link_frame(sm, l, &m);
			sm_buf_consume(&l->in, (size_t)r);
		}
		if ((size_t)n < room)
			return;     /* drained the socket */
	}
}

/* The edge workers put chunks into our chans: every whole frame in them. */
static void chan_input(struct sm *sm)
{
	for (struct sm_link *l = sm->links; l; l = l->next) {
		struct chan_chunk *c;

		/* Backed-up output: the rest waits in the chans, read again once it
		 * drains (chan_pending, output.c). */
		while (l->cin && !sm->over && (c = chan_get(l->cin))) {
			size_t off = 0;

			while (l->state != SM_LINK_DEAD && off < c->len) {
				struct wire_msg m;
				long r = wire_decode(c->data + off, c->len - off, &m);

				if (r <= 0) {
					sm_link_kill(l, "malformed frame");
					break;
				}
				link_frame(sm, l, &m);
				off += (size_t)r;
			}
			free(c);
		}
	}
	if (sm->over)
		sm->chan_pending = true;
}

/* ---- links: lifetime --------------------------------------------------- */

static int link_new(struct sm *sm, int fd, const char *peer)
{
	struct sm_link *l;
	struct epoll_event ev;

	if (sm->nlinks >= SM_MAX_LINKS)
		return -EMFILE;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (sm_tab_init(&l->sessions) < 0) {
		free(l);
		return -ENOMEM;
	}
	l->ev.kind = SM_EV_LINK;
	l->ev.fd = fd;
	l->sm = sm;
	l->id = ++sm->next_link_id;
	l->in.max = SM_LINK_IN_MAX;
	l->out.max = SM_LINK_OUT_MAX;
	snprintf(l->peer, sizeof(l->peer), "%s", peer);
	ev.events = EPOLLIN;
	ev.data.ptr = &l->ev;
	if (fd >= 0 && epoll_ctl(sm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		sm_tab_fini(&l->sessions);
		free(l);
		return e;
	}
	l->next = sm->links;
	if (sm->links)
		sm->links->prev = l;
	sm->links = l;
	sm->nlinks++;
	log_debug("edge link accepted", "link=%u peer=\"%s\"", l->id, l->peer);
	return 0;
}

static void link_free(struct sm *sm, struct sm_link *l, bool broadcast)
{
	struct sm_session *s, *next;

	sm_remote_link_gone(sm, l);
	sm_obl_link_gone(l);
	if (l->shard_peer) {
		sm->peers[l->shard_peer - 1] = NULL;
		sm->npeers--;
	}
	for (s = l->shead; s; s = next) {
		next = s->lnext;
		/* XEP-0198: a resumable session outlives its edge (sm/adopt.c). */
		if (broadcast && !l->shard_peer && sm_adopt_keep(sm, s)) {
			flow_unwait(s);
			flow_release(s);
			continue;
		}
		session_drop(sm, s, broadcast);
	}
	if (l->ev.fd >= 0) {
		epoll_ctl(sm->epfd, EPOLL_CTL_DEL, l->ev.fd, NULL);
		close(l->ev.fd);
	}
	if (l->prev)
		l->prev->next = l->next;
	else
		sm->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	sm->nlinks--;
	sm_buf_free(&l->in);
	sm_buf_free(&l->out);
	sm_tab_fini(&l->sessions);
	free(l);
}

/* End the sessions of dead links (their presence goes out to the living)
 * and free them.  Broadcasting may kill more links: loop until none. */
static void reap(struct sm *sm)
{
	while (sm->dead) {
		struct sm_link *l = sm->dead;

		sm->dead = l->dead_next;
		/* Off the flush list first: it must not point at freed memory. */
		if (l->flush_queued) {
			struct sm_link **pp = &sm->flush;

			while (*pp && *pp != l)
				pp = &(*pp)->flush_next;
			if (*pp)
				*pp = l->flush_next;
			l->flush_queued = false;
		}
		link_free(sm, l, true);
		sm_flush_all(sm);
	}
}

int sm_add_link(struct sm *sm, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return link_new(sm, fd, "socketpair");
}

static int chan_link_new(struct sm *sm, struct chan *in, struct chan *out, const char *what)
{
	int r = link_new(sm, -1, what);

	if (r == 0) {
		sm->links->cin = in;       /* link_new puts it first */
		sm->links->cout = out;
	}
	return r;
}

int sm_add_chan_link(struct sm *sm, struct chan *in, struct chan *out)
{
	return chan_link_new(sm, in, out, "embedded");
}

int sm_add_peer_link(struct sm *sm, size_t k, struct chan *in, struct chan *out)
{
	int r;

	if (k >= sm->nshards || k == sm->shard_self)
		return -EINVAL;
	if (!sm->peers && !(sm->peers = calloc(sm->nshards, sizeof(*sm->peers))))
		return -ENOMEM;
	r = chan_link_new(sm, in, out, "shard");
	if (r == 0) {
		struct sm_link *l = sm->links;

		l->shard_peer = (uint16_t)(k + 1);
		l->state = SM_LINK_READY;      /* one process: nothing to prove */
		sm->peers[k] = l;
		sm->npeers++;
	}
	return r;
}

int sm_chan_fd(const struct sm *sm)
{
	return sm->chan_ev.fd;
}

/* ---- listeners --------------------------------------------------------- */

int sm_unix_listen(const char *path, unsigned mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;     /* never delete what is not ours */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		e = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
		close(fd);
		if (e == 0)
			return -EADDRINUSE; /* somebody is serving it */
		if (e == ECONNREFUSED)
			unlink(path);       /* stale: left by a process that died */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
	    listen(fd, 64) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int tcp_listen(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hl;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int fd = -EINVAL, one = 1;

	if (!colon || !colon[1])
		return -EINVAL;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {   /* [v6]:port */
		h = spec + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		close(fd);
		fd = -errno;
	}
	freeaddrinfo(res);
	return fd;
}

static void listen_accept(struct sm *sm)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64] = "unix", host[48] = "", serv[8] = "";
		int fd = accept4(sm->listen.fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1, r;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept on the edge listener failed", "error=\"%s\"",
					 strerror(errno));
			return;
		}
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			/* Frames are small and latency-bound: never wait for Nagle. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv,
					sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
				snprintf(peer, sizeof(peer), "%s:%s", host, serv);
		}
		r = link_new(sm, fd, peer);
		if (r < 0) {
			log_warn("edge link refused", "peer=\"%s\" error=\"%s\"", peer, strerror(-r));
			close(fd);
		} else {
			sm->links->confirm = true;   /* another process: it may outlive us */
		}
	}
}

/* ---- lifetime ---------------------------------------------------------- */

static int sm_listen_open(struct sm *sm, const char *spec)
{
	int fd;
	struct epoll_event ev = { .events = EPOLLIN };

	if (strncmp(spec, "unix:", 5) == 0) {
		fd = sm_unix_listen(spec + 5, 0600);
		if (fd >= 0) {
			sm->listen_unix = strdup(spec + 5);
			if (!sm->listen_unix) {
				close(fd);
				return -ENOMEM;
			}
		}
	} else {
		fd = tcp_listen(spec);
	}
	if (fd < 0)
		return fd;
	sm->listen.kind = SM_EV_LISTEN;
	sm->listen.fd = fd;
	ev.data.ptr = &sm->listen;
	if (epoll_ctl(sm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

struct sm *sm_new(const struct sm_config *cfg)
{
	struct sm *sm = aligned_alloc(_Alignof(struct sm), sizeof(*sm));   /* its counters: a line of their own */
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (!sm)
		return NULL;
	memset(sm, 0, sizeof(*sm));
	sm->epfd = -1;
	sm->wake.fd = -1;
	sm->chan_ev.fd = -1;
	sm->listen.fd = -1;
	if (!cfg->database || !*cfg->database) {
		log_error("the session server needs a database", "database=%s", "(none)");
		goto fail;
	}
	if (cfg->ndomains == 0) {
		log_error("the session server serves no domain", "domains=%d", 0);
		goto fail;
	}
	sm->domains = calloc(cfg->ndomains, sizeof(char *));
	if (!sm->domains)
		goto fail;
	for (size_t i = 0; i < cfg->ndomains; i++) {
		size_t n = strlen(cfg->domains[i]);

		if (n && cfg->domains[i][n - 1] == '.')
			n--;        /* the canonical form drops one trailing dot */
		if (!jid_domain_valid(cfg->domains[i], n)) {
			log_error("invalid domain", "domain=\"%s\"", cfg->domains[i]);
			goto fail;
		}
		sm->domains[i] = malloc(n + 1);
		if (!sm->domains[i])
			goto fail;
		jid_fold(cfg->domains[i], n, sm->domains[i]);
		sm->domains[i][n] = '\0';
		sm->ndomains++;
	}
	if (cfg->nshards > 1) {
		if (cfg->shard_self >= cfg->nshards) {
			log_error("this session server is not in the shard list", "shards=%zu", cfg->nshards);
			goto fail;
		}
		sm->shard_names = calloc(cfg->nshards, sizeof(*sm->shard_names));
		if (!sm->shard_names)
			goto fail;
		for (size_t i = 0; i < cfg->nshards; i++)
			sm->shard_names[i] = shard_name_hash(cfg->shards[i], strlen(cfg->shards[i]));
		sm->nshards = cfg->nshards;
		sm->shard_self = cfg->shard_self;
	}
	sm->hide_os = cfg->hide_os;
	if (sm_muc_open(sm, cfg->muc_domain, cfg->muc_history) < 0)
		goto fail;
	sm->mam_retention_days = cfg->mam_retention_days;
	sm->mam_default = cfg->mam_default;
	if (sm_adhoc_init(sm, cfg) < 0)
		goto fail;
	sm->tick = cfg->tick_ms > 0 ? cfg->tick : NULL;
	sm->tick_arg = cfg->tick_arg;
	sm->tick_ms = cfg->tick_ms;
	if (cfg->secret && *cfg->secret) {
		sm->secret = strdup(cfg->secret);
		if (!sm->secret)
			goto fail;
		sm->secret_len = strlen(sm->secret);
	}
	if (sm_tab_init(&sm->users) < 0 || sm_tab_init(&sm->by_jid) < 0)
		goto fail;
	sm->xs = xmlstage_new();
	if (!sm->xs)
		goto fail;
	sm->epfd = epoll_create1(EPOLL_CLOEXEC);
	sm->wake.kind = SM_EV_WAKE;
	sm->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = &sm->wake;
	if (sm->epfd < 0 || sm->wake.fd < 0 ||
	    epoll_ctl(sm->epfd, EPOLL_CTL_ADD, sm->wake.fd, &ev) < 0) {
		log_error("session server event loop setup failed", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	sm->store = sm_store_open(cfg->database);
	if (!sm->store)
		goto fail;
	sm_store_owner(sm->store, sm);
	sm_muc_start(sm);
	if (sm_pubsub_open(sm, cfg->pubsub_domain) < 0 ||
	    sm_upload_open(sm, cfg->upload_domain, cfg->upload_max_size) < 0)
		goto fail;
	sm->chan_ev.kind = SM_EV_CHAN;
	sm->chan_ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = &sm->chan_ev;
	if (sm->chan_ev.fd < 0 || epoll_ctl(sm->epfd, EPOLL_CTL_ADD, sm->chan_ev.fd, &ev) < 0) {
		log_error("session server event loop setup failed", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	sm->store_ev.kind = SM_EV_STORE;
	sm->store_ev.fd = sm_store_fd(sm->store);
	ev.data.ptr = &sm->store_ev;
	if (epoll_ctl(sm->epfd, EPOLL_CTL_ADD, sm->store_ev.fd, &ev) < 0) {
		log_error("session server event loop setup failed", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	if (cfg->listen && *cfg->listen) {
		r = sm_listen_open(sm, cfg->listen);
		if (r < 0) {
			log_error("cannot listen for edges", "listen=\"%s\" error=\"%s\"", cfg->listen,
				  strerror(-r));
			goto fail;
		}
	}
	if (cfg->admin_socket && *cfg->admin_socket) {
		sm->admin = sm_admin_open(sm, cfg->admin_socket);
		if (!sm->admin)
			goto fail;
	}
	return sm;
fail:
	sm_free(sm);
	return NULL;
}

static int64_t sm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sm_config.tick callback when it is due; returns the epoll timeout
 * (ms, -1: none) that honours both it and the MAM sweep. */
static int sm_tick(struct sm *sm, int64_t *next)
{
	int timeout = sm_mam_timeout(sm), t2 = sm_adopt_timeout(sm), t3 = sm_gather_timeout(sm);
	int64_t now;

	if (t2 >= 0 && (timeout < 0 || t2 < timeout))
		timeout = t2;
	if (t3 >= 0 && (timeout < 0 || t3 < timeout))
		timeout = t3;
	if (!sm->tick)
		return timeout;
	now = sm_now_ms();
	if (now >= *next) {
		sm->tick(sm->tick_arg, sm->by_jid.count, sm->nlinks - sm->npeers);
		*next = now + sm->tick_ms;
	}
	if (timeout < 0 || *next - now < timeout)
		timeout = (int)(*next - now);
	return timeout;
}

int sm_run(struct sm *sm)
{
	struct epoll_event evs[SM_EPOLL_BATCH];
	int64_t next_tick = 0;

	while (!sm->stopping) {
		int timeout = sm_tick(sm, &next_tick);
		int n;

		if (sm->chan_full) {        /* a worker is behind: try its chan again soon */
			sm->chan_full = false;
			timeout = 1;
		}
		n = epoll_wait(sm->epfd, evs, SM_EPOLL_BATCH, timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("session server event loop failed", "error=\"%s\"", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct sm_ev *ev = evs[i].data.ptr;

			switch (ev->kind) {
			case SM_EV_WAKE: {
				uint64_t v;

				if (read(ev->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("eventfd read failed", "error=\"%s\"", strerror(errno));
				sm->stopping = true;
				break;
			}
			case SM_EV_LISTEN:
				listen_accept(sm);
				break;
			case SM_EV_STORE:
				sm_store_complete(sm->store, sm);
				break;
			case SM_EV_CHAN: {
				uint64_t v;

				if (read(ev->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("eventfd read failed", "error=\"%s\"", strerror(errno));
				if (sm->hold)
					sm->chan_pending = true;   /* read once output drains */
				else
					chan_input(sm);
				break;
			}
			case SM_EV_LINK: {
				struct sm_link *l = sm_container_of(ev, struct sm_link, ev);

				if (l->state == SM_LINK_DEAD)
					break;
				if (evs[i].events & EPOLLOUT)
					sm_link_flush(l);
				if (l->state != SM_LINK_DEAD && !sm->hold &&
				    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					link_input(sm, l);
				break;
			}
			case SM_EV_ADMIN_LISTEN:
			case SM_EV_ADMIN:
				sm_admin_event(sm, ev, evs[i].events);
				break;
			}
		}
		sm_adopt_tick(sm);     /* before the flush: what it sends goes out now */
		sm_gather_tick(sm);    /* likewise: answers to questions whose time is up */
		sm_flush_all(sm);
		reap(sm);
		/* Input stopped because output backed up: what the chans signalled
		 * meanwhile, once it drained (output.c, backpressure). */
		if ((sm->over || sm->hold) && !sm_hold_input(sm) && sm->chan_pending) {
			sm->chan_pending = false;
			chan_input(sm);
			sm_flush_all(sm);
		}
		sm_confirm_all(sm);
		sm_mam_tick(sm);
		STAT_SET(sm->stats.sessions, sm->by_jid.count);
		STAT_SET(sm->stats.links, sm->nlinks - sm->npeers);
		STAT_SET(sm->stats.users, sm->users.count);
		STAT_SET(sm->stats.store_pending, sm_store_pending(sm->store));
	}
	log_info("session server stopping", "links=%zu", sm->nlinks);
	return 0;
}

void sm_stop(struct sm *sm)
{
	uint64_t one = 1;

	/* write(2) on an eventfd: async-signal-safe and thread-safe. */
	(void)!write(sm->wake.fd, &one, sizeof(one));
}

void sm_free(struct sm *sm)
{
	if (!sm)
		return;
	/* Finish what storage holds while every object its completions
	 * refer to still exists. */
	if (sm->store)
		sm_store_sync(sm->store, sm);
	sm_adopt_free(sm);
	while (sm->links)
		link_free(sm, sm->links, false);
	/* Ending the sessions stored their unconfirmed messages: write them. */
	if (sm->store)
		sm_store_sync(sm->store, sm);
	sm->dead = NULL;
	sm->flush = NULL;
	if (sm->admin)
		sm_admin_close(sm, sm->admin);
	if (sm->listen.fd >= 0)
		close(sm->listen.fd);
	if (sm->listen_unix) {
		unlink(sm->listen_unix);
		free(sm->listen_unix);
	}
	sm_store_close(sm->store);
	if (sm->xs)
		xmlstage_free(sm->xs);
	if (sm->users.slots)
		sm_tab_fini(&sm->users);
	if (sm->by_jid.slots)
		sm_tab_fini(&sm->by_jid);
	for (size_t i = 0; i < sm->ndomains; i++)
		free(sm->domains[i]);
	free(sm->domains);
	free(sm->shard_names);
	free(sm->peers);
	free(sm->secret);
	sm_gather_free(sm);    /* before the services its questions answer for */
	sm_pep_free(sm);
	sm_remote_free(sm);
	sm_muc_free(sm);
	sm_pubsub_free(sm);
	sm_upload_free(sm);
	sm_adhoc_free(sm);
	sm_buf_free(&sm->scratch);
	sm_buf_free(&sm->reply);
	if (sm->wake.fd >= 0)
		close(sm->wake.fd);
	if (sm->chan_ev.fd >= 0)
		close(sm->chan_ev.fd);
	if (sm->epfd >= 0)
		close(sm->epfd);
	free(sm);
}
