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
 * event only when its entity capabilities (XEP-0115, sm/caps.c) list
 * node+notify.  sm_pep_presence() hands a session's presence to sm/caps.c
 * and sm_pep_iq_answer() the answers to its disco#info queries.  When a
 * resource sends its initial presence, or changes its capabilities, the last
 * published item of each node it may see and wants is sent to it (§4.3.2,
 * "last published item"), once its capabilities are known.
 *
 * Bounds: node names and item ids SM_PEP_NAME_MAX bytes, payloads
 * SM_PEP_PAYLOAD_MAX, SM_PEP_MAX_NODES nodes per account, SM_PEP_MAX_ITEMS
 * items per node, SM_PEP_OUT_MAX bytes per answer or last-items batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/xtree.h"
#include "sm/iq.h"
#include "sm/nodes.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define NS_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"
#define NS_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define NS_XDATA "jabber:x:data"

#define SM_PEP_NAME_MAX 256
#define SM_PEP_PAYLOAD_MAX (128u * 1024)
#define SM_PEP_MAX_NODES 128
#define SM_PEP_MAX_ITEMS 256
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

struct sm_pep {
	uint64_t seq;        /* notification ids, generated item ids */
	struct sm_buf out;   /* notifications being built */
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

	sm_caps_free(sm);      /* the capabilities cache serves PEP alone */
	if (!p)
		return;
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
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		const char *a = sm_db_col_text(q, 0);

		*access = access_parse(a ? a : "");
		if (*access < 0)
			*access = PEP_WHITELIST;   /* unknown: the safest reading */
		*max = (int)sm_db_col_int64(q, 1);
	}
	sm_db_done(q);
	if (rc == SM_ROW)
		return 1;
	return rc == SM_DONE ? 0 : sm_db_fail(db, "pep node");
}

/* May requester read owner's node with this access model?  PEP_OK or an error. */
static int db_may_read(struct sm_db *db, const char *owner, const char *requester, int access)
{
	static const char sql[] = "SELECT subscription FROM roster WHERE user = ?1 AND contact = ?2";
	sm_stmt *q;
	bool from = false;
	int rc;

	if (strcmp(owner, requester) == 0 || access == PEP_OPEN)
		return PEP_OK;
	if (access == PEP_WHITELIST)
		return PEP_E_CLOSED;
	q = sm_db_stmt(db, sql);
	if (!q)
		return PEP_E_STORE;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, requester);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		const char *sub = sm_db_col_text(q, 0);

		from = sub && (strcmp(sub, "from") == 0 || strcmp(sub, "both") == 0);
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE) {
		sm_db_fail(db, "pep roster");
		return PEP_E_STORE;
	}
	return from ? PEP_OK : PEP_E_PRESENCE;
}

static int db_count_nodes(struct sm_db *db, const char *owner)
{
	static const char sql[] = "SELECT COUNT(*) FROM pep_node WHERE user = ?1";
	sm_stmt *q = sm_db_stmt(db, sql);
	int n = -1;

	if (!q)
		return -1;
	sm_db_bind_text(q, 1, owner);
	if (sm_db_step(q) == SM_ROW)
		n = (int)sm_db_col_int64(q, 0);
	sm_db_done(q);
	return n;
}

/* Write owner's node row with sql, an INSERT or UPDATE of pep_node binding
 * ?1 user, ?2 node, ?3 access, ?4 max_items; what names it in the log.
 * PEP_OK or PEP_E_STORE. */
static int db_node_put(struct sm_db *db, const char *sql, const char *what, const char *owner,
		       const char *node, int access, int max)
{
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return PEP_E_STORE;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	sm_db_bind_text(q, 3, pep_access_names[access]);
	sm_db_bind_int64(q, 4, max);
	return sm_db_exec(db, q, what) < 0 ? PEP_E_STORE : PEP_OK;
}

/* Keep the newest max items of owner's node (sm/nodes.c). */
static int db_trim(struct sm_db *db, const char *owner, const char *node, int max)
{
	return sm_nodes_trim(db, owner, node, max) < 0 ? PEP_E_STORE : PEP_OK;
}

static int run_publish(struct sm_db *db, struct pep_job *pj)
{
	static const char sql_node[] =
		"INSERT INTO pep_node (user, node, access, max_items) VALUES (?1, ?2, ?3, ?4)";
	int access = PEP_PRESENCE, max = 1, n;

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
	return sm_nodes_add_item(db, pj->owner, pj->node, pj->item, pj->payload, pj->payload_len,
				 max) < 0 ? PEP_E_STORE : PEP_OK;
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

static int run_items(struct sm_db *db, struct pep_job *pj)
{
	struct sm_buf *b = &pj->out;
	int access, max, n, rc;

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
	n = sm_nodes_items(db, pj->owner, pj->node, pj->ids, pj->nids, pj->max_items, b, SM_PEP_OUT_MAX);
	if (n < 0)
		return PEP_E_STORE;
	if (pj->nids && !n)
		return PEP_E_NO_ITEM;   /* XEP-0060 §6.5.8: none of the requested items exists */
	sm_buf_str(b, "</items></pubsub>");
	return b->err ? PEP_E_STORE : PEP_OK;
}

static int run_retract(struct sm_db *db, struct pep_job *pj)
{
	int access, max, n;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	pj->access = access;
	n = sm_nodes_retract(db, pj->owner, pj->node, pj->item);
	return n < 0 ? PEP_E_STORE : n ? PEP_OK : PEP_E_NO_ITEM;
}

static int run_delete(struct sm_db *db, struct pep_job *pj)
{
	static const char sql_node[] = "DELETE FROM pep_node WHERE user = ?1 AND node = ?2";
	int access, max, n;
	sm_stmt *q;

	n = db_node(db, pj->owner, pj->node, &access, &max);
	if (n <= 0)
		return n < 0 ? PEP_E_STORE : PEP_E_NO_NODE;
	pj->access = access;
	if (sm_nodes_purge(db, pj->owner, pj->node) < 0)
		return PEP_E_STORE;
	q = sm_db_stmt(db, sql_node);
	if (!q)
		return PEP_E_STORE;
	sm_db_bind_text(q, 1, pj->owner);
	sm_db_bind_text(q, 2, pj->node);
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
	return t->available && t->priority >= 0 && sm_caps_wants(t, node) && !blocked(owner, t);
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
	pj->requester = strdup(q->from_bare);   /* a local account or an external JID */
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
		sm_stmt *q = sm_db_stmt(db, sql_blocked);
		int rc;

		if (!q) {
			j->rc = -EIO;
			return;
		}
		/* XEP-0163 §4.3.4: nothing for those the owner blocked (XEP-0191). */
		sm_db_bind_text(q, 1, lj->owners[o]);
		sm_db_bind_text(q, 2, lj->full);
		sm_db_bind_text(q, 3, lj->requester);
		sm_db_bind_text(q, 4, at ? at + 1 : lj->requester);
		rc = sm_db_step(q);
		sm_db_done(q);
		if (rc == SM_ROW)
			continue;
		q = sm_db_stmt(db, sql);
		if (!q) {
			j->rc = -EIO;
			return;
		}
		sm_db_bind_text(q, 1, lj->owners[o]);
		while ((rc = sm_db_step(q)) == SM_ROW) {
			const char *node = sm_db_col_text(q, 0);
			const char *access = sm_db_col_text(q, 1);
			const char *id = sm_db_col_text(q, 2);
			const void *payload = sm_db_col_blob(q, 3);
			size_t len = sm_db_col_bytes(q, 3);
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

			if (!sm_caps_wants(s, it->node))
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


/* ---- entity capabilities (sm/caps.c) ------------------------------------ */

void sm_pep_presence(struct sm *sm, struct sm_session *s, const void *raw, size_t len,
		     bool initial)
{
	/* The last items go out at the initial presence and whenever the
	 * capabilities (so the +notify interests) change; for a version not
	 * known yet, once its disco#info answer is in (sm_pep_iq_answer()). */
	switch (sm_caps_presence(sm, s, raw, len)) {
	case SM_CAPS_SAME:
		if (initial)
			last_send(sm, s);
		break;
	case SM_CAPS_NEW:
		last_send(sm, s);
		break;
	default:
		break;
	}
}

bool sm_pep_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	bool known;

	if (!sm_caps_iq_answer(sm, s, m, &known))
		return false;
	if (known && s->available)
		last_send(sm, s);
	return true;
}
