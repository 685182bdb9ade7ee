/*
 * test_steps — the pure parts of the scenario executor (bench/plan.c): the
 * arrival schedule of the phases (users per second of a ramp, a burst, a
 * constant rate; the total), max_users (admissions against the users alive,
 * refusals along a schedule, the slot pool), the smooth weighted round
 * robin's exact shares, a distributed run's slices of the users, and the loop frames (counts, durations, nesting) as the interpreter
 * (bench/steps.c) walks a session.  Includes the .c files under test (the
 * bench is not in libxedge).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/plan.c"
#include "bench/scenario.c"
#include "bench/scenario_vars.c"

#define S 1000000000ull

static void scn(const char *yaml, struct bench_scenario *s)
{
	char err[256] = "";

	if (scn_load_mem(yaml, strlen(yaml), "t.yaml", s, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* Users whose arrival falls in each second [k, k+1) of the run. */
static void per_second(const struct bp_plan *pl, unsigned *n, unsigned secs)
{
	memset(n, 0, secs * sizeof(*n));
	for (uint64_t u = 0; u < pl->total; u++) {
		uint64_t t = bp_arrival(pl, u, NULL);
		assert_true(t != UINT64_MAX);
		if (t / S < secs)
			n[t / S]++;
	}
	assert_int_equal(bp_arrival(pl, pl->total, NULL), UINT64_MAX);
}

static void test_constant_rate(void **st)
{
	struct bench_scenario s;
	struct bp_plan pl;
	unsigned n[4];
	uint32_t ph;

	scn("phases: [{arrival: 10/s, duration: 3s}]\nsessions: [{name: a, steps: [connect]}]\n", &s);
	bp_plan_init(&pl, s.phases, s.nphases);
	assert_int_equal(pl.total, 30);
	assert_int_equal(pl.end_ns, 3 * S);
	per_second(&pl, n, 4);
	assert_int_equal(n[0], 10);
	assert_int_equal(n[1], 10);
	assert_int_equal(n[2], 10);
	assert_int_equal(n[3], 0);
	/* user k at k / rate */
	assert_int_equal(bp_arrival(&pl, 0, &ph), 0);
	assert_int_equal(bp_arrival(&pl, 15, &ph), 15 * S / 10);
	assert_int_equal(ph, 0);
	scn_free(&s);
}

static void test_ramp(void **st)
{
	struct bench_scenario s;
	struct bp_plan pl;
	unsigned n[12];

	/* 0 -> 10/s over 10 s: the second k starts about k + 0.5 users, 50 in all */
	scn("phases:\n  - ramp: [0/s, 10/s]\n    duration: 10s\n"
	     "sessions: [{name: a, steps: [connect]}]\n", &s);
	bp_plan_init(&pl, s.phases, s.nphases);
	assert_int_equal(pl.total, 50);
	per_second(&pl, n, 12);
	for (unsigned k = 0; k < 10; k++) {
		/* N(t) = t^2 / 2: the users of second k are ceil(N(k+1)) - ceil(N(k)) */
		unsigned want = (unsigned)(ceil((k + 1) * (k + 1) / 2.0) - ceil(k * k / 2.0));
		if (k == 9)
			want = 50 - (unsigned)ceil(81 / 2.0);
		assert_int_equal(n[k], want);
	}
	assert_int_equal(n[10] + n[11], 0);
	/* monotonic, inside the phase */
	for (uint64_t u = 1; u < pl.total; u++)
		assert_true(bp_arrival(&pl, u, NULL) >= bp_arrival(&pl, u - 1, NULL));
	scn_free(&s);

	/* ramp-down 10/s -> 0/s over 4 s: 20 users, most of them early */
	scn("phases:\n  - ramp: [10/s, 0/s]\n    duration: 4s\n"
	     "sessions: [{name: a, steps: [connect]}]\n", &s);
	bp_plan_init(&pl, s.phases, s.nphases);
	assert_int_equal(pl.total, 20);
	per_second(&pl, n, 5);
	/* N(t) = 10t - 1.25t^2: 8.75, 15, 18.75, 20 */
	assert_int_equal(n[0], 9);
	assert_int_equal(n[1], 6);
	assert_int_equal(n[2], 4);
	assert_int_equal(n[3], 1);
	assert_int_equal(n[4], 0);
	scn_free(&s);
}

static void test_phases_and_burst(void **st)
{
	struct bench_scenario s;
	struct bp_plan pl;
	unsigned n[8];
	uint32_t ph;

	scn("phases:\n"
	     "  - users: 7\n"
	     "  - arrival: 4/s\n    duration: 2s\n"
	     "  - arrival: 0/s\n    duration: 2s\n"
	     "  - arrival: 100/s\n    duration: 2s\n    users: 3\n"
	     "  - users: 5\n"
	     "sessions: [{name: a, steps: [connect]}]\n", &s);
	bp_plan_init(&pl, s.phases, s.nphases);
	assert_int_equal(pl.total, 7 + 8 + 0 + 3 + 5);
	per_second(&pl, n, 8);
	assert_int_equal(n[0], 7 + 4);
	assert_int_equal(n[1], 4);
	assert_int_equal(n[2] + n[3], 0);    /* the pause */
	assert_int_equal(n[4], 3);           /* capped by users */
	assert_int_equal(n[5], 0);
	assert_int_equal(n[6], 5);           /* the last burst, at 6 s */
	for (uint64_t u = 0; u < 7; u++)
		assert_int_equal(bp_arrival(&pl, u, &ph), 0);
	assert_int_equal(ph, 0);
	bp_arrival(&pl, 7, &ph);
	assert_int_equal(ph, 1);
	assert_int_equal(bp_arrival(&pl, 15, &ph), 4 * S);
	assert_int_equal(ph, 3);
	assert_int_equal(bp_arrival(&pl, 18, &ph), 6 * S);
	assert_int_equal(ph, 4);
	scn_free(&s);
}

static void test_max_users(void **st)
{
	_Atomic uint64_t alive = 0;
	struct bench_scenario s;
	struct bp_plan pl;
	uint64_t end[16];
	unsigned refused = 0, admitted = 0, n = 0;

	/* the cap counts users alive: two in, the next ones out until one leaves */
	assert_true(bp_admit(&alive, 2));
	assert_true(bp_admit(&alive, 2));
	for (int i = 0; i < 4; i++)
		assert_false(bp_admit(&alive, 2));
	assert_int_equal(alive, 2);
	bp_leave(&alive);
	assert_true(bp_admit(&alive, 2));
	assert_int_equal(alive, 2);
	for (int i = 0; i < 100; i++)     /* 0: no cap */
		assert_true(bp_admit(&alive, 0));

	/* 4 users a second for 3 s, each alive for 1 s, at most 3 at once: the users
	 * of 0.75 s, 1.75 s and 2.75 s find 3 alive (a user leaving at t is gone at t) */
	scn("phases: [{arrival: 4/s, duration: 3s}]\nmax_users: 3\n"
	    "sessions: [{name: a, steps: [connect]}]\n", &s);
	bp_plan_init(&pl, s.phases, s.nphases);
	assert_int_equal(pl.total, 12);
	alive = 0;
	for (uint64_t u = 0; u < pl.total; u++) {
		uint64_t t = bp_arrival(&pl, u, NULL);
		for (unsigned k = 0; k < n; k++)
			if (end[k] && end[k] <= t) {
				bp_leave(&alive);
				end[k] = 0;
			}
		if (bp_admit(&alive, s.max_users)) {
			end[n++] = t + S;
			admitted++;
		} else {
			refused++;
			assert_true(t == 750000000ull || t == 1750000000ull || t == 2750000000ull);
		}
	}
	assert_int_equal(refused, 3);
	assert_int_equal(admitted, 9);
	scn_free(&s);

	/* the slot pool: the cap (or everyone) over the threads, slack with a cap */
	assert_int_equal(bp_pool_per_thread(5000, 12030, 2), 2500 + 625 + 4);
	assert_int_equal(bp_pool_per_thread(0, 100, 2), 50);
	assert_int_equal(bp_pool_per_thread(0, 101, 2), 51);
	assert_int_equal(bp_pool_per_thread(200, 100, 2), 50);     /* the cap is never reached */
}

static void test_slices(void **st)
{
	/* every count-th user from index: the slices of a phase add up to it */
	for (unsigned count = 1; count <= 5; count++)
		for (uint64_t first = 0; first < 12; first++)
			for (uint64_t n = 0; n < 12; n++) {
				uint64_t sum = 0;
				for (unsigned i = 0; i < count; i++) {
					uint64_t want = 0;
					for (uint64_t u = first; u < first + n; u++)
						want += u % count == i;
					assert_int_equal(bp_slice_users(first, n, i, count), want);
					sum += want;
				}
				assert_int_equal(sum, n);
			}
	assert_int_equal(bp_slice_users(0, 20, 0, 3), 7);
	assert_int_equal(bp_slice_users(0, 20, 2, 3), 6);
}

static void test_weighted_shares(void **st)
{
	struct bench_scenario s;
	struct bp_wrr w, w2;
	unsigned got[3] = { 0 }, prefix[3] = { 0 };

	scn("phases: [{users: 1}]\nsessions:\n"
	     "  - {name: chat, weight: 80, steps: [connect]}\n"
	     "  - {name: idle, weight: 15, steps: [connect]}\n"
	     "  - {name: muc, weight: 5, steps: [connect]}\n", &s);
	bp_wrr_init(&w, s.sessions, s.nsessions);
	for (unsigned u = 0; u < 1000; u++) {
		uint32_t k = bp_wrr_next(&w);
		assert_true(k < 3);
		got[k]++;
		if (u < 100)
			prefix[k]++;
	}
	assert_int_equal(got[0], 800);
	assert_int_equal(got[1], 150);
	assert_int_equal(got[2], 50);
	assert_int_equal(prefix[0], 80);     /* exact in every period of 100 */
	assert_int_equal(prefix[1], 15);
	assert_int_equal(prefix[2], 5);
	/* A thread that owns every third user sees the same sequence. */
	bp_wrr_init(&w, s.sessions, s.nsessions);
	bp_wrr_init(&w2, s.sessions, s.nsessions);
	for (uint64_t u = 1; u < 300; u += 3) {
		uint32_t all = 0;
		while (w.next <= u)
			all = bp_wrr_next(&w);
		assert_int_equal(bp_wrr_at(&w2, u), all);
	}
	scn_free(&s);

	/* two equal weights alternate */
	scn("phases: [{users: 1}]\nsessions:\n"
	     "  - {name: a, steps: [connect]}\n  - {name: b, steps: [connect]}\n", &s);
	bp_wrr_init(&w, s.sessions, s.nsessions);
	for (unsigned u = 0; u < 10; u++)
		assert_int_equal(bp_wrr_next(&w), u % 2);
	scn_free(&s);
}

/* The sequence of ops the interpreter runs (loop steps themselves are not run). */
static unsigned trace(const struct scn_session *ses, uint64_t *clock, uint64_t tick, int *ops,
		      unsigned cap)
{
	struct bp_loops ls = { 0 };
	unsigned k = 0;
	uint32_t pc = bp_next(ses->steps, ses->nsteps, &ls, UINT32_MAX, *clock);

	while (pc < ses->nsteps && k < cap) {
		assert_int_not_equal(ses->steps[pc].op, SCN_LOOP);
		ops[k++] = ses->steps[pc].op;
		*clock += tick;
		pc = bp_next(ses->steps, ses->nsteps, &ls, pc, *clock);
	}
	assert_int_equal(ls.depth, 0);
	return k;
}

static void test_loops(void **st)
{
	struct bench_scenario s;
	uint64_t clock = 0;
	int ops[64];
	unsigned n;

	scn("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps:\n"
	     "      - connect\n      - auth\n      - bind\n"
	     "      - loop:\n          count: 3\n          steps:\n"
	     "            - ping\n"
	     "            - loop:\n                count: 2\n                steps: [presence]\n"
	     "      - logout\n", &s);
	n = trace(&s.sessions[0], &clock, 1, ops, 64);
	{
		static const int want[] = {
			SCN_CONNECT, SCN_AUTH, SCN_BIND,
			SCN_PING, SCN_PRESENCE, SCN_PRESENCE,
			SCN_PING, SCN_PRESENCE, SCN_PRESENCE,
			SCN_PING, SCN_PRESENCE, SCN_PRESENCE,
			SCN_LOGOUT,
		};
		assert_int_equal(n, sizeof(want) / sizeof(want[0]));
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(ops[i], want[i]);
	}
	scn_free(&s);

	/* A duration is checked between rounds: 1 s of rounds of 300 ms is 4 rounds
	 * (started at 0, 300, 600, 900 ms); a loop at the end ends the program. */
	scn("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps:\n"
	     "      - connect\n      - auth\n      - bind\n"
	     "      - loop:\n          duration: 1s\n          steps: [{think: 150ms}, ping]\n", &s);
	clock = 0;
	n = trace(&s.sessions[0], &clock, 150000000ull, ops, 64);
	assert_int_equal(n, 3 + 4 * 2);
	assert_int_equal(ops[n - 1], SCN_PING);
	scn_free(&s);

	/* count and duration: whichever ends first */
	scn("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps:\n"
	     "      - connect\n      - auth\n      - bind\n"
	     "      - loop: {count: 2, duration: 1h, steps: [ping]}\n"
	     "      - loop: {count: 100, duration: 10ms, steps: [ping]}\n", &s);
	clock = 0;
	n = trace(&s.sessions[0], &clock, 4000000ull, ops, 64);
	assert_int_equal(n, 3 + 2 + 3);
	scn_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant_rate),
		cmocka_unit_test(test_ramp),
		cmocka_unit_test(test_phases_and_burst),
		cmocka_unit_test(test_max_users),
		cmocka_unit_test(test_slices),
		cmocka_unit_test(test_weighted_shares),
		cmocka_unit_test(test_loops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
