/*
 * worker — one edge worker thread: an io_uring ring, its listeners, its
 * connections (accepted and outbound), its timer wheel, its sessions and its
 * link to the session server.  Types are in worker-t.h.
 *
 * Module split:
 *   worker.c      the ring: accept, connect, multishot recv, sends, closes,
 *                 timers, pausing, the loop
 *   xprt_*.c      transports: TLS, PROXY header, WebSocket (xprt.h)
 *   xmpp.c        the stream negotiation shared by roles (xmpp.h)
 *   c2s.c         the c2s role
 *   be_native.c   the native backend: SASL at the edge, bind, the wire
 *                 protocol to session servers; session.c its session objects
 *   be_upstream.c the upstream backend: a relayed stream per client
 *   link.c        the worker's link to the session server (link.h)
 */
#ifndef XEDGE_WORKER_H
#define XEDGE_WORKER_H

#include <string.h>

#include "core/worker-t.h"

int worker_start(struct worker *w);     /* spawns the thread; waits for its set-up */
void worker_post(struct worker *w, struct io_uring *from, int cmd);
uint64_t worker_ms(void);

/* An SQE, or NULL when the submission queue stays full even after a submit
 * (the caller treats it like any failed operation). */
struct io_uring_sqe *worker_sqe(struct worker *w);

const char *conn_state_str(int s);
void conn_send(struct conn *c, const void *data, size_t len); /* queue wire bytes */
void conn_flush_later(struct conn *c);
void conn_timer(struct conn *c, uint64_t deadline);
void conn_release(struct conn *c);      /* start the socket close (after the last bytes) */
void conn_pause(struct conn *c, int why);  /* stop reading (PAUSE_*) */
void conn_resume(struct conn *c, int why);
bool conn_rate_ok(struct conn *c, size_t bytes, unsigned stanzas); /* charge; false: paused */
size_t conn_queued(const struct conn *c);  /* output not yet on the wire, bytes */
/* Everything written to c so far has been written to its socket: no send in
 * flight, nothing queued at any layer, and no send failed (a failure resets
 * the queues, which is not "written"). */
bool conn_drained(const struct conn *c);

/* The client's address is known (socket or PROXY header): apply the per-IP
 * limits.  false: refused (the connection is closing). */
bool conn_admit(struct conn *c);

/*
 * Open an outbound TCP connection to addr (which must stay valid until the
 * connect completes) on this worker's ring; it ends up in a direct
 * descriptor like an accepted one.  The new connection is in CS_TRANSPORT
 * with the given role; role->connected(c, res) runs when the connect
 * completed (res 0 or -errno; on failure the connection is already
 * closing).  Returns NULL with -errno in *err when no socket can be made.
 */
struct conn *conn_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
			  const struct role_ops *role, int *err);

/* Metrics (struct wstats): move c's connection gauge to state `to` and set it. */
static inline void conn_set_state_counted(struct conn *c, int to)
{
	STAT_ADD(c->w->st.conns[c->kind][c->state], (uint64_t)-1);
	STAT_INC(c->w->st.conns[c->kind][to]);
	c->state = (uint8_t)to;
}

/* The WIRE_KIND_* of a stanza from its first bytes (0: not message, presence
 * or iq, e.g. a nonza); prefixed names count as 0. */
static inline int stanza_kind_of(const uint8_t *p, size_t n)
{
	if (n > 3 && p[1] == 'm' && n > 8 && !memcmp(p + 1, "message", 7))
		return WIRE_KIND_MESSAGE;
	if (n > 3 && p[1] == 'p' && n > 9 && !memcmp(p + 1, "presence", 8))
		return WIRE_KIND_PRESENCE;
	if (n > 3 && p[1] == 'i' && p[2] == 'q' && (p[3] == ' ' || p[3] == '>' || p[3] == '/'))
		return WIRE_KIND_IQ;
	return 0;
}

/* Count one stanza (or any top-level element: kind 0) in (dir 0) or out (1) on c. */
static inline void conn_count_stanza(struct conn *c, int dir, int kind, size_t bytes)
{
	STAT_INC(c->w->st.stanzas[c->kind][dir][kind]);
	STAT_ADD(c->w->st.stanza_bytes[c->kind][dir][kind], bytes);
}

#endif
