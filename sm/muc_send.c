/*
 * muc_send — how the group-chat service's stanzas are built and sent
 * (sm/muc.c is the service): single stanzas (muc_start / muc_send),
 * errors, and fan-outs, one stanza built once per room event and written
 * to each recipient with only `to` spliced in (struct muc_fan, muc_int.h):
 * occupants' presence, groupchat messages, notices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xtree.h"
#include "sm/muc_int.h"
#include "tls/crypto.h"

/* ---- sending ------------------------------------------------------------- */

/*
 * The stanza in mu->out goes from `from` (a room JID) to `to` (a real JID):
 * to the session on this shard, to its owner shard, or to its server.
 */
void muc_send(struct sm *sm, int kind, const char *type, const char *from, const char *to,
		     const char *id)
{
	struct sm_muc *mu = sm->muc;

	if (mu->out.err) {
		log_warn("group-chat stanza too large or out of memory, dropped", "from=\"%s\"", from);
		sm_buf_clear(&mu->out);
		mu->out.err = 0;
		return;
	}
	sm_route_from_service(sm, kind, type, from, to, id, sm_buf_data(&mu->out), sm_buf_used(&mu->out));
	sm_buf_clear(&mu->out);
}

void sm_muc_emit(struct sm *sm, int kind, const char *type, const char *from, const char *to,
		 const char *id, const void *payload, size_t len)
{
	struct sm_muc *mu = sm->muc;

	if (!mu)
		return;
	muc_start(mu, kind, type, from, to, id);
	sm_buf_str(&mu->out, ">");
	sm_buf_add(&mu->out, payload, len);
	sm_buf_fmt(&mu->out, "</%s>", sm_kind_name(kind));
	muc_send(sm, kind, type ? type : "", from, to, id);
}

/* Start a stanza in mu->out: "<kind from to [type] [id]" (no '>' yet). */
void muc_start(struct sm_muc *mu, int kind, const char *type, const char *from, const char *to,
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
	if (id && *id)
		sm_buf_attr(b, "id", id);
}


/* Start the template (f->from is set): attributes in muc_start()'s order. */
static void fan_start(struct sm_muc *mu, struct muc_fan *f, int kind, const char *type,
		      const char *id)
{
	struct sm_buf *b = &mu->fan;

	sm_buf_clear(b);
	sm_buf_str(b, "<");
	sm_buf_str(b, sm_kind_name(kind));
	sm_buf_str(b, " from='");
	sm_buf_esc(b, f->from, strlen(f->from));
	sm_buf_str(b, "' to='");
	f->hole = sm_buf_used(b);
	sm_buf_str(b, "'");
	if (type && *type) {
		sm_buf_str(b, " type='");
		sm_buf_str(b, type);
		sm_buf_str(b, "'");
	}
	if (id && *id) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, id, strlen(id));
		sm_buf_str(b, "'");
	}
	f->m = (struct wire_msg){ .type = WIRE_STANZA };
	f->m.u.stanza.kind = (uint8_t)kind;
	f->m.u.stanza.type = sm_ws(type ? type : "");
	f->m.u.stanza.from = sm_ws(f->from);
	f->m.u.stanza.id = sm_ws(id ? id : "");
	f->m.u.stanza.ns = sm_ws("");
}

/* The template is whole: false (logged) when it grew too large. */
static bool fan_ready(struct sm_muc *mu, const struct muc_fan *f)
{
	if (!mu->fan.err)
		return true;
	log_warn("group-chat stanza too large or out of memory, dropped", "from=\"%s\"", f->from);
	sm_buf_clear(&mu->fan);
	mu->fan.err = 0;
	return false;
}

/* One copy of the template to the real JID `to` (canonical, as the
 * occupants' JIDs are kept). */
void muc_fan_send(struct sm *sm, struct muc_fan *f, const char *to)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->out;
	const uint8_t *t = sm_buf_data(&mu->fan);
	size_t n = strlen(to);

	sm_buf_clear(b);
	sm_buf_add(b, t, f->hole);
	sm_buf_esc(b, to, n);
	sm_buf_add(b, t + f->hole, sm_buf_used(&mu->fan) - f->hole);
	if (b->err) {
		log_warn("group-chat stanza too large or out of memory, dropped", "from=\"%s\"",
			 f->from);
		b->err = 0;
	} else {
		f->m.u.stanza.to = wire_s(to, n);
		f->m.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
		sm_route_service_copy(sm, &f->m);
	}
	sm_buf_clear(b);
}

/* An error answer to a stanza (RFC 6120 §8.3): `from` the address it was
 * sent to, `to` its sender. */
void muc_error(struct sm *sm, int kind, const char *to_addr, const char *sender,
			const char *id, const char *cond)
{
	struct sm_buf *b = &sm->muc->out;

	muc_start(sm->muc, kind, "error", to_addr, sender, id);
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
char *muc_children(struct sm_muc *mu, const struct xtree_node *el, const char *skip,
		      size_t *len)
{
	char *s;

	sm_buf_clear(&mu->part);
	/* An <occupant-id/> a client put there is dropped: only ours count (XEP-0421 §4). */
	for (const struct xtree_node *c = el ? el->first : NULL; c; c = c->next)
		if ((!skip || strcmp(c->ns, skip)) && strcmp(c->ns, NS_OCCUPANT_ID))
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
bool muc_occ_jid(const struct muc_room *r, const char *nick, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "%s/%s", r->jid, nick) < cap;
}

static bool sees_jids(const struct muc_room *r, const struct muc_occ *viewer)
{
	return r->cfg.nonanonymous || viewer->role == ROLE_MODERATOR;
}

/*
 * The fan-out template of o's presence (from its nickname): its payload,
 * its affiliation and role, its real JID when with_jid (the viewer may see
 * it), and the status codes given (0-terminated); new_nick: §7.6.3's
 * unavailable presence of a nickname change (item nick, status 303).
 * False when it cannot be built.
 */
static bool presence_start(struct sm *sm, struct muc_room *r, const struct muc_occ *o,
			   struct muc_fan *f, bool with_jid, bool unavailable, const int *codes,
			   const char *new_nick)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->fan;
	char oid[24];

	if (!muc_occ_jid(r, o->nick, f->from, sizeof(f->from)))
		return false;
	fan_start(mu, f, WIRE_KIND_PRESENCE, unavailable ? "unavailable" : NULL, NULL);
	sm_buf_str(b, ">");
	if (!unavailable && o->payload)
		sm_buf_str(b, o->payload);
	muc_occupant_id(r, o->bare, oid);
	sm_buf_str(b, "<occupant-id xmlns='" NS_OCCUPANT_ID "' id='");
	sm_buf_str(b, oid);
	sm_buf_str(b, "'/><x xmlns='" NS_MUC_USER "'><item affiliation='");
	sm_buf_str(b, muc_affil_names[muc_affil_of(r, o->bare)]);
	sm_buf_str(b, "' role='");
	sm_buf_str(b, muc_role_names[unavailable && !new_nick ? ROLE_NONE : o->role]);
	sm_buf_str(b, "'");
	if (with_jid && o->nsess)
		sm_buf_attr(b, "jid", o->sess[0]);
	sm_buf_attr(b, "nick", new_nick);
	if (unavailable && (mu->why_actor || mu->why_reason)) {
		sm_buf_str(b, ">");
		if (mu->why_actor) {
			sm_buf_str(b, "<actor");
			sm_buf_attr(b, "nick", mu->why_actor);
			sm_buf_str(b, "/>");
		}
		if (mu->why_reason) {
			sm_buf_str(b, "<reason>");
			sm_buf_esc(b, mu->why_reason, strlen(mu->why_reason));
			sm_buf_str(b, "</reason>");
		}
		sm_buf_str(b, "</item>");
	} else {
		sm_buf_str(b, "/>");
	}
	for (; codes && *codes; codes++)
		sm_buf_fmt(b, "<status code='%d'/>", *codes);
	sm_buf_str(b, "</x></presence>");
	return fan_ready(mu, f);
}

/* The presence of o to `to` (one of viewer's sessions), as presence_start(). */
void muc_presence_full(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *to,
			  const struct muc_occ *viewer, bool unavailable, const int *codes,
			  const char *new_nick)
{
	struct muc_fan f;

	if (presence_start(sm, r, o, &f, viewer && sees_jids(r, viewer), unavailable, codes,
			   new_nick))
		muc_fan_send(sm, &f, to);
}

void muc_presence_of(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *to,
		     const struct muc_occ *viewer, bool unavailable, const int *codes)
{
	muc_presence_full(sm, r, o, to, viewer, unavailable, codes, NULL);
}

void muc_broadcast(struct sm *sm, struct muc_room *r, const struct muc_occ *o,
			       const struct muc_occ *except, bool unavailable, const int *codes)
{
	struct muc_fan f;

	/* Two versions at most, built once each: without the real JID, then
	 * with it (to those who see real JIDs: §7.2.3, §7.2.4). */
	for (int with_jid = 0; with_jid < 2; with_jid++) {
		int built = 0;      /* 1: f ready, -1: could not be built */

		for (struct muc_occ *v = r->occ; v && built >= 0; v = v->next) {
			if (v == except || !v->nsess || sees_jids(r, v) != (with_jid == 1))
				continue;
			if (!built)
				built = presence_start(sm, r, o, &f, with_jid, unavailable, codes, NULL)
					? 1 : -1;
			for (unsigned i = 0; i < v->nsess && built > 0; i++)
				muc_fan_send(sm, &f, v->sess[i]);
		}
	}
}

/* The fan-out template of a groupchat message from `nick` (NULL: the
 * room; payload: its children); at != 0: from the history, with its
 * XEP-0203 delay.  False when it cannot be built. */
bool muc_message_start(struct sm *sm, struct muc_room *r, struct muc_fan *f, const char *nick,
			  const char *oid, const char *id, const char *payload, const char *sid,
			  time_t at)
{
	struct sm_muc *mu = sm->muc;
	struct sm_buf *b = &mu->fan;

	if (nick && !muc_occ_jid(r, nick, f->from, sizeof(f->from)))
		return false;
	if (!nick)
		snprintf(f->from, sizeof(f->from), "%s", r->jid);
	fan_start(mu, f, WIRE_KIND_MESSAGE, "groupchat", id);
	sm_buf_str(b, ">");
	if (payload)
		sm_buf_str(b, payload);
	if (oid && *oid) {
		sm_buf_str(b, "<occupant-id xmlns='" NS_OCCUPANT_ID "' id='");
		sm_buf_str(b, oid);
		sm_buf_str(b, "'/>");
	}
	if (sid) {      /* XEP-0359 §3: the room's archive id */
		sm_buf_str(b, "<stanza-id xmlns='urn:xmpp:sid:0' id='");
		sm_buf_str(b, sid);
		sm_buf_str(b, "' by='");
		sm_buf_esc(b, r->jid, r->jid_len);
		sm_buf_str(b, "'/>");
	}
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
	return fan_ready(mu, f);
}

/* A groupchat message (as muc_message_start()) to the real JID `to` only. */
void muc_message_to(struct sm *sm, struct muc_room *r, const char *nick, const char *oid,
		       const char *id, const char *payload, const char *sid, const char *to, time_t at)
{
	struct muc_fan f;

	if (muc_message_start(sm, r, &f, nick, oid, id, payload, sid, at))
		muc_fan_send(sm, &f, to);
}

void muc_notice(struct sm *sm, struct muc_room *r, const int *codes)
{
	struct sm_muc *mu = sm->muc;

	for (struct muc_occ *v = r->occ; v; v = v->next)
		for (unsigned i = 0; i < v->nsess; i++) {
			muc_start(mu, WIRE_KIND_MESSAGE, "groupchat", r->jid, v->sess[i], NULL);
			sm_buf_str(&mu->out, "><x xmlns='" NS_MUC_USER "'>");
			for (const int *c = codes; *c; c++)
				sm_buf_fmt(&mu->out, "<status code='%d'/>", *c);
			sm_buf_str(&mu->out, "</x></message>");
			muc_send(sm, WIRE_KIND_MESSAGE, "groupchat", r->jid, v->sess[i], NULL);
		}
}
