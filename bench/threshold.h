/*
 * threshold — pass/fail conditions on a result, k6-style (pure: no I/O, no
 * globals).  One expression is
 *
 *     metric op value[unit]
 *
 *   metric  errors.rate | errors.count
 *           <txn>.count | <txn>.errors | <txn>.errors.count | <txn>.errors.rate
 *           <txn>.p<N> (N a percentile: p50, p99, p99.9, ...) | <txn>.mean | <txn>.min | <txn>.max
 *           (txn a transaction name of result.h: connect, login, message_rtt, ...)
 *   op      <  <=  >  >=  ==  !=
 *   value   a number; latencies need a unit (us, ms, s), rates take % or a
 *           fraction (0.001), counts take none
 *
 * A latency threshold on a transaction that recorded nothing fails ("no
 * samples"): a gate must not pass because the measured thing never ran.
 */
#ifndef XEDGE_BENCH_THRESHOLD_H
#define XEDGE_BENCH_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "bench/result.h"

enum thr_metric {
	THR_COUNT = 0,     /* successes */
	THR_ERR_COUNT,
	THR_ERR_RATE,      /* errors / (errors + successes); overall: errors / operations */
	THR_PCT,           /* percentile latency */
	THR_MEAN,
	THR_MIN,
	THR_MAX
};

enum thr_op { THR_LT = 0, THR_LE, THR_GT, THR_GE, THR_EQ, THR_NE };

struct thr {
	char text[128];    /* the expression as given (trimmed, cut to fit) */
	int txn;           /* TX_*, or -1 for the overall errors.* */
	int metric;        /* enum thr_metric */
	double pct;        /* THR_PCT: 0..100 */
	int op;            /* enum thr_op */
	double value;      /* ns for latencies, a fraction for rates, a number for counts */
};

/* Parse text into *t.  0, or -1 with the reason in err (cap bytes). */
int thr_parse(const char *text, struct thr *t, char *err, size_t cap);

/* Evaluate against r: true when the condition holds.  *actual gets the
 * measured value in t's units (ns, fraction, count); *why a reason when it
 * fails for lack of data (NULL otherwise). */
bool thr_eval(const struct thr *t, const struct result *r, double *actual, const char **why);

/* "message_rtt.p99 < 50ms: 73.2 ms" into out: the expression and the value seen. */
void thr_describe(const struct thr *t, double actual, const char *why, char *out, size_t cap);

#endif
