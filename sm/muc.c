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
 * room state is shared: nothing is locked.  A fan-out builds its stanza
 * once with a hole for `to` and writes each copy around it (muc_fan_send());
 * a copy for a session of this shard skips the generic routing
 * (sm_route_service_copy()).  One stanza is handled at a time: one that
 * comes back while a fan-out runs (an occupant's server refusing a copy)
 * waits for the handling to end (sm_muc_in()).
 *
 * What a room keeps, in memory: its occupants (a nickname, the real bare JID,
 * role, the last presence payload, and the real full JIDs of the sessions
 * sharing that nickname — XEP-0045 §7.2.1 multi-session nicks), the
 * affiliations (owners, admins, members, outcasts), its configuration
 * (sm/muc_admin.c), the subject and the last `history` groupchat messages.
 * A temporary room with nobody in it goes; a persistent one stays, and its
 * configuration, affiliations and subject are kept in storage (muc_admin.c).
 *
 * Room life (§10.1): a presence to a room that does not exist creates it,
 * locked, its creator the owner (status 201); until the owner accepts the
 * default configuration (an empty submitted form: an instant room, §10.1.2)
 * or submits another, others get <item-not-found/>.  By default a room is
 * open, public, temporary, semi-anonymous (real JIDs only to moderators:
 * §7.2.3), unmoderated; subject changes are for moderators.
 *
 * Joining (§7.2): <conflict/> for a nickname another user holds, <forbidden/>
 * for an outcast, <registration-required/> for a non-member of a members-only
 * room, <not-authorized/> without the password, <jid-malformed/> without a
 * nickname, <service-unavailable/> when the room is full.  The newcomer gets
 * the occupants' presence, then its own (status 110, 201 if it created the
 * room, 100 where everyone sees real JIDs), then the history it asked for
 * (maxstanzas, maxchars, seconds, since; with XEP-0203 delays), then the
 * subject; the others get its presence.  A presence to another nickname of
 * the room is a nickname change (§7.6: 303).
 *
 * An occupant leaves with unavailable presence (to every session, status 110
 * to its own), when its session ends (the session server sends unavailable
 * presence to every JID the session sent directed presence to: RFC 6121
 * §4.6.3), when its client answers one of our stanzas with an error (status
 * 333), or when kicked (307), banned (301) or no longer a member (321, 322).
 *
 * Requests for voice (§7.13) and their approval (§8.6): sm/muc_voice.c.
 * The service's disco#items lists the public rooms of every shard
 * (sm/gather.c asks the others).
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
#include "sm/muc_int.h"
#include "sm/store.h"
#include "tls/crypto.h"

const char *const muc_role_names[] = { "none", "visitor", "participant", "moderator" };
const char *const muc_affil_names[] = { "none", "outcast", "member", "admin", "owner" };

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
	mu->fan.max = 4u << 20;
	sm->muc = mu;
	return 0;
}

static void muc_occ_free(struct muc_occ *o)
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

void muc_room_free(struct sm_muc *mu, struct muc_room *r)
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
		muc_occ_free(o);
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
	muc_config_free(&r->cfg);
	free(r->jid);
	free(r);
}

void sm_muc_start(struct sm *sm)
{
	if (sm->muc)
		muc_load(sm);
}

void sm_muc_free(struct sm *sm)
{
	struct sm_muc *mu = sm->muc;
	struct muc_parked *p;

	if (!mu)
		return;
	while ((p = mu->parked)) {
		mu->parked = p->next;
		sm_obl_release(p->obl);
		free(p);
	}
	while (mu->list)
		muc_room_free(mu, mu->list);
	sm_tab_fini(&mu->rooms);
	sm_buf_free(&mu->out);
	sm_buf_free(&mu->part);
	sm_buf_free(&mu->fan);
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
	if (sm->muc)
		sm_buf_disco_item(b, sm->muc->domain, sm->muc->domain_len, "Chatrooms");
}

/* ---- lookups ------------------------------------------------------------- */

struct muc_room *muc_room_find(struct sm_muc *mu, const char *jid, size_t n)
{
	uint64_t h = sm_tab_hash(&mu->rooms, jid, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&mu->rooms, h); e; e = e->next) {
		struct muc_room *r = sm_container_of(e, struct muc_room, node);

		if (e->hash == h && r->jid_len == n && memcmp(r->jid, jid, n) == 0)
			return r;
	}
	return NULL;
}

struct muc_occ *muc_occ_by_nick(const struct muc_room *r, const char *nick)
{
	for (struct muc_occ *o = r->occ; o; o = o->next)
		if (strcmp(o->nick, nick) == 0)
			return o;
	return NULL;
}

/* The occupant one of whose sessions is the real full JID `full`. */
struct muc_occ *muc_occ_by_session(const struct muc_room *r, const char *full, unsigned *idx)
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

int muc_affil_of(const struct muc_room *r, const char *bare)
{
	for (const struct muc_affil *a = r->affils; a; a = a->next)
		if (strcmp(a->jid, bare) == 0)
			return a->affil;
	return AFF_NONE;
}

int muc_affil_set(struct muc_room *r, const char *bare, int affil)
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

void muc_occupant_id(const struct muc_room *r, const char *bare, char *out)
{
	uint8_t mac[CRYPTO_MAX_DIGEST];

	/* Stable per (room, user), unlinkable across rooms (XEP-0421 §3). */
	if (crypto_hmac(CRYPTO_SHA256, r->secret, sizeof(r->secret), bare, strlen(bare), mac) < 0 ||
	    crypto_b64_encode(mac, 15, out, 24) < 0)
		out[0] = '\0';
}

/* ---- leaving ------------------------------------------------------------- */

void muc_room_maybe_gone(struct sm *sm, struct muc_room *r)
{
	if (r->nocc || r->cfg.persistent)
		return;
	log_debug("group-chat room destroyed: empty", "room=\"%s\"", r->jid);
	muc_room_free(sm->muc, r);
}

/*
 * Session i of o leaves (its own last presence to it with `code`, 110, and
 * what the others hear when it was the last session of the nickname).
 * May free r (returns false then).
 */
bool muc_leave(struct sm *sm, struct muc_room *r, struct muc_occ *o, unsigned i, int code)
{
	int self_codes[] = { 110, code, 0 }, codes[] = { code, 0 };
	char *full = o->sess[i];

	if (!code)
		self_codes[1] = 0;
	muc_presence_of(sm, r, o, full, o, true, self_codes);
	free(full);
	o->sess[i] = o->sess[--o->nsess];
	if (o->nsess)
		return true;
	/* The nickname is free: everyone hears it leave. */
	muc_broadcast(sm, r, o, o, true, code ? codes : NULL);
	for (struct muc_occ **pp = &r->occ; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	r->nocc--;
	muc_occ_free(o);
	if (!r->nocc) {
		muc_room_maybe_gone(sm, r);
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

		muc_message_to(sm, r, h->nick, h->oid, h->id, h->payload, NULL, to, h->at);
	}
}

static void send_subject(struct sm *sm, struct muc_room *r, const char *to)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->out;
	char from[JID_MAX + 1];

	if (!r->subject_nick || !muc_occ_jid(r, r->subject_nick, from, sizeof(from)))
		snprintf(from, sizeof(from), "%s", r->jid);
	muc_start(mu, WIRE_KIND_MESSAGE, "groupchat", from, to, NULL);
	sm_buf_str(b, "><subject>");
	if (r->subject)
		sm_buf_esc(b, r->subject, strlen(r->subject));
	sm_buf_str(b, "</subject></message>");
	muc_send(sm, WIRE_KIND_MESSAGE, "groupchat", from, to, NULL);
}

struct muc_room *muc_room_new(struct sm *sm, const char *jid, size_t n, const char *owner)
{
	struct sm_muc *mu = sm->muc;
	struct muc_room *r;

	if (mu->nrooms >= MUC_MAX_ROOMS || !(r = calloc(1, sizeof(*r))))
		return NULL;
	r->jid = sm_memdup_z(jid, n);
	r->jid_len = n;
	r->hist = mu->history ? calloc(mu->history, sizeof(*r->hist)) : NULL;
	if (!r->jid || (mu->history && !r->hist) || (owner && muc_affil_set(r, owner, AFF_OWNER) < 0)) {
		free(r->jid);
		free(r->hist);
		free(r);
		return NULL;
	}
	r->locked = true;
	r->cfg.public = true;
	crypto_random(r->secret, sizeof(r->secret));
	sm_tab_insert(&mu->rooms, &r->node, sm_tab_hash(&mu->rooms, jid, n));
	r->next = mu->list;
	if (mu->list)
		mu->list->prev = r;
	mu->list = r;
	mu->nrooms++;
	if (owner)
		log_info("group-chat room created", "room=\"%s\" owner=\"%s\"", r->jid, owner);
	return r;
}

/* A presence to room/nick from the real JID `from` (bare: from_bare). */
/* §7.6: an occupant takes another nickname (one session per nickname:
 * a nickname several sessions share is kept). */
static void change_nick(struct sm *sm, struct muc_room *r, struct muc_occ *o, const char *nick,
			const char *from, const struct xtree_node *st, const char *to_addr)
{
	struct muc_occ *holder = muc_occ_by_nick(r, nick);
	static const int gone_self[] = { 303, 110, 0 }, gone[] = { 303, 0 }, here_self[] = { 110, 0 };
	char *n;

	if (holder || o->nsess > 1 || !(n = strdup(nick))) {
		/* §7.6.2: taken by someone (or shared by several of our sessions). */
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
			  holder ? "conflict" : "not-acceptable");
		return;
	}
	for (struct muc_occ *v = r->occ; v; v = v->next)
		for (unsigned i = 0; i < v->nsess; i++)
			muc_presence_full(sm, r, o, v->sess[i], v, true, v == o ? gone_self : gone, nick);
	free(o->nick);
	o->nick = n;
	for (struct muc_occ *v = r->occ; v; v = v->next)
		for (unsigned i = 0; i < v->nsess; i++)
			muc_presence_of(sm, r, o, v->sess[i], v, false, v == o ? here_self : NULL);
}

static void on_presence(struct sm *sm, const char *room, size_t room_len, const char *nick,
			const char *from, const char *from_bare, const struct xtree_node *st,
			const char *type, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	struct muc_room *r = muc_room_find(mu, room, room_len);
	const struct xtree_node *x = xtree_child(st, NS_MUC, "x");
	struct muc_occ *o, *mine;
	bool created = false;
	unsigned idx;
	int affil;

	if (type && !strcmp(type, "error")) {
		/* Our stanza bounced at the occupant: it is gone (status 333). */
		if (r && (o = muc_occ_by_session(r, from, &idx)))
			muc_leave(sm, r, o, idx, 333);
		return;
	}
	if (type && !strcmp(type, "unavailable")) {
		if (r && (o = muc_occ_by_session(r, from, &idx)))
			muc_leave(sm, r, o, idx, 0);
		return;
	}
	if (type && *type)
		return;     /* subscriptions and probes: a room has no roster */
	if (!*nick) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "jid-malformed");
		return;
	}
	mine = r ? muc_occ_by_session(r, from, NULL) : NULL;
	if (mine) {
		char *p;

		if (strcmp(mine->nick, nick)) {
			change_nick(sm, r, mine, nick, from, st, to_addr);
			return;
		}
		/* §7.7: a change of availability goes to everyone. */
		p = muc_children(mu, st, NS_MUC, NULL);
		free(mine->payload);
		mine->payload = p;
		muc_broadcast(sm, r, mine, NULL, false, NULL);
		return;
	}
	if (!r) {
		if (!(r = muc_room_new(sm, room, room_len, from_bare))) {
			muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			return;
		}
		created = true;
	}
	affil = muc_affil_of(r, from_bare);
	if (r->locked && affil != AFF_OWNER) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "item-not-found");
		return;
	}
	if (affil == AFF_OUTCAST) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "forbidden");
		return;
	}
	if (r->cfg.members_only && affil < AFF_MEMBER) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
			  "registration-required");     /* §7.2.7 */
		return;
	}
	if (r->cfg.password &&
	    strcmp(r->cfg.password, xtree_text(xtree_child(x, NS_MUC, "password")) ?
		   xtree_text(xtree_child(x, NS_MUC, "password")) : "")) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
			  "not-authorized");             /* §7.2.6 */
		return;
	}
	o = muc_occ_by_nick(r, nick);
	if (o && strcmp(o->bare, from_bare)) {
		muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"), "conflict");
		return;
	}
	if (o) {
		/* Another session of the same user, same nickname (§7.2.1). */
		char *f;

		if (o->nsess >= MUC_MAX_SESSIONS || !(f = strdup(from))) {
			muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			return;
		}
		o->sess[o->nsess++] = f;
	} else {
		if (r->nocc >= MUC_MAX_OCCUPANTS ||
		    (r->cfg.max_users && r->nocc >= r->cfg.max_users && affil < AFF_ADMIN)) {   /* §7.2.10 */
			muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "service-unavailable");
			return;
		}
		o = calloc(1, sizeof(*o));
		if (!o || !(o->nick = strdup(nick)) || !(o->bare = strdup(from_bare)) ||
		    !(o->sess[0] = strdup(from))) {
			if (o)
				muc_occ_free(o);
			muc_error(sm, WIRE_KIND_PRESENCE, to_addr, from, xtree_attr(st, "id"),
				    "resource-constraint");
			muc_room_maybe_gone(sm, r);
			return;
		}
		o->nsess = 1;
		o->role = (uint8_t)muc_role_for(r, affil);
		o->payload = muc_children(mu, st, NS_MUC, NULL);
		o->next = r->occ;
		r->occ = o;
		r->nocc++;
	}
	/* §7.2.3: the others' presence, then ours to them and to us, history, subject. */
	for (struct muc_occ *v = r->occ; v; v = v->next)
		if (v != o)
			muc_presence_of(sm, r, v, from, o, false, NULL);
	if (o->nsess == 1)
		muc_broadcast(sm, r, o, o, false, NULL);
	{
		/* 100: everyone sees real JIDs here; 201: just created. */
		int codes[4] = { 110 }, nc = 1;

		if (r->cfg.nonanonymous)
			codes[nc++] = 100;
		if (created)
			codes[nc++] = 201;
		muc_presence_of(sm, r, o, from, o, false, codes);
	}
	send_history(sm, r, xtree_child(x, NS_MUC, "history"), from);
	send_subject(sm, r, from);
	log_debug("group-chat join", "room=\"%s\" nick=\"%s\" occupants=%u", r->jid, nick, r->nocc);
}

/* ---- messages ------------------------------------------------------------ */

static void history_add(struct sm_muc *mu, struct muc_room *r, const char *nick, const char *oid,
			const char *id, char *payload, size_t len)
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
	snprintf(h->oid, sizeof(h->oid), "%s", oid);
	h->at = time(NULL);
	if (!h->nick) {
		hist_clear(h);
		return;
	}
	r->hist_n++;
}

/* XEP-0313 on the room: the message as the room sent it, under a new id. */
static void archive(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *oid,
		    const char *id, const char *payload, char *sid)
{
	struct sm_buf *b = &sm->muc->part;
	char occ[JID_MAX + 1];

	if (!muc_occ_jid(r, o->nick, occ, sizeof(occ)))
		return;
	sm_mam_new_id(sid);
	sm_buf_clear(b);
	sm_buf_str(b, "<message xmlns='jabber:client' from='");
	sm_buf_esc(b, occ, strlen(occ));
	sm_buf_str(b, "' type='groupchat'");
	sm_buf_attr(b, "id", id);
	sm_buf_fmt(b, ">%s<occupant-id xmlns='" NS_OCCUPANT_ID "' id='%s'/></message>", payload, oid);
	if (!b->err)
		sm_mam_room_archive(sm, r->jid, occ, sid, sm_buf_data(b), sm_buf_used(b));
	b->err = 0;
	sm_buf_clear(b);
}

static void on_groupchat(struct sm *sm, struct muc_room *r, const char *from,
			 const struct xtree_node *st, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const char *id = xtree_attr(st, "id");
	const struct xtree_node *subject = xtree_child(st, "jabber:client", "subject");
	const struct xtree_node *body = xtree_child(st, "jabber:client", "body");
	struct muc_occ *o = muc_occ_by_session(r, from, NULL);
	char *payload, oid[24], sid[24] = "";
	struct muc_fan f;
	size_t len = 0;

	if (!o) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");   /* §7.4 */
		return;
	}
	if (o->role < ROLE_PARTICIPANT) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");        /* §7.4 */
		return;
	}
	if (subject && !body) {
		/* §8.1: the subject, by a moderator. */
		char *s;

		if (o->role != ROLE_MODERATOR && !(r->cfg.changesubject && o->role == ROLE_PARTICIPANT)) {
			muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");
			return;
		}
		s = strdup(xtree_text(subject));
		if (!s || strlen(s) > MUC_MAX_PAYLOAD) {
			free(s);
			muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
			return;
		}
		free(r->subject);
		free(r->subject_nick);
		r->subject = s;
		r->subject_nick = strdup(o->nick);
		for (struct muc_occ *v = r->occ; v; v = v->next)
			for (unsigned i = 0; i < v->nsess; i++)
				send_subject(sm, r, v->sess[i]);
		muc_save(sm, r);
		return;
	}
	payload = muc_children(mu, st, NULL, &len);
	if (!payload) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	/* The fan-out: one copy per session of every occupant, the sender's
	 * included (§7.4: it is how the sender sees the room took it). */
	muc_occupant_id(r, o->bare, oid);
	if (body && sm_mam_on(sm))
		archive(sm, r, o, oid, id, payload, sid);
	if (muc_message_start(sm, r, &f, o->nick, oid, id, payload, sid[0] ? sid : NULL, 0))
		for (struct muc_occ *v = r->occ; v; v = v->next)
			for (unsigned i = 0; i < v->nsess; i++)
				muc_fan_send(sm, &f, v->sess[i]);
	if (body)
		history_add(mu, r, o->nick, oid, id, payload, len);
	else
		free(payload);
}

/* §7.5: a private message to room/nick, from an occupant. */
static void on_private(struct sm *sm, struct muc_room *r, const char *nick, const char *from,
		       const struct xtree_node *st, const char *type, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const char *id = xtree_attr(st, "id");
	struct muc_occ *o = muc_occ_by_session(r, from, NULL), *t = muc_occ_by_nick(r, nick);
	char sender[JID_MAX + 1], oid[24];
	char *payload;

	if (!o) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	if (!t) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "item-not-found");
		return;
	}
	muc_occupant_id(r, o->bare, oid);
	if (!muc_occ_jid(r, o->nick, sender, sizeof(sender)) ||
	    !(payload = muc_children(mu, st, NS_MUC_USER, NULL))) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	for (unsigned i = 0; i < t->nsess; i++) {
		muc_start(mu, WIRE_KIND_MESSAGE, type, sender, t->sess[i], id);
		sm_buf_str(&mu->out, ">");
		sm_buf_str(&mu->out, payload);
		sm_buf_fmt(&mu->out, "<occupant-id xmlns='" NS_OCCUPANT_ID "' id='%s'/>", oid);
		sm_buf_str(&mu->out, "<x xmlns='" NS_MUC_USER "'/></message>");
		muc_send(sm, WIRE_KIND_MESSAGE, type, sender, t->sess[i], id);
	}
	free(payload);
}

/* §7.8.2 mediated invitations and §7.8.3 declines: passed on by the room. */
static void on_invite(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		      const struct xtree_node *st, const char *to_addr)
{
	struct sm_muc *mu = sm->muc;
	const struct xtree_node *x = xtree_child(st, NS_MUC_USER, "x");
	const struct xtree_node *inv = xtree_child(x, NS_MUC_USER, "invite");
	const struct xtree_node *dec = xtree_child(x, NS_MUC_USER, "decline");
	const struct xtree_node *el = inv ? inv : dec;
	const char *target = xtree_attr(el, "to"), *reason = xtree_text(xtree_child(el, NS_MUC_USER, "reason"));
	const char *id = xtree_attr(st, "id");
	struct muc_occ *o = muc_occ_by_session(r, from, NULL);
	char to[JID_MAX + 1];
	struct jid_view v;
	int affil = muc_affil_of(r, from_bare);

	if (!target || strlen(target) > JID_MAX || jid_parse(target, strlen(target), &v) < 0 ||
	    jid_canon(&v, true, to, sizeof(to)) < 0) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "jid-malformed");
		return;
	}
	if (inv) {
		if (!o) {
			muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
			return;
		}
		/* Members-only: only admins invite, or anyone the room allows; the
		 * invitee then becomes a member (§7.8.2, §9.3). */
		if (r->cfg.members_only) {
			if (affil < AFF_ADMIN && !r->cfg.allow_invites) {
				muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");
				return;
			}
			if (v.resource_len == 0 && muc_affil_of(r, to) < AFF_MEMBER) {
				muc_affil_set(r, to, AFF_MEMBER);
				muc_save(sm, r);
			}
		}
	}
	muc_start(mu, WIRE_KIND_MESSAGE, NULL, r->jid, to, id);
	sm_buf_fmt(&mu->out, "><x xmlns='" NS_MUC_USER "'><%s from='", inv ? "invite" : "decline");
	sm_buf_esc(&mu->out, inv ? from : from_bare, strlen(inv ? from : from_bare));
	sm_buf_str(&mu->out, "'>");
	if (reason && *reason) {
		sm_buf_str(&mu->out, "<reason>");
		sm_buf_esc(&mu->out, reason, strlen(reason));
		sm_buf_str(&mu->out, "</reason>");
	}
	sm_buf_fmt(&mu->out, "</%s>", inv ? "invite" : "decline");
	if (inv && r->cfg.password) {
		sm_buf_str(&mu->out, "<password>");
		sm_buf_esc(&mu->out, r->cfg.password, strlen(r->cfg.password));
		sm_buf_str(&mu->out, "</password>");
	}
	sm_buf_str(&mu->out, "</x></message>");
	muc_send(sm, WIRE_KIND_MESSAGE, "", r->jid, to, id);
}

/* ---- iq ------------------------------------------------------------------ */

void muc_iq_result(struct sm *sm, const char *from_addr, const char *to, const char *id,
		      const char *payload)
{
	struct sm_buf *b = &sm->muc->out;

	muc_start(sm->muc, WIRE_KIND_IQ, "result", from_addr, to, id);
	if (payload) {
		sm_buf_str(b, ">");
		sm_buf_str(b, payload);
		sm_buf_str(b, "</iq>");
	} else {
		sm_buf_str(b, "/>");
	}
	muc_send(sm, WIRE_KIND_IQ, "result", from_addr, to, id);
}

static int room_cmp(const void *x, const void *y)
{
	return strcmp((*(const struct muc_room *const *)x)->jid, (*(const struct muc_room *const *)y)->jid);
}

unsigned long sm_muc_public_rooms(struct sm *sm, bool (*emit)(void *arg, const char *a,
							      const char *b), void *arg)
{
	struct sm_muc *mu = sm->muc;
	struct muc_room **v;
	size_t n = 0;

	if (!mu || !mu->nrooms)
		return 0;
	v = malloc(mu->nrooms * sizeof(*v));
	if (!v)
		return 0;
	for (struct muc_room *r = mu->list; r; r = r->next)
		if (!r->locked && r->cfg.public && n < mu->nrooms)
			v[n++] = r;
	qsort(v, n, sizeof(*v), room_cmp);
	for (size_t i = 0; i < n; i++) {
		char local[JID_MAX + 1];
		const struct muc_room *r = v[i];

		snprintf(local, sizeof(local), "%.*s", (int)(strchr(r->jid, '@') - r->jid), r->jid);
		if (!emit(arg, r->jid, r->cfg.name ? r->cfg.name : local))
			break;
	}
	free(v);
	return n;
}

/* A disco#items of the service waiting for every shard's rooms. */
struct rooms_wait {
	char *from, *id, *to_addr;  /* the asker, its iq id (NULL: none), the service's JID */
};

static void rooms_wait_free(struct rooms_wait *w)
{
	free(w->from);
	free(w->id);
	free(w->to_addr);
	free(w);
}

static void rooms_gathered(struct sm *sm, const struct sm_gather_res *res, void *arg)
{
	struct rooms_wait *w = arg;
	struct sm_buf *b;

	if (!res || !sm->muc) {
		rooms_wait_free(w);
		return;
	}
	b = &sm->muc->out;
	muc_start(sm->muc, WIRE_KIND_IQ, "result", w->to_addr, w->from, w->id);
	sm_buf_str(b, "><query xmlns='" NS_DISCO_ITEMS "'>");
	for (size_t i = 0; i < res->nitems && i < MUC_DISCO_ITEMS_MAX; i++) {
		sm_buf_str(b, "<item");
		sm_buf_attr(b, "jid", res->items[i].a);
		sm_buf_attr(b, "name", res->items[i].b);
		sm_buf_str(b, "/>");
	}
	sm_buf_str(b, "</query></iq>");
	if (res->missing || res->cut || res->nitems > MUC_DISCO_ITEMS_MAX)
		log_info("public rooms listed in part", "to=\"%s\" listed=%zu missing_shards=%u",
			 w->from, res->nitems < MUC_DISCO_ITEMS_MAX ? res->nitems : MUC_DISCO_ITEMS_MAX,
			 res->missing);
	muc_send(sm, WIRE_KIND_IQ, "result", w->to_addr, w->from, w->id);
	rooms_wait_free(w);
}

/* §6.3: the public rooms of every shard (sm/gather.c), sorted by JID, at
 * most MUC_DISCO_ITEMS_MAX; a shard that does not answer in time is left out. */
static void rooms_ask(struct sm *sm, const char *from, const char *id, const char *to_addr)
{
	struct rooms_wait *w = calloc(1, sizeof(*w));
	struct sm_gather_req rq = { .op = SM_GATHER_ROOMS, .max = MUC_DISCO_ITEMS_MAX,
				    .done = rooms_gathered, .arg = w };

	if (!w || !(w->from = strdup(from)) || !(w->to_addr = strdup(to_addr)) ||
	    (id && !(w->id = strdup(id))) || sm_gather_start(sm, &rq) < 0) {
		if (w)
			rooms_wait_free(w);
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "resource-constraint");
	}
}

/* The service itself: disco (XEP-0030 §3, §4; XEP-0045 §6.1, §6.3). */
static void service_iq(struct sm *sm, const char *from, const struct xtree_node *st,
		       const char *type, const char *to_addr)
{
	const char *id = xtree_attr(st, "id");
	const struct xtree_node *q = st->first;

	if (strcmp(type, "get") && strcmp(type, "set"))
		return;     /* results and errors are for nobody here */
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_DISCO_INFO) && !xtree_attr(q, "node")) {
		muc_iq_result(sm, to_addr, from, id,
			  "<query xmlns='" NS_DISCO_INFO "'>"
			  "<identity category='conference' type='text' name='Chatrooms'/>"
			  "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
			  "<feature var='" NS_MUC "'/><feature var='" NS_PING "'/></query>");
		return;
	}
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_DISCO_ITEMS) && !xtree_attr(q, "node")) {
		rooms_ask(sm, from, id, to_addr);
		return;
	}
	if (!strcmp(type, "get") && q && !strcmp(q->ns, NS_PING) && !strcmp(q->local, "ping")) {
		muc_iq_result(sm, to_addr, from, id, NULL);
		return;
	}
	muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "service-unavailable");
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
		struct muc_occ *o = muc_occ_by_session(r, from, NULL);

		if (get && q && !strcmp(q->ns, NS_PING) && o && !strcmp(o->nick, nick))
			muc_iq_result(sm, to_addr, from, id, NULL);
		else if (!o)
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "not-acceptable");
		else
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "feature-not-implemented");
		return;
	}
	if (q && !strcmp(q->ns, NS_MUC_OWNER)) {
		muc_owner_iq(sm, r, from, from_bare, q, type, id, to_addr);
		return;
	}
	if (q && !strcmp(q->ns, NS_MUC_ADMIN)) {
		muc_admin_iq(sm, r, from, from_bare, q, type, id, to_addr);
		return;
	}
	if (get && q && !strcmp(q->ns, NS_DISCO_INFO) && !xtree_attr(q, "node")) {
		struct sm_buf *b = &sm->muc->out;

		muc_start(sm->muc, WIRE_KIND_IQ, "result", to_addr, from, id);
		sm_buf_str(b, "><query xmlns='" NS_DISCO_INFO "'><identity category='conference' type='text' name='");
		if (r->cfg.name)
			sm_buf_esc(b, r->cfg.name, strlen(r->cfg.name));
		else
			sm_buf_esc(b, r->jid, (size_t)(strchr(r->jid, '@') - r->jid));
		sm_buf_str(b, "'/><feature var='" NS_MUC "'/><feature var='" NS_PING "'/>"
			      "<feature var='" NS_OCCUPANT_ID "'/>");
		if (sm_mam_on(sm))
			sm_buf_str(b, "<feature var='urn:xmpp:mam:2'/><feature var='urn:xmpp:sid:0'/>");
		muc_features(r, b);
		sm_buf_str(b, "</query></iq>");
		muc_send(sm, WIRE_KIND_IQ, "result", to_addr, from, id);
		return;
	}
	if (q && !strcmp(q->ns, "urn:xmpp:mam:2") && !strcmp(q->local, "query")) {
		/* XEP-0313 on the room: occupants, members, or anyone in a public open room. */
		const char *cond = NULL;

		if (!muc_occ_by_session(r, from, NULL) && muc_affil_of(r, from_bare) < AFF_MEMBER &&
		    (!r->cfg.public || r->cfg.members_only))
			cond = "forbidden";
		else if (get)
			cond = "feature-not-implemented";   /* the form: ask the account's archive */
		else
			cond = sm_mam_room_query(sm, r->jid, from, id, q);
		if (cond)
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, cond);
		return;
	}
	if (get && q && !strcmp(q->ns, NS_DISCO_ITEMS)) {
		muc_iq_result(sm, to_addr, from, id, "<query xmlns='" NS_DISCO_ITEMS "'/>");   /* §6.5: none shown */
		return;
	}
	if (get && q && !strcmp(q->ns, NS_PING)) {
		muc_iq_result(sm, to_addr, from, id, NULL);
		return;
	}
	muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "service-unavailable");
}

/* ---- entry ------------------------------------------------------------- */

/* A stanza that arrived while the persistent rooms were loading, or while
 * another was handled (sm_muc_in). */
static void park(struct sm_muc *mu, struct sm *sm, const char *from, size_t from_len,
		 const struct wire_msg *m)
{
	size_t flen = wire_size(m);
	struct muc_parked *p;

	if (mu->nparked >= MUC_MAX_PARKED || !(p = malloc(sizeof(*p) + from_len + 1 + flen))) {
		log_warn("group-chat stanza refused: too many waiting", "from=\"%.*s\"", (int)from_len, from);
		return;
	}
	p->next = NULL;
	p->from = (char *)p->data;
	memcpy(p->from, from, from_len);
	p->from[from_len] = '\0';
	p->from_len = from_len;
	p->frame = p->data + from_len + 1;
	p->frame_len = wire_encode(m, p->frame, flen);
	if (!p->frame_len) {
		free(p);
		return;
	}
	p->obl = sm_obl_hold(sm);
	if (mu->parked_tail)
		mu->parked_tail->next = p;
	else
		mu->parked = p;
	mu->parked_tail = p;
	mu->nparked++;
}

static void replay_one(struct sm *sm, void *arg)
{
	const struct muc_parked *p = arg;
	struct wire_msg m;

	if (wire_decode(p->frame, p->frame_len, &m) > 0)
		sm_muc_in(sm, p->from, p->from_len, &m);
}

/* The parked stanzas, in order; those their replay parks come after them. */
static void drain(struct sm *sm)
{
	struct sm_muc *mu = sm->muc;
	struct muc_parked *p;

	mu->draining = true;
	while ((p = mu->parked)) {
		mu->parked = p->next;
		if (!mu->parked)
			mu->parked_tail = NULL;
		mu->nparked--;
		sm_obl_within(sm, p->obl, replay_one, p);
		sm_obl_release(p->obl);
		free(p);
	}
	mu->draining = false;
}

void muc_loaded(struct sm *sm)
{
	sm->muc->loading = false;
	drain(sm);
}

static void muc_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m);

/*
 * One stanza at a time: what a stanza's handling sends may come straight
 * back to the service (an occupant's server refusing a copy with an error,
 * XEP-0191 §3.3, is routed here at once) while a fan-out walks a room's
 * occupants; such a stanza waits until the handling is over, so that no
 * room changes under a walk.
 */
void sm_muc_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct sm_muc *mu = sm->muc;

	if (mu && (mu->loading || mu->busy)) {
		park(mu, sm, from, from_len, m);
		return;
	}
	if (mu)
		mu->busy = true;
	muc_in(sm, from, from_len, m);
	if (!mu)
		return;
	mu->busy = false;
	if (mu->parked && !mu->draining)
		drain(sm);
}

static void muc_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
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
			muc_error(sm, kind, to, sender, xtree_attr(st, "id"), "service-unavailable");
		goto done;
	}
	if (kind == WIRE_KIND_PRESENCE) {
		on_presence(sm, room, strlen(room), nick, sender, sender_bare, st, type, to);
		goto done;
	}
	r = muc_room_find(mu, room, strlen(room));
	if (type && !strcmp(type, "error")) {
		/* An occupant's client refused one of our stanzas: it is gone (333). */
		unsigned idx;
		struct muc_occ *o = r ? muc_occ_by_session(r, sender, &idx) : NULL;

		if (o)
			muc_leave(sm, r, o, idx, 333);
		goto done;
	}
	if (!r || (r->locked && muc_affil_of(r, sender_bare) != AFF_OWNER)) {
		if (!type || strcmp(type, "result"))
			muc_error(sm, kind, to, sender, xtree_attr(st, "id"), "item-not-found");
		goto done;
	}
	if (kind == WIRE_KIND_IQ) {
		room_iq(sm, r, nick, sender, sender_bare, st, type ? type : "", to);
	} else if (*nick) {
		if (type && !strcmp(type, "groupchat"))
			muc_error(sm, kind, to, sender, xtree_attr(st, "id"), "bad-request");   /* §7.5 */
		else
			on_private(sm, r, nick, sender, st, type && *type ? type : "normal", to);
	} else if (type && !strcmp(type, "groupchat")) {
		on_groupchat(sm, r, sender, st, to);
	} else if (xtree_child(xtree_child(st, NS_MUC_USER, "x"), NS_MUC_USER, "invite") ||
		   xtree_child(xtree_child(st, NS_MUC_USER, "x"), NS_MUC_USER, "decline")) {
		on_invite(sm, r, sender, sender_bare, st, to);
	} else if (!muc_voice_message(sm, r, sender, st, to)) {
		/* §7.13 / §8.6 forms are muc_voice.c's; nothing else is served here. */
		muc_error(sm, kind, to, sender, xtree_attr(st, "id"), "feature-not-implemented");
	}
done:
	xtree_free(t);
}
