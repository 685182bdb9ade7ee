/*
 * steps_report — a scenario file's run in the summary and the JSON: the
 * users each phase planned and started, the sessions, chat, group chat,
 * resume and drain counts, the file's description (phases, sessions and
 * their steps, thresholds) for the HTML report and merge.  It reads the run
 * through bs_view() (steps.c owns the state) after the threads are done.
 */
#include "bench/bench.h"

#include <jansson.h>

#include "bench/plan.h"
#include "bench/result.h"
#include "bench/scenario.h"
#include "bench/steps_int.h"

static double msf(uint64_t ns)
{
	return (double)ns / 1e6;
}

void bs_summary(FILE *f, const struct bench_stats *s)
{
	struct bs_view V;

	bs_view(&V);
	fprintf(f, "\nscenario %s (%s): %llu users arrived of %llu planned, %llu refused at "
		"max_users, %llu finished their program; %llu arrivals waited for a login slot\n",
		bs_name(), V.S->path, (unsigned long long)s->arrived, (unsigned long long)V.my_total,
		(unsigned long long)s->rejected, (unsigned long long)s->users_done,
		(unsigned long long)s->waited);
	fprintf(f, "  %-8s %10s %10s\n", "phase", "planned", "arrived");
	for (uint32_t i = 0; i < V.plan->nphases; i++)
		fprintf(f, "  %-8u %10llu %10llu   (line %u)\n", i + 1,
			(unsigned long long)bp_slice_users(V.plan->ph[i].first, V.plan->ph[i].users, V.slice_i,
							   V.slice_n),
			(unsigned long long)s->arrived_ph[i],
			V.S->phases[i].line);
	fprintf(f, "  %-16s %10s %10s %10s\n", "session", "planned", "started", "finished");
	for (uint32_t i = 0; i < V.S->nsessions; i++)
		fprintf(f, "  %-16s %10llu %10llu %10llu\n", scn_str(V.S, V.S->sessions[i].name),
			(unsigned long long)V.sess_users[i], (unsigned long long)s->sess_started[i],
			(unsigned long long)s->sess_done[i]);
	fprintf(f, "  arrival lateness ms: p50 %.3f  p99 %.3f  max %.3f\n",
		msf(hist_percentile(&s->h_wait, 50)), msf(hist_percentile(&s->h_wait, 99)),
		msf(s->h_wait.max_ns));
	fprintf(f, "  chat: %llu sent (%llu one-way after the warm-up, %llu of them received), "
		"%llu questions, %llu answered, %llu replies sent, %llu received in all\n",
		(unsigned long long)s->sent, (unsigned long long)s->sent_meas,
		(unsigned long long)s->recv_meas, (unsigned long long)s->asked,
		(unsigned long long)s->answered, (unsigned long long)s->replies,
		(unsigned long long)s->recv);
	fprintf(f, "  group chat: %llu sent, %llu deliveries; %llu joins; pings %llu; "
		"items published %llu\n", (unsigned long long)s->gc_sent,
		(unsigned long long)s->gc_recv, (unsigned long long)s->joined,
		(unsigned long long)s->pings, (unsigned long long)s->published);
	if (s->resumed || s->h_resume.count)
		fprintf(f, "  resume: %llu streams resumed, %llu of our stanzas sent again, %llu chat "
			"messages received after a resume that were sent before it\n",
			(unsigned long long)s->resumed, (unsigned long long)s->resent,
			(unsigned long long)s->resume_recv);
}

/* What scn_describe_step / scn_describe_phase print, as a JSON string. */
static void json_described(FILE *f, const struct scn_step *st, uint32_t idx,
			   const struct scn_phase *p)
{
	struct bs_view V;
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	bs_view(&V);
	if (m) {
		if (st)
			scn_describe_step(m, V.S, st, idx);
		else
			scn_describe_phase(m, p);
		fclose(m);
	}
	result_json_str(f, text ? text : "");
	free(text);
}

void bs_json(FILE *f, const struct bench_stats *s)
{
	struct bs_view V;

	bs_view(&V);
	fprintf(f, "  \"scenario_file\": {\"path\": ");
	result_json_str(f, V.S->path);
	fprintf(f, ", \"name\": ");
	result_json_str(f, bs_name());
	fprintf(f, ", \"description\": ");
	result_json_str(f, scn_str(V.S, V.S->description));
	fprintf(f, ", \"planned\": %llu, \"arrived\": %llu, \"rejected\": %llu, \"finished\": %llu, "
		"\"waited\": %llu, \"slice\": {\"index\": %u, \"count\": %u},\n    \"phases\": [",
		(unsigned long long)V.my_total,
		(unsigned long long)s->arrived, (unsigned long long)s->rejected,
		(unsigned long long)s->users_done, (unsigned long long)s->waited, V.slice_i, V.slice_n);
	for (uint32_t i = 0; i < V.plan->nphases; i++) {
		fprintf(f, "%s{\"line\": %u, \"text\": ", i ? ", " : "", V.S->phases[i].line);
		json_described(f, NULL, 0, &V.S->phases[i]);
		fprintf(f, ", \"planned\": %llu, \"arrived\": %llu}",
			(unsigned long long)bp_slice_users(V.plan->ph[i].first, V.plan->ph[i].users, V.slice_i,
							   V.slice_n),
			(unsigned long long)s->arrived_ph[i]);
	}
	fprintf(f, "],\n    \"sessions\": [");
	for (uint32_t i = 0; i < V.S->nsessions; i++) {
		const struct scn_session *ses = &V.S->sessions[i];
		fprintf(f, "%s{\"name\": ", i ? ",\n      " : "");
		result_json_str(f, scn_str(V.S, ses->name));
		fprintf(f, ", \"line\": %u, \"weight\": %.6g, \"share\": %.6g, \"planned\": %llu, "
			"\"started\": %llu, \"finished\": %llu, \"steps\": [", ses->line, ses->weight,
			ses->share, (unsigned long long)V.sess_users[i], (unsigned long long)s->sess_started[i],
			(unsigned long long)s->sess_done[i]);
		for (uint32_t k = 0; k < ses->nsteps; k++) {
			fprintf(f, "%s", k ? ", " : "");
			json_described(f, &ses->steps[k], k, NULL);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "],\n    \"thresholds\": [");
	for (uint32_t i = 0; i < V.S->nthresholds; i++) {
		fprintf(f, "%s{\"line\": %u, \"text\": ", i ? ", " : "", V.S->thresholds[i].line);
		result_json_str(f, V.S->thresholds[i].text);
		fputc('}', f);
	}
	fprintf(f, "],\n    \"chat\": {\"sent\": %llu, \"sent_measured\": %llu, \"received\": %llu, "
		"\"received_measured\": %llu, \"asked\": %llu, \"answered\": %llu, \"replies\": %llu, "
		"\"window_timeouts\": %llu},\n", (unsigned long long)s->sent,
		(unsigned long long)s->sent_meas, (unsigned long long)s->recv,
		(unsigned long long)s->recv_meas, (unsigned long long)s->asked,
		(unsigned long long)s->answered, (unsigned long long)s->replies,
		(unsigned long long)s->window_timeouts);
	fprintf(f, "    \"resume\": {\"resumed\": %llu, \"resent\": %llu, \"received_after\": %llu},\n",
		(unsigned long long)s->resumed, (unsigned long long)s->resent,
		(unsigned long long)s->resume_recv);
	fprintf(f, "    \"groupchat\": {\"sent\": %llu, \"delivered\": %llu, \"joined\": %llu, "
		"\"join_failed\": %llu},\n    \"pings\": %llu, \"published\": %llu, "
		"\"arrival_lateness_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n"
		"    \"drain\": {\"limit_s\": %.3f, \"waited_s\": %.3f, \"due_at_start\": %llu, "
		"\"due_at_end\": %llu}},\n",
		(unsigned long long)s->gc_sent, (unsigned long long)s->gc_recv,
		(unsigned long long)s->joined, (unsigned long long)s->join_failed,
		(unsigned long long)s->pings, (unsigned long long)s->published,
		msf(hist_percentile(&s->h_wait, 50)), msf(hist_percentile(&s->h_wait, 99)),
		msf(s->h_wait.max_ns), B.o.drain, (double)(V.drain_t1 - V.drain_t0) / 1e9,
		(unsigned long long)V.drain_due0, (unsigned long long)V.drain_due1);
}

json_t *bs_json_object(const struct bench_stats *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	json_t *root, *sf = NULL;

	if (!m)
		return NULL;
	fputc('{', m);
	bs_json(m, s);          /* '  "scenario_file": {...},\n' */
	fclose(m);
	if (len >= 2 && text[len - 2] == ',') {
		text[len - 2] = '}';
		root = json_loads(text, 0, NULL);
		if (root) {
			sf = json_incref(json_object_get(root, "scenario_file"));
			json_decref(root);
		}
	}
	free(text);
	return sf;
}
