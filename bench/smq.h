/*
 * smq — the client side of XEP-0198 stream management, pure (no I/O, no
 * globals): the count of stanzas sent since <enable/>, the copies of those
 * the server has not acknowledged (kept only while resumption is asked for
 * or granted), the resumption id, and the reading of what the server sends
 * (<enabled/>, <a/>, <resumed/>, <failed/>).  client.c drives it.
 *
 * Counting (XEP-0198 §4): only stanzas count (message, presence, iq; the
 * nonzas <enable/>, <r/>, <a/> and whitespace do not), modulo 2^32, from
 * the <enable/> on.  An h from the server acknowledges every stanza up to
 * that number; one past what was sent is refused.
 *
 * Invariant: the copies are the stanzas numbered acked+1 .. sent, oldest
 * first, their bytes concatenated in `bytes` (so what a resumption sends
 * again is one contiguous run) and their lengths in the ring lens[head ..
 * head+n) (mod cap).  Without `keep`, n == 0 and nothing is copied.
 * Memory: owned by the struct (smq_free); the copies are bounded by
 * SMQ_BYTES_MAX.
 */
#ifndef XEDGE_BENCH_SMQ_H
#define XEDGE_BENCH_SMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SMQ_ID_MAX 256                 /* bytes of a resumption id we echo */
#define SMQ_BYTES_MAX (8u << 20)       /* copies kept per client */
#define SMQ_R_EVERY 16                 /* stanzas between our <r/> requests */

struct smq {
	uint32_t sent;          /* stanzas sent since <enable/> (mod 2^32) */
	uint32_t acked;         /* the server's last h */
	uint32_t since_r;       /* stanzas sent since our last <r/> */
	bool keep;              /* keep copies: resumption asked for and not refused */
	bool resumable;         /* <enabled resume='true' id=.../> came, with an id we can echo */
	uint32_t max;           /* the server's max (seconds; 0: not given) */
	struct buf bytes;       /* the copies */
	uint32_t *lens;
	uint32_t head, n, cap;
	char id[SMQ_ID_MAX + 1];
};

/* A new state, counting from 0; keep: copy stanzas (resumption asked for).
 * NULL when out of memory. */
struct smq *smq_new(bool keep);
void smq_free(struct smq *q);

/* Whether p[0..len) is a stanza (starts with <message, <presence or <iq). */
bool smq_is_stanza(const void *p, size_t len);

/* A stanza was sent: counted, and copied when keeping.  0, or -1 when the
 * copies would pass SMQ_BYTES_MAX or memory is out (counted all the same). */
int smq_sent(struct smq *q, const void *p, size_t len);

/* The server acknowledged h: the copies up to h are dropped.  0, or -1 when
 * h acknowledges more than was sent (q unchanged). */
int smq_ack(struct smq *q, uint32_t h);

/* Stanzas sent and not acknowledged; their bytes (contiguous, oldest first). */
uint32_t smq_unacked(const struct smq *q);
const uint8_t *smq_bytes(const struct smq *q, size_t *len);

/* An unsigned 32-bit decimal attribute of the element el[0..len) (its start
 * tag); -1 when absent or not such a number. */
int smq_attr_u32(const char *el, size_t len, const char *name, uint32_t *out);

/* The server's <enabled/> in el[0..len): with resume='true' and an id we
 * can echo (at most SMQ_ID_MAX bytes, no quote or markup), q is resumable;
 * otherwise the copies are dropped and no more are kept. */
void smq_enabled(struct smq *q, const char *el, size_t len);

/* Whether el's previd attribute is q's id. */
bool smq_previd_is(const struct smq *q, const char *el, size_t len);

#endif
