/*
 * sm_gather — a question about every shard's own state, asked by one shard
 * of all the others, the answers gathered: the online users of a domain
 * (their number, their bare JIDs), an announcement delivered to every online
 * session of a domain, the group-chat service's public rooms.  Each shard
 * knows only its own sessions and rooms (docs/architecture.md, "Shards"); the
 * XEP-0133 commands (sm/adhoc.c) and the MUC service's disco#items (sm/muc.c)
 * need all of them.
 *
 * Transport: the one cross-shard stanzas already use, nothing new on the
 * wire.  A question is an iq get, an answer its iq result, both with one
 * child <gather xmlns='urn:xedge:gather:0'/>, from a served domain (the
 * server itself: no account can send from a bare domain) to a "probe" JID of
 * the target shard: the first of xedge-shard-0@D, xedge-shard-1@D, ... (D
 * the first served domain) that the shard hashes own (parser/shard.h; a few
 * tries for n shards, each a hash).  sm_remote_send() takes it there like
 * any stanza for another shard's account: the in-process link to that shard
 * (threads of one process), or an edge link flagged WIRE_STANZA_SHARD that
 * the edge relays (xedge-sm processes).  The target's shard_in() (remote.c)
 * hands an iq with this payload and a bare served-domain `from` here before
 * anything else; the same payload from anyone else is an ordinary stanza.
 *
 *   question  <gather op='online-num|online-list|announce|rooms' max='N'
 *                     domain='D' reply='PROBE'>[<s>subject</s><b>body</b>]
 *   answer    <gather op='...' shard='k' n='COUNT' [cut='1']><i a='..' [b='..']/>...
 *
 * `reply` is the asking shard's probe JID: the answer goes there.  The
 * answerer does its part at once (counts, lists at most `max` items of at
 * most SM_GATHER_ANSWER_BYTES, delivers the announcement to its own sessions)
 * and keeps nothing.  The asker does its own part the same way, without the
 * wire, and waits for the rest: a question ends when every shard of the set
 * (as it was when asked) answered, or after SM_GATHER_DEADLINE_MS with what
 * it has (`missing` counts the silent shards: the caller says so); it never
 * hangs.  An answer to a question that ended, a second answer from one
 * shard, an answer from a shard not asked: dropped.
 *
 * Bounds: SM_GATHER_MAX questions in flight per shard (beyond: -1, the caller
 * answers resource-constraint); the items kept per question at most
 * SM_GATHER_BYTES_MAX (beyond: `cut`).  All of it belongs to the sm thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/jid.h"
#include "parser/shard.h"
#include "parser/xtree.h"
#include "sm/sm_int.h"

#define GATHER_PROBE_TRIES 4096      /* probe localparts tried per shard */
#define GATHER_ITEM_MAX 1024         /* bytes of one item's a or b */

static const char *const op_names[] = {
	[SM_GATHER_ONLINE_NUM] = "online-num",
	[SM_GATHER_ONLINE_LIST] = "online-list",
	[SM_GATHER_ANNOUNCE] = "announce",
	[SM_GATHER_ROOMS] = "rooms",
};
#define GATHER_NOPS (sizeof(op_names) / sizeof(op_names[0]))

struct gather_q {
	bool used;
	int op;
	uint64_t seq;                /* its iq id: "g<seq>" */
	int64_t deadline;            /* CLOCK_MONOTONIC ms */
	uint64_t waiting;            /* bit k: shard k has not answered */
	size_t bytes;                /* of res.items */
	size_t cap;
	struct sm_gather_res res;
	void (*done)(struct sm *sm, const struct sm_gather_res *res, void *arg);
	void *arg;
};

struct sm_gather {
	struct gather_q q[SM_GATHER_MAX];
	uint64_t seq;
	struct sm_buf out;           /* questions and answers being built */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sm_gather *gather_get(struct sm *sm)
{
	if (!sm->gather && (sm->gather = calloc(1, sizeof(*sm->gather))))
		sm->gather->out.max = SM_GATHER_ANSWER_BYTES + 64u * 1024;
	return sm->gather;
}

static void items_free(struct sm_gather_res *res)
{
	for (size_t i = 0; i < res->nitems; i++) {
		free(res->items[i].a);
		free(res->items[i].b);
	}
	free(res->items);
	res->items = NULL;
	res->nitems = 0;
}

/* ---- the local part ---------------------------------------------------- */

struct local_ctx {
	struct gather_q *q;          /* the asker's own part: into q->res */
	struct sm_buf *b;            /* an answer: <i/> elements into b */
	size_t start;                /* b's length before the first item */
	unsigned max, n;             /* items wanted (0: the bytes bound only), emitted */
	bool cut;
};

/* Keep one item; false when no more may come (the caller stops). */
static bool emit(void *arg, const char *a, const char *b)
{
	struct local_ctx *c = arg;

	if (c->max && c->n >= c->max)
		return false;
	if (strlen(a) > GATHER_ITEM_MAX || (b && strlen(b) > GATHER_ITEM_MAX))
		return true;    /* never expected: our own JIDs and names are bounded */
	if (c->b) {
		if (sm_buf_used(c->b) - c->start > SM_GATHER_ANSWER_BYTES) {
			c->cut = true;
			return false;
		}
		sm_buf_str(c->b, "<i");
		sm_buf_attr(c->b, "a", a);
		sm_buf_attr(c->b, "b", b);
		sm_buf_str(c->b, "/>");
	} else {
		struct gather_q *q = c->q;
		size_t need = strlen(a) + (b ? strlen(b) : 0) + 2;

		if (q->bytes + need > SM_GATHER_BYTES_MAX) {
			q->res.cut = true;
			return false;
		}
		if (q->res.nitems == q->cap) {
			size_t cap = q->cap ? q->cap * 2 : 64;
			struct sm_gather_item *it = realloc(q->res.items, cap * sizeof(*it));

			if (!it) {
				q->res.cut = true;
				return false;
			}
			q->res.items = it;
			q->cap = cap;
		}
		q->res.items[q->res.nitems].a = strdup(a);
		q->res.items[q->res.nitems].b = b ? strdup(b) : NULL;
		if (!q->res.items[q->res.nitems].a || (b && !q->res.items[q->res.nitems].b)) {
			free(q->res.items[q->res.nitems].a);
			free(q->res.items[q->res.nitems].b);
			q->res.cut = true;
			return false;
		}
		q->res.nitems++;
		q->bytes += need;
	}
	c->n++;
	return true;
}

/* Is bare (user@domain) on domain d? */
static bool on_domain(const char *bare, const char *d)
{
	const char *at = strchr(bare, '@');

	return at && strcmp(at + 1, d) == 0;
}

/* This shard's part of op: its count, its items through emit(c). */
static unsigned long local_part(struct sm *sm, int op, const char *domain, const char *subject,
				const char *body, struct local_ctx *c)
{
	unsigned long n = 0;
	bool more = true;

	switch (op) {
	case SM_GATHER_ONLINE_NUM:
	case SM_GATHER_ONLINE_LIST:
		for (size_t i = 0; i <= sm->users.mask; i++)
			for (struct sm_tab_node *e = sm->users.slots[i]; e; e = e->next) {
				struct sm_user *u = sm_container_of(e, struct sm_user, node);

				if (!u->nsessions || !on_domain(u->bare, domain))
					continue;
				n++;
				if (op == SM_GATHER_ONLINE_LIST && more)
					more = emit(c, u->bare, NULL);
			}
		break;
	case SM_GATHER_ANNOUNCE:
		n = sm_adhoc_announce_local(sm, domain, subject, body);
		break;
	case SM_GATHER_ROOMS:
		n = sm_muc_public_rooms(sm, emit, c);
		break;
	}
	return n;
}

/* ---- the wire ------------------------------------------------------------ */

/* The probe JID of shard k into out: false when none was found (never
 * expected: each try is a 1/n chance). */
static bool probe(const struct sm *sm, size_t k, char *out, size_t cap)
{
	if (!sm->ndomains)
		return false;
	for (unsigned i = 0; i < GATHER_PROBE_TRIES; i++) {
		int n = snprintf(out, cap, "xedge-shard-%u@%s", i, sm->domains[0]);

		if (n < 0 || (size_t)n >= cap)
			return false;
		if (shard_owner(sm->shard_names, sm->nshards, out, (size_t)n) == k)
			return true;
	}
	return false;
}

/* Send the iq built in b (kind iq, type, from, to, id) to another shard. */
static void send_iq(struct sm *sm, struct sm_buf *b, const char *type, const char *from,
		    const char *to, const char *id)
{
	struct wire_msg m = { .type = WIRE_ROUTE };

	if (b->err) {
		log_warn("cross-shard question or answer too large, not sent", "to=\"%s\"", to);
		return;
	}
	m.u.stanza.kind = WIRE_KIND_IQ;
	m.u.stanza.type = sm_ws(type);
	m.u.stanza.to = sm_ws(to);
	m.u.stanza.from = sm_ws(from);
	m.u.stanza.id = sm_ws(id);
	m.u.stanza.ns = sm_ws(SM_GATHER_NS);
	m.u.stanza.raw = wire_s(sm_buf_data(b), sm_buf_used(b));
	sm_remote_send(sm, &m);
}

static void iq_open(struct sm_buf *b, const char *type, const char *from, const char *to,
		    const char *id)
{
	sm_buf_clear(b);
	sm_buf_fmt(b, "<iq type='%s'", type);
	sm_buf_attr(b, "id", id);
	sm_buf_attr(b, "from", from);
	sm_buf_attr(b, "to", to);
	sm_buf_str(b, "><gather xmlns='" SM_GATHER_NS "'");
}

/* ---- asking -------------------------------------------------------------- */

static int item_cmp(const void *x, const void *y)
{
	return strcmp(((const struct sm_gather_item *)x)->a, ((const struct sm_gather_item *)y)->a);
}

static void finish(struct sm *sm, struct gather_q *q)
{
	void (*done)(struct sm *, const struct sm_gather_res *, void *) = q->done;
	void *arg = q->arg;
	struct sm_gather_res res = q->res;

	for (uint64_t w = q->waiting; w; w &= w - 1)
		res.missing++;
	if (res.missing)
		log_warn("shards did not answer a cross-shard question in time", "op=%s missing=%u",
			 op_names[q->op], res.missing);
	if (res.nitems > 1)
		qsort(res.items, res.nitems, sizeof(*res.items), item_cmp);
	memset(q, 0, sizeof(*q));     /* free before done(): it may ask again */
	done(sm, &res, arg);
	items_free(&res);
}

int sm_gather_start(struct sm *sm, const struct sm_gather_req *rq)
{
	struct sm_gather *g = gather_get(sm);
	struct gather_q *q = NULL;
	struct local_ctx c = { .max = rq->max };
	char self[JID_MAX + 1], to[JID_MAX + 1], id[32], max[16];

	if (!g || rq->op < 0 || (size_t)rq->op >= GATHER_NOPS)
		return -1;
	for (size_t i = 0; i < SM_GATHER_MAX && !q; i++)
		if (!g->q[i].used)
			q = &g->q[i];
	if (!q) {
		log_warn("too many cross-shard questions in flight", "op=%s", op_names[rq->op]);
		return -1;
	}
	q->used = true;
	q->op = rq->op;
	q->seq = ++g->seq;
	q->done = rq->done;
	q->arg = rq->arg;
	q->deadline = now_ms() + SM_GATHER_DEADLINE_MS;
	c.q = q;
	q->res.n = local_part(sm, rq->op, rq->domain ? rq->domain : "", rq->subject, rq->body, &c);
	/* The others: each asked through its probe JID. */
	if (sm->nshards > 1 && sm->nshards <= 64) {
		bool asker = probe(sm, sm->shard_self, self, sizeof(self));

		snprintf(id, sizeof(id), "g%llu", (unsigned long long)q->seq);
		snprintf(max, sizeof(max), "%u", rq->max);
		for (size_t k = 0; k < sm->nshards; k++) {
			struct sm_buf *b = &g->out;

			if (k == sm->shard_self)
				continue;
			/* Waited for even when it cannot be asked: the deadline
			 * then reports it missing, never a silent part. */
			q->waiting |= 1ull << k;
			if (!asker || !probe(sm, k, to, sizeof(to))) {
				log_warn("no probe address for a shard", "shard=%zu", k);
				continue;
			}
			iq_open(b, "get", sm->domains[0], to, id);
			sm_buf_attr(b, "op", op_names[rq->op]);
			sm_buf_attr(b, "max", max);
			sm_buf_attr(b, "domain", rq->domain);
			sm_buf_attr(b, "reply", self);
			sm_buf_str(b, ">");
			if (rq->subject) {
				sm_buf_str(b, "<s>");
				sm_buf_esc(b, rq->subject, strlen(rq->subject));
				sm_buf_str(b, "</s>");
			}
			if (rq->body) {
				sm_buf_str(b, "<b>");
				sm_buf_esc(b, rq->body, strlen(rq->body));
				sm_buf_str(b, "</b>");
			}
			sm_buf_str(b, "</gather></iq>");
			send_iq(sm, b, "get", sm->domains[0], to, id);
		}
	}
	if (!q->waiting)
		finish(sm, q);
	return 0;
}

/* ---- answering, and taking answers ---------------------------------------- */

static int op_of(const char *s)
{
	for (size_t i = 0; s && i < GATHER_NOPS; i++)
		if (!strcmp(s, op_names[i]))
			return (int)i;
	return -1;
}

/* A question from another shard: this shard's part, answered at once. */
static void answer(struct sm *sm, const struct xtree_node *st, const struct xtree_node *gq)
{
	struct sm_gather *g = gather_get(sm);
	const char *id = xtree_attr(st, "id"), *from = xtree_attr(st, "from");
	const char *reply = xtree_attr(gq, "reply"), *domain = xtree_attr(gq, "domain");
	const char *maxs = xtree_attr(gq, "max");
	int op = op_of(xtree_attr(gq, "op"));
	char canon[JID_MAX + 1], num[24];
	struct local_ctx c = { 0 };
	const char *at = NULL;
	struct jid_view v;
	unsigned long n;
	int len;

	if (!g || op < 0 || !id || !from || !reply || strlen(reply) > JID_MAX ||
	    jid_parse(reply, strlen(reply), &v) < 0 || !v.local_len || v.resource_len ||
	    (len = jid_canon(&v, false, canon, sizeof(canon))) < 0 || !(at = strchr(canon, '@')) ||
	    !sm_domain_served(sm, at + 1, (size_t)len - (size_t)(at + 1 - canon)) ||
	    sm_owns(sm, canon, (size_t)len)) {
		log_warn("cross-shard question malformed, dropped", "op=%s", op >= 0 ? op_names[op] : "?");
		return;
	}
	c.max = maxs ? (unsigned)strtoul(maxs, NULL, 10) : 0;
	c.b = &g->out;
	iq_open(c.b, "result", from, canon, id);
	sm_buf_attr(c.b, "op", op_names[op]);
	sm_buf_fmt(c.b, " shard='%zu'", sm->shard_self);
	sm_buf_str(c.b, ">");
	c.start = sm_buf_used(c.b);
	n = local_part(sm, op, domain ? domain : "", xtree_text(xtree_child(gq, SM_GATHER_NS, "s")),
		       xtree_text(xtree_child(gq, SM_GATHER_NS, "b")), &c);
	snprintf(num, sizeof(num), "%lu", n);
	sm_buf_str(c.b, "<n>");
	sm_buf_str(c.b, num);
	sm_buf_str(c.b, c.cut ? "</n><cut/></gather></iq>" : "</n></gather></iq>");
	send_iq(sm, c.b, "result", from, canon, id);
}

/* An answer to one of our questions. */
static void take(struct sm *sm, const struct xtree_node *st, const struct xtree_node *gq)
{
	struct sm_gather *g = sm->gather;
	const char *id = xtree_attr(st, "id"), *shard = xtree_attr(gq, "shard"), *n;
	struct local_ctx c = { 0 };
	struct gather_q *q = NULL;
	unsigned long long seq;
	unsigned long k;
	char *end;

	if (!g || !id || id[0] != 'g' || !shard)
		return;
	seq = strtoull(id + 1, &end, 10);
	k = strtoul(shard, NULL, 10);
	for (size_t i = 0; *end == '\0' && i < SM_GATHER_MAX && !q; i++)
		if (g->q[i].used && g->q[i].seq == seq)
			q = &g->q[i];
	if (!q || k >= 64 || !(q->waiting & (1ull << k))) {
		log_debug("cross-shard answer for no question waiting for it, dropped", "id=\"%s\" "
			  "shard=\"%s\"", id, shard);
		return;
	}
	q->waiting &= ~(1ull << k);
	n = xtree_text(xtree_child(gq, SM_GATHER_NS, "n"));
	q->res.n += n ? strtoul(n, NULL, 10) : 0;
	if (xtree_child(gq, SM_GATHER_NS, "cut"))
		q->res.cut = true;
	c.q = q;
	for (const struct xtree_node *it = xtree_child(gq, SM_GATHER_NS, "i"); it;
	     it = xtree_next(it, SM_GATHER_NS, "i")) {
		const char *a = xtree_attr(it, "a");

		if (a && !emit(&c, a, xtree_attr(it, "b")))
			break;
	}
	if (!q->waiting)
		finish(sm, q);
}

bool sm_gather_in(struct sm *sm, const struct wire_msg *m)
{
	static const struct xtree_limits lim = {
		.max_bytes = SM_GATHER_ANSWER_BYTES + 64u * 1024, .max_mem = 8u << 20,
		.max_depth = 4, .max_elements = 65536, .max_attrs = 8
	};
	const struct xtree_node *st, *gq;
	struct xtree *t;

	if (m->u.stanza.kind != WIRE_KIND_IQ || !sm_ws_is(m->u.stanza.ns, SM_GATHER_NS))
		return false;
	t = xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, &lim,
			NULL);
	if (!t) {
		log_warn("cross-shard question or answer unreadable, dropped", "%s", "");
		return true;
	}
	st = xtree_root(t);
	gq = xtree_child(st, SM_GATHER_NS, "gather");
	if (gq && sm_ws_is(m->u.stanza.type, "get"))
		answer(sm, st, gq);
	else if (gq && sm_ws_is(m->u.stanza.type, "result"))
		take(sm, st, gq);
	/* errors (a shard unreachable, bounced by an edge): the deadline answers */
	xtree_free(t);
	return true;
}

int sm_gather_timeout(const struct sm *sm)
{
	int64_t first = -1, now;

	if (!sm->gather)
		return -1;
	for (size_t i = 0; i < SM_GATHER_MAX; i++)
		if (sm->gather->q[i].used && (first < 0 || sm->gather->q[i].deadline < first))
			first = sm->gather->q[i].deadline;
	if (first < 0)
		return -1;
	now = now_ms();
	return first <= now ? 0 : (int)(first - now);
}

void sm_gather_tick(struct sm *sm)
{
	int64_t now;

	if (!sm->gather)
		return;
	now = now_ms();
	for (size_t i = 0; i < SM_GATHER_MAX; i++)
		if (sm->gather->q[i].used && sm->gather->q[i].deadline <= now)
			finish(sm, &sm->gather->q[i]);
}

void sm_gather_free(struct sm *sm)
{
	struct sm_gather *g = sm->gather;

	if (!g)
		return;
	for (size_t i = 0; i < SM_GATHER_MAX; i++) {
		struct gather_q *q = &g->q[i];

		if (!q->used)
			continue;
		q->done(sm, NULL, q->arg);     /* NULL: nobody is answered, arg freed */
		items_free(&q->res);
	}
	sm_buf_free(&g->out);
	free(g);
	sm->gather = NULL;
}
