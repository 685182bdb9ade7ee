/*
 * thread_ring — what every per-core io_uring thread (the edge's workers,
 * xedge-bench's threads) sets up first: a jemalloc arena of its own, so no
 * allocator lock is shared across cores, and its ring, single issuer with
 * deferred task work (completions are produced only inside our own
 * io_uring_enter, DESIGN §2).
 */
#ifndef XEDGE_THREAD_RING_H
#define XEDGE_THREAD_RING_H

#include <liburing.h>
#include <stddef.h>

#ifndef XEDGE_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

/* 0, or -errno from io_uring_queue_init_params (the caller says what to do). */
static inline int thread_ring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
		.cq_entries = cq_entries,
	};
#ifndef XEDGE_NO_JEMALLOC
	unsigned arena;
	size_t sz = sizeof(arena);

	if (mallctl("arenas.create", &arena, &sz, NULL, 0) == 0)
		mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena));
#endif
	return io_uring_queue_init_params(entries, ring, &p);
}

#endif
