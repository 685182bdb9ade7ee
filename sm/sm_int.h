/*
 * sm_int — the session server's internal types, shared by its modules:
 *
 *   sm/sm.c     event loop, links (wire protocol), sessions, binds, delivery
 *               tracking (WIRE_DELIVERED)
 *   sm/user.c   account records: loaded by a storage job, stanzas parked meanwhile
 *   sm/route.c  stanza routing: messages, iq, the server's own iq; hands
 *               presence to sm/presence.c
 *   sm/presence.c presence and subscriptions (RFC 6121 §3, §4)
 *   sm/roster.c the roster: jabber:iq:roster get/set/remove, versions, pushes,
 *               rows written behind (RFC 6121 §2)
 *   sm/store.c  the storage thread (SQLite, jobs, batched transactions), accounts
 *   sm/offline.c  offline messages: stored, listed, deleted once delivered
 *   sm/iq.c     the server's iq services by payload; disco#info from the same table
 *   sm/kv.c     XEP-0054 vCard, XEP-0049 private XML;  sm/version.c  XEP-0092
 *   sm/pep.c    XEP-0163 PEP;  sm/caps.c  XEP-0115 entity capabilities (for PEP)
 *   sm/admin.c  the admin socket (xedgectl's line protocol)
 *   sm/tab.c    intrusive chained hash table; growable byte buffers; small helpers
 *   sm/sub.c    presence-subscription state machine (pure; RFC 6121 App. A)
 *   sm/mam.c    XEP-0313 message archive, XEP-0359 stanza ids
 *   sm/blocking.c  XEP-0191 blocking command: blocklist service, enforcement
 *   sm/carbons.c   XEP-0280 message carbons
 *   sm/remote.c    stanzas to and from external entities (components, other
 *                  servers) through edge links: WIRE_ROUTE, WIRE_DOMAIN
 *   sm/returned.c  XEP-0198 §4: stanzas an edge hands back unacknowledged
 *   sm/moved.c     XEP-0198: a session moving to another edge worker's link
 *   sm/adopt.c     XEP-0198: a session outliving its edge, resumed on another edge
 *   sm/adhoc.c     XEP-0050 ad-hoc commands, XEP-0133 service administration
 *   sm/gather.c    questions every shard answers about itself (online users,
 *                  announcements, public rooms), answers gathered
 *
 * Everything here belongs to the one thread that runs sm_run(); nothing is
 * locked.  Every exported symbol carries the `sm_` prefix followed by its
 * module (`sm_store_`, `sm_route_`, ...) so the library never clashes with
 * the edge's modules.
 *
 * Object graph and lifetimes:
 *   struct sm        owns links, admin connections, the store, the tables.
 *   struct sm_link   one edge worker; owns its sessions (list + sid table).
 *                    A link is killed by sm_link_kill(): it only marks the link
 *                    dead and queues it; its sessions end and its memory is
 *                    freed by the event loop after the current batch, so no
 *                    handler ever sees a session or link vanish under it.
 *   struct sm_session  (link, sid); once bound it is also in sm->by_jid and
 *                    in its user's session list.
 *   struct sm_user   an account in memory (sm/user.c): its sessions, roster,
 *                    blocklist, preferences.  Lives while it has bound or
 *                    binding sessions, parked stanzas or references (refs:
 *                    storage jobs in flight); sm_user_release() frees it then.
 */
#ifndef XEDGE_SM_INT_H
#define XEDGE_SM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/metrics.h"
#include "parser/jid.h"
#include "parser/wire.h"
#include "sm/sm.h"
#include "sm/sub.h"

#define sm_container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* Bounds on what peers control (DESIGN: bound everything a peer controls). */
#define SM_MAX_LINKS 1024                 /* edge links at once */
#define SM_MAX_SESSIONS_PER_LINK 262144   /* open sessions per link */
#define SM_MAX_RESOURCES 64               /* bound sessions per account */
#define SM_MAX_ROSTER 16384               /* roster items held per account */
#define SM_MAX_OFFLINE 500                /* stored messages per account */
#define SM_MAX_OFFLINE_REQUEUE 2000       /* ... counting those stored again (offline.c) */
#define SM_MAX_PARKED 1024                /* stanzas waiting for one account to load */
#define SM_STORE_BACKLOG 65536            /* storage jobs queued beyond which archiving pauses */
enum sm_mam_policy { SM_MAM_NEVER = 0, SM_MAM_ROSTER = 1, SM_MAM_ALWAYS = 2 };
#define SM_LINK_IN_MAX (WIRE_LEN_BYTES + WIRE_MAX_BODY)
#define SM_LINK_OUT_MAX (64u << 20)       /* unsent bytes before a link is dropped */
#define SM_LINK_OUT_HIGH (8u << 20)       /* ... before the server stops reading (output.c) */
#define SM_LINK_OUT_LOW (2u << 20)        /* ... under which, on every link, it reads again */
#define SM_ADDR_MAX 128                   /* client address string kept per session */
#define SM_MAX_ADMIN 16                   /* admin connections at once */
#define SM_ADMIN_LINE_MAX 8192
#define SM_RESOURCE_GEN_LEN 12            /* generated resources: base32 chars */
#define SM_MAX_DIRECTED 256               /* JIDs a session sent directed presence to */
#define SM_ROSTER_NAME_MAX 1023           /* roster item name, bytes (§2.3.3 not-acceptable) */
#define SM_ROSTER_GROUP_MAX 1023          /* one group name, bytes */
#define SM_ROSTER_GROUPS_MAX 64           /* groups of one item */
#define SM_PENDING_IN_MAX 8192            /* a kept subscription request, bytes */

/* ---- sm/tab.c: growable buffer ----------------------------------------- */

/*
 * Bytes p[off..len) are pending; p[0..off) were consumed and are reclaimed by
 * the next reserve.  `err` is sticky: an append that fails (allocation or
 * `max`) sets it and later appends do nothing, so builders check once at the
 * end.  max == 0 means unbounded.
 */
struct sm_buf {
	uint8_t *p;
	size_t off, len, cap, max;
	int err;
};

int sm_buf_reserve(struct sm_buf *b, size_t n);      /* room for n more: 0 / -ENOMEM / -ENOBUFS */
void sm_buf_add(struct sm_buf *b, const void *d, size_t n);
void sm_buf_str(struct sm_buf *b, const char *s);
void sm_buf_esc(struct sm_buf *b, const char *s, size_t n);  /* xml_escape()d */
/* " name='value'" with value escaped; nothing when value is NULL. */
void sm_buf_attr(struct sm_buf *b, const char *name, const char *value);
/* <item jid='jid[0..n)' name='name'/>: a service in the domain's disco#items. */
void sm_buf_disco_item(struct sm_buf *b, const char *jid, size_t n, const char *name);
void sm_buf_fmt(struct sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_buf_consume(struct sm_buf *b, size_t n);
void sm_buf_clear(struct sm_buf *b);                 /* empty; keeps memory and max */
void sm_buf_free(struct sm_buf *b);
static inline size_t sm_buf_used(const struct sm_buf *b) { return b->len - b->off; }
static inline const uint8_t *sm_buf_data(const struct sm_buf *b) { return b->p + b->off; }

/* ---- sm/tab.c: small helpers -------------------------------------------- */

/* A NUL-terminated copy of p[0..n); NULL when out of memory. */
char *sm_memdup_z(const void *p, size_t n);
/* The error type a stanza error condition calls for (RFC 6120 §8.3.3). */
const char *sm_error_type(const char *cond);
static inline bool sm_ws_is(struct wire_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}
static inline const char *sm_kind_name(int kind)
{
	return kind == WIRE_KIND_MESSAGE ? "message" : kind == WIRE_KIND_PRESENCE ? "presence" : "iq";
}

/* ---- sm/tab.c: hash table ---------------------------------------------- */

/*
 * Intrusive chained hash table.  The caller embeds a node, computes the hash
 * with sm_tab_hash() (seeded per table, so peers cannot aim collisions) and
 * compares keys itself while walking a bucket: the table never sees keys.
 * Insert never fails: when growing is impossible the chains just get longer.
 */
struct sm_tab_node {
	struct sm_tab_node *next;
	uint64_t hash;
};

struct sm_tab {
	struct sm_tab_node **slots;
	size_t mask;      /* slots - 1; slots is a power of two */
	size_t count;
	uint64_t seed;
};

int sm_tab_init(struct sm_tab *t);                   /* 0 / -ENOMEM */
void sm_tab_fini(struct sm_tab *t);                  /* frees slots, not nodes */
uint64_t sm_tab_hash(const struct sm_tab *t, const void *key, size_t n);
void sm_tab_insert(struct sm_tab *t, struct sm_tab_node *n, uint64_t hash);
void sm_tab_remove(struct sm_tab *t, struct sm_tab_node *n);
/* First node of hash's bucket; walk ->next and check ->hash and the key. */
static inline struct sm_tab_node *sm_tab_bucket(const struct sm_tab *t, uint64_t hash)
{
	return t->slots[hash & t->mask];
}

/* ---- the server -------------------------------------------------------- */

/* What an epoll registration points to: every registered object starts with this. */
enum sm_ev_kind {
	SM_EV_WAKE = 1,     /* eventfd written by sm_stop() */
	SM_EV_LISTEN,       /* edge listener */
	SM_EV_LINK,         /* one edge link */
	SM_EV_ADMIN_LISTEN, /* admin socket listener */
	SM_EV_ADMIN,        /* one admin connection */
	SM_EV_STORE,        /* the storage thread's completions */
	SM_EV_CHAN          /* eventfd: edge workers put chunks into our chans (core/chan.h) */
};

struct sm_ev {
	int kind;           /* enum sm_ev_kind */
	int fd;
};

/* Link states. */
enum sm_link_state {
	SM_LINK_HELLO = 0,  /* waiting for WIRE_HELLO; nothing else is accepted */
	SM_LINK_READY,      /* hello accepted: sessions may open */
	SM_LINK_DEAD        /* killed: ignored until the loop reaps it */
};

/* A frame of a confirming link whose outcome is still pending (a storage
 * job, a stanza parked while its account loads): the link's confirmations
 * stop before it until every holder released it (sm.c "Confirmations"). */
struct sm_obl {
	struct sm_obl *next;       /* link->obl */
	struct sm_link *link;      /* NULL once the link is gone */
	uint64_t seq;              /* the frame's number on its link (HELLO is 1) */
	uint32_t refs;             /* holders: jobs, parked copies */
};

struct sm_link {
	struct sm_ev ev;
	struct sm *sm;
	uint32_t id;               /* for logs and `sessions` */
	uint16_t worker;           /* from WIRE_HELLO */
	int state;                 /* enum sm_link_state */
	bool epollout;             /* EPOLLOUT is armed */
	bool epollin_off;          /* EPOLLIN is not armed: input held (output.c) */
	bool flush_queued;         /* on sm->flush list */
	char peer[64];             /* where it came from, for logs */
	struct sm_buf in, out;
	struct chan *cin, *cout;   /* in-process link (ev.fd -1): from and to the worker or shard */
	uint16_t shard_peer;       /* a link to shard shard_peer - 1 of this process; 0: an edge's */
	struct sm_relay *relay;    /* cross-shard messages it was given lately (sm/adopt.c) */
	struct sm_tab sessions;    /* sid -> sm_session.by_sid */
	struct sm_session *shead;  /* all sessions of this link */
	size_t nsessions;
	uint64_t frames_in, frames_out;
	uint64_t dropped;          /* frames for unknown or not-yet-bound sessions */
	bool s2s;                  /* WIRE_DOMAIN_S2S: carries server-to-server traffic (remote.c) */
	/* Confirmations (sm.c): a socket link is told which of its frames are
	 * handled (WIRE_HANDLED), so its edge can keep copies until then. */
	bool confirm;
	uint64_t confirmed;        /* the count last sent */
	struct sm_obl *obl, *obl_tail; /* frames whose outcome is still pending, in order */
	unsigned ncomps;           /* component domains UP on this link (remote.c) */
	struct sm_link *next, *prev;   /* sm->links */
	struct sm_link *flush_next;    /* sm->flush */
	struct sm_link *dead_next;     /* sm->dead */
};

enum sm_session_state {
	SM_SESS_OPEN = 0,   /* WIRE_SESSION_OPEN seen */
	SM_SESS_AUTHED,     /* WIRE_AUTHED: knows its bare JID */
	SM_SESS_BINDING,    /* bind requested: waits for its account's record to load */
	SM_SESS_BOUND       /* resource bound: routable */
};

struct sm_session {
	struct sm_tab_node by_sid;     /* link->sessions */
	struct sm_tab_node by_jid;     /* sm->by_jid, when bound */
	struct sm_link *link;
	uint64_t sid;
	int state;                     /* enum sm_session_state */
	uint8_t flags;                 /* WIRE_OPEN_* */
	char addr[SM_ADDR_MAX];
	char *bare;                    /* canonical user@domain once authed */
	char *full;                    /* canonical full JID once bound */
	size_t bare_len, full_len;
	struct sm_user *user;          /* once bound */
	bool available;                /* last broadcast presence was available */
	bool initial_done;             /* initial presence has been processed */
	bool roster_requested;         /* asked for the roster: gets roster pushes */
	bool blocklist_requested;      /* asked for the blocklist: gets block pushes (XEP-0191) */
	bool carbons;                  /* XEP-0280 enabled; counted in user->ncarbons */
	char **directed;               /* bare or full JIDs sent directed available presence
	                                  and not in its from/both set (§4.6.3) */
	unsigned ndirected;
	bool credited;                 /* its edge grants credit (WIRE_CREDIT): flow-controlled */
	int64_t credit;                /* stanza bytes it may still be sent; <= 0: its client is behind */
	struct sm_session *waiting_on; /* paused until this blocked session catches up */
	struct sm_session *waiters;    /* sessions paused because they wrote to this one */
	struct sm_session *wnext, *wprev;  /* waiting_on->waiters */
	int priority;                  /* of the current available presence */
	char *presence;                /* raw current available presence (no `to`) */
	size_t presence_len;
	const struct sm_caps_entry *caps; /* its XEP-0115 caps (sm/caps.c); NULL: none known */
	uint64_t caps_gen;             /* valid while caps->gen still equals it */
	bool caps_pending;             /* its caps' ver was asked, answer not in (sm/caps.c) */
	struct sm_session *bnext;          /* user->binding while its bind waits */
	uint64_t tx;                       /* stanza bytes sent to it (WIRE_DELIVERED counts the same) */
	struct sm_track *thead, *ttail;    /* tracked deliveries not yet reported written (sm.c) */
	struct sm_session *lnext, *lprev;  /* link->shead */
	struct sm_session *unext, *uprev;  /* user->shead */
	/* XEP-0198 resumption on another edge (sm/adopt.c). */
	char *smk_id;                      /* its resumption id (WIRE_SMACKS); NULL: not resumable */
	size_t smk_id_len;
	uint32_t smk_max;                  /* seconds it outlives its edge */
	uint32_t smk_h;                    /* its client's stanzas handled (WIRE_SMACKS h + sent since) */
	int64_t orphan_until;              /* orphaned (its edge is gone): ends then (ms, monotonic;
	                                      1: now); 0: not orphaned */
	struct sm_tab_node by_previd;      /* orphans by id */
	struct sm_session *onext, *oprev;  /* orphans */
	struct sm_adopt_item *okept, *okept_tail; /* orphaned: untracked stanzas kept, in order */
	size_t okept_bytes;                /* orphaned: stanza bytes sent to it since */
};

/* One roster row (RFC 6121 §2.1.2), as stored. */
struct sm_roster_item {
	char *contact;      /* canonical bare JID */
	char *name;         /* "" when none */
	char *groups;       /* group names joined by '\n'; "" when none */
	int sub;            /* enum sm_sub */
	bool ask;           /* Pending Out: ask='subscribe' */
	bool preapproved;   /* RFC 6121 §3.4 */
	bool listed;        /* in the user's roster; false: only a pending-in request (sub.h) */
	char *pending_in;   /* Pending In: the contact's subscribe stanza, re-sent at login; NULL: none */
	size_t pending_in_len;
	uint64_t ver;       /* roster version when this row last changed (§2.6) */
};

/* A parked stanza: waits for its target's record to load (sm/user.c). */
struct sm_parked {
	struct sm_parked *next;
	struct sm_obl *obl;  /* the frame it came in, not confirmed before its replay */
	size_t from_len, frame_len;
	char *from;         /* the sender's full JID (points into data) */
	uint8_t *frame;     /* the encoded WIRE_STANZA (points into data) */
	uint8_t data[];
};

enum sm_user_state {
	SM_USER_LOADING = 0,   /* its rows are being read: stanzas for it are parked */
	SM_USER_READY          /* in memory, current */
};

/*
 * An account in memory: loaded while it has bound sessions, or briefly while
 * a stanza for it is handled (offline delivery, subscription requests).
 * Changes are made here first and written behind (store jobs, in order), so
 * the in-memory record is always the truth while it exists.
 */
struct sm_user {
	struct sm_tab_node node;       /* sm->users */
	char *bare;
	size_t bare_len;
	int state;                     /* enum sm_user_state */
	bool exists;                   /* an account (false: a JID of ours nobody has) */
	uint64_t roster_ver;           /* last roster version handed out (§2.6) */
	struct sm_session *shead;      /* bound sessions */
	unsigned nsessions;
	struct sm_session *binding;    /* sessions whose bind waits for the load (bnext) */
	struct sm_parked *parked, *parked_tail;
	unsigned nparked;
	unsigned refs;                 /* holders besides sessions (jobs in flight) */
	bool offline_busy;             /* its stored messages are being listed */
	bool offline_again;            /* ... and asked for again meanwhile: list once more */
	int64_t *inflight;             /* offline rows handed to a session, not settled (offline.c) */
	size_t ninflight, inflight_cap;
	int8_t mam_default;            /* XEP-0313 prefs default (SM_MAM_*); -1: the server's */
	struct sm_roster_item *roster;
	size_t nroster, roster_cap;
	char **blocked;                /* XEP-0191 blocklist: canonical JIDs */
	size_t nblocked, blocked_cap;
	unsigned ncarbons;             /* bound sessions with carbons enabled (XEP-0280) */
};

struct sm_store;
struct sm_admin;
struct xmlstage;

/* The session server's counters (core/metrics.h: written by the sm thread,
 * read by an admin thread; sm/metrics.c names them).  Kinds are WIRE_KIND_*. */
struct sm_stats {
	uint64_t sessions, links, users, store_pending;   /* gauges, set once per loop batch */
	uint64_t routed[4];           /* stanzas from sessions, by kind */
	uint64_t delivered[4];        /* stanzas sent to sessions, by kind */
	uint64_t offline_stored;      /* messages put in offline storage */
	uint64_t stanza_errors;       /* errors returned to a sender */
	uint64_t binds;               /* resources bound */
	uint64_t store_jobs;
	uint64_t shard_out, shard_in; /* stanzas to / from the other shards */
	uint64_t orphans;             /* gauge: sessions kept with their edge gone (sm/adopt.c) */
	uint64_t orphaned, adopted, orphans_expired; /* ... kept; then adopted, or ended */
	struct mhist store_latency;   /* storage jobs: submitted to done() */
} __attribute__((aligned(64)));

struct sm {
	struct sm_stats stats;
	int epfd;
	struct sm_ev wake;             /* eventfd */
	struct sm_ev listen;           /* fd -1 when embedded only */
	char *listen_unix;             /* path to unlink at free, or NULL */
	struct sm_admin *admin;        /* NULL when no admin socket */
	char **domains;                /* canonical */
	size_t ndomains;
	char *secret;                  /* NULL: links need none */
	size_t secret_len;
	struct sm_store *store;
	struct sm_ev store_ev;         /* its eventfd */
	struct sm_ev chan_ev;          /* eventfd the in-process links' producers write */
	bool chan_full;                /* a chan was full: flush again soon */
	struct xmlstage *xs;
	struct sm_tab users;           /* bare JID -> sm_user */
	struct sm_tab by_jid;          /* full JID -> bound sm_session */
	struct sm_link *links;
	size_t nlinks;
	uint32_t next_link_id;
	struct sm_link *flush;         /* links with output to write after this batch */
	bool hold;                     /* input waits: some link's output is backed up (output.c) */
	bool over;                     /* a link's output passed SM_LINK_OUT_HIGH since the last check */
	bool chan_pending;             /* chans signalled while input was held */
	struct sm_link *dead;          /* links to reap after this batch */
	struct sm_buf scratch;         /* stanza rewriting / building; reused */
	struct sm_buf reply;           /* iq replies (sm/iq.c), built while scratch holds a payload */
	struct sm_pep *pep;            /* PEP service state (sm/pep.c); NULL until used */
	struct sm_caps *caps;          /* entity-capabilities cache (sm/caps.c); NULL until used */
	uint64_t push_seq;             /* ids of roster pushes */
	struct sm_session *sender;     /* whose stanza is being routed (flow control) */
	struct sm_muc *muc;            /* the group-chat service (sm/muc.c); NULL: none */
	struct sm_pubsub *pubsub;      /* the PubSub service (sm/pubsub.c); NULL: none */
	struct sm_upload *upload;      /* the upload service's disco (sm/upload.c); NULL: none */
	struct sm_link *obl_link;      /* the confirming link whose frame is being handled */
	struct sm_obl *obl;            /* its pending outcome, once something held it */
	bool hide_os;                  /* XEP-0092: no <os/> (sm_config.hide_os) */
	unsigned mam_retention_days;   /* XEP-0313 archive; 0: off (sm/mam.c) */
	int mam_default;               /* SM_MAM_NEVER / _ROSTER / _ALWAYS for accounts with none */
	bool mam_swept;                /* a retention sweep was submitted ... */
	int64_t mam_swept_at;          /* ... at this CLOCK_MONOTONIC second */
	struct sm_remote *remote;      /* external routes (sm/remote.c); NULL until used */
	struct sm_adhoc *adhoc;        /* ad-hoc commands: admins, command sessions (sm/adhoc.c) */
	struct sm_gather *gather;      /* questions to the other shards (sm/gather.c); NULL until used */
	uint64_t *shard_names;         /* H(name) of each shard (parser/shard.h); NULL: one shard */
	size_t nshards, shard_self;
	struct sm_adopt *adopt;        /* orphaned sessions (sm/adopt.c); NULL until the first */
	struct sm_link **peers;        /* [k]: the in-process link to shard k, or NULL (remote.c) */
	size_t npeers;
	void (*tick)(void *arg, size_t nsessions, size_t nlinks); /* sm_config.tick */
	void *tick_arg;
	int tick_ms;
	bool stopping;
};

/* sm/sm.c — services the other modules use. */
bool sm_domain_served(const struct sm *sm, const char *d, size_t n);
/* Does this shard own the account with the canonical bare JID bare[0..n)? */
bool sm_owns(const struct sm *sm, const char *bare, size_t n);
struct sm_session *sm_session_find(struct sm *sm, const char *full, size_t n);
/* A session joins / leaves the sessions of link l (its sid table and list). */
void sm_session_link(struct sm_link *l, struct sm_session *s);
void sm_session_unlink(struct sm_link *l, struct sm_session *s);
/* The live link with this id, or NULL (gone or dead): for completions. */
struct sm_link *sm_link_by_id(struct sm *sm, uint32_t id);

/* sm/members.c: a PING of an edge moving a session off this shard
 * (SHARD_MOVE_TOKEN): true when it is answered later, after storage. */
bool sm_members_ping(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* Queue a frame on a link; a dead link swallows it.  Kills the link when its
 * output exceeds SM_LINK_OUT_MAX. */
void sm_link_send(struct sm_link *l, const struct wire_msg *m);
void sm_link_kill(struct sm_link *l, const char *why);
/* Send STANZA(t->sid, ...) on t's link: the routing header (empty strings
 * when absent) and the raw bytes the edge writes to the client as they are. */
void sm_deliver(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		struct wire_str to, struct wire_str from, struct wire_str id, struct wire_str ns,
		const void *raw, size_t rawlen);
/* sm_deliver() tracked until the edge reports it written to the client: a
 * stored message (offline row id: deleted then), or a live message (row 0:
 * moved to another resource or stored offline again if the session ends
 * first).  0, or -ENOMEM for a row (not sent; a live message then goes out
 * untracked). */
int sm_deliver_tracked(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		       struct wire_str to, struct wire_str from, struct wire_str id,
		       struct wire_str ns, const void *raw, size_t rawlen, int64_t row);
struct sm_session *sm_session_by_sid(struct sm_link *l, uint64_t sid);
static inline struct wire_str sm_ws(const char *s)
{
	return wire_s(s, s ? strlen(s) : 0);
}
/* Listen on a Unix stream socket at path with the given mode; a stale socket
 * file (nobody accepting) is removed first, a live one or a non-socket file
 * is an error.  Returns the non-blocking fd or -errno. */
int sm_unix_listen(const char *path, unsigned mode);
/* Tell the edge to end s (SESSION_CLOSE with reason) and end it here. */
void sm_session_kick(struct sm *sm, struct sm_session *s, int reason);
/* Forget s: unavailable presence broadcast if it was available, unbind, free. */
void sm_session_end(struct sm *sm, struct sm_session *s);
/* The account bare was deleted: its record (if held) no longer exists, and
 * every session of it is closed (KICKED); returns how many. */
unsigned sm_account_deleted(struct sm *sm, const char *bare);
/* sm/account.c — the bare JID of (user, domain), or -1 when it is not one of
 * a served domain; CRED_REQ and REGISTER frames from an edge. */
int sm_account_bare(const struct sm *sm, struct wire_str user, struct wire_str domain, char *out,
		    size_t cap);
void sm_account_cred_req(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
void sm_account_register(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* Complete the bind of s (state BINDING, s->full set) with its account's
 * record u; u NULL: the record could not be loaded (temporary failure). */
void sm_bind_finish(struct sm *sm, struct sm_session *s, struct sm_user *u);

/* sm/user.c — account records (see the file comment) */
struct sm_user *sm_user_find(struct sm *sm, const char *bare, size_t n);
/* The READY record of bare; NULL while it loads: then the stanza m from
 * `from` (a full JID) is parked and replayed through sm_route_replay().
 * NULL also when out of memory or too many are parked (logged, dropped). */
struct sm_user *sm_user_need(struct sm *sm, const char *bare, size_t n, const char *from,
			     size_t from_len, const struct wire_msg *m);
/* Bind s to its account: sm_bind_finish() runs now or once the record is
 * loaded.  -ENOMEM when the record cannot even be created. */
int sm_user_bind(struct sm *sm, struct sm_session *s);
/* s, waiting in sm_user_bind(), ends: forget it. */
void sm_user_unbind_wait(struct sm *sm, struct sm_session *s);
/* Free u if nothing holds it any more (sessions, binds, parked, refs). */
void sm_user_release(struct sm *sm, struct sm_user *u);
/* Roster of u: find the item for contact (NULL if none). */
struct sm_roster_item *sm_roster_find(struct sm_user *u, const char *contact);
/* The item for contact, created empty (none, no name) if missing; NULL at
 * the SM_MAX_ROSTER limit or out of memory. */
struct sm_roster_item *sm_roster_add(struct sm_user *u, const char *contact);
/* Insert or replace an item's name and subscription; returns it or NULL. */
struct sm_roster_item *sm_roster_set(struct sm_user *u, const char *contact, const char *name,
				     int sub);
void sm_roster_remove(struct sm_user *u, struct sm_roster_item *it);

/* sm/route.c */
/* Types a stanza can carry, as far as routing cares (SM_RT_*). */
enum sm_rt {
	SM_RT_NONE = 0,    /* attribute absent: message normal / presence available */
	SM_RT_NORMAL, SM_RT_CHAT, SM_RT_GROUPCHAT, SM_RT_HEADLINE, SM_RT_ERROR,
	SM_RT_UNAVAILABLE, SM_RT_SUBSCRIBE, SM_RT_SUBSCRIBED, SM_RT_UNSUBSCRIBE, SM_RT_UNSUBSCRIBED, SM_RT_PROBE,
	SM_RT_GET, SM_RT_SET, SM_RT_RESULT,
	SM_RT_OTHER        /* not valid for this kind */
};

/* The `to` of the stanza being routed, canonicalised. */
struct sm_route_to {
	bool present;           /* the stanza had a `to` */
	bool valid;             /* it parsed as a JID */
	bool has_local, has_resource;
	bool served;            /* its domain is one of ours */
	char full[JID_MAX + 1]; /* canonical, with the resource when there is one */
	char bare[JID_MAX + 1]; /* canonical local@domain, or the domain */
	size_t full_len, bare_len;
};

/* One stanza being routed. */
struct sm_route_ctx {
	struct sm *sm;
	struct sm_session *s;          /* the sender; NULL when replayed (it may be gone)
	                                  or external */
	bool remote;                   /* the sender is an external entity (a remote
	                                  server's or a component's JID): answers go
	                                  out through sm_remote_send() */
	const char *from;              /* the sender's full JID */
	size_t from_len;
	char from_bare[JID_MAX + 1];   /* and its bare JID */
	size_t from_bare_len;
	const struct wire_msg *m;
	int kind;
	int type;                      /* enum sm_rt */
	struct sm_route_to to;
};

void sm_route_stanza(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* The inbound half of routing: m from `from` (a canonical JID) to a local
 * entity.  Serves parked stanzas (sm/user.c) once their target's record is
 * ready -- only the target's half runs again, the sender may be gone -- and
 * stanzas from external entities (sm/remote.c), whose answers go back out
 * through sm_remote_send(). */
void sm_route_replay(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m);
/* Store a message again for user (its session ended before the edge wrote it). */
void sm_route_requeue(struct sm *sm, const char *user, const void *raw, size_t len);
/* Send a stored message (offline row id) to s, tracked: 0, or -ENOMEM (not sent). */
int sm_route_offline(struct sm *sm, struct sm_session *s, int64_t id, const void *raw,
		     size_t len);
/* Tell `to` (a local full JID, if still online, or an external JID) that
 * its stanza (kind, id, sent to `from`) failed with the stanza error cond. */
void sm_route_bounce(struct sm *sm, const char *to, int kind, const char *id, const char *from,
		     const char *cond);
/* Answer s's stanza m with the stanza error cond (RFC 6120 §8.3). */
void sm_route_error(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		    const char *cond);
/* For sm/presence.c: the enum sm_rt of a type attribute of this kind. */
int sm_route_type_parse(int kind, struct wire_str t);
/* Parse and canonicalise a `to` attribute into *to. */
void sm_route_to_parse(struct sm *sm, struct wire_str raw, struct sm_route_to *to);
/* Copy raw into sm->scratch with `to` (and `from` unless NULL) set in its
 * start tag.  false: no start tag, or out of memory. */
bool sm_route_rewrite(struct sm *sm, const void *raw, size_t len, const char *to,
		      const char *from);
/* Forward the stanza being routed, unchanged, to t. */
void sm_route_forward(struct sm_route_ctx *c, struct sm_session *t);
/* ... to every available session of u with priority >= min_prio; how many. */
unsigned sm_route_forward_available(struct sm_route_ctx *c, struct sm_user *u, int min_prio);

/* sm/presence.c — see the file comment */
/* A presence stanza from a bound session (c->s set). */
void sm_presence_route(struct sm_route_ctx *c);
/* A parked presence stanza (subscription or probe) replayed: its inbound half. */
void sm_presence_replay(struct sm_route_ctx *c);
/* Broadcast s's unavailable presence (session ending without saying so),
 * to directed-presence targets too. */
void sm_presence_gone(struct sm *sm, struct sm_session *s);
/* Send presence of type `type` (a subscription type) from u's bare JID to
 * contact on u's behalf, as if u's client had sent it to the contact's server
 * (inbound half only: u's own row is the caller's business). */
void sm_presence_sub_send(struct sm *sm, struct sm_user *u, const char *contact,
			  const char *type);
/* Send contact unavailable presence from each available resource of u. */
void sm_presence_unavailable_to(struct sm *sm, struct sm_user *u, const char *contact);
/* Forget the directed-presence JIDs of s (its memory). */
void sm_presence_directed_clear(struct sm_session *s);

/* sm/roster.c — see the file comment */
struct sm_sub_state sm_roster_state(const struct sm_roster_item *it);
void sm_roster_state_set(struct sm_roster_item *it, const struct sm_sub_state *st);
/* Push one roster item to u's interested resources (RFC 6121 §2.1.6). */
void sm_roster_push(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it,
		    bool removed);
/* it changed: give it the next roster version and write it behind; an item
 * neither listed nor pending is deleted (row and memory: it is invalid
 * after).  Sends no push. */
void sm_roster_save(struct sm *sm, struct sm_user *u, struct sm_roster_item *it);
/* Delete it (row and memory), with a new version. */
void sm_roster_drop(struct sm *sm, struct sm_user *u, struct sm_roster_item *it);
/* A jabber:iq:roster get or set from s (to its own account). */
void sm_roster_iq(struct sm *sm, struct sm_session *s, const struct wire_msg *m, bool get);

/* sm/offline.c — see the file comment */
/* Store raw for user (a message from `from`, id and to as the sender wrote
 * them, for the error if the store refuses).  0 or -ENOMEM. */
int sm_offline_store(struct sm *sm, const char *user, const char *from, int kind,
		     struct wire_str id, struct wire_str to, const void *raw, size_t len);
/* Send s (available, priority >= 0) the messages stored for its account. */
void sm_offline_deliver(struct sm *sm, struct sm_session *s);
/* The rows with these ids reached a client: delete them. */
void sm_offline_forget(struct sm *sm, const int64_t *ids, size_t n);
/* Rows of u handed to a session and not settled yet (see offline.c). */
bool sm_offline_inflight_has(const struct sm_user *u, int64_t id);
int sm_offline_inflight_add(struct sm_user *u, int64_t id);
void sm_offline_inflight_del(struct sm_user *u, int64_t id);
/* u's session that stored messages go to now (available, priority >= 0,
 * the highest), other than skip; NULL: none. */
struct sm_session *sm_offline_target(struct sm_user *u, const struct sm_session *skip);

/* sm/kv.c — vCard (XEP-0054) and private XML (XEP-0049); see the file comment */
#define SM_KV_VALUE_MAX (64u * 1024)     /* one stored value, serialised */
#define SM_KV_ITEMS_MAX 16               /* distinct elements in one private get/set */
#define SM_KV_PRIVATE_MAX 256            /* private XML keys per account */
struct sm_iq;
void sm_kv_vcard(struct sm_iq *q);       /* <vCard xmlns='vcard-temp'/> get/set */
void sm_kv_private(struct sm_iq *q);     /* <query xmlns='jabber:iq:private'/> get/set */
/* Write the kv row (user, ns, key) = val[0..len), or delete it (val NULL),
 * behind (a storage job holding the frame being handled). */
void sm_kv_put_behind(struct sm *sm, const char *user, const char *ns, const char *key,
		      const void *val, size_t len);

/* sm/version.c — XEP-0092 on the server's domain */
void sm_version_iq(struct sm_iq *q);
/* sm/mam.c — XEP-0313 archive of one-to-one messages (see the file comment) */
struct sm_mam_copy;
bool sm_mam_on(const struct sm *sm);
/* Archive the copy of m (a message sent by local account `user`, addressed
 * to to[0..to_len)) for its sender, if it is archived (chat/normal with a
 * body, no no-store hint; the caller checks the type). */
void sm_mam_outgoing(struct sm *sm, const char *user, const char *to, size_t to_len,
		     const struct wire_msg *m);
/* The recipient `user`'s copy of m (sent by from[0..from_len)): NULL when it
 * is not archived.  Otherwise *out is m with the stanza to deliver instead
 * (stanza-id added; it points into the copy), and the caller, once it has
 * delivered or stored *out, hands the copy to sm_mam_commit(). */
struct sm_mam_copy *sm_mam_incoming(struct sm *sm, const char *user, const char *from,
				    size_t from_len, const struct wire_msg *m,
				    struct wire_msg *out);
/* Submit the copy (NULL: nothing); it is the store's from then on. */
void sm_mam_commit(struct sm *sm, struct sm_mam_copy *c);
/* The sm loop's epoll timeout (ms, -1: none) and its tick: the retention sweep. */
int sm_mam_timeout(const struct sm *sm);
void sm_mam_tick(struct sm *sm);
/* iq handlers (sm/iq.c): <query/> and <prefs/> in urn:xmpp:mam:2. */
void sm_mam_query(struct sm_iq *q);
void sm_mam_prefs(struct sm_iq *q);
/* sm/blocking.c — XEP-0191 blocking command (see the file comment) */
#define SM_MAX_BLOCKLIST 1024             /* items in one account's blocklist */
void sm_blocking_iq_list(struct sm_iq *q);
void sm_blocking_iq_block(struct sm_iq *q);
void sm_blocking_iq_unblock(struct sm_iq *q);
/* Whether the blocklist entry item (canonical JID) matches jid (canonical,
 * full or bare), by the JID matching rules of XEP-0016 §2.1. */
bool sm_blocking_match(const char *item, const char *jid);
/* Whether u (NULL: none) blocks jid. */
bool sm_blocking_has(const struct sm_user *u, const char *jid);
/* Whether a stanza from `from` (of account fu, NULL when not loaded) to
 * `to` (of account tu, NULL likewise) is stopped by either blocklist. */
static inline bool sm_blocking_between(const struct sm_user *fu, const char *from,
				       const struct sm_user *tu, const char *to)
{
	return (fu && fu->nblocked && sm_blocking_has(fu, to)) ||
	       (tu && tu->nblocked && sm_blocking_has(tu, from));
}
/* route.c, before routing m from `from` (a full JID; fu its account, NULL:
 * looked up) to `to` (canonical
 * full or bare JID): true when a blocklist stops it; the sender has then
 * been answered as XEP-0191 §3.3 says (not-acceptable + <blocked/> for its
 * own block, service-unavailable for messages and iq get/set it is blocked
 * by, nothing for the rest). */
bool sm_blocking_check(struct sm *sm, struct sm_user *fu, const char *from, size_t from_len,
		       const struct wire_msg *m, const char *to, size_t to_len);

/* sm/carbons.c — XEP-0280 message carbons (see the file comment) */
void sm_carbons_iq_enable(struct sm_iq *q);
void sm_carbons_iq_disable(struct sm_iq *q);
bool sm_carbons_received_copy(struct sm *sm, struct sm_session *t, const struct wire_msg *m);
void sm_carbons_sent_copy(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* route.c: message m goes to t: copy it to t's other enabled resources.
 * True when m was delivered to t here (without its <private/>, §9): the
 * caller then does not forward it. */
static inline bool sm_carbons_received(struct sm *sm, struct sm_session *t,
				       const struct wire_msg *m)
{
	return t->user && t->user->ncarbons && sm_carbons_received_copy(sm, t, m);
}
/* route.c: s sent message m (routed): copy it to s's other enabled resources. */
static inline void sm_carbons_sent(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	if (s->user && s->user->ncarbons)
		sm_carbons_sent_copy(sm, s, m);
}
/* sm/pep.c — XEP-0163 PEP (see the file comment) */
/* iq handlers (sm/iq.c rows): pubsub and pubsub#owner payloads on an account. */
void sm_pep_iq(struct sm_iq *q);
void sm_pep_owner_iq(struct sm_iq *q);
/* s sent an available presence (raw, as routed; initial: its first since
 * unavailable): read its entity capabilities (sm/caps.c), send last
 * published items. */
void sm_pep_presence(struct sm *sm, struct sm_session *s, const void *raw, size_t len,
		     bool initial);
/* An iq result or error from s to the server: true when it answered one of
 * the disco#info queries of sm/caps.c (consumed). */
bool sm_pep_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* Free the PEP state and the capabilities cache (sm_free()). */
void sm_pep_free(struct sm *sm);

/* sm/caps.c — XEP-0115 entity capabilities (see the file comment) */
struct sm_caps_entry;
/* What an available presence told of s's capabilities. */
enum sm_caps_news {
	SM_CAPS_NONE,        /* none announced (or unreadable): s has none known */
	SM_CAPS_ASKED,       /* a ver not known yet: s is asked, see sm_caps_iq_answer() */
	SM_CAPS_SAME,        /* known, the same entry s had before this presence */
	SM_CAPS_NEW,         /* known, not what s had before */
};
/* Read the <c/> of s's available presence (raw, as routed); s's
 * capabilities become that ver's cached entry, or none until its answer. */
enum sm_caps_news sm_caps_presence(struct sm *sm, struct sm_session *s, const void *raw,
				   size_t len);
/* An iq result or error from s to the server: true when it answered one of
 * the disco#info queries (consumed); *known then says whether s's
 * capabilities just became known (s still announces that ver). */
bool sm_caps_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		       bool *known);
/* Do s's known capabilities list node+notify (XEP-0163 §4.3.3)? */
bool sm_caps_wants(const struct sm_session *s, const char *node);
/* XEP-0115 §5.1/§5.4: does ver, by the hash function named hash ("sha-1",
 * "sha-256"), describe the disco#info <query/> answer?  False as well for an
 * unknown hash or an ill-formed answer (duplicate identities, features or
 * form types). */
struct xtree_node;
bool sm_caps_verify(const char *hash, const char *ver, const struct xtree_node *query);
/* Free the cache and the queries in flight (sm_pep_free()). */
void sm_caps_free(struct sm *sm);

/* sm/remote.c — external routes: components and s2s (see the file comment) */
#define SM_MAX_COMPONENTS 1024            /* component domains known at once */
struct sm_remote;
/* A WIRE_DOMAIN frame from l: a component up or down, or s2s offered. */
void sm_remote_domain(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* A WIRE_ROUTE frame from l: a stanza from an external entity. */
void sm_remote_in(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* l is dying: its components go down, it carries no more s2s (idempotent). */
void sm_remote_link_gone(struct sm *sm, struct sm_link *l);
/*
 * Send a stanza to an external entity: m->u.stanza (kind, type, to, from,
 * id, ns, raw) with `to` on a domain we do not serve and `from` the
 * sender's JID.  It goes to the component serving `to`'s domain (or a
 * parent domain), else to an s2s link.  True when handed to an edge; false
 * when it could not be: the sender was then answered with an error as RFC
 * 6120 §8.3 says (never for an error), wherever it is.  raw may point into
 * sm->scratch: nothing here uses scratch.
 */
bool sm_remote_send(struct sm *sm, const struct wire_msg *m);
/* Whether the canonical JID jid[0..n) is on a domain we do not serve. */
bool sm_remote_jid(const struct sm *sm, const char *jid, size_t n);
/* Free the routes (sm_free()). */
void sm_remote_free(struct sm *sm);

/* sm/returned.c — XEP-0198 §4: stanzas a session's client never acknowledged,
 * handed back by the edge (WIRE_STANZA_RETURNED) before the session ends. */
/* Route m (returned by s's edge) as undeliverable to s's full JID. */
void sm_returned(struct sm *sm, struct sm_session *s, const struct wire_msg *m);

/* sm/moved.c — XEP-0198 resumption on another edge worker: WIRE_SESSION_MOVE
 * from l re-keys the bound session it names to (l, m->sid). */
void sm_moved(struct sm *sm, struct sm_link *l, const struct wire_msg *m);

/* sm/adopt.c — XEP-0198 resumption on another edge: a resumable session
 * outlives its edge's link as an orphan until another edge adopts it. */
struct sm_adopt_item;
/* WIRE_SMACKS: the session is resumable under an id for max seconds (0: no longer). */
void sm_adopt_smacks(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* s's link is going away: true when s is kept as an orphan (it left the link). */
bool sm_adopt_keep(struct sm *sm, struct sm_session *s);
/* WIRE_ADOPT: the stream's session m->sid of l takes an orphan over. */
void sm_adopt_in(struct sm *sm, struct sm_link *l, const struct wire_msg *m);
/* deliver(): a stanza sent to the orphan t (tracked ones are on its track list). */
void sm_adopt_held(struct sm *sm, struct sm_session *t, int kind, const void *raw, size_t len,
		   uint8_t flags);
/* s is being freed: off the orphans, its adoption state freed. */
void sm_adopt_forget(struct sm *sm, struct sm_session *s);
/* The loop: end orphans whose time is up; the epoll timeout that honours it (-1: none). */
void sm_adopt_tick(struct sm *sm);
int sm_adopt_timeout(struct sm *sm);
void sm_adopt_free(struct sm *sm);
/* The admin `sessions` command: a line per orphan into out; how many. */
size_t sm_adopt_list(struct sm *sm, struct sm_buf *out);
/* Cross-shard messages relayed through an edge link l (remote.c shard_out)
 * are kept a second; when l dies they are routed again through another
 * edge (its edge may have died with them).  The ring is freed then too. */
void sm_adopt_relay_keep(struct sm_link *l, const struct wire_msg *f);
void sm_adopt_relay_lost(struct sm *sm, struct sm_link *l);
/* sm.c for adopt.c: t's tracked deliveries start again on a new edge (sent
 * again, its byte count from zero); and ending a session without telling anyone. */
void sm_track_restart(struct sm *sm, struct sm_session *t);
void sm_session_discard(struct sm *sm, struct sm_session *s);

/* sm/adhoc.c — XEP-0050 ad-hoc commands, XEP-0133 administration (see the file comment) */
struct sm_adhoc;
int sm_adhoc_init(struct sm *sm, const struct sm_config *cfg);   /* 0, -1: logged or ENOMEM */
void sm_adhoc_free(struct sm *sm);
/* iq handler (sm/iq.c row): <command xmlns='http://jabber.org/protocol/commands'/>. */
void sm_adhoc_iq(struct sm_iq *q);
/* route.c: a disco#info (items false) or disco#items query from s to the
 * domain; true when it named a node of ours and was answered here. */
bool sm_adhoc_disco(struct sm *sm, struct sm_session *s, const char *from,
		    const struct wire_msg *m, bool items);

/* This shard's online sessions of `domain` get a headline message from it
 * (subject NULL: none; body: the text); how many sessions (gather.c). */
unsigned long sm_adhoc_announce_local(struct sm *sm, const char *domain, const char *subject,
				      const char *body);

/* sm/gather.c — a question every shard answers about itself, answers
 * gathered (see the file comment). */
#define SM_GATHER_NS "urn:xedge:gather:0"
#define SM_GATHER_MAX 32                  /* questions in flight per shard */
#define SM_GATHER_DEADLINE_MS 2000        /* a question ends then with what it has */
#define SM_GATHER_ANSWER_BYTES (192u * 1024) /* items of one shard's answer, serialised */
#define SM_GATHER_BYTES_MAX (512u * 1024) /* items gathered for one question */
enum sm_gather_op {
	SM_GATHER_ONLINE_NUM = 0,  /* accounts of `domain` with sessions: n */
	SM_GATHER_ONLINE_LIST,     /* ... and their bare JIDs (items: a) */
	SM_GATHER_ANNOUNCE,        /* subject/body to every session of `domain`: n sent */
	SM_GATHER_ROOMS,           /* public rooms: n, items a = room JID, b = name */
};
struct sm_gather_item {
	char *a, *b;               /* b NULL: none */
};
struct sm_gather_res {
	unsigned long n;           /* the shards' counts, summed */
	struct sm_gather_item *items; /* sorted by a; the caller's until done() returns */
	size_t nitems;
	bool cut;                  /* items left out: a bound (max, bytes) */
	unsigned missing;          /* shards that did not answer by the deadline */
};
struct sm_gather_req {
	int op;                    /* enum sm_gather_op */
	const char *domain;        /* the users' domain (online ops, announce) */
	unsigned max;              /* items per shard (0: the bytes bounds only) */
	const char *subject, *body; /* announce: the text (subject NULL: none) */
	/* Called once: with the answers, or with res NULL when the server
	 * stops first (only arg is to be freed). */
	void (*done)(struct sm *sm, const struct sm_gather_res *res, void *arg);
	void *arg;
};
/* Ask every shard (this one included, at once); done() may run before this
 * returns.  0, or -1 when too many are in flight (done() never runs). */
int sm_gather_start(struct sm *sm, const struct sm_gather_req *rq);
/* shard_in() (remote.c): true when m was a question or an answer (consumed). */
bool sm_gather_in(struct sm *sm, const struct wire_msg *m);
int sm_gather_timeout(const struct sm *sm);   /* ms to the next deadline; -1: none */
void sm_gather_tick(struct sm *sm);           /* end the questions whose time is up */
void sm_gather_free(struct sm *sm);

/* sm/admin.c */
struct sm_admin *sm_admin_open(struct sm *sm, const char *path);   /* NULL: logged */
void sm_admin_event(struct sm *sm, struct sm_ev *ev, uint32_t events);
void sm_admin_close(struct sm *sm, struct sm_admin *a);

/* ---- sm/output.c: link output, backpressure, confirmations -------------- */

void sm_link_flush(struct sm_link *l);
void sm_flush_all(struct sm *sm);          /* write every link with output */
/* Backpressure: after a flush, whether links' input must wait (some link's
 * output is over SM_LINK_OUT_HIGH; until all are under SM_LINK_OUT_LOW). */
bool sm_hold_input(struct sm *sm);
void sm_confirm_all(struct sm *sm);        /* WIRE_HANDLED to confirming links */
void sm_obl_link_gone(struct sm_link *l);  /* its pending frames outlive it */

/* ---- sm/muc.c: the group-chat service (XEP-0045) ------------------------ */

/* Serve `domain` (NULL or "": no service) keeping `history` messages per
 * room.  0, or -1 (logged). */
int sm_muc_open(struct sm *sm, const char *domain, unsigned history);
void sm_muc_free(struct sm *sm);
/* The storage is open: persistent rooms load (stanzas for rooms wait until then). */
void sm_muc_start(struct sm *sm);
/* d[0..n) (canonical) is the group-chat service's domain. */
bool sm_muc_domain(const struct sm *sm, const char *d, size_t n);
/* The room room[0..n) (canonical bare JID) is this shard's. */
bool sm_muc_owns(const struct sm *sm, const char *room, size_t n);
/* A stanza for the service or one of its rooms (this shard's) from the real
 * JID from[0..n). */
void sm_muc_in(struct sm *sm, const char *from, size_t n, const struct wire_msg *m);
/* This shard's public rooms, sorted by JID, through emit(arg, jid, name)
 * until it returns false; how many there are (sm/gather.c). */
unsigned long sm_muc_public_rooms(struct sm *sm, bool (*emit)(void *arg, const char *a,
							      const char *b), void *arg);
/* The service's <item/> in the server's disco#items. */
void sm_muc_disco_item(const struct sm *sm, struct sm_buf *b);
/* A stanza raw[0..len) from one of the services' JIDs (a room, the PubSub
 * service) to `to`: its session here, its shard, or its server. */
void sm_route_from_service(struct sm *sm, int kind, const char *type, const char *from,
			   const char *to, const char *id, const void *raw, size_t len);
/* One copy of a service's fan-out (a room's groupchat message or presence to
 * each occupant): as sm_route_from_service(), m (a WIRE_STANZA: kind, type,
 * from, to, id, ns, raw; from NUL-terminated) to the canonical full JID
 * m->u.stanza.to, but a session of this shard gets it without `to` being
 * parsed again (route.c says which rules apply). */
void sm_route_service_copy(struct sm *sm, const struct wire_msg *m);

/* ---- sm/upload.c: the XEP-0363 service's disco (the slots are the edge's) */

int sm_upload_open(struct sm *sm, const char *domain, uint64_t max_size);   /* 0 or -1 */
void sm_upload_free(struct sm *sm);
bool sm_upload_domain(const struct sm *sm, const char *d, size_t n);
void sm_upload_in(struct sm *sm, const char *from, size_t n, const struct wire_msg *m);
void sm_upload_disco_item(const struct sm *sm, struct sm_buf *b);

/* ---- sm/pubsub.c: the PubSub service (XEP-0060) ------------------------- */

/* Serve `domain` (NULL or "": none); the storage is open.  0 or -1. */
int sm_pubsub_open(struct sm *sm, const char *domain);
void sm_pubsub_free(struct sm *sm);
bool sm_pubsub_domain(const struct sm *sm, const char *d, size_t n);
void sm_pubsub_in(struct sm *sm, const char *from, size_t n, const struct wire_msg *m);
void sm_pubsub_disco_item(const struct sm *sm, struct sm_buf *b);
/* A stanza from the room JID `from` to `to` whose children are
 * payload[0..len) (sm/mam.c sends a room's archive results with it). */
void sm_muc_emit(struct sm *sm, int kind, const char *type, const char *from, const char *to,
		 const char *id, const void *payload, size_t len);

/* sm/mam.c, for rooms: archive a groupchat message (raw: as the room sent it,
 * from occupant `occupant`, stanza id `sid` from sm_mam_new_id()), and
 * answer an archive query at the room (NULL, or the error condition). */
void sm_mam_new_id(char *out);   /* 17 bytes */
void sm_mam_room_archive(struct sm *sm, const char *room, const char *occupant, const char *sid,
			 const void *raw, size_t len);
const char *sm_mam_room_query(struct sm *sm, const char *room, const char *requester,
			      const char *iq_id, const struct xtree_node *query);

#endif
