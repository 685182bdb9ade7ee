/*
 * smacks — XEP-0198 Stream Management held at the edge (native backend).
 *
 * Once a bound client sends <enable/>, its session (session.h) carries a
 * `struct smacks`: the count of client stanzas handled (h, modulo 2^32), the
 * count of stanzas sent to it, and the unacknowledged ones, as the raw bytes
 * written, in order, bounded by stream_management.max_unacked bytes.  <r/>
 * is answered with <a h/>; the edge asks for acks itself (<r/> after
 * SMACKS_R_EVERY stanzas, or SMACKS_R_PERIOD seconds after an unasked one).
 *
 * Resumption: when the connection of a resumable session ends without a
 * closing </stream>, the session is detached (s->c = NULL): it stays bound at
 * the session server, whose stanzas keep going into the unacked queue
 * (credited back at once: a sender is never paused for a client that is
 * away), until `max` seconds pass, the queue passes its bound, or a new
 * stream of the same account sends <resume/> with the session's id, on any
 * worker: a process-wide registry says which worker holds it, and another
 * worker takes the session over (smacks.c, "moving a session between
 * workers"; WIRE_SESSION_MOVE tells the session server).  The id ("previd")
 * is <edge_id>.<worker>.<sid, 16 hex>.<128 random bits, 32 hex>, naming the
 * edge and the worker that issued it: only the random part is secret, and
 * the whole id is compared in constant time.
 *
 * Across edges (core/adopt.c): the session server is told which sessions are
 * resumable and counts their client's stanzas, so when an edge dies it keeps
 * them; a <resume/> with an id this edge does not hold asks the session
 * server, which hands such a session over (<resumed/> with its h, same full
 * JID, the same id registered here); else the edge the id names, if a peer,
 * is where to resume (see-other-host), or <failed/>.
 *
 * A session that ends (clean close, expiry, any error) hands the stanzas it
 * holds unacknowledged back to the session server (XEP-0198 §4): messages
 * and iqs not tracked by delivery reports go back as WIRE_STANZA with
 * WIRE_STANZA_RETURNED (sm/returned.c routes them as undeliverable to that
 * full JID); tracked messages are re-routed by the session server itself,
 * because the delivery reports of an SM session count only what the client
 * acknowledged.  Presence is not returned.
 *
 * Counting: a client stanza is handled once be_native has forwarded or
 * answered it; everything written to the client as a stanza (from the
 * session server or the edge's own answers) is counted and kept, through
 * the hook in xmpp_out().  The worker's sessions with stream management are
 * on one list (w->smk_list) walked once a second by smacks_tick().
 */
#ifndef XEDGE_SMACKS_H
#define XEDGE_SMACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/worker-t.h"

#define NS_SM "urn:xmpp:sm:3"
#define SMACKS_R_EVERY 8      /* stanzas sent before we ask for an ack */
#define SMACKS_R_PERIOD 2     /* seconds an unasked stanza waits for our <r/> */
#define SMACKS_TOKEN 16       /* random bytes in a resumption id */
#define SMACKS_ID_MAX 96      /* a resumption id, NUL included */

/* An element in NS_SM from a client (enable, r, a, resume).  GO_ON, STOP_KEEP,
 * or STOP_DISCARD after a stream error. */
int smacks_element(struct conn *c, const struct xs_stanza *st, const uint8_t *p);

/* The stream's session handled one more client stanza. */
void smacks_handled(struct session *s);
/* The number the client's next stanza will get (core/rtx.h keeps it with
 * the forwarded copy). */
uint32_t smacks_in_next(const struct session *s);

/* xmpp_out() hook: data[0..len) was written to c (or would have been: the
 * peer is gone).  Counts and keeps it when it is a stanza. */
void smacks_out(struct conn *c, const void *data, size_t len);

/* What the next stanza written is (be_native's stanza_out): its WIRE_KIND_*
 * and whether it is tracked by delivery reports.  Edge answers have kind 0. */
void smacks_next(struct session *s, int kind, bool track);

/* native_sent(): delivery reports of an SM session may not count bytes past
 * this (what came before <enable/>): the rest is counted by acks. */
uint64_t smacks_written_cap(const struct session *s, uint64_t rx);

/* The stream of c ended (native_ended): true when its session was detached
 * (c->sess is then NULL and the session lives on), false when it ends. */
bool smacks_detach(struct conn *c, int reason);

/* A frame from the session server for a detached session. */
void smacks_detached_frame(struct worker *w, struct session *s, const struct wire_msg *m);
/* s is detached: no stream, kept for a <resume/>. */
bool smacks_waiting(const struct session *s);

/* The session is ending: hand its unacknowledged stanzas back (XEP-0198 §4). */
void smacks_return(struct worker *w, struct session *s);

/* After a stanza was written to c: when its unacked queue passed
 * max_unacked, the stream ends (<resource-constraint/>); true then. */
bool smacks_over_bound(struct conn *c);

/* Once a second: expire detached sessions, ask for acks, end streams whose
 * queue passed its bound. */
void smacks_tick(struct worker *w);

/* Free the session's stream management state (session_free). */
void smacks_free(struct worker *w, struct session *s);

/* The link to a session server (shard) is lost: the detached sessions it
 * held are gone with it. */
void smacks_link_down(struct link *l);

/* Handovers between workers (smacks.c, "moving a session between workers"):
 * a worker registers at start (before its threads' peers can post to it)
 * and leaves at teardown; its loop drains its inbox every iteration. */
void smacks_worker_start(struct worker *w);
void smacks_worker_stop(struct worker *w);
void smacks_inbox(struct worker *w);

/* native_on_frame(): true when the frame for s was kept to keep order
 * (the session is arriving from another worker: older frames are still
 * being forwarded from there). */
bool smacks_hold(struct worker *w, struct session *s, const struct wire_msg *m);

/* native_timeout(): a stream's <resume/> waited too long for the worker that
 * holds the session: <failed/>; the session, if it comes, waits detached. */
void smacks_join_timeout(struct conn *c);

/* ---- provided by be_native.c ---- */

/* End s at the session server (returns, last delivery report, SESSION_CLOSE). */
void native_session_close(struct worker *w, struct session *s, int reason);
/* Tell the session server what reached the client (WIRE_DELIVERED). */
void native_delivered(struct worker *w, struct session *s);
/* Give the session server back what it spent on s (WIRE_CREDIT). */
void native_credit(struct worker *w, struct session *s);
/* c (authenticated, not bound) takes over the detached session s: c's own
 * unbound session is closed, c is bound to s's JID. */
void native_attach(struct conn *c, struct session *s);
/* Give the session server `bytes` of flow-control credit for s (WIRE_CREDIT). */
void native_grant(struct worker *w, struct session *s, uint32_t bytes);

/* forward() (be_native.c): s's stanza went to the session server. */
void smacks_forwarded(struct session *s);

/* ---- resumption on another edge (core/adopt.c) ---- */
/* A <resume/> naming another edge's session this edge does not hold: ask
 * the session server (WIRE_ADOPT); true when the stream now waits for it. */
bool adopt_start(struct conn *c, const char *previd, size_t n, uint32_t h);
/* native_on_frame(): WIRE_ADOPT_RESP for c's session. */
void adopt_resp(struct conn *c, const struct wire_msg *m);
/* native_timeout(): true when c was waiting for an adoption (handled). */
bool adopt_timeout(struct conn *c);
/* Tell the session server s is resumable under id for max seconds (0: no
 * longer), h client stanzas handled so far (WIRE_SMACKS). */
void adopt_announce(struct worker *w, const struct session *s, const char *id, uint32_t max, uint32_t h);
/* smacks.c for adopt.c: the stream's unbound session s gets a pending state
 * under previd, whose client has had client_h stanzas (false: not an id, or
 * out of memory); is it pending; the adoption succeeded with h: <resumed/>,
 * the state is live and registered under the same id; it was refused: the
 * pending state goes, and the client is sent to the edge its id names
 * (false: stream error sent) or gets <failed/>. */
bool smacks_adopt_prepare(struct session *s, const char *previd, size_t n, uint32_t client_h);
bool smacks_adopt_pending(const struct session *s);
void smacks_adopt_done(struct conn *c, uint32_t h);
bool smacks_adopt_refused(struct conn *c, const char *why);
/* The session server of s is new (a rebind): tell it s is resumable. */
void smacks_reannounce(struct worker *w, struct session *s);

/* ---- core/rebind.c: a shard restart keeps XEP-0198 sessions ---- */

/* forward(): the client's broadcast presence m (stamped), replayed at a rebind. */
void rebind_keep_presence(struct session *s, const struct wire_msg *m);
/* The BIND_RESP of a rebind (s->rebind == 2): carry on, or end the session
 * (a detached one too). */
void rebind_done(struct worker *w, struct session *s, const struct wire_msg *m);

#endif
