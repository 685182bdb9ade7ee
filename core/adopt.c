/*
 * adopt — XEP-0198 resumption on another edge, at the edge (native backend;
 * sm/adopt.c is the session server's half, docs/architecture.md "Shards").
 *
 * An edge tells the session server which of its sessions are resumable
 * (WIRE_SMACKS at <enable resume='true'/>, with the resumption id and max),
 * and how many of the client's stanzas it handled: the session server
 * counts the stanzas it is forwarded, and the edge sends WIRE_SMACKS again,
 * with its h, after a stanza it answered itself (smacks_handled).  So when
 * the edge is killed the session server knows the session, keeps it
 * (orphaned) for max seconds, and knows the h a resumption must report.
 *
 * Another edge reached by <resume previd=.../> with an id it does not hold
 * and that names another edge (smacks.c on_resume) asks the shard owning
 * the account (the shard the stream's own session is open and
 * authenticated on) with WIRE_ADOPT on that session; the stream waits
 * (CF_WAIT_SM, timeouts.session_server).  The answer (adopt_resp):
 *   OK       the session is bound here with the full JID it had; the client
 *            gets <resumed previd h/> with the session server's h; the
 *            client's own h cannot be matched against anything here, so what
 *            the session server sends next (the messages it never had
 *            confirmed written, again) is new output, counted from the
 *            client's h; stream management goes on here under the same id.
 *   refused  the edge the id names, when it is a peer (see-other-host: the
 *            session is still there), else <failed><item-not-found/>.
 * An answer that does not come in time fails the resumption and ends the
 * stream: its session is closed at the session server (an adoption
 * answered late ends with it; nothing is lost, the session server
 * re-routes what it held).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/log.h"
#include "core/session.h"
#include "core/smacks.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "parser/jid.h"

void adopt_announce(struct worker *w, const struct session *s, const char *id, uint32_t max, uint32_t h)
{
	struct wire_msg m = { .type = WIRE_SMACKS, .sid = s->id };

	if (!session_announced(s))
		return;
	m.u.smacks.max = max;
	m.u.smacks.h = h;
	m.u.smacks.previd = wire_s(id, strlen(id));
	link_send(&w->links[s->shard], &m);
}

bool adopt_start(struct conn *c, const char *previd, size_t n, uint32_t h)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct wire_msg m = { .type = WIRE_ADOPT };
	struct link *l;
	char bare[JID_MAX + 1];
	int bn;

	if (!s || s->state != SS_AUTHED || !s->user)
		return false;
	l = &w->links[s->shard];
	bn = snprintf(bare, sizeof(bare), "%s@%s", s->user, c->domain);
	if (!link_usable(l) || bn <= 0 || (size_t)bn >= sizeof(bare) || !smacks_adopt_prepare(s, previd, n, h))
		return false;
	m.sid = s->id;
	m.u.adopt.previd = wire_s(previd, n);
	m.u.adopt.jid = wire_s(bare, (size_t)bn);
	if (link_send(l, &m) < 0) {
		smacks_free(w, s);
		return false;
	}
	log_debug("resumption of another edge's session: asking its session server", "conn=%u worker=%d user=%s shard=%u",
		  c->idx, w->id, s->user, s->shard);
	xmpp_wait_backend(c, w->cfg->timeouts.session_server);
	return true;
}

void adopt_resp(struct conn *c, const struct wire_msg *m)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	const struct wire_str *jid = &m->u.adopt_resp.jid;

	if (!s || !smacks_adopt_pending(s) || !(c->flags & CF_WAIT_SM)) {
		log_warn("adoption answer nobody waits for", "conn=%u worker=%d", c->idx, w->id);
		return;
	}
	c->flags &= ~CF_WAIT_SM;
	if (m->u.adopt_resp.status != WIRE_OK || jid->len == 0 || jid->len > JID_MAX ||
	    memchr(jid->p, 0, jid->len)) {
		if (smacks_adopt_refused(c, "not held by its session server either"))
			xmpp_resume(c);
		return;
	}
	s->jid = strndup((const char *)jid->p, jid->len);
	if (!s->jid || !session_set_state(s, SS_BOUND) || !xmpp_set_state(c, CS_SESSION)) {
		xmpp_error(c, "internal-server-error", NULL);
		return;
	}
	c->flags |= CF_BOUND;
	/* A new session for this edge: delivery reports and credit start here. */
	s->rx_origin = s->rx;
	native_grant(w, s, (uint32_t)w->cfg->limits.max_out_bytes);
	conn_timer(c, w->now + w->cfg->timeouts.idle);
	smacks_adopt_done(c, m->u.adopt_resp.h);
	xmpp_resume(c);
}

bool adopt_timeout(struct conn *c)
{
	struct session *s = c->sess;
	bool on;

	if (!s || !smacks_adopt_pending(s))
		return false;
	c->flags &= ~CF_WAIT_SM;
	log_warn("resumption on another edge: the session server did not answer in time", "conn=%u worker=%d after=%us",
		 c->idx, c->w->id, c->w->cfg->timeouts.session_server);
	on = smacks_adopt_refused(c, "its session server did not answer in time");
	native_session_close(c->w, s, WIRE_CLOSE_NORMAL);
	if (on)   /* its session is gone: it could not bind on this stream either */
		xmpp_error(c, "internal-server-error", NULL);
	return true;
}
