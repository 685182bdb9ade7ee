/*
 * sm_store — the storage thread, the backend-neutral statement API and the
 * account queries.  See store.h for the contract, store_int.h for the seam
 * to the backends (store_sqlite.c, store_pg.c).
 *
 * Hand-over: a mutex-protected FIFO of jobs in (sm thread -> storage thread,
 * signalled by a condition variable) and one out (storage thread -> sm
 * thread, signalled by an eventfd).  The lock is held only to splice lists,
 * never across database work, so the sm thread waits at most for a pointer
 * swap.  Values read back are checked like peer input (a database file can
 * be edited by hand or damaged): salts and keys must have their exact sizes.
 */
#include "sm/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sm/sm_int.h"

#include "sm/store_int.h"

struct sm_store {
	struct sm_db *db;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;              /* in-queue not empty, or stopping, or idle (sync) */
	struct sm_job *in_head, *in_tail; /* submitted, not yet taken */
	struct sm_job *out_head, *out_tail; /* run, done() pending */
	bool stopping;
	bool busy;                        /* a batch is being run */
	int efd;                          /* eventfd: out-queue not empty */
	size_t pending;                   /* submitted and not completed (sm thread only) */
	uint64_t batches, jobs;           /* for logs */
	struct sm *owner;                 /* whose frames jobs hold (sm_store_owner) */
};

/* ---- the statement API (storage thread) ----------------------------------- */

int sm_db_fail(struct sm_db *db, const char *what)
{
	log_error("sm storage failed", "op=\"%s\" backend=%s database=\"%s\" error=\"%s\"", what,
		  db->ops->kind, db->name, db->ops->errmsg(db));
	return -EIO;
}

sm_stmt *sm_db_stmt(struct sm_db *db, const char *sql)
{
	size_t i;
	sm_stmt *q;

	for (i = 0; i < db->nstmts; i++)
		if (db->stmts[i].sql == sql)
			return db->stmts[i].q;
	if (db->nstmts == STORE_STMT_SLOTS) {
		/* A bug (statements are literals, so bounded): fail this job rather
		 * than finalize a statement a running job may still hold. */
		log_error("sm statement cache full", "slots=%d", STORE_STMT_SLOTS);
		return NULL;
	}
	q = db->ops->prepare(db, sql);
	if (!q)
		return NULL;
	db->stmts[db->nstmts].sql = sql;
	db->stmts[db->nstmts].q = q;
	db->nstmts++;
	return q;
}

void sm_db_done(sm_stmt *q)
{
	if (q)
		q->db->ops->reset(q);
}

void sm_db_bind_text(sm_stmt *q, int i, const char *s)
{
	q->db->ops->bind_text(q, i, s);
}

void sm_db_bind_int64(sm_stmt *q, int i, int64_t v)
{
	q->db->ops->bind_int64(q, i, v);
}

void sm_db_bind_blob(sm_stmt *q, int i, const void *p, size_t n)
{
	q->db->ops->bind_blob(q, i, p, n);
}

void sm_db_bind_null(sm_stmt *q, int i)
{
	q->db->ops->bind_null(q, i);
}

int sm_db_step(sm_stmt *q)
{
	return q->db->ops->step(q);
}

const char *sm_db_col_text(sm_stmt *q, int i)
{
	return q->db->ops->col_text(q, i);
}

int64_t sm_db_col_int64(sm_stmt *q, int i)
{
	return q->db->ops->col_int64(q, i);
}

const void *sm_db_col_blob(sm_stmt *q, int i)
{
	return q->db->ops->col_blob(q, i);
}

size_t sm_db_col_bytes(sm_stmt *q, int i)
{
	return q->db->ops->col_bytes(q, i);
}

int sm_db_exec(struct sm_db *db, sm_stmt *q, const char *what)
{
	int rc;

	if (!q)
		return -EIO;
	rc = sm_db_step(q);
	sm_db_done(q);
	if (rc == SM_DONE || rc == SM_ROW)
		return 0;
	return rc == -EEXIST ? rc : sm_db_fail(db, what);
}

int sm_db_changes(struct sm_db *db)
{
	return db->ops->changes(db);
}

/* ---- the storage thread -------------------------------------------------- */

/* Run one batch in one transaction.  Returns 0, or -EIO when it could not
 * commit (then everything in it was rolled back). */
static int run_batch(struct sm_store *st, struct sm_job *list)
{
	struct sm_db *db = st->db;
	const struct store_ops *ops = db->ops;
	int rc;

	if (ops->ready(db) < 0)
		return -EIO;   /* logged by the backend (connection lost and not back) */
	if (ops->tx(db, STORE_BEGIN) < 0) {
		sm_db_fail(db, "begin");
		return -EIO;
	}
	/* Each job is a savepoint: one that fails part-way (an account deleted
	 * without its roster) leaves no half of itself in the batch. */
	for (struct sm_job *j = list; j; j = j->next) {
		j->rc = 0;
		if (ops->tx(db, STORE_SAVEPOINT) < 0) {
			j->rc = sm_db_fail(db, "savepoint");
			continue;
		}
		db->stmt_failed = false;
		j->run(db, j);
		if (j->rc == -EIO || j->rc == -ENOMEM ||   /* failed part-way, not a refusal */
		    (db->stmt_failed && ops->error_aborts_tx))
			ops->tx(db, STORE_UNDO);
		ops->tx(db, STORE_RELEASE);
	}
	rc = ops->tx(db, STORE_COMMIT);
	if (rc < 0) {
		sm_db_fail(db, "commit");
		ops->tx(db, STORE_ROLLBACK);
	}
	return rc;
}

static void post(struct sm_store *st, struct sm_job *list, int batch_rc)
{
	struct sm_job *keep_head = NULL, *keep_tail = NULL, *next;
	uint64_t one = 1;

	for (struct sm_job *j = list; j; j = next) {
		next = j->next;
		j->next = NULL;
		if (batch_rc < 0)
			j->rc = batch_rc;
		if (keep_tail)
			keep_tail->next = j;
		else
			keep_head = j;
		keep_tail = j;
	}
	if (!keep_head)
		return;
	pthread_mutex_lock(&st->lock);
	if (st->out_tail)
		st->out_tail->next = keep_head;
	else
		st->out_head = keep_head;
	st->out_tail = keep_tail;
	pthread_mutex_unlock(&st->lock);
	/* Every job comes back, done() or not: the sm thread counts completions. */
	(void)!write(st->efd, &one, sizeof(one));
}

static void *store_thread(void *arg)
{
	struct sm_store *st = arg;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		struct sm_job *list;
		int rc;

		while (!st->in_head && !st->stopping) {
			st->busy = false;
			pthread_cond_broadcast(&st->cond);
			pthread_cond_wait(&st->cond, &st->lock);
		}
		if (!st->in_head && st->stopping)
			break;
		list = st->in_head;
		st->in_head = st->in_tail = NULL;
		st->busy = true;
		pthread_mutex_unlock(&st->lock);
		rc = run_batch(st, list);
		st->batches++;
		post(st, list, rc);
		pthread_mutex_lock(&st->lock);
	}
	st->busy = false;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* ---- the sm thread's side ------------------------------------------------ */

static uint64_t store_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sm_store_owner(struct sm_store *st, struct sm *sm)
{
	st->owner = sm;
}

void sm_store_submit(struct sm_store *st, struct sm_job *j)
{
	j->obl = st->owner ? sm_obl_hold(st->owner) : NULL;
	j->next = NULL;
	j->t_us = store_now_us();
	st->pending++;
	st->jobs++;
	pthread_mutex_lock(&st->lock);
	if (st->in_tail)
		st->in_tail->next = j;
	else
		st->in_head = j;
	st->in_tail = j;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

int sm_store_fd(const struct sm_store *st)
{
	return st->efd;
}

size_t sm_store_pending(const struct sm_store *st)
{
	return st->pending;
}

static void complete_one(struct sm *sm, void *arg)
{
	struct sm_job *j = arg;

	j->done(sm, j);
}

void sm_store_complete(struct sm_store *st, struct sm *sm)
{
	struct sm_job *list, *next;
	uint64_t v;

	if (read(st->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("store eventfd read failed", "error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&st->lock);
	list = st->out_head;
	st->out_head = st->out_tail = NULL;
	pthread_mutex_unlock(&st->lock);
	uint64_t now = list ? store_now_us() : 0;

	for (struct sm_job *j = list; j; j = next) {
		struct sm_obl *o = j->obl;

		next = j->next;
		st->pending--;
		mhist_observe(&sm->stats.store_latency, now - j->t_us);
		STAT_INC(sm->stats.store_jobs);
		if (j->done)
			sm_obl_within(sm, o, complete_one, j);   /* what it submits holds o too */
		else
			free(j);
		sm_obl_release(o);
	}
}

void sm_store_sync(struct sm_store *st, struct sm *sm)
{
	while (st->pending) {
		pthread_mutex_lock(&st->lock);
		while (st->in_head || st->busy)
			pthread_cond_wait(&st->cond, &st->lock);
		pthread_mutex_unlock(&st->lock);
		sm_store_complete(st, sm);   /* a done() may submit more: loop */
	}
}

/* ---- open / close -------------------------------------------------------- */

bool store_is_pg_uri(const char *target)
{
	return !strncmp(target, "postgresql://", 13) || !strncmp(target, "postgres://", 11);
}

void sm_store_describe(const char *target, char *buf, size_t len)
{
	if (store_is_pg_uri(target))
		store_pg_name(target, buf, len);
	else
		snprintf(buf, len, "%s", target);
}

static void db_close(struct sm_db *db)
{
	if (db)
		db->ops->close(db);
}

struct sm_store *sm_store_open(const char *path)
{
	struct sm_store *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return NULL;
	st->efd = -1;
	st->db = (store_is_pg_uri(path) ? &store_pg_ops : &store_sqlite_ops)->open(path);
	if (!st->db)
		goto fail;
	st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (st->efd < 0) {
		log_error("store eventfd failed", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	r = pthread_create(&st->thread, NULL, store_thread, st);
	if (r) {
		log_error("cannot start the storage thread", "error=\"%s\"", strerror(r));
		pthread_cond_destroy(&st->cond);
		pthread_mutex_destroy(&st->lock);
		goto fail;
	}
	st->started = true;
	return st;
fail:
	if (st->efd >= 0)
		close(st->efd);
	db_close(st->db);
	free(st);
	return NULL;
}

void sm_store_close(struct sm_store *st)
{
	struct sm_job *next;

	if (!st)
		return;
	if (st->started) {
		pthread_mutex_lock(&st->lock);
		st->stopping = true;
		pthread_cond_broadcast(&st->cond);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->thread, NULL);   /* it runs what is queued first */
		pthread_cond_destroy(&st->cond);
		pthread_mutex_destroy(&st->lock);
	}
	for (struct sm_job *j = st->out_head; j; j = next) {
		next = j->next;
		sm_obl_release(j->obl);
		free(j);    /* nobody is left to complete them */
	}
	if (st->db)
		log_info("storage closed", "database=\"%s\" batches=%llu jobs=%llu", st->db->name,
			 (unsigned long long)st->batches, (unsigned long long)st->jobs);
	if (st->efd >= 0)
		close(st->efd);
	db_close(st->db);
	free(st);
}

/* ---- accounts -------------------------------------------------------------- */

/* Read one SCRAM key set from columns col..col+3; -1 if the row is damaged. */
static int read_scram(sm_stmt *q, int col, size_t key_len, struct wire_scram *out)
{
	size_t salt_len = sm_db_col_bytes(q, col);
	const void *salt = sm_db_col_blob(q, col);
	int64_t iter = sm_db_col_int64(q, col + 1);
	const void *stored = sm_db_col_blob(q, col + 2);
	const void *server = sm_db_col_blob(q, col + 3);

	memset(out, 0, sizeof(*out));
	if (salt_len == 0 || salt_len > WIRE_SALT_MAX || !salt || iter <= 0 || iter > UINT32_MAX ||
	    sm_db_col_bytes(q, col + 2) != key_len || !stored ||
	    sm_db_col_bytes(q, col + 3) != key_len || !server)
		return -1;
	out->iter = (uint32_t)iter;
	out->salt_len = (uint8_t)salt_len;
	out->key_len = (uint8_t)key_len;
	memcpy(out->salt, salt, salt_len);
	memcpy(out->stored_key, stored, key_len);
	memcpy(out->server_key, server, key_len);
	return 0;
}

static void bind_scram(sm_stmt *q, int i, const struct wire_scram *k)
{
	sm_db_bind_blob(q, i, k->salt, k->salt_len);
	sm_db_bind_int64(q, i + 1, k->iter);
	sm_db_bind_blob(q, i + 2, k->stored_key, k->key_len);
	sm_db_bind_blob(q, i + 3, k->server_key, k->key_len);
}

int sm_db_user_get(struct sm_db *db, const char *jid, struct wire_scram *sha1,
		   struct wire_scram *sha256)
{
	static const char sql[] =
		"SELECT sha1_salt, sha1_iter, sha1_stored, sha1_server, sha256_salt,"
		" sha256_iter, sha256_stored, sha256_server FROM users WHERE jid = ?1";
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc, ret;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, jid);
	rc = sm_db_step(q);
	if (rc == SM_ROW) {
		ret = 0;
		if (read_scram(q, 0, 20, sha1) < 0 || read_scram(q, 4, 32, sha256) < 0) {
			log_error("damaged account row", "jid=\"%s\" database=\"%s\"", jid, db->name);
			ret = -EIO;
		}
	} else if (rc == SM_DONE) {
		ret = -ENOENT;
	} else {
		ret = sm_db_fail(db, "user get");
	}
	sm_db_done(q);
	return ret;
}

int sm_db_user_exists(struct sm_db *db, const char *jid)
{
	static const char sql[] = "SELECT 1 FROM users WHERE jid = ?1";
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc, ret;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, jid);
	rc = sm_db_step(q);
	ret = rc == SM_ROW ? 1 : rc == SM_DONE ? 0 : sm_db_fail(db, "user exists");
	sm_db_done(q);
	return ret;
}

int sm_db_user_add(struct sm_db *db, const char *jid, const struct wire_scram *sha1,
		   const struct wire_scram *sha256)
{
	static const char sql[] =
		"INSERT INTO users(jid, sha1_salt, sha1_iter, sha1_stored, sha1_server,"
		" sha256_salt, sha256_iter, sha256_stored, sha256_server)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, jid);
	bind_scram(q, 2, sha1);
	bind_scram(q, 6, sha256);
	/* -EEXIST: the primary key; another shard may have created it just now. */
	return sm_db_exec(db, q, "user add");
}

int sm_db_user_passwd(struct sm_db *db, const char *jid, const struct wire_scram *sha1,
		      const struct wire_scram *sha256)
{
	static const char sql[] =
		"UPDATE users SET sha1_salt = ?2, sha1_iter = ?3, sha1_stored = ?4,"
		" sha1_server = ?5, sha256_salt = ?6, sha256_iter = ?7, sha256_stored = ?8,"
		" sha256_server = ?9 WHERE jid = ?1";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, jid);
	bind_scram(q, 2, sha1);
	bind_scram(q, 6, sha256);
	if (sm_db_exec(db, q, "user passwd") < 0)
		return -EIO;
	return sm_db_changes(db) ? 0 : -ENOENT;
}

int sm_db_user_del(struct sm_db *db, const char *jid)
{
	static const char *const sqls[] = {
		"DELETE FROM roster WHERE user = ?1",
		"DELETE FROM offline WHERE user = ?1",
		"DELETE FROM blocklist WHERE user = ?1",
		"DELETE FROM kv WHERE user = ?1",
		"DELETE FROM pep WHERE user = ?1",
		"DELETE FROM pep_node WHERE user = ?1",
		"DELETE FROM archive WHERE user = ?1",
	};
	static const char sql_user[] = "DELETE FROM users WHERE jid = ?1";
	sm_stmt *q = sm_db_stmt(db, sql_user);
	int ret;

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, jid);
	if (sm_db_exec(db, q, "user del") < 0)
		return -EIO;
	ret = sm_db_changes(db) ? 0 : -ENOENT;
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		q = sm_db_stmt(db, sqls[i]);
		if (!q)
			return -EIO;
		sm_db_bind_text(q, 1, jid);
		if (sm_db_exec(db, q, "user del") < 0)
			return -EIO;
	}
	return ret;
}
