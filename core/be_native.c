/*
 * be_native — the native backend: a c2s stream whose session lives on our
 * session servers.  SASL runs at the edge (the session server supplies the
 * salted keys), bind is asked of the session server, and every stanza after
 * it is checked, `from`-stamped and forwarded over the wire protocol
 * (docs/protocol.md) with the routing facts already parsed.  Frames from
 * the session server come back here (native_on_frame).
 *
 * The session (session.h) carries the wire identity; it is created when
 * the session server first hears of this client (SESSION_OPEN).
 *
 * Session states (enum sess_state, session_set_state): new -> open
 * (SESSION_OPEN sent) -> authed (AUTHED sent; the stream has CF_AUTHED) ->
 * bound (BIND_RESP ok; CF_BOUND, CS_SESSION) -> closed (SESSION_CLOSE sent,
 * or received).
 *
 * PLAIN's key derivation (PBKDF2, milliseconds) runs on the offload pool
 * (offload.h), never on the worker: while it runs the stream waits as it
 * does for the session server (CF_WAIT_SM: input held, timeouts.session_server
 * deadline) with c->auth_job set.  The job owns copies of what it needs and
 * names its stream only by session id, because by the time it completes the
 * stream may be closing or freed: whoever stops waiting (failure, timeout,
 * end of stream, free) cancels and forgets it, and a job nobody waits for is
 * just freed when it comes back.
 */
#include "core/xmpp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/log.h"
#include "core/sasl.h"
#include "core/session.h"
#include "core/worker.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

static const char *sess_jid(const struct conn *c)
{
	return c->sess && c->sess->jid ? c->sess->jid : NULL;
}

static void sm_close(struct conn *c, int reason)
{
	struct session *s = c->sess;

	if (s && session_announced(s)) {
		struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = s->id };
		m.u.close.reason = (uint8_t)reason;
		link_send(c->w, &m);
		session_set_state(s, SS_CLOSED);
	}
}

static void send_features(struct conn *c)
{
	const struct config *cfg = c->w->cfg;

	if (c->flags & CF_AUTHED) {
		/* RFC 6121 §2.6.1 roster versioning, §3.4 pre-approval: the sm does both. */
		xmpp_outs(c, "<stream:features><bind xmlns='" NS_BIND "'/><session xmlns='" NS_SESSION
			  "'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/>"
			  "<sub xmlns='urn:xmpp:features:pre-approval'/></stream:features>");
	} else if (c->flags & CF_TLS) {
		xmpp_outs(c, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-256</mechanism>"
			  "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
	} else if (cfg->require_tls) {
		xmpp_outs(c, "<stream:features><starttls xmlns='" NS_TLS "'><required/></starttls></stream:features>");
	} else {
		/* Plaintext allowed by configuration (testing): no PLAIN without TLS. */
		xmpp_outs(c, "<stream:features><starttls xmlns='" NS_TLS "'/><mechanisms xmlns='" NS_SASL
			  "'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
			  "</stream:features>");
	}
}

static int native_header(struct conn *c, const struct xs_header *h)
{
	xmpp_answer(c, NULL);
	send_features(c);
	return xmpp_set_state(c, CS_NEGOTIATE) ? GO_ON : STOP_DISCARD;
}

/* ---- SASL ---------------------------------------------------------------- */

/* PLAIN's PBKDF2 out on the offload pool; freed on the worker by done(). */
struct auth_job {
	struct offload_job job;        /* first: the job is the container */
	struct worker *w;
	uint64_t sid;                  /* the session waiting for it (session_by_id) */
	struct sasl_job in;            /* wiped by sasl_job_run */
	uint8_t salted[CRYPTO_MAX_DIGEST];
	int len;                       /* sasl_job_run: bytes in salted, or -1 */
};

static void auth_job_free(struct auth_job *a)
{
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* The stream no longer waits for its job (if any): it completes unseen. */
static void auth_job_forget(struct conn *c)
{
	if (c->auth_job) {
		offload_cancel(&c->auth_job->job);
		c->auth_job = NULL;
	}
}

/* On an offload thread: touches only the job. */
static void auth_job_run(struct offload_job *j)
{
	struct auth_job *a = (struct auth_job *)j;

	a->len = sasl_job_run(&a->in, a->salted);
}

static void auth_job_done(struct offload_job *j);

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
	xmpp_outs(c, buf);
}

static int sasl_failure(struct conn *c, const char *cond)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "<failure xmlns='" NS_SASL "'><%s/></failure>", cond);
	xmpp_outs(c, buf);
	auth_job_forget(c);
	sasl_free(c->sasl);
	c->sasl = NULL;
	if (!xmpp_set_state(c, CS_NEGOTIATE)) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	/* The server's own temporary failures are not the client's to pay for. */
	if (strcmp(cond, "temporary-auth-failure") != 0 &&
	    ++c->auth_failures >= c->w->cfg->limits.max_auth_failures) {
		/* RFC 6120 §6.4.5: past the retries, a stream error, which SHOULD be
		 * <policy-violation/>. */
		log_info("too many authentication failures, closing", "conn=%u peer=%s failures=%u", c->idx,
			 c->peer, c->auth_failures);
		xmpp_error(c, "policy-violation", NULL);
		return STOP_DISCARD;
	}
	return GO_ON;
}

/* Tell the session server about this client (once). */
static int sm_open(struct conn *c)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN };
	struct session *s = c->sess;

	if (s && s->state != SS_NEW)
		return s->state == SS_CLOSED ? -1 : 0;
	if (!s && !(s = session_new(c->w, c)))
		return -1;
	m.sid = s->id;
	m.u.open.flags = (uint8_t)(((c->flags & CF_TLS) ? WIRE_OPEN_TLS : 0) |
				   ((c->flags & CF_DIRECT_TLS) ? WIRE_OPEN_DIRECT_TLS : 0));
	m.u.open.addr = wire_s(c->peer, strlen(c->peer));
	if (link_send(c->w, &m) < 0)
		return -1;
	return session_set_state(s, SS_OPEN) ? 0 : -1;
}

/* Act on what the SASL state machine returned. */
static int sasl_result(struct conn *c, int r)
{
	size_t len;
	const uint8_t *data;

	switch (r) {
	case SASL_NEED_CREDS: {
		struct wire_msg m = { .type = WIRE_CRED_REQ };
		const char *user = sasl_user(c->sasl);

		if (c->w->link.stalled || c->w->link.dead || sm_open(c) < 0)
			return sasl_failure(c, "temporary-auth-failure");
		m.sid = c->sess->id;
		m.u.cred_req.user = wire_s(user, strlen(user));
		m.u.cred_req.domain = wire_s(c->domain, strlen(c->domain));
		if (link_send(c->w, &m) < 0)
			return sasl_failure(c, "temporary-auth-failure");
		xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
		return xmpp_set_state(c, CS_SASL) ? STOP_KEEP : STOP_DISCARD;
	}
	case SASL_NEED_COMPUTE: {
		struct worker *w = c->w;
		struct auth_job *a = calloc(1, sizeof(*a));
		int e;

		if (!a || !c->sess || sasl_job_take(c->sasl, &a->in) < 0) {
			e = -ENOMEM;
		} else {
			a->job.run = auth_job_run;
			a->job.done = auth_job_done;
			a->w = w;
			a->sid = c->sess->id;
			a->len = -1;
			e = w->offload ? offload_submit(w->offload, &w->offload_port, &a->job) : -ESHUTDOWN;
		}
		if (e < 0) {
			if (a)
				auth_job_free(a);
			log_warn("cannot queue a login's key derivation", "conn=%u err=%s", c->idx, strerror(-e));
			return sasl_failure(c, "temporary-auth-failure");
		}
		c->auth_job = a;
		log_debug("login key derivation queued", "conn=%u iter=%u", c->idx, (unsigned)a->in.iter);
		xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
		return xmpp_set_state(c, CS_SASL) ? STOP_KEEP : STOP_DISCARD;
	}
	case SASL_CHALLENGE:
		data = sasl_out(c->sasl, &len);
		sasl_reply(c, "challenge", data, len);
		return xmpp_set_state(c, CS_SASL) ? GO_ON : STOP_DISCARD;
	case SASL_SUCCESS: {
		struct session *s = c->sess;
		struct wire_msg m = { .type = WIRE_AUTHED };
		data = sasl_out(c->sasl, &len);
		if (!s || !session_set_state(s, SS_AUTHED) || !(s->user = strdup(sasl_user(c->sasl)))) {
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		m.sid = s->id;
		m.u.authed.user = wire_s(s->user, strlen(s->user));
		m.u.authed.domain = wire_s(c->domain, strlen(c->domain));
		link_send(c->w, &m);
		sasl_reply(c, "success", data, len);
		sasl_free(c->sasl);
		c->sasl = NULL;
		c->flags |= CF_AUTHED;
		log_info("authenticated", "conn=%u user=%s@%s peer=%s", c->idx, s->user, c->domain, c->peer);
		/* RFC 6120 §6.4.6: both sides restart the stream. */
		xmpp_restart(c);
		return GO_ON;
	}
	default:
		log_info("authentication failed", "conn=%u user=%s cond=%s", c->idx,
			 c->sasl ? sasl_user(c->sasl) : "-", sasl_cond_str(sasl_cond(c->sasl)));
		return sasl_failure(c, sasl_cond_str(sasl_cond(c->sasl)));
	}
}

/* Back on the worker (offload_drain): continue the exchange if its stream
 * still waits for this very job; otherwise just free it. */
static void auth_job_done(struct offload_job *j)
{
	struct auth_job *a = (struct auth_job *)j;
	struct session *s = session_by_id(a->w, a->sid);
	struct conn *c = s ? s->c : NULL;
	int r;

	if (!c || c->auth_job != a || c->state == CS_CLOSING || (c->flags & CF_CLOSED) || !c->sasl) {
		/* (ended() forgets the job, so only the first test should ever hold.) */
		if (c && c->auth_job == a)
			c->auth_job = NULL;
		log_debug("login key derivation dropped: its stream stopped waiting", "worker=%d ran=%d",
			  a->w->id, a->len > 0);
		auth_job_free(a);
		return;
	}
	c->auth_job = NULL;
	c->flags &= ~CF_WAIT_SM;
	r = sasl_computed(c->sasl, a->len > 0 ? a->salted : NULL, a->len > 0 ? (size_t)a->len : 0);
	auth_job_free(a);
	if (sasl_result(c, r) != STOP_DISCARD)
		xmpp_resume(c);
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
		xmpp_error(c, "policy-violation", NULL);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->local, "abort"))
		return sasl_failure(c, "aborted");
	if (xs_streq(&s->local, "auth")) {
		size_t ml = 0;
		const char *mech_name = raw_attr((const char *)p, s->start_tag_end, "mechanism", &ml);
		int mech = mech_name ? sasl_mech_from_name(mech_name, ml) : 0;

		if (c->sasl) {
			auth_job_forget(c);
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
	if (xs_streq(&s->local, "response")) {
		if (!c->sasl || (c->flags & CF_WAIT_SM))
			return sasl_failure(c, "malformed-request");
		if (s->text.len > ((SASL_MAX_MSG + 2) / 3) * 4 || b64_payload(s, data, sizeof(data), &len) < 0)
			return sasl_failure(c, "incorrect-encoding");
		return sasl_result(c, sasl_step(c->sasl, data, len));
	}
	return sasl_failure(c, "malformed-request");
}

/* ---- bind and stanzas --------------------------------------------------- */

static int on_bind(struct conn *c, const struct xs_stanza *st)
{
	struct session *s = c->sess;
	struct wire_msg m = { .type = WIRE_BIND_REQ };

	if (!xs_streq(&st->type, "set") || !st->has_id) {
		xmpp_stanza_error(c, st, "modify", "bad-request", NULL);
		return GO_ON;
	}
	if (st->leaf_text.len && !jid_resource_valid(st->leaf_text.p, st->leaf_text.len)) {
		xmpp_stanza_error(c, st, "modify", "bad-request", NULL);
		return GO_ON;
	}
	free(s->bind_id);
	s->bind_id = strndup(st->id.p, st->id.len);
	if (!s->bind_id) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	m.sid = s->id;
	m.u.bind_req.user = wire_s(s->user, strlen(s->user));
	m.u.bind_req.domain = wire_s(c->domain, strlen(c->domain));
	m.u.bind_req.resource = wire_s(st->leaf_text.p, st->leaf_text.len);
	if (c->w->link.stalled || link_send(c->w, &m) < 0) {
		xmpp_stanza_error(c, st, "wait", "internal-server-error", NULL);
		return GO_ON;
	}
	xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
	return STOP_KEEP;
}

/* RFC 6120 §8.1.2.1: a client's 'from' must be its full JID or bare JID. */
static bool from_ok(const char *jid, const struct xs_stanza *s)
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
	bare = strcspn(jid, "/");
	if (v.resource_len)
		return strcmp(canon, jid) == 0;
	return (size_t)n == bare && memcmp(canon, jid, bare) == 0;
}

static int forward(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;
	const char *jid = c->sess->jid;
	struct xmltag_attr from = { "from", jid };
	struct wire_msg m = { .type = WIRE_STANZA, .sid = c->sess->id };
	size_t len;

	if (s->has_to) {
		struct jid_view v;
		if (jid_parse(s->to.p, s->to.len, &v) < 0) {
			xmpp_stanza_error(c, s, "modify", "jid-malformed", jid);
			return GO_ON;
		}
	}
	len = xmltag_rewrite((const char *)p, n, &from, 1, w->stamp, w->stamp_cap);
	if (len > w->stamp_cap) {
		char *nb = realloc(w->stamp, len + 1024);
		if (!nb) {
			xmpp_stanza_error(c, s, "wait", "resource-constraint", jid);
			return GO_ON;
		}
		w->stamp = nb;
		w->stamp_cap = len + 1024;
		len = xmltag_rewrite((const char *)p, n, &from, 1, w->stamp, w->stamp_cap);
	}
	if (len == 0) {
		xmpp_error(c, "not-well-formed", NULL);
		return STOP_DISCARD;
	}
	m.u.stanza.kind = xs_streq(&s->local, "message") ? WIRE_KIND_MESSAGE
			  : xs_streq(&s->local, "presence") ? WIRE_KIND_PRESENCE : WIRE_KIND_IQ;
	m.u.stanza.type = wire_s(s->type.p, s->type.len);
	m.u.stanza.to = wire_s(s->to.p, s->to.len);
	m.u.stanza.from = wire_s(jid, strlen(jid));
	m.u.stanza.id = wire_s(s->id.p, s->id.len);
	m.u.stanza.ns = wire_s(s->child_ns.p, s->child_ns.len);
	m.u.stanza.raw = wire_s(w->stamp, len);
	if (link_send(w, &m) < 0) {
		xmpp_stanza_error(c, s, "wait", "resource-constraint", jid);
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

static int native_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	bool client_ns;

	if (xs_streq(&s->ns, NS_SASL) && (c->state == CS_NEGOTIATE || c->state == CS_SASL))
		return on_sasl(c, s, p);
	client_ns = xs_streq(&s->ns, NS_CLIENT) &&
		    (xs_streq(&s->local, "message") || xs_streq(&s->local, "presence") || xs_streq(&s->local, "iq"));
	if (!client_ns) {
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (!(c->flags & CF_AUTHED)) {
		xmpp_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->local, "iq")) {
		if (!s->has_id || !(xs_streq(&s->type, "get") || xs_streq(&s->type, "set") ||
				    xs_streq(&s->type, "result") || xs_streq(&s->type, "error"))) {
			xmpp_stanza_error(c, s, "modify", "bad-request", sess_jid(c));
			return GO_ON;
		}
		if (xs_streq(&s->child_ns, NS_BIND)) {
			if (c->flags & CF_BOUND) {
				xmpp_stanza_error(c, s, "cancel", "not-allowed", sess_jid(c));
				return GO_ON;
			}
			return on_bind(c, s);
		}
		if (xs_streq(&s->child_ns, NS_SESSION) && !s->has_to) {
			xmpp_iq_result(c, s, NULL);  /* RFC 3921 session: a no-op now */
			return GO_ON;
		}
	}
	if (!(c->flags & CF_BOUND)) {
		xmpp_error(c, "not-authorized", NULL);
		return STOP_DISCARD;
	}
	if (!from_ok(c->sess->jid, s)) {
		xmpp_error(c, "invalid-from", NULL);
		return STOP_DISCARD;
	}
	return forward(c, s, p, n);
}

/* The session server did not answer in time (CF_WAIT_SM): a temporary
 * error now beats a hang until the auth timeout.  Later logins fail at once
 * until it speaks again (link.stalled, cleared in link.c). */
static void native_timeout(struct conn *c)
{
	struct worker *w = c->w;
	struct session *s = c->sess;

	if (c->auth_job) {
		/* The offload pool is backlogged, not the session server. */
		log_warn("login key derivation not done in time: offload pool busy", "conn=%u after=%us",
			 c->idx, w->cfg->timeouts.session_server);
		c->flags &= ~CF_WAIT_SM;
		if (sasl_failure(c, "temporary-auth-failure") != STOP_DISCARD)
			xmpp_resume(c);
		return;
	}
	if (!w->link.stalled)
		log_warn("session server not answering", "worker=%d after=%us", w->id,
			 w->cfg->timeouts.session_server);
	w->link.stalled = true;
	c->flags &= ~CF_WAIT_SM;
	if (c->sasl) {
		if (sasl_failure(c, "temporary-auth-failure") == STOP_DISCARD)
			return;
	} else if (s && s->bind_id) {
		char *id = xmpp_esc_dup(s->bind_id, strlen(s->bind_id)), *buf;
		if (id && asprintf(&buf, "<iq type='error' id='%s'><error type='wait'><internal-server-error xmlns='"
				   NS_STANZAS "'/></error></iq>", id) > 0) {
			xmpp_outs(c, buf);
			free(buf);
		}
		free(id);
		free(s->bind_id);
		s->bind_id = NULL;
	}
	xmpp_resume(c);
}

/*
 * Flow control towards the session server (docs/protocol.md): a bound
 * session starts with max_out_bytes of credit, spent by the stanzas sent to
 * it; we give back what it was sent once its queue is under half of
 * max_out_bytes, in steps of at least a quarter (never leaving the session
 * server at zero while the queue is short).  A client that stops reading
 * thus stops getting credit, and whoever writes to it is paused.
 */
static void credit(struct session *s, uint32_t bytes)
{
	struct wire_msg m = { .type = WIRE_CREDIT, .sid = s->id };

	m.u.credit.bytes = bytes;
	link_send(s->c->w, &m);
}

static void native_sent(struct conn *c)
{
	struct session *s = c->sess;
	size_t max = c->w->cfg->limits.max_out_bytes;

	if (s && s->owed >= max / 4 && session_announced(s) && !(c->flags & (CF_CLOSED | CF_PEER_GONE)) &&
	    conn_queued(c) < max / 2) {
		credit(s, s->owed);
		s->owed = 0;
	}
}

static void native_ended(struct conn *c, int reason)
{
	auth_job_forget(c);
	sm_close(c, reason);
}

static void native_free(struct conn *c)
{
	auth_job_forget(c);
	sm_close(c, WIRE_CLOSE_DISCONNECT);
	sasl_free(c->sasl);
	c->sasl = NULL;
	if (c->sess)
		session_free(c->w, c->sess);
}

const struct backend_ops backend_native = {
	.name = "native",
	.header = native_header,
	.element = native_element,
	.timeout = native_timeout,
	.sent = native_sent,
	.ended = native_ended,
	.free = native_free,
};

/* ---- the session server's side ------------------------------------------ */

static bool link_down_one(struct session *s, void *arg)
{
	struct conn *c = s->c;

	if (c && !(c->flags & CF_CLOSED) && (session_announced(s) || (c->flags & CF_WAIT_SM))) {
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		xmpp_error(c, "internal-server-error", NULL);
	}
	return true;
}

void native_link_down(struct worker *w)
{
	session_each(w, link_down_one, NULL);
}

static void on_bind_resp(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;
	const char *etype = "cancel", *cond = "internal-server-error";
	char *id = xmpp_esc_dup(s->bind_id, strlen(s->bind_id)), *jid = NULL, *buf = NULL;
	int n = -1;

	if (m->u.bind_resp.status == WIRE_OK && m->u.bind_resp.jid.len <= JID_MAX) {
		s->jid = strndup((const char *)m->u.bind_resp.jid.p, m->u.bind_resp.jid.len);
		jid = s->jid ? xmpp_esc_dup(s->jid, strlen(s->jid)) : NULL;
		if (id && jid)
			n = asprintf(&buf, "<iq type='result' id='%s'><bind xmlns='" NS_BIND
				     "'><jid>%s</jid></bind></iq>", id, jid);
		if (n < 0 || !session_set_state(s, SS_BOUND) || !xmpp_set_state(c, CS_SESSION)) {
			xmpp_error(c, "internal-server-error", NULL);
			goto done;
		}
		c->flags |= CF_BOUND;
		credit(s, (uint32_t)c->w->cfg->limits.max_out_bytes);
		conn_timer(c, c->w->now + c->w->cfg->timeouts.idle);
		log_info("session bound", "conn=%u jid=%s", c->idx, s->jid);
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
		xmpp_out(c, buf, (size_t)n);
done:
	free(buf);
	free(id);
	free(jid);
	free(s->bind_id);
	s->bind_id = NULL;
}

void native_on_frame(struct worker *w, const struct wire_msg *m)
{
	struct session *s = session_by_id(w, m->sid);
	struct conn *c = s ? s->c : NULL;

	if (!c || c->state == CS_CLOSING || (c->flags & CF_CLOSED))
		return; /* the session ended meanwhile; its close frame is on the way */
	switch (m->type) {
	case WIRE_CRED_RESP:
		if (c->sasl && (c->flags & CF_WAIT_SM) && !c->auth_job) {
			int r = sasl_creds(c->sasl, m->u.cred_resp.status, &m->u.cred_resp.sha1,
					   &m->u.cred_resp.sha256);
			c->flags &= ~CF_WAIT_SM;
			if (sasl_result(c, r) != STOP_DISCARD)
				xmpp_resume(c);
		}
		break;
	case WIRE_BIND_RESP:
		if (s->bind_id && (c->flags & CF_WAIT_SM)) {
			c->flags &= ~CF_WAIT_SM;
			on_bind_resp(c, m);
			xmpp_resume(c);
		}
		break;
	case WIRE_STANZA:
		s->owed += m->u.stanza.raw.len;
		if (c->flags & CF_BOUND) {
			xmpp_out(c, m->u.stanza.raw.p, m->u.stanza.raw.len);
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
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		xmpp_error(c, m->u.close.reason == WIRE_CLOSE_CONFLICT ? "conflict"
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
