/*
 * sm_muc — the group-chat service (XEP-0045), addressed by its own domain
 * (`services.muc.domain`, e.g. conference.localhost) and served by the
 * session servers themselves.
 *
 * Where a room lives.  A room belongs to the shard its bare JID hashes to
 * (parser/shard.h, the users' rendezvous hashing): a stanza for a room
 * reaches that shard like a stanza for one of its accounts
 * (sm_remote_send() -> shard_out(), accepted by shard_in()), and the room's
 * owner does the fan-out once, writing each occupant's copy to its session
 * (same shard), to the occupant's shard, or to its server (s2s) — the same
 * way every other stanza from this server to a JID goes (muc_send()).  No
 * room state is shared: nothing is locked.
 *
 * What a room keeps, in memory: its occupants (a nickname, the real bare JID,
 * role, affiliation, the last presence payload, and the real full JIDs of the
 * sessions sharing that nickname — XEP-0045 §7.2.1 multi-session nicks), the
 * affiliations of users not in it (owners, admins, members, outcasts), the
 * subject and the last `history` groupchat messages.  Rooms are temporary: a
 * room with nobody in it goes (persistent rooms, configuration forms and
 * MAM on rooms are not built yet: docs/architecture.md "Group chat").
 *
 * Room life (§10.1): a presence to a room that does not exist creates it,
 * locked, its creator the owner (status 201); until the owner accepts the
 * default configuration (an empty submitted form: an instant room, §10.1.2)
 * others get <item-not-found/>.  The room is open, public, semi-anonymous
 * (real JIDs only to moderators: §7.2.3), unmoderated, and subject changes
 * are for moderators.
 *
 * Joining (§7.2): <conflict/> for a nickname another user holds, <forbidden/>
 * for an outcast, <jid-malformed/> without a nickname, <not-acceptable/> for a
 * session already in the room under another nickname (nickname changes are
 * not built yet), <service-unavailable/> when the room is full
 * (MUC_MAX_OCCUPANTS).  The newcomer gets the occupants' presence, then its
 * own (status 110, 201 if it created the room, 100 in non-anonymous rooms),
 * then the history it asked for (maxstanzas, maxchars, seconds, since; with
 * XEP-0203 delays), then the subject; the others get its presence.
 *
 * An occupant leaves with unavailable presence (to every session, status 110
 * to its own), when its session ends (the session server sends unavailable
 * presence to every JID the session sent directed presence to: RFC 6121
 * §4.6.3), or when its client answers one of our stanzas with an error
 * (status 333, §7.14 of version 1.34).
 *
 * Bounds: every string a peer controls is bounded (JID_MAX, MUC_MAX_PAYLOAD)
 * and counted (occupants per room, rooms per shard, history entries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/shard.h"
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
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

#define MUC_MAX_ROOMS 100000        /* per shard */
#define MUC_MAX_OCCUPANTS 1000      /* per room */
#define MUC_MAX_SESSIONS 16         /* sessions sharing one nickname */
#define MUC_MAX_AFFILS 10000        /* affiliations kept per room */
#define MUC_MAX_PAYLOAD (64u * 1024) /* a presence payload or a message kept */
#define MUC_NICK_MAX 256

enum muc_role { ROLE_NONE = 0, ROLE_VISITOR, ROLE_PARTICIPANT, ROLE_MODERATOR };
enum muc_aff { AFF_NONE = 0, AFF_OUTCAST, AFF_MEMBER, AFF_ADMIN, AFF_OWNER };

static const char *const role_names[] = { "none", "visitor", "participant", "moderator" };
static const char *const affil_names[] = { "none", "outcast", "member", "admin", "owner" };

struct muc_occ {
	struct muc_occ *next;
	char *nick;
	char *bare;                 /* real bare JID */
	char *payload;              /* children of its last presence (ours left out) */
	char *sess[MUC_MAX_SESSIONS]; /* real full JIDs sharing the nickname */
	unsigned nsess;
	uint8_t role;
};

struct muc_affil {
	struct muc_affil *next;
	uint8_t affil;
	char jid[];                 /* bare */
};

struct muc_hist {
	char *nick, *id, *payload;  /* payload: the message's children */
	size_t len;
	time_t at;
};

struct muc_room {
	struct sm_tab_node node;    /* muc->rooms */
	struct muc_room *next, *prev; /* muc->list */
	char *jid;                  /* canonical bare room JID */
	size_t jid_len;
	bool locked;                /* created, waiting for its owner's configuration */
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
};

/* ---- setup ------------------------------------------------------------- */

int sm_muc_open(struct sm *sm, const char *domain, unsigned history)
{
	struct sm_muc *mu;
	char d[JID_MAX + 1];
	struct jid_view v;
	int n;

	if (!domain || !*domain)
		return 0;
	if (jid_parse(domain, strlen(domain), &v) < 0 || v.local_len || v.resource_len ||
	    (n = jid_canon(&v, false, d, sizeof(d))) < 0) {
		log_error("group-chat domain is not a domain", "domain=\"%s\"", domain);
		return -1;
	}
	mu = calloc(1, sizeof(*mu));
	if (!mu || sm_tab_init(&mu->rooms) < 0 || !(mu->domain = sm_memdup_z(d, (size_t)n))) {
		if (mu)
			sm_tab_fini(&mu->rooms);
		free(mu);
		return -1;
	}
	mu->domain_len = (size_t)n;
	mu->history = history > 1000 ? 1000 : history;
	mu->out.max = 4u << 20;
	mu->part.max = 4u << 20;
	sm->muc = mu;
	return 0;
}

static void occ_free(struct muc_occ *o)
{
	for (unsigned i = 0; i < o->nsess; i++)
		free(o->sess[i]);
	free(o->nick);
	free(o->bare);
	free(o->payload);
	free(o);
}

static void hist_clear(struct muc_hist *h)
{
	free(h->nick);
	free(h->id);
	free(h->payload);
	memset(h, 0, sizeof(*h));
}

static void room_free(struct sm_muc *mu, struct muc_room *r)
{
	struct muc_occ *o, *onext;
	struct muc_affil *a, *anext;

	sm_tab_remove(&mu->rooms, &r->node);
	if (r->prev)
		r->prev->next = r->next;
	else
		mu->list = r->next;
	if (r->next)
		r->next->prev = r->prev;
	mu->nrooms--;
	for (o = r->occ; o; o = onext) {
		onext = o->next;
		occ_free(o);
	}
	for (a = r->affils; a; a = anext) {
		anext = a->next;
		free(a);
	}
	for (unsigned i = 0; r->hist && i < mu->history; i++)
		hist_clear(&r->hist[i]);
	free(r->hist);
	free(r->subject);
	free(r->subject_nick);
	free(r->jid);
	free(r);
}

void sm_muc_free(struct sm *sm)
{
	struct sm_muc *mu = sm->muc;

	if (!mu)
		return;
	while (mu->list)
		room_free(mu, mu->list);
	sm_tab_fini(&mu->rooms);
	sm_buf_free(&mu->out);
	sm_buf_free(&mu->part);
	free(mu->domain);
	free(mu);
	sm->muc = NULL;
}

bool sm_muc_domain(const struct sm *sm, const char *d, size_t n)
{
	return sm->muc && n == sm->muc->domain_len && memcmp(d, sm->muc->domain, n) == 0;
}

bool sm_muc_owns(const struct sm *sm, const char *room, size_t n)
{
	return !sm->shard_names || sm->nshards <= 1 ||
	       shard_owner(sm->shard_names, sm->nshards, room, n) == sm->shard_self;
}

void sm_muc_disco_item(const struct sm *sm, struct sm_buf *b)
{
	if (!sm->muc)
		return;
	sm_buf_str(b, "<item jid='");
	sm_buf_esc(b, sm->muc->domain, sm->muc->domain_len);
	sm_buf_str(b, "' name='Chatrooms'/>");
}

/* ---- lookups ------------------------------------------------------------- */

static struct muc_room *room_find(struct sm_muc *mu, const char *jid, size_t n)
{
	uint64_t h = sm_tab_hash(&mu->rooms, jid, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&mu->rooms, h); e; e = e->next) {
		struct muc_room *r = sm_container_of(e, struct muc_room, node);

		if (e->hash == h && r->jid_len == n && memcmp(r->jid, jid, n) == 0)
			return r;
	}
	return NULL;
}

static struct muc_occ *occ_by_nick(const struct muc_room *r, const char *nick)
{
	for (struct muc_occ *o = r->occ; o; o = o->next)
		if (strcmp(o->nick, nick) == 0)
			return o;
	return NULL;
}

/* The occupant one of whose sessions is the real full JID `full`. */
static struct muc_occ *occ_by_session(const struct muc_room *r, const char *full, unsigned *idx)
{
	for (struct muc_occ *o = r->occ; o; o = o->next)
		for (unsigned i = 0; i < o->nsess; i++)
			if (strcmp(o->sess[i], full) == 0) {
				if (idx)
					*idx = i;
				return o;
			}
	return NULL;
}

static int affil_of(const struct muc_room *r, const char *bare)
{
	for (const struct muc_affil *a = r->affils; a; a = a->next)
		if (strcmp(a->jid, bare) == 0)
			return a->affil;
	return AFF_NONE;
}

static int affil_set(struct muc_room *r, const char *bare, int affil)
{
	struct muc_affil **pp, *a;
	size_t n = strlen(bare);

	for (pp = &r->affils; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->jid, bare) == 0)
			break;
	if (*pp) {
		if (affil != AFF_NONE) {
			(*pp)->affil = (uint8_t)affil;
			return 0;
		}
		a = *pp;
		*pp = a->next;
		free(a);
		r->naffils--;
		return 0;
	}
	if (affil == AFF_NONE)
		return 0;
	if (r->naffils >= MUC_MAX_AFFILS || !(a = malloc(sizeof(*a) + n + 1)))
		return -1;
	a->affil = (uint8_t)affil;
	memcpy(a->jid, bare, n + 1);
	a->next = r->affils;
	r->affils = a;
	r->naffils++;
	return 0;
}

/* ---- sending ------------------------------------------------------------- */

/*
 * The stanza in mu->out goes from `from` (a room JID) to `to` (a real JID):
 * to the session on this shard, to its owner shard, or to its server.
 */
static void muc_send(struct sm *sm, int kind, const char *type, const char *from, const char *to,
		     const char *id)
{
	struct sm_muc *mu = sm->muc;
	struct wire_msg m = { .type = WIRE_STANZA };
	struct sm_route_to t;

	if (mu->out.err) {
		log_warn("group-chat stanza too large or out of memory, dropped", "from=\"%s\"", from);
		sm_buf_clear(&mu->out);
		mu->out.err = 0;
		return;
	}
	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.type = sm_ws(type);
	m.u.stanza.to = sm_ws(to);
	m.u.stanza.from = sm_ws(from);
	m.u.stanza.id = sm_ws(id ? id : "");
	m.u.stanza.ns = sm_ws("");
	m.u.stanza.raw = wire_s(sm_buf_data(&mu->out), sm_buf_used(&mu->out));
	sm_route_to_parse(sm, m.u.stanza.to, &t);
	if (t.valid && t.served)
		sm_route_replay(sm, from, strlen(from), &m);   /* an account of ours */
	else
		sm_remote_send(sm, &m);                         /* another shard or server */
	sm_buf_clear(&mu->out);
}

/* Start a stanza in mu->out: "<kind from to [type] [id]" (no '>' yet). */
static void start(struct sm_muc *mu, int kind, const char *type, const char *from, const char *to,
		  const char *id)
{
	struct sm_buf *b = &mu->out;

	sm_buf_clear(b);
	sm_buf_fmt(b, "<%s from='", sm_kind_name(kind));
	sm_buf_esc(b, from, strlen(from));
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, strlen(to));
	sm_buf_str(b, "'");
	if (type && *type)
		sm_buf_fmt(b, " type='%s'", type);
	if (id && *id) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, id, strlen(id));
		sm_buf_str(b, "'");
	}
}

/* An error answer to a stanza (RFC 6120 §8.3): `from` the address it was
 * sent to, `to` its sender. */
static void error_reply(struct sm *sm, int kind, const char *to_addr, const char *sender,
			const char *id, const char *cond)
{
	struct sm_buf *b = &sm->muc->out;

	start(sm->muc, kind, "error", to_addr, sender, id);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></%s>",
		   sm_error_type(cond), cond, sm_kind_name(kind));
	muc_send(sm, kind, "error", to_addr, sender, id);
}

static void put_part(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

/* The children of el (except those in namespace `skip`) serialised: a
 * malloc'd string, NULL when none or too large. */
static char *children(struct sm_muc *mu, const struct xtree_node *el, const char *skip,
		      size_t *len)
{
	char *s;

	sm_buf_clear(&mu->part);
	for (const struct xtree_node *c = el ? el->first : NULL; c; c = c->next)
		if (!skip || strcmp(c->ns, skip))
			xtree_write(c, put_part, &mu->part);
	if (mu->part.err || !sm_buf_used(&mu->part) || sm_buf_used(&mu->part) > MUC_MAX_PAYLOAD) {
		mu->part.err = 0;
		sm_buf_clear(&mu->part);
		return NULL;
	}
	s = sm_memdup_z(sm_buf_data(&mu->part), sm_buf_used(&mu->part));
	if (len)
		*len = sm_buf_used(&mu->part);
	sm_buf_clear(&mu->part);
	return s;
}

/* "room@service/nick" into out (cap JID_MAX + 1). */
static bool occ_jid(const struct muc_room *r, const char *nick, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "%s/%s", r->jid, nick) < cap;
}

static bool sees_jids(const struct muc_room *r, const struct muc_occ *viewer)
{
	(void)r;        /* semi-anonymous rooms (the only kind yet) */
	return viewer->role == ROLE_MODERATOR;
}

/*
 * o's presence to the real JID `to` (one of viewer's sessions): its
 * payload, its affiliation and role, its real JID when the viewer may see
 * it, and the status codes given (0-terminated).
 */
static void presence_of(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *to,
			const struct muc_occ *viewer, bool unavailable, const int *codes)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->out;
	char from[JID_MAX + 1];

	if (!occ_jid(r, o->nick, from, sizeof(from)))
		return;
	start(mu, WIRE_KIND_PRESENCE, unavailable ? "unavailable" : NULL, from, to, NULL);
	sm_buf_str(b, ">");
	if (!unavailable && o->payload)
		sm_buf_str(b, o->payload);
	sm_buf_fmt(b, "<x xmlns='" NS_MUC_USER "'><item affiliation='%s' role='%s'",
		   affil_names[affil_of(r, o->bare)], role_names[unavailable ? ROLE_NONE : o->role]);
	if (viewer && sees_jids(r, viewer) && o->nsess) {
		sm_buf_str(b, " jid='");
		sm_buf_esc(b, o->sess[0], strlen(o->sess[0]));
		sm_buf_str(b, "'");
	}
	sm_buf_str(b, "/>");
	for (; codes && *codes; codes++)
		sm_buf_fmt(b, "<status code='%d'/>", *codes);
	sm_buf_str(b, "</x></presence>");
	muc_send(sm, WIRE_KIND_PRESENCE, unavailable ? "unavailable" : "", from, to, NULL);
}

/* o's presence to every session of every occupant but `except`. */
static void broadcast_presence(struct sm *sm, struct muc_room *r, const struct muc_occ *o,
			       const struct muc_occ *except, bool unavailable, const int *codes)
{
	for (struct muc_occ *v = r->occ; v; v = v->next) {
		if (v == except)
			continue;
		for (unsigned i = 0; i < v->nsess; i++)
			presence_of(sm, r, o, v->sess[i], v, unavailable, codes);
	}
}

/* A groupchat message from `nick` (payload: its children) to real JID `to`;
 * at != 0: from the history, with its XEP-0203 delay. */
static void message_to(struct sm *sm, struct muc_room *r, const char *nick, const char *id,
		       const char *payload, const char *to, time_t at)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->out;
	char from[JID_MAX + 1];

	if (nick && !occ_jid(r, nick, from, sizeof(from)))
		return;
	if (!nick)
		snprintf(from, sizeof(from), "%s", r->jid);
	start(mu, WIRE_KIND_MESSAGE, "groupchat", from, to, id);
	sm_buf_str(b, ">");
	if (payload)
		sm_buf_str(b, payload);
	if (at) {
		char stamp[32];
		struct tm tm;

		gmtime_r(&at, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		sm_buf_fmt(b, "<delay xmlns='" NS_DELAY "' stamp='%s' from='", stamp);
		sm_buf_esc(b, r->jid, r->jid_len);
		sm_buf_str(b, "'/>");
	}
	sm_buf_str(b, "</message>");
	muc_send(sm, WIRE_KIND_MESSAGE, "groupchat", from, to, id);
}

/* ---- leaving ------------------------------------------------------------- */

static void room_maybe_gone(struct sm *sm, struct muc_room *r)
{
	if (r->nocc)
		return;
	log_debug("group-chat room destroyed: empty", "room=\"%s\"", r->jid);
	room_free(sm->muc, r);
}

/*
 * Session i of o leaves (its own last presence to it with `code`, 110, and
 * what the others hear when it was the last session of the nickname).
 * May free r (returns false then).
 */
static bool session_leaves(struct sm *sm, struct muc_room *r, struct muc_occ *o, unsigned i, int code)
{
	int self_codes[] = { 110, code, 0 }, codes[] = { code, 0 };
	char *full = o->sess[i];

	if (!code)
		self_codes[1] = 0;
	presence_of(sm, r, o, full, o, true, self_codes);
	free(full);
	o->sess[i] = o->sess[--o->nsess];
	if (o->nsess)
		return true;
	/* The nickname is free: everyone hears it leave. */
	broadcast_presence(sm, r, o, o, true, code ? codes : NULL);
	for (struct muc_occ **pp = &r->occ; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	r->nocc--;
	occ_free(o);
	if (!r->nocc) {
		room_maybe_gone(sm, r);
		return false;
	}
	return true;
}

/* ---- joining ------------------------------------------------------------- */

/* XEP-0045 §7.2.14: the history the newcomer asked for. */
static void send_history(struct sm *sm, struct muc_room *r, const struct xtree_node *want,
			 const char *to)
{
	struct sm_muc *mu = sm->muc;
	long maxstanzas = mu->history, maxchars = -1, seconds = -1;
	time_t since = 0, now = time(NULL);
	unsigned first, n;
	size_t chars = 0;
	const char *v;

	if (!r->hist_n)
		return;
	if ((v = xtree_attr(want, "maxstanzas")))
		maxstanzas = strtol(v, NULL, 10);
	if ((v = xtree_attr(want, "maxchars")))
		maxchars = strtol(v, NULL, 10);
	if ((v = xtree_attr(want, "seconds")))
		seconds = strtol(v, NULL, 10);
	if ((v = xtree_attr(want, "since"))) {
		struct tm tm = { 0 };

		if (strptime(v, "%Y-%m-%dT%H:%M:%S", &tm))
			since = timegm(&tm);
	}
	if (maxstanzas <= 0 || maxchars == 0)
		return;
	/* Newest first, counting back until a limit; then sent oldest first. */
	n = 0;
	for (unsigned k = 0; k < r->hist_n && (long)n < maxstanzas; k++) {
		const struct muc_hist *h = &r->hist[(r->hist_head + r->hist_n - 1 - k) % mu->history];

		if (seconds >= 0 && now - h->at > seconds)
			break;
		if (since && h->at < since)
			break;
		/* maxchars counts the XML sent; the payload is most of it. */
		if (maxchars > 0 && chars + h->len + 100 > (size_t)maxchars)
			break;
		chars += h->len + 100;
		n++;
	}
	first = r->hist_head + r->hist_n - n;
	for (unsigned k = 0; k < n; k++) {
		const struct muc_hist *h = &r->hist[(first + k) % mu->history];

		message_to(sm, r, h->nick, h->id, h->payload, to, h->at);
	}
}

static void send_subject(struct sm *sm, struct muc_room *r, const char *to)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->out;
	char from[JID_MAX + 1];

	if (!r->subject_nick || !occ_jid(r, r->subject_nick, from, sizeof(from)))
		snprintf(from, sizeof(from), "%s", r->jid);
	start(mu, WIRE_KIND_MESSAGE, "groupchat", from, to, NULL);
	sm_buf_str(b, "><subject>");
	if (r->subject)
		sm_buf_esc(b, r->subject, strlen(r->subject));
	sm_buf_str(b, "</subject></message>");
	muc_send(sm, WIRE_KIND_MESSAGE, "groupchat", from, to, NULL);
}

static struct muc_room *room_new(struct sm *sm, const char *jid, size_t n, const char *owner)
{
	struct sm_muc *mu = sm->muc;
	struct muc_room *r;

	if (mu->nrooms >= MUC_MAX_ROOMS || !(r = calloc(1, sizeof(*r))))
		return NULL;
	r->jid = sm_memdup_z(jid, n);
	r->jid_len = n;
	r->hist = mu->history ? calloc(mu->history, sizeof(*r->hist)) : NULL;
	if (!r->jid || (mu->history && !r->hist) || affil_set(r, owner, AFF_OWNER) < 0) {
		free(r->jid);
		free(r->hist);
		free(r);
		return NULL;
	}
	r->locked = true;
	sm_tab_insert(&mu->rooms, &r->node, sm_tab_hash(&mu->rooms, jid, n));
	r->next = mu->list;
	if (mu->list)
		mu->list->prev = r;
	mu->list = r;
	mu->nrooms++;
	log_info("group-chat room created", "room=\"%s\" owner=\"%s\"", r->jid, owner);
	return r;
}

/* A presence to room/nick from the real JID `from` (bare: from_bare). */
static void on_presence(struct sm *sm, const char *room, size_t room_len, const char *nick,
			const char *from, const char *from_bare, const struct xtree_node *st,
			const char *type, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	struct muc_room *r = room_find(mu, room, room_len);
	const struct xtree_node *x = xtree_child(st, NS_MUC, "x");
	struct muc_occ *o, *mine;
	bool created = false;
	unsigned idx;
	int affil;

	if (type && !strcmp(type, "error")) {
		/* Our stanza bounced at the occupant: it is gone (status 333). */
		if (r && (o = occ_by_session(r, from, &idx)))
			session_leaves(sm, r, o, idx, 333);
		return;
	}
	if (type && !strcmp(type, "unavailable")) {
		if (r && (o = occ_by_session(r, from, &idx)))
			session_leaves(sm, r, o, idx, 0);
		return;
	}
	if (type && *type)
		return;     /* subscriptions and probes: a room has no roster */
	if (!*nick) {
		error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "jid-malformed");
		return;
	}
	mine = r ? occ_by_session(r, from, NULL) : NULL;
	if (mine) {
		char *p;

		if (strcmp(mine->nick, nick)) {
			/* §7.6 nickname changes: not built yet. */
			error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "not-acceptable");
			return;
		}
		/* §7.7: a change of availability goes to everyone. */
		p = children(mu, st, NS_MUC, NULL);
		free(mine->payload);
		mine->payload = p;
		broadcast_presence(sm, r, mine, NULL, false, NULL);
		return;
	}
	if (!r) {
		if (!(r = room_new(sm, room, room_len, from_bare))) {
			error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			return;
		}
		created = true;
	}
	affil = affil_of(r, from_bare);
	if (r->locked && affil != AFF_OWNER) {
		error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "item-not-found");
		return;
	}
	if (affil == AFF_OUTCAST) {
		error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "forbidden");
		return;
	}
	o = occ_by_nick(r, nick);
	if (o && strcmp(o->bare, from_bare)) {
		error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "conflict");
		return;
	}
	if (o) {
		/* Another session of the same user, same nickname (§7.2.1). */
		char *f;

		if (o->nsess >= MUC_MAX_SESSIONS || !(f = strdup(from))) {
			error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			return;
		}
		o->sess[o->nsess++] = f;
	} else {
		if (r->nocc >= MUC_MAX_OCCUPANTS) {
			error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "service-unavailable");
			return;
		}
		o = calloc(1, sizeof(*o));
		if (!o || !(o->nick = strdup(nick)) || !(o->bare = strdup(from_bare)) ||
		    !(o->sess[0] = strdup(from))) {
			if (o)
				occ_free(o);
			error_reply(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			room_maybe_gone(sm, r);
			return;
		}
		o->nsess = 1;
		o->role = affil >= AFF_ADMIN ? ROLE_MODERATOR : ROLE_PARTICIPANT;
		o->payload = children(mu, st, NS_MUC, NULL);
		o->next = r->occ;
		r->occ = o;
		r->nocc++;
	}
	/* §7.2.3: the others' presence, then ours to them and to us, history, subject. */
	for (struct muc_occ *v = r->occ; v; v = v->next)
		if (v != o)
			presence_of(sm, r, v, from, o, false, NULL);
	if (o->nsess == 1)
		broadcast_presence(sm, r, o, o, false, NULL);
	{
		int codes[] = { 110, created ? 201 : 0, 0 };

		presence_of(sm, r, o, from, o, false, codes);
	}
	send_history(sm, r, xtree_child(x, NS_MUC, "history"), from);
	send_subject(sm, r, from);
	log_debug("group-chat join", "room=\"%s\" nick=\"%s\" occupants=%u", r->jid, nick, r->nocc);
}

/* ---- messages ------------------------------------------------------------ */

static void history_add(struct sm_muc *mu, struct muc_room *r, const char *nick, const char *id,
			char *payload, size_t len)
{
	struct muc_hist *h;

	if (!mu->history) {
		free(payload);
		return;
	}
	if (r->hist_n == mu->history) {
		hist_clear(&r->hist[r->hist_head]);
		r->hist_head = (r->hist_head + 1) % mu->history;
		r->hist_n--;
	}
	h = &r->hist[(r->hist_head + r->hist_n) % mu->history];
	h->nick = strdup(nick);
	h->id = id ? strdup(id) : NULL;
	h->payload = payload;
	h->len = len;
	h->at = time(NULL);
	if (!h->nick) {
		hist_clear(h);
		return;
	}
	r->hist_n++;
}

static void on_groupchat(struct sm *sm, struct muc_room *r, const char *from,
			 const struct xtree_node *st, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const char *id = xtree_attr(st, "id");
	const struct xtree_node *subject = xtree_child(st, "jabber:client", "subject");
	const struct xtree_node *body = xtree_child(st, "jabber:client", "body");
	struct muc_occ *o = occ_by_session(r, from, NULL);
	char *payload;
	size_t len = 0;

	if (!o) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");   /* §7.4 */
		return;
	}
	if (o->role < ROLE_PARTICIPANT) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");        /* §7.4 */
		return;
	}
	if (subject && !body) {
		/* §8.1: the subject, by a moderator. */
		char *s;

		if (o->role != ROLE_MODERATOR) {
			error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");
			return;
		}
		s = strdup(xtree_text(subject));
		if (!s || strlen(s) > MUC_MAX_PAYLOAD) {
			free(s);
			error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
			return;
		}
		free(r->subject);
		free(r->subject_nick);
		r->subject = s;
		r->subject_nick = strdup(o->nick);
		for (struct muc_occ *v = r->occ; v; v = v->next)
			for (unsigned i = 0; i < v->nsess; i++)
				send_subject(sm, r, v->sess[i]);
		return;
	}
	payload = children(mu, st, NULL, &len);
	if (!payload) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	/* The fan-out: one copy per session of every occupant, the sender's
	 * included (§7.4: it is how the sender sees the room took it). */
	for (struct muc_occ *v = r->occ; v; v = v->next)
		for (unsigned i = 0; i < v->nsess; i++)
			message_to(sm, r, o->nick, id, payload, v->sess[i], 0);
	if (body)
		history_add(mu, r, o->nick, id, payload, len);
	else
		free(payload);
}

/* §7.5: a private message to room/nick, from an occupant. */
static void on_private(struct sm *sm, struct muc_room *r, const char *nick, const char *from,
		       const struct xtree_node *st, const char *type, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const char *id = xtree_attr(st, "id");
	struct muc_occ *o = occ_by_session(r, from, NULL), *t = occ_by_nick(r, nick);
	char sender[JID_MAX + 1];
	char *payload;

	if (!o) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	if (!t) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "item-not-found");
		return;
	}
	if (!occ_jid(r, o->nick, sender, sizeof(sender)) ||
	    !(payload = children(mu, st, NS_MUC_USER, NULL))) {
		error_reply(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	for (unsigned i = 0; i < t->nsess; i++) {
		start(mu, WIRE_KIND_MESSAGE, type, sender, t->sess[i], id);
		sm_buf_str(&mu->out, ">");
		sm_buf_str(&mu->out, payload);
		sm_buf_str(&mu->out, "<x xmlns='" NS_MUC_USER "'/></message>");
		muc_send(sm, WIRE_KIND_MESSAGE, type, sender, t->sess[i], id);
	}
	free(payload);
}

/* ---- iq ------------------------------------------------------------------ */

static void iq_result(struct sm *sm, const char *from_addr, const char *to, const char *id,
		      const char *payload)
{
	struct sm_buf *b = &sm->muc->out;

	start(sm->muc, WIRE_KIND_IQ, "result", from_addr, to, id);
	if (payload) {
		sm_buf_str(b, ">");
		sm_buf_str(b, payload);
		sm_buf_str(b, "</iq>");
	} else {
		sm_buf_str(b, "/>");
	}
	muc_send(sm, WIRE_KIND_IQ, "result", from_addr, to, id);
}

/* The service itself: disco (XEP-0030 §3, §4; XEP-0045 §6.1, §6.3). */
static void service_iq(struct sm *sm, const char *from, const struct xtree_node *st,
		       const char *type, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const char *id = xtree_attr(st, "id");
	const struct xtree_node *q = st->first;
	struct sm_buf *b = &mu->out;

	if (strcmp(type, "get") && strcmp(type, "set"))
		return;     /* results and errors are for nobody here */
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_DISCO_INFO) && !xtree_attr(q, "node")) {
		iq_result(sm, to_addr, from, id,
			  "<query xmlns='" NS_DISCO_INFO "'>"
			  "<identity category='conference' type='text' name='Chatrooms'/>"
			  "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
			  "<feature var='" NS_MUC "'/><feature var='" NS_PING "'/></query>");
		return;
	}
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_DISCO_ITEMS) && !xtree_attr(q, "node")) {
		/* Public rooms, i.e. every unlocked room (no hidden rooms yet) of this shard. */
		start(mu, WIRE_KIND_IQ, "result", to_addr, from, id);
		sm_buf_str(b, "><query xmlns='" NS_DISCO_ITEMS "'>");
		for (struct muc_room *r = mu->list; r; r = r->next) {
			if (r->locked)
				continue;
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, r->jid, r->jid_len);
			sm_buf_fmt(b, "' name='%.*s'/>", (int)(strchr(r->jid, '@') - r->jid), r->jid);
		}
		sm_buf_str(b, "</query></iq>");
		muc_send(sm, WIRE_KIND_IQ, "result", to_addr, from, id);
		return;
	}
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_PING) && !strcmp(q->local, "ping")) {
		iq_result(sm, to_addr, from, id, NULL);
		return;
	}
	error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "service-unavailable");
}

/* §10.1.2, §10.9: what the room's owner may ask of it. */
static void owner_iq(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		     const struct xtree_node *q, const char *type, const char *id, const char *to_addr)
{
	const struct xtree_node *x = xtree_child(q, NS_XDATA, "x");
	const struct xtree_node *destroy = xtree_child(q, NS_MUC_OWNER, "destroy");

	if (affil_of(r, from_bare) != AFF_OWNER) {
		error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "forbidden");
		return;
	}
	if (!strcmp(type, "get")) {
		/* The configuration form: this service has one configuration yet. */
		iq_result(sm, to_addr, from, id,
			  "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_XDATA "' type='form'>"
			  "<title>Room configuration</title>"
			  "<field var='FORM_TYPE' type='hidden'>"
			  "<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
			  "<field var='muc#roomconfig_persistentroom' type='boolean'"
			  " label='Make room persistent'><value>0</value></field>"
			  "<field var='muc#roomconfig_publicroom' type='boolean'"
			  " label='Make room publicly searchable'><value>1</value></field>"
			  "<field var='muc#roomconfig_whois' type='list-single'"
			  " label='Who may discover real JIDs?'><value>moderators</value>"
			  "<option><value>moderators</value></option></field>"
			  "</x></query>");
		return;
	}
	if (x && xtree_attr(x, "type") &&
	    (!strcmp(xtree_attr(x, "type"), "submit") || !strcmp(xtree_attr(x, "type"), "cancel"))) {
		/* §10.1.2 (an empty form: the instant room), §10.1.3: the default
		 * configuration is what this service offers; the room opens. */
		if (!strcmp(xtree_attr(x, "type"), "submit"))
			r->locked = false;
		iq_result(sm, to_addr, from, id, NULL);
		return;
	}
	if (destroy) {
		/* §10.9: everyone leaves (status in <destroy/>), the room goes. */
		const char *alt = xtree_attr(destroy, "jid");
		const char *reason = xtree_text(xtree_child(destroy, NS_MUC_OWNER, "reason"));
		char rjid[JID_MAX + 1];

		snprintf(rjid, sizeof(rjid), "%s", r->jid);
		iq_result(sm, to_addr, from, id, NULL);
		for (struct muc_occ *o = r->occ; o; o = o->next) {
			char ofrom[JID_MAX + 1];

			if (!occ_jid(r, o->nick, ofrom, sizeof(ofrom)))
				continue;
			for (unsigned i = 0; i < o->nsess; i++) {
				struct sm_buf *b = &sm->muc->out;

				start(sm->muc, WIRE_KIND_PRESENCE, "unavailable", ofrom, o->sess[i], NULL);
				sm_buf_fmt(b, "><x xmlns='" NS_MUC_USER "'><item affiliation='%s' role='none'/>"
					      "<destroy", affil_names[affil_of(r, o->bare)]);
				if (alt) {
					sm_buf_str(b, " jid='");
					sm_buf_esc(b, alt, strlen(alt));
					sm_buf_str(b, "'");
				}
				sm_buf_str(b, ">");
				if (reason && *reason) {
					sm_buf_str(b, "<reason>");
					sm_buf_esc(b, reason, strlen(reason));
					sm_buf_str(b, "</reason>");
				}
				sm_buf_str(b, "</destroy></x></presence>");
				muc_send(sm, WIRE_KIND_PRESENCE, "unavailable", ofrom, o->sess[i], NULL);
			}
		}
		log_info("group-chat room destroyed by its owner", "room=\"%s\"", rjid);
		room_free(sm->muc, r);
		return;
	}
	error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
}

/* An iq to the room, or to an occupant's nickname. */
static void room_iq(struct sm *sm, struct muc_room *r, const char *nick, const char *from,
		    const char *from_bare, const struct xtree_node *st, const char *type,
		    const char *to_addr)
{
	const char *id = xtree_attr(st, "id");
	const struct xtree_node *q = st->first;
	bool get = !strcmp(type, "get");

	if (strcmp(type, "get") && strcmp(type, "set"))
		return;
	if (*nick) {
		/* XEP-0410: a ping to one's own nickname says whether one is still in. */
		struct muc_occ *o = occ_by_session(r, from, NULL);

		if (get && q && !strcmp(q->ns, NS_PING) && o && !strcmp(o->nick, nick))
			iq_result(sm, to_addr, from, id, NULL);
		else if (!o)
			error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "not-acceptable");
		else
			error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "feature-not-implemented");
		return;
	}
	if (q && !strcmp(q->ns, NS_MUC_OWNER)) {
		owner_iq(sm, r, from, from_bare, q, type, id, to_addr);
		return;
	}
	if (get && q && !strcmp(q->ns, NS_DISCO_INFO) && !xtree_attr(q, "node")) {
		struct sm_buf *b = &sm->muc->out;

		start(sm->muc, WIRE_KIND_IQ, "result", to_addr, from, id);
		sm_buf_str(b, "><query xmlns='" NS_DISCO_INFO "'><identity category='conference' type='text' name='");
		sm_buf_esc(b, r->jid, (size_t)(strchr(r->jid, '@') - r->jid));
		sm_buf_str(b, "'/><feature var='" NS_MUC "'/><feature var='" NS_PING "'/>"
			      "<feature var='muc_public'/><feature var='muc_temporary'/>"
			      "<feature var='muc_open'/><feature var='muc_unmoderated'/>"
			      "<feature var='muc_semianonymous'/><feature var='muc_unsecured'/>"
			      "</query></iq>");
		muc_send(sm, WIRE_KIND_IQ, "result", to_addr, from, id);
		return;
	}
	if (get && q && !strcmp(q->ns, NS_DISCO_ITEMS)) {
		iq_result(sm, to_addr, from, id, "<query xmlns='" NS_DISCO_ITEMS "'/>");   /* §6.5: none shown */
		return;
	}
	if (get && q && !strcmp(q->ns, NS_PING)) {
		iq_result(sm, to_addr, from, id, NULL);
		return;
	}
	error_reply(sm, WIRE_KIND_IQ, to_addr, from, id, "service-unavailable");
}

/* ---- entry ------------------------------------------------------------- */

void sm_muc_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct sm_muc *mu = sm->muc;
	char to[JID_MAX + 1], room[JID_MAX + 1], nick[MUC_NICK_MAX + 1], sender[JID_MAX + 1],
	     sender_bare[JID_MAX + 1];
	struct jid_view v, fv;
	struct xtree *t = NULL;
	const struct xtree_node *st;
	const char *type;
	struct muc_room *r;
	int n, kind = m->u.stanza.kind;

	if (!mu || m->u.stanza.to.len > JID_MAX || from_len > JID_MAX ||
	    jid_parse((const char *)m->u.stanza.to.p, m->u.stanza.to.len, &v) < 0 ||
	    jid_parse(from, from_len, &fv) < 0 || v.resource_len > MUC_NICK_MAX)
		return;
	/* Canonical forms: the room's bare JID, the nickname as sent (resourceprep'd
	 * by jid_canon), the real JIDs. */
	if ((n = jid_canon(&v, true, to, sizeof(to))) < 0 || jid_canon(&v, false, room, sizeof(room)) < 0 ||
	    jid_canon(&fv, true, sender, sizeof(sender)) < 0 ||
	    jid_canon(&fv, false, sender_bare, sizeof(sender_bare)) < 0)
		return;
	snprintf(nick, sizeof(nick), "%s", v.resource_len ? to + strlen(room) + 1 : "");
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL, NULL);
	if (!t)
		return;
	st = xtree_root(t);
	type = xtree_attr(st, "type");
	if (!v.local_len) {
		if (kind == WIRE_KIND_IQ && type)
			service_iq(sm, sender, st, type, to);
		else if (kind == WIRE_KIND_MESSAGE && (!type || strcmp(type, "error")))
			error_reply(sm, kind, to, sender, xtree_attr(st, "id"), "service-unavailable");
		goto done;
	}
	if (kind == WIRE_KIND_PRESENCE) {
		on_presence(sm, room, strlen(room), nick, sender, sender_bare, st, type, to);
		goto done;
	}
	r = room_find(mu, room, strlen(room));
	if (type && !strcmp(type, "error")) {
		/* An occupant's client refused one of our stanzas: it is gone (333). */
		unsigned idx;
		struct muc_occ *o = r ? occ_by_session(r, sender, &idx) : NULL;

		if (o)
			session_leaves(sm, r, o, idx, 333);
		goto done;
	}
	if (!r || (r->locked && affil_of(r, sender_bare) != AFF_OWNER)) {
		if (!type || strcmp(type, "result"))
			error_reply(sm, kind, to, sender, xtree_attr(st, "id"), "item-not-found");
		goto done;
	}
	if (kind == WIRE_KIND_IQ) {
		room_iq(sm, r, nick, sender, sender_bare, st, type ? type : "", to);
	} else if (*nick) {
		if (type && !strcmp(type, "groupchat"))
			error_reply(sm, kind, to, sender, xtree_attr(st, "id"), "bad-request");   /* §7.5 */
		else
			on_private(sm, r, nick, sender, st, type && *type ? type : "normal", to);
	} else if (type && !strcmp(type, "groupchat")) {
		on_groupchat(sm, r, sender, st, to);
	} else {
		/* Invitations (§7.8.2) and requests for voice (§7.13) are not built yet. */
		error_reply(sm, kind, to, sender, xtree_attr(st, "id"), "feature-not-implemented");
	}
done:
	xtree_free(t);
}
