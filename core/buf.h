/*
 * buf — a growable byte buffer with a consumed prefix.
 *
 * Invariant: p[off..len) are the live bytes; cap is the allocation.  An
 * empty buffer holds no memory (buf_reset frees it), so an idle connection
 * costs nothing here.  Growth is bounded by the caller's limit argument.
 */
#ifndef XEDGE_BUF_H
#define XEDGE_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	uint8_t *p;
	uint32_t off, len, cap;
};

static inline uint32_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline uint8_t *buf_data(const struct buf *b) { return b->p + b->off; }

static inline void buf_reset(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->off = b->len = b->cap = 0;
}

/* Append n bytes; -1 when the live bytes would exceed limit or memory is out. */
static inline int buf_append(struct buf *b, const void *data, size_t n, size_t limit)
{
	if ((size_t)buf_used(b) + n > limit)
		return -1;
	if (!n)
		return 0;
	if (b->off && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = (uint32_t)cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += (uint32_t)n;
	return 0;
}

/* Drop n bytes from the front; frees the memory when empty. */
static inline void buf_consume(struct buf *b, size_t n)
{
	b->off += (uint32_t)n;
	if (b->off >= b->len)
		buf_reset(b);
}

#endif
