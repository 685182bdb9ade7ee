/*
 * test_scenario — bench/scenario.c: every step with its defaults and with
 * each parameter, durations/rates/sizes, phases and the users they start,
 * weights, loops as flat ranges, the static checks, and that every error
 * names the right line; every shipped file in bench/scenarios/ loads.
 * Includes the .c under test (the bench is not in libxedge).
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/scenario.c"
#include "bench/scenario_vars.c"
#include "bench/scenario_describe.c"

static struct bench_scenario S;
static char err[512];

#define HEAD "phases: [{users: 10}]\nsessions:\n  - name: a\n    steps:\n"
#define LOGIN "      - connect\n      - auth\n      - bind\n"

static int tload(const char *yaml)
{
	scn_free(&S);
	err[0] = 0;
	if (scn_load_mem(yaml, strlen(yaml), "t.yaml", &S, err, sizeof(err)) == 0)
		return 0;
	print_message("%s\n", err);     /* shown when a test expected success */
	return -1;
}

/* The load fails with "t.yaml:LINE: ..." containing what. */
static void fails_at(const char *yaml, unsigned line, const char *what)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "t.yaml:%u: ", line);
	scn_free(&S);
	if (scn_load_mem(yaml, strlen(yaml), "t.yaml", &S, err, sizeof(err)) == 0)
		fail_msg("loaded, expected line %u: %s", line, what);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, what))
		fail_msg("expected \"%s...%s\", got \"%s\"", prefix, what, err);
	assert_int_equal(S.nsessions, 0);
	assert_null(S.strings);
}

static const struct scn_step *step(unsigned i)
{
	assert_true(S.nsessions > 0);
	assert_true(i < S.sessions[0].nsteps);
	return &S.sessions[0].steps[i];
}

static void teardown_all(void)
{
	scn_free(&S);
}

static void test_defaults(void **state)
{
	assert_int_equal(tload(HEAD LOGIN
		"      - roster\n      - presence\n      - sm\n      - chat\n      - reply\n"
		"      - wait\n      - ping\n      - join: room{n}\n      - groupchat\n      - leave\n"
		"      - publish\n      - idle\n      - think\n      - resume\n      - barrier\n"
		"      - logout\n      - connect\n      - drop\n"), 0);
	assert_int_equal(S.sessions[0].nsteps, 21);
	assert_int_equal(step(0)->op, SCN_CONNECT);
	assert_int_equal(step(0)->u.connect.transport, SCN_TR_DEFAULT);
	assert_int_equal(step(0)->line, 5);
	assert_int_equal(step(1)->u.auth.mech, SCN_MECH_SCRAM_SHA256);
	assert_int_equal(step(2)->u.bind.resource, 0);
	assert_int_equal(step(3)->op, SCN_ROSTER);
	assert_int_equal(step(4)->u.presence.show, SCN_SHOW_NONE);
	assert_int_equal(step(4)->u.presence.status, 0);
	assert_true(step(5)->u.sm.resume);
	/* chat: one message, 64 bytes, to a random peer among 8, window 4 */
	assert_int_equal(step(6)->u.send.count, 1);
	assert_int_equal(step(6)->u.send.duration_ns, 0);
	assert_int_equal(step(6)->u.send.body, 64);
	assert_int_equal(step(6)->u.send.to, SCN_TO_RANDOM);
	assert_int_equal(step(6)->u.send.peers, 8);
	assert_int_equal(step(6)->u.send.window, 4);
	assert_true(step(6)->u.send.rate == 0);
	assert_false(step(6)->u.send.wait_reply);
	assert_int_equal(step(7)->u.reply.count, 0);          /* until the run ends */
	assert_int_equal(step(7)->u.reply.duration_ns, 0);
	assert_int_equal(step(8)->u.wait.what, SCN_WAIT_MESSAGE);
	assert_int_equal(step(8)->u.wait.timeout_ns, 0);      /* the scenario's */
	assert_int_equal(step(9)->op, SCN_PING);
	assert_string_equal(scn_str(&S, step(10)->u.join.room), "room{n}");
	assert_int_equal(step(10)->u.join.nick, 0);
	assert_int_equal(step(10)->u.join.rooms, 1);
	assert_int_equal(step(10)->u.join.per_room, 0);
	assert_int_equal(step(10)->u.join.history, 0);
	assert_int_equal(step(11)->u.send.count, 1);
	assert_int_equal(step(11)->u.send.window, 1);
	assert_int_equal(step(12)->op, SCN_LEAVE);
	assert_int_equal(step(13)->u.publish.items, 1);
	assert_int_equal(step(13)->u.publish.body, 64);
	assert_int_equal(step(13)->u.publish.to, SCN_PUB_PEP);
	assert_int_equal(step(14)->u.idle.duration_ns, 0);
	assert_int_equal(step(15)->u.think.dist, SCN_THINK_FIXED);
	assert_int_equal(step(15)->u.think.a_ns, NS_S);
	assert_int_equal(step(16)->op, SCN_RESUME);
	assert_int_equal(step(17)->u.barrier.users, 0);
	assert_int_equal(step(17)->u.barrier.timeout_ns, 5 * NS_M);
	assert_int_equal(step(18)->op, SCN_LOGOUT);
	assert_int_equal(step(20)->op, SCN_DROP);
	/* the top level's defaults */
	assert_int_equal(S.concurrency, 200);
	assert_int_equal(S.max_users, 0);
	assert_int_equal(S.timeout_ns, 10 * NS_S);
	assert_int_equal(S.keepalive_ns, 60 * NS_S);
	assert_int_equal(S.drain_ns, 2 * NS_S);
	assert_int_equal(S.warmup_ns, 0);
	assert_int_equal(S.target.tls, SCN_TR_DEFAULT);
	assert_int_equal(S.target.port, 0);
	assert_string_equal(scn_str(&S, S.target.domain), "");
	assert_int_equal(S.nthresholds, 0);
	assert_true(S.sessions[0].share == 1.0);
}

static void test_options(void **state)
{
	assert_int_equal(tload(HEAD
		"      - connect: {transport: wss}\n"
		"      - auth: {mech: SCRAM-SHA-1}\n"
		"      - bind: {resource: \"r{i}\"}\n"
		"      - presence: {show: dnd, status: \"busy now\", priority: -5}\n"
		"      - sm: {resume: false}\n"
		"      - chat: {to: self, body: 1k, rate: 300/m, count: 7, duration: 2m, window: 2, "
		"peers: 3, wait_reply: yes}\n"
		"      - reply: {count: 5, duration: 1h}\n"
		"      - wait: {for: presence, timeout: 250ms}\n"
		"      - ping: {timeout: 3s}\n"
		"      - join: {room: \"r{n}-{run}\", nick: \"{user}\", rooms: 7, per_room: 20, history: 5}\n"
		"      - groupchat: {body: 10, rate: 2/s, count: 3, window: 9}\n"
		"      - leave\n"
		"      - publish: {node: urn:x, to: service, items: 4, body: 2k}\n"
		"      - idle: 1.5m\n"
		"      - think: {uniform: [500ms, 2s]}\n"
		"      - think: {exp: 1s}\n"
		"      - think: 3s\n"
		"      - barrier: {users: 50, timeout: 1m}\n"
		"      - drop\n"
		"      - connect: tls\n"
		"      - auth: plain\n"
		"      - bind\n"
		"      - chat: {to: peer, duration: 10s}\n"
		"      - logout\n"), 0);
	assert_int_equal(step(0)->u.connect.transport, SCN_TR_WSS);
	assert_int_equal(step(1)->u.auth.mech, SCN_MECH_SCRAM_SHA1);
	assert_string_equal(scn_str(&S, step(2)->u.bind.resource), "r{i}");
	assert_int_equal(step(3)->u.presence.show, SCN_SHOW_DND);
	assert_string_equal(scn_str(&S, step(3)->u.presence.status), "busy now");
	assert_int_equal(step(3)->u.presence.priority, -5);
	assert_false(step(4)->u.sm.resume);
	assert_int_equal(step(5)->u.send.to, SCN_TO_SELF);
	assert_int_equal(step(5)->u.send.body, 1024);
	assert_true(step(5)->u.send.rate == 5.0);
	assert_int_equal(step(5)->u.send.count, 7);
	assert_int_equal(step(5)->u.send.duration_ns, 2 * NS_M);
	assert_int_equal(step(5)->u.send.window, 2);
	assert_int_equal(step(5)->u.send.peers, 3);
	assert_true(step(5)->u.send.wait_reply);
	assert_int_equal(step(6)->u.reply.count, 5);
	assert_int_equal(step(6)->u.reply.duration_ns, NS_H);
	assert_int_equal(step(7)->u.wait.what, SCN_WAIT_PRESENCE);
	assert_int_equal(step(7)->u.wait.timeout_ns, 250 * NS_MS);
	assert_int_equal(step(8)->u.ping.timeout_ns, 3 * NS_S);
	assert_string_equal(scn_str(&S, step(9)->u.join.room), "r{n}-{run}");
	assert_string_equal(scn_str(&S, step(9)->u.join.nick), "{user}");
	assert_int_equal(step(9)->u.join.rooms, 7);
	assert_int_equal(step(9)->u.join.per_room, 20);
	assert_int_equal(step(9)->u.join.history, 5);
	assert_int_equal(step(10)->u.send.body, 10);
	assert_true(step(10)->u.send.rate == 2.0);
	assert_int_equal(step(10)->u.send.count, 3);
	assert_int_equal(step(10)->u.send.window, 9);
	assert_string_equal(scn_str(&S, step(12)->u.publish.node), "urn:x");
	assert_int_equal(step(12)->u.publish.to, SCN_PUB_SERVICE);
	assert_int_equal(step(12)->u.publish.items, 4);
	assert_int_equal(step(12)->u.publish.body, 2048);
	assert_int_equal(step(13)->u.idle.duration_ns, 90 * NS_S);
	assert_int_equal(step(14)->u.think.dist, SCN_THINK_UNIFORM);
	assert_int_equal(step(14)->u.think.a_ns, 500 * NS_MS);
	assert_int_equal(step(14)->u.think.b_ns, 2 * NS_S);
	assert_int_equal(step(15)->u.think.dist, SCN_THINK_EXP);
	assert_int_equal(step(15)->u.think.a_ns, NS_S);
	assert_int_equal(step(16)->u.think.dist, SCN_THINK_FIXED);
	assert_int_equal(step(16)->u.think.a_ns, 3 * NS_S);
	assert_int_equal(step(17)->u.barrier.users, 50);
	assert_int_equal(step(17)->u.barrier.timeout_ns, NS_M);
	assert_int_equal(step(19)->u.connect.transport, SCN_TR_TLS);
	assert_int_equal(step(20)->u.auth.mech, SCN_MECH_PLAIN);
	assert_int_equal(step(22)->u.send.to, SCN_TO_PEER);
	assert_int_equal(step(22)->u.send.count, 0);    /* bounded by its duration only */
	assert_int_equal(step(22)->u.send.duration_ns, 10 * NS_S);
}

static void test_top_level(void **state)
{
	assert_int_equal(tload(
		"name: n\ndescription: d\n"
		"target: {host: \"::1\", port: 5281, domain: example.org, tls: direct, sni: xmpp.example.org,\n"
		"         ws_path: /ws, muc_domain: muc.example.org, pubsub: ps.example.org}\n"
		"users: {prefix: u, password: \"p w\", offset: 100, count: 5000}\n"
		"phases:\n"
		"  - {ramp: [0/s, 10/s], duration: 1m}\n"
		"  - {arrival: 600/m, duration: 30s, users: 100}\n"
		"  - {users: 7}\n"
		"  - {arrival: 0/s, duration: 1h}\n"
		"max_users: 400\nconcurrency: 0\nduration: 2h\ntimeout: 500ms\nkeepalive: 0s\n"
		"warmup: 10s\ndrain: 5s\n"
		"sessions:\n"
		"  - {name: a, weight: 3, steps: [connect]}\n"
		"  - {name: b, weight: 1.0, steps: [connect, auth, bind, {chat: {to: \"session:a\"}}]}\n"
		"thresholds:\n  - \"login.p99 < 1s\"\n  - errors.rate < 1%\n"), 0);
	assert_string_equal(scn_str(&S, S.name), "n");
	assert_string_equal(scn_str(&S, S.description), "d");
	assert_string_equal(scn_str(&S, S.target.host), "::1");
	assert_int_equal(S.target.port, 5281);
	assert_string_equal(scn_str(&S, S.target.domain), "example.org");
	assert_int_equal(S.target.tls, SCN_TR_TLS);
	assert_string_equal(scn_str(&S, S.target.sni), "xmpp.example.org");
	assert_string_equal(scn_str(&S, S.target.ws_path), "/ws");
	assert_string_equal(scn_str(&S, S.target.muc_domain), "muc.example.org");
	assert_string_equal(scn_str(&S, S.target.pubsub), "ps.example.org");
	assert_string_equal(scn_str(&S, S.users.prefix), "u");
	assert_string_equal(scn_str(&S, S.users.password), "p w");
	assert_int_equal(S.users.offset, 100);
	assert_int_equal(S.users.count, 5000);
	assert_int_equal(S.nphases, 4);
	assert_true(S.phases[0].rate0 == 0 && S.phases[0].rate1 == 10);
	assert_int_equal(scn_phase_users(&S.phases[0]), 300);
	assert_true(S.phases[1].rate0 == 10 && S.phases[1].rate1 == 10);
	assert_int_equal(scn_phase_users(&S.phases[1]), 100);     /* 300, capped */
	assert_true(isinf(S.phases[2].rate0));
	assert_int_equal(scn_phase_users(&S.phases[2]), 7);
	assert_int_equal(scn_phase_users(&S.phases[3]), 0);
	assert_int_equal(S.phases[3].line, 10);
	assert_int_equal(S.max_users, 400);
	assert_int_equal(S.concurrency, 0);
	assert_int_equal(S.duration_ns, 2 * NS_H);
	assert_int_equal(S.timeout_ns, 500 * NS_MS);
	assert_int_equal(S.keepalive_ns, 0);
	assert_int_equal(S.warmup_ns, 10 * NS_S);
	assert_int_equal(S.drain_ns, 5 * NS_S);
	assert_int_equal(S.nsessions, 2);
	assert_true(S.sessions[0].share == 0.75 && S.sessions[1].share == 0.25);
	assert_int_equal(S.sessions[1].steps[3].u.send.to, SCN_TO_SESSION);
	assert_int_equal(S.sessions[1].steps[3].u.send.to_session, 0);
	assert_int_equal(S.nthresholds, 2);
	assert_string_equal(S.thresholds[0].text, "login.p99 < 1s");
	assert_int_equal(S.thresholds[0].line, 22);
	assert_string_equal(S.thresholds[1].text, "errors.rate < 1%");
	assert_int_equal(S.thresholds[1].line, 23);
}

static void test_loops_flat(void **state)
{
	assert_int_equal(tload(HEAD LOGIN
		"      - loop:\n"                               /* 3, line 8 */
		"          count: 3\n"
		"          steps:\n"
		"            - chat\n"                          /* 4 */
		"            - loop: {duration: 1m, steps: [think, {chat: {rate: 1/s, count: 2}}]}\n"
		"            - ping\n"                          /* 8 */
		"      - logout\n"), 0);                        /* 9 */
	assert_int_equal(S.sessions[0].nsteps, 10);
	assert_int_equal(step(3)->op, SCN_LOOP);
	assert_int_equal(step(3)->line, 8);
	assert_int_equal(step(3)->depth, 0);
	assert_int_equal(step(3)->u.loop.count, 3);
	assert_int_equal(step(3)->u.loop.duration_ns, 0);
	assert_int_equal(step(3)->u.loop.end, 9);
	assert_int_equal(step(4)->depth, 1);
	assert_int_equal(step(5)->op, SCN_LOOP);
	assert_int_equal(step(5)->u.loop.count, 0);
	assert_int_equal(step(5)->u.loop.duration_ns, NS_M);
	assert_int_equal(step(5)->u.loop.end, 8);
	assert_int_equal(step(6)->op, SCN_THINK);
	assert_int_equal(step(6)->depth, 2);
	assert_int_equal(step(7)->u.send.count, 2);
	assert_int_equal(step(8)->op, SCN_PING);
	assert_int_equal(step(8)->depth, 1);
	assert_int_equal(step(9)->op, SCN_LOGOUT);
	/* a body that reconnects every round is fine; the state repeats */
	assert_int_equal(tload(HEAD "      - loop: {count: 2, steps: [connect, auth, bind, logout]}\n"), 0);
	/* 7 loops inside each other is the most */
	assert_int_equal(tload(HEAD
		"      - loop: {count: 1, steps: [{loop: {count: 1, steps: [{loop: {count: 1, steps: "
		"[{loop: {count: 1, steps: [{loop: {count: 1, steps: [{loop: {count: 1, steps: "
		"[{loop: {count: 1, steps: [think]}}]}}]}}]}}]}}]}}]}\n"), 0);
	assert_int_equal(step(7)->depth, 7);
}

static void test_units(void **state)
{
	uint64_t ns;
	double r;

	assert_int_equal(parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250 * NS_MS);
	assert_int_equal(parse_duration("0.5s", &ns), 0);
	assert_int_equal(ns, 500 * NS_MS);
	assert_int_equal(parse_duration("2m", &ns), 0);
	assert_int_equal(ns, 2 * NS_M);
	assert_int_equal(parse_duration("1h", &ns), 0);
	assert_int_equal(ns, NS_H);
	assert_int_equal(parse_duration("720h", &ns), 0);
	assert_int_equal(parse_duration("721h", &ns), -1);
	assert_int_equal(parse_duration("10", &ns), -1);
	assert_int_equal(parse_duration("-1s", &ns), -1);
	assert_int_equal(parse_duration("1e3s", &ns), -1);
	assert_int_equal(parse_duration("s", &ns), -1);
	assert_int_equal(parse_duration("1 s", &ns), -1);
	assert_int_equal(parse_duration("1.2.3s", &ns), -1);
	assert_int_equal(parse_rate("5/s", &r), 0);
	assert_true(r == 5);
	assert_int_equal(parse_rate("300/m", &r), 0);
	assert_true(r == 5);
	assert_int_equal(parse_rate("36/h", &r), 0);
	assert_true(fabs(r - 0.01) < 1e-12);
	assert_int_equal(parse_rate("5", &r), -1);
	assert_int_equal(parse_rate("5/d", &r), -1);
	assert_int_equal(parse_rate("/s", &r), -1);
	assert_int_equal(parse_rate("20000000/s", &r), -1);
	assert_int_equal(parse_rate("nan/s", &r), -1);
}

static void test_shipped_files(void **state)
{
	glob_t g;
	const char *want[] = { "login", "chat", "idle", "connect", "muc", "mixed", "ramp" };
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	assert_int_equal(glob("bench/scenarios/*.yaml", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 7);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "bench/scenarios/%s.yaml", want[i]);
		assert_int_equal(access(path, R_OK), 0);
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		scn_free(&S);
		if (scn_load(g.gl_pathv[i], &S, err, sizeof(err)) < 0)
			fail_msg("%s", err);
		assert_true(S.nsessions > 0 && S.nphases > 0);
		mem = open_memstream(&buf, &len);
		scn_describe(mem, &S);
		fclose(mem);
		assert_non_null(strstr(buf, "sessions:"));
		free(buf);
		buf = NULL;
	}
	globfree(&g);
	/* the mix of the issue */
	scn_free(&S);
	assert_int_equal(scn_load("bench/scenarios/mixed.yaml", &S, err, sizeof(err)), 0);
	mem = open_memstream(&buf, &len);
	scn_describe(mem, &S);
	fclose(mem);
	assert_non_null(strstr(buf, "chatter: 80.0% of the users"));
	assert_non_null(strstr(buf, "idle: 15.0% of the users"));
	assert_non_null(strstr(buf, "muc: 5.0% of the users"));
	assert_non_null(strstr(buf, "12030 users arrive over 5m"));
	free(buf);
	/* a missing file */
	scn_free(&S);
	assert_int_equal(scn_load("bench/scenarios/none.yaml", &S, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bench/scenarios/none.yaml: cannot open"));
}

static void test_syntax_errors(void **state)
{
	fails_at("name: a\nphases: [\n", 3, "YAML syntax error");
	fails_at("", 1, "empty");
	fails_at("- a\n", 1, "top level: expected a mapping");
	fails_at("name: a\nbogus: 1\n", 2, "unknown key 'bogus'");
	fails_at("name: a\nname: b\n", 2, "'name' is given twice");
	fails_at("name: a\n", 1, "phases: missing");
	fails_at("phases: [{users: 1}]\n", 1, "sessions: missing");
	fails_at(HEAD "      - connect\n---\nname: b\n", 7, "one YAML document");
}

static void test_value_errors(void **state)
{
	fails_at("target:\n  host: localhost\n", 2, "numeric IPv4 or IPv6");
	fails_at("target:\n  port: 70000\n", 2, "target.port");
	fails_at("target:\n  tls: ssl\n", 2, "plain, starttls, tls, ws, wss");
	fails_at("target:\n  domain: \"a b\"\n", 2, "not allowed");
	fails_at("target:\n  colour: red\n", 2, "target: unknown key 'colour'");
	fails_at("target:\n  ws_path: ws\n", 2, "absolute path");
	fails_at("users: {count: 0}\n", 1, "users.count");
	fails_at("duration: 10\n", 1, "expected a duration");
	fails_at("timeout: 10ms\n", 1, "at least 100ms");
	fails_at("phases:\n  - {arrival: 5, duration: 1m}\n", 2, "expected a rate");
	fails_at("phases:\n  - {arrival: 5/s}\n", 2, "needs a duration");
	fails_at("phases:\n  - {arrival: 5/s, ramp: [1/s, 2/s], duration: 1s}\n", 2, "exclude");
	fails_at("phases:\n  - {ramp: [1/s], duration: 1s}\n", 2, "two rates");
	fails_at("phases:\n  - {users: 5, duration: 1s}\n", 2, "burst");
	fails_at("phases:\n  - {duration: 1s}\n", 2, "expected arrival");
	fails_at("phases: []\n", 1, "at least one phase");
	fails_at("phases: [{users: 1}]\nsessions: []\n", 2, "at least one session");
	fails_at("phases: [{users: 1}]\nsessions:\n  - name: a\n    weight: 0\n    steps: [connect]\n",
		 4, "weight: must be more than 0");
	fails_at("phases: [{users: 1}]\nsessions:\n  - name: a\n    weight: -1\n    steps: [connect]\n",
		 4, "session.weight");
	fails_at("phases: [{users: 1}]\nsessions:\n  - {name: a, steps: [connect]}\n"
		 "  - {name: a, steps: [connect]}\n", 4, "'a' is taken (line 3)");
	fails_at("phases: [{users: 1}]\nsessions:\n  - {name: a}\n", 3, "needs steps");
	fails_at("phases: [{users: 1}]\nsessions:\n  - {name: a, steps: []}\n", 3, "at least one step");
	fails_at("phases: [{users: 1}]\nsessions:\n  - {steps: [connect]}\n", 3, "needs a name");
	fails_at(HEAD "      - connect\nthresholds: [\"\"]\n", 6, "non-empty string");
}

static void test_step_errors(void **state)
{
	fails_at(HEAD "      - connect\n      - fly\n", 6, "unknown step 'fly'");
	fails_at(HEAD "      - connect: {transport: x25}\n", 5, "connect.transport");
	fails_at(HEAD "      - connect: {speed: 1}\n", 5, "connect: unknown parameter 'speed'");
	fails_at(HEAD LOGIN "      - chat: {rate: 5}\n", 8, "chat.rate: expected a rate");
	fails_at(HEAD LOGIN "      - chat: {rate: 0/s}\n", 8, "more than 0");
	fails_at(HEAD LOGIN "      - chat: {duration: 5 s}\n", 8, "expected a duration");
	fails_at(HEAD LOGIN "      - chat: {body: 300k}\n", 8, "at most 256k");
	fails_at(HEAD LOGIN "      - chat: {to: nobody}\n", 8, "chat.to");
	fails_at(HEAD LOGIN "      - chat: {to: \"session:b\"}\n", 8, "no session is named 'b'");
	fails_at(HEAD LOGIN "      - chat: {count: 0}\n", 8, "chat.count");
	fails_at(HEAD LOGIN "      - chat: {to: self, to: peer}\n", 8, "'to' is given twice");
	fails_at(HEAD LOGIN "      - roster: {all: true}\n", 8, "roster: unknown parameter");
	fails_at(HEAD LOGIN "      - roster: now\n", 8, "roster: takes no parameters");
	fails_at(HEAD LOGIN "      - {roster: , ping: }\n", 8, "one per list entry");
	fails_at(HEAD LOGIN "      - [ping]\n", 8, "a step is a name");
	fails_at(HEAD LOGIN "      - presence: {priority: 128}\n", 8, "presence.priority");
	fails_at(HEAD LOGIN "      - presence: {show: busy}\n", 8, "presence.show");
	fails_at(HEAD LOGIN "      - wait: {for: iq}\n", 8, "wait.for");
	fails_at(HEAD LOGIN "      - join\n", 8, "join: needs room");
	fails_at(HEAD LOGIN "      - join: \"r{x}\"\n", 8, "placeholders");
	fails_at(HEAD LOGIN "      - join: \"a@b\"\n", 8, "not allowed");
	fails_at(HEAD LOGIN "      - publish: {to: friends}\n", 8, "publish.to");
	fails_at(HEAD "      - think: {uniform: [2s, 1s]}\n", 5, "MIN is more than MAX");
	fails_at(HEAD "      - think: {fixed: 1s, exp: 2s}\n", 5, "one of fixed, uniform or exp");
	fails_at(HEAD "      - think: {exp: 0s}\n", 5, "at least 1ms");
	fails_at(HEAD "      - idle: forever\n", 5, "idle.duration");
	fails_at(HEAD "      - loop: {steps: [think]}\n", 5, "needs count, duration or both");
	fails_at(HEAD "      - loop: {count: 2}\n", 5, "loop: needs steps");
	fails_at(HEAD "      - loop:\n          count: 2\n          steps: []\n", 7, "at least one step");
	fails_at(HEAD
		"      - loop: {count: 1, steps: [{loop: {count: 1, steps: [{loop: {count: 1, steps: "
		"[{loop: {count: 1, steps: [{loop: {count: 1, steps: [{loop: {count: 1, steps: "
		"[{loop: {count: 1, steps: [{loop: {count: 1, steps: [think]}}]}}]}}]}}]}}]}}]}}]}\n",
		5, "nested more than 7 deep");
	/* aliases cannot make a program larger than the bound, nor recurse forever */
	fails_at("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps: &s\n"
		 "      - loop: {count: 2, steps: *s}\n", 5, "nested more than 7 deep");
}

static void test_static_checks(void **state)
{
	fails_at(HEAD "      - auth\n", 5, "auth: needs an open stream (connect first)");
	fails_at(HEAD "      - roster\n", 5, "roster: needs a bound resource");
	fails_at(HEAD "      - connect\n      - bind\n", 6, "bind: needs an authenticated stream");
	fails_at(HEAD "      - connect\n      - auth\n      - chat\n", 7, "chat: needs a bound resource");
	fails_at(HEAD "      - connect\n      - connect\n", 6, "already open");
	fails_at(HEAD LOGIN "      - auth\n", 8, "already authenticated");
	fails_at(HEAD LOGIN "      - bind\n", 8, "already bound");
	fails_at(HEAD "      - connect\n      - auth\n      - sm\n", 7, "sm: XEP-0198 is enabled after");
	fails_at(HEAD LOGIN "      - sm\n      - sm\n", 9, "already enabled");
	fails_at(HEAD LOGIN "      - resume\n", 8, "resume: needs sm earlier on this stream");
	fails_at(HEAD LOGIN "      - sm: {resume: false}\n      - resume\n", 9, "resume: false");
	fails_at(HEAD LOGIN "      - sm\n      - logout\n" LOGIN "      - resume\n", 13,
		 "resume: needs sm");
	fails_at(HEAD LOGIN "      - groupchat\n", 8, "groupchat: needs a joined room");
	fails_at(HEAD LOGIN "      - leave\n", 8, "leave: needs a joined room");
	fails_at(HEAD LOGIN "      - join: r\n      - join: s\n", 9, "already in a room");
	fails_at(HEAD LOGIN "      - join: r\n      - leave\n      - groupchat\n", 10, "needs a joined room");
	fails_at(HEAD "      - logout\n", 5, "logout: needs an open stream");
	fails_at(HEAD LOGIN "      - drop\n      - ping\n", 9, "ping: needs a bound resource");
	/* a loop's second round starts from what its first left */
	fails_at(HEAD "      - loop:\n          count: 2\n          steps:\n            - connect\n",
		 8, "connect: the stream is already open (logout or drop first) (in the loop's next round)");
	fails_at(HEAD LOGIN "      - loop: {count: 2, steps: [{join: r}]}\n", 8, "(in the loop's next round)");
	/* and what they allow */
	assert_int_equal(tload(HEAD LOGIN "      - sm\n      - resume\n      - resume\n"
			      "      - join: r\n      - resume\n      - groupchat\n      - drop\n"
			      "      - idle: 1s\n      - think\n      - barrier\n" LOGIN "      - ping\n"), 0);
	assert_int_equal(tload(HEAD LOGIN "      - loop: {count: 5, steps: [{join: r}, groupchat, leave]}\n"), 0);
	/* a session may end with its stream open (the executor closes it) */
	assert_int_equal(tload(HEAD LOGIN), 0);
}

static void test_describe(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	assert_int_equal(tload("phases:\n  - {ramp: [1/s, 3/s], duration: 10s}\n  - {users: 5}\n"
			      "sessions:\n  - {name: a, weight: 1, steps: [connect]}\n"
			      "  - {name: b, weight: 3, steps: [connect, auth, bind, "
			      "{loop: {count: 2, duration: 1m, steps: [{think: {exp: 250ms}}]}}]}\n"
			      "thresholds: [\"login.p99 < 1s\"]\n"), 0);
	mem = open_memstream(&buf, &len);
	scn_describe(mem, &S);
	fclose(mem);
	assert_non_null(strstr(buf, "phases: 2, 25 users arrive over 10s"));
	assert_non_null(strstr(buf, "1/s -> 3/s over 10s: 20 users"));
	assert_non_null(strstr(buf, "burst of 5 users"));
	assert_non_null(strstr(buf, "a: 25.0% of the users (weight 1)"));
	assert_non_null(strstr(buf, "b: 75.0% of the users (weight 3)"));
	assert_non_null(strstr(buf, "loop 2 times at most for 1m: steps 5-5"));
	assert_non_null(strstr(buf, "think exp 250ms mean"));
	assert_non_null(strstr(buf, "login.p99 < 1s  (line 7)"));
	free(buf);
}

/* resume: its step timeout and the time offline before the reconnect */
static void test_resume_keys(void **state)
{
	(void)state;
	assert_int_equal(tload(HEAD LOGIN "      - sm\n      - resume: {timeout: 2s, offline: 1500ms}\n"
			      "      - resume: 3s\n      - resume: {offline: 0s}\n"), 0);
	assert_int_equal(step(4)->u.resume.timeout_ns, 2 * NS_S);
	assert_int_equal(step(4)->u.resume.offline_ns, 1500 * NS_MS);
	assert_int_equal(step(5)->u.resume.timeout_ns, 3 * NS_S);
	assert_int_equal(step(5)->u.resume.offline_ns, 0);
	assert_int_equal(step(6)->u.resume.offline_ns, 0);
	fails_at(HEAD LOGIN "      - sm\n      - resume: {away: 1s}\n", 9, "timeout, offline");
	fails_at(HEAD LOGIN "      - sm\n      - resume: {offline: soon}\n", 9, "resume.offline");
}

/* Substitute text with vars ("NAME=VALUE" each); the result or NULL (err set). */
static char *subst(const char *text, const char *const *assign, unsigned n)
{
	struct scn_var v[8];
	size_t len;
	char *out;

	assert_true(n <= 8);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(scn_var_parse(assign[i], &v[i], err, sizeof(err)), 0);
	err[0] = 0;
	if (scn_subst(text, strlen(text), "t.yaml", v, n, &out, &len, err, sizeof(err)) < 0) {
		assert_null(out);
		return NULL;
	}
	assert_int_equal(len, strlen(out));
	return out;
}

static void subst_is(const char *text, const char *const *assign, unsigned n, const char *want)
{
	char *out = subst(text, assign, n);

	if (!out)
		fail_msg("%s: %s", text, err);
	assert_string_equal(out, want);
	free(out);
}

static void subst_fails(const char *text, const char *const *assign, unsigned n, const char *want)
{
	char *out = subst(text, assign, n);

	if (out)
		fail_msg("%s: substituted to \"%s\", expected \"%s\"", text, out, want);
	if (!strstr(err, want))
		fail_msg("expected \"%s\", got \"%s\"", want, err);
}

static void test_vars(void **state)
{
	const char *const ab[] = { "A=1", "B=x y" }, *const a[] = { "A=1" }, *const e[] = { "E=" };
	struct scn_var v;

	/* values, defaults, the empty value, "$$", text without references */
	subst_is("n: ${A}\nm: '${B}'\n", ab, 2, "n: 1\nm: 'x y'\n");
	subst_is("n: ${A:-5}\nm: ${C:-5/s}\n", a, 1, "n: 1\nm: 5/s\n");
	subst_is("n: ${C:-}!", NULL, 0, "n: !");
	subst_is("e: [${E}]", e, 1, "e: []");
	subst_is("cost: $5, $$ and $${A}: ${A}", a, 1, "cost: $5, $ and ${A}: 1");
	subst_is("no variables\n", NULL, 0, "no variables\n");
	subst_is("", NULL, 0, "");
	subst_is("${A}${A}${A:-2}", a, 1, "111");
	/* errors name the line */
	subst_fails("a: 1\nb: ${B}\n", NULL, 0, "t.yaml:2: ${B} is not set (--var B=VALUE");
	subst_fails("a: 1\n\n\nb: ${B\n", NULL, 0, "t.yaml:4: ${B: expected ':-DEFAULT' or '}'");
	subst_fails("b: ${B:-5\n}\n", NULL, 0, "t.yaml:1: ${B: expected '}' on the same line");
	subst_fails("b: ${B:-${C}}\n", NULL, 0, "t.yaml:1: ${B: expected '}'");
	subst_fails("x\nb: ${1B}\n", NULL, 0, "t.yaml:2: '${' must be followed by a variable name");
	subst_fails("b: ${}\n", NULL, 0, "t.yaml:1: '${' must be followed");
	subst_is("b: $", NULL, 0, "b: $");
	subst_fails("b: ${", NULL, 0, "t.yaml:1: '${' must be followed");
	subst_fails("b: 1\n", a, 1, "t.yaml: --var A: the file has no ${A}");
	/* --var NAME=VALUE */
	assert_int_equal(scn_var_parse("N_CHAT=2000", &v, err, sizeof(err)), 0);
	assert_string_equal(v.name, "N_CHAT");
	assert_string_equal(v.value, "2000");
	assert_int_equal(scn_var_parse("X=a=b", &v, err, sizeof(err)), 0);
	assert_string_equal(v.value, "a=b");
	assert_int_equal(scn_var_parse("=1", &v, err, sizeof(err)), -1);
	assert_int_equal(scn_var_parse("X", &v, err, sizeof(err)), -1);
	assert_int_equal(scn_var_parse("9X=1", &v, err, sizeof(err)), -1);
	assert_int_equal(scn_var_parse("X-Y=1", &v, err, sizeof(err)), -1);
	assert_int_equal(scn_var_parse("X=a\nb", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line break"));
}

/* Through the loader: the values reach the model, the lines stay the lines. */
static void test_vars_load(void **state)
{
	static const char y[] =
		"phases: [{users: ${N:-10}}]\n"
		"sessions:\n  - name: a\n    steps:\n" LOGIN
		"      - chat: {rate: ${RATE:-1/s}, count: ${COUNT}}\n"
		"      - think: ${T:-2s}\n";

	scn_vars_clear();
	fails_at(y, 8, "${COUNT} is not set");
	assert_int_equal(scn_vars_add("COUNT=3", err, sizeof(err)), 0);
	assert_int_equal(tload(y), 0);
	assert_int_equal(scn_phase_users(&S.phases[0]), 10);
	assert_int_equal(step(3)->u.send.count, 3);
	assert_true(step(3)->u.send.rate == 1.0);
	assert_int_equal(step(4)->u.think.a_ns, 2000000000ull);
	assert_int_equal(step(4)->line, 9);
	assert_int_equal(scn_vars_add("N=250", err, sizeof(err)), 0);
	assert_int_equal(scn_vars_add("RATE=2.5/s", err, sizeof(err)), 0);
	assert_int_equal(scn_vars_add("COUNT=7", err, sizeof(err)), 0);   /* replaces 3 */
	assert_int_equal(tload(y), 0);
	assert_int_equal(scn_phase_users(&S.phases[0]), 250);
	assert_int_equal(step(3)->u.send.count, 7);
	assert_true(step(3)->u.send.rate == 2.5);
	/* a value the parser refuses: the error is on the reference's line */
	assert_int_equal(scn_vars_add("RATE=fast", err, sizeof(err)), 0);
	fails_at(y, 8, "rate");
	assert_int_equal(scn_vars_add("RATE=1/s", err, sizeof(err)), 0);
	/* a variable the file does not use */
	assert_int_equal(scn_vars_add("NOPE=1", err, sizeof(err)), 0);
	scn_free(&S);
	assert_int_equal(scn_load_mem(y, strlen(y), "t.yaml", &S, err, sizeof(err)), -1);
	assert_string_equal(err, "t.yaml: --var NOPE: the file has no ${NOPE}");
	scn_vars_clear();
	/* a shipped file with its variables given */
	assert_int_equal(scn_vars_add("USERS=40", err, sizeof(err)), 0);
	assert_int_equal(scn_vars_add("PACE=rate: 0.5/s", err, sizeof(err)), 0);
	scn_free(&S);
	if (scn_load("bench/scenarios/chat.yaml", &S, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(scn_phase_users(&S.phases[0]), 40);
	assert_true(S.sessions[0].steps[6].op == SCN_CHAT && S.sessions[0].steps[6].u.send.rate == 0.5);
	assert_int_equal(S.sessions[0].steps[6].line, 32);
	scn_vars_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_top_level),
		cmocka_unit_test(test_loops_flat),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_shipped_files),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_step_errors),
		cmocka_unit_test(test_static_checks),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_resume_keys),
		cmocka_unit_test(test_vars),
		cmocka_unit_test(test_vars_load),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	teardown_all();
	return rc;
}
