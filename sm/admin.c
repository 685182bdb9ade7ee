/*
 * sm_admin — the admin socket: a Unix stream socket (mode 0600) that
 * xedgectl talks to, one text command per line.  Each command's reply is
 * zero or more lines followed by a final line `ok` or `error: <reason>`.
 *
 *   user add <jid> <hexsalt1> <iter1> <hexstored1> <hexserver1>
 *            <hexsalt256> <iter256> <hexstored256> <hexserver256>
 *   user del <jid>                 (its sessions are closed: KICKED)
 *   sessions                       one line per session
 *   roster add <user> <contact> <none|to|from|both> [name...]
 *   roster list <user>             one line per item: contact subscription [name]
 *                                  (the roster the user sees: no bare pending-in rows)
 *
 * Shards: a command about an account another shard owns is answered
 * `error: another shard owns this account: shard <k>`; xedgectl then asks
 * shard k (embedded shards: the socket "<admin_socket>.<k>").  `sessions`
 * lists this shard's.
 *
 * Passwords never reach this socket: xedgectl derives the SCRAM keys.  The
 * socket's mode is the access control (only its owner, root aside, may
 * connect); input is still bounded (line length, connections).  Commands run
 * on the sm thread, between stanzas, so they see and change live state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/shard.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define ADMIN_MAX_ARGS 12
#define ADMIN_MAX_ITER 10000000u
#define ADMIN_OUT_MAX (64u << 20)

struct admin_conn {
	struct sm_ev ev;
	struct sm_buf in, out;
	bool closing;               /* close once the output is written */
	struct admin_job *busy;     /* the command whose job is running */
	bool epollout;
	struct admin_conn *next, *prev;
};

struct admin_job;
static void conn_orphan(struct admin_job *aj);

struct sm_admin {
	struct sm_ev ev;            /* the listener */
	char *path;
	struct admin_conn *conns;
	unsigned nconns;
};

struct sm_admin *sm_admin_open(struct sm *sm, const char *path)
{
	struct sm_admin *a = calloc(1, sizeof(*a));
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	if (!a)
		return NULL;
	fd = sm_unix_listen(path, 0600);
	if (fd < 0) {
		log_error("cannot open the admin socket", "admin_socket=\"%s\" error=\"%s\"", path,
			  fd == -EADDRINUSE ? "in use by a running server" : strerror(-fd));
		free(a);
		return NULL;
	}
	a->ev.kind = SM_EV_ADMIN_LISTEN;
	a->ev.fd = fd;
	ev.data.ptr = &a->ev;
	if (epoll_ctl(sm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_error("cannot register the admin socket", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	a->path = strdup(path);
	if (a->path)
		return a;
fail:
	close(fd);
	unlink(path);
	free(a);
	return NULL;
}

static void conn_close(struct sm *sm, struct admin_conn *c)
{
	struct sm_admin *a = sm->admin;

	if (c->busy)
		conn_orphan(c->busy);
	epoll_ctl(sm->epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
	close(c->ev.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	sm_buf_free(&c->in);
	sm_buf_free(&c->out);
	free(c);
}

void sm_admin_close(struct sm *sm, struct sm_admin *a)
{
	while (a->conns)
		conn_close(sm, a->conns);
	epoll_ctl(sm->epfd, EPOLL_CTL_DEL, a->ev.fd, NULL);
	close(a->ev.fd);
	unlink(a->path);
	free(a->path);
	free(a);
	sm->admin = NULL;
}

/* ---- argument helpers -------------------------------------------------- */

/* Canonical bare JID from s into out; served: the domain must be ours, and
 * a localpart is required.  Returns NULL on success or the reason. */
static const char *arg_bare(struct sm *sm, const char *s, bool served, char *out, size_t cap)
{
	struct jid_view v;
	int n;

	if (jid_parse(s, strlen(s), &v) < 0)
		return "not a valid JID";
	if (v.resource_len)
		return "a bare JID is needed (no /resource)";
	if (served && !v.local_len)
		return "a user JID is needed (user@domain)";
	n = jid_canon(&v, false, out, cap);
	if (n < 0)
		return "JID too long";
	if (served && !sm_domain_served(sm, out + v.local_len + 1, (size_t)n - v.local_len - 1))
		return "this server does not serve that domain";
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex s into out (at most cap bytes); returns the length or -1. */
static long arg_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static const char *arg_scram(char **av, size_t key_len, struct wire_scram *k)
{
	char *end;
	unsigned long iter;
	long n;

	memset(k, 0, sizeof(*k));
	n = arg_hex(av[0], k->salt, WIRE_SALT_MAX);
	if (n <= 0)
		return "bad salt (hex, 1..64 bytes)";
	k->salt_len = (uint8_t)n;
	errno = 0;
	iter = strtoul(av[1], &end, 10);
	if (errno || *end || av[1][0] == '-' || iter == 0 || iter > ADMIN_MAX_ITER)
		return "bad iteration count";
	k->iter = (uint32_t)iter;
	if (arg_hex(av[2], k->stored_key, WIRE_KEY_MAX) != (long)key_len ||
	    arg_hex(av[3], k->server_key, WIRE_KEY_MAX) != (long)key_len)
		return key_len == 20 ? "bad SHA-1 keys (hex, 20 bytes each)"
				     : "bad SHA-256 keys (hex, 32 bytes each)";
	k->key_len = (uint8_t)key_len;
	return NULL;
}

/* ---- commands ------------------------------------------------------------ */

/*
 * A command that needs storage runs as a job: the connection reads no
 * further line until its done() has answered, so replies keep their order.
 * The job outlives its connection if need be (job->c is then NULL).
 */
enum admin_op {
	OP_USER_ADD = 1, OP_USER_DEL, OP_USER_PASSWD, OP_USER_LIST,
	OP_ROSTER_ADD, OP_ROSTER_DEL, OP_ROSTER_LIST
};

struct admin_job {
	struct sm_job job;
	struct admin_conn *c;
	int op;
	int sub;
	char jid[JID_MAX + 1], contact[JID_MAX + 1], name[JID_PART_MAX + 1];
	struct wire_scram k1, k256;
	struct sm_buf rows;            /* listing built on the storage thread */
};

/* Bump the account's roster version (§2.6); the row written next takes it. */
static int job_roster_ver(struct sm_db *db, struct admin_job *aj)
{
	static const char sql[] = "UPDATE users SET roster_ver = roster_ver + 1 WHERE jid = ?1";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, aj->jid);
	return sm_db_exec(db, q, "roster version");
}

static int job_roster_put(struct sm_db *db, struct admin_job *aj)
{
	static const char sql[] =
		"INSERT INTO roster(user, contact, name, subscription, listed, ver)"
		" VALUES (?1, ?2, ?3, ?4, 1,"
		" (SELECT roster_ver + 1 FROM users WHERE jid = ?1))"
		" ON CONFLICT(user, contact) DO UPDATE SET name = excluded.name,"
		" subscription = excluded.subscription, listed = 1, ver = excluded.ver";
	sm_stmt *q = sm_db_stmt(db, sql);

	/* RFC 6121 §2.6: every change gets a new roster version. */
	if (job_roster_ver(db, aj) < 0 || !q)
		return -EIO;
	sm_db_bind_text(q, 1, aj->jid);
	sm_db_bind_text(q, 2, aj->contact);
	sm_db_bind_text(q, 3, aj->name);
	sm_db_bind_text(q, 4, sm_sub_str(aj->sub));
	return sm_db_exec(db, q, "roster put");
}

static int job_roster_del(struct sm_db *db, struct admin_job *aj)
{
	static const char sql[] = "DELETE FROM roster WHERE user = ?1 AND contact = ?2";
	sm_stmt *q = sm_db_stmt(db, sql);

	if (!q)
		return -EIO;
	sm_db_bind_text(q, 1, aj->jid);
	sm_db_bind_text(q, 2, aj->contact);
	if (sm_db_exec(db, q, "roster del") < 0)
		return -EIO;
	if (!sm_db_changes(db))
		return -ENOENT;
	return job_roster_ver(db, aj);
}

static int job_list(struct sm_db *db, struct admin_job *aj, const char *sql, bool roster)
{
	sm_stmt *q = sm_db_stmt(db, sql);
	int rc;

	if (!q)
		return -EIO;
	if (roster)
		sm_db_bind_text(q, 1, aj->jid);
	while ((rc = sm_db_step(q)) == SM_ROW) {
		const char *a = sm_db_col_text(q, 0);

		if (!roster) {
			sm_buf_fmt(&aj->rows, "%s\n", a ? a : "");
		} else {
			const char *sub = sm_db_col_text(q, 1);
			const char *name = sm_db_col_text(q, 2);
			int ask = (int)sm_db_col_int64(q, 3);

			sm_buf_fmt(&aj->rows, "%s %s%s%s%s\n", a ? a : "", sub ? sub : "none",
				   ask ? " ask=subscribe" : "", name && name[0] ? " " : "",
				   name ? name : "");
		}
	}
	sm_db_done(q);
	return rc == SM_DONE ? 0 : sm_db_fail(db, "admin list");
}

static void admin_run(struct sm_db *db, struct sm_job *j)
{
	static const char sql_users[] = "SELECT jid FROM users ORDER BY jid";
	static const char sql_roster[] =
		"SELECT contact, subscription, name, ask FROM roster WHERE user = ?1 AND listed != 0"
		" ORDER BY contact";
	struct admin_job *aj = (struct admin_job *)j;
	int r;

	switch (aj->op) {
	case OP_USER_ADD:
		j->rc = sm_db_user_add(db, aj->jid, &aj->k1, &aj->k256);
		break;
	case OP_USER_PASSWD:
		j->rc = sm_db_user_passwd(db, aj->jid, &aj->k1, &aj->k256);
		break;
	case OP_USER_DEL:
		j->rc = sm_db_user_del(db, aj->jid);
		break;
	case OP_USER_LIST:
		j->rc = job_list(db, aj, sql_users, false);
		break;
	case OP_ROSTER_ADD:
	case OP_ROSTER_DEL:
	case OP_ROSTER_LIST:
		r = sm_db_user_exists(db, aj->jid);
		if (r <= 0) {
			j->rc = r == 0 ? -ENOENT : r;
			break;
		}
		j->rc = aj->op == OP_ROSTER_ADD ? job_roster_put(db, aj)
			: aj->op == OP_ROSTER_DEL ? job_roster_del(db, aj)
			: job_list(db, aj, sql_roster, true);
		if (aj->op == OP_ROSTER_DEL && j->rc == -ENOENT)
			j->rc = -ESRCH;     /* the user exists, the item does not */
		break;
	}
}

/* Keep an online account's roster in step with the stored one, and push it. */
static void roster_online(struct sm *sm, struct admin_job *aj)
{
	struct sm_user *u = sm_user_find(sm, aj->jid, strlen(aj->jid));
	struct sm_roster_item *it;

	/* A record still loading reads the row itself (jobs run in order). */
	if (!u || u->state != SM_USER_READY)
		return;
	if (aj->op == OP_ROSTER_ADD) {
		it = sm_roster_set(u, aj->contact, aj->name, aj->sub);
		if (it) {
			it->ver = ++u->roster_ver;    /* as the job wrote it */
			sm_roster_push(sm, u, it, false);
		}
		else
			log_warn("online roster full or out of memory", "user=\"%s\"", aj->jid);
	} else if ((it = sm_roster_find(u, aj->contact))) {
		u->roster_ver++;
		sm_roster_push(sm, u, it, true);
		sm_roster_remove(u, it);
	}
}

/*
 * A roster command for an account whose record is in memory: the record is
 * the truth (sm/user.c), so the change is made there and written behind like
 * a client's, in order with the client's own changes.  Answers at once.
 */
static void roster_direct(struct sm *sm, struct sm_buf *out, struct admin_job *aj,
			  struct sm_user *u)
{
	struct sm_roster_item *it = sm_roster_find(u, aj->contact);

	if (aj->op == OP_ROSTER_ADD) {
		it = sm_roster_set(u, aj->contact, aj->name, aj->sub);
		if (!it) {
			sm_buf_str(out, "error: the roster is full or out of memory\n");
			return;
		}
		sm_roster_save(sm, u, it);
		sm_roster_push(sm, u, it, false);
	} else {
		struct sm_roster_item gone = { .contact = aj->contact };

		if (!it || !it->listed) {
			sm_buf_fmt(out, "error: %s has no roster item %s\n", aj->jid, aj->contact);
			return;
		}
		sm_roster_drop(sm, u, it);
		sm_roster_push(sm, u, &gone, true);     /* with the new version */
	}
	sm_buf_fmt(out, "roster of %s: %s %s\nok\n", aj->jid, aj->contact,
		   aj->op == OP_ROSTER_ADD ? sm_sub_str(aj->sub) : "removed");
}

static void conn_lines(struct sm *sm, struct admin_conn *c);
static void conn_flush(struct sm *sm, struct admin_conn *c);

static void admin_done(struct sm *sm, struct sm_job *j)
{
	struct admin_job *aj = (struct admin_job *)j;
	struct admin_conn *c = aj->c;
	struct sm_buf *out = c ? &c->out : &aj->rows;   /* nobody to tell: build and drop */
	int rc = j->rc;
	unsigned kicked;

	if (rc == -EIO) {
		sm_buf_str(out, "error: storage failed (see the server log)\n");
		goto out;
	}
	switch (aj->op) {
	case OP_USER_ADD:
		if (rc == -EEXIST) {
			sm_buf_fmt(out, "error: user exists: %s\n", aj->jid);
			break;
		}
		log_info("user added", "jid=\"%s\"", aj->jid);
		sm_buf_fmt(out, "user %s added\nok\n", aj->jid);
		break;
	case OP_USER_PASSWD:
		if (rc == -ENOENT) {
			sm_buf_fmt(out, "error: no such user: %s\n", aj->jid);
			break;
		}
		log_info("password changed", "jid=\"%s\"", aj->jid);
		sm_buf_fmt(out, "password of %s changed\nok\n", aj->jid);
		break;
	case OP_USER_DEL:
		if (rc == -ENOENT) {
			sm_buf_fmt(out, "error: no such user: %s\n", aj->jid);
			break;
		}
		kicked = sm_account_deleted(sm, aj->jid);
		log_info("user deleted", "jid=\"%s\" sessions_closed=%u", aj->jid, kicked);
		sm_buf_fmt(out, "user %s deleted, sessions closed: %u\nok\n", aj->jid, kicked);
		break;
	case OP_USER_LIST:
	case OP_ROSTER_LIST:
		if (rc == -ENOENT) {
			sm_buf_fmt(out, "error: no such user: %s\n", aj->jid);
			break;
		}
		if (!sm_buf_used(&aj->rows))
			sm_buf_str(out, aj->op == OP_USER_LIST ? "no users\n" : "roster is empty\n");
		else if (out != &aj->rows)
			sm_buf_add(out, sm_buf_data(&aj->rows), sm_buf_used(&aj->rows));
		sm_buf_str(out, "ok\n");
		break;
	case OP_ROSTER_ADD:
	case OP_ROSTER_DEL:
		if (rc == -ENOENT) {
			sm_buf_fmt(out, "error: no such user: %s\n", aj->jid);
			break;
		}
		if (rc == -ESRCH) {
			sm_buf_fmt(out, "error: %s has no roster item %s\n", aj->jid, aj->contact);
			break;
		}
		roster_online(sm, aj);
		sm_buf_fmt(out, "roster of %s: %s %s\nok\n", aj->jid, aj->contact,
			   aj->op == OP_ROSTER_ADD ? sm_sub_str(aj->sub) : "removed");
		break;
	}
out:
	sm_buf_free(&aj->rows);
	free(aj);
	if (c) {
		c->busy = NULL;
		conn_lines(sm, c);
		conn_flush(sm, c);
	}
}

static struct admin_job *job_new(struct admin_conn *c, int op)
{
	struct admin_job *aj = calloc(1, sizeof(*aj));

	if (!aj)
		return NULL;
	aj->c = c;
	aj->op = op;
	aj->rows.max = ADMIN_OUT_MAX / 2;
	aj->job.run = admin_run;
	aj->job.done = admin_done;
	return aj;
}

static const char *cmd_user_keys(struct sm *sm, struct admin_job *aj, int ac, char **av)
{
	const char *err;

	if (ac != 11)
		return aj->op == OP_USER_ADD
			? "usage: user add <jid> <salt1> <iter1> <stored1> <server1> <salt256> "
			  "<iter256> <stored256> <server256>"
			: "usage: user passwd <jid> <salt1> <iter1> <stored1> <server1> <salt256> "
			  "<iter256> <stored256> <server256>";
	if ((err = arg_bare(sm, av[2], true, aj->jid, sizeof(aj->jid))) ||
	    (err = arg_scram(av + 3, 20, &aj->k1)) || (err = arg_scram(av + 7, 32, &aj->k256)))
		return err;
	return NULL;
}

static const char *cmd_user_jid(struct sm *sm, struct admin_job *aj, int ac, char **av)
{
	if (ac != 3)
		return "usage: user del <jid>";
	return arg_bare(sm, av[2], true, aj->jid, sizeof(aj->jid));
}

static const char *cmd_user_list(struct sm *sm, struct admin_job *aj, int ac, char **av)
{
	return ac == 2 ? NULL : "usage: user list";
}

static const char *cmd_roster(struct sm *sm, struct admin_job *aj, int ac, char **av,
			      const char *name)
{
	const char *err;

	switch (aj->op) {
	case OP_ROSTER_ADD:
		if (ac < 5)
			return "usage: roster add <user-jid> <contact-jid> <none|to|from|both> [name]";
		aj->sub = sm_sub_parse(av[4]);
		if (aj->sub < 0)
			return "subscription must be none, to, from or both";
		if (strlen(name) > JID_PART_MAX)
			return "name too long";
		strcpy(aj->name, name);
		break;
	case OP_ROSTER_DEL:
		if (ac != 4)
			return "usage: roster del <user-jid> <contact-jid>";
		break;
	default:
		if (ac != 3)
			return "usage: roster list <user-jid>";
		break;
	}
	if ((err = arg_bare(sm, av[2], true, aj->jid, sizeof(aj->jid))))
		return err;
	if (aj->op != OP_ROSTER_LIST &&
	    (err = arg_bare(sm, av[3], false, aj->contact, sizeof(aj->contact))))
		return err;
	return NULL;
}

static const char *cmd_sessions(struct sm *sm, struct sm_buf *out, int ac, char **av)
{
	size_t n = 0;

	if (ac != 1)
		return "usage: sessions";
	for (struct sm_link *l = sm->links; l; l = l->next) {
		if (l->state == SM_LINK_DEAD)
			continue;
		for (struct sm_session *s = l->shead; s; s = s->lnext, n++) {
			const char *state = s->state != SM_SESS_BOUND ? "unbound"
					    : s->available ? "available" : "unavailable";

			sm_buf_fmt(out, "%s %s link=%u worker=%u %s\n",
				   s->full ? s->full : s->bare ? s->bare : "-",
				   s->addr[0] ? s->addr : "-", l->id, l->worker, state);
		}
	}
	n += sm_adopt_list(sm, out);   /* XEP-0198: sessions whose edge is gone */
	if (n == 0)
		sm_buf_str(out, "no sessions\n");
	return NULL;
}

/* Cut the next space-separated word out of *p; NULL at the end of the line. */
static char *next_word(char **p)
{
	char *w;

	while (**p == ' ' || **p == '\t' || **p == '\r')
		(*p)++;
	if (!**p)
		return NULL;
	w = *p;
	while (**p && **p != ' ' && **p != '\t' && **p != '\r')
		(*p)++;
	if (**p)
		*(*p)++ = '\0';
	return w;
}

static const struct admin_cmd {
	const char *w0, *w1;
	int op;
} admin_cmds[] = {
	{ "user", "add", OP_USER_ADD },
	{ "user", "passwd", OP_USER_PASSWD },
	{ "user", "del", OP_USER_DEL },
	{ "user", "list", OP_USER_LIST },
	{ "roster", "add", OP_ROSTER_ADD },
	{ "roster", "del", OP_ROSTER_DEL },
	{ "roster", "list", OP_ROSTER_LIST },
};

/* Run one command line (NUL-terminated, no newline): answer it now, or
 * start its job (c->busy) whose done() answers. */
static void admin_command(struct sm *sm, struct admin_conn *c, char *line)
{
	char *av[ADMIN_MAX_ARGS], *p = line, *name = NULL, *w;
	const char *err = NULL;
	struct admin_job *aj = NULL;
	int ac = 0, op = 0;

	while (ac < ADMIN_MAX_ARGS && (w = next_word(&p))) {
		av[ac++] = w;
		/* A roster item's name is the rest of the line, spaces kept. */
		if (ac == 5 && strcmp(av[0], "roster") == 0 && strcmp(av[1], "add") == 0) {
			size_t n;

			while (*p == ' ' || *p == '\t')
				p++;
			name = p;
			n = strlen(name);
			while (n && (name[n - 1] == ' ' || name[n - 1] == '\t' || name[n - 1] == '\r'))
				name[--n] = '\0';
			p += n;
			break;
		}
	}
	for (size_t i = 0; ac >= 2 && i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++)
		if (strcmp(av[0], admin_cmds[i].w0) == 0 && strcmp(av[1], admin_cmds[i].w1) == 0)
			op = admin_cmds[i].op;
	if (ac == 0)
		err = "empty command";
	else if (next_word(&p))
		err = "too many arguments";
	else if (strcmp(av[0], "sessions") == 0)
		err = cmd_sessions(sm, &c->out, ac, av);
	else if (!op)
		err = "unknown command (user add|user passwd|user del|user list|sessions|"
		      "roster add|roster del|roster list)";
	else if (!(aj = job_new(c, op)))
		err = "out of memory";
	else if (op == OP_USER_ADD || op == OP_USER_PASSWD)
		err = cmd_user_keys(sm, aj, ac, av);
	else if (op == OP_USER_DEL)
		err = cmd_user_jid(sm, aj, ac, av);
	else if (op == OP_USER_LIST)
		err = cmd_user_list(sm, aj, ac, av);
	else
		err = cmd_roster(sm, aj, ac, av, name ? name : "");
	if (!err && aj && op != OP_USER_LIST && !sm_owns(sm, aj->jid, strlen(aj->jid))) {
		/* Its sessions and its record in memory are another shard's:
		 * xedgectl asks that one (SM_ADMIN_SHARD_REPLY). */
		sm_buf_fmt(&c->out, "error: " SM_ADMIN_SHARD_REPLY " %zu\n",
			   shard_owner(sm->shard_names, sm->nshards, aj->jid, strlen(aj->jid)));
		free(aj);
		return;
	}
	if (!err && aj && (op == OP_ROSTER_ADD || op == OP_ROSTER_DEL)) {
		struct sm_user *u = sm_user_find(sm, aj->jid, strlen(aj->jid));

		if (u && u->state == SM_USER_READY && u->exists) {
			roster_direct(sm, &c->out, aj, u);
			free(aj);
			return;
		}
	}
	if (err) {
		free(aj);
		sm_buf_fmt(&c->out, "error: %s\n", err);
	} else if (aj) {
		c->busy = aj;
		sm_store_submit(sm->store, &aj->job);
	} else {
		sm_buf_str(&c->out, "ok\n");
	}
}

/* ---- I/O --------------------------------------------------------------- */

static void conn_flush(struct sm *sm, struct admin_conn *c)
{
	bool want;

	while (sm_buf_used(&c->out)) {
		ssize_t n = send(c->ev.fd, sm_buf_data(&c->out), sm_buf_used(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(sm, c);
			return;
		}
		sm_buf_consume(&c->out, (size_t)n);
	}
	if (c->closing && !c->busy && !sm_buf_used(&c->out)) {
		conn_close(sm, c);
		return;
	}
	want = sm_buf_used(&c->out) > 0;
	if (want != c->epollout) {
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
					  .data.ptr = &c->ev };

		if (epoll_ctl(sm->epfd, EPOLL_CTL_MOD, c->ev.fd, &ev) == 0)
			c->epollout = want;
	}
}

/* Run the complete lines received, one at a time: stop at a command whose
 * job is running (its done() calls this again). */
static void conn_lines(struct sm *sm, struct admin_conn *c)
{
	char *nl;

	while (!c->busy && (nl = memchr(sm_buf_data(&c->in), '\n', sm_buf_used(&c->in)))) {
		size_t len = (size_t)(nl - (char *)sm_buf_data(&c->in));

		*nl = '\0';
		if (memchr(sm_buf_data(&c->in), '\0', len)) {
			sm_buf_str(&c->out, "error: NUL byte in command\n");
		} else {
			admin_command(sm, c, (char *)sm_buf_data(&c->in));
			if (c->out.err) {
				/* Reply larger than ADMIN_OUT_MAX: say so, keep serving. */
				c->out.err = 0;
				sm_buf_str(&c->out, "error: reply too large\n");
			}
		}
		sm_buf_consume(&c->in, len + 1);
	}
}

static void conn_input(struct sm *sm, struct admin_conn *c)
{
	ssize_t n;

	if (c->closing)
		return;
	if (sm_buf_reserve(&c->in, 4096) < 0) {
		sm_buf_str(&c->out, "error: line too long\n");
		c->closing = true;
		return;
	}
	n = recv(c->ev.fd, c->in.p + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			c->closing = true;
		return;
	}
	if (n == 0) {
		c->closing = true;      /* answer what was asked, then close */
		return;
	}
	c->in.len += (size_t)n;
	conn_lines(sm, c);
	if (sm_buf_used(&c->in) > SM_ADMIN_LINE_MAX) {
		sm_buf_str(&c->out, "error: line too long\n");
		c->closing = true;
	}
}

static void admin_accept(struct sm *sm, struct sm_admin *a)
{
	for (;;) {
		int fd = accept4(a->ev.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct admin_conn *c;

		if (fd < 0)
			return;
		if (a->nconns >= SM_MAX_ADMIN || !(c = calloc(1, sizeof(*c)))) {
			static const char busy[] = "error: too many admin connections\n";

			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c->ev.kind = SM_EV_ADMIN;
		c->ev.fd = fd;
		c->in.max = SM_ADMIN_LINE_MAX + 4096;
		c->out.max = ADMIN_OUT_MAX;
		ev.data.ptr = &c->ev;
		if (epoll_ctl(sm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = a->conns;
		if (a->conns)
			a->conns->prev = c;
		a->conns = c;
		a->nconns++;
	}
}

void sm_admin_event(struct sm *sm, struct sm_ev *ev, uint32_t events)
{
	struct admin_conn *c;

	if (ev->kind == SM_EV_ADMIN_LISTEN) {
		admin_accept(sm, sm_container_of(ev, struct sm_admin, ev));
		return;
	}
	c = sm_container_of(ev, struct admin_conn, ev);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_input(sm, c);
	conn_flush(sm, c);
}

static void conn_orphan(struct admin_job *aj)
{
	aj->c = NULL;
}
