/*
 * scenario_describe — the human summary of a loaded scenario (scn_describe)
 * and `xedge-bench --check-scenario` (scn_check_file); see scenario.h.
 */
#include "bench/scenario.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NS_MS 1000000ull
#define NS_S 1000000000ull
#define NS_M (60 * NS_S)
#define NS_H (60 * NS_M)

/* ---- the summary ---------------------------------------------------------------- */

static const char *fmt_dur(char *buf, size_t len, uint64_t ns)
{
	if (ns == 0)
		snprintf(buf, len, "0s");
	else if (ns % NS_H == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ns / NS_H));
	else if (ns % NS_M == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ns / NS_M));
	else if (ns % NS_S == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ns / NS_S));
	else if (ns % NS_MS == 0 && ns < NS_S)
		snprintf(buf, len, "%llums", (unsigned long long)(ns / NS_MS));
	else
		snprintf(buf, len, "%.6gs", (double)ns / 1e9);
	return buf;
}

static const char *fmt_rate(char *buf, size_t len, double r)
{
	snprintf(buf, len, "%.6g/s", r);
	return buf;
}

static const char *fmt_size(char *buf, size_t len, uint32_t b)
{
	if (b && b % 1024 == 0)
		snprintf(buf, len, "%uk", b / 1024);
	else
		snprintf(buf, len, "%u", b);
	return buf;
}

static const char *or_default(const struct bench_scenario *s, uint32_t off, const char *def)
{
	return off ? scn_str(s, off) : def;
}

static void describe_send(FILE *f, const struct bench_scenario *s, const struct scn_step *st)
{
	const struct scn_send *m = &st->u.send;
	char a[32], b[32];

	if (st->op == SCN_CHAT) {
		static const char *const to[] = { "random", "peer", "self", "session" };
		if (m->to == SCN_TO_SESSION)
			fprintf(f, " to a user of session %s", scn_str(s, s->sessions[m->to_session].name));
		else
			fprintf(f, " to %s", to[m->to]);
		if (m->to == SCN_TO_RANDOM || m->to == SCN_TO_SESSION)
			fprintf(f, " (among %u peers)", m->peers);
	}
	fprintf(f, ", body %s bytes", fmt_size(a, sizeof(a), m->body));
	if (m->rate > 0)
		fprintf(f, ", %s", fmt_rate(a, sizeof(a), m->rate));
	else if (m->count != 1)
		fprintf(f, ", closed loop of %u in flight", m->window);
	if (m->count)
		fprintf(f, ", %u message%s", m->count, m->count == 1 ? "" : "s");
	if (m->duration_ns)
		fprintf(f, "%s for %s", m->count ? " at most" : "", fmt_dur(b, sizeof(b), m->duration_ns));
	if (m->wait_reply)
		fprintf(f, ", each waits for its reply");
}

void scn_describe_step(FILE *f, const struct bench_scenario *s, const struct scn_step *st,
		       uint32_t idx)
{
	static const char *const show[] = { "", "away", "chat", "dnd", "xa" };
	static const char *const think[] = { "fixed", "uniform", "exp" };
	char a[32], b[32];

	fprintf(f, "%3u  %*s%s", idx + 1, 2 * st->depth, "", scn_op_str(st->op));
	switch (st->op) {
	case SCN_CONNECT:
		fprintf(f, " %s", st->u.connect.transport ? scn_transport_str(st->u.connect.transport) :
			"(the target's transport)");
		break;
	case SCN_AUTH:
		fprintf(f, " %s", scn_mech_str(st->u.auth.mech));
		break;
	case SCN_BIND:
		fprintf(f, " %s", st->u.bind.resource ? scn_str(s, st->u.bind.resource) :
			"(server-generated resource)");
		break;
	case SCN_PRESENCE:
		if (st->u.presence.show)
			fprintf(f, " show %s", show[st->u.presence.show]);
		if (st->u.presence.status)
			fprintf(f, " status \"%s\"", scn_str(s, st->u.presence.status));
		if (st->u.presence.priority)
			fprintf(f, " priority %d", st->u.presence.priority);
		break;
	case SCN_SM:
		fprintf(f, " (XEP-0198%s)", st->u.sm.resume ? ", resumable" : ", no resumption");
		break;
	case SCN_CHAT:
	case SCN_GROUPCHAT:
		describe_send(f, s, st);
		break;
	case SCN_REPLY:
		fprintf(f, " to every chat message");
		if (st->u.reply.count)
			fprintf(f, ", %u replies", st->u.reply.count);
		if (st->u.reply.duration_ns)
			fprintf(f, "%s for %s", st->u.reply.count ? " at most" : "",
				fmt_dur(a, sizeof(a), st->u.reply.duration_ns));
		if (!st->u.reply.count && !st->u.reply.duration_ns)
			fprintf(f, " until the run ends");
		break;
	case SCN_WAIT:
		fprintf(f, " for a %s", st->u.wait.what == SCN_WAIT_MESSAGE ? "message" : "presence");
		/* fall through */
	case SCN_PING:
	case SCN_RESUME: {
		uint64_t t = st->op == SCN_WAIT ? st->u.wait.timeout_ns :
			     st->op == SCN_PING ? st->u.ping.timeout_ns : st->u.resume.timeout_ns;
		fprintf(f, ", timeout %s", fmt_dur(a, sizeof(a), t ? t : s->timeout_ns));
		if (st->op == SCN_RESUME && st->u.resume.offline_ns)
			fprintf(f, ", offline %s first", fmt_dur(a, sizeof(a), st->u.resume.offline_ns));
		break;
	}
	case SCN_JOIN:
		fprintf(f, " %s@%s as %s, %u room%s", scn_str(s, st->u.join.room),
			or_default(s, s->target.muc_domain, "conference.<domain>"),
			or_default(s, st->u.join.nick, "{user}"), st->u.join.rooms,
			st->u.join.rooms == 1 ? "" : "s");
		if (st->u.join.per_room)
			fprintf(f, " of %u", st->u.join.per_room);
		fprintf(f, ", history %u", st->u.join.history);
		break;
	case SCN_PUBLISH:
		fprintf(f, " %u item%s of %s bytes to %s node %s", st->u.publish.items,
			st->u.publish.items == 1 ? "" : "s", fmt_size(a, sizeof(a), st->u.publish.body),
			st->u.publish.to == SCN_PUB_PEP ? "PEP" : "the service's",
			or_default(s, st->u.publish.node, "urn:xmpp:bench:0"));
		break;
	case SCN_IDLE:
		if (st->u.idle.duration_ns)
			fprintf(f, " %s", fmt_dur(a, sizeof(a), st->u.idle.duration_ns));
		else
			fprintf(f, " until the run ends");
		break;
	case SCN_THINK:
		fprintf(f, " %s %s", think[st->u.think.dist], fmt_dur(a, sizeof(a), st->u.think.a_ns));
		if (st->u.think.dist == SCN_THINK_UNIFORM)
			fprintf(f, "..%s", fmt_dur(b, sizeof(b), st->u.think.b_ns));
		if (st->u.think.dist == SCN_THINK_EXP)
			fprintf(f, " mean");
		break;
	case SCN_BARRIER:
		if (st->u.barrier.users)
			fprintf(f, " until %u users are here", st->u.barrier.users);
		else
			fprintf(f, " until every user of the phases is here");
		fprintf(f, ", timeout %s", fmt_dur(a, sizeof(a), st->u.barrier.timeout_ns));
		break;
	case SCN_LOOP:
		if (st->u.loop.count)
			fprintf(f, " %u time%s", st->u.loop.count, st->u.loop.count == 1 ? "" : "s");
		if (st->u.loop.duration_ns)
			fprintf(f, "%s for %s", st->u.loop.count ? " at most" : "",
				fmt_dur(a, sizeof(a), st->u.loop.duration_ns));
		fprintf(f, ": steps %u-%u", idx + 2, st->u.loop.end);
		break;
	}
	fprintf(f, "  (line %u)", st->line);
}

void scn_describe_phase(FILE *f, const struct scn_phase *p)
{
	char a[32], b[32];

	if (isinf(p->rate0))
		fprintf(f, "burst of %u users", p->users);
	else if (p->rate0 == p->rate1)
		fprintf(f, "%s for %s", fmt_rate(a, sizeof(a), p->rate0),
			fmt_dur(b, sizeof(b), p->duration_ns));
	else
		fprintf(f, "%s -> %.6g/s over %s", fmt_rate(a, sizeof(a), p->rate0), p->rate1,
			fmt_dur(b, sizeof(b), p->duration_ns));
	if (!isinf(p->rate0) && p->users)
		fprintf(f, ", at most %u", p->users);
	fprintf(f, ": %llu users", (unsigned long long)scn_phase_users(p));
}

void scn_describe(FILE *f, const struct bench_scenario *s)
{
	const struct scn_target *t = &s->target;
	uint8_t tls = t->tls ? t->tls : SCN_TR_STARTTLS;
	static const unsigned def_port[] = { 5222, 5222, 5222, 5223, 5280, 5443 };
	uint64_t total = 0, span = 0;
	char a[32], b[32];

	fprintf(f, "scenario %s (%s)\n", or_default(s, s->name, "(no name)"), s->path);
	if (s->description)
		fprintf(f, "  %s\n", scn_str(s, s->description));
	fprintf(f, "target: %s port %u, domain %s, %s", or_default(s, t->host, "127.0.0.1"),
		t->port ? t->port : def_port[tls], or_default(s, t->domain, "localhost"), scn_transport_str(tls));
	if (t->sni)
		fprintf(f, ", SNI %s", scn_str(s, t->sni));
	if (tls == SCN_TR_WS || tls == SCN_TR_WSS)
		fprintf(f, ", path %s", or_default(s, t->ws_path, "/xmpp-websocket"));
	fprintf(f, "; rooms on %s, pubsub on %s\n", or_default(s, t->muc_domain, "conference.<domain>"),
		or_default(s, t->pubsub, "pubsub.<domain>"));
	fprintf(f, "users: %s<%u + i>, ", or_default(s, s->users.prefix, "bench"), s->users.offset);
	if (s->users.count)
		fprintf(f, "a pool of %u accounts\n", s->users.count);
	else
		fprintf(f, "one account per arrival\n");

	for (uint32_t i = 0; i < s->nphases; i++) {
		total += scn_phase_users(&s->phases[i]);
		span += s->phases[i].duration_ns;
	}
	fprintf(f, "phases: %u, %llu users arrive %s%s\n", s->nphases, (unsigned long long)total,
		span ? "over " : "at once", span ? fmt_dur(a, sizeof(a), span) : "");
	for (uint32_t i = 0; i < s->nphases; i++) {
		fprintf(f, "  %2u  ", i + 1);
		scn_describe_phase(f, &s->phases[i]);
		fprintf(f, "  (line %u)\n", s->phases[i].line);
	}
	fprintf(f, "limits: ");
	if (s->max_users)
		fprintf(f, "%u users at once", s->max_users);
	else
		fprintf(f, "no cap on users at once");
	if (s->concurrency)
		fprintf(f, ", %u logins in progress", s->concurrency);
	fprintf(f, ", step timeout %s", fmt_dur(a, sizeof(a), s->timeout_ns));
	if (s->keepalive_ns)
		fprintf(f, ", keepalive %s", fmt_dur(a, sizeof(a), s->keepalive_ns));
	if (s->duration_ns)
		fprintf(f, ", run at most %s", fmt_dur(a, sizeof(a), s->duration_ns));
	fprintf(f, "\nmeasured after a warm-up of %s; drain %s\n", fmt_dur(a, sizeof(a), s->warmup_ns),
		fmt_dur(b, sizeof(b), s->drain_ns));

	fprintf(f, "sessions: %u\n", s->nsessions);
	for (uint32_t i = 0; i < s->nsessions; i++) {
		const struct scn_session *ses = &s->sessions[i];
		fprintf(f, "  %s: %.1f%% of the users (weight %.6g), %u steps  (line %u)\n",
			scn_str(s, ses->name), ses->share * 100, ses->weight, ses->nsteps, ses->line);
		for (uint32_t j = 0; j < ses->nsteps; j++) {
			fputs("    ", f);
			scn_describe_step(f, s, &ses->steps[j], j);
			fputc('\n', f);
		}
	}
	fprintf(f, "thresholds: %u\n", s->nthresholds);
	for (uint32_t i = 0; i < s->nthresholds; i++)
		fprintf(f, "  %s  (line %u)\n", s->thresholds[i].text, s->thresholds[i].line);
}

int scn_check_file(const char *path)
{
	struct bench_scenario s;
	char err[512];

	if (scn_load(path, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	scn_describe(stdout, &s);
	scn_free(&s);
	return 0;
}
