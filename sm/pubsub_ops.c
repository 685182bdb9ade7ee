/*
 * pubsub_ops — the XEP-0060 actions of the PubSub service (sm/pubsub.c):
 * create, configure, default, delete, purge, publish, retract, items,
 * subscribe, unsubscribe, subscription options, and the owners' management
 * of subscriptions and affiliations; the storage jobs behind items, publish,
 * retract, purge and the presence / roster access checks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "sm/nodes.h"
#include "sm/pubsub_int.h"

/* ---- requests ------------------------------------------------------------- */


static bool node_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n && n <= PS_NAME_MAX && !strpbrk(s, " \t\r\n");
}

/* A form's field values into a node configuration; false on a value this
 * service does not allow.  type: the form's FORM_TYPE it must carry. */
static bool config_read(const struct xtree_node *x, const char *type, struct ps_config *c)
{
	for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
	     f = xtree_next(f, NS_XDATA, "field")) {
		const char *var = xtree_attr(f, "var");
		const char *v = xtree_text(xtree_child(f, NS_XDATA, "value"));
		int i;

		if (!var)
			return false;
		if (!strcmp(var, "FORM_TYPE")) {
			if (!v || strcmp(v, type))
				return false;
		} else if (!strcmp(var, "pubsub#access_model")) {
			if ((i = ps_name_index(ps_access_names, 5, v)) < 0)
				return false;
			c->access = (uint8_t)i;
		} else if (!strcmp(var, "pubsub#publish_model")) {
			if ((i = ps_name_index(ps_publish_names, 3, v)) < 0)
				return false;
			c->publish = (uint8_t)i;
		} else if (!strcmp(var, "pubsub#max_items")) {
			char *end;
			long n = v ? strtol(v, &end, 10) : -1;

			if (v && !strcmp(v, "max"))
				n = PS_MAX_ITEMS, end = (char *)"";
			if (!v || *end || n < 0 || n > PS_MAX_ITEMS)
				return false;
			c->max_items = (int)n;
		} else if (!strcmp(var, "pubsub#deliver_payloads") || !strcmp(var, "pubsub#notify_retract") ||
			   !strcmp(var, "pubsub#notify_delete") || !strcmp(var, "pubsub#persist_items")) {
			bool b;

			if (!v || (strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "0") && strcmp(v, "false")))
				return false;
			b = !strcmp(v, "1") || !strcmp(v, "true");
			if (!strcmp(var, "pubsub#deliver_payloads"))
				c->deliver_payloads = b;
			else if (!strcmp(var, "pubsub#notify_retract"))
				c->notify_retract = b;
			else if (!strcmp(var, "pubsub#notify_delete"))
				c->notify_delete = b;
			else if (!b)
				return false;       /* items are always kept */
		} else if (!strcmp(var, "pubsub#title")) {
			free(c->title);
			c->title = v && *v && strlen(v) <= 256 ? strdup(v) : NULL;
		} else if (!strcmp(var, "pubsub#roster_groups_allowed")) {
			free(c->roster_group);
			c->roster_group = v && *v && strlen(v) <= 256 ? strdup(v) : NULL;
		}
		/* Other fields: not offered here, ignored (XEP-0004 §3.4). */
	}
	return true;
}

static void config_form(struct sm_buf *b, const struct ps_config *c, const char *form_type)
{
	sm_buf_fmt(b, "<x xmlns='" NS_XDATA "' type='form'><field var='FORM_TYPE' type='hidden'>"
		      "<value>%s</value></field><field var='pubsub#access_model' type='list-single'>"
		      "<value>%s</value>", form_type, ps_access_names[c->access]);
	for (int i = 0; i < 5; i++)
		sm_buf_fmt(b, "<option><value>%s</value></option>", ps_access_names[i]);
	sm_buf_fmt(b, "</field><field var='pubsub#publish_model' type='list-single'><value>%s</value>",
		   ps_publish_names[c->publish]);
	for (int i = 0; i < 3; i++)
		sm_buf_fmt(b, "<option><value>%s</value></option>", ps_publish_names[i]);
	sm_buf_fmt(b, "</field><field var='pubsub#max_items' type='text-single'><value>%d</value></field>"
		      "<field var='pubsub#persist_items' type='boolean'><value>1</value></field>"
		      "<field var='pubsub#deliver_payloads' type='boolean'><value>%d</value></field>"
		      "<field var='pubsub#notify_retract' type='boolean'><value>%d</value></field>"
		      "<field var='pubsub#notify_delete' type='boolean'><value>%d</value></field>"
		      "<field var='pubsub#title' type='text-single'>", c->max_items, c->deliver_payloads,
		   c->notify_retract, c->notify_delete);
	if (c->title) {
		sm_buf_str(b, "<value>");
		sm_buf_esc(b, c->title, strlen(c->title));
		sm_buf_str(b, "</value>");
	}
	sm_buf_str(b, "</field><field var='pubsub#roster_groups_allowed' type='list-multi'>");
	if (c->roster_group) {
		sm_buf_str(b, "<value>");
		sm_buf_esc(b, c->roster_group, strlen(c->roster_group));
		sm_buf_str(b, "</value>");
	}
	sm_buf_str(b, "</field></x>");
}

/* May the requester see items / subscribe, from what is in memory: 1 yes,
 * 0 no (cond set), -1 ask the owners' rosters (presence, roster). */
static int may_read(const struct ps_node *n, const char *bare, const char **cond, const char **app)
{
	int a = ps_affil_of(n, bare);

	if (a == PF_OUTCAST) {
		*cond = "forbidden";
		*app = NULL;
		return 0;
	}
	if (a >= PF_MEMBER || n->cfg.access == PA_OPEN)
		return 1;
	switch (n->cfg.access) {
	case PA_WHITELIST:
		*cond = "not-allowed";
		*app = "closed-node";
		return 0;
	case PA_AUTHORIZE:
		*cond = "not-authorized";
		*app = "not-subscribed";
		return 0;
	default:
		return -1;
	}
}

/* ---- storage work: items, access through rosters, publish, retract --------- */


static void ps_job_free(struct ps_job *j)
{
	free(j->requester);
	free(j->bare);
	free(j->id);
	free(j->node);
	free(j->item);
	free(j->group);
	for (size_t i = 0; i < j->nowners; i++)
		free(j->owners[i]);
	free(j->owners);
	for (size_t i = 0; i < j->nids; i++)
		free(j->ids[i]);
	free(j->ids);
	free(j->payload);
	sm_buf_free(&j->out);
	free(j);
}

/* presence: an owner's roster has the requester with subscription from or
 * both; roster: and in the allowed group (XEP-0060 §4.5). */
static int roster_grants(struct sm_db *db, const struct ps_job *j)
{
	static const char sql[] = "SELECT subscription, groups FROM roster WHERE user = ?1 AND contact = ?2";

	for (size_t i = 0; i < j->nowners; i++) {
		sm_stmt *q = sm_db_stmt(db, sql);
		int rc, ok = 0;

		if (!q)
			return -EIO;
		sm_db_bind_text(q, 1, j->owners[i]);
		sm_db_bind_text(q, 2, j->bare);
		rc = sm_db_step(q);
		if (rc == SM_ROW) {
			const char *sub = sm_db_col_text(q, 0), *groups = sm_db_col_text(q, 1);

			ok = sub && (!strcmp(sub, "from") || !strcmp(sub, "both"));
			if (ok && j->group)
				ok = groups && strstr(groups, j->group) != NULL;
		}
		sm_db_done(q);
		if (rc != SM_ROW && rc != SM_DONE)
			return sm_db_fail(db, "pubsub roster"), -EIO;
		if (ok)
			return 1;
	}
	return 0;
}

static void ps_run(struct sm_db *db, struct sm_job *jj)
{
	struct ps_job *j = (struct ps_job *)jj;
	int n;

	if (j->check) {
		n = roster_grants(db, j);
		if (n < 0) {
			j->rc = -EIO;
			return;
		}
		j->allowed = n > 0;
		if (!j->allowed)
			return;
	}
	switch (j->op) {
	case OP_ITEMS:
		j->out.max = PS_OUT_MAX;
		sm_buf_str(&j->out, "<pubsub xmlns='" NS_PUBSUB "'><items node='");
		sm_buf_esc(&j->out, j->node, strlen(j->node));
		sm_buf_str(&j->out, "'>");
		n = sm_nodes_items(db, j->domain, j->node, j->ids, j->nids, j->max_items, &j->out, PS_OUT_MAX);
		if (n < 0)
			j->rc = -EIO;
		else if (j->nids && !n)
			j->rc = -ENOENT;
		sm_buf_str(&j->out, "</items></pubsub>");
		break;
	case OP_PUBLISH:
		j->rc = sm_nodes_add_item(db, j->domain, j->node, j->item, j->payload, j->payload_len, j->max);
		break;
	case OP_RETRACT:
		n = sm_nodes_retract(db, j->domain, j->node, j->item);
		j->rc = n < 0 ? -EIO : n ? 0 : -ENOENT;
		break;
	case OP_PURGE:
		j->rc = sm_nodes_purge(db, j->domain, j->node);
		break;
	}
}

/* §7.1.2: the publisher's answer (the item id), then the subscribers' events. */
static void published(struct sm *sm, struct ps_node *n, const struct ps_job *j)
{
	struct sm_buf *b = &sm->pubsub->part;

	sm_buf_clear(b);
	sm_buf_str(b, "<pubsub xmlns='" NS_PUBSUB "'><publish node='");
	sm_buf_esc(b, j->node, strlen(j->node));
	sm_buf_str(b, "'><item id='");
	sm_buf_esc(b, j->item, strlen(j->item));
	sm_buf_str(b, "'/></publish></pubsub>");
	ps_iq_ok_now(sm, j->requester, j->id, (const char *)sm_buf_data(b), sm_buf_used(b));
	if (!n)
		return;     /* deleted meanwhile */
	sm_buf_clear(b);
	sm_buf_str(b, "<items node='");
	sm_buf_esc(b, n->name, strlen(n->name));
	sm_buf_str(b, "'><item id='");
	sm_buf_esc(b, j->item, strlen(j->item));
	sm_buf_str(b, "'>");
	if (n->cfg.deliver_payloads && j->payload_len)
		sm_buf_add(b, j->payload, j->payload_len);
	sm_buf_str(b, "</item></items>");
	ps_notify(sm, n, (const char *)sm_buf_data(b), sm_buf_used(b));
	sm_buf_clear(b);
}

static void ps_done(struct sm *sm, struct sm_job *jj)
{
	struct ps_job *j = (struct ps_job *)jj;
	struct sm_pubsub *p = sm->pubsub;
	struct ps_node *n = p ? ps_node_find(p, j->node) : NULL;

	if (!p) {
		ps_job_free(j);
		return;
	}
	if (j->op == OP_PUBLISH) {
		if (j->rc < 0)
			ps_iq_error(sm, j->requester, j->id, "internal-server-error", NULL, NULL);
		else
			published(sm, n, j);
	} else if (j->op == OP_PURGE) {
		if (j->rc < 0)
			log_warn("pubsub purge failed", "node=\"%s\"", j->node);
	} else if (j->op == OP_RETRACT) {
		if (j->rc < 0) {
			ps_iq_error(sm, j->requester, j->id, j->rc == -ENOENT ? "item-not-found" :
				 "internal-server-error", NULL, NULL);
		} else {
			ps_iq_ok_now(sm, j->requester, j->id, NULL, 0);
			if (n && j->notify) {       /* §7.2.2 */
				struct sm_buf *b = &p->part;

				sm_buf_clear(b);
				sm_buf_str(b, "<items node='");
				sm_buf_esc(b, n->name, strlen(n->name));
				sm_buf_str(b, "'><retract id='");
				sm_buf_esc(b, j->item, strlen(j->item));
				sm_buf_str(b, "'/></items>");
				ps_notify(sm, n, (const char *)sm_buf_data(b), sm_buf_used(b));
			}
		}
	} else if (j->rc == -EIO) {
		ps_iq_error(sm, j->requester, j->id, "internal-server-error", NULL, NULL);
	} else if (j->check && !j->allowed) {
		ps_iq_error(sm, j->requester, j->id, "not-authorized",
			 n && n->cfg.access == PA_ROSTER ? "not-in-roster-group" : "presence-subscription-required",
			 NULL);
	} else if (j->op == OP_ITEMS) {
		if (j->rc == -ENOENT)
			ps_iq_error(sm, j->requester, j->id, "item-not-found", NULL, NULL);
		else
			ps_iq_ok_now(sm, j->requester, j->id, (const char *)sm_buf_data(&j->out), sm_buf_used(&j->out));
	} else if (j->op == OP_SUBSCRIBE) {
		struct ps_sub *s = n ? ps_sub_find(n, j->requester) : NULL;

		if (!n) {
			ps_iq_error(sm, j->requester, j->id, "item-not-found", NULL, NULL);
		} else if (!s && !(s = ps_sub_add(p, n, j->requester, false))) {
			ps_iq_error(sm, j->requester, j->id, "resource-constraint", NULL, NULL);
		} else {
			struct sm_buf *b = &p->part;

			ps_node_save(sm, n);
			sm_buf_clear(b);
			sm_buf_str(b, "<pubsub xmlns='" NS_PUBSUB "'><subscription node='");
			sm_buf_esc(b, n->name, strlen(n->name));
			sm_buf_str(b, "' jid='");
			sm_buf_esc(b, s->jid, strlen(s->jid));
			sm_buf_fmt(b, "' subid='%s' subscription='subscribed'/></pubsub>", s->subid);
			ps_iq_ok(sm, j->requester, j->id, (const char *)sm_buf_data(b), sm_buf_used(b));
		}
	}
	ps_job_free(j);
}

static struct ps_job *job_new(struct req *r, int op, const struct ps_node *n)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct ps_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->op = op;
	j->requester = strdup(r->from);
	j->bare = strdup(r->bare);
	j->id = strdup(r->id ? r->id : "");
	j->node = strdup(n->name);
	memcpy(j->domain, p->domain, p->domain_len + 1);
	j->job.run = ps_run;
	j->job.done = ps_done;
	if (!j->requester || !j->bare || !j->id || !j->node) {
		ps_job_free(j);
		return NULL;
	}
	return j;
}

/* The owners' bare JIDs and the allowed group into j: the roster check. */
static bool job_check(struct ps_job *j, const struct ps_node *n)
{
	j->check = true;
	j->owners = calloc(ps_owners(n) + 1, sizeof(*j->owners));
	if (!j->owners)
		return false;
	for (const struct ps_affil *a = n->affils; a; a = a->next)
		if (a->affil == PF_OWNER && !(j->owners[j->nowners++] = strdup(a->jid)))
			return false;
	if (n->cfg.access == PA_ROSTER && n->cfg.roster_group && !(j->group = strdup(n->cfg.roster_group)))
		return false;
	return true;
}

/* ---- actions (XEP-0060 §6 - §8) ------------------------------------------- */

static void put(void *arg, const char *s, size_t n)
{
	sm_buf_add(arg, s, n);
}

static void reply_ok(struct req *r)
{
	ps_iq_ok(r->sm, r->from, r->id, NULL, 0);
}

static void fail(struct req *r, const char *cond, const char *app)
{
	ps_iq_error(r->sm, r->from, r->id, cond, app, NULL);
}

/* The node the action names, or an error sent (NULL). */
static struct ps_node *need_node(struct req *r)
{
	struct ps_node *n;

	if (!r->node) {
		fail(r, "bad-request", "nodeid-required");
		return NULL;
	}
	n = ps_node_find(r->sm->pubsub, r->node);
	if (!n)
		fail(r, "item-not-found", NULL);
	return n;
}

static struct ps_node *need_owner(struct req *r)
{
	struct ps_node *n = need_node(r);

	if (n && ps_affil_of(n, r->bare) != PF_OWNER) {
		fail(r, "forbidden", NULL);
		return NULL;
	}
	return n;
}

/* A new node `name` owned by the requester, configured by form x (when
 * given, of FORM_TYPE form_type), saved; NULL with the error sent (a form
 * value refused: cond / app). */
static struct ps_node *node_create(struct req *r, const char *name, const struct xtree_node *x,
				   const char *form_type, const char *cond, const char *app)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct ps_node *n = ps_node_new(p, name);
	struct ps_config c;

	if (!n || ps_affil_set(n, r->bare, PF_OWNER) < 0) {
		if (n)
			ps_node_free(p, n);
		fail(r, "resource-constraint", NULL);
		return NULL;
	}
	c = n->cfg;
	if (x && !config_read(x, form_type, &c)) {
		free(c.title);
		free(c.roster_group);
		ps_node_free(p, n);
		fail(r, cond, app);
		return NULL;
	}
	n->cfg = c;
	ps_node_save(r->sm, n);
	return n;
}

/* §8.1: create, with the configuration given next to it. */
static void do_create(struct req *r, const struct xtree_node *configure)
{
	struct sm_pubsub *p = r->sm->pubsub;
	const struct xtree_node *x = xtree_child(configure, NS_XDATA, "x");
	char instant[40];
	const char *name = r->node;
	struct ps_node *n;

	if (!name) {
		/* §8.1.2 instant node: a name of ours. */
		snprintf(instant, sizeof(instant), "node-%016llx", (unsigned long long)++p->seq * 0x9e3779b97f4a7c15ull);
		name = instant;
	}
	if (!node_name_ok(name)) {
		fail(r, "not-acceptable", NULL);
		return;
	}
	if (ps_node_find(p, name)) {
		fail(r, "conflict", NULL);          /* §8.1.3 */
		return;
	}
	if (!(n = node_create(r, name, x, NS_NODE_CONFIG, "not-acceptable", "unsupported-access-model")))
		return;
	if (r->node) {
		reply_ok(r);
	} else {
		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB "'><create node='");
		sm_buf_esc(&p->part, name, strlen(name));
		sm_buf_str(&p->part, "'/></pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
	}
	log_info("pubsub node created", "node=\"%s\" owner=\"%s\"", name, r->bare);
}

/* §7.1: publish, with publish-options as preconditions (§7.1.5). */
static void do_publish(struct req *r, const struct xtree_node *options)
{
	struct sm_pubsub *p = r->sm->pubsub;
	const struct xtree_node *item = xtree_child(r->el, NS_PUBSUB, "item");
	const struct xtree_node *opts = xtree_child(options, NS_XDATA, "x");
	struct ps_node *n;
	struct ps_job *j;
	char gen[40], *payload = NULL;
	const char *id;
	size_t len = 0;
	int a;

	if (!r->node) {
		fail(r, "bad-request", "nodeid-required");
		return;
	}
	if (!item || xtree_next(item, NS_PUBSUB, "item") || (item->first && item->first->next)) {
		fail(r, "bad-request", item ? "invalid-payload" : "item-required");
		return;
	}
	n = ps_node_find(p, r->node);
	if (!n) {
		/* §7.1.4 auto-create: the publisher owns the new node. */
		if (!node_name_ok(r->node)) {
			fail(r, "not-acceptable", NULL);
			return;
		}
		if (!(n = node_create(r, r->node, opts, NS_PUBLISH_OPTIONS, "conflict", "precondition-not-met")))
			return;
	} else if (opts) {
		struct ps_config want = n->cfg;

		want.title = want.roster_group = NULL;
		if (!config_read(opts, NS_PUBLISH_OPTIONS, &want) || want.access != n->cfg.access ||
		    want.publish != n->cfg.publish || want.max_items != n->cfg.max_items) {
			free(want.title);
			free(want.roster_group);
			fail(r, "conflict", "precondition-not-met");
			return;
		}
		free(want.title);
		free(want.roster_group);
	}
	a = ps_affil_of(n, r->bare);
	if (a == PF_OUTCAST || (a < PF_PUBLISH_ONLY &&
				!(n->cfg.publish == PP_OPEN ||
				  (n->cfg.publish == PP_SUBSCRIBERS && ps_sub_find(n, r->from))))) {
		fail(r, "forbidden", NULL);          /* §7.1.3.1 */
		return;
	}
	id = xtree_attr(item, "id");
	if (!id || !*id) {
		snprintf(gen, sizeof(gen), "%016llx", (unsigned long long)++p->seq * 0x9e3779b97f4a7c15ull);
		id = gen;
	}
	if (strlen(id) > PS_NAME_MAX) {
		fail(r, "not-acceptable", NULL);
		return;
	}
	if (item->first) {
		sm_buf_clear(&p->part);
		xtree_write(item->first, put, &p->part);
		if (p->part.err || sm_buf_used(&p->part) > PS_PAYLOAD_MAX) {
			p->part.err = 0;
			fail(r, "not-acceptable", "payload-too-big");
			return;
		}
		len = sm_buf_used(&p->part);
		payload = sm_memdup_z(sm_buf_data(&p->part), len);
	}
	j = job_new(r, OP_PUBLISH, n);
	if (!j || (len && !payload) || !(j->item = strdup(id))) {
		free(payload);
		if (j)
			ps_job_free(j);
		fail(r, "resource-constraint", NULL);
		return;
	}
	j->payload = payload;
	j->payload_len = len;
	j->max = n->cfg.max_items;
	/* Answered and notified once stored (ps_done): what the publisher hears
	 * succeeded and what subscribers are told about is on disk. */
	sm_store_submit(r->sm->store, &j->job);
}

/* §7.2: retract (publishers and owners; publish-only may retract its own,
 * which this service does not tell apart: publishers and owners). */
static void do_retract(struct req *r)
{
	const struct xtree_node *item = xtree_child(r->el, NS_PUBSUB, "item");
	const char *id = xtree_attr(item, "id"), *nt = xtree_attr(r->el, "notify");
	struct ps_node *n = need_node(r);
	struct ps_job *j;

	if (!n)
		return;
	if (!id || !*id) {
		fail(r, "bad-request", "item-required");
		return;
	}
	if (ps_affil_of(n, r->bare) < PF_PUBLISH_ONLY) {
		fail(r, "forbidden", NULL);
		return;
	}
	j = job_new(r, OP_RETRACT, n);
	if (!j || !(j->item = strdup(id))) {
		if (j)
			ps_job_free(j);
		fail(r, "resource-constraint", NULL);
		return;
	}
	j->notify = n->cfg.notify_retract || (nt && (!strcmp(nt, "true") || !strcmp(nt, "1")));
	sm_store_submit(r->sm->store, &j->job);
}

/* §6.5: items, all, the newest max_items, or by id. */
static void do_items(struct req *r)
{
	struct ps_node *n = need_node(r);
	const char *cond = NULL, *app = NULL, *mi;
	struct ps_job *j;
	int may;

	if (!n)
		return;
	may = may_read(n, r->bare, &cond, &app);
	if (!may && n->cfg.access == PA_AUTHORIZE) {
		struct ps_sub *s = ps_sub_find(n, r->from);

		if (!s)
			s = ps_sub_find(n, r->bare);
		may = s && !s->pending;
	}
	if (!may) {
		fail(r, cond, app);
		return;
	}
	j = job_new(r, OP_ITEMS, n);
	if (!j || (may < 0 && !job_check(j, n))) {
		if (j)
			ps_job_free(j);
		fail(r, "resource-constraint", NULL);
		return;
	}
	if ((mi = xtree_attr(r->el, "max_items")))
		j->max_items = (unsigned)strtoul(mi, NULL, 10);
	for (const struct xtree_node *it = xtree_child(r->el, NS_PUBSUB, "item"); it;
	     it = xtree_next(it, NS_PUBSUB, "item")) {
		const char *id = xtree_attr(it, "id");
		char **ids;

		if (!id || j->nids >= 64 || !(ids = realloc(j->ids, (j->nids + 1) * sizeof(*ids))) ||
		    !(ids[j->nids] = strdup(id))) {
			ps_job_free(j);
			fail(r, "bad-request", NULL);
			return;
		}
		j->ids = ids;
		j->nids++;
	}
	sm_store_submit(r->sm->store, &j->job);
}

/* The subscription element of s in an answer. */
static void sub_el(struct sm_buf *b, const struct ps_node *n, const struct ps_sub *s, bool with_node)
{
	sm_buf_str(b, "<subscription");
	if (with_node)
		sm_buf_attr(b, "node", n->name);
	sm_buf_str(b, " jid='");
	sm_buf_esc(b, s->jid, strlen(s->jid));
	sm_buf_fmt(b, "' subid='%s' subscription='%s'/>", s->subid, s->pending ? "pending" : "subscribed");
}

/* §6.1: subscribe; the jid must be the requester's (bare or full). */
static void do_subscribe(struct req *r)
{
	struct sm_pubsub *p = r->sm->pubsub;
	const char *jid = xtree_attr(r->el, "jid"), *cond = NULL, *app = NULL;
	struct ps_node *n = need_node(r);
	struct ps_sub *s;
	struct ps_job *j;
	int may;

	if (!n)
		return;
	if (!jid || (strcmp(jid, r->from) && strcmp(jid, r->bare))) {
		fail(r, "bad-request", "invalid-jid");      /* §6.1.3.1 */
		return;
	}
	if ((s = ps_sub_find(n, jid))) {
		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB "'>");
		sub_el(&p->part, n, s, true);
		sm_buf_str(&p->part, "</pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
		return;
	}
	may = may_read(n, r->bare, &cond, &app);
	if (!may && n->cfg.access == PA_AUTHORIZE) {
		/* §6.1.4 / §8.6: pending until an owner approves (§8.8.2). */
		if (!(s = ps_sub_add(p, n, jid, true))) {
			fail(r, "resource-constraint", NULL);
			return;
		}
		ps_node_save(r->sm, n);
		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB "'>");
		sub_el(&p->part, n, s, true);
		sm_buf_str(&p->part, "</pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
		return;
	}
	if (!may) {
		fail(r, cond, app);
		return;
	}
	if (may > 0) {
		if (!(s = ps_sub_add(p, n, jid, false))) {
			fail(r, "resource-constraint", NULL);
			return;
		}
		ps_node_save(r->sm, n);
		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB "'>");
		sub_el(&p->part, n, s, true);
		sm_buf_str(&p->part, "</pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
		return;
	}
	/* presence / roster: the owners' rosters decide (a storage read). */
	j = job_new(r, OP_SUBSCRIBE, n);
	if (!j || !job_check(j, n)) {
		if (j)
			ps_job_free(j);
		fail(r, "resource-constraint", NULL);
		return;
	}
	free(j->requester);
	j->requester = strdup(r->from);
	sm_store_submit(r->sm->store, &j->job);
}

/* §6.2 unsubscribe: one's own subscription. */
static void do_unsubscribe(struct req *r)
{
	const char *jid = xtree_attr(r->el, "jid");
	struct ps_node *n = need_node(r);
	struct ps_sub *s;

	if (!n)
		return;
	if (!jid || (strcmp(jid, r->from) && strcmp(jid, r->bare))) {
		fail(r, "bad-request", "invalid-jid");
		return;
	}
	if (!(s = ps_sub_find(n, jid))) {
		fail(r, "unexpected-request", "not-subscribed");   /* §6.2.3.2 */
		return;
	}
	ps_sub_remove(n, s);
	ps_node_save(r->sm, n);
	reply_ok(r);
}

/* §6.3 subscription options: pubsub#deliver. */
static void do_options(struct req *r, bool set)
{
	struct sm_pubsub *p = r->sm->pubsub;
	const char *jid = xtree_attr(r->el, "jid");
	struct ps_node *n = need_node(r);
	struct ps_sub *s;

	if (!n)
		return;
	if (!jid || (strcmp(jid, r->from) && strcmp(jid, r->bare))) {
		fail(r, "forbidden", NULL);
		return;
	}
	if (!(s = ps_sub_find(n, jid))) {
		fail(r, "unexpected-request", "not-subscribed");
		return;
	}
	if (set) {
		const struct xtree_node *x = xtree_child(r->el, NS_XDATA, "x");

		for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
		     f = xtree_next(f, NS_XDATA, "field")) {
			const char *var = xtree_attr(f, "var"), *v = xtree_text(xtree_child(f, NS_XDATA, "value"));

			if (var && !strcmp(var, "pubsub#deliver")) {
				if (!v || (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "false"))) {
					fail(r, "bad-request", "invalid-options");
					return;
				}
				s->deliver = !strcmp(v, "1") || !strcmp(v, "true");
			}
		}
		ps_node_save(r->sm, n);
		reply_ok(r);
		return;
	}
	sm_buf_clear(&p->part);
	sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB "'><options node='");
	sm_buf_esc(&p->part, n->name, strlen(n->name));
	sm_buf_str(&p->part, "' jid='");
	sm_buf_esc(&p->part, jid, strlen(jid));
	sm_buf_fmt(&p->part, "'><x xmlns='" NS_XDATA "' type='form'><field var='FORM_TYPE' type='hidden'>"
		   "<value>" NS_SUB_OPTIONS "</value></field><field var='pubsub#deliver' type='boolean'>"
		   "<value>%d</value></field></x></options></pubsub>", s->deliver);
	ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
}

/* §5.6 / §5.7: the requester's own subscriptions or affiliations. */
static void do_mine(struct req *r, bool subs)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct sm_buf *b = &p->part;

	sm_buf_clear(b);
	sm_buf_fmt(b, "<pubsub xmlns='" NS_PUBSUB "'><%s>", subs ? "subscriptions" : "affiliations");
	for (const struct ps_node *n = p->list; n; n = n->next) {
		if (r->node && strcmp(r->node, n->name))
			continue;
		if (subs) {
			for (const struct ps_sub *s = n->subs; s; s = s->next)
				if (!strcmp(s->jid, r->from) || !strcmp(s->jid, r->bare))
					sub_el(b, n, s, true);
		} else if (ps_affil_of(n, r->bare) != PF_NONE) {
			sm_buf_str(b, "<affiliation node='");
			sm_buf_esc(b, n->name, strlen(n->name));
			sm_buf_fmt(b, "' affiliation='%s'/>", ps_affil_names[ps_affil_of(n, r->bare)]);
		}
	}
	sm_buf_fmt(b, "</%s></pubsub>", subs ? "subscriptions" : "affiliations");
	ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(b), sm_buf_used(b));
}

/* §8.2 configure (get / set), §8.3 default. */
static void do_configure(struct req *r, bool set)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct ps_node *n = need_owner(r);
	struct ps_config c;

	if (!n)
		return;
	if (!set) {
		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB_OWNER "'><configure node='");
		sm_buf_esc(&p->part, n->name, strlen(n->name));
		sm_buf_str(&p->part, "'>");
		config_form(&p->part, &n->cfg, NS_NODE_CONFIG);
		sm_buf_str(&p->part, "</configure></pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
		return;
	}
	c = n->cfg;
	c.title = n->cfg.title ? strdup(n->cfg.title) : NULL;
	c.roster_group = n->cfg.roster_group ? strdup(n->cfg.roster_group) : NULL;
	if (!config_read(xtree_child(r->el, NS_XDATA, "x"), NS_NODE_CONFIG, &c)) {
		free(c.title);
		free(c.roster_group);
		fail(r, "not-acceptable", NULL);
		return;
	}
	free(n->cfg.title);
	free(n->cfg.roster_group);
	n->cfg = c;
	ps_node_save(r->sm, n);
	reply_ok(r);
}

/* §8.4 delete (subscribers told), §8.5 purge (subscribers told). */
static void do_delete(struct req *r, bool purge)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct ps_node *n = need_owner(r);
	struct ps_job *j;

	if (!n)
		return;
	sm_buf_clear(&p->part);
	sm_buf_fmt(&p->part, "<%s node='", purge ? "purge" : "delete");
	sm_buf_esc(&p->part, n->name, strlen(n->name));
	sm_buf_str(&p->part, "'/>");
	if (purge) {
		if (!(j = job_new(r, OP_PURGE, n))) {
			fail(r, "resource-constraint", NULL);
			return;
		}
		sm_store_submit(r->sm->store, &j->job);
	} else {
		/* The row, then the items. */
		ps_save_submit(r->sm, n->name, NULL, 0);
		if ((j = job_new(r, OP_PURGE, n)))
			sm_store_submit(r->sm->store, &j->job);
	}
	reply_ok(r);
	if (purge || n->cfg.notify_delete)
		ps_notify(r->sm, n, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
	if (!purge) {
		log_info("pubsub node deleted", "node=\"%s\"", n->name);
		ps_node_free(p, n);
	}
}

/* §8.8 / §8.9: an owner lists or changes subscriptions or affiliations. */
static void do_manage(struct req *r, bool subs, bool set)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct ps_node *n = need_owner(r);
	struct sm_buf *b = &p->part;
	const char *what = subs ? "subscription" : "affiliation";

	if (!n)
		return;
	if (!set) {
		sm_buf_clear(b);
		sm_buf_fmt(b, "<pubsub xmlns='" NS_PUBSUB_OWNER "'><%ss node='", what);
		sm_buf_esc(b, n->name, strlen(n->name));
		sm_buf_str(b, "'>");
		if (subs) {
			for (const struct ps_sub *s = n->subs; s; s = s->next)
				sub_el(b, n, s, false);
		} else {
			for (const struct ps_affil *a = n->affils; a; a = a->next) {
				sm_buf_str(b, "<affiliation jid='");
				sm_buf_esc(b, a->jid, strlen(a->jid));
				sm_buf_fmt(b, "' affiliation='%s'/>", ps_affil_names[a->affil]);
			}
		}
		sm_buf_fmt(b, "</%ss></pubsub>", what);
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(b), sm_buf_used(b));
		return;
	}
	for (const struct xtree_node *it = xtree_child(r->el, NS_PUBSUB_OWNER, what); it;
	     it = xtree_next(it, NS_PUBSUB_OWNER, what)) {
		const char *jid = xtree_attr(it, "jid"), *v = xtree_attr(it, what);
		char canon[JID_MAX + 1];
		struct jid_view jv;

		if (!jid || !v || strlen(jid) > JID_MAX || jid_parse(jid, strlen(jid), &jv) < 0 ||
		    jid_canon(&jv, !subs ? false : jv.resource_len > 0, canon, sizeof(canon)) < 0) {
			fail(r, "bad-request", NULL);
			return;
		}
		if (subs) {
			struct ps_sub *s = ps_sub_find(n, canon);

			if (!strcmp(v, "none")) {
				if (s)
					ps_sub_remove(n, s);
			} else if (!strcmp(v, "subscribed")) {
				if (!s && !(s = ps_sub_add(p, n, canon, false))) {
					fail(r, "resource-constraint", NULL);
					return;
				}
				s->pending = false;     /* §8.6: approved */
			} else {
				fail(r, "bad-request", NULL);
				return;
			}
		} else {
			int f = ps_name_index(ps_affil_names, 6, v);

			if (f < 0) {
				fail(r, "bad-request", NULL);
				return;
			}
			if (ps_affil_of(n, canon) == PF_OWNER && f != PF_OWNER && ps_owners(n) == 1) {
				fail(r, "not-acceptable", NULL);      /* the last owner stays */
				return;
			}
			if (ps_affil_set(n, canon, f) < 0) {
				fail(r, "resource-constraint", NULL);
				return;
			}
		}
	}
	ps_node_save(r->sm, n);
	reply_ok(r);
}

void ps_dispatch(struct req *r, const struct xtree_node *q, bool set)
{
	const struct xtree_node *e = q->first;
	bool owner = !strcmp(q->ns, NS_PUBSUB_OWNER);

	/* One action; create may carry configure, publish publish-options,
	 * subscribe options (§8.1.3, §7.1.5, §6.3.7). */
	bool pair = e && e->next && !owner && set && !e->next->next &&
		    ((!strcmp(e->local, "create") && !strcmp(e->next->local, "configure")) ||
		     (!strcmp(e->local, "publish") && !strcmp(e->next->local, "publish-options")) ||
		     (!strcmp(e->local, "subscribe") && !strcmp(e->next->local, "options")));

	if (!e || (e->next && !pair)) {
		fail(r, "bad-request", NULL);
		return;
	}
	r->el = e;
	r->node = xtree_attr(e, "node");
	if (!owner && set && !strcmp(e->local, "create"))
		do_create(r, e->next);
	else if (!owner && set && !strcmp(e->local, "publish"))
		do_publish(r, e->next);
	else if (!owner && set && !strcmp(e->local, "retract"))
		do_retract(r);
	else if (!owner && set && !strcmp(e->local, "subscribe"))
		do_subscribe(r);
	else if (!owner && set && !strcmp(e->local, "unsubscribe"))
		do_unsubscribe(r);
	else if (!owner && !strcmp(e->local, "options"))
		do_options(r, set);
	else if (!owner && !set && !strcmp(e->local, "items"))
		do_items(r);
	else if (!owner && !set && !strcmp(e->local, "subscriptions"))
		do_mine(r, true);
	else if (!owner && !set && !strcmp(e->local, "affiliations"))
		do_mine(r, false);
	else if (owner && !strcmp(e->local, "configure"))
		do_configure(r, set);
	else if (owner && !set && !strcmp(e->local, "default")) {
		struct sm_pubsub *p = r->sm->pubsub;
		struct ps_config c = { .access = PA_OPEN, .publish = PP_PUBLISHERS, .max_items = 10,
				       .deliver_payloads = true, .notify_retract = true, .notify_delete = true };

		sm_buf_clear(&p->part);
		sm_buf_str(&p->part, "<pubsub xmlns='" NS_PUBSUB_OWNER "'><default>");
		config_form(&p->part, &c, NS_NODE_CONFIG);
		sm_buf_str(&p->part, "</default></pubsub>");
		ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(&p->part), sm_buf_used(&p->part));
	} else if (owner && set && !strcmp(e->local, "delete"))
		do_delete(r, false);
	else if (owner && set && !strcmp(e->local, "purge"))
		do_delete(r, true);
	else if (owner && !strcmp(e->local, "subscriptions"))
		do_manage(r, true, set);
	else if (owner && !strcmp(e->local, "affiliations"))
		do_manage(r, false, set);
	else
		ps_iq_error(r->sm, r->from, r->id, "feature-not-implemented", "unsupported", e->local);
}

