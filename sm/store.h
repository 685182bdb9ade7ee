/*
 * sm_store — the session server's storage: SQLite (WAL) behind a small
 * interface, so another backend can replace it.
 *
 * Tables (created if missing, schema version in PRAGMA user_version):
 *   users(jid PRIMARY KEY, sha1_salt, sha1_iter, sha1_stored, sha1_server,
 *         sha256_salt, sha256_iter, sha256_stored, sha256_server)
 *         -- SCRAM salted keys only, never passwords
 *   roster(user, contact, name, subscription, PRIMARY KEY(user, contact))
 *   offline(id INTEGER PRIMARY KEY, user, raw, ts)
 *
 * JIDs are passed canonical (jid_canon) and NUL-terminated.  All calls are
 * synchronous on the caller's thread, with prepared statements reused; the
 * busy timeout bounds a wait on another process holding the write lock.
 * DESIGN §6 wants storage off the routing thread: that is a later step (a
 * storage thread behind this same interface).
 *
 * Returns: 0 on success, -ENOENT / -EEXIST / -ENOSPC where said, -EIO when
 * SQLite failed (logged).
 */
#ifndef XEDGE_SM_STORE_H
#define XEDGE_SM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "parser/wire.h"

struct sm_store;

/* Open or create the database at path.  NULL on failure (logged). */
struct sm_store *sm_store_open(const char *path);
void sm_store_close(struct sm_store *st);

/* Keys of jid: 0 and *sha1, *sha256 filled; -ENOENT; -EIO. */
int sm_store_user_get(struct sm_store *st, const char *jid, struct wire_scram *sha1,
		      struct wire_scram *sha256);
/* 1 when the account exists, 0 when not, -EIO. */
int sm_store_user_exists(struct sm_store *st, const char *jid);
/* 0; -EEXIST when jid already has an account; -EIO. */
int sm_store_user_add(struct sm_store *st, const char *jid, const struct wire_scram *sha1,
		      const struct wire_scram *sha256);
/* Replace the keys of jid's account (a password change): 0; -ENOENT; -EIO. */
int sm_store_user_passwd(struct sm_store *st, const char *jid, const struct wire_scram *sha1,
			 const struct wire_scram *sha256);
/* Delete the account with its roster and offline messages: 0; -ENOENT; -EIO. */
int sm_store_user_del(struct sm_store *st, const char *jid);

/* Calls fn for each roster row of user (contact order) until fn returns
 * non-zero.  sub is an enum sm_sub.  Returns 0 or -EIO. */
typedef int (*sm_store_roster_fn)(void *arg, const char *contact, const char *name, int sub);
int sm_store_roster_load(struct sm_store *st, const char *user, sm_store_roster_fn fn, void *arg);
/* Insert or replace one roster row. */
int sm_store_roster_put(struct sm_store *st, const char *user, const char *contact,
			const char *name, int sub);

/* Store one message for user: 0; -ENOSPC when user already has max stored. */
int sm_store_offline_add(struct sm_store *st, const char *user, const void *raw, size_t len,
			 unsigned max);
/* Hand user's stored messages, oldest first, to fn, then delete them.
 * Returns the number delivered or -EIO. */
typedef void (*sm_store_offline_fn)(void *arg, const void *raw, size_t len, int64_t ts);
int sm_store_offline_take(struct sm_store *st, const char *user, sm_store_offline_fn fn, void *arg);

#endif
