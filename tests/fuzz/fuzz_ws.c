/*
 * fuzz_ws — libFuzzer target for parser/ws.c.
 *
 * Input: one selector byte, then bytes that are read first as an HTTP
 * upgrade request and then (after the request, or from the start if the
 * request was refused or incomplete) as a stream of WebSocket frames.
 * Selector bit 0: the receiving role (server: masked frames, client:
 * unmasked); bits 1-4: the chunk size for incremental feeding; bits 5-7: the
 * split point used when unmasking and validating in two pieces.
 *
 * Invariants (any breach is __builtin_trap()):
 *   upgrade: the result is a length <= n, 0 (only below WS_REQ_MAX + 1
 *     bytes) or one of the documented statuses; chunked feeding gives the
 *     same result and the same fields; spans lie inside the request; the 101
 *     and error responses can be built;
 *   frames: a header length is 2..14 and <= the bytes available, every
 *     strict prefix is need-more, and re-encoding the decoded fields with
 *     the peer's encoder gives the same header bytes (the decoder accepts
 *     only the shortest length form); unmasking in two pieces equals
 *     unmasking at once and masking again restores the input; each text
 *     message is judged UTF-8 exactly when an independent decoder says so,
 *     and a -1007 during a message means the bytes so far are no valid
 *     prefix; close payloads are judged consistently;
 *   round trip: a payload framed by the client (masked) or server encoder
 *     decodes to the same opcode, FIN, length and payload;
 *   framing (RFC 7395 messages as bytes): ws_starts_el points inside the
 *     input just past "<open" or "<close"; ws_open_header writes within its
 *     buffer a header that starts with "<stream:stream " and ends with '>'
 *     (or returns 0: attributes too long for it); a start
 *     tag's end and its name's end lie inside the input, in that order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/ws.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_PAYLOAD 1024         /* small, so 1009 is reachable */
#define MAX_MSG 2048

/* ---- an independent UTF-8 decoder -------------------------------------------- */

/* Length of the valid sequence at p[0..n), 0 if invalid, -1 if a valid
 * beginning cut short by the end of the bytes. */
static int ref_seq(const uint8_t *p, size_t n)
{
	static const uint8_t fill[] = { 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF };
	uint32_t cp;
	int len;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = p[0] & 0x1F;
	} else if ((p[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = p[0] & 0x0F;
	} else if ((p[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < (size_t)len) {
		/* cut short: valid if some continuation makes it valid */
		uint8_t t[4];
		size_t miss = (size_t)len - n;
		size_t combos = 1;

		for (size_t k = 0; k < miss; k++)
			combos *= sizeof(fill);
		for (size_t c = 0; c < combos; c++) {
			size_t x = c;
			memcpy(t, p, n);
			for (size_t k = n; k < (size_t)len; k++) {
				t[k] = fill[x % sizeof(fill)];
				x /= sizeof(fill);
			}
			if (ref_seq(t, (size_t)len) == len)
				return -1;
		}
		return 0;
	}
	for (int k = 1; k < len; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0;   /* overlong */
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* 1 valid and complete, 2 valid but ends inside a sequence, 0 invalid. */
static int ref_utf8(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		int r = ref_seq(p + i, n - i);
		if (r == 0)
			return 0;
		if (r < 0)
			return 2;
		i += (size_t)r;
	}
	return 1;
}

/* ---- upgrade ------------------------------------------------------------------ */

static long upgrade_feed(const uint8_t *p, size_t n, size_t chunk, struct ws_upgrade *u)
{
	size_t have = 0;
	long r = 0;

	ws_upgrade_init(u);
	while (have < n) {
		have = have + chunk < n ? have + chunk : n;
		if (n <= 512) {
			/* exact-size copies: ASan sees a read past `have` */
			uint8_t *c = malloc(have);
			CHECK(c != NULL);
			memcpy(c, p, have);
			r = ws_upgrade_parse(u, c, have);
			free(c);
		} else {
			r = ws_upgrade_parse(u, p, have);
		}
		if (r != 0)
			return r;
	}
	return r;
}

static int span_in(struct ws_span s, long r)
{
	return (long)s.off + s.len <= r;
}

static long fuzz_upgrade(const uint8_t *p, size_t n, size_t chunk)
{
	struct ws_upgrade u, v;
	long r = upgrade_feed(p, n, n ? n : 1, &u);
	long r2 = upgrade_feed(p, n, chunk, &v);
	char out[512];

	CHECK(r == r2);
	if (r > 0) {
		CHECK((size_t)r <= n && r <= WS_REQ_MAX);
		CHECK(memcmp(p + r - 4, "\r\n\r\n", 4) == 0);
		CHECK(span_in(u.path, r) && span_in(u.host, r) && span_in(u.origin, r));
		CHECK(u.path.len > 0 && p[u.path.off] == '/');
		CHECK(u.host.len > 0);
		CHECK(u.has_origin || u.origin.len == 0);
		CHECK(strlen(u.key) == WS_KEY_LEN);
		CHECK(memcmp(&u.path, &v.path, sizeof(u.path)) == 0);
		CHECK(memcmp(&u.host, &v.host, sizeof(u.host)) == 0);
		CHECK(memcmp(&u.origin, &v.origin, sizeof(u.origin)) == 0);
		CHECK(u.xmpp == v.xmpp && u.has_origin == v.has_origin);
		CHECK(strcmp(u.key, v.key) == 0);
		CHECK(ws_upgrade_response(u.key, u.xmpp, out, sizeof(out)) > 0);
	} else if (r == 0) {
		CHECK(n <= WS_REQ_MAX);
	} else {
		CHECK(r == -400 || r == -405 || r == -426 || r == -431 || r == -505);
		CHECK(u.why != NULL && v.why != NULL && strcmp(u.why, v.why) == 0);
		CHECK(u.extra == v.extra);
		CHECK(ws_http_error((int)-r, u.extra, out, sizeof(out)) > 0);
	}
	return r;
}

/* ---- frames ------------------------------------------------------------------ */

struct msgref {
	uint8_t *acc;        /* the open text message's bytes so far */
	size_t len;
	int failed;          /* ws_msg returned an error: stop */
};

static void check_header(const uint8_t *p, long r, int role, const struct ws_frame *f)
{
	uint8_t hdr[WS_HDR_MAX];
	size_t k;

	CHECK(r >= 2 && r <= WS_HDR_MAX && r == f->hdr_len);
	CHECK(f->masked == (role == WS_SERVER));
	if (f->masked)
		k = ws_frame_header_masked(hdr, sizeof(hdr), f->fin, f->opcode, f->len, f->mask);
	else
		k = ws_frame_header(hdr, sizeof(hdr), f->fin, f->opcode, f->len);
	CHECK(k == (size_t)r && memcmp(hdr, p, k) == 0);
	for (size_t j = 0; j < (size_t)r; j++) {
		struct ws_frame g;
		uint8_t *c = malloc(j ? j : 1);
		CHECK(c != NULL);
		memcpy(c, p, j);
		CHECK(ws_frame_decode(c, j, role, MAX_PAYLOAD, &g) == 0);
		free(c);
	}
}

/* Unmask p[0..n) (payload bytes from offset 0) in two pieces split at cut and
 * check it against unmasking a copy at once and against re-masking. */
static void unmask(uint8_t *p, size_t n, const struct ws_frame *f, size_t cut)
{
	uint8_t *orig, *once;

	if (!f->masked || n == 0)
		return;
	orig = malloc(n);
	once = malloc(n);
	CHECK(orig != NULL && once != NULL);
	memcpy(orig, p, n);
	memcpy(once, p, n);
	ws_mask(once, n, f->mask, 0);
	if (cut > n)
		cut = n;
	ws_mask(p, cut, f->mask, 0);
	ws_mask(p + cut, n - cut, f->mask, cut);
	CHECK(memcmp(p, once, n) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(once[i] == (orig[i] ^ f->mask[i & 3]));
	ws_mask(once, n, f->mask, 0);
	CHECK(memcmp(once, orig, n) == 0);
	free(orig);
	free(once);
}

static void check_close(const uint8_t *p, size_t n)
{
	uint16_t code;
	size_t rl;
	long r = ws_close_parse(p, n, &code, &rl);

	if (n == 0) {
		CHECK(r == 0 && code == WS_CLOSE_NO_STATUS);
		return;
	}
	if (n == 1) {
		CHECK(r == -1002);
		return;
	}
	code = (uint16_t)((p[0] << 8) | p[1]);
	if (!ws_close_code_ok(code))
		CHECK(r == -1002);
	else
		CHECK(r == (ref_utf8(p + 2, n - 2) == 1 ? 0 : -1007));
	if (r == 0) {
		uint8_t out[WS_CONTROL_MAX];
		CHECK(rl == n - 2);
		CHECK(ws_close_payload(code, (const char *)p + 2, rl, out, sizeof(out)) == n);
		CHECK(memcmp(out, p, n) == 0);
	}
}

/* Feed a data frame's unmasked payload to the message state in two pieces. */
static void data_payload(struct ws_msg *m, struct msgref *ref, const struct ws_frame *f,
			 const uint8_t *p, size_t n, size_t cut, int whole)
{
	long e = 0;

	if (cut > n)
		cut = n;
	if (m->op == WS_OP_TEXT) {
		memcpy(ref->acc + ref->len, p, n);
		ref->len += n;
	}
	e = ws_msg_data(m, p, cut);
	if (e == 0)
		e = ws_msg_data(m, p + cut, n - cut);
	CHECK(e == 0 || e == -1007);
	if (m->op != WS_OP_TEXT)
		CHECK(e == 0);
	if (e) {
		CHECK(ref_utf8(ref->acc, ref->len) == 0);
		ref->failed = 1;
		return;
	}
	if (m->op == WS_OP_TEXT)
		CHECK(ref_utf8(ref->acc, ref->len) != 0);
	if (!whole)
		return;
	{
		int text = m->op == WS_OP_TEXT;
		e = ws_msg_frame_end(m, f);
		CHECK(e == (f->fin ? 1 : 0) || e == -1007);
		if (e == -1007) {
			CHECK(text && ref_utf8(ref->acc, ref->len) == 2);
			ref->failed = 1;
		} else if (e == 1) {
			if (text)
				CHECK(ref_utf8(ref->acc, ref->len) == 1);
			ref->len = 0;
			CHECK(m->op == 0);
		}
	}
}

static void fuzz_frames(const uint8_t *in, size_t n, int role, size_t cut)
{
	uint8_t *buf = malloc(n ? n : 1);
	struct msgref ref = { malloc(n ? n : 1), 0, 0 };
	struct ws_msg m;
	size_t pos = 0;

	CHECK(buf != NULL && ref.acc != NULL);
	memcpy(buf, in, n);
	ws_msg_init(&m);
	while (pos < n && !ref.failed) {
		struct ws_frame f;
		size_t avail = n - pos, plen;
		long r = ws_frame_decode(buf + pos, avail, role, MAX_PAYLOAD, &f);
		long e;
		int whole;

		CHECK(r == 0 || r == -1002 || r == -1009 || (r > 0 && (size_t)r <= avail));
		if (r <= 0) {
			if (r == 0)
				CHECK(avail < WS_HDR_MAX);
			break;
		}
		check_header(buf + pos, r, role, &f);
		if (ws_is_control(f.opcode))
			CHECK(f.fin && f.len <= WS_CONTROL_MAX);
		else
			CHECK(f.len <= MAX_PAYLOAD);
		e = ws_msg_frame(&m, &f, MAX_MSG);
		CHECK(e == 0 || e == -1002 || e == -1009);
		if (e)
			break;
		plen = f.len < avail - (size_t)r ? (size_t)f.len : avail - (size_t)r;
		whole = plen == f.len;
		unmask(buf + pos + r, plen, &f, cut);
		if (ws_is_control(f.opcode)) {
			if (!whole)
				break;
			if (f.opcode == WS_OP_CLOSE)
				check_close(buf + pos + r, plen);
			CHECK(ws_msg_frame_end(&m, &f) == 0);
		} else {
			data_payload(&m, &ref, &f, buf + pos + r, plen, cut, whole);
		}
		if (!whole)
			break;
		pos += (size_t)r + plen;
	}
	free(ref.acc);
	free(buf);
}

/* ---- round trip -------------------------------------------------------------- */

static void round_trip(const uint8_t *p, size_t n, uint8_t sel)
{
	static const uint8_t ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY,
				       WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
	uint8_t op = ops[sel % sizeof(ops)];
	uint8_t key[4] = { sel, (uint8_t)(sel * 7), (uint8_t)(n * 13), 0x5A };
	int fin = ws_is_control(op) ? 1 : (sel >> 7) & 1;
	uint8_t *frame;
	struct ws_frame f;
	size_t h;

	if (ws_is_control(op) && n > WS_CONTROL_MAX)
		n = WS_CONTROL_MAX;
	frame = malloc(WS_HDR_MAX + n);
	CHECK(frame != NULL);

	/* client encoder -> server decoder */
	h = ws_frame_header_masked(frame, WS_HDR_MAX + n, fin, op, n, key);
	CHECK(h >= 6 && h <= WS_HDR_MAX);
	memcpy(frame + h, p, n);
	ws_mask(frame + h, n, key, 0);
	CHECK(ws_frame_decode(frame, h + n, WS_SERVER, UINT64_MAX, &f) == (long)h);
	CHECK(f.opcode == op && f.fin == fin && f.len == n && f.masked);
	CHECK(memcmp(f.mask, key, 4) == 0);
	ws_mask(frame + h, n, f.mask, 0);
	CHECK(n == 0 || memcmp(frame + h, p, n) == 0);

	/* server encoder -> client decoder */
	h = ws_frame_header(frame, WS_HDR_MAX + n, fin, op, n);
	CHECK(h >= 2 && h <= 10);
	memcpy(frame + h, p, n);
	CHECK(ws_frame_decode(frame, h + n, WS_CLIENT, UINT64_MAX, &f) == (long)h);
	CHECK(f.opcode == op && f.fin == fin && f.len == n && !f.masked);
	CHECK(n == 0 || memcmp(frame + h, p, n) == 0);
	free(frame);
}

/* The framing helpers on the input read as one WebSocket text message. */
static void framing(const uint8_t *p, size_t n, uint8_t sel)
{
	static const char *const names[] = { "open", "close" };
	char out[512];

	for (int k = 0; k < 2; k++) {
		const uint8_t *a = ws_starts_el(p, n, names[k]);
		if (!a)
			continue;
		CHECK(a > p && a <= p + n && !memcmp(a - strlen(names[k]), names[k], strlen(names[k])));
		size_t cap = 128 + (size_t)(sel & 0x7f) * 3;    /* 128 .. 509 */
		int fr = -1;
		size_t len = ws_open_header(a, (size_t)(p + n - a), out, cap, &fr);
		CHECK(len <= cap && (fr == 0 || fr == 1));
		if (len) {
			CHECK(len > 15 && !memcmp(out, "<stream:stream ", 15) && out[len - 1] == '>');
		}
	}
	if (n && p[0] == '<') {
		size_t te = ws_start_tag_end(p, n);
		CHECK(te <= n && (te == n || p[te] == '>'));
		size_t ne = ws_tag_name_end(p, te);
		CHECK(ne >= 1 && ne <= te);
		int has = ws_has_attr(p, te, "xmlns");
		CHECK(has == 0 || has == 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;
	long r;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	r = fuzz_upgrade(data, size, 1 + ((sel >> 1) & 15));
	if (r > 0)
		fuzz_frames(data + r, size - (size_t)r, sel & 1 ? WS_CLIENT : WS_SERVER,
			    (size_t)(sel >> 5) * 3);
	else
		fuzz_frames(data, size, sel & 1 ? WS_CLIENT : WS_SERVER, (size_t)(sel >> 5) * 3);
	round_trip(data, size < 300 ? size : 300, sel);
	framing(data, size, sel);
	return 0;
}
