/*
 * members — the shard set of an edge changing while it runs (a SIGHUP with
 * another backend.shards, or backend.discover finding another set in DNS),
 * and the sessions that must move because their owner changed
 * (docs/architecture.md, "Shards": membership).
 *
 * The main thread publishes a set (members_publish): every worker takes the
 * newest one on CTRL_MEMBERS (members_apply), keeps the links of the shards
 * still there, opens links to new ones (looked up and connected by
 * link_tick, never blocking), marks the others leaving, and hashes owners
 * over the new set from then on.  Then every session whose owner changed
 * leaves its old shard by draining:
 *
 *   1. its client's reads pause; WIRE_SESSION_CLOSE goes to the old shard,
 *      then a WIRE_PING carrying MEMBERS_TOKEN and the session's id;
 *   2. the old shard answers the PING after it ended the session and once
 *      what it stored for it (messages not yet written to the client, kept
 *      offline again) is committed (sm/members.c), so when the PONG comes
 *      back (members_pong) every stanza it had for the session has reached
 *      the client or the database, and it takes no more for it (what it
 *      receives for the user afterwards it relays to the new owner);
 *   3. an XEP-0198 session is bound again on the new owner exactly as after
 *      a shard restart (core/rebind.c): no new login, the presence
 *      replayed, unacknowledged stanzas still the edge's to resend; any
 *      other session ends with the stream error <reset/> (RFC 6120
 *      §4.9.3.16, docs/architecture.md says why not system-shutdown or
 *      see-other-host), and its client logs in again, on the new owner.
 *
 * A leaving link closes once no session is on it any more (members_tick).
 * A session whose move cannot start now (a bind or rebind out, a detached
 * XEP-0198 session waiting for its client) is looked at again every
 * MEMBERS_CHECK_MS.
 */
#ifndef XEDGE_MEMBERS_H
#define XEDGE_MEMBERS_H

#include <stddef.h>

#include "core/worker-t.h"
#include "parser/shard.h"

#define MEMBERS_TOKEN SHARD_MOVE_TOKEN   /* our PINGs' token (parser/shard.h) */
#define MEMBERS_CHECK_MS 500
#define MEMBERS_LEAVING 3   /* session.rebind: its old shard has not let go yet */

/* A published set: names (hashed) and addresses (connected), n of them. */
struct members_set {
	int refs;                 /* atomic: workers that have not let go of it */
	size_t n;
	char **names, **addrs;
};

struct io_uring;

/* Main thread: give every worker of ws[0..nworkers) the set names[i] at
 * addrs[i] (addrs NULL: the names are the addresses).  0 or -ENOMEM. */
int members_publish(struct worker *ws, int nworkers, struct io_uring *ctl, const char *const *names,
		    const char *const *addrs, size_t n);

/* Worker: CTRL_MEMBERS. */
void members_apply(struct worker *w);
/* Worker, every loop (from link_tick): moves to retry, leaving links to close. */
void members_tick(struct worker *w);
/* Worker: a WIRE_PONG from a session server. */
void members_pong(struct link *l, const struct wire_msg *m);
/* Worker, at exit: what members holds. */
void members_free(struct worker *w);

#endif
