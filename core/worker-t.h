/*
 * worker-t — the types of an edge worker: its ring, listeners, connections,
 * sessions and link.  Types only; functions are declared in worker.h (the
 * loop and sockets), xprt.h (transports), xmpp.h (roles), backend.h and
 * link.h.
 *
 * A connection is three layers, each chosen per listener (docs/architecture.md):
 *   transport  bytes on the wire <-> XMPP bytes: raw TCP at the bottom, then
 *              optionally a PROXY header, TLS, WebSocket framing (xprt_ops);
 *   role       what the XMPP stream is for: c2s, or the edge's own client
 *              stream to an upstream server (role_ops);
 *   backend    where a c2s session lives: `native` (our session servers over
 *              the wire protocol) or `upstream` (any XMPP server; backend_ops).
 * A session (native backend) is its own object with its own id, apart from
 * the socket slot, so it can outlive or change its connection.
 *
 * Ownership: everything here belongs to the worker thread; nothing is shared
 * with other threads except `ctrl` (a single-producer ck_ring the main thread
 * writes), `stop`, and `offload_port` (offload.h: completed jobs come back
 * there from the offload threads).
 *
 * Completion lifetimes: a connection counts its in-flight operations in
 * `refs` (armed multishot recv, send, cancels, close, peer lookup, connect).
 * Closing is a request: the connection is freed only when the close
 * completed and refs is 0, so a late completion never touches freed memory.
 * user_data carries the object pointer with the operation in its low 4 bits
 * (objects are 16-aligned).
 */
#ifndef XEDGE_WORKER_T_H
#define XEDGE_WORKER_T_H

#include <ck_ring.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/offload.h"
#include "parser/framer.h"
#include "parser/wire.h"
#include "tls/tls.h"

struct auth_job;
struct comp;
struct csi;
struct conn;
struct s2s;
struct s2s_conn;
struct sasl;
struct session;
struct rtx_item;
struct smacks;
struct xmlstage;
struct xs_header;
struct xs_stanza;

enum op {
	OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_CANCEL,
	OP_LINK_RECV, OP_LINK_SEND, OP_LINK_CONNECT, OP_MSG, OP_IGNORE, OP_PEER,
	OP_SOCKET, OP_CONNECT, OP_PAUSE, OP_OFFLOAD
};
#define OP_MASK 0xfULL
#define UD(ptr, op) ((uint64_t)(uintptr_t)(ptr) | (uint64_t)(op))
#define UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~OP_MASK))
#define UD_OP(ud) ((int)((ud) & OP_MASK))

/*
 * The XMPP stream state machine, shared by the roles.  Every transition goes
 * through xmpp_set_state() (xmpp.c), which checks it against the table of
 * legal ones there.
 */
enum conn_state {
	CS_TRANSPORT = 0, /* the transport is not ready yet: PROXY header, TLS handshake
	                     (Direct TLS), WebSocket upgrade, or the outbound connect */
	CS_HEADER,        /* waiting for a stream header (initial or after a restart) */
	CS_STARTTLS,      /* <proceed/> queued, STARTTLS handshake running */
	CS_NEGOTIATE,     /* header exchanged, features sent: starttls / auth / bind */
	CS_SASL,          /* SASL exchange in progress */
	CS_SESSION,       /* resource bound: stanzas flow (native backend) */
	CS_RELAY,         /* the stream is relayed to or from an upstream server */
	CS_CLOSING,       /* goodbye queued; the socket closes once it is flushed */
	CS_COUNT
};

/* conn.flags */
#define CF_TLS          0x00001 /* the stream is encrypted (or the listener is behind TLS) */
#define CF_DIRECT_TLS   0x00002 /* accepted on a Direct TLS listener */
#define CF_AUTHED       0x00004 /* SASL succeeded */
#define CF_BOUND        0x00008 /* a resource is bound */
#define CF_HEADER_SENT  0x00010 /* our stream header went out (stream errors need it) */
#define CF_WS           0x00020 /* RFC 7395 framing: <open/>/<close/>, one element per message */
#define CF_WAIT_SM      0x00040 /* input paused until the backend answers */
#define CF_DIRTY        0x00080 /* on the worker's flush list */
#define CF_CLOSED       0x00100 /* cancel + close submitted */
#define CF_RECV_ARMED   0x00200 /* a multishot recv is armed */
#define CF_SENDING      0x00400 /* a send is in flight */
#define CF_PEER_GONE    0x00800 /* EOF or error: write nothing more */
#define CF_IP_COUNTED   0x01000 /* counted in iplimit: leave on free */
#define CF_HS_COUNTED   0x02000 /* holds one of the process-wide TLS handshake slots */
#define CF_SLOW         0x04000 /* output queue over max_out_bytes since slow_since */
#define CF_OUTBOUND     0x08000 /* we opened it (upstream), not a client */
#define CF_PROXIED      0x10000 /* the address came from a PROXY header */
#define CF_CANCELLING   0x20000 /* a cancel of the armed recv is in flight (pause) */
#define CF_READING      0x40000 /* reads are wanted (once the peer address is known) */
#define CF_LEGACY       0x80000 /* native: the login in progress is XEP-0078 jabber:iq:auth */
#define CF_SASL_FAILED  0x100000 /* native: a SASL attempt failed (XEP-0078 then refuses iq:auth) */

/* conn.paused: why reads are paused (the multishot recv is cancelled) */
#define PAUSE_RATE      0x01   /* over its bytes/s or stanzas/s budget */
#define PAUSE_LINK      0x02   /* the session server link is backed up */
#define PAUSE_PEER      0x04   /* a recipient of this client (or its tied stream) reads too slowly */
#define PAUSE_REBIND    0x08   /* XEP-0198: its shard restarts; the session is bound again first */
/* wstats.upload: XEP-0363 slots and transfers (core/upload.c) */
enum ups { UPS_SLOTS, UPS_SLOTS_REFUSED, UPS_FILES, UPS_BYTES_IN, UPS_DOWNLOADS, UPS_BYTES_OUT,
	   UPS_REFUSED, UPS_COUNT };

#define PAUSE_DISK      0x10   /* an upload's bytes wait for the disk (core/upload.c) */

/*
 * Transport layer.  A connection stacks up to XPRT_MAX of them above the
 * socket (layer 0 is the lowest).  input() takes bytes from the layer below
 * and passes what it decodes up with xprt_up(); write() takes bytes from
 * above and passes what it encodes down with xprt_down() (the socket when
 * nothing is below).  flush() runs once per loop iteration, top down, so a
 * layer can batch (TLS seals everything written since in one record).
 */
#define XPRT_MAX 3
struct xprt_ops {
	const char *name;
	void (*input)(struct conn *c, int layer, const uint8_t *data, size_t len);
	void (*write)(struct conn *c, int layer, const void *data, size_t len);
	void (*flush)(struct conn *c, int layer);            /* optional */
	void (*shutdown)(struct conn *c, int layer);         /* our side ends; optional */
	void (*free)(struct conn *c, int layer);             /* optional */
	/* Bytes written from above that the layer still holds (not yet passed
	 * down); optional: a layer without it passes everything down at once. */
	size_t (*pending)(const struct conn *c, int layer);
};

/* What an item handler tells the input loop (xmpp.c). */
enum { GO_ON = 0, STOP_KEEP, STOP_DISCARD };

/*
 * Role: what an XMPP stream is for.  The shared negotiation (framing, header
 * checks, stream errors, restarts) is xmpp.c; a role answers a valid header
 * and handles the elements that follow.
 */
struct role_ops {
	const char *name;
	const char *ns;      /* the content namespace its peer must declare (jabber:client) */
	int (*header)(struct conn *c, const struct xs_header *h);         /* GO_ON / STOP_* */
	int (*element)(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n);
	void (*timeout)(struct conn *c);     /* the connection's timer fired (not closing) */
	void (*sent)(struct conn *c);        /* a send completed */
	void (*ended)(struct conn *c, int reason); /* the stream is over (enum wire_reason) */
	void (*free)(struct conn *c);
	void (*connected)(struct conn *c, int res); /* outbound: the connect completed (0 / -errno) */
	/* Optional.  served: the domain (config-owned) an inbound header's `to`
	 * names, NULL when not ours (default: one of `domains`).  idle: seconds
	 * an authenticated stream may carry nothing (default timeouts.idle).
	 * own_prefix: top-level elements starting with it ("<db:") are parsed
	 * in the stream's own namespace context, not the c2s one. */
	const char *(*served)(const struct config *cfg, const char *s, size_t n);
	uint32_t (*idle)(const struct conn *c);
	const char *own_prefix;
	bool federated;      /* a server's stream: s2s.rate_* instead of limits.rate_* */
	bool no_version;     /* inbound headers need not carry a version (XEP-0114) */
	bool keepalive;      /* an idle stream in `session` gets a whitespace keepalive
	                        (RFC 6120 §4.6.1) instead of connection-timeout */
};

/*
 * Backend: where a c2s session lives.  c2s calls it once the stream is
 * secure (or TLS is not required) and for every element after that.
 */
struct backend_ops {
	const char *name;
	int (*header)(struct conn *c, const struct xs_header *h);   /* answer a (re)started stream */
	int (*element)(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n);
	void (*timeout)(struct conn *c);
	void (*sent)(struct conn *c);
	void (*ended)(struct conn *c, int reason);
	void (*free)(struct conn *c);
};

struct conn {
	struct worker *w;
	uint32_t idx;            /* direct descriptor slot */
	uint32_t gen;            /* generation of the slot's user, for stale completions */
	uint32_t flags;          /* CF_* */
	uint8_t state;           /* enum conn_state */
	uint8_t paused;          /* PAUSE_* */
	uint8_t auth_failures;
	uint8_t nxp;             /* transport layers above the socket */
	uint32_t refs;           /* in-flight operations (a few; never near wrapping) */
	uint16_t listener;       /* index of the listener (config) it came in on */
	uint8_t kind;            /* enum conn_kind: metrics label */
	int ofd;                 /* outbound set-up: the plain fd until it is in the table */
	const struct sockaddr *dst; /* outbound: where to (owned by the worker) */
	socklen_t dstlen;
	const struct xprt_ops *xp[XPRT_MAX];
	void *xs_state[XPRT_MAX];/* each layer's own state (NULL: none) */
	const struct role_ops *role;
	const struct backend_ops *be;
	struct session *sess;    /* native backend: the session this stream carries */
	struct conn *tied;       /* upstream backend: the other half of the relay */
	struct comp *comp;       /* component role: its state (component.c) */
	struct s2s_conn *s2s;    /* s2s roles: the stream's federation state (s2s.c) */
	struct framer fr;
	struct buf in;           /* XMPP bytes received, not yet consumed */
	struct buf out;          /* wire bytes queued behind the send in flight */
	struct buf sending;      /* wire bytes of the send in flight (immutable) */
	struct sasl *sasl;
	struct auth_job *auth_job; /* native: PLAIN's key derivation this stream waits for on the
	                              offload pool (be_native.c); the job outlives a close */
	const char *domain;      /* the served domain this stream is for (config-owned) */
	char *close_tag;         /* "</p:stream" when the peer's stream prefix is not "stream" */
	char *hdr_decls;         /* the header's namespace declarations when not XMLSTAGE_C2S_DECLS */
	/* Worker clock seconds (monotonic, from boot: 32 bits last 136 years). */
	uint32_t accepted;       /* at accept */
	uint32_t last_rx;        /* the last complete item */
	uint32_t deadline;       /* when the timer fires; 0: none */
	uint32_t due;            /* when the current state times out (before a session) */
	uint32_t slow_since;     /* when the output queue went over the limit */
	uint32_t sm_due;         /* while CF_WAIT_SM: when to give up on the backend */
	uint64_t tx_sent;        /* bytes the socket has taken so far (completed sends) */
	int64_t tok_bytes, tok_stanzas; /* rate limit buckets, thousandths (may go negative) */
	uint64_t tok_ms;         /* last refill, ms */
	struct conn *tnext, *tprev; /* timer wheel bucket */
	struct conn *dnext;      /* flush list */
	struct conn *pnext, *pprev; /* rate-paused list */
	char peer[48];           /* client address ("-" until known) */
	uint8_t ip[16];          /* the same, v4-mapped, for iplimit */
	uint8_t local_ip[16];    /* the address it reached (v4-mapped), for PROXY headers upstream */
	uint16_t peer_port, local_port;
} __attribute__((aligned(16)));

/*
 * A session's state machine (session_set_state() checks every transition):
 * NEW -> OPEN -> AUTHED -> BOUND, and CLOSED from any of them.
 */
enum sess_state {
	SS_NEW = 0,   /* created; the session server has not been told */
	SS_OPEN,      /* SESSION_OPEN sent */
	SS_AUTHED,    /* AUTHED sent: SASL succeeded */
	SS_BOUND,     /* BIND_RESP ok: a full JID */
	SS_CLOSED     /* SESSION_CLOSE sent or received */
};

/*
 * A session of the native backend: what the session server knows as one
 * client, named by `id` on the wire ((generation << 32) | index in the
 * worker's session table).  It points at the connection that carries it;
 * the connection points back.  Freed with its connection, unless XEP-0198
 * resumption keeps it detached (c NULL) for a later stream (core/smacks.h).
 */
struct session {
	struct conn *c;
	uint64_t id;
	uint32_t owed;           /* stanza bytes from the session server not yet credited back */
	/* Delivery reports (docs/protocol.md): raw bytes of the STANZA frames handed to
	 * the client's output; of those, all written to the socket as of the last time
	 * nothing was queued; and the value last sent in WIRE_DELIVERED. */
	uint64_t rx, delivered, reported;
	bool track;              /* a TRACK stanza arrived since the last report */
	uint8_t state;           /* enum sess_state */
	uint16_t shard;          /* the session server it is open on (its link) */
	char *user;              /* canonical localpart once authenticated */
	char *jid;               /* full JID once bound */
	char *bind_id;           /* id of the pending bind iq (or XEP-0078 login iq) */
	char *resource;          /* XEP-0078: the resource to bind once authenticated */
	char *reg_id;            /* XEP-0077: id of the pending registration iq */
	uint8_t reg_op;          /* its enum wire_reg_op */
	uint64_t t_open_us;      /* metrics: when the login began (SESSION_OPEN) */
	uint64_t t_req_us;       /* metrics: when the credentials or bind request went out; 0: none */
	struct csi *csi;         /* XEP-0352 state (core/csi.c); NULL until the first <inactive/> */
	struct smacks *smk;      /* XEP-0198 state (core/smacks.c); NULL until <enable/> */
	/* A shard restart under XEP-0198 (be_native.c, "rebinding"): 1 while the
	 * link is down, 2 while the bind on the restarted shard is out (3 while a
	 * session moving to another shard waits for the old one to let go:
	 * core/members.h); the
	 * client's last broadcast presence, replayed then; and where the new
	 * session server's byte count of delivery reports starts. */
	uint8_t rebind;
	char *presence;
	uint32_t presence_len;
	uint64_t rx_origin;
	uint64_t smk_join;       /* XEP-0198: the session this stream's <resume/> waits for
	                            from another worker (its id here); 0: none */
	struct rtx_item *rtx, *rtx_tail; /* its client's stanzas not yet confirmed (core/rtx.h) */
	uint8_t open_flags;      /* WIRE_OPEN_* of its stream: a rebind while detached */
} __attribute__((aligned(16)));

struct listener {
	struct worker *w;
	int fd;
	uint16_t index;          /* into cfg->listeners */
	bool armed;
	uint64_t retry_at;       /* worker clock: re-arm a failing accept no sooner */
} __attribute__((aligned(16)));

struct link_dns;     /* core/link.c */
struct members_set;  /* core/members.c */

struct link {
	struct worker *w;
	int fd;
	uint16_t shard;          /* index into the worker's links: which session server */
	struct chan *cout, *cin; /* an embedded shard's: the chans to and from it (core/chan.h);
	                            NULL for a socket */
	bool up;                 /* HELLO_OK received */
	bool recv_armed, sending, dead, connecting;
	bool stalled;            /* a request timed out; cleared by the next frame received */
	unsigned fails;          /* reconnect attempts refused since the link was lost */
	unsigned backoff_ms;     /* delay before the next reconnect attempt */
	uint64_t retry_ms;       /* worker_ms() of the next attempt */
	struct sockaddr_storage addr; /* external session server, for reconnects */
	socklen_t addrlen;
	/* External session servers (core/members.c): the shard's name, which
	 * is also its address ("host:port" or "unix:/path"); NULL: a free slot.
	 * A DNS name is looked up again before each connect (on the offload
	 * pool, never on the worker). */
	char *name;
	bool dns;                /* name's host is a DNS name */
	bool fresh;              /* addr was looked up for the next connect */
	bool resolving;          /* that lookup is out */
	bool leaving;            /* no longer a shard: closed once its sessions left */
	struct link_dns *dns_job;/* the lookup out, or NULL */
	struct buf rx;           /* bytes received, frames decoded from the front */
	struct buf out;          /* encoded frames queued */
	struct buf tx;           /* frames in flight */
	uint64_t nsent;          /* frames queued since the HELLO, which is 1 (WIRE_HANDLED counts) */
	struct rtx_item *rtx, *rtx_tail;   /* sent, not yet confirmed (core/rtx.h) */
	struct rtx_item *wait, *wait_tail; /* to send again once the shard is back */
	uint32_t nwait;
} __attribute__((aligned(16)));

/*
 * A worker's counters (metrics.h: written by the worker with STAT_*, read
 * and summed over the workers by the admin thread; core/edge_metrics.c names
 * them).  Indexes: CK_* the connection's kind (its listener's type, or what
 * an outbound stream is for), CS_* its state, the WIRE_KIND_* of a stanza
 * (0: none of the three), SASL_* mechanisms (0: XEP-0078 iq:auth), the
 * enum sasl_cond of a failure, TLSF_* why a handshake failed, the index of
 * a stream error's condition in xmpp_conditions[] (xmpp.h).
 */
enum conn_kind {
	CK_C2S = LISTEN_C2S, CK_C2S_TLS = LISTEN_C2S_TLS, CK_WS = LISTEN_WS, CK_WSS = LISTEN_WSS,
	CK_S2S = LISTEN_S2S, CK_S2S_TLS = LISTEN_S2S_TLS, CK_COMPONENT = LISTEN_COMPONENT,
	CK_S2S_OUT, CK_UPSTREAM, CK_COUNT
};
#define WSTAT_CONDS 25    /* RFC 6120 §4.9.3 stream error conditions */
#define WSTAT_SASL_CONDS 12

struct wstats {
	uint64_t conns[CK_COUNT][CS_COUNT];     /* open now (a gauge: added and taken away) */
	uint64_t accepted[CK_COUNT];
	uint64_t refused[4];                    /* at accept: [0] worker at max_connections, else
	                                           the iplimit verdict (iplimit.h) */
	uint64_t tls_ok[CK_COUNT];
	uint64_t tls_failed[TLSF_COUNT];
	uint64_t logins[5];                     /* by mechanism: 0 unknown, SASL_*, 4 iq:auth */
	uint64_t sasl_failed[5][WSTAT_SASL_CONDS];
	uint64_t stanzas[CK_COUNT][2][4];       /* [conn kind][0 in, 1 out][stanza kind] */
	uint64_t stanza_bytes[CK_COUNT][2][4];
	uint64_t net_bytes[2];                  /* socket bytes [in, out] */
	uint64_t stream_errors[WSTAT_CONDS];
	uint64_t rate_pauses, slow_closes;
	uint64_t link_up;                       /* links (one per shard) HELLO_OK holds on */
	uint64_t link_losses;                   /* times a link was lost */
	uint64_t link_queue_bytes;              /* frames not yet taken by the socket */
	uint64_t shard_relayed;                 /* cross-shard stanzas passed on between session servers */
	uint64_t shard_relay_failed;            /* ... that found the owner's link down (bounced) */
	uint64_t rebinds;                       /* XEP-0198 sessions bound again on a restarted shard */
	uint64_t shard_moves[2];                /* sessions moved off a shard that no longer owns them
	                                           (members.c): [0] bound again, [1] told <reset/> */
	uint64_t resume_redirects;              /* <resume/>s sent to the edge holding the session */
	uint64_t smacks_resumed;                /* XEP-0198 resumptions that succeeded */
	uint64_t smacks_resume_failed;          /* <resume/> answered with <failed/> */
	uint64_t smacks_detached;               /* sessions kept for a resumption */
	uint64_t smacks_moved;                  /* resumptions that took the session from another worker */
	uint64_t smacks_returned;               /* unacknowledged stanzas handed back to the sm */
	uint64_t upload[UPS_COUNT];             /* XEP-0363 (core/upload.c), by enum ups */
	struct mhist login;                     /* <auth/> (or iq:auth) to bound */
	struct mhist sm_rtt;                    /* credentials and bind requests to their answers */
} __attribute__((aligned(64)));

#define WHEEL_SLOTS 256u

/* Commands from the main thread: STOP ends every stream and the thread;
 * DRAIN closes the listeners and tells clients to go, drain_rate a second;
 * RELOAD switches to next_cfg (set before the post). */
enum ctrl_cmd { CTRL_STOP = 1, CTRL_DRAIN, CTRL_RELOAD, CTRL_MEMBERS };

struct worker {
	int id;
	pthread_t thread;
	const struct config *cfg;
	struct io_uring ring;
	struct framer_limits lim;

	struct listener listeners[CONFIG_MAX_LISTENERS];
	size_t nlisteners;

	struct io_uring_buf_ring *br;  /* provided receive buffers */
	uint8_t *bufmem;
	unsigned nbufs, bufsize;

	struct conn **slots;     /* by direct descriptor index */
	uint32_t nslots, nconns, gen;
	struct conn *dirty;      /* connections with output to flush */
	struct conn *rate_paused;/* connections paused by their rate limit */
	uint32_t link_paused;    /* connections paused because the link is backed up */

	struct session **sessions; /* native backend: by index; free ones chained in free_sess */
	uint32_t nsessions_cap, sess_gen;
	uint32_t *free_sess;
	uint32_t nfree_sess;
	struct session *smk_list;  /* sessions with XEP-0198 enabled (smacks.c), attached or not */

	uint64_t now;            /* monotonic seconds, updated once per loop */
	struct conn *wheel[WHEEL_SLOTS];
	uint64_t wheel_pos;

	/* Native backend: one link per session server (shard), in the order of
	 * the shard list; shard_names[i] is H(name of shard i) (parser/shard.h). */
	struct link *links;
	uint16_t nlinks;
	uint64_t *shard_names;
	/* The shards that own users (core/members.c): owner i is links[owner_slot[i]],
	 * shard_names[i] its name's hash; links not among them are leaving.
	 * Embedded shards: owner i is link i. */
	uint16_t owner_slot[CONFIG_MAX_SHARDS];
	uint16_t nowners;
	struct members_set *next_members; /* published by the main thread (atomic exchange) */
	uint64_t members_check_ms;        /* when leaving links were last looked at */
	bool members_dirty;               /* sessions may be on a shard that does not own them */
	bool native;             /* the native backend is in use (the links exist) */
	struct xmlstage *xs;
	uint8_t *scratch;        /* TLS plaintext out of the record layer */
	char *stamp;             /* a stanza with its 'from' stamped, before it is framed */
	size_t stamp_cap;
	struct sockaddr_storage upstream;  /* backend.upstream, resolved */
	socklen_t upstream_len;

	/* External routes (route.h): the stream of each configured component
	 * connected to this worker (by cfg index), and the s2s state (s2s.c). */
	struct conn *components[CONFIG_MAX_COMPONENTS];
	struct s2s *s2s;

	struct offload *offload; /* the process's pool for slow jobs (main.c) */
	struct offload_port offload_port; /* where our jobs come back; the loop runs until it is idle */

	ck_ring_t ctrl;
	ck_ring_buffer_t ctrl_buf[16];
	/* XEP-0198 handovers from the other workers (core/smacks.c): struct
	 * smk_msg pointers.  smk_lock is taken to post and to take: it also
	 * orders the handed-over memory for the sanitizers (ck_ring's fences are
	 * invisible to TSan). */
	pthread_mutex_t smk_lock;
	ck_ring_t smk_in;
	ck_ring_buffer_t smk_in_buf[1024];
	volatile int stop;
	const struct config *next_cfg; /* CTRL_RELOAD: the configuration to switch to */
	uint64_t cfg_acked;      /* generation of the configuration in use (main.c frees older ones) */
	bool draining;           /* CTRL_DRAIN received */
	uint32_t drain_rate;     /* clients told per second on this worker (set before CTRL_DRAIN) */
	uint32_t drain_cursor;   /* the next slot to look at */
	int64_t drain_tokens;    /* thousandths of a client */
	uint64_t drain_ms;       /* last refill */
	int start_rc;            /* set by the thread once set up: 0 or -errno */
	volatile int started;
	struct chan *sm_chans;   /* embedded: 2 per shard, [2k] to shard k and [2k+1] from it;
	                            NULL: connect to backend.shards */
	int chan_fd;             /* embedded: the eventfd the shards wake us with */
	uint64_t chan_val;       /* where its read lands */
	uint16_t nshards;        /* session servers: embedded threads or backend.shards entries */
	struct wstats st;        /* metrics (written here only; see struct wstats) */
};

#endif
