/*
 * report — see report.h.  Latencies are printed in milliseconds; "lost" is
 * the messages sent inside the measured window that never arrived (after
 * the drain), counted once each however many copies arrived.  With
 * --remote the summary and the JSON also give the two servers and, for the
 * messages that crossed between them, each direction's counts and latency;
 * without it they are what they always were.
 */
#include "bench/report.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *scenario_str(int s)
{
	static const char *const n[] = { "login", "chat", "idle", "connect", "muc" };
	if (s == SC_FILE)
		return bs_name();
	return s >= 0 && s <= SC_MUC ? n[s] : "?";
}

static const char *tls_str(int t)
{
	return t == TLS_MODE_DIRECT ? "direct" : t == TLS_MODE_STARTTLS ? "starttls" : "plain";
}

static const char *mech_str(int m)
{
	return m == MECH_PLAIN ? "PLAIN" : m == MECH_SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static uint64_t not_arrived(uint64_t sent, uint64_t recv)
{
	return sent > recv ? sent - recv : 0;
}

static uint64_t lost(const struct bench_stats *s)
{
	return not_arrived(s->sent_meas, s->recv_meas);
}

/* muc: deliveries of measured messages that never arrived */
static uint64_t muc_lost(const struct bench_stats *s)
{
	return not_arrived(s->expected_meas, s->recv_meas);
}

/* muc: the --pids' CPU-seconds in the measured window per 1,000 deliveries received in it
 * (whenever sent: a saturated server is still delivering the warm-up's); -1: unknown */
static double muc_cpu_per_k(const struct bench_result *r)
{
	return r->meas_cpu && r->total.recv_window ?
	       r->meas_cpu_s * 1000.0 / (double)r->total.recv_window : -1;
}

/* RSS growth over the joins per occupant (may be negative: an allocator that gives back the
 * logins' pages while the joins run); NAN when not sampled. */
static double muc_kib_per_occupant(const struct bench_result *r)
{
	return r->join_mem && r->total.joined ?
	       ((double)r->rss_join1 - (double)r->rss_join0) / (double)r->total.joined : NAN;
}

/* RSS growth from the start of the run (before the first login) to after the joins, per
 * occupant: its session and its room membership together. */
static double muc_kib_per_session(const struct bench_result *r)
{
	return r->join_mem && r->total.joined ?
	       ((double)r->rss_join1 - (double)r->rss_before) / (double)r->total.joined : NAN;
}

/* ---- transactions ------------------------------------------------------------- */

/* The histogram a transaction is recorded in today; NULL: no recording point yet. */
static const struct hist *txn_hist(const struct bench_stats *s, int txn)
{
	switch (txn) {
	case TX_CONNECT:
		return &s->h_connect;
	case TX_TLS:
		return &s->h_tls;
	case TX_AUTH:
		return &s->h_auth;
	case TX_LOGIN:
		return &s->h_login;
	case TX_MESSAGE_RTT:
		return &s->h_msg_meas;
	case TX_JOIN:
		return &s->h_join;
	case TX_ROOM_FANOUT:
		return &s->h_last;
	case TX_BIND:
		return &s->h_bind;
	case TX_ROSTER:
		return &s->h_roster;
	case TX_PING:
		return &s->h_ping;
	case TX_PUBLISH:
		return &s->h_publish;
	case TX_WS:
		return &s->h_ws;
	case TX_RESUME:
		return &s->h_resume;
	default:
		return NULL;
	}
}

int report_point(struct result *rs, const struct bench_stats *sec, const struct bench_point *p,
		 int64_t unix_s)
{
	struct result_point *q = result_point_add(rs);
	uint64_t err[TX_N] = { 0 };
	static const struct hist empty;

	if (!q)
		return -1;
	q->unix_s = unix_s;
	q->t = p->t;
	q->users = p->online;
	q->connected = p->connected;
	q->target_cpu = p->target_cpu;
	q->target_rss_kib = p->target_rss_kib;
	q->bench_cpu = p->bench_cpu;
	for (unsigned i = 0; i < sec->ncauses; i++)
		result_cause_count(sec->causes[i].name, sec->causes[i].n, err);
	for (int k = 0; k < TX_N; k++) {
		const struct hist *h = txn_hist(sec, k);
		if (result_point_txn(q, k, h ? h : &empty, err[k]) < 0)
			return -1;
	}
	return 0;
}

void report_totals(struct result *rs, const struct bench_result *r)
{
	const struct bench_stats *s = &r->total;

	for (int k = 0; k < TX_N; k++) {
		const struct hist *h = txn_hist(s, k);
		if (h) {
			rs->tx[k].h = *h;
			rs->tx[k].count = h->count;
		}
	}
	for (unsigned i = 0; i < s->ncauses; i++)
		result_cause(rs, s->causes[i].name, s->causes[i].n);
	/* Messages of the measured window that never arrived: errors of message_rtt. */
	if (B.o.scenario == SC_CHAT)
		result_cause(rs, "message:lost", lost(s));
	else if (B.o.scenario == SC_MUC)
		result_cause(rs, "message:lost", muc_lost(s));
	else if (B.o.scenario == SC_FILE)
		result_cause(rs, "message:lost", lost(s));   /* one-way chat after the warm-up */
	rs->duration_s = r->elapsed_s;
	rs->have_target = r->have_target;
	rs->target_cpu_avg = r->target_cpu_avg;
	rs->target_cpu_max = r->target_cpu_max;
	rs->target_rss_max_kib = r->target_rss_max;
	rs->gen_cpu_avg = r->bench_cpu_avg;
	rs->gen_cpu_max = r->bench_cpu_max;
	rs->peak_sessions = r->peak_connected;
}

static void muc_rows(FILE *f, const struct bench_result *r)
{
	const struct bench_opts *o = &B.o;
	const struct bench_stats *s = &r->total;
	double w = r->meas_s > 0 ? r->meas_s : 1;

	fprintf(f, "\ngroup chat (%u rooms x %u occupants on %s; %.3g messages/s per occupant, "
		"measured %.1f s after %.1f s warm-up; body %u bytes)\n", o->rooms, o->room_size,
		o->muc_domain, o->rate, r->meas_s, r->warmup_s, o->body);
	fprintf(f, "  occupants %llu joined, %llu failed to join, in %.1f s\n",
		(unsigned long long)s->joined, (unsigned long long)s->join_failed, r->join_s);
	fprintf(f, "  %10s %10s %10s %8s %10s %9s %12s\n", "sent", "expected", "delivered", "lost",
		"complete", "misrouted", "delivered/s");
	fprintf(f, "  %10llu %10llu %10llu %8llu %10llu %9llu %12.0f\n",
		(unsigned long long)s->sent_meas, (unsigned long long)s->expected_meas,
		(unsigned long long)s->recv_meas, (unsigned long long)muc_lost(s),
		(unsigned long long)s->complete_meas, (unsigned long long)s->misrouted,
		(double)s->recv_meas / w);
	fprintf(f, "  received in the measured window (whenever sent): %llu, %.0f/s\n",
		(unsigned long long)s->recv_window, (double)s->recv_window / w);
	fprintf(f, "  whole run: %llu sent, %llu deliveries expected, %llu received\n",
		(unsigned long long)s->sent, (unsigned long long)s->expected,
		(unsigned long long)s->recv);
	if (muc_cpu_per_k(r) >= 0)
		fprintf(f, "  target cpu in the measured window: %.2f s over %.1f s: %.4f CPU-s per 1,000 "
			"deliveries\n", r->meas_cpu_s, r->meas_wall_s, muc_cpu_per_k(r));
	if (r->join_mem)
		fprintf(f, "  memory: rss %.1f MiB at the start, %.1f MiB before the joins, %.1f MiB after:\n"
			"          %.2f KiB per occupant over the joins, %.2f KiB per occupant with its "
			"session\n", (double)r->rss_before / 1024, (double)r->rss_join0 / 1024,
			(double)r->rss_join1 / 1024, muc_kib_per_occupant(r), muc_kib_per_session(r));
}

/* The generator's own memory per session held (result_gen_mem). */
static void gen_mem_rows(FILE *f, const struct result_gen_mem *m)
{
	if (!m->held) {
		fprintf(f, "bench memory   not measured (no session was online at a sample)\n");
		return;
	}
	fprintf(f, "bench memory   rss %.1f MiB -> %.1f MiB holding %llu sessions: %.0f bytes per "
		"session\n", (double)m->rss_before_kib / 1024, (double)m->rss_held_kib / 1024,
		(unsigned long long)m->sessions_held, result_gen_bytes_per_session(m, false));
	if (m->heap_alloc_held)
		fprintf(f, "               heap (jemalloc) allocated %.1f -> %.1f MiB: %.0f bytes per "
			"session; resident %.1f -> %.1f MiB\n", (double)m->heap_alloc_before / 1048576,
			(double)m->heap_alloc_held / 1048576, result_gen_bytes_per_session(m, true),
			(double)m->heap_resident_before / 1048576,
			(double)m->heap_resident_held / 1048576);
	fprintf(f, "               (the kernel's socket memory is not in the process's RSS)\n");
}

static double logins_per_s(const struct bench_result *r)
{
	return r->login_span_s > 0 ? (double)r->total.logged_in / r->login_span_s : 0;
}

static void lat_row(FILE *f, const char *name, const struct hist *h)
{
	if (!h->count) {
		fprintf(f, "  %-10s %9s\n", name, "-");
		return;
	}
	fprintf(f, "  %-10s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %10llu\n", name,
		ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
		ms(hist_percentile(h, 99.9)), ms(h->max_ns), ms(h->sum_ns / h->count),
		(unsigned long long)h->count);
}

/* --remote: the measured messages that crossed between the servers, per direction. */
static void cross_rows(FILE *f, const struct bench_result *r, double w)
{
	const struct bench_opts *o = &B.o;
	const struct bench_stats *s = &r->total;

	fprintf(f, "\nbetween the servers (%s)\n",
		o->one_way ? "--cross --one-way: the first server's clients send" :
		o->cross ? "--cross: every message" : "peers on either server");
	fprintf(f, "  %-34s %10s %10s %8s %10s %9s %9s\n", "direction", "sent", "received", "lost",
		"recv/s", "p50 ms", "p99 ms");
	for (int d = 0; d < 2; d++) {
		const struct hist *h = &s->h_cross[d];
		char dir[160];
		snprintf(dir, sizeof(dir), "%s -> %s", d ? o->remote_domain : o->domain,
			 d ? o->domain : o->remote_domain);
		fprintf(f, "  %-34s %10llu %10llu %8llu %10.0f %9.3f %9.3f\n", dir,
			(unsigned long long)s->x_sent[d], (unsigned long long)s->x_recv[d],
			(unsigned long long)not_arrived(s->x_sent[d], s->x_recv[d]), (double)s->x_recv[d] / w,
			ms(hist_percentile(h, 50)), ms(hist_percentile(h, 99)));
	}
	if (r->meas_cpu) {
		fprintf(f, "  cpu in the measured window (%% of one core):");
		for (unsigned i = 0; i < o->npids; i++)
			fprintf(f, " pid %d %.1f,", (int)o->pids[i], r->meas_pid_cpu[i]);
		fprintf(f, " xedge-bench %.1f\n", r->meas_bench_cpu);
	}
}

void report_summary(FILE *f, const struct bench_result *r)
{
	const struct bench_opts *o = &B.o;
	const struct bench_stats *s = &r->total;
	char port[8];

	snprintf(port, sizeof(port), "%u", ntohs(((const struct sockaddr_in *)&o->target)->sin_port));
	fprintf(f, "\n== xedge-bench %s: %u clients, %u threads, %s, %s -> %s port %s, %.1f s%s ==\n\n",
		scenario_str(o->scenario), o->clients, B.nthreads, tls_str(o->tls),
		o->scenario == SC_CONNECT ? "no login" : o->scenario == SC_FILE ? "mechanisms by step" :
		mech_str(o->mech), o->host, port,
		r->elapsed_s, r->interrupted ? " (interrupted)" : "");
	fprintf(f, "%-12s %9s %9s %9s %9s %9s %9s %9s\n", "sessions", "started", "connected",
		o->scenario == SC_CONNECT ? "streams" : "logged-in", "failed", "dropped", "peak",
		"logins/s");
	fprintf(f, "%-12s %9llu %9llu %9llu %9llu %9llu %9u %9.1f\n", "", (unsigned long long)s->started,
		(unsigned long long)s->connected, (unsigned long long)s->logged_in,
		(unsigned long long)s->failed, (unsigned long long)s->dropped, r->peak_online,
		logins_per_s(r));
	if (s->started < o->clients && o->scenario != SC_FILE)
		fprintf(f, "  (%llu clients were never started: the login phase ended first)\n",
			(unsigned long long)(o->clients - s->started));
	if (o->remote_host)
		fprintf(f, "  two servers: clients 0..%u -> %s port %s (%s), %u..%u -> %s port %u (%s)\n",
			o->split - 1, o->host, port, o->domain, o->split, o->clients - 1, o->remote_host,
			o->remote_port, o->remote_domain);
	fprintf(f, "\n%-12s %9s %9s %9s %9s %9s %9s %10s\n", "latency ms", "p50", "p90", "p99", "p99.9",
		"max", "mean", "count");
	lat_row(f, "connect", &s->h_connect);
	if (o->tls != TLS_MODE_PLAIN)
		lat_row(f, "tls", &s->h_tls);
	if (o->scenario != SC_CONNECT)
		lat_row(f, "auth", &s->h_auth);
	lat_row(f, o->scenario == SC_CONNECT ? "stream" : "login", &s->h_login);
	if (o->scenario == SC_CHAT)
		lat_row(f, "message", &s->h_msg_meas);
	if (o->scenario == SC_MUC) {
		lat_row(f, "join", &s->h_join);
		lat_row(f, "delivery", &s->h_msg_meas);
		lat_row(f, "last-copy", &s->h_last);
	}
	if (r->rs)
		result_summary(f, r->rs);
	if (s->ncauses) {
		fprintf(f, "\nfailures by cause\n");
		for (unsigned i = 0; i < s->ncauses; i++)
			fprintf(f, "  %-44s %9llu\n", s->causes[i].name, (unsigned long long)s->causes[i].n);
	}
	if (o->scenario == SC_CHAT) {
		double w = r->meas_s > 0 ? r->meas_s : 1;
		fprintf(f, "\nmessages (%s, measured %.1f s after %.1f s warm-up; body %u bytes)\n",
			o->rate > 0 ? "open loop" : "closed loop", r->meas_s, r->warmup_s, o->body);
		fprintf(f, "  %10s %10s %8s %8s %9s %9s %10s %10s\n", "sent", "received", "lost", "dup",
			"reordered", "misrouted", "sent/s", "recv/s");
		fprintf(f, "  %10llu %10llu %8llu %8llu %9llu %9llu %10.0f %10.0f\n",
			(unsigned long long)s->sent_meas, (unsigned long long)s->recv_meas,
			(unsigned long long)lost(s), (unsigned long long)s->dup,
			(unsigned long long)s->reordered, (unsigned long long)s->misrouted,
			(double)s->sent_meas / w, (double)s->recv_meas / w);
		fprintf(f, "  whole run: %llu sent, %llu received; %llu window timeouts\n",
			(unsigned long long)s->sent, (unsigned long long)s->recv,
			(unsigned long long)s->window_timeouts);
		if (o->remote_host)
			cross_rows(f, r, w);
	}
	if (o->scenario == SC_MUC)
		muc_rows(f, r);
	if (o->scenario == SC_FILE)
		bs_summary(f, s);
	if (r->have_target) {
		fprintf(f, "\ntarget (%u pid%s)   cpu avg %.1f %%   cpu max %.1f %%   rss max %.1f MiB\n",
			o->npids, o->npids > 1 ? "s" : "", r->target_cpu_avg, r->target_cpu_max,
			(double)r->target_rss_max / 1024);
	}
	if (o->scenario == SC_IDLE || (o->scenario == SC_FILE && r->idle_mem)) {
		if (r->idle_mem && r->sessions)
			fprintf(f, "idle memory    rss %.1f MiB -> %.1f MiB for %u sessions: %.1f KiB per session\n"
				"               (the baseline is the target's RSS at the start of this run: memory\n"
				"               an earlier run left allocated hides in it; start the target fresh)\n",
				(double)r->rss_before / 1024, (double)r->rss_after / 1024, r->sessions,
				((double)r->rss_after - (double)r->rss_before) / r->sessions);
		else
			fprintf(f, "idle memory    not measured (needs --pid and logged-in sessions)\n");
	}
	fprintf(f, "bench          cpu avg %.1f %%   cpu max %.1f %% (of one core; %u threads)\n",
		r->bench_cpu_avg, r->bench_cpu_max, B.nthreads);
	if (r->rs)
		gen_mem_rows(f, &r->rs->gm);
	if (s->unexpected)
		fprintf(f, "note: %llu stanzas the simulated clients did not expect (ignored)\n",
			(unsigned long long)s->unexpected);
	fflush(f);
}

/* ---- JSON -------------------------------------------------------------------- */


static void json_hist_in(FILE *f, const char *indent, const char *name, const struct hist *h,
			 bool comma)
{
	fprintf(f, "%s\"%s\": {\"count\": %llu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
		"\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f}%s\n",
		indent, name, (unsigned long long)h->count, ms(hist_percentile(h, 50)),
		ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)),
		ms(h->max_ns), h->count ? ms(h->sum_ns / h->count) : 0.0, comma ? "," : "");
}

static void json_hist(FILE *f, const char *name, const struct hist *h, bool comma)
{
	json_hist_in(f, "    ", name, h, comma);
}

int report_json(const char *path, const struct bench_result *r)
{
	const struct bench_opts *o = &B.o;
	const struct bench_stats *s = &r->total;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"scenario\": \"%s\",\n  \"clients\": %u,\n  \"threads\": %u,\n",
		scenario_str(o->scenario), o->clients, B.nthreads);
	fprintf(f, "  \"tls\": \"%s\",\n  \"mech\": \"%s\",\n  \"target\": ", tls_str(o->tls),
		mech_str(o->mech));
	result_json_str(f, o->host);
	fprintf(f, ",\n  \"port\": %u,\n  \"domain\": ",
		ntohs(((const struct sockaddr_in *)&o->target)->sin_port));
	result_json_str(f, o->domain);
	fprintf(f, ",\n  \"elapsed_s\": %.3f,\n  \"interrupted\": %s,\n", r->elapsed_s,
		r->interrupted ? "true" : "false");
	fprintf(f, "  \"logins\": {\"started\": %llu, \"connected\": %llu, \"logged_in\": %llu, "
		"\"failed\": %llu, \"dropped\": %llu, \"peak_online\": %u, \"peak_connected\": %u, "
		"\"span_s\": %.3f, \"per_s\": %.1f},\n",
		(unsigned long long)s->started, (unsigned long long)s->connected,
		(unsigned long long)s->logged_in, (unsigned long long)s->failed,
		(unsigned long long)s->dropped, r->peak_online, r->peak_connected, r->login_span_s,
		logins_per_s(r));
	fprintf(f, "  \"latency_ms\": {\n");
	json_hist(f, "connect", &s->h_connect, true);
	json_hist(f, "tls", &s->h_tls, true);
	json_hist(f, "auth", &s->h_auth, true);
	json_hist(f, "login", &s->h_login, true);
	json_hist(f, "message", &s->h_msg_meas, false);
	fprintf(f, "  },\n  \"failures\": {");
	for (unsigned i = 0; i < s->ncauses; i++) {
		fprintf(f, "%s", i ? ", " : "");
		result_json_str(f, s->causes[i].name);
		fprintf(f, ": %llu", (unsigned long long)s->causes[i].n);
	}
	fprintf(f, "},\n");
	fprintf(f, "  \"messages\": {\"mode\": \"%s\", \"window\": %u, \"rate\": %.3f, \"body\": %u, "
		"\"warmup_s\": %.3f, \"measured_s\": %.3f, \"sent\": %llu, \"received\": %llu, "
		"\"lost\": %llu, \"duplicated\": %llu, \"reordered\": %llu, \"misrouted\": %llu, "
		"\"sent_per_s\": %.1f, \"recv_per_s\": %.1f, \"sent_total\": %llu, "
		"\"received_total\": %llu, \"window_timeouts\": %llu},\n",
		o->rate > 0 ? "open" : "closed", o->window, o->rate, o->body, r->warmup_s, r->meas_s,
		(unsigned long long)s->sent_meas, (unsigned long long)s->recv_meas,
		(unsigned long long)lost(s), (unsigned long long)s->dup,
		(unsigned long long)s->reordered, (unsigned long long)s->misrouted,
		r->meas_s > 0 ? (double)s->sent_meas / r->meas_s : 0,
		r->meas_s > 0 ? (double)s->recv_meas / r->meas_s : 0, (unsigned long long)s->sent,
		(unsigned long long)s->recv, (unsigned long long)s->window_timeouts);
	if (o->remote_host) {
		fprintf(f, "  \"remote\": {\"target\": ");
		result_json_str(f, o->remote_host);
		fprintf(f, ", \"port\": %u, \"domain\": ", o->remote_port);
		result_json_str(f, o->remote_domain);
		fprintf(f, ", \"first_remote_client\": %u, \"cross\": %s, \"one_way\": %s, "
			"\"directions\": [\n", o->split, o->cross ? "true" : "false",
			o->one_way ? "true" : "false");
		for (int d = 0; d < 2; d++) {
			const struct hist *h = &s->h_cross[d];
			fprintf(f, "    {\"from\": ");
			result_json_str(f, d ? o->remote_domain : o->domain);
			fprintf(f, ", \"to\": ");
			result_json_str(f, d ? o->domain : o->remote_domain);
			fprintf(f, ", \"sent\": %llu, \"received\": %llu, \"lost\": %llu, "
				"\"recv_per_s\": %.1f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
				"\"p999\": %.3f, \"max\": %.3f}%s\n",
				(unsigned long long)s->x_sent[d], (unsigned long long)s->x_recv[d],
				(unsigned long long)not_arrived(s->x_sent[d], s->x_recv[d]),
				r->meas_s > 0 ? (double)s->x_recv[d] / r->meas_s : 0,
				ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
				ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max_ns),
				d ? "" : ",");
		}
		fprintf(f, "  ]");
		if (r->meas_cpu) {
			fprintf(f, ", \"measured_cpu\": {\"pids\": [");
			for (unsigned i = 0; i < o->npids; i++)
				fprintf(f, "%s%.1f", i ? ", " : "", r->meas_pid_cpu[i]);
			fprintf(f, "], \"bench\": %.1f}", r->meas_bench_cpu);
		}
		fprintf(f, "},\n");
	}
	fprintf(f, "  \"target\": {\"pids\": [");
	for (unsigned i = 0; i < o->npids; i++)
		fprintf(f, "%s%d", i ? ", " : "", (int)o->pids[i]);
	fprintf(f, "], \"cpu_avg\": %.1f, \"cpu_max\": %.1f, \"rss_max_kib\": %llu},\n",
		r->target_cpu_avg, r->target_cpu_max, (unsigned long long)r->target_rss_max);
	fprintf(f, "  \"bench\": {\"cpu_avg\": %.1f, \"cpu_max\": %.1f, \"bytes_in\": %llu, "
		"\"bytes_out\": %llu},\n", r->bench_cpu_avg, r->bench_cpu_max,
		(unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out);
	if (o->scenario == SC_MUC) {
		double w = r->meas_s > 0 ? r->meas_s : 1;
		fprintf(f, "  \"muc\": {\"rooms\": %u, \"room_size\": %u, \"domain\": ", o->rooms,
			o->room_size);
		result_json_str(f, o->muc_domain);
		fprintf(f, ", \"rate_per_occupant\": %.3f, \"joined\": %llu, \"join_failed\": %llu, "
			"\"join_s\": %.3f, \"sent\": %llu, \"expected\": %llu, \"delivered\": %llu, "
			"\"lost\": %llu, \"complete\": %llu, \"misrouted\": %llu, "
			"\"delivered_per_s\": %.1f, \"sent_total\": %llu, \"expected_total\": %llu, "
			"\"received_total\": %llu, \"received_in_window\": %llu, "
			"\"received_in_window_per_s\": %.1f,\n", o->rate, (unsigned long long)s->joined,
			(unsigned long long)s->join_failed, r->join_s, (unsigned long long)s->sent_meas,
			(unsigned long long)s->expected_meas, (unsigned long long)s->recv_meas,
			(unsigned long long)muc_lost(s), (unsigned long long)s->complete_meas,
			(unsigned long long)s->misrouted, (double)s->recv_meas / w,
			(unsigned long long)s->sent, (unsigned long long)s->expected,
			(unsigned long long)s->recv, (unsigned long long)s->recv_window,
			(double)s->recv_window / w);
		fprintf(f, "    \"cpu_s\": %.3f, \"cpu_wall_s\": %.3f, \"cpu_s_per_1000_delivered\": %.5f, "
			"\"rss_start_kib\": %llu, \"rss_before_join_kib\": %llu, \"rss_after_join_kib\": %llu, ",
			r->meas_cpu ? r->meas_cpu_s : -1.0, r->meas_cpu ? r->meas_wall_s : 0.0,
			muc_cpu_per_k(r), (unsigned long long)r->rss_before,
			(unsigned long long)r->rss_join0, (unsigned long long)r->rss_join1);
		if (r->join_mem && r->total.joined)
			fprintf(f, "\"kib_per_occupant\": %.3f, \"kib_per_occupant_with_session\": %.3f,\n",
				muc_kib_per_occupant(r), muc_kib_per_session(r));
		else
			fprintf(f, "\"kib_per_occupant\": null, \"kib_per_occupant_with_session\": null,\n");
		fprintf(f, "    \"latency_ms\": {\n");
		json_hist_in(f, "      ", "join", &s->h_join, true);
		json_hist_in(f, "      ", "delivery", &s->h_msg_meas, true);
		json_hist_in(f, "      ", "last", &s->h_last, false);
		fprintf(f, "    }},\n");
	}
	if ((o->scenario == SC_IDLE || o->scenario == SC_FILE) && r->idle_mem && r->sessions)
		fprintf(f, "  \"idle\": {\"rss_before_kib\": %llu, \"rss_after_kib\": %llu, "
			"\"sessions\": %u, \"kib_per_session\": %.2f},\n",
			(unsigned long long)r->rss_before, (unsigned long long)r->rss_after, r->sessions,
			((double)r->rss_after - (double)r->rss_before) / r->sessions);
	if (o->scenario == SC_FILE)
		bs_json(f, s);
	if (r->rs)
		result_json_fields(f, r->rs);
	fprintf(f, "  \"series\": [\n");
	for (size_t i = 0; i < r->nseries; i++) {
		const struct bench_point *p = &r->series[i];
		fprintf(f, "    {\"t\": %.0f, \"connected\": %u, \"logged_in\": %u, \"logins_s\": %llu, "
			"\"failed_s\": %llu, \"sent_s\": %llu, \"recv_s\": %llu, \"p50\": %.3f, "
			"\"p99\": %.3f, \"target_cpu\": %.1f, \"target_rss_kib\": %llu, "
			"\"bench_cpu\": %.1f}%s\n",
			p->t, p->connected, p->online, (unsigned long long)p->logins,
			(unsigned long long)p->failed, (unsigned long long)p->sent,
			(unsigned long long)p->recv, ms(p->p50_ns), ms(p->p99_ns), p->target_cpu,
			(unsigned long long)p->target_rss_kib, p->bench_cpu,
			i + 1 < r->nseries ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	return fclose(f) == 0 ? 0 : -errno;
}

/* ---- gnuplot -------------------------------------------------------------------- */

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n && n + strlen(prog) + 2 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += n + (path[n] == ':');
	}
	return false;
}

int report_plot(const char *prefix, const struct bench_result *r)
{
	char dat[4096], gp[4096];
	const char *lat = B.o.scenario == SC_CHAT ? "message" : "login";
	char *argv[3];
	FILE *f;
	pid_t pid;
	int st;

	if (strpbrk(prefix, "'\"\n\\")) {
		fprintf(stderr, "xedge-bench: warning: --plot prefix must not contain quotes: no plots\n");
		return -1;
	}
	if ((size_t)snprintf(dat, sizeof(dat), "%s.dat", prefix) >= sizeof(dat) ||
	    (size_t)snprintf(gp, sizeof(gp), "%s.gp", prefix) >= sizeof(gp))
		return -1;
	f = fopen(dat, "w");
	if (!f) {
		fprintf(stderr, "xedge-bench: warning: cannot write %s: %s: no plots\n", dat, strerror(errno));
		return -1;
	}
	fprintf(f, "# t logins_s sent_s recv_s p50_ms p99_ms connected online target_cpu bench_cpu\n");
	for (size_t i = 0; i < r->nseries; i++) {
		const struct bench_point *p = &r->series[i];
		fprintf(f, "%.0f %llu %llu %llu %.3f %.3f %u %u %.1f %.1f\n", p->t,
			(unsigned long long)p->logins, (unsigned long long)p->sent,
			(unsigned long long)p->recv, ms(p->p50_ns), ms(p->p99_ns), p->connected, p->online,
			p->target_cpu, p->bench_cpu);
	}
	fclose(f);
	f = fopen(gp, "w");
	if (!f) {
		fprintf(stderr, "xedge-bench: warning: cannot write %s: %s: no plots\n", gp, strerror(errno));
		return -1;
	}
	fprintf(f,
		"# xedge-bench charts: gnuplot %s.gp\n"
		"set terminal pngcairo size 1100,550 noenhanced\n"
		"set grid\nset key top left\nset xlabel 'seconds'\n"
		"set output '%s-throughput.png'\n"
		"set title 'xedge-bench %s, %u clients: throughput'\n"
		"set ylabel 'messages per second'\nset y2label 'logins per second'\n"
		"set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
		"plot '%s' using 1:3 with lines lw 2 title 'messages sent/s', \\\n"
		"     '' using 1:4 with lines lw 2 title 'messages received/s', \\\n"
		"     '' using 1:2 axes x1y2 with lines lw 2 title 'logins/s'\n"
		"set output '%s-latency.png'\n"
		"set title 'xedge-bench %s, %u clients: %s latency per second'\n"
		"unset y2label\nunset y2tics\nset ylabel 'milliseconds'\nset logscale y\nset yrange [*:*]\n"
		"plot '%s' using 1:($5 > 0 ? $5 : 1/0) with linespoints title 'p50', \\\n"
		"     '' using 1:($6 > 0 ? $6 : 1/0) with linespoints title 'p99'\n",
		prefix, prefix, scenario_str(B.o.scenario), B.o.clients, dat, prefix,
		scenario_str(B.o.scenario), B.o.clients, lat, dat);
	fclose(f);
	if (!in_path("gnuplot")) {
		fprintf(stderr, "xedge-bench: warning: gnuplot is not installed (Debian: gnuplot-nox); "
			"wrote %s and %s, no PNGs\n", dat, gp);
		return -1;
	}
	argv[0] = "gnuplot";
	argv[1] = gp;
	argv[2] = NULL;
	if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "xedge-bench: warning: gnuplot %s failed: no PNGs\n", gp);
		return -1;
	}
	fprintf(stderr, "xedge-bench: wrote %s-throughput.png and %s-latency.png\n", prefix, prefix);
	return 0;
}
