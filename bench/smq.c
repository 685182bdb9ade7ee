/*
 * smq — see smq.h.  Attributes are read with xmpp_attr() (core/xmpp.c, the
 * edge's start-tag reader: quoted values skipped whole, values holding a
 * reference refused), so a value never poses as an attribute.
 */
#include "bench/smq.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmpp.h"

struct smq *smq_new(bool keep)
{
	struct smq *q = calloc(1, sizeof(*q));

	if (q)
		q->keep = keep;
	return q;
}

static void drop_copies(struct smq *q)
{
	buf_reset(&q->bytes);
	free(q->lens);
	q->lens = NULL;
	q->head = q->n = q->cap = 0;
}

void smq_free(struct smq *q)
{
	if (!q)
		return;
	drop_copies(q);
	free(q);
}

static bool name_is(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n + 1 && p[0] == '<' && memcmp(p + 1, name, n) == 0 &&
	       (p[n + 1] == ' ' || p[n + 1] == '>' || p[n + 1] == '/' || p[n + 1] == '\t' ||
		p[n + 1] == '\n' || p[n + 1] == '\r');
}

bool smq_is_stanza(const void *data, size_t len)
{
	const char *p = data;

	return name_is(p, len, "message") || name_is(p, len, "presence") || name_is(p, len, "iq");
}

int smq_sent(struct smq *q, const void *p, size_t len)
{
	q->sent++;
	q->since_r++;
	if (!q->keep)
		return 0;
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? 2 * q->cap : 16;
		uint32_t *l = malloc(cap * sizeof(*l));
		if (!l || len > UINT32_MAX) {
			free(l);
			return -1;
		}
		for (uint32_t i = 0; i < q->n; i++)
			l[i] = q->lens[(q->head + i) % q->cap];
		free(q->lens);
		q->lens = l;
		q->head = 0;
		q->cap = cap;
	}
	if (buf_append(&q->bytes, p, len, SMQ_BYTES_MAX) < 0)
		return -1;
	q->lens[(q->head + q->n) % q->cap] = (uint32_t)len;
	q->n++;
	return 0;
}

int smq_ack(struct smq *q, uint32_t h)
{
	uint32_t k = h - q->acked;   /* mod 2^32: newly acknowledged */
	size_t bytes = 0;

	if (k > q->sent - q->acked)
		return -1;
	q->acked = h;
	/* Copies exist only for stanzas sent while keeping: at most n of the k. */
	if (k > q->n)
		k = q->n;
	for (uint32_t i = 0; i < k; i++)
		bytes += q->lens[(q->head + i) % q->cap];
	if (k) {
		q->head = (q->head + k) % q->cap;
		q->n -= k;
		buf_consume(&q->bytes, bytes);
	}
	if (!q->n)
		drop_copies(q);
	return 0;
}

uint32_t smq_unacked(const struct smq *q)
{
	return q->sent - q->acked;
}

const uint8_t *smq_bytes(const struct smq *q, size_t *len)
{
	*len = buf_used(&q->bytes);
	return *len ? buf_data(&q->bytes) : NULL;
}

int smq_attr_u32(const char *el, size_t len, const char *name, uint32_t *out)
{
	size_t n = 0;
	const char *v = xmpp_attr(el, len, name, &n);
	uint64_t x = 0;

	if (!v || n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > UINT32_MAX)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

void smq_enabled(struct smq *q, const char *el, size_t len)
{
	size_t n = 0, rn = 0;
	const char *id = xmpp_attr(el, len, "id", &n);
	const char *r = xmpp_attr(el, len, "resume", &rn);
	bool ok = id && n > 0 && n <= SMQ_ID_MAX && r &&
		  ((rn == 4 && !memcmp(r, "true", 4)) || (rn == 1 && r[0] == '1'));

	/* The id goes back in previd='...': nothing that would end or open markup. */
	for (size_t i = 0; ok && i < n; i++)
		ok = id[i] != '\'' && id[i] != '"' && id[i] != '<' && id[i] != '>' && id[i] != '&';
	q->resumable = ok;
	if (ok) {
		memcpy(q->id, id, n);
		q->id[n] = '\0';
		if (smq_attr_u32(el, len, "max", &q->max) < 0)
			q->max = 0;
	} else {
		q->keep = false;
		drop_copies(q);
	}
}

bool smq_previd_is(const struct smq *q, const char *el, size_t len)
{
	size_t n = 0;
	const char *v = xmpp_attr(el, len, "previd", &n);

	return v && n == strlen(q->id) && memcmp(v, q->id, n) == 0;
}
