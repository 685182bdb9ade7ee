/*
 * smacks — see smacks.h.
 *
 * Invariant: the unacked queue holds exactly the stanzas numbered
 * out_acked+1 .. out_n (modulo 2^32), oldest first; `acked` moves only on a
 * valid <a/> or <resume/>.  Every `h` a client sends is checked against
 * out_n - out_acked before anything is dropped (XEP-0198 §4: a count past
 * what was sent is the stream error undefined-condition with
 * <handled-count-too-high/>).
 */
#include "core/smacks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csi.h"
#include "core/link.h"
#include "core/log.h"
#include "core/session.h"
#include "core/xmpp.h"
#include "tls/crypto.h"

struct smk_item {
	struct smk_item *next;
	uint64_t rx_end;      /* s->rx once it was handed out: delivery reports up to here */
	uint32_t len;
	uint8_t kind;         /* WIRE_KIND_* from the session server; 0: the edge's own answer */
	bool track;           /* WIRE_STANZA_TRACK: the session server re-routes it itself */
	uint8_t raw[];
};

struct smacks {
	uint32_t in_h;        /* client stanzas handled, modulo 2^32 */
	uint32_t out_n;       /* stanzas sent to the client */
	uint32_t out_acked;   /* the client's last h */
	uint32_t since_r;     /* stanzas sent since our last <r/> */
	uint32_t max;         /* resumption: seconds a detached session lives; 0: not resumable */
	uint64_t rx_base;     /* s->rx at <enable/> */
	uint64_t last_r;      /* worker seconds of our last <r/> */
	uint64_t expires;     /* detached: when it ends */
	size_t qbytes;        /* raw bytes in the queue */
	struct smk_item *head, *tail;
	bool detached;
	bool resending;       /* writing the queue again after <resumed/>: not counted twice */
	bool overflow;        /* the queue passed max_unacked: the stream must end */
	bool ending;          /* the stream ends by our decision: no detach */
	uint8_t next_kind;
	bool next_track;
	struct session *next, *prev;  /* w->smk_list */
	uint8_t token[SMACKS_TOKEN];
	char id[SMACKS_ID_MAX];
};

/* ---- the worker's list ---------------------------------------------------- */

static void list_add(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	k->prev = NULL;
	k->next = w->smk_list;
	if (w->smk_list)
		w->smk_list->smk->prev = s;
	w->smk_list = s;
}

static void list_del(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	if (k->prev)
		k->prev->smk->next = k->next;
	else if (w->smk_list == s)
		w->smk_list = k->next;
	if (k->next)
		k->next->smk->prev = k->prev;
	k->next = k->prev = NULL;
}

/* ---- output: counting and keeping ------------------------------------------ */

static void send_r(struct conn *c, struct smacks *k)
{
	k->since_r = 0;
	k->last_r = c->w->now;
	xmpp_outs(c, "<r xmlns='" NS_SM "'/>");
}

static bool is_stanza(const uint8_t *p, size_t n)
{
	static const char *const names[] = { "<message", "<presence", "<iq" };

	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(names[i]);
		if (n > l && memcmp(p, names[i], l) == 0 &&
		    (p[l] == ' ' || p[l] == '>' || p[l] == '/' || p[l] == '\t' || p[l] == '\n' || p[l] == '\r'))
			return true;
	}
	return false;
}

/* Keep one stanza as sent (number out_n + 1).  false when out of memory (the
 * stream then cannot keep its promise: it ends). */
static bool push(struct worker *w, struct session *s, const void *raw, size_t len, int kind, bool track)
{
	struct smacks *k = s->smk;
	struct smk_item *it = malloc(sizeof(*it) + len);

	k->out_n++;
	if (!it) {
		k->overflow = true;
		return false;
	}
	it->next = NULL;
	it->rx_end = s->rx;
	it->len = (uint32_t)len;
	it->kind = (uint8_t)kind;
	it->track = track;
	memcpy(it->raw, raw, len);
	if (k->tail)
		k->tail->next = it;
	else
		k->head = it;
	k->tail = it;
	k->qbytes += len;
	if (k->qbytes > w->cfg->smacks.max_unacked)
		k->overflow = true;
	return true;
}

void smacks_next(struct session *s, int kind, bool track)
{
	if (s->smk) {
		s->smk->next_kind = (uint8_t)kind;
		s->smk->next_track = track;
	}
}

void smacks_out(struct conn *c, const void *data, size_t len)
{
	struct session *s = c->sess;
	struct smacks *k = s->smk;
	int kind = k->next_kind;
	bool track = k->next_track;

	if (k->resending || s->state == SS_CLOSED || !is_stanza(data, len))
		return;
	k->next_kind = 0;
	k->next_track = false;
	push(c->w, s, data, len, kind, track);
	if (++k->since_r >= SMACKS_R_EVERY && !(c->flags & (CF_PEER_GONE | CF_CLOSED)) &&
	    c->state == CS_SESSION)
		send_r(c, k);
}

void smacks_handled(struct session *s)
{
	if (s->smk)
		s->smk->in_h++;
}

uint64_t smacks_written_cap(const struct session *s, uint64_t rx)
{
	return s->smk && rx > s->smk->rx_base ? s->smk->rx_base : rx;
}

/* Drop the n oldest stanzas: the client has them.  Delivery reports move to
 * the end of the last one. */
static void drop(struct worker *w, struct session *s, uint32_t n)
{
	struct smacks *k = s->smk;
	bool tracked = false;

	while (n-- && k->head) {
		struct smk_item *it = k->head;

		k->head = it->next;
		k->qbytes -= it->len;
		if (it->rx_end > s->delivered)
			s->delivered = it->rx_end;
		tracked |= it->track;
		free(it);
	}
	if (!k->head)
		k->tail = NULL;
	if (k->qbytes <= w->cfg->smacks.max_unacked)
		k->overflow = false;
	if ((tracked || s->track) && s->delivered != s->reported && session_announced(s))
		native_delivered(w, s);
}

/* ---- elements from the client ---------------------------------------------- */

static void failed(struct conn *c, const char *cond, const struct smacks *h_of)
{
	char buf[256];

	if (h_of)
		snprintf(buf, sizeof(buf), "<failed xmlns='" NS_SM "' h='%" PRIu32 "'><%s xmlns='" NS_STANZAS
			 "'/></failed>", h_of->in_h, cond);
	else
		snprintf(buf, sizeof(buf), "<failed xmlns='" NS_SM "'><%s xmlns='" NS_STANZAS "'/></failed>",
			 cond);
	xmpp_outs(c, buf);
}

/* XEP-0198 §4: an h acknowledging more than was sent. */
static int too_high(struct conn *c, uint32_t h, uint32_t sent)
{
	char buf[160];

	if (c->sess && c->sess->smk)
		c->sess->smk->ending = true;
	snprintf(buf, sizeof(buf), "<handled-count-too-high xmlns='" NS_SM "' h='%" PRIu32
		 "' send-count='%" PRIu32 "'/>", h, sent);
	xmpp_error_app(c, "undefined-condition", buf);
	return STOP_DISCARD;
}

/* An unsigned 32-bit decimal attribute; false when absent or not one. */
static bool attr_u32(const struct xs_stanza *st, const uint8_t *p, const char *name, uint32_t *out)
{
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, name, &n);
	uint64_t x = 0;

	if (!v || n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > UINT32_MAX)
		return false;
	*out = (uint32_t)x;
	return true;
}

static bool attr_true(const struct xs_stanza *st, const uint8_t *p, const char *name)
{
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, name, &n);

	return v && ((n == 4 && !memcmp(v, "true", 4)) || (n == 1 && v[0] == '1'));
}

static void make_id(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;
	int n = snprintf(k->id, sizeof(k->id), "%s.%d.%016" PRIx64 ".", w->cfg->smacks.edge_id, w->id, s->id);

	for (size_t i = 0; i < SMACKS_TOKEN && n + 2 < (int)sizeof(k->id); i++)
		n += snprintf(k->id + n, sizeof(k->id) - (size_t)n, "%02x", k->token[i]);
}

static int on_enable(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct smacks *k;
	uint32_t want = 0;
	char buf[256];

	/* §3: only once, and only after resource binding. */
	if (!(c->flags & CF_BOUND) || !s || s->smk) {
		failed(c, "unexpected-request", NULL);
		return GO_ON;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		failed(c, "resource-constraint", NULL);
		return GO_ON;
	}
	s->smk = k;
	k->rx_base = s->rx;
	k->last_r = w->now;
	if (attr_true(st, p, "resume") && w->cfg->smacks.resume_timeout > 0) {
		if (crypto_random(k->token, sizeof(k->token)) < 0) {
			free(k);
			s->smk = NULL;
			failed(c, "internal-server-error", NULL);
			return GO_ON;
		}
		/* §5: the client's max is a preference; ours is the limit. */
		k->max = w->cfg->smacks.resume_timeout;
		if (attr_u32(st, p, "max", &want) && want > 0 && want < k->max)
			k->max = want;
		make_id(w, s);
		snprintf(buf, sizeof(buf), "<enabled xmlns='" NS_SM "' id='%s' resume='true' max='%" PRIu32 "'/>",
			 k->id, k->max);
	} else {
		snprintf(buf, sizeof(buf), "<enabled xmlns='" NS_SM "'/>");
	}
	list_add(w, s);
	xmpp_outs(c, buf);
	log_info("stream management enabled", "conn=%u worker=%d jid=%s resume=%u max=%u", c->idx, w->id, s->jid,
		 k->max > 0, k->max);
	return GO_ON;
}

static int on_ack(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct session *s = c->sess;
	struct smacks *k = s->smk;
	uint32_t h;

	if (!attr_u32(st, p, "h", &h)) {
		xmpp_error(c, "bad-format", NULL);
		return STOP_DISCARD;
	}
	if (h - k->out_acked > k->out_n - k->out_acked)
		return too_high(c, h, k->out_n);
	drop(c->w, s, h - k->out_acked);
	k->out_acked = h;
	return GO_ON;
}

/* The detached session a <resume/> names on this worker, or NULL.  Only the
 * random part is secret; it is compared in constant time. */
static struct session *lookup(struct worker *w, const char *v, size_t n)
{
	const char *edge = w->cfg->smacks.edge_id;
	size_t el = strlen(edge);
	char buf[SMACKS_ID_MAX], want[SMACKS_ID_MAX];
	char *wk, *sid, *tok, *end;
	unsigned long worker;
	unsigned long long id;
	struct session *s;
	uint8_t diff = 0;

	if (n >= sizeof(buf) || n <= el + 1 || memcmp(v, edge, el) || v[el] != '.')
		return NULL;
	memcpy(buf, v, n);
	buf[n] = 0;
	wk = buf + el + 1;
	sid = strchr(wk, '.');
	if (!sid)
		return NULL;
	*sid++ = 0;
	tok = strchr(sid, '.');
	if (!tok)
		return NULL;
	*tok++ = 0;
	worker = strtoul(wk, &end, 10);
	if (*end || end == wk || (int)worker != w->id)
		return NULL;
	id = strtoull(sid, &end, 16);
	if (*end || end - sid != 16 || strlen(tok) != 2 * SMACKS_TOKEN)
		return NULL;
	s = session_by_id(w, id);
	if (!s || !s->smk || !s->smk->max || !s->smk->id[0])
		return NULL;
	snprintf(want, sizeof(want), "%s", s->smk->id);
	if (strlen(want) != n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(want[i] ^ v[i]);
	return diff ? NULL : s;
}

/* Does s belong to the account c authenticated as? */
static bool same_account(const struct conn *c, const struct session *s)
{
	const struct session *mine = c->sess;
	size_t ul, dl;

	if (!mine || !mine->user || !s->user || !s->jid || strcmp(mine->user, s->user))
		return false;
	ul = strlen(s->user);
	dl = strlen(c->domain);
	return s->jid[ul] == '@' && !strncmp(s->jid + ul + 1, c->domain, dl) && s->jid[ul + 1 + dl] == '/';
}

/* Flush what CSI holds into the queue and forget the stream's CSI state:
 * a new stream starts active (XEP-0352 state is per stream). */
static void csi_into_queue(struct conn *c, const uint8_t *raw, size_t len, int kind, bool track)
{
	struct session *s = c->sess;

	s->rx += len;
	if (s->smk)
		push(c->w, s, raw, len, kind & 3, track);
}

static void unlink_conn(struct conn *c)
{
	struct session *s = c->sess;

	if (s->csi) {
		csi_flush(c, csi_into_queue);
		csi_free(s);
	}
	s->c = NULL;
	c->sess = NULL;
	c->flags &= ~CF_BOUND;
}

static void detach(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	k->detached = true;
	k->expires = w->now + k->max;
	STAT_INC(w->st.smacks_detached);
	/* Nobody reads for it now: the session server gets its credit back as
	 * stanzas are kept, so its senders are never paused for an absent client. */
	if (s->owed && session_announced(s))
		native_credit(w, s);
}

static int on_resume(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct worker *w = c->w;
	struct session *s;
	struct smacks *k;
	uint32_t h;
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, "previd", &n);
	char buf[SMACKS_ID_MAX + 128];

	/* §5: after authentication, instead of binding. */
	if (!(c->flags & CF_AUTHED) || (c->flags & CF_BOUND) || !c->sess || c->state != CS_NEGOTIATE ||
	    (c->flags & CF_WAIT_SM)) {
		failed(c, "unexpected-request", NULL);
		return GO_ON;
	}
	if (!v || !attr_u32(st, p, "h", &h)) {
		xmpp_error(c, "bad-format", NULL);
		return STOP_DISCARD;
	}
	s = lookup(w, v, n);
	if (!s || !same_account(c, s) || s->state != SS_BOUND) {
		/* Unknown, expired, or another account's: all the same to the client. */
		STAT_INC(w->st.smacks_resume_failed);
		log_info("stream resumption failed", "conn=%u worker=%d user=%s", c->idx, w->id,
			 c->sess->user ? c->sess->user : "-");
		failed(c, "item-not-found", NULL);
		return GO_ON;
	}
	k = s->smk;
	if (h - k->out_acked > k->out_n - k->out_acked)
		return too_high(c, h, k->out_n);
	if (s->c) {
		/* The old stream is still open (a half-dead TCP connection): it
		 * gives the session up and is closed. */
		struct conn *old = s->c;

		unlink_conn(old);
		detach(w, s);
		xmpp_error(old, "conflict", "Replaced by a resumed stream");
	}
	native_attach(c, s);
	k->detached = false;
	drop(w, s, h - k->out_acked);
	k->out_acked = h;
	STAT_INC(w->st.smacks_resumed);
	log_info("stream resumed", "conn=%u worker=%d jid=%s h=%u resent=%u", c->idx, w->id, s->jid, h,
		 k->out_n - k->out_acked);
	snprintf(buf, sizeof(buf), "<resumed xmlns='" NS_SM "' h='%" PRIu32 "' previd='%s'/>", k->in_h, k->id);
	xmpp_outs(c, buf);
	/* §5: what the client has not acknowledged goes again, in order. */
	k->resending = true;
	for (struct smk_item *it = k->head; it; it = it->next)
		xmpp_out(c, it->raw, it->len);
	k->resending = false;
	if (k->head)
		send_r(c, k);
	return GO_ON;
}

int smacks_element(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct session *s = c->sess;

	if (xs_streq(&st->local, "enable")) {
		if (!c->w->cfg->smacks.enabled) {
			failed(c, "feature-not-implemented", NULL);
			return GO_ON;
		}
		return on_enable(c, st, p);
	}
	if (xs_streq(&st->local, "resume")) {
		if (!c->w->cfg->smacks.enabled) {
			failed(c, "feature-not-implemented", NULL);
			return GO_ON;
		}
		return on_resume(c, st, p);
	}
	if (!s || !s->smk || !(c->flags & CF_BOUND)) {
		/* <r/> and <a/> only mean something once enabled. */
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (xs_streq(&st->local, "r")) {
		char buf[96];
		snprintf(buf, sizeof(buf), "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", s->smk->in_h);
		xmpp_outs(c, buf);
		return GO_ON;
	}
	if (xs_streq(&st->local, "a"))
		return on_ack(c, st, p);
	xmpp_error(c, "unsupported-stanza-type", NULL);
	return STOP_DISCARD;
}

/* ---- the end of a stream, detached sessions --------------------------------- */

bool smacks_detach(struct conn *c, int reason)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct smacks *k = s ? s->smk : NULL;

	/* A clean </stream> ends the session; so do our own decisions (bad h,
	 * overflow), a draining or stopping worker, and a lost link. */
	if (!k || !k->max || k->ending || k->overflow || reason == WIRE_CLOSE_NORMAL || s->state != SS_BOUND ||
	    !w->cfg->smacks.enabled || w->stop || w->draining || !w->link.up || w->link.dead)
		return false;
	unlink_conn(c);
	detach(w, s);
	log_info("session detached: resumable", "worker=%d sid=%" PRIu64 " jid=%s unacked=%u max=%u", w->id, s->id,
		 s->jid, k->out_n - k->out_acked, k->max);
	return true;
}

/* End a detached session: its stanzas go back, the session server is told. */
static void end_detached(struct worker *w, struct session *s, const char *why)
{
	log_info("detached session ended", "worker=%d sid=%" PRIu64 " jid=%s why=%s unacked=%u", w->id, s->id,
		 s->jid, why, s->smk->out_n - s->smk->out_acked);
	native_session_close(w, s, WIRE_CLOSE_DISCONNECT);
	session_free(w, s);
}

void smacks_detached_frame(struct worker *w, struct session *s, const struct wire_msg *m)
{
	struct smacks *k = s->smk;

	if (!k || !k->detached)
		return;
	switch (m->type) {
	case WIRE_STANZA:
		s->owed += m->u.stanza.raw.len;
		s->rx += m->u.stanza.raw.len;
		push(w, s, m->u.stanza.raw.p, m->u.stanza.raw.len, m->u.stanza.kind,
		     m->u.stanza.flags & WIRE_STANZA_TRACK);
		if (k->overflow) {
			end_detached(w, s, "unacked queue full");
			return;
		}
		if (s->owed >= w->cfg->limits.max_out_bytes / 4)
			native_credit(w, s);
		break;
	case WIRE_SESSION_CLOSE:
		/* The session server ended it (a conflicting bind, a kick). */
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		log_info("detached session ended by the session server", "worker=%d sid=%" PRIu64 " reason=%u",
			 w->id, s->id, m->u.close.reason);
		session_free(w, s);
		break;
	default:
		break;   /* FLOW: nobody reads from it anyway */
	}
}

void smacks_return(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;
	unsigned n = 0;

	if (!k)
		return;
	for (struct smk_item *it = k->head; it; it = it->next) {
		struct wire_msg m = { .type = WIRE_STANZA, .sid = s->id };

		/* Tracked messages: the session server re-routes them (delivery
		 * reports stop at the last acknowledged byte).  Presence and the
		 * edge's own answers: nothing to return. */
		if (it->track || (it->kind != WIRE_KIND_MESSAGE && it->kind != WIRE_KIND_IQ))
			continue;
		m.u.stanza.kind = it->kind;
		m.u.stanza.flags = WIRE_STANZA_RETURNED;
		m.u.stanza.raw = wire_s(it->raw, it->len);
		if (link_send(w, &m) == 0)
			n++;
	}
	if (n) {
		STAT_ADD(w->st.smacks_returned, n);
		log_info("unacknowledged stanzas returned", "worker=%d sid=%" PRIu64 " jid=%s count=%u", w->id, s->id,
			 s->jid ? s->jid : "-", n);
	}
}

void smacks_tick(struct worker *w)
{
	struct session *s, *next;

	for (s = w->smk_list; s; s = next) {
		struct smacks *k = s->smk;
		struct conn *c = s->c;

		next = k->next;
		if (k->detached) {
			if (w->now >= k->expires)
				end_detached(w, s, "resumption timeout");
			continue;
		}
		if (!c || c->state != CS_SESSION || (c->flags & (CF_CLOSED | CF_PEER_GONE)))
			continue;
		if (k->overflow) {
			/* RFC 6120 §4.9.3.17: it would need more than we give a stream. */
			log_info("unacked queue over its bound", "conn=%u jid=%s bytes=%zu", c->idx, s->jid, k->qbytes);
			k->ending = true;
			xmpp_error(c, "resource-constraint", "too many unacknowledged stanzas");
			continue;
		}
		if (k->since_r && w->now >= k->last_r + SMACKS_R_PERIOD)
			send_r(c, k);
	}
}

void smacks_free(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	if (!k)
		return;
	list_del(w, s);
	while (k->head) {
		struct smk_item *it = k->head;
		k->head = it->next;
		free(it);
	}
	explicit_bzero(k->token, sizeof(k->token));
	free(k);
	s->smk = NULL;
}

void smacks_link_down(struct worker *w)
{
	struct session *s, *next;

	for (s = w->smk_list; s; s = next) {
		next = s->smk->next;
		if (s->smk->detached) {
			if (s->state != SS_CLOSED)
				session_set_state(s, SS_CLOSED);
			session_free(w, s);
		}
	}
}
