/*
 * sm_remote — stanzas to and from entities outside the domains we serve:
 * external components (XEP-0114) and other servers (s2s).  Both live at the
 * edge; an edge link carries their stanzas as WIRE_ROUTE frames and tells
 * which it offers with WIRE_DOMAIN frames (docs/protocol.md).
 *
 * Routes, from WIRE_DOMAIN:
 *   UP d     the component serving d and its subdomains is on this link.  UP
 *            on a second link replaces the first (logged).
 *   DOWN d   d is a component's and not connected on this link: if it was UP
 *            here it goes down (known, unreachable); UP on another link is
 *            left alone.  A component never seen becomes known, down.
 *   S2S      this link's edge does server-to-server.
 * A link that dies takes its routes with it: its components go down, and it
 * carries no s2s any more.  At most SM_MAX_COMPONENTS component domains.
 *
 * Outbound, sm_remote_send(): the target domain or its nearest parent that
 * is a component's (longest match: "x.irc.example" goes to "irc.example")
 * -> that component's link, or service-unavailable when it is down; else an
 * s2s link, chosen by rendezvous hashing of (sender's domain, target domain)
 * over the s2s links, so one (local, remote) pair is carried by one edge
 * worker and a link coming or going moves only the pairs it takes or had;
 * else remote-server-not-found.  The frame's `to` and `from` are canonical.
 * Bounces follow RFC 6120 §8.3: never for an error (nor an iq result,
 * §8.2.3: an undeliverable answer is dropped), and for presence only a
 * "subscribe" (lost presence is not answered, here as for local addresses
 * and at the edge: broadcasts and probes to a dead server would flood the
 * user's clients); type per condition (sm_error_type), from the address
 * the stanza was sent to, to its sender: a local full JID (its session, if
 * online), a local bare JID (its available resources: a subscription
 * request the server stamped with it), the server itself (dropped), or an
 * external JID (out through here once more: an error is never bounced, and
 * nesting is bounded, so no loop).
 * Bounces are built in a buffer of this module: callers' sm->scratch stays
 * as it was.
 *
 * Inbound, sm_remote_in(): the edge checked that `from` belongs to the peer
 * and that `to` is something it may address; this module checks again what
 * is cheap (from is a valid JID of no domain of ours; a component's JID
 * comes on the link that component is UP on, except errors, which the edge
 * that failed to deliver to the component sends; anything else on an s2s
 * link)
 * and hands the stanza to the inbound half of routing, sm_route_replay().
 * A stanza to a domain we do not serve is forwarded when a component sent
 * it (components talk to other servers and to each other), dropped and
 * logged otherwise.
 *
 * Cost: nothing on the local-to-local path (route.c calls here only for a
 * `to` that is not served); a remote stanza costs a JID canonicalisation
 * of `to` and `from`, one hash lookup per domain label and one hash per s2s
 * link.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/shard.h"
#include "sm/sm_int.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define REMOTE_MAX_DEPTH 2      /* a bounce of a bounce: never a third */
#define REMOTE_BOUNCE_MAX (16u * 1024)

/* A component domain: where it is connected, if anywhere. */
struct remote_comp {
	struct sm_tab_node node;   /* remote->comps */
	struct sm_link *link;      /* NULL: down */
	size_t len;
	char domain[];             /* canonical */
};

struct sm_remote {
	struct sm_tab comps;       /* domain -> remote_comp */
	struct sm_link **s2s;      /* links offering s2s, in arrival order */
	size_t ns2s, s2s_cap;
	unsigned depth;            /* sm_remote_send() nesting (bounces) */
	struct sm_buf bounce;      /* bounces are built here, never in scratch */
};

static struct sm_remote *remote_get(struct sm *sm)
{
	struct sm_remote *r = sm->remote;

	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r || sm_tab_init(&r->comps) < 0) {
		free(r);
		log_warn("out of memory for external routes", "%s", "");
		return NULL;
	}
	r->bounce.max = REMOTE_BOUNCE_MAX;
	sm->remote = r;
	return r;
}

void sm_remote_free(struct sm *sm)
{
	struct sm_remote *r = sm->remote;

	if (!r)
		return;
	for (size_t i = 0; i <= r->comps.mask; i++) {
		struct sm_tab_node *n = r->comps.slots[i], *next;

		for (; n; n = next) {
			next = n->next;
			free(sm_container_of(n, struct remote_comp, node));
		}
	}
	sm_tab_fini(&r->comps);
	free(r->s2s);
	sm_buf_free(&r->bounce);
	free(r);
	sm->remote = NULL;
}

/* ---- JIDs --------------------------------------------------------------- */

/* A JID from the wire, canonical. */
struct rjid {
	char s[JID_MAX + 1];
	size_t len;
	const char *dom;           /* its domain, inside s */
	size_t dom_len;
	size_t bare_len;           /* s[0..bare_len) is the bare JID (or domain) */
	bool local, resource;
};

static bool rjid_parse(struct wire_str w, struct rjid *j)
{
	struct jid_view v;
	int n;

	if (w.len == 0 || w.len > JID_MAX || memchr(w.p, 0, w.len) ||
	    jid_parse((const char *)w.p, w.len, &v) < 0)
		return false;
	n = jid_canon(&v, true, j->s, sizeof(j->s));
	if (n < 0)
		return false;
	j->len = (size_t)n;
	j->local = v.local_len > 0;
	j->resource = v.resource_len > 0;
	j->dom = j->s + (j->local ? v.local_len + 1 : 0);
	j->dom_len = v.domain_len;
	j->bare_len = (size_t)(j->dom - j->s) + j->dom_len;
	return true;
}

bool sm_remote_jid(const struct sm *sm, const char *jid, size_t n)
{
	const char *slash = memchr(jid, '/', n);
	size_t bare = slash ? (size_t)(slash - jid) : n;
	const char *at = memchr(jid, '@', bare);
	const char *d = at ? at + 1 : jid;

	return !sm_domain_served(sm, d, bare - (size_t)(d - jid)) || (at && !sm_owns(sm, jid, bare));
}

/* ---- the routes --------------------------------------------------------- */

static struct remote_comp *comp_find(const struct sm_remote *r, const char *d, size_t n)
{
	uint64_t h = sm_tab_hash(&r->comps, d, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&r->comps, h); e; e = e->next) {
		struct remote_comp *c = sm_container_of(e, struct remote_comp, node);

		if (e->hash == h && c->len == n && memcmp(c->domain, d, n) == 0)
			return c;
	}
	return NULL;
}

/* The component serving domain d: d itself or its nearest parent. */
static struct remote_comp *comp_match(const struct sm_remote *r, const char *d, size_t n)
{
	if (!r || r->comps.count == 0)
		return NULL;
	for (;;) {
		struct remote_comp *c = comp_find(r, d, n);
		const char *dot;

		if (c)
			return c;
		dot = memchr(d, '.', n);
		if (!dot)
			return NULL;
		n -= (size_t)(dot + 1 - d);
		d = dot + 1;
	}
}

/* FNV-1a of "a\0b" (parser/shard.h): not seeded, so the choice is the same
 * in every run. */
static uint64_t pair_hash(const char *a, size_t an, const char *b, size_t bn)
{
	return shard_fnv(shard_fnv(shard_fnv(SHARD_FNV_BASIS, a, an), "", 1), b, bn);
}

static uint64_t link_score(uint64_t ph, const struct sm_link *l)
{
	return shard_mix64(ph ^ ((uint64_t)l->id * 0x9e3779b97f4a7c15ull));
}

/* Rendezvous hashing: the s2s link with the highest score for the pair. */
static struct sm_link *s2s_pick(const struct sm_remote *r, const struct rjid *from,
				const struct rjid *to)
{
	uint64_t ph = pair_hash(from->dom, from->dom_len, to->dom, to->dom_len), best = 0;
	struct sm_link *pick = NULL;

	for (size_t i = 0; i < r->ns2s; i++) {
		uint64_t score = link_score(ph, r->s2s[i]);

		if (!pick || score > best) {
			pick = r->s2s[i];
			best = score;
		}
	}
	return pick;
}

void sm_remote_link_gone(struct sm *sm, struct sm_link *l)
{
	struct sm_remote *r = sm->remote;

	sm_adopt_relay_lost(sm, l);   /* cross-shard messages it may not have passed on */
	if (!r)
		return;
	if (l->s2s) {
		for (size_t i = 0; i < r->ns2s; i++) {
			if (r->s2s[i] == l) {
				memmove(&r->s2s[i], &r->s2s[i + 1], (r->ns2s - i - 1) * sizeof(*r->s2s));
				r->ns2s--;
				break;
			}
		}
		l->s2s = false;
		log_info("s2s link gone", "link=%u s2s_links=%zu", l->id, r->ns2s);
	}
	for (size_t i = 0; l->ncomps && i <= r->comps.mask; i++) {
		for (struct sm_tab_node *n = r->comps.slots[i]; n; n = n->next) {
			struct remote_comp *c = sm_container_of(n, struct remote_comp, node);

			if (c->link == l) {
				c->link = NULL;
				l->ncomps--;
				log_info("component down: its link closed", "domain=\"%s\" link=%u",
					 c->domain, l->id);
			}
		}
	}
	l->ncomps = 0;
}

void sm_remote_domain(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_remote *r = remote_get(sm);
	struct wire_str d = m->u.domain.domain;
	char dom[JID_PART_MAX + 1];
	struct remote_comp *c;
	size_t n = d.len;

	if (!r)
		return;
	if (m->u.domain.op == WIRE_DOMAIN_S2S) {
		if (d.len)
			log_warn("s2s offered with a domain, domain ignored", "link=%u", l->id);
		if (l->s2s)
			return;
		if (r->ns2s == r->s2s_cap) {
			size_t cap = r->s2s_cap ? r->s2s_cap * 2 : 8;
			struct sm_link **a = realloc(r->s2s, cap * sizeof(*a));

			if (!a) {
				log_warn("out of memory adding an s2s link", "link=%u", l->id);
				return;
			}
			r->s2s = a;
			r->s2s_cap = cap;
		}
		r->s2s[r->ns2s++] = l;
		l->s2s = true;
		log_info("s2s link up", "link=%u worker=%u s2s_links=%zu", l->id, l->worker, r->ns2s);
		return;
	}
	/* A component's domain: canonical, valid, and none of ours. */
	if (n && d.p[n - 1] == '.')
		n--;
	if (n == 0 || n > JID_PART_MAX || memchr(d.p, 0, n) ||
	    !jid_domain_valid((const char *)d.p, n)) {
		log_warn("component domain invalid, ignored", "link=%u", l->id);
		return;
	}
	jid_fold((const char *)d.p, n, dom);
	dom[n] = '\0';
	if (sm_domain_served(sm, dom, n)) {
		log_warn("component claims a served domain, ignored", "link=%u domain=\"%s\"", l->id,
			 dom);
		return;
	}
	c = comp_find(r, dom, n);
	if (m->u.domain.op == WIRE_DOMAIN_DOWN) {
		if (c && c->link == l) {
			c->link = NULL;
			l->ncomps--;
			log_info("component down", "domain=\"%s\" link=%u", dom, l->id);
		}
		if (c)
			return;     /* down already, or up on another link: stays so */
	} else if (c) {
		if (c->link == l)
			return;
		if (c->link) {
			log_warn("component moved to another link", "domain=\"%s\" from_link=%u "
				 "to_link=%u", dom, c->link->id, l->id);
			c->link->ncomps--;
		} else {
			log_info("component up", "domain=\"%s\" link=%u", dom, l->id);
		}
		c->link = l;
		l->ncomps++;
		return;
	}
	if (r->comps.count >= SM_MAX_COMPONENTS) {
		log_warn("too many component domains, ignored", "link=%u domain=\"%s\"", l->id, dom);
		return;
	}
	c = malloc(sizeof(*c) + n + 1);
	if (!c) {
		log_warn("out of memory adding a component", "domain=\"%s\"", dom);
		return;
	}
	memcpy(c->domain, dom, n + 1);
	c->len = n;
	c->link = m->u.domain.op == WIRE_DOMAIN_UP ? l : NULL;
	if (c->link)
		l->ncomps++;
	sm_tab_insert(&r->comps, &c->node, sm_tab_hash(&r->comps, dom, n));
	if (c->link)
		log_info("component up", "domain=\"%s\" link=%u", dom, l->id);
	else
		log_info("component known, down", "domain=\"%s\" link=%u", dom, l->id);
}

/* ---- outbound ----------------------------------------------------------- */

/* Hand m to l as a WIRE_ROUTE with canonical `to` and `from`. */
static void route_out(struct sm_link *l, const struct wire_msg *m, const struct rjid *to,
		      const struct rjid *from)
{
	struct wire_msg f = { .type = WIRE_ROUTE, .sid = 0 };

	f.u.stanza = m->u.stanza;
	f.u.stanza.flags = 0;
	f.u.stanza.to = wire_s(to->s, to->len);
	f.u.stanza.from = wire_s(from->s, from->len);
	sm_link_send(l, &f);
}

/*
 * m (from `from` to `to`) cannot reach `to`: answer its sender with cond
 * (RFC 6120 §8.3), wherever it is.
 */
static void bounce(struct sm *sm, struct sm_remote *r, const struct wire_msg *m,
		   const struct rjid *to, const struct rjid *from, const char *cond)
{
	const char *kind = sm_kind_name(m->u.stanza.kind);
	struct sm_buf *b;
	struct wire_msg e = { .type = WIRE_ROUTE };

	if (sm_ws_is(m->u.stanza.type, "error") ||
	    (m->u.stanza.kind == WIRE_KIND_IQ && sm_ws_is(m->u.stanza.type, "result")))
		return;     /* §8.3.1, §8.2.3: errors and results are not answered */
	/* Lost presence is not answered (broadcasts, probes, unavailable,
	 * directed presence: as for local addresses, and as the edge does),
	 * except a subscription request, whose sender waits for an answer. */
	if (m->u.stanza.kind == WIRE_KIND_PRESENCE && !sm_ws_is(m->u.stanza.type, "subscribe"))
		return;
	log_debug("stanza for an external entity bounced", "from=\"%s\" to=\"%s\" kind=%s "
		  "condition=%s", from->s, to->s, kind, cond);
	if (!r || r->depth >= REMOTE_MAX_DEPTH)
		return;
	b = &r->bounce;
	sm_buf_clear(b);
	sm_buf_fmt(b, "<%s type='error'", kind);
	if (m->u.stanza.id.len) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, (const char *)m->u.stanza.id.p, m->u.stanza.id.len);
		sm_buf_str(b, "'");
	}
	/* from: the address as the sender wrote it, so it recognises its stanza */
	sm_buf_str(b, " from='");
	sm_buf_esc(b, (const char *)m->u.stanza.to.p, m->u.stanza.to.len);
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, from->s, from->len);
	sm_buf_fmt(b, "'><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   sm_error_type(cond), cond, kind);
	if (b->err)
		return;
	e.u.stanza.kind = m->u.stanza.kind;
	e.u.stanza.type = sm_ws("error");
	e.u.stanza.to = wire_s(from->s, from->len);
	e.u.stanza.from = m->u.stanza.to;
	e.u.stanza.id = m->u.stanza.id;
	e.u.stanza.ns = sm_ws("");
	e.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
	if (sm_remote_jid(sm, from->s, from->len)) {
		r->depth++;
		sm_remote_send(sm, &e);
		r->depth--;
	} else if (from->resource) {
		struct sm_session *t = sm_session_find(sm, from->s, from->len);

		if (t)
			sm_deliver(sm, t, e.u.stanza.kind, e.u.stanza.type, e.u.stanza.to,
				   e.u.stanza.from, e.u.stanza.id, e.u.stanza.ns, e.u.stanza.raw.p,
				   e.u.stanza.raw.len);
	} else if (from->local) {
		/* Stamped with the account's bare JID (a subscription
		 * request): its available resources hear of it. */
		struct sm_user *u = sm_user_find(sm, from->s, from->len);

		for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext)
			if (t->available)
				sm_deliver(sm, t, e.u.stanza.kind, e.u.stanza.type, e.u.stanza.to,
					   e.u.stanza.from, e.u.stanza.id, e.u.stanza.ns,
					   e.u.stanza.raw.p, e.u.stanza.raw.len);
	}
	/* else the server itself sent it: nobody to tell */
}

/*
 * A stanza for an account another shard owns, flagged WIRE_STANZA_SHARD:
 * on the in-process link to the owner when it is a thread of this process,
 * else out through an edge link, which passes it on to the owner.  The edge
 * link is chosen by rendezvous hashing of the (sender, recipient) bare JIDs
 * over the ready links, so the stanzas of one pair keep their order.
 */
static bool shard_out(struct sm *sm, struct sm_remote *r, const struct wire_msg *m,
		      const struct rjid *to, const struct rjid *from)
{
	uint64_t ph = pair_hash(from->s, from->bare_len, to->s, to->bare_len), best = 0;
	size_t owner = shard_owner(sm->shard_names, sm->nshards, to->s, to->bare_len);
	struct sm_link *pick = sm->peers && sm->peers[owner] &&
			       sm->peers[owner]->state == SM_LINK_READY ? sm->peers[owner] : NULL;
	struct wire_msg f = *m;

	/* In one process, straight to the owner; else through an edge. */
	for (struct sm_link *l = pick ? NULL : sm->links; l; l = l->next) {
		uint64_t score;

		if (l->state != SM_LINK_READY || l->shard_peer)
			continue;
		score = link_score(ph, l);
		if (!pick || score > best) {
			pick = l;
			best = score;
		}
	}
	if (!pick) {
		bounce(sm, r ? r : remote_get(sm), m, to, from, "service-unavailable");
		return false;
	}
	f.type = WIRE_ROUTE;
	f.sid = 0;
	f.u.stanza.flags = WIRE_STANZA_SHARD;
	f.u.stanza.to = wire_s(to->s, to->len);
	f.u.stanza.from = wire_s(from->s, from->len);
	STAT_INC(sm->stats.shard_out);
	sm_link_send(pick, &f);
	if (!pick->shard_peer)
		sm_adopt_relay_keep(pick, &f);   /* its edge may die holding it (sm/adopt.c) */
	return true;
}

bool sm_remote_send(struct sm *sm, const struct wire_msg *m)
{
	struct sm_remote *r = sm->remote;
	struct rjid to, from;
	struct remote_comp *c;

	if (!rjid_parse(m->u.stanza.to, &to) || !rjid_parse(m->u.stanza.from, &from)) {
		log_debug("stanza for an external entity not routable: bad address", "kind=%s",
			  sm_kind_name(m->u.stanza.kind));
		return false;
	}
	if (sm_muc_domain(sm, to.dom, to.dom_len)) {
		/* A room (or the service): on the shard its bare JID hashes to. */
		if (!to.local || sm_muc_owns(sm, to.s, to.bare_len)) {
			sm_muc_in(sm, from.s, from.len, m);
			return true;
		}
		return shard_out(sm, r, m, &to, &from);
	}
	if (sm_pubsub_domain(sm, to.dom, to.dom_len)) {
		/* The service: on the shard its domain hashes to. */
		if (sm_muc_owns(sm, to.dom, to.dom_len)) {
			sm_pubsub_in(sm, from.s, from.len, m);
			return true;
		}
		return shard_out(sm, r, m, &to, &from);
	}
	if (sm_upload_domain(sm, to.dom, to.dom_len)) {
		sm_upload_in(sm, from.s, from.len, m);   /* any shard answers */
		return true;
	}
	if (sm_domain_served(sm, to.dom, to.dom_len)) {
		if (to.local && !sm_owns(sm, to.s, to.bare_len))
			return shard_out(sm, r, m, &to, &from);
		log_warn("stanza for a served domain handed to the external router, dropped",
			 "to=\"%s\"", to.s);
		return false;
	}
	c = comp_match(r, to.dom, to.dom_len);
	if (c && c->link) {
		route_out(c->link, m, &to, &from);
		return true;
	}
	if (c) {
		bounce(sm, remote_get(sm), m, &to, &from, "service-unavailable");
		return false;
	}
	if (r && r->ns2s) {
		route_out(s2s_pick(r, &from, &to), m, &to, &from);
		return true;
	}
	bounce(sm, remote_get(sm), m, &to, &from, "remote-server-not-found");
	return false;
}

/* ---- inbound ------------------------------------------------------------ */

/* From another shard (through the edge on link l): its sender is an account
 * of that shard or the domain, its target one of ours. */
static void shard_in(struct sm *sm, struct sm_link *l, const struct wire_msg *m,
		     const struct rjid *from)
{
	struct sm_route_to to;
	struct rjid t;
	bool tok = rjid_parse(m->u.stanza.to, &t);

	/* A shard's question or answer (sm/gather.c): from the server itself,
	 * which no account can send from. */
	if (!from->local && !from->resource && sm_domain_served(sm, from->dom, from->dom_len) &&
	    sm_gather_in(sm, m)) {
		STAT_INC(sm->stats.shard_in);
		return;
	}
	/* A room of ours, from an account or a room of that shard. */
	if (tok && sm_muc_domain(sm, t.dom, t.dom_len) && t.local &&
	    sm_muc_owns(sm, t.s, t.bare_len) && sm_domain_served(sm, from->dom, from->dom_len) &&
	    from->local && !sm_owns(sm, from->s, from->bare_len)) {
		STAT_INC(sm->stats.shard_in);
		sm_muc_in(sm, from->s, from->len, m);
		return;
	}
	/* The PubSub service, ours, from an account of that shard. */
	if (tok && sm_pubsub_domain(sm, t.dom, t.dom_len) && !t.local &&
	    sm_muc_owns(sm, t.dom, t.dom_len) && sm_domain_served(sm, from->dom, from->dom_len) &&
	    from->local && !sm_owns(sm, from->s, from->bare_len)) {
		STAT_INC(sm->stats.shard_in);
		sm_pubsub_in(sm, from->s, from->len, m);
		return;
	}
	if ((sm_muc_domain(sm, from->dom, from->dom_len) && from->local &&
	     !sm_muc_owns(sm, from->s, from->bare_len)) ||
	    (sm_pubsub_domain(sm, from->dom, from->dom_len) && !from->local &&
	     !sm_muc_owns(sm, from->dom, from->dom_len)))
		;   /* a room or the PubSub service of that shard to one of our accounts: checked below */
	else if (!sm_domain_served(sm, from->dom, from->dom_len) ||
	    (from->local && sm_owns(sm, from->s, from->bare_len))) {
		log_warn("cross-shard stanza from an address not of another shard dropped", "link=%u "
			 "from=\"%s\"", l->id, from->s);
		return;
	}
	sm_route_to_parse(sm, m->u.stanza.to, &to);
	if (!to.valid || !to.served || !to.has_local) {
		log_warn("cross-shard stanza for an account not of this shard dropped", "link=%u "
			 "from=\"%s\"", l->id, from->s);
		return;
	}
	STAT_INC(sm->stats.shard_in);
	sm_route_replay(sm, from->s, from->len, m);
}

void sm_remote_in(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_remote *r = sm->remote;
	struct sm_route_to to;
	struct remote_comp *c;
	struct rjid from;
	int kind = m->u.stanza.kind;

	if (kind != WIRE_KIND_MESSAGE && kind != WIRE_KIND_PRESENCE && kind != WIRE_KIND_IQ) {
		log_warn("external stanza of unknown kind dropped", "link=%u kind=%u", l->id, kind);
		return;
	}
	if (!rjid_parse(m->u.stanza.from, &from)) {
		log_warn("external stanza without a valid from dropped", "link=%u", l->id);
		return;
	}
	if (m->u.stanza.flags & WIRE_STANZA_SHARD) {
		shard_in(sm, l, m, &from);
		return;
	}
	if (sm_domain_served(sm, from.dom, from.dom_len)) {
		log_warn("external stanza from a served domain dropped", "link=%u from=\"%s\"", l->id,
			 from.s);
		return;
	}
	/* A component's JID comes on its link; an error from it may come on
	 * any link: the edge that could not deliver a stanza to it answers
	 * for it, and its link may have said DOWN first. */
	c = comp_match(r, from.dom, from.dom_len);
	if (c ? c->link != l && !sm_ws_is(m->u.stanza.type, "error") : !l->s2s) {
		log_warn("external stanza from a domain this link does not carry dropped",
			 "link=%u from=\"%s\"", l->id, from.s);
		return;
	}
	sm_route_to_parse(sm, m->u.stanza.to, &to);
	if (!to.valid) {
		log_warn("external stanza without a valid to dropped", "link=%u from=\"%s\"", l->id,
			 from.s);
		return;
	}
	if (!to.served) {
		struct rjid t;

		if (c || (rjid_parse(m->u.stanza.to, &t) && (sm_muc_domain(sm, t.dom, t.dom_len) ||
							       sm_pubsub_domain(sm, t.dom, t.dom_len) ||
							       sm_upload_domain(sm, t.dom, t.dom_len))))
			sm_remote_send(sm, m);     /* a component talks to another entity; our rooms */
		else
			log_warn("external stanza for a domain we do not serve dropped",
				 "link=%u from=\"%s\" to=\"%s\"", l->id, from.s, to.full);
		return;
	}
	sm_route_replay(sm, from.s, from.len, m);
}
