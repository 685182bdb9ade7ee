/*
 * stream — XMPP on one client connection (RFC 6120): TLS glue, stream
 * headers and features, STARTTLS, SASL, resource binding, stanza checks,
 * `from` stamping and forwarding to the session server; and the frames the
 * session server sends back.
 *
 * Input path: wire bytes -> (wolfSSL) -> plaintext -> framer (boundaries,
 * limits, restricted XML) -> xmlstage (expat: well-formedness, routing
 * facts) -> the handler for the connection's state.  Plaintext that cannot
 * be handled yet (an incomplete item, or the session server has not answered
 * a credential or bind request) waits in conn.in, in order: clients pipeline.
 *
 * Every transition of conn.state happens in this file through set_state().
 */
#include "core/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sasl.h"
#include "parser/jid.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_CLIENT "jabber:client"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"

/*
 * conn.in may hold one item plus IN_SLACK: input pipelined behind it.  While
 * input waits for the session server (reads stay armed: the wait is short),
 * IN_SLACK_HELD more; past these bounds the client is flooding:
 * <policy-violation/>.
 *
 * While reads are paused (rate limit, session-server backpressure) the
 * client is not at fault for what still arrives: the cancel only takes
 * effect at the next submission, and the receives the kernel completed
 * before it — on loopback, up to the whole provided-buffer ring in one
 * io_uring_enter — must be taken.  So a paused connection may hold one
 * ring's worth more; nothing arrives after that until it is resumed, and it
 * is resumed only once conn.in has been handled.
 */
#define IN_SLACK (128u * 1024)
#define IN_SLACK_HELD (1u << 20)

/* TLS handshakes in progress, process-wide (limits.max_tls_handshakes): a
 * handshake costs ~60 KB and real CPU, so a flood of ClientHellos is capped. */
static _Atomic uint32_t handshakes;

static bool hs_acquire(struct conn *c)
{
	if (__atomic_add_fetch(&handshakes, 1, __ATOMIC_RELAXED) > c->w->cfg->limits.max_tls_handshakes) {
		__atomic_sub_fetch(&handshakes, 1, __ATOMIC_RELAXED);
		log_warn("TLS handshake refused: limits.max_tls_handshakes in progress", "conn=%u peer=%s",
			 c->idx, c->peer);
		return false;
	}
	c->flags |= CF_HS_COUNTED;
	return true;
}

static void hs_release(struct conn *c)
{
	if (c->flags & CF_HS_COUNTED) {
		c->flags &= ~CF_HS_COUNTED;
		__atomic_sub_fetch(&handshakes, 1, __ATOMIC_RELAXED);
	}
}

/* What an item handler tells the input loop. */
enum { GO_ON = 0, STOP_KEEP, STOP_DISCARD };

static void set_state(struct conn *c, int s)
{
	log_debug("state", "conn=%u from=%s to=%s", c->idx, conn_state_str(c->state), conn_state_str(s));
	c->state = (uint8_t)s;
}

static bool streq(const struct xs_str *s, const char *lit)
{
	return s->len == strlen(lit) && memcmp(s->p, lit, s->len) == 0;
}

/* ---- output ---------------------------------------------------------- */

/* Queue XMPP plaintext: encrypted at flush time when TLS is on, so several
 * stanzas written in one loop iteration leave as one TLS record. */
static void out(struct conn *c, const void *data, size_t len)
{
	if (c->tls) {
		if (c->flags & (CF_PEER_GONE | CF_CLOSED))
			return;
		if (buf_append(&c->pt, data, len, 4u << 20) < 0) {
			c->flags |= CF_PEER_GONE;
			conn_release(c);
			return;
		}
		conn_flush_later(c);
	} else {
		conn_send(c, data, len);
	}
}

static void outs(struct conn *c, const char *s)
{
	out(c, s, strlen(s));
}

static int tls_out(void *owner, const uint8_t *data, size_t len)
{
	conn_send(owner, data, len);
	return 0;
}

void stream_flush(struct conn *c)
{
	if (!c->tls || !(c->flags & CF_TLS) || !buf_used(&c->pt))
		return;
	if (!(c->flags & CF_PEER_GONE) && tls_write(c->tls, buf_data(&c->pt), buf_used(&c->pt)) < 0) {
		c->flags |= CF_PEER_GONE;
		conn_release(c);
	}
	buf_reset(&c->pt);
}

static const char *our_domain(struct conn *c)
{
	return c->domain ? c->domain : c->w->cfg->domains[0].name;
}

static void send_header(struct conn *c)
{
	char hdr[512];
	uint8_t rnd[8];

	if (c->flags & CF_HEADER_SENT)
		return;
	crypto_random(rnd, sizeof(rnd));
	snprintf(c->stream_id, sizeof(c->stream_id), "%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(hdr, sizeof(hdr),
		 "<?xml version='1.0'?><stream:stream xmlns='" NS_CLIENT "' xmlns:stream='" NS_STREAMS
		 "' id='%s' from='%s' version='1.0' xml:lang='en'>", c->stream_id, our_domain(c));
	outs(c, hdr);
	c->flags |= CF_HEADER_SENT;
}

static void sm_close(struct conn *c, int reason)
{
	if (c->flags & CF_SM_OPEN) {
		struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = conn_sid(c) };
		m.u.close.reason = (uint8_t)reason;
		link_send(c->w, &m);
		c->flags &= ~CF_SM_OPEN;
	}
}

/* Close our side of the stream: </stream:stream>, close_notify, socket. */
static void stream_end(struct conn *c, int reason)
{
	if (c->state == CS_CLOSING)
		return;
	sm_close(c, reason);
	if (c->flags & CF_HEADER_SENT)
		outs(c, "</stream:stream>");
	if (c->tls && (c->flags & CF_TLS) && !(c->flags & CF_PEER_GONE)) {
		stream_flush(c);
		tls_close_notify(c->tls);
	}
	set_state(c, CS_CLOSING);
	conn_release(c);
}

/* RFC 6120 §4.9: a stream error is unrecoverable and closes the stream. */
static void stream_error(struct conn *c, const char *cond, const char *text)
{
	char buf[512];

	if (c->state == CS_CLOSING)
		return;
	log_info("stream error", "conn=%u peer=%s cond=%s state=%s jid=%s", c->idx, c->peer, cond,
		 conn_state_str(c->state), c->jid ? c->jid : "-");
	if (!(c->flags & CF_TLS) && (c->tls || (c->flags & CF_DIRECT_TLS))) {
		/* No XML channel yet (TLS handshake unfinished): just close. */
		sm_close(c, WIRE_CLOSE_ERROR);
		set_state(c, CS_CLOSING);
		c->flags |= CF_PEER_GONE;
		conn_release(c);
		return;
	}
	send_header(c);
	if (text)
		snprintf(buf, sizeof(buf), "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/><text xmlns='"
			 NS_STREAM_ERRORS "'>%s</text></stream:error>", cond, text);
	else
		snprintf(buf, sizeof(buf), "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/></stream:error>", cond);
	outs(c, buf);
	stream_end(c, WIRE_CLOSE_ERROR);
}

/* s[0..n) escaped for XML, NUL-terminated, malloc'd (error paths only). */
static char *esc_dup(const char *s, size_t n)
{
	size_t need = xml_escape(s, n, NULL, 0);
	char *e = malloc(need + 1);

	if (e) {
		xml_escape(s, n, e, need);
		e[need] = 0;
	}
	return e;
}

/* A stanza error back to the client (RFC 6120 §8.3) for stanza s. */
static void stanza_error(struct conn *c, const struct xs_stanza *s, const char *etype, const char *cond)
{
	char *id, *to, *buf;
	int n;

	if (streq(&s->type, "error"))
		return; /* never answer an error with an error */
	id = esc_dup(s->id.p, s->id.len);
	to = esc_dup(c->jid ? c->jid : "", c->jid ? strlen(c->jid) : 0);
	n = (id && to) ? asprintf(&buf, "<%.*s type='error'%s%s%s%s%s%s><error type='%s'><%s xmlns='"
				  NS_STANZAS "'/></error></%.*s>", (int)s->local.len, s->local.p,
				  s->has_id ? " id='" : "", s->has_id ? id : "", s->has_id ? "'" : "",
				  c->jid ? " to='" : "", to, c->jid ? "'" : "", etype, cond,
				  (int)s->local.len, s->local.p) : -1;
	if (n > 0) {
		out(c, buf, (size_t)n);
		free(buf);
	}
	free(id);
	free(to);
}

static void iq_result(struct conn *c, const struct xs_stanza *s, const char *payload)
{
	char *id = esc_dup(s->id.p, s->id.len), *buf;
	int n = id ? asprintf(&buf, "<iq type='result' id='%s'>%s</iq>", id, payload ? payload : "") : -1;

	if (n > 0) {
		out(c, buf, (size_t)n);
		free(buf);
	}
	free(id);
}

static void send_features(struct conn *c)
{
	const struct config *cfg = c->w->cfg;

	if (c->flags & CF_AUTHED) {
		outs(c, "<stream:features><bind xmlns='" NS_BIND "'/><session xmlns='" NS_SESSION
		     "'><optional/></session></stream:features>");
	} else if (c->flags & CF_TLS) {
		outs(c, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-256</mechanism>"
		     "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
	} else if (cfg->require_tls) {
		outs(c, "<stream:features><starttls xmlns='" NS_TLS "'><required/></starttls></stream:features>");
	} else {
		/* Plaintext allowed by configuration (testing): no PLAIN without TLS. */
		outs(c, "<stream:features><starttls xmlns='" NS_TLS "'/><mechanisms xmlns='" NS_SASL
		     "'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
		     "</stream:features>");
	}
}

/* ---- stream header ------------------------------------------------------ */

static const char *served_domain(const struct config *cfg, const char *s, size_t n)
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
	return NULL;
}

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

static int on_header(struct conn *c, const uint8_t *p, size_t n)
{
	struct xs_header h;
	const char *dom;
	int r = xmlstage_header(c->w->xs, (const char *)p, n, &h);

	if (r != XMLSTAGE_OK) {
		stream_error(c, xmlstage_error_str(r), NULL);
		return STOP_DISCARD;
	}
	dom = h.has_to ? served_domain(c->w->cfg, h.to.p, h.to.len) : NULL;
	if (dom && !c->domain)
		c->domain = dom;
	/* Per RFC 6120 §4.9.1.2 our header goes out before any stream error. */
	c->flags &= ~CF_HEADER_SENT;
	if (!streq(&h.local, "stream") || !streq(&h.name_ns, NS_STREAMS) ||
	    !streq(&h.default_ns, NS_CLIENT)) {
		stream_error(c, "invalid-namespace", NULL);
		return STOP_DISCARD;
	}
	if (!h.has_to || !dom || (c->domain && dom != c->domain)) {
		stream_error(c, "host-unknown", NULL);
		return STOP_DISCARD;
	}
	if (!encoding_ok(p, n)) {
		stream_error(c, "unsupported-encoding", NULL);
		return STOP_DISCARD;
	}
	/* A higher major version is answered with ours (1.0); lower or malformed
	 * ones cannot be served. */
	if (!h.has_version || version_major(&h.version) < 1) {
		stream_error(c, "unsupported-version", NULL);
		return STOP_DISCARD;
	}
	/* Stanzas are forwarded byte for byte into other clients' streams, which
	 * declare only the c2s defaults: so stanzas are parsed in that context, and
	 * one that leans on a prefix declared on this header gets
	 * <bad-namespace-prefix/> instead of breaking its recipient's parser. */
	if (!c->close_tag && !streq(&h.prefix, "stream")) {
		if (asprintf(&c->close_tag, "</%.*s:stream", (int)h.prefix.len, h.prefix.p) < 0) {
			c->close_tag = NULL;
			stream_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
	}
	send_header(c);
	send_features(c);
	if (c->state == CS_HEADER && !(c->flags & CF_AUTHED)) {
		c->due = c->accepted + c->w->cfg->timeouts.auth;
		conn_timer(c, c->due);
	}
	set_state(c, CS_NEGOTIATE);
	return GO_ON;
}

/* ---- STARTTLS and SASL ------------------------------------------------- */

static int on_starttls(struct conn *c)
{
	if ((c->flags & (CF_TLS | CF_AUTHED)) || c->tls) {
		/* RFC 6120 §5.4.2.2: failure, then the stream is closed. */
		outs(c, "<failure xmlns='" NS_TLS "'/>");
		stream_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (!hs_acquire(c)) {
		outs(c, "<failure xmlns='" NS_TLS "'/>");
		stream_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	outs(c, "<proceed xmlns='" NS_TLS "'/>");
	c->tio = (struct tls_io){ .out = tls_out, .owner = c };
	c->tls = tls_new(c->domain, &c->tio);
	if (!c->tls) {
		log_error("cannot create a TLS session (out of memory?)", "conn=%u", c->idx);
		c->flags |= CF_PEER_GONE;
		stream_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	c->flags &= ~CF_HEADER_SENT;
	set_state(c, CS_STARTTLS);
	c->due = c->w->now + c->w->cfg->timeouts.handshake;
	conn_timer(c, c->due);
	/* Anything pipelined after <starttls/> is discarded (command injection). */
	return STOP_DISCARD;
}

static void sasl_reply(struct conn *c, const char *el, const uint8_t *data, size_t len)
{
	char b64[4 * ((SASL_MAX_OUT + 2) / 3) + 1], buf[sizeof(b64) + 128];
	long n = 0;

	if (len) {
		n = crypto_b64_encode(data, len, b64, sizeof(b64) - 1);
		if (n < 0)
			n = 0;
	}
	b64[n] = 0;
	if (n)
		snprintf(buf, sizeof(buf), "<%s xmlns='" NS_SASL "'>%s</%s>", el, b64, el);
	else if (!strcmp(el, "challenge"))
		snprintf(buf, sizeof(buf), "<challenge xmlns='" NS_SASL "'>=</challenge>");
	else
		snprintf(buf, sizeof(buf), "<%s xmlns='" NS_SASL "'/>", el);
	outs(c, buf);
}

static int sasl_failure(struct conn *c, const char *cond)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "<failure xmlns='" NS_SASL "'><%s/></failure>", cond);
	outs(c, buf);
	sasl_free(c->sasl);
	c->sasl = NULL;
	set_state(c, CS_NEGOTIATE);
	/* The server's own temporary failures are not the client's to pay for. */
	if (strcmp(cond, "temporary-auth-failure") != 0 &&
	    ++c->auth_failures >= c->w->cfg->limits.max_auth_failures) {
		/* RFC 6120 §6.4.5: past the retries, a stream error, which SHOULD be
		 * <policy-violation/>. */
		log_info("too many authentication failures, closing", "conn=%u peer=%s failures=%u", c->idx,
			 c->peer, c->auth_failures);
		stream_error(c, "policy-violation", NULL);
		return STOP_DISCARD;
	}
	return GO_ON;
}

/* Input now waits for the session server's answer, for a bounded time. */
static void wait_sm(struct conn *c)
{
	struct worker *w = c->w;

	c->flags |= CF_WAIT_SM;
	c->sm_due = w->now + w->cfg->timeouts.session_server;
	if (!c->deadline || c->deadline > c->sm_due)
		conn_timer(c, c->sm_due);
}

/* Act on what the SASL state machine returned. */
static int sasl_result(struct conn *c, int r)
{
	size_t len;
	const uint8_t *data;

	switch (r) {
	case SASL_NEED_CREDS: {
		struct wire_msg m = { .sid = conn_sid(c) };
		const char *user = sasl_user(c->sasl);

		if (c->w->link.stalled || c->w->link.dead)
			return sasl_failure(c, "temporary-auth-failure");
		if (!(c->flags & CF_SM_OPEN)) {
			m.type = WIRE_SESSION_OPEN;
			m.u.open.flags = (uint8_t)(((c->flags & CF_TLS) ? WIRE_OPEN_TLS : 0) |
						   ((c->flags & CF_DIRECT_TLS) ? WIRE_OPEN_DIRECT_TLS : 0));
			m.u.open.addr = wire_s(c->peer, strlen(c->peer));
			if (link_send(c->w, &m) < 0)
				return sasl_failure(c, "temporary-auth-failure");
			c->flags |= CF_SM_OPEN;
		}
		m.type = WIRE_CRED_REQ;
		m.u.cred_req.user = wire_s(user, strlen(user));
		m.u.cred_req.domain = wire_s(c->domain, strlen(c->domain));
		if (link_send(c->w, &m) < 0)
			return sasl_failure(c, "temporary-auth-failure");
		wait_sm(c);
		set_state(c, CS_SASL);
		return STOP_KEEP;
	}
	case SASL_CHALLENGE:
		data = sasl_out(c->sasl, &len);
		sasl_reply(c, "challenge", data, len);
		set_state(c, CS_SASL);
		return GO_ON;
	case SASL_SUCCESS: {
		struct wire_msg m = { .type = WIRE_AUTHED, .sid = conn_sid(c) };
		data = sasl_out(c->sasl, &len);
		c->user = strdup(sasl_user(c->sasl));
		if (!c->user) {
			stream_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		m.u.authed.user = wire_s(c->user, strlen(c->user));
		m.u.authed.domain = wire_s(c->domain, strlen(c->domain));
		link_send(c->w, &m);
		sasl_reply(c, "success", data, len);
		sasl_free(c->sasl);
		c->sasl = NULL;
		c->flags |= CF_AUTHED;
		c->flags &= ~CF_HEADER_SENT;
		log_info("authenticated", "conn=%u user=%s@%s peer=%s", c->idx, c->user, c->domain, c->peer);
		/* RFC 6120 §6.4.6: both sides restart the stream. */
		framer_reset(&c->fr);
		set_state(c, CS_HEADER);
		return GO_ON;
	}
	default:
		log_info("authentication failed", "conn=%u user=%s cond=%s", c->idx,
			 c->sasl ? sasl_user(c->sasl) : "-", sasl_cond_str(sasl_cond(c->sasl)));
		return sasl_failure(c, sasl_cond_str(sasl_cond(c->sasl)));
	}
}

/* The raw value of attribute `name` in the start tag p[0..n), or NULL.  The
 * tag was accepted by expat, so quotes are balanced.  Values containing a
 * reference are refused: callers only read token-like values (mechanisms). */
static const char *raw_attr(const char *p, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);

	for (size_t i = 1; i + nl + 2 < n; i++) {
		if ((p[i - 1] == ' ' || p[i - 1] == '\t' || p[i - 1] == '\n' || p[i - 1] == '\r') &&
		    memcmp(p + i, name, nl) == 0) {
			size_t j = i + nl;
			while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '\n' || p[j] == '\r'))
				j++;
			if (j >= n || p[j] != '=')
				continue;
			j++;
			while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '\n' || p[j] == '\r'))
				j++;
			if (j >= n || (p[j] != '\'' && p[j] != '"'))
				return NULL;
			const char *v = p + j + 1, *e = memchr(v, p[j], n - j - 1);
			if (!e || memchr(v, '&', (size_t)(e - v)))
				return NULL;
			*vlen = (size_t)(e - v);
			return v;
		}
	}
	return NULL;
}

static int b64_payload(const struct xs_stanza *s, uint8_t *buf, size_t cap, size_t *len)
{
	long n;

	if (s->text.len == 0 || (s->text.len == 1 && s->text.p[0] == '=')) {
		*len = 0;
		return 0;
	}
	n = crypto_b64_decode(s->text.p, s->text.len, buf, cap);
	if (n < 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

static int on_sasl(struct conn *c, const struct xs_stanza *s, const uint8_t *p)
{
	uint8_t data[SASL_MAX_MSG];
	size_t len;

	if (c->flags & CF_AUTHED) {
		stream_error(c, "policy-violation", NULL);
		return STOP_DISCARD;
	}
	if (streq(&s->local, "abort")) {
		return sasl_failure(c, "aborted");
	}
	if (streq(&s->local, "auth")) {
		size_t ml = 0;
		const char *mech_name = raw_attr((const char *)p, s->start_tag_end, "mechanism", &ml);
		int mech = mech_name ? sasl_mech_from_name(mech_name, ml) : 0;

		if (c->sasl) {
			sasl_free(c->sasl);
			c->sasl = NULL;
		}
		if (!mech)
			return sasl_failure(c, "invalid-mechanism");
		if (!(c->flags & CF_TLS) && (c->w->cfg->require_tls || mech == SASL_PLAIN))
			return sasl_failure(c, "encryption-required");
		if (s->text.len > ((SASL_MAX_MSG + 2) / 3) * 4 || b64_payload(s, data, sizeof(data), &len) < 0)
			return sasl_failure(c, "incorrect-encoding");
		c->sasl = sasl_new(mech, c->domain, strlen(c->domain));
		if (!c->sasl)
			return sasl_failure(c, "temporary-auth-failure");
		return sasl_result(c, sasl_start(c->sasl, data, len));
	}
	if (streq(&s->local, "response")) {
		if (!c->sasl || (c->flags & CF_WAIT_SM))
			return sasl_failure(c, "malformed-request");
		if (s->text.len > ((SASL_MAX_MSG + 2) / 3) * 4 || b64_payload(s, data, sizeof(data), &len) < 0)
			return sasl_failure(c, "incorrect-encoding");
		return sasl_result(c, sasl_step(c->sasl, data, len));
	}
	return sasl_failure(c, "malformed-request");
}

/* ---- bind and stanzas --------------------------------------------------- */

static int on_bind(struct conn *c, const struct xs_stanza *s)
{
	struct wire_msg m = { .type = WIRE_BIND_REQ, .sid = conn_sid(c) };

	if (!streq(&s->type, "set") || !s->has_id) {
		stanza_error(c, s, "modify", "bad-request");
		return GO_ON;
	}
	if (s->leaf_text.len && !jid_resource_valid(s->leaf_text.p, s->leaf_text.len)) {
		stanza_error(c, s, "modify", "bad-request");
		return GO_ON;
	}
	free(c->bind_id);
	c->bind_id = strndup(s->id.p, s->id.len);
	if (!c->bind_id) {
		stream_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	m.u.bind_req.user = wire_s(c->user, strlen(c->user));
	m.u.bind_req.domain = wire_s(c->domain, strlen(c->domain));
	m.u.bind_req.resource = wire_s(s->leaf_text.p, s->leaf_text.len);
	if (c->w->link.stalled || link_send(c->w, &m) < 0) {
		stanza_error(c, s, "wait", "internal-server-error");
		return GO_ON;
	}
	wait_sm(c);
	return STOP_KEEP;
}

static bool is_session_iq(const struct xs_stanza *s)
{
	return streq(&s->local, "iq") && streq(&s->child_ns, NS_SESSION);
}

/* RFC 6120 §8.1.2.1: a client's 'from' must be its full JID or bare JID. */
static bool from_ok(const struct conn *c, const struct xs_stanza *s)
{
	struct jid_view v;
	char canon[JID_MAX + 1];
	int n;
	size_t bare;

	if (!s->has_from)
		return true;
	if (jid_parse(s->from.p, s->from.len, &v) < 0)
		return false;
	n = jid_canon(&v, v.resource_len > 0, canon, sizeof(canon));
	if (n < 0)
		return false;
	bare = strcspn(c->jid, "/");
	if (v.resource_len)
		return strcmp(canon, c->jid) == 0;
	return (size_t)n == bare && memcmp(canon, c->jid, bare) == 0;
}

static int forward(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;
	struct xmltag_attr from = { "from", c->jid };
	struct wire_msg m = { .type = WIRE_STANZA, .sid = conn_sid(c) };
	size_t len;

	if (s->has_to) {
		struct jid_view v;
		if (jid_parse(s->to.p, s->to.len, &v) < 0) {
			stanza_error(c, s, "modify", "jid-malformed");
			return GO_ON;
		}
	}
	len = xmltag_rewrite((const char *)p, n, &from, 1, w->stamp, w->stamp_cap);
	if (len > w->stamp_cap) {
		char *nb = realloc(w->stamp, len + 1024);
		if (!nb) {
			stanza_error(c, s, "wait", "resource-constraint");
			return GO_ON;
		}
		w->stamp = nb;
		w->stamp_cap = len + 1024;
		len = xmltag_rewrite((const char *)p, n, &from, 1, w->stamp, w->stamp_cap);
	}
	if (len == 0) {
		stream_error(c, "not-well-formed", NULL);
		return STOP_DISCARD;
	}
	m.u.stanza.kind = streq(&s->local, "message") ? WIRE_KIND_MESSAGE
			  : streq(&s->local, "presence") ? WIRE_KIND_PRESENCE : WIRE_KIND_IQ;
	m.u.stanza.type = wire_s(s->type.p, s->type.len);
	m.u.stanza.to = wire_s(s->to.p, s->to.len);
	m.u.stanza.from = wire_s(c->jid, strlen(c->jid));
	m.u.stanza.id = wire_s(s->id.p, s->id.len);
	m.u.stanza.ns = wire_s(s->child_ns.p, s->child_ns.len);
	m.u.stanza.raw = wire_s(w->stamp, len);
	if (link_send(w, &m) < 0) {
		stanza_error(c, s, "wait", "resource-constraint");
		return GO_ON;
	}
	if (link_congested(w)) {
		/* The session server is not keeping up: stop reading from this
		 * client rather than queueing without bound (resumed in link.c). */
		log_debug("reads paused: the session server link is backed up", "conn=%u", c->idx);
		conn_pause(c, PAUSE_LINK);
		return STOP_KEEP;
	}
	return GO_ON;
}

static int on_stanza(struct conn *c, const uint8_t *p, size_t n)
{
	struct xs_stanza s;
	int r = xmlstage_stanza(c->w->xs, "", 0, (const char *)p, n, &s);
	bool client_ns;

	if (r != XMLSTAGE_OK) {
		stream_error(c, xmlstage_error_str(r), NULL);
		return STOP_DISCARD;
	}
	if (streq(&s.ns, NS_STREAMS) && streq(&s.local, "error")) {
		log_info("client sent a stream error", "conn=%u cond=%.*s", c->idx,
			 (int)s.child_local.len, s.child_local.p);
		stream_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (streq(&s.ns, NS_TLS) && streq(&s.local, "starttls") && c->state == CS_NEGOTIATE)
		return on_starttls(c);
	if (streq(&s.ns, NS_SASL) && (c->state == CS_NEGOTIATE || c->state == CS_SASL))
		return on_sasl(c, &s, p);
	client_ns = streq(&s.ns, NS_CLIENT) &&
		    (streq(&s.local, "message") || streq(&s.local, "presence") || streq(&s.local, "iq"));
	if (!client_ns) {
		stream_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (!(c->flags & CF_AUTHED)) {
		stream_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	if (streq(&s.local, "iq")) {
		if (!s.has_id || !(streq(&s.type, "get") || streq(&s.type, "set") ||
				   streq(&s.type, "result") || streq(&s.type, "error"))) {
			stanza_error(c, &s, "modify", "bad-request");
			return GO_ON;
		}
		if (streq(&s.child_ns, NS_BIND)) {
			if (c->flags & CF_BOUND) {
				stanza_error(c, &s, "cancel", "not-allowed");
				return GO_ON;
			}
			return on_bind(c, &s);
		}
		if (is_session_iq(&s) && !s.has_to) {
			iq_result(c, &s, NULL);  /* RFC 3921 session: a no-op now */
			return GO_ON;
		}
	}
	if (!(c->flags & CF_BOUND)) {
		stream_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	if (!from_ok(c, &s)) {
		stream_error(c, "invalid-from", NULL);
		return STOP_DISCARD;
	}
	return forward(c, &s, p, n);
}

static int on_item(struct conn *c, int ev, const uint8_t *p, size_t n)
{
	switch (ev) {
	case FRAMER_SPACE:
		c->last_rx = c->w->now;   /* a keepalive: the session is alive */
		return GO_ON;
	case FRAMER_HEADER:
		return on_header(c, p, n);
	case FRAMER_CLOSE:
		{
			const char *want = c->close_tag ? c->close_tag : "</stream:stream";
			size_t wl = strlen(want);
			if (n <= wl || memcmp(p, want, wl) != 0 ||
			    !(p[wl] == '>' || p[wl] == ' ' || p[wl] == '\t' || p[wl] == '\r' || p[wl] == '\n')) {
				stream_error(c, "not-well-formed", NULL);
				return STOP_DISCARD;
			}
		}
		stream_end(c, WIRE_CLOSE_NORMAL);
		return STOP_DISCARD;
	case FRAMER_STANZA: {
		/* Only complete items count as activity: a slowloris that trickles
		 * one stanza forever still reaches the idle timeout. */
		bool ok = conn_rate_ok(c, 0, 1);
		int r;
		c->last_rx = c->w->now;
		c->w->stat_stanzas_in++;
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
				stream_error(c, "unsupported-stanza-type", NULL);
				*stop = STOP_DISCARD;
				return len;
			}
			break;
		}
		if (ev == FRAMER_ERROR) {
			stream_error(c, framer_error_str(c->fr.err), NULL);
			*stop = STOP_DISCARD;
			return len;
		}
		int r = on_item(c, ev, buf + pos, end);
		pos += end;
		if (r != GO_ON) {
			*stop = r;
			return r == STOP_DISCARD ? len : pos;
		}
	}
	if (c->state == CS_CLOSING)
		*stop = STOP_DISCARD;
	return *stop == STOP_DISCARD ? len : pos;
}

static void plain_input(struct conn *c, const uint8_t *data, size_t len)
{
	int stop;
	size_t used;
	struct worker *w = c->w;
	size_t limit = w->cfg->limits.max_stanza_bytes + IN_SLACK +
		       (c->paused ? (size_t)w->nbufs * w->bufsize : (c->flags & CF_WAIT_SM) ? IN_SLACK_HELD : 0);

	if (!buf_used(&c->in) && !(c->flags & CF_WAIT_SM) && !c->paused) {
		used = frame_items(c, data, len, &stop);
		if (stop == STOP_DISCARD || used == len)
			return;
		data += used;
		len -= used;
		if (buf_append(&c->in, data, len, limit) < 0)
			stream_error(c, "policy-violation", NULL);
		return;
	}
	if (buf_append(&c->in, data, len, limit) < 0) {
		log_info("input over its bound", "conn=%u peer=%s held=%u paused=%u wait_sm=%d", c->idx, c->peer,
			 buf_used(&c->in), c->paused, !!(c->flags & CF_WAIT_SM));
		stream_error(c, "policy-violation", NULL);
		return;
	}
	if ((c->flags & CF_WAIT_SM) || c->paused)
		return;
	used = frame_items(c, buf_data(&c->in), buf_used(&c->in), &stop);
	if (stop == STOP_DISCARD)
		buf_reset(&c->in);
	else
		buf_consume(&c->in, used);
}

/* Handle input that waited (for the session server, or while paused). */
void stream_resume(struct conn *c)
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

/* ---- entry points from worker.c ------------------------------------------ */

void stream_accepted(struct conn *c)
{
	framer_reset(&c->fr);
	c->state = (c->flags & CF_DIRECT_TLS) ? CS_TLS_WAIT : CS_HEADER;
	c->due = c->w->now + c->w->cfg->timeouts.handshake;
	conn_timer(c, c->due);
}

static void tls_input(struct conn *c, const uint8_t *data, size_t len)
{
	struct worker *w = c->w;
	char err[128];

	c->tio.in = data;
	c->tio.in_len = len;
	if (!(c->flags & CF_TLS)) {
		int r = tls_handshake(c->tls);
		if (r == TLS_WANT)
			return;
		if (r != TLS_OK) {
			log_info("TLS handshake failed", "conn=%u err=\"%s\"", c->idx,
				 tls_error_str(c->tls, err, sizeof(err)));
			c->flags |= CF_PEER_GONE;   /* wolfSSL already sent its alert, if any */
			stream_error(c, "undefined-condition", NULL);
			return;
		}
		c->flags |= CF_TLS;
		hs_release(c);
		if (!c->domain)
			c->domain = tls_sni_domain(c->tls);
		framer_reset(&c->fr);
		set_state(c, CS_HEADER);
		c->due = c->accepted + w->cfg->timeouts.auth;
		conn_timer(c, c->due);
		log_debug("TLS established", "conn=%u domain=%s", c->idx, c->domain ? c->domain : "-");
	}
	while (c->state != CS_CLOSING) {
		int res;
		size_t n = tls_read(c->tls, w->scratch, TLS_READ_CAP, &res);
		if (n) {
			plain_input(c, w->scratch, n);
			continue;
		}
		if (res == TLS_WANT)
			break;
		if (res == TLS_CLOSED) {
			stream_eof(c);
		} else {
			/* Nothing can follow a TLS failure but the fatal alert the
			 * TLS layer has queued: send it, then close. */
			log_info("TLS error", "conn=%u err=\"%s\"", c->idx, tls_error_str(c->tls, err, sizeof(err)));
			buf_reset(&c->pt);
			sm_close(c, WIRE_CLOSE_ERROR);
			set_state(c, CS_CLOSING);
			conn_release(c);
		}
		break;
	}
}

void stream_input(struct conn *c, const uint8_t *data, size_t len)
{
	if ((c->flags & CF_DIRECT_TLS) && !c->tls) {
		/* Lazy: a WOLFSSL costs ~60 KB, create it on the first ClientHello byte. */
		if (!hs_acquire(c)) {
			c->flags |= CF_PEER_GONE;
			set_state(c, CS_CLOSING);
			conn_release(c);
			return;
		}
		c->tio = (struct tls_io){ .out = tls_out, .owner = c };
		c->tls = tls_new(NULL, &c->tio);
		if (!c->tls) {
			log_error("cannot create a TLS session (out of memory?)", "conn=%u", c->idx);
			c->flags |= CF_PEER_GONE;
			conn_release(c);
			return;
		}
	}
	if (c->tls)
		tls_input(c, data, len);
	else
		plain_input(c, data, len);
}

void stream_eof(struct conn *c)
{
	c->flags |= CF_PEER_GONE;
	sm_close(c, WIRE_CLOSE_DISCONNECT);
	if (c->state != CS_CLOSING)
		log_debug("connection lost", "conn=%u jid=%s", c->idx, c->jid ? c->jid : "-");
	set_state(c, CS_CLOSING);
	conn_release(c);
}

/*
 * The connection's timer fired.  It may have been set for any of its
 * deadlines: the state's (handshake, auth: c->due), the idle one (sessions:
 * last complete item + idle), or a slow reader's.  Act on the one that is
 * due, or re-arm for the earliest one still ahead.
 */
void stream_timeout(struct conn *c)
{
	struct worker *w = c->w;
	const struct config *cfg = w->cfg;
	uint64_t next;

	if ((c->flags & CF_SLOW) && w->now >= c->slow_since + cfg->timeouts.slow_reader) {
		log_info("slow reader: output queue stayed full", "conn=%u peer=%s jid=%s", c->idx, c->peer,
			 c->jid ? c->jid : "-");
		c->flags |= CF_PEER_GONE;   /* it is not reading: the error could not reach it */
		stream_error(c, "resource-constraint", NULL);
		return;
	}
	if ((c->flags & CF_WAIT_SM) && w->now >= c->sm_due) {
		/* The session server did not answer: a temporary error now beats
		 * a hang until the auth timeout.  Later logins fail at once until
		 * it speaks again (link.stalled, cleared in link.c). */
		if (!w->link.stalled)
			log_warn("session server not answering", "worker=%d after=%us", w->id,
				 cfg->timeouts.session_server);
		w->link.stalled = true;
		c->flags &= ~CF_WAIT_SM;
		if (c->sasl) {
			if (sasl_failure(c, "temporary-auth-failure") == STOP_DISCARD)
				return;
		} else if (c->bind_id) {
			char *id = esc_dup(c->bind_id, strlen(c->bind_id)), *buf;
			if (id && asprintf(&buf, "<iq type='error' id='%s'><error type='wait'><internal-server-error xmlns='"
					   NS_STANZAS "'/></error></iq>", id) > 0) {
				outs(c, buf);
				free(buf);
			}
			free(id);
			free(c->bind_id);
			c->bind_id = NULL;
		}
		stream_resume(c);
		if (c->state == CS_CLOSING)
			return;
	}
	next = c->state == CS_SESSION ? c->last_rx + cfg->timeouts.idle : c->due;
	if (w->now >= next) {
		stream_error(c, "connection-timeout", NULL);
		return;
	}
	if ((c->flags & CF_WAIT_SM) && c->sm_due < next)
		next = c->sm_due;
	if ((c->flags & CF_SLOW) && c->slow_since + cfg->timeouts.slow_reader < next)
		next = c->slow_since + cfg->timeouts.slow_reader;
	conn_timer(c, next);
}

void stream_shutdown(struct conn *c)
{
	stream_error(c, "system-shutdown", NULL);
}

void stream_free(struct conn *c)
{
	sm_close(c, WIRE_CLOSE_DISCONNECT);
	hs_release(c);
	sasl_free(c->sasl);
	tls_free(c->tls);
	free(c->user);
	free(c->jid);
	free(c->close_tag);
	free(c->bind_id);
	c->sasl = NULL;
	c->tls = NULL;
}

/*
 * Flow control towards the session server (docs/protocol.md): a bound
 * session starts with max_out_bytes of credit, spent by the stanzas sent to
 * it; we give back what it was sent once its queue is under half of
 * max_out_bytes, in steps of at least a quarter (never leaving the session
 * server at zero while the queue is short).  A client that stops reading
 * thus stops getting credit, and whoever writes to it is paused.
 */
static void credit(struct conn *c, uint32_t bytes)
{
	struct wire_msg m = { .type = WIRE_CREDIT, .sid = conn_sid(c) };

	m.u.credit.bytes = bytes;
	link_send(c->w, &m);
}

void stream_sent(struct conn *c)
{
	size_t max = c->w->cfg->limits.max_out_bytes;

	if (c->owed >= max / 4 && (c->flags & CF_SM_OPEN) && !(c->flags & (CF_CLOSED | CF_PEER_GONE)) &&
	    (size_t)buf_used(&c->out) + buf_used(&c->sending) + buf_used(&c->pt) < max / 2) {
		credit(c, c->owed);
		c->owed = 0;
	}
}

void stream_link_down(struct worker *w)
{
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct conn *c = w->slots[i];
		if (c && !(c->flags & CF_CLOSED) && (c->flags & (CF_SM_OPEN | CF_WAIT_SM))) {
			c->flags &= ~CF_SM_OPEN;
			stream_error(c, "internal-server-error", NULL);
		}
	}
}

/* ---- frames from the session server ----------------------------------- */

static void on_bind_resp(struct conn *c, const struct wire_msg *m)
{
	const char *etype = "cancel", *cond = "internal-server-error";
	char *id = esc_dup(c->bind_id, strlen(c->bind_id)), *jid = NULL, *buf = NULL;
	int n = -1;

	if (m->u.bind_resp.status == WIRE_OK && m->u.bind_resp.jid.len <= JID_MAX) {
		c->jid = strndup((const char *)m->u.bind_resp.jid.p, m->u.bind_resp.jid.len);
		jid = c->jid ? esc_dup(c->jid, strlen(c->jid)) : NULL;
		if (id && jid)
			n = asprintf(&buf, "<iq type='result' id='%s'><bind xmlns='" NS_BIND
				     "'><jid>%s</jid></bind></iq>", id, jid);
		if (n < 0) {
			stream_error(c, "internal-server-error", NULL);
			goto done;
		}
		c->flags |= CF_BOUND;
		credit(c, (uint32_t)c->w->cfg->limits.max_out_bytes);
		set_state(c, CS_SESSION);
		conn_timer(c, c->w->now + c->w->cfg->timeouts.idle);
		log_info("session bound", "conn=%u jid=%s", c->idx, c->jid);
	} else {
		switch (m->u.bind_resp.status) {
		case WIRE_BAD_REQUEST: etype = "modify"; cond = "bad-request"; break;
		case WIRE_NOT_ALLOWED: etype = "cancel"; cond = "not-allowed"; break;
		case WIRE_CONFLICT: etype = "cancel"; cond = "conflict"; break;
		case WIRE_TEMP_FAIL: etype = "wait"; cond = "resource-constraint"; break;
		}
		if (id)
			n = asprintf(&buf, "<iq type='error' id='%s'><error type='%s'><%s xmlns='" NS_STANZAS
				     "'/></error></iq>", id, etype, cond);
	}
	if (n > 0)
		out(c, buf, (size_t)n);
done:
	free(buf);
	free(id);
	free(jid);
	free(c->bind_id);
	c->bind_id = NULL;
}

void stream_on_frame(struct worker *w, const struct wire_msg *m)
{
	struct conn *c = worker_conn_by_sid(w, m->sid);

	if (!c || c->state == CS_CLOSING)
		return; /* the session ended meanwhile; its close frame is on the way */
	switch (m->type) {
	case WIRE_CRED_RESP:
		if (c->sasl && (c->flags & CF_WAIT_SM)) {
			int r = sasl_creds(c->sasl, m->u.cred_resp.status, &m->u.cred_resp.sha1,
					   &m->u.cred_resp.sha256);
			c->flags &= ~CF_WAIT_SM;
			if (sasl_result(c, r) != STOP_DISCARD)
				stream_resume(c);
		}
		break;
	case WIRE_BIND_RESP:
		if (c->bind_id && (c->flags & CF_WAIT_SM)) {
			c->flags &= ~CF_WAIT_SM;
			on_bind_resp(c, m);
			stream_resume(c);
		}
		break;
	case WIRE_STANZA:
		c->owed += m->u.stanza.raw.len;
		if (c->flags & CF_BOUND) {
			out(c, m->u.stanza.raw.p, m->u.stanza.raw.len);
			w->stat_stanzas_out++;
		}
		break;
	case WIRE_FLOW:
		/* A recipient of this client reads too slowly: stop reading from
		 * this client until it catches up (the kernel keeps the bytes). */
		if (m->u.flow.stop) {
			log_debug("reads paused: a recipient reads too slowly", "conn=%u", c->idx);
			conn_pause(c, PAUSE_PEER);
		} else {
			conn_resume(c, PAUSE_PEER);
		}
		break;
	case WIRE_SESSION_CLOSE:
		c->flags &= ~CF_SM_OPEN;
		stream_error(c, m->u.close.reason == WIRE_CLOSE_CONFLICT ? "conflict"
				: m->u.close.reason == WIRE_CLOSE_SHUTDOWN ? "system-shutdown"
				: m->u.close.reason == WIRE_CLOSE_KICKED ? "not-authorized"
				: "reset", NULL);
		break;
	default:
		log_warn("unexpected frame from the session server", "worker=%d type=%s", w->id,
			 wire_type_str(m->type));
		break;
	}
}
