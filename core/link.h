/*
 * link — a worker's link to its session server (native backend): wire
 * frames over a socketpair (embedded) or TCP / a Unix socket (xedge-sm).
 */
#ifndef XEDGE_LINK_H
#define XEDGE_LINK_H

#include "core/worker-t.h"

/* "host:port" (numeric, [v6] allowed) or "unix:/path" into a socket address:
 * 0, or -EINVAL / -ENAMETOOLONG. */
int endpoint_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

int link_open(struct worker *w);
int link_send(struct worker *w, const struct wire_msg *m);
bool link_congested(struct worker *w);     /* queued towards the session server over the high mark */
void link_flush(struct worker *w);
void link_arm(struct worker *w);
void link_on_recv(struct worker *w, int res);
void link_on_send(struct worker *w, int res);
void link_close(struct worker *w);
void link_tick(struct worker *w);          /* reconnect when due */
/* Milliseconds until link_tick() has a reconnect to make, -1 if none is pending. */
int link_retry_wait_ms(const struct worker *w, uint64_t now_ms);
void link_on_connect(struct worker *w, int res);

/* be_native.c: what arrives on the link, and its loss. */
void native_on_frame(struct worker *w, const struct wire_msg *m);
void native_link_down(struct worker *w);

#endif
