/*
 * returned — XEP-0198 §4 at the session server: when a session with stream
 * management ends, its edge hands back the stanzas the client never
 * acknowledged (WIRE_STANZA with WIRE_STANZA_RETURNED, sent on that session
 * before its SESSION_CLOSE; raw is the stanza as it was written to the
 * client, `to` its full JID).  Each is treated as undeliverable to that full
 * JID (RFC 6121 §8.5.3.2.1, §8.5.1), the session itself excluded:
 *   message chat / normal  -> the account's best other available resource
 *                             (tracked again), else offline storage; a
 *                             carbon copy or an archive query result (made
 *                             for that resource alone) is dropped;
 *   message groupchat      -> <service-unavailable/> to the sender;
 *   message headline/error -> dropped;
 *   iq get / set           -> <service-unavailable/> to the sender;
 *   iq result / error, presence -> dropped.
 * Messages the session server tracked itself (WIRE_STANZA_TRACK) are not
 * returned by the edge: they are re-routed by the delivery tracking in sm.c.
 * An edge sends returned stanzas again to a restarted shard (its copies
 * until confirmed, sm.c "Confirmations"): their session is unknown there,
 * and the stanza's `to` names the addressee, which must be ours.
 */
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xmlstage.h"
#include "sm/sm_int.h"

/* A NUL-terminated copy of an attribute value that is a JID or an id. */
static bool copy_attr(const struct xs_str *v, char *out, size_t cap)
{
	if (v->len >= cap)
		return false;
	memcpy(out, v->p, v->len);
	out[v->len] = '\0';
	return true;
}

static bool ns_starts(const struct xs_str *ns, const char *prefix)
{
	size_t n = strlen(prefix);

	return ns->len >= n && memcmp(ns->p, prefix, n) == 0;
}

/* The canonical bare JID of the addressee of a returned stanza whose session
 * is gone (a shard restarted since): one of ours, or false. */
static bool addressee(struct sm *sm, const struct xs_stanza *st, char *bare, size_t cap)
{
	struct jid_view v;
	int n;

	if (st->to.len > JID_MAX || jid_parse(st->to.p, st->to.len, &v) < 0 || !v.local_len ||
	    (n = jid_canon(&v, false, bare, cap)) < 0)
		return false;
	return sm_owns(sm, bare, (size_t)n);
}

void sm_returned(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	const void *raw = m->u.stanza.raw.p;
	size_t len = m->u.stanza.raw.len;
	struct xs_stanza st;
	char from[JID_MAX + 1], id[1024], bare[JID_MAX + 1], to[JID_MAX + 1];
	const char *full;
	struct sm_user *u;
	int type;

	if ((s && (!s->full || !s->user)) ||
	    xmlstage_stanza(sm->xs, "", 0, raw, len, &st) != XMLSTAGE_OK ||
	    (!s && (!addressee(sm, &st, bare, sizeof(bare)) || !copy_attr(&st.to, to, sizeof(to))))) {
		log_debug("returned stanza dropped", "sid=%llu", (unsigned long long)m->sid);
		return;
	}
	/* Its session, or (sent again after a restart) the JID it was for. */
	full = s ? s->full : to;
	u = s ? s->user : sm_user_find(sm, bare, strlen(bare));
	if (u && u->state != SM_USER_READY)
		u = NULL;
	type = sm_route_type_parse(m->u.stanza.kind, wire_s(st.type.p, st.type.len));
	if (m->u.stanza.kind == WIRE_KIND_MESSAGE) {
		struct sm_session *other;

		if (type == SM_RT_GROUPCHAT) {
			if (copy_attr(&st.from, from, sizeof(from)) && copy_attr(&st.id, id, sizeof(id)) && from[0])
				sm_route_bounce(sm, from, WIRE_KIND_MESSAGE, id, full, "service-unavailable");
			return;
		}
		if (type != SM_RT_CHAT && type != SM_RT_NORMAL && type != SM_RT_NONE)
			return;     /* headline, error: silently ignored */
		/* Copies made for this resource alone (XEP-0280 carbons, XEP-0313
		 * query results): the original is delivered or archived elsewhere. */
		if (ns_starts(&st.child_ns, "urn:xmpp:carbons:") || ns_starts(&st.child_ns, "urn:xmpp:mam:"))
			return;
		other = u ? sm_offline_target(u, s) : NULL;
		if (other && sm_route_offline(sm, other, 0, raw, len) == 0)
			return;
		sm_route_requeue(sm, s ? s->bare : bare, raw, len);
		return;
	}
	if (m->u.stanza.kind == WIRE_KIND_IQ && (type == SM_RT_GET || type == SM_RT_SET) &&
	    copy_attr(&st.from, from, sizeof(from)) && copy_attr(&st.id, id, sizeof(id)) && from[0])
		sm_route_bounce(sm, from, WIRE_KIND_IQ, id, full, "service-unavailable");
}
