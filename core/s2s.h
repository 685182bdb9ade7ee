/*
 * s2s — server-to-server streams (RFC 6120, XEP-0220 dialback, XEP-0368
 * Direct TLS, XEP-0178 SASL EXTERNAL): inbound streams from remote servers
 * on `s2s` / `s2s_tls` listeners, and the outbound stream per (local domain,
 * remote domain) that carries our stanzas to a remote server.
 */
#ifndef XEDGE_S2S_H
#define XEDGE_S2S_H

#include "core/worker-t.h"

extern const struct role_ops role_s2s_in;
extern const struct role_ops role_s2s_out;

/* Before the workers start: the resolver thread and the dialback secret
 * (nothing when federation is off).  0 or -errno (logged). */
int s2s_process_init(const struct config *cfg);
/* After the workers stopped. */
void s2s_process_fini(void);

/* The worker is stopping: outbound streams end (what waits is bounced). */
void s2s_worker_stop(struct worker *w);

/* A worker's outbound streams and their queues, at its exit. */
void s2s_worker_free(struct worker *w);

/* A WIRE_ROUTE for a remote domain: queued on (or starting) the outbound
 * stream for its (from-domain, to-domain) pair, or bounced. */
void s2s_deliver(struct worker *w, const struct wire_msg *m);

#endif
