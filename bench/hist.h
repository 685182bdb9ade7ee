/*
 * hist — a log-linear latency histogram (HDR-like), mergeable across threads.
 *
 * Values are recorded in nanoseconds and bucketed in microseconds: 1 µs
 * resolution below 64 µs, then 64 linear sub-buckets per power of two up to
 * HIST_MAX_US (~134 s), so any reported percentile is within 1/64 (1.6 %) of
 * the true value.  Values above the range land in the last bucket; the exact
 * minimum, maximum, count and sum are kept beside the buckets.
 *
 * A hist is a plain struct with no pointers: zero it to start, copy it with
 * memcpy, add one into another with hist_merge.  It is not thread-safe: each
 * thread records into its own and hands a copy over under its own lock.
 */
#ifndef XEDGE_BENCH_HIST_H
#define XEDGE_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64u                      /* linear sub-buckets per power of two */
#define HIST_OCTAVES 21u                  /* 2^6 .. 2^27 µs */
#define HIST_BUCKETS (HIST_SUB + HIST_OCTAVES * HIST_SUB)
#define HIST_MAX_US ((1ull << 27) - 1)    /* ~134 s */

struct hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns, max_ns;              /* min_ns is meaningful only when count > 0 */
	uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);

/* The value (ns) at percentile p (0..100): the middle of the bucket that
 * holds it, clamped to [min, max].  0 when the histogram is empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Bucket index of a value in µs, and the [lo, hi] µs range of a bucket
 * (exposed for the unit tests). */
unsigned hist_index(uint64_t us);
void hist_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi);

#endif
