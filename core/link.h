/*
 * link — a worker's links to its session servers (native backend), one
 * per shard: wire frames over a socketpair (embedded) or TCP / a Unix socket
 * (xedge-sm).  A session is on the shard that owns its bare JID.
 */
#ifndef XEDGE_LINK_H
#define XEDGE_LINK_H

#include "core/worker-t.h"

/* "host:port" (numeric, [v6] allowed) or "unix:/path" into a socket address:
 * 0, or -EINVAL / -ENAMETOOLONG.  (A DNS name is looked up by the link on the
 * offload pool, never here.) */
int endpoint_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

/* Open the link to every session server (w->nshards of them). */
int link_open(struct worker *w);
/* The link to the shard owning the canonical bare JID bare[0..n). */
struct link *link_of(struct worker *w, const char *bare, size_t n);
/* The same for a JID as received (canonicalised here; an invalid one: shard 0). */
struct link *link_of_jid(struct worker *w, const uint8_t *jid, size_t n);
/* The link new sessions start on before their user is known: the first
 * owner's (a dead one when no shard is known yet). */
struct link *link_first(struct worker *w);
int link_send(struct link *l, const struct wire_msg *m);
/* An encoded frame as it is (core/rtx.c sends its copies again). */
int link_send_raw(struct link *l, const uint8_t *frame, size_t len);
bool link_congested(const struct link *l); /* queued towards its session server over the high mark */
/* Requests can go out on l: connected, and not stalled by a timed-out request. */
static inline bool link_usable(const struct link *l)
{
	return !l->dead && !l->stalled;
}
void link_flush(struct worker *w);
void link_arm(struct worker *w);
void link_on_recv(struct link *l, int res);
void link_on_send(struct link *l, int res);
void link_on_connect(struct link *l, int res);
void link_close(struct worker *w);
void link_tick(struct worker *w);          /* reconnect the links that are down, when due */
/* Milliseconds until link_tick() has a reconnect to make, -1 if none is pending. */
int link_retry_wait_ms(const struct worker *w, uint64_t now_ms);

/* For core/members.c: slot k becomes the link to the external session
 * server `name` at `addr` (not connected yet: link_tick connects it), 0 or
 * -errno; a link that is no longer a shard's closes for good (retire); a slot
 * with no operation left on it (quiet) is freed. */
int link_slot_set(struct worker *w, uint16_t k, const char *name, const char *addr);
void link_retire(struct link *l);
bool link_quiet(const struct link *l);
void link_slot_free(struct worker *w, uint16_t k);

/* be_native.c: what arrives on a link, and its loss. */
void native_on_frame(struct link *l, const struct wire_msg *m);
void native_link_down(struct link *l);
void native_link_up(struct link *l);

#endif
