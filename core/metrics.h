/*
 * metrics — counters that cost nothing on the hot path, and the Prometheus
 * text exposition format (version 0.0.4) they are scraped in.
 *
 * Counting: every counter has one writer, the thread that owns it (an edge
 * worker, the session server's thread), which adds with a relaxed load and
 * a relaxed store — plain moves on x86-64, no lock prefix, no fence, on a
 * cache line no other thread writes.  The admin thread (admin_http.h) reads
 * them with relaxed loads and sums the per-thread copies at scrape time:
 * a sum may be a moment stale, never torn.
 *
 * Histograms have fixed buckets (MH_BOUNDS_US, from 1 ms to 10 s) so
 * per-thread copies add up exactly.
 *
 * The writer functions append to a struct mx (a growable text buffer);
 * allocation failure is sticky (mx.failed) and checked once at the end.
 */
#ifndef XEDGE_METRICS_H
#define XEDGE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One writer thread; readers on other threads use STAT_GET. */
#define STAT_ADD(field, n) \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STAT_INC(field) STAT_ADD(field, 1)
#define STAT_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Upper bounds of the histogram buckets, microseconds; +Inf follows. */
#define MH_BUCKETS 14
extern const uint32_t mh_bounds_us[MH_BUCKETS - 1];

struct mhist {
	uint64_t b[MH_BUCKETS];   /* per bucket (not cumulative); the last is +Inf */
	uint64_t sum_us;
};

/* Record one observation (the owner thread only). */
void mhist_observe(struct mhist *h, uint64_t us);
/* dst += src, reading src with relaxed loads (scrape time). */
void mhist_add(struct mhist *dst, const struct mhist *src);

struct mx {
	char *p;
	size_t len, cap;
	bool failed;              /* an allocation failed: the text is incomplete */
};

/* # HELP and # TYPE lines; type is "counter", "gauge" or "histogram". */
void mx_head(struct mx *m, const char *name, const char *type, const char *help);
/* One sample: name{labels} value; labels without braces, "" for none. */
void mx_val(struct mx *m, const char *name, const char *labels, uint64_t v);
/* A metric with one unlabelled sample: mx_head, then mx_val. */
void mx_one(struct mx *m, const char *name, const char *type, const char *help, uint64_t v);
void mx_valf(struct mx *m, const char *name, const char *labels, double v);
/* A whole histogram (buckets cumulative, _sum in seconds, _count), head included. */
void mx_hist(struct mx *m, const char *name, const char *help, const struct mhist *h);
void mx_printf(struct mx *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mx_free(struct mx *m);

#endif
