/*
 * sm_presence — presence and presence subscriptions (RFC 6121 §3, §4) for
 * the router (sm/route.c hands it every presence stanza).
 *
 * Presence without `to` is the session's own: the initial one is broadcast
 * to the roster's from/both contacts and the user's own resources, brings
 * the contacts' current presence (probes answered locally from the
 * sessions here), the pending subscription requests (§3.1.3 4) and the
 * offline messages; later ones are broadcast; unavailable also reaches
 * every JID the session sent directed presence to (§4.6.3).  Directed
 * presence is delivered and, when its target is not in the from/both set,
 * remembered (at most SM_MAX_DIRECTED per session).
 *
 * Subscription stanzas run sm_sub_apply() (sm/sub.c) twice: the user's half
 * (its row: stored, pushed, the stanza stamped with the user's bare JID) and
 * the contact's inbound half (the contact's row, the delivery, the
 * automatic replies, presence after approval, unavailable after
 * cancellation).  The contact may be offline: sm_user_need() loads its
 * record and parks the stanza, and the replay (sm_presence_replay) runs
 * only the inbound half -- the sender's half is done and the sender may be
 * gone.  Probes are answered from the contact's state (§4.3.2): presence if
 * subscribed, "unsubscribed" if not.
 *
 * Contacts on other servers or components (external JIDs) get the same
 * stanzas through sm_remote_send(): broadcasts with `to` set per contact,
 * a probe from the user's bare JID at each initial presence to those with
 * subscription to/both (their servers answer to the bare JID: every
 * available resource hears it), unavailable presence, directed presence,
 * and the subscription stanzas after the user's half ran, stamped with the
 * user's bare JID (the contact's half is its server's business).  Presence
 * from them (sm/remote.c -> sm_presence_replay()) takes the inbound half:
 * subscriptions and probes as from a local account, everything else
 * delivered to the full JID or to the bare JID's available resources.
 * The user's own blocklist (XEP-0191) stops outbound presence to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"
#include "sm/sm_int.h"


/* Presence built here: `<presence type='T' from='F' to='T'/>` as a frame. */
struct built {
	struct wire_msg m;
	char raw[2 * (3 * JID_MAX + 64)];
};

/*
 * Send presence raw (from full JID `from`) to every available session of u,
 * with `to` set to u's bare JID.  sm_route_rewrite() is done once per recipient account.
 */
static void presence_to_user(struct sm *sm, const char *from, struct sm_user *u, int kind,
			     struct wire_str type, struct wire_str id, const void *raw, size_t len)
{
	const char *slash = strchr(from, '/');
	size_t blen = slash ? (size_t)(slash - from) : strlen(from);
	/* XEP-0191: between two accounts, either blocklist stops presence. */
	bool other = u->bare_len != blen || memcmp(u->bare, from, blen) != 0;
	struct sm_user *fu = other ? sm_user_find(sm, from, blen) : u;
	bool built = false;

	for (struct sm_session *t = u->shead; t; t = t->unext) {
		if (!t->available || (other && sm_blocking_between(fu, from, u, t->full)))
			continue;
		if (!built) {
			if (!sm_route_rewrite(sm, raw, len, u->bare, NULL)) {
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
 * Send presence raw of u (`from` one of its full JIDs or its bare JID) out
 * to the external JID `to`, with `to` and `from` set in its start tag,
 * unless u blocks `to` (XEP-0191: no presence to a blocked entity).
 */
static void presence_out(struct sm *sm, struct sm_user *u, const char *from, const char *to,
			 struct wire_str type, struct wire_str id, const void *raw, size_t len)
{
	struct wire_msg m = { .type = WIRE_ROUTE };

	if (u && u->nblocked && sm_blocking_has(u, to))
		return;
	if (!sm_route_rewrite(sm, raw, len, to, from)) {
		log_warn("presence not rewritable", "jid=\"%s\"", from);
		return;
	}
	m.u.stanza.kind = WIRE_KIND_PRESENCE;
	m.u.stanza.type = type;
	m.u.stanza.to = sm_ws(to);
	m.u.stanza.from = sm_ws(from);
	m.u.stanza.id = id;
	m.u.stanza.ns = sm_ws("");
	m.u.stanza.raw = wire_s(sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
	sm_remote_send(sm, &m);
}

/*
 * Broadcast presence raw of s (RFC 6121 §4.2.2, §4.4.2, §4.5.2): to each
 * roster contact with subscription from/both that is online here or
 * external, and to the user's own available resources (s included when
 * still available).
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
		else if (sm_remote_jid(sm, it->contact, strlen(it->contact)))
			presence_out(sm, u, s->full, it->contact, type, id, raw, len);
	}
	presence_to_user(sm, s->full, u, WIRE_KIND_PRESENCE, type, id, raw, len);
}

/* Deliver t's current presence to s, addressed to s's full JID. */
static void presence_relay(struct sm *sm, struct sm_session *t, struct sm_session *s)
{
	if (!t->available || !t->presence ||
	    (t->user != s->user && sm_blocking_between(t->user, t->full, s->user, s->full)))
		return;
	if (!sm_route_rewrite(sm, t->presence, t->presence_len, s->full, NULL))
		return;
	sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws(""), sm_ws(s->full), sm_ws(t->full),
		   sm_ws(""), sm_ws(""), sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
}

static bool build_presence(struct built *p, const char *type, const char *from, const char *to);

/*
 * Initial presence probes (RFC 6121 §4.2.2, §4.3.1) for each contact s may
 * see (subscription to/both): answered locally from the presence of every
 * available session of a local contact; sent from the user's bare JID to
 * an external one (unless the user blocks it), whose server answers.  And
 * the presence of the user's own other resources.
 */
static void presence_probe_all(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;

	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];
		struct sm_user *cu;
		struct built p;

		if (!(it->sub & SM_SUB_TO) || strcmp(it->contact, u->bare) == 0)
			continue;
		cu = sm_user_find(sm, it->contact, strlen(it->contact));
		for (struct sm_session *t = cu ? cu->shead : NULL; t; t = t->unext)
			presence_relay(sm, t, s);
		if (!cu && sm_remote_jid(sm, it->contact, strlen(it->contact)) &&
		    !(u->nblocked && sm_blocking_has(u, it->contact)) &&
		    build_presence(&p, "probe", u->bare, it->contact))
			sm_remote_send(sm, &p.m);
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


/* Unavailable presence from the full JID `from` to the JID `to` (bare or
 * full, canonical), delivered if it is online here or sent out when it is
 * external: raw (the user's own unavailable stanza, `to` set here) or, when
 * NULL, one built here. */
static void unavailable_send(struct sm *sm, const char *from, const char *to, const void *raw,
			     size_t len)
{
	struct sm_buf *b = &sm->scratch;
	const char *slash = strchr(to, '/');
	struct sm_session *t;
	struct sm_user *cu;

	if (raw) {
		if (!sm_route_rewrite(sm, raw, len, to, NULL))
			return;
	} else {
		sm_buf_clear(b);
		sm_buf_str(b, "<presence type='unavailable' from='");
		sm_buf_esc(b, from, strlen(from));
		sm_buf_str(b, "' to='");
		sm_buf_esc(b, to, strlen(to));
		sm_buf_str(b, "'/>");
	}
	if (b->err)
		return;
	if (sm_remote_jid(sm, to, strlen(to))) {
		struct wire_msg m = { .type = WIRE_ROUTE };

		m.u.stanza.kind = WIRE_KIND_PRESENCE;
		m.u.stanza.type = sm_ws("unavailable");
		m.u.stanza.to = sm_ws(to);
		m.u.stanza.from = sm_ws(from);
		m.u.stanza.id = sm_ws("");
		m.u.stanza.ns = sm_ws("");
		m.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
		sm_remote_send(sm, &m);
		return;
	}
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

void sm_presence_directed_clear(struct sm_session *s)
{
	for (unsigned i = 0; i < s->ndirected; i++)
		free(s->directed[i]);
	free(s->directed);
	s->directed = NULL;
	s->ndirected = 0;
}

/* §4.6.3: s becomes unavailable: everyone it sent directed presence to hears
 * it (its unavailable stanza raw when it sent one, else one built here). */
static void directed_unavailable(struct sm *sm, struct sm_session *s, const void *raw,
				 size_t len)
{
	for (unsigned i = 0; i < s->ndirected; i++)
		unavailable_send(sm, s->full, s->directed[i], raw, len);
	sm_presence_directed_clear(s);
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
static void directed_note(struct sm_session *s, const struct sm_route_to *to, bool available)
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
	/* Already known, covered by the broadcast (from/both, the user's own
	 * resources), or sent before initial presence: nothing to remember. */
	if (i >= 0 || (it && (it->sub & SM_SUB_FROM)) || !s->available ||
	    strcmp(to->bare, s->bare) == 0)
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
static void presence_own(struct sm_route_ctx *c)
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

	if (c->type == SM_RT_UNAVAILABLE) {
		if (!s->available)
			return;     /* nothing to retract */
		s->available = false;
		s->initial_done = false;   /* the next available presence is initial again */
		free(s->presence);
		s->presence = NULL;
		s->presence_len = 0;
		presence_broadcast(sm, s, m->u.stanza.type, m->u.stanza.id, raw, len);
		directed_unavailable(sm, s, raw, len);
		return;
	}
	if (c->type != SM_RT_NONE)
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
	sm_pep_presence(sm, s, raw, len, initial);    /* caps, last published items */
	if (!initial)
		return;
	presence_probe_all(sm, s);
	presence_pending_in(sm, s);
	/* RFC 6121 §8.5.2.2.2: stored messages go to the first resource that
	 * becomes available with a non-negative priority. */
	if (prio >= 0)
		sm_offline_deliver(sm, s);
}

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

static void sub_in(struct sm_route_ctx *c);
static void probe_in(struct sm_route_ctx *c);

/* Hand a stanza from the bare JID `from` to a local account's inbound half,
 * or out to an external one. */
static void inbound(struct sm *sm, const char *from, const struct wire_msg *m)
{
	struct sm_route_ctx c = { .sm = sm, .m = m, .kind = WIRE_KIND_PRESENCE, .from = from,
			       .from_len = strlen(from) };

	if (c.from_len > JID_MAX)
		return;
	memcpy(c.from_bare, from, c.from_len + 1);
	c.from_bare_len = c.from_len;
	c.type = sm_route_type_parse(c.kind, m->u.stanza.type);
	sm_route_to_parse(sm, m->u.stanza.to, &c.to);
	if (c.to.valid && !c.to.served) {
		sm_remote_send(sm, m);      /* the contact's half is its server's */
		return;
	}
	if (!c.to.valid || !c.to.has_local)
		return;
	if (c.type == SM_RT_PROBE)
		probe_in(&c);
	else
		sub_in(&c);
}

void sm_presence_sub_send(struct sm *sm, struct sm_user *u, const char *contact, const char *type)
{
	struct built p;

	if (build_presence(&p, type, u->bare, contact))
		inbound(sm, u->bare, &p.m);
}

void sm_presence_unavailable_to(struct sm *sm, struct sm_user *u, const char *contact)
{
	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t->available)
			unavailable_send(sm, t->full, contact, NULL, 0);
}

/* §3.1.5: the contact now sees u: each available resource's presence. */
static void presence_after(struct sm *sm, struct sm_user *u, const char *contact)
{
	struct sm_user *cu = sm_user_find(sm, contact, strlen(contact));

	if (!cu && sm_remote_jid(sm, contact, strlen(contact))) {
		for (struct sm_session *t = u->shead; t; t = t->unext)
			if (t->available && t->presence)
				presence_out(sm, u, t->full, contact, sm_ws(""), sm_ws(""),
					     t->presence, t->presence_len);
		return;
	}
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
	case SM_RT_SUBSCRIBE:
		return out ? SM_SUB_OUT_SUBSCRIBE : SM_SUB_IN_SUBSCRIBE;
	case SM_RT_SUBSCRIBED:
		return out ? SM_SUB_OUT_SUBSCRIBED : SM_SUB_IN_SUBSCRIBED;
	case SM_RT_UNSUBSCRIBE:
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
static void sub_in(struct sm_route_ctx *c)
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
		/* §8.5.1: no such account: subscription stanzas are silently ignored. */
		sm_user_release(sm, u);
		return;
	}
	/* The stanza as the account's clients see it: to its bare JID, from
	 * the sender's bare JID (§3.1.2). */
	if (!sm_route_rewrite(sm, c->m->u.stanza.raw.p, c->m->u.stanza.raw.len, u->bare, from)) {
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
		sm_presence_unavailable_to(sm, u, from);
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
		sm_presence_sub_send(sm, u, from, "subscribed");
	if (res.auto_reply_unsubscribed)
		sm_presence_sub_send(sm, u, from, "unsubscribed");
	if (res.presence_after)
		presence_after(sm, u, from);
out:
	free(raw);
	u->refs--;
	sm_user_release(sm, u);
}

/* The user's half (§3.1.2, §3.2.2, §3.3.2, §3.4): s sends a subscription
 * stanza to the contact c->to. */
static void sub_out(struct sm_route_ctx *c)
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
		sm_presence_unavailable_to(sm, u, contact);   /* before the "unsubscribed" */
	if (res.forward) {
		/* §3.1.2: stamped with the user's bare JID, to the contact's. */
		if (!sm_route_rewrite(sm, c->m->u.stanza.raw.p, c->m->u.stanza.raw.len, contact, u->bare))
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
 * (RFC 6121 §4.3.2): answered from the account's available sessions if the
 * prober is subscribed (from/both); with "unsubscribed" if it is not (or
 * there is no such account: the two look alike, so probes do not reveal
 * accounts).  No available resource: no reply -- the RFC's other choice,
 * the last unavailable presence received, is not kept here.  An external
 * prober is answered at the JID it probed from (its user's bare JID).
 */
static void probe_in(struct sm_route_ctx *c)
{
	struct sm *sm = c->sm;
	struct sm_session *s = c->s || c->remote ? c->s : sm_session_find(sm, c->from, c->from_len);
	struct sm_roster_item *it;
	struct sm_user *u;
	struct built p;

	u = sm_user_need(sm, c->to.bare, c->to.bare_len, c->from, c->from_len, c->m);
	if (!u)
		return;
	if (!s && !c->remote) {
		sm_user_release(sm, u);   /* the prober left meanwhile */
		return;
	}
	it = u->exists ? sm_roster_find(u, c->from_bare) : NULL;
	if (!u->exists ||
	    (strcmp(u->bare, c->from_bare) != 0 && (!it || !(it->sub & SM_SUB_FROM)))) {
		/* not subscribed: no presence leaks; the prober learns it is not */
		if (!build_presence(&p, "unsubscribed", u->bare, s ? s->full : c->from))
			;
		else if (s)
			sm_deliver(sm, s, WIRE_KIND_PRESENCE, sm_ws("unsubscribed"), sm_ws(s->full),
				   sm_ws(u->bare), sm_ws(""), sm_ws(""), p.raw,
				   p.m.u.stanza.raw.len);
		else
			sm_remote_send(sm, &p.m);
		sm_user_release(sm, u);
		return;
	}
	for (struct sm_session *t = u->shead; t; t = t->unext) {
		if (s && t != s)
			presence_relay(sm, t, s);    /* available ones only */
		else if (!s && t->available && t->presence)
			presence_out(sm, u, t->full, c->from, sm_ws(""), sm_ws(""), t->presence,
				     t->presence_len);
	}
	sm_user_release(sm, u);
}

void sm_presence_route(struct sm_route_ctx *c)
{
	struct sm_route_to *to = &c->to;
	struct sm *sm = c->sm;
	struct sm_user *u;
	struct sm_session *t;

	if (!to->present) {
		if (c->type != SM_RT_ERROR)
			presence_own(c);
		return;
	}
	if (to->valid && (to->has_local || !to->served) &&
	    (c->type == SM_RT_SUBSCRIBE || c->type == SM_RT_SUBSCRIBED ||
	     c->type == SM_RT_UNSUBSCRIBE || c->type == SM_RT_UNSUBSCRIBED)) {
		/* The user's row changes whoever the contact is (an external one
		 * may be a bare domain: a gateway); the stanza then goes to it. */
		sub_out(c);
		return;
	}
	/* Presence to a bad address or the server itself has nobody to go to;
	 * presence is not answered with errors. */
	if (!to->valid || c->type == SM_RT_OTHER || (to->served && !to->has_local))
		return;
	if (!to->served) {
		/* Directed presence (§4.6), a probe or an error, to an external
		 * entity (a contact elsewhere, a MUC room of a component). */
		if (c->type == SM_RT_NONE || c->type == SM_RT_UNAVAILABLE)
			directed_note(c->s, to, c->type == SM_RT_NONE);
		sm_remote_send(sm, c->m);
		return;
	}
	switch (c->type) {
	case SM_RT_PROBE:
		probe_in(c);
		return;
	default:
		/* Directed presence (available, unavailable, error), §4.6. */
		if (c->type == SM_RT_NONE || c->type == SM_RT_UNAVAILABLE)
			directed_note(c->s, to, c->type == SM_RT_NONE);
		if (to->has_resource) {
			t = sm_session_find(sm, to->full, to->full_len);
			if (t)
				sm_route_forward(c, t);
		} else {
			u = sm_user_find(sm, to->bare, to->bare_len);
			sm_route_forward_available(c, u, -128);
		}
		return;
	}
}

void sm_presence_replay(struct sm_route_ctx *c)
{
	struct sm_session *t;

	if (!c->to.has_local || c->type == SM_RT_OTHER)
		return;     /* presence for the server itself, or no presence type */
	if (c->type == SM_RT_PROBE) {
		probe_in(c);
	} else if (c->type == SM_RT_SUBSCRIBE || c->type == SM_RT_SUBSCRIBED ||
		   c->type == SM_RT_UNSUBSCRIBE || c->type == SM_RT_UNSUBSCRIBED) {
		sub_in(c);
	} else if (c->to.has_resource) {
		/* From an external entity: its presence broadcast (available,
		 * unavailable), directed presence or a presence error (§4.6.4). */
		t = sm_session_find(c->sm, c->to.full, c->to.full_len);
		if (t)
			sm_route_forward(c, t);
	} else {
		sm_route_forward_available(c, sm_user_find(c->sm, c->to.bare, c->to.bare_len),
					   -128);
	}
}

void sm_presence_gone(struct sm *sm, struct sm_session *s)
{
	static const char unavail[] = "<presence type='unavailable'/>";
	struct sm_user *u = s->user;
	struct sm_buf *b = &sm->scratch;
	struct wire_str type = sm_ws("unavailable"), id = sm_ws("");

	if (!s->available || !u)
		return;
	s->available = false;
	directed_unavailable(sm, s, NULL, 0);
	/* One stanza per recipient account: `to` differs, so build each time. */
	for (size_t i = 0; i <= u->nroster; i++) {
		struct sm_user *cu;

		if (i < u->nroster) {
			struct sm_roster_item *it = &u->roster[i];

			if (!(it->sub & SM_SUB_FROM) || strcmp(it->contact, u->bare) == 0)
				continue;
			cu = sm_user_find(sm, it->contact, strlen(it->contact));
			if (!cu && sm_remote_jid(sm, it->contact, strlen(it->contact))) {
				presence_out(sm, u, s->full, it->contact, type, id, unavail,
					     sizeof(unavail) - 1);
				continue;
			}
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
			if (t->available && t != s &&
			    (cu == u || !sm_blocking_between(u, s->full, cu, t->full)))
				sm_deliver(sm, t, WIRE_KIND_PRESENCE, type, sm_ws(cu->bare),
					   sm_ws(s->full), id, sm_ws(""), sm_buf_data(b),
					   sm_buf_used(b));
	}
}
