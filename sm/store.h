/*
 * sm_store — the session server's storage thread: the database (SQLite in WAL
 * mode, or PostgreSQL) on a thread of its own, so routing never waits on the
 * disk or the network (DESIGN §6).
 *
 * Backends: session_server.database is a libpq connection URI
 * ("postgresql://..." or "postgres://...") for PostgreSQL, anything else is
 * the path of an SQLite file.  Both hold the same tables (below) and run
 * the same module SQL through the neutral statement API at the end of this
 * file; the PostgreSQL backend rewrites SQLite's dialect where a statement is
 * prepared (placeholders, the reserved word user), so module SQL is written
 * once, in the subset both accept (ON CONFLICT upserts, no INSERT OR ...,
 * no two-argument MAX, integers not booleans in WHERE).  Several session
 * servers (shards) may share one database: the SQLite file through several
 * connections (WAL, a generous busy timeout), PostgreSQL through one
 * connection each.
 *
 * The sm thread hands work over as jobs.  A job's run() executes on the
 * storage thread with the one database connection; its done() then executes
 * back on the sm thread (sm_store_complete(), driven by the store's eventfd
 * in the sm's epoll loop), where it reads the results and frees the job.
 * Jobs run strictly in submission order, so a read sees every write
 * submitted before it.
 *
 * Write batching: the storage thread takes every job queued so far and runs
 * them in ONE transaction (BEGIN [IMMEDIATE] ... COMMIT), then posts their
 * completions.  Under load a batch holds whatever queued during the previous
 * commit, so the commit cost is shared; idle, a job commits alone at once.
 * SQLite: with synchronous=NORMAL a commit survives a crash of the process
 * (kill -9) without an fsync per batch; checkpoints run on the storage
 * thread too.  A job's done() runs only after its batch committed: a
 * completion that says "stored" means stored.  Each job runs inside a
 * savepoint: one that fails part-way (rc -EIO or -ENOMEM) is undone alone,
 * the rest of the batch stays.  On PostgreSQL a failed statement (a
 * constraint included) also undoes its job's savepoint, since the server
 * refuses every later statement of the transaction until then: a job stops
 * at its first failed statement (all modules do).  If the commit fails the
 * whole batch is rolled back and every job in it completes with rc = -EIO.
 *
 * Connection loss (PostgreSQL): the statements of the batch fail, its jobs
 * complete with -EIO, and the next batch reconnects first (logged once when
 * lost, once when back; the password is never logged).
 *
 * Module SQL lives with its module: run() functions get prepared statements
 * from sm_db_stmt() by their SQL text (cached per statement) and reset them
 * with sm_db_done().  Tables are created here (the schema, with its version
 * in PRAGMA user_version or the xedge_schema table, is in one place per
 * backend: store_sqlite.c, store_pg.c).
 *
 * Tables (schema version 2):
 *   users(jid PRIMARY KEY, SCRAM-SHA-1 and -256 salted keys, roster_ver)
 *   roster(user, contact, name, subscription, ask, pending_in, preapproved,
 *          groups ('\n'-joined), ver, listed, PRIMARY KEY(user, contact))
 *   offline(id INTEGER PRIMARY KEY, user, raw, ts)
 *   blocklist(user, jid, PRIMARY KEY(user, jid))
 *   kv(user, ns, key, value, PRIMARY KEY(user, ns, key))  -- vCard, private XML
 *   pep(user, node, id, payload, ts, PRIMARY KEY(user, node, id)), pep_node(...)
 *   archive(id INTEGER PRIMARY KEY, user, with_jid, with_full, stanza_id, raw, ts)
 */
#ifndef XEDGE_SM_STORE_H
#define XEDGE_SM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "parser/wire.h"

struct sm;
struct sm_store;
struct sm_db;
struct sm_job;
typedef struct sm_stmt sm_stmt;

/* Storage thread: do the work, set j->rc.  Never touches sm state. */
typedef void (*sm_job_run_fn)(struct sm_db *db, struct sm_job *j);
/* sm thread: use the result, then free the job (it owns it). */
typedef void (*sm_job_done_fn)(struct sm *sm, struct sm_job *j);

/* Embed as the first member of a module's job struct; allocate with malloc. */
struct sm_job {
	struct sm_job *next;
	sm_job_run_fn run;
	sm_job_done_fn done;   /* NULL: write-behind, the store frees the job with free() */
	int rc;                /* set by run(); -EIO when its batch failed to commit */
	uint64_t t_us;         /* when it was submitted (metrics) */
	struct sm_obl *obl;    /* set by submit: the link frame it completes (sm.c "Confirmations") */
};

/* Open or create the database at path and start the storage thread.  NULL
 * on failure (logged). */
struct sm_store *sm_store_open(const char *path);
/* Runs every job still queued (their done() is not called: the sm is going
 * away, so jobs with a done() are freed with free()), commits, stops the
 * thread and closes the database. */
void sm_store_close(struct sm_store *st);

/* What logs may say of a database target: an SQLite path as it is, a
 * PostgreSQL URI as postgresql://user@host:port/dbname (never its password).
 * Always NUL-terminated in buf. */
void sm_store_describe(const char *target, char *buf, size_t len);

/* Queue a job (sm thread).  Never fails: the job owns its memory.  It
 * holds the confirmation of the link frame being handled, if any, until its
 * done() has run (sm.c "Confirmations"; needs sm_store_owner()). */
void sm_store_submit(struct sm_store *st, struct sm_job *j);
/* The session server whose frames the jobs complete. */
void sm_store_owner(struct sm_store *st, struct sm *sm);
/* sm.c: hold / release the pending outcome of the frame being handled. */
struct sm_obl;
struct sm_obl *sm_obl_hold(struct sm *sm);
void sm_obl_release(struct sm_obl *o);
/* sm.c: run fn with o as the frame being handled (jobs it submits hold o). */
void sm_obl_within(struct sm *sm, struct sm_obl *o, void (*fn)(struct sm *, void *), void *arg);
/* The fd the sm polls (EPOLLIN: completions ready). */
int sm_store_fd(const struct sm_store *st);
/* Run the done() of every completed job (sm thread). */
void sm_store_complete(struct sm_store *st, struct sm *sm);
/* Jobs submitted and not yet completed. */
size_t sm_store_pending(const struct sm_store *st);
/* Run every queued job and their completions now, waiting for the storage
 * thread (sm thread; tests and shutdown paths only, never while routing). */
void sm_store_sync(struct sm_store *st, struct sm *sm);

/* ---- for run() functions, on the storage thread ------------------------ */

/* What sm_db_step() returns besides -EEXIST and -EIO. */
enum { SM_DONE = 0, SM_ROW = 1 };

/* A prepared statement for sql (a string literal: cached by its address),
 * written in the dialect both backends accept (see the top of this file).
 * NULL on error (logged).  PostgreSQL prepares on the connection at the
 * first sm_db_step(): SQL it refuses fails there (-EIO, logged). */
sm_stmt *sm_db_stmt(struct sm_db *db, const char *sql);
/* Reset q and clear its bindings after use (NULL: nothing). */
void sm_db_done(sm_stmt *q);

/* Bind parameter i (1-based, ?i in the SQL).  Text and blobs are not copied:
 * they must outlive the last sm_db_step() of this use.  A parameter left
 * unbound is NULL.  A NULL blob pointer binds NULL. */
void sm_db_bind_text(sm_stmt *q, int i, const char *s);
void sm_db_bind_int64(sm_stmt *q, int i, int64_t v);
void sm_db_bind_blob(sm_stmt *q, int i, const void *p, size_t n);
void sm_db_bind_null(sm_stmt *q, int i);

/* Run q, or advance to its next row: SM_ROW (the columns are readable until
 * the next step or sm_db_done), SM_DONE, -EEXIST (a unique or primary key
 * refused the row: nothing changed), -EIO (not logged: sm_db_fail()). */
int sm_db_step(sm_stmt *q);
/* Columns of the current row (0-based).  Text is NUL-terminated, NULL for
 * SQL NULL; a blob is NULL for SQL NULL or empty; numbers are 0 for NULL. */
const char *sm_db_col_text(sm_stmt *q, int i);
int64_t sm_db_col_int64(sm_stmt *q, int i);
const void *sm_db_col_blob(sm_stmt *q, int i);
size_t sm_db_col_bytes(sm_stmt *q, int i);

/* Log the database's last error for what; returns -EIO. */
int sm_db_fail(struct sm_db *db, const char *what);
/* Step a statement that returns no rows, then reset it: 0, -EEXIST (not
 * logged) or -EIO (logged). */
int sm_db_exec(struct sm_db *db, sm_stmt *q, const char *what);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int sm_db_changes(struct sm_db *db);

/* ---- accounts (storage thread) ----------------------------------------- */

/* Keys of jid: 0 and *sha1, *sha256 filled; -ENOENT; -EIO. */
int sm_db_user_get(struct sm_db *db, const char *jid, struct wire_scram *sha1,
		   struct wire_scram *sha256);
/* 1 when the account exists, 0 when not, -EIO. */
int sm_db_user_exists(struct sm_db *db, const char *jid);
/* 0; -EEXIST when jid already has an account; -EIO. */
int sm_db_user_add(struct sm_db *db, const char *jid, const struct wire_scram *sha1,
		   const struct wire_scram *sha256);
/* Replace the keys of an existing account: 0; -ENOENT; -EIO. */
int sm_db_user_passwd(struct sm_db *db, const char *jid, const struct wire_scram *sha1,
		      const struct wire_scram *sha256);
/* Delete the account and everything stored for it: 0; -ENOENT; -EIO. */
int sm_db_user_del(struct sm_db *db, const char *jid);

#endif
