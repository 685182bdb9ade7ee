/*
 * ws — WebSocket (RFC 6455) for XMPP over WebSocket (RFC 7395): the HTTP/1.1
 * upgrade handshake, the 101 and error responses, frame headers in both
 * directions, in-place (un)masking, message assembly rules, incremental
 * UTF-8 validation, close payloads, and the byte-level looks at a message's
 * XML that RFC 7395 framing needs (<open/>, <close/>, namespace
 * declarations).
 *
 * A pure codec: no I/O, no allocation, no globals.  We write our own rather
 * than wrap libwslay because the edge owns its buffers: it unmasks payload in
 * place inside its receive buffer as bytes arrive (a frame need not be whole
 * before its first bytes go to the XMPP framer), and it writes frame headers
 * straight into its output buffer in front of stanza bytes it already holds.
 * wslay's event API copies payload through callbacks and allocates its
 * context and queues; here a frame costs a header parse and an XOR pass.
 *
 * Server-side receive path, as the edge drives it:
 *   1. ws_upgrade_init(); ws_upgrade_parse() on the bytes received so far
 *      until it returns non-zero.  > 0: send ws_upgrade_response() (with
 *      "xmpp" when u.xmpp, else refuse: RFC 7395 §3.1) after checking the
 *      path (404 is the caller's call); < 0: send ws_http_error(-ret,
 *      u.extra) and close.
 *   2. For each frame: ws_frame_decode() the header (need-more until whole),
 *      ws_msg_frame() to apply the fragmentation rules, then, as payload
 *      bytes arrive, ws_mask() them in place (keeping the payload offset)
 *      and, for data frames, ws_msg_data(); after the last payload byte,
 *      ws_msg_frame_end().  Control frames (close, ping, pong) may arrive
 *      between the fragments of a message; their payload is at most 125
 *      bytes and arrives unfragmented, so the caller can wait for it whole;
 *      ws_close_parse() checks a close payload.
 *   3. Any negative return in step 2 is minus the close code to send
 *      (1002 protocol error, 1007 invalid UTF-8, 1009 too big) before
 *      closing the connection (RFC 6455 §7.1.7, "Fail the WebSocket
 *      Connection").
 * No extension is ever negotiated, so every RSV bit must be 0.
 *
 * Client side (xedge-bench, bench/wsconn.c): ws_client_key() and
 * ws_client_request() write the upgrade, ws_response_parse() checks the 101;
 * frames are decoded with role WS_CLIENT (a masked server frame is a
 * protocol error, RFC 6455 §5.1) and written with ws_frame_header_masked()
 * followed by ws_mask() of the payload with a fresh key per frame.
 *
 * Return conventions (docs/principles.md): parsers return bytes consumed
 * (> 0), 0 for need-more, or a negative error; encoders return bytes written,
 * or 0 when the output does not fit or the request is invalid.
 */
#ifndef XEDGE_WS_H
#define XEDGE_WS_H

#include <stddef.h>
#include <stdint.h>

/* ---- HTTP/1.1 upgrade request (server side) ------------------------------ */

#define WS_REQ_MAX 8192        /* request line + header fields + blank line */
#define WS_MAX_FIELDS 64       /* header fields in one request */
#define WS_KEY_LEN 24          /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28       /* base64 of a SHA-1 digest */

/* A piece of the request: buf[off .. off + len) of the buffer given to
 * ws_upgrade_parse(); offsets stay valid if the caller moves the buffer. */
struct ws_span {
	uint16_t off;
	uint16_t len;
};

struct ws_upgrade {
	/* scanner state: zeroed by ws_upgrade_init(), opaque */
	uint16_t scan;           /* bytes examined so far */
	uint16_t line;           /* start of the current line */
	uint16_t fields;         /* header fields seen */
	uint16_t seen;           /* WS_SEEN_* (ws.c) */

	/* the request, valid after a return > 0 */
	struct ws_span path;     /* request-target, origin-form ("/xmpp-websocket?x") */
	struct ws_span host;     /* Host field value */
	struct ws_span origin;   /* Origin field value; len 0 when has_origin is 0 */
	uint8_t has_origin;
	uint8_t xmpp;            /* "xmpp" is in Sec-WebSocket-Protocol */
	char key[WS_KEY_LEN + 1];/* Sec-WebSocket-Key, NUL-terminated */

	/* after a return < 0: why (for logs) and the header line the error
	 * response must carry (NULL if none), both static strings */
	const char *why;
	const char *extra;
};

/* Prepare *u for a new request. */
void ws_upgrade_init(struct ws_upgrade *u);

/*
 * Parse an opening handshake.  buf[0..len) is everything received so far,
 * contiguous, starting with the request line; the parser resumes where it
 * stopped (u->scan), so each byte is examined once.  Returns the request
 * length (> 0, the bytes up to and including the blank line; what follows is
 * WebSocket data); 0 when the request is incomplete (only while len <=
 * WS_REQ_MAX);
 * or minus the HTTP status of the answer:
 *   -400  malformed request line or field (including obs-fold, bare CR or
 *         LF, control bytes), missing or duplicate Host, a bad or duplicate
 *         Sec-WebSocket-Key, a duplicate Sec-WebSocket-Version, Upgrade
 *         without Connection: upgrade, a body;
 *   -405  a method other than GET (u->extra = "Allow: GET");
 *   -426  no "Upgrade: websocket" (u->extra = "Upgrade: websocket"), or
 *         Sec-WebSocket-Version missing or not 13 (u->extra =
 *         "Sec-WebSocket-Version: 13", RFC 6455 §4.4);
 *   -431  more than WS_REQ_MAX bytes or WS_MAX_FIELDS fields;
 *   -505  an HTTP version other than 1.1.
 * A control byte anywhere, or a first byte that cannot begin a method, is
 * refused at once (TLS or binary sent to a WebSocket port).  After an
 * error the state is spent: answer and close.  Spans point into buf.
 */
long ws_upgrade_parse(struct ws_upgrade *u, const uint8_t *buf, size_t len);

/*
 * Sec-WebSocket-Accept for key (WS_KEY_LEN bytes, as ws_upgrade_parse()
 * checked it): base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")),
 * written to out as WS_ACCEPT_LEN characters and a NUL.  Returns 0, or -1 if
 * wolfCrypt fails.
 */
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]);

/*
 * Write the "101 Switching Protocols" response for key into out[0..cap),
 * with "Sec-WebSocket-Protocol: xmpp" when xmpp is non-zero, and a NUL.
 * Returns the length (the NUL not counted), or 0 if cap cannot hold it all
 * or the digest failed.
 */
size_t ws_upgrade_response(const char *key, int xmpp, char *out, size_t cap);

/*
 * Write an error response "HTTP/1.1 <status> <reason>" with the optional
 * extra header line (without CRLF, e.g. u->extra), "Connection: close" and
 * "Content-Length: 0" and a NUL into out[0..cap).  Returns the length (the
 * NUL not counted), or 0 if it does not fit or status is not in 100..599.
 */
size_t ws_http_error(int status, const char *extra, char *out, size_t cap);

/* The reason phrase for the statuses above ("Bad Request", ...); "Error" else. */
const char *ws_http_reason(int status);

/* ---- HTTP/1.1 upgrade, client side (RFC 6455 §4.1) ------------------------ */

/*
 * The client's Sec-WebSocket-Key: base64 of raw, 16 bytes the caller drew
 * from its RNG (RFC 6455 §4.1: a new nonce per connection), as WS_KEY_LEN
 * characters and a NUL.  Returns 0, or -1 if the encoder fails.
 */
int ws_client_key(const uint8_t raw[16], char out[WS_KEY_LEN + 1]);

/*
 * Write the opening handshake "GET path HTTP/1.1" with Host, Upgrade:
 * websocket, Connection: Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version:
 * 13 and Sec-WebSocket-Protocol: xmpp (RFC 7395 §3.1) and a NUL into
 * out[0..cap).  path must be origin-form (starts with '/', visible ASCII
 * only), host visible ASCII (a name or "addr:port"), key WS_KEY_LEN bytes.
 * Returns the length (the NUL not counted), or 0 when an argument is not
 * acceptable or the request does not fit.
 */
size_t ws_client_request(const char *host, const char *path, const char *key, char *out,
			 size_t cap);

/* What the server answered to the client's upgrade (ws_response_parse). */
struct ws_response {
	/* scanner state: zeroed by ws_response_init(), opaque */
	uint16_t scan;           /* bytes examined so far */
	uint16_t line;           /* start of the current line */
	uint16_t fields;         /* header fields seen */
	uint16_t seen;           /* WS_RSEEN_* (ws.c) */

	uint16_t status;         /* the status code, once the status line is in */
	const char *why;         /* after a return < 0: why (a static string) */
};

void ws_response_init(struct ws_response *r);

/*
 * Parse the server's answer to an upgrade sent with key (the
 * Sec-WebSocket-Key given, WS_KEY_LEN bytes).  buf[0..len) is everything
 * received so far, contiguous, from the status line on; the parser resumes
 * where it stopped.  Returns the length of the response head (> 0: the bytes
 * up to and including the blank line; what follows is WebSocket frames) when
 * it is a valid switch to the xmpp subprotocol; 0 when incomplete (only
 * while len <= WS_REQ_MAX); -1 when the client must fail the connection
 * (RFC 6455 §4.1, client requirements 1-6, and RFC 7395 §3.1), r->why says
 * which rule:
 *   a malformed status line or field (bare CR or LF, control bytes, obs-fold),
 *   a head over WS_REQ_MAX bytes or WS_MAX_FIELDS fields;
 *   a status other than 101 (r->status holds it when the line was well formed);
 *   no Upgrade field listing websocket, no Connection field listing upgrade;
 *   a Sec-WebSocket-Accept missing, duplicated or not the digest of key;
 *   any Sec-WebSocket-Extensions (the client requests none);
 *   a Sec-WebSocket-Protocol other than exactly xmpp, or none.
 * After an error the state is spent.
 */
long ws_response_parse(struct ws_response *r, const uint8_t *buf, size_t len, const char *key);

/* ---- frames --------------------------------------------------------------- */

#define WS_HDR_MAX 14          /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_CONTROL_MAX 125     /* payload of a control frame */
#define WS_CLOSE_REASON_MAX 123

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA
};

/* Close codes (RFC 6455 §7.4.1); errors below are their negation. */
enum ws_close {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,   /* never on the wire: an empty close payload */
	WS_CLOSE_ABNORMAL = 1006,    /* never on the wire */
	WS_CLOSE_INVALID = 1007,     /* text that is not UTF-8 */
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_EXTENSION = 1010,
	WS_CLOSE_INTERNAL = 1011,
	WS_CLOSE_TLS = 1015          /* never on the wire */
};

/* Which end we are: a server requires masked frames, a client unmasked ones. */
enum ws_role { WS_SERVER = 0, WS_CLIENT = 1 };

struct ws_frame {
	uint64_t len;        /* payload bytes; the frame is hdr_len + len bytes */
	uint8_t hdr_len;     /* 2 .. WS_HDR_MAX */
	uint8_t fin;         /* 1: last frame of its message */
	uint8_t opcode;      /* enum ws_opcode */
	uint8_t masked;      /* 1 when a mask key follows the length */
	uint8_t mask[4];     /* the key; zero when !masked */
};

static inline int ws_is_control(uint8_t opcode)
{
	return (opcode & 0x8) != 0;
}

/*
 * Decode the frame header at p[0..n).  role is the receiving end: WS_SERVER
 * requires the mask bit, WS_CLIENT forbids it.  max_payload bounds the
 * payload of a data frame (control frames are bound by WS_CONTROL_MAX).
 * Returns the header length (> 0) and fills *f (the payload need not be
 * here yet); 0 when fewer than f->hdr_len bytes are here; or -1002 (RSV bit
 * set, unknown opcode, wrong masking, fragmented or oversized control frame,
 * a length not in its shortest form, a 64-bit length with the top bit set)
 * or -1009 (payload > max_payload).  Each rule is judged as soon as the byte
 * carrying it is here.  Nothing is retained.
 */
long ws_frame_decode(const uint8_t *p, size_t n, int role, uint64_t max_payload,
		     struct ws_frame *f);

/*
 * XOR p[0..n) in place with the mask key, where p[0] is payload byte number
 * off of its frame: unmasking (or masking) a payload in pieces as it arrives
 * gives the same bytes as doing it at once.
 */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off);

/*
 * Write a server frame header (unmasked) for a payload of len bytes into
 * out[0..cap).  Returns 2, 4 or 10, or 0 if cap is too small, the opcode is
 * not defined, a control frame has !fin or len > 125, or len >= 2^63.
 */
size_t ws_frame_header(uint8_t *out, size_t cap, int fin, uint8_t opcode, uint64_t len);

/*
 * The client form: the same header with the mask bit and key (6, 8 or 14
 * bytes).  The caller then masks its payload in place with
 * ws_mask(payload, len, key, 0).  key comes from the caller's RNG.
 */
size_t ws_frame_header_masked(uint8_t *out, size_t cap, int fin, uint8_t opcode, uint64_t len,
			      const uint8_t key[4]);

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Incremental UTF-8 validation (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF); three bytes of state. */
struct ws_utf8 {
	uint8_t need;        /* continuation bytes still expected */
	uint8_t lo, hi;      /* the range allowed for the next continuation byte */
};

void ws_utf8_init(struct ws_utf8 *u);

/* Feed p[0..n).  Returns 0 while the bytes can still be valid UTF-8, -1007
 * at the first byte that cannot (RFC 6455 §8.1: fail fast). */
long ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n);

/* 1 when the bytes fed so far end on a character boundary. */
int ws_utf8_complete(const struct ws_utf8 *u);

/* ---- messages ------------------------------------------------------------- */

/*
 * Fragmentation rules (RFC 6455 §5.4) for one connection's receive side:
 * a message is a TEXT or BINARY frame followed by CONT frames up to one with
 * FIN; a CONT frame with no message open, or a TEXT/BINARY frame while one
 * is open, is a protocol error; control frames may come in between and do
 * not touch the state.  A text message must be UTF-8 as a whole and is
 * checked as its bytes arrive.
 */
struct ws_msg {
	uint64_t len;        /* payload bytes of the open message so far */
	uint8_t op;          /* WS_OP_TEXT or WS_OP_BINARY while open, else 0 */
	struct ws_utf8 utf8;
};

void ws_msg_init(struct ws_msg *m);

/*
 * A frame header was decoded.  Returns 0 (control frames: always), -1002 for
 * a fragmentation error, or -1009 when the message would exceed max_msg
 * bytes in total.
 */
long ws_msg_frame(struct ws_msg *m, const struct ws_frame *f, uint64_t max_msg);

/* Unmasked payload bytes of the current data frame, in order, in any
 * pieces.  Returns 0, or -1007 when a text message is not UTF-8. */
long ws_msg_data(struct ws_msg *m, const uint8_t *p, size_t n);

/*
 * The current data frame's payload is complete.  Returns 1 when that frame
 * ended the message (then the message is closed), 0 when more fragments
 * follow (and for a control frame, which does not touch the state), or -1007
 * when a text message ends inside a UTF-8 sequence.
 */
long ws_msg_frame_end(struct ws_msg *m, const struct ws_frame *f);

/* ---- close frames --------------------------------------------------------- */

/* 1 when code may appear in a close frame: 1000-1003, 1007-1011, 3000-4999. */
int ws_close_code_ok(unsigned code);

/*
 * Check an (unmasked) close payload p[0..n), n <= 125.  Returns 0 and sets
 * *code (WS_CLOSE_NO_STATUS when n == 0) and *reason_len (the UTF-8 reason
 * is p[2 .. 2 + *reason_len)); -1002 for a 1-byte payload or a code that may
 * not be sent; -1007 when the reason is not UTF-8.
 */
long ws_close_parse(const uint8_t *p, size_t n, uint16_t *code, size_t *reason_len);

/*
 * Write a close payload (code, then reason[0..rlen)) into out[0..cap).
 * Returns its length (2 + rlen), or 0 if the code may not be sent, rlen >
 * WS_CLOSE_REASON_MAX or cap is too small.  The reason must be UTF-8.
 */
size_t ws_close_payload(uint16_t code, const char *reason, size_t rlen, uint8_t *out, size_t cap);

/* ---- RFC 7395 messages as bytes --------------------------------------------- */

/*
 * Byte-level looks at one message's XML, shared by the edge (core/xprt_ws.c)
 * and xedge-bench (bench/wsconn.c); no XML parsing, nothing read outside
 * p[0..n).  Up: which framing element a message is (ws_starts_el) and an
 * <open/> as the stream header it stands for (ws_open_header), so the
 * XMPP stream code runs as over TCP.  Down: the start tag of an element the
 * caller writes (ws_start_tag_end, ws_tag_name_end, ws_has_attr), to add
 * the namespace declarations RFC 7395 §3.3.3 wants in every message.
 * "Blank" below is space, tab, CR or LF.
 */

/* When p[0..n), after leading blanks, starts with "<name" followed by a
 * blank, '/' or '>': a pointer just past "<name" (into p).  Else NULL. */
const uint8_t *ws_starts_el(const uint8_t *p, size_t n, const char *name);

#define WS_OPEN_SLACK 128    /* ws_open_header(): cap must exceed the attributes by this */

/*
 * The attributes of an <open/> (attrs[0..n): what follows "<open" up to the
 * message's end, as ws_starts_el() returns them) as the stream header it
 * stands for: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'",
 * the attributes as written except that an xmlns declaration of the framing
 * namespace (urn:ietf:params:xml:ns:xmpp-framing, either quote) becomes
 * xmlns='jabber:client', then '>'.  Trailing blanks and the closing "/>" or
 * ">" are dropped.  Writes into out[0..cap) (no NUL) and returns the
 * length, or 0 when the trimmed attributes are longer than cap -
 * WS_OPEN_SLACK.  *framing (if not NULL) is set to 1 when the framing
 * namespace was declared, else 0.
 */
size_t ws_open_header(const uint8_t *attrs, size_t n, char *out, size_t cap, int *framing);

/* The element whose start tag begins at p[0] ('<'): the index of the '>'
 * ending that tag (quoted attribute values skipped), or n when it does not
 * end in p[0..n). */
size_t ws_start_tag_end(const uint8_t *p, size_t n);

/* The start tag p[0..tag_end) (p[0] == '<'): the length of "<name", i.e. the
 * index of the first blank, '/' or '>' (tag_end if none). */
size_t ws_tag_name_end(const uint8_t *p, size_t tag_end);

/* 1 when the start tag p[0..n) has an attribute `name`: name after a blank,
 * followed by '=' or a space.  A lookalike inside a quoted value counts too
 * (the callers' own output never has one); else 0. */
int ws_has_attr(const uint8_t *p, size_t n, const char *name);

#endif
