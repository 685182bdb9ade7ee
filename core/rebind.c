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
 * delivery reports, and reads resume: no new login, and the client's
 * unacknowledged stanzas are still the edge's to resend (smacks.c).  What
 * the session server had in flight when it died is its own loss.  A session
 * that cannot be bound again ends with <internal-server-error/>.
 */
#include "core/link.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
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

/* The shard of s is back: open, authenticate and bind s there again. */
static void rebind_send(struct worker *w, struct session *s)
{
	struct link *l = &w->links[s->shard];
	struct conn *c = s->c;
	const char *res = strchr(s->jid, '/');
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = s->id };

	m.u.open.flags = (uint8_t)(((c->flags & CF_TLS) ? WIRE_OPEN_TLS : 0) |
				   ((c->flags & CF_DIRECT_TLS) ? WIRE_OPEN_DIRECT_TLS : 0));
	m.u.open.addr = wire_s(c->peer, strlen(c->peer));
	link_send(l, &m);
	m = (struct wire_msg){ .type = WIRE_AUTHED, .sid = s->id };
	m.u.authed.user = wire_s(s->user, strlen(s->user));
	m.u.authed.domain = wire_s(c->domain, strlen(c->domain));
	link_send(l, &m);
	m = (struct wire_msg){ .type = WIRE_BIND_REQ, .sid = s->id };
	m.u.bind_req.user = wire_s(s->user, strlen(s->user));
	m.u.bind_req.domain = wire_s(c->domain, strlen(c->domain));
	m.u.bind_req.resource = wire_s(res ? res + 1 : "", res ? strlen(res + 1) : 0);
	link_send(l, &m);
	s->rebind = 2;
}

static bool link_up_one(struct session *s, void *arg)
{
	const struct link *l = arg;

	if (s->rebind == 1 && s->shard == l->shard && s->c && !(s->c->flags & CF_CLOSED))
		rebind_send(l->w, s);
	return true;
}

void native_link_up(struct link *l)
{
	session_each(l->w, link_up_one, l);
}

/* The answer to rebind_send(): carry on, or end the stream. */
void rebind_done(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;
	size_t tl;

	s->rebind = 0;
	if (m->u.bind_resp.status != WIRE_OK || m->u.bind_resp.jid.len != strlen(s->jid) ||
	    memcmp(m->u.bind_resp.jid.p, s->jid, m->u.bind_resp.jid.len)) {
		log_warn("session not bound again on its restarted shard", "conn=%u jid=%s status=%u",
			 c->idx, s->jid, m->u.bind_resp.status);
		session_set_state(s, SS_CLOSED);
		xmpp_error(c, "internal-server-error", NULL);
		return;
	}
	/* A new session server: its flow control and byte counts start now. */
	s->owed = 0;
	s->rx_origin = s->rx;
	native_grant(c->w, s, (uint32_t)c->w->cfg->limits.max_out_bytes);
	if (s->presence) {
		struct wire_msg p = { .type = WIRE_STANZA, .sid = s->id };

		tl = strlen(s->presence);
		p.u.stanza.kind = WIRE_KIND_PRESENCE;
		p.u.stanza.type = wire_s(s->presence, tl);
		p.u.stanza.to = p.u.stanza.id = p.u.stanza.ns = wire_s("", 0);
		p.u.stanza.from = wire_s(s->jid, strlen(s->jid));
		p.u.stanza.raw = wire_s(s->presence + tl + 1, s->presence_len - tl - 1);
		link_send(&c->w->links[s->shard], &p);
	}
	smacks_reannounce(c->w, s);   /* resumable on another edge (core/adopt.c) */
	STAT_INC(c->w->st.rebinds);
	log_info("session bound again on its restarted shard", "conn=%u jid=%s shard=%u", c->idx, s->jid,
		 s->shard);
	conn_resume(c, PAUSE_REBIND);
}
