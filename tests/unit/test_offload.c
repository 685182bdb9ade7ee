/*
 * test_offload — core/offload.c: jobs submitted from two threads, each
 * completing exactly once on its submitter's thread, woken through its own
 * io_uring; cancel, a full queue, stop; a pool that cannot start.
 * Exits 77 (skip) when io_uring is not available.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <liburing.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/offload.h"

#define PER_SUBMITTER 5000   /* two submitters: more than OFFLOAD_QUEUE_MAX in total */
#define WAKE_DATA 0x4242ULL

struct tjob {
	struct offload_job job;   /* first: the container is the job */
	pthread_t owner;
	int ran;                  /* written by run() on a pool thread */
	int done;                 /* written by done() on the owner */
	int done_on_owner;
	unsigned long value, result;
};

static int total_runs;        /* atomic */

static void tjob_run(struct offload_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->ran++;
	t->result = t->value * 2654435761UL;
	__atomic_add_fetch(&total_runs, 1, __ATOMIC_RELAXED);
}

static void tjob_done(struct offload_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->done++;
	t->done_on_owner = pthread_equal(t->owner, pthread_self());
}

/* ---- two submitters, each with its own ring ---------------------------- */

struct submitter {
	struct offload *o;
	struct tjob *jobs;
	unsigned wakes, drained;
	int err;
};

static void wait_and_drain(struct io_uring *ring, struct offload_port *p, struct submitter *s)
{
	struct __kernel_timespec ts = { .tv_sec = 2 };
	struct io_uring_cqe *cqe;
	int r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);

	if (r == 0) {
		if (cqe->user_data == WAKE_DATA)
			s->wakes++;
		io_uring_cqe_seen(ring, cqe);
	} else if (r != -ETIME) {
		s->err = r;
	}
	s->drained += offload_drain(p);
}

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;
	struct offload_port port;
	struct io_uring ring;
	unsigned next = 0, rounds = 0;

	if ((s->err = io_uring_queue_init(64, &ring, 0)) < 0)
		return NULL;
	offload_port_init(&port, ring.ring_fd, WAKE_DATA);
	while (next < PER_SUBMITTER || offload_port_busy(&port)) {
		while (next < PER_SUBMITTER) {
			struct tjob *t = &s->jobs[next];
			int r;

			t->job.run = tjob_run;
			t->job.done = tjob_done;
			t->owner = pthread_self();
			t->value = next;
			r = offload_submit(s->o, &port, &t->job);
			if (r == -EAGAIN)
				break;          /* full: wait for completions first */
			if (r < 0) {
				s->err = r;
				goto out;
			}
			next++;
		}
		wait_and_drain(&ring, &port, s);
		if (s->err || ++rounds > 1000000)
			break;
	}
out:
	/* Whatever happened, never leave a job pointing at this port. */
	while (offload_port_busy(&port) && !s->err)
		wait_and_drain(&ring, &port, s);
	offload_port_destroy(&port);
	io_uring_queue_exit(&ring);
	return NULL;
}

static void test_two_submitters(void **state)
{
	struct offload o;
	struct submitter s[2];
	pthread_t th[2];

	total_runs = 0;
	assert_int_equal(offload_start(&o, 3), 0);
	for (int i = 0; i < 2; i++) {
		s[i] = (struct submitter){ .o = &o, .jobs = calloc(PER_SUBMITTER, sizeof(struct tjob)) };
		assert_non_null(s[i].jobs);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, submitter_main, &s[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	offload_stop(&o);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(s[i].err, 0);
		assert_int_equal(s[i].drained, PER_SUBMITTER);
		/* Woken through the ring, never more than once per completion. */
		assert_true(s[i].wakes >= 1);
		assert_true(s[i].wakes <= PER_SUBMITTER);
		for (unsigned k = 0; k < PER_SUBMITTER; k++) {
			struct tjob *t = &s[i].jobs[k];
			assert_int_equal(t->ran, 1);
			assert_int_equal(t->done, 1);
			assert_int_equal(t->done_on_owner, 1);
			assert_true(t->result == t->value * 2654435761UL);
		}
		free(s[i].jobs);
	}
	assert_int_equal(total_runs, 2 * PER_SUBMITTER);
}

/* ---- one pool thread held by a blocker: cancel, queue full, stop -------- */

static int gate;   /* atomic: the blocker runs until it is 1 */
static int blocker_running;

static void blocker_run(struct offload_job *j)
{
	__atomic_store_n(&blocker_running, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE))
		usleep(1000);
	tjob_run(j);
}

/* Poll (no ring) until the port is idle. */
static unsigned drain_all(struct offload_port *p)
{
	unsigned n = 0;

	for (int i = 0; i < 10000 && offload_port_busy(p); i++) {
		n += offload_drain(p);
		if (offload_port_busy(p))
			usleep(1000);
	}
	return n;
}

static void test_cancel_full_stop(void **state)
{
	struct offload o;
	struct offload_port port;
	struct tjob blocker = { .job = { .run = blocker_run, .done = tjob_done } };
	struct tjob *jobs = calloc(OFFLOAD_QUEUE_MAX + 1, sizeof(*jobs));
	unsigned n;

	assert_non_null(jobs);
	gate = blocker_running = 0;
	total_runs = 0;
	assert_int_equal(offload_start(&o, 1), 0);
	assert_int_equal(offload_port_init(&port, -1, 0), 0);
	blocker.owner = pthread_self();
	assert_int_equal(offload_submit(&o, &port, &blocker.job), 0);
	while (!__atomic_load_n(&blocker_running, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* The only thread is busy: the queue fills up to its bound. */
	for (unsigned k = 0; k <= OFFLOAD_QUEUE_MAX; k++) {
		jobs[k] = (struct tjob){ .job = { .run = tjob_run, .done = tjob_done },
					 .owner = pthread_self(), .value = k };
		assert_int_equal(offload_submit(&o, &port, &jobs[k].job),
				 k < OFFLOAD_QUEUE_MAX ? 0 : -EAGAIN);
	}
	/* A refused job is untouched and the caller's: nothing will complete it. */
	assert_int_equal(port.inflight, OFFLOAD_QUEUE_MAX + 1);
	/* Cancel every other queued job: run() is skipped, done() still comes. */
	for (unsigned k = 0; k < OFFLOAD_QUEUE_MAX; k += 2)
		offload_cancel(&jobs[k].job);
	assert_int_equal(offload_drain(&port), 0);   /* nothing completed yet */
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	n = drain_all(&port);
	assert_int_equal(n, OFFLOAD_QUEUE_MAX + 1);
	assert_false(offload_port_busy(&port));
	assert_int_equal(blocker.ran, 1);
	assert_int_equal(blocker.done, 1);
	for (unsigned k = 0; k < OFFLOAD_QUEUE_MAX; k++) {
		assert_int_equal(jobs[k].ran, k % 2 ? 1 : 0);
		assert_int_equal(jobs[k].done, 1);
		assert_int_equal(jobs[k].done_on_owner, 1);
	}
	assert_int_equal(jobs[OFFLOAD_QUEUE_MAX].done, 0);
	assert_int_equal(total_runs, 1 + OFFLOAD_QUEUE_MAX / 2);

	/* Stop: idempotent; submitting afterwards is refused. */
	offload_stop(&o);
	offload_stop(&o);
	assert_int_equal(offload_submit(&o, &port, &jobs[0].job), -ESHUTDOWN);
	assert_int_equal(offload_submit(&o, &port, &(struct offload_job){ 0 }), -EINVAL);
	offload_port_destroy(&port);
	free(jobs);
}

/* offload_stop runs what is still queued: no job is ever lost. */
static void test_stop_runs_queued(void **state)
{
	struct offload o;
	struct offload_port port;
	struct tjob blocker = { .job = { .run = blocker_run, .done = tjob_done } };
	struct tjob jobs[50];

	gate = blocker_running = 0;
	assert_int_equal(offload_start(&o, 1), 0);
	assert_int_equal(offload_port_init(&port, -1, 0), 0);
	blocker.owner = pthread_self();
	assert_int_equal(offload_submit(&o, &port, &blocker.job), 0);
	for (unsigned k = 0; k < 50; k++) {
		jobs[k] = (struct tjob){ .job = { .run = tjob_run, .done = tjob_done },
					 .owner = pthread_self() };
		assert_int_equal(offload_submit(&o, &port, &jobs[k].job), 0);
	}
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	offload_stop(&o);
	/* Every job ran; their completions wait on the port. */
	assert_int_equal(offload_drain(&port), 51);
	for (unsigned k = 0; k < 50; k++)
		assert_int_equal(jobs[k].ran + jobs[k].done, 2);
	offload_port_destroy(&port);
}

static void test_start_errors(void **state)
{
	struct offload o;

	assert_int_equal(offload_start(&o, 0), -EINVAL);
	offload_stop(&o);   /* harmless on a pool that never started */
	assert_true(offload_default_threads() >= 1);
	assert_true(offload_default_threads() <= (sysconf(_SC_NPROCESSORS_ONLN) + 1) / 2 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_submitters),
		cmocka_unit_test(test_cancel_full_stop),
		cmocka_unit_test(test_stop_runs_queued),
		cmocka_unit_test(test_start_errors),
	};
	struct io_uring probe;
	int r = io_uring_queue_init(4, &probe, 0);

	if (r < 0) {
		fprintf(stderr, "io_uring unavailable (%s): skipped\n", strerror(-r));
		return 77;
	}
	io_uring_queue_exit(&probe);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
