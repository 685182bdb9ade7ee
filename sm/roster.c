/*
 * sm_roster — the roster of RFC 6121 §2: jabber:iq:roster get, set and
 * remove from the account's own resources, roster versions (§2.6), roster
 * pushes to interested resources (§2.1.6), and the rows written behind.
 *
 * The in-memory record (sm/user.c) is the truth while it exists; every
 * change is made there, stamped with the next roster version (the per
 * account counter users.roster_ver, decimal on the wire) and handed to the
 * storage thread as a write-behind job carrying a copy of the whole row, so
 * jobs need no access to sm memory.  A row neither listed nor carrying a
 * pending-in request (sub.h) is deleted.
 *
 * Versions: a get with ver equal to the current version is answered with an
 * empty result; any other ver, or none, gets the whole roster with the
 * current ver (§2.1.3 example, §2.6.3), and every push carries the version it
 * makes (§2.6.3: "MUST include the updated roster version with each roster
 * push"); clients that do not version ignore the attribute.
 *
 * Roster queries are read with parser/xtree (the edge has already checked
 * the stanza; it is parsed again in the c2s namespace context).  Bounds: one item, SM_ROSTER_NAME_MAX bytes of name,
 * SM_ROSTER_GROUPS_MAX groups of SM_ROSTER_GROUP_MAX bytes.  Subscription
 * changes are the business of sm/presence.c (sm_sub_apply()); removal (§2.5)
 * sends the contact what the RFC says through sm_presence_sub_send().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xtree.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_ROSTER "jabber:iq:roster"

/* ---- state <-> row ------------------------------------------------------ */

struct sm_sub_state sm_roster_state(const struct sm_roster_item *it)
{
	struct sm_sub_state st = { 0 };

	if (!it)
		return st;
	st.sub = (uint8_t)it->sub;
	st.pending_out = it->ask;
	st.pending_in = it->pending_in != NULL;
	st.preapproved = it->preapproved;
	st.listed = it->listed;
	return st;
}

void sm_roster_state_set(struct sm_roster_item *it, const struct sm_sub_state *st)
{
	it->sub = st->sub;
	it->ask = st->pending_out;
	it->preapproved = st->preapproved;
	it->listed = st->listed;
	/* pending_in: the request bytes are the caller's (kept or dropped). */
	if (!st->pending_in) {
		free(it->pending_in);
		it->pending_in = NULL;
		it->pending_in_len = 0;
	}
}

/* ---- writing behind ----------------------------------------------------- */

struct row_job {
	struct sm_job job;
	bool del;
	int sub;
	bool ask, preapproved, listed;
	uint64_t ver;
	size_t pending_in_len;
	char *user, *contact, *name, *groups, *pending_in;   /* all in data */
	char data[];
};

static void row_run(struct sm_db *db, struct sm_job *j)
{
	/* Each change counts once here and once in memory.  An admin change
	 * (sm/admin.c) counts in the table first and in memory at its
	 * completion, so the table may run ahead meanwhile: never step back,
	 * so a version a client was given never names another roster. */
	static const char sql_ver[] =
		"UPDATE users SET roster_ver = CASE WHEN roster_ver + 1 > ?2 THEN roster_ver + 1"
		" ELSE ?2 END WHERE jid = ?1";
	static const char sql_del[] = "DELETE FROM roster WHERE user = ?1 AND contact = ?2";
	static const char sql_put[] =
		"INSERT INTO roster(user, contact, name, subscription, ask, pending_in,"
		" preapproved, groups, ver, listed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT(user, contact) DO UPDATE SET name = excluded.name,"
		" subscription = excluded.subscription, ask = excluded.ask,"
		" pending_in = excluded.pending_in, preapproved = excluded.preapproved,"
		" groups = excluded.groups, ver = excluded.ver, listed = excluded.listed";
	struct row_job *rj = (struct row_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql_ver);

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, rj->user);
	sm_db_bind_int64(q, 2, rj->ver);
	if (sm_db_exec(db, q, "roster version") < 0) {
		j->rc = -EIO;
		return;
	}
	q = sm_db_stmt(db, rj->del ? sql_del : sql_put);
	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, rj->user);
	sm_db_bind_text(q, 2, rj->contact);
	if (!rj->del) {
		sm_db_bind_text(q, 3, rj->name);
		sm_db_bind_text(q, 4, sm_sub_str(rj->sub));
		sm_db_bind_int64(q, 5, rj->ask);
		if (rj->pending_in)
			sm_db_bind_blob(q, 6, rj->pending_in, rj->pending_in_len);
		else
			sm_db_bind_null(q, 6);
		sm_db_bind_int64(q, 7, rj->preapproved);
		sm_db_bind_text(q, 8, rj->groups);
		sm_db_bind_int64(q, 9, rj->ver);
		sm_db_bind_int64(q, 10, rj->listed);
	}
	j->rc = sm_db_exec(db, q, rj->del ? "roster delete" : "roster write");
}

/* Copy s (n bytes, NUL added) to *at, return where it starts. */
static char *pack(char **at, const char *s, size_t n)
{
	char *p = *at;

	memcpy(p, s, n);
	p[n] = '\0';
	*at += n + 1;
	return p;
}

static void row_write(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it, bool del)
{
	size_t lu = u->bare_len, lc = strlen(it->contact);
	size_t ln = del ? 0 : strlen(it->name), lg = del ? 0 : strlen(it->groups);
	size_t lp = del || !it->pending_in ? 0 : it->pending_in_len;
	struct row_job *rj = calloc(1, sizeof(*rj) + lu + lc + ln + lg + lp + 5);
	char *at;

	if (!rj) {
		/* The record stays right; the disk catches up at the next change. */
		log_warn("out of memory writing a roster row", "user=\"%s\" contact=\"%s\"",
			 u->bare, it->contact);
		return;
	}
	at = rj->data;
	rj->user = pack(&at, u->bare, lu);
	rj->contact = pack(&at, it->contact, lc);
	rj->name = pack(&at, del ? "" : it->name, ln);
	rj->groups = pack(&at, del ? "" : it->groups, lg);
	if (lp) {
		rj->pending_in = pack(&at, it->pending_in, lp);
		rj->pending_in_len = lp;
	}
	rj->del = del;
	rj->sub = it->sub;
	rj->ask = it->ask;
	rj->preapproved = it->preapproved;
	rj->listed = it->listed;
	rj->ver = u->roster_ver;
	rj->job.run = row_run;
	rj->job.done = NULL;
	sm_store_submit(sm->store, &rj->job);
}

void sm_roster_drop(struct sm *sm, struct sm_user *u, struct sm_roster_item *it)
{
	u->roster_ver++;
	row_write(sm, u, it, true);
	sm_roster_remove(u, it);
}

void sm_roster_save(struct sm *sm, struct sm_user *u, struct sm_roster_item *it)
{
	if (!it->listed && !it->pending_in) {
		sm_roster_drop(sm, u, it);
		return;
	}
	it->ver = ++u->roster_ver;
	row_write(sm, u, it, false);
}

/* ---- XML ---------------------------------------------------------------- */

static void item_xml(struct sm_buf *b, const struct sm_roster_item *it)
{
	struct sm_sub_state st = sm_roster_state(it);
	const char *ask = sm_sub_ask(&st);
	const char *g = it->groups;

	sm_buf_str(b, "<item jid='");
	sm_buf_esc(b, it->contact, strlen(it->contact));
	sm_buf_str(b, "'");
	if (it->name && it->name[0]) {
		sm_buf_str(b, " name='");
		sm_buf_esc(b, it->name, strlen(it->name));
		sm_buf_str(b, "'");
	}
	sm_buf_fmt(b, " subscription='%s'", sm_sub_str(it->sub));
	if (ask)
		sm_buf_fmt(b, " ask='%s'", ask);
	if (it->preapproved)
		sm_buf_str(b, " approved='true'");
	if (!g || !g[0]) {
		sm_buf_str(b, "/>");
		return;
	}
	sm_buf_str(b, ">");
	while (*g) {
		const char *nl = strchr(g, '\n');
		size_t n = nl ? (size_t)(nl - g) : strlen(g);

		sm_buf_str(b, "<group>");
		sm_buf_esc(b, g, n);
		sm_buf_str(b, "</group>");
		g += n + (nl ? 1 : 0);
	}
	sm_buf_str(b, "</item>");
}

static void ver_attr(struct sm_buf *b, const struct sm_user *u)
{
	sm_buf_fmt(b, " ver='%" PRIu64 "'", u->roster_ver);
}

void sm_roster_push(struct sm *sm, struct sm_user *u, const struct sm_roster_item *it,
		    bool removed)
{
	struct sm_buf *b = &sm->scratch;

	if (!removed && !it->listed)
		return;     /* a pending-in request alone is never shown (sub.h) */
	for (struct sm_session *t = u->shead; t; t = t->unext) {
		char id[32];

		if (!t->roster_requested)
			continue;
		snprintf(id, sizeof(id), "push%llu", (unsigned long long)++sm->push_seq);
		sm_buf_clear(b);
		sm_buf_fmt(b, "<iq type='set' id='%s' to='", id);
		sm_buf_esc(b, t->full, t->full_len);
		sm_buf_str(b, "'><query xmlns='" NS_ROSTER "'");
		ver_attr(b, u);
		sm_buf_str(b, ">");
		if (removed) {
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, it->contact, strlen(it->contact));
			sm_buf_str(b, "' subscription='remove'/>");
		} else {
			item_xml(b, it);
		}
		sm_buf_str(b, "</query></iq>");
		if (b->err)
			return;
		sm_deliver(sm, t, WIRE_KIND_IQ, sm_ws("set"), sm_ws(t->full), sm_ws(""), sm_ws(id),
			   sm_ws(NS_ROSTER), sm_buf_data(b), sm_buf_used(b));
	}
}

/* ---- parsing a roster query ---------------------------------------------- */

struct rq {
	bool in_query;          /* the iq's child is <query xmlns='jabber:iq:roster'/> */
	bool has_ver;
	char ver[32];
	unsigned items;
	bool has_jid, remove;
	char jid[JID_MAX + 1];
	bool jid_long;
	char *name;             /* malloc'd */
	bool name_long;
	struct sm_buf groups;   /* '\n'-joined */
	const char *cond;       /* first error found, or NULL */
};

/* The first <item/> of a set: its attributes and groups (§2.3.3 checks). */
static void rq_item(struct rq *r, const struct xtree_node *it)
{
	const char *v = xtree_attr(it, "jid");
	unsigned ngroups = 0;

	if (v) {
		r->has_jid = true;
		if (strlen(v) > JID_MAX)
			r->jid_long = true;
		else
			strcpy(r->jid, v);
	}
	v = xtree_attr(it, "name");
	if (v) {
		if (strlen(v) > SM_ROSTER_NAME_MAX)
			r->name_long = true;
		else
			r->name = strdup(v);
	}
	/* §2.1.2.5: of 'subscription' only "remove" means anything in a set;
	 * 'ask' and 'approved' from a client are ignored too. */
	v = xtree_attr(it, "subscription");
	r->remove = v && strcmp(v, "remove") == 0;
	for (const struct xtree_node *g = xtree_child(it, NS_ROSTER, "group"); g;
	     g = xtree_next(g, NS_ROSTER, "group")) {
		const char *p = (const char *)sm_buf_data(&r->groups);
		size_t have = sm_buf_used(&r->groups), n = g->text_len;

		/* §2.3.3: an empty or too long group is not-acceptable (a newline
		 * is our separator: refused the same way), and so are too many. */
		if (n == 0 || n > SM_ROSTER_GROUP_MAX || memchr(g->text, '\n', n) ||
		    ++ngroups > SM_ROSTER_GROUPS_MAX) {
			if (!r->cond)
				r->cond = "not-acceptable";
			continue;
		}
		/* §2.3.3: duplicate groups: bad-request. */
		for (size_t i = 0; i < have;) {
			const char *nl = memchr(p + i, '\n', have - i);
			size_t len = nl ? (size_t)(nl - (p + i)) : have - i;

			if (len == n && memcmp(p + i, g->text, n) == 0 && !r->cond)
				r->cond = "bad-request";
			i += len + 1;
		}
		if (have)
			sm_buf_add(&r->groups, "\n", 1);
		sm_buf_add(&r->groups, g->text, n);
	}
}

/* Parse raw (one iq stanza, as the edge forwarded it, in the c2s context).
 * -1: not parsable. */
static int rq_parse(const void *raw, size_t len, struct rq *r)
{
	struct xtree *t;
	const struct xtree_node *q, *it;
	const char *v;

	memset(r, 0, sizeof(*r));
	r->groups.max = SM_ROSTER_GROUPS_MAX * (SM_ROSTER_GROUP_MAX + 1);
	t = xtree_parse(raw, len, XTREE_CTX_C2S, NULL, NULL);
	if (!t)
		return -1;
	q = xtree_child(xtree_root(t), NS_ROSTER, "query");
	if (q) {
		r->in_query = true;
		v = xtree_attr(q, "ver");
		if (v) {
			r->has_ver = true;
			snprintf(r->ver, sizeof(r->ver), "%s", v);
		}
		for (it = xtree_child(q, NS_ROSTER, "item"); it; it = xtree_next(it, NS_ROSTER, "item"))
			r->items++;
		if (r->items == 1)
			rq_item(r, xtree_child(q, NS_ROSTER, "item"));
	}
	xtree_free(t);
	return 0;
}

static void rq_free(struct rq *r)
{
	free(r->name);
	sm_buf_free(&r->groups);
}

/* ---- the iq -------------------------------------------------------------- */

static void result_start(struct sm_buf *b, const struct wire_msg *m, const struct sm_session *s)
{
	sm_buf_clear(b);
	sm_buf_str(b, "<iq type='result'");
	if (m->u.stanza.id.len) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, (const char *)m->u.stanza.id.p, m->u.stanza.id.len);
		sm_buf_str(b, "'");
	}
	if (m->u.stanza.to.len) {
		sm_buf_str(b, " from='");
		sm_buf_esc(b, (const char *)m->u.stanza.to.p, m->u.stanza.to.len);
		sm_buf_str(b, "'");
	}
	sm_buf_str(b, " to='");
	sm_buf_esc(b, s->full, s->full_len);
	sm_buf_str(b, "'");
}

static void result_send(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
			const char *ns)
{
	if (sm->scratch.err) {
		log_warn("roster result too large to build", "jid=\"%s\"", s->full);
		sm_route_error(sm, s, m, "resource-constraint");
		return;
	}
	sm_deliver(sm, s, WIRE_KIND_IQ, sm_ws("result"), sm_ws(s->full), m->u.stanza.to,
		   m->u.stanza.id, sm_ws(ns), sm_buf_data(&sm->scratch),
		   sm_buf_used(&sm->scratch));
}

/* §2.1.3, §2.6.3 */
static void roster_get(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		       const struct rq *r)
{
	struct sm_user *u = s->user;
	struct sm_buf *b = &sm->scratch;
	char cur[24];

	s->roster_requested = true;
	snprintf(cur, sizeof(cur), "%" PRIu64, u->roster_ver);
	result_start(b, m, s);
	if (r->has_ver && strcmp(r->ver, cur) == 0) {
		/* Up to date: an empty result; later changes come as pushes. */
		sm_buf_str(b, "/>");
		result_send(sm, s, m, "");
		return;
	}
	sm_buf_str(b, "><query xmlns='" NS_ROSTER "'");
	ver_attr(b, u);
	sm_buf_str(b, ">");
	for (size_t i = 0; i < u->nroster; i++)
		if (u->roster[i].listed)
			item_xml(b, &u->roster[i]);
	sm_buf_str(b, "</query></iq>");
	result_send(sm, s, m, NS_ROSTER);
}

/* §2.5: remove the item, telling the contact what ends with it. */
static void roster_remove(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
			  struct sm_roster_item *it)
{
	struct sm_user *u = s->user;
	char contact[JID_MAX + 1];
	bool unsub, unsubd;

	snprintf(contact, sizeof(contact), "%s", it->contact);
	/* §2.5.2: "unsubscribe" if the user is subscribed to the contact (or
	 * asked to be), "unsubscribed" if the contact is subscribed to the user
	 * (or asked to be); the contact's available presence goes first. */
	unsub = (it->sub & SM_SUB_TO) || it->ask;
	unsubd = (it->sub & SM_SUB_FROM) || it->pending_in;
	if (it->sub & SM_SUB_FROM)
		sm_presence_unavailable_to(sm, u, contact);
	sm_roster_drop(sm, u, it);
	{
		struct sm_roster_item gone = { .contact = contact };

		sm_roster_push(sm, u, &gone, true);     /* with the new version */
	}
	result_start(&sm->scratch, m, s);
	sm_buf_str(&sm->scratch, "/>");
	result_send(sm, s, m, "");
	if (unsub)
		sm_presence_sub_send(sm, u, contact, "unsubscribe");
	if (unsubd)
		sm_presence_sub_send(sm, u, contact, "unsubscribed");
}

/* §2.3, §2.4, §2.5 */
static void roster_set(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		       struct rq *r)
{
	struct sm_user *u = s->user;
	struct sm_roster_item *it;
	struct jid_view v;
	char contact[JID_MAX + 1];
	char *name, *groups;
	int n;

	if (r->items != 1 || !r->has_jid) {
		sm_route_error(sm, s, m, "bad-request");     /* §2.3.3, §2.1.5 */
		return;
	}
	if (r->cond) {
		sm_route_error(sm, s, m, r->cond);
		return;
	}
	if (r->name_long) {
		sm_route_error(sm, s, m, "not-acceptable");
		return;
	}
	if (r->jid_long || jid_parse(r->jid, strlen(r->jid), &v) < 0 ||
	    (n = jid_canon(&v, true, contact, sizeof(contact))) < 0) {
		sm_route_error(sm, s, m, "jid-malformed");
		return;
	}
	it = sm_roster_find(u, contact);
	if (r->remove) {
		if (!it || !it->listed)
			sm_route_error(sm, s, m, "item-not-found");   /* §2.5.3 */
		else
			roster_remove(sm, s, m, it);
		return;
	}
	name = strdup(r->name ? r->name : "");
	groups = malloc(sm_buf_used(&r->groups) + 1);
	if (!name || !groups || r->groups.err) {
		free(name);
		free(groups);
		sm_route_error(sm, s, m, "resource-constraint");
		return;
	}
	if (sm_buf_used(&r->groups))    /* an empty buffer has no memory yet */
		memcpy(groups, sm_buf_data(&r->groups), sm_buf_used(&r->groups));
	groups[sm_buf_used(&r->groups)] = '\0';
	if (!it)
		it = sm_roster_add(u, contact);
	if (!it) {
		free(name);
		free(groups);
		sm_route_error(sm, s, m, "resource-constraint");    /* SM_MAX_ROSTER */
		return;
	}
	/* §2.4: an update carries the whole item: name and groups are
	 * replaced (absent = none); the subscription state is untouched. */
	free(it->name);
	it->name = name;
	free(it->groups);
	it->groups = groups;
	it->listed = true;
	sm_roster_save(sm, u, it);
	result_start(&sm->scratch, m, s);
	sm_buf_str(&sm->scratch, "/>");
	result_send(sm, s, m, "");
	it = sm_roster_find(u, contact);
	if (it)
		sm_roster_push(sm, u, it, false);
}

void sm_roster_iq(struct sm *sm, struct sm_session *s, const struct wire_msg *m, bool get)
{
	struct rq r;

	if (rq_parse(m->u.stanza.raw.p, m->u.stanza.raw.len, &r) < 0 || !r.in_query) {
		rq_free(&r);
		sm_route_error(sm, s, m, "bad-request");
		return;
	}
	if (get) {
		if (r.items) {
			sm_route_error(sm, s, m, "bad-request");   /* §2.1.3: a get is empty */
		} else {
			roster_get(sm, s, m, &r);
		}
	} else {
		roster_set(sm, s, m, &r);
	}
	rq_free(&r);
}
