/*
 * sm_mam — XEP-0313 Message Archive Management for one-to-one messages,
 * with XEP-0359 stanza ids.
 *
 * Archiving (routing path, sm thread): a message of type chat or normal
 * with a <body/> and no XEP-0334 <no-store/> hint is archived for its local
 * sender (outgoing copy, sm_mam_outgoing()) and its local recipient
 * (incoming copy, sm_mam_incoming() + sm_mam_commit()).  Each copy is one
 * allocation (the write job with the stanza in it) and one job submit:
 * write-behind, the routing path never waits on the disk.  The recipient's
 * copy is also what the recipient gets: the stanza with xmlns='jabber:client'
 * made explicit (so it can be forwarded inside another element as it is),
 * any <stanza-id/> whose `by` claims the recipient's archive removed
 * (XEP-0359 §5) and ours inserted first.
 *
 * Rows: archive(user, with_jid = the peer's bare JID, with_full = its JID as
 * addressed (full when it had a resource), stanza_id = 16 base32 characters
 * from the crypto RNG, raw, ts = Unix seconds).  Order is the rowid's: the
 * order of submission, which is chronological.
 *
 * Queries (iq set <query xmlns='urn:xmpp:mam:2'/> to the own account) run
 * as a read job on the storage thread; done() sends the result messages and
 * the <fin/> on the sm thread.  Filters: the XEP-0004 form fields FORM_TYPE,
 * with, start, end (any other field: feature-not-implemented, §4.1.1);
 * XEP-0059 max (capped at SM_MAM_PAGE_MAX), after, before (empty: the last
 * page).  An RSM id not in the archive: item-not-found.
 *
 * What is archived: session_server.mam_default (roster contacts by default),
 * or the account's own preference (XEP-0313 §6 prefs default always, roster
 * or never, kept in table kv); per-JID <always/>/<never/> lists are not kept
 * (feature-not-implemented).  Archiving pauses while the storage thread is
 * SM_STORE_BACKLOG jobs behind.
 *
 * Retention: sm_mam_tick() (sm loop) submits a DELETE of rows older than
 * the configured days at most once a minute.  Retention 0 turns archiving
 * and the sweep off; queries still read what is stored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "parser/xtree.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"
#include "tls/crypto.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_SID "urn:xmpp:sid:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_XDATA "jabber:x:data"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_CLIENT "jabber:client"

#define SM_MAM_ID_LEN 16            /* stanza ids: base32 characters */
#define SM_MAM_PAGE_MAX 100         /* results per query page, whatever <max/> asks */
#define SM_MAM_SWEEP_EVERY 60       /* seconds between retention sweeps */
#define SM_MAM_QUERYID_MAX 256      /* bytes of a queryid we echo */

bool sm_mam_on(const struct sm *sm)
{
	return sm->mam_retention_days > 0;
}

static const char *const policy_names[] = { "never", "roster", "always" };

/* The policy of account u (its XEP-0313 prefs default, else the server's). */
static int policy_of(const struct sm *sm, const struct sm_user *u)
{
	return u && u->mam_default >= 0 ? u->mam_default : sm->mam_default;
}

/*
 * Whether a message between local account `user` and peer (a canonical JID,
 * full or bare) goes into user's archive (XEP-0313 §6 defaults: always;
 * roster: the peer is a roster item; never).  Decided before anything is
 * parsed or copied, so archiving that is off costs a lookup.  A storage
 * thread far behind (SM_STORE_BACKLOG jobs) pauses archiving rather than
 * letting the queue grow without bound: the archive is a convenience, the
 * messages themselves are delivered or stored as always.
 */
static bool wanted(struct sm *sm, const char *user, const char *peer, size_t peer_len)
{
	struct sm_user *u = sm_user_find(sm, user, strlen(user));
	const char *slash = memchr(peer, '/', peer_len);
	size_t blen = slash ? (size_t)(slash - peer) : peer_len;
	char bare[JID_MAX + 1];
	const struct sm_roster_item *it;

	switch (policy_of(sm, u)) {
	case SM_MAM_NEVER:
		return false;
	case SM_MAM_ROSTER:
		if (!u || !u->nroster || blen > JID_MAX)
			return false;
		memcpy(bare, peer, blen);
		bare[blen] = '\0';
		it = sm_roster_find(u, bare);
		if (!it || !it->listed)
			return false;
		break;
	}
	if (sm_store_pending(sm->store) >= SM_STORE_BACKLOG) {
		log_warn("storage far behind: message not archived", "user=\"%s\" pending=%zu",
			 user, sm_store_pending(sm->store));
		return false;
	}
	return true;
}

/* ---- archiving ---------------------------------------------------------- */

struct sm_mam_copy {
	struct sm_job job;
	int64_t ts;
	char *user, *with, *with_full;  /* point into data */
	char *raw;                      /* points into data; len bytes */
	size_t len;
	char sid[SM_MAM_ID_LEN + 1];
	char data[];
};

static void id_generate(char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t rnd[SM_MAM_ID_LEN];

	if (crypto_random(rnd, sizeof(rnd)) < 0 && getentropy(rnd, sizeof(rnd)) < 0) {
		/* Unique still (the rowid orders), only guessable: log it. */
		log_warn("no randomness for an archive id", "%s", "");
		memset(rnd, 0, sizeof(rnd));
	}
	for (size_t i = 0; i < SM_MAM_ID_LEN; i++)
		out[i] = alphabet[rnd[i] & 31];
	out[SM_MAM_ID_LEN] = '\0';
}

static void put_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "INSERT INTO archive(user, with_jid, with_full, stanza_id, raw, ts)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	struct sm_mam_copy *c = (struct sm_mam_copy *)j;
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, c->user);
	sm_db_bind_text(q, 2, c->with);
	sm_db_bind_text(q, 3, c->with_full);
	sm_db_bind_text(q, 4, c->sid);
	sm_db_bind_blob(q, 5, c->raw, c->len);
	sm_db_bind_int64(q, 6, c->ts);
	j->rc = sm_db_exec(db, q, "archive add");
}

/* Canonical bare JID of s[0..n) into out (JID_MAX + 1); false when not a JID. */
static bool canon(const char *s, size_t n, bool full, char *out)
{
	struct jid_view v;

	return n <= JID_MAX && !memchr(s, 0, n) && jid_parse(s, n, &v) == 0 &&
	       jid_canon(&v, full, out, JID_MAX + 1) >= 0;
}

/* What the archive needs to know of a message. */
struct facts {
	bool archive;       /* has a body, no no-store hint */
	bool strip;         /* carries a stanza-id claiming `user`'s archive */
};

/* el is a <stanza-id/> claiming to be by user's archive (XEP-0359 §5). */
static bool claims(const struct xtree_node *el, const char *user)
{
	char by[JID_MAX + 1];
	const char *a;

	if (strcmp(el->ns, NS_SID) != 0 || strcmp(el->local, "stanza-id") != 0)
		return false;
	a = xtree_attr(el, "by");
	return a && canon(a, strlen(a), false, by) && strcmp(by, user) == 0;
}

static struct facts facts_get(const struct xtree_node *root, const char *user)
{
	struct facts f = { 0 };

	f.archive = xtree_child(root, NS_CLIENT, "body") != NULL &&
		    xtree_child(root, NS_HINTS, "no-store") == NULL;
	for (const struct xtree_node *n = root->first; user && n; n = n->next)
		if (claims(n, user))
			f.strip = true;
	return f;
}

/* Offset just past the top element's start tag in a well-formed element
 * (quotes respected: '>' may appear in attribute values); 0 when none or
 * when the element is empty (<x/>: nothing to insert into). */
static size_t start_tag_end(const char *p, size_t n)
{
	char quote = 0;

	for (size_t i = 1; i < n; i++) {
		if (quote) {
			if (p[i] == quote)
				quote = 0;
		} else if (p[i] == '\'' || p[i] == '"') {
			quote = p[i];
		} else if (p[i] == '>') {
			return p[i - 1] == '/' ? 0 : i + 1;
		}
	}
	return 0;
}

static void count_put(void *arg, const char *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
}

struct span {
	char *p;
	size_t len, cap;
};

static void span_put(void *arg, const char *p, size_t n)
{
	struct span *s = arg;

	if (n > s->cap - s->len)
		n = s->cap - s->len;    /* cannot happen: sized by count_put() */
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static char *put_str(char **at, const char *s, size_t n)
{
	char *r = *at;

	memcpy(r, s, n);
	r[n] = '\0';
	*at += n + 1;
	return r;
}

/*
 * Build one copy: the job holding raw (rewritten for the recipient when sid
 * is set, i.e. `incoming`).  NULL when the message is not archived or on
 * failure (logged).
 */
static struct sm_mam_copy *copy_new(struct sm *sm, const char *user, const char *with,
				    const char *with_full, const struct wire_msg *m, bool incoming)
{
	static const struct xmltag_attr ns = { "xmlns", NS_CLIENT };
	const char *raw = (const char *)m->u.stanza.raw.p;
	size_t len = m->u.stanza.raw.len, ul = strlen(user), wl = strlen(with);
	size_t fl = strlen(with_full), kids = 0, close = 0, cap, n, at;
	struct xtree *t;
	const struct xtree_node *root, *k;
	struct sm_mam_copy *c = NULL;
	struct facts f;
	struct span sp;
	char *d, sid[SM_MAM_ID_LEN + 1], sidel[64 + JID_MAX + SM_MAM_ID_LEN];
	int err, sl = 0;

	t = xtree_parse(raw, len, XTREE_CTX_C2S, NULL, &err);
	if (!t) {
		log_debug("message not archived: unparsed", "user=\"%s\" error=%s", user,
			  xtree_error_str(err));
		return NULL;
	}
	root = xtree_root(t);
	f = facts_get(root, incoming ? user : NULL);
	if (!f.archive)
		goto out;
	if (f.strip) {
		/* Rare (a forged id): rebuild from the children we keep. */
		for (k = root->first; k; k = k->next)
			if (!claims(k, user))
				xtree_write(k, count_put, &kids);
		for (close = 0; close < len && raw[len - 1 - close] != '<'; close++)
			;
		close++;
	}
	id_generate(sid);
	if (incoming) {
		sl = snprintf(sidel, sizeof(sidel), "<stanza-id xmlns='" NS_SID "' id='%s' by='%s'/>",
			      sid, user);
		if (sl < 0 || (size_t)sl >= sizeof(sidel))
			goto out;
	}
	/* The start tag gains at most " xmlns='jabber:client'". */
	cap = len + 32 + kids + close;
	c = malloc(sizeof(*c) + ul + wl + fl + 3 + cap + (size_t)sl);
	if (!c) {
		log_warn("message not archived: out of memory", "user=\"%s\"", user);
		goto out;
	}
	memset(&c->job, 0, sizeof(c->job));
	c->job.run = put_run;
	c->ts = (int64_t)time(NULL);
	memcpy(c->sid, sid, sizeof(sid));
	d = c->data;
	c->user = put_str(&d, user, ul);
	c->with = put_str(&d, with, wl);
	c->with_full = put_str(&d, with_full, fl);
	c->raw = d;
	n = xmltag_rewrite(raw, len, &ns, 1, c->raw, len + 32);
	at = n && n <= len + 32 ? start_tag_end(c->raw, n) : 0;
	if (!at) {
		free(c);
		c = NULL;
		goto out;
	}
	if (incoming) {
		if (f.strip) {
			memcpy(c->raw + at, sidel, (size_t)sl);
			sp = (struct span){ c->raw, at + (size_t)sl, at + (size_t)sl + kids };
			for (k = root->first; k; k = k->next)
				if (!claims(k, user))
					xtree_write(k, span_put, &sp);
			memcpy(c->raw + sp.len, raw + len - close, close);
			n = sp.len + close;
		} else {
			memmove(c->raw + at + sl, c->raw + at, n - at);
			memcpy(c->raw + at, sidel, (size_t)sl);
			n += (size_t)sl;
		}
	}
	c->len = n;
out:
	xtree_free(t);
	return c;
}

void sm_mam_outgoing(struct sm *sm, const char *user, const char *to, size_t to_len,
		     const struct wire_msg *m)
{
	char with[JID_MAX + 1], with_full[JID_MAX + 1];
	struct sm_mam_copy *c;

	if (!sm_mam_on(sm) || !wanted(sm, user, to, to_len) ||
	    !canon(to, to_len, true, with_full) || !canon(to, to_len, false, with))
		return;
	if (strcmp(with, user) == 0)
		return;     /* to oneself: the incoming copy is the one archived */
	c = copy_new(sm, user, with, with_full, m, false);
	if (c)
		sm_store_submit(sm->store, &c->job);
}

struct sm_mam_copy *sm_mam_incoming(struct sm *sm, const char *user, const char *from,
				    size_t from_len, const struct wire_msg *m,
				    struct wire_msg *out)
{
	char with[JID_MAX + 1], with_full[JID_MAX + 1];
	struct sm_mam_copy *c;

	if (!sm_mam_on(sm) || !wanted(sm, user, from, from_len) ||
	    !canon(from, from_len, true, with_full) || !canon(from, from_len, false, with))
		return NULL;
	c = copy_new(sm, user, with, with_full, m, true);
	if (!c)
		return NULL;
	*out = *m;
	out->u.stanza.raw = wire_s(c->raw, c->len);
	return c;
}

void sm_mam_commit(struct sm *sm, struct sm_mam_copy *c)
{
	if (c)
		sm_store_submit(sm->store, &c->job);
}

/* ---- retention ---------------------------------------------------------- */

struct sweep_job {
	struct sm_job job;
	int64_t before;
};

static void sweep_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "DELETE FROM archive WHERE ts < ?1";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_int64(q, 1, ((struct sweep_job *)j)->before);
	j->rc = sm_db_exec(db, q, "archive sweep");
	if (j->rc == 0 && sm_db_changes(db) > 0)
		log_info("archive retention sweep", "deleted=%d", sm_db_changes(db));
}

static int64_t mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int sm_mam_timeout(const struct sm *sm)
{
	return sm_mam_on(sm) ? SM_MAM_SWEEP_EVERY * 1000 : -1;
}

void sm_mam_tick(struct sm *sm)
{
	int64_t now = mono_seconds();
	struct sweep_job *j;

	if (!sm_mam_on(sm) || (sm->mam_swept && now - sm->mam_swept_at < SM_MAM_SWEEP_EVERY))
		return;
	j = calloc(1, sizeof(*j));
	if (!j)
		return;     /* next tick */
	sm->mam_swept = true;
	sm->mam_swept_at = now;
	j->job.run = sweep_run;
	j->before = (int64_t)time(NULL) - (int64_t)sm->mam_retention_days * 86400;
	sm_store_submit(sm->store, &j->job);
}

/* ---- queries ------------------------------------------------------------ */

struct row {
	char sid[SM_MAM_ID_LEN + 1];
	int64_t ts;
	size_t len;
	uint8_t *raw;
};

struct query_job {
	struct sm_job job;
	struct sm_iq_ref *ref;
	uint32_t link;
	uint64_t sess;
	char *queryid;                  /* NULL: none */
	/* filters */
	bool with_full;                 /* `with` had a resource: match with_full */
	bool has_start, has_end;
	int64_t start, end;
	int page;                       /* 0: from the start / after; 1: before (last page) */
	unsigned max;
	char rsm_id[SM_MAM_ID_LEN + 1]; /* after / before; "" for none */
	/* results */
	struct row *rows;
	size_t nrows;
	int64_t count;
	bool complete;
	char user[JID_MAX + 1];
	char with[JID_MAX + 1];         /* "" for none */
	/* A room's archive (sm/muc.c): the requester and its iq id; the results
	 * go out from the room through sm_muc_emit(). */
	char *room_to, *iq_id;
};

static void query_free(struct query_job *qj)
{
	for (size_t i = 0; i < qj->nrows; i++)
		free(qj->rows[i].raw);
	free(qj->rows);
	free(qj->queryid);
	free(qj->room_to);
	free(qj->iq_id);
	sm_iq_ref_free(qj->ref);
	free(qj);
}

/* The filter columns: ?1 user, ?2 with (NULL: any), ?3 full-JID match,
 * ?4 start, ?5 end (NULL: open), ?6 lower rowid bound, ?7 upper. */
/* (The casts give PostgreSQL the parameters' types where they first appear.) */
#define QUERY_WHERE " WHERE user = ?1 AND (CAST(?2 AS TEXT) IS NULL OR (CASE WHEN ?3 != 0" \
		    " THEN with_full ELSE with_jid END) = ?2) AND (CAST(?4 AS BIGINT) IS NULL OR" \
		    " ts >= ?4) AND (CAST(?5 AS BIGINT) IS NULL OR ts <= ?5) AND id > ?6 AND id < ?7"

static void query_bind(sm_stmt *q, const struct query_job *qj, int64_t lo, int64_t hi)
{
	sm_db_bind_text(q, 1, qj->user);
	if (qj->with[0])
		sm_db_bind_text(q, 2, qj->with);
	sm_db_bind_int64(q, 3, qj->with_full);
	if (qj->has_start)
		sm_db_bind_int64(q, 4, qj->start);
	if (qj->has_end)
		sm_db_bind_int64(q, 5, qj->end);
	sm_db_bind_int64(q, 6, lo);
	sm_db_bind_int64(q, 7, hi);
}

static void query_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_id[] = "SELECT id FROM archive WHERE user = ?1 AND stanza_id = ?2";
	static const char sql_count[] = "SELECT count(*) FROM archive" QUERY_WHERE;
	static const char sql_fwd[] = "SELECT stanza_id, ts, raw FROM archive" QUERY_WHERE
				      " ORDER BY id ASC LIMIT ?8";
	static const char sql_back[] = "SELECT stanza_id, ts, raw FROM archive" QUERY_WHERE
				       " ORDER BY id DESC LIMIT ?8";
	struct query_job *qj = (struct query_job *)j;
	int64_t lo = 0, hi = INT64_MAX, at = -1;
	sm_stmt *q;
	size_t fetched = 0;
	int rc;

	if (qj->rsm_id[0]) {
		q = sm_db_stmt(db, sql_id);
		if (!q) {
			j->rc = -EIO;
			return;
		}
		sm_db_bind_text(q, 1, qj->user);
		sm_db_bind_text(q, 2, qj->rsm_id);
		rc = sm_db_step(q);
		if (rc == SM_ROW)
			at = sm_db_col_int64(q, 0);
		sm_db_done(q);
		if (rc != SM_ROW && rc != SM_DONE) {
			j->rc = sm_db_fail(db, "archive id");
			return;
		}
		if (at < 0) {
			j->rc = -ENOENT;
			return;
		}
		if (qj->page)
			hi = at;
		else
			lo = at;
	}
	q = sm_db_stmt(db, sql_count);
	if (!q) {
		j->rc = -EIO;
		return;
	}
	query_bind(q, qj, 0, INT64_MAX);
	if (sm_db_step(q) == SM_ROW)
		qj->count = sm_db_col_int64(q, 0);
	sm_db_done(q);
	if (qj->max == 0) {
		qj->complete = qj->count == 0;
		return;
	}
	qj->rows = calloc(qj->max, sizeof(*qj->rows));
	q = qj->rows ? sm_db_stmt(db, qj->page ? sql_back : sql_fwd) : NULL;
	if (!q) {
		j->rc = -ENOMEM;
		return;
	}
	query_bind(q, qj, lo, hi);
	sm_db_bind_int64(q, 8, qj->max + 1);
	while ((rc = sm_db_step(q)) == SM_ROW) {
		struct row *r;
		const char *sid = sm_db_col_text(q, 0);
		const void *raw = sm_db_col_blob(q, 2);
		size_t len = sm_db_col_bytes(q, 2);

		if (++fetched > qj->max)
			break;  /* one more than a page: not complete */
		r = &qj->rows[qj->nrows];
		r->raw = len > 0 ? malloc((size_t)len) : NULL;
		if (!r->raw || !sid || strlen(sid) > SM_MAM_ID_LEN) {
			free(r->raw);
			continue;   /* not one of ours, or out of memory: skipped */
		}
		memcpy(r->raw, raw, (size_t)len);
		r->len = (size_t)len;
		memcpy(r->sid, sid, strlen(sid) + 1);
		r->ts = sm_db_col_int64(q, 1);
		qj->nrows++;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE) {
		j->rc = sm_db_fail(db, "archive query");
		return;
	}
	qj->complete = fetched <= qj->max;
	if (qj->page) {     /* fetched newest first: chronological order */
		for (size_t i = 0; i < qj->nrows / 2; i++) {
			struct row tmp = qj->rows[i];

			qj->rows[i] = qj->rows[qj->nrows - 1 - i];
			qj->rows[qj->nrows - 1 - i] = tmp;
		}
	}
}

static void stamp_fmt(int64_t ts, char *out, size_t n)
{
	time_t t = (time_t)ts;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void account_query_done(struct sm *sm, struct query_job *qj, int rc);

/* The results of a room archive query, from the room (XEP-0313 §5.1.2 on a MUC). */
static void room_query_done(struct sm *sm, struct query_job *qj, int rc)
{
	struct sm_buf *b = &sm->scratch;
	char stamp[32];

	if (rc < 0) {
		sm_buf_clear(b);
		sm_buf_fmt(b, "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
			   rc == -ENOENT ? "cancel" : "wait",
			   rc == -ENOENT ? "item-not-found" : "internal-server-error");
		sm_muc_emit(sm, WIRE_KIND_IQ, "error", qj->user, qj->room_to, qj->iq_id,
			    sm_buf_data(b), sm_buf_used(b));
		return;
	}
	for (size_t i = 0; i < qj->nrows; i++) {
		const struct row *r = &qj->rows[i];

		stamp_fmt(r->ts, stamp, sizeof(stamp));
		sm_buf_clear(b);
		sm_buf_str(b, "<result xmlns='" NS_MAM "'");
		if (qj->queryid) {
			sm_buf_str(b, " queryid='");
			sm_buf_esc(b, qj->queryid, strlen(qj->queryid));
			sm_buf_str(b, "'");
		}
		sm_buf_fmt(b, " id='%s'><forwarded xmlns='" NS_FORWARD "'><delay xmlns='" NS_DELAY
			   "' stamp='%s'/>", r->sid, stamp);
		sm_buf_add(b, r->raw, r->len);
		sm_buf_str(b, "</forwarded></result>");
		if (!b->err)
			sm_muc_emit(sm, WIRE_KIND_MESSAGE, "", qj->user, qj->room_to, NULL,
				    sm_buf_data(b), sm_buf_used(b));
	}
	sm_buf_clear(b);
	sm_buf_fmt(b, "<fin xmlns='" NS_MAM "' complete='%s'><set xmlns='" NS_RSM "'>",
		   qj->complete ? "true" : "false");
	if (qj->nrows)
		sm_buf_fmt(b, "<first>%s</first><last>%s</last>", qj->rows[0].sid,
			   qj->rows[qj->nrows - 1].sid);
	sm_buf_fmt(b, "<count>%lld</count></set></fin>", (long long)qj->count);
	sm_muc_emit(sm, WIRE_KIND_IQ, "result", qj->user, qj->room_to, qj->iq_id, sm_buf_data(b),
		    sm_buf_used(b));
}

static void query_done(struct sm *sm, struct sm_job *j)
{
	struct query_job *qj = (struct query_job *)j;

	if (qj->room_to) {
		room_query_done(sm, qj, j->rc);
		query_free(qj);
		return;
	}
	account_query_done(sm, qj, j->rc);
}

static void account_query_done(struct sm *sm, struct query_job *qj, int rc)
{
	struct sm_link *l = sm_link_by_id(sm, qj->link);
	struct sm_session *s = l ? sm_session_by_sid(l, qj->sess) : NULL;
	struct sm_buf *b = &sm->scratch;
	struct sm_iq_ref *ref = qj->ref;
	char stamp[32];

	qj->ref = NULL;
	if (rc < 0 || !s || s->state != SM_SESS_BOUND) {
		sm_iq_ref_error(sm, ref, rc == -ENOENT ? "item-not-found"
					 : "internal-server-error");
		query_free(qj);
		return;
	}
	for (size_t i = 0; i < qj->nrows; i++) {
		const struct row *r = &qj->rows[i];

		stamp_fmt(r->ts, stamp, sizeof(stamp));
		sm_buf_clear(b);
		sm_buf_str(b, "<message to='");
		sm_buf_esc(b, s->full, s->full_len);
		sm_buf_str(b, "' from='");
		sm_buf_esc(b, qj->user, strlen(qj->user));
		sm_buf_str(b, "'><result xmlns='" NS_MAM "'");
		if (qj->queryid) {
			sm_buf_str(b, " queryid='");
			sm_buf_esc(b, qj->queryid, strlen(qj->queryid));
			sm_buf_str(b, "'");
		}
		sm_buf_fmt(b, " id='%s'><forwarded xmlns='" NS_FORWARD "'><delay xmlns='" NS_DELAY
			   "' stamp='%s'/>", r->sid, stamp);
		sm_buf_add(b, r->raw, r->len);
		sm_buf_str(b, "</forwarded></result></message>");
		if (b->err) {
			log_warn("archive result too large to send", "user=\"%s\" id=%s", qj->user,
				 r->sid);
			continue;
		}
		sm_deliver(sm, s, WIRE_KIND_MESSAGE, sm_ws(""), sm_ws(s->full), sm_ws(qj->user),
			   sm_ws(""), sm_ws(NS_MAM), sm_buf_data(b), sm_buf_used(b));
	}
	sm_buf_clear(b);
	sm_buf_fmt(b, "<fin xmlns='" NS_MAM "' complete='%s'><set xmlns='" NS_RSM "'>",
		   qj->complete ? "true" : "false");
	if (qj->nrows)
		sm_buf_fmt(b, "<first>%s</first><last>%s</last>", qj->rows[0].sid,
			   qj->rows[qj->nrows - 1].sid);
	sm_buf_fmt(b, "<count>%lld</count></set></fin>", (long long)qj->count);
	if (b->err)
		sm_iq_ref_error(sm, ref, "internal-server-error");
	else
		sm_iq_ref_result(sm, ref, (const char *)sm_buf_data(b), sm_buf_used(b));
	query_free(qj);
}

/* XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.s+](Z|(+|-)hh:mm), to Unix seconds. */
static bool datetime_parse(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, n = 0, tzh = 0, tzm = 0, sign = 0;
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm = { 0 };
	const char *p;

	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return false;
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		for (int i = 1; i <= 5; i++)
			if (i == 3 ? p[i] != ':' : (p[i] < '0' || p[i] > '9'))
				return false;
		if (sscanf(p + 1, "%2d:%2d%n", &tzh, &tzm, &n) != 2 || n != 5)
			return false;
		p += 6;
	} else {
		return false;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    tzh > 23 || tzm > 59 || y < 0 || h < 0 || mi < 0 || sec < 0 || tzh < 0 || tzm < 0)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) - sign * (tzh * 3600 + tzm * 60);
	return true;
}

/* The one <value/> of a single-valued field; NULL when it has none or several. */
static const char *field_value(const struct xtree_node *f)
{
	const struct xtree_node *v = xtree_child(f, NS_XDATA, "value");

	return v && !xtree_next(v, NS_XDATA, "value") ? xtree_text(v) : NULL;
}

/* Read the form into qj: NULL, or the error condition. */
static const char *form_read(const struct xtree_node *x, struct query_job *qj)
{
	const char *type = xtree_attr(x, "type"), *var, *v;
	char jid[JID_MAX + 1];
	struct jid_view jv;

	if (!type || strcmp(type, "submit") != 0)
		return "bad-request";
	for (const struct xtree_node *f = xtree_child(x, NS_XDATA, "field"); f;
	     f = xtree_next(f, NS_XDATA, "field")) {
		var = xtree_attr(f, "var");
		if (!var)
			return "bad-request";
		v = field_value(f);
		if (strcmp(var, "FORM_TYPE") == 0) {
			if (!v || strcmp(v, NS_MAM) != 0)
				return "bad-request";
		} else if (strcmp(var, "with") == 0) {
			if (!v || strlen(v) > JID_MAX || jid_parse(v, strlen(v), &jv) < 0 ||
			    jid_canon(&jv, true, jid, sizeof(jid)) < 0)
				return "bad-request";
			memcpy(qj->with, jid, strlen(jid) + 1);
			qj->with_full = jv.resource_len > 0;
		} else if (strcmp(var, "start") == 0) {
			if (!v || !datetime_parse(v, &qj->start))
				return "bad-request";
			qj->has_start = true;
		} else if (strcmp(var, "end") == 0) {
			if (!v || !datetime_parse(v, &qj->end))
				return "bad-request";
			qj->has_end = true;
		} else {
			return "feature-not-implemented";   /* XEP-0313 §4.1.1 */
		}
	}
	return NULL;
}

/* Read the RSM <set/> into qj: NULL, or the error condition. */
static const char *rsm_read(const struct xtree_node *set, struct query_job *qj)
{
	const struct xtree_node *max = xtree_child(set, NS_RSM, "max");
	const struct xtree_node *after = xtree_child(set, NS_RSM, "after");
	const struct xtree_node *before = xtree_child(set, NS_RSM, "before");
	const struct xtree_node *id = after ? after : before;
	unsigned long n;
	char *end;

	qj->max = SM_MAM_PAGE_MAX;
	if (!set)
		return NULL;
	if (xtree_child(set, NS_RSM, "index"))
		return "feature-not-implemented";   /* page jumping is not offered */
	if (after && before)
		return "bad-request";   /* XEP-0313 §4.3.2: use before-id/after-id */
	if (max) {
		errno = 0;
		n = strtoul(xtree_text(max), &end, 10);
		if (!*xtree_text(max) || *end || errno || xtree_text(max)[0] == '-')
			return "bad-request";
		qj->max = n < SM_MAM_PAGE_MAX ? (unsigned)n : SM_MAM_PAGE_MAX;
	}
	qj->page = before ? 1 : 0;
	if (id && id->text_len) {
		/* An id we never issued is not in the archive (XEP-0313 §4.3.2). */
		if (id->text_len > SM_MAM_ID_LEN)
			return "item-not-found";
		memcpy(qj->rsm_id, id->text, id->text_len + 1);
	} else if (after) {
		return "bad-request";   /* an empty <after/> names nothing */
	}
	return NULL;
}

static void query_form(struct sm_iq *q)
{
	static const char form[] =
		"<query xmlns='" NS_MAM "'><x xmlns='" NS_XDATA "' type='form'>"
		"<field type='hidden' var='FORM_TYPE'><value>" NS_MAM "</value></field>"
		"<field type='jid-single' var='with'/>"
		"<field type='text-single' var='start'/>"
		"<field type='text-single' var='end'/>"
		"</x></query>";

	sm_iq_result(q, form, sizeof(form) - 1);
}

/* A query job from the <query/> payload (form, RSM, queryid) for the archive
 * of `user`; NULL with the error condition in *cond. */
static struct query_job *query_parse(const struct xtree_node *payload, const char *user,
				     const char **cond)
{
	const struct xtree_node *x = xtree_child(payload, NS_XDATA, "x");
	const struct xtree_node *set = xtree_child(payload, NS_RSM, "set");
	const char *qid = xtree_attr(payload, "queryid");
	struct query_job *qj = NULL;

	*cond = NULL;
	if (xtree_next(x, NS_XDATA, "x") || xtree_next(set, NS_RSM, "set"))
		*cond = "bad-request";
	else if (qid && strlen(qid) > SM_MAM_QUERYID_MAX)
		*cond = "not-acceptable";
	else if (strlen(user) > JID_MAX || !(qj = calloc(1, sizeof(*qj))))
		*cond = "resource-constraint";
	if (*cond)
		return NULL;
	*cond = x ? form_read(x, qj) : NULL;
	if (!*cond)
		*cond = rsm_read(set, qj);
	if (!*cond && qid && !(qj->queryid = strdup(qid)))
		*cond = "resource-constraint";
	if (*cond) {
		query_free(qj);
		return NULL;
	}
	memcpy(qj->user, user, strlen(user) + 1);
	qj->job.run = query_run;
	qj->job.done = query_done;
	return qj;
}

void sm_mam_query(struct sm_iq *q)
{
	const char *cond;
	struct query_job *qj;

	if (!q->set) {
		query_form(q);
		return;
	}
	qj = query_parse(q->payload, q->account, &cond);
	if (!qj) {
		sm_iq_error(q, cond);
		return;
	}
	qj->link = q->s->link->id;
	qj->sess = q->s->sid;
	qj->ref = sm_iq_keep(q);
	if (!qj->ref) {
		sm_iq_error(q, "resource-constraint");
		query_free(qj);
		return;
	}
	sm_store_submit(q->sm->store, &qj->job);
}

const char *sm_mam_room_query(struct sm *sm, const char *room, const char *requester,
			      const char *iq_id, const struct xtree_node *query)
{
	const char *cond;
	struct query_job *qj = query_parse(query, room, &cond);

	if (!qj)
		return cond;
	qj->room_to = strdup(requester);
	qj->iq_id = strdup(iq_id ? iq_id : "");
	if (!qj->room_to || !qj->iq_id) {
		query_free(qj);
		return "resource-constraint";
	}
	sm_store_submit(sm->store, &qj->job);
	return NULL;
}

void sm_mam_new_id(char *out)
{
	id_generate(out);
}

void sm_mam_room_archive(struct sm *sm, const char *room, const char *occupant, const char *sid,
			 const void *raw, size_t len)
{
	size_t rl = strlen(room) + 1, ol = strlen(occupant) + 1;
	struct sm_mam_copy *c;

	if (sm_store_pending(sm->store) >= SM_STORE_BACKLOG) {
		log_warn("room message not archived: storage backlog", "room=\"%s\"", room);
		return;
	}
	c = calloc(1, sizeof(*c) + 2 * rl + ol + len);
	if (!c)
		return;
	c->user = c->data;
	memcpy(c->user, room, rl);
	c->with = c->user + rl;
	memcpy(c->with, room, rl);
	c->with_full = c->with + rl;
	memcpy(c->with_full, occupant, ol);
	c->raw = c->with_full + ol;
	memcpy(c->raw, raw, len);
	c->len = len;
	c->ts = (int64_t)time(NULL);
	memcpy(c->sid, sid, SM_MAM_ID_LEN + 1);
	c->job.run = put_run;   /* written behind: the store frees it */
	sm_store_submit(sm->store, &c->job);
}

/* ---- preferences -------------------------------------------------------- */

struct prefs_job {
	struct sm_job job;
	char user[JID_MAX + 1];
	int policy;
};

static void prefs_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] =
		"INSERT INTO kv(user, ns, key, value) VALUES (?1, 'urn:xmpp:mam:2', 'default', ?2)"
		" ON CONFLICT(user, ns, key) DO UPDATE SET value = excluded.value";
	struct prefs_job *pj = (struct prefs_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, pj->user);
	sm_db_bind_text(q, 2, policy_names[pj->policy]);
	j->rc = sm_db_exec(db, q, "mam prefs");
}

/*
 * XEP-0313 §6 preferences: the default (always, roster, never) is kept per
 * account (table kv, loaded with the account's record) and applied to every
 * later message; per-JID <always/> and <never/> lists are not kept, so a set
 * that carries any gets feature-not-implemented.
 */
void sm_mam_prefs(struct sm_iq *q)
{
	const char *def = xtree_attr(q->payload, "default");
	const struct xtree_node *always = xtree_child(q->payload, NS_MAM, "always");
	const struct xtree_node *never = xtree_child(q->payload, NS_MAM, "never");
	struct sm_user *u = q->s->user;
	struct prefs_job *pj;
	struct sm_buf *b;
	int policy = -1;

	if (q->set) {
		for (int i = 0; def && i < 3; i++)
			if (!strcmp(def, policy_names[i]))
				policy = i;
		if (policy < 0) {
			sm_iq_error(q, "bad-request");
			return;
		}
		if (xtree_child(always, NS_MAM, "jid") || xtree_child(never, NS_MAM, "jid")) {
			sm_iq_error(q, "feature-not-implemented");
			return;
		}
		pj = calloc(1, sizeof(*pj));
		if (!pj) {
			sm_iq_error(q, "resource-constraint");
			return;
		}
		snprintf(pj->user, sizeof(pj->user), "%s", u->bare);
		pj->policy = policy;
		pj->job.run = prefs_run;
		sm_store_submit(q->sm->store, &pj->job);
		u->mam_default = (int8_t)policy;
	}
	b = sm_iq_buf(q);
	sm_buf_fmt(b, "<prefs xmlns='" NS_MAM "' default='%s'><always/><never/></prefs>",
		   sm_mam_on(q->sm) ? policy_names[policy_of(q->sm, u)] : "never");
	sm_iq_result(q, (const char *)sm_buf_data(b), sm_buf_used(b));
}
