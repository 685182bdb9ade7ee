/*
 * component — see component.h.  The XEP-0114 accept role on the shared
 * stream machinery (xmpp.c); the byte-level checks are parser/xep114.c.
 *
 * A component stream, in xmpp.c's states:
 *   header     waiting for <stream:stream xmlns='jabber:component:accept'
 *              to='NAME'>; xmpp.c answers host-unknown when NAME is not a
 *              configured component (comp_host), invalid-namespace for
 *              another namespace.  Within timeouts.handshake of the accept.
 *   negotiate  our header (from NAME, a fresh random id) is out; the
 *              <handshake/> must come within timeouts.auth of the accept.
 *              A wrong one: <not-authorized/>; anything else first: the same.
 *   session    <handshake/> answered: the component serves NAME and its
 *              subdomains.  Its stanzas (from checked, to present) go to the
 *              session server as WIRE_ROUTE; WIRE_ROUTEs for its domains
 *              come back through component_deliver().
 *   closing    the stream ends: nothing more is delivered to it and the
 *              name is free; once the connection is freed (its last send
 *              completed or failed), the stanzas it lost are bounced and
 *              then the route is withdrawn (WIRE_DOMAIN down).
 *
 * One stream per component name in the whole process: the workers share
 * comp_claimed[] (atomics).  A second stream that authenticates for a name
 * already connected is refused with <conflict/> (XEP-0114 §3 names it; the
 * first one keeps the route, as Prosody's default `kick_new` does): a
 * component that reconnects while its old stream is still open gets the
 * conflict and retries, and whoever learns the secret cannot take a live
 * route over.  Across several edge processes in front of one session server
 * nothing is shared: the session server keeps the route of the latest UP.
 *
 * Stanzas lost with the stream: every stanza written to the component that
 * an error answer is owed for (message, iq get/set, presence subscribe; never
 * an error or a result) is remembered with its position in the connection's
 * output (conn.tx_sent + what is queued) until the socket has taken it.  When
 * the connection is freed, those the socket never took are bounced with
 * <service-unavailable/>, like those that arrive after it is gone
 * (route_from_sm() bounces those).  What the kernel had taken but the
 * component never read is lost without a word: TCP does not say, and
 * XEP-0114 has no acknowledgements.
 */
#include "core/component.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/log.h"
#include "core/route.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "core/xprt.h"
#include "parser/jid.h"
#include "parser/xep114.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

#define NS_COMPONENT "jabber:component:accept"
#define SID_BYTES 16            /* stream id: 128 random bits, hex */

/* Per-connection state of the component role (conn.comp). */
struct comp {
	int k;                  /* index into cfg->components */
	bool registered;        /* holds comp_claimed[k]; w->components[k] is this stream */
	bool announced;         /* UP went to the session server; DOWN is owed */
	char sid[2 * SID_BYTES + 1];
	struct buf owed;        /* records of written stanzas owed an error if lost (below) */
};

/* A record in comp.owed, followed by its type, to, from and id bytes. */
struct owed_rec {
	uint64_t end;           /* output position just past the stanza (conn.tx_sent space) */
	uint8_t kind;
	uint16_t type_len, to_len, from_len, id_len;
};

/* Process-wide: 1 while some worker's stream holds component k. */
static uint8_t comp_claimed[CONFIG_MAX_COMPONENTS];

static bool claim(size_t k)
{
	uint8_t free_ = 0;

	return __atomic_compare_exchange_n(&comp_claimed[k], &free_, 1, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

static void unclaim(size_t k)
{
	__atomic_store_n(&comp_claimed[k], 0, __ATOMIC_RELEASE);
}

bool component_connected(const struct worker *w, size_t k)
{
	return w->components[k] != NULL;
}

static const char *comp_name(const struct conn *c)
{
	return c->w->cfg->components[c->comp->k].name;
}

/* ---- stanzas owed an answer if lost ---------------------------------------- */

static size_t rec_size(const struct owed_rec *r)
{
	return sizeof(*r) + r->type_len + r->to_len + r->from_len + r->id_len;
}

/* Would route_bounce() answer this stanza?  Only those are remembered. */
static bool owed(const struct wire_msg *m)
{
	const struct wire_str *t = &m->u.stanza.type;

	if (!m->u.stanza.from.len || (t->len == 5 && memcmp(t->p, "error", 5) == 0))
		return false;
	switch (m->u.stanza.kind) {
	case WIRE_KIND_MESSAGE:
		return true;
	case WIRE_KIND_IQ:
		return !(t->len == 6 && memcmp(t->p, "result", 6) == 0);
	case WIRE_KIND_PRESENCE:
		return t->len == 9 && memcmp(t->p, "subscribe", 9) == 0;
	}
	return false;
}

/* Remember m, just written to c (its last byte is the last queued). */
static void owed_add(struct conn *c, const struct wire_msg *m)
{
	struct owed_rec r = {
		.end = c->tx_sent + conn_queued(c) + xprt_pending(c),
		.kind = m->u.stanza.kind,
		.type_len = (uint16_t)m->u.stanza.type.len,
		.to_len = (uint16_t)m->u.stanza.to.len,
		.from_len = (uint16_t)m->u.stanza.from.len,
		.id_len = (uint16_t)m->u.stanza.id.len,
	};
	struct buf *b = &c->comp->owed;
	/* Each record is smaller than its stanza plus sizeof(r), and the output
	 * holds at most 4 x max_out_bytes of stanzas (worker.c): this bound is
	 * only reached by a flood of tiny stanzas, which then go untracked. */
	size_t limit = 8 * (size_t)c->w->cfg->limits.max_out_bytes;
	uint32_t before = buf_used(b);

	if (!owed(m))
		return;
	if (buf_append(b, &r, sizeof(r), limit) < 0 ||
	    buf_append(b, m->u.stanza.type.p, r.type_len, limit) < 0 ||
	    buf_append(b, m->u.stanza.to.p, r.to_len, limit) < 0 ||
	    buf_append(b, m->u.stanza.from.p, r.from_len, limit) < 0 ||
	    buf_append(b, m->u.stanza.id.p, r.id_len, limit) < 0) {
		b->len = b->off + before;   /* drop the partial record */
		log_debug("component: a lost stanza could not be bounced (tracking full)", "conn=%u",
			  c->idx);
	}
}

/* Forget the records of stanzas the socket has taken. */
static void owed_trim(struct conn *c)
{
	struct buf *b = &c->comp->owed;
	struct owed_rec r;

	while (buf_used(b) >= sizeof(r)) {
		memcpy(&r, buf_data(b), sizeof(r));
		if (r.end > c->tx_sent)
			break;
		buf_consume(b, rec_size(&r));
	}
}

/* The connection is gone: bounce what the socket never took. */
static void owed_bounce(struct conn *c)
{
	struct buf *b = &c->comp->owed;
	struct owed_rec r;
	unsigned n = 0;

	owed_trim(c);
	while (buf_used(b) >= sizeof(r)) {
		const uint8_t *p = buf_data(b) + sizeof(r);
		memcpy(&r, buf_data(b), sizeof(r));
		struct wire_str type = wire_s(p, r.type_len), to = wire_s(p + r.type_len, r.to_len);
		struct wire_str from = wire_s(p + r.type_len + r.to_len, r.from_len);
		struct wire_str id = wire_s(p + r.type_len + r.to_len + r.from_len, r.id_len);
		route_bounce(c->w, r.kind, type, to, from, id, "service-unavailable");
		buf_consume(b, rec_size(&r));
		n++;
	}
	if (n)
		log_info("component: stanzas not written before the stream ended were bounced",
			 "conn=%u name=%s count=%u", c->idx, comp_name(c), n);
}

/* ---- to the component ---------------------------------------------------- */

bool component_deliver(struct worker *w, size_t k, const struct wire_msg *m)
{
	static const struct xmltag_attr no_ns = { "xmlns", NULL };
	struct conn *c = w->components[k];
	const char *raw = (const char *)m->u.stanza.raw.p;
	size_t n = m->u.stanza.raw.len, len;

	if (!c || c->state != CS_SESSION)
		return false;
	/* The stanza takes the stream's namespace: a top-level declaration
	 * (jabber:client: WebSocket clients put one on every stanza) goes,
	 * and the component reads it as jabber:component:accept. */
	len = xmltag_rewrite(raw, n, &no_ns, 1, w->stamp, w->stamp_cap);
	if (len > w->stamp_cap) {
		char *nb = realloc(w->stamp, len + 1024);
		if (!nb)
			return false;
		w->stamp = nb;
		w->stamp_cap = len + 1024;
		len = xmltag_rewrite(raw, n, &no_ns, 1, w->stamp, w->stamp_cap);
	}
	if (len == 0) {
		log_warn("component: a stanza from the session server is not an element", "name=%s",
			 w->cfg->components[k].name);
		return false;
	}
	xmpp_out(c, w->stamp, len);
	if (c->state != CS_SESSION)
		return false;   /* the output's hard bound ended the stream: not queued */
	owed_add(c, m);
	conn_count_stanza(c, 1, m->u.stanza.kind & 3, len);
	return true;
}

/* ---- the stream ------------------------------------------------------------ */

static const char *comp_host(const struct config *cfg, const char *to, size_t n)
{
	for (size_t k = 0; k < cfg->ncomponents; k++)
		if (xep114_host_is(cfg->components[k].name, to, n))
			return cfg->components[k].name;
	return NULL;
}

static int comp_header(struct conn *c, const struct xs_header *h)
{
	const struct config *cfg = c->w->cfg;
	uint8_t rnd[SID_BYTES];
	char *name, *hdr;
	int n;

	if (c->comp) {
		/* XEP-0114 has no stream restarts (and the framer only sees a
		 * second header after a close). */
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	c->comp = calloc(1, sizeof(*c->comp));
	if (!c->comp) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	/* xmpp.c set c->domain to one of the names (comp_host). */
	while ((size_t)c->comp->k + 1 < cfg->ncomponents && cfg->components[c->comp->k].name != c->domain)
		c->comp->k++;
	if (crypto_random(rnd, sizeof(rnd)) < 0) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(c->comp->sid + 2 * i, 3, "%02x", rnd[i]);
	/* XEP-0114 §3's answer: from the component's name, with the id the
	 * handshake hashes; no version, so no features. */
	name = xmpp_esc_dup(c->domain, strlen(c->domain));
	n = name ? asprintf(&hdr, "<?xml version='1.0'?><stream:stream xmlns:stream='" NS_STREAMS
			    "' xmlns='" NS_COMPONENT "' from='%s' id='%s'>", name, c->comp->sid) : -1;
	free(name);
	if (n < 0) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	xmpp_out(c, hdr, (size_t)n);
	free(hdr);
	c->flags |= CF_HEADER_SENT;
	if (!xmpp_set_state(c, CS_NEGOTIATE)) {
		xmpp_abort(c);
		return STOP_DISCARD;
	}
	/* The handshake is the component's login: the client's deadline. */
	c->due = c->accepted + cfg->timeouts.auth;
	conn_timer(c, c->due);
	log_debug("component stream opened", "conn=%u name=%s peer=%s", c->idx, c->domain, c->peer);
	return GO_ON;
}

/* A top-level element in the stream's content namespace: unprefixed with no
 * declaration of its own (xmlstage parses in the jabber:client context),
 * or declared jabber:component:accept.  An explicit jabber:client is taken
 * too, as Prosody does: the bytes are the same stanza. */
static bool comp_ns(const struct xs_stanza *s)
{
	return xs_streq(&s->ns, NS_CLIENT) || xs_streq(&s->ns, NS_COMPONENT);
}

static int on_handshake(struct conn *c, const struct xs_stanza *s)
{
	struct worker *w = c->w;
	const struct config_component *cc;
	int k;

	if (!xs_streq(&s->local, "handshake") || !comp_ns(s)) {
		/* RFC 6120 §4.9.3.12: data before authentication. */
		xmpp_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	k = c->comp->k;
	cc = &w->cfg->components[k];
	switch (xep114_handshake(c->comp->sid, strlen(c->comp->sid), cc->secret, strlen(cc->secret),
				 s->text.p, s->text.len, s->children)) {
	case XEP114_HS_OK:
		break;
	case XEP114_HS_MALFORMED:
		log_info("component handshake malformed", "conn=%u name=%s peer=%s", c->idx, cc->name,
			 c->peer);
		xmpp_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	default:
		log_info("component handshake failed: wrong secret", "conn=%u name=%s peer=%s", c->idx,
			 cc->name, c->peer);
		xmpp_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	if (!claim((size_t)k)) {
		log_warn("component refused: already connected (first stream keeps the name)",
			 "conn=%u name=%s peer=%s", c->idx, cc->name, c->peer);
		xmpp_error(c, "conflict", "Component already connected");
		return STOP_DISCARD;
	}
	c->comp->registered = c->comp->announced = true;
	w->components[k] = c;
	c->flags |= CF_AUTHED;
	if (!xmpp_set_state(c, CS_SESSION)) {
		xmpp_abort(c);
		return STOP_DISCARD;
	}
	xmpp_outs(c, "<handshake/>");
	route_component_state(w, (size_t)k, true);
	c->last_rx = w->now;
	conn_timer(c, w->now + w->cfg->timeouts.idle);
	log_info("component connected", "conn=%u name=%s peer=%s worker=%d", c->idx, cc->name, c->peer,
		 w->id);
	return GO_ON;
}

/* A stanza error to the component for its stanza s, from the server (it
 * is the server that could not take the stanza). */
static void comp_stanza_error(struct conn *c, const struct xs_stanza *s, const char *etype,
			      const char *cond)
{
	const char *srv = c->w->cfg->domains[0].name;
	char *id, *to, *buf = NULL;
	int n = -1;

	if (xs_streq(&s->type, "error"))
		return;   /* never answer an error with an error */
	id = xmpp_esc_dup(s->id.p, s->id.len);
	to = xmpp_esc_dup(s->from.p, s->from.len);
	if (id && to)
		n = asprintf(&buf, "<%.*s type='error'%s%s%s from='%s' to='%s'><error type='%s'><%s xmlns='"
			     NS_STANZAS "'/></error></%.*s>", (int)s->local.len, s->local.p,
			     s->has_id ? " id='" : "", s->has_id ? id : "", s->has_id ? "'" : "", srv, to,
			     etype, cond, (int)s->local.len, s->local.p);
	if (n > 0)
		xmpp_out(c, buf, (size_t)n);
	if (n >= 0)
		free(buf);
	free(id);
	free(to);
}

/* The from of a component's stanza: in its domain, and not in a subdomain
 * that is another configured component's (x.irc.example is not
 * irc.example's when x.irc.example is configured too). */
static enum xep114_addr from_check(const struct conn *c, const struct xs_stanza *s)
{
	enum xep114_addr a = xep114_addr(comp_name(c), true, s->has_from, s->from.p, s->from.len);
	struct jid_view v;
	char dom[JID_PART_MAX];

	if (a != XEP114_ADDR_OK || jid_parse(s->from.p, s->from.len, &v) < 0)
		return a;
	jid_fold(v.domain, v.domain_len, dom);
	return route_component(c->w->cfg, dom, v.domain_len) == c->comp->k ? XEP114_ADDR_OK
									 : XEP114_ADDR_FOREIGN;
}

static int on_stanza(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;
	struct link *l;
	const char *name = comp_name(c);

	if (!route_kind(s) || !comp_ns(s)) {
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	/* XEP-0114 §3: "All stanzas sent to the server MUST possess a 'from'
	 * attribute and a 'to' attribute" and the from's domain is the
	 * component's.  RFC 6120 §4.9.3.14 and §4.9.3.9 name the errors. */
	switch (from_check(c, s)) {
	case XEP114_ADDR_OK:
		break;
	case XEP114_ADDR_FOREIGN:
		log_info("component sent a stanza from outside its domain", "conn=%u name=%s from=%.*s",
			 c->idx, name, (int)(s->from.len > 200 ? 200 : s->from.len), s->from.p);
		xmpp_error(c, "invalid-from", NULL);
		return STOP_DISCARD;
	default:
		xmpp_error(c, "improper-addressing", NULL);
		return STOP_DISCARD;
	}
	switch (xep114_addr(name, false, s->has_to, s->to.p, s->to.len)) {
	case XEP114_ADDR_OK:
		break;
	case XEP114_ADDR_MALFORMED:
		comp_stanza_error(c, s, "modify", "jid-malformed");
		return GO_ON;
	default:
		xmpp_error(c, "improper-addressing", NULL);
		return STOP_DISCARD;
	}
	/* RFC 6120 §8.2.3: an iq has an id and one of the four types. */
	if (xs_streq(&s->local, "iq") &&
	    (!s->has_id || !(xs_streq(&s->type, "get") || xs_streq(&s->type, "set") ||
			     xs_streq(&s->type, "result") || xs_streq(&s->type, "error")))) {
		comp_stanza_error(c, s, "modify", "bad-request");
		return GO_ON;
	}
	l = link_of_jid(w, (const uint8_t *)s->to.p, s->to.len);
	if (!l->up) {
		comp_stanza_error(c, s, "wait", "internal-server-error");
		return GO_ON;
	}
	if (route_to_sm(w, s, p, n) < 0) {
		comp_stanza_error(c, s, "wait", "resource-constraint");
		return GO_ON;
	}
	if (link_congested(l)) {
		/* The session server is not keeping up: read no further (resumed
		 * in link.c), as for clients. */
		conn_pause(c, PAUSE_LINK);
		return STOP_KEEP;
	}
	return GO_ON;
}

static int comp_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error")) {
		log_info("component sent a stream error", "conn=%u cond=%.*s", c->idx,
			 (int)s->child_local.len, s->child_local.p);
		xmpp_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (c->state == CS_NEGOTIATE)
		return on_handshake(c, s);
	return on_stanza(c, s, p, n);
}

static void comp_sent(struct conn *c)
{
	if (c->comp)
		owed_trim(c);
}

/* The stream is over: nothing more is delivered to it (route_from_sm()
 * bounces what arrives), and the name is free for a new stream. */
static void unregister(struct conn *c)
{
	struct worker *w = c->w;
	size_t k;

	if (!c->comp || !c->comp->registered)
		return;
	k = (size_t)c->comp->k;
	if (w->components[k] == c)
		w->components[k] = NULL;
	c->comp->registered = false;
	unclaim(k);
	log_info("component disconnected", "conn=%u name=%s peer=%s worker=%d", c->idx,
		 w->cfg->components[k].name, c->peer, w->id);
}

/*
 * The connection is gone: bounce what its socket never took, then withdraw
 * the route (the bounces, from the component's domain, arrive while the
 * route is still up on this link).  No DOWN when a newer stream for the
 * name registered on this worker meanwhile (its UP went on this same link);
 * on another worker, its UP is on another link, which this DOWN leaves
 * alone (docs/protocol.md, DOMAIN).
 */
static void withdraw(struct conn *c)
{
	struct worker *w = c->w;
	size_t k = (size_t)c->comp->k;

	owed_bounce(c);
	if (c->comp->announced && !w->components[k])
		route_component_state(w, k, false);
	c->comp->announced = false;
}

static void comp_ended(struct conn *c, int reason)
{
	unregister(c);
}

static void comp_free(struct conn *c)
{
	if (!c->comp)
		return;
	unregister(c);
	withdraw(c);
	buf_reset(&c->comp->owed);
	free(c->comp);
	c->comp = NULL;
}

const struct role_ops role_component = {
	.name = "component",
	.ns = NS_COMPONENT,
	.header = comp_header,
	.element = comp_element,
	.sent = comp_sent,
	.ended = comp_ended,
	.free = comp_free,
	.served = comp_host,
	.no_version = true,
	.keepalive = true,
};
