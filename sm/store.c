/*
 * sm_store — the storage thread and the account queries.  See store.h for
 * the contract.
 *
 * Hand-over: a mutex-protected FIFO of jobs in (sm thread -> storage thread,
 * signalled by a condition variable) and one out (storage thread -> sm
 * thread, signalled by an eventfd).  The lock is held only to splice lists,
 * never across SQLite work, so the sm thread waits at most for a pointer
 * swap.  Values read back are checked like peer input (a database file can
 * be edited by hand or damaged): salts and keys must have their exact sizes.
 */
#include "sm/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sm/sm_int.h"

#define STORE_BUSY_MS 5000
#define STORE_STMT_SLOTS 512          /* distinct statements (literals: bounded, ~120 today) */
#define STORE_SCHEMA_VERSION 2

struct stmt_slot {
	const char *sql;                  /* key: the literal's address */
	sqlite3_stmt *q;
};

struct sm_db {
	sqlite3 *db;
	char *path;
	struct stmt_slot stmts[STORE_STMT_SLOTS];
	size_t nstmts;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *savepoint, *release, *undo;   /* one job's changes, all or nothing */
};

struct sm_store {
	struct sm_db db;
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
};

static const char store_schema_v1[] =
	"CREATE TABLE IF NOT EXISTS users ("
	" jid TEXT PRIMARY KEY NOT NULL,"
	" sha1_salt BLOB NOT NULL, sha1_iter INTEGER NOT NULL,"
	" sha1_stored BLOB NOT NULL, sha1_server BLOB NOT NULL,"
	" sha256_salt BLOB NOT NULL, sha256_iter INTEGER NOT NULL,"
	" sha256_stored BLOB NOT NULL, sha256_server BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS roster ("
	" user TEXT NOT NULL, contact TEXT NOT NULL,"
	" name TEXT NOT NULL DEFAULT '', subscription TEXT NOT NULL DEFAULT 'none',"
	" PRIMARY KEY (user, contact));"
	"CREATE TABLE IF NOT EXISTS offline ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL,"
	" raw BLOB NOT NULL, ts INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS offline_user ON offline(user, id);";

/* Version 1 -> 2: the full RFC 6121 roster, blocking, per-account XML,
 * PEP and the message archive. */
static const char store_schema_v2[] =
	"ALTER TABLE users ADD COLUMN roster_ver INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE roster ADD COLUMN ask INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE roster ADD COLUMN pending_in BLOB;"
	"ALTER TABLE roster ADD COLUMN preapproved INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE roster ADD COLUMN groups TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE roster ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE roster ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;"
	"CREATE TABLE IF NOT EXISTS blocklist ("
	" user TEXT NOT NULL, jid TEXT NOT NULL, PRIMARY KEY (user, jid));"
	"CREATE TABLE IF NOT EXISTS kv ("
	" user TEXT NOT NULL, ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY (user, ns, key));"
	"CREATE TABLE IF NOT EXISTS pep_node ("
	" user TEXT NOT NULL, node TEXT NOT NULL, access TEXT NOT NULL DEFAULT 'presence',"
	" max_items INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (user, node));"
	"CREATE TABLE IF NOT EXISTS pep ("
	" user TEXT NOT NULL, node TEXT NOT NULL, id TEXT NOT NULL, payload BLOB NOT NULL,"
	" ts INTEGER NOT NULL, seq INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user, node, id));"
	"CREATE TABLE IF NOT EXISTS archive ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, with_jid TEXT NOT NULL,"
	" with_full TEXT NOT NULL DEFAULT '', stanza_id TEXT NOT NULL, raw BLOB NOT NULL,"
	" ts INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS archive_user ON archive(user, id);"
	"CREATE INDEX IF NOT EXISTS archive_with ON archive(user, with_jid, id);"
	"CREATE INDEX IF NOT EXISTS archive_sid ON archive(user, stanza_id);"
	"CREATE INDEX IF NOT EXISTS archive_ts ON archive(ts);";

/* ---- database helpers (storage thread) ---------------------------------- */

int sm_db_fail(struct sm_db *db, const char *what)
{
	log_error("sm storage failed", "op=\"%s\" database=\"%s\" error=\"%s\"", what, db->path,
		  sqlite3_errmsg(db->db));
	return -EIO;
}

sm_stmt *sm_db_stmt(struct sm_db *db, const char *sql)
{
	size_t i;
	sqlite3_stmt *q;

	for (i = 0; i < db->nstmts; i++)
		if (db->stmts[i].sql == sql)
			return db->stmts[i].q;
	if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL) != SQLITE_OK) {
		log_error("cannot prepare an sm query", "database=\"%s\" sql=\"%s\" error=\"%s\"",
			  db->path, sql, sqlite3_errmsg(db->db));
		return NULL;
	}
	if (db->nstmts == STORE_STMT_SLOTS) {
		/* A bug (statements are literals, so bounded): fail this job rather
		 * than finalize a statement a running job may still hold. */
		log_error("sm statement cache full", "slots=%d", STORE_STMT_SLOTS);
		sqlite3_finalize(q);
		return NULL;
	}
	db->stmts[db->nstmts].sql = sql;
	db->stmts[db->nstmts].q = q;
	db->nstmts++;
	return q;
}

void sm_db_done(sm_stmt *q)
{
	if (!q)
		return;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

int sm_db_exec(struct sm_db *db, sm_stmt *q, const char *what)
{
	int rc;

	if (!q)
		return -EIO;
	rc = sqlite3_step(q);
	sm_db_done(q);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sm_db_fail(db, what);
}

int sm_db_changes(struct sm_db *db)
{
	return sqlite3_changes(db->db);
}

int sm_db_errcode(struct sm_db *db)
{
	return sqlite3_extended_errcode(db->db);
}

void sm_db_text(sm_stmt *q, int i, const char *s)
{
	sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

/* ---- the storage thread -------------------------------------------------- */

static int step_simple(struct sm_db *db, sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
	(void)db;
}

/* Run one batch in one transaction.  Returns 0, or -EIO when it could not
 * commit (then everything in it was rolled back). */
static int run_batch(struct sm_store *st, struct sm_job *list)
{
	struct sm_db *db = &st->db;
	int rc;

	if (step_simple(db, db->begin) < 0) {
		sm_db_fail(db, "begin");
		return -EIO;
	}
	/* Each job is a savepoint: one that fails part-way (an account deleted
	 * without its roster) leaves no half of itself in the batch. */
	for (struct sm_job *j = list; j; j = j->next) {
		j->rc = 0;
		if (step_simple(db, db->savepoint) < 0) {
			j->rc = sm_db_fail(db, "savepoint");
			continue;
		}
		j->run(db, j);
		if (j->rc == -EIO || j->rc == -ENOMEM)   /* failed part-way, not a refusal */
			step_simple(db, db->undo);
		step_simple(db, db->release);
	}
	rc = step_simple(db, db->commit);
	if (rc < 0) {
		sm_db_fail(db, "commit");
		step_simple(db, db->rollback);
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

void sm_store_submit(struct sm_store *st, struct sm_job *j)
{
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
		next = j->next;
		st->pending--;
		mhist_observe(&sm->stats.store_latency, now - j->t_us);
		STAT_INC(sm->stats.store_jobs);
		if (j->done)
			j->done(sm, j);
		else
			free(j);
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

static int schema_upgrade(struct sm_db *db)
{
	sqlite3_stmt *q;
	int ver = 0;
	char *err = NULL;

	if (sqlite3_prepare_v2(db->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return sm_db_fail(db, "schema version");
	if (sqlite3_step(q) == SQLITE_ROW)
		ver = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (ver > STORE_SCHEMA_VERSION) {
		log_error("the database is newer than this program", "database=\"%s\" version=%d"
			  " supported=%d", db->path, ver, STORE_SCHEMA_VERSION);
		return -EIO;
	}
	if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	/* A new file gets version 1 first, then every step: one path for all. */
	if (ver < 1 && sqlite3_exec(db->db, store_schema_v1, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (ver < 2 && sqlite3_exec(db->db, store_schema_v2, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(db->db, "PRAGMA user_version=2; COMMIT", NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (ver < STORE_SCHEMA_VERSION)
		log_info("database schema ready", "database=\"%s\" from=%d to=%d", db->path, ver,
			 STORE_SCHEMA_VERSION);
	return 0;
fail:
	log_error("cannot prepare the sm database", "database=\"%s\" error=\"%s\"", db->path,
		  err ? err : sqlite3_errmsg(db->db));
	sqlite3_free(err);
	sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static void db_close(struct sm_db *db)
{
	for (size_t i = 0; i < db->nstmts; i++)
		sqlite3_finalize(db->stmts[i].q);
	db->nstmts = 0;
	sqlite3_finalize(db->begin);
	sqlite3_finalize(db->commit);
	sqlite3_finalize(db->rollback);
	sqlite3_finalize(db->savepoint);
	sqlite3_finalize(db->release);
	sqlite3_finalize(db->undo);
	sqlite3_close(db->db);
	free(db->path);
}

static int db_open(struct sm_db *db, const char *path)
{
	char *err = NULL;
	int rc;

	db->path = strdup(path);
	if (!db->path)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &db->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open the sm database", "database=\"%s\" error=\"%s\"", path,
			  db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc));
		return -EIO;
	}
	/* The busy timeout only matters when another process (a backup, an
	 * operator's sqlite3 shell) holds the write lock: the storage thread
	 * waits, routing does not. */
	sqlite3_busy_timeout(db->db, STORE_BUSY_MS);
	/* WAL + synchronous=NORMAL: a commit is durable across a crash of the
	 * process without an fsync per batch. */
	if (sqlite3_exec(db->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 " PRAGMA foreign_keys=OFF;", NULL, NULL, &err) != SQLITE_OK) {
		log_error("cannot prepare the sm database", "database=\"%s\" error=\"%s\"", path,
			  err ? err : sqlite3_errmsg(db->db));
		sqlite3_free(err);
		return -EIO;
	}
	if (schema_upgrade(db) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(db->db, "BEGIN IMMEDIATE", -1, &db->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db->db, "COMMIT", -1, &db->commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db->db, "ROLLBACK", -1, &db->rollback, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db->db, "SAVEPOINT job", -1, &db->savepoint, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db->db, "RELEASE job", -1, &db->release, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db->db, "ROLLBACK TO job", -1, &db->undo, NULL) != SQLITE_OK)
		return sm_db_fail(db, "prepare transaction statements");
	return 0;
}

struct sm_store *sm_store_open(const char *path)
{
	struct sm_store *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return NULL;
	st->efd = -1;
	if (db_open(&st->db, path) < 0)
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
	db_close(&st->db);
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
		free(j);    /* nobody is left to complete them */
	}
	log_info("storage closed", "database=\"%s\" batches=%llu jobs=%llu", st->db.path,
		 (unsigned long long)st->batches, (unsigned long long)st->jobs);
	if (st->efd >= 0)
		close(st->efd);
	db_close(&st->db);
	free(st);
}

/* ---- accounts -------------------------------------------------------------- */

/* Read one SCRAM key set from columns col..col+3; -1 if the row is damaged. */
static int read_scram(sqlite3_stmt *q, int col, size_t key_len, struct wire_scram *out)
{
	int salt_len = sqlite3_column_bytes(q, col);
	const void *salt = sqlite3_column_blob(q, col);
	sqlite3_int64 iter = sqlite3_column_int64(q, col + 1);
	const void *stored = sqlite3_column_blob(q, col + 2);
	const void *server = sqlite3_column_blob(q, col + 3);

	memset(out, 0, sizeof(*out));
	if (salt_len <= 0 || salt_len > WIRE_SALT_MAX || !salt || iter <= 0 || iter > UINT32_MAX ||
	    (size_t)sqlite3_column_bytes(q, col + 2) != key_len || !stored ||
	    (size_t)sqlite3_column_bytes(q, col + 3) != key_len || !server)
		return -1;
	out->iter = (uint32_t)iter;
	out->salt_len = (uint8_t)salt_len;
	out->key_len = (uint8_t)key_len;
	memcpy(out->salt, salt, (size_t)salt_len);
	memcpy(out->stored_key, stored, key_len);
	memcpy(out->server_key, server, key_len);
	return 0;
}

static void bind_scram(sqlite3_stmt *q, int i, const struct wire_scram *k)
{
	sqlite3_bind_blob(q, i, k->salt, k->salt_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, i + 1, k->iter);
	sqlite3_bind_blob(q, i + 2, k->stored_key, k->key_len, SQLITE_STATIC);
	sqlite3_bind_blob(q, i + 3, k->server_key, k->key_len, SQLITE_STATIC);
}

int sm_db_user_get(struct sm_db *db, const char *jid, struct wire_scram *sha1,
		   struct wire_scram *sha256)
{
	static const char sql[] =
		"SELECT sha1_salt, sha1_iter, sha1_stored, sha1_server, sha256_salt,"
		" sha256_iter, sha256_stored, sha256_server FROM users WHERE jid = ?1";
	sqlite3_stmt *q = sm_db_stmt(db, sql);
	int rc, ret;

	if (!q)
		return -EIO;
	sm_db_text(q, 1, jid);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		ret = 0;
		if (read_scram(q, 0, 20, sha1) < 0 || read_scram(q, 4, 32, sha256) < 0) {
			log_error("damaged account row", "jid=\"%s\" database=\"%s\"", jid, db->path);
			ret = -EIO;
		}
	} else if (rc == SQLITE_DONE) {
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
	sqlite3_stmt *q = sm_db_stmt(db, sql);
	int rc, ret;

	if (!q)
		return -EIO;
	sm_db_text(q, 1, jid);
	rc = sqlite3_step(q);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sm_db_fail(db, "user exists");
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
	sqlite3_stmt *q = sm_db_stmt(db, sql);
	int rc, ret;

	if (!q)
		return -EIO;
	sm_db_text(q, 1, jid);
	bind_scram(q, 2, sha1);
	bind_scram(q, 6, sha256);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		ret = 0;
	else if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = -EEXIST;
	else
		ret = sm_db_fail(db, "user add");
	sm_db_done(q);
	return ret;
}

int sm_db_user_passwd(struct sm_db *db, const char *jid, const struct wire_scram *sha1,
		      const struct wire_scram *sha256)
{
	static const char sql[] =
		"UPDATE users SET sha1_salt = ?2, sha1_iter = ?3, sha1_stored = ?4,"
		" sha1_server = ?5, sha256_salt = ?6, sha256_iter = ?7, sha256_stored = ?8,"
		" sha256_server = ?9 WHERE jid = ?1";
	sqlite3_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_text(q, 1, jid);
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
	sqlite3_stmt *q = sm_db_stmt(db, sql_user);
	int ret;

	if (!q)
		return -EIO;
	sm_db_text(q, 1, jid);
	if (sm_db_exec(db, q, "user del") < 0)
		return -EIO;
	ret = sm_db_changes(db) ? 0 : -ENOENT;
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		q = sm_db_stmt(db, sqls[i]);
		if (!q)
			return -EIO;
		sm_db_text(q, 1, jid);
		if (sm_db_exec(db, q, "user del") < 0)
			return -EIO;
	}
	return ret;
}
