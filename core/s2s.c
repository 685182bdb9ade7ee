/*
 * s2s — see s2s.h.
 */
#include "core/s2s.h"

#include "core/route.h"

void s2s_deliver(struct worker *w, const struct wire_msg *m)
{
	route_bounce(w, m->u.stanza.kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
		     m->u.stanza.id, "remote-server-not-found");
}
