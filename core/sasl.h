/*
 * sasl — server side of SASL PLAIN (RFC 4616), SCRAM-SHA-1 and SCRAM-SHA-256
 * (RFC 5802, RFC 7677), as a pure state machine: no I/O.  The edge feeds it
 * the decoded client data, asks the session server for the salted keys when
 * told to, and sends what it returns.  Passwords are never stored; PLAIN is
 * verified by deriving the SCRAM-SHA-256 StoredKey from the offered password.
 *
 * Channel binding: the edge does not offer -PLUS mechanisms, so a client
 * GS2 flag 'p' is refused and 'y' is accepted (RFC 5802 §6).
 *
 * PLAIN's key derivation (PBKDF2, thousands of HMACs: milliseconds) is the
 * one step too slow for an event loop, so it is not done here: sasl_creds()
 * returns SASL_NEED_COMPUTE, the caller takes the job (sasl_job_take), runs
 * it wherever it likes (sasl_job_run: pure, thread-safe) and hands the
 * result back (sasl_computed).  This file still does no I/O and starts no
 * thread.
 *
 * Lifetime: sasl_new() when <auth/> arrives, sasl_free() on success, failure
 * or connection close.  All client input is hostile: every parser bounds its
 * lengths (SASL_MAX_MSG) and reports malformed-request / incorrect-encoding.
 */
#ifndef XEDGE_SASL_H
#define XEDGE_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "parser/wire.h"
#include "tls/crypto.h"

#define SASL_MAX_MSG 4096        /* decoded client message bytes */
#define SASL_USER_MAX 1023       /* localpart bytes */
#define SASL_MAX_OUT (SASL_MAX_MSG + 256) /* sasl_out() bytes at most (server-first
                                           * echoes the client nonce) */

enum sasl_mech { SASL_PLAIN = 1, SASL_SCRAM_SHA1 = 2, SASL_SCRAM_SHA256 = 3 };

enum sasl_result {
	SASL_NEED_CREDS,   /* call sasl_creds() once the keys of s->user are known */
	SASL_NEED_COMPUTE, /* PLAIN: take the job (sasl_job_take), run it, call sasl_computed() */
	SASL_CHALLENGE,    /* send <challenge> with sasl_out() (may be empty) */
	SASL_SUCCESS,      /* send <success> with sasl_out() (may be empty) */
	SASL_FAILURE       /* send <failure> with sasl_cond_str(s->cond) */
};

/* RFC 6120 §6.5 failure conditions */
enum sasl_cond {
	SASL_C_NONE = 0,
	SASL_C_ABORTED,
	SASL_C_ACCOUNT_DISABLED,
	SASL_C_CREDENTIALS_EXPIRED,
	SASL_C_ENCRYPTION_REQUIRED,
	SASL_C_INCORRECT_ENCODING,
	SASL_C_INVALID_AUTHZID,
	SASL_C_INVALID_MECHANISM,
	SASL_C_MALFORMED_REQUEST,
	SASL_C_MECHANISM_TOO_WEAK,
	SASL_C_NOT_AUTHORIZED,
	SASL_C_TEMPORARY_AUTH_FAILURE
};

struct sasl;

/* Mechanism from its name (e.g. "SCRAM-SHA-256"); 0 when unknown. */
int sasl_mech_from_name(const char *name, size_t len);
const char *sasl_mech_name(int mech);
const char *sasl_cond_str(int cond);
/* The enum sasl_cond named cond (SASL_C_NONE when none is). */
int sasl_cond_from_str(const char *cond);
/* The session's enum sasl_mech. */
int sasl_mech(const struct sasl *s);

/* domain: the stream's domain (for authzid checks).  NULL on allocation failure. */
struct sasl *sasl_new(int mech, const char *domain, size_t domain_len);
void sasl_free(struct sasl *s);

/*
 * The initial response (decoded base64 of <auth/>'s text; empty for "=").
 * Returns SASL_NEED_CREDS (sasl_user() is the canonical localpart),
 * SASL_CHALLENGE (an empty challenge: the mechanism needs an initial
 * response and none came) or SASL_FAILURE.
 */
int sasl_start(struct sasl *s, const uint8_t *data, size_t len);

/*
 * The session server's answer.  status is enum wire_status (WIRE_NO_USER
 * proceeds with a fake salt so that unknown users are not revealed and fails
 * at the end with not-authorized; WIRE_TEMP_FAIL fails with
 * temporary-auth-failure).  Returns SASL_CHALLENGE (SCRAM server-first),
 * SASL_NEED_COMPUTE (PLAIN, also for an unknown user: the fake derivation
 * costs what a real one does) or SASL_FAILURE.
 */
int sasl_creds(struct sasl *s, int status, const struct wire_scram *sha1,
	       const struct wire_scram *sha256);

/*
 * PLAIN's key derivation, as a job that owns copies of everything it needs:
 * SaltedPassword = PBKDF2(hash, pass, salt, iter) (RFC 5802 §3).  About
 * 4.2 KiB; the password bytes are secret (wipe the job when done with it).
 */
struct sasl_job {
	int hash;                       /* CRYPTO_SHA1 / CRYPTO_SHA256 */
	uint32_t iter;
	size_t salt_len, pass_len;
	uint8_t salt[WIRE_SALT_MAX];
	uint8_t pass[SASL_MAX_MSG];     /* the offered password, not NUL-terminated */
};

/* After SASL_NEED_COMPUTE: copy the job into *job and wipe the password from
 * s.  0, or -1 when s is not waiting for a computation (or it was taken). */
int sasl_job_take(struct sasl *s, struct sasl_job *job);

/* Run a job: writes SaltedPassword to out and returns its length (20 or
 * 32), or -1.  Wipes job->pass.  No state: callable from any thread. */
int sasl_job_run(struct sasl_job *job, uint8_t out[CRYPTO_MAX_DIGEST]);

/*
 * The job's result: salted[0..len) from sasl_job_run, or NULL when it failed
 * (temporary-auth-failure).  Returns SASL_SUCCESS (PLAIN: nothing to send)
 * or SASL_FAILURE (not-authorized for a wrong password or unknown user).
 */
int sasl_computed(struct sasl *s, const uint8_t *salted, size_t len);

/* A <response/> (decoded).  Returns SASL_NEED_CREDS after an empty-challenge
 * retry of sasl_start, SASL_SUCCESS (server-final) or SASL_FAILURE. */
int sasl_step(struct sasl *s, const uint8_t *data, size_t len);

/* The user being authenticated (canonical localpart, NUL-terminated). */
const char *sasl_user(const struct sasl *s);
/* Raw (not base64) bytes to send with the last CHALLENGE/SUCCESS. */
const uint8_t *sasl_out(const struct sasl *s, size_t *len);
/* The failure condition after SASL_FAILURE. */
int sasl_cond(const struct sasl *s);

/*
 * Test hook: use nonce (printable ASCII except ',', 1..64 bytes) as the
 * server's part of the SCRAM nonce instead of 24 random bytes, so unit tests
 * can replay the RFC 5802 / RFC 7677 examples.  Call before sasl_creds().
 * An invalid nonce is ignored.  Never called by the server.
 */
void sasl_test_set_server_nonce(struct sasl *s, const char *nonce);

#endif
