/*
 * offload — a small pool of threads for work too slow for an event loop
 * (today: PLAIN's PBKDF2, milliseconds per login; DESIGN §2: never block a
 * worker).  Jobs are rare next to stanzas (logins only), so the queue is a
 * plain mutex + condition variable, FIFO.
 *
 * A job goes out from a submitter (an edge worker) through offload_submit()
 * and comes back to that submitter's port: run() executes on a pool thread,
 * then the job is put on the port's completion list and, when that list was
 * empty, the port's io_uring is woken with IORING_OP_MSG_RING from a small
 * ring the pool thread owns (the way worker_post() wakes a worker).  The
 * submitter calls offload_drain() from its own loop, which calls done() on
 * its own thread.  So run() touches only the job; done() is where results
 * meet the submitter's state.
 *
 * Lifetimes:
 *   - The job is the caller's memory from submit until done() is called (by
 *     offload_drain, on the submitter's thread): free it there, never before.
 *   - offload_cancel() is a hint: run() is skipped if it has not started,
 *     done() is still called.  Callers that cancel forget the job and let
 *     done() free it.
 *   - A port must outlive its jobs: the submitter keeps draining until
 *     offload_port_busy() is false before destroying it (the wake is sent
 *     under the port's lock, so a drained port is no longer touched).
 *   - offload_stop() runs the jobs still queued, then joins the threads:
 *     call it after every submitter has stopped.
 *
 * Threading: offload_submit, offload_cancel, offload_drain and
 * offload_port_busy are for the port's owner thread; run() never runs on it.
 *
 * Other completers.  A module with a thread of its own (core/resolve.c)
 * returns its jobs through the same ports: the owner binds the job with
 * offload_port_hold(), and that thread hands it back with offload_post(),
 * waking the owner from a ring of its own.  The lifetimes above hold
 * unchanged (done() on the owner, in offload_drain).
 */
#ifndef XEDGE_OFFLOAD_H
#define XEDGE_OFFLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define OFFLOAD_QUEUE_MAX 4096  /* queued jobs, all submitters; more: -EAGAIN */

struct io_uring;
struct offload_port;
struct offload_thread;

struct offload_job {
	void (*run)(struct offload_job *j);   /* on a pool thread */
	void (*done)(struct offload_job *j);  /* on the submitter's thread (offload_drain) */
	/* owned by offload.c from submit to done */
	struct offload_job *next;
	struct offload_port *port;
	int cancelled;                        /* atomic: run() is skipped */
};

/* Where a submitter's jobs come back. */
struct offload_port {
	pthread_mutex_t lock;
	struct offload_job *done;    /* completed, newest first (written under lock) */
	int ring_fd;                 /* the submitter's io_uring to wake; -1: none (it polls) */
	uint64_t wake_data;          /* user_data of the wake-up CQE on that ring */
	uint32_t inflight;           /* submitted, not yet drained (owner thread only) */
};

struct offload {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct offload_job *head, *tail;  /* queued, FIFO */
	unsigned queued;                  /* under lock; read without by the admin thread */
	bool stop;
	int nthreads;
	struct offload_thread *threads;   /* each with its own ring for wake-ups */
};

/* The default pool size: half the online CPUs, at least 1 and at most 64
 * (docs/architecture.md says why). */
int offload_default_threads(void);

/* Start n threads.  0 or -errno (nothing left running). */
int offload_start(struct offload *o, int n);

/* Run what is still queued, stop and join the threads, free.  Idempotent. */
void offload_stop(struct offload *o);

/* ring_fd: the owner's io_uring (wake_data arrives as a CQE's user_data when
 * completions are waiting), or -1 when the owner polls offload_drain().  The
 * owner may set p->ring_fd itself later, before its first submit. */
int offload_port_init(struct offload_port *p, int ring_fd, uint64_t wake_data);
void offload_port_destroy(struct offload_port *p);

/* Queue j (run and done set by the caller) for port p.  0, -EAGAIN (queue
 * full: OFFLOAD_QUEUE_MAX) or -ESHUTDOWN; on failure the job is untouched
 * and stays the caller's. */
int offload_submit(struct offload *o, struct offload_port *p, struct offload_job *j);

/* Skip j's run() if it has not started (done() still comes). */
void offload_cancel(struct offload_job *j);

/* Call done() for every completed job of p, oldest first; returns how many.
 * Cheap when nothing completed (one atomic load, no lock). */
unsigned offload_drain(struct offload_port *p);

/* Bind j to p and count it in flight, on p's owner thread, before handing j
 * to a thread that will complete it with offload_post(). */
static inline void offload_port_hold(struct offload_port *p, struct offload_job *j)
{
	j->next = NULL;
	j->port = p;
	j->cancelled = 0;
	p->inflight++;
}

/* Hand j back to its port (j->port) and, when the port's completion list was
 * empty, wake the port's owner with IORING_OP_MSG_RING submitted on ring.
 * ring belongs to the calling thread, which has no other request in flight
 * on it (our own CQE is reaped here).  j is the owner's again from the
 * moment the port's lock drops: do not touch it after this call. */
void offload_post(struct io_uring *ring, struct offload_job *j);

/* Jobs of p submitted and not yet drained. */
static inline bool offload_port_busy(const struct offload_port *p)
{
	return p->inflight > 0;
}

#endif
