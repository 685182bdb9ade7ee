/*
 * hist — see hist.h.  Layout: indexes 0..63 are 0..63 µs exactly; above,
 * a value v with highest set bit e (6 <= e <= 26) goes to
 * 64 + (e - 6) * 64 + the 6 bits of v below its top bit.
 */
#include "bench/hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned hist_index(uint64_t us)
{
	unsigned e;

	if (us < HIST_SUB)
		return (unsigned)us;
	if (us > HIST_MAX_US)
		us = HIST_MAX_US;
	e = 63u - (unsigned)__builtin_clzll(us);
	return HIST_SUB + (e - 6u) * HIST_SUB + (unsigned)((us >> (e - 6u)) - HIST_SUB);
}

void hist_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
	unsigned e, sub;

	if (idx < HIST_SUB) {
		*lo = *hi = idx;
		return;
	}
	e = (idx - HIST_SUB) / HIST_SUB + 6u;
	sub = (idx - HIST_SUB) % HIST_SUB;
	*lo = (uint64_t)(HIST_SUB + sub) << (e - 6u);
	*hi = *lo + (1ull << (e - 6u)) - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
	h->b[hist_index(ns / 1000)]++;
	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	if (!from->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	if (!into->count || from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
	into->count += from->count;
	into->sum_ns += from->sum_ns;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, lo, hi, v;

	if (!h->count)
		return 0;
	if (p <= 0)
		return h->min_ns;
	if (p >= 100)
		return h->max_ns;
	/* The smallest value with at least p % of the samples at or below it. */
	rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen < rank)
			continue;
		hist_bucket_range(i, &lo, &hi);
		v = (lo * 1000 + hi * 1000 + 999) / 2;
		if (v < h->min_ns)
			v = h->min_ns;
		if (v > h->max_ns)
			v = h->max_ns;
		return v;
	}
	return h->max_ns;
}
