/*
 * route — see route.h.
 */
#include "core/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/component.h"
#include "core/link.h"
#include "core/log.h"
#include "core/rtx.h"
#include "core/s2s.h"
#include "core/xmpp.h"
#include "parser/xmltag.h"

void route_component_state(struct worker *w, size_t k, bool up)
{
	const char *name = w->cfg->components[k].name;
	struct wire_msg m = { .type = WIRE_DOMAIN };

	m.u.domain.op = up ? WIRE_DOMAIN_UP : WIRE_DOMAIN_DOWN;
	m.u.domain.domain = wire_s(name, strlen(name));
	/* Every shard routes to components. */
	for (uint16_t i = 0; i < w->nlinks; i++)
		if (w->links[i].up)
			link_send(&w->links[i], &m);
}

void route_link_up(struct link *l)
{
	struct worker *w = l->w;

	for (size_t k = 0; k < w->cfg->ncomponents; k++) {
		struct wire_msg m = { .type = WIRE_DOMAIN };
		const char *name = w->cfg->components[k].name;

		m.u.domain.op = component_connected(w, k) ? WIRE_DOMAIN_UP : WIRE_DOMAIN_DOWN;
		m.u.domain.domain = wire_s(name, strlen(name));
		link_send(l, &m);
	}
	if (w->cfg->s2s.enabled) {
		struct wire_msg m = { .type = WIRE_DOMAIN };
		m.u.domain.op = WIRE_DOMAIN_S2S;
		link_send(l, &m);
	}
}

int route_component(const struct config *cfg, const char *dom, size_t n)
{
	int best = -1;
	size_t best_len = 0;

	/* The longest name wins: with irc.example and x.irc.example both
	 * configured, a.x.irc.example is the second's (as in the session
	 * server). */
	for (size_t k = 0; k < cfg->ncomponents; k++) {
		const char *name = cfg->components[k].name;
		size_t len = strlen(name);
		if ((n == len ? memcmp(dom, name, n) == 0
		     : n > len && dom[n - len - 1] == '.' && memcmp(dom + n - len, name, len) == 0) &&
		    len > best_len) {
			best = (int)k;
			best_len = len;
		}
	}
	return best;
}

/* The domain part of a JID as sent (no validation beyond finding it). */
static struct wire_str jid_domain_part(struct wire_str j)
{
	const uint8_t *p = j.p, *end = j.p + j.len, *at, *slash;

	slash = memchr(p, '/', j.len);
	if (slash)
		end = slash;
	at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	return wire_s(p, (size_t)(end - p));
}

static void bounce(struct worker *w, int kind, struct wire_str type, struct wire_str to,
		   struct wire_str from, struct wire_str id, const char *cond, uint8_t flags);

/* A stanza between users of two shards (docs/protocol.md, "Shards"): on to
 * the shard that owns its `to`, as it came. */
static void route_shard(struct link *from, const struct wire_msg *m)
{
	struct worker *w = from->w;
	struct link *l = link_of_jid(w, m->u.stanza.to.p, m->u.stanza.to.len);

	/* Its own shard: the edge and that shard disagree on the shard set
	 * while it changes (core/members.h); bounced like an owner that is
	 * down, never dropped in silence. */
	STAT_INC(w->st.shard_relayed);
	if (l != from && l->up && rtx_send(l, m, NULL, 0, RTX_RELAYED) == 0)
		return;   /* kept until the owner confirms it: sent again if it restarts */
	/* The owner is down: its sender hears so (RFC 6120 §8.3.3.6), as for
	 * any stanza that cannot be delivered; lost presence is not answered. */
	STAT_INC(w->st.shard_relay_failed);
	log_warn("cross-shard stanza bounced: the owner's link is down", "worker=%d shard=%u to=%.*s",
		 w->id, l->shard, (int)m->u.stanza.to.len, m->u.stanza.to.p);
	bounce(w, m->u.stanza.kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
	       m->u.stanza.id, "internal-server-error", WIRE_STANZA_SHARD);
}

void route_from_sm(struct link *from, const struct wire_msg *m)
{
	struct worker *w = from->w;
	struct wire_str d = jid_domain_part(m->u.stanza.to);
	int k;

	if (m->u.stanza.flags & WIRE_STANZA_SHARD) {
		route_shard(from, m);
		return;
	}
	k = route_component(w->cfg, (const char *)d.p, d.len);
	if (k >= 0) {
		if (!component_deliver(w, (size_t)k, m))
			route_bounce(w, m->u.stanza.kind, m->u.stanza.type, m->u.stanza.to,
				     m->u.stanza.from, m->u.stanza.id, "service-unavailable");
	} else if (w->cfg->s2s.enabled) {
		s2s_deliver(w, m);
	} else {
		route_bounce(w, m->u.stanza.kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
			     m->u.stanza.id, "remote-server-not-found");
	}
}

int route_kind(const struct xs_stanza *s)
{
	return xs_streq(&s->local, "message") ? WIRE_KIND_MESSAGE
	       : xs_streq(&s->local, "presence") ? WIRE_KIND_PRESENCE
	       : xs_streq(&s->local, "iq") ? WIRE_KIND_IQ : 0;
}

int route_to_sm(struct worker *w, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	static const struct xmltag_attr no_ns = { "xmlns", NULL };
	struct wire_msg m = { .type = WIRE_ROUTE };
	struct link *l;
	size_t len;

	len = xmltag_rewrite((const char *)p, n, &no_ns, 1, w->stamp, w->stamp_cap);
	if (len > w->stamp_cap) {
		char *nb = realloc(w->stamp, len + 1024);
		if (!nb)
			return -1;
		w->stamp = nb;
		w->stamp_cap = len + 1024;
		len = xmltag_rewrite((const char *)p, n, &no_ns, 1, w->stamp, w->stamp_cap);
	}
	if (len == 0)
		return -1;
	m.u.stanza.kind = (uint8_t)route_kind(s);
	m.u.stanza.type = wire_s(s->type.p, s->type.len);
	m.u.stanza.to = wire_s(s->to.p, s->to.len);
	m.u.stanza.from = wire_s(s->from.p, s->from.len);
	m.u.stanza.id = wire_s(s->id.p, s->id.len);
	m.u.stanza.ns = wire_s(s->child_ns.p, s->child_ns.len);
	m.u.stanza.raw = wire_s(w->stamp, len);
	l = link_of_jid(w, (const uint8_t *)s->to.p, s->to.len);
	return !l->up || link_send(l, &m) < 0 ? -1 : 0;
}

static const char *error_type(const char *cond)
{
	return !strcmp(cond, "remote-server-timeout") || !strcmp(cond, "resource-constraint") ||
	       !strcmp(cond, "internal-server-error") ? "wait" : "cancel";
}

void route_bounce(struct worker *w, int kind, struct wire_str type, struct wire_str to,
		  struct wire_str from, struct wire_str id, const char *cond)
{
	bounce(w, kind, type, to, from, id, cond, 0);
}

/* The bounce of flags WIRE_STANZA_SHARD comes from an account of ours on
 * another shard: the sender's shard takes it as from a shard. */
static void bounce(struct worker *w, int kind, struct wire_str type, struct wire_str to,
		   struct wire_str from, struct wire_str id, const char *cond, uint8_t flags)
{
	static const char *const names[] = { "", "message", "presence", "iq" };
	struct wire_msg m = { .type = WIRE_ROUTE };
	struct link *l = link_of_jid(w, from.p, from.len);   /* the bounce is for the sender */
	char *eto, *efrom, *eid, *buf = NULL;
	int n;

	if ((type.len == 5 && memcmp(type.p, "error", 5) == 0) || from.len == 0 || kind < 1 ||
	    kind > 3)
		return;
	/* Nor for an iq result (RFC 6120 §8.2.3: no answer to a result). */
	if (kind == WIRE_KIND_IQ && type.len == 6 && memcmp(type.p, "result", 6) == 0)
		return;
	/* Presence is not answered when lost (RFC 6121 §4.6.2, §4.3: broadcasts,
	 * probes), except a subscription request, whose sender waits for one. */
	if (kind == WIRE_KIND_PRESENCE && !(type.len == 9 && memcmp(type.p, "subscribe", 9) == 0))
		return;
	eto = xmpp_esc_dup((const char *)to.p, to.len);
	efrom = xmpp_esc_dup((const char *)from.p, from.len);
	eid = xmpp_esc_dup((const char *)id.p, id.len);
	if (!eto || !efrom || !eid)
		goto out;
	n = asprintf(&buf, "<%s type='error'%s%s%s from='%s' to='%s'><error type='%s'><%s xmlns='"
		     NS_STANZAS "'/></error></%s>", names[kind], id.len ? " id='" : "", eid,
		     id.len ? "'" : "", eto, efrom, error_type(cond), cond, names[kind]);
	if (n <= 0) {
		buf = NULL;
		goto out;
	}
	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.flags = flags;
	m.u.stanza.type = wire_s("error", 5);
	m.u.stanza.to = from;
	m.u.stanza.from = to;
	m.u.stanza.id = id;
	m.u.stanza.raw = wire_s(buf, (size_t)n);
	if (!l->up || link_send(l, &m) < 0)
		log_warn("bounce lost: the session server link is down", "to=%.*s cond=%s",
			 (int)from.len, from.p, cond);
	else
		log_debug("stanza bounced", "from=%.*s to=%.*s cond=%s", (int)from.len, from.p,
			  (int)to.len, to.p, cond);
out:
	free(buf);
	free(eto);
	free(efrom);
	free(eid);
}
