/*
 * component — see component.h.
 */
#include "core/component.h"

#include "core/xmpp.h"

bool component_connected(const struct worker *w, size_t k)
{
	return w->components[k] != NULL;
}

bool component_deliver(struct worker *w, size_t k, const struct wire_msg *m)
{
	struct conn *c = w->components[k];

	if (!c || c->state != CS_RELAY)
		return false;
	xmpp_out(c, m->u.stanza.raw.p, m->u.stanza.raw.len);
	w->stat_stanzas_out++;
	return true;
}
