/*
 * html — the self-contained HTML report of a result (--html): one file with
 * inline CSS and inline SVG charts drawn here (users over time, rates per
 * transaction, p50/p99 per transaction over time, the latency distribution
 * of each transaction), the summary table, the errors by cause and the
 * thresholds with pass/fail.  No script, no external reference: it opens
 * from a disk without a network.
 */
#ifndef XEDGE_BENCH_HTML_H
#define XEDGE_BENCH_HTML_H

#include "bench/result.h"
#include "bench/threshold.h"

/* Write the report of r to path, with the thresholds thr[0..nthr) evaluated
 * against it.  0 or -errno. */
int html_write(const char *path, const struct result *r, const struct thr *thr, unsigned nthr);

#endif
