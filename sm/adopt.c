/*
 * adopt — XEP-0198 resumption on another edge, at the session server
 * (WIRE_SMACKS, WIRE_ADOPT, WIRE_ADOPT_RESP; docs/protocol.md,
 * docs/architecture.md "Shards").
 *
 * An edge says when a session becomes resumable (WIRE_SMACKS on its sid:
 * its resumption id, `max` seconds, and h, the count of its client's
 * stanzas handled so far); from then on every stanza the session sends
 * counts one more (s->smk_h: on_stanza in sm.c), so the session server
 * knows at any time how many of the client's stanzas it has.
 *
 * When that edge's link dies (kill -9 of the edge), such a session is not
 * ended (link_free in sm.c asks sm_adopt_keep): it becomes an orphan for
 * `max` seconds.  An orphan stays bound and available (XEP-0198: a detached
 * session is still online): presence is unchanged, stanzas keep being
 * routed to it.  It sits on `limbo`, a link that is dead from birth and in
 * no list, so whatever is sent to it is swallowed: tracked messages stay on
 * its delivery-tracking list (sm.c), and copies of the other stanzas are
 * kept here (s->okept, in order), both bounded by SM_ADOPT_KEEP_MAX bytes.
 *
 * A <resume/> that reaches another edge with the orphan's id makes that
 * edge send WIRE_ADOPT on the stream's own session (open and authenticated
 * as the account, on this shard: the account check is that its bare JID
 * is the orphan's).  The orphan takes that session's place on the new link
 * and sid, everything else kept (roster interest, presence, carbons...);
 * the edge gets ADOPT_RESP(OK, full JID, h) and then, tracked again, the
 * messages that were never reported written, followed by the stanzas kept
 * here.  An unknown id, or another account's, is ADOPT_RESP(WIRE_NO_USER).
 *
 * An orphan that is not adopted in time (or keeps more than its bound)
 * ends as a session that ends does: its tracked messages go to another
 * resource or offline storage (track_end), its kept messages and iqs are
 * returned (sm/returned.c), its unavailable presence is broadcast.
 *
 * Cross-shard messages (remote.c shard_out) travel through an edge link to
 * the owner's shard: an edge killed with some in its buffers would lose
 * messages the sender's edge had acknowledged.  So each edge link keeps
 * copies of the messages it was given for another shard for
 * SM_RELAY_KEEP_MS (SM_RELAY_KEEP_MAX bytes at most): when it dies, they are
 * routed again through another edge.  A message its edge did pass on
 * arrives twice then; none is lost.  Messages only: a presence or an iq
 * handled twice is not harmless, and neither is acknowledged by delivery.
 *
 * Timers: sm_adopt_tick() runs after every loop batch but walks the orphans
 * at most once a second (sm_adopt_timeout() bounds the epoll wait).  Kept
 * stanzas are returned from the tick only, never from inside a delivery:
 * returning parses the stanza, and a delivery may come from a caller whose
 * own parse is still in use.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "sm/sm_int.h"

#define SM_ADOPT_ID_MAX 128            /* a resumption id, bytes (the edge's are < 96) */
#define SM_ADOPT_MAX_SECONDS 86400     /* the longest an orphan waits, whatever the edge says */
#define SM_ADOPT_KEEP_MAX (1u << 20)   /* stanza bytes an orphan holds before it ends */
#define SM_ADOPT_MAX_ORPHANS (1u << 20)
#define SM_ADOPT_TICK_MS 1000
#define SM_RELAY_KEEP_MS 1000          /* a killed edge is seen at once (the kernel resets its links) */
#define SM_RELAY_KEEP_MAX (4u << 20)   /* bytes kept per edge link */

/* A stanza kept for an orphan (not tracked by sm.c): sent again on
 * adoption, returned if the orphan ends at its deadline. */
struct sm_adopt_item {
	struct sm_adopt_item *next;
	uint8_t kind;
	size_t len;
	uint8_t raw[];
};

/* A cross-shard message given to an edge link: the ROUTE frame as encoded. */
struct sm_relay_item {
	struct sm_relay_item *next;
	int64_t at;                    /* ms, monotonic */
	size_t len;
	uint8_t frame[];
};

struct sm_relay {
	struct sm_relay_item *head, *tail;
	size_t bytes;
};

struct sm_adopt {
	struct sm_link limbo;          /* dead from the start: sends to it are dropped */
	struct sm_tab by_previd;       /* orphans by resumption id */
	struct sm_session *head;       /* orphans (onext/oprev) */
	size_t n;
	int64_t next_check;            /* ms: the next walk over the orphans */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sm_adopt *adopt_get(struct sm *sm)
{
	struct sm_adopt *a = sm->adopt;

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (sm_tab_init(&a->limbo.sessions) < 0) {
		free(a);
		return NULL;
	}
	if (sm_tab_init(&a->by_previd) < 0) {
		sm_tab_fini(&a->limbo.sessions);
		free(a);
		return NULL;
	}
	a->limbo.sm = sm;
	a->limbo.ev.fd = -1;
	a->limbo.state = SM_LINK_DEAD;
	a->limbo.id = UINT32_MAX;      /* never a live link's: completions for orphans find none */
	snprintf(a->limbo.peer, sizeof(a->limbo.peer), "orphans");
	sm->adopt = a;
	return a;
}

static void kept_free(struct sm_session *s)
{
	struct sm_adopt_item *it = s->okept, *next;

	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	s->okept = s->okept_tail = NULL;
}

void sm_adopt_smacks(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = sm_session_by_sid(l, m->sid);
	const struct wire_str *id = &m->u.smacks.previd;

	if (!s || s->state != SM_SESS_BOUND || s->orphan_until) {
		l->dropped++;
		return;
	}
	free(s->smk_id);
	s->smk_id = NULL;
	s->smk_max = 0;
	if (m->u.smacks.max == 0)
		return;     /* no longer resumable */
	/* Ids are the edge's: printable ASCII, bounded (they are compared and logged). */
	if (id->len == 0 || id->len > SM_ADOPT_ID_MAX) {
		l->dropped++;
		return;
	}
	for (uint32_t i = 0; i < id->len; i++) {
		if (id->p[i] <= 0x20 || id->p[i] >= 0x7f || id->p[i] == '"') {
			l->dropped++;
			return;
		}
	}
	s->smk_id = sm_memdup_z(id->p, id->len);
	if (!s->smk_id)
		return;     /* not resumable elsewhere: it ends with its edge, as before */
	s->smk_id_len = id->len;
	s->smk_max = m->u.smacks.max < SM_ADOPT_MAX_SECONDS ? m->u.smacks.max : SM_ADOPT_MAX_SECONDS;
	s->smk_h = m->u.smacks.h;
	log_debug("session resumable", "link=%u sid=%" PRIu64 " jid=\"%s\" max=%u h=%u", l->id, s->sid,
		  s->full, s->smk_max, s->smk_h);
}

bool sm_adopt_keep(struct sm *sm, struct sm_session *s)
{
	struct sm_adopt *a;

	if (s->state != SM_SESS_BOUND || !s->smk_id || !s->smk_max || s->orphan_until)
		return false;
	a = adopt_get(sm);
	if (!a || a->n >= SM_ADOPT_MAX_ORPHANS)
		return false;
	log_debug("session orphaned: resumable on another edge", "link=%u sid=%" PRIu64 " jid=\"%s\" max=%u",
		 s->link->id, s->sid, s->full, s->smk_max);
	sm_session_unlink(s->link, s);
	s->link = &a->limbo;
	sm_session_link(&a->limbo, s);
	s->orphan_until = now_ms() + (int64_t)s->smk_max * 1000;
	s->okept_bytes = 0;
	/* Nobody grants it credit now: its senders must never wait for it. */
	s->credited = false;
	s->credit = 0;
	s->by_previd.next = NULL;
	sm_tab_insert(&a->by_previd, &s->by_previd, sm_tab_hash(&a->by_previd, s->smk_id, s->smk_id_len));
	s->oprev = NULL;
	s->onext = a->head;
	if (a->head)
		a->head->oprev = s;
	a->head = s;
	a->n++;
	if (a->next_check == 0 || a->next_check > s->orphan_until)
		a->next_check = s->orphan_until;
	STAT_INC(sm->stats.orphaned);
	return true;
}

/* s leaves the orphans (adopted or ending). */
static void orphan_off(struct sm_adopt *a, struct sm_session *s)
{
	sm_tab_remove(&a->by_previd, &s->by_previd);
	if (s->oprev)
		s->oprev->onext = s->onext;
	else
		a->head = s->onext;
	if (s->onext)
		s->onext->oprev = s->oprev;
	s->onext = s->oprev = NULL;
	s->orphan_until = 0;
	a->n--;
}

void sm_adopt_forget(struct sm *sm, struct sm_session *s)
{
	if (s->orphan_until && sm->adopt) {
		if (s->okept)
			log_info("orphaned session ended: kept stanzas dropped", "jid=\"%s\"", s->full);
		orphan_off(sm->adopt, s);
	}
	kept_free(s);
	free(s->smk_id);
	s->smk_id = NULL;
}

void sm_adopt_held(struct sm *sm, struct sm_session *t, int kind, const void *raw, size_t len, uint8_t flags)
{
	struct sm_adopt_item *it;

	t->okept_bytes += len;
	if (t->okept_bytes > SM_ADOPT_KEEP_MAX) {
		/* It would hold without bound: it ends at the next tick. */
		t->orphan_until = 1;
		sm->adopt->next_check = 1;
		return;
	}
	if (flags & WIRE_STANZA_TRACK)
		return;     /* on its delivery-tracking list already (sm.c) */
	it = malloc(sizeof(*it) + len);
	if (!it) {
		t->orphan_until = 1;   /* cannot keep its promise: it ends */
		sm->adopt->next_check = 1;
		return;
	}
	it->next = NULL;
	it->kind = (uint8_t)kind;
	it->len = len;
	memcpy(it->raw, raw, len);
	if (t->okept_tail)
		t->okept_tail->next = it;
	else
		t->okept = it;
	t->okept_tail = it;
}

static void adopt_reply(struct sm_link *l, uint64_t sid, int status, const char *jid, uint32_t h)
{
	struct wire_msg r = { .type = WIRE_ADOPT_RESP, .sid = sid };

	r.u.adopt_resp.status = (uint8_t)status;
	r.u.adopt_resp.h = h;
	r.u.adopt_resp.jid = sm_ws(jid);
	sm_link_send(l, &r);
}

/* The orphan named by id[0..n), compared whole in constant time; NULL: none. */
static struct sm_session *orphan_find(struct sm_adopt *a, const uint8_t *id, size_t n)
{
	uint64_t h = sm_tab_hash(&a->by_previd, id, n);

	for (struct sm_tab_node *x = sm_tab_bucket(&a->by_previd, h); x; x = x->next) {
		struct sm_session *s = sm_container_of(x, struct sm_session, by_previd);
		uint8_t diff = 0;

		if (x->hash != h || s->smk_id_len != n)
			continue;
		for (size_t i = 0; i < n; i++)
			diff |= (uint8_t)(s->smk_id[i] ^ id[i]);
		if (!diff)
			return s;
	}
	return NULL;
}

void sm_adopt_in(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *p = sm_session_by_sid(l, m->sid), *o;
	const struct wire_str *id = &m->u.adopt.previd, *bare = &m->u.adopt.jid;
	struct sm_adopt_item *it, *next;

	/* The stream's own session: authenticated as the account, not bound. */
	if (!p || p->state != SM_SESS_AUTHED || bare->len != p->bare_len ||
	    memcmp(bare->p, p->bare, bare->len) != 0) {
		adopt_reply(l, m->sid, WIRE_NOT_ALLOWED, "", 0);
		log_warn("adoption asked by a session that cannot", "link=%u sid=%" PRIu64, l->id, m->sid);
		return;
	}
	o = sm->adopt && id->len ? orphan_find(sm->adopt, id->p, id->len) : NULL;
	if (!o || o->bare_len != p->bare_len || memcmp(o->bare, p->bare, p->bare_len) != 0 ||
	    o->orphan_until == 1) {
		adopt_reply(l, m->sid, WIRE_NO_USER, "", 0);
		log_debug("adoption refused: no such orphaned session of this account", "link=%u sid=%" PRIu64
			 " jid=\"%s\"", l->id, m->sid, p->bare);
		return;
	}
	orphan_off(sm->adopt, o);
	STAT_INC(sm->stats.adopted);
	/* o takes the place of the stream's session (never bound: nothing to tell anyone). */
	o->flags = p->flags;
	memcpy(o->addr, p->addr, sizeof(o->addr));
	sm_session_end(sm, p);
	sm_session_unlink(o->link, o);
	o->link = l;
	o->sid = m->sid;
	sm_session_link(l, o);
	/* The new edge grants credit from zero and counts its bytes from zero. */
	o->credited = false;
	o->credit = 0;
	log_debug("orphaned session adopted by another edge", "link=%u sid=%" PRIu64 " jid=\"%s\" h=%u",
		 l->id, o->sid, o->full, o->smk_h);
	adopt_reply(l, o->sid, WIRE_OK, o->full, o->smk_h);
	/* What it was sent and never confirmed written, then what it was kept. */
	sm_track_restart(sm, o);
	it = o->okept;
	o->okept = o->okept_tail = NULL;
	for (; it; it = next) {
		next = it->next;
		sm_deliver(sm, o, it->kind, sm_ws(""), sm_ws(""), sm_ws(""), sm_ws(""), sm_ws(""), it->raw,
			   it->len);
		free(it);
	}
}

/* o's time is up: its kept messages and iqs are returned, then it ends. */
static void orphan_end(struct sm *sm, struct sm_session *o, const char *why)
{
	struct sm_adopt_item *it = o->okept, *next;
	unsigned n = 0;

	log_debug("orphaned session ended", "jid=\"%s\" why=%s", o->full, why);
	orphan_off(sm->adopt, o);
	STAT_INC(sm->stats.orphans_expired);
	o->okept = o->okept_tail = NULL;
	for (; it; it = next) {
		struct wire_msg m = { .type = WIRE_STANZA, .sid = o->sid };

		next = it->next;
		if (it->kind == WIRE_KIND_MESSAGE || it->kind == WIRE_KIND_IQ) {
			m.u.stanza.kind = it->kind;
			m.u.stanza.flags = WIRE_STANZA_RETURNED;
			m.u.stanza.raw = wire_s(it->raw, it->len);
			sm_returned(sm, o, &m);
			n++;
		}
		free(it);
	}
	if (n)
		log_info("stanzas of an orphaned session returned", "jid=\"%s\" count=%u", o->full, n);
	sm_session_end(sm, o);
}

void sm_adopt_tick(struct sm *sm)
{
	struct sm_adopt *a = sm->adopt;
	struct sm_session *s, *next;
	int64_t now, soonest = 0;

	STAT_SET(sm->stats.orphans, a ? a->n : 0);
	if (!a || !a->head || now_ms() < a->next_check)
		return;
	now = now_ms();
	for (s = a->head; s; s = next) {
		next = s->onext;
		if (now >= s->orphan_until) {
			/* Ending it delivers to others (presence, re-routed messages),
			 * which only ever marks orphans: next stays valid. */
			orphan_end(sm, s, s->orphan_until == 1 ? "too much kept" : "resumption timeout");
			continue;
		}
		if (!soonest || s->orphan_until < soonest)
			soonest = s->orphan_until;
	}
	/* At most once a second, and no later than the next deadline. */
	a->next_check = now + SM_ADOPT_TICK_MS;
	if (soonest && soonest > a->next_check)
		a->next_check = soonest;
}

int sm_adopt_timeout(struct sm *sm)
{
	struct sm_adopt *a = sm->adopt;
	int64_t d;

	if (!a || !a->head)
		return -1;
	d = a->next_check - now_ms();
	return d <= 0 ? 0 : d > SM_ADOPT_TICK_MS ? SM_ADOPT_TICK_MS : (int)d;
}

size_t sm_adopt_list(struct sm *sm, struct sm_buf *out)
{
	size_t n = 0;
	int64_t now = now_ms();

	for (struct sm_session *s = sm->adopt ? sm->adopt->head : NULL; s; s = s->onext, n++)
		sm_buf_fmt(out, "%s %s link=- worker=- orphaned %s %llds\n", s->full, s->addr[0] ? s->addr : "-",
			   s->available ? "available" : "unavailable",
			   (long long)(s->orphan_until > now ? (s->orphan_until - now + 999) / 1000 : 0));
	return n;
}

/* ---- cross-shard messages through an edge that may die ------------------- */

static void relay_trim(struct sm_relay *q, int64_t now)
{
	while (q->head && (now - q->head->at > SM_RELAY_KEEP_MS || q->bytes > SM_RELAY_KEEP_MAX)) {
		struct sm_relay_item *it = q->head;

		q->head = it->next;
		q->bytes -= it->len;
		free(it);
	}
	if (!q->head)
		q->tail = NULL;
}

void sm_adopt_relay_keep(struct sm_link *l, const struct wire_msg *f)
{
	struct sm_relay *q = l->relay;
	struct sm_relay_item *it;
	size_t n;

	if (f->u.stanza.kind != WIRE_KIND_MESSAGE || l->state == SM_LINK_DEAD)
		return;
	if (!q && !(q = l->relay = calloc(1, sizeof(*q))))
		return;
	n = wire_size(f);
	it = malloc(sizeof(*it) + n);
	if (!it)
		return;
	it->next = NULL;
	it->at = now_ms();
	it->len = wire_encode(f, it->frame, n);
	if (!it->len) {
		free(it);
		return;
	}
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->bytes += it->len;
	relay_trim(q, it->at);
}

void sm_adopt_relay_lost(struct sm *sm, struct sm_link *l)
{
	struct sm_relay *q = l->relay;
	struct sm_relay_item *it, *next;
	unsigned n = 0;

	if (!q)
		return;
	l->relay = NULL;
	relay_trim(q, now_ms());
	for (it = q->head; it; it = next) {
		struct wire_msg m;

		next = it->next;
		/* l is dead: shard_out picks another edge (or bounces). */
		if (!sm->stopping && wire_decode(it->frame, it->len, &m) == (long)it->len &&
		    sm_remote_send(sm, &m))
			n++;
		free(it);
	}
	free(q);
	if (n)
		log_info("cross-shard messages sent again: their edge link is gone", "link=%u count=%u",
			 l->id, n);
}

void sm_adopt_free(struct sm *sm)
{
	struct sm_adopt *a = sm->adopt;

	if (!a)
		return;
	while (a->head)
		sm_session_discard(sm, a->head);    /* sm_adopt_forget takes it off */
	sm_tab_fini(&a->by_previd);
	sm_tab_fini(&a->limbo.sessions);
	free(a);
	sm->adopt = NULL;
}
