/*
 * steps — the scenario executor: `xedge-bench --scenario FILE` runs the
 * users of a scenario file (bench/scenario.h; reference: docs/bench.md,
 * "Scenario files").  client.c keeps the protocol codecs (TCP, TLS, stream,
 * STARTTLS, SASL); this module decides what each user does next.
 *
 * Its files (prefix bs_): steps.c (this one: loading, the timer heap, users,
 * the connection steps, the interpreter, the thread's loop), steps_msg.c
 * (chat, group chat, rooms and room_fanout, the stanzas received; the
 * message ids are described there), steps_report.c (the summary and the
 * JSON) and steps_int.h (what they share).
 *
 * Arrivals (open loop): user u arrives at the time the phases give
 * (plan.c), on thread u % T, which computes the times of its own users: no
 * queue between threads, so a slow server shows as latency, never as fewer
 * arrivals.  An arrival while max_users users are alive (all threads: one
 * atomic) is counted as the error "arrival:max-users" and skipped, as tsung
 * does; so is one that finds no free slot on its thread (the pool is
 * max_users split over the threads, with a quarter of slack, so this only
 * happens when the threads' shares of live users drift far apart).
 * `concurrency` bounds logins in progress per thread (its share): an arrival
 * waits for a login to finish, and how late each user started, against its
 * scheduled time, is the "arrival wait" histogram.  The account of user u is
 * users.offset + (u mod users.count) (count 0: u); its session comes from a
 * smooth weighted round robin over the weights, so the shares are exact.  A
 * user whose program ends (or fails) gives its slot and its direct
 * descriptor back for a later arrival.  The pool is sized by max_users, or
 * by every user the phases start when there is no cap.
 *
 * The interpreter: per user a program counter into its session's flat step
 * array and a stack of loop frames (plan.c: bp_next), the current step's
 * state (messages sent, its deadlines), what it waits for (enum wait) and
 * one wake-up time in the thread's timer heap (a binary min-heap of
 * (time, slot); an entry whose time is no longer the user's is stale and
 * skipped).  run() executes steps until one has to wait: for the server
 * (client.c calls bs_features and bs_stanza at its stop points), for time,
 * for a receipt from another thread, or for the connection's end.  A step
 * that completes calls bs_step_done(), which moves the counter and runs on.
 * Nothing is run again from inside a connection's release: bs_released only
 * schedules the user, so client.c and thread.c never see their client
 * reused under their feet.
 *
 * Logins: the steps from a connect through auth, bind and roster (presence
 * and sm may sit between them) are a login; the last of them completes it
 * (bc_logged_in: the login transaction, the online gauge, keepalives), so a
 * failure before that point is a failed login, by cause, and after it the
 * cause is the failing step's ("ping:timeout", "join:item-not-found",
 * "publish:forbidden", "sm:failed", "wait:timeout", "dropped:..." for a
 * connection lost between steps).  Transactions recorded here: bind, roster,
 * ping, publish, join, message_rtt, and auth (auth step -> the restarted
 * stream's features); connect, tls and login as for the -s scenarios.
 *
 * Drain (the file's `drain`, --drain): a sender counts each one-way chat
 * message in its receiver's slot (due, and the last send time), the
 * receiver counts those it gets.  A user that logs out (the logout step, or
 * its program's end) while messages due to it have not arrived goes offline
 * for the senders choosing peers (no new ones come), stays connected and
 * logs out when the last has arrived, or `drain` after the last was sent
 * (W_DRAIN).  At the run's end (every user done, or `duration`) the
 * controller drains the same way (bs_drain_begin/over, phase PH_DRAIN):
 * nothing more is sent and no step starts, the users alive stay connected
 * until every message due to them has arrived or `drain` has passed; what
 * has not arrived then is "message:lost".  The JSON's scenario_file.drain
 * says how long it waited and what was due before and after.
 *
 * Distributed runs (slice.h: --index I --count N): slice I runs every N-th
 * user of the one schedule (u mod N == I), so every slice sees the phases'
 * shape at 1/N of the rate and the sessions' exact shares; max_users and
 * concurrency become the slice's share (proportional to its users, at least
 * 1); chat peers, barriers and rooms count this process's users only.
 *
 * Resume (XEP-0198 §5): the step closes the connection abruptly, as drop
 * does, but keeps the XEP-0198 state (client.c: BF_KEEP_SM) and the user
 * online (its session lives on the server, detached: messages to it wait
 * there), waits `offline` if the step says so, then reconnects through the
 * connect path the user's transport uses, authenticates with the auth
 * step's mechanism, and sends <resume/> instead of binding; <resumed/>
 * records the `resume` transaction (the reconnect's start to <resumed/>)
 * and the program goes on (no bind, no roster).  Any failure on the way is
 * "resume:<cause>" ("resume:failed:item-not-found" for the server's
 * <failed/>, "resume:not-resumable" when <enabled/> granted no resumption,
 * "resume:timeout", "resume:connect-refused", ...) and the user ends, failed.
 *
 * The ws and wss transports are client.c's with wsconn.c under it
 * (target.ws_path is the upgrade's path).
 */
#include "bench/bench.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/plan.h"
#include "bench/result.h"
#include "bench/scenario.h"
#include "bench/smq.h"
#include "bench/steps_int.h"
#include "bench/threshold.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"

_Static_assert(BENCH_MAX_PHASES == SCN_MAX_PHASES, "phase counters");
_Static_assert(BENCH_MAX_SESSIONS == SCN_MAX_SESSIONS, "session counters");

#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SM "urn:xmpp:sm:3"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"

#define UNAVAILABLE "<presence type='unavailable'/>"
#define STEPS_PER_RUN 256          /* steps run at once, then the user yields */
#define ARRIVALS_PER_TICK 512
#define MAX_TICK_NS 20000000ull

/* The run (set before the threads start, read-only after). */
static struct bench_scenario S;
static bool loaded;
static struct bp_plan plan;
static bool *login_end[SCN_MAX_SESSIONS];       /* per step: completes a login */
static _Atomic uint64_t *barrier_n[SCN_MAX_SESSIONS];  /* per step: users that reached it */
static uint64_t sess_users[SCN_MAX_SESSIONS];   /* users of each session the phases start */
static struct sockaddr_storage addr[TLS_MODE_N];   /* per TLS_MODE_* */
static socklen_t addr_len[TLS_MODE_N];
static char muc_domain[300], pubsub_domain[300];
uint64_t bs_tmo;                                /* the step timeout (--timeout wins) */
static unsigned slice_i, slice_n = 1;           /* this process runs users u % n == i */
static uint64_t my_total;                       /* users of this slice */
static uint64_t max_users;                      /* the slice's share of max_users; 0: none */
struct bs_room *bs_room_tab;                    /* room_fanout: occupants per room */
static bool has_groupchat;
static _Atomic uint64_t alive, parked;
static atomic_uint arrivals_over;               /* threads whose arrivals are all started */
/* the run's drain (controller only): its start, end and the one-way messages
 * still due to users alive then; 0 / 0: no drain */
static uint64_t drain_t0, drain_t1, drain_due0, drain_due1;

uint64_t bs_ns_of(double s)
{
	return (uint64_t)(s * 1e9);
}

uint64_t bs_rnd(struct bs_thread *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ull;
}

static double unif(struct bs_thread *b)
{
	return (double)(bs_rnd(b) >> 11) / 9007199254740992.0;   /* [0, 1) */
}

/* ---- loading ------------------------------------------------------------------ */

const char *bs_name(void)
{
	const char *n = scn_str(&S, S.name);

	return *n ? n : "scenario";
}

int bs_init(const char *path, char *err, size_t errlen)
{
	if (scn_load(path, &S, err, errlen) < 0)
		return -1;
	loaded = true;
	return 0;
}

static int tls_mode(int tr)
{
	return tr == SCN_TR_PLAIN ? TLS_MODE_PLAIN : tr == SCN_TR_TLS ? TLS_MODE_DIRECT :
	       tr == SCN_TR_WS ? TLS_MODE_WS : tr == SCN_TR_WSS ? TLS_MODE_WSS : TLS_MODE_STARTTLS;
}

/* The scenario's values as the options' defaults (the command line overrides them). */
void bs_defaults(struct bench_opts *o, const char **host, unsigned *port)
{
	const struct scn_target *tg = &S.target;

	if (tg->host)
		*host = scn_str(&S, tg->host);
	if (tg->port)
		*port = tg->port;
	if (tg->domain)
		o->domain = scn_str(&S, tg->domain);
	if (tg->sni)
		o->sni = scn_str(&S, tg->sni);
	if (tg->muc_domain)
		o->muc_domain = scn_str(&S, tg->muc_domain);
	if (tg->ws_path)
		o->ws_path = scn_str(&S, tg->ws_path);
	o->tls = tls_mode(tg->tls);
	if (S.users.prefix)
		o->prefix = scn_str(&S, S.users.prefix);
	if (S.users.password)
		o->password = scn_str(&S, S.users.password);
	o->offset = S.users.offset;
	o->concurrency = S.concurrency;
	o->timeout = (double)S.timeout_ns / 1e9;
	o->keepalive = (double)S.keepalive_ns / 1e9;
	o->warmup = (double)S.warmup_ns / 1e9;
	o->drain = (double)S.drain_ns / 1e9;
}

/* For each session, the steps that complete a login (see the file comment). */
static int logins_mark(void)
{
	for (uint32_t i = 0; i < S.nsessions; i++) {
		const struct scn_session *ses = &S.sessions[i];
		login_end[i] = calloc(ses->nsteps + 1, sizeof(bool));
		barrier_n[i] = calloc(ses->nsteps + 1, sizeof(**barrier_n));
		if (!login_end[i] || !barrier_n[i])
			return -1;
		for (uint32_t k = 0; k < ses->nsteps; k++) {
			uint32_t last = k;
			if (ses->steps[k].op != SCN_CONNECT)
				continue;
			for (uint32_t j = k + 1; j < ses->nsteps; j++) {
				int op = ses->steps[j].op;
				if (op == SCN_AUTH || op == SCN_BIND || op == SCN_ROSTER)
					last = j;
				else if (op != SCN_PRESENCE && op != SCN_SM)
					break;
			}
			login_end[i][last] = true;
		}
	}
	return 0;
}

void bs_slice(unsigned index, unsigned count)
{
	slice_i = index;
	slice_n = count ? count : 1;
}

/* The slice's share of a whole-load bound (0 stays 0: no bound). */
static uint64_t share(uint64_t whole)
{
	double v;

	if (!whole || slice_n <= 1)
		return whole;
	v = (double)whole * (double)my_total / (double)plan.total + 0.5;
	return v < 1 ? 1 : (uint64_t)v;
}

int bs_prepare(void)
{
	struct bench_opts *o = &B.o;
	uint64_t cap, per;
	struct bp_wrr w;
	unsigned port = ntohs(((struct sockaddr_in *)&o->target)->sin_port);

	B.scn = &S;
	bs_tmo = (uint64_t)(o->timeout * 1e9);
	bp_plan_init(&plan, S.phases, S.nphases);
	if (!plan.total) {
		fprintf(stderr, "xedge-bench: %s: the phases start no user\n", S.path);
		return -1;
	}
	my_total = bp_slice_users(0, plan.total, slice_i, slice_n);
	if (!my_total) {
		fprintf(stderr, "xedge-bench: %s: slice %u of %u starts no user (the phases start "
			"%llu)\n", S.path, slice_i, slice_n, (unsigned long long)plan.total);
		return -1;
	}
	bp_wrr_init(&w, S.sessions, S.nsessions);
	for (uint64_t u = 0; u < plan.total && u < 100000000; u++) {
		uint32_t k = bp_wrr_next(&w);
		if (u % slice_n == slice_i)
			sess_users[k]++;
	}
	max_users = share(S.max_users);
	o->concurrency = (unsigned)share(o->concurrency);
	if (slice_n > 1)
		fprintf(stderr, "xedge-bench: slice %u of %u: every %u-th user of %llu from user %u "
			"(%llu users), max_users %llu, concurrency %u\n", slice_i, slice_n, slice_n,
			(unsigned long long)plan.total, slice_i, (unsigned long long)my_total,
			(unsigned long long)max_users, o->concurrency);
	if (logins_mark() < 0)
		return -1;
	for (uint32_t i = 0; i < S.nsessions; i++)
		for (uint32_t k = 0; k < S.sessions[i].nsteps; k++)
			has_groupchat |= S.sessions[i].steps[k].op == SCN_GROUPCHAT;
	if (has_groupchat && !(bs_room_tab = calloc(ROOMS_MAX, sizeof(*bs_room_tab))))
		return -1;
	/* The pool: max_users (or everyone) over the threads, with slack for drift. */
	cap = max_users && max_users < my_total ? max_users : my_total;
	if (o->threads > cap)
		o->threads = (unsigned)cap;
	per = bp_pool_per_thread(max_users, my_total, o->threads);
	if (per * o->threads > 10000000) {
		fprintf(stderr, "xedge-bench: %s: %llu users at once is more than one generator "
			"holds (10,000,000)\n", S.path, (unsigned long long)(per * o->threads));
		return -1;
	}
	o->clients = (unsigned)(per * o->threads);
	o->split = o->clients;
	/* The target's transport on its port; the others on their default ports. */
	for (int m = 0; m < TLS_MODE_N; m++) {
		static const uint16_t dflt[TLS_MODE_N] = {
			[TLS_MODE_PLAIN] = 5222, [TLS_MODE_STARTTLS] = 5222, [TLS_MODE_DIRECT] = 5223,
			[TLS_MODE_WS] = 5280, [TLS_MODE_WSS] = 5443
		};
		addr[m] = o->target;
		addr_len[m] = o->target_len;
		if (m != o->tls)
			((struct sockaddr_in *)&addr[m])->sin_port = htons(dflt[m]);
		else
			((struct sockaddr_in *)&addr[m])->sin_port = htons((uint16_t)port);
	}
	if (!o->muc_domain) {
		snprintf(muc_domain, sizeof(muc_domain), "conference.%s", o->domain);
		o->muc_domain = muc_domain;
	}
	if (S.target.pubsub)
		snprintf(pubsub_domain, sizeof(pubsub_domain), "%s", scn_str(&S, S.target.pubsub));
	else
		snprintf(pubsub_domain, sizeof(pubsub_domain), "pubsub.%s", o->domain);
	return 0;
}

/* sin_port and sin6_port are at the same offset: the port edits above hold for both. */
_Static_assert(offsetof(struct sockaddr_in, sin_port) == offsetof(struct sockaddr_in6, sin6_port),
	       "port offset");

const struct sockaddr *bs_addr(const struct bclient *c, socklen_t *len)
{
	*len = addr_len[c->tmode];
	return (const struct sockaddr *)&addr[c->tmode];
}

/* The file's thresholds, parsed, after the n already in out (the command
 * line's); -1 with "FILE:LINE: reason" on stderr. */
int bs_thresholds(struct thr *out, unsigned *n, unsigned max)
{
	char err[256];

	for (uint32_t i = 0; i < S.nthresholds; i++) {
		if (*n == max) {
			fprintf(stderr, "%s:%u: too many thresholds (%u with the command line's)\n",
				S.path, S.thresholds[i].line, max);
			return -1;
		}
		if (thr_parse(S.thresholds[i].text, &out[*n], err, sizeof(err)) < 0) {
			fprintf(stderr, "%s:%u: %s\n", S.path, S.thresholds[i].line, err);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

void bs_free(void)
{
	for (uint32_t i = 0; i < SCN_MAX_SESSIONS; i++) {
		free(login_end[i]);
		free(barrier_n[i]);
		login_end[i] = NULL;
		barrier_n[i] = NULL;
	}
	if (B.clients)
		for (uint32_t i = 0; i < B.o.clients; i++) {
			free(B.clients[i].bs);
			B.clients[i].bs = NULL;
		}
	if (B.clients)
		for (uint32_t i = 0; i < B.o.clients; i++) {
			free(atomic_load(&B.clients[i].fan));
			atomic_store(&B.clients[i].fan, NULL);
		}
	free(bs_room_tab);
	bs_room_tab = NULL;
	if (loaded)
		scn_free(&S);
	loaded = false;
}

/* ---- the timer heap ----------------------------------------------------------- */

static void heap_push(struct bs_thread *b, uint64_t when, uint32_t idx)
{
	uint32_t i;

	if (b->nheap == b->capheap) {
		uint32_t cap = b->capheap ? 2 * b->capheap : 1024;
		struct heap_ent *h = realloc(b->heap, cap * sizeof(*h));
		if (!h)
			abort();     /* a lost wake-up would hang a user: fail loudly */
		b->heap = h;
		b->capheap = cap;
	}
	i = b->nheap++;
	while (i && b->heap[(i - 1) / 2].when > when) {
		b->heap[i] = b->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	b->heap[i] = (struct heap_ent){ when, idx };
}

static struct heap_ent heap_pop(struct bs_thread *b)
{
	struct heap_ent top = b->heap[0], last = b->heap[--b->nheap];
	uint32_t i = 0;

	for (;;) {
		uint32_t k = 2 * i + 1;
		if (k >= b->nheap)
			break;
		if (k + 1 < b->nheap && b->heap[k + 1].when < b->heap[k].when)
			k++;
		if (b->heap[k].when >= last.when)
			break;
		b->heap[i] = b->heap[k];
		i = k;
	}
	if (b->nheap)
		b->heap[i] = last;
	return top;
}

/* Wake c at `when` (replaces its earlier wake-up) for what it waits for. */
void bs_wake_at(struct bthread *t, struct bclient *c, uint64_t when, int why)
{
	struct bs_user *u = c->bs;

	if (!when)
		when = 1;
	u->wait = (uint8_t)why;
	u->wake = when;
	heap_push(t->bs, when, c->idx);
}

void bs_wait_for(struct bclient *c, int why)
{
	c->bs->wait = (uint8_t)why;
	c->bs->wake = 0;
}

/* ---- users -------------------------------------------------------------------- */

static const struct scn_session *ses_of(const struct bs_user *u)
{
	return &S.sessions[u->session];
}

const struct scn_step *bs_step_of(const struct bs_user *u)
{
	return u->pc < ses_of(u)->nsteps ? &ses_of(u)->steps[u->pc] : NULL;
}

uint32_t bs_acct_of(uint64_t u)
{
	return (uint32_t)(S.users.count ? u % S.users.count : u);
}

void bs_out(struct bclient *c, const char *s, int n)
{
	if (n > 0)
		bc_out(c, s, (size_t)n);
}

void bs_fail(struct bthread *t, struct bclient *c, const char *cause)
{
	c->bs->step_cause = true;
	bc_fail(t, c, cause, NULL);
}

/* Barriers a user will never reach (it ended, or was never admitted) count as
 * reached, so that the others do not wait for it until the timeout. */
static void barriers_credit(uint32_t session, uint32_t from)
{
	const struct scn_session *ses = &S.sessions[session];

	for (uint32_t k = from; k < ses->nsteps; k++)
		if (ses->steps[k].op == SCN_BARRIER)
			atomic_fetch_add(&barrier_n[session][k], 1);
}

static void unpark(struct bs_user *u)
{
	if (u->parked) {
		u->parked = false;
		atomic_fetch_sub(&parked, 1);
	}
}

/* The user is over: its slot goes back to the thread (no connection left). */
static void user_end(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	unpark(u);
	bs_room_left(u);
	if (u->wait == W_BARRIER)
		t->bs->nbarrier--;
	if (!u->ending) {
		t->local.users_done++;
		t->local.sess_done[u->session]++;
	}
	barriers_credit(u->session, u->pc == UINT32_MAX ? 0 : u->pc + 1);
	if (c->flags & BF_INPROGRESS) {
		c->flags &= ~BF_INPROGRESS;
		atomic_fetch_sub_explicit(&t->g_inprogress, 1, memory_order_relaxed);
	}
	bc_set_online(t, c, false);   /* a resume's user is online between its connections */
	u->active = false;
	u->wake = 0;
	u->wait = W_NONE;
	atomic_store_explicit(&c->gen, UINT32_MAX, memory_order_relaxed);
	t->bs->free[t->bs->nfree++] = c->idx;
	bp_leave(&alive);
}

static void run(struct bthread *t, struct bclient *c);

static void finish_step(struct bthread *t, struct bclient *c);

/* The current step is complete: on to the next one. */
void bs_step_done(struct bthread *t, struct bclient *c)
{
	if (c->bs->ending)
		return;
	finish_step(t, c);
	run(t, c);
}

static void user_start(struct bthread *t, uint64_t un, uint32_t session, uint32_t phase,
		       uint64_t late)
{
	struct bs_thread *b = t->bs;
	struct bclient *c;
	struct bs_user *u;

	t->local.arrived++;
	t->local.arrived_ph[phase]++;
	t->local.sess_started[session]++;
	if (!bp_admit(&alive, max_users))
		goto rejected;
	if (!b->nfree) {
		bp_leave(&alive);
		goto rejected;
	}
	c = &B.clients[b->free[--b->nfree]];
	u = c->bs;
	memset(u, 0, offsetof(struct bs_user, due));   /* the atomics: senders may touch them */
	atomic_store_explicit(&u->due, 0, memory_order_relaxed);
	atomic_store_explicit(&u->got, 0, memory_order_relaxed);
	atomic_store_explicit(&u->due_ns, 0, memory_order_relaxed);
	u->u = un;
	u->session = session;
	u->active = true;
	u->room_idx = UINT32_MAX;
	u->pc = UINT32_MAX;
	atomic_store_explicit(&c->acct, bs_acct_of(un), memory_order_relaxed);
	atomic_store_explicit(&c->sess, (uint16_t)session, memory_order_relaxed);
	atomic_store_explicit(&c->gen, (uint32_t)un, memory_order_relaxed);
	/* BF_DIRTY and BF_READY say the slot is on a thread list: they stay with it */
	c->flags = BF_INPROGRESS | (c->flags & (BF_DIRTY | BF_READY));
	c->state = BC_NEW;
	atomic_store(&c->inflight, 0);
	atomic_fetch_add_explicit(&t->g_inprogress, 1, memory_order_relaxed);
	hist_record(&t->local.h_wait, late);
	u->pc = bp_next(ses_of(u)->steps, ses_of(u)->nsteps, &u->loops, UINT32_MAX, bench_now());
	run(t, c);
	return;
rejected:
	t->local.rejected++;
	bench_stats_cause(&t->local, "arrival:max-users", 1);
	barriers_credit(session, 0);
}

/* ---- connection steps ------------------------------------------------------------- */

static int do_connect(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;
	int tr = st->u.connect.transport != SCN_TR_DEFAULT ? st->u.connect.transport : -1;

	c->tmode = (uint8_t)(tr < 0 ? B.o.tls : tls_mode(tr));
	c->flags &= BF_INPROGRESS | BF_DIRTY | BF_READY;   /* the last two: list membership */
	c->nsd = 0;
	c->sasl_step = 0;
	c->retries = 0;
	c->sm_h = 0;
	smq_free(c->smq);
	c->smq = NULL;
	u->sf = 0;
	u->feat = 0;
	u->t_step = bench_now();
	bs_wait_for(c, W_SERVER);
	atomic_fetch_add_explicit(&t->g_live, 1, memory_order_relaxed);
	bt_connect(t, c);      /* may fail at once: bc_fail -> bs_failed */
	return 0;
}

/* ---- resume (XEP-0198 §5; see the file comment) ------------------------------------- */

static bool connection_open(const struct bclient *c);

static int do_resume(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	if (!connection_open(c))
		return 1;         /* (cannot happen: a lost connection ends the user) */
	if (!(u->sf & SF_SM) || !c->smq || !c->smq->resumable) {
		bs_fail(t, c, "resume:not-resumable");   /* <enabled/> granted none */
		return -1;
	}
	/* the abrupt end, as drop: no unavailable presence, no </stream:stream> */
	u->resuming = RS_DROP;
	c->flags |= BF_KEEP_SM;
	bt_keepalive(c, 0);
	bs_wait_for(c, W_CLOSE);
	bt_close(c);
	return 0;
}

/* The new connection, on the transport of the last one (c->tmode): the same
 * path as connect's, with the XEP-0198 state and the user's facts kept. */
static void resume_connect(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;
	uint64_t now = bench_now();

	u->resuming = RS_CONNECT;
	/* logged in already (counted): a failure from here on is the resume's */
	c->flags = BF_COUNTED | BF_KEEP_SM | (c->flags & (BF_DIRTY | BF_READY));
	c->nsd = 0;
	c->sasl_step = 0;
	c->retries = 0;
	u->t_step = now;
	bs_wake_at(t, c, now + (st->u.resume.timeout_ns ? st->u.resume.timeout_ns : bs_tmo), W_SERVER);
	atomic_fetch_add_explicit(&t->g_live, 1, memory_order_relaxed);
	bt_connect(t, c);      /* may fail at once: bc_fail -> bs_failed */
}

/* The old connection is gone (W_RELEASED under a resume step). */
static void resume_released(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;

	/* still online: its session waits on the server, messages to it too */
	bc_set_online(t, c, true);
	if (st->u.resume.offline_ns) {
		u->resuming = RS_OFFLINE;
		bs_wake_at(t, c, bench_now() + st->u.resume.offline_ns, W_RECONNECT);
		return;
	}
	resume_connect(t, c, st);
}

/* Features of the new connection: authenticate as the auth step did, then <resume/>. */
static void resume_features(struct bthread *t, struct bclient *c)
{
	static const uint8_t bit[] = { [MECH_SCRAM_SHA256] = FT_SHA256, [MECH_SCRAM_SHA1] = FT_SHA1,
				       [MECH_PLAIN] = FT_PLAIN };
	struct bs_user *u = c->bs;
	char cause[64];

	if (!(c->flags & BF_AUTHED)) {
		if (!(u->feat & bit[u->mech % 3])) {
			snprintf(cause, sizeof(cause), "sasl:mechanism-not-offered:%s", bc_mech_name(u->mech));
			bc_fail(t, c, cause, NULL);
			return;
		}
		bc_sasl_begin(t, c, u->mech);
		return;
	}
	if (!(u->feat & FT_SM)) {
		bs_fail(t, c, "resume:sm-not-offered");
		return;
	}
	bc_sm_resume(t, c);
}

/* <resumed/> (client.c has checked it and sent again what the server missed) or <failed/>. */
static void resume_answer(struct bthread *t, struct bclient *c, const struct xs_stanza *s)
{
	struct bs_user *u = c->bs;
	uint64_t now = bench_now();
	char cause[64];

	if (bs_streq(&s->local, "failed")) {
		snprintf(cause, sizeof(cause), "resume:failed:%.*s",
			 s->child_local.len ? (int)s->child_local.len : 9,
			 s->child_local.len ? s->child_local.p : "no-reason");
		bs_fail(t, c, cause);
		return;
	}
	if (!bs_streq(&s->local, "resumed") || (c->flags & BF_CLOSED) || c->state != BC_RESUME)
		return;
	hist_record(&t->local.h_resume, now - u->t_step);
	t->local.resumed++;
	u->resuming = RS_NONE;
	u->t_resumed = now;
	c->flags &= ~BF_KEEP_SM;
	bc_set_state(c, BC_ONLINE);
	if (B.o.keepalive > 0)
		bt_keepalive(c, now + (uint64_t)(B.o.keepalive * 1e9));
	bs_step_done(t, c);
}

int bs_features(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	uint64_t now = bench_now();

	u->feat = 0;
	if (memmem(p, len, ">PLAIN<", 7))
		u->feat |= FT_PLAIN;
	if (memmem(p, len, ">SCRAM-SHA-1<", 13))
		u->feat |= FT_SHA1;
	if (memmem(p, len, ">SCRAM-SHA-256<", 15))
		u->feat |= FT_SHA256;
	if (memmem(p, len, NS_BIND, strlen(NS_BIND)))
		u->feat |= FT_BIND;
	if (memmem(p, len, NS_SM, strlen(NS_SM)))
		u->feat |= FT_SM;
	bt_timer(c, 0);
	if (!st || u->wait != W_SERVER) {
		t->local.unexpected++;
		return 0;
	}
	if (st->op == SCN_RESUME && u->resuming == RS_CONNECT) {
		resume_features(t, c);
	} else if (st->op == SCN_CONNECT && !(u->sf & SF_OPEN)) {
		u->sf |= SF_OPEN;
		bs_step_done(t, c);
	} else if (st->op == SCN_AUTH && (c->flags & BF_AUTHED)) {
		u->sf |= SF_AUTHED;
		hist_record(&t->local.h_auth, now - u->t_step);
		bs_step_done(t, c);
	} else {
		t->local.unexpected++;
	}
	return (c->flags & BF_CLOSED) ? -1 : 0;
}

static int do_auth(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	static const int mech[] = { [SCN_MECH_SCRAM_SHA256] = MECH_SCRAM_SHA256,
				    [SCN_MECH_SCRAM_SHA1] = MECH_SCRAM_SHA1,
				    [SCN_MECH_PLAIN] = MECH_PLAIN };
	static const uint8_t bit[] = { [SCN_MECH_SCRAM_SHA256] = FT_SHA256,
				       [SCN_MECH_SCRAM_SHA1] = FT_SHA1, [SCN_MECH_PLAIN] = FT_PLAIN };
	int m = st->u.auth.mech;
	char cause[64];

	if (!(c->bs->feat & bit[m])) {
		snprintf(cause, sizeof(cause), "sasl:mechanism-not-offered:%s", bc_mech_name(mech[m]));
		bs_fail(t, c, cause);
		return -1;
	}
	c->bs->t_step = bench_now();
	c->bs->mech = (uint8_t)mech[m];
	bs_wait_for(c, W_SERVER);
	bc_sasl_begin(t, c, mech[m]);
	return 0;
}

static int do_bind(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	char res[SCN_MAX_STRING + 64], xml[SCN_MAX_STRING + 256];
	int n;

	if (!(c->bs->feat & FT_BIND)) {
		bs_fail(t, c, "bind-not-offered");
		return -1;
	}
	if (st->u.bind.resource &&
	    bs_expand(c, scn_str(&S, st->u.bind.resource), 0, res, sizeof(res)) > 0)
		n = snprintf(xml, sizeof(xml), "<iq type='set' id='sb'><bind xmlns='" NS_BIND
			     "'><resource>%s</resource></bind></iq>", res);
	else
		n = snprintf(xml, sizeof(xml), "<iq type='set' id='sb'><bind xmlns='" NS_BIND "'/></iq>");
	c->bs->t_step = bench_now();
	bs_wait_for(c, W_SERVER);
	bc_set_state(c, BC_BIND);
	bs_out(c, xml, n);
	return 0;
}

static int do_roster(struct bthread *t, struct bclient *c)
{
	static const char q[] = "<iq type='get' id='sr'><query xmlns='jabber:iq:roster'/></iq>";

	c->bs->t_step = bench_now();
	bs_wait_for(c, W_SERVER);
	bc_set_state(c, BC_ROSTER);
	bs_out(c, q, (int)sizeof(q) - 1);
	return 0;
}

static void do_presence(struct bclient *c, const struct scn_step *st)
{
	static const char *const shows[] = { "", "away", "chat", "dnd", "xa" };
	char xml[3 * SCN_MAX_STRING + 256], status[3 * SCN_MAX_STRING];
	const char *text = scn_str(&S, st->u.presence.status);
	size_t sl = xml_escape(text, strlen(text), status, sizeof(status) - 1);
	int n;

	status[sl < sizeof(status) ? sl : 0] = '\0';
	if (!st->u.presence.show && !*text && !st->u.presence.priority) {
		bs_out(c, "<presence/>", 11);
		return;
	}
	n = snprintf(xml, sizeof(xml), "<presence>%s%s%s%s%s%s<priority>%d</priority></presence>",
		     st->u.presence.show ? "<show>" : "", shows[st->u.presence.show % 5],
		     st->u.presence.show ? "</show>" : "", *text ? "<status>" : "", status,
		     *text ? "</status>" : "", st->u.presence.priority);
	bs_out(c, xml, n);
}

static int do_sm(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	if (!(c->bs->feat & FT_SM)) {
		bs_fail(t, c, "sm:not-offered");
		return -1;
	}
	c->bs->t_step = bench_now();
	bs_wake_at(t, c, c->bs->t_step + bs_tmo, W_SERVER);
	bc_sm_enable(t, c, st->u.sm.resume);
	return 0;
}

void bs_sm(struct bthread *t, struct bclient *c, const struct xs_stanza *s)
{
	const struct scn_step *st = bs_step_of(c->bs);

	if (st && st->op == SCN_RESUME && c->bs->resuming == RS_CONNECT && c->bs->wait == W_SERVER) {
		resume_answer(t, c, s);
		return;
	}
	if (!st || st->op != SCN_SM || c->bs->wait != W_SERVER)
		return;
	if (bs_streq(&s->local, "enabled")) {
		c->bs->sf |= SF_SM;
		bs_step_done(t, c);
	} else if (bs_streq(&s->local, "failed")) {
		bs_fail(t, c, "sm:failed");
	}
}

static int do_ping(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	char xml[512];
	int n = snprintf(xml, sizeof(xml), "<iq type='get' id='sp' to='%s'><ping xmlns='urn:xmpp:ping'/>"
			 "</iq>", B.o.domain);
	uint64_t to = st->u.ping.timeout_ns ? st->u.ping.timeout_ns : bs_tmo;

	c->bs->t_step = bench_now();
	bs_wake_at(t, c, c->bs->t_step + to, W_SERVER);
	bs_out(c, xml, n);
	return 0;
}

int bs_publish_one(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	const char *pat = st->u.publish.node ? scn_str(&S, st->u.publish.node) : "urn:xmpp:bench:0";
	char node[SCN_MAX_STRING + 64], enode[3 * SCN_MAX_STRING + 200], to[400];
	int nl = bs_expand(c, pat, 0, node, sizeof(node));
	size_t el = nl > 0 ? xml_escape(node, (size_t)nl, enode, sizeof(enode) - 1) : sizeof(enode);
	size_t need = st->u.publish.body + sizeof(enode) + 1024;
	char *m = bs_msgbuf(t, need);
	int n;

	if (!m || el >= sizeof(enode)) {
		bs_fail(t, c, "publish:setup");
		return -1;
	}
	enode[el] = '\0';
	to[0] = '\0';
	if (st->u.publish.to == SCN_PUB_SERVICE)
		snprintf(to, sizeof(to), " to='%s'", pubsub_domain);
	n = snprintf(m, need, "<iq type='set' id='su'%s><pubsub xmlns='" NS_PUBSUB "'><publish "
		     "node='%s'><item id='i%llu-%u'><entry xmlns='urn:xmpp:bench:0'>", to, enode,
		     (unsigned long long)c->bs->u, c->bs->n);
	if (n < 0 || (size_t)n + st->u.publish.body + 64 > need)
		return -1;
	memset(m + n, 'x', st->u.publish.body);
	n += (int)st->u.publish.body;
	n += snprintf(m + n, need - (size_t)n, "</entry></item></publish></pubsub></iq>");
	c->bs->t_step = bench_now();
	bs_wake_at(t, c, c->bs->t_step + bs_tmo, W_SERVER);
	bs_out(c, m, n);
	return 0;
}

/* ---- the interpreter ------------------------------------------------------------------ */

static bool connection_open(const struct bclient *c)
{
	return c->state != BC_NEW && c->state != BC_DONE && !(c->flags & BF_CLOSED);
}

static uint64_t think_ns(struct bthread *t, const struct scn_step *st)
{
	double a = (double)st->u.think.a_ns, b = (double)st->u.think.b_ns;

	switch (st->u.think.dist) {
	case SCN_THINK_UNIFORM:
		return (uint64_t)(a + (b - a) * unif(t->bs));
	case SCN_THINK_EXP: {
		double d = -a * log(1 - unif(t->bs));
		return d > 3600e9 * 24 ? (uint64_t)(3600e9 * 24) : (uint64_t)d;
	}
	default:
		return (uint64_t)a;
	}
}

static void park(struct bclient *c)
{
	bs_wait_for(c, W_PARKED);
	if (!c->bs->parked) {
		c->bs->parked = true;
		atomic_fetch_add(&parked, 1);
	}
}

/* ---- drain --------------------------------------------------------------------------- */

/* One-way messages due to u that have not arrived (0 when none). */
static uint32_t undelivered(const struct bs_user *u)
{
	uint32_t d = atomic_load_explicit(&u->due, memory_order_relaxed);
	uint32_t g = atomic_load_explicit(&u->got, memory_order_relaxed);

	return (int32_t)(d - g) > 0 ? d - g : 0;
}

void bs_due(uint32_t p, uint64_t now)
{
	struct bs_user *u = B.clients[p].bs;
	uint64_t cur = atomic_load_explicit(&u->due_ns, memory_order_relaxed);

	atomic_fetch_add_explicit(&u->due, 1, memory_order_relaxed);
	while (cur < now && !atomic_compare_exchange_weak(&u->due_ns, &cur, now))
		;
}

/* The end of a stream the program closes (logout, or the program's end). */
static void leave(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	if (u->sf & SF_BOUND)    /* presence before binding is a stream error */
		bs_out(c, UNAVAILABLE, (int)sizeof(UNAVAILABLE) - 1);
	bs_room_left(u);
	u->room_len = 0;
	bs_wait_for(c, W_CLOSE);
	bc_goodbye(t, c);
}

/* Before a logout: while one-way messages sent to c have not arrived, and
 * for `drain` after the last of them was sent at most, c stays connected,
 * offline for the senders choosing peers (so that no new ones come); true
 * when it waits (W_DRAIN), false to log out now. */
static bool drain_hold(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;
	uint64_t until = atomic_load_explicit(&u->due_ns, memory_order_relaxed) + bs_ns_of(B.o.drain);

	if (!undelivered(u) || bench_now() >= until)
		return false;
	bc_set_online(t, c, false);
	bs_wake_at(t, c, until, W_DRAIN);
	return true;
}

void bs_got(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	atomic_store_explicit(&u->got, atomic_load_explicit(&u->got, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (u->wait == W_DRAIN && !undelivered(u) && atomic_load(&B.phase) < PH_CLOSE &&
	    c->state != BC_CLOSING && !(c->flags & BF_CLOSED))
		leave(t, c);
}

/* One-way messages due to the users alive now (controller: reads atomics only). */
static uint64_t due_alive(void)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < B.o.clients; i++) {
		const struct bclient *c = &B.clients[i];
		if (c->bs && atomic_load_explicit(&c->gen, memory_order_relaxed) != UINT32_MAX)
			n += undelivered(c->bs);
	}
	return n;
}

bool bs_drain_begin(uint64_t now)
{
	drain_t0 = drain_t1 = now;
	drain_due0 = drain_due1 = due_alive();
	return drain_due0 != 0 && B.o.drain > 0;
}

bool bs_drain_over(uint64_t now)
{
	drain_t1 = now;
	drain_due1 = due_alive();
	return !drain_due1 || now - drain_t0 >= bs_ns_of(B.o.drain);
}

/* ---- the interpreter, continued ------------------------------------------------------ */

/* Run one step: 1 done, 0 waiting, -1 failed (counted). */
static int exec(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;
	uint64_t now = bench_now();

	switch (st->op) {
	case SCN_CONNECT:
		return do_connect(t, c, st);
	case SCN_AUTH:
		return do_auth(t, c, st);
	case SCN_BIND:
		return do_bind(t, c, st);
	case SCN_ROSTER:
		return do_roster(t, c);
	case SCN_PRESENCE:
		do_presence(c, st);
		return 1;
	case SCN_SM:
		return do_sm(t, c, st);
	case SCN_CHAT:
		return bs_do_chat(t, c, st);
	case SCN_REPLY:
		u->n = 0;
		if (st->u.reply.duration_ns)
			bs_wake_at(t, c, now + st->u.reply.duration_ns, W_REPLY);
		else
			park(c);
		return 0;
	case SCN_WAIT:
		bs_wake_at(t, c, now + (st->u.wait.timeout_ns ? st->u.wait.timeout_ns : bs_tmo),
			W_SERVER);
		return 0;
	case SCN_PING:
		return do_ping(t, c, st);
	case SCN_JOIN:
		return bs_do_join(t, c, st);
	case SCN_GROUPCHAT:
		u->n = 0;
		u->gc_inflight = 0;
		u->next_due = st->u.send.rate > 0 ? bs_first_due(t, now, st->u.send.rate) : 0;
		u->until = st->u.send.duration_ns ? now + st->u.send.duration_ns : 0;
		bs_gc_window(now, st->u.send.duration_ns);
		return bs_gc_pump(t, c);
	case SCN_LEAVE: {
		char xml[512];
		bs_out(c, xml, snprintf(xml, sizeof(xml), "<presence to='%s' type='unavailable'/>", u->room));
		u->sf &= (uint8_t)~SF_ROOM;
		u->room_len = 0;
		bs_room_left(u);
		return 1;
	}
	case SCN_PUBLISH:
		u->n = 0;
		return bs_publish_one(t, c, st) < 0 ? -1 : 0;
	case SCN_IDLE:
		if (st->u.idle.duration_ns)
			bs_wake_at(t, c, now + st->u.idle.duration_ns, W_TIME);
		else
			park(c);
		return 0;
	case SCN_THINK:
		bs_wake_at(t, c, now + think_ns(t, st), W_TIME);
		return 0;
	case SCN_BARRIER: {
		uint64_t want = st->u.barrier.users ? st->u.barrier.users : sess_users[u->session];
		if (atomic_fetch_add(&barrier_n[u->session][u->pc], 1) + 1 >= want)
			return 1;
		t->bs->nbarrier++;
		bs_wake_at(t, c, now + st->u.barrier.timeout_ns, W_BARRIER);
		return 0;
	}
	case SCN_DROP:
		if (!connection_open(c))
			return 1;
		bc_set_online(t, c, false);
		bt_keepalive(c, 0);
		bs_room_left(u);
		u->room_len = 0;
		bs_wait_for(c, W_CLOSE);
		bt_close(c);
		return 0;
	case SCN_RESUME:
		return do_resume(t, c);
	case SCN_LOGOUT:
		if (!connection_open(c))
			return 1;
		if (!drain_hold(t, c))
			leave(t, c);
		return 0;
	default:    /* SCN_LOOP never reaches here */
		bs_fail(t, c, "step:not-supported");
		return -1;
	}
}

/* Leave the current step for the next one (no run). */
static void finish_step(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	unpark(u);
	if (!(c->flags & BF_CLOSED) && c->state != BC_CLOSING && c->deadline)
		bt_timer(c, 0);
	if (u->pc < ses_of(u)->nsteps && login_end[u->session][u->pc] && !(c->flags & BF_COUNTED) &&
	    connection_open(c))
		bc_logged_in(t, c);
	u->wait = W_NONE;
	u->wake = 0;
	u->pc = bp_next(ses_of(u)->steps, ses_of(u)->nsteps, &u->loops, u->pc, bench_now());
}

static void run(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;

	for (int k = 0; k < STEPS_PER_RUN; k++) {
		const struct scn_step *st;
		int r;
		if (u->ending || !u->active || atomic_load(&B.phase) >= PH_DRAIN)
			return;        /* the run's drain: nobody starts a step */
		st = bs_step_of(u);
		if (!st) {
			/* the program is over: close a stream left open, as logout does */
			if (connection_open(c)) {
				if (!drain_hold(t, c))
					leave(t, c);
			} else if (c->state == BC_NEW || c->state == BC_DONE) {
				user_end(t, c);
			}
			return;
		}
		r = exec(t, c, st);
		if (r != 1)
			return;
		finish_step(t, c);
	}
	bs_wake_at(t, c, bench_now(), W_RUN);   /* a long run of instant steps: yield */
}

/* The timer fired for what c waits for. */
static void on_wake(struct bthread *t, struct bclient *c, uint64_t now)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	int ph = atomic_load(&B.phase);

	if (u->wait == W_RELEASED) {
		if (u->ending || ph >= PH_CLOSE || !st) {
			if (ph >= PH_CLOSE && st && !u->parked)
				u->ending = true;      /* cut short by the run's end: not finished */
			user_end(t, c);
		} else if (st->op == SCN_DROP || st->op == SCN_LOGOUT) {
			bs_step_done(t, c);
		} else if (st->op == SCN_RESUME && u->resuming == RS_DROP) {
			resume_released(t, c, st);
		} else {
			/* closed under a step that did not close it, without a failure */
			bench_stats_cause(&t->local, "dropped:connection-lost", 1);
			t->local.dropped++;
			u->ending = true;
			user_end(t, c);
		}
		return;
	}
	if (u->wait == W_DRAIN) {
		/* a logout held for messages due (see drain_hold): their time is up */
		if (ph < PH_CLOSE && !u->ending && c->state != BC_CLOSING && !(c->flags & BF_CLOSED) &&
		    !drain_hold(t, c))
			leave(t, c);
		return;
	}
	if (ph >= PH_DRAIN || u->ending || !st)
		return;        /* the run's drain: waits end with it */
	switch (u->wait) {
	case W_RUN:
		u->wait = W_NONE;
		run(t, c);
		break;
	case W_TIME:
	case W_REPLY:
		bs_step_done(t, c);
		break;
	case W_SEND:
		if (st->op == SCN_CHAT) {
			if (u->await_seq && now - u->t_step >= bs_tmo) {
				bench_stats_cause(&t->local, "message:no-reply", 1);
				u->await_seq = 0;
			} else if (!st->u.send.wait_reply && st->u.send.rate <= 0 &&
				   atomic_load(&c->inflight) >= (int32_t)st->u.send.window) {
				if (now - u->next_due >= bs_tmo) {
					/* a full window for a whole timeout lost its messages: start again */
					atomic_store(&c->inflight, 0);
					t->local.window_timeouts++;
				} else if (!u->until || now < u->until) {
					uint64_t w = u->next_due + bs_tmo;
					bs_wake_at(t, c, u->until && u->until < w ? u->until : w, W_SEND);
					break;
				}
			}
			if (bs_chat_pump(t, c))
				bs_step_done(t, c);
		} else if (st->op == SCN_GROUPCHAT && bs_gc_pump(t, c)) {
			bs_step_done(t, c);
		}
		break;
	case W_SERVER: {
		char cause[64];
		snprintf(cause, sizeof(cause), "%s:timeout", st->op == SCN_SM ? "sm" :
			 st->op == SCN_RESUME ? "resume" :
			 st->op == SCN_PING ? "ping" : st->op == SCN_PUBLISH ? "publish" :
			 st->op == SCN_WAIT ? "wait" : "step");
		bs_fail(t, c, cause);
		break;
	}
	case W_BARRIER:
		t->bs->nbarrier--;
		bench_stats_cause(&t->local, "barrier:timeout", 1);
		bs_step_done(t, c);
		break;
	case W_JOIN_RETRY:
		bs_join_send(t, c, st);
		break;
	case W_RECONNECT:
		resume_connect(t, c, st);
		break;
	default:
		break;
	}
}

void bs_failed(struct bthread *t, struct bclient *c, const char *cause)
{
	struct bs_user *u = c->bs;
	char name[64];

	if (c->state == BC_CLOSING && !(u && u->step_cause))
		return;    /* our goodbye went wrong: the connection is closed all the same */
	if (u && u->resuming) {
		/* the resume's own cause, or what failed its reconnect, login or stream */
		snprintf(name, sizeof(name), "%s%s", strncmp(cause, "resume:", 7) ? "resume:" : "", cause);
		bench_stats_cause(&t->local, name, 1);
		u->resuming = RS_NONE;
		c->flags &= ~BF_KEEP_SM;   /* the release frees the XEP-0198 state */
	} else if (!(c->flags & BF_COUNTED)) {
		c->flags |= BF_COUNTED | BF_FAILED;
		bench_stats_cause(&t->local, cause, 1);
		t->local.failed++;
	} else if (u && u->step_cause) {
		bench_stats_cause(&t->local, cause, 1);
		if (!strncmp(cause, "join:", 5))
			t->local.join_failed++;
	} else if (c->state == BC_JOIN) {
		snprintf(name, sizeof(name), "join:%s", cause);
		bench_stats_cause(&t->local, name, 1);
		t->local.join_failed++;
	} else {
		snprintf(name, sizeof(name), "dropped:%s", cause);
		bench_stats_cause(&t->local, name, 1);
		t->local.dropped++;
	}
	if (u) {
		u->step_cause = false;
		u->ending = true;
		unpark(u);
		bs_room_left(u);
	}
}

void bs_released(struct bthread *t, struct bclient *c)
{
	if (c->bs && c->bs->active)
		bs_wake_at(t, c, bench_now(), W_RELEASED);
}

/* ---- the thread's loop --------------------------------------------------------------- */

int bs_thread_init(struct bthread *t)
{
	struct bs_thread *b = calloc(1, sizeof(*b));

	if (!b)
		return -1;
	t->bs = b;
	b->free = malloc((t->nclients + 1) * sizeof(*b->free));
	if (!b->free)
		return -1;
	for (uint32_t k = t->nclients; k-- > 0;) {
		struct bclient *c = &B.clients[t->id + (size_t)k * B.nthreads];
		c->bs = calloc(1, sizeof(*c->bs));
		if (!c->bs)
			return -1;
		if (has_groupchat) {
			struct bs_fan *f = calloc(FAN_RING, sizeof(*f));
			if (!f)
				return -1;
			atomic_store_explicit(&c->fan, f, memory_order_release);
		}
		atomic_store(&c->gen, UINT32_MAX);
		b->free[b->nfree++] = c->idx;
	}
	b->next_u = slice_i + (uint64_t)slice_n * (uint64_t)t->id;
	b->prel = snprintf(b->pre, sizeof(b->pre), "%u.", B.run_id);
	bp_wrr_init(&b->wrr, S.sessions, S.nsessions);
	b->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 7) ^ bench_now();
	return 0;
}

void bs_thread_exit(struct bthread *t)
{
	if (!t->bs)
		return;
	for (uint32_t k = 0; k < t->nclients; k++) {
		struct bclient *c = &B.clients[t->id + (size_t)k * B.nthreads];
		smq_free(c->smq);
		c->smq = NULL;
	}
	free(t->bs->heap);
	free(t->bs->free);
	free(t->bs->buf);
	free(t->bs);
	t->bs = NULL;
}

static void arrivals(struct bthread *t, uint64_t now, uint64_t *next)
{
	struct bs_thread *b = t->bs;
	unsigned conc = (B.o.concurrency + B.nthreads - 1) / B.nthreads, n = 0;

	while (b->next_u < plan.total && n < ARRIVALS_PER_TICK) {
		uint32_t ph;
		uint64_t at = B.t0 + bp_arrival(&plan, b->next_u, &ph);
		if (at > now) {
			if (at < *next)
				*next = at;
			break;
		}
		if (conc && atomic_load_explicit(&t->g_inprogress, memory_order_relaxed) >= conc) {
			b->conc_blocked = true;
			break;
		}
		if (b->conc_blocked) {
			b->conc_blocked = false;
			b->unblocked = now;
		}
		if (at < b->unblocked)
			t->local.waited++;         /* it was due while logins were at the bound */
		user_start(t, b->next_u, bp_wrr_at(&b->wrr, b->next_u), ph, now - at);
		b->next_u += (uint64_t)slice_n * B.nthreads;
		n++;
	}
	if (n == ARRIVALS_PER_TICK)
		*next = now;
	if (b->next_u >= plan.total && !b->arrivals_done) {
		b->arrivals_done = true;
		atomic_fetch_add(&arrivals_over, 1);
	}
}

static void barriers_check(struct bthread *t)
{
	for (uint32_t k = 0; k < t->nclients && t->bs->nbarrier; k++) {
		struct bclient *c = &B.clients[t->id + (size_t)k * B.nthreads];
		struct bs_user *u = c->bs;
		const struct scn_step *st;
		uint64_t want;
		if (!u->active || u->wait != W_BARRIER || !(st = bs_step_of(u)))
			continue;
		want = st->u.barrier.users ? st->u.barrier.users : sess_users[u->session];
		if (atomic_load(&barrier_n[u->session][u->pc]) >= want) {
			t->bs->nbarrier--;
			bs_step_done(t, c);
		}
	}
}

uint64_t bs_tick(struct bthread *t, uint64_t now)
{
	struct bs_thread *b = t->bs;
	uint64_t next = now + MAX_TICK_NS;
	int ph = atomic_load(&B.phase);

	if (ph >= PH_DRAIN && !b->arrivals_done) {
		b->arrivals_done = true;
		atomic_fetch_add(&arrivals_over, 1);
	}
	if (ph >= PH_CLOSE) {
		/* users between connections end now; the others when theirs closes */
		for (uint32_t k = 0; k < t->nclients; k++) {
			struct bclient *c = &B.clients[t->id + (size_t)k * B.nthreads];
			if (c->bs->active && (c->state == BC_NEW || c->state == BC_DONE) &&
			    c->bs->wait != W_RELEASED) {
				if (bs_step_of(c->bs) && !c->bs->parked)
					c->bs->ending = true;   /* cut short: not finished */
				user_end(t, c);
			}
		}
	} else if (ph < PH_DRAIN) {
		arrivals(t, now, &next);
	}
	/* closed-loop chat: senders whose window a receipt opened */
	for (uint32_t i = 0; i < t->nready; i++) {
		struct bclient *c = t->ready[i];
		struct bs_user *u = c->bs;
		const struct scn_step *st = bs_step_of(u);
		c->flags &= ~BF_READY;
		if (ph < PH_CLOSE && u->active && !u->ending && st && st->op == SCN_CHAT &&
		    u->wait == W_SEND && !st->u.send.wait_reply && st->u.send.rate <= 0 && bs_chat_pump(t, c))
			bs_step_done(t, c);
	}
	t->nready = 0;
	while (b->nheap && b->heap[0].when <= now) {
		struct heap_ent e = heap_pop(b);
		struct bclient *c = &B.clients[e.idx];
		if (!c->bs->active || c->bs->wake != e.when)
			continue;
		c->bs->wake = 0;
		on_wake(t, c, now);
	}
	if (b->nbarrier && ph < PH_DRAIN)
		barriers_check(t);
	if (b->nheap && b->heap[0].when < next)
		next = b->heap[0].when;
	if (b->conc_blocked && now + 1000000ull < next)
		next = now + 1000000ull;
	return next > now ? next - now : 0;
}

bool bs_finished(uint64_t now)
{
	if (S.duration_ns && now - B.t0 >= S.duration_ns)
		return true;
	return atomic_load(&arrivals_over) >= B.nthreads && atomic_load(&alive) <= atomic_load(&parked);
}

uint64_t bs_alive(void)
{
	return atomic_load(&alive);
}

uint64_t bs_planned(void)
{
	return my_total;
}

/* ---- the report's view of the run (steps_report.c) ---------------------------------- */

void bs_view(struct bs_view *v)
{
	*v = (struct bs_view){ .S = &S, .plan = &plan, .sess_users = sess_users, .my_total = my_total,
			       .max_users = max_users, .slice_i = slice_i, .slice_n = slice_n,
			       .drain_t0 = drain_t0, .drain_t1 = drain_t1, .drain_due0 = drain_due0,
			       .drain_due1 = drain_due1 };
}
