/*
 * sm_store — SQLite storage of accounts, rosters and offline messages.
 * See store.h for the contract.
 *
 * One connection, one set of prepared statements, reset after every use.
 * Values read back are checked like peer input (a database file can be
 * edited by hand or damaged): salts and keys must have their exact sizes.
 */
#include "sm/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "sm/sm_int.h"

#define STORE_BUSY_MS 5000

enum {
	Q_USER_GET,
	Q_USER_EXISTS,
	Q_USER_ADD,
	Q_USER_DEL,
	Q_USER_PASSWD,
	Q_ROSTER_DEL_USER,
	Q_OFFLINE_DEL_USER,
	Q_ROSTER_LOAD,
	Q_ROSTER_PUT,
	Q_OFFLINE_COUNT,
	Q_OFFLINE_ADD,
	Q_OFFLINE_LIST,
	Q_OFFLINE_DEL_UPTO,
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_COUNT
};

static const char *const store_sql[Q_COUNT] = {
	[Q_USER_GET] = "SELECT sha1_salt, sha1_iter, sha1_stored, sha1_server, sha256_salt,"
		       " sha256_iter, sha256_stored, sha256_server FROM users WHERE jid = ?1",
	[Q_USER_EXISTS] = "SELECT 1 FROM users WHERE jid = ?1",
	[Q_USER_ADD] = "INSERT INTO users(jid, sha1_salt, sha1_iter, sha1_stored, sha1_server,"
		       " sha256_salt, sha256_iter, sha256_stored, sha256_server)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[Q_USER_DEL] = "DELETE FROM users WHERE jid = ?1",
	[Q_USER_PASSWD] = "UPDATE users SET sha1_salt = ?2, sha1_iter = ?3, sha1_stored = ?4,"
			  " sha1_server = ?5, sha256_salt = ?6, sha256_iter = ?7, sha256_stored = ?8,"
			  " sha256_server = ?9 WHERE jid = ?1",
	[Q_ROSTER_DEL_USER] = "DELETE FROM roster WHERE user = ?1",
	[Q_OFFLINE_DEL_USER] = "DELETE FROM offline WHERE user = ?1",
	[Q_ROSTER_LOAD] = "SELECT contact, name, subscription FROM roster WHERE user = ?1"
			  " ORDER BY contact",
	[Q_ROSTER_PUT] = "INSERT OR REPLACE INTO roster(user, contact, name, subscription)"
			 " VALUES (?1, ?2, ?3, ?4)",
	[Q_OFFLINE_COUNT] = "SELECT count(*) FROM offline WHERE user = ?1",
	[Q_OFFLINE_ADD] = "INSERT INTO offline(user, raw, ts) VALUES (?1, ?2, ?3)",
	[Q_OFFLINE_LIST] = "SELECT id, raw, ts FROM offline WHERE user = ?1 ORDER BY id",
	[Q_OFFLINE_DEL_UPTO] = "DELETE FROM offline WHERE user = ?1 AND id <= ?2",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
};

static const char store_schema[] =
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

struct sm_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *q[Q_COUNT];
};

static const char *const sub_names[] = { "none", "to", "from", "both" };

static int store_fail(struct sm_store *st, const char *what)
{
	log_error("sm storage failed", "op=%s database=\"%s\" error=\"%s\"", what, st->path,
		  sqlite3_errmsg(st->db));
	return -EIO;
}

/* Run a statement that returns no rows; leaves it reset. */
static int store_exec(struct sm_store *st, int q)
{
	int rc = sqlite3_step(st->q[q]);

	sqlite3_reset(st->q[q]);
	return rc == SQLITE_DONE ? 0 : store_fail(st, store_sql[q]);
}

static void store_rollback(struct sm_store *st)
{
	sqlite3_step(st->q[Q_ROLLBACK]);
	sqlite3_reset(st->q[Q_ROLLBACK]);
}

struct sm_store *sm_store_open(const char *path)
{
	struct sm_store *st = calloc(1, sizeof(*st));
	char *err = NULL;
	int rc, i;

	if (!st)
		return NULL;
	st->path = strdup(path);
	if (!st->path)
		goto fail_free;
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open the sm database", "database=\"%s\" error=\"%s\"", path,
			  st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail_db;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	/* WAL: readers (xedgectl's future direct reads, backups) never block the
	 * writer; synchronous=NORMAL is durable across process crashes, which is
	 * what an IM server needs. */
	if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL,
			 NULL, &err) != SQLITE_OK ||
	    sqlite3_exec(st->db, store_schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("cannot prepare the sm database", "database=\"%s\" error=\"%s\"", path,
			  err ? err : sqlite3_errmsg(st->db));
		sqlite3_free(err);
		goto fail_db;
	}
	sqlite3_exec(st->db, "PRAGMA user_version=1", NULL, NULL, NULL);
	for (i = 0; i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->q[i], NULL) != SQLITE_OK) {
			log_error("cannot prepare an sm query", "database=\"%s\" sql=\"%s\" error=\"%s\"",
				  path, store_sql[i], sqlite3_errmsg(st->db));
			goto fail_db;
		}
	}
	return st;

fail_db:
	for (i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->q[i]);
	sqlite3_close(st->db);
	free(st->path);
fail_free:
	free(st);
	return NULL;
}

void sm_store_close(struct sm_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->q[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

static int bind_text(sqlite3_stmt *q, int i, const char *s)
{
	return sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

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

int sm_store_user_get(struct sm_store *st, const char *jid, struct wire_scram *sha1,
		      struct wire_scram *sha256)
{
	sqlite3_stmt *q = st->q[Q_USER_GET];
	int rc, ret;

	bind_text(q, 1, jid);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		ret = 0;
		if (read_scram(q, 0, 20, sha1) < 0 || read_scram(q, 4, 32, sha256) < 0) {
			log_error("damaged account row", "jid=\"%s\" database=\"%s\"", jid, st->path);
			ret = -EIO;
		}
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = store_fail(st, "user get");
	}
	sqlite3_reset(q);
	return ret;
}

int sm_store_user_exists(struct sm_store *st, const char *jid)
{
	sqlite3_stmt *q = st->q[Q_USER_EXISTS];
	int rc, ret;

	bind_text(q, 1, jid);
	rc = sqlite3_step(q);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail(st, "user exists");
	sqlite3_reset(q);
	return ret;
}

static void bind_scram(sqlite3_stmt *q, int i, const struct wire_scram *k)
{
	sqlite3_bind_blob(q, i, k->salt, k->salt_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, i + 1, k->iter);
	sqlite3_bind_blob(q, i + 2, k->stored_key, k->key_len, SQLITE_STATIC);
	sqlite3_bind_blob(q, i + 3, k->server_key, k->key_len, SQLITE_STATIC);
}

int sm_store_user_add(struct sm_store *st, const char *jid, const struct wire_scram *sha1,
		      const struct wire_scram *sha256)
{
	sqlite3_stmt *q = st->q[Q_USER_ADD];
	int rc, ret;

	bind_text(q, 1, jid);
	bind_scram(q, 2, sha1);
	bind_scram(q, 6, sha256);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		ret = 0;
	else if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = -EEXIST;
	else
		ret = store_fail(st, "user add");
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return ret;
}

int sm_store_user_passwd(struct sm_store *st, const char *jid, const struct wire_scram *sha1,
			 const struct wire_scram *sha256)
{
	sqlite3_stmt *q = st->q[Q_USER_PASSWD];
	int ret;

	bind_text(q, 1, jid);
	bind_scram(q, 2, sha1);
	bind_scram(q, 6, sha256);
	ret = store_exec(st, Q_USER_PASSWD);
	if (ret == 0 && sqlite3_changes(st->db) == 0)
		ret = -ENOENT;
	sqlite3_clear_bindings(q);
	return ret;
}

int sm_store_user_del(struct sm_store *st, const char *jid)
{
	int ret;

	if (store_exec(st, Q_BEGIN) < 0)
		return -EIO;
	bind_text(st->q[Q_USER_DEL], 1, jid);
	bind_text(st->q[Q_ROSTER_DEL_USER], 1, jid);
	bind_text(st->q[Q_OFFLINE_DEL_USER], 1, jid);
	if (store_exec(st, Q_USER_DEL) < 0)
		goto fail;
	ret = sqlite3_changes(st->db) ? 0 : -ENOENT;
	if (store_exec(st, Q_ROSTER_DEL_USER) < 0 || store_exec(st, Q_OFFLINE_DEL_USER) < 0 ||
	    store_exec(st, Q_COMMIT) < 0)
		goto fail;
	return ret;
fail:
	store_rollback(st);
	return -EIO;
}

int sm_store_roster_load(struct sm_store *st, const char *user, sm_store_roster_fn fn, void *arg)
{
	sqlite3_stmt *q = st->q[Q_ROSTER_LOAD];
	int rc;

	bind_text(q, 1, user);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *contact = (const char *)sqlite3_column_text(q, 0);
		const char *name = (const char *)sqlite3_column_text(q, 1);
		const char *subs = (const char *)sqlite3_column_text(q, 2);
		int sub = SM_SUB_NONE;

		if (!contact)
			continue;
		for (int i = 0; subs && i < 4; i++)
			if (strcmp(subs, sub_names[i]) == 0)
				sub = i;
		if (fn(arg, contact, name ? name : "", sub)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : store_fail(st, "roster load");
}

int sm_store_roster_put(struct sm_store *st, const char *user, const char *contact,
			const char *name, int sub)
{
	sqlite3_stmt *q = st->q[Q_ROSTER_PUT];

	if (sub < 0 || sub > 3)
		return -EINVAL;
	bind_text(q, 1, user);
	bind_text(q, 2, contact);
	bind_text(q, 3, name ? name : "");
	bind_text(q, 4, sub_names[sub]);
	return store_exec(st, Q_ROSTER_PUT);
}

int sm_store_offline_add(struct sm_store *st, const char *user, const void *raw, size_t len,
			 unsigned max)
{
	sqlite3_stmt *q = st->q[Q_OFFLINE_COUNT];
	sqlite3_int64 n;
	int rc;

	bind_text(q, 1, user);
	rc = sqlite3_step(q);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_reset(q);
	if (n < 0)
		return store_fail(st, "offline count");
	if (n >= (sqlite3_int64)max)
		return -ENOSPC;
	q = st->q[Q_OFFLINE_ADD];
	bind_text(q, 1, user);
	sqlite3_bind_blob64(q, 2, raw, len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)time(NULL));
	return store_exec(st, Q_OFFLINE_ADD);
}

int sm_store_offline_take(struct sm_store *st, const char *user, sm_store_offline_fn fn, void *arg)
{
	sqlite3_stmt *q = st->q[Q_OFFLINE_LIST];
	sqlite3_int64 last = -1;
	int rc, n = 0;

	bind_text(q, 1, user);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const void *raw = sqlite3_column_blob(q, 1);
		int len = sqlite3_column_bytes(q, 1);

		last = sqlite3_column_int64(q, 0);
		if (raw && len > 0) {
			fn(arg, raw, (size_t)len, sqlite3_column_int64(q, 2));
			n++;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return store_fail(st, "offline list");
	if (last < 0)
		return 0;
	/* Delete up to the last id handed out: a message stored meanwhile (none
	 * can be, we are single-threaded, but another process could) survives. */
	q = st->q[Q_OFFLINE_DEL_UPTO];
	bind_text(q, 1, user);
	sqlite3_bind_int64(q, 2, last);
	if (store_exec(st, Q_OFFLINE_DEL_UPTO) < 0)
		return -EIO;
	return n;
}
