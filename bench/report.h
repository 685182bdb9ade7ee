/*
 * report — the end of a run: the summary table (stdout), the JSON file
 * (--json) and gnuplot charts (--plot).  Reads a finished bench_result; owns
 * nothing.  Also the bridge from the threads' counters (bench_stats) to the
 * named transactions of result.h: report_point once a second, report_totals
 * at the end.
 */
#ifndef XEDGE_BENCH_REPORT_H
#define XEDGE_BENCH_REPORT_H

#include <stdio.h>

#include "bench/bench.h"
#include "bench/result.h"

/* One second of the run. */
struct bench_point {
	double t;                     /* seconds since the start */
	unsigned connected, online;   /* gauges at the end of the second */
	uint64_t logins, failed, sent, recv;  /* during the second */
	uint64_t p50_ns, p99_ns;      /* message latency (chat) or login latency */
	double target_cpu;            /* % of one core, summed over --pid; -1: none */
	uint64_t target_rss_kib;
	double bench_cpu;             /* % of one core */
};

struct bench_result {
	struct bench_stats total;
	struct bench_point *series;
	size_t nseries;
	double elapsed_s;             /* whole run */
	double login_span_s;          /* first connect started -> last login */
	double warmup_s, meas_s;      /* chat: warm-up and measured window as run */
	bool have_target;
	double target_cpu_avg, target_cpu_max;
	uint64_t target_rss_max;
	double bench_cpu_avg, bench_cpu_max;
	bool idle_mem;                /* idle: the memory sample was taken */
	uint64_t rss_before, rss_after;
	unsigned sessions;
	unsigned peak_connected, peak_online;
	bool interrupted;
	/* --remote or muc, with --pid: CPU over the measured window (warm-up end to chat end), % of one
	 * core, per --pid and of xedge-bench itself; meas_cpu false when the window was not seen. */
	bool meas_cpu;
	double meas_pid_cpu[BENCH_MAX_PIDS], meas_bench_cpu;
	double meas_cpu_s, meas_wall_s;   /* the --pids' CPU-seconds in that window, its length */
	/* muc: the target's RSS before and after the joins (join_mem: both sampled), and how
	 * long the join phase took */
	bool join_mem;
	uint64_t rss_join0, rss_join1;
	double join_s;
	const struct result *rs;      /* the transactions (summary and JSON v2); may be NULL */
};

/* Add one point to rs's timeline: the second's counters sec, the gauges and
 * CPU of p, ending at wall-clock second unix_s.  0, or -1 out of memory. */
int report_point(struct result *rs, const struct bench_stats *sec, const struct bench_point *p,
		 int64_t unix_s);
/* rs's transactions and errors from the run's totals (call once, at the end). */
void report_totals(struct result *rs, const struct bench_result *r);

void report_summary(FILE *f, const struct bench_result *r);
int report_json(const char *path, const struct bench_result *r);     /* 0 or -errno */
int report_plot(const char *prefix, const struct bench_result *r);   /* 0, or -1 with a warning */

#endif
