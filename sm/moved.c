/*
 * moved — XEP-0198 resumption on another edge worker, at the session server
 * (WIRE_SESSION_MOVE, docs/protocol.md).  Each edge worker has its own link,
 * and a session is known by (link, sid).  When a client resumes on another
 * worker than the one holding its detached session, the new worker takes the
 * session's state over (core/smacks.c) and sends SESSION_MOVE on its own
 * link: "the bound session with this full JID and old sid continues here as
 * sid".  The session keeps everything else (presence, roster interest,
 * tracked deliveries, credit, byte counts): the client never left.
 *
 * Ordering: the old link gets WIRE_SESSION_CLOSE(old sid, MOVED) before the
 * session is re-keyed, so every frame sent for the old sid precedes that
 * marker there; the old worker forwards them to the new one and ends with
 * the marker (the new worker holds live frames until then).  A move that
 * names no such session (it ended meanwhile: kicked, replaced) is answered
 * with SESSION_CLOSE(sid, KICKED) on the new link.
 */
#include <inttypes.h>
#include <string.h>

#include "core/log.h"
#include "sm/sm_int.h"

void sm_moved(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *t = sm_session_find(sm, (const char *)m->u.move.jid.p, m->u.move.jid.len);
	struct wire_msg r = { .type = WIRE_SESSION_CLOSE };

	if (!t || t->sid != m->u.move.old_sid || t->state != SM_SESS_BOUND || t->orphan_until ||
	    sm_session_by_sid(l, m->sid)) {
		r.sid = m->sid;
		r.u.close.reason = WIRE_CLOSE_KICKED;
		sm_link_send(l, &r);
		log_info("session move refused: no such session", "link=%u sid=%" PRIu64 " old_sid=%" PRIu64, l->id,
			 m->sid, m->u.move.old_sid);
		return;
	}
	r.sid = t->sid;
	r.u.close.reason = WIRE_CLOSE_MOVED;
	sm_link_send(t->link, &r);
	log_info("session moved", "from_link=%u to_link=%u old_sid=%" PRIu64 " sid=%" PRIu64 " jid=\"%s\"",
		 t->link->id, l->id, t->sid, m->sid, t->full);
	sm_session_unlink(t->link, t);
	t->link = l;
	t->sid = m->sid;
	sm_session_link(l, t);
}
