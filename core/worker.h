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

#endif
