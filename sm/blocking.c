/*
 * sm_blocking — XEP-0191 Blocking Command: the blocklist iq service and its
 * enforcement.
 *
 * The blocklist of an account is u->blocked (canonical JIDs, loaded with the
 * record by sm/user.c).  Changes are made there first, answered, pushed to
 * the user's resources that asked for the blocklist (§3.3-§3.5), and written
 * behind to table blocklist by storage jobs (in order, so a later load sees
 * them).  At most SM_MAX_BLOCKLIST items per account.
 *
 * Enforcement (§3.3), by sm_blocking_check() at routing and
 * sm_blocking_between() where presence is broadcast:
 *   from a blocked entity to the user: presence dropped silently; message
 *     and iq get/set answered with service-unavailable (the user looks
 *     offline); iq result/error dropped; a groupchat message (a room or
 *     one of its occupants blocked) dropped silently too: a room takes an
 *     error from an occupant as that occupant gone (XEP-0045 status 333),
 *     and blocking one occupant must not put the user out of the room;
 *   from the user to a blocked entity: not routed, answered with
 *     not-acceptable and <blocked xmlns='urn:xmpp:blocking:errors'/>.
 * Blocking a contact sends it unavailable presence from the user's available
 * resources, unblocking sends their current presence, in both cases only to
 * contacts allowed to see the user's presence (subscription from/both):
 * those online here, and external ones (through sm_remote_send()).  A
 * blocked external sender is answered through sm_remote_send() too.
 *
 * JID matching (XEP-0191 §6 -> XEP-0016 §2.1): an item local@domain/resource
 * matches that full JID only; local@domain matches the bare JID and every
 * resource of it; domain/resource matches that JID only; domain matches the
 * domain and every JID at it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* ---- matching ------------------------------------------------------------ */

/* The parts of a canonical JID: bare length, domain offset and length, and
 * whether it has a local part and a resource. */
struct blk_parts {
	size_t bare_len, dom_off, dom_len;
	bool local, resource;
};

static void split(const char *jid, struct blk_parts *p)
{
	const char *slash = strchr(jid, '/');    /* a domain has no '/': the first one ends it */
	size_t bare = slash ? (size_t)(slash - jid) : strlen(jid);
	const char *at = memchr(jid, '@', bare);

	p->bare_len = bare;
	p->local = at != NULL;
	p->resource = slash != NULL;
	p->dom_off = at ? (size_t)(at - jid) + 1 : 0;
	p->dom_len = bare - p->dom_off;
}

bool sm_blocking_match(const char *item, const char *jid)
{
	struct blk_parts i, j;

	split(item, &i);
	split(jid, &j);
	if (i.resource)          /* local@domain/resource or domain/resource: exactly */
		return strcmp(item, jid) == 0;
	if (i.local)             /* local@domain: the bare JID, any resource */
		return i.bare_len == j.bare_len && memcmp(item, jid, i.bare_len) == 0;
	/* domain: the domain, any local part, any resource */
	return i.dom_len == j.dom_len && memcmp(item, jid + j.dom_off, i.dom_len) == 0;
}

bool sm_blocking_has(const struct sm_user *u, const char *jid)
{
	for (size_t i = 0; u && i < u->nblocked; i++)
		if (sm_blocking_match(u->blocked[i], jid))
			return true;
	return false;
}

static ssize_t blocked_index(const struct sm_user *u, const char *jid)
{
	for (size_t i = 0; i < u->nblocked; i++)
		if (strcmp(u->blocked[i], jid) == 0)
			return (ssize_t)i;
	return -1;
}

/* ---- enforcement ---------------------------------------------------------- */

/* Answer m (from the session t, or when t is NULL from the external JID
 * `to`) with an error: from the address m was sent to; own: the user's own
 * block (not-acceptable + blocked). */
static void refuse(struct sm *sm, struct sm_session *t, const char *to, size_t to_len,
		   const struct wire_msg *m, bool own)
{
	struct sm_buf *b = &sm->scratch;
	const char *kind = sm_kind_name(m->u.stanza.kind);

	sm_buf_clear(b);
	sm_buf_fmt(b, "<%s type='error'", kind);
	if (m->u.stanza.id.len) {
		sm_buf_str(b, " id='");
		sm_buf_esc(b, (const char *)m->u.stanza.id.p, m->u.stanza.id.len);
		sm_buf_str(b, "'");
	}
	sm_buf_str(b, " from='");
	sm_buf_esc(b, (const char *)m->u.stanza.to.p, m->u.stanza.to.len);
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, to_len);
	if (own)
		sm_buf_str(b, "'><error type='cancel'><not-acceptable xmlns='" NS_STANZAS "'/>"
			      "<blocked xmlns='" NS_BLOCKING_ERRORS "'/></error>");
	else
		sm_buf_str(b, "'><error type='cancel'><service-unavailable xmlns='" NS_STANZAS
			      "'/></error>");
	sm_buf_fmt(b, "</%s>", kind);
	if (b->err)
		return;
	if (!t) {
		struct wire_msg r = { .type = WIRE_ROUTE };

		r.u.stanza.kind = m->u.stanza.kind;
		r.u.stanza.type = sm_ws("error");
		r.u.stanza.to = wire_s(to, to_len);
		r.u.stanza.from = m->u.stanza.to;
		r.u.stanza.id = m->u.stanza.id;
		r.u.stanza.ns = sm_ws("");
		r.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
		sm_remote_send(sm, &r);
		return;
	}
	sm_deliver(sm, t, m->u.stanza.kind, sm_ws("error"), sm_ws(t->full), m->u.stanza.to,
		   m->u.stanza.id, sm_ws(""), sm_buf_data(b), sm_buf_used(b));
}

bool sm_blocking_check(struct sm *sm, struct sm_user *fu, const char *from, size_t from_len,
		       const struct wire_msg *m, const char *to, size_t to_len)
{
	const char *tslash = memchr(to, '/', to_len);
	size_t tbare = tslash ? (size_t)(tslash - to) : to_len;
	struct sm_user *tu = sm_user_find(sm, to, tbare);
	int kind = m->u.stanza.kind;
	bool err = sm_ws_is(m->u.stanza.type, "error");
	bool own, request;
	struct sm_session *t;

	if (!fu) {
		const char *slash = memchr(from, '/', from_len);

		fu = sm_user_find(sm, from, slash ? (size_t)(slash - from) : from_len);
	}
	if (fu && fu->state != SM_USER_READY)
		fu = NULL;
	if (tu && tu->state != SM_USER_READY)
		tu = NULL;
	if (fu == tu)
		return false;    /* to the user's own account: never blocked */
	if (!(fu && fu->nblocked) && !(tu && tu->nblocked))
		return false;
	own = fu && sm_blocking_has(fu, to);
	if (!own && !(tu && sm_blocking_has(tu, from)))
		return false;
	/* The sender: a session of ours, or an external entity (answered
	 * through sm_remote_send()); a local sender that left hears nothing. */
	t = sm_session_find(sm, from, from_len);
	log_debug("stanza blocked", "from=\"%.*s\" to=\"%.*s\" kind=%s by=%s", (int)from_len,
		  from, (int)to_len, to, sm_kind_name(kind), own ? "sender" : "recipient");
	if (err || (!t && !sm_remote_jid(sm, from, from_len)))
		return true;    /* an error is never answered with an error */
	request = kind == WIRE_KIND_IQ && (sm_ws_is(m->u.stanza.type, "get") ||
					   sm_ws_is(m->u.stanza.type, "set"));
	if (own)
		refuse(sm, t, from, from_len, m, true);
	else if ((kind == WIRE_KIND_MESSAGE && !sm_ws_is(m->u.stanza.type, "groupchat")) || request)
		refuse(sm, t, from, from_len, m, false);
	return true;
}

/* ---- presence on block / unblock -------------------------------------------- */

/* Send presence raw of r to contact session c (`to` set to c's full JID). */
static void presence_send(struct sm *sm, struct sm_session *r, struct sm_session *c,
			  const char *raw, size_t len, const char *type)
{
	struct xmltag_attr set[2] = { { "to", c->full }, { "from", r->full } };
	struct sm_buf *b = &sm->scratch;
	size_t need;

	sm_buf_clear(b);
	if (sm_buf_reserve(b, len + 6 * (c->full_len + r->full_len) + 32) < 0)
		return;
	need = xmltag_rewrite(raw, len, set, 2, (char *)b->p, b->cap);
	if (need == 0 || need > b->cap)
		return;
	b->len = need;
	sm_deliver(sm, c, WIRE_KIND_PRESENCE, sm_ws(type), sm_ws(c->full), sm_ws(r->full),
		   sm_ws(""), sm_ws(""), sm_buf_data(b), sm_buf_used(b));
}

/* The same, out to the external contact's bare JID. */
static void presence_out(struct sm *sm, struct sm_session *r, const char *contact,
			 const char *raw, size_t len, const char *type)
{
	struct wire_msg m = { .type = WIRE_ROUTE };

	if (!sm_route_rewrite(sm, raw, len, contact, r->full))
		return;
	m.u.stanza.kind = WIRE_KIND_PRESENCE;
	m.u.stanza.type = sm_ws(type);
	m.u.stanza.to = sm_ws(contact);
	m.u.stanza.from = sm_ws(r->full);
	m.u.stanza.id = sm_ws("");
	m.u.stanza.ns = sm_ws("");
	m.u.stanza.raw = wire_s(sm_buf_data(&sm->scratch), sm_buf_used(&sm->scratch));
	sm_remote_send(sm, &m);
}

/*
 * After items[0..n) were blocked (block true) or unblocked: each online
 * session of a contact allowed to see u's presence that an item matches
 * gets unavailable presence (block) or, when nothing blocks it any more,
 * the current presence (unblock) of each of u's available resources.  An
 * external contact gets the same at its bare JID.
 */
static void presence_update(struct sm *sm, struct sm_user *u, char *const *items, size_t n,
			    bool block)
{
	static const char unavail[] = "<presence type='unavailable'/>";

	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];
		struct sm_user *cu;

		if (!(it->sub & SM_SUB_FROM) || strcmp(it->contact, u->bare) == 0)
			continue;
		cu = sm_user_find(sm, it->contact, strlen(it->contact));
		if (!cu && sm_remote_jid(sm, it->contact, strlen(it->contact))) {
			bool hit = false;

			for (size_t k = 0; k < n && !hit; k++)
				hit = sm_blocking_match(items[k], it->contact);
			if (!hit || (!block && sm_blocking_has(u, it->contact)))
				continue;
			for (struct sm_session *r = u->shead; r; r = r->unext) {
				if (!r->available)
					continue;
				if (block)
					presence_out(sm, r, it->contact, unavail, sizeof(unavail) - 1,
						     "unavailable");
				else if (r->presence)
					presence_out(sm, r, it->contact, r->presence,
						     r->presence_len, "");
			}
			continue;
		}
		for (struct sm_session *c = cu ? cu->shead : NULL; c; c = c->unext) {
			bool hit = false;

			for (size_t k = 0; k < n && !hit; k++)
				hit = sm_blocking_match(items[k], c->full);
			if (!hit || (!block && sm_blocking_has(u, c->full)))
				continue;
			for (struct sm_session *r = u->shead; r; r = r->unext) {
				if (!r->available)
					continue;
				if (block)
					presence_send(sm, r, c, unavail, sizeof(unavail) - 1,
						      "unavailable");
				else if (r->presence) {
					presence_send(sm, r, c, r->presence, r->presence_len, "");
				}
			}
		}
	}
}

/* ---- storage ------------------------------------------------------------------ */

enum blk_op { BLK_ADD, BLK_DEL, BLK_DEL_ALL };

/* A write-behind job; the store frees it with free(): everything is inline. */
struct blk_job {
	struct sm_job job;
	int op;
	size_t n;           /* JIDs after the user, each NUL-terminated */
	char data[];        /* user\0jid\0jid\0... */
};

static void blk_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_add[] = "INSERT INTO blocklist (user, jid) VALUES (?1, ?2)"
		" ON CONFLICT DO NOTHING";
	static const char sql_del[] = "DELETE FROM blocklist WHERE user = ?1 AND jid = ?2";
	static const char sql_all[] = "DELETE FROM blocklist WHERE user = ?1";
	struct blk_job *bj = (struct blk_job *)j;
	const char *user = bj->data, *jid = user + strlen(user) + 1;
	sm_stmt *q;

	if (bj->op == BLK_DEL_ALL) {
		q = sm_db_stmt(db, sql_all);
		if (!q) {
			j->rc = -EIO;
			return;
		}
		sm_db_bind_text(q, 1, user);
		j->rc = sm_db_exec(db, q, "blocklist clear");
		return;
	}
	for (size_t i = 0; i < bj->n; i++, jid += strlen(jid) + 1) {
		q = sm_db_stmt(db, bj->op == BLK_ADD ? sql_add : sql_del);
		if (!q) {
			j->rc = -EIO;
			return;
		}
		sm_db_bind_text(q, 1, user);
		sm_db_bind_text(q, 2, jid);
		if (sm_db_exec(db, q, "blocklist write") < 0) {
			j->rc = -EIO;
			return;
		}
	}
}

static void blk_store(struct sm *sm, const struct sm_user *u, int op, char *const *jids, size_t n)
{
	size_t size = sizeof(struct blk_job) + u->bare_len + 1, off;
	struct blk_job *bj;

	for (size_t i = 0; i < n; i++)
		size += strlen(jids[i]) + 1;
	bj = calloc(1, size);
	if (!bj) {
		log_warn("out of memory writing a blocklist", "jid=\"%s\"", u->bare);
		return;
	}
	bj->job.run = blk_run;
	bj->op = op;
	bj->n = n;
	memcpy(bj->data, u->bare, u->bare_len + 1);
	off = u->bare_len + 1;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(jids[i]) + 1;

		memcpy(bj->data + off, jids[i], l);
		off += l;
	}
	sm_store_submit(sm->store, &bj->job);
}

/* ---- the iq service ------------------------------------------------------------- */

/* Push <block/> or <unblock/> with items[0..n) (n 0: unblock all) to every
 * resource of u that asked for the blocklist (§3.3 - §3.5). */
static void push(struct sm *sm, struct sm_user *u, const char *what, char *const *items, size_t n)
{
	struct sm_buf *b = &sm->scratch;

	for (struct sm_session *t = u->shead; t; t = t->unext) {
		char id[32];

		if (!t->blocklist_requested)
			continue;
		snprintf(id, sizeof(id), "push%llu", (unsigned long long)++sm->push_seq);
		sm_buf_clear(b);
		sm_buf_fmt(b, "<iq type='set' id='%s' to='", id);
		sm_buf_esc(b, t->full, t->full_len);
		sm_buf_fmt(b, "'><%s xmlns='" NS_BLOCKING "'", what);
		if (n) {
			sm_buf_str(b, ">");
			for (size_t i = 0; i < n; i++) {
				sm_buf_str(b, "<item jid='");
				sm_buf_esc(b, items[i], strlen(items[i]));
				sm_buf_str(b, "'/>");
			}
			sm_buf_fmt(b, "</%s></iq>", what);
		} else {
			sm_buf_str(b, "/></iq>");
		}
		if (b->err) {
			log_warn("blocklist push too large to build", "jid=\"%s\"", t->full);
			return;
		}
		sm_deliver(sm, t, WIRE_KIND_IQ, sm_ws("set"), sm_ws(t->full), sm_ws(""), sm_ws(id),
			   sm_ws(NS_BLOCKING), sm_buf_data(b), sm_buf_used(b));
	}
}

void sm_blocking_iq_list(struct sm_iq *q)
{
	struct sm_user *u = q->s->user;
	struct sm_buf *b;

	if (q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	b = sm_iq_buf(q);
	sm_buf_str(b, "<blocklist xmlns='" NS_BLOCKING "'");
	if (u->nblocked) {
		sm_buf_str(b, ">");
		for (size_t i = 0; i < u->nblocked; i++) {
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, u->blocked[i], strlen(u->blocked[i]));
			sm_buf_str(b, "'/>");
		}
		sm_buf_str(b, "</blocklist>");
	} else {
		sm_buf_str(b, "/>");
	}
	if (b->err) {
		sm_iq_error(q, "internal-server-error");
		return;
	}
	q->s->blocklist_requested = true;   /* §3.2: it gets pushes from now on */
	sm_iq_result(q, (const char *)sm_buf_data(b), sm_buf_used(b));
}

/*
 * The items of q's payload, canonical, duplicates dropped, into a new array
 * (*out, *n; free each and the array).  NULL cond: ok; else the error.
 */
static const char *items_read(struct sm_iq *q, char ***out, size_t *n)
{
	const struct xtree_node *it;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	const char *cond = NULL;
	size_t seen = 0;

	for (it = xtree_child(q->payload, NS_BLOCKING, "item"); it;
	     it = xtree_next(it, NS_BLOCKING, "item")) {
		const char *jid = xtree_attr(it, "jid");
		char canon[JID_MAX + 1];
		struct jid_view jv;
		bool dup = false;
		int len;

		if (++seen > SM_MAX_BLOCKLIST) {
			cond = "policy-violation";     /* duplicates count: the work is bounded */
			break;
		}
		if (!jid) {
			cond = "bad-request";          /* the schema requires jid */
			break;
		}
		if (strlen(jid) > JID_MAX || jid_parse(jid, strlen(jid), &jv) < 0 ||
		    (len = jid_canon(&jv, true, canon, sizeof(canon))) < 0) {
			cond = "jid-malformed";
			break;
		}
		for (size_t i = 0; i < cnt && !dup; i++)
			dup = strcmp(v[i], canon) == 0;
		if (dup)
			continue;
		if (cnt == cap) {
			size_t c = cap ? cap * 2 : 8;
			char **nv = realloc(v, c * sizeof(*nv));

			if (!nv) {
				cond = "resource-constraint";
				break;
			}
			v = nv;
			cap = c;
		}
		v[cnt] = strdup(canon);
		if (!v[cnt]) {
			cond = "resource-constraint";
			break;
		}
		cnt++;
	}
	if (cond) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return cond;
	}
	*out = v;
	*n = cnt;
	return NULL;
}

static void items_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void sm_blocking_iq_block(struct sm_iq *q)
{
	struct sm_user *u = q->s->user;
	char **items = NULL, **added;
	size_t n = 0, nadd = 0, need;
	const char *cond;

	if (!q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	cond = items_read(q, &items, &n);
	if (!cond && n == 0)
		cond = "bad-request";      /* §3.3: at least one item */
	if (cond) {
		sm_iq_error(q, cond);
		return;
	}
	/* Added first, in items[0..nadd); what was blocked already stays. */
	for (size_t i = 0; i < n; i++) {
		if (blocked_index(u, items[i]) < 0) {
			char *t = items[nadd];

			items[nadd++] = items[i];
			items[i] = t;
		}
	}
	need = u->nblocked + nadd;
	if (need > SM_MAX_BLOCKLIST) {
		items_free(items, n);
		sm_iq_error(q, "policy-violation");
		return;
	}
	if (need > u->blocked_cap) {
		size_t cap = u->blocked_cap ? u->blocked_cap : 8;
		char **nb;

		while (cap < need)
			cap *= 2;
		nb = realloc(u->blocked, cap * sizeof(*nb));
		if (!nb) {
			items_free(items, n);
			sm_iq_error(q, "resource-constraint");
			return;
		}
		u->blocked = nb;
		u->blocked_cap = cap;
	}
	added = u->blocked + u->nblocked;
	for (size_t i = 0; i < nadd; i++) {
		added[i] = items[i];
		items[i] = NULL;
	}
	u->nblocked = need;
	sm_iq_result(q, NULL, 0);
	if (nadd) {
		blk_store(q->sm, u, BLK_ADD, added, nadd);
		presence_update(q->sm, u, added, nadd, true);
	}
	/* The push names every item of the request, as the command did. */
	for (size_t i = 0; i < nadd; i++)
		items[i] = added[i];
	push(q->sm, u, "block", items, n);
	for (size_t i = nadd; i < n; i++)
		free(items[i]);
	free(items);
}

void sm_blocking_iq_unblock(struct sm_iq *q)
{
	struct sm_user *u = q->s->user;
	char **items = NULL;
	size_t n = 0, nrem = 0;
	const char *cond;

	if (!q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	cond = items_read(q, &items, &n);
	if (cond) {
		sm_iq_error(q, cond);
		return;
	}
	if (n == 0) {
		/* §3.5: unblock everything */
		char **old = u->blocked;
		size_t nold = u->nblocked;

		u->blocked = NULL;
		u->nblocked = u->blocked_cap = 0;
		sm_iq_result(q, NULL, 0);
		blk_store(q->sm, u, BLK_DEL_ALL, NULL, 0);
		presence_update(q->sm, u, old, nold, false);
		push(q->sm, u, "unblock", NULL, 0);
		items_free(old, nold);
		free(items);
		return;
	}
	/* Removed entries are moved to the front of items and kept alive for
	 * the presence update; the rest are freed after the push. */
	char **removed = calloc(n, sizeof(*removed));

	if (!removed) {
		items_free(items, n);
		sm_iq_error(q, "resource-constraint");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ssize_t k = blocked_index(u, items[i]);

		if (k < 0)
			continue;
		removed[nrem++] = u->blocked[k];
		u->blocked[k] = u->blocked[--u->nblocked];
	}
	sm_iq_result(q, NULL, 0);
	if (nrem) {
		blk_store(q->sm, u, BLK_DEL, removed, nrem);
		presence_update(q->sm, u, removed, nrem, false);
	}
	push(q->sm, u, "unblock", items, n);
	items_free(removed, nrem);
	items_free(items, n);
}
