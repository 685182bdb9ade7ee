/*
 * muc — xedge-bench's muc scenario: --rooms R rooms of --room-size N
 * occupants (XEP-0045 group chat on --muc-domain), client i in room i / N
 * with the nickname n<i>.
 *
 * Joining (PH_JOIN, after every login): the room's first client (i % N == 0)
 * joins first, asking for no history (§7.2.14).  With --join-rate J the
 * threads together send at most J joins per second (B.joins_sent against
 * the time since PH_JOIN began): every join of an occupant costs the room a
 * presence to each occupant already there and their presences to it, so an
 * unpaced storm into large rooms is a burst of rooms * size^2 stanzas.  When its self-presence
 * (status 110) carries 201 the room was just created and is locked (§10.1.1):
 * it accepts the instant room (§10.1.2) and the room opens with the result;
 * without 201 (a server that creates rooms unlocked, or a room that exists)
 * it is open at once.  The room's other clients wait for it to open
 * (bench_room.open, BF_JOIN_WAIT) and then join; if the first client fails
 * before opening the room (its login, its join or the instant room), they
 * give up (join:room-never-opened, bench_room.failed).  A client is an occupant,
 * counted in joined with its join latency, at its own self-presence; an
 * error presence from the room is a join failure with its condition.
 *
 * Messages (PH_CHAT, open loop, --rate per occupant): a groupchat message to
 * the room whose id and body start with "g<run>.<sender>.<seq>.<send-ns>";
 * the service sends it to every occupant, the sender included (§7.4).  So
 * each message is expected room.joined times (counted at the send), each
 * copy received is a delivery (recv, h_msg; of a message sent inside the
 * measured window: recv_meas, h_msg_meas; received inside it, whenever sent:
 * recv_window, the rate and the CPU per delivery), and when the last expected copy arrives the
 * message is complete: h_last is the time from the send to that copy.
 *
 * Completion is tracked per sender in a ring of BM_RING slots (seq % BM_RING):
 * the sender's thread resets the slot when it sends (release on the seq tag),
 * the receivers' threads, any of them, check the tag (acquire), raise the
 * slot's max latency and count their copy; the one whose count reaches the
 * expected number reads the max (every other receiver raised it before
 * counting).  A copy whose slot was reused (it arrived BM_RING messages of
 * its sender late) counts as a delivery but not towards completion.
 */
#include "bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/xmlstage.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define BM_RING 256u        /* messages per sender tracked to completion */

struct bm_slot {
	_Atomic uint32_t seq;        /* the message of this slot (0: none yet) */
	_Atomic uint32_t count;      /* copies received */
	_Atomic uint64_t max_ns;     /* latest copy's latency so far */
	uint32_t expect;             /* written before seq is published */
	uint32_t pad;
};

static char marker[32];          /* ">g<run>." : the start of our bodies */
static size_t marker_len;
static _Thread_local char *mbuf;
static _Thread_local size_t mcap;

static uint32_t room_of(uint32_t idx)
{
	return idx / B.o.room_size;
}

int bm_init(void)
{
	const struct bench_opts *o = &B.o;

	B.rooms = calloc(o->rooms, sizeof(*B.rooms));
	if (!B.rooms)
		return -1;
	for (uint32_t i = 0; i < o->clients; i++) {
		B.clients[i].mring = calloc(BM_RING, sizeof(struct bm_slot));
		if (!B.clients[i].mring)
			return -1;
	}
	marker_len = (size_t)snprintf(marker, sizeof(marker), ">g%u.", B.run_id);
	return 0;
}

void bm_free(void)
{
	if (B.clients)
		for (uint32_t i = 0; i < B.o.clients; i++)
			free(B.clients[i].mring);
	free(B.rooms);
	B.rooms = NULL;
}

void bm_thread_exit(void)
{
	free(mbuf);
	mbuf = NULL;
	mcap = 0;
}

static void out_str(struct bclient *c, const char *s, int n)
{
	if (n > 0)
		bc_out(c, s, (size_t)n);
}

/* "m<run>r<k>@<muc-domain>" */
static int room_jid(char *out, size_t cap, uint32_t room)
{
	return snprintf(out, cap, "m%ur%u@%s", B.run_id, room, B.o.muc_domain);
}

static void join_send(struct bthread *t, struct bclient *c)
{
	char room[256], xml[512];
	int n;

	room_jid(room, sizeof(room), room_of(c->idx));
	n = snprintf(xml, sizeof(xml), "<presence to='%s/n%u'><x xmlns='" NS_MUC "'>"
		     "<history maxstanzas='0'/></x></presence>", room, c->idx);
	c->flags &= ~BF_JOIN_WAIT;
	c->t_stream = bench_now();      /* join latency from here */
	bc_set_state(c, BC_JOIN);       /* re-arms the step timer */
	out_str(c, xml, n);
}

void bm_join(struct bthread *t, struct bclient *c)
{
	bc_set_state(c, BC_JOIN);
	bt_timer(c, 0);                 /* a turn may take long: the join phase bounds it */
	c->flags |= BF_JOIN_WAIT;
	t->join_waiting++;
	t->join_scan = true;
}

/* One join of the --join-rate budget; always true without a rate. */
static bool join_token(uint64_t now)
{
	uint64_t allowed, start = atomic_load(&B.join_start_ns);

	if (B.o.join_rate <= 0)
		return true;
	allowed = (uint64_t)((double)(now - start) / 1e9 * B.o.join_rate) + 1;
	if (atomic_fetch_add(&B.joins_sent, 1) < allowed)
		return true;
	atomic_fetch_sub(&B.joins_sent, 1);
	return false;
}

void bm_join_tick(struct bthread *t, uint64_t now)
{
	uint32_t o = atomic_load(&B.rooms_opened);

	if (o != t->rooms_seen) {
		t->rooms_seen = o;
		t->join_scan = true;
	}
	if (!t->join_waiting || (!t->join_scan && B.o.join_rate <= 0))
		return;
	t->join_scan = false;
	for (uint32_t i = 0; i < t->nclients && t->join_waiting; i++) {
		struct bclient *c = &B.clients[t->id + (size_t)i * B.nthreads];
		if (!(c->flags & BF_JOIN_WAIT))
			continue;
		if ((c->flags & BF_CLOSED) || c->state != BC_JOIN) {
			c->flags &= ~BF_JOIN_WAIT;
			t->join_waiting--;
			continue;
		}
		if (c->idx % B.o.room_size != 0 &&
		    !atomic_load_explicit(&B.rooms[room_of(c->idx)].open, memory_order_acquire)) {
			if (atomic_load(&B.rooms[room_of(c->idx)].failed)) {
				c->flags &= ~BF_JOIN_WAIT;
				t->join_waiting--;
				bc_fail(t, c, "room-never-opened", NULL);
			}
			continue;
		}
		if (!join_token(now))
			return;
		t->join_waiting--;
		join_send(t, c);
	}
}

void bm_failed(struct bclient *c)
{
	struct bench_room *rm = &B.rooms[room_of(c->idx)];

	if (c->idx % B.o.room_size || atomic_load(&rm->open))
		return;
	atomic_store(&rm->failed, 1);
	atomic_fetch_add(&B.rooms_opened, 1);      /* the waiters look again */
}

static void room_open(uint32_t r)
{
	atomic_store_explicit(&B.rooms[r].open, 1, memory_order_release);
	atomic_fetch_add(&B.rooms_opened, 1);
}

static bool has(const uint8_t *p, size_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle)) != NULL;
}

bool bm_status(const uint8_t *p, size_t len, int code)
{
	char a[32], b[32];

	snprintf(a, sizeof(a), "code='%d'", code);
	snprintf(b, sizeof(b), "code=\"%d\"", code);
	return has(p, len, a) || has(p, len, b);
}

/* The defined condition of an error stanza (RFC 6120 §8.3.3): the first
 * element inside <error>, "error" when none is found. */
void bm_error_condition(const uint8_t *p, size_t len, char *out, size_t cap)
{
	const uint8_t *e = memmem(p, len, "<error", 6), *end = p + len, *q;
	size_t n = 0;

	snprintf(out, cap, "error");
	if (!e)
		return;
	q = memchr(e, '>', (size_t)(end - e));
	if (!q || ++q >= end)
		return;
	while (q < end && *q != '<')
		q++;
	if (q + 1 >= end)
		return;
	for (q++; q < end && n + 1 < cap && *q != ' ' && *q != '/' && *q != '>'; q++)
		out[n++] = (char)*q;
	out[n] = '\0';
}

static void joined(struct bthread *t, struct bclient *c)
{
	uint64_t now = bench_now();

	c->flags |= BF_JOINED | BF_SENDER;
	t->nsenders++;
	t->local.joined++;
	hist_record(&t->local.h_join, now - c->t_stream);
	atomic_fetch_add(&B.rooms[room_of(c->idx)].joined, 1);
	bc_set_state(c, BC_ONLINE);
}

static void on_presence(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
			const uint8_t *p, size_t len)
{
	char room[256], me[300], cond[48], cause[64], xml[512];
	int rl = room_jid(room, sizeof(room), room_of(c->idx));
	int ml = snprintf(me, sizeof(me), "%s/n%u", room, c->idx);

	if (s->from.len != (size_t)ml || memcmp(s->from.p, me, (size_t)ml) != 0)
		return;              /* another occupant's presence */
	if (s->type.len == 5 && !memcmp(s->type.p, "error", 5)) {
		bm_error_condition(p, len, cond, sizeof(cond));
		snprintf(cause, sizeof(cause), "muc-join:%s", cond);
		bc_fail(t, c, cause, NULL);
		return;
	}
	if (c->state != BC_JOIN || (c->flags & BF_JOIN_WAIT) || !bm_status(p, len, 110) || s->type.len)
		return;
	joined(t, c);
	if (!bm_status(p, len, 201)) {
		if (c->idx % B.o.room_size == 0)
			room_open(room_of(c->idx));
		return;
	}
	/* We created it, locked: accept the instant room (§10.1.2). */
	out_str(c, xml, snprintf(xml, sizeof(xml),
				 "<iq type='set' id='bm-instant' to='%.*s'><query xmlns='" NS_MUC
				 "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
				 rl, room));
}

bool bm_send(struct bthread *t, struct bclient *c)
{
	const struct bench_opts *o = &B.o;
	uint32_t r = room_of(c->idx);
	struct bm_slot *sl;
	char room[256];
	uint64_t now;
	int n, m;

	if (!mbuf) {
		mcap = o->body + 768 + strlen(o->muc_domain);
		mbuf = malloc(mcap);
		if (!mbuf)
			return false;
	}
	room_jid(room, sizeof(room), r);
	c->mseq++;
	if (!c->mseq)
		c->mseq = 1;              /* 0 marks an unused slot */
	sl = &c->mring[c->mseq % BM_RING];
	atomic_store_explicit(&sl->count, 0, memory_order_relaxed);
	atomic_store_explicit(&sl->max_ns, 0, memory_order_relaxed);
	sl->expect = atomic_load_explicit(&B.rooms[r].joined, memory_order_relaxed);
	atomic_store_explicit(&sl->seq, c->mseq, memory_order_release);
	now = bench_now();
	n = snprintf(mbuf, mcap, "<message to='%s' type='groupchat' id='g%u.%u.%u.%llu'><body>"
		     "g%u.%u.%u.%llu ", room, B.run_id, c->idx, c->mseq, (unsigned long long)now,
		     B.run_id, c->idx, c->mseq, (unsigned long long)now);
	if (n < 0 || (size_t)n + o->body + 32 > mcap)
		return false;
	m = n;
	while ((unsigned)(m - n) < o->body)
		mbuf[m++] = 'x';
	memcpy(mbuf + m, "</body></message>", 17);
	m += 17;
	bc_out(c, mbuf, (size_t)m);
	t->local.sent++;
	t->local.expected += sl->expect;
	if (now >= atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed) &&
	    now < atomic_load_explicit(&B.chat_end_ns, memory_order_relaxed)) {
		t->local.sent_meas++;
		t->local.expected_meas += sl->expect;
	}
	return true;
}

/* "g<run>.<sender>.<seq>.<ns>" right after the marker in the body; 0 or -1. */
static int body_id(const uint8_t *p, size_t len, uint32_t *sender, uint32_t *seq, uint64_t *ts)
{
	const uint8_t *m = memmem(p, len, marker, marker_len), *end = p + len;
	unsigned long long v[3];

	if (!m)
		return -1;
	m += marker_len;
	for (int i = 0; i < 3; i++) {
		unsigned long long x = 0;
		const uint8_t *d = m;
		while (m < end && *m >= '0' && *m <= '9' && m - d < 20)
			x = x * 10 + (unsigned)(*m++ - '0');
		if (m == d || m >= end || *m != (i < 2 ? '.' : ' '))
			return -1;
		m++;
		v[i] = x;
	}
	if (v[0] >= B.o.clients || v[1] > UINT32_MAX)
		return -1;
	*sender = (uint32_t)v[0];
	*seq = (uint32_t)v[1];
	*ts = v[2];
	return 0;
}

static void on_groupchat(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len)
{
	uint32_t si, seq, old;
	uint64_t ts, now = bench_now(), lat, cur;
	struct bm_slot *sl;
	bool meas;

	if (body_id(p, len, &si, &seq, &ts) < 0) {
		/* The room's subject (always sent at a join, §7.2.15) or a service notice. */
		if (!has(p, len, "<subject"))
			t->local.unexpected++;
		return;
	}
	if (room_of(si) != room_of(c->idx)) {
		t->local.misrouted++;
		return;
	}
	t->local.recv++;
	lat = ts <= now ? now - ts : 0;
	hist_record(&t->local.h_msg, lat);
	{
		uint64_t warm = atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed);
		uint64_t end = atomic_load_explicit(&B.chat_end_ns, memory_order_relaxed);
		meas = ts >= warm && ts < end;
		if (now >= warm && now < end)
			t->local.recv_window++;
	}
	if (meas) {
		t->local.recv_meas++;
		hist_record(&t->local.h_msg_meas, lat);
	}
	sl = &B.clients[si].mring[seq % BM_RING];
	if (atomic_load_explicit(&sl->seq, memory_order_acquire) != seq)
		return;               /* reused: see the file comment */
	cur = atomic_load_explicit(&sl->max_ns, memory_order_relaxed);
	while (cur < lat && !atomic_compare_exchange_weak(&sl->max_ns, &cur, lat))
		;
	old = atomic_fetch_add(&sl->count, 1);
	if (old + 1 != sl->expect)
		return;
	hist_record(&t->local.h_last, atomic_load(&sl->max_ns));
	if (meas)
		t->local.complete_meas++;
}

int bm_stanza(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
	      const uint8_t *p, size_t len)
{
	char cond[48], cause[64];

	if (s->local.len == 8 && !memcmp(s->local.p, "presence", 8)) {
		on_presence(t, c, s, p, len);
		return 1;
	}
	if (s->local.len == 7 && !memcmp(s->local.p, "message", 7) &&
	    s->type.len == 9 && !memcmp(s->type.p, "groupchat", 9)) {
		on_groupchat(t, c, p, len);
		return 1;
	}
	if (s->local.len == 2 && !memcmp(s->local.p, "iq", 2) &&
	    s->id.len == 10 && !memcmp(s->id.p, "bm-instant", 10)) {
		if (s->type.len == 6 && !memcmp(s->type.p, "result", 6)) {
			room_open(room_of(c->idx));
		} else {
			bm_error_condition(p, len, cond, sizeof(cond));
			snprintf(cause, sizeof(cause), "muc-instant:%s", cond);
			bc_fail(t, c, cause, NULL);
		}
		return 1;
	}
	return 0;
}
