/*
 * sm/metrics — the session server's counters (struct sm_stats, written by
 * the sm thread) as Prometheus text, for the admin listener of xedge-sm or
 * of the xedge that embeds it: the shards of one process are summed.
 */
#include <stdio.h>
#include <string.h>

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

/* The counters of every shard of the process, summed (each read once). */
static void sum_stats(struct sm *const *sms, size_t n, struct sm_stats *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		const struct sm_stats *st = &sms[i]->stats;

		t->sessions += STAT_GET(st->sessions);
		t->users += STAT_GET(st->users);
		t->links += STAT_GET(st->links);
		t->binds += STAT_GET(st->binds);
		for (int k = 0; k < 4; k++) {
			t->routed[k] += STAT_GET(st->routed[k]);
			t->delivered[k] += STAT_GET(st->delivered[k]);
		}
		t->offline_stored += STAT_GET(st->offline_stored);
		t->stanza_errors += STAT_GET(st->stanza_errors);
		t->store_pending += STAT_GET(st->store_pending);
		t->shard_out += STAT_GET(st->shard_out);
		t->shard_in += STAT_GET(st->shard_in);
		t->orphans += STAT_GET(st->orphans);
		t->orphaned += STAT_GET(st->orphaned);
		t->adopted += STAT_GET(st->adopted);
		t->orphans_expired += STAT_GET(st->orphans_expired);
		mhist_add(&t->store_latency, &st->store_latency);
	}
}

void sm_metrics(struct sm *const *sms, size_t n, struct mx *m)
{
	struct sm_stats t;

	sum_stats(sms, n, &t);
	mx_one(m, "xedge_sm_shards", "gauge",
	       "Session-server shards in this process.",
	       (uint64_t)n);
	mx_one(m, "xedge_sm_sessions", "gauge",
	       "Resources bound on this session server.",
	       t.sessions);
	mx_one(m, "xedge_sm_users_loaded", "gauge",
	       "Accounts held in memory (online, or recently used).",
	       t.users);
	mx_one(m, "xedge_sm_edge_links", "gauge",
	       "Edge workers linked to this session server (to each of its shards).",
	       t.links);
	mx_one(m, "xedge_sm_binds_total", "counter",
	       "Resources bound (logins completed).",
	       t.binds);
	by_kind(m, "xedge_sm_stanzas_routed_total", "Stanzas received from sessions, by kind.", t.routed);
	by_kind(m, "xedge_sm_stanzas_delivered_total", "Stanzas sent to sessions, by kind.", t.delivered);
	mx_head(m, "xedge_sm_shard_stanzas_total", "counter",
		"Stanzas between users of two shards: sent to another shard (out), received (in).");
	mx_val(m, "xedge_sm_shard_stanzas_total", "dir=\"out\"", t.shard_out);
	mx_val(m, "xedge_sm_shard_stanzas_total", "dir=\"in\"", t.shard_in);
	mx_one(m, "xedge_sm_offline_stored_total", "counter",
	       "Messages put in offline storage.",
	       t.offline_stored);
	mx_one(m, "xedge_sm_stanza_errors_total", "counter",
	       "Stanza errors returned to senders.",
	       t.stanza_errors);
	mx_one(m, "xedge_sm_orphaned_sessions", "gauge",
	       "XEP-0198 sessions whose edge is gone, waiting to be resumed on another edge.",
	       t.orphans);
	mx_one(m, "xedge_sm_orphaned_total", "counter",
	       "XEP-0198 sessions kept when the link of their edge was lost.",
	       t.orphaned);
	mx_head(m, "xedge_sm_orphans_ended_total", "counter",
		"Orphaned sessions resumed on another edge (adopted) or ended (expired).");
	mx_val(m, "xedge_sm_orphans_ended_total", "how=\"adopted\"", t.adopted);
	mx_val(m, "xedge_sm_orphans_ended_total", "how=\"expired\"", t.orphans_expired);
	mx_one(m, "xedge_sm_store_queue_jobs", "gauge",
	       "Storage jobs submitted and not yet done.",
	       t.store_pending);
	mx_hist(m, "xedge_sm_store_job_duration_seconds",
		"Storage jobs (SQLite) from submission to completion.", &t.store_latency);
}
