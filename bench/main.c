/*
 * main — xedge-bench's options and controller.  See bench.h for the module
 * map and the threading rules.
 *
 * The controller (this thread) starts the client threads, then ticks every
 * 100 ms: it collects the threads' counter deltas, moves the run through its
 * phases (bench_phase), and once a second samples the target (--pid), adds a
 * point to the time series and redraws the progress line.  Every phase has
 * an end the controller enforces by time, and every client step has
 * --timeout, so the run always ends and always prints its summary (SIGINT:
 * close now; a second SIGINT: stop now).
 *
 * Exit status: 0 the run completed (even with failures), 1 usage error,
 * 2 nothing could connect at all (or the set-up failed), 3 the run completed
 * and a --threshold failed.  `xedge-bench merge` and `xedge-bench compare`
 * are subcommands (merge.c).
 */
#include "bench/bench.h"
#include "core/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/html.h"
#include "bench/merge.h"
#include "bench/report.h"
#include "bench/result.h"
#include "bench/scenario.h"
#include "bench/slice.h"
#include "bench/target.h"
#include "bench/threshold.h"

#ifndef XEDGE_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#define TICK_NS 100000000ull

struct bench B;
static volatile sig_atomic_t interrupted;
static char *remote_arg;         /* --remote's copy, cut by parse_remote: o->remote_* point in */
static struct thr thresholds[MERGE_MAX_THRESHOLDS];   /* --threshold */
static unsigned nthresholds;
static struct slice slice;        /* --index/--count/--start-at (slice.h) */
static const char *slice_index_arg, *slice_count_arg, *start_at_arg;

static const char usage[] =
"usage: xedge-bench [options]\n"
"       xedge-bench merge -o OUT.json [--html F] [--csv F] [--threshold E]... A.json B.json ...\n"
"       xedge-bench compare A.json B.json\n"
"Simulates N XMPP clients (io_uring, TLS via wolfSSL) against any XMPP server.\n"
"\n"
"Scenario:\n"
"  -s, --scenario NAME    login | chat | idle | connect | muc (default login), or a\n"
"                         scenario file (YAML, docs/bench.md): its users arrive by its\n"
"                         phases and run its steps; --host, --port, --domain, --password,\n"
"                         --user-prefix, --user-offset, --tls, --sni, --concurrency,\n"
"                         --timeout, --keepalive, --warmup override the file's values and\n"
"                         its thresholds add to --threshold (exit status 2: a bad file)\n"
"      --var NAME=VALUE   a scenario file's ${NAME} (or ${NAME:-DEFAULT}) is VALUE;\n"
"                         repeatable (docs/bench.md, \"Variables\")\n"
"                           login:   log in as fast as allowed; rates and latencies\n"
"                           chat:    log in, then exchange messages (closed loop --window,\n"
"                                    or open loop --rate); latency, loss, duplicates, order\n"
"                           idle:    log in and stay idle; memory per session of --pid\n"
"                           connect: open streams only (TCP/TLS + stream header + features)\n"
"                           muc:     log in, join --rooms rooms of --room-size occupants\n"
"                                    (XEP-0045), then each occupant sends --rate groupchat\n"
"                                    messages/s; deliveries/s, send -> last occupant latency,\n"
"                                    loss, memory per occupant and CPU per delivery of --pid\n"
"  -n, --clients N        simulated clients (default 100)\n"
"  -t, --threads T        client threads, one io_uring ring each (default 2; raised\n"
"                         when N needs more rings' direct descriptors)\n"
"\n"
"Target and accounts:\n"
"  -H, --host ADDR        numeric IPv4/IPv6 address (default 127.0.0.1)\n"
"  -p, --port PORT        default 5222, or 5223 with --tls direct, 5280 ws, 5443 wss\n"
"  -d, --domain D         XMPP domain (default localhost)\n"
"      --sni NAME         TLS server name (default: the domain; --remote: its domain)\n"
"      --tls MODE         starttls | direct | plain | ws | wss (default starttls; ws, wss:\n"
"                         RFC 7395 on the path /xmpp-websocket, a scenario's target.ws_path)\n"
"      --mech MECH        SCRAM-SHA-256 | SCRAM-SHA-1 | PLAIN (default SCRAM-SHA-256)\n"
"      --user-prefix P    users are P<offset+i>@D (default bench)\n"
"      --user-offset K    first user index (default 0)\n"
"      --password PW      every user's password (default pw)\n"
"      --scram-cache FILE cache SCRAM ClientKey/ServerKey per salt in FILE (RFC 5802\n"
"                         §5.1): later runs skip the client's PBKDF2 (2-4 ms a login)\n"
"      --sources A,B,...  bind client sockets to these source addresses, round robin\n"
"                         (~28k ports per source address towards one target)\n"
"      --remote A:P:D     a second server (numeric address A, port P, domain D): the\n"
"                         clients i >= ceil(N/2) (users <prefix><offset+i>@D) log in\n"
"                         there, with the same --tls, --mech and password; messages\n"
"                         between the two halves cross the servers' s2s streams\n"
"\n"
"Pacing and bounds:\n"
"      --ramp R           new connections per second (default 0: unlimited)\n"
"      --concurrency C    logins in progress at most (default 200; 0: unlimited)\n"
"      --timeout S        bound on every step of a client (default 10)\n"
"      --login-time S     bound on the whole login phase (default 300)\n"
"      --hold S           stay logged in S seconds after the login phase (default 0)\n"
"      --settle S         idle: wait before sampling memory (default 5); muc: after the\n"
"                         logins and after the joins, before each memory sample\n"
"      --keepalive S      whitespace keepalive interval (default 60; 0: none)\n"
"      --sm               XEP-0198 stream management: <enable/> after bind, <r/> answered\n"
"                         with the count of stanzas received (the server may then keep\n"
"                         a client's session across a session-server restart)\n"
"\n"
"Chat:\n"
"      --duration S       measured seconds (default 10)\n"
"      --warmup S         seconds before the measurement, not counted (default 2)\n"
"      --drain S          wait for messages in flight after the end (default 2)\n"
"      --window W         closed loop: messages in flight per client (default 4)\n"
"      --rate R           open loop: messages per second per client (default 0: closed loop)\n"
"      --size B           body bytes (default 64)\n"
"      --peers K          each client writes to K random online peers (default 8)\n"
"      --cross            with --remote: peers only on the other server, so every\n"
"                         message crosses between the servers\n"
"      --one-way          with --cross: only the first server's clients send (all the\n"
"                         traffic on the first -> remote s2s stream); --rate is then\n"
"                         per sending client\n"
"\n"
"Group chat (-s muc; --rate, --size, --warmup, --duration, --drain as for chat):\n"
"      --rooms R          rooms (default 10)\n"
"      --room-size N      occupants per room (default 10); --clients is then R * N,\n"
"                         client i in room i / N (the room's first client creates it)\n"
"      --muc-domain D     the group-chat service (default conference.<--domain>)\n"
"      --join-rate J      joins per second at most, all clients together (default 0:\n"
"                         as fast as the rooms open; a join into a room of k costs the\n"
"                         server about 2k presence stanzas)\n"
"\n"
"Distributed runs (slices of one load, such as the pods of a Kubernetes Indexed Job):\n"
"      --index I          run slice I of --count (default: $JOB_COMPLETION_INDEX): users\n"
"                         [I*N/C, (I+1)*N/C) of --clients N (muc: of --rooms, whole rooms),\n"
"                         --ramp, --join-rate and --concurrency shared in proportion;\n"
"                         chat peers stay inside the slice; `merge` adds the slices up\n"
"      --count C          slices of the load (default: $XEDGE_BENCH_COUNT, or 1)\n"
"      --start-at T       wait until wall-clock time T (RFC 3339 such as\n"
"                         2026-12-07T12:00:00Z, or unix seconds) before the first\n"
"                         connection; a T more than 5 s past is an error (exit 2)\n"
"\n"
"Output:\n"
"      --pid PID          sample this target process's CPU and RSS (repeatable)\n"
"      --json FILE        write the results and the per-second series as JSON\n"
"      --plot PREFIX      write PREFIX-throughput.png and PREFIX-latency.png (gnuplot)\n"
"      --csv FILE         write the per-second series per transaction as CSV\n"
"      --html FILE        write a self-contained HTML report (inline SVG charts)\n"
"      --threshold EXPR   a pass/fail condition, such as 'message_rtt.p99 < 50ms',\n"
"                         'errors.rate < 0.1%', 'login.count >= 1000' (repeatable;\n"
"                         docs/bench.md); a failing one makes the exit status 3\n"
"  -v, --verbose          print failures (the first 10 per thread; -vv: all)\n"
"      --check-scenario FILE  load a scenario file (docs/bench.md), print its summary\n"
"                         and exit: 0 if it is valid, 2 with FILE:LINE: reason if not\n"
"  -h, --help\n"
"      --version\n"
"\n"
"Exit status: 0 run completed (failures are in the report), 1 usage error,\n"
"2 nothing could connect, 3 run completed and a --threshold failed.\n";

enum {
	O_SNI = 256, O_TLS, O_MECH, O_PREFIX, O_OFFSET, O_PASSWORD, O_CACHE, O_SOURCES, O_RAMP,
	O_CONC, O_TIMEOUT, O_LOGIN_TIME, O_HOLD, O_SETTLE, O_KEEPALIVE, O_DURATION, O_WARMUP,
	O_DRAIN, O_WINDOW, O_RATE, O_SIZE, O_PEERS, O_PID, O_JSON, O_PLOT, O_VERSION, O_REMOTE,
	O_CROSS, O_ONE_WAY, O_SM, O_ROOMS, O_ROOM_SIZE, O_MUC_DOMAIN, O_JOIN_RATE, O_CSV, O_HTML,
	O_THRESHOLD, O_CHECK_SCENARIO, O_INDEX, O_COUNT, O_START_AT, O_VAR
};

static const struct option longopts[] = {
	{ "scenario", required_argument, NULL, 's' },
	{ "clients", required_argument, NULL, 'n' },
	{ "threads", required_argument, NULL, 't' },
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "domain", required_argument, NULL, 'd' },
	{ "sni", required_argument, NULL, O_SNI },
	{ "tls", required_argument, NULL, O_TLS },
	{ "mech", required_argument, NULL, O_MECH },
	{ "user-prefix", required_argument, NULL, O_PREFIX },
	{ "user-offset", required_argument, NULL, O_OFFSET },
	{ "password", required_argument, NULL, O_PASSWORD },
	{ "scram-cache", required_argument, NULL, O_CACHE },
	{ "sources", required_argument, NULL, O_SOURCES },
	{ "remote", required_argument, NULL, O_REMOTE },
	{ "cross", no_argument, NULL, O_CROSS },
	{ "one-way", no_argument, NULL, O_ONE_WAY },
	{ "sm", no_argument, NULL, O_SM },
	{ "rooms", required_argument, NULL, O_ROOMS },
	{ "room-size", required_argument, NULL, O_ROOM_SIZE },
	{ "muc-domain", required_argument, NULL, O_MUC_DOMAIN },
	{ "join-rate", required_argument, NULL, O_JOIN_RATE },
	{ "ramp", required_argument, NULL, O_RAMP },
	{ "concurrency", required_argument, NULL, O_CONC },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "login-time", required_argument, NULL, O_LOGIN_TIME },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "settle", required_argument, NULL, O_SETTLE },
	{ "keepalive", required_argument, NULL, O_KEEPALIVE },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "drain", required_argument, NULL, O_DRAIN },
	{ "window", required_argument, NULL, O_WINDOW },
	{ "rate", required_argument, NULL, O_RATE },
	{ "size", required_argument, NULL, O_SIZE },
	{ "peers", required_argument, NULL, O_PEERS },
	{ "pid", required_argument, NULL, O_PID },
	{ "json", required_argument, NULL, O_JSON },
	{ "plot", required_argument, NULL, O_PLOT },
	{ "csv", required_argument, NULL, O_CSV },
	{ "html", required_argument, NULL, O_HTML },
	{ "threshold", required_argument, NULL, O_THRESHOLD },
	{ "index", required_argument, NULL, O_INDEX },
	{ "count", required_argument, NULL, O_COUNT },
	{ "start-at", required_argument, NULL, O_START_AT },
	{ "version", no_argument, NULL, O_VERSION },
	{ "check-scenario", required_argument, NULL, O_CHECK_SCENARIO },
	{ "var", required_argument, NULL, O_VAR },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* ---- stats ------------------------------------------------------------------ */

void bench_stats_cause(struct bench_stats *s, const char *name, uint64_t n)
{
	unsigned i;

	for (i = 0; i < s->ncauses; i++)
		if (strcmp(s->causes[i].name, name) == 0)
			break;
	if (i == s->ncauses) {
		if (s->ncauses == BENCH_MAX_CAUSES)
			i = BENCH_MAX_CAUSES - 1;    /* the last slot becomes "other" */
		else
			s->ncauses++;
		snprintf(s->causes[i].name, sizeof(s->causes[i].name), "%s",
			 i == BENCH_MAX_CAUSES - 1 ? "other" : name);
	}
	s->causes[i].n += n;
}

void bench_stats_add(struct bench_stats *into, const struct bench_stats *from)
{
	into->started += from->started;
	into->connected += from->connected;
	into->logged_in += from->logged_in;
	into->failed += from->failed;
	into->dropped += from->dropped;
	into->closed += from->closed;
	into->sent += from->sent;
	into->recv += from->recv;
	into->sent_meas += from->sent_meas;
	into->recv_meas += from->recv_meas;
	into->dup += from->dup;
	into->reordered += from->reordered;
	into->misrouted += from->misrouted;
	into->window_timeouts += from->window_timeouts;
	into->unexpected += from->unexpected;
	into->joined += from->joined;
	into->join_failed += from->join_failed;
	into->expected += from->expected;
	into->expected_meas += from->expected_meas;
	into->complete_meas += from->complete_meas;
	into->recv_window += from->recv_window;
	hist_merge(&into->h_join, &from->h_join);
	hist_merge(&into->h_last, &from->h_last);
	into->arrived += from->arrived;
	into->rejected += from->rejected;
	into->waited += from->waited;
	into->users_done += from->users_done;
	for (int k = 0; k < BENCH_MAX_PHASES; k++)
		into->arrived_ph[k] += from->arrived_ph[k];
	for (int k = 0; k < BENCH_MAX_SESSIONS; k++) {
		into->sess_started[k] += from->sess_started[k];
		into->sess_done[k] += from->sess_done[k];
	}
	into->asked += from->asked;
	into->replies += from->replies;
	into->answered += from->answered;
	into->gc_sent += from->gc_sent;
	into->gc_recv += from->gc_recv;
	into->pings += from->pings;
	into->published += from->published;
	hist_merge(&into->h_bind, &from->h_bind);
	hist_merge(&into->h_roster, &from->h_roster);
	hist_merge(&into->h_ping, &from->h_ping);
	hist_merge(&into->h_publish, &from->h_publish);
	hist_merge(&into->h_wait, &from->h_wait);
	into->resumed += from->resumed;
	into->resent += from->resent;
	into->resume_recv += from->resume_recv;
	hist_merge(&into->h_resume, &from->h_resume);
	for (int d = 0; d < 2; d++) {
		into->x_sent[d] += from->x_sent[d];
		into->x_recv[d] += from->x_recv[d];
		hist_merge(&into->h_cross[d], &from->h_cross[d]);
	}
	into->bytes_in += from->bytes_in;
	into->bytes_out += from->bytes_out;
	if (from->first_start_ns && (!into->first_start_ns || from->first_start_ns < into->first_start_ns))
		into->first_start_ns = from->first_start_ns;
	if (from->last_login_ns > into->last_login_ns)
		into->last_login_ns = from->last_login_ns;
	hist_merge(&into->h_connect, &from->h_connect);
	hist_merge(&into->h_tls, &from->h_tls);
	hist_merge(&into->h_ws, &from->h_ws);
	hist_merge(&into->h_auth, &from->h_auth);
	hist_merge(&into->h_login, &from->h_login);
	hist_merge(&into->h_msg, &from->h_msg);
	hist_merge(&into->h_msg_meas, &from->h_msg_meas);
	for (unsigned i = 0; i < from->ncauses; i++)
		bench_stats_cause(into, from->causes[i].name, from->causes[i].n);
}

/* Take every thread's published deltas into *into. */
static void collect(struct bench_stats *into)
{
	for (unsigned i = 0; i < B.nthreads; i++) {
		struct bthread *t = &B.threads[i];
		pthread_mutex_lock(&t->mu);
		bench_stats_add(into, &t->shared);
		memset(&t->shared, 0, sizeof(t->shared));
		pthread_mutex_unlock(&t->mu);
	}
}

static unsigned gauge_sum(size_t off)
{
	unsigned n = 0;

	for (unsigned i = 0; i < B.nthreads; i++)
		n += atomic_load_explicit((atomic_uint *)((char *)&B.threads[i] + off), memory_order_relaxed);
	return n;
}
#define GAUGE(field) gauge_sum(offsetof(struct bthread, field))

/* ---- options -------------------------------------------------------------------- */

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_addr(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

/* Values we paste into XML and SASL unescaped: keep them token-like. */
static bool token_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || strchr("'\"<>&@/,=", *s))
			return false;
	return true;
}

static int bad(const char *what, const char *val)
{
	fprintf(stderr, "xedge-bench: bad %s '%s' (see --help)\n", what, val);
	return -1;
}

/* --remote ADDR:PORT:DOMAIN, split from the right (an IPv6 address has
 * colons; it may be bracketed).  The strings point into arg (argv). */
static int parse_remote(char *arg, struct bench_opts *o)
{
	char *dom = strrchr(arg, ':'), *port, *host = arg;
	unsigned p;

	if (!dom || dom == arg)
		return -1;
	*dom++ = '\0';
	port = strrchr(arg, ':');
	if (!port || port == arg)
		return -1;
	*port++ = '\0';
	if (*host == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	if (!token_ok(dom) || parse_uint(port, 1, 65535, &p) < 0 ||
	    parse_addr(host, (uint16_t)p, &o->remote, &o->remote_len) < 0)
		return -1;
	o->remote_host = host;
	o->remote_domain = dom;
	o->remote_port = (uint16_t)p;
	return 0;
}

static int builtin_scenario(const char *name)
{
	static const char *const n[] = { "login", "chat", "idle", "connect", "muc" };

	for (int i = 0; i < 5; i++)
		if (!strcmp(name, n[i]))
			return i;
	return -1;
}

/* --scenario FILE (a name that is not a built-in scenario): load it first, so that
 * its values are the defaults and the rest of the command line overrides them.
 * A file that does not load ends the program with status 2 and FILE:LINE: reason. */
static void scenario_file_first(int argc, char **argv, const char **host, unsigned *port)
{
	const char *file = NULL;
	char err[512];
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "s:n:t:H:p:d:vh", longopts, NULL)) != -1) {
		if (ch == 's' && builtin_scenario(optarg) < 0)
			file = optarg;
		/* --var before the file loads (and before --check-scenario runs) */
		if (ch == O_VAR && scn_vars_add(optarg, err, sizeof(err)) < 0) {
			fprintf(stderr, "xedge-bench: %s\n", err);
			exit(1);
		}
	}
	opterr = 1;
	optind = 0;     /* GNU: start the real pass from scratch */
	if (!file)
		return;
	if (bs_init(file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	bs_defaults(&B.o, host, port);
	B.o.scenario = SC_FILE;
}

/* The slice of a distributed run (slice.h): this process's users and shares. */
static int options_slice(struct bench_opts *o)
{
	char err[256];

	if (slice_options(&slice, slice_index_arg, slice_count_arg, start_at_arg, err,
			  sizeof(err)) < 0 || slice_apply(&slice, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "xedge-bench: %s\n", err);
		return -1;
	}
	if (slice.count > 1) {
		char ramp[48] = "";
		if (o->ramp > 0)
			snprintf(ramp, sizeof(ramp), ", --ramp share %.4g/s", o->ramp);
		fprintf(stderr, "xedge-bench: slice %u of %u: users %s%u..%s%u (%u of %u)%s\n",
			slice.index, slice.count, o->prefix, o->offset, o->prefix,
			o->offset + o->clients - 1, o->clients, slice.whole_clients, ramp);
	}
	return 0;
}

/* A scenario file's run, after the options: its slice (every count-th user of the
 * whole schedule, slice.h and steps.c), its pool of slots, its thresholds (a bad
 * one is FILE:LINE, exit status 2). */
static int options_scenario_file(void)
{
	char err[256];

	if (slice_options(&slice, slice_index_arg, slice_count_arg, start_at_arg, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "xedge-bench: %s\n", err);
		return -1;
	}
	bs_slice(slice.index, slice.count);
	if (bs_prepare() < 0)
		exit(2);
	if (bs_thresholds(thresholds, &nthresholds, MERGE_MAX_THRESHOLDS) < 0)
		exit(2);
	return 0;
}

static bool settle_set;                  /* --settle given: a scenario file samples memory */

static int parse_options(int argc, char **argv)
{
	struct bench_opts *o = &B.o;
	const char *host = "127.0.0.1", *sources = NULL, *remote = NULL;
	unsigned port = 0;
	int ch;

	*o = (struct bench_opts){
		.scenario = SC_LOGIN, .tls = TLS_MODE_STARTTLS, .mech = MECH_SCRAM_SHA256,
		.clients = 100, .threads = 2, .concurrency = 200, .domain = "localhost",
		.prefix = "bench", .password = "pw", .timeout = 10, .login_time = 300,
		.settle = 5, .keepalive = 60, .warmup = 2, .duration = 10, .drain = 2,
		.window = 4, .body = 64, .peers = 8, .rooms = 10, .room_size = 10,
	};
	bool clients_set = false, var_given = false;
	scenario_file_first(argc, argv, &host, &port);
	while ((ch = getopt_long(argc, argv, "s:n:t:H:p:d:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (o->scenario == SC_FILE && builtin_scenario(optarg) < 0)
				break;                  /* loaded by scenario_file_first */
			if (o->scenario == SC_FILE)
				return bad("scenario (a file and a built-in scenario)", optarg);
			if (!strcmp(optarg, "login"))
				o->scenario = SC_LOGIN;
			else if (!strcmp(optarg, "chat"))
				o->scenario = SC_CHAT;
			else if (!strcmp(optarg, "idle"))
				o->scenario = SC_IDLE;
			else if (!strcmp(optarg, "connect"))
				o->scenario = SC_CONNECT;
			else if (!strcmp(optarg, "muc"))
				o->scenario = SC_MUC;
			else
				return bad("scenario (login, chat, idle, connect, muc or a file)", optarg);
			break;
		case 'n':
			if (parse_uint(optarg, 1, 10000000, &o->clients) < 0)
				return bad("--clients", optarg);
			clients_set = true;
			break;
		case 't':
			if (parse_uint(optarg, 1, BENCH_MAX_THREADS, &o->threads) < 0)
				return bad("--threads", optarg);
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65535, &port) < 0)
				return bad("--port", optarg);
			break;
		case 'd':
			if (!token_ok(optarg))
				return bad("--domain", optarg);
			o->domain = optarg;
			break;
		case O_SNI:
			o->sni = optarg;
			break;
		case O_TLS:
			if (!strcmp(optarg, "starttls"))
				o->tls = TLS_MODE_STARTTLS;
			else if (!strcmp(optarg, "direct"))
				o->tls = TLS_MODE_DIRECT;
			else if (!strcmp(optarg, "plain"))
				o->tls = TLS_MODE_PLAIN;
			else if (!strcmp(optarg, "ws"))
				o->tls = TLS_MODE_WS;
			else if (!strcmp(optarg, "wss"))
				o->tls = TLS_MODE_WSS;
			else
				return bad("--tls", optarg);
			break;
		case O_MECH:
			if (!strcasecmp(optarg, "SCRAM-SHA-256"))
				o->mech = MECH_SCRAM_SHA256;
			else if (!strcasecmp(optarg, "SCRAM-SHA-1"))
				o->mech = MECH_SCRAM_SHA1;
			else if (!strcasecmp(optarg, "PLAIN"))
				o->mech = MECH_PLAIN;
			else
				return bad("--mech", optarg);
			break;
		case O_PREFIX:
			if (!token_ok(optarg))
				return bad("--user-prefix", optarg);
			o->prefix = optarg;
			break;
		case O_OFFSET:
			if (parse_uint(optarg, 0, 1000000000, &o->offset) < 0)
				return bad("--user-offset", optarg);
			break;
		case O_PASSWORD:
			if (!*optarg || strlen(optarg) > 200)
				return bad("--password", optarg);
			o->password = optarg;
			break;
		case O_CACHE:
			o->scram_cache = optarg;
			break;
		case O_SOURCES:
			sources = optarg;
			break;
		case O_REMOTE:
			remote = optarg;
			break;
		case O_CROSS:
			o->cross = true;
			break;
		case O_ONE_WAY:
			o->one_way = true;
			break;
		case O_SM:
			o->sm = true;
			break;
		case O_ROOMS:
			if (parse_uint(optarg, 1, 1000000, &o->rooms) < 0)
				return bad("--rooms", optarg);
			break;
		case O_ROOM_SIZE:
			if (parse_uint(optarg, 1, 100000, &o->room_size) < 0)
				return bad("--room-size", optarg);
			break;
		case O_JOIN_RATE:
			if (parse_double(optarg, 0, 1e7, &o->join_rate) < 0)
				return bad("--join-rate", optarg);
			break;
		case O_MUC_DOMAIN:
			if (!token_ok(optarg))
				return bad("--muc-domain", optarg);
			o->muc_domain = optarg;
			break;
		case O_RAMP:
			if (parse_double(optarg, 0, 1e7, &o->ramp) < 0)
				return bad("--ramp", optarg);
			break;
		case O_CONC:
			if (parse_uint(optarg, 0, 10000000, &o->concurrency) < 0)
				return bad("--concurrency", optarg);
			break;
		case O_TIMEOUT:
			if (parse_double(optarg, 0.1, 3600, &o->timeout) < 0)
				return bad("--timeout", optarg);
			break;
		case O_LOGIN_TIME:
			if (parse_double(optarg, 1, 86400, &o->login_time) < 0)
				return bad("--login-time", optarg);
			break;
		case O_HOLD:
			if (parse_double(optarg, 0, 86400, &o->hold) < 0)
				return bad("--hold", optarg);
			break;
		case O_SETTLE:
			if (parse_double(optarg, 0, 86400, &o->settle) < 0)
				return bad("--settle", optarg);
			settle_set = true;
			break;
		case O_KEEPALIVE:
			if (parse_double(optarg, 0, 86400, &o->keepalive) < 0)
				return bad("--keepalive", optarg);
			break;
		case O_DURATION:
			if (parse_double(optarg, 0.1, 86400, &o->duration) < 0)
				return bad("--duration", optarg);
			break;
		case O_WARMUP:
			if (parse_double(optarg, 0, 86400, &o->warmup) < 0)
				return bad("--warmup", optarg);
			break;
		case O_CHECK_SCENARIO:
			exit(scn_check_file(optarg));
		case O_VAR:
			var_given = true;       /* added by scenario_file_first */
			break;
		case O_DRAIN:
			if (parse_double(optarg, 0, 3600, &o->drain) < 0)
				return bad("--drain", optarg);
			break;
		case O_WINDOW:
			if (parse_uint(optarg, 1, 100000, &o->window) < 0)
				return bad("--window", optarg);
			break;
		case O_RATE:
			if (parse_double(optarg, 0, 1e6, &o->rate) < 0)
				return bad("--rate", optarg);
			break;
		case O_SIZE:
			if (parse_uint(optarg, 0, 65536, &o->body) < 0)
				return bad("--size", optarg);
			break;
		case O_PEERS:
			if (parse_uint(optarg, 1, BENCH_MAX_PEERS, &o->peers) < 0)
				return bad("--peers", optarg);
			break;
		case O_PID: {
			unsigned pid;
			if (o->npids == BENCH_MAX_PIDS || parse_uint(optarg, 1, 1u << 30, &pid) < 0)
				return bad("--pid", optarg);
			o->pids[o->npids++] = (pid_t)pid;
			break;
		}
		case O_JSON:
			o->json = optarg;
			break;
		case O_PLOT:
			o->plot = optarg;
			break;
		case O_CSV:
			o->csv = optarg;
			break;
		case O_HTML:
			o->html = optarg;
			break;
		case O_THRESHOLD: {
			char err[256];
			if (nthresholds == MERGE_MAX_THRESHOLDS)
				return bad("--threshold (too many)", optarg);
			if (thr_parse(optarg, &thresholds[nthresholds], err, sizeof(err)) < 0) {
				fprintf(stderr, "xedge-bench: %s\n", err);
				return -1;
			}
			nthresholds++;
			break;
		}
		case O_INDEX:
			slice_index_arg = optarg;
			break;
		case O_COUNT:
			slice_count_arg = optarg;
			break;
		case O_START_AT:
			start_at_arg = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case O_VERSION:
			printf("xedge-bench %s\n", XEDGE_VERSION);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind]);
	if (o->scenario == SC_MUC) {
		static char muc_domain[300];
		uint64_t n = (uint64_t)o->rooms * o->room_size;
		if (n > 10000000)
			return bad("--rooms * --room-size (at most 10,000,000 clients)", "too many");
		if (clients_set && o->clients != n)
			return bad("--clients (muc: it is --rooms * --room-size; leave it out)", "");
		o->clients = (unsigned)n;
		if (o->rate <= 0)
			return bad("--rate (muc is an open loop: messages/s per occupant, > 0)", "0");
		if (remote)
			return bad("--remote", "not with muc");
		if (!o->muc_domain) {
			snprintf(muc_domain, sizeof(muc_domain), "conference.%s", o->domain);
			o->muc_domain = muc_domain;
		}
	}
	if (!port)
		port = o->tls == TLS_MODE_DIRECT ? 5223 : o->tls == TLS_MODE_WS ? 5280 :
		       o->tls == TLS_MODE_WSS ? 5443 : 5222;
	o->host = host;
	if (parse_addr(host, (uint16_t)port, &o->target, &o->target_len) < 0)
		return bad("--host (a numeric IPv4 or IPv6 address; names are not resolved)", host);
	o->split = o->clients;
	if (var_given && o->scenario != SC_FILE)
		return bad("--var (only with a scenario file)", "");
	if (o->scenario == SC_FILE) {
		if (clients_set)
			return bad("--clients (not with a scenario file: its phases start the users)", "");
		if (remote || o->cross || o->one_way)
			return bad("--remote (not with a scenario file)", remote ? remote : "");
	}
	if (remote) {
		remote_arg = strdup(remote);
		if (!remote_arg || parse_remote(remote_arg, o) < 0)
			return bad("--remote (ADDR:PORT:DOMAIN, numeric address)", remote);
		if (o->remote.ss_family != o->target.ss_family)
			return bad("--remote (the same address family as --host)", remote);
		if (o->clients < 2)
			return bad("--clients (at least 2 with --remote)", "1");
		o->split = (o->clients + 1) / 2;
	}
	if (o->cross && !remote)
		return bad("--cross", "needs --remote");
	if (o->one_way && !o->cross)
		return bad("--one-way", "needs --cross");
	if (o->mech == MECH_PLAIN && o->tls == TLS_MODE_PLAIN)
		fprintf(stderr, "xedge-bench: warning: PLAIN without TLS: most servers refuse it\n");
	if (sources) {
		char *list = strdup(sources), *save = NULL;
		for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
			if (o->nsources == BENCH_MAX_SOURCES ||
			    parse_addr(a, 0, &o->sources[o->nsources], &o->source_len[o->nsources]) < 0 ||
			    o->sources[o->nsources].ss_family != o->target.ss_family) {
				bad("--sources entry (numeric, same family as --host)", a);
				free(list);
				return -1;
			}
			o->nsources++;
		}
		free(list);
	}
	if (o->scenario == SC_FILE)
		return options_scenario_file();
	return options_slice(o);
}

/* ---- the run -------------------------------------------------------------------- */

static void on_signal(int sig)
{
	interrupted++;
}

/* Raise the fd soft limit to the hard one: it also caps each ring's
 * direct-descriptor table (DESIGN §3). */
static uint32_t fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > 1u << 20 ? 1u << 20 : (uint32_t)rl.rlim_cur;
}

/* --remote: each --pid's CPU seconds and ours, at the start and the end of the measured
 * window (to tell which of the two servers, or the load generator, ran out of CPU). */
struct meas_cpu {
	int step;                        /* 0 before the window, 1 in it, 2 after */
	uint64_t t0;
	double pid0[BENCH_MAX_PIDS], self0;
};

static void meas_cpu_tick(struct meas_cpu *m, struct bench_result *res, uint64_t now)
{
	const struct bench_opts *o = &B.o;
	struct target_sample ts;
	double wall;

	if ((!o->remote_host && o->scenario != SC_MUC) || !o->npids || m->step == 2 ||
	    now < atomic_load(&B.warm_end_ns) || (m->step == 1 && now < atomic_load(&B.chat_end_ns)))
		return;
	if (m->step == 0) {
		for (unsigned i = 0; i < o->npids; i++)
			m->pid0[i] = target_sample(&o->pids[i], 1, &ts) ? ts.cpu_s : -1;
		m->self0 = target_self_cpu();
		m->t0 = now;
		m->step = 1;
		return;
	}
	wall = (double)(now - m->t0) / 1e9;
	if (wall <= 0)
		return;
	res->meas_cpu_s = 0;
	res->meas_wall_s = wall;
	for (unsigned i = 0; i < o->npids; i++) {
		res->meas_pid_cpu[i] = m->pid0[i] >= 0 && target_sample(&o->pids[i], 1, &ts) ?
				       (ts.cpu_s - m->pid0[i]) * 100.0 / wall : -1;
		if (res->meas_pid_cpu[i] >= 0)
			res->meas_cpu_s += res->meas_pid_cpu[i] * wall / 100.0;
	}
	res->meas_bench_cpu = (target_self_cpu() - m->self0) * 100.0 / wall;
	res->meas_cpu = true;
	m->step = 2;
}

static const char *phase_str(int ph)
{
	static const char *const n[] = { "login", "join", "steady", "chat", "drain", "close", "stop" };
	return ph >= 0 && ph <= PH_STOP ? n[ph] : "?";
}

static void progress(const struct bench_point *p, uint64_t failed, int ph, bool tty, bool force,
		     const struct bench_stats *total)
{
	char line[320];
	bool chat = B.o.scenario == SC_CHAT;
	uint64_t errors = 0;

	/* every failure so far, whatever its stage (the end's "errors" less lost messages) */
	for (unsigned i = 0; i < total->ncauses; i++)
		errors += total->causes[i].n;
	if (B.o.scenario == SC_FILE) {
		static uint64_t arrived_before;
		snprintf(line, sizeof(line),
			 "[%5.0fs %-6s] users %llu  online %u  arrivals/s %llu  logins/s %llu  "
			 "sent/s %llu  recv/s %llu  p99 %s %.2f ms  errors %llu",
			 p->t, phase_str(ph), (unsigned long long)bs_alive(), p->online,
			 (unsigned long long)(total->arrived - arrived_before),
			 (unsigned long long)p->logins, (unsigned long long)p->sent,
			 (unsigned long long)p->recv, total->h_msg.count ? "msg" : "login",
			 (double)p->p99_ns / 1e6, (unsigned long long)errors);
		arrived_before = total->arrived;
	} else if (B.o.scenario == SC_MUC)
		snprintf(line, sizeof(line),
			 "[%5.0fs %-6s] users %u  conn %u  joined %llu  sent/s %llu  "
			 "delivered/s %llu  p99 delivery %.2f ms  errors %llu",
			 p->t, phase_str(ph), p->online, p->connected, (unsigned long long)total->joined,
			 (unsigned long long)p->sent, (unsigned long long)p->recv,
			 (double)p->p99_ns / 1e6, (unsigned long long)errors);
	else
		snprintf(line, sizeof(line),
			 "[%5.0fs %-6s] users %u  conn %u  logins/s %llu  sent/s %llu  recv/s %llu  "
			 "p99 %s %.2f ms  errors %llu",
			 p->t, phase_str(ph), p->online, p->connected, (unsigned long long)p->logins,
			 (unsigned long long)p->sent, (unsigned long long)p->recv, chat ? "msg" : "login",
			 (double)p->p99_ns / 1e6, (unsigned long long)errors);
	if (tty)
		fprintf(stderr, "\r%s\033[K", line);
	else   /* one line a second in a log too */
		fprintf(stderr, "%s\n", line);
}

/* The generator's own memory now (result_gen_mem): VmRSS, and jemalloc's
 * heap counters, refreshed by writing "epoch" (0 without jemalloc). */
static void gen_mem_sample(uint64_t *rss_kib, uint64_t *alloc, uint64_t *resident)
{
	pid_t self = getpid();
	struct target_sample ts;

	*rss_kib = target_sample(&self, 1, &ts) ? ts.rss_kib : 0;
	*alloc = *resident = 0;
#ifndef XEDGE_NO_JEMALLOC
	{
		uint64_t epoch = 1;
		size_t v, sz = sizeof(epoch);

		if (mallctl("epoch", &epoch, &sz, &epoch, sz) != 0)
			return;
		sz = sizeof(v);
		if (mallctl("stats.allocated", &v, &sz, NULL, 0) == 0)
			*alloc = v;
		sz = sizeof(v);
		if (mallctl("stats.resident", &v, &sz, NULL, 0) == 0)
			*resident = v;
	}
#endif
}

/* The hold: the generator's memory with n sessions online.  A later sample
 * holding as many as the peak so far, or within 0.1 % of it (a few sessions
 * lost during the hold), replaces an earlier one: the end of the hold wins.
 * Controller thread only. */
static void gen_mem_held(struct result_gen_mem *m, uint64_t n)
{
	static uint64_t peak;

	if (n > peak)
		peak = n;
	if (!n || n * 1000 < peak * 999)
		return;
	m->held = true;
	m->sessions_held = n;
	gen_mem_sample(&m->rss_held_kib, &m->heap_alloc_held, &m->heap_resident_held);
}

int main(int argc, char **argv)
{
	struct bench_opts *o = &B.o;
	struct bench_result res = { 0 };
	struct bench_stats *total = &res.total;
	struct bench_stats sec;
	struct target_sample ts_prev = { 0 }, ts_now, ts_first = { 0 };
	struct sigaction sa = { 0 };
	uint64_t now, next_sec, phase_t = 0, drain_t = 0, failed_sum = 0, last_sample;
	uint64_t settled_from = 0;       /* muc: logins or joins done at; settling since */
	double cpu_prev, cpu_start;
	unsigned n_tcpu = 0, threads;
	size_t cap_series = 0;
	bool tty = isatty(2), idle_sampled = false;
	struct meas_cpu mcpu = { 0 };
	struct result rr;
	struct target_sample gen;
	struct timespec wall0;
	pid_t self = getpid();
	int ph, rc = 0;

	if (argc > 1 && !strcmp(argv[1], "merge"))
		return merge_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "compare"))
		return merge_compare_main(argc - 1, argv + 1);
	if (parse_options(argc, argv) < 0)
		return 1;
	result_init(&rr);
	B.ring_slots = fd_limit();
	{
		FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
		unsigned lo, hi;
		if (f && fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1024 && hi <= 65535 && hi >= lo + 64) {
			B.port_lo = (uint16_t)lo;
			B.port_hi = (uint16_t)hi;
		}
		if (f)
			fclose(f);
	}
	if (B.ring_slots < 64) {
		fprintf(stderr, "xedge-bench: RLIMIT_NOFILE is too low (%u)\n", B.ring_slots);
		return 2;
	}
	/* Enough rings for every client's direct descriptor. */
	threads = o->threads;
	if ((uint64_t)threads * (B.ring_slots - 8) < o->clients) {
		threads = (unsigned)((o->clients + (B.ring_slots - 8) - 1) / (B.ring_slots - 8));
		if (threads > BENCH_MAX_THREADS) {
			fprintf(stderr, "xedge-bench: %u clients need more than %d rings\n", o->clients,
				BENCH_MAX_THREADS);
			return 1;
		}
		fprintf(stderr, "xedge-bench: %u clients need %u rings of %u direct descriptors: "
			"using %u threads\n", o->clients, threads, B.ring_slots - 8, threads);
	}
	if (threads > o->clients)
		threads = o->clients;
	B.nthreads = threads;
	if (!o->nsources && o->clients > 28000)
		fprintf(stderr, "xedge-bench: warning: over ~28k connections from one source address "
			"to one target exhaust the ephemeral ports; add --sources 127.0.0.1,127.0.0.2,...\n");
	if (o->scenario == SC_IDLE && !o->npids)
		fprintf(stderr, "xedge-bench: note: idle without --pid cannot measure memory per session\n");
	if (bc_init() < 0)
		return bad("--domain", o->domain), 1;
	if (o->scram_cache) {
		int r = keycache_open(o->scram_cache, o->password);
		if (r < 0)
			fprintf(stderr, "xedge-bench: warning: cannot read --scram-cache %s: %s\n",
				o->scram_cache, strerror(-r));
	}
	/* The generator's memory before the sessions: before their slots too (struct bclient
	 * here, the executor's per-slot state, the threads' per-client lists), which a
	 * session costs as much as its TLS and buffers. */
	gen_mem_sample(&rr.gm.rss_before_kib, &rr.gm.heap_alloc_before, &rr.gm.heap_resident_before);
	B.clients = calloc(o->clients, sizeof(*B.clients));
	B.threads = calloc(B.nthreads, sizeof(*B.threads));
	if (!B.clients || !B.threads) {
		fprintf(stderr, "xedge-bench: out of memory for %u clients\n", o->clients);
		return 2;
	}
	for (uint32_t i = 0; i < o->clients; i++) {
		B.clients[i].idx = i;
		B.clients[i].slot = UINT32_MAX;
	}
	atomic_store(&B.warm_end_ns, UINT64_MAX);
	atomic_store(&B.chat_end_ns, 0);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o->npids) {
		res.have_target = true;
		if (target_sample(o->pids, o->npids, &ts_prev) < o->npids)
			fprintf(stderr, "xedge-bench: warning: some --pid cannot be read in /proc\n");
		res.rss_before = ts_prev.rss_kib;
		ts_first = ts_prev;
	}
	fprintf(stderr, "xedge-bench: %s, %u %s on %u threads -> %s port %u (%s, %s)\n",
		o->scenario == SC_LOGIN ? "login" : o->scenario == SC_CHAT ? "chat" :
		o->scenario == SC_IDLE ? "idle" : o->scenario == SC_MUC ? "muc" :
		o->scenario == SC_FILE ? bs_name() : "connect",
		o->clients, o->scenario == SC_FILE ? "user slots" : "clients", B.nthreads, o->host,
		ntohs(((struct sockaddr_in *)&o->target)->sin_port),
		o->tls == TLS_MODE_DIRECT ? "direct TLS" : o->tls == TLS_MODE_STARTTLS ? "STARTTLS" :
		o->tls == TLS_MODE_WS ? "WebSocket" : o->tls == TLS_MODE_WSS ? "WebSocket over TLS" : "plain",
		o->scenario == SC_CONNECT ? "no login" : o->scenario == SC_FILE ? "mechanisms by step" :
		o->mech == MECH_PLAIN ? "PLAIN" : o->mech == MECH_SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256");
	if (o->remote_host)
		fprintf(stderr, "xedge-bench: clients 0..%u on %s (%s), %u..%u on %s port %u (%s)%s%s\n",
			o->split - 1, o->host, o->domain, o->split, o->clients - 1, o->remote_host,
			o->remote_port, o->remote_domain, o->cross ? "; peers on the other server" : "",
			o->one_way ? ", the first server's clients send" : "");

	/* Distributed runs: every slice begins at --start-at (the timeline starts there). */
	switch (slice_wait(&slice, &interrupted, tty)) {
	case -1:
		return 2;
	case 1:
		fprintf(stderr, "\nxedge-bench: interrupted before --start-at\n");
		return 2;
	}
	B.t0 = bench_now();
	clock_gettime(CLOCK_REALTIME, &wall0);
	rr.slice_index = slice.index;
	rr.slice_count = slice.count;
	rr.start_unix_ns = (int64_t)wall0.tv_sec * 1000000000ll + wall0.tv_nsec;
	snprintf(rr.scenario, sizeof(rr.scenario), "%s", o->scenario == SC_LOGIN ? "login" :
		 o->scenario == SC_CHAT ? "chat" : o->scenario == SC_IDLE ? "idle" :
		 o->scenario == SC_MUC ? "muc" : o->scenario == SC_FILE ? bs_name() : "connect");
	if (target_sample(&self, 1, &gen))
		rr.gen_rss_start_kib = rr.gen_rss_max_kib = gen.rss_kib;
	B.run_id = (uint32_t)(B.t0 / 1000) ^ (uint32_t)getpid();
	if (o->scenario == SC_MUC) {
		if (bm_init() < 0) {
			fprintf(stderr, "xedge-bench: out of memory for %u rooms\n", o->rooms);
			return 2;
		}
		fprintf(stderr, "xedge-bench: %u rooms of %u occupants on %s, %.3g messages/s per "
			"occupant\n", o->rooms, o->room_size, o->muc_domain, o->rate);
	}
	if (o->scenario == SC_FILE) {
		/* message measurements count from the warm-up's end after the first chat or
		 * groupchat step starts (steps_msg.c sets warm_end_ns); no chat phase */
		atomic_store(&B.chat_start_ns, B.t0);
		atomic_store(&B.chat_end_ns, UINT64_MAX);
	}
	atomic_store(&B.phase, PH_LOGIN);
	for (unsigned i = 0; i < B.nthreads; i++) {
		struct bthread *t = &B.threads[i];
		t->id = (int)i;
		t->nclients = o->clients / B.nthreads + (i < o->clients % B.nthreads ? 1 : 0);
		if (bt_start(t) < 0) {
			fprintf(stderr, "xedge-bench: thread %u failed to start\n", i);
			atomic_store(&B.phase, PH_STOP);
			for (unsigned j = 0; j < i; j++)
				pthread_join(B.threads[j].th, NULL);
			return 2;
		}
	}
	cpu_start = cpu_prev = target_self_cpu();
	memset(&sec, 0, sizeof(sec));
	next_sec = B.t0 + 1000000000ull;
	/* The per-second CPU counts from here: starting the threads can take seconds (the slots
	 * of 200,000 users), and a first point over those at its own short interval read as
	 * 110,000 %. */
	if (o->npids)
		(void)target_sample(o->pids, o->npids, &ts_prev);
	last_sample = bench_now();
	phase_t = B.t0;

	for (;;) {
		struct timespec req;
		bool all_done = true;

		now = bench_now();
		if (now < next_sec) {
			uint64_t d = next_sec - now < TICK_NS ? next_sec - now : TICK_NS;
			req.tv_sec = 0;
			req.tv_nsec = (long)d;
			nanosleep(&req, NULL);
			now = bench_now();
		}
		collect(&sec);
		meas_cpu_tick(&mcpu, &res, now);
		ph = atomic_load(&B.phase);
		if (interrupted && ph < PH_CLOSE) {
			fprintf(stderr, "\nxedge-bench: interrupted: closing (again to stop now)\n");
			res.interrupted = true;
			atomic_store(&B.phase, PH_CLOSE);
			interrupted = 0;
		} else if (interrupted && ph == PH_CLOSE) {
			atomic_store(&B.phase, PH_STOP);
		}

		if (now >= next_sec) {
			struct bench_point p = { 0 };
			struct hist *h = o->scenario == SC_CHAT || o->scenario == SC_MUC ? &sec.h_msg :
					 &sec.h_login;
			if (o->scenario == SC_FILE && (sec.h_msg.count || total->h_msg.count))
				h = &sec.h_msg;
			double cpu = target_self_cpu();
			/* The controller may run late on a busy box: rates over the real interval. */
			double wall = (double)(now - last_sample) / 1e9;

			p.t = (double)(next_sec - B.t0) / 1e9;
			p.connected = GAUGE(g_connected);
			p.online = GAUGE(g_online);
			p.logins = sec.logged_in;
			p.failed = sec.failed;
			p.sent = sec.sent;
			p.recv = sec.recv;
			p.p50_ns = hist_percentile(h, 50);
			p.p99_ns = hist_percentile(h, 99);
			p.target_cpu = -1;
			if (wall < 0.2 && res.nseries) {
				/* A late controller catching up with the seconds it missed: too short
				 * an interval for /proc's 10 ms ticks.  The previous point's CPU
				 * figures stand, and the next point's interval starts where its did. */
				const struct bench_point *q = &res.series[res.nseries - 1];
				p.bench_cpu = q->bench_cpu;
				p.target_cpu = q->target_cpu;
				p.target_rss_kib = q->target_rss_kib;
			} else {
				if (wall < 0.001)
					wall = 0.001;
				last_sample = now;
				p.bench_cpu = (cpu - cpu_prev) * 100.0 / wall;
				cpu_prev = cpu;
				if (o->npids && target_sample(o->pids, o->npids, &ts_now)) {
					p.target_cpu = (ts_now.cpu_s - ts_prev.cpu_s) * 100.0 / wall;
					p.target_rss_kib = ts_now.rss_kib;
					ts_prev = ts_now;
					n_tcpu++;
					if (p.target_cpu > res.target_cpu_max)
						res.target_cpu_max = p.target_cpu;
					if (p.target_rss_kib > res.target_rss_max)
						res.target_rss_max = p.target_rss_kib;
				}
			}
			if (p.bench_cpu > res.bench_cpu_max)
				res.bench_cpu_max = p.bench_cpu;
			if (p.connected > res.peak_connected)
				res.peak_connected = p.connected;
			if (p.online > res.peak_online)
				res.peak_online = p.online;
			if (res.nseries == cap_series) {
				cap_series = cap_series ? 2 * cap_series : 256;
				res.series = realloc(res.series, cap_series * sizeof(*res.series));
				if (!res.series) {
					fprintf(stderr, "xedge-bench: out of memory\n");
					return 2;
				}
			}
			res.series[res.nseries++] = p;
			if (target_sample(&self, 1, &gen) && gen.rss_kib > rr.gen_rss_max_kib)
				rr.gen_rss_max_kib = gen.rss_kib;
			if (o->scenario != SC_IDLE)    /* -s idle: at the --settle sample */
				gen_mem_held(&rr.gm, p.online);
			if (report_point(&rr, &sec, &p, (rr.start_unix_ns + (int64_t)(next_sec - B.t0)) /
					 1000000000ll) < 0) {
				fprintf(stderr, "xedge-bench: out of memory\n");
				return 2;
			}
			bench_stats_add(total, &sec);
			failed_sum = total->failed;
			memset(&sec, 0, sizeof(sec));
			progress(&p, failed_sum, atomic_load(&B.phase), tty, false, total);
			next_sec += 1000000000ull;
		}

		{
			unsigned g = GAUGE(g_online), gc = GAUGE(g_connected);
			if (g > res.peak_online)
				res.peak_online = g;
			if (gc > res.peak_connected)
				res.peak_connected = gc;
		}
		/* Phase transitions, on the totals so far (+ this second's part). */
		ph = atomic_load(&B.phase);
		if (o->scenario == SC_FILE) {
			/* --settle given: the target's memory per session, --settle after every
			 * planned user has logged in (or failed), as -s idle samples it */
			uint64_t resolved = total->logged_in + total->failed + total->rejected +
					    sec.logged_in + sec.failed + sec.rejected;
			if (settle_set && o->npids && !idle_sampled && resolved >= bs_planned()) {
				if (!settled_from)
					settled_from = now;
				if (now - settled_from >= (uint64_t)(o->settle * 1e9)) {
					res.sessions = GAUGE(g_online);
					if (target_sample(o->pids, o->npids, &ts_now)) {
						res.rss_after = ts_now.rss_kib;
						res.idle_mem = true;
					}
					idle_sampled = true;
				}
			}
			/* the end: the users alive wait `drain` for the messages due to them */
			if (ph < PH_DRAIN && bs_finished(now))
				atomic_store(&B.phase, bs_drain_begin(now) ? PH_DRAIN : PH_CLOSE);
			else if (ph == PH_DRAIN && bs_drain_over(now))
				atomic_store(&B.phase, PH_CLOSE);
		} else {
			uint64_t resolved = total->logged_in + total->failed + sec.logged_in + sec.failed;
			uint64_t sent = total->sent + sec.sent, recv = total->recv + sec.recv;
			uint64_t dup = total->dup + sec.dup;

			bool login_over = resolved >= o->clients ||
					  now - B.t0 >= (uint64_t)(o->login_time * 1e9);
			/* muc: the target's memory settles (allocator decay, handshake buffers
			 * freed) for --settle before and after the joins, around its samples. */
			if (o->scenario == SC_MUC && ph == PH_LOGIN && login_over && !settled_from)
				settled_from = now;
			if (o->scenario == SC_MUC && ph == PH_LOGIN &&
			    now - settled_from < (uint64_t)(o->settle * 1e9))
				login_over = false;
			if (ph == PH_LOGIN && login_over) {
				phase_t = now;
				if (o->scenario == SC_MUC) {
					/* Memory per occupant: the target's RSS before the joins ... */
					if (o->npids && target_sample(o->pids, o->npids, &ts_now))
						res.rss_join0 = ts_now.rss_kib;
					atomic_store(&B.join_start_ns, now);
					atomic_store(&B.phase, PH_JOIN);
				} else if (o->scenario == SC_CHAT) {
					atomic_store(&B.chat_start_ns, now);
					atomic_store(&B.warm_end_ns, now + (uint64_t)(o->warmup * 1e9));
					atomic_store(&B.chat_end_ns,
						     now + (uint64_t)((o->warmup + o->duration) * 1e9));
					atomic_store(&B.phase, PH_CHAT);
				} else {
					atomic_store(&B.phase, PH_STEADY);
				}
			} else if (ph == PH_JOIN) {
				uint64_t done = total->joined + total->join_failed + total->dropped +
						sec.joined + sec.join_failed + sec.dropped;
				uint64_t in = total->logged_in + sec.logged_in;
				bool over = done >= in || now - phase_t >= (uint64_t)(o->login_time * 1e9);
				if (over && !res.join_s) {
					res.join_s = (double)(now - phase_t) / 1e9;
					settled_from = now;
				}
				if (over && now - settled_from >= (uint64_t)(o->settle * 1e9)) {
					/* ... and after them */
					if (o->npids && target_sample(o->pids, o->npids, &ts_now)) {
						res.rss_join1 = ts_now.rss_kib;
						res.join_mem = true;
					}
					phase_t = now;
					atomic_store(&B.chat_start_ns, now);
					atomic_store(&B.warm_end_ns, now + (uint64_t)(o->warmup * 1e9));
					atomic_store(&B.chat_end_ns,
						     now + (uint64_t)((o->warmup + o->duration) * 1e9));
					atomic_store(&B.phase, PH_CHAT);
				}
			} else if (ph == PH_STEADY) {
				if (o->scenario == SC_IDLE && !idle_sampled) {
					if (now - phase_t >= (uint64_t)(o->settle * 1e9)) {
						res.sessions = GAUGE(g_online);
						gen_mem_held(&rr.gm, res.sessions);
						if (o->npids && target_sample(o->pids, o->npids, &ts_now)) {
							res.rss_after = ts_now.rss_kib;
							res.idle_mem = true;
						}
						idle_sampled = true;
						phase_t = now;   /* --hold counts from the sample */
					}
				} else if (now - phase_t >= (uint64_t)(o->hold * 1e9)) {
					atomic_store(&B.phase, PH_CLOSE);
				}
			} else if (ph == PH_CHAT && now >= atomic_load(&B.chat_end_ns)) {
				drain_t = now;
				atomic_store(&B.phase, PH_DRAIN);
			} else if (ph == PH_DRAIN &&
				   (now - drain_t >= (uint64_t)(o->drain * 1e9) ||
				    (o->scenario == SC_MUC ? total->expected + sec.expected <= recv :
				     sent == recv - dup))) {
				atomic_store(&B.phase, PH_CLOSE);
			}
		}
		ph = atomic_load(&B.phase);
		if (ph >= PH_CLOSE) {
			for (unsigned i = 0; i < B.nthreads; i++)
				all_done = all_done && atomic_load(&B.threads[i].done);
			if (all_done)
				break;
		}
	}
	for (unsigned i = 0; i < B.nthreads; i++)
		pthread_join(B.threads[i].th, NULL);
	collect(&sec);
	now = bench_now();
	{
		/* the last, shorter second: the timeline adds up to the totals */
		struct bench_point p = { .t = (double)(now - B.t0) / 1e9, .connected = GAUGE(g_connected),
					 .online = GAUGE(g_online), .target_cpu = -1 };
		if (report_point(&rr, &sec, &p, (rr.start_unix_ns + (int64_t)(now - B.t0)) /
				 1000000000ll) < 0) {
			fprintf(stderr, "xedge-bench: out of memory\n");
			return 2;
		}
	}
	bench_stats_add(total, &sec);
	if (tty)
		fputc('\n', stderr);

	res.elapsed_s = (double)(now - B.t0) / 1e9;
	if (total->last_login_ns > total->first_start_ns && total->first_start_ns)
		res.login_span_s = (double)(total->last_login_ns - total->first_start_ns) / 1e9;
	if ((o->scenario == SC_CHAT || o->scenario == SC_MUC) && atomic_load(&B.chat_start_ns)) {
		res.warmup_s = o->warmup;
		res.meas_s = o->duration;
	}
	if (o->scenario == SC_FILE) {
		/* the message steps' window (steps_msg.c): from the warm-up's end to the latest
		 * planned end of a step with a duration, else to the run's end */
		uint64_t w0 = atomic_load(&B.warm_end_ns), w1 = bs_msg_window_end();
		if (!w1 || w1 > now)
			w1 = now;
		res.warmup_s = o->warmup;
		res.meas_s = w0 < w1 ? (double)(w1 - w0) / 1e9 : 0;
	}
	/* Averages over the whole run, not over whole seconds only. */
	if (o->npids && target_sample(o->pids, o->npids, &ts_now) && res.elapsed_s > 0) {
		res.target_cpu_avg = (ts_now.cpu_s - ts_first.cpu_s) * 100.0 / res.elapsed_s;
		if (ts_now.rss_kib > res.target_rss_max)
			res.target_rss_max = ts_now.rss_kib;
		if (!n_tcpu)
			res.target_cpu_max = res.target_cpu_avg;
	}
	if (res.elapsed_s > 0)
		res.bench_cpu_avg = (target_self_cpu() - cpu_start) * 100.0 / res.elapsed_s;
	if (res.bench_cpu_max < res.bench_cpu_avg)
		res.bench_cpu_max = res.bench_cpu_avg;   /* a run shorter than a second */

	report_totals(&rr, &res);
	res.rs = &rr;
	report_summary(stdout, &res);
	if (o->json && report_json(o->json, &res) < 0) {
		fprintf(stderr, "xedge-bench: cannot write --json %s: %s\n", o->json, strerror(errno));
	}
	if (o->csv && result_write_csv(o->csv, &rr) < 0)
		fprintf(stderr, "xedge-bench: cannot write --csv %s: %s\n", o->csv, strerror(errno));
	if (o->html) {
		struct json_t *sf = o->scenario == SC_FILE ? bs_json_object(total) : NULL;
		if (html_write(o->html, &rr, sf, thresholds, nthresholds) < 0)
			fprintf(stderr, "xedge-bench: cannot write --html %s: %s\n", o->html,
				strerror(errno));
		json_decref(sf);
	}
	if (merge_thresholds(&rr, thresholds, nthresholds, stdout) < 0)
		rc = 3;
	if (o->plot)
		(void)report_plot(o->plot, &res);
	if (o->scram_cache) {
		int n = keycache_close();
		if (n < 0)
			fprintf(stderr, "xedge-bench: warning: cannot append to --scram-cache %s: %s\n",
				o->scram_cache, strerror(-n));
	}
	for (uint32_t i = 0; i < o->clients; i++)
		free(B.clients[i].pairs);
	bm_free();
	if (o->scenario == SC_FILE)
		bs_free();
	for (unsigned i = 0; i < B.nthreads; i++) {
		struct bthread *t = &B.threads[i];
		if (t->in_buf)
			for (unsigned j = 0; j < B.nthreads; j++)
				free(t->in_buf[j]);
		free(t->in_buf);
		free(t->in);
		free(t->ready);
		for (unsigned j = 0; j < t->nnsd; j++)
			free(t->nsd[j]);
	}
	tls_client_shutdown();
	if (total->connected == 0) {
		fprintf(stderr, "xedge-bench: nothing could connect to %s\n", o->host);
		rc = 2;
	}
	result_free(&rr);
	free(res.series);
	free(B.clients);
	free(B.threads);
	free(remote_arg);
	return rc;
}
