/*
 * sm_route — where a client's stanza goes (RFC 6120 §8, §10; RFC 6121).
 *
 * Input: a STANZA frame from a bound session.  The edge has stamped `from`
 * with the session's full JID and decoded the routing attributes; the sm
 * routes on that header and forwards the raw bytes untouched, except that
 * presence broadcasts get their `to` set per recipient (xmltag_rewrite) and
 * subscription presence gets the sender's bare JID as `from`.  XML is parsed
 * only where the server itself must look inside: presence priority, stanzas
 * addressed to the server, offline storage, and messages that are archived
 * (XEP-0313) or copied (XEP-0280) for the accounts that use them.  The helpers
 * declared in sm_int.h (sm_route_rewrite, sm_route_forward, ...) serve
 * sm/presence.c too.
 *
 * A `to` on a domain we do not serve goes to sm_remote_send() (sm/remote.c:
 * a component or a remote server through an edge link, or an error to the
 * sender).  Stanzas from external entities, and stanzas parked while their
 * target's record loaded, take the inbound half only (sm_route_replay());
 * answers to an external sender go back out through sm_remote_send().
 * A service's stanzas (sm_route_from_service()) take that half too; the
 * copies of a fan-out to sessions of this shard take a direct path with the
 * same rules (sm_route_service_copy()).
 *
 * Rules in brief:
 *   message   full JID online -> that session.  Bare JID (or full JID not
 *             online, chat/normal) -> the available resource with the highest
 *             non-negative priority; headline -> all of them; none available
 *             -> offline storage (chat/normal), delivered at the next initial
 *             presence.  groupchat to a bare JID -> service-unavailable;
 *             errors are never answered.  No `to` = the sender's bare JID.
 *   presence  sm/presence.c (broadcast, directed, probes, subscriptions).
 *   iq        full JID online -> routed; no `to`, the domain or the sender's
 *             own bare JID -> the server answers (roster via sm/roster.c,
 *             ping, disco, session); a roster query to another account's bare
 *             JID -> forbidden; other get/set -> service-unavailable;
 *             undeliverable result/error -> dropped.  From an external
 *             entity: the domain answers what needs no session of ours
 *             (disco, ping, version); roster, session, carbons ->
 *             service-unavailable.
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

int sm_route_type_parse(int kind, struct wire_str t)
{
	static const struct { int kind; const char *name; int type; } types[] = {
		{ WIRE_KIND_MESSAGE, "normal", SM_RT_NORMAL },
		{ WIRE_KIND_MESSAGE, "chat", SM_RT_CHAT },
		{ WIRE_KIND_MESSAGE, "groupchat", SM_RT_GROUPCHAT },
		{ WIRE_KIND_MESSAGE, "headline", SM_RT_HEADLINE },
		{ WIRE_KIND_PRESENCE, "unavailable", SM_RT_UNAVAILABLE },
		{ WIRE_KIND_PRESENCE, "subscribe", SM_RT_SUBSCRIBE },
		{ WIRE_KIND_PRESENCE, "subscribed", SM_RT_SUBSCRIBED },
		{ WIRE_KIND_PRESENCE, "unsubscribe", SM_RT_UNSUBSCRIBE },
		{ WIRE_KIND_PRESENCE, "unsubscribed", SM_RT_UNSUBSCRIBED },
		{ WIRE_KIND_PRESENCE, "probe", SM_RT_PROBE },
		{ WIRE_KIND_IQ, "get", SM_RT_GET },
		{ WIRE_KIND_IQ, "set", SM_RT_SET },
		{ WIRE_KIND_IQ, "result", SM_RT_RESULT },
	};

	if (t.len == 0)
		return SM_RT_NONE;
	if (sm_ws_is(t, "error"))
		return SM_RT_ERROR;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].kind == kind && sm_ws_is(t, types[i].name))
			return types[i].type;
	/* RFC 6121 §5.2.2: an unknown message type is handled as normal. */
	return kind == WIRE_KIND_MESSAGE ? SM_RT_NORMAL : SM_RT_OTHER;
}

void sm_route_to_parse(struct sm *sm, struct wire_str raw, struct sm_route_to *to)
{
	struct jid_view v;
	int n;

	/* Not memset: the two JID arrays are 6 KiB and this runs per stanza. */
	to->present = to->valid = to->has_local = to->has_resource = to->served = false;
	to->full[0] = to->bare[0] = '\0';
	to->full_len = to->bare_len = 0;
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
	/* An account another shard owns is reached like an external one. */
	if (to->served && to->has_local && !sm_owns(sm, to->bare, to->bare_len))
		to->served = false;
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
	sm_buf_fmt(b, "<%s type='%s'", sm_kind_name(kind), type);
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

/* Send what build_start() and the caller put in scratch to the sender: its
 * session, or out to it when it is an external entity. */
static void reply_send(struct sm_route_ctx *c, const char *type, const char *ns)
{
	struct sm *sm = c->sm;
	const struct wire_msg *m = c->m;
	struct sm_session *t;

	if (sm->scratch.err) {
		log_warn("reply too large to build", "jid=\"%s\" kind=%s", c->from,
			 sm_kind_name(c->kind));
		return;
	}
	if (c->remote) {
		struct wire_msg r = { .type = WIRE_ROUTE };

		r.u.stanza.kind = (uint8_t)c->kind;
		r.u.stanza.type = sm_ws(type);
		r.u.stanza.to = wire_s(c->from, c->from_len);
		r.u.stanza.from = m->u.stanza.to;
		r.u.stanza.id = m->u.stanza.id;
		r.u.stanza.ns = sm_ws(ns);
		r.u.stanza.raw = wire_s(sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
		sm_remote_send(sm, &r);
		return;
	}
	t = c->s ? c->s : sm_session_find(sm, c->from, c->from_len);
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
static void reply_error(struct sm_route_ctx *c, const char *cond)
{
	struct sm_buf *b;

	if (c->type == SM_RT_ERROR)
		return;
	STAT_INC(c->sm->stats.stanza_errors);
	b = build_start(c->sm, c->kind, "error", c->m->u.stanza.id, c->m->u.stanza.to, c->from);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   sm_error_type(cond), cond, sm_kind_name(c->kind));
	reply_send(c, "error", "");
	log_debug("stanza refused", "jid=\"%s\" kind=%s condition=%s", c->from,
		  sm_kind_name(c->kind), cond);
}

/*
 * Copy raw into scratch with `to` (and `from` when not NULL) set in its start
 * tag.  Returns false when raw has no start tag or memory ran out.
 */
bool sm_route_rewrite(struct sm *sm, const void *raw, size_t len, const char *to, const char *from)
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

/* Forward the stanza being routed, unchanged, to t.  Messages that would
 * be stored offline (normal, chat) are tracked until the edge has written
 * them: if t ends first they are stored for it (nothing accepted is lost). */
void sm_route_forward(struct sm_route_ctx *c, struct sm_session *t)
{
	const struct wire_msg *m = c->m;

	if (c->kind == WIRE_KIND_MESSAGE && (c->type == SM_RT_CHAT || c->type == SM_RT_NORMAL ||
					    c->type == SM_RT_NONE))
		sm_deliver_tracked(c->sm, t, c->kind, m->u.stanza.type, m->u.stanza.to,
				   m->u.stanza.from, m->u.stanza.id, m->u.stanza.ns,
				   m->u.stanza.raw.p, m->u.stanza.raw.len, 0);
	else
		sm_deliver(c->sm, t, c->kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
			   m->u.stanza.id, m->u.stanza.ns, m->u.stanza.raw.p, m->u.stanza.raw.len);
}

/* Forward to every available session of u; returns how many got it. */
unsigned sm_route_forward_available(struct sm_route_ctx *c, struct sm_user *u, int min_prio)
{
	unsigned n = 0;

	for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext) {
		if (t->available && t->priority >= min_prio) {
			sm_route_forward(c, t);
			n++;
		}
	}
	return n;
}

/* ---- message ----------------------------------------------------------- */

/* raw with an XEP-0203 delay stamp (from user's domain) inserted after its
 * start tag, in scratch; raw unchanged when it cannot be parsed. */
static struct sm_buf *stamp_delay(struct sm *sm, const char *user, const char *raw, size_t len)
{
	struct xs_stanza st;
	struct sm_buf *b = &sm->scratch;
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t at;

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
	return b;
}

/* Offline storage, delay-stamped; the storage thread tells the sender if it
 * refuses. */
static void message_store(struct sm_route_ctx *c, const char *user)
{
	const struct wire_msg *m = c->m;
	struct sm_buf *b = stamp_delay(c->sm, user, (const char *)m->u.stanza.raw.p,
				       m->u.stanza.raw.len);

	if (b->err || sm_offline_store(c->sm, user, c->from, c->kind, m->u.stanza.id,
				       m->u.stanza.to, sm_buf_data(b), sm_buf_used(b)) < 0)
		reply_error(c, "resource-constraint");
}

void sm_route_requeue(struct sm *sm, const char *user, const void *raw, size_t len)
{
	struct sm_buf *b;

	/* An XEP-0203 stamp already there (a stored message sent again) stays
	 * the only one: store such bytes as they are. */
	if (memmem(raw, len, NS_DELAY, sizeof(NS_DELAY) - 1))
		b = NULL;
	else
		b = stamp_delay(sm, user, raw, len);
	if ((b && b->err) ||
	    sm_offline_store(sm, user, "", WIRE_KIND_MESSAGE, sm_ws(""), sm_ws(""),
			     b ? sm_buf_data(b) : raw, b ? sm_buf_used(b) : len) < 0)
		log_warn("undelivered message lost: out of memory", "user=\"%s\"", user);
}

/* XEP-0313 archives chat and normal messages (sm/mam.c decides the rest). */
static bool message_archived(const struct sm_route_ctx *c)
{
	return c->type == SM_RT_CHAT || c->type == SM_RT_NORMAL || c->type == SM_RT_NONE;
}

/* Deliver the message to t, or store it offline (t NULL), for local account
 * bare; its archived copy is what goes, with the XEP-0359 stanza-id, and
 * t's other resources get their carbons (XEP-0280). */
static void message_deliver(struct sm_route_ctx *c, struct sm_session *t, const char *bare)
{
	const struct wire_msg *m = c->m;
	struct wire_msg mine;
	struct sm_mam_copy *a = NULL;

	if (message_archived(c))
		a = sm_mam_incoming(c->sm, bare, c->from, c->from_len, m, &mine);
	if (a)
		c->m = &mine;
	if (!t)
		message_store(c, bare);
	else if (!sm_carbons_received(c->sm, t, c->m))
		sm_route_forward(c, t);
	c->m = m;
	sm_mam_commit(c->sm, a);
}

/* RFC 6121 §8.5.2: a message to a local bare JID (or to a full JID that is
 * not online, handled as to the bare JID). */
static bool message_bare(struct sm_route_ctx *c, const char *bare, size_t bare_len)
{
	struct sm *sm = c->sm;
	struct sm_user *u;
	struct sm_session *best = NULL;
	bool ok = true;

	if (c->type == SM_RT_GROUPCHAT) {
		reply_error(c, "service-unavailable");
		return false;
	}
	if (c->type == SM_RT_ERROR)
		return false;
	u = sm_user_find(sm, bare, bare_len);
	if (c->type == SM_RT_HEADLINE)
		return sm_route_forward_available(c, u, 0) > 0;     /* none: silently ignored */
	for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext)
		if (t->available && t->priority >= 0 && (!best || t->priority > best->priority))
			best = t;
	if (best) {
		message_deliver(c, best, bare);
		return true;
	}
	/* Nobody available: whether the account exists, and where it goes, is
	 * in its record (parked here while it loads: taken as accepted). */
	u = sm_user_need(sm, bare, bare_len, c->from, c->from_len, c->m);
	if (!u)
		return true;
	if (!u->exists) {
		reply_error(c, "service-unavailable");
		ok = false;
	} else {
		message_deliver(c, NULL, bare);
	}
	sm_user_release(sm, u);
	return ok;
}

/* Route a message; true when it was accepted (delivered, stored, or waiting
 * for its target's record), false when refused or dropped. */
static bool route_message(struct sm_route_ctx *c)
{
	struct sm_route_to *to = &c->to;
	struct sm_session *t;

	if (!to->present) {
		/* RFC 6120 §10.3.1: no `to` means the sender's own bare JID. */
		return message_bare(c, c->from_bare, c->from_bare_len);
	}
	if (!to->valid) {
		reply_error(c, "jid-malformed");
		return false;
	}
	if (!to->served)
		return sm_remote_send(c->sm, c->m);         /* bounced when it cannot go */
	if (!to->has_local) {
		reply_error(c, "service-unavailable");      /* the server takes no messages */
		return false;
	}
	if (to->has_resource) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			message_deliver(c, t, to->bare);
			return true;
		}
		/* RFC 6121 §8.5.3.2.1: no such resource */
		if (c->type == SM_RT_HEADLINE || c->type == SM_RT_ERROR)
			return false;
	}
	return message_bare(c, to->bare, to->bare_len);
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

/* ---- iq ---------------------------------------------------------------- */

static void iq_result_empty(struct sm_route_ctx *c)
{
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->from);
	sm_buf_str(b, "/>");
	reply_send(c, "result", "");
}

static void iq_disco_info(struct sm_route_ctx *c)
{
	if (!c->to.has_local && sm_adhoc_disco(c->sm, c->s, c->from, c->m, false))
		return;     /* an ad-hoc command node (sm/adhoc.c) */
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->from);

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

/*
 * A get or set to another local account's bare JID (RFC 6121 §8.5.2.1.3:
 * the server answers on its behalf), from a local account or an external
 * entity: disco#info on the account (XEP-0030; clients look for PEP there)
 * and the iq services (vCard, PEP items).  Once the account's record says
 * it exists (parked meanwhile; its blocklist was checked on replay), an
 * unknown account or payload: service-unavailable.
 */
static void iq_other(struct sm_route_ctx *c)
{
	struct sm *sm = c->sm;
	struct sm_user *u = sm_user_need(sm, c->to.bare, c->to.bare_len, c->from, c->from_len,
					 c->m);
	struct sm_session *s;

	if (!u)
		return;     /* parked: replayed once loaded */
	s = c->s || c->remote ? c->s : sm_session_find(sm, c->from, c->from_len);
	if (!s && !c->remote)
		;           /* the requester left meanwhile */
	else if (!u->exists)
		reply_error(c, "service-unavailable");
	else if (c->type == SM_RT_GET && sm_ws_is(c->m->u.stanza.ns, NS_DISCO_INFO))
		iq_disco_info(c);
	else if (!sm_iq_dispatch(sm, s, c->from, c->m, SM_IQ_OTHER, u->bare))
		reply_error(c, "service-unavailable");
	sm_user_release(sm, u);
}

static void iq_disco_items(struct sm_route_ctx *c)
{
	if (!c->to.has_local && sm_adhoc_disco(c->sm, c->s, c->from, c->m, true))
		return;     /* the ad-hoc command list (sm/adhoc.c) */
	struct sm_buf *b = build_start(c->sm, WIRE_KIND_IQ, "result", c->m->u.stanza.id,
				       c->m->u.stanza.to, c->from);

	if (!c->to.has_local && (c->sm->muc || c->sm->pubsub || c->sm->upload)) {
		/* The services on the domain (XEP-0030 §4). */
		sm_buf_str(b, "><query xmlns='" NS_DISCO_ITEMS "'>");
		sm_muc_disco_item(c->sm, b);
		sm_pubsub_disco_item(c->sm, b);
		sm_upload_disco_item(c->sm, b);
		sm_buf_str(b, "</query></iq>");
	} else {
		sm_buf_str(b, "><query xmlns='" NS_DISCO_ITEMS "'/></iq>");
	}
	reply_send(c, "result", NS_DISCO_ITEMS);
}

static bool xs_is(struct xs_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* An iq the server answers itself (RFC 6120 §10.3.3, RFC 6121 §2).  From
 * an external entity (c->s NULL) it is addressed to the domain: what needs
 * a session of ours (roster, session, carbons) is service-unavailable. */
static void iq_server(struct sm_route_ctx *c)
{
	const struct wire_msg *m = c->m;
	struct xs_stanza st;
	bool get = c->type == SM_RT_GET;
	bool server = c->to.present && !c->to.has_local;

	if (c->type == SM_RT_RESULT || c->type == SM_RT_ERROR) {
		if (c->s)
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
	if (xs_is(st.child_ns, NS_ROSTER) && xs_is(st.child_local, "query")) {
		if (server || !c->s)
			reply_error(c, "service-unavailable");  /* rosters live on accounts */
		else
			sm_roster_iq(c->sm, c->s, m, get);
	} else if (get && xs_is(st.child_ns, NS_PING) && xs_is(st.child_local, "ping")) {
		iq_result_empty(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_INFO) && xs_is(st.child_local, "query")) {
		iq_disco_info(c);
	} else if (get && xs_is(st.child_ns, NS_DISCO_ITEMS) && xs_is(st.child_local, "query")) {
		iq_disco_items(c);
	} else if (!get && c->s && xs_is(st.child_ns, NS_SESSION) &&
		   xs_is(st.child_local, "session")) {
		iq_result_empty(c);     /* RFC 3921 session establishment: a no-op */
	} else if (!sm_iq_dispatch(c->sm, c->s, c->from, m, server ? SM_IQ_SERVER : SM_IQ_OWN,
				   server ? "" : c->from_bare)) {
		reply_error(c, "service-unavailable");
	}
}

static void route_iq(struct sm_route_ctx *c)
{
	struct sm_route_to *to = &c->to;
	bool request = c->type == SM_RT_GET || c->type == SM_RT_SET;
	struct sm_session *t;

	if (c->type == SM_RT_OTHER || c->type == SM_RT_NONE) {
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
	if (to->valid && !to->served) {
		sm_remote_send(c->sm, c->m);    /* results and errors too: they are answers */
		return;
	}
	if (to->valid && to->has_resource && to->served) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			sm_route_forward(c, t);
			return;
		}
	}
	if (!request)
		return;     /* an undeliverable result or error is dropped */
	if (to->valid && to->served && to->has_local && !to->has_resource) {
		if (sm_ws_is(c->m->u.stanza.ns, NS_ROSTER))
			/* RFC 6121 §2.1.5, §2.3.3: only the account itself reads or
			 * changes its roster. */
			reply_error(c, "forbidden");
		else
			iq_other(c);
		return;
	}
	if (!to->valid)
		reply_error(c, "jid-malformed");
	else
		reply_error(c, "service-unavailable");
}

/* ---- entry points ------------------------------------------------------ */

void sm_route_stanza(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	struct sm_route_ctx c = { .sm = sm, .s = s, .m = m, .kind = m->u.stanza.kind,
			       .from = s->full, .from_len = s->full_len,
			       .from_bare_len = s->bare_len };

	if (m->u.stanza.flags & WIRE_STANZA_RETURNED) {
		sm_returned(sm, s, m);   /* XEP-0198 §4: not s's stanza, one s never got */
		return;
	}
	STAT_INC(sm->stats.routed[c.kind & 3]);

	if (c.kind != WIRE_KIND_MESSAGE && c.kind != WIRE_KIND_PRESENCE && c.kind != WIRE_KIND_IQ) {
		log_warn("stanza of unknown kind dropped", "link=%u sid=%llu kind=%u", s->link->id,
			 (unsigned long long)s->sid, c.kind);
		return;
	}
	memcpy(c.from_bare, s->bare, s->bare_len + 1);
	c.type = sm_route_type_parse(c.kind, m->u.stanza.type);
	sm_route_to_parse(sm, m->u.stanza.to, &c.to);
	if (c.to.valid &&
	    sm_blocking_check(sm, s->user, s->full, s->full_len, m, c.to.full, c.to.full_len))
		return;
	switch (c.kind) {
	case WIRE_KIND_MESSAGE:
		/* The sender's archive and its other resources (XEP-0313,
		 * XEP-0280) see only what was accepted. */
		if (route_message(&c)) {
			if (message_archived(&c) && c.to.present)
				sm_mam_outgoing(sm, c.from_bare, c.to.full, c.to.full_len, m);
			sm_carbons_sent(sm, s, m);
		}
		break;
	case WIRE_KIND_PRESENCE:
		sm_presence_route(&c);
		break;
	default:
		route_iq(&c);
		break;
	}
}

/* The inbound half of a message to a local JID (RFC 6121 §8.5). */
static void message_in(struct sm_route_ctx *c)
{
	struct sm_route_to *to = &c->to;
	struct sm_session *t;

	if (!to->has_local) {
		reply_error(c, "service-unavailable");      /* the server takes no messages */
		return;
	}
	if (to->has_resource) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			message_deliver(c, t, to->bare);
			return;
		}
		/* §8.5.3.2.1: no such resource */
		if (c->type == SM_RT_HEADLINE || c->type == SM_RT_ERROR)
			return;
	}
	message_bare(c, to->bare, to->bare_len);
}

/* The inbound half of an iq to a local JID or the domain. */
static void iq_in(struct sm_route_ctx *c)
{
	struct sm_route_to *to = &c->to;
	struct sm_session *t;

	if (c->type == SM_RT_OTHER || c->type == SM_RT_NONE) {
		reply_error(c, "bad-request");
		return;
	}
	if (!to->has_local && !to->has_resource) {
		iq_server(c);
		return;
	}
	if (to->has_resource) {
		t = sm_session_find(c->sm, to->full, to->full_len);
		if (t) {
			sm_route_forward(c, t);
			return;
		}
	}
	if (c->type != SM_RT_GET && c->type != SM_RT_SET)
		return;     /* an undeliverable result or error is dropped */
	if (to->has_local && !to->has_resource) {
		if (sm_ws_is(c->m->u.stanza.ns, NS_ROSTER))
			reply_error(c, "forbidden");    /* RFC 6121 §2.1.5, §2.3.3 */
		else
			iq_other(c);
		return;
	}
	reply_error(c, "service-unavailable");  /* §8.5.3.2.1, §8.5.1 */
}

void sm_route_replay(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct sm_route_ctx c;      /* not zeroed whole: its JID arrays are 9 KiB */
	const char *slash = memchr(from, '/', from_len);

	c.sm = sm;
	c.s = NULL;
	c.m = m;
	c.kind = m->u.stanza.kind;
	c.from = from;
	c.from_len = from_len;
	c.from_bare_len = slash ? (size_t)(slash - from) : from_len;
	if (c.from_bare_len > JID_MAX)
		return;
	memcpy(c.from_bare, from, c.from_bare_len);
	c.from_bare[c.from_bare_len] = '\0';
	c.remote = sm_remote_jid(sm, from, from_len);
	c.type = sm_route_type_parse(c.kind, m->u.stanza.type);
	sm_route_to_parse(sm, m->u.stanza.to, &c.to);
	/* Parked are messages to an account with no available resource,
	 * subscription presence and probes for an account that was not in
	 * memory, requests to another account's bare JID: only the target's
	 * (inbound) half runs again.  External stanzas take the same half. */
	if (!c.to.valid || !c.to.served)
		return;
	if (c.to.has_local &&
	    sm_blocking_check(sm, NULL, from, from_len, m, c.to.full, c.to.full_len))
		return;
	if (c.kind == WIRE_KIND_MESSAGE)
		message_in(&c);
	else if (c.kind == WIRE_KIND_PRESENCE)
		sm_presence_replay(&c);
	else
		iq_in(&c);
}

/* m from a service's JID: an account of ours takes the inbound half, the
 * rest goes to its shard or server. */
static void from_service(struct sm *sm, const struct wire_msg *m)
{
	struct sm_route_to t;

	sm_route_to_parse(sm, m->u.stanza.to, &t);
	if (t.valid && t.served)
		sm_route_replay(sm, (const char *)m->u.stanza.from.p, m->u.stanza.from.len, m);
	else
		sm_remote_send(sm, m);
}

void sm_route_from_service(struct sm *sm, int kind, const char *type, const char *from,
			   const char *to, const char *id, const void *raw, size_t len)
{
	struct wire_msg m = { .type = WIRE_STANZA };

	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.type = sm_ws(type ? type : "");
	m.u.stanza.to = sm_ws(to);
	m.u.stanza.from = sm_ws(from);
	m.u.stanza.id = sm_ws(id ? id : "");
	m.u.stanza.ns = sm_ws("");
	m.u.stanza.raw = wire_s(raw, len);
	from_service(sm, &m);
}

/*
 * The direct path of a fan-out copy: what sm_route_replay() does for a
 * groupchat message or an available/unavailable presence from a service to
 * a session of this shard (RFC 6121 §8.5.3.1, §4.6: the full JID's
 * session), without parsing `to` again.  `to` is canonical, so it is the
 * session's key or no session's; should the session's account be no longer
 * ours (a domain dropped, the shard set changed), the generic path decides.  A service's JID is no account's, so only the
 * recipient's blocklist can stop the copy (XEP-0191 §3.3: silently, the
 * sender being no session of ours); a groupchat message is neither archived
 * nor carbon-copied for the recipient (message_archived(); carbons.c
 * decides: a <private/> is stripped), and sm_deliver() applies the
 * session's flow control.
 */
void sm_route_service_copy(struct sm *sm, const struct wire_msg *m)
{
	const struct wire_str *type = &m->u.stanza.type;
	int kind = m->u.stanza.kind;
	struct sm_session *t = NULL;

	if ((kind == WIRE_KIND_MESSAGE && sm_ws_is(*type, "groupchat")) ||
	    (kind == WIRE_KIND_PRESENCE && (type->len == 0 || sm_ws_is(*type, "unavailable"))))
		t = sm_session_find(sm, (const char *)m->u.stanza.to.p, m->u.stanza.to.len);
	if (!t || !t->user || sm_remote_jid(sm, t->bare, t->bare_len)) {
		from_service(sm, m);
		return;
	}
	if (t->user->nblocked &&
	    sm_blocking_check(sm, NULL, (const char *)m->u.stanza.from.p, m->u.stanza.from.len, m,
			      t->full, t->full_len))
		return;
	if (kind == WIRE_KIND_MESSAGE && sm_carbons_received(sm, t, m))
		return;
	sm_deliver(sm, t, kind, *type, m->u.stanza.to, m->u.stanza.from, m->u.stanza.id,
		   m->u.stanza.ns, m->u.stanza.raw.p, m->u.stanza.raw.len);
}

void sm_route_error(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		    const char *cond)
{
	struct sm_route_ctx c = { .sm = sm, .s = s, .m = m, .kind = m->u.stanza.kind,
			       .from = s->full, .from_len = s->full_len };

	c.type = sm_route_type_parse(c.kind, m->u.stanza.type);
	reply_error(&c, cond);
}

void sm_route_bounce(struct sm *sm, const char *to, int kind, const char *id, const char *from,
		     const char *cond)
{
	bool remote = sm_remote_jid(sm, to, strlen(to));
	struct sm_session *t = remote ? NULL : sm_session_find(sm, to, strlen(to));
	struct sm_buf *b;

	if (!t && !remote)
		return;
	b = build_start(sm, kind, "error", sm_ws(id), sm_ws(from), to);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   sm_error_type(cond), cond, sm_kind_name(kind));
	if (b->err)
		return;
	if (remote) {
		struct wire_msg r = { .type = WIRE_ROUTE };

		r.u.stanza.kind = (uint8_t)kind;
		r.u.stanza.type = sm_ws("error");
		r.u.stanza.to = sm_ws(to);
		r.u.stanza.from = sm_ws(from);
		r.u.stanza.id = sm_ws(id);
		r.u.stanza.ns = sm_ws("");
		r.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
		sm_remote_send(sm, &r);
		return;
	}
	sm_deliver(sm, t, kind, sm_ws("error"), sm_ws(to), sm_ws(from), sm_ws(id), sm_ws(""),
		   sm_buf_data(b), sm_buf_used(b));
}

