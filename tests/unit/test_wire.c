/*
 * test_wire — parser/wire.c: every frame type round-trips; every strict
 * prefix of a frame is "need more"; corrupted lengths, types, fields and
 * trailing bytes are errors; the size limits hold at and past their edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/wire.h"

#define S(lit) wire_s(lit, sizeof(lit) - 1)

static void fill_scram(struct wire_scram *sc, uint8_t key_len, uint8_t seed)
{
	memset(sc, 0, sizeof(*sc));
	sc->iter = 4096u + seed;
	sc->salt_len = 16;
	sc->key_len = key_len;
	for (int i = 0; i < 16; i++)
		sc->salt[i] = (uint8_t)(seed + i);
	for (int i = 0; i < key_len; i++) {
		sc->stored_key[i] = (uint8_t)(0x40 + seed + i);
		sc->server_key[i] = (uint8_t)(0x80 + seed + i);
	}
}

/* One representative message of type t. */
static struct wire_msg sample(uint8_t t)
{
	struct wire_msg m;

	memset(&m, 0, sizeof(m));
	m.type = t;
	m.sid = 0x0102030405060708ull + t;
	switch (t) {
	case WIRE_HELLO:
		m.sid = 0;
		m.u.hello.version = WIRE_VERSION;
		m.u.hello.worker = 7;
		m.u.hello.secret = S("s3cret");
		break;
	case WIRE_HELLO_OK:
		m.u.hello_ok.version = WIRE_VERSION;
		break;
	case WIRE_SESSION_OPEN:
		m.u.open.flags = WIRE_OPEN_TLS | WIRE_OPEN_DIRECT_TLS;
		m.u.open.addr = S("[2001:db8::1]:5222");
		break;
	case WIRE_CRED_REQ:
		m.u.cred_req.user = S("juliet");
		m.u.cred_req.domain = S("example.com");
		break;
	case WIRE_CRED_RESP:
		m.u.cred_resp.status = WIRE_OK;
		fill_scram(&m.u.cred_resp.sha1, 20, 1);
		fill_scram(&m.u.cred_resp.sha256, 32, 2);
		break;
	case WIRE_AUTHED:
		m.u.authed.user = S("juliet");
		m.u.authed.domain = S("example.com");
		break;
	case WIRE_BIND_REQ:
		m.u.bind_req.user = S("juliet");
		m.u.bind_req.domain = S("example.com");
		m.u.bind_req.resource = S("");
		break;
	case WIRE_BIND_RESP:
		m.u.bind_resp.status = WIRE_CONFLICT;
		m.u.bind_resp.jid = S("juliet@example.com/balcony");
		break;
	case WIRE_STANZA:
		m.u.stanza.kind = WIRE_KIND_IQ;
		m.u.stanza.type = S("get");
		m.u.stanza.to = S("example.com");
		m.u.stanza.from = S("juliet@example.com/balcony");
		m.u.stanza.id = S("r1");
		m.u.stanza.ns = S("jabber:iq:roster");
		m.u.stanza.raw = S("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
		break;
	case WIRE_SESSION_CLOSE:
		m.u.close.reason = WIRE_CLOSE_SHUTDOWN;
		break;
	case WIRE_PING:
	case WIRE_PONG:
		m.sid = 0;
		m.u.ping.token = 0xfedcba9876543210ull;
		break;
	case WIRE_FLOW:
		m.u.flow.stop = 1;
		break;
	case WIRE_CREDIT:
		m.u.credit.bytes = 0x80000001u;
		break;
	case WIRE_DELIVERED:
		m.u.delivered.bytes = 0x0000000180000001ull;
		break;
	case WIRE_HANDLED:
		m.sid = 0;
		m.u.handled.count = 0x0000000200000005ull;
		break;
	case WIRE_REGISTER:
		m.u.reg.op = WIRE_REG_CREATE;
		m.u.reg.user = S("bill");
		m.u.reg.domain = S("example.com");
		fill_scram(&m.u.reg.sha1, 20, 3);
		fill_scram(&m.u.reg.sha256, 32, 4);
		break;
	case WIRE_REGISTER_RESP:
		m.u.reg_resp.status = WIRE_CONFLICT;
		break;
	case WIRE_ROUTE:
		m.sid = 0;
		m.u.stanza.kind = WIRE_KIND_MESSAGE;
		m.u.stanza.type = S("chat");
		m.u.stanza.to = S("romeo@montague.example");
		m.u.stanza.from = S("juliet@example.com/balcony");
		m.u.stanza.raw = S("<message type='chat' to='romeo@montague.example'><body>hi</body></message>");
		break;
	case WIRE_DOMAIN:
		m.sid = 0;
		m.u.domain.op = WIRE_DOMAIN_UP;
		m.u.domain.domain = S("irc.example.com");
		break;
	case WIRE_SESSION_MOVE:
		m.u.move.old_sid = 0x0000000700000003ULL;
		m.u.move.jid = S("juliet@example.com/balcony");
		break;
	case WIRE_SMACKS:
		m.u.smacks.max = 300;
		m.u.smacks.h = 0xfffffffeu;
		m.u.smacks.previd = S("e0.1.0000000100000002.00112233445566778899aabbccddeeff");
		break;
	case WIRE_ADOPT:
		m.u.adopt.previd = S("e0.1.0000000100000002.00112233445566778899aabbccddeeff");
		m.u.adopt.jid = S("juliet@example.com");
		break;
	case WIRE_ADOPT_RESP:
		m.u.adopt_resp.status = WIRE_OK;
		m.u.adopt_resp.h = 7;
		m.u.adopt_resp.jid = S("juliet@example.com/balcony");
		break;
	}
	return m;
}

static void assert_str_eq(struct wire_str a, struct wire_str b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.p, b.p, a.len);
}

static void assert_scram_eq(const struct wire_scram *a, const struct wire_scram *b)
{
	assert_int_equal(a->iter, b->iter);
	assert_int_equal(a->salt_len, b->salt_len);
	assert_int_equal(a->key_len, b->key_len);
	assert_memory_equal(a->salt, b->salt, a->salt_len);
	assert_memory_equal(a->stored_key, b->stored_key, a->key_len);
	assert_memory_equal(a->server_key, b->server_key, a->key_len);
}

static void assert_msg_eq(const struct wire_msg *a, const struct wire_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->sid, b->sid);
	switch (a->type) {
	case WIRE_HELLO:
		assert_int_equal(a->u.hello.version, b->u.hello.version);
		assert_int_equal(a->u.hello.worker, b->u.hello.worker);
		assert_str_eq(a->u.hello.secret, b->u.hello.secret);
		break;
	case WIRE_HELLO_OK:
		assert_int_equal(a->u.hello_ok.version, b->u.hello_ok.version);
		break;
	case WIRE_SESSION_OPEN:
		assert_int_equal(a->u.open.flags, b->u.open.flags);
		assert_str_eq(a->u.open.addr, b->u.open.addr);
		break;
	case WIRE_CRED_REQ:
		assert_str_eq(a->u.cred_req.user, b->u.cred_req.user);
		assert_str_eq(a->u.cred_req.domain, b->u.cred_req.domain);
		break;
	case WIRE_CRED_RESP:
		assert_int_equal(a->u.cred_resp.status, b->u.cred_resp.status);
		assert_scram_eq(&a->u.cred_resp.sha1, &b->u.cred_resp.sha1);
		assert_scram_eq(&a->u.cred_resp.sha256, &b->u.cred_resp.sha256);
		break;
	case WIRE_AUTHED:
		assert_str_eq(a->u.authed.user, b->u.authed.user);
		assert_str_eq(a->u.authed.domain, b->u.authed.domain);
		break;
	case WIRE_BIND_REQ:
		assert_str_eq(a->u.bind_req.user, b->u.bind_req.user);
		assert_str_eq(a->u.bind_req.domain, b->u.bind_req.domain);
		assert_str_eq(a->u.bind_req.resource, b->u.bind_req.resource);
		break;
	case WIRE_BIND_RESP:
		assert_int_equal(a->u.bind_resp.status, b->u.bind_resp.status);
		assert_str_eq(a->u.bind_resp.jid, b->u.bind_resp.jid);
		break;
	case WIRE_STANZA:
	case WIRE_ROUTE:
		assert_int_equal(a->u.stanza.kind, b->u.stanza.kind);
		assert_int_equal(a->u.stanza.flags, b->u.stanza.flags);
		assert_str_eq(a->u.stanza.type, b->u.stanza.type);
		assert_str_eq(a->u.stanza.to, b->u.stanza.to);
		assert_str_eq(a->u.stanza.from, b->u.stanza.from);
		assert_str_eq(a->u.stanza.id, b->u.stanza.id);
		assert_str_eq(a->u.stanza.ns, b->u.stanza.ns);
		assert_str_eq(a->u.stanza.raw, b->u.stanza.raw);
		break;
	case WIRE_SESSION_CLOSE:
		assert_int_equal(a->u.close.reason, b->u.close.reason);
		break;
	case WIRE_PING:
	case WIRE_PONG:
		assert_int_equal(a->u.ping.token, b->u.ping.token);
		break;
	case WIRE_FLOW:
		assert_int_equal(a->u.flow.stop, b->u.flow.stop);
		break;
	case WIRE_CREDIT:
		assert_int_equal(a->u.credit.bytes, b->u.credit.bytes);
		break;
	case WIRE_DELIVERED:
		assert_int_equal(a->u.delivered.bytes, b->u.delivered.bytes);
		break;
	case WIRE_HANDLED:
		assert_true(a->u.handled.count == b->u.handled.count);
		break;
	case WIRE_REGISTER:
		assert_int_equal(a->u.reg.op, b->u.reg.op);
		assert_str_eq(a->u.reg.user, b->u.reg.user);
		assert_str_eq(a->u.reg.domain, b->u.reg.domain);
		assert_scram_eq(&a->u.reg.sha1, &b->u.reg.sha1);
		assert_scram_eq(&a->u.reg.sha256, &b->u.reg.sha256);
		break;
	case WIRE_REGISTER_RESP:
		assert_int_equal(a->u.reg_resp.status, b->u.reg_resp.status);
		break;
	case WIRE_DOMAIN:
		assert_int_equal(a->u.domain.op, b->u.domain.op);
		assert_str_eq(a->u.domain.domain, b->u.domain.domain);
		break;
	case WIRE_SESSION_MOVE:
		assert_true(a->u.move.old_sid == b->u.move.old_sid);
		assert_str_eq(a->u.move.jid, b->u.move.jid);
		break;
	case WIRE_SMACKS:
		assert_int_equal(a->u.smacks.max, b->u.smacks.max);
		assert_int_equal(a->u.smacks.h, b->u.smacks.h);
		assert_str_eq(a->u.smacks.previd, b->u.smacks.previd);
		break;
	case WIRE_ADOPT:
		assert_str_eq(a->u.adopt.previd, b->u.adopt.previd);
		assert_str_eq(a->u.adopt.jid, b->u.adopt.jid);
		break;
	case WIRE_ADOPT_RESP:
		assert_int_equal(a->u.adopt_resp.status, b->u.adopt_resp.status);
		assert_int_equal(a->u.adopt_resp.h, b->u.adopt_resp.h);
		assert_str_eq(a->u.adopt_resp.jid, b->u.adopt_resp.jid);
		break;
	default:
		fail();
	}
}

/* Encode m; returns a malloc'd frame and its size. */
static uint8_t *enc(const struct wire_msg *m, size_t *n)
{
	size_t sz = wire_size(m);
	uint8_t *b;

	assert_true(sz >= WIRE_LEN_BYTES + WIRE_MIN_BODY);
	b = malloc(sz);
	assert_non_null(b);
	assert_int_equal(wire_encode(m, b, sz), sz);
	*n = sz;
	return b;
}

static void test_round_trip_all(void **state)
{
	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		struct wire_msg m = sample(t), d;
		size_t n;
		uint8_t *b = enc(&m, &n);

		assert_int_equal(wire_decode(b, n, &d), (long)n);
		assert_msg_eq(&m, &d);
		/* the length word counts the body */
		assert_int_equal(((size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3]),
				 n - 4);
		assert_int_equal(b[4], t);
		/* a cap one short refuses without writing past it */
		assert_int_equal(wire_encode(&m, b, n - 1), 0);
		free(b);
	}
}

/* Fixed-layout check of one frame, so the byte order is pinned down. */
static void test_exact_bytes(void **state)
{
	struct wire_msg m = sample(WIRE_CRED_REQ);
	static const uint8_t want[] = {
		0, 0, 0, 9 + 2 + 6 + 2 + 11,
		WIRE_CRED_REQ,
		1, 2, 3, 4, 5, 6, 7, 8 + WIRE_CRED_REQ,
		0, 6, 'j', 'u', 'l', 'i', 'e', 't',
		0, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
	};
	uint8_t b[64];

	assert_int_equal(wire_encode(&m, b, sizeof(b)), sizeof(want));
	assert_memory_equal(b, want, sizeof(want));

	m = sample(WIRE_DELIVERED);
	{
		static const uint8_t dl[] = { 0, 0, 0, 17, WIRE_DELIVERED, 1, 2, 3, 4, 5, 6, 7,
					      8 + WIRE_DELIVERED, 0, 0, 0, 1, 0x80, 0, 0, 1 };
		assert_int_equal(wire_encode(&m, b, sizeof(b)), sizeof(dl));
		assert_memory_equal(b, dl, sizeof(dl));
	}

	m = sample(WIRE_HANDLED);
	{
		static const uint8_t hd[] = { 0, 0, 0, 17, WIRE_HANDLED, 0, 0, 0, 0, 0, 0, 0, 0,
					      0, 0, 0, 2, 0, 0, 0, 5 };
		assert_int_equal(wire_encode(&m, b, sizeof(b)), sizeof(hd));
		assert_memory_equal(b, hd, sizeof(hd));
	}

	m = sample(WIRE_PING);
	{
		static const uint8_t ping[] = { 0, 0, 0, 17, WIRE_PING, 0, 0, 0, 0, 0, 0, 0, 0,
						0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
		assert_int_equal(wire_encode(&m, b, sizeof(b)), sizeof(ping));
		assert_memory_equal(b, ping, sizeof(ping));
	}
}

static void test_truncation(void **state)
{
	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		struct wire_msg m = sample(t), d;
		size_t n;
		uint8_t *b = enc(&m, &n);

		for (size_t k = 0; k < n; k++) {
			/* a fresh allocation of exactly k bytes: ASan sees any over-read */
			uint8_t *p = malloc(k ? k : 1);
			memcpy(p, b, k);
			assert_int_equal(wire_decode(p, k, &d), 0);
			free(p);
		}
		free(b);
	}
}

static void test_two_frames(void **state)
{
	struct wire_msg a = sample(WIRE_STANZA), c = sample(WIRE_PONG), d;
	size_t na, nc;
	uint8_t *ba = enc(&a, &na), *bc = enc(&c, &nc);
	uint8_t *both = malloc(na + nc);

	memcpy(both, ba, na);
	memcpy(both + na, bc, nc);
	assert_int_equal(wire_decode(both, na + nc, &d), (long)na);
	assert_msg_eq(&a, &d);
	assert_int_equal(wire_decode(both + na, nc, &d), (long)nc);
	assert_msg_eq(&c, &d);
	free(both);
	free(ba);
	free(bc);
}

static void set_len(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static void test_corrupt(void **state)
{
	struct wire_msg d;
	uint8_t b[256];

	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		struct wire_msg m = sample(t);
		size_t n = wire_encode(&m, b, sizeof(b) - 1);
		assert_true(n > 0);

		/* trailing byte inside the frame: body_len + 1 */
		b[n] = 0;
		set_len(b, (uint32_t)(n - 4 + 1));
		assert_int_equal(wire_decode(b, n + 1, &d), -1);
		/* a field running past the end: body_len - 1 */
		set_len(b, (uint32_t)(n - 4 - 1));
		assert_int_equal(wire_decode(b, n, &d), -1);
		set_len(b, (uint32_t)(n - 4));
		assert_int_equal(wire_decode(b, n, &d), (long)n);
	}

	/* unknown types, judged as soon as the type byte arrives */
	{
		struct wire_msg m = sample(WIRE_PING);
		size_t n = wire_encode(&m, b, sizeof(b));
		b[4] = 0;
		assert_int_equal(wire_decode(b, 5, &d), -1);
		assert_int_equal(wire_decode(b, n, &d), -1);
		b[4] = WIRE_TYPE_MAX + 1;
		assert_int_equal(wire_decode(b, n, &d), -1);
		b[4] = 0xff;
		assert_int_equal(wire_decode(b, n, &d), -1);
		assert_string_equal(wire_type_str(0), "unknown");
		assert_string_equal(wire_type_str(0xff), "unknown");
	}

	/* body length out of range, judged from the length word alone */
	set_len(b, WIRE_MIN_BODY - 1);
	assert_int_equal(wire_decode(b, 4, &d), -1);
	set_len(b, 0);
	assert_int_equal(wire_decode(b, 4, &d), -1);
	set_len(b, WIRE_MAX_BODY + 1);
	assert_int_equal(wire_decode(b, 4, &d), -1);
	set_len(b, 0xffffffffu);
	assert_int_equal(wire_decode(b, 4, &d), -1);
	set_len(b, WIRE_MAX_BODY);
	b[4] = WIRE_STANZA;
	assert_int_equal(wire_decode(b, 5, &d), 0);   /* plausible: wait for it */

	/* a str16 length pointing past the frame */
	{
		struct wire_msg m = sample(WIRE_CRED_REQ);
		size_t n = wire_encode(&m, b, sizeof(b));
		b[13] = 0xff;   /* user length high byte */
		assert_int_equal(wire_decode(b, n, &d), -1);
	}
	/* a str32 length pointing past the frame */
	{
		struct wire_msg m = sample(WIRE_STANZA);
		size_t n = wire_encode(&m, b, sizeof(b));
		size_t off = n - m.u.stanza.raw.len - 4;
		b[off] = 0x80;
		assert_int_equal(wire_decode(b, n, &d), -1);
		b[off] = 0;
		b[off + 3]++;
		assert_int_equal(wire_decode(b, n, &d), -1);
		b[off + 3] -= 2;   /* one short: a trailing byte */
		assert_int_equal(wire_decode(b, n, &d), -1);
	}
}

static void test_enum_values(void **state)
{
	struct wire_msg m, d;
	uint8_t b[256];
	size_t n;

	/* stanza kind 0 / 4; flags: TRACK, SHARD, RETURNED (XEP-0198 §4), any of them or nothing */
	m = sample(WIRE_STANZA);
	n = wire_encode(&m, b, sizeof(b));
	b[13] = 0;
	assert_int_equal(wire_decode(b, n, &d), -1);
	b[13] = 4;
	assert_int_equal(wire_decode(b, n, &d), -1);
	b[13] = WIRE_KIND_MESSAGE;
	b[14] = WIRE_STANZA_TRACK;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.stanza.flags, WIRE_STANZA_TRACK);
	b[14] = WIRE_STANZA_SHARD | WIRE_STANZA_TRACK;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.stanza.flags, WIRE_STANZA_SHARD | WIRE_STANZA_TRACK);
	b[14] = WIRE_STANZA_RETURNED;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.stanza.flags, WIRE_STANZA_RETURNED);
	b[14] = WIRE_STANZA_TRACK | WIRE_STANZA_SHARD | WIRE_STANZA_RETURNED;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	for (unsigned f = 8; f < 256; f++) {
		b[14] = (uint8_t)f;
		assert_int_equal(wire_decode(b, n, &d), -1);
	}
	m.u.stanza.kind = 4;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m.u.stanza.kind = WIRE_KIND_IQ;
	m.u.stanza.flags = WIRE_STANZA_TRACK;
	n = wire_encode(&m, b, sizeof(b));
	assert_true(n > 0);
	assert_int_equal(b[14], WIRE_STANZA_TRACK);
	m.u.stanza.flags = WIRE_STANZA_RETURNED;
	n = wire_encode(&m, b, sizeof(b));
	assert_true(n > 0);
	assert_int_equal(b[14], WIRE_STANZA_RETURNED);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.stanza.flags, WIRE_STANZA_RETURNED);
	m.u.stanza.flags = 8;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m.u.stanza.flags = WIRE_STANZA_TRACK | 0x80;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);

	/* REGISTER ops 1..3; REGISTER_RESP statuses */
	m = sample(WIRE_REGISTER);
	n = wire_encode(&m, b, sizeof(b));
	for (unsigned op = 0; op < 256; op++) {
		b[13] = (uint8_t)op;
		assert_int_equal(wire_decode(b, n, &d), op >= WIRE_REG_CREATE && op <= WIRE_REG_REMOVE ? (long)n : -1);
	}
	m.u.reg.op = 0;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m.u.reg.op = WIRE_REG_REMOVE + 1;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	/* REMOVE carries no keys; a SHA-1 key of the SHA-256 size is refused */
	memset(&m.u.reg.sha1, 0, sizeof(m.u.reg.sha1));
	memset(&m.u.reg.sha256, 0, sizeof(m.u.reg.sha256));
	m.u.reg.op = WIRE_REG_REMOVE;
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, 4 + 9 + 1 + 2 + 4 + 2 + 11 + 6 + 6);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_msg_eq(&m, &d);
	m.u.reg.sha1.key_len = 32;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m = sample(WIRE_REGISTER_RESP);
	n = wire_encode(&m, b, sizeof(b));
	b[13] = WIRE_CONFLICT + 1;
	assert_int_equal(wire_decode(b, n, &d), -1);
	m.u.reg_resp.status = WIRE_CONFLICT + 1;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);

	/* statuses, close reasons, open flags */
	m = sample(WIRE_BIND_RESP);
	n = wire_encode(&m, b, sizeof(b));
	b[13] = WIRE_CONFLICT + 1;
	assert_int_equal(wire_decode(b, n, &d), -1);
	m.u.bind_resp.status = 6;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);

	m = sample(WIRE_SESSION_CLOSE);
	n = wire_encode(&m, b, sizeof(b));
	b[13] = WIRE_CLOSE_MOVED;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.close.reason, WIRE_CLOSE_MOVED);
	b[13] = WIRE_CLOSE_MOVED + 1;
	assert_int_equal(wire_decode(b, n, &d), -1);

	/* SESSION_MOVE: u64 old sid, str16 full JID; a JID running past the frame is refused */
	m = sample(WIRE_SESSION_MOVE);
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, WIRE_LEN_BYTES + WIRE_MIN_BODY + 8 + 2 + strlen("juliet@example.com/balcony"));
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_true(d.u.move.old_sid == 0x0000000700000003ULL);
	b[13 + 8 + 1] += 1;
	assert_int_equal(wire_decode(b, n, &d), -1);
	m = sample(WIRE_SESSION_CLOSE);
	n = wire_encode(&m, b, sizeof(b));

	/* SMACKS: u32 max, u32 h, str16 previd */
	m = sample(WIRE_SMACKS);
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, WIRE_LEN_BYTES + WIRE_MIN_BODY + 4 + 4 + 2 + m.u.smacks.previd.len);
	assert_int_equal(b[13 + 3], 300 & 0xff);
	assert_int_equal(b[13 + 4], 0xff);
	assert_int_equal(b[13 + 7], 0xfe);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_msg_eq(&m, &d);
	b[13 + 8] += 1;    /* the previd runs past the frame */
	assert_int_equal(wire_decode(b, n, &d), -1);
	/* ADOPT: two str16; one byte short or one too many is refused */
	m = sample(WIRE_ADOPT);
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, WIRE_LEN_BYTES + WIRE_MIN_BODY + 2 + m.u.adopt.previd.len + 2 + m.u.adopt.jid.len);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	b[3] -= 1;
	assert_int_equal(wire_decode(b, n - 1, &d), -1);
	b[3] += 2;
	b[n] = 0;
	assert_int_equal(wire_decode(b, n + 1, &d), -1);
	/* ADOPT_RESP: u8 status (a wire_status), u32 h, str16 jid */
	m = sample(WIRE_ADOPT_RESP);
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, WIRE_LEN_BYTES + WIRE_MIN_BODY + 1 + 4 + 2 + m.u.adopt_resp.jid.len);
	b[13] = WIRE_NO_USER;
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.adopt_resp.status, WIRE_NO_USER);
	assert_int_equal(d.u.adopt_resp.h, 7);
	b[13] = WIRE_CONFLICT + 1;
	assert_int_equal(wire_decode(b, n, &d), -1);
	m.u.adopt_resp.status = WIRE_CONFLICT + 1;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);

	m = sample(WIRE_SESSION_OPEN);
	n = wire_encode(&m, b, sizeof(b));
	b[13] = 0x04;
	assert_int_equal(wire_decode(b, n, &d), -1);
	m.u.open.flags = 0x80;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
}

static void test_cred_resp_limits(void **state)
{
	struct wire_msg m = sample(WIRE_CRED_RESP), d;
	uint8_t b[512];
	size_t n;

	/* maximal salts; absent keys */
	m.u.cred_resp.sha1.salt_len = WIRE_SALT_MAX;
	m.u.cred_resp.sha256.salt_len = WIRE_SALT_MAX;
	m.u.cred_resp.sha1.key_len = 0;
	n = wire_encode(&m, b, sizeof(b));
	assert_true(n > 0);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_msg_eq(&m, &d);

	/* salt_len 65 refused both ways */
	m.u.cred_resp.sha1.salt_len = WIRE_SALT_MAX + 1;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m.u.cred_resp.sha1.salt_len = WIRE_SALT_MAX;
	n = wire_encode(&m, b, sizeof(b));
	b[4 + 9 + 1 + 4] = WIRE_SALT_MAX + 1;   /* sha1.salt_len */
	assert_int_equal(wire_decode(b, n, &d), -1);

	/* key_len not 0/20 for SHA-1, not 0/32 for SHA-256 */
	m = sample(WIRE_CRED_RESP);
	for (unsigned k = 0; k < 256; k++) {
		m.u.cred_resp.sha1.key_len = (uint8_t)k;
		if (k > WIRE_KEY_MAX) {
			/* not even representable in the struct: encode refuses */
			assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
			continue;
		}
		n = wire_encode(&m, b, sizeof(b));
		assert_int_equal(n > 0, k == 0 || k == 20);
	}
	m = sample(WIRE_CRED_RESP);
	m.u.cred_resp.sha256.key_len = 20;
	assert_int_equal(wire_encode(&m, b, sizeof(b)), 0);
	m = sample(WIRE_CRED_RESP);
	n = wire_encode(&m, b, sizeof(b));
	b[4 + 9 + 1 + 5] = 16;   /* sha1.key_len */
	assert_int_equal(wire_decode(b, n, &d), -1);
	b[4 + 9 + 1 + 5] = 32;
	assert_int_equal(wire_decode(b, n, &d), -1);
	b[4 + 9 + 1 + 5] = 255;
	assert_int_equal(wire_decode(b, n, &d), -1);

	/* statuses: NO_USER with no keys at all */
	memset(&m, 0, sizeof(m));
	m.type = WIRE_CRED_RESP;
	m.u.cred_resp.status = WIRE_NO_USER;
	n = wire_encode(&m, b, sizeof(b));
	assert_int_equal(n, 4 + 9 + 1 + 6 + 6);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_msg_eq(&m, &d);
}

static void test_max_sizes(void **state)
{
	struct wire_msg m = sample(WIRE_STANZA), d;
	size_t fixed = wire_size(&m) - m.u.stanza.raw.len;   /* everything but raw */
	size_t raw_max = WIRE_MAX_BODY - (fixed - WIRE_LEN_BYTES);
	uint8_t *raw = calloc(1, raw_max + 1);
	uint8_t *b = malloc(WIRE_MAX_BODY + WIRE_LEN_BYTES + 1);
	size_t n;

	assert_non_null(raw);
	assert_non_null(b);
	/* a body of exactly WIRE_MAX_BODY */
	m.u.stanza.raw = wire_s(raw, raw_max);
	n = wire_encode(&m, b, WIRE_MAX_BODY + WIRE_LEN_BYTES);
	assert_int_equal(n, WIRE_MAX_BODY + WIRE_LEN_BYTES);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.stanza.raw.len, raw_max);
	assert_int_equal(wire_decode(b, n - 1, &d), 0);
	/* one byte more */
	m.u.stanza.raw = wire_s(raw, raw_max + 1);
	assert_int_equal(wire_size(&m), WIRE_MAX_BODY + WIRE_LEN_BYTES + 1);
	assert_int_equal(wire_encode(&m, b, WIRE_MAX_BODY + WIRE_LEN_BYTES + 1), 0);

	/* str16: 65535 fits, 65536 does not */
	m = sample(WIRE_HELLO);
	m.u.hello.secret = wire_s(raw, 0xffff);
	n = wire_encode(&m, b, WIRE_MAX_BODY);
	assert_int_equal(n, 4 + 9 + 4 + 2 + 0xffff);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.hello.secret.len, 0xffff);
	m.u.hello.secret = wire_s(raw, 0x10000);
	assert_int_equal(wire_encode(&m, b, WIRE_MAX_BODY), 0);

	/* NULL pointer with a length is refused; NULL with 0 is an empty string */
	m = sample(WIRE_AUTHED);
	m.u.authed.user.p = NULL;
	assert_int_equal(wire_encode(&m, b, 256), 0);
	m.u.authed.user.len = 0;
	n = wire_encode(&m, b, 256);
	assert_true(n > 0);
	assert_int_equal(wire_decode(b, n, &d), (long)n);
	assert_int_equal(d.u.authed.user.len, 0);

	/* unknown type: no size, no encoding */
	m.type = 0;
	assert_int_equal(wire_size(&m), 0);
	assert_int_equal(wire_encode(&m, b, 256), 0);
	m.type = WIRE_TYPE_MAX + 1;
	assert_int_equal(wire_encode(&m, b, 256), 0);
	free(raw);
	free(b);
}

static void test_names(void **state)
{
	assert_string_equal(wire_type_str(WIRE_HELLO), "hello");
	assert_string_equal(wire_type_str(WIRE_CRED_RESP), "cred_resp");
	assert_string_equal(wire_type_str(WIRE_SESSION_CLOSE), "session_close");
	assert_string_equal(wire_type_str(WIRE_PONG), "pong");
	assert_string_equal(wire_type_str(WIRE_DELIVERED), "delivered");
	assert_string_equal(wire_type_str(WIRE_HANDLED), "handled");
	assert_string_equal(wire_type_str(WIRE_REGISTER), "register");
	assert_string_equal(wire_type_str(WIRE_REGISTER_RESP), "register_resp");
	assert_string_equal(wire_type_str(WIRE_ROUTE), "route");
	assert_string_equal(wire_type_str(WIRE_DOMAIN), "domain");
	assert_string_equal(wire_type_str(WIRE_SMACKS), "smacks");
	assert_string_equal(wire_type_str(WIRE_ADOPT), "adopt");
	assert_string_equal(wire_type_str(WIRE_ADOPT_RESP), "adopt_resp");
	for (unsigned t = 1; t <= WIRE_TYPE_MAX; t++)
		assert_string_not_equal(wire_type_str((uint8_t)t), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_two_frames),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_cred_resp_limits),
		cmocka_unit_test(test_max_sizes),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
