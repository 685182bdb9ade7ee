/*
 * config — the YAML configuration of xedge and xedge-sm (libyaml).
 *
 * One file format for both programs; each reads the sections it needs.
 * Relative paths in the file are resolved against the file's directory.
 * Environment variables override single scalars for containers, whether
 * or not the file has the key or its section: XEDGE_WORKERS,
 * XEDGE_LOG_LEVEL and XEDGE_<SECTION>_<KEY> for the scalar keys of tls,
 * limits, timeouts, backend, session_server, register, legacy_auth, s2s,
 * admin and drain
 * (e.g. XEDGE_LIMITS_MAX_STANZA_BYTES=65536,
 * XEDGE_SESSION_SERVER_DATABASE=/data/xedge.db).  They are applied after
 * the file and checked like it; their errors name the variable
 * ("XEDGE_LIMITS_MAX_DEPTH=abc: limits.max_depth: ...").
 *
 * config_load() validates everything it can before any socket is opened and
 * names the first bad line: "FILE:LINE: why".
 */
#ifndef XEDGE_CONFIG_H
#define XEDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTENERS 16
#define CONFIG_MAX_DOMAINS 64

enum listener_kind {
	LISTEN_C2S = 1,       /* XMPP c2s with STARTTLS (RFC 6120) */
	LISTEN_C2S_TLS = 2,   /* XMPP c2s Direct TLS (XEP-0368) */
	LISTEN_WS = 3,        /* XMPP over WebSocket (RFC 7395), plain HTTP behind a TLS ingress */
	LISTEN_WSS = 4,       /* XMPP over WebSocket over TLS */
	LISTEN_S2S = 5,       /* server-to-server with STARTTLS (RFC 6120), port 5269 */
	LISTEN_S2S_TLS = 6,   /* server-to-server Direct TLS (XEP-0368, ALPN xmpp-server) */
	LISTEN_COMPONENT = 7  /* external components (XEP-0114) */
};

#define CONFIG_MAX_COMPONENTS 64
#define CONFIG_EDGE_ID_MAX 32      /* stream_management.edge_id */
#define CONFIG_MAX_PEERS 64        /* stream_management.peers */
#define CONFIG_MAX_S2S_ROUTES 64
#define CONFIG_MAX_SHARDS 64
#define CONFIG_MAX_ADMINS 64

/* components: an external component (XEP-0114) allowed to connect */
struct config_component {
	char *name;           /* canonical domain it serves (its subdomains too) */
	char *secret;         /* the handshake's shared secret */
};

/* s2s.routes: a remote domain reached at a fixed address instead of DNS */
struct config_s2s_route {
	char *domain;         /* canonical */
	char *host;           /* numeric IPv4/IPv6 address */
	uint16_t port;
	bool direct_tls;      /* "tls://host:port": XEP-0368 Direct TLS there */
};

struct config_listener {
	int kind;             /* enum listener_kind */
	char *host;           /* numeric IPv4/IPv6 address */
	uint16_t port;
	int backlog;
	bool proxy_protocol;  /* a PROXY v1/v2 header is required first */
	char *path;           /* ws/wss: the HTTP path of the upgrade (default /xmpp-websocket) */
};

/* backend.proxy_protocol: what the edge tells an upstream server first */
enum { PROXY_NONE = 0, PROXY_V1 = 1, PROXY_V2 = 2 };

struct config_domain {
	char *name;           /* canonical (lowercase) domain */
	char *cert;           /* PEM certificate chain */
	char *key;            /* PEM private key */
};

struct config {
	char *path;           /* the file this came from */
	uint64_t generation;  /* 0 at start, then one more per applied reload (xedge) */
	bool lent;            /* config_adopt shared its strings with a newer one */
	int workers;          /* edge worker threads; 0 in the file means one per core */
	int shards;           /* embedded session-server threads; 0 in the file means one per core */
	int log_level;
	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	size_t nlisteners;
	struct config_domain domains[CONFIG_MAX_DOMAINS];
	size_t ndomains;

	bool require_tls;     /* c2s: STARTTLS required before SASL (default true) */

	/* Native backend only.  Both run on encrypted streams only. */
	struct {
		bool enabled;         /* XEP-0077 in-band registration (default false) */
		uint32_t rate;        /* account creation attempts per client IP per minute */
	} reg;
	bool legacy_auth;     /* XEP-0078 jabber:iq:auth logins (default false) */

	struct {
		uint32_t max_stanza_bytes;
		uint16_t max_depth;
		uint16_t max_attrs;
		uint16_t max_name_bytes;
		uint32_t max_value_bytes;
		uint32_t max_connections;   /* per worker */
		uint32_t max_auth_failures; /* SASL failures before the stream is closed */
		uint32_t max_connections_per_ip; /* concurrent, process-wide (core/iplimit.c) */
		uint32_t connection_rate_per_ip; /* new connections per second per IP */
		uint32_t max_tls_handshakes;     /* concurrent TLS handshakes, process-wide */
		uint32_t max_out_bytes;          /* outbound queue per connection */
		uint32_t rate_bytes;             /* per session input bytes/s (reads pause beyond) */
		uint32_t rate_stanzas;           /* per session stanzas/s (reads pause beyond) */
	} limits;

	struct {
		uint32_t handshake;   /* seconds: TCP accept -> stream header / TLS done */
		uint32_t auth;        /* seconds: accept -> resource bound */
		uint32_t idle;        /* seconds without input on a bound session */
		uint32_t slow_reader; /* seconds a full outbound queue may stay full */
		uint32_t session_server; /* seconds a login or bind waits for the session server */
	} timeouts;

	/* The edge's session server: external when backend_address is set,
	 * otherwise embedded. */
	char *backend_address;    /* "host:port" or "unix:/path" */
	/* backend.shards: several session servers (xedge-sm processes), each
	 * owning the users whose bare JID hashes to it (parser/shard.h): the
	 * endpoints as resolved (a relative unix: path made absolute) and the
	 * names as written, which are what is hashed (every edge and session
	 * server must list the same names). */
	char *backend_shards[CONFIG_MAX_SHARDS];
	char *backend_shard_names[CONFIG_MAX_SHARDS];
	size_t nbackend_shards;
	/* backend.discover (core/discover.h): the shards are the targets of the
	 * SRV records of discover_srv ("target:port", sorted), looked up every
	 * discover_interval seconds; backend.shards is then empty and
	 * backend_address holds discover_srv (external session servers). */
	char *backend_discover_srv;
	uint32_t backend_discover_interval;
	char *backend_secret;
	/* Upstream mode: one plaintext c2s stream per client to any XMPP server
	 * at this "host:port"; SASL and everything after it pass through. */
	char *backend_upstream;
	int upstream_proxy;       /* PROXY_*: header sent to the upstream first */
	bool upstream_tls;        /* STARTTLS on the upstream stream, verified against tls_ca_file */
	char *tls_ca_file;        /* tls.ca_file: PEM CA certificates that sign the upstream's */

	/* Federation (docs/architecture.md): on when an s2s or s2s_tls listener is
	 * configured.  Native backend only. */
	struct {
		bool enabled;             /* an s2s listener exists */
		bool dialback;            /* XEP-0220 when certificates do not verify (default true) */
		bool require_valid_certs; /* only peers whose certificate verifies (default false) */
		char *dialback_secret;    /* keys for XEP-0220 (NULL: random per process) */
		uint32_t idle_timeout;    /* seconds an s2s stream may carry nothing (default 600) */
		uint32_t connect_timeout; /* seconds to reach and authenticate to a peer (default 30) */
		uint32_t queue_bytes;     /* stanza bytes queued per remote domain while connecting */
		uint32_t rate_bytes;      /* per inbound s2s stream: input bytes/s (reads pause beyond) */
		uint32_t rate_stanzas;    /* per inbound s2s stream: stanzas/s */
		char *dns_servers;        /* "ip:port,..." instead of /etc/resolv.conf (NULL) */
		struct config_s2s_route routes[CONFIG_MAX_S2S_ROUTES];
		size_t nroutes;
	} s2s;
	struct config_component components[CONFIG_MAX_COMPONENTS];
	size_t ncomponents;

	/* The admin HTTP listener (core/admin_http.h): /metrics, /healthz, /readyz. */
	struct {
		char *address;        /* numeric "host:port"; NULL: no listener */
	} admin;

	/* SIGTERM (docs/operations.md): readiness goes false, the listeners
	 * close, and clients are told to go at `rate` per second, process-wide:
	 * <see-other-host/> naming `redirect` when set (WebSocket clients: a
	 * <close see-other-uri/> with `redirect_uri` when set), else
	 * <system-shutdown/>.  After `grace` seconds the rest are closed. */
	struct {
		char *redirect;       /* "host:port" of another edge, or NULL */
		char *redirect_uri;   /* "wss://..." for WebSocket clients, or NULL */
		uint32_t rate;        /* clients told per second (default 1000) */
		uint32_t grace;       /* seconds (default 25) */
	} drain;

	/* XEP-0198 stream management, held at the edge (native backend; core/smacks.h). */
	struct {
		bool enabled;         /* offered after SASL (default true) */
		uint32_t resume_timeout; /* seconds: the largest `max` a resumable session gets
		                            (default 300; 0: no resumption, acks only) */
		uint32_t max_unacked; /* bytes of unacknowledged stanzas kept per session (default 1 MiB) */
		char *edge_id;        /* this edge's name in resumption ids (default: from the host name) */
		/* stream_management.peers: the other edges, `edge_id: host:port`: a
		 * <resume/> of a session one of them holds is answered with
		 * <see-other-host/> naming it (RFC 6120 §4.9.3.19). */
		struct { char *edge_id, *addr; } peers[CONFIG_MAX_PEERS];
		size_t npeers;
	} smacks;

	/* admins: the bare JIDs (canonical) allowed the XEP-0133 administration
	 * commands (sm/adhoc.c); read by the session server, embedded or not. */
	char *admins[CONFIG_MAX_ADMINS];
	size_t nadmins;

	/* The session server itself (embedded, or the xedge-sm process). */
	struct {
		char *database;
		char *admin_socket;
		char *listen;         /* xedge-sm: where edges connect */
		char *secret;         /* xedge-sm: the secret edges must present */
		char *shard;          /* xedge-sm: its name in backend.shards (default: listen) */
		bool version_os;      /* XEP-0092 answers name the OS (default true) */
		uint32_t mam_retention_days; /* XEP-0313 archive kept this long; 0: no archiving */
		int mam_default;      /* XEP-0313 default: 0 never, 1 roster, 2 always */
		/* services.muc: XEP-0045 group chat on this domain (NULL: none),
		 * keeping `history` messages per room (default 20). */
		char *muc_domain;
		uint32_t muc_history;
		char *pubsub_domain;  /* services.pubsub.domain: XEP-0060 (NULL: none) */
	} sm;

	/* services.upload: XEP-0363 HTTP file upload (core/upload.c).  The edge
	 * gives the slots and serves the files on its ws/wss listeners; the
	 * session server lists the service and answers its disco#info. */
	struct {
		char *domain;         /* NULL: no upload service */
		uint64_t max_size;    /* bytes per file (default 10 MiB) */
		char *dir;            /* where the files are kept (required) */
		uint32_t expire;      /* seconds a file is kept (default 30 days; 0: forever) */
		uint64_t quota;       /* bytes one user may keep at once (default 100 MiB; 0: no quota) */
		char *url;            /* base of the slot URLs (default https://<first domain>:<wss port>) */
		char *secret;         /* signs the PUT URLs (default: dir/.secret, made once) */
		uint32_t slot_ttl;    /* seconds a PUT URL stays valid (default 300) */
	} upload;
};

/*
 * Load and validate path into *cfg (zeroed first, defaults applied).
 * Returns 0, or -1 after writing "path:line: reason" (or "XEDGE_X=value:
 * reason") into err; on -1 *cfg holds nothing to free (config_free on it
 * is harmless).
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/*
 * Reloads (SIGHUP).  config_reload_blocker: the first key that differs
 * between the running configuration a and the new one b that a reload
 * cannot apply (it needs a restart), or NULL.  config_adopt: once b is to
 * replace a (no blocker), b shares a's strings for every key a reload keeps
 * (the same values; a then frees only its own, the reloadable ones):
 * connections hold pointers to some of them (their domain, their
 * component's name), which so stay valid when a is freed, and a stays
 * whole for the workers still on it.
 */
const char *config_reload_blocker(const struct config *a, const struct config *b);
void config_adopt(struct config *b, struct config *a);
/* Undo config_adopt(b, a) when b is not used after all: a owns the shared
 * strings again, and config_free(b) frees only b's own. */
void config_unadopt(struct config *b, struct config *a);

/* A listener's address as written for claims and logs: "host:port", or
 * "[v6]:port". */
void config_listener_addr(const struct config_listener *cl, char *buf, size_t cap);

#endif
