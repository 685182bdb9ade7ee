/*
 * rebind — a shard restart under XEP-0198 (docs/architecture.md, "Shards").
 *
 * When a shard goes away, a bound session with XEP-0198 keeps its client
 * (be_native.c's link_down_one: s->rebind = 1, reads paused with
 * PAUSE_REBIND).  Once the shard's link is back (native_link_up) the
 * session is opened, authenticated and bound again there with the same
 * resource (s->rebind = 2); on the answer (rebind_done) the client's last
 * broadcast presence, kept by rebind_keep_presence, is replayed, the new
 * session server gets its flow-control credit and a fresh origin for the
 * delivery reports, the client's stanzas the dead shard never confirmed are
 * sent again (core/rtx.c), and reads resume: no new login, nothing the
 * client saw acknowledged lost.  A detached session (smacks.c: waiting for
 * a <resume/>) is bound again the same way and stays detached.  A session
 * that cannot be bound again ends: <internal-server-error/> to its client,
 * what the client never acknowledged back to the shard.
 */
#include "core/link.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rtx.h"
#include "core/session.h"
#include "core/smacks.h"
#include "core/worker.h"
#include "core/xmpp.h"

/* The client's broadcast presence (stamped, as sent), for a rebind; the
 * type is kept in front of it: "type\0raw". */
void rebind_keep_presence(struct session *s, const struct wire_msg *m)
{
	struct wire_str t = m->u.stanza.type, raw = m->u.stanza.raw;
	char *p;

	if (t.len > 32 || raw.len > 64u * 1024)
		return;
	p = realloc(s->presence, t.len + 1 + raw.len);
	if (!p)
		return;
	memcpy(p, t.p, t.len);
	p[t.len] = '\0';
	memcpy(p + t.len + 1, raw.p, raw.len);
	s->presence = p;
	s->presence_len = (uint32_t)(t.len + 1 + raw.len);
}

/* The shard of s is back: open, authenticate and bind s there again (s may
 * be detached: no stream, waiting for a <resume/>). */
static void rebind_send(struct worker *w, struct session *s)
{
	struct link *l = &w->links[s->shard];
	const char *res = strchr(s->jid, '/'), *dom = strchr(s->jid, '@');
	size_t dlen = dom && res > dom ? (size_t)(res - dom - 1) : 0;
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = s->id };

	if (!res || !dlen) {
		log_error("session not bound again: no full JID", "sid=%llu", (unsigned long long)s->id);
		return;
	}
	dom++;
	m.u.open.flags = s->open_flags;
	m.u.open.addr = s->c ? wire_s(s->c->peer, strlen(s->c->peer)) : wire_s("", 0);
	link_send(l, &m);
	m = (struct wire_msg){ .type = WIRE_AUTHED, .sid = s->id };
	m.u.authed.user = wire_s(s->user, strlen(s->user));
	m.u.authed.domain = wire_s(dom, dlen);
	link_send(l, &m);
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = s->id };
	m.u.bind_req.user = wire_s(s->user, strlen(s->user));
	m.u.bind_req.domain = wire_s(dom, dlen);
	m.u.bind_req.resource = wire_s(res + 1, strlen(res + 1));
	link_send(l, &m);
	s->rebind = 2;
}

static bool link_up_one(struct session *s, void *arg)
{
	const struct link *l = arg;

	if (s->rebind == 1 && s->shard == l->shard &&
	    (s->c ? !(s->c->flags & CF_CLOSED) : smacks_waiting(s)))
		rebind_send(l->w, s);
	return true;
}

void native_link_up(struct link *l)
{
	session_each(l->w, link_up_one, l);
}

/* The answer to rebind_send(): carry on, or end the session. */
void rebind_done(struct worker *w, struct session *s, const struct wire_msg *m)
{
	struct conn *c = s->c;
	size_t tl;

	s->rebind = 0;
	if (m->u.bind_resp.status != WIRE_OK || m->u.bind_resp.jid.len != strlen(s->jid) ||
	    memcmp(m->u.bind_resp.jid.p, s->jid, m->u.bind_resp.jid.len)) {
		log_warn("session not bound again on its restarted shard", "sid=%llu jid=%s status=%u",
			 (unsigned long long)s->id, s->jid, m->u.bind_resp.status);
		/* What its client never acknowledged goes back (rtx.h: kept if need be). */
		native_session_close(w, s, WIRE_CLOSE_ERROR);
		if (c)
			xmpp_error(c, "internal-server-error", NULL);
		else
			session_free(w, s);
		return;
	}
	/* A new session server: its flow control and byte counts start now. */
	s->owed = 0;
	s->rx_origin = s->rx;
	native_grant(w, s, (uint32_t)w->cfg->limits.max_out_bytes);
	if (s->presence) {
		struct wire_msg p = { .type = WIRE_STANZA, .sid = s->id };

		tl = strlen(s->presence);
		p.u.stanza.kind = WIRE_KIND_PRESENCE;
		p.u.stanza.type = wire_s(s->presence, tl);
		p.u.stanza.to = p.u.stanza.id = p.u.stanza.ns = wire_s("", 0);
		p.u.stanza.from = wire_s(s->jid, strlen(s->jid));
		p.u.stanza.raw = wire_s(s->presence + tl + 1, s->presence_len - tl - 1);
		link_send(&w->links[s->shard], &p);
	}
	/* Resumable there too, counted from what was confirmed; then what the
	 * dead one never confirmed, in its order (the last presence among them is
	 * the one just replayed). */
	smacks_reannounce(w, s);   /* (core/adopt.c) */
	rtx_rebound(w, s);
	STAT_INC(w->st.rebinds);
	log_info("session bound again on its restarted shard", "sid=%llu jid=%s shard=%u detached=%d",
		 (unsigned long long)s->id, s->jid, s->shard, !c);
	if (c)
		conn_resume(c, PAUSE_REBIND);
}
