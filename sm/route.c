/*
 * sm_route — where a client's stanza goes (RFC 6120 §8, §10; RFC 6121).
 *
 * Input: a STANZA frame from a bound session.  The edge has stamped `from`
 * with the session's full JID and decoded the routing attributes; the sm
 * routes on that header and forwards the raw bytes untouched, except that
 * presence broadcasts get their `to` set per recipient (xmltag_rewrite) and
 * subscription presence gets the sender's bare JID as `from`.  XML is parsed
 * (xmlstage) only where the server itself must look inside: presence
 * priority, stanzas addressed to the server, offline storage.
 *
 * Rules in brief:
 *   message   full JID online -> that session.  Bare JID (or full JID not
 *             online, chat/normal) -> the available resource with the highest
 *             non-negative priority; headline -> all of them; none available
 *             -> offline storage (chat/normal), delivered at the next initial
 *             presence.  groupchat to a bare JID -> service-unavailable;
 *             errors are never answered.  No `to` = the sender's bare JID.
 *   presence  no `to`: broadcast (roster `from`/`both` contacts + the user's
 *             own available resources), probes at initial presence; with a
 *             `to`: directed, delivered to the full JID or all available
 *             resources of a bare JID; subscription types are passed on to
 *             the contact's available resources (roster state: later).
 *   iq        full JID online -> routed; no `to`, the domain or the sender's
 *             own bare JID -> the server answers (roster get, ping, disco,
 *             session); other get/set -> service-unavailable; undeliverable
 *             result/error -> dropped.
 * Errors follow RFC 6120 §8.3: type='error', same id, from/to swapped, the
 * error type each condition calls for.  Everything put into XML is escaped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_ROSTER "jabber:iq:roster"
#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_DELAY "urn:xmpp:delay"

/* Types a stanza can carry, as far as routing cares. */
enum route_type {
	RT_NONE = 0,    /* attribute absent: message normal / presence available */
	RT_NORMAL, RT_CHAT, RT_GROUPCHAT, RT_HEADLINE, RT_ERROR,
	RT_UNAVAILABLE, RT_SUBSCRIBE, RT_SUBSCRIBED, RT_UNSUBSCRIBE, RT_UNSUBSCRIBED, RT_PROBE,
	RT_GET, RT_SET, RT_RESULT,
	RT_OTHER        /* not valid for this kind */
};

/* The `to` of the stanza being routed, canonicalised. */
struct route_to {
	bool present;           /* the stanza had a `to` */
	bool valid;             /* it parsed as a JID */
	bool has_local, has_resource;
	bool served;            /* its domain is one of ours */
	char full[JID_MAX + 1]; /* canonical, with the resource when there is one */
	char bare[JID_MAX + 1]; /* canonical local@domain, or the domain */
	size_t full_len, bare_len;
};

/* One stanza being routed. */
struct route_ctx {
	struct sm *sm;
	struct sm_session *s;          /* the sender; NULL when replayed (it may be gone) */
	const char *from;              /* the sender's full JID */
	size_t from_len;
	char from_bare[JID_MAX + 1];   /* and its bare JID */
	size_t from_bare_len;
	const struct wire_msg *m;
	int kind;
	int type;                      /* enum route_type */
	struct route_to to;
};

static const char *kind_name(int kind)
{
	return kind == WIRE_KIND_MESSAGE ? "message" : kind == WIRE_KIND_PRESENCE ? "presence" : "iq";
}

static bool ws_eq(struct wire_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

static int type_parse(int kind, struct wire_str t)
{
	static const struct { int kind; const char *name; int type; } types[] = {
		{ WIRE_KIND_MESSAGE, "normal", RT_NORMAL },
		{ WIRE_KIND_MESSAGE, "chat", RT_CHAT },
		{ WIRE_KIND_MESSAGE, "groupchat", RT_GROUPCHAT },
		{ WIRE_KIND_MESSAGE, "headline", RT_HEADLINE },
		{ WIRE_KIND_PRESENCE, "unavailable", RT_UNAVAILABLE },
		{ WIRE_KIND_PRESENCE, "subscribe", RT_SUBSCRIBE },
		{ WIRE_KIND_PRESENCE, "subscribed", RT_SUBSCRIBED },
		{ WIRE_KIND_PRESENCE, "unsubscribe", RT_UNSUBSCRIBE },
		{ WIRE_KIND_PRESENCE, "unsubscribed", RT_UNSUBSCRIBED },
		{ WIRE_KIND_PRESENCE, "probe", RT_PROBE },
		{ WIRE_KIND_IQ, "get", RT_GET },
		{ WIRE_KIND_IQ, "set", RT_SET },
		{ WIRE_KIND_IQ, "result", RT_RESULT },
	};

	if (t.len == 0)
		return RT_NONE;
	if (ws_eq(t, "error"))
		return RT_ERROR;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].kind == kind && ws_eq(t, types[i].name))
			return types[i].type;
	/* RFC 6121 §5.2.2: an unknown message type is handled as normal. */
	return kind == WIRE_KIND_MESSAGE ? RT_NORMAL : RT_OTHER;
}

static void to_parse(struct sm *sm, struct wire_str raw, struct route_to *to)
{
	struct jid_view v;
	int n;

	memset(to, 0, sizeof(*to));
	if (raw.len == 0)
		return;
	to->present = true;
	if (raw.len > JID_MAX || memchr(raw.p, 0, raw.len) ||
	    jid_parse((const char *)raw.p, raw.len, &v) < 0)
		return;
	n = jid_canon(&v, true, to->full, sizeof(to->full));
	if (n < 0)
		return;
	to->full_len = (size_t)n;
	n = jid_canon(&v, false, to->bare, sizeof(to->bare));
	if (n < 0)
		return;
	to->bare_len = (size_t)n;
	to->valid = true;
	to->has_local = v.local_len > 0;
	to->has_resource = v.resource_len > 0;
	/* The canonical domain is the tail of the bare JID. */
	to->served = sm_domain_served(sm, to->bare + (to->has_local ? v.local_len + 1 : 0),
				      to->bare_len - (to->has_local ? v.local_len + 1 : 0));
}

/* Domain part of a canonical bare JID. */
static const char *bare_domain(const char *bare)
{
	const char *at = strchr(bare, '@');

	return at ? at + 1 : bare;
}

/* ---- building stanzas -------------------------------------------------- */

/* Start `<kind type='T' id='..' [from='F'] to='T'` in the scratch buffer. */
static struct sm_buf *build_start(struct sm *sm, int kind, const char *type, struct wire_str id,
				  struct wire_str from, const char *to)
{
	struct sm_buf *b = &sm->scratch;

	sm_buf_clear(b);
	sm_buf_fmt(b, "<%s type='%s'", kind_name(kind), type);
	if (id.len) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, (const char *)id.p, id.len);
		sm_buf_str(b, "'");
	}
	if (from.len) {
		sm_buf_str(b, " from='");
		sm_buf_esc(b, (const char *)from.p, from.len);
		sm_buf_str(b, "'");
	}
	sm_buf_str(b, " to='");
	sm_buf_esc(b, to, strlen(to));
	sm_buf_str(b, "'");
	return b;
}

/* Send what build_start() and the caller put in scratch to the sender. */
static void reply_send(struct route_ctx *c, const char *type, const char *ns)
{
	struct sm *sm = c->sm;
	const struct wire_msg *m = c->m;

	struct sm_session *t = c->s ? c->s : sm_session_find(sm, c->from, c->from_len);

	if (sm->scratch.err) {
		log_warn("reply too large to build", "jid=\"%s\" kind=%s", c->from,
			 kind_name(c->kind));
		return;
	}
	if (!t)
		return;     /* the sender left meanwhile */
	sm_deliver(sm, t, c->kind, sm_ws(type), sm_ws(c->from), m->u.stanza.to,
		   m->u.stanza.id, sm_ws(ns), sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
}

/*
 * Answer the sender with an error (RFC 6120 §8.3): same kind and id, `from`
 * the address it wrote to, `to` its full JID.  An error is never answered
 * with an error (§8.3.1).
 */
/* The error type each condition calls for (RFC 6120 §8.3.3). */
static const char *error_type(const char *cond)
{
	if (strcmp(cond, "bad-request") == 0 || strcmp(cond, "jid-malformed") == 0 ||
	    strcmp(cond, "not-acceptable") == 0 || strcmp(cond, "policy-violation") == 0)
		return "modify";
	if (strcmp(cond, "internal-server-error") == 0 || strcmp(cond, "resource-constraint") == 0)
		return "wait";
	if (strcmp(cond, "not-authorized") == 0 || strcmp(cond, "forbidden") == 0)
		return "auth";
	return "cancel";
}

static void reply_error(struct route_ctx *c, const char *cond)
{
	struct sm_buf *b;

	if (c->type == RT_ERROR)
		return;
	b = build_start(c->sm, c->kind, "error", c->m->u.stanza.id, c->m->u.stanza.to, c->from);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   error_type(cond), cond, kind_name(c->kind));
	reply_send(c, "error", "");
	log_debug("stanza refused", "jid=\"%s\" kind=%s condition=%s", c->from,
		  kind_name(c->kind), cond);
}

/*
 * Copy raw into scratch with `to` (and `from` when not NULL) set in its start
 * tag.  Returns false when raw has no start tag or memory ran out.
 */
static bool rewrite(struct sm *sm, const void *raw, size_t len, const char *to, const char *from)
{
	struct xmltag_attr set[2] = { { "to", to }, { "from", from } };
	size_t n = from ? 2 : 1;
	size_t guess = len + 6 * (strlen(to) + (from ? strlen(from) : 0)) + 32, need;
	struct sm_buf *b = &sm->scratch;

	sm_buf_clear(b);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sm_buf_reserve(b, guess) < 0)
			return false;
		need = xmltag_rewrite(raw, len, set, n, (char *)b->p, b->cap);
		if (need == 0)
			return false;
		if (need <= b->cap) {
			b->len = need;
			return true;
		}
		guess = need;
	}
	return false;
}

/* ---- delivery helpers -------------------------------------------------- */

/* Forward the stanza being routed, unchanged, to t. */
static void forward(struct route_ctx *c, struct sm_session *t)
{
	const struct wire_msg *m = c->m;

	sm_deliver(c->sm, t, c->kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
		   m->u.stanza.id, m->u.stanza.ns, m->u.stanza.raw.p, m->u.stanza.raw.len);
}

/* Forward to every available session of u; returns how many got it. */
static unsigned forward_available(struct route_ctx *c, struct sm_user *u, int min_prio)
{
	unsigned n = 0;

	for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext) {
		if (t->available && t->priority >= min_prio) {
			forward(c, t);
			n++;
		}
	}
	return n;
}

/* ---- message ----------------------------------------------------------- */

/* Offline storage with an XEP-0203 delay stamp inserted after the start tag;
 * the storage thread tells the sender if it refuses. */
static void message_store(struct route_ctx *c, const char *user)
{
	struct sm *sm = c->sm;
	const struct wire_msg *m = c->m;
	const char *raw = (const char *)m->u.stanza.raw.p;
	size_t len = m->u.stanza.raw.len, at;
	struct xs_stanza st;
	struct sm_buf *b = &sm->scratch;
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	sm_buf_clear(b);
	if (xmlstage_stanza(sm->xs, "", 0, raw, len, &st) == XMLSTAGE_OK &&
	    st.start_tag_end >= 2 && st.start_tag_end <= len && raw[st.start_tag_end - 2] != '/') {
		at = st.start_tag_end;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		sm_buf_add(b, raw, at);
		sm_buf_str(b, "<delay xmlns='" NS_DELAY "' from='");
		sm_buf_esc(b, bare_domain(user), strlen(bare_domain(user)));
		sm_buf_fmt(b, "' stamp='%s'/>", stamp);
		sm_buf_add(b, raw + at, len - at);
	} else {
		sm_buf_add(b, raw, len);
	}
	if (b->err || sm_offline_store(sm, user, c->from, c->kind, m->u.stanza.id, m->u.stanza.to,
				       sm_buf_data(b), sm_buf_used(b)) < 0)
		reply_error(c, "resource-constraint");
}

/* RFC 6121 §8.5.2: a message to a local bare JID (or to a full JID that is
 * not online, handled as to the bare JID). */
static void message_bare(struct route_ctx *c, const char *bare, size_t bare_len)
{
	struct sm *sm = c->sm;
	struct sm_user *u;
	struct sm_session *best = NULL;

	if (c->type == RT_GROUPCHAT) {
		reply_error(c, "service-unavailable");
		return;
	}
	if (c->type == RT_ERROR)
		return;
	u = sm_user_find(sm, bare, bare_len);
	if (c->type == RT_HEADLINE) {
		forward_available(c, u, 0);     /* none: silently ignored */
		return;
	}
	for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext)
		if (t->available && t->priority >= 0 && (!best || t->priority > best->priority))
			best = t;
	if (best) {
		forward(c, best);
		return;
	}
	/* Nobody available: whether the account exists, and where it goes, is
	 * in its record (parked here while it loads). */
	u = sm_user_need(sm, bare, bare_len, c->from, c->from_len, c->m);
	if (!u)
		return;
	if (!u->exists)
		reply_error(c, "service-unavailable");
	else
		message_store(c, bare);
	sm_user_release(sm, u);
}

static void route_message(struct route_ctx *c)
{
	struct route_to *to = &c->to;
	struct sm_session *t;

	if (!to->present) {
		/* RFC 6120 §10.3.1: no `to` means the sender's own bare JID. */
		message_bare(c, c->from_bare, c->from_bare_len);
		return;
	}
	if (!to->valid) {
		reply_error(c, "jid-malformed");
		return;
	}
	if (!to->served) {
		reply_error(c, "remote-server-not-found");  /* no s2s yet */
		return;
	}
	if (!to->has_local) {
		reply_error(c, "service-unavailable");      /* the server takes no messages */
		return;
	}
	if (to->has_resource) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			forward(c, t);
			return;
		}
		/* RFC 6121 §8.5.3.2.1: no such resource */
		if (c->type == RT_HEADLINE || c->type == RT_ERROR)
			return;
	}
	message_bare(c, to->bare, to->bare_len);
}

/* ---- presence ---------------------------------------------------------- */

/*
 * Send presence raw (from s) to every available session of u, with `to` set
 * to u's bare JID.  rewrite() is done once per recipient account.
 */
static void presence_to_user(struct sm *sm, struct sm_session *s, struct sm_user *u, int kind,
			     struct wire_str type, struct wire_str id, const void *raw, size_t len)
{
	bool built = false;

	for (struct sm_session *t = u->shead; t; t = t->unext) {
		if (!t->available)
			continue;
		if (!built) {
			if (!rewrite(sm, raw, len, u->bare, NULL)) {
				log_warn("presence not rewritable", "jid=\"%s\"", s->full);
				return;
			}
			built = true;
		}
		sm_deliver(sm, t, kind, type, sm_ws(u->bare), sm_ws(s->full), id, sm_ws(""),
			   sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
	}
}

/*
 * Broadcast presence raw of s (RFC 6121 §4.2.2, §4.4.2, §4.5.2): to each
 * roster contact with subscription from/both that is online here, and to the
 * user's own available resources (s included when still available).
 */
static void presence_broadcast(struct sm *sm, struct sm_session *s, struct wire_str type,
			       struct wire_str id, const void *raw, size_t len)
{
	struct sm_user *u = s->user;

	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];
		struct sm_user *cu;

		if (!(it->sub & SM_SUB_FROM) || strcmp(it->contact, u->bare) == 0)
			continue;
		cu = sm_user_find(sm, it->contact, strlen(it->contact));
		if (cu)
			presence_to_user(sm, s, cu, WIRE_KIND_PRESENCE, type, id, raw, len);
	}
	presence_to_user(sm, s, u, WIRE_KIND_PRESENCE, type, id, raw, len);
}

/* Deliver t's current presence to s, addressed to s's full JID. */
static void presence_relay(struct sm *sm, struct sm_session *t, struct sm_session *s)
{
	if (!t->available || !t->presence)
		return;
	if (!rewrite(sm, t->presence, t->presence_len, s->full, NULL))
		return;
	sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws(""), sm_ws(s->full), sm_ws(t->full),
		   sm_ws(""), sm_ws(""), sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
}

/*
 * Initial presence probes, answered locally: the presence of every available
 * session of each contact s may see (subscription to/both), and of the
 * user's own other resources.
 */
static void presence_probe_all(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;

	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];
		struct sm_user *cu;

		if (!(it->sub & SM_SUB_TO) || strcmp(it->contact, u->bare) == 0)
			continue;
		cu = sm_user_find(sm, it->contact, strlen(it->contact));
		for (struct sm_session *t = cu ? cu->shead : NULL; t; t = t->unext)
			presence_relay(sm, t, s);
	}
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t != s)
			presence_relay(sm, t, s);
}

int sm_route_offline(struct sm *sm, struct sm_session *s, int64_t id, const void *raw,
		     size_t len)
{
	struct xs_stanza st;
	struct wire_str type = sm_ws(""), to = sm_ws(""), from = sm_ws(""), sid = sm_ws("");
	struct wire_str ns = sm_ws("");

	/* Rebuild the routing header for the edge; the bytes go out as stored. */
	if (xmlstage_stanza(sm->xs, "", 0, raw, len, &st) == XMLSTAGE_OK) {
		type = wire_s(st.type.p, st.type.len);
		to = wire_s(st.to.p, st.to.len);
		from = wire_s(st.from.p, st.from.len);
		sid = wire_s(st.id.p, st.id.len);
		ns = wire_s(st.child_ns.p, st.child_ns.len);
	}
	return sm_deliver_tracked(sm, s, WIRE_KIND_MESSAGE, type, to, from, sid, ns, raw, len, id);
}

/* Presence without `to`: available or unavailable, from the session itself. */
static void presence_own(struct route_ctx *c)
{
	struct sm *sm = c->sm;
	struct sm_session *s = c->s;
	const struct wire_msg *m = c->m;
	const void *raw = m->u.stanza.raw.p;
	size_t len = m->u.stanza.raw.len;
	struct xs_stanza st;
	bool initial;
	char *copy;
	int prio = 0;

	if (c->type == RT_UNAVAILABLE) {
		if (!s->available)
			return;     /* nothing to retract */
		s->available = false;
		s->initial_done = false;   /* the next available presence is initial again */
		free(s->presence);
		s->presence = NULL;
		s->presence_len = 0;
		presence_broadcast(sm, s, m->u.stanza.type, m->u.stanza.id, raw, len);
		return;
	}
	if (c->type != RT_NONE)
		return;     /* subscription or probe types need a `to`: meaningless here */
	if (xmlstage_stanza(sm->xs, "", 0, raw, len, &st) == XMLSTAGE_OK)
		prio = st.priority < -128 ? -128 : st.priority > 127 ? 127 : st.priority;
	else
		log_debug("presence not parsed, priority 0", "jid=\"%s\"", s->full);
	copy = malloc(len ? len : 1);
	if (!copy) {
		log_warn("out of memory keeping presence", "jid=\"%s\"", s->full);
		return;
	}
	memcpy(copy, raw, len);
	free(s->presence);
	s->presence = copy;
	s->presence_len = len;
	s->priority = prio;
	s->available = true;
	initial = !s->initial_done;
	s->initial_done = true;
	presence_broadcast(sm, s, m->u.stanza.type, m->u.stanza.id, raw, len);
	sm_pep_presence(sm, s, raw, len, initial);
	if (!initial)
		return;
	presence_probe_all(sm, s);
	/* RFC 6121 §8.5.2.2.2: stored messages go to the first resource that
	 * becomes available with a non-negative priority. */
	if (prio >= 0)
		sm_offline_deliver(sm, s);
}

/* A probe from s to the bare JID of a local user (RFC 6121 §4.3.2). */
static void presence_probe_one(struct route_ctx *c, struct sm_user *u)
{
	struct sm_roster_item *it;

	if (!u)
		return;
	it = sm_roster_find(u, c->s->bare);
	if (u != c->s->user && (!it || !(it->sub & SM_SUB_FROM)))
		return;     /* not subscribed: no presence leaks */
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t != c->s)
			presence_relay(c->sm, t, c->s);
}

static void route_presence(struct route_ctx *c)
{
	struct route_to *to = &c->to;
	struct sm *sm = c->sm;
	struct sm_user *u;
	struct sm_session *t;

	if (!to->present) {
		if (c->type != RT_ERROR)
			presence_own(c);
		return;
	}
	/* Presence to a bad address, another server or the server itself has
	 * nobody to go to; presence is not answered with errors. */
	if (!to->valid || !to->served || !to->has_local || c->type == RT_OTHER)
		return;
	u = sm_user_find(sm, to->bare, to->bare_len);
	switch (c->type) {
	case RT_PROBE:
		presence_probe_one(c, u);
		return;
	case RT_SUBSCRIBE:
	case RT_SUBSCRIBED:
	case RT_UNSUBSCRIBE:
	case RT_UNSUBSCRIBED:
		/* RFC 6121 §3.1.2: subscription presence carries the bare JID.
		 * The roster state machine lands later; until then it is routed
		 * to the contact's available resources and not stored. */
		for (t = u ? u->shead : NULL; t; t = t->unext) {
			if (!t->available)
				continue;
			if (!rewrite(sm, c->m->u.stanza.raw.p, c->m->u.stanza.raw.len, to->bare,
				     c->s->bare))
				return;
			sm_deliver(sm, t, c->kind, c->m->u.stanza.type, sm_ws(to->bare),
				   sm_ws(c->s->bare), c->m->u.stanza.id, c->m->u.stanza.ns,
				   sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
		}
		return;
	default:
		/* Directed presence (available, unavailable, error). */
		if (to->has_resource) {
			t = sm_session_find(sm, to->full, to->full_len);
			if (t)
				forward(c, t);
		} else {
			forward_available(c, u, -128);
		}
		return;
	}
}

/* ---- iq ---------------------------------------------------------------- */

static void iq_result_empty(struct route_ctx *c)
{
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->s->full);
	sm_buf_str(b, "/>");
	reply_send(c, "result", "");
}

static void roster_item_xml(struct sm_buf *b, const struct sm_roster_item *it)
{
	sm_buf_str(b, "<item jid='");
	sm_buf_esc(b, it->contact, strlen(it->contact));
	sm_buf_str(b, "'");
	if (it->name && it->name[0]) {
		sm_buf_str(b, " name='");
		sm_buf_esc(b, it->name, strlen(it->name));
		sm_buf_str(b, "'");
	}
	sm_buf_fmt(b, " subscription='%s'/>", sm_sub_str(it->sub));
}

static void iq_roster_get(struct route_ctx *c)
{
	struct sm_user *u = c->s->user;
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->s->full);

	sm_buf_str(b, "><query xmlns='" NS_ROSTER "'>");
	for (size_t i = 0; i < u->nroster; i++)
		roster_item_xml(b, &u->roster[i]);
	sm_buf_str(b, "</query></iq>");
	c->s->roster_requested = true;
	reply_send(c, "result", NS_ROSTER);
}

static void iq_disco_info(struct route_ctx *c)
{
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->s->full);

	sm_buf_str(b, "><query xmlns='" NS_DISCO_INFO "'>");
	if (c->to.has_local)   /* the account itself (XEP-0030 §3.1 on a bare JID) */
		sm_buf_str(b, "<identity category='account' type='registered'/>"
			      "<identity category='pubsub' type='pep'/>");   /* XEP-0163 §6 */
	else
		sm_buf_str(b, "<identity category='server' type='im' name='xedge'/>");
	sm_buf_str(b, "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
		      "<feature var='" NS_PING "'/>");
	if (!c->to.has_local)
		sm_buf_str(b, "<feature var='" NS_ROSTER "'/>");
	sm_iq_features(b, c->to.has_local ? SM_IQ_OWN | SM_IQ_OTHER : SM_IQ_SERVER);
	sm_buf_str(b, "</query></iq>");
	reply_send(c, "result", NS_DISCO_INFO);
}

static void iq_disco_items(struct route_ctx *c)
{
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->s->full);

	sm_buf_str(b, "><query xmlns='" NS_DISCO_ITEMS "'/></iq>");
	reply_send(c, "result", NS_DISCO_ITEMS);
}

static bool xs_is(struct xs_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* An iq the server answers itself (RFC 6120 §10.3.3, RFC 6121 §2). */
static void iq_server(struct route_ctx *c)
{
	const struct wire_msg *m = c->m;
	struct xs_stanza st;
	bool get = c->type == RT_GET;

	if (c->type == RT_RESULT || c->type == RT_ERROR) {
		sm_pep_iq_answer(c->sm, c->s, m);   /* answers to its disco#info queries */
		return;     /* or to our roster pushes, or noise */
	}
	/* Addressed to us: now the XML is ours to read.  RFC 6120 §8.2.3: a
	 * get or set carries exactly one child. */
	if (xmlstage_stanza(c->sm->xs, "", 0, (const char *)m->u.stanza.raw.p, m->u.stanza.raw.len,
			    &st) != XMLSTAGE_OK || st.children != 1) {
		reply_error(c, "bad-request");
		return;
	}
	if (get && xs_is(st.child_ns, NS_ROSTER) && xs_is(st.child_local, "query")) {
		if (c->to.present && !c->to.has_local)
			reply_error(c, "service-unavailable");  /* rosters live on accounts */
		else
			iq_roster_get(c);
	} else if (get && xs_is(st.child_ns, NS_PING) && xs_is(st.child_local, "ping")) {
		iq_result_empty(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_INFO) && xs_is(st.child_local, "query")) {
		iq_disco_info(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_ITEMS) && xs_is(st.child_local, "query")) {
		iq_disco_items(c);
	} else if (!get && xs_is(st.child_ns, NS_SESSION) && xs_is(st.child_local, "session")) {
		iq_result_empty(c);     /* RFC 3921 session establishment: a no-op */
	} else if (!sm_iq_dispatch(c->sm, c->s, m, c->to.present && !c->to.has_local ? SM_IQ_SERVER
				   : SM_IQ_OWN, c->to.present && !c->to.has_local ? ""
				   : c->s->bare)) {
		reply_error(c, "service-unavailable");
	}
}

static void route_iq(struct route_ctx *c)
{
	struct route_to *to = &c->to;
	bool request = c->type == RT_GET || c->type == RT_SET;
	struct sm_session *t;

	if (c->type == RT_OTHER || c->type == RT_NONE) {
		reply_error(c, "bad-request");
		return;
	}
	if (!to->present ||
	    (to->valid && to->served && !to->has_local && !to->has_resource) ||
	    (to->valid && to->has_local && !to->has_resource && to->bare_len == c->s->bare_len &&
	     memcmp(to->bare, c->s->bare, to->bare_len) == 0)) {
		iq_server(c);
		return;
	}
	if (to->valid && to->has_resource && to->served) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			forward(c, t);
			return;
		}
	}
	/* RFC 6121 §8.5.2.1.3: a request to another local account's bare JID
	 * is the server's to answer on its behalf. */
	if (request && to->valid && to->served && to->has_local && !to->has_resource &&
	    sm_iq_dispatch(c->sm, c->s, c->m, SM_IQ_OTHER, to->bare))
		return;
	if (!request)
		return;     /* an undeliverable result or error is dropped */
	if (!to->valid)
		reply_error(c, "jid-malformed");
	else if (!to->served)
		reply_error(c, "remote-server-not-found");   /* no s2s yet */
	else
		reply_error(c, "service-unavailable");
}

/* ---- entry points ------------------------------------------------------ */

void sm_route_stanza(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	struct route_ctx c = { .sm = sm, .s = s, .m = m, .kind = m->u.stanza.kind,
			       .from = s->full, .from_len = s->full_len,
			       .from_bare_len = s->bare_len };

	if (c.kind != WIRE_KIND_MESSAGE && c.kind != WIRE_KIND_PRESENCE && c.kind != WIRE_KIND_IQ) {
		log_warn("stanza of unknown kind dropped", "link=%u sid=%llu kind=%u", s->link->id,
			 (unsigned long long)s->sid, c.kind);
		return;
	}
	memcpy(c.from_bare, s->bare, s->bare_len + 1);
	c.type = type_parse(c.kind, m->u.stanza.type);
	to_parse(sm, m->u.stanza.to, &c.to);
	switch (c.kind) {
	case WIRE_KIND_MESSAGE:
		route_message(&c);
		break;
	case WIRE_KIND_PRESENCE:
		route_presence(&c);
		break;
	default:
		route_iq(&c);
		break;
	}
}

void sm_route_replay(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct route_ctx c = { .sm = sm, .m = m, .kind = m->u.stanza.kind, .from = from,
			       .from_len = from_len };
	const char *slash = memchr(from, '/', from_len);

	c.from_bare_len = slash ? (size_t)(slash - from) : from_len;
	if (c.from_bare_len > JID_MAX)
		return;
	memcpy(c.from_bare, from, c.from_bare_len);
	c.from_bare[c.from_bare_len] = '\0';
	c.type = type_parse(c.kind, m->u.stanza.type);
	to_parse(sm, m->u.stanza.to, &c.to);
	/* Only messages are parked today (to an account with no available
	 * resource): their target's half is all there is. */
	if (c.kind == WIRE_KIND_MESSAGE && c.to.valid && c.to.has_local)
		message_bare(&c, c.to.bare, c.to.bare_len);
}

void sm_route_bounce(struct sm *sm, const char *to, int kind, const char *id, const char *from,
		     const char *cond)
{
	struct sm_session *t = sm_session_find(sm, to, strlen(to));
	struct sm_buf *b;

	if (!t)
		return;
	b = build_start(sm, kind, "error", sm_ws(id), sm_ws(from), to);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   error_type(cond), cond, kind_name(kind));
	if (b->err)
		return;
	sm_deliver(sm, t, kind, sm_ws("error"), sm_ws(to), sm_ws(from), sm_ws(id), sm_ws(""),
		   sm_buf_data(b), sm_buf_used(b));
}

void sm_route_gone(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;
	struct sm_buf *b = &sm->scratch;
	struct wire_str type = sm_ws("unavailable"), id = sm_ws("");

	if (!s->available || !u)
		return;
	s->available = false;
	/* One stanza per recipient account: `to` differs, so build each time. */
	for (size_t i = 0; i <= u->nroster; i++) {
		struct sm_user *cu;

		if (i < u->nroster) {
			struct sm_roster_item *it = &u->roster[i];

			if (!(it->sub & SM_SUB_FROM) || strcmp(it->contact, u->bare) == 0)
				continue;
			cu = sm_user_find(sm, it->contact, strlen(it->contact));
		} else {
			cu = u;     /* the user's own other resources */
		}
		if (!cu)
			continue;
		sm_buf_clear(b);
		sm_buf_str(b, "<presence type='unavailable' from='");
		sm_buf_esc(b, s->full, s->full_len);
		sm_buf_str(b, "' to='");
		sm_buf_esc(b, cu->bare, cu->bare_len);
		sm_buf_str(b, "'/>");
		if (b->err)
			continue;
		for (struct sm_session *t = cu->shead; t; t = t->unext)
			if (t->available && t != s)
				sm_deliver(sm, t, WIRE_KIND_PRESENCE, type, sm_ws(cu->bare),
					   sm_ws(s->full), id, sm_ws(""), sm_buf_data(b),
					   sm_buf_used(b));
	}
}

void sm_route_roster_push(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it,
			  bool removed)
{
	struct sm_buf *b = &sm->scratch;

	for (struct sm_session *t = u->shead; t; t = t->unext) {
		char id[32];

		if (!t->roster_requested)
			continue;
		snprintf(id, sizeof(id), "push%llu", (unsigned long long)++sm->push_seq);
		sm_buf_clear(b);
		sm_buf_fmt(b, "<iq type='set' id='%s' to='", id);
		sm_buf_esc(b, t->full, t->full_len);
		sm_buf_str(b, "'><query xmlns='" NS_ROSTER "'>");
		if (removed) {
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, it->contact, strlen(it->contact));
			sm_buf_str(b, "' subscription='remove'/>");
		} else {
			roster_item_xml(b, it);
		}
		sm_buf_str(b, "</query></iq>");
		if (b->err)
			return;
		sm_deliver(sm, t, WIRE_KIND_IQ, sm_ws("set"), sm_ws(t->full), sm_ws(""), sm_ws(id),
			   sm_ws(NS_ROSTER), sm_buf_data(b), sm_buf_used(b));
	}
}
