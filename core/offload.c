/*
 * offload — see offload.h for the contract.
 *
 * Each pool thread owns a tiny io_uring whose only use is IORING_OP_MSG_RING
 * to wake a port's owner.  A wake is sent only when a port's completion list
 * goes from empty to not empty: the owner takes the whole list at once, so
 * one wake per batch is enough, and a burst of completions costs one wake.
 * The wake is submitted under the port's lock: once the owner has drained a
 * job it knows no pool thread will touch the port (or its ring) for it again.
 *
 * The threads run as SCHED_BATCH: CPU-bound, never preferred over a worker
 * that wakes up for I/O, so a burst of logins costs the data path little
 * latency.  They get no jemalloc arena of their own: they allocate nothing.
 */
#include "core/offload.h"

#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct offload_thread {
	struct offload *o;
	pthread_t tid;
	struct io_uring ring;
	bool ring_ok, started;
};

int offload_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;

	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* Under p->lock: wake the owner's ring.  Returns whether a CQE of our own
 * is to be reaped (after the lock is released). */
static bool wake(struct io_uring *ring, struct offload_port *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return false;   /* cannot happen: one in flight at most; the owner polls anyway */
	io_uring_prep_msg_ring(sqe, p->ring_fd, 0, p->wake_data, 0);
	io_uring_sqe_set_data64(sqe, 0);
	return io_uring_submit(ring) == 1;
}

static void reap(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;

	if (io_uring_wait_cqe(ring, &cqe) != 0)
		return;
	if (cqe->res < 0)
		log_warn("offload: cannot wake a worker (it polls within a second)", "err=%s",
			 strerror(-cqe->res));
	io_uring_cqe_seen(ring, cqe);
}

void offload_post(struct io_uring *ring, struct offload_job *j)
{
	struct offload_port *p = j->port;
	bool sent = false;

	pthread_mutex_lock(&p->lock);
	j->next = p->done;
	__atomic_store_n(&p->done, j, __ATOMIC_RELEASE);
	if (j->next == NULL && p->ring_fd >= 0)
		sent = wake(ring, p);
	pthread_mutex_unlock(&p->lock);
	if (sent)
		reap(ring);
}

static void *offload_main(void *arg)
{
	struct offload_thread *t = arg;
	struct offload *o = t->o;
	struct sched_param sp = { .sched_priority = 0 };

	pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	pthread_setname_np(pthread_self(), "xedge-offload");
	pthread_mutex_lock(&o->lock);
	for (;;) {
		struct offload_job *j;

		while (!o->head && !o->stop)
			pthread_cond_wait(&o->cond, &o->lock);
		if (!o->head)
			break;   /* stopping, and nothing is left */
		j = o->head;
		o->head = j->next;
		if (!o->head)
			o->tail = NULL;
		__atomic_store_n(&o->queued, o->queued - 1, __ATOMIC_RELAXED);   /* read by /metrics */
		pthread_mutex_unlock(&o->lock);
		if (!__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
			j->run(j);
		offload_post(&t->ring, j);
		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

void offload_stop(struct offload *o)
{
	if (!o->threads)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	for (int i = 0; i < o->nthreads; i++) {
		struct offload_thread *t = &o->threads[i];
		if (t->started)
			pthread_join(t->tid, NULL);
		if (t->ring_ok)
			io_uring_queue_exit(&t->ring);
	}
	free(o->threads);
	o->threads = NULL;
	o->nthreads = 0;
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
}

int offload_start(struct offload *o, int n)
{
	int r = 0;

	memset(o, 0, sizeof(*o));
	if (n < 1)
		return -EINVAL;
	o->threads = calloc((size_t)n, sizeof(*o->threads));
	if (!o->threads)
		return -ENOMEM;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	/* Rings first, in this thread, so a failure is reported here. */
	o->nthreads = n;
	for (int i = 0; i < n; i++) {
		struct offload_thread *t = &o->threads[i];
		t->o = o;
		r = io_uring_queue_init(4, &t->ring, 0);
		if (r < 0)
			goto fail;
		t->ring_ok = true;
	}
	for (int i = 0; i < n; i++) {
		struct offload_thread *t = &o->threads[i];
		r = -pthread_create(&t->tid, NULL, offload_main, t);
		if (r < 0)
			goto fail;
		t->started = true;
	}
	return 0;
fail:
	offload_stop(o);
	return r;
}

int offload_port_init(struct offload_port *p, int ring_fd, uint64_t wake_data)
{
	memset(p, 0, sizeof(*p));
	p->ring_fd = ring_fd;
	p->wake_data = wake_data;
	return -pthread_mutex_init(&p->lock, NULL);
}

void offload_port_destroy(struct offload_port *p)
{
	pthread_mutex_destroy(&p->lock);
}

int offload_submit(struct offload *o, struct offload_port *p, struct offload_job *j)
{
	if (!j->run || !j->done)
		return -EINVAL;
	j->next = NULL;
	j->port = p;
	j->cancelled = 0;
	if (!o->threads)
		return -ESHUTDOWN;
	pthread_mutex_lock(&o->lock);
	if (o->stop) {
		pthread_mutex_unlock(&o->lock);
		return -ESHUTDOWN;
	}
	if (o->queued >= OFFLOAD_QUEUE_MAX) {
		pthread_mutex_unlock(&o->lock);
		return -EAGAIN;
	}
	if (o->tail)
		o->tail->next = j;
	else
		o->head = j;
	o->tail = j;
	__atomic_store_n(&o->queued, o->queued + 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	p->inflight++;
	return 0;
}

void offload_cancel(struct offload_job *j)
{
	__atomic_store_n(&j->cancelled, 1, __ATOMIC_RELEASE);
}

unsigned offload_drain(struct offload_port *p)
{
	struct offload_job *list, *old = NULL;
	unsigned n = 0;

	if (!__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&p->lock);
	list = p->done;
	__atomic_store_n(&p->done, NULL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->lock);
	while (list) {   /* newest first -> oldest first */
		struct offload_job *next = list->next;
		list->next = old;
		old = list;
		list = next;
	}
	while (old) {
		struct offload_job *j = old;
		old = j->next;
		p->inflight--;
		n++;
		j->done(j);   /* may free j */
	}
	return n;
}
