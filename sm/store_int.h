/*
 * sm_store internals — the seam between the storage thread (store.c) and its
 * two database backends: SQLite (store_sqlite.c) and PostgreSQL through libpq
 * (store_pg.c).  Nothing outside these three files includes this header.
 *
 * A backend embeds struct sm_db as the first member of its connection and
 * struct sm_stmt as the first member of its statements, and fills one const
 * struct store_ops.  Everything runs on the storage thread.
 *
 * Error contract of a backend's step(): SM_ROW, SM_DONE, -EEXIST for a
 * unique or primary-key violation, -EIO for anything else; on an error the
 * backend keeps its message for errmsg() and sets db->stmt_failed (the
 * storage thread then undoes the job's savepoint where the backend needs it).
 */
#ifndef XEDGE_SM_STORE_INT_H
#define XEDGE_SM_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sm/store.h"

#define STORE_STMT_SLOTS 512          /* distinct statements (literals: bounded, ~60 today) */
#define STORE_SCHEMA_VERSION 2
#define STORE_ERR_MAX 256

/* The transaction steps of a batch (store.c's run_batch). */
enum store_tx {
	STORE_BEGIN,
	STORE_COMMIT,
	STORE_ROLLBACK,
	STORE_SAVEPOINT,      /* a job starts */
	STORE_RELEASE,        /* a job ends */
	STORE_UNDO,           /* a job's changes go (ROLLBACK TO its savepoint) */
};

struct stmt_slot {
	const char *sql;                  /* key: the literal's address */
	sm_stmt *q;
};

struct sm_db {
	const struct store_ops *ops;
	char *name;                       /* for logs: the file, or user@host:port/db (no password) */
	struct stmt_slot stmts[STORE_STMT_SLOTS];
	size_t nstmts;
	bool stmt_failed;                 /* a statement failed since the job's savepoint */
};

struct sm_stmt {
	struct sm_db *db;
};

struct store_ops {
	const char *kind;                 /* "sqlite", "postgresql" (logs) */
	/* A failed statement aborts the whole transaction until the job's
	 * savepoint is rolled back (PostgreSQL), or only itself (SQLite). */
	bool error_aborts_tx;
	/* Open, create or upgrade the schema: the connection, or NULL (logged). */
	struct sm_db *(*open)(const char *target);
	void (*close)(struct sm_db *db);   /* finalizes the cached statements too */
	int (*tx)(struct sm_db *db, enum store_tx op);   /* 0 or -EIO (logged by the caller) */
	/* Before a batch: 0 when usable (reconnected if it had been lost), -EIO. */
	int (*ready)(struct sm_db *db);
	sm_stmt *(*prepare)(struct sm_db *db, const char *sql);   /* NULL: logged */
	void (*finalize)(sm_stmt *q);
	void (*bind_text)(sm_stmt *q, int i, const char *s);
	void (*bind_int64)(sm_stmt *q, int i, int64_t v);
	void (*bind_blob)(sm_stmt *q, int i, const void *p, size_t n);
	void (*bind_null)(sm_stmt *q, int i);
	int (*step)(sm_stmt *q);
	void (*reset)(sm_stmt *q);        /* after the last step: results and bindings go */
	const char *(*col_text)(sm_stmt *q, int i);
	int64_t (*col_int64)(sm_stmt *q, int i);
	const void *(*col_blob)(sm_stmt *q, int i);
	size_t (*col_bytes)(sm_stmt *q, int i);
	int (*changes)(struct sm_db *db);
	const char *(*errmsg)(struct sm_db *db);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* True when target names a PostgreSQL database (a libpq URI). */
bool store_is_pg_uri(const char *target);

/* The name of a PostgreSQL URI for logs: postgresql://user@host:port/dbname,
 * no password, no other parameter; always NUL-terminated. */
void store_pg_name(const char *uri, char *buf, size_t len);

/* Rewrite one SQLite-dialect statement for PostgreSQL (pure, for unit tests):
 * ?NNN -> $NNN and bare ? -> the next number (SQLite's numbering), the
 * identifier user (a reserved word there) -> "user"; string literals and
 * quoted identifiers are copied untouched.  Returns the number of parameters
 * (the highest number), or -1 when a parameter number is out of range
 * (1..999) or out (4 * strlen(sql) + 1 always suffices) is too small. */
int store_pg_rewrite(const char *sql, char *out, size_t outlen);

#endif
