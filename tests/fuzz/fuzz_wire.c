/*
 * fuzz_wire — libFuzzer target for parser/wire.c.
 *
 * For every frame the input holds (decoded back to back, as a link reader
 * would): encode(decode(x)) must give x's bytes exactly, and decoding that
 * again must give identical fields; every strict prefix of a frame must be
 * "need more" (a few prefixes per frame, to keep executions fast).  Any
 * difference is a bug: __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/wire.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int str_eq(struct wire_str a, struct wire_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int scram_eq(const struct wire_scram *a, const struct wire_scram *b)
{
	return a->iter == b->iter && a->salt_len == b->salt_len && a->key_len == b->key_len &&
	       memcmp(a->salt, b->salt, a->salt_len) == 0 &&
	       memcmp(a->stored_key, b->stored_key, a->key_len) == 0 &&
	       memcmp(a->server_key, b->server_key, a->key_len) == 0;
}

static int msg_eq(const struct wire_msg *a, const struct wire_msg *b)
{
	if (a->type != b->type || a->sid != b->sid)
		return 0;
	switch (a->type) {
	case WIRE_HELLO:
		return a->u.hello.version == b->u.hello.version &&
		       a->u.hello.worker == b->u.hello.worker &&
		       str_eq(a->u.hello.secret, b->u.hello.secret);
	case WIRE_HELLO_OK:
		return a->u.hello_ok.version == b->u.hello_ok.version;
	case WIRE_SESSION_OPEN:
		return a->u.open.flags == b->u.open.flags && str_eq(a->u.open.addr, b->u.open.addr);
	case WIRE_CRED_REQ:
		return str_eq(a->u.cred_req.user, b->u.cred_req.user) &&
		       str_eq(a->u.cred_req.domain, b->u.cred_req.domain);
	case WIRE_CRED_RESP:
		return a->u.cred_resp.status == b->u.cred_resp.status &&
		       scram_eq(&a->u.cred_resp.sha1, &b->u.cred_resp.sha1) &&
		       scram_eq(&a->u.cred_resp.sha256, &b->u.cred_resp.sha256);
	case WIRE_AUTHED:
		return str_eq(a->u.authed.user, b->u.authed.user) &&
		       str_eq(a->u.authed.domain, b->u.authed.domain);
	case WIRE_BIND_REQ:
		return str_eq(a->u.bind_req.user, b->u.bind_req.user) &&
		       str_eq(a->u.bind_req.domain, b->u.bind_req.domain) &&
		       str_eq(a->u.bind_req.resource, b->u.bind_req.resource);
	case WIRE_BIND_RESP:
		return a->u.bind_resp.status == b->u.bind_resp.status &&
		       str_eq(a->u.bind_resp.jid, b->u.bind_resp.jid);
	case WIRE_STANZA:
	case WIRE_ROUTE:
		return a->u.stanza.kind == b->u.stanza.kind &&
		       a->u.stanza.flags == b->u.stanza.flags &&
		       str_eq(a->u.stanza.type, b->u.stanza.type) &&
		       str_eq(a->u.stanza.to, b->u.stanza.to) &&
		       str_eq(a->u.stanza.from, b->u.stanza.from) &&
		       str_eq(a->u.stanza.id, b->u.stanza.id) &&
		       str_eq(a->u.stanza.ns, b->u.stanza.ns) &&
		       str_eq(a->u.stanza.raw, b->u.stanza.raw);
	case WIRE_SESSION_CLOSE:
		return a->u.close.reason == b->u.close.reason;
	case WIRE_PING:
	case WIRE_PONG:
		return a->u.ping.token == b->u.ping.token;
	case WIRE_FLOW:
		return a->u.flow.stop == b->u.flow.stop;
	case WIRE_CREDIT:
		return a->u.credit.bytes == b->u.credit.bytes;
	case WIRE_DELIVERED:
		return a->u.delivered.bytes == b->u.delivered.bytes;
	case WIRE_REGISTER:
		return a->u.reg.op == b->u.reg.op && str_eq(a->u.reg.user, b->u.reg.user) &&
		       str_eq(a->u.reg.domain, b->u.reg.domain) &&
		       scram_eq(&a->u.reg.sha1, &b->u.reg.sha1) &&
		       scram_eq(&a->u.reg.sha256, &b->u.reg.sha256);
	case WIRE_REGISTER_RESP:
		return a->u.reg_resp.status == b->u.reg_resp.status;
	case WIRE_DOMAIN:
		return a->u.domain.op == b->u.domain.op && str_eq(a->u.domain.domain, b->u.domain.domain);
	case WIRE_SESSION_MOVE:
		return a->u.move.old_sid == b->u.move.old_sid && str_eq(a->u.move.jid, b->u.move.jid);
	case WIRE_HANDLED:
		return a->u.handled.count == b->u.handled.count;
	case WIRE_SMACKS:
		return a->u.smacks.max == b->u.smacks.max && a->u.smacks.h == b->u.smacks.h &&
		       str_eq(a->u.smacks.previd, b->u.smacks.previd);
	case WIRE_ADOPT:
		return str_eq(a->u.adopt.previd, b->u.adopt.previd) && str_eq(a->u.adopt.jid, b->u.adopt.jid);
	case WIRE_ADOPT_RESP:
		return a->u.adopt_resp.status == b->u.adopt_resp.status && a->u.adopt_resp.h == b->u.adopt_resp.h &&
		       str_eq(a->u.adopt_resp.jid, b->u.adopt_resp.jid);
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size > 0) {
		struct wire_msg m, m2;
		long r = wire_decode(data, size, &m);
		size_t n, sz;
		uint8_t *buf;

		CHECK(r >= -1 && r <= (long)size);
		if (r <= 0)
			return 0;
		n = (size_t)r;
		CHECK(n >= WIRE_LEN_BYTES + WIRE_MIN_BODY);
		CHECK(wire_type_str(m.type)[0] != 'u');   /* a known type */

		sz = wire_size(&m);
		CHECK(sz == n);
		buf = malloc(sz);
		CHECK(buf != NULL);
		CHECK(wire_encode(&m, buf, sz) == sz);
		CHECK(memcmp(buf, data, n) == 0);
		CHECK(wire_decode(buf, sz, &m2) == (long)sz);
		CHECK(msg_eq(&m, &m2));
		CHECK(wire_encode(&m, buf, sz - 1) == 0);
		/* prefixes: need more (exact-size copies, so ASan sees over-reads) */
		{
			size_t cuts[] = { 0, 3, 4, 5, 13, sz / 2, sz - 1 };
			for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
				size_t k = cuts[i] < sz ? cuts[i] : sz - 1;
				uint8_t *p = malloc(k ? k : 1);
				CHECK(p != NULL);
				memcpy(p, buf, k);
				CHECK(wire_decode(p, k, &m2) == 0);
				free(p);
			}
		}
		free(buf);
		data += n;
		size -= n;
	}
	return 0;
}
