/*
 * edge_metrics — the edge workers' counters (struct wstats) summed and
 * written as Prometheus text (names xedge_*; docs/operations.md lists them).
 * Runs on the admin thread: it only reads the counters (STAT_GET).
 *
 * Series that are mostly zero (SASL failures by cause, stream errors by
 * condition, stanzas by listener) appear once they count something;
 * connection gauges and the main counters are always present for the
 * listener types in use, so a dashboard has a line from the first scrape.
 */
#include <stdio.h>
#include <string.h>

#include "core/edge_metrics.h"
#include "core/iplimit.h"
#include "core/sasl.h"
#include "core/worker.h"
#include "core/xmpp.h"

static const char *const kind_names[CK_COUNT] = {
	[CK_C2S] = "c2s", [CK_C2S_TLS] = "c2s_tls", [CK_WS] = "ws", [CK_WSS] = "wss",
	[CK_S2S] = "s2s", [CK_S2S_TLS] = "s2s_tls", [CK_COMPONENT] = "component",
	[CK_S2S_OUT] = "s2s_out", [CK_UPSTREAM] = "upstream",
};
static const char *const tlsf_names[TLSF_COUNT] = {
	"limit", "timeout", "closed", "version", "cipher", "alert", "certificate", "protocol",
};
static const char *const stanza_names[4] = { "other", "message", "presence", "iq" };
static const char *const mech_names[5] = { "unknown", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "iq-auth" };
static const char *const dir_names[2] = { "in", "out" };
/* wstats.refused: [0] worker full, then by enum iplimit_verdict */
static const char *const refused_names[4] = {
	[0] = "max_connections", [IPLIMIT_TOO_MANY] = "per_ip", [IPLIMIT_TOO_FAST] = "per_ip_rate",
	[IPLIMIT_TABLE_FULL] = "ip_table_full",
};

static void add(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += STAT_GET(src[i]);
}

/* The sum over the workers.  Gauges are kept as differences per worker
 * (a connection may open on one state and the sums still balance), so
 * they are summed like counters. */
static void sum(struct wstats *t, const struct worker *workers, int n)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < n; i++) {
		const struct wstats *s = &workers[i].st;
		add(&t->conns[0][0], &s->conns[0][0], sizeof(s->conns) / 8);
		add(t->accepted, s->accepted, CK_COUNT);
		add(t->refused, s->refused, 4);
		add(t->tls_ok, s->tls_ok, CK_COUNT);
		add(t->tls_failed, s->tls_failed, TLSF_COUNT);
		add(t->logins, s->logins, 5);
		add(&t->sasl_failed[0][0], &s->sasl_failed[0][0], sizeof(s->sasl_failed) / 8);
		add(&t->stanzas[0][0][0], &s->stanzas[0][0][0], sizeof(s->stanzas) / 8);
		add(&t->stanza_bytes[0][0][0], &s->stanza_bytes[0][0][0], sizeof(s->stanza_bytes) / 8);
		add(t->net_bytes, s->net_bytes, 2);
		add(t->stream_errors, s->stream_errors, WSTAT_CONDS);
		t->rate_pauses += STAT_GET(s->rate_pauses);
		t->slow_closes += STAT_GET(s->slow_closes);
		t->link_up += STAT_GET(s->link_up);
		t->link_losses += STAT_GET(s->link_losses);
		t->link_queue_bytes += STAT_GET(s->link_queue_bytes);
		t->shard_relayed += STAT_GET(s->shard_relayed);
		t->shard_relay_failed += STAT_GET(s->shard_relay_failed);
		t->rebinds += STAT_GET(s->rebinds);
		t->shard_moves[0] += STAT_GET(s->shard_moves[0]);
		t->shard_moves[1] += STAT_GET(s->shard_moves[1]);
		t->resume_redirects += STAT_GET(s->resume_redirects);
		t->smacks_resumed += STAT_GET(s->smacks_resumed);
		t->smacks_resume_failed += STAT_GET(s->smacks_resume_failed);
		t->smacks_detached += STAT_GET(s->smacks_detached);
		t->smacks_moved += STAT_GET(s->smacks_moved);
		t->smacks_returned += STAT_GET(s->smacks_returned);
		add(t->upload, s->upload, UPS_COUNT);
		mhist_add(&t->login, &s->login);
		mhist_add(&t->sm_rtt, &s->sm_rtt);
	}
}

/* A [listener][direction][kind] counter: the kinds message, presence and iq
 * of the listener types in use always, any other series once it counts. */
static void by_stanza(struct mx *m, const char *name, const char *help, const bool used[CK_COUNT],
		      const uint64_t v[CK_COUNT][2][4])
{
	char l[160];

	mx_head(m, name, "counter", help);
	for (int k = 1; k < CK_COUNT; k++)
		for (int d = 0; d < 2; d++)
			for (int s = 0; s < 4; s++)
				if (v[k][d][s] || (used[k] && s)) {
					snprintf(l, sizeof(l), "listener=\"%s\",direction=\"%s\",kind=\"%s\"",
						 kind_names[k], dir_names[d], stanza_names[s]);
					mx_val(m, name, l, v[k][d][s]);
				}
}

void edge_kinds(const struct config *cfg, bool used[CK_COUNT])
{
	memset(used, 0, CK_COUNT);
	for (size_t i = 0; i < cfg->nlisteners; i++)
		used[cfg->listeners[i].kind] = true;
	used[CK_S2S_OUT] = cfg->s2s.enabled;
	used[CK_UPSTREAM] = cfg->backend_upstream != NULL;
}

void edge_metrics(struct mx *m, const bool used[CK_COUNT], bool upstream, const struct worker *workers, int n)
{
	struct wstats t;
	char l[160];

	sum(&t, workers, n);

	mx_head(m, "xedge_connections", "gauge", "Open connections by listener type and stream state.");
	for (int k = 1; k < CK_COUNT; k++)
		for (int s = 0; s < CS_COUNT; s++)
			if (used[k] || t.conns[k][s]) {
				snprintf(l, sizeof(l), "listener=\"%s\",state=\"%s\"", kind_names[k], conn_state_str(s));
				mx_val(m, "xedge_connections", l, t.conns[k][s]);
			}
	mx_head(m, "xedge_connections_accepted_total", "counter",
		"Connections accepted (inbound) or opened (s2s_out, upstream), by listener type.");
	for (int k = 1; k < CK_COUNT; k++)
		if (used[k] || t.accepted[k]) {
			snprintf(l, sizeof(l), "listener=\"%s\"", kind_names[k]);
			mx_val(m, "xedge_connections_accepted_total", l, t.accepted[k]);
		}
	mx_head(m, "xedge_connections_refused_total", "counter",
		"Connections closed at accept, unserved, by cause (the 'connection refused' log lines).");
	for (int k = 0; k < 4; k++) {
		snprintf(l, sizeof(l), "cause=\"%s\"", refused_names[k]);
		mx_val(m, "xedge_connections_refused_total", l, t.refused[k]);
	}
	mx_head(m, "xedge_tls_handshakes_total", "counter", "TLS handshakes completed, by listener type.");
	for (int k = 1; k < CK_COUNT; k++)
		if (used[k] || t.tls_ok[k]) {
			snprintf(l, sizeof(l), "listener=\"%s\"", kind_names[k]);
			mx_val(m, "xedge_tls_handshakes_total", l, t.tls_ok[k]);
		}
	mx_head(m, "xedge_tls_handshake_failures_total", "counter", "TLS handshakes that failed, by cause.");
	for (int f = 0; f < TLSF_COUNT; f++) {
		snprintf(l, sizeof(l), "cause=\"%s\"", tlsf_names[f]);
		mx_val(m, "xedge_tls_handshake_failures_total", l, t.tls_failed[f]);
	}
	mx_head(m, "xedge_logins_total", "counter",
		"Successful authentications at the edge (native backend), by mechanism.");
	for (int k = 1; k < 5; k++) {
		snprintf(l, sizeof(l), "mechanism=\"%s\"", mech_names[k]);
		mx_val(m, "xedge_logins_total", l, t.logins[k]);
	}
	mx_head(m, "xedge_sasl_failures_total", "counter",
		"Authentication failures (the SASL condition sent), by mechanism and cause.");
	for (int k = 0; k < 5; k++)
		for (int c = 0; c < WSTAT_SASL_CONDS; c++)
			if (t.sasl_failed[k][c]) {
				snprintf(l, sizeof(l), "mechanism=\"%s\",cause=\"%s\"", mech_names[k], sasl_cond_str(c));
				mx_val(m, "xedge_sasl_failures_total", l, t.sasl_failed[k][c]);
			}
	by_stanza(m, "xedge_stanzas_total",
		  "Top-level elements received (in) and stanzas sent (out), by listener type and kind.",
		  used, t.stanzas);
	by_stanza(m, "xedge_stanza_bytes_total", "Bytes of those elements, by listener type and kind.",
		  used, t.stanza_bytes);
	mx_head(m, "xedge_network_bytes_total", "counter", "Bytes read from and written to sockets (TLS included).");
	for (int d = 0; d < 2; d++) {
		snprintf(l, sizeof(l), "direction=\"%s\"", dir_names[d]);
		mx_val(m, "xedge_network_bytes_total", l, t.net_bytes[d]);
	}
	mx_head(m, "xedge_stream_errors_total", "counter", "Stream errors sent, by condition (RFC 6120 4.9.3).");
	for (int c = 0; c < WSTAT_CONDS; c++)
		if (t.stream_errors[c]) {
			snprintf(l, sizeof(l), "condition=\"%s\"", xmpp_conditions[c]);
			mx_val(m, "xedge_stream_errors_total", l, t.stream_errors[c]);
		}
	mx_one(m, "xedge_rate_limit_pauses_total", "counter",
	       "Times a stream's reads paused for exceeding its byte or stanza rate.",
	       t.rate_pauses);
	mx_one(m, "xedge_slow_reader_closes_total", "counter",
	       "Streams closed because their output queue stayed full (timeouts.slow_reader).",
	       t.slow_closes);
	if (!upstream) {
		uint64_t nlinks = 0;

		for (int i = 0; i < n; i++)
			nlinks += workers[i].nshards ? workers[i].nshards : 1;
		mx_head(m, "xedge_session_server_links", "gauge",
			"Worker links to the session servers (one per worker and shard), by state.");
		mx_val(m, "xedge_session_server_links", "state=\"up\"", t.link_up);
		mx_val(m, "xedge_session_server_links", "state=\"down\"", nlinks - t.link_up);
		mx_one(m, "xedge_session_server_link_losses_total", "counter",
		       "Times a worker lost a link to a session server.",
		       t.link_losses);
		mx_one(m, "xedge_shard_relayed_total", "counter",
		       "Stanzas between users of two shards passed on by this edge.",
		       t.shard_relayed);
		mx_one(m, "xedge_shard_relay_failed_total", "counter",
		       "Such stanzas bounced to their sender because the owner shard's link was down.",
		       t.shard_relay_failed);
		mx_one(m, "xedge_session_rebinds_total", "counter",
		       "XEP-0198 sessions bound again on a restarted shard (no new login).",
		       t.rebinds);
		mx_head(m, "xedge_shard_moves_total", "counter",
			"Sessions moved off a shard that no longer owns their user (the shard set changed): "
			"bound again on the new owner (XEP-0198) or told <reset/>.");
		mx_val(m, "xedge_shard_moves_total", "result=\"rebound\"", t.shard_moves[0]);
		mx_val(m, "xedge_shard_moves_total", "result=\"reset\"", t.shard_moves[1]);
		mx_one(m, "xedge_stream_resume_redirects_total", "counter",
		       "XEP-0198 <resume/>s of another edge's session, sent there (see-other-host).",
		       t.resume_redirects);
		mx_one(m, "xedge_session_server_queue_bytes", "gauge",
		       "Frames queued to the session server, not yet taken by the socket.",
		       t.link_queue_bytes);
		mx_head(m, "xedge_stream_resumptions_total", "counter",
			"XEP-0198 <resume/> requests, by result.");
		mx_val(m, "xedge_stream_resumptions_total", "result=\"ok\"", t.smacks_resumed);
		mx_val(m, "xedge_stream_resumptions_total", "result=\"failed\"", t.smacks_resume_failed);
		mx_one(m, "xedge_sessions_detached_total", "counter",
		       "XEP-0198 sessions kept after their connection ended, for a resumption.",
		       t.smacks_detached);
		mx_one(m, "xedge_sessions_moved_total", "counter",
		       "XEP-0198 resumptions that took the session over from another worker.",
		       t.smacks_moved);
		mx_one(m, "xedge_stanzas_returned_total", "counter",
		       "Unacknowledged stanzas handed back to the session server when a session ended.",
		       t.smacks_returned);
		if (workers[0].cfg->upload.domain) {
			mx_head(m, "xedge_upload_slots_total", "counter",
				"XEP-0363 upload slots asked for, by result (refused: too large, quota, malformed).");
			mx_val(m, "xedge_upload_slots_total", "result=\"given\"", t.upload[UPS_SLOTS]);
			mx_val(m, "xedge_upload_slots_total", "result=\"refused\"", t.upload[UPS_SLOTS_REFUSED]);
			mx_one(m, "xedge_upload_files_total", "counter", "Files uploaded and stored (PUT answered 201).",
			       t.upload[UPS_FILES]);
			mx_one(m, "xedge_upload_downloads_total", "counter",
			       "Uploaded files served (GET or HEAD answered 200 or 206).", t.upload[UPS_DOWNLOADS]);
			mx_one(m, "xedge_upload_refused_total", "counter",
			       "Upload HTTP requests answered with an error status (4xx, 5xx).", t.upload[UPS_REFUSED]);
			mx_head(m, "xedge_upload_bytes_total", "counter",
				"File bytes written by PUTs (in) and sent by GETs (out).");
			mx_val(m, "xedge_upload_bytes_total", "direction=\"in\"", t.upload[UPS_BYTES_IN]);
			mx_val(m, "xedge_upload_bytes_total", "direction=\"out\"", t.upload[UPS_BYTES_OUT]);
		}
		mx_hist(m, "xedge_login_duration_seconds",
			"Logins from the first authentication message to the bound resource.", &t.login);
		mx_hist(m, "xedge_session_server_rtt_seconds",
			"Edge to session server round trips (credentials and bind requests).", &t.sm_rtt);
	}
}

uint64_t edge_clients(const struct worker *workers, int n)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		for (int k = CK_C2S; k <= CK_WSS; k++)
			for (int s = 0; s < CS_COUNT; s++)
				total += STAT_GET(workers[i].st.conns[k][s]);
	return total;
}

bool edge_linked(const struct worker *workers, int n)
{
	for (int i = 0; i < n; i++)
		if (STAT_GET(workers[i].st.link_up) < (workers[i].nshards ? workers[i].nshards : 1u))
			return false;
	return true;
}
