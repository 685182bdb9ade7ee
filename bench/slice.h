/*
 * slice — distributed runs: this process's slice of one load, and the
 * wall-clock start all the slices share.
 *
 * A load of C users run as N slices (N processes, such as the pods of a
 * Kubernetes Indexed Job) is cut so that slice i runs users
 * [floor(i*C/N), floor((i+1)*C/N)) of the whole run: --clients and
 * --user-offset are narrowed to that range (muc: whole rooms, rooms
 * [floor(i*R/N), floor((i+1)*R/N)), so every room's occupants are in one
 * process), and the rates that are totals (--ramp, --join-rate,
 * --concurrency) become the slice's share, proportional to its users.
 * Per-client rates (--rate) stay.  Chat peers stay inside a slice: a
 * message's latency, loss and order are measured by the receiving client
 * against the sender's clock and sequence numbers, which only the same
 * process has.  --remote is refused with --count > 1 (its two halves would
 * need two offsets).  Merging the slices' JSON (`xedge-bench merge`) then
 * gives the counts the whole load gives in one process.
 *
 * The index comes from --index or JOB_COMPLETION_INDEX (what the Job
 * controller sets in each pod), the count from --count or
 * XEDGE_BENCH_COUNT.  --start-at is RFC 3339 (UTC, "Z" or a numeric
 * offset, optional fraction) or unix seconds; every slice sleeps until
 * then (CLOCK_REALTIME, absolute) before its first connection.
 *
 * Parsing and slice_apply are pure (slice_options reads the environment
 * for the defaults); slice_wait sleeps and draws its progress line.
 */
#ifndef XEDGE_BENCH_SLICE_H
#define XEDGE_BENCH_SLICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_opts;

#define SLICE_MAX 100000              /* slices of one load at most */
#define SLICE_LATE_NS 5000000000ll    /* a --start-at past by more is an error */

struct slice {
	unsigned index, count;        /* this process is slice index of count (0 of 1: all) */
	int64_t start_at_ns;          /* --start-at, unix ns; 0: start at once */
	/* what slice_apply made of the whole load: users [first, first + n) */
	unsigned whole_clients, first, n;
};

/* RFC 3339 date-time ("2026-12-07T12:00:00Z", "...T13:00:00.5+01:00") or
 * unix seconds ("1796644800", "1796644800.25") -> unix ns.  0, or -1. */
int slice_parse_time(const char *s, int64_t *unix_ns);

/* The slice from the options (NULL: not given), with the environment's
 * defaults for index and count.  0, or -1 with the reason in err. */
int slice_options(struct slice *s, const char *index, const char *count, const char *start_at,
		  char *err, size_t cap);

/* Narrow o (the whole load, options already checked) to slice s: clients,
 * offset (and rooms), the total rates' shares.  0, or -1 with the reason. */
int slice_apply(struct slice *s, struct bench_opts *o, char *err, size_t cap);

/* Sleep until s->start_at_ns, redrawing a progress line on stderr once a
 * second; *stop set (a signal) ends the wait early.  0 time to start, 1
 * stopped, -1 the start is past by more than SLICE_LATE_NS (said on stderr). */
int slice_wait(const struct slice *s, volatile sig_atomic_t *stop, bool tty);

#endif
