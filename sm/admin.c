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
#include "sm/sm_int.h"
#include "sm/store.h"

#define ADMIN_MAX_ARGS 12
#define ADMIN_MAX_ITER 10000000u
#define ADMIN_OUT_MAX (64u << 20)

struct admin_conn {
	struct sm_ev ev;
	struct sm_buf in, out;
	bool closing;               /* close once the output is written */
	bool epollout;
	struct admin_conn *next, *prev;
};

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

/* ---- commands (each returns NULL for ok, or the error reason) ---------- */

static const char *cmd_user_add(struct sm *sm, struct sm_buf *out, int ac, char **av)
{
	char jid[JID_MAX + 1];
	struct wire_scram k1, k256;
	const char *err;
	int r;

	if (ac != 11)
		return "usage: user add <jid> <salt1> <iter1> <stored1> <server1> <salt256> "
		       "<iter256> <stored256> <server256>";
	if ((err = arg_bare(sm, av[2], true, jid, sizeof(jid))) ||
	    (err = arg_scram(av + 3, 20, &k1)) || (err = arg_scram(av + 7, 32, &k256)))
		return err;
	r = sm_store_user_add(sm->store, jid, &k1, &k256);
	if (r == -EEXIST)
		return "user exists";
	if (r < 0)
		return "storage failed (see the server log)";
	log_info("user added", "jid=\"%s\"", jid);
	return NULL;
}

static const char *cmd_user_del(struct sm *sm, struct sm_buf *out, int ac, char **av)
{
	char jid[JID_MAX + 1];
	const char *err;
	unsigned kicked = 0;
	int r;

	if (ac != 3)
		return "usage: user del <jid>";
	if ((err = arg_bare(sm, av[2], true, jid, sizeof(jid))))
		return err;
	r = sm_store_user_del(sm->store, jid);
	if (r == -ENOENT)
		return "no such user";
	if (r < 0)
		return "storage failed (see the server log)";
	/* Close every session of the account, bound or still authenticating. */
	for (struct sm_link *l = sm->links; l; l = l->next) {
		struct sm_session *s, *next;

		for (s = l->shead; s; s = next) {
			next = s->lnext;
			if (s->bare && strcmp(s->bare, jid) == 0) {
				/* Ending s may end nothing else on this link: next stays valid. */
				sm_session_kick(sm, s, WIRE_CLOSE_KICKED);
				kicked++;
			}
		}
	}
	sm_buf_fmt(out, "sessions closed: %u\n", kicked);
	log_info("user deleted", "jid=\"%s\" sessions_closed=%u", jid, kicked);
	return NULL;
}

static const char *cmd_sessions(struct sm *sm, struct sm_buf *out, int ac, char **av)
{
	if (ac != 1)
		return "usage: sessions";
	for (struct sm_link *l = sm->links; l; l = l->next) {
		if (l->state == SM_LINK_DEAD)
			continue;
		for (struct sm_session *s = l->shead; s; s = s->lnext) {
			const char *state = s->state != SM_SESS_BOUND ? "unbound"
					    : s->available ? "available" : "unavailable";

			sm_buf_fmt(out, "%s %s link=%u worker=%u %s\n",
				   s->full ? s->full : s->bare ? s->bare : "-",
				   s->addr[0] ? s->addr : "-", l->id, l->worker, state);
		}
	}
	return NULL;
}

static const char *cmd_roster_add(struct sm *sm, struct sm_buf *out, int ac, char **av,
				  const char *name)
{
	char user[JID_MAX + 1], contact[JID_MAX + 1];
	const char *err;
	struct sm_user *u;
	int sub;

	if (ac < 5)
		return "usage: roster add <user-jid> <contact-jid> <none|to|from|both> [name]";
	if ((err = arg_bare(sm, av[2], true, user, sizeof(user))))
		return err;
	if ((err = arg_bare(sm, av[3], false, contact, sizeof(contact))))
		return err;
	sub = sm_sub_parse(av[4]);
	if (sub < 0)
		return "subscription must be none, to, from or both";
	if (strlen(name) > JID_PART_MAX)
		return "name too long";
	if (sm_store_user_exists(sm->store, user) != 1)
		return "no such user";
	if (sm_store_roster_put(sm->store, user, contact, name, sub) < 0)
		return "storage failed (see the server log)";
	/* Online: keep the in-memory roster in step and push the change. */
	u = sm_user_find(sm, user, strlen(user));
	if (u) {
		struct sm_roster_item *it = sm_roster_set(u, contact, name, sub);

		if (!it)
			return "stored, but the online roster is full or out of memory";
		sm_route_roster_push(sm, u, it);
	}
	return NULL;
}

static int roster_line(void *arg, const char *contact, const char *name, int sub)
{
	struct sm_buf *out = arg;

	sm_buf_fmt(out, "%s %s%s%s\n", contact, sm_sub_str(sub), name[0] ? " " : "", name);
	return 0;
}

static const char *cmd_roster_list(struct sm *sm, struct sm_buf *out, int ac, char **av)
{
	char user[JID_MAX + 1];
	const char *err;

	if (ac != 3)
		return "usage: roster list <user-jid>";
	if ((err = arg_bare(sm, av[2], true, user, sizeof(user))))
		return err;
	if (sm_store_user_exists(sm->store, user) != 1)
		return "no such user";
	if (sm_store_roster_load(sm->store, user, roster_line, out) < 0)
		return "storage failed (see the server log)";
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

/* Run one command line (NUL-terminated, no newline); append the reply. */
static void admin_command(struct sm *sm, struct sm_buf *out, char *line)
{
	char *av[ADMIN_MAX_ARGS], *p = line, *name = NULL, *w;
	const char *err;
	int ac = 0;

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
	if (ac == 0)
		err = "empty command";
	else if (next_word(&p))
		err = "too many arguments";
	else if (ac >= 2 && strcmp(av[0], "user") == 0 && strcmp(av[1], "add") == 0)
		err = cmd_user_add(sm, out, ac, av);
	else if (ac >= 2 && strcmp(av[0], "user") == 0 && strcmp(av[1], "del") == 0)
		err = cmd_user_del(sm, out, ac, av);
	else if (strcmp(av[0], "sessions") == 0)
		err = cmd_sessions(sm, out, ac, av);
	else if (ac >= 2 && strcmp(av[0], "roster") == 0 && strcmp(av[1], "add") == 0)
		err = cmd_roster_add(sm, out, ac, av, name ? name : "");
	else if (ac >= 2 && strcmp(av[0], "roster") == 0 && strcmp(av[1], "list") == 0)
		err = cmd_roster_list(sm, out, ac, av);
	else
		err = "unknown command (user add|user del|sessions|roster add|roster list)";
	if (err)
		sm_buf_fmt(out, "error: %s\n", err);
	else
		sm_buf_str(out, "ok\n");
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
	if (c->closing && !sm_buf_used(&c->out)) {
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

static void conn_input(struct sm *sm, struct admin_conn *c)
{
	char *nl;
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
	while ((nl = memchr(sm_buf_data(&c->in), '\n', sm_buf_used(&c->in)))) {
		size_t len = (size_t)(nl - (char *)sm_buf_data(&c->in));

		*nl = '\0';
		if (memchr(sm_buf_data(&c->in), '\0', len)) {
			sm_buf_str(&c->out, "error: NUL byte in command\n");
		} else {
			admin_command(sm, &c->out, (char *)sm_buf_data(&c->in));
			if (c->out.err) {
				/* Reply larger than ADMIN_OUT_MAX: say so, keep serving. */
				c->out.err = 0;
				sm_buf_str(&c->out, "error: reply too large\n");
			}
		}
		sm_buf_consume(&c->in, len + 1);
	}
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
