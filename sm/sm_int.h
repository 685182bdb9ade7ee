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
	SM_EV_ADMIN         /* one admin connection */
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
	struct sm_session *lnext, *lprev;  /* link->shead */
	struct sm_session *unext, *uprev;  /* user->shead */
};

struct sm_roster_item {
	char *contact;      /* canonical bare JID */
	char *name;         /* "" when none */
	int sub;            /* enum sm_sub */
};

struct sm_user {
	struct sm_tab_node node;       /* sm->users */
	char *bare;
	size_t bare_len;
	struct sm_session *shead;      /* bound sessions */
	unsigned nsessions;
	struct sm_roster_item *roster;
	size_t nroster, roster_cap;
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
	struct xmlstage *xs;
	struct sm_tab users;           /* bare JID -> sm_user */
	struct sm_tab by_jid;          /* full JID -> bound sm_session */
	struct sm_link *links;
	size_t nlinks;
	uint32_t next_link_id;
	struct sm_link *flush;         /* links with output to write after this batch */
	struct sm_link *dead;          /* links to reap after this batch */
	struct sm_buf scratch;         /* stanza rewriting / building; reused */
	uint64_t push_seq;             /* ids of roster pushes */
	struct sm_session *sender;     /* whose stanza is being routed (flow control) */
	bool stopping;
};

/* sm/sm.c — services the other modules use. */
bool sm_domain_served(const struct sm *sm, const char *d, size_t n);
struct sm_user *sm_user_find(struct sm *sm, const char *bare, size_t n);
struct sm_session *sm_session_find(struct sm *sm, const char *full, size_t n);
/* Queue a frame on a link; a dead link swallows it.  Kills the link when its
 * output exceeds SM_LINK_OUT_MAX. */
void sm_link_send(struct sm_link *l, const struct wire_msg *m);
void sm_link_kill(struct sm_link *l, const char *why);
/* Send STANZA(t->sid, ...) on t's link: the routing header (empty strings
 * when absent) and the raw bytes the edge writes to the client as they are. */
void sm_deliver(struct sm *sm, struct sm_session *t, int kind, struct wire_str type,
		struct wire_str to, struct wire_str from, struct wire_str id, struct wire_str ns,
		const void *raw, size_t rawlen);
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
/* Roster of u: find the item for contact (NULL if none). */
struct sm_roster_item *sm_roster_find(struct sm_user *u, const char *contact);
/* Insert or replace an item in u's in-memory roster; returns it or NULL (-ENOMEM/limit). */
struct sm_roster_item *sm_roster_set(struct sm_user *u, const char *contact, const char *name,
				     int sub);

/* sm/route.c */
void sm_route_stanza(struct sm *sm, struct sm_session *s, const struct wire_msg *m);
/* Broadcast s's unavailable presence (session ending without saying so). */
void sm_route_gone(struct sm *sm, struct sm_session *s);
/* Push one roster item to u's sessions that asked for the roster (RFC 6121 §2.1.6). */
void sm_route_roster_push(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it);

/* sm/admin.c */
struct sm_admin *sm_admin_open(struct sm *sm, const char *path);   /* NULL: logged */
void sm_admin_event(struct sm *sm, struct sm_ev *ev, uint32_t events);
void sm_admin_close(struct sm *sm, struct sm_admin *a);

#endif
