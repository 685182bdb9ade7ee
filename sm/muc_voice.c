/*
 * muc_voice — requests for voice in a moderated room (XEP-0045 §7.13) and
 * their approval by a moderator (§8.6).
 *
 * A visitor sends the room (its bare JID) a message with a submitted
 * muc#request form holding muc#role = participant.  The room forwards it to
 * every session of every moderator as the §8.6 approval form (a message
 * from the room: title "Voice request", muc#role, muc#jid the requester's
 * full JID, muc#roomnick its nickname, muc#request_allow false).  A
 * moderator who submits that form with muc#request_allow true grants the
 * occupant named by muc#roomnick (else muc#jid) voice: its role becomes
 * participant and every occupant gets its new presence (§8.3).  A form
 * submitted with false, or canceled, is a request skipped: nothing happens.
 *
 * Errors (message errors from the room): a request from someone not in the
 * room, not-acceptable (as any message from a non-occupant, §7.4); from an
 * occupant who has voice already, not-allowed; an approval from anyone but a
 * moderator, forbidden (§8: requests by non-moderators are denied so); an
 * approval for a nickname not in the room, item-not-found (as for role
 * changes, §8); a form that is not a valid submission (XEP-0004 rules,
 * parser/dataform.h) or asks for another role, bad-request.  A form of
 * another FORM_TYPE is not ours: feature-not-implemented, as before.
 *
 * Bound: one request is forwarded per occupant every MUC_VOICE_INTERVAL
 * seconds; those between are dropped (a visitor cannot flood moderators).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/dataform.h"
#include "sm/muc_int.h"

#define NS_MUC_REQUEST NS_MUC "#request"

static void put_part(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

/* The §8.6 approval form for occupant o (session `full`) to every
 * moderator session. */
static void forward(struct sm *sm, struct muc_room *r, const struct muc_occ *o, const char *full)
{
	static const char *const participant[] = { "participant" };
	static const char *const no[] = { "false" };
	static const char *const form_type[] = { NS_MUC_REQUEST };
	const char *jid[] = { full }, *nick[] = { o->nick };
	const struct dataform_fdesc fields[] = {
		{ .type = DATAFORM_F_HIDDEN, .var = "FORM_TYPE", .values = form_type, .nvalues = 1 },
		{ .type = DATAFORM_F_TEXT_SINGLE, .var = "muc#role", .label = "Requested role",
		  .values = participant, .nvalues = 1 },
		{ .type = DATAFORM_F_TEXT_SINGLE, .var = "muc#jid", .label = "User ID",
		  .values = jid, .nvalues = 1 },
		{ .type = DATAFORM_F_TEXT_SINGLE, .var = "muc#roomnick", .label = "Room Nickname",
		  .values = nick, .nvalues = 1 },
		{ .type = DATAFORM_F_BOOLEAN, .var = "muc#request_allow",
		  .label = "Grant voice to this person?", .values = no, .nvalues = 1 },
	};
	struct sm_muc *mu = sm->muc;
	unsigned sent = 0;
	char id[24];

	for (struct muc_occ *m = r->occ; m; m = m->next) {
		if (m->role != ROLE_MODERATOR)
			continue;
		for (unsigned i = 0; i < m->nsess; i++) {
			sm_mam_new_id(id);
			muc_start(mu, WIRE_KIND_MESSAGE, "", r->jid, m->sess[i], id);
			sm_buf_str(&mu->out, ">");
			dataform_write(put_part, &mu->out, DATAFORM_FORM, "Voice request",
				       "To approve this request for voice, select the \"Grant voice to "
				       "this person?\" checkbox and click OK. To skip this request, "
				       "click the cancel button.",
				       fields, sizeof(fields) / sizeof(fields[0]));
			sm_buf_str(&mu->out, "</message>");
			muc_send(sm, WIRE_KIND_MESSAGE, "", r->jid, m->sess[i], id);
			sent++;
		}
	}
	log_debug("voice request forwarded", "room=\"%s\" nick=\"%s\" moderator_sessions=%u", r->jid,
		  o->nick, sent);
}

/* §7.13: occupant o (session from) asks for voice. */
static void request(struct sm *sm, struct muc_room *r, struct muc_occ *o, const char *from,
		    const char *id, const char *to_addr)
{
	time_t now = time(NULL);

	if (!o) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-acceptable");
		return;
	}
	if (o->role != ROLE_VISITOR) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "not-allowed");
		return;
	}
	if (o->voice_asked && now - o->voice_asked < MUC_VOICE_INTERVAL) {
		log_debug("voice request within the interval dropped", "room=\"%s\" nick=\"%s\"",
			  r->jid, o->nick);
		return;
	}
	o->voice_asked = now;
	forward(sm, r, o, from);
}

/* §8.6: a moderator's answer to the approval form. */
static void approve(struct sm *sm, struct muc_room *r, struct muc_occ *me, const struct dataform *f,
		    const char *from, const char *id, const char *to_addr)
{
	const char *nick = dataform_value(f, "muc#roomnick"), *jid = dataform_value(f, "muc#jid");
	const char *allow = dataform_value(f, "muc#request_allow");
	struct muc_occ *t;

	if (!me || me->role != ROLE_MODERATOR) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "forbidden");
		return;
	}
	if (f->type == DATAFORM_CANCEL || !allow || dataform_bool(allow) != 1)
		return;     /* skipped or denied: the visitor stays one */
	t = nick ? muc_occ_by_nick(r, nick) : jid ? muc_occ_by_session(r, jid, NULL) : NULL;
	if (!t) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "item-not-found");
		return;
	}
	if (t->role != ROLE_VISITOR)
		return;     /* it has voice already (another moderator was quicker) */
	t->role = ROLE_PARTICIPANT;
	log_info("voice granted on request", "room=\"%s\" nick=\"%s\" by=\"%s\"", r->jid, t->nick,
		 from);
	muc_broadcast(sm, r, t, NULL, false, NULL);
}

bool muc_voice_message(struct sm *sm, struct muc_room *r, const char *from,
		       const struct xtree_node *st, const char *to_addr)
{
	const struct xtree_node *x = xtree_child(st, NS_XDATA, "x");
	const char *id = xtree_attr(st, "id"), *role, *ft;
	struct muc_occ *o = muc_occ_by_session(r, from, NULL);
	const struct dataform_field *ftf;
	struct dataform f;      /* about 5 KiB; shards are threads: not static */

	if (!x)
		return false;
	if (dataform_parse(x, &f) != DATAFORM_OK) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "bad-request");
		return true;
	}
	/* A submission may leave the types out (XEP-0004 §3.4; §7.13's example
	 * does): FORM_TYPE hidden, or untyped. */
	ftf = dataform_field(&f, "FORM_TYPE");
	ft = ftf && (!ftf->typed || ftf->type == DATAFORM_F_HIDDEN) && ftf->nvalues ? ftf->values[0]
									    : NULL;
	if (!ft || strcmp(ft, NS_MUC_REQUEST))
		return false;
	if (f.type != DATAFORM_SUBMIT && f.type != DATAFORM_CANCEL) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "bad-request");
		return true;
	}
	role = dataform_value(&f, "muc#role");
	if (role && strcmp(role, "participant")) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "bad-request");
		return true;
	}
	/* The request holds only muc#role; the approval names whom it is about. */
	if (dataform_field(&f, "muc#roomnick") || dataform_field(&f, "muc#jid") ||
	    dataform_field(&f, "muc#request_allow")) {
		approve(sm, r, o, &f, from, id, to_addr);
		return true;
	}
	if (f.type == DATAFORM_CANCEL)
		return true;
	if (!role) {
		muc_error(sm, WIRE_KIND_MESSAGE, to_addr, from, id, "bad-request");
		return true;
	}
	request(sm, r, o, from, id, to_addr);
	return true;
}
