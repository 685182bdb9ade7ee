/*
 * sm_pep — XEP-0163 Personal Eventing Protocol: a PubSub service (XEP-0060)
 * on every account's bare JID, enough for avatars (XEP-0084) and OMEMO
 * (XEP-0384) device lists and bundles.
 *
 * Served (sm/iq.c rows): publish with auto-create and publish-options
 * preconditions (pubsub#access_model open | presence | whitelist,
 * pubsub#max_items, pubsub#persist_items), items retrieval (all, newest
 * max_items, by id), retract and, in the #owner namespace, delete and node
 * configuration (the same two fields: how a client recovers from
 * precondition-not-met).  Explicit subscriptions are not offered: PEP
 * subscribes through presence.  Nodes
 * and items live in pep_node / pep (sm/store.c) and are read and written
 * only by storage jobs, so every answer is given from a job's done() through
 * sm_iq_keep(): jobs run in submission order, a read sees every write before
 * it, and access checks read the owner's roster rows the same way.
 *
 * Access: the owner always; otherwise open: anyone; presence: contacts with
 * subscription from/both in the owner's roster; whitelist: the owner only.
 *
 * Notifications (XEP-0163 §4.3): the implicit subscribers of a node are the
 * owner's available resources and the available resources of its contacts
 * with subscription from/both (none for whitelist), and a resource gets an
 * event only when its entity capabilities (XEP-0115) list node+notify.  The
 * capabilities a session announces in its presence are looked up in a cache
 * ver -> +notify features; an unknown ver is asked once with a disco#info
 * query from the server's domain to that resource, and its answer comes back
 * through sm_pep_iq_answer().  When a resource sends its initial presence, or
 * changes its capabilities, the last published item of each node it may see
 * and wants is sent to it (§4.3.2, "last published item"), once its
 * capabilities are known.
 *
 * Bounds: node names and item ids SM_PEP_NAME_MAX bytes, payloads
 * SM_PEP_PAYLOAD_MAX, SM_PEP_MAX_NODES nodes per account, SM_PEP_MAX_ITEMS
 * items per node, SM_PEP_CAPS_MAX cached versions with at most
 * SM_PEP_FEATURES_MAX bytes of +notify features each, SM_PEP_QUERIES_MAX
 * disco#info queries in flight.  The cache keeps what the first resource
 * with a given ver answered; the ver is not verified against the answer.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/xtree.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"
#include "tls/crypto.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define NS_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"
#define NS_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define NS_XDATA "jabber:x:data"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

#define SM_PEP_NAME_MAX 256
#define SM_PEP_PAYLOAD_MAX (128u * 1024)
#define SM_PEP_MAX_NODES 128
#define SM_PEP_MAX_ITEMS 256
#define SM_PEP_CAPS_MAX 1024
#define SM_PEP_FEATURES_MAX 4096
#define SM_PEP_QUERIES_MAX 256
#define SM_PEP_OUT_MAX (1u << 20)    /* one items answer, last-items batch (< WIRE_MAX_BODY) */

enum pep_access { PEP_OPEN = 0, PEP_PRESENCE, PEP_WHITELIST };
static const char *const pep_access_names[] = { "open", "presence", "whitelist" };

enum pep_op { PEP_PUBLISH, PEP_ITEMS, PEP_RETRACT, PEP_DELETE, PEP_CONFIG_GET, PEP_CONFIG_SET };

/* What a job found wrong, answered by pep_fail(). */
enum pep_err {
	PEP_OK = 0,
	PEP_E_NO_NODE,       /* item-not-found */
	PEP_E_NO_ITEM,       /* item-not-found */
	PEP_E_PRECONDITION,  /* conflict + precondition-not-met */
	PEP_E_PRESENCE,      /* not-authorized + presence-subscription-required */
	PEP_E_CLOSED,        /* not-allowed + closed-node */
	PEP_E_TOO_MANY,      /* resource-constraint: SM_PEP_MAX_NODES */
	PEP_E_STORE          /* internal-server-error */
};

/* One entity-capabilities version: the +notify features its answer listed.
 * When the cache is full the least recently used entry is replaced and its
 * gen bumped: sessions that pointed to it (sm_session.pep_caps_gen) then
 * read as having no known capabilities. */
struct sm_pep_caps {
	char *ver;
	char *notify;        /* "\n" + each node + "\n"; "\n" when none */
	uint64_t gen;
	uint64_t used;       /* p->tick when last looked up */
	bool shared;         /* ver verified (XEP-0115 §5.4): usable for every session */
};

/* A disco#info query in flight. */
struct pep_query {
	uint64_t seq;        /* its id: pep-caps-<seq> */
	uint32_t link;
	uint64_t sid;
	char *ver;
	int hash;            /* 0 sha-1, 1 sha-256, -1 other (cannot be verified) */
};

struct sm_pep {
	struct sm_pep_caps caps[SM_PEP_CAPS_MAX];
	size_t ncaps;
	struct pep_query queries[SM_PEP_QUERIES_MAX];
	size_t nqueries;
	uint64_t seq;        /* query and notification ids, generated item ids */
	uint64_t tick;       /* caps lookups, for LRU */
	struct sm_buf out;   /* notifications and queries being built */
};

struct pep_job {
	struct sm_job job;
	int op;                      /* enum pep_op */
	struct sm_iq_ref *ref;
	char *owner, *requester, *node, *item;
	char **ids;                  /* PEP_ITEMS by id */
	size_t nids;
	char *payload;
	size_t payload_len;
	int want_access;             /* publish-options, -1: none */
	int want_max;                /* publish-options, -1: none */
	unsigned max_items;          /* PEP_ITEMS: 0 = all */
	bool notify;                 /* PEP_RETRACT: notify='true' */
	int err;                     /* enum pep_err (out) */
	int access;                  /* the node's (out) */
	struct sm_buf out;           /* PEP_ITEMS answer (out) */
};

static struct sm_pep *pep_get(struct sm *sm)
{
	if (!sm->pep) {
		sm->pep = calloc(1, sizeof(*sm->pep));
		if (sm->pep)
			sm->pep->out.max = SM_PEP_OUT_MAX;
	}
	return sm->pep;
}

void sm_pep_free(struct sm *sm)
{
	struct sm_pep *p = sm->pep;

	if (!p)
		return;
	for (size_t i = 0; i < p->ncaps; i++) {
		free(p->caps[i].ver);
		free(p->caps[i].notify);
	}
	for (size_t i = 0; i < p->nqueries; i++)
		free(p->queries[i].ver);
	sm_buf_free(&p->out);
	free(p);
	sm->pep = NULL;
}

static void pep_job_free(struct pep_job *pj)
{
	if (!pj)
		return;
	sm_iq_ref_free(pj->ref);
	free(pj->owner);
	free(pj->requester);
	free(pj->node);
	free(pj->item);
	for (size_t i = 0; i < pj->nids; i++)
		free(pj->ids[i]);
	free(pj->ids);
	free(pj->payload);
	sm_buf_free(&pj->out);
	free(pj);
}

static int access_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, pep_access_names[i]) == 0)
			return i;
	return -1;
}

/* ---- storage thread ------------------------------------------------------ */

/* The node's access model and max_items: 1, 0 when it does not exist, -EIO. */
static int db_node(struct sm_db *db, const char *owner, const char *node, int *access, int *max)
{
	static const char sql[] = "SELECT access, max_items FROM pep_node WHERE user = ?1 AND node = ?2";
	sqlite3_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q)
		return -EIO;
	sm_db_text(q, 1, owner);
	sm_db_text(q, 2, node);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(q, 0);

		*access = access_parse(a ? a : "");
		if (*access < 0)
			*access = PEP_WHITELIST;   /* unknown: the safest reading */
		*max = sqlite3_column_int(q, 1);
	}
	sm_db_done(q);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sm_db_fail(db, "pep node");
}

/* May requester read owner's node with this access model?  PEP_OK or an error. */
static int db_may_read(struct sm_db *db, const char *owner, const char *requester, int access)
{
	static const char sql[] = "SELECT subscription FROM roster WHERE user = ?1 AND contact = ?2";
	sqlite3_stmt *q;
	bool from = false;
	int rc;

	if (strcmp(owner, requester) == 0 || access == PEP_OPEN)
		return PEP_OK;
	if (access == PEP_WHITELIST)
		return PEP_E_CLOSED;
	q = sm_db_stmt(db, sql);
	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, owner);
	sm_db_text(q, 2, requester);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *sub = (const char *)sqlite3_column_text(q, 0);

		from = sub && (strcmp(sub, "from") == 0 || strcmp(sub, "both") == 0);
	}
	sm_db_done(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sm_db_fail(db, "pep roster");
		return PEP_E_STORE;
	}
	return from ? PEP_OK : PEP_E_PRESENCE;
}

static int db_count_nodes(struct sm_db *db, const char *owner)
{
	static const char sql[] = "SELECT COUNT(*) FROM pep_node WHERE user = ?1";
	sqlite3_stmt *q = sm_db_stmt(db, sql);
	int n = -1;

	if (!q)
		return -1;
	sm_db_text(q, 1, owner);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sm_db_done(q);
	return n;
}

/* Write owner's node row with sql, an INSERT or UPDATE of pep_node binding
 * ?1 user, ?2 node, ?3 access, ?4 max_items; what names it in the log.
 * PEP_OK or PEP_E_STORE. */
static int db_node_put(struct sm_db *db, const char *sql, const char *what, const char *owner,
		       const char *node, int access, int max)
{
	sqlite3_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, owner);
	sm_db_text(q, 2, node);
	sm_db_text(q, 3, pep_access_names[access]);
	sqlite3_bind_int(q, 4, max);
	return sm_db_exec(db, q, what) < 0 ? PEP_E_STORE : PEP_OK;
}

/* Keep the newest max items of owner's node. */
static int db_trim(struct sm_db *db, const char *owner, const char *node, int max)
{
	static const char sql[] =
		"DELETE FROM pep WHERE user = ?1 AND node = ?2 AND seq NOT IN"
		" (SELECT seq FROM pep WHERE user = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)";
	sqlite3_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, owner);
	sm_db_text(q, 2, node);
	sqlite3_bind_int(q, 3, max);
	return sm_db_exec(db, q, "pep trim") < 0 ? PEP_E_STORE : PEP_OK;
}

static int run_publish(struct sm_db *db, struct pep_job *pj)
{
	static const char sql_node[] =
		"INSERT INTO pep_node (user, node, access, max_items) VALUES (?1, ?2, ?3, ?4)";
	static const char sql_item[] =
		"INSERT OR REPLACE INTO pep (user, node, id, payload, ts, seq) VALUES (?1, ?2, ?3, ?4, ?5,"
		" (SELECT COALESCE(MAX(seq), 0) + 1 FROM pep WHERE user = ?1 AND node = ?2))";
	int access = PEP_PRESENCE, max = 1, n;
	sqlite3_stmt *q;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n < 0)
		return PEP_E_STORE;
	if (n == 1) {
		/* XEP-0060 §7.1.5: publish-options are preconditions on an existing node. */
		if ((pj->want_access >= 0 && pj->want_access != access) ||
		    (pj->want_max >= 0 && pj->want_max != max))
			return PEP_E_PRECONDITION;
	} else {
		/* §7.1.4 auto-create, configured by the publish-options. */
		n = db_count_nodes(db, pj->owner);
		if (n < 0)
			return PEP_E_STORE;
		if (n >= SM_PEP_MAX_NODES)
			return PEP_E_TOO_MANY;
		if (pj->want_access >= 0)
			access = pj->want_access;
		if (pj->want_max >= 0)
			max = pj->want_max;
		if (db_node_put(db, sql_node, "pep node add", pj->owner, pj->node, access, max) !=
		    PEP_OK)
			return PEP_E_STORE;
	}
	pj->access = access;
	q = sm_db_stmt(db, sql_item);
	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, pj->owner);
	sm_db_text(q, 2, pj->node);
	sm_db_text(q, 3, pj->item);
	sqlite3_bind_blob64(q, 4, pj->payload, pj->payload_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL));
	if (sm_db_exec(db, q, "pep item add") < 0)
		return PEP_E_STORE;
	return db_trim(db, pj->owner, pj->node, max);
}

/* XEP-0060 §8.2.1: the node's configuration form. */
static int run_config_get(struct sm_db *db, struct pep_job *pj)
{
	struct sm_buf *b = &pj->out;
	int access, max, n;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	sm_buf_str(b, "<pubsub xmlns='" NS_PUBSUB_OWNER "'><configure node='");
	sm_buf_esc(b, pj->node, strlen(pj->node));
	sm_buf_str(b, "'><x xmlns='" NS_XDATA "' type='form'>"
		      "<field var='FORM_TYPE' type='hidden'><value>" NS_NODE_CONFIG "</value></field>"
		      "<field var='pubsub#access_model' type='list-single'"
		      " label='Who may subscribe and retrieve items'>");
	for (int i = 0; i < 3; i++)
		sm_buf_fmt(b, "<option><value>%s</value></option>", pep_access_names[i]);
	sm_buf_fmt(b, "<value>%s</value></field>"
		      "<field var='pubsub#max_items' type='text-single'"
		      " label='Max # of items to persist'><value>%d</value></field>"
		      "</x></configure></pubsub>", pep_access_names[access], max);
	return b->err ? PEP_E_STORE : PEP_OK;
}

/* XEP-0060 §8.2.4: change what the submitted form names; the items beyond
 * a smaller max_items go. */
static int run_config_set(struct sm_db *db, struct pep_job *pj)
{
	static const char sql[] =
		"UPDATE pep_node SET access = ?3, max_items = ?4 WHERE user = ?1 AND node = ?2";
	int access, max, n;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	if (pj->want_access >= 0)
		access = pj->want_access;
	if (pj->want_max >= 0)
		max = pj->want_max;
	if (db_node_put(db, sql, "pep configure", pj->owner, pj->node, access, max) != PEP_OK)
		return PEP_E_STORE;
	return db_trim(db, pj->owner, pj->node, max);
}

/* Append the row's item to b; false when it would not fit (the answer is
 * then truncated to the newest items that fit, XEP-0060 §6.5.7). */
static bool out_item(struct sm_buf *b, sqlite3_stmt *q)
{
	const char *id = (const char *)sqlite3_column_text(q, 0);
	const void *payload = sqlite3_column_blob(q, 1);
	int len = sqlite3_column_bytes(q, 1);

	if (sm_buf_used(b) + (size_t)len + (id ? strlen(id) * 6 : 0) + 64 > SM_PEP_OUT_MAX)
		return false;
	sm_buf_str(b, "<item id='");
	sm_buf_esc(b, id ? id : "", id ? strlen(id) : 0);
	sm_buf_str(b, "'>");
	if (payload && len > 0)
		sm_buf_add(b, payload, (size_t)len);
	sm_buf_str(b, "</item>");
	return true;
}

static int run_items(struct sm_db *db, struct pep_job *pj)
{
	static const char sql_all[] =
		"SELECT id, payload FROM pep WHERE user = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3";
	static const char sql_one[] =
		"SELECT id, payload FROM pep WHERE user = ?1 AND node = ?2 AND id = ?3";
	struct sm_buf *b = &pj->out;
	int access, max, n, rc;
	size_t found = 0;
	sqlite3_stmt *q;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	rc = db_may_read(db, pj->owner, pj->requester, access);
	if (rc != PEP_OK)
		return rc;
	b->max = SM_PEP_OUT_MAX;
	sm_buf_str(b, "<pubsub xmlns='" NS_PUBSUB "'><items node='");
	sm_buf_esc(b, pj->node, strlen(pj->node));
	sm_buf_str(b, "'>");
	if (pj->nids == 0) {
		q = sm_db_stmt(db, sql_all);
		if (!q)
			return PEP_E_STORE;
		sm_db_text(q, 1, pj->owner);
		sm_db_text(q, 2, pj->node);
		sqlite3_bind_int(q, 3, pj->max_items ? (int)pj->max_items : -1);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW && out_item(b, q))
			;
		sm_db_done(q);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return sm_db_fail(db, "pep items"), PEP_E_STORE;
	}
	for (size_t i = 0; i < pj->nids; i++) {
		q = sm_db_stmt(db, sql_one);
		if (!q)
			return PEP_E_STORE;
		sm_db_text(q, 1, pj->owner);
		sm_db_text(q, 2, pj->node);
		sm_db_text(q, 3, pj->ids[i]);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW && out_item(b, q))
			found++;
		sm_db_done(q);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sm_db_fail(db, "pep item"), PEP_E_STORE;
	}
	if (pj->nids && !found)
		return PEP_E_NO_ITEM;   /* XEP-0060 §6.5.8: none of the requested items exists */
	sm_buf_str(b, "</items></pubsub>");
	return b->err ? PEP_E_STORE : PEP_OK;
}

static int run_retract(struct sm_db *db, struct pep_job *pj)
{
	static const char sql[] = "DELETE FROM pep WHERE user = ?1 AND node = ?2 AND id = ?3";
	int access, max, n;
	sqlite3_stmt *q;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	pj->access = access;
	q = sm_db_stmt(db, sql);
	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, pj->owner);
	sm_db_text(q, 2, pj->node);
	sm_db_text(q, 3, pj->item);
	if (sm_db_exec(db, q, "pep retract") < 0)
		return PEP_E_STORE;
	return sm_db_changes(db) > 0 ? PEP_OK : PEP_E_NO_ITEM;
}

static int run_delete(struct sm_db *db, struct pep_job *pj)
{
	static const char sql_items[] = "DELETE FROM pep WHERE user = ?1 AND node = ?2";
	static const char sql_node[] = "DELETE FROM pep_node WHERE user = ?1 AND node = ?2";
	int access, max, n;
	sqlite3_stmt *q;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	pj->access = access;
	q = sm_db_stmt(db, sql_items);
	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, pj->owner);
	sm_db_text(q, 2, pj->node);
	if (sm_db_exec(db, q, "pep delete items") < 0)
		return PEP_E_STORE;
	q = sm_db_stmt(db, sql_node);
	if (!q)
		return PEP_E_STORE;
	sm_db_text(q, 1, pj->owner);
	sm_db_text(q, 2, pj->node);
	return sm_db_exec(db, q, "pep delete node") < 0 ? PEP_E_STORE : PEP_OK;
}

static void pep_run(struct sm_db *db, struct sm_job *j)
{
	struct pep_job *pj = (struct pep_job *)j;

	switch (pj->op) {
	case PEP_PUBLISH:
		pj->err = run_publish(db, pj);
		break;
	case PEP_ITEMS:
		pj->err = run_items(db, pj);
		break;
	case PEP_RETRACT:
		pj->err = run_retract(db, pj);
		break;
	case PEP_CONFIG_GET:
		pj->err = run_config_get(db, pj);
		break;
	case PEP_CONFIG_SET:
		pj->err = run_config_set(db, pj);
		break;
	default:
		pj->err = run_delete(db, pj);
		break;
	}
	j->rc = pj->err == PEP_E_STORE ? -EIO : 0;
}

/* ---- notifications (sm thread) ----------------------------------------- */

/* The capabilities of s, if still cached. */
static const struct sm_pep_caps *caps_of(const struct sm_session *s)
{
	const struct sm_pep_caps *c = s->pep_caps;

	return c && c->gen == s->pep_caps_gen ? c : NULL;
}

static void caps_set(struct sm_session *s, struct sm_pep_caps *c)
{
	s->pep_caps = c;
	s->pep_caps_gen = c ? c->gen : 0;
}

static bool caps_wants(const struct sm_session *s, const char *node)
{
	const struct sm_pep_caps *c = caps_of(s);
	size_t n = strlen(node);
	const char *at;

	if (!c)
		return false;
	for (at = strstr(c->notify, node); at; at = strstr(at + 1, node))
		if (at[-1] == '\n' && at[n] == '\n')
			return true;
	return false;
}

/* Send t the event body (the <event/> child, already built) from owner. */
static void notify_one(struct sm *sm, struct sm_pep *p, struct sm_session *t, const char *owner,
		       const char *body, size_t len)
{
	char id[32];

	snprintf(id, sizeof(id), "pep-%llu", (unsigned long long)++p->seq);
	sm_buf_clear(&p->out);
	sm_buf_str(&p->out, "<message type='headline' from='");
	sm_buf_esc(&p->out, owner, strlen(owner));
	sm_buf_str(&p->out, "' to='");
	sm_buf_esc(&p->out, t->full, t->full_len);
	sm_buf_fmt(&p->out, "' id='%s'>", id);
	sm_buf_add(&p->out, body, len);
	sm_buf_str(&p->out, "</message>");
	if (p->out.err)
		return;
	sm_deliver(sm, t, WIRE_KIND_MESSAGE, sm_ws("headline"), sm_ws(t->full), sm_ws(owner),
		   sm_ws(id), sm_ws(NS_PUBSUB_EVENT), sm_buf_data(&p->out), sm_buf_used(&p->out));
}

/* Has owner blocked t (XEP-0191: its full JID, bare JID or domain)? */
static bool blocked(const struct sm_user *owner, const struct sm_session *t)
{
	const char *at = strchr(t->bare, '@');
	const char *domain = at ? at + 1 : t->bare;

	for (size_t i = 0; i < owner->nblocked; i++) {
		const char *b = owner->blocked[i];

		if (strcmp(b, t->full) == 0 || strcmp(b, t->bare) == 0 || strcmp(b, domain) == 0)
			return true;
	}
	return false;
}

/* May t get notifications now (XEP-0163 §4.3.3: available, non-negative
 * priority, capabilities asking for node+notify; §4.3.4: not blocked)? */
static bool wants(const struct sm_user *owner, const struct sm_session *t,
		  const char *node)
{
	return t->available && t->priority >= 0 && caps_wants(t, node) && !blocked(owner, t);
}

static void notify_user(struct sm *sm, struct sm_pep *p, const struct sm_user *owner,
			struct sm_user *u, const char *node, const char *body, size_t len)
{
	for (struct sm_session *t = u ? u->shead : NULL; t; t = t->unext)
		if (wants(owner, t, node))
			notify_one(sm, p, t, owner->bare, body, len);
}

/*
 * Send the event body to the node's implicit subscribers (XEP-0163 §4.3.1):
 * the owner's available resources, and for open and presence nodes the
 * available resources of its contacts with subscription from/both; each
 * only if its capabilities ask for node+notify.
 */
static void notify_all(struct sm *sm, const char *owner, const char *node, int access,
		       const char *body, size_t len)
{
	struct sm_pep *p = pep_get(sm);
	struct sm_user *u = sm_user_find(sm, owner, strlen(owner));

	if (!p || !u)
		return;
	notify_user(sm, p, u, u, node, body, len);
	if (access == PEP_WHITELIST)
		return;
	for (size_t i = 0; i < u->nroster; i++) {
		struct sm_roster_item *it = &u->roster[i];

		if (!(it->sub & SM_SUB_FROM) || strcmp(it->contact, owner) == 0)
			continue;
		notify_user(sm, p, u, sm_user_find(sm, it->contact, strlen(it->contact)), node, body,
			    len);
	}
}

/* Build <event><items node=''><item id=''>payload</item></items></event> in b. */
static void event_items(struct sm_buf *b, const char *node, const char *id, const void *payload,
			size_t len)
{
	sm_buf_str(b, "<event xmlns='" NS_PUBSUB_EVENT "'><items node='");
	sm_buf_esc(b, node, strlen(node));
	sm_buf_str(b, "'><item id='");
	sm_buf_esc(b, id, strlen(id));
	sm_buf_str(b, "'>");
	sm_buf_add(b, payload, len);
	sm_buf_str(b, "</item></items></event>");
}

/* ---- answers ------------------------------------------------------------ */

static void pep_fail(struct sm *sm, struct sm_iq_ref *r, int err)
{
	switch (err) {
	case PEP_E_NO_NODE:
	case PEP_E_NO_ITEM:
		sm_iq_ref_error(sm, r, "item-not-found");
		break;
	case PEP_E_PRECONDITION:
		sm_iq_ref_error_app(sm, r, "conflict",
				    "<precondition-not-met xmlns='" NS_PUBSUB_ERRORS "'/>");
		break;
	case PEP_E_PRESENCE:
		sm_iq_ref_error_app(sm, r, "not-authorized",
				    "<presence-subscription-required xmlns='" NS_PUBSUB_ERRORS "'/>");
		break;
	case PEP_E_CLOSED:
		sm_iq_ref_error_app(sm, r, "not-allowed",
				    "<closed-node xmlns='" NS_PUBSUB_ERRORS "'/>");
		break;
	case PEP_E_TOO_MANY:
		sm_iq_ref_error(sm, r, "resource-constraint");
		break;
	default:
		sm_iq_ref_error(sm, r, "internal-server-error");
		break;
	}
}

static void pep_done(struct sm *sm, struct sm_job *j)
{
	struct pep_job *pj = (struct pep_job *)j;
	struct sm_iq_ref *r = pj->ref;
	struct sm_buf body = { .max = SM_PEP_OUT_MAX };

	pj->ref = NULL;
	if (j->rc < 0 && pj->err == PEP_OK)
		pj->err = PEP_E_STORE;      /* the batch did not commit */
	if (pj->err != PEP_OK) {
		pep_fail(sm, r, pj->err);
		pep_job_free(pj);
		return;
	}
	switch (pj->op) {
	case PEP_PUBLISH:
		/* XEP-0060 §7.1.2: the result names the item (its id may be ours). */
		sm_buf_str(&body, "<pubsub xmlns='" NS_PUBSUB "'><publish node='");
		sm_buf_esc(&body, pj->node, strlen(pj->node));
		sm_buf_str(&body, "'><item id='");
		sm_buf_esc(&body, pj->item, strlen(pj->item));
		sm_buf_str(&body, "'/></publish></pubsub>");
		if (body.err)
			sm_iq_ref_error(sm, r, "internal-server-error");
		else
			sm_iq_ref_result(sm, r, (const char *)sm_buf_data(&body), sm_buf_used(&body));
		sm_buf_clear(&body);
		event_items(&body, pj->node, pj->item, pj->payload, pj->payload_len);
		break;
	case PEP_ITEMS:
	case PEP_CONFIG_GET:
		sm_iq_ref_result(sm, r, (const char *)sm_buf_data(&pj->out), sm_buf_used(&pj->out));
		break;
	case PEP_CONFIG_SET:
		sm_iq_ref_result(sm, r, NULL, 0);
		break;
	case PEP_RETRACT:
		sm_iq_ref_result(sm, r, NULL, 0);
		if (pj->notify) {
			sm_buf_str(&body, "<event xmlns='" NS_PUBSUB_EVENT "'><items node='");
			sm_buf_esc(&body, pj->node, strlen(pj->node));
			sm_buf_str(&body, "'><retract id='");
			sm_buf_esc(&body, pj->item, strlen(pj->item));
			sm_buf_str(&body, "'/></items></event>");
		}
		break;
	default:
		sm_iq_ref_result(sm, r, NULL, 0);
		/* XEP-0060 §8.4.2: subscribers are told the node is gone. */
		sm_buf_str(&body, "<event xmlns='" NS_PUBSUB_EVENT "'><delete node='");
		sm_buf_esc(&body, pj->node, strlen(pj->node));
		sm_buf_str(&body, "'/></event>");
		break;
	}
	if (sm_buf_used(&body) && !body.err)
		notify_all(sm, pj->owner, pj->node, pj->access, (const char *)sm_buf_data(&body),
			   sm_buf_used(&body));
	sm_buf_free(&body);
	pep_job_free(pj);
}

/* ---- requests (sm thread) ---------------------------------------------- */

static struct pep_job *job_new(struct sm_iq *q, int op, const char *node)
{
	struct pep_job *pj = calloc(1, sizeof(*pj));

	if (!pj)
		return NULL;
	pj->job.run = pep_run;
	pj->job.done = pep_done;
	pj->op = op;
	pj->want_access = -1;
	pj->want_max = -1;
	pj->owner = strdup(q->account);
	pj->requester = strdup(q->s->bare);
	pj->node = strdup(node);
	pj->ref = sm_iq_keep(q);
	if (!pj->owner || !pj->requester || !pj->node || !pj->ref) {
		pep_job_free(pj);
		return NULL;
	}
	return pj;
}

static void job_submit(struct sm_iq *q, struct pep_job *pj)
{
	sm_store_submit(q->sm->store, &pj->job);
}

/* The node attribute: present, non-empty, bounded.  NULL after answering. */
static const char *node_of(struct sm_iq *q, const struct xtree_node *el)
{
	const char *node = xtree_attr(el, "node");

	if (!node || !node[0]) {
		sm_iq_error_app(q, "bad-request", "<nodeid-required xmlns='" NS_PUBSUB_ERRORS "'/>");
		return NULL;
	}
	if (strlen(node) > SM_PEP_NAME_MAX) {
		sm_iq_error(q, "not-acceptable");
		return NULL;
	}
	return node;
}

static void buf_put(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

static bool field_value(const struct xtree_node *f, const char **v)
{
	const struct xtree_node *val = xtree_child(f, NS_XDATA, "value");

	*v = val ? xtree_text(val) : NULL;
	return *v != NULL && xtree_next(val, NS_XDATA, "value") == NULL;
}

/*
 * Read a submitted form of type form_type (publish-options, XEP-0060 §7.1.5;
 * node_config, §8.2.4) into pj's want_access / want_max.  A field or value
 * the service cannot honour is answered with unmet (and app).  Returns false
 * after answering.
 */
static bool form_read(struct sm_iq *q, const struct xtree_node *x, const char *form_type,
		      struct pep_job *pj, const char *unmet, const char *app)
{
	const struct xtree_node *f;
	const char *var, *v;
	bool typed = false;

	for (f = xtree_child(x, NS_XDATA, "field"); f; f = xtree_next(f, NS_XDATA, "field")) {
		var = xtree_attr(f, "var");
		if (!var || !field_value(f, &v))
			goto bad;
		if (strcmp(var, "FORM_TYPE") == 0) {
			if (strcmp(v, form_type) != 0)
				goto bad;
			typed = true;
		} else if (strcmp(var, "pubsub#access_model") == 0) {
			pj->want_access = access_parse(v);
			if (pj->want_access < 0)
				goto unmet;
		} else if (strcmp(var, "pubsub#max_items") == 0) {
			char *end;
			unsigned long n;

			if (strcmp(v, "max") == 0) {
				pj->want_max = SM_PEP_MAX_ITEMS;
				continue;
			}
			n = strtoul(v, &end, 10);
			if (!v[0] || *end || n == 0 || n > SM_PEP_MAX_ITEMS)
				goto unmet;
			pj->want_max = (int)n;
		} else if (strcmp(var, "pubsub#persist_items") == 0) {
			if (strcmp(v, "1") != 0 && strcmp(v, "true") != 0)
				goto unmet;     /* items here are always persistent */
		} else {
			goto unmet;
		}
	}
	if (!typed)
		goto bad;
	return true;
bad:
	sm_iq_error(q, "bad-request");
	return false;
unmet:
	sm_iq_error_app(q, unmet, app);
	return false;
}

/* The publish-options of a publish: fields the service cannot honour are
 * preconditions it cannot meet. */
static bool publish_options(struct sm_iq *q, const struct xtree_node *opts, struct pep_job *pj)
{
	const struct xtree_node *x = xtree_child(opts, NS_XDATA, "x");

	if (!opts)
		return true;
	if (!x) {
		if (!xtree_child(opts, NULL, NULL))
			return true;        /* empty publish-options: nothing asked */
		sm_iq_error(q, "bad-request");
		return false;
	}
	return form_read(q, x, NS_PUBLISH_OPTIONS, pj, "conflict",
			 "<precondition-not-met xmlns='" NS_PUBSUB_ERRORS "'/>");
}

static void pep_publish(struct sm_iq *q, const struct xtree_node *ps, const struct xtree_node *pub)
{
	const struct xtree_node *item = xtree_child(pub, NS_PUBSUB, "item");
	const struct xtree_node *payload = xtree_child(item, NULL, NULL);
	const char *node, *id;
	struct sm_buf b = { .max = SM_PEP_PAYLOAD_MAX };
	struct pep_job *pj;
	char gen[40];

	if (q->where != SM_IQ_OWN) {
		sm_iq_error(q, "forbidden");    /* only the owner publishes (XEP-0163 §7) */
		return;
	}
	node = node_of(q, pub);
	if (!node)
		return;
	/* XEP-0060 §7.1.3.6: one item, one payload. */
	if (!item || !payload) {
		sm_iq_error_app(q, "bad-request", "<payload-required xmlns='" NS_PUBSUB_ERRORS "'/>");
		return;
	}
	if (xtree_next(item, NS_PUBSUB, "item") || xtree_next(payload, NULL, NULL)) {
		sm_iq_error_app(q, "bad-request", "<invalid-payload xmlns='" NS_PUBSUB_ERRORS "'/>");
		return;
	}
	id = xtree_attr(item, "id");
	if (id && strlen(id) > SM_PEP_NAME_MAX) {
		sm_iq_error(q, "not-acceptable");
		return;
	}
	xtree_write(payload, buf_put, &b);
	if (b.err) {
		sm_buf_free(&b);
		sm_iq_error_app(q, "not-acceptable", "<payload-too-big xmlns='" NS_PUBSUB_ERRORS "'/>");
		return;
	}
	pj = job_new(q, PEP_PUBLISH, node);
	if (!pj) {
		sm_buf_free(&b);
		sm_iq_error(q, "internal-server-error");
		return;
	}
	if (!id || !id[0]) {
		struct timespec ts;
		struct sm_pep *p = pep_get(q->sm);

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(gen, sizeof(gen), "%llx-%llx",
			 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
			 (unsigned long long)(p ? ++p->seq : 0));
		id = gen;
	}
	pj->item = strdup(id);
	pj->payload = malloc(sm_buf_used(&b) + 1);
	if (!pj->item || !pj->payload) {
		sm_buf_free(&b);
		sm_iq_ref_error(q->sm, pj->ref, "internal-server-error");
		pj->ref = NULL;
		pep_job_free(pj);
		return;
	}
	memcpy(pj->payload, sm_buf_data(&b), sm_buf_used(&b));
	pj->payload_len = sm_buf_used(&b);
	sm_buf_free(&b);
	if (!publish_options(q, xtree_child(ps, NS_PUBSUB, "publish-options"), pj)) {
		sm_iq_ref_free(pj->ref);   /* already answered */
		pj->ref = NULL;
		pep_job_free(pj);
		return;
	}
	job_submit(q, pj);
}

static void pep_items(struct sm_iq *q, const struct xtree_node *items)
{
	const char *node = node_of(q, items), *max = xtree_attr(items, "max_items");
	const struct xtree_node *it;
	struct pep_job *pj;
	size_t n = 0;

	if (!node)
		return;
	if (q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	pj = job_new(q, PEP_ITEMS, node);
	if (!pj) {
		sm_iq_error(q, "internal-server-error");
		return;
	}
	if (max) {
		char *end;
		unsigned long v = strtoul(max, &end, 10);

		if (!max[0] || *end || v == 0) {
			sm_iq_ref_error(q->sm, pj->ref, "bad-request");
			pj->ref = NULL;
			pep_job_free(pj);
			return;
		}
		pj->max_items = v > SM_PEP_MAX_ITEMS ? SM_PEP_MAX_ITEMS : (unsigned)v;
	}
	for (it = xtree_child(items, NS_PUBSUB, "item"); it; it = xtree_next(it, NS_PUBSUB, "item"))
		n++;
	if (n > SM_PEP_MAX_ITEMS ||
	    (n && !(pj->ids = calloc(n, sizeof(*pj->ids))))) {
		sm_iq_ref_error(q->sm, pj->ref, n > SM_PEP_MAX_ITEMS ? "not-acceptable"
				: "internal-server-error");
		pj->ref = NULL;
		pep_job_free(pj);
		return;
	}
	for (it = xtree_child(items, NS_PUBSUB, "item"); it; it = xtree_next(it, NS_PUBSUB, "item")) {
		const char *id = xtree_attr(it, "id");

		if (!id || !id[0] || !(pj->ids[pj->nids] = strdup(id))) {
			sm_iq_ref_error(q->sm, pj->ref, id && id[0] ? "internal-server-error"
					: "bad-request");
			pj->ref = NULL;
			pep_job_free(pj);
			return;
		}
		pj->nids++;
	}
	job_submit(q, pj);
}

static void pep_retract(struct sm_iq *q, const struct xtree_node *rt)
{
	const struct xtree_node *item = xtree_child(rt, NS_PUBSUB, "item");
	const char *node, *id = xtree_attr(item, "id"), *notify = xtree_attr(rt, "notify");
	struct pep_job *pj;

	if (q->where != SM_IQ_OWN) {
		sm_iq_error(q, "forbidden");    /* XEP-0060 §7.2.3.1 */
		return;
	}
	node = node_of(q, rt);
	if (!node)
		return;
	if (!id || !id[0] || xtree_next(item, NS_PUBSUB, "item")) {
		sm_iq_error_app(q, "bad-request", "<item-required xmlns='" NS_PUBSUB_ERRORS "'/>");
		return;
	}
	pj = job_new(q, PEP_RETRACT, node);
	if (!pj || !(pj->item = strdup(id))) {
		if (pj) {
			sm_iq_ref_free(pj->ref);
			pj->ref = NULL;
		}
		pep_job_free(pj);
		sm_iq_error(q, "internal-server-error");
		return;
	}
	pj->notify = notify && (strcmp(notify, "true") == 0 || strcmp(notify, "1") == 0);
	job_submit(q, pj);
}

void sm_pep_iq(struct sm_iq *q)
{
	const struct xtree_node *ps = q->payload, *op;

	if (q->set) {
		op = xtree_child(ps, NS_PUBSUB, "publish");
		if (op) {
			pep_publish(q, ps, op);
			return;
		}
		op = xtree_child(ps, NS_PUBSUB, "retract");
		if (op) {
			pep_retract(q, op);
			return;
		}
	} else {
		op = xtree_child(ps, NS_PUBSUB, "items");
		if (op) {
			pep_items(q, op);
			return;
		}
	}
	/* Subscriptions, node creation and configuration are not offered:
	 * PEP subscribes through presence (XEP-0163 §4.3). */
	sm_iq_error(q, "feature-not-implemented");
}

void sm_pep_owner_iq(struct sm_iq *q)
{
	const struct xtree_node *del = xtree_child(q->payload, NS_PUBSUB_OWNER, "delete");
	const struct xtree_node *conf = xtree_child(q->payload, NS_PUBSUB_OWNER, "configure");
	const struct xtree_node *op = del ? del : conf, *x;
	const char *node, *type;
	struct pep_job *pj;
	int kind;

	if (!op || (del && !q->set)) {
		sm_iq_error(q, "feature-not-implemented");
		return;
	}
	if (q->where != SM_IQ_OWN) {
		sm_iq_error(q, "forbidden");    /* XEP-0060 §8.2.3.2, §8.4.3.1 */
		return;
	}
	node = node_of(q, op);
	if (!node)
		return;
	kind = del ? PEP_DELETE : q->set ? PEP_CONFIG_SET : PEP_CONFIG_GET;
	x = xtree_child(op, NS_XDATA, "x");
	type = xtree_attr(x, "type");
	if (kind == PEP_CONFIG_SET && (!x || !type)) {
		sm_iq_error(q, "bad-request");
		return;
	}
	if (kind == PEP_CONFIG_SET && strcmp(type, "cancel") == 0) {
		sm_iq_result(q, NULL, 0);       /* §8.2.6: nothing changes */
		return;
	}
	if (kind == PEP_CONFIG_SET && strcmp(type, "submit") != 0) {
		sm_iq_error(q, "bad-request");
		return;
	}
	pj = job_new(q, kind, node);
	if (!pj) {
		sm_iq_error(q, "internal-server-error");
		return;
	}
	/* §8.2.5.3: a value the service does not support is not acceptable. */
	if (kind == PEP_CONFIG_SET &&
	    !form_read(q, x, NS_NODE_CONFIG, pj, "not-acceptable", NULL)) {
		sm_iq_ref_free(pj->ref);   /* already answered */
		pj->ref = NULL;
		pep_job_free(pj);
		return;
	}
	job_submit(q, pj);
}

/* ---- entity capabilities (XEP-0115) ------------------------------------ */

static struct sm_pep_caps *caps_find(struct sm_pep *p, const char *ver)
{
	for (size_t i = 0; i < p->ncaps; i++) {
		if (p->caps[i].shared && strcmp(p->caps[i].ver, ver) == 0) {
			p->caps[i].used = ++p->tick;
			return &p->caps[i];
		}
	}
	return NULL;
}

/* ---- last published items (XEP-0163 §4.3.2) ----------------------------- */

struct last_item {
	char *owner, *node, *id, *payload;
	size_t len;
};

struct last_job {
	struct sm_job job;
	uint32_t link;
	uint64_t sid;
	char *requester, *full;
	char **owners;       /* requester first, then contacts it is subscribed to */
	size_t nowners;
	struct last_item *items;
	size_t nitems, cap;
};

static void last_job_free(struct last_job *lj)
{
	for (size_t i = 0; i < lj->nowners; i++)
		free(lj->owners[i]);
	free(lj->owners);
	for (size_t i = 0; i < lj->nitems; i++) {
		free(lj->items[i].owner);
		free(lj->items[i].node);
		free(lj->items[i].id);
		free(lj->items[i].payload);
	}
	free(lj->items);
	free(lj->requester);
	free(lj->full);
	free(lj);
}

static void last_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] =
		"SELECT n.node, n.access, p.id, p.payload FROM pep_node n JOIN pep p"
		" ON p.user = n.user AND p.node = n.node WHERE n.user = ?1 AND p.seq ="
		" (SELECT MAX(seq) FROM pep WHERE user = n.user AND node = n.node)";
	static const char sql_blocked[] =
		"SELECT 1 FROM blocklist WHERE user = ?1 AND jid IN (?2, ?3, ?4)";
	struct last_job *lj = (struct last_job *)j;
	const char *at = strchr(lj->requester, '@');
	size_t total = 0;

	for (size_t o = 0; o < lj->nowners; o++) {
		sqlite3_stmt *q = sm_db_stmt(db, sql_blocked);
		int rc;

		if (!q) {
			j->rc = -EIO;
			return;
		}
		/* XEP-0163 §4.3.4: nothing for those the owner blocked (XEP-0191). */
		sm_db_text(q, 1, lj->owners[o]);
		sm_db_text(q, 2, lj->full);
		sm_db_text(q, 3, lj->requester);
		sm_db_text(q, 4, at ? at + 1 : lj->requester);
		rc = sqlite3_step(q);
		sm_db_done(q);
		if (rc == SQLITE_ROW)
			continue;
		q = sm_db_stmt(db, sql);
		if (!q) {
			j->rc = -EIO;
			return;
		}
		sm_db_text(q, 1, lj->owners[o]);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			const char *node = (const char *)sqlite3_column_text(q, 0);
			const char *access = (const char *)sqlite3_column_text(q, 1);
			const char *id = (const char *)sqlite3_column_text(q, 2);
			const void *payload = sqlite3_column_blob(q, 3);
			size_t len = (size_t)sqlite3_column_bytes(q, 3);
			struct last_item *it;

			int model = access_parse(access ? access : "");

			/* Visible by the node's access model, read in the owner's
			 * roster (the requester's `to` may not be mirrored there). */
			if (model < 0 || db_may_read(db, lj->owners[o], lj->requester, model) != PEP_OK)
				continue;
			if (!node || !id || total + len > SM_PEP_OUT_MAX)
				continue;
			if (lj->nitems == lj->cap) {
				size_t ncap = lj->cap ? lj->cap * 2 : 8;
				void *n = realloc(lj->items, ncap * sizeof(*lj->items));

				if (!n)
					break;
				lj->items = n;
				lj->cap = ncap;
			}
			it = &lj->items[lj->nitems];
			it->owner = strdup(lj->owners[o]);
			it->node = strdup(node);
			it->id = strdup(id);
			it->payload = malloc(len + 1);
			it->len = len;
			if (!it->owner || !it->node || !it->id || !it->payload) {
				free(it->owner);
				free(it->node);
				free(it->id);
				free(it->payload);
				break;
			}
			if (len)
				memcpy(it->payload, payload, len);
			lj->nitems++;
			total += len;
		}
		sm_db_done(q);
	}
	j->rc = 0;
}

static void last_done(struct sm *sm, struct sm_job *j)
{
	struct last_job *lj = (struct last_job *)j;
	struct sm_link *l = sm_link_by_id(sm, lj->link);
	struct sm_session *s = l ? sm_session_by_sid(l, lj->sid) : NULL;
	struct sm_pep *p = pep_get(sm);
	struct sm_buf body = { .max = SM_PEP_OUT_MAX };

	if (s && p && s->state == SM_SESS_BOUND && s->available && s->priority >= 0) {
		for (size_t i = 0; i < lj->nitems; i++) {
			struct last_item *it = &lj->items[i];

			if (!caps_wants(s, it->node))
				continue;
			sm_buf_clear(&body);
			event_items(&body, it->node, it->id, it->payload, it->len);
			if (!body.err)
				notify_one(sm, p, s, it->owner, (const char *)sm_buf_data(&body),
					   sm_buf_used(&body));
		}
	}
	sm_buf_free(&body);
	last_job_free(lj);
}

/* Queue the read of the last items s may see: its own account's and those of
 * the contacts it is subscribed to (subscription to/both). */
static void last_send(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;
	struct last_job *lj = calloc(1, sizeof(*lj));

	if (!lj || !u)
		goto fail;
	lj->job.run = last_run;
	lj->job.done = last_done;
	lj->link = s->link->id;
	lj->sid = s->sid;
	lj->requester = strdup(s->bare);
	lj->full = strdup(s->full);
	lj->owners = calloc(u->nroster + 1, sizeof(*lj->owners));
	if (!lj->requester || !lj->full || !lj->owners)
		goto fail;
	lj->owners[lj->nowners] = strdup(s->bare);
	if (!lj->owners[lj->nowners++])
		goto fail;
	for (size_t i = 0; i < u->nroster; i++) {
		const struct sm_roster_item *it = &u->roster[i];

		if (!(it->sub & SM_SUB_TO) || strcmp(it->contact, s->bare) == 0)
			continue;
		lj->owners[lj->nowners] = strdup(it->contact);
		if (!lj->owners[lj->nowners++])
			goto fail;
	}
	sm_store_submit(sm->store, &lj->job);
	return;
fail:
	log_warn("out of memory sending last published items", "jid=\"%s\"", s->full);
	if (lj)
		last_job_free(lj);
}

/* Ask s what ver means: <iq type='get' from=domain><query node='node#ver'/>. */
static void caps_query(struct sm *sm, struct sm_pep *p, struct sm_session *s, const char *node,
		       const char *ver, const char *hash)
{
	struct pep_query *pq;
	const char *domain = strchr(s->bare, '@');
	char id[40];

	for (size_t i = 0; i < p->nqueries; i++)
		if (p->queries[i].link == s->link->id && p->queries[i].sid == s->sid &&
		    strcmp(p->queries[i].ver, ver) == 0)
			return;     /* already asked */
	if (p->nqueries == SM_PEP_QUERIES_MAX) {
		/* Forget the queries of sessions that ended unanswered. */
		for (size_t i = 0; i < p->nqueries;) {
			struct sm_link *l = sm_link_by_id(sm, p->queries[i].link);

			if (l && sm_session_by_sid(l, p->queries[i].sid)) {
				i++;
				continue;
			}
			free(p->queries[i].ver);
			p->queries[i] = p->queries[--p->nqueries];
		}
	}
	if (p->nqueries == SM_PEP_QUERIES_MAX) {
		log_debug("caps query not sent: too many in flight", "jid=\"%s\"", s->full);
		return;
	}
	pq = &p->queries[p->nqueries];
	pq->ver = strdup(ver);
	if (!pq->ver)
		return;
	pq->hash = strcmp(hash, "sha-1") == 0 ? 0 : strcmp(hash, "sha-256") == 0 ? 1 : -1;
	pq->seq = ++p->seq;
	pq->link = s->link->id;
	pq->sid = s->sid;
	p->nqueries++;
	domain = domain ? domain + 1 : s->bare;
	snprintf(id, sizeof(id), "pep-caps-%llu", (unsigned long long)pq->seq);
	sm_buf_clear(&p->out);
	sm_buf_fmt(&p->out, "<iq type='get' id='%s' from='", id);
	sm_buf_esc(&p->out, domain, strlen(domain));
	sm_buf_str(&p->out, "' to='");
	sm_buf_esc(&p->out, s->full, s->full_len);
	sm_buf_str(&p->out, "'><query xmlns='" NS_DISCO_INFO "' node='");
	sm_buf_esc(&p->out, node, strlen(node));
	sm_buf_str(&p->out, "#");
	sm_buf_esc(&p->out, ver, strlen(ver));
	sm_buf_str(&p->out, "'/></iq>");
	if (!p->out.err)
		sm_deliver(sm, s, WIRE_KIND_IQ, sm_ws("get"), sm_ws(s->full), sm_ws(domain), sm_ws(id),
			   sm_ws(NS_DISCO_INFO), sm_buf_data(&p->out), sm_buf_used(&p->out));
}

void sm_pep_presence(struct sm *sm, struct sm_session *s, const void *raw, size_t len,
		     bool initial)
{
	struct sm_pep *p = pep_get(sm);
	const struct sm_pep_caps *prev = caps_of(s);
	struct sm_pep_caps *now;
	const struct xtree_node *c;
	const char *node, *ver, *hash;
	struct xtree *t;
	int err;

	if (!p)
		return;
	caps_set(s, NULL);
	s->pep_last_pending = false;
	t = xtree_parse(raw, len, XTREE_CTX_C2S, NULL, &err);
	c = t ? xtree_child(xtree_root(t), NS_CAPS, "c") : NULL;
	node = xtree_attr(c, "node");
	ver = xtree_attr(c, "ver");
	hash = xtree_attr(c, "hash");
	if (!node || !ver || !ver[0] || !hash || strlen(ver) > SM_PEP_NAME_MAX ||
	    strlen(node) > SM_PEP_NAME_MAX) {
		xtree_free(t);      /* no capabilities: no +notify, no notifications */
		return;
	}
	/* The last items go out at the initial presence and whenever the
	 * capabilities (so the +notify interests) change; for a version not
	 * known yet, once its disco#info answer is in. */
	now = caps_find(p, ver);
	caps_set(s, now);
	if (!now) {
		s->pep_last_pending = true;
		caps_query(sm, p, s, node, ver, hash);
	} else if (initial || now != prev) {
		last_send(sm, s);
	}
	xtree_free(t);
}

/* ---- verification string (XEP-0115 §5.1, §5.4) -------------------------- */

struct strv {
	char **v;
	size_t n, cap;
	bool owned;          /* v[i] were allocated here */
};

static int strv_add(struct strv *a, char *str)
{
	if (!str)
		return -1;
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		char **nv = realloc(a->v, ncap * sizeof(*nv));

		if (!nv) {
			if (a->owned)
				free(str);
			return -1;
		}
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = str;
	return 0;
}

static void strv_free(struct strv *a)
{
	if (a->owned)
		for (size_t i = 0; i < a->n; i++)
			free(a->v[i]);
	free(a->v);
}

static int strv_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void strv_sort(struct strv *a)
{
	if (a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), strv_cmp);
}

/*
 * Sort keys are built with CAPS_SEP (a byte XML text cannot hold) between
 * their parts, so that octet order of the keys is the order of the first
 * part, then the next...; caps_put() turns CAPS_SEP into the separator S
 * uses.
 */
#define CAPS_SEP '\x01'

/* Sort (octet order); false when two have the same first part (up to CAPS_SEP;
 * §5.4 3.3-3.5: duplicates make the answer ill-formed). */
static bool strv_sort_unique(struct strv *a, bool whole)
{
	strv_sort(a);
	for (size_t i = 1; i < a->n; i++) {
		size_t n = whole ? strlen(a->v[i]) + 1 : strcspn(a->v[i], "\x01");

		if (strncmp(a->v[i - 1], a->v[i], n) == 0 && (whole || a->v[i - 1][n] == CAPS_SEP))
			return false;
	}
	return true;
}

static void caps_put(struct sm_buf *b, const char *key, char sep)
{
	for (const char *p = key; *p; p++)
		sm_buf_add(b, *p == CAPS_SEP ? &sep : p, 1);
}

/* One extended-information form as S wants it: FORM_TYPE "<" then the
 * fields by var, each var "<" and its values sorted, each "<".  NULL when
 * the form has no hidden FORM_TYPE (ignored) or on failure (*bad). */
static char *caps_form(const struct xtree_node *x, bool *bad)
{
	struct strv fields = { .owned = true };
	struct sm_buf b = { .max = SM_PEP_OUT_MAX };
	const char *form_type = NULL;
	char *out = NULL;

	for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
	     f = xtree_next(f, NS_XDATA, "field")) {
		const char *var = xtree_attr(f, "var");
		struct strv vals = { .owned = false };
		struct sm_buf fb = { .max = SM_PEP_OUT_MAX };

		if (!var)
			continue;
		if (strcmp(var, "FORM_TYPE") == 0) {
			const char *type = xtree_attr(f, "type");

			if (form_type || !type || strcmp(type, "hidden") != 0)
				goto done;
			form_type = xtree_text(xtree_child(f, NS_XDATA, "value"));
			continue;
		}
		for (const struct xtree_node *v = xtree_child(f, NS_XDATA, "value"); v;
		     v = xtree_next(v, NS_XDATA, "value"))
			if (strv_add(&vals, (char *)xtree_text(v)) < 0)
				goto oom;
		strv_sort(&vals);
		sm_buf_str(&fb, var);
		sm_buf_add(&fb, "\x01", 1);
		for (size_t i = 0; i < vals.n; i++) {
			sm_buf_str(&fb, vals.v[i]);
			sm_buf_add(&fb, "\x01", 1);
		}
		sm_buf_add(&fb, "", 1);
		strv_free(&vals);
		if (fb.err || strv_add(&fields, strdup((const char *)sm_buf_data(&fb))) < 0) {
			sm_buf_free(&fb);
			goto oom;
		}
		sm_buf_free(&fb);
		continue;
oom:
		strv_free(&vals);
		*bad = true;
		goto done;
	}
	if (!form_type)
		goto done;
	strv_sort(&fields);
	sm_buf_str(&b, form_type);
	sm_buf_add(&b, "\x01", 1);
	for (size_t i = 0; i < fields.n; i++)
		sm_buf_str(&b, fields.v[i]);
	sm_buf_add(&b, "", 1);
	out = b.err ? NULL : strdup((const char *)sm_buf_data(&b));
	if (!out)
		*bad = true;
done:
	strv_free(&fields);
	sm_buf_free(&b);
	return out;
}

bool sm_pep_caps_verify(const char *hash, const char *ver, const struct xtree_node *query)
{
	struct strv ids = { .owned = true }, feats = { .owned = false }, forms = { .owned = true };
	struct sm_buf b = { .max = SM_PEP_OUT_MAX };
	uint8_t digest[CRYPTO_MAX_DIGEST];
	char b64[64];
	bool ok = false, bad = false;
	long n;
	int h;

	if (strcmp(hash, "sha-1") == 0)
		h = CRYPTO_SHA1;
	else if (strcmp(hash, "sha-256") == 0)
		h = CRYPTO_SHA256;
	else
		return false;   /* §5.4 2.1: an unsupported hash is not cached */
	for (const struct xtree_node *i = xtree_child(query, NS_DISCO_INFO, "identity"); i;
	     i = xtree_next(i, NS_DISCO_INFO, "identity")) {
		const char *cat = xtree_attr(i, "category"), *type = xtree_attr(i, "type");
		const char *lang = xtree_attr_ns(i, XTREE_NS_XML, "lang"), *name = xtree_attr(i, "name");
		char *str;

		if (asprintf(&str, "%s\x01%s\x01%s\x01%s", cat ? cat : "", type ? type : "", lang ? lang : "",
			     name ? name : "") < 0 || strv_add(&ids, str) < 0)
			goto done;
	}
	for (const struct xtree_node *f = xtree_child(query, NS_DISCO_INFO, "feature"); f;
	     f = xtree_next(f, NS_DISCO_INFO, "feature")) {
		const char *var = xtree_attr(f, "var");

		if (var && strv_add(&feats, (char *)var) < 0)
			goto done;
	}
	for (const struct xtree_node *x = xtree_child(query, NS_XDATA, "x"); x;
	     x = xtree_next(x, NS_XDATA, "x")) {
		char *form = caps_form(x, &bad);

		if (bad || (form && strv_add(&forms, form) < 0))
			goto done;
	}
	if (!strv_sort_unique(&ids, true) || !strv_sort_unique(&feats, true) ||
	    !strv_sort_unique(&forms, false))
		goto done;
	for (size_t i = 0; i < ids.n; i++) {
		caps_put(&b, ids.v[i], '/');
		sm_buf_str(&b, "<");
	}
	for (size_t i = 0; i < feats.n; i++) {
		sm_buf_str(&b, feats.v[i]);
		sm_buf_str(&b, "<");
	}
	for (size_t i = 0; i < forms.n; i++)
		caps_put(&b, forms.v[i], '<');
	if (b.err || crypto_hash(h, sm_buf_data(&b), sm_buf_used(&b), digest) < 0)
		goto done;
	n = crypto_b64_encode(digest, crypto_digest_len(h), b64, sizeof(b64));
	ok = n > 0 && strlen(ver) == (size_t)n && memcmp(ver, b64, (size_t)n) == 0;
done:
	strv_free(&ids);
	strv_free(&feats);
	strv_free(&forms);
	sm_buf_free(&b);
	return ok;
}

/* Keep the +notify features of a disco#info answer as ver's entry. */
static struct sm_pep_caps *caps_learn(struct sm_pep *p, const char *ver, const char *hash,
				      const struct xtree_node *query)
{
	struct sm_buf b = { .max = SM_PEP_FEATURES_MAX };
	struct sm_pep_caps *c;

	sm_buf_str(&b, "\n");
	for (const struct xtree_node *f = xtree_child(query, NS_DISCO_INFO, "feature"); f;
	     f = xtree_next(f, NS_DISCO_INFO, "feature")) {
		const char *var = xtree_attr(f, "var");
		size_t n = var ? strlen(var) : 0;

		if (n > 7 && strcmp(var + n - 7, "+notify") == 0 && !memchr(var, '\n', n)) {
			sm_buf_add(&b, var, n - 7);
			sm_buf_str(&b, "\n");
		}
	}
	char *v, *notify;

	sm_buf_add(&b, "", 1);
	v = b.err ? NULL : strdup(ver);
	notify = b.err ? NULL : strdup((const char *)sm_buf_data(&b));
	sm_buf_free(&b);
	if (!v || !notify) {
		free(v);
		free(notify);
		return NULL;
	}
	if (p->ncaps < SM_PEP_CAPS_MAX) {
		c = &p->caps[p->ncaps++];
	} else {
		c = &p->caps[0];
		for (size_t i = 1; i < p->ncaps; i++)
			if (p->caps[i].used < c->used)
				c = &p->caps[i];
	}
	free(c->ver);
	free(c->notify);
	c->gen++;
	c->used = ++p->tick;
	c->ver = v;
	c->notify = notify;
	/* §5.4: an answer that does not hash to ver is used for its sender only. */
	c->shared = hash && sm_pep_caps_verify(hash, ver, query);
	return c;
}

bool sm_pep_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	struct sm_pep *p = sm->pep;
	const struct wire_str *id = &m->u.stanza.id;
	struct sm_pep_caps *c;
	struct pep_query pq;
	unsigned long long seq;
	char buf[40];
	size_t i;
	bool result = m->u.stanza.type.len == 6 && memcmp(m->u.stanza.type.p, "result", 6) == 0;

	if (!p || id->len < 10 || id->len >= sizeof(buf) || memcmp(id->p, "pep-caps-", 9) != 0)
		return false;
	memcpy(buf, id->p, id->len);
	buf[id->len] = '\0';
	seq = strtoull(buf + 9, NULL, 10);
	for (i = 0; i < p->nqueries; i++)
		if (p->queries[i].seq == seq && p->queries[i].link == s->link->id &&
		    p->queries[i].sid == s->sid)
			break;
	if (i == p->nqueries)
		return false;
	pq = p->queries[i];
	p->queries[i] = p->queries[--p->nqueries];
	c = caps_find(p, pq.ver);
	if (!c && result) {
		int err;
		struct xtree *t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len,
					      XTREE_CTX_C2S, NULL, &err);
		const struct xtree_node *q = t ? xtree_child(xtree_root(t), NS_DISCO_INFO, "query")
						: NULL;

		if (q)
			c = caps_learn(p, pq.ver, pq.hash < 0 ? NULL : pq.hash ? "sha-256" : "sha-1",
				       q);
		if (c)
			log_debug("entity capabilities learned", "jid=\"%s\" verified=%s", s->full,
				  c->shared ? "yes" : "no");
		xtree_free(t);
	}
	/* Applies only while s still announces a ver it was asked about (a later
	 * presence without capabilities cleared pep_last_pending). */
	if (s->pep_last_pending) {
		caps_set(s, c);
		if (c && s->available)
			last_send(sm, s);
	}
	s->pep_last_pending = false;
	free(pq.ver);
	return true;
}
