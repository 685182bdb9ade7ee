/*
 * upload — the session server's side of XEP-0363 HTTP file upload: the
 * service's place in the server's disco#items and its disco#info (identity
 * store/file, the feature, the max-file-size form of §3).  The slots and the
 * files are the edge's (core/upload.h): a client's slot request never comes
 * here.  One that does came from another server, or through an edge without
 * the service: refused with not-allowed.  Any shard answers (no state).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/jid.h"
#include "parser/xtree.h"
#include "sm/sm_int.h"

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

struct sm_upload {
	char *domain;
	size_t domain_len;
	uint64_t max_size;
	struct sm_buf out;
};

int sm_upload_open(struct sm *sm, const char *domain, uint64_t max_size)
{
	struct sm_upload *u;

	if (!domain || !*domain)
		return 0;
	if (!(u = calloc(1, sizeof(*u))) || !(u->domain = strdup(domain))) {
		free(u);
		return -1;
	}
	u->domain_len = strlen(domain);
	u->max_size = max_size;
	sm->upload = u;
	return 0;
}

void sm_upload_free(struct sm *sm)
{
	struct sm_upload *u = sm->upload;

	if (!u)
		return;
	sm_buf_free(&u->out);
	free(u->domain);
	free(u);
	sm->upload = NULL;
}

bool sm_upload_domain(const struct sm *sm, const char *d, size_t n)
{
	return sm->upload && n == sm->upload->domain_len && memcmp(d, sm->upload->domain, n) == 0;
}

void sm_upload_disco_item(const struct sm *sm, struct sm_buf *b)
{
	if (sm->upload)
		sm_buf_disco_item(b, sm->upload->domain, sm->upload->domain_len, "HTTP File Upload");
}

/* An iq of `type` from the service to `to`: payload is what follows the start tag's end. */
static void reply(struct sm *sm, const char *to, const char *id, const char *type, const char *payload)
{
	struct sm_upload *u = sm->upload;
	struct sm_buf *b = &u->out;

	sm_buf_clear(b);
	sm_buf_str(b, "<iq from='");
	sm_buf_esc(b, u->domain, u->domain_len);
	sm_buf_str(b, "' to='");
	sm_buf_esc(b, to, strlen(to));
	sm_buf_fmt(b, "' type='%s'", type);
	sm_buf_attr(b, "id", id);
	sm_buf_str(b, payload);
	sm_buf_str(b, "</iq>");
	if (!b->err)
		sm_route_from_service(sm, WIRE_KIND_IQ, type, u->domain, to, id, sm_buf_data(b), sm_buf_used(b));
	b->err = 0;
	sm_buf_clear(b);
}

void sm_upload_in(struct sm *sm, const char *from, size_t from_len, const struct wire_msg *m)
{
	struct sm_upload *u = sm->upload;
	char full[JID_MAX + 1], info[1024];
	const struct xtree_node *st, *q;
	const char *type, *id;
	struct jid_view v;
	struct xtree *t;

	if (!u || m->u.stanza.kind != WIRE_KIND_IQ || from_len > JID_MAX || jid_parse(from, from_len, &v) < 0 ||
	    jid_canon(&v, true, full, sizeof(full)) < 0)
		return;     /* messages and presence to the service: nothing to do with them */
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL, NULL);
	if (!t)
		return;
	st = xtree_root(t);
	type = xtree_attr(st, "type");
	id = xtree_attr(st, "id");
	q = st->first;
	if (!type || (strcmp(type, "get") && strcmp(type, "set"))) {
		;   /* results and errors: nobody waits here */
	} else if (q && !q->next && !strcmp(type, "get") && !strcmp(q->ns, NS_DISCO_INFO) && !xtree_attr(q, "node")) {
		snprintf(info, sizeof(info), "><query xmlns='" NS_DISCO_INFO "'><identity category='store' "
			 "type='file' name='HTTP File Upload'/><feature var='" NS_DISCO_INFO "'/><feature var='"
			 NS_UPLOAD "'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
			 "<value>" NS_UPLOAD "</value></field><field var='max-file-size'><value>%" PRIu64
			 "</value></field></x></query>", u->max_size);
		reply(sm, full, id, "result", info);
	} else if (q && !q->next && !strcmp(type, "get") && !strcmp(q->ns, NS_DISCO_ITEMS) && !xtree_attr(q, "node")) {
		reply(sm, full, id, "result", "><query xmlns='" NS_DISCO_ITEMS "'/>");
	} else if (q && !strcmp(q->ns, NS_UPLOAD)) {
		reply(sm, full, id, "error", "><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:"
		      "xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Upload slots are given to "
		      "this server's own users, by the edge they are connected to</text></error>");
	} else {
		reply(sm, full, id, "error", "><error type='cancel'><service-unavailable xmlns='urn:ietf:params:"
		      "xml:ns:xmpp-stanzas'/></error>");
	}
	xtree_free(t);
}
