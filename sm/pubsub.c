/*
 * sm_pubsub — a PubSub service (XEP-0060) on its own domain
 * (`services.pubsub.domain`, e.g. pubsub.localhost), served by the session
 * server: nodes created by users, explicit subscriptions, notifications.
 *
 * One store, two addressing modes: the items are kept by sm/nodes.c, the
 * same code and table PEP (sm/pep.c) uses, with the service's domain as
 * their owner.  What PEP does not have — a node's configuration,
 * affiliations and subscriptions — lives in memory here and in one row of
 * the kv table per node (user: the domain, ns urn:xedge:pubsub:0, key: the
 * node), written behind after every change and loaded at start.  Every
 * stanza for the service goes to the one shard its domain hashes to, so
 * nothing is shared between threads.
 *
 * Served (XEP-0060 sections):
 *   §5 disco of the service (identity pubsub/service, the features below),
 *      of its nodes (disco#items) and of a node (pubsub/leaf with its
 *      meta-data);
 *   §6.1 subscribe (open; presence and roster: the owner's roster grants it,
 *      read in a storage job; authorize: pending until an owner approves
 *      through §8.8.2; whitelist: affiliated only), §6.2 unsubscribe, §6.3
 *      subscription options (pubsub#deliver), §5.6 / §5.7 own subscriptions
 *      and affiliations, §6.5 items (all, max_items, by id);
 *   §7.1 publish (publishers and owners, or anyone with publish_model open;
 *      publish-options as preconditions, §7.1.5; auto-create for a node that
 *      does not exist, the publisher its owner), §7.2 retract (notify);
 *   §8.1 create (instant nodes too) with a configuration, §8.2 configure,
 *      §8.3 default configuration, §8.4 delete, §8.5 purge, §8.8 manage
 *      subscriptions, §8.9 manage affiliations.
 * Notifications (§7.1.2) go to every subscription with delivery on, as
 * headline messages from the service; deleting and purging are notified too.
 * Collections and item expiry are not served (no feature advertised).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xtree.h"
#include "sm/nodes.h"
#include "sm/pubsub_int.h"

const char *const ps_access_names[] = { "open", "presence", "roster", "whitelist", "authorize" };
const char *const ps_publish_names[] = { "publishers", "subscribers", "open" };
const char *const ps_affil_names[] = { "none", "outcast", "member", "publish-only", "publisher", "owner" };

/* ---- setup ------------------------------------------------------------- */

void ps_node_free(struct sm_pubsub *p, struct ps_node *n)
{
	sm_tab_remove(&p->nodes, &n->tn);
	if (n->prev)
		n->prev->next = n->next;
	else
		p->list = n->next;
	if (n->next)
		n->next->prev = n->prev;
	p->nnodes--;
	for (struct ps_affil *a = n->affils, *an; a; a = an) {
		an = a->next;
		free(a);
	}
	for (struct ps_sub *s = n->subs, *sn; s; s = sn) {
		sn = s->next;
		free(s);
	}
	free(n->cfg.title);
	free(n->cfg.roster_group);
	free(n->name);
	free(n);
}

void sm_pubsub_free(struct sm *sm)
{
	struct sm_pubsub *p = sm->pubsub;

	if (!p)
		return;
	while (p->list)
		ps_node_free(p, p->list);
	sm_tab_fini(&p->nodes);
	sm_buf_free(&p->out);
	sm_buf_free(&p->part);
	free(p->domain);
	free(p);
	sm->pubsub = NULL;
}

bool sm_pubsub_domain(const struct sm *sm, const char *d, size_t n)
{
	return sm->pubsub && n == sm->pubsub->domain_len && memcmp(d, sm->pubsub->domain, n) == 0;
}

void sm_pubsub_disco_item(const struct sm *sm, struct sm_buf *b)
{
	if (sm->pubsub)
		sm_buf_disco_item(b, sm->pubsub->domain, sm->pubsub->domain_len, "Publish-Subscribe");
}

/* ---- lookups ------------------------------------------------------------ */

struct ps_node *ps_node_find(struct sm_pubsub *p, const char *name)
{
	size_t n = strlen(name);
	uint64_t h = sm_tab_hash(&p->nodes, name, n);

	for (struct sm_tab_node *e = sm_tab_bucket(&p->nodes, h); e; e = e->next) {
		struct ps_node *x = sm_container_of(e, struct ps_node, tn);

		if (e->hash == h && !strcmp(x->name, name))
			return x;
	}
	return NULL;
}

int ps_affil_of(const struct ps_node *n, const char *bare)
{
	for (const struct ps_affil *a = n->affils; a; a = a->next)
		if (!strcmp(a->jid, bare))
			return a->affil;
	return PF_NONE;
}

int ps_affil_set(struct ps_node *n, const char *bare, int affil)
{
	struct ps_affil **pp, *a;

	for (pp = &n->affils; *pp && strcmp((*pp)->jid, bare); pp = &(*pp)->next)
		;
	if (*pp) {
		if (affil != PF_NONE) {
			(*pp)->affil = (uint8_t)affil;
		} else {
			a = *pp;
			*pp = a->next;
			free(a);
			n->naffils--;
		}
		return 0;
	}
	if (affil == PF_NONE)
		return 0;
	if (n->naffils >= PS_MAX_AFFILS || !(a = malloc(sizeof(*a) + strlen(bare) + 1)))
		return -1;
	a->affil = (uint8_t)affil;
	strcpy(a->jid, bare);
	a->next = n->affils;
	n->affils = a;
	n->naffils++;
	return 0;
}

unsigned ps_owners(const struct ps_node *n)
{
	unsigned k = 0;

	for (const struct ps_affil *a = n->affils; a; a = a->next)
		k += a->affil == PF_OWNER;
	return k;
}

struct ps_sub *ps_sub_find(const struct ps_node *n, const char *jid)
{
	for (struct ps_sub *s = n->subs; s; s = s->next)
		if (!strcmp(s->jid, jid))
			return s;
	return NULL;
}

void ps_sub_remove(struct ps_node *n, struct ps_sub *s)
{
	for (struct ps_sub **pp = &n->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			n->nsubs--;
			free(s);
			return;
		}
}

struct ps_sub *ps_sub_add(struct sm_pubsub *p, struct ps_node *n, const char *jid, bool pending)
{
	struct ps_sub *s;

	if (n->nsubs >= PS_MAX_SUBS || !(s = calloc(1, sizeof(*s) + strlen(jid) + 1)))
		return NULL;
	strcpy(s->jid, jid);
	s->pending = pending;
	s->deliver = true;
	snprintf(s->subid, sizeof(s->subid), "%016llx", (unsigned long long)++p->seq ^ 0x5a17c0de00000000ull);
	s->next = n->subs;
	n->subs = s;
	n->nsubs++;
	return s;
}

/* ---- sending ------------------------------------------------------------ */

static void start(struct sm_pubsub *p, const char *kind, const char *type, const char *to,
		  const char *id)
{
	struct sm_buf *b = &p->out;

	sm_buf_clear(b);
	sm_buf_fmt(b, "<%s from='", kind);
	sm_buf_esc(b, p->domain, p->domain_len);
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, strlen(to));
	sm_buf_str(b, "'");
	if (type && *type)
		sm_buf_fmt(b, " type='%s'", type);
	sm_buf_attr(b, "id", id);
}

/* Close and send what start() and the caller built in p->out. */
static void send_out(struct sm *sm, int kind, const char *type, const char *to, const char *id)
{
	struct sm_pubsub *p = sm->pubsub;

	sm_buf_fmt(&p->out, "</%s>", sm_kind_name(kind));
	if (p->out.err) {
		log_warn("pubsub stanza too large, dropped", "to=\"%s\"", to);
		p->out.err = 0;
	} else {
		sm_route_from_service(sm, kind, type, p->domain, to, id, sm_buf_data(&p->out),
				      sm_buf_used(&p->out));
	}
	sm_buf_clear(&p->out);
}

void ps_iq_error(struct sm *sm, const char *to, const char *id, const char *cond,
		     const char *app, const char *feature)
{
	struct sm_buf *b = &sm->pubsub->out;

	start(sm->pubsub, "iq", "error", to, id);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/>", sm_error_type(cond), cond);
	if (app) {
		sm_buf_fmt(b, "<%s xmlns='" NS_PUBSUB_ERRORS "'", app);
		if (feature)
			sm_buf_fmt(b, " feature='%s'", feature);
		sm_buf_str(b, "/>");
	}
	sm_buf_str(b, "</error>");
	send_out(sm, WIRE_KIND_IQ, "error", to, id);
}

/* A result sent now (the change it reports is committed already). */
void ps_iq_ok_now(struct sm *sm, const char *to, const char *id, const char *payload, size_t len)
{
	struct sm_buf *b = &sm->pubsub->out;

	start(sm->pubsub, "iq", "result", to, id);
	sm_buf_str(b, ">");
	if (payload)
		sm_buf_add(b, payload, len);
	send_out(sm, WIRE_KIND_IQ, "result", to, id);
}

/* A result sent once every storage job before it has committed: the
 * storage thread runs jobs in order, so what the request changed (written
 * behind by node_save and the like) is on disk when the requester hears it
 * succeeded, and a crash cannot take back what was acknowledged. */
struct answer_job {
	struct sm_job job;
	size_t plen;
	char *to, *id, *payload;    /* into data */
	char data[];
};

static void answer_run(struct sm_db *db, struct sm_job *j)
{
	(void)db;
	j->rc = 0;
}

static void answer_done(struct sm *sm, struct sm_job *j)
{
	struct answer_job *a = (struct answer_job *)j;

	if (sm->pubsub)
		ps_iq_ok_now(sm, a->to, a->id, a->plen ? a->payload : NULL, a->plen);
	free(a);
}

void ps_iq_ok(struct sm *sm, const char *to, const char *id, const char *payload, size_t len)
{
	size_t tl = strlen(to) + 1, il = strlen(id ? id : "") + 1;
	struct answer_job *a = malloc(sizeof(*a) + tl + il + len + 1);

	if (!a) {
		ps_iq_error(sm, to, id, "resource-constraint", NULL, NULL);
		return;
	}
	a->to = a->data;
	memcpy(a->to, to, tl);
	a->id = a->to + tl;
	memcpy(a->id, id ? id : "", il);
	a->payload = a->id + il;
	if (len)
		memcpy(a->payload, payload, len);
	a->plen = payload ? len : 0;
	a->job.run = answer_run;
	a->job.done = answer_done;
	sm_store_submit(sm->store, &a->job);
}

/* An event to every subscription that takes deliveries (§7.1.2). */
void ps_notify(struct sm *sm, struct ps_node *n, const char *event, size_t len)
{
	struct sm_pubsub *p = sm->pubsub;

	for (struct ps_sub *s = n->subs; s; s = s->next) {
		if (s->pending || !s->deliver)
			continue;
		start(p, "message", "headline", s->jid, NULL);
		sm_buf_str(&p->out, "><event xmlns='" NS_PUBSUB_EVENT "'>");
		sm_buf_add(&p->out, event, len);
		sm_buf_str(&p->out, "</event>");
		send_out(sm, WIRE_KIND_MESSAGE, "headline", s->jid, NULL);
	}
}

/* ---- persistence -------------------------------------------------------- */

void ps_save_submit(struct sm *sm, const char *node, const void *blob, size_t len)
{
	sm_kv_put_behind(sm, sm->pubsub->domain, NS_KV_PS, node, len ? blob : NULL, len);
}

void ps_node_save(struct sm *sm, const struct ps_node *n)
{
	struct sm_buf *b = &sm->pubsub->part;
	const struct ps_config *c = &n->cfg;

	sm_buf_clear(b);
	sm_buf_fmt(b, "<node xmlns='" NS_KV_PS "' access='%s' publish='%s' max='%d' flags='%s%s%s'",
		   ps_access_names[c->access], ps_publish_names[c->publish], c->max_items,
		   c->deliver_payloads ? "p" : "", c->notify_retract ? "r" : "", c->notify_delete ? "d" : "");
	sm_buf_attr(b, "title", c->title);
	sm_buf_attr(b, "group", c->roster_group);
	sm_buf_str(b, ">");
	for (const struct ps_affil *a = n->affils; a; a = a->next) {
		sm_buf_str(b, "<a j='");
		sm_buf_esc(b, a->jid, strlen(a->jid));
		sm_buf_fmt(b, "' f='%s'/>", ps_affil_names[a->affil]);
	}
	for (const struct ps_sub *s = n->subs; s; s = s->next) {
		sm_buf_str(b, "<s j='");
		sm_buf_esc(b, s->jid, strlen(s->jid));
		sm_buf_fmt(b, "' id='%s' p='%d' d='%d'/>", s->subid, s->pending, s->deliver);
	}
	sm_buf_str(b, "</node>");
	if (b->err) {
		log_warn("pubsub node too large to save", "node=\"%s\"", n->name);
		b->err = 0;
	} else {
		ps_save_submit(sm, n->name, sm_buf_data(b), sm_buf_used(b));
	}
	sm_buf_clear(b);
}

int ps_name_index(const char *const *names, int n, const char *v)
{
	for (int i = 0; v && i < n; i++)
		if (!strcmp(names[i], v))
			return i;
	return -1;
}

struct ps_node *ps_node_new(struct sm_pubsub *p, const char *name)
{
	struct ps_node *n = p->nnodes < PS_MAX_NODES ? calloc(1, sizeof(*n)) : NULL;

	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->cfg.access = PA_OPEN;
	n->cfg.publish = PP_PUBLISHERS;
	n->cfg.max_items = 10;
	n->cfg.deliver_payloads = n->cfg.notify_retract = n->cfg.notify_delete = true;
	sm_tab_insert(&p->nodes, &n->tn, sm_tab_hash(&p->nodes, name, strlen(name)));
	n->next = p->list;
	if (p->list)
		p->list->prev = n;
	p->list = n;
	p->nnodes++;
	return n;
}

struct load_job {
	struct sm_job job;
	struct { char *node, *blob; size_t len; } *rows;
	size_t n, cap;
	char domain[];
};

static void load_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "SELECT key, value FROM kv WHERE user = ?1 AND ns = ?2";
	struct load_job *lj = (struct load_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, lj->domain);
	sm_db_bind_text(q, 2, NS_KV_PS);
	while ((rc = sm_db_step(q)) == SM_ROW) {
		const char *k = sm_db_col_text(q, 0);
		const void *v = sm_db_col_blob(q, 1);
		size_t len = sm_db_col_bytes(q, 1);

		if (!k || !v || !len)
			continue;
		if (lj->n == lj->cap) {
			size_t cap = lj->cap ? 2 * lj->cap : 64;
			void *nr = realloc(lj->rows, cap * sizeof(*lj->rows));

			if (!nr)
				break;
			lj->rows = nr;
			lj->cap = cap;
		}
		lj->rows[lj->n].node = strdup(k);
		lj->rows[lj->n].blob = malloc(len);
		if (!lj->rows[lj->n].node || !lj->rows[lj->n].blob) {
			free(lj->rows[lj->n].node);
			free(lj->rows[lj->n].blob);
			break;
		}
		memcpy(lj->rows[lj->n].blob, v, len);
		lj->rows[lj->n].len = len;
		lj->n++;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		j->rc = sm_db_fail(db, "pubsub load");
}

static void node_restore(struct sm_pubsub *p, const char *name, const char *blob, size_t len)
{
	struct xtree *t = xtree_parse(blob, len, NULL, NULL, NULL);
	const struct xtree_node *top = t ? xtree_root(t) : NULL;
	struct ps_node *n;
	const char *v;

	if (!top || strcmp(top->ns, NS_KV_PS) || !(n = ps_node_new(p, name))) {
		log_warn("stored pubsub node not readable, skipped", "node=\"%s\"", name);
		xtree_free(t);
		return;
	}
	n->cfg.access = (uint8_t)(ps_name_index(ps_access_names, 5, xtree_attr(top, "access")) < 0 ? PA_WHITELIST :
				  ps_name_index(ps_access_names, 5, xtree_attr(top, "access")));
	n->cfg.publish = (uint8_t)(ps_name_index(ps_publish_names, 3, xtree_attr(top, "publish")) < 0 ? PP_PUBLISHERS :
				   ps_name_index(ps_publish_names, 3, xtree_attr(top, "publish")));
	n->cfg.max_items = (v = xtree_attr(top, "max")) ? atoi(v) : 10;
	v = xtree_attr(top, "flags");
	n->cfg.deliver_payloads = v && strchr(v, 'p');
	n->cfg.notify_retract = v && strchr(v, 'r');
	n->cfg.notify_delete = v && strchr(v, 'd');
	if ((v = xtree_attr(top, "title")))
		n->cfg.title = strdup(v);
	if ((v = xtree_attr(top, "group")))
		n->cfg.roster_group = strdup(v);
	for (const struct xtree_node *a = xtree_child(top, NS_KV_PS, "a"); a; a = xtree_next(a, NS_KV_PS, "a")) {
		int f = ps_name_index(ps_affil_names, 6, xtree_attr(a, "f"));

		if (f > 0 && xtree_attr(a, "j"))
			ps_affil_set(n, xtree_attr(a, "j"), f);
	}
	for (const struct xtree_node *s = xtree_child(top, NS_KV_PS, "s"); s; s = xtree_next(s, NS_KV_PS, "s")) {
		struct ps_sub *x;

		if (!xtree_attr(s, "j") || !(x = ps_sub_add(p, n, xtree_attr(s, "j"), false)))
			continue;
		if ((v = xtree_attr(s, "id")))
			snprintf(x->subid, sizeof(x->subid), "%s", v);
		x->pending = (v = xtree_attr(s, "p")) && !strcmp(v, "1");
		x->deliver = !(v = xtree_attr(s, "d")) || strcmp(v, "0");
	}
	xtree_free(t);
}

static void load_done(struct sm *sm, struct sm_job *j)
{
	struct load_job *lj = (struct load_job *)j;

	for (size_t i = 0; i < lj->n; i++) {
		if (sm->pubsub)
			node_restore(sm->pubsub, lj->rows[i].node, lj->rows[i].blob, lj->rows[i].len);
		free(lj->rows[i].node);
		free(lj->rows[i].blob);
	}
	if (lj->n)
		log_info("pubsub nodes loaded", "nodes=%zu", lj->n);
	free(lj->rows);
	free(lj);
}

int sm_pubsub_open(struct sm *sm, const char *domain)
{
	struct sm_pubsub *p;
	struct load_job *lj;
	char d[JID_MAX + 1];
	struct jid_view v;
	int n;

	if (!domain || !*domain)
		return 0;
	if (jid_parse(domain, strlen(domain), &v) < 0 || v.local_len || v.resource_len ||
	    (n = jid_canon(&v, false, d, sizeof(d))) < 0)
		return -1;
	p = calloc(1, sizeof(*p));
	if (!p || sm_tab_init(&p->nodes) < 0 || !(p->domain = sm_memdup_z(d, (size_t)n))) {
		if (p)
			sm_tab_fini(&p->nodes);
		free(p);
		return -1;
	}
	p->domain_len = (size_t)n;
	p->out.max = PS_OUT_MAX + 4096;
	p->part.max = PS_OUT_MAX;
	sm->pubsub = p;
	/* Only the shard the domain hashes to serves it (and loads its nodes). */
	if (!sm_muc_owns(sm, p->domain, p->domain_len))
		return 0;
	lj = calloc(1, sizeof(*lj) + p->domain_len + 1);
	if (!lj)
		return -1;
	memcpy(lj->domain, p->domain, p->domain_len + 1);
	lj->job.run = load_run;
	lj->job.done = load_done;
	sm_store_submit(sm->store, &lj->job);
	return 0;
}

/* ---- disco (§5) ----------------------------------------------------------- */

static const char *const features[] = {
	"create-nodes", "delete-nodes", "purge-nodes", "publish", "publish-options", "retract-items",
	"retrieve-items", "item-ids", "persistent-items", "instant-nodes", "subscribe", "subscription-options",
	"retrieve-subscriptions", "retrieve-affiliations", "manage-subscriptions", "modify-affiliations",
	"config-node", "retrieve-default", "auto-create", "access-open", "access-presence", "access-roster",
	"access-whitelist", "access-authorize", "meta-data",
};

static void do_disco(struct req *r, bool info)
{
	struct sm_pubsub *p = r->sm->pubsub;
	struct sm_buf *b = &p->part;
	struct ps_node *n = r->node ? ps_node_find(p, r->node) : NULL;

	if (r->node && !n) {
		ps_iq_error(r->sm, r->from, r->id, "item-not-found", NULL, NULL);
		return;
	}
	sm_buf_clear(b);
	sm_buf_fmt(b, "<query xmlns='%s'", info ? NS_DISCO_INFO : NS_DISCO_ITEMS);
	if (n)
		sm_buf_attr(b, "node", n->name);
	sm_buf_str(b, ">");
	if (info && n) {
		sm_buf_str(b, "<identity category='pubsub' type='leaf'/><feature var='" NS_PUBSUB "'/>"
			      "<x xmlns='" NS_XDATA "' type='result'><field var='FORM_TYPE' type='hidden'>"
			      "<value>" NS_META "</value></field><field var='pubsub#title'><value>");
		if (n->cfg.title)
			sm_buf_esc(b, n->cfg.title, strlen(n->cfg.title));
		sm_buf_fmt(b, "</value></field><field var='pubsub#access_model'><value>%s</value></field>",
			   ps_access_names[n->cfg.access]);
		for (const struct ps_affil *a = n->affils; a; a = a->next)
			if (a->affil == PF_OWNER) {
				sm_buf_str(b, "<field var='pubsub#owner'><value>");
				sm_buf_esc(b, a->jid, strlen(a->jid));
				sm_buf_str(b, "</value></field>");
			}
		sm_buf_str(b, "</x>");
	} else if (info) {
		sm_buf_str(b, "<identity category='pubsub' type='service' name='Publish-Subscribe'/>"
			      "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
			      "<feature var='" NS_PUBSUB "'/>");
		for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
			sm_buf_fmt(b, "<feature var='" NS_PUBSUB "#%s'/>", features[i]);
	} else if (!n) {
		for (const struct ps_node *x = p->list; x; x = x->next) {
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, p->domain, p->domain_len);
			sm_buf_str(b, "' node='");
			sm_buf_esc(b, x->name, strlen(x->name));
			sm_buf_str(b, "'/>");
		}
	}
	sm_buf_str(b, "</query>");
	ps_iq_ok(r->sm, r->from, r->id, (const char *)sm_buf_data(b), sm_buf_used(b));
}

/* ---- entry ------------------------------------------------------------------ */

void sm_pubsub_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct sm_pubsub *p = sm->pubsub;
	char full[JID_MAX + 1], bare[JID_MAX + 1];
	struct xtree *t;
	const struct xtree_node *st, *q;
	const char *type;
	struct jid_view v;
	struct req r = { .sm = sm, .from = full, .bare = bare };

	if (!p || m->u.stanza.kind != WIRE_KIND_IQ || from_len > JID_MAX ||
	    jid_parse(from, from_len, &v) < 0 || jid_canon(&v, true, full, sizeof(full)) < 0 ||
	    jid_canon(&v, false, bare, sizeof(bare)) < 0)
		return;     /* messages and presence to the service: nothing to do with them */
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL, NULL);
	if (!t)
		return;
	st = xtree_root(t);
	type = xtree_attr(st, "type");
	r.id = xtree_attr(st, "id");
	q = st->first;
	if (!type || (strcmp(type, "get") && strcmp(type, "set")))
		goto done;  /* results and errors: nobody waits here */
	if (!q || q->next) {
		ps_iq_error(sm, r.from, r.id, "bad-request", NULL, NULL);
	} else if (!strcmp(q->ns, NS_DISCO_INFO) || !strcmp(q->ns, NS_DISCO_ITEMS)) {
		r.node = xtree_attr(q, "node");
		if (strcmp(type, "get"))
			ps_iq_error(sm, r.from, r.id, "bad-request", NULL, NULL);
		else
			do_disco(&r, !strcmp(q->ns, NS_DISCO_INFO));
	} else if (!strcmp(q->local, "pubsub") && (!strcmp(q->ns, NS_PUBSUB) || !strcmp(q->ns, NS_PUBSUB_OWNER))) {
		ps_dispatch(&r, q, !strcmp(type, "set"));
	} else if (!strcmp(q->ns, "urn:xmpp:ping") && !strcmp(type, "get")) {
		ps_iq_ok(sm, r.from, r.id, NULL, 0);
	} else {
		ps_iq_error(sm, r.from, r.id, "service-unavailable", NULL, NULL);
	}
done:
	xtree_free(t);
}
