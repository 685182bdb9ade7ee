/*
 * sm_account — the accounts' side of logins and in-band registration, as the
 * edge asks for them over the wire protocol: the canonical bare JID of a
 * (user, domain) pair, the SCRAM keys a SASL exchange needs (CRED_REQ, read
 * on the storage thread), XEP-0077 account creation, password change and
 * removal (REGISTER), and what a removed account's sessions go through.
 * The edge runs the XMPP side and derives the keys; nothing here sees a
 * password.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/jid.h"
#include "sm/sm_int.h"
#include "sm/store.h"

/* (user, domain) from the edge as a canonical bare JID of a served domain:
 * its length, or -1. */
int sm_account_bare(const struct sm *sm, struct wire_str user, struct wire_str domain,
		    char *out, size_t cap)
{
	char tmp[JID_MAX + 1];
	struct jid_view v;
	int n;

	if (user.len == 0 || user.len > JID_PART_MAX || domain.len == 0 ||
	    domain.len > JID_PART_MAX || memchr(user.p, 0, user.len) ||
	    memchr(domain.p, 0, domain.len))
		return -1;
	memcpy(tmp, user.p, user.len);
	tmp[user.len] = '@';
	memcpy(tmp + user.len + 1, domain.p, domain.len);
	if (jid_parse(tmp, user.len + 1 + domain.len, &v) < 0 || v.local_len != user.len ||
	    v.resource_len)
		return -1;
	n = jid_canon(&v, false, out, cap);
	if (n < 0 || !sm_domain_served(sm, out + v.local_len + 1, (size_t)n - v.local_len - 1))
		return -1;
	return n;
}

/* ---- credentials ------------------------------------------------------- */

struct cred_job {
	struct sm_job job;
	uint32_t link;
	uint64_t sid;
	struct wire_msg r;            /* the WIRE_CRED_RESP being built */
	char bare[JID_MAX + 1];
};

static void cred_run(struct sm_db *db, struct sm_job *j)
{
	struct cred_job *cj = (struct cred_job *)j;
	int rc = sm_db_user_get(db, cj->bare, &cj->r.u.cred_resp.sha1, &cj->r.u.cred_resp.sha256);

	cj->r.u.cred_resp.status = rc == 0 ? WIRE_OK : rc == -ENOENT ? WIRE_NO_USER : WIRE_TEMP_FAIL;
}

static void cred_reply(struct sm_link *l, struct wire_msg *r)
{
	if (r->u.cred_resp.status != WIRE_OK) {
		memset(&r->u.cred_resp.sha1, 0, sizeof(r->u.cred_resp.sha1));
		memset(&r->u.cred_resp.sha256, 0, sizeof(r->u.cred_resp.sha256));
	}
	sm_link_send(l, r);
}

static void cred_done(struct sm *sm, struct sm_job *j)
{
	struct cred_job *cj = (struct cred_job *)j;
	struct sm_link *l = sm_link_by_id(sm, cj->link);

	if (j->rc < 0)
		cj->r.u.cred_resp.status = WIRE_TEMP_FAIL;
	if (l)
		cred_reply(l, &cj->r);
	free(cj);
}

/* The SCRAM keys for the edge's SASL exchange: read on the storage thread. */
void sm_account_cred_req(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct cred_job *cj = calloc(1, sizeof(*cj));
	struct wire_msg r = { .type = WIRE_CRED_RESP, .sid = m->sid };

	/* Answered even without SESSION_OPEN: the keys do not depend on it, and
	 * the edge's SASL exchange is waiting for this reply. */
	if (!cj) {
		r.u.cred_resp.status = WIRE_TEMP_FAIL;
		cred_reply(l, &r);
		return;
	}
	cj->r = r;
	if (sm_account_bare(sm, m->u.cred_req.user, m->u.cred_req.domain, cj->bare,
		      sizeof(cj->bare)) < 0) {
		cj->r.u.cred_resp.status = WIRE_NO_USER;
		cred_reply(l, &cj->r);
		free(cj);
		return;
	}
	cj->link = l->id;
	cj->sid = m->sid;
	cj->job.run = cred_run;
	cj->job.done = cred_done;
	sm_store_submit(sm->store, &cj->job);
}

/* ---- in-band registration (XEP-0077) ----------------------------------- */

/*
 * XEP-0077 in-band registration; the edge ran the XMPP side and derived the
 * keys.  Creating needs no authenticated session (the sid only says where
 * to answer); a password change or a removal concerns only the account the
 * session authenticated as.  A removed account's sessions are all closed
 * (kicked), the asking one included, after the answer.
 */
struct reg_job {
	struct sm_job job;
	uint32_t link;
	uint64_t sid;
	uint8_t op;
	struct wire_scram k1, k256;
	char bare[JID_MAX + 1];
};

static void reg_run(struct sm_db *db, struct sm_job *j)
{
	struct reg_job *rj = (struct reg_job *)j;

	j->rc = rj->op == WIRE_REG_CREATE ? sm_db_user_add(db, rj->bare, &rj->k1, &rj->k256)
		: rj->op == WIRE_REG_PASSWORD ? sm_db_user_passwd(db, rj->bare, &rj->k1, &rj->k256)
		: sm_db_user_del(db, rj->bare);
}

static void reg_reply(struct sm_link *l, uint64_t sid, int status, unsigned op,
		      const char *bare)
{
	struct wire_msg r = { .type = WIRE_REGISTER_RESP, .sid = sid };

	r.u.reg_resp.status = (uint8_t)status;
	sm_link_send(l, &r);
	log_info("registration", "link=%u sid=%llu op=%u jid=\"%s\" status=%d", l->id,
		 (unsigned long long)sid, op, bare, status);
}

static void reg_done(struct sm *sm, struct sm_job *j)
{
	struct reg_job *rj = (struct reg_job *)j;
	struct sm_link *l = sm_link_by_id(sm, rj->link);
	int rc = j->rc;
	int status = rc == 0 ? WIRE_OK : rc == -EEXIST ? WIRE_CONFLICT
		     : rc == -ENOENT ? WIRE_NO_USER : WIRE_TEMP_FAIL;
	unsigned kicked;

	if (l)
		reg_reply(l, rj->sid, status, rj->op, rj->bare);
	if (rj->op == WIRE_REG_REMOVE && status == WIRE_OK) {
		kicked = sm_account_deleted(sm, rj->bare);
		log_info("account removed in-band", "jid=\"%s\" sessions_closed=%u", rj->bare,
			 kicked);
	}
	free(rj);
}

/*
 * XEP-0077 in-band registration; the edge ran the XMPP side and derived the
 * keys.  Creating needs no authenticated session (the sid only says where
 * to answer); a password change or a removal concerns only the account the
 * session authenticated as.  A removed account's sessions are all closed
 * (kicked), the asking one included, after the answer.
 */
void sm_account_register(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct sm_session *s = sm_session_by_sid(l, m->sid);
	const struct wire_scram *k1 = &m->u.reg.sha1, *k256 = &m->u.reg.sha256;
	bool keys = k1->key_len == 20 && k256->key_len == 32 && k1->salt_len && k256->salt_len &&
		    k1->iter && k256->iter;
	struct reg_job *rj = calloc(1, sizeof(*rj));

	if (!rj) {
		reg_reply(l, m->sid, WIRE_TEMP_FAIL, m->u.reg.op, "-");
		return;
	}
	if (sm_account_bare(sm, m->u.reg.user, m->u.reg.domain, rj->bare, sizeof(rj->bare)) < 0 ||
	    (m->u.reg.op != WIRE_REG_REMOVE && !keys)) {
		reg_reply(l, m->sid, WIRE_BAD_REQUEST, m->u.reg.op, "-");
		free(rj);
		return;
	}
	if (m->u.reg.op != WIRE_REG_CREATE &&
	    (!s || s->state < SM_SESS_AUTHED || !s->bare || strcmp(s->bare, rj->bare) != 0)) {
		reg_reply(l, m->sid, WIRE_NOT_ALLOWED, m->u.reg.op, rj->bare);
		free(rj);
		return;
	}
	rj->link = l->id;
	rj->sid = m->sid;
	rj->op = m->u.reg.op;
	rj->k1 = *k1;
	rj->k256 = *k256;
	rj->job.run = reg_run;
	rj->job.done = reg_done;
	sm_store_submit(sm->store, &rj->job);
}

unsigned sm_account_deleted(struct sm *sm, const char *bare)
{
	struct sm_user *u = sm_user_find(sm, bare, strlen(bare));
	unsigned kicked = 0;

	/* A record something still holds must not act for the account any more. */
	if (u)
		u->exists = false;

	/* Every session of the account, bound or still authenticating, on every link. */
	for (struct sm_link *k = sm->links; k; k = k->next) {
		struct sm_session *t, *next;

		for (t = k->shead; t; t = next) {
			next = t->lnext;
			if (t->bare && strcmp(t->bare, bare) == 0) {
				/* Ending t ends nothing else on this link: next stays valid. */
				sm_session_kick(sm, t, WIRE_CLOSE_KICKED);
				kicked++;
			}
		}
	}
	return kicked;
}
