/*
 * xprt — the transport stack of a connection: pushing, popping and the
 * per-iteration walk over its layers (see xprt.h).
 */
#include "core/xprt.h"

#include <string.h>

int xprt_push(struct conn *c, const struct xprt_ops *ops, void *state)
{
	if (c->nxp >= XPRT_MAX)
		return -1;
	c->xp[c->nxp] = ops;
	c->xs_state[c->nxp] = state;
	c->nxp++;
	return 0;
}

void xprt_pop(struct conn *c, int layer)
{
	if (c->xp[layer]->free)
		c->xp[layer]->free(c, layer);
	memmove(&c->xp[layer], &c->xp[layer + 1], (size_t)(c->nxp - layer - 1) * sizeof(c->xp[0]));
	memmove(&c->xs_state[layer], &c->xs_state[layer + 1],
		(size_t)(c->nxp - layer - 1) * sizeof(c->xs_state[0]));
	c->nxp--;
	c->xp[c->nxp] = NULL;
	c->xs_state[c->nxp] = NULL;
}

void xprt_flush(struct conn *c)
{
	for (int i = c->nxp - 1; i >= 0; i--)
		if (c->xp[i]->flush)
			c->xp[i]->flush(c, i);
}

size_t xprt_pending(const struct conn *c)
{
	size_t n = 0;

	for (int i = 0; i < c->nxp; i++)
		if (c->xp[i]->pending)
			n += c->xp[i]->pending(c, i);
	return n;
}

void xprt_shutdown(struct conn *c)
{
	for (int i = c->nxp - 1; i >= 0; i--) {
		if (c->xp[i]->flush)
			c->xp[i]->flush(c, i);
		if (c->xp[i]->shutdown)
			c->xp[i]->shutdown(c, i);
	}
}

void xprt_free(struct conn *c)
{
	while (c->nxp) {
		int i = c->nxp - 1;
		if (c->xp[i]->free)
			c->xp[i]->free(c, i);
		c->nxp--;
		c->xp[i] = NULL;
		c->xs_state[i] = NULL;
	}
}
