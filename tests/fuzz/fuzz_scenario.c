/*
 * fuzz_scenario — libFuzzer target for bench/scenario.c.
 *
 * scn_load_mem() on arbitrary bytes must not misbehave (the sanitizers
 * catch memory errors, leaks and undefined behaviour).  When it fails, the
 * error must name the input and a line ("fuzz.yaml:N: ") and leave nothing
 * allocated; when it accepts, the program must be well formed: every loop's
 * body lies inside its session and nests at most SCN_MAX_DEPTH deep, every
 * string offset lies inside the pool, shares sum to 1, and the summary can
 * be written.  Otherwise __builtin_trap().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/scenario.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void str_ok(const struct bench_scenario *s, uint32_t off)
{
	CHECK(off < s->strings_len);
	CHECK(off == 0 || s->strings[off - 1] == '\0');
	CHECK(memchr(s->strings + off, '\0', s->strings_len - off) != NULL);
}

static void program_ok(const struct bench_scenario *s, const struct scn_session *ses)
{
	CHECK(ses->nsteps >= 1 && ses->nsteps <= SCN_MAX_STEPS);
	str_ok(s, ses->name);
	for (uint32_t i = 0; i < ses->nsteps; i++) {
		const struct scn_step *st = &ses->steps[i];
		CHECK(st->op < SCN_OP_COUNT);
		CHECK(st->depth < SCN_MAX_DEPTH);
		CHECK(st->line >= 1);
		if (st->op == SCN_LOOP) {
			CHECK(st->u.loop.end > i + 1 && st->u.loop.end <= ses->nsteps);
			CHECK(st->u.loop.count || st->u.loop.duration_ns);
			for (uint32_t j = i + 1; j < st->u.loop.end; j++)
				CHECK(ses->steps[j].depth > st->depth);
		}
		if (st->op == SCN_CHAT || st->op == SCN_GROUPCHAT) {
			CHECK(st->u.send.body <= SCN_MAX_BODY);
			CHECK(st->u.send.window >= 1);
			CHECK(st->u.send.count || st->u.send.duration_ns);
			if (st->u.send.to == SCN_TO_SESSION)
				CHECK(st->u.send.to_session < s->nsessions);
		}
		if (st->op == SCN_JOIN) {
			CHECK(st->u.join.room != 0);
			str_ok(s, st->u.join.room);
			str_ok(s, st->u.join.nick);
		}
		if (st->op == SCN_THINK && st->u.think.dist == SCN_THINK_UNIFORM)
			CHECK(st->u.think.a_ns <= st->u.think.b_ns);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bench_scenario s;
	char err[512];
	double sum = 0;
	FILE *null;

	if (scn_load_mem(data, size, "fuzz.yaml", &s, err, sizeof(err)) < 0) {
		unsigned line;
		CHECK(sscanf(err, "fuzz.yaml:%u: ", &line) == 1 || !strncmp(err, "fuzz.yaml: ", 11));
		CHECK(s.strings == NULL && s.sessions == NULL && s.path == NULL);
		return 0;
	}
	CHECK(s.nsessions >= 1 && s.nsessions <= SCN_MAX_SESSIONS);
	CHECK(s.nphases >= 1 && s.nphases <= SCN_MAX_PHASES);
	CHECK(s.nthresholds <= SCN_MAX_THRESHOLDS);
	CHECK(s.strings_len >= 1 && s.strings[0] == '\0');
	for (uint32_t i = 0; i < s.nsessions; i++) {
		CHECK(s.sessions[i].weight > 0);
		sum += s.sessions[i].share;
		program_ok(&s, &s.sessions[i]);
	}
	CHECK(fabs(sum - 1) < 1e-9);
	for (uint32_t i = 0; i < s.nthresholds; i++) {
		CHECK(s.thresholds[i].text > s.strings && s.thresholds[i].text < s.strings + s.strings_len);
		CHECK(s.thresholds[i].text[0] != '\0');
	}
	for (uint32_t i = 0; i < s.nphases; i++)
		(void)scn_phase_users(&s.phases[i]);
	null = fopen("/dev/null", "w");
	if (null) {
		scn_describe(null, &s);
		fclose(null);
	}
	scn_free(&s);
	return 0;
}
