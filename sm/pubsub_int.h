/*
 * pubsub_int.h — what sm/pubsub.c (the service: nodes in memory, storage,
 * disco, the entry) and sm/pubsub_ops.c (the XEP-0060 actions) share.  See
 * sm/pubsub.c for the service's contract.
 */
#ifndef XEDGE_SM_PUBSUB_INT_H
#define XEDGE_SM_PUBSUB_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "parser/xtree.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER NS_PUBSUB "#owner"
#define NS_PUBSUB_EVENT NS_PUBSUB "#event"
#define NS_PUBSUB_ERRORS NS_PUBSUB "#errors"
#define NS_NODE_CONFIG NS_PUBSUB "#node_config"
#define NS_PUBLISH_OPTIONS NS_PUBSUB "#publish-options"
#define NS_SUB_OPTIONS NS_PUBSUB "#subscribe_options"
#define NS_META NS_PUBSUB "#meta-data"
#define NS_XDATA "jabber:x:data"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_KV_PS "urn:xedge:pubsub:0"

#define PS_MAX_NODES 10000
#define PS_MAX_SUBS 10000           /* subscriptions per node */
#define PS_MAX_AFFILS 1000
#define PS_NAME_MAX 256
#define PS_PAYLOAD_MAX (128u * 1024)
#define PS_OUT_MAX (1u << 20)
#define PS_MAX_ITEMS 1000           /* pubsub#max_items at most */

enum ps_access { PA_OPEN = 0, PA_PRESENCE, PA_ROSTER, PA_WHITELIST, PA_AUTHORIZE };
extern const char *const ps_access_names[];
enum ps_publish { PP_PUBLISHERS = 0, PP_SUBSCRIBERS, PP_OPEN };
extern const char *const ps_publish_names[];
enum ps_aff { PF_NONE = 0, PF_OUTCAST, PF_MEMBER, PF_PUBLISH_ONLY, PF_PUBLISHER, PF_OWNER };
extern const char *const ps_affil_names[];

struct ps_affil {
	struct ps_affil *next;
	uint8_t affil;
	char jid[];                 /* bare */
};

struct ps_sub {
	struct ps_sub *next;
	bool pending;               /* authorize: waiting for an owner */
	bool deliver;               /* pubsub#deliver */
	char subid[20];
	char jid[];                 /* as subscribed: bare or full */
};

struct ps_config {
	uint8_t access, publish;
	int max_items;
	bool deliver_payloads, notify_retract, notify_delete;
	char *title;
	char *roster_group;         /* roster access: the owner's group that may (NULL: any contact) */
};

struct ps_node {
	struct sm_tab_node tn;
	struct ps_node *next, *prev;
	char *name;
	struct ps_config cfg;
	struct ps_affil *affils;
	unsigned naffils;
	struct ps_sub *subs;
	unsigned nsubs;
};

struct sm_pubsub {
	struct sm_tab nodes;
	struct ps_node *list;
	size_t nnodes;
	char *domain;
	size_t domain_len;
	uint64_t seq;               /* item and subscription ids */
	struct sm_buf out, part;
};

struct req {
	struct sm *sm;
	const char *from, *bare;    /* the requester's real JID, and its bare JID */
	const char *id;             /* the iq's id */
	const struct xtree_node *el;  /* the action element */
	const char *node;           /* its node attribute (NULL: none) */
};

enum { OP_ITEMS = 1, OP_SUBSCRIBE, OP_PUBLISH, OP_RETRACT, OP_PURGE };

struct ps_job {
	struct sm_job job;
	int op, rc;
	bool check;                 /* presence/roster access: read the owners' rosters first */
	bool allowed;               /* (out) the check passed */
	bool notify;                /* retract: tell the subscribers */
	char *requester, *bare, *id, *node, *item, *group;
	char **owners;
	size_t nowners;
	char **ids;
	size_t nids;
	unsigned max_items;
	int max;                    /* the node's max_items (publish) */
	char *payload;
	size_t payload_len;
	struct sm_buf out;
	char domain[JID_MAX + 1];
};


/* ---- sm/pubsub.c ---- */
void ps_node_free(struct sm_pubsub *p, struct ps_node *n);
struct ps_node *ps_node_find(struct sm_pubsub *p, const char *name);
struct ps_node *ps_node_new(struct sm_pubsub *p, const char *name);
int ps_affil_of(const struct ps_node *n, const char *bare);
int ps_affil_set(struct ps_node *n, const char *bare, int affil);
unsigned ps_owners(const struct ps_node *n);
struct ps_sub *ps_sub_find(const struct ps_node *n, const char *jid);
void ps_sub_remove(struct ps_node *n, struct ps_sub *s);
struct ps_sub *ps_sub_add(struct sm_pubsub *p, struct ps_node *n, const char *jid, bool pending);
int ps_name_index(const char *const *names, int n, const char *v);
void ps_iq_error(struct sm *sm, const char *to, const char *id, const char *cond, const char *app,
		 const char *feature);
/* A result now / once every storage job before it has committed. */
void ps_iq_ok_now(struct sm *sm, const char *to, const char *id, const char *payload, size_t len);
void ps_iq_ok(struct sm *sm, const char *to, const char *id, const char *payload, size_t len);
void ps_notify(struct sm *sm, struct ps_node *n, const char *event, size_t len);
void ps_node_save(struct sm *sm, const struct ps_node *n);
void ps_save_submit(struct sm *sm, const char *node, const void *blob, size_t len);

/* ---- sm/pubsub_ops.c ---- */
/* A <pubsub/> or <pubsub xmlns='...#owner'/> request q (set or get). */
void ps_dispatch(struct req *r, const struct xtree_node *q, bool set);

#endif
