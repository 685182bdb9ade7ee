/* chan — an in-process link direction over a ck_ring (chan.h). */
#include "core/chan.h"

#include <ck_pr.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int chan_init(struct chan *ch, int wake_fd)
{
	ch->slots = calloc(CHAN_SLOTS, sizeof(*ch->slots));
	if (!ch->slots)
		return -ENOMEM;
	ck_ring_init(&ch->ring, CHAN_SLOTS);
	ch->wake_fd = wake_fd;
	return 0;
}

void chan_fini(struct chan *ch)
{
	void *v;

	if (!ch->slots)
		return;
	while (ck_ring_dequeue_spsc(&ch->ring, ch->slots, &v))
		free(v);
	free(ch->slots);
	ch->slots = NULL;
}

int chan_put(struct chan *ch, const void *p, size_t len)
{
	struct chan_chunk *c = malloc(sizeof(*c) + len);
	uint64_t one = 1;

	if (!c)
		return -ENOMEM;
	c->len = (uint32_t)len;
	memcpy(c->data, p, len);
	if (!ck_ring_enqueue_spsc(&ch->ring, ch->slots, c)) {
		free(c);
		return -EAGAIN;
	}
	/* Store (the chunk published) then load (what the consumer took):
	 * the full fence orders them (see chan.h). */
	ck_pr_fence_memory();
	if (ck_ring_size(&ch->ring) == 1 && write(ch->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, so the consumer is
		 * awake anyway; nothing else can fail on an eventfd. */
	}
	return 0;
}

struct chan_chunk *chan_get(struct chan *ch)
{
	void *v;

	if (ck_ring_dequeue_spsc(&ch->ring, ch->slots, &v))
		return v;
	/* Empty: fence our earlier dequeues' stores before the last look,
	 * which then sees any chunk whose producer did not wake us. */
	ck_pr_fence_memory();
	return ck_ring_dequeue_spsc(&ch->ring, ch->slots, &v) ? v : NULL;
}
