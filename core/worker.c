/*
 * worker — the edge's per-core event loop on io_uring; see worker.h.
 *
 * The ring is created in the worker thread itself (SINGLE_ISSUER binds it to
 * its creator; DEFER_TASKRUN runs completions only when this thread waits).
 * Accepts land in direct descriptors (no process fd per client, DESIGN §3);
 * each connection has one multishot recv from the ring-wide provided-buffer
 * pool, so an idle connection holds no receive buffer; at most one send is in
 * flight per connection, the rest waits in conn.out and goes out coalesced.
 */
#include "core/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/component.h"
#include "core/iplimit.h"
#include "core/link.h"
#include "core/log.h"
#include "core/members.h"
#include "core/s2s.h"
#include "core/session.h"
#include "core/smacks.h"
#include "core/upload.h"
#include "core/sock.h"
#include "core/thread_ring.h"
#include "core/uring_compat.h"
#include "core/xmpp.h"
#include "core/xprt.h"
#include "parser/xmlstage.h"

#define BGID 1
#define RECV_BUF_SIZE 16384
#define RECV_BUFS 512             /* 8 MiB per worker: sized for bursts, not connections */
#define SCRATCH_SIZE TLS_READ_CAP
#define OUT_HARD_FACTOR 4         /* queued output beyond 4 x max_out_bytes: closed at once */
#define CLOSE_GRACE 5             /* seconds to flush a goodbye before a hard close */
/*
 * Kernel socket buffers, set on the listeners and inherited by every client
 * socket (the kernel doubles them).  Autotuning would grow them to megabytes:
 * that much can arrive after reads are paused, and that much hides a client
 * that stopped reading.  XMPP is not bulk transfer; these keep both bounded.
 */
#define SOCK_RCVBUF (32 * 1024)
#define SOCK_SNDBUF (64 * 1024)

static uint64_t clock_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

uint64_t worker_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		/* SQ full: push what we have to the kernel and retry once. */
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			log_warn("submission queue full", "worker=%d", w->id);
	}
	return sqe;
}

/* ---- timers: a hashed wheel of 1-second buckets ----------------------- */

static void timer_unlink(struct conn *c)
{
	if (!c->deadline)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		c->w->wheel[c->deadline % WHEEL_SLOTS] = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	c->tnext = c->tprev = NULL;
	c->deadline = 0;
}

void conn_timer(struct conn *c, uint64_t deadline)
{
	struct conn **head;

	timer_unlink(c);
	if (!deadline)
		return;
	if (deadline <= c->w->wheel_pos)
		deadline = c->w->wheel_pos + 1;
	c->deadline = deadline;
	head = &c->w->wheel[deadline % WHEEL_SLOTS];
	c->tnext = *head;
	if (*head)
		(*head)->tprev = c;
	*head = c;
}

static void timers_run(struct worker *w)
{
	while (w->wheel_pos < w->now) {
		struct conn *c, *next;
		w->wheel_pos++;
		for (c = w->wheel[w->wheel_pos % WHEEL_SLOTS]; c; c = next) {
			next = c->tnext;
			if (c->deadline > w->wheel_pos)
				continue; /* a later lap of the wheel */
			timer_unlink(c);
			if (c->state == CS_CLOSING) {
				c->flags |= CF_PEER_GONE;   /* stop waiting for the flush */
				conn_release(c);
			} else {
				xmpp_timeout(c);
			}
		}
	}
}

/* ---- connections -------------------------------------------------------- */

/* Should a recv be armed?  (Armed again by flush_all when arming failed.) */
static bool wants_read(const struct conn *c)
{
	return (c->flags & CF_READING) && !c->paused && c->state != CS_CLOSING &&
	       !(c->flags & (CF_RECV_ARMED | CF_CLOSED | CF_PEER_GONE));
}

static void recv_arm(struct conn *c)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);

	if (!sqe) {
		conn_flush_later(c);   /* retried at the end of the iteration */
		return;
	}
	io_uring_prep_recv_multishot(sqe, (int)c->idx, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(c, OP_RECV));
	c->flags |= CF_RECV_ARMED;
	c->refs++;
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	xmpp_free(c);
	timer_unlink(c);
	conn_resume(c, PAUSE_RATE | PAUSE_LINK);   /* unlink from the paused lists */
	if (c->flags & CF_IP_COUNTED)
		iplimit_leave(c->ip);
	buf_reset(&c->in);
	buf_reset(&c->out);
	buf_reset(&c->sending);
	if (c->idx < w->nslots && w->slots[c->idx] == c)
		w->slots[c->idx] = NULL;
	__atomic_store_n(&w->nconns, w->nconns - 1, __ATOMIC_RELAXED);  /* main.c reads it for STATUS */
	STAT_ADD(w->st.conns[c->kind][c->state], (uint64_t)-1);
	free(c);
}

/* Freed once closed with nothing in flight and not on the flush list
 * (flush_all frees it then). */
static void conn_maybe_free(struct conn *c)
{
	if ((c->flags & CF_CLOSED) && c->refs == 0 && !(c->flags & CF_DIRTY))
		conn_free(c);
}

/*
 * Cancel the armed recv, then close the slot; free after the completions.
 * The recv is cancelled by its user_data, which the kernel finds in its
 * cancel hash: cancelling by descriptor walks every armed request of the
 * ring, and closing many connections at once went quadratic (91% of the
 * time in io_cancel_req_match with 50k connections).  Sends and the peer
 * lookup complete on their own; refs waits for them.
 */
static void conn_close_now(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->flags & CF_CLOSED)
		return;
	/* All three entries or none: a close that cannot be queued now is
	 * retried at the end of the iteration (flush_all). */
	if (io_uring_sq_space_left(&c->w->ring) < 3)
		io_uring_submit(&c->w->ring);
	if (io_uring_sq_space_left(&c->w->ring) < 3) {
		conn_flush_later(c);
		return;
	}
	c->flags |= CF_CLOSED;
	timer_unlink(c);
	if (c->flags & CF_RECV_ARMED) {
		sqe = io_uring_get_sqe(&c->w->ring);
		io_uring_prep_cancel64(sqe, UD(c, OP_RECV), 0);
		sqe->flags |= IOSQE_IO_HARDLINK;
		io_uring_sqe_set_data64(sqe, UD(c, OP_CANCEL));
		c->refs++;
	}
	if (c->flags & CF_SENDING) {
		/* A send to a peer that stopped reading never completes, and it
		 * holds the socket open after close_direct: cancel it too. */
		sqe = io_uring_get_sqe(&c->w->ring);
		io_uring_prep_cancel64(sqe, UD(c, OP_SEND), 0);
		sqe->flags |= IOSQE_IO_HARDLINK;
		io_uring_sqe_set_data64(sqe, UD(c, OP_CANCEL));
		c->refs++;
	}
	sqe = io_uring_get_sqe(&c->w->ring);
	io_uring_prep_close_direct(sqe, c->idx);
	io_uring_sqe_set_data64(sqe, UD(c, OP_CLOSE));
	c->refs++;
}

size_t conn_queued(const struct conn *c)
{
	return (size_t)buf_used(&c->out) + buf_used(&c->sending);
}

bool conn_drained(const struct conn *c)
{
	return !(c->flags & (CF_SENDING | CF_PEER_GONE | CF_CLOSED)) && !buf_used(&c->out) &&
	       !buf_used(&c->sending) && xprt_pending(c) == 0;
}

/* Callers end the stream first (xmpp_end, xmpp_abort: state closing, the
 * role told); this closes the socket once the goodbye is flushed. */
void conn_release(struct conn *c)
{
	if (c->state != CS_CLOSING)
		xmpp_set_state(c, CS_CLOSING);
	if (!(c->flags & (CF_PEER_GONE | CF_CLOSED)))
		xprt_flush(c);
	if (!(c->flags & CF_PEER_GONE) && (buf_used(&c->out) || (c->flags & CF_SENDING))) {
		/* Flush the goodbye first, but not forever. */
		if (!c->deadline || c->deadline > c->w->now + CLOSE_GRACE)
			conn_timer(c, c->w->now + CLOSE_GRACE);
		conn_flush_later(c);
		return;
	}
	conn_close_now(c);
}

void conn_flush_later(struct conn *c)
{
	if (c->flags & CF_DIRTY)
		return;
	c->flags |= CF_DIRTY;
	c->dnext = c->w->dirty;
	c->w->dirty = c;
}

void conn_send(struct conn *c, const void *data, size_t len)
{
	struct worker *w = c->w;
	size_t max = w->cfg->limits.max_out_bytes, queued;

	if (c->flags & (CF_PEER_GONE | CF_CLOSED))
		return;
	if (buf_append(&c->out, data, len, max * OUT_HARD_FACTOR) < 0) {
		/* A reader this far behind is gone for practical purposes. */
		log_warn("output queue hard limit reached, closing", "conn=%u peer=%s role=%s", c->idx,
			 c->peer, c->role->name);
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	queued = (size_t)buf_used(&c->out) + buf_used(&c->sending);
	if (queued > max && !(c->flags & CF_SLOW)) {
		/* A slow reader: it has timeouts.slow_reader seconds to catch up. */
		c->flags |= CF_SLOW;
		c->slow_since = w->now;
		if (!c->deadline || c->deadline > w->now + w->cfg->timeouts.slow_reader)
			conn_timer(c, w->now + w->cfg->timeouts.slow_reader);
	}
	conn_flush_later(c);
}

static void send_submit(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if ((c->flags & (CF_SENDING | CF_CLOSED | CF_PEER_GONE)))
		return;
	if (!buf_used(&c->sending)) {
		struct buf t = c->sending;
		c->sending = c->out;
		c->out = t;
	}
	if (!buf_used(&c->sending))
		return;
	sqe = worker_sqe(c->w);
	if (!sqe) {
		conn_flush_later(c);
		return;
	}
	io_uring_prep_send(sqe, (int)c->idx, buf_data(&c->sending), buf_used(&c->sending), MSG_NOSIGNAL);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(c, OP_SEND));
	c->flags |= CF_SENDING;
	c->refs++;
}

/* Once per iteration: seal and send what every dirty connection queued.
 * What cannot be submitted now (a full SQ) goes on the next list. */
static void flush_all(struct worker *w)
{
	struct conn *list = w->dirty;

	w->dirty = NULL;
	while (list) {
		struct conn *c = list;
		list = c->dnext;
		c->flags &= ~CF_DIRTY;
		if (c->flags & CF_CLOSED) {
			conn_maybe_free(c);
			continue;
		}
		if (!(c->flags & CF_PEER_GONE))
			xprt_flush(c);
		send_submit(c);
		if (c->state == CS_CLOSING && (c->flags & CF_PEER_GONE || (!(c->flags & CF_SENDING) && !buf_used(&c->out))))
			conn_close_now(c);
		else if (wants_read(c))
			recv_arm(c);
	}
}

static void on_send(struct conn *c, int res)
{
	c->refs--;
	c->flags &= ~CF_SENDING;
	if (res < 0) {
		if (res != -ECANCELED && res != -EPIPE && res != -ECONNRESET)
			log_debug("send failed", "conn=%u err=%s", c->idx, strerror(-res));
		c->flags |= CF_PEER_GONE;
		buf_reset(&c->sending);
		buf_reset(&c->out);
		if (!(c->flags & CF_CLOSED)) {
			if (c->state == CS_CLOSING)
				conn_release(c);
			else
				xmpp_eof(c);
		}
	} else {
		buf_consume(&c->sending, (size_t)res);
		c->tx_sent += (uint64_t)res;
		STAT_ADD(c->w->st.net_bytes[1], (uint64_t)res);
		if ((c->flags & CF_SLOW) && conn_queued(c) < c->w->cfg->limits.max_out_bytes / 2)
			c->flags &= ~CF_SLOW;   /* caught up */
		if (c->role->sent && c->state != CS_CLOSING)
			c->role->sent(c);
		if (!(c->flags & CF_CLOSED))
			conn_flush_later(c);
	}
	conn_maybe_free(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	struct worker *w = c->w;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->flags &= ~CF_RECV_ARMED;
		c->refs--;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		uint8_t *p = w->bufmem + (size_t)bid * w->bufsize;
		if (res > 0 && !(c->flags & (CF_CLOSED | CF_PEER_GONE)) && c->state != CS_CLOSING) {
			/* Handle the input, then charge it: over budget, reads
			 * pause until the debt is repaid. */
			STAT_ADD(w->st.net_bytes[0], (uint64_t)res);
			xprt_input(c, p, (size_t)res);
			if (!(c->flags & CF_CLOSED))
				conn_rate_ok(c, (size_t)res, 0);
		}
		io_uring_buf_ring_add(w->br, p, w->bufsize, (unsigned short)bid,
				      io_uring_buf_ring_mask(w->nbufs), 0);
		io_uring_buf_ring_advance(w->br, 1);
	}
	if (c->flags & CF_CLOSED) {
		conn_maybe_free(c);
		return;
	}
	if (res == -ECANCELED && !(c->flags & CF_PEER_GONE)) {
		/* conn_pause() cancelled the recv; re-arm if it was resumed meanwhile */
		if (wants_read(c))
			recv_arm(c);
		return;
	}
	if (res == 0 || (res < 0 && res != -ENOBUFS)) {
		if (res < 0 && res != -ECANCELED && res != -ECONNRESET)
			log_debug("recv failed", "conn=%u err=%s", c->idx, strerror(-res));
		/* A clean EOF may be a half-close: our goodbye can still go out. */
		if (res < 0)
			c->flags |= CF_PEER_GONE;
		if (c->state == CS_CLOSING) {
			c->flags |= CF_PEER_GONE;
			conn_release(c);
		} else {
			xmpp_eof(c);
		}
		return;
	}
	if (wants_read(c))
		recv_arm(c); /* -ENOBUFS ended the multishot: buffers are back, re-arm */
}

/* ---- pausing reads: rate limits and backpressure -------------------------- */

void conn_pause(struct conn *c, int why)
{
	struct worker *w = c->w;

	if ((why & PAUSE_RATE) && !(c->paused & PAUSE_RATE)) {
		c->pnext = w->rate_paused;
		c->pprev = NULL;
		if (w->rate_paused)
			w->rate_paused->pprev = c;
		w->rate_paused = c;
	}
	if ((why & PAUSE_LINK) && !(c->paused & PAUSE_LINK))
		w->link_paused++;
	if (!c->paused && (c->flags & CF_RECV_ARMED) && !(c->flags & (CF_CLOSED | CF_CANCELLING))) {
		/* The kernel keeps the bytes: the socket buffer fills and TCP's
		 * window closes, which is the backpressure we want.  One cancel
		 * at a time: a burst of pause/resume adds none. */
		struct io_uring_sqe *sqe = worker_sqe(w);
		if (sqe) {
			io_uring_prep_cancel64(sqe, UD(c, OP_RECV), 0);
			io_uring_sqe_set_data64(sqe, UD(c, OP_PAUSE));
			c->flags |= CF_CANCELLING;
			c->refs++;
		}
	}
	c->paused |= (uint8_t)why;
}

void conn_resume(struct conn *c, int why)
{
	struct worker *w = c->w;

	if ((why & PAUSE_RATE) && (c->paused & PAUSE_RATE)) {
		if (c->pprev)
			c->pprev->pnext = c->pnext;
		else
			w->rate_paused = c->pnext;
		if (c->pnext)
			c->pnext->pprev = c->pprev;
		c->pnext = c->pprev = NULL;
	}
	if ((why & PAUSE_LINK) && (c->paused & PAUSE_LINK))
		w->link_paused--;
	c->paused &= (uint8_t)~why;
	if (c->paused || (c->flags & (CF_CLOSED | CF_PEER_GONE)) || c->state == CS_CLOSING)
		return;
	xmpp_resume(c);
	if (wants_read(c))
		recv_arm(c);
}

/* Token buckets, one second of burst, kept in thousandths of a token so that
 * a refill after a millisecond is exact at any rate (a whole-token count
 * would round every short interval down to nothing below 1,000/s).  Charging
 * may overdraw: the input that is already here is handled, and the
 * connection pauses until it is repaid. */
bool conn_rate_ok(struct conn *c, size_t bytes, unsigned stanzas)
{
	const struct config *cfg = c->w->cfg;
	uint64_t now = worker_ms(), dt = now - c->tok_ms;
	/* A remote server's stream carries many users: limits of its own. */
	int64_t rb = c->role->federated ? cfg->s2s.rate_bytes : cfg->limits.rate_bytes;
	int64_t rs = c->role->federated ? cfg->s2s.rate_stanzas : cfg->limits.rate_stanzas;

	if (dt) {
		dt = dt > 1000 ? 1000 : dt;     /* a full bucket holds one second */
		c->tok_bytes += (int64_t)dt * rb;
		c->tok_stanzas += (int64_t)dt * rs;
		if (c->tok_bytes > rb * 1000)
			c->tok_bytes = rb * 1000;
		if (c->tok_stanzas > rs * 1000)
			c->tok_stanzas = rs * 1000;
		c->tok_ms = now;
	}
	c->tok_bytes -= (int64_t)bytes * 1000;
	c->tok_stanzas -= (int64_t)stanzas * 1000;
	if (c->tok_bytes >= 0 && c->tok_stanzas >= 0)
		return true;
	if (!(c->paused & PAUSE_RATE)) {
		log_debug("rate limit: pausing reads", "conn=%u peer=%s", c->idx, c->peer);
		STAT_INC(c->w->st.rate_pauses);
	}
	conn_pause(c, PAUSE_RATE);
	return false;
}

/* Every tick: resume the connections whose budget is repaid. */
static void rate_tick(struct worker *w)
{
	struct conn *c, *next;

	for (c = w->rate_paused; c; c = next) {
		next = c->pnext;
		if (conn_rate_ok(c, 0, 0))
			conn_resume(c, PAUSE_RATE);
	}
}

/* Hand a descriptor slot back to the kernel (a refused connection). */
static void slot_close(struct worker *w, unsigned idx)
{
	struct io_uring_sqe *sqe = worker_sqe(w);

	if (!sqe) {
		log_error("cannot close a refused connection's slot: submission queue full", "worker=%d slot=%u",
			  w->id, idx);
		return;
	}
	io_uring_prep_close_direct(sqe, idx);
	io_uring_sqe_set_data64(sqe, UD(NULL, OP_IGNORE));
}

static struct conn *conn_new(struct worker *w, uint32_t idx, int kind)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = w;
	c->idx = idx;
	c->gen = ++w->gen;
	c->ofd = -1;
	c->accepted = c->last_rx = w->now;
	c->tok_bytes = (int64_t)w->cfg->limits.rate_bytes * 1000;
	c->tok_stanzas = (int64_t)w->cfg->limits.rate_stanzas * 1000;
	c->tok_ms = worker_ms();
	strcpy(c->peer, "-");
	framer_reset(&c->fr);
	w->slots[idx] = c;
	__atomic_store_n(&w->nconns, w->nconns + 1, __ATOMIC_RELAXED);  /* main.c reads it for STATUS */
	c->kind = (uint8_t)kind;
	STAT_INC(w->st.conns[kind][CS_TRANSPORT]);
	STAT_INC(w->st.accepted[kind]);
	return c;
}

/* The layers a listener stacks on each of its connections. */
static int conn_layers(struct conn *c, const struct config_listener *cl)
{
	if (cl->proxy_protocol && xprt_push(c, &xprt_proxy, NULL) < 0)
		return -1;
	if ((cl->kind == LISTEN_C2S_TLS || cl->kind == LISTEN_WSS)) {
		c->flags |= CF_DIRECT_TLS;
		if (!xprt_tls_server(c))
			return -1;
	}
	if (cl->kind == LISTEN_S2S_TLS) {
		c->flags |= CF_DIRECT_TLS;
		if (!xprt_tls_server_s2s(c))
			return -1;
	}
	if (cl->kind == LISTEN_WS || cl->kind == LISTEN_WSS) {
		/* ws is meant to sit behind an ingress that terminates TLS: the
		 * stream counts as secure (docs: configuration). */
		c->flags |= CF_WS | CF_TLS;
		if (xprt_push(c, &xprt_ws, NULL) < 0)
			return -1;
	}
	return 0;
}

static void on_accept(struct listener *l, struct io_uring_cqe *cqe)
{
	struct worker *w = l->w;
	const struct config_listener *cl = &w->cfg->listeners[l->index];
	struct conn *c;
	int idx = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (idx < 0) {
		if (idx != -ECANCELED) {
			/* Out of descriptors or memory: a re-arm at once would fail
			 * the same way, in a hot loop.  Try again in a second. */
			log_warn("accept failed", "worker=%d address=%s:%u err=%s", w->id, cl->host, cl->port,
				 strerror(-idx));
			l->retry_at = w->now + 1;
		}
		return;
	}
	if (w->stop || w->draining) {   /* accepted just before the listener closed */
		slot_close(w, (unsigned)idx);
		return;
	}
	if ((uint32_t)idx >= w->nslots || w->nconns >= w->cfg->limits.max_connections) {
		slot_close(w, (unsigned)idx);
		STAT_INC(w->st.refused[0]);
		log_warn("connection refused: worker at max_connections", "worker=%d conns=%u",
			 w->id, w->nconns);
		return;
	}
	c = conn_new(w, (uint32_t)idx, cl->kind);
	if (!c) {
		slot_close(w, (unsigned)idx);
		return;
	}
	c->listener = l->index;
	c->role = cl->kind == LISTEN_S2S || cl->kind == LISTEN_S2S_TLS ? &role_s2s_in
		  : cl->kind == LISTEN_COMPONENT ? &role_component : &role_c2s;
	c->be = w->native ? &backend_native : &backend_upstream;
	if (conn_layers(c, cl) < 0) {
		log_error("cannot set up a connection's transport (out of memory?)", "conn=%u", c->idx);
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	if (!c->nxp)   /* the initial state: no transport to set up first */
		conn_set_state_counted(c, CS_HEADER);
	c->due = w->now + w->cfg->timeouts.handshake;
	conn_timer(c, c->due);
	/* Learn the client's address before reading from it: multishot accept
	 * cannot report it (one shared sockaddr), so install the direct
	 * descriptor as a plain fd for one getpeername() (see on_peer). */
	struct io_uring_sqe *sqe = worker_sqe(w);
	if (!sqe) {
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	compat_prep_fixed_fd_install(sqe, c->idx);
	io_uring_sqe_set_data64(sqe, UD(c, OP_PEER));
	c->refs++;
}

/* A socket address into the v4-mapped form iplimit and PROXY headers use. */
static void addr_bytes(const struct sockaddr_storage *ss, uint8_t ip[16], uint16_t *port)
{
	memset(ip, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		memcpy(ip, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	}
}

bool conn_admit(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	int v = iplimit_enter(c->ip, cfg->limits.max_connections_per_ip, cfg->limits.connection_rate_per_ip,
			      c->w->now);

	if (v != IPLIMIT_OK) {
		STAT_INC(c->w->st.refused[v]);
		log_info("connection refused", "peer=%s why=\"%s\"", c->peer, iplimit_verdict_str(v));
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return false;
	}
	c->flags |= CF_IP_COUNTED;
	return true;
}

static void on_peer(struct conn *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	bool known = false;

	c->refs--;
	if (fd >= 0) {
		if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
		    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
			addr_bytes(&ss, c->ip, &c->peer_port);
			inet_ntop(ss.ss_family, ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
				  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr, c->peer, sizeof(c->peer));
			known = true;
			len = sizeof(ss);
			if (c->w->cfg->upstream_proxy && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
				addr_bytes(&ss, c->local_ip, &c->local_port);
		}
		close(fd);
	}
	if (c->flags & CF_CLOSED) {
		conn_maybe_free(c);
		return;
	}
	if (c->state == CS_CLOSING)
		return;
	if (!known) {
		/* Without an address the per-IP limits cannot apply: refuse
		 * rather than let a connection past them. */
		log_info("connection refused: peer address unavailable", "conn=%u err=%s", c->idx,
			 fd < 0 ? strerror(-fd) : "getpeername");
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	/* Behind a PROXY header the socket's peer is the balancer: the limits
	 * apply to the client it names (xprt_proxy.c). */
	if (!c->w->cfg->listeners[c->listener].proxy_protocol && !conn_admit(c))
		return;
	log_debug("connection accepted", "conn=%u peer=%s worker=%d", c->idx, c->peer, c->w->id);
	c->flags |= CF_READING;
	recv_arm(c);
}

/* ---- outbound connections ---------------------------------------------------- */

struct conn *conn_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
			  const struct role_ops *role, int *err)
{
	/* The listeners' buffer sizes (see listener_open). */
	static const struct sock_opts so = { .rcvbuf = SOCK_RCVBUF, .sndbuf = SOCK_SNDBUF };
	const char *what;
	struct io_uring_sqe *sqe;
	struct conn *c;
	int fd;

	fd = sock_outbound(addr->sa_family, &so, &what);
	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	sqe = c ? worker_sqe(w) : NULL;
	if (!sqe) {
		free(c);
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	c->w = w;
	c->gen = ++w->gen;
	c->role = role;
	c->flags = CF_OUTBOUND;
	c->accepted = c->last_rx = w->now;
	c->state = CS_TRANSPORT;
	c->kind = role == &role_upstream ? CK_UPSTREAM : CK_S2S_OUT;
	STAT_INC(w->st.conns[c->kind][CS_TRANSPORT]);
	c->dst = addr;
	c->dstlen = len;
	strcpy(c->peer, "-");
	framer_reset(&c->fr);
	__atomic_store_n(&w->nconns, w->nconns + 1, __ATOMIC_RELAXED);  /* main.c reads it for STATUS */
	/* The plain fd moves into the ring's table: the kernel picks the slot
	 * and writes it over the array element, c->idx. */
	c->ofd = fd;
	c->idx = (uint32_t)fd;
	io_uring_prep_files_update(sqe, (int *)&c->idx, 1, (int)IORING_FILE_INDEX_ALLOC);
	io_uring_sqe_set_data64(sqe, UD(c, OP_SOCKET));
	c->refs++;
	c->due = w->now + w->cfg->timeouts.handshake;
	return c;
}

static void connect_failed(struct conn *c, int res)
{
	c->flags |= CF_PEER_GONE;
	if (c->role->connected)
		c->role->connected(c, res);
	xmpp_abort(c);
}

static void on_socket(struct conn *c, int res)
{
	struct worker *w = c->w;
	struct io_uring_sqe *sqe;
	uint32_t slot = c->idx;

	c->refs--;
	close(c->ofd);   /* the table holds its own reference now */
	c->ofd = -1;
	if (res < 1 || slot >= w->nslots || w->slots[slot]) {
		if (res >= 1)
			slot_close(w, slot);
		log_warn("outbound connection: no descriptor slot", "worker=%d err=%s", w->id,
			 res < 0 ? strerror(-res) : "table full");
		c->idx = UINT32_MAX;
		c->flags |= CF_CLOSED | CF_PEER_GONE;   /* no slot to close */
		if (c->role->connected)
			c->role->connected(c, res < 0 ? res : -EMFILE);
		xmpp_abort(c);
		conn_maybe_free(c);
		return;
	}
	w->slots[slot] = c;
	conn_timer(c, c->due);
	sqe = worker_sqe(w);
	if (!sqe) {
		connect_failed(c, -EAGAIN);
		return;
	}
	io_uring_prep_connect(sqe, (int)slot, c->dst, c->dstlen);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(c, OP_CONNECT));
	c->refs++;
}

static void on_connect(struct conn *c, int res)
{
	c->refs--;
	if (c->flags & CF_CLOSED) {
		conn_maybe_free(c);
		return;
	}
	if (c->state == CS_CLOSING) {
		conn_release(c);
		return;
	}
	if (res < 0) {
		connect_failed(c, res);
		return;
	}
	c->flags |= CF_READING;
	recv_arm(c);
	if (c->role->connected)
		c->role->connected(c, 0);
}

static void accept_arm(struct listener *l)
{
	struct io_uring_sqe *sqe = worker_sqe(l->w);

	if (!sqe)
		return;   /* the loop tries again */
	io_uring_prep_multishot_accept_direct(sqe, l->fd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, UD(l, OP_ACCEPT));
	l->armed = true;
}

/* ---- set-up ------------------------------------------------------------- */

static int listener_open(struct worker *w, const struct config_listener *cl)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, one = 1, rcv = SOCK_RCVBUF, snd = SOCK_SNDBUF;

	memset(&ss, 0, sizeof(ss));
	if (strchr(cl->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(cl->port);
		inet_pton(AF_INET6, cl->host, &s6->sin6_addr);
		slen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(cl->port);
		inet_pton(AF_INET, cl->host, &s4->sin_addr);
		slen = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Accepted sockets inherit TCP_NODELAY from the listener. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, cl->backlog) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int buffers_init(struct worker *w)
{
	w->nbufs = RECV_BUFS;
	w->bufsize = RECV_BUF_SIZE;
	return compat_setup_buf_ring(&w->ring, w->nbufs, w->bufsize, BGID, &w->br, &w->bufmem);
}

static int worker_setup(struct worker *w)
{
	struct rlimit rl;
	int r;

	r = thread_ring_init(&w->ring, 4096, 16384);
	if (r < 0) {
		log_error("io_uring setup failed (kernel 6.1+ with io_uring enabled is required)",
			  "worker=%d err=%s", w->id, strerror(-r));
		return r;
	}
	smacks_worker_start(w);   /* XEP-0198 handovers may come from now on */
	/* The registered-file table is capped by RLIMIT_NOFILE per ring (DESIGN §3). */
	getrlimit(RLIMIT_NOFILE, &rl);
	w->nslots = w->cfg->limits.max_connections + 64;
	if (rl.rlim_cur != RLIM_INFINITY && w->nslots > rl.rlim_cur - 16)
		w->nslots = (uint32_t)rl.rlim_cur - 16;
	if (w->cfg->limits.max_connections > w->nslots) {
		log_warn("max_connections above this worker's descriptor table; add workers to hold more",
			 "worker=%d table=%u", w->id, w->nslots);
	}
	r = io_uring_register_files_sparse(&w->ring, w->nslots);
	if (r < 0) {
		log_error("cannot register the direct descriptor table", "worker=%d slots=%u err=%s",
			  w->id, w->nslots, strerror(-r));
		return r;
	}
	/* Offload threads wake us through this ring (the port exists since
	 * worker_start; no job is out before this thread submits one). */
	w->offload_port.ring_fd = w->ring.ring_fd;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	w->scratch = malloc(SCRATCH_SIZE);
	w->xs = xmlstage_new();
	if (!w->slots || !w->scratch || !w->xs)
		return -ENOMEM;
	r = buffers_init(w);
	if (r < 0) {
		log_error("cannot set up the receive buffer ring", "worker=%d err=%s", w->id, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < w->cfg->nlisteners; i++) {
		const struct config_listener *cl = &w->cfg->listeners[i];
		int fd = listener_open(w, cl);
		if (fd < 0) {
			log_error("cannot listen (address in use or not local?)", "address=%s:%u err=%s",
				  cl->host, cl->port, strerror(-fd));
			return fd;
		}
		w->listeners[i] = (struct listener){ .w = w, .fd = fd, .index = (uint16_t)i };
		w->nlisteners++;
	}
	w->native = !w->cfg->backend_upstream;
	if (w->native) {
		r = link_open(w);
		if (r < 0)
			return r;
	} else {
		r = endpoint_resolve(w->cfg->backend_upstream, &w->upstream, &w->upstream_len);
		if (r < 0) {
			log_error("backend.upstream is not a numeric host:port", "upstream=%s", w->cfg->backend_upstream);
			return r;
		}
	}
	w->now = w->wheel_pos = clock_s();
	for (size_t i = 0; i < w->nlisteners; i++)
		accept_arm(&w->listeners[i]);
	if (w->native)
		link_arm(w);
	return 0;
}

/* ---- control messages from other threads ------------------------------- */

void worker_post(struct worker *w, struct io_uring *from, int cmd)
{
	struct io_uring_sqe *sqe;

	while (!ck_ring_enqueue_spsc(&w->ctrl, w->ctrl_buf, (void *)(intptr_t)cmd))
		sched_yield();
	/* Wake the worker: it may be asleep in io_uring_enter. */
	sqe = io_uring_get_sqe(from);
	if (sqe) {
		io_uring_prep_msg_ring(sqe, w->ring.ring_fd, 0, UD(NULL, OP_MSG), 0);
		io_uring_submit(from);
	}
}

/* Stop accepting: cancel each armed accept and close the listening socket
 * (the cancel holds the file until it completes), so new clients are
 * refused here and go to another edge. */
static void listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		struct io_uring_sqe *sqe = l->armed ? worker_sqe(w) : NULL;
		if (sqe) {
			io_uring_prep_cancel64(sqe, UD(l, OP_ACCEPT), 0);
			io_uring_sqe_set_data64(sqe, UD(NULL, OP_IGNORE));
		}
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
}

static void framer_limits_set(struct worker *w)
{
	w->lim = (struct framer_limits){
		.max_stanza = w->cfg->limits.max_stanza_bytes,
		.max_depth = w->cfg->limits.max_depth,
		.max_attrs = w->cfg->limits.max_attrs,
		.max_name = w->cfg->limits.max_name_bytes,
		.max_value = w->cfg->limits.max_value_bytes,
	};
}

static bool conn_is_client(const struct conn *c)
{
	return c->kind >= CK_C2S && c->kind <= CK_WSS && !(c->flags & (CF_CLOSED | CF_OUTBOUND)) &&
	       c->state != CS_CLOSING;
}

/* While draining: tell clients to go, drain_rate a second (a token bucket
 * of at most a tenth of a second's worth, so a late tick does not burst). */
static void drain_tick(struct worker *w)
{
	uint64_t now = worker_ms();
	int64_t cap = (int64_t)w->drain_rate * 100;

	w->drain_tokens += (int64_t)(now - w->drain_ms) * w->drain_rate;
	if (w->drain_tokens > (cap > 1000 ? cap : 1000))
		w->drain_tokens = cap > 1000 ? cap : 1000;
	w->drain_ms = now;
	for (uint32_t seen = 0; w->drain_tokens >= 1000 && seen < w->nslots; seen++) {
		struct conn *c = w->slots[w->drain_cursor];
		w->drain_cursor = (w->drain_cursor + 1) % w->nslots;
		if (c && conn_is_client(c)) {
			xmpp_goodbye(c);
			w->drain_tokens -= 1000;
		}
	}
}

static void ctrl_drain(struct worker *w)
{
	void *v;

	while (ck_ring_dequeue_spsc(&w->ctrl, w->ctrl_buf, &v)) {
		int cmd = (int)(intptr_t)v;
		if (cmd == CTRL_RELOAD) {
			w->cfg = __atomic_load_n(&w->next_cfg, __ATOMIC_ACQUIRE);
			framer_limits_set(w);
			__atomic_store_n(&w->cfg_acked, w->cfg->generation, __ATOMIC_RELEASE);
			log_debug("worker switched to the reloaded configuration", "worker=%d", w->id);
		} else if (cmd == CTRL_MEMBERS) {
			members_apply(w);
		} else if (cmd == CTRL_DRAIN && !w->draining && !w->stop) {
			w->draining = true;
			w->drain_tokens = 1000;
			w->drain_ms = worker_ms();
			log_info("worker draining: listeners closed, clients told to go", "worker=%d conns=%u rate=%u/s",
				 w->id, w->nconns, w->drain_rate);
			listeners_close(w);
		} else if (cmd == CTRL_STOP && !w->stop) {
			w->stop = 1;
			log_info("worker stopping", "worker=%d conns=%u", w->id, w->nconns);
			listeners_close(w);
			/* Clients are told; their upstream streams end with them. */
			for (uint32_t i = 0; i < w->nslots; i++)
				if (w->slots[i] && !(w->slots[i]->flags & (CF_CLOSED | CF_OUTBOUND)))
					xmpp_error(w->slots[i], "system-shutdown", NULL);
			/* Our own streams to other servers end too. */
			s2s_worker_stop(w);
		}
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	void *ptr = UD_PTR(ud);

	switch (UD_OP(ud)) {
	case OP_ACCEPT:
		on_accept(ptr, cqe);
		break;
	case OP_RECV:
		on_recv(ptr, cqe);
		break;
	case OP_SEND:
		on_send(ptr, cqe->res);
		break;
	case OP_PEER:
		on_peer(ptr, cqe->res);
		break;
	case OP_SOCKET:
		on_socket(ptr, cqe->res);
		break;
	case OP_CONNECT:
		on_connect(ptr, cqe->res);
		break;
	case OP_PAUSE: {
		struct conn *c = ptr;
		c->flags &= ~CF_CANCELLING;
		c->refs--;
		conn_maybe_free(c);
		break;
	}
	case OP_CANCEL:
	case OP_CLOSE: {
		struct conn *c = ptr;
		c->refs--;
		conn_maybe_free(c);
		break;
	}
	case OP_LINK_RECV:
		link_on_recv(ptr, cqe->res);
		break;
	case OP_LINK_SEND:
		link_on_send(ptr, cqe->res);
		break;
	case OP_LINK_CONNECT:
		link_on_connect(ptr, cqe->res);
		break;
	case OP_MSG:
		ctrl_drain(w);
		break;
	case OP_OFFLOAD:
		offload_drain(&w->offload_port);   /* an offload thread woke us */
		break;
	default:
		break;
	}
}

/* Release what worker_setup() made, whether it finished or not. */
static void worker_teardown(struct worker *w)
{
	smacks_worker_stop(w);
	if (w->links)
		link_close(w);
	members_free(w);
	session_table_free(w);
	s2s_worker_free(w);
	offload_port_destroy(&w->offload_port);
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	if (w->ring.ring_fd > 0)
		io_uring_queue_exit(&w->ring);
	xmlstage_free(w->xs);
	tls_thread_exit();
	free(w->stamp);
	free(w->scratch);
	free(w->slots);
	free(w->bufmem);
	if (w->br)
		munmap(w->br, w->nbufs * sizeof(struct io_uring_buf));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->start_rc = worker_setup(w);
	if (w->start_rc < 0)
		worker_teardown(w);
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	if (w->start_rc < 0)
		return NULL;
	/* Jobs out on the offload pool complete back here: stay until they have. */
	while (!w->stop || w->nconns > 0 || offload_port_busy(&w->offload_port)) {
		struct __kernel_timespec ts = { 0 };
		struct io_uring_cqe *cqe;
		struct timespec mono;
		unsigned head, n = 0;

		/* Sleep until the next whole second at most: the timer wheel ticks
		 * on second boundaries, so deadlines fire within milliseconds.
		 * Connections paused by their rate limit are looked at every 20 ms,
		 * so a paced client waits for its budget, not for the next tick. */
		clock_gettime(CLOCK_MONOTONIC, &mono);
		ts.tv_nsec = 1000000000L - mono.tv_nsec + 1000000L;
		if (w->rate_paused && ts.tv_nsec > 20000000L)
			ts.tv_nsec = 20000000L;
		if (w->draining && ts.tv_nsec > 50000000L)
			ts.tv_nsec = 50000000L;
		if (w->native) {
			/* A reconnect to the session server is due sooner. */
			int wait = link_retry_wait_ms(w, worker_ms());
			if (wait >= 0 && ts.tv_nsec > (long)wait * 1000000L)
				ts.tv_nsec = (long)wait * 1000000L;
		}
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec = 1;
			ts.tv_nsec -= 1000000000L;
		}

		flush_all(w);
		if (w->native)
			link_flush(w);
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		w->now = clock_s();
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			dispatch(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
		offload_drain(&w->offload_port);   /* one load when idle; covers a lost wake-up */
		ctrl_drain(w);
		if (w->native)
			smacks_inbox(w);   /* XEP-0198 handovers from the other workers */
		if (w->draining && !w->stop)
			drain_tick(w);
		if (!w->stop && !w->draining)
			for (size_t i = 0; i < w->nlisteners; i++)
				if (!w->listeners[i].armed && w->now >= w->listeners[i].retry_at)
					accept_arm(&w->listeners[i]);
		if (w->rate_paused)
			rate_tick(w);
		if (w->native)
			link_arm(w);   /* a no-op unless an earlier arm could not be made */
		if (w->now > w->wheel_pos) {
			if (w->id == 0) {
				log_flush();   /* the count of lines a quiet call site suppressed */
				if (!w->stop)
					upload_tick(w);   /* XEP-0363: the expiry sweep */
			}
			timers_run(w);
			if (w->native)
				smacks_tick(w);   /* XEP-0198: acks asked, detached sessions expired */
		}
		if (w->native)
			link_tick(w);   /* a no-op unless the link is down and a retry is due */
	}
	flush_all(w);
	worker_teardown(w);
	log_info("worker stopped", "worker=%d", w->id);
	return NULL;
}

int worker_start(struct worker *w)
{
	int r;

	ck_ring_init(&w->ctrl, sizeof(w->ctrl_buf) / sizeof(w->ctrl_buf[0]));
	r = offload_port_init(&w->offload_port, -1, UD(NULL, OP_OFFLOAD));
	if (r < 0)
		return r;
	framer_limits_set(w);
	r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r)
		return -r;
	while (!__atomic_load_n(&w->started, __ATOMIC_ACQUIRE))
		usleep(1000);
	if (w->start_rc < 0) {
		pthread_join(w->thread, NULL);
		return w->start_rc;
	}
	return 0;
}
