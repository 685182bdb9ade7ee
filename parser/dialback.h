/*
 * dialback — Server Dialback (XEP-0220) elements and keys (XEP-0185): pure,
 * no I/O.  s2s.c reads every <db:result/> and <db:verify/> a peer sends
 * through dialback_parse(), which takes hostile bytes: one complete element
 * (framed and well-formed already, parsed again here in the stream's
 * namespace context), bounded in every field.
 */
#ifndef XEDGE_DIALBACK_H
#define XEDGE_DIALBACK_H

#include <stddef.h>
#include <stdint.h>

#include "parser/jid.h"

#define NS_DIALBACK "jabber:server:dialback"
#define DB_KEY_HEX 64          /* our keys: hex of an HMAC-SHA256 */
#define DB_KEY_MAX 256         /* a peer's key: printable ASCII, at most this long */
#define DB_ID_MAX 128          /* a stream id */

enum db_kind { DB_RESULT = 1, DB_VERIFY = 2 };
enum db_type { DB_REQUEST = 0, DB_VALID, DB_INVALID, DB_ERROR };

/* What is wrong with an element: the stream error RFC 6120 names for it. */
enum db_err {
	DB_OK = 0,
	DB_E_XML = -1,        /* not a dialback element, or not parseable: <invalid-xml/> */
	DB_E_FROM = -2,       /* from missing or not a domain: <invalid-from/> */
	DB_E_TO = -3,         /* to missing or not a domain: <improper-addressing/> */
	DB_E_ID = -4,         /* verify without id, or an id out of bounds: <invalid-id/> */
	DB_E_KEY = -5,        /* a request without a key, or a key out of bounds: <not-acceptable/> */
	DB_E_TYPE = -6        /* an unknown type: <bad-format/> */
};

struct db_elem {
	int kind;                        /* enum db_kind */
	int type;                        /* enum db_type */
	char from[JID_PART_MAX + 1];     /* canonical domains */
	char to[JID_PART_MAX + 1];
	char id[DB_ID_MAX + 1];          /* "" when absent */
	char key[DB_KEY_MAX + 1];        /* requests only; "" otherwise */
	char cond[32];                   /* type error: the condition, when one is given */
};

/* Parse raw[0..len), in the namespace context decls (the stream header's
 * declarations).  DB_OK or a DB_E_* (*out is then partly filled). */
int dialback_parse(const char *raw, size_t len, const char *decls, struct db_elem *out);

/* The stream error condition for a DB_E_* code. */
const char *dialback_error_str(int err);

/* XEP-0185: hex(HMAC-SHA256(hex(SHA256(secret)), receiving ' ' originating ' '
 * id)) into out (DB_KEY_HEX + 1 bytes).  secret_hex is the hex SHA-256 of the
 * secret (dialback_secret_hex).  0, or -1 (inputs too long). */
int dialback_key(const char secret_hex[DB_KEY_HEX + 1], const char *receiving,
		 const char *originating, const char *id, char out[DB_KEY_HEX + 1]);
void dialback_secret_hex(const void *secret, size_t n, char out[DB_KEY_HEX + 1]);

#endif
