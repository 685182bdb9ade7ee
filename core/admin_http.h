/*
 * admin_http — the admin HTTP listener of xedge and xedge-sm (`admin:
 * {address: host:port}`): GET /metrics (Prometheus text), /healthz (200
 * while the process runs) and /readyz (200, or 503 with the reason while
 * draining or while no session server is linked).  HEAD is answered like
 * GET without the body; anything else is 405, an unknown path 404.
 *
 * One thread with poll(): scrapes and probes are a few a second, and this
 * keeps every XMPP worker free of HTTP.  Bounded like any network input:
 * ADMIN_HTTP_MAX_CLIENTS at once (beyond: refused at accept), a 4 KiB
 * request head, 10 s for the whole exchange; a response is written without
 * blocking, so one slow scraper does not stall the probes.
 *
 * The callbacks run on the admin thread: they may only read what other
 * threads publish for it (metrics.h counters, atomics).
 */
#ifndef XEDGE_ADMIN_HTTP_H
#define XEDGE_ADMIN_HTTP_H

#include "core/metrics.h"

#define ADMIN_HTTP_MAX_CLIENTS 32

struct admin_http_ops {
	void (*metrics)(void *arg, struct mx *m);
	/* NULL when ready, else why not (a static string). */
	const char *(*unready)(void *arg);
	void *arg;
};

struct admin_http;

/* Listen on address ("host:port", numeric) and start the thread.  NULL
 * after logging why (address in use, bad address, no memory). */
struct admin_http *admin_http_start(const char *address, const struct admin_http_ops *ops);
/* Stop the thread, close every socket, free.  NULL is fine. */
void admin_http_stop(struct admin_http *a);

#endif
