/*
 * sm_caps — XEP-0115 entity capabilities, as the session server needs them
 * for PEP notifications (sm/pep.c, XEP-0163 §4.3.3): which nodes a
 * resource asks events for (its +notify features).
 *
 * sm_caps_presence() reads the <c/> of an available presence and points the
 * session at the cached entry of its ver.  The cache maps ver -> +notify
 * features; an unknown ver is asked once with a disco#info query from the
 * server's domain to that resource (id 'pep-caps-<n>'), whose answer
 * sm_caps_iq_answer() consumes: it computes the verification string of the
 * answer (§5.1) and checks it against ver (§5.4).  A verified entry is
 * shared by every session announcing that ver; an unverified one (hash that
 * does not match, unsupported hash function, ill-formed answer) is used for
 * its sender only and never found by ver.  The caller learns whether s's
 * capabilities are now known, so PEP can send the last published items.
 *
 * A session holds a pointer to its entry and the entry's generation
 * (sm_session.caps, caps_gen): when the cache is full the least recently
 * used entry is replaced and its generation bumped, and sessions that
 * pointed to it read as having no known capabilities.
 *
 * Bounds: node and ver SM_CAPS_NAME_MAX bytes, SM_CAPS_MAX cached versions
 * with at most SM_CAPS_FEATURES_MAX bytes of +notify features each,
 * SM_CAPS_QUERIES_MAX disco#info queries in flight (those of ended sessions
 * are forgotten when the table is full), SM_CAPS_S_MAX bytes of
 * verification string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/xtree.h"
#include "sm/sm_int.h"
#include "tls/crypto.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_XDATA "jabber:x:data"

#define SM_CAPS_NAME_MAX 256
#define SM_CAPS_MAX 1024
#define SM_CAPS_FEATURES_MAX 4096
#define SM_CAPS_QUERIES_MAX 256
#define SM_CAPS_S_MAX (1u << 20)     /* a verification string; a query being built */

/* One entity-capabilities version: the +notify features its answer listed.
 * When the cache is full the least recently used entry is replaced and its
 * gen bumped: sessions that pointed to it (sm_session.caps_gen) then read
 * as having no known capabilities. */
struct sm_caps_entry {
	char *ver;
	char *notify;        /* "\n" + each node + "\n"; "\n" when none */
	uint64_t gen;
	uint64_t used;       /* p->tick when last looked up */
	bool shared;         /* ver verified (XEP-0115 §5.4): usable for every session */
};

/* A disco#info query in flight. */
struct caps_asked {
	uint64_t seq;        /* its id: pep-caps-<seq> */
	uint32_t link;
	uint64_t sid;
	char *ver;
	int hash;            /* 0 sha-1, 1 sha-256, -1 other (cannot be verified) */
};

struct sm_caps {
	struct sm_caps_entry caps[SM_CAPS_MAX];
	size_t ncaps;
	struct caps_asked queries[SM_CAPS_QUERIES_MAX];
	size_t nqueries;
	uint64_t seq;        /* query ids */
	uint64_t tick;       /* lookups, for LRU */
	struct sm_buf out;   /* queries being built */
};

static struct sm_caps *caps_get(struct sm *sm)
{
	if (!sm->caps) {
		sm->caps = calloc(1, sizeof(*sm->caps));
		if (sm->caps)
			sm->caps->out.max = SM_CAPS_S_MAX;
	}
	return sm->caps;
}

void sm_caps_free(struct sm *sm)
{
	struct sm_caps *p = sm->caps;

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
	sm->caps = NULL;
}

/* ---- the cache ----------------------------------------------------------- */

/* The capabilities of s, if still cached. */
static const struct sm_caps_entry *caps_of(const struct sm_session *s)
{
	const struct sm_caps_entry *c = s->caps;

	return c && c->gen == s->caps_gen ? c : NULL;
}

static void caps_set(struct sm_session *s, struct sm_caps_entry *c)
{
	s->caps = c;
	s->caps_gen = c ? c->gen : 0;
}

bool sm_caps_wants(const struct sm_session *s, const char *node)
{
	const struct sm_caps_entry *c = caps_of(s);
	size_t n = strlen(node);
	const char *at;

	if (!c)
		return false;
	for (at = strstr(c->notify, node); at; at = strstr(at + 1, node))
		if (at[-1] == '\n' && at[n] == '\n')
			return true;
	return false;
}

static struct sm_caps_entry *caps_find(struct sm_caps *p, const char *ver)
{
	for (size_t i = 0; i < p->ncaps; i++) {
		if (p->caps[i].shared && strcmp(p->caps[i].ver, ver) == 0) {
			p->caps[i].used = ++p->tick;
			return &p->caps[i];
		}
	}
	return NULL;
}

/* ---- disco#info queries ------------------------------------------------- */

/* Ask s what ver means: <iq type='get' from=domain><query node='node#ver'/>. */
static void caps_query(struct sm *sm, struct sm_caps *p, struct sm_session *s, const char *node,
		       const char *ver, const char *hash)
{
	struct caps_asked *pq;
	const char *domain = strchr(s->bare, '@');
	char id[40];

	for (size_t i = 0; i < p->nqueries; i++)
		if (p->queries[i].link == s->link->id && p->queries[i].sid == s->sid &&
		    strcmp(p->queries[i].ver, ver) == 0)
			return;     /* already asked */
	if (p->nqueries == SM_CAPS_QUERIES_MAX) {
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
	if (p->nqueries == SM_CAPS_QUERIES_MAX) {
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

enum sm_caps_news sm_caps_presence(struct sm *sm, struct sm_session *s, const void *raw,
				   size_t len)
{
	struct sm_caps *p = caps_get(sm);
	const struct sm_caps_entry *prev = caps_of(s);
	struct sm_caps_entry *now;
	const struct xtree_node *c;
	const char *node, *ver, *hash;
	struct xtree *t;
	int err;

	if (!p)
		return SM_CAPS_NONE;
	caps_set(s, NULL);
	s->caps_pending = false;
	t = xtree_parse(raw, len, XTREE_CTX_C2S, NULL, &err);
	c = t ? xtree_child(xtree_root(t), NS_CAPS, "c") : NULL;
	node = xtree_attr(c, "node");
	ver = xtree_attr(c, "ver");
	hash = xtree_attr(c, "hash");
	if (!node || !ver || !ver[0] || !hash || strlen(ver) > SM_CAPS_NAME_MAX ||
	    strlen(node) > SM_CAPS_NAME_MAX) {
		xtree_free(t);      /* no capabilities: no +notify */
		return SM_CAPS_NONE;
	}
	now = caps_find(p, ver);
	caps_set(s, now);
	if (!now) {
		s->caps_pending = true;
		caps_query(sm, p, s, node, ver, hash);
	}
	xtree_free(t);
	return !now ? SM_CAPS_ASKED : now != prev ? SM_CAPS_NEW : SM_CAPS_SAME;
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
	struct sm_buf b = { .max = SM_CAPS_S_MAX };
	const char *form_type = NULL;
	char *out = NULL;

	for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
	     f = xtree_next(f, NS_XDATA, "field")) {
		const char *var = xtree_attr(f, "var");
		struct strv vals = { .owned = false };
		struct sm_buf fb = { .max = SM_CAPS_S_MAX };

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

bool sm_caps_verify(const char *hash, const char *ver, const struct xtree_node *query)
{
	struct strv ids = { .owned = true }, feats = { .owned = false }, forms = { .owned = true };
	struct sm_buf b = { .max = SM_CAPS_S_MAX };
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
static struct sm_caps_entry *caps_learn(struct sm_caps *p, const char *ver, const char *hash,
					const struct xtree_node *query)
{
	struct sm_buf b = { .max = SM_CAPS_FEATURES_MAX };
	struct sm_caps_entry *c;

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
	if (p->ncaps < SM_CAPS_MAX) {
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
	c->shared = hash && sm_caps_verify(hash, ver, query);
	return c;
}

bool sm_caps_iq_answer(struct sm *sm, struct sm_session *s, const struct wire_msg *m,
		       bool *known)
{
	struct sm_caps *p = sm->caps;
	const struct wire_str *id = &m->u.stanza.id;
	struct sm_caps_entry *c;
	struct caps_asked pq;
	unsigned long long seq;
	char buf[40];
	size_t i;
	bool result = m->u.stanza.type.len == 6 && memcmp(m->u.stanza.type.p, "result", 6) == 0;

	*known = false;
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
	 * presence without capabilities cleared caps_pending). */
	if (s->caps_pending) {
		caps_set(s, c);
		*known = c != NULL;
	}
	s->caps_pending = false;
	free(pq.ver);
	return true;
}
