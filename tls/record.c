/*
 * record — see record.h.  RFC 8446 §5.2 record protection:
 *   nonce = iv XOR seq (64-bit big-endian, left-padded to 12 bytes)
 *   AAD   = the 5-byte record header (opaque type 23, 0x0303, length)
 *   inner = content || content type || zero padding
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/kdf.h>

#include "tls/record.h"

#include <stdbool.h>
#include <string.h>

#include "tls/tls.h"

enum { HS_NEW_SESSION_TICKET = 4, HS_KEY_UPDATE = 24 };

#define TAG_LEN 16
#define HDR_LEN 5
/* §5.5: AES-GCM keys must change before 2^24.5 full records; we rekey at
 * 2^24 whatever the cipher (for ChaCha20 it is merely early). */
#define KEY_UPDATE_AT (1ull << 24)

/* One record being built; per thread, records leave through io->out at once. */
static _Thread_local uint8_t wbuf[HDR_LEN + REC_PLAIN_MAX + 1 + TAG_LEN];

static int expand(const struct tls13 *r, uint8_t *okm, size_t okm_len, const uint8_t *prk,
		  const char *label)
{
	static const uint8_t proto[] = "tls13 ", none[1];

	return wc_Tls13_HKDF_Expand_Label(okm, (word32)okm_len, prk, r->hash_len, proto, 6,
					  (const byte *)label, (word32)strlen(label), none, 0,
					  r->hash_len == 48 ? WC_SHA384 : WC_SHA256) == 0 ? 0 : -1;
}

int rec_derive(const struct tls13 *r, struct rec_dir *d)
{
	return expand(r, d->key, r->key_len, d->secret, "key") < 0 ||
	       expand(r, d->iv, sizeof(d->iv), d->secret, "iv") < 0 ? -1 : 0;
}

/* §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N,
 * "traffic upd", "", Hash.length), and its key and iv, into *next (seq 0).
 * The direction itself is left alone: the caller commits *next at once, and
 * only on success, so a failure never leaves the old key at sequence 0.
 * The caller wipes *next. */
static int next_keys(const struct tls13 *r, const struct rec_dir *d, struct rec_dir *next)
{
	memset(next, 0, sizeof(*next));
	return expand(r, next->secret, r->hash_len, d->secret, "traffic upd") < 0 ||
	       rec_derive(r, next) < 0 ? -1 : 0;
}

static int key_update(const struct tls13 *r, struct rec_dir *d)
{
	struct rec_dir next;
	int rc = next_keys(r, d, &next);

	if (rc == 0)
		*d = next;
	explicit_bzero(&next, sizeof(next));
	return rc;
}

/* The record size limit: the max_fragment_length negotiated, or 2^14. */
static size_t frag_limit(const struct tls13 *r)
{
	return r->frag && r->frag < REC_PLAIN_MAX ? r->frag : REC_PLAIN_MAX;
}

size_t rec_frag_max(const struct tls13 *r)
{
	return frag_limit(r) < REC_PLAIN_MAX ? frag_limit(r) - 1u : REC_PLAIN_MAX;
}

/* The largest inner plaintext we accept: 2^14 + 1 (§5.4), or frag + 1. */
static size_t inner_max(const struct tls13 *r)
{
	return frag_limit(r) + 1u;
}

static void make_nonce(const struct rec_dir *d, uint8_t n[12])
{
	memcpy(n, d->iv, 12);
	for (int i = 0; i < 8; i++)
		n[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
}

/*
 * The AEAD, one record at a time: in[0..len) to out (in place is fine), the
 * tag written to tag (seal) or checked against it (open).  The cipher state
 * lives on our stack for the call and is wiped after it on every path,
 * whatever wolfCrypt itself wipes: the AES key schedule, the ChaCha20 key
 * and the Poly1305 key it derives.  AES keys are expanded per record: AES-GCM
 * is only the fallback suite (ChaCha20 is preferred).  0, or -1 (for open:
 * not authentic; out then holds garbage).
 */
static int aead(const struct tls13 *r, bool enc, const uint8_t key[32], const uint8_t n[12],
		const uint8_t aad[HDR_LEN], const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	int rc = -1;

	if (r->cipher == REC_CHACHA20_POLY1305) {
		ChaChaPoly_Aead st;
		uint8_t calc[TAG_LEN];
		/* The streaming calls: with the one-shot ones the state would be on
		 * wolfCrypt's stack, out of our reach. */
		if (wc_ChaCha20Poly1305_Init(&st, key, n, enc ? CHACHA20_POLY1305_AEAD_ENCRYPT
							       : CHACHA20_POLY1305_AEAD_DECRYPT) == 0 &&
		    wc_ChaCha20Poly1305_UpdateAad(&st, aad, HDR_LEN) == 0 &&
		    (!len || wc_ChaCha20Poly1305_UpdateData(&st, in, out, (word32)len) == 0) &&
		    wc_ChaCha20Poly1305_Final(&st, enc ? tag : calc) == 0)
			rc = enc || wc_ChaCha20Poly1305_CheckTag(tag, calc) == 0 ? 0 : -1;
		explicit_bzero(&st, sizeof(st));
		explicit_bzero(calc, sizeof(calc));
	} else {
		Aes aes;
		if (wc_AesInit(&aes, NULL, INVALID_DEVID) == 0) {
			if (wc_AesGcmSetKey(&aes, key, r->key_len) == 0)
				rc = (enc ? wc_AesGcmEncrypt(&aes, out, in, (word32)len, n, 12, tag, TAG_LEN, aad, HDR_LEN)
					   : wc_AesGcmDecrypt(&aes, out, in, (word32)len, n, 12, tag, TAG_LEN, aad, HDR_LEN))
					     ? -1 : 0;
			wc_AesFree(&aes);
		}
		explicit_bzero(&aes, sizeof(aes));
	}
	return rc;
}

/* Encrypt p[0..len) in place and append the tag. */
static int seal(const struct tls13 *r, const uint8_t aad[HDR_LEN], uint8_t *p, size_t len)
{
	uint8_t n[12];

	make_nonce(&r->wr, n);
	return aead(r, true, r->wr.key, n, aad, p, len, p, p + len);
}

/* Decrypt and authenticate the record rec (header included, clen bytes of
 * ciphertext and tag after it) into out. */
static int open_record(const struct tls13 *r, const uint8_t *rec, size_t clen, uint8_t *out)
{
	const uint8_t *ct = rec + HDR_LEN;
	uint8_t n[12];
	uint8_t tag[TAG_LEN];

	make_nonce(&r->rd, n);
	memcpy(tag, ct + clen - TAG_LEN, TAG_LEN);
	return aead(r, false, r->rd.key, n, rec, ct, clen - TAG_LEN, out, tag);
}

int rec_send(struct tls13 *r, struct tls_io *io, uint8_t type, const uint8_t *data, size_t len)
{
	size_t inner = len + 1, wire = inner + TAG_LEN;

	if (len > rec_frag_max(r))
		return -1;
	wbuf[0] = REC_CT_APPDATA;
	wbuf[1] = 3;
	wbuf[2] = 3;
	wbuf[3] = (uint8_t)(wire >> 8);
	wbuf[4] = (uint8_t)wire;
	memcpy(wbuf + HDR_LEN, data, len);
	wbuf[HDR_LEN + len] = type;
	if (seal(r, wbuf, wbuf + HDR_LEN, inner) < 0)
		return -1;
	r->wr.seq++;
	return io->out(io->owner, wbuf, HDR_LEN + wire);
}

/* Our KeyUpdate: the next write keys are derived first, so that a failure
 * sends nothing and leaves the write side as the peer knows it (the alert
 * that follows is still readable); the KeyUpdate goes under the old key, and
 * the new one takes over once it is out. */
static int send_key_update(struct tls13 *r, struct tls_io *io, uint8_t request)
{
	const uint8_t msg[5] = { HS_KEY_UPDATE, 0, 0, 1, request };
	struct rec_dir next;
	int rc = -1;

	if (next_keys(r, &r->wr, &next) == 0 && rec_send(r, io, REC_CT_HANDSHAKE, msg, sizeof(msg)) == 0) {
		r->wr = next;
		rc = 0;
	}
	explicit_bzero(&next, sizeof(next));
	return rc;
}

static void send_alert(struct tls13 *r, struct tls_io *io, uint8_t desc)
{
	const uint8_t msg[2] = { desc == REC_AL_CLOSE_NOTIFY || desc == REC_AL_USER_CANCELED ? 1 : 2, desc };

	(void)rec_send(r, io, REC_CT_ALERT, msg, sizeof(msg));
}

void rec_alert(struct tls13 *r, struct tls_io *io, uint8_t desc)
{
	if (!r->err)
		send_alert(r, io, desc);
}

/* A fatal error: latch it first (nothing is read or written after it, even
 * if the alert's own output re-enters us), then tell the peer. */
static void die(struct tls13 *r, struct tls_io *io, uint8_t desc, const char *why)
{
	if (r->err)
		return;
	r->err = why;
	send_alert(r, io, desc);
}

/* A fatal protocol error while reading. */
static size_t fail(struct tls13 *r, struct tls_io *io, uint8_t desc, const char *why, int *res)
{
	die(r, io, desc, why);
	*res = TLS_ERROR;
	return 0;
}

/* Post-handshake handshake messages (§4.6), possibly spanning records. */
static size_t handshake(struct tls13 *r, struct tls_io *io, const uint8_t *d, size_t n, int *res)
{
	while (n) {
		if (r->hs_have < 4) {
			size_t take = 4u - r->hs_have < n ? 4u - r->hs_have : n;
			memcpy(r->hs_hdr + r->hs_have, d, take);
			r->hs_have = (uint8_t)(r->hs_have + take);
			d += take;
			n -= take;
			if (r->hs_have < 4)
				break;
			r->hs_left = (uint32_t)r->hs_hdr[1] << 16 | (uint32_t)r->hs_hdr[2] << 8 | r->hs_hdr[3];
			if (r->hs_hdr[0] == HS_KEY_UPDATE) {
				if (r->hs_left != 1)
					return fail(r, io, REC_AL_DECODE_ERROR, "KeyUpdate of a wrong length", res);
			} else if (!(r->hs_hdr[0] == HS_NEW_SESSION_TICKET && r->client)) {
				return fail(r, io, REC_AL_UNEXPECTED_MESSAGE,
					    "unexpected handshake message after the handshake", res);
			}
			if (!r->hs_left)
				r->hs_have = 0;
			continue;
		}
		if (r->hs_hdr[0] == HS_KEY_UPDATE) {
			uint8_t request = d[0];
			r->hs_have = 0;
			r->hs_left = 0;
			if (request > 1)
				return fail(r, io, REC_AL_ILLEGAL_PARAMETER, "KeyUpdate request_update out of range", res);
			if (n > 1) /* §5.1: a key change must end its record */
				return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "data after KeyUpdate in its record", res);
			if (key_update(r, &r->rd) < 0)
				return fail(r, io, REC_AL_INTERNAL_ERROR, "key derivation failed", res);
			if (request && send_key_update(r, io, 0) < 0)
				return fail(r, io, REC_AL_INTERNAL_ERROR, "cannot answer KeyUpdate", res);
			break;
		}
		size_t take = r->hs_left < n ? r->hs_left : n; /* a ticket: we resume nothing */
		r->hs_left -= (uint32_t)take;
		d += take;
		n -= take;
		if (!r->hs_left)
			r->hs_have = 0;
	}
	*res = TLS_OK;
	return 0;
}

/* One whole record at rec (total bytes, header included). */
static size_t process(struct tls13 *r, struct tls_io *io, const uint8_t *rec, size_t total,
		      uint8_t *out, int *res)
{
	size_t clen = total - HDR_LEN, n;
	uint8_t type;

	if (rec[0] == REC_CT_CCS) /* §5: only before the peer's Finished */
		return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "change_cipher_spec after the handshake", res);
	if (rec[0] != REC_CT_APPDATA)
		return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "unprotected record after the handshake", res);
	if (clen < TAG_LEN)
		return fail(r, io, REC_AL_BAD_RECORD_MAC, "record authentication failed", res);
	/* §5.4: the inner plaintext (content, type and padding) is at most
	 * 2^14 + 1 bytes (frag + 1 with max_fragment_length, see record.h).
	 * Both our AEADs add exactly TAG_LEN bytes, so it is known before
	 * decrypting. */
	if (clen - TAG_LEN > inner_max(r))
		return fail(r, io, REC_AL_RECORD_OVERFLOW,
			    frag_limit(r) < REC_PLAIN_MAX ? "record over the negotiated max_fragment_length"
				    : "inner plaintext over 2^14+1 bytes", res);
	if (open_record(r, rec, clen, out) < 0)
		return fail(r, io, REC_AL_BAD_RECORD_MAC, "record authentication failed", res);
	r->rd.seq++;
	n = clen - TAG_LEN;
	while (n && out[n - 1] == 0)
		n--;
	if (!n)
		return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "record without a content type", res);
	type = out[--n];
	if (type != REC_CT_HANDSHAKE && (r->hs_have || r->hs_left))
		return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "handshake message interrupted", res);
	*res = TLS_OK;
	switch (type) {
	case REC_CT_APPDATA:
		return n; /* 0 is allowed (§5.1): the caller reads on */
	case REC_CT_ALERT:
		if (n != 2)
			return fail(r, io, REC_AL_DECODE_ERROR, "malformed alert", res);
		if (out[1] == REC_AL_CLOSE_NOTIFY)
			*res = TLS_CLOSED;
		else if (out[1] != REC_AL_USER_CANCELED) { /* §6.2: every other alert is fatal */
			r->err = "the peer sent a fatal alert";
			*res = TLS_ERROR;
		}
		return 0;
	case REC_CT_HANDSHAKE:
		if (!n)
			return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "empty handshake record", res);
		return handshake(r, io, out, n, res);
	default:
		return fail(r, io, REC_AL_UNEXPECTED_MESSAGE, "unknown record content type", res);
	}
}

/* Move up to want bytes of io->in behind the incomplete record.  -1: no memory. */
static int take_in(struct tls13 *r, struct tls_io *io, size_t want)
{
	size_t n = want < io->in_len ? want : io->in_len;

	if (n && buf_append(&r->ct, io->in, n, HDR_LEN + REC_CIPHER_MAX) < 0)
		return -1;
	io->in += n;
	io->in_len -= n;
	return 0;
}

size_t rec_read(struct tls13 *r, struct tls_io *io, uint8_t *out, int *res)
{
	if (r->err) {
		*res = TLS_ERROR;
		return 0;
	}
	for (;;) {
		const uint8_t *rec;
		size_t total, n;
		bool held = buf_used(&r->ct) > 0;

		if (!held && io->in_len >= HDR_LEN) {
			/* The common case: a whole record in what arrived, no copy. */
			total = HDR_LEN + ((size_t)io->in[3] << 8 | io->in[4]);
			if (total - HDR_LEN > REC_CIPHER_MAX)
				return fail(r, io, REC_AL_RECORD_OVERFLOW, "record over 2^14+256 bytes", res);
			if (io->in_len >= total) {
				rec = io->in;
				io->in += total;
				io->in_len -= total;
				goto whole;
			}
		}
		if (buf_used(&r->ct) < HDR_LEN) {
			if (take_in(r, io, HDR_LEN - buf_used(&r->ct)) < 0)
				return fail(r, io, REC_AL_INTERNAL_ERROR, "out of memory", res);
			if (buf_used(&r->ct) < HDR_LEN) {
				*res = TLS_WANT;
				return 0;
			}
		}
		rec = buf_data(&r->ct);
		total = HDR_LEN + ((size_t)rec[3] << 8 | rec[4]);
		if (total - HDR_LEN > REC_CIPHER_MAX)
			return fail(r, io, REC_AL_RECORD_OVERFLOW, "record over 2^14+256 bytes", res);
		if (take_in(r, io, total - buf_used(&r->ct)) < 0)
			return fail(r, io, REC_AL_INTERNAL_ERROR, "out of memory", res);
		if (buf_used(&r->ct) < total) {
			*res = TLS_WANT;
			return 0;
		}
		rec = buf_data(&r->ct);
		held = true;
whole:
		n = process(r, io, rec, total, out, res);
		if (held)
			buf_reset(&r->ct);
		if (n || *res != TLS_OK)
			return n;
	}
}

int rec_write(struct tls13 *r, struct tls_io *io, const uint8_t *data, size_t len)
{
	size_t max = rec_frag_max(r);

	if (r->err)
		return -1;
	while (len) {
		size_t n = len < max ? len : max;
		if (r->wr.seq >= KEY_UPDATE_AT && send_key_update(r, io, 0) < 0) {
			die(r, io, REC_AL_INTERNAL_ERROR, "cannot update our keys");
			return -1;
		}
		if (rec_send(r, io, REC_CT_APPDATA, data, n) < 0) {
			die(r, io, REC_AL_INTERNAL_ERROR, "cannot send a record");
			return -1;
		}
		data += n;
		len -= n;
	}
	return 0;
}

void rec_clear(struct tls13 *r)
{
	buf_reset(&r->ct);
	explicit_bzero(&r->rd, sizeof(r->rd));
	explicit_bzero(&r->wr, sizeof(r->wr));
}
