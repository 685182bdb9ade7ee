/*
 * xprt_tls — TLS as a transport layer (server side: Direct TLS listeners,
 * wss, and STARTTLS, which pushes this layer at <proceed/>).
 *
 * The session is created lazily (a WOLFSSL costs ~60 KB, DESIGN §3): at
 * set-up for STARTTLS, on the first byte for Direct TLS.  Until the
 * handshake completes nothing goes up; then the record layer's plaintext
 * does.  Output from above accumulates in `pt` and is sealed at flush time,
 * so everything written in one loop iteration leaves as one record (up to
 * 16 KiB each) and one send.
 *
 * State machine: HANDSHAKE -> OPEN -> CLOSED, through tls_set_state().
 */
#include "core/xprt.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/worker.h"
#include "core/xmpp.h"

#define PT_LIMIT (4u << 20)   /* plaintext awaiting encryption: emptied every iteration */

enum tls_state { TS_HANDSHAKE = 0, TS_OPEN, TS_CLOSED };

struct tls_layer {
	struct tls *tls;         /* NULL until the first byte (lazy) */
	struct tls_io io;
	struct buf pt;           /* plaintext waiting to be sealed */
	struct conn *c;
	uint8_t state;           /* enum tls_state */
	bool hs_counted;         /* holds a process-wide handshake slot */
};

/* TLS handshakes in progress, process-wide (limits.max_tls_handshakes): a
 * handshake costs ~60 KB and real CPU, so a flood of ClientHellos is capped. */
static _Atomic uint32_t handshakes;

static bool hs_acquire(struct conn *c, struct tls_layer *t)
{
	if (__atomic_add_fetch(&handshakes, 1, __ATOMIC_RELAXED) > c->w->cfg->limits.max_tls_handshakes) {
		__atomic_sub_fetch(&handshakes, 1, __ATOMIC_RELAXED);
		log_warn("TLS handshake refused: limits.max_tls_handshakes in progress", "conn=%u peer=%s",
			 c->idx, c->peer);
		return false;
	}
	t->hs_counted = true;
	return true;
}

static void hs_release(struct tls_layer *t)
{
	if (t->hs_counted) {
		t->hs_counted = false;
		__atomic_sub_fetch(&handshakes, 1, __ATOMIC_RELAXED);
	}
}

static const char *const tls_state_names[] = { "handshake", "open", "closed" };

/* The one place the layer's state changes: HANDSHAKE -> OPEN -> CLOSED, or
 * straight to CLOSED. */
static void tls_set_state(struct tls_layer *t, int s)
{
	if (s <= t->state) {
		log_error("illegal TLS layer transition", "conn=%u from=%s to=%s", t->c->idx,
			  tls_state_names[t->state], tls_state_names[s]);
		s = TS_CLOSED;
	}
	t->state = (uint8_t)s;
}

/* Records from wolfSSL or the record layer go down from wherever this
 * layer sits now (a PROXY layer below it may have been popped). */
static int tls_out(void *owner, const uint8_t *data, size_t len)
{
	struct tls_layer *t = owner;
	struct conn *c = t->c;
	int layer = 0;

	while (layer < c->nxp && c->xs_state[layer] != t)
		layer++;
	xprt_down(c, layer, data, len);
	return 0;
}

static struct tls_layer *tls_layer_new(struct conn *c)
{
	struct tls_layer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->c = c;
	t->io = (struct tls_io){ .out = tls_out, .owner = t };
	return t;
}

/* The session: at once for STARTTLS (we know the domain), lazily for
 * Direct TLS (SNI picks it). */
static bool tls_layer_start(struct conn *c, struct tls_layer *t, const char *domain)
{
	if (!hs_acquire(c, t))
		return false;
	t->tls = tls_new(domain, &t->io);
	if (!t->tls) {
		log_error("cannot create a TLS session (out of memory?)", "conn=%u", c->idx);
		return false;
	}
	return true;
}

bool xprt_tls_server(struct conn *c)
{
	struct tls_layer *t = tls_layer_new(c);

	if (!t)
		return false;
	/* STARTTLS: the stream already named its domain; Direct TLS waits for
	 * the ClientHello (and its SNI). */
	if (c->state != CS_TRANSPORT && !tls_layer_start(c, t, c->domain)) {
		free(t);
		return false;
	}
	if (xprt_push(c, &xprt_tls, t) < 0) {
		hs_release(t);
		tls_free(t->tls);
		free(t);
		return false;
	}
	return true;
}

static void tls_fail(struct conn *c, struct tls_layer *t, const char *what)
{
	char err[128];

	log_info(what, "conn=%u peer=%s err=\"%s\"", c->idx, c->peer,
		 t->tls ? tls_error_str(t->tls, err, sizeof(err)) : "no session");
	tls_set_state(t, TS_CLOSED);
	buf_reset(&t->pt);   /* nothing may follow the fatal alert already queued */
	xmpp_abort(c);
}

static void tls_input(struct conn *c, int layer, const uint8_t *data, size_t len)
{
	struct tls_layer *t = c->xs_state[layer];
	struct worker *w = c->w;

	if (t->state == TS_CLOSED)
		return;
	if (!t->tls && !tls_layer_start(c, t, NULL)) {
		tls_set_state(t, TS_CLOSED);
		xmpp_abort(c);
		return;
	}
	t->io.in = data;
	t->io.in_len = len;
	if (t->state == TS_HANDSHAKE) {
		int r = tls_handshake(t->tls);
		if (r == TLS_WANT)
			return;
		if (r != TLS_OK) {
			/* wolfSSL queued its alert through tls_out: it is flushed
			 * before the socket closes. */
			tls_fail(c, t, "TLS handshake failed");
			return;
		}
		tls_set_state(t, TS_OPEN);
		hs_release(t);
		c->flags |= CF_TLS;
		if (!c->domain)
			c->domain = tls_sni_domain(t->tls);
		log_debug("TLS established", "conn=%u domain=%s", c->idx, c->domain ? c->domain : "-");
		if (layer == c->nxp - 1)
			xmpp_transport_ready(c);
	}
	while (c->state != CS_CLOSING && t->state == TS_OPEN) {
		int res;
		size_t n = tls_read(t->tls, w->scratch, TLS_READ_CAP, &res);
		if (n) {
			xprt_up(c, layer, w->scratch, n);
			continue;
		}
		if (res == TLS_WANT)
			break;
		if (res == TLS_CLOSED)
			xmpp_eof(c);   /* close_notify: answered with ours */
		else
			tls_fail(c, t, "TLS error");
		break;
	}
}

static void tls_write_pt(struct conn *c, int layer, const void *data, size_t len)
{
	struct tls_layer *t = c->xs_state[layer];

	if (t->state == TS_CLOSED || (c->flags & (CF_PEER_GONE | CF_CLOSED)))
		return;
	if (buf_append(&t->pt, data, len, PT_LIMIT) < 0) {
		c->flags |= CF_PEER_GONE;
		conn_release(c);
		return;
	}
	conn_flush_later(c);
}

static void tls_flush(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	if (t->state != TS_OPEN || !buf_used(&t->pt))
		return;
	if (!(c->flags & CF_PEER_GONE) && tls_write(t->tls, buf_data(&t->pt), buf_used(&t->pt)) < 0) {
		c->flags |= CF_PEER_GONE;
		conn_release(c);
	}
	buf_reset(&t->pt);
}

static void tls_shutdown_layer(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	if (t->state != TS_OPEN || (c->flags & CF_PEER_GONE))
		return;
	tls_flush(c, layer);
	tls_close_notify(t->tls);
	tls_set_state(t, TS_CLOSED);
}

static void tls_free_layer(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	hs_release(t);
	tls_free(t->tls);
	buf_reset(&t->pt);
	free(t);
}

const struct xprt_ops xprt_tls = {
	.name = "tls",
	.input = tls_input,
	.write = tls_write_pt,
	.flush = tls_flush,
	.shutdown = tls_shutdown_layer,
	.free = tls_free_layer,
};
