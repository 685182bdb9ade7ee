/*
 * sm_kv — XML an account stores on the server, kept in the kv table
 * (user, ns, key, value): its vCard (XEP-0054 vcard-temp) and its private
 * XML (XEP-0049 jabber:iq:private).
 *
 * vCard: one row per account, ns 'vcard-temp', key '', value the <vCard/>
 * element as xtree_write() serialises it.  The account sets it (no `to`
 * or its own bare JID; a set to another account's JID is forbidden) and
 * reads it back (an empty <vCard/> when it has none, XEP-0054 §3.1); anyone
 * reads another local account's (§3.3), and gets service-unavailable both
 * when there is no vCard and when there is no such account, so the answer
 * says nothing about which accounts exist (RFC 6121 §8.5.1).
 *
 * Private XML: ns 'jabber:iq:private', key "{namespace}local" of each
 * element stored, value every stored element with that name, concatenated
 * in document order (a set MAY carry several elements of one namespace,
 * XEP-0049 §2.3).  Only the account itself reads or writes it (forbidden
 * otherwise); elements in reserved namespaces ('jabber:', 'http://jabber.org/',
 * 'vcard-temp') or in none are not-acceptable; a get without a child is
 * bad-request, a set without one not-acceptable; a get asks for one
 * namespace only.  An element never stored comes back as it was asked for.
 *
 * Bounds (peers control all of it): a stored value is at most
 * SM_KV_VALUE_MAX bytes serialised and a request names at most
 * SM_KV_ITEMS_MAX elements (policy-violation beyond); an account keeps at
 * most SM_KV_PRIVATE_MAX private keys (resource-constraint beyond).
 *
 * Reads and writes are storage jobs (sm/store.h); the request is answered
 * from the job's done() through a kept reference (sm/iq.h), and a write is
 * answered only once committed.  Jobs run in order, so a get sees every
 * set submitted before it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_VCARD "vcard-temp"
#define NS_PRIVATE "jabber:iq:private"

enum kv_op {
	KV_VCARD_GET_OWN = 0, /* own vCard: empty <vCard/> when none */
	KV_VCARD_GET_OTHER,   /* another account's: service-unavailable when none */
	KV_VCARD_SET,
	KV_PRIVATE_GET,
	KV_PRIVATE_SET
};

struct kv_item {
	char *key;          /* "" (vCard) or "{ns}local" */
	uint8_t *val;       /* set: the value to store; get: what was read (NULL: none) */
	size_t len;
	char *asked;        /* private get: the element as asked for, returned when none */
	size_t asked_len;
};

struct kv_job {
	struct sm_job job;
	struct sm_iq_ref *ref;
	int op;             /* enum kv_op */
	char *user;
	const char *ns;     /* the kv ns column */
	size_t nitems;
	struct kv_item items[SM_KV_ITEMS_MAX];
};

/* ---- storage thread ----------------------------------------------------- */

static int kv_read(struct sm_db *db, struct kv_job *kj, struct kv_item *it)
{
	static const char sql[] = "SELECT value FROM kv WHERE user = ?1 AND ns = ?2 AND key = ?3";
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, kj->user);
	sm_db_bind_text(q, 2, kj->ns);
	sm_db_bind_text(q, 3, it->key);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		const void *p = sm_db_col_blob(q, 0);
		size_t n = sm_db_col_bytes(q, 0);

		it->val = malloc(n ? n : 1);
		if (!it->val) {
			sm_db_done(q);
			return -ENOMEM;
		}
		if (n)
			memcpy(it->val, p, n);
		it->len = n;
		rc = 0;
	} else if (rc == SM_DONE) {
		rc = 0;
	} else {
		rc = sm_db_fail(db, "kv read");
	}
	sm_db_done(q);
	return rc;
}

/* 1 when the account already stores key under kj->ns, 0 when not; or the
 * number of keys it stores (key NULL); -EIO. */
static int64_t kv_count(struct sm_db *db, struct kv_job *kj, const char *key)
{
	static const char sql_all[] = "SELECT count(*) FROM kv WHERE user = ?1 AND ns = ?2";
	static const char sql_one[] =
		"SELECT count(*) FROM kv WHERE user = ?1 AND ns = ?2 AND key = ?3";
	sm_stmt *q = sm_db_stmt(db, key ? sql_one : sql_all);
	int64_t n = -1;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, kj->user);
	sm_db_bind_text(q, 2, kj->ns);
	if (key)
		sm_db_bind_text(q, 3, key);
	if (sm_db_step(q) == SM_ROW)
		n = sm_db_col_int64(q, 0);
	sm_db_done(q);
	return n < 0 ? sm_db_fail(db, "kv count") : n;
}

static int kv_write(struct sm_db *db, struct kv_job *kj, struct kv_item *it)
{
	static const char sql[] =
		"INSERT INTO kv(user, ns, key, value) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT(user, ns, key) DO UPDATE SET value = excluded.value";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, kj->user);
	sm_db_bind_text(q, 2, kj->ns);
	sm_db_bind_text(q, 3, it->key);
	sm_db_bind_blob(q, 4, it->val, it->len);
	return sm_db_exec(db, q, "kv write");
}

static void kv_run(struct sm_db *db, struct sm_job *j)
{
	struct kv_job *kj = (struct kv_job *)j;
	bool set = kj->op == KV_VCARD_SET || kj->op == KV_PRIVATE_SET;
	int64_t stored = 0, added = 0, n;

	j->rc = 0;
	if (set && kj->op == KV_PRIVATE_SET) {
		/* The quota counts keys; the count and the writes share the batch's
		 * transaction, so concurrent sets cannot both slip under it. */
		stored = kv_count(db, kj, NULL);
		if (stored < 0) {
			j->rc = (int)stored;
			return;
		}
		for (size_t i = 0; i < kj->nitems; i++) {
			n = kv_count(db, kj, kj->items[i].key);
			if (n < 0) {
				j->rc = (int)n;
				return;
			}
			added += n == 0;
		}
		if (added && stored + added > SM_KV_PRIVATE_MAX) {
			j->rc = -ENOSPC;
			return;
		}
	}
	for (size_t i = 0; i < kj->nitems && j->rc == 0; i++)
		j->rc = set ? kv_write(db, kj, &kj->items[i]) : kv_read(db, kj, &kj->items[i]);
}

/* ---- sm thread ---------------------------------------------------------- */

static void kv_job_free(struct kv_job *kj)
{
	for (size_t i = 0; i < kj->nitems; i++) {
		free(kj->items[i].key);
		free(kj->items[i].val);
		free(kj->items[i].asked);
	}
	free(kj->user);
	free(kj);
}

static void kv_done(struct sm *sm, struct sm_job *j)
{
	struct kv_job *kj = (struct kv_job *)j;
	struct sm_buf b = { .max = SM_KV_ITEMS_MAX * (SM_KV_VALUE_MAX + 64) + 128 };
	struct kv_item *it = &kj->items[0];

	if (j->rc == -ENOSPC) {
		sm_iq_ref_error(sm, kj->ref, "resource-constraint");
	} else if (j->rc < 0) {
		log_warn("kv storage failed", "user=\"%s\" rc=%d", kj->user, j->rc);
		sm_iq_ref_error(sm, kj->ref, "internal-server-error");
	} else if (kj->op == KV_VCARD_SET || kj->op == KV_PRIVATE_SET) {
		sm_iq_ref_result(sm, kj->ref, NULL, 0);
	} else if (kj->op == KV_VCARD_GET_OWN) {
		if (it->val)
			sm_iq_ref_result(sm, kj->ref, (const char *)it->val, it->len);
		else
			sm_iq_ref_result(sm, kj->ref, "<vCard xmlns='" NS_VCARD "'/>",
					 strlen("<vCard xmlns='" NS_VCARD "'/>"));
	} else if (kj->op == KV_VCARD_GET_OTHER) {
		if (it->val)
			sm_iq_ref_result(sm, kj->ref, (const char *)it->val, it->len);
		else
			sm_iq_ref_error(sm, kj->ref, "service-unavailable");
	} else {
		sm_buf_str(&b, "<query xmlns='" NS_PRIVATE "'>");
		for (size_t i = 0; i < kj->nitems; i++) {
			it = &kj->items[i];
			if (it->val)
				sm_buf_add(&b, it->val, it->len);
			else
				sm_buf_add(&b, it->asked, it->asked_len);
		}
		sm_buf_str(&b, "</query>");
		if (b.err)
			sm_iq_ref_error(sm, kj->ref, "resource-constraint");
		else
			sm_iq_ref_result(sm, kj->ref, (const char *)sm_buf_data(&b), sm_buf_used(&b));
		sm_buf_free(&b);
	}
	kv_job_free(kj);
}

static struct kv_job *kv_job_new(struct sm_iq *q, int op, const char *ns)
{
	struct kv_job *kj = calloc(1, sizeof(*kj));

	if (!kj)
		return NULL;
	kj->op = op;
	kj->ns = ns;
	kj->user = strdup(q->account);
	if (!kj->user) {
		free(kj);
		return NULL;
	}
	kj->job.run = kv_run;
	kj->job.done = kv_done;
	return kj;
}

/* Keep the request and queue the job; on failure answer now and free it. */
static void kv_submit(struct sm_iq *q, struct kv_job *kj)
{
	kj->ref = sm_iq_keep(q);
	if (!kj->ref) {
		kv_job_free(kj);
		sm_iq_error(q, "resource-constraint");
		return;
	}
	sm_store_submit(q->sm->store, &kj->job);
}

static void kv_put(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

/* Serialise el into b (appending): 0; -ENOBUFS over b->max; -ENOMEM. */
static int kv_serialise(struct sm_buf *b, const struct xtree_node *el)
{
	size_t before = sm_buf_used(b), n = xtree_write(el, kv_put, b);

	if (!b->err)
		return 0;
	/* The buffer's error is sticky and says not why: over max is ours to tell. */
	return before + n > b->max ? -ENOBUFS : -ENOMEM;
}

/* Move b's bytes into a malloc'd copy: 0 or -ENOMEM. */
static int kv_take(struct sm_buf *b, uint8_t **val, size_t *len)
{
	size_t n = sm_buf_used(b);

	*val = malloc(n ? n : 1);
	if (!*val)
		return -ENOMEM;
	memcpy(*val, sm_buf_data(b), n);
	*len = n;
	return 0;
}

/* ---- XEP-0054 vcard-temp ------------------------------------------------ */

void sm_kv_vcard(struct sm_iq *q)
{
	struct sm_buf b = { .max = SM_KV_VALUE_MAX };
	struct kv_job *kj;
	int rc;

	if (q->set && q->where != SM_IQ_OWN) {
		sm_iq_error(q, "forbidden");   /* XEP-0054 §3.2: another user's vCard */
		return;
	}
	kj = kv_job_new(q, q->set ? KV_VCARD_SET : q->where == SM_IQ_OWN ? KV_VCARD_GET_OWN
		   : KV_VCARD_GET_OTHER, NS_VCARD);
	if (!kj || !(kj->items[0].key = strdup(""))) {
		if (kj)
			kv_job_free(kj);
		sm_iq_error(q, "resource-constraint");
		return;
	}
	kj->nitems = 1;
	if (q->set) {
		rc = kv_serialise(&b, q->payload);
		if (rc == 0)
			rc = kv_take(&b, &kj->items[0].val, &kj->items[0].len);
		sm_buf_free(&b);
		if (rc < 0) {
			kv_job_free(kj);
			sm_iq_error(q, rc == -ENOBUFS ? "policy-violation" : "resource-constraint");
			return;
		}
	}
	kv_submit(q, kj);
}

/* ---- XEP-0049 jabber:iq:private ----------------------------------------- */

static bool kv_private_reserved(const char *ns)
{
	return ns[0] == '\0' || strncmp(ns, "jabber:", 7) == 0 ||
	       strncmp(ns, "http://jabber.org/", 18) == 0 || strcmp(ns, NS_VCARD) == 0;
}

/* "{ns}local", malloc'd; NULL when out of memory. */
static char *kv_private_key(const struct xtree_node *el)
{
	size_t nl = strlen(el->ns), ll = strlen(el->local);
	char *k = malloc(nl + ll + 3);

	if (!k)
		return NULL;
	k[0] = '{';
	memcpy(k + 1, el->ns, nl);
	k[nl + 1] = '}';
	memcpy(k + nl + 2, el->local, ll + 1);
	return k;
}

/* Fill item it for el: its key, and for a set every sibling from el on with
 * the same name serialised into one value (a get: el as asked).  0 or the
 * error condition to answer. */
static const char *kv_private_item(struct kv_item *it, const struct xtree_node *el, bool set)
{
	struct sm_buf b = { .max = SM_KV_VALUE_MAX };
	int rc = 0;

	it->key = kv_private_key(el);
	if (!it->key)
		return "resource-constraint";
	for (const struct xtree_node *c = el; c && rc == 0; c = set ? xtree_next(c, c->ns, c->local)
							   : NULL)
		rc = kv_serialise(&b, c);
	if (rc == 0)
		rc = set ? kv_take(&b, &it->val, &it->len)
			 : kv_take(&b, (uint8_t **)&it->asked, &it->asked_len);
	sm_buf_free(&b);
	if (rc == -ENOBUFS)
		return "policy-violation";
	return rc < 0 ? "resource-constraint" : NULL;
}

void sm_kv_private(struct sm_iq *q)
{
	const struct xtree_node *first = xtree_child(q->payload, NULL, NULL), *c, *d;
	const char *cond = NULL;
	struct kv_job *kj;
	bool seen;

	if (q->where != SM_IQ_OWN) {
		sm_iq_error(q, "forbidden");   /* XEP-0049 §2.3: another user's data */
		return;
	}
	if (!first) {
		/* §2.3: a get without a child is "Bad Format" (bad-request); any
		 * other query without one MUST be Not Acceptable. */
		sm_iq_error(q, q->set ? "not-acceptable" : "bad-request");
		return;
	}
	for (c = first; c; c = xtree_next(c, NULL, NULL)) {
		if (kv_private_reserved(c->ns)) {
			sm_iq_error(q, "not-acceptable");
			return;
		}
		if (!q->set && strcmp(c->ns, first->ns) != 0) {
			sm_iq_error(q, "bad-request");   /* a get asks for one namespace */
			return;
		}
	}
	kj = kv_job_new(q, q->set ? KV_PRIVATE_SET : KV_PRIVATE_GET, NS_PRIVATE);
	if (!kj) {
		sm_iq_error(q, "resource-constraint");
		return;
	}
	for (c = first; c && !cond; c = xtree_next(c, NULL, NULL)) {
		/* One item per distinct name: a later same-named sibling is in
		 * the first one's value already (set) or asked for twice (get). */
		seen = false;
		for (d = first; d != c && !seen; d = xtree_next(d, NULL, NULL))
			seen = strcmp(d->ns, c->ns) == 0 && strcmp(d->local, c->local) == 0;
		if (seen)
			continue;
		if (kj->nitems == SM_KV_ITEMS_MAX) {
			cond = "policy-violation";
			break;
		}
		cond = kv_private_item(&kj->items[kj->nitems++], c, q->set);
	}
	if (cond) {
		kv_job_free(kj);
		sm_iq_error(q, cond);
		return;
	}
	kv_submit(q, kj);
}

/* ---- rows written behind for the services (sm/muc_admin.c, sm/pubsub.c) ---- */

struct put_job {
	struct sm_job job;
	size_t len;
	bool del;
	char *user, *ns, *key, *val;   /* into data */
	char data[];
};

static void put_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_put[] =
		"INSERT INTO kv(user, ns, key, value) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT(user, ns, key) DO UPDATE SET value = excluded.value";
	static const char sql_del[] = "DELETE FROM kv WHERE user = ?1 AND ns = ?2 AND key = ?3";
	struct put_job *pj = (struct put_job *)j;
	sm_stmt *q = sm_db_stmt(db, pj->del ? sql_del : sql_put);

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, pj->user);
	sm_db_bind_text(q, 2, pj->ns);
	sm_db_bind_text(q, 3, pj->key);
	if (!pj->del)
		sm_db_bind_blob(q, 4, pj->val, pj->len);
	j->rc = sm_db_exec(db, q, pj->del ? "kv delete" : "kv put");
}

void sm_kv_put_behind(struct sm *sm, const char *user, const char *ns, const char *key,
		      const void *val, size_t len)
{
	size_t ul = strlen(user) + 1, nl = strlen(ns) + 1, kl = strlen(key) + 1;
	struct put_job *pj = calloc(1, sizeof(*pj) + ul + nl + kl + len + 1);

	if (!pj) {
		log_warn("out of memory writing a row", "user=\"%s\" ns=\"%s\"", user, ns);
		return;
	}
	pj->user = pj->data;
	memcpy(pj->user, user, ul);
	pj->ns = pj->user + ul;
	memcpy(pj->ns, ns, nl);
	pj->key = pj->ns + nl;
	memcpy(pj->key, key, kl);
	pj->val = pj->key + kl;
	if (val)
		memcpy(pj->val, val, len);
	pj->len = len;
	pj->del = val == NULL;
	pj->job.run = put_run;     /* written behind: the store frees it */
	sm_store_submit(sm->store, &pj->job);
}
