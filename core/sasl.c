/*
 * sasl — see sasl.h for the contract.  Server side of PLAIN (RFC 4616) and
 * SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677) as a state machine that
 * does no I/O; all cryptography is tls/crypto (wolfCrypt).
 *
 * States (enum sasl_state) and the calls that move between them:
 *
 *   START --sasl_start(empty)--> INITIAL --sasl_step(data)--+
 *     |                                                      |
 *     +--sasl_start(data)------------------------------------+--> CREDS
 *   CREDS --sasl_creds()--> FINAL (SCRAM: server-first sent) | COMPUTE (PLAIN)
 *   FINAL --sasl_step(client-final)--> DONE
 *   COMPUTE --sasl_job_take(), sasl_computed()--> DONE
 *   any state --error--> FAILED (terminal; every later call fails again)
 *
 * Decisions this file makes where the RFCs leave a choice:
 *   - GS2 flag 'p' (client wants channel binding; we offer no -PLUS
 *     mechanism): malformed-request, as Prosody does.  'y' is accepted.
 *   - A username (SCRAM n=, PLAIN authcid) may be a localpart or a bare JID
 *     user@domain whose domain equals the stream's.  It is ASCII-lowercased
 *     and must satisfy jid_local_valid().  If not, or if the domain is
 *     another one, the exchange fails at once with not-authorized: no
 *     account can have such a name, so failing early reveals nothing about
 *     which accounts exist, and it spares the session server a lookup.
 *     An empty username is a syntax error: malformed-request.
 *   - An authzid (SCRAM a=, PLAIN authzid) must equal user@domain (ASCII
 *     case-insensitively) or the exchange fails at once with invalid-authzid.
 *   - Client-final: bad base64 in c= or p= is incorrect-encoding; a proof of
 *     the wrong length is malformed-request; a c= that does not decode to
 *     the exact GS2 header of client-first, or an r= that is not the
 *     combined nonce, is not-authorized (the RFC's channel-bindings-dont-
 *     match / other-error, which XMPP has no closer name for).
 *   - An unknown account (WIRE_NO_USER), or an account whose keys for this
 *     mechanism are missing or unusable, runs the whole exchange with a fake
 *     salt (first 16 bytes of HMAC-SHA256(process-random key, username)),
 *     4096 iterations, and fails at the end with not-authorized.  PLAIN for
 *     such a user still asks for the PBKDF2 job, so its timing matches a
 *     real account's wherever the caller runs it.
 *   - PLAIN is checked against the SCRAM-SHA-256 keys, or the SCRAM-SHA-1
 *     keys when the account has only those.
 *   - Any NUL byte inside a SCRAM message is malformed-request (RFC 5802
 *     value-char excludes it).  Unknown SCRAM extensions are ignored; the
 *     mandatory-extension attribute m= fails with malformed-request.
 *
 * Not done: SASLprep of passwords and usernames (non-ASCII passwords are
 * used as their raw UTF-8 bytes, which matches clients that send NFC text
 * without characters SASLprep would map).
 *
 * PLAIN's PBKDF2 is a job the caller runs (sasl.h): the state machine keeps
 * the expected StoredKey, hands out salt, iterations and password, and
 * finishes the cheap part (HMAC, hash, constant-time compare) in
 * sasl_computed().
 *
 * Memory: one calloc'd struct per authentication attempt, about 10 KiB,
 * wiped on free.  The only process-wide state is the fake-salt key, set
 * once under pthread_once.
 */
#include "core/sasl.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/jid.h"
#include "tls/crypto.h"

#define NONCE_RAW 24                     /* random bytes in our nonce part */
#define NONCE_B64 32                     /* their base64 length */
#define TEST_NONCE_MAX 64
#define SFIRST_MAX SASL_MAX_OUT          /* r=cnonce+snonce,s=b64(<=64),i=u32 */
#define FAKE_ITER 4096
#define FAKE_SALT 16
#define ITER_MAX (1u << 24)              /* more is corrupt data, not policy */

/* server-first holds a whole client nonce: the longest one still fits. */
_Static_assert(SFIRST_MAX >= 2 + SASL_MAX_MSG + TEST_NONCE_MAX + 3 +
				4 * ((WIRE_SALT_MAX + 2) / 3) + 3 + 10,
	       "SFIRST_MAX too small");
_Static_assert(NONCE_B64 <= TEST_NONCE_MAX, "nonce sizes");

enum sasl_state {
	SASL_ST_START,   /* created; nothing received yet */
	SASL_ST_INITIAL, /* empty challenge sent; the initial response comes by sasl_step */
	SASL_ST_CREDS,   /* user known; waiting for sasl_creds() */
	SASL_ST_FINAL,   /* SCRAM server-first sent; waiting for client-final */
	SASL_ST_COMPUTE, /* PLAIN: the PBKDF2 job is out; waiting for sasl_computed() */
	SASL_ST_DONE,    /* success returned: terminal */
	SASL_ST_FAILED   /* failure returned: terminal */
};

struct sasl {
	int mech;
	int state;                      /* enum sasl_state */
	int cond;                       /* enum sasl_cond after a failure */
	int hash;                       /* CRYPTO_SHA1 / CRYPTO_SHA256 */
	size_t dlen;                    /* digest length of hash */
	bool fake;                      /* no usable account: finish, then fail */

	char domain[JID_PART_MAX + 1];  /* the stream's domain, lowercased */
	size_t domain_len;
	char user[SASL_USER_MAX + 1];   /* canonical localpart, NUL-terminated */
	size_t user_len;

	/* SCRAM: the client-first message as received; the GS2 header is
	 * msg[0..gs2_len), client-first-bare is msg[gs2_len..msg_len), the
	 * client nonce msg[cnonce_off..cnonce_off + cnonce_len).
	 * PLAIN: the password, msg[0..msg_len), wiped once used. */
	uint8_t msg[SASL_MAX_MSG];
	size_t msg_len, gs2_len, cnonce_off, cnonce_len;

	/* SCRAM server-first; the combined nonce is sfirst[2..2 + nonce_len). */
	char sfirst[SFIRST_MAX];
	size_t sfirst_len, nonce_len;
	uint8_t stored_key[CRYPTO_MAX_DIGEST];
	uint8_t server_key[CRYPTO_MAX_DIGEST];

	/* PLAIN in COMPUTE: the derivation to run (password still in msg
	 * until sasl_job_take moves it out). */
	uint8_t job_salt[WIRE_SALT_MAX];
	size_t job_salt_len;
	uint32_t job_iter;
	bool job_taken;

	char test_nonce[TEST_NONCE_MAX + 1]; /* sasl_test_set_server_nonce */
	size_t test_nonce_len;

	char final[2 + 4 * ((CRYPTO_MAX_DIGEST + 2) / 3) + 1]; /* "v=" base64 */
	const uint8_t *out;
	size_t out_len;
};

/* ---- names ------------------------------------------------------------- */

static const char *const mech_names[] = {
	[SASL_PLAIN] = "PLAIN",
	[SASL_SCRAM_SHA1] = "SCRAM-SHA-1",
	[SASL_SCRAM_SHA256] = "SCRAM-SHA-256",
};

int sasl_mech_from_name(const char *name, size_t len)
{
	if (name == NULL)
		return 0;
	for (int m = SASL_PLAIN; m <= SASL_SCRAM_SHA256; m++)
		if (strlen(mech_names[m]) == len && memcmp(mech_names[m], name, len) == 0)
			return m;
	return 0;
}

const char *sasl_mech_name(int mech)
{
	return mech >= SASL_PLAIN && mech <= SASL_SCRAM_SHA256 ? mech_names[mech] : "unknown";
}

/* Unknown values (and SASL_C_NONE) map to not-authorized: the result goes
 * into a <failure/> element, which must name a defined condition. */
static const char *const cond_names[] = {
		[SASL_C_ABORTED] = "aborted",
		[SASL_C_ACCOUNT_DISABLED] = "account-disabled",
		[SASL_C_CREDENTIALS_EXPIRED] = "credentials-expired",
		[SASL_C_ENCRYPTION_REQUIRED] = "encryption-required",
		[SASL_C_INCORRECT_ENCODING] = "incorrect-encoding",
		[SASL_C_INVALID_AUTHZID] = "invalid-authzid",
		[SASL_C_INVALID_MECHANISM] = "invalid-mechanism",
		[SASL_C_MALFORMED_REQUEST] = "malformed-request",
		[SASL_C_MECHANISM_TOO_WEAK] = "mechanism-too-weak",
		[SASL_C_NOT_AUTHORIZED] = "not-authorized",
		[SASL_C_TEMPORARY_AUTH_FAILURE] = "temporary-auth-failure",
};

const char *sasl_cond_str(int cond)
{
	if (cond <= SASL_C_NONE || cond > SASL_C_TEMPORARY_AUTH_FAILURE)
		return "not-authorized";
	return cond_names[cond];
}

int sasl_cond_from_str(const char *cond)
{
	for (int i = SASL_C_NONE + 1; i <= SASL_C_TEMPORARY_AUTH_FAILURE; i++)
		if (!strcmp(cond_names[i], cond))
			return i;
	return SASL_C_NONE;
}

int sasl_mech(const struct sasl *s)
{
	return s->mech;
}

/* ---- lifetime ---------------------------------------------------------- */

/* NULL also for an unknown mechanism or a domain longer than a domainpart. */
struct sasl *sasl_new(int mech, const char *domain, size_t domain_len)
{
	struct sasl *s;

	if (mech < SASL_PLAIN || mech > SASL_SCRAM_SHA256 || domain_len > JID_PART_MAX ||
	    (domain_len && domain == NULL))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->mech = mech;
	s->state = SASL_ST_START;
	s->hash = mech == SASL_SCRAM_SHA1 ? CRYPTO_SHA1 : CRYPTO_SHA256;
	s->dlen = crypto_digest_len(s->hash);
	jid_fold(domain ? domain : "", domain_len, s->domain);
	s->domain_len = domain_len;
	return s;
}

void sasl_free(struct sasl *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, sizeof(*s));
	free(s);
}

void sasl_test_set_server_nonce(struct sasl *s, const char *nonce)
{
	size_t n;

	if (s == NULL || nonce == NULL)
		return;
	n = strlen(nonce);
	if (n == 0 || n > TEST_NONCE_MAX)
		return;
	/* Same alphabet as a client nonce: printable ASCII except ','. */
	for (size_t i = 0; i < n; i++)
		if (nonce[i] < 0x21 || nonce[i] > 0x7E || nonce[i] == ',')
			return;
	memcpy(s->test_nonce, nonce, n + 1);
	s->test_nonce_len = n;
}

const char *sasl_user(const struct sasl *s)
{
	return s ? s->user : "";
}

const uint8_t *sasl_out(const struct sasl *s, size_t *len)
{
	static const uint8_t none[1];

	if (s == NULL || s->out == NULL) {
		if (len)
			*len = 0;
		return none;
	}
	if (len)
		*len = s->out_len;
	return s->out;
}

int sasl_cond(const struct sasl *s)
{
	return s ? s->cond : SASL_C_NOT_AUTHORIZED;
}

/* ---- helpers ----------------------------------------------------------- */

static void wipe_secrets(struct sasl *s)
{
	explicit_bzero(s->msg, sizeof(s->msg));
	explicit_bzero(s->stored_key, sizeof(s->stored_key));
	explicit_bzero(s->server_key, sizeof(s->server_key));
	s->msg_len = 0;
}

static int fail(struct sasl *s, int cond)
{
	s->cond = cond;
	s->state = SASL_ST_FAILED;
	s->out = NULL;
	s->out_len = 0;
	wipe_secrets(s);
	return SASL_FAILURE;
}

/* a[0..n) lowercased equals the already-lowercase b[0..n). */
static bool eq_fold(const uint8_t *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c;
		jid_fold((const char *)a + i, 1, &c);
		if (c != b[i])
			return false;
	}
	return true;
}

/*
 * Take a username (localpart, or user@domain with the stream's domain),
 * canonicalise it into s->user.  Returns SASL_C_NONE or the condition.
 */
static int set_user(struct sasl *s, const uint8_t *name, size_t n)
{
	const uint8_t *at;
	size_t local_len = n;

	if (n == 0)
		return SASL_C_MALFORMED_REQUEST;
	at = memchr(name, '@', n);
	if (at) {
		size_t dl;

		local_len = (size_t)(at - name);
		dl = n - local_len - 1;
		if (dl != s->domain_len || !eq_fold(at + 1, s->domain, dl))
			return SASL_C_NOT_AUTHORIZED;
	}
	if (local_len == 0 || local_len > SASL_USER_MAX)
		return SASL_C_NOT_AUTHORIZED;
	jid_fold((const char *)name, local_len, s->user);
	s->user[local_len] = '\0';
	s->user_len = local_len;
	if (!jid_local_valid(s->user, local_len)) {
		s->user[0] = '\0';
		s->user_len = 0;
		return SASL_C_NOT_AUTHORIZED;
	}
	return SASL_C_NONE;
}

/* An authzid, when given, must name the authenticated user's bare JID. */
static bool authzid_ok(const struct sasl *s, const uint8_t *az, size_t n)
{
	return n == s->user_len + 1 + s->domain_len && eq_fold(az, s->user, s->user_len) &&
	       az[s->user_len] == '@' && eq_fold(az + s->user_len + 1, s->domain, s->domain_len);
}

/* The fake salt of an unknown user: stable per name, unpredictable. */
static uint8_t fake_key[32];
static bool fake_key_ok;
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;

static void fake_key_init(void)
{
	fake_key_ok = crypto_random(fake_key, sizeof(fake_key)) == 0;
}

static int fake_salt(const struct sasl *s, uint8_t salt[FAKE_SALT])
{
	uint8_t mac[32];

	pthread_once(&fake_once, fake_key_init);
	if (!fake_key_ok ||
	    crypto_hmac(CRYPTO_SHA256, fake_key, sizeof(fake_key), s->user, s->user_len, mac) != 0)
		return -1;
	memcpy(salt, mac, FAKE_SALT);
	return 0;
}

static bool record_usable(const struct wire_scram *r, size_t dlen)
{
	return r != NULL && r->key_len == dlen && r->salt_len >= 1 &&
	       r->salt_len <= WIRE_SALT_MAX && r->iter >= 1 && r->iter <= ITER_MAX;
}

/* ---- PLAIN ------------------------------------------------------------- */

/* message = [authzid] NUL authcid NUL passwd (RFC 4616). */
static int plain_first(struct sasl *s, const uint8_t *p, size_t n)
{
	const uint8_t *z1, *z2;
	size_t az_len, ac_len, pw_len;
	int cond;

	z1 = memchr(p, '\0', n);
	if (z1 == NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	az_len = (size_t)(z1 - p);
	z2 = memchr(z1 + 1, '\0', n - az_len - 1);
	if (z2 == NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	ac_len = (size_t)(z2 - z1 - 1);
	pw_len = n - az_len - 1 - ac_len - 1;
	if (ac_len == 0 || pw_len == 0 || memchr(z2 + 1, '\0', pw_len) != NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	if ((cond = set_user(s, z1 + 1, ac_len)) != SASL_C_NONE)
		return fail(s, cond);
	if (az_len && !authzid_ok(s, p, az_len))
		return fail(s, SASL_C_INVALID_AUTHZID);
	memcpy(s->msg, z2 + 1, pw_len);
	s->msg_len = pw_len;
	s->state = SASL_ST_CREDS;
	return SASL_NEED_CREDS;
}

/* Pick the keys to check the password against (or a fake salt) and ask for
 * the PBKDF2 job; sasl_computed() finishes. */
static int plain_creds(struct sasl *s, int status, const struct wire_scram *sha1,
		       const struct wire_scram *sha256)
{
	const struct wire_scram *rec = NULL;
	int hash = CRYPTO_SHA256;

	if (status == WIRE_OK) {
		if (record_usable(sha256, 32)) {
			rec = sha256;
		} else if (record_usable(sha1, 20)) {
			rec = sha1;
			hash = CRYPTO_SHA1;
		}
	}
	s->hash = hash;
	s->dlen = crypto_digest_len(hash);
	if (rec) {
		memcpy(s->job_salt, rec->salt, rec->salt_len);
		s->job_salt_len = rec->salt_len;
		s->job_iter = rec->iter;
		memcpy(s->stored_key, rec->stored_key, s->dlen);
	} else {
		_Static_assert(FAKE_SALT <= WIRE_SALT_MAX, "fake salt size");
		if (fake_salt(s, s->job_salt) != 0)
			return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
		s->fake = true;
		s->job_salt_len = FAKE_SALT;
		s->job_iter = FAKE_ITER;
	}
	s->state = SASL_ST_COMPUTE;
	s->out = NULL;
	s->out_len = 0;
	return SASL_NEED_COMPUTE;
}

int sasl_job_take(struct sasl *s, struct sasl_job *job)
{
	if (s == NULL || job == NULL || s->state != SASL_ST_COMPUTE || s->job_taken)
		return -1;
	job->hash = s->hash;
	job->iter = s->job_iter;
	memcpy(job->salt, s->job_salt, s->job_salt_len);
	job->salt_len = s->job_salt_len;
	memcpy(job->pass, s->msg, s->msg_len);
	job->pass_len = s->msg_len;
	explicit_bzero(s->msg, sizeof(s->msg));
	s->msg_len = 0;
	s->job_taken = true;
	return 0;
}

int sasl_job_run(struct sasl_job *job, uint8_t out[CRYPTO_MAX_DIGEST])
{
	size_t dlen;
	int rc;

	if (job == NULL || out == NULL)
		return -1;
	dlen = crypto_digest_len(job->hash);
	rc = dlen && job->pass_len <= sizeof(job->pass) && job->salt_len <= sizeof(job->salt)
		     ? crypto_pbkdf2(job->hash, job->pass, job->pass_len, job->salt, job->salt_len,
				     job->iter, out, dlen)
		     : -1;
	explicit_bzero(job->pass, sizeof(job->pass));
	job->pass_len = 0;
	return rc == 0 ? (int)dlen : -1;
}

/* StoredKey = H(HMAC(SaltedPassword, "Client Key")), compared with the
 * account's.  A fake account fails here, after the same work. */
int sasl_computed(struct sasl *s, const uint8_t *salted, size_t len)
{
	uint8_t ckey[CRYPTO_MAX_DIGEST], stored[CRYPTO_MAX_DIGEST];
	bool ok;
	int rc;

	if (s == NULL)
		return SASL_FAILURE;
	if (s->state != SASL_ST_COMPUTE)
		return s->state == SASL_ST_FAILED ? SASL_FAILURE
						  : fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	if (salted == NULL || len != s->dlen)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	rc = crypto_hmac(s->hash, salted, len, "Client Key", 10, ckey);
	if (rc == 0)
		rc = crypto_hash(s->hash, ckey, s->dlen, stored);
	ok = rc == 0 && crypto_equal(stored, s->stored_key, s->dlen) && !s->fake;
	explicit_bzero(ckey, sizeof(ckey));
	explicit_bzero(stored, sizeof(stored));
	if (rc != 0)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	if (!ok)
		return fail(s, SASL_C_NOT_AUTHORIZED);
	wipe_secrets(s);
	s->state = SASL_ST_DONE;
	s->out = NULL;
	s->out_len = 0;
	return SASL_SUCCESS;
}

/* ---- SCRAM syntax (RFC 5802 §7) ----------------------------------------- */

/* A cursor over one client message; the message holds no NUL (checked). */
struct cur {
	const uint8_t *p;
	size_t i, n;
};

static bool cur_lit(struct cur *c, const char *lit)
{
	size_t k = strlen(lit);

	if (c->n - c->i < k || memcmp(c->p + c->i, lit, k) != 0)
		return false;
	c->i += k;
	return true;
}

/* The value up to the next ',' or the end: [*off, *off + *len). */
static void cur_value(struct cur *c, size_t *off, size_t *len)
{
	const uint8_t *comma = memchr(c->p + c->i, ',', c->n - c->i);
	size_t end = comma ? (size_t)(comma - c->p) : c->n;

	*off = c->i;
	*len = end - c->i;
	c->i = end;
}

/* saslname: '=' only as "=2C" (',') or "=3D" ('='); at least one char.
 * Decodes into out (room for n bytes); returns the length or -1. */
static long saslname_decode(const uint8_t *p, size_t n, uint8_t *out)
{
	size_t k = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '=') {
			out[k++] = p[i];
			continue;
		}
		if (n - i >= 3 && p[i + 1] == '2' && p[i + 2] == 'C')
			out[k++] = ',';
		else if (n - i >= 3 && p[i + 1] == '3' && p[i + 2] == 'D')
			out[k++] = '=';
		else
			return -1;
		i += 2;
	}
	return (long)k;
}

/* printable = %x21-2B / %x2D-7E, at least one. */
static bool nonce_ok(const uint8_t *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7E || p[i] == ',')
			return false;
	return true;
}

/* attr-val = ALPHA "=" value, value = 1*value-char; 'm' is refused. */
static bool extension_ok(struct cur *c)
{
	size_t off, len;
	uint8_t a;

	if (c->n - c->i < 2)
		return false;
	a = c->p[c->i];
	if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || a == 'm' ||
	    c->p[c->i + 1] != '=')
		return false;
	c->i += 2;
	cur_value(c, &off, &len);
	return len > 0;
}

/*
 * client-first-message = gs2-header client-first-message-bare
 * gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
 * bare       = [ "m=" ... "," ] "n=" saslname "," "r=" c-nonce [ "," extensions ]
 */
static int scram_first(struct sasl *s, const uint8_t *p, size_t n)
{
	struct cur c = { p, 0, n };
	uint8_t name[SASL_MAX_MSG];
	size_t az_off = 0, az_len = 0, off, len;
	bool has_az = false;
	long k;
	int cond;

	if (memchr(p, '\0', n) != NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	/* Channel binding flag: see the file comment for 'p'. */
	if (!cur_lit(&c, "n,") && !cur_lit(&c, "y,"))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	if (cur_lit(&c, "a=")) {
		has_az = true;
		cur_value(&c, &az_off, &az_len);
	}
	if (!cur_lit(&c, ","))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	s->gs2_len = c.i;

	/* "m=" first would be the reserved mandatory extension. */
	if (!cur_lit(&c, "n="))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	cur_value(&c, &off, &len);
	k = saslname_decode(p + off, len, name);
	if (k < 0)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	if (!cur_lit(&c, ",r="))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	cur_value(&c, &s->cnonce_off, &s->cnonce_len);
	if (!nonce_ok(p + s->cnonce_off, s->cnonce_len))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	while (c.i < n)
		if (!cur_lit(&c, ",") || !extension_ok(&c))
			return fail(s, SASL_C_MALFORMED_REQUEST);

	if ((cond = set_user(s, name, (size_t)k)) != SASL_C_NONE)
		return fail(s, cond);
	if (has_az) {
		/* The decoded authzid is no longer than its encoding. */
		k = saslname_decode(p + az_off, az_len, name);
		if (k < 0)
			return fail(s, SASL_C_MALFORMED_REQUEST);
		if (!authzid_ok(s, name, (size_t)k))
			return fail(s, SASL_C_INVALID_AUTHZID);
	}
	memcpy(s->msg, p, n);
	s->msg_len = n;
	s->state = SASL_ST_CREDS;
	return SASL_NEED_CREDS;
}

static int scram_creds(struct sasl *s, int status, const struct wire_scram *sha1,
		       const struct wire_scram *sha256)
{
	const struct wire_scram *rec = s->mech == SASL_SCRAM_SHA1 ? sha1 : sha256;
	uint8_t fsalt[FAKE_SALT], nraw[NONCE_RAW];
	const uint8_t *salt;
	size_t slen, k;
	uint32_t iter;
	long b;
	int r;

	if (status == WIRE_OK && record_usable(rec, s->dlen)) {
		salt = rec->salt;
		slen = rec->salt_len;
		iter = rec->iter;
		memcpy(s->stored_key, rec->stored_key, s->dlen);
		memcpy(s->server_key, rec->server_key, s->dlen);
	} else {
		if (fake_salt(s, fsalt) != 0)
			return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
		s->fake = true;
		salt = fsalt;
		slen = sizeof(fsalt);
		iter = FAKE_ITER;
	}

	/* server-first = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count */
	memcpy(s->sfirst, "r=", 2);
	k = 2;
	memcpy(s->sfirst + k, s->msg + s->cnonce_off, s->cnonce_len);
	k += s->cnonce_len;
	if (s->test_nonce_len) {
		memcpy(s->sfirst + k, s->test_nonce, s->test_nonce_len);
		k += s->test_nonce_len;
	} else {
		if (crypto_random(nraw, sizeof(nraw)) != 0)
			return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
		b = crypto_b64_encode(nraw, sizeof(nraw), s->sfirst + k, sizeof(s->sfirst) - k);
		if (b != NONCE_B64)
			return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
		k += (size_t)b;
	}
	s->nonce_len = k - 2;
	memcpy(s->sfirst + k, ",s=", 3);
	k += 3;
	b = crypto_b64_encode(salt, slen, s->sfirst + k, sizeof(s->sfirst) - k);
	if (b < 0)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	k += (size_t)b;
	r = snprintf(s->sfirst + k, sizeof(s->sfirst) - k, ",i=%u", (unsigned)iter);
	if (r < 0 || (size_t)r >= sizeof(s->sfirst) - k)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	k += (size_t)r;
	s->sfirst_len = k;
	s->state = SASL_ST_FINAL;
	s->out = (const uint8_t *)s->sfirst;
	s->out_len = k;
	return SASL_CHALLENGE;
}

/*
 * client-final-message = "c=" base64 "," "r=" nonce [ "," extensions ] "," "p=" base64
 * AuthMessage = client-first-bare "," server-first "," client-final-without-proof
 */
static int scram_final(struct sasl *s, const uint8_t *p, size_t n)
{
	struct cur c = { p, 0, n };
	uint8_t cbind[SASL_MAX_MSG], proof[CRYPTO_MAX_DIGEST], sig[CRYPTO_MAX_DIGEST];
	uint8_t ckey[CRYPTO_MAX_DIGEST], h[CRYPTO_MAX_DIGEST];
	char am[SASL_MAX_MSG + 1 + SFIRST_MAX + 1 + SASL_MAX_MSG];
	size_t c_off, c_len, r_off, r_len, p_off = 0, p_len = 0, wp_len = 0, bare, am_len;
	long clen, plen;
	bool have_proof = false, ok;
	int rc;

	if (memchr(p, '\0', n) != NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	if (!cur_lit(&c, "c="))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	cur_value(&c, &c_off, &c_len);
	if (!cur_lit(&c, ",r="))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	cur_value(&c, &r_off, &r_len);
	if (!nonce_ok(p + r_off, r_len))
		return fail(s, SASL_C_MALFORMED_REQUEST);
	/* Extensions, then the proof, which must come last. */
	while (c.i < n) {
		size_t comma = c.i;
		if (!cur_lit(&c, ","))
			return fail(s, SASL_C_MALFORMED_REQUEST);
		if (cur_lit(&c, "p=")) {
			wp_len = comma;
			cur_value(&c, &p_off, &p_len);
			if (c.i != n)
				return fail(s, SASL_C_MALFORMED_REQUEST);
			have_proof = true;
			break;
		}
		if (!extension_ok(&c))
			return fail(s, SASL_C_MALFORMED_REQUEST);
	}
	if (!have_proof)
		return fail(s, SASL_C_MALFORMED_REQUEST);

	clen = crypto_b64_decode((const char *)p + c_off, c_len, cbind, sizeof(cbind));
	plen = crypto_b64_decode((const char *)p + p_off, p_len, proof, sizeof(proof));
	if (clen < 0 || plen < 0)
		return fail(s, SASL_C_INCORRECT_ENCODING);
	if ((size_t)plen != s->dlen)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	if ((size_t)clen != s->gs2_len || memcmp(cbind, s->msg, s->gs2_len) != 0)
		return fail(s, SASL_C_NOT_AUTHORIZED);
	if (r_len != s->nonce_len || memcmp(p + r_off, s->sfirst + 2, r_len) != 0)
		return fail(s, SASL_C_NOT_AUTHORIZED);

	bare = s->msg_len - s->gs2_len;
	memcpy(am, s->msg + s->gs2_len, bare);
	am[bare] = ',';
	memcpy(am + bare + 1, s->sfirst, s->sfirst_len);
	am[bare + 1 + s->sfirst_len] = ',';
	memcpy(am + bare + 2 + s->sfirst_len, p, wp_len);
	am_len = bare + 2 + s->sfirst_len + wp_len;

	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey. */
	rc = crypto_hmac(s->hash, s->stored_key, s->dlen, am, am_len, sig);
	for (size_t i = 0; i < s->dlen; i++)
		ckey[i] = proof[i] ^ sig[i];
	if (rc == 0)
		rc = crypto_hash(s->hash, ckey, s->dlen, h);
	ok = rc == 0 && crypto_equal(h, s->stored_key, s->dlen) && !s->fake;
	explicit_bzero(ckey, sizeof(ckey));
	if (rc != 0)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	if (!ok)
		return fail(s, SASL_C_NOT_AUTHORIZED);

	/* server-final = "v=" base64(HMAC(ServerKey, AuthMessage)) */
	if (crypto_hmac(s->hash, s->server_key, s->dlen, am, am_len, sig) != 0)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	memcpy(s->final, "v=", 2);
	if (crypto_b64_encode(sig, s->dlen, s->final + 2, sizeof(s->final) - 2) < 0)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	wipe_secrets(s);
	s->state = SASL_ST_DONE;
	s->out = (const uint8_t *)s->final;
	s->out_len = strlen(s->final);
	return SASL_SUCCESS;
}

/* ---- the public steps -------------------------------------------------- */

static int initial(struct sasl *s, const uint8_t *data, size_t len)
{
	if (len == 0 || len > SASL_MAX_MSG || data == NULL)
		return fail(s, SASL_C_MALFORMED_REQUEST);
	return s->mech == SASL_PLAIN ? plain_first(s, data, len) : scram_first(s, data, len);
}

int sasl_start(struct sasl *s, const uint8_t *data, size_t len)
{
	if (s == NULL)
		return SASL_FAILURE;
	if (s->state != SASL_ST_START)
		return s->state == SASL_ST_FAILED ? SASL_FAILURE
						  : fail(s, SASL_C_MALFORMED_REQUEST);
	if (len == 0) {
		/* Both mechanisms are client-first: ask for the initial response. */
		s->state = SASL_ST_INITIAL;
		s->out = NULL;
		s->out_len = 0;
		return SASL_CHALLENGE;
	}
	return initial(s, data, len);
}

int sasl_creds(struct sasl *s, int status, const struct wire_scram *sha1,
	       const struct wire_scram *sha256)
{
	if (s == NULL)
		return SASL_FAILURE;
	if (s->state != SASL_ST_CREDS)
		return s->state == SASL_ST_FAILED ? SASL_FAILURE
						  : fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	if (status != WIRE_OK && status != WIRE_NO_USER)
		return fail(s, SASL_C_TEMPORARY_AUTH_FAILURE);
	return s->mech == SASL_PLAIN ? plain_creds(s, status, sha1, sha256)
				     : scram_creds(s, status, sha1, sha256);
}

int sasl_step(struct sasl *s, const uint8_t *data, size_t len)
{
	if (s == NULL)
		return SASL_FAILURE;
	switch (s->state) {
	case SASL_ST_INITIAL:
		/* An empty answer to our empty challenge would loop forever. */
		return initial(s, data, len);
	case SASL_ST_FINAL:
		if (len == 0 || len > SASL_MAX_MSG || data == NULL)
			return fail(s, SASL_C_MALFORMED_REQUEST);
		return scram_final(s, data, len);
	case SASL_ST_FAILED:
		return SASL_FAILURE;
	default:
		/* A response while we wait for the session server, or after
		 * success: the client is not following the exchange. */
		return fail(s, SASL_C_MALFORMED_REQUEST);
	}
}
