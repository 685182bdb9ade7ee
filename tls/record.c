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

enum { CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
enum { HS_NEW_SESSION_TICKET = 4, HS_KEY_UPDATE = 24 };
enum {
	AL_CLOSE_NOTIFY = 0,
	AL_UNEXPECTED_MESSAGE = 10,
	AL_BAD_RECORD_MAC = 20,
	AL_RECORD_OVERFLOW = 22,
	AL_ILLEGAL_PARAMETER = 47,
	AL_DECODE_ERROR = 50,
	AL_INTERNAL_ERROR = 80,
	AL_USER_CANCELED = 90,
};

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

/* §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length) */
static int key_update(struct tls13 *r, struct rec_dir *d)
{
	uint8_t next[48];

	if (expand(r, next, r->hash_len, d->secret, "traffic upd") < 0)
		return -1;
	memcpy(d->secret, next, r->hash_len);
	explicit_bzero(next, sizeof(next));
	d->seq = 0;
	return rec_derive(r, d);
}

static void make_nonce(const struct rec_dir *d, uint8_t n[12])
{
	memcpy(n, d->iv, 12);
	for (int i = 0; i < 8; i++)
		n[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
}

/* Encrypt p[0..len) in place and append the tag.  AES keys are expanded per
 * record: AES-GCM is only the fallback suite (ChaCha20 is preferred). */
static int seal(const struct tls13 *r, const uint8_t aad[HDR_LEN], uint8_t *p, size_t len)
{
	uint8_t n[12];
	Aes aes;
	int rc;

	make_nonce(&r->wr, n);
	if (r->cipher == REC_CHACHA20_POLY1305)
		return wc_ChaCha20Poly1305_Encrypt(r->wr.key, n, aad, HDR_LEN, p, (word32)len, p, p + len)
		       ? -1 : 0;
	if (wc_AesInit(&aes, NULL, INVALID_DEVID))
		return -1;
	rc = wc_AesGcmSetKey(&aes, r->wr.key, r->key_len) ||
	     wc_AesGcmEncrypt(&aes, p, p, (word32)len, n, 12, p + len, TAG_LEN, aad, HDR_LEN);
	wc_AesFree(&aes);
	return rc ? -1 : 0;
}

/* Decrypt and authenticate the record rec (header included, clen bytes of
 * ciphertext and tag after it) into out. */
static int open_record(const struct tls13 *r, const uint8_t *rec, size_t clen, uint8_t *out)
{
	const uint8_t *ct = rec + HDR_LEN, *tag = ct + clen - TAG_LEN;
	uint8_t n[12];
	Aes aes;
	int rc;

	make_nonce(&r->rd, n);
	if (r->cipher == REC_CHACHA20_POLY1305)
		return wc_ChaCha20Poly1305_Decrypt(r->rd.key, n, rec, HDR_LEN, ct, (word32)(clen - TAG_LEN),
						   tag, out) ? -1 : 0;
	if (wc_AesInit(&aes, NULL, INVALID_DEVID))
		return -1;
	rc = wc_AesGcmSetKey(&aes, r->rd.key, r->key_len) ||
	     wc_AesGcmDecrypt(&aes, out, ct, (word32)(clen - TAG_LEN), n, 12, tag, TAG_LEN, rec, HDR_LEN);
	wc_AesFree(&aes);
	return rc ? -1 : 0;
}

int rec_send(struct tls13 *r, struct tls_io *io, uint8_t type, const uint8_t *data, size_t len)
{
	size_t inner = len + 1, wire = inner + TAG_LEN;

	if (len > REC_PLAIN_MAX)
		return -1;
	wbuf[0] = CT_APPDATA;
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

static int send_key_update(struct tls13 *r, struct tls_io *io, uint8_t request)
{
	const uint8_t msg[5] = { HS_KEY_UPDATE, 0, 0, 1, request };

	if (rec_send(r, io, CT_HANDSHAKE, msg, sizeof(msg)) < 0)
		return -1;
	return key_update(r, &r->wr);
}

void rec_alert(struct tls13 *r, struct tls_io *io, uint8_t desc)
{
	const uint8_t msg[2] = { desc == AL_CLOSE_NOTIFY || desc == AL_USER_CANCELED ? 1 : 2, desc };

	if (!r->err)
		(void)rec_send(r, io, CT_ALERT, msg, sizeof(msg));
}

/* A fatal protocol error: alert the peer, remember why, refuse from now on. */
static size_t fail(struct tls13 *r, struct tls_io *io, uint8_t desc, const char *why, int *res)
{
	rec_alert(r, io, desc);
	r->err = why;
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
					return fail(r, io, AL_DECODE_ERROR, "KeyUpdate of a wrong length", res);
			} else if (!(r->hs_hdr[0] == HS_NEW_SESSION_TICKET && r->client)) {
				return fail(r, io, AL_UNEXPECTED_MESSAGE,
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
				return fail(r, io, AL_ILLEGAL_PARAMETER, "KeyUpdate request_update out of range", res);
			if (n > 1) /* §5.1: a key change must end its record */
				return fail(r, io, AL_UNEXPECTED_MESSAGE, "data after KeyUpdate in its record", res);
			if (key_update(r, &r->rd) < 0)
				return fail(r, io, AL_INTERNAL_ERROR, "key derivation failed", res);
			if (request && send_key_update(r, io, 0) < 0)
				return fail(r, io, AL_INTERNAL_ERROR, "cannot answer KeyUpdate", res);
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

	if (rec[0] == CT_CCS) /* §5: only before the peer's Finished */
		return fail(r, io, AL_UNEXPECTED_MESSAGE, "change_cipher_spec after the handshake", res);
	if (rec[0] != CT_APPDATA)
		return fail(r, io, AL_UNEXPECTED_MESSAGE, "unprotected record after the handshake", res);
	if (clen < TAG_LEN || open_record(r, rec, clen, out) < 0)
		return fail(r, io, AL_BAD_RECORD_MAC, "record authentication failed", res);
	r->rd.seq++;
	n = clen - TAG_LEN;
	while (n && out[n - 1] == 0)
		n--;
	if (!n)
		return fail(r, io, AL_UNEXPECTED_MESSAGE, "record without a content type", res);
	type = out[--n];
	if (n > REC_PLAIN_MAX)
		return fail(r, io, AL_RECORD_OVERFLOW, "record content over 2^14 bytes", res);
	if (type != CT_HANDSHAKE && (r->hs_have || r->hs_left))
		return fail(r, io, AL_UNEXPECTED_MESSAGE, "handshake message interrupted", res);
	*res = TLS_OK;
	switch (type) {
	case CT_APPDATA:
		return n; /* 0 is allowed (§5.1): the caller reads on */
	case CT_ALERT:
		if (n != 2)
			return fail(r, io, AL_DECODE_ERROR, "malformed alert", res);
		if (out[1] == AL_CLOSE_NOTIFY)
			*res = TLS_CLOSED;
		else if (out[1] != AL_USER_CANCELED) { /* §6.2: every other alert is fatal */
			r->err = "the peer sent a fatal alert";
			*res = TLS_ERROR;
		}
		return 0;
	case CT_HANDSHAKE:
		if (!n)
			return fail(r, io, AL_UNEXPECTED_MESSAGE, "empty handshake record", res);
		return handshake(r, io, out, n, res);
	default:
		return fail(r, io, AL_UNEXPECTED_MESSAGE, "unknown record content type", res);
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
				return fail(r, io, AL_RECORD_OVERFLOW, "record over 2^14+256 bytes", res);
			if (io->in_len >= total) {
				rec = io->in;
				io->in += total;
				io->in_len -= total;
				goto whole;
			}
		}
		if (buf_used(&r->ct) < HDR_LEN) {
			if (take_in(r, io, HDR_LEN - buf_used(&r->ct)) < 0)
				return fail(r, io, AL_INTERNAL_ERROR, "out of memory", res);
			if (buf_used(&r->ct) < HDR_LEN) {
				*res = TLS_WANT;
				return 0;
			}
		}
		rec = buf_data(&r->ct);
		total = HDR_LEN + ((size_t)rec[3] << 8 | rec[4]);
		if (total - HDR_LEN > REC_CIPHER_MAX)
			return fail(r, io, AL_RECORD_OVERFLOW, "record over 2^14+256 bytes", res);
		if (take_in(r, io, total - buf_used(&r->ct)) < 0)
			return fail(r, io, AL_INTERNAL_ERROR, "out of memory", res);
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
	if (r->err)
		return -1;
	while (len) {
		size_t n = len < REC_PLAIN_MAX ? len : REC_PLAIN_MAX;
		if (r->wr.seq >= KEY_UPDATE_AT && send_key_update(r, io, 0) < 0)
			return -1;
		if (rec_send(r, io, CT_APPDATA, data, n) < 0)
			return -1;
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
