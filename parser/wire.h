/*
 * wire — the internal protocol between an edge worker and a session server.
 *
 * A pure codec: no I/O, no allocation, no globals.  Every frame is
 *
 *     u32 body_len (big endian)  |  u8 type  |  u64 sid (big endian)  |  fields...
 *
 * where body_len counts everything after the length word (type, sid and
 * fields).  Fields are fixed-width big-endian integers and length-prefixed
 * byte strings: `str16` (u16 length) for names and JIDs, `str32` (u32 length)
 * for raw stanza bytes.  docs/protocol.md describes each frame field by field.
 *
 * Invariant: wire_decode() accepts exactly what wire_encode() produces.  A
 * frame with an unknown type, a field running past the frame end, trailing
 * bytes after the last field, or a body larger than WIRE_MAX_BODY is an error
 * (the link is then broken: the peer is not speaking our protocol).
 */
#ifndef XEDGE_WIRE_H
#define XEDGE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_LEN_BYTES 4              /* the length word */
#define WIRE_MIN_BODY (1 + 8)         /* type + sid */
#define WIRE_MAX_BODY (4u << 20)      /* 4 MiB: larger than any stanza limit */
#define WIRE_SALT_MAX 64
#define WIRE_KEY_MAX 32               /* SHA-256 output; SHA-1 keys use 20 */

enum wire_type {
	WIRE_HELLO = 1,         /* edge -> sm   link opens: version, worker id, secret */
	WIRE_HELLO_OK = 2,      /* sm -> edge   link accepted: version */
	WIRE_SESSION_OPEN = 3,  /* edge -> sm   a client connected: flags, client address */
	WIRE_CRED_REQ = 4,      /* edge -> sm   SASL needs the salted keys of user@domain */
	WIRE_CRED_RESP = 5,     /* sm -> edge   status + SCRAM-SHA-1 and SCRAM-SHA-256 keys */
	WIRE_AUTHED = 6,        /* edge -> sm   SASL succeeded for user@domain */
	WIRE_BIND_REQ = 7,      /* edge -> sm   bind user@domain/resource (empty: generate) */
	WIRE_BIND_RESP = 8,     /* sm -> edge   status + the bound full JID */
	WIRE_STANZA = 9,        /* both ways    routing header + raw stanza bytes */
	WIRE_SESSION_CLOSE = 10,/* both ways    session ended (edge) / must end (sm) */
	WIRE_PING = 11,         /* both ways    liveness; answered by WIRE_PONG */
	WIRE_PONG = 12,
	WIRE_FLOW = 13,         /* sm -> edge   stop / resume reading from this session's client */
	WIRE_CREDIT = 14,       /* edge -> sm   the session may be sent this many more stanza bytes */
	WIRE_DELIVERED = 15,    /* edge -> sm   stanza bytes written to the client's socket, cumulative */
	WIRE_REGISTER = 16,     /* edge -> sm   XEP-0077: create an account, change its keys, remove it */
	WIRE_REGISTER_RESP = 17,/* sm -> edge   status of a WIRE_REGISTER */
	WIRE_ROUTE = 18,        /* both ways    a stanza to or from an external entity (s2s peer or
	                           component): the WIRE_STANZA fields, sid 0 */
	WIRE_DOMAIN = 19,       /* edge -> sm   an external route on this link: component up/down, s2s */
	WIRE_SESSION_MOVE = 20, /* edge -> sm   XEP-0198 resumption on another worker: the bound session
	                           (old sid, full JID) continues on this link as sid */
	WIRE_HANDLED = 21,      /* sm -> edge   over a socket: the first `count` frames of this link (HELLO
	                           included) are handled: routed with their output written to the
	                           kernel, stored when storing was their outcome (docs/protocol.md) */
	WIRE_SMACKS = 22,       /* edge -> sm   XEP-0198: the session is resumable under previd for max
	                           seconds (0: no longer); h: client stanzas handled so far */
	WIRE_ADOPT = 23,        /* edge -> sm   XEP-0198 resumption on another edge: the orphaned session
	                           previd (of the account jid) continues on this link as sid */
	WIRE_ADOPT_RESP = 24,   /* sm -> edge   status of a WIRE_ADOPT: the full JID and the h to resume at */
	WIRE_TYPE_MAX = 24
};

/* WIRE_SESSION_OPEN flags */
#define WIRE_OPEN_TLS 0x01        /* the stream is (now) encrypted */
#define WIRE_OPEN_DIRECT_TLS 0x02 /* XEP-0368 direct TLS listener */

/* WIRE_STANZA flags (sm -> edge) */
#define WIRE_STANZA_TRACK 0x01    /* report (WIRE_DELIVERED) once this stanza is written */
/* WIRE_ROUTE flags (both ways) */
#define WIRE_STANZA_SHARD 0x02    /* between users of two shards: sm -> edge "on to the shard
                                     owning `to`", edge -> sm "from the shard owning `from`" */
/* WIRE_STANZA flags (edge -> sm) */
#define WIRE_STANZA_RETURNED 0x04 /* XEP-0198 §4: a stanza the session's client never acknowledged,
                                     sent back when the session ends: undeliverable to its full JID */

/* WIRE_REGISTER operations */
enum wire_reg_op {
	WIRE_REG_CREATE = 1,  /* new account user@domain with the given keys */
	WIRE_REG_PASSWORD = 2,/* replace the keys of the session's own account */
	WIRE_REG_REMOVE = 3   /* delete the session's own account (keys absent) */
};

/* WIRE_DOMAIN operations */
enum wire_domain_op {
	WIRE_DOMAIN_UP = 1,   /* the component serving `domain` (and its subdomains) is on this link */
	WIRE_DOMAIN_DOWN = 2, /* `domain` is a component's, not connected here: its stanzas bounce */
	WIRE_DOMAIN_S2S = 3   /* this link carries server-to-server traffic (domain empty) */
};

/* Status codes in WIRE_CRED_RESP, WIRE_BIND_RESP, WIRE_REGISTER_RESP and WIRE_ADOPT_RESP */
enum wire_status {
	WIRE_OK = 0,
	WIRE_NO_USER = 1,     /* CRED, REGISTER: no such account; ADOPT: no such orphaned session */
	WIRE_TEMP_FAIL = 2,   /* storage unavailable: try later */
	WIRE_BAD_REQUEST = 3, /* BIND: malformed resource; REGISTER: bad name or keys */
	WIRE_NOT_ALLOWED = 4, /* BIND: not authenticated / policy; REGISTER: not the session's account */
	WIRE_CONFLICT = 5     /* BIND: resource in use and not replaceable; REGISTER: account exists */
};

/* Stanza kinds in WIRE_STANZA */
enum wire_kind { WIRE_KIND_MESSAGE = 1, WIRE_KIND_PRESENCE = 2, WIRE_KIND_IQ = 3 };

/* Reasons in WIRE_SESSION_CLOSE */
enum wire_reason {
	WIRE_CLOSE_NORMAL = 0,     /* edge: client closed its stream */
	WIRE_CLOSE_DISCONNECT = 1, /* edge: connection lost without a close */
	WIRE_CLOSE_ERROR = 2,      /* edge: stream error sent to the client */
	WIRE_CLOSE_CONFLICT = 3,   /* sm: a new session took this resource */
	WIRE_CLOSE_KICKED = 4,     /* sm: account deleted or admin kick */
	WIRE_CLOSE_SHUTDOWN = 5,   /* either: the server is going down */
	WIRE_CLOSE_MOVED = 6       /* sm: the session moved to another link (WIRE_SESSION_MOVE);
	                              the last frame for this sid on the old link */
};

/* A byte string inside a decoded frame (points into the decoder's input). */
struct wire_str {
	const uint8_t *p;
	uint32_t len;
};

struct wire_scram {
	uint32_t iter;
	uint8_t salt_len;          /* <= WIRE_SALT_MAX */
	uint8_t key_len;           /* 20 (SHA-1) or 32 (SHA-256); 0 when absent */
	uint8_t salt[WIRE_SALT_MAX];
	uint8_t stored_key[WIRE_KEY_MAX];
	uint8_t server_key[WIRE_KEY_MAX];
};

struct wire_msg {
	uint8_t type;              /* enum wire_type */
	uint64_t sid;              /* session id chosen by the edge; 0 for link frames */
	union {
		struct { uint16_t version; uint16_t worker; struct wire_str secret; } hello;
		struct { uint16_t version; } hello_ok;
		struct { uint8_t flags; struct wire_str addr; } open;
		struct { struct wire_str user, domain; } cred_req;
		struct { uint8_t status; struct wire_scram sha1, sha256; } cred_resp;
		struct { struct wire_str user, domain; } authed;
		struct { struct wire_str user, domain, resource; } bind_req;
		struct { uint8_t status; struct wire_str jid; } bind_resp;
		struct {
			uint8_t kind;           /* enum wire_kind */
			uint8_t flags;          /* WIRE_STANZA_TRACK or 0 */
			struct wire_str type, to, from, id, ns; /* str16 each; ns: first child's namespace */
			struct wire_str raw;    /* str32: the stanza as it goes on the wire */
		} stanza;
		struct { uint8_t reason; } close;
		struct { uint64_t token; } ping; /* PING and PONG */
		struct { uint8_t stop; } flow;   /* 1: stop, 0: go */
		struct { uint32_t bytes; } credit;
		struct { uint64_t bytes; } delivered;
		struct { uint64_t count; } handled;
		struct {
			uint8_t op;             /* enum wire_reg_op */
			struct wire_str user, domain;
			struct wire_scram sha1, sha256; /* CREATE, PASSWORD; key_len 0 for REMOVE */
		} reg;
		struct { uint8_t status; } reg_resp;
		struct { uint8_t op; struct wire_str domain; } domain; /* op: enum wire_domain_op */
		struct { uint64_t old_sid; struct wire_str jid; } move;
		struct { uint32_t max, h; struct wire_str previd; } smacks;
		struct { struct wire_str previd, jid; } adopt;   /* jid: the account's bare JID */
		struct { uint8_t status; uint32_t h; struct wire_str jid; } adopt_resp;
	} u;
	/* WIRE_ROUTE uses u.stanza. */
};

/*
 * Decode one frame from buf[0..len).
 * Returns the number of bytes the frame occupies (> 0) and fills *out, whose
 * wire_str fields point into buf; 0 when buf holds less than one whole frame
 * (need more); -1 when the bytes are not a valid frame.
 */
long wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out);

/* Bytes wire_encode() will write for msg (length word included). */
size_t wire_size(const struct wire_msg *msg);

/*
 * Encode msg into buf, which must have room for wire_size(msg) bytes.
 * Returns the bytes written, or 0 if cap is too small or a field exceeds its
 * width (a str16 longer than 65535, a body over WIRE_MAX_BODY).
 */
size_t wire_encode(const struct wire_msg *msg, uint8_t *buf, size_t cap);

/* Convenience: a wire_str over a C buffer. */
static inline struct wire_str wire_s(const void *p, size_t len)
{
	struct wire_str s = { (const uint8_t *)p, (uint32_t)len };
	return s;
}

const char *wire_type_str(uint8_t type);

#endif
