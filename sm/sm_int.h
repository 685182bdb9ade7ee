/*
 * sm_int — the session server's internal types, shared by its modules:
 *
 *   sm/sm.c     event loop, links (wire protocol), sessions, user records
 *   sm/route.c  stanza routing: messages, presence, iq, the server's own iq
 *   sm/store.c  SQLite storage: accounts, roster, offline messages
 *   sm/admin.c  the admin socket (xedgectl's line protocol)
 *   sm/tab.c    intrusive chained hash table; growable byte buffers
 *   sm/sub.c    presence-subscription state machine (pure; RFC 6121 App. A)
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
 *   struct sm_user   a bare JID with at least one bound session: its sessions
 *                    and its roster (loaded from the store at first bind).
 *                    Freed when its last session ends.
 */
#ifndef XEDGE_SM_INT_H
#define XEDGE_SM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
#define SM_MAX_PARKED 1024                /* stanzas waiting for one account to load */
#define SM_LINK_IN_MAX (WIRE_LEN_BYTES + WIRE_MAX_BODY)
#define SM_LINK_OUT_MAX (64u << 20)       /* unsent bytes before a link is dropped */
#define SM_ADDR_MAX 128                   /* client address string kept per session */
#define SM_MAX_ADMIN 16                   /* admin connections at once */
#define SM_ADMIN_LINE_MAX 8192
#define SM_RESOURCE_GEN_LEN 12            /* generated resources: base32 chars */

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
void sm_buf_fmt(struct sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_buf_consume(struct sm_buf *b, size_t n);
void sm_buf_clear(struct sm_buf *b);                 /* empty; keeps memory and max */
void sm_buf_free(struct sm_buf *b);
static inline size_t sm_buf_used(const struct sm_buf *b) { return b->len - b->off; }
static inline const uint8_t *sm_buf_data(const struct sm_buf *b) { return b->p + b->off; }

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
	SM_EV_STORE         /* the storage thread's completions */
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

struct sm_link {
	struct sm_ev ev;
	struct sm *sm;
	uint32_t id;               /* for logs and `sessions` */
	uint16_t worker;           /* from WIRE_HELLO */
	int state;                 /* enum sm_link_state */
	bool epollout;             /* EPOLLOUT is armed */
	bool flush_queued;         /* on sm->flush list */
	char peer[64];             /* where it came from, for logs */
	struct sm_buf in, out;
	struct sm_tab sessions;    /* sid -> sm_session.by_sid */
	struct sm_session *shead;  /* all sessions of this link */
	size_t nsessions;
	uint64_t frames_in, frames_out;
	uint64_t dropped;          /* frames for unknown or not-yet-bound sessions */
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
	bool credited;                 /* its edge grants credit (WIRE_CREDIT): flow-controlled */
	int64_t credit;                /* stanza bytes it may still be sent; <= 0: its client is behind */
	struct sm_session *waiting_on; /* paused until this blocked session catches up */
	struct sm_session *waiters;    /* sessions paused because they wrote to this one */
	struct sm_session *wnext, *wprev;  /* waiting_on->waiters */
	int priority;                  /* of the current available presence */
	char *presence;                /* raw current available presence (no `to`) */
	size_t presence_len;
	const struct sm_pep_caps *pep_caps; /* its XEP-0115 caps (sm/pep.c); NULL: none known */
	uint64_t pep_caps_gen;         /* valid while pep_caps->gen still equals it */
	bool pep_last_pending;         /* last published items wait for its caps' answer (sm/pep.c) */
	struct sm_session *bnext;          /* user->binding while its bind waits */
	struct sm_session *lnext, *lprev;  /* link->shead */
	struct sm_session *unext, *uprev;  /* user->shead */
};

/* One roster row (RFC 6121 §2.1.2), as stored. */
struct sm_roster_item {
	char *contact;      /* canonical bare JID */
	char *name;         /* "" when none */
	char *groups;       /* group names joined by '\n'; "" when none */
	int sub;            /* enum sm_sub */
	bool ask;           /* Pending Out: ask='subscribe' */
	bool preapproved;   /* RFC 6121 §3.4 */
	char *pending_in;   /* Pending In: the contact's subscribe stanza, re-sent at login; NULL: none */
	size_t pending_in_len;
	uint64_t ver;       /* roster version when this row last changed (§2.6) */
};

/* A parked stanza: waits for its target's record to load (sm/user.c). */
struct sm_parked {
	struct sm_parked *next;
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
	struct sm_roster_item *roster;
	size_t nroster, roster_cap;
	char **blocked;                /* XEP-0191 blocklist: canonical JIDs */
	size_t nblocked, blocked_cap;
};

struct sm_store;
struct sm_admin;
struct xmlstage;

struct sm {
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
	struct xmlstage *xs;
	struct sm_tab users;           /* bare JID -> sm_user */
	struct sm_tab by_jid;          /* full JID -> bound sm_session */
	struct sm_link *links;
	size_t nlinks;
	uint32_t next_link_id;
	struct sm_link *flush;         /* links with output to write after this batch */
	struct sm_link *dead;          /* links to reap after this batch */
	struct sm_buf scratch;         /* stanza rewriting / building; reused */
	struct sm_buf reply;           /* iq replies (sm/iq.c), built while scratch holds a payload */
	struct sm_pep *pep;            /* PEP service state (sm/pep.c); NULL until used */
	uint64_t push_seq;             /* ids of roster pushes */
	struct sm_session *sender;     /* whose stanza is being routed (flow control) */
	bool stopping;
};

/* sm/sm.c — services the other modules use. */
bool sm_domain_served(const struct sm *sm, const char *d, size_t n);
struct sm_session *sm_session_find(struct sm *sm, const char *full, size_t n);
/* The live link with this id, or NULL (gone or dead): for completions. */
struct sm_link *sm_link_by_id(struct sm *sm, uint32_t id);
/* Queue a frame on a link; a dead link swallows it.  Kills the link when its
 * output exceeds SM_LINK_OUT_MAX. */
void sm_link_send(struct sm_link *l, const struct wire_msg *m);
void sm_link_kill(struct sm_link *l, const char *why);
/* Send STANZA(t->sid, ...) on t's link: the routing header (empty strings
 * when absent) and the raw bytes the edge writes to the client as they are. */
void sm_deliver(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		struct wire_str to, struct wire_str from, struct wire_str id, struct wire_str ns,
		const void *raw, size_t rawlen);
/* sm_deliver() of a stored message (offline row id): the row is deleted once
 * the edge reports it written to the client.  0, or -ENOMEM (not sent). */
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
void sm_route_stanza(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* Route a parked stanza (sm/user.c) now that its target's record is ready.
 * Only the target's half runs again: the sender may be gone. */
void sm_route_replay(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m);
/* Send a stored message (offline row id) to s, tracked: 0, or -ENOMEM (not sent). */
int sm_route_offline(struct sm *sm, struct sm_session *s, int64_t id, const void *raw,
		     size_t len);
/* Tell `to` (a full JID, if still online) that its stanza (kind, id, sent
 * to `from`) failed with the stanza error cond. */
void sm_route_bounce(struct sm *sm, const char *to, int kind, const char *id, const char *from,
		     const char *cond);
/* Broadcast s's unavailable presence (session ending without saying so). */
void sm_route_gone(struct sm *sm, struct sm_session *s);
/* Push one roster item to u's sessions that asked for the roster (RFC 6121 §2.1.6). */
void sm_route_roster_push(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it,
			  bool removed);

/* sm/offline.c — see the file comment */
/* Store raw for user (a message from `from`, id and to as the sender wrote
 * them, for the error if the store refuses).  0 or -ENOMEM. */
int sm_offline_store(struct sm *sm, const char *user, const char *from, int kind,
		     struct wire_str id, struct wire_str to, const void *raw, size_t len);
/* Send s (available, priority >= 0) the messages stored for its account. */
void sm_offline_deliver(struct sm *sm, struct sm_session *s);
/* The rows with these ids reached a client: delete them. */
void sm_offline_forget(struct sm *sm, const int64_t *ids, size_t n);

/* sm/pep.c — XEP-0163 PEP (see the file comment) */
struct sm_iq;
struct sm_pep_caps;
/* iq handlers (sm/iq.c rows): pubsub and pubsub#owner payloads on an account. */
void sm_pep_iq(struct sm_iq *q);
void sm_pep_owner_iq(struct sm_iq *q);
/* s sent an available presence (raw, as routed; initial: its first since
 * unavailable): read its entity capabilities, send last published items. */
void sm_pep_presence(struct sm *sm, struct sm_session *s, const void *raw, size_t len,
		     bool initial);
/* An iq result or error from s to the server: true when it answered one of
 * PEP's disco#info queries (consumed). */
bool sm_pep_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* XEP-0115 §5.1/§5.4: does ver, by the hash function named hash ("sha-1",
 * "sha-256"), describe the disco#info <query/> answer?  False as well for an
 * unknown hash or an ill-formed answer (duplicate identities, features or
 * form types). */
struct xtree_node;
bool sm_pep_caps_verify(const char *hash, const char *ver, const struct xtree_node *query);
/* Free the PEP state (sm_free()). */
void sm_pep_free(struct sm *sm);

/* sm/admin.c */
struct sm_admin *sm_admin_open(struct sm *sm, const char *path);   /* NULL: logged */
void sm_admin_event(struct sm *sm, struct sm_ev *ev, uint32_t events);
void sm_admin_close(struct sm *sm, struct sm_admin *a);

#endif
