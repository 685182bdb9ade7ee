/*
 * sm_user — account records in memory: loading them from storage without
 * blocking the routing thread, and what waits while they load.
 *
 * A record is created on first need and read by one storage job (the
 * account's existence, roster version, roster rows, blocklist).  Until that
 * job completes the record is LOADING: binds for the account wait on
 * user->binding, stanzas addressed to it are parked (a copy of the frame and
 * the sender's full JID) and replayed in arrival order through
 * sm_route_replay() once it is READY.  Because storage jobs run in
 * submission order, the load sees every write submitted before it; every
 * later change is made to the record first and written behind.
 *
 * A record lives while it has bound sessions, binding sessions, parked
 * stanzas or other holders (refs); sm_user_release() frees it when none is
 * left.  Bounds: SM_MAX_PARKED stanzas per record, SM_MAX_ROSTER rows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sm/sm_int.h"
#include "sm/store.h"

/* ---- the roster in memory ------------------------------------------------ */

struct sm_roster_item *sm_roster_find(struct sm_user *u, const char *contact)
{
	for (size_t i = 0; i < u->nroster; i++)
		if (strcmp(u->roster[i].contact, contact) == 0)
			return &u->roster[i];
	return NULL;
}

static void item_clear(struct sm_roster_item *it)
{
	free(it->contact);
	free(it->name);
	free(it->groups);
	free(it->pending_in);
	memset(it, 0, sizeof(*it));
}

struct sm_roster_item *sm_roster_add(struct sm_user *u, const char *contact)
{
	struct sm_roster_item *it = sm_roster_find(u, contact);

	if (it)
		return it;
	if (u->nroster >= SM_MAX_ROSTER)
		return NULL;
	if (u->nroster == u->roster_cap) {
		size_t cap = u->roster_cap ? u->roster_cap * 2 : 16;
		struct sm_roster_item *r = realloc(u->roster, cap * sizeof(*r));

		if (!r)
			return NULL;
		u->roster = r;
		u->roster_cap = cap;
	}
	it = &u->roster[u->nroster];
	memset(it, 0, sizeof(*it));
	it->contact = strdup(contact);
	it->name = strdup("");
	it->groups = strdup("");
	if (!it->contact || !it->name || !it->groups) {
		item_clear(it);
		return NULL;
	}
	u->nroster++;
	return it;
}

void sm_roster_remove(struct sm_user *u, struct sm_roster_item *it)
{
	size_t i = (size_t)(it - u->roster);

	item_clear(it);
	u->roster[i] = u->roster[--u->nroster];
}

struct sm_roster_item *sm_roster_set(struct sm_user *u, const char *contact, const char *name,
				     int sub)
{
	struct sm_roster_item *it;
	char *n = strdup(name ? name : "");

	if (!n)
		return NULL;
	it = sm_roster_add(u, contact);
	if (!it) {
		free(n);
		return NULL;
	}
	free(it->name);
	it->name = n;
	it->sub = sub;
	it->listed = true;
	return it;
}

/* ---- records ---------------------------------------------------------------- */

struct sm_user *sm_user_find(struct sm *sm, const char *bare, size_t n)
{
	uint64_t h = sm_tab_hash(&sm->users, bare, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&sm->users, h); e; e = e->next) {
		struct sm_user *u = sm_container_of(e, struct sm_user, node);

		if (e->hash == h && u->bare_len == n && memcmp(u->bare, bare, n) == 0)
			return u;
	}
	return NULL;
}

static void user_free(struct sm *sm, struct sm_user *u)
{
	struct sm_parked *p, *next;

	sm_tab_remove(&sm->users, &u->node);
	for (size_t i = 0; i < u->nroster; i++)
		item_clear(&u->roster[i]);
	free(u->roster);
	for (size_t i = 0; i < u->nblocked; i++)
		free(u->blocked[i]);
	free(u->blocked);
	free(u->inflight);
	for (p = u->parked; p; p = next) {
		next = p->next;
		sm_obl_release(p->obl);
		free(p);
	}
	free(u->bare);
	free(u);
}

void sm_user_release(struct sm *sm, struct sm_user *u)
{
	if (u->nsessions || u->binding || u->parked || u->refs || u->state == SM_USER_LOADING)
		return;
	user_free(sm, u);
}

/* ---- loading ------------------------------------------------------------------ */

struct load_job {
	struct sm_job job;
	char *bare;
	bool exists;
	uint64_t roster_ver;
	struct sm_roster_item *rows;
	size_t nrows, cap;
	char **blocked;
	size_t nblocked, bcap;
	int mam_default;        /* XEP-0313 prefs default; -1: none set */
};

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static char *col_dup(sm_stmt *q, int col)
{
	const char *t = sm_db_col_text(q, col);

	return strdup(t ? t : "");
}

static void load_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_user[] = "SELECT roster_ver FROM users WHERE jid = ?1";
	static const char sql_roster[] =
		"SELECT contact, name, subscription, ask, pending_in, preapproved, groups, ver,"
		" listed"
		" FROM roster WHERE user = ?1 ORDER BY contact";
	static const char sql_block[] = "SELECT jid FROM blocklist WHERE user = ?1 ORDER BY jid";
	static const char sql_mam[] =
		"SELECT value FROM kv WHERE user = ?1 AND ns = 'urn:xmpp:mam:2' AND key = 'default'";
	struct load_job *lj = (struct load_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql_user);
	int rc;

	if (!q)
		goto fail;
	sm_db_bind_text(q, 1, lj->bare);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		lj->exists = true;
		lj->roster_ver = (uint64_t)sm_db_col_int64(q, 0);
	} else if (rc != SM_DONE) {
		sm_db_done(q);
		goto fail;
	}
	sm_db_done(q);
	if (!lj->exists)
		return;
	q = sm_db_stmt(db, sql_roster);
	if (!q)
		goto fail;
	sm_db_bind_text(q, 1, lj->bare);
	while ((rc = sm_db_step(q)) == SM_ROW && lj->nrows < SM_MAX_ROSTER) {
		struct sm_roster_item *it;
		const char *subs = sm_db_col_text(q, 2);
		int sub = subs ? sm_sub_parse(subs) : -1;
		const void *pin = sm_db_col_blob(q, 4);
		size_t pin_len = sm_db_col_bytes(q, 4);

		if (grow((void **)&lj->rows, &lj->cap, lj->nrows, sizeof(*it)) < 0)
			goto nomem;
		it = &lj->rows[lj->nrows];
		memset(it, 0, sizeof(*it));
		it->contact = col_dup(q, 0);
		it->name = col_dup(q, 1);
		it->groups = col_dup(q, 6);
		it->sub = sub < 0 ? SM_SUB_NONE : sub;
		it->ask = sm_db_col_int64(q, 3) != 0;
		it->preapproved = sm_db_col_int64(q, 5) != 0;
		it->ver = (uint64_t)sm_db_col_int64(q, 7);
		it->listed = sm_db_col_int64(q, 8) != 0;
		if (pin && pin_len > 0) {
			it->pending_in = sm_memdup_z(pin, (size_t)pin_len);
			it->pending_in_len = (size_t)pin_len;
		}
		lj->nrows++;
		if (!it->contact || !it->name || !it->groups || (pin_len > 0 && !it->pending_in))
			goto nomem;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		goto fail;
	q = sm_db_stmt(db, sql_block);
	if (!q)
		goto fail;
	sm_db_bind_text(q, 1, lj->bare);
	while ((rc = sm_db_step(q)) == SM_ROW) {
		char *b;

		if (grow((void **)&lj->blocked, &lj->bcap, lj->nblocked, sizeof(char *)) < 0)
			goto nomem;
		b = col_dup(q, 0);
		if (!b)
			goto nomem;
		lj->blocked[lj->nblocked++] = b;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		goto fail;
	q = sm_db_stmt(db, sql_mam);
	if (!q)
		goto fail;
	sm_db_bind_text(q, 1, lj->bare);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		const char *v = sm_db_col_text(q, 0);

		lj->mam_default = !v ? -1 : !strcmp(v, "always") ? SM_MAM_ALWAYS
				  : !strcmp(v, "roster") ? SM_MAM_ROSTER : !strcmp(v, "never") ? SM_MAM_NEVER
				  : -1;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		goto fail;
	return;
nomem:
	/* A record with rows missing would be taken for the truth (a blocklist
	 * with holes lets blocked JIDs through): fail the load instead. */
	sm_db_done(q);
	j->rc = -ENOMEM;
	return;
fail:
	j->rc = sm_db_fail(db, "user load");
}

static void load_job_free(struct load_job *lj)
{
	for (size_t i = 0; i < lj->nrows; i++)
		item_clear(&lj->rows[i]);
	free(lj->rows);
	for (size_t i = 0; i < lj->nblocked; i++)
		free(lj->blocked[i]);
	free(lj->blocked);
	free(lj->bare);
	free(lj);
}

/* Move the rows read into u.  -ENOMEM when a row came back incomplete. */
static int load_apply(struct sm_user *u, struct load_job *lj)
{
	for (size_t i = 0; i < lj->nrows; i++) {
		struct sm_roster_item *it = &lj->rows[i];

		if (!it->contact || !it->name || !it->groups ||
		    (it->pending_in_len && !it->pending_in))
			return -ENOMEM;
	}
	u->exists = lj->exists;
	u->roster_ver = lj->roster_ver;
	u->roster = lj->rows;
	u->nroster = u->roster_cap = lj->nrows;
	lj->rows = NULL;
	lj->nrows = 0;
	u->blocked = lj->blocked;
	u->nblocked = u->blocked_cap = lj->nblocked;
	u->mam_default = (int8_t)lj->mam_default;
	lj->blocked = NULL;
	lj->nblocked = 0;
	return 0;
}

static void parked_refuse(struct sm *sm, const char *from, const struct wire_msg *m,
			  const char *cond);

struct parked_replay {
	const struct sm_parked *p;
	bool ok;
};

static void parked_replay(struct sm *sm, void *arg)
{
	const struct parked_replay *r = arg;
	struct wire_msg m;

	if (wire_decode(r->p->frame, r->p->frame_len, &m) <= 0)
		return;
	if (r->ok)
		sm_route_replay(sm, r->p->from, r->p->from_len, &m);
	else
		parked_refuse(sm, r->p->from, &m, "internal-server-error");
}

static void load_done(struct sm *sm, struct sm_job *j)
{
	struct load_job *lj = (struct load_job *)j;
	struct sm_user *u = sm_user_find(sm, lj->bare, strlen(lj->bare));
	struct sm_session *s, *bnext;
	struct sm_parked *p, *pnext;
	bool ok;

	if (!u || u->state != SM_USER_LOADING) {
		load_job_free(lj);     /* cannot happen: a loading record is never freed */
		return;
	}
	ok = j->rc == 0 && load_apply(u, lj) == 0;
	load_job_free(lj);
	if (!ok)
		log_warn("account record not loaded", "jid=\"%s\" waiting_binds=%s parked=%u",
			 u->bare, u->binding ? "yes" : "no", u->nparked);
	u->state = SM_USER_READY;
	/* Binds first: a session bound now sees the stanzas parked for it. */
	s = u->binding;
	u->binding = NULL;
	for (; s; s = bnext) {
		bnext = s->bnext;
		s->bnext = NULL;
		sm_bind_finish(sm, s, ok ? u : NULL);
	}
	p = u->parked;
	u->parked = u->parked_tail = NULL;
	u->nparked = 0;
	u->refs++;      /* replays may end sessions of u: keep it until they are done */
	for (; p; p = pnext) {
		struct parked_replay r = { .p = p, .ok = ok };

		pnext = p->next;
		sm_obl_within(sm, p->obl, parked_replay, &r);   /* its frame is settled after */
		sm_obl_release(p->obl);
		free(p);
	}
	u->refs--;
	sm_user_release(sm, u);
}

/* A stanza that cannot wait for its target's record: the sender is told
 * (messages and iq requests; presence and errors are not answered). */
static void parked_refuse(struct sm *sm, const char *from, const struct wire_msg *m,
			  const char *cond)
{
	const struct wire_str *ty = &m->u.stanza.type;
	char id[256], to[JID_MAX + 1];

	if (m->u.stanza.kind == WIRE_KIND_PRESENCE ||
	    (ty->len == 5 && !memcmp(ty->p, "error", 5)) ||
	    (ty->len == 6 && !memcmp(ty->p, "result", 6)) ||
	    m->u.stanza.id.len >= sizeof(id) || m->u.stanza.to.len >= sizeof(to))
		return;
	memcpy(id, m->u.stanza.id.p, m->u.stanza.id.len);
	id[m->u.stanza.id.len] = '\0';
	memcpy(to, m->u.stanza.to.p, m->u.stanza.to.len);
	to[m->u.stanza.to.len] = '\0';
	sm_route_bounce(sm, from, m->u.stanza.kind, id, to, cond);
}

/* A new LOADING record for bare, its load job submitted.  NULL: no memory. */
static struct sm_user *user_load(struct sm *sm, const char *bare, size_t n)
{
	struct sm_user *u = calloc(1, sizeof(*u));
	struct load_job *lj = calloc(1, sizeof(*lj));

	if (!u || !lj)
		goto fail;
	u->bare = sm_memdup_z(bare, n);
	lj->bare = sm_memdup_z(bare, n);
	if (!u->bare || !lj->bare)
		goto fail;
	u->bare_len = n;
	u->state = SM_USER_LOADING;
	u->mam_default = -1;
	lj->mam_default = -1;
	sm_tab_insert(&sm->users, &u->node, sm_tab_hash(&sm->users, bare, n));
	lj->job.run = load_run;
	lj->job.done = load_done;
	sm_store_submit(sm->store, &lj->job);
	return u;
fail:
	if (u)
		free(u->bare);
	free(u);
	if (lj)
		free(lj->bare);
	free(lj);
	return NULL;
}

struct sm_user *sm_user_need(struct sm *sm, const char *bare, size_t n, const char *from,
			     size_t from_len, const struct wire_msg *m)
{
	struct sm_user *u = sm_user_find(sm, bare, n);
	struct sm_parked *p;
	size_t flen;

	if (u && u->state == SM_USER_READY)
		return u;
	if (!u) {
		u = user_load(sm, bare, n);
		if (!u) {
			log_warn("out of memory loading an account", "jid=\"%.*s\"", (int)n, bare);
			goto refuse;
		}
	}
	if (u->nparked >= SM_MAX_PARKED) {
		log_warn("too many stanzas waiting for an account to load, refused", "jid=\"%s\"",
			 u->bare);
		goto refuse;
	}
	flen = wire_size(m);
	p = malloc(sizeof(*p) + from_len + 1 + flen);
	if (!p)
		goto refuse;
	p->next = NULL;
	p->from = (char *)p->data;
	memcpy(p->from, from, from_len);
	p->from[from_len] = '\0';
	p->from_len = from_len;
	p->frame = p->data + from_len + 1;
	p->frame_len = wire_encode(m, p->frame, flen);
	if (p->frame_len == 0) {
		free(p);
		goto refuse;
	}
	p->obl = sm_obl_hold(sm);   /* its frame is not settled before the replay */
	if (u->parked_tail)
		u->parked_tail->next = p;
	else
		u->parked = p;
	u->parked_tail = p;
	u->nparked++;
	return NULL;
refuse:
	if (from_len <= JID_MAX) {
		char f[JID_MAX + 1];

		memcpy(f, from, from_len);
		f[from_len] = '\0';
		parked_refuse(sm, f, m, "resource-constraint");
	}
	return NULL;
}

int sm_user_bind(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = sm_user_find(sm, s->bare, s->bare_len);

	if (u && u->state == SM_USER_READY) {
		sm_bind_finish(sm, s, u);
		return 0;
	}
	if (!u) {
		u = user_load(sm, s->bare, s->bare_len);
		if (!u)
			return -ENOMEM;
	}
	s->state = SM_SESS_BINDING;
	s->bnext = u->binding;
	u->binding = s;
	return 0;
}

void sm_user_unbind_wait(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = sm_user_find(sm, s->bare, s->bare_len);

	if (!u)
		return;
	for (struct sm_session **pp = &u->binding; *pp; pp = &(*pp)->bnext) {
		if (*pp == s) {
			*pp = s->bnext;
			s->bnext = NULL;
			break;
		}
	}
}
