/*
 * be_upstream — upstream mode: the edge in front of any XMPP server.
 *
 * A client's stream, once secure (TLS, or a WebSocket listener behind a
 * TLS ingress), is relayed over one c2s stream per client that the edge
 * opens to backend.upstream: plaintext, or with backend.upstream_tls
 * secured by STARTTLS and verified against tls.ca_file.  The upstream
 * authenticates (SASL passes through), binds and routes; the edge still
 * frames every element in both directions, enforces every limit and rate
 * on the client, and answers violations with the stream error RFC 6120
 * names.
 *
 * Two connections, tied: the client's (role c2s, this backend) and ours to
 * the upstream (role_upstream, CF_OUTBOUND).  Either side ending ends the
 * other.  Each pauses the other's reads while its own output queue is over
 * limits.max_out_bytes, so a slow reader on either side holds the writer
 * back instead of growing a queue.
 *
 * What is filtered: the upstream's <starttls/> (its stream to us is ours
 * to secure, and so is the client's TLS) and the SCRAM-*-PLUS mechanisms
 * (their channel binding would bind to our TLS, which the upstream cannot
 * see, so they would fail).  Stream headers are ours on each side.
 *
 * The relay's states: the client waits (CF_WAIT_SM) from its header until
 * the upstream's header and features are in; CS_RELAY on both sides while
 * elements flow; SASL <success/> restarts both streams (CS_HEADER).
 *
 * With backend.upstream_tls the upstream stream is secured first, before
 * the client hears anything: after the upstream's first header (CS_NEGOTIATE)
 * its features must offer STARTTLS; we send <starttls/>, and at <proceed/>
 * push a client TLS layer (CS_STARTTLS) whose certificate check is against
 * tls.ca_file and the domain's name.  When the handshake is done the stream
 * restarts (CS_HEADER) and goes on as above: the client's header is answered
 * with the id of the upstream's second header, and the features relayed are
 * those offered over TLS.  Any failure on the way ends both streams with a
 * log line that says why (the client gets <internal-server-error/>).
 */
#include "core/xmpp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "core/xprt.h"

/* ---- PROXY protocol header to the upstream -------------------------------- */

static bool is_v4(const uint8_t ip[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(ip, pfx, 12) == 0;
}

/* The PROXY header (v1 text or v2 binary) telling the upstream who the
 * client is.  Returns its length (<= 108 bytes for out[108+]). */
static size_t proxy_header(const struct conn *c, int version, uint8_t *out, size_t cap)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	bool v4 = is_v4(c->ip) && is_v4(c->local_ip);

	if (version == PROXY_V1) {
		char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
		int n;
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? c->ip + 12 : c->ip, src, sizeof(src));
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? c->local_ip + 12 : c->local_ip, dst, sizeof(dst));
		n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6", src, dst,
			     c->peer_port, c->local_port);
		return n > 0 && (size_t)n < cap ? (size_t)n : 0;
	}
	if (cap < 16 + 36)
		return 0;
	memcpy(out, sig, 12);
	out[12] = 0x21;                    /* version 2, PROXY */
	out[13] = v4 ? 0x11 : 0x21;        /* TCP over IPv4 / IPv6 */
	if (v4) {
		out[14] = 0;
		out[15] = 12;
		memcpy(out + 16, c->ip + 12, 4);
		memcpy(out + 20, c->local_ip + 12, 4);
		out[24] = (uint8_t)(c->peer_port >> 8), out[25] = (uint8_t)c->peer_port;
		out[26] = (uint8_t)(c->local_port >> 8), out[27] = (uint8_t)c->local_port;
		return 28;
	}
	out[14] = 0;
	out[15] = 36;
	memcpy(out + 16, c->ip, 16);
	memcpy(out + 32, c->local_ip, 16);
	out[48] = (uint8_t)(c->peer_port >> 8), out[49] = (uint8_t)c->peer_port;
	out[50] = (uint8_t)(c->local_port >> 8), out[51] = (uint8_t)c->local_port;
	return 52;
}

/* ---- filtering the upstream's features ------------------------------------ */

/* Copy the features element p[0..n) into out, leaving out <starttls> and
 * every <mechanism>…-PLUS</mechanism>.  Returns the length written. */
static size_t filter_features(const char *p, size_t n, char *out)
{
	const char *end = p + n;
	size_t o = 0;

	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt) {
			memcpy(out + o, p, (size_t)(end - p));
			o += (size_t)(end - p);
			break;
		}
		memcpy(out + o, p, (size_t)(lt - p));
		o += (size_t)(lt - p);
		p = lt;
		if ((size_t)(end - p) > 9 && !memcmp(p, "<starttls", 9) && (p[9] == ' ' || p[9] == '>' || p[9] == '/')) {
			const char *gt = memchr(p, '>', (size_t)(end - p)), *close;
			if (!gt)
				break;
			if (gt[-1] == '/') {
				p = gt + 1;
				continue;
			}
			close = memmem(gt, (size_t)(end - gt), "</starttls>", 11);
			p = close ? close + 11 : end;
			continue;
		}
		if ((size_t)(end - p) > 11 && !memcmp(p, "<mechanism>", 11)) {
			const char *v = p + 11, *close = memmem(v, (size_t)(end - v), "</mechanism>", 12);
			if (close && close - v >= 5 && !memcmp(close - 5, "-PLUS", 5)) {
				p = close + 12;
				continue;
			}
		}
		out[o++] = *p++;
	}
	return o;
}

/* ---- the client's side (backend_upstream) ---------------------------------- */

static void relay(struct conn *from, struct conn *to, const uint8_t *p, size_t n)
{
	size_t max = to->w->cfg->limits.max_out_bytes;

	xmpp_out(to, p, n);
	conn_count_stanza(to, 1, stanza_kind_of(p, n), n);
	if (conn_queued(to) > max && !(from->paused & PAUSE_PEER)) {
		/* The other side reads slower than this one writes: hold this
		 * one back (resumed from the other's sent hook). */
		log_debug("relay: reads paused behind a slow peer", "conn=%u peer_conn=%u", from->idx, to->idx);
		conn_pause(from, PAUSE_PEER);
	}
}

static void upstream_open(struct conn *u)
{
	char attrs[300];

	snprintf(attrs, sizeof(attrs), "to='%s'", xmpp_domain(u));
	xmpp_open(u, attrs);
}

static int up_client_header(struct conn *c, const struct xs_header *h)
{
	struct conn *u = c->tied;
	int err = 0;

	if (!u) {
		u = conn_connect(c->w, (struct sockaddr *)&c->w->upstream, c->w->upstream_len, &role_upstream, &err);
		if (!u) {
			log_error("cannot open a stream to the upstream server", "conn=%u err=%s", c->idx,
				  strerror(-err));
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		u->tied = c;
		c->tied = u;
		u->domain = xmpp_domain(c);
		memcpy(u->ip, c->ip, sizeof(u->ip));
		snprintf(u->peer, sizeof(u->peer), "%s", c->peer);
	} else if (u->state == CS_HEADER && !(u->flags & CF_HEADER_SENT)) {
		upstream_open(u);   /* the restart after SASL success */
	}
	if (!xmpp_set_state(c, CS_RELAY)) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	/* Nothing more from the client until the upstream has answered. */
	/* An upstream at saturation answers in seconds, not milliseconds: wait
	 * as long as the client's own login may take (timeouts.auth). */
	xmpp_wait_backend(c, c->w->cfg->timeouts.auth);
	return STOP_KEEP;
}

static int up_client_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct conn *u = c->tied;

	if (!u || u->state == CS_CLOSING) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	relay(c, u, p, n);
	return c->paused ? STOP_KEEP : GO_ON;
}

static void up_client_timeout(struct conn *c)
{
	log_warn("upstream server not answering", "conn=%u after=%us", c->idx, c->w->cfg->timeouts.auth);
	c->flags &= ~CF_WAIT_SM;
	xmpp_error(c, "internal-server-error", NULL);
}

/* Output drained on one side: the other may read again. */
static void relay_sent(struct conn *c)
{
	struct conn *t = c->tied;

	if (t && (t->paused & PAUSE_PEER) && conn_queued(c) < c->w->cfg->limits.max_out_bytes / 2)
		conn_resume(t, PAUSE_PEER);
}

static void up_client_ended(struct conn *c, int reason)
{
	struct conn *u = c->tied;

	if (u && u->state != CS_CLOSING)
		xmpp_end(u, reason);
}

static void untie(struct conn *c)
{
	if (c->tied) {
		c->tied->tied = NULL;
		c->tied = NULL;
	}
}

const struct backend_ops backend_upstream = {
	.name = "upstream",
	.header = up_client_header,
	.element = up_client_element,
	.timeout = up_client_timeout,
	.sent = relay_sent,
	.ended = up_client_ended,
	.free = untie,
};

/* ---- our stream to the upstream (role_upstream) ---------------------------- */

static void up_connected(struct conn *u, int res)
{
	struct conn *c = u->tied;
	int proxy = u->w->cfg->upstream_proxy;

	if (res < 0) {
		log_error("upstream server unreachable", "conn=%u upstream=%s err=%s", c ? c->idx : 0,
			  u->w->cfg->backend_upstream, strerror(-res));
		return;   /* the connection is closing: role ended() tells the client */
	}
	if (proxy && c) {
		uint8_t hdr[120];
		size_t n = proxy_header(c, proxy, hdr, sizeof(hdr));
		conn_send(u, hdr, n);
	}
	xmpp_transport_ready(u);
	u->due = u->w->now + u->w->cfg->timeouts.auth;
	conn_timer(u, u->due);
	upstream_open(u);
}

/* ---- STARTTLS on our stream (backend.upstream_tls) ------------------------- */

static bool wants_tls(const struct conn *u)
{
	return u->w->cfg->upstream_tls && !(u->flags & CF_TLS);
}

/* The handshake is done and verified: open the stream again (RFC 6120
 * §5.4.3.3), within the same wait as the first one. */
static void up_secured(struct conn *u)
{
	log_info("upstream stream secured with TLS", "conn=%u upstream_conn=%u upstream=%s name=%s",
		 u->tied ? u->tied->idx : 0, u->idx, u->w->cfg->backend_upstream, xmpp_domain(u));
	u->due = u->w->now + u->w->cfg->timeouts.auth;
	conn_timer(u, u->due);
	upstream_open(u);
}

/* An element of the upstream's stream before TLS (CS_NEGOTIATE): features
 * offering STARTTLS, then <proceed/>.  Anything else fails the client. */
static int up_starttls(struct conn *u, struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	const char *upstream = u->w->cfg->backend_upstream;

	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "features")) {
		if (!memmem(p, n, "<starttls", 9) || !memmem(p, n, NS_TLS, sizeof(NS_TLS) - 1)) {
			log_error("upstream server offers no STARTTLS, and backend.upstream_tls requires it",
				  "conn=%u upstream=%s", c->idx, upstream);
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		xmpp_outs(u, "<starttls xmlns='" NS_TLS "'/>");
		return GO_ON;
	}
	if (xs_streq(&s->ns, NS_TLS) && xs_streq(&s->local, "proceed")) {
		/* Nothing of the old stream survives the handshake. */
		u->flags &= ~CF_HEADER_SENT;
		if (!xmpp_set_state(u, CS_STARTTLS) || !xprt_tls_client(u, xmpp_domain(u), up_secured)) {
			log_error("cannot start TLS on the upstream stream", "conn=%u upstream=%s", c->idx, upstream);
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		return STOP_DISCARD;   /* what follows <proceed/> is TLS, never XML */
	}
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error"))
		log_error("upstream server ended its stream before TLS", "conn=%u upstream=%s cond=%.*s",
			  c->idx, upstream, (int)s->child_local.len, s->child_local.p);
	else
		log_error("upstream server refused STARTTLS", "conn=%u upstream=%s got=%.*s", c->idx,
			  upstream, (int)s->local.len, s->local.p);
	xmpp_error(c, "internal-server-error", NULL);
	return STOP_DISCARD;
}

static int up_header(struct conn *u, const struct xs_header *h)
{
	struct conn *c = u->tied;

	if (!c) {
		xmpp_end(u, WIRE_CLOSE_DISCONNECT);
		return STOP_DISCARD;
	}
	if (wants_tls(u)) {
		/* Our stream before TLS: the client hears nothing of it. */
		if (!xmpp_set_state(u, CS_NEGOTIATE)) {
			xmpp_error(u, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		return GO_ON;
	}
	if (!xmpp_set_state(u, CS_RELAY)) {
		xmpp_error(u, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	u->due = 0;
	conn_timer(u, 0);
	/* The client's header is answered with the upstream's stream id. */
	c->flags &= ~CF_HEADER_SENT;
	xmpp_answer(c, h->id.len ? h->id.p : NULL);
	return GO_ON;
}

static int up_element(struct conn *u, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct conn *c = u->tied;

	if (!c || c->state == CS_CLOSING) {
		xmpp_end(u, WIRE_CLOSE_DISCONNECT);
		return STOP_DISCARD;
	}
	if (u->state == CS_NEGOTIATE)
		return up_starttls(u, c, s, p, n);
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "features")) {
		char *f = malloc(n);
		if (!f) {
			xmpp_error(c, "internal-server-error", NULL);
			return STOP_DISCARD;
		}
		xmpp_out(c, f, filter_features((const char *)p, n, f));
		free(f);
		/* The client may go on now. */
		c->flags &= ~CF_WAIT_SM;
		if (c->state == CS_RELAY)
			xmpp_resume(c);
		return GO_ON;
	}
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error")) {
		log_info("upstream sent a stream error", "conn=%u cond=%.*s", c->idx, (int)s->child_local.len,
			 s->child_local.p);
		xmpp_out(c, p, n);
		xmpp_end(c, WIRE_CLOSE_ERROR);
		xmpp_end(u, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	relay(u, c, p, n);
	if (xs_streq(&s->ns, NS_SASL) && xs_streq(&s->local, "success")) {
		/* RFC 6120 §6.4.6: both streams restart.  The client's new header
		 * is relayed as ours (up_client_header). */
		c->flags |= CF_AUTHED;
		log_info("authenticated by the upstream", "conn=%u peer=%s", c->idx, c->peer);
		xmpp_restart(u);
		xmpp_restart(c);
		c->last_rx = c->w->now;
		return GO_ON;
	}
	return u->paused ? STOP_KEEP : GO_ON;
}

static void up_ended(struct conn *u, int reason)
{
	struct conn *c = u->tied;

	if (!c || c->state == CS_CLOSING)
		return;
	if (reason == WIRE_CLOSE_NORMAL)
		xmpp_end(c, WIRE_CLOSE_NORMAL);
	else
		xmpp_error(c, "internal-server-error", NULL);
}

const struct role_ops role_upstream = {
	.name = "upstream",
	.ns = NS_CLIENT,
	.header = up_header,
	.element = up_element,
	.sent = relay_sent,
	.ended = up_ended,
	.free = untie,
	.connected = up_connected,
};
