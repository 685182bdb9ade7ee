/*
 * test_discover — core/discover.c's pure part: the shard set from an SRV
 * answer (DNS messages built here byte by byte).  Sorted "target:port",
 * duplicates out; port 0 and names that are not host names skipped; at
 * most DISCOVER_MAX kept (the smallest names, so every process agrees); an
 * answer with no usable record is -ENOENT, a malformed one -EIO.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/discover.h"

#define QNAME "_xmpp-sm._tcp.sm.example"

struct msg {
	unsigned char b[16384];
	size_t n;
	size_t ancount_at;
	unsigned ancount;
};

static void put8(struct msg *m, unsigned v) { m->b[m->n++] = (unsigned char)v; }
static void put16(struct msg *m, unsigned v) { put8(m, v >> 8); put8(m, v & 0xff); }

static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);

		put8(m, (unsigned)len);
		memcpy(m->b + m->n, name, len);
		m->n += len;
		name += len + (dot ? 1 : 0);
	}
	put8(m, 0);
}

static void start(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x1234);     /* id */
	put16(m, 0x8180);     /* response, recursion desired and available, NOERROR */
	put16(m, 1);          /* one question */
	m->ancount_at = m->n;
	put16(m, 0);          /* answers: set by srv() */
	put16(m, 0);
	put16(m, 0);
	put_name(m, QNAME);
	put16(m, 33);         /* SRV */
	put16(m, 1);          /* IN */
}

static void srv(struct msg *m, const char *target, unsigned port)
{
	size_t rdlen_at;

	put16(m, 0xc00c);     /* the question's name */
	put16(m, 33);
	put16(m, 1);
	put16(m, 0);
	put16(m, 5);          /* TTL */
	rdlen_at = m->n;
	put16(m, 0);
	put16(m, 0);          /* priority */
	put16(m, 10);         /* weight */
	put16(m, port);
	put_name(m, target);
	m->b[rdlen_at] = (unsigned char)((m->n - rdlen_at - 2) >> 8);
	m->b[rdlen_at + 1] = (unsigned char)((m->n - rdlen_at - 2) & 0xff);
	m->ancount++;
	m->b[m->ancount_at] = (unsigned char)(m->ancount >> 8);
	m->b[m->ancount_at + 1] = (unsigned char)(m->ancount & 0xff);
}

static void test_sorted_set(void **state)
{
	struct msg m;
	char **names = NULL;
	size_t n = 0;

	(void)state;
	start(&m);
	srv(&m, "xedge-sm-1.xedge-sm.default.svc.cluster.local", 5280);
	srv(&m, "xedge-sm-0.xedge-sm.default.svc.cluster.local", 5280);
	srv(&m, "xedge-sm-1.xedge-sm.default.svc.cluster.local", 5280);   /* twice */
	srv(&m, "xedge-sm-0.xedge-sm.default.svc.cluster.local", 5281);   /* another port: another shard */
	assert_int_equal(discover_parse(m.b, (int)m.n, &names, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "xedge-sm-0.xedge-sm.default.svc.cluster.local:5280");
	assert_string_equal(names[1], "xedge-sm-0.xedge-sm.default.svc.cluster.local:5281");
	assert_string_equal(names[2], "xedge-sm-1.xedge-sm.default.svc.cluster.local:5280");
	discover_names_free(names, n);
}

static void test_skipped(void **state)
{
	struct msg m;
	char **names = NULL;
	size_t n = 0;

	(void)state;
	start(&m);
	srv(&m, "sm0.example", 0);          /* port 0 */
	srv(&m, "bad name.example", 5280);  /* not a host name (c-ares escapes the space) */
	srv(&m, "1.2.3.4", 5280);           /* digits only: not a name */
	srv(&m, "sm1.example", 5280);
	assert_int_equal(discover_parse(m.b, (int)m.n, &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "sm1.example:5280");
	discover_names_free(names, n);

	start(&m);
	srv(&m, "sm0.example", 0);
	assert_int_equal(discover_parse(m.b, (int)m.n, &names, &n), -ENOENT);
	start(&m);                            /* no answer at all */
	assert_int_equal(discover_parse(m.b, (int)m.n, &names, &n), -ENOENT);
}

static void test_bounded(void **state)
{
	struct msg m;
	char **names = NULL, host[64];
	size_t n = 0;

	(void)state;
	start(&m);
	/* Three times the bound, largest names first: the smallest are kept. */
	for (int i = 3 * DISCOVER_MAX - 1; i >= 0; i--) {
		snprintf(host, sizeof(host), "sm%03d.example", i);
		srv(&m, host, 5280);
	}
	assert_int_equal(discover_parse(m.b, (int)m.n, &names, &n), 0);
	assert_int_equal(n, DISCOVER_MAX);
	for (size_t i = 0; i < n; i++) {
		snprintf(host, sizeof(host), "sm%03zu.example:5280", i);
		assert_string_equal(names[i], host);
	}
	discover_names_free(names, n);
}

static void test_malformed(void **state)
{
	struct msg m;
	char **names = NULL;
	size_t n = 0;

	(void)state;
	start(&m);
	srv(&m, "sm0.example", 5280);
	/* Cut inside the record; then a header alone; then nothing. */
	for (long cut = (long)m.n - 3; cut > 0; cut -= 7)
		assert_true(discover_parse(m.b, (int)cut, &names, &n) < 0);
	assert_int_equal(discover_parse(m.b, 5, &names, &n), -EIO);
	assert_int_equal(discover_parse(m.b, 0, &names, &n), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted_set),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
