/*
 * session — see session.h.
 */
#include "core/csi.h"
#include "core/session.h"
#include "core/smacks.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rtx.h"

static const char *const sess_state_names[] = { "new", "open", "authed", "bound", "closed" };

#define B(s) (1u << (s))
static const uint32_t sess_legal[] = {
	[SS_NEW] = B(SS_OPEN) | B(SS_CLOSED),
	[SS_OPEN] = B(SS_AUTHED) | B(SS_CLOSED) | B(SS_NEW),   /* NEW: moves to another shard */
	[SS_AUTHED] = B(SS_BOUND) | B(SS_CLOSED),
	[SS_BOUND] = B(SS_CLOSED),
	[SS_CLOSED] = 0,
};

bool session_set_state(struct session *s, int state)
{
	if (state < SS_NEW || state > SS_CLOSED || !(sess_legal[s->state] & B(state))) {
		log_error("illegal session state transition", "sid=%llu from=%s to=%s",
			  (unsigned long long)s->id, sess_state_names[s->state],
			  state >= SS_NEW && state <= SS_CLOSED ? sess_state_names[state] : "?");
		return false;
	}
	s->state = (uint8_t)state;
	return true;
}

static int table_grow(struct worker *w)
{
	uint32_t cap = w->nsessions_cap ? w->nsessions_cap * 2 : 1024;
	struct session **t = realloc(w->sessions, cap * sizeof(*t));
	uint32_t *f;

	if (!t)
		return -1;
	w->sessions = t;
	f = realloc(w->free_sess, cap * sizeof(*f));
	if (!f)
		return -1;
	w->free_sess = f;
	/* New indexes go on the free stack highest first, so low ones are used first. */
	for (uint32_t i = cap; i > w->nsessions_cap; i--) {
		t[i - 1] = NULL;
		f[w->nfree_sess++] = i - 1;
	}
	w->nsessions_cap = cap;
	return 0;
}

struct session *session_new(struct worker *w, struct conn *c)
{
	struct session *s;
	uint32_t idx;

	if (!w->nfree_sess && table_grow(w) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	idx = w->free_sess[--w->nfree_sess];
	if (++w->sess_gen == 0)
		w->sess_gen = 1;
	s->id = ((uint64_t)w->sess_gen << 32) | idx;
	s->c = c;
	w->sessions[idx] = s;
	if (c)
		c->sess = s;
	return s;
}

void session_free(struct worker *w, struct session *s)
{
	uint32_t idx = (uint32_t)s->id;

	if (idx < w->nsessions_cap && w->sessions[idx] == s) {
		w->sessions[idx] = NULL;
		w->free_sess[w->nfree_sess++] = idx;
	}
	if (s->c && s->c->sess == s)
		s->c->sess = NULL;
	rtx_session_gone(w, s);
	smacks_free(w, s);
	free(s->user);
	free(s->jid);
	free(s->presence);
	csi_free(s);
	free(s->bind_id);
	free(s->resource);
	free(s->reg_id);
	free(s);
}

struct session *session_by_id(struct worker *w, uint64_t id)
{
	uint32_t idx = (uint32_t)id;
	struct session *s;

	if (idx >= w->nsessions_cap)
		return NULL;
	s = w->sessions[idx];
	return s && s->id == id ? s : NULL;
}

void session_each(struct worker *w, bool (*fn)(struct session *s, void *arg), void *arg)
{
	for (uint32_t i = 0; i < w->nsessions_cap; i++)
		if (w->sessions[i] && !fn(w->sessions[i], arg))
			return;
}

void session_table_free(struct worker *w)
{
	for (uint32_t i = 0; i < w->nsessions_cap; i++)
		if (w->sessions[i])
			session_free(w, w->sessions[i]);
	free(w->sessions);
	free(w->free_sess);
	w->sessions = NULL;
	w->free_sess = NULL;
	w->nsessions_cap = w->nfree_sess = 0;
}
