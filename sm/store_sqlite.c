/*
 * store_sqlite — the SQLite backend of sm_store (store_int.h): one
 * connection in WAL mode, statements prepared once (SQLITE_PREPARE_PERSISTENT)
 * and reused, bindings that point at the caller's memory (SQLITE_STATIC):
 * nothing is allocated per statement run.
 *
 * Several connections may use one file at once (shards of one deployment,
 * in one process or several): writers queue on SQLite's lock with a busy
 * timeout generous enough to cover another connection's batch, and the
 * schema is created or upgraded under the write lock, the version read
 * inside that transaction.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "sm/store_int.h"

/* Long enough to wait out another connection's batch (a shard's commit, a
 * checkpoint, an operator's backup), short enough to fail a stuck one. */
#define LITE_BUSY_MS 10000

struct lite_db {
	struct sm_db base;
	sqlite3 *db;
	sqlite3_stmt *tx[STORE_UNDO + 1];   /* by enum store_tx */
};

struct lite_stmt {
	struct sm_stmt base;
	sqlite3_stmt *q;
};

static const char *const lite_tx_sql[] = {
	[STORE_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_COMMIT] = "COMMIT",
	[STORE_ROLLBACK] = "ROLLBACK",
	[STORE_SAVEPOINT] = "SAVEPOINT job",
	[STORE_RELEASE] = "RELEASE job",
	[STORE_UNDO] = "ROLLBACK TO job",
};

static const char lite_schema_v1[] =
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
 * PEP and the message archive.  store_pg.c holds the same tables. */
static const char lite_schema_v2[] =
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

static inline struct lite_db *lite_db(struct sm_db *db)
{
	return (struct lite_db *)db;
}

static inline sqlite3_stmt *lite_q(sm_stmt *q)
{
	return ((struct lite_stmt *)q)->q;
}

/* ---- statements ------------------------------------------------------------ */

static sm_stmt *lite_prepare(struct sm_db *db, const char *sql)
{
	struct lite_stmt *s = malloc(sizeof(*s));
	sqlite3_stmt *q;

	if (!s) {
		log_error("cannot prepare an sm query", "database=\"%s\" error=\"out of memory\"",
			  db->name);
		return NULL;
	}
	if (sqlite3_prepare_v3(lite_db(db)->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL) !=
	    SQLITE_OK) {
		log_error("cannot prepare an sm query", "database=\"%s\" sql=\"%s\" error=\"%s\"",
			  db->name, sql, sqlite3_errmsg(lite_db(db)->db));
		free(s);
		return NULL;
	}
	s->base.db = db;
	s->q = q;
	return &s->base;
}

static void lite_finalize(sm_stmt *q)
{
	sqlite3_finalize(lite_q(q));
	free(q);
}

static void lite_bind_text(sm_stmt *q, int i, const char *s)
{
	sqlite3_bind_text(lite_q(q), i, s, -1, SQLITE_STATIC);
}

static void lite_bind_int64(sm_stmt *q, int i, int64_t v)
{
	sqlite3_bind_int64(lite_q(q), i, v);
}

static void lite_bind_blob(sm_stmt *q, int i, const void *p, size_t n)
{
	sqlite3_bind_blob64(lite_q(q), i, p, n, SQLITE_STATIC);
}

static void lite_bind_null(sm_stmt *q, int i)
{
	sqlite3_bind_null(lite_q(q), i);
}

static int lite_step(sm_stmt *q)
{
	int rc = sqlite3_step(lite_q(q));

	if (rc == SQLITE_ROW)
		return SM_ROW;
	if (rc == SQLITE_DONE)
		return SM_DONE;
	q->db->stmt_failed = true;
	rc = sqlite3_extended_errcode(lite_db(q->db)->db);
	return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE ? -EEXIST : -EIO;
}

static void lite_reset(sm_stmt *q)
{
	sqlite3_reset(lite_q(q));
	sqlite3_clear_bindings(lite_q(q));
}

static const char *lite_col_text(sm_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(lite_q(q), i);
}

static int64_t lite_col_int64(sm_stmt *q, int i)
{
	return sqlite3_column_int64(lite_q(q), i);
}

static const void *lite_col_blob(sm_stmt *q, int i)
{
	return sqlite3_column_blob(lite_q(q), i);
}

static size_t lite_col_bytes(sm_stmt *q, int i)
{
	return (size_t)sqlite3_column_bytes(lite_q(q), i);
}

static int lite_changes(struct sm_db *db)
{
	return sqlite3_changes(lite_db(db)->db);
}

static const char *lite_errmsg(struct sm_db *db)
{
	return sqlite3_errmsg(lite_db(db)->db);
}

/* ---- transactions ---------------------------------------------------------- */

static int lite_tx(struct sm_db *db, enum store_tx op)
{
	sqlite3_stmt *q = lite_db(db)->tx[op];
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int lite_ready(struct sm_db *db)
{
	return 0;   /* a file does not go away */
}

/* ---- open / close ------------------------------------------------------------ */

static int lite_schema(struct lite_db *l)
{
	sqlite3_stmt *q = NULL;
	char *err = NULL;
	int ver = 0;

	/* The version is read under the write lock: another connection (a
	 * shard starting at the same time) may be upgrading the file. */
	if (sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(q) == SQLITE_ROW)
		ver = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (ver > STORE_SCHEMA_VERSION) {
		log_error("the database is newer than this program", "database=\"%s\" version=%d"
			  " supported=%d", l->base.name, ver, STORE_SCHEMA_VERSION);
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	/* A new file gets version 1 first, then every step: one path for all. */
	if (ver < 1 && sqlite3_exec(l->db, lite_schema_v1, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (ver < 2 && sqlite3_exec(l->db, lite_schema_v2, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(l->db, "PRAGMA user_version=2; COMMIT", NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	if (ver < STORE_SCHEMA_VERSION)
		log_info("database schema ready", "backend=sqlite database=\"%s\" from=%d to=%d",
			 l->base.name, ver, STORE_SCHEMA_VERSION);
	return 0;
fail:
	log_error("cannot prepare the sm database", "database=\"%s\" error=\"%s\"", l->base.name,
		  err ? err : sqlite3_errmsg(l->db));
	sqlite3_free(err);
	sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static void lite_close(struct sm_db *db)
{
	struct lite_db *l = lite_db(db);

	for (size_t i = 0; i < db->nstmts; i++)
		lite_finalize(db->stmts[i].q);
	db->nstmts = 0;
	for (size_t i = 0; i <= STORE_UNDO; i++)
		sqlite3_finalize(l->tx[i]);
	sqlite3_close(l->db);
	free(db->name);
	free(l);
}

static struct sm_db *lite_open(const char *path)
{
	struct lite_db *l = calloc(1, sizeof(*l));
	char *err = NULL;
	int rc;

	if (!l)
		return NULL;
	l->base.ops = &store_sqlite_ops;
	l->base.name = strdup(path);
	if (!l->base.name)
		goto fail;
	rc = sqlite3_open_v2(path, &l->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open the sm database", "database=\"%s\" error=\"%s\"", path,
			  l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* Another connection (a shard, a backup, an operator's sqlite3 shell)
	 * may hold the write lock: the storage thread waits, routing does not. */
	sqlite3_busy_timeout(l->db, LITE_BUSY_MS);
	/* WAL + synchronous=NORMAL: a commit is durable across a crash of the
	 * process without an fsync per batch, and readers never block writers. */
	/* Switching a new file to WAL takes an exclusive lock, and SQLite may
	 * answer SQLITE_BUSY at once instead of calling the busy handler (when
	 * waiting could deadlock): shards opening one file together retry. */
	for (int waited = 0;; waited += 20) {
		rc = sqlite3_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				  " PRAGMA foreign_keys=OFF;", NULL, NULL, &err);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= LITE_BUSY_MS)
			break;
		sqlite3_free(err);
		err = NULL;
		usleep(20 * 1000);
	}
	if (rc != SQLITE_OK) {
		log_error("cannot prepare the sm database", "database=\"%s\" error=\"%s\"", path,
			  err ? err : sqlite3_errmsg(l->db));
		sqlite3_free(err);
		goto fail;
	}
	if (lite_schema(l) < 0)
		goto fail;
	for (size_t i = 0; i <= STORE_UNDO; i++)
		if (sqlite3_prepare_v2(l->db, lite_tx_sql[i], -1, &l->tx[i], NULL) != SQLITE_OK) {
			sm_db_fail(&l->base, "prepare transaction statements");
			goto fail;
		}
	return &l->base;
fail:
	lite_close(&l->base);
	return NULL;
}

const struct store_ops store_sqlite_ops = {
	.kind = "sqlite",
	.error_aborts_tx = false,
	.open = lite_open,
	.close = lite_close,
	.tx = lite_tx,
	.ready = lite_ready,
	.prepare = lite_prepare,
	.finalize = lite_finalize,
	.bind_text = lite_bind_text,
	.bind_int64 = lite_bind_int64,
	.bind_blob = lite_bind_blob,
	.bind_null = lite_bind_null,
	.step = lite_step,
	.reset = lite_reset,
	.col_text = lite_col_text,
	.col_int64 = lite_col_int64,
	.col_blob = lite_col_blob,
	.col_bytes = lite_col_bytes,
	.changes = lite_changes,
	.errmsg = lite_errmsg,
};
