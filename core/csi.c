/*
 * csi — XEP-0352 at the edge (csi.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/csi.h"
#include "core/xmpp.h"
#include "parser/xmlstage.h"

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

struct csi_item {
	uint8_t kind;            /* WIRE_KIND_PRESENCE or _MESSAGE */
	bool track;              /* WIRE_STANZA_TRACK: report it once written */
	size_t from_len, len;
	uint8_t *raw;            /* from (from_len bytes), then the stanza (len bytes) */
};

struct csi {
	bool inactive;
	uint32_t n;
	size_t bytes;
	struct csi_item items[CSI_HOLD_ITEMS];
};

static void item_drop(struct csi *k, uint32_t i)
{
	k->bytes -= k->items[i].len;
	free(k->items[i].raw);
	memmove(&k->items[i], &k->items[i + 1], (k->n - i - 1) * sizeof(k->items[0]));
	k->n--;
}

void csi_flush(struct conn *c, csi_out_fn out)
{
	struct csi *k = c->sess ? c->sess->csi : NULL;

	if (!k)
		return;
	for (uint32_t i = 0; i < k->n; i++) {
		struct csi_item *it = &k->items[i];
		out(c, it->raw + it->from_len, it->len, it->kind, it->track);
		free(it->raw);
	}
	k->n = 0;
	k->bytes = 0;
}

void csi_free(struct session *s)
{
	struct csi *k = s->csi;

	if (!k)
		return;
	for (uint32_t i = 0; i < k->n; i++)
		free(k->items[i].raw);
	free(k);
	s->csi = NULL;
}

int csi_element(struct conn *c, const struct xs_stanza *s, csi_out_fn out)
{
	struct session *ss = c->sess;
	bool inactive;

	if (xs_streq(&s->local, "inactive"))
		inactive = true;
	else if (xs_streq(&s->local, "active"))
		inactive = false;
	else {
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (inactive && !ss->csi) {
		ss->csi = calloc(1, sizeof(*ss->csi));
		if (!ss->csi)
			return GO_ON;   /* no memory to hold anything: stay active */
	}
	if (!ss->csi)
		return GO_ON;
	ss->csi->inactive = inactive;
	if (!inactive)
		csi_flush(c, out);
	return GO_ON;
}

/* Presence or chat states that may wait; anything else may not. */
static bool holdable(const struct wire_msg *m)
{
	const struct wire_str *t = &m->u.stanza.type;

	if (m->u.stanza.kind == WIRE_KIND_PRESENCE)
		return t->len == 0 || (t->len == 11 && !memcmp(t->p, "unavailable", 11));
	if (m->u.stanza.kind != WIRE_KIND_MESSAGE || (t->len && !(t->len == 4 && !memcmp(t->p, "chat", 4))))
		return false;
	return m->u.stanza.ns.len == sizeof(NS_CHATSTATES) - 1 &&
	       !memcmp(m->u.stanza.ns.p, NS_CHATSTATES, m->u.stanza.ns.len) &&
	       !memmem(m->u.stanza.raw.p, m->u.stanza.raw.len, "<body", 5);
}

bool csi_hold(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;
	struct csi *k = s->csi;
	const struct wire_str *from = &m->u.stanza.from, *raw = &m->u.stanza.raw;
	struct csi_item *it;

	if (!k || !k->inactive || !holdable(m) || k->bytes + raw->len > CSI_HOLD_MAX)
		return false;
	/* The latest of its kind from this sender supersedes what is held. */
	for (uint32_t i = 0; i < k->n; i++)
		if (k->items[i].kind == m->u.stanza.kind && k->items[i].from_len == from->len &&
		    !memcmp(k->items[i].raw, from->p, from->len)) {
			s->rx += k->items[i].len;   /* counted as handed out: see csi.h */
			if (k->items[i].track)
				s->track = true;    /* the session server may forget it */
			item_drop(k, i);
			break;
		}
	if (k->n == CSI_HOLD_ITEMS)
		return false;
	it = &k->items[k->n];
	it->raw = malloc(from->len + raw->len);
	if (!it->raw)
		return false;
	memcpy(it->raw, from->p, from->len);
	memcpy(it->raw + from->len, raw->p, raw->len);
	it->from_len = from->len;
	it->len = raw->len;
	it->kind = m->u.stanza.kind;
	it->track = m->u.stanza.flags & WIRE_STANZA_TRACK;
	k->n++;
	k->bytes += raw->len;
	return true;
}
