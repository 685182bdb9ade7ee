/*
 * muc_admin — what a room's owners and admins do (XEP-0045 §8 - §10): the
 * configuration form (muc#roomconfig), destroying a room, roles (kick,
 * voice, moderator) and affiliations (owner, admin, member, outcast), and
 * keeping persistent rooms in storage.
 *
 * Who may do what (§5.2, the tables of §2.5 and §5.1):
 *   kick, voice, revoke voice   a moderator, of an occupant below admin;
 *   grant / revoke moderator    an admin or owner, of an occupant below admin;
 *   member, none, outcast       an admin or owner, of a user below admin (an
 *                               owner: of anyone but the last owner);
 *   admin, owner                an owner (the last owner stays: <conflict/>).
 * A role change names an occupant by nickname, an affiliation change a
 * user by bare JID; several items in one request are all checked first and
 * then applied together, or none is (§9.1: "bad-request"/"not-allowed").
 * Effects: a kicked occupant leaves with 307, a banned one with 301, one no
 * longer a member of a members-only room with 321 (322 when the room became
 * members-only); the others see the new role and affiliation.
 *
 * Persistent rooms: the configuration, the affiliations and the subject in
 * one row of the kv table (user: the room's JID, ns urn:xedge:muc:0, key
 * "room"), as a small XML document, written behind after every change that
 * alters them (a storage job, which holds the change's frame until it is
 * committed: sm.c "Confirmations") and deleted with the room.  At start each
 * shard loads the rows of the rooms its JID hashing gives it; stanzas for
 * rooms wait until then (muc.c).  History and occupants are not kept.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "sm/muc_int.h"
#include "sm/store.h"

#define NS_ROOMCONFIG "http://jabber.org/protocol/muc#roomconfig"
#define NS_KV_MUC "urn:xedge:muc:0"
#define MUC_MAX_ITEMS 64            /* items in one admin request */

/* ---- configuration ----------------------------------------------------- */

void muc_config_free(struct muc_config *c)
{
	free(c->name);
	free(c->desc);
	free(c->password);
	memset(c, 0, sizeof(*c));
}

int muc_role_for(const struct muc_room *r, int affil)
{
	if (affil >= AFF_ADMIN)
		return ROLE_MODERATOR;
	if (r->cfg.moderated && affil < AFF_MEMBER)
		return ROLE_VISITOR;
	return ROLE_PARTICIPANT;
}

void muc_features(const struct muc_room *r, struct sm_buf *b)
{
	const struct muc_config *c = &r->cfg;

	sm_buf_str(b, c->public ? "<feature var='muc_public'/>" : "<feature var='muc_hidden'/>");
	sm_buf_str(b, c->persistent ? "<feature var='muc_persistent'/>" : "<feature var='muc_temporary'/>");
	sm_buf_str(b, c->members_only ? "<feature var='muc_membersonly'/>" : "<feature var='muc_open'/>");
	sm_buf_str(b, c->moderated ? "<feature var='muc_moderated'/>" : "<feature var='muc_unmoderated'/>");
	sm_buf_str(b, c->nonanonymous ? "<feature var='muc_nonanonymous'/>" : "<feature var='muc_semianonymous'/>");
	sm_buf_str(b, c->password ? "<feature var='muc_passwordprotected'/>" : "<feature var='muc_unsecured'/>");
}

static void field(struct sm_buf *b, const char *var, const char *type, const char *label,
		  const char *value)
{
	sm_buf_fmt(b, "<field var='%s' type='%s' label='%s'>", var, type, label);
	if (value) {
		sm_buf_str(b, "<value>");
		sm_buf_esc(b, value, strlen(value));
		sm_buf_str(b, "</value>");
	}
}

static void config_form(const struct muc_room *r, struct sm_buf *b)
{
	const struct muc_config *c = &r->cfg;
	char max[16];

	snprintf(max, sizeof(max), "%u", c->max_users);
	sm_buf_str(b, "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_XDATA "' type='form'>"
		      "<title>Room configuration</title>"
		      "<field var='FORM_TYPE' type='hidden'><value>" NS_ROOMCONFIG "</value></field>");
	field(b, "muc#roomconfig_roomname", "text-single", "Room name", c->name);
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_roomdesc", "text-single", "Description", c->desc);
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_persistentroom", "boolean", "Persistent", c->persistent ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_publicroom", "boolean", "Listed in the directory", c->public ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_membersonly", "boolean", "Members only", c->members_only ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_moderatedroom", "boolean", "Moderated", c->moderated ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_passwordprotectedroom", "boolean", "Password required",
	      c->password ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_roomsecret", "text-private", "Password", c->password);
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_whois", "list-single", "Who may see real JIDs",
	      c->nonanonymous ? "anyone" : "moderators");
	sm_buf_str(b, "<option label='Moderators'><value>moderators</value></option>"
		      "<option label='Anyone'><value>anyone</value></option></field>");
	field(b, "muc#roomconfig_changesubject", "boolean", "Participants may change the subject",
	      c->changesubject ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_allowinvites", "boolean", "Participants may invite",
	      c->allow_invites ? "1" : "0");
	sm_buf_str(b, "</field>");
	field(b, "muc#roomconfig_maxusers", "list-single", "Most occupants", c->max_users ? max : "none");
	sm_buf_str(b, "<option><value>10</value></option><option><value>20</value></option>"
		      "<option><value>50</value></option><option><value>100</value></option>"
		      "<option><value>none</value></option></field></x></query>");
}

static const char *value_of(const struct xtree_node *f)
{
	return xtree_text(xtree_child(f, NS_XDATA, "value"));
}

/* XEP-0004 §3.3: "1"/"true" or "0"/"false"; -1 otherwise. */
static int boolean(const char *v)
{
	if (!v)
		return -1;
	if (!strcmp(v, "1") || !strcmp(v, "true"))
		return 1;
	if (!strcmp(v, "0") || !strcmp(v, "false"))
		return 0;
	return -1;
}

/* The submitted form x over the current configuration into *out; false
 * when a field's value is not one this form allows (bad-request). */
static bool config_parse(const struct muc_room *r, const struct xtree_node *x, struct muc_config *out)
{
	const struct muc_config *c = &r->cfg;
	bool pw_on = c->password != NULL;
	const char *secret = NULL;

	*out = *c;
	out->name = c->name ? strdup(c->name) : NULL;
	out->desc = c->desc ? strdup(c->desc) : NULL;
	out->password = NULL;
	for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
	     f = xtree_next(f, NS_XDATA, "field")) {
		const char *var = xtree_attr(f, "var"), *v = value_of(f);
		int bv = boolean(v);

		if (!var)
			continue;
		if (!strcmp(var, "FORM_TYPE")) {
			if (!v || strcmp(v, NS_ROOMCONFIG))
				return false;
		} else if (!strcmp(var, "muc#roomconfig_roomname")) {
			free(out->name);
			out->name = v && *v && strlen(v) <= 256 ? strdup(v) : NULL;
		} else if (!strcmp(var, "muc#roomconfig_roomdesc")) {
			free(out->desc);
			out->desc = v && *v && strlen(v) <= 1024 ? strdup(v) : NULL;
		} else if (!strcmp(var, "muc#roomconfig_roomsecret")) {
			secret = v;
		} else if (!strcmp(var, "muc#roomconfig_whois")) {
			if (!v || (strcmp(v, "anyone") && strcmp(v, "moderators")))
				return false;
			out->nonanonymous = !strcmp(v, "anyone");
		} else if (!strcmp(var, "muc#roomconfig_maxusers")) {
			char *end;
			unsigned long n = v ? strtoul(v, &end, 10) : 0;

			if (!v || (strcmp(v, "none") && (*end || n == 0 || n > MUC_MAX_OCCUPANTS)))
				return false;
			out->max_users = strcmp(v, "none") ? (unsigned)n : 0;
		} else {
			static const struct { const char *var; size_t off; } flags[] = {
				{ "muc#roomconfig_persistentroom", offsetof(struct muc_config, persistent) },
				{ "muc#roomconfig_publicroom", offsetof(struct muc_config, public) },
				{ "muc#roomconfig_membersonly", offsetof(struct muc_config, members_only) },
				{ "muc#roomconfig_moderatedroom", offsetof(struct muc_config, moderated) },
				{ "muc#roomconfig_changesubject", offsetof(struct muc_config, changesubject) },
				{ "muc#roomconfig_allowinvites", offsetof(struct muc_config, allow_invites) },
			};
			if (!strcmp(var, "muc#roomconfig_passwordprotectedroom")) {
				if (bv < 0)
					return false;
				pw_on = bv;
				continue;
			}
			for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
				if (!strcmp(var, flags[i].var)) {
					if (bv < 0)
						return false;
					*(bool *)((char *)out + flags[i].off) = bv;
				}
			/* Fields this service does not offer are ignored (XEP-0004 §3.4). */
		}
	}
	if (pw_on) {
		const char *p = secret ? secret : c->password;

		if (!p || !*p || strlen(p) > 256)
			return false;        /* a password-protected room needs its password */
		out->password = strdup(p);
	}
	return true;
}

/* ---- persistence --------------------------------------------------------- */

static void submit(struct sm *sm, const char *room, const void *blob, size_t len)
{
	sm_kv_put_behind(sm, room, NS_KV_MUC, "room", len ? blob : NULL, len);
}

void muc_save(struct sm *sm, struct muc_room *r)
{
	const struct muc_config *c = &r->cfg;
	struct sm_buf *b = &sm->muc->part;
	const struct muc_affil *a;

	if (!c->persistent)
		return;
	sm_buf_clear(b);
	sm_buf_str(b, "<room xmlns='" NS_KV_MUC "' secret='");
	for (size_t i = 0; i < sizeof(r->secret); i++)
		sm_buf_fmt(b, "%02x", r->secret[i]);
	sm_buf_fmt(b, "' flags='%s%s%s%s%s%s' max='%u'",
		   c->public ? "u" : "", c->members_only ? "m" : "", c->moderated ? "o" : "",
		   c->nonanonymous ? "n" : "", c->changesubject ? "s" : "", c->allow_invites ? "i" : "",
		   c->max_users);
	sm_buf_attr(b, "name", c->name);
	sm_buf_attr(b, "desc", c->desc);
	sm_buf_attr(b, "password", c->password);
	sm_buf_str(b, ">");
	if (r->subject) {
		sm_buf_str(b, "<subject nick='");
		if (r->subject_nick)
			sm_buf_esc(b, r->subject_nick, strlen(r->subject_nick));
		sm_buf_str(b, "'>");
		sm_buf_esc(b, r->subject, strlen(r->subject));
		sm_buf_str(b, "</subject>");
	}
	for (a = r->affils; a; a = a->next) {
		sm_buf_str(b, "<a j='");
		sm_buf_esc(b, a->jid, strlen(a->jid));
		sm_buf_fmt(b, "' f='%s'/>", muc_affil_names[a->affil]);
	}
	sm_buf_str(b, "</room>");
	if (b->err) {
		log_warn("room too large to save", "room=\"%s\"", r->jid);
		b->err = 0;
	} else {
		submit(sm, r->jid, sm_buf_data(b), sm_buf_used(b));
	}
	sm_buf_clear(b);
}

void muc_forget(struct sm *sm, const struct muc_room *r)
{
	if (r->cfg.persistent)
		submit(sm, r->jid, "", 0);
}

struct load_row {
	char *room, *blob;
	size_t len;
};

struct load_job {
	struct sm_job job;
	struct load_row *rows;
	size_t n, cap;
};

static void load_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "SELECT user, value FROM kv WHERE ns = ?1 AND key = 'room'";
	struct load_job *lj = (struct load_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, NS_KV_MUC);
	while ((rc = sm_db_step(q)) == SM_ROW) {
		const char *room = sm_db_col_text(q, 0);
		const void *v = sm_db_col_blob(q, 1);
		size_t n = sm_db_col_bytes(q, 1);
		struct load_row *row;

		if (!room || !v || !n)
			continue;
		if (lj->n == lj->cap) {
			size_t cap = lj->cap ? lj->cap * 2 : 64;
			struct load_row *nr = realloc(lj->rows, cap * sizeof(*nr));

			if (!nr)
				break;
			lj->rows = nr;
			lj->cap = cap;
		}
		row = &lj->rows[lj->n];
		row->room = strdup(room);
		row->blob = malloc(n);
		if (!row->room || !row->blob) {
			free(row->room);
			free(row->blob);
			break;
		}
		memcpy(row->blob, v, n);
		row->len = n;
		lj->n++;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		j->rc = sm_db_fail(db, "rooms load");
}

/* One stored room into memory; false when its row is not one we wrote. */
static bool room_restore(struct sm *sm, const struct load_row *row)
{
	struct xtree *t = xtree_parse(row->blob, row->len, NULL, NULL, NULL);
	const struct xtree_node *top = t ? xtree_root(t) : NULL, *s;
	struct muc_room *r;
	const char *flags, *v;
	bool ok = false;

	if (!top || strcmp(top->ns, NS_KV_MUC) || strcmp(top->local, "room") ||
	    !(flags = xtree_attr(top, "flags")))
		goto done;
	r = muc_room_new(sm, row->room, strlen(row->room), NULL);
	if (!r)
		goto done;
	r->locked = false;
	r->cfg.persistent = true;
	r->cfg.public = strchr(flags, 'u') != NULL;
	r->cfg.members_only = strchr(flags, 'm') != NULL;
	r->cfg.moderated = strchr(flags, 'o') != NULL;
	r->cfg.nonanonymous = strchr(flags, 'n') != NULL;
	r->cfg.changesubject = strchr(flags, 's') != NULL;
	r->cfg.allow_invites = strchr(flags, 'i') != NULL;
	r->cfg.max_users = (v = xtree_attr(top, "max")) ? (unsigned)strtoul(v, NULL, 10) : 0;
	if ((v = xtree_attr(top, "secret")) && strlen(v) == 2 * sizeof(r->secret))
		for (size_t i = 0; i < sizeof(r->secret); i++) {
			unsigned x;

			if (sscanf(v + 2 * i, "%2x", &x) == 1)
				r->secret[i] = (uint8_t)x;
		}
	if ((v = xtree_attr(top, "name")))
		r->cfg.name = strdup(v);
	if ((v = xtree_attr(top, "desc")))
		r->cfg.desc = strdup(v);
	if ((v = xtree_attr(top, "password")))
		r->cfg.password = strdup(v);
	if ((s = xtree_child(top, NS_KV_MUC, "subject"))) {
		r->subject = strdup(xtree_text(s));
		if ((v = xtree_attr(s, "nick")) && *v)
			r->subject_nick = strdup(v);
	}
	for (s = xtree_child(top, NS_KV_MUC, "a"); s; s = xtree_next(s, NS_KV_MUC, "a")) {
		const char *j = xtree_attr(s, "j"), *f = xtree_attr(s, "f");

		for (int k = AFF_OUTCAST; j && f && k <= AFF_OWNER; k++)
			if (!strcmp(f, muc_affil_names[k]))
				muc_affil_set(r, j, k);
	}
	ok = true;
done:
	xtree_free(t);
	return ok;
}

static void load_done(struct sm *sm, struct sm_job *j)
{
	struct load_job *lj = (struct load_job *)j;
	size_t mine = 0;

	if (j->rc < 0)
		log_error("persistent rooms not loaded: the storage failed", "rooms=%zu", lj->n);
	for (size_t i = 0; i < lj->n; i++) {
		struct load_row *row = &lj->rows[i];

		if (sm_muc_owns(sm, row->room, strlen(row->room))) {
			if (room_restore(sm, row))
				mine++;
			else
				log_warn("stored room not readable, skipped", "room=\"%s\"", row->room);
		}
		free(row->room);
		free(row->blob);
	}
	if (mine)
		log_info("persistent rooms loaded", "rooms=%zu", mine);
	free(lj->rows);
	free(lj);
	muc_loaded(sm);
}

void muc_load(struct sm *sm)
{
	struct load_job *lj = calloc(1, sizeof(*lj));

	if (!lj) {
		log_error("out of memory loading the persistent rooms", "domain=\"%s\"", sm->muc->domain);
		return;
	}
	sm->muc->loading = true;
	lj->job.run = load_run;
	lj->job.done = load_done;
	sm_store_submit(sm->store, &lj->job);
}

/* ---- muc#owner ------------------------------------------------------------- */

static void destroy(struct sm *sm, struct muc_room *r, const struct xtree_node *d)
{
	const char *alt = xtree_attr(d, "jid");
	const char *reason = xtree_text(xtree_child(d, NS_MUC_OWNER, "reason"));
	struct sm_buf *b = &sm->muc->out;

	for (struct muc_occ *o = r->occ; o; o = o->next) {
		char ofrom[JID_MAX + 1];

		if (!muc_occ_jid(r, o->nick, ofrom, sizeof(ofrom)))
			continue;
		for (unsigned i = 0; i < o->nsess; i++) {
			muc_start(sm->muc, WIRE_KIND_PRESENCE, "unavailable", ofrom, o->sess[i], NULL);
			sm_buf_fmt(b, "><x xmlns='" NS_MUC_USER "'><item affiliation='%s' role='none'/><destroy",
				   muc_affil_names[muc_affil_of(r, o->bare)]);
			sm_buf_attr(b, "jid", alt);
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
	log_info("group-chat room destroyed by its owner", "room=\"%s\"", r->jid);
	muc_forget(sm, r);
	muc_room_free(sm->muc, r);
}

/* The new configuration c is the room's: who must leave, who hears what. */
static void config_apply(struct sm *sm, struct muc_room *r, struct muc_config *c)
{
	struct muc_config old = r->cfg;
	int codes[4], n = 0;
	struct muc_occ *o, *next;

	r->cfg = *c;
	if (!old.persistent && c->persistent)
		muc_save(sm, r);
	else if (old.persistent && !c->persistent)
		submit(sm, r->jid, "", 0);
	else
		muc_save(sm, r);
	/* §10.2.1: 104 (configuration changed), 172/173 (anonymity changed). */
	codes[n++] = 104;
	if (c->nonanonymous != old.nonanonymous)
		codes[n++] = c->nonanonymous ? 172 : 173;
	codes[n] = 0;
	muc_config_free(&old);
	muc_notice(sm, r, codes);
	/* §9.9: members-only now: those without affiliation leave (322). */
	if (c->members_only) {
		for (o = r->occ; o; o = next) {
			next = o->next;
			if (muc_affil_of(r, o->bare) < AFF_MEMBER)
				for (unsigned k = o->nsess; k; k--)   /* o goes with its last session */
					if (!muc_leave(sm, r, o, 0, 322))
						return;
		}
	}
}

void muc_owner_iq(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		  const struct xtree_node *q, const char *type, const char *id, const char *to_addr)
{
	const struct xtree_node *x = xtree_child(q, NS_XDATA, "x");
	const struct xtree_node *d = xtree_child(q, NS_MUC_OWNER, "destroy");
	struct sm_buf *b = &sm->muc->out;
	const char *xt = xtree_attr(x, "type");

	if (muc_affil_of(r, from_bare) != AFF_OWNER) {
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "forbidden");
		return;
	}
	if (!strcmp(type, "get")) {
		muc_start(sm->muc, WIRE_KIND_IQ, "result", to_addr, from, id);
		sm_buf_str(b, ">");
		config_form(r, b);
		sm_buf_str(b, "</iq>");
		muc_send(sm, WIRE_KIND_IQ, "result", to_addr, from, id);
		return;
	}
	if (d) {
		muc_iq_result(sm, to_addr, from, id, NULL);
		destroy(sm, r, d);
		return;
	}
	if (xt && !strcmp(xt, "cancel")) {
		/* §10.1.3: a cancelled first configuration destroys the new room. */
		muc_iq_result(sm, to_addr, from, id, NULL);
		if (r->locked)
			destroy(sm, r, NULL);
		return;
	}
	if (xt && !strcmp(xt, "submit")) {
		struct muc_config c;
		bool was_locked = r->locked;

		if (!config_parse(r, x, &c)) {
			muc_config_free(&c);
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "not-acceptable");
			return;
		}
		r->locked = false;   /* §10.1.2: an instant room, or a configured one */
		muc_iq_result(sm, to_addr, from, id, NULL);
		if (was_locked) {
			struct muc_config old = r->cfg;

			r->cfg = c;
			muc_config_free(&old);
			muc_save(sm, r);
		} else {
			config_apply(sm, r, &c);
		}
		return;
	}
	muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
}

/* ---- muc#admin ------------------------------------------------------------- */

static int role_parse(const char *s)
{
	for (int k = ROLE_NONE; s && k <= ROLE_MODERATOR; k++)
		if (!strcmp(s, muc_role_names[k]))
			return k;
	return -1;
}

static int affil_parse(const char *s)
{
	for (int k = AFF_NONE; s && k <= AFF_OWNER; k++)
		if (!strcmp(s, muc_affil_names[k]))
			return k;
	return -1;
}

static unsigned owners(const struct muc_room *r)
{
	unsigned n = 0;

	for (const struct muc_affil *a = r->affils; a; a = a->next)
		n += a->affil == AFF_OWNER;
	return n;
}

/* May an actor (affiliation aa, role ar) give the item its role or affiliation? */
static const char *allowed(const struct muc_room *r, int aa, int ar, const struct muc_occ *t,
			   const char *tjid, int role, int affil)
{
	if (role >= 0) {
		int ta;

		if (!t)
			return "item-not-found";        /* §8: a nickname not in the room */
		ta = muc_affil_of(r, t->bare);
		if (ar != ROLE_MODERATOR)
			return "forbidden";
		if ((role == ROLE_MODERATOR || t->role == ROLE_MODERATOR) && aa < AFF_ADMIN)
			return "not-allowed";           /* §9.6, §9.7: admins and owners only */
		if (ta >= AFF_ADMIN && role != ROLE_MODERATOR)
			return "not-allowed";           /* §8.2, §8.4: not of an admin or owner */
		return NULL;
	}
	{
		int ta = muc_affil_of(r, tjid);

		if (aa < AFF_ADMIN)
			return "forbidden";
		if ((affil >= AFF_ADMIN || ta >= AFF_ADMIN) && aa != AFF_OWNER)
			return "not-allowed";           /* §10.3 - §10.7: owners only */
		if (ta == AFF_OWNER && affil != AFF_OWNER && owners(r) == 1)
			return "conflict";              /* §10.5: the last owner stays */
	}
	return NULL;
}

/* The occupant's role follows its new affiliation. */
static void after_affil(struct sm *sm, struct muc_room *r, const char *bare, int affil)
{
	struct muc_occ *o = r->occ, *next;

	for (; o; o = next) {
		next = o->next;
		if (strcmp(o->bare, bare))
			continue;
		if (affil == AFF_OUTCAST || (r->cfg.members_only && affil < AFF_MEMBER)) {
			int code = affil == AFF_OUTCAST ? 301 : 321;

			for (unsigned k = o->nsess; k; k--)   /* o goes with its last session */
				if (!muc_leave(sm, r, o, 0, code))
					return;
			continue;
		}
		o->role = (uint8_t)muc_role_for(r, affil);
		muc_broadcast(sm, r, o, NULL, false, NULL);
	}
}

static void admin_list(struct sm *sm, struct muc_room *r, const struct xtree_node *it,
		       const char *from, const char *id, const char *to_addr, int aa, int ar)
{
	int role = role_parse(xtree_attr(it, "role")), affil = affil_parse(xtree_attr(it, "affiliation"));
	struct sm_buf *b = &sm->muc->out;

	if ((role < 0) == (affil < 0)) {
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
		return;
	}
	/* §9.5, §8.5: lists are for admins (affiliations), moderators (roles). */
	if ((affil >= 0 && aa < AFF_ADMIN) || (role >= 0 && ar != ROLE_MODERATOR)) {
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "forbidden");
		return;
	}
	muc_start(sm->muc, WIRE_KIND_IQ, "result", to_addr, from, id);
	sm_buf_str(b, "><query xmlns='" NS_MUC_ADMIN "'>");
	if (affil >= 0) {
		for (const struct muc_affil *a = r->affils; a; a = a->next) {
			if (a->affil != affil)
				continue;
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, a->jid, strlen(a->jid));
			sm_buf_fmt(b, "' affiliation='%s'/>", muc_affil_names[affil]);
		}
	} else {
		for (const struct muc_occ *o = r->occ; o; o = o->next) {
			if (o->role != role)
				continue;
			sm_buf_str(b, "<item nick='");
			sm_buf_esc(b, o->nick, strlen(o->nick));
			sm_buf_str(b, "' jid='");
			sm_buf_esc(b, o->bare, strlen(o->bare));
			sm_buf_fmt(b, "' role='%s' affiliation='%s'/>", muc_role_names[o->role],
				   muc_affil_names[muc_affil_of(r, o->bare)]);
		}
	}
	sm_buf_str(b, "</query></iq>");
	muc_send(sm, WIRE_KIND_IQ, "result", to_addr, from, id);
}

void muc_admin_iq(struct sm *sm, struct muc_room *r, const char *from, const char *from_bare,
		  const struct xtree_node *q, const char *type, const char *id, const char *to_addr)
{
	struct muc_occ *me = muc_occ_by_session(r, from, NULL);
	int aa = muc_affil_of(r, from_bare), ar = me ? me->role : ROLE_NONE;
	const struct xtree_node *it = xtree_child(q, NS_MUC_ADMIN, "item");
	struct {
		char nick[MUC_NICK_MAX + 1];   /* role changes: looked up again when applied */
		char jid[JID_MAX + 1];
		int role, affil;
		const char *reason;            /* <reason/>, in q's tree; NULL: none */
	} *ch;
	char actor[MUC_NICK_MAX + 1] = "";
	unsigned n = 0;
	bool changed = false;

	if (!strcmp(type, "get")) {
		admin_list(sm, r, it, from, id, to_addr, aa, ar);
		return;
	}
	ch = calloc(MUC_MAX_ITEMS, sizeof(*ch));
	if (!ch) {
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "resource-constraint");
		return;
	}
	/* Check every item first: all or nothing. */
	for (; it; it = xtree_next(it, NS_MUC_ADMIN, "item")) {
		const char *nick = xtree_attr(it, "nick"), *jid = xtree_attr(it, "jid"), *why;
		int role = role_parse(xtree_attr(it, "role")), affil = affil_parse(xtree_attr(it, "affiliation"));
		struct jid_view v;
		int len;

		if (n == MUC_MAX_ITEMS || (role < 0) == (affil < 0) || (role >= 0 && !nick) ||
		    (affil >= 0 && !jid)) {
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
			goto out;
		}
		ch[n].role = role;
		ch[n].affil = affil;
		ch[n].reason = xtree_child(it, NS_MUC_ADMIN, "reason")
			       ? xtree_text(xtree_child(it, NS_MUC_ADMIN, "reason")) : NULL;
		if (role >= 0) {
			if (strlen(nick) > MUC_NICK_MAX) {
				muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
				goto out;
			}
			memcpy(ch[n].nick, nick, strlen(nick) + 1);
		} else if (strlen(jid) > JID_MAX || jid_parse(jid, strlen(jid), &v) < 0 ||
			   (len = jid_canon(&v, false, ch[n].jid, sizeof(ch[n].jid))) < 0) {
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "jid-malformed");
			goto out;
		}
		why = allowed(r, aa, ar, role >= 0 ? muc_occ_by_nick(r, nick) : NULL, ch[n].jid, role, affil);
		if (why) {
			muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, why);
			goto out;
		}
		n++;
	}
	if (!n) {
		muc_error(sm, WIRE_KIND_IQ, to_addr, from, id, "bad-request");
		goto out;
	}
	muc_iq_result(sm, to_addr, from, id, NULL);
	if (me)
		snprintf(actor, sizeof(actor), "%s", me->nick);   /* me may leave below */
	for (unsigned i = 0; i < n; i++) {
		/* §8.2, §9.1: who removed them and why, in their unavailable presence */
		sm->muc->why_actor = actor[0] ? actor : NULL;
		sm->muc->why_reason = ch[i].reason && *ch[i].reason ? ch[i].reason : NULL;
		if (ch[i].role >= 0) {
			struct muc_occ *t = muc_occ_by_nick(r, ch[i].nick);

			if (!t)
				continue;   /* left meanwhile (an earlier item of this request) */
			if (ch[i].role == ROLE_NONE) {
				for (unsigned k = t->nsess; k; k--)   /* §8.2: kicked (307); t goes */
					if (!muc_leave(sm, r, t, 0, 307))
						goto out;   /* the room went with its last occupant */
				continue;
			}
			t->role = (uint8_t)ch[i].role;
			muc_broadcast(sm, r, t, NULL, false, NULL);
		} else {
			if (muc_affil_set(r, ch[i].jid, ch[i].affil) < 0)
				continue;
			changed = true;
			after_affil(sm, r, ch[i].jid, ch[i].affil);
			if (!muc_room_find(sm->muc, to_addr, strlen(to_addr)))
				goto out;   /* it went with its last occupant */
		}
	}
	if (changed)
		muc_save(sm, r);
out:
	sm->muc->why_actor = sm->muc->why_reason = NULL;
	free(ch);
}
