/*
 * sm/metrics — the session server's counters (struct sm_stats, written by
 * the sm thread) as Prometheus text, for the admin listener of xedge-sm or
 * of the xedge that embeds it.
 */
#include <stdio.h>

#include "core/metrics.h"
#include "sm/sm_int.h"

static const char *const kind_names[4] = { "other", "message", "presence", "iq" };

static void by_kind(struct mx *m, const char *name, const char *help, const uint64_t v[4])
{
	char labels[32];

	mx_head(m, name, "counter", help);
	for (int k = 1; k < 4; k++) {
		snprintf(labels, sizeof(labels), "kind=\"%s\"", kind_names[k]);
		mx_val(m, name, labels, STAT_GET(v[k]));
	}
}

void sm_metrics(struct sm *sm, struct mx *m)
{
	const struct sm_stats *st = &sm->stats;
	struct mhist h = { 0 };

	mx_one(m, "xedge_sm_sessions", "gauge",
	       "Resources bound on this session server.",
	       STAT_GET(st->sessions));
	mx_one(m, "xedge_sm_users_loaded", "gauge",
	       "Accounts held in memory (online, or recently used).",
	       STAT_GET(st->users));
	mx_one(m, "xedge_sm_edge_links", "gauge",
	       "Edge workers linked to this session server.",
	       STAT_GET(st->links));
	mx_one(m, "xedge_sm_binds_total", "counter",
	       "Resources bound (logins completed).",
	       STAT_GET(st->binds));
	by_kind(m, "xedge_sm_stanzas_routed_total", "Stanzas received from sessions, by kind.", st->routed);
	by_kind(m, "xedge_sm_stanzas_delivered_total", "Stanzas sent to sessions, by kind.", st->delivered);
	mx_one(m, "xedge_sm_offline_stored_total", "counter",
	       "Messages put in offline storage.",
	       STAT_GET(st->offline_stored));
	mx_one(m, "xedge_sm_stanza_errors_total", "counter",
	       "Stanza errors returned to senders.",
	       STAT_GET(st->stanza_errors));
	mx_one(m, "xedge_sm_store_queue_jobs", "gauge",
	       "Storage jobs submitted and not yet done.",
	       STAT_GET(st->store_pending));
	mhist_add(&h, &st->store_latency);
	mx_hist(m, "xedge_sm_store_job_duration_seconds",
		"Storage jobs (SQLite) from submission to completion.", &h);
}
