/*
 * sm — the session server: accounts, roster, presence, routing.
 *
 * The same code runs as the `xedge-sm` process and embedded in `xedge` (one
 * thread, linked to each edge worker over a socketpair with the very same
 * protocol, parser/wire.h).  It owns its thread: every function below except
 * sm_stop() must be called from the thread that runs sm_run() or before it
 * starts.
 *
 * Sessions are keyed by (link, sid); the sid is the edge's.  A stanza from a
 * session arrives with `from` already stamped by the edge; the sm routes it
 * by its routing header and only parses the XML when the stanza is addressed
 * to the server or is presence it must broadcast.
 */
#ifndef XEDGE_SM_H
#define XEDGE_SM_H

#include <stdbool.h>
#include <stddef.h>

struct sm_config {
	const char *database;       /* SQLite file (created if missing) or postgresql:// URI */
	const char *admin_socket;   /* Unix socket for xedgectl; NULL: none */
	const char *listen;         /* "host:port" or "unix:/path" for edges; NULL: embedded only */
	const char *secret;         /* shared secret edges present in WIRE_HELLO; NULL: none */
	const char *const *domains; /* served domains */
	size_t ndomains;
	bool hide_os;               /* XEP-0092 answers leave the OS out */
	unsigned mam_retention_days; /* XEP-0313 archive kept this long; 0: no archiving */
	int mam_default;            /* archived by default: 0 never, 1 roster contacts, 2 always */
	/* Optional: called on the sm thread from sm_run() every tick_ms (> 0)
	 * milliseconds, first right after it starts, with the bound-session
	 * and edge-link counts (xedge-sm: systemd STATUS and WATCHDOG). */
	void (*tick)(void *arg, size_t nsessions, size_t nlinks);
	void *tick_arg;
	int tick_ms;
};

struct sm;

/* Opens (and creates) the database, binds the listeners.  NULL on failure
 * (the reason is logged). */
struct sm *sm_new(const struct sm_config *cfg);

/* Adopt an already connected link (embedded mode: one end of a socketpair).
 * The edge still opens it with WIRE_HELLO.  Returns 0 or -errno. */
int sm_add_link(struct sm *sm, int fd);

/* Serve until sm_stop().  Returns 0 on a clean stop, -errno on a fatal error. */
int sm_run(struct sm *sm);

/* Ask sm_run() to return; safe from any thread or a signal handler. */
void sm_stop(struct sm *sm);

void sm_free(struct sm *sm);

/* The session server's metrics in Prometheus text (names xedge_sm_*); from
 * any thread while sm_run() runs (sm/metrics.c). */
struct mx;
void sm_metrics(struct sm *sm, struct mx *m);

#endif
