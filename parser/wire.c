/*
 * wire — see wire.h for the frame format and the contract.
 *
 * Layout of each body after `u8 type | u64 sid`, in struct member order
 * (docs/protocol.md repeats this for humans):
 *
 *   HELLO          u16 version, u16 worker, str16 secret
 *   HELLO_OK       u16 version
 *   SESSION_OPEN   u8 flags, str16 addr
 *   CRED_REQ       str16 user, str16 domain
 *   CRED_RESP      u8 status, scram sha1, scram sha256
 *                    scram = u32 iter, u8 salt_len, u8 key_len,
 *                            salt[salt_len], stored_key[key_len], server_key[key_len]
 *   AUTHED         str16 user, str16 domain
 *   BIND_REQ       str16 user, str16 domain, str16 resource
 *   BIND_RESP      u8 status, str16 jid
 *   STANZA         u8 kind, u8 flags, str16 type, to, from, id, ns, str32 raw
 *   SESSION_CLOSE  u8 reason
 *   PING, PONG     u64 token
 *   FLOW           u8 stop
 *   CREDIT         u32 bytes
 *   DELIVERED      u64 bytes
 *   REGISTER       u8 op, str16 user, str16 domain, scram sha1, scram sha256
 *   REGISTER_RESP  u8 status
 *   ROUTE          as STANZA
 *   DOMAIN         u8 op, str16 domain
 *   SESSION_MOVE   u64 old_sid, str16 jid
 *   SMACKS         u32 max, u32 h, str16 previd
 *   ADOPT          str16 previd, str16 jid
 *   ADOPT_RESP     u8 status, u32 h, str16 jid
 *
 * The encoding is canonical: every length is explicit and there is no
 * padding, so one wire_msg has exactly one byte form.  The decoder checks
 * the same rules the encoder enforces, in both directions: besides the
 * framing rules of wire.h, the enumerated fields must hold a value the
 * header defines (status, kind, close reason, SESSION_OPEN flags, stanza
 * flags, REGISTER op), salt_len <= WIRE_SALT_MAX
 * and key_len is 0, or 20 for the SHA-1 block and 32 for the SHA-256 block.
 * A peer that sends anything else is not speaking version 1.
 *
 * The decoder never reads past buf[len): every field read goes through a
 * cursor that checks the remaining body length first.
 */
#include "parser/wire.h"

#include <stdbool.h>
#include <string.h>

#define STR16_MAX 0xFFFFu

/* ---- decoding ---------------------------------------------------------- */

/* A read cursor over one frame body; `bad` latches on the first overrun so
 * callers can read a whole frame and test once. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);
	return p ? p[0] : 0;
}

static uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);
	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
		 : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);
	return (hi << 32) | rd_u32(r);
}

static struct wire_str rd_str(struct rd *r, size_t len)
{
	struct wire_str s = { NULL, 0 };
	const uint8_t *p = rd_take(r, len);

	if (p) {
		s.p = p;
		s.len = (uint32_t)len;   /* len <= left <= WIRE_MAX_BODY */
	}
	return s;
}

static struct wire_str rd_str16(struct rd *r)
{
	return rd_str(r, rd_u16(r));
}

static struct wire_str rd_str32(struct rd *r)
{
	uint32_t n = rd_u32(r);
	return rd_str(r, n);
}

static bool key_len_ok(uint8_t key_len, uint8_t want)
{
	return key_len == 0 || key_len == want;
}

static void rd_scram(struct rd *r, struct wire_scram *sc, uint8_t want_key)
{
	const uint8_t *p;

	sc->iter = rd_u32(r);
	sc->salt_len = rd_u8(r);
	sc->key_len = rd_u8(r);
	if (r->bad)
		return;
	if (sc->salt_len > WIRE_SALT_MAX || !key_len_ok(sc->key_len, want_key)) {
		r->bad = true;
		return;
	}
	if ((p = rd_take(r, sc->salt_len)) != NULL)
		memcpy(sc->salt, p, sc->salt_len);
	if ((p = rd_take(r, sc->key_len)) != NULL)
		memcpy(sc->stored_key, p, sc->key_len);
	if ((p = rd_take(r, sc->key_len)) != NULL)
		memcpy(sc->server_key, p, sc->key_len);
}

/* Value checks shared by decoder and encoder (see the file comment). */
static bool status_ok(uint8_t st)
{
	return st <= WIRE_CONFLICT;
}

static bool kind_ok(uint8_t k)
{
	return k >= WIRE_KIND_MESSAGE && k <= WIRE_KIND_IQ;
}

static bool reason_ok(uint8_t r)
{
	return r <= WIRE_CLOSE_MOVED;
}

static bool open_flags_ok(uint8_t f)
{
	return (f & ~(WIRE_OPEN_TLS | WIRE_OPEN_DIRECT_TLS)) == 0;
}

static bool stanza_flags_ok(uint8_t f)
{
	return (f & ~(WIRE_STANZA_TRACK | WIRE_STANZA_SHARD | WIRE_STANZA_RETURNED)) == 0;
}

static bool reg_op_ok(uint8_t op)
{
	return op >= WIRE_REG_CREATE && op <= WIRE_REG_REMOVE;
}

static bool domain_op_ok(uint8_t op)
{
	return op >= WIRE_DOMAIN_UP && op <= WIRE_DOMAIN_S2S;
}

static bool type_ok(uint8_t t)
{
	return t >= WIRE_HELLO && t <= WIRE_TYPE_MAX;
}

long wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out)
{
	struct rd r;
	struct wire_msg m;
	uint32_t body;

	if (buf == NULL || out == NULL)
		return -1;
	if (len < WIRE_LEN_BYTES)
		return 0;
	body = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
	       buf[3];
	/* Judge the length word and the type as soon as they are here: a bad
	 * one must not make the caller buffer up to 4 MiB before hearing no. */
	if (body < WIRE_MIN_BODY || body > WIRE_MAX_BODY)
		return -1;
	if (len > WIRE_LEN_BYTES && !type_ok(buf[WIRE_LEN_BYTES]))
		return -1;
	if (len - WIRE_LEN_BYTES < body)
		return 0;

	memset(&m, 0, sizeof(m));
	r.p = buf + WIRE_LEN_BYTES;
	r.left = body;
	r.bad = false;
	m.type = rd_u8(&r);
	m.sid = rd_u64(&r);

	switch (m.type) {
	case WIRE_HELLO:
		m.u.hello.version = rd_u16(&r);
		m.u.hello.worker = rd_u16(&r);
		m.u.hello.secret = rd_str16(&r);
		break;
	case WIRE_HELLO_OK:
		m.u.hello_ok.version = rd_u16(&r);
		break;
	case WIRE_SESSION_OPEN:
		m.u.open.flags = rd_u8(&r);
		m.u.open.addr = rd_str16(&r);
		if (!open_flags_ok(m.u.open.flags))
			r.bad = true;
		break;
	case WIRE_CRED_REQ:
		m.u.cred_req.user = rd_str16(&r);
		m.u.cred_req.domain = rd_str16(&r);
		break;
	case WIRE_CRED_RESP:
		m.u.cred_resp.status = rd_u8(&r);
		rd_scram(&r, &m.u.cred_resp.sha1, 20);
		rd_scram(&r, &m.u.cred_resp.sha256, 32);
		if (!status_ok(m.u.cred_resp.status))
			r.bad = true;
		break;
	case WIRE_AUTHED:
		m.u.authed.user = rd_str16(&r);
		m.u.authed.domain = rd_str16(&r);
		break;
	case WIRE_BIND_REQ:
		m.u.bind_req.user = rd_str16(&r);
		m.u.bind_req.domain = rd_str16(&r);
		m.u.bind_req.resource = rd_str16(&r);
		break;
	case WIRE_BIND_RESP:
		m.u.bind_resp.status = rd_u8(&r);
		m.u.bind_resp.jid = rd_str16(&r);
		if (!status_ok(m.u.bind_resp.status))
			r.bad = true;
		break;
	case WIRE_STANZA:
	case WIRE_ROUTE:
		m.u.stanza.kind = rd_u8(&r);
		m.u.stanza.flags = rd_u8(&r);
		m.u.stanza.type = rd_str16(&r);
		m.u.stanza.to = rd_str16(&r);
		m.u.stanza.from = rd_str16(&r);
		m.u.stanza.id = rd_str16(&r);
		m.u.stanza.ns = rd_str16(&r);
		m.u.stanza.raw = rd_str32(&r);
		if (!kind_ok(m.u.stanza.kind) || !stanza_flags_ok(m.u.stanza.flags))
			r.bad = true;
		break;
	case WIRE_SESSION_CLOSE:
		m.u.close.reason = rd_u8(&r);
		if (!reason_ok(m.u.close.reason))
			r.bad = true;
		break;
	case WIRE_PING:
	case WIRE_PONG:
		m.u.ping.token = rd_u64(&r);
		break;
	case WIRE_FLOW:
		m.u.flow.stop = rd_u8(&r);
		if (m.u.flow.stop > 1)
			r.bad = true;
		break;
	case WIRE_CREDIT:
		m.u.credit.bytes = rd_u32(&r);
		break;
	case WIRE_DELIVERED:
		m.u.delivered.bytes = rd_u64(&r);
		break;
	case WIRE_HANDLED:
		m.u.handled.count = rd_u64(&r);
		break;
	case WIRE_REGISTER:
		m.u.reg.op = rd_u8(&r);
		m.u.reg.user = rd_str16(&r);
		m.u.reg.domain = rd_str16(&r);
		rd_scram(&r, &m.u.reg.sha1, 20);
		rd_scram(&r, &m.u.reg.sha256, 32);
		if (!reg_op_ok(m.u.reg.op))
			r.bad = true;
		break;
	case WIRE_REGISTER_RESP:
		m.u.reg_resp.status = rd_u8(&r);
		if (!status_ok(m.u.reg_resp.status))
			r.bad = true;
		break;
	case WIRE_DOMAIN:
		m.u.domain.op = rd_u8(&r);
		m.u.domain.domain = rd_str16(&r);
		if (!domain_op_ok(m.u.domain.op))
			r.bad = true;
		break;
	case WIRE_SESSION_MOVE:
		m.u.move.old_sid = rd_u64(&r);
		m.u.move.jid = rd_str16(&r);
		break;
	case WIRE_SMACKS:
		m.u.smacks.max = rd_u32(&r);
		m.u.smacks.h = rd_u32(&r);
		m.u.smacks.previd = rd_str16(&r);
		break;
	case WIRE_ADOPT:
		m.u.adopt.previd = rd_str16(&r);
		m.u.adopt.jid = rd_str16(&r);
		break;
	case WIRE_ADOPT_RESP:
		m.u.adopt_resp.status = rd_u8(&r);
		m.u.adopt_resp.h = rd_u32(&r);
		m.u.adopt_resp.jid = rd_str16(&r);
		if (!status_ok(m.u.adopt_resp.status))
			r.bad = true;
		break;
	default:
		return -1;
	}
	if (r.bad || r.left != 0)
		return -1;
	*out = m;
	return (long)(WIRE_LEN_BYTES + body);
}

/* ---- encoding ---------------------------------------------------------- */

static size_t scram_size(const struct wire_scram *sc)
{
	return 4 + 1 + 1 + (size_t)sc->salt_len + 2 * (size_t)sc->key_len;
}

static size_t s16(struct wire_str s)
{
	return 2 + (size_t)s.len;
}

/* Body bytes after type and sid, from the lengths alone (no validation). */
static size_t fields_size(const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_HELLO:
		return 2 + 2 + s16(m->u.hello.secret);
	case WIRE_HELLO_OK:
		return 2;
	case WIRE_SESSION_OPEN:
		return 1 + s16(m->u.open.addr);
	case WIRE_CRED_REQ:
		return s16(m->u.cred_req.user) + s16(m->u.cred_req.domain);
	case WIRE_CRED_RESP:
		return 1 + scram_size(&m->u.cred_resp.sha1) + scram_size(&m->u.cred_resp.sha256);
	case WIRE_AUTHED:
		return s16(m->u.authed.user) + s16(m->u.authed.domain);
	case WIRE_BIND_REQ:
		return s16(m->u.bind_req.user) + s16(m->u.bind_req.domain) +
		       s16(m->u.bind_req.resource);
	case WIRE_BIND_RESP:
		return 1 + s16(m->u.bind_resp.jid);
	case WIRE_STANZA:
	case WIRE_ROUTE:
		return 2 + s16(m->u.stanza.type) + s16(m->u.stanza.to) + s16(m->u.stanza.from) +
		       s16(m->u.stanza.id) + s16(m->u.stanza.ns) + 4 + (size_t)m->u.stanza.raw.len;
	case WIRE_SESSION_CLOSE:
		return 1;
	case WIRE_PING:
	case WIRE_PONG:
		return 8;
	case WIRE_FLOW:
		return 1;
	case WIRE_CREDIT:
		return 4;
	case WIRE_DELIVERED:
	case WIRE_HANDLED:
		return 8;
	case WIRE_REGISTER:
		return 1 + s16(m->u.reg.user) + s16(m->u.reg.domain) + scram_size(&m->u.reg.sha1) +
		       scram_size(&m->u.reg.sha256);
	case WIRE_REGISTER_RESP:
		return 1;
	case WIRE_DOMAIN:
		return 1 + s16(m->u.domain.domain);
	case WIRE_SESSION_MOVE:
		return 8 + s16(m->u.move.jid);
	case WIRE_SMACKS:
		return 4 + 4 + s16(m->u.smacks.previd);
	case WIRE_ADOPT:
		return s16(m->u.adopt.previd) + s16(m->u.adopt.jid);
	case WIRE_ADOPT_RESP:
		return 1 + 4 + s16(m->u.adopt_resp.jid);
	default:
		return 0;
	}
}

size_t wire_size(const struct wire_msg *msg)
{
	if (msg == NULL || !type_ok(msg->type))
		return 0;
	return WIRE_LEN_BYTES + WIRE_MIN_BODY + fields_size(msg);
}

static bool str_ok(struct wire_str s, size_t max)
{
	return s.len <= max && (s.len == 0 || s.p != NULL);
}

static bool scram_ok(const struct wire_scram *sc, uint8_t want_key)
{
	return sc->salt_len <= WIRE_SALT_MAX && key_len_ok(sc->key_len, want_key);
}

/* Everything the decoder would refuse, checked before a byte is written. */
static bool msg_ok(const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_HELLO:
		return str_ok(m->u.hello.secret, STR16_MAX);
	case WIRE_SESSION_OPEN:
		return open_flags_ok(m->u.open.flags) && str_ok(m->u.open.addr, STR16_MAX);
	case WIRE_CRED_REQ:
		return str_ok(m->u.cred_req.user, STR16_MAX) &&
		       str_ok(m->u.cred_req.domain, STR16_MAX);
	case WIRE_CRED_RESP:
		return status_ok(m->u.cred_resp.status) && scram_ok(&m->u.cred_resp.sha1, 20) &&
		       scram_ok(&m->u.cred_resp.sha256, 32);
	case WIRE_AUTHED:
		return str_ok(m->u.authed.user, STR16_MAX) && str_ok(m->u.authed.domain, STR16_MAX);
	case WIRE_BIND_REQ:
		return str_ok(m->u.bind_req.user, STR16_MAX) &&
		       str_ok(m->u.bind_req.domain, STR16_MAX) &&
		       str_ok(m->u.bind_req.resource, STR16_MAX);
	case WIRE_BIND_RESP:
		return status_ok(m->u.bind_resp.status) && str_ok(m->u.bind_resp.jid, STR16_MAX);
	case WIRE_STANZA:
	case WIRE_ROUTE:
		return kind_ok(m->u.stanza.kind) && stanza_flags_ok(m->u.stanza.flags) &&
		       str_ok(m->u.stanza.type, STR16_MAX) && str_ok(m->u.stanza.to, STR16_MAX) &&
		       str_ok(m->u.stanza.from, STR16_MAX) && str_ok(m->u.stanza.id, STR16_MAX) &&
		       str_ok(m->u.stanza.ns, STR16_MAX) && str_ok(m->u.stanza.raw, WIRE_MAX_BODY);
	case WIRE_SESSION_CLOSE:
		return reason_ok(m->u.close.reason);
	case WIRE_FLOW:
		return m->u.flow.stop <= 1;
	case WIRE_REGISTER:
		return reg_op_ok(m->u.reg.op) && str_ok(m->u.reg.user, STR16_MAX) &&
		       str_ok(m->u.reg.domain, STR16_MAX) && scram_ok(&m->u.reg.sha1, 20) &&
		       scram_ok(&m->u.reg.sha256, 32);
	case WIRE_REGISTER_RESP:
		return status_ok(m->u.reg_resp.status);
	case WIRE_DOMAIN:
		return domain_op_ok(m->u.domain.op) && str_ok(m->u.domain.domain, STR16_MAX);
	case WIRE_SESSION_MOVE:
		return str_ok(m->u.move.jid, STR16_MAX);
	case WIRE_SMACKS:
		return str_ok(m->u.smacks.previd, STR16_MAX);
	case WIRE_ADOPT:
		return str_ok(m->u.adopt.previd, STR16_MAX) && str_ok(m->u.adopt.jid, STR16_MAX);
	case WIRE_ADOPT_RESP:
		return status_ok(m->u.adopt_resp.status) && str_ok(m->u.adopt_resp.jid, STR16_MAX);
	case WIRE_DELIVERED:
	case WIRE_HANDLED:
	case WIRE_CREDIT:
	case WIRE_HELLO_OK:
	case WIRE_PING:
	case WIRE_PONG:
		return true;
	default:
		return false;
	}
}

/* Writers: the caller has checked that the whole frame fits. */
static uint8_t *wr_u8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *wr_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *wr_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *wr_u64(uint8_t *p, uint64_t v)
{
	p = wr_u32(p, (uint32_t)(v >> 32));
	return wr_u32(p, (uint32_t)v);
}

static uint8_t *wr_bytes(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

static uint8_t *wr_str16(uint8_t *p, struct wire_str s)
{
	p = wr_u16(p, (uint16_t)s.len);
	return wr_bytes(p, s.p, s.len);
}

static uint8_t *wr_str32(uint8_t *p, struct wire_str s)
{
	p = wr_u32(p, s.len);
	return wr_bytes(p, s.p, s.len);
}

static uint8_t *wr_scram(uint8_t *p, const struct wire_scram *sc)
{
	p = wr_u32(p, sc->iter);
	p = wr_u8(p, sc->salt_len);
	p = wr_u8(p, sc->key_len);
	p = wr_bytes(p, sc->salt, sc->salt_len);
	p = wr_bytes(p, sc->stored_key, sc->key_len);
	return wr_bytes(p, sc->server_key, sc->key_len);
}

size_t wire_encode(const struct wire_msg *msg, uint8_t *buf, size_t cap)
{
	size_t size, body;
	uint8_t *p;

	if (msg == NULL || buf == NULL || !msg_ok(msg))
		return 0;
	size = wire_size(msg);
	body = size - WIRE_LEN_BYTES;
	if (body > WIRE_MAX_BODY || size > cap)
		return 0;

	p = wr_u32(buf, (uint32_t)body);
	p = wr_u8(p, msg->type);
	p = wr_u64(p, msg->sid);
	switch (msg->type) {
	case WIRE_HELLO:
		p = wr_u16(p, msg->u.hello.version);
		p = wr_u16(p, msg->u.hello.worker);
		p = wr_str16(p, msg->u.hello.secret);
		break;
	case WIRE_HELLO_OK:
		p = wr_u16(p, msg->u.hello_ok.version);
		break;
	case WIRE_SESSION_OPEN:
		p = wr_u8(p, msg->u.open.flags);
		p = wr_str16(p, msg->u.open.addr);
		break;
	case WIRE_CRED_REQ:
		p = wr_str16(p, msg->u.cred_req.user);
		p = wr_str16(p, msg->u.cred_req.domain);
		break;
	case WIRE_CRED_RESP:
		p = wr_u8(p, msg->u.cred_resp.status);
		p = wr_scram(p, &msg->u.cred_resp.sha1);
		p = wr_scram(p, &msg->u.cred_resp.sha256);
		break;
	case WIRE_AUTHED:
		p = wr_str16(p, msg->u.authed.user);
		p = wr_str16(p, msg->u.authed.domain);
		break;
	case WIRE_BIND_REQ:
		p = wr_str16(p, msg->u.bind_req.user);
		p = wr_str16(p, msg->u.bind_req.domain);
		p = wr_str16(p, msg->u.bind_req.resource);
		break;
	case WIRE_BIND_RESP:
		p = wr_u8(p, msg->u.bind_resp.status);
		p = wr_str16(p, msg->u.bind_resp.jid);
		break;
	case WIRE_STANZA:
	case WIRE_ROUTE:
		p = wr_u8(p, msg->u.stanza.kind);
		p = wr_u8(p, msg->u.stanza.flags);
		p = wr_str16(p, msg->u.stanza.type);
		p = wr_str16(p, msg->u.stanza.to);
		p = wr_str16(p, msg->u.stanza.from);
		p = wr_str16(p, msg->u.stanza.id);
		p = wr_str16(p, msg->u.stanza.ns);
		p = wr_str32(p, msg->u.stanza.raw);
		break;
	case WIRE_SESSION_CLOSE:
		p = wr_u8(p, msg->u.close.reason);
		break;
	case WIRE_PING:
	case WIRE_PONG:
		p = wr_u64(p, msg->u.ping.token);
		break;
	case WIRE_FLOW:
		p = wr_u8(p, msg->u.flow.stop);
		break;
	case WIRE_CREDIT:
		p = wr_u32(p, msg->u.credit.bytes);
		break;
	case WIRE_DELIVERED:
		p = wr_u64(p, msg->u.delivered.bytes);
		break;
	case WIRE_HANDLED:
		p = wr_u64(p, msg->u.handled.count);
		break;
	case WIRE_REGISTER:
		p = wr_u8(p, msg->u.reg.op);
		p = wr_str16(p, msg->u.reg.user);
		p = wr_str16(p, msg->u.reg.domain);
		p = wr_scram(p, &msg->u.reg.sha1);
		p = wr_scram(p, &msg->u.reg.sha256);
		break;
	case WIRE_REGISTER_RESP:
		p = wr_u8(p, msg->u.reg_resp.status);
		break;
	case WIRE_DOMAIN:
		p = wr_u8(p, msg->u.domain.op);
		p = wr_str16(p, msg->u.domain.domain);
		break;
	case WIRE_SESSION_MOVE:
		p = wr_u64(p, msg->u.move.old_sid);
		p = wr_str16(p, msg->u.move.jid);
		break;
	case WIRE_SMACKS:
		p = wr_u32(p, msg->u.smacks.max);
		p = wr_u32(p, msg->u.smacks.h);
		p = wr_str16(p, msg->u.smacks.previd);
		break;
	case WIRE_ADOPT:
		p = wr_str16(p, msg->u.adopt.previd);
		p = wr_str16(p, msg->u.adopt.jid);
		break;
	case WIRE_ADOPT_RESP:
		p = wr_u8(p, msg->u.adopt_resp.status);
		p = wr_u32(p, msg->u.adopt_resp.h);
		p = wr_str16(p, msg->u.adopt_resp.jid);
		break;
	}
	/* Sizes and writers are two descriptions of one layout; they agree. */
	return (size_t)(p - buf) == size ? size : 0;
}

const char *wire_type_str(uint8_t type)
{
	static const char *const names[] = {
		[WIRE_HELLO] = "hello",
		[WIRE_HELLO_OK] = "hello_ok",
		[WIRE_SESSION_OPEN] = "session_open",
		[WIRE_CRED_REQ] = "cred_req",
		[WIRE_CRED_RESP] = "cred_resp",
		[WIRE_AUTHED] = "authed",
		[WIRE_BIND_REQ] = "bind_req",
		[WIRE_BIND_RESP] = "bind_resp",
		[WIRE_STANZA] = "stanza",
		[WIRE_SESSION_CLOSE] = "session_close",
		[WIRE_PING] = "ping",
		[WIRE_PONG] = "pong",
		[WIRE_FLOW] = "flow",
		[WIRE_CREDIT] = "credit",
		[WIRE_DELIVERED] = "delivered",
		[WIRE_REGISTER] = "register",
		[WIRE_REGISTER_RESP] = "register_resp",
		[WIRE_ROUTE] = "route",
		[WIRE_DOMAIN] = "domain",
		[WIRE_SESSION_MOVE] = "session_move",
		[WIRE_HANDLED] = "handled",
		[WIRE_SMACKS] = "smacks",
		[WIRE_ADOPT] = "adopt",
		[WIRE_ADOPT_RESP] = "adopt_resp",
	};

	return type_ok(type) && names[type] ? names[type] : "unknown";
}
