/*
 * wsconn — XMPP over WebSocket (RFC 7395, on RFC 6455) for xedge-bench's
 * simulated clients: the layer between client.c (XMPP) and the bytes below
 * it (TCP, or the TLS pipe for wss).  The frame and handshake codec is the
 * project's own (parser/ws.h), used here from the client's side.
 *
 * A connection's layer (struct bw_conn, allocated by bw_begin(), freed with
 * the connection) goes UPGRADE -> OPEN -> CLOSED (bw_set_state rejects
 * anything else):
 *   UPGRADE  the GET with a fresh Sec-WebSocket-Key is out; the answer is
 *            checked by ws_response_parse() (101, Upgrade, Connection, the
 *            accept digest, no extension, exactly the xmpp subprotocol),
 *            then bc_ws_ready() opens the XMPP stream (the ws transaction:
 *            connect started -> the 101 checked; for wss the TLS handshake
 *            is inside it, and in the tls transaction as well);
 *   OPEN     frames both ways;
 *   CLOSED   the server's close frame came (ours answered it), or the
 *            connection failed: nothing more is read.
 *
 * Down (bw_write): client.c writes whole elements, possibly several in one
 * call; each becomes one text frame (RFC 7395 §3.3.3: a message is exactly
 * one element), masked with a new key (RFC 6455 §5.3: unpredictable, from
 * wolfCrypt's RNG, drawn 4 KiB at a time per thread).  Elements that rely
 * on the stream's declarations get them as the message needs them alone:
 * an unprefixed element without xmlns gets xmlns='jabber:client'.
 * Keepalives are ping frames (a whitespace keepalive is not a message).
 *
 * Up (bw_input): frames are decoded as a client (a masked frame from the
 * server fails the connection, §5.1), data frames are bounded by
 * BW_MAX_MSG, a message split over continuation frames is assembled (same
 * bound) and its UTF-8 checked as it comes (ws_msg).  Each whole text
 * message goes to client.c (bc_xmpp_input): <open/> as the stream header it
 * stands for (its framing namespace as jabber:client, xmlns:stream added),
 * <close/> as </stream:stream>, anything else as it is.  A ping is answered
 * with a pong of its payload, a pong is ignored, a close frame is answered
 * with one (its code echoed) and, in the middle of a session, ends it as
 * "ws:closed-by-server".
 *
 * Failure causes (counted by client.c, then the connection is dropped):
 * ws:bad-upgrade (a 101 that breaks a rule), ws:http-<status> (not a 101),
 * ws:bad-frame (1002: masking, opcodes, RSV bits, fragmentation rules, a
 * bad close payload), ws:frame-too-big (1009), ws:bad-utf8 (1007),
 * ws:binary-message (1003: RFC 7395 carries XML in text messages), ws:bad-open
 * (an <open/> outside the framing namespace or too long), ws:closed-by-server.
 * A frame-level failure (the causes with a close code) sends a close frame
 * with its code before the TCP connection closes (RFC 6455 §7.1.7): the
 * slot lingers until it is written (thread.c, BF_LINGER), at most the step
 * timeout.  The others drop the TCP connection at once, as for every
 * other cause (before the 101 there is no WebSocket to close).
 */
#include "bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/ws.h"
#include "tls/crypto.h"

#define NS_CLIENT "jabber:client"

#define BW_MAX_MSG (1u << 20)          /* a message, assembled or not: the framer's stanza bound */
#define BW_RX_LIMIT (BW_MAX_MSG + 65536)   /* a frame not yet whole, plus what follows it */
#define BW_OPEN_MAX 1024               /* attributes of the server's <open/> */
#define BW_KEYPOOL 4096                /* random bytes drawn at once for mask keys */

enum bw_state { BW_UPGRADE = 0, BW_OPEN, BW_CLOSED };

static const char *const bw_state_names[] = { "upgrade", "open", "closed" };

struct bw_conn {
	uint8_t state;               /* enum bw_state */
	bool close_sent;             /* our close frame is out */
	char key[WS_KEY_LEN + 1];    /* Sec-WebSocket-Key of the upgrade */
	struct ws_response resp;     /* UPGRADE: the 101 so far */
	struct ws_msg msg;           /* the fragmentation and UTF-8 rules */
	struct buf rx;               /* bytes not consumed: the 101's head, a frame not yet whole */
	struct buf frag;             /* a message split over frames, so far */
};

static _Thread_local uint8_t keypool[BW_KEYPOOL];
static _Thread_local unsigned keyleft;
static _Thread_local uint8_t *scratch;   /* a frame being built (header + masked payload) */
static _Thread_local size_t scratch_cap;

static const char *bw_state_str(int s)
{
	return s >= 0 && s <= BW_CLOSED ? bw_state_names[s] : "?";
}

static void bw_set_state(struct bw_conn *w, int s)
{
	if (s <= w->state) {
		fprintf(stderr, "xedge-bench: illegal WebSocket transition %s -> %s\n",
			bw_state_str(w->state), bw_state_str(s));
		s = BW_CLOSED;
	}
	w->state = (uint8_t)s;
}

void bw_thread_exit(void)
{
	free(scratch);
	scratch = NULL;
	scratch_cap = 0;
	explicit_bzero(keypool, sizeof(keypool));
	keyleft = 0;
}

void bw_free(struct bclient *c)
{
	if (!c->ws)
		return;
	buf_reset(&c->ws->rx);
	buf_reset(&c->ws->frag);
	free(c->ws);
	c->ws = NULL;
}

/* A fresh mask key; -1 when the RNG fails. */
static int mask_key(uint8_t key[4])
{
	if (keyleft < 4) {
		if (crypto_random(keypool, sizeof(keypool)) < 0)
			return -1;
		keyleft = sizeof(keypool);
	}
	keyleft -= 4;
	memcpy(key, keypool + keyleft, 4);
	return 0;
}

static uint8_t *scratch_get(size_t need)
{
	if (scratch_cap < need) {
		uint8_t *p = realloc(scratch, need);
		if (!p)
			return NULL;
		scratch = p;
		scratch_cap = need;
	}
	return scratch;
}

/* Fail the connection: the cause counted by client.c, the socket dropped. */
static void bw_fail(struct bthread *t, struct bclient *c, const char *cause, const char *why)
{
	if (c->ws && c->ws->state != BW_CLOSED)
		bw_set_state(c->ws, BW_CLOSED);
	bc_fail(t, c, cause, why);
}

static const char *close_cause(long code)
{
	switch (-code) {
	case WS_CLOSE_TOO_BIG:
		return "ws:frame-too-big";
	case WS_CLOSE_INVALID:
		return "ws:bad-utf8";
	case WS_CLOSE_UNSUPPORTED:
		return "ws:binary-message";
	default:
		return "ws:bad-frame";
	}
}

struct part {
	const void *p;
	size_t n;
};

/* One frame (FIN) of opcode op whose payload is the np parts, masked on the way. */
static int frame_out(struct bclient *c, uint8_t op, const struct part *pt, unsigned np)
{
	uint8_t key[4], *f;
	size_t hl, len = 0, o;

	for (unsigned k = 0; k < np; k++)
		len += pt[k].n;
	if (mask_key(key) < 0)
		return -1;
	f = scratch_get(WS_HDR_MAX + len);
	if (!f)
		return -1;
	hl = ws_frame_header_masked(f, WS_HDR_MAX, 1, op, len, key);
	if (!hl)
		return -1;
	o = hl;
	for (unsigned k = 0; k < np; k++) {
		if (pt[k].n)
			memcpy(f + o, pt[k].p, pt[k].n);
		o += pt[k].n;
	}
	ws_mask(f + hl, len, key, 0);
	bc_lower_out(c, f, hl + len);
	return 0;
}

static void control_out(struct bthread *t, struct bclient *c, uint8_t op, const uint8_t *p, size_t n)
{
	struct part pt = { p, n };

	if (frame_out(c, op, &pt, 1) < 0)
		bw_fail(t, c, "ws:setup", "mask key or memory");
}

/*
 * Fail the WebSocket connection (RFC 6455 §7.1.7) for the close code -code
 * (1002, 1003, 1007, 1009): a close frame with the code goes out first (the
 * slot lingers until it is sent, bounded by the step timeout), then the
 * TCP connection closes; the cause is counted by client.c.
 */
void bw_close(struct bthread *t, struct bclient *c, uint16_t code)
{
	struct bw_conn *w = c->ws;
	uint8_t pl[2];
	struct part pt = { pl, ws_close_payload(code, "", 0, pl, sizeof(pl)) };

	if (w && w->state == BW_OPEN && !w->close_sent && pt.n &&
	    !(c->flags & (BF_CLOSED | BF_PEER_GONE)) && frame_out(c, WS_OP_CLOSE, &pt, 1) == 0) {
		w->close_sent = true;
		if (c->flags & BF_TLS)
			bc_flush(t, c);
		c->flags |= BF_LINGER;
	}
}

static void ws_error(struct bthread *t, struct bclient *c, long code, const char *why)
{
	bw_close(t, c, (uint16_t)-code);
	bw_fail(t, c, close_cause(code), why);
}

/* ---- the upgrade -------------------------------------------------------------- */

void bw_begin(struct bthread *t, struct bclient *c)
{
	const struct sockaddr *sa;
	socklen_t salen;
	uint8_t raw[16];
	char req[2048], host[320];
	const char *dom = bc_domain(c->idx);
	unsigned port;
	size_t n;

	bw_free(c);
	c->ws = calloc(1, sizeof(*c->ws));
	if (!c->ws) {
		bc_fail(t, c, "ws:setup", "out of memory");
		return;
	}
	ws_msg_init(&c->ws->msg);
	ws_response_init(&c->ws->resp);
	if (B.o.scenario == SC_FILE) {
		sa = bs_addr(c, &salen);
	} else {
		sa = (const struct sockaddr *)(bc_side(c->idx) ? &B.o.remote : &B.o.target);
	}
	port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	/* Host: the URI's authority (RFC 6455 §4.1): the domain, and the port
	 * unless it is the scheme's default */
	if (port == (c->tmode == TLS_MODE_WSS ? 443u : 80u))
		snprintf(host, sizeof(host), "%s", dom);
	else
		snprintf(host, sizeof(host), "%s:%u", dom, port);
	if (crypto_random(raw, sizeof(raw)) < 0 || ws_client_key(raw, c->ws->key) < 0) {
		bc_fail(t, c, "ws:setup", "random key");
		return;
	}
	n = ws_client_request(host, B.o.ws_path ? B.o.ws_path : "/xmpp-websocket", c->ws->key, req,
			      sizeof(req));
	if (!n) {
		bc_fail(t, c, "ws:setup", "the upgrade request (host or path)");
		return;
	}
	bc_set_state(c, BC_WS);
	bc_lower_out(c, req, n);
}

/* ---- messages up -------------------------------------------------------------- */

/*
 * The server's <open .../> (attributes a[0..n), up to the end of the
 * message) as a stream header (ws_open_header): the framing namespace
 * declaration becomes jabber:client, xmlns:stream is added, the rest is kept
 * as written; the header check in client.c judges it.  -1: not in the
 * framing namespace, or too long.
 */
static int up_open(struct bthread *t, struct bclient *c, const uint8_t *a, size_t n)
{
	char hdr[BW_OPEN_MAX + WS_OPEN_SLACK];
	int framing;
	size_t o = ws_open_header(a, n, hdr, sizeof(hdr), &framing);

	if (!o || !framing)
		return -1;
	bc_xmpp_input(t, c, (const uint8_t *)hdr, o);
	return 0;
}

static void deliver(struct bthread *t, struct bclient *c, const uint8_t *p, size_t n)
{
	const uint8_t *rest;

	if ((rest = ws_starts_el(p, n, "open"))) {
		if (up_open(t, c, rest, n - (size_t)(rest - p)) < 0)
			bw_fail(t, c, "ws:bad-open", "not in the framing namespace, or too long");
	} else if (ws_starts_el(p, n, "close")) {
		bc_xmpp_input(t, c, (const uint8_t *)"</stream:stream>", 16);
	} else {
		bc_xmpp_input(t, c, p, n);
	}
}

/* The server's close frame (payload p[0..n), whole). */
static void on_close(struct bthread *t, struct bclient *c, const uint8_t *p, size_t n)
{
	struct bw_conn *w = c->ws;
	uint16_t code;
	size_t rlen;
	uint8_t pl[2];
	long r = ws_close_parse(p, n, &code, &rlen);

	if (r < 0) {
		ws_error(t, c, r, "close payload");
		return;
	}
	bw_set_state(w, BW_CLOSED);
	if (!w->close_sent) {
		/* RFC 6455 §5.5.1: answer, echoing the code (none: an empty payload) */
		w->close_sent = true;
		control_out(t, c, WS_OP_CLOSE, pl,
			    code == WS_CLOSE_NO_STATUS ? 0 : ws_close_payload(code, "", 0, pl, sizeof(pl)));
		if (c->flags & BF_TLS) {
			bc_flush(t, c);
			tlsp_close_notify(&c->tp);
		}
	}
	if (c->state != BC_CLOSING && !(c->flags & BF_CLOSED)) {
		char why[32];
		snprintf(why, sizeof(why), "close code %u", code);
		c->flags |= BF_LINGER;     /* our answering close frame goes out first */
		bc_fail(t, c, "ws:closed-by-server", why);
	}
	/* else: our <close/> was answered; the server closes the TCP connection */
}

/* One whole frame, header f, payload p[0..f->len).  -1: the connection failed. */
static int on_frame(struct bthread *t, struct bclient *c, const struct ws_frame *f, const uint8_t *p)
{
	struct bw_conn *w = c->ws;
	size_t n = (size_t)f->len;
	long r;

	switch (f->opcode) {
	case WS_OP_PING:
		control_out(t, c, WS_OP_PONG, p, n);
		return 0;
	case WS_OP_PONG:
		return 0;
	case WS_OP_CLOSE:
		on_close(t, c, p, n);
		return (c->flags & BF_CLOSED) ? -1 : 0;
	default:
		break;
	}
	r = ws_msg_frame(&w->msg, f, BW_MAX_MSG);
	if (r < 0) {
		ws_error(t, c, r, "fragmentation or size");
		return -1;
	}
	if (w->msg.op == WS_OP_BINARY) {
		ws_error(t, c, -WS_CLOSE_UNSUPPORTED, "RFC 7395 carries text messages only");
		return -1;
	}
	if (ws_msg_data(&w->msg, p, n) < 0) {
		ws_error(t, c, -WS_CLOSE_INVALID, NULL);
		return -1;
	}
	r = ws_msg_frame_end(&w->msg, f);
	if (r < 0) {
		ws_error(t, c, -WS_CLOSE_INVALID, "ends inside a character");
		return -1;
	}
	if (r == 1 && !buf_used(&w->frag)) {
		deliver(t, c, p, n);           /* whole in one frame: no copy */
	} else {
		if (n && buf_append(&w->frag, p, n, BW_MAX_MSG) < 0) {
			ws_error(t, c, -WS_CLOSE_TOO_BIG, "assembled message");
			return -1;
		}
		if (r == 1) {
			struct buf m = w->frag;
			memset(&w->frag, 0, sizeof(w->frag));
			deliver(t, c, buf_data(&m), buf_used(&m));
			buf_reset(&m);
		}
	}
	return (c->flags & BF_CLOSED) ? -1 : 0;
}

/* Frames in p[0..n): the bytes consumed (whole frames), or -1 when failed. */
static long frames(struct bthread *t, struct bclient *c, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n && c->ws && c->ws->state == BW_OPEN && !(c->flags & BF_CLOSED)) {
		struct ws_frame f;
		long hl = ws_frame_decode(p + done, n - done, WS_CLIENT, BW_MAX_MSG, &f);

		if (hl == 0)
			break;
		if (hl < 0) {
			ws_error(t, c, hl, f.masked ? "a masked frame from the server" : "frame header");
			return -1;
		}
		if (n - done - (size_t)hl < f.len)
			break;                     /* the payload is not all here yet */
		if (on_frame(t, c, &f, p + done + (size_t)hl) < 0)
			return -1;
		done += (size_t)hl + (size_t)f.len;
	}
	return (long)done;
}

static void upgrade_in(struct bthread *t, struct bclient *c)
{
	struct bw_conn *w = c->ws;
	long r = ws_response_parse(&w->resp, buf_data(&w->rx), buf_used(&w->rx), w->key);
	char cause[32];

	if (r == 0)
		return;
	if (r < 0) {
		if (w->resp.status && w->resp.status != 101) {
			snprintf(cause, sizeof(cause), "ws:http-%u", w->resp.status);
			bw_fail(t, c, cause, w->resp.why);
		} else {
			bw_fail(t, c, "ws:bad-upgrade", w->resp.why);
		}
		return;
	}
	buf_consume(&w->rx, (size_t)r);
	bw_set_state(w, BW_OPEN);
	bc_ws_ready(t, c);
}

void bw_input(struct bthread *t, struct bclient *c, const uint8_t *data, size_t len)
{
	struct bw_conn *w = c->ws;
	const uint8_t *p = data;
	size_t n = len;
	bool held;
	long done;

	if (!w || w->state == BW_CLOSED)
		return;
	if (w->state == BW_UPGRADE) {
		/* the head is bounded by WS_REQ_MAX (the parser says so past it) */
		if (buf_append(&w->rx, data, len, BW_RX_LIMIT) < 0) {
			bw_fail(t, c, "ws:bad-upgrade", "response too large");
			return;
		}
		upgrade_in(t, c);
		if (!c->ws || c->ws->state != BW_OPEN || !buf_used(&c->ws->rx))
			return;
		data = NULL;
		len = 0;
	}
	held = buf_used(&w->rx) > 0;
	if (held) {
		if (len && buf_append(&w->rx, data, len, BW_RX_LIMIT) < 0) {
			ws_error(t, c, -WS_CLOSE_TOO_BIG, "input");
			return;
		}
		p = buf_data(&w->rx);
		n = buf_used(&w->rx);
	}
	done = frames(t, c, p, n);
	if (done < 0 || (c->flags & BF_CLOSED) || !c->ws)
		return;
	if (held)
		buf_consume(&w->rx, (size_t)done);
	else if ((size_t)done < n && buf_append(&w->rx, p + done, n - (size_t)done, BW_RX_LIMIT) < 0)
		ws_error(t, c, -WS_CLOSE_TOO_BIG, "input");
}

/* ---- elements down ------------------------------------------------------------ */

/* Where the element starting at p[0] ('<') ends: the index after its last byte,
 * or n when it does not end in p[0..n) (our own output: never). */
static size_t element_end(const uint8_t *p, size_t n)
{
	size_t i = 0;
	unsigned depth = 0;

	while (i < n) {
		const uint8_t *lt = memchr(p + i, '<', n - i);
		size_t j;

		if (!lt)
			return n;
		i = (size_t)(lt - p);
		if (n - i >= 9 && !memcmp(p + i, "<![CDATA[", 9)) {
			const uint8_t *e = memmem(p + i, n - i, "]]>", 3);
			if (!e)
				return n;
			i = (size_t)(e - p) + 3;
			continue;
		}
		j = i + ws_start_tag_end(p + i, n - i);
		if (j >= n)
			return n;
		if (p[i + 1] == '/') {
			if (depth)
				depth--;
		} else if (p[j - 1] != '/') {
			depth++;
		}
		i = j + 1;
		if (depth == 0)
			return i;
	}
	return n;
}

/* An unprefixed element with no xmlns of its own: the length of "<name" (the
 * declaration goes after it); 0 when it needs none. */
static size_t needs_ns(const uint8_t *p, size_t n)
{
	size_t name_end, tag_end;

	if (n < 2 || p[0] != '<' || p[1] == '/' || p[1] == '?' || p[1] == '!')
		return 0;
	tag_end = ws_start_tag_end(p, n);
	name_end = ws_tag_name_end(p, tag_end);
	if (memchr(p, ':', name_end) || ws_has_attr(p, tag_end, "xmlns"))
		return 0;
	return name_end;
}

void bw_write(struct bclient *c, const void *xml, size_t len)
{
	static const char add[] = " xmlns='" NS_CLIENT "'";
	const uint8_t *p = xml;
	size_t i = 0;

	if (!c->ws || c->ws->state != BW_OPEN || c->ws->close_sent)
		return;
	while (i < len && !(c->flags & (BF_CLOSED | BF_PEER_GONE))) {
		size_t e, k;
		int r;

		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
			i++;
		if (i == len)
			break;
		e = i + element_end(p + i, len - i);
		k = needs_ns(p + i, e - i);
		if (k) {
			/* "<name" + the declaration + the rest: one frame */
			struct part pt[3] = { { p + i, k }, { add, sizeof(add) - 1 }, { p + i + k, e - i - k } };
			r = frame_out(c, WS_OP_TEXT, pt, 3);
		} else {
			struct part pt = { p + i, e - i };
			r = frame_out(c, WS_OP_TEXT, &pt, 1);
		}
		if (r < 0) {
			bw_fail(bc_thread(c), c, "ws:setup", "mask key or memory");
			return;
		}
		i = e;
	}
}

void bw_ping(struct bclient *c)
{
	if (c->ws && c->ws->state == BW_OPEN && !c->ws->close_sent)
		control_out(bc_thread(c), c, WS_OP_PING, NULL, 0);
}
