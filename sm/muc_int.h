/*
 * muc_int.h — what sm/muc.c (rooms, occupants, messages) and sm/muc_admin.c
 * (configuration, roles and affiliations, persistent rooms) share.  See
 * sm/muc.c for the service's contract.
 */
#ifndef XEDGE_SM_MUC_INT_H
#define XEDGE_SM_MUC_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "parser/xtree.h"
#include "sm/sm_int.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER NS_MUC "#user"
#define NS_MUC_OWNER NS_MUC "#owner"
#define NS_MUC_ADMIN NS_MUC "#admin"
#define NS_XDATA "jabber:x:data"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define NS_DELAY "urn:xmpp:delay"
#define NS_OCCUPANT_ID "urn:xmpp:occupant-id:0"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

#define MUC_MAX_ROOMS 100000        /* per shard */
#define MUC_MAX_OCCUPANTS 1000      /* per room */
#define MUC_MAX_SESSIONS 16         /* sessions sharing one nickname */
#define MUC_MAX_AFFILS 10000        /* affiliations kept per room */
#define MUC_MAX_PAYLOAD (64u * 1024) /* a presence payload or a message kept */
#define MUC_NICK_MAX 256
#define MUC_DISCO_ITEMS_MAX 1000    /* public rooms listed by the service's disco#items */
#define MUC_VOICE_INTERVAL 30       /* seconds between one occupant's voice requests forwarded */

enum muc_role { ROLE_NONE = 0, ROLE_VISITOR, ROLE_PARTICIPANT, ROLE_MODERATOR };
enum muc_aff { AFF_NONE = 0, AFF_OUTCAST, AFF_MEMBER, AFF_ADMIN, AFF_OWNER };

extern const char *const muc_role_names[];   /* by enum muc_role */
extern const char *const muc_affil_names[];  /* by enum muc_aff */

struct muc_occ {
	struct muc_occ *next;
	char *nick;
	char *bare;                 /* real bare JID */
	char *payload;              /* children of its last presence (ours left out) */
	char *sess[MUC_MAX_SESSIONS]; /* real full JIDs sharing the nickname */
	unsigned nsess;
	uint8_t role;
	time_t voice_asked;         /* its last request for voice forwarded (muc_voice.c); 0: none */
};

struct muc_affil {
	struct muc_affil *next;
	uint8_t affil;
	char jid[];                 /* bare */
};

struct muc_hist {
	char *nick, *id, *payload;  /* payload: the message's children */
	char oid[24];               /* the sender's occupant id */
	size_t len;
	time_t at;
};

/* A room's configuration (muc#roomconfig, §10.2). */
struct muc_config {
	char *name, *desc;          /* NULL: none */
	char *password;             /* NULL: not password-protected */
	bool persistent;            /* kept when empty, and across restarts (storage) */
	bool public;                /* listed in the service's disco#items */
	bool members_only;
	bool moderated;             /* newcomers without affiliation are visitors */
	bool nonanonymous;          /* every occupant sees real JIDs (else moderators only) */
	bool changesubject;         /* participants may change the subject */
	bool allow_invites;         /* participants may invite (§7.8.2) */
	unsigned max_users;         /* 0: MUC_MAX_OCCUPANTS */
};

struct muc_room {
	struct sm_tab_node node;    /* muc->rooms */
	struct muc_room *next, *prev; /* muc->list */
	char *jid;                  /* canonical bare room JID */
	size_t jid_len;
	bool locked;                /* created, waiting for its owner's configuration */
	uint8_t secret[16];         /* XEP-0421 occupant ids: HMAC key (kept with a persistent room) */
	struct muc_config cfg;
	struct muc_occ *occ;
	unsigned nocc;
	struct muc_affil *affils;
	unsigned naffils;
	char *subject, *subject_nick;
	struct muc_hist *hist;      /* ring of muc->history entries */
	unsigned hist_head, hist_n;
};

struct sm_muc {
	struct sm_tab rooms;
	struct muc_room *list;
	size_t nrooms;
	char *domain;               /* canonical */
	size_t domain_len;
	unsigned history;           /* messages kept per room */
	struct sm_buf out;          /* stanzas being built */
	struct sm_buf part;         /* payloads being serialised */
	struct sm_buf fan;          /* a fan-out's stanza with a hole for `to` (muc.c) */
	/* While a moderator or admin removes occupants (kick §8.2, ban §9.1):
	 * the <actor/> and <reason/> their unavailable presence carries. */
	const char *why_actor, *why_reason;
	/* Until the persistent rooms are loaded (muc_load), and while a stanza
	 * is handled (sm_muc_in), stanzas wait here. */
	bool loading, busy, draining;
	struct muc_parked *parked, *parked_tail;
	unsigned nparked;
};

#define MUC_MAX_PARKED 4096

struct muc_parked {
	struct muc_parked *next;
	struct sm_obl *obl;         /* its link frame: not confirmed before the replay */
	size_t from_len, frame_len;
	char *from;                 /* points into data */
	uint8_t *frame;             /* the encoded stanza frame, into data */
	uint8_t data[];
};

/* ---- sm/muc_send.c ---- */
/*
 * A fan-out: one stanza from the room to many real JIDs, differing only in
 * `to`.  fan_start() writes "<kind from='F' to='" in mu->fan and notes
 * where `to` goes; the caller appends the rest (the bytes every copy
 * shares, built once) and checks fan_ready(); fan_send() then writes each
 * copy as template head + escaped `to` + template tail and routes it
 * (sm_route_service_copy(): a session of this shard directly).  The
 * struct lives on the caller's stack: nothing in it is zeroed per copy.
 */
struct muc_fan {
	struct wire_msg m;          /* the routing header; to and raw set per copy */
	size_t hole;                /* where `to` goes in mu->fan */
	char from[JID_MAX + 1];     /* the sender (the room or room/nick) */
};
bool muc_message_start(struct sm *sm, struct muc_room *r, struct muc_fan *f, const char *nick,
		       const char *oid, const char *id, const char *payload, const char *sid, time_t at);
void muc_message_to(struct sm *sm, struct muc_room *r, const char *nick, const char *oid,
		    const char *id, const char *payload, const char *sid, const char *to, time_t at);
void muc_fan_send(struct sm *sm, struct muc_fan *f, const char *to);
void muc_presence_full(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *to,
		       const struct muc_occ *viewer, bool unavailable, const int *codes,
		       const char *new_nick);

/* ---- sm/muc.c ---- */
struct muc_room *muc_room_find(struct sm_muc *mu, const char *jid, size_t n);
void muc_room_free(struct sm_muc *mu, struct muc_room *r);
void muc_room_maybe_gone(struct sm *sm, struct muc_room *r);  /* an empty temporary room goes */
struct muc_room *muc_room_new(struct sm *sm, const char *jid, size_t n, const char *owner);
struct muc_occ *muc_occ_by_nick(const struct muc_room *r, const char *nick);
struct muc_occ *muc_occ_by_session(const struct muc_room *r, const char *full, unsigned *idx);
int muc_affil_of(const struct muc_room *r, const char *bare);
int muc_affil_set(struct muc_room *r, const char *bare, int affil);   /* 0 / -1 (bounds, memory) */
bool muc_occ_jid(const struct muc_room *r, const char *nick, char *out, size_t cap);
/* Build in mu->out: "<kind from to [type] [id]" (no '>'), then muc_send() it. */
void muc_start(struct sm_muc *mu, int kind, const char *type, const char *from, const char *to,
	       const char *id);
void muc_send(struct sm *sm, int kind, const char *type, const char *from, const char *to,
	      const char *id);
void muc_error(struct sm *sm, int kind, const char *to_addr, const char *sender, const char *id,
	       const char *cond);
void muc_iq_result(struct sm *sm, const char *from_addr, const char *to, const char *id,
		   const char *payload);
char *muc_children(struct sm_muc *mu, const struct xtree_node *el, const char *skip, size_t *len);
/* o's presence to the real JID `to` as viewer sees it; codes 0-terminated
 * (NULL: none); actor/reason for kicks and bans (NULL: none). */
void muc_presence_of(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *to,
		     const struct muc_occ *viewer, bool unavailable, const int *codes);
void muc_broadcast(struct sm *sm, struct muc_room *r, const struct muc_occ *o,
		   const struct muc_occ *except, bool unavailable, const int *codes);
/* Session i of o leaves (code: 0, 301, 307, 321, 333); false when r went. */
bool muc_leave(struct sm *sm, struct muc_room *r, struct muc_occ *o, unsigned i, int code);
/* A status-code message from the room to every occupant (§10.2.1: 104 ...). */
void muc_notice(struct sm *sm, struct muc_room *r, const int *codes);
/* muc_load() is done: the stanzas that waited for it are handled now. */
void muc_loaded(struct sm *sm);

/* XEP-0421: the occupant id of real bare JID `bare` in r (out: 23 bytes). */
void muc_occupant_id(const struct muc_room *r, const char *bare, char *out);

/* ---- sm/muc_voice.c ---- */
/* A message from the real JID from to room r (no nickname, no type or
 * normal): true when it held a muc#request form (§7.13 request, §8.6
 * approval) and was handled. */
bool muc_voice_message(struct sm *sm, struct muc_room *r, const char *from,
		       const struct xtree_node *st, const char *to_addr);

/* ---- sm/muc_admin.c ---- */
void muc_config_free(struct muc_config *c);
/* iq to the room in muc#owner / muc#admin from the real JID from. */
void muc_owner_iq(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		  const struct xtree_node *q, const char *type, const char *id, const char *to_addr);
void muc_admin_iq(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		  const struct xtree_node *q, const char *type, const char *id, const char *to_addr);
/* The room's disco#info features (muc_public, muc_membersonly, ...). */
void muc_features(const struct muc_room *r, struct sm_buf *b);
/* The role a newcomer with affiliation affil gets. */
int muc_role_for(const struct muc_room *r, int affil);
/* Persistent rooms: written behind after every change; loaded at start. */
void muc_save(struct sm *sm, struct muc_room *r);
void muc_forget(struct sm *sm, const struct muc_room *r);
void muc_load(struct sm *sm);

#endif
