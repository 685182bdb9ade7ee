/*
 * record — our own TLS 1.3 record layer (RFC 8446 §5), used once wolfSSL
 * has finished a TLS 1.3 handshake.
 *
 * Why: Debian's wolfSSL keeps ~56 KB per session object for the whole life of
 * a connection (DESIGN §3), almost all of it handshake and OpenSSL-compat
 * state an established session never touches again.  After the handshake we
 * copy out the application traffic secrets, free the WOLFSSL object and
 * protect records here with wolfCrypt's AEAD primitives: an idle session then
 * costs the ~240 bytes of struct tls13 instead.  This is the split kTLS makes
 * (handshake in a library, records elsewhere), done in user space.
 *
 * What it does: application data both ways; alerts (close_notify ends the
 * stream, any other alert is fatal); KeyUpdate from the peer (RFC 8446
 * §4.6.3), answering update_requested; our own KeyUpdate before the send
 * sequence reaches 2^24 records (the AES-GCM limit of §5.5); a client skips
 * the server's NewSessionTicket messages.  Every protocol violation sends the
 * fatal alert §5/§6 names (bad_record_mac, record_overflow,
 * unexpected_message, decode_error, illegal_parameter) and fails.
 *
 * Record sizes: the inner plaintext (content, type, padding) of a record we
 * accept is at most 2^14 + 1 bytes (§5.4).  With a max_fragment_length
 * negotiated (RFC 6066, `frag`), the content we send per record is at most
 * frag - 1, so that even the inner plaintext stays within frag, as §5.4 reads
 * ("the reduced limit applies to the full plaintext, including the content
 * type and padding"); a received inner plaintext over frag + 1 bytes (content
 * over frag, the RFC 6066 limit OpenSSL and wolfSSL enforce and send up to,
 * or padding beyond it) gets record_overflow.
 *
 * Keys: a direction's key, iv and sequence number change together, and only
 * once the new ones were all derived (a half-done KeyUpdate would reuse a
 * nonce under the old key).  The first failure is latched in `err` before
 * its alert goes out; from then on nothing is read or written.
 */
#ifndef XEDGE_TLS_RECORD_H
#define XEDGE_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct tls_io;

#define REC_PLAIN_MAX 16384u                 /* 2^14: largest content per record */
#define REC_INNER_MAX (REC_PLAIN_MAX + 1u)   /* §5.4: content + type + padding, at most */
#define REC_CIPHER_MAX (REC_PLAIN_MAX + 256u) /* §5.2 */
#define REC_FRAG_MIN 512u                    /* the smallest max_fragment_length (RFC 6066) */

enum rec_cipher { REC_CHACHA20_POLY1305 = 1, REC_AES_GCM };

/* Content types (RFC 8446 §5.1) and the alert descriptions (§6) we send. */
enum { REC_CT_CCS = 20, REC_CT_ALERT = 21, REC_CT_HANDSHAKE = 22, REC_CT_APPDATA = 23 };
enum {
	REC_AL_CLOSE_NOTIFY = 0,
	REC_AL_UNEXPECTED_MESSAGE = 10,
	REC_AL_BAD_RECORD_MAC = 20,
	REC_AL_RECORD_OVERFLOW = 22,
	REC_AL_ILLEGAL_PARAMETER = 47,
	REC_AL_DECODE_ERROR = 50,
	REC_AL_INTERNAL_ERROR = 80,
	REC_AL_USER_CANCELED = 90,
};

struct rec_dir {
	uint8_t secret[48];  /* the current traffic secret (for KeyUpdate) */
	uint8_t key[32];
	uint8_t iv[12];
	uint64_t seq;
};

struct tls13 {
	struct rec_dir rd, wr;
	uint8_t cipher;      /* enum rec_cipher */
	uint8_t key_len;     /* 16 or 32 */
	uint8_t hash_len;    /* 32 (SHA-256) or 48 (SHA-384) */
	uint8_t client;      /* we are the client: skip NewSessionTicket */
	uint8_t hs_have;     /* bytes of the current handshake message header */
	uint8_t hs_hdr[4];
	uint16_t frag;       /* max_fragment_length negotiated (RFC 6066); 0: none (2^14) */
	uint32_t hs_left;    /* body bytes of the current handshake message still due */
	struct buf ct;       /* an incomplete record (empty between records) */
	const char *err;     /* why the session failed, for logs */
};

/* Fill dir's key and iv from its secret.  0, or -1. */
int rec_derive(const struct tls13 *r, struct rec_dir *d);

/* Decrypt application data from io->in (everything there is consumed: an
 * incomplete record is kept in r->ct) into out, which holds REC_INNER_MAX
 * bytes (and whatever is there after a failure is garbage).  Returns the plaintext length (> 0), or 0 with *res set to TLS_WANT,
 * TLS_CLOSED (close_notify) or TLS_ERROR (r->err says why; the alert is sent). */
size_t rec_read(struct tls13 *r, struct tls_io *io, uint8_t *out, int *res);

/* Encrypt data into records handed to io->out, each at most rec_frag_max()
 * bytes of content.  0, or -1 (r->err says why; the session is dead). */
int rec_write(struct tls13 *r, struct tls_io *io, const uint8_t *data, size_t len);

/* Protect and send one record of content type `type` (len <=
 * rec_frag_max(r)).  0, or -1. */
int rec_send(struct tls13 *r, struct tls_io *io, uint8_t type, const uint8_t *data, size_t len);

/* The most content one record we send may carry: 2^14, or frag - 1. */
size_t rec_frag_max(const struct tls13 *r);

/* Send an alert (0: close_notify, warning level; others fatal). */
void rec_alert(struct tls13 *r, struct tls_io *io, uint8_t desc);

/* Forget keys and buffered bytes. */
void rec_clear(struct tls13 *r);

#endif
