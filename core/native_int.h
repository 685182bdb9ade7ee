/*
 * native_int — what the native backend's files share (be_native.c, and
 * register.c for XEP-0077); not for other modules.
 */
#ifndef XEDGE_NATIVE_INT_H
#define XEDGE_NATIVE_INT_H

#include "core/offload.h"
#include "core/query.h"
#include "core/sasl.h"
#include "core/worker-t.h"
#include "parser/jid.h"
#include "tls/crypto.h"

#define NS_REGISTER "jabber:iq:register"
#define REG_PASS_MAX 1023   /* password bytes at registration, change or iq:auth login */

/* Key derivations out on the offload pool; freed on the worker by done().
 * AJ_LOGIN: PLAIN's (or a jabber:iq:auth login's) check of a password;
 * AJ_KEYS: new SCRAM keys for a registration or a password change. */
enum { AJ_LOGIN = 1, AJ_KEYS };

struct auth_job {
	struct offload_job job;        /* first: the job is the container */
	struct worker *w;
	uint64_t sid;                  /* the session waiting for it (session_by_id) */
	int kind;
	/* AJ_LOGIN */
	struct sasl_job in;            /* wiped by sasl_job_run */
	uint8_t salted[CRYPTO_MAX_DIGEST];
	int len;                       /* sasl_job_run: bytes in salted, or -1 */
	/* AJ_KEYS */
	char user[JID_PART_MAX + 1];   /* canonical localpart */
	char pass[REG_PASS_MAX + 1];   /* wiped by the run */
	size_t pass_len;
	struct wire_scram sha1, sha256;
	int rc;                        /* 0, or -1 when the derivation failed */
};

/* Both XEPs want the old numeric code beside the condition (XEP-0086). */
struct iq_err {
	const char *type, *cond;
	int code;
};

static const struct iq_err E_UNAVAILABLE = { "cancel", "service-unavailable", 503 };
static const struct iq_err E_NOT_ACCEPTABLE = { "modify", "not-acceptable", 406 };
static const struct iq_err E_CONFLICT = { "cancel", "conflict", 409 };
static const struct iq_err E_BAD_REQUEST = { "modify", "bad-request", 400 };
static const struct iq_err E_NOT_ALLOWED = { "cancel", "not-allowed", 405 };
static const struct iq_err E_FORBIDDEN = { "auth", "forbidden", 403 };
static const struct iq_err E_REG_REQUIRED = { "auth", "registration-required", 407 };
static const struct iq_err E_UNEXPECTED = { "wait", "unexpected-request", 400 };
static const struct iq_err E_UNSAFE = { "modify", "not-authorized", 401 };   /* XEP-0077 §3.3 */
static const struct iq_err E_CREDENTIALS = { "auth", "not-authorized", 401 }; /* XEP-0078 */
static const struct iq_err E_BUSY = { "wait", "resource-constraint", 500 };
static const struct iq_err E_INTERNAL = { "wait", "internal-server-error", 500 };

/* Offload jobs (be_native.c): run on a pool thread, done on the worker. */
void native_auth_job_free(struct auth_job *a);
void native_auth_job_run(struct offload_job *j);
void native_auth_job_done(struct offload_job *j);

/* An iq error (the XEP-0086 code beside the condition) or an empty result. */
void native_iq_fail(struct conn *c, const char *id, size_t n, const struct iq_err *e, const char *text);
void native_iq_fail_st(struct conn *c, const struct xs_stanza *st, const struct iq_err *e, const char *text);
void native_iq_ok(struct conn *c, const char *id, size_t n);

/* The session server that owns `user` hears of c (be_native.c); -1: it cannot. */
int native_sm_open(struct conn *c, const char *user);
/* The link of c's session. */
struct link *native_slink(const struct conn *c);

/* register.c: XEP-0077 in-band registration. */
int native_register_iq(struct conn *c, const struct xs_stanza *st, const uint8_t *p, size_t n);
void native_register_keys_done(struct conn *c, struct auth_job *a);
void native_register_resp(struct conn *c, int status);

#endif
