/*
 * store_pg — the PostgreSQL backend of sm_store (store_int.h), through libpq.
 *
 * One connection per store (per session server).  Module SQL is written in
 * SQLite's dialect, restricted to what both accept; store_pg_rewrite() turns
 * it into PostgreSQL's once, when the statement is first asked for
 * (placeholders ?N -> $N, the reserved word user quoted), and the result is
 * prepared with PQprepare() once per connection (lazily, on its first run:
 * a reconnect re-prepares every statement as it is next used).  Parameters
 * go as text (numbers, strings: the server infers their types from the
 * statement) or binary (blobs: bytea), results come back binary, so a bytea
 * column is its raw bytes with no unescaping, and integers are decoded by
 * their column type (int2/4/8, bool).  Nothing is allocated per run but
 * libpq's result.
 *
 * Transactions: a batch is BEGIN ... COMMIT at READ COMMITTED, each job a
 * SAVEPOINT.  A failed statement aborts the transaction until its job's
 * savepoint is rolled back, so error_aborts_tx is set: the storage thread
 * undoes the job (store.c's run_batch).  A unique violation (SQLSTATE 23505)
 * is -EEXIST, like SQLite's constraint.  Concurrent session servers on one
 * database (shards): every write the modules make is a single statement on
 * rows of one user (upserts are INSERT ... ON CONFLICT, atomic in
 * PostgreSQL), or an INSERT whose unique key settles a race (accounts).
 *
 * Schema: created when missing inside one transaction that holds an advisory
 * lock (shards starting together wait for each other rather than race on
 * CREATE TABLE), version recorded in xedge_schema.  Text columns compare as
 * "C" (bytes), like SQLite, so ORDER BY and keys mean the same on both.
 *
 * Connection loss: the statements fail, the batch's jobs complete with -EIO
 * (the connection is logged lost once), and the next batch reconnects first;
 * a BEGIN that finds the connection dead reconnects and begins again at once
 * (nothing ran yet).  The URI is never logged: it may hold a password; logs
 * name user@host:port/dbname.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "sm/store_int.h"

/* Type OIDs of the results we decode (pg_type.h, stable since forever). */
#define PG_BOOLOID 16
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23

#define PG_PARAMS_MAX 999             /* parameters of one statement (ours have at most 10) */
#define PG_SCHEMA_LOCK 0x7865646765   /* advisory lock key: "xedge" */
#define PG_RETRY_LOG_S 10             /* reconnect failures: one line per this */
#define PG_CONNECT_TIMEOUT "10"       /* seconds, unless the URI says otherwise */

struct pg_db {
	struct sm_db base;
	PGconn *conn;
	char *uri;                        /* never logged: it may hold a password */
	unsigned gen;                     /* connection generation (statements prepare on it) */
	unsigned nnames;                  /* statement names given so far */
	bool lost;                        /* broken, logged, not reconnected yet */
	bool release_due;                 /* a job's savepoint ended, RELEASE not sent yet */
	time_t next_log;                  /* next reconnect failure worth a line */
	int changes;                      /* rows of the last INSERT/UPDATE/DELETE */
	char err[STORE_ERR_MAX];          /* the last failure, for sm_db_fail() */
};

struct pg_stmt {
	struct sm_stmt base;
	const char *orig;                 /* the module's SQL (a literal), for logs */
	char name[16];                    /* of the prepared statement */
	unsigned gen;                     /* prepared on this connection (0: never) */
	int nparams;
	bool ran;                         /* executed since the last reset */
	int rc;                           /* its outcome when it failed */
	PGresult *res;
	int row, nrows;
	const char **vals;                /* parameters: text, or bytes when fmts[i] */
	int *lens;
	int *fmts;
	char (*nums)[24];                 /* text of the integer parameters */
	char sql[];                       /* rewritten */
};

static const char pg_tx_sql[][32] = {
	[STORE_BEGIN] = "BEGIN",
	[STORE_COMMIT] = "COMMIT",
	[STORE_ROLLBACK] = "ROLLBACK",
	[STORE_SAVEPOINT] = "SAVEPOINT job",
	[STORE_RELEASE] = "RELEASE SAVEPOINT job",
	[STORE_UNDO] = "ROLLBACK TO SAVEPOINT job",
};

/* Schema version 2, the tables of store_sqlite.c with PostgreSQL's types:
 * INTEGER -> bigint, BLOB -> bytea, INTEGER PRIMARY KEY AUTOINCREMENT ->
 * bigint identity, text keys in the "C" collation. */
static const char pg_schema_v2[] =
	"CREATE TABLE IF NOT EXISTS users ("
	" jid text COLLATE \"C\" PRIMARY KEY,"
	" sha1_salt bytea NOT NULL, sha1_iter bigint NOT NULL,"
	" sha1_stored bytea NOT NULL, sha1_server bytea NOT NULL,"
	" sha256_salt bytea NOT NULL, sha256_iter bigint NOT NULL,"
	" sha256_stored bytea NOT NULL, sha256_server bytea NOT NULL,"
	" roster_ver bigint NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS roster ("
	" \"user\" text COLLATE \"C\" NOT NULL, contact text COLLATE \"C\" NOT NULL,"
	" name text NOT NULL DEFAULT '', subscription text NOT NULL DEFAULT 'none',"
	" ask bigint NOT NULL DEFAULT 0, pending_in bytea,"
	" preapproved bigint NOT NULL DEFAULT 0, groups text NOT NULL DEFAULT '',"
	" ver bigint NOT NULL DEFAULT 0, listed bigint NOT NULL DEFAULT 1,"
	" PRIMARY KEY (\"user\", contact));"
	"CREATE TABLE IF NOT EXISTS offline ("
	" id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" \"user\" text COLLATE \"C\" NOT NULL, raw bytea NOT NULL, ts bigint NOT NULL);"
	"CREATE INDEX IF NOT EXISTS offline_user ON offline (\"user\", id);"
	"CREATE TABLE IF NOT EXISTS blocklist ("
	" \"user\" text COLLATE \"C\" NOT NULL, jid text COLLATE \"C\" NOT NULL,"
	" PRIMARY KEY (\"user\", jid));"
	"CREATE TABLE IF NOT EXISTS kv ("
	" \"user\" text COLLATE \"C\" NOT NULL, ns text COLLATE \"C\" NOT NULL,"
	" key text COLLATE \"C\" NOT NULL, value bytea NOT NULL,"
	" PRIMARY KEY (\"user\", ns, key));"
	"CREATE TABLE IF NOT EXISTS pep_node ("
	" \"user\" text COLLATE \"C\" NOT NULL, node text COLLATE \"C\" NOT NULL,"
	" access text NOT NULL DEFAULT 'presence', max_items bigint NOT NULL DEFAULT 1,"
	" PRIMARY KEY (\"user\", node));"
	"CREATE TABLE IF NOT EXISTS pep ("
	" \"user\" text COLLATE \"C\" NOT NULL, node text COLLATE \"C\" NOT NULL,"
	" id text COLLATE \"C\" NOT NULL, payload bytea NOT NULL, ts bigint NOT NULL,"
	" seq bigint NOT NULL DEFAULT 0, PRIMARY KEY (\"user\", node, id));"
	"CREATE TABLE IF NOT EXISTS archive ("
	" id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" \"user\" text COLLATE \"C\" NOT NULL, with_jid text COLLATE \"C\" NOT NULL,"
	" with_full text COLLATE \"C\" NOT NULL DEFAULT '', stanza_id text COLLATE \"C\" NOT NULL,"
	" raw bytea NOT NULL, ts bigint NOT NULL);"
	"CREATE INDEX IF NOT EXISTS archive_user ON archive (\"user\", id);"
	"CREATE INDEX IF NOT EXISTS archive_with ON archive (\"user\", with_jid, id);"
	"CREATE INDEX IF NOT EXISTS archive_sid ON archive (\"user\", stanza_id);"
	"CREATE INDEX IF NOT EXISTS archive_ts ON archive (ts);";

static inline struct pg_db *pg_db(struct sm_db *db)
{
	return (struct pg_db *)db;
}

static inline struct pg_stmt *pg_stmt(sm_stmt *q)
{
	return (struct pg_stmt *)q;
}

/* ---- the dialect ------------------------------------------------------------ */

static bool pg_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

int store_pg_rewrite(const char *sql, char *out, size_t outlen)
{
	const char *p = sql;
	size_t o = 0;
	int max = 0;

#define PG_PUT(c)                          \
	do {                               \
		if (o + 1 >= outlen)       \
			return -1;         \
		out[o++] = (c);            \
	} while (0)
	while (*p) {
		if (*p == '\'' || *p == '"') {        /* a literal or a quoted name: as is */
			char quote = *p;

			PG_PUT(*p++);
			while (*p) {
				char c = *p++;

				PG_PUT(c);
				if (c != quote)
					continue;
				if (*p != quote)
					break;
				PG_PUT(*p++);          /* '' or "": the quote itself */
			}
		} else if (*p == '?') {
			long n = 0;
			int w;

			p++;
			if (isdigit((unsigned char)*p)) {
				while (isdigit((unsigned char)*p)) {
					n = n * 10 + (*p++ - '0');
					if (n > PG_PARAMS_MAX)
						return -1;
				}
			} else {
				n = max + 1;                /* SQLite: one past the largest so far */
			}
			if (n < 1 || n > PG_PARAMS_MAX)
				return -1;
			if (n > max)
				max = (int)n;
			w = snprintf(out + o, outlen - o, "$%ld", n);
			if (w < 0 || (size_t)w >= outlen - o)
				return -1;
			o += (size_t)w;
		} else if (isalpha((unsigned char)*p) || *p == '_') {
			const char *s = p;
			size_t len;

			while (pg_ident_char(*p))
				p++;
			len = (size_t)(p - s);
			if (len == 4 && !strncasecmp(s, "user", 4)) {
				/* A reserved word there (CURRENT_USER), a column here. */
				for (const char *q = "\"user\""; *q; q++)
					PG_PUT(*q);
			} else {
				for (size_t i = 0; i < len; i++)
					PG_PUT(s[i]);
			}
		} else {
			PG_PUT(*p++);
		}
	}
#undef PG_PUT
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return max;
}

/* ---- errors and the connection ------------------------------------------------ */

static void pg_set_err(struct pg_db *p, const char *msg)
{
	size_t n;

	snprintf(p->err, sizeof(p->err), "%s", msg && *msg ? msg : "unknown error");
	n = strlen(p->err);
	while (n && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
		p->err[--n] = '\0';
	for (char *c = p->err; *c; c++)
		if (*c == '"')
			*c = '\'';      /* one logfmt value */
		else if (*c == '\n' || *c == '\t')
			*c = ' ';
}

/* After a failure: is the connection gone?  Logged once per loss. */
static void pg_check_conn(struct pg_db *p)
{
	if (PQstatus(p->conn) == CONNECTION_OK || p->lost)
		return;
	p->lost = true;
	log_error("database connection lost", "backend=postgresql database=\"%s\" error=\"%s\"",
		  p->base.name, p->err);
}

/* A failed result: keep its message, map its SQLSTATE. */
static int pg_result_err(struct pg_db *p, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";

	pg_set_err(p, *msg ? msg : PQerrorMessage(p->conn));
	p->base.stmt_failed = true;
	pg_check_conn(p);
	return state && !strcmp(state, "23505") ? -EEXIST : -EIO;
}

/* Run a command that returns nothing (transaction steps, DDL): 0 or -EIO. */
static int pg_command(struct pg_db *p, const char *sql)
{
	PGresult *res = PQexec(p->conn, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ||
		 PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -EIO;

	if (rc < 0)
		pg_result_err(p, res);
	PQclear(res);
	return rc;
}

/* Create the schema when missing, check its version: 0 or -EIO (logged). */
static int pg_schema(struct pg_db *p)
{
	PGresult *res;
	int ver = 0;
	char sql[96];

	if (pg_command(p, "BEGIN") < 0)
		goto fail;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)", (long long)PG_SCHEMA_LOCK);
	if (pg_command(p, sql) < 0 ||
	    pg_command(p, "CREATE TABLE IF NOT EXISTS xedge_schema (version integer NOT NULL)") < 0)
		goto fail;
	res = PQexec(p->conn, "SELECT max(version) FROM xedge_schema");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_result_err(p, res);
		PQclear(res);
		goto fail;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		ver = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (ver > STORE_SCHEMA_VERSION) {
		log_error("the database is newer than this program", "backend=postgresql"
			  " database=\"%s\" version=%d supported=%d", p->base.name, ver,
			  STORE_SCHEMA_VERSION);
		pg_command(p, "ROLLBACK");
		return -EIO;
	}
	if (ver < STORE_SCHEMA_VERSION) {
		/* Version 2 is the first this backend knows: created whole. */
		snprintf(sql, sizeof(sql), "INSERT INTO xedge_schema VALUES (%d)",
			 STORE_SCHEMA_VERSION);
		if (pg_command(p, pg_schema_v2) < 0 || pg_command(p, "DELETE FROM xedge_schema") < 0 ||
		    pg_command(p, sql) < 0)
			goto fail;
	}
	if (pg_command(p, "COMMIT") < 0)
		goto fail;
	if (ver < STORE_SCHEMA_VERSION)
		log_info("database schema ready", "backend=postgresql database=\"%s\" from=%d to=%d",
			 p->base.name, ver, STORE_SCHEMA_VERSION);
	return 0;
fail:
	log_error("cannot prepare the sm database", "backend=postgresql database=\"%s\" error=\"%s\"",
		  p->base.name, p->err);
	pg_command(p, "ROLLBACK");
	return -EIO;
}

/* Connect (again): 0 with the schema checked, or -EIO (p->err says why). */
static int pg_connect(struct pg_db *p)
{
	/* Keywords before dbname are defaults the URI may override. */
	static const char *const keys[] = {
		"connect_timeout", "application_name", "client_encoding", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "dbname", NULL,
	};
	const char *vals[] = {
		PG_CONNECT_TIMEOUT, "xedge-sm", "UTF8", "30", "10", "3", p->uri, NULL,
	};

	if (p->conn)
		PQfinish(p->conn);
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (!p->conn) {
		pg_set_err(p, "out of memory");
		return -EIO;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		pg_set_err(p, PQerrorMessage(p->conn));
		return -EIO;
	}
	p->gen++;   /* every cached statement prepares again on first use */
	return pg_schema(p);
}

void store_pg_name(const char *uri, char *buf, size_t len)
{
	PQconninfoOption *opts = PQconninfoParse(uri, NULL);
	const char *user = "", *host = "", *port = "", *dbname = "";

	if (!opts) {
		snprintf(buf, len, "postgresql://(unparsable URI)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			dbname = o->val;
	}
	snprintf(buf, len, "postgresql://%s%s%s%s%s/%s", user, *user ? "@" : "", host,
		 *port ? ":" : "", port, dbname);
	PQconninfoFree(opts);
	for (char *c = buf; *c; c++)
		if (*c == '"' || (unsigned char)*c < 0x20)
			*c = '?';   /* one logfmt value */
}

/* ---- statements ---------------------------------------------------------------- */

static sm_stmt *pg_prepare(struct sm_db *db, const char *sql)
{
	struct pg_db *p = pg_db(db);
	size_t len = strlen(sql), cap = 4 * len + 1;
	struct pg_stmt *s = calloc(1, sizeof(*s) + cap);
	int n;

	if (!s) {
		log_error("cannot prepare an sm query", "database=\"%s\" error=\"out of memory\"",
			  db->name);
		return NULL;
	}
	n = store_pg_rewrite(sql, s->sql, cap);
	if (n < 0) {
		log_error("cannot prepare an sm query", "database=\"%s\" sql=\"%s\""
			  " error=\"parameter number out of range\"", db->name, sql);
		free(s);
		return NULL;
	}
	s->orig = sql;
	s->nparams = n;
	if (n) {
		s->vals = calloc((size_t)n, sizeof(*s->vals));
		s->lens = calloc((size_t)n, sizeof(*s->lens));
		s->fmts = calloc((size_t)n, sizeof(*s->fmts));
		s->nums = calloc((size_t)n, sizeof(*s->nums));
		if (!s->vals || !s->lens || !s->fmts || !s->nums) {
			free(s->vals);
			free(s->lens);
			free(s->fmts);
			free(s->nums);
			free(s);
			log_error("cannot prepare an sm query", "database=\"%s\""
				  " error=\"out of memory\"", db->name);
			return NULL;
		}
	}
	snprintf(s->name, sizeof(s->name), "xedge_%u", p->nnames++);
	s->base.db = db;
	return &s->base;
}

static void pg_finalize(sm_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);

	PQclear(s->res);
	free(s->vals);
	free(s->lens);
	free(s->fmts);
	free(s->nums);
	free(s);
}

static bool pg_param(const struct pg_stmt *s, int i)
{
	return i >= 1 && i <= s->nparams;   /* out of range: ignored, like SQLite's */
}

static void pg_bind_text(sm_stmt *q, int i, const char *v)
{
	struct pg_stmt *s = pg_stmt(q);

	if (!pg_param(s, i))
		return;
	s->vals[i - 1] = v;
	s->lens[i - 1] = 0;
	s->fmts[i - 1] = 0;
}

static void pg_bind_int64(sm_stmt *q, int i, int64_t v)
{
	struct pg_stmt *s = pg_stmt(q);

	if (!pg_param(s, i))
		return;
	snprintf(s->nums[i - 1], sizeof(s->nums[i - 1]), "%lld", (long long)v);
	pg_bind_text(q, i, s->nums[i - 1]);
}

static void pg_bind_blob(sm_stmt *q, int i, const void *v, size_t n)
{
	struct pg_stmt *s = pg_stmt(q);

	if (!pg_param(s, i))
		return;
	if (n > INT32_MAX)
		v = NULL, n = 0;   /* cannot be sent: bound NULL, the NOT NULL column refuses it */
	s->vals[i - 1] = v;
	s->lens[i - 1] = (int)n;
	s->fmts[i - 1] = 1;        /* binary: bytea as its bytes */
}

static void pg_bind_null(sm_stmt *q, int i)
{
	pg_bind_text(q, i, NULL);
}

static int pg_step(sm_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);
	struct pg_db *p = pg_db(q->db);

	if (s->ran) {
		if (s->rc < 0)
			return s->rc;
		return ++s->row < s->nrows ? SM_ROW : SM_DONE;
	}
	s->ran = true;
	s->row = -1;
	s->nrows = 0;
	if (s->gen != p->gen) {
		PGresult *res = PQprepare(p->conn, s->name, s->sql, s->nparams, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			s->rc = pg_result_err(p, res);
			PQclear(res);
			if (!p->lost)
				log_error("cannot prepare an sm query", "backend=postgresql"
					  " database=\"%s\" sql=\"%s\" error=\"%s\"", p->base.name,
					  s->orig, p->err);
			return s->rc;
		}
		PQclear(res);
		s->gen = p->gen;
	}
	s->res = PQexecPrepared(p->conn, s->name, s->nparams, s->vals, s->lens, s->fmts, 1);
	switch (PQresultStatus(s->res)) {
	case PGRES_TUPLES_OK:
		s->nrows = PQntuples(s->res);
		break;
	case PGRES_COMMAND_OK:
		p->changes = atoi(PQcmdTuples(s->res));
		break;
	default:
		s->rc = pg_result_err(p, s->res);
		return s->rc;
	}
	s->rc = 0;
	return ++s->row < s->nrows ? SM_ROW : SM_DONE;
}

static void pg_reset(sm_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);

	PQclear(s->res);
	s->res = NULL;
	s->ran = false;
	s->rc = 0;
	s->row = s->nrows = 0;
	for (int i = 0; i < s->nparams; i++) {
		s->vals[i] = NULL;
		s->lens[i] = 0;
		s->fmts[i] = 0;
	}
}

/* The current row's column i, or NULL (no row, no such column, SQL NULL). */
static const char *pg_value(struct pg_stmt *s, int i, int *len)
{
	*len = 0;
	if (!s->res || s->row < 0 || s->row >= s->nrows || i < 0 || i >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, i))
		return NULL;
	*len = PQgetlength(s->res, s->row, i);
	return PQgetvalue(s->res, s->row, i);   /* libpq ends every value with a NUL */
}

static const char *pg_col_text(sm_stmt *q, int i)
{
	int len;

	return pg_value(pg_stmt(q), i, &len);
}

static int64_t pg_col_int64(sm_stmt *q, int i)
{
	struct pg_stmt *s = pg_stmt(q);
	int len, want;
	const unsigned char *v = (const unsigned char *)pg_value(s, i, &len);
	uint64_t u = 0;

	if (!v)
		return 0;
	switch (PQftype(s->res, i)) {
	case PG_INT8OID: want = 8; break;
	case PG_INT4OID: want = 4; break;
	case PG_INT2OID: want = 2; break;
	case PG_BOOLOID: want = 1; break;
	default: return 0;      /* not an integer column: SQLite would convert, we don't guess */
	}
	if (len != want)
		return 0;
	for (int k = 0; k < len; k++)
		u = u << 8 | v[k];
	if (len < 8 && (v[0] & 0x80) && want != 1)
		u |= ~UINT64_C(0) << (8 * len);   /* sign-extend */
	return (int64_t)u;
}

static const void *pg_col_blob(sm_stmt *q, int i)
{
	int len;
	const char *v = pg_value(pg_stmt(q), i, &len);

	return len > 0 ? v : NULL;   /* as SQLite: an empty blob reads NULL */
}

static size_t pg_col_bytes(sm_stmt *q, int i)
{
	int len;

	pg_value(pg_stmt(q), i, &len);
	return (size_t)len;
}

static int pg_changes(struct sm_db *db)
{
	return pg_db(db)->changes;
}

static const char *pg_errmsg(struct sm_db *db)
{
	return pg_db(db)->err;
}

/* ---- transactions and reconnection ------------------------------------------- */

static int pg_ready(struct sm_db *db)
{
	struct pg_db *p = pg_db(db);
	time_t now;

	if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	if (!p->lost) {
		p->lost = true;
		pg_set_err(p, p->conn ? PQerrorMessage(p->conn) : "not connected");
		log_error("database connection lost", "backend=postgresql database=\"%s\""
			  " error=\"%s\"", p->base.name, p->err);
	}
	if (pg_connect(p) == 0) {
		p->lost = false;
		p->next_log = 0;
		log_info("database connection restored", "backend=postgresql database=\"%s\"",
			 p->base.name);
		return 0;
	}
	now = time(NULL);
	if (now >= p->next_log) {
		log_error("cannot reconnect to the database", "backend=postgresql database=\"%s\""
			  " error=\"%s\" retry=\"next batch\"", p->base.name, p->err);
		p->next_log = now + PG_RETRY_LOG_S;
	}
	return -EIO;
}

static int pg_tx(struct sm_db *db, enum store_tx op)
{
	struct pg_db *p = pg_db(db);
	const char *sql = pg_tx_sql[op];

	/* A round trip saved per job: a job's RELEASE travels with the next
	 * job's SAVEPOINT (COMMIT and ROLLBACK end every savepoint anyway). */
	if (op == STORE_RELEASE) {
		p->release_due = true;
		return 0;
	}
	if (op == STORE_SAVEPOINT && p->release_due)
		sql = "RELEASE SAVEPOINT job; SAVEPOINT job";
	p->release_due = false;
	if (pg_command(p, sql) == 0)
		return 0;
	/* A connection that died while idle shows it only now: nothing of the
	 * batch ran yet, so reconnect and begin again. */
	if (op == STORE_BEGIN && PQstatus(p->conn) != CONNECTION_OK && pg_ready(db) == 0)
		return pg_command(p, pg_tx_sql[op]);
	return -EIO;
}

/* ---- open / close -------------------------------------------------------------- */

static void pg_close(struct sm_db *db)
{
	struct pg_db *p = pg_db(db);

	for (size_t i = 0; i < db->nstmts; i++)
		pg_finalize(db->stmts[i].q);
	db->nstmts = 0;
	if (p->conn)
		PQfinish(p->conn);
	free(p->uri);
	free(db->name);
	free(p);
}

static struct sm_db *pg_open(const char *uri)
{
	struct pg_db *p = calloc(1, sizeof(*p));
	char name[512];

	if (!p)
		return NULL;
	p->base.ops = &store_pg_ops;
	p->uri = strdup(uri);
	store_pg_name(uri, name, sizeof(name));
	p->base.name = strdup(name);
	if (!p->uri || !p->base.name)
		goto fail;
	if (pg_connect(p) < 0) {
		log_error("cannot open the sm database", "backend=postgresql database=\"%s\""
			  " error=\"%s\"", p->base.name, p->err);
		goto fail;
	}
	log_info("database connected", "backend=postgresql database=\"%s\" server_version=%d",
		 p->base.name, PQserverVersion(p->conn));
	return &p->base;
fail:
	pg_close(&p->base);
	return NULL;
}

const struct store_ops store_pg_ops = {
	.kind = "postgresql",
	.error_aborts_tx = true,
	.open = pg_open,
	.close = pg_close,
	.tx = pg_tx,
	.ready = pg_ready,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.reset = pg_reset,
	.col_text = pg_col_text,
	.col_int64 = pg_col_int64,
	.col_blob = pg_col_blob,
	.col_bytes = pg_col_bytes,
	.changes = pg_changes,
	.errmsg = pg_errmsg,
};
