/*
 * result — a run's results by named transaction, in a form that merges
 * exactly across threads, processes and machines: the JSON v2 fields, the
 * reader (libjansson), the merge, the CSV series, the per-transaction
 * summary table and the compare table.
 *
 * A transaction (enum bench_txn) is one measured operation: its successes
 * (count, each with a latency in its histogram), its errors, and the errors
 * by cause.  Today's failure causes ("sasl:not-authorized", "timeout:bind",
 * "join:...") are attributed to the transaction of their stage by
 * result_txn_of_cause(); every failure before a login completed is also an
 * error of "login" (the composite connect -> roster answered).
 *
 * The timeline has one point per second of the run (the last one may be
 * shorter): gauges, and per transaction the second's count, errors and
 * histogram delta, so the percentiles of a merged second are exact.
 * Points carry the wall-clock second at their end (unix_s): merging aligns
 * slices on it.
 *
 * Ownership: a struct result owns its timeline (result_free).  Nothing
 * here touches B or any global; writers take a FILE, readers a path.
 */
#ifndef XEDGE_BENCH_RESULT_H
#define XEDGE_BENCH_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/hist.h"

enum bench_txn {
	TX_CONNECT = 0,   /* TCP connect started -> established */
	TX_TLS,           /* connect started -> TLS handshake done */
	TX_AUTH,          /* first stream header after TLS -> bind answered (SASL + restart + bind) */
	TX_BIND,          /* bind request -> result (no recording point yet) */
	TX_ROSTER,        /* roster get -> result (no recording point yet) */
	TX_LOGIN,         /* connect started -> roster answered (connect scenario: stream open) */
	TX_MESSAGE_RTT,   /* chat: send -> receive (muc: every delivery), measured window */
	TX_JOIN,          /* muc: join sent -> self-presence */
	TX_ROOM_FANOUT,   /* muc: send -> the last occupant's copy */
	TX_RESUME,        /* XEP-0198 resume step: reconnect started -> <resumed/> */
	TX_PUBLISH,       /* PEP / PubSub publish (the executor records it) */
	TX_PING,          /* XEP-0199 ping (the executor records it) */
	TX_WS,            /* ws, wss: connect started -> the 101 checked (wss: TLS inside) */
	TX_N
};

const char *result_txn_name(int txn);
int result_txn_find(const char *name, size_t len);   /* TX_* or -1 */

/* The transaction a failure cause belongs to (TX_* or -1: none, such as a
 * session dropped after its login), and whether it also failed a login. */
int result_txn_of_cause(const char *cause, bool *login);

#define RESULT_MAX_CAUSES 48
#define RESULT_NAME_MAX 64

struct result_cause {
	char name[48];
	uint64_t n;
};

struct result_txn {
	uint64_t count;               /* successes: == h.count for a recorded transaction */
	uint64_t errors;
	struct hist h;
	struct result_cause causes[RESULT_MAX_CAUSES];
	unsigned ncauses;
};

/* A histogram in sparse form: the nonzero buckets, ascending. */
struct result_bucket {
	uint32_t i;
	uint64_t n;
};

struct result_ptxn {
	uint64_t count, errors;
	uint64_t sum_ns, min_ns, max_ns;
	uint32_t nb;
	struct result_bucket *b;      /* owned */
};

struct result_point {
	int64_t unix_s;               /* the wall-clock second the point ends in */
	double t;                     /* seconds since the start (end of the point) */
	uint64_t users, connected;    /* gauges at the end (merged: summed) */
	double target_cpu;            /* % of one core; -1 none */
	uint64_t target_rss_kib;
	double bench_cpu;
	struct result_ptxn tx[TX_N];
};

/*
 * The generator's own memory per session: sampled before the first
 * connection and at the end of the hold (the last second that held the
 * most sessions online; -s idle: the --settle sample).  VmRSS, and the
 * heap as jemalloc counts it (stats.allocated: bytes in live allocations;
 * stats.resident: pages the allocator holds), 0 when not linked.  Kernel
 * socket memory is in neither.  Merged: summed (one process per slice).
 */
struct result_gen_mem {
	bool held;                    /* the held sample was taken */
	uint64_t sessions_held;       /* users online at that sample */
	uint64_t rss_before_kib, rss_held_kib;
	uint64_t heap_alloc_before, heap_alloc_held;        /* bytes */
	uint64_t heap_resident_before, heap_resident_held;  /* bytes */
};

struct result {
	int version;                  /* 2 */
	char scenario[RESULT_NAME_MAX];
	unsigned slice_index, slice_count;
	unsigned inputs;              /* results merged into this one (1 for a run) */
	int64_t start_unix_ns;        /* wall clock at the start (merged: the earliest) */
	double duration_s;            /* merged: earliest start to latest end */
	struct result_txn tx[TX_N];
	uint64_t errors;              /* every failure, whatever its transaction, + lost messages */
	struct result_cause causes[RESULT_MAX_CAUSES];
	unsigned ncauses;
	bool have_target;
	double target_cpu_avg, target_cpu_max;    /* merged: summed (several targets) / max */
	uint64_t target_rss_max_kib;
	double gen_cpu_avg, gen_cpu_max;          /* xedge-bench itself, % of one core */
	uint64_t gen_rss_start_kib, gen_rss_max_kib;
	uint64_t peak_sessions;       /* peak connected clients */
	bool interrupted;             /* a run stopped by a signal (merged: any of them) */
	struct result_gen_mem gm;     /* the generator's memory per session held */
	struct result_point *series;
	size_t nseries, capseries;
};

void result_init(struct result *r);
void result_free(struct result *r);

/* Add n failures of a cause: to the overall causes and to its transactions. */
void result_cause(struct result *r, const char *cause, uint64_t n);
/* The tally of every failure cause into err[TX_N] (and err[TX_LOGIN] for the
 * ones that failed a login): the per-second error counts of a point. */
void result_cause_count(const char *cause, uint64_t n, uint64_t err[TX_N]);
/* errors.rate's denominator: the errors and the successes of the top-level
 * transactions (login, message_rtt, join, resume, publish, ping). */
uint64_t result_operations(const struct result *r);
/* Generator memory per session (KiB), -1 when unknown. */
double result_kib_per_session(const struct result *r);
/* The generator's bytes per session held: RSS growth (heap: jemalloc's
 * allocated bytes' growth) over sessions_held; -1 when not sampled. */
double result_gen_bytes_per_session(const struct result_gen_mem *m, bool heap);

/* A new zeroed point at the end of the timeline; NULL out of memory. */
struct result_point *result_point_add(struct result *r);
/* Set point p's transaction txn from a histogram delta and an error count. */
int result_point_txn(struct result_point *p, int txn, const struct hist *h, uint64_t errors);
/* A point's histogram of one transaction, rebuilt (exact). */
void result_point_hist(const struct result_point *p, int txn, struct hist *out);

/* Exact merge of from into into: counts, every bucket, causes; timelines aligned
 * on unix_s.  0, or -1 out of memory. */
int result_merge(struct result *into, const struct result *from);

/* JSON: the v2 fields, each line ending with ",\n" (to go inside an object
 * written by the caller, before its last field). */
void result_json_fields(FILE *f, const struct result *r);
/* s as a JSON string literal (quoted and escaped). */
void result_json_str(FILE *f, const char *s);
/* A complete JSON document of r (merge output): the v2 fields and the v1
 * fields that can be derived from them.  0 or -errno. */
int result_write_json(const char *path, const struct result *r);
/* The same with more top-level members (JSON text, each member followed by
 * ",\n"; merge keeps its inputs' other keys so), NULL for none. */
int result_write_json_more(const char *path, const struct result *r, const char *more);
/* Read a v2 document (a run's --json or a merge's output).  0, or -1 with
 * a reason in err. */
int result_read_json(const char *path, struct result *r, char *err, size_t cap);

/* CSV series (--csv): one row per point.  0 or -errno. */
int result_write_csv(const char *path, const struct result *r);
/* The per-transaction table of the terminal summary. */
void result_summary(FILE *f, const struct result *r);
/* compare: the per-transaction table of a and b with b/a ratios. */
void result_compare(FILE *f, const struct result *a, const struct result *b);

/* Rate of a transaction over the run (count / duration). */
double result_txn_rate(const struct result *r, int txn);

#endif
