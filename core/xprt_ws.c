/*
 * xprt_ws — XMPP over WebSocket (RFC 7395) as a transport layer: the HTTP/1.1
 * upgrade, then frames (parser/ws.h, our own pure codec) carrying one XML
 * element per message.
 *
 * Up: each complete text message goes to the XMPP layer as if it came on a
 * TCP stream: <open/> becomes a stream header (<stream:stream ...>) and
 * <close/> its closing tag, so the shared negotiation (xmpp.c) runs
 * unchanged; every other element passes as it is.  A frame that arrives
 * whole is unmasked in place and handed up without a copy; a fragmented or
 * split one is assembled (bounded by limits.max_stanza_bytes).
 *
 * Down: every write from above is one element (xmpp.h's contract) and goes
 * out as one text frame, passed down at once (the layer holds no output, so
 * it has no `pending` op).  The XMPP layer writes <open/>/<close/> itself
 * (CF_WS); elements that rely on the stream's declarations get them, as
 * RFC 7395 §3.3.3 requires of every message: `stream:`-prefixed ones an
 * xmlns:stream, unqualified ones xmlns='jabber:client'.
 *
 * Errors: an HTTP error answers a bad upgrade; after it, a protocol
 * violation sends a close frame with the RFC 6455 code (1002, 1003, 1007,
 * 1009) and closes.  A ping is answered with a pong; a close frame with a
 * close frame, after the XMPP layer said goodbye.
 *
 * Files: with services.upload, a request whose path starts with /upload/ is
 * not an upgrade: the layer hands it, and every byte after it, to the file
 * service (core/upload.h) and stays in state HTTP until the connection ends.
 *
 * State machine (ws_set_state): UPGRADE -> OPEN -> CLOSED, or UPGRADE ->
 * HTTP -> CLOSED.
 */
#include "core/xprt.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/upload.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "parser/httpreq.h"
#include "parser/ws.h"

enum ws_state { WSS_UPGRADE = 0, WSS_OPEN, WSS_HTTP, WSS_CLOSED };

struct ws_layer {
	uint8_t state;           /* enum ws_state */
	uint8_t have_hdr;        /* f holds the current frame's header */
	uint8_t hlen;            /* header bytes held in hbuf */
	uint8_t ctl_len;         /* control payload bytes held in ctl */
	bool peer_closed;        /* the client sent its close frame */
	uint64_t got;            /* payload bytes of the current frame so far */
	struct ws_frame f;
	struct ws_msg msg;
	struct ws_upgrade up;    /* during the upgrade */
	struct buf req;          /* the upgrade request so far, then the message being assembled */
	struct up_http *http;    /* HTTP: the file service's request */
	uint8_t hbuf[WS_HDR_MAX];
	uint8_t ctl[WS_CONTROL_MAX];
};

static const char *const ws_state_names[] = { "upgrade", "open", "http", "closed" };

static void ws_set_state(struct conn *c, struct ws_layer *ws, int s)
{
	if (s <= ws->state) {
		log_error("illegal WebSocket layer transition", "conn=%u from=%s to=%s", c->idx,
			  ws_state_names[ws->state], ws_state_names[s]);
		s = WSS_CLOSED;
	}
	ws->state = (uint8_t)s;
}

static void frame_out(struct conn *c, int layer, uint8_t op, const void *p, size_t n)
{
	uint8_t hdr[WS_HDR_MAX];
	size_t hl = ws_frame_header(hdr, sizeof(hdr), 1, op, n);

	xprt_down(c, layer, hdr, hl);
	if (n)
		xprt_down(c, layer, p, n);
}

/* Fail the WebSocket connection (RFC 6455 §7.1.7): a close frame with the
 * code, then the socket. */
static void ws_fail(struct conn *c, struct ws_layer *ws, int layer, unsigned code, const char *why)
{
	uint8_t pl[2 + 64];
	size_t n = ws_close_payload((uint16_t)code, why, strlen(why) < 64 ? strlen(why) : 64, pl, sizeof(pl));

	log_info("WebSocket closed", "conn=%u peer=%s code=%u why=\"%s\"", c->idx, c->peer, code, why);
	if (ws->state == WSS_OPEN && !(c->flags & CF_PEER_GONE))
		frame_out(c, layer, WS_OP_CLOSE, pl, n);
	ws_set_state(c, ws, WSS_CLOSED);
	xmpp_abort(c);
}

static void http_fail(struct conn *c, struct ws_layer *ws, int layer, int status, const char *extra,
		      const char *why)
{
	char out[512];
	size_t n = ws_http_error(status, extra, out, sizeof(out));

	log_info("WebSocket upgrade refused", "conn=%u peer=%s status=%d why=\"%s\"", c->idx, c->peer, status, why);
	xprt_down(c, layer, out, n);
	ws_set_state(c, ws, WSS_CLOSED);
	xmpp_abort(c);
}

/* ---- messages up -------------------------------------------------------------- */

/*
 * <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to=... version=.../> as
 * the stream header it stands for (ws_open_header): the attributes are kept
 * as written; the framing namespace becomes jabber:client (any other
 * namespace stays, and the header check answers it with invalid-namespace).
 */
static void up_open(struct conn *c, int layer, const uint8_t *attrs, size_t n)
{
	char hdr[1024];
	size_t o = ws_open_header(attrs, n, hdr, sizeof(hdr), NULL);

	if (!o) {
		xmpp_error(c, "policy-violation", "stream header too long");
		return;
	}
	if (layer + 1 < c->nxp)
		c->xp[layer + 1]->input(c, layer + 1, (const uint8_t *)hdr, o);
	else
		xmpp_input(c, (const uint8_t *)hdr, o);
}

static void deliver(struct conn *c, int layer, const uint8_t *p, size_t n)
{
	const uint8_t *rest;

	if ((rest = ws_starts_el(p, n, "open")))
		up_open(c, layer, rest, n - (size_t)(rest - p));
	else if (ws_starts_el(p, n, "close"))
		xprt_up(c, layer, (const uint8_t *)"</stream:stream>", 16);
	else
		xprt_up(c, layer, p, n);
}

/* ---- the upgrade ------------------------------------------------------------- */

static size_t upgrade(struct conn *c, struct ws_layer *ws, int layer, const uint8_t *data, size_t len)
{
	const struct config_listener *cl = &c->w->cfg->listeners[c->listener];
	size_t old = buf_used(&ws->req), plen;
	char resp[512];
	long r;

	size_t take = len < WS_REQ_MAX + 1 - old ? len : WS_REQ_MAX + 1 - old;

	/* At most one byte past the bound: enough for the parser's 431. */
	if (buf_append(&ws->req, data, take, WS_REQ_MAX + 1) < 0) {
		http_fail(c, ws, layer, 500, NULL, "out of memory");
		return len;
	}
	if (c->w->cfg->upload.domain) {
		struct httpreq hr;
		long hl = httpreq_parse((const char *)buf_data(&ws->req), buf_used(&ws->req), &hr);

		if (hl > 0 && !strncmp(hr.path, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX))) {
			struct buf rq = ws->req;

			ws->req = (struct buf){ 0 };
			ws_set_state(c, ws, WSS_HTTP);
			ws->http = upload_http_start(c, layer, &hr, buf_data(&rq) + hl, buf_used(&rq) - (size_t)hl);
			buf_reset(&rq);
			return len;
		}
	}
	r = ws_upgrade_parse(&ws->up, buf_data(&ws->req), buf_used(&ws->req));
	if (r == 0)
		return len;
	if (r < 0) {
		http_fail(c, ws, layer, (int)-r, ws->up.extra, ws->up.why ? ws->up.why : "bad request");
		return len;
	}
	plen = ws->up.path.len;
	for (size_t i = 0; i < ws->up.path.len; i++)
		if (buf_data(&ws->req)[ws->up.path.off + i] == '?')
			plen = i;
	if (plen != strlen(cl->path) || memcmp(buf_data(&ws->req) + ws->up.path.off, cl->path, plen) != 0) {
		http_fail(c, ws, layer, 404, NULL, "not the XMPP WebSocket path");
		return len;
	}
	if (!ws->up.xmpp) {
		/* RFC 7395 §3.1: the xmpp subprotocol or nothing. */
		http_fail(c, ws, layer, 400, NULL, "no xmpp subprotocol offered");
		return len;
	}
	xprt_down(c, layer, resp, ws_upgrade_response(ws->up.key, 1, resp, sizeof(resp)));
	ws_set_state(c, ws, WSS_OPEN);
	ws_msg_init(&ws->msg);
	buf_reset(&ws->req);
	log_debug("WebSocket open", "conn=%u peer=%s", c->idx, c->peer);
	if (layer == c->nxp - 1)
		xmpp_transport_ready(c);
	return (size_t)r - old;   /* frames may follow the request at once */
}

/* ---- frames ---------------------------------------------------------------------- */

static void control(struct conn *c, struct ws_layer *ws, int layer)
{
	uint16_t code;
	size_t rlen;
	long r;

	switch (ws->f.opcode) {
	case WS_OP_PING:
		frame_out(c, layer, WS_OP_PONG, ws->ctl, ws->ctl_len);
		break;
	case WS_OP_PONG:
		break;
	case WS_OP_CLOSE:
		r = ws_close_parse(ws->ctl, ws->ctl_len, &code, &rlen);
		if (r < 0) {
			ws_fail(c, ws, layer, (unsigned)-r, "bad close frame");
			return;
		}
		ws->peer_closed = true;
		xmpp_eof(c);   /* our <close/> is dropped (no data after a close); the close frame answers */
		break;
	}
}

static void ws_input(struct conn *c, int layer, const uint8_t *data, size_t len)
{
	struct ws_layer *ws = c->xs_state[layer];
	uint64_t max_msg = c->w->cfg->limits.max_stanza_bytes + 4096u;

	if (!ws) {
		if (!(ws = c->xs_state[layer] = calloc(1, sizeof(*ws)))) {
			c->flags |= CF_PEER_GONE;
			xmpp_abort(c);
			return;
		}
		ws_upgrade_init(&ws->up);
	}
	if (ws->state == WSS_HTTP) {
		if (ws->http)
			upload_http_input(ws->http, data, len);
		return;
	}
	if (ws->state == WSS_UPGRADE) {
		size_t used = upgrade(c, ws, layer, data, len);
		data += used;
		len -= used;
	}
	while (ws->state == WSS_OPEN && c->state != CS_CLOSING && (len || (ws->have_hdr && ws->got == ws->f.len))) {
		if (!ws->have_hdr) {
			size_t take = len < (size_t)(WS_HDR_MAX - ws->hlen) ? len : (size_t)(WS_HDR_MAX - ws->hlen);
			long r;
			memcpy(ws->hbuf + ws->hlen, data, take);
			r = ws_frame_decode(ws->hbuf, ws->hlen + take, WS_SERVER, max_msg, &ws->f);
			if (r == 0) {
				ws->hlen = (uint8_t)(ws->hlen + take);
				return;
			}
			if (r < 0) {
				ws_fail(c, ws, layer, (unsigned)-r, "bad frame");
				return;
			}
			data += (size_t)r - ws->hlen;
			len -= (size_t)r - ws->hlen;
			ws->hlen = 0;
			ws->have_hdr = 1;
			ws->got = 0;
			ws->ctl_len = 0;
			if (ws->f.opcode == WS_OP_BINARY) {
				ws_fail(c, ws, layer, WS_CLOSE_UNSUPPORTED, "XMPP messages are text");
				return;
			}
			if ((r = ws_msg_frame(&ws->msg, &ws->f, max_msg)) < 0) {
				ws_fail(c, ws, layer, (unsigned)-r, r == -WS_CLOSE_TOO_BIG ? "message too big"
					: "bad fragmentation");
				return;
			}
		}
		size_t take = (uint64_t)len < ws->f.len - ws->got ? len : (size_t)(ws->f.len - ws->got);
		uint8_t *p = (uint8_t *)(uintptr_t)data;   /* receive memory: unmasked in place */
		ws_mask(p, take, ws->f.mask, ws->got);
		if (ws_is_control(ws->f.opcode)) {
			memcpy(ws->ctl + ws->ctl_len, p, take);
			ws->ctl_len = (uint8_t)(ws->ctl_len + take);
		} else if (take) {
			long r = ws_msg_data(&ws->msg, p, take);
			if (r < 0) {
				ws_fail(c, ws, layer, (unsigned)-r, "text is not UTF-8");
				return;
			}
			if (ws->f.fin && ws->got == 0 && take == ws->f.len && !buf_used(&ws->req)) {
				/* The whole message is here: no copy. */
				long e = ws_msg_frame_end(&ws->msg, &ws->f);
				data += take;
				len -= take;
				ws->have_hdr = 0;
				if (e < 0) {
					ws_fail(c, ws, layer, (unsigned)-e, "text is not UTF-8");
					return;
				}
				deliver(c, layer, p, take);
				continue;
			}
			if (buf_append(&ws->req, p, take, max_msg) < 0) {
				ws_fail(c, ws, layer, WS_CLOSE_TOO_BIG, "message too big");
				return;
			}
		}
		ws->got += take;
		data += take;
		len -= take;
		if (ws->got < ws->f.len)
			return;
		ws->have_hdr = 0;
		if (ws_is_control(ws->f.opcode)) {
			control(c, ws, layer);
			continue;
		}
		long e = ws_msg_frame_end(&ws->msg, &ws->f);
		if (e < 0) {
			ws_fail(c, ws, layer, (unsigned)-e, "text is not UTF-8");
			return;
		}
		if (e == 1) {
			struct buf m = ws->req;
			ws->req = (struct buf){ 0 };
			deliver(c, layer, buf_data(&m), buf_used(&m));
			buf_reset(&m);
		}
	}
}

/* ---- elements down ---------------------------------------------------------------- */

static void ws_write(struct conn *c, int layer, const void *data, size_t len)
{
	struct ws_layer *ws = c->xs_state[layer];
	const uint8_t *p = data;
	const char *add = NULL;
	size_t name_end = 0, tag_end;

	if (!ws || ws->state != WSS_OPEN || ws->peer_closed)
		return;
	if (len > 1 && p[0] == '<' && p[1] != '/' && p[1] != '?') {
		tag_end = ws_start_tag_end(p, len);
		name_end = ws_tag_name_end(p, tag_end);
		if (name_end > 8 && !memcmp(p, "<stream:", 8)) {
			if (!ws_has_attr(p, tag_end, "xmlns:stream"))
				add = " xmlns:stream='" NS_STREAMS "'";
		} else if (!memchr(p, ':', name_end) && !ws_has_attr(p, tag_end, "xmlns")) {
			add = " xmlns='" NS_CLIENT "'";
		}
	}
	if (!add) {
		frame_out(c, layer, WS_OP_TEXT, p, len);
		return;
	}
	uint8_t hdr[WS_HDR_MAX];
	size_t al = strlen(add), hl = ws_frame_header(hdr, sizeof(hdr), 1, WS_OP_TEXT, len + al);
	xprt_down(c, layer, hdr, hl);
	xprt_down(c, layer, p, name_end);
	xprt_down(c, layer, add, al);
	xprt_down(c, layer, p + name_end, len - name_end);
}

/* Our side ends: the close frame (echoing a client's close, or 1000). */
static void ws_shutdown(struct conn *c, int layer)
{
	struct ws_layer *ws = c->xs_state[layer];
	uint8_t pl[2];

	if (!ws || ws->state != WSS_OPEN)
		return;
	frame_out(c, layer, WS_OP_CLOSE, pl, ws_close_payload(WS_CLOSE_NORMAL, "", 0, pl, sizeof(pl)));
	ws_set_state(c, ws, WSS_CLOSED);
}

static void ws_flush(struct conn *c, int layer)
{
	struct ws_layer *ws = c->xs_state[layer];

	if (ws && ws->state == WSS_HTTP && ws->http)
		upload_http_flush(ws->http);
}

static void ws_free(struct conn *c, int layer)
{
	struct ws_layer *ws = c->xs_state[layer];

	if (ws) {
		buf_reset(&ws->req);
		upload_http_free(ws->http);
	}
	free(ws);
}

const struct xprt_ops xprt_ws = {
	.name = "ws",
	.input = ws_input,
	.write = ws_write,
	.flush = ws_flush,
	.shutdown = ws_shutdown,
	.free = ws_free,
};
