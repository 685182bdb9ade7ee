/*
 * thread — one xedge-bench client thread: an io_uring ring and the clients it
 * owns (idx % nthreads == id).  The io_uring idioms are the edge's
 * (core/worker.c): SINGLE_ISSUER | DEFER_TASKRUN, sockets as direct
 * descriptors, one multishot recv per client from a provided-buffer ring, at
 * most one send in flight per socket, user_data = client index << 8 | op,
 * and a close that cancels the client's in-flight operations and closes the
 * slot, which is reused only after its last completion (refs == 0).  A
 * close with BF_LINGER (a WebSocket failed by a frame: its close frame must
 * go out first) is the same, except that the queued bytes are sent before
 * the slot closes, bounded by the step timeout; the client is closed for
 * everyone above from the start (BF_CLOSED).
 *
 * Sockets: liburing 2.3 has no prep_bind and setsockopt needs a real
 * descriptor, so a client socket is made by sock_outbound() (core/sock.c,
 * the edge's outbound connections use it too): socket(2), TCP_NODELAY
 * and, with --sources, IP_BIND_ADDRESS_NO_PORT + bind(2) to its source
 * address (the port is then chosen at connect time, per destination), and is
 * installed into a free slot of the ring's registered-file table with
 * io_uring_register_files_update(); the plain descriptor is closed right
 * away.  Each socket also gets its own 16-port window of the ephemeral range
 * (IP_LOCAL_PORT_RANGE, Linux 6.3+; ignored where unsupported), client j of
 * a source address starting at port lo + j: without it connect() searches
 * the shared range, and once half of it is taken that search made the
 * kernel, not the bench's code, the bottleneck (2,600 connects/s at 2 cores
 * busy instead of tens of thousands).  So a connected client uses no slot of the process fd table (20,000
 * at most, DESIGN §3); each ring's table is capped by RLIMIT_NOFILE too, so
 * the controller spreads clients over enough rings.  Cost: five syscalls per
 * connection, irrelevant at the rates a handshake allows.
 *
 * Timers: every step of a client has the same timeout, so deadlines are
 * appended in increasing order and a FIFO list is a sorted timer queue
 * (O(1) insert and removal).  Keepalives likewise share one interval.
 * A scenario file's own times (think, idle, pacing, step deadlines of their
 * own length) are in the executor's heap (steps.c); bs_tick runs it and the
 * arrivals, and says how long the loop may sleep.
 *
 * Chat wakeups across threads (closed loop): a receiver that opens a
 * sender's window (inflight W -> W-1) hands the sender to its owner through
 * the owner's single-producer ring for this thread, and wakes the owner with
 * IORING_OP_MSG_RING only when the owner says it is asleep (the asleep flag
 * is set before waiting and the rings are checked after setting it, so a
 * handover is never missed).  Each blocked episode enqueues a sender once:
 * only the W -> W-1 transition enqueues, and a sender blocks again only
 * after its owner dequeued it, so a ring sized to the owner's clients never
 * overflows.
 */
#include "bench/bench.h"
#include "core/uring_compat.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench/scram_client.h"
#include "core/sock.h"
#include "core/thread_ring.h"
#include "parser/xmlstage.h"

enum { OP_NONE = 0, OP_CONNECT, OP_RECV, OP_SEND, OP_CANCEL, OP_CLOSE, OP_WAKE };
#define UD(idx, op) (((uint64_t)(idx) << 8) | (uint64_t)(op))
#define UD_IDX(ud) ((uint32_t)((ud) >> 8))
#define UD_OP(ud) ((int)((ud) & 0xff))

#define BGID 1
#define RECV_BUFS 512                /* 8 MiB per thread: sized for bursts */
#define RECV_BUFS_TOTAL 2048         /* many threads: 32 MiB for the process, at least ... */
#define RECV_BUFS_MIN 128            /* ... 2 MiB per thread */
#define RECV_BUF_SIZE 16384
#define OUT_LIMIT (16u << 20)        /* queued output per client: a stuck server */
#define STARTS_PER_LOOP 512          /* new connections per loop iteration at most */
#define PUBLISH_NS 100000000ull      /* hand counters to the controller every 100 ms */

static struct io_uring_sqe *get_sqe(struct bthread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe) {
		/* SQ full: push what we have to the kernel and retry once. */
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;
}

/* ---- timers -------------------------------------------------------------- */

void bt_timer(struct bclient *c, uint64_t deadline)
{
	struct bthread *t = bc_thread(c);

	if (c->deadline) {
		if (c->tprev)
			c->tprev->tnext = c->tnext;
		else
			t->thead = c->tnext;
		if (c->tnext)
			c->tnext->tprev = c->tprev;
		else
			t->ttail = c->tprev;
		c->tnext = c->tprev = NULL;
	}
	c->deadline = deadline;
	if (!deadline)
		return;
	c->tprev = t->ttail;
	if (t->ttail)
		t->ttail->tnext = c;
	else
		t->thead = c;
	t->ttail = c;
}

void bt_keepalive(struct bclient *c, uint64_t due)
{
	struct bthread *t = bc_thread(c);

	if (c->ka_due) {
		if (c->kprev)
			c->kprev->knext = c->knext;
		else
			t->khead = c->knext;
		if (c->knext)
			c->knext->kprev = c->kprev;
		else
			t->ktail = c->kprev;
		c->knext = c->kprev = NULL;
	}
	c->ka_due = due;
	if (!due)
		return;
	c->kprev = t->ktail;
	if (t->ktail)
		t->ktail->knext = c;
	else
		t->khead = c;
	t->ktail = c;
}

static void linger_end(struct bthread *t, struct bclient *c);

static void timers_run(struct bthread *t, uint64_t now)
{
	while (t->thead && t->thead->deadline <= now) {
		struct bclient *c = t->thead;
		bt_timer(c, 0);
		if (c->flags & BF_LINGER)
			linger_end(t, c);
		else
			bc_timeout(t, c);
	}
	while (t->khead && t->khead->ka_due <= now) {
		struct bclient *c = t->khead;
		bt_keepalive(c, 0);
		bc_keepalive(t, c);
	}
}

/* ---- sockets ------------------------------------------------------------- */

static void recv_arm(struct bthread *t, struct bclient *c)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	io_uring_prep_recv_multishot(sqe, (int)c->slot, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(c->idx, OP_RECV));
	c->flags |= BF_RECV_ARMED;
	c->refs++;
}

static void maybe_release(struct bthread *t, struct bclient *c)
{
	if (!(c->flags & BF_CLOSED) || c->refs)
		return;
	if (c->slot != UINT32_MAX) {
		t->free_slots[t->nfree++] = c->slot;
		c->slot = UINT32_MAX;
	}
	if (c->flags & BF_CONNECTED) {
		c->flags &= ~BF_CONNECTED;
		atomic_fetch_sub_explicit(&t->g_connected, 1, memory_order_relaxed);
	}
	bc_released(t, c);
}

/* Cancel one in-flight operation of c by its user_data. */
static void cancel_op(struct bthread *t, struct bclient *c, int op)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	io_uring_prep_cancel64(sqe, UD(c->idx, op), 0);
	io_uring_sqe_set_data64(sqe, UD(c->idx, OP_CANCEL));
	c->refs++;
}

static void send_submit(struct bthread *t, struct bclient *c);

/* The end of a linger: whatever is still unsent is given up, the slot closed. */
static void linger_end(struct bthread *t, struct bclient *c)
{
	struct io_uring_sqe *sqe;

	if (!(c->flags & BF_LINGER))
		return;
	c->flags &= ~BF_LINGER;
	bt_timer(c, 0);
	if (c->flags & BF_SENDING)
		cancel_op(t, c, OP_SEND);
	sqe = get_sqe(t);
	io_uring_prep_close_direct(sqe, c->slot);
	io_uring_sqe_set_data64(sqe, UD(c->idx, OP_CLOSE));
	c->refs++;
}

void bt_close(struct bclient *c)
{
	struct bthread *t = bc_thread(c);
	struct io_uring_sqe *sqe;

	if (c->flags & BF_CLOSED)
		return;
	c->flags |= BF_CLOSED;
	bt_timer(c, 0);
	bt_keepalive(c, 0);
	if ((c->flags & BF_LINGER) && c->slot != UINT32_MAX && c->state != BC_CONNECT &&
	    !(c->flags & BF_PEER_GONE) && (buf_used(&c->out) || buf_used(&c->sending))) {
		/* Closed for everyone above, but the last bytes (a WebSocket close
		 * frame) go out first; the step timeout bounds the wait. */
		if (c->flags & BF_RECV_ARMED)
			cancel_op(t, c, OP_RECV);
		bt_timer(c, bench_now() + (uint64_t)(B.o.timeout * 1e9));
		send_submit(t, c);
		return;
	}
	c->flags &= ~BF_LINGER;
	if (c->slot != UINT32_MAX) {
		/* Closing a direct descriptor does not cancel its requests.  Cancel
		 * each by its user_data, not all by descriptor: a cancel by
		 * descriptor walks every armed poll of the ring (kernel
		 * io_poll_cancel), which made closing 25,000 clients quadratic;
		 * a user_data lookup is one hash bucket. */
		if (c->flags & BF_RECV_ARMED)
			cancel_op(t, c, OP_RECV);
		if (c->flags & BF_SENDING)
			cancel_op(t, c, OP_SEND);
		if (c->state == BC_CONNECT)
			cancel_op(t, c, OP_CONNECT);
		sqe = get_sqe(t);
		io_uring_prep_close_direct(sqe, c->slot);
		io_uring_sqe_set_data64(sqe, UD(c->idx, OP_CLOSE));
		c->refs++;
	}
	maybe_release(t, c);
}

/* "EADDRNOTAVAIL" etc.: short and greppable in the failure table. */
static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

/* A socket for client c, bound as configured, in its port window (retry 0:
 * 16 ports, 1: 1024 ports, 2: the kernel's whole range).  fd or -1 with
 * the failure cause written. */
static int socket_new(struct bclient *c, unsigned retry, char *cause, size_t cap)
{
	const struct bench_opts *o = &B.o;
	struct sock_opts so = { 0 };
	const char *what;
	int fd;

	if (B.port_lo && retry < 2) {
		uint32_t span = (uint32_t)B.port_hi - B.port_lo + 1, width = retry ? 1024 : 16;
		uint32_t lo = B.port_lo + (c->idx / (o->nsources ? o->nsources : 1)) % span;
		uint32_t hi = lo + width - 1;
		if (hi > B.port_hi) {
			hi = B.port_hi;
			lo = hi - width + 1;
		}
		so.port_lo = (uint16_t)lo;
		so.port_hi = (uint16_t)hi;
	}
	if (o->nsources) {
		unsigned s = c->idx % o->nsources;
		so.src = (const struct sockaddr *)&o->sources[s];
		so.srclen = o->source_len[s];
	}
	fd = sock_outbound(o->target.ss_family, &so, &what);
	if (fd < 0) {
		snprintf(cause, cap, "%s:%s", what, errname(-fd));
		return -1;
	}
	return fd;
}

/* Install fd in c's slot (replacing what was there) and submit the connect. */
static int connect_submit(struct bthread *t, struct bclient *c, int fd, char *cause, size_t cap)
{
	struct io_uring_sqe *sqe;
	int r = io_uring_register_files_update(&t->ring, c->slot, &fd, 1);

	close(fd);
	if (r < 0) {
		snprintf(cause, cap, "register:%s", errname(-r));
		return -1;
	}
	sqe = get_sqe(t);
	if (B.o.scenario == SC_FILE) {
		socklen_t len;
		const struct sockaddr *a = bs_addr(c, &len);
		io_uring_prep_connect(sqe, (int)c->slot, a, len);
	} else if (bc_side(c->idx))
		io_uring_prep_connect(sqe, (int)c->slot, (const struct sockaddr *)&B.o.remote,
				      B.o.remote_len);
	else
		io_uring_prep_connect(sqe, (int)c->slot, (const struct sockaddr *)&B.o.target,
				      B.o.target_len);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(c->idx, OP_CONNECT));
	c->refs++;
	return 0;
}

void bt_connect(struct bthread *t, struct bclient *c)
{
	char cause[48];
	int fd;

	c->t_start = bench_now();
	if (!t->local.first_start_ns || c->t_start < t->local.first_start_ns)
		t->local.first_start_ns = c->t_start;
	t->local.started++;
	c->slot = UINT32_MAX;
	if (!t->nfree) {
		bc_fail(t, c, "no-descriptor-slot", NULL);
		return;
	}
	fd = socket_new(c, 0, cause, sizeof(cause));
	if (fd < 0) {
		bc_fail(t, c, cause, NULL);
		return;
	}
	c->slot = t->free_slots[--t->nfree];
	if (connect_submit(t, c, fd, cause, sizeof(cause)) < 0) {
		bc_fail(t, c, cause, NULL);   /* bt_close returns the slot */
		return;
	}
	bc_start(t, c);
}

static void on_connect(struct bthread *t, struct bclient *c, int res)
{
	c->refs--;
	if (c->flags & BF_CLOSED) {
		maybe_release(t, c);
		return;
	}
	if (res == -EADDRNOTAVAIL && c->retries < 2) {
		/* The port window is full (ports of other processes, TIME_WAIT):
		 * widen it.  The new socket replaces the old one in the slot. */
		char cause[48];
		int fd = socket_new(c, ++c->retries, cause, sizeof(cause));
		if (fd < 0 || connect_submit(t, c, fd, cause, sizeof(cause)) < 0)
			bc_fail(t, c, cause, NULL);
		return;
	}
	if (res < 0) {
		char cause[48];
		if (res == -ECONNREFUSED)
			snprintf(cause, sizeof(cause), "connect-refused");
		else if (res == -ETIMEDOUT)
			snprintf(cause, sizeof(cause), "connect-timeout");
		else
			snprintf(cause, sizeof(cause), "connect:%s", errname(-res));
		bc_fail(t, c, cause, NULL);
		return;
	}
	c->flags |= BF_CONNECTED;
	atomic_fetch_add_explicit(&t->g_connected, 1, memory_order_relaxed);
	t->local.connected++;
	hist_record(&t->local.h_connect, bench_now() - c->t_start);
	recv_arm(t, c);
	bc_connected(t, c, res);
}

static void on_recv(struct bthread *t, struct bclient *c, struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->flags &= ~BF_RECV_ARMED;
		c->refs--;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		uint8_t *p = t->bufmem + (size_t)bid * t->bufsize;
		if (res > 0 && !(c->flags & (BF_CLOSED | BF_PEER_GONE))) {
			t->local.bytes_in += (uint64_t)res;
			bc_input(t, c, p, (size_t)res);
		}
		io_uring_buf_ring_add(t->br, p, t->bufsize, (unsigned short)bid,
				      io_uring_buf_ring_mask(t->nbufs), 0);
		io_uring_buf_ring_advance(t->br, 1);
	}
	if (c->flags & BF_CLOSED) {
		maybe_release(t, c);
		return;
	}
	if (res == 0 || (res < 0 && res != -ENOBUFS)) {
		c->flags |= BF_PEER_GONE;
		bc_eof(t, c, res);
		return;
	}
	if (!(c->flags & BF_RECV_ARMED))
		recv_arm(t, c);   /* -ENOBUFS ended the multishot: buffers are back, re-arm */
}

void bt_flush_later(struct bclient *c)
{
	struct bthread *t = bc_thread(c);

	if (c->flags & BF_DIRTY)
		return;
	c->flags |= BF_DIRTY;
	c->dnext = t->dirty;
	t->dirty = c;
}

void bt_send(struct bclient *c, const void *data, size_t len)
{
	if (c->flags & (BF_PEER_GONE | BF_CLOSED))
		return;
	if (buf_append(&c->out, data, len, OUT_LIMIT) < 0) {
		c->flags |= BF_PEER_GONE;
		bc_fail(bc_thread(c), c, "output-queue-limit", NULL);
		return;
	}
	bt_flush_later(c);
}

static void send_submit(struct bthread *t, struct bclient *c)
{
	struct io_uring_sqe *sqe;

	if ((c->flags & (BF_SENDING | BF_PEER_GONE)) || c->slot == UINT32_MAX ||
	    (c->flags & (BF_CLOSED | BF_LINGER)) == BF_CLOSED)
		return;
	if (!buf_used(&c->sending)) {
		struct buf tmp = c->sending;
		c->sending = c->out;
		c->out = tmp;
	}
	if (!buf_used(&c->sending))
		return;
	sqe = get_sqe(t);
	io_uring_prep_send(sqe, (int)c->slot, buf_data(&c->sending), buf_used(&c->sending),
			   MSG_NOSIGNAL);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(c->idx, OP_SEND));
	c->flags |= BF_SENDING;
	c->refs++;
}

static void on_send(struct bthread *t, struct bclient *c, int res)
{
	c->refs--;
	c->flags &= ~BF_SENDING;
	if (res < 0) {
		c->flags |= BF_PEER_GONE;
		buf_reset(&c->sending);
		buf_reset(&c->out);
		if (!(c->flags & BF_CLOSED))
			bc_eof(t, c, res);
	} else {
		t->local.bytes_out += (uint64_t)res;
		buf_consume(&c->sending, (size_t)res);
		if (!(c->flags & BF_CLOSED) && (buf_used(&c->sending) || buf_used(&c->out)))
			bt_flush_later(c);
	}
	if (c->flags & BF_LINGER) {
		if (res >= 0 && (buf_used(&c->sending) || buf_used(&c->out)))
			send_submit(t, c);
		else
			linger_end(t, c);
	}
	maybe_release(t, c);
}

static void flush_all(struct bthread *t)
{
	while (t->dirty) {
		struct bclient *c = t->dirty;
		t->dirty = c->dnext;
		c->flags &= ~BF_DIRTY;
		if (c->flags & BF_CLOSED)
			continue;
		bc_flush(t, c);
		send_submit(t, c);
	}
}

/* ---- chat handover --------------------------------------------------------- */

void bt_ready(struct bthread *t, struct bclient *sender)
{
	struct bthread *owner = bc_thread(sender);

	if (owner == t) {
		if (!(sender->flags & BF_READY)) {
			sender->flags |= BF_READY;
			t->ready[t->nready++] = sender;
		}
		return;
	}
	/* Cannot fail: see the file comment (one entry per blocked episode). */
	while (!ck_ring_enqueue_spsc(&owner->in[t->id], owner->in_buf[t->id], sender))
		sched_yield();
	t->wake_pending[owner->id] = 1;
}

static void handover_drain(struct bthread *t)
{
	void *v;

	if (!t->in)
		return;
	for (unsigned j = 0; j < B.nthreads; j++) {
		while (ck_ring_dequeue_spsc(&t->in[j], t->in_buf[j], &v)) {
			struct bclient *c = v;
			if (!(c->flags & BF_READY)) {
				c->flags |= BF_READY;
				t->ready[t->nready++] = c;
			}
		}
	}
}

static bool handover_pending(struct bthread *t)
{
	if (!t->in)
		return false;
	for (unsigned j = 0; j < B.nthreads; j++)
		if (ck_ring_size(&t->in[j]))
			return true;
	return false;
}

static void wakes_send(struct bthread *t)
{
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned j = 0; j < B.nthreads; j++) {
		struct io_uring_sqe *sqe;
		if (!t->wake_pending[j])
			continue;
		t->wake_pending[j] = 0;
		if (!atomic_load(&B.threads[j].asleep))
			continue;
		sqe = get_sqe(t);
		io_uring_prep_msg_ring(sqe, B.threads[j].ring_fd, 0, UD(0, OP_WAKE), 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, UD(0, OP_NONE));
	}
}

/* ---- the chat scheduler ------------------------------------------------------ */

static void chat_closed_loop(struct bthread *t, uint64_t now)
{
	int32_t w = (int32_t)B.o.window;

	for (uint32_t i = 0; i < t->nready; i++) {
		struct bclient *c = t->ready[i];
		c->flags &= ~BF_READY;
		if (c->state != BC_ONLINE || !c->npeers)
			continue;
		/* Send until this client's own increment fills the window; from
		 * then on only a receipt (W -> W-1) makes it ready again.  CAS, so
		 * that inflight never exceeds W even for a moment: a receiver
		 * seeing W+1 -> W would not hand the sender back. */
		for (;;) {
			int32_t cur = atomic_load(&c->inflight);
			if (cur >= w)
				break;
			if (!atomic_compare_exchange_weak(&c->inflight, &cur, cur + 1))
				continue;
			if (!bc_chat_send(t, c, 1)) {
				/* No peer online: this client stops sending. */
				atomic_fetch_sub(&c->inflight, 1);
				break;
			}
			c->last_send_ns = now;
			if (cur + 1 == w)
				break;
		}
	}
	t->nready = 0;
}

static void chat_open_loop(struct bthread *t, uint64_t now)
{
	/* --rate is per sending client: with --one-way only some online clients send, in
	 * the muc scenario the occupants. */
	bool muc = B.o.scenario == SC_MUC;
	unsigned online = B.o.one_way || muc ? t->nsenders :
			  atomic_load_explicit(&t->g_online, memory_order_relaxed);
	double dt = t->last_tick ? (double)(now - t->last_tick) / 1e9 : 0;
	uint32_t scanned = 0;

	t->last_tick = now;
	if (!online) {
		t->budget = 0;
		return;
	}
	t->budget += B.o.rate * online * dt;
	/* After a stall, do not burst more than 100 ms worth. */
	if (t->budget > B.o.rate * online * 0.1 + 1)
		t->budget = B.o.rate * online * 0.1 + 1;
	while (t->budget >= 1 && scanned < t->nclients) {
		struct bclient *c = &B.clients[t->id + (size_t)t->rr * B.nthreads];
		t->rr = (t->rr + 1) % t->nclients;
		scanned++;
		if (c->state != BC_ONLINE || (muc ? !(c->flags & BF_SENDER) : !c->npeers))
			continue;
		if (muc ? bm_send(t, c) : bc_chat_send(t, c, 1) > 0) {
			t->budget -= 1;
			scanned = 0;
		}
	}
}

/* Closed loop: a window that stays full for a whole --timeout lost its
 * messages; start it again (the loss shows in sent - received). */
static void chat_window_check(struct bthread *t, uint64_t now)
{
	uint64_t limit = (uint64_t)(B.o.timeout * 1e9);

	for (uint32_t i = 0; i < t->nclients; i++) {
		struct bclient *c = &B.clients[t->id + (size_t)i * B.nthreads];
		if (c->state != BC_ONLINE || atomic_load(&c->inflight) < (int32_t)B.o.window ||
		    now - c->last_send_ns < limit)
			continue;
		atomic_store(&c->inflight, 0);
		t->local.window_timeouts++;
		bt_ready(t, c);
	}
}

/* ---- stats hand-over --------------------------------------------------------- */

void bt_publish(struct bthread *t, bool force)
{
	uint64_t now = bench_now();

	if (!force && now - t->last_publish < PUBLISH_NS)
		return;
	t->last_publish = now;
	pthread_mutex_lock(&t->mu);
	bench_stats_add(&t->shared, &t->local);
	pthread_mutex_unlock(&t->mu);
	memset(&t->local, 0, sizeof(t->local));
}

/* ---- set-up and the loop -------------------------------------------------------- */

static int buffers_init(struct bthread *t)
{
	/* Past 4 threads (more rings for more connections: 200,000 idle sessions take 11), the
	 * process keeps RECV_BUFS_TOTAL buffers in all: each thread's share of the traffic is
	 * smaller, and 512 per thread was 88 MiB, 461 bytes per session at 200,000, all of it
	 * resident.  A burst beyond them ends a multishot recv with -ENOBUFS, which re-arms
	 * (on_recv).  The count stays a power of two (the buffer ring's). */
	t->nbufs = RECV_BUFS;
	while (t->nbufs > RECV_BUFS_MIN && (uint64_t)t->nbufs * B.nthreads > RECV_BUFS_TOTAL &&
	       B.nthreads > 4)
		t->nbufs /= 2;
	t->bufsize = RECV_BUF_SIZE;
	return compat_setup_buf_ring(&t->ring, t->nbufs, t->bufsize, BGID, &t->br, &t->bufmem);
}

static int handover_init(struct bthread *t)
{
	unsigned cap = 2;

	while (cap < t->nclients + 2)
		cap <<= 1;
	t->ready = calloc(t->nclients + 1, sizeof(*t->ready));
	t->in = calloc(B.nthreads, sizeof(*t->in));
	t->in_buf = calloc(B.nthreads, sizeof(*t->in_buf));
	if (!t->ready || !t->in || !t->in_buf)
		return -ENOMEM;
	for (unsigned j = 0; j < B.nthreads; j++) {
		if (j == (unsigned)t->id)
			continue;
		t->in_buf[j] = calloc(cap, sizeof(ck_ring_buffer_t));
		if (!t->in_buf[j])
			return -ENOMEM;
		ck_ring_init(&t->in[j], cap);
	}
	return 0;
}

static int bt_setup(struct bthread *t)
{
	int r;

	r = thread_ring_init(&t->ring, 4096, 32768);
	if (r < 0) {
		fprintf(stderr, "xedge-bench: io_uring setup failed: %s (kernel 6.1+ with io_uring "
			"enabled is required)\n", strerror(-r));
		return r;
	}
	t->ring_fd = t->ring.ring_fd;
	t->nslots = t->nclients + 8 < B.ring_slots ? t->nclients + 8 : B.ring_slots;
	r = io_uring_register_files_sparse(&t->ring, t->nslots);
	if (r < 0) {
		fprintf(stderr, "xedge-bench: cannot register %u direct descriptors: %s\n", t->nslots,
			strerror(-r));
		return r;
	}
	t->free_slots = malloc(t->nslots * sizeof(*t->free_slots));
	t->scratch = malloc(TLS_READ_CAP);
	t->xs = xmlstage_new();
	if (!t->free_slots || !t->scratch || !t->xs)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nslots; i++)
		t->free_slots[i] = t->nslots - 1 - i;
	t->nfree = t->nslots;
	r = buffers_init(t);
	if (r < 0) {
		fprintf(stderr, "xedge-bench: cannot set up the receive buffer ring: %s\n", strerror(-r));
		return r;
	}
	if ((B.o.scenario == SC_CHAT && B.o.rate == 0) || B.o.scenario == SC_FILE) {
		r = handover_init(t);
		if (r < 0)
			return r;
	}
	if (B.o.scenario == SC_FILE && bs_thread_init(t) < 0)
		return -ENOMEM;
	t->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 1) ^ bench_now();
	t->last_publish = bench_now();
	return 0;
}

static void start_clients(struct bthread *t, uint64_t now)
{
	const struct bench_opts *o = &B.o;
	uint64_t allowed = t->nclients;
	unsigned conc = (o->concurrency + B.nthreads - 1) / B.nthreads, n = 0;

	if (o->ramp > 0) {
		double per_thread = o->ramp / B.nthreads;
		allowed = (uint64_t)((double)(now - B.t0) / 1e9 * per_thread) + 1;
		if (allowed > t->nclients)
			allowed = t->nclients;
	}
	while (t->nstarted < allowed && n < STARTS_PER_LOOP &&
	       (!conc || atomic_load_explicit(&t->g_inprogress, memory_order_relaxed) < conc)) {
		struct bclient *c = &B.clients[t->id + (size_t)t->nstarted * B.nthreads];
		t->nstarted++;
		n++;
		atomic_fetch_add_explicit(&t->g_live, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->g_inprogress, 1, memory_order_relaxed);
		c->flags |= BF_INPROGRESS;
		c->tmode = (uint8_t)o->tls;
		bt_connect(t, c);
	}
}

/* The controller moved on: act once per phase change. */
static void phase_enter(struct bthread *t, int ph)
{
	if (B.o.scenario == SC_FILE && ph < PH_CLOSE)
		return;        /* a scenario file's drain: its users stay as they are (steps.c) */
	for (uint32_t i = 0; i < t->nclients; i++) {
		struct bclient *c = &B.clients[t->id + (size_t)i * B.nthreads];
		if (c->state == BC_NEW || c->state == BC_DONE || (c->flags & BF_CLOSED))
			continue;
		if (ph >= PH_JOIN && c->state < BC_JOIN && !(c->flags & BF_COUNTED))
			bc_fail(t, c, "login-phase-ended", NULL);
		else if (ph == PH_JOIN && c->state == BC_ONLINE)
			bm_join(t, c);
		else if (ph >= PH_STEADY && c->state == BC_JOIN && ph < PH_CLOSE)
			bc_fail(t, c, "join-phase-ended", NULL);
		else if (ph == PH_CHAT && c->state == BC_ONLINE && B.o.scenario == SC_MUC)
			continue;
		else if (ph == PH_CHAT && c->state == BC_ONLINE) {
			bc_chat_setup(t, c);
			if (B.o.rate == 0)
				bt_ready(t, c);
		} else if (ph >= PH_CLOSE && c->state != BC_CLOSING)
			bc_goodbye(t, c);
	}
}

static void dispatch(struct bthread *t, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int op = UD_OP(ud);
	struct bclient *c;

	if (op == OP_NONE || op == OP_WAKE)
		return;
	c = &B.clients[UD_IDX(ud)];
	switch (op) {
	case OP_CONNECT:
		on_connect(t, c, cqe->res);
		break;
	case OP_RECV:
		on_recv(t, c, cqe);
		break;
	case OP_SEND:
		on_send(t, c, cqe->res);
		break;
	case OP_CANCEL:
	case OP_CLOSE:
		c->refs--;
		maybe_release(t, c);
		break;
	default:
		break;
	}
}

static void *bt_main(void *arg)
{
	struct bthread *t = arg;
	int seen = -1;
	uint64_t last_check = 0, stop_at = 0;

	t->start_rc = bt_setup(t);
	atomic_store(&t->started, 1);
	if (t->start_rc < 0)
		return NULL;
	for (;;) {
		int ph = atomic_load(&B.phase);
		uint64_t now = bench_now(), tick = 20000000ull;
		struct __kernel_timespec ts;
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		if (ph != seen) {
			seen = ph;
			if (ph >= PH_JOIN)
				phase_enter(t, ph);
			if (ph >= PH_CLOSE && !stop_at)
				stop_at = now + (uint64_t)((B.o.timeout + 1) * 1e9);
		}
		if (ph == PH_STOP || (ph >= PH_CLOSE &&
				      (atomic_load(&t->g_live) == 0 || now >= stop_at)))
			break;
		if (B.o.scenario == SC_FILE) {
			uint64_t w;
			handover_drain(t);
			w = bs_tick(t, now);
			if (w < tick)
				tick = w;
		} else if (ph == PH_LOGIN && t->nstarted < t->nclients) {
			start_clients(t, now);
			if (B.o.ramp > 0)
				tick = 1000000ull;
		}
		if (ph == PH_JOIN) {
			bm_join_tick(t, now);
			tick = 1000000ull;
		}
		if (ph == PH_CHAT && now < atomic_load(&B.chat_end_ns)) {
			if (B.o.rate > 0) {
				chat_open_loop(t, now);
				tick = 1000000ull;
			} else {
				handover_drain(t);
				chat_closed_loop(t, now);
			}
		}
		if (now - last_check >= 1000000000ull) {
			last_check = now;
			if (ph == PH_CHAT && B.o.rate == 0)
				chat_window_check(t, now);
		}
		timers_run(t, now);
		flush_all(t);
		if (t->in)
			wakes_send(t);
		bt_publish(t, false);

		ts.tv_sec = 0;
		ts.tv_nsec = (long long)tick;
		atomic_store(&t->asleep, 1);
		if (handover_pending(t))
			ts.tv_nsec = 0;
		io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
		atomic_store(&t->asleep, 0);
		io_uring_for_each_cqe(&t->ring, head, cqe) {
			dispatch(t, cqe);
			n++;
		}
		io_uring_cq_advance(&t->ring, n);
	}
	if (B.o.scenario == SC_FILE)
		bs_tick(t, bench_now());    /* the users whose connection just closed end */
	bt_publish(t, true);
	/* Whatever is still open dies with the ring; free what we allocated. */
	io_uring_queue_exit(&t->ring);
	for (uint32_t i = 0; i < t->nclients; i++) {
		struct bclient *c = &B.clients[t->id + (size_t)i * B.nthreads];
		tlsp_clear(&c->tp);
		bw_free(c);
		free(c->scram);
		c->scram = NULL;
		buf_reset(&c->in);
		buf_reset(&c->out);
		buf_reset(&c->sending);
	}
	xmlstage_free(t->xs);
	bs_thread_exit(t);
	bc_thread_exit();
	bw_thread_exit();
	bm_thread_exit();
	tls_thread_exit();
	free(t->scratch);
	free(t->free_slots);
	free(t->bufmem);
	if (t->br)
		munmap(t->br, t->nbufs * sizeof(struct io_uring_buf));
	atomic_store(&t->done, 1);
	return NULL;
}

int bt_start(struct bthread *t)
{
	int r;

	pthread_mutex_init(&t->mu, NULL);
	r = pthread_create(&t->th, NULL, bt_main, t);
	if (r)
		return -r;
	while (!atomic_load(&t->started))
		usleep(1000);
	if (t->start_rc < 0) {
		pthread_join(t->th, NULL);
		return t->start_rc;
	}
	return 0;
}
