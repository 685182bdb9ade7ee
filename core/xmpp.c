/*
 * xmpp — the stream negotiation shared by roles; see xmpp.h.
 *
 * Every transition of conn.state happens here, in xmpp_set_state(), against
 * the table of legal transitions below.
 */
#include "core/xmpp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/smacks.h"
#include "core/worker.h"
#include "core/xprt.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

/*
 * conn.in may hold one item plus IN_SLACK: input pipelined behind it.  While
 * input waits for the backend (reads stay armed: the wait is short),
 * IN_SLACK_HELD more; past these bounds the client is flooding:
 * <policy-violation/>.
 *
 * While reads are paused (rate limit, backpressure) the client is not at
 * fault for what still arrives: the cancel only takes effect at the next
 * submission, and the receives the kernel completed before it — on
 * loopback, up to the whole provided-buffer ring in one io_uring_enter —
 * must be taken.  So a paused connection may hold one ring's worth more;
 * nothing arrives after that until it is resumed, and it is resumed only
 * once conn.in has been handled.
 */
#define IN_SLACK (128u * 1024)
#define IN_SLACK_HELD (1u << 20)

static const char *const state_names[CS_COUNT] = {
	"transport", "header", "starttls", "negotiate", "sasl", "session", "relay", "closing"
};

const char *conn_state_str(int s)
{
	return s >= 0 && s < CS_COUNT ? state_names[s] : "?";
}

#define B(s) (1u << (s))
/* Legal transitions: from -> set of targets.  Closing is reachable from
 * everywhere and leads nowhere. */
static const uint32_t legal[CS_COUNT] = {
	[CS_TRANSPORT] = B(CS_HEADER) | B(CS_CLOSING),
	[CS_HEADER]    = B(CS_NEGOTIATE) | B(CS_RELAY) | B(CS_CLOSING),
	[CS_STARTTLS]  = B(CS_HEADER) | B(CS_CLOSING),
	[CS_NEGOTIATE] = B(CS_STARTTLS) | B(CS_SASL) | B(CS_HEADER) | B(CS_NEGOTIATE) | B(CS_SESSION) |
			 B(CS_RELAY) | B(CS_CLOSING),
	[CS_SASL]      = B(CS_SASL) | B(CS_NEGOTIATE) | B(CS_HEADER) | B(CS_CLOSING),
	[CS_SESSION]   = B(CS_CLOSING),
	[CS_RELAY]     = B(CS_HEADER) | B(CS_CLOSING),
	[CS_CLOSING]   = 0,
};

const char *const xmpp_conditions[WSTAT_CONDS] = {
	"bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
	"host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
	"invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed", "policy-violation",
	"remote-connection-failed", "reset", "resource-constraint", "restricted-xml", "see-other-host",
	"system-shutdown", "undefined-condition", "unsupported-encoding", "unsupported-feature",
	"unsupported-stanza-type", "unsupported-version",
};

int xmpp_condition_index(const char *cond)
{
	for (int i = 0; i < WSTAT_CONDS; i++)
		if (!strcmp(xmpp_conditions[i], cond))
			return i;
	return 20;   /* undefined-condition */
}

bool xmpp_set_state(struct conn *c, int s)
{
	if (s < 0 || s >= CS_COUNT || !(legal[c->state] & B(s))) {
		log_error("illegal stream state transition", "conn=%u role=%s from=%s to=%s", c->idx,
			  c->role->name, conn_state_str(c->state), conn_state_str(s));
		return false;
	}
	log_debug("state", "conn=%u from=%s to=%s", c->idx, conn_state_str(c->state), conn_state_str(s));
	conn_set_state_counted(c, s);
	return true;
}

/* Closing is always legal: used by every path that ends a connection. */
static void to_closing(struct conn *c)
{
	if (c->state != CS_CLOSING)
		xmpp_set_state(c, CS_CLOSING);
}

const char *xmpp_domain(const struct conn *c)
{
	return c->domain ? c->domain : c->w->cfg->domains[0].name;
}

/* ---- output ---------------------------------------------------------- */

void xmpp_out(struct conn *c, const void *data, size_t len)
{
	if (!(c->flags & (CF_PEER_GONE | CF_CLOSED)))
		xprt_write(c, data, len);
	/* XEP-0198: a stanza the client may not get is kept for a resumption. */
	if (c->sess && c->sess->smk)
		smacks_out(c, data, len);
}

void xmpp_outs(struct conn *c, const char *s)
{
	xmpp_out(c, s, strlen(s));
}

void xmpp_open(struct conn *c, const char *attrs)
{
	char hdr[2048];

	if (c->flags & CF_HEADER_SENT)
		return;
	if (c->flags & CF_WS)
		snprintf(hdr, sizeof(hdr), "<open xmlns='" NS_FRAMING "' %s version='1.0' xml:lang='en'/>", attrs);
	else
		snprintf(hdr, sizeof(hdr), "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='"
			 NS_STREAMS "' %s version='1.0' xml:lang='en'>", c->role->ns, attrs);
	xmpp_outs(c, hdr);
	c->flags |= CF_HEADER_SENT;
}

void xmpp_answer(struct conn *c, const char *id)
{
	char attrs[320], fresh[20];
	char *eid = NULL;
	uint8_t rnd[8];

	if (!id) {
		crypto_random(rnd, sizeof(rnd));
		snprintf(fresh, sizeof(fresh), "%02x%02x%02x%02x%02x%02x%02x%02x",
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		id = fresh;
	} else if (!(eid = xmpp_esc_dup(id, strnlen(id, 200)))) {
		xmpp_abort(c);
		return;
	}
	snprintf(attrs, sizeof(attrs), "id='%s' from='%s'", eid ? eid : id, xmpp_domain(c));
	free(eid);
	xmpp_open(c, attrs);
}

/* The header a role sends when it must say something before a stream
 * error and has not answered yet. */
static void open_for_error(struct conn *c)
{
	char attrs[256];

	if (c->flags & CF_HEADER_SENT)
		return;
	if (c->flags & CF_OUTBOUND) {
		snprintf(attrs, sizeof(attrs), "to='%s'", xmpp_domain(c));
		xmpp_open(c, attrs);
	} else {
		xmpp_answer(c, NULL);
	}
}

void xmpp_end(struct conn *c, int reason)
{
	if (c->state == CS_CLOSING)
		return;
	to_closing(c);
	if (c->flags & CF_HEADER_SENT)
		xmpp_outs(c, (c->flags & CF_WS) ? "<close xmlns='" NS_FRAMING "'/>" : "</stream:stream>");
	if (!(c->flags & CF_PEER_GONE))
		xprt_shutdown(c);
	if (c->role->ended)
		c->role->ended(c, reason);
	conn_release(c);
}

/* Can XML reach the peer?  Not before the transport is ready. */
static bool xml_channel(const struct conn *c)
{
	return c->state != CS_TRANSPORT && c->state != CS_STARTTLS;
}

void xmpp_abort(struct conn *c)
{
	if (c->state == CS_CLOSING)
		return;
	to_closing(c);
	if (c->role->ended)
		c->role->ended(c, WIRE_CLOSE_ERROR);
	conn_release(c);
}

/* A stream error: cond's element holding data (NULL: empty), then app (an
 * application-specific condition element, or NULL), then the text. */
static void stream_error_full(struct conn *c, const char *cond, const char *data, const char *app,
			      const char *text)
{
	char buf[1600];
	int n;

	if (c->state == CS_CLOSING)
		return;
	log_info("stream error", "conn=%u peer=%s cond=%s state=%s role=%s", c->idx, c->peer, cond,
		 conn_state_str(c->state), c->role->name);
	STAT_INC(c->w->st.stream_errors[xmpp_condition_index(cond)]);
	if (!xml_channel(c)) {
		xmpp_abort(c);
		return;
	}
	open_for_error(c);
	n = snprintf(buf, sizeof(buf), "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'", cond);
	if (data)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ">%s</%s>", data, cond);
	else
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "/>");
	if (app && n < (int)sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", app);
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (text)
		snprintf(buf + n, sizeof(buf) - (size_t)n, "<text xmlns='" NS_STREAM_ERRORS "'>%s</text>"
			 "</stream:error>", text);
	else
		snprintf(buf + n, sizeof(buf) - (size_t)n, "</stream:error>");
	xmpp_outs(c, buf);
	xmpp_end(c, WIRE_CLOSE_ERROR);
}

static void stream_error(struct conn *c, const char *cond, const char *data, const char *text)
{
	stream_error_full(c, cond, data, NULL, text);
}

void xmpp_error(struct conn *c, const char *cond, const char *text)
{
	stream_error(c, cond, NULL, text);
}

void xmpp_error_app(struct conn *c, const char *cond, const char *app)
{
	stream_error_full(c, cond, NULL, app, NULL);
}

static bool attr_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

const char *xmpp_attr(const char *p, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name), i = 1;

	while (i < n && !attr_space(p[i]) && p[i] != '>' && p[i] != '/')
		i++;   /* the element's name */
	for (;;) {
		size_t a, al;
		char q;
		const char *v, *e;

		while (i < n && attr_space(p[i]))
			i++;
		if (i >= n || p[i] == '>' || p[i] == '/')
			return NULL;
		a = i;
		while (i < n && p[i] != '=' && !attr_space(p[i]))
			i++;
		al = i - a;
		while (i < n && attr_space(p[i]))
			i++;
		if (i >= n || p[i] != '=')
			return NULL;
		i++;
		while (i < n && attr_space(p[i]))
			i++;
		if (i >= n || (p[i] != '\'' && p[i] != '"'))
			return NULL;
		q = p[i++];
		v = p + i;
		e = memchr(v, q, n - i);
		if (!e)
			return NULL;
		i = (size_t)(e - p) + 1;
		if (al == nl && memcmp(p + a, name, nl) == 0) {
			if (memchr(v, '&', (size_t)(e - v)))
				return NULL;
			*vlen = (size_t)(e - v);
			return v;
		}
	}
}

void xmpp_redirect(struct conn *c, const char *host)
{
	stream_error(c, "see-other-host", host, NULL);
}

void xmpp_goodbye(struct conn *c)
{
	const struct config *cfg = c->w->cfg;

	if ((c->flags & CF_WS) && cfg->drain.redirect_uri && (c->flags & CF_HEADER_SENT) &&
	    c->state != CS_CLOSING) {
		/* RFC 7395 §3.6.1: the WebSocket way to send a client elsewhere. */
		char buf[1200];
		snprintf(buf, sizeof(buf), "<close xmlns='" NS_FRAMING "' see-other-uri='%s'/>",
			 cfg->drain.redirect_uri);
		to_closing(c);
		xmpp_outs(c, buf);
		xprt_shutdown(c);
		if (c->role->ended)
			c->role->ended(c, WIRE_CLOSE_ERROR);
		conn_release(c);
	} else if (!(c->flags & CF_WS) && cfg->drain.redirect) {
		xmpp_redirect(c, cfg->drain.redirect);
	} else {
		stream_error(c, "system-shutdown", NULL, NULL);
	}
}

int xmpp_starttls(struct conn *c, bool pushed)
{
	static const char proceed[] = "<proceed xmlns='" NS_TLS "'/>";

	/* RFC 6120 §5.4.2.2: failure, then the stream is closed. */
	if (!pushed) {
		xmpp_outs(c, "<failure xmlns='" NS_TLS "'/>");
		xmpp_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	/* <proceed/> goes out in the clear, under the new TLS layer. */
	xprt_down(c, c->nxp - 1, proceed, sizeof(proceed) - 1);
	c->flags &= ~CF_HEADER_SENT;
	if (!xmpp_set_state(c, CS_STARTTLS)) {
		xmpp_abort(c);
		return STOP_DISCARD;
	}
	c->due = c->w->now + c->w->cfg->timeouts.handshake;
	conn_timer(c, c->due);
	/* Anything pipelined after <starttls/> is discarded (command injection). */
	return STOP_DISCARD;
}

char *xmpp_esc_dup(const char *s, size_t n)
{
	size_t need = xml_escape(s, n, NULL, 0);
	char *e = malloc(need + 1);

	if (e) {
		xml_escape(s, n, e, need);
		e[need] = 0;
	}
	return e;
}

void xmpp_stanza_error(struct conn *c, const struct xs_stanza *s, const char *etype, const char *cond,
		       const char *to)
{
	char *id, *eto, *buf;
	int n;

	if (xs_streq(&s->type, "error"))
		return; /* never answer an error with an error */
	id = xmpp_esc_dup(s->id.p, s->id.len);
	eto = xmpp_esc_dup(to ? to : "", to ? strlen(to) : 0);
	n = (id && eto) ? asprintf(&buf, "<%.*s type='error'%s%s%s%s%s%s><error type='%s'><%s xmlns='"
				   NS_STANZAS "'/></error></%.*s>", (int)s->local.len, s->local.p,
				   s->has_id ? " id='" : "", s->has_id ? id : "", s->has_id ? "'" : "",
				   to ? " to='" : "", eto, to ? "'" : "", etype, cond,
				   (int)s->local.len, s->local.p) : -1;
	if (n > 0) {
		xmpp_out(c, buf, (size_t)n);
		free(buf);
	}
	free(id);
	free(eto);
}

void xmpp_iq_result(struct conn *c, const struct xs_stanza *s, const char *payload)
{
	char *id = xmpp_esc_dup(s->id.p, s->id.len), *buf;
	int n = id ? asprintf(&buf, "<iq type='result' id='%s'>%s</iq>", id, payload ? payload : "") : -1;

	if (n > 0) {
		xmpp_out(c, buf, (size_t)n);
		free(buf);
	}
	free(id);
}

/* ---- the stream header (shared checks) --------------------------------- */

/* RFC 6120 §4.7.5: version is "major.minor", both non-negative integers.
 * Returns the major number, or -1 when the value is not of that form. */
static int version_major(const struct xs_str *v)
{
	size_t i = 0;
	int major = 0, minor_digits = 0;

	for (; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++)
		major = major > 100000 ? major : major * 10 + (v->p[i] - '0');
	if (i == 0 || i >= v->len || v->p[i] != '.')
		return -1;
	for (i++; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++)
		minor_digits++;
	return minor_digits && i == v->len ? major : -1;
}

/* RFC 6120 §11.6: the stream is UTF-8; an XML declaration that names any
 * other encoding gets <unsupported-encoding/>.  p[0..n) is the header item. */
static bool encoding_ok(const uint8_t *p, size_t n)
{
	const char *s = (const char *)p, *end = s + n, *decl_end, *e;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	if (end - s < 5 || memcmp(s, "<?xml", 5) != 0)
		return true;
	decl_end = memmem(s, (size_t)(end - s), "?>", 2);
	if (!decl_end)
		return true;
	e = memmem(s, (size_t)(decl_end - s), "encoding", 8);
	if (!e)
		return true;
	e += 8;
	while (e < decl_end && (*e == ' ' || *e == '=' || *e == '\t' || *e == '\r' || *e == '\n'))
		e++;
	if (e >= decl_end || (*e != '\'' && *e != '"'))
		return false;
	return decl_end - e > 6 && strncasecmp(e + 1, "UTF-8", 5) == 0 && e[6] == *e;
}

const char *xmpp_served_domain(const struct config *cfg, const char *s, size_t n, bool components)
{
	char canon[JID_PART_MAX + 1];

	if (n && s[n - 1] == '.')
		n--;
	if (!n || n > JID_PART_MAX)
		return NULL;
	jid_fold(s, n, canon);
	for (size_t i = 0; i < cfg->ndomains; i++)
		if (strlen(cfg->domains[i].name) == n && memcmp(cfg->domains[i].name, canon, n) == 0)
			return cfg->domains[i].name;
	for (size_t i = 0; components && i < cfg->ncomponents; i++)
		if (strlen(cfg->components[i].name) == n && memcmp(cfg->components[i].name, canon, n) == 0)
			return cfg->components[i].name;
	return NULL;
}

static int on_header(struct conn *c, const uint8_t *p, size_t n)
{
	struct xs_header h;
	const char *dom = NULL;
	int r = xmlstage_header(c->w->xs, (const char *)p, n, &h);

	if (r != XMLSTAGE_OK) {
		xmpp_error(c, xmlstage_error_str(r), NULL);
		return STOP_DISCARD;
	}
	/* An inbound stream names the domain it is for; our answer (and any
	 * error) comes from that domain. */
	if (!(c->flags & CF_OUTBOUND)) {
		dom = !h.has_to ? NULL : c->role->served ? c->role->served(c->w->cfg, h.to.p, h.to.len)
		      : xmpp_served_domain(c->w->cfg, h.to.p, h.to.len, false);
		if (dom && !c->domain)
			c->domain = dom;
	}
	/* Per RFC 6120 §4.9.1.2 our header goes out before any stream error;
	 * a restarted stream gets a new one. */
	c->flags &= ~CF_HEADER_SENT;
	if (!xs_streq(&h.local, "stream") || !xs_streq(&h.name_ns, NS_STREAMS) ||
	    !xs_streq(&h.default_ns, c->role->ns)) {
		xmpp_error(c, "invalid-namespace", NULL);
		return STOP_DISCARD;
	}
	if (!(c->flags & CF_OUTBOUND) && (!h.has_to || !dom || (c->domain && dom != c->domain))) {
		xmpp_error(c, "host-unknown", NULL);
		return STOP_DISCARD;
	}
	if (!encoding_ok(p, n)) {
		xmpp_error(c, "unsupported-encoding", NULL);
		return STOP_DISCARD;
	}
	/* A higher major version is answered with ours (1.0); lower or malformed
	 * ones cannot be served. */
	if (!c->role->no_version && (!h.has_version || version_major(&h.version) < 1)) {
		xmpp_error(c, "unsupported-version", NULL);
		return STOP_DISCARD;
	}
	/* Stanzas are forwarded byte for byte into other streams, which declare
	 * only the defaults: so stanzas are parsed in that context (xmlstage),
	 * and the close tag must match the prefix this header used. */
	free(c->hdr_decls);
	c->hdr_decls = NULL;
	if (!xs_streq(&h.ns_decls, XMLSTAGE_C2S_DECLS) && !(c->hdr_decls = strndup(h.ns_decls.p, h.ns_decls.len))) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	if (!c->close_tag && !xs_streq(&h.prefix, "stream")) {
		if (asprintf(&c->close_tag, "</%.*s:stream", (int)h.prefix.len, h.prefix.p) < 0) {
			c->close_tag = NULL;
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
	}
	return c->role->header(c, &h);
}

/* ---- framing and the input loop ---------------------------------------- */

static int on_stanza(struct conn *c, const uint8_t *p, size_t n)
{
	struct xs_stanza s;
	const char *own = c->role->own_prefix;
	size_t dl = c->hdr_decls ? strlen(c->hdr_decls) : 0;
	int r = own && n > strlen(own) && memcmp(p, own, strlen(own)) == 0
		? xmlstage_stanza(c->w->xs, c->hdr_decls, dl, (const char *)p, n, &s)
		: xmlstage_stanza_fwd(c->w->xs, c->hdr_decls, dl, (const char *)p, n, &s);

	if (r != XMLSTAGE_OK) {
		xmpp_error(c, xmlstage_error_str(r), NULL);
		return STOP_DISCARD;
	}
	return c->role->element(c, &s, p, n);
}

static int on_item(struct conn *c, int ev, const uint8_t *p, size_t n)
{
	switch (ev) {
	case FRAMER_SPACE:
		c->last_rx = c->w->now;   /* a keepalive: the session is alive */
		return GO_ON;
	case FRAMER_HEADER:
		return on_header(c, p, n);
	case FRAMER_CLOSE: {
		const char *want = c->close_tag ? c->close_tag : "</stream:stream";
		size_t wl = strlen(want);
		if (n <= wl || memcmp(p, want, wl) != 0 ||
		    !(p[wl] == '>' || p[wl] == ' ' || p[wl] == '\t' || p[wl] == '\r' || p[wl] == '\n')) {
			xmpp_error(c, "not-well-formed", NULL);
			return STOP_DISCARD;
		}
		xmpp_end(c, WIRE_CLOSE_NORMAL);
		return STOP_DISCARD;
	}
	case FRAMER_STANZA: {
		/* Only complete items count as activity: a slowloris that trickles
		 * one stanza forever still reaches the idle timeout.  Our own
		 * outbound streams are not rate limited: their pace is the
		 * client's, paced at the client. */
		bool ok = (c->flags & CF_OUTBOUND) || conn_rate_ok(c, 0, 1);
		int r;
		c->last_rx = c->w->now;
		conn_count_stanza(c, 0, stanza_kind_of(p, n), n);
		r = on_stanza(c, p, n);
		return r == GO_ON && !ok ? STOP_KEEP : r;
	}
	}
	return GO_ON;
}

/* Does the pending item open with the stream element's own name? */
static bool is_new_header(const struct conn *c, const uint8_t *p, size_t n)
{
	const char *want = c->close_tag ? c->close_tag + 2 : "stream:stream";  /* skip "</" */
	size_t wl = strlen(want);

	return n > wl + 1 && p[0] == '<' && memcmp(p + 1, want, wl) == 0 &&
	       (p[wl + 1] == ' ' || p[wl + 1] == '>' || p[wl + 1] == '\t' || p[wl + 1] == '\r' ||
		p[wl + 1] == '\n' || p[wl + 1] == '/');
}

/* Frame and handle items in buf[0..len).  Returns the bytes consumed; *stop
 * says whether the rest must be kept (STOP_KEEP) or dropped (STOP_DISCARD). */
static size_t frame_items(struct conn *c, const uint8_t *buf, size_t len, int *stop)
{
	size_t pos = 0, end;

	*stop = GO_ON;
	if (c->paused || (c->flags & CF_WAIT_SM)) {
		*stop = STOP_KEEP;
		return 0;
	}
	while (pos < len && c->state != CS_CLOSING) {
		int ev = framer_scan(&c->fr, &c->w->lim, buf + pos, len - pos, &end);
		if (ev == FRAMER_MORE) {
			if (c->fr.depth && is_new_header(c, buf + pos, len - pos)) {
				/* A stream header where a stanza belongs: its start tag
				 * says so; waiting for an end that never comes would only
				 * delay the error to the idle timeout. */
				xmpp_error(c, "unsupported-stanza-type", NULL);
				*stop = STOP_DISCARD;
				return len;
			}
			break;
		}
		if (ev == FRAMER_ERROR) {
			xmpp_error(c, framer_error_str(c->fr.err), NULL);
			*stop = STOP_DISCARD;
			return len;
		}
		int r = on_item(c, ev, buf + pos, end);
		pos += end;
		if (r != GO_ON) {
			*stop = r;
			return r == STOP_DISCARD ? len : pos;
		}
		if (c->paused || (c->flags & CF_WAIT_SM)) {
			*stop = STOP_KEEP;
			return pos;
		}
	}
	if (c->state == CS_CLOSING)
		*stop = STOP_DISCARD;
	return *stop == STOP_DISCARD ? len : pos;
}

void xmpp_input(struct conn *c, const uint8_t *data, size_t len)
{
	int stop;
	size_t used;
	struct worker *w = c->w;
	size_t limit = w->cfg->limits.max_stanza_bytes + IN_SLACK +
		       (c->paused ? (size_t)w->nbufs * w->bufsize : (c->flags & CF_WAIT_SM) ? IN_SLACK_HELD : 0);

	if (c->state == CS_CLOSING)
		return;
	if (!buf_used(&c->in) && !(c->flags & CF_WAIT_SM) && !c->paused) {
		used = frame_items(c, data, len, &stop);
		if (stop == STOP_DISCARD || used == len)
			return;
		data += used;
		len -= used;
		if (buf_append(&c->in, data, len, limit) < 0)
			xmpp_error(c, "policy-violation", NULL);
		return;
	}
	if (buf_append(&c->in, data, len, limit) < 0) {
		log_info("input over its bound", "conn=%u peer=%s held=%u paused=%u wait_sm=%d", c->idx, c->peer,
			 buf_used(&c->in), c->paused, !!(c->flags & CF_WAIT_SM));
		xmpp_error(c, "policy-violation", NULL);
		return;
	}
	xmpp_resume(c);
}

void xmpp_resume(struct conn *c)
{
	int stop;
	size_t used;

	if (!buf_used(&c->in) || c->state == CS_CLOSING || c->paused || (c->flags & CF_WAIT_SM))
		return;
	used = frame_items(c, buf_data(&c->in), buf_used(&c->in), &stop);
	if (stop == STOP_DISCARD)
		buf_reset(&c->in);
	else
		buf_consume(&c->in, used);
}

void xmpp_wait_backend(struct conn *c, uint32_t seconds)
{
	struct worker *w = c->w;

	c->flags |= CF_WAIT_SM;
	c->sm_due = w->now + seconds;
	if (!c->deadline || c->deadline > c->sm_due)
		conn_timer(c, c->sm_due);
}

void xmpp_restart(struct conn *c)
{
	framer_reset(&c->fr);
	c->flags &= ~CF_HEADER_SENT;
	xmpp_set_state(c, CS_HEADER);
}

void xmpp_transport_ready(struct conn *c)
{
	if (c->state != CS_TRANSPORT && c->state != CS_STARTTLS)
		return;
	framer_reset(&c->fr);
	c->flags &= ~CF_HEADER_SENT;
	xmpp_set_state(c, CS_HEADER);
	if (!(c->flags & CF_OUTBOUND)) {
		c->due = c->accepted + c->w->cfg->timeouts.auth;
		conn_timer(c, c->due);
	}
}

/* ---- the peer goes, time passes ---------------------------------------- */

void xmpp_eof(struct conn *c)
{
	if (c->state == CS_CLOSING)
		return;
	log_debug("connection lost", "conn=%u role=%s state=%s", c->idx, c->role->name, conn_state_str(c->state));
	/* The peer may have only half-closed: our closing tag and the
	 * transport's goodbye still go out (RFC 6120 §4.4). */
	if (xml_channel(c)) {
		xmpp_end(c, WIRE_CLOSE_DISCONNECT);
	} else {
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
	}
}

/*
 * The connection's timer fired.  It may have been set for any of its
 * deadlines: the state's (handshake, auth: c->due), the idle one (sessions:
 * last complete item + idle), a slow reader's, or the role's own (a backend
 * answer).  Act on the one that is due, or re-arm for the earliest ahead.
 */
void xmpp_timeout(struct conn *c)
{
	struct worker *w = c->w;
	const struct config *cfg = w->cfg;
	uint64_t next;

	if ((c->flags & CF_SLOW) && w->now >= c->slow_since + cfg->timeouts.slow_reader) {
		log_info("slow reader: output queue stayed full", "conn=%u peer=%s role=%s", c->idx, c->peer,
			 c->role->name);
		c->flags |= CF_PEER_GONE;   /* it is not reading: the error could not reach it */
		STAT_INC(w->st.slow_closes);
		xmpp_error(c, "resource-constraint", NULL);
		return;
	}
	if ((c->flags & CF_WAIT_SM) && w->now >= c->sm_due && c->role->timeout) {
		c->role->timeout(c);
		if (c->state == CS_CLOSING)
			return;
	}
	next = (c->state == CS_SESSION || (c->state == CS_RELAY && (c->flags & CF_AUTHED)))
		       ? c->last_rx + (c->role->idle ? c->role->idle(c) : cfg->timeouts.idle) : c->due;
	if (next && w->now >= next && c->state == CS_SESSION && c->role->keepalive) {
		/* A quiet peer that may stay quiet (a component): say something
		 * instead.  A dead one is found when TCP gives up on the bytes. */
		xmpp_outs(c, " ");
		c->last_rx = w->now;
		next = w->now + cfg->timeouts.idle;
	}
	if (next && w->now >= next) {
		if (c->role->idle && (c->flags & CF_AUTHED)) {
			/* Server-to-server streams come and go with traffic: an idle
			 * one ends quietly (RFC 6120 §4.4), to be reopened on demand. */
			log_info("idle stream closed", "conn=%u role=%s peer=%s", c->idx, c->role->name, c->peer);
			xmpp_end(c, WIRE_CLOSE_NORMAL);
			return;
		}
		xmpp_error(c, "connection-timeout", NULL);
		return;
	}
	if ((c->flags & CF_WAIT_SM) && (!next || c->sm_due < next))
		next = c->sm_due;
	if ((c->flags & CF_SLOW) && (!next || c->slow_since + cfg->timeouts.slow_reader < next))
		next = c->slow_since + cfg->timeouts.slow_reader;
	conn_timer(c, next);
}

void xmpp_free(struct conn *c)
{
	if (c->role && c->role->free)
		c->role->free(c);
	xprt_free(c);
	free(c->close_tag);
	free(c->hdr_decls);
	c->close_tag = NULL;
	c->hdr_decls = NULL;
}
