/*
 * sm_iq — dispatch of the server's own iq services.  See iq.h.
 */
#include "sm/iq.h"

#include <stdlib.h>
#include <string.h>

#include "parser/jid.h"

#include "core/log.h"
#include "sm/sm_int.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"

/* The services; the first row that matches the payload and the address wins. */
static const struct sm_iq_handler sm_iq_handlers[] = {
	{ "vcard-temp", "vCard", SM_IQ_OWN | SM_IQ_OTHER | SM_IQ_EXTERNAL, "vcard-temp",
	  sm_kv_vcard },
	{ "jabber:iq:private", "query", SM_IQ_OWN | SM_IQ_OTHER | SM_IQ_EXTERNAL,
	  "jabber:iq:private", sm_kv_private },
	{ "jabber:iq:version", "query", SM_IQ_SERVER | SM_IQ_EXTERNAL, "jabber:iq:version",
	  sm_version_iq },
	{ "urn:xmpp:mam:2", "query", SM_IQ_OWN, "urn:xmpp:mam:2", sm_mam_query },
	{ "urn:xmpp:mam:2", "prefs", SM_IQ_OWN, NULL, sm_mam_prefs },
	{ "urn:xmpp:blocking", "blocklist", SM_IQ_OWN, NULL, sm_blocking_iq_list },
	{ "urn:xmpp:blocking", "block", SM_IQ_OWN, NULL, sm_blocking_iq_block },
	{ "urn:xmpp:blocking", "unblock", SM_IQ_OWN, NULL, sm_blocking_iq_unblock },
	{ "urn:xmpp:carbons:2", "enable", SM_IQ_OWN | SM_IQ_SERVER, NULL, sm_carbons_iq_enable },
	{ "urn:xmpp:carbons:2", "disable", SM_IQ_OWN | SM_IQ_SERVER, NULL, sm_carbons_iq_disable },
	{ NS_PUBSUB, "pubsub", SM_IQ_OWN | SM_IQ_OTHER | SM_IQ_EXTERNAL, NS_PUBSUB, sm_pep_iq },
	{ NS_PUBSUB "#owner", "pubsub", SM_IQ_OWN | SM_IQ_OTHER | SM_IQ_EXTERNAL, NULL,
	  sm_pep_owner_iq },
	{ "http://jabber.org/protocol/commands", "command", SM_IQ_SERVER,
	  "http://jabber.org/protocol/commands", sm_adhoc_iq },
	{ NULL, NULL, 0, NULL, NULL }   /* sentinel: rows above */
};

/* Features that are not one iq payload. */
static const struct sm_iq_feature sm_iq_features_tab[] = {
	{ "vcard-temp", SM_IQ_SERVER },       /* XEP-0054 §4: the server announces it */
	{ "jabber:iq:private", SM_IQ_SERVER },  /* XEP-0049: requests with no `to` are the server's */
	{ "urn:xmpp:sid:0", SM_IQ_OWN },    /* XEP-0359 ids, stamped by sm/mam.c */
	{ "urn:xmpp:blocking", SM_IQ_SERVER },      /* XEP-0191 §3.1: asked of the server */
	{ "urn:xmpp:carbons:2", SM_IQ_SERVER },     /* XEP-0280 §3 */
	/* XEP-0163 §8: what the PEP service (sm/pep.c) does. */
	{ NS_PUBSUB "#access-open", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#access-presence", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#access-whitelist", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#auto-create", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#auto-subscribe", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#config-node", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#delete-nodes", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#filtered-notifications", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#item-ids", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#last-published", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#persistent-items", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#publish", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#publish-options", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#retract-items", SM_IQ_OWN | SM_IQ_OTHER },
	{ NS_PUBSUB "#retrieve-items", SM_IQ_OWN | SM_IQ_OTHER },
	{ NULL, 0 }
};

struct sm_iq_ref {
	uint32_t link;       /* 0: the requester is external (to below) */
	uint64_t sid;
	char *id;        /* the request's id */
	char *from;      /* the `to` it was sent to: the answer's `from` ("" for none) */
	char *to;        /* the requester's full JID */
};

static bool where_ok(unsigned have, unsigned want)
{
	return (have & want & ~SM_IQ_EXTERNAL) != 0;
}

bool sm_iq_dispatch(struct sm *sm, struct sm_session *s, const char *from,
		    const struct wire_msg *m, unsigned where, const char *account)
{
	struct sm_iq q = { .sm = sm, .s = s, .m = m, .where = where, .account = account };
	const struct sm_iq_handler *h;
	char bare[JID_MAX + 1];
	const char *slash = strchr(from, '/');
	size_t blen = slash ? (size_t)(slash - from) : strlen(from);
	struct xtree *t;
	int err;

	if (blen > JID_MAX)
		return false;
	memcpy(bare, from, blen);
	bare[blen] = '\0';
	q.from = from;
	q.from_bare = bare;
	q.set = m->u.stanza.type.len == 3 && memcmp(m->u.stanza.type.p, "set", 3) == 0;
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL,
			&err);
	if (!t) {
		/* xmlstage accepted it at the edge: only limits or memory fail here. */
		log_debug("iq payload not parsed", "jid=\"%s\" error=%s", from,
			  xtree_error_str(err));
		return false;
	}
	q.stanza = xtree_root(t);
	q.payload = xtree_child(q.stanza, NULL, NULL);
	for (h = sm_iq_handlers; q.payload && h->fn; h++) {
		if (strcmp(h->ns, q.payload->ns) == 0 && strcmp(h->local, q.payload->local) == 0 &&
		    where_ok(h->where, where) && (s || (h->where & SM_IQ_EXTERNAL))) {
			h->fn(&q);
			xtree_free(t);
			return true;
		}
	}
	xtree_free(t);
	return false;
}

/* Start <iq type='T' id='' [from=''] to=''> in b. */
static void head(struct sm_buf *b, const char *type, const void *id, size_t idlen,
		 const void *from, size_t fromlen, const char *to, size_t tolen)
{
	sm_buf_fmt(b, "<iq type='%s' id='", type);
	sm_buf_esc(b, id, idlen);
	if (fromlen) {
		sm_buf_str(b, "' from='");
		sm_buf_esc(b, from, fromlen);
	}
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, tolen);
	sm_buf_str(b, "'");
}

/* Send the reply built in the sm's reply buffer to t, or when t is NULL out
 * to the external JID `to`. */
static void send_reply(struct sm *sm, struct sm_session *t, const char *to, struct sm_buf *b,
		       const char *type, struct wire_str from, struct wire_str id)
{
	struct wire_msg r = { .type = WIRE_ROUTE };

	if (b->err) {
		log_warn("iq reply too large to build", "jid=\"%s\"", to);
		return;
	}
	if (t) {
		sm_deliver(sm, t, WIRE_KIND_IQ, sm_ws(type), sm_ws(t->full), from, id, sm_ws(""),
			   sm_buf_data(b), sm_buf_used(b));
		return;
	}
	r.u.stanza.kind = WIRE_KIND_IQ;
	r.u.stanza.type = sm_ws(type);
	r.u.stanza.to = sm_ws(to);
	r.u.stanza.from = from;
	r.u.stanza.id = id;
	r.u.stanza.ns = sm_ws("");
	r.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
	sm_remote_send(sm, &r);
}

static void build_result(struct sm_buf *b, struct wire_str id, struct wire_str from,
			 const char *to, size_t tolen, const char *payload, size_t len)
{
	sm_buf_clear(b);
	head(b, "result", id.p, id.len, from.p, from.len, to, tolen);
	if (payload && len) {
		sm_buf_str(b, ">");
		sm_buf_add(b, payload, len);
		sm_buf_str(b, "</iq>");
	} else {
		sm_buf_str(b, "/>");
	}
}

static void build_error(struct sm_buf *b, struct wire_str id, struct wire_str from,
			const char *to, size_t tolen, const char *cond, const char *app)
{
	sm_buf_clear(b);
	head(b, "error", id.p, id.len, from.p, from.len, to, tolen);
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/>%s</error></iq>",
		   sm_error_type(cond), cond, app ? app : "");
}

/* Replies are built in their own buffer: a handler may be building its
 * payload in sm->scratch (sm_iq_buf()). */
static struct sm_buf *reply_buf(struct sm *sm)
{
	return &sm->reply;
}

struct sm_buf *sm_iq_buf(struct sm_iq *q)
{
	sm_buf_clear(&q->sm->scratch);
	return &q->sm->scratch;
}

void sm_iq_result(struct sm_iq *q, const char *payload, size_t len)
{
	struct sm_buf *b = reply_buf(q->sm);

	build_result(b, q->m->u.stanza.id, q->m->u.stanza.to, q->from, strlen(q->from), payload,
		     len);
	send_reply(q->sm, q->s, q->from, b, "result", q->m->u.stanza.to, q->m->u.stanza.id);
}

void sm_iq_error_app(struct sm_iq *q, const char *cond, const char *app)
{
	struct sm_buf *b = reply_buf(q->sm);

	build_error(b, q->m->u.stanza.id, q->m->u.stanza.to, q->from, strlen(q->from), cond, app);
	send_reply(q->sm, q->s, q->from, b, "error", q->m->u.stanza.to, q->m->u.stanza.id);
}

void sm_iq_error(struct sm_iq *q, const char *cond)
{
	sm_iq_error_app(q, cond, NULL);
}

void sm_iq_error_typed(struct sm_iq *q, const char *type, const char *cond)
{
	struct sm_buf *b = reply_buf(q->sm);
	struct wire_str id = q->m->u.stanza.id, from = q->m->u.stanza.to;

	sm_buf_clear(b);
	head(b, "error", id.p, id.len, from.p, from.len, q->from, strlen(q->from));
	sm_buf_fmt(b, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></iq>", type, cond);
	send_reply(q->sm, q->s, q->from, b, "error", from, id);
}

struct sm_iq_ref *sm_iq_keep(struct sm_iq *q)
{
	struct sm_iq_ref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->link = q->s ? q->s->link->id : 0;
	r->sid = q->s ? q->s->sid : 0;
	r->id = strndup((const char *)q->m->u.stanza.id.p, q->m->u.stanza.id.len);
	r->from = strndup((const char *)q->m->u.stanza.to.p, q->m->u.stanza.to.len);
	r->to = strdup(q->from);
	if (!r->id || !r->from || !r->to) {
		sm_iq_ref_free(r);
		return NULL;
	}
	return r;
}

void sm_iq_ref_free(struct sm_iq_ref *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->from);
	free(r->to);
	free(r);
}

/* The requester, if it is still the session that asked. */
static struct sm_session *ref_session(struct sm *sm, const struct sm_iq_ref *r)
{
	struct sm_link *l = r->link ? sm_link_by_id(sm, r->link) : NULL;
	struct sm_session *s = l ? sm_session_by_sid(l, r->sid) : NULL;

	return s && s->state == SM_SESS_BOUND ? s : NULL;
}

void sm_iq_ref_result(struct sm *sm, struct sm_iq_ref *r, const char *payload, size_t len)
{
	struct sm_session *s = ref_session(sm, r);
	struct sm_buf *b = reply_buf(sm);

	if (s || !r->link) {
		build_result(b, sm_ws(r->id), sm_ws(r->from), r->to, strlen(r->to), payload, len);
		send_reply(sm, s, r->to, b, "result", sm_ws(r->from), sm_ws(r->id));
	}
	sm_iq_ref_free(r);
}

void sm_iq_ref_error(struct sm *sm, struct sm_iq_ref *r, const char *cond)
{
	sm_iq_ref_error_app(sm, r, cond, NULL);
}

void sm_iq_ref_error_app(struct sm *sm, struct sm_iq_ref *r, const char *cond, const char *app)
{
	struct sm_session *s = ref_session(sm, r);
	struct sm_buf *b = reply_buf(sm);

	if (s || !r->link) {
		build_error(b, sm_ws(r->id), sm_ws(r->from), r->to, strlen(r->to), cond, app);
		send_reply(sm, s, r->to, b, "error", sm_ws(r->from), sm_ws(r->id));
	}
	sm_iq_ref_free(r);
}

void sm_iq_features(struct sm_buf *b, unsigned where)
{
	for (const struct sm_iq_handler *h = sm_iq_handlers; h->fn; h++)
		if (h->feature && where_ok(h->where, where))
			sm_buf_fmt(b, "<feature var='%s'/>", h->feature);
	for (const struct sm_iq_feature *f = sm_iq_features_tab; f->var; f++)
		if (where_ok(f->where, where))
			sm_buf_fmt(b, "<feature var='%s'/>", f->var);
}
