/*
 * merge — `xedge-bench merge` and `xedge-bench compare` (see merge.c), and
 * the thresholds' verdict shared with a run's end.
 */
#ifndef XEDGE_BENCH_MERGE_H
#define XEDGE_BENCH_MERGE_H

#include <stdio.h>

#include "bench/result.h"
#include "bench/threshold.h"

#define MERGE_MAX_THRESHOLDS 64

/* argv[0] is "merge" / "compare"; returns the exit status. */
int merge_main(int argc, char **argv);
int merge_compare_main(int argc, char **argv);

/* Evaluate thr[0..n) on r; print "threshold FAILED: ..." for each failure
 * and a one-line verdict to f.  0 all passed (or none), -1 some failed. */
int merge_thresholds(const struct result *r, const struct thr *thr, unsigned n, FILE *f);

#endif
