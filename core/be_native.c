/*
 * be_native — the native backend: a c2s stream whose session lives on our
 * session servers.  SASL runs at the edge (the session server supplies the
 * salted keys), bind is asked of the session server, and every stanza after
 * it is checked, `from`-stamped and forwarded over the wire protocol
 * (docs/protocol.md) with the routing facts already parsed.  Frames from
 * the session server come back here (native_on_frame).
 *
 * The session (session.h) carries the wire identity; it is created when
 * the session server first hears of this client (SESSION_OPEN), on the
 * shard that owns the account about to authenticate (native_sm_open: the SASL
 * user, or the account being registered), and every frame of it then goes
 * over that shard's link (native_slink).  A shard that goes away ends its sessions,
 * except those with XEP-0198, which are bound again once it is back
 * (core/rebind.c).
 *
 * Session states (enum sess_state, session_set_state): new -> open
 * (SESSION_OPEN sent) -> authed (AUTHED sent; the stream has CF_AUTHED) ->
 * bound (BIND_RESP ok; CF_BOUND, CS_SESSION) -> closed (SESSION_CLOSE sent,
 * or received).
 *
 * Delivery reports (docs/protocol.md): the session counts the stanza bytes
 * it handed to the client's output (rx); after a completed send that left
 * nothing queued anywhere (conn_drained) they are all written, and when a
 * tracked stanza is among them the session server is told (DELIVERED); a
 * last report goes right before SESSION_CLOSE.
 *
 * XEP-0198 stream management (core/smacks.h) hooks in at five places:
 * elements in its namespace go to smacks_element(); a client stanza counts
 * as handled once native_element() is done with it; a stream that ends may
 * leave its session detached instead of closed (native_ended); frames for a
 * detached or arriving session go to smacks; and a session's close returns
 * what its client never acknowledged (native_session_close).  Delivery
 * reports of such a session follow the client's acks.
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
#include <time.h>

#include "core/csi.h"
#include "core/iplimit.h"
#include "core/link.h"
#include "core/log.h"
#include "core/native_int.h"
#include "core/query.h"
#include "core/rtx.h"
#include "core/sasl.h"
#include "core/session.h"
#include "core/smacks.h"
#include "core/upload.h"
#include "core/worker.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

#define NS_IQ_AUTH "jabber:iq:auth"
#define NS_FEAT_REGISTER "http://jabber.org/features/iq-register"
#define NS_FEAT_IQ_AUTH "http://jabber.org/features/iq-auth"
#define REG_SALT 16         /* the keys of a registration: as `xedgectl user add` */
#define REG_ITER 4096

/* The link to the session server the session of c is open on. */
struct link *native_slink(const struct conn *c)
{
	return &c->w->links[c->sess->shard];
}

/* The link to the shard owning user@ the stream's domain (user canonical). */
static struct link *user_link(const struct conn *c, const char *user)
{
	char jid[JID_MAX + 1];
	int n = snprintf(jid, sizeof(jid), "%s@%s", user, c->domain);

	if (n <= 0 || (size_t)n >= sizeof(jid))
		return link_first(c->w);
	return link_of_jid(c->w, (const uint8_t *)jid, (size_t)n);
}

static const char *sess_jid(const struct conn *c)
{
	return c->sess && c->sess->jid ? c->sess->jid : NULL;
}

void native_delivered(struct worker *w, struct session *s)
{
	struct wire_msg m = { .type = WIRE_DELIVERED, .sid = s->id };

	/* The session server counts from the bind it knows (a rebind restarts it). */
	m.u.delivered.bytes = s->delivered > s->rx_origin ? s->delivered - s->rx_origin : 0;
	link_send(&w->links[s->shard], &m);
	s->reported = s->delivered;
	s->track = false;
}

void native_session_close(struct worker *w, struct session *s, int reason)
{
	struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = s->id };

	if (!session_announced(s))
		return;
	/* XEP-0198 §4: what the client never acknowledged goes back first. */
	smacks_return(w, s);
	/* The last word on what reached the client (docs/protocol.md). */
	if (s->delivered != s->reported)
		native_delivered(w, s);
	m.u.close.reason = (uint8_t)reason;
	link_send(&w->links[s->shard], &m);
	session_set_state(s, SS_CLOSED);
}

static void sm_close(struct conn *c, int reason)
{
	if (c->sess)
		native_session_close(c->w, c->sess, reason);
}

static void send_features(struct conn *c)
{
	const struct config *cfg = c->w->cfg;

	if (c->flags & CF_AUTHED) {
		/* RFC 6121 §2.6.1 roster versioning, §3.4 pre-approval: the sm does both. */
		char buf[512];
		snprintf(buf, sizeof(buf), "<stream:features><bind xmlns='" NS_BIND "'/><session xmlns='" NS_SESSION
			 "'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/>"
			 "<sub xmlns='urn:xmpp:features:pre-approval'/><csi xmlns='" NS_CSI "'/>%s</stream:features>",
			 cfg->smacks.enabled ? "<sm xmlns='" NS_SM "'/>" : "");
		xmpp_outs(c, buf);
	} else if (c->flags & CF_TLS) {
		/* XEP-0077 §8, XEP-0078 §3: the optional features, on encrypted
		 * streams only (both carry passwords in the clear). */
		char buf[512];
		snprintf(buf, sizeof(buf), "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-256"
			 "</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>%s%s"
			 "</stream:features>", cfg->reg.enabled ? "<register xmlns='" NS_FEAT_REGISTER "'/>" : "",
			 cfg->legacy_auth ? "<auth xmlns='" NS_FEAT_IQ_AUTH "'/>" : "");
		xmpp_outs(c, buf);
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

void native_auth_job_free(struct auth_job *a)
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

/* One SCRAM key set for a new password, with a fresh random salt. */
static int keys_derive(int hash, const char *pass, size_t len, struct wire_scram *k)
{
	k->iter = REG_ITER;
	k->salt_len = REG_SALT;
	k->key_len = (uint8_t)crypto_digest_len(hash);
	return crypto_random(k->salt, REG_SALT) < 0 ||
	       crypto_scram_keys(hash, pass, len, k->salt, REG_SALT, REG_ITER, k->stored_key, k->server_key) < 0
	       ? -1 : 0;
}

/* On an offload thread: touches only the job. */
void native_auth_job_run(struct offload_job *j)
{
	struct auth_job *a = (struct auth_job *)j;

	if (a->kind == AJ_LOGIN) {
		a->len = sasl_job_run(&a->in, a->salted);
		return;
	}
	a->rc = keys_derive(CRYPTO_SHA1, a->pass, a->pass_len, &a->sha1) < 0 ||
		keys_derive(CRYPTO_SHA256, a->pass, a->pass_len, &a->sha256) < 0 ? -1 : 0;
	explicit_bzero(a->pass, sizeof(a->pass));
}

void native_auth_job_done(struct offload_job *j);

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

/* ---- iq errors with codes (XEP-0077 §9, XEP-0078 §4) ---------------------- */

/* An error for the iq whose id is id[0..n); the request's payload is not
 * echoed (both XEPs: not where passwords travel).  text: ours, no markup. */
void native_iq_fail(struct conn *c, const char *id, size_t n, const struct iq_err *e, const char *text)
{
	char *eid = xmpp_esc_dup(id, n), *buf = NULL;
	int len = eid ? asprintf(&buf, "<iq type='error' id='%s'><error code='%d' type='%s'><%s xmlns='"
				 NS_STANZAS "'/>%s%s%s</error></iq>", eid, e->code, e->type, e->cond,
				 text ? "<text xmlns='" NS_STANZAS "'>" : "", text ? text : "",
				 text ? "</text>" : "") : -1;

	if (len > 0)
		xmpp_out(c, buf, (size_t)len);
	free(buf);
	free(eid);
}

void native_iq_fail_st(struct conn *c, const struct xs_stanza *st, const struct iq_err *e, const char *text)
{
	native_iq_fail(c, st->id.p, st->id.len, e, text);
}

void native_iq_ok(struct conn *c, const char *id, size_t n)
{
	char *eid = xmpp_esc_dup(id, n), *buf = NULL;
	int len = eid ? asprintf(&buf, "<iq type='result' id='%s'/>", eid) : -1;

	if (len > 0)
		xmpp_out(c, buf, (size_t)len);
	free(buf);
	free(eid);
}

/* The pending XEP-0078 login (s->bind_id) is over, one way or the other. */
static void legacy_done(struct conn *c)
{
	struct session *s = c->sess;

	c->flags &= ~CF_LEGACY;
	if (s) {
		free(s->bind_id);
		free(s->resource);
		s->bind_id = s->resource = NULL;
	}
}

/* Metrics: the mechanism index of struct wstats (4: XEP-0078 iq:auth). */
static int login_mech(const struct conn *c)
{
	return (c->flags & CF_LEGACY) ? 4 : c->sasl ? sasl_mech(c->sasl) : 0;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A credentials or bind request went out for s: time its answer. */
static void rtt_start(struct session *s)
{
	s->t_req_us = mono_us();
}

static void rtt_end(struct worker *w, struct session *s)
{
	if (s->t_req_us) {
		mhist_observe(&w->st.sm_rtt, mono_us() - s->t_req_us);
		s->t_req_us = 0;
	}
}

static int sasl_failure(struct conn *c, const char *cond)
{
	char buf[256];

	STAT_INC(c->w->st.sasl_failed[login_mech(c)][sasl_cond_from_str(cond)]);

	if (c->flags & CF_LEGACY) {
		/* XEP-0078 §2: wrong credentials are not-authorized (401). */
		struct session *s = c->sess;
		if (s && s->bind_id)
			native_iq_fail(c, s->bind_id, strlen(s->bind_id),
				strcmp(cond, "temporary-auth-failure") ? &E_CREDENTIALS : &E_BUSY, NULL);
		legacy_done(c);
	} else {
		snprintf(buf, sizeof(buf), "<failure xmlns='" NS_SASL "'><%s/></failure>", cond);
		xmpp_outs(c, buf);
		c->flags |= CF_SASL_FAILED;
	}
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

/*
 * Tell the session server that owns `user` (a canonical localpart; NULL: not
 * known yet, the session's shard or the first) about this client, once.  A
 * session not yet authenticated that now needs another shard (a stream that
 * registers one account and logs in as another) is closed on the first and
 * opened on the second.  -1 when that link cannot take requests.
 */
int native_sm_open(struct conn *c, const char *user)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN };
	struct session *s = c->sess;
	struct link *l = user ? user_link(c, user) : s ? native_slink(c) : link_first(c->w);

	if (!link_usable(l))
		return -1;
	if (s && s->state == SS_OPEN && s->shard != l->shard) {
		struct wire_msg x = { .type = WIRE_SESSION_CLOSE, .sid = s->id };

		x.u.close.reason = WIRE_CLOSE_NORMAL;
		link_send(native_slink(c), &x);
		if (!session_set_state(s, SS_NEW))
			return -1;
	}
	if (s && s->state != SS_NEW)
		return s->state == SS_CLOSED ? -1 : 0;
	if (!s && !(s = session_new(c->w, c)))
		return -1;
	s->shard = l->shard;
	s->t_open_us = mono_us();
	m.sid = s->id;
	m.u.open.flags = (uint8_t)(((c->flags & CF_TLS) ? WIRE_OPEN_TLS : 0) |
				   ((c->flags & CF_DIRECT_TLS) ? WIRE_OPEN_DIRECT_TLS : 0));
	m.u.open.addr = wire_s(c->peer, strlen(c->peer));
	s->open_flags = m.u.open.flags;
	if (link_send(l, &m) < 0)
		return -1;
	return session_set_state(s, SS_OPEN) ? 0 : -1;
}

static int legacy_bind(struct conn *c);

/* Act on what the SASL state machine returned. */
static int sasl_result(struct conn *c, int r)
{
	size_t len;
	const uint8_t *data;

	switch (r) {
	case SASL_NEED_CREDS: {
		struct wire_msg m = { .type = WIRE_CRED_REQ };
		const char *user = sasl_user(c->sasl);

		if (native_sm_open(c, user) < 0)
			return sasl_failure(c, "temporary-auth-failure");
		m.sid = c->sess->id;
		m.u.cred_req.user = wire_s(user, strlen(user));
		m.u.cred_req.domain = wire_s(c->domain, strlen(c->domain));
		if (link_send(native_slink(c), &m) < 0)
			return sasl_failure(c, "temporary-auth-failure");
		rtt_start(c->sess);
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
			a->job.run = native_auth_job_run;
			a->job.done = native_auth_job_done;
			a->w = w;
			a->sid = c->sess->id;
			a->kind = AJ_LOGIN;
			a->len = -1;
			e = w->offload ? offload_submit(w->offload, &w->offload_port, &a->job) : -ESHUTDOWN;
		}
		if (e < 0) {
			if (a)
				native_auth_job_free(a);
			log_warn("cannot queue a login's key derivation", "conn=%u err=%s", c->idx, strerror(-e));
			return sasl_failure(c, "temporary-auth-failure");
		}
		c->auth_job = a;
		log_debug("login key derivation queued", "conn=%u iter=%u", c->idx, (unsigned)a->in.iter);
		xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
		return xmpp_set_state(c, CS_SASL) ? STOP_KEEP : STOP_DISCARD;
	}
	case SASL_CHALLENGE:
		if (c->flags & CF_LEGACY)   /* PLAIN with its message never asks */
			return sasl_failure(c, "malformed-request");
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
		link_send(native_slink(c), &m);
		STAT_INC(c->w->st.logins[login_mech(c)]);
		if (!(c->flags & CF_LEGACY))
			sasl_reply(c, "success", data, len);   /* data lives in c->sasl */
		sasl_free(c->sasl);
		c->sasl = NULL;
		c->flags |= CF_AUTHED;
		if (c->flags & CF_LEGACY)
			return legacy_bind(c);
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
void native_auth_job_done(struct offload_job *j)
{
	struct auth_job *a = (struct auth_job *)j;
	struct session *s = session_by_id(a->w, a->sid);
	struct conn *c = s ? s->c : NULL;
	int r;

	if (!c || c->auth_job != a || c->state == CS_CLOSING || (c->flags & CF_CLOSED) ||
	    (a->kind == AJ_LOGIN && !c->sasl)) {
		/* (ended() forgets the job, so only the first test should ever hold.) */
		if (c && c->auth_job == a)
			c->auth_job = NULL;
		log_debug("login key derivation dropped: its stream stopped waiting", "worker=%d ran=%d",
			  a->w->id, a->len > 0);
		native_auth_job_free(a);
		return;
	}
	c->auth_job = NULL;
	c->flags &= ~CF_WAIT_SM;
	if (a->kind == AJ_KEYS) {
		native_register_keys_done(c, a);
		native_auth_job_free(a);
		if (!(c->flags & CF_WAIT_SM))
			xmpp_resume(c);
		return;
	}
	r = sasl_computed(c->sasl, a->len > 0 ? a->salted : NULL, a->len > 0 ? (size_t)a->len : 0);
	native_auth_job_free(a);
	if (sasl_result(c, r) != STOP_DISCARD)
		xmpp_resume(c);
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
		const char *mech_name = xmpp_attr((const char *)p, s->start_tag_end, "mechanism", &ml);
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

/* ---- XEP-0078 jabber:iq:auth (XEP-0077 registration: core/register.c) ---- */

/* Addressed to the server itself: no 'to', or our domain (the XEPs' home-server
 * case); a register iq to another entity (a MUC service) is routed instead. */
static bool to_server(const struct conn *c, const struct xs_stanza *s)
{
	struct jid_view v;
	char canon[JID_MAX + 1];

	if (!s->has_to)
		return true;
	if (jid_parse(s->to.p, s->to.len, &v) < 0 || v.local_len || v.resource_len ||
	    jid_canon(&v, false, canon, sizeof(canon)) < 0)
		return false;
	return strcmp(canon, xmpp_domain(c)) == 0;
}

static int legacy_bind(struct conn *c)
{
	struct session *s = c->sess;
	struct wire_msg m = { .type = WIRE_BIND_REQ, .sid = s->id };

	log_info("authenticated (jabber:iq:auth)", "conn=%u user=%s@%s peer=%s", c->idx, s->user, c->domain,
		 c->peer);
	if (!xmpp_set_state(c, CS_NEGOTIATE)) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	m.u.bind_req.user = wire_s(s->user, strlen(s->user));
	m.u.bind_req.domain = wire_s(c->domain, strlen(c->domain));
	m.u.bind_req.resource = wire_s(s->resource, strlen(s->resource));
	if (!link_usable(native_slink(c)) || link_send(native_slink(c), &m) < 0) {
		native_iq_fail(c, s->bind_id, strlen(s->bind_id), &E_BUSY, NULL);
		legacy_done(c);
		return GO_ON;
	}
	rtt_start(s);
	xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
	return STOP_KEEP;
}

/* jabber:iq:auth before authentication (XEP-0078).  f: username, password,
 * resource, digest. */
static int iq_auth(struct conn *c, const struct xs_stanza *st, const uint8_t *p, size_t n,
		   struct query_field *f, uint8_t *msg, size_t cap)
{
	const struct config *cfg = c->w->cfg;
	struct session *s;
	unsigned others;
	size_t len;

	if (!cfg->legacy_auth) {
		native_iq_fail_st(c, st, &E_UNAVAILABLE, NULL);   /* §2: no non-SASL authentication */
		return GO_ON;
	}
	/* §5: a domain may disable plaintext logins on unencrypted streams; with
	 * plaintext off and no digest (only SCRAM keys are stored), non-SASL
	 * authentication is not offered on this stream at all. */
	if (!(c->flags & CF_TLS)) {
		native_iq_fail_st(c, st, &E_UNAVAILABLE, "jabber:iq:auth needs an encrypted stream.");
		return GO_ON;
	}
	/* §2, §5: after a failed SASL attempt, a policy-violation stream error. */
	if (c->flags & CF_SASL_FAILED) {
		xmpp_error(c, "policy-violation", NULL);
		return STOP_DISCARD;
	}
	if (xs_streq(&st->type, "get")) {
		/* §2: the fields; no <digest/>: we hold no password to hash. */
		char *eid = xmpp_esc_dup(st->id.p, st->id.len), *buf = NULL;
		int blen = eid ? asprintf(&buf, "<iq type='result' id='%s'><query xmlns='" NS_IQ_AUTH "'><username/>"
					  "<password/><resource/></query></iq>", eid) : -1;
		if (blen > 0)
			xmpp_out(c, buf, (size_t)blen);
		free(buf);
		free(eid);
		return GO_ON;
	}
	if (c->sasl || c->auth_job || (c->sess && c->sess->reg_id)) {
		native_iq_fail_st(c, st, &E_UNEXPECTED, NULL);
		return GO_ON;
	}
	if (st->children != 1 || query_parse((const char *)p, n, NS_IQ_AUTH, f, 4, &others) < 0) {
		native_iq_fail_st(c, st, &E_BAD_REQUEST, NULL);
		return GO_ON;
	}
	/* §2: username, resource and a password are required: not-acceptable. */
	if (!f[0].present || f[0].len == 0 || f[0].overflow || !f[1].present || f[1].len == 0 ||
	    f[1].overflow || !f[2].present || f[2].overflow ||
	    !jid_resource_valid(f[2].buf, f[2].len)) {
		native_iq_fail_st(c, st, &E_NOT_ACCEPTABLE, NULL);
		return GO_ON;
	}
	/* PLAIN's message: the same checks and the same key derivation as SASL
	 * PLAIN (sasl.c), so a login is verified one way whatever the protocol. */
	len = 1 + f[0].len + 1 + f[1].len;
	if (len > cap) {
		native_iq_fail_st(c, st, &E_CREDENTIALS, NULL);
		return GO_ON;
	}
	msg[0] = 0;
	memcpy(msg + 1, f[0].buf, f[0].len);
	msg[1 + f[0].len] = 0;
	memcpy(msg + 2 + f[0].len, f[1].buf, f[1].len);
	if (native_sm_open(c, NULL) < 0 || !(c->sasl = sasl_new(SASL_PLAIN, c->domain, strlen(c->domain)))) {
		native_iq_fail_st(c, st, &E_BUSY, NULL);
		return GO_ON;
	}
	s = c->sess;
	free(s->bind_id);
	free(s->resource);
	s->bind_id = strndup(st->id.p, st->id.len);
	s->resource = strndup(f[2].buf, f[2].len);
	c->flags |= CF_LEGACY;
	if (!s->bind_id || !s->resource)
		return sasl_failure(c, "temporary-auth-failure");
	return sasl_result(c, sasl_start(c->sasl, msg, len));
}

static int on_iq_auth(struct conn *c, const struct xs_stanza *st, const uint8_t *p, size_t n)
{
	char user[JID_PART_MAX + 1], pass[REG_PASS_MAX + 1], res[JID_PART_MAX + 1], digest[64];
	uint8_t msg[SASL_MAX_MSG];
	struct query_field f[4] = {
		{ .name = "username", .buf = user, .cap = sizeof(user) },
		{ .name = "password", .buf = pass, .cap = sizeof(pass) },
		{ .name = "resource", .buf = res, .cap = sizeof(res) },
		{ .name = "digest", .buf = digest, .cap = sizeof(digest) },
	};
	int r = iq_auth(c, st, p, n, f, msg, sizeof(msg));

	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(msg, sizeof(msg));
	return r;
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
	if (!link_usable(native_slink(c)) || link_send(native_slink(c), &m) < 0) {
		xmpp_stanza_error(c, st, "wait", "internal-server-error", NULL);
		return GO_ON;
	}
	rtt_start(s);
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
	/* XEP-0198: a copy is kept until the session server confirms it (its
	 * h waits for that); core/rtx.h. */
	if ((c->sess->smk ? rtx_send(native_slink(c), &m, c->sess, smacks_in_next(c->sess), RTX_CLIENT)
			  : link_send(native_slink(c), &m)) < 0) {
		xmpp_stanza_error(c, s, "wait", "resource-constraint", jid);
		return GO_ON;
	}
	smacks_forwarded(c->sess);   /* XEP-0198: the session server counts it (core/adopt.c) */
	/* Kept before <enable/> too (clients send their initial presence right
	 * after the bind): external shards restart and move (core/members.h). */
	if ((c->sess->smk || c->w->cfg->backend_address) && m.u.stanza.kind == WIRE_KIND_PRESENCE &&
	    !s->has_to)
		rebind_keep_presence(c->sess, &m);
	if (link_congested(native_slink(c))) {
		/* The session server is not keeping up: stop reading from this
		 * client rather than queueing without bound (resumed in link.c). */
		log_debug("reads paused: the session server link is backed up", "conn=%u", c->idx);
		conn_pause(c, PAUSE_LINK);
		return STOP_KEEP;
	}
	return GO_ON;
}

static void stanza_out(struct conn *c, const uint8_t *raw, size_t len, int kind, bool track);

static int client_stanza(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n);

static int native_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	int r;

	if (xs_streq(&s->ns, NS_SASL) && (c->state == CS_NEGOTIATE || c->state == CS_SASL))
		return on_sasl(c, s, p);
	if (xs_streq(&s->ns, NS_CSI) && (c->flags & CF_AUTHED) && c->sess)
		return csi_element(c, s, stanza_out);
	if (xs_streq(&s->ns, NS_SM) && (c->flags & CF_AUTHED) && c->sess)
		return smacks_element(c, s, p);
	r = client_stanza(c, s, p, n);
	/* XEP-0198: handled once forwarded or answered (not when it ended the stream). */
	if (c->sess && c->sess->smk && c->state == CS_SESSION)
		smacks_handled(c->sess);
	return r;
}

/* A stanza (or anything else outside the negotiation namespaces) from the client. */
static int client_stanza(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	bool client_ns;

	client_ns = xs_streq(&s->ns, NS_CLIENT) &&
		    (xs_streq(&s->local, "message") || xs_streq(&s->local, "presence") || xs_streq(&s->local, "iq"));
	if (!client_ns) {
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (!(c->flags & CF_AUTHED)) {
		/* Before authentication only the server's own register and
		 * iq:auth queries are answered (as iq errors when off); anything
		 * else ends the stream. */
		if (xs_streq(&s->local, "iq") && s->has_id && (xs_streq(&s->type, "get") || xs_streq(&s->type, "set")) &&
		    to_server(c, s)) {
			if (xs_streq(&s->child_ns, NS_REGISTER))
				return native_register_iq(c, s, p, n);
			if (xs_streq(&s->child_ns, NS_IQ_AUTH))
				return on_iq_auth(c, s, p, n);
		}
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
	if (xs_streq(&s->local, "iq") && xs_streq(&s->child_ns, NS_REGISTER) && to_server(c, s) &&
	    (xs_streq(&s->type, "get") || xs_streq(&s->type, "set")))
		return native_register_iq(c, s, p, n);
	if (upload_is_request(c->w->cfg, s))
		return upload_slot_iq(c, s, p, n);   /* XEP-0363: the edge gives the slots */
	return forward(c, s, p, n);
}

/* The session server did not answer in time (CF_WAIT_SM): a temporary
 * error now beats a hang until the auth timeout.  Later logins fail at once
 * until it speaks again (link.stalled, cleared in link.c). */
static void native_timeout(struct conn *c)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct link *l;

	if (c->auth_job) {
		/* The offload pool is backlogged, not the session server. */
		log_warn("key derivation not done in time: offload pool busy", "conn=%u after=%us",
			 c->idx, w->cfg->timeouts.session_server);
		c->flags &= ~CF_WAIT_SM;
		if (c->auth_job->kind == AJ_KEYS) {
			auth_job_forget(c);
			if (s && s->reg_id) {
				native_iq_fail(c, s->reg_id, strlen(s->reg_id), &E_BUSY, NULL);
				free(s->reg_id);
				s->reg_id = NULL;
			}
			xmpp_resume(c);
			return;
		}
		if (sasl_failure(c, "temporary-auth-failure") != STOP_DISCARD)
			xmpp_resume(c);
		return;
	}
	if (s && s->smk_join) {
		/* Another worker, not the session server, is slow. */
		c->flags &= ~CF_WAIT_SM;
		smacks_join_timeout(c);
		xmpp_resume(c);
		return;
	}
	if (adopt_timeout(c))
		return;   /* XEP-0198 resumption on another edge (core/adopt.c) */
	l = s ? native_slink(c) : link_first(w);
	if (!l->stalled)
		log_warn("session server not answering", "worker=%d shard=%u after=%us", w->id, l->shard,
			 w->cfg->timeouts.session_server);
	l->stalled = true;
	c->flags &= ~CF_WAIT_SM;
	if (c->sasl) {
		if (sasl_failure(c, "temporary-auth-failure") == STOP_DISCARD)
			return;
	} else if (s && s->reg_id) {
		native_iq_fail(c, s->reg_id, strlen(s->reg_id), &E_INTERNAL, NULL);
		free(s->reg_id);
		s->reg_id = NULL;
	} else if (s && s->bind_id && (c->flags & CF_LEGACY)) {
		native_iq_fail(c, s->bind_id, strlen(s->bind_id), &E_INTERNAL, NULL);
		legacy_done(c);
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
void native_grant(struct worker *w, struct session *s, uint32_t bytes)
{
	struct wire_msg m = { .type = WIRE_CREDIT, .sid = s->id };

	m.u.credit.bytes = bytes;
	link_send(&w->links[s->shard], &m);
}

void native_credit(struct worker *w, struct session *s)
{
	if (s->owed) {
		native_grant(w, s, s->owed);
		s->owed = 0;
	}
}

static void native_sent(struct conn *c)
{
	struct session *s = c->sess;
	size_t max = c->w->cfg->limits.max_out_bytes;

	/* Delivery reports: once nothing is queued anywhere, every stanza byte
	 * handed to the output so far is on the socket. */
	if (s && s->rx != s->delivered && conn_drained(c) && smacks_written_cap(s, s->rx) > s->delivered) {
		/* With XEP-0198, acks count what came after <enable/>. */
		s->delivered = smacks_written_cap(s, s->rx);
		if (s->track && session_announced(s))
			native_delivered(c->w, s);
	}
	if (s && s->owed >= max / 4 && session_announced(s) && !(c->flags & (CF_CLOSED | CF_PEER_GONE)) &&
	    conn_queued(c) < max / 2) {
		native_credit(c->w, s);
	}
}

static void native_ended(struct conn *c, int reason)
{
	auth_job_forget(c);
	if (smacks_detach(c, reason))
		return;   /* XEP-0198: the session waits for a <resume/> */
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
	const struct link *l = arg;
	struct conn *c = s->c;

	if (c && !(c->flags & CF_CLOSED) && s->shard == l->shard && s->smk && s->state == SS_BOUND &&
	    s->user && s->jid && c->state == CS_SESSION && l->addrlen) {
		/* Rebinding (core/rebind.c): the client waits for the shard to return. */
		s->rebind = 1;
		conn_pause(c, PAUSE_REBIND);
		log_info("session waits for its shard to return", "conn=%u jid=%s shard=%u", c->idx,
			 s->jid, s->shard);
		return true;
	}
	if (c && !(c->flags & CF_CLOSED) && s->shard == l->shard &&
	    (session_announced(s) || (c->flags & CF_WAIT_SM))) {
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		xmpp_error(c, "internal-server-error", NULL);
	}
	return true;
}

void native_link_down(struct link *l)
{
	rtx_link_down(l);
	smacks_link_down(l);
	session_each(l->w, link_down_one, l);
}

/* A bind the session server accepted: the session is open for stanzas.
 * false when it cannot go on (the caller sends a stream error). */
static bool bound(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;

	s->jid = strndup((const char *)m->u.bind_resp.jid.p, m->u.bind_resp.jid.len);
	if (!s->jid || !session_set_state(s, SS_BOUND) || !xmpp_set_state(c, CS_SESSION))
		return false;
	c->flags |= CF_BOUND;
	mhist_observe(&c->w->st.login, mono_us() - s->t_open_us);
	native_grant(c->w, s, (uint32_t)c->w->cfg->limits.max_out_bytes);
	conn_timer(c, c->w->now + c->w->cfg->timeouts.idle);
	log_info("session bound", "conn=%u jid=%s", c->idx, s->jid);
	return true;
}

/* XEP-0078: the login's answer is the bind's (§2: result, or the error). */
static void legacy_bind_resp(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;
	const struct iq_err *e = &E_BUSY;

	if (m->u.bind_resp.status == WIRE_OK && m->u.bind_resp.jid.len <= JID_MAX) {
		if (!bound(c, m)) {
			legacy_done(c);
			xmpp_error(c, "internal-server-error", NULL);
			return;
		}
		native_iq_ok(c, s->bind_id, strlen(s->bind_id));
		legacy_done(c);
		return;
	}
	switch (m->u.bind_resp.status) {
	case WIRE_BAD_REQUEST: e = &E_NOT_ACCEPTABLE; break;
	case WIRE_CONFLICT: e = &E_CONFLICT; break;
	case WIRE_NOT_ALLOWED: e = &E_NOT_ALLOWED; break;
	}
	native_iq_fail(c, s->bind_id, strlen(s->bind_id), e, NULL);
	legacy_done(c);
}

static void on_bind_resp(struct conn *c, const struct wire_msg *m)
{
	struct session *s = c->sess;
	const char *etype = "cancel", *cond = "internal-server-error";
	char *id, *jid = NULL, *buf = NULL;
	int n = -1;

	if (c->flags & CF_LEGACY) {
		legacy_bind_resp(c, m);
		return;
	}
	id = xmpp_esc_dup(s->bind_id, strlen(s->bind_id));
	if (m->u.bind_resp.status == WIRE_OK && m->u.bind_resp.jid.len <= JID_MAX) {
		if (!bound(c, m)) {
			xmpp_error(c, "internal-server-error", NULL);
			goto done;
		}
		jid = xmpp_esc_dup(s->jid, strlen(s->jid));
		if (id && jid)
			n = asprintf(&buf, "<iq type='result' id='%s'><bind xmlns='" NS_BIND
				     "'><jid>%s</jid></bind></iq>", id, jid);
		if (n < 0) {
			xmpp_error(c, "internal-server-error", NULL);
			goto done;
		}
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

/* A stanza from the session server onto the client's stream (csi_out_fn). */
static void stanza_out(struct conn *c, const uint8_t *raw, size_t len, int kind, bool track)
{
	struct session *s = c->sess;

	s->rx += len;    /* before the write: XEP-0198 keeps it with its end offset */
	if (track)
		s->track = true;
	smacks_next(s, kind & 3, track);
	xmpp_out(c, raw, len);
	conn_count_stanza(c, 1, kind & 3, len);
}

void native_attach(struct conn *c, struct session *s)
{
	struct worker *w = c->w;
	struct session *mine = c->sess;

	/* The session this stream authenticated with was never bound: it ends. */
	if (mine) {
		native_session_close(w, mine, WIRE_CLOSE_NORMAL);
		session_free(w, mine);
	}
	c->sess = s;
	s->c = c;
	c->flags |= CF_BOUND;
	if (!xmpp_set_state(c, CS_SESSION)) {
		xmpp_error(c, "internal-server-error", NULL);
		return;
	}
	conn_timer(c, w->now + w->cfg->timeouts.idle);
}

void native_on_frame(struct link *l, const struct wire_msg *m)
{
	struct worker *w = l->w;
	struct session *s = session_by_id(w, m->sid);
	struct conn *c = s ? s->c : NULL;

	if (s && s->shard != l->shard)
		return; /* moved to another shard meanwhile */
	if (s && s->smk && smacks_hold(w, s, m))
		return;   /* XEP-0198: arriving from another worker; older frames first */
	if (s && !c && s->smk) {
		smacks_detached_frame(w, s, m);   /* XEP-0198: kept for a resumption */
		return;
	}
	if (!c || c->state == CS_CLOSING || (c->flags & CF_CLOSED))
		return; /* the session ended meanwhile; its close frame is on the way */
	switch (m->type) {
	case WIRE_CRED_RESP:
		rtt_end(w, s);
		if (c->sasl && (c->flags & CF_WAIT_SM) && !c->auth_job) {
			int r = sasl_creds(c->sasl, m->u.cred_resp.status, &m->u.cred_resp.sha1,
					   &m->u.cred_resp.sha256);
			c->flags &= ~CF_WAIT_SM;
			if (sasl_result(c, r) != STOP_DISCARD)
				xmpp_resume(c);
		}
		break;
	case WIRE_BIND_RESP:
		rtt_end(w, s);
		if (s->rebind == 2) {
			rebind_done(w, s, m);
			break;
		}
		if (s->bind_id && (c->flags & CF_WAIT_SM)) {
			c->flags &= ~CF_WAIT_SM;
			on_bind_resp(c, m);
			xmpp_resume(c);
		}
		break;
	case WIRE_STANZA:
		s->owed += m->u.stanza.raw.len;
		if (!(c->flags & CF_BOUND) || (s->csi && csi_hold(c, m)))
			break;
		csi_flush(c, stanza_out);   /* what was held goes first */
		stanza_out(c, m->u.stanza.raw.p, m->u.stanza.raw.len, m->u.stanza.kind,
			   m->u.stanza.flags & WIRE_STANZA_TRACK);
		smacks_over_bound(c);       /* XEP-0198: a client that never acknowledges */
		break;
	case WIRE_ADOPT_RESP:
		adopt_resp(c, m);   /* XEP-0198 resumption on another edge (core/adopt.c) */
		break;
	case WIRE_REGISTER_RESP:
		if (s->reg_id && (c->flags & CF_WAIT_SM) && !c->auth_job) {
			c->flags &= ~CF_WAIT_SM;
			native_register_resp(c, m->u.reg_resp.status);
			xmpp_resume(c);
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
