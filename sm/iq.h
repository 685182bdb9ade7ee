/*
 * sm_iq — the iq requests the session server answers itself, dispatched by
 * their payload (namespace, element), and the disco#info it derives from
 * the same table (XEP-0030: what is advertised is what is handled).
 *
 * route.c hands every get/set addressed to the server's domain, to no one
 * (the sender's account) or to the bare JID of a local account here.  A
 * handler answers with sm_iq_result() / sm_iq_error() before it returns, or
 * keeps a reference (sm_iq_keep()) and answers later, from a storage job's
 * done(), with sm_iq_ref_result() / sm_iq_ref_error(): the requester may be
 * gone by then, and the answer is dropped.
 *
 * The requester may be an external entity (a remote server's user, a
 * component: q->s NULL, q->from its JID): it reaches only the domain and
 * other accounts' bare JIDs, and only rows marked SM_IQ_EXTERNAL serve it
 * (the others need a session of ours: route.c answers service-unavailable).
 * Answers to it go out through sm_remote_send().
 *
 * Adding a service: write its handler in its own file (sm/vcard.c ...),
 * add a row to sm_iq_handlers[] in sm/iq.c and, for features that are not
 * an iq payload (carbons, message archiving), a row to sm_iq_features[].
 */
#ifndef XEDGE_SM_IQ_H
#define XEDGE_SM_IQ_H

#include <stdbool.h>
#include <stddef.h>

#include "parser/wire.h"
#include "parser/xtree.h"

struct sm;
struct sm_session;
struct sm_buf;

/* Where a request may be addressed (bits). */
#define SM_IQ_SERVER 0x01   /* the domain */
#define SM_IQ_OWN 0x02      /* the sender's own bare JID, or no `to` */
#define SM_IQ_OTHER 0x04    /* another local account's bare JID */
/* A row flag, not an address: external requesters are served too. */
#define SM_IQ_EXTERNAL 0x08

struct sm_iq {
	struct sm *sm;
	struct sm_session *s;           /* the requester (bound); NULL: an external entity */
	const char *from;               /* the requester's JID (s->full for a session) */
	const char *from_bare;          /* ... and its bare JID */
	const struct wire_msg *m;       /* the request as routed */
	bool set;                       /* type='set' (else get) */
	unsigned where;                 /* SM_IQ_SERVER / _OWN / _OTHER */
	const char *account;            /* the addressed bare JID (OWN: the sender's); "" for SERVER */
	const struct xtree_node *payload; /* the one child element */
	const struct xtree_node *stanza;  /* the whole iq */
};

struct sm_iq_handler {
	const char *ns, *local;         /* the payload element */
	unsigned where;                 /* where it is served (| SM_IQ_EXTERNAL) */
	const char *feature;            /* disco#info var advertised there (NULL: none) */
	void (*fn)(struct sm_iq *q);
};

struct sm_iq_feature {
	const char *var;
	unsigned where;                 /* SM_IQ_SERVER and/or SM_IQ_OWN|SM_IQ_OTHER (account) */
};

/* Dispatch a get/set (route.c) from s, or when s is NULL from the external
 * JID `from` (canonical).  Returns false when no handler takes it (route.c
 * then answers service-unavailable or feature-not-implemented). */
bool sm_iq_dispatch(struct sm *sm, struct sm_session *s, const char *from,
		    const struct wire_msg *m, unsigned where, const char *account);

/* Answer q now: type='result' with payload (an XML fragment, NULL: empty). */
void sm_iq_result(struct sm_iq *q, const char *payload, size_t len);
/* Answer q now with the stanza error cond (RFC 6120 §8.3.3 names; its type follows). */
void sm_iq_error(struct sm_iq *q, const char *cond);
/* The same with the error type a XEP prescribes where it differs from RFC
 * 6120's (XEP-0050 §4.6: forbidden is "cancel"). */
void sm_iq_error_typed(struct sm_iq *q, const char *type, const char *cond);
/* The scratch buffer, cleared, for building a result payload. */
struct sm_buf *sm_iq_buf(struct sm_iq *q);

/* A request answered later.  NULL: out of memory (answer now instead). */
struct sm_iq_ref *sm_iq_keep(struct sm_iq *q);
void sm_iq_ref_result(struct sm *sm, struct sm_iq_ref *r, const char *payload, size_t len);
void sm_iq_ref_error(struct sm *sm, struct sm_iq_ref *r, const char *cond);
/* The same with an application-specific condition (an XML element, e.g.
 * XEP-0060's <precondition-not-met xmlns='...#errors'/>) after cond. */
void sm_iq_error_app(struct sm_iq *q, const char *cond, const char *app);
void sm_iq_ref_error_app(struct sm *sm, struct sm_iq_ref *r, const char *cond, const char *app);
/* All of the above free r; this frees it without answering. */
void sm_iq_ref_free(struct sm_iq_ref *r);

/* disco#info features for where (SM_IQ_SERVER or an account), as
 * <feature var=''/> elements appended to b. */
void sm_iq_features(struct sm_buf *b, unsigned where);

#endif
