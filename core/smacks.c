/*
 * smacks — see smacks.h.
 *
 * A session's stream management state is one of: live (attached to its
 * stream), detached (s->c NULL, on w->smk_list with `expires`), a
 * placeholder on the worker a <resume/> reached (`joining`: the state is on
 * its way), a stub on the worker it left (`moved`: forwards frames until
 * the session server's MOVED marker), or arrived (`moving_in`: live frames
 * held until the stub's last forward).  Placeholders and stubs give up
 * after SMACKS_MOVE_WAIT seconds.
 *
 * Invariant: the unacked queue holds exactly the stanzas numbered
 * out_acked+1 .. out_n (modulo 2^32), oldest first; `acked` moves only on a
 * valid <a/> or <resume/>.  Every `h` a client sends is checked against
 * out_n - out_acked before anything is dropped (XEP-0198 §4: a count past
 * what was sent is the stream error undefined-condition with
 * <handled-count-too-high/>).
 */
#include "core/smacks.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csi.h"
#include "core/link.h"
#include "core/log.h"
#include "core/rtx.h"
#include "core/session.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "parser/jid.h"
#include "tls/crypto.h"

#define SMACKS_MAX_WORKERS 1024
#define SMACKS_REG_SLOTS 4096
#define SMACKS_MOVE_WAIT 60    /* seconds a stub forwards, a placeholder or an arrival waits */

struct smk_item {
	struct smk_item *next;
	uint64_t rx_end;      /* s->rx once it was handed out: delivery reports up to here */
	uint32_t len;
	uint8_t kind;         /* WIRE_KIND_* from the session server; 0: the edge's own answer */
	bool track;           /* WIRE_STANZA_TRACK: the session server re-routes it itself */
	uint8_t raw[];
};

struct smacks {
	uint32_t in_n;        /* client stanzas counted, modulo 2^32 (h: h_now()) */
	uint32_t out_n;       /* stanzas sent to the client */
	uint32_t out_acked;   /* the client's last h */
	uint32_t since_r;     /* stanzas sent since our last <r/> */
	uint32_t max;         /* resumption: seconds a detached session lives; 0: not resumable */
	uint64_t rx_base;     /* s->rx at <enable/> */
	uint64_t last_r;      /* worker seconds of our last <r/> */
	uint64_t expires;     /* detached: when it ends */
	size_t qbytes;        /* raw bytes in the queue */
	struct smk_item *head, *tail;
	bool detached;
	bool resending;       /* writing the queue again after <resumed/>: not counted twice */
	bool overflow;        /* the queue passed max_unacked: the stream must end */
	bool ending;          /* the stream ends by our decision: no detach */
	bool registered;      /* the token is in the registry (resumable) */
	/* Handover between workers (see "moving" below). */
	bool joining;         /* a placeholder: the state is on its way from another worker */
	bool moved;           /* a stub: the session went to worker to_worker as to_sid */
	bool moving_in;       /* arrived: live frames wait for the old worker's last forward */
	bool adopting;        /* resumption on another edge: the session server is asked (core/adopt.c) */
	uint32_t sm_h;        /* the h the session server counts (core/adopt.c): in_h as of the last
	                         WIRE_SMACKS, plus the stanzas forwarded since */
	bool fwd_now;         /* a forwarded frame is being handled (not held) */
	int to_worker;
	uint64_t to_sid;
	uint32_t join_idx, join_gen, join_h; /* placeholder: the waiting stream and its h */
	struct smk_item *held, *held_tail;   /* moving_in: live frames, in order */
	size_t held_bytes;
	uint8_t next_kind;
	bool next_track;
	struct session *next, *prev;  /* w->smk_list */
	uint8_t token[SMACKS_TOKEN];
	char id[SMACKS_ID_MAX];
};

/* ---- the process-wide registry ---------------------------------------------
 *
 * Which worker holds the session a resumption id names, and as which sid:
 * the only state workers share, behind one mutex (taken per <enable/>,
 * <resume/>, handover and session end: rare next to stanzas).  The key is
 * the id's random part.  The workers themselves are registered here too, so
 * one can post to another's inbox.
 */
struct reg_entry {
	struct reg_entry *next;
	uint8_t token[SMACKS_TOKEN];
	int worker;
	uint64_t sid;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg_tab[SMACKS_REG_SLOTS];
static struct worker *reg_workers[SMACKS_MAX_WORKERS];

static struct reg_entry **reg_slot(const uint8_t *token)
{
	uint32_t h;

	memcpy(&h, token, sizeof(h));   /* random bytes: a fine hash */
	return &reg_tab[h % SMACKS_REG_SLOTS];
}

/* Insert or update token -> (worker, sid).  false when out of memory. */
static bool reg_put(const uint8_t *token, int worker, uint64_t sid)
{
	struct reg_entry **slot, *e;
	bool ok = true;

	pthread_mutex_lock(&reg_lock);
	slot = reg_slot(token);
	for (e = *slot; e && memcmp(e->token, token, SMACKS_TOKEN); e = e->next)
		;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		memcpy(e->token, token, SMACKS_TOKEN);
		e->next = *slot;
		*slot = e;
	}
	if (e) {
		e->worker = worker;
		e->sid = sid;
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

static bool reg_get(const uint8_t *token, int *worker, uint64_t *sid)
{
	struct reg_entry *e;

	pthread_mutex_lock(&reg_lock);
	for (e = *reg_slot(token); e && memcmp(e->token, token, SMACKS_TOKEN); e = e->next)
		;
	if (e) {
		*worker = e->worker;
		*sid = e->sid;
	}
	pthread_mutex_unlock(&reg_lock);
	return e != NULL;
}

/* Remove token's entry if it still names (worker, sid). */
static void reg_del(const uint8_t *token, int worker, uint64_t sid)
{
	struct reg_entry **pe, *e;

	pthread_mutex_lock(&reg_lock);
	for (pe = reg_slot(token); (e = *pe); pe = &e->next) {
		if (!memcmp(e->token, token, SMACKS_TOKEN)) {
			if (e->worker == worker && e->sid == sid) {
				*pe = e->next;
				explicit_bzero(e, sizeof(*e));
				free(e);
			}
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- the worker's list ---------------------------------------------------- */

static void list_add(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	k->prev = NULL;
	k->next = w->smk_list;
	if (w->smk_list)
		w->smk_list->smk->prev = s;
	w->smk_list = s;
}

static void list_del(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	if (k->prev)
		k->prev->smk->next = k->next;
	else if (w->smk_list == s)
		w->smk_list = k->next;
	if (k->next)
		k->next->smk->prev = k->prev;
	k->next = k->prev = NULL;
}

/* ---- output: counting and keeping ------------------------------------------ */

static void send_r(struct conn *c, struct smacks *k)
{
	k->since_r = 0;
	k->last_r = c->w->now;
	xmpp_outs(c, "<r xmlns='" NS_SM "'/>");
}

static bool is_stanza(const uint8_t *p, size_t n)
{
	static const char *const names[] = { "<message", "<presence", "<iq" };

	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(names[i]);
		if (n > l && memcmp(p, names[i], l) == 0 &&
		    (p[l] == ' ' || p[l] == '>' || p[l] == '/' || p[l] == '\t' || p[l] == '\n' || p[l] == '\r'))
			return true;
	}
	return false;
}

/* Keep one stanza as sent (number out_n + 1).  false when out of memory (the
 * stream then cannot keep its promise: it ends). */
static bool push(struct worker *w, struct session *s, const void *raw, size_t len, int kind, bool track)
{
	struct smacks *k = s->smk;
	struct smk_item *it = malloc(sizeof(*it) + len);

	k->out_n++;
	if (!it) {
		k->overflow = true;
		return false;
	}
	it->next = NULL;
	it->rx_end = s->rx;
	it->len = (uint32_t)len;
	it->kind = (uint8_t)kind;
	it->track = track;
	memcpy(it->raw, raw, len);
	if (k->tail)
		k->tail->next = it;
	else
		k->head = it;
	k->tail = it;
	k->qbytes += len;
	if (k->qbytes > w->cfg->smacks.max_unacked)
		k->overflow = true;
	return true;
}

void smacks_next(struct session *s, int kind, bool track)
{
	if (s->smk) {
		s->smk->next_kind = (uint8_t)kind;
		s->smk->next_track = track;
	}
}

void smacks_out(struct conn *c, const void *data, size_t len)
{
	struct session *s = c->sess;
	struct smacks *k = s->smk;
	int kind = k->next_kind;
	bool track = k->next_track;

	if (k->resending || s->state == SS_CLOSED || !is_stanza(data, len))
		return;
	k->next_kind = 0;
	k->next_track = false;
	push(c->w, s, data, len, kind, track);
	if (++k->since_r >= SMACKS_R_EVERY && !(c->flags & (CF_PEER_GONE | CF_CLOSED)) &&
	    c->state == CS_SESSION)
		send_r(c, k);
}

void smacks_handled(struct session *s)
{
	struct smacks *k = s->smk;

	if (!k)
		return;
	k->in_n++;
	/* The session server counts what it is forwarded (core/adopt.c): a
	 * stanza the edge answered itself is told to it.  (Frames keep their
	 * order on the link: the count it gets follows every stanza before.) */
	if (k->registered && k->sm_h != k->in_n && s->c) {
		adopt_announce(s->c->w, s, k->id, k->max, k->in_n);
		k->sm_h = k->in_n;
	}
}

void smacks_forwarded(struct session *s)
{
	if (s->smk)
		s->smk->sm_h++;
}

uint32_t smacks_in_next(const struct session *s)
{
	return s->smk->in_n + 1;
}

/* The h we tell the client: its stanzas handled, up to the first one a
 * session server in another process has not confirmed yet (core/rtx.h). */
static uint32_t h_now(const struct session *s)
{
	uint32_t first;

	return rtx_oldest(s, &first) ? first - 1 : s->smk->in_n;
}

uint64_t smacks_written_cap(const struct session *s, uint64_t rx)
{
	return s->smk && rx > s->smk->rx_base ? s->smk->rx_base : rx;
}

/* Drop the n oldest stanzas: the client has them.  Delivery reports move to
 * the end of the last one. */
static void drop(struct worker *w, struct session *s, uint32_t n)
{
	struct smacks *k = s->smk;
	bool tracked = false;

	while (n-- && k->head) {
		struct smk_item *it = k->head;

		k->head = it->next;
		k->qbytes -= it->len;
		if (it->rx_end > s->delivered)
			s->delivered = it->rx_end;
		tracked |= it->track;
		free(it);
	}
	if (!k->head)
		k->tail = NULL;
	if (k->qbytes <= w->cfg->smacks.max_unacked)
		k->overflow = false;
	if ((tracked || s->track) && s->delivered != s->reported && session_announced(s))
		native_delivered(w, s);
}

/* ---- elements from the client ---------------------------------------------- */

static void failed(struct conn *c, const char *cond, const struct session *h_of)
{
	char buf[256];

	if (h_of)
		snprintf(buf, sizeof(buf), "<failed xmlns='" NS_SM "' h='%" PRIu32 "'><%s xmlns='" NS_STANZAS
			 "'/></failed>", h_now(h_of), cond);
	else
		snprintf(buf, sizeof(buf), "<failed xmlns='" NS_SM "'><%s xmlns='" NS_STANZAS "'/></failed>",
			 cond);
	xmpp_outs(c, buf);
}

/* XEP-0198 §4: an h acknowledging more than was sent. */
static int too_high(struct conn *c, uint32_t h, uint32_t sent)
{
	char buf[160];

	if (c->sess && c->sess->smk)
		c->sess->smk->ending = true;
	snprintf(buf, sizeof(buf), "<handled-count-too-high xmlns='" NS_SM "' h='%" PRIu32
		 "' send-count='%" PRIu32 "'/>", h, sent);
	xmpp_error_app(c, "undefined-condition", buf);
	return STOP_DISCARD;
}

/* An unsigned 32-bit decimal attribute; false when absent or not one. */
static bool attr_u32(const struct xs_stanza *st, const uint8_t *p, const char *name, uint32_t *out)
{
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, name, &n);
	uint64_t x = 0;

	if (!v || n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > UINT32_MAX)
		return false;
	*out = (uint32_t)x;
	return true;
}

static bool attr_true(const struct xs_stanza *st, const uint8_t *p, const char *name)
{
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, name, &n);

	return v && ((n == 4 && !memcmp(v, "true", 4)) || (n == 1 && v[0] == '1'));
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static void make_id(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;
	int n = snprintf(k->id, sizeof(k->id), "%s.%d.%016" PRIx64 ".", w->cfg->smacks.edge_id, w->id, s->id);

	for (size_t i = 0; i < SMACKS_TOKEN && n + 2 < (int)sizeof(k->id); i++)
		n += snprintf(k->id + n, sizeof(k->id) - (size_t)n, "%02x", k->token[i]);
}

static int on_enable(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct smacks *k;
	uint32_t want = 0;
	char buf[256];

	/* §3: only after resource binding ... */
	if (!(c->flags & CF_BOUND) || !s) {
		failed(c, "unexpected-request", NULL);
		return GO_ON;
	}
	/* ... and once: "a second <enable/> ... SHOULD [get] a stream error". */
	if (s->smk) {
		s->smk->ending = true;
		xmpp_error(c, "policy-violation", "stream management is already enabled");
		return STOP_DISCARD;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		failed(c, "resource-constraint", NULL);
		return GO_ON;
	}
	s->smk = k;
	k->rx_base = s->rx;
	k->last_r = w->now;
	if (attr_true(st, p, "resume") && w->cfg->smacks.resume_timeout > 0) {
		if (crypto_random(k->token, sizeof(k->token)) < 0) {
			free(k);
			s->smk = NULL;
			failed(c, "internal-server-error", NULL);
			return GO_ON;
		}
		/* §5: the client's max is a preference; ours is the limit. */
		k->max = w->cfg->smacks.resume_timeout;
		if (attr_u32(st, p, "max", &want) && want > 0 && want < k->max)
			k->max = want;
		make_id(w, s);
		k->registered = reg_put(k->token, w->id, s->id);
		if (!k->registered)
			k->max = 0;   /* out of memory: acks only */
	}
	if (k->max) {
		snprintf(buf, sizeof(buf), "<enabled xmlns='" NS_SM "' id='%s' resume='true' max='%" PRIu32 "'/>",
			 k->id, k->max);
	} else {
		snprintf(buf, sizeof(buf), "<enabled xmlns='" NS_SM "'/>");
	}
	list_add(w, s);
	xmpp_outs(c, buf);
	if (k->max)   /* the session server keeps it if this edge dies (core/adopt.c) */
		adopt_announce(w, s, k->id, k->max, k->in_n);
	log_info("stream management enabled", "conn=%u worker=%d jid=%s resume=%u max=%u", c->idx, w->id, s->jid,
		 k->max > 0, k->max);
	return GO_ON;
}

static int on_ack(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct session *s = c->sess;
	struct smacks *k = s->smk;
	uint32_t h;

	if (!attr_u32(st, p, "h", &h)) {
		xmpp_error(c, "bad-format", NULL);
		return STOP_DISCARD;
	}
	if (h - k->out_acked > k->out_n - k->out_acked)
		return too_high(c, h, k->out_n);
	drop(c->w, s, h - k->out_acked);
	k->out_acked = h;
	return GO_ON;
}

/* The random part of a resumption id, into token.  false when v[0..n) is
 * not one in form.  Any edge's: a session adopted from another edge keeps
 * its id (core/adopt.c). */
static bool token_of(const char *v, size_t n, uint8_t *token)
{
	const char *dot;

	if (n >= SMACKS_ID_MAX || n <= 2 * SMACKS_TOKEN + 1)
		return false;
	dot = v + n - 2 * SMACKS_TOKEN - 1;
	if (*dot != '.')
		return false;
	for (size_t i = 0; i < SMACKS_TOKEN; i++) {
		int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		token[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* The session a <resume/> names when this worker holds it, or NULL.  The id
 * is compared whole, in constant time (only its random part is secret). */
static struct session *lookup(struct worker *w, const char *v, size_t n)
{
	uint8_t token[SMACKS_TOKEN];
	uint64_t sid;
	int owner;
	struct session *s;
	uint8_t diff = 0;

	if (!token_of(v, n, token) || !reg_get(token, &owner, &sid) || owner != w->id)
		return NULL;
	s = session_by_id(w, sid);
	if (!s || !s->smk || !s->smk->max || s->smk->moved || s->smk->joining || strlen(s->smk->id) != n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(s->smk->id[i] ^ v[i]);
	return diff ? NULL : s;
}

/* Does s belong to the account c authenticated as? */
static bool same_account(const char *user, const char *domain, const struct session *s)
{
	size_t ul, dl;

	if (!user || !s->user || !s->jid || strcmp(user, s->user))
		return false;
	ul = strlen(s->user);
	dl = strlen(domain);
	return s->jid[ul] == '@' && !strncmp(s->jid + ul + 1, domain, dl) && s->jid[ul + 1 + dl] == '/';
}

/* Flush what CSI holds into the queue and forget the stream's CSI state:
 * a new stream starts active (XEP-0352 state is per stream). */
static void csi_into_queue(struct conn *c, const uint8_t *raw, size_t len, int kind, bool track)
{
	struct session *s = c->sess;

	s->rx += len;
	if (s->smk)
		push(c->w, s, raw, len, kind & 3, track);
}

static void unlink_conn(struct conn *c)
{
	struct session *s = c->sess;

	if (s->csi) {
		csi_flush(c, csi_into_queue);
		csi_free(s);
	}
	s->c = NULL;
	c->sess = NULL;
	c->flags &= ~CF_BOUND;
}

static void detach(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	k->detached = true;
	k->expires = w->now + k->max;
	STAT_INC(w->st.smacks_detached);
	/* Nobody reads for it now: the session server gets its credit back as
	 * stanzas are kept, so its senders are never paused for an absent client. */
	if (s->owed && session_announced(s))
		native_credit(w, s);
}

static void resume_failed(struct conn *c, const char *why)
{
	STAT_INC(c->w->st.smacks_resume_failed);
	log_info("stream resumption failed", "conn=%u worker=%d user=%s why=%s", c->idx, c->w->id,
		 c->sess && c->sess->user ? c->sess->user : "-", why);
	failed(c, "item-not-found", NULL);
}

/* The stream c (authenticated, not bound) takes s over with the client's h:
 * <resumed/>, then what the client has not acknowledged, again, in order.
 * from: the worker the session came from (-1: this one).  GO_ON, or
 * STOP_DISCARD after a stream error (h past what was sent: s stays detached). */
static int resume_finish(struct conn *c, struct session *s, uint32_t h, int from)
{
	struct worker *w = c->w;
	struct smacks *k = s->smk;
	char buf[SMACKS_ID_MAX + 128];

	if (h - k->out_acked > k->out_n - k->out_acked)
		return too_high(c, h, k->out_n);
	if (s->c) {
		/* The old stream is still open (a half-dead TCP connection): it
		 * gives the session up and is closed. */
		struct conn *old = s->c;

		unlink_conn(old);
		detach(w, s);
		xmpp_error(old, "conflict", "Replaced by a resumed stream");
	}
	native_attach(c, s);
	if (s->rebind)
		conn_pause(c, PAUSE_REBIND);   /* its shard is restarting: reads wait (core/rebind.c) */
	k->detached = false;
	drop(w, s, h - k->out_acked);
	k->out_acked = h;
	/* The client counts from the h it hears now, sending again what that
	 * leaves out: stanzas still unconfirmed no longer count for it. */
	k->in_n = h_now(s);
	rtx_session_gone(w, s);
	smacks_reannounce(w, s);   /* the session server's count follows (core/adopt.c) */
	STAT_INC(w->st.smacks_resumed);
	log_info("stream resumed", "conn=%u worker=%d from_worker=%d jid=%s h=%u resent=%u", c->idx, w->id,
		 from < 0 ? w->id : from, s->jid, h, k->out_n - k->out_acked);
	snprintf(buf, sizeof(buf), "<resumed xmlns='" NS_SM "' h='%" PRIu32 "' previd='%s'/>", k->in_n, k->id);
	xmpp_outs(c, buf);
	k->resending = true;
	for (struct smk_item *it = k->head; it; it = it->next)
		xmpp_out(c, it->raw, it->len);
	k->resending = false;
	if (k->head)
		send_r(c, k);
	return GO_ON;
}

static int resume_elsewhere(struct conn *c, int owner, const char *v, size_t n, uint32_t h);

/* A <resume/> of a session this edge does not hold: the edge its id names,
 * when it is one of our peers, is where to resume (RFC 6120 §4.9.3.19);
 * else <failed/>.  false after the stream error (the stream ends). */
static bool resume_other_edge(struct conn *c, const char *v, size_t n, const char *why)
{
	struct worker *w = c->w;

	for (size_t i = 0; i < w->cfg->smacks.npeers; i++) {
		const char *e = w->cfg->smacks.peers[i].edge_id;
		size_t el = strlen(e);

		if (n > el && v[el] == '.' && !memcmp(v, e, el)) {
			STAT_INC(w->st.resume_redirects);
			log_info("resumption of another edge's session: redirected", "conn=%u edge=%s to=%s",
				 c->idx, e, w->cfg->smacks.peers[i].addr);
			xmpp_redirect(c, w->cfg->smacks.peers[i].addr);
			return false;
		}
	}
	resume_failed(c, why);
	return true;
}

/* ---- resumption on another edge (core/adopt.c holds the exchange) ---------- */

bool smacks_adopt_prepare(struct session *s, const char *previd, size_t n, uint32_t client_h)
{
	struct smacks *k;

	if (s->smk || n >= SMACKS_ID_MAX)
		return false;
	/* Echoed in <resumed/> if adopted: ids we make have nothing to escape. */
	for (size_t i = 0; i < n; i++)
		if (previd[i] <= 0x20 || previd[i] >= 0x7f || strchr("'\"<>&", previd[i]))
			return false;
	k = calloc(1, sizeof(*k));
	if (!k)
		return false;
	if (!token_of(previd, n, k->token)) {
		free(k);
		return false;
	}
	memcpy(k->id, previd, n);
	k->id[n] = '\0';
	/* The client's h counts what the old edge sent it: this edge cannot match
	 * it against anything, so its own count starts there, nothing unacked. */
	k->out_n = k->out_acked = client_h;
	k->adopting = true;
	s->smk = k;
	return true;
}

bool smacks_adopt_pending(const struct session *s)
{
	return s->smk && s->smk->adopting;
}

void smacks_adopt_done(struct conn *c, uint32_t h)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct smacks *k = s->smk;
	char buf[SMACKS_ID_MAX + 128];

	k->adopting = false;
	k->in_n = k->sm_h = h;
	k->rx_base = s->rx;
	k->last_r = w->now;
	k->max = w->cfg->smacks.resume_timeout;
	/* Under the same id, so that a later <resume/> works here. */
	k->registered = k->max && reg_put(k->token, w->id, s->id);
	if (!k->registered)
		k->max = 0;
	list_add(w, s);
	STAT_INC(w->st.smacks_resumed);
	log_info("stream resumed: session adopted from another edge", "conn=%u worker=%d jid=%s h=%u", c->idx,
		 w->id, s->jid, h);
	snprintf(buf, sizeof(buf), "<resumed xmlns='" NS_SM "' h='%" PRIu32 "' previd='%s'/>", h, k->id);
	xmpp_outs(c, buf);
	adopt_announce(w, s, k->id, k->max, k->in_n);
}

bool smacks_adopt_refused(struct conn *c, const char *why)
{
	struct session *s = c->sess;
	char id[SMACKS_ID_MAX];
	size_t n;

	if (!smacks_adopt_pending(s))
		return true;
	n = strlen(s->smk->id);
	memcpy(id, s->smk->id, n + 1);
	smacks_free(c->w, s);
	return resume_other_edge(c, id, n, why);
}

void smacks_reannounce(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	/* The confirmed count: what the edge sends again after it counts on. */
	if (k && k->registered) {
		k->sm_h = h_now(s);
		adopt_announce(w, s, k->id, k->max, k->sm_h);
	}
}

static int on_resume(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct worker *w = c->w;
	struct session *s;
	uint8_t token[SMACKS_TOKEN];
	uint64_t sid;
	int owner;
	uint32_t h;
	size_t n = 0;
	const char *v = xmpp_attr((const char *)p, st->start_tag_end, "previd", &n);

	/* §5: after authentication, instead of binding. */
	if (!(c->flags & CF_AUTHED) || (c->flags & CF_BOUND) || !c->sess || c->state != CS_NEGOTIATE ||
	    (c->flags & CF_WAIT_SM) || (c->flags & CF_LEGACY)) {
		failed(c, "unexpected-request", NULL);
		return GO_ON;
	}
	if (!v || !attr_u32(st, p, "h", &h)) {
		xmpp_error(c, "bad-format", NULL);
		return STOP_DISCARD;
	}
	/* Unknown, expired, or another account's: all the same to the client. */
	if (!token_of(v, n, token)) {
		resume_failed(c, "unknown id");
		return GO_ON;
	}
	if (!reg_get(token, &owner, &sid)) {
		/* Not held here: its session server may hold it, its edge gone
		 * (killed, or this edge before a restart: core/adopt.c); else the
		 * edge the id names is where to resume. */
		if (adopt_start(c, v, n, h))
			return STOP_KEEP;
		return resume_other_edge(c, v, n, "unknown id") ? GO_ON : STOP_DISCARD;
	}
	if (owner != w->id)
		return resume_elsewhere(c, owner, v, n, h);
	s = lookup(w, v, n);
	if (!s || !same_account(c->sess->user, c->domain, s) || s->state != SS_BOUND) {
		resume_failed(c, "no such session of this account");
		return GO_ON;
	}
	return resume_finish(c, s, h, -1);
}

/* ---- moving a session between workers ----------------------------------------
 *
 * SO_REUSEPORT spreads connections over the workers, so a <resume/> may come
 * to worker B while worker A holds the session.  The session moves to B
 * (the connection stays where it is):
 *   B  makes a placeholder session Y, posts REQ (the id, the account, Y) to
 *      A's inbox; the stream waits (CF_WAIT_SM, timeouts.session_server).
 *   A  checks the id and the account (else NAK), closes an old stream still
 *      open, credits the session server, and posts STATE (counters, the
 *      unacked queue, JID) to B; the session object stays on A as a stub
 *      that forwards (FWD) what the session server still sends to the old
 *      sid.  The registry now names (B, Y).
 *   B  installs the state in Y, sends WIRE_SESSION_MOVE (Y, old sid, JID) on
 *      its link, and finishes the resumption on the waiting stream (or keeps
 *      Y detached if that stream is gone).  Live frames for Y are held.
 *   sm re-keys the session to (B's link, Y) and sends SESSION_CLOSE(old sid,
 *      MOVED) on A's link: A's stub posts END and is freed; B then writes
 *      what it held, in order after everything forwarded.
 * Messages are malloc'd and owned by whoever dequeues them.
 */
enum { SMKM_REQ = 1, SMKM_NAK, SMKM_STATE, SMKM_FWD, SMKM_END };

struct smk_msg {
	int type;
	int from;                      /* the posting worker */
	uint64_t sid;                  /* the session at the receiver (REQ: 0) */
	uint64_t reply_sid;            /* REQ: the placeholder at the sender */
	char previd[SMACKS_ID_MAX];    /* REQ */
	char user[JID_PART_MAX + 1];   /* REQ: the account of the resuming stream */
	char domain[JID_PART_MAX + 1];
	/* STATE */
	struct smacks *k;
	char *jid, *suser;
	uint64_t old_sid, rx, delivered, reported;
	uint16_t shard;                /* the session server holding it */
	bool track;
	/* FWD */
	struct smk_item *item;
	uint8_t reason;                /* END: the close reason from the session server */
};

static void free_queue(struct smk_item *it)
{
	while (it) {
		struct smk_item *next = it->next;
		free(it);
		it = next;
	}
}

static void smacks_state_free(struct smacks *k)
{
	if (!k)
		return;
	free_queue(k->head);
	free_queue(k->held);
	explicit_bzero(k->token, sizeof(k->token));
	free(k);
}

static void msg_free(struct smk_msg *m)
{
	smacks_state_free(m->k);
	free(m->jid);
	free(m->suser);
	free(m->item);
	free(m);
}

/* Post m to worker `to` and wake it; m is its once this returns true. */
static bool post(struct worker *w, int to, struct smk_msg *m)
{
	struct worker *t = NULL;
	bool ok = false;

	m->from = w->id;
	pthread_mutex_lock(&reg_lock);
	if (to >= 0 && to < SMACKS_MAX_WORKERS && to != w->id)
		t = reg_workers[to];
	if (t) {
		pthread_mutex_lock(&t->smk_lock);
		ok = ck_ring_enqueue_mpsc(&t->smk_in, t->smk_in_buf, m);
		pthread_mutex_unlock(&t->smk_lock);
	}
	if (ok) {
		/* Under the lock: t cannot stop (and close its ring) meanwhile. */
		struct io_uring_sqe *sqe = worker_sqe(w);
		if (sqe) {   /* submitted with the loop's next batch */
			io_uring_prep_msg_ring(sqe, t->ring.ring_fd, 0, UD(NULL, OP_MSG), 0);
			io_uring_sqe_set_data64(sqe, UD(NULL, OP_IGNORE));
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

static int resume_elsewhere(struct conn *c, int owner, const char *v, size_t n, uint32_t h)
{
	struct worker *w = c->w;
	struct smk_msg *m = calloc(1, sizeof(*m));
	struct smacks *k = calloc(1, sizeof(*k));
	struct session *y = m && k ? session_new(w, NULL) : NULL;

	if (!y) {
		free(m);
		free(k);
		resume_failed(c, "out of memory");
		return GO_ON;
	}
	y->smk = k;
	k->joining = true;
	k->join_idx = c->idx;
	k->join_gen = c->gen;
	k->join_h = h;
	k->expires = w->now + SMACKS_MOVE_WAIT;
	list_add(w, y);
	m->type = SMKM_REQ;
	m->reply_sid = y->id;
	memcpy(m->previd, v, n);
	snprintf(m->user, sizeof(m->user), "%s", c->sess->user);
	snprintf(m->domain, sizeof(m->domain), "%s", c->domain);
	if (!post(w, owner, m)) {
		free(m);
		session_free(w, y);
		resume_failed(c, "its worker is not reachable");
		return GO_ON;
	}
	c->sess->smk_join = y->id;
	log_debug("resumption asked of another worker", "conn=%u worker=%d owner=%d", c->idx, w->id, owner);
	xmpp_wait_backend(c, w->cfg->timeouts.session_server);
	return STOP_KEEP;
}

/* The stream waiting for placeholder y, if it still waits. */
static struct conn *join_conn(struct worker *w, const struct session *y)
{
	struct smacks *k = y->smk;
	struct conn *c = k->join_idx < w->nslots ? w->slots[k->join_idx] : NULL;

	if (!c || c->gen != k->join_gen || !c->sess || c->sess->smk_join != y->id || !(c->flags & CF_WAIT_SM) ||
	    c->state != CS_NEGOTIATE)
		return NULL;
	return c;
}

static void reply(struct worker *w, int to, struct smk_msg *r)
{
	if (!post(w, to, r))
		msg_free(r);
}

/* On A: B asks for the session an id names. */
static void on_req(struct worker *w, struct smk_msg *m)
{
	struct session *s = lookup(w, m->previd, strnlen(m->previd, sizeof(m->previd)));
	struct smk_msg *r = calloc(1, sizeof(*r));
	struct smacks *k, *stub = calloc(1, sizeof(*stub));
	int to = m->from;

	if (!r || !stub || !s || !same_account(m->user, m->domain, s) || s->state != SS_BOUND) {
		free(stub);
		if (r) {
			r->type = SMKM_NAK;
			r->sid = m->reply_sid;
			reply(w, to, r);
		}
		return;
	}
	r->type = SMKM_STATE;
	r->sid = m->reply_sid;
	r->jid = strdup(s->jid);
	r->suser = strdup(s->user);
	if (!r->jid || !r->suser) {
		free(r->jid);
		free(r->suser);
		r->jid = r->suser = NULL;
		r->type = SMKM_NAK;
		free(stub);
		reply(w, to, r);
		return;
	}
	k = s->smk;
	if (s->c) {
		struct conn *old = s->c;

		unlink_conn(old);
		xmpp_error(old, "conflict", "Replaced by a resumed stream");
	}
	if (s->owed && session_announced(s))
		native_credit(w, s);
	r->old_sid = s->id;
	r->shard = s->shard;
	r->rx = s->rx;
	r->delivered = s->delivered;
	r->reported = s->reported;
	r->track = s->track;
	list_del(w, s);
	k->detached = false;
	/* Its unconfirmed stanzas stay with this worker's link: the client
	 * hears of them as not handled, and sends them again after <resumed/>. */
	k->in_n = h_now(s);
	rtx_session_gone(w, s);
	r->k = k;
	stub->moved = true;
	stub->to_worker = to;
	stub->to_sid = m->reply_sid;
	stub->expires = w->now + SMACKS_MOVE_WAIT;
	s->smk = stub;
	list_add(w, s);
	reg_put(k->token, to, m->reply_sid);
	if (!post(w, to, r)) {
		/* B went away meanwhile: the session stays here, detached. */
		r->k = NULL;
		msg_free(r);
		list_del(w, s);
		free(stub);
		s->smk = k;
		list_add(w, s);
		reg_put(k->token, w->id, s->id);
		detach(w, s);
		return;
	}
	log_info("session handed to another worker", "worker=%d to_worker=%d sid=%" PRIu64 " jid=%s", w->id, to,
		 s->id, s->jid);
}

/* On B: the session's state arrived (or not: NAK). */
static void on_state(struct worker *w, struct smk_msg *m)
{
	struct session *y = session_by_id(w, m->sid);
	struct conn *c;
	struct smacks *k;
	uint32_t h;
	struct wire_msg mv = { .type = WIRE_SESSION_MOVE };

	if (!y || !y->smk || !y->smk->joining) {
		/* The stub on the old worker ends it at the session server once it expires. */
		log_warn("session state from another worker has nowhere to go", "worker=%d from=%d", w->id, m->from);
		if (m->k && m->k->registered)
			reg_del(m->k->token, w->id, m->sid);
		return;
	}
	c = join_conn(w, y);
	h = y->smk->join_h;
	if (c) {
		c->sess->smk_join = 0;
		c->flags &= ~CF_WAIT_SM;
	}
	if (m->type == SMKM_NAK) {
		session_free(w, y);
		if (c) {
			resume_failed(c, "no such session of this account");
			xmpp_resume(c);
		}
		return;
	}
	list_del(w, y);
	smacks_state_free(y->smk);
	k = y->smk = m->k;
	m->k = NULL;
	y->jid = m->jid;
	y->user = m->suser;
	m->jid = m->suser = NULL;
	y->shard = m->shard;
	y->rx = m->rx;
	y->delivered = m->delivered;
	y->reported = m->reported;
	y->track = m->track;
	k->moving_in = true;
	k->expires = w->now + SMACKS_MOVE_WAIT;   /* for the hold, not a detachment */
	list_add(w, y);
	session_set_state(y, SS_OPEN);
	session_set_state(y, SS_AUTHED);
	session_set_state(y, SS_BOUND);
	mv.sid = y->id;
	mv.u.move.old_sid = m->old_sid;
	mv.u.move.jid = wire_s(y->jid, strlen(y->jid));
	if (link_send(&w->links[y->shard], &mv) < 0) {
		log_warn("session move not sent: link down", "worker=%d jid=%s", w->id, y->jid);
		session_set_state(y, SS_CLOSED);
		session_free(w, y);
		if (c) {
			resume_failed(c, "link down");
			xmpp_resume(c);
		}
		return;
	}
	if (!c) {
		/* The stream stopped waiting: the session waits here instead. */
		k->detached = true;
		k->expires = w->now + k->max;
		return;
	}
	if (resume_finish(c, y, h, m->from) == STOP_DISCARD) {
		k->detached = true;
		k->expires = w->now + k->max;
		return;
	}
	STAT_INC(w->st.smacks_moved);
	xmpp_resume(c);
}

/* Hand what y held back to the stanza path, in order. */
static void release_held(struct worker *w, struct session *y)
{
	struct smacks *k = y->smk;
	struct smk_item *it = k->held;
	uint64_t id = y->id;

	k->held = k->held_tail = NULL;
	k->held_bytes = 0;
	k->moving_in = false;
	while (it) {
		struct smk_item *next = it->next;
		struct wire_msg m = { .type = WIRE_STANZA, .sid = id };

		m.u.stanza.kind = it->kind;
		m.u.stanza.flags = it->track ? WIRE_STANZA_TRACK : 0;
		m.u.stanza.raw = wire_s(it->raw, it->len);
		if (session_by_id(w, id) == y)
			native_on_frame(&w->links[y->shard], &m);
		free(it);
		it = next;
	}
}

static void on_fwd(struct worker *w, struct smk_msg *m)
{
	struct session *y = session_by_id(w, m->sid);
	struct wire_msg f = { .type = WIRE_STANZA, .sid = m->sid };

	if (!y || !y->smk)
		return;
	if (m->type == SMKM_END) {
		if (y->smk->moving_in)
			release_held(w, y);
		return;
	}
	f.u.stanza.kind = m->item->kind;
	f.u.stanza.flags = m->item->track ? WIRE_STANZA_TRACK : 0;
	f.u.stanza.raw = wire_s(m->item->raw, m->item->len);
	y->smk->fwd_now = true;
	native_on_frame(&w->links[y->shard], &f);
	if (session_by_id(w, m->sid) == y && y->smk)
		y->smk->fwd_now = false;
}

static bool take(struct worker *w, struct smk_msg **m)
{
	bool ok;

	pthread_mutex_lock(&w->smk_lock);
	ok = ck_ring_dequeue_mpsc(&w->smk_in, w->smk_in_buf, m);
	pthread_mutex_unlock(&w->smk_lock);
	return ok;
}

void smacks_inbox(struct worker *w)
{
	struct smk_msg *m;

	while (take(w, &m)) {
		switch (m->type) {
		case SMKM_REQ:
			on_req(w, m);
			break;
		case SMKM_NAK:
		case SMKM_STATE:
			on_state(w, m);
			break;
		default:
			on_fwd(w, m);
			break;
		}
		msg_free(m);
	}
}

bool smacks_hold(struct worker *w, struct session *s, const struct wire_msg *m)
{
	struct smacks *k = s->smk;
	struct smk_item *it;

	if (!k->moving_in || k->fwd_now || m->type != WIRE_STANZA)
		return false;
	it = malloc(sizeof(*it) + m->u.stanza.raw.len);
	if (!it)
		return false;   /* written now, out of order, rather than lost */
	it->next = NULL;
	it->rx_end = 0;
	it->len = m->u.stanza.raw.len;
	it->kind = m->u.stanza.kind;
	it->track = m->u.stanza.flags & WIRE_STANZA_TRACK;
	memcpy(it->raw, m->u.stanza.raw.p, it->len);
	if (k->held_tail)
		k->held_tail->next = it;
	else
		k->held = it;
	k->held_tail = it;
	k->held_bytes += it->len;
	if (k->held_bytes > w->cfg->smacks.max_unacked)
		release_held(w, s);   /* the old worker is too slow: order gives way to the bound */
	return true;
}

/* On A: a frame for a session that moved to another worker. */
static void stub_frame(struct worker *w, struct session *s, const struct wire_msg *m)
{
	struct smacks *k = s->smk;
	struct smk_msg *f;

	if (m->type != WIRE_STANZA && m->type != WIRE_SESSION_CLOSE)
		return;
	f = calloc(1, sizeof(*f));
	if (f) {
		f->sid = k->to_sid;
		if (m->type == WIRE_STANZA) {
			f->type = SMKM_FWD;
			f->item = malloc(sizeof(*f->item) + m->u.stanza.raw.len);
			if (f->item) {
				f->item->next = NULL;
				f->item->rx_end = 0;
				f->item->len = m->u.stanza.raw.len;
				f->item->kind = m->u.stanza.kind;
				f->item->track = m->u.stanza.flags & WIRE_STANZA_TRACK;
				memcpy(f->item->raw, m->u.stanza.raw.p, f->item->len);
			}
		} else {
			f->type = SMKM_END;
			f->reason = m->u.close.reason;
		}
	}
	if (!f || (f->type == SMKM_FWD && !f->item) || !post(w, k->to_worker, f)) {
		log_warn("frame for a moved session not forwarded", "worker=%d to_worker=%d sid=%" PRIu64, w->id,
			 k->to_worker, s->id);
		if (f)
			msg_free(f);
	}
	if (m->type == WIRE_SESSION_CLOSE) {
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		session_free(w, s);
	}
}

int smacks_element(struct conn *c, const struct xs_stanza *st, const uint8_t *p)
{
	struct session *s = c->sess;

	if (xs_streq(&st->local, "enable")) {
		if (!c->w->cfg->smacks.enabled) {
			failed(c, "feature-not-implemented", NULL);
			return GO_ON;
		}
		return on_enable(c, st, p);
	}
	if (xs_streq(&st->local, "resume")) {
		if (!c->w->cfg->smacks.enabled) {
			failed(c, "feature-not-implemented", NULL);
			return GO_ON;
		}
		return on_resume(c, st, p);
	}
	if (!s || !s->smk || !(c->flags & CF_BOUND)) {
		/* <r/> and <a/> only mean something once enabled. */
		xmpp_error(c, "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	if (xs_streq(&st->local, "r")) {
		char buf[96];
		snprintf(buf, sizeof(buf), "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", h_now(s));
		xmpp_outs(c, buf);
		return GO_ON;
	}
	if (xs_streq(&st->local, "a"))
		return on_ack(c, st, p);
	xmpp_error(c, "unsupported-stanza-type", NULL);
	return STOP_DISCARD;
}

/* ---- the end of a stream, detached sessions --------------------------------- */

bool smacks_detach(struct conn *c, int reason)
{
	struct worker *w = c->w;
	struct session *s = c->sess;
	struct smacks *k = s ? s->smk : NULL;

	/* A clean </stream> ends the session; so do our own decisions (bad h,
	 * overflow), a draining or stopping worker, and a lost link. */
	if (!k || !k->max || k->ending || k->overflow || reason == WIRE_CLOSE_NORMAL || s->state != SS_BOUND ||
	    !w->cfg->smacks.enabled || w->stop || w->draining ||
	    (!s->rebind && (!w->links[s->shard].up || w->links[s->shard].dead)))
		return false;   /* (waiting for its shard to return, it may wait detached) */
	unlink_conn(c);
	detach(w, s);
	log_info("session detached: resumable", "worker=%d sid=%" PRIu64 " jid=%s unacked=%u max=%u", w->id, s->id,
		 s->jid, k->out_n - k->out_acked, k->max);
	return true;
}

/* End a detached session: its stanzas go back, the session server is told. */
static void end_detached(struct worker *w, struct session *s, const char *why)
{
	log_info("detached session ended", "worker=%d sid=%" PRIu64 " jid=%s why=%s unacked=%u", w->id, s->id,
		 s->jid, why, s->smk->out_n - s->smk->out_acked);
	native_session_close(w, s, WIRE_CLOSE_DISCONNECT);
	session_free(w, s);
}

void smacks_detached_frame(struct worker *w, struct session *s, const struct wire_msg *m)
{
	struct smacks *k = s->smk;

	if (k && k->moved) {
		stub_frame(w, s, m);
		return;
	}
	if (!k || !k->detached)
		return;
	switch (m->type) {
	case WIRE_BIND_RESP:
		if (s->rebind == 2)
			rebind_done(w, s, m);   /* its shard restarted meanwhile */
		break;
	case WIRE_STANZA:
		s->owed += m->u.stanza.raw.len;
		s->rx += m->u.stanza.raw.len;
		push(w, s, m->u.stanza.raw.p, m->u.stanza.raw.len, m->u.stanza.kind,
		     m->u.stanza.flags & WIRE_STANZA_TRACK);
		if (k->overflow) {
			end_detached(w, s, "unacked queue full");
			return;
		}
		if (s->owed >= w->cfg->limits.max_out_bytes / 4)
			native_credit(w, s);
		break;
	case WIRE_SESSION_CLOSE:
		/* The session server ended it (a conflicting bind, a kick). */
		if (s->state != SS_CLOSED)
			session_set_state(s, SS_CLOSED);
		log_info("detached session ended by the session server", "worker=%d sid=%" PRIu64 " reason=%u",
			 w->id, s->id, m->u.close.reason);
		session_free(w, s);
		break;
	default:
		break;   /* FLOW: nobody reads from it anyway */
	}
}

bool smacks_waiting(const struct session *s)
{
	return s->smk && s->smk->detached;
}

void smacks_return(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;
	unsigned n = 0;

	if (!k)
		return;
	for (struct smk_item *it = k->head; it; it = it->next) {
		struct wire_msg m = { .type = WIRE_STANZA, .sid = s->id };

		/* Tracked messages: the session server re-routes them (delivery
		 * reports stop at the last acknowledged byte).  Presence and the
		 * edge's own answers: nothing to return. */
		if (it->track || (it->kind != WIRE_KIND_MESSAGE && it->kind != WIRE_KIND_IQ))
			continue;
		m.u.stanza.kind = it->kind;
		m.u.stanza.flags = WIRE_STANZA_RETURNED;
		m.u.stanza.raw = wire_s(it->raw, it->len);
		/* Kept until confirmed, sent to the shard's successor if need be. */
		if (rtx_send(&w->links[s->shard], &m, NULL, 0, RTX_RETURNED) == 0)
			n++;
	}
	if (n) {
		STAT_ADD(w->st.smacks_returned, n);
		log_info("unacknowledged stanzas returned", "worker=%d sid=%" PRIu64 " jid=%s count=%u", w->id, s->id,
			 s->jid ? s->jid : "-", n);
	}
}

bool smacks_over_bound(struct conn *c)
{
	struct session *s = c->sess;
	struct smacks *k = s ? s->smk : NULL;

	if (!k || !k->overflow || c->state != CS_SESSION)
		return false;
	/* RFC 6120 §4.9.3.17: it would need more than we give a stream. */
	log_info("unacked queue over its bound", "conn=%u jid=%s bytes=%zu", c->idx, s->jid, k->qbytes);
	k->ending = true;
	xmpp_error(c, "resource-constraint", "too many unacknowledged stanzas");
	return true;
}

void smacks_tick(struct worker *w)
{
	struct session *s, *next;

	for (s = w->smk_list; s; s = next) {
		struct smacks *k = s->smk;
		struct conn *c = s->c;

		next = k->next;
		if (k->joining || k->moved) {
			/* Nothing came back in time: a placeholder goes; a stub ends
			 * the old sid (a no-op at the session server once moved). */
			if (w->now >= k->expires) {
				if (k->moved && session_announced(s)) {
					struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = s->id };
					m.u.close.reason = WIRE_CLOSE_DISCONNECT;
					link_send(&w->links[s->shard], &m);
					session_set_state(s, SS_CLOSED);
				}
				session_free(w, s);
			}
			continue;
		}
		if (k->moving_in && w->now >= k->expires) {
			log_warn("moved session: the old worker's last forward never came", "worker=%d sid=%" PRIu64,
				 w->id, s->id);
			release_held(w, s);
			continue;   /* (s may have ended meanwhile) */
		}
		if (k->detached) {
			if (w->now >= k->expires)
				end_detached(w, s, "resumption timeout");
			continue;
		}
		if (!c || c->state != CS_SESSION || (c->flags & (CF_CLOSED | CF_PEER_GONE)))
			continue;
		if (smacks_over_bound(c))
			continue;
		if (k->since_r && w->now >= k->last_r + SMACKS_R_PERIOD)
			send_r(c, k);
	}
}

void smacks_free(struct worker *w, struct session *s)
{
	struct smacks *k = s->smk;

	if (!k)
		return;
	list_del(w, s);
	if (k->registered)
		reg_del(k->token, w->id, s->id);
	smacks_state_free(k);
	s->smk = NULL;
}

void smacks_link_down(struct link *l)
{
	struct worker *w = l->w;
	struct session *s, *next;

	for (s = w->smk_list; s; s = next) {
		next = s->smk->next;
		if (s->shard != l->shard)
			continue;
		if (s->smk->detached && s->state == SS_BOUND && s->user && s->jid && l->addrlen) {
			s->rebind = 1;   /* bound again when the shard returns (core/rebind.c) */
			continue;
		}
		if (s->smk->detached || s->smk->moved || s->smk->joining) {
			if (s->state != SS_CLOSED)
				session_set_state(s, SS_CLOSED);
			session_free(w, s);
		}
	}
}

void smacks_worker_start(struct worker *w)
{
	pthread_mutex_init(&w->smk_lock, NULL);
	ck_ring_init(&w->smk_in, sizeof(w->smk_in_buf) / sizeof(w->smk_in_buf[0]));
	if (w->id < 0 || w->id >= SMACKS_MAX_WORKERS)
		return;
	pthread_mutex_lock(&reg_lock);
	reg_workers[w->id] = w;
	pthread_mutex_unlock(&reg_lock);
}

void smacks_worker_stop(struct worker *w)
{
	struct smk_msg *m;

	if (w->id >= 0 && w->id < SMACKS_MAX_WORKERS) {
		pthread_mutex_lock(&reg_lock);
		if (reg_workers[w->id] == w)
			reg_workers[w->id] = NULL;
		pthread_mutex_unlock(&reg_lock);
	}
	/* Nobody posts now: what is left is freed unread. */
	while (take(w, &m))
		msg_free(m);
	pthread_mutex_destroy(&w->smk_lock);
}

void smacks_join_timeout(struct conn *c)
{
	c->sess->smk_join = 0;
	resume_failed(c, "its worker did not answer in time");
}
