/*
 * test_resolve — core/resolve.c.
 *
 * Without DNS: host-name checks, the SRV ordering of RFC 2782 (priorities,
 * weights with a scripted and with a seeded random source, zero weights),
 * XEP-0368's mixing of xmpps/xmpp records, the "." rule, and hostile SRV
 * answers built byte by byte (thousands of records, over-long and escaped
 * names, port 0, truncated messages).
 *
 * With DNS: a dnsmasq on 127.0.0.1 (a free port, --no-resolv: it answers from
 * its command line only) and the resolver thread against it, answers coming
 * back through an offload port woken by io_uring: SRV of both kinds, the
 * A/AAAA fallback, AAAA, NXDOMAIN, ".", the bounds, IP literals, a silent
 * server (timeout), a closed port, cancel, stop with requests in flight, the
 * in-flight bound.  Skipped (cmocka skip) without dnsmasq or io_uring.  No
 * query ever leaves 127.0.0.0/8: every resolver here is given its servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/resolve.h"

/* ---- DNS messages built by hand ----------------------------------------- */

struct msg {
	unsigned char b[65535];
	size_t len;
};

static void put8(struct msg *m, unsigned v)
{
	assert_true(m->len < sizeof(m->b));
	m->b[m->len++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put_label(struct msg *m, const void *p, size_t n)
{
	put8(m, (unsigned)n);
	for (size_t i = 0; i < n; i++)
		put8(m, ((const unsigned char *)p)[i]);
}

/* "a.b.c" as labels; "" or "." is the root. */
static void put_name(struct msg *m, const char *name)
{
	while (*name && strcmp(name, ".") != 0) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		put_label(m, name, n);
		name += n + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* A response header and question for SRV qname, an answers to follow. */
static void srv_msg(struct msg *m, const char *qname, unsigned an)
{
	m->len = 0;
	put16(m, 0x1234);
	put16(m, 0x8180);   /* response, RD, RA, NOERROR */
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, 33);       /* SRV */
	put16(m, 1);        /* IN */
}

/* One SRV answer record; its target given as a dotted name. */
static void srv_rr(struct msg *m, unsigned prio, unsigned weight, unsigned port, const char *target)
{
	size_t rdlen_at;

	put16(m, 0xc00c);   /* owner: the question's name */
	put16(m, 33);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);      /* TTL */
	rdlen_at = m->len;
	put16(m, 0);
	put16(m, prio);
	put16(m, weight);
	put16(m, port);
	put_name(m, target);
	m->b[rdlen_at] = (unsigned char)((m->len - rdlen_at - 2) >> 8);
	m->b[rdlen_at + 1] = (unsigned char)((m->len - rdlen_at - 2) & 0xff);
}

static int add_msg(struct resolve_srv_set *set, const struct msg *m, bool direct_tls)
{
	return resolve_srv_add_answer(set, m->b, (int)m->len, direct_tls);
}

static struct resolve_srv rec(const char *host, unsigned prio, unsigned weight, unsigned port)
{
	struct resolve_srv r = { .priority = (uint16_t)prio, .weight = (uint16_t)weight,
				 .port = (uint16_t)port };

	snprintf(r.host, sizeof(r.host), "%s", host);
	return r;
}

/* ---- pure tests -------------------------------------------------------- */

static void test_name_ok(void **state)
{
	char name[300];

	assert_true(resolve_name_ok("example.com"));
	assert_true(resolve_name_ok("a"));
	assert_true(resolve_name_ok("xn--bcher-kva.example"));
	assert_true(resolve_name_ok("_srv.host-1.example"));
	assert_false(resolve_name_ok(""));
	assert_false(resolve_name_ok("."));
	assert_false(resolve_name_ok("example.com."));   /* callers strip the final dot */
	assert_false(resolve_name_ok(".example.com"));
	assert_false(resolve_name_ok("a..b"));
	assert_false(resolve_name_ok("bad domain"));
	assert_false(resolve_name_ok("a\\.b"));          /* an escape c-ares would make */
	assert_false(resolve_name_ok("b\xc3\xbc" "cher.example"));  /* IDN: A-labels only */
	assert_false(resolve_name_ok("[::1]"));
	/* Labels of 63 bytes at most. */
	memset(name, 'a', 64);
	name[64] = '\0';
	assert_false(resolve_name_ok(name));
	name[63] = '\0';
	assert_true(resolve_name_ok(name));
	/* 253 bytes at most. */
	for (int i = 0; i < 299; i++)
		name[i] = i % 50 == 49 ? '.' : 'a';
	name[253] = '\0';
	assert_true(resolve_name_ok(name));
	name[253] = 'a';
	name[254] = '\0';
	assert_false(resolve_name_ok(name));
}

/* A scripted random source: returns pick[i] in turn, records the bounds. */
struct script {
	uint32_t pick[32], bound[32];
	unsigned n, used;
};

static uint32_t script_rand(void *arg, uint32_t bound)
{
	struct script *s = arg;

	assert_true(s->used < s->n);
	s->bound[s->used] = bound;
	assert_true(s->pick[s->used] < bound);
	return s->pick[s->used++];
}

static void assert_order(const struct resolve_srv *r, size_t n, const char *const *hosts)
{
	for (size_t i = 0; i < n; i++)
		assert_string_equal(r[i].host, hosts[i]);
}

static void test_order_priority(void **state)
{
	struct resolve_srv r[5] = {
		rec("c", 30, 0, 1), rec("a1", 10, 0, 1), rec("b", 20, 0, 1),
		rec("a2", 10, 0, 1), rec("a3", 10, 0, 1),
	};
	struct script s = { .n = 32 };   /* all picks 0 */
	static const char *const want[] = { "a1", "a2", "a3", "b", "c" };

	/* Lowest priority first; all weights 0: kept in the order they came
	 * (the draw is from [0, 0]). */
	resolve_srv_order(r, 5, script_rand, &s);
	assert_order(r, 5, want);
	for (unsigned i = 0; i < s.used; i++)
		assert_int_equal(s.bound[i], 1);
	/* A draw per choice that is not the last of its priority. */
	assert_int_equal(s.used, 2);
}

static void test_order_weights_scripted(void **state)
{
	/* One priority, weights 10, 0, 30: the zero weight goes first in the
	 * list the draw walks, running sums 0, 10, 40, draw in [0, 40]. */
	struct resolve_srv r[3] = { rec("w10", 5, 10, 1), rec("w0", 5, 0, 1), rec("w30", 5, 30, 1) };
	struct script s = { .pick = { 0, 0 }, .n = 2 };
	static const char *const want0[] = { "w0", "w10", "w30" };
	static const char *const want1[] = { "w10", "w0", "w30" };
	static const char *const want2[] = { "w30", "w0", "w10" };
	static const char *const want3[] = { "w30", "w10", "w0" };

	resolve_srv_order(r, 3, script_rand, &s);
	assert_order(r, 3, want0);              /* 0: the zero weight's running sum reaches it */
	assert_int_equal(s.bound[0], 41);
	assert_int_equal(s.bound[1], 41);       /* w10 and w30 left */

	r[0] = rec("w10", 5, 10, 1), r[1] = rec("w0", 5, 0, 1), r[2] = rec("w30", 5, 30, 1);
	s = (struct script){ .pick = { 1, 0 }, .n = 2 };
	resolve_srv_order(r, 3, script_rand, &s);
	assert_order(r, 3, want1);              /* 1..10: w10; then w0, w30 (sums 0, 30), draw 0: w0 */
	assert_int_equal(s.bound[1], 31);

	r[0] = rec("w10", 5, 10, 1), r[1] = rec("w0", 5, 0, 1), r[2] = rec("w30", 5, 30, 1);
	s = (struct script){ .pick = { 11, 0 }, .n = 2 };
	resolve_srv_order(r, 3, script_rand, &s);
	assert_order(r, 3, want2);              /* 11..40: w30; then w0 (draw 0), w10 */

	r[0] = rec("w10", 5, 10, 1), r[1] = rec("w0", 5, 0, 1), r[2] = rec("w30", 5, 30, 1);
	s = (struct script){ .pick = { 40, 1 }, .n = 2 };
	resolve_srv_order(r, 3, script_rand, &s);
	assert_order(r, 3, want3);              /* 40: w30; then draw 1 of [0, 10]: w10 */
	assert_int_equal(s.bound[1], 11);
}

/* A seeded generator: the weights hold over many draws. */
static uint32_t xorshift_rand(void *arg, uint32_t bound)
{
	uint64_t *x = arg;

	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x % bound);
}

static void test_order_weights_stats(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	unsigned first[3] = { 0 }, zero_first = 0;
	const unsigned trials = 50000;

	for (unsigned t = 0; t < trials; t++) {
		/* Priority 1 (weights 1, 3) before priority 2, whatever the weights. */
		struct resolve_srv r[4] = { rec("p2", 2, 60000, 1), rec("light", 1, 1, 1),
					    rec("heavy", 1, 3, 1), rec("p2b", 2, 1, 1) };

		resolve_srv_order(r, 4, xorshift_rand, &seed);
		assert_int_equal(r[0].priority, 1);
		assert_int_equal(r[1].priority, 1);
		assert_int_equal(r[2].priority, 2);
		first[strcmp(r[0].host, "light") == 0 ? 0 : 1]++;
		first[2] += strcmp(r[2].host, "p2") == 0;
	}
	/* RFC 2782's draw from [0, 4]: "light" for 0..1 (2/5), "heavy" for 2..4. */
	assert_in_range(first[0], trials * 2 / 5 - trials / 50, trials * 2 / 5 + trials / 50);
	assert_in_range(first[1], trials * 3 / 5 - trials / 50, trials * 3 / 5 + trials / 50);
	/* 60001/60002 of the time "p2" (weight 60000) leads priority 2. */
	assert_true(first[2] > trials - trials / 100);

	/* A zero weight among weights: first only when the draw is 0 (1/101). */
	for (unsigned t = 0; t < trials; t++) {
		struct resolve_srv r[2] = { rec("w100", 0, 100, 1), rec("w0", 0, 0, 1) };

		resolve_srv_order(r, 2, xorshift_rand, &seed);
		zero_first += strcmp(r[0].host, "w0") == 0;
	}
	assert_in_range(zero_first, trials / 101 / 2, trials / 101 * 2);
	/* The default source (arc4random) works too. */
	{
		struct resolve_srv r[3] = { rec("b", 2, 5, 1), rec("a", 1, 5, 1), rec("c", 3, 0, 1) };
		static const char *const want[] = { "a", "b", "c" };

		resolve_srv_order(r, 3, NULL, NULL);
		assert_order(r, 3, want);
	}
}

static void test_mix_services(void **state)
{
	struct resolve_srv_set set = { 0 };
	struct msg *m = malloc(sizeof(*m));
	struct script s = { .n = 32 };

	assert_non_null(m);
	/* xmpps: priority 10; xmpp: priorities 5 and 10 (weights 0). */
	srv_msg(m, "_xmpps-server._tcp.example.org", 1);
	srv_rr(m, 10, 0, 5270, "tls.example.org");
	assert_int_equal(add_msg(&set, m, true), 0);
	srv_msg(m, "_xmpp-server._tcp.example.org", 2);
	srv_rr(m, 10, 0, 5269, "plain10.example.org");
	srv_rr(m, 5, 0, 5269, "plain5.example.org");
	assert_int_equal(add_msg(&set, m, false), 0);
	assert_int_equal(set.n, 3);
	assert_false(set.dot);
	assert_int_equal(set.err, 0);
	/* One list, as if one RRset: the STARTTLS record of priority 5 first,
	 * then priority 10 of both kinds. */
	resolve_srv_order(set.rec, set.n, script_rand, &s);
	assert_string_equal(set.rec[0].host, "plain5.example.org");
	assert_false(set.rec[0].direct_tls);
	assert_string_equal(set.rec[1].host, "tls.example.org");
	assert_true(set.rec[1].direct_tls);
	assert_int_equal(set.rec[1].port, 5270);
	assert_string_equal(set.rec[2].host, "plain10.example.org");
	assert_false(set.rec[2].direct_tls);

	/* Weights mix across the two services as well. */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpps-server._tcp.example.org", 1);
	srv_rr(m, 1, 1, 5270, "tls.example.org");
	add_msg(&set, m, true);
	srv_msg(m, "_xmpp-server._tcp.example.org", 1);
	srv_rr(m, 1, 9, 5269, "plain.example.org");
	add_msg(&set, m, false);
	s = (struct script){ .pick = { 5 }, .n = 1 };
	resolve_srv_order(set.rec, set.n, script_rand, &s);
	assert_int_equal(s.bound[0], 11);
	assert_string_equal(set.rec[0].host, "plain.example.org");   /* running sums 1, 10 */
	free(m);
}

static void test_dot(void **state)
{
	struct resolve_srv_set set = { 0 };
	struct msg *m = malloc(sizeof(*m));

	assert_non_null(m);
	/* A single "." record: the service is not offered. */
	srv_msg(m, "_xmpp-server._tcp.example.org", 1);
	srv_rr(m, 0, 0, 5269, ".");
	assert_int_equal(add_msg(&set, m, false), 0);
	assert_true(set.dot);
	assert_int_equal(set.n, 0);

	/* xmpps says ".", xmpp has a record: the xmpp record is used. */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpps-server._tcp.example.org", 1);
	srv_rr(m, 0, 0, 0, ".");
	add_msg(&set, m, true);
	srv_msg(m, "_xmpp-server._tcp.example.org", 1);
	srv_rr(m, 0, 0, 5269, "xmpp.example.org");
	add_msg(&set, m, false);
	assert_true(set.dot);
	assert_int_equal(set.n, 1);
	assert_false(set.rec[0].direct_tls);

	/* "." among other records is not the rule: it is skipped, the rest used. */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpp-server._tcp.example.org", 2);
	srv_rr(m, 0, 0, 5269, ".");
	srv_rr(m, 1, 0, 5269, "xmpp.example.org");
	add_msg(&set, m, false);
	assert_false(set.dot);
	assert_int_equal(set.n, 1);
	assert_int_equal(set.skipped, 1);
	assert_string_equal(set.rec[0].host, "xmpp.example.org");

	/* No answer record at all: no records, no dot, no error (fallback). */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpp-server._tcp.example.org", 0);
	assert_int_equal(add_msg(&set, m, false), 0);
	assert_int_equal(set.n, 0);
	assert_false(set.dot);
	assert_int_equal(set.err, 0);
	free(m);
}

static void test_hostile_answers(void **state)
{
	struct resolve_srv_set set = { 0 };
	struct msg *m = malloc(sizeof(*m));
	char longname[300];
	const unsigned many = 1500;   /* 33 bytes each: most of a 64 KiB message */

	assert_non_null(m);
	/* 1500 records, priorities 1500 down to 1: 16 kept, the 16 lowest. */
	srv_msg(m, "_xmpp-server._tcp.example.org", many);
	for (unsigned i = 0; i < many; i++)
		srv_rr(m, many - i, 0, 5269, "h.example.org");
	assert_int_equal(add_msg(&set, m, false), 0);
	assert_int_equal(set.n, RESOLVE_SRV_MAX);
	assert_int_equal(set.skipped, many - RESOLVE_SRV_MAX);
	for (size_t i = 0; i < set.n; i++)
		assert_true(set.rec[i].priority <= RESOLVE_SRV_MAX);
	/* A full set takes a better record and drops its worst. */
	{
		struct resolve_srv better = rec("better.example.org", 0, 0, 1);

		resolve_srv_offer(&set, &better);
		assert_int_equal(set.n, RESOLVE_SRV_MAX);
		assert_string_equal(set.rec[set.n - 1].host, "better.example.org");
		for (size_t i = 0; i < set.n; i++)
			assert_true(set.rec[i].priority < RESOLVE_SRV_MAX);
	}

	/* Names that are no host names: skipped, never stored or truncated. */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpp-server._tcp.example.org", 5);
	/* 4 labels of 63 bytes: 255 characters, over 253. */
	for (int i = 0; i < 255; i++)
		longname[i] = i % 64 == 63 ? '.' : 'x';
	longname[255] = '\0';
	srv_rr(m, 1, 0, 5269, longname);
	/* Bytes that c-ares escapes: a dot inside a label, a NUL, a control. */
	{
		size_t rdlen_at;
		static const unsigned char bad[][4] = { { 'a', '.', 'b' }, { 'a', 0, 'b' }, { 'a', 0x07, 'b' } };

		for (int k = 0; k < 3; k++) {
			put16(m, 0xc00c);
			put16(m, 33);
			put16(m, 1);
			put16(m, 0);
			put16(m, 300);
			rdlen_at = m->len;
			put16(m, 0);
			put16(m, 1);
			put16(m, 0);
			put16(m, 5269);
			put_label(m, bad[k], 3);
			put_label(m, "example", 7);
			put8(m, 0);
			m->b[rdlen_at + 1] = (unsigned char)(m->len - rdlen_at - 2);
		}
	}
	srv_rr(m, 1, 0, 0, "port0.example.org");   /* port 0: nothing to connect to */
	assert_int_equal(add_msg(&set, m, false), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.skipped, 5);
	assert_false(set.dot);

	/* Truncated or inconsistent messages: an error, nothing kept. */
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpp-server._tcp.example.org", 3);
	srv_rr(m, 1, 0, 5269, "a.example.org");
	assert_true(add_msg(&set, m, false) < 0);   /* claims 3 answers, has 1 */
	assert_int_equal(set.n, 0);
	assert_int_equal(set.err, -EIO);
	memset(&set, 0, sizeof(set));
	srv_msg(m, "_xmpp-server._tcp.example.org", 1);
	srv_rr(m, 1, 0, 5269, "a.example.org");
	for (size_t cut = 0; cut < m->len; cut++) {
		struct resolve_srv_set s2 = { 0 };

		resolve_srv_add_answer(&s2, m->b, (int)cut, false);
		assert_int_equal(s2.n, 0);
		assert_true(s2.err < 0);
	}
	/* A compression loop in the target. */
	srv_msg(m, "_xmpp-server._tcp.example.org", 1);
	put16(m, 0xc00c);
	put16(m, 33);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);
	put16(m, 8);
	put16(m, 1);
	put16(m, 0);
	put16(m, 5269);
	put16(m, 0xc000 | (unsigned)m->len);   /* points at itself */
	memset(&set, 0, sizeof(set));
	assert_true(add_msg(&set, m, false) < 0);
	assert_int_equal(set.n, 0);
	free(m);
}

static void test_errno_map(void **state)
{
	assert_int_equal(resolve_ares_errno(ARES_SUCCESS), 0);
	assert_int_equal(resolve_ares_errno(ARES_ENODATA), -ENOENT);
	assert_int_equal(resolve_ares_errno(ARES_ENOTFOUND), -ENOENT);
	assert_int_equal(resolve_ares_errno(ARES_ETIMEOUT), -ETIMEDOUT);
	assert_int_equal(resolve_ares_errno(ARES_ECONNREFUSED), -ECONNREFUSED);
	assert_int_equal(resolve_ares_errno(ARES_ESERVFAIL), -EIO);
	assert_int_equal(resolve_ares_errno(ARES_EREFUSED), -EIO);
	assert_int_equal(resolve_ares_errno(ARES_EBADRESP), -EIO);
	assert_int_equal(resolve_ares_errno(ARES_ECANCELLED), -ECANCELED);
	assert_int_equal(resolve_ares_errno(ARES_EDESTRUCTION), -ECANCELED);
}

/* ---- against a real DNS server (dnsmasq on 127.0.0.1) -------------------- */

#ifndef DNSMASQ
#define DNSMASQ "/usr/sbin/dnsmasq"
#endif
#define WAKE_DATA 0x5151ULL

struct env {
	bool skip;
	const char *why;
	pid_t dnsmasq;
	int port;                  /* dnsmasq's */
	int silent_fd, silent_port;  /* a UDP socket that never answers */
	int closed_port;           /* nothing listens there */
	struct io_uring ring;
	struct offload_port port_;
	struct resolver *r;        /* against dnsmasq */
};

static int done_total;       /* done() calls, all requests */

struct treq {
	struct resolve_req q;      /* first */
	pthread_t owner;
	int done, on_owner;
};

static void treq_done(struct offload_job *j)
{
	struct treq *t = (struct treq *)j;

	t->done++;
	done_total++;
	t->on_owner = pthread_equal(t->owner, pthread_self());
}

static void treq_init(struct treq *t, const char *domain)
{
	memset(t, 0, sizeof(*t));
	t->q.job.done = treq_done;
	t->owner = pthread_self();
	snprintf(t->q.domain, sizeof(t->q.domain), "%s", domain);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned wakes;   /* wake-ups seen on the ring */

/* Wait (on the ring, as a worker does) until *counter reaches want or
 * deadline_ms has passed; drain the port each time.  Returns whether it did. */
static bool wait_for(struct env *e, const int *counter, int want, unsigned deadline_ms)
{
	uint64_t end = now_ms() + deadline_ms;

	while (*counter < want && now_ms() < end) {
		struct __kernel_timespec ts = { .tv_nsec = 50 * 1000000 };
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe_timeout(&e->ring, &cqe, &ts) == 0) {
			if (cqe->user_data == WAKE_DATA)
				wakes++;
			io_uring_cqe_seen(&e->ring, cqe);
		}
		offload_drain(&e->port_);
	}
	return *counter >= want;
}

static struct treq *resolve_wait(struct env *e, struct resolver *r, const char *domain,
				 unsigned deadline_ms)
{
	struct treq *t = malloc(sizeof(*t));

	assert_non_null(t);
	treq_init(t, domain);
	assert_int_equal(resolve_s2s(r, &e->port_, &t->q), 0);
	assert_true(wait_for(e, &t->done, 1, deadline_ms));
	assert_int_equal(t->done, 1);
	assert_true(t->on_owner);
	return t;
}

static void treq_free(struct treq *t)
{
	resolve_req_clear(&t->q);
	free(t);
}

static int free_port(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int lifeline[2];   /* the pipe between the test and dnsmasq's watchdog */

/* Start dnsmasq on 127.0.0.1:port; returns its watchdog's pid (see below). */
static pid_t spawn_dnsmasq(int port)
{
	char portarg[32];
	const char *argv[80];
	int n = 0;
	pid_t pid;

	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	argv[n++] = DNSMASQ;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--pid-file=";
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = portarg;
	argv[n++] = "--local=/test/";   /* authoritative for .test: NXDOMAIN, never forwarded */
	argv[n++] = "--cache-size=0";
	/* SRV of both kinds, mixed by priority. */
	argv[n++] = "--srv-host=_xmpps-server._tcp.srv.test,tls.srv.test,5223,5,0";
	argv[n++] = "--srv-host=_xmpp-server._tcp.srv.test,plain.srv.test,5269,10,0";
	argv[n++] = "--srv-host=_xmpp-server._tcp.srv.test,plain2.srv.test,5270,20,0";
	argv[n++] = "--host-record=tls.srv.test,127.0.0.2";
	argv[n++] = "--host-record=plain.srv.test,127.0.0.3,::1";
	argv[n++] = "--host-record=plain2.srv.test,127.0.0.4";
	/* No SRV: A fallback; AAAA only. */
	argv[n++] = "--address=/a.test/127.0.0.9";
	argv[n++] = "--host-record=v6.test,::1";
	/* ".": no service, and no fallback although the domain has an address. */
	argv[n++] = "--srv-host=_xmpp-server._tcp.dot.test";
	argv[n++] = "--srv-host=_xmpps-server._tcp.dot.test";
	argv[n++] = "--host-record=dot.test,127.0.0.9";
	argv[n++] = "--srv-host=_xmpps-server._tcp.dots.test";   /* xmpps "." alone */
	argv[n++] = "--host-record=dots.test,127.0.0.9";
	argv[n++] = "--srv-host=_xmpps-server._tcp.dotx.test";   /* xmpps ".", xmpp record */
	argv[n++] = "--srv-host=_xmpp-server._tcp.dotx.test,x.dotx.test,5269,0,0";
	argv[n++] = "--host-record=x.dotx.test,127.0.0.5";
	/* An SRV target without address: no fallback to the domain's A. */
	argv[n++] = "--srv-host=_xmpp-server._tcp.noaddr.test,gone.noaddr.test,5269,0,0";
	argv[n++] = "--host-record=noaddr.test,127.0.0.9";
	/* The bounds: 20 SRV records (priority i for t<i>), 10 addresses each. */
	static char many[20][128];
	for (int i = 0; i < 20; i++) {
		snprintf(many[i], sizeof(many[i]),
			 "--srv-host=_xmpp-server._tcp.many.test,t%d.many.test,%d,%d,0", i + 1,
			 6000 + i + 1, i + 1);
		argv[n++] = many[i];
	}
	static char addrs[10][64];
	for (int i = 0; i < 10; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "--address=/many.test/127.0.1.%d", i + 1);
		argv[n++] = addrs[i];
	}
	argv[n] = NULL;
	assert_true(n < 80);

	/*
	 * dnsmasq must never outlive the test, even one killed by SIGKILL, and
	 * PR_SET_PDEATHSIG does not survive dnsmasq's capability changes.  So a
	 * watchdog process of ours sits between: it holds the read end of a pipe
	 * whose write end only the test holds, and ends dnsmasq when that pipe
	 * closes (the test stopped it or died); it exits when dnsmasq does.
	 */
	assert_int_equal(pipe2(lifeline, O_CLOEXEC), 0);
	pid = fork();
	if (pid == 0) {
		struct pollfd pf[2];
		pid_t dns;
		int null = open("/dev/null", O_RDWR);

		close(lifeline[1]);
		if (!getenv("RESOLVE_TEST_VERBOSE") && null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		dns = fork();
		if (dns == 0) {
			execv(DNSMASQ, (char *const *)argv);
			_exit(127);
		}
		pf[0] = (struct pollfd){ .fd = lifeline[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = (int)syscall(SYS_pidfd_open, dns, 0), .events = POLLIN };
		while (poll(pf, pf[1].fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR)
			;
		kill(dns, SIGTERM);   /* harmless if it already exited */
		waitpid(dns, NULL, 0);
		_exit(0);
	}
	close(lifeline[0]);
	return pid;
}

static void stop_dnsmasq(struct env *e)
{
	if (e->dnsmasq > 0) {
		close(lifeline[1]);
		waitpid(e->dnsmasq, NULL, 0);
		e->dnsmasq = 0;
	}
}

static int start_resolver(struct resolver **r, int port, unsigned timeout_ms, unsigned tries)
{
	char servers[64];
	struct resolver_opts o = { .servers = servers, .timeout_ms = timeout_ms, .tries = tries };

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	return resolver_start(r, &o);
}

static int dns_setup(void **state)
{
	static struct env e;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(&e, 0, sizeof(e));
	e.silent_fd = -1;
	*state = &e;
	if (access(DNSMASQ, X_OK) != 0) {
		e.skip = true;
		e.why = DNSMASQ " is not installed";
		return 0;
	}
	if (io_uring_queue_init(16, &e.ring, 0) < 0) {
		e.skip = true;
		e.why = "io_uring is not available";
		return 0;
	}
	assert_int_equal(offload_port_init(&e.port_, e.ring.ring_fd, WAKE_DATA), 0);
	/* A server that never answers: a bound UDP socket nobody reads. */
	e.silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(e.silent_fd >= 0);
	assert_int_equal(bind(e.silent_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(e.silent_fd, (struct sockaddr *)&sa, &len), 0);
	e.silent_port = ntohs(sa.sin_port);
	e.closed_port = free_port(SOCK_DGRAM);

	/* dnsmasq on a free port: the port may be taken between our probe and
	 * its bind, so a start that exits is tried again elsewhere.  Ready once
	 * it answers. */
	for (int attempt = 0; attempt < 5; attempt++) {
		uint64_t end = now_ms() + 10000;
		bool ready = false;
		int never = 0;

		e.port = free_port(SOCK_DGRAM);
		e.dnsmasq = spawn_dnsmasq(e.port);
		assert_true(e.dnsmasq > 0);
		assert_int_equal(start_resolver(&e.r, e.port, 200, 1), 0);
		while (!ready && now_ms() < end) {
			struct treq *t = resolve_wait(&e, e.r, "a.test", 5000);

			ready = t->q.status == 0;
			treq_free(t);
			if (!ready && waitpid(e.dnsmasq, NULL, WNOHANG) == e.dnsmasq) {
				/* dnsmasq exited (the port was taken), so did its watchdog */
				close(lifeline[1]);
				e.dnsmasq = 0;
				break;
			}
			if (!ready)
				wait_for(&e, &never, 1, 20);   /* not listening yet: ask again soon */
		}
		if (ready)
			break;
		resolver_stop(e.r);
		e.r = NULL;
		stop_dnsmasq(&e);
	}
	assert_non_null(e.r);
	return 0;
}

static int dns_teardown(void **state)
{
	struct env *e = *state;
	int never = 0;

	if (e->skip)
		return 0;
	stop_dnsmasq(e);   /* first: an assertion below must not leave it running */
	resolver_stop(e->r);
	for (uint64_t end = now_ms() + 2000; offload_port_busy(&e->port_) && now_ms() < end;)
		wait_for(e, &never, 1, 50);
	assert_false(offload_port_busy(&e->port_));
	offload_port_destroy(&e->port_);
	io_uring_queue_exit(&e->ring);
	if (e->silent_fd >= 0)
		close(e->silent_fd);
	return 0;
}

#define NEED_DNS(e)                                            \
	do {                                                   \
		if ((e)->skip) {                               \
			print_message("skipped: %s\n", (e)->why); \
			skip();                                \
		}                                              \
	} while (0)

static void assert_target(const struct resolve_target *t, const char *host, const char *ip,
			  unsigned port, bool direct_tls, bool srv)
{
	char buf[INET6_ADDRSTRLEN];

	assert_string_equal(t->host, host);
	assert_int_equal(t->port, port);
	assert_int_equal(t->direct_tls, direct_tls);
	assert_int_equal(t->srv, srv);
	if (t->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&t->addr;

		assert_int_equal(t->addrlen, sizeof(*s));
		assert_int_equal(ntohs(s->sin_port), port);
		inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&t->addr;

		assert_int_equal(t->addr.ss_family, AF_INET6);
		assert_int_equal(t->addrlen, sizeof(*s));
		assert_int_equal(ntohs(s->sin6_port), port);
		inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
	}
	assert_string_equal(buf, ip);
}

static void test_dns_srv(void **state)
{
	struct env *e = *state;
	struct treq *t;
	int v4 = 1, v6 = 2;

	NEED_DNS(e);
	wakes = 0;
	t = resolve_wait(e, e->r, "srv.test", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, 4);
	/* Priority 5 (xmpps), then 10 (xmpp, two addresses in RFC 6724 order), then 20. */
	assert_target(&t->q.targets[0], "tls.srv.test", "127.0.0.2", 5223, true, true);
	if (t->q.targets[1].addr.ss_family == AF_INET6)
		v4 = 2, v6 = 1;
	assert_target(&t->q.targets[v4], "plain.srv.test", "127.0.0.3", 5269, false, true);
	assert_target(&t->q.targets[v6], "plain.srv.test", "::1", 5269, false, true);
	assert_target(&t->q.targets[3], "plain2.srv.test", "127.0.0.4", 5270, false, true);
	treq_free(t);
	/* The answer came through the port's ring. */
	assert_true(wakes >= 1);
}

static void test_dns_fallback(void **state)
{
	struct env *e = *state;
	struct treq *t;

	NEED_DNS(e);
	/* No SRV: the domain's A record, port 5269, STARTTLS. */
	t = resolve_wait(e, e->r, "a.test", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, 1);
	assert_target(&t->q.targets[0], "a.test", "127.0.0.9", 5269, false, false);
	treq_free(t);
	/* AAAA only. */
	t = resolve_wait(e, e->r, "v6.test", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, 1);
	assert_target(&t->q.targets[0], "v6.test", "::1", 5269, false, false);
	treq_free(t);
	/* No such domain. */
	t = resolve_wait(e, e->r, "nx.test", 5000);
	assert_int_equal(t->q.status, -ENOENT);
	assert_int_equal(t->q.ntargets, 0);
	assert_null(t->q.targets);
	treq_free(t);
	/* SRV records whose target has no address: no fallback to the domain's. */
	t = resolve_wait(e, e->r, "noaddr.test", 5000);
	assert_int_equal(t->q.status, -ENOENT);
	assert_int_equal(t->q.ntargets, 0);
	treq_free(t);
}

static void test_dns_dot(void **state)
{
	struct env *e = *state;
	struct treq *t;

	NEED_DNS(e);
	/* Both services ".": not offered, and the domain's A is not tried. */
	t = resolve_wait(e, e->r, "dot.test", 5000);
	assert_int_equal(t->q.status, -ENOENT);
	assert_int_equal(t->q.ntargets, 0);
	treq_free(t);
	/* xmpps "." and no xmpp record: XEP-0368 forbids the A/AAAA fallback. */
	t = resolve_wait(e, e->r, "dots.test", 5000);
	assert_int_equal(t->q.status, -ENOENT);
	treq_free(t);
	/* xmpps ".", xmpp offered: STARTTLS only. */
	t = resolve_wait(e, e->r, "dotx.test", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, 1);
	assert_target(&t->q.targets[0], "x.dotx.test", "127.0.0.5", 5269, false, true);
	treq_free(t);
}

static void test_dns_bounds(void **state)
{
	struct env *e = *state;
	struct treq *t;

	NEED_DNS(e);
	/* 20 SRV records (over UDP's 512 bytes: c-ares retries on TCP) of 10
	 * addresses each: 16 records kept, 8 addresses each, 64 targets: the
	 * first 8 records by priority. */
	t = resolve_wait(e, e->r, "many.test", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, RESOLVE_TARGETS_MAX);
	for (size_t i = 0; i < t->q.ntargets; i++) {
		char host[32];

		snprintf(host, sizeof(host), "t%zu.many.test", i / RESOLVE_ADDR_MAX + 1);
		assert_string_equal(t->q.targets[i].host, host);
		assert_int_equal(t->q.targets[i].port, 6000 + i / RESOLVE_ADDR_MAX + 1);
		assert_int_equal(t->q.targets[i].addr.ss_family, AF_INET);
	}
	treq_free(t);
}

static void test_dns_literals_and_names(void **state)
{
	struct env *e = *state;
	struct treq *t, bad;
	char longname[300];

	NEED_DNS(e);
	t = resolve_wait(e, e->r, "127.0.0.7", 5000);
	assert_int_equal(t->q.status, 0);
	assert_int_equal(t->q.ntargets, 1);
	assert_target(&t->q.targets[0], "127.0.0.7", "127.0.0.7", 5269, false, false);
	treq_free(t);
	t = resolve_wait(e, e->r, "[::1]", 5000);
	assert_int_equal(t->q.status, 0);
	assert_target(&t->q.targets[0], "[::1]", "::1", 5269, false, false);
	treq_free(t);
	/* Refused at once, and no done() for them. */
	memset(longname, 'a', sizeof(longname));
	for (int i = 50; i < 290; i += 50)
		longname[i] = '.';
	longname[254] = '\0';
	static const char *const bads[] = { "", "a..b", "bad domain", "[::1", "[nope]", "x.test." };
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		treq_init(&bad, bads[i]);
		assert_int_equal(resolve_s2s(e->r, &e->port_, &bad.q), -EINVAL);
	}
	treq_init(&bad, longname);
	assert_int_equal(resolve_s2s(e->r, &e->port_, &bad.q), -EINVAL);
	treq_init(&bad, "a.test");
	bad.q.job.done = NULL;
	assert_int_equal(resolve_s2s(e->r, &e->port_, &bad.q), -EINVAL);
	memset(bad.q.domain, 'a', sizeof(bad.q.domain));   /* not NUL-terminated */
	bad.q.job.done = treq_done;
	assert_int_equal(resolve_s2s(e->r, &e->port_, &bad.q), -EINVAL);
	assert_false(offload_port_busy(&e->port_));
}

static void test_dns_timeout(void **state)
{
	struct env *e = *state;
	struct resolver *r;
	struct treq *t;
	uint64_t t0;

	NEED_DNS(e);
	/* A server that never answers: 150 ms, one try, for the SRV queries
	 * and again for the fallback's A/AAAA. */
	assert_int_equal(start_resolver(&r, e->silent_port, 150, 1), 0);
	t0 = now_ms();
	t = resolve_wait(e, r, "a.test", 5000);
	assert_int_equal(t->q.status, -ETIMEDOUT);
	assert_int_equal(t->q.ntargets, 0);
	assert_true(now_ms() - t0 >= 250);
	treq_free(t);
	resolver_stop(r);
	/* Nothing listens.  The ICMP error reaches c-ares as the error of its
	 * next send on that socket, if any; the query sent last times out. */
	assert_int_equal(start_resolver(&r, e->closed_port, 150, 1), 0);
	t0 = now_ms();
	t = resolve_wait(e, r, "a.test", 5000);
	assert_true(t->q.status == -ETIMEDOUT || t->q.status == -ECONNREFUSED);
	assert_int_equal(t->q.ntargets, 0);
	assert_true(now_ms() - t0 < 3000);
	treq_free(t);
	resolver_stop(r);
}

static void test_dns_cancel(void **state)
{
	struct env *e = *state;
	struct resolver *r;
	struct treq *t, *t2;
	uint64_t t0;

	NEED_DNS(e);
	t = malloc(sizeof(*t));
	t2 = malloc(sizeof(*t2));
	assert_non_null(t);
	assert_non_null(t2);
	/* The silent server with a long timeout: only cancel can end it soon. */
	assert_int_equal(start_resolver(&r, e->silent_port, 30000, 1), 0);
	treq_init(t, "a.test");
	treq_init(t2, "srv.test");
	assert_int_equal(resolve_s2s(r, &e->port_, &t->q), 0);
	assert_int_equal(resolve_s2s(r, &e->port_, &t2->q), 0);
	/* Let the queries go out, then cancel one. */
	assert_false(wait_for(e, &t->done, 1, 100));
	t0 = now_ms();
	resolve_cancel(r, &t->q);
	assert_true(wait_for(e, &t->done, 1, 5000));
	assert_true(now_ms() - t0 < 5000);
	assert_int_equal(t->q.status, -ECANCELED);
	assert_true(t->on_owner);
	assert_int_equal(t2->done, 0);   /* the other goes on */
	/* Stop with a request in flight: it is answered, -ECANCELED. */
	resolver_stop(r);
	assert_true(wait_for(e, &t2->done, 1, 5000));
	assert_int_equal(t2->q.status, -ECANCELED);
	assert_false(offload_port_busy(&e->port_));
	treq_free(t);
	treq_free(t2);
}

static void test_dns_inflight_bound(void **state)
{
	struct env *e = *state;
	struct resolver *r;
	struct treq *t;

	NEED_DNS(e);
	t = calloc(RESOLVE_INFLIGHT_MAX + 1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(start_resolver(&r, e->silent_port, 30000, 1), 0);
	for (unsigned i = 0; i <= RESOLVE_INFLIGHT_MAX; i++) {
		treq_init(&t[i], i % 2 ? "a.test" : "srv.test");
		assert_int_equal(resolve_s2s(r, &e->port_, &t[i].q),
				 i < RESOLVE_INFLIGHT_MAX ? 0 : -EAGAIN);
	}
	/* Stop answers every one, whether queued or querying. */
	done_total = 0;
	resolver_stop(r);
	assert_true(wait_for(e, &done_total, RESOLVE_INFLIGHT_MAX, 10000));
	for (unsigned i = 0; i < RESOLVE_INFLIGHT_MAX; i++) {
		assert_int_equal(t[i].done, 1);
		assert_int_equal(t[i].q.status, -ECANCELED);
		resolve_req_clear(&t[i].q);
	}
	assert_int_equal(t[RESOLVE_INFLIGHT_MAX].done, 0);
	assert_false(offload_port_busy(&e->port_));
	free(t);
}

static void test_start_errors(void **state)
{
	struct resolver *r;
	struct resolver_opts o = { .servers = "not a server list" };

	assert_int_equal(resolver_start(&r, &o), -EINVAL);
	assert_null(r);
	resolver_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_order_priority),
		cmocka_unit_test(test_order_weights_scripted),
		cmocka_unit_test(test_order_weights_stats),
		cmocka_unit_test(test_mix_services),
		cmocka_unit_test(test_dot),
		cmocka_unit_test(test_hostile_answers),
		cmocka_unit_test(test_errno_map),
		cmocka_unit_test(test_start_errors),
	};
	const struct CMUnitTest dns[] = {
		cmocka_unit_test(test_dns_srv),
		cmocka_unit_test(test_dns_fallback),
		cmocka_unit_test(test_dns_dot),
		cmocka_unit_test(test_dns_bounds),
		cmocka_unit_test(test_dns_literals_and_names),
		cmocka_unit_test(test_dns_timeout),
		cmocka_unit_test(test_dns_cancel),
		cmocka_unit_test(test_dns_inflight_bound),
	};
	int fails = cmocka_run_group_tests_name("resolve_pure", pure, NULL, NULL);

	return fails + cmocka_run_group_tests_name("resolve_dns", dns, dns_setup, dns_teardown);
}
