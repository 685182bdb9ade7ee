/*
 * html — the self-contained HTML report of a result (--html): one file with
 * inline CSS and inline SVG charts drawn here (users over time, rates per
 * transaction, p50/p99 per transaction over time, the latency distribution
 * of each transaction), the summary table, the errors by cause, the
 * thresholds with pass/fail and, for a scenario file, the scenario: its
 * file, phases, sessions with their weights and steps (the lines of
 * --check-scenario), its thresholds and the drain.  No script, no external
 * reference: it opens from a disk without a network.
 */
#ifndef XEDGE_BENCH_HTML_H
#define XEDGE_BENCH_HTML_H

#include <jansson.h>

#include "bench/result.h"
#include "bench/threshold.h"

/* Write the report of r to path, with the thresholds thr[0..nthr) evaluated
 * against it, and the scenario section from scenario (the JSON's
 * "scenario_file" object, of a run or merged; NULL: none).  Every value read
 * from scenario is checked for its type (a merge's inputs are files).  0 or
 * -errno. */
int html_write(const char *path, const struct result *r, const json_t *scenario,
	       const struct thr *thr, unsigned nthr);

#endif
