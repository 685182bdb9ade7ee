/*
 * steps_msg — the scenario executor's messages (part of steps, bench/steps.c
 * has the executor's contract): the chat, groupchat and join steps, the rooms
 * counted for room_fanout, and every stanza the server sends a user
 * (bs_stanza: messages, room presences, and the iq answers of the steps
 * waiting for the server).  Runs on the thread of the user it is given.
 *
 * Messages.  Chat ids and bodies carry "s<run>.<kind>.<slot>.<gen>.<seq>.<ns>"
 * (gen: the sender's user number, so a message for an earlier user of a slot
 * is told apart).  kind "o": one-way, open loop; "w<W>": one-way, a closed
 * loop of W in flight (the receiver hands the sender back to its thread on
 * W -> W-1, as the chat scenario does); "q": waits for its answer.  The
 * receiver of a one-way message records its latency (message_rtt, as -s chat);
 * a user in a `reply` step answers every chat message of this run with the
 * same body and the id "r..." and the asker records the round trip
 * (message_rtt).  One-way messages sent after the warm-up that never arrive
 * are the errors "message:lost"; a question without an answer within the
 * timeout is "message:no-reply".  Group chat: "g<run>.<slot>.<gen>.<seq>.<ns>";
 * every copy the service sends, the sender's own included, is a delivery
 * recorded in message_rtt; a closed loop waits for the sender's own copy.
 *
 * room_fanout (send -> the last of our occupants' copies): the rooms our
 * users are in are counted in a table keyed by the room JID's hash
 * (occupants: joined minus left, atomics); a group-chat message records the
 * count when sent in the sender's ring of FAN_RING slots (seq % FAN_RING, as
 * muc.c does for -s muc), every receiver counts its copy there and raises
 * the latency, and the copy that completes the count records the fan-out.
 * Copies of a slot reused (FAN_RING messages later), or for an occupant that
 * left meanwhile, complete nothing.
 */
#include "bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/scenario.h"
#include "bench/steps_int.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define JOIN_RETRY_NS 100000000ull /* a room locked by its creator: try again */

/* ---- the measured window ------------------------------------------------------------ */

/* Message measurements (sent and received "measured", message_rtt, room_fanout)
 * start `warmup` after the first chat or groupchat step of the run starts, as -s
 * chat's start after its logins: B.warm_end_ns is UINT64_MAX until then, and the
 * first step to start sets it (compare-and-swap: every sender has seen it set
 * before its first message).  The window ends at the latest planned end of the
 * message steps with a duration (msg_end_ns); without one, at the run's end. */
static _Atomic uint64_t msg_end_ns;

static void msg_window(uint64_t now, uint64_t duration_ns)
{
	uint64_t unset = UINT64_MAX, end = now + duration_ns, cur;

	if (atomic_load(&B.warm_end_ns) == UINT64_MAX)
		atomic_compare_exchange_strong(&B.warm_end_ns, &unset,
					       now + (uint64_t)(B.o.warmup * 1e9));
	cur = atomic_load(&msg_end_ns);
	while (duration_ns && cur < end && !atomic_compare_exchange_weak(&msg_end_ns, &cur, end))
		;
}

/* An open loop's first message: at a random point of its first period, so that
 * the users a barrier releases together do not all send in step (-s chat spreads
 * its messages evenly over time: rate x users a second, not bursts of users). */
uint64_t bs_first_due(struct bthread *t, uint64_t now, double rate)
{
	uint64_t period = rate > 0 ? bs_ns_of(1 / rate) : 0;

	return period ? now + bs_rnd(t->bs) % period : now;
}

uint64_t bs_msg_window_end(void)
{
	return atomic_load(&msg_end_ns);
}

void bs_gc_window(uint64_t now, uint64_t duration_ns)
{
	msg_window(now, duration_ns);
}

/* ---- chat ------------------------------------------------------------------------ */

/* Slot p is another user, online now, of the session wanted (any when < 0). */
static bool peer_ok(const struct bclient *c, uint32_t p, int session)
{
	const struct bclient *q = &B.clients[p];

	return p != c->idx && atomic_load_explicit(&q->online, memory_order_acquire) &&
	       (session < 0 || atomic_load_explicit(&q->sess, memory_order_relaxed) == session);
}

/* A slot online now, of the session wanted (or any but ours); UINT32_MAX: none. */
static uint32_t sample_peer(struct bthread *t, struct bclient *c, int session)
{
	uint32_t n = B.o.clients;

	for (int tries = 0; tries < 64; tries++) {
		uint32_t p = (uint32_t)(bs_rnd(t->bs) % n);
		if (peer_ok(c, p, session))
			return p;
	}
	/* sparse: one pass from a random start */
	for (uint32_t k = 0, p = (uint32_t)(bs_rnd(t->bs) % n); k < n; k++, p = (p + 1) % n) {
		if (peer_ok(c, p, session))
			return p;
	}
	return UINT32_MAX;
}

static void peers_pick(struct bthread *t, struct bclient *c, const struct scn_send *m)
{
	struct bs_user *u = c->bs;
	int session = m->to == SCN_TO_SESSION ? m->to_session : -1;
	uint32_t want = m->peers ? m->peers : 1;

	if (want > BENCH_MAX_PEERS)
		want = BENCH_MAX_PEERS;
	u->npeers = 0;
	for (uint32_t tries = 0; u->npeers < want && tries < want * 4; tries++) {
		uint32_t p = sample_peer(t, c, session);
		bool dup = false;
		if (p == UINT32_MAX)
			break;
		for (uint32_t k = 0; k < u->npeers && !dup; k++)
			dup = u->peer[k] == p;
		if (dup)
			continue;
		u->peer[u->npeers] = p;
		u->peer_gen[u->npeers++] = atomic_load_explicit(&B.clients[p].gen, memory_order_relaxed);
	}
}

/* The account to write to and its slot (UINT32_MAX: not known, `to: peer`
 * names an account); false: nobody to write to now. */
static bool chat_target(struct bthread *t, struct bclient *c, const struct scn_send *m,
			uint32_t *acct, uint32_t *slot)
{
	struct bs_user *u = c->bs;

	*slot = UINT32_MAX;
	if (m->to == SCN_TO_SELF) {
		*acct = bs_acct_of(u->u);
		*slot = c->idx;
		return true;
	}
	if (m->to == SCN_TO_PEER) {
		*acct = bs_acct_of(u->u ^ 1);
		return true;
	}
	for (int round = 0; round < 2; round++) {
		for (uint32_t tries = 0; tries < u->npeers; tries++) {
			uint32_t k = (uint32_t)(bs_rnd(t->bs) % u->npeers);
			const struct bclient *q = &B.clients[u->peer[k]];
			if (atomic_load_explicit(&q->online, memory_order_acquire) &&
			    atomic_load_explicit(&q->gen, memory_order_relaxed) == u->peer_gen[k]) {
				*acct = atomic_load_explicit(&q->acct, memory_order_relaxed);
				*slot = u->peer[k];
				return true;
			}
		}
		peers_pick(t, c, m);    /* they left: choose again */
	}
	return false;
}

/* One chat message of kind ('o', 'w', 'q'); false when nobody could be addressed. */
static bool chat_send(struct bthread *t, struct bclient *c, const struct scn_send *m, char kind)
{
	struct bs_user *u = c->bs;
	size_t need = m->body + 512 + strlen(B.o.prefix) + strlen(B.o.domain);
	char *b = bs_msgbuf(t, need), k[16];
	uint32_t acct, slot;
	uint64_t now = bench_now();
	int n, x;

	if (!b)
		return false;
	if (!chat_target(t, c, m, &acct, &slot))
		return false;
	if (kind == 'w')
		snprintf(k, sizeof(k), "w%u", m->window);
	else
		snprintf(k, sizeof(k), "%c", kind);
	u->seq++;
	/* the body starts as -s chat's does (sender, seq, send time), so the two put the same
	 * bytes on the wire: the numbers are read from the id */
	n = snprintf(b, need, "<message to='%s%u@%s' type='chat' id='s%u.%s.%u.%u.%u.%llu'><body>"
		     "%u %u %llu ", B.o.prefix, B.o.offset + acct, B.o.domain, B.run_id, k,
		     c->idx, (uint32_t)u->u, u->seq, (unsigned long long)now, c->idx, u->seq,
		     (unsigned long long)now);
	if (n < 0 || (size_t)n + m->body + 32 > need)
		return false;
	x = n;
	memset(b + x, 'x', m->body);
	x += (int)m->body;
	memcpy(b + x, "</body></message>", 17);
	x += 17;
	bs_out(c, b, x);
	t->local.sent++;
	if (kind != 'q' && slot != UINT32_MAX)
		bs_due(slot, now);
	if (kind == 'q') {
		t->local.asked++;
		u->await_seq = u->seq;
	} else if (now >= atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed)) {
		t->local.sent_meas++;
	}
	return true;
}

/* Nobody to write to: look again in 100 ms, for a timeout since the last
 * message (or the step's start); then that message is the error
 * "message:no-peer" and the step goes on (true). */
static bool no_peer(struct bthread *t, struct bclient *c, uint64_t now)
{
	struct bs_user *u = c->bs;

	if (now - u->t_step < bs_tmo) {
		bs_wake_at(t, c, now + 100000000ull, W_SEND);
		return false;
	}
	bench_stats_cause(&t->local, "message:no-peer", 1);
	u->n++;
	u->t_step = now;
	u->next_due = now;
	return true;
}

/* Send what the chat step allows now: 1 the step is over, 0 it waits. */
int bs_chat_pump(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	const struct scn_send *m = &st->u.send;
	uint64_t now = bench_now();
	unsigned burst = 0;

	if (atomic_load(&B.phase) >= PH_DRAIN)
		return 0;      /* the run's drain: nothing more is sent (steps.c) */
	for (;;) {
		bool over = (m->count && u->n >= m->count) || (u->until && now >= u->until);
		if (m->wait_reply) {
			if (u->await_seq) {
				bs_wake_at(t, c, u->t_step + bs_tmo, W_SEND);
				return 0;
			}
			if (over)
				return 1;
			if (m->rate > 0 && now < u->next_due) {
				bs_wake_at(t, c, u->next_due, W_SEND);
				return 0;
			}
			if (!chat_send(t, c, m, 'q')) {
				if (no_peer(t, c, now))
					continue;
				return 0;
			}
			u->n++;
			u->next_due = (m->rate > 0 ? u->next_due : now) + bs_ns_of(1 / (m->rate > 0 ? m->rate : 1e9));
			u->t_step = now;
			continue;
		}
		if (over)
			return 1;
		if (m->rate > 0) {
			if (now < u->next_due || burst == 1000) {
				uint64_t w = burst == 1000 ? now : u->next_due;
				bs_wake_at(t, c, u->until && u->until < w ? u->until : w, W_SEND);
				return 0;
			}
			if (!chat_send(t, c, m, 'o')) {
				if (no_peer(t, c, now))
					continue;
				return 0;
			}
			u->next_due += bs_ns_of(1 / m->rate);
			u->n++;
			burst++;
			continue;
		}
		/* closed loop: at most window in flight (the CAS as in the chat scenario) */
		int32_t cur = atomic_load(&c->inflight);
		if (cur >= (int32_t)m->window) {
			/* one timer per user, not one per blocked episode: it checks the
			 * window at the step's end or a timeout after the window filled */
			uint64_t w = now + bs_tmo;
			u->next_due = now;      /* when the window filled */
			u->wait = W_SEND;
			if (!u->wake)
				bs_wake_at(t, c, u->until && u->until < w ? u->until : w, W_SEND);
			return 0;
		}
		if (!atomic_compare_exchange_weak(&c->inflight, &cur, cur + 1))
			continue;
		if (!chat_send(t, c, m, 'w')) {
			atomic_fetch_sub(&c->inflight, 1);
			if (no_peer(t, c, now))
				continue;
			return 0;
		}
		u->n++;
		if (++burst == 1000) {
			bs_wake_at(t, c, now, W_SEND);
			return 0;
		}
	}
}

int bs_do_chat(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;
	uint64_t now = bench_now();

	u->n = 0;
	u->await_seq = 0;
	u->until = st->u.send.duration_ns ? now + st->u.send.duration_ns : 0;
	u->next_due = bs_first_due(t, now, st->u.send.rate);
	u->t_step = now;
	msg_window(now, st->u.send.duration_ns);
	/* receipts of an earlier step's messages (seq below the floor) no longer count */
	atomic_store(&c->wfloor, u->seq + 1);
	atomic_store(&c->inflight, 0);
	if (st->u.send.to == SCN_TO_RANDOM || st->u.send.to == SCN_TO_SESSION)
		peers_pick(t, c, &st->u.send);
	return bs_chat_pump(t, c);
}

/* ---- group chat --------------------------------------------------------------------- */

static bool gc_send(struct bthread *t, struct bclient *c, const struct scn_send *m)
{
	struct bs_user *u = c->bs;
	size_t need = m->body + 1024;
	char *b = bs_msgbuf(t, need);
	uint64_t now = bench_now();
	int n;

	if (!b)
		return false;
	u->seq++;                      /* from 1: a ring slot's seq 0 means unused */
	{
		struct bs_fan *ring = atomic_load_explicit(&c->fan, memory_order_relaxed);
		if (ring && u->room_idx != UINT32_MAX) {
			struct bs_fan *sl = &ring[u->seq % FAN_RING];
			atomic_store_explicit(&sl->count, 0, memory_order_relaxed);
			atomic_store_explicit(&sl->max_ns, 0, memory_order_relaxed);
			atomic_store_explicit(&sl->expect,
					      atomic_load(&bs_room_tab[u->room_idx].occupants),
					      memory_order_relaxed);
			atomic_store_explicit(&sl->seq, u->seq, memory_order_release);
		}
	}
	n = snprintf(b, need, "<message to='%.*s' type='groupchat' id='g%u.%u.%u.%u.%llu'><body>"
		     "g%u.%u.%u.%u.%llu ", u->room_len, u->room, B.run_id, c->idx, (uint32_t)u->u,
		     u->seq, (unsigned long long)now, B.run_id, c->idx, (uint32_t)u->u, u->seq,
		     (unsigned long long)now);
	if (n < 0 || (size_t)n + m->body + 32 > need)
		return false;
	memset(b + n, 'x', m->body);
	n += (int)m->body;
	memcpy(b + n, "</body></message>", 17);
	n += 17;
	bs_out(c, b, n);
	t->local.gc_sent++;
	return true;
}

int bs_gc_pump(struct bthread *t, struct bclient *c)
{
	struct bs_user *u = c->bs;
	const struct scn_send *m = &bs_step_of(u)->u.send;
	uint64_t now = bench_now();
	unsigned burst = 0;

	if (atomic_load(&B.phase) >= PH_DRAIN)
		return 0;      /* the run's drain: nothing more is sent (steps.c) */
	for (;;) {
		if ((m->count && u->n >= m->count) || (u->until && now >= u->until)) {
			/* over: wait for our own copies still on their way (a timeout at most) */
			if (u->gc_inflight && now - u->t_step < bs_tmo) {
				bs_wake_at(t, c, u->t_step + bs_tmo, W_SEND);
				return 0;
			}
			u->gc_inflight = 0;
			return 1;
		}
		if (m->rate > 0) {
			if (now < u->next_due || burst == 1000) {
				uint64_t w = burst == 1000 ? now : u->next_due;
				bs_wake_at(t, c, u->until && u->until < w ? u->until : w, W_SEND);
				return 0;
			}
			u->next_due += bs_ns_of(1 / m->rate);
			u->gc_inflight++;
		} else if (u->gc_inflight >= m->window) {
			uint64_t w = u->next_due + bs_tmo;
			if (now - u->next_due >= bs_tmo) {
				/* our copies did not come back: start the window again */
				t->local.window_timeouts++;
				u->gc_inflight = 0;
				continue;
			}
			u->wait = W_SEND;
			if (!u->wake)    /* one timer, not one per message */
				bs_wake_at(t, c, u->until && u->until < w ? u->until : w, W_SEND);
			return 0;
		} else {
			u->gc_inflight++;
			u->next_due = now;
		}
		u->n++;
		burst++;
		u->t_step = now;
		gc_send(t, c, m);
		if (burst == 1000 && m->rate <= 0) {
			bs_wake_at(t, c, now, W_SEND);
			return 0;
		}
	}
}

/* ---- rooms ------------------------------------------------------------------------- */

/* The room's entry (found or taken), UINT32_MAX when the table is full. */
static uint32_t room_find(const char *jid, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)jid[i]) * 1099511628211ull;
	if (!h)
		h = 1;
	for (uint32_t k = 0, i = (uint32_t)h & (ROOMS_MAX - 1); k < ROOMS_MAX;
	     k++, i = (i + 1) & (ROOMS_MAX - 1)) {
		uint64_t cur = atomic_load(&bs_room_tab[i].hash), zero = 0;
		if (cur == h)
			return i;
		if (cur == 0 && (atomic_compare_exchange_strong(&bs_room_tab[i].hash, &zero, h) || zero == h))
			return i;
	}
	return UINT32_MAX;
}

/* c is no longer one of the room's occupants (left, dropped, failed, ended). */
void bs_room_left(struct bs_user *u)
{
	if (u->room_idx != UINT32_MAX && bs_room_tab)
		atomic_fetch_sub(&bs_room_tab[u->room_idx].occupants, 1);
	u->room_idx = UINT32_MAX;
}

int bs_join_send(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	struct bs_user *u = c->bs;
	char room[SCN_MAX_STRING + 64], nick[SCN_MAX_STRING + 64], xml[1024];
	uint32_t rooms = st->u.join.rooms ? st->u.join.rooms : 1;
	uint32_t rn = st->u.join.per_room ? (uint32_t)((u->u / st->u.join.per_room) % rooms) :
		      (uint32_t)(u->u % rooms);
	int rl = bs_expand(c, scn_str(B.scn, st->u.join.room), rn, room, sizeof(room));
	int nl = bs_expand(c, st->u.join.nick ? scn_str(B.scn, st->u.join.nick) : "{user}", rn, nick,
			sizeof(nick));
	int n;

	if (rl <= 0 || nl <= 0 ||
	    (n = snprintf(u->room, sizeof(u->room), "%s@%s/%s", room, B.o.muc_domain, nick)) < 0 ||
	    (size_t)n >= sizeof(u->room)) {
		bs_fail(t, c, "join:room-name-too-long");
		return -1;
	}
	u->room_len = (uint16_t)(rl + 1 + strlen(B.o.muc_domain));
	n = snprintf(xml, sizeof(xml), "<presence to='%s'><x xmlns='" NS_MUC "'><history "
		     "maxstanzas='%u'/></x></presence>", u->room, st->u.join.history);
	bs_wait_for(c, W_SERVER);
	bs_out(c, xml, n);
	return 0;
}

int bs_do_join(struct bthread *t, struct bclient *c, const struct scn_step *st)
{
	c->bs->t_step = bench_now();
	bc_set_state(c, BC_JOIN);      /* the step timer bounds the join, retries included */
	return bs_join_send(t, c, st);
}

static void on_room_presence(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
			     const uint8_t *p, size_t len)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	size_t full = strlen(u->room);
	char cond[48], cause[96], xml[512];
	int n;

	if (!st || st->op != SCN_JOIN || u->wait != W_SERVER || s->from.len != full ||
	    memcmp(s->from.p, u->room, full) != 0)
		return;                 /* another occupant, or the room after we left */
	if (bs_streq(&s->type, "error")) {
		bm_error_condition(p, len, cond, sizeof(cond));
		if (!strcmp(cond, "item-not-found")) {
			/* locked: its creator has not configured it yet (XEP-0045 §10.1.1) */
			bs_wake_at(t, c, bench_now() + JOIN_RETRY_NS, W_JOIN_RETRY);
			return;
		}
		snprintf(cause, sizeof(cause), "join:%s", cond);
		bs_fail(t, c, cause);
		return;
	}
	if (s->type.len || !bm_status(p, len, 110))
		return;
	t->local.joined++;
	hist_record(&t->local.h_join, bench_now() - u->t_step);
	u->sf |= SF_ROOM;
	if (bs_room_tab && u->room_idx == UINT32_MAX &&
	    (u->room_idx = room_find(u->room, u->room_len)) != UINT32_MAX)
		atomic_fetch_add(&bs_room_tab[u->room_idx].occupants, 1);
	if (bm_status(p, len, 201)) {
		/* we created it, locked: accept the instant room (§10.1.2); the step
		 * ends with the result, when the room takes messages and occupants */
		n = snprintf(xml, sizeof(xml), "<iq type='set' id='si' to='%.*s'><query xmlns='" NS_MUC
			     "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
			     u->room_len, u->room);
		bs_out(c, xml, n);
		return;
	}
	bc_set_state(c, BC_ONLINE);
	bs_step_done(t, c);
}

/* ---- messages received --------------------------------------------------------------- */

/* "<kind>.<slot>.<gen>.<seq>.<ns>" after "s<run>." or "r<run>."; kind 'o', 'q' or 'w' (W). */
static int chat_id(const struct bs_thread *b, const struct xs_str *id, char *kind, uint32_t *w,
		   uint32_t *slot, uint32_t *gen, uint32_t *seq, uint64_t *ts)
{
	char buf[128];
	const char *pre = b->pre;
	int pl = b->prel;
	const char *p;
	char *end;
	unsigned long long v[4];

	if (id->len < 2 || id->len >= sizeof(buf))
		return -1;
	memcpy(buf, id->p, id->len);
	buf[id->len] = '\0';
	if (strncmp(buf + 1, pre, (size_t)pl))
		return -1;
	p = buf + 1 + pl;
	*kind = *p++;
	*w = 0;
	if (*kind == 'w') {
		*w = (uint32_t)strtoul(p, &end, 10);
		p = end;
	} else if (*kind != 'o' && *kind != 'q') {
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		if (*p != '.' || p[1] < '0' || p[1] > '9')
			return -1;
		v[i] = strtoull(p + 1, &end, 10);
		p = end;
	}
	*ts = v[3];
	if (*end || v[0] >= B.o.clients || v[1] > UINT32_MAX || v[2] > UINT32_MAX)
		return -1;
	*slot = (uint32_t)v[0];
	*gen = (uint32_t)v[1];
	*seq = (uint32_t)v[2];
	return 0;
}

static void reply_send(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
		       const uint8_t *p, size_t len)
{
	const uint8_t *b = memmem(p, len, "<body>", 6), *e;
	char to[1024], *m;
	size_t tl = xml_escape(s->from.p, s->from.len, to, sizeof(to) - 1), bl;
	int n;

	if (!b || tl >= sizeof(to) || !s->from.len)
		return;
	b += 6;
	e = memmem(b, (size_t)(p + len - b), "</body>", 7);
	if (!e)
		return;
	bl = (size_t)(e - b);
	m = bs_msgbuf(t, bl + tl + s->id.len + 256);
	if (!m)
		return;
	to[tl] = '\0';
	n = snprintf(m, bl + tl + s->id.len + 256, "<message to='%s' type='chat' id='r%.*s'><body>",
		     to, (int)s->id.len - 1, s->id.p + 1);
	memcpy(m + n, b, bl);
	n += (int)bl;
	memcpy(m + n, "</body></message>", 17);
	bs_out(c, m, n + 17);
	t->local.replies++;
}

static void on_chat(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
		    const uint8_t *p, size_t len)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	uint32_t w, slot, gen, seq;
	uint64_t ts, now = bench_now();
	uint64_t warm = atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed);
	char kind;

	if (chat_id(t->bs, &s->id, &kind, &w, &slot, &gen, &seq, &ts) < 0 || bs_streq(&s->type, "error")) {
		t->local.unexpected++;
		return;
	}
	if (s->id.p[0] == 'r') {
		/* an answer: ours if it is the question we wait for */
		if (slot == c->idx && gen == (uint32_t)u->u && seq == u->await_seq && st &&
		    st->op == SCN_CHAT && u->wait == W_SEND) {
			u->await_seq = 0;
			t->local.answered++;
			if (ts <= now) {
				hist_record(&t->local.h_msg, now - ts);
				if (ts >= warm)
					hist_record(&t->local.h_msg_meas, now - ts);
			}
			if (bs_chat_pump(t, c))
				bs_step_done(t, c);
		} else {
			t->local.unexpected++;    /* late, after its no-reply */
		}
		return;
	}
	t->local.recv++;
	if (u->t_resumed && ts < u->t_resumed)
		t->local.resume_recv++;     /* held by the server while we were away (resume step) */
	if (kind != 'q') {
		if (ts <= now)
			hist_record(&t->local.h_msg, now - ts);
		if (ts >= warm) {
			t->local.recv_meas++;
			if (ts <= now)
				hist_record(&t->local.h_msg_meas, now - ts);
		}
	}
	if (kind == 'w') {
		struct bclient *sender = &B.clients[slot];
		if (atomic_load_explicit(&sender->gen, memory_order_relaxed) == gen &&
		    seq >= atomic_load(&sender->wfloor)) {
			int32_t old = atomic_fetch_sub(&sender->inflight, 1);
			if (old <= 0)
				atomic_fetch_add(&sender->inflight, 1);   /* after a window reset */
			else if (old == (int32_t)w)
				bt_ready(t, sender);
		}
	}
	if (st && st->op == SCN_REPLY && u->wait != W_NONE) {
		reply_send(t, c, s, p, len);
		u->n++;
		if (st->u.reply.count && u->n >= st->u.reply.count)
			bs_step_done(t, c);
	}
	if (kind != 'q')
		bs_got(t, c);     /* last: it may log the user out */
}

static void on_groupchat(struct bthread *t, struct bclient *c, const struct xs_stanza *s)
{
	struct bs_user *u = c->bs;
	char pre[24], buf[128], *end;
	int pl = snprintf(pre, sizeof(pre), "g%u.", B.run_id);
	unsigned long long v[4];
	const char *q;
	uint64_t now = bench_now(), warm = atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed);

	if (s->id.len >= sizeof(buf) || s->id.len <= (size_t)pl || memcmp(s->id.p, pre, (size_t)pl)) {
		t->local.unexpected += 0;    /* the subject, history, another client's message */
		return;
	}
	memcpy(buf, s->id.p, s->id.len);
	buf[s->id.len] = '\0';
	q = buf + pl - 1;
	for (int i = 0; i < 4; i++) {
		if (*q != '.' || q[1] < '0' || q[1] > '9') {
			t->local.unexpected++;
			return;
		}
		v[i] = strtoull(q + 1, &end, 10);
		q = end;
	}
	if (*q) {
		t->local.unexpected++;
		return;
	}
	t->local.gc_recv++;
	if (v[3] <= now) {
		hist_record(&t->local.h_msg, now - v[3]);
		if (v[3] >= warm)
			hist_record(&t->local.h_msg_meas, now - v[3]);
	}
	if (v[0] < B.o.clients && v[2] <= UINT32_MAX) {
		/* room_fanout: count our copy in the sender's ring (see the file comment) */
		const struct bclient *sender = &B.clients[v[0]];
		struct bs_fan *ring = atomic_load_explicit(&sender->fan, memory_order_acquire);
		uint64_t lat = v[3] <= now ? now - v[3] : 0, cur;
		if (ring && atomic_load_explicit(&sender->gen, memory_order_relaxed) == v[1]) {
			struct bs_fan *sl = &ring[v[2] % FAN_RING];
			if (atomic_load_explicit(&sl->seq, memory_order_acquire) == v[2]) {
				cur = atomic_load_explicit(&sl->max_ns, memory_order_relaxed);
				while (cur < lat && !atomic_compare_exchange_weak(&sl->max_ns, &cur, lat))
					;
				if (atomic_fetch_add(&sl->count, 1) + 1 == atomic_load(&sl->expect) &&
				    v[3] >= warm)
					hist_record(&t->local.h_last, atomic_load(&sl->max_ns));
			}
		}
	}
	if (v[0] == c->idx && v[1] == (uint32_t)u->u && u->gc_inflight) {
		const struct scn_step *st = bs_step_of(u);
		u->gc_inflight--;
		if (st && st->op == SCN_GROUPCHAT && u->wait == W_SEND && bs_gc_pump(t, c))
			bs_step_done(t, c);
	}
}

/* The answer to the step's request: true with its latency recorded in h (if
 * any), or false with the user failed ("prefix:condition"). */
static bool answered(struct bthread *t, struct bclient *c, bool ok, const uint8_t *p, size_t len,
		     const char *prefix, struct hist *h)
{
	char cond[48], cause[96];

	if (ok) {
		if (h)
			hist_record(h, bench_now() - c->bs->t_step);
		return true;
	}
	bm_error_condition(p, len, cond, sizeof(cond));
	snprintf(cause, sizeof(cause), "%s:%s", prefix, cond);
	bs_fail(t, c, cause);
	return false;
}

static void on_iq(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
		  const uint8_t *p, size_t len)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);
	bool ok = bs_streq(&s->type, "result");

	if (bs_streq(&s->id, "si")) {
		if (!st || st->op != SCN_JOIN || u->wait != W_SERVER) {
			t->local.unexpected++;
		} else if (answered(t, c, ok, p, len, "join:instant-room", NULL)) {
			bc_set_state(c, BC_ONLINE);
			bs_step_done(t, c);
		}
		return;
	}
	if (!st || u->wait != W_SERVER) {
		t->local.unexpected++;
		return;
	}
	if (st->op == SCN_BIND && bs_streq(&s->id, "sb")) {
		if (answered(t, c, ok, p, len, "bind-error", &t->local.h_bind)) {
			u->sf |= SF_BOUND;
			bs_step_done(t, c);
		}
	} else if (st->op == SCN_ROSTER && bs_streq(&s->id, "sr")) {
		if (answered(t, c, ok, p, len, "roster-error", &t->local.h_roster))
			bs_step_done(t, c);
	} else if (st->op == SCN_PING && bs_streq(&s->id, "sp")) {
		if (answered(t, c, ok, p, len, "ping", &t->local.h_ping)) {
			t->local.pings++;
			bs_step_done(t, c);
		}
	} else if (st->op == SCN_PUBLISH && bs_streq(&s->id, "su")) {
		if (!answered(t, c, ok, p, len, "publish", &t->local.h_publish))
			return;
		t->local.published++;
		if (++u->n < st->u.publish.items)
			bs_publish_one(t, c, st);
		else
			bs_step_done(t, c);
	} else {
		t->local.unexpected++;
	}
}

int bs_stanza(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
	      const uint8_t *p, size_t len)
{
	struct bs_user *u = c->bs;
	const struct scn_step *st = bs_step_of(u);

	if (bs_streq(&s->local, "iq")) {
		on_iq(t, c, s, p, len);
	} else if (bs_streq(&s->local, "message")) {
		if (bs_streq(&s->type, "groupchat"))
			on_groupchat(t, c, s);
		else if (bs_starts(&s->id, "s") || bs_starts(&s->id, "r"))
			on_chat(t, c, s, p, len);
		else
			t->local.unexpected++;
		if (!(c->flags & BF_CLOSED) && st == bs_step_of(u) && st && st->op == SCN_WAIT &&
		    st->u.wait.what == SCN_WAIT_MESSAGE && u->wait == W_SERVER)
			bs_step_done(t, c);
	} else if (bs_streq(&s->local, "presence")) {
		if (u->room_len && s->from.len > u->room_len &&
		    !memcmp(s->from.p, u->room, u->room_len) && s->from.p[u->room_len] == '/')
			on_room_presence(t, c, s, p, len);
		if (!(c->flags & BF_CLOSED) && st == bs_step_of(u) && st && st->op == SCN_WAIT &&
		    st->u.wait.what == SCN_WAIT_PRESENCE && u->wait == W_SERVER)
			bs_step_done(t, c);
	} else {
		t->local.unexpected++;
	}
	return (c->flags & BF_CLOSED) ? -1 : 0;
}

/* ---- text helpers ---------------------------------------------------------------- */

bool bs_streq(const struct xs_str *s, const char *lit)
{
	return s->len == strlen(lit) && memcmp(s->p, lit, s->len) == 0;
}

bool bs_starts(const struct xs_str *s, const char *lit)
{
	return s->len >= strlen(lit) && memcmp(s->p, lit, strlen(lit)) == 0;
}

/* A pattern's placeholders {n} {i} {user} {run}; -1 when it does not fit. */
int bs_expand(struct bclient *c, const char *pat, uint32_t room_n, char *outp, size_t cap)
{
	size_t n = 0;
	char tmp[64];

	while (*pat) {
		const char *v = NULL;
		size_t skip = 1;
		if (!strncmp(pat, "{n}", 3)) {
			snprintf(tmp, sizeof(tmp), "%u", room_n);
			v = tmp, skip = 3;
		} else if (!strncmp(pat, "{i}", 3)) {
			snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)c->bs->u);
			v = tmp, skip = 3;
		} else if (!strncmp(pat, "{user}", 6)) {
			bc_user(c, tmp, sizeof(tmp));
			v = tmp, skip = 6;
		} else if (!strncmp(pat, "{run}", 5)) {
			snprintf(tmp, sizeof(tmp), "%u", B.run_id);
			v = tmp, skip = 5;
		}
		if (v) {
			size_t l = strlen(v);
			if (n + l >= cap)
				return -1;
			memcpy(outp + n, v, l);
			n += l;
		} else {
			if (n + 1 >= cap)
				return -1;
			outp[n++] = *pat;
		}
		pat += skip;
	}
	outp[n] = '\0';
	return (int)n;
}

/* The thread's message buffer, at least need bytes. */
char *bs_msgbuf(struct bthread *t, size_t need)
{
	struct bs_thread *b = t->bs;

	if (b->cap < need) {
		char *p = realloc(b->buf, need);
		if (!p)
			return NULL;
		b->buf = p;
		b->cap = need;
	}
	return b->buf;
}
