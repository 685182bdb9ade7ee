/*
 * nodes — the PubSub item store (XEP-0060), one implementation for both
 * addressing modes: PEP (sm/pep.c: the owner is an account's bare JID) and
 * the PubSub service (sm/pubsub.c: the owner is the service's domain).
 * Items live in table pep (owner, node, id, payload, ts, seq), newest = the
 * highest seq; these functions run on the storage thread only.  Errors are
 * -EIO (logged by the store).
 */
#ifndef XEDGE_SM_NODES_H
#define XEDGE_SM_NODES_H

#include <stddef.h>

struct sm_db;
struct sm_buf;

/* Add or replace item id of owner's node (it becomes the newest), then keep
 * the newest max items. */
int sm_nodes_add_item(struct sm_db *db, const char *owner, const char *node, const char *id,
		      const void *payload, size_t len, int max);
/* Keep the newest max items of owner's node. */
int sm_nodes_trim(struct sm_db *db, const char *owner, const char *node, int max);
/* Append <item id='...'>payload</item> to b, newest first: the items named
 * by ids[0..nids), or (nids 0) the newest max_items (0: all).  Stops before
 * an item that would take b past out_max (XEP-0060 §6.5.7: a truncated
 * answer).  The number of items written, or -EIO. */
int sm_nodes_items(struct sm_db *db, const char *owner, const char *node, char *const *ids,
		   size_t nids, unsigned max_items, struct sm_buf *b, size_t out_max);
/* Remove item id: 1 removed, 0 there was none, or -EIO. */
int sm_nodes_retract(struct sm_db *db, const char *owner, const char *node, const char *id);
/* Remove every item of the node. */
int sm_nodes_purge(struct sm_db *db, const char *owner, const char *node);

#endif
