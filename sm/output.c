/*
 * output — what the session server writes to its links: frames queued per
 * link and written once per loop (sm_flush_all: one send per link, which
 * coalesces the frames of the batch), the links' input held while their
 * output is backed up (backpressure), and the confirmations an edge in
 * another process gets of the frames it sent (WIRE_HANDLED).
 *
 * Backpressure: a link whose unsent output passes SM_LINK_OUT_HIGH (an edge
 * reading slowly, a fan-out bigger than one loop can write: a thousand
 * occupants joining rooms of hundreds) stops the server reading from every
 * link — it stops making more output — until every link is under
 * SM_LINK_OUT_LOW.  Its edges, no longer read, pause their own clients
 * (core/link.c: link_congested).  Only a link past SM_LINK_OUT_MAX, an edge
 * that does not read at all, is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/chan.h"
#include "core/log.h"
#include "sm/sm_int.h"
#include "sm/store.h"

#define SM_OUT_SHRINK (1u << 20)   /* free an idle output buffer larger than this */

static const char *link_state_str(int st)
{
	static const char *const names[] = { "hello", "ready", "dead" };

	return st >= 0 && st <= SM_LINK_DEAD ? names[st] : "?";
}

/* ---- links: output ----------------------------------------------------- */

void sm_session_link(struct sm_link *l, struct sm_session *s)
{
	sm_tab_insert(&l->sessions, &s->by_sid, sm_tab_hash(&l->sessions, &s->sid, sizeof(s->sid)));
	s->lprev = NULL;
	s->lnext = l->shead;
	if (l->shead)
		l->shead->lprev = s;
	l->shead = s;
	l->nsessions++;
}

void sm_session_unlink(struct sm_link *l, struct sm_session *s)
{
	sm_tab_remove(&l->sessions, &s->by_sid);
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else
		l->shead = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	s->lnext = s->lprev = NULL;
	l->nsessions--;
}

struct sm_link *sm_link_by_id(struct sm *sm, uint32_t id)
{
	for (struct sm_link *l = sm->links; l; l = l->next)
		if (l->id == id)
			return l->state == SM_LINK_DEAD ? NULL : l;
	return NULL;
}

static void link_epoll(struct sm_link *l, bool out)
{
	bool in = !l->sm->hold;
	struct epoll_event ev = { .events = (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0), .data.ptr = &l->ev };

	if ((l->epollout == out && l->epollin_off == !in) || l->ev.fd < 0)
		return;
	if (epoll_ctl(l->sm->epfd, EPOLL_CTL_MOD, l->ev.fd, &ev) == 0) {
		l->epollout = out;
		l->epollin_off = !in;
	}
}
void sm_link_kill(struct sm_link *l, const char *why)
{
	if (l->state == SM_LINK_DEAD)
		return;
	log_warn("edge link closed", "link=%u worker=%u peer=\"%s\" state=%s reason=\"%s\" "
		 "sessions=%zu frames_in=%llu frames_out=%llu dropped=%llu", l->id, l->worker,
		 l->peer, link_state_str(l->state), why, l->nsessions,
		 (unsigned long long)l->frames_in, (unsigned long long)l->frames_out,
		 (unsigned long long)l->dropped);
	l->state = SM_LINK_DEAD;
	/* Its external routes end now: what is routed before the reap bounces. */
	sm_remote_link_gone(l->sm, l);
	l->dead_next = l->sm->dead;
	l->sm->dead = l;
}

void sm_link_send(struct sm_link *l, const struct wire_msg *m)
{
	size_t need, n;

	if (l->state == SM_LINK_DEAD)
		return;
	need = wire_size(m);
	if (sm_buf_reserve(&l->out, need) < 0) {
		/* The edge stopped reading: holding more would only grow the sm. */
		sm_link_kill(l, "output backlog over limit");
		return;
	}
	n = wire_encode(m, l->out.p + l->out.len, l->out.cap - l->out.len);
	if (n == 0) {
		log_warn("frame not encodable, dropped", "link=%u type=%s", l->id,
			 wire_type_str(m->type));
		return;
	}
	l->out.len += n;
	l->frames_out++;
	if (sm_buf_used(&l->out) > SM_LINK_OUT_HIGH)
		l->sm->over = true;
	if (!l->flush_queued) {
		l->flush_queued = true;
		l->flush_next = l->sm->flush;
		l->sm->flush = l;
	}
}

void sm_link_flush(struct sm_link *l)
{
	if (l->cout) {
		/* Whole frames only (sm_link_send encodes whole ones); a full
		 * ring keeps them for the next loop (chan_full: soon). */
		if (sm_buf_used(&l->out) &&
		    chan_put(l->cout, sm_buf_data(&l->out), sm_buf_used(&l->out)) < 0) {
			l->sm->chan_full = true;
			return;
		}
		sm_buf_clear(&l->out);
		return;
	}
	while (sm_buf_used(&l->out)) {
		ssize_t n = send(l->ev.fd, sm_buf_data(&l->out), sm_buf_used(&l->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			sm_link_kill(l, strerror(errno));
			return;
		}
		sm_buf_consume(&l->out, (size_t)n);
	}
	if (!sm_buf_used(&l->out) && l->out.cap > SM_OUT_SHRINK) {
		size_t max = l->out.max;

		sm_buf_free(&l->out);
		l->out.max = max;
	}
	link_epoll(l, sm_buf_used(&l->out) > 0);
}

void sm_flush_all(struct sm *sm)
{
	struct sm_link *again = NULL;

	while (sm->flush) {
		struct sm_link *l = sm->flush;

		sm->flush = l->flush_next;
		l->flush_queued = false;
		if (l->state != SM_LINK_DEAD)
			sm_link_flush(l);
		if (l->cout && sm_buf_used(&l->out) && l->state != SM_LINK_DEAD) {
			l->flush_queued = true;     /* its chan was full */
			l->flush_next = again;
			again = l;
		}
	}
	sm->flush = again;
}

/* ---- backpressure ------------------------------------------------------ */

bool sm_hold_input(struct sm *sm)
{
	bool over = false, under = true;

	for (struct sm_link *l = sm->links; l; l = l->next) {
		size_t n = l->state == SM_LINK_DEAD ? 0 : sm_buf_used(&l->out);

		over |= n > SM_LINK_OUT_HIGH;
		under &= n < SM_LINK_OUT_LOW;
	}
	sm->over = false;
	if (sm->hold == (sm->hold ? !under : over))
		return sm->hold;
	sm->hold = !sm->hold;
	if (sm->hold)
		log_info("input held: a link's output is backed up", "links=%zu", sm->nlinks);
	else
		log_info("input resumed: links' output drained", "links=%zu", sm->nlinks);
	for (struct sm_link *l = sm->links; l; l = l->next)
		if (l->state != SM_LINK_DEAD)
			link_epoll(l, l->epollout);
	return sm->hold;
}

/* ---- confirmations ---------------------------------------------------- *
 *
 * An edge in another process keeps a copy of what it sent us (its client's
 * XEP-0198 stanzas, relayed and returned stanzas) until we confirm it, and
 * sends it again to a restarted shard: its <a h/> counts only confirmed
 * stanzas, so a crash here loses nothing a client saw acknowledged.  A
 * frame is handled once its outcome no longer depends on this process:
 *   - what it made us send is written to the kernel, on every link: the
 *     counts go out only after a flush that left no link with output;
 *   - the storage jobs it caused have committed, and stanzas it parked while
 *     their account loaded were replayed: those hold the frame (struct
 *     sm_obl: sm_store_submit() holds, completion releases; sm_user_need()
 *     holds, the replay releases) and the count stops before it.
 * WIRE_HANDLED carries the count of the link's frames, HELLO included, whose
 * outcome is settled: every one before the oldest held one.
 */

struct sm_obl *sm_obl_hold(struct sm *sm)
{
	struct sm_obl *o = sm->obl;
	struct sm_link *l = sm->obl_link;

	if (o) {
		o->refs++;
		return o;
	}
	if (!l || !(o = calloc(1, sizeof(*o))))
		return NULL;   /* not a confirming link's frame (or no memory: confirmed early) */
	o->link = l;
	o->seq = l->frames_in;
	o->refs = 1;
	if (l->obl_tail)
		l->obl_tail->next = o;
	else
		l->obl = o;
	l->obl_tail = o;
	sm->obl = o;
	return o;
}

void sm_obl_release(struct sm_obl *o)
{
	struct sm_link *l;

	if (!o || --o->refs)
		return;
	if (!(l = o->link)) {
		free(o);       /* its link is gone */
		return;
	}
	/* Settled ones leave from the front, in order. */
	while (l->obl && !l->obl->refs) {
		o = l->obl;
		l->obl = o->next;
		free(o);
	}
	if (!l->obl)
		l->obl_tail = NULL;
}

void sm_obl_within(struct sm *sm, struct sm_obl *o, void (*fn)(struct sm *, void *), void *arg)
{
	struct sm_link *ol = sm->obl_link;
	struct sm_obl *oo = sm->obl;

	sm->obl_link = NULL;
	sm->obl = o;
	fn(sm, arg);
	sm->obl_link = ol;
	sm->obl = oo;
}

/* The link goes: holders keep its pending frames until they let go. */
void sm_obl_link_gone(struct sm_link *l)
{
	struct sm_obl *o, *next;

	for (o = l->obl; o; o = next) {
		next = o->next;
		o->link = NULL;
		if (!o->refs)
			free(o);
	}
	l->obl = l->obl_tail = NULL;
}

/* After a flush: tell each confirming link how many of its frames are
 * settled, when no output of any link is still in our buffers. */
void sm_confirm_all(struct sm *sm)
{
	bool sent = false;

	for (struct sm_link *l = sm->links; l; l = l->next)
		if (l->state != SM_LINK_DEAD && sm_buf_used(&l->out) && !l->cout)
			return;   /* a slow edge: the counts wait for its bytes */
	for (struct sm_link *l = sm->links; l; l = l->next) {
		struct wire_msg m = { .type = WIRE_HANDLED };

		if (!l->confirm || l->state != SM_LINK_READY)
			continue;
		m.u.handled.count = l->obl ? l->obl->seq - 1 : l->frames_in;
		if (m.u.handled.count <= l->confirmed)
			continue;
		l->confirmed = m.u.handled.count;
		sm_link_send(l, &m);
		sent = true;
	}
	if (sent)
		sm_flush_all(sm);
}

