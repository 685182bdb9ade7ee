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
 *             own available resources); the initial one also brings the
 *             contacts' presence (probes answered locally), the pending
 *             subscription requests and the offline messages.  With a `to`:
 *             directed, delivered to the full JID or all available resources
 *             of a bare JID, and remembered when the target is not in the
 *             from/both set so it hears the unavailable (§4.6.3).
 *   subscriptions (RFC 6121 §3) run sm_sub_apply() twice: the user's half
 *             (its row, push, stamped with its bare JID) and the contact's
 *             inbound half (the contact's row, possibly loaded from storage
 *             with the stanza parked meanwhile; replays run only that half).
 *             Probes are answered from the contact's state (§4.3.2).
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
 * Send presence raw (from full JID `from`) to every available session of u,
 * with `to` set to u's bare JID.  rewrite() is done once per recipient account.
 */
static void presence_to_user(struct sm *sm, const char *from, struct sm_user *u, int kind,
			     struct wire_str type, struct wire_str id, const void *raw, size_t len)
{
	bool built = false;

	for (struct sm_session *t = u->shead; t; t = t->unext) {
		if (!t->available)
			continue;
		if (!built) {
			if (!rewrite(sm, raw, len, u->bare, NULL)) {
				log_warn("presence not rewritable", "jid=\"%s\"", from);
				return;
			}
			built = true;
		}
		sm_deliver(sm, t, kind, type, sm_ws(u->bare), sm_ws(from), id, sm_ws(""),
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
			presence_to_user(sm, s->full, cu, WIRE_KIND_PRESENCE, type, id, raw, len);
	}
	presence_to_user(sm, s->full, u, WIRE_KIND_PRESENCE, type, id, raw, len);
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

/* §3.1.3 4: the subscription requests the user has not answered go to each
 * resource at its initial presence. */
static void presence_pending_in(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;

	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];

		if (it->pending_in)
			sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws("subscribe"), sm_ws(u->bare),
				   sm_ws(it->contact), sm_ws(""), sm_ws(""), it->pending_in,
				   it->pending_in_len);
	}
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

/* Unavailable presence from the full JID `from` to the JID `to` (bare or
 * full, canonical), delivered if it is online here. */
static void unavailable_send(struct sm *sm, const char *from, const char *to)
{
	struct sm_buf *b = &sm->scratch;
	const char *slash = strchr(to, '/');
	struct sm_session *t;
	struct sm_user *cu;

	sm_buf_clear(b);
	sm_buf_str(b, "<presence type='unavailable' from='");
	sm_buf_esc(b, from, strlen(from));
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, strlen(to));
	sm_buf_str(b, "'/>");
	if (b->err)
		return;
	if (slash) {
		t = sm_session_find(sm, to, strlen(to));
		if (t)
			sm_deliver(sm, t, WIRE_KIND_PRESENCE, sm_ws("unavailable"), sm_ws(to),
				   sm_ws(from), sm_ws(""), sm_ws(""), sm_buf_data(b),
				   sm_buf_used(b));
		return;
	}
	cu = sm_user_find(sm, to, strlen(to));
	for (t = cu ? cu->shead : NULL; t; t = t->unext)
		if (t->available)
			sm_deliver(sm, t, WIRE_KIND_PRESENCE, sm_ws("unavailable"), sm_ws(to),
				   sm_ws(from), sm_ws(""), sm_ws(""), sm_buf_data(b),
				   sm_buf_used(b));
}

void sm_route_directed_clear(struct sm_session *s)
{
	for (unsigned i = 0; i < s->ndirected; i++)
		free(s->directed[i]);
	free(s->directed);
	s->directed = NULL;
	s->ndirected = 0;
}

/* §4.6.3: s becomes unavailable: everyone it sent directed presence to hears it. */
static void directed_unavailable(struct sm *sm, struct sm_session *s)
{
	for (unsigned i = 0; i < s->ndirected; i++)
		unavailable_send(sm, s->full, s->directed[i]);
	sm_route_directed_clear(s);
}

static int directed_find(const struct sm_session *s, const char *jid)
{
	for (unsigned i = 0; i < s->ndirected; i++)
		if (strcmp(s->directed[i], jid) == 0)
			return (int)i;
	return -1;
}

/* Remember (available) or forget (unavailable) a directed presence of s to
 * jid, unless jid's account already gets s's broadcasts (§4.6.2). */
static void directed_note(struct sm_session *s, const struct route_to *to, bool available)
{
	struct sm_roster_item *it = sm_roster_find(s->user, to->bare);
	int i = directed_find(s, to->full);
	char **d;

	if (!available) {
		if (i >= 0) {
			free(s->directed[i]);
			s->directed[i] = s->directed[--s->ndirected];
		}
		return;
	}
	if (i >= 0 || (it && (it->sub & SM_SUB_FROM)) || !s->available)
		return;
	if (s->ndirected >= SM_MAX_DIRECTED) {
		log_warn("too many directed presences remembered", "jid=\"%s\"", s->full);
		return;
	}
	d = realloc(s->directed, (s->ndirected + 1) * sizeof(*d));
	if (!d)
		return;
	s->directed = d;
	d[s->ndirected] = strdup(to->full);
	if (d[s->ndirected])
		s->ndirected++;
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
		directed_unavailable(sm, s);
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
	if (!initial)
		return;
	presence_probe_all(sm, s);
	presence_pending_in(sm, s);
	/* RFC 6121 §8.5.2.2.2: stored messages go to the first resource that
	 * becomes available with a non-negative priority. */
	if (prio >= 0)
		sm_offline_deliver(sm, s);
}

/* Presence built here: `<presence type='T' from='F' to='T'/>` as a frame. */
struct built {
	struct wire_msg m;
	char raw[2 * (3 * JID_MAX + 64)];
};

static bool build_presence(struct built *p, const char *type, const char *from, const char *to)
{
	char f[6 * JID_MAX + 8], t[6 * JID_MAX + 8];
	int n;

	f[xml_escape(from, strlen(from), f, sizeof(f) - 1)] = '\0';
	t[xml_escape(to, strlen(to), t, sizeof(t) - 1)] = '\0';
	n = snprintf(p->raw, sizeof(p->raw), "<presence type='%s' from='%s' to='%s'/>", type, f, t);
	if (n < 0 || (size_t)n >= sizeof(p->raw))
		return false;
	memset(&p->m, 0, sizeof(p->m));
	p->m.type = WIRE_STANZA;
	p->m.u.stanza.kind = WIRE_KIND_PRESENCE;
	p->m.u.stanza.type = sm_ws(type);
	p->m.u.stanza.from = sm_ws(from);
	p->m.u.stanza.to = sm_ws(to);
	p->m.u.stanza.id = sm_ws("");
	p->m.u.stanza.ns = sm_ws("");
	p->m.u.stanza.raw = wire_s(p->raw, (size_t)n);
	return true;
}

static void sub_in(struct route_ctx *c);
static void probe_in(struct route_ctx *c);

/* Hand a stanza from the bare JID `from` to a local account's inbound half. */
static void inbound(struct sm *sm, const char *from, const struct wire_msg *m)
{
	struct route_ctx c = { .sm = sm, .m = m, .kind = WIRE_KIND_PRESENCE, .from = from,
			       .from_len = strlen(from) };

	if (c.from_len > JID_MAX)
		return;
	memcpy(c.from_bare, from, c.from_len + 1);
	c.from_bare_len = c.from_len;
	c.type = type_parse(c.kind, m->u.stanza.type);
	to_parse(sm, m->u.stanza.to, &c.to);
	if (!c.to.valid || !c.to.served || !c.to.has_local)
		return;     /* no s2s: another server's contacts hear nothing */
	if (c.type == RT_PROBE)
		probe_in(&c);
	else
		sub_in(&c);
}

void sm_route_sub_send(struct sm *sm, struct sm_user *u, const char *contact, const char *type)
{
	struct built p;

	if (build_presence(&p, type, u->bare, contact))
		inbound(sm, u->bare, &p.m);
}

void sm_route_unavailable_to(struct sm *sm, struct sm_user *u, const char *contact)
{
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t->available)
			unavailable_send(sm, t->full, contact);
}

/* §3.1.5: the contact now sees u: each available resource's presence. */
static void presence_after(struct sm *sm, struct sm_user *u, const char *contact)
{
	struct sm_user *cu = sm_user_find(sm, contact, strlen(contact));

	if (!cu)
		return;
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t->available && t->presence)
			presence_to_user(sm, t->full, cu, WIRE_KIND_PRESENCE, sm_ws(""), sm_ws(""),
					 t->presence, t->presence_len);
}

static int sub_event(int type, bool out)
{
	switch (type) {
	case RT_SUBSCRIBE:
		return out ? SM_SUB_OUT_SUBSCRIBE : SM_SUB_IN_SUBSCRIBE;
	case RT_SUBSCRIBED:
		return out ? SM_SUB_OUT_SUBSCRIBED : SM_SUB_IN_SUBSCRIBED;
	case RT_UNSUBSCRIBE:
		return out ? SM_SUB_OUT_UNSUBSCRIBE : SM_SUB_IN_UNSUBSCRIBE;
	default:
		return out ? SM_SUB_OUT_UNSUBSCRIBED : SM_SUB_IN_UNSUBSCRIBED;
	}
}

/*
 * The contact's half (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3): c->to is the
 * local account the subscription stanza is for, c->from_bare who sent it.
 * The account may be offline: its record is loaded, the stanza parked and
 * replayed here meanwhile.
 */
static void sub_in(struct route_ctx *c)
{
	struct sm *sm = c->sm;
	const char *from = c->from_bare;
	struct sm_roster_item *it;
	struct sm_sub_state cur;
	struct sm_sub_result res;
	struct sm_user *u;
	char *raw;
	size_t len;

	if (strcmp(c->to.bare, from) == 0)
		return;     /* one's own presence needs no subscription */
	u = sm_user_need(sm, c->to.bare, c->to.bare_len, c->from, c->from_len, c->m);
	if (!u)
		return;
	if (!u->exists) {
		/* §8.5.1: no such account: a request is refused, the rest ignored. */
		if (c->type == RT_SUBSCRIBE) {
			struct built p;

			if (build_presence(&p, "unsubscribed", c->to.bare, from))
				inbound(sm, c->to.bare, &p.m);
		}
		sm_user_release(sm, u);
		return;
	}
	/* The stanza as the account's clients see it: to its bare JID, from
	 * the sender's bare JID (§3.1.2). */
	if (!rewrite(sm, c->m->u.stanza.raw.p, c->m->u.stanza.raw.len, u->bare, from)) {
		sm_user_release(sm, u);
		return;
	}
	len = sm_buf_used(&sm->scratch);
	raw = malloc(len + 1);
	if (!raw) {
		sm_user_release(sm, u);
		return;
	}
	memcpy(raw, sm_buf_data(&sm->scratch), len);
	raw[len] = '\0';
	u->refs++;
	it = sm_roster_find(u, from);
	cur = sm_roster_state(it);
	if (sm_sub_apply(&cur, sub_event(c->type, false), &res) < 0) {
		log_warn("roster row in no subscription state", "user=\"%s\" contact=\"%s\"",
			 u->bare, from);
		goto out;
	}
	if (res.forward)
		for (struct sm_session *t = u->shead; t; t = t->unext)
			if (t->available)
				sm_deliver(sm, t, WIRE_KIND_PRESENCE, c->m->u.stanza.type,
					   sm_ws(u->bare), sm_ws(from), c->m->u.stanza.id,
					   c->m->u.stanza.ns, raw, len);
	if (res.unavailable_after)
		sm_route_unavailable_to(sm, u, from);
	if (res.changed) {
		if (!it)
			it = sm_roster_add(u, from);
		if (!it) {
			log_warn("roster full or out of memory", "user=\"%s\"", u->bare);
			goto out;
		}
		if (res.keep_request && len <= SM_PENDING_IN_MAX) {
			free(it->pending_in);
			it->pending_in = raw;
			it->pending_in_len = len;
			raw = NULL;
		} else if (res.keep_request) {
			res.next.pending_in = false;   /* too large to keep: delivered once */
		}
		sm_roster_state_set(it, &res.next);
		if (res.push)
			sm_roster_push(sm, u, it, !it->listed);
		sm_roster_save(sm, u, it);
	}
	if (res.auto_reply_subscribed)
		sm_route_sub_send(sm, u, from, "subscribed");
	if (res.auto_reply_unsubscribed)
		sm_route_sub_send(sm, u, from, "unsubscribed");
	if (res.presence_after)
		presence_after(sm, u, from);
out:
	free(raw);
	u->refs--;
	sm_user_release(sm, u);
}

/* The user's half (§3.1.2, §3.2.2, §3.3.2, §3.4): s sends a subscription
 * stanza to the contact c->to. */
static void sub_out(struct route_ctx *c)
{
	struct sm *sm = c->sm;
	struct sm_user *u = c->s->user;
	char contact[JID_MAX + 1];
	struct sm_roster_item *it;
	struct sm_sub_state cur;
	struct sm_sub_result res;
	struct wire_msg m2;

	memcpy(contact, c->to.bare, c->to.bare_len + 1);
	if (strcmp(contact, u->bare) == 0)
		return;
	it = sm_roster_find(u, contact);
	cur = sm_roster_state(it);
	if (sm_sub_apply(&cur, sub_event(c->type, true), &res) < 0) {
		log_warn("roster row in no subscription state", "user=\"%s\" contact=\"%s\"",
			 u->bare, contact);
		return;
	}
	/* The user's row first: the contact's server may answer at once. */
	if (res.changed) {
		if (!it)
			it = sm_roster_add(u, contact);
		if (!it) {
			log_warn("roster full or out of memory", "user=\"%s\"", u->bare);
			return;
		}
		sm_roster_state_set(it, &res.next);
		if (res.push)
			sm_roster_push(sm, u, it, !it->listed);
		sm_roster_save(sm, u, it);
	}
	if (res.unavailable_after)
		sm_route_unavailable_to(sm, u, contact);   /* before the "unsubscribed" */
	if (res.forward) {
		/* §3.1.2: stamped with the user's bare JID, to the contact's. */
		if (!rewrite(sm, c->m->u.stanza.raw.p, c->m->u.stanza.raw.len, contact, u->bare))
			return;
		m2 = *c->m;
		m2.u.stanza.to = sm_ws(contact);
		m2.u.stanza.from = sm_ws(u->bare);
		m2.u.stanza.raw = wire_s(sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
		{
			/* scratch is reused on the way: hand over a copy */
			size_t n = m2.u.stanza.raw.len;
			char *copy = malloc(n ? n : 1);

			if (!copy)
				return;
			memcpy(copy, m2.u.stanza.raw.p, n);
			m2.u.stanza.raw = wire_s(copy, n);
			inbound(sm, u->bare, &m2);
			free(copy);
		}
	}
	if (res.presence_after)
		presence_after(sm, u, contact);
}

/*
 * A probe for the presence of the local account c->to from c->from_bare
 * (RFC 6121 §4.3.2): answered from the account's sessions if the prober is
 * subscribed (from/both), with "unsubscribed" if it is not, "unavailable"
 * when the account has no available resource.
 */
static void probe_in(struct route_ctx *c)
{
	struct sm *sm = c->sm;
	struct sm_session *s = c->s ? c->s : sm_session_find(sm, c->from, c->from_len);
	struct sm_roster_item *it;
	struct sm_user *u;
	unsigned n = 0;
	struct built p;

	u = sm_user_need(sm, c->to.bare, c->to.bare_len, c->from, c->from_len, c->m);
	if (!u)
		return;
	if (!s || !u->exists) {
		sm_user_release(sm, u);   /* prober gone, or §8.5.1: ignored */
		return;
	}
	it = sm_roster_find(u, c->from_bare);
	if (strcmp(u->bare, c->from_bare) != 0 && (!it || !(it->sub & SM_SUB_FROM))) {
		/* not subscribed: no presence leaks; the prober learns it is not */
		if (build_presence(&p, "unsubscribed", u->bare, s->full))
			sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws("unsubscribed"), sm_ws(s->full),
				   sm_ws(u->bare), sm_ws(""), sm_ws(""), p.raw,
				   p.m.u.stanza.raw.len);
		sm_user_release(sm, u);
		return;
	}
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t != s && t->available) {
			presence_relay(sm, t, s);
			n++;
		}
	if (!n && strcmp(u->bare, c->from_bare) != 0 &&
	    build_presence(&p, "unavailable", u->bare, s->full))
		sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws("unavailable"), sm_ws(s->full),
			   sm_ws(u->bare), sm_ws(""), sm_ws(""), p.raw, p.m.u.stanza.raw.len);
	sm_user_release(sm, u);
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
	if (to->valid && to->has_local && (c->type == RT_SUBSCRIBE || c->type == RT_SUBSCRIBED ||
					   c->type == RT_UNSUBSCRIBE || c->type == RT_UNSUBSCRIBED)) {
		/* The user's row changes whoever the contact is; the stanza
		 * reaches local contacts only (no s2s). */
		sub_out(c);
		return;
	}
	/* Presence to a bad address, another server or the server itself has
	 * nobody to go to; presence is not answered with errors. */
	if (!to->valid || !to->served || !to->has_local || c->type == RT_OTHER)
		return;
	switch (c->type) {
	case RT_PROBE:
		probe_in(c);
		return;
	default:
		/* Directed presence (available, unavailable, error), §4.6. */
		if (c->type == RT_NONE || c->type == RT_UNAVAILABLE)
			directed_note(c->s, to, c->type == RT_NONE);
		if (to->has_resource) {
			t = sm_session_find(sm, to->full, to->full_len);
			if (t)
				forward(c, t);
		} else {
			u = sm_user_find(sm, to->bare, to->bare_len);
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

static void iq_disco_info(struct route_ctx *c)
{
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->s->full);

	sm_buf_str(b, "><query xmlns='" NS_DISCO_INFO "'>");
	if (c->to.has_local)   /* the account itself (XEP-0030 §3.1 on a bare JID) */
		sm_buf_str(b, "<identity category='account' type='registered'/>");
	else
		sm_buf_str(b, "<identity category='server' type='im' name='xedge'/>");
	sm_buf_str(b, "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
		      "<feature var='" NS_PING "'/>");
	if (!c->to.has_local)
		sm_buf_str(b, "<feature var='" NS_ROSTER "'/>");
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

	if (c->type == RT_RESULT || c->type == RT_ERROR)
		return;     /* answers to our roster pushes, or noise */
	/* Addressed to us: now the XML is ours to read.  RFC 6120 §8.2.3: a
	 * get or set carries exactly one child. */
	if (xmlstage_stanza(c->sm->xs, "", 0, (const char *)m->u.stanza.raw.p, m->u.stanza.raw.len,
			    &st) != XMLSTAGE_OK || st.children != 1) {
		reply_error(c, "bad-request");
		return;
	}
	if (xs_is(st.child_ns, NS_ROSTER) && xs_is(st.child_local, "query")) {
		if (c->to.present && !c->to.has_local)
			reply_error(c, "service-unavailable");  /* rosters live on accounts */
		else
			sm_roster_iq(c->sm, c->s, m, get);
	} else if (get && xs_is(st.child_ns, NS_PING) && xs_is(st.child_local, "ping")) {
		iq_result_empty(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_INFO) && xs_is(st.child_local, "query")) {
		iq_disco_info(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_ITEMS) && xs_is(st.child_local, "query")) {
		iq_disco_items(c);
	} else if (!get && xs_is(st.child_ns, NS_SESSION) && xs_is(st.child_local, "session")) {
		iq_result_empty(c);     /* RFC 3921 session establishment: a no-op */
	} else {
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
	if (!request)
		return;     /* an undeliverable result or error is dropped */
	if (to->valid && to->served && to->has_local && !to->has_resource &&
	    ws_eq(c->m->u.stanza.ns, NS_ROSTER)) {
		/* RFC 6121 §2.1.5, §2.3.3: only the account itself reads or
		 * changes its roster. */
		reply_error(c, "forbidden");
		return;
	}
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
	/* Parked are messages to an account with no available resource,
	 * subscription presence and probes for an account that was not in
	 * memory: only the target's (inbound) half runs again. */
	if (!c.to.valid || !c.to.has_local)
		return;
	if (c.kind == WIRE_KIND_MESSAGE) {
		message_bare(&c, c.to.bare, c.to.bare_len);
	} else if (c.kind == WIRE_KIND_PRESENCE) {
		if (c.type == RT_PROBE)
			probe_in(&c);
		else if (c.type == RT_SUBSCRIBE || c.type == RT_SUBSCRIBED ||
			 c.type == RT_UNSUBSCRIBE || c.type == RT_UNSUBSCRIBED)
			sub_in(&c);
	}
}

void sm_route_error(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		    const char *cond)
{
	struct route_ctx c = { .sm = sm, .s = s, .m = m, .kind = m->u.stanza.kind,
			       .from = s->full, .from_len = s->full_len };

	c.type = type_parse(c.kind, m->u.stanza.type);
	reply_error(&c, cond);
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
	directed_unavailable(sm, s);
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
