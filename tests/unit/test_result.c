/*
 * test_result — bench/result.c: JSON v2 written, read back and merged.
 * Three slices of random latencies (and errors, and a timeline whose
 * seconds overlap) are written to JSON, read, merged: the merge equals the
 * union exactly (counts, sums, min, max, every bucket, causes, each
 * wall-clock second of the timeline), and its percentiles are within 1/64
 * of the exact percentiles of the raw samples.  A reader refuses damaged
 * histograms.  Includes the .c under test (the bench is not in libxedge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/hist.c"
#include "bench/result.c"

#define SLICES 3
#define BASE_S 1800000000ll           /* a wall-clock second */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* 2 µs .. ~8 s, spread over the octaves (log-uniform) */
static uint64_t sample(void)
{
	double u = (double)(next() % 1000000) / 1e6;
	return (uint64_t)(2000.0 * exp(u * log(4e6)));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static char *tmp_path(int i)
{
	static char p[SLICES + 1][64];
	snprintf(p[i], sizeof(p[i]), "/tmp/test_result.%d.%d.json", (int)getpid(), i);
	return p[i];
}

/* Slice s: n samples of login and of message_rtt, spread over seconds
 * starting at BASE_S + s (so the slices' timelines overlap). */
static void make_slice(struct result *r, int s, unsigned n, uint64_t *raw, size_t *nraw,
		       struct result *all)
{
	unsigned secs = 5;

	result_init(r);
	snprintf(r->scenario, sizeof(r->scenario), "login");
	r->slice_index = (unsigned)s;
	r->slice_count = SLICES;
	r->start_unix_ns = (BASE_S + s) * 1000000000ll + 250000000ll * s;
	r->duration_s = secs;
	r->peak_sessions = n;
	r->gen_rss_start_kib = 1000;
	r->gen_rss_max_kib = 1000 + n * 3;
	/* the generator's memory per session held: 2 KiB of RSS and 2,500 heap bytes a session */
	r->gm.held = true;
	r->gm.sessions_held = n;
	r->gm.rss_before_kib = 4000;
	r->gm.rss_held_kib = 4000 + 2 * (uint64_t)n;
	r->gm.heap_alloc_before = 1000000;
	r->gm.heap_alloc_held = 1000000 + 2500 * (uint64_t)n;
	r->gm.heap_resident_before = 2000000;
	r->gm.heap_resident_held = 2000000 + 3000 * (uint64_t)n;
	for (unsigned k = 0; k < secs; k++) {
		struct result_point *p = result_point_add(r);
		struct hist h[TX_N];
		memset(h, 0, sizeof(h));
		assert_non_null(p);
		p->unix_s = BASE_S + s + k + 1;
		p->t = k + 1;
		p->users = n;
		for (unsigned i = 0; i < n / secs; i++) {
			uint64_t v = sample(), w = sample();
			hist_record(&h[TX_LOGIN], v);
			hist_record(&h[TX_MESSAGE_RTT], w);
			hist_record(&r->tx[TX_LOGIN].h, v);
			hist_record(&r->tx[TX_MESSAGE_RTT].h, w);
			hist_record(&all->tx[TX_LOGIN].h, v);
			raw[(*nraw)++] = v;
		}
		for (int t = 0; t < TX_N; t++)
			assert_int_equal(result_point_txn(p, t, &h[t], t == TX_AUTH ? k : 0), 0);
	}
	r->tx[TX_LOGIN].count = r->tx[TX_LOGIN].h.count;
	r->tx[TX_MESSAGE_RTT].count = r->tx[TX_MESSAGE_RTT].h.count;
	result_cause(r, "sasl:not-authorized", 1 + s);
	result_cause(r, "connect-refused", 2);
	result_cause(r, "dropped:closed-by-server", (uint64_t)s);
}

static void assert_hist_equal(const struct hist *a, const struct hist *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->sum_ns, b->sum_ns);
	assert_int_equal(a->min_ns, b->min_ns);
	assert_int_equal(a->max_ns, b->max_ns);
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (a->b[i] != b->b[i])
			fail_msg("bucket %u: %llu != %llu", i, (unsigned long long)a->b[i],
				 (unsigned long long)b->b[i]);
}

static uint64_t cause_n(const struct result_cause *c, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].n;
	return 0;
}

static void test_write_read_merge(void **state)
{
	static uint64_t raw[100000];
	size_t nraw = 0;
	struct result slice[SLICES], back, merged, all;
	char err[256];
	static const unsigned n[SLICES] = { 3000, 5000, 7000 };

	result_init(&all);
	for (int s = 0; s < SLICES; s++) {
		make_slice(&slice[s], s, n[s], raw, &nraw, &all);
		assert_int_equal(result_write_json(tmp_path(s), &slice[s]), 0);
	}
	/* one slice: what was written is what is read */
	assert_int_equal(result_read_json(tmp_path(1), &back, err, sizeof(err)), 0);
	assert_hist_equal(&back.tx[TX_LOGIN].h, &slice[1].tx[TX_LOGIN].h);
	assert_int_equal(back.tx[TX_AUTH].errors, 2);
	assert_int_equal(back.tx[TX_CONNECT].errors, 2);
	assert_int_equal(back.tx[TX_LOGIN].errors, 4);
	assert_int_equal(back.errors, 5);
	assert_int_equal(back.nseries, 5);
	assert_int_equal(back.start_unix_ns, slice[1].start_unix_ns);
	assert_true(back.gm.held);
	assert_int_equal(back.gm.sessions_held, 5000);
	assert_int_equal(back.gm.rss_held_kib, 4000 + 10000);
	assert_int_equal(back.gm.heap_resident_held, 2000000 + 3000 * 5000);
	assert_true(fabs(result_gen_bytes_per_session(&back.gm, false) - 2048) < 0.01);
	assert_true(fabs(result_gen_bytes_per_session(&back.gm, true) - 2500) < 0.01);
	{
		/* no held sample, or no jemalloc counters: unknown, not 0 */
		struct result_gen_mem none = { 0 }, rss_only = back.gm;
		rss_only.heap_alloc_before = rss_only.heap_alloc_held = 0;
		assert_true(result_gen_bytes_per_session(&none, false) < 0);
		assert_true(result_gen_bytes_per_session(&rss_only, true) < 0);
		assert_true(result_gen_bytes_per_session(&rss_only, false) > 0);
	}
	for (size_t i = 0; i < back.nseries; i++) {
		struct hist a, b;
		result_point_hist(&back.series[i], TX_MESSAGE_RTT, &a);
		result_point_hist(&slice[1].series[i], TX_MESSAGE_RTT, &b);
		assert_hist_equal(&a, &b);
		assert_int_equal(back.series[i].tx[TX_AUTH].errors, i);
	}
	result_free(&back);

	/* the merge of the three files equals the union */
	assert_int_equal(result_read_json(tmp_path(0), &merged, err, sizeof(err)), 0);
	for (int s = 1; s < SLICES; s++) {
		assert_int_equal(result_read_json(tmp_path(s), &back, err, sizeof(err)), 0);
		assert_int_equal(result_merge(&merged, &back), 0);
		result_free(&back);
	}
	assert_int_equal(result_write_json(tmp_path(SLICES), &merged), 0);
	result_free(&merged);
	assert_int_equal(result_read_json(tmp_path(SLICES), &merged, err, sizeof(err)), 0);
	assert_int_equal(merged.inputs, SLICES);
	assert_int_equal(merged.tx[TX_LOGIN].count, nraw);
	assert_hist_equal(&merged.tx[TX_LOGIN].h, &all.tx[TX_LOGIN].h);
	assert_int_equal(merged.tx[TX_MESSAGE_RTT].count, nraw);
	assert_int_equal(merged.errors, (1 + 2 + 3) + 3 * 2 + (0 + 1 + 2));
	assert_int_equal(cause_n(merged.causes, merged.ncauses, "sasl:not-authorized"), 6);
	assert_int_equal(cause_n(merged.tx[TX_LOGIN].causes, merged.tx[TX_LOGIN].ncauses,
				 "connect-refused"), 6);
	assert_int_equal(merged.peak_sessions, 15000);
	/* the generator's memory: summed over the slices (one process each) */
	assert_int_equal(merged.gm.sessions_held, 15000);
	assert_int_equal(merged.gm.rss_before_kib, 3 * 4000);
	assert_true(fabs(result_gen_bytes_per_session(&merged.gm, false) - 2048) < 0.01);
	assert_true(fabs(result_gen_bytes_per_session(&merged.gm, true) - 2500) < 0.01);
	assert_int_equal(merged.start_unix_ns, slice[0].start_unix_ns);
	/* slice 2 ends at BASE_S + 2.5 + 5 */
	assert_true(fabs(merged.duration_s - 7.5) < 1e-6);
	/* the timeline: seconds BASE_S+1 .. BASE_S+7, each the sum of the slices' points in it */
	assert_int_equal(merged.nseries, 7);
	for (size_t i = 0; i < merged.nseries; i++) {
		struct result_point *p = &merged.series[i];
		struct hist want, got, h;
		uint64_t users = 0;
		hist_reset(&want);
		assert_int_equal(p->unix_s, BASE_S + 1 + (int64_t)i);
		for (int s = 0; s < SLICES; s++)
			for (size_t k = 0; k < slice[s].nseries; k++)
				if (slice[s].series[k].unix_s == p->unix_s) {
					result_point_hist(&slice[s].series[k], TX_LOGIN, &h);
					hist_merge(&want, &h);
					users += slice[s].series[k].users;
				}
		result_point_hist(p, TX_LOGIN, &got);
		assert_hist_equal(&got, &want);
		assert_int_equal(p->users, users);
	}
	/* percentiles of the merged histogram: within 1/64 of the raw samples' exact ones */
	qsort(raw, nraw, sizeof(raw[0]), cmp_u64);
	{
		static const double ps[] = { 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99 };
		for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
			uint64_t rank = (uint64_t)ceil(ps[i] / 100 * (double)nraw);
			uint64_t exact = raw[rank - 1], got = hist_percentile(&merged.tx[TX_LOGIN].h, ps[i]);
			double tol = (double)exact / 64 > 1000 ? (double)exact / 64 : 1000;
			if (fabs((double)got - (double)exact) > tol)
				fail_msg("p%g: %llu vs exact %llu", ps[i], (unsigned long long)got,
					 (unsigned long long)exact);
		}
	}
	result_free(&merged);
	for (int s = 0; s < SLICES; s++)
		result_free(&slice[s]);
	result_free(&all);
	for (int s = 0; s <= SLICES; s++)
		unlink(tmp_path(s));
}

static int read_text(const char *text, char *err, size_t cap)
{
	struct result r;
	FILE *f = fopen(tmp_path(0), "w");
	int rc;

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	rc = result_read_json(tmp_path(0), &r, err, cap);
	if (rc == 0)
		result_free(&r);
	unlink(tmp_path(0));
	return rc;
}

#define HEAD "{\"version\": 2, \"hist_layout\": \"" HIST_LAYOUT "\", \"start_unix_ns\": 1, " \
	     "\"errors\": {\"count\": 0}, \"timeline\": [], \"transactions\": {\"login\": " \
	     "{\"count\": 2, \"hist\": {\"count\": 2, \"sum_ns\": 5, \"min_ns\": 1, \"max_ns\": 4, \"buckets\": "

static void test_reader_refuses(void **state)
{
	char err[256];

	assert_int_equal(read_text(HEAD "[[0, 2]]}}}}", err, sizeof(err)), 0);
	assert_int_equal(read_text(HEAD "[[0, 1]]}}}}", err, sizeof(err)), -1);      /* sum != count */
	assert_int_equal(read_text(HEAD "[[99999, 2]]}}}}", err, sizeof(err)), -1);  /* index */
	assert_int_equal(read_text(HEAD "[[3, 1], [2, 1]]}}}}", err, sizeof(err)), -1); /* order */
	assert_int_equal(read_text(HEAD "[[0, -2]]}}}}", err, sizeof(err)), -1);
	assert_int_equal(read_text(HEAD "[[0, 2, 3]]}}}}", err, sizeof(err)), -1);
	assert_int_equal(read_text("{\"version\": 1}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "v2"));
	assert_int_equal(read_text("{\"version\": 2, \"hist_layout\": \"other\"}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "layout"));
	assert_int_equal(read_text("[1, 2", err, sizeof(err)), -1);
	assert_int_equal(read_text("{\"version\": 2, \"hist_layout\": \"" HIST_LAYOUT "\", "
				   "\"start_unix_ns\": 1, \"errors\": {}, \"timeline\": [], "
				   "\"transactions\": {\"nope\": {}}}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown transaction"));
}

static void test_causes_by_stage(void **state)
{
	static const struct { const char *cause; int txn; bool login; } t[] = {
		{ "connect-refused", TX_CONNECT, true }, { "connect:EHOSTUNREACH", TX_CONNECT, true },
		{ "tls-failure", TX_TLS, true }, { "starttls-refused", TX_TLS, true },
		{ "timeout:tls", TX_TLS, true }, { "sasl:not-authorized", TX_AUTH, true },
		{ "timeout:sasl", TX_AUTH, true }, { "bind-error", TX_BIND, true },
		{ "timeout:bind", TX_BIND, true }, { "roster-error", TX_ROSTER, true },
		{ "stream:host-unknown", TX_LOGIN, true }, { "login-phase-ended", TX_LOGIN, true },
		{ "join:room-never-opened", TX_JOIN, false }, { "dropped:closed-by-server", -1, false },
		{ "message:lost", TX_MESSAGE_RTT, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool login;
		assert_int_equal(result_txn_of_cause(t[i].cause, &login), t[i].txn);
		assert_int_equal(login, t[i].login);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_merge),
		cmocka_unit_test(test_reader_refuses),
		cmocka_unit_test(test_causes_by_stage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
