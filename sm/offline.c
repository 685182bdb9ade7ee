/*
 * sm_offline — messages stored for accounts with no available resource
 * (RFC 6121 §8.5.2.2.2, §8.5.3.2.1), on the storage thread.
 *
 * Storing: one write job per message (the count check and the insert in
 * the same batch transaction, so the per-account limit holds); when the
 * store refuses (full: service-unavailable; failed: internal-server-error)
 * the sender is told, if it is still online, with the stanza's id.
 *
 * Only accounts that exist get rows (checked in the same transaction: an
 * account deleted meanwhile gets none).  Messages stored again because their
 * session ended before the edge wrote them (sm_route_requeue) may exceed the
 * per-account limit up to SM_MAX_OFFLINE_REQUEUE: they were accepted already.
 *
 * Delivery: at the first available presence with a non-negative priority a
 * read job lists the stored rows; the sm sends them to the session (tracked,
 * sm.c), and they are deleted only once the edge reports them written to the
 * client's socket (WIRE_DELIVERED -> sm_offline_forget()).  Rows handed to a
 * session and not yet settled are the account's rows in flight
 * (sm_offline_inflight_*): another listing skips them, so two resources
 * coming online together do not both get every message; a session that ends
 * first releases them and they are offered to another available resource.
 * One listing per account at a time (user->offline_busy); a request while
 * one runs (a resource coming online, rows released by a session that
 * ended) makes another run after it (offline_again): the running one may
 * have read the table before those rows were stored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "sm/sm_int.h"
#include "sm/store.h"

/* ---- storing ------------------------------------------------------------ */

struct store_job {
	struct sm_job job;
	char *user, *from, *id, *to;  /* point into data */
	int kind;
	size_t len;
	unsigned max;
	uint8_t *raw;
	char data[];
};

static void store_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_count[] =
		"SELECT count(*), EXISTS(SELECT 1 FROM users WHERE jid = ?1) FROM offline"
		" WHERE user = ?1";
	static const char sql_add[] = "INSERT INTO offline(user, raw, ts) VALUES (?1, ?2, ?3)";
	struct store_job *sj = (struct store_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql_count);
	int64_t n = -1;
	int exists = 0;

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, sj->user);
	if (sm_db_step(q) == SM_ROW) {
		n = sm_db_col_int64(q, 0);
		exists = (int)sm_db_col_int64(q, 1);
	}
	sm_db_done(q);
	if (n < 0) {
		j->rc = sm_db_fail(db, "offline count");
		return;
	}
	if (!exists) {
		j->rc = -ENOENT;    /* deleted since the message was accepted */
		return;
	}
	if (n >= sj->max) {
		j->rc = -ENOSPC;
		return;
	}
	q = sm_db_stmt(db, sql_add);
	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, sj->user);
	sm_db_bind_blob(q, 2, sj->raw, sj->len);
	sm_db_bind_int64(q, 3, time(NULL));
	j->rc = sm_db_exec(db, q, "offline add");
}

static void store_done(struct sm *sm, struct sm_job *j)
{
	struct store_job *sj = (struct store_job *)j;

	if (j->rc < 0 && !sj->from[0])   /* stored again after its session ended */
		log_warn("undelivered message not stored again", "user=\"%s\" error=%s", sj->user,
			 j->rc == -ENOSPC ? "too many stored" : j->rc == -ENOENT ? "account deleted"
			 : "storage failed");
	if (j->rc == -ENOSPC || j->rc == -ENOENT)
		sm_route_bounce(sm, sj->from, sj->kind, sj->id, sj->to, "service-unavailable");
	else if (j->rc < 0)
		sm_route_bounce(sm, sj->from, sj->kind, sj->id, sj->to, "internal-server-error");
	else
		log_debug("message stored offline", "to=\"%s\" bytes=%zu", sj->user, sj->len);
	free(sj);
}

static char *put(char **at, const char *s, size_t n)
{
	char *r = *at;

	memcpy(r, s, n);
	r[n] = '\0';
	*at += n + 1;
	return r;
}

int sm_offline_store(struct sm *sm, const char *user, const char *from, int kind,
		     struct wire_str id, struct wire_str to, const void *raw, size_t len)
{
	/* from "": a requeued message (sm_route_requeue), accepted long ago. */
	unsigned max = from[0] ? SM_MAX_OFFLINE : SM_MAX_OFFLINE_REQUEUE;
	size_t ul = strlen(user), fl = strlen(from);
	struct store_job *sj = malloc(sizeof(*sj) + ul + fl + id.len + to.len + 4 + len);
	char *at;

	if (!sj)
		return -ENOMEM;
	memset(&sj->job, 0, sizeof(sj->job));
	at = sj->data;
	sj->user = put(&at, user, ul);
	sj->from = put(&at, from, fl);
	sj->id = put(&at, (const char *)id.p, id.len);
	sj->to = put(&at, (const char *)to.p, to.len);
	sj->raw = (uint8_t *)at;
	memcpy(sj->raw, raw, len);
	sj->len = len;
	sj->kind = kind;
	sj->max = max;
	sj->job.run = store_run;
	sj->job.done = store_done;
	sm_store_submit(sm->store, &sj->job);
	STAT_INC(sm->stats.offline_stored);
	return 0;
}

/* ---- delivery ------------------------------------------------------------ */

struct row {
	int64_t id;
	size_t len;
	uint8_t *raw;
};

struct list_job {
	struct sm_job job;
	uint32_t link;
	uint64_t sid;
	struct row *rows;
	size_t nrows, cap;
	char user[];
};

static void list_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "SELECT id, raw FROM offline WHERE user = ?1 ORDER BY id";
	struct list_job *lj = (struct list_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q) {
		j->rc = -EIO;
		return;
	}
	sm_db_bind_text(q, 1, lj->user);
	while ((rc = sm_db_step(q)) == SM_ROW && lj->nrows < SM_MAX_OFFLINE) {
		const void *raw = sm_db_col_blob(q, 1);
		size_t len = sm_db_col_bytes(q, 1);
		struct row *r;

		if (!raw || len == 0)
			continue;
		if (lj->nrows == lj->cap) {
			size_t cap = lj->cap ? lj->cap * 2 : 16;
			struct row *n = realloc(lj->rows, cap * sizeof(*n));

			if (!n)
				break;
			lj->rows = n;
			lj->cap = cap;
		}
		r = &lj->rows[lj->nrows];
		r->raw = malloc((size_t)len);
		if (!r->raw)
			break;
		memcpy(r->raw, raw, (size_t)len);
		r->len = (size_t)len;
		r->id = sm_db_col_int64(q, 0);
		lj->nrows++;
	}
	sm_db_done(q);
	if (rc != SM_ROW && rc != SM_DONE)
		j->rc = sm_db_fail(db, "offline list");
}

static void list_free(struct list_job *lj)
{
	for (size_t i = 0; i < lj->nrows; i++)
		free(lj->rows[i].raw);
	free(lj->rows);
	free(lj);
}

struct del_job {
	struct sm_job job;
	size_t nids;
	int64_t ids[];
};

static void del_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql[] = "DELETE FROM offline WHERE id = ?1";
	struct del_job *dj = (struct del_job *)j;
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		j->rc = -EIO;
	for (size_t i = 0; q && i < dj->nids; i++) {
		sm_db_bind_int64(q, 1, dj->ids[i]);
		if (sm_db_exec(db, q, "offline delete") < 0) {
			j->rc = -EIO;
			return;
		}
	}
}

void sm_offline_forget(struct sm *sm, const int64_t *ids, size_t n)
{
	struct del_job *dj;

	if (n == 0)
		return;
	dj = calloc(1, sizeof(*dj) + n * sizeof(int64_t));
	if (!dj) {
		/* They stay stored: delivered twice rather than lost. */
		log_warn("out of memory deleting delivered offline messages", "count=%zu", n);
		return;
	}
	memcpy(dj->ids, ids, n * sizeof(int64_t));
	dj->nids = n;
	dj->job.run = del_run;
	sm_store_submit(sm->store, &dj->job);
}

/* ---- rows in flight --------------------------------------------------------- */

bool sm_offline_inflight_has(const struct sm_user *u, int64_t id)
{
	for (size_t i = 0; i < u->ninflight; i++)
		if (u->inflight[i] == id)
			return true;
	return false;
}

int sm_offline_inflight_add(struct sm_user *u, int64_t id)
{
	if (u->ninflight == u->inflight_cap) {
		size_t cap = u->inflight_cap ? u->inflight_cap * 2 : 16;
		int64_t *n = realloc(u->inflight, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		u->inflight = n;
		u->inflight_cap = cap;
	}
	u->inflight[u->ninflight++] = id;
	return 0;
}

void sm_offline_inflight_del(struct sm_user *u, int64_t id)
{
	for (size_t i = 0; i < u->ninflight; i++) {
		if (u->inflight[i] == id) {
			u->inflight[i] = u->inflight[--u->ninflight];
			return;
		}
	}
}

/* The session of u that stored messages go to now: available, priority >= 0
 * (RFC 6121 §8.5.2.2.2), the highest priority; NULL: none. */
struct sm_session *sm_offline_target(struct sm_user *u, const struct sm_session *skip)
{
	struct sm_session *best = NULL;

	for (struct sm_session *t = u->shead; t; t = t->unext)
		if (t != skip && t->state == SM_SESS_BOUND && t->available && t->priority >= 0 &&
		    (!best || t->priority > best->priority))
			best = t;
	return best;
}

static void list_done(struct sm *sm, struct sm_job *j)
{
	struct list_job *lj = (struct list_job *)j;
	struct sm_user *u = sm_user_find(sm, lj->user, strlen(lj->user));
	struct sm_link *l = sm_link_by_id(sm, lj->link);
	struct sm_session *s = NULL;
	size_t sent = 0;

	if (!u) {
		list_free(lj);      /* cannot happen: the listing holds a reference */
		return;
	}
	u->offline_busy = false;
	u->refs--;
	if (u->offline_again) {
		struct sm_session *t = sm_offline_target(u, NULL);

		u->offline_again = false;
		if (t) {
			/* Asked for again while this one ran: list once more, for the
			 * best resource now, after this listing's rows are settled. */
			list_free(lj);
			sm_offline_deliver(sm, t);
			sm_user_release(sm, u);
			return;
		}
	}
	if (l)
		s = sm_session_by_sid(l, lj->sid);
	/* The session that asked may have gone, or gone unavailable: then the
	 * best other one takes them (none: they stay stored). */
	if (!s || s->user != u || s->state != SM_SESS_BOUND || !s->available || s->priority < 0)
		s = sm_offline_target(u, NULL);
	if (j->rc < 0 || !s) {
		list_free(lj);
		sm_user_release(sm, u);
		return;
	}
	for (size_t i = 0; i < lj->nrows; i++) {
		if (sm_offline_inflight_has(u, lj->rows[i].id))
			continue;   /* handed to another resource, not settled yet */
		if (sm_route_offline(sm, s, lj->rows[i].id, lj->rows[i].raw, lj->rows[i].len) == 0)
			sent++;
	}
	if (sent)
		log_info("offline messages sent", "jid=\"%s\" count=%zu", s->full, sent);
	list_free(lj);
	sm_user_release(sm, u);
}

void sm_offline_deliver(struct sm *sm, struct sm_session *s)
{
	struct sm_user *u = s->user;
	struct list_job *lj;

	if (u->offline_busy) {
		u->offline_again = true;   /* listed again once the running one is done */
		return;
	}
	lj = calloc(1, sizeof(*lj) + s->bare_len + 1);
	if (!lj)
		return;
	memcpy(lj->user, s->bare, s->bare_len + 1);
	lj->link = s->link->id;
	lj->sid = s->sid;
	lj->job.run = list_run;
	lj->job.done = list_done;
	u->offline_busy = true;
	u->refs++;
	sm_store_submit(sm->store, &lj->job);
}
