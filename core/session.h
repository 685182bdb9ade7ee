/*
 * session — the native backend's session objects and the worker's table of
 * them (types in worker-t.h).  A session's id is what the session server
 * knows: (generation << 32) | index, so frames for a freed session are
 * recognised and dropped.  Lookups are O(1); the table grows by doubling.
 */
#ifndef XEDGE_SESSION_H
#define XEDGE_SESSION_H

#include "core/worker-t.h"

/* A new session carried by c (c->sess is set), or by no connection yet (c
 * NULL: a session arriving from another worker, core/smacks.c).  NULL when
 * out of memory. */
struct session *session_new(struct worker *w, struct conn *c);

/* Free s and its strings; c->sess is cleared. */
void session_free(struct worker *w, struct session *s);

/* The one place a session's state changes; an illegal transition is logged
 * and refused (false). */
bool session_set_state(struct session *s, int state);

/* Does the session server know this session (SESSION_OPEN sent, not closed)? */
static inline bool session_announced(const struct session *s)
{
	return s->state >= SS_OPEN && s->state < SS_CLOSED;
}

/* The live session with this id, or NULL. */
struct session *session_by_id(struct worker *w, uint64_t id);

/* Every live session, for walks (link down); stops early when fn returns false. */
void session_each(struct worker *w, bool (*fn)(struct session *s, void *arg), void *arg);

void session_table_free(struct worker *w);

#endif
