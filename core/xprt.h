/*
 * xprt — the transport layers of a connection (types in worker-t.h).
 *
 * The socket is at the bottom; above it a connection stacks, per listener,
 * a PROXY header reader (consumed before anything else), TLS (Direct TLS,
 * or pushed by STARTTLS) and WebSocket framing, in that order.  Bytes from
 * the socket enter the lowest layer; what the top layer decodes is XMPP and
 * goes to xmpp_input().  XMPP output enters the top layer and leaves the
 * lowest one through conn_send().
 *
 * A layer that is not ready (PROXY header not seen, TLS handshake running,
 * WebSocket upgrade pending) passes nothing up; the top layer calls
 * xmpp_transport_ready() when it becomes ready.
 */
#ifndef XEDGE_XPRT_H
#define XEDGE_XPRT_H

#include "core/worker-t.h"

extern const struct xprt_ops xprt_tls;    /* xprt_tls.c */
extern const struct xprt_ops xprt_proxy;  /* xprt_proxy.c */
extern const struct xprt_ops xprt_ws;     /* xprt_ws.c */

void xmpp_input(struct conn *c, const uint8_t *data, size_t len);   /* xmpp.c */

/* Pass decoded bytes from `layer` up (to the next layer or to XMPP). */
static inline void xprt_up(struct conn *c, int layer, const uint8_t *p, size_t n)
{
	if (layer + 1 < c->nxp)
		c->xp[layer + 1]->input(c, layer + 1, p, n);
	else
		xmpp_input(c, p, n);
}

void conn_send(struct conn *c, const void *data, size_t len);        /* worker.c */

/* Pass encoded bytes from `layer` down (to the layer below, or the socket). */
static inline void xprt_down(struct conn *c, int layer, const void *p, size_t n)
{
	if (layer > 0)
		c->xp[layer - 1]->write(c, layer - 1, p, n);
	else
		conn_send(c, p, n);
}

/* Bytes from the socket. */
static inline void xprt_input(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->nxp)
		c->xp[0]->input(c, 0, p, n);
	else
		xmpp_input(c, p, n);
}

/* XMPP bytes out: one call per top-level element (WebSocket frames each as
 * one message, RFC 7395 §3.3.3), or a stream open or close. */
static inline void xprt_write(struct conn *c, const void *p, size_t n)
{
	if (c->nxp)
		c->xp[c->nxp - 1]->write(c, c->nxp - 1, p, n);
	else
		conn_send(c, p, n);
}

/* Push a layer on top (STARTTLS) or at set-up.  state belongs to the layer
 * (freed by its free op).  -1 when the stack is full. */
int xprt_push(struct conn *c, const struct xprt_ops *ops, void *state);

void xprt_flush(struct conn *c);      /* once per loop iteration, top down */
/* Output bytes the layers hold and have not passed down yet (TLS plaintext
 * awaiting its record); 0 when every byte written reached conn_send(). */
size_t xprt_pending(const struct conn *c);
void xprt_shutdown(struct conn *c);   /* our side ends: close_notify, close frame */
void xprt_free(struct conn *c);

/* Remove a layer that has become a pass-through (a consumed PROXY header). */
void xprt_pop(struct conn *c, int layer);

/* TLS as a layer: a server session for a client connection (Direct TLS or
 * STARTTLS).  false when the handshake cap is reached or memory is out. */
bool xprt_tls_server(struct conn *c);

/* TLS as a layer, client side: STARTTLS on an outbound stream.  The server's
 * certificate must chain to tls.ca_file and name `name` (also the SNI).
 * Pushes the layer and sends the ClientHello; once the handshake is done
 * the stream is ready again (xmpp_transport_ready) and secured(c) is
 * called.  A failed handshake (verification included) is logged and
 * aborts the connection.  false when the session cannot be created. */
bool xprt_tls_client(struct conn *c, const char *name, void (*secured)(struct conn *c));

/* Server-to-server TLS (s2s.c).  Server side: as xprt_tls_server, and the
 * peer's certificate is requested.  Client side: our certificate for
 * `local` is presented, SNI `remote`, ALPN xmpp-server when direct (XEP-0368);
 * the peer's certificate is checked but a failed check does not fail the
 * handshake: s2s decides (xprt_tls_peer, tls_peer_*). */
bool xprt_tls_server_s2s(struct conn *c);
bool xprt_tls_client_s2s(struct conn *c, const char *local, const char *remote, bool direct,
			 void (*secured)(struct conn *c));

/* The established TLS session of c, or NULL (none, or not open). */
struct tls;
const struct tls *xprt_tls_peer(const struct conn *c);

#endif
