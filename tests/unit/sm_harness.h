/*
 * sm_harness — the fixture shared by the session-server unit tests
 * (test_sm.c, test_sm_roster.c): the session server driven the way an edge
 * drives it, real wire frames over socketpairs (sm_add_link), accounts and
 * rosters through the real admin socket, sm_run() on its own thread.  Each
 * test gets a fresh sm with a temporary database and admin socket (setup /
 * teardown).  Included by each test program (not a test itself: the Makefile
 * builds tests/unit/test_*.c); its functions are static inline so a program
 * that does not use one is not warned about it.
 */
#ifndef XEDGE_TESTS_SM_HARNESS_H
#define XEDGE_TESTS_SM_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "parser/wire.h"
#include "sm/sm.h"
#include "tls/crypto.h"

#define NLINKS 3
#define WAIT_MS 2000

/* One test-side end of a link, with its receive buffer. */
struct tlink {
	int fd;
	uint8_t buf[1 << 20];
	size_t len, consumed;   /* frames in buf[0..consumed) were handed out */
};

struct env {
	char dir[64], db[96], admin[96];
	struct sm *sm;
	pthread_t thr;
	struct tlink *l[NLINKS];
	/* keys given to `user add`, to compare with CRED_RESP */
	uint8_t salt1[16], stored1[20], server1[20];
	uint8_t salt256[16], stored256[32], server256[32];
};

static inline void *run_sm(void *arg)
{
	sm_run(arg);
	return NULL;
}

/* ---- frames ------------------------------------------------------------ */

static inline void send_frame(struct tlink *t, const struct wire_msg *m)
{
	uint8_t buf[1 << 16];
	size_t n = wire_encode(m, buf, sizeof(buf)), off = 0;

	assert_true(n > 0);
	while (off < n) {
		ssize_t w = write(t->fd, buf + off, n - off);

		assert_true(w > 0);
		off += (size_t)w;
	}
}

/* Next frame within ms: 1 and *m filled (valid until the next call), 0 on
 * timeout, -1 when the sm closed the link. */
static inline int recv_frame(struct tlink *t, struct wire_msg *m, int ms)
{
	if (t->consumed) {
		memmove(t->buf, t->buf + t->consumed, t->len - t->consumed);
		t->len -= t->consumed;
		t->consumed = 0;
	}
	for (;;) {
		long r = wire_decode(t->buf, t->len, m);
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		ssize_t n;

		assert_true(r >= 0);
		if (r > 0) {
			t->consumed = (size_t)r;
			return 1;
		}
		if (poll(&p, 1, ms) <= 0)
			return 0;
		n = read(t->fd, t->buf + t->len, sizeof(t->buf) - t->len);
		if (n <= 0)
			return -1;
		t->len += (size_t)n;
	}
}

static inline void expect_frame(struct tlink *t, struct wire_msg *m, uint8_t type)
{
	int r = recv_frame(t, m, WAIT_MS);

	if (r != 1)
		fail_msg("expected a %s frame, got %s", wire_type_str(type),
			 r == 0 ? "nothing" : "link closed");
	if (m->type != type)
		fail_msg("expected a %s frame, got %s", wire_type_str(type), wire_type_str(m->type));
}

static inline void expect_frame_any(struct tlink *t, struct wire_msg *m)
{
	if (recv_frame(t, m, WAIT_MS) != 1)
		fail_msg("expected a frame, got nothing or a closed link");
}

/* Next STANZA frame, its raw copied into out (NUL-terminated). */
static inline void expect_stanza(struct tlink *t, uint64_t sid, char *out, size_t cap)
{
	struct wire_msg m;

	expect_frame(t, &m, WIRE_STANZA);
	assert_int_equal(m.sid, sid);
	assert_true(m.u.stanza.raw.len < cap);
	memcpy(out, m.u.stanza.raw.p, m.u.stanza.raw.len);
	out[m.u.stanza.raw.len] = '\0';
}

/* Nothing arrives on t for a short while (asserted after a PING round trip,
 * so everything the sm had to send before it has been sent). */
static inline void expect_quiet(struct tlink *t)
{
	struct wire_msg m = { .type = WIRE_PING, .sid = 0 };

	m.u.ping.token = 0x5157;
	send_frame(t, &m);
	expect_frame(t, &m, WIRE_PONG);
	assert_int_equal(m.u.ping.token, 0x5157);
}

/* Discard everything the sm sent t before a PING round trip. */
static inline void drain(struct tlink *t)
{
	struct wire_msg m = { .type = WIRE_PING, .sid = 0 };

	m.u.ping.token = 0xd7a1;
	send_frame(t, &m);
	do
		expect_frame_any(t, &m);
	while (m.type != WIRE_PONG || m.u.ping.token != 0xd7a1);
}

static inline void hello(struct tlink *t, uint16_t worker, const char *secret)
{
	struct wire_msg m = { .type = WIRE_HELLO };

	m.u.hello.version = WIRE_VERSION;
	m.u.hello.worker = worker;
	m.u.hello.secret = wire_s(secret, strlen(secret));
	send_frame(t, &m);
}

static inline void stanza(struct tlink *t, uint64_t sid, int kind, const char *type,
			  const char *to, const char *from, const char *id, const char *ns,
			  const char *raw)
{
	struct wire_msg m = { .type = WIRE_STANZA, .sid = sid };

	m.u.stanza.kind = (uint8_t)kind;
	m.u.stanza.type = wire_s(type, strlen(type));
	m.u.stanza.to = wire_s(to, strlen(to));
	m.u.stanza.from = wire_s(from, strlen(from));
	m.u.stanza.id = wire_s(id, strlen(id));
	m.u.stanza.ns = wire_s(ns, strlen(ns));
	m.u.stanza.raw = wire_s(raw, strlen(raw));
	send_frame(t, &m);
}

/* SESSION_OPEN + AUTHED + BIND_REQ; returns the bound JID in jid. */
static inline void login(struct tlink *t, uint64_t sid, const char *user, const char *res,
			 char *jid)
{
	struct wire_msg m = { .type = WIRE_SESSION_OPEN, .sid = sid };

	m.u.open.flags = WIRE_OPEN_TLS;
	m.u.open.addr = wire_s("127.0.0.1:40000", 15);
	send_frame(t, &m);
	memset(&m, 0, sizeof(m));
	m.type = WIRE_AUTHED;
	m.sid = sid;
	m.u.authed.user = wire_s(user, strlen(user));
	m.u.authed.domain = wire_s("localhost", 9);
	send_frame(t, &m);
	memset(&m, 0, sizeof(m));
	m.type = WIRE_BIND_REQ;
	m.sid = sid;
	m.u.bind_req.user = wire_s(user, strlen(user));
	m.u.bind_req.domain = wire_s("localhost", 9);
	m.u.bind_req.resource = wire_s(res, strlen(res));
	send_frame(t, &m);
	expect_frame(t, &m, WIRE_BIND_RESP);
	assert_int_equal(m.sid, sid);
	assert_int_equal(m.u.bind_resp.status, WIRE_OK);
	memcpy(jid, m.u.bind_resp.jid.p, m.u.bind_resp.jid.len);
	jid[m.u.bind_resp.jid.len] = '\0';
}

/* ---- admin ------------------------------------------------------------- */

/* Send one command; the whole reply (up to the ok/error line) into out. */
static inline void admin(struct env *e, char *out, size_t cap, const char *fmt, ...)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[2048];
	size_t len = 0;
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	strcpy(sa.sun_path, e->admin);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	out[0] = '\0';
	for (;;) {
		ssize_t n = read(fd, out + len, cap - 1 - len);

		assert_true(n > 0);
		len += (size_t)n;
		out[len] = '\0';
		if ((len >= 3 && strcmp(out + len - 3, "ok\n") == 0) || strstr(out, "error: "))
			if (out[len - 1] == '\n')
				break;
	}
	close(fd);
}

static inline void admin_ok(struct env *e, const char *fmt, const char *a, const char *b,
			    const char *c)
{
	char out[4096];

	admin(e, out, sizeof(out), fmt, a, b, c);
	if (!strstr(out, "ok\n"))
		fail_msg("admin command failed: %s", out);
}

static inline void hexs(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* `user add` as xedgectl does it: keys derived here, hex over the socket. */
static inline void add_user(struct env *e, const char *jid, const char *pw)
{
	char h[8][80], out[1024];

	assert_int_equal(crypto_random(e->salt1, 16), 0);
	assert_int_equal(crypto_random(e->salt256, 16), 0);
	assert_int_equal(crypto_scram_keys(CRYPTO_SHA1, pw, strlen(pw), e->salt1, 16, 4096,
					   e->stored1, e->server1), 0);
	assert_int_equal(crypto_scram_keys(CRYPTO_SHA256, pw, strlen(pw), e->salt256, 16, 4096,
					   e->stored256, e->server256), 0);
	hexs(h[0], e->salt1, 16);
	hexs(h[1], e->stored1, 20);
	hexs(h[2], e->server1, 20);
	hexs(h[3], e->salt256, 16);
	hexs(h[4], e->stored256, 32);
	hexs(h[5], e->server256, 32);
	admin(e, out, sizeof(out), "user add %s %s 4096 %s %s %s 4096 %s %s", jid, h[0], h[1],
	      h[2], h[3], h[4], h[5]);
	/* The reply names the account as stored: canonical. */
	assert_non_null(strstr(out, " added\nok\n"));
	assert_int_equal(strncasecmp(out, "user ", 5), 0);
	assert_int_equal(strncasecmp(out + 5, jid, strlen(jid)), 0);
}

/* ---- fixture ----------------------------------------------------------- */

/* setup() with the configuration adjusted by tune (NULL: none) first. */
static inline int setup_tuned(void **state, void (*tune)(struct sm_config *))
{
	static const char *const domains[] = { "localhost" };
	struct env *e = calloc(1, sizeof(*e));
	struct sm_config cfg = { 0 };

	assert_non_null(e);
	strcpy(e->dir, "/tmp/test_sm.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->db, sizeof(e->db), "%s/sm.db", e->dir);
	snprintf(e->admin, sizeof(e->admin), "%s/admin.sock", e->dir);
	cfg.database = e->db;
	cfg.admin_socket = e->admin;
	cfg.secret = "s3cret";
	cfg.domains = domains;
	cfg.ndomains = 1;
	if (tune)
		tune(&cfg);
	e->sm = sm_new(&cfg);
	assert_non_null(e->sm);
	for (int i = 0; i < NLINKS; i++) {
		int sv[2];

		e->l[i] = calloc(1, sizeof(struct tlink));
		assert_non_null(e->l[i]);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(sm_add_link(e->sm, sv[1]), 0);
		e->l[i]->fd = sv[0];
	}
	assert_int_equal(pthread_create(&e->thr, NULL, run_sm, e->sm), 0);
	*state = e;
	return 0;
}

static inline int setup(void **state)
{
	return setup_tuned(state, NULL);
}

static inline int teardown(void **state)
{
	struct env *e = *state;
	char path[128];

	sm_stop(e->sm);
	pthread_join(e->thr, NULL);
	sm_free(e->sm);
	for (int i = 0; i < NLINKS; i++) {
		close(e->l[i]->fd);
		free(e->l[i]);
	}
	/* The admin socket is removed by sm_free; the database and its WAL here. */
	assert_int_equal(access(e->admin, F_OK), -1);
	unlink(e->db);
	snprintf(path, sizeof(path), "%s-wal", e->db);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", e->db);
	unlink(path);
	rmdir(e->dir);
	free(e);
	return 0;
}

/* Both links said hello; alice and bob exist and see each other (both). */
static inline void two_users(struct env *e)
{
	struct wire_msg m;

	for (int i = 0; i < 2; i++) {
		hello(e->l[i], (uint16_t)i, "s3cret");
		expect_frame(e->l[i], &m, WIRE_HELLO_OK);
		assert_int_equal(m.u.hello_ok.version, WIRE_VERSION);
	}
	add_user(e, "alice@localhost", "alicepass");
	add_user(e, "bob@localhost", "bobpass");
	admin_ok(e, "roster add %s %s both %s", "alice@localhost", "bob@localhost", "Bob B");
	admin_ok(e, "roster add %s %s both %s", "bob@localhost", "alice@localhost", "Alice");
}

#endif
