/*
 * edge_metrics — the edge's metrics, read from the workers' counters
 * (struct wstats in worker-t.h) by another thread (the admin listener, the
 * main thread's drain and STATUS line).
 */
#ifndef XEDGE_EDGE_METRICS_H
#define XEDGE_EDGE_METRICS_H

#include "core/worker-t.h"

/* The connection kinds whose series are always shown: the configured
 * listeners' types and the outbound streams cfg makes. */
void edge_kinds(const struct config *cfg, bool used[CK_COUNT]);

/* Append the xedge_* metrics of n workers to m (used: from edge_kinds;
 * upstream: no session-server series). */
void edge_metrics(struct mx *m, const bool used[CK_COUNT], bool upstream, const struct worker *workers, int n);

/* Client connections open (c2s, c2s_tls, ws, wss; any state). */
uint64_t edge_clients(const struct worker *workers, int n);

/* Every worker's session-server link is up (native backend). */
bool edge_linked(const struct worker *workers, int n);

#endif
