/* Unit tests for sm/store.c, sm/store_sqlite.c and sm/store_pg.c: the
 * PostgreSQL dialect rewrite (placeholders, the reserved word user, literals
 * left alone, bounds), what logs may say of a database, and the statement
 * API's contract on SQLite (rows, NULLs, blobs, -EEXIST, changes).  The
 * PostgreSQL side of the API runs against a real server in
 * tests/integration/test_postgres.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sm/store_int.h"

static void rewrite_ok(const char *sql, const char *want, int nparams)
{
	char out[512];

	assert_int_equal(store_pg_rewrite(sql, out, sizeof(out)), nparams);
	assert_string_equal(out, want);
}

static void test_rewrite_placeholders(void **state)
{
	rewrite_ok("SELECT 1", "SELECT 1", 0);
	rewrite_ok("DELETE FROM offline WHERE id = ?1", "DELETE FROM offline WHERE id = $1", 1);
	/* Numbered, reused, out of order: the highest number is the count. */
	rewrite_ok("SELECT ?3, ?1, ?3", "SELECT $3, $1, $3", 3);
	/* Bare ? continue from the largest so far, as SQLite numbers them. */
	rewrite_ok("VALUES (?, ?, ?5, ?)", "VALUES ($1, $2, $5, $6)", 6);
	rewrite_ok("LIMIT ?999", "LIMIT $999", 999);
}

static void test_rewrite_user_and_literals(void **state)
{
	rewrite_ok("SELECT jid FROM blocklist WHERE user = ?1 ORDER BY jid",
		   "SELECT jid FROM blocklist WHERE \"user\" = $1 ORDER BY jid", 1);
	rewrite_ok("INSERT INTO kv(user, ns) VALUES (?1, ?2) ON CONFLICT(user, ns) DO NOTHING",
		   "INSERT INTO kv(\"user\", ns) VALUES ($1, $2) ON CONFLICT(\"user\", ns) DO NOTHING", 2);
	rewrite_ok("SELECT n.user FROM pep_node n WHERE n.USER = ?1",
		   "SELECT n.\"user\" FROM pep_node n WHERE n.\"user\" = $1", 1);
	/* Only the whole word: users, username, user_x and x_user stay. */
	rewrite_ok("SELECT username, user_x, x_user FROM users", "SELECT username, user_x, x_user FROM users",
		   0);
	/* Literals and quoted names are copied as they are, quotes doubled inside. */
	rewrite_ok("SELECT 'user ?1', \"user\", 'it''s ?' FROM t WHERE a = ?",
		   "SELECT 'user ?1', \"user\", 'it''s ?' FROM t WHERE a = $1", 1);
	rewrite_ok("SELECT \"a\"\"user\" FROM t", "SELECT \"a\"\"user\" FROM t", 0);
	/* An unterminated literal ends with the text, nothing read past it. */
	rewrite_ok("SELECT 'open ?1", "SELECT 'open ?1", 0);
}

static void test_rewrite_bounds(void **state)
{
	char out[64], small[8];

	assert_int_equal(store_pg_rewrite("SELECT ?1000", out, sizeof(out)), -1);
	assert_int_equal(store_pg_rewrite("SELECT ?0", out, sizeof(out)), -1);
	assert_int_equal(store_pg_rewrite("SELECT ?99999999999999999999", out, sizeof(out)), -1);
	/* Too small an output is refused, never overrun. */
	assert_int_equal(store_pg_rewrite("SELECT user", small, sizeof(small)), -1);
	assert_int_equal(store_pg_rewrite("SELEC", small, sizeof(small)), 0);
	assert_int_equal(store_pg_rewrite("SELECT", small, 6), -1);
	/* The documented bound: 4 * strlen + 1 always suffices (bare ? -> $NNN). */
	{
		char sql[301], big[4 * 300 + 1];

		memset(sql, '?', 300);
		sql[300] = '\0';
		assert_int_equal(store_pg_rewrite(sql, big, sizeof(big)), 300);
		assert_int_equal(strncmp(big, "$1$2$3", 6), 0);
		assert_int_equal(strlen(big), 9 * 2 + 90 * 3 + 201 * 4);
	}
}

static void test_uri_and_describe(void **state)
{
	char buf[256];

	assert_true(store_is_pg_uri("postgresql://db.example/xedge"));
	assert_true(store_is_pg_uri("postgres://u@h/d"));
	assert_false(store_is_pg_uri("/var/lib/xedge/xedge.db"));
	assert_false(store_is_pg_uri("postgresql.db"));
	assert_false(store_is_pg_uri("host=db dbname=x"));    /* key=value: a file name here */

	sm_store_describe("postgresql://xedge:s3cret@db.example:5433/chat?sslmode=require", buf,
			  sizeof(buf));
	assert_string_equal(buf, "postgresql://xedge@db.example:5433/chat");
	assert_null(strstr(buf, "s3cret"));
	sm_store_describe("postgres://db.example/chat", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://db.example/chat");
	sm_store_describe("postgresql://u:pw@h/d?password=other", buf, sizeof(buf));
	assert_null(strstr(buf, "pw"));
	assert_null(strstr(buf, "other"));
	sm_store_describe("/var/lib/xedge/xedge.db", buf, sizeof(buf));
	assert_string_equal(buf, "/var/lib/xedge/xedge.db");
	sm_store_describe("postgresql://u:pw@h/d", buf, 12);    /* truncated, terminated */
	assert_int_equal(strlen(buf), 11);
}

/* ---- the statement API on SQLite ------------------------------------------------- */

struct lite_fixture {
	char path[64];
	struct sm_db *db;
};

static int lite_setup(void **state)
{
	struct lite_fixture *f = calloc(1, sizeof(*f));
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/xedge-store-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	f->db = store_sqlite_ops.open(f->path);
	assert_non_null(f->db);
	*state = f;
	return 0;
}

static int lite_teardown(void **state)
{
	struct lite_fixture *f = *state;
	char side[80];

	f->db->ops->close(f->db);
	unlink(f->path);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", f->path);
	unlink(side);
	free(f);
	return 0;
}

static void test_api_accounts_and_constraint(void **state)
{
	struct lite_fixture *f = *state;
	struct wire_scram k1 = { .iter = 4096, .salt_len = 16, .key_len = 20 };
	struct wire_scram k256 = { .iter = 4096, .salt_len = 16, .key_len = 32 };
	struct wire_scram g1, g256;

	memset(k1.salt, 1, 16);
	memset(k1.stored_key, 2, 20);
	memset(k1.server_key, 3, 20);
	memset(k256.salt, 4, 16);
	memset(k256.stored_key, 5, 32);
	memset(k256.server_key, 6, 32);
	assert_int_equal(sm_db_user_exists(f->db, "a@x"), 0);
	assert_int_equal(sm_db_user_add(f->db, "a@x", &k1, &k256), 0);
	/* The primary key refuses a second one: -EEXIST, not a storage failure. */
	assert_int_equal(sm_db_user_add(f->db, "a@x", &k1, &k256), -EEXIST);
	assert_int_equal(sm_db_user_exists(f->db, "a@x"), 1);
	assert_int_equal(sm_db_user_get(f->db, "a@x", &g1, &g256), 0);
	assert_memory_equal(g1.stored_key, k1.stored_key, 20);
	assert_memory_equal(g256.server_key, k256.server_key, 32);
	assert_int_equal(g256.iter, 4096);
	assert_int_equal(sm_db_user_get(f->db, "b@x", &g1, &g256), -ENOENT);
	assert_int_equal(sm_db_user_passwd(f->db, "b@x", &k1, &k256), -ENOENT);
	assert_int_equal(sm_db_user_del(f->db, "a@x"), 0);
	assert_int_equal(sm_db_user_del(f->db, "a@x"), -ENOENT);
}

static void test_api_rows_nulls_blobs_changes(void **state)
{
	static const char put[] =
		"INSERT INTO roster(user, contact, name, subscription, ask, pending_in, preapproved,"
		" groups, ver, listed) VALUES (?1, ?2, ?3, 'both', ?4, ?5, 0, '', ?6, 1)"
		" ON CONFLICT(user, contact) DO UPDATE SET ver = excluded.ver";
	static const char get[] =
		"SELECT contact, name, ask, pending_in, ver FROM roster WHERE user = ?1 ORDER BY contact";
	static const char del[] = "DELETE FROM roster WHERE user = ?1";
	struct lite_fixture *f = *state;
	sm_stmt *q = sm_db_stmt(f->db, put);
	const char blob[] = { 'p', 0, 'q' };

	assert_non_null(q);
	assert_ptr_equal(sm_db_stmt(f->db, put), q);          /* cached by the literal */
	sm_db_bind_text(q, 1, "u@x");
	sm_db_bind_text(q, 2, "b@x");
	sm_db_bind_text(q, 3, "B");
	sm_db_bind_int64(q, 4, 1);
	sm_db_bind_blob(q, 5, blob, sizeof(blob));
	sm_db_bind_int64(q, 6, INT64_C(1) << 40);
	assert_int_equal(sm_db_exec(f->db, q, "test put"), 0);
	assert_int_equal(sm_db_changes(f->db), 1);
	sm_db_bind_text(q, 1, "u@x");
	sm_db_bind_text(q, 2, "a@x");
	sm_db_bind_text(q, 3, "A");
	sm_db_bind_int64(q, 4, 0);
	sm_db_bind_null(q, 5);                                  /* NULL blob */
	sm_db_bind_int64(q, 6, -7);
	assert_int_equal(sm_db_exec(f->db, q, "test put"), 0);

	q = sm_db_stmt(f->db, get);
	sm_db_bind_text(q, 1, "u@x");
	assert_int_equal(sm_db_step(q), SM_ROW);
	assert_string_equal(sm_db_col_text(q, 0), "a@x");
	assert_int_equal(sm_db_col_int64(q, 2), 0);
	assert_null(sm_db_col_blob(q, 3));
	assert_int_equal(sm_db_col_bytes(q, 3), 0);
	assert_int_equal(sm_db_col_int64(q, 4), -7);
	assert_int_equal(sm_db_step(q), SM_ROW);
	assert_string_equal(sm_db_col_text(q, 0), "b@x");
	assert_string_equal(sm_db_col_text(q, 1), "B");
	assert_int_equal(sm_db_col_int64(q, 2), 1);
	assert_int_equal(sm_db_col_bytes(q, 3), sizeof(blob));
	assert_memory_equal(sm_db_col_blob(q, 3), blob, sizeof(blob));
	assert_int_equal(sm_db_col_int64(q, 4), INT64_C(1) << 40);
	assert_int_equal(sm_db_step(q), SM_DONE);
	sm_db_done(q);

	q = sm_db_stmt(f->db, del);
	sm_db_bind_text(q, 1, "u@x");
	assert_int_equal(sm_db_exec(f->db, q, "test del"), 0);
	assert_int_equal(sm_db_changes(f->db), 2);
	sm_db_done(NULL);                                       /* harmless */
}

static void test_api_bad_sql_is_null(void **state)
{
	struct lite_fixture *f = *state;

	assert_null(sm_db_stmt(f->db, "SELECT nope FROM nowhere"));
}

/* Shards share one SQLite file: connections opened at the same moment on a
 * fresh file (the schema made once, under the write lock) and writing in
 * batches at the same time (the busy timeout queues them) lose nothing. */
#define SHARD_BATCHES 40

struct shard_arg {
	const char *path;
	int id, rc;
};

static void *shard_run(void *arg)
{
	static const char sql[] = "INSERT INTO offline(user, raw, ts) VALUES (?1, ?2, ?3)";
	struct shard_arg *a = arg;
	struct sm_db *db = store_sqlite_ops.open(a->path);
	char user[32];

	if (!db) {
		a->rc = -1;
		return NULL;
	}
	snprintf(user, sizeof(user), "shard%d@x", a->id);
	for (int b = 0; b < SHARD_BATCHES && !a->rc; b++) {
		if (db->ops->tx(db, STORE_BEGIN) < 0) {
			a->rc = -2;
			break;
		}
		for (int i = 0; i < 5; i++) {
			sm_stmt *q = sm_db_stmt(db, sql);

			sm_db_bind_text(q, 1, user);
			sm_db_bind_blob(q, 2, "m", 1);
			sm_db_bind_int64(q, 3, b);
			if (sm_db_exec(db, q, "shard insert") < 0)
				a->rc = -3;
		}
		if (db->ops->tx(db, STORE_COMMIT) < 0)
			a->rc = -4;
	}
	db->ops->close(db);
	return NULL;
}

static void test_sqlite_shards_share_a_file(void **state)
{
	char path[64], side[80];
	struct shard_arg args[3];
	pthread_t th[3];
	struct sm_db *db;
	sm_stmt *q;
	int fd;

	snprintf(path, sizeof(path), "/tmp/xedge-shards-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	for (int i = 0; i < 3; i++) {
		args[i] = (struct shard_arg){ .path = path, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, shard_run, &args[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].rc, 0);
	}
	db = store_sqlite_ops.open(path);
	assert_non_null(db);
	q = sm_db_stmt(db, "SELECT count(*), count(DISTINCT user) FROM offline");
	assert_int_equal(sm_db_step(q), SM_ROW);
	assert_int_equal(sm_db_col_int64(q, 0), 3 * SHARD_BATCHES * 5);
	assert_int_equal(sm_db_col_int64(q, 1), 3);
	sm_db_done(q);
	db->ops->close(db);
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_placeholders),
		cmocka_unit_test(test_rewrite_user_and_literals),
		cmocka_unit_test(test_rewrite_bounds),
		cmocka_unit_test(test_uri_and_describe),
		cmocka_unit_test_setup_teardown(test_api_accounts_and_constraint, lite_setup,
						lite_teardown),
		cmocka_unit_test_setup_teardown(test_api_rows_nulls_blobs_changes, lite_setup,
						lite_teardown),
		cmocka_unit_test_setup_teardown(test_api_bad_sql_is_null, lite_setup, lite_teardown),
		cmocka_unit_test(test_sqlite_shards_share_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
