/*
 * rtx — see rtx.h.
 *
 * An item is on one of its link's two lists: `rtx` (sent, seq = its number
 * on the link, in sending order: confirmations take from the front) or
 * `wait` (seq 0: the link was lost before it was confirmed).  A client's
 * item is also on its session's list (snext), oldest first: the session's
 * h stops before the first one.  Both lists are doubly linked: a session
 * bound again takes its items out of the middle of `wait`.
 */
#include "core/rtx.h"

#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/log.h"

struct rtx_item {
	struct rtx_item *next, *prev;  /* the link's rtx or wait list */
	struct rtx_item *snext;        /* the session's list */
	struct session *s;             /* RTX_CLIENT: its session; NULL once gone */
	uint64_t seq;                  /* its frame's number on the link; 0: waiting */
	uint32_t in_no;
	uint32_t len;
	uint8_t what;                  /* enum rtx_what */
	uint8_t frame[];               /* the encoded frame */
};

static void list_push(struct rtx_item **head, struct rtx_item **tail, struct rtx_item *it)
{
	it->next = NULL;
	it->prev = *tail;
	if (*tail)
		(*tail)->next = it;
	else
		*head = it;
	*tail = it;
}

static void list_take(struct rtx_item **head, struct rtx_item **tail, struct rtx_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		*head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		*tail = it->prev;
	it->next = it->prev = NULL;
}

/* Off its session's list (it is the oldest there but for odd orders). */
static void session_take(struct rtx_item *it)
{
	struct session *s = it->s;
	struct rtx_item **pp, *prev = NULL;

	if (!s)
		return;
	for (pp = &s->rtx; *pp && *pp != it; pp = &(*pp)->snext)
		prev = *pp;
	if (*pp)
		*pp = it->snext;
	if (s->rtx_tail == it)
		s->rtx_tail = prev;
	it->s = NULL;
	it->snext = NULL;
}

/* Put it on the wire of l (up) and on its sent list. */
static int put(struct link *l, struct rtx_item *it)
{
	int r = link_send_raw(l, it->frame, it->len);

	if (r == 0) {
		it->seq = l->nsent;
		list_push(&l->rtx, &l->rtx_tail, it);
	}
	return r;
}

static void park(struct link *l, struct rtx_item *it)
{
	it->seq = 0;
	list_push(&l->wait, &l->wait_tail, it);
	l->nwait++;
}

int rtx_send(struct link *l, const struct wire_msg *m, struct session *s, uint32_t in_no, enum rtx_what what)
{
	size_t n = wire_size(m);
	struct rtx_item *it;
	int r;

	if (l->cout)
		return link_send(l, m);   /* an embedded shard: it dies with us */
	if (l->dead && what == RTX_CLIENT)
		return -EPIPE;
	if (n == 0 || !(it = malloc(sizeof(*it) + n)))
		return -ENOMEM;
	if (wire_encode(m, it->frame, n) != n) {
		free(it);
		return -EINVAL;
	}
	it->len = (uint32_t)n;
	it->what = (uint8_t)what;
	it->in_no = in_no;
	it->snext = NULL;
	it->s = what == RTX_CLIENT ? s : NULL;
	if (l->dead) {
		park(l, it);   /* for the shard's successor */
		return 0;
	}
	r = put(l, it);
	if (r < 0) {
		free(it);
		return r;
	}
	if (it->s) {
		if (s->rtx_tail)
			s->rtx_tail->snext = it;
		else
			s->rtx = it;
		s->rtx_tail = it;
	}
	return 0;
}

void rtx_confirm(struct link *l, uint64_t count)
{
	struct rtx_item *it;

	while ((it = l->rtx) && it->seq <= count) {
		list_take(&l->rtx, &l->rtx_tail, it);
		session_take(it);
		free(it);
	}
}

bool rtx_oldest(const struct session *s, uint32_t *in_no)
{
	if (!s->rtx)
		return false;
	*in_no = s->rtx->in_no;
	return true;
}

void rtx_link_down(struct link *l)
{
	struct rtx_item *it;
	unsigned kept = 0;

	while ((it = l->rtx)) {
		list_take(&l->rtx, &l->rtx_tail, it);
		if (it->what == RTX_CLIENT && !it->s) {
			free(it);   /* its session went: never acknowledged to anyone */
			continue;
		}
		park(l, it);
		kept++;
	}
	if (kept)
		log_warn("unconfirmed frames kept for the shard's return", "worker=%d shard=%u count=%u",
			 l->w->id, l->shard, kept);
}

void rtx_link_up(struct link *l)
{
	struct rtx_item *it, *next;
	unsigned n = 0;

	for (it = l->wait; it; it = next) {
		next = it->next;
		if (it->what == RTX_CLIENT)
			continue;   /* once its session is bound again */
		list_take(&l->wait, &l->wait_tail, it);
		l->nwait--;
		if (put(l, it) < 0) {
			park(l, it);
			break;
		}
		n++;
	}
	if (n)
		log_info("frames sent again to the restarted shard", "worker=%d shard=%u count=%u",
			 l->w->id, l->shard, n);
}

void rtx_rebound(struct worker *w, struct session *s)
{
	struct link *l = &w->links[s->shard];
	unsigned n = 0;

	for (struct rtx_item *it = s->rtx; it; it = it->snext) {
		if (it->seq)
			continue;
		list_take(&l->wait, &l->wait_tail, it);
		l->nwait--;
		if (put(l, it) < 0)
			park(l, it);
		else
			n++;
	}
	if (n)
		log_info("unconfirmed stanzas sent again", "sid=%llu jid=%s count=%u",
			 (unsigned long long)s->id, s->jid ? s->jid : "-", n);
}

void rtx_session_gone(struct worker *w, struct session *s)
{
	struct rtx_item *it, *next;

	for (it = s->rtx; it; it = next) {
		next = it->snext;
		it->s = NULL;
		it->snext = NULL;
		/* Unsent: its client never saw it acknowledged.  Drop it. */
		if (!it->seq) {
			struct link *l = &w->links[s->shard];

			list_take(&l->wait, &l->wait_tail, it);
			l->nwait--;
			free(it);
		}
	}
	s->rtx = s->rtx_tail = NULL;
}

void rtx_link_free(struct link *l)
{
	struct rtx_item *it;

	while ((it = l->rtx)) {
		list_take(&l->rtx, &l->rtx_tail, it);
		session_take(it);
		free(it);
	}
	while ((it = l->wait)) {
		list_take(&l->wait, &l->wait_tail, it);
		session_take(it);
		free(it);
	}
	l->nwait = 0;
}
