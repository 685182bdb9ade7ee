/*
 * register — XEP-0077 in-band registration for the native backend: the
 * form, account creation before login, password change and account removal
 * after it (encrypted streams only).  The edge derives the SCRAM keys on the
 * offload pool (fresh salts, as `xedgectl user add`) and sends them in a
 * WIRE_REGISTER to the shard that owns the account; the session server
 * never sees a password.  Its answer comes back through native_on_frame()
 * (native_register_resp).
 */
#include "core/native_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/iplimit.h"
#include "core/link.h"
#include "core/log.h"
#include "core/session.h"
#include "core/worker.h"
#include "core/xmpp.h"

/* A username as the XEPs carry it: a localpart, folded as SASL folds it
 * (sasl.c), so that the account registered is the one a login names. */
static bool user_canon(const struct query_field *f, char *out)
{
	if (!f->present || f->overflow || f->len == 0 || f->len > JID_PART_MAX)
		return false;
	jid_fold(f->buf, f->len, out);
	out[f->len] = '\0';
	return jid_local_valid(out, f->len);
}

/* Hand the new password to the offload pool (REG_CREATE, REG_PASSWORD); the
 * answer continues in native_register_keys_done().  false: could not (replied). */
static bool register_submit(struct conn *c, const struct xs_stanza *st, int op, const char *user,
			    const struct query_field *pw)
{
	struct worker *w = c->w;
	struct session *s;
	struct auth_job *a;
	int e = -ENOMEM;

	if (native_sm_open(c, user) < 0) {
		native_iq_fail_st(c, st, &E_BUSY, NULL);
		return false;
	}
	s = c->sess;
	free(s->reg_id);
	s->reg_id = strndup(st->id.p, st->id.len);
	a = s->reg_id ? calloc(1, sizeof(*a)) : NULL;
	if (a) {
		a->job.run = native_auth_job_run;
		a->job.done = native_auth_job_done;
		a->w = w;
		a->sid = s->id;
		a->kind = AJ_KEYS;
		a->rc = -1;
		snprintf(a->user, sizeof(a->user), "%s", user);
		memcpy(a->pass, pw->buf, pw->len);
		a->pass_len = pw->len;
		e = w->offload ? offload_submit(w->offload, &w->offload_port, &a->job) : -ESHUTDOWN;
	}
	if (e < 0) {
		if (a)
			native_auth_job_free(a);
		free(s->reg_id);
		s->reg_id = NULL;
		log_warn("cannot queue a registration's key derivation", "conn=%u err=%s", c->idx, strerror(-e));
		native_iq_fail_st(c, st, &E_BUSY, NULL);
		return false;
	}
	s->reg_op = (uint8_t)op;
	c->auth_job = a;
	xmpp_wait_backend(c, w->cfg->timeouts.session_server);
	return true;
}

/* Tell the session server (the keys are derived, or none are needed). */
static void register_send(struct conn *c, const char *user, const struct auth_job *a)
{
	struct session *s = c->sess;
	struct wire_msg m = { .type = WIRE_REGISTER, .sid = s->id };
	const char *dom = xmpp_domain(c);

	m.u.reg.op = s->reg_op;
	m.u.reg.user = wire_s(user, strlen(user));
	m.u.reg.domain = wire_s(dom, strlen(dom));
	if (a) {
		m.u.reg.sha1 = a->sha1;
		m.u.reg.sha256 = a->sha256;
	}
	if (link_send(native_slink(c), &m) < 0) {
		native_iq_fail(c, s->reg_id, strlen(s->reg_id), &E_BUSY, NULL);
		free(s->reg_id);
		s->reg_id = NULL;
		return;
	}
	explicit_bzero(&m, sizeof(m));
	xmpp_wait_backend(c, c->w->cfg->timeouts.session_server);
}

/* Back from the offload pool (native_auth_job_done: the stream still waits). */
void native_register_keys_done(struct conn *c, struct auth_job *a)
{
	struct session *s = c->sess;

	if (!s || !s->reg_id)
		return;
	if (a->rc < 0) {
		log_warn("registration key derivation failed", "conn=%u", c->idx);
		native_iq_fail(c, s->reg_id, strlen(s->reg_id), &E_INTERNAL, NULL);
		free(s->reg_id);
		s->reg_id = NULL;
		return;
	}
	register_send(c, a->user, a);
}

/* The session server's answer to WIRE_REGISTER. */
void native_register_resp(struct conn *c, int status)
{
	struct session *s = c->sess;
	const struct iq_err *e = &E_BUSY;
	char *id = s->reg_id;
	int op = s->reg_op;

	s->reg_id = NULL;
	log_info("registration answered", "conn=%u op=%d status=%d peer=%s", c->idx, op, status, c->peer);
	switch (status) {
	case WIRE_OK:
		native_iq_ok(c, id, strlen(id));
		free(id);
		if (op == WIRE_REG_REMOVE) {
			/* XEP-0077 §3.2: the result, then <not-authorized/> and the
			 * end of every session of the account (the sm kicks them). */
			xmpp_error(c, "not-authorized", NULL);
		}
		return;
	case WIRE_CONFLICT: e = &E_CONFLICT; break;
	case WIRE_BAD_REQUEST: e = op == WIRE_REG_CREATE ? &E_NOT_ACCEPTABLE : &E_BAD_REQUEST; break;
	case WIRE_NOT_ALLOWED: e = &E_NOT_ALLOWED; break;
	case WIRE_NO_USER: e = &E_REG_REQUIRED; break;
	}
	native_iq_fail(c, id, strlen(id), e, NULL);
	free(id);
}

/* jabber:iq:register to the server: before authentication (the form, a new
 * account) or on a bound session (<registered/>, a password change,
 * <remove/>).  f: username, password, remove (buffers owned by the caller). */
static int register_iq(struct conn *c, const struct xs_stanza *st, const uint8_t *p, size_t n,
		       struct query_field *f)
{
	const struct config *cfg = c->w->cfg;
	bool bound = c->flags & CF_BOUND, get = xs_streq(&st->type, "get");
	char user[JID_PART_MAX + 1];
	unsigned others;

	if (!cfg->reg.enabled) {
		/* XEP-0077 §3.1: no in-band registration is service-unavailable;
		 * §3.2 / §3.3: no in-band removal / password change, not-allowed. */
		native_iq_fail_st(c, st, get || !bound ? &E_UNAVAILABLE : &E_NOT_ALLOWED, NULL);
		return GO_ON;
	}
	if (!bound && !(c->flags & CF_TLS)) {
		native_iq_fail_st(c, st, &E_UNAVAILABLE, "In-band registration needs an encrypted stream.");
		return GO_ON;
	}
	if (get) {
		char *buf = NULL, *eid = xmpp_esc_dup(st->id.p, st->id.len);
		int len = -1;
		/* §3.1: an authenticated entity is registered: <registered/>, its
		 * username, an empty password. */
		if (eid && bound)
			len = asprintf(&buf, "<iq type='result' id='%s'><query xmlns='" NS_REGISTER "'><registered/>"
				       "<instructions>You are registered. Send a new password to change it, or "
				       "remove to delete the account.</instructions><username>%s</username><password/>"
				       "</query></iq>", eid, c->sess->user);
		else if (eid)
			len = asprintf(&buf, "<iq type='result' id='%s'><query xmlns='" NS_REGISTER "'><instructions>"
				       "Choose a username and password to register with this server.</instructions>"
				       "<username/><password/></query></iq>", eid);
		if (len > 0)
			xmpp_out(c, buf, (size_t)len);
		free(buf);
		free(eid);
		return GO_ON;
	}
	if (c->sasl || c->auth_job || (c->sess && c->sess->reg_id)) {
		native_iq_fail_st(c, st, &E_UNEXPECTED, NULL);   /* a login or registration is under way */
		return GO_ON;
	}
	if (st->children != 1 || query_parse((const char *)p, n, NS_REGISTER, f, 3, &others) < 0) {
		native_iq_fail_st(c, st, &E_BAD_REQUEST, NULL);
		return GO_ON;
	}
	if (f[2].present) {
		/* §3.2: removal needs a registered (authenticated) entity, and
		 * <remove/> must be the only child. */
		if (!bound) {
			native_iq_fail_st(c, st, &(struct iq_err){ "cancel", "unexpected-request", 400 }, NULL);
		} else if (others || f[0].present || f[1].present) {
			native_iq_fail_st(c, st, &E_BAD_REQUEST, NULL);
		} else if (!link_usable(native_slink(c)) || !(c->sess->reg_id = strndup(st->id.p, st->id.len))) {
			native_iq_fail_st(c, st, &E_BUSY, NULL);
		} else {
			c->sess->reg_op = WIRE_REG_REMOVE;
			register_send(c, c->sess->user, NULL);
			return c->sess->reg_id ? STOP_KEEP : GO_ON;
		}
		return GO_ON;
	}
	if (!bound) {
		uint8_t verdict;
		/* §3.1: all the fields, non-empty, and a name that can be a
		 * localpart; else not-acceptable. */
		if (!user_canon(&f[0], user) || !f[1].present || f[1].overflow || f[1].len == 0) {
			native_iq_fail_st(c, st, &E_NOT_ACCEPTABLE, NULL);
			return GO_ON;
		}
		/* §3.1.1: too many registrations may be refused with not-acceptable. */
		verdict = (uint8_t)iplimit_register(c->ip, cfg->reg.rate, c->w->now);
		if (verdict != IPLIMIT_OK) {
			log_info("registration refused: rate limit", "conn=%u peer=%s why=\"%s\"", c->idx, c->peer,
				 iplimit_verdict_str(verdict));
			native_iq_fail_st(c, st, &E_NOT_ACCEPTABLE, "Too many registrations from your address; try again later.");
			return GO_ON;
		}
		return register_submit(c, st, WIRE_REG_CREATE, user, &f[1]) ? STOP_KEEP : GO_ON;
	}
	/* §3.3: a password change.  Not over an unencrypted stream; an empty
	 * password keeps the old one (an incomplete request); a username, when
	 * given, must be the account's own. */
	if (!(c->flags & CF_TLS)) {
		native_iq_fail_st(c, st, &E_UNSAFE, NULL);
		return GO_ON;
	}
	if (!f[1].present || f[1].len == 0 || f[1].overflow) {
		native_iq_fail_st(c, st, &E_BAD_REQUEST, NULL);
		return GO_ON;
	}
	if (f[0].present && (!user_canon(&f[0], user) || strcmp(user, c->sess->user) != 0)) {
		native_iq_fail_st(c, st, &E_FORBIDDEN, NULL);
		return GO_ON;
	}
	return register_submit(c, st, WIRE_REG_PASSWORD, c->sess->user, &f[1]) ? STOP_KEEP : GO_ON;
}

int native_register_iq(struct conn *c, const struct xs_stanza *st, const uint8_t *p, size_t n)
{
	char user[JID_PART_MAX + 1], pass[REG_PASS_MAX + 1], rm[1];
	struct query_field f[3] = {
		{ .name = "username", .buf = user, .cap = sizeof(user) },
		{ .name = "password", .buf = pass, .cap = sizeof(pass) },
		{ .name = "remove", .buf = rm, .cap = sizeof(rm) },
	};
	int r = register_iq(c, st, p, n, f);

	explicit_bzero(pass, sizeof(pass));
	return r;
}

/* XEP-0078 after the password checked out (sasl_result, CF_LEGACY): bind the
 * resource the request named; on_bind_resp answers the iq. */
