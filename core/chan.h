/*
 * chan — one direction of an in-process link between an edge worker and a
 * session-server shard (DESIGN §8): the wire protocol's frames, handed over
 * in chunks (everything one side queued in a loop iteration) through a
 * lock-free single-producer single-consumer ring (ConcurrencyKit ck_ring),
 * instead of a socketpair's two system calls and two copies per batch.
 *
 * Wake-ups: the consumer sleeps on an eventfd of its own (the worker in its
 * io_uring, the session server in epoll), shared by all the chans it reads.
 * The producer writes it only when its chunk went into an empty ring, which
 * is when the consumer may be asleep; a busy consumer is never woken.  The
 * two sides fence between their store and their load (the producer after
 * publishing the chunk, the consumer after finding the ring empty, before
 * looking once more), so one of them always sees the other: no lost wake-up.
 *
 * Lifetimes: chunks are malloc'd by the producer and freed by the consumer
 * (jemalloc frees across threads).  The chan itself belongs to whoever set
 * up both threads (core/main.c) and is freed after both stopped.
 */
#ifndef XEDGE_CHAN_H
#define XEDGE_CHAN_H

#include <ck_ring.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_SLOTS 4096      /* chunks in flight per direction (a power of two) */

struct chan_chunk {
	uint32_t len;
	uint8_t data[];
};

struct chan {
	ck_ring_t ring;
	ck_ring_buffer_t *slots;
	int wake_fd;             /* the consumer's eventfd */
};

/* 0 or -ENOMEM. */
int chan_init(struct chan *ch, int wake_fd);
/* Free the chunks still queued and the ring (both sides stopped). */
void chan_fini(struct chan *ch);

/* Producer: hand a copy of p[0..len) over.  0, -EAGAIN (the ring is full:
 * keep the bytes, try again later) or -ENOMEM. */
int chan_put(struct chan *ch, const void *p, size_t len);

/* Consumer: the next chunk (free() it when done), or NULL when the ring is
 * empty; a chunk put before the producer's wake-up is never missed. */
struct chan_chunk *chan_get(struct chan *ch);

#endif
