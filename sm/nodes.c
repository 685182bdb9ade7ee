/*
 * nodes — see nodes.h.
 */
#include "sm/nodes.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "sm/sm_int.h"
#include "sm/store.h"

int sm_nodes_trim(struct sm_db *db, const char *owner, const char *node, int max)
{
	static const char sql[] =
		"DELETE FROM pep WHERE user = ?1 AND node = ?2 AND seq NOT IN"
		" (SELECT seq FROM pep WHERE user = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	sm_db_bind_int64(q, 3, max);
	return sm_db_exec(db, q, "pubsub trim") < 0 ? -EIO : 0;
}

int sm_nodes_add_item(struct sm_db *db, const char *owner, const char *node, const char *id,
		      const void *payload, size_t len, int max)
{
	static const char sql[] =
		"INSERT INTO pep (user, node, id, payload, ts, seq) VALUES (?1, ?2, ?3, ?4, ?5,"
		" (SELECT COALESCE(MAX(seq), 0) + 1 FROM pep WHERE user = ?1 AND node = ?2))"
		" ON CONFLICT(user, node, id) DO UPDATE SET payload = excluded.payload,"
		" ts = excluded.ts, seq = excluded.seq";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	sm_db_bind_text(q, 3, id);
	sm_db_bind_blob(q, 4, payload, len);
	sm_db_bind_int64(q, 5, time(NULL));
	if (sm_db_exec(db, q, "pubsub item add") < 0)
		return -EIO;
	return sm_nodes_trim(db, owner, node, max);
}

/* Append the row's item to b; false when it would not fit. */
static bool out_item(struct sm_buf *b, sm_stmt *q, size_t out_max)
{
	const char *id = sm_db_col_text(q, 0);
	const void *payload = sm_db_col_blob(q, 1);
	size_t len = sm_db_col_bytes(q, 1);

	if (sm_buf_used(b) + len + (id ? strlen(id) * 6 : 0) + 64 > out_max)
		return false;
	sm_buf_str(b, "<item id='");
	sm_buf_esc(b, id ? id : "", id ? strlen(id) : 0);
	sm_buf_str(b, "'>");
	if (payload && len > 0)
		sm_buf_add(b, payload, len);
	sm_buf_str(b, "</item>");
	return true;
}

int sm_nodes_items(struct sm_db *db, const char *owner, const char *node, char *const *ids,
		   size_t nids, unsigned max_items, struct sm_buf *b, size_t out_max)
{
	static const char sql_all[] =
		"SELECT id, payload FROM pep WHERE user = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3";
	static const char sql_one[] =
		"SELECT id, payload FROM pep WHERE user = ?1 AND node = ?2 AND id = ?3";
	int found = 0, rc;
	sm_stmt *q;

	if (nids == 0) {
		q = sm_db_stmt(db, sql_all);
		if (!q)
			return -EIO;
		sm_db_bind_text(q, 1, owner);
		sm_db_bind_text(q, 2, node);
		/* No max_items: every item (a LIMIT both dialects read as none). */
		sm_db_bind_int64(q, 3, max_items ? (int64_t)max_items : INT64_MAX);
		while ((rc = sm_db_step(q)) == SM_ROW && out_item(b, q, out_max))
			found++;
		sm_db_done(q);
		if (rc != SM_DONE && rc != SM_ROW)
			return sm_db_fail(db, "pubsub items"), -EIO;
		return found;
	}
	for (size_t i = 0; i < nids; i++) {
		q = sm_db_stmt(db, sql_one);
		if (!q)
			return -EIO;
		sm_db_bind_text(q, 1, owner);
		sm_db_bind_text(q, 2, node);
		sm_db_bind_text(q, 3, ids[i]);
		rc = sm_db_step(q);
		if (rc == SM_ROW && out_item(b, q, out_max))
			found++;
		sm_db_done(q);
		if (rc != SM_ROW && rc != SM_DONE)
			return sm_db_fail(db, "pubsub item"), -EIO;
	}
	return found;
}

int sm_nodes_retract(struct sm_db *db, const char *owner, const char *node, const char *id)
{
	static const char sql[] = "DELETE FROM pep WHERE user = ?1 AND node = ?2 AND id = ?3";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	sm_db_bind_text(q, 3, id);
	if (sm_db_exec(db, q, "pubsub retract") < 0)
		return -EIO;
	return sm_db_changes(db) > 0;
}

int sm_nodes_purge(struct sm_db *db, const char *owner, const char *node)
{
	static const char sql[] = "DELETE FROM pep WHERE user = ?1 AND node = ?2";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, owner);
	sm_db_bind_text(q, 2, node);
	return sm_db_exec(db, q, "pubsub purge") < 0 ? -EIO : 0;
}
