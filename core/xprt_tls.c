/*
 * xprt_tls — TLS as a transport layer: server side (Direct TLS listeners,
 * wss, and STARTTLS, which pushes this layer at <proceed/>) and client side
 * (the edge's STARTTLS on an upstream stream, verified).
 *
 * The session, its buffers and the handshake-then-read loop are a TLS pipe
 * (tls/pipe.h); this file ties a pipe to a connection's layer stack.  A
 * server session is created lazily (a WOLFSSL costs ~60 KB, DESIGN §3): at
 * set-up for STARTTLS, on the first byte for Direct TLS.  Until the
 * handshake completes nothing goes up; then the record layer's plaintext
 * does.  Output from above accumulates in the pipe and is sealed at flush
 * time, so everything written in one loop iteration leaves as one record
 * (up to 16 KiB each) and one send.
 *
 * States: the pipe's (HANDSHAKE -> OPEN -> SHUT -> CLOSED, tlsp_set_state).
 */
#include "core/xprt.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "tls/pipe.h"

#define PT_LIMIT (4u << 20)   /* plaintext awaiting encryption: emptied every iteration */

struct tls_layer {
	struct tlsp p;           /* the session is NULL until the first byte (lazy) */
	struct conn *c;
	void (*secured)(struct conn *c);  /* client: called once the handshake is done */
	bool hs_counted;         /* holds a process-wide handshake slot */
	bool hs_told;            /* the handshake's outcome is counted (metrics) */
	bool s2s;                /* server side of an s2s stream: asks for the peer's certificate */
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
		STAT_INC(c->w->st.tls_failed[TLSF_LIMIT]);
		t->hs_told = true;
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

/* Where this layer sits now (a PROXY layer below it may have been popped). */
static int layer_of(const struct conn *c, const struct tls_layer *t)
{
	int layer = 0;

	while (layer < c->nxp && c->xs_state[layer] != t)
		layer++;
	return layer;
}

/* Records from wolfSSL or the record layer go down from that layer. */

static int tls_out(void *owner, const uint8_t *data, size_t len)
{
	struct tls_layer *t = owner;

	xprt_down(t->c, layer_of(t->c, t), data, len);
	return 0;
}

static bool tls_live(void *owner);
static void tls_ready(void *owner);
static void tls_plain(void *owner, const uint8_t *p, size_t n);
static void tls_end(void *owner, int why);

static const struct tlsp_ops layer_ops = {
	.out = tls_out,
	.ready = tls_ready,
	.plain = tls_plain,
	.end = tls_end,
	.live = tls_live,
};

static struct tls_layer *tls_layer_new(struct conn *c)
{
	struct tls_layer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->c = c;
	tlsp_init(&t->p, &layer_ops, t);
	return t;
}

/* The session: at once for STARTTLS (we know the domain), lazily for
 * Direct TLS (SNI picks it). */
static bool tls_layer_start(struct conn *c, struct tls_layer *t, const char *domain)
{
	if (!hs_acquire(c, t))
		return false;
	if ((t->s2s ? tlsp_server_s2s(&t->p, domain) : tlsp_server(&t->p, domain)) < 0) {
		log_error("cannot create a TLS session (out of memory?)", "conn=%u", c->idx);
		return false;
	}
	return true;
}

/* A server layer; s2s: one that asks for the peer's certificate. */
static bool server_layer(struct conn *c, bool s2s)
{
	struct tls_layer *t = tls_layer_new(c);

	if (!t)
		return false;
	t->s2s = s2s;
	/* STARTTLS: the stream already named its domain; Direct TLS waits for
	 * the ClientHello (and its SNI). */
	if (c->state != CS_TRANSPORT && !tls_layer_start(c, t, c->domain)) {
		hs_release(t);
		free(t);
		return false;
	}
	if (xprt_push(c, &xprt_tls, t) < 0) {
		hs_release(t);
		tlsp_clear(&t->p);
		free(t);
		return false;
	}
	return true;
}

bool xprt_tls_server(struct conn *c)
{
	return server_layer(c, false);
}

bool xprt_tls_server_s2s(struct conn *c)
{
	return server_layer(c, true);
}

const struct tls *xprt_tls_peer(const struct conn *c)
{
	for (int i = 0; i < c->nxp; i++)
		if (c->xp[i] == &xprt_tls) {
			const struct tls_layer *t = c->xs_state[i];
			return t && t->p.state == TLSP_OPEN ? t->p.tls : NULL;
		}
	return NULL;
}

/* Client sessions are not counted against max_tls_handshakes: the cap
 * guards against floods of ClientHellos, and each upstream stream belongs
 * to a client whose own handshake was counted. */
/* A client layer on t's new session (0 from its constructor), pushed, with
 * its ClientHello under way. */
static bool client_layer(struct conn *c, struct tls_layer *t, int made, const char *name,
			 void (*secured)(struct conn *c))
{
	t->secured = secured;
	if (made < 0) {
		log_error("cannot create a TLS client session", "conn=%u name=%s", c->idx, name);
		free(t);
		return false;
	}
	if (xprt_push(c, &xprt_tls, t) < 0) {
		tlsp_clear(&t->p);
		free(t);
		return false;
	}
	/* The ClientHello goes out now, below the new layer. */
	tlsp_input(&t->p, NULL, 0, c->w->scratch);
	return true;
}

bool xprt_tls_client(struct conn *c, const char *name, void (*secured)(struct conn *c))
{
	struct tls_layer *t = tls_layer_new(c);

	return t && client_layer(c, t, tlsp_client_verified(&t->p, name), name, secured);
}

bool xprt_tls_client_s2s(struct conn *c, const char *local, const char *remote, bool direct,
			 void (*secured)(struct conn *c))
{
	struct tls_layer *t = tls_layer_new(c);

	return t && client_layer(c, t, tlsp_client_s2s(&t->p, local, remote, direct), remote, secured);
}

static bool tls_live(void *owner)
{
	struct tls_layer *t = owner;

	return t->c->state != CS_CLOSING;
}

static void tls_ready(void *owner)
{
	struct tls_layer *t = owner;
	struct conn *c = t->c;

	hs_release(t);
	c->flags |= CF_TLS;
	STAT_INC(c->w->st.tls_ok[c->kind]);
	t->hs_told = true;
	if (!c->domain && !t->p.client)
		c->domain = tls_sni_domain(t->p.tls);
	log_debug("TLS established", "conn=%u domain=%s side=%s lean=%d", c->idx,
		  c->domain ? c->domain : "-", t->p.client ? "client" : "server", tls_lean(t->p.tls));
	if (layer_of(c, t) == c->nxp - 1)
		xmpp_transport_ready(c);
	if (t->secured)
		t->secured(c);
}

static void tls_plain(void *owner, const uint8_t *p, size_t n)
{
	struct tls_layer *t = owner;

	xprt_up(t->c, layer_of(t->c, t), p, n);
}

static void tls_end(void *owner, int why)
{
	struct tls_layer *t = owner;
	struct conn *c = t->c;
	char err[192];

	if (why == TLSP_END_NOTIFY) {
		xmpp_eof(c);   /* close_notify: answered with ours */
		return;
	}
	tlsp_error_str(&t->p, err, sizeof(err));
	if (why == TLSP_END_HANDSHAKE && !t->hs_told) {
		STAT_INC(c->w->st.tls_failed[t->p.tls ? tls_error_class(t->p.tls) : TLSF_PROTOCOL]);
		t->hs_told = true;
	}
	/* One call site per message: each is rate-limited on its own (log.h). */
	if (t->p.client && c->role != &role_upstream)
		log_warn("TLS with a remote server failed", "conn=%u peer=%s err=\"%s\"", c->idx, c->peer, err);
	else if (t->p.client && why == TLSP_END_HANDSHAKE)
		log_warn("TLS handshake with the upstream server failed", "conn=%u upstream=%s name=%s err=\"%s\"",
			 c->idx, c->w->cfg->backend_upstream, c->domain ? c->domain : "-", err);
	else if (t->p.client)
		log_warn("TLS error on the upstream stream", "conn=%u upstream=%s name=%s err=\"%s\"",
			 c->idx, c->w->cfg->backend_upstream, c->domain ? c->domain : "-", err);
	else if (why == TLSP_END_HANDSHAKE)
		log_info("TLS handshake failed", "conn=%u peer=%s err=\"%s\"", c->idx, c->peer, err);
	else
		log_info("TLS error", "conn=%u peer=%s err=\"%s\"", c->idx, c->peer, err);
	/* The alert wolfSSL or the record layer queued is flushed before the
	 * socket closes. */
	xmpp_abort(c);
}

static void tls_input(struct conn *c, int layer, const uint8_t *data, size_t len)
{
	struct tls_layer *t = c->xs_state[layer];

	if (t->p.state == TLSP_CLOSED)
		return;
	if (!t->p.tls && !tls_layer_start(c, t, NULL)) {
		tlsp_set_state(&t->p, TLSP_CLOSED);
		xmpp_abort(c);
		return;
	}
	tlsp_input(&t->p, data, len, c->w->scratch);
}

static void tls_write_pt(struct conn *c, int layer, const void *data, size_t len)
{
	struct tls_layer *t = c->xs_state[layer];

	if (t->p.state >= TLSP_SHUT || (c->flags & (CF_PEER_GONE | CF_CLOSED)))
		return;
	if (tlsp_write(&t->p, data, len, PT_LIMIT) < 0) {
		c->flags |= CF_PEER_GONE;
		conn_release(c);
		return;
	}
	conn_flush_later(c);
}

static void tls_flush(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	if (c->flags & CF_PEER_GONE) {
		tlsp_drop(&t->p);
		return;
	}
	if (tlsp_flush(&t->p) < 0) {
		c->flags |= CF_PEER_GONE;
		conn_release(c);
	}
}

static size_t tls_pending(const struct conn *c, int layer)
{
	const struct tls_layer *t = c->xs_state[layer];

	return t ? buf_used(&t->p.pt) : 0;
}

static void tls_shutdown_layer(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	if (!tlsp_open(&t->p) || (c->flags & CF_PEER_GONE))
		return;
	tls_flush(c, layer);
	tlsp_close_notify(&t->p);
}

static void tls_free_layer(struct conn *c, int layer)
{
	struct tls_layer *t = c->xs_state[layer];

	/* A handshake that began and neither finished nor failed: the
	 * connection timed out (timeouts.handshake) or the peer went away. */
	if (t->p.tls && !t->hs_told)
		STAT_INC(c->w->st.tls_failed[c->due && c->w->now >= c->due ? TLSF_TIMEOUT : TLSF_CLOSED]);
	hs_release(t);
	tlsp_clear(&t->p);
	free(t);
}

const struct xprt_ops xprt_tls = {
	.name = "tls",
	.input = tls_input,
	.write = tls_write_pt,
	.flush = tls_flush,
	.shutdown = tls_shutdown_layer,
	.free = tls_free_layer,
	.pending = tls_pending,
};
