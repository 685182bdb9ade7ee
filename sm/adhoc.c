/*
 * sm_adhoc — XEP-0050 ad-hoc commands on the server's domain, and the
 * XEP-0133 service administration commands among them.
 *
 * What is offered:
 *   ping                       everyone (a one-stage command: "Pong")
 *   admin#add-user             the JIDs of `admins:` only (config), each a
 *   admin#delete-user          two-stage command: execute returns the form
 *   admin#change-user-password (status executing, the one action complete),
 *   admin#get-online-users-list  the submitted form (action complete or
 *   admin#announce             execute) completes it, cancel cancels it
 *   admin#get-online-users-num admins, one stage (the result form at once)
 * disco#items on the node http://jabber.org/protocol/commands lists the
 * commands the asker may run (XEP-0050 §2.2), disco#info on a command node
 * describes it (§2.3); the domain's disco#info lists the commands feature
 * (the sm/iq.c row).  Requests come from sessions of ours only.
 *
 * Errors are XEP-0050 §4.6's: an action that is not one of the five is
 * bad-request + <malformed-action/>; one the command's current stage does
 * not accept, bad-request + <bad-action/>; a sessionid never issued (or
 * issued to another session or for another node), bad-request +
 * <bad-sessionid/>; one that ended (completed, canceled, timed out after
 * SM_ADHOC_TTL seconds), not-allowed + <session-expired/>; a missing or
 * invalid form (XEP-0004 rules, parser/dataform.h; a required field empty,
 * a password-verify that differs), bad-request + <bad-payload/>; an unknown
 * node, item-not-found; an administration command asked by a non-admin,
 * forbidden, of type cancel as §4.6's table gives it (RFC 6120 §8.3.3.4
 * says auth SHOULD be used; the XEP's table is the more specific text).
 * disco#info on a command node a non-admin may not run is an RFC 6120
 * forbidden (auth): that is service discovery, not §4.6.
 *
 * Accounts: the operations are the storage thread's (sm_db_user_add /
 * _passwd / _del, as XEP-0077 and the admin socket use them).  A form
 * carries the password in clear, so the SCRAM-SHA-1 and SCRAM-SHA-256 keys
 * are derived here, on the storage thread (PBKDF2: milliseconds, not for
 * the event loop), with a fresh salt and the iteration count of
 * `xedgectl user add` and in-band registration; the password is wiped from
 * the job once derived.  A removed account's sessions are closed as for
 * XEP-0077 (sm_account_deleted()).
 *
 * Shards (docs/architecture.md): every shard shares one database, so an
 * account is added or its password changed by whichever shard the admin's
 * session is on.  Removing an account also closes its sessions, which only
 * its owner shard holds: an account another shard owns is not removed and
 * the completed command's note says so (error note, XEP-0050 §4.5), naming
 * the owner.  The online users' list, their number and announcements need
 * every shard's sessions: the shard the admin's session is on asks every
 * other shard (sm/gather.c) and completes the command with the answers
 * (the list sorted, cut at max_items; announce: each shard sends it to its
 * own sessions), or after SM_GATHER_DEADLINE_MS with what it has and a warn
 * note naming how many shards did not answer.
 *
 * Command sessions: SM_ADHOC_SESSIONS remembered (a new one takes a free
 * slot, else the oldest ended one, else the oldest in progress, whose id is
 * then unknown: bad-sessionid) and SM_ADHOC_PER_SESSION in progress per
 * requesting session (a new one ends its oldest: session-expired); ids are
 * random (16 hex digits).  All of it belongs to its sm thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/dataform.h"
#include "parser/jid.h"
#include "sm/iq.h"
#include "sm/sm_int.h"
#include "sm/store.h"
#include "tls/crypto.h"

#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_ADMIN "http://jabber.org/protocol/admin"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

#define SM_ADHOC_SESSIONS 64        /* command sessions remembered, whole server */
#define SM_ADHOC_PER_SESSION 4      /* ... in progress for one requesting session */
#define SM_ADHOC_TTL 600            /* seconds a command session waits for its next step */
#define SM_ADHOC_ID_LEN 16
#define SM_ADHOC_ANNOUNCE_MAX 16384 /* bytes of an announcement's body and subject */
#define SM_ADHOC_LIST_BYTES (256u * 1024) /* the online users' list, at most */
#define ADHOC_ITER 4096             /* SCRAM iterations, as xedgectl and XEP-0077 */
#define ADHOC_SALT 16

enum adhoc_cmd_id {
	CMD_PING = 0,
	CMD_ADD_USER,
	CMD_DELETE_USER,
	CMD_CHANGE_PASSWORD,
	CMD_ONLINE_LIST,
	CMD_ONLINE_NUM,
	CMD_ANNOUNCE,
	CMD_COUNT
};

enum adhoc_sess_state {
	ADHOC_FREE = 0,
	ADHOC_ACTIVE,       /* waiting for its next step */
	ADHOC_ENDED         /* completed or canceled: kept to answer session-expired */
};

struct adhoc_sess {
	int state;                  /* enum adhoc_sess_state */
	int cmd;                    /* enum adhoc_cmd_id */
	char id[SM_ADHOC_ID_LEN + 1];
	uint32_t link;              /* the requesting session (link id, sid) */
	uint64_t sid;
	int64_t expires;            /* CLOCK_MONOTONIC seconds */
	uint64_t born;              /* order of creation: the oldest is dropped first */
};

struct sm_adhoc {
	char **admins;              /* canonical bare JIDs */
	size_t nadmins;
	uint64_t born;
	struct adhoc_sess sess[SM_ADHOC_SESSIONS];
};

/* ---- the forms ------------------------------------------------------- */

static const char *const form_type[] = { NS_ADMIN };
static const struct dataform_fdesc f_hidden = {
	.type = DATAFORM_F_HIDDEN, .var = "FORM_TYPE", .values = form_type, .nvalues = 1
};

static const struct dataform_fdesc form_add_user[] = {
	f_hidden,
	{ .type = DATAFORM_F_JID_SINGLE, .var = "accountjid", .label = "The Jabber ID for the account to be added",
	  .required = true },
	{ .type = DATAFORM_F_TEXT_PRIVATE, .var = "password", .label = "The password for this account",
	  .required = true },
	{ .type = DATAFORM_F_TEXT_PRIVATE, .var = "password-verify", .label = "Retype password" },
};

static const struct dataform_fdesc form_delete_user[] = {
	f_hidden,
	{ .type = DATAFORM_F_JID_MULTI, .var = "accountjids",
	  .label = "The Jabber ID(s) to delete", .required = true },
};

static const struct dataform_fdesc form_change_password[] = {
	f_hidden,
	{ .type = DATAFORM_F_JID_SINGLE, .var = "accountjid", .label = "The Jabber ID for this account",
	  .required = true },
	{ .type = DATAFORM_F_TEXT_PRIVATE, .var = "password", .label = "The password for this account",
	  .required = true },
};

static const struct dataform_option max_items_opts[] = {
	{ "25", "25" }, { "50", "50" }, { "75", "75" }, { "100", "100" }, { "150", "150" },
	{ "200", "200" }, { "None", "none" },
};

static const struct dataform_fdesc form_online_list[] = {
	f_hidden,
	{ .type = DATAFORM_F_LIST_SINGLE, .var = "max_items", .label = "Maximum number of items to show",
	  .options = max_items_opts, .noptions = sizeof(max_items_opts) / sizeof(max_items_opts[0]) },
};

static const struct dataform_fdesc form_announce[] = {
	f_hidden,
	{ .type = DATAFORM_F_TEXT_SINGLE, .var = "subject", .label = "Subject" },
	{ .type = DATAFORM_F_TEXT_MULTI, .var = "announcement", .label = "Announcement",
	  .required = true },
};

struct adhoc_cmd {
	const char *node, *name;    /* name: in disco */
	const char *title;          /* of its form (XEP-0133's) */
	bool admin;                 /* admins only */
	const struct dataform_fdesc *form;   /* NULL: one stage */
	unsigned nform;
	const char *instructions;
};

#define FORM(f) f, sizeof(f) / sizeof(f[0])

static const struct adhoc_cmd cmds[CMD_COUNT] = {
	[CMD_PING] = { "ping", "Ping", NULL, false, NULL, 0, NULL },
	[CMD_ADD_USER] = { NS_ADMIN "#add-user", "Add User", "Adding a User", true,
			   FORM(form_add_user), "Fill out this form to add a user." },
	[CMD_DELETE_USER] = { NS_ADMIN "#delete-user", "Delete User", "Deleting a User", true,
			      FORM(form_delete_user), "Fill out this form to delete a user." },
	[CMD_CHANGE_PASSWORD] = { NS_ADMIN "#change-user-password", "Change User Password",
				  "Changing a User Password", true,
				  FORM(form_change_password),
				  "Fill out this form to change a user's password." },
	[CMD_ONLINE_LIST] = { NS_ADMIN "#get-online-users-list", "Get List of Online Users",
			      "Requesting List of Online Users", true, FORM(form_online_list),
			      "Fill out this form to request the online users of this service." },
	[CMD_ONLINE_NUM] = { NS_ADMIN "#get-online-users-num", "Get Number of Online Users", NULL,
			     true, NULL, 0, NULL },
	[CMD_ANNOUNCE] = { NS_ADMIN "#announce", "Send Announcement to Online Users",
			   "Making an Announcement", true, FORM(form_announce),
			   "Fill out this form to make an announcement to all active users of this service." },
};

/* ---- set-up ------------------------------------------------------------ */

int sm_adhoc_init(struct sm *sm, const struct sm_config *cfg)
{
	struct sm_adhoc *a = calloc(1, sizeof(*a));

	if (!a)
		return -1;
	sm->adhoc = a;
	if (cfg->nadmins) {
		a->admins = calloc(cfg->nadmins, sizeof(char *));
		if (!a->admins)
			return -1;
	}
	for (size_t i = 0; i < cfg->nadmins; i++) {
		char canon[JID_MAX + 1];
		struct jid_view v;
		const char *s = cfg->admins[i];

		/* config.c checked them; xedge-sm reads the same file. */
		if (jid_parse(s, strlen(s), &v) < 0 || !v.local_len || v.resource_len ||
		    jid_canon(&v, false, canon, sizeof(canon)) < 0) {
			log_error("admins: not a bare JID", "jid=\"%s\"", s);
			return -1;
		}
		if (!(a->admins[a->nadmins] = strdup(canon)))
			return -1;
		a->nadmins++;
	}
	return 0;
}

void sm_adhoc_free(struct sm *sm)
{
	struct sm_adhoc *a = sm->adhoc;

	if (!a)
		return;
	for (size_t i = 0; i < a->nadmins; i++)
		free(a->admins[i]);
	free(a->admins);
	free(a);
	sm->adhoc = NULL;
}

static bool is_admin(const struct sm *sm, const char *bare)
{
	for (size_t i = 0; i < sm->adhoc->nadmins; i++)
		if (strcmp(sm->adhoc->admins[i], bare) == 0)
			return true;
	return false;
}

/* Is command k offered to bare by this session server? */
static bool offered(const struct sm *sm, int k, const char *bare)
{
	return !cmds[k].admin || is_admin(sm, bare);
}

static int cmd_by_node(const char *node)
{
	for (int k = 0; k < CMD_COUNT; k++)
		if (strcmp(cmds[k].node, node) == 0)
			return k;
	return -1;
}

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- building answers --------------------------------------------------- */

static void buf_put(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

static void new_id(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[SM_ADHOC_ID_LEN / 2];
	/* Per thread: the shards of one process are threads. */
	static _Thread_local uint64_t fallback;

	if (crypto_random(r, sizeof(r)) < 0) {
		/* Never expected; ids must still differ. */
		uint64_t x = ++fallback ^ (uint64_t)now_s() << 32;
		memcpy(r, &x, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[SM_ADHOC_ID_LEN] = '\0';
}

/* <command ... status='...'> start tag in b (left open). */
static void command_open(struct sm_buf *b, int k, const char *sessionid, const char *status)
{
	sm_buf_str(b, "<command xmlns='" NS_COMMANDS "' node='");
	sm_buf_esc(b, cmds[k].node, strlen(cmds[k].node));
	sm_buf_fmt(b, "' sessionid='%s' status='%s'>", sessionid, status);
}

static void note(struct sm_buf *b, const char *type, const char *text)
{
	sm_buf_fmt(b, "<note type='%s'>", type);
	sm_buf_esc(b, text, strlen(text));
	sm_buf_str(b, "</note>");
}

/* The first stage of a form command: its form, one action (complete). */
static void answer_form(struct sm_iq *q, int k, const char *sessionid)
{
	struct sm_buf *b = sm_iq_buf(q);

	command_open(b, k, sessionid, "executing");
	sm_buf_str(b, "<actions execute='complete'><complete/></actions>");
	dataform_write(buf_put, b, DATAFORM_FORM, cmds[k].title, cmds[k].instructions, cmds[k].form,
		       cmds[k].nform);
	sm_buf_str(b, "</command>");
	sm_iq_result(q, (const char *)sm_buf_data(b), sm_buf_used(b));
}

static void answer_status(struct sm_iq *q, int k, const char *sessionid, const char *status,
			  const char *note_type, const char *text)
{
	struct sm_buf *b = sm_iq_buf(q);

	command_open(b, k, sessionid, status);
	if (text)
		note(b, note_type, text);
	sm_buf_str(b, "</command>");
	sm_iq_result(q, (const char *)sm_buf_data(b), sm_buf_used(b));
}

static void error_cmd(struct sm_iq *q, const char *cond, const char *app)
{
	char el[96];

	snprintf(el, sizeof(el), "<%s xmlns='" NS_COMMANDS "'/>", app);
	sm_iq_error_app(q, cond, el);
}

/* ---- command sessions --------------------------------------------------- */

static bool sess_mine(const struct adhoc_sess *x, const struct sm_session *s)
{
	return x->link == s->link->id && x->sid == s->sid;
}

/* A new command session for s running k; never fails (the oldest goes). */
static struct adhoc_sess *sess_new(struct sm *sm, struct sm_session *s, int k)
{
	struct sm_adhoc *a = sm->adhoc;
	struct adhoc_sess *pick = NULL, *oldest_mine = NULL;
	unsigned mine = 0;
	int64_t now = now_s();

	for (size_t i = 0; i < SM_ADHOC_SESSIONS; i++) {
		struct adhoc_sess *x = &a->sess[i];

		if (x->state == ADHOC_ACTIVE && x->expires <= now)
			x->state = ADHOC_ENDED;
		if (x->state == ADHOC_ACTIVE && sess_mine(x, s)) {
			mine++;
			if (!oldest_mine || x->born < oldest_mine->born)
				oldest_mine = x;
		}
	}
	/* Over its share: its oldest ends (it answers session-expired while
	 * its slot is not needed). */
	if (mine >= SM_ADHOC_PER_SESSION)
		oldest_mine->state = ADHOC_ENDED;
	/* A free slot, else the oldest ended one, else the oldest. */
	for (size_t i = 0; i < SM_ADHOC_SESSIONS; i++) {
		struct adhoc_sess *x = &a->sess[i];

		if (x->state == ADHOC_FREE) {
			pick = x;
			break;
		}
		if (!pick || (x->state == ADHOC_ENDED && pick->state != ADHOC_ENDED) ||
		    (x->state == pick->state && x->born < pick->born))
			pick = x;
	}
	pick->state = ADHOC_ACTIVE;
	pick->cmd = k;
	new_id(pick->id);
	pick->link = s->link->id;
	pick->sid = s->sid;
	pick->expires = now + SM_ADHOC_TTL;
	pick->born = ++a->born;
	return pick;
}

static struct adhoc_sess *sess_find(struct sm *sm, const char *id)
{
	for (size_t i = 0; i < SM_ADHOC_SESSIONS; i++) {
		struct adhoc_sess *x = &sm->adhoc->sess[i];

		if (x->state != ADHOC_FREE && strcmp(x->id, id) == 0)
			return x;
	}
	return NULL;
}

/* ---- storage jobs: accounts ---------------------------------------------- */

enum { JOB_ADD, JOB_PASSWD, JOB_DEL };

/* One allocation (the store frees pending jobs with free() at shutdown). */
struct adhoc_job {
	struct sm_job job;
	struct sm_iq_ref *ref;
	int op;
	int cmd;
	char sessionid[SM_ADHOC_ID_LEN + 1];
	char jid[JID_MAX + 1];           /* JOB_ADD, JOB_PASSWD */
	char pass[DATAFORM_VALUE_MAX + 1];
	size_t pass_len;
	int derive_rc;
	/* JOB_DEL: njids NUL-terminated JIDs packed in jids[]; rc of each in
	 * rcs[] (0, -ENOENT, -EIO ...; 1: not this shard's, not tried) */
	unsigned njids;
	int rcs[DATAFORM_MAX_VALUES];
	char jids[];
};

static int derive(int hash, const char *pass, size_t len, struct wire_scram *k)
{
	k->iter = ADHOC_ITER;
	k->salt_len = ADHOC_SALT;
	k->key_len = (uint8_t)crypto_digest_len(hash);
	return crypto_random(k->salt, ADHOC_SALT) < 0 ||
	       crypto_scram_keys(hash, pass, len, k->salt, ADHOC_SALT, ADHOC_ITER, k->stored_key,
				 k->server_key) < 0 ? -1 : 0;
}

static void job_run(struct sm_db *db, struct sm_job *j)
{
	struct adhoc_job *aj = (struct adhoc_job *)j;
	struct wire_scram k1 = { 0 }, k256 = { 0 };
	const char *p = aj->jids;

	if (aj->op == JOB_DEL) {
		for (unsigned i = 0; i < aj->njids; i++, p += strlen(p) + 1)
			if (aj->rcs[i] == 0)
				aj->rcs[i] = sm_db_user_del(db, p);
		j->rc = 0;
		return;
	}
	/* On the storage thread: PBKDF2 is too slow for the event loop. */
	if (derive(CRYPTO_SHA1, aj->pass, aj->pass_len, &k1) < 0 ||
	    derive(CRYPTO_SHA256, aj->pass, aj->pass_len, &k256) < 0) {
		explicit_bzero(aj->pass, sizeof(aj->pass));
		aj->derive_rc = -1;
		j->rc = -EIO;
		return;
	}
	explicit_bzero(aj->pass, sizeof(aj->pass));
	j->rc = aj->op == JOB_ADD ? sm_db_user_add(db, aj->jid, &k1, &k256)
				  : sm_db_user_passwd(db, aj->jid, &k1, &k256);
	explicit_bzero(&k1, sizeof(k1));
	explicit_bzero(&k256, sizeof(k256));
}

static void job_done(struct sm *sm, struct sm_job *j)
{
	struct adhoc_job *aj = (struct adhoc_job *)j;
	struct sm_buf *b = &sm->scratch;
	const char *p = aj->jids;
	unsigned done = 0, failed = 0;

	sm_buf_clear(b);
	if (aj->op == JOB_ADD || aj->op == JOB_PASSWD) {
		if (j->rc == -EEXIST) {
			sm_iq_ref_error(sm, aj->ref, "conflict");
			goto out;
		}
		if (j->rc == -ENOENT) {
			sm_iq_ref_error(sm, aj->ref, "item-not-found");
			goto out;
		}
		if (j->rc < 0) {
			log_warn("ad-hoc account operation failed", "jid=\"%s\" op=%d rc=%d", aj->jid,
				 aj->op, j->rc);
			sm_iq_ref_error(sm, aj->ref, "internal-server-error");
			goto out;
		}
		if (aj->op == JOB_ADD)
			log_info("user added (ad-hoc)", "jid=\"%s\"", aj->jid);
		else
			log_info("password changed (ad-hoc)", "jid=\"%s\"", aj->jid);
		command_open(b, aj->cmd, aj->sessionid, "completed");
		note(b, "info", aj->op == JOB_ADD ? "The account was added." : "The password was changed.");
		sm_buf_str(b, "</command>");
		sm_iq_ref_result(sm, aj->ref, (const char *)sm_buf_data(b), sm_buf_used(b));
		goto out;
	}
	/* JOB_DEL: the answer, one note for the accounts not removed (XEP-0050
	 * §4.5 notes: info or error); then the sessions of the removed ones end
	 * (after the answer, as XEP-0077 removal: the admin may be one of them). */
	for (unsigned i = 0; i < aj->njids; i++) {
		if (aj->rcs[i] == 0)
			done++;
		else
			failed++;
	}
	command_open(b, aj->cmd, aj->sessionid, "completed");
	if (failed) {
		sm_buf_str(b, "<note type='error'>");
		if (done)
			sm_buf_fmt(b, "%u account(s) deleted. ", done);
		sm_buf_str(b, "Not deleted:");
		p = aj->jids;
		for (unsigned i = 0, first = 1; i < aj->njids; i++, p += strlen(p) + 1) {
			const char *why;

			if (aj->rcs[i] == 0)
				continue;
			why = aj->rcs[i] == -ENOENT ? "no such account"
			      : aj->rcs[i] == 1 ? "another shard owns it: use a session on that shard"
			      : "storage error";
			sm_buf_str(b, first ? " " : "; ");
			sm_buf_esc(b, p, strlen(p));
			sm_buf_fmt(b, " (%s)", why);
			first = 0;
		}
		sm_buf_str(b, "</note>");
	} else {
		note(b, "info", done == 1 ? "The account was deleted." : "The accounts were deleted.");
	}
	sm_buf_str(b, "</command>");
	sm_iq_ref_result(sm, aj->ref, (const char *)sm_buf_data(b), sm_buf_used(b));
	p = aj->jids;
	for (unsigned i = 0; i < aj->njids; i++, p += strlen(p) + 1) {
		if (aj->rcs[i] == 0) {
			unsigned kicked = sm_account_deleted(sm, p);

			log_info("account removed (ad-hoc)", "jid=\"%s\" sessions_closed=%u", p, kicked);
		}
	}
out:
	explicit_bzero(aj->pass, sizeof(aj->pass));
	free(aj);
}

/* ---- command steps ------------------------------------------------------- */

/* A bare JID of a served domain, canonical into out; false otherwise. */
static bool account_jid(const struct sm *sm, const char *s, char *out, size_t cap)
{
	struct jid_view v;
	int n;

	if (jid_parse(s, strlen(s), &v) < 0 || !v.local_len || v.resource_len ||
	    (n = jid_canon(&v, false, out, cap)) < 0)
		return false;
	return sm_domain_served(sm, out + v.local_len + 1, (size_t)n - v.local_len - 1);
}

static void bad_payload(struct sm_iq *q)
{
	error_cmd(q, "bad-request", "bad-payload");
}

static void submit_job(struct sm_iq *q, struct adhoc_job *aj, struct adhoc_sess *x)
{
	aj->ref = sm_iq_keep(q);
	if (!aj->ref) {
		explicit_bzero(aj->pass, sizeof(aj->pass));
		free(aj);
		sm_iq_error(q, "resource-constraint");
		return;
	}
	x->state = ADHOC_ENDED;
	aj->job.run = job_run;
	aj->job.done = job_done;
	sm_store_submit(q->sm->store, &aj->job);
}

static void run_account(struct sm_iq *q, struct adhoc_sess *x, const struct dataform *f)
{
	const char *jid = dataform_value(f, "accountjid");
	const char *pw = dataform_value(f, "password");
	const char *pw2 = dataform_value(f, "password-verify");
	struct adhoc_job *aj;

	/* XEP-0133 leaves the password optional; an account here needs one.
	 * password-verify is optional too, and must match when given. */
	if (!jid || !pw || !*pw || (x->cmd == CMD_ADD_USER && pw2 && strcmp(pw, pw2) != 0)) {
		bad_payload(q);
		return;
	}
	aj = calloc(1, sizeof(*aj));
	if (!aj) {
		sm_iq_error(q, "resource-constraint");
		return;
	}
	if (!account_jid(q->sm, jid, aj->jid, sizeof(aj->jid))) {
		free(aj);
		bad_payload(q);
		return;
	}
	aj->op = x->cmd == CMD_ADD_USER ? JOB_ADD : JOB_PASSWD;
	aj->cmd = x->cmd;
	memcpy(aj->sessionid, x->id, sizeof(aj->sessionid));
	aj->pass_len = strlen(pw);      /* <= DATAFORM_VALUE_MAX (dataform.h) */
	memcpy(aj->pass, pw, aj->pass_len);
	submit_job(q, aj, x);
}

static void run_delete(struct sm_iq *q, struct adhoc_sess *x, const struct dataform *f)
{
	const struct dataform_field *fd = dataform_field(f, "accountjids");
	char canon[JID_MAX + 1];
	struct adhoc_job *aj;
	size_t total = 0, off = 0;

	if (!fd || fd->nvalues == 0) {
		bad_payload(q);
		return;
	}
	for (unsigned i = 0; i < fd->nvalues; i++) {
		if (!account_jid(q->sm, fd->values[i], canon, sizeof(canon))) {
			bad_payload(q);
			return;
		}
		total += strlen(canon) + 1;
	}
	aj = calloc(1, sizeof(*aj) + total);
	if (!aj) {
		sm_iq_error(q, "resource-constraint");
		return;
	}
	aj->op = JOB_DEL;
	aj->cmd = x->cmd;
	memcpy(aj->sessionid, x->id, sizeof(aj->sessionid));
	for (unsigned i = 0; i < fd->nvalues; i++) {
		size_t n;

		account_jid(q->sm, fd->values[i], canon, sizeof(canon));
		n = strlen(canon);
		memcpy(aj->jids + off, canon, n + 1);
		/* Its sessions are its owner shard's to close (file comment). */
		aj->rcs[i] = sm_owns(q->sm, canon, n) ? 0 : 1;
		off += n + 1;
	}
	aj->njids = fd->nvalues;
	submit_job(q, aj, x);
}

/* The domain the request was addressed to (its `to`), canonical (route.c
 * served it as one of ours, so it parses). */
static void req_domain(const struct sm_iq *q, char *out, size_t cap)
{
	struct jid_view v;

	if (jid_parse((const char *)q->m->u.stanza.to.p, q->m->u.stanza.to.len, &v) < 0 ||
	    jid_canon(&v, false, out, cap) < 0)
		out[0] = '\0';     /* matches no account */
}

/* ---- the commands that need every shard (sm/gather.c) ------------------- */

/* A command waiting for the shards' answers. */
struct adhoc_wait {
	struct sm_iq_ref *ref;
	int cmd;
	char sessionid[SM_ADHOC_ID_LEN + 1];
	unsigned long max;          /* CMD_ONLINE_LIST: items shown (-1: no bound) */
};

static void missing_note(struct sm_buf *b, unsigned missing, const char *what)
{
	char text[160];

	if (!missing)
		return;
	snprintf(text, sizeof(text), "%u shard(s) of this service did not answer within %u s: %s",
		 missing, SM_GATHER_DEADLINE_MS / 1000, what);
	note(b, "warn", text);
}

static void result_num(struct sm_buf *b, const struct adhoc_wait *w, const struct sm_gather_res *res)
{
	const char *vals[1];
	char num[24];
	struct dataform_fdesc fields[] = {
		f_hidden,
		{ .type = DATAFORM_F_TEXT_SINGLE, .var = "onlineusersnum",
		  .label = "The number of online users", .values = vals, .nvalues = 1 },
	};

	snprintf(num, sizeof(num), "%lu", res->n);
	vals[0] = num;
	command_open(b, CMD_ONLINE_NUM, w->sessionid, "completed");
	dataform_write(buf_put, b, DATAFORM_RESULT, NULL, NULL, fields, 2);
	missing_note(b, res->missing, "the number counts the others only.");
}

static void result_list(struct sm_buf *b, const struct adhoc_wait *w, const struct sm_gather_res *res)
{
	bool truncated = res->cut && res->nitems < w->max;
	size_t i;

	command_open(b, CMD_ONLINE_LIST, w->sessionid, "completed");
	/* The form by hand: its values come from the answers. */
	sm_buf_str(b, "<x xmlns='" DATAFORM_NS "' type='result'><field type='hidden' var='FORM_TYPE'>"
		      "<value>" NS_ADMIN "</value></field><field type='jid-multi' var='onlineuserjids'"
		      " label='The list of all online users'>");
	for (i = 0; i < res->nitems && i < w->max; i++) {
		if (sm_buf_used(b) > SM_ADHOC_LIST_BYTES) {
			truncated = true;
			break;
		}
		sm_buf_str(b, "<value>");
		sm_buf_esc(b, res->items[i].a, strlen(res->items[i].a));
		sm_buf_str(b, "</value>");
	}
	sm_buf_str(b, "</field></x>");
	if (truncated)
		note(b, "warn", "The list was cut short: it is too long for one answer.");
	missing_note(b, res->missing, "the list shows the others' users only.");
}

static void result_announce(struct sm_buf *b, const struct adhoc_wait *w,
			    const struct sm_gather_res *res)
{
	char text[96];

	command_open(b, CMD_ANNOUNCE, w->sessionid, "completed");
	snprintf(text, sizeof(text), "The announcement was sent to %lu session(s).", res->n);
	note(b, "info", text);
	missing_note(b, res->missing, "their users may not have received it.");
}

static void gathered(struct sm *sm, const struct sm_gather_res *res, void *arg)
{
	struct adhoc_wait *w = arg;
	struct sm_buf b = { .max = SM_ADHOC_LIST_BYTES + 64u * 1024 };

	if (!res) {
		sm_iq_ref_free(w->ref);
		free(w);
		return;
	}
	if (w->cmd == CMD_ONLINE_NUM)
		result_num(&b, w, res);
	else if (w->cmd == CMD_ONLINE_LIST)
		result_list(&b, w, res);
	else
		result_announce(&b, w, res);
	sm_buf_str(&b, "</command>");
	if (b.err)
		sm_iq_ref_error(sm, w->ref, "resource-constraint");
	else
		sm_iq_ref_result(sm, w->ref, (const char *)sm_buf_data(&b), sm_buf_used(&b));
	sm_buf_free(&b);
	free(w);
}

/* Ask every shard for command k's part; the answer follows (gathered()). */
static void gather(struct sm_iq *q, int k, const char *sessionid, unsigned long max,
		   const char *subject, const char *body)
{
	struct adhoc_wait *w = calloc(1, sizeof(*w));
	char d[JID_MAX + 1];
	struct sm_gather_req rq = {
		.op = k == CMD_ONLINE_NUM ? SM_GATHER_ONLINE_NUM
		      : k == CMD_ONLINE_LIST ? SM_GATHER_ONLINE_LIST : SM_GATHER_ANNOUNCE,
		.domain = d, .subject = subject, .body = body, .done = gathered, .arg = w,
		.max = max == (unsigned long)-1 ? 0 : (unsigned)max,
	};

	if (!w || !(w->ref = sm_iq_keep(q))) {
		free(w);
		sm_iq_error(q, "resource-constraint");
		return;
	}
	req_domain(q, d, sizeof(d));
	w->cmd = k;
	w->max = max;
	memcpy(w->sessionid, sessionid, sizeof(w->sessionid));
	if (sm_gather_start(q->sm, &rq) < 0) {
		sm_iq_ref_free(w->ref);
		free(w);
		sm_iq_error(q, "resource-constraint");
	}
}

static void run_online_list(struct sm_iq *q, struct adhoc_sess *x, const struct dataform *f)
{
	const char *mi = dataform_value(f, "max_items");
	unsigned long max = (unsigned long)-1;

	if (mi && strcmp(mi, "none") != 0) {
		static const char *const ok[] = { "25", "50", "75", "100", "150", "200" };
		bool found = false;

		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			found |= strcmp(mi, ok[i]) == 0;
		if (!found) {   /* list-single: one of the options */
			bad_payload(q);
			return;
		}
		max = strtoul(mi, NULL, 10);
	}
	x->state = ADHOC_ENDED;
	gather(q, CMD_ONLINE_LIST, x->id, max, NULL, NULL);
}

struct announce_ctx {
	struct sm *sm;
	const char *domain;
	struct sm_buf msg;          /* the body and subject elements */
	struct sm_buf out;
	unsigned long sent;
};

static void announce_one(struct announce_ctx *ac, struct sm_user *u)
{
	for (struct sm_session *t = u->shead; t; t = t->unext) {
		sm_buf_clear(&ac->out);
		sm_buf_str(&ac->out, "<message type='headline' from='");
		sm_buf_esc(&ac->out, ac->domain, strlen(ac->domain));
		sm_buf_str(&ac->out, "' to='");
		sm_buf_esc(&ac->out, t->full, t->full_len);
		sm_buf_str(&ac->out, "'>");
		sm_buf_add(&ac->out, sm_buf_data(&ac->msg), sm_buf_used(&ac->msg));
		sm_buf_str(&ac->out, "</message>");
		if (ac->out.err)
			return;
		sm_deliver(ac->sm, t, WIRE_KIND_MESSAGE, sm_ws("headline"), sm_ws(t->full),
			   sm_ws(ac->domain), sm_ws(""), sm_ws(""), sm_buf_data(&ac->out),
			   sm_buf_used(&ac->out));
		ac->sent++;
	}
}

unsigned long sm_adhoc_announce_local(struct sm *sm, const char *domain, const char *subject,
				      const char *body)
{
	struct announce_ctx ac = { .sm = sm, .domain = domain };

	if (!body || strlen(body) > SM_ADHOC_ANNOUNCE_MAX ||
	    (subject && strlen(subject) > SM_ADHOC_ANNOUNCE_MAX))
		return 0;
	if (subject && *subject) {
		sm_buf_str(&ac.msg, "<subject>");
		sm_buf_esc(&ac.msg, subject, strlen(subject));
		sm_buf_str(&ac.msg, "</subject>");
	}
	sm_buf_str(&ac.msg, "<body>");
	sm_buf_esc(&ac.msg, body, strlen(body));
	sm_buf_str(&ac.msg, "</body>");
	for (size_t i = 0; !ac.msg.err && i <= sm->users.mask; i++)
		for (struct sm_tab_node *n = sm->users.slots[i]; n; n = n->next) {
			struct sm_user *u = sm_container_of(n, struct sm_user, node);
			const char *at = strchr(u->bare, '@');

			if (u->nsessions && at && strcmp(at + 1, domain) == 0)
				announce_one(&ac, u);
		}
	sm_buf_free(&ac.msg);
	sm_buf_free(&ac.out);
	log_info("announcement sent (ad-hoc)", "domain=\"%s\" sessions=%lu", domain, ac.sent);
	return ac.sent;
}

static void run_announce(struct sm_iq *q, struct adhoc_sess *x, const struct dataform *f)
{
	const struct dataform_field *fd = dataform_field(f, "announcement");
	const char *subject = dataform_value(f, "subject");
	size_t len = 0, off = 0;
	char *body;

	if (!fd || fd->nvalues == 0) {
		bad_payload(q);
		return;
	}
	for (unsigned i = 0; i < fd->nvalues; i++)
		len += strlen(fd->values[i]) + 1;
	if (len + (subject ? strlen(subject) : 0) > SM_ADHOC_ANNOUNCE_MAX) {
		bad_payload(q);
		return;
	}
	/* text-multi: the lines, joined by LF (XEP-0004 §3.3). */
	body = malloc(len);
	if (!body) {
		sm_iq_error(q, "resource-constraint");
		return;
	}
	for (unsigned i = 0; i < fd->nvalues; i++) {
		size_t n = strlen(fd->values[i]);

		if (i)
			body[off++] = '\n';
		memcpy(body + off, fd->values[i], n);
		off += n;
	}
	body[off] = '\0';
	log_info("announcement requested (ad-hoc)", "by=\"%s\"", q->from_bare);
	x->state = ADHOC_ENDED;
	gather(q, CMD_ANNOUNCE, x->id, 0, subject, body);
	free(body);
}

/* A submission may leave the types out (XEP-0004 §3.4): the fields the
 * command's form asked for are held to the types it gave them. */
static bool form_matches(int k, const struct dataform *f)
{
	for (unsigned i = 0; i < cmds[k].nform; i++) {
		const struct dataform_fdesc *d = &cmds[k].form[i];
		const struct dataform_field *fd = d->var ? dataform_field(f, d->var) : NULL;
		bool multi = d->type == DATAFORM_F_JID_MULTI || d->type == DATAFORM_F_TEXT_MULTI ||
			     d->type == DATAFORM_F_LIST_MULTI;

		if (fd && ((fd->typed && fd->type != d->type) || (!multi && fd->nvalues > 1)))
			return false;
	}
	return true;
}

/* The submitted form of step two, read; NULL after answering bad-payload. */
static const struct dataform *read_form(struct sm_iq *q, int k, const struct xtree_node *cmd,
					struct dataform *f)
{
	const struct xtree_node *x = xtree_child(cmd, DATAFORM_NS, "x");
	const char *ft;

	if (!x || dataform_parse(x, f) != DATAFORM_OK || f->type != DATAFORM_SUBMIT ||
	    xtree_next(x, DATAFORM_NS, "x") || !form_matches(k, f)) {
		bad_payload(q);
		return NULL;
	}
	ft = dataform_form_type(f);
	if ((ft && strcmp(ft, NS_ADMIN) != 0) ||
	    (!ft && dataform_field(f, "FORM_TYPE"))) {
		bad_payload(q);
		return NULL;
	}
	return f;
}

/* <command/> set to the domain (the sm_iq_handlers row). */
void sm_adhoc_iq(struct sm_iq *q)
{
	static const char *const actions[] = { "execute", "cancel", "prev", "next", "complete" };
	struct dataform form;               /* about 5 KiB; shards are threads: not static */
	const struct xtree_node *cmd = q->payload;
	const char *node = xtree_attr(cmd, "node");
	const char *action = xtree_attr(cmd, "action");
	const char *sid = xtree_attr(cmd, "sessionid");
	struct adhoc_sess *x;
	char once[SM_ADHOC_ID_LEN + 1];
	bool known = !action;
	int k;

	if (!q->set || !q->s) {
		sm_iq_error(q, q->s ? "bad-request" : "service-unavailable");
		return;
	}
	for (size_t i = 0; action && i < sizeof(actions) / sizeof(actions[0]); i++)
		known |= strcmp(action, actions[i]) == 0;
	if (!known) {
		error_cmd(q, "bad-request", "malformed-action");
		return;
	}
	if (!node || (k = cmd_by_node(node)) < 0) {
		sm_iq_error(q, "item-not-found");
		return;
	}
	if (!offered(q->sm, k, q->from_bare)) {
		log_info("ad-hoc command refused", "jid=\"%s\" node=\"%s\"", q->from, node);
		sm_iq_error_typed(q, "cancel", "forbidden");    /* §4.6's type, not RFC 6120's auth */
		return;
	}
	if (!sid) {
		/* Step one: only execute starts a command (§3.3). */
		if (action && strcmp(action, "execute") != 0) {
			error_cmd(q, "bad-request", "bad-action");
			return;
		}
		if (k == CMD_PING || k == CMD_ONLINE_NUM) {
			new_id(once);
			if (k == CMD_PING)
				answer_status(q, k, once, "completed", "info", "Pong");
			else
				gather(q, k, once, 0, NULL, NULL);
			return;
		}
		x = sess_new(q->sm, q->s, k);
		answer_form(q, k, x->id);
		return;
	}
	x = sess_find(q->sm, sid);
	if (!x || !sess_mine(x, q->s) || x->cmd != k) {
		error_cmd(q, "bad-request", "bad-sessionid");
		return;
	}
	if (x->state == ADHOC_ACTIVE && x->expires <= now_s())
		x->state = ADHOC_ENDED;
	if (x->state != ADHOC_ACTIVE) {
		error_cmd(q, "not-allowed", "session-expired");
		return;
	}
	if (action && strcmp(action, "cancel") == 0) {
		x->state = ADHOC_ENDED;
		answer_status(q, k, x->id, "canceled", NULL, NULL);
		return;
	}
	/* The one stage left accepts complete, and execute (its default action). */
	if (action && strcmp(action, "complete") != 0 && strcmp(action, "execute") != 0) {
		error_cmd(q, "bad-request", "bad-action");
		return;
	}
	if (!read_form(q, k, cmd, &form))
		return;
	switch (k) {
	case CMD_ADD_USER:
	case CMD_CHANGE_PASSWORD:
		run_account(q, x, &form);
		break;
	case CMD_DELETE_USER:
		run_delete(q, x, &form);
		break;
	case CMD_ONLINE_LIST:
		run_online_list(q, x, &form);
		break;
	case CMD_ANNOUNCE:
		run_announce(q, x, &form);
		break;
	}
}

/* ---- service discovery ----------------------------------------------------- */

/*
 * disco#info / disco#items from session s to the domain (route.c): answered
 * here when the query names a node of ours: the command list (XEP-0050
 * §2.2, items; §2.3 its info) or one command (its info).  False: not ours.
 */
bool sm_adhoc_disco(struct sm *sm, struct sm_session *s, const char *from,
		    const struct wire_msg *m, bool items)
{
	struct sm_iq q = { .sm = sm, .s = s, .from = from, .m = m, .where = SM_IQ_SERVER,
			   .account = "" };
	char bare[JID_MAX + 1];
	const char *slash = strchr(from, '/');
	size_t blen = slash ? (size_t)(slash - from) : strlen(from);
	const char *node;
	struct xtree *t;
	struct sm_buf *b;
	int k = -1;

	if (!s || blen > JID_MAX || !memmem(m->u.stanza.raw.p, m->u.stanza.raw.len, "node", 4))
		return false;
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL,
			NULL);
	if (!t)
		return false;
	memcpy(bare, from, blen);
	bare[blen] = '\0';
	q.from_bare = bare;
	q.stanza = xtree_root(t);
	q.payload = xtree_child(q.stanza, NULL, NULL);
	node = xtree_attr(q.payload, "node");
	if (!node || (strcmp(node, NS_COMMANDS) != 0 && ((k = cmd_by_node(node)) < 0 || items))) {
		xtree_free(t);
		return false;
	}
	b = sm_iq_buf(&q);
	if (items) {
		sm_buf_str(b, "<query xmlns='" NS_DISCO_ITEMS "' node='" NS_COMMANDS "'>");
		for (int i = 0; i < CMD_COUNT; i++) {
			if (!offered(sm, i, bare))
				continue;
			sm_buf_str(b, "<item jid='");
			sm_buf_esc(b, (const char *)m->u.stanza.to.p, m->u.stanza.to.len);
			sm_buf_str(b, "' node='");
			sm_buf_esc(b, cmds[i].node, strlen(cmds[i].node));
			sm_buf_fmt(b, "' name='%s'/>", cmds[i].name);
		}
		sm_buf_str(b, "</query>");
	} else if (k < 0) {
		sm_buf_str(b, "<query xmlns='" NS_DISCO_INFO "' node='" NS_COMMANDS "'>"
			      "<identity category='automation' type='command-list' name='Commands'/>"
			      "</query>");
	} else if (!offered(sm, k, bare)) {
		xtree_free(t);
		sm_iq_error(&q, cmds[k].admin && !is_admin(sm, bare) ? "forbidden" : "item-not-found");
		return true;
	} else {
		sm_buf_str(b, "<query xmlns='" NS_DISCO_INFO "' node='");
		sm_buf_esc(b, cmds[k].node, strlen(cmds[k].node));
		sm_buf_fmt(b, "'><identity category='automation' type='command-node' name='%s'/>"
			      "<feature var='" NS_COMMANDS "'/><feature var='" DATAFORM_NS "'/></query>",
			   cmds[k].name);
	}
	sm_iq_result(&q, (const char *)sm_buf_data(b), sm_buf_used(b));
	xtree_free(t);
	return true;
}
