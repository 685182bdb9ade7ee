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
#include <stdint.h>

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
	/* XEP-0045 group chat (sm/muc.c) on this domain; NULL: none. */
	const char *muc_domain;
	unsigned muc_history;       /* messages a room keeps for newcomers */
	/* XEP-0060 PubSub service (sm/pubsub.c) on this domain; NULL: none. */
	const char *pubsub_domain;
	/* XEP-0363: the edges give the slots (core/upload.c); the session
	 * server lists the service and answers its disco#info.  NULL: none. */
	const char *upload_domain;
	uint64_t upload_max_size;
	/* The bare JIDs allowed the XEP-0133 administration commands (sm/adhoc.c). */
	const char *const *admins;
	size_t nadmins;
	/* Shards (parser/shard.h, docs/architecture.md): this server owns the
	 * accounts whose bare JID hashes to shards[shard_self] among
	 * shards[0..nshards) (names); stanzas for the others go through an edge
	 * link flagged WIRE_STANZA_SHARD.  nshards <= 1: it owns every account. */
	const char *const *shards;
	size_t nshards;
	size_t shard_self;
	/* Optional: called on the sm thread from sm_run() every tick_ms (> 0)
	 * milliseconds, first right after it starts, with the bound-session
	 * and edge-link counts (xedge-sm: systemd STATUS and WATCHDOG). */
	void (*tick)(void *arg, size_t nsessions, size_t nlinks);
	void *tick_arg;
	int tick_ms;
};

struct sm;

/* The admin socket's answer about an account of another shard: "error: "
 * this text, a space, the owner's index (sm/admin.c, xedgectl). */
#define SM_ADMIN_SHARD_REPLY "another shard owns this account: shard"

/* Opens (and creates) the database, binds the listeners.  NULL on failure
 * (the reason is logged). */
struct sm *sm_new(const struct sm_config *cfg);

/* Adopt an already connected stream socket as a link (the unit tests' harness:
 * one end of a socketpair).  The edge still opens it with WIRE_HELLO.  0 or
 * -errno. */
int sm_add_link(struct sm *sm, int fd);
/* Adopt an in-process link (embedded shards): frames from an edge worker
 * arrive on `in`, ours go out on `out` (core/chan.h); `in` must wake
 * sm_chan_fd().  The edge still opens it with WIRE_HELLO.  0 or -errno. */
struct chan;
int sm_add_chan_link(struct sm *sm, struct chan *in, struct chan *out);
/* Adopt an in-process link to shard k of the same process (both created
 * with the same shard list): stanzas between the two shards' accounts go
 * over it directly instead of through an edge.  0 or -errno. */
int sm_add_peer_link(struct sm *sm, size_t k, struct chan *in, struct chan *out);
/* The eventfd producers of our in-process links write (chan_init's wake_fd). */
int sm_chan_fd(const struct sm *sm);

/* Serve until sm_stop().  Returns 0 on a clean stop, -errno on a fatal error. */
int sm_run(struct sm *sm);

/* Ask sm_run() to return; safe from any thread or a signal handler. */
void sm_stop(struct sm *sm);

void sm_free(struct sm *sm);

/* The shard set changed (sm/members.c): from now on this server owns the
 * accounts whose bare JID hashes to `self` among names[0..n) (self absent:
 * none).  On the sm thread (sm_config.tick), or before sm_run.  0 or
 * -ENOMEM (the running set stays). */
int sm_members_set(struct sm *sm, const char *const *names, size_t n, const char *self);

/* The session servers' metrics in Prometheus text (names xedge_sm_*), the
 * shards sms[0..n) of one process summed; from any thread while sm_run()
 * runs (sm/metrics.c). */
struct mx;
void sm_metrics(struct sm *const *sms, size_t n, struct mx *m);

#endif
